/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_virtio_net.c - virtio-net on the virtio 1.x PCI
 * transport, driven the way a guest driver does it (BARs, features,
 * three queues set up through the common configuration, rings built in
 * guest RAM by vring_driver.h, kicks through the notify area), over a real
 * backend: the datagram-socket one (net/net.h) on one end of a
 * socketpair(AF_UNIX, SOCK_SEQPACKET), the test holding the other end as
 * "the network".  Frames the guest sends are read from that end byte for
 * byte; frames the test writes there must land in the guest's buffers.
 * Interrupts are recorded through the PCI host's ops.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"
#include "statetest.h"
#include "virtio_pci_driver.h"
#include "vring_driver.h"

#include "bus.h"
#include "devices/pci.h"
#include "log.h"
#include "mem.h"
#include "net/net.h"
#include "timer.h"
#include "virtio/virtio_net.h"
#include "virtio/virtio_pci.h"
#include "sandboxed.h"

#define RAM_SIZE	(64u << 20)
#define DEVFN		(6 << 3)
#define BAR_ADDR	0xfe000000ull
#define MSIX_ADDR	0xfe100000ull
#define RX_BASE		0x0100000ull
#define TX_BASE		0x1000000ull
#define CTL_BASE	0x2000000ull
#define DATA_LEN	(8u << 20)
#define RXQ_SIZE	64
#define TXQ_SIZE	256
#define CTLQ_SIZE	16
#define MSI_BASE_DATA	0x40

#define F(bit)		(1ull << (bit))
#define ALL_FEATURES	(~0ull)

static struct guest_mem mem;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct bus *pio, *mmio;
static struct pci_host *host;
static struct virtio_net *vn;
static struct netdev *nd;
static int peer = -1;			/* the network's end */
static struct vtimer_queue *timers;	/* NULL but in test_announce_on_load */
static struct fake_clock fc;
static struct vdrv rxd, txd, ctld;
static struct vpci vp = {
	.lock = &lock, .devfn = DEVFN, .bar = BAR_ADDR, .msix = MSIX_ADDR,
};
/* The same function for accesses made with the device lock held. */
static struct vpci vp_raw = {
	.devfn = DEVFN, .bar = BAR_ADDR, .msix = MSIX_ADDR,
};
static uint64_t rx_gpa[RXQ_SIZE];	/* receive buffer of each head */
static uint64_t negotiated;

static const uint8_t MAC[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t OTHER[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };
static const uint8_t BCAST[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const uint8_t MCAST[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 };
static const uint8_t MCAST2[6] = { 0x33, 0x33, 0x00, 0x00, 0x00, 0x01 };

/* What the PCI host delivered (under the device lock). */
static struct vpci_irqs host_irqs = { .msi_base = MSI_BASE_DATA };

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* ---- accesses, as a vCPU makes them (the _raw ones with the lock held) -- */

static uint16_t cfg_status(void)
{
	return (uint16_t)vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_NET_CFG_STATUS, 2);
}

static struct virtio_net_stats stats(void)
{
	struct virtio_net_stats st;

	pthread_mutex_lock(&lock);
	virtio_net_get_stats(vn, &st);
	pthread_mutex_unlock(&lock);
	return st;
}

/* ---- device set-up -------------------------------------------------------- */

/* The device on the backend @nd, the device lock held. */
static struct virtio_net *new_device_raw(void)
{
	struct virtio_net_config c = {
		.pci = host, .devfn = DEVFN, .mem = &mem, .lock = &lock,
		.backend = nd, .timers = timers,
	};
	struct virtio_net *v;
	char err[256] = "";

	memcpy(c.mac, MAC, 6);
	v = virtio_net_new(&c, err, sizeof(err));
	CHECK(v != NULL);
	if (!v) {
		fprintf(stderr, "  %s\n", err);
		exit(1);
	}
	return v;
}

/* The device on a datagram backend; @vnet: one that carries offloads
 * (each datagram a 10-byte virtio-net header and the frame, as a tap). */
static void create_device_on(bool vnet)
{
	int sv[2], err = 0;

	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
	nd = vnet ? net_socket_vnet_new(sv[0], &err) : net_socket_new(sv[0], &err);
	CHECK(nd != NULL);
	if (!nd)
		exit(1);
	peer = sv[1];
	vpci_irqs_clear(&host_irqs);
	pthread_mutex_lock(&lock);
	vn = new_device_raw();
	vpci_map_bars(&vp_raw);
	pthread_mutex_unlock(&lock);
}

static void create_device(void)
{
	create_device_on(false);
}

static void destroy_device(void)
{
	pthread_mutex_lock(&lock);
	CHECK_EQ(host_irqs.msi_bad, 0);
	virtio_net_free(vn);
	pthread_mutex_unlock(&lock);
	net_free(nd);
	close(peer);
	vn = NULL;
	nd = NULL;
	peer = -1;
}

static void setup_queue(unsigned q, struct vdrv *d, uint64_t base,
			uint16_t size, bool msix)
{
	uint16_t max = 0;

	vdrv_init(d, &mem, size, base, DATA_LEN);
	CHECK(vpci_queue_setup(&vp, q, d, msix ? (int)q + 1 : -1, &max));
	CHECK_EQ(max, VIRTIO_NET_QUEUE_SIZE);
}

/* §3.1.1 and §5.1.5: reset, features (@want & offered), the receive,
 * transmit and (with CTRL_VQ) control queues, DRIVER_OK.  Vectors: config
 * 0, queue q -> q + 1.  Returns the features. */
static uint64_t driver_init(bool msix, uint64_t want)
{
	uint64_t f;

	CHECK(vpci_driver_start(&vp, want, 0, msix, 4, MSI_BASE_DATA, &f));
	setup_queue(VIRTIO_NET_RXQ, &rxd, RX_BASE, RXQ_SIZE, msix);
	setup_queue(VIRTIO_NET_TXQ, &txd, TX_BASE, TXQ_SIZE, msix);
	if (f & F(VIRTIO_NET_F_CTRL_VQ))
		setup_queue(VIRTIO_NET_CTRLQ, &ctld, CTL_BASE, CTLQ_SIZE, msix);
	CHECK_EQ(vpci_driver_ok(&vp), 0x0f);
	negotiated = f;
	return f;
}

/* ---- frames ---------------------------------------------------------------- */

/* An Ethernet frame of @len bytes to @dst, payload tagged by @tag. */
static void make_frame(uint8_t *f, size_t len, const uint8_t *dst, uint32_t tag)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, OTHER, 6);
	f[12] = 0x88;			/* local experimental ethertype */
	f[13] = 0xb5;
	for (size_t i = 14; i < len; i++)
		f[i] = (uint8_t)(tag * 7 + i);
	if (len >= 18)
		memcpy(f + 14, &tag, 4);
}

/* A datagram from the network's end, waiting up to @ms; its length, or
 * -1 if none came. */
static ssize_t peer_recv(void *buf, size_t cap, int ms)
{
	struct pollfd p = { .fd = peer, .events = POLLIN };

	if (poll(&p, 1, ms) != 1)
		return -1;
	return recv(peer, buf, cap, MSG_DONTWAIT);
}

static void peer_send(const void *f, size_t len)
{
	CHECK_EQ(send(peer, f, len, 0), (ssize_t)len);
}

/* Wait (up to 5 s) for @d's used idx to be @idx (@or_past: at least). */
static bool wait_used_at(struct vdrv *d, uint16_t idx, bool or_past)
{
	return vdrv_wait_used(d, &lock, idx, or_past, 1000, 5000);
}

static bool wait_used(struct vdrv *d, uint16_t idx)
{
	return wait_used_at(d, idx, false);
}

/*
 * Transmit: a header @hdr and frame @f of @len bytes, the header cut at
 * @hsplit (0: one piece) and the frame over @pieces descriptors, directly
 * or through an indirect table.  Not kicked.
 */
static void tx_add(const uint8_t *hdr, const uint8_t *f, size_t len,
		   unsigned hsplit, unsigned pieces, bool indirect)
{
	struct vbuf b[16];
	unsigned n = 0;
	uint64_t h = vdrv_alloc(&txd, VIRTIO_NET_HDR_LEN, 2);
	uint64_t d = vdrv_alloc(&txd, len ? len : 1, 2);
	size_t off = 0;

	memcpy(vdrv_hva(&txd, h, VIRTIO_NET_HDR_LEN), hdr, VIRTIO_NET_HDR_LEN);
	if (len)
		memcpy(vdrv_hva(&txd, d, len), f, len);
	if (hsplit) {
		b[n++] = (struct vbuf){ h, hsplit, false };
		b[n++] = (struct vbuf){ h + hsplit, VIRTIO_NET_HDR_LEN - hsplit, false };
	} else {
		b[n++] = (struct vbuf){ h, VIRTIO_NET_HDR_LEN, false };
	}
	for (unsigned i = 0; i < pieces; i++) {
		size_t take = i + 1 == pieces ? len - off : len / pieces;

		b[n++] = (struct vbuf){ d + off, (uint32_t)take, false };
		off += take;
	}
	vdrv_add(&txd, b, n, indirect);
}

static const uint8_t PLAIN_HDR[VIRTIO_NET_HDR_LEN] = { 0 };

