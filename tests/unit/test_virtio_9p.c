/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_virtio_9p.c - the virtio 9P transport (virtio_9p.h) on
 * the virtio 1.x PCI transport, driven as a guest driver drives it: the
 * configuration space's mount tag, a 9P2000.L session over synthetic
 * virtqueues (messages split over descriptors as Linux's zero-copy path
 * splits them, direct and indirect), MSI-X completions from the worker
 * thread, hostile chains, a guest reset dropping the fids, and save/load
 * carrying open fids into a new device.  The worker runs on its seccomp
 * allow-list (sandboxed.h), so a call missing from it kills the test.
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
#include "p9client.h"

#include "bus.h"
#include "devices/pci.h"
#include "log.h"
#include "mem.h"
#include "sandbox/sandbox.h"
#include "share/p9_server.h"
#include "virtio/virtio_9p.h"
#include "virtio/virtio_pci.h"

#define RAM_SIZE	(64u << 20)
#define DEVFN		(0x14 << 3)
#define BAR_ADDR	0xfe000000ull
#define MSIX_ADDR	0xfe100000ull
#define RING_BASE	0x100000ull
#define QSIZE		64
#define MSI_BASE_DATA	0x40

static char dir[] = "/tmp/vivarium-v9p-XXXXXX";
static struct guest_mem mem;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct bus *pio, *mmio;
static struct pci_host *host;
static struct virtio_9p *v9;
static struct vdrv drv;
static struct vpci vp = {
	.lock = &lock, .devfn = DEVFN, .bar = BAR_ADDR, .msix = MSIX_ADDR,
};
static struct vpci_irqs host_irqs = { .msi_base = MSI_BASE_DATA };
static bool split_bufs, indirect_bufs;

/* ---- locked accesses, as a vCPU would make them ------------------------ */

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
	CHECK_EQ(max, VIRTIO_9P_QUEUE_SIZE);
	CHECK_EQ(vpci_driver_ok(&vp), 0x0f);
	return f;
}

static bool wait_used(uint16_t idx)
{
	return vdrv_wait_used(&drv, &lock, idx, false, 200, 10000);
}

static void create_device(const char *tag, bool readonly)
{
	struct virtio_9p_config c = {
		.pci = host, .devfn = DEVFN, .mem = &mem, .lock = &lock,
		.path = dir, .tag = tag, .readonly = readonly,
	};
	char err[256];

	pthread_mutex_lock(&lock);
	v9 = virtio_9p_new(&c, err, sizeof(err));
	pthread_mutex_unlock(&lock);
	CHECK(v9 != NULL);
	if (!v9) {
		fprintf(stderr, "  %s\n", err);
		exit(1);
	}
	vpci_map_bars(&vp);
}

static void destroy_device(void)
{
	virtio_9p_drain(v9);
	pthread_mutex_lock(&lock);
	virtio_9p_free(v9);
	pthread_mutex_unlock(&lock);
	v9 = NULL;
}

/* One 9P request through the queue: the request in one or two
 * device-readable buffers (7 bytes of header, then the rest: Linux's
 * zero-copy write), the reply's room in one or two device-writable ones
 * (11 bytes, then the rest: its zero-copy read). */
static size_t vq_rpc(void *opaque, const uint8_t *req, size_t len,
		     uint8_t *resp, size_t room)
{
	uint16_t want = (uint16_t)(vdrv_used_idx(&drv) + 1);
	uint64_t out = vdrv_alloc(&drv, len, 8), in = vdrv_alloc(&drv, room, 8);
	struct vbuf b[4];
	unsigned n = 0;
	uint32_t id, used = 0;

	(void)opaque;
	memcpy(vdrv_hva(&drv, out, len), req, len);
	memset(vdrv_hva(&drv, in, room), 0xa5, room);
	if (split_bufs && len > 7) {
		b[n++] = (struct vbuf){ out, 7, false };
		b[n++] = (struct vbuf){ out + 7, (uint32_t)len - 7, false };
	} else {
		b[n++] = (struct vbuf){ out, (uint32_t)len, false };
	}
	if (split_bufs && room > 11) {
		b[n++] = (struct vbuf){ in, 11, true };
		b[n++] = (struct vbuf){ in + 11, (uint32_t)room - 11, true };
	} else {
		b[n++] = (struct vbuf){ in, (uint32_t)room, true };
	}
	vdrv_add(&drv, b, n, indirect_bufs);
	vpci_kick(&vp, 0);
	if (!wait_used(want)) {
		CHECK(!"request completed");
		return 0;
	}
	CHECK(vdrv_get_used(&drv, &id, &used));
	CHECK(used <= room);
	memcpy(resp, vdrv_hva(&drv, in, used), used);
	drv.data_next = drv.data_start;	/* synchronous: reuse the space */
	return used;
}

static struct p9c *new_client(void)
{
	struct p9c *c = g_malloc0(sizeof(*c));

	c->rpc = vq_rpc;
	c->room = 200 * 1024;
	return c;
}

