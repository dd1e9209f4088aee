/* SPDX-License-Identifier: MIT */
/* tests/unit/test_uart.c - the 16550A driven through port I/O as Linux's
 * 8250 driver (drivers/tty/serial/8250/8250_port.c) programs it. */
#include <errno.h>
#include <string.h>

#include <glib.h>

#include "testlib.h"

#include "host/chardev.h"
#include "devices/uart.h"

#define BASE 0x3f8
#define RBR 0
#define THR 0
#define DLL 0
#define DLM 1
#define IER 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

static struct bus *pio;
static struct chardev *chr;
static struct uart *uart;
static struct irq_recorder irq;

static void outb(unsigned reg, uint8_t v)
{
	io_write(pio, BASE + reg, v, 1);
}

static uint8_t inb(unsigned reg)
{
	return (uint8_t)io_read(pio, BASE + reg, 1);
}

static void setup(void)
{
	pio = bus_new("pio");
	chr = chardev_buffer_new();
	uart = uart_new(irq_recorder_line(&irq, 4), chr);
	CHECK(uart != NULL);
	CHECK_EQ(uart_attach(uart, pio, BASE), 0);
}

static void teardown(void)
{
	uart_free(uart);
	chardev_free(chr);
	bus_free(pio);
}

/* serial8250_do_startup + set_termios at 115200 8N1, interrupts on. */
static void linux_init(void)
{
	outb(FCR, 0x01);		/* clear FIFOs */
	outb(FCR, 0x07);
	outb(FCR, 0x00);
	(void)inb(LSR);
	(void)inb(RBR);
	(void)inb(IIR);
	(void)inb(MSR);
	outb(LCR, 0x80);		/* DLAB */
	outb(DLL, 1);
	outb(DLM, 0);
	outb(LCR, 0x03);		/* 8N1 */
	outb(FCR, 0x81);		/* FIFO on, RX trigger 8 */
	outb(MCR, 0x0b);		/* DTR, RTS, OUT2 */
	outb(IER, 0x05);		/* RLSI | RDI */
}

static void test_reset_state(void)
{
	setup();
	CHECK_EQ(inb(IER), 0);
	CHECK_EQ(inb(IIR), 0x01);
	CHECK_EQ(inb(LCR), 0);
	CHECK_EQ(inb(MCR), 0);
	CHECK_EQ(inb(LSR), 0x60);
	CHECK_EQ(inb(MSR) & 0xf0, 0xb0);	/* CTS, DSR, DCD */
	CHECK_EQ(irq.level, 0);
	teardown();
}

/* autoconfig(): scratch, IER and loopback tests. */
static void test_linux_autoconfig(void)
{
	uint8_t save;

	setup();
	outb(SCR, 0xa5);
	CHECK_EQ(inb(SCR), 0xa5);
	save = inb(IER);
	outb(IER, 0);
	CHECK_EQ(inb(IER) & 0x0f, 0);
	outb(IER, 0x0f);
	CHECK_EQ(inb(IER) & 0x0f, 0x0f);
	outb(IER, save);

	/* Loopback with RTS and OUT2: MSR high nibble 0x9 (CTS, DCD). */
	outb(MCR, 0x10 | 0x0a);
	CHECK_EQ(inb(MSR) & 0xf0, 0x90);
	outb(MCR, 0);

	/* FIFO detection: IIR bits 7:6 = 11 with FIFOs on; LCR 0xbf (EFR
	 * probe) must not reveal a 16650: offset 2 still reads IIR. */
	outb(FCR, 0x01);
	CHECK_EQ(inb(IIR) >> 6, 3);
	outb(LCR, 0xbf);
	CHECK(inb(IIR) != 0);
	outb(LCR, 0x80);
	CHECK_EQ(inb(IIR) >> 5, 6);	/* not a 16750 (no 64-byte bit) */
	outb(FCR, 0x21);
	CHECK_EQ(inb(IIR) >> 5, 6);
	outb(LCR, 0);
	teardown();
}

