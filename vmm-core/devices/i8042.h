/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/devices/i8042.h - the 8042 keyboard controller, enough for the
 * boot path: data port 0x60, status/command port 0x64, the controller
 * configuration byte, self-test (0xaa), output port (A20), and the reset
 * pulse (command 0xfe).  Keyboard and mouse come in the console issue.
 */
#ifndef VIVARIUM_I8042_H
#define VIVARIUM_I8042_H

#include <stdbool.h>

#include "../irq.h"

struct bus;
struct i8042;

struct i8042_ops {
	void (*reset)(void *opaque);		/* command 0xfe */
	void (*set_a20)(void *opaque, bool on);	/* may be NULL */
};

struct i8042 *i8042_new(const struct i8042_ops *ops, void *opaque,
			struct irq_line kbd_irq, struct irq_line aux_irq);
void i8042_free(struct i8042 *kbc);
/* Registers 0x60 and 0x64. */
int i8042_attach(struct i8042 *kbc, struct bus *pio);
void i8042_reset(struct i8042 *kbc);

#endif
