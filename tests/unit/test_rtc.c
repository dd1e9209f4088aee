/* SPDX-License-Identifier: MIT */
/* tests/unit/test_rtc.c - the MC146818 through ports 0x70/0x71 with a fake
 * clock and a manual timer queue: formats, setting the time, UIP, and the
 * periodic, update-ended and alarm interrupts. */
#include "testlib.h"

#include <errno.h>

#include "statetest.h"

#include "devices/rtc.h"
#include "timer.h"

#define NS	1000000000ll
#define MS	1000000ll
#define US	1000ll
/* 2024-02-29 23:59:58 UTC, a Thursday. */
#define T0	1709251198ll

static struct fake_clock fclk;
static struct bus *pio;
static struct vtimer_queue *q;
static struct rtc *rtc;
static struct irq_recorder irq;

static uint8_t cmos_read(uint8_t idx)
{
	io_write(pio, 0x70, idx, 1);
	return (uint8_t)io_read(pio, 0x71, 1);
}

static void cmos_write(uint8_t idx, uint8_t v)
{
	io_write(pio, 0x70, idx, 1);
	io_write(pio, 0x71, v, 1);
}

static void advance(int64_t ns)
{
	fake_clock_advance(&fclk, (uint64_t)ns);
	vtimer_queue_run_due(q, fclk.mono_ns);
}

/* @frac_ns into the second T0. */
static void setup_at(int64_t secs, int64_t frac_ns)
{
	fake_clock_init(&fclk);
	fclk.mono_ns = 5 * NS;
	fclk.real_ns = secs * NS + frac_ns;
	pio = bus_new("pio");
	q = vtimer_queue_new_manual(&fclk.clk);
	rtc = rtc_new(q, irq_recorder_line(&irq, 8));
	CHECK(rtc != NULL);
	CHECK_EQ(rtc_attach(rtc, pio), 0);
}

static void teardown(void)
{
	rtc_free(rtc);
	vtimer_queue_free(q);
	bus_free(pio);
}

static void test_bcd(void)
{
	setup_at(T0, 100 * MS);
	CHECK_EQ(cmos_read(0x0a), 0x26);
	CHECK_EQ(cmos_read(0x0b), 0x02);	/* 24h, BCD */
	CHECK_EQ(cmos_read(0x0d), 0x80);	/* VRT */
	CHECK_EQ(cmos_read(0x00), 0x58);
	CHECK_EQ(cmos_read(0x02), 0x59);
	CHECK_EQ(cmos_read(0x04), 0x23);
	CHECK_EQ(cmos_read(0x06), 0x05);	/* Thursday (Sunday = 1) */
	CHECK_EQ(cmos_read(0x07), 0x29);
	CHECK_EQ(cmos_read(0x08), 0x02);
	CHECK_EQ(cmos_read(0x09), 0x24);
	CHECK_EQ(cmos_read(0x32), 0x20);
	/* Past midnight of a leap day. */
	advance(2 * NS);
	CHECK_EQ(cmos_read(0x00), 0x00);
	CHECK_EQ(cmos_read(0x02), 0x00);
	CHECK_EQ(cmos_read(0x04), 0x00);
	CHECK_EQ(cmos_read(0x06), 0x06);	/* Friday */
	CHECK_EQ(cmos_read(0x07), 0x01);
	CHECK_EQ(cmos_read(0x08), 0x03);
	/* A year later. */
	advance(365ll * 86400 * NS);
	CHECK_EQ(cmos_read(0x07), 0x01);
	CHECK_EQ(cmos_read(0x08), 0x03);
	CHECK_EQ(cmos_read(0x09), 0x25);
	teardown();
}

static void test_binary_and_12h(void)
{
	setup_at(T0, 0);
	cmos_write(0x0b, 0x06);			/* binary, 24h */
	CHECK_EQ(cmos_read(0x00), 58);
	CHECK_EQ(cmos_read(0x04), 23);
	CHECK_EQ(cmos_read(0x07), 29);
	CHECK_EQ(cmos_read(0x09), 24);
	CHECK_EQ(cmos_read(0x32), 20);
	cmos_write(0x0b, 0x04);			/* binary, 12h */
	CHECK_EQ(cmos_read(0x04), 0x80 | 11);	/* 11 PM */
	cmos_write(0x0b, 0x00);			/* BCD, 12h */
	CHECK_EQ(cmos_read(0x04), 0x91);
	advance(2 * NS);			/* midnight: 12 AM */
	CHECK_EQ(cmos_read(0x04), 0x12);
	advance(12ll * 3600 * NS);		/* noon: 12 PM */
	CHECK_EQ(cmos_read(0x04), 0x92);
	advance(3600ll * NS);			/* 1 PM */
	CHECK_EQ(cmos_read(0x04), 0x81);
	teardown();
}

