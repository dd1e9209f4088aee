/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_virtio_net.c - the virtio network device (vmm-core/
 * virtio/virtio_net.c) against arbitrary rings, buffers, commands and
 * frames, through its PCI registers like a driver, over a real socket
 * backend (net/net.h; its thread delivers the frames, as in a VM).
 *
 * Input: 16 control bytes, an image copied into guest RAM at IMAGE_GPA
 * (the receive, transmit and control queues' rings at fixed offsets, then
 * buffer space; descriptors may point anywhere), then frames for the
 * network to send to the guest, each a le16 length and its bytes.
 *   bytes 0-3: le32 mask of the device features bits 0-31 the driver takes
 *   byte 4:    bit 0 INDIRECT_DESC, bit 1 EVENT_IDX, bit 2 MSI-X (else
 *              INTx), bit 3 save -> load into a new device -> save after
 *              each round, bit 4 pull the cable during round 0, bit 5 ask
 *              for an announce, bit 6 reset the device in place mid-way
 *   bytes 5-7: queue sizes (1 << (b % 9)) of receiveq, transmitq, controlq
 *   byte 8:    rounds = 1 + b % 4
 *   byte 9:    kicks each round: bit 0 receiveq, bit 1 transmitq, bit 2
 *              controlq
 *   byte 10:   how far the "driver" moves every avail idx between rounds
 *   bytes 12-15: le32 image length (at most IMAGE_MAX)
 * Checked: nothing crashes or touches memory outside guest RAM (ASan and
 * UBSan under libFuzzer); the device never has a chain in flight when the
 * lock is free (save works after every round); a saved state loads into
 * a fresh device and saves again identically.  A violation abort()s.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "fuzz.h"
#include "fuzzlib.h"
#include "virtio_pci_driver.h"
#include "vring_driver.h"

#include "bus.h"
#include "devices/pci.h"
#include "log.h"
#include "mem.h"
#include "net/net.h"
#include "virtio/virtio_net.h"
#include "virtio/virtio_pci.h"

#define FUZZ_RAM	(1u << 20)
#define IMAGE_GPA	0x10000ull
#define IMAGE_MAX	0x20000u
#define DATA_GPA	(IMAGE_GPA + 0x6000ull)
#define CTRL_BYTES	16
#define MAX_FRAMES	16
#define DEVFN		(6 << 3)
#define BAR_ADDR	0xfe000000ull
#define MSIX_ADDR	0xfe100000ull

static const uint8_t MAC[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

static struct guest_mem mem;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct bus *pio, *mmio;
static struct pci_host *host;
/* The driver's view of the function (the device lock held: no .lock). */
static struct vpci_irqs host_irqs = { .msi_base = 0x40 };
static struct vpci vp = { .devfn = DEVFN, .bar = BAR_ADDR, .msix = MSIX_ADDR };
/* receiveq, transmitq, controlq: rings at IMAGE_GPA + 0x2000 * q; sizes
 * per input. */
static struct fuzz_vqs vqs = { .vp = &vp, .mem = &mem, .rings = IMAGE_GPA,
			       .stride = 0x2000, .n = 3 };
static struct netdev *nd;
static int peer = -1;
static bool ready;

const char fuzz_target[] = "fuzz_virtio_net";

static void init_once(void)
{
	int sv[2], err = 0;

	if (ready)
		return;
	log_set_level(LOG_ERROR);	/* hostile input logs warnings */
	fuzz_ram(&mem, FUZZ_RAM);
	if (vpci_host_new(&vp, &pio, &vpci_irqs_ops, &host_irqs) != 0)
		fuzz_fail("cannot build the PCI host");
	host = vp.host;
	mmio = vp.mmio;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) != 0)
		fuzz_fail("socketpair");
	nd = net_socket_new(sv[0], &err);
	if (!nd)
		fuzz_fail("cannot make the socket backend");
	peer = sv[1];
	ready = true;
}

static struct virtio_net *new_device(void)
{
	struct virtio_net_config c = {
		.pci = host, .devfn = DEVFN, .mem = &mem, .lock = &lock,
		.backend = nd,
	};
	struct virtio_net *vn;
	char err[256];

