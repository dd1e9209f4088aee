/* SPDX-License-Identifier: MIT */
/*
 * The virtio network device, virtio 1.2 §5.1.  See virtio_net.h.
 *
 * §2.6.4 (message framing): the header and the frame may be split over
 * descriptors in any way, so both are located by byte offset in the chain.
 *
 * Rule of the queues here: every chain popped is pushed or given back
 * (virtq_unpop) before the device lock is dropped, so nothing is ever in
 * flight between two calls and a saved state never waits for one.
 */
#include "../net/csum.h"
#include "virtio_net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "../clock.h"
#include "../log.h"
#include "../net/net.h"
#include "../timer.h"
#include "virtio_pci.h"

#define ETH_ALEN	6

#define RXMODE_ALL	0xff
#define RXMODE_RESET	VIRTIO_NET_RXMODE_PROMISC
#define PENDING_ALL	(VIRTIO_NET_PENDING_TX | VIRTIO_NET_PENDING_CTRL)

#define F(bit)		(1ull << (bit))

struct virtio_net {
	struct virtio_pci *vp;
	pthread_mutex_t *lock;
	struct netdev *nd;
	uint8_t conf_mac[ETH_ALEN];	/* as configured */
	struct vtimer_queue *timers;	/* NULL: no announce after a load */
	struct vtimer announce_timer;

	/* Driver-visible state, back to its reset values in vnet_reset(). */
	uint8_t mac[ETH_ALEN];		/* in use: config, or ADDR_SET */
	uint8_t rx_mode;		/* VIRTIO_NET_RXMODE_* */
	unsigned n_uc, n_mc;
	uint8_t uc[VIRTIO_NET_MAC_TABLE][ETH_ALEN];
	uint8_t mc[VIRTIO_NET_MAC_TABLE][ETH_ALEN];
	bool announce;			/* VIRTIO_NET_S_ANNOUNCE set */
	uint8_t pending;		/* VIRTIO_NET_PENDING_*: backend's turn */

