/* SPDX-License-Identifier: MIT */
/* tests/unit/test_pic.c - the 8259A pair driven through port I/O, as Linux
 * (arch/x86/kernel/i8259.c) and SeaBIOS (src/hw/pic.c) program it. */
#include "testlib.h"

#include <errno.h>
#include <glib.h>

#include "devices/pic.h"

static struct bus *pio;
static struct pic *pic;
static int intr_calls;
static bool intr_level;

static void on_intr(void *opaque, bool level)
{
	(void)opaque;
	intr_calls++;
	intr_level = level;
}

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
	pio = bus_new("pio");
	intr_calls = 0;
	intr_level = false;
	pic = pic_new(on_intr, NULL);
	CHECK(pic != NULL);
	CHECK_EQ(pic_attach(pic, pio), 0);
}

static void teardown(void)
{
	pic_free(pic);
	bus_free(pio);
}

/* Linux init_8259A(0): ICW1 0x11, ICW2 0x20/0x28, ICW3 4/2, ICW4 1
 * (normal EOI), then restore the masks. */
static void linux_init(uint8_t mask_master, uint8_t mask_slave)
{
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
	outb(0x20, 0x11);
	outb(0x21, 0x20);
	outb(0x21, 1u << 2);
	outb(0x21, 0x01);
	outb(0xa0, 0x11);
	outb(0xa1, 0x28);
	outb(0xa1, 2);
	outb(0xa1, 0x01);
	outb(0x21, mask_master);
	outb(0xa1, mask_slave);
}

/* SeaBIOS pic_setup(): vectors 0x08 and 0x70, everything masked but the
 * cascade. */
static void seabios_init(void)
{
	outb(0x20, 0x11);
	outb(0xa0, 0x11);
	outb(0x21, 0x08);
	outb(0xa1, 0x70);
	outb(0x21, 0x04);
	outb(0xa1, 0x02);
	outb(0x21, 0x01);
	outb(0xa1, 0x01);
	outb(0x21, 0xfb);
	outb(0xa1, 0xff);
}

static uint8_t read_isr(uint16_t cmd)
{
	uint8_t v;

	outb(cmd, 0x0b);	/* OCW3: read ISR */
	v = inb(cmd);
	outb(cmd, 0x0a);	/* back to IRR */
	return v;
}

static void test_init_sequences(void)
{
	setup();
	seabios_init();
	CHECK_EQ(inb(0x21), 0xfb);
	CHECK_EQ(inb(0xa1), 0xff);
	CHECK(!pic_intr(pic));

	/* IRQ0 masked: latched in IRR, no INTR. */
	pic_set_irq(pic, 0, 1);
	pic_set_irq(pic, 0, 0);
	CHECK_EQ(inb(0x20), 0x01);	/* IRR readable by default */
	CHECK(!pic_intr(pic));
	outb(0x21, 0xfa);		/* unmask IRQ0 */
	CHECK(pic_intr(pic));
	CHECK_EQ(intr_calls, 1);
	CHECK_EQ(pic_ack(pic), 0x08);
	CHECK(!pic_intr(pic));
	CHECK_EQ(read_isr(0x20), 0x01);
	outb(0x20, 0x20);		/* non-specific EOI */
	CHECK_EQ(read_isr(0x20), 0x00);

	/* Slave: RTC on IRQ 8 -> vector 0x70. */
	outb(0xa1, 0xfe);
	pic_set_irq(pic, 8, 1);
	CHECK(pic_intr(pic));
	CHECK_EQ(inb(0x20) & 0x04, 0x04);	/* cascade request on master */
	CHECK_EQ(pic_ack(pic), 0x70);
	CHECK_EQ(read_isr(0x20), 0x04);
	CHECK_EQ(read_isr(0xa0), 0x01);
	outb(0xa0, 0x20);
	outb(0x20, 0x20);
	CHECK_EQ(read_isr(0x20), 0);
	CHECK_EQ(read_isr(0xa0), 0);
	pic_set_irq(pic, 8, 0);

	/* Re-init the Linux way: the new vectors and masks take effect, and
	 * ICW1 forgets edge requests. */
	pic_set_irq(pic, 3, 1);
	linux_init(0xf0, 0xff);
	CHECK(!pic_intr(pic));
	CHECK_EQ(inb(0x21), 0xf0);
	pic_set_irq(pic, 3, 0);
	pic_set_irq(pic, 3, 1);
	CHECK(pic_intr(pic));
	CHECK_EQ(pic_ack(pic), 0x23);
	teardown();
}

