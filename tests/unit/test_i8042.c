/* SPDX-License-Identifier: MIT */
/* tests/unit/test_i8042.c - the 8042 through ports 0x60/0x64 as Linux's
 * i8042 driver (drivers/input/serio/i8042.c) and atkbd probe it. */
#include "testlib.h"

#include "devices/i8042.h"

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

static void setup(void)
{
	resets = a20_calls = 0;
	a20 = true;
	pio = bus_new("pio");
	kbc = i8042_new(&ops, NULL, irq_recorder_line(&kbd_irq, 1),
			irq_recorder_line(&aux_irq, 12), NULL);
	CHECK(kbc != NULL);
	CHECK_EQ(i8042_attach(kbc, pio), 0);
}

static void teardown(void)
{
	i8042_free(kbc);
	bus_free(pio);
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
	return check_finish();
}