	struct virtio_net_stats stats;
	/* Scratch space. */
	struct iovec *tx_iov;		/* a frame's part of a chain */
	unsigned tx_iov_cap;
	struct virtq_elem rx_elem[VIRTIO_NET_QUEUE_SIZE];
	uint32_t rx_len[VIRTIO_NET_QUEUE_SIZE];
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static uint64_t features(const struct virtio_net *vn)
{
	return virtio_pci_features(vn->vp);
}

/* Queue @q may be used now: the driver is running it and nothing is
 * broken (what the transport checks before a notify). */
static bool queue_live(struct virtio_net *vn, unsigned q)
{
	struct virtq *vq = virtio_pci_queue(vn->vp, q);
	uint8_t s = virtio_pci_status(vn->vp);

	return (s & (VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_NEEDS_RESET)) ==
	       VIRTIO_CONFIG_S_DRIVER_OK && vq->ready && !vq->broken;
}

/* Leave @what for the backend's thread (tx_ready). */
static void defer(struct virtio_net *vn, uint8_t what)
{
	vn->pending |= what;
	net_tx_kick(vn->nd);
}

/* ---- transmit ------------------------------------------------------------ */

/* The header's first 10 bytes (num_buffers is the receive side's). */
static void read_hdr(const struct virtq_elem *e, struct net_offload *h)
{
	uint8_t b[NET_VNET_HDR_LEN];

	iov_to_buf(e->iov, e->out_num, 0, b, sizeof(b));
	net_offload_from_hdr(h, b);
}

/* The device-to-driver offloads negotiated, as NET_CAP_* (for receive)
 * or, with @host, the driver-to-device ones (for transmit). */
static unsigned negotiated_caps(uint64_t f, bool host)
{
	unsigned c = 0;

	if (f & F(host ? VIRTIO_NET_F_CSUM : VIRTIO_NET_F_GUEST_CSUM))
		c |= NET_CAP_CSUM;
	if (f & F(host ? VIRTIO_NET_F_HOST_TSO4 : VIRTIO_NET_F_GUEST_TSO4))
		c |= NET_CAP_TSO4;
	if (f & F(host ? VIRTIO_NET_F_HOST_TSO6 : VIRTIO_NET_F_GUEST_TSO6))
		c |= NET_CAP_TSO6;
	if (f & F(host ? VIRTIO_NET_F_HOST_ECN : VIRTIO_NET_F_GUEST_ECN))
		c |= NET_CAP_TSO_ECN;
	return c;
}

/* Send the frame of chain @e.  0 when the chain is done with (sent or
 * dropped), -EAGAIN when the backend is full (keep the chain). */
static int tx_one(struct virtio_net *vn, const struct virtq_elem *e)
{
	unsigned host = negotiated_caps(features(vn), true);
	struct net_offload off, h;
	uint8_t gso;
	uint64_t flen;
	int r, cnt;

	if (e->out_len < VIRTIO_NET_HDR_LEN) {
		vlog_ratelimited(LOG_WARN, "virtio-net: transmit chain of %llu bytes, shorter than the header",
				 (unsigned long long)e->out_len);
		vn->stats.tx_bad++;
		return 0;
	}
	read_hdr(e, &h);
	flen = e->out_len - VIRTIO_NET_HDR_LEN;
	gso = h.gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
	/* §5.1.6.2.1: only what was negotiated. */
	if (flen < NET_FRAME_MIN || flen > NET_FRAME_MAX ||
	    (h.gso_type != VIRTIO_NET_HDR_GSO_NONE &&
	     !((gso == VIRTIO_NET_HDR_GSO_TCPV4 && (host & NET_CAP_TSO4)) ||
	       (gso == VIRTIO_NET_HDR_GSO_TCPV6 && (host & NET_CAP_TSO6))))) {
		vlog_ratelimited(LOG_WARN, "virtio-net: transmit frame of %llu bytes with GSO type %u dropped",
				 (unsigned long long)flen, h.gso_type);
		vn->stats.tx_bad++;
		return 0;
	}
	if (((h.gso_type & VIRTIO_NET_HDR_GSO_ECN) && !(host & NET_CAP_TSO_ECN)) ||
	    ((h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !(host & NET_CAP_CSUM))) {
		vlog_ratelimited(LOG_WARN, "virtio-net: transmit header (flags 0x%x, GSO type 0x%x) asks for what was not negotiated",
				 h.flags, h.gso_type);
		vn->stats.tx_bad++;
		return 0;
	}
	off = h;
	off.flags &= VIRTIO_NET_HDR_F_NEEDS_CSUM;
	if (e->out_num > vn->tx_iov_cap) {
		struct iovec *n = realloc(vn->tx_iov, e->out_num * sizeof(*n));

		if (!n)
			return -EAGAIN;
		vn->tx_iov = n;
		vn->tx_iov_cap = e->out_num;
	}
	cnt = iov_slice(e->iov, e->out_num, VIRTIO_NET_HDR_LEN, (size_t)flen,
			vn->tx_iov, vn->tx_iov_cap);
	if (cnt < 0)
		return 0;	/* cannot happen: out_len covers it */
	/* net.c copies the frame once, then checks the header against the
	 * copy and completes the checksum there if the backend cannot: the
	 * guest changing its buffers meanwhile changes nothing. */
	r = net_send_offload(vn->nd, &off, vn->tx_iov, cnt);
	if (r == -EINVAL) {
		vlog_ratelimited(LOG_WARN, "virtio-net: transmit header (flags 0x%x, GSO type 0x%x, checksum at %u+%u, header %u, segment %u) does not fit the %llu-byte frame",
				 h.flags, h.gso_type, h.csum_start, h.csum_offset,
				 h.hdr_len, h.gso_size, (unsigned long long)flen);
		vn->stats.tx_bad++;
	}
	/* -EMSGSIZE, -ENOLINK: dropped, as on a wire (the backend counts). */
	return r == -EAGAIN ? -EAGAIN : 0;
}

/*
 * Send what the transmit ring holds, VIRTIO_NET_TX_BATCH frames at most;
 * leave the rest for the backend's turn (tx_ready).  Notifications stay
 * off while work is left (§2.7.10): the device comes back by itself.
 */
static void tx_run(struct virtio_net *vn)
{
	struct virtq *vq = virtio_pci_queue(vn->vp, VIRTIO_NET_TXQ);
	unsigned budget = VIRTIO_NET_TX_BATCH;
	bool pushed = false;

	vn->pending &= (uint8_t)~VIRTIO_NET_PENDING_TX;
	if (!queue_live(vn, VIRTIO_NET_TXQ))
		return;
	for (;;) {
		struct virtq_elem e;
		int r = 0;

		virtq_disable_notify(vq);
		while (budget && (r = virtq_pop(vq, &e)) == 1) {
			if (tx_one(vn, &e) == -EAGAIN) {
				virtq_unpop(vq, &e);
				virtq_elem_release(&e);
				/* tx_ready follows; the kick makes sure of
				 * it whatever made net_send() say -EAGAIN. */
				defer(vn, VIRTIO_NET_PENDING_TX);
				goto out;
			}
			virtq_push(vq, &e, 0);
			virtq_elem_release(&e);
			pushed = true;
			budget--;
		}
		if (r == -ENOMEM) {
			defer(vn, VIRTIO_NET_PENDING_TX);
			goto out;
		}
		if (r < 0)
			goto out;		/* broken */
		if (!virtq_enable_notify(vq))
			goto out;		/* empty, and kicks are on */
		if (!budget) {
			virtq_disable_notify(vq);
			defer(vn, VIRTIO_NET_PENDING_TX);
			goto out;
		}
	}
out:
	if (pushed)
		virtio_pci_notify_used(vn->vp, VIRTIO_NET_TXQ);
}

/* ---- receive ------------------------------------------------------------- */

static bool is_bcast(const uint8_t *a)
{
	static const uint8_t ff[ETH_ALEN] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

	return memcmp(a, ff, ETH_ALEN) == 0;
}

static bool in_table(const uint8_t (*t)[ETH_ALEN], unsigned n,
		     const uint8_t *a)
{
	for (unsigned i = 0; i < n; i++)
		if (memcmp(t[i], a, ETH_ALEN) == 0)
			return true;
	return false;
}

/* §5.1.6.5.1-2: does the frame to @dst pass the receive filter? */
static bool rx_filter(const struct virtio_net *vn, const uint8_t *dst)
{
	uint8_t m = vn->rx_mode;

	if (!(features(vn) & F(VIRTIO_NET_F_CTRL_RX)) ||
	    (m & VIRTIO_NET_RXMODE_PROMISC))
		return true;
	if (is_bcast(dst))
		return !(m & VIRTIO_NET_RXMODE_NOBCAST);
	if (dst[0] & 1) {
		if (m & VIRTIO_NET_RXMODE_NOMULTI)
			return false;
		return (m & (VIRTIO_NET_RXMODE_ALLMULTI |
			     VIRTIO_NET_RXMODE_MULTI_OVERFLOW)) ||
		       in_table(vn->mc, vn->n_mc, dst);
	}
	if (m & VIRTIO_NET_RXMODE_NOUNI)
		return false;
	return (m & (VIRTIO_NET_RXMODE_ALLUNI | VIRTIO_NET_RXMODE_UNI_OVERFLOW)) ||
	       memcmp(dst, vn->mac, ETH_ALEN) == 0 ||
	       in_table(vn->uc, vn->n_uc, dst);
}

/* Copy @len bytes of @src from @soff into the writable part of @e at
 * @doff. */
static void copy_in(const struct virtq_elem *e, size_t doff,
		    const struct iovec *src, int srccnt, size_t soff, size_t len)
{
	for (int i = 0; i < srccnt && len; i++) {
		size_t n;

		if (soff >= src[i].iov_len) {
			soff -= src[i].iov_len;
			continue;
		}
		n = src[i].iov_len - soff;
		if (n > len)
			n = len;
		iov_from_buf(e->iov + e->out_num, e->in_num, doff,
			     (const uint8_t *)src[i].iov_base + soff, n);
		doff += n;
		len -= n;
		soff = 0;
	}
}

/* Give back the @n chains popped for a frame (last first). */
static void rx_unpop(struct virtio_net *vn, struct virtq *vq, unsigned n)
{
	while (n--) {
		virtq_unpop(vq, &vn->rx_elem[n]);
		virtq_elem_release(&vn->rx_elem[n]);
	}
}

/*
 * Put the @len-byte frame in receive buffers: one chain, or with
 * MRG_RXBUF as many as it takes (§5.1.6.4).  Returns @len when it is
 * there or dropped, 0 when the ring has too few buffers now.
 */
static size_t rx_deliver(struct virtio_net *vn, const struct net_offload *off,
			 const struct iovec *iov, int iovcnt, size_t len)
{
	struct virtq *vq = virtio_pci_queue(vn->vp, VIRTIO_NET_RXQ);
	bool mrg = features(vn) & F(VIRTIO_NET_F_MRG_RXBUF);
	uint8_t hdr[VIRTIO_NET_HDR_LEN] = { 0 };
	size_t done = 0;
	unsigned n = 0;

	while (done < len) {
		struct virtq_elem *e = &vn->rx_elem[n];
		size_t skip = n == 0 ? VIRTIO_NET_HDR_LEN : 0, take;
		int r;

		if (n == vq->size || n == VIRTIO_NET_QUEUE_SIZE) {
			/* The whole ring cannot hold it: never will. */
			rx_unpop(vn, vq, n);
			vn->stats.rx_oversize++;
			return len;
		}
		r = virtq_pop(vq, e);
		/* Empty: ask for a kick (avail_event), fence, look again.  A
		 * pop's own avail_event store may still sit in this CPU's
		 * store buffer while the driver adds a buffer and reads the
		 * old value: then neither side would see the other and the
		 * driver never kicks again (what QEMU's has_buffers does). */
		if (r == 0 && virtq_enable_notify(vq))
			r = virtq_pop(vq, e);
		if (r != 1) {
			rx_unpop(vn, vq, n);
			if (r == -EIO) {	/* broken now */
				vn->stats.rx_not_ready++;
				return len;
			}
			if (r == -ENOMEM)	/* no kick will come: retry */
				net_rx_ready(vn->nd);
			return 0;		/* wait for net_rx_ready() */
		}
		n++;
		if (e->out_num || e->in_len < VIRTIO_NET_HDR_LEN) {
			vlog_ratelimited(LOG_WARN, "virtio-net: receive chain with %llu readable and %llu writable bytes",
					 (unsigned long long)e->out_len,
					 (unsigned long long)e->in_len);
			rx_unpop(vn, vq, n);
			virtq_set_broken(vq);
			vn->stats.rx_not_ready++;
			return len;
		}
		if (!mrg && e->in_len < VIRTIO_NET_HDR_LEN + len) {
			/* §5.1.6.3.1: the driver should have given room for
			 * a whole frame; keep the buffer for a smaller one. */
			rx_unpop(vn, vq, n);
			vn->stats.rx_oversize++;
			vlog_ratelimited(LOG_WARN, "virtio-net: %zu-byte frame dropped: receive buffer of %llu bytes",
					 len, (unsigned long long)e->in_len);
			return len;
		}
		take = e->in_len - skip;
		if (take > len - done)
			take = len - done;
		copy_in(e, skip, iov, iovcnt, done, take);
		vn->rx_len[n - 1] = (uint32_t)(skip + take);
		done += take;
	}
	/* Without @off: flags 0 (checksums are complete), GSO_NONE. */
	net_offload_to_hdr(hdr, off);	/* the first 10 bytes; NULL: zero */
	put16(hdr + 10, (uint16_t)(mrg ? n : 1));
	iov_from_buf(vn->rx_elem[0].iov + vn->rx_elem[0].out_num,
		     vn->rx_elem[0].in_num, 0, hdr, sizeof(hdr));
	for (unsigned i = 0; i < n; i++) {
		virtq_push(vq, &vn->rx_elem[i], vn->rx_len[i]);
		virtq_elem_release(&vn->rx_elem[i]);
	}
	virtio_pci_notify_used(vn->vp, VIRTIO_NET_RXQ);
	return len;
}

/* The backend's thread, device lock held: a frame for the guest, with
 * offload metadata within what the driver negotiated (net.c sees to it:
 * net_set_rx_offloads) or NULL. */
static size_t vnet_receive_offload(void *opaque, const struct net_offload *off,
				   const struct iovec *iov, int iovcnt)
{
	struct virtio_net *vn = opaque;
	uint8_t dst[ETH_ALEN];
	size_t len = 0;

	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (!queue_live(vn, VIRTIO_NET_RXQ) || !net_link_up(vn->nd) ||
	    len < NET_FRAME_MIN || len > NET_FRAME_MAX) {
		vn->stats.rx_not_ready++;
		return len ? len : 1;	/* taken (0 would mean "keep it") */
	}
	iov_to_buf(iov, (unsigned)iovcnt, 0, dst, ETH_ALEN);
	if (!rx_filter(vn, dst)) {
		vn->stats.rx_filtered++;
		return len;
	}
	return rx_deliver(vn, off, iov, iovcnt, len);
}

static size_t vnet_receive(void *opaque, const struct iovec *iov, int iovcnt)
{
	return vnet_receive_offload(opaque, NULL, iov, iovcnt);
}

/* ---- control queue --------------------------------------------------- */

/* Read a MAC table (le32 entries, entries * 6 bytes) at *@off of the
 * readable part; advance *@off.  Returns false if it overruns. */
static bool read_table(const struct virtq_elem *e, uint64_t *off,
		       uint8_t (*t)[ETH_ALEN], unsigned *n, bool *overflow)
{
	uint8_t b[4];
	uint32_t entries;

	if (e->out_len - *off < 4)
		return false;
	iov_to_buf(e->iov, e->out_num, (size_t)*off, b, 4);
	entries = (uint32_t)(b[0] | b[1] << 8 | b[2] << 16) | (uint32_t)b[3] << 24;
	*off += 4;
	if (entries > (e->out_len - *off) / ETH_ALEN)
		return false;
	*overflow = entries > VIRTIO_NET_MAC_TABLE;
	*n = *overflow ? 0 : entries;
	if (*n)
		iov_to_buf(e->iov, e->out_num, (size_t)*off, t, *n * ETH_ALEN);
	*off += (uint64_t)entries * ETH_ALEN;
	return true;
}

/* VIRTIO_NET_CTRL_MAC_TABLE_SET (§5.1.6.5.2): unicast table, multicast
 * table, exactly filling the command. */
static uint8_t ctrl_mac_table(struct virtio_net *vn, const struct virtq_elem *e)
{
	uint8_t uc[VIRTIO_NET_MAC_TABLE][ETH_ALEN], mc[VIRTIO_NET_MAC_TABLE][ETH_ALEN];
	unsigned n_uc, n_mc;
	bool uo, mo;
	uint64_t off = 2;

	if (!read_table(e, &off, uc, &n_uc, &uo) ||
	    !read_table(e, &off, mc, &n_mc, &mo) || off != e->out_len)
		return VIRTIO_NET_ERR;
	memcpy(vn->uc, uc, n_uc * ETH_ALEN);
	memcpy(vn->mc, mc, n_mc * ETH_ALEN);
	vn->n_uc = n_uc;
	vn->n_mc = n_mc;
	vn->rx_mode &= (uint8_t)~(VIRTIO_NET_RXMODE_UNI_OVERFLOW |
				  VIRTIO_NET_RXMODE_MULTI_OVERFLOW);
	if (uo)
		vn->rx_mode |= VIRTIO_NET_RXMODE_UNI_OVERFLOW;
	if (mo)
		vn->rx_mode |= VIRTIO_NET_RXMODE_MULTI_OVERFLOW;
	return VIRTIO_NET_OK;
}

/* One command: the ack (§5.1.6.5). */
static uint8_t ctrl_command(struct virtio_net *vn, const struct virtq_elem *e)
{
	uint64_t f = features(vn);
	uint8_t c[3] = { 0 };
	uint64_t dlen;

	if (e->out_len < 2)
		return VIRTIO_NET_ERR;
	dlen = e->out_len - 2;
	iov_to_buf(e->iov, e->out_num, 0, c, dlen ? 3 : 2);
	switch (c[0]) {
	case VIRTIO_NET_CTRL_RX:
		if (c[1] > VIRTIO_NET_CTRL_RX_NOBCAST || dlen != 1 ||
		    !(f & F(c[1] <= VIRTIO_NET_CTRL_RX_ALLMULTI ?
			    VIRTIO_NET_F_CTRL_RX : VIRTIO_NET_F_CTRL_RX_EXTRA)))
			return VIRTIO_NET_ERR;
		/* Command N is mode bit N. */
		if (c[2])
			vn->rx_mode |= (uint8_t)(1u << c[1]);
		else
			vn->rx_mode &= (uint8_t)~(1u << c[1]);
		return VIRTIO_NET_OK;
	case VIRTIO_NET_CTRL_MAC:
		if (c[1] == VIRTIO_NET_CTRL_MAC_TABLE_SET &&
		    (f & F(VIRTIO_NET_F_CTRL_RX)))
			return ctrl_mac_table(vn, e);
		if (c[1] == VIRTIO_NET_CTRL_MAC_ADDR_SET && dlen == ETH_ALEN &&
		    (f & F(VIRTIO_NET_F_CTRL_MAC_ADDR))) {
			iov_to_buf(e->iov, e->out_num, 2, vn->mac, ETH_ALEN);
			return VIRTIO_NET_OK;
		}
		return VIRTIO_NET_ERR;
	case VIRTIO_NET_CTRL_ANNOUNCE:
		if (c[1] != VIRTIO_NET_CTRL_ANNOUNCE_ACK || dlen != 0 ||
		    !(f & F(VIRTIO_NET_F_GUEST_ANNOUNCE)))
			return VIRTIO_NET_ERR;
		vn->announce = false;
		return VIRTIO_NET_OK;
	default:
		return VIRTIO_NET_ERR;	/* VLAN, MQ, offloads: not offered */
	}
}

/* Answer the control queue's commands, a queue's worth per turn. */
static void ctrl_run(struct virtio_net *vn)
{
	struct virtq *vq = virtio_pci_queue(vn->vp, VIRTIO_NET_CTRLQ);
	unsigned budget = vq->size;
	bool pushed = false;
	struct virtq_elem e;
	int r = 0;

	vn->pending &= (uint8_t)~VIRTIO_NET_PENDING_CTRL;
	if (!(features(vn) & F(VIRTIO_NET_F_CTRL_VQ)) ||
	    !queue_live(vn, VIRTIO_NET_CTRLQ))
		return;
	for (;;) {
		virtq_disable_notify(vq);
		while (budget && (r = virtq_pop(vq, &e)) == 1) {
			uint8_t ack;

			if (e.in_len < 1) {
				vlog_ratelimited(LOG_WARN, "virtio-net: control command without an ack byte");
				virtq_unpop(vq, &e);
				virtq_elem_release(&e);
				virtq_set_broken(vq);
				goto out;
			}
			ack = ctrl_command(vn, &e);
			iov_from_buf(e.iov + e.out_num, e.in_num, 0, &ack, 1);
			virtq_push(vq, &e, 1);
			virtq_elem_release(&e);
			pushed = true;
			budget--;
		}
		if (r == -ENOMEM) {
			defer(vn, VIRTIO_NET_PENDING_CTRL);
			goto out;
		}
		if (r < 0 || !virtq_enable_notify(vq))
			goto out;
		if (!budget) {
			virtq_disable_notify(vq);
			defer(vn, VIRTIO_NET_PENDING_CTRL);
			goto out;
		}
	}
out:
	if (pushed)
		virtio_pci_notify_used(vn->vp, VIRTIO_NET_CTRLQ);
}

/* ---- the backend's callbacks and the transport's --------------------- */

/* The backend's thread: room in its transmit queue, or the turn asked for
 * with net_tx_kick(). */
static void vnet_tx_ready(void *opaque)
{
	struct virtio_net *vn = opaque;
	uint8_t p = vn->pending;

	if (p & VIRTIO_NET_PENDING_CTRL)
		ctrl_run(vn);
	if (p & VIRTIO_NET_PENDING_TX)
		tx_run(vn);
}

static void vnet_link_changed(void *opaque, bool up)
{
	(void)up;	/* config_read asks the backend */
	virtio_pci_config_changed(((struct virtio_net *)opaque)->vp);
}

static const struct net_client_ops vnet_client_ops = {
	.receive = vnet_receive,
	.receive_offload = vnet_receive_offload,
	.tx_ready = vnet_tx_ready,
	.link_changed = vnet_link_changed,
};

static void queue_notify(void *opaque, unsigned q)
{
	struct virtio_net *vn = opaque;

	switch (q) {
	case VIRTIO_NET_RXQ:
		net_rx_ready(vn->nd);
		break;
	case VIRTIO_NET_TXQ:
		tx_run(vn);
		break;
	case VIRTIO_NET_CTRLQ:
		ctrl_run(vn);
		break;
	}
}

static uint64_t config_read(void *opaque, unsigned offset, unsigned size)
{
	struct virtio_net *vn = opaque;
	uint8_t c[VIRTIO_NET_CFG_LEN];
	uint16_t st = 0;
	uint64_t v = 0;

	memcpy(c + VIRTIO_NET_CFG_MAC, vn->mac, ETH_ALEN);
	if (net_link_up(vn->nd))
		st |= VIRTIO_NET_S_LINK_UP;
	if (vn->announce)
		st |= VIRTIO_NET_S_ANNOUNCE;
	put16(c + VIRTIO_NET_CFG_STATUS, st);
	put16(c + VIRTIO_NET_CFG_MAX_VQ_PAIRS, 1);
	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)c[offset + i] << (8 * i);
	return v;
}

/* §5.1.3.1: what each feature requires. */
static bool features_valid(uint64_t f)
{
	if ((f & (F(VIRTIO_NET_F_CTRL_RX) | F(VIRTIO_NET_F_CTRL_RX_EXTRA) |
		  F(VIRTIO_NET_F_GUEST_ANNOUNCE) | F(VIRTIO_NET_F_CTRL_MAC_ADDR))) &&
	    !(f & F(VIRTIO_NET_F_CTRL_VQ)))
		return false;
	if ((f & (F(VIRTIO_NET_F_GUEST_TSO4) | F(VIRTIO_NET_F_GUEST_TSO6))) &&
	    !(f & F(VIRTIO_NET_F_GUEST_CSUM)))
		return false;
	if ((f & (F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_HOST_TSO6))) &&
	    !(f & F(VIRTIO_NET_F_CSUM)))
		return false;
	if ((f & F(VIRTIO_NET_F_GUEST_ECN)) &&
	    !(f & (F(VIRTIO_NET_F_GUEST_TSO4) | F(VIRTIO_NET_F_GUEST_TSO6))))
		return false;
	if ((f & F(VIRTIO_NET_F_HOST_ECN)) &&
	    !(f & (F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_HOST_TSO6))))
		return false;
	return !(f & F(VIRTIO_NET_F_CTRL_RX_EXTRA)) || (f & F(VIRTIO_NET_F_CTRL_RX));
}

