/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_virtio_blk.c - virtio-blk on the virtio 1.x PCI
 * transport, driven the way a guest driver does it: capabilities found in
 * PCI config space, the BARs programmed, features negotiated and a queue
 * set up through the common configuration, requests built in guest RAM
 * (vring_driver.h) and kicked through the notify area.  The data is checked
 * against the image file itself (raw: pread; qcow2: qemu-img convert).
 * Interrupts are recorded through the PCI host's ops: MSI-X messages and
 * INTx (PIRQ) levels.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"
#include "statetest.h"
#include "virtio_pci_driver.h"
#include "vring_driver.h"

#include "block/block.h"
#include "bus.h"
#include "devices/pci.h"
#include "log.h"
#include "mem.h"
#include "virtio/virtio_blk.h"
#include "virtio/virtio_pci.h"
#include "sandboxed.h"

#define RAM_SIZE	(64u << 20)
#define DISK_SIZE	(8u << 20)
#define DEVFN		(5 << 3)
#define BAR_ADDR	0xfe000000ull	/* BAR 4, the virtio structures */
#define MSIX_ADDR	0xfe100000ull	/* BAR 1, the MSI-X table */
#define RING_BASE	0x100000ull
#define QSIZE		64
#define MSI_BASE_DATA	0x40		/* vector v sends data 0x40 + v */

static char dir[] = "/tmp/vivarium-vblk-XXXXXX";
static struct guest_mem mem;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct bus *pio, *mmio;
static struct pci_host *host;
static struct virtio_blk *vb;
static struct blk *disk;
static struct vdrv drv;
static struct vpci vp = {
	.lock = &lock, .devfn = DEVFN, .bar = BAR_ADDR, .msix = MSIX_ADDR,
};

/* What the PCI host delivered (under the device lock). */
static struct vpci_irqs host_irqs = { .msi_base = MSI_BASE_DATA };

static char *tpath(const char *name)
{
	static char buf[4][256];
	static int i;
	char *p = buf[i++ % 4];

	snprintf(p, 256, "%s/%s", dir, name);
	return p;
}

/* ---- locked accesses, as a vCPU would make them ------------------------ */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- device and driver set-up ------------------------------------------ */

static struct blk *open_disk(const char *path, bool ro, enum blk_format f)
{
	struct blk_open_opts o = { .format = f, .readonly = ro };
	struct blk *b = NULL;
	char err[256];
	int r = blk_open(path, &o, &b, err, sizeof(err));

	if (r < 0)
		fprintf(stderr, "  open %s: %s\n", path, err);
	return r < 0 ? NULL : b;
}

/* Create the device on @b with @nq queues and program its BARs (memory
 * + bus master). */
static void create_device_mq(struct blk *b, const char *serial, unsigned nq)
{
	struct virtio_blk_config c = {
		.pci = host, .devfn = DEVFN, .mem = &mem, .lock = &lock,
		.blk = b, .serial = serial, .num_queues = nq,
	};
	char err[256];

	disk = b;
	vpci_irqs_clear(&host_irqs);
	pthread_mutex_lock(&lock);
	vb = virtio_blk_new(&c, err, sizeof(err));
	pthread_mutex_unlock(&lock);
	CHECK(vb != NULL);
	if (!vb) {
		fprintf(stderr, "  %s\n", err);
		exit(1);
	}
	vpci_map_bars(&vp);
}

static void create_device(struct blk *b, const char *serial)
{
	create_device_mq(b, serial, 1);
}

static void destroy_device(void)
{
	virtio_blk_drain(vb);
	pthread_mutex_lock(&lock);
	CHECK_EQ(host_irqs.msi_bad, 0);
	virtio_blk_free(vb);
	pthread_mutex_unlock(&lock);
	blk_close(disk);
	vb = NULL;
	disk = NULL;
}

/*
 * §3.1.1 driver initialisation: reset, ACKNOWLEDGE, DRIVER, features,
 * FEATURES_OK, queue 0 of QSIZE entries (vectors: config 0, queue 1 with
 * MSI-X on), DRIVER_OK.  Returns the negotiated features.
 */
static uint64_t driver_init(bool msix, uint64_t want)
{
	uint16_t max = 0;
	uint64_t f;

	CHECK(vpci_driver_start(&vp, want, 0, msix, 2, MSI_BASE_DATA, &f));
	vdrv_init(&drv, &mem, QSIZE, RING_BASE, 16u << 20);
	CHECK(vpci_queue_setup(&vp, 0, &drv, msix ? 1 : -1, &max));
	CHECK_EQ(max, VIRTIO_BLK_QUEUE_SIZE);
	CHECK_EQ(vpci_driver_ok(&vp), 0x0f);
	return f;
}

#define ALL_FEATURES	(~0ull)

/* Wait (at most 10 s) until the used idx reaches @idx. */
static bool wait_used(uint16_t idx)
{
	return vdrv_wait_used(&drv, &lock, idx, false, 500, 10000);
}

/* ---- requests ------------------------------------------------------------ */

struct blkreq {
	uint64_t hdr, status;
	uint16_t head;
};

/*
 * Queue one request: header, @data_len bytes at @data (device-writable for
 * reads and GET_ID; split over two descriptors when >= 1024 bytes), status
 * byte (pre-set to 0xff).  Does not kick.
 */
static struct blkreq add_req(uint32_t type, uint64_t sector, uint64_t data,
			     uint32_t data_len, bool indirect)
{
	struct blkreq r;
	struct vbuf b[4];
	unsigned n = 0;
	bool dev_writes = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
	uint8_t *h;

	r.hdr = vdrv_alloc(&drv, 16, 16);
	r.status = vdrv_alloc(&drv, 1, 1);
	h = vdrv_hva(&drv, r.hdr, 16);
	memset(h, 0, 16);
	memcpy(h, &type, 4);
	memcpy(h + 8, &sector, 8);
	*(uint8_t *)vdrv_hva(&drv, r.status, 1) = 0xff;
	b[n++] = (struct vbuf){ r.hdr, 16, false };
	if (data_len >= 1024) {
		b[n++] = (struct vbuf){ data, 512, dev_writes };
		b[n++] = (struct vbuf){ data + 512, data_len - 512, dev_writes };
	} else if (data_len) {
		b[n++] = (struct vbuf){ data, data_len, dev_writes };
	}
	b[n++] = (struct vbuf){ r.status, 1, true };
	r.head = vdrv_add(&drv, b, n, indirect);
	return r;
}

static uint8_t req_status(const struct blkreq *r)
{
	return *(uint8_t *)vdrv_hva(&drv, r->status, 1);
}

/* One request, kicked and waited for; returns its status byte (0xff if
 * it never completed) and the used length in *@used_len. */
static uint8_t do_req(uint32_t type, uint64_t sector, uint64_t data,
		      uint32_t data_len, uint32_t *used_len)
{
	uint16_t want = (uint16_t)(vdrv_used_idx(&drv) + 1);
	struct blkreq r = add_req(type, sector, data, data_len, false);
	uint32_t id, len = 0;

	vpci_kick(&vp, 0);
	if (!wait_used(want)) {
		CHECK(!"request completed");
		return 0xff;
	}
	CHECK(vdrv_get_used(&drv, &id, &len));
	CHECK_EQ(id, r.head);
	if (used_len)
		*used_len = len;
	return req_status(&r);
}

