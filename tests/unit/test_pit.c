/* SPDX-License-Identifier: MIT */
/* tests/unit/test_pit.c - the 8254 through ports 0x40-0x43 and 0x61 on a
 * fake clock and a manual timer queue, programmed as Linux does it
 * (drivers/clocksource/i8253.c, arch/x86/kernel/tsc.c). */
#include "testlib.h"

#include <errno.h>

#include "statetest.h"

#include "devices/pit.h"
#include "timer.h"

static struct fake_clock fclk;

static struct bus *pio;
static struct vtimer_queue *q;
static struct pit *pit;
static unsigned irqs;
static int irq_level;
static uint64_t irq_times[4096];

static void irq_set(void *opaque, unsigned gsi, int level)
{
	(void)opaque;
	CHECK_EQ(gsi, 0);
	if (level && !irq_level) {
		if (irqs < 4096)
			irq_times[irqs] = fclk.mono_ns;
		irqs++;
	}
	irq_level = level;
}

static void outb(uint16_t port, uint8_t v)
{
	io_write(pio, port, v, 1);
}

static uint8_t inb(uint16_t port)
{
	return (uint8_t)io_read(pio, port, 1);
}

/* Let simulated time pass in steps of @step_ns, firing due timers as the
 * timer thread would (none while the queue's clock is paused). */
static void advance(uint64_t ns, uint64_t step_ns)
{
	const struct vclock *clk = vtimer_queue_clock(q);
	uint64_t end = fclk.mono_ns + ns;

	while (fclk.mono_ns < end) {
		fclk.mono_ns = fclk.mono_ns + step_ns < end ?
			       fclk.mono_ns + step_ns : end;
		if (!vclock_paused(clk))
			vtimer_queue_run_due(q, vclock_now(clk));
	}
}

/* The PIT on @virt, following fclk (NULL: on fclk itself). */
static void setup_on(struct vclock_virt *virt)
{
	fake_clock_init(&fclk);
	fclk.mono_ns = 1000000000ull;	/* arbitrary non-zero start */
	irqs = 0;
	irq_level = 0;
	pio = bus_new("pio");
	if (virt)
		vclock_virt_init(virt, &fclk.clk);
	q = vtimer_queue_new_manual(virt ? &virt->clk : &fclk.clk);
	pit = pit_new(q, (struct irq_line){ .set = irq_set, .gsi = 0 });
	CHECK(pit != NULL);
	CHECK_EQ(pit_attach(pit, pio), 0);
}

static void setup(void)
{
	setup_on(NULL);
}

static void teardown(void)
{
	pit_free(pit);
	vtimer_queue_free(q);
	bus_free(pio);
}

static uint64_t ticks_in(uint64_t ns)
{
	return ns * PIT_FREQ_HZ / 1000000000ull;
}

/* The count of counter @ch through the counter latch command. */
static uint16_t latch_read(unsigned ch)
{
	uint16_t lo, hi;

	outb(0x43, (uint8_t)(ch << 6));
	lo = inb((uint16_t)(0x40 + ch));
	hi = inb((uint16_t)(0x40 + ch));
	return (uint16_t)(lo | hi << 8);
}

static void test_idle_after_reset(void)
{
	setup();
	advance(100000000, 1000000);
	CHECK_EQ(irqs, 0);
	CHECK_EQ(inb(0x61) & 0x20, 0x20);	/* OUT2 high, idle mode 3 */
	CHECK_EQ(inb(0x61) & 0x01, 0);		/* gate 2 low */
	teardown();
}