static void test_config(void)
{
	uint64_t f;

	create_device("share_1", false);
	CHECK_EQ(vpci_cfg_rd(&vp, PCI_DEVICE_ID, 2), 0x1040 + VIRTIO_9P_DEVICE_ID);
	CHECK_EQ(vpci_cfg_rd(&vp, 0x08, 4) >> 8, 0x018000);
	f = vpci_device_features(&vp);
	CHECK(f & (1ull << VIRTIO_9P_MOUNT_TAG));
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF, 2), 7);
	{
		char tag[8];

		for (unsigned i = 0; i < 7; i++)
			tag[i] = (char)vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + 2 + i, 1);
		tag[7] = 0;
		CHECK(!strcmp(tag, "share_1"));
	}
	destroy_device();
	/* Bad tags, a missing folder, a file. */
	{
		struct virtio_9p_config c = {
			.pci = host, .devfn = DEVFN, .mem = &mem, .lock = &lock,
			.path = dir, .tag = "bad tag",
		};
		char err[256];

		CHECK(!virtio_9p_new(&c, err, sizeof(err)));
		CHECK(strstr(err, "mount tag") != NULL);
		c.tag = "0123456789012345678901234567890123";
		CHECK(!virtio_9p_new(&c, err, sizeof(err)));
		c.tag = "ok";
		c.path = "/nonexistent/x";
		CHECK(!virtio_9p_new(&c, err, sizeof(err)));
		CHECK(strstr(err, "/nonexistent/x") != NULL);
		CHECK(virtio_9p_tag_ok("a.b-c_9") && !virtio_9p_tag_ok("") &&
		      !virtio_9p_tag_ok("a/b"));
	}
}

/* A session: version, attach, create, a big write and read through split
 * and indirect chains; the host sees the bytes. */
static void session(bool split, bool indirect)
{
	struct p9c *c = new_client();
	uint8_t *data = malloc(150000), *back = malloc(150000);
	char v[32], path[300];
	uint32_t msize;
	long n;

	split_bufs = split;
	indirect_bufs = indirect;
	for (size_t i = 0; i < 150000; i++)
		data[i] = (uint8_t)(i * 7 + (i >> 9));
	CHECK_EQ(p9c_version(c, 1u << 20, P9_VERSION_L, &msize, v, sizeof(v)), 0);
	CHECK_EQ(msize, P9_MAX_MSIZE_DEFAULT);
	CHECK_EQ(p9c_attach(c, 1, 0, NULL), 0);
	CHECK_EQ(p9c_walk_ok(c, 1, 2, "", NULL), 0);
	CHECK_EQ(p9c_lcreate(c, 2, "big.bin", 2 | P9_DOTL_CREATE | P9_DOTL_TRUNC, 0644, NULL), 0);
	n = p9c_write(c, 2, 0, data, 150000);
	CHECK_EQ(n, 150000);
	n = p9c_read(c, 2, 0, back, 150000);
	CHECK_EQ(n, 150000);
	CHECK(!memcmp(data, back, 150000));
	snprintf(path, sizeof(path), "%s/big.bin", dir);
	{
		gchar *s = NULL;
		gsize len = 0;

		CHECK(g_file_get_contents(path, &s, &len, NULL));
		CHECK(len == 150000 && !memcmp(s, data, 150000));
		g_free(s);
	}
	CHECK_EQ(virtio_9p_nfids(v9), 2);
	CHECK_EQ(p9c_clunk(c, 2), 0);
	unlink(path);
	free(data);
	free(back);
	g_free(c);
}

static void test_session(void)
{
	create_device("t", false);
	vpci_irqs_clear(&host_irqs);
	driver_init(true, ~0ull);
	session(false, false);
	session(true, false);
	session(true, true);
	CHECK(__atomic_load_n(&host_irqs.msi[1], __ATOMIC_SEQ_CST) > 0);
	CHECK_EQ(host_irqs.msi_bad, 0);
	/* A guest reset: the fids are gone. */
	CHECK(virtio_9p_nfids(v9) > 0);
	vpci_set_status(&vp, 0);
	CHECK_EQ(vpci_status(&vp), 0);
	CHECK_EQ(virtio_9p_nfids(v9), 0);
	destroy_device();
}

static void test_hostile(void)
{
	struct p9c *c = new_client();
	char v[32];
	uint32_t msize, id, used;
	uint16_t want;
	struct p9_writer w;

	create_device("t", false);
	driver_init(false, ~0ull);
	split_bufs = indirect_bufs = false;
	CHECK_EQ(p9c_version(c, 8192, P9_VERSION_L, &msize, v, sizeof(v)), 0);
	/* A request over msize. */
	p9c_begin(c, &w, P9_TWRITE);
	p9_put32(&w, 0);
	p9_put64(&w, 0);
	p9_put32(&w, 9000);
	p9_reserve(&w, 9000);
	CHECK_EQ(p9c_send(c, &w), -EMSGSIZE);
	/* A reply room too small for even Rlerror: nothing written. */
	c->room = 8;
	CHECK_EQ(p9c_attach(c, 1, 0, NULL), -1000);
	c->room = 200 * 1024;
	/* A chain with no device-writable buffer: the queue breaks. */
	want = (uint16_t)(vdrv_used_idx(&drv));
	{
		uint64_t out = vdrv_alloc(&drv, 16, 8);
		struct vbuf b = { out, 16, false };

		vdrv_add(&drv, &b, 1, false);
		vpci_kick(&vp, 0);
	}
	usleep(20000);
	CHECK(vpci_status(&vp) & VIRTIO_CONFIG_S_NEEDS_RESET);
	CHECK_EQ(vdrv_used_idx(&drv), want);
	CHECK(!vdrv_get_used(&drv, &id, &used));
	g_free(c);
	destroy_device();
}

