/* SPDX-License-Identifier: MIT */
/*
 * The MC146818 real-time clock and CMOS RAM (Motorola MC146818A datasheet).
 *
 * The clock is not ticked: the guest's time is the injected clock's
 * realtime_ns() plus an offset (0 at power-on: the RTC keeps UTC), and the
 * time registers are computed from it whenever they are read.  The clock
 * stops while register B's SET bit is 1 or the divider chain is held in
 * reset (register A DV = 11x); the time registers then hold the bytes the
 * guest writes, and when the clock starts again they define the new offset
 * (the divider leaving reset starts half a second before the next update,
 * as the datasheet says; SET going to 0 starts at a whole second).  A time
 * register written while the clock runs moves the offset at once.
 *
 * The update cycle: UIP (register A bit 7) reads 1 during the last 244 us
 * before each second boundary, where the real chip's update would start.
 *
 * Interrupts on IRQ 8, IRQF = PF.PIE + AF.AIE + UF.UIE (register C):
 *  - periodic: a vtimer at the register A rate while PIE is set (rates in
 *    32.768 kHz ticks, so long runs do not drift); with PIE clear, PF is
 *    computed when C is read (a period elapsed since the last read);
 *  - update-ended and alarm: a vtimer at each second boundary while UIE or
 *    AIE is set; it sets UF and, if seconds/minutes/hours match the alarm
 *    registers (0xc0-0xff: don't care), AF.  With both clear, UF is
 *    computed when C is read (a second boundary passed since the last
 *    read) and AF is not evaluated.
 * Reading C returns and clears the flags and lowers the IRQ line.
 */
#include "rtc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>

#include "../bus.h"
#include "../timer.h"

#define NS_PER_SEC	1000000000ll
#define RTC_FREQ	32768u
#define UIP_NS		244141		/* 8 ticks of 32.768 kHz */
#define MAX_SECS	9000000000ll	/* about 2255-01-01 */

#define REG_SEC		0x00
#define REG_SEC_ALARM	0x01
#define REG_MIN		0x02
#define REG_MIN_ALARM	0x03
#define REG_HOUR	0x04
#define REG_HOUR_ALARM	0x05
#define REG_WDAY	0x06
#define REG_MDAY	0x07
#define REG_MONTH	0x08
#define REG_YEAR	0x09
#define REG_A		0x0a
#define REG_B		0x0b
#define REG_C		0x0c
#define REG_D		0x0d
#define REG_CENTURY	0x32

#define A_UIP		0x80
#define A_DV		0x70
#define A_DV_RESET	0x60		/* DV2 DV1 = 11: divider held in reset */
#define A_RS		0x0f

#define B_SET		0x80
#define B_PIE		0x40
#define B_AIE		0x20
#define B_UIE		0x10
#define B_SQWE		0x08
#define B_DM_BINARY	0x04
#define B_24H		0x02
#define B_DSE		0x01

#define C_IRQF		0x80
#define C_PF		0x40
#define C_AF		0x20
#define C_UF		0x10

#define D_VRT		0x80

struct rtc {
	const struct vclock *clk;
	struct irq_line irq;
	int irq_level;

	uint8_t cmos[128];
	uint8_t index;		/* bit 7 of port 0x70, the NMI mask, is ignored */

	int64_t offset_ns;	/* guest time = realtime + offset (running) */
	bool stopped;		/* SET or divider reset: cmos[] holds the time */

	struct vtimer update_timer;	/* armed: running and (UIE or AIE) */
	struct vtimer periodic_timer;	/* armed: PIE and a rate */
	unsigned periodic_rs;		/* rate the periodic timer runs at */
	uint64_t periodic_base;		/* monotonic ns of tick 0 */
	uint64_t periodic_n;		/* next tick number */
	uint64_t pf_check_ns;		/* monotonic: last lazy PF evaluation */
	int64_t uf_check_ns;		/* guest time: last lazy UF evaluation */
	int64_t update_secs;		/* second the update timer waits for */
};

