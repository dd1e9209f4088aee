/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/devices/rtc.h - the MC146818 CMOS real-time clock and its 128
 * bytes of CMOS RAM at ports 0x70 (index; bit 7 = NMI mask) and 0x71 (data).
 * The time comes from the injected clock's realtime_ns(); BCD/binary and
 * 12/24-hour formats (register B), UIP, periodic/alarm/update interrupts on
 * IRQ 8 (register C reports and clears them).
 */
#ifndef VIVARIUM_RTC_H
#define VIVARIUM_RTC_H

#include <stdint.h>

#include "../irq.h"
#include "../device.h"

struct bus;
struct rtc;
struct vtimer_queue;

struct rtc *rtc_new(struct vtimer_queue *q, struct irq_line irq8);
void rtc_free(struct rtc *rtc);
/*
 * Its lifecycle in the machine's device table (device.h).
 * rtc_device_ops: state RTC_STATE_TYPE, version 1: (the 128 CMOS bytes
 * (registers A-D and the time registers as last latched included), the
 * index register, IRQ 8 level, clock stopped (SET or divider reset), the
 * guest's time in ns since the epoch when saved, update timer (armed,
 * deadline, the guest second it waits for), periodic timer (armed,
 * deadline, rate select, tick 0 time, next tick number), the last lazy PF
 * check (clock time) and the last lazy UF check (guest time)).
 * Deadlines and tick times are ns of the machine's clock.  A load
 * continues the guest's time from the saved value (QEMU's -rtc clock=vm):
 * the guest does not see the time the machine spent saved.
 */
#define RTC_STATE_TYPE "(ayybbxbtxbtytttx)"
extern const struct device_ops rtc_device_ops;
int rtc_attach(struct rtc *rtc, struct bus *pio);
void rtc_reset(struct rtc *rtc);
/* Set CMOS byte @index (0-127) as firmware would (memory size at
 * 0x15-0x18, 0x30-0x31, 0x34-0x35, 0x5b-0x5d; ...).  Clock registers
 * 0x00-0x0d are ignored. */
void rtc_cmos_set(struct rtc *rtc, unsigned index, uint8_t value);

#endif
