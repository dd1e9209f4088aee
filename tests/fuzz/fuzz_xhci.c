/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_xhci.c - the xHCI controller (vmm-core/usb/xhci.c) with
 * its HID tablet and keyboard against arbitrary command rings, event ring
 * segment tables, contexts and transfer rings in guest RAM, and arbitrary
 * register writes and doorbells.
 *
 * Input: 8 control bytes, a le16 image length, the image (copied into guest
 * RAM at IMAGE_GPA; at most IMAGE_MAX), then operations of 8 bytes each:
 *   byte 0 % 5: 0 write32 (bytes 1-2 le16 BAR offset % XHCI_BAR_SIZE,
 *                 bytes 4-7 le32 value; byte 3 bit 0: add IMAGE_GPA to
 *                 the value, so pointers land in the image)
 *               1 read32 (offset as above)
 *               2 doorbell byte 1 % 34, target byte 2
 *               3 tablet input (x byte 1-2, y 3-4, buttons 5, dz byte 6)
 *               4 key (byte 1 KEY_*, byte 2 bit 0 down)
 * Control byte 0: bit 0 MSI-X (else INTx), bit 1 save -> load into a new
 * controller -> save again at the end, bit 2 skip the standard start.
 * The standard start (§4.2): DCBAAP = IMAGE_GPA, command ring at
 * IMAGE_GPA + 0x400 (cycle 1), ERSTSZ control byte 1 % 4, ERST at
 * IMAGE_GPA + 0x800, ERDP at IMAGE_GPA + 0x1000, MaxSlotsEn 32, IE, RS.
 * Checked: nothing crashes or touches memory outside guest RAM (ASan and
 * UBSan under libFuzzer); each operation returns (bounded walks); a saved
 * state loads into a new controller and saves again identically.  A
 * violation abort()s.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "fuzz.h"

#include "bus.h"
#include "devices/pci.h"
#include "display/console.h"
#include "log.h"
#include "mem.h"
#include "usb/hid.h"
#include "usb/xhci.h"

#define FUZZ_RAM	(4u << 20)
#define IMAGE_GPA	0x100000ull
#define IMAGE_MAX	0x10000u
#define CTRL_BYTES	8
#define OP_LEN		8
#define DEVFN		(0x18 << 3)
#define BAR_ADDR	0xfe000000ull
#define MSIX_ADDR	0xfe100000ull

static struct guest_mem mem;
static struct bus *pio, *mmio;
static struct pci_host *host;
static bool ready;

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_xhci: %s\n", what);
	abort();
}

static void set_pirq(void *o, unsigned p, int l) { (void)o; (void)p; (void)l; }
static int send_msi(void *o, uint64_t a, uint32_t d) { (void)o; (void)a; (void)d; return 0; }
static const struct pci_host_ops host_ops = { set_pirq, send_msi };

static void init_once(void)
{
	if (ready)
		return;
	log_set_level(LOG_ERROR);	/* hostile input logs warnings */
	if (guest_mem_init(&mem, FUZZ_RAM) != 0)
		fail("cannot allocate guest RAM");
	pio = bus_new("pio");
	mmio = bus_new("mmio");
	host = pci_host_new();
	if (!pio || !mmio || !host || pci_host_attach(host, pio, mmio) != 0)
		fail("cannot build the PCI host");
	pci_host_set_ops(host, &host_ops, NULL);
	ready = true;
}

static struct xhci *new_xhci(bool msix)
{
	struct xhci_config c = { .pci = host, .devfn = DEVFN, .mem = &mem,
				 .hid = true };
	char err[256];
	struct xhci *x = xhci_new(&c, err, sizeof(err));