static void test_divisor_and_init(void)
{
	setup();
	linux_init();
	outb(LCR, 0x83);
	CHECK_EQ(inb(DLL), 1);
	CHECK_EQ(inb(DLM), 0);
	outb(LCR, 0x03);
	CHECK_EQ(inb(LCR), 0x03);
	CHECK_EQ(inb(IER), 0x05);	/* DLAB off: IER again */
	CHECK_EQ(inb(MCR), 0x0b);
	CHECK_EQ(inb(IIR), 0xc1);	/* FIFOs on, nothing pending */
	CHECK_EQ(irq.level, 0);
	teardown();
}

static void test_transmit(void)
{
	const char *msg = "Linux version 6.1\r\n";
	const char *got;
	size_t len;

	setup();
	linux_init();
	for (const char *p = msg; *p; p++) {
		CHECK(inb(LSR) & 0x20);		/* THRE */
		outb(THR, (uint8_t)*p);
	}
	CHECK_EQ(inb(LSR) & 0x60, 0x60);	/* THRE + TEMT */
	got = chardev_buffer_data(chr, &len);
	CHECK_EQ(len, strlen(msg));
	CHECK(got && !strcmp(got, msg));
	/* DLAB writes do not transmit. */
	outb(LCR, 0x83);
	outb(THR, 'X');
	outb(LCR, 0x03);
	chardev_buffer_data(chr, &len);
	CHECK_EQ(len, strlen(msg));
	teardown();
}

static void test_receive(void)
{
	const uint8_t in[] = "ab";

	setup();
	linux_init();
	CHECK_EQ(inb(LSR) & 0x01, 0);
	CHECK_EQ(uart_receive(uart, in, 2), 2);
	CHECK_EQ(inb(LSR) & 0x01, 1);		/* DR */
	CHECK_EQ(irq.level, 1);
	CHECK_EQ(irq.gsi, 4);
	/* Below the trigger level (8): character timeout. */
	CHECK_EQ(inb(IIR), 0xcc);
	CHECK_EQ(inb(RBR), 'a');
	CHECK_EQ(irq.level, 1);
	CHECK_EQ(inb(RBR), 'b');
	CHECK_EQ(inb(LSR) & 0x01, 0);
	CHECK_EQ(irq.level, 0);
	CHECK_EQ(inb(IIR), 0xc1);
	teardown();
}

static void test_fifo_trigger(void)
{
	uint8_t buf[20];

	setup();
	linux_init();
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)('A' + i);
	CHECK_EQ(uart_receive(uart, buf, 7), 7);
	CHECK_EQ(inb(IIR), 0xcc);		/* 7 < 8: timeout */
	CHECK_EQ(uart_receive(uart, buf + 7, 1), 1);
	CHECK_EQ(inb(IIR), 0xc4);		/* 8: data available */
	/* The FIFO holds 16. */
	CHECK_EQ(uart_receive(uart, buf + 8, 12), 8);
	for (unsigned i = 0; i < 16; i++)
		CHECK_EQ(inb(RBR), 'A' + i);
	CHECK_EQ(inb(LSR) & 0x03, 0);		/* empty, no overrun */
	CHECK_EQ(irq.level, 0);

	/* Trigger 14. */
	outb(FCR, 0xc1);
	CHECK_EQ(uart_receive(uart, buf, 13), 13);
	CHECK_EQ(inb(IIR), 0xcc);
	CHECK_EQ(uart_receive(uart, buf, 1), 1);
	CHECK_EQ(inb(IIR), 0xc4);
	/* RX FIFO reset. */
	outb(FCR, 0xc3);
	CHECK_EQ(inb(LSR) & 0x01, 0);
	CHECK_EQ(irq.level, 0);

	/* FIFOs off: one byte at a time, data available at once. */
	outb(FCR, 0x00);
	CHECK_EQ(inb(IIR), 0x01);
	CHECK_EQ(uart_receive(uart, buf, 3), 1);
	CHECK_EQ(inb(IIR), 0x04);
	CHECK_EQ(inb(RBR), 'A');
	teardown();
}