static void test_intr_reported_on_change_only(void)
{
	setup();
	linux_init(0x00, 0x00);
	CHECK_EQ(intr_calls, 0);
	pic_set_irq(pic, 4, 1);
	CHECK_EQ(intr_calls, 1);
	CHECK(intr_level);
	pic_set_irq(pic, 3, 1);		/* INTR already high */
	pic_set_irq(pic, 5, 1);
	CHECK_EQ(intr_calls, 1);
	CHECK_EQ(pic_ack(pic), 0x23);	/* IRQ3 beats 4 and 5 */
	CHECK_EQ(intr_calls, 2);	/* 4 and 5 are below IRQ3 in service */
	CHECK(!intr_level);
	outb(0x20, 0x20);
	CHECK_EQ(intr_calls, 3);
	CHECK(intr_level);
	teardown();
}

static void test_priority_and_nesting(void)
{
	setup();
	linux_init(0x00, 0x00);
	pic_set_irq(pic, 6, 1);
	CHECK_EQ(pic_ack(pic), 0x26);
	/* A lower priority request waits; a higher one nests. */
	pic_set_irq(pic, 7, 1);
	CHECK(!pic_intr(pic));
	pic_set_irq(pic, 1, 1);
	CHECK(pic_intr(pic));
	CHECK_EQ(pic_ack(pic), 0x21);
	CHECK_EQ(read_isr(0x20), 0x42);
	outb(0x20, 0x20);		/* non-specific EOI ends IRQ1 first */
	CHECK_EQ(read_isr(0x20), 0x40);
	CHECK(!pic_intr(pic));		/* 7 still below 6 */
	outb(0x20, 0x20);
	CHECK(pic_intr(pic));
	CHECK_EQ(pic_ack(pic), 0x27);
	outb(0x20, 0x67);		/* specific EOI, level 7 */
	CHECK_EQ(read_isr(0x20), 0);

	/* Slave interrupts rank at the master's IR2: above 3, below 1. */
	pic_set_irq(pic, 3, 1);
	CHECK_EQ(pic_ack(pic), 0x23);
	pic_set_irq(pic, 12, 1);
	CHECK(pic_intr(pic));
	pic_set_irq(pic, 9, 1);
	CHECK_EQ(pic_ack(pic), 0x29);	/* 9 beats 12 on the slave */
	CHECK(!pic_intr(pic));		/* master IR2 in service */
	pic_set_irq(pic, 1, 0);		/* a new edge on IRQ1 */
	pic_set_irq(pic, 1, 1);
	CHECK_EQ(pic_ack(pic), 0x21);
	outb(0x20, 0x61);		/* specific EOI IRQ1 */
	outb(0xa0, 0x20);
	CHECK(!pic_intr(pic));		/* 12 waits for master EOI of IR2 */
	outb(0x20, 0x62);
	CHECK(pic_intr(pic));
	CHECK_EQ(pic_ack(pic), 0x2c);
	outb(0xa0, 0x20);
	outb(0x20, 0x62);
	outb(0x20, 0x63);
	CHECK_EQ(read_isr(0x20), 0);
	CHECK_EQ(read_isr(0xa0), 0);
	CHECK(!pic_intr(pic));
	teardown();
}

