/* SPDX-License-Identifier: MIT */
/* tests/unit/test_vga.c - the standard VGA + Bochs VBE through its bus ops
 * and PCI config space, rendered into a real console: text mode as the
 * VGA BIOS programs it (font in plane 2, attributes, 9th column, cursor,
 * blink), text(), mode 13h, planar mode 12h write/read modes, the DISPI
 * handshake and linear modes, mode validation, redraw tracking, BAR0
 * through a (fake) memory slot with its dirty log, and a hostile guest. */
#include <errno.h>
#include <glib.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testlib.h"

#include "devices/pci.h"
#include "devices/vga.h"
#include "display/console.h"

#define DEVFN		(2 << 3)
#define LFB		0xe0000000u
#define MMIO_BAR	0xe1000000u

static struct bus *pio, *mmio;
static struct pci_host *host;
static struct vga *vga;
static struct console *con;
static pthread_mutex_t dev_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fake_clock clk;

/* What the console told its listener. */
static unsigned resizes, updates;
static unsigned ux, uy, uw, uh;

static void l_resize(void *opaque, const struct console_surface *s)
{
	(void)opaque;
	(void)s;
	resizes++;
}

static void l_update(void *opaque, const struct console_surface *s,
		     unsigned x, unsigned y, unsigned w, unsigned h)
{
	(void)opaque;
	(void)s;
	updates++;
	ux = x;
	uy = y;
	uw = w;
	uh = h;
}

static const struct console_listener_ops listener = {
	.resize = l_resize, .update = l_update,
};

