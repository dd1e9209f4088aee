/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/net/net.c - the backend thread, its two bounded queues and the
 * NIC attachment (net.h); the datagram-socket backend.
 */
#include "net.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>

#include "../log.h"
#include "csum.h"
#include "../sandbox/sandbox.h"

struct frame {
	size_t len;
	struct net_offload off;		/* all zero: a plain frame */
	uint8_t data[];
};

/* A bounded FIFO of frames. */
struct fqueue {
	struct frame *f[NET_QUEUE_FRAMES];
	unsigned head, n;
	size_t bytes;
};

struct netdev {
	const struct net_backend_ops *be_ops;
	void *be;
	pthread_t thread;
	bool started;
	int wake_fd;			/* eventfd: work for the thread */

	pthread_mutex_t mu;		/* guards what follows, to the client */
	struct fqueue txq, rxq;
	bool tx_full;			/* net_send said -EAGAIN: tx_ready owed */
	bool rx_kick;			/* net_rx_ready since the last offer */
	bool stop;
	bool link_up;
	unsigned rx_caps;		/* what the NIC takes: net_set_rx_offloads */
	struct net_stats stats;
	pthread_mutex_t *lock;		/* the device lock, set by the first attach */

	/* Written with the device lock held, read with it held. */
	const struct net_client_ops *ops;
	void *opaque;
};

static bool fq_push(struct fqueue *q, struct frame *f)
{
	if (q->n == NET_QUEUE_FRAMES || q->bytes + f->len > NET_QUEUE_BYTES)
		return false;
	q->f[(q->head + q->n) % NET_QUEUE_FRAMES] = f;
	q->n++;
	q->bytes += f->len;
	return true;
}

static struct frame *fq_peek(struct fqueue *q)
{
	return q->n ? q->f[q->head] : NULL;
}

static void fq_drop_head(struct fqueue *q, bool free_it)
{
	struct frame *f = q->f[q->head];

	q->head = (q->head + 1) % NET_QUEUE_FRAMES;
	q->n--;
	q->bytes -= f->len;
	if (free_it)
		free(f);
}

static void fq_clear(struct fqueue *q)
{
	while (q->n)
		fq_drop_head(q, true);
}