/* FEATURES_OK: accepted, the backend hands over what the driver takes. */
static bool features_ok(void *opaque, uint64_t f)
{
	struct virtio_net *vn = opaque;

	if (!features_valid(f))
		return false;
	net_set_rx_offloads(vn->nd, negotiated_caps(f, false));
	return true;
}

/* The transport was reset (also while it is built: vn->vp may not be set
 * yet). */
static void vnet_reset(void *opaque)
{
	struct virtio_net *vn = opaque;

	memcpy(vn->mac, vn->conf_mac, ETH_ALEN);
	vn->rx_mode = RXMODE_RESET;
	vn->n_uc = vn->n_mc = 0;
	memset(vn->uc, 0, sizeof(vn->uc));
	memset(vn->mc, 0, sizeof(vn->mc));
	vn->announce = false;
	vn->pending = 0;
	net_set_rx_offloads(vn->nd, 0);
}

static const struct virtio_pci_ops vnet_pci_ops = {
	.config_read = config_read,
	.config_write = NULL,		/* mac is read-only in 1.x (§5.1.4) */
	.queue_notify = queue_notify,
	.features_ok = features_ok,
	.reset = vnet_reset,
};

#define OFFERED (F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_MAC) |		\
		 F(VIRTIO_NET_F_MRG_RXBUF) | F(VIRTIO_NET_F_STATUS) |	\
		 F(VIRTIO_NET_F_CTRL_VQ) | F(VIRTIO_NET_F_CTRL_RX) |	\
		 F(VIRTIO_NET_F_CTRL_RX_EXTRA) |			\
		 F(VIRTIO_NET_F_GUEST_ANNOUNCE) |			\
		 F(VIRTIO_NET_F_CTRL_MAC_ADDR))