/* Linux's mc146818_set_time: SET (and divider reset), write, release. */
static void test_set_time(void)
{
	uint8_t b;

	setup_at(T0, 300 * MS);
	b = cmos_read(0x0b);
	cmos_write(0x0b, b | 0x80);		/* SET */
	cmos_write(0x00, 0x56);
	cmos_write(0x02, 0x34);
	cmos_write(0x04, 0x12);
	cmos_write(0x07, 0x01);
	cmos_write(0x08, 0x01);
	cmos_write(0x09, 0x00);
	cmos_write(0x32, 0x20);
	/* Frozen while SET. */
	advance(5 * NS);
	CHECK_EQ(cmos_read(0x00), 0x56);
	CHECK_EQ(cmos_read(0x0a) & 0x80, 0);	/* no UIP while SET */
	cmos_write(0x0b, b);
	CHECK_EQ(cmos_read(0x00), 0x56);
	CHECK_EQ(cmos_read(0x02), 0x34);
	CHECK_EQ(cmos_read(0x04), 0x12);
	CHECK_EQ(cmos_read(0x07), 0x01);
	CHECK_EQ(cmos_read(0x08), 0x01);
	CHECK_EQ(cmos_read(0x09), 0x00);
	CHECK_EQ(cmos_read(0x32), 0x20);
	CHECK_EQ(cmos_read(0x06), 0x07);	/* 2000-01-01: Saturday */
	advance(999 * MS);
	CHECK_EQ(cmos_read(0x00), 0x56);
	advance(2 * MS);
	CHECK_EQ(cmos_read(0x00), 0x57);
	/* The host clock did not move: the guest's time is an offset. */
	advance(61 * NS);
	CHECK_EQ(cmos_read(0x00), 0x58);
	CHECK_EQ(cmos_read(0x02), 0x35);

	/* Setting a field while running keeps the rest. */
	cmos_write(0x09, 0x30);
	CHECK_EQ(cmos_read(0x09), 0x30);
	CHECK_EQ(cmos_read(0x02), 0x35);
	CHECK_EQ(cmos_read(0x08), 0x01);

	/* Divider reset: stopped; leaving it starts half a second before
	 * the next update. */
	cmos_write(0x0a, 0x70);
	advance(3 * NS);
	CHECK_EQ(cmos_read(0x00), 0x58);
	cmos_write(0x0a, 0x26);
	advance(499 * MS);
	CHECK_EQ(cmos_read(0x00), 0x58);
	advance(2 * MS);
	CHECK_EQ(cmos_read(0x00), 0x59);
	teardown();
}

static void test_set_time_12h_binary(void)
{
	setup_at(T0, 0);
	/* A format change needs every field rewritten, as on the chip. */
	cmos_write(0x0b, 0x80 | 0x04);		/* SET, binary, 12h */
	cmos_write(0x04, 0x80 | 12);		/* 12 PM */
	cmos_write(0x02, 30);
	cmos_write(0x00, 0);
	cmos_write(0x07, 15);
	cmos_write(0x08, 6);
	cmos_write(0x09, 99);
	cmos_write(0x32, 19);
	cmos_write(0x0b, 0x04);
	CHECK_EQ(cmos_read(0x09), 99);
	CHECK_EQ(cmos_read(0x32), 19);
	CHECK_EQ(cmos_read(0x06), 3);		/* 1999-06-15: Tuesday */
	cmos_write(0x0b, 0x06);			/* now 24h */
	CHECK_EQ(cmos_read(0x04), 12);
	CHECK_EQ(cmos_read(0x02), 30);
	cmos_write(0x0b, 0x84);
	cmos_write(0x04, 12);			/* 12 AM */
	cmos_write(0x0b, 0x04);			/* run (12h), then 24h */
	cmos_write(0x0b, 0x06);
	CHECK_EQ(cmos_read(0x04), 0);
	teardown();
}

static void test_uip(void)
{
	setup_at(T0, 0);
	CHECK_EQ(cmos_read(0x0a) & 0x80, 0);
	advance(999 * MS);
	CHECK_EQ(cmos_read(0x0a) & 0x80, 0);
	advance(800 * US);			/* 199.8 us before the update */
	CHECK_EQ(cmos_read(0x0a), 0x80 | 0x26);
	CHECK_EQ(cmos_read(0x00), 0x58);
	advance(300 * US);
	CHECK_EQ(cmos_read(0x0a) & 0x80, 0);
	CHECK_EQ(cmos_read(0x00), 0x59);
	/* UIP is read-only. */
	cmos_write(0x0a, 0xa6);
	CHECK_EQ(cmos_read(0x0a), 0x26);
	teardown();
}