	memcpy(c.mac, MAC, 6);
	vn = virtio_net_new(&c, err, sizeof(err));
	if (!vn)
		fuzz_fail_with(err, "cannot create the device");
	vpci_map_bars(&vp);
	return vn;
}

static uint16_t qsize_of(const uint8_t *ctl, unsigned q)
{
	return (uint16_t)(1u << (ctl[5 + q] % 9));
}

/* §3.1.1 with the input's features and queue sizes. */
static void driver_init(const uint8_t *ctl)
{
	for (unsigned q = 0; q < 3; q++)
		vqs.size[q] = qsize_of(ctl, q);
	fuzz_vqs_negotiate(&vqs, fuzz_le32(ctl), ctl[4]);
	fuzz_vqs_start(&vqs, ctl[4] & 4, 4);
}

/* Save: must work whenever the lock is free (nothing in flight). */
#define SAVE_REFUSED	"save refused: a chain left in flight"

/* Save, load into a new device, save again: the same. */
static struct virtio_net *round_trip(struct virtio_net *vn)
{
	GVariant *s = fuzz_save(&virtio_net_device_ops, vn, SAVE_REFUSED);

	virtio_net_free(vn);
	vn = new_device();
	fuzz_load_same(&virtio_net_device_ops, vn, s, SAVE_REFUSED);
	return vn;
}

static uint64_t rx_done(void)
{
	struct net_stats st;

	net_get_stats(nd, &st);
	return st.rx_frames + st.rx_dropped;
}

/* Send frames [@from, @to) of the input from the network; give the
 * backend's thread a moment to offer them (a frame the device holds for
 * lack of buffers counts as neither). */
static void deliver(const uint8_t **fp, const size_t *fl, unsigned from,
		    unsigned to)
{
	uint64_t before = rx_done(), want = 0;
	struct timespec t0, t;

	for (unsigned i = from; i < to; i++)
		if (send(peer, fp[i], fl[i], MSG_DONTWAIT) >= 0)
			want++;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (rx_done() - before < want) {
		sched_yield();
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) >
		    2000000L)
			break;
	}
}

static void drain_peer(void)
{
	static uint8_t buf[NET_FRAME_MAX];

	while (recv(peer, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
		;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *fp[MAX_FRAMES];
	size_t fl[MAX_FRAMES], rest;
	unsigned nframes = 0, rounds;
	struct virtio_net *vn;
	const uint8_t *ctl = data, *at;

	init_once();
	if (size < CTRL_BYTES)
		return 0;
	at = fuzz_image(&mem, IMAGE_GPA, IMAGE_MAX, data, size, CTRL_BYTES,
			fuzz_le32(ctl + 12), &rest);
	while (rest >= 2 && nframes < MAX_FRAMES) {
		size_t len = fuzz_le16(at);

		at += 2;
		rest -= 2;
		if (len > rest)
			len = rest;
		fp[nframes] = at;
		fl[nframes++] = len;
		at += len;
		rest -= len;
	}
	rounds = 1 + ctl[8] % 4;

	pthread_mutex_lock(&lock);
	vn = new_device();
	driver_init(ctl);
	pthread_mutex_unlock(&lock);
	if (ctl[4] & 16)
		net_set_link(nd, false);

	for (unsigned r = 0; r < rounds; r++) {
		deliver(fp, fl, nframes * r / rounds, nframes * (r + 1) / rounds);
		if (r == 0 && (ctl[4] & 16))
			net_set_link(nd, true);
		pthread_mutex_lock(&lock);
		for (unsigned q = 0; q < 3; q++)
			if (ctl[9] & (1u << q))
				vpci_kick(&vp, q);
		if (ctl[4] & 32)
			virtio_net_announce(vn);
		if ((ctl[4] & 64) && r == rounds / 2) {
			virtio_net_device_ops.reset(vn);
			driver_init(ctl);
		}
		/* Config space and the ISR, as an interrupt handler reads. */
		for (unsigned off = 0; off < VIRTIO_NET_CFG_LEN; off += 2)
			vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + off, 2);
		vpci_isr(&vp);
		if (ctl[4] & 8)
			vn = round_trip(vn);
		else
			g_variant_unref(fuzz_save(&virtio_net_device_ops, vn,
						  SAVE_REFUSED));
		fuzz_vqs_publish(&vqs, ctl[10]);
		pthread_mutex_unlock(&lock);
	}
	drain_peer();
	pthread_mutex_lock(&lock);
	g_variant_unref(fuzz_save(&virtio_net_device_ops, vn, SAVE_REFUSED));
	virtio_net_free(vn);
	pthread_mutex_unlock(&lock);
	return 0;
}

/* ---- seeds: drivers that build sensible (and hostile) rings -------------- */

static uint8_t seed_buf[CTRL_BYTES + IMAGE_MAX + MAX_FRAMES * (2 + 2048)];

/* Queue @q's driver, its rings where the target expects them, buffers in
 * the q-th third of the data space. */
static void seed_driver(struct vdrv *d, unsigned q, uint16_t size)
{
	uint64_t third = (IMAGE_GPA + IMAGE_MAX - DATA_GPA) / 3;

	fuzz_vqs_driver(&vqs, d, q, size, DATA_GPA + third * q, third);
}

static void seed_frame(uint8_t *f, size_t len, const uint8_t *dst, unsigned tag)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, "\x02\x00\x00\x00\x00\x01", 6);
	f[12] = 0x08;
	f[13] = 0x00;
	for (size_t i = 14; i < len; i++)
		f[i] = (uint8_t)(tag + i);
}