/* ---- time helpers ----------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t floor_mod(int64_t a, int64_t b)
{
	return a - floor_div(a, b) * b;
}

static uint64_t mono_now(const struct rtc *rtc)
{
	return vclock_now(rtc->clk);
}

/* On a machine's clock (vclock_virt), realtime_ns() follows the host's
 * realtime but stands still while the machine is paused: the guest's RTC
 * continues from where it stopped and falls behind the host by the paused
 * interval (as in QEMU with -rtc clock=vm, and VirtualBox), in step with the
 * PIT and the PM timer; see clock.h. */
static int64_t guest_ns(const struct rtc *rtc)
{
	return rtc->clk->realtime_ns(rtc->clk) + rtc->offset_ns;
}

static bool divider_reset(const struct rtc *rtc)
{
	return (rtc->cmos[REG_A] & A_DV_RESET) == A_DV_RESET;
}

static bool binary_mode(const struct rtc *rtc)
{
	return rtc->cmos[REG_B] & B_DM_BINARY;
}

static uint8_t to_reg(const struct rtc *rtc, unsigned v)
{
	v %= 100;
	return binary_mode(rtc) ? (uint8_t)v : (uint8_t)((v / 10) << 4 | v % 10);
}

static unsigned from_reg(const struct rtc *rtc, uint8_t v)
{
	return binary_mode(rtc) ? v : (unsigned)(v >> 4) * 10 + (v & 0x0f);
}

static uint8_t hour_to_reg(const struct rtc *rtc, unsigned hour)
{
	unsigned h12;

	if (rtc->cmos[REG_B] & B_24H)
		return to_reg(rtc, hour);
	h12 = hour % 12 ? hour % 12 : 12;
	return (uint8_t)(to_reg(rtc, h12) | (hour >= 12 ? 0x80 : 0));
}

static unsigned hour_from_reg(const struct rtc *rtc, uint8_t v)
{
	unsigned h;

	if (rtc->cmos[REG_B] & B_24H)
		return from_reg(rtc, v);
	h = from_reg(rtc, v & 0x7f) % 12;
	return (v & 0x80) ? h + 12 : h;
}

/* The time registers for @secs since the epoch, in the current format. */
static void time_to_regs(struct rtc *rtc, int64_t secs)
{
	time_t t = (time_t)secs;
	struct tm tm;

	if (!gmtime_r(&t, &tm))
		memset(&tm, 0, sizeof(tm));
	rtc->cmos[REG_SEC] = to_reg(rtc, (unsigned)tm.tm_sec);
	rtc->cmos[REG_MIN] = to_reg(rtc, (unsigned)tm.tm_min);
	rtc->cmos[REG_HOUR] = hour_to_reg(rtc, (unsigned)tm.tm_hour);
	rtc->cmos[REG_WDAY] = to_reg(rtc, (unsigned)tm.tm_wday + 1);
	rtc->cmos[REG_MDAY] = to_reg(rtc, (unsigned)tm.tm_mday);
	rtc->cmos[REG_MONTH] = to_reg(rtc, (unsigned)tm.tm_mon + 1);
	rtc->cmos[REG_YEAR] = to_reg(rtc, (unsigned)(tm.tm_year + 1900) % 100);
	rtc->cmos[REG_CENTURY] = to_reg(rtc, (unsigned)(tm.tm_year + 1900) / 100);
}

/* Seconds since the epoch the time registers say. */
static int64_t regs_to_time(const struct rtc *rtc)
{
	unsigned year = from_reg(rtc, rtc->cmos[REG_YEAR]);
	unsigned century = from_reg(rtc, rtc->cmos[REG_CENTURY]);
	struct tm tm = { 0 };
	int64_t t;

	/* No plausible century byte: the usual 1970-2069 window. */
	if (century < 19 || century > 99)
		century = year < 70 ? 20 : 19;
	tm.tm_sec = (int)from_reg(rtc, rtc->cmos[REG_SEC]);
	tm.tm_min = (int)from_reg(rtc, rtc->cmos[REG_MIN]);
	tm.tm_hour = (int)hour_from_reg(rtc, rtc->cmos[REG_HOUR]);
	tm.tm_mday = (int)from_reg(rtc, rtc->cmos[REG_MDAY]);
	tm.tm_mon = (int)from_reg(rtc, rtc->cmos[REG_MONTH]) - 1;
	tm.tm_year = (int)(century * 100 + year) - 1900;
	t = (int64_t)timegm(&tm);
	/* Time is kept in int64 ns: 1677-2262.  Beyond that, clamp. */
	if (t > MAX_SECS)
		t = MAX_SECS;
	if (t < -MAX_SECS)
		t = -MAX_SECS;
	return t;
}