/* serial8250_do_startup's THRE test, and the transmit interrupt cycle. */
static void test_thre_interrupt(void)
{
	unsigned rises;

	setup();
	linux_init();
	outb(IER, 0x02);			/* THRI on, THR empty */
	CHECK_EQ(irq.level, 1);
	CHECK_EQ(inb(IIR), 0xc2);
	/* The IIR read that reported THRE cleared it. */
	CHECK_EQ(irq.level, 0);
	CHECK_EQ(inb(IIR), 0xc1);
	/* Disable and re-enable: THRE again. */
	outb(IER, 0);
	rises = irq.rises;
	outb(IER, 0x02);
	CHECK_EQ(irq.rises, rises + 1);
	CHECK_EQ(inb(IIR), 0xc2);
	CHECK_EQ(inb(IIR), 0xc1);
	/* A THR write: the byte leaves at once, THRE pending again. */
	rises = irq.rises;
	outb(THR, 'x');
	CHECK_EQ(irq.rises, rises + 1);
	CHECK_EQ(inb(IIR), 0xc2);
	/* Enabling with THRE already on does not re-arm it. */
	outb(IER, 0x03);
	CHECK_EQ(inb(IIR), 0xc1);
	/* __stop_tx: IER without THRI. */
	outb(THR, 'y');
	CHECK_EQ(irq.level, 1);
	outb(IER, 0x01);
	CHECK_EQ(irq.level, 0);
	CHECK_EQ(inb(IIR), 0xc1);
	teardown();
}

static void test_out2_gates_irq(void)
{
	const uint8_t b = 'z';

	setup();
	linux_init();
	outb(MCR, 0x03);			/* OUT2 off */
	uart_receive(uart, &b, 1);
	CHECK_EQ(irq.level, 0);
	CHECK_EQ(inb(IIR), 0xcc);		/* still pending inside */
	outb(MCR, 0x0b);
	CHECK_EQ(irq.level, 1);
	(void)inb(RBR);
	CHECK_EQ(irq.level, 0);
	teardown();
}

static void test_priorities(void)
{
	uint8_t buf[17];

	setup();
	linux_init();
	/* Loopback: overrun the FIFO to get a line status interrupt. */
	outb(MCR, 0x18);			/* LOOP | OUT2 */
	for (unsigned i = 0; i < sizeof(buf); i++)
		outb(THR, (uint8_t)i);
	(void)inb(MSR);				/* clear deltas of entering loop */
	outb(MCR, 0x19);			/* DTR: DSR delta */
	outb(IER, 0x0f);
	/* In loopback the OUT2 pin is inactive: no IRQ at the PIC. */
	CHECK_EQ(irq.level, 0);
	CHECK_EQ(inb(IIR), 0xc6);
	outb(MCR, 0x0b);			/* leave: CTS and DSR change */
	CHECK_EQ(irq.level, 1);
	CHECK_EQ(inb(IIR), 0xc6);		/* line status first */
	CHECK_EQ(inb(LSR) & 0x03, 0x03);	/* OE + DR; read clears OE */
	CHECK_EQ(inb(LSR) & 0x02, 0);
	CHECK_EQ(inb(IIR), 0xc4);		/* 16 >= 8: data */
	for (unsigned i = 0; i < 16; i++)
		CHECK_EQ(inb(RBR), i);
	CHECK_EQ(inb(IIR), 0xc2);		/* THRE (from the writes) */
	CHECK_EQ(inb(IIR), 0xc0);		/* modem status */
	CHECK_EQ(inb(MSR) & 0x0f, 0x03);	/* DCTS DDSR */
	CHECK_EQ(inb(IIR), 0xc1);
	CHECK_EQ(irq.level, 0);
	teardown();
}

static void test_loopback(void)
{
	const uint8_t b = 'h';
	size_t len;

	setup();
	linux_init();
	outb(MCR, 0x1b);			/* LOOP + DTR RTS OUT2 */
	CHECK_EQ(inb(MSR) & 0xf0, 0xb0);	/* DSR CTS DCD, no RI */
	outb(MCR, 0x14);			/* OUT1 only -> RI */
	CHECK_EQ(inb(MSR), 0x40 | 0x0b);	/* RI; DCTS DDSR DDCD */
	outb(MCR, 0x10);			/* RI trailing edge */
	CHECK_EQ(inb(MSR), 0x04);		/* TERI */
	outb(MCR, 0x18);
	(void)inb(MSR);

	outb(THR, 'L');
	chardev_buffer_data(chr, &len);
	CHECK_EQ(len, 0);			/* nothing left the UART */
	CHECK_EQ(inb(LSR) & 0x01, 1);
	CHECK_EQ(inb(IIR), 0xcc);
	CHECK_EQ(irq.level, 0);			/* OUT2 pin inactive */
	CHECK_EQ(inb(RBR), 'L');
	CHECK_EQ(inb(IIR), 0xc1);
	/* Host input waits while in loopback. */
	CHECK_EQ(uart_receive(uart, &b, 1), 0);
	outb(MCR, 0x0b);
	CHECK_EQ(uart_receive(uart, &b, 1), 1);
	CHECK_EQ(inb(RBR), 'h');
	outb(THR, 'o');
	CHECK_EQ(chardev_buffer_data(chr, &len)[0], 'o');
	teardown();
}