/* @slot: BAR0's memory slot; NULL: BAR0 on the MMIO bus. */
static void setup_slot(size_t vram, const struct mem_slot *slot)
{
	struct vga_config cfg = { .vram_size = vram, .clock = &clk.clk };

	if (slot)
		cfg.vram_slot = *slot;

	fake_clock_init(&clk);
	pio = bus_new("pio");
	mmio = bus_new("mmio");
	host = pci_host_new();
	CHECK_EQ(pci_host_attach(host, pio, mmio), 0);
	vga = vga_new(&cfg);
	CHECK(vga != NULL);
	CHECK_EQ(vga_attach(vga, pio, mmio, host, DEVFN), 0);
	pci_config_write(host, 0, DEVFN, PCI_BASE_ADDRESS_0, 4, LFB);
	pci_config_write(host, 0, DEVFN, PCI_BASE_ADDRESS_0 + 8, 4, MMIO_BAR);
	pci_config_write(host, 0, DEVFN, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	con = console_new();
	CHECK(con != NULL);
	console_set_hw(con, &vga_console_ops, vga, &dev_lock);
	CHECK_EQ(console_add_listener(con, &listener, NULL), 0);
	resizes = updates = 0;
}

static void setup_vram(size_t vram)
{
	setup_slot(vram, NULL);
}

static void setup(void)
{
	setup_vram(VGA_DEFAULT_VRAM);
}

static void teardown(void)
{
	console_remove_listener(con, &listener, NULL);
	console_set_hw(con, NULL, NULL, NULL);
	console_free(con);
	vga_free(vga);
	pci_host_free(host);
	bus_free(pio);
	bus_free(mmio);
}

/* ---- register access as the VGA BIOS does it ---------------------------- */

static void outb(unsigned port, unsigned v) { io_write(pio, port, v, 1); }
static void outw(unsigned port, unsigned v) { io_write(pio, port, v, 2); }
static unsigned inb(unsigned port) { return (unsigned)io_read(pio, port, 1); }
static unsigned inw(unsigned port) { return (unsigned)io_read(pio, port, 2); }

static void sr_w(unsigned i, unsigned v) { outw(0x3c4, v << 8 | i); }
static void gr_w(unsigned i, unsigned v) { outw(0x3ce, v << 8 | i); }
static void cr_w(unsigned i, unsigned v) { outw(0x3d4, v << 8 | i); }

static void ar_w(unsigned i, unsigned v)
{
	inb(0x3da);
	outb(0x3c0, i);
	outb(0x3c0, v);
}

static void dac_w(unsigned i, unsigned r, unsigned g, unsigned b)
{
	outb(0x3c8, i);
	outb(0x3c9, r);
	outb(0x3c9, g);
	outb(0x3c9, b);
}

static void dispi_w(unsigned i, unsigned v)
{
	outw(0x1ce, i);
	outw(0x1cf, v);
}

static unsigned dispi_r(unsigned i)
{
	outw(0x1ce, i);
	return inw(0x1cf);
}

static void memb(uint32_t addr, uint8_t v) { io_write(mmio, addr, v, 1); }
static uint8_t memr(uint32_t addr) { return (uint8_t)io_read(mmio, addr, 1); }

/* The IBM VGA mode tables (sequencer 1-4, misc, CRTC 0-0x18, attribute
 * 0-0x13, graphics 0-8), as a VGA BIOS programs them. */
struct mode_regs {
	uint8_t sr[4], misc, cr[25], ar[20], gr[9];
};

static const struct mode_regs mode3 = {
	{ 0x00, 0x03, 0x00, 0x02 }, 0x67,
	{ 0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00, 0x4f, 0x0d,
	  0x0e, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e, 0x8f, 0x28, 0x1f, 0x96,
	  0xb9, 0xa3, 0xff },
	{ 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a,
	  0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x0c, 0x00, 0x0f, 0x08 },
	{ 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0e, 0x0f, 0xff },
};

static const struct mode_regs mode13 = {
	{ 0x01, 0x0f, 0x00, 0x0e }, 0x63,
	{ 0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0xbf, 0x1f, 0x00, 0x41, 0x00,
	  0x00, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e, 0x8f, 0x28, 0x40, 0x96,
	  0xb9, 0xa3, 0xff },
	{ 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
	  0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x41, 0x00, 0x0f, 0x00 },
	{ 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x05, 0x0f, 0xff },
};

static const struct mode_regs mode12 = {
	{ 0x01, 0x0f, 0x00, 0x06 }, 0xe3,
	{ 0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0x0b, 0x3e, 0x00, 0x40, 0x00,
	  0x00, 0x00, 0x00, 0x00, 0x00, 0xea, 0x8c, 0xdf, 0x28, 0x00, 0xe7,
	  0x04, 0xe3, 0xff },
	{ 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a,
	  0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x01, 0x00, 0x0f, 0x00 },
	{ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x0f, 0xff },
};

static const struct mode_regs mode4 = {
	{ 0x09, 0x03, 0x00, 0x02 }, 0x63,
	{ 0x2d, 0x27, 0x28, 0x90, 0x2b, 0x80, 0xbf, 0x1f, 0x00, 0xc1, 0x00,
	  0x00, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e, 0x8f, 0x14, 0x00, 0x96,
	  0xb9, 0xa2, 0xff },
	{ 0x00, 0x13, 0x15, 0x17, 0x02, 0x04, 0x06, 0x07, 0x10, 0x11, 0x12,
	  0x13, 0x14, 0x15, 0x16, 0x17, 0x01, 0x00, 0x03, 0x00 },
	{ 0x00, 0x00, 0x00, 0x00, 0x00, 0x30, 0x0f, 0x0f, 0xff },
};

static void set_mode(const struct mode_regs *m)
{
	for (unsigned i = 0; i < 20; i++)
		ar_w(i, m->ar[i]);
	ar_w(0x14, 0);
	sr_w(0, 0x03);
	for (unsigned i = 0; i < 4; i++)
		sr_w(i + 1, m->sr[i]);
	for (unsigned i = 0; i < 9; i++)
		gr_w(i, m->gr[i]);
	cr_w(0x11, 0);
	for (unsigned i = 0; i < 25; i++)
		cr_w(i, m->cr[i]);
	outb(0x3c2, m->misc);
	inb(0x3da);
	outb(0x3c0, 0x20);		/* palette address source: video on */
}

/* A 16-line glyph for @c into character map 0 of plane 2. */
static void load_glyph(unsigned c, const uint8_t rows[16])
{
	sr_w(2, 0x04);
	sr_w(4, 0x07);
	gr_w(4, 0x02);
	gr_w(5, 0x00);
	gr_w(6, 0x04);
	for (unsigned i = 0; i < 16; i++)
		memb(0xa0000 + c * 32 + i, rows[i]);
	sr_w(2, 0x03);
	sr_w(4, 0x02);
	gr_w(4, 0x00);
	gr_w(5, 0x10);
	gr_w(6, 0x0e);
}

static void put_char(unsigned row, unsigned col, uint8_t c, uint8_t attr)
{
	uint32_t a = 0xb8000 + 2 * (row * 80 + col);

	memb(a, c);
	memb(a + 1, attr);
}

static uint32_t pixel(unsigned x, unsigned y)
{
	struct console_surface s;
	uint32_t p;

	if (console_snapshot(con, &s))
		return 0xdeadbeef;
	p = (x < s.width && y < s.height) ? s.pixels[y * s.width + x] : 0xdeadbeef;
	free(s.pixels);
	return p;
}

static void size_is(unsigned w, unsigned h)
{
	struct console_surface s;

	CHECK_EQ(console_snapshot(con, &s), 0);
	CHECK_EQ(s.width, w);
	CHECK_EQ(s.height, h);
	free(s.pixels);
}

#define BLUE	0x0000aau
#define YELLOW	0xffff55u
#define GREY	0xaaaaaau
#define BLACK	0x000000u

static const uint8_t glyph_a[16] = {
	0x81, 0x42, 0x24, 0x18, 0x18, 0x24, 0x42, 0x81,
	0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};
static const uint8_t glyph_full[16] = {
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
};

/* ---- tests ----------------------------------------------------------------- */

static void test_pci_identity(void)
{
	setup();
	CHECK_EQ(pci_config_read(host, 0, DEVFN, 0, 4), 0x11111234u);
	CHECK_EQ(pci_config_read(host, 0, DEVFN, PCI_REVISION_ID, 1), 2);
	CHECK_EQ(pci_config_read(host, 0, DEVFN, PCI_CLASS_PROG, 1), 0);
	CHECK_EQ(pci_config_read(host, 0, DEVFN, PCI_CLASS_DEVICE, 2), 0x0300);
	CHECK_EQ(pci_config_read(host, 0, DEVFN, PCI_SUBSYSTEM_VENDOR_ID, 4),
		 0x11001af4u);
	CHECK_EQ(pci_config_read(host, 0, DEVFN, PCI_INTERRUPT_PIN, 1), 0);
	/* BAR0: prefetchable MEM32 of the VRAM size. */
	CHECK_EQ(pci_config_read(host, 0, DEVFN, PCI_BASE_ADDRESS_0, 4),
		 LFB | 0x8);
	pci_config_write(host, 0, DEVFN, PCI_BASE_ADDRESS_0, 4, 0xffffffff);
	CHECK_EQ(pci_config_read(host, 0, DEVFN, PCI_BASE_ADDRESS_0, 4),
		 (uint32_t)~(VGA_DEFAULT_VRAM - 1) | 0x8);
	pci_config_write(host, 0, DEVFN, PCI_BASE_ADDRESS_0, 4, LFB);
	/* The VRAM behind BAR0. */
	io_write(mmio, LFB + 0x1000, 0x11223344, 4);
	CHECK_EQ(vga_vram(vga)[0x1000], 0x44);
	CHECK_EQ(io_read(mmio, LFB + 0x1002, 2), 0x1122);
	CHECK_EQ(vga_vram_size(vga), VGA_DEFAULT_VRAM);
	/* BAR2: the VGA ports at 0x400 and DISPI at 0x500. */
	io_write(mmio, MMIO_BAR + 0x400 + 4, 0x02, 1);		/* 0x3c4 */
	CHECK_EQ(io_read(mmio, MMIO_BAR + 0x400 + 5, 1), 0x03);	/* map mask */
	CHECK_EQ(io_read(mmio, MMIO_BAR + 0x500, 2), 0xb0c5);	/* ID */
	CHECK_EQ(io_read(mmio, MMIO_BAR + 0x500 + 2 * 0xa, 2), 256);
	CHECK_EQ(io_read(mmio, MMIO_BAR + 0, 4), 0);		/* no EDID */
	teardown();
}

static void test_text_mode(void)
{
	char buf[4096];
	int n;

	setup();
	set_mode(&mode3);
	dac_w(1, 0x00, 0x00, 0x2a);
	/* Clear as the BIOS does: spaces, grey on black. */
	for (unsigned i = 0; i < 80 * 25; i++)
		put_char(i / 80, i % 80, ' ', 0x07);
	load_glyph('A', glyph_a);
	load_glyph(0xc4, glyph_full);
	load_glyph(0xb0, glyph_full);		/* not line graphics */
	put_char(0, 0, 'A', 0x1e);		/* yellow on blue */
	put_char(0, 1, 0xc4, 0x1e);
	put_char(0, 2, 0xb0, 0x1e);
	put_char(0, 3, 'A', 0x8e);		/* blinking */
	cr_w(0x0e, 0);
	cr_w(0x0f, 80 + 5);			/* cursor at row 1, col 5 */
	CHECK(console_refresh(con));
	size_is(720, 400);

	/* 'A' line 0 = 0x81: columns 0 and 7 foreground, 1-6 and 8 not. */
	CHECK_EQ(pixel(0, 0), YELLOW);
	CHECK_EQ(pixel(1, 0), BLUE);
	CHECK_EQ(pixel(7, 0), YELLOW);
	CHECK_EQ(pixel(8, 0), BLUE);
	CHECK_EQ(pixel(0, 8), YELLOW);		/* line 8 = 0xff */
	CHECK_EQ(pixel(8, 8), BLUE);
	CHECK_EQ(pixel(0, 9), BLUE);
	/* 0xc4 is line graphics (AR10 bit 2): the 9th column repeats the
	 * 8th; 0xb0 is not. */
	CHECK_EQ(pixel(9 + 8, 0), YELLOW);	/* 0xc4 */
	CHECK_EQ(pixel(18 + 7, 0), YELLOW);
	CHECK_EQ(pixel(18 + 8, 0), BLUE);
	/* Blinking cell in its on phase (clock at 0). */
	CHECK_EQ(pixel(27, 0), YELLOW);
	/* Cursor: scanlines 13-14 of cell (1, 5) in the cell's foreground. */
	CHECK_EQ(pixel(45, 16 + 12), BLACK);
	CHECK_EQ(pixel(45, 16 + 13), GREY);
	CHECK_EQ(pixel(45 + 8, 16 + 14), GREY);
	CHECK_EQ(pixel(45, 16 + 15), BLACK);

	/* Nothing changed: nothing to send. */
	CHECK(!console_refresh(con));

	/* One character: one cell redrawn. */
	updates = 0;
	put_char(10, 20, 'A', 0x1e);
	CHECK(console_refresh(con));
	CHECK_EQ(updates, 1);
	CHECK_EQ(ux, 180);
	CHECK_EQ(uy, 160);
	CHECK_EQ(uw, 9);
	CHECK_EQ(uh, 16);
	CHECK_EQ(pixel(180, 160), YELLOW);

	/* Off phase: the blinking char and the cursor vanish; only those
	 * two cells are redrawn. */
	fake_clock_advance(&clk, 260 * 1000000ull);
	CHECK(console_refresh(con));
	CHECK_EQ(pixel(27, 0), BLACK);		/* bg 8 & 7 */
	CHECK_EQ(pixel(45, 16 + 13), BLACK);
	CHECK_EQ(ux, 27);
	CHECK_EQ(uy, 0);
	CHECK_EQ(uw, 27);			/* cols 3-5 */
	CHECK_EQ(uh, 32);			/* rows 0-1 */

	/* Blink disabled: bit 7 is background intensity instead. */
	ar_w(0x10, 0x04);
	inb(0x3da);
	outb(0x3c0, 0x20);
	CHECK(console_refresh(con));
	CHECK_EQ(pixel(27, 0), YELLOW);
	CHECK_EQ(pixel(28, 0), 0x555555u);	/* bg 8: dark grey */

	/* text(): 25 rows of 80 + '\n'. */
	n = console_text(con, buf, sizeof(buf));
	CHECK_EQ(n, 25 * 81);
	CHECK(!strncmp(buf, "A-?A    ", 8));
	CHECK_EQ(buf[80], '\n');
	CHECK(!strncmp(buf + 10 * 81 + 20, "A ", 2));
	/* Truncation keeps the NUL. */
	n = console_text(con, buf, 10);
	CHECK_EQ(n, 9);
	CHECK_EQ(buf[9], '\0');

	/* Screen off (SR01 bit 5): black. */
	sr_w(1, 0x20);
	CHECK(console_refresh(con));
	CHECK_EQ(pixel(0, 0), BLACK);
	CHECK(console_text(con, buf, sizeof(buf)) > 0);
	sr_w(1, 0x00);
	CHECK(console_refresh(con));
	CHECK_EQ(pixel(0, 0), YELLOW);
	/* Palette address source off: black too. */
	inb(0x3da);
	outb(0x3c0, 0x00);
	CHECK(console_refresh(con));
	CHECK_EQ(pixel(0, 0), BLACK);
	teardown();
}

static void test_ports_misc(void)
{
	unsigned a, b;

	setup();
	/* Colour I/O: the mono CRTC and status ports are dark. */
	outb(0x3c2, 0x67);
	CHECK_EQ(inb(0x3cc), 0x67);
	outb(0x3d4, 0x0e);
	outb(0x3d5, 0x12);
	CHECK_EQ(inb(0x3d5), 0x12);
	CHECK_EQ(inb(0x3b5), 0xff);
	CHECK_EQ(inb(0x3ba), 0xff);
	/* Retrace bits toggle so polling loops end. */
	a = inb(0x3da);
	b = inb(0x3da);
	CHECK((a ^ b) & 0x08);
	CHECK((a ^ b) & 0x01);
	/* Mono: CRTC at 0x3b4. */
	outb(0x3c2, 0x66);
	outb(0x3b4, 0x0e);
	CHECK_EQ(inb(0x3b5), 0x12);
	CHECK_EQ(inb(0x3d5), 0xff);
	outb(0x3c2, 0x67);
	/* CRTC write protect (CR11 bit 7) guards CR00-CR07. */
	cr_w(0x11, 0x80);
	cr_w(0x01, 0x33);
	outb(0x3d4, 0x01);
	CHECK_EQ(inb(0x3d5), 0x4f);
	cr_w(0x11, 0x00);
	/* Attribute flip-flop: index, data, index; reading 0x3da resets. */
	inb(0x3da);
	outb(0x3c0, 0x01);
	outb(0x3c0, 0x2a);
	CHECK_EQ(inb(0x3c1), 0x2a);
	outb(0x3c0, 0x02);
	inb(0x3da);
	outb(0x3c0, 0x22);
	CHECK_EQ(inb(0x3c0), 0x22);
	/* DAC: 6-bit reads back masked; auto-increment over r, g, b. */
	dac_w(5, 0xff, 0x10, 0x20);
	dac_w(6, 0x01, 0x02, 0x03);
	outb(0x3c7, 5);
	CHECK_EQ(inb(0x3c7), 0x03);
	CHECK_EQ(inb(0x3c9), 0x3f);
	CHECK_EQ(inb(0x3c9), 0x10);
	CHECK_EQ(inb(0x3c9), 0x20);
	CHECK_EQ(inb(0x3c9), 0x01);
	/* Sequencer/graphics indices are masked, unknown ones read 0. */
	outb(0x3c4, 0xff);
	CHECK_EQ(inb(0x3c4), 0x07);
	CHECK_EQ(inb(0x3c5), 0);
	outb(0x3ce, 0x0f);
	outb(0x3cf, 0x55);
	CHECK_EQ(inb(0x3cf), 0);
	teardown();
}

static void test_mode13(void)
{
	setup();
	set_mode(&mode13);
	dac_w(0x28, 0x3f, 0x00, 0x00);
	memb(0xa0000 + 5 * 320 + 10, 0x28);
	CHECK_EQ(vga_vram(vga)[5 * 320 + 10], 0x28);	/* chain-4: linear */
	CHECK_EQ(memr(0xa0000 + 5 * 320 + 10), 0x28);
	CHECK(console_refresh(con));
	size_is(640, 400);
	/* Each pixel is 2x2 on screen. */
	CHECK_EQ(pixel(20, 10), 0xff0000u);
	CHECK_EQ(pixel(21, 11), 0xff0000u);
	CHECK_EQ(pixel(22, 10), BLACK);
	CHECK_EQ(pixel(20, 12), BLACK);
	/* One pixel changed: the lines sharing its 4 KiB page (13 rows of
	 * 320 bytes, each shown twice) are redrawn, not the screen. */
	memb(0xa0000 + 100 * 320 + 7, 0x28);
	CHECK(console_refresh(con));
	CHECK(uy <= 200 && uy + uh >= 202);
	CHECK(uh <= 28);
	CHECK_EQ(pixel(14, 200), 0xff0000u);
	/* A palette change redraws everything. */
	dac_w(0x28, 0x00, 0x3f, 0x00);
	CHECK(console_refresh(con));
	CHECK_EQ(uy, 0);
	CHECK_EQ(uh, 400);
	CHECK_EQ(pixel(20, 10), 0x00ff00u);
	/* Unchained (mode X): SR04 chain-4 off, byte mode. */
	sr_w(4, 0x06);
	cr_w(0x14, 0x00);
	cr_w(0x17, 0xe3);
	sr_w(2, 0x02);			/* plane 1 = pixel 1 of each group */
	memb(0xa0000 + 3, 0x28);	/* x = 4 * 3 + 1 = 13 */
	CHECK_EQ(vga_vram(vga)[3 * 4 + 1], 0x28);
	CHECK(console_refresh(con));
	CHECK_EQ(pixel(26, 0), 0x00ff00u);
	teardown();
}

static void test_mode12_planar(void)
{
	uint8_t *vr;

	setup();
	set_mode(&mode12);
	vr = vga_vram(vga);
	CHECK(console_refresh(con));
	size_is(640, 480);
	/* Write mode 2: colour 12 into pixel 0 only (bit mask 0x80). */
	gr_w(5, 0x02);
	gr_w(8, 0x80);
	(void)memr(0xa0000);		/* load the latches */
	memb(0xa0000, 0x0c);
	CHECK_EQ(vr[0], 0x00);
	CHECK_EQ(vr[1], 0x00);
	CHECK_EQ(vr[2], 0x80);
	CHECK_EQ(vr[3], 0x80);
	/* Write mode 0 with set/reset on all planes: colour 9 in pixel 1. */
	gr_w(5, 0x00);
	gr_w(0, 0x09);
	gr_w(1, 0x0f);
	gr_w(8, 0x40);
	(void)memr(0xa0000);
	memb(0xa0000, 0xff);
	CHECK_EQ(vr[0], 0x40);
	CHECK_EQ(vr[3], 0xc0);
	CHECK_EQ(vr[2], 0x80);
	/* Map mask limits the planes written. */
	gr_w(1, 0x00);
	gr_w(8, 0xff);
	sr_w(2, 0x02);
	memb(0xa0000 + 1, 0xf0);
	CHECK_EQ(vr[4 + 1], 0xf0);
	CHECK_EQ(vr[4 + 0], 0x00);
	sr_w(2, 0x0f);
	/* XOR with the latches (GR03 op 3). */
	gr_w(3, 0x18);
	(void)memr(0xa0000 + 1);
	memb(0xa0000 + 1, 0xff);
	CHECK_EQ(vr[4 + 1], 0x0f);
	CHECK_EQ(vr[4 + 0], 0xff);
	gr_w(3, 0x00);
	/* Read mode 0 from plane 3; read mode 1: colour compare with 12. */
	gr_w(4, 3);
	CHECK_EQ(memr(0xa0000), 0xc0);
	gr_w(5, 0x08);
	gr_w(2, 0x0c);
	gr_w(7, 0x0f);
	CHECK_EQ(memr(0xa0000), 0x80);
	gr_w(7, 0x00);			/* no plane cared about: all match */
	CHECK_EQ(memr(0xa0000), 0xff);
	gr_w(5, 0x00);
	/* Write mode 1 copies the latches: byte 0 to byte 2. */
	gr_w(5, 0x01);
	(void)memr(0xa0000);
	memb(0xa0000 + 2, 0x00);
	CHECK_EQ(vr[8 + 3], 0xc0);
	gr_w(5, 0x00);
	CHECK(console_refresh(con));
	/* Pixel 0: colour 12 = light red; pixel 1: colour 9 = light blue. */
	CHECK_EQ(pixel(0, 0), 0xff5555u);
	CHECK_EQ(pixel(1, 0), 0x5555ffu);
	CHECK_EQ(pixel(2, 0), BLACK);
	CHECK_EQ(pixel(16, 0), 0xff5555u);
	CHECK_EQ(uy, 0);
	CHECK(uh <= 13);			/* the lines of VRAM page 0 */
	/* Colour plane enable masks planes out. */
	ar_w(0x12, 0x03);
	inb(0x3da);
	outb(0x3c0, 0x20);
	CHECK(console_refresh(con));
	CHECK_EQ(pixel(1, 0), BLUE);
	teardown();
}

/* CGA 320x200x4 (mode 4): 2-bit pixels, odd/even planes 0/1, odd scan
 * lines at 0xba000; shown 640x400 (dot clock / 2, double scan). */
static void test_mode4_cga(void)
{
	setup();
	set_mode(&mode4);
	dac_w(0x13, 0x3f, 0x00, 0x00);
	dac_w(0x15, 0x00, 0x3f, 0x00);
	dac_w(0x17, 0x00, 0x00, 0x3f);
	memb(0xb8000, 0x1b);			/* pixels 0-3: 0 1 2 3 */
	memb(0xb8001, 0xc0);			/* pixel 4: 3 */
	memb(0xba000, 0x40);			/* line 1, pixel 0: 1 */
	memb(0xb8000 + 80 * 10 + 1, 0x30);	/* line 20, pixel 5: 3 */
	CHECK_EQ(vga_vram(vga)[0], 0x1b);
	CHECK_EQ(vga_vram(vga)[1], 0xc0);
	CHECK_EQ(vga_vram(vga)[0x1000 * 4], 0x40);
	CHECK(console_refresh(con));
	size_is(640, 400);
	CHECK_EQ(pixel(0, 0), BLACK);
	CHECK_EQ(pixel(2, 0), 0xff0000u);
	CHECK_EQ(pixel(5, 1), 0x00ff00u);
	CHECK_EQ(pixel(6, 0), 0x0000ffu);
	CHECK_EQ(pixel(8, 0), 0x0000ffu);
	CHECK_EQ(pixel(10, 0), BLACK);
	CHECK_EQ(pixel(0, 2), 0xff0000u);
	CHECK_EQ(pixel(1, 3), 0xff0000u);
	CHECK_EQ(pixel(2, 2), BLACK);
	CHECK_EQ(pixel(10, 40), 0x0000ffu);
	CHECK_EQ(pixel(11, 41), 0x0000ffu);
	CHECK_EQ(pixel(12, 40), BLACK);
	CHECK_EQ(pixel(10, 38), BLACK);
	teardown();
}

static void vbe_set(unsigned x, unsigned y, unsigned bpp, unsigned flags)
{
	dispi_w(4, 0);
	dispi_w(3, bpp);
	dispi_w(1, x);
	dispi_w(2, y);
	dispi_w(5, 0);
	dispi_w(4, 0x01 | flags);
}

static void test_dispi(void)
{
	setup();
	/* Handshake as SeaBIOS and bochs-drm do it. */
	dispi_w(0, 0xb0c0);
	CHECK_EQ(dispi_r(0), 0xb0c0);
	dispi_w(0, 0xb0c5);
	CHECK_EQ(dispi_r(0), 0xb0c5);
	dispi_w(0, 0x1234);
	CHECK_EQ(dispi_r(0), 0xb0c5);
	CHECK_EQ(dispi_r(0xa), VGA_DEFAULT_VRAM >> 16);
	/* GETCAPS: XRES/YRES/BPP read as maxima. */
	dispi_w(4, 0x02);
	CHECK_EQ(dispi_r(1), 2560);
	CHECK_EQ(dispi_r(2), 1600);
	CHECK_EQ(dispi_r(3), 32);
	dispi_w(4, 0x00);
	CHECK_EQ(dispi_r(1), 0);

	memset(vga_vram(vga), 0x77, 4096);
	vbe_set(1024, 768, 32, 0x40);
	CHECK_EQ(dispi_r(4), 0x41);
	CHECK_EQ(dispi_r(6), 1024);
	CHECK_EQ(dispi_r(7), VGA_DEFAULT_VRAM / 4096);
	CHECK_EQ(vga_vram(vga)[0], 0);		/* cleared on enable */
	inb(0x3da);
	outb(0x3c0, 0x20);
	resizes = 0;
	CHECK(console_refresh(con));
	CHECK_EQ(resizes, 1);
	size_is(1024, 768);
	/* Pixels through the LFB. */
	io_write(mmio, LFB + (200 * 1024 + 100) * 4, 0xff123456, 4);
	CHECK(console_refresh(con));
	CHECK_EQ(pixel(100, 200), 0x123456u);
	CHECK_EQ(uy, 200);
	CHECK_EQ(uh, 1);
	CHECK(!console_refresh(con));
	/* ...and through the bank window at 0xa0000. */
	dispi_w(5, 1);
	memb(0xa0000 + 8, 0xab);		/* VRAM 0x10008: y 16, x 2 */
	CHECK_EQ(vga_vram(vga)[0x10008], 0xab);
	CHECK(console_refresh(con));
	CHECK_EQ(pixel(2, 16), 0x0000abu);
	CHECK_EQ(uy, 16);
	CHECK_EQ(uh, 1);
	dispi_w(5, 0x8000);			/* bank beyond VRAM */
	CHECK_EQ(dispi_r(5), 1);

	/* Panning as bochs-drm flips pages: Y offset 768. */
	io_write(mmio, LFB + (768 * 1024 + 5) * 4, 0x00fedcba, 4);
	dispi_w(9, 768);
	CHECK_EQ(dispi_r(9), 768);
	CHECK(console_refresh(con));
	CHECK_EQ(pixel(5, 0), 0xfedcbau);
	/* Bad values keep the old ones. */
	dispi_w(9, 4096);			/* past the VRAM */
	CHECK_EQ(dispi_r(9), 768);
	dispi_w(8, 1);				/* x offset + xres > virt width */
	CHECK_EQ(dispi_r(8), 0);
	dispi_w(6, 512);			/* virt width < xres */
	CHECK_EQ(dispi_r(6), 1024);
	dispi_w(6, 0xffff);			/* too wide for 768 lines */
	CHECK_EQ(dispi_r(6), 1024);
	dispi_w(6, 2048);			/* fits with the y offset */
	CHECK_EQ(dispi_r(6), 2048);
	CHECK_EQ(dispi_r(9), 768);
	dispi_w(6, 4096);			/* fits only at offset 0 */
	CHECK_EQ(dispi_r(6), 4096);
	CHECK_EQ(dispi_r(9), 0);
	dispi_w(4, 0);
	dispi_w(1, 10000);
	CHECK_EQ(dispi_r(1), 1024);
	dispi_w(3, 7);
	CHECK_EQ(dispi_r(3), 32);
	dispi_w(2, 1601);
	CHECK_EQ(dispi_r(2), 768);
	/* 16 bpp, 8-bit DAC palette for 8 bpp. */
	vbe_set(640, 480, 16, 0x40 | 0x80);
	CHECK_EQ(vga_vram(vga)[0x10008], 0xab);	/* NOCLEARMEM */
	io_write(mmio, LFB + (10 * 640 + 3) * 2, 0xf800, 2);
	CHECK(console_refresh(con));
	size_is(640, 480);
	CHECK_EQ(pixel(3, 10), 0xff0000u);
	vbe_set(800, 600, 8, 0x40 | 0x20);
	dac_w(7, 0x12, 0x34, 0x56);
	io_write(mmio, LFB + 600 * 800 - 1, 7, 1);
	CHECK(console_refresh(con));
	CHECK_EQ(pixel(799, 599), 0x123456u);
	vbe_set(320, 200, 24, 0x40);
	io_write(mmio, LFB + 3 * 1, 0x112233, 4);
	CHECK(console_refresh(con));
	CHECK_EQ(pixel(1, 0), 0x112233u);
	/* Back to VGA: text mode again. */
	dispi_w(4, 0);
	set_mode(&mode3);
	CHECK(console_refresh(con));
	size_is(720, 400);
	teardown();
}

static void test_dispi_small_vram(void)
{
	setup_vram(4u << 20);
	vbe_set(1920, 1080, 32, 0x40);		/* 8.3 MB > 4 MiB */
	CHECK_EQ(dispi_r(4) & 1, 0);
	vbe_set(1280, 800, 32, 0x40);		/* 4 MB fits */
	CHECK_EQ(dispi_r(4) & 1, 1);
	dispi_w(9, 20);				/* 819 lines of 5120 fit */
	CHECK_EQ(dispi_r(9), 0);
	dispi_w(9, 19);
	CHECK_EQ(dispi_r(9), 19);
	/* Planar 4 bpp (SeaBIOS modes 0x102...). */
	vbe_set(800, 600, 4, 0x00);
	CHECK_EQ(dispi_r(4) & 1, 1);
	teardown();
}

static void test_hostile(void)
{
	static const unsigned ports[] = { 0x3c0, 0x3c1, 0x3c2, 0x3c4, 0x3c5,
		0x3c6, 0x3c7, 0x3c8, 0x3c9, 0x3ce, 0x3cf, 0x3d4, 0x3d5, 0x3da,
		0x3b4, 0x3b5, 0x3ba, 0x3cc };
	struct timespec t0, t;
	unsigned long iters = 0;
	char buf[512];
	unsigned seed = 12345, vbe_frames = 0;

	setup_vram(1u << 20);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		for (unsigned k = 0; k < 2000; k++) {
			unsigned r = (unsigned)rand_r(&seed), x = (unsigned)rand_r(&seed);

			switch (r % 6) {
			case 0: case 1:
				bus_write(pio, ports[x % (sizeof(ports) / sizeof(ports[0]))],
					  x >> 8, 1 + (r >> 8) % 2, NULL);
				break;
			case 2: {
				/* Half the time values a driver would write, so
				 * that modes really get enabled. */
				static const unsigned plausible[] = { 0, 1, 4, 8,
					15, 16, 24, 32, 0x41, 0xc1, 0x21, 0x43,
					200, 320, 480, 512, 640, 768, 1024 };
				unsigned val = (unsigned)rand_r(&seed);

				if (val & 1)
					val = plausible[(val >> 1) %
						(sizeof(plausible) / sizeof(plausible[0]))];
				bus_write(pio, 0x1ce, x % 12, 2, NULL);
				bus_write(pio, 0x1cf, val, 2, NULL);
				break;
			}
			case 3:
				bus_write(mmio, 0xa0000 + x % 0x20000, r >> 8,
					  1u << ((r >> 4) % 4), NULL);
				(void)bus_read(mmio, 0xa0000 + (x >> 3) % 0x20000, 1, NULL);
				break;
			case 4:
				bus_write(mmio, MMIO_BAR + x % 4096, r, 1u << ((r >> 4) % 3), NULL);
				(void)bus_read(mmio, MMIO_BAR + (x >> 5) % 4096, 2, NULL);
				break;
			default:
				(void)bus_read(pio, 0x3b0 + x % 0x30, 1, NULL);
				break;
			}
		}
		if (iters++ % 4 == 0) {
			bus_write(pio, 0x1ce, 4, 2, NULL);
			if (bus_read(pio, 0x1cf, 2, NULL) & 1)
				vbe_frames++;
			fake_clock_advance(&clk, 100 * 1000000ull);
			console_refresh(con);
			console_text(con, buf, sizeof(buf));
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000000000ll + (t.tv_nsec - t0.tv_nsec) <
		 2000000000ll);
	console_invalidate(con);
	console_refresh(con);
	CHECK(iters > 0);
	printf("  hostile: %lu x 2000 random accesses, %u refreshes in VBE modes\n",
	       iters, vbe_frames);
	teardown();
}

/* Figure, not pass/fail: a full 1920x1080x32 redraw. */
static void test_perf_full_frame(void)
{
	struct timespec t0, t1;
	const int frames = 50;
	double ms;

	setup();
	vbe_set(1920, 1080, 32, 0x40);
	inb(0x3da);
	outb(0x3c0, 0x20);
	CHECK(console_refresh(con));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < frames; i++) {
		console_invalidate(con);
		console_refresh(con);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e6 / frames;
	printf("  full 1920x1080x32 redraw: %.2f ms/frame\n", ms);
	CHECK(ms < 500);
	teardown();
}

/* ---- BAR0 as a memory slot ---------------------------------------------- */

/* A fake slot: where the VRAM is mapped, and the next dirty log. */
static struct {
	bool mapped, dirty_log;
	uint64_t gpa, size;
	void *hva;
	unsigned maps, unmaps;
	uint64_t dirty0;		/* first word of the next get_dirty() */
} fs;

static int fs_map(void *opaque, uint64_t gpa, uint64_t size, void *hva,
		  bool dirty_log)
{
	(void)opaque;
	CHECK(!fs.mapped);		/* one window: unmapped before it moves */
	fs.mapped = true;
	fs.gpa = gpa;
	fs.size = size;
	fs.hva = hva;
	fs.dirty_log = dirty_log;
	fs.maps++;
	return 0;
}

static int fs_unmap(void *opaque, uint64_t gpa)
{
	(void)opaque;
	CHECK(fs.mapped);
	CHECK_EQ(gpa, fs.gpa);
	fs.mapped = false;
	fs.unmaps++;
	return 0;
}

static int fs_get_dirty(void *opaque, uint64_t *bitmap)
{
	(void)opaque;
	CHECK(fs.mapped);
	memset(bitmap, 0, (VGA_DEFAULT_VRAM >> 12) / 8);
	bitmap[0] = fs.dirty0;
	fs.dirty0 = 0;
	return 0;
}

static const struct mem_slot_ops fake_slot_ops = {
	.map = fs_map, .unmap = fs_unmap, .get_dirty = fs_get_dirty,
};

static void test_vram_slot(void)
{
	const struct mem_slot slot = { .ops = &fake_slot_ops };
	uint32_t *vram;

	memset(&fs, 0, sizeof(fs));
	setup_slot(VGA_DEFAULT_VRAM, &slot);
	vram = (uint32_t *)vga_vram(vga);
	/* setup() placed BAR0 and turned memory decoding on. */
	CHECK(fs.mapped);
	CHECK_EQ(fs.gpa, LFB);
	CHECK_EQ(fs.size, VGA_DEFAULT_VRAM);
	CHECK(fs.hva == vga_vram(vga));
	CHECK(fs.dirty_log);

	vbe_set(1024, 768, 32, 0x40);
	inb(0x3da);
	outb(0x3c0, 0x20);
	CHECK(console_refresh(con));
	CHECK(!console_refresh(con));
	/* The guest writes the mapped VRAM directly: only the log tells. */
	vram[2 * 1024 + 5] = 0xabcdef;		/* row 2: page 2 */
	CHECK(!console_refresh(con));
	fs.dirty0 = 1u << 2;
	CHECK(console_refresh(con));
	CHECK_EQ(pixel(5, 2), 0xabcdefu);
	CHECK_EQ(uy, 2);
	CHECK_EQ(uh, 1);

	/* The guest moves BAR0: the window follows. */
	pci_config_write(host, 0, DEVFN, PCI_BASE_ADDRESS_0, 4, 0xd0000000u);
	CHECK(fs.mapped);
	CHECK_EQ(fs.gpa, 0xd0000000u);
	CHECK_EQ(fs.unmaps + 1, fs.maps);
	teardown();
	CHECK(!fs.mapped);			/* vga_free() unmapped it */
}

/* ---- saved state ------------------------------------------------------- */

static GVariant *save_state(void)
{
	GVariant *v = vga_device_ops.save(vga);

	CHECK(v != NULL);
	return v ? g_variant_ref_sink(v) : NULL;
}

/* The whole surface, refreshed (free .pixels). */
static struct console_surface screen(void)
{
	struct console_surface s = { 0 };

	console_refresh(con);
	CHECK_EQ(console_snapshot(con, &s), 0);
	return s;
}

static void same_screen(const struct console_surface *a,
			const struct console_surface *b)
{
	CHECK_EQ(a->width, b->width);
	CHECK_EQ(a->height, b->height);
	CHECK(a->width == b->width && a->height == b->height &&
	      !memcmp(a->pixels, b->pixels, (size_t)a->stride * a->height));
}

/* Registers as the guest reads them back (reads that move state, the
 * attribute flip-flop, the DAC read index, the retrace toggle, included),
 * then what half-done sequences do next: the DAC entry being written and
 * the attribute write that is data. */
static unsigned readback(uint8_t *log, unsigned cap)
{
	unsigned n = 0;

#define LOGB(x) do { if (n < cap) log[n++] = (uint8_t)(x); } while (0)
	LOGB(inb(0x3c4));
	LOGB(inb(0x3ce));
	LOGB(inb(0x3d4));
	LOGB(inb(0x3c0));
	LOGB(inb(0x3c7));
	LOGB(inb(0x3c8));
	/* Finish the entry whose red byte was written. */
	outb(0x3c9, 0x22);
	outb(0x3c9, 0x33);
	/* The flip-flop says whether this is an index or a data write. */
	outb(0x3c0, 0x21);
	LOGB(inb(0x3c0));
	for (unsigned i = 0; i < 5; i++) {
		outb(0x3c4, i);
		LOGB(inb(0x3c5));
	}
	for (unsigned i = 0; i < 9; i++) {
		outb(0x3ce, i);
		LOGB(inb(0x3cf));
	}
	for (unsigned i = 0; i <= 0x18; i++) {
		outb(0x3d4, i);
		LOGB(inb(0x3d5));
	}
	for (unsigned i = 0; i < 0x15; i++) {
		inb(0x3da);
		outb(0x3c0, i | 0x20);
		LOGB(inb(0x3c1));
	}
	LOGB(inb(0x3da));
	LOGB(inb(0x3cc));
	LOGB(inb(0x3ca));
	LOGB(inb(0x3c3));
	LOGB(inb(0x3c6));
	outb(0x3c7, 0);
	for (unsigned i = 0; i < 3 * 256; i++)
		LOGB(inb(0x3c9));
	LOGB(memr(0xa0000 + 0x1000));	/* loads the latches */
	for (unsigned i = 0; i < 11; i++) {
		unsigned x = dispi_r(i);

		LOGB(x);
		LOGB(x >> 8);
	}
#undef LOGB
	return n;
}

/* A text mode with its own palette, glyphs, cursor shape and place, and
 * every index, the flip-flop and the DAC's sub-index mid-way. */
static void busy_text(void)
{
	set_mode(&mode3);
	dac_w(1, 0x00, 0x10, 0x2a);
	dac_w(14, 0x3f, 0x20, 0x05);
	dac_w(0x39, 0x3f, 0x3f, 0x00);
	for (unsigned i = 0; i < 80 * 25; i++)
		put_char(i / 80, i % 80, (uint8_t)('A' + i % 3), 0x07);
	load_glyph('A', glyph_a);
	load_glyph('B', glyph_full);
	put_char(0, 0, 'A', 0x1e);
	put_char(3, 7, 'B', 0x19);
	put_char(4, 0, 'A', 0x8e);
	cr_w(0x0a, 0x06);			/* cursor scanlines 6-11 */
	cr_w(0x0b, 0x0b);
	cr_w(0x0e, 0x01);
	cr_w(0x0f, 0x2c);			/* 300: row 3, col 60 */
	(void)memr(0xa0000 + 0x18000 + 6);	/* latches */
	outb(0x3c4, 0x02);
	outb(0x3ce, 0x05);
	outb(0x3d4, 0x0f);
	outb(0x3c8, 0x40);
	outb(0x3c9, 0x11);			/* sub-index 1 */
	inb(0x3da);
	outb(0x3c0, 0x32);			/* next write: data */
}

/* 800x600x32 through the LFB, virtual width 1024, offset 16,8, bank 3,
 * 8-bit DAC. */
static void busy_vbe(void)
{
	vbe_set(800, 600, 32, 0x40 | 0x20);
	dispi_w(6, 1024);
	dispi_w(8, 16);
	dispi_w(9, 8);
	dispi_w(5, 3);
	inb(0x3da);
	outb(0x3c0, 0x20);
	dispi_w(0, 0xb0c4);
	outw(0x1ce, 3);				/* DISPI index left at BPP */
	outb(0x3c8, 0x80);
	outb(0x3c9, 0xfe);
}

/* Save the adapter, read it back; a fresh adapter (after @prepare, if
 * any) given the VRAM and the state must save the same, draw the same
 * and read back the same. */
static void roundtrip(void (*prepare)(void), bool slot)
{
	static uint8_t log_a[4096], log_b[4096];
	struct console_surface a, b;
	char err[160] = "";
	GVariant *s1, *s2;
	uint8_t *vram = malloc(VGA_DEFAULT_VRAM);
	unsigned na, nb;

	CHECK(vram != NULL);
	a = screen();
	s1 = save_state();
	CHECK(g_variant_is_of_type(s1, G_VARIANT_TYPE(VGA_STATE_TYPE)));
	memcpy(vram, vga_vram(vga), VGA_DEFAULT_VRAM);
	na = readback(log_a, sizeof(log_a));
	teardown();

	if (slot) {
		memset(&fs, 0, sizeof(fs));
		setup_slot(VGA_DEFAULT_VRAM, &(const struct mem_slot){ .ops = &fake_slot_ops });
	} else {
		setup();
	}
	if (prepare)
		prepare();
	console_refresh(con);
	/* Host writes, as a restore does: no dirty page marks them. */
	memcpy(vga_vram(vga), vram, VGA_DEFAULT_VRAM);
	CHECK_EQ(vga_device_ops.load(vga, 1, s1, err, sizeof(err)), 0);
	CHECK_EQ(err[0], '\0');
	if (slot) {			/* the slot follows the BAR, not the load */
		CHECK_EQ(fs.maps, 1);
		CHECK_EQ(fs.unmaps, 0);
		CHECK_EQ(fs.gpa, LFB);
	}
	s2 = save_state();
	CHECK(g_variant_equal(s1, s2));
	updates = 0;
	b = screen();
	CHECK_EQ(updates, 1);
	CHECK_EQ(ux, 0);		/* all of it redrawn */
	CHECK_EQ(uy, 0);
	CHECK_EQ(uw, a.width);
	CHECK_EQ(uh, a.height);
	same_screen(&a, &b);
	nb = readback(log_b, sizeof(log_b));
	CHECK(na > 800);
	CHECK(na == nb && !memcmp(log_a, log_b, na));
	free(a.pixels);
	free(b.pixels);
	g_variant_unref(s1);
	g_variant_unref(s2);
	free(vram);
}

static void test_state_roundtrip(void)
{
	struct console_surface s;

	CHECK_EQ(vga_device_ops.state_version, 1);
	setup();
	busy_text();
	s = screen();
	CHECK_EQ(s.width, 720);
	free(s.pixels);
	/* Into an adapter showing its own text screen already. */
	roundtrip(busy_text, false);
	busy_vbe();
	for (unsigned y = 0; y < 620; y += 3)
		for (unsigned x = 0; x < 1024; x += 7)
			io_write(mmio, LFB + ((uint64_t)y * 1024 + x) * 4,
				 (x * 0x10101u + y * 0x3001u) & 0xffffff, 4);
	s = screen();
	CHECK_EQ(s.width, 800);
	CHECK_EQ(s.height, 600);
	free(s.pixels);
	/* Into one already in the same mode, VRAM and BAR0 as a slot. */
	roundtrip(busy_vbe, true);
	teardown();
}

/* @s with the child at @a (then @b, unless ~0u) replaced by @nv. */
static GVariant *replace_at(GVariant *s, unsigned a, unsigned b, GVariant *nv)
{
	gsize n = g_variant_n_children(s);
	GVariant *c[16], *r;

	CHECK(n <= 16);
	for (gsize i = 0; i < n && i < 16; i++) {
		if (i != a) {
			c[i] = g_variant_get_child_value(s, i);
		} else if (b == ~0u) {
			c[i] = g_variant_ref_sink(nv);
		} else {
			GVariant *sub = g_variant_get_child_value(s, i);

			c[i] = g_variant_ref_sink(replace_at(sub, b, ~0u, nv));
			g_variant_unref(sub);
		}
	}
	r = g_variant_new_tuple(c, n);
	for (gsize i = 0; i < n; i++)
		g_variant_unref(c[i]);
	return r;
}

/* @s's byte array at @a/@b with byte @i set to @val (@len: resize). */
static GVariant *bytes_at(GVariant *s, unsigned a, unsigned b, size_t len,
			  unsigned i, uint8_t val)
{
	GVariant *sub = g_variant_get_child_value(s, a);
	GVariant *arr = g_variant_get_child_value(sub, b);
	uint8_t buf[1024] = { 0 };
	gsize n;
	const uint8_t *p = g_variant_get_fixed_array(arr, &n, 1);

	memcpy(buf, p, n < sizeof(buf) ? n : sizeof(buf));
	if (i < sizeof(buf))
		buf[i] = val;
	g_variant_unref(arr);
	g_variant_unref(sub);
	return replace_at(s, a, b, g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE,
							     buf, len ? len : n, 1));
}