/* ---- interrupts ------------------------------------------------------- */

static uint8_t irqf(const struct rtc *rtc)
{
	uint8_t b = rtc->cmos[REG_B], c = rtc->cmos[REG_C];

	return ((c & C_PF) && (b & B_PIE)) || ((c & C_AF) && (b & B_AIE)) ||
	       ((c & C_UF) && (b & B_UIE)) ? C_IRQF : 0;
}

static void update_irq(struct rtc *rtc)
{
	int level = irqf(rtc) != 0;

	if (level != rtc->irq_level) {
		rtc->irq_level = level;
		irq_line_set(&rtc->irq, level);
	}
}

/* Rate select -> period in 32.768 kHz ticks (0: none).  RS 1 and 2 give
 * 256 and 128 Hz, as 8 and 9 do. */
static uint64_t period_ticks(unsigned rs)
{
	if (!rs)
		return 0;
	if (rs < 3)
		rs += 7;
	return 1ull << (rs - 1);
}

static uint64_t ticks_to_ns(uint64_t ticks)
{
	return (uint64_t)(((unsigned __int128)ticks * NS_PER_SEC) / RTC_FREQ);
}

static uint64_t periodic_deadline(const struct rtc *rtc, uint64_t n)
{
	return rtc->periodic_base +
	       ticks_to_ns(n * period_ticks(rtc->periodic_rs));
}

static void periodic_cb(void *opaque, uint64_t now)
{
	struct rtc *rtc = opaque;
	uint64_t period = ticks_to_ns(period_ticks(rtc->periodic_rs));

	rtc->cmos[REG_C] |= C_PF;
	update_irq(rtc);
	rtc->periodic_n++;
	if (periodic_deadline(rtc, rtc->periodic_n) <= now && period) {
		/* Late by whole periods (host stall): skip, don't burst. */
		rtc->periodic_n = (now - rtc->periodic_base) / period + 1;
		while (periodic_deadline(rtc, rtc->periodic_n) <= now)
			rtc->periodic_n++;
	}
	vtimer_mod(&rtc->periodic_timer,
		   periodic_deadline(rtc, rtc->periodic_n));
}

static bool periodic_wanted(const struct rtc *rtc)
{
	return (rtc->cmos[REG_B] & B_PIE) && (rtc->cmos[REG_A] & A_RS) &&
	       !divider_reset(rtc);
}

/* Start, retune or stop the periodic timer after A or B changed. */
static void periodic_update(struct rtc *rtc)
{
	unsigned rs = rtc->cmos[REG_A] & A_RS;

	if (!periodic_wanted(rtc)) {
		if (rtc->periodic_timer.armed)
			rtc->pf_check_ns = mono_now(rtc);
		vtimer_del(&rtc->periodic_timer);
		rtc->periodic_rs = 0;
		return;
	}
	if (rtc->periodic_timer.armed && rs == rtc->periodic_rs)
		return;
	rtc->periodic_rs = rs;
	rtc->periodic_base = mono_now(rtc);
	rtc->periodic_n = 1;
	vtimer_mod(&rtc->periodic_timer, periodic_deadline(rtc, 1));
}

static bool update_timer_wanted(const struct rtc *rtc)
{
	return !rtc->stopped && (rtc->cmos[REG_B] & (B_UIE | B_AIE));
}

/* Arm the update timer for the start of guest second update_secs, given
 * guest time @g now.  A target more than MAX_LAG_SECS away (the host
 * stalled, or its wall clock jumped) is resynchronised to the next boundary
 * rather than caught up second by second. */
#define MAX_LAG_SECS 2
static void update_timer_arm(struct rtc *rtc, int64_t g)
{
	int64_t delta = rtc->update_secs * NS_PER_SEC - g;

	if (delta > MAX_LAG_SECS * NS_PER_SEC ||
	    delta < -MAX_LAG_SECS * NS_PER_SEC) {
		rtc->update_secs = floor_div(g, NS_PER_SEC) + 1;
		delta = rtc->update_secs * NS_PER_SEC - g;
	}
	vtimer_mod(&rtc->update_timer,
		   mono_now(rtc) + (uint64_t)(delta > 0 ? delta : 0));
}

