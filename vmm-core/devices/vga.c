/* SPDX-License-Identifier: MIT */
/*
 * The standard VGA with the Bochs VBE (DISPI) extensions: see vga.h.
 * Register semantics from the VGA hardware references (FreeVGA: sequencer,
 * graphics controller, attribute controller, CRTC, DAC) and the Bochs
 * "VBE Display API" document; what the firmware and drivers actually
 * program from SeaBIOS's vgasrc/ (stdvga.c, stdvgamodes.c, bochsvga.c)
 * and Linux's bochs-drm.
 *
 * VRAM layout.  The four 8-bit planes are interleaved: byte @p of plane
 * offset @o lives at vram[4 * o + p], so one 32-bit load gives the four
 * plane bytes the latches hold.  Host addresses reach plane offsets as:
 *   chain-4 (SR04 bit 3):        plane A & 3, offset A >> 2 (= vram[A]);
 *   odd/even (SR04 bit 2 clear): plane A & 1 (| 2 for maps 2/3), offset
 *                                A >> 1;
 *   planar:                      offset A, planes from the map mask.
 * The CRTC's address counter then counts plane offsets in every mode, so
 * 256-colour chained and unchained modes, VBE packed modes and the VBE
 * bank window are all plain linear VRAM.
 *
 * Redraw tracking: a software bitmap of 4 KiB VRAM pages written through
 * the legacy window or the BAR0 bus ops, OR'd with KVM's dirty log of the
 * BAR0 memory slot, decides which scanlines to redraw; anything else that
 * changes the picture (mode, palette, start address) is caught by
 * comparing a snapshot of the display parameters (struct vga_mode) with
 * the previous frame's and redrawing everything.  Text modes keep a shadow
 * of what each cell shows (char, attribute, blink, cursor) instead.
 */
#include "vga.h"

#include <errno.h>
#include <glib.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../bus.h"
#include "../clock.h"
#include "../display/console.h"
#include "../log.h"
#include "pci.h"

/* ---- constants ----------------------------------------------------------- */

#define VGA_PORT_BASE	0x3b0
#define VGA_PORT_LEN	0x30		/* 0x3b0-0x3df */
#define DISPI_PORT_BASE	0x1ce
#define DISPI_PORT_LEN	4		/* index 0x1ce, data 0x1cf (0x1d0) */
#define WINDOW_BASE	0xa0000
#define WINDOW_LEN	0x20000
#define MMIO_BAR_SIZE	4096
#define MMIO_VGA_PORTS	0x400		/* + (port - 0x3c0), 0x3c0-0x3df */
#define MMIO_DISPI	0x500		/* + 2 * index */

#define PAGE_SHIFT	12

/* Bochs VBE DISPI registers and ENABLE bits (vbe_display_api.txt). */
enum {
	DISPI_ID, DISPI_XRES, DISPI_YRES, DISPI_BPP, DISPI_ENABLE, DISPI_BANK,
	DISPI_VIRT_WIDTH, DISPI_VIRT_HEIGHT, DISPI_X_OFFSET, DISPI_Y_OFFSET,
	DISPI_VIDEO_MEMORY_64K, DISPI_NREGS
};
#define DISPI_ID0		0xb0c0
#define DISPI_ID5		0xb0c5
#define DISPI_ENABLED		0x01
#define DISPI_GETCAPS		0x02
#define DISPI_8BIT_DAC		0x20
#define DISPI_LFB_ENABLED	0x40
#define DISPI_NOCLEARMEM	0x80
#define DISPI_MAX_XRES		2560
#define DISPI_MAX_YRES		1600
#define DISPI_MAX_BPP		32

/* What the display shows. */
enum vga_kind {
	KIND_BLANK,		/* screen off: black */
	KIND_TEXT,		/* alphanumeric (GR06 bit 0 clear) */
	KIND_PLANAR,		/* 16 colours, 1 bit per plane */
	KIND_CGA,		/* 4 colours, shift register interleave */
	KIND_256,		/* 256 colours, 8 bits per pixel */
	KIND_VBE,		/* DISPI enabled, packed or (bpp 4) planar */
};

/*
 * Everything the picture depends on apart from VRAM contents (and, in
 * text mode, the cursor position and blink phase, which the cell shadow
 * tracks).  Filled from a zeroed struct so memcmp() compares frames.
 */
struct vga_mode {
	int kind;
	unsigned w, h;			/* pixels as displayed */
	uint32_t start;			/* plane offset of the first row */
	uint32_t stride;		/* plane offsets from row to row */
	/* text */
	unsigned cols, rows, cw, ch;	/* cell width 8/9, height 1-32 */
	unsigned xrep, yrep;		/* pixel / scanline doubling */
	uint32_t font_a, font_b;	/* plane-2 offsets of the char maps */
	bool blink, lgraph;		/* AR10 bits 3 and 2 */
	unsigned cur_start, cur_end;	/* cursor scanlines; start > end: off */
	/* VGA graphics */
	unsigned ncnt;			/* plane offsets read per line */
	unsigned scan_rows;		/* scanlines per row (CR09 + 1) */
	unsigned dbl;			/* 1: CR09 double scan */
	int sub13, sub14;		/* CGA row-scan address bits, -1: none */
	unsigned px_w;			/* displayed pixels per content pixel */
	/* VBE */
	unsigned bpp;
	uint64_t vbe_start, vbe_line;	/* VRAM bytes */
	uint32_t pal16[16];		/* through AR, colour plane enable */
	uint32_t pal256[256];		/* DAC through the PEL mask */
};

struct vga {
	struct vga_config cfg;
	const struct vclock *clock;
	uint8_t *vram;
	size_t vram_size;
	uint32_t plane_mask;		/* vram_size / 4 - 1 */
	struct pci_device pci;
	struct bus *pio, *mmio;
	bool pio_attached, mmio_attached, dispi_attached;
	uint64_t slot_gpa;		/* BAR0 memory slot, or UNMAPPED */

	/* Legacy VGA registers. */
	uint8_t misc, feature, vse;
	uint8_t sr_index, sr[8];
	uint8_t gr_index, gr[16];
	uint8_t cr_index, cr[32];
	uint8_t ar_index;		/* with bit 5: palette address source */
	bool ar_data;			/* flip-flop: next 0x3c0 write is data */
	uint8_t ar[0x15];
	uint8_t pel_mask;
	uint8_t dac[256][3];		/* as written (6 or 8 significant bits) */
	uint8_t dac_rd, dac_wr, dac_sub;
	uint8_t dac_in[3];
	bool dac_reading;		/* last index write was 0x3c7 */
	uint8_t st01;			/* retrace toggle of input status 1 */
	uint32_t latch;

	/* Bochs VBE. */
	uint16_t dispi_index;
	uint16_t dispi[DISPI_NREGS];

	/* Redraw tracking. */
	uint64_t *dirty;		/* one bit per 4 KiB VRAM page */
	uint64_t *kvm_dirty;
	size_t dirty_words;
	unsigned font_gen;		/* bumped by writes that reach plane 2 */
	struct vga_mode last;
	bool have_last;
	uint32_t *shadow;		/* text cells as drawn */
	size_t shadow_n;
	unsigned shadow_font_gen;
	uint32_t linebuf[4096];		/* one content line of graphics */
};

static const uint32_t plane_bytes[16] = {
	0x00000000, 0x000000ff, 0x0000ff00, 0x0000ffff,
	0x00ff0000, 0x00ff00ff, 0x00ffff00, 0x00ffffff,
	0xff000000, 0xff0000ff, 0xff00ff00, 0xff00ffff,
	0xffff0000, 0xffff00ff, 0xffffff00, 0xffffffff,
};

/* ---- VRAM and dirty pages ------------------------------------------------ */

static inline uint32_t vram32(const struct vga *v, uint32_t off)
{
	uint32_t x;

	memcpy(&x, v->vram + (size_t)(off & v->plane_mask) * 4, 4);
	return x;
}

static void mark_dirty(struct vga *v, size_t byte)
{
	size_t page = byte >> PAGE_SHIFT;

	if (page < v->dirty_words * 64)
		v->dirty[page / 64] |= 1ull << (page % 64);
}

static void mark_dirty_range(struct vga *v, size_t lo, size_t len)
{
	if (!len)
		return;
	for (size_t p = lo >> PAGE_SHIFT; p <= (lo + len - 1) >> PAGE_SHIFT &&
	     p < v->dirty_words * 64; p++)
		v->dirty[p / 64] |= 1ull << (p % 64);
}

/* Any page of VRAM bytes [lo, hi) dirty?  Ranges past the end count. */
static bool range_dirty(const struct vga *v, uint64_t lo, uint64_t hi)
{
	if (hi <= lo)
		return false;
	if (hi > v->vram_size)
		return true;
	for (uint64_t p = lo >> PAGE_SHIFT; p <= (hi - 1) >> PAGE_SHIFT; p++)
		if (v->dirty[p / 64] & (1ull << (p % 64)))
			return true;
	return false;
}

/* ---- the memory window (0xa0000-0xbffff) ------------------------------- */

static inline uint8_t ror8(uint8_t x, unsigned n)
{
	n &= 7;
	return n ? (uint8_t)((x >> n) | (x << (8 - n))) : x;
}