/* Count interrupts over @ns of simulated time, acknowledging each as
 * Linux's rtc_cmos handler does (read C). */
static int count_irqs(int64_t ns, int64_t step, uint8_t want_flag)
{
	int n = 0;

	for (int64_t t = 0; t < ns; t += step) {
		advance(step);
		if (irq.level) {
			uint8_t c = cmos_read(0x0c);

			CHECK(c & 0x80);
			CHECK(c & want_flag);
			CHECK_EQ(irq.level, 0);
			n++;
		}
	}
	return n;
}

static void test_periodic(void)
{
	int n;

	setup_at(T0, 0);
	cmos_write(0x0a, 0x26);			/* 1024 Hz */
	cmos_write(0x0b, 0x02 | 0x40);		/* PIE */
	n = count_irqs(NS, 100 * US, 0x40);
	CHECK_EQ(n, 1024);
	n = count_irqs(10 * NS, 100 * US, 0x40);
	CHECK_EQ(n, 10240);			/* no drift */
	cmos_write(0x0a, 0x2f);			/* 2 Hz */
	n = count_irqs(10 * NS, MS, 0x40);
	CHECK_EQ(n, 20);
	cmos_write(0x0a, 0x23);			/* 8192 Hz */
	n = count_irqs(NS / 8, 10 * US, 0x40);
	CHECK_EQ(n, 1024);
	/* Rate 0 or PIE off: none. */
	cmos_write(0x0a, 0x20);
	CHECK_EQ(count_irqs(NS, MS, 0x40), 0);
	cmos_write(0x0a, 0x26);
	cmos_write(0x0b, 0x02);
	CHECK_EQ(count_irqs(NS, MS, 0x40), 0);
	/* ...but PF (and UF) are still reported when C is read. */
	CHECK_EQ(cmos_read(0x0c), 0x50);
	CHECK_EQ(cmos_read(0x0c), 0x00);
	teardown();
}

static void test_update_interrupt_and_reg_c(void)
{
	setup_at(T0, 250 * MS);
	(void)cmos_read(0x0c);
	cmos_write(0x0b, 0x02 | 0x10);		/* UIE */
	advance(700 * MS);
	CHECK_EQ(irq.level, 0);
	advance(60 * MS);			/* the second boundary */
	CHECK_EQ(irq.level, 1);
	CHECK_EQ(cmos_read(0x00), 0x59);
	/* IRQF | UF, and PF: the periodic flag is set at the register A
	 * rate whether or not PIE is. */
	CHECK_EQ(cmos_read(0x0c), 0xd0);
	CHECK_EQ(irq.level, 0);
	CHECK_EQ(cmos_read(0x0c), 0x00);	/* cleared by the read */
	CHECK_EQ(count_irqs(10 * NS, 10 * MS, 0x10), 10);
	/* SET clears UIE and stops updates. */
	cmos_write(0x0b, 0x80 | 0x02 | 0x10);
	CHECK_EQ(cmos_read(0x0b), 0x82);
	CHECK_EQ(count_irqs(3 * NS, 10 * MS, 0x10), 0);
	cmos_write(0x0b, 0x02);
	/* UIE off: UF is still set once a second boundary has passed. */
	(void)cmos_read(0x0c);
	advance(1001 * MS);
	CHECK_EQ(irq.level, 0);
	CHECK_EQ(cmos_read(0x0c), 0x50);
	/* Enabling UIE with UF pending raises IRQF at once. */
	advance(1001 * MS);
	CHECK_EQ(irq.level, 0);
	cmos_write(0x0b, 0x02 | 0x10);
	CHECK_EQ(irq.level, 1);
	CHECK_EQ(cmos_read(0x0c), 0xd0);
	CHECK_EQ(irq.level, 0);
	teardown();
}