static void test_rotation(void)
{
	setup();
	linux_init(0x00, 0x00);
	/* Set priority: IR4 lowest, so IR5 is highest. */
	outb(0x20, 0xc4);
	pic_set_irq(pic, 0, 1);
	pic_set_irq(pic, 5, 1);
	CHECK_EQ(pic_ack(pic), 0x25);
	/* Rotate on non-specific EOI: IR5 becomes lowest, IR6 highest. */
	outb(0x20, 0xa0);
	pic_set_irq(pic, 6, 1);
	CHECK_EQ(pic_ack(pic), 0x26);
	/* Rotate on specific EOI of 6: IR7 highest, then 0. */
	outb(0x20, 0xe6);
	CHECK_EQ(pic_ack(pic), 0x20);
	outb(0x20, 0x20);
	/* Back to fixed priority. */
	outb(0x20, 0xc7);
	pic_set_irq(pic, 7, 1);
	pic_set_irq(pic, 3, 1);
	CHECK_EQ(pic_ack(pic), 0x23);
	teardown();
}

static void test_masking(void)
{
	setup();
	linux_init(0xff, 0xff);
	pic_set_irq(pic, 4, 1);
	pic_set_irq(pic, 10, 1);
	CHECK(!pic_intr(pic));
	CHECK_EQ(inb(0x20) & 0x10, 0x10);
	CHECK_EQ(inb(0xa0), 0x04);
	outb(0xa1, 0xfb);		/* slave unmasked, master IR2 masked */
	CHECK(!pic_intr(pic));
	outb(0x21, 0xfb);		/* only the cascade unmasked */
	CHECK(pic_intr(pic));
	outb(0xa1, 0xff);		/* masking on the slave withdraws it */
	CHECK(!pic_intr(pic));
	CHECK_EQ(inb(0x20) & 0x04, 0);
	outb(0x21, 0xeb);
	CHECK_EQ(pic_ack(pic), 0x24);
	outb(0xa1, 0x00);
	outb(0x20, 0x20);
	CHECK_EQ(pic_ack(pic), 0x2a);
	teardown();
}

static void test_auto_eoi(void)
{
	setup();
	outb(0x20, 0x11);
	outb(0x21, 0x20);
	outb(0x21, 0x04);
	outb(0x21, 0x03);		/* ICW4: x86, auto-EOI */
	outb(0x21, 0x00);
	pic_set_irq(pic, 5, 1);
	CHECK_EQ(pic_ack(pic), 0x25);
	CHECK_EQ(read_isr(0x20), 0);
	pic_set_irq(pic, 6, 1);		/* nothing in service: lower priority goes */
	CHECK(pic_intr(pic));
	CHECK_EQ(pic_ack(pic), 0x26);
	/* Rotate in auto-EOI mode: each IR becomes lowest after service. */
	outb(0x20, 0x80);
	pic_set_irq(pic, 1, 1);
	CHECK_EQ(pic_ack(pic), 0x21);	/* IR1 now lowest, IR2 highest */
	pic_set_irq(pic, 1, 0);
	pic_set_irq(pic, 1, 1);
	pic_set_irq(pic, 7, 1);
	CHECK_EQ(pic_ack(pic), 0x27);
	CHECK_EQ(pic_ack(pic), 0x21);
	/* After IR4, IR5 is the highest: it beats IR3. */
	pic_set_irq(pic, 4, 1);
	CHECK_EQ(pic_ack(pic), 0x24);
	pic_set_irq(pic, 3, 1);
	pic_set_irq(pic, 5, 0);
	pic_set_irq(pic, 5, 1);
	CHECK_EQ(pic_ack(pic), 0x25);
	CHECK_EQ(pic_ack(pic), 0x23);
	teardown();
}