static void update_timer_update(struct rtc *rtc)
{
	if (!update_timer_wanted(rtc)) {
		if (rtc->update_timer.armed && !rtc->stopped)
			rtc->uf_check_ns = guest_ns(rtc);
		vtimer_del(&rtc->update_timer);
		return;
	}
	if (!rtc->update_timer.armed) {
		int64_t g = guest_ns(rtc);

		rtc->update_secs = floor_div(g, NS_PER_SEC) + 1;
		update_timer_arm(rtc, g);
	}
}

static bool alarm_match(uint8_t alarm, uint8_t now)
{
	return (alarm & 0xc0) == 0xc0 || alarm == now;
}

/* The update cycle that ends as guest second update_secs begins.  A late
 * callback re-arms in the past and runs again at once, so each second is
 * seen (alarms included) up to MAX_LAG_SECS behind. */
static void update_cb(void *opaque, uint64_t now)
{
	struct rtc *rtc = opaque;
	int64_t g = guest_ns(rtc);

	(void)now;
	if (g >= rtc->update_secs * NS_PER_SEC) {
		time_to_regs(rtc, rtc->update_secs);
		rtc->cmos[REG_C] |= C_UF;
		if (alarm_match(rtc->cmos[REG_SEC_ALARM], rtc->cmos[REG_SEC]) &&
		    alarm_match(rtc->cmos[REG_MIN_ALARM], rtc->cmos[REG_MIN]) &&
		    alarm_match(rtc->cmos[REG_HOUR_ALARM], rtc->cmos[REG_HOUR]))
			rtc->cmos[REG_C] |= C_AF;
		update_irq(rtc);
		rtc->update_secs++;
	}
	/* else: early (the wall clock stepped back a little): wait. */
	if (update_timer_wanted(rtc))
		update_timer_arm(rtc, g);
}

/* ---- starting and stopping the clock ---------------------------------- */

static bool should_run(const struct rtc *rtc)
{
	return !(rtc->cmos[REG_B] & B_SET) && !divider_reset(rtc);
}

static void clock_stop(struct rtc *rtc)
{
	time_to_regs(rtc, floor_div(guest_ns(rtc), NS_PER_SEC));
	rtc->stopped = true;
	vtimer_del(&rtc->update_timer);
}

/* The registers define the time; @frac_ns into the current second. */
static void clock_start(struct rtc *rtc, int64_t frac_ns)
{
	int64_t g = regs_to_time(rtc) * NS_PER_SEC + frac_ns;

	rtc->offset_ns = g - rtc->clk->realtime_ns(rtc->clk);
	rtc->stopped = false;
	rtc->uf_check_ns = g;
	vtimer_del(&rtc->update_timer);
	update_timer_update(rtc);
}

/* After A or B changed: stop or start the clock as SET and DV say. */
static void clock_update(struct rtc *rtc, bool from_divider_reset)
{
	if (should_run(rtc) && rtc->stopped)
		clock_start(rtc, from_divider_reset ? NS_PER_SEC / 2 : 0);
	else if (!should_run(rtc) && !rtc->stopped)
		clock_stop(rtc);
}

static bool is_time_reg(unsigned idx)
{
	switch (idx) {
	case REG_SEC: case REG_MIN: case REG_HOUR: case REG_WDAY:
	case REG_MDAY: case REG_MONTH: case REG_YEAR: case REG_CENTURY:
		return true;
	}
	return false;
}

/* ---- register access -------------------------------------------------- */

/* Flags of events no timer watches (their interrupt is disabled): set
 * them now if such an event happened since the last look. */
static void lazy_flags(struct rtc *rtc)
{
	if (!rtc->periodic_timer.armed && (rtc->cmos[REG_A] & A_RS) &&
	    !divider_reset(rtc)) {
		uint64_t now = mono_now(rtc);
		uint64_t period = ticks_to_ns(period_ticks(rtc->cmos[REG_A] & A_RS));

		if (now - rtc->pf_check_ns >= period) {
			rtc->cmos[REG_C] |= C_PF;
			rtc->pf_check_ns = now;
		}
	}
	if (!rtc->update_timer.armed && !rtc->stopped) {
		int64_t g = guest_ns(rtc);

		if (floor_div(g, NS_PER_SEC) > floor_div(rtc->uf_check_ns, NS_PER_SEC))
			rtc->cmos[REG_C] |= C_UF;
		rtc->uf_check_ns = g;
	}
}