/* Linux's periodic clockevent: mode 2, LATCH = (PIT_TICK_RATE + HZ/2)/HZ. */
static void test_mode2_periodic(void)
{
	const uint16_t latch = (PIT_FREQ_HZ + 500) / 1000;	/* 1193 */
	uint64_t t0;

	setup();
	outb(0x43, 0x34);
	outb(0x40, latch & 0xff);
	outb(0x40, latch >> 8);
	t0 = fclk.mono_ns;
	/* Steps shorter than the period: every edge is seen once. */
	advance(10000000000ull, 100000);
	CHECK_EQ(irqs, ticks_in(10000000000ull) / latch);	/* 10001, no drift */
	/* The k-th IRQ comes at the k-th period, give or take one step. */
	for (unsigned k = 1; k <= 4000 && k <= irqs; k += 999) {
		uint64_t due = t0 + ((uint64_t)k * latch * 1000000000ull +
				     PIT_FREQ_HZ - 1) / PIT_FREQ_HZ;

		CHECK(irq_times[k - 1] >= due && irq_times[k - 1] < due + 100000);
	}
	/* The count runs down from the reload value within each period. */
	{
		uint64_t t = ticks_in(fclk.mono_ns - t0);

		CHECK_EQ(latch_read(0), latch - t % latch);
	}
	/* Shut down as Linux does (mode 0, no count): the IRQs stop. */
	outb(0x43, 0x30);
	irqs = 0;
	advance(100000000, 100000);
	CHECK_EQ(irqs, 0);
	teardown();
}

/* Mode 3 square wave, as SeaBIOS leaves counter 0 (count 0 = 65536). */
static void test_mode3_square_wave(void)
{
	setup();
	outb(0x43, 0x36);
	outb(0x40, 0);
	outb(0x40, 0);
	advance(1000000000, 1000000);
	CHECK_EQ(irqs, PIT_FREQ_HZ / 65536);	/* 18.2 Hz */
	/* OUT high for the first half, low for the second: read-back
	 * status bit 7 at a known phase. */
	outb(0x43, 0x36);
	outb(0x40, 100);
	outb(0x40, 0);
	fclk.mono_ns += 40000;	/* 47 ticks: still high, count 100 - 2*47 */
	outb(0x43, 0xc2);	/* read-back count and status of counter 0 */
	CHECK_EQ(inb(0x40) & 0x80, 0x80);
	CHECK_EQ(inb(0x40), 100 - 2 * 47);
	CHECK_EQ(inb(0x40), 0);
	fclk.mono_ns += 10000;	/* 59 ticks: low half, 100 - 2*9 */
	outb(0x43, 0xc2);
	CHECK_EQ(inb(0x40) & 0x80, 0);
	CHECK_EQ(latch_read(0), 100 - 2 * 9);
	teardown();
}

static void test_mode0_oneshot(void)
{
	uint64_t t0, due;

	setup();
	outb(0x43, 0x30);		/* counter 0, LSB/MSB, mode 0 */
	outb(0x40, 0x10);
	CHECK_EQ(irqs, 0);
	outb(0x40, 0x27);		/* 10000 ticks = 8381 us */
	t0 = fclk.mono_ns;
	due = t0 + (10000ull * 1000000000ull + PIT_FREQ_HZ - 1) / PIT_FREQ_HZ;
	outb(0x43, 0xe2);		/* status only */
	CHECK_EQ(inb(0x40), 0x30);	/* OUT low, count loaded, LSB/MSB mode 0 */
	advance(due - 1 - fclk.mono_ns, 1000);
	CHECK_EQ(irqs, 0);
	CHECK_EQ(latch_read(0), 1);
	advance(1, 1);
	CHECK_EQ(irqs, 1);
	CHECK_EQ(irq_times[0], due);
	outb(0x43, 0xe2);
	CHECK_EQ(inb(0x40), 0xb0);	/* OUT high */
	/* Only once; the counter wraps on through 0xffff. */
	advance(200000000, 1000000);
	CHECK_EQ(irqs, 1);
	CHECK_EQ(latch_read(0),
		 (uint16_t)(10000 - ticks_in(fclk.mono_ns - t0)));

	/* Writing the first byte stops the count, OUT low; the second
	 * restarts it with the new count. */
	outb(0x40, 0x00);
	outb(0x43, 0xe2);
	CHECK_EQ(inb(0x40) & 0x80, 0);
	fclk.mono_ns += 1000000;
	outb(0x40, 0x01);		/* 256 ticks */
	advance(300000, 1000);
	CHECK_EQ(irqs, 2);
	teardown();
}

/* Linux's one-shot clockevent: mode 4 (0x38), the edge comes when OUT
 * returns high one tick after the count expires. */