static void test_alarm(void)
{
	int n;

	setup_at(T0, 500 * MS);			/* 23:59:58.5 */
	cmos_write(0x01, 0x03);			/* 00:00:03 */
	cmos_write(0x03, 0x00);
	cmos_write(0x05, 0x00);
	(void)cmos_read(0x0c);
	cmos_write(0x0b, 0x02 | 0x20);		/* AIE */
	advance(4 * NS);			/* 00:00:02.5 */
	CHECK_EQ(irq.level, 0);
	advance(500 * MS);
	CHECK_EQ(irq.level, 1);
	CHECK_EQ(cmos_read(0x00), 0x03);
	CHECK_EQ((cmos_read(0x0c) & 0xa0), 0xa0);	/* IRQF | AF */
	CHECK_EQ(irq.level, 0);
	/* Don't-care seconds: once a second during minute 00:01. */
	cmos_write(0x01, 0xff);
	cmos_write(0x03, 0x01);
	n = count_irqs(120 * NS, 100 * MS, 0x20);
	CHECK_EQ(n, 60);
	teardown();
}

static void test_cmos_ram(void)
{
	setup_at(T0, 0);
	rtc_cmos_set(rtc, 0x15, 0x80);		/* base memory 640 KiB */
	rtc_cmos_set(rtc, 0x16, 0x02);
	rtc_cmos_set(rtc, 0x00, 0x99);		/* clock: ignored */
	rtc_cmos_set(rtc, 0x0b, 0xff);
	CHECK_EQ(cmos_read(0x15), 0x80);
	CHECK_EQ(cmos_read(0x16), 0x02);
	CHECK_EQ(cmos_read(0x00), 0x58);
	CHECK_EQ(cmos_read(0x0b), 0x02);
	/* NMI mask bit in the index. */
	bus_write(pio, 0x70, 0x80 | 0x15, 1, NULL);
	CHECK_EQ(bus_read(pio, 0x71, 1, NULL), 0x80);
	cmos_write(0x7f, 0x5a);
	CHECK_EQ(cmos_read(0x7f), 0x5a);
	/* C and D are read-only. */
	cmos_write(0x0d, 0x00);
	CHECK_EQ(cmos_read(0x0d), 0x80);
	teardown();
}

static void test_reset(void)
{
	setup_at(T0, 0);
	cmos_write(0x0b, 0x02 | 0x40 | 0x10);
	advance(10 * MS);
	CHECK_EQ(irq.level, 1);
	rtc_reset(rtc);
	CHECK_EQ(irq.level, 0);
	CHECK_EQ(cmos_read(0x0b), 0x02);
	CHECK_EQ(cmos_read(0x0a), 0x26);
	CHECK_EQ(cmos_read(0x00), 0x58);
	CHECK_EQ(count_irqs(2 * NS, MS, 0x40), 0);
	teardown();
}


/* A second RTC on its own bus and queue, on the same fake clock. */
static struct bus *pio2;
static struct vtimer_queue *q2;
static struct irq_recorder irq2;

static uint8_t cmos2_read(struct bus *b, uint8_t idx)
{
	io_write(b, 0x70, idx, 1);
	return (uint8_t)io_read(b, 0x71, 1);
}

static void advance_both(int64_t ns)
{
	fake_clock_advance(&fclk, (uint64_t)ns);
	vtimer_queue_run_due(q, fclk.mono_ns);
	vtimer_queue_run_due(q2, fclk.mono_ns);
}

/* An alarm and the periodic interrupt set, a flag pending: saved, loaded
 * into a fresh RTC and saved again, equal; both then interrupt and read
 * alike.  A restore with the host's realtime an hour on continues from
 * the saved guest time. */
