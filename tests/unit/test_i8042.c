/* SPDX-License-Identifier: MIT */
/* tests/unit/test_i8042.c - the 8042 through ports 0x60/0x64 as Linux's
 * i8042 driver (drivers/input/serio/i8042.c) and atkbd probe it. */
#include "testlib.h"

#include <errno.h>
#include <glib.h>
#include <linux/input-event-codes.h>

#include "devices/i8042.h"
#include "display/console.h"
#include "timer.h"

#define DATA 0x60
#define CMD 0x64
#define STS 0x64

#define STS_OBF 0x01
#define STS_SYS 0x04
#define STS_AUXOBF 0x20
#define STS_TIMEOUT 0x40

static struct bus *pio;
static struct i8042 *kbc;
static struct irq_recorder kbd_irq, aux_irq;
static int resets;
static int a20_calls;
static bool a20;

static void on_reset(void *opaque)
{
	(void)opaque;
	resets++;
}

static void on_a20(void *opaque, bool on)
{
	(void)opaque;
	a20_calls++;
	a20 = on;
}

static const struct i8042_ops ops = { .reset = on_reset, .set_a20 = on_a20 };

static void outb(uint16_t port, uint8_t v)
{
	io_write(pio, port, v, 1);
}

static uint8_t inb(uint16_t port)
{
	return (uint8_t)io_read(pio, port, 1);
}

static struct fake_clock fclock;
static struct vtimer_queue *timers;

static void setup_with(struct vtimer_queue *q)
{
	resets = a20_calls = 0;
	a20 = true;
	kbd_irq = (struct irq_recorder){ 0 };
	aux_irq = (struct irq_recorder){ 0 };
	pio = bus_new("pio");
	kbc = i8042_new(&ops, NULL, irq_recorder_line(&kbd_irq, 1),
			irq_recorder_line(&aux_irq, 12), q);
	CHECK(kbc != NULL);
	CHECK_EQ(i8042_attach(kbc, pio), 0);
}

static void setup(void)
{
	setup_with(NULL);
}

static void teardown(void)
{
	i8042_free(kbc);
	bus_free(pio);
	if (timers) {
		vtimer_queue_free(timers);
		timers = NULL;
	}
}

/* i8042_command(): one response byte, waiting for OBF. */
static int command(uint8_t cmd, const uint8_t *param, unsigned nparam,
		   uint8_t *resp, unsigned nresp)
{
	outb(CMD, cmd);
	for (unsigned i = 0; i < nparam; i++)
		outb(DATA, param[i]);
	for (unsigned i = 0; i < nresp; i++) {
		if (!(inb(STS) & STS_OBF))
			return -1;
		resp[i] = inb(DATA);
	}
	return 0;
}

static uint8_t cmd1(uint8_t cmd)
{
	uint8_t r = 0xee;

	CHECK_EQ(command(cmd, NULL, 0, &r, 1), 0);
	return r;
}

static void test_status_and_flush(void)
{
	setup();
	CHECK_EQ(inb(STS) & (STS_OBF | 0x02), 0);	/* nothing, IBF 0 */
	CHECK(inb(STS) & STS_SYS);
	/* i8042_flush: reads until OBF clears. */
	outb(DATA, 0xf4);
	CHECK(inb(STS) & STS_OBF);
	CHECK_EQ(inb(DATA), 0xfa);
	CHECK_EQ(inb(STS) & STS_OBF, 0);
	teardown();
}

static void test_self_test(void)
{
	setup();
	CHECK_EQ(cmd1(0xaa), 0x55);
	CHECK(inb(STS) & STS_SYS);
	CHECK(inb(STS) & 0x08);			/* last write was a command */
	CHECK_EQ(cmd1(0xab), 0x00);		/* keyboard interface test */
	CHECK_EQ(cmd1(0xa9), 0x00);		/* aux interface test */
	teardown();
}

static void test_config_byte(void)
{
	uint8_t ctr, p;

	setup();
	ctr = cmd1(0x20);
	CHECK_EQ(ctr, 0x47);
	/* i8042_controller_init: interrupts off while probing. */
	p = ctr & (uint8_t)~0x03;
	CHECK_EQ(command(0x60, &p, 1, NULL, 0), 0);
	CHECK_EQ(cmd1(0x20), 0x44);
	/* 0xad/0xae, 0xa7/0xa8 flip the disable bits. */
	outb(CMD, 0xad);
	CHECK_EQ(cmd1(0x20), 0x54);
	outb(CMD, 0xa7);
	CHECK_EQ(cmd1(0x20), 0x74);
	outb(CMD, 0xae);
	outb(CMD, 0xa8);
	CHECK_EQ(cmd1(0x20), 0x44);
	/* Bit 7 is always 0; other RAM bytes are storage. */
	p = 0xff;
	command(0x60, &p, 1, NULL, 0);
	CHECK_EQ(cmd1(0x20), 0x7f);
	p = 0x5a;
	command(0x65, &p, 1, NULL, 0);
	CHECK_EQ(cmd1(0x25), 0x5a);
	/* The SYS bit of the status follows the config byte. */
	p = 0x00;
	command(0x60, &p, 1, NULL, 0);
	CHECK_EQ(inb(STS) & STS_SYS, 0);
	teardown();
}

static void test_keyboard_probe(void)
{
	uint8_t p;

	setup();
	/* atkbd_probe: GETID with translation: 0xab 0x41. */
	outb(DATA, 0xf2);
	CHECK_EQ(inb(DATA), 0xfa);
	CHECK_EQ(inb(DATA), 0xab);
	CHECK_EQ(inb(DATA), 0x41);
	/* Untranslated: 0xab 0x83. */
	p = 0x07;
	command(0x60, &p, 1, NULL, 0);
	outb(DATA, 0xf2);
	CHECK_EQ(inb(DATA), 0xfa);
	CHECK_EQ(inb(DATA), 0xab);
	CHECK_EQ(inb(DATA), 0x83);
	/* Reset: ACK then BAT passed. */
	outb(DATA, 0xff);
	CHECK_EQ(inb(DATA), 0xfa);
	CHECK_EQ(inb(DATA), 0xaa);
	/* LEDs with a parameter: two ACKs; 0xff as a parameter is not a
	 * reset. */
	outb(DATA, 0xed);
	CHECK_EQ(inb(DATA), 0xfa);
	outb(DATA, 0x07);
	CHECK_EQ(inb(DATA), 0xfa);
	CHECK_EQ(inb(STS) & STS_OBF, 0);
	outb(DATA, 0xf3);
	outb(DATA, 0xff);
	CHECK_EQ(inb(DATA), 0xfa);
	CHECK_EQ(inb(DATA), 0xfa);
	CHECK_EQ(inb(STS) & STS_OBF, 0);
	/* Get scancode set. */
	outb(DATA, 0xf0);
	outb(DATA, 0x00);
	CHECK_EQ(inb(DATA), 0xfa);
	CHECK_EQ(inb(DATA), 0xfa);
	CHECK_EQ(inb(DATA), 0x02);
	/* Echo. */
	outb(DATA, 0xee);
	CHECK_EQ(inb(DATA), 0xee);
	/* Enable/disable scanning: ACK. */
	outb(DATA, 0xf4);
	CHECK_EQ(inb(DATA), 0xfa);
	teardown();
}