/* OFFERED plus the offloads backend @nd carries both ways. */
static uint64_t offered(struct netdev *nd)
{
	unsigned c = net_caps(nd);
	uint64_t f = OFFERED;

	if (!(c & NET_CAP_CSUM))
		return f;
	f |= F(VIRTIO_NET_F_GUEST_CSUM);
	if (c & NET_CAP_TSO4)
		f |= F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_GUEST_TSO4);
	if (c & NET_CAP_TSO6)
		f |= F(VIRTIO_NET_F_HOST_TSO6) | F(VIRTIO_NET_F_GUEST_TSO6);
	if ((c & NET_CAP_TSO_ECN) && (c & (NET_CAP_TSO4 | NET_CAP_TSO6)))
		f |= F(VIRTIO_NET_F_HOST_ECN) | F(VIRTIO_NET_F_GUEST_ECN);
	return f;
}

static void announce_fired(void *opaque, uint64_t now)
{
	(void)now;
	virtio_net_announce(opaque);
}

struct virtio_net *virtio_net_new(const struct virtio_net_config *cfg,
				  char *err, size_t errlen)
{
	struct virtio_pci_config pc;
	struct virtio_net *vn;
	int r;

	if (!cfg->pci || !cfg->mem || !cfg->lock || !cfg->backend) {
		snprintf(err, errlen, "virtio-net: incomplete configuration");
		return NULL;
	}
	if ((cfg->mac[0] & 1) || !memcmp(cfg->mac, "\0\0\0\0\0\0", ETH_ALEN)) {
		snprintf(err, errlen, "virtio-net: MAC address %02x:%02x:%02x:%02x:%02x:%02x is %s",
			 cfg->mac[0], cfg->mac[1], cfg->mac[2], cfg->mac[3],
			 cfg->mac[4], cfg->mac[5],
			 (cfg->mac[0] & 1) ? "a multicast address" : "all zeroes");
		return NULL;
	}
	vn = calloc(1, sizeof(*vn));
	if (!vn) {
		snprintf(err, errlen, "virtio-net: out of memory");
		return NULL;
	}
	vn->lock = cfg->lock;
	vn->nd = cfg->backend;
	vn->timers = cfg->timers;
	if (vn->timers)
		vtimer_init(&vn->announce_timer, vn->timers, announce_fired, vn);
	memcpy(vn->conf_mac, cfg->mac, ETH_ALEN);
	vnet_reset(vn);

	pc = (struct virtio_pci_config){
		.pci = cfg->pci, .devfn = cfg->devfn, .mem = cfg->mem,
		.device_id = 1,			/* §5.1.1 */
		.class_code = 0x020000,		/* network, Ethernet */
		.features = offered(cfg->backend),
		.num_queues = 3,
		.queue_size = VIRTIO_NET_QUEUE_SIZE,
		.config_len = VIRTIO_NET_CFG_LEN,
		.ops = &vnet_pci_ops, .opaque = vn, .iofd = cfg->iofd,
	};
	vn->vp = virtio_pci_new(&pc, &r);
	if (!vn->vp) {
		snprintf(err, errlen, "virtio-net: cannot add PCI device %02x.%u: %s",
			 cfg->devfn >> 3, cfg->devfn & 7,
			 r == -EEXIST ? "slot in use" : strerror(-r));
		goto fail;
	}
	r = net_attach(vn->nd, &vnet_client_ops, vn, vn->lock);
	if (r < 0) {
		snprintf(err, errlen, "virtio-net: cannot attach to the %s backend: %s",
			 net_kind(vn->nd),
			 r == -EBUSY ? "another NIC uses it" : strerror(-r));
		virtio_pci_free(vn->vp);
		goto fail;
	}
	return vn;
fail:
	free(vn);
	return NULL;
}