/* Transmit chain: a header (with @flags, csum_start 34, csum_offset 6)
 * and a @len-byte frame in two pieces. */
static void seed_tx(struct vdrv *d, uint8_t flags, size_t len, bool indirect)
{
	struct vbuf b[3];
	uint64_t h = vdrv_alloc(d, VIRTIO_NET_HDR_LEN, 2);
	uint64_t p = vdrv_alloc(d, len, 2);
	uint8_t *hp = gpa_to_hva(&mem, h, VIRTIO_NET_HDR_LEN);

	memset(hp, 0, VIRTIO_NET_HDR_LEN);
	hp[0] = flags;
	hp[6] = 34;
	hp[8] = 6;
	seed_frame(gpa_to_hva(&mem, p, len), len, MAC, (unsigned)len);
	b[0] = (struct vbuf){ h, VIRTIO_NET_HDR_LEN, false };
	b[1] = (struct vbuf){ p, (uint32_t)(len / 2), false };
	b[2] = (struct vbuf){ p + len / 2, (uint32_t)(len - len / 2), false };
	vdrv_add(d, b, 3, indirect);
}

static void seed_rx(struct vdrv *d, unsigned n, uint32_t size)
{
	for (unsigned i = 0; i < n; i++) {
		struct vbuf b = { vdrv_alloc(d, size, 8), size, true };

		vdrv_add(d, &b, 1, false);
	}
}

static void seed_ctrl(struct vdrv *d, uint8_t cls, uint8_t cmd,
		      const void *p, size_t len)
{
	struct vbuf b[3];
	unsigned n = 0;
	uint64_t h = vdrv_alloc(d, 2, 2);
	uint8_t *hp = gpa_to_hva(&mem, h, 2);

	hp[0] = cls;
	hp[1] = cmd;
	b[n++] = (struct vbuf){ h, 2, false };
	if (len) {
		uint64_t q = vdrv_alloc(d, len, 2);

		memcpy(gpa_to_hva(&mem, q, len), p, len);
		b[n++] = (struct vbuf){ q, (uint32_t)len, false };
	}
	b[n++] = (struct vbuf){ vdrv_alloc(d, 1, 1), 1, true };
	vdrv_add(d, b, n, false);
}

/* Control bytes + the image as the drivers left it + @nf frames of
 * @flen bytes to @dst. */
