/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_vga.c - the standard VGA with Bochs VBE
 * (vmm-core/devices/vga.c) under a hostile guest: the legacy ports
 * (sequencer, graphics controller, attribute controller, CRTC, DAC, misc),
 * the DISPI index/data ports, the 0xa0000 window with its read/write
 * modes, the VRAM behind BAR0 and the BAR2 MMIO registers, BARs moved and
 * turned off, and the console's update path: the screen is rendered after
 * every batch of operations, so whatever the registers say about modes,
 * strides, offsets, start addresses, fonts and palettes is drawn from.
 *
 * Input: a mode byte (bits 0-1: 1, 2, 4 or 16 MiB of VRAM), then
 * operations until it ends, each an opcode byte (modulo OP_COUNT) and its
 * arguments (bytes past the end read as 0):
 *   OP_OUT    port (0x3b0 + n % 0x30), size bit, le16 value
 *   OP_IN     port, size bit
 *   OP_REG    file (SR, GR, CR, AR, DAC), index, value   an indexed write
 *             as a driver does it (AR: flip-flop reset first; DAC: index
 *             then r, g, b = value, value+1, value+2)
 *   OP_DISPI  index, le16 value    DISPI through 0x1ce/0x1cf
 *   OP_DISPI_R index
 *   OP_WIN    le32 offset, size, le32 value   the legacy window (bit 7 of
 *             size: read)
 *   OP_FILL   le32 offset, le16 count, value  count (at most 16383) byte
 *             writes in the window from offset (a picture, cheaply)
 *   OP_LFB    le32 offset, size, le32 value   VRAM through BAR0 (bit 7
 *             of size: read)
 *   OP_LFB_FILL le32 offset, le16 count, le32 value  count dwords (at
 *             most 16383)
 *   OP_MMIO   le16 offset, size, le32 value   BAR2 (bit 7 of size: read)
 *   OP_CFG    which, le32 value    BAR0, BAR2 or the command register
 *   OP_RENDER                      console refresh and text dump
 *   OP_CLOCK  le16 t               time passes by t ms (text blink)
 *   OP_SAVE                        save, load into a fresh adapter with
 *                                  the VRAM copied (as a snapshot does)
 *   OP_RESET                       vga_reset()
 * A render also runs after every 64 operations and at the end (before
 * the final save; the seeds render after their OP_SAVEs).
 * Checked (abort on failure): the console's updates lie within the
 * surface, the text dump fits its buffer, and every save loads into a
 * fresh adapter.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <glib.h>

#include "fuzz.h"
#include "fuzz_input.h"
#include "fuzzlib.h"

#include "bus.h"
#include "clock.h"
#include "devices/pci.h"
#include "devices/vga.h"
#include "display/console.h"
#include "log.h"

#define DEVFN		(2 << 3)
#define LFB		0xe0000000u
#define MMIO_BAR	0xe1000000u
#define FILL_MAX	0x3fff		/* writes per fill: inputs stay quick */

enum { OP_OUT, OP_IN, OP_REG, OP_DISPI, OP_DISPI_R, OP_WIN, OP_FILL, OP_LFB,
       OP_LFB_FILL, OP_MMIO, OP_CFG, OP_RENDER, OP_CLOCK, OP_SAVE, OP_RESET,
       OP_COUNT };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct bus *pio, *mmio;
static struct pci_host *host;
static struct console *con;
static size_t vram_size;
static bool ready;

const char fuzz_target[] = "fuzz_vga";

static void l_resize(void *opaque, const struct console_surface *s)
{
	if (s->width < 1 || s->height < 1 || s->width > CONSOLE_MAX_WIDTH ||
	    s->height > CONSOLE_MAX_HEIGHT || s->stride != s->width * 4)
		fuzz_fail("surface out of range");
}

static void l_update(void *opaque, const struct console_surface *s,
		     unsigned x, unsigned y, unsigned w, unsigned h)
{
	if ((uint64_t)x + w > s->width || (uint64_t)y + h > s->height)
		fuzz_fail("update outside the surface");
}

static const struct console_listener_ops listener = {
	.resize = l_resize, .update = l_update,
};