/* A discard / write-zeroes segment at a fresh GPA. */
static uint64_t dwz_seg(uint64_t sector, uint32_t n, uint32_t flags)
{
	uint64_t g = vdrv_alloc(&drv, 16, 8);
	uint8_t *p = vdrv_hva(&drv, g, 16);

	memcpy(p, &sector, 8);
	memcpy(p + 8, &n, 4);
	memcpy(p + 12, &flags, 4);
	return g;
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

/* A raw image of DISK_SIZE bytes filled with a pattern (seed 7). */
static const char *make_raw(const char *name)
{
	const char *p = tpath(name);
	uint8_t *buf = malloc(DISK_SIZE);
	int fd;

	unlink(p);
	fd = open(p, O_CREAT | O_RDWR | O_TRUNC, 0644);
	CHECK(fd >= 0);
	fill(buf, DISK_SIZE, 7);
	CHECK_EQ(pwrite(fd, buf, DISK_SIZE, 0), DISK_SIZE);
	close(fd);
	free(buf);
	return p;
}

static bool file_equals(const char *path, uint64_t off, const void *want,
			size_t len)
{
	uint8_t *buf = malloc(len);
	int fd = open(path, O_RDONLY);
	bool ok = fd >= 0 && pread(fd, buf, len, (off_t)off) == (ssize_t)len &&
		  memcmp(buf, want, len) == 0;

	if (fd >= 0)
		close(fd);
	free(buf);
	return ok;
}

/* ---- tests ----------------------------------------------------------------- */

/* §4.1.2, §4.1.4: IDs and the vendor capabilities, as Linux's
 * virtio_pci_modern_probe() walks them. */
static void test_discovery(void)
{
	unsigned seen = 0, pos, guard = 0;

	create_device(open_disk(make_raw("disc.img"), false, BLK_FMT_RAW), "x");
	CHECK_EQ(vpci_cfg_rd(&vp, PCI_VENDOR_ID, 2), 0x1af4);
	CHECK_EQ(vpci_cfg_rd(&vp, PCI_DEVICE_ID, 2), 0x1042);
	CHECK(vpci_cfg_rd(&vp, PCI_REVISION_ID, 1) >= 1);
	CHECK(vpci_cfg_rd(&vp, PCI_SUBSYSTEM_ID, 2) >= 0x40);
	CHECK_EQ(vpci_cfg_rd(&vp, PCI_CLASS_DEVICE, 2), 0x0180);
	CHECK_EQ(vpci_cfg_rd(&vp, PCI_INTERRUPT_PIN, 1), 1);
	CHECK(vpci_cfg_rd(&vp, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	for (pos = vpci_cfg_rd(&vp, PCI_CAPABILITY_LIST, 1); pos && guard < 16;
	     pos = vpci_cfg_rd(&vp, pos + 1, 1), guard++) {
		unsigned id = vpci_cfg_rd(&vp, pos, 1), type, bar, off, len;

		if (id == PCI_CAP_ID_MSIX) {
			/* Table size field is N-1: 1 queue + config. */
			CHECK_EQ(vpci_cfg_rd(&vp, pos + 2, 2) & 0x7ff, 1);
			CHECK_EQ(vpci_cfg_rd(&vp, pos + 4, 4), VIRTIO_PCI_MSIX_BAR);
			seen |= 1u << 7;
			continue;
		}
		CHECK_EQ(id, PCI_CAP_ID_VNDR);
		type = vpci_cfg_rd(&vp, pos + 3, 1);
		bar = vpci_cfg_rd(&vp, pos + 4, 1);
		off = vpci_cfg_rd(&vp, pos + 8, 4);
		len = vpci_cfg_rd(&vp, pos + 12, 4);
		CHECK(vpci_cfg_rd(&vp, pos + 2, 1) >= 16);
		seen |= 1u << type;
		switch (type) {
		case VIRTIO_PCI_CAP_COMMON_CFG:
			CHECK(bar == VIRTIO_PCI_BAR && off == 0 && len >= 0x38);
			break;
		case VIRTIO_PCI_CAP_NOTIFY_CFG:
			CHECK(bar == VIRTIO_PCI_BAR && off == VIRTIO_PCI_NOTIFY_OFF);
			CHECK_EQ(vpci_cfg_rd(&vp, pos + 16, 4), VIRTIO_PCI_NOTIFY_MULT);
			CHECK(len >= 2);
			break;
		case VIRTIO_PCI_CAP_ISR_CFG:
			CHECK(bar == VIRTIO_PCI_BAR && off == VIRTIO_PCI_ISR_OFF);
			break;
		case VIRTIO_PCI_CAP_DEVICE_CFG:
			CHECK(bar == VIRTIO_PCI_BAR && len == VIRTIO_BLK_CFG_LEN);
			break;
		case VIRTIO_PCI_CAP_PCI_CFG:
			CHECK_EQ(vpci_cfg_rd(&vp, pos + 2, 1), 20);
			break;
		default:
			CHECK(!"known capability type");
		}
	}
	CHECK_EQ(seen, (1u << 7) | 0x3e);
	/* BAR 4 is 64-bit memory of 16 KiB: sizing reads the mask back. */
	vpci_cfg_wr(&vp, PCI_COMMAND, 2, 0);
	vpci_cfg_wr(&vp, PCI_BASE_ADDRESS_0 + 16, 4, 0xffffffff);
	CHECK_EQ(vpci_cfg_rd(&vp, PCI_BASE_ADDRESS_0 + 16, 4), 0xffffc004u);
	destroy_device();
}

static void test_features_and_config(void)
{
	uint64_t f;

	create_device(open_disk(make_raw("feat.img"), false, BLK_FMT_RAW),
		      "serial-0123");
	f = vpci_device_features(&vp);
	CHECK(f & (1ull << VIRTIO_F_VERSION_1));
	CHECK(f & (1ull << VIRTIO_F_INDIRECT_DESC));
	CHECK(f & (1ull << VIRTIO_F_EVENT_IDX));
	CHECK(f & (1ull << VIRTIO_BLK_F_FLUSH));
	CHECK(f & (1ull << VIRTIO_BLK_F_DISCARD));
	CHECK(f & (1ull << VIRTIO_BLK_F_WRITE_ZEROES));
	CHECK(f & (1ull << VIRTIO_BLK_F_SEG_MAX));
	CHECK(!(f & (1ull << VIRTIO_BLK_F_RO)));
	CHECK(!(f & (1ull << VIRTIO_BLK_F_MQ)));
	vpci_wr(&vp, VIRTIO_PCI_COMMON_DFSELECT, 2, 4);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_COMMON_DF, 4), 0);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_COMMON_NUMQ, 2), 1);

	/* Device config: capacity as two 32-bit halves and as one 64-bit. */
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_BLK_CFG_CAPACITY, 4),
		 DISK_SIZE / 512);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_BLK_CFG_CAPACITY + 4, 4), 0);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_BLK_CFG_CAPACITY, 8),
		 DISK_SIZE / 512);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_BLK_CFG_SEG_MAX, 4),
		 VIRTIO_BLK_SEG_MAX);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_BLK_CFG_BLK_SIZE, 4), 512);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_BLK_CFG_MAX_DISCARD_SEG, 4), 1);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_BLK_CFG_WZ_MAY_UNMAP, 1), 1);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + 0x100, 4), 0);	/* past it */

	/* §3.1.1: without VERSION_1, FEATURES_OK does not stick. */
	vpci_set_status(&vp, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	vpci_write_driver_features(&vp, f & ~(1ull << VIRTIO_F_VERSION_1));
	vpci_set_status(&vp, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		   VIRTIO_CONFIG_S_FEATURES_OK);
	CHECK(!(vpci_status(&vp) & VIRTIO_CONFIG_S_FEATURES_OK));
	/* Nor with a bit the device never offered. */
	vpci_set_status(&vp, 0);
	vpci_set_status(&vp, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	vpci_write_driver_features(&vp, f | (1ull << 50));
	vpci_set_status(&vp, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		   VIRTIO_CONFIG_S_FEATURES_OK);
	CHECK(!(vpci_status(&vp) & VIRTIO_CONFIG_S_FEATURES_OK));
	/* A queue size that is not a power of two is refused. */
	vpci_set_status(&vp, 0);
	vpci_wr(&vp, VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
	vpci_wr(&vp, VIRTIO_PCI_COMMON_Q_SIZE, 100, 2);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_COMMON_Q_SIZE, 2), VIRTIO_BLK_QUEUE_SIZE);
	/* A queue that does not exist reads size 0. */
	vpci_wr(&vp, VIRTIO_PCI_COMMON_Q_SELECT, 1, 2);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_COMMON_Q_SIZE, 2), 0);
	/* MSI-X vectors beyond the table read back NO_VECTOR. */
	vpci_wr(&vp, VIRTIO_PCI_COMMON_MSIX, 5, 2);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_COMMON_MSIX, 2), VIRTIO_MSI_NO_VECTOR);

	/* The full negotiation works, and GET_ID returns the serial. */
	driver_init(true, ALL_FEATURES);
	{
		uint64_t id = vdrv_alloc(&drv, 20, 8);
		uint32_t len;

		memset(vdrv_hva(&drv, id, 20), 0xee, 20);
		CHECK_EQ(do_req(VIRTIO_BLK_T_GET_ID, 0, id, 20, &len),
			 VIRTIO_BLK_S_OK);
		CHECK_EQ(len, 21);
		CHECK(memcmp(vdrv_hva(&drv, id, 20), "serial-0123\0\0\0\0\0\0\0\0\0",
			     20) == 0);
	}
	destroy_device();
}