static GVariant *v9_save(void)
{
	GVariant *s;

	virtio_9p_drain(v9);
	pthread_mutex_lock(&lock);
	s = virtio_9p_device_ops.save(v9);
	pthread_mutex_unlock(&lock);
	return s ? g_variant_ref_sink(s) : NULL;
}

static void test_save_load(void)
{
	struct p9c *c = new_client();
	GVariant *s1, *s2;
	char v[32], err[256] = "", buf[64], path[300];
	uint32_t msize;
	int r;

	snprintf(path, sizeof(path), "%s/kept.txt", dir);
	g_file_set_contents(path, "kept across the snapshot", -1, NULL);
	create_device("snap", false);
	driver_init(false, ~0ull);
	split_bufs = indirect_bufs = false;
	CHECK_EQ(p9c_version(c, 65536, P9_VERSION_L, &msize, v, sizeof(v)), 0);
	CHECK_EQ(p9c_attach(c, 1, 0, NULL), 0);
	CHECK_EQ(p9c_walk_ok(c, 1, 2, "kept.txt", NULL), 0);
	CHECK_EQ(p9c_lopen(c, 2, 0, NULL), 0);
	s1 = v9_save();
	CHECK(s1 && g_variant_is_of_type(s1, G_VARIANT_TYPE(VIRTIO_9P_STATE_TYPE)));
	if (!s1)
		return;
	CHECK(!strcmp(VIRTIO_9P_STATE_TYPE,
		      "(" VIRTIO_PCI_STATE_TYPE "sb" P9_SERVER_STATE_TYPE ")"));
	destroy_device();
	create_device("snap", false);
	pthread_mutex_lock(&lock);
	r = virtio_9p_device_ops.load(v9, 1, s1, err, sizeof(err));
	pthread_mutex_unlock(&lock);
	CHECK_EQ(r, 0);
	if (r)
		fprintf(stderr, "  (%s)\n", err);
	CHECK_EQ(virtio_9p_nfids(v9), 2);
	s2 = v9_save();
	CHECK(s2 && g_variant_equal(s1, s2));
	/* The restored fid reads on, in the same rings. */
	CHECK_EQ(p9c_read(c, 2, 0, buf, sizeof(buf)), 24);
	CHECK(!memcmp(buf, "kept across the snapshot", 24));
	/* Another tag or readonly: refused, unchanged. */
	pthread_mutex_lock(&lock);
	state_refused(&virtio_9p_device_ops, v9, 1,
		      state_with(s1, g_variant_new_string("other"), 1, 1),
		      "virtio-9p: saved for share 'other'");
	state_refused(&virtio_9p_device_ops, v9, 1,
		      state_with(s1, g_variant_new_boolean(TRUE), 1, 2),
		      "virtio-9p: saved for share 'snap' (readonly)");
	state_refused(&virtio_9p_device_ops, v9, 1,
		      state_with(s1, g_variant_new_string("../x"), 4, 3, 2, 0, 1),
		      "virtio-9p: saved fid");
	state_refused(&virtio_9p_device_ops, v9, 2, g_variant_ref(s1),
		      "virtio-9p: state version 2");
	pthread_mutex_unlock(&lock);
	CHECK_EQ(p9c_read(c, 2, 5, buf, 6), 6);
	CHECK(!memcmp(buf, "across", 6));
	g_variant_unref(s1);
	if (s2)
		g_variant_unref(s2);
	unlink(path);
	g_free(c);
	destroy_device();
}

int main(void)
{
	struct sandbox_config sc = { .shares = true };
	char err[256];

	if (!getenv("VIVARIUM_TEST_NO_SANDBOX") &&
	    sandbox_filter_new_threads(&sc, err, sizeof(err)) < 0)
		fprintf(stderr, "# the VMM's threads run unfiltered: %s\n", err);
	log_set_level(LOG_ERROR);
	if (!mkdtemp(dir))
		SKIP("cannot make a temporary directory");
	if (guest_mem_init(&mem, RAM_SIZE) != 0)
		SKIP("cannot allocate guest RAM");
	vdrv_init(&drv, &mem, QSIZE, RING_BASE, 16u << 20);
	CHECK_EQ(vpci_host_new(&vp, &pio, &vpci_irqs_ops, &host_irqs), 0);
	host = vp.host;
	mmio = vp.mmio;

	RUN_TEST(test_config);
	RUN_TEST(test_session);
	RUN_TEST(test_hostile);
	RUN_TEST(test_save_load);
	rmdir(dir);
	return check_finish();
}