static uint8_t read_reg_c(struct rtc *rtc)
{
	uint8_t v;

	lazy_flags(rtc);
	v = (uint8_t)((rtc->cmos[REG_C] & (C_PF | C_AF | C_UF)) | irqf(rtc));
	rtc->cmos[REG_C] = 0;
	update_irq(rtc);
	return v;
}

static uint8_t read_reg(struct rtc *rtc, unsigned idx)
{
	if (is_time_reg(idx)) {
		if (!rtc->stopped)
			time_to_regs(rtc, floor_div(guest_ns(rtc), NS_PER_SEC));
		return rtc->cmos[idx];
	}
	switch (idx) {
	case REG_A: {
		uint8_t v = rtc->cmos[REG_A] & 0x7f;

		if (!rtc->stopped &&
		    floor_mod(guest_ns(rtc), NS_PER_SEC) >= NS_PER_SEC - UIP_NS)
			v |= A_UIP;
		return v;
	}
	case REG_C:
		return read_reg_c(rtc);
	case REG_D:
		return D_VRT;
	}
	return rtc->cmos[idx];
}

static void write_reg(struct rtc *rtc, unsigned idx, uint8_t v)
{
	if (is_time_reg(idx)) {
		if (rtc->stopped) {
			rtc->cmos[idx] = v;
		} else {
			/* Set the time on the fly, keeping the phase of the
			 * second. */
			int64_t g = guest_ns(rtc);

			time_to_regs(rtc, floor_div(g, NS_PER_SEC));
			rtc->cmos[idx] = v;
			rtc->stopped = true;
			clock_start(rtc, floor_mod(g, NS_PER_SEC));
		}
		return;
	}
	switch (idx) {
	case REG_A: {
		bool was_reset = divider_reset(rtc);

		rtc->cmos[REG_A] = v & 0x7f;	/* UIP is read-only */
		clock_update(rtc, was_reset && !divider_reset(rtc));
		periodic_update(rtc);
		break;
	}
	case REG_B:
		/* Flags the timers about to start would have seen. */
		lazy_flags(rtc);
		/* SET = 1 clears UIE (datasheet: no update-ended interrupts
		 * while the time is being set). */
		if (v & B_SET)
			v &= (uint8_t)~B_UIE;
		/* Freeze the running time in the old format before B's
		 * format bits change. */
		if ((v & B_SET) && !rtc->stopped)
			clock_stop(rtc);
		rtc->cmos[REG_B] = v;
		clock_update(rtc, false);
		update_timer_update(rtc);
		periodic_update(rtc);
		update_irq(rtc);
		break;
	case REG_C:
	case REG_D:
		break;		/* read-only */
	default:
		rtc->cmos[idx] = v;
		break;
	}
}

static uint64_t rtc_read(void *opaque, uint64_t offset, unsigned size)
{
	struct rtc *rtc = opaque;

	(void)size;
	if (offset == 0)
		return 0xff;	/* the index register is write-only */
	return read_reg(rtc, rtc->index);
}

static void rtc_write(void *opaque, uint64_t offset, uint64_t value,
		      unsigned size)
{
	struct rtc *rtc = opaque;

	(void)size;
	if (offset == 0) {
		rtc->index = value & 0x7f;
		return;
	}
	write_reg(rtc, rtc->index, (uint8_t)value);
}

static const struct bus_ops rtc_ops = {
	.name = "rtc",
	.read = rtc_read,
	.write = rtc_write,
};

/* ---- life cycle ------------------------------------------------------- */

void rtc_reset(struct rtc *rtc)
{
	/* The RESET pin: PIE, AIE, UIE, SQWE and the flags of C cleared; the
	 * time, A and the RAM kept. */
	rtc->cmos[REG_B] &= (uint8_t)~(B_PIE | B_AIE | B_UIE | B_SQWE);
	rtc->cmos[REG_C] = 0;
	update_timer_update(rtc);
	periodic_update(rtc);
	update_irq(rtc);
}