static void init_once(void)
{
	if (ready)
		return;
	log_set_level(LOG_ERROR);
	pio = bus_new("pio");
	mmio = bus_new("mmio");
	host = pci_host_new();
	con = console_new();
	if (!pio || !mmio || !host || !con ||
	    pci_host_attach(host, pio, mmio) != 0 ||
	    console_add_listener(con, &listener, NULL) != 0)
		fuzz_fail("cannot build the machine");
	ready = true;
}

static struct vga *vga_make(void)
{
	struct vga_config cfg = { .vram_size = vram_size, .clock = &fuzz_clock };
	struct vga *v = vga_new(&cfg);

	if (!v || vga_attach(v, pio, mmio, host, DEVFN) != 0)
		fuzz_fail("cannot build the adapter");
	pci_config_write(host, 0, DEVFN, PCI_BASE_ADDRESS_0, 4, LFB);
	pci_config_write(host, 0, DEVFN, PCI_BASE_ADDRESS_0 + 8, 4, MMIO_BAR);
	pci_config_write(host, 0, DEVFN, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	console_set_hw(con, &vga_console_ops, v, &lock);
	return v;
}

static void vga_drop(struct vga *v)
{
	console_set_hw(con, NULL, NULL, NULL);
	vga_free(v);
}

/* Device lock not held (the console takes it). */
static void render(void)
{
	char text[16384];
	int n;

	console_refresh(con);
	n = console_text(con, text, sizeof(text));
	if (n >= (int)sizeof(text) || (n >= 0 && text[n] != '\0'))
		fuzz_fail("text dump past its buffer");
}

/* Save, load into a fresh adapter with this one's VRAM and BARs.  Device
 * lock not held. */
static struct vga *save_load(struct vga *v)
{
	const struct device_ops *ops = &vga_device_ops;
	uint32_t bar0, bar2, cmd;
	struct vga *n;
	GVariant *s;
	void *keep;

