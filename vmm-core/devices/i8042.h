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
/* Its lifecycle in the machine's device table (device.h). */
extern const struct device_ops i8042_device_ops;
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

#endif