static void test_reset(void)
{
	const uint8_t b = 'q';

	setup();
	linux_init();
	uart_receive(uart, &b, 1);
	CHECK_EQ(irq.level, 1);
	uart_reset(uart);
	CHECK_EQ(irq.level, 0);
	CHECK_EQ(inb(LSR), 0x60);
	CHECK_EQ(inb(IIR), 0x01);
	teardown();
}

/* What the guest sees, in an order that drains the FIFO and the pending
 * interrupts; the same state gives the same trace. */
static void observe(struct bus *b, struct irq_recorder *line, uint8_t out[32])
{
	unsigned n = 0;

	out[n++] = (uint8_t)line->level;
	out[n++] = (uint8_t)io_read(b, BASE + IIR, 1);
	out[n++] = (uint8_t)io_read(b, BASE + LSR, 1);
	out[n++] = (uint8_t)io_read(b, BASE + MSR, 1);
	out[n++] = (uint8_t)io_read(b, BASE + IER, 1);
	out[n++] = (uint8_t)io_read(b, BASE + LCR, 1);
	out[n++] = (uint8_t)io_read(b, BASE + MCR, 1);
	out[n++] = (uint8_t)io_read(b, BASE + SCR, 1);
	while (n < 24 && (io_read(b, BASE + LSR, 1) & 0x01))
		out[n++] = (uint8_t)io_read(b, BASE + RBR, 1);
	out[n++] = (uint8_t)io_read(b, BASE + IIR, 1);	/* THRE now */
	out[n++] = (uint8_t)io_read(b, BASE + IIR, 1);	/* ...cleared */
	out[n++] = (uint8_t)line->level;
	io_write(b, BASE + LCR, 0x83, 1);
	out[n++] = (uint8_t)io_read(b, BASE + DLL, 1);
	out[n++] = (uint8_t)io_read(b, BASE + DLM, 1);
	while (n < 32)
		out[n++] = 0xee;
}

static void test_save_load(void)
{
	struct bus *pio2 = bus_new("pio2");
	struct irq_recorder irq2;
	struct uart *fresh = uart_new(irq_recorder_line(&irq2, 4), NULL);
	GVariant *a, *b;
	uint8_t ta[32], tb[32];
	char err[128] = "";

	setup();
	CHECK_EQ(uart_attach(fresh, pio2, BASE), 0);
	linux_init();				/* FIFO trigger 8, OUT2 */
	outb(IER, 0x07);			/* + THRE: pending at once */
	outb(SCR, 0x5a);
	CHECK_EQ(uart_receive(uart, (const uint8_t *)"hello", 5), 5);
	outb(LCR, 0x83);			/* divisor 0x0301 */
	outb(DLL, 0x01);
	outb(DLM, 0x03);
	outb(LCR, 0x03);
	CHECK_EQ(inb(IIR), 0xcc);		/* char timeout: below trigger */
	CHECK_EQ(irq.level, 1);

	a = g_variant_ref_sink(uart_device_ops.save(uart));
	CHECK(g_variant_is_of_type(a, G_VARIANT_TYPE(UART_STATE_TYPE)));
	CHECK_EQ(uart_device_ops.load(fresh, 1, a, err, sizeof(err)), 0);
	CHECK_EQ(irq2.level, 1);		/* IRQ output re-driven */
	CHECK_EQ(irq2.rises, 1);
	b = g_variant_ref_sink(uart_device_ops.save(fresh));
	CHECK(g_variant_equal(a, b));
	observe(pio, &irq, ta);
	observe(pio2, &irq2, tb);
	CHECK(memcmp(ta, tb, sizeof(ta)) == 0);
	CHECK_EQ(tb[8], 'h');
	CHECK_EQ(tb[12], 'o');
	/* Loaded again: the level is unchanged, no new edge; an idle
	 * UART's state drops the line. */
	CHECK_EQ(uart_device_ops.load(fresh, 1, a, err, sizeof(err)), 0);
	CHECK_EQ(irq2.level, 1);
	CHECK_EQ(uart_device_ops.load(fresh, 1, a, err, sizeof(err)), 0);
	CHECK_EQ(irq2.rises, 2);		/* observe() dropped it once */
	g_variant_unref(b);
	uart_reset(uart);
	b = g_variant_ref_sink(uart_device_ops.save(uart));
	CHECK_EQ(uart_device_ops.load(fresh, 1, b, err, sizeof(err)), 0);
	CHECK_EQ(irq2.level, 0);
	g_variant_unref(a);
	g_variant_unref(b);
	uart_free(fresh);
	bus_free(pio2);
	teardown();
}