static GVariant *dispi_at(GVariant *s, unsigned i, uint16_t val)
{
	GVariant *sub = g_variant_get_child_value(s, 8);
	GVariant *arr = g_variant_get_child_value(sub, 1);
	uint16_t r[11];
	gsize n;
	const uint16_t *p = g_variant_get_fixed_array(arr, &n, 2);

	CHECK_EQ(n, 11);
	memcpy(r, p, sizeof(r));
	r[i] = val;
	g_variant_unref(arr);
	g_variant_unref(sub);
	return replace_at(s, 8, 1, g_variant_new_fixed_array(G_VARIANT_TYPE_UINT16,
							     r, 11, 2));
}

static void refused(GVariant *before, uint32_t version, GVariant *bad,
		    const char *why)
{
	char err[200] = "";
	GVariant *after;
	int r;

	g_variant_ref_sink(bad);
	r = vga_device_ops.load(vga, version, bad, err, sizeof(err));
	CHECK_EQ(r, -EINVAL);
	CHECK(!strncmp(err, "vga: ", 5) && !strchr(err, '\n'));
	if (r != -EINVAL || strncmp(err, "vga: ", 5))
		fprintf(stderr, "  %s: %d '%s'\n", why, r, err);
	after = save_state();
	CHECK(g_variant_equal(before, after));
	g_variant_unref(after);
	g_variant_unref(bad);
}

