/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_virtio_input.c - the virtio keyboard and tablet
 * (vmm-core/virtio/virtio_input.c) against arbitrary rings, buffers,
 * status events, configuration accesses and host input, through their PCI
 * registers like a driver and through their console ops like the
 * frontends.
 *
 * Input: 16 control bytes, an image copied into guest RAM at IMAGE_GPA
 * (the eventq's and statusq's rings at fixed offsets, then buffer space;
 * descriptors may point anywhere), then host input, 8 bytes each:
 *   byte 0: kind (bit 0 clear: a key, set: a pointer event)
 *   key:     bytes 1-2 le16 KEY_* code, byte 3 bit 0 down
 *   pointer: bytes 1-2 le16 x, 3-4 le16 y (0..0xffff: clamped by the
 *            device), byte 5 buttons (CONSOLE_BTN_*), byte 6 signed dz
 * Control bytes:
 *   byte 0:    bit 0 INDIRECT_DESC, bit 1 EVENT_IDX, bit 2 MSI-X (else
 *              INTx), bit 3 save -> load into a new device -> save after
 *              each round, bit 4 a tablet (else a keyboard), bit 5 reset
 *              the device in place mid-way
 *   bytes 1-2: queue sizes (1 << (b % 8)) of eventq, statusq
 *   byte 3:    rounds = 1 + b % 4
 *   byte 4:    kicks each round: bit 0 eventq, bit 1 statusq
 *   byte 5:    how far the "driver" moves every avail idx between rounds
 *   bytes 6-7: a configuration select and subsel the driver reads
 *   bytes 12-15: le32 image length (at most IMAGE_MAX)
 * Checked: nothing crashes or touches memory outside guest RAM (ASan and
 * UBSan under libFuzzer); the pending queue stays within its bound; the
 * device never has a chain in flight when the lock is free (save works
 * after every round); a saved state loads into a fresh device and saves
 * again identically.  A violation abort()s.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "fuzz.h"
#include "fuzzlib.h"
#include "virtio_pci_driver.h"
#include "vring_driver.h"

#include "bus.h"
#include "devices/pci.h"
#include "display/console.h"
#include "log.h"
#include "mem.h"
#include "virtio/virtio_input.h"
#include "virtio/virtio_pci.h"

#define FUZZ_RAM	(1u << 20)
#define IMAGE_GPA	0x10000ull
#define IMAGE_MAX	0x10000u
#define DATA_GPA	(IMAGE_GPA + 0x2000ull)
#define CTRL_BYTES	16
#define INPUT_LEN	8
#define DEVFN		(0x0d << 3)
#define BAR_ADDR	0xfe000000ull
#define MSIX_ADDR	0xfe100000ull

static struct guest_mem mem;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct bus *pio, *mmio;
static struct pci_host *host;
/* The driver's view of the function (the device lock held: no .lock). */
static struct vpci_irqs host_irqs = { .msi_base = 0x40 };
static struct vpci vp = { .devfn = DEVFN, .bar = BAR_ADDR, .msix = MSIX_ADDR };
/* eventq and statusq: rings at IMAGE_GPA + 0x1000 * q; sizes per input. */
static struct fuzz_vqs vqs = { .vp = &vp, .mem = &mem, .rings = IMAGE_GPA,
			       .stride = 0x1000, .n = 2 };
static bool ready;

const char fuzz_target[] = "fuzz_virtio_input";

static void init_once(void)
{
	if (ready)
		return;
	log_set_level(LOG_ERROR);	/* hostile input logs warnings */
	fuzz_ram(&mem, FUZZ_RAM);
	if (vpci_host_new(&vp, &pio, &vpci_irqs_ops, &host_irqs) != 0)
		fuzz_fail("cannot build the PCI host");
	host = vp.host;
	mmio = vp.mmio;
	ready = true;
}

static const struct device_ops *table_ops(enum virtio_input_kind kind)
{
	return kind == VIRTIO_INPUT_KEYBOARD ? &virtio_keyboard_device_ops
					     : &virtio_tablet_device_ops;
}

static struct virtio_input *new_device(enum virtio_input_kind kind)
{
	struct virtio_input_config c = {
		.pci = host, .devfn = DEVFN, .mem = &mem, .kind = kind,
	};
	struct virtio_input *vi;
	char err[256];

	vi = virtio_input_new(&c, err, sizeof(err));
	if (!vi)
		fuzz_fail_with(err, "cannot create the device");
	vpci_map_bars(&vp);
	return vi;
}