static GVariant *state(uint8_t mcr, uint8_t fcr, uint8_t msr,
		       unsigned nrx, int irq_level)
{
	uint8_t rx[256];

	memset(rx, 'x', sizeof(rx));
	return g_variant_ref_sink(g_variant_new("(qyyyyyyyb@ayb)", 12, 0x01,
		0x03, mcr, 0, fcr, 0, msr, FALSE,
		g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, rx, nrx, 1),
		irq_level));
}

static void test_load_refuses(void)
{
	GVariant *before, *after, *good;
	char err[128];

	setup();
	linux_init();
	CHECK_EQ(uart_receive(uart, (const uint8_t *)"abc", 3), 3);
	before = g_variant_ref_sink(uart_device_ops.save(uart));
	/* A sane state, for comparison: MCR 0x0b, FIFO on, 3 bytes, RDI. */
	good = state(0x0b, 0x81, 0xb0, 3, 1);
	CHECK_EQ(uart_device_ops.load(uart, 2, good, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "uart: state version 2 not supported") != NULL);
#define REFUSED(v)                                                           \
	do {                                                                 \
		GVariant *s__ = (v);                                         \
		err[0] = 0;                                                  \
		CHECK_EQ(uart_device_ops.load(uart, 1, s__, err, sizeof(err)), -EINVAL); \
		CHECK(strncmp(err, "uart:", 5) == 0);                        \
		g_variant_unref(s__);                                        \
	} while (0)
	REFUSED(g_variant_ref_sink(g_variant_new("(y)", 1)));	/* wrong type */
	REFUSED(state(0x0b, 0x81, 0xb0, 200, 1));		/* FIFO level 200 */
	REFUSED(state(0x0b, 0x81, 0xb0, 17, 1));
	REFUSED(state(0x0b, 0x00, 0xb0, 2, 1));		/* FIFOs off: 1 */
	REFUSED(state(0x0b, 0x02, 0xb0, 0, 0));		/* FCR without enable */
	REFUSED(state(0x2b, 0x81, 0xb0, 3, 1));		/* MCR reserved bit */
	REFUSED(state(0x0b, 0x81, 0x30, 3, 1));		/* DCD not as wired */
	REFUSED(state(0x0b, 0x81, 0xb0, 3, 0));		/* IRQ level wrong */
#undef REFUSED
	after = g_variant_ref_sink(uart_device_ops.save(uart));
	CHECK(g_variant_equal(before, after));
	CHECK_EQ(irq.level, 1);
	CHECK_EQ(inb(RBR), 'a');
	CHECK_EQ(uart_device_ops.load(uart, 1, good, err, sizeof(err)), 0);
	CHECK_EQ(inb(RBR), 'x');
	g_variant_unref(good);
	g_variant_unref(before);
	g_variant_unref(after);
	teardown();
}

int main(void)
{
	RUN_TEST(test_reset_state);
	RUN_TEST(test_linux_autoconfig);
	RUN_TEST(test_divisor_and_init);
	RUN_TEST(test_transmit);
	RUN_TEST(test_receive);
	RUN_TEST(test_fifo_trigger);
	RUN_TEST(test_thre_interrupt);
	RUN_TEST(test_out2_gates_irq);
	RUN_TEST(test_priorities);
	RUN_TEST(test_loopback);
	RUN_TEST(test_reset);
	RUN_TEST(test_save_load);
	RUN_TEST(test_load_refuses);
	return check_finish();
}
