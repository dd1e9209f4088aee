/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_xhci.c - the xHCI controller (vmm-core/usb/xhci.c) with
 * its HID tablet and keyboard, and two devices that answer later
 * (usb_device_ops.submit: high speed on port 3, SuperSpeed on port 5, as
 * host passthrough does), against arbitrary command rings, event ring
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
 *               5 an asynchronous device (byte 1 bit 0: which) completes
 *                 its transfer in flight on index byte 2 % 32 (ep * 2 +
 *                 in; 0 control) with byte 3 % 6: le16 bytes 4-5, STALL,
 *                 NODEV, BABBLE, IOERROR, or 1 MiB (more than asked),
 *                 writing byte 6 into the IN buffer
 *               6 unplug that device (usb_device_unplug) or plug it back
 * (byte 0 % 7.)  Checked besides: a device never holds a transfer the
 * controller cancelled (ASan sees a use after free otherwise) and holds
 * none once the controller is freed.
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
#include "fuzzlib.h"

#include "bus.h"
#include "devices/pci.h"
#include "display/console.h"
#include "log.h"
#include "mem.h"
#include "usb/hid.h"
#include "usb/usb.h"
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

const char fuzz_target[] = "fuzz_xhci";

/* A device that keeps every transfer for later. */
struct adev {
	struct usb_device dev;
	struct usb_xfer *cur[32];	/* ep * 2 + in; control at 0 */
	unsigned port;
	bool plugged;
};
static struct adev adevs[2];

static unsigned xidx(const struct usb_xfer *u)
{
	return u->ep ? u->ep * 2 + u->in : 0;
}

static void a_reset(struct usb_device *d) { d->addr = 0; d->config = 0; }

static int a_control(struct usb_device *d, const struct usb_setup *s,
		     uint8_t *data)
{
	(void)data;
	if (s->bRequest == USB_REQ_SET_ADDRESS && s->wValue <= 127) {
		d->addr = (uint8_t)s->wValue;
		return 0;
	}
	return USB_RET_STALL;
}

static int a_data(struct usb_device *d, unsigned ep, bool in, uint8_t *buf,
		  size_t len)
{
	(void)d; (void)ep; (void)in; (void)buf; (void)len;
	return USB_RET_STALL;
}

static int a_submit(struct usb_device *d, struct usb_xfer *u)
{
	struct adev *a = (struct adev *)d;

	if (a->cur[xidx(u)])
		fuzz_fail("two transfers in flight on one endpoint");
	a->cur[xidx(u)] = u;
	return USB_RET_ASYNC;
}

static void a_cancel(struct usb_device *d, struct usb_xfer *u)
{
	struct adev *a = (struct adev *)d;

	if (a->cur[xidx(u)] != u)
		fuzz_fail("cancel of a transfer the device does not hold");
	a->cur[xidx(u)] = NULL;
}

static const struct usb_device_ops a_ops = {
	.name = "async", .reset = a_reset, .control = a_control,
	.data = a_data, .submit = a_submit, .cancel = a_cancel,
};

static void a_plug(struct xhci *x, struct adev *a)
{
	if (!a->plugged && xhci_attach(x, a->port, &a->dev) == 0)
		a->plugged = true;
}

static void a_complete(struct adev *a, const uint8_t *op)
{
	static const int errs[] = { USB_RET_STALL, USB_RET_NODEV,
				    USB_RET_BABBLE, USB_RET_IOERROR };
	unsigned i = op[2] % 32, how = op[3] % 6;
	struct usb_xfer *u = a->cur[i];
	int r;

	if (!u)
		return;
	a->cur[i] = NULL;
	r = how == 0 ? (int)(op[4] | op[5] << 8) : how == 5 ? 1 << 20
							    : errs[how - 1];
	if (u->in && u->len)
		memset(u->buf, op[6], u->len);
	usb_xfer_complete(u, r);
}

static void init_once(void)
{
	if (ready)
		return;
	log_set_level(LOG_ERROR);	/* hostile input logs warnings */
	fuzz_ram(&mem, FUZZ_RAM);
	host = fuzz_pci_host(&pio, &mmio, &fuzz_no_irqs, NULL);
	ready = true;
}

static struct xhci *new_xhci(bool msix)
{
	struct xhci_config c = { .pci = host, .devfn = DEVFN, .mem = &mem,
				 .hid = true };
	char err[256];
	struct xhci *x = xhci_new(&c, err, sizeof(err));