static void test_level_vs_edge(void)
{
	setup();
	linux_init(0x00, 0x00);
	/* ELCR: IRQ 0-2 (master) and 8, 13 (slave) stay edge. */
	outb(0x4d0, 0xff);
	outb(0x4d1, 0xff);
	CHECK_EQ(inb(0x4d0), 0xf8);
	CHECK_EQ(inb(0x4d1), 0xde);
	CHECK_EQ(bus_read(pio, 0x4d0, 2, NULL), 0xdef8);
	outb(0x4d0, 0x20);		/* IRQ5 level */
	outb(0x4d1, 0x08);		/* IRQ11 level */

	/* Edge: one request per rising edge, however long the line is high. */
	pic_set_irq(pic, 3, 1);
	CHECK_EQ(pic_ack(pic), 0x23);
	outb(0x20, 0x20);
	CHECK(!pic_intr(pic));
	pic_set_irq(pic, 3, 1);
	CHECK(!pic_intr(pic));
	pic_set_irq(pic, 3, 0);
	pic_set_irq(pic, 3, 1);
	CHECK(pic_intr(pic));
	CHECK_EQ(pic_ack(pic), 0x23);
	outb(0x20, 0x20);

	/* Level: requests again after EOI while still asserted. */
	pic_set_irq(pic, 5, 1);
	CHECK_EQ(pic_ack(pic), 0x25);
	CHECK_EQ(inb(0x20) & 0x20, 0x20);	/* IRR follows the line */
	outb(0x20, 0x20);
	CHECK(pic_intr(pic));
	CHECK_EQ(pic_ack(pic), 0x25);
	pic_set_irq(pic, 5, 0);
	outb(0x20, 0x20);
	CHECK(!pic_intr(pic));

	/* Level on the slave: shared PCI INTx style. */
	pic_set_irq(pic, 11, 1);
	CHECK_EQ(pic_ack(pic), 0x2b);
	outb(0xa0, 0x20);
	outb(0x20, 0x20);
	CHECK(pic_intr(pic));
	CHECK_EQ(pic_ack(pic), 0x2b);
	pic_set_irq(pic, 11, 0);
	outb(0xa0, 0x20);
	outb(0x20, 0x20);
	CHECK(!pic_intr(pic));

	/* Switching a held-high line to level makes it request. */
	pic_set_irq(pic, 6, 1);
	CHECK_EQ(pic_ack(pic), 0x26);
	outb(0x20, 0x20);
	CHECK(!pic_intr(pic));
	outb(0x4d0, 0x60);
	CHECK(pic_intr(pic));
	teardown();
}

static void test_spurious(void)
{
	setup();
	linux_init(0x00, 0x00);
	outb(0x4d0, 0x08);		/* IRQ3 level */
	outb(0x4d1, 0x02);		/* IRQ9 level */

	/* A level request withdrawn before INTA: IRQ7, nothing in service. */
	pic_set_irq(pic, 3, 1);
	CHECK(pic_intr(pic));
	pic_set_irq(pic, 3, 0);
	CHECK(!pic_intr(pic));
	CHECK_EQ(pic_ack(pic), 0x27);
	CHECK_EQ(read_isr(0x20), 0);

	/* Same on the slave. */
	pic_set_irq(pic, 9, 1);
	pic_set_irq(pic, 9, 0);
	CHECK_EQ(pic_ack(pic), 0x27);
	CHECK_EQ(read_isr(0xa0), 0);

	/* A real IRQ7 is told apart by its ISR bit (Linux's check). */
	pic_set_irq(pic, 7, 1);
	CHECK_EQ(pic_ack(pic), 0x27);
	CHECK_EQ(read_isr(0x20), 0x80);
	outb(0x20, 0x20);
	teardown();
}

