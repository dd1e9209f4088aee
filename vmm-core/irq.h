/* SPDX-License-Identifier: MIT */
/* vmm-core/irq.h - an interrupt line from a device to the machine's router
 * (which drives the 8259A PIC input and the IOAPIC pin for a GSI). */
#ifndef VIVARIUM_IRQ_H
#define VIVARIUM_IRQ_H

struct irq_line {
	void (*set)(void *opaque, unsigned gsi, int level);
	void *opaque;
	unsigned gsi;
};

/* Drive the line to @level (0 or 1).  Call with the device lock held.
 * A line with no set() function is not connected and ignores this. */
static inline void irq_line_set(const struct irq_line *l, int level)
{
	if (l && l->set)
		l->set(l->opaque, l->gsi, level);
}

/* An edge: raise then lower. */
static inline void irq_line_pulse(const struct irq_line *l)
{
	irq_line_set(l, 1);
	irq_line_set(l, 0);
}

#endif