	if (!x)
		fuzz_fail(err);
	for (unsigned i = 0; i < 2; i++) {
		memset(&adevs[i], 0, sizeof(adevs[i]));
		adevs[i].dev.ops = &a_ops;
		adevs[i].dev.speed = i ? USB_SPEED_SUPER : USB_SPEED_HIGH;
		adevs[i].port = i ? 5 : 3;
		a_plug(x, &adevs[i]);
	}
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

/* After xhci_free(): no device holds a transfer. */
static void check_released(void)
{
	for (unsigned i = 0; i < 2; i++)
		for (unsigned k = 0; k < 32; k++)
			if (adevs[i].cur[k])
				fuzz_fail("a transfer outlived the controller");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *ctl = data, *op;
	size_t nops;
	struct xhci *x;

	init_once();
	if (size < CTRL_BYTES + 2)
		return 0;
	op = fuzz_image(&mem, IMAGE_GPA, IMAGE_MAX, data, size, CTRL_BYTES + 2,
			fuzz_le16(data + CTRL_BYTES), &nops);
	nops /= OP_LEN;

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
		uint64_t off = fuzz_le16(op + 1) % XHCI_BAR_SIZE & ~3u;
		uint32_t v = fuzz_le32(op + 4) +
			     ((op[3] & 1) ? (uint32_t)IMAGE_GPA : 0);
		struct usb_hid *h;

		switch (op[0] % 7) {
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
			usb_tablet_input_ops.abs(h, fuzz_le16(op + 1),
						 fuzz_le16(op + 3),
						 (int8_t)op[6], op[5]);
			break;
		case 4:
			h = xhci_hid(x, USB_HID_KEYBOARD);
			usb_keyboard_input_ops.key(h, op[1], op[2] & 1);
			break;
		case 5:
			a_complete(&adevs[op[1] & 1], op);
			break;
		case 6:
			if (adevs[op[1] & 1].plugged) {
				usb_device_unplug(&adevs[op[1] & 1].dev);
				adevs[op[1] & 1].plugged = false;
			} else {
				a_plug(x, &adevs[op[1] & 1]);
			}
			break;
		}
	}
	for (unsigned i = 0; i < 2; i++)	/* the new one has them */
		a_plug(x, &adevs[i]);
	if (ctl[0] & 2) {
		GVariant *a = fuzz_save(&xhci_device_ops, x, "save failed");

		xhci_free(x);
		check_released();
		x = new_xhci(ctl[0] & 1);
		fuzz_load_same(&xhci_device_ops, x, a, "save failed");
	}
	xhci_free(x);
	check_released();
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

	/* The asynchronous device on port 3: addressed, a GET_DESCRIPTOR on
	 * EP0 submitted, completed, another submitted, then a Stop Endpoint
	 * and HCRST cancel. */
	{
		static uint8_t s2[CTRL_BYTES + 2 + 0x2000 + 8 * OP_LEN];
		uint8_t *img2 = s2 + CTRL_BYTES + 2;
		uint64_t q;

		memcpy(s2, s, CTRL_BYTES + 2 + 0x2000);
		t = 3u << 16;			/* the input context's port */
		memcpy(img2 + 0x1400 + 32 + 4, &t, 4);
		/* EP0 ring at 0x1c00: Setup (IN, 18 bytes), Data, Status. */
		q = 0x80 | 6 << 8 | 0x0100u << 16 | 18ull << 48;
		memcpy(img2 + 0x1c00, &q, 8);
		t = 8;
		memcpy(img2 + 0x1c00 + 8, &t, 4);
		t = 2 << 10 | 1u << 6 | 1 | 3u << 16;
		memcpy(img2 + 0x1c00 + 12, &t, 4);
		q = IMAGE_GPA + 0x1e00;
		memcpy(img2 + 0x1c10, &q, 8);
		t = 18;
		memcpy(img2 + 0x1c10 + 8, &t, 4);
		t = 3 << 10 | 1u << 16 | 1;
		memcpy(img2 + 0x1c10 + 12, &t, 4);
		t = 4 << 10 | 1u << 5 | 1;
		memcpy(img2 + 0x1c20 + 12, &t, 4);
		/* Stop Endpoint (slot 1, DCI 1) after the No Op. */
		t = 15 << 10 | 1 | 1u << 16 | 1u << 24;
		memcpy(img2 + 0x430 + 12, &t, 4);
		op = img2 + 0x2000;
		memset(op, 0, 8 * OP_LEN);
		op[1] = (uint8_t)XHCI_OP_PORTSC(3);	/* reset port 3 */
		op[2] = (uint8_t)(XHCI_OP_PORTSC(3) >> 8);
		t = XHCI_PORT_PP | XHCI_PORT_PR;
		memcpy(op + 4, &t, 4);
		op += OP_LEN;
		op[0] = 2;			/* doorbell 0: the commands */
		op += OP_LEN;
		op[0] = 2;			/* doorbell 1, EP0 */
		op[1] = 1;
		op[2] = 1;
		op += OP_LEN;
		op[0] = 5;			/* the device answers 18 bytes */
		op[4] = 18;
		op[6] = 0x12;
		op += OP_LEN;
		op[0] = 2;
		op[1] = 1;
		op[2] = 1;
		op += OP_LEN;
		op[0] = 6;			/* unplugged */
		op += OP_LEN;
		op[0] = 6;			/* and back */
		op += OP_LEN;
		op[1] = (uint8_t)XHCI_OP_USBCMD;	/* HCRST */
		op[2] = (uint8_t)(XHCI_OP_USBCMD >> 8);
		t = XHCI_CMD_HCRST;
		memcpy(op + 4, &t, 4);
		add(s2, sizeof(s2));
	}
}
