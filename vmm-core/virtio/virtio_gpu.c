/* SPDX-License-Identifier: MIT */
/*
 * The virtio GPU device, 2D, virtio 1.2 §5.7.  See virtio_gpu.h.
 *
 * §2.6.4 (message framing): a command is the chain's device-readable bytes
 * and its response goes to the device-writable bytes, located by offset,
 * never by descriptor.  A command shorter than its structure is answered
 * with ERR_UNSPEC; bytes past it are ignored (ATTACH_BACKING's entries
 * excepted, which must all be there).
 */
#include "virtio_gpu.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <zstd.h>

#include "../display/console.h"
#include "../log.h"
#include "../mem.h"
#include "virtio_pci.h"

#define CTRLQ		0
#define CURSORQ		1
#define CURSOR_BYTES	(VIRTIO_GPU_CURSOR_DIM * VIRTIO_GPU_CURSOR_DIM * 4)
#define MAX_RESP	VIRTIO_GPU_EDID_RESP_LEN

struct gpu_mem_entry {
	uint64_t addr;			/* GPA */
	uint32_t len;			/* bytes */
};

struct gpu_res {
	uint32_t id, format, width, height;
	uint8_t *pixels;		/* width * height * 4, the format's bytes */
	struct gpu_mem_entry *backing;	/* NULL: none attached */
	unsigned nbacking;
	uint64_t backing_len;		/* bytes, sum of the entries */
};

struct rect {
	uint32_t x, y, w, h;
};

struct virtio_gpu {
	struct virtio_pci *vp;
	const struct guest_mem *mem;
	GHashTable *res;		/* id -> struct gpu_res */
	uint64_t used;			/* bytes charged to the budget */
	unsigned pref_w, pref_h;
	uint32_t events_read;
	struct {
		uint32_t res_id;	/* 0: off */
		struct rect r;		/* source rectangle in the resource */
	} scanout;
	struct {
		uint32_t res_id;	/* 0: hidden */
		int32_t x, y;		/* top left, scanout coordinates */
		uint32_t hot_x, hot_y;
		uint32_t img[VIRTIO_GPU_CURSOR_DIM * VIRTIO_GPU_CURSOR_DIM];
	} cursor;			/* img: 0xAARRGGBB */

	/* Rendering, derived (not state): what the next update redraws. */
	bool need_full;
	bool dirty;
	uint32_t dx0, dy0, dx1, dy1;	/* scanout coordinates, exclusive */
	bool cur_drawn;			/* the cursor is in the surface at: */
	int32_t cur_dx, cur_dy;
};

/* Byte positions of R, G, B and A (-1: none) in each format. */
struct fmt {
	uint32_t id;
	int r, g, b, a;
};

static const struct fmt formats[] = {
	{ VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 2, 1, 0, 3 },
	{ VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 2, 1, 0, -1 },
	{ VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM, 1, 2, 3, 0 },
	{ VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM, 1, 2, 3, -1 },
	{ VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM, 0, 1, 2, 3 },
	{ VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM, 3, 2, 1, -1 },
	{ VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM, 3, 2, 1, 0 },
	{ VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM, 0, 1, 2, -1 },
};