static void test_irqs(void)
{
	uint8_t p;

	setup();
	/* Config 0x47: keyboard interrupt on; a reply raises IRQ 1. */
	outb(DATA, 0xff);
	CHECK_EQ(kbd_irq.level, 1);
	CHECK_EQ(kbd_irq.rises, 1);
	(void)inb(DATA);
	/* The next byte is a fresh edge. */
	CHECK_EQ(kbd_irq.level, 1);
	CHECK_EQ(kbd_irq.rises, 2);
	(void)inb(DATA);
	CHECK_EQ(kbd_irq.level, 0);
	CHECK_EQ(aux_irq.rises, 0);

	/* Linux's AUX loop test (0xd3): the byte comes back as aux data,
	 * raising IRQ 12. */
	p = 0x5a;
	outb(CMD, 0xd3);
	outb(DATA, p);
	CHECK_EQ(inb(STS) & (STS_OBF | STS_AUXOBF), STS_OBF | STS_AUXOBF);
	CHECK_EQ(aux_irq.level, 1);
	CHECK_EQ(kbd_irq.level, 0);
	CHECK_EQ(inb(DATA), 0x5a);
	CHECK_EQ(aux_irq.level, 0);

	/* A mouse: GETID answers ACK and ID 0 as aux data. */
	outb(CMD, 0xd4);
	outb(DATA, 0xf2);
	CHECK_EQ(inb(STS) & (STS_AUXOBF | STS_TIMEOUT), STS_AUXOBF);
	CHECK_EQ(aux_irq.level, 1);
	CHECK_EQ(inb(DATA), 0xfa);
	CHECK_EQ(aux_irq.level, 1);
	CHECK_EQ(inb(DATA), 0x00);
	CHECK_EQ(aux_irq.level, 0);
	CHECK_EQ(inb(STS) & STS_OBF, 0);

	/* Interrupts off in the config byte: no IRQ, OBF still set;
	 * turning them on with a byte pending raises the line. */
	p = 0x44;
	command(0x60, &p, 1, NULL, 0);
	outb(CMD, 0xd2);
	outb(DATA, 0x1c);
	CHECK_EQ(kbd_irq.level, 0);
	CHECK(inb(STS) & STS_OBF);
	p = 0x45;
	command(0x60, &p, 1, NULL, 0);
	CHECK_EQ(kbd_irq.level, 1);
	CHECK_EQ(inb(DATA), 0x1c);
	CHECK_EQ(kbd_irq.level, 0);
	teardown();
}

static void test_reset_pulse(void)
{
	setup();
	outb(CMD, 0xff);			/* pulse nothing */
	CHECK_EQ(resets, 0);
	outb(CMD, 0xfe);			/* pulse bit 0: reset */
	CHECK_EQ(resets, 1);
	outb(CMD, 0xf0);
	CHECK_EQ(resets, 2);
	outb(CMD, 0xfd);			/* bit 1 only */
	CHECK_EQ(resets, 2);
	teardown();
}

static void test_output_port_a20(void)
{
	uint8_t p, out;

	setup();
	out = cmd1(0xd0);
	CHECK_EQ(out & 0x03, 0x03);		/* not in reset, A20 on */
	/* The classic A20 sequence: 0xd1 then 0xdf. */
	p = 0xdd;
	command(0xd1, &p, 1, NULL, 0);
	CHECK_EQ(a20_calls, 1);
	CHECK(!a20);
	CHECK_EQ(cmd1(0xd0) & 0x03, 0x01);
	p = 0xdf;
	command(0xd1, &p, 1, NULL, 0);
	CHECK(a20);
	CHECK_EQ(cmd1(0xd0) & 0x03, 0x03);
	CHECK_EQ(resets, 0);
	/* 0xdd/0xdf commands. */
	outb(CMD, 0xdd);
	CHECK(!a20);
	outb(CMD, 0xdf);
	CHECK(a20);
	CHECK_EQ(a20_calls, 4);
	/* Output port bit 0 low: reset. */
	p = 0xde;
	command(0xd1, &p, 1, NULL, 0);
	CHECK_EQ(resets, 1);
	teardown();
}

static void test_reset_state(void)
{
	uint8_t p = 0x00;

	setup();
	command(0x60, &p, 1, NULL, 0);
	outb(CMD, 0xd2);
	outb(DATA, 0x99);
	i8042_reset(kbc);
	CHECK_EQ(inb(STS) & STS_OBF, 0);
	CHECK_EQ(cmd1(0x20), 0x47);
	teardown();
}

/* ---- keyboard and mouse ------------------------------------------------ */

static void set_config(uint8_t ctr)
{
	CHECK_EQ(command(0x60, &ctr, 1, NULL, 0), 0);
}

static void aux_write(uint8_t b)
{
	outb(CMD, 0xd4);
	outb(DATA, b);
}

/* Reads exactly @n bytes, each of which must be keyboard (@aux false) or
 * aux data, then CHECKs the output buffer is empty. */
static void expect_bytes(bool aux, const uint8_t *want, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint8_t st = inb(STS), v;

		CHECK(st & STS_OBF);
		CHECK_EQ(!!(st & STS_AUXOBF), aux);
		v = inb(DATA);
		CHECK_EQ(v, want[i]);
		if (v != want[i])
			fprintf(stderr, "  byte %u of %u\n", i, n);
	}
	CHECK_EQ(inb(STS) & STS_OBF, 0);
}

#define EXPECT_KBD(...)                                                      \
	do {                                                                 \
		static const uint8_t w__[] = { __VA_ARGS__ };                \
		expect_bytes(false, w__, sizeof(w__));                       \
	} while (0)
#define EXPECT_AUX(...)                                                      \
	do {                                                                 \
		static const uint8_t w__[] = { __VA_ARGS__ };                \
		expect_bytes(true, w__, sizeof(w__));                        \
	} while (0)
#define EXPECT_NOTHING() CHECK_EQ(inb(STS) & STS_OBF, 0)