static uint16_t qsize_of(const uint8_t *ctl, unsigned q)
{
	return (uint16_t)(1u << (ctl[1 + q] % 8));
}

/* §3.1.1 with the input's ring features and queue sizes, then the
 * configuration reads of the driver's probe. */
static void driver_init(const uint8_t *ctl)
{
	for (unsigned q = 0; q < 2; q++)
		vqs.size[q] = qsize_of(ctl, q);
	fuzz_vqs_negotiate(&vqs, 0, ctl[0]);
	vpci_wr(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_INPUT_CFG_SELECT, ctl[6], 1);
	vpci_wr(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_INPUT_CFG_SUBSEL, ctl[7], 1);
	for (unsigned off = 0; off < VIRTIO_INPUT_CFG_LEN; off += 4)
		vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + off, 4);
	fuzz_vqs_start(&vqs, ctl[0] & 4, 3);
}

/* Save: must work whenever the lock is free (nothing in flight). */
#define SAVE_REFUSED	"save refused: a chain left in flight"

/* Save, load into a new device, save again: the same. */
static struct virtio_input *round_trip(struct virtio_input *vi,
				       enum virtio_input_kind kind)
{
	GVariant *s = fuzz_save(table_ops(kind), vi, SAVE_REFUSED);

	virtio_input_free(vi);
	vi = new_device(kind);
	fuzz_load_same(table_ops(kind), vi, s, SAVE_REFUSED);
	return vi;
}

/* Host input [@from, @to) of the input's events, as the console calls
 * the device (it would ask active() first; the device checks itself). */