static inline uint32_t rep4(uint8_t b)
{
	return b * 0x01010101u;
}

/* A host byte write through the graphics controller (FreeVGA: "Graphics
 * Controller": write modes 0-3, set/reset, rotate, logical ops, bit mask)
 * at address @a of the planar memory. */
static void planar_write(struct vga *v, uint32_t a, uint8_t val)
{
	uint32_t off, d, mask, m;
	unsigned pm, mode = v->gr[5] & 3, op = (v->gr[3] >> 3) & 3;
	uint8_t *p;

	if (v->sr[4] & 0x08) {			/* chain-4 */
		off = a >> 2;
		pm = 1u << (a & 3);
	} else if (!(v->sr[4] & 0x04)) {	/* odd/even */
		off = a >> 1;
		pm = (a & 1) ? 0xa : 0x5;
	} else {
		off = a;
		pm = 0xf;
	}
	pm &= v->sr[2] & 0xf;
	if (!pm || off > v->plane_mask)
		return;
	mask = rep4(v->gr[8]);
	switch (mode) {
	case 0: {
		uint32_t en = plane_bytes[v->gr[1] & 0xf];

		d = rep4(ror8(val, v->gr[3]));
		d = (d & ~en) | (plane_bytes[v->gr[0] & 0xf] & en);
		break;
	}
	case 1:
		d = v->latch;
		break;
	case 2:
		d = plane_bytes[val & 0xf];
		break;
	default:
		mask &= rep4(ror8(val, v->gr[3]));
		d = plane_bytes[v->gr[0] & 0xf];
		break;
	}
	if (mode != 1) {
		if (op == 1)
			d &= v->latch;
		else if (op == 2)
			d |= v->latch;
		else if (op == 3)
			d ^= v->latch;
		d = (d & mask) | (v->latch & ~mask);
	}
	m = plane_bytes[pm];
	p = v->vram + (size_t)off * 4;
	{
		uint32_t old;

		memcpy(&old, p, 4);
		old = (old & ~m) | (d & m);
		memcpy(p, &old, 4);
	}
	mark_dirty(v, (size_t)off * 4);
	if (pm & 4)
		v->font_gen++;
}

/* A host byte read: loads the latches; read mode 0 or 1 (colour compare). */
static uint8_t planar_read(struct vga *v, uint32_t a)
{
	uint32_t off, x;
	unsigned plane;

	if (v->sr[4] & 0x08) {
		off = a >> 2;
		plane = a & 3;
	} else if (v->gr[5] & 0x10) {
		off = a >> 1;
		plane = (v->gr[4] & 2) | (a & 1);
	} else {
		off = a;
		plane = v->gr[4] & 3;
	}
	if (off > v->plane_mask)
		return 0xff;
	v->latch = vram32(v, off);
	if (!(v->gr[5] & 0x08))
		return (uint8_t)(v->latch >> (8 * plane));
	x = (v->latch ^ plane_bytes[v->gr[2] & 0xf]) &
	    plane_bytes[v->gr[7] & 0xf];
	x |= x >> 16;
	x |= x >> 8;
	return (uint8_t)~x;
}

static bool vbe_enabled(const struct vga *v)
{
	return v->dispi[DISPI_ENABLE] & DISPI_ENABLED;
}

/* Window offset -> address behind it.  *direct: plain VRAM byte (VBE
 * packed modes' bank); else an address for the planar logic. */
static bool window_decode(const struct vga *v, uint64_t off, uint32_t *a,
			  bool *direct)
{
	uint32_t base, len;

	if (vbe_enabled(v)) {
		if (off >= 0x10000)
			return false;
		*a = (uint32_t)v->dispi[DISPI_BANK] * 0x10000 + (uint32_t)off;
		*direct = v->dispi[DISPI_BPP] != 4;
		return true;
	}
	switch ((v->gr[6] >> 2) & 3) {
	case 0: base = 0; len = 0x20000; break;
	case 1: base = 0; len = 0x10000; break;
	case 2: base = 0x10000; len = 0x8000; break;
	default: base = 0x18000; len = 0x8000; break;
	}
	if (off < base || off - base >= len)
		return false;
	*a = (uint32_t)(off - base);
	*direct = false;
	return true;
}

static uint8_t window_read_byte(struct vga *v, uint64_t off)
{
	uint32_t a;
	bool direct;

	if (!window_decode(v, off, &a, &direct))
		return 0xff;
	if (direct)
		return a < v->vram_size ? v->vram[a] : 0xff;
	return planar_read(v, a);
}

static void window_write_byte(struct vga *v, uint64_t off, uint8_t val)
{
	uint32_t a;
	bool direct;

	if (!window_decode(v, off, &a, &direct))
		return;
	if (direct) {
		if (a < v->vram_size) {
			v->vram[a] = val;
			mark_dirty(v, a);
		}
		return;
	}
	planar_write(v, a, val);
}

static uint64_t window_read(void *opaque, uint64_t offset, unsigned size)
{
	uint64_t r = 0;

	for (unsigned i = 0; i < size && i < 8; i++)
		r |= (uint64_t)window_read_byte(opaque, offset + i) << (8 * i);
	return r;
}

static void window_write(void *opaque, uint64_t offset, uint64_t value,
			 unsigned size)
{
	for (unsigned i = 0; i < size && i < 8; i++)
		window_write_byte(opaque, offset + i, (uint8_t)(value >> (8 * i)));
}

static const struct bus_ops window_ops = {
	.name = "vga-window", .read = window_read, .write = window_write,
};

/* ---- BAR0 through the bus (no VM: unit tests) ---------------------------- */

static uint64_t vram_bar_read(void *opaque, uint64_t offset, unsigned size)
{
	struct vga *v = opaque;
	uint64_t r = 0;

	if (size > 8 || offset > v->vram_size || size > v->vram_size - offset)
		return ~0ull;
	memcpy(&r, v->vram + offset, size);
	return r;
}

static void vram_bar_write(void *opaque, uint64_t offset, uint64_t value,
			   unsigned size)
{
	struct vga *v = opaque;

	if (size > 8 || offset > v->vram_size || size > v->vram_size - offset)
		return;
	memcpy(v->vram + offset, &value, size);
	mark_dirty_range(v, offset, size);
	v->font_gen++;
}

static const struct bus_ops vram_bar_ops = {
	.name = "vga-vram", .read = vram_bar_read, .write = vram_bar_write,
};

/* BAR0 with a memory slot: the VRAM mapped through cfg.vram_slot,
 * dirty-logged. */
static void vram_bar_map(struct pci_device *dev, unsigned bar, uint64_t addr)
{
	struct vga *v = dev->opaque;
	const struct mem_slot *slot = &v->cfg.vram_slot;
	int r;

	(void)bar;
	if (v->slot_gpa != PCI_BAR_UNMAPPED) {
		r = slot->ops->unmap(slot->opaque, v->slot_gpa);
		if (r < 0)
			vlog(LOG_WARN, "VGA: removing the VRAM slot at 0x%llx failed: %s",
			     (unsigned long long)v->slot_gpa, strerror(-r));
		v->slot_gpa = PCI_BAR_UNMAPPED;
	}
	if (addr == PCI_BAR_UNMAPPED)
		return;
	r = slot->ops->map(slot->opaque, addr, v->vram_size, v->vram, true);
	if (r < 0) {
		vlog_ratelimited(LOG_WARN, "VGA: mapping the VRAM at 0x%llx failed: %s",
				 (unsigned long long)addr, strerror(-r));
		return;
	}
	v->slot_gpa = addr;
	v->have_last = false;		/* the log starts empty: redraw all */
}

/* ---- DAC ----------------------------------------------------------------- */

static inline uint32_t dac_rgb(const struct vga *v, unsigned i)
{
	const uint8_t *c = v->dac[i & 0xff];

	if (v->dispi[DISPI_ENABLE] & DISPI_8BIT_DAC)
		return (uint32_t)c[0] << 16 | (uint32_t)c[1] << 8 | c[2];
	return (uint32_t)((c[0] & 0x3f) << 2 | (c[0] & 0x3f) >> 4) << 16 |
	       (uint32_t)((c[1] & 0x3f) << 2 | (c[1] & 0x3f) >> 4) << 8 |
	       (uint32_t)((c[2] & 0x3f) << 2 | (c[2] & 0x3f) >> 4);
}

static uint8_t dac_data_read(struct vga *v)
{
	uint8_t x = v->dac[v->dac_rd][v->dac_sub];

	if (!(v->dispi[DISPI_ENABLE] & DISPI_8BIT_DAC))
		x &= 0x3f;
	if (++v->dac_sub == 3) {
		v->dac_sub = 0;
		v->dac_rd++;
	}
	return x;
}

static void dac_data_write(struct vga *v, uint8_t x)
{
	v->dac_in[v->dac_sub] = x;
	if (++v->dac_sub == 3) {
		memcpy(v->dac[v->dac_wr], v->dac_in, 3);
		v->dac_sub = 0;
		v->dac_wr++;
	}
}

/* ---- VGA ports ------------------------------------------------------------ */

static bool colour_io(const struct vga *v)
{
	return v->misc & 1;
}

/* Input status #1: bit 0 display disabled, bit 3 vertical retrace.  No
 * timing is modelled; both toggle on every read so that polling loops
 * waiting for either edge end. */