static void test_poll_and_special_mask(void)
{
	setup();
	linux_init(0x00, 0x00);
	/* Poll: the read is the acknowledge. */
	outb(0x20, 0x0c);
	CHECK_EQ(inb(0x20), 0x00);
	pic_set_irq(pic, 4, 1);
	outb(0x20, 0x0c);
	CHECK_EQ(inb(0x20), 0x84);
	CHECK_EQ(read_isr(0x20), 0x10);
	CHECK(!pic_intr(pic));
	outb(0x20, 0x20);

	/* Poll the slave: its acknowledge withdraws the cascade request. */
	pic_set_irq(pic, 13, 1);
	CHECK(pic_intr(pic));
	outb(0xa0, 0x0c);
	CHECK_EQ(inb(0xa0), 0x85);
	CHECK(!pic_intr(pic));
	outb(0xa0, 0x20);

	/* Special mask mode: mask the level in service, lower ones go. */
	pic_set_irq(pic, 1, 1);
	CHECK_EQ(pic_ack(pic), 0x21);
	pic_set_irq(pic, 6, 1);
	CHECK(!pic_intr(pic));
	outb(0x21, 0x02);
	outb(0x20, 0x68);		/* OCW3: set special mask */
	CHECK(pic_intr(pic));
	CHECK_EQ(pic_ack(pic), 0x26);
	CHECK_EQ(read_isr(0x20), 0x42);
	outb(0x20, 0x48);		/* reset special mask */
	outb(0x20, 0x66);
	outb(0x20, 0x61);
	outb(0x21, 0x00);
	CHECK_EQ(read_isr(0x20), 0);
	teardown();
}

static void test_special_fully_nested(void)
{
	setup();
	outb(0x20, 0x11);
	outb(0x21, 0x20);
	outb(0x21, 0x04);
	outb(0x21, 0x11);		/* ICW4: x86, SFNM */
	outb(0x21, 0x00);
	outb(0xa0, 0x11);
	outb(0xa1, 0x28);
	outb(0xa1, 0x02);
	outb(0xa1, 0x01);
	outb(0xa1, 0x00);
	pic_set_irq(pic, 12, 1);
	CHECK_EQ(pic_ack(pic), 0x2c);
	pic_set_irq(pic, 9, 1);		/* higher on the same slave nests */
	CHECK(pic_intr(pic));
	CHECK_EQ(pic_ack(pic), 0x29);
	pic_set_irq(pic, 14, 1);	/* lower one does not */
	CHECK(!pic_intr(pic));
	teardown();
}

static void test_reset_and_bad_input(void)
{
	setup();
	linux_init(0x00, 0x00);
	outb(0x4d0, 0x20);
	pic_set_irq(pic, 4, 1);
	CHECK_EQ(pic_ack(pic), 0x24);
	pic_set_irq(pic, 16, 1);	/* ignored */
	pic_set_irq(pic, 2, 1);		/* IR2 is the cascade */
	CHECK(!pic_intr(pic));
	pic_reset(pic);
	CHECK_EQ(read_isr(0x20), 0);
	CHECK_EQ(inb(0x4d0), 0);
	CHECK_EQ(inb(0x21), 0);
	/* An unknown ICW4 and 16-bit accesses must not upset anything. */
	outb(0x20, 0x11);
	outb(0x21, 0x20);
	outb(0x21, 0x04);
	outb(0x21, 0x00);		/* 8080 mode: logged */
	bus_write(pio, 0x20, 0xfd0b, 2, NULL);	/* OCW3 read ISR; IMR 0xfd */
	CHECK_EQ(bus_read(pio, 0x20, 2, NULL), 0xfd00);
	teardown();
}

/* What a guest and the vCPU can observe of a PIC, in a fixed order that
 * moves it on (an acknowledge, an EOI, ICW bytes): two PICs in the same
 * state give the same trace. */