static void test_mode4_oneshot(void)
{
	setup();
	outb(0x43, 0x38);
	outb(0x40, 100);
	outb(0x40, 0);
	advance(84000, 100);		/* 100 ticks = 83.8 us */
	CHECK_EQ(irqs, 0);
	advance(2000, 100);
	CHECK_EQ(irqs, 1);
	advance(100000000, 100000);
	CHECK_EQ(irqs, 1);
	/* Re-arming: a new count restarts it. */
	outb(0x40, 0x00);
	outb(0x40, 0x10);		/* 4096 ticks */
	advance(10000000, 10000);
	CHECK_EQ(irqs, 2);
	teardown();
}

static void test_latch_and_access_modes(void)
{
	uint16_t a;

	setup();
	outb(0x43, 0x34);
	outb(0x40, 0x00);
	outb(0x40, 0xc0);		/* 0xc000 */
	fclk.mono_ns += 1000000;	/* 1193 ticks */
	outb(0x43, 0x00);		/* latch counter 0 */
	fclk.mono_ns += 1000000;
	outb(0x43, 0x00);		/* ignored: the first is not read yet */
	a = inb(0x40);
	fclk.mono_ns += 1000000;
	a |= (uint16_t)(inb(0x40) << 8);
	CHECK_EQ(a, 0xc000 - 1193);
	/* Unlatched reads follow the live count, LSB then MSB. */
	a = inb(0x40);
	a |= (uint16_t)(inb(0x40) << 8);
	CHECK_EQ(a, 0xc000 - ticks_in(3000000));

	/* LSB only: one byte per read and write. */
	outb(0x43, 0x54);		/* counter 1, LSB, mode 2 */
	outb(0x41, 200);
	fclk.mono_ns += 10000;	/* 11 ticks */
	CHECK_EQ(inb(0x41), 200 - 11);
	CHECK_EQ(inb(0x41), 200 - 11);
	outb(0x43, 0xe4);		/* status of counter 1 */
	CHECK_EQ(inb(0x41), 0x80 | (0x54 & 0x3f));	/* OUT high */
	/* MSB only. */
	outb(0x43, 0x64);		/* counter 1, MSB, mode 2 */
	outb(0x41, 0x20);		/* 0x2000 */
	fclk.mono_ns += 1000000;
	CHECK_EQ(inb(0x41), (0x2000 - 1193) >> 8);
	outb(0x43, 0x40);
	CHECK_EQ(inb(0x41), (0x2000 - 1193) >> 8);

	/* Read-back of count and status of two counters at once: status
	 * first, then the count, each released once read. */
	outb(0x43, 0xb0);		/* counter 2, LSB/MSB, mode 0, gate low */
	outb(0x42, 0x34);
	outb(0x42, 0x12);
	outb(0x43, 0xcc);		/* count + status, counters 1 and 2 */
	CHECK_EQ(inb(0x42), 0x30);	/* OUT low, loaded, mode 0 */
	CHECK_EQ(inb(0x42), 0x34);	/* paused at the full count */
	CHECK_EQ(inb(0x42), 0x12);
	CHECK_EQ(inb(0x41), 0x80 | (0x64 & 0x3f));
	CHECK_EQ(inb(0x41), (0x2000 - 1193) >> 8);

	/* Null count: set by a count written in mode 2 while counting until
	 * the period ends. */
	outb(0x43, 0x34);
	outb(0x40, 100);
	outb(0x40, 0);
	outb(0x43, 0xe2);
	CHECK_EQ(inb(0x40) & 0x40, 0);
	fclk.mono_ns += 10000;
	outb(0x40, 50);
	outb(0x40, 0);
	outb(0x43, 0xe2);
	CHECK_EQ(inb(0x40) & 0x40, 0x40);
	CHECK_EQ(latch_read(0), 100 - 11);	/* the old period runs out */
	fclk.mono_ns += 80000;	/* tick 107: 7 into the new count */
	outb(0x43, 0xe2);
	CHECK_EQ(inb(0x40) & 0x40, 0);
	CHECK_EQ(latch_read(0), 50 - 7);
	teardown();
}

/* arch/x86/kernel/tsc.c pit_calibrate_tsc(): gate high, speaker off,
 * counter 2 mode 0 with a 50 ms count, poll port 0x61 bit 5. */
