/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/devices/pit.h - the 8254 programmable interval timer (Intel 8254
 * datasheet): three counters at ports 0x40-0x42, control word at 0x43,
 * input clock 1.193182 MHz; counter 0 drives IRQ 0, counter 2's gate and
 * output appear in port 0x61 (system control port B) bits 0 and 5.
 * Counts are computed from the injected clock, not ticked.  IRQ 0 is a
 * pulse per rising OUT0 edge, at most one per 10 us (a faster counter keeps
 * exact counts; the extra edges are coalesced, as are edges the timer thread
 * wakes too late for).  BCD counting is treated as binary.
 */
#ifndef VIVARIUM_PIT_H
#define VIVARIUM_PIT_H

#include <stdint.h>

#include "../irq.h"
#include "../device.h"

#define PIT_FREQ_HZ 1193182u

struct bus;
struct pit;
struct vtimer_queue;

/* @q supplies the clock and the timer that raises @irq0 edges. */
struct pit *pit_new(struct vtimer_queue *q, struct irq_line irq0);
/* With the device lock held, or after the timer queue is freed. */
void pit_free(struct pit *pit);
/*
 * Its lifecycle in the machine's device table (device.h).
 * pit_device_ops: state PIT_STATE_TYPE, version 1: (counter 0, counter 1,
 * counter 2, port 0x61 bits 0-3, an IRQ sent yet, the time of the last
 * IRQ, IRQ 0 timer armed, its deadline).  Each counter: mode (0-5),
 * access mode (1 LSB, 2 MSB, 3 LSB/MSB), BCD, count register, count
 * written since the control word, write flip-flop (MSB due) and the LSB
 * written, live-read flip-flop, output latch (latched, MSB due, value),
 * status latch (latched, value), null count, GATE, then the counting
 * element: counting, paused (GATE low in modes 0/4), start time, ticks
 * before it, origin tick of the count in use, that count (1-65536), the
 * count while stopped, and a mode 2/3 count pending (flag, count, tick).
 * Times (start, last IRQ, deadline) are ns of the machine's clock; the
 * IRQ 0 output is a pulse per edge and rests low, so no level is kept.
 */
#define PIT_STATE_TYPE \
	"((yybqbbybbbqbybbbbtttuqbut)(yybqbbybbbqbybbbbtttuqbut)" \
	"(yybqbbybbbqbybbbbtttuqbut)ybtbt)"
extern const struct device_ops pit_device_ops;
/* Registers 0x40-0x43 and 0x61. */
int pit_attach(struct pit *pit, struct bus *pio);
void pit_reset(struct pit *pit);

#endif