/* The PCI_CFG capability: BAR access through config space (§4.1.4.9). */
static void test_pci_cfg_window(void)
{
	const unsigned c = VIRTIO_PCI_CAP_PCICFG_OFF;

	create_device(open_disk(make_raw("win.img"), false, BLK_FMT_RAW), NULL);
	vpci_cfg_wr(&vp, c + 4, 1, VIRTIO_PCI_BAR);
	vpci_cfg_wr(&vp, c + 12, 4, 2);
	vpci_cfg_wr(&vp, c + 8, 4, VIRTIO_PCI_COMMON_NUMQ);
	CHECK_EQ(vpci_cfg_rd(&vp, c + 16, 2), 1);
	vpci_cfg_wr(&vp, c + 12, 4, 4);
	vpci_cfg_wr(&vp, c + 8, 4, VIRTIO_PCI_DEVICE_OFF + VIRTIO_BLK_CFG_CAPACITY);
	CHECK_EQ(vpci_cfg_rd(&vp, c + 16, 4), DISK_SIZE / 512);
	/* A write through the window: device_status. */
	vpci_cfg_wr(&vp, c + 12, 4, 1);
	vpci_cfg_wr(&vp, c + 8, 4, VIRTIO_PCI_COMMON_STATUS);
	vpci_cfg_wr(&vp, c + 16, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	CHECK_EQ(vpci_status(&vp), VIRTIO_CONFIG_S_ACKNOWLEDGE);
	/* Misaligned or another BAR: no BAR access happens. */
	vpci_cfg_wr(&vp, c + 12, 4, 4);
	vpci_cfg_wr(&vp, c + 8, 4, VIRTIO_PCI_ISR_OFF + 2);
	vpci_cfg_rd(&vp, c + 16, 4);
	vpci_cfg_wr(&vp, c + 4, 1, 0);
	vpci_cfg_wr(&vp, c + 8, 4, 0);
	vpci_cfg_wr(&vp, c + 16, 4, 0);
	CHECK_EQ(vpci_status(&vp), VIRTIO_CONFIG_S_ACKNOWLEDGE);
	destroy_device();
}

static void test_read_write(bool msix)
{
	const char *path = make_raw(msix ? "rw-msix.img" : "rw-intx.img");
	uint8_t *want = malloc(64 * 1024);
	uint64_t buf;
	uint32_t len;

	create_device(open_disk(path, false, BLK_FMT_RAW), NULL);
	driver_init(msix, ALL_FEATURES);
	buf = vdrv_alloc(&drv, 64 * 1024, 4096);

	/* WRITE 64 KiB at sector 100: lands in the file. */
	fill(want, 64 * 1024, 99);
	memcpy(vdrv_hva(&drv, buf, 64 * 1024), want, 64 * 1024);
	CHECK_EQ(do_req(VIRTIO_BLK_T_OUT, 100, buf, 64 * 1024, &len),
		 VIRTIO_BLK_S_OK);
	CHECK(file_equals(path, 100 * 512, want, 64 * 1024));

	/* READ the untouched pattern at sector 0 and the written range. */
	memset(vdrv_hva(&drv, buf, 64 * 1024), 0, 64 * 1024);
	CHECK_EQ(do_req(VIRTIO_BLK_T_IN, 100, buf, 64 * 1024, &len),
		 VIRTIO_BLK_S_OK);
	CHECK_EQ(len, 64 * 1024 + 1);
	CHECK(memcmp(vdrv_hva(&drv, buf, 64 * 1024), want, 64 * 1024) == 0);
	CHECK_EQ(do_req(VIRTIO_BLK_T_IN, DISK_SIZE / 512 - 8, buf, 4096, NULL),
		 VIRTIO_BLK_S_OK);
	CHECK(file_equals(path, DISK_SIZE - 4096, vdrv_hva(&drv, buf, 4096), 4096));

	/* FLUSH. */
	CHECK_EQ(do_req(VIRTIO_BLK_T_FLUSH, 0, 0, 0, &len), VIRTIO_BLK_S_OK);
	CHECK_EQ(len, 1);

	/* Interrupts: MSI-X vector 1 per completion, or INTx + ISR. */
	pthread_mutex_lock(&lock);
	if (msix) {
		CHECK(host_irqs.msi[1] >= 1);
		CHECK_EQ(host_irqs.msi[0], 0);	/* no config change */
		CHECK_EQ(host_irqs.pirq_rises[0] + host_irqs.pirq_rises[1] + host_irqs.pirq_rises[2] +
			 host_irqs.pirq_rises[3], 0);
	} else {
		unsigned pirq = pci_intx_to_pirq(DEVFN >> 3, 1);

		CHECK_EQ(host_irqs.msi[1], 0);
		CHECK_EQ(host_irqs.pirq_level[pirq], 1);
	}
	pthread_mutex_unlock(&lock);
	if (!msix) {
		unsigned pirq = pci_intx_to_pirq(DEVFN >> 3, 1);

		CHECK(vpci_cfg_rd(&vp, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
		CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_ISR_OFF, 1), 1);	/* queue bit */
		CHECK_EQ(host_irqs.pirq_level[pirq], 0);			/* read lowers it */
		CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_ISR_OFF, 1), 0);
		CHECK(!(vpci_cfg_rd(&vp, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT));
	}
	free(want);
	destroy_device();
}