/* Send one plain frame and return the used element's count (1). */
static void tx_plain(const uint8_t *f, size_t len)
{
	uint16_t before = txd.avail_idx;

	tx_add(PLAIN_HDR, f, len, 0, 1, false);
	vpci_kick(&vp, VIRTIO_NET_TXQ);
	CHECK(wait_used(&txd, (uint16_t)(before + 1)));
}

/* Post @n receive buffers of @size bytes (one descriptor each). */
static void rx_post(unsigned n, uint32_t size)
{
	for (unsigned i = 0; i < n; i++) {
		struct vbuf b = { vdrv_alloc(&rxd, size, 64), size, true };
		uint16_t head;

		memset(vdrv_hva(&rxd, b.gpa, size), 0xee, size);
		head = vdrv_add(&rxd, &b, 1, false);
		rx_gpa[head] = b.gpa;
	}
}

/*
 * The next received frame: waits (up to 5 s) for its first used element,
 * reads the header, then the num_buffers - 1 elements that follow.
 * Returns the frame's length (copied into @out), -1 if none came; the
 * header in @hdr, the buffers it took in *@nbufs.
 */
static ssize_t rx_get(uint8_t *out, size_t cap, uint8_t *hdr, unsigned *nbufs)
{
	uint32_t id = 0, len = 0;
	size_t got = 0;
	unsigned nb;

	if (!wait_used_at(&rxd, (uint16_t)(rxd.used_seen + 1), true))
		return -1;
	CHECK(vdrv_get_used(&rxd, &id, &len));
	CHECK(id < RXQ_SIZE);
	if (id >= RXQ_SIZE || len < VIRTIO_NET_HDR_LEN)
		return -1;
	memcpy(hdr, vdrv_hva(&rxd, rx_gpa[id], VIRTIO_NET_HDR_LEN),
	       VIRTIO_NET_HDR_LEN);
	nb = hdr[10] | hdr[11] << 8;
	*nbufs = nb;
	if (len - VIRTIO_NET_HDR_LEN <= cap) {
		memcpy(out, vdrv_hva(&rxd, rx_gpa[id] + VIRTIO_NET_HDR_LEN,
				     len - VIRTIO_NET_HDR_LEN),
		       len - VIRTIO_NET_HDR_LEN);
		got = len - VIRTIO_NET_HDR_LEN;
	}
	for (unsigned i = 1; i < nb; i++) {
		CHECK(wait_used_at(&rxd, (uint16_t)(rxd.used_seen + 1), true));
		if (!vdrv_get_used(&rxd, &id, &len) || id >= RXQ_SIZE)
			return -1;
		if (got + len <= cap)
			memcpy(out + got, vdrv_hva(&rxd, rx_gpa[id], len), len);
		got += len;
	}
	return (ssize_t)got;
}

/* Send @f from the network and check it lands whole in one buffer. */
static void rx_expect(const uint8_t *f, size_t len)
{
	uint8_t got[2048], hdr[VIRTIO_NET_HDR_LEN];
	unsigned nb = 0;

	peer_send(f, len);
	CHECK_EQ(rx_get(got, sizeof(got), hdr, &nb), (ssize_t)len);
	CHECK_EQ(nb, 1);
	CHECK(memcmp(got, f, len) == 0);
}

/* Send @f from the network and wait (up to 5 s) until the filter has
 * dropped it. */
static void rx_drop(const uint8_t *f, size_t len)
{
	uint64_t before = stats().rx_filtered;

	peer_send(f, len);
	for (int i = 0; i < 5000 && stats().rx_filtered == before; i++)
		usleep(1000);
	CHECK_EQ(stats().rx_filtered, before + 1);
}

/* ---- control queue ---------------------------------------------------------- */

/* One command, data in its own descriptor (if any); returns the ack. */
static uint8_t ctrl_cmd(uint8_t cls, uint8_t cmd, const void *data, size_t dlen)
{
	struct vbuf b[3];
	unsigned n = 0;
	uint64_t h = vdrv_alloc(&ctld, 2, 2);
	uint64_t ack = vdrv_alloc(&ctld, 1, 1);
	uint8_t *hp = vdrv_hva(&ctld, h, 2);
	uint16_t before = ctld.avail_idx;

	hp[0] = cls;
	hp[1] = cmd;
	b[n++] = (struct vbuf){ h, 2, false };
	if (dlen) {
		uint64_t d = vdrv_alloc(&ctld, dlen, 2);

		memcpy(vdrv_hva(&ctld, d, dlen), data, dlen);
		b[n++] = (struct vbuf){ d, (uint32_t)dlen, false };
	}
	*(uint8_t *)vdrv_hva(&ctld, ack, 1) = 0xff;
	b[n++] = (struct vbuf){ ack, 1, true };
	vdrv_add(&ctld, b, n, false);
	vpci_kick(&vp, VIRTIO_NET_CTRLQ);
	CHECK(wait_used(&ctld, (uint16_t)(before + 1)));
	{
		uint32_t id, len;

		CHECK(vdrv_get_used(&ctld, &id, &len));
		CHECK_EQ(len, 1);
	}
	return *(uint8_t *)vdrv_hva(&ctld, ack, 1);
}

static uint8_t rx_mode(uint8_t cmd, uint8_t on)
{
	return ctrl_cmd(VIRTIO_NET_CTRL_RX, cmd, &on, 1);
}