static void test_ch2_pit_calibrate_tsc(void)
{
	const uint16_t latch = PIT_FREQ_HZ / (1000 / 50);
	uint64_t t0, due;
	unsigned loops = 0;

	setup();
	outb(0x61, (inb(0x61) & ~0x02) | 0x01);
	CHECK_EQ(inb(0x61) & 0x03, 0x01);
	outb(0x43, 0xb0);
	outb(0x42, latch & 0xff);
	outb(0x42, latch >> 8);
	t0 = fclk.mono_ns;
	due = t0 + ((uint64_t)latch * 1000000000ull + PIT_FREQ_HZ - 1) / PIT_FREQ_HZ;
	while ((inb(0x61) & 0x20) == 0 && loops < 100000) {
		fclk.mono_ns += 1000;	/* each poll takes 1 us */
		loops++;
	}
	CHECK(fclk.mono_ns >= due && fclk.mono_ns < due + 1000);
	CHECK_EQ(irqs, 0);		/* counter 2 raises no IRQ */
	teardown();
}

/* quick_pit_calibrate(): counter 2 from 0xffff, MSB read back live (LSB
 * read first and dropped), waiting for each MSB value to pass. */
static void test_ch2_quick_calibrate(void)
{
	uint8_t msb;
	uint64_t t0;

	setup();
	outb(0x61, (inb(0x61) & ~0x02) | 0x01);
	outb(0x43, 0xb0);
	outb(0x42, 0xff);
	outb(0x42, 0xff);
	t0 = fclk.mono_ns;
	for (unsigned expect = 0xff; expect > 0xf0; expect--) {
		unsigned reads = 0;

		do {
			inb(0x42);
			msb = inb(0x42);
			fclk.mono_ns += 2000;
			reads++;
		} while (msb == expect && reads < 10000);
		CHECK_EQ(msb, expect - 1);
	}
	/* 15 MSB steps of 256 ticks each (the first is 255) */
	CHECK(ticks_in(fclk.mono_ns - t0) >= 0xffff - 0xf0ff &&
	      ticks_in(fclk.mono_ns - t0) < 0xffff - 0xf0ff + 5);

	/* Gate low suspends mode 0; high resumes. */
	outb(0x61, 0x00);
	{
		uint16_t a = latch_read(2), b;

		fclk.mono_ns += 5000000;
		b = latch_read(2);
		CHECK_EQ(a, b);
		outb(0x61, 0x01);
		fclk.mono_ns += 1000000;
		CHECK_EQ(latch_read(2), (uint16_t)(b - 1193));
	}
	teardown();
}

static void test_port61_bits(void)
{
	unsigned toggles = 0;
	uint8_t last;

	setup();
	/* Refresh bit 4 toggles every ~15 us. */
	last = inb(0x61) & 0x10;
	for (int i = 0; i < 100; i++) {
		fclk.mono_ns += 1000;
		if ((inb(0x61) & 0x10) != last) {
			toggles++;
			last = inb(0x61) & 0x10;
		}
	}
	CHECK(toggles >= 6 && toggles <= 7);
	/* Bits 0-3 read back, 6-7 read 0, 4-5 are not writable. */
	outb(0x61, 0xff);
	CHECK_EQ(inb(0x61) & 0xcf, 0x0f);

	/* Mode 2 on counter 2 with the gate: low forces OUT high and stops;
	 * the rising edge reloads. */
	outb(0x43, 0xb4);
	outb(0x42, 10);
	outb(0x42, 0);
	fclk.mono_ns += 7543;	/* 9 ticks: OUT low for this one */
	CHECK_EQ(inb(0x61) & 0x20, 0);
	outb(0x61, 0x00);
	CHECK_EQ(inb(0x61) & 0x20, 0x20);
	fclk.mono_ns += 100000;
	outb(0x61, 0x01);
	CHECK_EQ(latch_read(2), 10);
	/* Mode 1: the gate's rising edge triggers, OUT low for the count. */
	outb(0x43, 0xb2);
	outb(0x42, 100);
	outb(0x42, 0);
	CHECK_EQ(inb(0x61) & 0x20, 0x20);	/* waiting for a trigger */
	outb(0x61, 0x00);
	outb(0x61, 0x01);
	CHECK_EQ(inb(0x61) & 0x20, 0);
	fclk.mono_ns += 90000;
	CHECK_EQ(inb(0x61) & 0x20, 0x20);
	teardown();
}

/* A guest asking for a 1.19 MHz IRQ gets at most one per 10 us, while the
 * count it reads stays exact. */