static void test_rw_msix(void)
{
	test_read_write(true);
}

static void test_rw_intx(void)
{
	test_read_write(false);
}

/* §2.6.4: the device does not care how the driver frames a request:
 * header and data in one descriptor, status alone; and indirect. */
static void test_framing_and_indirect(void)
{
	const char *path = make_raw("frame.img");
	uint8_t want[1024];
	uint64_t g, st;
	struct vbuf b[2];
	struct blkreq r;
	uint32_t id, len, type = VIRTIO_BLK_T_OUT;
	uint64_t sector = 9;
	uint16_t head;

	create_device(open_disk(path, false, BLK_FMT_RAW), NULL);
	driver_init(true, ALL_FEATURES);
	g = vdrv_alloc(&drv, 16 + 1024, 16);
	st = vdrv_alloc(&drv, 1, 1);
	fill(want, sizeof(want), 5);
	memcpy(vdrv_hva(&drv, g, 4), &type, 4);
	memset(vdrv_hva(&drv, g + 4, 4), 0, 4);
	memcpy(vdrv_hva(&drv, g + 8, 8), &sector, 8);
	memcpy(vdrv_hva(&drv, g + 16, 1024), want, 1024);
	b[0] = (struct vbuf){ g, 16 + 1024, false };
	b[1] = (struct vbuf){ st, 1, true };
	head = vdrv_add(&drv, b, 2, false);
	vpci_kick(&vp, 0);
	CHECK(wait_used(1));
	CHECK(vdrv_get_used(&drv, &id, &len));
	CHECK_EQ(id, head);
	CHECK_EQ(*(uint8_t *)vdrv_hva(&drv, st, 1), VIRTIO_BLK_S_OK);
	CHECK(file_equals(path, 9 * 512, want, 1024));

	/* The same data read back through an indirect table. */
	g = vdrv_alloc(&drv, 2048, 512);
	r = add_req(VIRTIO_BLK_T_IN, 9, g, 1024, true);
	vpci_kick(&vp, 0);
	CHECK(wait_used(2));
	CHECK(vdrv_get_used(&drv, &id, &len));
	CHECK_EQ(id, r.head);
	CHECK_EQ(req_status(&r), VIRTIO_BLK_S_OK);
	CHECK(memcmp(vdrv_hva(&drv, g, 1024), want, 1024) == 0);
	destroy_device();
}

static void test_discard_write_zeroes(void)
{
	const char *path = make_raw("dwz.img");
	uint8_t zero[8192] = { 0 }, *orig = malloc(DISK_SIZE);

	fill(orig, DISK_SIZE, 7);
	create_device(open_disk(path, false, BLK_FMT_RAW), NULL);
	driver_init(true, ALL_FEATURES);

	/* WRITE_ZEROES 8 KiB at sector 16, with and without unmap. */
	CHECK_EQ(do_req(VIRTIO_BLK_T_WRITE_ZEROES, 0, dwz_seg(16, 16, 0), 16,
			NULL), VIRTIO_BLK_S_OK);
	CHECK(file_equals(path, 16 * 512, zero, 8192));
	CHECK(file_equals(path, 32 * 512, orig + 32 * 512, 512));
	CHECK_EQ(do_req(VIRTIO_BLK_T_WRITE_ZEROES, 0,
			dwz_seg(64, 16, VIRTIO_BLK_DWZ_F_UNMAP), 16, NULL),
		 VIRTIO_BLK_S_OK);
	CHECK(file_equals(path, 64 * 512, zero, 8192));
	CHECK(file_equals(path, 63 * 512, orig + 63 * 512, 512));

	/* DISCARD: OK; the rest of the disk is untouched. */
	CHECK_EQ(do_req(VIRTIO_BLK_T_DISCARD, 0, dwz_seg(256, 8, 0), 16, NULL),
		 VIRTIO_BLK_S_OK);
	CHECK(file_equals(path, 264 * 512, orig + 264 * 512, 4096));
	/* §5.2.6.2: unmap on a discard, or an unknown flag: UNSUPP. */
	CHECK_EQ(do_req(VIRTIO_BLK_T_DISCARD, 0,
			dwz_seg(256, 8, VIRTIO_BLK_DWZ_F_UNMAP), 16, NULL),
		 VIRTIO_BLK_S_UNSUPP);
	CHECK_EQ(do_req(VIRTIO_BLK_T_WRITE_ZEROES, 0, dwz_seg(256, 8, 0x4), 16,
			NULL), VIRTIO_BLK_S_UNSUPP);
	/* Beyond the end, or past max_write_zeroes_sectors: IOERR. */
	CHECK_EQ(do_req(VIRTIO_BLK_T_WRITE_ZEROES, 0,
			dwz_seg(DISK_SIZE / 512 - 4, 8, 0), 16, NULL),
		 VIRTIO_BLK_S_IOERR);
	CHECK_EQ(do_req(VIRTIO_BLK_T_DISCARD, 0,
			dwz_seg(~0ull - 2, 8, 0), 16, NULL),
		 VIRTIO_BLK_S_IOERR);
	CHECK_EQ(do_req(VIRTIO_BLK_T_WRITE_ZEROES, 0,
			dwz_seg(0, VIRTIO_BLK_MAX_DWZ_SECTORS + 1, 0), 16, NULL),
		 VIRTIO_BLK_S_IOERR);
	/* Two segments (max_*_seg is 1), or half a segment: IOERR. */
	{
		uint64_t two = dwz_seg(0, 8, 0);

		dwz_seg(8, 8, 0);	/* the next 16 bytes */
		CHECK_EQ(do_req(VIRTIO_BLK_T_DISCARD, 0, two, 32, NULL),
			 VIRTIO_BLK_S_IOERR);
		CHECK_EQ(do_req(VIRTIO_BLK_T_DISCARD, 0, two, 8, NULL),
			 VIRTIO_BLK_S_IOERR);
	}
	CHECK(file_equals(path, DISK_SIZE - 4096, orig + DISK_SIZE - 4096, 4096));
	free(orig);
	destroy_device();

	/* Not negotiated: UNSUPP. */
	create_device(open_disk(path, false, BLK_FMT_RAW), NULL);
	driver_init(true, ~((1ull << VIRTIO_BLK_F_DISCARD) |
			    (1ull << VIRTIO_BLK_F_WRITE_ZEROES)));
	CHECK_EQ(do_req(VIRTIO_BLK_T_DISCARD, 0, dwz_seg(0, 8, 0), 16, NULL),
		 VIRTIO_BLK_S_UNSUPP);
	CHECK_EQ(do_req(VIRTIO_BLK_T_WRITE_ZEROES, 0, dwz_seg(0, 8, 0), 16, NULL),
		 VIRTIO_BLK_S_UNSUPP);
	destroy_device();
}