static uint8_t read_st01(struct vga *v)
{
	v->ar_data = false;
	v->st01 ^= 0x09;
	return v->st01;
}

static uint8_t vga_port_read(struct vga *v, unsigned port)
{
	switch (port) {
	case 0x3c0:
		return v->ar_index;
	case 0x3c1: {
		unsigned i = v->ar_index & 0x1f;

		return i < sizeof(v->ar) ? v->ar[i] : 0;
	}
	case 0x3c2:
		return 0;			/* input status #0 */
	case 0x3c3:
		return v->vse;
	case 0x3c4:
		return v->sr_index;
	case 0x3c5:
		return v->sr_index < 5 ? v->sr[v->sr_index] : 0;
	case 0x3c6:
		return v->pel_mask;
	case 0x3c7:
		return v->dac_reading ? 0x03 : 0x00;
	case 0x3c8:
		return v->dac_wr;
	case 0x3c9:
		return dac_data_read(v);
	case 0x3ca:
		return v->feature;
	case 0x3cc:
		return v->misc;
	case 0x3ce:
		return v->gr_index;
	case 0x3cf:
		return v->gr_index < 9 ? v->gr[v->gr_index] : 0;
	case 0x3b4: case 0x3d4:
		if ((port == 0x3d4) != colour_io(v))
			return 0xff;
		return v->cr_index;
	case 0x3b5: case 0x3d5:
		if ((port == 0x3d5) != colour_io(v))
			return 0xff;
		return v->cr_index <= 0x18 ? v->cr[v->cr_index] : 0;
	case 0x3ba: case 0x3da:
		if ((port == 0x3da) != colour_io(v))
			return 0xff;
		return read_st01(v);
	default:
		return 0xff;
	}
}

/* Writable bits of SR00-SR04 and GR00-GR08. */
static const uint8_t sr_wmask[5] = { 0x03, 0x3d, 0x0f, 0x3f, 0x0e };
static const uint8_t gr_wmask[9] = {
	0x0f, 0x0f, 0x0f, 0x1f, 0x03, 0x7b, 0x0f, 0x0f, 0xff,
};

static void crtc_write(struct vga *v, uint8_t val)
{
	unsigned i = v->cr_index;

	if (i > 0x18)
		return;
	/* CR11 bit 7 protects CR00-CR07, except CR07's line compare bit. */
	if ((v->cr[0x11] & 0x80) && i <= 7) {
		if (i == 7)
			v->cr[7] = (v->cr[7] & ~0x10) | (val & 0x10);
		return;
	}
	v->cr[i] = val;
}

static void vga_port_write(struct vga *v, unsigned port, uint8_t val)
{
	switch (port) {
	case 0x3c0:
		if (!v->ar_data) {
			v->ar_index = val & 0x3f;
		} else {
			unsigned i = v->ar_index & 0x1f;

			if (i < 0x10)
				v->ar[i] = val & 0x3f;
			else if (i == 0x10)
				v->ar[i] = val & 0xef;
			else if (i == 0x11)
				v->ar[i] = val;
			else if (i < sizeof(v->ar))
				v->ar[i] = val & (i == 0x12 ? 0x3f : 0x0f);
		}
		v->ar_data = !v->ar_data;
		break;
	case 0x3c2:
		v->misc = val;
		break;
	case 0x3c3:
		v->vse = val & 1;
		break;
	case 0x3c4:
		v->sr_index = val & 7;
		break;
	case 0x3c5:
		if (v->sr_index < 5)
			v->sr[v->sr_index] = val & sr_wmask[v->sr_index];
		break;
	case 0x3c6:
		v->pel_mask = val;
		break;
	case 0x3c7:
		v->dac_rd = val;
		v->dac_sub = 0;
		v->dac_reading = true;
		break;
	case 0x3c8:
		v->dac_wr = val;
		v->dac_sub = 0;
		v->dac_reading = false;
		break;
	case 0x3c9:
		dac_data_write(v, val);
		break;
	case 0x3ce:
		v->gr_index = val & 0x0f;
		break;
	case 0x3cf:
		if (v->gr_index < 9)
			v->gr[v->gr_index] = val & gr_wmask[v->gr_index];
		break;
	case 0x3b4: case 0x3d4:
		if ((port == 0x3d4) == colour_io(v))
			v->cr_index = val & 0x3f;
		break;
	case 0x3b5: case 0x3d5:
		if ((port == 0x3d5) == colour_io(v))
			crtc_write(v, val);
		break;
	case 0x3ba: case 0x3da:
		if ((port == 0x3da) == colour_io(v))
			v->feature = val & 0x03;
		break;
	default:
		break;
	}
}

/* Wider accesses are consecutive byte ports (outw 0x3c4 = index, data). */
static uint64_t ports_read(struct vga *v, unsigned port, unsigned size)
{
	uint64_t r = 0;

	for (unsigned i = 0; i < size && i < 8; i++)
		r |= (uint64_t)vga_port_read(v, port + i) << (8 * i);
	return r;
}

static void ports_write(struct vga *v, unsigned port, uint64_t value,
			unsigned size)
{
	for (unsigned i = 0; i < size && i < 8; i++)
		vga_port_write(v, port + i, (uint8_t)(value >> (8 * i)));
}

static uint64_t vga_pio_read(void *opaque, uint64_t offset, unsigned size)
{
	return ports_read(opaque, VGA_PORT_BASE + (unsigned)offset, size);
}

static void vga_pio_write(void *opaque, uint64_t offset, uint64_t value,
			  unsigned size)
{
	ports_write(opaque, VGA_PORT_BASE + (unsigned)offset, value, size);
}

static const struct bus_ops vga_pio_ops = {
	.name = "vga", .read = vga_pio_read, .write = vga_pio_write,
};

/* ---- Bochs VBE (DISPI) --------------------------------------------------- */

static bool dispi_bpp_ok(unsigned bpp)
{
	return bpp == 4 || bpp == 8 || bpp == 15 || bpp == 16 || bpp == 24 ||
	       bpp == 32;
}

/* VRAM bytes of @pixels pixels at @bpp (planar 4 bpp: 4 planes x 1 bit). */
static uint64_t dispi_bytes(uint64_t pixels, unsigned bpp)
{
	return bpp == 4 ? pixels / 2 : pixels * ((bpp + 7) / 8);
}

/* Does this mode with this virtual width and these offsets fit in VRAM? */
static bool dispi_fits(const struct vga *v, unsigned xres, unsigned yres,
		       unsigned bpp, unsigned vw, unsigned xoff, unsigned yoff)
{
	uint64_t line, start, end;

	if (!xres || !yres || xres > DISPI_MAX_XRES || yres > DISPI_MAX_YRES ||
	    !dispi_bpp_ok(bpp) || vw < xres || (uint64_t)xoff + xres > vw)
		return false;
	if (bpp == 4 && ((xres | vw | xoff) & 7))
		return false;
	line = dispi_bytes(vw, bpp);
	start = (uint64_t)yoff * line + dispi_bytes(xoff, bpp);
	end = start + (uint64_t)(yres - 1) * line + dispi_bytes(xres, bpp);
	return end <= v->vram_size;
}

static uint16_t dispi_virt_height(const struct vga *v)
{
	uint64_t line = dispi_bytes(v->dispi[DISPI_VIRT_WIDTH],
				    v->dispi[DISPI_BPP]);
	uint64_t h;

	if (!line)
		return 0;
	h = v->vram_size / line;
	return h > 0xffff ? 0xffff : (uint16_t)h;
}

static uint16_t dispi_read(struct vga *v, unsigned index)
{
	bool caps = v->dispi[DISPI_ENABLE] & DISPI_GETCAPS;

	switch (index) {
	case DISPI_XRES:
		return caps ? DISPI_MAX_XRES : v->dispi[index];
	case DISPI_YRES:
		return caps ? DISPI_MAX_YRES : v->dispi[index];
	case DISPI_BPP:
		return caps ? DISPI_MAX_BPP : v->dispi[index];
	case DISPI_VIRT_HEIGHT:
		return dispi_virt_height(v);
	case DISPI_VIDEO_MEMORY_64K:
		return (uint16_t)(v->vram_size >> 16);
	default:
		return index < DISPI_NREGS ? v->dispi[index] : 0;
	}
}

static void dispi_reject(unsigned index, unsigned val)
{
	vlog_ratelimited(LOG_WARN, "VGA: DISPI register %u: value %u rejected",
			 index, val);
}

static void dispi_enable(struct vga *v, uint16_t val)
{
	uint16_t *r = v->dispi;
	uint16_t nv = val & (DISPI_ENABLED | DISPI_GETCAPS | DISPI_8BIT_DAC |
			     DISPI_LFB_ENABLED | DISPI_NOCLEARMEM);

	if ((nv & DISPI_ENABLED) && !(r[DISPI_ENABLE] & DISPI_ENABLED)) {
		if (!dispi_fits(v, r[DISPI_XRES], r[DISPI_YRES], r[DISPI_BPP],
				r[DISPI_XRES], 0, 0)) {
			vlog_ratelimited(LOG_WARN, "VGA: DISPI mode %ux%ux%u does not fit; stays disabled",
					 r[DISPI_XRES], r[DISPI_YRES],
					 r[DISPI_BPP]);
			nv &= ~DISPI_ENABLED;
		} else {
			r[DISPI_VIRT_WIDTH] = r[DISPI_XRES];
			r[DISPI_X_OFFSET] = r[DISPI_Y_OFFSET] = 0;
			if (!(nv & DISPI_NOCLEARMEM)) {
				size_t n = dispi_bytes((uint64_t)r[DISPI_XRES] *
						       r[DISPI_YRES],
						       r[DISPI_BPP]);

				memset(v->vram, 0, n);
				mark_dirty_range(v, 0, n);
			}
		}
	}
	r[DISPI_ENABLE] = nv;
}

