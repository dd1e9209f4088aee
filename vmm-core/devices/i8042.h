/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/devices/i8042.h - the 8042 keyboard controller, enough for the
 * boot path: data port 0x60, status/command port 0x64, the controller
 * configuration byte, self-test (0xaa), output port (A20), and the reset
 * pulse (command 0xfe), a PS/2 keyboard (scancode sets 1-3, translation,
 * LEDs, typematic) and a PS/2 mouse (IntelliMouse wheel).
 */
#ifndef VIVARIUM_I8042_H
#define VIVARIUM_I8042_H

#include <stdbool.h>

#include "../irq.h"
#include "../device.h"

struct bus;
struct i8042;

struct vtimer_queue;
struct console_input_ops;

struct i8042_ops {
	void (*reset)(void *opaque);		/* command 0xfe */
	void (*set_a20)(void *opaque, bool on);	/* may be NULL */
};

/* @timers: the keyboard's typematic repeat runs on it (NULL: no repeat). */
struct i8042 *i8042_new(const struct i8042_ops *ops, void *opaque,
			struct irq_line kbd_irq, struct irq_line aux_irq,
			struct vtimer_queue *timers);
void i8042_free(struct i8042 *kbc);
/* Its lifecycle in the machine's device table (device.h), with save and
 * load (state_version 1) of the state below. */
extern const struct device_ops i8042_device_ops;

/*
 * The saved state: a GVariant of this type, three tuples.
 *
 * Controller: (ay RAM, 32 bytes, byte 0 the configuration byte (bit 7
 * clear); y output port (bit 1 A20; bit 0, reset, is not pulsed on load);
 * y status bit 3 (last write went to 0x64: 0 or 0x08); y the command
 * awaiting its data byte (0, 0x60-0x7f, 0xd1-0xd4); b output buffer
 * full, y its byte, y its source (0 keyboard, 1 mouse); b translation
 * swallowed an 0xf0; y the device served last (0/1); a(yy) the
 * controller's own replies queued, oldest first, at most 16 (byte,
 * source); b IRQ 1 level, b IRQ 12 level (must match the output buffer
 * and the configuration byte)).
 *
 * Keyboard: (ay command replies queued, at most 16 bytes; ay scancodes
 * queued, at most 64; y the command awaiting its parameter (0, 0xed,
 * 0xf0, 0xf3, 0xfb-0xfd); y scancode set 1-3; b scanning; b overrun code
 * queued; y LEDs 0-7; y typematic byte 0-0x7f; y last byte sent (0xfe
 * resend); ay the 256 set-3 key types (bit 0 break, bit 1 repeat); u the
 * KEY_* held for typematic repeat, 0: none; b repeat timer armed; t ns
 * until it fires, relative to the timer clock's vclock_now() at save
 * (at most 1 s); load re-arms it relative to the clock then).
 *
 * Mouse: (ay command replies queued, at most 16 bytes; ay packet bytes
 * queued, at most 16; y the command awaiting its parameter (0, 0xe8,
 * 0xf3); b wrap mode; b remote mode; b reporting; b 2:1 scaling; y sample
 * rate (10-200, the seven the mouse takes); y resolution 0-3; y ID 0 or 3
 * (IntelliMouse); ay the last 3 rates set (the knock; 0: none yet); y
 * last byte sent; i dx, i dy, i dz movement counters, +y up, at most
 * +-65535; u buttons held, u buttons last reported (CONSOLE_BTN_*)).
 *
 * Load refuses (-EINVAL) any other type, version or value, and an armed
 * repeat for a keyboard made without timers; then drives IRQ 1, IRQ 12
 * and (through set_a20) A20 to their saved levels.
 */
#define I8042_STATE_TYPE \
	"((ayyyybyybya(yy)bb)(ayayyybbyyyayubt)(ayayybbbbyyyayyiiiuu))"
/* Registers 0x60 and 0x64. */
int i8042_attach(struct i8042 *kbc, struct bus *pio);
void i8042_reset(struct i8042 *kbc);

/*
 * Host input, called with the device lock held (through the console):
 * i8042_key_event - key @keycode (Linux KEY_*) went down/up; queued as the
 * keyboard's current scancode set, translated to set 1 when the controller
 * translates (configuration byte bit 6).  Held keys repeat at the guest's
 * typematic rate; host auto-repeat should not be forwarded.
 * i8042_mouse_event - relative motion (+y down), wheel (+dz down) and the
 * buttons held (CONSOLE_BTN_*), as stream-mode packets when the guest
 * enabled reporting (3 bytes, 4 with the IntelliMouse wheel).
 * i8042_leds - CONSOLE_LED_* as the guest set them (command 0xed).
 */
void i8042_key_event(struct i8042 *kbc, unsigned keycode, bool down);
void i8042_mouse_event(struct i8042 *kbc, int dx, int dy, int dz,
		       unsigned buttons);
unsigned i8042_leds(struct i8042 *kbc);
/* console_input_ops over the three above; opaque: the struct i8042. */
extern const struct console_input_ops i8042_input_ops;

/*
 * The VMware vmmouse (devices/vmmouse.h) rides on the PS/2 mouse: its
 * guest driver reads the backdoor when the mouse interrupts.
 * mouse: host relative input (i8042_mouse_event's arguments) before it
 *   becomes PS/2 motion; returns true when the hook took it (it then calls
 *   i8042_aux_notify() itself).
 * reset: the guest reset the mouse (command 0xff).
 * Either may be NULL.  Device lock held.
 */
struct i8042_aux_hook {
	bool (*mouse)(void *opaque, int dx, int dy, int dz, unsigned buttons);
	void (*reset)(void *opaque);
};
/* Install @hook (NULL: none).  Wiring, not saved state. */
void i8042_set_aux_hook(struct i8042 *kbc, const struct i8042_aux_hook *hook,
			void *opaque);
/*
 * i8042_aux_notify - queue one stream packet without motion (buttons
 * @buttons, CONSOLE_BTN_*; 3 bytes, 4 with the wheel ID), which raises
 * IRQ 12 as any packet does: what makes Linux's psmouse vmmouse protocol
 * (and Xorg's vmmouse driver) read the backdoor's queue.  Nothing is
 * queued while the mouse does not stream (reporting off, remote or wrap
 * mode) or while packet bytes are still queued (the driver reads the
 * whole backdoor queue when their last byte arrives).  Returns true if a
 * packet was queued.  Device lock held.
 */
bool i8042_aux_notify(struct i8042 *kbc, unsigned buttons);

#endif