static void key(unsigned code, bool down)
{
	i8042_key_event(kbc, code, down);
}

static void test_keys_set2(void)
{
	setup();
	set_config(0x07);		/* no translation */
	key(KEY_A, true);
	CHECK_EQ(kbd_irq.level, 1);
	EXPECT_KBD(0x1c);
	CHECK_EQ(kbd_irq.level, 0);
	key(KEY_A, false);
	EXPECT_KBD(0xf0, 0x1c);
	key(KEY_RIGHTALT, true);
	key(KEY_RIGHTALT, false);
	EXPECT_KBD(0xe0, 0x11, 0xe0, 0xf0, 0x11);
	key(KEY_PAUSE, true);
	key(KEY_PAUSE, false);
	EXPECT_KBD(0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0, 0x77);
	key(KEY_KPENTER, true);
	EXPECT_KBD(0xe0, 0x5a);
	/* A key with no scancode sends nothing. */
	key(KEY_MAX, true);
	EXPECT_NOTHING();
	CHECK_EQ(aux_irq.rises, 0);
	teardown();
}

static void test_keys_translated(void)
{
	setup();			/* config 0x47: translating */
	key(KEY_A, true);
	key(KEY_A, false);
	EXPECT_KBD(0x1e, 0x9e);
	key(KEY_F7, true);		/* set 2 0x83 */
	key(KEY_F7, false);
	EXPECT_KBD(0x41, 0xc1);
	key(KEY_PAUSE, true);
	EXPECT_KBD(0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5);
	key(KEY_SYSRQ, true);
	key(KEY_SYSRQ, false);
	EXPECT_KBD(0xe0, 0x2a, 0xe0, 0x37, 0xe0, 0xb7, 0xe0, 0xaa);
	key(KEY_RIGHTALT, false);
	EXPECT_KBD(0xe0, 0xb8);
	/* Replies go through the translation too: get set -> 0x41. */
	outb(DATA, 0xf0);
	outb(DATA, 0x00);
	EXPECT_KBD(0xfa, 0xfa, 0x41);
	teardown();
}

static void test_scancode_sets(void)
{
	setup();
	set_config(0x07);
	outb(DATA, 0xf0);
	outb(DATA, 0x01);
	EXPECT_KBD(0xfa, 0xfa);
	outb(DATA, 0xf0);
	outb(DATA, 0x00);
	EXPECT_KBD(0xfa, 0xfa, 0x01);
	key(KEY_A, true);
	key(KEY_A, false);
	key(KEY_RIGHTCTRL, false);
	EXPECT_KBD(0x1e, 0x9e, 0xe0, 0x9d);
	/* Set 3: by default only modifiers send break codes. */
	outb(DATA, 0xf0);
	outb(DATA, 0x03);
	EXPECT_KBD(0xfa, 0xfa);
	key(KEY_A, true);
	key(KEY_A, false);
	key(KEY_LEFTSHIFT, true);
	key(KEY_LEFTSHIFT, false);
	key(KEY_KPENTER, true);
	EXPECT_KBD(0x1c, 0x12, 0xf0, 0x12, 0x79);
	/* 0xfa: all keys make/break/typematic (what Linux asks for). */
	outb(DATA, 0xfa);
	EXPECT_KBD(0xfa);
	key(KEY_A, false);
	EXPECT_KBD(0xf0, 0x1c);
	/* 0xf9 all make-only, then a 0xfc list makes 'A' make/break; the
	 * list ends at the next command (0xf4), which runs. */
	outb(DATA, 0xf9);
	outb(DATA, 0xfc);
	outb(DATA, 0x1c);
	outb(DATA, 0xf4);
	EXPECT_KBD(0xfa, 0xfa, 0xfa, 0xfa);
	key(KEY_A, false);
	key(KEY_B, false);
	EXPECT_KBD(0xf0, 0x1c);
	/* Bad set: resend; the set is unchanged. */
	outb(DATA, 0xf0);
	outb(DATA, 0x07);
	EXPECT_KBD(0xfa, 0xfe);
	outb(DATA, 0xf0);
	outb(DATA, 0x00);
	EXPECT_KBD(0xfa, 0xfa, 0x03);
	/* Reset: back to set 2. */
	outb(DATA, 0xff);
	EXPECT_KBD(0xfa, 0xaa);
	key(KEY_A, false);
	EXPECT_KBD(0xf0, 0x1c);
	teardown();
}

static void test_kbd_commands(void)
{
	setup();
	set_config(0x07);
	/* LEDs: bit 0 scroll, bit 1 num, bit 2 caps. */
	CHECK_EQ(i8042_leds(kbc), 0);
	outb(DATA, 0xed);
	outb(DATA, 0x07);
	EXPECT_KBD(0xfa, 0xfa);
	CHECK_EQ(i8042_leds(kbc),
		 CONSOLE_LED_SCROLL | CONSOLE_LED_NUM | CONSOLE_LED_CAPS);
	outb(DATA, 0xed);
	outb(DATA, 0x04);
	EXPECT_KBD(0xfa, 0xfa);
	CHECK_EQ(i8042_leds(kbc), CONSOLE_LED_CAPS);
	CHECK_EQ(i8042_input_ops.leds(kbc), CONSOLE_LED_CAPS);
	outb(DATA, 0xed);
	outb(DATA, 0x02);
	EXPECT_KBD(0xfa, 0xfa);
	CHECK_EQ(i8042_leds(kbc), CONSOLE_LED_NUM);
	/* Resend repeats the last byte sent. */
	outb(DATA, 0xf2);
	EXPECT_KBD(0xfa, 0xab, 0x83);
	outb(DATA, 0xfe);
	EXPECT_KBD(0x83);
	/* Unknown commands: resend. */
	outb(DATA, 0x12);
	EXPECT_KBD(0xfe);
	/* Scanning disabled (0xf5): keys dropped; 0xf4 enables. */
	outb(DATA, 0xf5);
	EXPECT_KBD(0xfa);
	key(KEY_A, true);
	EXPECT_NOTHING();
	outb(DATA, 0xf4);
	EXPECT_KBD(0xfa);
	key(KEY_A, true);
	EXPECT_KBD(0x1c);
	/* The console input ops reach the same keyboard. */
	i8042_input_ops.key(kbc, KEY_B, true);
	EXPECT_KBD(0x32);
	/* Reset turns the LEDs off. */
	outb(DATA, 0xff);
	EXPECT_KBD(0xfa, 0xaa);
	CHECK_EQ(i8042_leds(kbc), 0);
	teardown();
}

