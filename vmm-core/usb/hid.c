// SPDX-License-Identifier: MIT
/* vmm-core/usb/hid.c - the USB HID tablet and keyboard (hid.h). */
#include <string.h>

#include "hid.h"
#include "../display/console.h"
#include "../input/keymap.h"

#define HID_DT_HID		0x21
#define HID_DT_REPORT		0x22
#define HID_GET_REPORT		0x01
#define HID_GET_IDLE		0x02
#define HID_GET_PROTOCOL	0x03
#define HID_SET_REPORT		0x09
#define HID_SET_IDLE		0x0a
#define HID_SET_PROTOCOL	0x0b

/* HID 1.11 §6.2.2 items: Generic Desktop mouse with absolute X/Y. */
static const uint8_t tablet_report_desc[] = {
	0x05, 0x01, 0x09, 0x02, 0xa1, 0x01,	/* GD, Mouse, Application */
	0x09, 0x01, 0xa1, 0x00,			/* Pointer, Physical */
	0x05, 0x09, 0x19, 0x01, 0x29, 0x05,	/* Buttons 1-5 */
	0x15, 0x00, 0x25, 0x01, 0x95, 0x05, 0x75, 0x01,
	0x81, 0x02,				/* Input (Data,Var,Abs) */
	0x95, 0x01, 0x75, 0x03, 0x81, 0x01,	/* 3 bits padding */
	0x05, 0x01, 0x09, 0x30, 0x09, 0x31,	/* X, Y */
	0x15, 0x00, 0x26, 0xff, 0x7f,		/* 0..32767 */
	0x35, 0x00, 0x46, 0xff, 0x7f,
	0x75, 0x10, 0x95, 0x02, 0x81, 0x02,	/* 2 x 16 bits, Abs */
	0x09, 0x38, 0x15, 0x81, 0x25, 0x7f,	/* Wheel -127..127 */
	0x35, 0x00, 0x45, 0x00,
	0x75, 0x08, 0x95, 0x01, 0x81, 0x06,	/* 8 bits, Rel */
	0xc0, 0xc0,
};

/* HID 1.11 appendix B.1: the boot keyboard's descriptor. */
static const uint8_t kbd_report_desc[] = {
	0x05, 0x01, 0x09, 0x06, 0xa1, 0x01,	/* GD, Keyboard, Application */
	0x05, 0x07, 0x19, 0xe0, 0x29, 0xe7,	/* modifiers */
	0x15, 0x00, 0x25, 0x01, 0x75, 0x01, 0x95, 0x08, 0x81, 0x02,
	0x95, 0x01, 0x75, 0x08, 0x81, 0x01,	/* reserved byte */
	0x95, 0x05, 0x75, 0x01, 0x05, 0x08,	/* 5 LEDs */
	0x19, 0x01, 0x29, 0x05, 0x91, 0x02,
	0x95, 0x01, 0x75, 0x03, 0x91, 0x01,	/* LED padding */
	0x95, 0x06, 0x75, 0x08, 0x15, 0x00, 0x26, 0xff, 0x00,
	0x05, 0x07, 0x19, 0x00, 0x29, 0xff, 0x81, 0x00,	/* 6 keys: usages 0-255 */
	0xc0,
};

#define DEVICE_DESC(product)						\
	{ 18, USB_DT_DEVICE, 0x00, 0x02, 0, 0, 0, 64,			\
	  0x27, 0x06, 0x01, 0x00, 0x00, 0x01, 1, (product), 3, 1 }

static const uint8_t tablet_device_desc[18] = DEVICE_DESC(2);
static const uint8_t kbd_device_desc[18] = DEVICE_DESC(2);

#define CONFIG_DESC(subclass, proto, rlen)				\
	{ 9, USB_DT_CONFIG, 34, 0, 1, 1, 0, 0xa0, 50,			\
	  9, USB_DT_INTERFACE, 0, 0, 1, 3, (subclass), (proto), 0,	\
	  9, HID_DT_HID, 0x11, 0x01, 0, 1, HID_DT_REPORT, (rlen), 0,	\
	  7, USB_DT_ENDPOINT, 0x81, 0x03, 8, 0, 10 }

