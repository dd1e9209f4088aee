/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_virtio_gpu.c - virtio-gpu (2D) on the virtio 1.x PCI
 * transport, driven as Linux's virtio_gpu driver drives it: both queues set
 * up through the common configuration, commands built in synthetic guest
 * RAM (vring_driver.h) and kicked through the notify area, the picture read
 * back from a real console (display/console.h) the device renders into.
 * Interrupts are recorded through the PCI host's MSI-X messages.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "statetest.h"
#include "virtio_pci_driver.h"
#include "vring_driver.h"

#include "bus.h"
#include "devices/pci.h"
#include "display/console.h"
#include "log.h"
#include "mem.h"
#include "virtio/virtio_gpu.h"
#include "virtio/virtio_pci.h"
#include "sandboxed.h"

#define RAM_SIZE	(64u << 20)
#define DEVFN		(3 << 3)
#define BAR_ADDR	0xfe000000ull
#define MSIX_ADDR	0xfe100000ull
#define CTRL_BASE	0x100000ull	/* controlq rings + 4 MiB of buffers */
#define CURSOR_BASE	0x600000ull	/* cursorq rings + 1 MiB */
#define FB_BASE		0x1000000ull	/* backing pages */
#define QSIZE		64
#define MSI_BASE_DATA	0x40

static struct guest_mem mem;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct bus *pio, *mmio;
static struct pci_host *host;
static struct virtio_gpu *gpu;
static struct console *con;
static struct vdrv ctrl, curq;
static struct vpci vp = {
	.lock = &lock, .devfn = DEVFN, .bar = BAR_ADDR, .msix = MSIX_ADDR,
};
static struct vpci_irqs host_irqs = { .msi_base = MSI_BASE_DATA };

/* ---- locked accesses, as a vCPU makes them ------------------------------- */

static void create_device(void)
{
	struct virtio_gpu_config c = { .pci = host, .devfn = DEVFN, .mem = &mem };
	char err[256];

	vpci_irqs_clear(&host_irqs);
	pthread_mutex_lock(&lock);
	gpu = virtio_gpu_new(&c, err, sizeof(err));
	pthread_mutex_unlock(&lock);
	CHECK(gpu != NULL);
	if (!gpu) {
		fprintf(stderr, "  %s\n", err);
		exit(1);
	}
	vpci_map_bars(&vp);
	console_set_hw(con, &virtio_gpu_console_ops, gpu, &lock);
}

static void destroy_device(void)
{
	console_set_hw(con, NULL, NULL, NULL);
	pthread_mutex_lock(&lock);
	virtio_gpu_free(gpu);
	pthread_mutex_unlock(&lock);
	gpu = NULL;
}

static void setup_queue(unsigned q, struct vdrv *d, uint64_t base,
			uint64_t data)
{
	vdrv_init(d, &mem, QSIZE, base, data);
	CHECK(vpci_queue_setup(&vp, q, d, (int)q + 1, NULL));
}

/* §3.1.1 with MSI-X: config vector 0, controlq 1, cursorq 2. */
static uint64_t driver_init(uint64_t want)
{
	uint64_t f;

	CHECK(vpci_driver_start(&vp, want, 0, true, 3, MSI_BASE_DATA, &f));
	setup_queue(0, &ctrl, CTRL_BASE, 4u << 20);
	setup_queue(1, &curq, CURSOR_BASE, 1u << 20);
	CHECK_EQ(vpci_driver_ok(&vp), 0xf);
	return f;
}

#define ALL (~0ull)

/* ---- commands ---------------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static void hdr(uint8_t *p, uint32_t type)
{
	memset(p, 0, VIRTIO_GPU_HDR_LEN);
	put32(p, type);
}

static uint64_t alloc_buf(struct vdrv *d, uint64_t len)
{
	if (d->data_next + len + 64 > d->data_end)
		d->data_next = d->data_start;
	return vdrv_alloc(d, len ? len : 1, 8);
}

/*
 * Send @len command bytes (@cmd) with @resp_cap bytes of response room on
 * queue @q; copy the response to @resp (if non-NULL).  Returns the used
 * length, or -1 if the device did not answer.
 */
static long submit(unsigned q, const void *cmd, size_t len, void *resp,
		   size_t resp_cap)
{
	struct vdrv *d = q ? &curq : &ctrl;
	uint64_t c = alloc_buf(d, len), r = alloc_buf(d, resp_cap);
	struct vbuf b[2];
	unsigned n = 0;
	uint16_t want = (uint16_t)(vdrv_used_idx(d) + 1);
	uint32_t id, ulen;

	memcpy(vdrv_hva(d, c, len ? len : 1), cmd, len);
	memset(vdrv_hva(d, r, resp_cap ? resp_cap : 1), 0xee, resp_cap);
	b[n++] = (struct vbuf){ c, (uint32_t)len, false };
	if (resp_cap)
		b[n++] = (struct vbuf){ r, (uint32_t)resp_cap, true };
	vdrv_add(d, b, n, false);
	vpci_kick(&vp, q);
	if (vdrv_used_idx(d) != want || !vdrv_get_used(d, &id, &ulen)) {
		CHECK(!"command answered");
		return -1;
	}
	if (resp)
		memcpy(resp, vdrv_hva(d, r, resp_cap ? resp_cap : 1), resp_cap);
	return ulen;
}

/* A controlq command with a header-sized response: its type. */
static uint32_t ctrl_cmd(const void *cmd, size_t len)
{
	uint8_t resp[VIRTIO_GPU_HDR_LEN];
	long n = submit(0, cmd, len, resp, sizeof(resp));

	return n == VIRTIO_GPU_HDR_LEN ? get32(resp) : 0;
}

static uint32_t create_2d(uint32_t id, uint32_t fmt, uint32_t w, uint32_t h)
{
	uint8_t c[40];

	hdr(c, VIRTIO_GPU_CMD_RESOURCE_CREATE_2D);
	put32(c + 24, id);
	put32(c + 28, fmt);
	put32(c + 32, w);
	put32(c + 36, h);
	return ctrl_cmd(c, sizeof(c));
}