	pthread_mutex_lock(&lock);
	s = fuzz_save(ops, v, "save failed");
	bar0 = pci_config_read(host, 0, DEVFN, PCI_BASE_ADDRESS_0, 4);
	bar2 = pci_config_read(host, 0, DEVFN, PCI_BASE_ADDRESS_0 + 8, 4);
	cmd = pci_config_read(host, 0, DEVFN, PCI_COMMAND, 2);
	pthread_mutex_unlock(&lock);
	/* The VRAM's pages move to the new adapter (vga.h allows mapping
	 * over it), as a snapshot restores them, without a copy. */
	keep = mmap(NULL, vram_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (keep == MAP_FAILED ||
	    mremap(vga_vram(v), vram_size, vram_size, MREMAP_MAYMOVE | MREMAP_FIXED,
		   keep) == MAP_FAILED)
		fuzz_fail("cannot keep the VRAM");
	vga_drop(v);
	n = vga_make();
	if (mremap(keep, vram_size, vram_size, MREMAP_MAYMOVE | MREMAP_FIXED,
		   vga_vram(n)) == MAP_FAILED)
		fuzz_fail("cannot restore the VRAM");
	pthread_mutex_lock(&lock);
	pci_config_write(host, 0, DEVFN, PCI_BASE_ADDRESS_0, 4, bar0);
	pci_config_write(host, 0, DEVFN, PCI_BASE_ADDRESS_0 + 8, 4, bar2);
	pci_config_write(host, 0, DEVFN, PCI_COMMAND, 2, cmd);
	fuzz_load(ops, n, s);
	pthread_mutex_unlock(&lock);
	g_variant_unref(s);
	return n;
}

static unsigned size_of(uint8_t b)
{
	static const unsigned sizes[4] = { 1, 2, 4, 8 };

	return sizes[b & 3];
}

static void one_op(struct vga **v, struct in *in)
{
	static const uint16_t idx_port[4] = { 0x3c4, 0x3ce, 0x3d4, 0x3c0 };
	unsigned port, size, n;
	uint32_t off, val;
	uint8_t a, b, c;

	switch (in_u8(in) % OP_COUNT) {
	case OP_OUT:
		port = 0x3b0 + in_u8(in) % 0x30;
		size = in_u8(in) & 1 ? 2 : 1;
		bus_write(pio, port, in_u16(in), size, NULL);
		break;
	case OP_IN:
		port = 0x3b0 + in_u8(in) % 0x30;
		bus_read(pio, port, in_u8(in) & 1 ? 2 : 1, NULL);
		break;
	case OP_REG:
		a = in_u8(in) % 5;
		b = in_u8(in);
		c = in_u8(in);
		if (a == 4) {
			bus_write(pio, 0x3c8, b, 1, NULL);
			for (int i = 0; i < 3; i++)
				bus_write(pio, 0x3c9, (uint8_t)(c + i), 1, NULL);
		} else if (a == 3) {
			bus_read(pio, 0x3da, 1, NULL);
			bus_write(pio, 0x3c0, b, 1, NULL);
			bus_write(pio, 0x3c0, c, 1, NULL);
		} else {
			bus_write(pio, idx_port[a], (uint16_t)(c << 8 | b), 2, NULL);
		}
		break;
	case OP_DISPI:
		a = in_u8(in);
		bus_write(pio, 0x1ce, a & 15, 2, NULL);
		bus_write(pio, 0x1cf, in_u16(in), 2, NULL);
		break;
	case OP_DISPI_R:
		bus_write(pio, 0x1ce, in_u8(in) & 15, 2, NULL);
		bus_read(pio, 0x1cf, 2, NULL);
		break;
	case OP_WIN:
		off = in_u32(in) % 0x20000;
		a = in_u8(in);
		val = in_u32(in);
		if (a & 0x80)
			bus_read(mmio, 0xa0000 + off, size_of(a), NULL);
		else
			bus_write(mmio, 0xa0000 + off, val, size_of(a), NULL);
		break;
	case OP_FILL:
		off = in_u32(in) % 0x20000;
		n = in_u16(in) & FILL_MAX;
		a = in_u8(in);
		for (unsigned i = 0; i < n && off + i < 0x20000; i++)
			bus_write(mmio, 0xa0000 + off + i, (uint8_t)(a + i / 8), 1,
				  NULL);
		break;
	case OP_LFB:
		off = in_u32(in);
		a = in_u8(in);
		val = in_u32(in);
		if (a & 0x80)
			bus_read(mmio, LFB + off % vram_size, size_of(a), NULL);
		else
			bus_write(mmio, LFB + off % vram_size, val, size_of(a), NULL);
		break;
	case OP_LFB_FILL:
		off = in_u32(in) % vram_size & ~3u;
		n = in_u16(in) & FILL_MAX;
		val = in_u32(in);
		for (unsigned i = 0; i < n && off + 4 * i < vram_size; i++)
			bus_write(mmio, LFB + off + 4 * i, val + i, 4, NULL);
		break;
	case OP_MMIO:
		off = in_u16(in) % 4096;
		a = in_u8(in);
		val = in_u32(in);
		if (a & 0x80)
			bus_read(mmio, MMIO_BAR + off, size_of(a), NULL);
		else
			bus_write(mmio, MMIO_BAR + off, val, size_of(a), NULL);
		break;
	case OP_CFG:
		a = in_u8(in) % 3;
		val = in_u32(in);
		pthread_mutex_lock(&lock);
		if (a == 2)
			pci_config_write(host, 0, DEVFN, PCI_COMMAND, 2, val & 3);
		else			/* the BAR, or nowhere */
			pci_config_write(host, 0, DEVFN, PCI_BASE_ADDRESS_0 + 8 * a,
					 4, val & 1 ? (a ? MMIO_BAR : LFB) :
					 val & 2 ? 0xffffffffu : 0xd0000000u);
		pthread_mutex_unlock(&lock);
		break;
	case OP_RENDER:
		render();
		break;
	case OP_CLOCK:
		fuzz_now_ns += (uint64_t)in_u16(in) * 1000000;
		break;
	case OP_SAVE:
		*v = save_load(*v);
		break;
	case OP_RESET:
		pthread_mutex_lock(&lock);
		vga_reset(*v);
		pthread_mutex_unlock(&lock);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t sizes[4] = { 1u << 20, 2u << 20, 4u << 20, 16u << 20 };
	struct in in = { data, size, 0 };
	unsigned ops = 0;
	struct vga *v;

	init_once();
	vram_size = sizes[in_u8(&in) & 3];
	fuzz_now_ns = 1000000000ull;
	v = vga_make();
	while (in_more(&in)) {
		one_op(&v, &in);
		if (++ops % 64 == 0)
			render();
	}
	render();
	v = save_load(v);
	vga_drop(v);
	return 0;
}

/* ---- seeds: SeaBIOS's mode sets and bochs-drm, then hostile values ------ */

static void s_reg(struct seed *s, uint8_t file, uint8_t idx, uint8_t v)
{
	put8(s, OP_REG);
	put8(s, file);
	put8(s, idx);
	put8(s, v);
}

static void s_out(struct seed *s, uint16_t port, uint8_t v)
{
	put8(s, OP_OUT);
	put8(s, (uint8_t)(port - 0x3b0));
	put8(s, 0);
	put16(s, v);
}

static void s_dispi(struct seed *s, uint8_t idx, uint16_t v)
{
	put8(s, OP_DISPI);
	put8(s, idx);
	put16(s, v);
}

static void s_fill(struct seed *s, uint32_t off, uint16_t n, uint8_t v)
{
	put8(s, OP_FILL);
	put32(s, off);
	put16(s, n);
	put8(s, v);
}

static void s_lfb_fill(struct seed *s, uint32_t off, uint16_t n, uint32_t v)
{
	put8(s, OP_LFB_FILL);
	put32(s, off);
	put16(s, n);
	put32(s, v);
}

static void s_op(struct seed *s, uint8_t op)
{
	put8(s, op);
}

/* A standard VGA mode's registers (as SeaBIOS's stdvga_set_mode writes
 * them): misc, SR1-4, CR0-0x18, AR0-0x14, GR0-8. */
static void s_vga_mode(struct seed *s, uint8_t misc, const uint8_t sr[4],
		       const uint8_t cr[25], const uint8_t ar[21],
		       const uint8_t gr[9])
{
	s_out(s, 0x3c2, misc);
	s_reg(s, 0, 0, 0x01);
	for (int i = 0; i < 4; i++)
		s_reg(s, 0, (uint8_t)(i + 1), sr[i]);
	s_reg(s, 0, 0, 0x03);
	s_reg(s, 2, 0x11, 0x00);		/* unlock CR0-7 */
	for (int i = 0; i < 25; i++)
		s_reg(s, 2, (uint8_t)i, cr[i]);
	for (int i = 0; i < 21; i++)
		s_reg(s, 3, (uint8_t)i, ar[i]);
	for (int i = 0; i < 9; i++)
		s_reg(s, 1, (uint8_t)i, gr[i]);
	s_reg(s, 3, 0x20, 0);			/* palette address source */
}

void fuzz_make_seeds(void (*add)(const void *, size_t))
{
	static struct seed s;
	/* Mode 3 (80x25 text), mode 0x12 (640x480x16), mode 0x13. */
	static const uint8_t sr3[4] = { 0x00, 0x03, 0x00, 0x02 };
	static const uint8_t cr3[25] = {
		0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00, 0x4f,
		0x0d, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e, 0x8f, 0x28,
		0x1f, 0x96, 0xb9, 0xa3, 0xff };
	static const uint8_t ar3[21] = {
		0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39,
		0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x0c, 0x00, 0x0f, 0x08,
		0x00 };
	static const uint8_t gr3[9] = { 0, 0, 0, 0, 0, 0x10, 0x0e, 0x0f, 0xff };
	static const uint8_t sr12[4] = { 0x01, 0x0f, 0x00, 0x06 };
	static const uint8_t cr12[25] = {
		0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0x0b, 0x3e, 0x00, 0x40,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xea, 0x8c, 0xdf, 0x28,
		0x00, 0xe7, 0x04, 0xe3, 0xff };
	static const uint8_t ar12[21] = {
		0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39,
		0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x01, 0x00, 0x0f, 0x00,
		0x00 };
	static const uint8_t gr12[9] = { 0, 0, 0, 0, 0, 0, 0x05, 0x0f, 0xff };
	static const uint8_t sr13[4] = { 0x01, 0x0f, 0x00, 0x0e };
	static const uint8_t cr13[25] = {
		0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0xbf, 0x1f, 0x00, 0x41,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e, 0x8f, 0x28,
		0x40, 0x96, 0xb9, 0xa3, 0xff };
	static const uint8_t ar13[21] = {
		0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09,
		0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x41, 0x00, 0x0f, 0x00,
		0x00 };
	static const uint8_t gr13[9] = { 0, 0, 0, 0, 0, 0x40, 0x05, 0x0f, 0xff };

	/* Text: mode 3, a font in plane 2, characters, cursor, blink. */
	s.n = 0;
	put8(&s, 3);
	s_vga_mode(&s, 0x67, sr3, cr3, ar3, gr3);
	s_reg(&s, 0, 2, 0x04);			/* plane 2: the font */
	s_reg(&s, 0, 4, 0x07);
	s_reg(&s, 1, 4, 0x02);
	s_reg(&s, 1, 5, 0x00);
	s_reg(&s, 1, 6, 0x04);
	s_fill(&s, 0x0000, 4096, 0x18);
	s_vga_mode(&s, 0x67, sr3, cr3, ar3, gr3);
	s_fill(&s, 0x18000, 4000, 0x41);	/* chars and attributes */
	s_reg(&s, 2, 0x0e, 0x01);
	s_reg(&s, 2, 0x0f, 0x10);
	s_reg(&s, 2, 0x0c, 0x00);
	s_reg(&s, 2, 0x0d, 0x50);
	s_op(&s, OP_RENDER);
	put8(&s, OP_CLOCK); put16(&s, 300);
	s_op(&s, OP_RENDER);
	s_op(&s, OP_SAVE);
	s_reg(&s, 2, 0x09, 0x0f);		/* 16-line cells */
	s_reg(&s, 3, 0x10, 0x04);		/* 8-dot, no blink */
	s_op(&s, OP_RENDER);
	add(s.b, s.n);

	/* Planar 640x480x16 with the write modes, then mode 0x13 and an
	 * unchained (mode X) variant, the DAC. */
	s.n = 0;
	put8(&s, 0);
	s_vga_mode(&s, 0xe3, sr12, cr12, ar12, gr12);
	s_reg(&s, 0, 2, 0x0f);
	s_reg(&s, 1, 5, 0x02);			/* write mode 2 */
	s_fill(&s, 0x0000, 8000, 0x03);
	s_reg(&s, 1, 5, 0x00);
	s_reg(&s, 1, 0, 0x0c);			/* set/reset */
	s_reg(&s, 1, 1, 0x0f);
	s_reg(&s, 1, 3, 0x18);			/* XOR, rotate 0 */
	s_fill(&s, 0x4000, 3000, 0xaa);
	s_reg(&s, 1, 5, 0x08);			/* read mode 1 */
	put8(&s, OP_WIN); put32(&s, 0x100); put8(&s, 0x80); put32(&s, 0);
	s_op(&s, OP_RENDER);
	s_vga_mode(&s, 0x63, sr13, cr13, ar13, gr13);
	for (int i = 0; i < 16; i++)
		s_reg(&s, 4, (uint8_t)(i * 16), (uint8_t)(i * 4));
	s_out(&s, 0x3c6, 0xff);
	s_fill(&s, 0x0000, 16000, 0x00);
	s_op(&s, OP_RENDER);
	s_reg(&s, 0, 4, 0x06);			/* unchained */
	s_reg(&s, 2, 0x14, 0x00);
	s_reg(&s, 2, 0x17, 0xe3);
	s_reg(&s, 0, 2, 0x0f);
	s_fill(&s, 0x0000, 16000, 0x10);
	s_reg(&s, 2, 0x0c, 0x10);		/* start address */
	s_op(&s, OP_RENDER);
	s_op(&s, OP_SAVE);
	s_out(&s, 0x3c7, 0x05);
	put8(&s, OP_IN); put8(&s, 0x19); put8(&s, 0);
	add(s.b, s.n);

	/* VBE linear modes as bochs-drm sets them (small, so that runs stay
	 * fast; the fuzzer grows them): 400x300x32, a virtual width and
	 * offsets (panning), 320x200x16 through BAR2, 8 bpp with the
	 * palette, 24 bpp, 4 bpp planar with the bank window. */
	s.n = 0;
	put8(&s, 3);
	s_dispi(&s, 0, 0xb0c5);
	s_dispi(&s, 4, 0);
	s_dispi(&s, 3, 32);
	s_dispi(&s, 1, 400);
	s_dispi(&s, 2, 300);
	s_dispi(&s, 5, 0);
	s_dispi(&s, 6, 400);
	s_dispi(&s, 8, 0);
	s_dispi(&s, 9, 0);
	s_dispi(&s, 4, 0x41);
	s_lfb_fill(&s, 0, 8192, 0x00ff8040);
	s_op(&s, OP_RENDER);
	s_dispi(&s, 6, 512);
	s_dispi(&s, 8, 16);
	s_dispi(&s, 9, 100);
	s_op(&s, OP_RENDER);
	s_op(&s, OP_SAVE);
	put8(&s, OP_MMIO); put16(&s, 0x500 + 2 * 4); put8(&s, 1); put32(&s, 0);
	put8(&s, OP_MMIO); put16(&s, 0x500 + 2 * 1); put8(&s, 2);
	put32(&s, 320 | 200u << 16);
	put8(&s, OP_MMIO); put16(&s, 0x500 + 2 * 3); put8(&s, 1); put32(&s, 16);
	put8(&s, OP_MMIO); put16(&s, 0x500 + 2 * 4); put8(&s, 1); put32(&s, 0x41);
	put8(&s, OP_MMIO); put16(&s, 0x400 + 8); put8(&s, 0); put32(&s, 0);
	s_lfb_fill(&s, 4096, 4096, 0x12345678);
	s_op(&s, OP_RENDER);
	s_dispi(&s, 4, 0);
	s_dispi(&s, 3, 8);
	s_dispi(&s, 1, 320);
	s_dispi(&s, 2, 240);
	s_dispi(&s, 4, 0x61);			/* LFB, 8-bit DAC */
	s_reg(&s, 4, 7, 0xff);
	s_lfb_fill(&s, 0, 2000, 0x07070707);
	s_op(&s, OP_RENDER);
	s_dispi(&s, 4, 0);
	s_dispi(&s, 3, 24);
	s_dispi(&s, 4, 0xc1);			/* no clear */
	s_op(&s, OP_RENDER);
	s_dispi(&s, 4, 0);
	s_dispi(&s, 3, 4);
	s_dispi(&s, 1, 320);
	s_dispi(&s, 2, 200);
	s_dispi(&s, 4, 0x01);
	s_dispi(&s, 5, 2);
	s_reg(&s, 0, 2, 0x0f);
	s_fill(&s, 0, 16000, 0x5a);
	s_op(&s, OP_RENDER);
	s_dispi(&s, 4, 0x02);			/* GETCAPS */
	put8(&s, OP_DISPI_R); put8(&s, 1);
	s_op(&s, OP_SAVE);
	add(s.b, s.n);

	/* Hostile: the largest mode in the smallest VRAM, offsets past the
	 * end, odd strides, BARs moved and off, a reset mid-mode. */
	s.n = 0;
	put8(&s, 0);
	s_dispi(&s, 3, 32);
	s_dispi(&s, 1, 2560);
	s_dispi(&s, 2, 1600);
	s_dispi(&s, 4, 0x41);
	s_dispi(&s, 3, 8);
	s_dispi(&s, 1, 2560);
	s_dispi(&s, 2, 1600);
	s_dispi(&s, 4, 0x41);
	s_dispi(&s, 6, 0xffff);
	s_dispi(&s, 9, 0xffff);
	s_dispi(&s, 8, 0xffff);
	s_dispi(&s, 5, 0xffff);
	s_op(&s, OP_RENDER);
	s_dispi(&s, 1, 0);
	s_dispi(&s, 3, 15);
	s_dispi(&s, 1, 1);
	s_dispi(&s, 2, 1);
	s_op(&s, OP_RENDER);
	put8(&s, OP_CFG); put8(&s, 0); put32(&s, 2);
	s_lfb_fill(&s, 0, 100, 0);
	put8(&s, OP_CFG); put8(&s, 0); put32(&s, 1);
	put8(&s, OP_CFG); put8(&s, 2); put32(&s, 0);
	s_op(&s, OP_RENDER);
	s_dispi(&s, 4, 0);
	s_reg(&s, 2, 0x09, 0xff);
	s_reg(&s, 2, 0x01, 0xff);
	s_reg(&s, 2, 0x12, 0xff);
	s_reg(&s, 2, 0x07, 0xff);
	s_reg(&s, 2, 0x13, 0xff);
	s_reg(&s, 2, 0x0c, 0xff);
	s_reg(&s, 2, 0x0d, 0xff);
	s_op(&s, OP_RENDER);
	s_reg(&s, 1, 6, 0x01);
	s_op(&s, OP_RENDER);
	s_op(&s, OP_RESET);
	s_op(&s, OP_SAVE);
	add(s.b, s.n);
}