static void test_kbd_port_disabled_holds(void)
{
	setup();
	set_config(0x07);
	outb(CMD, 0xad);
	key(KEY_A, true);
	key(KEY_A, false);
	EXPECT_NOTHING();
	CHECK_EQ(kbd_irq.level, 0);
	outb(CMD, 0xae);
	CHECK_EQ(kbd_irq.level, 1);
	EXPECT_KBD(0x1c, 0xf0, 0x1c);
	/* Overflow while held: the buffer ends in one overrun code. */
	outb(CMD, 0xad);
	for (unsigned i = 0; i < 100; i++)
		key(KEY_A, true);
	outb(CMD, 0xae);
	for (unsigned i = 0; i < 63; i++) {
		CHECK(inb(STS) & STS_OBF);
		CHECK_EQ(inb(DATA), 0x1c);
	}
	CHECK_EQ(inb(DATA), 0x00);		/* set 2 overrun */
	EXPECT_NOTHING();
	key(KEY_A, false);
	EXPECT_KBD(0xf0, 0x1c);
	/* Translated, the overrun code reads 0xff (set 1's). */
	set_config(0x47);
	outb(CMD, 0xad);
	for (unsigned i = 0; i < 100; i++)
		key(KEY_A, true);
	outb(CMD, 0xae);
	for (unsigned i = 0; i < 63; i++)
		CHECK_EQ(inb(DATA), 0x1e);
	CHECK_EQ(inb(DATA), 0xff);
	EXPECT_NOTHING();
	/* A command to the keyboard enables its port and is answered. */
	outb(CMD, 0xad);
	outb(DATA, 0xee);
	EXPECT_KBD(0xee);
	CHECK_EQ(cmd1(0x20) & 0x10, 0);
	teardown();
}

static void test_typematic(void)
{
	unsigned n;

	fake_clock_init(&fclock);
	timers = vtimer_queue_new_manual(&fclock.clk);
	CHECK(timers != NULL);
	setup_with(timers);
	set_config(0x07);
	/* Defaults: 500 ms delay, 10.9/s (91.67 ms). */
	key(KEY_A, true);
	EXPECT_KBD(0x1c);
	CHECK_EQ(vtimer_queue_run_due(timers, 499999999), 0);
	EXPECT_NOTHING();
	CHECK_EQ(vtimer_queue_run_due(timers, 500000000), 1);
	EXPECT_KBD(0x1c);
	CHECK_EQ(vtimer_queue_run_due(timers, 591000000), 0);
	CHECK_EQ(vtimer_queue_run_due(timers, 592000000), 1);
	EXPECT_KBD(0x1c);
	/* Another key takes over the repeat; releasing the first does not
	 * stop it, releasing the repeating one does. */
	fclock.mono_ns = 600000000;
	key(KEY_RIGHTCTRL, true);
	key(KEY_A, false);
	EXPECT_KBD(0xe0, 0x14, 0xf0, 0x1c);
	CHECK_EQ(vtimer_queue_run_due(timers, 1100000000), 1);
	EXPECT_KBD(0xe0, 0x14);
	key(KEY_RIGHTCTRL, false);
	EXPECT_KBD(0xe0, 0xf0, 0x14);
	CHECK_EQ(vtimer_queue_run_due(timers, 9000000000ull), 0);
	EXPECT_NOTHING();
	/* 0xf3 0x00: 250 ms, 30/s (33.3 ms). */
	outb(DATA, 0xf3);
	outb(DATA, 0x00);
	EXPECT_KBD(0xfa, 0xfa);
	fclock.mono_ns = 10000000000ull;
	key(KEY_B, true);
	EXPECT_KBD(0x32);
	CHECK_EQ(vtimer_queue_run_due(timers, 10249000000ull), 0);
	CHECK_EQ(vtimer_queue_run_due(timers, 10250000000ull), 1);
	CHECK_EQ(vtimer_queue_run_due(timers, 10283000000ull), 0);
	CHECK_EQ(vtimer_queue_run_due(timers, 10284000000ull), 1);
	EXPECT_KBD(0x32, 0x32);
	/* 0xf3 0x7f: 1 s, 2/s. */
	outb(DATA, 0xf3);
	outb(DATA, 0x7f);
	EXPECT_KBD(0xfa, 0xfa);
	key(KEY_B, false);
	EXPECT_KBD(0xf0, 0x32);
	fclock.mono_ns = 20000000000ull;
	key(KEY_B, true);
	CHECK_EQ(vtimer_queue_run_due(timers, 20999000000ull), 0);
	CHECK_EQ(vtimer_queue_run_due(timers, 21000000000ull), 1);
	CHECK_EQ(vtimer_queue_run_due(timers, 21499000000ull), 0);
	CHECK_EQ(vtimer_queue_run_due(timers, 21500000000ull), 1);
	EXPECT_KBD(0x32, 0x32, 0x32);
	/* Pause does not repeat, and stops the held key repeating. */
	key(KEY_PAUSE, true);
	(void)vtimer_queue_run_due(timers, 30000000000ull);
	n = 0;
	while ((inb(STS) & STS_OBF) && n < 100) {
		(void)inb(DATA);
		n++;
	}
	CHECK_EQ(n, 8);
	/* A reset stops repeating. */
	key(KEY_C, true);
	EXPECT_KBD(0x21);
	outb(DATA, 0xff);
	EXPECT_KBD(0xfa, 0xaa);
	CHECK_EQ(vtimer_queue_run_due(timers, 99000000000ull), 0);
	EXPECT_NOTHING();
	/* Not read: repeats stop at half the buffer, no overrun. */
	fclock.mono_ns = 100000000000ull;
	key(KEY_A, true);
	for (unsigned i = 1; i <= 200; i++)
		vtimer_queue_run_due(timers, 100000000000ull +
				     (uint64_t)i * 100000000);
	n = 0;
	while ((inb(STS) & STS_OBF) && n < 1000) {
		CHECK_EQ(inb(DATA), 0x1c);
		n++;
	}
	CHECK(n >= 16 && n <= 64);
	teardown();
}