/* XRES/YRES/BPP changed while enabled (SeaBIOS's state restore does
 * this): taken if the new mode fits, keeping the virtual width and offsets
 * if it can. */
static void dispi_set_live_mode(struct vga *v, unsigned index, uint16_t val)
{
	uint16_t *r = v->dispi;
	unsigned x = index == DISPI_XRES ? val : r[DISPI_XRES];
	unsigned y = index == DISPI_YRES ? val : r[DISPI_YRES];
	unsigned bpp = index == DISPI_BPP ? val : r[DISPI_BPP];
	unsigned vw = r[DISPI_VIRT_WIDTH] < x ? x : r[DISPI_VIRT_WIDTH];

	if (dispi_fits(v, x, y, bpp, vw, r[DISPI_X_OFFSET], r[DISPI_Y_OFFSET])) {
		r[DISPI_VIRT_WIDTH] = (uint16_t)vw;
	} else if (dispi_fits(v, x, y, bpp, x, 0, 0)) {
		r[DISPI_VIRT_WIDTH] = (uint16_t)x;
		r[DISPI_X_OFFSET] = r[DISPI_Y_OFFSET] = 0;
	} else {
		dispi_reject(index, val);
		return;
	}
	r[index] = val;
}

static void dispi_write(struct vga *v, unsigned index, uint16_t val)
{
	uint16_t *r = v->dispi;
	bool on = vbe_enabled(v);

	switch (index) {
	case DISPI_ID:
		if (val >= DISPI_ID0 && val <= DISPI_ID5)
			r[index] = val;
		else
			dispi_reject(index, val);
		break;
	case DISPI_XRES:
	case DISPI_YRES:
	case DISPI_BPP:
		if ((index == DISPI_XRES && val > DISPI_MAX_XRES) ||
		    (index == DISPI_YRES && val > DISPI_MAX_YRES) ||
		    (index == DISPI_BPP && !dispi_bpp_ok(val)))
			dispi_reject(index, val);
		else if (!on)
			r[index] = val;
		else
			dispi_set_live_mode(v, index, val);
		break;
	case DISPI_ENABLE:
		dispi_enable(v, val);
		break;
	case DISPI_BANK:
		if ((uint64_t)val << 16 < v->vram_size)
			r[index] = val;
		else
			dispi_reject(index, val);
		break;
	case DISPI_VIRT_WIDTH:
		if (!on) {
			r[index] = val;
		} else if (dispi_fits(v, r[DISPI_XRES], r[DISPI_YRES],
				      r[DISPI_BPP], val, r[DISPI_X_OFFSET],
				      r[DISPI_Y_OFFSET])) {
			r[index] = val;
		} else if (dispi_fits(v, r[DISPI_XRES], r[DISPI_YRES],
				      r[DISPI_BPP], val, 0, 0)) {
			r[index] = val;
			r[DISPI_X_OFFSET] = r[DISPI_Y_OFFSET] = 0;
		} else {
			dispi_reject(index, val);
		}
		break;
	case DISPI_X_OFFSET:
	case DISPI_Y_OFFSET:
		if (!on ||
		    dispi_fits(v, r[DISPI_XRES], r[DISPI_YRES], r[DISPI_BPP],
			       r[DISPI_VIRT_WIDTH],
			       index == DISPI_X_OFFSET ? val : r[DISPI_X_OFFSET],
			       index == DISPI_Y_OFFSET ? val : r[DISPI_Y_OFFSET]))
			r[index] = val;
		else
			dispi_reject(index, val);
		break;
	default:			/* VIRT_HEIGHT, memory size: derived */
		break;
	}
}

static uint64_t dispi_pio_read(void *opaque, uint64_t offset, unsigned size)
{
	struct vga *v = opaque;
	uint16_t x = offset == 0 ? v->dispi_index
				 : dispi_read(v, v->dispi_index);

	return size == 1 ? (uint8_t)x : x;
}

static void dispi_pio_write(void *opaque, uint64_t offset, uint64_t value,
			    unsigned size)
{
	struct vga *v = opaque;

	(void)size;
	if (offset == 0)
		v->dispi_index = (uint16_t)value;
	else if (offset <= 2)
		dispi_write(v, v->dispi_index, (uint16_t)value);
}

static const struct bus_ops dispi_pio_ops = {
	.name = "vga-dispi", .read = dispi_pio_read, .write = dispi_pio_write,
};

/* ---- BAR2: VGA ports and DISPI registers as MMIO (bochs-drm) ------------ */

static uint64_t mmio_bar_read(void *opaque, uint64_t offset, unsigned size)
{
	struct vga *v = opaque;

	if (offset >= MMIO_VGA_PORTS && offset + size <= MMIO_VGA_PORTS + 0x20)
		return ports_read(v, 0x3c0 + (unsigned)(offset - MMIO_VGA_PORTS),
				  size);
	if (offset >= MMIO_DISPI && offset + size <= MMIO_DISPI + 2 * DISPI_NREGS) {
		unsigned i = (unsigned)(offset - MMIO_DISPI) / 2;
		uint64_t x = dispi_read(v, i);

		if (size == 1)
			return (uint8_t)(x >> (8 * (offset & 1)));
		if (size == 4 && !(offset & 1) && i + 1 < DISPI_NREGS)
			x |= (uint64_t)dispi_read(v, i + 1) << 16;
		return x;
	}
	return 0;	/* EDID block (absent) and the rest: zeros */
}

static void mmio_bar_write(void *opaque, uint64_t offset, uint64_t value,
			   unsigned size)
{
	struct vga *v = opaque;

	if (offset >= MMIO_VGA_PORTS && offset + size <= MMIO_VGA_PORTS + 0x20) {
		ports_write(v, 0x3c0 + (unsigned)(offset - MMIO_VGA_PORTS), value,
			    size);
		return;
	}
	if (offset >= MMIO_DISPI && offset + size <= MMIO_DISPI + 2 * DISPI_NREGS &&
	    !(offset & 1) && size >= 2) {
		unsigned i = (unsigned)(offset - MMIO_DISPI) / 2;

		dispi_write(v, i, (uint16_t)value);
		if (size == 4 && i + 1 < DISPI_NREGS)
			dispi_write(v, i + 1, (uint16_t)(value >> 16));
	}
}

static const struct bus_ops mmio_bar_ops = {
	.name = "vga-mmio", .read = mmio_bar_read, .write = mmio_bar_write,
};

/* ---- life cycle ------------------------------------------------------------ */

/* Mode 3's registers, so that the adapter shows 80x25 text before any
 * BIOS runs (values per the IBM VGA mode table, as in SeaBIOS). */
static const uint8_t reset_sr[5] = { 0x03, 0x00, 0x03, 0x00, 0x02 };
static const uint8_t reset_gr[9] = {
	0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0e, 0x0f, 0xff,
};
static const uint8_t reset_cr[25] = {
	0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f,
	0x00, 0x4f, 0x0d, 0x0e, 0x00, 0x00, 0x00, 0x00,
	0x9c, 0x8e, 0x8f, 0x28, 0x1f, 0x96, 0xb9, 0xa3, 0xff,
};
static const uint8_t reset_ar[0x15] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07,
	0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f,
	0x0c, 0x00, 0x0f, 0x08, 0x00,
};

void vga_reset(struct vga *v)
{
	v->misc = 0x67;
	v->feature = 0;
	v->vse = 1;
	v->sr_index = v->gr_index = v->cr_index = 0;
	memset(v->sr, 0, sizeof(v->sr));
	memset(v->gr, 0, sizeof(v->gr));
	memset(v->cr, 0, sizeof(v->cr));
	memcpy(v->sr, reset_sr, sizeof(reset_sr));
	memcpy(v->gr, reset_gr, sizeof(reset_gr));
	memcpy(v->cr, reset_cr, sizeof(reset_cr));
	memcpy(v->ar, reset_ar, sizeof(reset_ar));
	v->ar_index = 0x20;
	v->ar_data = false;
	v->pel_mask = 0xff;
	memset(v->dac, 0, sizeof(v->dac));
	/* The EGA 64-colour palette: bits 0-2 blue/green/red at 2/3
	 * intensity, bits 3-5 the same at 1/3. */
	for (unsigned i = 0; i < 64; i++) {
		v->dac[i][0] = (uint8_t)((i & 4 ? 0x2a : 0) + (i & 32 ? 0x15 : 0));
		v->dac[i][1] = (uint8_t)((i & 2 ? 0x2a : 0) + (i & 16 ? 0x15 : 0));
		v->dac[i][2] = (uint8_t)((i & 1 ? 0x2a : 0) + (i & 8 ? 0x15 : 0));
	}
	v->dac_rd = v->dac_wr = v->dac_sub = 0;
	v->dac_reading = false;
	v->st01 = 0;
	v->latch = 0;
	v->dispi_index = 0;
	memset(v->dispi, 0, sizeof(v->dispi));
	v->dispi[DISPI_ID] = DISPI_ID5;
	/* Zeroes the anonymous mapping and gives its pages back. */
	if (madvise(v->vram, v->vram_size, MADV_DONTNEED) < 0)
		memset(v->vram, 0, v->vram_size);
	memset(v->dirty, 0xff, v->dirty_words * 8);
	v->font_gen++;
	v->have_last = false;
}