static const struct fmt *find_format(uint32_t id)
{
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (formats[i].id == id)
			return &formats[i];
	return NULL;
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void wr64(uint8_t *p, uint64_t v)
{
	wr32(p, (uint32_t)v);
	wr32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t res_charge(uint32_t w, uint32_t h)
{
	return (uint64_t)w * h * 4 + VIRTIO_GPU_RES_OVERHEAD;
}

static struct gpu_res *res_find(struct virtio_gpu *g, uint32_t id)
{
	return id ? g_hash_table_lookup(g->res, GUINT_TO_POINTER(id)) : NULL;
}

static void res_free(struct gpu_res *r)
{
	if (!r)
		return;
	free(r->pixels);
	free(r->backing);
	free(r);
}

/* The hash table's value destructor. */
static void res_destroy(gpointer p)
{
	res_free(p);
}

static void backing_drop(struct virtio_gpu *g, struct gpu_res *r)
{
	g->used -= (uint64_t)r->nbacking * sizeof(struct gpu_mem_entry);
	free(r->backing);
	r->backing = NULL;
	r->nbacking = 0;
	r->backing_len = 0;
}

/* Rectangle @r lies in a @w x @h resource, and is not empty. */
static bool rect_in(const struct rect *r, uint32_t w, uint32_t h)
{
	return r->w && r->h && (uint64_t)r->x + r->w <= w &&
	       (uint64_t)r->y + r->h <= h;
}

static void rect_read(struct rect *r, const uint8_t *p)
{
	r->x = rd32(p);
	r->y = rd32(p + 4);
	r->w = rd32(p + 8);
	r->h = rd32(p + 12);
}

/* ---- rendering ------------------------------------------------------------ */

static void mark_dirty(struct virtio_gpu *g, uint32_t x0, uint32_t y0,
		       uint32_t x1, uint32_t y1)
{
	if (x1 <= x0 || y1 <= y0)
		return;
	if (!g->dirty) {
		g->dx0 = x0, g->dy0 = y0, g->dx1 = x1, g->dy1 = y1;
		g->dirty = true;
		return;
	}
	g->dx0 = MIN(g->dx0, x0);
	g->dy0 = MIN(g->dy0, y0);
	g->dx1 = MAX(g->dx1, x1);
	g->dy1 = MAX(g->dy1, y1);
}

static uint32_t to_xrgb(const struct fmt *f, const uint8_t *p)
{
	return (uint32_t)p[f->r] << 16 | (uint32_t)p[f->g] << 8 | p[f->b];
}

static uint32_t to_argb(const struct fmt *f, const uint8_t *p)
{
	return (f->a < 0 ? 0xff000000u : (uint32_t)p[f->a] << 24) |
	       to_xrgb(f, p);
}

static uint32_t blend(uint32_t dst, uint32_t src)
{
	uint32_t a = src >> 24, out = 0;

	if (a == 0xff)
		return src & 0xffffff;
	if (a == 0)
		return dst;
	for (int sh = 0; sh < 24; sh += 8) {
		uint32_t s = (src >> sh) & 0xff, d = (dst >> sh) & 0xff;

		out |= ((s * a + d * (255 - a) + 127) / 255) << sh;
	}
	return out;
}

/* Redraw [x0, x1) x [y0, y1) of the surface (clipped to it) from the
 * scanout's resource and the cursor, and report it dirty. */
static void draw(struct virtio_gpu *g, struct console *con,
		 const struct gpu_res *res, int64_t x0, int64_t y0,
		 int64_t x1, int64_t y1)
{
	struct console_surface *s = console_surface(con);
	const struct fmt *f = find_format(res->format);
	size_t stride = (size_t)res->width * 4;

	x0 = MAX(x0, 0);
	y0 = MAX(y0, 0);
	x1 = MIN(x1, (int64_t)s->width);
	y1 = MIN(y1, (int64_t)s->height);
	if (x1 <= x0 || y1 <= y0)
		return;
	for (int64_t y = y0; y < y1; y++) {
		uint32_t *d = s->pixels + (size_t)y * s->width;
		const uint8_t *src = res->pixels +
			(size_t)(g->scanout.r.y + y) * stride +
			(size_t)g->scanout.r.x * 4;

		if (f->r == 2 && f->g == 1 && f->b == 0) {
			/* B8G8R8X8/A8: XRGB8888 in little-endian words. */
			for (int64_t x = x0; x < x1; x++)
				d[x] = rd32(src + x * 4) & 0xffffff;
		} else {
			for (int64_t x = x0; x < x1; x++)
				d[x] = to_xrgb(f, src + x * 4);
		}
		if (g->cursor.res_id && y >= g->cursor.y &&
		    y < (int64_t)g->cursor.y + VIRTIO_GPU_CURSOR_DIM) {
			const uint32_t *c = g->cursor.img +
				(y - g->cursor.y) * VIRTIO_GPU_CURSOR_DIM;
			int64_t cx0 = MAX(x0, (int64_t)g->cursor.x);
			int64_t cx1 = MIN(x1, (int64_t)g->cursor.x +
					      VIRTIO_GPU_CURSOR_DIM);

			for (int64_t x = cx0; x < cx1; x++)
				d[x] = blend(d[x], c[x - g->cursor.x]);
		}
	}
	console_dirty(con, (unsigned)x0, (unsigned)y0, (unsigned)(x1 - x0),
		      (unsigned)(y1 - y0));
}

static void gpu_update(void *opaque, struct console *con, bool full)
{
	struct virtio_gpu *g = opaque;
	const struct gpu_res *res = res_find(g, g->scanout.res_id);
	struct console_surface *s;
	unsigned w, h;

	if (!res) {
		/* No scanout (the machine shows the VGA then): black. */
		if (full || g->need_full) {
			s = console_surface(con);
			memset(s->pixels, 0, (size_t)s->stride * s->height);
			console_dirty(con, 0, 0, s->width, s->height);
		}
		g->need_full = g->dirty = g->cur_drawn = false;
		return;
	}
	w = MIN(g->scanout.r.w, (unsigned)CONSOLE_MAX_WIDTH);
	h = MIN(g->scanout.r.h, (unsigned)CONSOLE_MAX_HEIGHT);
	s = console_surface(con);
	if (s->width != w || s->height != h) {
		if (console_resize(con, w, h) < 0)
			return;
		full = true;
	}
	if (full || g->need_full) {
		draw(g, con, res, 0, 0, w, h);
	} else {
		if (g->dirty)
			draw(g, con, res, g->dx0, g->dy0, g->dx1, g->dy1);
		if (g->cur_drawn)
			draw(g, con, res, g->cur_dx, g->cur_dy,
			     (int64_t)g->cur_dx + VIRTIO_GPU_CURSOR_DIM,
			     (int64_t)g->cur_dy + VIRTIO_GPU_CURSOR_DIM);
		if (g->cursor.res_id &&
		    (!g->cur_drawn || g->cur_dx != g->cursor.x ||
		     g->cur_dy != g->cursor.y))
			draw(g, con, res, g->cursor.x, g->cursor.y,
			     (int64_t)g->cursor.x + VIRTIO_GPU_CURSOR_DIM,
			     (int64_t)g->cursor.y + VIRTIO_GPU_CURSOR_DIM);
	}
	g->need_full = g->dirty = false;
	g->cur_drawn = g->cursor.res_id != 0;
	g->cur_dx = g->cursor.x;
	g->cur_dy = g->cursor.y;
}

static int gpu_request_size(void *opaque, unsigned width, unsigned height)
{
	return virtio_gpu_request_size(opaque, width, height);
}

const struct console_hw_ops virtio_gpu_console_ops = {
	.update = gpu_update,
	.request_size = gpu_request_size,
};

/* ---- EDID ------------------------------------------------------------------ */

void virtio_gpu_edid(unsigned width, unsigned height, uint8_t *e)
{
	/* CVT reduced blanking (VESA CVT 1.2): fixed horizontal blanking,
	 * vertical blanking of at least 460 us, 60 Hz. */
	unsigned hblank = 160, hfront = 48, hsync = 32;
	unsigned vfront = 3, vsync = 6;
	unsigned vblank = (1380 * height + 48619) / 48620;
	unsigned hmm = width * 254 / 960, vmm = height * 254 / 960;	/* 96 dpi */
	uint64_t clock;
	uint8_t *d = e + 54;
	uint8_t sum = 0;
	static const uint8_t chroma[10] = {	/* sRGB primaries, white D65 */
		0xee, 0x91, 0xa3, 0x54, 0x4c, 0x99, 0x26, 0x0f, 0x50, 0x54,
	};

	if (vblank < vfront + vsync + 6)
		vblank = vfront + vsync + 6;
	clock = ((uint64_t)(width + hblank) * (height + vblank) * 60 + 9999) /
		10000;				/* 10 kHz units */
	memset(e, 0, VIRTIO_GPU_EDID_LEN);
	memcpy(e, "\x00\xff\xff\xff\xff\xff\xff\x00", 8);
	e[8] = 0x59, e[9] = 0x36;		/* "VIV" */
	e[10] = 0x01;				/* product code 1 */
	e[16] = 1, e[17] = 2024 - 1990;		/* week 1 of 2024 */
	e[18] = 1, e[19] = 4;			/* EDID 1.4 */
	e[20] = 0xa0;				/* digital, 8 bits per colour */
	e[21] = (uint8_t)MAX(1u, (hmm + 5) / 10);	/* cm */
	e[22] = (uint8_t)MAX(1u, (vmm + 5) / 10);
	e[23] = 120;				/* gamma 2.2 */
	e[24] = 0x06;		/* sRGB, preferred timing is native */
	memcpy(e + 25, chroma, sizeof(chroma));
	e[35] = 0x21;				/* 640x480, 800x600 @ 60 */
	e[36] = 0x08;				/* 1024x768 @ 60 */
	for (int i = 38; i < 54; i++)
		e[i] = 0x01;			/* no standard timings */

	/* Detailed timing descriptor 1: the preferred mode. */
	d[0] = (uint8_t)clock;
	d[1] = (uint8_t)(clock >> 8);
	d[2] = (uint8_t)width;
	d[3] = (uint8_t)hblank;
	d[4] = (uint8_t)((width >> 8) << 4 | hblank >> 8);
	d[5] = (uint8_t)height;
	d[6] = (uint8_t)vblank;
	d[7] = (uint8_t)((height >> 8) << 4 | vblank >> 8);
	d[8] = (uint8_t)hfront;
	d[9] = (uint8_t)hsync;
	d[10] = (uint8_t)((vfront & 0xf) << 4 | (vsync & 0xf));
	d[11] = (uint8_t)((hfront >> 8) << 6 | (hsync >> 8) << 4 |
			  (vfront >> 4) << 2 | vsync >> 4);
	d[12] = (uint8_t)hmm;
	d[13] = (uint8_t)vmm;
	d[14] = (uint8_t)((hmm >> 8) << 4 | vmm >> 8);
	d[17] = 0x1a;			/* digital separate, +hsync -vsync */

	/* Descriptor 2: the monitor name; 3 and 4: dummies (tag 0x10). */
	memcpy(e + 72, "\x00\x00\x00\xfc\x00" "Vivarium\n    ", 18);
	e[93] = 0x10;
	e[111] = 0x10;
	for (int i = 0; i < 127; i++)
		sum = (uint8_t)(sum + e[i]);
	e[127] = (uint8_t)(0x100 - sum);
}

/* ---- commands --------------------------------------------------------------- */

struct cmd {
	const uint8_t *buf;		/* the device-readable bytes */
	size_t len;
	uint8_t resp[MAX_RESP];
	size_t resp_len;		/* bytes of resp to write */
};

static uint32_t cmd_display_info(struct virtio_gpu *g, struct cmd *c)
{
	uint8_t *p = c->resp + VIRTIO_GPU_HDR_LEN;

	/* pmodes[0]: r = (0, 0, w, h), enabled, flags 0; the others zero. */
	wr32(p + 8, g->pref_w);
	wr32(p + 12, g->pref_h);
	wr32(p + 16, 1);
	c->resp_len = VIRTIO_GPU_DISPLAY_INFO_LEN;
	return VIRTIO_GPU_RESP_OK_DISPLAY_INFO;
}

static uint32_t cmd_get_edid(struct virtio_gpu *g, struct cmd *c)
{
	uint8_t *p = c->resp + VIRTIO_GPU_HDR_LEN;

	if (!(virtio_pci_features(g->vp) & (1ull << VIRTIO_GPU_F_EDID)))
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	if (c->len < VIRTIO_GPU_HDR_LEN + 8)
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	if (rd32(c->buf + VIRTIO_GPU_HDR_LEN) != 0)
		return VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID;
	wr32(p, VIRTIO_GPU_EDID_LEN);
	virtio_gpu_edid(g->pref_w, g->pref_h, p + 8);
	c->resp_len = VIRTIO_GPU_EDID_RESP_LEN;
	return VIRTIO_GPU_RESP_OK_EDID;
}

static uint32_t cmd_create_2d(struct virtio_gpu *g, struct cmd *c)
{
	const uint8_t *p = c->buf + VIRTIO_GPU_HDR_LEN;
	uint32_t id, format, w, h;
	struct gpu_res *r;
	uint64_t charge;

	if (c->len < VIRTIO_GPU_HDR_LEN + 16)
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	id = rd32(p);
	format = rd32(p + 4);
	w = rd32(p + 8);
	h = rd32(p + 12);
	if (!id || res_find(g, id))
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	if (!find_format(format) || !w || !h || w > VIRTIO_GPU_MAX_DIM ||
	    h > VIRTIO_GPU_MAX_DIM)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	charge = res_charge(w, h);
	if (charge > VIRTIO_GPU_HOSTMEM - g->used)
		return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
	r = calloc(1, sizeof(*r));
	if (r)
		r->pixels = calloc((size_t)w * h, 4);
	if (!r || !r->pixels) {
		res_free(r);
		return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
	}
	r->id = id;
	r->format = format;
	r->width = w;
	r->height = h;
	g->used += charge;
	g_hash_table_insert(g->res, GUINT_TO_POINTER(id), r);
	return VIRTIO_GPU_RESP_OK_NODATA;
}

static void scanout_off(struct virtio_gpu *g)
{
	g->scanout.res_id = 0;
	memset(&g->scanout.r, 0, sizeof(g->scanout.r));
	g->need_full = true;
}

static void res_unref(struct virtio_gpu *g, struct gpu_res *r)
{
	if (g->scanout.res_id == r->id)
		scanout_off(g);
	g->used -= res_charge(r->width, r->height) +
		   (uint64_t)r->nbacking * sizeof(struct gpu_mem_entry);
	g_hash_table_remove(g->res, GUINT_TO_POINTER(r->id));
}

static uint32_t cmd_unref(struct virtio_gpu *g, struct cmd *c)
{
	struct gpu_res *r;

	if (c->len < VIRTIO_GPU_HDR_LEN + 8)
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	r = res_find(g, rd32(c->buf + VIRTIO_GPU_HDR_LEN));
	if (!r)
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	res_unref(g, r);
	return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t cmd_set_scanout(struct virtio_gpu *g, struct cmd *c)
{
	const uint8_t *p = c->buf + VIRTIO_GPU_HDR_LEN;
	struct gpu_res *r;
	struct rect rc;
	uint32_t id;

	if (c->len < VIRTIO_GPU_HDR_LEN + 24)
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	rect_read(&rc, p);
	if (rd32(p + 16) != 0)
		return VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID;
	id = rd32(p + 20);
	if (!id) {			/* §5.7.6.8: disable the scanout */
		scanout_off(g);
		return VIRTIO_GPU_RESP_OK_NODATA;
	}
	r = res_find(g, id);
	if (!r)
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	if (!rect_in(&rc, r->width, r->height))
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	g->scanout.res_id = id;
	g->scanout.r = rc;
	g->need_full = true;
	return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t cmd_flush(struct virtio_gpu *g, struct cmd *c)
{
	const uint8_t *p = c->buf + VIRTIO_GPU_HDR_LEN;
	const struct rect *so = &g->scanout.r;
	struct gpu_res *r;
	struct rect rc;
	uint32_t x0, y0, x1, y1;

	if (c->len < VIRTIO_GPU_HDR_LEN + 24)
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	rect_read(&rc, p);
	r = res_find(g, rd32(p + 16));
	if (!r)
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	if (!rect_in(&rc, r->width, r->height))
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	if (g->scanout.res_id != r->id)
		return VIRTIO_GPU_RESP_OK_NODATA;	/* not shown */
	/* The part of the rectangle the scanout shows, in its coordinates. */
	x0 = MAX(rc.x, so->x);
	y0 = MAX(rc.y, so->y);
	x1 = MIN(rc.x + rc.w, so->x + so->w);
	y1 = MIN(rc.y + rc.h, so->y + so->h);
	if (x1 > x0 && y1 > y0)
		mark_dirty(g, x0 - so->x, y0 - so->y, x1 - so->x, y1 - so->y);
	return VIRTIO_GPU_RESP_OK_NODATA;
}

/* Copy @len bytes at byte @off of @r's backing into @dst; *@ei and *@eoff
 * (the entry index and its first byte's offset) carry the walk from one
 * call to the next, offsets ascending.  Returns false if guest memory
 * fails (a range that was in RAM at attach time no longer is). */
static bool backing_read(struct virtio_gpu *g, const struct gpu_res *r,
			 uint64_t off, uint8_t *dst, uint64_t len,
			 unsigned *ei, uint64_t *eoff)
{
	if (off < *eoff) {
		*ei = 0;
		*eoff = 0;
	}
	while (len) {
		const struct gpu_mem_entry *e;
		uint64_t in, n;
		void *src;

		while (*ei < r->nbacking && off >= *eoff + r->backing[*ei].len) {
			*eoff += r->backing[*ei].len;
			(*ei)++;
		}
		if (*ei >= r->nbacking)
			return false;
		e = &r->backing[*ei];
		in = off - *eoff;
		n = MIN(len, e->len - in);
		src = gpa_to_hva(g->mem, e->addr + in, n);
		if (!src)
			return false;
		memcpy(dst, src, n);
		dst += n;
		off += n;
		len -= n;
	}
	return true;
}

static uint32_t cmd_transfer(struct virtio_gpu *g, struct cmd *c)
{
	const uint8_t *p = c->buf + VIRTIO_GPU_HDR_LEN;
	struct gpu_res *r;
	struct rect rc;
	uint64_t offset, stride, row, last;
	unsigned ei = 0;
	uint64_t eoff = 0;

	if (c->len < VIRTIO_GPU_HDR_LEN + 32)
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	rect_read(&rc, p);
	offset = rd64(p + 16);
	r = res_find(g, rd32(p + 24));
	if (!r)
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	if (!rect_in(&rc, r->width, r->height))
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	if (!r->backing)
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	/* Row i of the rectangle is at @offset + i * stride in the backing
	 * (the resource's own layout); the last row's end must lie in it. */
	stride = (uint64_t)r->width * 4;
	row = (uint64_t)rc.w * 4;
	last = (uint64_t)(rc.h - 1) * stride + row;
	if (offset > r->backing_len || last > r->backing_len - offset)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	for (uint32_t i = 0; i < rc.h; i++) {
		uint8_t *dst = r->pixels + (size_t)(rc.y + i) * stride +
			       (size_t)rc.x * 4;

		if (!backing_read(g, r, offset + i * stride, dst, row, &ei,
				  &eoff))
			return VIRTIO_GPU_RESP_ERR_UNSPEC;
	}
	return VIRTIO_GPU_RESP_OK_NODATA;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct gpu_mem_entry *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/*
 * Check @n backing entries: each non-empty and wholly in one RAM region,
 * no two overlapping.  Returns their total length, or 0 if any is bad.
 */
static uint64_t backing_check(const struct guest_mem *mem,
			      const struct gpu_mem_entry *e, unsigned n)
{
	struct gpu_mem_entry *s = malloc((n ? n : 1) * sizeof(*s));
	uint64_t total = 0;
	bool ok = s != NULL;

	for (unsigned i = 0; ok && i < n; i++) {
		ok = e[i].len && gpa_to_hva(mem, e[i].addr, e[i].len);
		total += e[i].len;
	}
	if (ok) {
		memcpy(s, e, n * sizeof(*s));
		qsort(s, n, sizeof(*s), entry_cmp);
		for (unsigned i = 1; ok && i < n; i++)
			ok = s[i - 1].addr + s[i - 1].len <= s[i].addr;
	}
	free(s);
	return ok ? total : 0;
}

static uint32_t cmd_attach(struct virtio_gpu *g, struct cmd *c)
{
	const uint8_t *p = c->buf + VIRTIO_GPU_HDR_LEN;
	struct gpu_mem_entry *e;
	struct gpu_res *r;
	uint32_t n;
	uint64_t total;

	if (c->len < VIRTIO_GPU_HDR_LEN + 8)
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	r = res_find(g, rd32(p));
	n = rd32(p + 4);
	if (!r)
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	if (r->backing)
		return VIRTIO_GPU_RESP_ERR_UNSPEC;	/* detach first */
	if (!n || n > VIRTIO_GPU_MAX_BACKING)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	if ((c->len - VIRTIO_GPU_HDR_LEN - 8) / 16 < n)
		return VIRTIO_GPU_RESP_ERR_UNSPEC;	/* entries missing */
	if ((uint64_t)n * sizeof(*e) > VIRTIO_GPU_HOSTMEM - g->used)
		return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
	e = malloc(n * sizeof(*e));
	if (!e)
		return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *q = p + 8 + 16 * (size_t)i;

		e[i].addr = rd64(q);
		e[i].len = rd32(q + 8);
	}
	total = backing_check(g->mem, e, n);
	if (!total) {
		vlog_ratelimited(LOG_WARN, "virtio-gpu: resource %u: backing of %u entries outside RAM, empty or overlapping",
				 r->id, n);
		free(e);
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	}
	r->backing = e;
	r->nbacking = n;
	r->backing_len = total;
	g->used += (uint64_t)n * sizeof(*e);
	return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t cmd_detach(struct virtio_gpu *g, struct cmd *c)
{
	struct gpu_res *r;

	if (c->len < VIRTIO_GPU_HDR_LEN + 8)
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	r = res_find(g, rd32(c->buf + VIRTIO_GPU_HDR_LEN));
	if (!r)
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	if (!r->backing)
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	backing_drop(g, r);
	return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t run_cmd(struct virtio_gpu *g, uint32_t type, struct cmd *c)
{
	switch (type) {
	case VIRTIO_GPU_CMD_GET_DISPLAY_INFO:
		return cmd_display_info(g, c);
	case VIRTIO_GPU_CMD_GET_EDID:
		return cmd_get_edid(g, c);
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_2D:
		return cmd_create_2d(g, c);
	case VIRTIO_GPU_CMD_RESOURCE_UNREF:
		return cmd_unref(g, c);
	case VIRTIO_GPU_CMD_SET_SCANOUT:
		return cmd_set_scanout(g, c);
	case VIRTIO_GPU_CMD_RESOURCE_FLUSH:
		return cmd_flush(g, c);
	case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D:
		return cmd_transfer(g, c);
	case VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING:
		return cmd_attach(g, c);
	case VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING:
		return cmd_detach(g, c);
	default:			/* capsets, 3D, blobs: not offered */
		vlog_ratelimited(LOG_WARN, "virtio-gpu: unsupported command 0x%x",
				 type);
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	}
}

/* Read the device-readable part of @e into a buffer of its own: commands
 * are small, except ATTACH_BACKING's entries (bounded by MAX_BACKING). */
#define MAX_CMD	(VIRTIO_GPU_HDR_LEN + 8 + 16 * VIRTIO_GPU_MAX_BACKING)

static void handle_ctrl(struct virtio_gpu *g, struct virtq *vq,
			struct virtq_elem *e)
{
	struct cmd *c = calloc(1, sizeof(*c));
	size_t len = MIN(e->out_len, (uint64_t)MAX_CMD);
	uint8_t *buf = malloc(len ? len : 1);
	uint32_t resp = VIRTIO_GPU_RESP_ERR_UNSPEC;
	uint32_t written = 0;

	if (!c || !buf)
		goto out;
	iov_to_buf(e->iov, e->out_num, 0, buf, len);
	c->buf = buf;
	c->len = len;
	c->resp_len = VIRTIO_GPU_HDR_LEN;
	if (len >= VIRTIO_GPU_HDR_LEN) {
		resp = run_cmd(g, rd32(buf), c);
		/* Fenced or not, the command is done: echo the fence. */
		wr32(c->resp + 4, rd32(buf + 4) & VIRTIO_GPU_FLAG_FENCE);
		wr64(c->resp + 8, rd64(buf + 8));
		wr32(c->resp + 16, rd32(buf + 16));
	} else {
		vlog_ratelimited(LOG_WARN, "virtio-gpu: command of %zu bytes", len);
	}
	if (resp < 0x1200 && e->in_len < c->resp_len) {
		vlog_ratelimited(LOG_WARN, "virtio-gpu: response of %zu bytes does not fit in %llu",
				 c->resp_len, (unsigned long long)e->in_len);
		resp = VIRTIO_GPU_RESP_ERR_UNSPEC;
	}
	if (resp >= 0x1200)
		c->resp_len = VIRTIO_GPU_HDR_LEN;
	wr32(c->resp, resp);
	if (e->in_len >= c->resp_len)
		written = (uint32_t)iov_from_buf(e->iov + e->out_num, e->in_num,
						 0, c->resp, c->resp_len);
out:
	virtq_push(vq, e, written);
	free(buf);
	free(c);
}

static void cursor_update(struct virtio_gpu *g, const uint8_t *p)
{
	const uint8_t *q = p + VIRTIO_GPU_HDR_LEN;
	uint32_t type = rd32(p), scanout = rd32(q), id;
	const struct gpu_res *r;
	const struct fmt *f;

	if (scanout != 0) {
		vlog_ratelimited(LOG_WARN, "virtio-gpu: cursor on scanout %u",
				 scanout);
		return;
	}
	if (type == VIRTIO_GPU_CMD_MOVE_CURSOR) {
		g->cursor.x = (int32_t)rd32(q + 4);
		g->cursor.y = (int32_t)rd32(q + 8);
		return;
	}
	if (type != VIRTIO_GPU_CMD_UPDATE_CURSOR) {
		vlog_ratelimited(LOG_WARN, "virtio-gpu: cursor command 0x%x",
				 type);
		return;
	}
	id = rd32(q + 16);
	r = res_find(g, id);
	if (id && (!r || r->width > VIRTIO_GPU_CURSOR_DIM ||
		   r->height > VIRTIO_GPU_CURSOR_DIM)) {
		vlog_ratelimited(LOG_WARN, "virtio-gpu: cursor resource %u missing or over 64x64",
				 id);
		return;
	}
	g->cursor.x = (int32_t)rd32(q + 4);
	g->cursor.y = (int32_t)rd32(q + 8);
	if (!id) {
		g->cursor.res_id = 0;
		return;
	}
	/* The image is taken now (the driver transferred it first). */
	f = find_format(r->format);
	memset(g->cursor.img, 0, sizeof(g->cursor.img));
	for (uint32_t y = 0; y < r->height; y++)
		for (uint32_t x = 0; x < r->width; x++)
			g->cursor.img[y * VIRTIO_GPU_CURSOR_DIM + x] =
				to_argb(f, r->pixels + ((size_t)y * r->width + x) * 4);
	g->cursor.res_id = id;
	g->cursor.hot_x = MIN(rd32(q + 20), VIRTIO_GPU_CURSOR_DIM - 1);
	g->cursor.hot_y = MIN(rd32(q + 24), VIRTIO_GPU_CURSOR_DIM - 1);
}

static void handle_cursor(struct virtio_gpu *g, struct virtq *vq,
			  struct virtq_elem *e)
{
	uint8_t buf[VIRTIO_GPU_CURSOR_CMD_LEN];

	if (e->out_len < sizeof(buf))
		vlog_ratelimited(LOG_WARN, "virtio-gpu: cursor command of %llu bytes",
				 (unsigned long long)e->out_len);
	else if (iov_to_buf(e->iov, e->out_num, 0, buf, sizeof(buf)) ==
		 sizeof(buf))
		cursor_update(g, buf);
	/* No response (the driver gives no writable buffer), as for §5.7.6.10's
	 * cursor commands in practice. */
	virtq_push(vq, e, 0);
}

/* vCPU or I/O thread, device lock held: the driver kicked queue @q. */
static void queue_notify(void *opaque, unsigned q)
{
	struct virtio_gpu *g = opaque;
	struct virtq *vq = virtio_pci_queue(g->vp, q);

	for (;;) {
		int r;

		virtq_disable_notify(vq);
		for (;;) {
			struct virtq_elem e;

			r = virtq_pop(vq, &e);
			if (r != 1)
				break;
			if (q == CTRLQ)
				handle_ctrl(g, vq, &e);
			else
				handle_cursor(g, vq, &e);
			virtq_elem_release(&e);
		}
		virtio_pci_notify_used(g->vp, q);
		if (r < 0 || !virtq_enable_notify(vq))
			return;
	}
}

/* ---- configuration and life cycle ----------------------------------------- */

static uint64_t config_read(void *opaque, unsigned offset, unsigned size)
{
	struct virtio_gpu *g = opaque;
	uint8_t c[VIRTIO_GPU_CFG_LEN] = { 0 };
	uint64_t v = 0;

	wr32(c + VIRTIO_GPU_CFG_EVENTS_READ, g->events_read);
	wr32(c + VIRTIO_GPU_CFG_NUM_SCANOUTS, 1);
	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)c[offset + i] << (8 * i);
	return v;
}

static void config_write(void *opaque, unsigned offset, unsigned size,
			 uint64_t value)
{
	struct virtio_gpu *g = opaque;

	/* Only events_clear is writable (write 1 to clear, §5.7.4). */
	for (unsigned i = 0; i < size; i++) {
		unsigned o = offset + i;

		if (o >= VIRTIO_GPU_CFG_EVENTS_CLEAR &&
		    o < VIRTIO_GPU_CFG_EVENTS_CLEAR + 4)
			g->events_read &= ~((uint32_t)((value >> (8 * i)) & 0xff)
				<< (8 * (o - VIRTIO_GPU_CFG_EVENTS_CLEAR)));
	}
}

static void free_all(struct virtio_gpu *g)
{
	g_hash_table_remove_all(g->res);
	g->used = 0;
	scanout_off(g);
	g->cursor.res_id = 0;
	g->cursor.x = g->cursor.y = 0;
	g->cursor.hot_x = g->cursor.hot_y = 0;
	memset(g->cursor.img, 0, sizeof(g->cursor.img));
}

/* The driver reset the device: nothing of its survives, not even a host
 * pointer (there are none: backing is GPAs). */
static void gpu_reset(void *opaque)
{
	struct virtio_gpu *g = opaque;

	free_all(g);
	g->events_read = 0;
}

static const struct virtio_pci_ops gpu_ops = {
	.config_read = config_read,
	.config_write = config_write,
	.queue_notify = queue_notify,
	.reset = gpu_reset,
};

static void clamp_size(unsigned *w, unsigned *h)
{
	*w = MIN(MAX(*w, VIRTIO_GPU_MIN_WIDTH), (unsigned)CONSOLE_MAX_WIDTH);
	*h = MIN(MAX(*h, VIRTIO_GPU_MIN_HEIGHT), (unsigned)CONSOLE_MAX_HEIGHT);
}

int virtio_gpu_request_size(struct virtio_gpu *g, unsigned width,
			    unsigned height)
{
	clamp_size(&width, &height);
	g->pref_w = width;
	g->pref_h = height;
	g->events_read |= VIRTIO_GPU_EVENT_DISPLAY;
	virtio_pci_config_changed(g->vp);
	return 0;
}

void virtio_gpu_preferred_size(const struct virtio_gpu *g, unsigned *width,
			       unsigned *height)
{
	*width = g->pref_w;
	*height = g->pref_h;
}

bool virtio_gpu_scanout_active(const struct virtio_gpu *g)
{
	return g->scanout.res_id != 0;
}

struct virtio_gpu *virtio_gpu_new(const struct virtio_gpu_config *cfg,
				  char *err, size_t errlen)
{
	struct virtio_pci_config pc;
	struct virtio_gpu *g;
	int r;

	if (!cfg->pci || !cfg->mem) {
		snprintf(err, errlen, "virtio-gpu: incomplete configuration");
		return NULL;
	}
	g = calloc(1, sizeof(*g));
	if (!g) {
		snprintf(err, errlen, "virtio-gpu: out of memory");
		return NULL;
	}
	g->mem = cfg->mem;
	g->res = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
				       res_destroy);
	g->pref_w = cfg->width ? cfg->width : VIRTIO_GPU_DEFAULT_WIDTH;
	g->pref_h = cfg->height ? cfg->height : VIRTIO_GPU_DEFAULT_HEIGHT;
	clamp_size(&g->pref_w, &g->pref_h);
	pc = (struct virtio_pci_config){
		.pci = cfg->pci, .devfn = cfg->devfn, .mem = cfg->mem,
		.device_id = VIRTIO_GPU_DEVICE_ID,
		.class_code = 0x038000,		/* display, other */
		.features = 1ull << VIRTIO_GPU_F_EDID,
		.num_queues = 2,
		.queue_size = VIRTIO_GPU_QUEUE_SIZE,
		.config_len = VIRTIO_GPU_CFG_LEN,
		.ops = &gpu_ops, .opaque = g, .iofd = cfg->iofd,
	};
	g->vp = virtio_pci_new(&pc, &r);
	if (!g->vp) {
		snprintf(err, errlen, "virtio-gpu: cannot add PCI device %02x.%u: %s",
			 cfg->devfn >> 3, cfg->devfn & 7,
			 r == -EEXIST ? "slot in use" : strerror(-r));
		g_hash_table_destroy(g->res);
		free(g);
		return NULL;
	}
	return g;
}

void virtio_gpu_free(struct virtio_gpu *g)
{
	if (!g)
		return;
	virtio_pci_free(g->vp);
	g_hash_table_destroy(g->res);
	free(g);
}

struct virtio_pci *virtio_gpu_transport(struct virtio_gpu *g)
{
	return g->vp;
}

/* ---- the machine's device table ------------------------------------------ */

static void virtio_gpu_dev_reset(void *dev)
{
	struct virtio_gpu *g = dev;

	virtio_pci_reset(g->vp);
}

static void virtio_gpu_dev_free(void *dev)
{
	virtio_gpu_free(dev);
}

static GVariant *bytes_owned(void *p, size_t len)
{
	return g_variant_new_from_data(G_VARIANT_TYPE_BYTESTRING, p, len, TRUE,
				       g_free, p);
}

static gint id_cmp(gconstpointer a, gconstpointer b)
{
	guint x = GPOINTER_TO_UINT(a), y = GPOINTER_TO_UINT(b);

	return x < y ? -1 : x > y;
}

static GVariant *res_save(const struct gpu_res *r)
{
	GVariantBuilder bb;
	size_t n = (size_t)r->width * r->height * 4;
	size_t cap = ZSTD_compressBound(n);
	void *z = g_try_malloc(cap);
	size_t zn;

	if (!z)
		return NULL;
	zn = ZSTD_compress(z, cap, r->pixels, n, 1);
	if (ZSTD_isError(zn)) {
		g_free(z);
		return NULL;
	}
	g_variant_builder_init(&bb, G_VARIANT_TYPE("a(tu)"));
	for (unsigned i = 0; i < r->nbacking; i++)
		g_variant_builder_add(&bb, "(tu)", (guint64)r->backing[i].addr,
				      (guint32)r->backing[i].len);
	return g_variant_new("(uuuua(tu)u@ay)", r->id, r->format, r->width,
			     r->height, &bb, (guint32)n, bytes_owned(z, zn));
}

static GVariant *virtio_gpu_dev_save(void *dev)
{
	struct virtio_gpu *g = dev;
	GVariant *t = virtio_pci_save(g->vp);
	GVariantBuilder rb;
	GList *ids;
	uint8_t *img;

	if (!t) {
		vlog(LOG_ERROR, "virtio-gpu: requests in flight: not saved");
		return NULL;
	}
	g_variant_builder_init(&rb, G_VARIANT_TYPE("a(uuuua(tu)uay)"));
	ids = g_list_sort(g_hash_table_get_keys(g->res), id_cmp);
	for (GList *l = ids; l; l = l->next) {
		GVariant *v = res_save(res_find(g, GPOINTER_TO_UINT(l->data)));

		if (!v) {
			vlog(LOG_ERROR, "virtio-gpu: cannot compress resource %u",
			     GPOINTER_TO_UINT(l->data));
			g_list_free(ids);
			g_variant_builder_clear(&rb);
			g_variant_unref(g_variant_ref_sink(t));
			return NULL;
		}
		g_variant_builder_add_value(&rb, v);
	}
	g_list_free(ids);
	img = g_malloc(CURSOR_BYTES);
	for (unsigned i = 0; i < CURSOR_BYTES / 4; i++)
		wr32(img + 4 * i, g->cursor.img[i]);
	return g_variant_new("(@" VIRTIO_PCI_STATE_TYPE "uuua(uuuua(tu)uay)(uuuuu)(uuuuuu@ay))",
			     t, g->pref_w, g->pref_h, g->events_read, &rb,
			     g->scanout.res_id, g->scanout.r.x, g->scanout.r.y,
			     g->scanout.r.w, g->scanout.r.h,
			     g->cursor.res_id, 0u, (guint32)g->cursor.x,
			     (guint32)g->cursor.y, g->cursor.hot_x,
			     g->cursor.hot_y, bytes_owned(img, CURSOR_BYTES));
}

/* One saved resource into a new struct gpu_res; *@charge its cost. */
static struct gpu_res *res_load(struct virtio_gpu *g, GVariant *v,
				uint64_t *charge, char *err, size_t errlen)
{
	struct gpu_res *r = calloc(1, sizeof(*r));
	GVariant *backing = NULL, *z = NULL;
	guint32 id, format, w, h, n;
	gsize nb;
	size_t want;
	unsigned long long fsz;
	bool ok = false;

	if (!r) {
		snprintf(err, errlen, "virtio-gpu: out of memory");
		return NULL;
	}
	g_variant_get(v, "(uuuu@a(tu)u@ay)", &id, &format, &w, &h, &backing,
		      &n, &z);
	nb = g_variant_n_children(backing);
	want = (size_t)w * h * 4;
	if (!id)
		snprintf(err, errlen, "virtio-gpu: resource id 0");
	else if (!find_format(format))
		snprintf(err, errlen, "virtio-gpu: resource %u: format %u unknown",
			 id, format);
	else if (!w || !h || w > VIRTIO_GPU_MAX_DIM || h > VIRTIO_GPU_MAX_DIM)
		snprintf(err, errlen, "virtio-gpu: resource %u: %ux%u out of range",
			 id, w, h);
	else if (nb > VIRTIO_GPU_MAX_BACKING)
		snprintf(err, errlen, "virtio-gpu: resource %u: %zu backing entries",
			 id, (size_t)nb);
	else if (n != want)
		snprintf(err, errlen, "virtio-gpu: resource %u: %u bytes of pixels, not %zu",
			 id, n, want);
	else if (res_charge(w, h) + nb * sizeof(struct gpu_mem_entry) >
		 VIRTIO_GPU_HOSTMEM)
		snprintf(err, errlen, "virtio-gpu: resource %u: over the memory budget",
			 id);
	else if ((fsz = ZSTD_getFrameContentSize(g_variant_get_data(z),
						 g_variant_get_size(z))) != want)
		snprintf(err, errlen, "virtio-gpu: resource %u: pixels not a zstd frame of %zu bytes",
			 id, want);
	else
		ok = true;
	if (!ok)
		goto fail;
	r->id = id;
	r->format = format;
	r->width = w;
	r->height = h;
	r->pixels = malloc(want);
	if (nb)
		r->backing = malloc(nb * sizeof(*r->backing));
	if (!r->pixels || (nb && !r->backing)) {
		snprintf(err, errlen, "virtio-gpu: out of memory");
		goto fail;
	}
	for (gsize i = 0; i < nb; i++) {
		guint64 addr;
		guint32 len;

		g_variant_get_child(backing, i, "(tu)", &addr, &len);
		r->backing[i].addr = addr;
		r->backing[i].len = len;
	}
	r->nbacking = (unsigned)nb;
	if (nb) {
		r->backing_len = backing_check(g->mem, r->backing, r->nbacking);
		if (!r->backing_len) {
			snprintf(err, errlen, "virtio-gpu: resource %u: backing outside RAM, empty or overlapping",
				 id);
			goto fail;
		}
	}
	if (ZSTD_decompress(r->pixels, want, g_variant_get_data(z),
			    g_variant_get_size(z)) != want) {
		snprintf(err, errlen, "virtio-gpu: resource %u: pixels do not decompress",
			 id);
		goto fail;
	}
	*charge = res_charge(w, h) + nb * sizeof(struct gpu_mem_entry);
	g_variant_unref(backing);
	g_variant_unref(z);
	return r;
fail:
	g_variant_unref(backing);
	g_variant_unref(z);
	res_free(r);
	return NULL;
}

static int virtio_gpu_dev_load(void *dev, uint32_t version, GVariant *state,
			       char *err, size_t errlen)
{
	struct virtio_gpu *g = dev;
	GVariant *t = NULL, *resv = NULL, *img = NULL;
	GHashTable *tab = NULL;
	guint32 pw, ph, ev, sid, sx, sy, sw, sh, cid, cso, cx, cy, hx, hy;
	uint64_t used = 0;
	const struct gpu_res *sres = NULL;
	int r;

	r = device_state_check("virtio-gpu", version, 1, state,
			       VIRTIO_GPU_STATE_TYPE, err, errlen);
	if (r < 0)
		return r;
	g_variant_get(state, "(@" VIRTIO_PCI_STATE_TYPE "uuu@a(uuuua(tu)uay)(uuuuu)(uuuuuu@ay))",
		      &t, &pw, &ph, &ev, &resv, &sid, &sx, &sy, &sw, &sh,
		      &cid, &cso, &cx, &cy, &hx, &hy, &img);
	r = -EINVAL;
	if (pw < VIRTIO_GPU_MIN_WIDTH || pw > CONSOLE_MAX_WIDTH ||
	    ph < VIRTIO_GPU_MIN_HEIGHT || ph > CONSOLE_MAX_HEIGHT) {
		snprintf(err, errlen, "virtio-gpu: preferred size %ux%u out of range",
			 pw, ph);
		goto out;
	}
	if (ev & ~VIRTIO_GPU_EVENT_DISPLAY) {
		snprintf(err, errlen, "virtio-gpu: events 0x%x unknown", ev);
		goto out;
	}
	tab = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
				    res_destroy);
	for (gsize i = 0; i < g_variant_n_children(resv); i++) {
		GVariant *v = g_variant_get_child_value(resv, i);
		uint64_t charge = 0;
		struct gpu_res *res = res_load(g, v, &charge, err, errlen);

		g_variant_unref(v);
		if (!res)
			goto out;
		if (g_hash_table_contains(tab, GUINT_TO_POINTER(res->id))) {
			snprintf(err, errlen, "virtio-gpu: resource %u twice",
				 res->id);
			res_free(res);
			goto out;
		}
		used += charge;
		g_hash_table_insert(tab, GUINT_TO_POINTER(res->id), res);
		if (used > VIRTIO_GPU_HOSTMEM) {
			snprintf(err, errlen, "virtio-gpu: resources over the memory budget of %u bytes",
				 VIRTIO_GPU_HOSTMEM);
			goto out;
		}
	}
	if (sid) {
		struct rect rc = { sx, sy, sw, sh };

		sres = g_hash_table_lookup(tab, GUINT_TO_POINTER(sid));
		if (!sres || !rect_in(&rc, sres->width, sres->height)) {
			snprintf(err, errlen, "virtio-gpu: scanout of resource %u at %ux%u+%u+%u invalid",
				 sid, sw, sh, sx, sy);
			goto out;
		}
	} else if (sx || sy || sw || sh) {
		snprintf(err, errlen, "virtio-gpu: disabled scanout with a rectangle");
		goto out;
	}
	if (cso != 0 || hx >= VIRTIO_GPU_CURSOR_DIM ||
	    hy >= VIRTIO_GPU_CURSOR_DIM || g_variant_get_size(img) != CURSOR_BYTES) {
		snprintf(err, errlen, "virtio-gpu: cursor on scanout %u, hot spot %u,%u or image of %zu bytes invalid",
			 cso, hx, hy, (size_t)g_variant_get_size(img));
		goto out;
	}
	r = virtio_pci_load(g->vp, t, "virtio-gpu", err, errlen);
	if (r < 0)
		goto out;
	/* Commit. */
	g_hash_table_destroy(g->res);
	g->res = tab;
	tab = NULL;
	g->used = used;
	g->pref_w = pw;
	g->pref_h = ph;
	g->events_read = ev;
	g->scanout.res_id = sid;
	g->scanout.r = (struct rect){ sx, sy, sw, sh };
	g->cursor.res_id = cid;
	g->cursor.x = (int32_t)cx;
	g->cursor.y = (int32_t)cy;
	g->cursor.hot_x = hx;
	g->cursor.hot_y = hy;
	for (unsigned i = 0; i < CURSOR_BYTES / 4; i++)
		g->cursor.img[i] = rd32((const uint8_t *)g_variant_get_data(img) + 4 * i);
	g->need_full = true;
	g->dirty = g->cur_drawn = false;
out:
	if (tab)
		g_hash_table_destroy(tab);
	g_variant_unref(t);
	if (resv)
		g_variant_unref(resv);
	if (img)
		g_variant_unref(img);
	return r;
}

const struct device_ops virtio_gpu_device_ops = {
	.name = "virtio-gpu",
	.reset = virtio_gpu_dev_reset,
	.save = virtio_gpu_dev_save,
	.load = virtio_gpu_dev_load,
	.state_version = 1,
	.free = virtio_gpu_dev_free,
};