static const uint8_t tablet_config_desc[34] =
	CONFIG_DESC(0, 0, sizeof(tablet_report_desc));
static const uint8_t kbd_config_desc[34] =
	CONFIG_DESC(1, 1, sizeof(kbd_report_desc));

/* Manufacturer, product, serial: Linux names the input device
 * "Manufacturer Product" ("Vivarium USB Tablet"). */
static const char *const tablet_strings[] = {
	"Vivarium", "USB Tablet", "vivarium-usb-tablet",
};
static const char *const kbd_strings[] = {
	"Vivarium", "USB Keyboard", "vivarium-usb-keyboard",
};

static const struct usb_desc tablet_desc = {
	tablet_device_desc, tablet_config_desc, tablet_strings, 3,
};
static const struct usb_desc kbd_desc = {
	kbd_device_desc, kbd_config_desc, kbd_strings, 3,
};

static struct usb_hid *to_hid(struct usb_device *dev)
{
	return (struct usb_hid *)dev;
}

static unsigned report_len(const struct usb_hid *h)
{
	return h->kind == USB_HID_TABLET ? USB_HID_TABLET_REPORT
					 : USB_HID_KBD_REPORT;
}

static void hid_reset(struct usb_device *dev)
{
	struct usb_hid *h = to_hid(dev);

	dev->addr = 0;
	dev->config = 0;
	h->protocol = 1;
	h->idle = 0;
	h->head = h->n = 0;
}

static int copy_out(uint8_t *data, unsigned wlength, const void *src,
		    size_t len)
{
	if (len > wlength)
		len = wlength;
	memcpy(data, src, len);
	return (int)len;
}

static int hid_control(struct usb_device *dev, const struct usb_setup *s,
		       uint8_t *data)
{
	struct usb_hid *h = to_hid(dev);
	bool tablet = h->kind == USB_HID_TABLET;
	const uint8_t *rdesc = tablet ? tablet_report_desc : kbd_report_desc;
	size_t rlen = tablet ? sizeof(tablet_report_desc)
			     : sizeof(kbd_report_desc);
	int r = usb_std_control(dev, tablet ? &tablet_desc : &kbd_desc, s,
				data);

	if (r != -ENOENT)
		return r;
	if (s->bmRequestType == (USB_DIR_IN | USB_RECIP_INTERFACE) &&
	    s->bRequest == USB_REQ_GET_DESCRIPTOR && s->wIndex == 0) {
		if (s->wValue >> 8 == HID_DT_REPORT)
			return copy_out(data, s->wLength, rdesc, rlen);
		if (s->wValue >> 8 == HID_DT_HID)
			return copy_out(data, s->wLength,
					(tablet ? tablet_config_desc
						: kbd_config_desc) + 18, 9);
		return USB_RET_STALL;
	}
	if ((s->bmRequestType & (USB_TYPE_MASK | USB_RECIP_MASK)) !=
	    (USB_TYPE_CLASS | USB_RECIP_INTERFACE) || s->wIndex != 0)
		return USB_RET_STALL;
	switch (s->bRequest) {
	case HID_GET_REPORT:
		return copy_out(data, s->wLength, h->last, report_len(h));
	case HID_GET_IDLE:
		return copy_out(data, s->wLength, &h->idle, 1);
	case HID_GET_PROTOCOL:
		return copy_out(data, s->wLength, &h->protocol, 1);
	case HID_SET_IDLE:
		h->idle = s->wValue >> 8;
		return 0;
	case HID_SET_PROTOCOL:
		if (s->wValue > 1)
			return USB_RET_STALL;
		h->protocol = (uint8_t)s->wValue;
		return 0;
	case HID_SET_REPORT:
		/* Output report: the keyboard's LEDs (one byte). */
		if (!tablet && s->wLength >= 1)
			h->leds = data[0] & 0x1f;
		return 0;
	default:
		return USB_RET_STALL;
	}
}