struct vga *vga_new(const struct vga_config *cfg)
{
	struct vga *v;
	size_t pages;

	if (!cfg || cfg->vram_size < (1u << 20) || cfg->vram_size > (256u << 20) ||
	    (cfg->vram_size & (cfg->vram_size - 1)) ||
	    (cfg->rom && !cfg->rom_len))
		return NULL;
	v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v->cfg = *cfg;
	v->clock = cfg->clock ? cfg->clock : &vclock_host;
	v->vram_size = cfg->vram_size;
	v->plane_mask = (uint32_t)(cfg->vram_size / 4 - 1);
	v->slot_gpa = PCI_BAR_UNMAPPED;
	v->vram = mmap(NULL, v->vram_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (v->vram == MAP_FAILED) {
		free(v);
		return NULL;
	}
	pages = v->vram_size >> PAGE_SHIFT;
	v->dirty_words = (pages + 63) / 64;
	v->dirty = calloc(v->dirty_words, 8);
	v->kvm_dirty = calloc(v->dirty_words, 8);
	if (!v->dirty || !v->kvm_dirty) {
		vga_free(v);
		return NULL;
	}
	vga_reset(v);
	return v;
}

void vga_free(struct vga *v)
{
	if (!v)
		return;
	pci_device_cleanup(&v->pci);	/* unmaps BAR0's slot */
	if (v->pio_attached)
		bus_unregister(v->pio, VGA_PORT_BASE);
	if (v->dispi_attached)
		bus_unregister(v->pio, DISPI_PORT_BASE);
	if (v->mmio_attached)
		bus_unregister(v->mmio, WINDOW_BASE);
	if (v->vram && v->vram != MAP_FAILED)
		munmap(v->vram, v->vram_size);
	free(v->dirty);
	free(v->kvm_dirty);
	free(v->shadow);
	free(v);
}

int vga_attach(struct vga *v, struct bus *pio, struct bus *mmio,
	       struct pci_host *pci, uint8_t devfn)
{
	struct pci_device *d = &v->pci;
	int r;

	v->pio = pio;
	v->mmio = mmio;
	r = bus_register(pio, VGA_PORT_BASE, VGA_PORT_LEN, &vga_pio_ops, v);
	if (r < 0)
		return r;
	v->pio_attached = true;
	r = bus_register(pio, DISPI_PORT_BASE, DISPI_PORT_LEN, &dispi_pio_ops, v);
	if (r < 0)
		return r;
	v->dispi_attached = true;
	r = bus_register(mmio, WINDOW_BASE, WINDOW_LEN, &window_ops, v);
	if (r < 0)
		return r;
	v->mmio_attached = true;