static void wake(struct netdev *nd)
{
	uint64_t one = 1;

	if (write(nd->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		vlog_ratelimited(LOG_WARN, "net: wakeup: %s", strerror(errno));
}

int net_attach(struct netdev *nd, const struct net_client_ops *ops,
	       void *opaque, pthread_mutex_t *lock)
{
	int r = 0;

	if (!nd || !ops || !ops->receive || !lock)
		return -EINVAL;
	pthread_mutex_lock(&nd->mu);
	if (nd->lock && nd->lock != lock)
		r = -EINVAL;
	else if (nd->ops)
		r = -EBUSY;
	else
		nd->lock = lock;
	pthread_mutex_unlock(&nd->mu);
	if (r)
		return r;
	nd->ops = ops;
	nd->opaque = opaque;
	return 0;
}

void net_detach(struct netdev *nd)
{
	if (!nd || !nd->ops)
		return;
	nd->ops = NULL;
	nd->opaque = NULL;
	pthread_mutex_lock(&nd->mu);
	nd->stats.rx_dropped += nd->rxq.n;
	fq_clear(&nd->rxq);
	nd->tx_full = false;
	nd->rx_caps = 0;
	pthread_mutex_unlock(&nd->mu);
	if (nd->be_ops->set_rx_offloads)
		nd->be_ops->set_rx_offloads(nd->be, 0);
}

static bool off_plain(const struct net_offload *off)
{
	return !off || (!(off->flags & NET_OFF_F_NEEDS_CSUM) &&
			off->gso_type == NET_GSO_NONE);
}

/* The NET_CAP_* that @off needs on a @len-byte frame; -EINVAL when it is
 * out of shape (net.h, net_send_offload). */
static int off_needs(const struct net_offload *off, size_t len)
{
	unsigned need = 0;
	uint8_t gso = off->gso_type & (uint8_t)~NET_GSO_ECN;

	if (off->flags & ~(NET_OFF_F_NEEDS_CSUM | NET_OFF_F_DATA_VALID))
		return -EINVAL;
	if (off->flags & NET_OFF_F_NEEDS_CSUM) {
		if (off->csum_start >= len ||
		    (size_t)off->csum_start + off->csum_offset + 2 > len)
			return -EINVAL;
		need |= NET_CAP_CSUM;
	}
	if (off->gso_type == NET_GSO_NONE)
		return (int)need;
	if ((gso != NET_GSO_TCPV4 && gso != NET_GSO_TCPV6) ||
	    !(off->flags & NET_OFF_F_NEEDS_CSUM) || !off->gso_size ||
	    off->hdr_len > len)
		return -EINVAL;
	need |= gso == NET_GSO_TCPV4 ? NET_CAP_TSO4 : NET_CAP_TSO6;
	if (off->gso_type & NET_GSO_ECN)
		need |= NET_CAP_TSO_ECN;
	return (int)need;
}

static void count_tx_drop(struct netdev *nd)
{
	pthread_mutex_lock(&nd->mu);
	nd->stats.tx_dropped++;
	pthread_mutex_unlock(&nd->mu);
}

int net_send(struct netdev *nd, const struct iovec *iov, int iovcnt)
{
	return net_send_offload(nd, NULL, iov, iovcnt);
}

int net_send_offload(struct netdev *nd, const struct net_offload *off,
		     const struct iovec *iov, int iovcnt)
{
	size_t len = 0, off_at = 0;
	bool complete = false;
	struct frame *f;
	int r = 0, need = 0;

	for (int i = 0; i < iovcnt; i++) {
		len += iov[i].iov_len;
		if (len > NET_FRAME_MAX)
			break;
	}
	if (len < NET_FRAME_MIN || len > NET_FRAME_MAX) {
		count_tx_drop(nd);
		return -EMSGSIZE;
	}
	if (!off_plain(off)) {
		need = off_needs(off, len);
		if (need < 0 ||
		    ((unsigned)need & ~nd->be_ops->caps & ~NET_CAP_CSUM)) {
			count_tx_drop(nd);
			return -EINVAL;
		}
		/* A partial checksum the backend cannot carry: ours. */
		complete = (unsigned)need & ~nd->be_ops->caps;
	}
	pthread_mutex_lock(&nd->mu);
	if (!nd->link_up) {
		nd->stats.tx_dropped++;
		r = -ENOLINK;
	} else if (nd->txq.n == NET_QUEUE_FRAMES ||
		   nd->txq.bytes + len > NET_QUEUE_BYTES) {
		nd->tx_full = true;
		r = -EAGAIN;
	}
	pthread_mutex_unlock(&nd->mu);
	if (r)
		return r;
	f = malloc(sizeof(*f) + len);
	if (!f)
		return -EAGAIN;
	f->len = len;
	memset(&f->off, 0, sizeof(f->off));
	for (int i = 0; i < iovcnt; i++) {
		memcpy(f->data + off_at, iov[i].iov_base, iov[i].iov_len);
		off_at += iov[i].iov_len;
	}
	if (complete)	/* checked above, on the same length */
		net_csum_complete(f->data, len, off->csum_start,
				  off->csum_offset);
	else if (need)
		f->off = *off;
	f->off.flags &= NET_OFF_F_NEEDS_CSUM;
	pthread_mutex_lock(&nd->mu);
	if (!fq_push(&nd->txq, f)) {	/* filled meanwhile by another vCPU */
		nd->tx_full = true;
		r = -EAGAIN;
	}
	pthread_mutex_unlock(&nd->mu);
	if (r) {
		free(f);
		return r;
	}
	wake(nd);
	return 0;
}

unsigned net_caps(const struct netdev *nd)
{
	return nd->be_ops->caps;
}

void net_set_rx_offloads(struct netdev *nd, unsigned caps)
{
	if (!nd)
		return;
	caps &= nd->be_ops->caps;
	pthread_mutex_lock(&nd->mu);
	nd->rx_caps = caps;
	pthread_mutex_unlock(&nd->mu);
	if (nd->be_ops->set_rx_offloads)
		nd->be_ops->set_rx_offloads(nd->be, caps);
}

void net_tx_kick(struct netdev *nd)
{
	if (!nd)
		return;
	pthread_mutex_lock(&nd->mu);
	nd->tx_full = true;		/* flush_tx owes a tx_ready */
	pthread_mutex_unlock(&nd->mu);
	wake(nd);
}

void net_rx_ready(struct netdev *nd)
{
	bool waiting;

	if (!nd)
		return;
	pthread_mutex_lock(&nd->mu);
	waiting = nd->rxq.n && !nd->rx_kick;
	nd->rx_kick = true;
	pthread_mutex_unlock(&nd->mu);
	if (waiting)
		wake(nd);
}

void net_set_link(struct netdev *nd, bool up)
{
	pthread_mutex_t *lock;

	pthread_mutex_lock(&nd->mu);
	nd->link_up = up;
	lock = nd->lock;
	pthread_mutex_unlock(&nd->mu);
	if (!lock)
		return;
	pthread_mutex_lock(lock);
	if (nd->ops && nd->ops->link_changed)
		nd->ops->link_changed(nd->opaque, up);
	pthread_mutex_unlock(lock);
}

bool net_link_up(const struct netdev *nd)
{
	bool up;

	pthread_mutex_lock((pthread_mutex_t *)&nd->mu);
	up = nd->link_up;
	pthread_mutex_unlock((pthread_mutex_t *)&nd->mu);
	return up;
}

void net_get_stats(struct netdev *nd, struct net_stats *st)
{
	pthread_mutex_lock(&nd->mu);
	*st = nd->stats;
	pthread_mutex_unlock(&nd->mu);
}

const char *net_kind(const struct netdev *nd)
{
	return nd->be_ops->kind;
}

GVariant *net_state_save(struct netdev *nd)
{
	uint32_t version = 0;
	GVariant *v;

	if (!nd || !nd->be_ops->save_state)
		return NULL;
	v = nd->be_ops->save_state(nd->be, &version);
	if (!v)
		return NULL;
	return g_variant_new("(suv)", nd->be_ops->kind, (guint32)version, v);
}

/* @k if it reads as a backend kind (a-z, 1-15 of them), else "unknown":
 * it comes from a file and goes to the log. */
static const char *kind_text(const char *k)
{
	size_t n = strspn(k, "abcdefghijklmnopqrstuvwxyz");

	return n && n < 16 && !k[n] ? k : "unknown";
}

int net_state_load(struct netdev *nd, GVariant *state, char *err,
		   size_t errlen)
{
	const char *kind;
	guint32 version;
	GVariant *v;
	int r = 0;

	if (!g_variant_is_of_type(state, G_VARIANT_TYPE(NET_STATE_TYPE))) {
		snprintf(err, errlen, "net: backend state is of type %s, not %s",
			 g_variant_get_type_string(state), NET_STATE_TYPE);
		return -EINVAL;
	}
	g_variant_get(state, "(&suv)", &kind, &version, &v);
	if (strcmp(kind, nd->be_ops->kind) || !nd->be_ops->load_state)
		/* The user moved the NIC to another backend: its state is of
		 * no use here; the NIC's own section still is. */
		vlog(LOG_WARN, "net %s: the saved backend state is a '%s' backend's: not used",
		     nd->be_ops->kind, kind_text(kind));
	else
		r = nd->be_ops->load_state(nd->be, version, v, err, errlen);
	g_variant_unref(v);
	return r;
}

void net_deliver(struct netdev *nd, const uint8_t *frame, size_t len)
{
	net_deliver_offload(nd, NULL, frame, len);
}

void net_deliver_offload(struct netdev *nd, const struct net_offload *off,
			 const uint8_t *frame, size_t len)
{
	struct frame *f;
	bool ok;
	int need = 0;

	if (len >= NET_FRAME_MIN && len <= NET_FRAME_MAX && off)
		need = off_needs(off, len);
	if (len < NET_FRAME_MIN || len > NET_FRAME_MAX || need < 0 ||
	    ((unsigned)need & ~nd->be_ops->caps)) {
		pthread_mutex_lock(&nd->mu);
		nd->stats.rx_dropped++;
		pthread_mutex_unlock(&nd->mu);
		return;
	}
	f = malloc(sizeof(*f) + len);
	if (!f)
		return;
	f->len = len;
	if (off)
		f->off = *off;
	else
		memset(&f->off, 0, sizeof(f->off));
	memcpy(f->data, frame, len);
	pthread_mutex_lock(&nd->mu);
	ok = nd->lock && nd->link_up && fq_push(&nd->rxq, f);
	if (!ok)
		nd->stats.rx_dropped++;
	pthread_mutex_unlock(&nd->mu);
	if (!ok)
		free(f);
	/* Offered to the NIC by the loop, right after poll_done. */
}

/* Hand @f to the NIC in the form it takes (@caps: its receive offloads):
 * with its metadata, or completed, or dropped (a segment it cannot take:
 * *@dropped, and the length returned as for a frame taken). */
static size_t offer_one(struct netdev *nd, struct frame *f, unsigned caps,
			bool *dropped)
{
	struct iovec iov = { f->data, f->len };
	int need = off_needs(&f->off, f->len);	/* checked on delivery */

	if (nd->ops->receive_offload && (unsigned)need && !((unsigned)need & ~caps))
		return nd->ops->receive_offload(nd->opaque, &f->off, &iov, 1);
	if (f->off.gso_type != NET_GSO_NONE) {
		*dropped = true;	/* the NIC said otherwise since */
		return f->len;
	}
	if (f->off.flags & NET_OFF_F_NEEDS_CSUM) {
		net_csum_complete(f->data, f->len, f->off.csum_start,
				  f->off.csum_offset);
		f->off.flags &= (uint8_t)~NET_OFF_F_NEEDS_CSUM;
		f->off.flags |= NET_OFF_F_DATA_VALID;
	}
	if (nd->ops->receive_offload && (f->off.flags & NET_OFF_F_DATA_VALID) &&
	    (caps & NET_CAP_CSUM))
		return nd->ops->receive_offload(nd->opaque, &f->off, &iov, 1);
	return nd->ops->receive(nd->opaque, &iov, 1);
}

/* Offer queued frames to the NIC until it has no room. */
static void offer_rx(struct netdev *nd)
{
	pthread_mutex_t *lock;

	pthread_mutex_lock(&nd->mu);
	lock = nd->rxq.n ? nd->lock : NULL;
	nd->rx_kick = false;
	pthread_mutex_unlock(&nd->mu);
	if (!lock)
		return;
	pthread_mutex_lock(lock);
	for (;;) {
		struct frame *f;
		unsigned caps;
		bool dropped = false;
		size_t took;

		pthread_mutex_lock(&nd->mu);
		f = fq_peek(&nd->rxq);
		caps = nd->rx_caps;
		pthread_mutex_unlock(&nd->mu);
		if (!f)
			break;
		if (!nd->ops) {		/* no NIC: the frames go nowhere */
			pthread_mutex_lock(&nd->mu);
			nd->stats.rx_dropped += nd->rxq.n;
			fq_clear(&nd->rxq);
			pthread_mutex_unlock(&nd->mu);
			break;
		}
		took = offer_one(nd, f, caps, &dropped);
		if (!took)
			break;
		pthread_mutex_lock(&nd->mu);
		if (dropped) {
			nd->stats.rx_dropped++;
		} else {
			nd->stats.rx_frames++;
			nd->stats.rx_bytes += f->len;
		}
		fq_drop_head(&nd->rxq, true);
		pthread_mutex_unlock(&nd->mu);
	}
	pthread_mutex_unlock(lock);
}

/* Send queued frames; returns whether some are left (output -EAGAIN). */
static bool flush_tx(struct netdev *nd)
{
	bool owed = false, left;
	pthread_mutex_t *lock = NULL;

	for (;;) {
		struct frame *f;
		int r;

		pthread_mutex_lock(&nd->mu);
		f = fq_peek(&nd->txq);
		pthread_mutex_unlock(&nd->mu);
		if (!f)
			break;
		if (off_plain(&f->off))
			r = nd->be_ops->output(nd->be, f->data, f->len);
		else
			r = nd->be_ops->output_offload(nd->be, &f->off,
						       f->data, f->len);
		if (r == -EAGAIN)
			break;
		pthread_mutex_lock(&nd->mu);
		nd->stats.tx_frames++;
		nd->stats.tx_bytes += f->len;
		fq_drop_head(&nd->txq, true);
		pthread_mutex_unlock(&nd->mu);
	}
	pthread_mutex_lock(&nd->mu);
	left = nd->txq.n != 0;
	if (nd->tx_full && nd->txq.n <= NET_QUEUE_FRAMES / 2 &&
	    nd->txq.bytes <= NET_QUEUE_BYTES / 2) {
		nd->tx_full = false;
		owed = true;
		lock = nd->lock;
	}
	pthread_mutex_unlock(&nd->mu);
	if (owed && lock) {
		pthread_mutex_lock(lock);
		if (nd->ops && nd->ops->tx_ready)
			nd->ops->tx_ready(nd->opaque);
		pthread_mutex_unlock(lock);
	}
	return left;
}

static void *net_thread(void *arg)
{
	struct netdev *nd = arg;
	struct pollfd pfd[1 + NET_POLL_MAX];
	bool tx_left = false;
	char name[16];

	snprintf(name, sizeof(name), "net-%s", nd->be_ops->kind);
	sandbox_thread_enter(SANDBOX_THREAD_NET, name);
	for (;;) {
		int timeout = -1, n;
		bool rx_room;

		pthread_mutex_lock(&nd->mu);
		if (nd->stop) {
			pthread_mutex_unlock(&nd->mu);
			break;
		}
		rx_room = nd->rxq.n < NET_QUEUE_FRAMES / 2;
		pthread_mutex_unlock(&nd->mu);

		pfd[0] = (struct pollfd){ .fd = nd->wake_fd, .events = POLLIN };
		n = nd->be_ops->poll_fill(nd->be, pfd + 1, NET_POLL_MAX,
					  &timeout, rx_room, tx_left);
		if (n < 0)
			n = 0;
		if (poll(pfd, 1 + n, timeout) < 0 && errno != EINTR) {
			vlog_ratelimited(LOG_WARN, "net %s: poll: %s", nd->be_ops->kind,
				 strerror(errno));
			usleep(10000);
			continue;
		}
		if (pfd[0].revents & POLLIN) {
			uint64_t v;

			if (read(nd->wake_fd, &v, sizeof(v)) < 0 &&
			    errno != EAGAIN)
				vlog_ratelimited(LOG_WARN, "net: wakeup read: %s",
					 strerror(errno));
		}
		nd->be_ops->poll_done(nd->be, pfd + 1, n);
		tx_left = flush_tx(nd);
		offer_rx(nd);
	}
	return NULL;
}

struct netdev *net_new(const struct net_backend_ops *ops, void *be, int *err)
{
	struct netdev *nd = calloc(1, sizeof(*nd));

	if (!nd) {
		*err = -ENOMEM;
		return NULL;
	}
	nd->be_ops = ops;
	nd->be = be;
	nd->link_up = true;
	pthread_mutex_init(&nd->mu, NULL);
	nd->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (nd->wake_fd < 0) {
		*err = -errno;
		goto fail;
	}
	return nd;
fail:
	pthread_mutex_destroy(&nd->mu);
	free(nd);
	return NULL;
}

int net_start(struct netdev *nd)
{
	sigset_t all, old;
	int r;

	/* Signals are the program's to take (its signal thread or main
	 * loop): the backend's thread blocks them from its start - all but
	 * the synchronous ones and SIGSYS, by which the sandbox reaches
	 * threads that run before it is entered (sandbox.h). */
	sigfillset(&all);
	sigdelset(&all, SIGSYS);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&nd->thread, NULL, net_thread, nd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	nd->started = r == 0;
	return r;
}

void net_stop(struct netdev *nd)
{
	if (!nd)
		return;
	pthread_mutex_lock(&nd->mu);
	nd->stop = true;
	pthread_mutex_unlock(&nd->mu);
	wake(nd);
	if (nd->started)
		pthread_join(nd->thread, NULL);
	nd->started = false;
}

void net_free(struct netdev *nd)
{
	if (!nd)
		return;
	net_stop(nd);
	nd->be_ops->free(nd->be);
	fq_clear(&nd->txq);
	fq_clear(&nd->rxq);
	close(nd->wake_fd);
	pthread_mutex_destroy(&nd->mu);
	free(nd);
}

/* ---- the datagram-socket backend ----------------------------------------- */

/* With a header: struct virtio_net_hdr without num_buffers, little-endian
 * (what a tap with IFF_VNET_HDR reads and writes). */
#define SOCK_HDR_LEN	10

struct sock_be {
	int fd;
	bool dead;			/* hung up: stop polling it */
	bool vnet;			/* each datagram: header, frame */
	uint8_t buf[SOCK_HDR_LEN + NET_FRAME_MAX];
	struct netdev *nd;
};

static int sock_poll_fill(void *be, struct pollfd *pfd, int max,
			  int *timeout_ms, bool rx_room, bool tx_pending)
{
	struct sock_be *s = be;

	(void)max;
	(void)timeout_ms;
	if (s->dead)
		return 0;
	pfd[0] = (struct pollfd){
		.fd = s->fd,
		.events = (rx_room ? POLLIN : 0) | (tx_pending ? POLLOUT : 0),
	};
	return 1;
}

void net_offload_from_hdr(struct net_offload *off, const uint8_t *h)
{
	*off = (struct net_offload){
		.flags = h[0], .gso_type = h[1],
		.hdr_len = (uint16_t)(h[2] | h[3] << 8),
		.gso_size = (uint16_t)(h[4] | h[5] << 8),
		.csum_start = (uint16_t)(h[6] | h[7] << 8),
		.csum_offset = (uint16_t)(h[8] | h[9] << 8),
	};
}

void net_offload_to_hdr(uint8_t *h, const struct net_offload *off)
{
	static const struct net_offload none;

	if (!off)
		off = &none;
	h[0] = off->flags;
	h[1] = off->gso_type;
	h[2] = (uint8_t)off->hdr_len;
	h[3] = (uint8_t)(off->hdr_len >> 8);
	h[4] = (uint8_t)off->gso_size;
	h[5] = (uint8_t)(off->gso_size >> 8);
	h[6] = (uint8_t)off->csum_start;
	h[7] = (uint8_t)(off->csum_start >> 8);
	h[8] = (uint8_t)off->csum_offset;
	h[9] = (uint8_t)(off->csum_offset >> 8);
}

static void sock_poll_done(void *be, struct pollfd *pfd, int n)
{
	struct sock_be *s = be;

	if (n < 1)
		return;
	if (!(pfd[0].revents & POLLIN)) {
		if (pfd[0].revents & (POLLHUP | POLLERR | POLLNVAL)) {
			vlog_ratelimited(LOG_WARN, "net socket: the peer hung up");
			s->dead = true;
		}
		return;
	}
	/* A bounded batch, so that transmit gets its turn. */
	for (int i = 0; i < 64; i++) {
		ssize_t len = recv(s->fd, s->buf, sizeof(s->buf), MSG_DONTWAIT);
		struct net_offload off;

		if (len < 0)
			break;
		if (!s->vnet) {
			net_deliver(s->nd, s->buf, (size_t)len);
		} else if (len >= SOCK_HDR_LEN) {
			net_offload_from_hdr(&off, s->buf);
			net_deliver_offload(s->nd, &off, s->buf + SOCK_HDR_LEN,
					    (size_t)len - SOCK_HDR_LEN);
		}
	}
}

static int sock_output_offload(void *be, const struct net_offload *off,
			       const uint8_t *frame, size_t len)
{
	struct sock_be *s = be;
	uint8_t h[SOCK_HDR_LEN];
	struct iovec iov[2] = { { h, sizeof(h) }, { (void *)frame, len } };
	struct msghdr m = { .msg_iov = iov + !s->vnet, .msg_iovlen = 1 + s->vnet };

	net_offload_to_hdr(h, off);
	if (sendmsg(s->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
	    (errno == EAGAIN || errno == ENOBUFS))
		return -EAGAIN;
	return 0;	/* sent, or lost as on a wire (peer gone...) */
}

static int sock_output(void *be, const uint8_t *frame, size_t len)
{
	return sock_output_offload(be, NULL, frame, len);
}

static void sock_free(void *be)
{
	struct sock_be *s = be;

	close(s->fd);
	free(s);
}

static const struct net_backend_ops sock_ops = {
	.kind = "socket",
	.poll_fill = sock_poll_fill,
	.poll_done = sock_poll_done,
	.output = sock_output,
	.free = sock_free,
};

/* The peer sees the header and takes what it says: nothing to ask. */
static const struct net_backend_ops sock_vnet_ops = {
	.kind = "socket",
	.poll_fill = sock_poll_fill,
	.poll_done = sock_poll_done,
	.output = sock_output,
	.caps = NET_CAP_ALL,
	.output_offload = sock_output_offload,
	.free = sock_free,
};

static struct netdev *sock_new(int fd, bool vnet, int *err)
{
	struct sock_be *s = calloc(1, sizeof(*s));

	if (!s) {
		*err = -ENOMEM;
		return NULL;
	}
	s->fd = fd;
	s->vnet = vnet;
	s->nd = net_new(vnet ? &sock_vnet_ops : &sock_ops, s, err);
	if (!s->nd) {
		free(s);
		return NULL;
	}
	*err = net_start(s->nd);
	if (*err) {
		net_free(s->nd);	/* frees s and closes fd */
		return NULL;
	}
	return s->nd;
}

struct netdev *net_socket_new(int fd, int *err)
{
	return sock_new(fd, false, err);
}

struct netdev *net_socket_vnet_new(int fd, int *err)
{
	return sock_new(fd, true, err);
}