static void test_mouse_reset_and_id(void)
{
	setup();
	aux_write(0xff);
	CHECK_EQ(aux_irq.level, 1);
	CHECK_EQ(kbd_irq.level, 0);
	EXPECT_AUX(0xfa, 0xaa, 0x00);
	CHECK_EQ(aux_irq.rises, 3);
	aux_write(0xf2);
	EXPECT_AUX(0xfa, 0x00);
	/* IntelliMouse knock: rates 200, 100, 80 -> ID 3. */
	aux_write(0xf3);
	aux_write(200);
	aux_write(0xf3);
	aux_write(100);
	aux_write(0xf3);
	aux_write(80);
	EXPECT_AUX(0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa);
	aux_write(0xf2);
	EXPECT_AUX(0xfa, 0x03);
	/* Status: stream, disabled, 1:1, resolution 2, rate 80. */
	aux_write(0xe9);
	EXPECT_AUX(0xfa, 0x00, 0x02, 80);
	aux_write(0xe7);
	aux_write(0xe8);
	aux_write(0x03);
	aux_write(0xf4);
	EXPECT_AUX(0xfa, 0xfa, 0xfa, 0xfa);
	i8042_mouse_event(kbc, 0, 0, 0, CONSOLE_BTN_LEFT);
	EXPECT_AUX(0x09, 0x00, 0x00, 0x00);
	aux_write(0xe9);
	EXPECT_AUX(0xfa, 0x34, 0x03, 80);
	/* Bad parameters and unknown commands: resend (0xfe). */
	aux_write(0xf3);
	aux_write(77);
	aux_write(0xe8);
	aux_write(9);
	aux_write(0x12);
	EXPECT_AUX(0xfa, 0xfe, 0xfa, 0xfe, 0xfe);
	/* 0xf6 defaults keep the ID; reset clears it. */
	aux_write(0xf6);
	aux_write(0xe9);
	EXPECT_AUX(0xfa, 0xfa, 0x04, 0x02, 100);
	aux_write(0xf2);
	EXPECT_AUX(0xfa, 0x03);
	aux_write(0xff);
	aux_write(0xf2);
	EXPECT_AUX(0xfa, 0xaa, 0x00, 0xfa, 0x00);
	teardown();
}

static void test_mouse_stream(void)
{
	setup();
	/* Reporting off: nothing. */
	i8042_mouse_event(kbc, 5, 5, 0, 0);
	EXPECT_NOTHING();
	aux_write(0xf4);
	EXPECT_AUX(0xfa);
	/* +x right, host +y down = PS/2 -y. */
	i8042_mouse_event(kbc, 10, -5, 0, CONSOLE_BTN_LEFT);
	EXPECT_AUX(0x09, 0x0a, 0x05);
	i8042_mouse_event(kbc, -3, 4, 0,
			  CONSOLE_BTN_RIGHT | CONSOLE_BTN_MIDDLE);
	EXPECT_AUX(0x3e, 0xfd, 0xfc);
	/* Button release alone is a packet. */
	i8042_mouse_event(kbc, 0, 0, 0, 0);
	EXPECT_AUX(0x08, 0x00, 0x00);
	/* Without the wheel ID, dz is ignored. */
	i8042_mouse_event(kbc, 0, 0, 3, 0);
	EXPECT_NOTHING();
	/* Large motion is split, never overflowing. */
	i8042_mouse_event(kbc, 600, 0, 0, 0);
	EXPECT_AUX(0x08, 0xff, 0x00, 0x08, 0xff, 0x00, 0x08, 0x5a, 0x00);
	i8042_mouse_event(kbc, -300, 0, 0, 0);
	EXPECT_AUX(0x18, 0x00, 0x00, 0x18, 0xd4, 0x00);
	/* 2:1 scaling: 3 -> 3, 4 -> 6, 100 -> 200. */
	aux_write(0xe7);
	EXPECT_AUX(0xfa);
	i8042_mouse_event(kbc, 4, -100, 0, 0);
	EXPECT_AUX(0x08, 0x06, 0xc8);
	aux_write(0xe6);
	EXPECT_AUX(0xfa);
	/* A flood coalesces: at most four packets queued, no motion lost. */
	for (unsigned i = 0; i < 10000; i++)
		i8042_mouse_event(kbc, 1, 0, 0, 0);
	{
		unsigned n = 0, sum = 0;

		while ((inb(STS) & STS_OBF) && n < 10000) {
			uint8_t b0 = inb(DATA), x = inb(DATA);

			CHECK_EQ(b0, 0x08);
			sum += x;
			(void)inb(DATA);
			n++;
		}
		CHECK_EQ(sum, 10000);
		CHECK(n < 50);
	}
	/* The wheel (ID 3): 4-byte packets, +dz = down = positive z. */
	aux_write(0xf3);
	aux_write(200);
	aux_write(0xf3);
	aux_write(100);
	aux_write(0xf3);
	aux_write(80);
	EXPECT_AUX(0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa);
	i8042_mouse_event(kbc, 1, 1, 1, 0);
	EXPECT_AUX(0x28, 0x01, 0xff, 0x01);
	i8042_mouse_event(kbc, 0, 0, -2, 0);
	EXPECT_AUX(0x08, 0x00, 0x00, 0xfe);
	i8042_mouse_event(kbc, 0, 0, 10, 0);
	EXPECT_AUX(0x08, 0x00, 0x00, 0x07, 0x08, 0x00, 0x00, 0x03);
	/* Through the console ops. */
	i8042_input_ops.mouse(kbc, 2, 0, 0, 0);
	EXPECT_AUX(0x08, 0x02, 0x00, 0x00);
	/* Disabling drops pending motion. */
	aux_write(0xf5);
	EXPECT_AUX(0xfa);
	i8042_mouse_event(kbc, 7, 7, 0, 0);
	EXPECT_NOTHING();
	teardown();
}

static void test_mouse_remote_and_wrap(void)
{
	setup();
	aux_write(0xf0);
	EXPECT_AUX(0xfa);
	i8042_mouse_event(kbc, 300, -20, 0, CONSOLE_BTN_LEFT);
	EXPECT_NOTHING();
	/* Read Data: x saturates with its overflow bit; counters clear. */
	aux_write(0xeb);
	EXPECT_AUX(0xfa, 0x49, 0xff, 0x14);
	aux_write(0xeb);
	EXPECT_AUX(0xfa, 0x09, 0x00, 0x00);
	i8042_mouse_event(kbc, -1000, 1000, 0, 0);
	aux_write(0xeb);
	EXPECT_AUX(0xfa, 0xf8, 0x00, 0x00);
	aux_write(0xe9);
	EXPECT_AUX(0xfa, 0x40, 0x02, 100);
	/* Back to stream mode. */
	aux_write(0xea);
	aux_write(0xf4);
	EXPECT_AUX(0xfa, 0xfa);
	i8042_mouse_event(kbc, 1, 0, 0, 0);
	EXPECT_AUX(0x08, 0x01, 0x00);
	/* Wrap mode echoes everything but 0xec and 0xff. */
	aux_write(0xee);
	EXPECT_AUX(0xfa);
	i8042_mouse_event(kbc, 1, 0, 0, 0);
	EXPECT_NOTHING();
	aux_write(0x55);
	aux_write(0xf2);
	aux_write(0xfe);
	EXPECT_AUX(0x55, 0xf2, 0xfe);
	aux_write(0xec);
	EXPECT_AUX(0xfa);
	aux_write(0xf2);
	EXPECT_AUX(0xfa, 0x00);
	aux_write(0xee);
	aux_write(0xff);
	EXPECT_AUX(0xfa, 0xfa, 0xaa, 0x00);
	aux_write(0x55);
	EXPECT_AUX(0xfe);			/* out of wrap mode */
	teardown();
}