static void test_tiny_period_clamped(void)
{
	uint64_t t0;

	setup();
	outb(0x43, 0x34);
	outb(0x40, 2);
	outb(0x40, 0);
	t0 = fclk.mono_ns;
	advance(10000000, 500);		/* 10 ms */
	/* Unclamped: 5965.  Clamped: one per 10 us plus the wait for the next
	 * edge (a period is 1.7 us) and for the 0.5 us step. */
	CHECK(irqs >= 800 && irqs <= 1001);
	for (unsigned i = 1; i < irqs && i < 4096; i++)
		CHECK(irq_times[i] - irq_times[i - 1] >= 10000);
	CHECK_EQ(latch_read(0), 2 - ticks_in(fclk.mono_ns - t0) % 2);
	fclk.mono_ns += 838;
	CHECK_EQ(latch_read(0), 2 - ticks_in(fclk.mono_ns - t0) % 2);

	/* A one-shot right after an IRQ is delayed, not lost. */
	outb(0x43, 0x30);
	irqs = 0;
	outb(0x40, 1);
	outb(0x40, 0);
	advance(100000, 100);
	CHECK_EQ(irqs, 1);
	teardown();
}

/* On a machine's clock, the PIT stands still while the machine is paused:
 * no IRQ, the same count, and no catch-up after 5 s. */
static void test_machine_pause(void)
{
	const uint16_t latch = (PIT_FREQ_HZ + 500) / 1000;	/* 1 kHz */
	struct vclock_virt vc;
	unsigned n;
	uint16_t count;

	setup_on(&vc);
	outb(0x43, 0x34);
	outb(0x40, latch & 0xff);
	outb(0x40, latch >> 8);
	advance(1000000000ull, 100000);
	CHECK(irqs >= 999 && irqs <= 1001);
	advance(300000, 100000);		/* mid-period */
	vclock_pause(&vc);
	n = irqs;
	count = latch_read(0);
	advance(5000000000ull, 100000);
	CHECK_EQ(irqs, n);
	CHECK_EQ(latch_read(0), count);
	vclock_resume(&vc);
	CHECK_EQ(latch_read(0), count);
	advance(10000000, 100000);
	CHECK(irqs - n >= 9 && irqs - n <= 11);	/* 10 ms: 10 ticks, not 5010 */
	teardown();
	vclock_virt_destroy(&vc);
}


/* The restored PIT of test_save_load: its own bus, queue and IRQ log. */
static struct bus *pio2;
static struct vtimer_queue *q2;
static unsigned irqs2;
static uint64_t irq2_times[64];

static void irq2_set(void *opaque, unsigned gsi, int level)
{
	(void)opaque;
	CHECK_EQ(gsi, 0);
	if (level) {
		if (irqs2 < 64)
			irq2_times[irqs2] = fclk.mono_ns;
		irqs2++;
	}
}

/* Time passes for both PITs. */
static void advance_both(uint64_t ns, uint64_t step_ns)
{
	uint64_t end = fclk.mono_ns + ns;

	while (fclk.mono_ns < end) {
		fclk.mono_ns = fclk.mono_ns + step_ns < end ?
			       fclk.mono_ns + step_ns : end;
		vtimer_queue_run_due(q, fclk.mono_ns);
		vtimer_queue_run_due(q2, fclk.mono_ns);
	}
}

/* Counter 0 in mode 2 with a latched count, counter 2 mid-way through a
 * two-byte count: saved, loaded into a fresh PIT and saved again, the
 * states are equal, and both PITs then read and tick alike. */