static void test_state_refused(void)
{
	GVariant *s;
	char err[200] = "";

	setup();
	busy_vbe();
	s = save_state();

	refused(s, 1, g_variant_new("(u)", 1), "type");
	CHECK_EQ(vga_device_ops.load(vga, 2, s, err, sizeof(err)), -EINVAL);
	CHECK(!strcmp(err, "vga: state version 2 not supported"));
	refused(s, 1, replace_at(s, 0, ~0u, g_variant_new_uint32(8u << 20)),
		"VRAM size");
	refused(s, 1, replace_at(s, 1, 1, g_variant_new_byte(4)), "feature");
	refused(s, 1, replace_at(s, 1, 3, g_variant_new_byte(1)), "st01");
	refused(s, 1, replace_at(s, 2, 0, g_variant_new_byte(8)), "SR index");
	refused(s, 1, bytes_at(s, 2, 1, 0, 0, 0x04), "SR00 bit 2");
	refused(s, 1, bytes_at(s, 2, 1, 0, 5, 0x01), "SR05");
	refused(s, 1, bytes_at(s, 2, 1, 9, 0, 0x03), "9 SRs");
	refused(s, 1, replace_at(s, 3, 0, g_variant_new_byte(16)), "GR index");
	refused(s, 1, bytes_at(s, 3, 1, 15, 0, 0), "15 GRs");
	refused(s, 1, bytes_at(s, 3, 1, 0, 5, 0x84), "GR05 bit 7");
	refused(s, 1, replace_at(s, 4, 0, g_variant_new_byte(0x40)), "CR index");
	refused(s, 1, bytes_at(s, 4, 1, 0, 0x19, 1), "CR19");
	refused(s, 1, replace_at(s, 5, 0, g_variant_new_byte(0x40)), "AR index");
	refused(s, 1, bytes_at(s, 5, 2, 0, 0x10, 0x10), "AR10 bit 4");
	refused(s, 1, bytes_at(s, 5, 2, 0, 3, 0x40), "AR03 bit 6");
	refused(s, 1, bytes_at(s, 5, 2, 20, 0, 0), "20 ARs");
	refused(s, 1, bytes_at(s, 6, 1, 767, 0, 0), "short palette");
	refused(s, 1, replace_at(s, 6, 4, g_variant_new_byte(3)), "DAC sub-index");
	refused(s, 1, bytes_at(s, 6, 5, 4, 0, 0), "DAC input");
	refused(s, 1, dispi_at(s, 0, 0x1234), "DISPI ID");
	refused(s, 1, dispi_at(s, 1, 2561), "XRES");
	refused(s, 1, dispi_at(s, 2, 1601), "YRES");
	refused(s, 1, dispi_at(s, 3, 7), "BPP 7");
	refused(s, 1, dispi_at(s, 4, 0x141), "ENABLE bit 8");
	refused(s, 1, dispi_at(s, 5, 256), "bank past 16 MiB");
	refused(s, 1, dispi_at(s, 7, 600), "VIRT_HEIGHT");
	refused(s, 1, dispi_at(s, 10, 256), "VIDEO_MEMORY_64K");
	refused(s, 1, dispi_at(s, 9, 4000), "Y offset past the VRAM");
	refused(s, 1, dispi_at(s, 8, 300), "X offset past the virtual width");
	refused(s, 1, dispi_at(s, 6, 799), "virtual width < XRES");
	/* Disabled, the same registers are fine (SeaBIOS sets them up
	 * before enabling). */
	{
		char e2[200] = "";
		GVariant *ok = g_variant_ref_sink(replace_at(s, 8, 1,
			g_variant_new_fixed_array(G_VARIANT_TYPE_UINT16,
				(const uint16_t[11]){ 0xb0c5, 2560, 1600, 4,
						      0, 0, 17, 0, 5000,
						      9000, 0 }, 11, 2)));

		CHECK_EQ(vga_device_ops.load(vga, 1, ok, e2, sizeof(e2)), 0);
		CHECK_EQ(dispi_r(8), 5000);
		CHECK_EQ(vga_device_ops.load(vga, 1, s, e2, sizeof(e2)), 0);
		g_variant_unref(ok);
	}
	teardown();
	g_variant_unref(s);
}

int main(void)
{
	RUN_TEST(test_pci_identity);
	RUN_TEST(test_text_mode);
	RUN_TEST(test_ports_misc);
	RUN_TEST(test_mode13);
	RUN_TEST(test_mode12_planar);
	RUN_TEST(test_mode4_cga);
	RUN_TEST(test_dispi);
	RUN_TEST(test_dispi_small_vram);
	RUN_TEST(test_vram_slot);
	RUN_TEST(test_hostile);
	RUN_TEST(test_perf_full_frame);
	RUN_TEST(test_state_roundtrip);
	RUN_TEST(test_state_refused);
	return check_finish();
}