/* MAC_TABLE_SET with @nu unicast then @nm multicast addresses. */
static uint8_t mac_table(const uint8_t (*u)[6], uint32_t nu,
			 const uint8_t (*m)[6], uint32_t nm)
{
	size_t len = 8 + 6 * (nu + nm);
	uint8_t *b = malloc(len);
	uint8_t r;

	memcpy(b, &nu, 4);
	memcpy(b + 4, u, 6 * nu);
	memcpy(b + 4 + 6 * nu, &nm, 4);
	memcpy(b + 8 + 6 * nu, m, 6 * nm);
	r = ctrl_cmd(VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, b, len);
	free(b);
	return r;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_discovery_and_features(void)
{
	uint64_t f, want_off = F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_MTU) |
		F(VIRTIO_NET_F_GUEST_TSO4) | F(VIRTIO_NET_F_GUEST_TSO6) |
		F(VIRTIO_NET_F_GUEST_UFO) | F(VIRTIO_NET_F_HOST_TSO4) |
		F(VIRTIO_NET_F_HOST_TSO6) | F(VIRTIO_NET_F_HOST_UFO) |
		F(VIRTIO_NET_F_CTRL_VLAN) | F(VIRTIO_NET_F_MQ);

	create_device();
	CHECK_EQ(pci_config_read(host, 0, DEVFN, 0, 4), 0x10411af4u);
	CHECK_EQ(pci_config_read(host, 0, DEVFN, 8, 4) >> 8, 0x020000);
	f = vpci_device_features(&vp);
	CHECK(f & F(VIRTIO_F_VERSION_1));
	CHECK(f & F(VIRTIO_NET_F_CSUM));
	CHECK(f & F(VIRTIO_NET_F_MAC));
	CHECK(f & F(VIRTIO_NET_F_MRG_RXBUF));
	CHECK(f & F(VIRTIO_NET_F_STATUS));
	CHECK(f & F(VIRTIO_NET_F_CTRL_VQ));
	CHECK(f & F(VIRTIO_NET_F_CTRL_RX));
	CHECK(f & F(VIRTIO_NET_F_CTRL_RX_EXTRA));
	CHECK(f & F(VIRTIO_NET_F_GUEST_ANNOUNCE));
	CHECK(f & F(VIRTIO_NET_F_CTRL_MAC_ADDR));
	CHECK_EQ(f & want_off, 0);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_COMMON_NUMQ, 2), 3);
	for (unsigned i = 0; i < 6; i++)
		CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + i, 1), MAC[i]);
	CHECK_EQ(cfg_status(), VIRTIO_NET_S_LINK_UP);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_NET_CFG_MAX_VQ_PAIRS, 2), 1);
	/* The mac is read-only in 1.x. */
	vpci_wr(&vp, VIRTIO_PCI_DEVICE_OFF, 0xff, 1);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF, 1), MAC[0]);

	/* §5.1.3.1 dependencies: CTRL_RX without CTRL_VQ, RX_EXTRA without
	 * CTRL_RX are refused. */
	vpci_set_status(&vp, 0);
	vpci_set_status(&vp, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	vpci_write_driver_features(&vp, F(VIRTIO_F_VERSION_1) | F(VIRTIO_NET_F_CTRL_RX));
	vpci_set_status(&vp, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		   VIRTIO_CONFIG_S_FEATURES_OK);
	CHECK(!(vpci_status(&vp) & VIRTIO_CONFIG_S_FEATURES_OK));
	vpci_set_status(&vp, 0);
	vpci_set_status(&vp, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	vpci_write_driver_features(&vp, F(VIRTIO_F_VERSION_1) | F(VIRTIO_NET_F_CTRL_VQ) |
			      F(VIRTIO_NET_F_CTRL_RX_EXTRA));
	vpci_set_status(&vp, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		   VIRTIO_CONFIG_S_FEATURES_OK);
	CHECK(!(vpci_status(&vp) & VIRTIO_CONFIG_S_FEATURES_OK));

	/* Everything offered, and the minimal driver (VERSION_1 only). */
	CHECK_EQ(driver_init(true, ALL_FEATURES), f);
	CHECK_EQ(driver_init(false, F(VIRTIO_F_VERSION_1)), F(VIRTIO_F_VERSION_1));
	destroy_device();
}

/* Frames out: byte-exact whatever the descriptor layout. */
static void test_tx(void)
{
	static uint8_t f[1514], got[2048];
	static const struct { unsigned hsplit, pieces; bool ind; size_t len; } c[] = {
		{ 0, 1, false, 60 }, { 0, 1, false, 1514 }, { 5, 3, false, 1000 },
		{ 1, 7, true, 1514 }, { 11, 2, false, 14 }, { 0, 0, false, 0 },
	};
	struct net_stats ns;

	create_device();
	driver_init(true, ALL_FEATURES);
	for (unsigned i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		uint16_t before = txd.avail_idx;
		uint32_t id = 0, len = ~0u;

		make_frame(f, c[i].len, OTHER, i);
		tx_add(PLAIN_HDR, f, c[i].len, c[i].hsplit, c[i].pieces, c[i].ind);
		vpci_kick(&vp, VIRTIO_NET_TXQ);
		CHECK(wait_used(&txd, (uint16_t)(before + 1)));
		CHECK(vdrv_get_used(&txd, &id, &len));
		CHECK_EQ(len, 0);
		if (c[i].len < NET_FRAME_MIN)
			continue;	/* a header alone: dropped */
		CHECK_EQ(peer_recv(got, sizeof(got), 2000), (ssize_t)c[i].len);
		CHECK(memcmp(got, f, c[i].len) == 0);
	}
	/* The transmit queue's interrupt, vector 2. */
	pthread_mutex_lock(&lock);
	CHECK(host_irqs.msi[2] >= 1);
	pthread_mutex_unlock(&lock);
	CHECK_EQ(peer_recv(got, sizeof(got), 50), -1);
	net_get_stats(nd, &ns);
	CHECK_EQ(ns.tx_frames, 5);
	destroy_device();
}

/* Internet checksum of @len bytes (RFC 1071), folded, not complemented. */
static uint16_t sum16(uint32_t sum, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		sum += (i & 1) ? p[i] : (uint32_t)p[i] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/*
 * An IPv4 frame carrying a UDP (@proto 17) or TCP (6) segment with
 * @payload bytes; its checksum field holds the pseudo-header sum the way
 * a driver leaves it for NEEDS_CSUM.  Returns the frame length; the
 * field's offset from the transport header in *@csum_off.
 */
static size_t ip_frame(uint8_t *f, uint8_t proto, size_t payload,
		       uint16_t *csum_off)
{
	size_t thl = proto == 6 ? 20 : 8, tlen = thl + payload;
	uint8_t *ip = f + 14, *t = ip + 20, pseudo[12];
	uint16_t ps;

	memcpy(f, OTHER, 6);
	memcpy(f + 6, MAC, 6);
	f[12] = 0x08;
	f[13] = 0x00;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[2] = (uint8_t)((20 + tlen) >> 8);
	ip[3] = (uint8_t)(20 + tlen);
	ip[8] = 64;
	ip[9] = proto;
	memcpy(ip + 12, "\x0a\x00\x02\x0f\x0a\x00\x02\x02", 8);
	memset(t, 0, thl);
	t[0] = 0x30; t[1] = 0x39;	/* ports 12345 -> 53 */
	t[2] = 0x00; t[3] = 0x35;
	if (proto == 17) {
		t[4] = (uint8_t)(tlen >> 8);
		t[5] = (uint8_t)tlen;
		*csum_off = 6;
	} else {
		t[12] = 0x50;		/* data offset 5 */
		t[13] = 0x18;
		*csum_off = 16;
	}
	for (size_t i = 0; i < payload; i++)
		t[thl + i] = (uint8_t)(i * 13 + proto);
	memcpy(pseudo, ip + 12, 8);
	pseudo[8] = 0;
	pseudo[9] = proto;
	pseudo[10] = (uint8_t)(tlen >> 8);
	pseudo[11] = (uint8_t)tlen;
	ps = sum16(0, pseudo, 12);
	t[*csum_off] = (uint8_t)(ps >> 8);
	t[*csum_off + 1] = (uint8_t)ps;
	return 34 + tlen;
}

/* VIRTIO_NET_F_CSUM: the device completes the checksum; verified by
 * summing pseudo-header and segment (must come to 0xffff) and against a
 * checksum computed from scratch. */
static void test_tx_checksum(void)
{
	static uint8_t f[1514], want[1514], got[2048];
	static const struct { uint8_t proto; size_t payload; unsigned pieces; } c[] = {
		{ 17, 100, 1 }, { 17, 333, 3 }, { 6, 1000, 4 }, { 6, 1, 1 },
		{ 17, 0, 1 },
	};
	uint8_t hdr[VIRTIO_NET_HDR_LEN];

	create_device();
	driver_init(true, ALL_FEATURES);
	for (unsigned i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		uint16_t off, got_sum, ref;
		size_t len = ip_frame(f, c[i].proto, c[i].payload, &off);
		size_t tlen = len - 34;
		uint8_t pseudo[12];

		memset(hdr, 0, sizeof(hdr));
		hdr[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		hdr[6] = 34;				/* csum_start */
		hdr[8] = (uint8_t)off;			/* csum_offset */
		tx_add(hdr, f, len, 3, c[i].pieces, i & 1);
		vpci_kick(&vp, VIRTIO_NET_TXQ);
		CHECK_EQ(peer_recv(got, sizeof(got), 2000), (ssize_t)len);
		/* Everything but the checksum field as sent. */
		memcpy(want, f, len);
		want[34 + off] = got[34 + off];
		want[34 + off + 1] = got[34 + off + 1];
		CHECK(memcmp(got, want, len) == 0);
		/* Pseudo-header + segment sums to all ones. */
		memcpy(pseudo, f + 26, 8);
		pseudo[8] = 0;
		pseudo[9] = c[i].proto;
		pseudo[10] = (uint8_t)(tlen >> 8);
		pseudo[11] = (uint8_t)tlen;
		got_sum = sum16(sum16(0, pseudo, 12), got + 34, tlen);
		CHECK_EQ(got_sum, 0xffff);
		/* From scratch: the field zeroed. */
		want[34 + off] = want[34 + off + 1] = 0;
		ref = (uint16_t)~sum16(sum16(0, pseudo, 12), want + 34, tlen);
		if (ref == 0)
			ref = 0xffff;
		CHECK_EQ(got[34 + off] << 8 | got[34 + off + 1], ref);
	}
	CHECK_EQ(stats().tx_bad, 0);
	destroy_device();
}

/*
 * A backend that carries offloads (TAP's kind): the device offers the
 * checksum and TSO offloads both ways; a 30 KB TCP segment goes out as
 * one frame with the driver's header, one comes in across mergeable
 * buffers with the backend's; a driver that did not take them gets
 * neither; the feature rules of §5.1.3.1 hold.
 */
static void test_offloads(void)
{
	enum { BIG = 30000 };
	static uint8_t f[BIG], got[10 + BIG + 100];
	const uint64_t off_feat = F(VIRTIO_NET_F_GUEST_CSUM) |
		F(VIRTIO_NET_F_GUEST_TSO4) | F(VIRTIO_NET_F_GUEST_TSO6) |
		F(VIRTIO_NET_F_GUEST_ECN) | F(VIRTIO_NET_F_HOST_TSO4) |
		F(VIRTIO_NET_F_HOST_TSO6) | F(VIRTIO_NET_F_HOST_ECN);
	struct net_offload want = { .flags = NET_OFF_F_NEEDS_CSUM,
				    .gso_type = NET_GSO_TCPV4, .hdr_len = 54,
				    .gso_size = 1448, .csum_start = 34,
				    .csum_offset = 16 }, o;
	uint8_t hdr[VIRTIO_NET_HDR_LEN] = { 0 }, dg[10 + BIG];
	uint16_t csum_off;
	unsigned nb = 0;
	uint64_t bad0;

	create_device_on(true);
	CHECK_EQ(vpci_device_features(&vp) & off_feat, off_feat);
	/* GUEST_TSO4 needs GUEST_CSUM, HOST_TSO4 needs CSUM. */
	vpci_set_status(&vp, 0);
	vpci_set_status(&vp, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	vpci_write_driver_features(&vp, F(VIRTIO_F_VERSION_1) | F(VIRTIO_NET_F_GUEST_TSO4));
	vpci_set_status(&vp, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		   VIRTIO_CONFIG_S_FEATURES_OK);
	CHECK(!(vpci_status(&vp) & VIRTIO_CONFIG_S_FEATURES_OK));
	vpci_set_status(&vp, 0);
	vpci_set_status(&vp, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	vpci_write_driver_features(&vp, F(VIRTIO_F_VERSION_1) | F(VIRTIO_NET_F_HOST_TSO4));
	vpci_set_status(&vp, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		   VIRTIO_CONFIG_S_FEATURES_OK);
	CHECK(!(vpci_status(&vp) & VIRTIO_CONFIG_S_FEATURES_OK));

	/* Out: one TSO frame, header and bytes as the driver wrote them. */
	CHECK_EQ(driver_init(true, ALL_FEATURES) & off_feat, off_feat);
	ip_frame(f, 6, BIG - 54, &csum_off);
	hdr[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	hdr[1] = VIRTIO_NET_HDR_GSO_TCPV4;
	hdr[2] = 54;
	hdr[4] = 1448 & 0xff, hdr[5] = 1448 >> 8;
	hdr[6] = 34;
	hdr[8] = (uint8_t)csum_off;
	tx_add(hdr, f, BIG, 0, 5, false);
	vpci_kick(&vp, VIRTIO_NET_TXQ);
	CHECK_EQ(peer_recv(got, sizeof(got), 2000), 10 + BIG);
	net_offload_from_hdr(&o, got);
	CHECK(!memcmp(&o, &want, sizeof(o)));
	CHECK(memcmp(got + 10, f, BIG) == 0);

	/* In: across 4 KiB mergeable buffers, the header passed through. */
	rx_post(RXQ_SIZE - 2, 4096);
	vpci_kick(&vp, VIRTIO_NET_RXQ);
	memcpy(f, MAC, 6);
	net_offload_to_hdr(dg, &want);
	memcpy(dg + 10, f, BIG);
	peer_send(dg, 10 + BIG);
	CHECK_EQ(rx_get(got, sizeof(got), hdr, &nb), BIG);
	CHECK_EQ(nb, (BIG + 12 + 4095) / 4096);
	CHECK(memcmp(got, f, BIG) == 0);
	CHECK_EQ(hdr[0], NET_OFF_F_NEEDS_CSUM);
	CHECK_EQ(hdr[1], VIRTIO_NET_HDR_GSO_TCPV4);
	CHECK_EQ(hdr[2] | hdr[3] << 8, 54);
	CHECK_EQ(hdr[4] | hdr[5] << 8, 1448);
	CHECK_EQ(hdr[6] | hdr[7] << 8, 34);
	CHECK_EQ(hdr[8] | hdr[9] << 8, csum_off);

	/* A driver without the offloads: TSO refused both ways. */
	destroy_device();
	create_device_on(true);
	CHECK_EQ(driver_init(true, ALL_FEATURES & ~off_feat) & off_feat, 0);
	bad0 = stats().tx_bad;
	memcpy(f, OTHER, 6);
	net_offload_to_hdr(hdr, &want);
	hdr[10] = hdr[11] = 0;
	tx_add(hdr, f, BIG, 0, 1, false);
	vpci_kick(&vp, VIRTIO_NET_TXQ);
	CHECK_EQ(peer_recv(got, sizeof(got), 200), -1);
	CHECK_EQ(stats().tx_bad, bad0 + 1);
	rx_post(RXQ_SIZE - 2, 4096);
	vpci_kick(&vp, VIRTIO_NET_RXQ);
	memcpy(f, MAC, 6);
	net_offload_to_hdr(dg, &want);
	memcpy(dg + 10, f, BIG);
	peer_send(dg, 10 + BIG);	/* dropped on the way */
	make_frame(f, 100, MAC, 5);
	net_offload_to_hdr(dg, NULL);
	memcpy(dg + 10, f, 100);
	peer_send(dg, 10 + 100);
	CHECK_EQ(rx_get(got, sizeof(got), hdr, &nb), 100);
	CHECK(memcmp(got, f, 100) == 0);
	CHECK_EQ(hdr[1], VIRTIO_NET_HDR_GSO_NONE);
	destroy_device();
}

/*
 * A restored snapshot: VIRTIO_NET_ANNOUNCE_DELAY_NS of machine time after
 * the load the device asks the driver to announce itself (status bit and
 * a configuration interrupt), not before (the vCPUs' interrupt
 * controllers are restored after the devices); ANNOUNCE_ACK clears it.
 */
static GVariant *vnet_save_raw(void);

/* fuzz_virtio_net's find: features a driver wrote but never got accepted
 * (no FEATURES_OK; here CTRL_RX without CTRL_VQ) are saved as written and
 * must load again: §5.1.3.1's rules hold for accepted features only. */
static void test_load_unaccepted_features(void)
{
	GVariant *st;
	char err[256] = "";
	int r;

	create_device();
	vpci_set_status(&vp, 0);
	vpci_set_status(&vp, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	vpci_write_driver_features(&vp, F(VIRTIO_F_VERSION_1) | F(VIRTIO_NET_F_CTRL_RX));
	pthread_mutex_lock(&lock);
	st = vnet_save_raw();
	virtio_net_free(vn);
	vn = new_device_raw();
	vpci_map_bars(&vp_raw);
	r = virtio_net_device_ops.load(vn, 1, st, err, sizeof(err));
	pthread_mutex_unlock(&lock);
	CHECK_EQ(r, 0);
	if (r)
		fprintf(stderr, "  (%s)\n", err);
	g_variant_unref(st);
	destroy_device();
}

static void test_announce_on_load(void)
{
	GVariant *st;
	char err[256] = "";
	unsigned cfg_irqs;

	fake_clock_init(&fc);
	fc.mono_ns = 5000000000ull;
	timers = vtimer_queue_new_manual(&fc.clk);
	create_device();
	driver_init(true, ALL_FEATURES);
	pthread_mutex_lock(&lock);
	st = vnet_save_raw();
	virtio_net_free(vn);
	vn = new_device_raw();
	vpci_map_bars(&vp_raw);
	CHECK_EQ(virtio_net_device_ops.load(vn, 1, st, err, sizeof(err)), 0);
	pthread_mutex_unlock(&lock);
	/* PCI configuration space is the PCI host's section in a snapshot:
	 * MSI-X enabled again by hand here. */
	vpci_msix_enable(&vp, true);
	for (unsigned v = 0; v < 4; v++)
		vpci_msix_program(&vp, v, MSI_BASE_DATA + v);
	pthread_mutex_lock(&lock);
	cfg_irqs = host_irqs.msi[0];
	CHECK_EQ(vtimer_queue_run_due(timers, fc.mono_ns), 0);
	pthread_mutex_unlock(&lock);
	CHECK_EQ(cfg_status(), VIRTIO_NET_S_LINK_UP);
	fc.mono_ns += VIRTIO_NET_ANNOUNCE_DELAY_NS;
	pthread_mutex_lock(&lock);
	CHECK_EQ(vtimer_queue_run_due(timers, fc.mono_ns), 1);
	CHECK_EQ(host_irqs.msi[0], cfg_irqs + 1);
	pthread_mutex_unlock(&lock);
	CHECK_EQ(cfg_status(), VIRTIO_NET_S_LINK_UP | VIRTIO_NET_S_ANNOUNCE);
	CHECK_EQ(ctrl_cmd(VIRTIO_NET_CTRL_ANNOUNCE, VIRTIO_NET_CTRL_ANNOUNCE_ACK,
			  NULL, 0), VIRTIO_NET_OK);
	CHECK_EQ(cfg_status(), VIRTIO_NET_S_LINK_UP);
	g_variant_unref(st);
	destroy_device();
	vtimer_queue_free(timers);
	timers = NULL;
}

/* Frames the device must drop, each chain still returned. */
static void test_tx_hostile(void)
{
	static uint8_t f[1514], got[2048];
	uint8_t hdr[VIRTIO_NET_HDR_LEN] = { 0 };
	uint16_t off;
	size_t len;
	struct vbuf b;
	uint64_t big;

	create_device();
	driver_init(true, ALL_FEATURES);
	len = ip_frame(f, 17, 50, &off);
	/* csum_start + csum_offset + 2 just past the end; start past it. */
	hdr[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	hdr[6] = (uint8_t)(len - 1);
	hdr[8] = 0;
	tx_add(hdr, f, len, 0, 1, false);
	hdr[6] = 34;
	hdr[8] = (uint8_t)(len - 34 - 1);
	tx_add(hdr, f, len, 0, 1, false);
	hdr[6] = 0xff;
	hdr[7] = 0xff;
	hdr[8] = 0xff;
	hdr[9] = 0xff;
	tx_add(hdr, f, len, 0, 1, false);
	/* A GSO type nobody negotiated. */
	memset(hdr, 0, sizeof(hdr));
	hdr[1] = 1;
	tx_add(hdr, f, len, 0, 1, false);
	/* A header of 10 bytes only. */
	b = (struct vbuf){ vdrv_alloc(&txd, 10, 2), 10, false };
	vdrv_add(&txd, &b, 1, false);
	/* A frame bigger than NET_FRAME_MAX (a 96 KiB chain). */
	big = vdrv_alloc(&txd, 96 << 10, 16);
	b = (struct vbuf){ big, 96 << 10, false };
	memset(vdrv_hva(&txd, big, 96 << 10), 0, 96 << 10);
	vdrv_add(&txd, &b, 1, false);
	/* A writable buffer at the end of a transmit chain: only the
	 * readable part counts; a good frame. */
	make_frame(f, 100, OTHER, 77);
	{
		struct vbuf c[3];

		c[0] = (struct vbuf){ vdrv_alloc(&txd, 12, 2), 12, false };
		c[1] = (struct vbuf){ vdrv_alloc(&txd, 100, 2), 100, false };
		c[2] = (struct vbuf){ vdrv_alloc(&txd, 16, 2), 16, true };
		memset(vdrv_hva(&txd, c[0].gpa, 12), 0, 12);
		memcpy(vdrv_hva(&txd, c[1].gpa, 100), f, 100);
		vdrv_add(&txd, c, 3, false);
	}
	vpci_kick(&vp, VIRTIO_NET_TXQ);
	CHECK(wait_used(&txd, 7));
	CHECK_EQ(peer_recv(got, sizeof(got), 2000), 100);
	CHECK(memcmp(got, f, 100) == 0);
	CHECK_EQ(peer_recv(got, sizeof(got), 50), -1);
	CHECK_EQ(stats().tx_bad, 6);
	CHECK(!(vpci_status(&vp) & VIRTIO_CONFIG_S_NEEDS_RESET));

	/* NEEDS_CSUM without CSUM negotiated. */
	driver_init(true, ALL_FEATURES & ~F(VIRTIO_NET_F_CSUM));
	len = ip_frame(f, 17, 50, &off);
	hdr[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	hdr[1] = 0;
	hdr[6] = 34;
	hdr[7] = 0;
	hdr[8] = (uint8_t)off;
	hdr[9] = 0;
	tx_add(hdr, f, len, 0, 1, false);
	vpci_kick(&vp, VIRTIO_NET_TXQ);
	CHECK(wait_used(&txd, 1));
	CHECK_EQ(peer_recv(got, sizeof(got), 50), -1);
	CHECK_EQ(stats().tx_bad, 7);

	/* A descriptor outside RAM: the queue breaks, NEEDS_RESET. */
	b = (struct vbuf){ 0x7fff0000000ull, 64, false };
	vdrv_add(&txd, &b, 1, false);
	vpci_kick(&vp, VIRTIO_NET_TXQ);
	CHECK(vpci_status(&vp) & VIRTIO_CONFIG_S_NEEDS_RESET);
	driver_init(true, ALL_FEATURES);
	make_frame(f, 60, OTHER, 1);
	tx_plain(f, 60);
	CHECK_EQ(peer_recv(got, sizeof(got), 2000), 60);
	destroy_device();
}

/* Many frames without a second kick: the first VIRTIO_NET_TX_BATCH go on
 * the notify, the rest from the backend's turn; all arrive in order. */
static void test_tx_batches(void)
{
	static uint8_t f[256], got[2048];
	const unsigned total = 200;

	create_device();
	driver_init(true, ALL_FEATURES);
	for (uint32_t i = 0; i < total; i++) {
		make_frame(f, 64, OTHER, i);
		tx_add(PLAIN_HDR, f, 64, 0, 1, true);	/* one descriptor */
	}
	pthread_mutex_lock(&lock);
	io_write(mmio, BAR_ADDR + VIRTIO_PCI_NOTIFY_OFF +
		 VIRTIO_NET_TXQ * VIRTIO_PCI_NOTIFY_MULT, 1, 2);
	CHECK_EQ(vdrv_used_idx(&txd), VIRTIO_NET_TX_BATCH);
	/* With EVENT_IDX the driver is not asked for a kick meanwhile. */
	CHECK(vdrv_avail_event(&txd) != total);
	pthread_mutex_unlock(&lock);
	for (uint32_t i = 0; i < total; i++) {
		uint32_t tag = ~0u;

		if (peer_recv(got, sizeof(got), 2000) != 64) {
			CHECK(0);
			break;
		}
		memcpy(&tag, got + 14, 4);
		CHECK_EQ(tag, i);
	}
	CHECK(wait_used(&txd, total));
	destroy_device();
}

/* A network that does not read: the backend fills, net_send() says
 * -EAGAIN, the rest of the ring waits; once the network reads, every frame
 * comes out in order without another kick. */
static void test_tx_backpressure(void)
{
	static uint8_t f[1514], got[2048];
	unsigned added = 0;
	struct net_stats ns;

	create_device();
	driver_init(true, ALL_FEATURES);
	for (int round = 0; round < 40; round++) {
		uint16_t used;

		pthread_mutex_lock(&lock);
		used = vdrv_used_idx(&txd);
		pthread_mutex_unlock(&lock);
		if ((uint16_t)(added - used) > 0 && round > 0) {
			sleep_ms(20);	/* the backend's thread catches up? */
			pthread_mutex_lock(&lock);
			used = vdrv_used_idx(&txd);
			pthread_mutex_unlock(&lock);
			if ((uint16_t)(added - used) > 0)
				break;	/* stalled: backpressure */
		}
		for (int k = 0; k < 64; k++) {
			make_frame(f, sizeof(f), OTHER, added++);
			tx_add(PLAIN_HDR, f, sizeof(f), 0, 1, false);
		}
		vpci_kick(&vp, VIRTIO_NET_TXQ);
	}
	pthread_mutex_lock(&lock);
	CHECK(vdrv_used_idx(&txd) != (uint16_t)added);
	pthread_mutex_unlock(&lock);
	for (uint32_t i = 0; i < added; i++) {
		uint32_t tag = ~0u;

		if (peer_recv(got, sizeof(got), 3000) != sizeof(f)) {
			CHECK(0);
			fprintf(stderr, "  (frame %u of %u missing)\n", i, added);
			break;
		}
		memcpy(&tag, got + 14, 4);
		CHECK_EQ(tag, i);
	}
	CHECK(wait_used(&txd, (uint16_t)added));
	/* The backend counts a frame once its send returned: after the peer
	 * may have it. */
	net_get_stats(nd, &ns);
	for (int i = 0; i < 400 && ns.tx_frames < added; i++) {
		usleep(5000);
		net_get_stats(nd, &ns);
	}
	CHECK_EQ(ns.tx_frames, added);
	CHECK_EQ(ns.tx_dropped, 0);
	destroy_device();
}

/* Frames in: one buffer each (no MRG_RXBUF: num_buffers 1), header
 * zero; a frame too big for the buffer is dropped and the buffer kept. */
static void test_rx_plain(void)
{
	static uint8_t f[2000], got[2048];
	uint8_t hdr[VIRTIO_NET_HDR_LEN];
	unsigned nb;

	create_device();
	driver_init(true, ALL_FEATURES & ~F(VIRTIO_NET_F_MRG_RXBUF));
	rx_post(4, 1526);
	vpci_kick(&vp, VIRTIO_NET_RXQ);
	for (unsigned i = 0; i < 3; i++) {
		size_t len = i == 0 ? 60 : i == 1 ? 1514 : 333;

		make_frame(f, len, MAC, i);
		peer_send(f, len);
		CHECK_EQ(rx_get(got, sizeof(got), hdr, &nb), (ssize_t)len);
		CHECK_EQ(nb, 1);
		CHECK(memcmp(got, f, len) == 0);
		CHECK_EQ(hdr[0], 0);
		CHECK_EQ(hdr[1], VIRTIO_NET_HDR_GSO_NONE);
	}
	/* The receive queue's vector. */
	pthread_mutex_lock(&lock);
	CHECK(host_irqs.msi[1] >= 1);
	pthread_mutex_unlock(&lock);
	/* 2000 bytes do not fit 1526: dropped; the next frame takes it. */
	make_frame(f, 2000, MAC, 9);
	peer_send(f, 2000);
	make_frame(f, 100, MAC, 10);
	rx_expect(f, 100);
	CHECK_EQ(stats().rx_oversize, 1);
	destroy_device();
}

/* MRG_RXBUF: a frame spans buffers, num_buffers counts them. */
static void test_rx_mergeable(void)
{
	static uint8_t f[8000], got[9000];
	uint8_t hdr[VIRTIO_NET_HDR_LEN];
	unsigned nb = 0;
	uint16_t used0;

	create_device();
	driver_init(false, ALL_FEATURES);
	rx_post(16, 512);
	vpci_kick(&vp, VIRTIO_NET_RXQ);
	/* 12 + 60: one buffer. */
	make_frame(f, 60, MAC, 1);
	peer_send(f, 60);
	CHECK_EQ(rx_get(got, sizeof(got), hdr, &nb), 60);
	CHECK_EQ(nb, 1);
	CHECK(memcmp(got, f, 60) == 0);
	/* 12 + 1400 = 512 + 512 + 388. */
	used0 = rxd.used_seen;
	make_frame(f, 1400, MAC, 2);
	peer_send(f, 1400);
	CHECK_EQ(rx_get(got, sizeof(got), hdr, &nb), 1400);
	CHECK_EQ(nb, 3);
	CHECK(memcmp(got, f, 1400) == 0);
	CHECK_EQ((uint16_t)(rxd.used_seen - used0), 3);
	{
		/* The used lengths: 512, 512, 388. */
		const uint32_t *e = vdrv_hva(&rxd, rxd.used + 4 + 8ull * ((used0 + 2) & (RXQ_SIZE - 1)), 8);

		CHECK_EQ(e[1], 388);
		e = vdrv_hva(&rxd, rxd.used + 4 + 8ull * (used0 & (RXQ_SIZE - 1)), 8);
		CHECK_EQ(e[1], 512);
	}
	/* INTx: the ISR says a queue interrupt. */
	CHECK(host_irqs.pirq_rises[0] + host_irqs.pirq_rises[1] + host_irqs.pirq_rises[2] + host_irqs.pirq_rises[3] >= 1);
	CHECK(vpci_rd(&vp, VIRTIO_PCI_ISR_OFF, 1) & 1);
	/* A frame larger than the remaining 12 buffers' 6 KB waits for more
	 * buffers, then arrives whole. */
	make_frame(f, 7000, MAC, 3);
	peer_send(f, 7000);
	sleep_ms(50);
	pthread_mutex_lock(&lock);
	CHECK_EQ(vdrv_used_idx(&rxd), rxd.used_seen);
	pthread_mutex_unlock(&lock);
	rx_post(4, 512);
	vpci_kick(&vp, VIRTIO_NET_RXQ);
	CHECK_EQ(rx_get(got, sizeof(got), hdr, &nb), 7000);
	CHECK_EQ(nb, 14);
	CHECK(memcmp(got, f, 7000) == 0);
	destroy_device();
}

/* No buffers: the backend holds the frames until the driver adds some;
 * before DRIVER_OK frames are dropped. */
static void test_rx_no_buffers(void)
{
	static uint8_t f[1514], got[2048];
	uint8_t hdr[VIRTIO_NET_HDR_LEN];
	unsigned nb;

	create_device();
	make_frame(f, 80, MAC, 1);
	peer_send(f, 80);		/* nobody listening yet */
	for (int i = 0; i < 2000 && stats().rx_not_ready == 0; i++)
		usleep(1000);
	CHECK_EQ(stats().rx_not_ready, 1);
	driver_init(true, ALL_FEATURES);
	for (uint32_t i = 0; i < 5; i++) {
		make_frame(f, 100 + i, MAC, i);
		peer_send(f, 100 + i);
	}
	sleep_ms(50);
	pthread_mutex_lock(&lock);
	CHECK_EQ(vdrv_used_idx(&rxd), 0);
	pthread_mutex_unlock(&lock);
	rx_post(8, 2048);
	vpci_kick(&vp, VIRTIO_NET_RXQ);
	for (uint32_t i = 0; i < 5; i++) {
		uint32_t tag = ~0u;

		CHECK_EQ(rx_get(got, sizeof(got), hdr, &nb), (ssize_t)(100 + i));
		memcpy(&tag, got + 14, 4);
		CHECK_EQ(tag, i);
	}
	destroy_device();
}

/* Hostile receive rings: a readable descriptor, a buffer smaller than
 * the header, a ring too small for a frame. */
static void test_rx_hostile(void)
{
	static uint8_t f[9000], got[2048];
	struct vbuf b[2];

	create_device();
	driver_init(true, ALL_FEATURES);
	b[0] = (struct vbuf){ vdrv_alloc(&rxd, 64, 8), 64, false };
	vdrv_add(&rxd, b, 1, false);
	vpci_kick(&vp, VIRTIO_NET_RXQ);
	make_frame(f, 60, MAC, 1);
	peer_send(f, 60);
	for (int i = 0; i < 2000 && !(vpci_status(&vp) & VIRTIO_CONFIG_S_NEEDS_RESET); i++)
		usleep(1000);
	CHECK(vpci_status(&vp) & VIRTIO_CONFIG_S_NEEDS_RESET);

	driver_init(true, ALL_FEATURES);
	b[0] = (struct vbuf){ vdrv_alloc(&rxd, 8, 8), 8, true };
	vdrv_add(&rxd, b, 1, false);
	vpci_kick(&vp, VIRTIO_NET_RXQ);
	peer_send(f, 60);
	for (int i = 0; i < 2000 && !(vpci_status(&vp) & VIRTIO_CONFIG_S_NEEDS_RESET); i++)
		usleep(1000);
	CHECK(vpci_status(&vp) & VIRTIO_CONFIG_S_NEEDS_RESET);

	/* The whole ring (4 x 512 bytes) cannot hold 9000 bytes: dropped,
	 * not waited for forever.  Only a receive queue, of 4. */
	vpci_set_status(&vp, 0);
	vpci_set_status(&vp, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	vpci_write_driver_features(&vp, negotiated);
	vpci_set_status(&vp, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		   VIRTIO_CONFIG_S_FEATURES_OK);
	vdrv_init(&rxd, &mem, 4, RX_BASE, DATA_LEN);
	vpci_wr(&vp, VIRTIO_PCI_COMMON_Q_SELECT, VIRTIO_NET_RXQ, 2);
	vpci_wr(&vp, VIRTIO_PCI_COMMON_Q_SIZE, 4, 2);
	vpci_wr(&vp, VIRTIO_PCI_COMMON_Q_DESCLO, rxd.desc, 8);
	vpci_wr(&vp, VIRTIO_PCI_COMMON_Q_AVAILLO, rxd.avail, 8);
	vpci_wr(&vp, VIRTIO_PCI_COMMON_Q_USEDLO, rxd.used, 8);
	vpci_wr(&vp, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	vpci_set_status(&vp, 0x0f);
	rx_post(4, 512);
	vpci_kick(&vp, VIRTIO_NET_RXQ);
	make_frame(f, 9000, MAC, 2);
	peer_send(f, 9000);
	make_frame(f, 100, MAC, 3);
	{
		uint8_t hdr[VIRTIO_NET_HDR_LEN];
		unsigned nb;

		peer_send(f, 100);
		CHECK_EQ(rx_get(got, sizeof(got), hdr, &nb), 100);
		CHECK(memcmp(got, f, 100) == 0);
	}
	CHECK_EQ(stats().rx_oversize, 1);
	CHECK(!(vpci_status(&vp) & VIRTIO_CONFIG_S_NEEDS_RESET));
	destroy_device();
}

/* The control queue: receive modes and the MAC table filter frames. */
static void test_ctrl_filter(void)
{
	static uint8_t f[1514];
	const uint8_t uc1[1][6] = { { 0x02, 0, 0, 0, 0, 0x99 } };
	uint8_t mc1[1][6], many[65][6], mac[6];

	memcpy(mc1[0], MCAST, 6);
	create_device();
	driver_init(true, ALL_FEATURES);
	rx_post(RXQ_SIZE, 1526);
	vpci_kick(&vp, VIRTIO_NET_RXQ);

	/* After reset: promiscuous. */
	make_frame(f, 60, OTHER, 1);
	rx_expect(f, 60);
	CHECK_EQ(rx_mode(VIRTIO_NET_CTRL_RX_PROMISC, 0), VIRTIO_NET_OK);
	/* Each dropped frame is followed by one that passes: the second
	 * must be the next frame in the ring. */
	make_frame(f, 61, OTHER, 2);
	rx_drop(f, 61);
	make_frame(f, 62, MAC, 3);
	rx_expect(f, 62);
	make_frame(f, 63, BCAST, 4);
	rx_expect(f, 63);
	make_frame(f, 64, MCAST, 5);
	rx_drop(f, 64);
	make_frame(f, 65, MAC, 6);
	rx_expect(f, 65);
	CHECK_EQ(stats().rx_filtered, 2);

	/* The table. */
	CHECK_EQ(mac_table(uc1, 1, mc1, 1), VIRTIO_NET_OK);
	make_frame(f, 66, uc1[0], 7);
	rx_expect(f, 66);
	make_frame(f, 67, MCAST, 8);
	rx_expect(f, 67);
	make_frame(f, 68, MCAST2, 9);
	rx_drop(f, 68);				/* not in the table */
	make_frame(f, 69, MAC, 10);
	rx_expect(f, 69);
	CHECK_EQ(rx_mode(VIRTIO_NET_CTRL_RX_ALLMULTI, 1), VIRTIO_NET_OK);
	make_frame(f, 70, MCAST2, 11);
	rx_expect(f, 70);
	CHECK_EQ(rx_mode(VIRTIO_NET_CTRL_RX_NOMULTI, 1), VIRTIO_NET_OK);
	make_frame(f, 71, MCAST, 12);
	rx_drop(f, 71);
	CHECK_EQ(rx_mode(VIRTIO_NET_CTRL_RX_NOBCAST, 1), VIRTIO_NET_OK);
	make_frame(f, 72, BCAST, 13);
	rx_drop(f, 72);
	CHECK_EQ(rx_mode(VIRTIO_NET_CTRL_RX_NOUNI, 1), VIRTIO_NET_OK);
	make_frame(f, 73, MAC, 14);
	rx_drop(f, 73);
	CHECK_EQ(rx_mode(VIRTIO_NET_CTRL_RX_NOUNI, 0), VIRTIO_NET_OK);
	make_frame(f, 74, MAC, 15);
	rx_expect(f, 74);
	CHECK_EQ(stats().rx_filtered, 6);
	CHECK_EQ(rx_mode(VIRTIO_NET_CTRL_RX_ALLUNI, 1), VIRTIO_NET_OK);
	make_frame(f, 75, OTHER, 16);
	rx_expect(f, 75);
	CHECK_EQ(rx_mode(VIRTIO_NET_CTRL_RX_ALLUNI, 0), VIRTIO_NET_OK);
	CHECK_EQ(rx_mode(VIRTIO_NET_CTRL_RX_NOMULTI, 0), VIRTIO_NET_OK);
	CHECK_EQ(rx_mode(VIRTIO_NET_CTRL_RX_ALLMULTI, 0), VIRTIO_NET_OK);

	/* 65 multicast addresses: more than the table holds, so all
	 * multicast passes. */
	for (unsigned i = 0; i < 65; i++) {
		memcpy(many[i], MCAST, 6);
		many[i][5] = (uint8_t)(i + 2);
	}
	CHECK_EQ(mac_table(uc1, 1, (const uint8_t (*)[6])many, 65), VIRTIO_NET_OK);
	make_frame(f, 76, MCAST2, 17);
	rx_expect(f, 76);
	CHECK_EQ(mac_table(uc1, 0, mc1, 0), VIRTIO_NET_OK);
	make_frame(f, 77, MCAST2, 18);
	rx_drop(f, 77);

	/* ADDR_SET: the new address shows in config space and is the one
	 * accepted. */
	memcpy(mac, uc1[0], 6);
	mac[5] = 0x42;
	CHECK_EQ(ctrl_cmd(VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, mac, 6),
		 VIRTIO_NET_OK);
	for (unsigned i = 0; i < 6; i++)
		CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + i, 1), mac[i]);
	make_frame(f, 78, MAC, 19);
	rx_drop(f, 78);
	make_frame(f, 79, mac, 20);
	rx_expect(f, 79);
	CHECK_EQ(stats().rx_filtered, 8);

	/* A device reset forgets it all: promiscuous, the configured MAC. */
	pthread_mutex_lock(&lock);
	virtio_net_device_ops.reset(vn);
	pthread_mutex_unlock(&lock);
	CHECK_EQ(vpci_status(&vp), 0);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + 5, 1), MAC[5]);
	driver_init(true, ALL_FEATURES);
	rx_post(4, 1526);
	vpci_kick(&vp, VIRTIO_NET_RXQ);
	make_frame(f, 80, OTHER, 21);
	rx_expect(f, 80);
	destroy_device();
}

/* Bad commands are answered VIRTIO_NET_ERR; a chain without an ack byte
 * breaks the queue. */
static void test_ctrl_bad(void)
{
	uint8_t b[64] = { 0 };
	uint32_t huge = 0xffffffffu;
	struct vbuf v;

	create_device();
	driver_init(true, ALL_FEATURES);
	CHECK_EQ(ctrl_cmd(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, b, 2),
		 VIRTIO_NET_ERR);
	CHECK_EQ(ctrl_cmd(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, b, 0),
		 VIRTIO_NET_ERR);
	CHECK_EQ(ctrl_cmd(VIRTIO_NET_CTRL_RX, 6, b, 1), VIRTIO_NET_ERR);
	CHECK_EQ(ctrl_cmd(VIRTIO_NET_CTRL_VLAN, 0, b, 2), VIRTIO_NET_ERR);
	CHECK_EQ(ctrl_cmd(4, 0, b, 2), VIRTIO_NET_ERR);		/* MQ */
	CHECK_EQ(ctrl_cmd(200, 0, b, 0), VIRTIO_NET_ERR);
	CHECK_EQ(ctrl_cmd(VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, b, 5),
		 VIRTIO_NET_ERR);
	CHECK_EQ(ctrl_cmd(VIRTIO_NET_CTRL_MAC, 7, b, 6), VIRTIO_NET_ERR);
	/* MAC tables: an entry count larger than the command, a missing
	 * second table, bytes left over. */
	memcpy(b, &huge, 4);
	CHECK_EQ(ctrl_cmd(VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, b, 8),
		 VIRTIO_NET_ERR);
	memset(b, 0, sizeof(b));
	b[0] = 1;
	CHECK_EQ(ctrl_cmd(VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, b, 10),
		 VIRTIO_NET_ERR);
	b[0] = 0;
	CHECK_EQ(ctrl_cmd(VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, b, 9),
		 VIRTIO_NET_ERR);
	b[4] = 2;
	CHECK_EQ(ctrl_cmd(VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, b, 14),
		 VIRTIO_NET_ERR);
	b[4] = 0;
	CHECK_EQ(ctrl_cmd(VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, b, 8),
		 VIRTIO_NET_OK);
	CHECK_EQ(ctrl_cmd(VIRTIO_NET_CTRL_ANNOUNCE, VIRTIO_NET_CTRL_ANNOUNCE_ACK, b, 1),
		 VIRTIO_NET_ERR);
	/* A command header of one byte. */
	{
		struct vbuf c[2];
		uint64_t ack = vdrv_alloc(&ctld, 1, 1);
		uint16_t before = ctld.avail_idx;
		uint32_t id, len;

		c[0] = (struct vbuf){ vdrv_alloc(&ctld, 1, 1), 1, false };
		c[1] = (struct vbuf){ ack, 1, true };
		vdrv_add(&ctld, c, 2, false);
		vpci_kick(&vp, VIRTIO_NET_CTRLQ);
		CHECK(wait_used(&ctld, (uint16_t)(before + 1)));
		CHECK(vdrv_get_used(&ctld, &id, &len));
		CHECK_EQ(*(uint8_t *)vdrv_hva(&ctld, ack, 1), VIRTIO_NET_ERR);
	}

	/* Without CTRL_RX_EXTRA and GUEST_ANNOUNCE, their commands fail. */
	driver_init(true, ALL_FEATURES & ~(F(VIRTIO_NET_F_CTRL_RX_EXTRA) |
					   F(VIRTIO_NET_F_GUEST_ANNOUNCE) |
					   F(VIRTIO_NET_F_CTRL_MAC_ADDR)));
	CHECK_EQ(rx_mode(VIRTIO_NET_CTRL_RX_ALLMULTI, 1), VIRTIO_NET_OK);
	CHECK_EQ(rx_mode(VIRTIO_NET_CTRL_RX_NOBCAST, 1), VIRTIO_NET_ERR);
	CHECK_EQ(ctrl_cmd(VIRTIO_NET_CTRL_ANNOUNCE, VIRTIO_NET_CTRL_ANNOUNCE_ACK, b, 0),
		 VIRTIO_NET_ERR);
	CHECK_EQ(ctrl_cmd(VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, b, 6),
		 VIRTIO_NET_ERR);
	pthread_mutex_lock(&lock);
	CHECK(!virtio_net_announce(vn));
	pthread_mutex_unlock(&lock);

	/* No ack byte: the queue breaks. */
	v = (struct vbuf){ vdrv_alloc(&ctld, 3, 1), 3, false };
	vdrv_add(&ctld, &v, 1, false);
	vpci_kick(&vp, VIRTIO_NET_CTRLQ);
	CHECK(vpci_status(&vp) & VIRTIO_CONFIG_S_NEEDS_RESET);
	destroy_device();
}

/* The cable and the announce: status bits and configuration interrupts. */
static void test_link_and_announce(void)
{
	static uint8_t f[100], got[256];
	uint8_t gen;

	create_device();
	driver_init(true, ALL_FEATURES);
	rx_post(8, 1526);
	vpci_kick(&vp, VIRTIO_NET_RXQ);
	gen = (uint8_t)vpci_rd(&vp, VIRTIO_PCI_COMMON_CFGGENERATION, 1);
	CHECK_EQ(cfg_status(), VIRTIO_NET_S_LINK_UP);
	net_set_link(nd, false);
	CHECK_EQ(cfg_status(), 0);
	pthread_mutex_lock(&lock);
	CHECK_EQ(host_irqs.msi[0], 1);
	pthread_mutex_unlock(&lock);
	CHECK(vpci_rd(&vp, VIRTIO_PCI_COMMON_CFGGENERATION, 1) != gen);
	/* Nothing crosses a pulled cable. */
	make_frame(f, 100, MAC, 1);
	tx_plain(f, 100);
	CHECK_EQ(peer_recv(got, sizeof(got), 50), -1);
	net_set_link(nd, true);
	CHECK_EQ(cfg_status(), VIRTIO_NET_S_LINK_UP);
	pthread_mutex_lock(&lock);
	CHECK_EQ(host_irqs.msi[0], 2);
	pthread_mutex_unlock(&lock);
	tx_plain(f, 100);
	CHECK_EQ(peer_recv(got, sizeof(got), 2000), 100);
	rx_expect(f, 100);

	pthread_mutex_lock(&lock);
	CHECK(virtio_net_announce(vn));
	CHECK_EQ(host_irqs.msi[0], 3);
	pthread_mutex_unlock(&lock);
	CHECK_EQ(cfg_status(), VIRTIO_NET_S_LINK_UP | VIRTIO_NET_S_ANNOUNCE);
	CHECK_EQ(ctrl_cmd(VIRTIO_NET_CTRL_ANNOUNCE, VIRTIO_NET_CTRL_ANNOUNCE_ACK, NULL, 0),
		 VIRTIO_NET_OK);
	CHECK_EQ(cfg_status(), VIRTIO_NET_S_LINK_UP);

	/* INTx: the ISR's configuration bit. */
	driver_init(false, ALL_FEATURES);
	vpci_rd(&vp, VIRTIO_PCI_ISR_OFF, 1);
	net_set_link(nd, false);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_ISR_OFF, 1), 2);
	net_set_link(nd, true);
	destroy_device();
}

/* state_refused() for a state_with() result: that is a reference of our
 * own (not floating), which state_refused() leaves to us. */
/* state_refused() consumes @bad, floating or not. */
static void refuse(GVariant *bad, const char *prefix)
{
	state_refused(&virtio_net_device_ops, vn, 1, bad, prefix);
}

static GVariant *vnet_save_raw(void)
{
	GVariant *v = virtio_net_device_ops.save(vn);

	return v ? g_variant_ref_sink(v) : NULL;
}

/*
 * Driven into a non-trivial state (MAC set, receive modes, both tables, an
 * announce pending, frames both ways, transmit work left for the
 * backend's turn), saved, loaded into a fresh device on the same backend
 * and saved again: equal.  The loaded device then finishes the transmit
 * work it inherited and keeps working.  Corrupt states are refused.
 */
static void test_save_load(void)
{
	static uint8_t f[1514], got[2048];
	const uint8_t uc1[2][6] = { { 0x02, 0, 0, 0, 0, 0x99 },
				    { 0x02, 0, 0, 0, 0, 0x98 } };
	uint8_t mc1[1][6], mac[6] = { 0x02, 0x11, 0x22, 0x33, 0x44, 0x55 };
	GVariant *s1, *s2;
	char err[256] = "";
	const unsigned total = 180;
	int ret;

	CHECK(strcmp(VIRTIO_NET_STATE_TYPE, "(" VIRTIO_PCI_STATE_TYPE "ayqayayby)") == 0);
	memcpy(mc1[0], MCAST, 6);
	create_device();
	driver_init(false, ALL_FEATURES);
	rx_post(8, 1526);
	vpci_kick(&vp, VIRTIO_NET_RXQ);
	CHECK_EQ(ctrl_cmd(VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, mac, 6),
		 VIRTIO_NET_OK);
	CHECK_EQ(rx_mode(VIRTIO_NET_CTRL_RX_PROMISC, 0), VIRTIO_NET_OK);
	CHECK_EQ(rx_mode(VIRTIO_NET_CTRL_RX_NOBCAST, 1), VIRTIO_NET_OK);
	CHECK_EQ(mac_table(uc1, 2, mc1, 1), VIRTIO_NET_OK);
	make_frame(f, 90, mac, 1);
	rx_expect(f, 90);
	pthread_mutex_lock(&lock);
	CHECK(virtio_net_announce(vn));
	pthread_mutex_unlock(&lock);
	for (uint32_t i = 0; i < total; i++) {
		make_frame(f, 64, OTHER, i);
		tx_add(PLAIN_HDR, f, 64, 0, 1, true);	/* one descriptor */
	}

	/* One hold of the lock: the kick, the save, a new device, the load:
	 * the backend's thread cannot take the turn in between. */
	pthread_mutex_lock(&lock);
	io_write(mmio, BAR_ADDR + VIRTIO_PCI_NOTIFY_OFF +
		 VIRTIO_NET_TXQ * VIRTIO_PCI_NOTIFY_MULT, 1, 2);
	CHECK_EQ(vdrv_used_idx(&txd), VIRTIO_NET_TX_BATCH);
	s1 = vnet_save_raw();
	CHECK(s1 != NULL);
	if (!s1) {
		pthread_mutex_unlock(&lock);
		return;
	}
	CHECK(g_variant_is_of_type(s1, G_VARIANT_TYPE(VIRTIO_NET_STATE_TYPE)));
	virtio_net_free(vn);
	vn = new_device_raw();
	vpci_map_bars(&vp_raw);
	ret = virtio_net_device_ops.load(vn, 1, s1, err, sizeof(err));
	CHECK_EQ(ret, 0);
	if (ret)
		fprintf(stderr, "  (%s)\n", err);
	s2 = vnet_save_raw();
	CHECK(s2 && g_variant_equal(s1, s2));
	pthread_mutex_unlock(&lock);

	/* Config space, then the transmit work it inherited. */
	CHECK_EQ(vpci_status(&vp), 0x0f);
	CHECK_EQ(cfg_status(), VIRTIO_NET_S_LINK_UP | VIRTIO_NET_S_ANNOUNCE);
	for (unsigned i = 0; i < 6; i++)
		CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + i, 1), mac[i]);
	for (uint32_t i = 0; i < total; i++) {
		uint32_t tag = ~0u;

		if (peer_recv(got, sizeof(got), 2000) != 64) {
			CHECK(0);
			fprintf(stderr, "  (frame %u of %u missing)\n", i, total);
			break;
		}
		memcpy(&tag, got + 14, 4);
		CHECK_EQ(tag, i);
	}
	CHECK(wait_used(&txd, total));
	/* Its filter came along: the table's unicast address passes, a
	 * broadcast does not. */
	make_frame(f, 91, BCAST, 2);
	rx_drop(f, 91);
	make_frame(f, 92, uc1[1], 3);
	rx_expect(f, 92);
	CHECK_EQ(ctrl_cmd(VIRTIO_NET_CTRL_ANNOUNCE, VIRTIO_NET_CTRL_ANNOUNCE_ACK, NULL, 0),
		 VIRTIO_NET_OK);

	/* Refused, the device unchanged. */
	pthread_mutex_lock(&lock);
	state_refused(&virtio_net_device_ops, vn, 1, g_variant_new("(u)", 1),
		      "virtio-net: state is of type");
	state_refused(&virtio_net_device_ops, vn, 2, g_variant_ref(s1),
		      "virtio-net: state version 2 not supported");
	refuse(state_with(s1, g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, mac, 5, 1), 1, 1),
	       "virtio-net: MAC address of 5 bytes");
	refuse(state_with(s1, g_variant_new_uint16(0x100), 1, 2),
	       "virtio-net: receive mode 0x100");
	refuse(state_with(s1, g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, f, 7, 1), 1, 3),
	       "virtio-net: unicast filter table of 7 bytes");
	refuse(state_with(s1, g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, f, 65 * 6, 1), 1, 4),
	       "virtio-net: multicast filter table of 390 bytes");
	refuse(state_with(s1, g_variant_new_byte(4), 1, 6),
	       "virtio-net: pending work 0x4");
	refuse(state_with(s1, g_variant_new_uint16(VIRTIO_NET_RXMODE_UNI_OVERFLOW), 1, 2),
	       "virtio-net: a filter table both overflowed and filled");
	/* Features without CTRL_MAC_ADDR (the MAC differs), without
	 * GUEST_ANNOUNCE (an announce pending), a bad transport. */
	refuse(state_with(s1, g_variant_new_uint64(negotiated & ~F(VIRTIO_NET_F_CTRL_MAC_ADDR)), 2, 0, 2),
	       "virtio-net: MAC address other than");
	refuse(state_with(s1, g_variant_new_uint64(negotiated & ~F(VIRTIO_NET_F_GUEST_ANNOUNCE)), 2, 0, 2),
	       "virtio-net: announce pending without");
	refuse(state_with(s1, g_variant_new_uint64(negotiated & ~F(VIRTIO_NET_F_CTRL_RX)), 2, 0, 2),
	       "virtio-net: receive mode or filter tables without");
	refuse(state_with(s1, g_variant_new_uint64(~0ull), 2, 0, 2),
	       "virtio-net: driver features");
	refuse(state_with(s1, g_variant_new_uint64(0), 2, 0, 1),
	       "virtio-net: saved with features");
	refuse(state_with(s1, g_variant_new_uint16(3), 4, 0, 10, 1, 0),
	       "virtio-net: queue 1 size 3");
	pthread_mutex_unlock(&lock);
	/* Still working. */
	tx_plain(f, 64);
	CHECK_EQ(peer_recv(got, sizeof(got), 2000), 64);

	g_variant_unref(s1);
	if (s2)
		g_variant_unref(s2);
	destroy_device();
}