static void observe(struct bus *b, struct pic *p, uint8_t out[16])
{
	unsigned n = 0;

	out[n++] = (uint8_t)io_read(b, 0x20, 1);
	out[n++] = (uint8_t)io_read(b, 0x21, 1);
	out[n++] = (uint8_t)io_read(b, 0xa0, 1);
	out[n++] = (uint8_t)io_read(b, 0xa1, 1);
	out[n++] = (uint8_t)io_read(b, 0x4d0, 1);
	out[n++] = (uint8_t)io_read(b, 0x4d1, 1);
	io_write(b, 0x20, 0x0b, 1);
	out[n++] = (uint8_t)io_read(b, 0x20, 1);	/* master ISR */
	out[n++] = pic_intr(p);
	io_write(b, 0x20, 0x20, 1);			/* EOI: IRQ4 done */
	out[n++] = pic_intr(p);
	out[n++] = pic_ack(p);				/* the pending one */
	out[n++] = (uint8_t)io_read(b, 0x20, 1);
	io_write(b, 0xa1, 0x02, 1);			/* slave ICW3 */
	io_write(b, 0xa1, 0x01, 1);			/* ICW4 */
	io_write(b, 0xa1, 0x7f, 1);			/* now OCW1 */
	out[n++] = (uint8_t)io_read(b, 0xa1, 1);
	pic_set_irq(p, 3, 0);
	pic_set_irq(p, 3, 1);
	out[n++] = (uint8_t)io_read(b, 0x20, 1);
	out[n++] = pic_ack(p);
	out[n++] = pic_intr(p);
	while (n < 16)
		out[n++] = 0;
}

static void test_save_load(void)
{
	struct bus *pio2 = bus_new("pio2");
	struct pic *fresh = pic_new(on_intr, NULL);
	GVariant *a, *b;
	uint8_t ta[16], tb[16];
	char err[128] = "";

	setup();
	CHECK_EQ(pic_attach(fresh, pio2), 0);
	linux_init(0x08, 0xfb);		/* IRQ3 masked; slave: all but 10 */
	outb(0x4d0, 0x20);		/* IRQ5 level-triggered */
	pic_set_irq(pic, 4, 1);
	CHECK_EQ(pic_ack(pic), 0x24);	/* IRQ4 in service */
	pic_set_irq(pic, 6, 1);		/* pending behind it */
	pic_set_irq(pic, 3, 1);		/* masked request */
	pic_set_irq(pic, 10, 1);	/* slave request: the cascade */
	CHECK(pic_intr(pic));
	outb(0x20, 0x6a);		/* OCW3: special mask on, read IRR */
	outb(0xa0, 0x11);		/* slave halfway through a new ICW sequence */
	outb(0xa1, 0x30);

	a = g_variant_ref_sink(pic_device_ops.save(pic));
	CHECK(g_variant_is_of_type(a, G_VARIANT_TYPE(PIC_STATE_TYPE)));
	intr_calls = 0;
	CHECK_EQ(pic_device_ops.load(fresh, 1, a, err, sizeof(err)), 0);
	CHECK_EQ(intr_calls, pic_intr(pic) ? 1 : 0);	/* INTR re-driven */
	CHECK_EQ(pic_intr(fresh), pic_intr(pic));
	b = g_variant_ref_sink(pic_device_ops.save(fresh));
	CHECK(g_variant_equal(a, b));
	observe(pio, pic, ta);
	observe(pio2, fresh, tb);
	CHECK(memcmp(ta, tb, sizeof(ta)) == 0);
	g_variant_unref(a);
	g_variant_unref(b);
	pic_free(fresh);
	bus_free(pio2);
	teardown();
}

/* A state with @chip's field @field (0-15) replaced by @val. */
static GVariant *patched(GVariant *good, unsigned chip, unsigned field,
			 GVariant *val)
{
	GVariant *top[3], *c[16];
	GVariant *r;

	for (unsigned i = 0; i < 3; i++)
		top[i] = g_variant_get_child_value(good, i);
	for (unsigned i = 0; i < 16; i++)
		c[i] = i == field ? g_variant_ref_sink(val)
				  : g_variant_get_child_value(top[chip], i);
	g_variant_unref(top[chip]);
	top[chip] = g_variant_ref_sink(g_variant_new_tuple(c, 16));
	r = g_variant_ref_sink(g_variant_new_tuple(top, 3));
	for (unsigned i = 0; i < 16; i++)
		g_variant_unref(c[i]);
	for (unsigned i = 0; i < 3; i++)
		g_variant_unref(top[i]);
	return r;
}