static void host_input(struct virtio_input *vi, const uint8_t *ev, unsigned from,
		       unsigned to)
{
	for (unsigned i = from; i < to; i++) {
		const uint8_t *e = ev + INPUT_LEN * i;

		if (!(e[0] & 1))
			virtio_keyboard_input_ops.key(vi, (unsigned)(e[1] | e[2] << 8),
						      e[3] & 1);
		else
			virtio_tablet_input_ops.abs(vi, (unsigned)(e[1] | e[2] << 8),
						    (unsigned)(e[3] | e[4] << 8),
						    (int8_t)e[6], e[5]);
		if (virtio_input_pending(vi) > VIRTIO_INPUT_PENDING_MAX)
			fuzz_fail("the pending queue outgrew its bound");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *ctl = data, *ev;
	enum virtio_input_kind kind;
	struct virtio_input *vi;
	unsigned nev, rounds;
	size_t rest;

	init_once();
	if (size < CTRL_BYTES)
		return 0;
	ev = fuzz_image(&mem, IMAGE_GPA, IMAGE_MAX, data, size, CTRL_BYTES,
			fuzz_le32(ctl + 12), &rest);
	nev = (unsigned)(rest / INPUT_LEN);
	rounds = 1 + ctl[3] % 4;
	kind = (ctl[0] & 16) ? VIRTIO_INPUT_TABLET : VIRTIO_INPUT_KEYBOARD;

	pthread_mutex_lock(&lock);
	vi = new_device(kind);
	driver_init(ctl);
	for (unsigned r = 0; r < rounds; r++) {
		host_input(vi, ev, nev * r / rounds,
			   nev * (r + 1) / rounds);
		for (unsigned q = 0; q < 2; q++)
			if (ctl[4] & (1u << q))
				vpci_kick(&vp, q);
		if ((ctl[0] & 32) && r == rounds / 2) {
			table_ops(kind)->reset(vi);
			driver_init(ctl);
		}
		vpci_isr(&vp);
		if (ctl[0] & 8)
			vi = round_trip(vi, kind);
		else
			g_variant_unref(fuzz_save(table_ops(kind), vi,
						  SAVE_REFUSED));
		fuzz_vqs_publish(&vqs, ctl[5]);
	}
	g_variant_unref(fuzz_save(table_ops(kind), vi, SAVE_REFUSED));
	virtio_input_free(vi);
	pthread_mutex_unlock(&lock);
	return 0;
}

/* ---- seeds: drivers that build sensible (and hostile) rings -------------- */

static uint8_t seed_buf[CTRL_BYTES + IMAGE_MAX + 512 * INPUT_LEN];

/* Queue @q's driver, its rings where the target expects them, buffers in
 * the q-th half of the data space. */
static void seed_driver(struct vdrv *d, unsigned q, uint16_t size)
{
	uint64_t half = (IMAGE_GPA + IMAGE_MAX - DATA_GPA) / 2;

	fuzz_vqs_driver(&vqs, d, q, size, DATA_GPA + half * q, half);
}

/* @n eventq buffers of @len bytes (8: what Linux posts). */
static void seed_events(struct vdrv *d, unsigned n, uint32_t len, bool write)
{
	for (unsigned i = 0; i < n; i++) {
		struct vbuf b = { vdrv_alloc(d, len, 8), len, write };

		vdrv_add(d, &b, 1, false);
	}
}

/* One statusq event. */
static void seed_status(struct vdrv *d, uint16_t type, uint16_t code,
			uint32_t value, uint32_t len)
{
	uint64_t p = vdrv_alloc(d, 8, 8);
	uint8_t *b = gpa_to_hva(&mem, p, 8);

	b[0] = (uint8_t)type;
	b[1] = (uint8_t)(type >> 8);
	b[2] = (uint8_t)code;
	b[3] = (uint8_t)(code >> 8);
	memcpy(b + 4, &value, 4);
	vdrv_add(d, &(struct vbuf){ p, len, false }, 1, false);
}

/* Control bytes + the image as the drivers left it + @n host events. */
static void seed_emit(void (*add)(const void *, size_t), uint8_t flags,
		      uint8_t rounds, uint8_t kicks, uint8_t move,
		      unsigned n, bool tablet)
{
	uint8_t *c = seed_buf;
	size_t len = CTRL_BYTES + IMAGE_MAX;

	memset(c, 0, CTRL_BYTES);
	c[0] = (uint8_t)(flags | (tablet ? 16 : 0));
	c[1] = c[2] = 6;		/* 64 entries */
	c[3] = rounds;
	c[4] = kicks;
	c[5] = move;
	c[6] = VIRTIO_INPUT_CFG_EV_BITS;
	c[7] = 1;			/* EV_KEY */
	c[12] = (uint8_t)IMAGE_MAX;
	c[13] = (uint8_t)(IMAGE_MAX >> 8);
	memcpy(c + CTRL_BYTES, gpa_to_hva(&mem, IMAGE_GPA, IMAGE_MAX), IMAGE_MAX);
	for (unsigned i = 0; i < n; i++, len += INPUT_LEN) {
		uint8_t *e = c + len;

		memset(e, 0, INPUT_LEN);
		if (tablet) {
			e[0] = 1;
			e[1] = (uint8_t)(i * 37);
			e[2] = (uint8_t)(i * 3);
			e[3] = (uint8_t)(i * 11);
			e[5] = (uint8_t)(i % 3 == 0 ? CONSOLE_BTN_LEFT : 0);
			e[6] = (uint8_t)(i % 5 == 0 ? 1 : 0);
		} else {
			e[1] = (uint8_t)(16 + i % 20);	/* KEY_Q... */
			e[3] = (uint8_t)(i & 1);
		}
	}
	add(c, len);
}

void fuzz_make_seeds(void (*add)(const void *, size_t))
{
	struct vdrv ev, st;

	init_once();
	/* Linux's driver: 64 event buffers, LED events on the statusq. */
	memset(gpa_to_hva(&mem, IMAGE_GPA, IMAGE_MAX), 0, IMAGE_MAX);
	seed_driver(&ev, 0, 64);
	seed_driver(&st, 1, 64);
	seed_events(&ev, 64, 8, true);
	seed_status(&st, 0x11, 0, 1, 8);	/* EV_LED NUML */
	seed_status(&st, 0x11, 1, 1, 8);	/* EV_LED CAPSL */
	seed_status(&st, 0x14, 0, 250, 8);	/* EV_REP */
	seed_emit(add, 1 | 2 | 4, 2, 3, 0, 40, false);
	seed_emit(add, 2 | 8, 3, 3, 0, 60, true);
	/* Too few buffers: the queue fills and drops. */
	seed_emit(add, 8 | 32, 4, 1, 0, 400, false);
	seed_emit(add, 1 | 8, 4, 1, 0, 400, true);

	/* Hostile: a readable event buffer, a short one, a writable status
	 * buffer, a short status event. */
	memset(gpa_to_hva(&mem, IMAGE_GPA, IMAGE_MAX), 0, IMAGE_MAX);
	seed_driver(&ev, 0, 64);
	seed_driver(&st, 1, 64);
	seed_events(&ev, 2, 8, true);
	seed_events(&ev, 1, 4, true);
	seed_events(&ev, 1, 8, false);
	seed_status(&st, 0x11, 2, 1, 5);
	seed_events(&st, 1, 8, true);
	seed_emit(add, 4 | 8, 2, 3, 3, 20, false);
	seed_emit(add, 8, 2, 3, 1, 20, true);
}