static uint32_t unref(uint32_t id)
{
	uint8_t c[32] = { 0 };

	hdr(c, VIRTIO_GPU_CMD_RESOURCE_UNREF);
	put32(c + 24, id);
	return ctrl_cmd(c, sizeof(c));
}

/* ATTACH_BACKING with @n entries (@addr[i], @len[i]). */
static uint32_t attach(uint32_t id, unsigned n, const uint64_t *addr,
		       const uint32_t *len)
{
	size_t sz = 32 + 16 * (size_t)n;
	uint8_t *c = calloc(1, sz);
	uint32_t r;

	hdr(c, VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING);
	put32(c + 24, id);
	put32(c + 28, n);
	for (unsigned i = 0; i < n; i++) {
		memcpy(c + 32 + 16 * i, &addr[i], 8);
		put32(c + 40 + 16 * i, len[i]);
	}
	r = ctrl_cmd(c, sz);
	free(c);
	return r;
}

static uint32_t detach(uint32_t id)
{
	uint8_t c[32] = { 0 };

	hdr(c, VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING);
	put32(c + 24, id);
	return ctrl_cmd(c, sizeof(c));
}

static void rect(uint8_t *p, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
	put32(p, x);
	put32(p + 4, y);
	put32(p + 8, w);
	put32(p + 12, h);
}

static uint32_t transfer(uint32_t id, uint32_t x, uint32_t y, uint32_t w,
			 uint32_t h, uint64_t off)
{
	uint8_t c[56] = { 0 };

	hdr(c, VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D);
	rect(c + 24, x, y, w, h);
	memcpy(c + 40, &off, 8);
	put32(c + 48, id);
	return ctrl_cmd(c, sizeof(c));
}

static uint32_t set_scanout(uint32_t scanout, uint32_t id, uint32_t x,
			    uint32_t y, uint32_t w, uint32_t h)
{
	uint8_t c[48];

	hdr(c, VIRTIO_GPU_CMD_SET_SCANOUT);
	rect(c + 24, x, y, w, h);
	put32(c + 40, scanout);
	put32(c + 44, id);
	return ctrl_cmd(c, sizeof(c));
}

static uint32_t flush(uint32_t id, uint32_t x, uint32_t y, uint32_t w,
		      uint32_t h)
{
	uint8_t c[48] = { 0 };

	hdr(c, VIRTIO_GPU_CMD_RESOURCE_FLUSH);
	rect(c + 24, x, y, w, h);
	put32(c + 40, id);
	return ctrl_cmd(c, sizeof(c));
}

static void cursor_cmd(uint32_t type, uint32_t id, int32_t x, int32_t y,
		       uint32_t hx, uint32_t hy)
{
	uint8_t c[VIRTIO_GPU_CURSOR_CMD_LEN] = { 0 };

	hdr(c, type);
	put32(c + 28, (uint32_t)x);
	put32(c + 32, (uint32_t)y);
	put32(c + 40, id);
	put32(c + 44, hx);
	put32(c + 48, hy);
	CHECK_EQ(submit(1, c, sizeof(c), NULL, 0), 0);
}

/* The console's picture after a refresh. */
static struct console_surface snap(void)
{
	struct console_surface s = { 0 };

	console_refresh(con);
	CHECK_EQ(console_snapshot(con, &s), 0);
	return s;
}

static uint32_t pattern(uint32_t x, uint32_t y, uint32_t seed)
{
	uint32_t v = (x * 2654435761u) ^ (y * 40503u) ^ seed;

	return v & 0xffffff;
}

/* Lay a w x h XRGB image into backing pages at FB_BASE in @fmt's byte
 * order (an A byte of 0x80), as a linear resource of stride w * 4.  The
 * backing is two ranges with a page-sized gap between them, the first
 * ending mid-row. */
static void fill_backing(uint32_t w, uint32_t h, uint32_t fmt, uint32_t seed,
			 uint64_t addr[2], uint32_t len[2])
{
	size_t total = (size_t)w * h * 4;
	size_t first = (total / 2 + 4095) & ~4095ul;
	uint8_t *img = malloc(total);

	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++) {
			uint32_t v = pattern(x, y, seed);
			uint8_t r = v >> 16, g = v >> 8, b = v, a = 0x80;
			uint8_t *p = img + ((size_t)y * w + x) * 4;

			switch (fmt) {
			case VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM:
			case VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM:
				p[0] = b, p[1] = g, p[2] = r, p[3] = a;
				break;
			case VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM:
			case VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM:
				p[0] = a, p[1] = r, p[2] = g, p[3] = b;
				break;
			case VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM:
			case VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM:
				p[0] = r, p[1] = g, p[2] = b, p[3] = a;
				break;
			default:	/* X8B8G8R8, A8B8G8R8 */
				p[0] = a, p[1] = b, p[2] = g, p[3] = r;
				break;
			}
		}
	if (first >= total)
		first = total / 2;
	addr[0] = FB_BASE;
	len[0] = (uint32_t)first;
	addr[1] = FB_BASE + first + 4096;
	len[1] = (uint32_t)(total - first);
	memcpy(gpa_to_hva(&mem, addr[0], len[0]), img, len[0]);
	memcpy(gpa_to_hva(&mem, addr[1], len[1]), img + first, len[1]);
	free(img);
}

/* ---- tests --------------------------------------------------------------------- */

static void test_discovery(void)
{
	create_device();
	CHECK_EQ(vpci_cfg_rd(&vp, PCI_VENDOR_ID, 2), 0x1af4);
	CHECK_EQ(vpci_cfg_rd(&vp, PCI_DEVICE_ID, 2), 0x1050);
	CHECK_EQ(vpci_cfg_rd(&vp, PCI_REVISION_ID, 4) >> 8, 0x038000);
	CHECK(driver_init(ALL) & (1ull << VIRTIO_GPU_F_EDID));
	CHECK(!(driver_init(ALL) & (1ull << VIRTIO_GPU_F_VIRGL)));
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_GPU_CFG_NUM_SCANOUTS, 4), 1);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_GPU_CFG_NUM_CAPSETS, 4), 0);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_GPU_CFG_EVENTS_READ, 4), 0);
	destroy_device();
}