	pci_device_init(d, VGA_PCI_VENDOR, VGA_PCI_DEVICE, 2, 0x030000,
			0x1af4, 0x1100, 0);
	d->opaque = v;
	r = pci_device_set_bar(d, 0, PCI_BAR_MEM32, v->vram_size, true,
			       v->cfg.vram_slot.ops ? NULL : &vram_bar_ops, v);
	if (r < 0)
		return r;
	if (v->cfg.vram_slot.ops)
		d->bar[0].map = vram_bar_map;
	r = pci_device_set_bar(d, 2, PCI_BAR_MEM32, MMIO_BAR_SIZE, false,
			       &mmio_bar_ops, v);
	if (r < 0)
		return r;
	if (v->cfg.rom) {
		r = pci_device_set_rom(d, v->cfg.rom, v->cfg.rom_len);
		if (r < 0)
			return r;
	}
	return pci_add_device(pci, d, devfn);
}

uint8_t *vga_vram(struct vga *v)
{
	return v->vram;
}

size_t vga_vram_size(const struct vga *v)
{
	return v->vram_size;
}

/* ---- display parameters ------------------------------------------------- */

/* Palette index of 4-bit colour @c through the attribute controller. */
static unsigned ar_colour(const struct vga *v, unsigned c)
{
	unsigned x = v->ar[c & 0xf] & 0x3f;

	if (v->ar[0x10] & 0x80)
		x = (x & 0x0f) | (v->ar[0x14] & 3) << 4;
	return x | (v->ar[0x14] & 0x0c) << 4;
}

static uint32_t char_map(unsigned n)
{
	return (n & 3) * 0x4000 + (n >> 2) * 0x2000;
}

static void compute_mode(const struct vga *v, struct vga_mode *m,
			 bool ignore_blank)
{
	const uint8_t *cr = v->cr;
	unsigned vde = (cr[0x12] | (cr[7] & 0x02) << 7 | (cr[7] & 0x40) << 3) + 1;
	unsigned dots = ((unsigned)cr[1] + 1) * 8;
	bool blank;

	memset(m, 0, sizeof(*m));
	for (unsigned i = 0; i < 256; i++)
		m->pal256[i] = dac_rgb(v, i & v->pel_mask);
	for (unsigned i = 0; i < 16; i++)
		m->pal16[i] = m->pal256[ar_colour(v, i & v->ar[0x12]) &
					v->pel_mask];
	m->start = (uint32_t)cr[0x0c] << 8 | cr[0x0d];
	m->stride = (uint32_t)cr[0x13] * 2;
	m->xrep = (v->sr[1] & 0x08) ? 2 : 1;
	m->dbl = cr[9] >> 7;
	blank = !ignore_blank &&
		((v->sr[1] & 0x20) || !(v->ar_index & 0x20));

	if (vbe_enabled(v)) {
		const uint16_t *r = v->dispi;

		m->kind = KIND_VBE;
		m->bpp = r[DISPI_BPP];
		m->w = r[DISPI_XRES];
		m->h = r[DISPI_YRES];
		m->vbe_line = dispi_bytes(r[DISPI_VIRT_WIDTH], m->bpp);
		m->vbe_start = (uint64_t)r[DISPI_Y_OFFSET] * m->vbe_line +
			       dispi_bytes(r[DISPI_X_OFFSET], m->bpp);
		if (m->bpp != 8)
			memset(m->pal256, 0, sizeof(m->pal256));
		if (m->bpp != 4)
			memset(m->pal16, 0, sizeof(m->pal16));
	} else if (!(v->gr[6] & 1)) {
		unsigned sel = v->sr[3];

		m->kind = KIND_TEXT;
		m->cw = (v->sr[1] & 1) ? 8 : 9;
		m->ch = (cr[9] & 0x1f) + 1;
		m->yrep = 1u << m->dbl;
		m->cols = cr[1] + 1u;
		m->rows = vde / (m->ch * m->yrep);
		if (!m->rows)
			m->rows = 1;
		m->w = m->cols * m->cw * m->xrep;
		m->h = m->rows * m->ch * m->yrep;
		m->font_a = char_map(((sel >> 2) & 3) | ((sel >> 3) & 4));
		m->font_b = char_map((sel & 3) | ((sel >> 2) & 4));
		m->blink = v->ar[0x10] & 0x08;
		m->lgraph = v->ar[0x10] & 0x04;
		if (cr[0x0a] & 0x20) {
			m->cur_start = 1;
			m->cur_end = 0;
		} else {
			m->cur_start = cr[0x0a] & 0x1f;
			m->cur_end = cr[0x0b] & 0x1f;
		}
		memset(m->pal256, 0, sizeof(m->pal256));
	} else {
		if (v->gr[5] & 0x40) {
			m->kind = KIND_256;
			m->px_w = 2 * m->xrep;
			memset(m->pal16, 0, sizeof(m->pal16));
		} else {
			m->kind = (v->gr[5] & 0x20) ? KIND_CGA : KIND_PLANAR;
			m->px_w = m->xrep;
			memset(m->pal256, 0, sizeof(m->pal256));
		}
		m->w = dots * m->xrep;
		m->h = vde;
		m->ncnt = cr[1] + 1u;
		m->scan_rows = (cr[9] & 0x1f) + 1u;
		/* CGA compatibility: row scan bits 0/1 replace address bits
		 * 13/14 (in word mode the counter is half the address). */
		{
			bool word = !(cr[0x17] & 0x40) && !(cr[0x14] & 0x40);

			m->sub13 = (cr[0x17] & 1) ? -1 : (word ? 12 : 13);
			m->sub14 = (cr[0x17] & 2) ? -1 : (word ? 13 : 14);
		}
	}
	if (m->w > CONSOLE_MAX_WIDTH)
		m->w = CONSOLE_MAX_WIDTH;
	if (m->h > CONSOLE_MAX_HEIGHT)
		m->h = CONSOLE_MAX_HEIGHT;
	if (!m->w)
		m->w = 1;
	if (!m->h)
		m->h = 1;
	if (blank) {
		unsigned w = m->w, h = m->h;

		memset(m, 0, sizeof(*m));
		m->kind = KIND_BLANK;
		m->w = w;
		m->h = h;
	}
}

/* ---- text modes ------------------------------------------------------------ */

#define CELL_HIDDEN	(1u << 16)	/* blinking character in its off phase */
#define CELL_CURSOR	(1u << 17)

static uint64_t now_ms(const struct vga *v)
{
	return vclock_now(v->clock) / 1000000u;
}

/* Blink phase (on/off), ~2 Hz for characters and cursor alike. */
static bool blink_on(const struct vga *v)
{
	return !((now_ms(v) / 250) & 1);
}

/* The cell index of the cursor, or -1 if it is not on screen. */
static long cursor_cell(const struct vga *v, const struct vga_mode *m)
{
	uint32_t loc = (uint32_t)v->cr[0x0e] << 8 | v->cr[0x0f];
	uint32_t rel = (loc - m->start) & 0xffff, row, col;

	if (m->cur_start > m->cur_end || !m->stride)
		return -1;
	row = rel / m->stride;
	col = rel % m->stride;
	if (row >= m->rows || col >= m->cols)
		return -1;
	return (long)(row * m->cols + col);
}

static void draw_cell(struct vga *v, const struct vga_mode *m,
		      struct console_surface *s, unsigned row, unsigned col,
		      uint32_t cell)
{
	unsigned chr = cell & 0xff, attr = (cell >> 8) & 0xff;
	unsigned bgi = attr >> 4, x0 = col * m->cw * m->xrep;
	unsigned y0 = row * m->ch * m->yrep;
	uint32_t fg, bg, glyph;
	bool ninth = m->cw == 9 && m->lgraph && chr >= 0xc0 && chr <= 0xdf;

	if (m->blink)
		bgi &= 7;
	bg = m->pal16[bgi];
	fg = (cell & CELL_HIDDEN) ? bg : m->pal16[attr & 0xf];
	glyph = ((attr & 0x08) ? m->font_a : m->font_b) + chr * 32;
	for (unsigned line = 0; line < m->ch; line++) {
		unsigned bits = v->vram[(size_t)((glyph + line) & v->plane_mask) * 4 + 2];
		uint32_t px[18];
		unsigned n = 0;

		bits <<= 1;			/* bit 0: the 9th column */
		if (ninth)
			bits |= (bits >> 1) & 1;
		if ((cell & CELL_CURSOR) && line >= m->cur_start &&
		    line <= m->cur_end)
			bits = 0x1ff;
		for (unsigned x = 0; x < m->cw; x++) {
			uint32_t c = (bits >> (8 - x)) & 1 ? fg : bg;

			for (unsigned r = 0; r < m->xrep; r++)
				px[n++] = c;
		}
		if (x0 >= s->width)
			return;
		if (n > s->width - x0)
			n = s->width - x0;
		for (unsigned r = 0; r < m->yrep; r++) {
			unsigned y = y0 + line * m->yrep + r;

			if (y >= s->height)
				return;
			memcpy(s->pixels + (size_t)y * s->width + x0, px,
			       n * sizeof(uint32_t));
		}
	}
}

static void update_text(struct vga *v, const struct vga_mode *m,
			struct console *con, struct console_surface *s,
			bool full)
{
	size_t n = (size_t)m->rows * m->cols;
	bool on = blink_on(v);
	long cur = on ? cursor_cell(v, m) : -1;
	unsigned bx0 = ~0u, by0 = ~0u, bx1 = 0, by1 = 0;

	if (n != v->shadow_n) {
		uint32_t *p = realloc(v->shadow, n * sizeof(*p));

		if (!p)
			return;
		v->shadow = p;
		v->shadow_n = n;
		full = true;
	}
	if (v->font_gen != v->shadow_font_gen) {
		v->shadow_font_gen = v->font_gen;
		full = true;
	}
	for (unsigned row = 0; row < m->rows; row++) {
		for (unsigned col = 0; col < m->cols; col++) {
			size_t i = (size_t)row * m->cols + col;
			uint32_t c = vram32(v, m->start + row * m->stride + col);
			uint32_t cell = c & 0xffff;

			if (m->blink && (cell & 0x8000) && !on)
				cell |= CELL_HIDDEN;
			if ((long)i == cur)
				cell |= CELL_CURSOR;
			if (!full && v->shadow[i] == cell)
				continue;
			v->shadow[i] = cell;
			draw_cell(v, m, s, row, col, cell);
			if (col < bx0)
				bx0 = col;
			if (col + 1 > bx1)
				bx1 = col + 1;
			if (row < by0)
				by0 = row;
			by1 = row + 1;
		}
	}
	if (bx1 > bx0) {
		unsigned cwp = m->cw * m->xrep, chp = m->ch * m->yrep;

		console_dirty(con, bx0 * cwp, by0 * chp, (bx1 - bx0) * cwp,
			      (by1 - by0) * chp);
	}
}

/* CP437 -> ASCII for text(): box drawing to + - |, the rest above 0x7e
 * (and the control-code glyphs) to '?'; NUL shows as a space. */
static char cp437_ascii(unsigned c)
{
	if (c >= 0x20 && c < 0x7f)
		return (char)c;
	if (c == 0)
		return ' ';
	if (c == 0xb3 || c == 0xba)
		return '|';
	if (c == 0xc4 || c == 0xcd)
		return '-';
	if (c >= 0xb4 && c <= 0xda)
		return '+';
	return '?';
}

static int vga_text(void *opaque, char *buf, size_t len)
{
	struct vga *v = opaque;
	struct vga_mode m;
	size_t n = 0;

	if (vbe_enabled(v) || (v->gr[6] & 1))
		return -ENOTSUP;
	compute_mode(v, &m, true);	/* text even while blanked */
	if (!len)
		return 0;
	for (unsigned row = 0; row < m.rows; row++) {
		for (unsigned col = 0; col <= m.cols; col++) {
			char c = col == m.cols ? '\n' :
				 cp437_ascii(vram32(v, m.start + row * m.stride + col) & 0xff);

			if (n + 1 >= len)
				goto out;
			buf[n++] = c;
		}
	}
out:
	buf[n] = '\0';
	return (int)n;
}

/* ---- graphics modes -------------------------------------------------------- */

/* Planar bytes -> eight 4-bit pixels, pixel i in bits 4i..4i+3. */
static uint32_t expand_bits[256];
static uint32_t expand_pairs[256];	/* 2-bit pixels: 4 per byte */

static void init_tables_once(void)
{
	for (unsigned b = 0; b < 256; b++) {
		uint32_t e = 0, p = 0;

		for (unsigned i = 0; i < 8; i++)
			if (b & (0x80 >> i))
				e |= 1u << (4 * i);
		for (unsigned i = 0; i < 4; i++)
			p |= ((b >> (6 - 2 * i)) & 3u) << (8 * i);
		expand_bits[b] = e;
		expand_pairs[b] = p;
	}
}

static void init_tables(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, init_tables_once);
}

/* One line of a VGA graphics mode at plane offset @addr into @out;
 * returns the content pixels drawn. */
static unsigned render_vga_line(struct vga *v, const struct vga_mode *m,
				uint32_t addr, unsigned ncnt, uint32_t *out)
{
	unsigned n = 0, max = (unsigned)(sizeof(v->linebuf) / sizeof(v->linebuf[0]));

	for (unsigned i = 0; i < ncnt && n + 8 <= max; i++) {
		uint32_t q = vram32(v, addr + i);
		uint8_t p0 = (uint8_t)q, p1 = (uint8_t)(q >> 8);
		uint8_t p2 = (uint8_t)(q >> 16), p3 = (uint8_t)(q >> 24);

		if (m->kind == KIND_256) {
			out[n++] = m->pal256[p0];
			out[n++] = m->pal256[p1];
			out[n++] = m->pal256[p2];
			out[n++] = m->pal256[p3];
		} else if (m->kind == KIND_CGA) {
			uint32_t lo = expand_pairs[p0] | expand_pairs[p2] << 2;
			uint32_t hi = expand_pairs[p1] | expand_pairs[p3] << 2;

			for (unsigned k = 0; k < 4; k++)
				out[n++] = m->pal16[(lo >> (8 * k)) & 0xf];
			for (unsigned k = 0; k < 4; k++)
				out[n++] = m->pal16[(hi >> (8 * k)) & 0xf];
		} else {
			uint32_t e = expand_bits[p0] | expand_bits[p1] << 1 |
				     expand_bits[p2] << 2 | expand_bits[p3] << 3;

			for (unsigned k = 0; k < 8; k++)
				out[n++] = m->pal16[(e >> (4 * k)) & 0xf];
		}
	}
	return n;
}

/* Content pixels @src (@n) widened @rep times into surface row @y. */
static void put_line(struct console_surface *s, unsigned y,
		     const uint32_t *src, unsigned n, unsigned rep)
{
	uint32_t *d = s->pixels + (size_t)y * s->width;
	unsigned w = s->width;

	if (rep == 1) {
		memcpy(d, src, (n < w ? n : w) * sizeof(uint32_t));
		return;
	}
	for (unsigned i = 0, x = 0; i < n && x < w; i++)
		for (unsigned r = 0; r < rep && x < w; r++)
			d[x++] = src[i];
}