struct rtc *rtc_new(struct vtimer_queue *q, struct irq_line irq8)
{
	struct rtc *rtc = calloc(1, sizeof(*rtc));

	if (!rtc)
		return NULL;
	rtc->clk = vtimer_queue_clock(q);
	rtc->irq = irq8;
	vtimer_init(&rtc->update_timer, q, update_cb, rtc);
	vtimer_init(&rtc->periodic_timer, q, periodic_cb, rtc);
	rtc->cmos[REG_A] = 0x26;	/* 32.768 kHz, 1024 Hz periodic rate */
	rtc->cmos[REG_B] = B_24H;	/* BCD, 24-hour */
	rtc->cmos[REG_D] = D_VRT;
	rtc->offset_ns = 0;		/* UTC */
	rtc->pf_check_ns = mono_now(rtc);
	rtc->uf_check_ns = guest_ns(rtc);
	time_to_regs(rtc, floor_div(rtc->uf_check_ns, NS_PER_SEC));
	return rtc;
}

void rtc_free(struct rtc *rtc)
{
	if (!rtc)
		return;
	vtimer_del(&rtc->update_timer);
	vtimer_del(&rtc->periodic_timer);
	free(rtc);
}

int rtc_attach(struct rtc *rtc, struct bus *pio)
{
	return bus_register(pio, 0x70, 2, &rtc_ops, rtc);
}

void rtc_cmos_set(struct rtc *rtc, unsigned index, uint8_t value)
{
	if (index < 0x0e || index >= sizeof(rtc->cmos) || index == REG_CENTURY)
		return;
	rtc->cmos[index] = value;
}

/* ---- the machine's device table ---------------------------------------- */

static void rtc_dev_reset(void *dev)
{
	rtc_reset(dev);
}

static void rtc_dev_free(void *dev)
{
	rtc_free(dev);
}

/* ---- saved state (RTC_STATE_TYPE in rtc.h) ----------------------------- */

/* The guest's time is saved as such (ns since the epoch), not as the offset
 * from the host's realtime: a restore continues from it (QEMU's -rtc
 * clock=vm), so the guest does not see the time the machine spent saved. */
static GVariant *rtc_dev_save(void *dev)
{
	struct rtc *rtc = dev;

	return g_variant_new("(@ayybbxbtxbtytttx)",
			     g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, rtc->cmos,
						       sizeof(rtc->cmos), 1),
			     rtc->index, rtc->irq_level != 0, rtc->stopped,
			     (gint64)guest_ns(rtc), rtc->update_timer.armed,
			     (guint64)rtc->update_timer.deadline_ns,
			     (gint64)rtc->update_secs, rtc->periodic_timer.armed,
			     (guint64)rtc->periodic_timer.deadline_ns,
			     (guint8)rtc->periodic_rs, (guint64)rtc->periodic_base,
			     (guint64)rtc->periodic_n, (guint64)rtc->pf_check_ns,
			     (gint64)rtc->uf_check_ns);
}

/* Everything is checked on a copy first (the invariants the register code
 * keeps: which timers run, the stopped clock, IRQF against the level);
 * then the timers are re-armed at their saved deadlines (machine clock
 * time, set to the saved value by the restore) and IRQ 8 is driven to its
 * saved level. */