static void test_bad_requests(void)
{
	const char *path = make_raw("bad.img");
	uint8_t *orig = malloc(DISK_SIZE);
	uint64_t buf;

	fill(orig, DISK_SIZE, 7);
	create_device(open_disk(path, false, BLK_FMT_RAW), NULL);
	driver_init(true, ALL_FEATURES);
	buf = vdrv_alloc(&drv, 8192, 4096);
	memset(vdrv_hva(&drv, buf, 8192), 0x5a, 8192);
	/* Past the end, straddling it, at a sector that overflows * 512. */
	CHECK_EQ(do_req(VIRTIO_BLK_T_IN, DISK_SIZE / 512, buf, 512, NULL),
		 VIRTIO_BLK_S_IOERR);
	CHECK_EQ(do_req(VIRTIO_BLK_T_OUT, DISK_SIZE / 512 - 1, buf, 1024, NULL),
		 VIRTIO_BLK_S_IOERR);
	CHECK_EQ(do_req(VIRTIO_BLK_T_OUT, 1ull << 55, buf, 512, NULL),
		 VIRTIO_BLK_S_IOERR);
	CHECK_EQ(do_req(VIRTIO_BLK_T_IN, ~0ull, buf, 512, NULL),
		 VIRTIO_BLK_S_IOERR);
	/* Not whole sectors. */
	CHECK_EQ(do_req(VIRTIO_BLK_T_OUT, 0, buf, 700, NULL), VIRTIO_BLK_S_IOERR);
	/* Unknown type (and the legacy SCSI command 2): UNSUPP. */
	CHECK_EQ(do_req(2, 0, buf, 512, NULL), VIRTIO_BLK_S_UNSUPP);
	CHECK_EQ(do_req(0x7fffffff, 0, 0, 0, NULL), VIRTIO_BLK_S_UNSUPP);
	/* The exact last sector is fine. */
	CHECK_EQ(do_req(VIRTIO_BLK_T_IN, DISK_SIZE / 512 - 1, buf, 512, NULL),
		 VIRTIO_BLK_S_OK);
	CHECK(file_equals(path, 0, orig, DISK_SIZE));	/* nothing written */
	/* A header shorter than 16 bytes: IOERR, not a crash. */
	{
		struct vbuf b[2];
		uint64_t st = vdrv_alloc(&drv, 1, 1);
		uint32_t id, len;

		b[0] = (struct vbuf){ buf, 8, false };
		b[1] = (struct vbuf){ st, 1, true };
		vdrv_add(&drv, b, 2, false);
		vpci_kick(&vp, 0);
		CHECK(wait_used(drv.used_seen + 1));
		CHECK(vdrv_get_used(&drv, &id, &len));
		CHECK_EQ(*(uint8_t *)vdrv_hva(&drv, st, 1), VIRTIO_BLK_S_IOERR);
	}
	CHECK_EQ(vpci_status(&vp) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
	free(orig);
	destroy_device();
}

static void test_readonly(void)
{
	const char *path = make_raw("ro.img");
	uint8_t *orig = malloc(DISK_SIZE);
	uint64_t f, buf;

	fill(orig, DISK_SIZE, 7);
	create_device(open_disk(path, true, BLK_FMT_RAW), NULL);
	f = driver_init(true, ALL_FEATURES);
	CHECK(f & (1ull << VIRTIO_BLK_F_RO));
	CHECK(!(f & (1ull << VIRTIO_BLK_F_DISCARD)));
	CHECK(!(f & (1ull << VIRTIO_BLK_F_WRITE_ZEROES)));
	buf = vdrv_alloc(&drv, 4096, 4096);
	memset(vdrv_hva(&drv, buf, 4096), 0x33, 4096);
	CHECK_EQ(do_req(VIRTIO_BLK_T_OUT, 0, buf, 4096, NULL), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(do_req(VIRTIO_BLK_T_WRITE_ZEROES, 0, dwz_seg(0, 8, 0), 16, NULL),
		 VIRTIO_BLK_S_UNSUPP);
	CHECK_EQ(do_req(VIRTIO_BLK_T_IN, 0, buf, 4096, NULL), VIRTIO_BLK_S_OK);
	CHECK(memcmp(vdrv_hva(&drv, buf, 4096), orig, 4096) == 0);
	CHECK(file_equals(path, 0, orig, DISK_SIZE));
	free(orig);
	destroy_device();
}

/*
 * A reset while requests are in flight (§4.1.4.3.2): the device lock is
 * held across the kick and the reset, so no completion can run before the
 * reset starts.  device_status must read non-zero until they are done,
 * their results must never reach the used ring, and the device must work
 * again after re-initialisation.
 */
static void test_reset_inflight(void)
{
	const char *path = make_raw("reset.img");
	struct blkreq r[16];
	uint64_t buf;
	uint8_t st_during;
	double t0;
	int saw_zero = 0;

	create_device(open_disk(path, false, BLK_FMT_RAW), NULL);
	driver_init(true, ALL_FEATURES);
	buf = vdrv_alloc(&drv, 16 * 65536, 4096);
	for (int i = 0; i < 16; i++)
		r[i] = add_req(VIRTIO_BLK_T_IN, (uint64_t)i * 128,
			       buf + (uint64_t)i * 65536, 65536, false);
	pthread_mutex_lock(&lock);
	io_write(mmio, BAR_ADDR + VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	CHECK_EQ(virtio_pci_inflight(virtio_blk_transport(vb)), 16);
	io_write(mmio, BAR_ADDR + VIRTIO_PCI_COMMON_STATUS, 0, 1);
	st_during = (uint8_t)io_read(mmio, BAR_ADDR + VIRTIO_PCI_COMMON_STATUS, 1);
	/* Kicks and queue writes during the reset are ignored. */
	io_write(mmio, BAR_ADDR + VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	pthread_mutex_unlock(&lock);
	CHECK(st_during != 0);

	t0 = now_s();
	while (now_s() - t0 < 10 && !saw_zero) {
		saw_zero = vpci_status(&vp) == 0;
		usleep(200);
	}
	CHECK(saw_zero);
	CHECK_EQ(virtio_pci_inflight(virtio_blk_transport(vb)), 0);
	CHECK_EQ(vdrv_used_idx(&drv), 0);		/* results dropped */
	for (int i = 0; i < 16; i++)
		CHECK_EQ(req_status(&r[i]), 0xff);	/* status untouched */
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_COMMON_MSIX, 2), VIRTIO_MSI_NO_VECTOR);

	/* Working again after re-initialisation. */
	driver_init(true, ALL_FEATURES);
	buf = vdrv_alloc(&drv, 4096, 4096);
	CHECK_EQ(do_req(VIRTIO_BLK_T_IN, 0, buf, 4096, NULL), VIRTIO_BLK_S_OK);
	CHECK(file_equals(path, 0, vdrv_hva(&drv, buf, 4096), 4096));

	/* A reset with nothing in flight completes at once. */
	vpci_set_status(&vp, 0);
	CHECK_EQ(vpci_status(&vp), 0);
	destroy_device();
}

/* A hostile ring breaks the device: NEEDS_RESET, a configuration
 * interrupt, further kicks ignored; a reset brings it back. */
static void test_hostile_ring(void)
{
	uint64_t buf;
	double t0;

	create_device(open_disk(make_raw("hostile.img"), false, BLK_FMT_RAW),
		      NULL);
	driver_init(true, ALL_FEATURES);
	buf = vdrv_alloc(&drv, 512, 512);
	vdrv_write_desc(&drv, drv.desc, 0, buf, 16, VIRTQ_DESC_F_NEXT, 1);
	vdrv_write_desc(&drv, drv.desc, 1, buf, 16, VIRTQ_DESC_F_NEXT, 0);
	vdrv_publish(&drv, 0);
	t0 = now_s();
	vpci_kick(&vp, 0);
	CHECK(now_s() - t0 < 1.0);
	CHECK(vpci_status(&vp) & VIRTIO_CONFIG_S_NEEDS_RESET);
	pthread_mutex_lock(&lock);
	CHECK_EQ(host_irqs.msi[0], 1);			/* config vector */
	pthread_mutex_unlock(&lock);
	vpci_kick(&vp, 0);
	CHECK_EQ(vdrv_used_idx(&drv), 0);

	/* A chain without a device-writable byte: no status to write. */
	driver_init(true, ALL_FEATURES);
	{
		struct vbuf b = { vdrv_alloc(&drv, 16, 16), 16, false };

		vdrv_add(&drv, &b, 1, false);
	}
	vpci_kick(&vp, 0);
	CHECK(vpci_status(&vp) & VIRTIO_CONFIG_S_NEEDS_RESET);

	/* Rings outside RAM at queue_enable. */
	vpci_set_status(&vp, 0);
	vpci_set_status(&vp, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	vpci_write_driver_features(&vp, 1ull << VIRTIO_F_VERSION_1);
	vpci_set_status(&vp, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		   VIRTIO_CONFIG_S_FEATURES_OK);
	vpci_wr(&vp, VIRTIO_PCI_COMMON_Q_DESCLO, 0xfff00000u, 4);
	vpci_wr(&vp, VIRTIO_PCI_COMMON_Q_DESCHI, 0x7, 4);
	vpci_wr(&vp, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	CHECK(vpci_status(&vp) & VIRTIO_CONFIG_S_NEEDS_RESET);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);

	/* Garbage register accesses: ignored. */
	vpci_wr(&vp, VIRTIO_PCI_COMMON_STATUS, 0xffff, 2);
	vpci_wr(&vp, 0xffc, 0xffffffff, 4);
	vpci_wr(&vp, VIRTIO_PCI_NOTIFY_OFF + 0x800, 0, 2);
	vpci_rd(&vp, VIRTIO_PCI_COMMON_Q_DESCLO + 2, 4);
	vpci_wr(&vp, VIRTIO_PCI_ISR_OFF, 0xff, 1);
	vpci_set_status(&vp, 0);
	CHECK_EQ(vpci_status(&vp), 0);
	destroy_device();
}

/* EVENT_IDX through the device: with used_event far away the driver is not
 * interrupted; without the feature, NO_INTERRUPT does the same. */
static void test_interrupt_suppression(void)
{
	uint64_t buf;

	create_device(open_disk(make_raw("supp.img"), false, BLK_FMT_RAW), NULL);
	driver_init(true, ALL_FEATURES);
	buf = vdrv_alloc(&drv, 512, 512);
	vdrv_set_used_event(&drv, 5);
	CHECK_EQ(do_req(VIRTIO_BLK_T_IN, 0, buf, 512, NULL), VIRTIO_BLK_S_OK);
	pthread_mutex_lock(&lock);
	CHECK_EQ(host_irqs.msi[1], 0);
	pthread_mutex_unlock(&lock);
	vdrv_set_used_event(&drv, 1);		/* the next one, please */
	CHECK_EQ(do_req(VIRTIO_BLK_T_IN, 0, buf, 512, NULL), VIRTIO_BLK_S_OK);
	pthread_mutex_lock(&lock);
	CHECK_EQ(host_irqs.msi[1], 1);
	pthread_mutex_unlock(&lock);
	/* The device asks to be kicked for the next buffer. */
	CHECK_EQ(vdrv_avail_event(&drv), 2);

	driver_init(true, ~(1ull << VIRTIO_F_EVENT_IDX));
	vpci_irqs_clear(&host_irqs);
	vdrv_set_avail_flags(&drv, VIRTQ_AVAIL_F_NO_INTERRUPT);
	CHECK_EQ(do_req(VIRTIO_BLK_T_IN, 0, buf, 512, NULL), VIRTIO_BLK_S_OK);
	pthread_mutex_lock(&lock);
	CHECK_EQ(host_irqs.msi[1], 0);
	pthread_mutex_unlock(&lock);
	vdrv_set_avail_flags(&drv, 0);
	CHECK_EQ(do_req(VIRTIO_BLK_T_IN, 0, buf, 512, NULL), VIRTIO_BLK_S_OK);
	pthread_mutex_lock(&lock);
	CHECK_EQ(host_irqs.msi[1], 1);
	pthread_mutex_unlock(&lock);
	destroy_device();
}

/* Many requests at once, completing out of order on the workers. */
static void test_many_requests(void)
{
	const char *path = make_raw("many.img");
	uint8_t *orig = malloc(DISK_SIZE);
	struct blkreq r[20];
	uint64_t buf;
	bool seen[QSIZE] = { false };
	uint32_t id, len;

	fill(orig, DISK_SIZE, 7);
	create_device(open_disk(path, false, BLK_FMT_RAW), NULL);
	driver_init(true, ALL_FEATURES);
	buf = vdrv_alloc(&drv, 20 * 8192, 4096);
	for (int i = 0; i < 20; i++)
		r[i] = add_req(VIRTIO_BLK_T_IN, (uint64_t)i * 797, buf + i * 8192,
			       8192, i & 1);
	vpci_kick(&vp, 0);
	CHECK(wait_used(20));
	while (vdrv_get_used(&drv, &id, &len)) {
		CHECK(id < QSIZE && !seen[id]);
		if (id < QSIZE)
			seen[id] = true;
		CHECK_EQ(len, 8193);
	}
	for (int i = 0; i < 20; i++) {
		CHECK(seen[r[i].head]);
		CHECK_EQ(req_status(&r[i]), VIRTIO_BLK_S_OK);
		CHECK(memcmp(vdrv_hva(&drv, buf + i * 8192, 8192),
			     orig + (uint64_t)i * 797 * 512, 8192) == 0);
	}
	free(orig);
	destroy_device();
}

/* VIRTIO_BLK_F_MQ: two request queues, each with its own notify address
 * and MSI-X vector. */
static void test_multiqueue(void)
{
	const char *path = make_raw("mq.img");
	uint8_t *orig = malloc(DISK_SIZE);
	struct vdrv q0;
	struct blkreq r;
	uint64_t f, buf;
	uint32_t id, len;

	fill(orig, DISK_SIZE, 7);
	create_device_mq(open_disk(path, false, BLK_FMT_RAW), NULL, 2);
	f = driver_init(true, ALL_FEATURES);
	CHECK(f & (1ull << VIRTIO_BLK_F_MQ));
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_COMMON_NUMQ, 2), 2);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_BLK_CFG_NUM_QUEUES, 2), 2);
	/* Queue 1 on its own rings, vector 2. */
	q0 = drv;
	vdrv_init(&drv, &mem, QSIZE, RING_BASE + (32u << 20), 1u << 20);
	vpci_msix_program(&vp, 2, MSI_BASE_DATA + 2);
	vpci_wr(&vp, VIRTIO_PCI_COMMON_Q_SELECT, 1, 2);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_COMMON_Q_NOFF, 2), 1);
	vpci_wr(&vp, VIRTIO_PCI_COMMON_Q_SIZE, QSIZE, 2);
	vpci_wr(&vp, VIRTIO_PCI_COMMON_Q_MSIX, 2, 2);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_COMMON_Q_MSIX, 2), 2);
	vpci_wr(&vp, VIRTIO_PCI_COMMON_Q_DESCLO, drv.desc, 8);
	vpci_wr(&vp, VIRTIO_PCI_COMMON_Q_AVAILLO, drv.avail, 8);
	vpci_wr(&vp, VIRTIO_PCI_COMMON_Q_USEDLO, drv.used, 8);
	vpci_wr(&vp, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	buf = vdrv_alloc(&drv, 4096, 4096);
	r = add_req(VIRTIO_BLK_T_IN, 64, buf, 4096, false);
	vpci_wr(&vp, VIRTIO_PCI_NOTIFY_OFF + 1 * VIRTIO_PCI_NOTIFY_MULT, 1, 2);
	CHECK(wait_used(1));
	CHECK(vdrv_get_used(&drv, &id, &len));
	CHECK_EQ(id, r.head);
	CHECK_EQ(req_status(&r), VIRTIO_BLK_S_OK);
	CHECK(memcmp(vdrv_hva(&drv, buf, 4096), orig + 64 * 512, 4096) == 0);
	pthread_mutex_lock(&lock);
	CHECK_EQ(host_irqs.msi[2], 1);
	CHECK_EQ(host_irqs.msi[1], 0);
	pthread_mutex_unlock(&lock);
	/* Queue 0 is unaffected and still works. */
	drv = q0;
	CHECK_EQ(vdrv_used_idx(&drv), 0);
	CHECK_EQ(do_req(VIRTIO_BLK_T_IN, 0, buf, 512, NULL), VIRTIO_BLK_S_OK);
	pthread_mutex_lock(&lock);
	CHECK_EQ(host_irqs.msi[1], 1);
	pthread_mutex_unlock(&lock);
	free(orig);
	destroy_device();
}