static int hid_data(struct usb_device *dev, unsigned ep, bool in,
		    uint8_t *buf, size_t len)
{
	struct usb_hid *h = to_hid(dev);
	unsigned n = report_len(h);

	if (ep != 1 || !in || !dev->config)
		return USB_RET_STALL;
	if (!h->n)
		return USB_RET_NAK;
	if (n > len)
		n = (unsigned)len;	/* the rest is lost, as on a wire */
	memcpy(buf, h->queue[h->head], n);
	h->head = (h->head + 1) % USB_HID_QUEUE;
	h->n--;
	return (int)n;
}

/* Queue the current state (h->last); a full queue takes it in place of
 * its newest entry. */
static void push_report(struct usb_hid *h, int wheel)
{
	uint8_t *slot;

	if (h->n == USB_HID_QUEUE) {
		slot = h->queue[(h->head + h->n - 1) % USB_HID_QUEUE];
		if (h->kind == USB_HID_TABLET) {
			wheel += (int8_t)slot[5];
			wheel = wheel > 127 ? 127 : wheel < -127 ? -127 : wheel;
		}
	} else {
		slot = h->queue[(h->head + h->n) % USB_HID_QUEUE];
		h->n++;
	}
	memcpy(slot, h->last, USB_HID_REPORT_MAX);
	if (h->kind == USB_HID_TABLET)
		slot[5] = (uint8_t)(int8_t)wheel;
	usb_device_wakeup(&h->dev, 1);
}

/* Device state: protocol, idle, leds, n, configuration, address, the queued reports, last, keys,
 * nkeys, mods. */
static size_t hid_save(struct usb_device *dev, uint8_t *out)
{
	struct usb_hid *h = to_hid(dev);
	size_t o = 0;

	out[o++] = h->protocol;
	out[o++] = h->idle;
	out[o++] = h->leds;
	out[o++] = (uint8_t)h->n;
	out[o++] = dev->config;
	out[o++] = dev->addr;
	for (unsigned i = 0; i < h->n; i++, o += USB_HID_REPORT_MAX)
		memcpy(out + o, h->queue[(h->head + i) % USB_HID_QUEUE],
		       USB_HID_REPORT_MAX);
	memcpy(out + o, h->last, USB_HID_REPORT_MAX);
	o += USB_HID_REPORT_MAX;
	memcpy(out + o, h->keys, 6);
	o += 6;
	out[o++] = h->nkeys;
	out[o++] = h->mods;
	return o;
}

static int hid_load(struct usb_device *dev, const uint8_t *in, size_t len)
{
	struct usb_hid *h = to_hid(dev);
	const uint8_t *q = in + 6, *tail;
	unsigned n;

	if (len < 6)
		return -EINVAL;
	n = in[3];
	if (in[0] > 1 || n > USB_HID_QUEUE || in[4] > 1 || in[5] > 127 ||
	    len != 6 + (n + 1) * USB_HID_REPORT_MAX + 8)
		return -EINVAL;
	tail = q + (n + 1) * USB_HID_REPORT_MAX;	/* keys, nkeys, mods */
	if (tail[6] > 6)
		return -EINVAL;
	h->protocol = in[0];
	h->idle = in[1];
	h->leds = in[2] & 0x1f;
	dev->config = in[4];
	dev->addr = in[5];
	h->head = 0;
	h->n = n;
	memcpy(h->queue, q, n * USB_HID_REPORT_MAX);
	memcpy(h->last, q + n * USB_HID_REPORT_MAX, USB_HID_REPORT_MAX);
	memcpy(h->keys, tail, 6);
	h->nkeys = tail[6];
	h->mods = tail[7];
	return 0;
}

static const struct usb_device_ops hid_ops = {
	.name = "usb-hid",
	.reset = hid_reset,
	.control = hid_control,
	.data = hid_data,
	.save = hid_save,
	.load = hid_load,
};

void usb_hid_init(struct usb_hid *h, enum usb_hid_kind kind)
{
	memset(h, 0, sizeof(*h));
	h->kind = kind;
	h->dev.ops = &hid_ops;
	h->dev.speed = USB_SPEED_FULL;
	hid_reset(&h->dev);
}