static void test_save_load(void)
{
	const uint16_t latch = (PIT_FREQ_HZ + 500) / 1000;
	GVariant *s1, *s2;
	struct pit *pit2;
	unsigned before;
	char err[256];

	setup();
	outb(0x43, 0x34);
	outb(0x40, latch & 0xff);
	outb(0x40, latch >> 8);
	advance(2500000, 100000);
	CHECK(irqs >= 2);
	outb(0x61, 0x01);		/* gate 2 high */
	outb(0x43, 0xb6);		/* counter 2, LSB/MSB, mode 3 */
	outb(0x42, 0x34);		/* LSB only */
	outb(0x43, 0x00);		/* latch counter 0 */
	fclk.mono_ns += 123456;		/* the latch holds an older count */

	s1 = g_variant_ref_sink(pit_device_ops.save(pit));
	CHECK(g_variant_is_of_type(s1, G_VARIANT_TYPE(PIT_STATE_TYPE)));
	pio2 = bus_new("pio2");
	q2 = vtimer_queue_new_manual(&fclk.clk);
	pit2 = pit_new(q2, (struct irq_line){ .set = irq2_set, .gsi = 0 });
	CHECK_EQ(pit_attach(pit2, pio2), 0);
	irqs2 = 0;
	CHECK_EQ(pit_device_ops.load(pit2, 1, s1, err, sizeof(err)), 0);
	s2 = g_variant_ref_sink(pit_device_ops.save(pit2));
	CHECK(g_variant_equal(s1, s2));

	/* The latched count, then the rest of counter 2's count. */
	for (unsigned i = 0; i < 2; i++)
		CHECK_EQ(inb(0x40), io_read(pio2, 0x40, 1));
	outb(0x42, 0x12);
	io_write(pio2, 0x42, 0x12, 1);
	/* The next ticks at the same clock times. */
	before = irqs;
	advance_both(5000000, 1000);
	CHECK(irqs - before >= 4);
	CHECK_EQ(irqs2, irqs - before);
	for (unsigned i = 0; i < irqs2 && i < 64; i++)
		CHECK_EQ(irq2_times[i], irq_times[before + i]);
	CHECK_EQ(inb(0x61) & 0x20, io_read(pio2, 0x61, 1) & 0x20);
	outb(0x43, 0x80);
	io_write(pio2, 0x43, 0x80, 1);
	CHECK_EQ(inb(0x42), io_read(pio2, 0x42, 1));
	CHECK_EQ(inb(0x42), io_read(pio2, 0x42, 1));

	/* Refused, and the device unchanged. */
	state_refused(&pit_device_ops, pit2, 1, g_variant_new("(u)", 1), "pit: state is of type");
	state_refused(&pit_device_ops, pit2, 2, g_variant_ref(s1), "pit: state version 2 not supported");
	state_refused(&pit_device_ops, pit2, 1,
		      state_with(s1, g_variant_new_byte(6), 2, 0, 0), "pit: counter 0 mode");
	state_refused(&pit_device_ops, pit2, 1,
		      state_with(s1, g_variant_new_byte(0), 2, 2, 1), "pit: counter 2 mode");
	state_refused(&pit_device_ops, pit2, 1,
		      state_with(s1, g_variant_new_uint32(0), 2, 0, 20), "pit: counter 0 count");
	state_refused(&pit_device_ops, pit2, 1,
		      state_with(s1, g_variant_new_uint32(65537), 2, 1, 20), "pit: counter 1 count");
	state_refused(&pit_device_ops, pit2, 1,
		      state_with(s1, g_variant_new_boolean(FALSE), 2, 1, 14), "pit: counter 1 has its gate low");
	state_refused(&pit_device_ops, pit2, 1,
		      state_with(s1, g_variant_new_byte(0x10), 1, 3), "pit: port 0x61");
	state_refused(&pit_device_ops, pit2, 1,
		      state_with(s1, g_variant_new_byte(0), 1, 3), "pit: counter 2 gate");
	state_refused(&pit_device_ops, pit2, 1,
		      state_with(s1, g_variant_new_boolean(FALSE), 2, 0, 15), "pit: IRQ 0 timer armed");

	g_variant_unref(s1);
	g_variant_unref(s2);
	pit_free(pit2);
	vtimer_queue_free(q2);
	bus_free(pio2);
	teardown();
}

int main(void)
{
	RUN_TEST(test_idle_after_reset);
	RUN_TEST(test_mode2_periodic);
	RUN_TEST(test_mode3_square_wave);
	RUN_TEST(test_mode0_oneshot);
	RUN_TEST(test_mode4_oneshot);
	RUN_TEST(test_latch_and_access_modes);
	RUN_TEST(test_ch2_pit_calibrate_tsc);
	RUN_TEST(test_ch2_quick_calibrate);
	RUN_TEST(test_port61_bits);
	RUN_TEST(test_tiny_period_clamped);
	RUN_TEST(test_machine_pause);
	RUN_TEST(test_save_load);
	return check_finish();
}