/* The preferred mode of an EDID: its first detailed timing. */
static void edid_mode(const uint8_t *e, unsigned *w, unsigned *h)
{
	const uint8_t *d = e + 54;

	*w = d[2] | (d[4] >> 4) << 8;
	*h = d[5] | (d[7] >> 4) << 8;
}

static void check_edid(const uint8_t *e, unsigned w, unsigned h)
{
	uint8_t sum = 0;
	unsigned ew, eh, clock, htot, vtot;
	const uint8_t *d = e + 54;

	for (int i = 0; i < 128; i++)
		sum = (uint8_t)(sum + e[i]);
	CHECK_EQ(sum, 0);
	CHECK(memcmp(e, "\x00\xff\xff\xff\xff\xff\xff\x00", 8) == 0);
	CHECK_EQ(e[18], 1);
	CHECK_EQ(e[19], 4);
	CHECK(e[24] & 0x02);			/* preferred timing is native */
	edid_mode(e, &ew, &eh);
	CHECK_EQ(ew, w);
	CHECK_EQ(eh, h);
	/* A refresh rate of 60 Hz (59.5-60.5) from the timing itself. */
	clock = d[0] | d[1] << 8;
	htot = ew + (d[3] | (d[4] & 0xf) << 8);
	vtot = eh + (d[6] | (d[7] & 0xf) << 8);
	CHECK(clock * 10000.0 / htot / vtot > 59.5);
	CHECK(clock * 10000.0 / htot / vtot < 60.6);
	CHECK(memcmp(e + 72, "\x00\x00\x00\xfc\x00Vivarium\n", 14) == 0);
	CHECK_EQ(e[126], 0);
}

static void get_info(unsigned *w, unsigned *h, uint32_t *enabled)
{
	uint8_t c[24], r[VIRTIO_GPU_DISPLAY_INFO_LEN];

	hdr(c, VIRTIO_GPU_CMD_GET_DISPLAY_INFO);
	CHECK_EQ(submit(0, c, sizeof(c), r, sizeof(r)), sizeof(r));
	CHECK_EQ(get32(r), VIRTIO_GPU_RESP_OK_DISPLAY_INFO);
	CHECK_EQ(get32(r + 24), 0);
	CHECK_EQ(get32(r + 28), 0);
	*w = get32(r + 32);
	*h = get32(r + 36);
	*enabled = get32(r + 40);
	CHECK_EQ(get32(r + 48 + 16), 0);	/* scanout 1 disabled */
}

static uint32_t get_edid(uint32_t scanout, uint8_t *edid)
{
	uint8_t c[32] = { 0 }, r[VIRTIO_GPU_EDID_RESP_LEN];

	hdr(c, VIRTIO_GPU_CMD_GET_EDID);
	put32(c + 24, scanout);
	submit(0, c, sizeof(c), r, sizeof(r));
	if (get32(r) == VIRTIO_GPU_RESP_OK_EDID) {
		CHECK_EQ(get32(r + 24), 128);
		memcpy(edid, r + 32, 128);
	}
	return get32(r);
}

static void test_display_info_edid(void)
{
	unsigned w, h;
	uint32_t en;
	uint8_t e[128];

	for (unsigned i = 0; i < 6; i++) {	/* the builder on its own */
		static const unsigned sz[6][2] = {
			{ 320, 200 }, { 640, 480 }, { 1024, 768 },
			{ 1366, 768 }, { 1920, 1080 }, { 2560, 1600 },
		};

		virtio_gpu_edid(sz[i][0], sz[i][1], e);
		check_edid(e, sz[i][0], sz[i][1]);
	}

	create_device();
	driver_init(ALL);
	get_info(&w, &h, &en);
	CHECK_EQ(w, VIRTIO_GPU_DEFAULT_WIDTH);
	CHECK_EQ(h, VIRTIO_GPU_DEFAULT_HEIGHT);
	CHECK_EQ(en, 1);
	CHECK_EQ(get_edid(0, e), VIRTIO_GPU_RESP_OK_EDID);
	check_edid(e, 1024, 768);
	CHECK_EQ(get_edid(1, e), VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID);

	/* The host's window changes: event, config interrupt, new mode. */
	host_irqs.msi[0] = 0;
	CHECK_EQ(console_request_size(con, 1283, 721), 0);
	CHECK_EQ(host_irqs.msi[0], 1);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_GPU_CFG_EVENTS_READ, 4),
		 VIRTIO_GPU_EVENT_DISPLAY);
	get_info(&w, &h, &en);
	CHECK_EQ(w, 1283);
	CHECK_EQ(h, 721);
	CHECK_EQ(get_edid(0, e), VIRTIO_GPU_RESP_OK_EDID);
	check_edid(e, 1283, 721);
	vpci_wr(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_GPU_CFG_EVENTS_CLEAR,
	       VIRTIO_GPU_EVENT_DISPLAY, 4);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_GPU_CFG_EVENTS_READ, 4), 0);
	/* events_read is read-only. */
	vpci_wr(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_GPU_CFG_EVENTS_READ, 1, 4);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_GPU_CFG_EVENTS_READ, 4), 0);

	/* Clamped, and the console's own limits. */
	CHECK_EQ(console_request_size(con, 10, 10), 0);
	get_info(&w, &h, &en);
	CHECK_EQ(w, VIRTIO_GPU_MIN_WIDTH);
	CHECK_EQ(h, VIRTIO_GPU_MIN_HEIGHT);
	CHECK_EQ(console_request_size(con, CONSOLE_MAX_WIDTH + 1, 100), -EINVAL);

	/* Without VIRTIO_GPU_F_EDID, no EDID. */
	driver_init(ALL & ~(1ull << VIRTIO_GPU_F_EDID));
	CHECK_EQ(get_edid(0, e), VIRTIO_GPU_RESP_ERR_UNSPEC);
	/* Before DRIVER_OK: the event is recorded, no interrupt. */
	vpci_wr(&vp, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	host_irqs.msi[0] = 0;
	CHECK_EQ(console_request_size(con, 800, 600), 0);
	CHECK_EQ(host_irqs.msi[0], 0);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_GPU_CFG_EVENTS_READ, 4),
		 VIRTIO_GPU_EVENT_DISPLAY);
	destroy_device();
}

