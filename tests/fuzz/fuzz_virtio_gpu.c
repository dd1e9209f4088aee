/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_virtio_gpu.c - the virtio GPU device (vmm-core/virtio/
 * virtio_gpu.c) against arbitrary commands on its controlq and cursorq,
 * driven through its PCI registers like a driver, with guest RAM holding
 * the input itself (backing pages may point at it, or anywhere), and the
 * console rendering what the device shows.  The rings themselves are
 * fuzz_virtqueue's subject; here every chain is well formed.
 *
 * Input: 8 control bytes, then records.
 *   byte 0: bit 0 negotiate VIRTIO_GPU_F_EDID, bit 1 save -> load into a
 *           new device -> save at the end (must match), bit 2 reset the
 *           device half-way, bit 3 console_request_size(bytes 1-4)
 *   bytes 1-4: le16 width, le16 height for bit 3
 *   record: byte q (bit 0: cursorq, bit 1: refresh the console after),
 *           le16 command length, le16 response room, the command's bytes
 * Checked: nothing crashes or touches memory outside guest RAM (ASan and
 * UBSan under libFuzzer); every chain is answered at once (the used index
 * moves by one per kick), with a response type from the spec when it has
 * room for one; save works after the input, and a saved state loads into
 * a fresh device and saves again identically.  A violation abort()s.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "fuzz.h"
#include "fuzzlib.h"
#include "virtio_pci_driver.h"
#include "vring_driver.h"

#include "bus.h"
#include "devices/pci.h"
#include "display/console.h"
#include "log.h"
#include "mem.h"
#include "virtio/virtio_gpu.h"
#include "virtio/virtio_pci.h"

#define FUZZ_RAM	(4u << 20)
#define RING_GPA(q)	(0x10000ull + 0x4000ull * (q))
#define QSIZE		16
#define INPUT_GPA	0x100000ull	/* the input, for backing pages */
#define INPUT_MAX	(2u << 20)
#define CTRL_BYTES	8
#define DEVFN		(3 << 3)
#define BAR_ADDR	0xfe000000ull
#define MSIX_ADDR	0xfe100000ull
#define MAX_RECORDS	256

static struct guest_mem mem;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct bus *pio, *mmio;
static struct pci_host *host;
/* The driver's view of the function (the device lock held: no .lock). */
static struct vpci_irqs host_irqs = { .msi_base = 0x40 };
static struct vpci vp = { .devfn = DEVFN, .bar = BAR_ADDR, .msix = MSIX_ADDR };
static struct console *con;
static bool ready;

const char fuzz_target[] = "fuzz_virtio_gpu";

static void init_once(void)
{
	if (ready)
		return;
	log_set_level(LOG_ERROR);	/* hostile input logs warnings */
	fuzz_ram(&mem, FUZZ_RAM);
	con = console_new();
	if (!con || vpci_host_new(&vp, &pio, &vpci_irqs_ops, &host_irqs) != 0)
		fuzz_fail("cannot build the PCI host");
	host = vp.host;
	mmio = vp.mmio;
	ready = true;
}

static struct virtio_gpu *new_device(void)
{
	struct virtio_gpu_config c = { .pci = host, .devfn = DEVFN, .mem = &mem };
	struct virtio_gpu *g;
	char err[256];

	g = virtio_gpu_new(&c, err, sizeof(err));
	if (!g)
		fuzz_fail(err);
	vpci_map_bars(&vp);
	return g;
}

static void driver_init(struct vdrv d[2], bool edid)
{
	uint64_t f = (1ull << VIRTIO_F_VERSION_1) |
		     (edid ? 1ull << VIRTIO_GPU_F_EDID : 0);

	vpci_negotiate(&vp, 0, f, &f);
	for (unsigned q = 0; q < 2; q++) {
		vdrv_init(&d[q], &mem, QSIZE, RING_GPA(q), 0x2000);
		vpci_queue_setup(&vp, q, &d[q], -1, NULL);
	}
	if (vpci_driver_ok(&vp) != 0xf)
		fuzz_fail("driver initialisation failed");
}

#define SAVE_FAILED	"save failed with nothing in flight"

/* One command: its bytes in the queue's buffer space, a response buffer,
 * kicked; it must be answered at once. */
