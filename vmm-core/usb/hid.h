/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/usb/hid.h - USB HID devices (Device Class Definition for HID
 * 1.11) on the usb.h interface: a tablet (an absolute pointer: 5 buttons,
 * X and Y 0..0x7fff, a wheel; report protocol) and a keyboard (the boot
 * protocol of HID 1.11 appendix B.1: modifiers byte, reserved byte, six
 * key usages; LEDs as a one-byte output report).  Both are full-speed
 * devices with one configuration, one interface and an interrupt IN
 * endpoint 1 (8-byte packets, bInterval 10 ms), IDs 0627:0001 as QEMU's
 * USB HID devices so guests' quirk tables treat them alike.
 *
 * Reports queue (at most USB_HID_QUEUE); when full the newest replaces
 * the last queued one (a tablet's wheel steps add up): a guest that stops
 * polling costs a bounded queue and, when it polls again, sees the
 * current state.  The interrupt endpoint NAKs with nothing queued; a new
 * report wakes the controller (usb_device_wakeup()).
 *
 * Console routing: a device is active while the guest's driver polls it
 * (the controller running, the device configured and its interrupt
 * endpoint running).  The tablet is "usb-tablet", CONSOLE_INPUT_ABS, prio
 * 1; the keyboard "usb-keyboard", CONSOLE_INPUT_KEY.
 *
 * Locking: every call with the device lock held (the console's calls
 * take it).
 */
#ifndef VIVARIUM_USB_HID_H
#define VIVARIUM_USB_HID_H

#include <stdbool.h>
#include <stdint.h>

#include "usb.h"

struct console_input_dev_ops;

enum usb_hid_kind {
	USB_HID_TABLET,
	USB_HID_KEYBOARD,
};

#define USB_HID_QUEUE		16
#define USB_HID_REPORT_MAX	8
#define USB_HID_TABLET_REPORT	6	/* buttons, X le16, Y le16, wheel */
#define USB_HID_KBD_REPORT	8

struct usb_hid {
	struct usb_device dev;		/* first: usb_device* is usb_hid* */
	enum usb_hid_kind kind;
	uint8_t protocol;		/* 0 boot, 1 report */
	uint8_t idle;			/* SET_IDLE duration, 4 ms units */
	uint8_t leds;			/* keyboard: HID LED bits */
	uint8_t queue[USB_HID_QUEUE][USB_HID_REPORT_MAX];
	unsigned head, n;
	uint8_t last[USB_HID_REPORT_MAX];	/* the current state */
	uint8_t keys[6], nkeys, mods;		/* keyboard */
};

/* A device of @kind, detached and unconfigured. */
void usb_hid_init(struct usb_hid *hid, enum usb_hid_kind kind);

/* The console's view (console_add_input() with the device lock). */
extern const struct console_input_dev_ops usb_tablet_input_ops;
extern const struct console_input_dev_ops usb_keyboard_input_ops;

#endif