static bool surface_is(const struct console_surface *s, uint32_t w,
		       uint32_t h, uint32_t seed, uint32_t ox, uint32_t oy)
{
	if (s->width != w || s->height != h)
		return false;
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++)
			if (s->pixels[y * w + x] != pattern(x + ox, y + oy, seed)) {
				fprintf(stderr, "  pixel %u,%u: %06x != %06x\n", x, y,
					s->pixels[y * w + x],
					pattern(x + ox, y + oy, seed));
				return false;
			}
	return true;
}

static void test_render(void)
{
	static const uint32_t fmts[] = {
		VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM,
		VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM, VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM,
		VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM, VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM,
		VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM, VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM,
	};
	struct console_surface s;
	uint64_t addr[2];
	uint32_t len[2];

	create_device();
	driver_init(ALL);
	for (unsigned i = 0; i < 8; i++) {
		uint32_t id = 10 + i, w = 200 + i, h = 150;

		CHECK_EQ(create_2d(id, fmts[i], w, h), VIRTIO_GPU_RESP_OK_NODATA);
		fill_backing(w, h, fmts[i], i, addr, len);
		CHECK_EQ(attach(id, 2, addr, len), VIRTIO_GPU_RESP_OK_NODATA);
		CHECK_EQ(transfer(id, 0, 0, w, h, 0), VIRTIO_GPU_RESP_OK_NODATA);
		CHECK(i > 0 || !virtio_gpu_scanout_active(gpu));
		CHECK_EQ(set_scanout(0, id, 0, 0, w, h), VIRTIO_GPU_RESP_OK_NODATA);
		CHECK(virtio_gpu_scanout_active(gpu));
		CHECK_EQ(flush(id, 0, 0, w, h), VIRTIO_GPU_RESP_OK_NODATA);
		s = snap();
		CHECK(surface_is(&s, w, h, i, 0, 0));
		free(s.pixels);
	}

	/* A partial update: new content in the guest's pages, a transfer of
	 * a rectangle (offset as Linux computes it) and a flush of it. */
	{
		uint32_t id = 10, w = 200, h = 150;
		uint64_t a2[2];
		uint32_t l2[2];
		bool ok = true;

		CHECK_EQ(set_scanout(0, id, 0, 0, w, h), VIRTIO_GPU_RESP_OK_NODATA);
		fill_backing(w, h, fmts[0], 99, a2, l2);	/* same pages */
		s = snap();
		CHECK(surface_is(&s, w, h, 0, 0, 0));	/* not transferred yet */
		free(s.pixels);
		CHECK_EQ(transfer(id, 30, 20, 50, 40, (20 * w + 30) * 4),
			 VIRTIO_GPU_RESP_OK_NODATA);
		s = snap();
		CHECK(surface_is(&s, w, h, 0, 0, 0));	/* not flushed yet */
		free(s.pixels);
		CHECK_EQ(flush(id, 30, 20, 50, 40), VIRTIO_GPU_RESP_OK_NODATA);
		s = snap();
		for (uint32_t y = 0; y < h; y++)
			for (uint32_t x = 0; x < w; x++) {
				bool in = x >= 30 && x < 80 && y >= 20 && y < 60;

				ok &= s.pixels[y * w + x] ==
				      pattern(x, y, in ? 99 : 0);
			}
		CHECK(ok);
		free(s.pixels);

		/* A scanout showing part of the resource (a 100x50 window at
		 * 40,30 of the fully transferred image). */
		CHECK_EQ(transfer(id, 0, 0, w, h, 0), VIRTIO_GPU_RESP_OK_NODATA);
		CHECK_EQ(set_scanout(0, id, 40, 30, 100, 50), VIRTIO_GPU_RESP_OK_NODATA);
		s = snap();
		CHECK(surface_is(&s, 100, 50, 99, 40, 30));
		free(s.pixels);

		/* Scanout off (resource 0): the device stops showing it. */
		CHECK_EQ(set_scanout(0, 0, 0, 0, 0, 0), VIRTIO_GPU_RESP_OK_NODATA);
		CHECK(!virtio_gpu_scanout_active(gpu));
		/* Unref of the shown resource turns the scanout off too. */
		CHECK_EQ(set_scanout(0, id, 0, 0, w, h), VIRTIO_GPU_RESP_OK_NODATA);
		CHECK_EQ(unref(id), VIRTIO_GPU_RESP_OK_NODATA);
		CHECK(!virtio_gpu_scanout_active(gpu));
		CHECK_EQ(flush(id, 0, 0, 1, 1), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
		/* A detach, then a transfer has no backing. */
		CHECK_EQ(detach(11), VIRTIO_GPU_RESP_OK_NODATA);
		CHECK_EQ(detach(11), VIRTIO_GPU_RESP_ERR_UNSPEC);
		CHECK_EQ(transfer(11, 0, 0, 1, 1, 0), VIRTIO_GPU_RESP_ERR_UNSPEC);
	}

	/* A device reset frees everything; the preferred size stays. */
	CHECK_EQ(console_request_size(con, 800, 600), 0);
	CHECK_EQ(set_scanout(0, 12, 0, 0, 202, 150), VIRTIO_GPU_RESP_OK_NODATA);
	driver_init(ALL);
	CHECK(!virtio_gpu_scanout_active(gpu));
	CHECK_EQ(set_scanout(0, 12, 0, 0, 202, 150),
		 VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	{
		unsigned w, h;
		uint32_t en;

		get_info(&w, &h, &en);
		CHECK_EQ(w, 800);
		CHECK_EQ(h, 600);
	}
	destroy_device();
}

static void test_cursor(void)
{
	uint32_t w = 320, h = 200;
	uint64_t addr[2], caddr[2];
	uint32_t len[2], clen[2];
	struct console_surface s;
	uint32_t cid = 2;

	create_device();
	driver_init(ALL);
	CHECK_EQ(create_2d(1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, w, h),
		 VIRTIO_GPU_RESP_OK_NODATA);
	fill_backing(w, h, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 5, addr, len);
	CHECK_EQ(attach(1, 2, addr, len), VIRTIO_GPU_RESP_OK_NODATA);
	CHECK_EQ(transfer(1, 0, 0, w, h, 0), VIRTIO_GPU_RESP_OK_NODATA);
	CHECK_EQ(set_scanout(0, 1, 0, 0, w, h), VIRTIO_GPU_RESP_OK_NODATA);

	/* A 64x64 B8G8R8A8 cursor: opaque white in its top-left 8x8,
	 * transparent elsewhere, and one half-transparent black pixel. */
	CHECK_EQ(create_2d(cid, VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 64, 64),
		 VIRTIO_GPU_RESP_OK_NODATA);
	{
		uint8_t *p = gpa_to_hva(&mem, FB_BASE + (8u << 20), 64 * 64 * 4);

		memset(p, 0, 64 * 64 * 4);
		for (int y = 0; y < 8; y++)
			for (int x = 0; x < 8; x++)
				memset(p + (y * 64 + x) * 4, 0xff, 4);
		p[(10 * 64 + 10) * 4 + 3] = 0x80;
		caddr[0] = FB_BASE + (8u << 20);
		clen[0] = 64 * 64 * 4;
		(void)caddr[1];
		(void)clen[1];
	}
	CHECK_EQ(attach(cid, 1, caddr, clen), VIRTIO_GPU_RESP_OK_NODATA);
	CHECK_EQ(transfer(cid, 0, 0, 64, 64, 0), VIRTIO_GPU_RESP_OK_NODATA);
	cursor_cmd(VIRTIO_GPU_CMD_UPDATE_CURSOR, cid, 100, 50, 1, 1);
	s = snap();
	CHECK_EQ(s.pixels[50 * w + 100], 0xffffff);
	CHECK_EQ(s.pixels[57 * w + 107], 0xffffff);
	CHECK_EQ(s.pixels[58 * w + 108], pattern(108, 58, 5));
	{
		uint32_t b = pattern(110, 60, 5), want = 0;

		for (int sh = 0; sh < 24; sh += 8)
			want |= ((((b >> sh) & 0xff) * 127 + 127) / 255) << sh;
		CHECK_EQ(s.pixels[60 * w + 110], want);
	}
	free(s.pixels);

	/* Moved, partly off the left edge: the old place shows the resource. */
	cursor_cmd(VIRTIO_GPU_CMD_MOVE_CURSOR, 0, -4, 10, 0, 0);
	s = snap();
	CHECK_EQ(s.pixels[50 * w + 100], pattern(100, 50, 5));
	CHECK_EQ(s.pixels[10 * w + 0], 0xffffff);
	CHECK_EQ(s.pixels[10 * w + 3], 0xffffff);
	CHECK_EQ(s.pixels[10 * w + 4], pattern(4, 10, 5));
	free(s.pixels);

	/* Hidden (resource 0). */
	cursor_cmd(VIRTIO_GPU_CMD_UPDATE_CURSOR, 0, 0, 0, 0, 0);
	s = snap();
	CHECK(surface_is(&s, w, h, 5, 0, 0));
	free(s.pixels);

	/* Hostile cursor commands are ignored: a resource over 64x64, a
	 * missing one, scanout 3, a short command, an unknown type. */
	cursor_cmd(VIRTIO_GPU_CMD_UPDATE_CURSOR, 1, 0, 0, 0, 0);
	cursor_cmd(VIRTIO_GPU_CMD_UPDATE_CURSOR, 77, 0, 0, 0, 0);
	{
		uint8_t c[VIRTIO_GPU_CURSOR_CMD_LEN] = { 0 };

		hdr(c, VIRTIO_GPU_CMD_UPDATE_CURSOR);
		put32(c + 24, 3);
		put32(c + 40, cid);
		CHECK_EQ(submit(1, c, sizeof(c), NULL, 0), 0);
		CHECK_EQ(submit(1, c, 20, NULL, 0), 0);
		hdr(c, 0x999);
		CHECK_EQ(submit(1, c, sizeof(c), NULL, 0), 0);
	}
	s = snap();
	CHECK(surface_is(&s, w, h, 5, 0, 0));
	free(s.pixels);
	destroy_device();
}

/*
 * What a Linux guest does at its first modeset: a framebuffer's backing as
 * hundreds of page-sized entries, here in reverse order.  On a thread
 * under the vCPU threads' seccomp list, as in a sandboxed VM process:
 * checking the entries sorts them, and glibc's qsort asks sysinfo() for
 * the memory size once the array passes 1 KiB (the rig's first desktop
 * boot died with "forbidden system call sysinfo in thread 'vcpu0'").
 */
static void *attach_many_thread(void *opaque)
{
	enum { N = 512 };
	uint64_t *addr = calloc(N, sizeof(*addr));
	uint32_t *len = calloc(N, sizeof(*len));
	uint32_t *r = opaque;

	sandbox_thread_enter(SANDBOX_THREAD_VCPU, "vcpu-test");
	for (unsigned i = 0; i < N; i++) {
		addr[i] = (16u << 20) + (uint64_t)(N - 1 - i) * 4096;
		len[i] = 4096;
	}
	*r = attach(7, N, addr, len);
	free(addr);
	free(len);
	return NULL;
}

static void test_backing_many_entries_sandboxed(void)
{
	uint32_t r = 0;
	pthread_t t;

	create_device();
	driver_init(ALL);
	CHECK_EQ(create_2d(7, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 1024, 512),
		 VIRTIO_GPU_RESP_OK_NODATA);
	pthread_create(&t, NULL, attach_many_thread, &r);
	pthread_join(t, NULL);
	CHECK_EQ(r, VIRTIO_GPU_RESP_OK_NODATA);
	destroy_device();
}

static void test_hostile(void)
{
	uint64_t addr[4];
	uint32_t len[4];
	uint8_t c[64], r[VIRTIO_GPU_DISPLAY_INFO_LEN];

	create_device();
	driver_init(ALL);

	/* Resource ids: 0, taken, unknown. */
	CHECK_EQ(create_2d(0, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 8, 8),
		 VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	CHECK_EQ(create_2d(1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 64, 64),
		 VIRTIO_GPU_RESP_OK_NODATA);
	CHECK_EQ(create_2d(1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 8, 8),
		 VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	CHECK_EQ(unref(0xffffffff), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	CHECK_EQ(transfer(5, 0, 0, 1, 1, 0), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	CHECK_EQ(set_scanout(0, 5, 0, 0, 1, 1), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	CHECK_EQ(detach(5), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	addr[0] = FB_BASE;
	len[0] = 4096;
	CHECK_EQ(attach(5, 1, addr, len), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);

	/* Formats and sizes. */
	CHECK_EQ(create_2d(2, 5, 8, 8), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	CHECK_EQ(create_2d(2, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 0, 8),
		 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	CHECK_EQ(create_2d(2, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 65536, 65536),
		 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	CHECK_EQ(create_2d(2, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 0xffffffff, 1),
		 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	/* 16384x16384 is 1 GiB: in range, over the budget. */
	CHECK_EQ(create_2d(2, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 16384, 16384),
		 VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);

	/* Scanout ids and rectangles. */
	CHECK_EQ(set_scanout(1, 1, 0, 0, 64, 64), VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID);
	CHECK_EQ(set_scanout(16, 1, 0, 0, 64, 64), VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID);
	CHECK_EQ(set_scanout(0, 1, 1, 0, 64, 64), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	CHECK_EQ(set_scanout(0, 1, 0, 0, 0, 64), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	CHECK_EQ(set_scanout(0, 1, 0xffffffff, 0, 2, 64),
		 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	CHECK_EQ(flush(1, 60, 60, 5, 4), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	CHECK_EQ(flush(1, 0, 0xfffffff0, 1, 0x20), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);

	/* Backing: none, out of RAM, straddling RAM's end, empty entries,
	 * overlapping entries, too many or no entries, entries missing. */
	CHECK_EQ(transfer(1, 0, 0, 64, 64, 0), VIRTIO_GPU_RESP_ERR_UNSPEC);
	addr[0] = RAM_SIZE;
	CHECK_EQ(attach(1, 1, addr, len), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	addr[0] = RAM_SIZE - 4096;
	len[0] = 8192;
	CHECK_EQ(attach(1, 1, addr, len), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	addr[0] = 0xfffffffffffff000ull;
	len[0] = 0x2000;
	CHECK_EQ(attach(1, 1, addr, len), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	addr[0] = FB_BASE;
	len[0] = 0;
	CHECK_EQ(attach(1, 1, addr, len), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	addr[0] = FB_BASE, len[0] = 8192;
	addr[1] = FB_BASE + 0x10000, len[1] = 4096;
	addr[2] = FB_BASE + 4096, len[2] = 4096;	/* inside the first */
	CHECK_EQ(attach(1, 3, addr, len), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	addr[2] = FB_BASE + 0x10000;			/* the second again */
	CHECK_EQ(attach(1, 3, addr, len), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	CHECK_EQ(attach(1, 0, addr, len), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	hdr(c, VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING);
	put32(c + 24, 1);
	put32(c + 28, 0x10000000);		/* entries never sent */
	CHECK_EQ(ctrl_cmd(c, 48), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	put32(c + 28, 3);			/* 3 promised, 1 sent */
	memcpy(c + 32, &addr[0], 8);
	put32(c + 40, 4096);
	CHECK_EQ(ctrl_cmd(c, 48), VIRTIO_GPU_RESP_ERR_UNSPEC);

	/* A good backing of 16 KiB (exactly the 64x64 resource), then
	 * transfers reaching past it. */
	addr[0] = FB_BASE, len[0] = 8192;
	addr[1] = FB_BASE + 0x10000, len[1] = 8192;
	CHECK_EQ(attach(1, 2, addr, len), VIRTIO_GPU_RESP_OK_NODATA);
	CHECK_EQ(attach(1, 2, addr, len), VIRTIO_GPU_RESP_ERR_UNSPEC);
	CHECK_EQ(transfer(1, 0, 0, 64, 64, 0), VIRTIO_GPU_RESP_OK_NODATA);
	CHECK_EQ(transfer(1, 0, 0, 64, 64, 4), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	CHECK_EQ(transfer(1, 0, 0, 64, 64, 0xfffffffffffffff0ull),
		 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	CHECK_EQ(transfer(1, 0, 63, 64, 1, 63 * 256), VIRTIO_GPU_RESP_OK_NODATA);
	CHECK_EQ(transfer(1, 0, 63, 64, 1, 63 * 256 + 4),
		 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	CHECK_EQ(transfer(1, 0, 0, 65, 1, 0), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	CHECK_EQ(transfer(1, 0xffffffc0, 0, 0x80, 1, 0),
		 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	CHECK_EQ(transfer(1, 0, 0, 0, 0, 0), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);

	/* Short and oversized command buffers; short response buffers. */
	hdr(c, VIRTIO_GPU_CMD_RESOURCE_CREATE_2D);
	CHECK_EQ(ctrl_cmd(c, 24), VIRTIO_GPU_RESP_ERR_UNSPEC);
	CHECK_EQ(ctrl_cmd(c, 39), VIRTIO_GPU_RESP_ERR_UNSPEC);
	CHECK_EQ(ctrl_cmd(c, 10), VIRTIO_GPU_RESP_ERR_UNSPEC);
	CHECK_EQ(ctrl_cmd(c, 0), VIRTIO_GPU_RESP_ERR_UNSPEC);
	put32(c + 24, 3);
	put32(c + 28, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM);
	put32(c + 32, 16);
	put32(c + 36, 16);
	memset(c + 40, 0xaa, 24);
	CHECK_EQ(ctrl_cmd(c, 64), VIRTIO_GPU_RESP_OK_NODATA);	/* extra ignored */
	hdr(c, VIRTIO_GPU_CMD_GET_DISPLAY_INFO);
	CHECK_EQ(submit(0, c, 24, r, 24), 24);			/* no room */
	CHECK_EQ(get32(r), VIRTIO_GPU_RESP_ERR_UNSPEC);
	CHECK_EQ(submit(0, c, 24, r, 10), 0);			/* nowhere */
	CHECK_EQ(submit(0, c, 24, NULL, 0), 0);
	CHECK_EQ(r[0], 0xee);
	hdr(c, 0x0200);						/* 3D */
	CHECK_EQ(ctrl_cmd(c, 24), VIRTIO_GPU_RESP_ERR_UNSPEC);
	hdr(c, VIRTIO_GPU_CMD_GET_CAPSET_INFO);
	CHECK_EQ(ctrl_cmd(c, 40), VIRTIO_GPU_RESP_ERR_UNSPEC);

	/* Fences are echoed (in order: each answered before the next). */
	hdr(c, VIRTIO_GPU_CMD_RESOURCE_FLUSH);
	put32(c + 4, VIRTIO_GPU_FLAG_FENCE | 0x2);
	memcpy(c + 8, &(uint64_t){ 0x1234567890ull }, 8);
	put32(c + 16, 7);
	rect(c + 24, 0, 0, 1, 1);
	put32(c + 40, 1);
	CHECK_EQ(submit(0, c, 48, r, 24), 24);
	CHECK_EQ(get32(r), VIRTIO_GPU_RESP_OK_NODATA);
	CHECK_EQ(get32(r + 4), VIRTIO_GPU_FLAG_FENCE);
	CHECK_EQ(get64(r + 8), 0x1234567890ull);
	CHECK_EQ(get32(r + 16), 7);

	/* The budget: 64 MiB resources until the 256 MiB run out, then
	 * room again after an unref. */
	{
		unsigned made = 0;
		uint32_t last = 0;

		for (uint32_t id = 100; id < 110; id++) {
			last = create_2d(id, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM,
					 4096, 4096);
			if (last != VIRTIO_GPU_RESP_OK_NODATA)
				break;
			made++;
		}
		CHECK_EQ(made, 3);
		CHECK_EQ(last, VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
		CHECK_EQ(unref(100), VIRTIO_GPU_RESP_OK_NODATA);
		CHECK_EQ(create_2d(200, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 4096, 4096),
			 VIRTIO_GPU_RESP_OK_NODATA);
		/* Many small ones fail too once the overhead adds up: the
		 * rest of the budget is under 64 MiB, so fewer than 16384 1x1
		 * resources fit. */
		made = 0;
		for (uint32_t id = 1000; id < 1000 + 20000; id++) {
			if (create_2d(id, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 1, 1) !=
			    VIRTIO_GPU_RESP_OK_NODATA)
				break;
			made++;
		}
		CHECK(made > 1000 && made < 16384);
	}
	/* The queues still work. */
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_COMMON_STATUS, 1), 0xf);
	destroy_device();
}

/* ---- save and load --------------------------------------------------------------- */

static GVariant *gpu_save(void)
{
	GVariant *v;

	pthread_mutex_lock(&lock);
	v = virtio_gpu_device_ops.save(gpu);
	pthread_mutex_unlock(&lock);
	return v ? g_variant_ref_sink(v) : NULL;
}

static void test_save_load(void)
{
	uint32_t w = 320, h = 240;
	uint64_t addr[2];
	uint32_t len[2];
	struct console_surface s1, s2;
	GVariant *st, *st2;
	char err[256] = "";
	int ret;

	create_device();
	driver_init(ALL);
	CHECK_EQ(console_request_size(con, 1280, 800), 0);
	CHECK_EQ(create_2d(7, VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM, w, h),
		 VIRTIO_GPU_RESP_OK_NODATA);
	fill_backing(w, h, VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM, 3, addr, len);
	CHECK_EQ(attach(7, 2, addr, len), VIRTIO_GPU_RESP_OK_NODATA);
	CHECK_EQ(transfer(7, 0, 0, w, h, 0), VIRTIO_GPU_RESP_OK_NODATA);
	CHECK_EQ(set_scanout(0, 7, 0, 0, w, h), VIRTIO_GPU_RESP_OK_NODATA);
	CHECK_EQ(create_2d(8, VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 64, 64),
		 VIRTIO_GPU_RESP_OK_NODATA);
	{
		uint64_t ca = FB_BASE + (8u << 20);
		uint32_t cl = 64 * 64 * 4;

		memset(gpa_to_hva(&mem, ca, cl), 0xff, cl);
		CHECK_EQ(attach(8, 1, &ca, &cl), VIRTIO_GPU_RESP_OK_NODATA);
		CHECK_EQ(transfer(8, 0, 0, 64, 64, 0), VIRTIO_GPU_RESP_OK_NODATA);
	}
	cursor_cmd(VIRTIO_GPU_CMD_UPDATE_CURSOR, 8, 300, 230, 2, 3);
	CHECK_EQ(create_2d(9, VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM, 3, 5),
		 VIRTIO_GPU_RESP_OK_NODATA);	/* no backing */
	s1 = snap();

	st = gpu_save();
	CHECK(st != NULL);
	if (!st)
		return;
	CHECK(g_variant_is_of_type(st, G_VARIANT_TYPE(VIRTIO_GPU_STATE_TYPE)));

	/* A fresh device; the guest's pages change meanwhile (the host copy
	 * is what the screen shows, not the pages). */
	destroy_device();
	memset(gpa_to_hva(&mem, addr[0], len[0]), 0, len[0]);
	console_free(con);
	con = console_new();
	create_device();
	pthread_mutex_lock(&lock);
	ret = virtio_gpu_device_ops.load(gpu, 1, st, err, sizeof(err));
	pthread_mutex_unlock(&lock);
	CHECK_EQ(ret, 0);
	if (ret)
		fprintf(stderr, "  (%s)\n", err);
	st2 = gpu_save();
	CHECK(st2 && g_variant_equal(st, st2));
	s2 = snap();
	CHECK_EQ(s2.width, w);
	CHECK_EQ(s2.height, h);
	CHECK(s1.width == s2.width && s1.height == s2.height &&
	      memcmp(s1.pixels, s2.pixels, (size_t)w * h * 4) == 0);
	CHECK(virtio_gpu_scanout_active(gpu));
	{
		unsigned pw, ph;

		virtio_gpu_preferred_size(gpu, &pw, &ph);
		CHECK_EQ(pw, 1280);
		CHECK_EQ(ph, 800);
	}
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_GPU_CFG_EVENTS_READ, 4),
		 VIRTIO_GPU_EVENT_DISPLAY);
	/* The queues go on where they were. */
	CHECK_EQ(flush(7, 0, 0, w, h), VIRTIO_GPU_RESP_OK_NODATA);
	CHECK_EQ(create_2d(7, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 1, 1),
		 VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	free(s1.pixels);
	free(s2.pixels);

	/* Refused: each leaves the device as it was. */
	{
		const struct device_ops *ops = &virtio_gpu_device_ops;
		GVariant *res0 = g_variant_get_child_value(st, 4);
		GVariant *r0 = g_variant_get_child_value(res0, 0);
		uint8_t junk[32] = { 1, 2, 3 };

		pthread_mutex_lock(&lock);
		state_refused(ops, gpu, 1, g_variant_new("(u)", 1),
			      "virtio-gpu: state is of type");
		state_refused(ops, gpu, 2, g_variant_ref(st),
			      "virtio-gpu: state version");
		state_refused(ops, gpu, 1, state_with(st, g_variant_new_uint32(0), 1, 1),
			      "virtio-gpu: preferred size");
		state_refused(ops, gpu, 1, state_with(st, g_variant_new_uint32(2), 1, 3),
			      "virtio-gpu: events");
		state_refused(ops, gpu, 1, state_with(st, g_variant_new_uint32(0), 3, 4, 0, 0),
			      "virtio-gpu: resource id 0");
		state_refused(ops, gpu, 1, state_with(st, g_variant_new_uint32(9), 3, 4, 0, 0),
			      "virtio-gpu: resource 9 twice");
		state_refused(ops, gpu, 1, state_with(st, g_variant_new_uint32(5), 3, 4, 0, 1),
			      "virtio-gpu: resource 7: format");
		state_refused(ops, gpu, 1, state_with(st, g_variant_new_uint32(65536), 3, 4, 0, 2),
			      "virtio-gpu: resource 7: 65536x240");
		state_refused(ops, gpu, 1, state_with(st, g_variant_new_uint32(16384), 3, 4, 0, 2),
			      "virtio-gpu: resource 7: 307200 bytes");
		state_refused(ops, gpu, 1, state_with(st, g_variant_new("(tu)", (guint64)RAM_SIZE, 4096u), 4, 4, 0, 4, 0),
			      "virtio-gpu: resource 7: backing");
		state_refused(ops, gpu, 1, state_with(st, g_variant_new("(tu)", (guint64)addr[0], 4096u), 4, 4, 0, 4, 1),
			      "virtio-gpu: resource 7: backing");
		state_refused(ops, gpu, 1, state_with(st, g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, junk, sizeof(junk), 1), 3, 4, 0, 6),
			      "virtio-gpu: resource 7: pixels");
		state_refused(ops, gpu, 1, state_with(st, g_variant_new_uint32(9), 2, 5, 0),
			      "virtio-gpu: scanout of resource 9");
		state_refused(ops, gpu, 1, state_with(st, g_variant_new_uint32(1), 2, 5, 1),
			      "virtio-gpu: scanout of resource 7");
		state_refused(ops, gpu, 1, state_with(st, g_variant_new_uint32(64), 2, 6, 4),
			      "virtio-gpu: cursor");
		state_refused(ops, gpu, 1, state_with(st, g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, junk, sizeof(junk), 1), 2, 6, 6),
			      "virtio-gpu: cursor");
		pthread_mutex_unlock(&lock);
		g_variant_unref(r0);
		g_variant_unref(res0);
	}
	g_variant_unref(st);
	if (st2)
		g_variant_unref(st2);
	destroy_device();
}

int main(void)
{
	sandbox_test_threads(false);
	log_set_level(LOG_ERROR);	/* the hostile cases log warnings */
	if (guest_mem_init(&mem, RAM_SIZE) != 0)
		SKIP("cannot allocate guest RAM");
	CHECK_EQ(vpci_host_new(&vp, &pio, &vpci_irqs_ops, &host_irqs), 0);
	host = vp.host;
	mmio = vp.mmio;
	con = console_new();

	RUN_TEST(test_discovery);
	RUN_TEST(test_display_info_edid);
	RUN_TEST(test_render);
	RUN_TEST(test_backing_many_entries_sandboxed);
	RUN_TEST(test_cursor);
	RUN_TEST(test_hostile);
	RUN_TEST(test_save_load);

	console_free(con);
	pci_host_free(host);
	bus_free(mmio);
	bus_free(pio);
	guest_mem_free(&mem);
	return check_finish();
}