static void seed_emit(void (*add)(const void *, size_t), uint32_t fmask,
		      uint8_t flags, uint8_t qexp[3], uint8_t rounds,
		      uint8_t kicks, unsigned nf, size_t flen, const uint8_t *dst)
{
	uint8_t *c = seed_buf;
	size_t n = CTRL_BYTES + IMAGE_MAX;

	memset(c, 0, CTRL_BYTES);
	memcpy(c, &fmask, 4);
	c[4] = flags;
	memcpy(c + 5, qexp, 3);
	c[8] = rounds;
	c[9] = kicks;
	c[12] = (uint8_t)IMAGE_MAX;
	c[13] = (uint8_t)(IMAGE_MAX >> 8);
	c[14] = (uint8_t)(IMAGE_MAX >> 16);
	memcpy(c + CTRL_BYTES, gpa_to_hva(&mem, IMAGE_GPA, IMAGE_MAX), IMAGE_MAX);
	for (unsigned i = 0; i < nf; i++) {
		c[n] = (uint8_t)flen;
		c[n + 1] = (uint8_t)(flen >> 8);
		seed_frame(c + n + 2, flen, dst, i);
		n += 2 + flen;
	}
	add(c, n);
}

void fuzz_make_seeds(void (*add)(const void *, size_t))
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	uint8_t qexp[3] = { 4, 4, 4 }, on = 0, off = 0;
	uint8_t table[4 + 6 + 4 + 6] = { 1, 0, 0, 0, 0x02, 0, 0, 0, 0, 0x99,
					 1, 0, 0, 0, 0x01, 0x00, 0x5e, 0, 0, 1 };
	struct vdrv rx, tx, ct;

	init_once();
	on = 1;
	/* Everything offered: buffers, two frames out (one with a checksum
	 * to complete), the commands Linux sends, frames in. */
	memset(gpa_to_hva(&mem, IMAGE_GPA, IMAGE_MAX), 0, IMAGE_MAX);
	seed_driver(&rx, 0, 16);
	seed_driver(&tx, 1, 16);
	seed_driver(&ct, 2, 16);
	seed_rx(&rx, 8, 1526);
	seed_tx(&tx, 0, 60, false);
	seed_tx(&tx, VIRTIO_NET_HDR_F_NEEDS_CSUM, 120, true);
	seed_ctrl(&ct, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &off, 1);
	seed_ctrl(&ct, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_ALLMULTI, &on, 1);
	seed_ctrl(&ct, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET,
		  table, sizeof(table));
	seed_ctrl(&ct, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, MAC, 6);
	seed_ctrl(&ct, VIRTIO_NET_CTRL_ANNOUNCE, VIRTIO_NET_CTRL_ANNOUNCE_ACK,
		  NULL, 0);
	seed_emit(add, ~0u, 1 | 2 | 4, qexp, 2, 7, 3, 200, MAC);
	seed_emit(add, ~0u, 1 | 2 | 8 | 32, qexp, 3, 7, 4, 1000, bcast);
	seed_emit(add, ~0u & ~(1u << VIRTIO_NET_F_MRG_RXBUF), 1 | 16 | 64, qexp,
		  4, 3, 4, 1514, MAC);

	/* Mergeable receive into small buffers. */
	memset(gpa_to_hva(&mem, IMAGE_GPA, IMAGE_MAX), 0, IMAGE_MAX);
	seed_driver(&rx, 0, 16);
	seed_driver(&tx, 1, 16);
	seed_driver(&ct, 2, 16);
	seed_rx(&rx, 16, 256);
	seed_emit(add, ~0u, 2, qexp, 2, 1, 2, 2000, MAC);

	/* Hostile: a readable receive buffer, a header-less transmit chain,
	 * a command without an ack byte, a huge MAC table count. */
	memset(gpa_to_hva(&mem, IMAGE_GPA, IMAGE_MAX), 0, IMAGE_MAX);
	seed_driver(&rx, 0, 16);
	seed_driver(&tx, 1, 16);
	seed_driver(&ct, 2, 16);
	{
		struct vbuf b = { vdrv_alloc(&rx, 64, 8), 64, false };

		vdrv_add(&rx, &b, 1, false);
		b = (struct vbuf){ vdrv_alloc(&tx, 6, 2), 6, false };
		vdrv_add(&tx, &b, 1, false);
		b = (struct vbuf){ vdrv_alloc(&ct, 3, 1), 3, false };
		table[0] = 0xff;
		table[3] = 0xff;
		seed_ctrl(&ct, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET,
			  table, sizeof(table));
		vdrv_add(&ct, &b, 1, false);
	}
	seed_emit(add, ~0u, 4 | 8, qexp, 2, 7, 2, 64, MAC);
}