/* qcow2 (when the block layer has it): written data as qemu-img sees it. */
static void test_qcow2(void)
{
	const char *path = tpath("disk.qcow2"), *raw = tpath("qcow2-as-raw.img");
	char cmd[1024];
	uint8_t want[8192];
	struct blk *b;
	uint64_t buf;

	snprintf(cmd, sizeof(cmd), "qemu-img create -q -f qcow2 %s 8M", path);
	if (system(cmd) != 0) {
		printf("  (qemu-img not available; qcow2 case skipped)\n");
		return;
	}
	b = open_disk(path, false, BLK_FMT_QCOW2);
	if (!b) {
		printf("  (block layer cannot open qcow2 yet; qcow2 case skipped)\n");
		return;
	}
	create_device(b, NULL);
	driver_init(true, ALL_FEATURES);
	buf = vdrv_alloc(&drv, 8192, 4096);
	fill(want, sizeof(want), 42);
	memcpy(vdrv_hva(&drv, buf, 8192), want, 8192);
	CHECK_EQ(do_req(VIRTIO_BLK_T_OUT, 1000, buf, 8192, NULL), VIRTIO_BLK_S_OK);
	CHECK_EQ(do_req(VIRTIO_BLK_T_FLUSH, 0, 0, 0, NULL), VIRTIO_BLK_S_OK);
	memset(vdrv_hva(&drv, buf, 8192), 0, 8192);
	CHECK_EQ(do_req(VIRTIO_BLK_T_IN, 1000, buf, 8192, NULL), VIRTIO_BLK_S_OK);
	CHECK(memcmp(vdrv_hva(&drv, buf, 8192), want, 8192) == 0);
	destroy_device();
	snprintf(cmd, sizeof(cmd), "qemu-img check -q %s && qemu-img convert -f qcow2 -O raw %s %s",
		 path, path, raw);
	CHECK_EQ(system(cmd), 0);
	CHECK(file_equals(raw, 1000 * 512, want, 8192));
}