static void test_interleave(void)
{
	setup();
	aux_write(0xf4);
	EXPECT_AUX(0xfa);
	CHECK_EQ(aux_irq.rises, 1);
	key(KEY_RIGHTALT, true);
	i8042_mouse_event(kbc, 1, -2, 0, 0);
	/* The devices take turns: e0 (kbd), packet byte (aux), 38 (kbd),
	 * then the rest of the packet. */
	CHECK_EQ(inb(STS) & (STS_OBF | STS_AUXOBF), STS_OBF);
	CHECK_EQ(kbd_irq.level, 1);
	CHECK_EQ(aux_irq.level, 0);
	CHECK_EQ(inb(DATA), 0xe0);
	CHECK_EQ(inb(STS) & (STS_OBF | STS_AUXOBF), STS_OBF | STS_AUXOBF);
	CHECK_EQ(kbd_irq.level, 0);
	CHECK_EQ(aux_irq.level, 1);
	CHECK_EQ(inb(DATA), 0x08);
	CHECK_EQ(inb(STS) & (STS_OBF | STS_AUXOBF), STS_OBF);
	CHECK_EQ(kbd_irq.level, 1);
	CHECK_EQ(aux_irq.level, 0);
	CHECK_EQ(inb(DATA), 0x38);
	CHECK_EQ(aux_irq.level, 1);
	EXPECT_AUX(0x01, 0x02);
	CHECK_EQ(aux_irq.level, 0);
	CHECK_EQ(kbd_irq.rises, 2);
	CHECK_EQ(aux_irq.rises, 4);
	/* Aux port disabled: packets held until enabled. */
	outb(CMD, 0xa7);
	i8042_mouse_event(kbc, 3, 0, 0, 0);
	key(KEY_A, true);
	EXPECT_KBD(0x1e);
	outb(CMD, 0xa8);
	EXPECT_AUX(0x08, 0x03, 0x00);
	/* A controller reply goes before device data still queued. */
	key(KEY_RIGHTALT, false);
	CHECK_EQ(cmd1(0x20), 0xe0);	/* the byte already in the buffer */
	CHECK_EQ(inb(DATA), 0x47);
	EXPECT_KBD(0xb8);
	/* A keyboard command answered ahead of pending scancodes. */
	outb(CMD, 0xad);
	key(KEY_B, true);
	outb(DATA, 0xee);
	EXPECT_KBD(0xee, 0x30);
	teardown();
}

/* SeaBIOS ps2port.c: ports disabled and interrupts off around each
 * device command, the target port enabled for it. */
static void test_seabios_mouse_probe(void)
{
	setup();
	outb(CMD, 0xad);
	outb(CMD, 0xa7);
	set_config(0x30);
	set_config(0x10);			/* aux enabled */
	aux_write(0xff);
	EXPECT_AUX(0xfa, 0xaa, 0x00);
	set_config(0x30);
	CHECK_EQ(kbd_irq.rises + aux_irq.rises, 0);
	/* Motion while the aux port is disabled stays held. */
	set_config(0x10);
	aux_write(0xf4);
	EXPECT_AUX(0xfa);
	set_config(0x32);
	i8042_mouse_event(kbc, 1, 0, 0, 0);
	EXPECT_NOTHING();
	set_config(0x12);
	CHECK_EQ(aux_irq.level, 1);
	EXPECT_AUX(0x08, 0x01, 0x00);
	teardown();
}

/* Any byte sequence to the ports, with host input mixed in, must not
 * crash, hang or grow anything; the device still works afterwards. */
static void test_hostile(void)
{
	uint32_t x = 0x12345678;
	unsigned n;

	fake_clock_init(&fclock);
	timers = vtimer_queue_new_manual(&fclock.clk);
	setup_with(timers);
	for (unsigned i = 0; i < 200000; i++) {
		uint8_t v;

		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		v = (uint8_t)(x >> 8);
		switch (x & 15) {
		case 0: case 1: case 2:
			outb(DATA, v);
			break;
		case 3:
			outb(CMD, v);	/* reset pulses only count */
			break;
		case 4: case 5: case 6:
			(void)inb(DATA);
			break;
		case 7:
			(void)inb(STS);
			break;
		case 8:
			key(v, (x >> 16) & 1);
			break;
		case 9:
			i8042_mouse_event(kbc, (int)(x >> 7) - (int)(x >> 6),
					  (int)x, (int)(x >> 3),
					  (x >> 20) & 7);
			break;
		case 10:
			fclock.mono_ns += 50000000;
			vtimer_queue_run_due(timers, fclock.mono_ns);
			break;
		default:
			aux_write(v);
			break;
		}
	}
	/* Drain: bounded. */
	n = 0;
	while ((inb(STS) & STS_OBF) && n < 10000) {
		(void)inb(DATA);
		n++;
	}
	CHECK(n < 10000);
	/* Still a working controller and keyboard. */
	i8042_reset(kbc);
	CHECK_EQ(cmd1(0x20), 0x47);
	outb(DATA, 0xff);
	EXPECT_KBD(0xfa, 0xaa);
	aux_write(0xff);
	EXPECT_AUX(0xfa, 0xaa, 0x00);
	teardown();
}

/* ---- saved state ------------------------------------------------------- */

static GVariant *save_state(void)
{
	GVariant *v = i8042_device_ops.save(kbc);

	CHECK(v != NULL);
	return v ? g_variant_ref_sink(v) : NULL;
}

/* A non-trivial state: set 3 without translation, LEDs, a typematic rate,
 * keys queued and one held (its repeat 300 ms away), an IntelliMouse in
 * stream mode with packets queued, a controller reply queued, and both a
 * keyboard command (0xf3) and a controller command (0xd4) awaiting data. */