static void test_save_load(void)
{
	GVariant *s1, *s2, *s3, *bad;
	struct rtc *rtc2, *rtc3;
	uint8_t secs, mins;
	unsigned rises;
	char err[256];

	setup_at(T0, 500 * MS);			/* 23:59:58.5 */
	cmos_write(0x01, 0x03);			/* alarm 00:00:03 */
	cmos_write(0x03, 0x00);
	cmos_write(0x05, 0x00);
	cmos_write(0x0a, 0x2f);			/* 2 Hz */
	(void)cmos_read(0x0c);
	cmos_write(0x0b, 0x02 | 0x40 | 0x20);	/* PIE, AIE */
	advance(1200 * MS);
	CHECK_EQ(irq.level, 1);			/* PF pending */

	s1 = g_variant_ref_sink(rtc_device_ops.save(rtc));
	CHECK(g_variant_is_of_type(s1, G_VARIANT_TYPE(RTC_STATE_TYPE)));
	pio2 = bus_new("pio2");
	q2 = vtimer_queue_new_manual(&fclk.clk);
	rtc2 = rtc_new(q2, irq_recorder_line(&irq2, 8));
	CHECK_EQ(rtc_attach(rtc2, pio2), 0);
	CHECK_EQ(rtc_device_ops.load(rtc2, 1, s1, err, sizeof(err)), 0);
	CHECK_EQ(irq2.level, 1);		/* re-driven */
	s2 = g_variant_ref_sink(rtc_device_ops.save(rtc2));
	CHECK(g_variant_equal(s1, s2));

	/* Periodic and alarm interrupts, acknowledged, at the same times. */
	rises = irq.rises;
	for (int i = 0; i < 60; i++) {
		CHECK_EQ(irq.level, irq2.level);
		if (irq.level)
			CHECK_EQ(cmos_read(0x0c), cmos2_read(pio2, 0x0c));
		CHECK_EQ(cmos_read(0x00), cmos2_read(pio2, 0x00));
		CHECK_EQ(cmos_read(0x0a), cmos2_read(pio2, 0x0a));
		advance_both(100 * MS);
	}
	CHECK(irq.rises - rises >= 10);
	CHECK_EQ(cmos_read(0x02), cmos2_read(pio2, 0x02));
	CHECK_EQ(cmos_read(0x04), 0x00);

	/* Saved, the host's clock moves an hour on, restored: the guest
	 * continues from the saved time. */
	secs = cmos2_read(pio2, 0x00);
	mins = cmos2_read(pio2, 0x02);
	s3 = g_variant_ref_sink(rtc_device_ops.save(rtc2));
	fclk.real_ns += 3600 * NS;
	rtc3 = rtc_new(q2, irq_recorder_line(&irq2, 8));
	CHECK_EQ(rtc_device_ops.load(rtc3, 1, s3, err, sizeof(err)), 0);
	CHECK_EQ(rtc_device_ops.load(rtc3, 1, s3, err, sizeof(err)), 0);
	{
		GVariant *s4 = g_variant_ref_sink(rtc_device_ops.save(rtc3));

		CHECK(g_variant_equal(s3, s4));
		g_variant_unref(s4);
	}
	rtc_free(rtc2);
	rtc2 = rtc3;
	bus_free(pio2);
	pio2 = bus_new("pio2");
	CHECK_EQ(rtc_attach(rtc2, pio2), 0);
	CHECK_EQ(cmos2_read(pio2, 0x00), secs);
	CHECK_EQ(cmos2_read(pio2, 0x02), mins);
	CHECK_EQ(cmos2_read(pio2, 0x04), 0x00);	/* not 01 */

	/* Refused, and the device unchanged. */
	state_refused(&rtc_device_ops, rtc2, 1, g_variant_new("(u)", 1), "rtc: state is of type");
	state_refused(&rtc_device_ops, rtc2, 7, g_variant_ref(s1), "rtc: state version 7 not supported");
	bad = state_with(s1, g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, "x", 1, 1), 1, 0);
	state_refused(&rtc_device_ops, rtc2, 1, bad, "rtc: 1 bytes of CMOS");
	state_refused(&rtc_device_ops, rtc2, 1,
		      state_with(s1, g_variant_new_byte(0x80), 1, 1), "rtc: index register");
	state_refused(&rtc_device_ops, rtc2, 1,
		      state_with(s1, g_variant_new_boolean(FALSE), 1, 2), "rtc: IRQ 8 level");
	state_refused(&rtc_device_ops, rtc2, 1,
		      state_with(s1, g_variant_new_boolean(TRUE), 1, 3), "rtc: clock stopped");
	state_refused(&rtc_device_ops, rtc2, 1,
		      state_with(s1, g_variant_new_byte(6), 1, 10), "rtc: periodic timer");
	state_refused(&rtc_device_ops, rtc2, 1,
		      state_with(s1, g_variant_new_boolean(FALSE), 1, 5), "rtc: update timer");
	state_refused(&rtc_device_ops, rtc2, 1,
		      state_with(s1, g_variant_new_int64(INT64_MIN), 1, 4), "rtc: guest time");

	g_variant_unref(s1);
	g_variant_unref(s2);
	g_variant_unref(s3);
	rtc_free(rtc2);
	vtimer_queue_free(q2);
	bus_free(pio2);
	teardown();
}

int main(void)
{
	RUN_TEST(test_bcd);
	RUN_TEST(test_binary_and_12h);
	RUN_TEST(test_set_time);
	RUN_TEST(test_set_time_12h_binary);
	RUN_TEST(test_uip);
	RUN_TEST(test_periodic);
	RUN_TEST(test_update_interrupt_and_reg_c);
	RUN_TEST(test_alarm);
	RUN_TEST(test_cmos_ram);
	RUN_TEST(test_reset);
	RUN_TEST(test_save_load);
	return check_finish();
}