static void test_bad_config(void)
{
	struct blk *b = open_disk(make_raw("cfg.img"), false, BLK_FMT_RAW);
	struct virtio_blk_config c = {
		.pci = host, .devfn = DEVFN, .mem = &mem, .lock = &lock,
		.blk = b, .serial = "012345678901234567890",	/* 21 bytes */
	};
	char err[256] = "";

	CHECK(virtio_blk_new(&c, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "serial") != NULL);
	c.serial = NULL;
	c.devfn = 0;				/* the host bridge's */
	CHECK(virtio_blk_new(&c, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "in use") != NULL);
	blk_close(b);
}

static GVariant *vblk_save(void)
{
	GVariant *v;

	virtio_blk_drain(vb);
	pthread_mutex_lock(&lock);
	v = virtio_blk_device_ops.save(vb);
	pthread_mutex_unlock(&lock);
	return v ? g_variant_ref_sink(v) : NULL;
}

/* Queue 0 enabled, requests completed (indices non-zero), an interrupt
 * pending in the ISR: saved, loaded into a fresh device on the same disk
 * and saved again, equal; the restored queue then takes a new request and
 * completes it in the same rings. */
static void test_save_load(void)
{
	const char *path = make_raw("snap.img");
	struct blk *b = open_disk(path, false, BLK_FMT_RAW);
	uint8_t *want = malloc(8192);
	GVariant *s1, *s2, *q0, *empty;
	uint16_t used_before;
	uint64_t buf;
	uint32_t len;
	char err[256] = "";
	int ret;

	CHECK(strcmp(VIRTIO_BLK_STATE_TYPE, "(" VIRTIO_PCI_STATE_TYPE "t)") == 0);
	create_device(b, "snap");
	driver_init(false, ALL_FEATURES);
	buf = vdrv_alloc(&drv, 8192, 4096);
	fill(want, 8192, 5);
	memcpy(vdrv_hva(&drv, buf, 8192), want, 8192);
	CHECK_EQ(do_req(VIRTIO_BLK_T_OUT, 40, buf, 8192, NULL), VIRTIO_BLK_S_OK);
	CHECK_EQ(do_req(VIRTIO_BLK_T_FLUSH, 0, 0, 0, NULL), VIRTIO_BLK_S_OK);
	CHECK_EQ(do_req(VIRTIO_BLK_T_IN, 0, buf, 4096, NULL), VIRTIO_BLK_S_OK);
	used_before = vdrv_used_idx(&drv);
	CHECK_EQ(used_before, 3);

	s1 = vblk_save();
	CHECK(s1 != NULL);
	if (!s1)
		return;
	CHECK(g_variant_is_of_type(s1, G_VARIANT_TYPE(VIRTIO_BLK_STATE_TYPE)));
	/* A fresh device on the same disk; the PCI host's part (BARs,
	 * command register) programmed as its own load would. */
	virtio_blk_drain(vb);
	pthread_mutex_lock(&lock);
	virtio_blk_free(vb);
	pthread_mutex_unlock(&lock);
	create_device(b, "snap");
	pthread_mutex_lock(&lock);
	ret = virtio_blk_device_ops.load(vb, 1, s1, err, sizeof(err));
	pthread_mutex_unlock(&lock);
	CHECK_EQ(ret, 0);
	if (ret)
		fprintf(stderr, "  (%s)\n", err);
	s2 = vblk_save();
	CHECK(s2 && g_variant_equal(s1, s2));
	CHECK_EQ(vpci_status(&vp), 0x0f);
	vpci_wr(&vp, VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_COMMON_Q_SIZE, 2), QSIZE);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_ISR_OFF, 1), 1);	/* the pending INTx */

	/* The next request, in the same rings: read back what was written. */
	memset(vdrv_hva(&drv, buf, 8192), 0, 8192);
	CHECK_EQ(do_req(VIRTIO_BLK_T_IN, 40, buf, 8192, &len), VIRTIO_BLK_S_OK);
	CHECK_EQ(len, 8192 + 1);
	CHECK_EQ(vdrv_used_idx(&drv), used_before + 1);
	CHECK(memcmp(vdrv_hva(&drv, buf, 8192), want, 8192) == 0);

	/* Refused, and the device unchanged. */
	pthread_mutex_lock(&lock);
	state_refused(&virtio_blk_device_ops, vb, 1, g_variant_new("(u)", 1),
		      "virtio-blk: state is of type");
	state_refused(&virtio_blk_device_ops, vb, 2, g_variant_ref(s1),
		      "virtio-blk: state version 2 not supported");
	state_refused(&virtio_blk_device_ops, vb, 1,
		      state_with(s1, g_variant_new_uint64(7), 1, 1),
		      "virtio-blk: saved with a disk of 7 sectors");
	state_refused(&virtio_blk_device_ops, vb, 1,
		      state_with(s1, g_variant_new_uint64(~0ull), 2, 0, 2),
		      "virtio-blk: driver features");
	state_refused(&virtio_blk_device_ops, vb, 1,
		      state_with(s1, g_variant_new_uint16(99), 2, 0, 6),
		      "virtio-blk: device status");
	state_refused(&virtio_blk_device_ops, vb, 1,
		      state_with(s1, g_variant_new_uint16(3), 4, 0, 10, 0, 0),
		      "virtio-blk: queue 0 size 3");
	state_refused(&virtio_blk_device_ops, vb, 1,
		      state_with(s1, g_variant_new_uint16(48), 5, 0, 10, 0, 5, 0),
		      "virtio-blk: queue 0 size 48");
	state_refused(&virtio_blk_device_ops, vb, 1,
		      state_with(s1, g_variant_new_uint64(RAM_SIZE - 512), 5, 0, 10, 0, 5, 5),
		      "virtio-blk: queue 0 rings");
	state_refused(&virtio_blk_device_ops, vb, 1,
		      state_with(s1, g_variant_new_uint64(RING_BASE + 8), 5, 0, 10, 0, 5, 5),
		      "virtio-blk: queue 0 rings");
	state_refused(&virtio_blk_device_ops, vb, 1,
		      state_with(s1, g_variant_new_uint64(RING_BASE + 4096), 4, 0, 10, 0, 2),
		      "virtio-blk: queue 0 enabled with");
	{
		GVariant *t = g_variant_get_child_value(s1, 0);

		q0 = g_variant_get_child_value(t, 10);
		g_variant_unref(t);
	}
	empty = g_variant_new_array(g_variant_type_element(g_variant_get_type(q0)), NULL, 0);
	state_refused(&virtio_blk_device_ops, vb, 1, state_with(s1, empty, 2, 0, 10),
		      "virtio-blk: 0 queues saved");
	g_variant_unref(q0);
	pthread_mutex_unlock(&lock);
	/* Still working. */
	CHECK_EQ(do_req(VIRTIO_BLK_T_IN, 40, buf, 512, NULL), VIRTIO_BLK_S_OK);

	g_variant_unref(s1);
	if (s2)
		g_variant_unref(s2);
	free(want);
	destroy_device();
}