static void busy_state(void)
{
	set_config(0x07);
	outb(DATA, 0xf0);
	outb(DATA, 0x03);
	outb(DATA, 0xed);
	outb(DATA, 0x05);
	outb(DATA, 0xf3);
	outb(DATA, 0x21);			/* 500 ms, 26.7/s */
	EXPECT_KBD(0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa);
	aux_write(0xf3);
	aux_write(200);
	aux_write(0xf3);
	aux_write(100);
	aux_write(0xf3);
	aux_write(80);
	aux_write(0xe8);
	aux_write(1);
	aux_write(0xe7);
	aux_write(0xf4);
	EXPECT_AUX(0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa,
		   0xfa);
	fclock.mono_ns += 1000000000;
	key(KEY_A, true);
	key(KEY_B, true);
	fclock.mono_ns += 200000000;
	i8042_mouse_event(kbc, 5, -3, 1, CONSOLE_BTN_LEFT);
	i8042_mouse_event(kbc, -2, 7, -1, 0);
	outb(CMD, 0x20);			/* reply queued behind 0x1c */
	outb(DATA, 0xf3);			/* keyboard: parameter next */
	outb(CMD, 0xd4);			/* controller: data to the mouse */
}

#define LOGB(x)                                                              \
	do {                                                                 \
		if (n < cap)                                                 \
			log[n++] = (uint8_t)(x);                             \
	} while (0)

static unsigned drain(uint8_t *log, unsigned n, unsigned cap)
{
	for (unsigned i = 0; i < 200 && (inb(STS) & STS_OBF); i++) {
		LOGB(inb(STS));
		LOGB(kbd_irq.level << 1 | aux_irq.level);
		LOGB(inb(DATA));
	}
	return n;
}

/* What the guest sees from here on: bytes, status, IRQ levels, timers. */
static unsigned exercise(uint8_t *log, unsigned cap)
{
	unsigned n = 0;

	LOGB(kbd_irq.level << 1 | aux_irq.level);
	LOGB(i8042_leds(kbc));
	outb(DATA, 0xf2);		/* to the mouse (0xd4): ID */
	outb(DATA, 0x00);		/* the keyboard's 0xf3 parameter */
	n = drain(log, n, cap);
	fclock.mono_ns += 299999999;
	LOGB(vtimer_queue_run_due(timers, fclock.mono_ns));
	fclock.mono_ns += 1;
	LOGB(vtimer_queue_run_due(timers, fclock.mono_ns));	/* B repeats */
	n = drain(log, n, cap);
	fclock.mono_ns += 33333333;
	LOGB(vtimer_queue_run_due(timers, fclock.mono_ns));	/* 30/s now */
	key(KEY_B, false);		/* make-only in set 3; repeat stops */
	fclock.mono_ns += 1000000000;
	LOGB(vtimer_queue_run_due(timers, fclock.mono_ns));
	i8042_mouse_event(kbc, 1, 1, -1, CONSOLE_BTN_RIGHT);
	n = drain(log, n, cap);
	outb(CMD, 0x20);
	outb(CMD, 0xd0);		/* output port: A20 */
	outb(DATA, 0xf0);
	outb(DATA, 0x00);
	aux_write(0xe9);
	aux_write(0xf2);
	n = drain(log, n, cap);
	key(KEY_LEFTSHIFT, true);
	key(KEY_LEFTSHIFT, false);
	n = drain(log, n, cap);
	return n;
}

static void test_state_roundtrip(void)
{
	uint8_t log_a[512], log_b[512];
	unsigned na, nb;
	char err[128] = "";
	GVariant *s1, *s2;

	CHECK_EQ(i8042_device_ops.state_version, 1);
	fake_clock_init(&fclock);
	timers = vtimer_queue_new_manual(&fclock.clk);
	setup_with(timers);
	busy_state();
	CHECK_EQ(kbd_irq.level, 1);
	s1 = save_state();
	CHECK(g_variant_is_of_type(s1, G_VARIANT_TYPE(I8042_STATE_TYPE)));
	na = exercise(log_a, sizeof(log_a));
	teardown();

	/* A fresh controller at another time: the repeat is relative. */
	fake_clock_init(&fclock);
	fclock.mono_ns = 50000000000ull;
	timers = vtimer_queue_new_manual(&fclock.clk);
	setup_with(timers);
	CHECK_EQ(i8042_device_ops.load(kbc, 1, s1, err, sizeof(err)), 0);
	CHECK_EQ(err[0], '\0');
	CHECK_EQ(kbd_irq.level, 1);		/* driven on load */
	CHECK_EQ(aux_irq.level, 0);
	s2 = save_state();
	CHECK(g_variant_equal(s1, s2));
	if (!g_variant_equal(s1, s2)) {
		gchar *a = g_variant_print(s1, FALSE), *b = g_variant_print(s2, FALSE);

		fprintf(stderr, "  saved  %s\n  loaded %s\n", a, b);
		g_free(a);
		g_free(b);
	}
	nb = exercise(log_b, sizeof(log_b));
	CHECK(na > 40);
	CHECK_EQ(na, nb);
	CHECK(na == nb && !memcmp(log_a, log_b, na));
	teardown();
	g_variant_unref(s1);
	g_variant_unref(s2);
}

/* @v with its child @i of child @c replaced by @nv (floating, consumed). */
static GVariant *with_field(GVariant *v, unsigned c, unsigned i, GVariant *nv)
{
	GVariant *outer[3], *inner[32];
	GVariant *sub = g_variant_get_child_value(v, c);
	gsize n = g_variant_n_children(sub);

	CHECK(n <= 32 && g_variant_n_children(v) == 3);
	for (gsize j = 0; j < n; j++)
		inner[j] = j == i ? g_variant_ref_sink(nv)
				  : g_variant_get_child_value(sub, j);
	for (gsize j = 0; j < 3; j++)
		outer[j] = j == c ? g_variant_ref_sink(g_variant_new_tuple(inner, n))
				  : g_variant_get_child_value(v, j);
	for (gsize j = 0; j < n; j++)
		g_variant_unref(inner[j]);
	g_variant_unref(sub);
	v = g_variant_ref_sink(g_variant_new_tuple(outer, 3));
	for (gsize j = 0; j < 3; j++)
		g_variant_unref(outer[j]);
	return v;
}

static GVariant *bytes(size_t n, uint8_t fill)
{
	uint8_t b[512];

	memset(b, fill, sizeof(b));
	return g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, b, n, 1);
}

static GVariant *ctrlq(unsigned n)
{
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE("a(yy)"));
	for (unsigned i = 0; i < n; i++)
		g_variant_builder_add(&b, "(yy)", 0x12, i == 3 ? 2 : 0);
	return g_variant_builder_end(&b);
}

/* Refused with -EINVAL and one line naming the device; nothing changed. */
static void refused(GVariant *before, uint32_t version, GVariant *bad,
		    const char *why)
{
	char err[160] = "";
	GVariant *after;
	int r = i8042_device_ops.load(kbc, version, bad, err, sizeof(err));

	CHECK_EQ(r, -EINVAL);
	CHECK(!strncmp(err, "i8042: ", 7) && !strchr(err, '\n'));
	after = save_state();
	CHECK(g_variant_equal(before, after));
	if (r != -EINVAL || strncmp(err, "i8042: ", 7))
		fprintf(stderr, "  %s: %d '%s'\n", why, r, err);
	g_variant_unref(after);
}