/* ---- the console's side ------------------------------------------------ */

static bool hid_active(void *opaque)
{
	struct usb_hid *h = opaque;

	return h->dev.config && usb_device_ep_running(&h->dev, 1);
}

static void tablet_abs(void *opaque, unsigned x, unsigned y, int dz,
		       unsigned buttons)
{
	struct usb_hid *h = opaque;
	int wheel = -dz;	/* HID: + is away from the user */

	if (x > CONSOLE_ABS_MAX)
		x = CONSOLE_ABS_MAX;
	if (y > CONSOLE_ABS_MAX)
		y = CONSOLE_ABS_MAX;
	wheel = wheel > 127 ? 127 : wheel < -127 ? -127 : wheel;
	h->last[0] = buttons & 0x1f;	/* CONSOLE_BTN_* are HID's order */
	h->last[1] = x & 0xff;
	h->last[2] = x >> 8;
	h->last[3] = y & 0xff;
	h->last[4] = y >> 8;
	h->last[5] = 0;
	push_report(h, wheel);
}

/* KEY_* to keyboard usage (HID Usage Tables §10), from keymap_from_usb. */
static unsigned usage_of(unsigned keycode)
{
	static uint8_t table[8 * KEYMAP_KEYS_BYTES];
	static bool built;

	if (!built) {
		for (unsigned u = 0xe7; u > 3; u--) {
			unsigned k = keymap_from_usb(u);

			if (k && k < sizeof(table) && !table[k])
				table[k] = (uint8_t)u;
		}
		built = true;
	}
	return keycode < sizeof(table) ? table[keycode] : 0;
}

static void kbd_key(void *opaque, unsigned keycode, bool down)
{
	struct usb_hid *h = opaque;
	unsigned u = usage_of(keycode);
	unsigned i;

	if (!u)
		return;
	if (u >= 0xe0) {
		if (down)
			h->mods |= 1u << (u - 0xe0);
		else
			h->mods &= ~(1u << (u - 0xe0));
	} else {
		for (i = 0; i < h->nkeys && h->keys[i] != u; i++)
			;
		if (down && i == h->nkeys) {
			if (h->nkeys == 6)
				return;	/* a seventh key: a real one ghosts */
			h->keys[h->nkeys++] = (uint8_t)u;
		} else if (!down && i < h->nkeys) {
			memmove(h->keys + i, h->keys + i + 1, h->nkeys - i - 1);
			h->nkeys--;
		} else {
			return;		/* repeat, or up without down */
		}
	}
	memset(h->last, 0, sizeof(h->last));
	h->last[0] = h->mods;
	memcpy(h->last + 2, h->keys, h->nkeys);
	push_report(h, 0);
}

static unsigned kbd_leds(void *opaque)
{
	struct usb_hid *h = opaque;
	unsigned l = 0;

	if (h->leds & 0x1)
		l |= CONSOLE_LED_NUM;
	if (h->leds & 0x2)
		l |= CONSOLE_LED_CAPS;
	if (h->leds & 0x4)
		l |= CONSOLE_LED_SCROLL;
	return l;
}

/*
 * Prio 1, before vmmouse (now 2), after the virtio tablet (0): a guest
 * that drives the USB tablet polls it (Linux's usbhid only while a client
 * has the evdev open; firmware never polls a non-boot device), each
 * report carries buttons, position and wheel in one interrupt, where
 * vmmouse costs a PS/2 interrupt and several backdoor port reads per
 * event; the virtio tablet needs no polling at all.
 */
const struct console_input_dev_ops usb_tablet_input_ops = {
	.name = "usb-tablet",
	.caps = CONSOLE_INPUT_ABS,
	.prio = 1,
	.abs_max = CONSOLE_ABS_MAX,
	.active = hid_active,
	.abs = tablet_abs,
};

const struct console_input_dev_ops usb_keyboard_input_ops = {
	.name = "usb-keyboard",
	.caps = CONSOLE_INPUT_KEY,
	.active = hid_active,
	.key = kbd_key,
	.leds = kbd_leds,
};