void virtio_net_free(struct virtio_net *vn)
{
	if (!vn)
		return;
	if (vn->timers)
		vtimer_del(&vn->announce_timer);
	net_detach(vn->nd);
	virtio_pci_free(vn->vp);
	free(vn->tx_iov);
	free(vn);
}

bool virtio_net_announce(struct virtio_net *vn)
{
	if (!(features(vn) & F(VIRTIO_NET_F_GUEST_ANNOUNCE)) ||
	    !(virtio_pci_status(vn->vp) & VIRTIO_CONFIG_S_DRIVER_OK))
		return false;
	vn->announce = true;
	virtio_pci_config_changed(vn->vp);
	return true;
}

void virtio_net_get_stats(const struct virtio_net *vn,
			  struct virtio_net_stats *st)
{
	*st = vn->stats;
}

struct virtio_pci *virtio_net_transport(struct virtio_net *vn)
{
	return vn->vp;
}

/* ---- the machine's device table ---------------------------------------- */

static void virtio_net_dev_reset(void *dev)
{
	struct virtio_net *vn = dev;

	virtio_pci_reset(vn->vp);
}

static void virtio_net_dev_free(void *dev)
{
	virtio_net_free(dev);
}

static GVariant *bytes(const void *p, size_t len)
{
	return g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, p, len, 1);
}