static void test_state_refused(void)
{
	char err[160] = "";
	GVariant *s, *bad;
	static const struct {
		unsigned c, i, len;
		const char *why;
	} bad_bytes[] = {
		{ 0, 0, 31, "RAM not 32 bytes" },
		{ 1, 0, 17, "keyboard replies past 16" },
		{ 1, 1, 65, "keyboard buffer past 64" },
		{ 1, 9, 255, "set-3 types not 256" },
		{ 2, 0, 17, "mouse replies past 16" },
		{ 2, 1, 17, "mouse buffer past 16" },
		{ 2, 10, 4, "knock not 3 rates" },
	};
	static const struct {
		unsigned c, i;
		uint8_t v;
		const char *why;
	} bad_y[] = {
		{ 0, 2, 0x10, "status bits" },
		{ 0, 3, 0x55, "controller command without data" },
		{ 0, 6, 2, "output source" },
		{ 0, 8, 7, "last source" },
		{ 1, 2, 0xf4, "keyboard command without parameter" },
		{ 1, 3, 0, "scancode set 0" },
		{ 1, 3, 4, "scancode set 4" },
		{ 1, 6, 8, "LEDs" },
		{ 1, 7, 0x80, "typematic" },
		{ 2, 2, 0xf2, "mouse command without parameter" },
		{ 2, 7, 7, "sample rate" },
		{ 2, 8, 4, "resolution" },
		{ 2, 9, 4, "mouse ID" },
	};

	fake_clock_init(&fclock);
	timers = vtimer_queue_new_manual(&fclock.clk);
	setup_with(timers);
	busy_state();
	s = save_state();

	/* Wrong type, unknown versions. */
	bad = g_variant_ref_sink(g_variant_new("(u)", 1));
	refused(s, 1, bad, "type");
	g_variant_unref(bad);
	CHECK_EQ(i8042_device_ops.load(kbc, 2, s, err, sizeof(err)), -EINVAL);
	CHECK(!strcmp(err, "i8042: state version 2 not supported"));
	refused(s, 0, s, "version 0");

	for (unsigned k = 0; k < G_N_ELEMENTS(bad_bytes); k++) {
		bad = with_field(s, bad_bytes[k].c, bad_bytes[k].i,
				 bytes(bad_bytes[k].len, 0));
		refused(s, 1, bad, bad_bytes[k].why);
		g_variant_unref(bad);
	}
	for (unsigned k = 0; k < G_N_ELEMENTS(bad_y); k++) {
		bad = with_field(s, bad_y[k].c, bad_y[k].i,
				 g_variant_new_byte(bad_y[k].v));
		refused(s, 1, bad, bad_y[k].why);
		g_variant_unref(bad);
	}
	/* Queues, levels, types, the held key and its timer, counters. */
	bad = with_field(s, 0, 9, ctrlq(17));
	refused(s, 1, bad, "17 controller bytes");
	g_variant_unref(bad);
	bad = with_field(s, 0, 9, ctrlq(5));
	refused(s, 1, bad, "queued source 2");
	g_variant_unref(bad);
	bad = with_field(s, 0, 0, bytes(32, 0x87));
	refused(s, 1, bad, "config bit 7");
	g_variant_unref(bad);
	bad = with_field(s, 0, 10, g_variant_new_boolean(FALSE));
	refused(s, 1, bad, "IRQ 1 low with a keyboard byte waiting");
	g_variant_unref(bad);
	bad = with_field(s, 1, 9, bytes(256, 4));
	refused(s, 1, bad, "set-3 key type 4");
	g_variant_unref(bad);
	bad = with_field(s, 1, 10, g_variant_new_uint32(KEY_MAX + 1));
	refused(s, 1, bad, "key past KEY_MAX");
	g_variant_unref(bad);
	bad = with_field(s, 1, 10, g_variant_new_uint32(KEY_PAUSE));
	refused(s, 1, bad, "Pause repeating");
	g_variant_unref(bad);
	bad = with_field(s, 1, 10, g_variant_new_uint32(0));
	refused(s, 1, bad, "timer armed, no key");
	g_variant_unref(bad);
	bad = with_field(s, 1, 12, g_variant_new_uint64(2000000000ull));
	refused(s, 1, bad, "repeat 2 s away");
	g_variant_unref(bad);
	bad = with_field(s, 2, 12, g_variant_new_int32(65536));
	refused(s, 1, bad, "dx past the counter");
	g_variant_unref(bad);
	bad = with_field(s, 2, 14, g_variant_new_int32(-65536));
	refused(s, 1, bad, "dz past the counter");
	g_variant_unref(bad);
	bad = with_field(s, 2, 15, g_variant_new_uint32(8));
	refused(s, 1, bad, "button 8");
	g_variant_unref(bad);
	/* Only the mouse is wrong: nothing of the rest was taken either. */
	bad = with_field(s, 2, 9, g_variant_new_byte(1));
	refused(s, 1, bad, "mouse ID 1");
	g_variant_unref(bad);
	teardown();

	/* A keyboard without timers cannot take an armed repeat. */
	setup();
	CHECK_EQ(i8042_device_ops.load(kbc, 1, s, err, sizeof(err)), -EINVAL);
	CHECK(!strncmp(err, "i8042: ", 7));
	teardown();
	g_variant_unref(s);
}

int main(void)
{
	RUN_TEST(test_status_and_flush);
	RUN_TEST(test_self_test);
	RUN_TEST(test_config_byte);
	RUN_TEST(test_keyboard_probe);
	RUN_TEST(test_irqs);
	RUN_TEST(test_reset_pulse);
	RUN_TEST(test_output_port_a20);
	RUN_TEST(test_reset_state);
	RUN_TEST(test_keys_set2);
	RUN_TEST(test_keys_translated);
	RUN_TEST(test_scancode_sets);
	RUN_TEST(test_kbd_commands);
	RUN_TEST(test_kbd_port_disabled_holds);
	RUN_TEST(test_typematic);
	RUN_TEST(test_mouse_reset_and_id);
	RUN_TEST(test_mouse_stream);
	RUN_TEST(test_mouse_remote_and_wrap);
	RUN_TEST(test_interleave);
	RUN_TEST(test_seabios_mouse_probe);
	RUN_TEST(test_hostile);
	RUN_TEST(test_state_roundtrip);
	RUN_TEST(test_state_refused);
	return check_finish();
}