static int rtc_dev_load(void *dev, uint32_t version, GVariant *state,
			char *err, size_t errlen)
{
	struct rtc *rtc = dev, t = *rtc;
	GVariant *cmos;
	const uint8_t *bytes;
	gsize len;
	guint8 index, rs;
	gboolean level, stopped, upd_armed, per_armed;
	gint64 g, update_secs, uf_check;
	guint64 upd_deadline, per_deadline, per_base, per_n, pf_check;
	__int128 offset;
	int r;

	r = device_state_check("rtc", version, 1, state, RTC_STATE_TYPE, err, errlen);
	if (r < 0)
		return r;
	g_variant_get(state, "(@ayybbxbtxbtytttx)", &cmos, &index, &level,
		      &stopped, &g, &upd_armed, &upd_deadline, &update_secs,
		      &per_armed, &per_deadline, &rs, &per_base, &per_n,
		      &pf_check, &uf_check);
	bytes = g_variant_get_fixed_array(cmos, &len, 1);
	if (len != sizeof(t.cmos)) {
		g_variant_unref(cmos);
		return device_load_fail(err, errlen, "rtc: %zu bytes of CMOS, not %zu",
				 (size_t)len, sizeof(t.cmos));
	}
	memcpy(t.cmos, bytes, sizeof(t.cmos));
	g_variant_unref(cmos);
	t.index = index;
	t.stopped = stopped;
	t.irq_level = level;
	t.update_secs = update_secs;
	t.periodic_rs = rs;
	t.periodic_base = per_base;
	t.periodic_n = per_n;
	t.pf_check_ns = pf_check;
	t.uf_check_ns = uf_check;
	offset = (__int128)g - t.clk->realtime_ns(t.clk);
	if (index > 0x7f)
		return device_load_fail(err, errlen, "rtc: index register 0x%02x out of range", index);
	if ((t.cmos[REG_A] & A_UIP) || (t.cmos[REG_C] & ~(C_PF | C_AF | C_UF)) ||
	    t.cmos[REG_D] != D_VRT)
		return device_load_fail(err, errlen, "rtc: registers A 0x%02x, C 0x%02x or D 0x%02x hold read-only bits",
				 t.cmos[REG_A], t.cmos[REG_C], t.cmos[REG_D]);
	if ((t.cmos[REG_B] & B_SET) && (t.cmos[REG_B] & B_UIE))
		return device_load_fail(err, errlen, "rtc: register B 0x%02x has UIE with SET",
				 t.cmos[REG_B]);
	if (t.stopped != !should_run(&t))
		return device_load_fail(err, errlen, "rtc: clock %s, but registers A 0x%02x and B 0x%02x say otherwise",
				 t.stopped ? "stopped" : "running", t.cmos[REG_A],
				 t.cmos[REG_B]);
	if (g > MAX_SECS * NS_PER_SEC || g < -MAX_SECS * NS_PER_SEC ||
	    offset > INT64_MAX || offset < INT64_MIN ||
	    update_secs > MAX_SECS + 1 || update_secs < -MAX_SECS - 1)
		return device_load_fail(err, errlen, "rtc: guest time %lld ns or update second %lld out of range",
				 (long long)g, (long long)update_secs);
	if (t.irq_level != (irqf(&t) != 0))
		return device_load_fail(err, errlen, "rtc: IRQ 8 level %d does not match register C 0x%02x",
				 t.irq_level, t.cmos[REG_C]);
	if (upd_armed != update_timer_wanted(&t))
		return device_load_fail(err, errlen, "rtc: update timer %s, but register B 0x%02x says otherwise",
				 upd_armed ? "armed" : "idle", t.cmos[REG_B]);
	if (per_armed != periodic_wanted(&t) ||
	    (per_armed ? rs != (t.cmos[REG_A] & A_RS) : rs != 0))
		return device_load_fail(err, errlen, "rtc: periodic timer %s at rate %u, but registers A 0x%02x and B 0x%02x say otherwise",
				 per_armed ? "armed" : "idle", rs, t.cmos[REG_A],
				 t.cmos[REG_B]);

	memcpy(rtc->cmos, t.cmos, sizeof(rtc->cmos));
	rtc->index = t.index;
	rtc->offset_ns = (int64_t)offset;
	rtc->stopped = t.stopped;
	rtc->update_secs = t.update_secs;
	rtc->periodic_rs = t.periodic_rs;
	rtc->periodic_base = t.periodic_base;
	rtc->periodic_n = t.periodic_n;
	rtc->pf_check_ns = t.pf_check_ns;
	rtc->uf_check_ns = t.uf_check_ns;
	if (upd_armed)
		vtimer_mod(&rtc->update_timer, upd_deadline);
	else
		vtimer_del(&rtc->update_timer);
	if (per_armed)
		vtimer_mod(&rtc->periodic_timer, per_deadline);
	else
		vtimer_del(&rtc->periodic_timer);
	rtc->irq_level = t.irq_level;
	irq_line_set(&rtc->irq, rtc->irq_level);
	return 0;
}

const struct device_ops rtc_device_ops = {
	.name = "rtc",
	.reset = rtc_dev_reset,
	.save = rtc_dev_save,
	.load = rtc_dev_load,
	.state_version = 1,
	.free = rtc_dev_free,
};