/* A second NIC on the same backend, a multicast MAC, a taken slot. */
static void test_bad_config(void)
{
	struct virtio_net_config c = {
		.pci = host, .devfn = DEVFN, .mem = &mem, .lock = &lock,
	};
	char err[256] = "";

	create_device();
	c.backend = nd;
	pthread_mutex_lock(&lock);
	CHECK(virtio_net_new(&c, err, sizeof(err)) == NULL);	/* MAC 0 */
	CHECK(strstr(err, "all zeroes") != NULL);
	memcpy(c.mac, MAC, 6);
	CHECK(virtio_net_new(&c, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "incomplete") == NULL);
	c.devfn = DEVFN + 8;
	CHECK(virtio_net_new(&c, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "another NIC") != NULL);
	c.mac[0] = 1;
	CHECK(virtio_net_new(&c, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "multicast") != NULL);
	c.backend = NULL;
	CHECK(virtio_net_new(&c, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "incomplete") != NULL);
	pthread_mutex_unlock(&lock);
	destroy_device();
}

int main(void)
{
	sandbox_test_threads(false);
	log_set_level(LOG_ERROR);	/* the hostile cases log warnings */
	if (guest_mem_init(&mem, RAM_SIZE) != 0)
		SKIP("cannot allocate guest RAM");
	CHECK_EQ(vpci_host_new(&vp, &pio, &vpci_irqs_ops, &host_irqs), 0);
	host = vp.host;
	mmio = vp.mmio;
	vp_raw.host = host;
	vp_raw.mmio = mmio;

	RUN_TEST(test_discovery_and_features);
	RUN_TEST(test_offloads);
	RUN_TEST(test_announce_on_load);
	RUN_TEST(test_load_unaccepted_features);
	RUN_TEST(test_tx);
	RUN_TEST(test_tx_checksum);
	RUN_TEST(test_tx_hostile);
	RUN_TEST(test_tx_batches);
	RUN_TEST(test_tx_backpressure);
	RUN_TEST(test_rx_plain);
	RUN_TEST(test_rx_mergeable);
	RUN_TEST(test_rx_no_buffers);
	RUN_TEST(test_rx_hostile);
	RUN_TEST(test_ctrl_filter);
	RUN_TEST(test_ctrl_bad);
	RUN_TEST(test_link_and_announce);
	RUN_TEST(test_save_load);
	RUN_TEST(test_bad_config);

	pci_host_free(host);
	bus_free(mmio);
	bus_free(pio);
	guest_mem_free(&mem);
	return check_finish();
}