	if (!x)
		fail(err);
	pci_config_write(host, 0, DEVFN, PCI_BASE_ADDRESS_0, 4, (uint32_t)BAR_ADDR);
	pci_config_write(host, 0, DEVFN, PCI_BASE_ADDRESS_0 + 4, 4, 0);
	pci_config_write(host, 0, DEVFN, PCI_BASE_ADDRESS_0 + 8, 4, (uint32_t)MSIX_ADDR);
	pci_config_write(host, 0, DEVFN, PCI_COMMAND, 2,
			 PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	if (msix) {
		bus_write(mmio, MSIX_ADDR, 0xfee00000u, 4, NULL);
		bus_write(mmio, MSIX_ADDR + 8, 0x41, 4, NULL);
		pci_config_write(host, 0, DEVFN, 0x42, 2, 0x8000);
	}
	return x;
}

static void wr(uint64_t off, uint64_t v)
{
	bus_write(mmio, BAR_ADDR + off, v, 4, NULL);
}

static uint32_t le16(const uint8_t *p) { return p[0] | p[1] << 8; }
static uint32_t le32(const uint8_t *p) { return le16(p) | le16(p + 2) << 16; }

static GVariant *save(struct xhci *x)
{
	GVariant *s = xhci_device_ops.save(x);

	if (!s)
		fail("save failed");
	return g_variant_ref_sink(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *ctl = data, *op;
	size_t img_len, nops;
	struct xhci *x;

	init_once();
	if (size < CTRL_BYTES + 2)
		return 0;
	img_len = le16(data + CTRL_BYTES);
	if (img_len > IMAGE_MAX)
		img_len = IMAGE_MAX;
	if (img_len > size - CTRL_BYTES - 2)
		img_len = size - CTRL_BYTES - 2;
	memset(gpa_to_hva(&mem, IMAGE_GPA, IMAGE_MAX), 0, IMAGE_MAX);
	memcpy(gpa_to_hva(&mem, IMAGE_GPA, IMAGE_MAX), data + CTRL_BYTES + 2,
	       img_len);
	op = data + CTRL_BYTES + 2 + img_len;
	nops = (size - CTRL_BYTES - 2 - img_len) / OP_LEN;

	x = new_xhci(ctl[0] & 1);
	if (!(ctl[0] & 4)) {
		wr(XHCI_OP_CONFIG, XHCI_MAX_SLOTS);
		wr(XHCI_OP_DCBAAP, (uint32_t)IMAGE_GPA);
		wr(XHCI_OP_CRCR, (uint32_t)(IMAGE_GPA + 0x400) | 1);
		wr(XHCI_RT_IR0 + XHCI_IR_ERSTSZ, ctl[1] % 4);
		wr(XHCI_RT_IR0 + XHCI_IR_ERDP, (uint32_t)(IMAGE_GPA + 0x1000));
		wr(XHCI_RT_IR0 + XHCI_IR_ERSTBA, (uint32_t)(IMAGE_GPA + 0x800));
		wr(XHCI_RT_IR0 + XHCI_IR_ERSTBA + 4, 0);
		wr(XHCI_RT_IR0 + XHCI_IR_IMAN, XHCI_IMAN_IE);
		wr(XHCI_OP_USBCMD, XHCI_CMD_RS | XHCI_CMD_INTE);
	}
	for (size_t i = 0; i < nops; i++, op += OP_LEN) {
		uint64_t off = le16(op + 1) % XHCI_BAR_SIZE & ~3u;
		uint32_t v = le32(op + 4) + ((op[3] & 1) ? (uint32_t)IMAGE_GPA : 0);
		struct usb_hid *h;

		switch (op[0] % 5) {
		case 0:
			wr(off, v);
			break;
		case 1:
			bus_read(mmio, BAR_ADDR + off, 4, NULL);
			break;
		case 2:
			wr(XHCI_DB + 4 * (op[1] % 34), op[2]);
			break;
		case 3:
			h = xhci_hid(x, USB_HID_TABLET);
			usb_tablet_input_ops.abs(h, le16(op + 1), le16(op + 3),
						 (int8_t)op[6], op[5]);
			break;
		case 4:
			h = xhci_hid(x, USB_HID_KEYBOARD);
			usb_keyboard_input_ops.key(h, op[1], op[2] & 1);
			break;
		}
	}
	if (ctl[0] & 2) {
		GVariant *a = save(x), *b;
		char err[256] = "";

		xhci_free(x);
		x = new_xhci(ctl[0] & 1);
		if (xhci_device_ops.load(x, 1, a, err, sizeof(err)) < 0) {
			fprintf(stderr, "fuzz_xhci: %s\n", err);
			fail("a saved state did not load");
		}
		b = save(x);
		if (!g_variant_equal(a, b))
			fail("the loaded state saves differently");
		g_variant_unref(a);
		g_variant_unref(b);
	}
	xhci_free(x);
	return 0;
}

/* Seeds: the standard start with a command ring of Enable Slot, Address
 * Device (input context in the image) and No Op, then doorbell 0. */
void fuzz_make_seeds(void (*add)(const void *data, size_t len))
{
	static uint8_t s[CTRL_BYTES + 2 + 0x2000 + 4 * OP_LEN];
	uint8_t *img = s + CTRL_BYTES + 2, *op;
	uint32_t t;

	memset(s, 0, sizeof(s));
	s[0] = 2;			/* save/load at the end */
	s[1] = 1;			/* one event ring segment */
	s[CTRL_BYTES] = 0x00;
	s[CTRL_BYTES + 1] = 0x20;	/* image 0x2000 bytes */
	/* DCBAA[1] = IMAGE + 0x1800 (output device context). */
	t = (uint32_t)IMAGE_GPA + 0x1800;
	memcpy(img + 8, &t, 4);
	/* Command ring at 0x400. */
	t = 9 << 10 | 1;			/* Enable Slot */
	memcpy(img + 0x400 + 12, &t, 4);
	t = (uint32_t)IMAGE_GPA + 0x1400;	/* Address Device, slot 1 */
	memcpy(img + 0x410, &t, 4);
	t = 11 << 10 | 1 | 1u << 24;
	memcpy(img + 0x410 + 12, &t, 4);
	t = 23 << 10 | 1;			/* No Op */
	memcpy(img + 0x420 + 12, &t, 4);
	/* ERST: one segment of 16 TRBs at 0x1000. */
	t = (uint32_t)IMAGE_GPA + 0x1000;
	memcpy(img + 0x800, &t, 4);
	img[0x808] = 16;
	/* Input context at 0x1400: A0 A1, port 1, EP0 control. */
	img[0x1404] = 3;
	t = 1u << 16;
	memcpy(img + 0x1400 + 32 + 4, &t, 4);
	t = 64u << 16 | 4 << 3;
	memcpy(img + 0x1400 + 64 + 4, &t, 4);
	t = ((uint32_t)IMAGE_GPA + 0x1c00) | 1;
	memcpy(img + 0x1400 + 64 + 8, &t, 4);
	op = img + 0x2000;
	/* Reset port 1, then ring doorbell 0, then tablet input. */
	op[0] = 0;
	op[1] = (uint8_t)XHCI_OP_PORTSC(1);
	op[2] = (uint8_t)(XHCI_OP_PORTSC(1) >> 8);
	t = XHCI_PORT_PP | XHCI_PORT_PR;
	memcpy(op + 4, &t, 4);
	op += OP_LEN;
	op[0] = 2;
	op += OP_LEN;
	op[0] = 3;
	op[1] = 0x40;
	op += OP_LEN;
	op[0] = 2;
	op[1] = 1;
	op[2] = 1;
	add(s, sizeof(s));
}
