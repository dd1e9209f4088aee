/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/virtio/virtio_input.h - the virtio input device (virtio 1.2
 * §5.8, device ID 18) on the PCI transport (virtio_pci.h, PCI ID
 * 1af4:1052, class 0x098000 "input, other"), in two kinds: a keyboard and
 * a tablet (an absolute pointer).  Linux's virtio_input driver (a module
 * in Debian's kernel) turns each into an evdev device.
 *
 * Queues: eventq 0 (device -> driver: one struct virtio_input_event per
 * buffer), statusq 1 (driver -> device: LED state and whatever else the
 * guest's input core passes down); no feature bits of its own.
 *
 * Configuration space (§5.8.4): the driver writes select and subsel, and
 * reads size and u (VIRTIO_INPUT_CFG_*):
 *   ID_NAME     "Vivarium Virtio Keyboard" / "Vivarium Virtio Tablet"
 *   ID_SERIAL   "vivarium-keyboard" / "vivarium-tablet"
 *   ID_DEVIDS   bus BUS_VIRTUAL, vendor 0x0627, product 0x0001 (keyboard)
 *               / 0x0003 (tablet), version 1: the ids QEMU's devices carry,
 *               so guests' quirk tables treat them alike
 *   PROP_BITS   none (size 0): not INPUT_PROP_DIRECT, as QEMU's tablet; with
 *               ABS_X/ABS_Y and BTN_LEFT, udev's input_id calls the tablet
 *               ID_INPUT_MOUSE and libinput and Xorg's evdev driver use it
 *               as a pointer with absolute motion (a touchscreen would be
 *               direct, a graphics tablet would have BTN_TOOL_PEN)
 *   EV_BITS     keyboard: EV_KEY (every KEY_* the console's frontends
 *               produce: keymap_keys()), EV_REP (size 1, no codes: the
 *               guest's input core repeats), EV_LED (NUML, CAPSL,
 *               SCROLLL); tablet: EV_KEY (BTN_LEFT, RIGHT, MIDDLE, SIDE,
 *               EXTRA), EV_REL (REL_WHEEL), EV_ABS (ABS_X, ABS_Y)
 *   ABS_INFO    tablet, ABS_X and ABS_Y: min 0, max CONSOLE_ABS_MAX
 *               (0x7fff), fuzz 0, flat 0, res 0
 * Anything else reads size 0 and a zeroed u.
 *
 * Events: the console (display/console.h) hands the device a key
 * (keyboard) or a pointer position, buttons and wheel steps (tablet); the
 * device turns it into a report, the events that changed (tablet: ABS_X,
 * ABS_Y, one EV_KEY per button that changed, REL_WHEEL = -dz, i.e. + away
 * from the user) followed by SYN_REPORT, each event into one eventq
 * buffer as struct virtio_input_event (le16 type, le16 code, le32 value).
 * With too few buffers the rest waits in a queue of at most
 * VIRTIO_INPUT_PENDING_MAX events, delivered when the driver adds buffers
 * (its notify); beyond that, the oldest whole report not yet begun is
 * dropped (with a rate-limited warning): a guest that stops reading costs
 * a bounded amount of memory and sees whole reports only.  A reset (the
 * driver's, the machine's) empties the queue.
 *
 * Console routing: the device is active (console_input_dev_ops.active)
 * while the driver has set DRIVER_OK, not NEEDS_RESET, and its eventq is
 * enabled and not broken: firmware and guests without the driver keep the
 * PS/2 keyboard and mouse.
 *
 * Hostile input: an eventq chain with device-readable buffers or fewer
 * than 8 writable bytes, a statusq chain with device-writable buffers, and
 * whatever virtqueue.h catches break the queue (NEEDS_RESET); a statusq
 * chain shorter than an event is returned unread.  The statusq is served
 * at most a queue's worth of chains per notify.
 *
 * Locking: every call with the device lock held.
 */
#ifndef VIVARIUM_VIRTIO_INPUT_H
#define VIVARIUM_VIRTIO_INPUT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../device.h"
#include "../iofd.h"

struct console_input_dev_ops;
struct pci_host;
struct guest_mem;
struct virtio_input;

#define VIRTIO_ID_INPUT			18	/* §5 */

/* Configuration selectors (§5.8.4). */
#define VIRTIO_INPUT_CFG_UNSET		0x00
#define VIRTIO_INPUT_CFG_ID_NAME	0x01
#define VIRTIO_INPUT_CFG_ID_SERIAL	0x02
#define VIRTIO_INPUT_CFG_ID_DEVIDS	0x03
#define VIRTIO_INPUT_CFG_PROP_BITS	0x10
#define VIRTIO_INPUT_CFG_EV_BITS	0x11
#define VIRTIO_INPUT_CFG_ABS_INFO	0x12

/* struct virtio_input_config, byte offsets: select, subsel, size,
 * reserved[5], then u (string, bitmap, absinfo or devids; 128 bytes). */
#define VIRTIO_INPUT_CFG_SELECT		0
#define VIRTIO_INPUT_CFG_SUBSEL		1
#define VIRTIO_INPUT_CFG_SIZE		2
#define VIRTIO_INPUT_CFG_U		8
#define VIRTIO_INPUT_CFG_U_LEN		128
#define VIRTIO_INPUT_CFG_LEN		(VIRTIO_INPUT_CFG_U + VIRTIO_INPUT_CFG_U_LEN)

#define VIRTIO_INPUT_EVENTQ		0
#define VIRTIO_INPUT_STATUSQ		1
#define VIRTIO_INPUT_QUEUE_SIZE		64
#define VIRTIO_INPUT_EVENT_LEN		8	/* le16 type, le16 code, le32 value */
/* Events waiting for eventq buffers, at most: some 30 tablet reports. */
#define VIRTIO_INPUT_PENDING_MAX	256

enum virtio_input_kind {
	VIRTIO_INPUT_KEYBOARD,
	VIRTIO_INPUT_TABLET,
};

struct virtio_input_config {
	struct pci_host *pci;
	uint8_t devfn;			/* slot << 3 | function */
	const struct guest_mem *mem;
	struct iofd iofd;		/* doorbells (iofd.h); zero: none */
	enum virtio_input_kind kind;
};

/*
 * virtio_input_new - create the device and put it on @cfg->pci at
 * @cfg->devfn.  Call with the device lock held (or before the VM runs).
 * Returns the device, or NULL with a one-line reason in @err (the devfn
 * taken, a bad kind, out of memory).
 */
struct virtio_input *virtio_input_new(const struct virtio_input_config *cfg,
				      char *err, size_t errlen);
/* Take the device off the bus and free it; the device lock held.  NULL is
 * fine. */
void virtio_input_free(struct virtio_input *vi);

/* The console's view (console_add_input() with the device lock):
 * virtio_keyboard_input_ops (CONSOLE_INPUT_KEY, "virtio-keyboard") for a
 * keyboard, virtio_tablet_input_ops (CONSOLE_INPUT_ABS, prio 0,
 * "virtio-tablet") for a tablet. */
extern const struct console_input_dev_ops virtio_keyboard_input_ops;
extern const struct console_input_dev_ops virtio_tablet_input_ops;

/* What the device dropped and delivered, for tests and logs. */
struct virtio_input_stats {
	uint64_t delivered;		/* events written to eventq buffers */
	uint64_t dropped;		/* events of reports dropped (queue full) */
	uint64_t status;		/* statusq events read */
};
void virtio_input_get_stats(const struct virtio_input *vi,
			    struct virtio_input_stats *st);
/* Events waiting for eventq buffers. */
unsigned virtio_input_pending(const struct virtio_input *vi);

/*
 * Its lifecycle in the machine's device table (device.h):
 * virtio_keyboard_device_ops ("virtio-keyboard") and
 * virtio_tablet_device_ops ("virtio-tablet"), one per kind (the state
 * file's section names).  reset: the driver's reset (status 0).
 *
 * State VIRTIO_INPUT_STATE_TYPE, version 1: (the transport's
 * VIRTIO_PCI_STATE_TYPE (virtio_pci.h), config select, config subsel,
 * LEDs the driver set (CONSOLE_LED_*), the tablet's position as queued
 * (valid, x, y), the EV_KEY codes held as queued and those whose events
 * were dropped (bitmaps of KEY_CNT bits, bit c in byte c / 8), the events
 * waiting for buffers (type, code, value), whether the first of them
 * continues a report already begun).  load checks them against the kind:
 * the events whole reports of codes the device declares with values in
 * range, keys the device has, positions up to CONSOLE_ABS_MAX, no
 * position or LED state where the kind has none.
 */
#define VIRTIO_INPUT_STATE_TYPE \
	"((yttuuqqyyba(qqttt(qbbbbtttqqqbb)))yyybuuayaya(qqu)b)"
extern const struct device_ops virtio_keyboard_device_ops;
extern const struct device_ops virtio_tablet_device_ops;

/* The transport, for tests. */
struct virtio_pci *virtio_input_transport(struct virtio_input *vi);

#endif
