/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/devices/pic.h - the cascaded 8259A pair of the PC (Intel 8259A
 * datasheet): master at ports 0x20-0x21, slave at 0xa0-0xa1 on master IR2,
 * and the edge/level control registers (ELCR) at 0x4d0-0x4d1.
 * Its INTR output reaches the boot vCPU as an ExtINT through LINT0.
 */
#ifndef VIVARIUM_PIC_H
#define VIVARIUM_PIC_H

#include <stdbool.h>
#include <stdint.h>

#include "../device.h"

struct bus;
struct pic;

/* @intr_changed(opaque, level) is called (device lock held) whenever the
 * master's INTR output changes. */
struct pic *pic_new(void (*intr_changed)(void *opaque, bool level),
		    void *opaque);
void pic_free(struct pic *pic);
/*
 * Its lifecycle in the machine's device table (device.h).
 * pic_device_ops: state PIC_STATE_TYPE, version 1: (master, slave, INTR).
 * Each chip: IR input levels (the edge detector's last inputs), IRR, ISR,
 * IMR, ELCR, ICW2 vector base, lowest-priority IR (rotation), the ICW
 * step expected next (0 done, 1 ICW2, 2 ICW3, 3 ICW4), then the flags
 * ICW1 IC4, ICW1 SNGL, ICW4 AEOI, ICW4 SFNM, rotate in AEOI mode, OCW3
 * read ISR, OCW3 poll pending, OCW3 special mask mode.  Last the INTR
 * output level, which load checks against the registers and re-drives.
 */
#define PIC_STATE_TYPE \
	"((yyyyyyyybbbbbbbb)(yyyyyyyybbbbbbbb)b)"
extern const struct device_ops pic_device_ops;
/* Register the port ranges on @pio.  Returns 0 or -errno from bus_register. */
int pic_attach(struct pic *pic, struct bus *pio);
void pic_reset(struct pic *pic);

/* Drive input @irq (0-15; 8-15 are the slave's) to @level.  Out-of-range
 * @irq is ignored, and so is 2: master IR2 is wired to the slave's INT.
 * Edge inputs (ELCR bit 0) latch a request on each rising edge, so a pulse
 * (irq_line_pulse) is enough; level inputs request while high. */
void pic_set_irq(struct pic *pic, unsigned irq, int level);
/* The INTR output: an unmasked request of higher priority than any in
 * service. */
bool pic_intr(const struct pic *pic);
/* The interrupt-acknowledge cycle: returns the vector to inject and updates
 * ISR/IRR (auto-EOI, cascade).  With no request, returns the spurious vector
 * (IRQ 7 of the chip). */
uint8_t pic_ack(struct pic *pic);

#endif