static GVariant *virtio_net_dev_save(void *dev)
{
	struct virtio_net *vn = dev;
	GVariant *t = virtio_pci_save(vn->vp);

	if (!t) {
		vlog(LOG_ERROR, "virtio-net: buffers in flight: not saved");
		return NULL;
	}
	return g_variant_new("(@" VIRTIO_PCI_STATE_TYPE "@ayq@ay@ayby)", t,
			     bytes(vn->mac, ETH_ALEN), (guint16)vn->rx_mode,
			     bytes(vn->uc, vn->n_uc * ETH_ALEN),
			     bytes(vn->mc, vn->n_mc * ETH_ALEN),
			     (gboolean)vn->announce, (guchar)vn->pending);
}

/* A table's bytes: whole addresses, at most VIRTIO_NET_MAC_TABLE. */
static bool table_ok(GVariant *v, const char *what, char *err, size_t errlen)
{
	gsize n = g_variant_get_size(v);

	if (n % ETH_ALEN == 0 && n <= VIRTIO_NET_MAC_TABLE * ETH_ALEN)
		return true;
	snprintf(err, errlen, "virtio-net: %s filter table of %zu bytes (whole addresses, at most %d)",
		 what, (size_t)n, VIRTIO_NET_MAC_TABLE);
	return false;
}