static void test_load_refuses(void)
{
	GVariant *before, *good, *bad, *after;
	char err[128];
	struct {
		unsigned chip, field;
		GVariant *val;
	} cases[] = {
		{ 0, 7, g_variant_new_byte(4) },	/* ICW step */
		{ 1, 6, g_variant_new_byte(8) },	/* lowest priority */
		{ 0, 5, g_variant_new_byte(0x21) },	/* vector base bits */
		{ 0, 4, g_variant_new_byte(0x01) },	/* ELCR of IRQ0 */
		{ 0, 0, g_variant_new_byte(0x04) },	/* master IR2 input */
		{ 0, 1, g_variant_new_byte(0x00) },	/* IRR: drops IRQ5 level */
	};

	setup();
	linux_init(0x00, 0x00);
	outb(0x4d0, 0x20);
	pic_set_irq(pic, 5, 1);
	CHECK_EQ(pic_ack(pic), 0x25);
	good = g_variant_ref_sink(pic_device_ops.save(pic));

	/* Another device's state into a fresh PIC, then a wrong type,
	 * version, and each out-of-range field: refused, nothing changed. */
	linux_init(0x55, 0xaa);
	before = g_variant_ref_sink(pic_device_ops.save(pic));
	CHECK_EQ(pic_device_ops.load(pic, 2, good, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "pic: state version 2 not supported") != NULL);
	bad = g_variant_ref_sink(g_variant_new("(yy)", 1, 2));
	CHECK_EQ(pic_device_ops.load(pic, 1, bad, err, sizeof(err)), -EINVAL);
	CHECK(strncmp(err, "pic:", 4) == 0);
	g_variant_unref(bad);
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bad = patched(good, cases[i].chip, cases[i].field, cases[i].val);
		err[0] = 0;
		CHECK_EQ(pic_device_ops.load(pic, 1, bad, err, sizeof(err)), -EINVAL);
		CHECK(strncmp(err, "pic:", 4) == 0);
		g_variant_unref(bad);
	}
	/* INTR claimed high while nothing requests. */
	{
		GVariant *c0 = g_variant_get_child_value(good, 0);
		GVariant *c1 = g_variant_get_child_value(good, 1);

		bad = g_variant_ref_sink(g_variant_new("(@(yyyyyyyybbbbbbbb)@(yyyyyyyybbbbbbbb)b)",
						       c0, c1, TRUE));
		CHECK_EQ(pic_device_ops.load(pic, 1, bad, err, sizeof(err)), -EINVAL);
		g_variant_unref(c0);
		g_variant_unref(c1);
		g_variant_unref(bad);
	}
	after = g_variant_ref_sink(pic_device_ops.save(pic));
	CHECK(g_variant_equal(before, after));
	CHECK_EQ(inb(0x21), 0x55);
	/* The good one still loads. */
	CHECK_EQ(pic_device_ops.load(pic, 1, good, err, sizeof(err)), 0);
	CHECK_EQ(read_isr(0x20), 0x20);
	g_variant_unref(before);
	g_variant_unref(after);
	g_variant_unref(good);
	teardown();
}

int main(void)
{
	RUN_TEST(test_init_sequences);
	RUN_TEST(test_intr_reported_on_change_only);
	RUN_TEST(test_priority_and_nesting);
	RUN_TEST(test_rotation);
	RUN_TEST(test_masking);
	RUN_TEST(test_auto_eoi);
	RUN_TEST(test_level_vs_edge);
	RUN_TEST(test_spurious);
	RUN_TEST(test_poll_and_special_mask);
	RUN_TEST(test_special_fully_nested);
	RUN_TEST(test_reset_and_bad_input);
	RUN_TEST(test_save_load);
	RUN_TEST(test_load_refuses);
	return check_finish();
}