static void update_vga_graphics(struct vga *v, const struct vga_mode *m,
				struct console *con,
				struct console_surface *s, bool full)
{
	unsigned h = m->h < s->height ? m->h : s->height;
	unsigned y0 = ~0u, y1 = 0;

	for (unsigned y = 0; y < h; y++) {
		unsigned scan = y >> m->dbl;
		unsigned row = scan / m->scan_rows, rs = scan % m->scan_rows;
		uint32_t addr = m->start + row * m->stride;
		uint64_t lo;
		unsigned n;

		if (m->sub13 >= 0)
			addr = (addr & ~(1u << m->sub13)) | (rs & 1u) << m->sub13;
		if (m->sub14 >= 0)
			addr = (addr & ~(1u << m->sub14)) | (rs >> 1 & 1u) << m->sub14;
		addr &= v->plane_mask;
		lo = (uint64_t)addr * 4;
		if (!full && !range_dirty(v, lo, lo + (uint64_t)m->ncnt * 4))
			continue;
		n = render_vga_line(v, m, addr, m->ncnt, v->linebuf);
		put_line(s, y, v->linebuf, n, m->px_w);
		if (y < y0)
			y0 = y;
		y1 = y + 1;
	}
	if (y1 > y0)
		console_dirty(con, 0, y0, s->width, y1 - y0);
}

static void vbe_line(struct vga *v, const struct vga_mode *m,
		     const uint8_t *src, uint32_t *d, unsigned w)
{
	unsigned i;

	switch (m->bpp) {
	case 8:
		for (i = 0; i < w; i++)
			d[i] = m->pal256[src[i]];
		break;
	case 15:
		for (i = 0; i < w; i++) {
			unsigned p = src[2 * i] | src[2 * i + 1] << 8;
			uint32_t r = (p >> 10) & 0x1f, g = (p >> 5) & 0x1f, b = p & 0x1f;

			d[i] = (r << 3 | r >> 2) << 16 | (g << 3 | g >> 2) << 8 |
			       (b << 3 | b >> 2);
		}
		break;
	case 16:
		for (i = 0; i < w; i++) {
			unsigned p = src[2 * i] | src[2 * i + 1] << 8;
			uint32_t r = (p >> 11) & 0x1f, g = (p >> 5) & 0x3f, b = p & 0x1f;

			d[i] = (r << 3 | r >> 2) << 16 | (g << 2 | g >> 4) << 8 |
			       (b << 3 | b >> 2);
		}
		break;
	case 24:
		for (i = 0; i < w; i++)
			d[i] = (uint32_t)src[3 * i + 2] << 16 |
			       (uint32_t)src[3 * i + 1] << 8 | src[3 * i];
		break;
	case 32:
		memcpy(d, src, (size_t)w * 4);
		for (i = 0; i < w; i++)
			d[i] &= 0x00ffffff;
		break;
	default:
		break;
	}
	(void)v;
}

static void update_vbe(struct vga *v, const struct vga_mode *m,
		       struct console *con, struct console_surface *s,
		       bool full)
{
	unsigned h = m->h < s->height ? m->h : s->height;
	unsigned w = m->w < s->width ? m->w : s->width;
	uint64_t bytes = dispi_bytes(m->w, m->bpp);
	unsigned y0 = ~0u, y1 = 0;

	for (unsigned y = 0; y < h; y++) {
		uint64_t lo = m->vbe_start + (uint64_t)y * m->vbe_line;

		if (lo + bytes > v->vram_size)	/* checked at write time */
			break;
		if (!full && !range_dirty(v, lo, lo + bytes))
			continue;
		if (m->bpp == 4) {
			unsigned n = render_vga_line(v, m, (uint32_t)(lo / 4),
						     m->w / 8, v->linebuf);
			put_line(s, y, v->linebuf, n < w ? n : w, 1);
		} else {
			vbe_line(v, m, v->vram + lo,
				 s->pixels + (size_t)y * s->width, w);
		}
		if (y < y0)
			y0 = y;
		y1 = y + 1;
	}
	if (y1 > y0)
		console_dirty(con, 0, y0, s->width, y1 - y0);
}

static void vga_update(void *opaque, struct console *con, bool full)
{
	struct vga *v = opaque;
	struct vga_mode *m = malloc(sizeof(*m));
	struct console_surface *s;

	if (!m)
		return;
	init_tables();
	if (v->cfg.vram_slot.ops && v->slot_gpa != PCI_BAR_UNMAPPED &&
	    v->cfg.vram_slot.ops->get_dirty(v->cfg.vram_slot.opaque,
					    v->kvm_dirty) == 0) {
		uint64_t any = 0;

		for (size_t i = 0; i < v->dirty_words; i++) {
			v->dirty[i] |= v->kvm_dirty[i];
			any |= v->kvm_dirty[i];
		}
		if (any)
			v->font_gen++;	/* the font may have changed too */
	}
	compute_mode(v, m, false);
	s = console_surface(con);
	if (s->width != m->w || s->height != m->h) {
		console_resize(con, m->w, m->h);
		s = console_surface(con);
		full = true;
	}
	if (!v->have_last || memcmp(m, &v->last, sizeof(*m)))
		full = true;
	switch (m->kind) {
	case KIND_BLANK:
		if (full) {
			memset(s->pixels, 0, (size_t)s->stride * s->height);
			console_dirty(con, 0, 0, s->width, s->height);
		}
		v->shadow_n = 0;	/* text redraws all when it returns */
		break;
	case KIND_TEXT:
		update_text(v, m, con, s, full);
		break;
	case KIND_VBE:
		update_vbe(v, m, con, s, full);
		break;
	default:
		update_vga_graphics(v, m, con, s, full);
		break;
	}
	memset(v->dirty, 0, v->dirty_words * 8);
	v->last = *m;
	v->have_last = true;
	free(m);
}

const struct console_hw_ops vga_console_ops = {
	.update = vga_update,
	.text = vga_text,
};

/* ---- the machine's device table ---------------------------------------- */

static void vga_dev_reset(void *dev)
{
	vga_reset(dev);
}

static void vga_dev_free(void *dev)
{
	vga_free(dev);
}

/* ---- saved state (VGA_STATE_TYPE in vga.h) ------------------------------ */

#define VGA_STATE_VERSION 1u

static GVariant *bytes_v(const void *b, size_t n)
{
	return g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, b, n, 1);
}

static GVariant *vga_save(void *dev)
{
	struct vga *v = dev;

	return g_variant_new("(u(yyyy)(y@ay)(y@ay)(y@ay)(yb@ay)(y@ayyyy@ayb)u"
			     "(q@aq))",
		(guint32)v->vram_size, v->misc, v->feature, v->vse, v->st01,
		v->sr_index, bytes_v(v->sr, sizeof(v->sr)),
		v->gr_index, bytes_v(v->gr, sizeof(v->gr)),
		v->cr_index, bytes_v(v->cr, sizeof(v->cr)),
		v->ar_index, (gboolean)v->ar_data, bytes_v(v->ar, sizeof(v->ar)),
		v->pel_mask, bytes_v(v->dac, sizeof(v->dac)), v->dac_rd,
		v->dac_wr, v->dac_sub, bytes_v(v->dac_in, sizeof(v->dac_in)),
		(gboolean)v->dac_reading, (guint32)v->latch, v->dispi_index,
		g_variant_new_fixed_array(G_VARIANT_TYPE_UINT16, v->dispi,
					  DISPI_NREGS, sizeof(uint16_t)));
}

