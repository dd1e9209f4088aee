// SPDX-License-Identifier: MIT
/* vmm-core/usb/usb.c - the standard device requests (USB 2.0 §9.4). */
#include <string.h>

#include "usb.h"

static int copy_out(uint8_t *data, unsigned wlength, const void *src,
		    size_t len)
{
	if (len > wlength)
		len = wlength;
	memcpy(data, src, len);
	return (int)len;
}

static int get_descriptor(const struct usb_desc *desc,
			  const struct usb_setup *s, uint8_t *data)
{
	unsigned type = s->wValue >> 8, idx = s->wValue & 0xff;
	uint8_t buf[2 + 2 * 126];

	switch (type) {
	case USB_DT_DEVICE:
		return copy_out(data, s->wLength, desc->device, 18);
	case USB_DT_CONFIG:
		if (idx != 0)
			return USB_RET_STALL;
		return copy_out(data, s->wLength, desc->config,
				desc->config[2] | desc->config[3] << 8);
	case USB_DT_STRING: {
		size_t n;

		if (idx == 0) {	/* the language IDs: US English */
			static const uint8_t langs[4] = { 4, USB_DT_STRING,
							  0x09, 0x04 };
			return copy_out(data, s->wLength, langs, 4);
		}
		if (idx > desc->nstrings)
			return USB_RET_STALL;
		n = strlen(desc->strings[idx - 1]);
		if (n > 126)
			n = 126;
		buf[0] = (uint8_t)(2 + 2 * n);
		buf[1] = USB_DT_STRING;
		for (size_t i = 0; i < n; i++) {	/* UTF-16LE */
			buf[2 + 2 * i] = (uint8_t)desc->strings[idx - 1][i];
			buf[3 + 2 * i] = 0;
		}
		return copy_out(data, s->wLength, buf, 2 + 2 * n);
	}
	default:
		return USB_RET_STALL;
	}
}

int usb_std_control(struct usb_device *dev, const struct usb_desc *desc,
		    const struct usb_setup *s, uint8_t *data)
{
	bool in = s->bmRequestType & USB_DIR_IN;
	unsigned recip = s->bmRequestType & USB_RECIP_MASK;

	if ((s->bmRequestType & USB_TYPE_MASK) != USB_TYPE_STANDARD)
		return -ENOENT;
	switch (s->bRequest) {
	case USB_REQ_GET_DESCRIPTOR:
		if (!in || recip != USB_RECIP_DEVICE)
			return -ENOENT;	/* class descriptors: the device's */
		return get_descriptor(desc, s, data);
	case USB_REQ_GET_CONFIGURATION:
		if (!in)
			return USB_RET_STALL;
		return copy_out(data, s->wLength, &dev->config, 1);
	case USB_REQ_SET_CONFIGURATION:
		if (in || s->wValue > 1)
			return USB_RET_STALL;
		dev->config = (uint8_t)s->wValue;
		return 0;
	case USB_REQ_SET_ADDRESS:
		if (in || s->wValue > 127)
			return USB_RET_STALL;
		dev->addr = (uint8_t)s->wValue;
		return 0;
	case USB_REQ_GET_STATUS: {
		/* Device: self powered no, remote wakeup no; others 0. */
		static const uint8_t zero[2];

		if (!in)
			return USB_RET_STALL;
		return copy_out(data, s->wLength, zero, 2);
	}
	case USB_REQ_GET_INTERFACE: {
		static const uint8_t alt0;

		if (!in || !dev->config)
			return USB_RET_STALL;
		return copy_out(data, s->wLength, &alt0, 1);
	}
	case USB_REQ_SET_INTERFACE:
		return s->wValue == 0 ? 0 : USB_RET_STALL;
	case USB_REQ_CLEAR_FEATURE:
	case USB_REQ_SET_FEATURE:
		return in ? USB_RET_STALL : 0;
	default:
		return USB_RET_STALL;
	}
}