static int virtio_net_dev_load(void *dev, uint32_t version, GVariant *state,
			       char *err, size_t errlen)
{
	struct virtio_net *vn = dev;
	GVariant *t = NULL, *mac = NULL, *uc = NULL, *mc = NULL;
	guint16 rx_mode;
	gboolean announce;
	guchar pending, dstatus;
	guint64 f;
	bool accepted;
	int r;

	r = device_state_check("virtio-net", version, 1, state,
			       VIRTIO_NET_STATE_TYPE, err, errlen);
	if (r < 0)
		return r;
	g_variant_get(state, "(@" VIRTIO_PCI_STATE_TYPE "@ayq@ay@ayby)", &t,
		      &mac, &rx_mode, &uc, &mc, &announce, &pending);
	g_variant_get_child(t, 0, "y", &dstatus);
	g_variant_get_child(t, 2, "t", &f);	/* the driver's features */
	/* Written but never accepted (no FEATURES_OK): no rules, no offloads. */
	accepted = dstatus & VIRTIO_CONFIG_S_FEATURES_OK;
	r = -EINVAL;
	if (g_variant_get_size(mac) != ETH_ALEN)
		snprintf(err, errlen, "virtio-net: MAC address of %zu bytes",
			 (size_t)g_variant_get_size(mac));
	else if (memcmp(g_variant_get_data(mac), vn->conf_mac, ETH_ALEN) &&
		 !(f & F(VIRTIO_NET_F_CTRL_MAC_ADDR)))
		snprintf(err, errlen, "virtio-net: MAC address other than the configured one without VIRTIO_NET_F_CTRL_MAC_ADDR");
	else if (rx_mode & ~RXMODE_ALL)
		snprintf(err, errlen, "virtio-net: receive mode 0x%x out of range",
			 rx_mode);
	else if (!table_ok(uc, "unicast", err, errlen) ||
		 !table_ok(mc, "multicast", err, errlen))
		;
	else if (!(f & F(VIRTIO_NET_F_CTRL_RX)) &&
		 (rx_mode != RXMODE_RESET || g_variant_get_size(uc) ||
		  g_variant_get_size(mc)))
		snprintf(err, errlen, "virtio-net: receive mode or filter tables without VIRTIO_NET_F_CTRL_RX");
	else if (announce && !(f & F(VIRTIO_NET_F_GUEST_ANNOUNCE)))
		snprintf(err, errlen, "virtio-net: announce pending without VIRTIO_NET_F_GUEST_ANNOUNCE");
	else if (((rx_mode & VIRTIO_NET_RXMODE_UNI_OVERFLOW) && g_variant_get_size(uc)) ||
		 ((rx_mode & VIRTIO_NET_RXMODE_MULTI_OVERFLOW) && g_variant_get_size(mc)))
		snprintf(err, errlen, "virtio-net: a filter table both overflowed and filled");
	else if (accepted && !features_valid(f))
		snprintf(err, errlen, "virtio-net: driver features 0x%llx break §5.1.3.1's rules",
			 (unsigned long long)f);
	else if ((pending & ~PENDING_ALL) ||
		 ((pending & VIRTIO_NET_PENDING_CTRL) && !(f & F(VIRTIO_NET_F_CTRL_VQ))))
		snprintf(err, errlen, "virtio-net: pending work 0x%x out of range",
			 pending);
	else
		r = virtio_pci_load(vn->vp, t, "virtio-net", err, errlen);
	if (r == 0) {
		memcpy(vn->mac, g_variant_get_data(mac), ETH_ALEN);
		vn->rx_mode = (uint8_t)rx_mode;
		vn->n_uc = (unsigned)(g_variant_get_size(uc) / ETH_ALEN);
		vn->n_mc = (unsigned)(g_variant_get_size(mc) / ETH_ALEN);
		memset(vn->uc, 0, sizeof(vn->uc));
		memset(vn->mc, 0, sizeof(vn->mc));
		if (vn->n_uc)
			memcpy(vn->uc, g_variant_get_data(uc), vn->n_uc * ETH_ALEN);
		if (vn->n_mc)
			memcpy(vn->mc, g_variant_get_data(mc), vn->n_mc * ETH_ALEN);
		vn->announce = announce;
		vn->pending = pending;
		net_set_rx_offloads(vn->nd, accepted ? negotiated_caps(f, false) : 0);
		if (vn->timers && accepted && (f & F(VIRTIO_NET_F_GUEST_ANNOUNCE)))
			vtimer_mod(&vn->announce_timer,
				   vclock_now(vtimer_queue_clock(vn->timers)) +
				   VIRTIO_NET_ANNOUNCE_DELAY_NS);
		if (pending)
			net_tx_kick(vn->nd);
	}
	g_variant_unref(t);
	g_variant_unref(mac);
	g_variant_unref(uc);
	g_variant_unref(mc);
	return r;
}

const struct device_ops virtio_net_device_ops = {
	.name = "virtio-net",
	.reset = virtio_net_dev_reset,
	.save = virtio_net_dev_save,
	.load = virtio_net_dev_load,
	.state_version = 1,
	.free = virtio_net_dev_free,
};