static void submit(struct vdrv *d, unsigned q, const uint8_t *cmd,
		   size_t len, size_t resp)
{
	uint16_t before = vdrv_used_idx(d);
	struct vbuf b[2];
	unsigned n = 0;
	uint32_t id, ulen;

	d->data_next = d->data_start;		/* one chain at a time */
	b[n].gpa = vdrv_alloc(d, len ? len : 1, 8);
	b[n].len = (uint32_t)len;
	b[n++].write = false;
	memcpy(gpa_to_hva(&mem, b[0].gpa, len ? len : 1), cmd, len);
	if (resp) {
		b[n].gpa = vdrv_alloc(d, resp, 8);
		b[n].len = (uint32_t)resp;
		b[n++].write = true;
	}
	vdrv_add(d, b, n, false);
	vpci_kick(&vp, q);
	if (vdrv_used_idx(d) != (uint16_t)(before + 1) ||
	    !vdrv_get_used(d, &id, &ulen))
		fuzz_fail("a command was not answered at once");
	if (ulen > resp)
		fuzz_fail("used length past the response buffer");
	if (q == 0 && ulen >= VIRTIO_GPU_HDR_LEN) {
		uint32_t type;

		memcpy(&type, gpa_to_hva(&mem, b[1].gpa, 4), 4);
		if (type < VIRTIO_GPU_RESP_OK_NODATA ||
		    (type > VIRTIO_GPU_RESP_OK_EDID &&
		     type < VIRTIO_GPU_RESP_ERR_UNSPEC) ||
		    type > VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER)
			fuzz_fail("response type outside the spec");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtio_gpu *g;
	struct vdrv d[2];
	const uint8_t *p, *end = data + size;
	unsigned nrec = 0;
	size_t half = size / 2;
	bool did_reset = false;

	init_once();
	if (size < CTRL_BYTES)
		return 0;
	memset(gpa_to_hva(&mem, INPUT_GPA, INPUT_MAX), 0, INPUT_MAX);
	memcpy(gpa_to_hva(&mem, INPUT_GPA, INPUT_MAX), data,
	       size < INPUT_MAX ? size : INPUT_MAX);
	pthread_mutex_lock(&lock);
	g = new_device();
	pthread_mutex_unlock(&lock);
	console_set_hw(con, &virtio_gpu_console_ops, g, &lock);
	pthread_mutex_lock(&lock);
	driver_init(d, data[0] & 1);
	pthread_mutex_unlock(&lock);
	if (data[0] & 8)
		console_request_size(con, data[1] | data[2] << 8,
				     data[3] | data[4] << 8);

	for (p = data + CTRL_BYTES; end - p >= 5 && nrec < MAX_RECORDS; nrec++) {
		unsigned q = p[0] & 1;
		size_t len = p[1] | p[2] << 8, resp = p[3] | p[4] << 8;
		bool refresh = p[0] & 2;

		p += 5;
		if (len > (size_t)(end - p))
			len = (size_t)(end - p);
		if (resp > 0x1000)
			resp = 0x1000;
		pthread_mutex_lock(&lock);
		if ((data[0] & 4) && !did_reset && (size_t)(p - data) >= half) {
			did_reset = true;
			virtio_gpu_device_ops.reset(g);
			driver_init(d, data[0] & 1);
		}
		submit(&d[q], q, p, len, resp);
		pthread_mutex_unlock(&lock);
		if (refresh)
			console_refresh(con);
		p += len;
	}
	console_refresh(con);

	pthread_mutex_lock(&lock);
	if (data[0] & 2) {
		GVariant *s = fuzz_save(&virtio_gpu_device_ops, g, SAVE_FAILED);

		console_set_hw(con, NULL, NULL, NULL);
		virtio_gpu_free(g);
		g = new_device();
		fuzz_load_same(&virtio_gpu_device_ops, g, s, SAVE_FAILED);
		pthread_mutex_unlock(&lock);
		console_set_hw(con, &virtio_gpu_console_ops, g, &lock);
		console_refresh(con);
		pthread_mutex_lock(&lock);
	} else {
		g_variant_unref(fuzz_save(&virtio_gpu_device_ops, g,
					  SAVE_FAILED));
	}
	pthread_mutex_unlock(&lock);
	console_set_hw(con, NULL, NULL, NULL);
	pthread_mutex_lock(&lock);
	virtio_gpu_free(g);
	pthread_mutex_unlock(&lock);
	return 0;
}

/* ---- seeds: what Linux's driver sends ------------------------------------- */

static uint8_t seed_buf[CTRL_BYTES + 4096];
static size_t seed_len;

static void rec(unsigned q, const void *cmd, size_t len, size_t resp)
{
	uint8_t *r = seed_buf + seed_len;

	r[0] = (uint8_t)(q | 2);
	r[1] = (uint8_t)len;
	r[2] = (uint8_t)(len >> 8);
	r[3] = (uint8_t)resp;
	r[4] = (uint8_t)(resp >> 8);
	memcpy(r + 5, cmd, len);
	seed_len += 5 + len;
}

static void le32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void seed_cmd(uint32_t type, const uint32_t *args, unsigned n,
		     size_t resp)
{
	uint8_t c[24 + 4 * 16] = { 0 };

	le32(c, type);
	for (unsigned i = 0; i < n; i++)
		le32(c + 24 + 4 * i, args[i]);
	rec(0, c, 24 + 4 * n, resp);
}

void fuzz_make_seeds(void (*add)(const void *data, size_t len))
{
	/* 32x16 B8G8R8X8 resource 1 backed by the input itself (2 KiB from
	 * INPUT_GPA in two entries), transferred, shown, flushed; a 64x64
	 * cursor resource 2 (backing past the first), cursor shown and moved;
	 * display info, EDID. */
	uint32_t b = (uint32_t)INPUT_GPA;

	for (unsigned v = 0; v < 4; v++) {
		seed_len = CTRL_BYTES;
		memset(seed_buf, 0, CTRL_BYTES);
		seed_buf[0] = (uint8_t)(1 | (v & 1 ? 2 : 0) | (v & 2 ? 4 | 8 : 0));
		seed_buf[1] = 0x20, seed_buf[2] = 0x03;	/* 800x600 */
		seed_buf[3] = 0x58, seed_buf[4] = 0x02;
		seed_cmd(VIRTIO_GPU_CMD_GET_DISPLAY_INFO, NULL, 0, VIRTIO_GPU_DISPLAY_INFO_LEN);
		seed_cmd(VIRTIO_GPU_CMD_GET_EDID, (uint32_t[]){ 0, 0 }, 2, VIRTIO_GPU_EDID_RESP_LEN);
		seed_cmd(VIRTIO_GPU_CMD_RESOURCE_CREATE_2D,
			 (uint32_t[]){ 1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 32, 16 }, 4, 24);
		seed_cmd(VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING,
			 (uint32_t[]){ 1, 2, b, 0, 1024, 0, b + 4096, 0, 1024, 0 }, 10, 24);
		seed_cmd(VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D,
			 (uint32_t[]){ 0, 0, 32, 16, 0, 0, 1, 0 }, 8, 24);
		seed_cmd(VIRTIO_GPU_CMD_SET_SCANOUT,
			 (uint32_t[]){ 0, 0, 32, 16, 0, 1 }, 6, 24);
		seed_cmd(VIRTIO_GPU_CMD_RESOURCE_FLUSH,
			 (uint32_t[]){ 0, 0, 32, 16, 1, 0 }, 6, 24);
		seed_cmd(VIRTIO_GPU_CMD_RESOURCE_CREATE_2D,
			 (uint32_t[]){ 2, VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 64, 64 }, 4, 24);
		seed_cmd(VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING,
			 (uint32_t[]){ 2, 1, b + 0x10000, 0, 16384, 0 }, 6, 24);
		seed_cmd(VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D,
			 (uint32_t[]){ 0, 0, 64, 64, 0, 0, 2, 0 }, 8, 24);
		{
			uint8_t c[VIRTIO_GPU_CURSOR_CMD_LEN] = { 0 };

			le32(c, VIRTIO_GPU_CMD_UPDATE_CURSOR);
			le32(c + 28, 5);
			le32(c + 32, 3);
			le32(c + 40, 2);
			rec(1, c, sizeof(c), 0);
			le32(c, VIRTIO_GPU_CMD_MOVE_CURSOR);
			le32(c + 28, (uint32_t)-10);
			rec(1, c, sizeof(c), 0);
		}
		seed_cmd(VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING, (uint32_t[]){ 1, 0 }, 2, 24);
		if (v == 3)
			seed_cmd(VIRTIO_GPU_CMD_RESOURCE_UNREF, (uint32_t[]){ 1, 0 }, 2, 24);
		add(seed_buf, seed_len);
	}
}