int main(void)
{
	sandbox_test_threads(false);
	log_set_level(LOG_ERROR);	/* the hostile cases log warnings */
	if (!mkdtemp(dir))
		SKIP("cannot make a temporary directory");
	if (guest_mem_init(&mem, RAM_SIZE) != 0)
		SKIP("cannot allocate guest RAM");
	CHECK_EQ(vpci_host_new(&vp, &pio, &vpci_irqs_ops, &host_irqs), 0);
	host = vp.host;
	mmio = vp.mmio;

	RUN_TEST(test_discovery);
	RUN_TEST(test_features_and_config);
	RUN_TEST(test_pci_cfg_window);
	RUN_TEST(test_rw_msix);
	RUN_TEST(test_rw_intx);
	RUN_TEST(test_framing_and_indirect);
	RUN_TEST(test_discard_write_zeroes);
	RUN_TEST(test_bad_requests);
	RUN_TEST(test_readonly);
	RUN_TEST(test_reset_inflight);
	RUN_TEST(test_hostile_ring);
	RUN_TEST(test_interrupt_suppression);
	RUN_TEST(test_many_requests);
	RUN_TEST(test_multiqueue);
	RUN_TEST(test_qcow2);
	RUN_TEST(test_bad_config);
	RUN_TEST(test_save_load);

	pci_host_free(host);
	bus_free(mmio);
	bus_free(pio);
	guest_mem_free(&mem);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "  (could not remove %s)\n", dir);
	}
	return check_finish();
}