/* One line in @err, naming the device; returns -EINVAL. */
#define refuse(err, errlen, fmt, ...) \
	device_load_fail(err, errlen, "vga: " fmt, ##__VA_ARGS__)

/* Byte array @a of exactly @n bytes into @out, each byte within
 * @wmask[i] (NULL: any; past @nmask bytes: must be 0).  Returns -1 if the
 * length is wrong, else the index of the first bad byte or @n. */
static long bytes_load(GVariant *a, uint8_t *out, size_t n,
		       const uint8_t *wmask, size_t nmask)
{
	gsize len;
	const uint8_t *p = g_variant_get_fixed_array(a, &len, 1);

	if (len != n)
		return -1;
	for (size_t i = 0; wmask && i < n; i++)
		if (p[i] & ~(i < nmask ? wmask[i] : 0))
			return (long)i;
	memcpy(out, p, n);
	return (long)n;
}

/* Writable bits of AR00-AR14, as vga_port_write() stores them. */
static const uint8_t ar_wmask[0x15] = {
	0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f,
	0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f,
	0xef, 0xff, 0x3f, 0x0f, 0x0f,
};

/* Every CRTC register up to CR18 holds any value; none above. */
static const uint8_t cr_wmask[0x19] = {
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff,
};

/* A register file (index, bytes) into @idx/@regs; 0 or -EINVAL. */
static int regfile_load(GVariant *t, const char *what, uint8_t *idx,
			unsigned idx_max, uint8_t *regs, size_t n,
			const uint8_t *wmask, size_t nmask, char *err,
			size_t errlen)
{
	GVariant *a;
	long bad;

	g_variant_get(t, "(y@ay)", idx, &a);
	bad = bytes_load(a, regs, n, wmask, nmask);
	g_variant_unref(a);
	if (*idx > idx_max)
		return refuse(err, errlen, "%s index %u out of range", what,
			      *idx);
	if (bad < 0)
		return refuse(err, errlen, "%s: not %zu registers", what, n);
	if ((size_t)bad < n)
		return refuse(err, errlen, "%s register %ld: bits the adapter does not keep",
			      what, bad);
	return 0;
}

static int dispi_load(struct vga *n, GVariant *t, char *err, size_t errlen)
{
	GVariant *a;
	gsize len;
	const uint16_t *r;
	int ret = 0;

	g_variant_get(t, "(q@aq)", &n->dispi_index, &a);
	r = g_variant_get_fixed_array(a, &len, sizeof(uint16_t));
	if (len != DISPI_NREGS)
		ret = refuse(err, errlen, "%zu DISPI registers, not %u",
			     (size_t)len, DISPI_NREGS);
	else if (r[DISPI_ID] < DISPI_ID0 || r[DISPI_ID] > DISPI_ID5)
		ret = refuse(err, errlen, "DISPI ID 0x%x", r[DISPI_ID]);
	else if (r[DISPI_XRES] > DISPI_MAX_XRES || r[DISPI_YRES] > DISPI_MAX_YRES ||
		 (r[DISPI_BPP] && !dispi_bpp_ok(r[DISPI_BPP])))
		ret = refuse(err, errlen, "VBE mode %ux%ux%u not supported",
			     r[DISPI_XRES], r[DISPI_YRES], r[DISPI_BPP]);
	else if (r[DISPI_ENABLE] & ~(DISPI_ENABLED | DISPI_GETCAPS |
				     DISPI_8BIT_DAC | DISPI_LFB_ENABLED |
				     DISPI_NOCLEARMEM))
		ret = refuse(err, errlen, "DISPI enable bits 0x%x",
			     r[DISPI_ENABLE]);
	else if ((uint64_t)r[DISPI_BANK] << 16 >= n->vram_size)
		ret = refuse(err, errlen, "VBE bank %u past the VRAM",
			     r[DISPI_BANK]);
	else if (r[DISPI_VIRT_HEIGHT] || r[DISPI_VIDEO_MEMORY_64K])
		ret = refuse(err, errlen, "derived DISPI registers not 0");
	else if ((r[DISPI_ENABLE] & DISPI_ENABLED) &&
		 !dispi_fits(n, r[DISPI_XRES], r[DISPI_YRES], r[DISPI_BPP],
			     r[DISPI_VIRT_WIDTH], r[DISPI_X_OFFSET],
			     r[DISPI_Y_OFFSET]))
		ret = refuse(err, errlen, "VBE mode %ux%ux%u (virtual width %u, offset %u,%u) does not fit the VRAM",
			     r[DISPI_XRES], r[DISPI_YRES], r[DISPI_BPP],
			     r[DISPI_VIRT_WIDTH], r[DISPI_X_OFFSET],
			     r[DISPI_Y_OFFSET]);
	else
		memcpy(n->dispi, r, sizeof(n->dispi));
	g_variant_unref(a);
	return ret;
}

static int dac_load(struct vga *n, GVariant *t, char *err, size_t errlen)
{
	GVariant *pal, *in;
	gboolean reading;
	int r = 0;

	g_variant_get(t, "(y@ayyyy@ayb)", &n->pel_mask, &pal, &n->dac_rd,
		      &n->dac_wr, &n->dac_sub, &in, &reading);
	if (bytes_load(pal, &n->dac[0][0], sizeof(n->dac), NULL, 0) < 0)
		r = refuse(err, errlen, "palette not %zu bytes", sizeof(n->dac));
	else if (bytes_load(in, n->dac_in, sizeof(n->dac_in), NULL, 0) < 0)
		r = refuse(err, errlen, "DAC input not %zu bytes",
			   sizeof(n->dac_in));
	else if (n->dac_sub > 2)
		r = refuse(err, errlen, "DAC sub-index %u out of range",
			   n->dac_sub);
	n->dac_reading = reading;
	g_variant_unref(pal);
	g_variant_unref(in);
	return r;
}

/* What the payload holds, from @src to @dst. */
static void regs_copy(struct vga *dst, const struct vga *src)
{
	dst->misc = src->misc;
	dst->feature = src->feature;
	dst->vse = src->vse;
	dst->st01 = src->st01;
	dst->sr_index = src->sr_index;
	memcpy(dst->sr, src->sr, sizeof(dst->sr));
	dst->gr_index = src->gr_index;
	memcpy(dst->gr, src->gr, sizeof(dst->gr));
	dst->cr_index = src->cr_index;
	memcpy(dst->cr, src->cr, sizeof(dst->cr));
	dst->ar_index = src->ar_index;
	dst->ar_data = src->ar_data;
	memcpy(dst->ar, src->ar, sizeof(dst->ar));
	dst->pel_mask = src->pel_mask;
	memcpy(dst->dac, src->dac, sizeof(dst->dac));
	dst->dac_rd = src->dac_rd;
	dst->dac_wr = src->dac_wr;
	dst->dac_sub = src->dac_sub;
	memcpy(dst->dac_in, src->dac_in, sizeof(dst->dac_in));
	dst->dac_reading = src->dac_reading;
	dst->latch = src->latch;
	dst->dispi_index = src->dispi_index;
	memcpy(dst->dispi, src->dispi, sizeof(dst->dispi));
}

static int vga_load(void *dev, uint32_t version, GVariant *state, char *err,
		    size_t errlen)
{
	struct vga *v = dev;
	struct vga *n;
	GVariant *c[9];
	guint32 vram_size, latch;
	guchar misc, feature, vse, st01;
	gboolean ar_data;
	int r = 0;

	r = device_state_check("vga", version, VGA_STATE_VERSION, state,
			       VGA_STATE_TYPE, err, errlen);
	if (r < 0)
		return r;
	g_variant_get(state, "(u(yyyy)@(yay)@(yay)@(yay)@(ybay)@(yayyyyayb)u@(qaq))",
		      &vram_size, &misc, &feature, &vse, &st01, &c[2], &c[3],
		      &c[4], &c[5], &c[6], &latch, &c[8]);
	if (vram_size != v->vram_size) {
		r = refuse(err, errlen, "state for %u KiB of VRAM, this adapter has %zu KiB",
			   vram_size >> 10, v->vram_size >> 10);
		goto out;
	}
	/* Decoded into a scratch adapter; taken once everything is valid. */
	n = calloc(1, sizeof(*n));
	if (!n) {
		r = -ENOMEM;
		goto out;
	}
	n->vram_size = v->vram_size;
	n->misc = misc;
	n->feature = feature;
	n->vse = vse;
	n->st01 = st01;
	n->latch = latch;
	if ((feature & ~0x03) || (vse & ~1) || (st01 != 0 && st01 != 0x09))
		r = refuse(err, errlen, "feature/enable/status bits 0x%x/0x%x/0x%x",
			   feature, vse, st01);
	if (!r)
		r = regfile_load(c[2], "sequencer", &n->sr_index, 7, n->sr,
				 sizeof(n->sr), sr_wmask, sizeof(sr_wmask), err,
				 errlen);
	if (!r)
		r = regfile_load(c[3], "graphics controller", &n->gr_index, 0x0f,
				 n->gr, sizeof(n->gr), gr_wmask,
				 sizeof(gr_wmask), err, errlen);
	if (!r)
		r = regfile_load(c[4], "CRTC", &n->cr_index, 0x3f, n->cr,
				 sizeof(n->cr), cr_wmask, sizeof(cr_wmask), err,
				 errlen);
	if (!r) {
		GVariant *a;
		long bad;

		g_variant_get(c[5], "(yb@ay)", &n->ar_index, &ar_data, &a);
		n->ar_data = ar_data;
		bad = bytes_load(a, n->ar, sizeof(n->ar), ar_wmask,
				 sizeof(ar_wmask));
		g_variant_unref(a);
		if (n->ar_index > 0x3f)
			r = refuse(err, errlen, "attribute index 0x%x out of range",
				   n->ar_index);
		else if (bad < 0)
			r = refuse(err, errlen, "attribute controller: not %zu registers",
				   sizeof(n->ar));
		else if ((size_t)bad < sizeof(n->ar))
			r = refuse(err, errlen, "attribute register %ld: bits the adapter does not keep",
				   bad);
	}
	if (!r)
		r = dac_load(n, c[6], err, errlen);
	if (!r)
		r = dispi_load(n, c[8], err, errlen);
	if (!r) {
		/* Registers only: the VRAM, the BAR0 slot (which follows the
		 * PCI BAR through vram_bar_map()) and the buffers stay. */
		regs_copy(v, n);
		/* Rendering state is derived: the next refresh recomputes the
		 * mode and redraws everything from VRAM. */
		memset(v->dirty, 0xff, v->dirty_words * 8);
		v->font_gen++;
		v->have_last = false;
	}
	free(n);
out:
	for (unsigned i = 2; i < 9; i++)
		if (i != 7)
			g_variant_unref(c[i]);
	return r;
}

const struct device_ops vga_device_ops = {
	.name = "vga",
	.reset = vga_dev_reset,
	.save = vga_save,
	.load = vga_load,
	.state_version = VGA_STATE_VERSION,
	.free = vga_dev_free,
};
