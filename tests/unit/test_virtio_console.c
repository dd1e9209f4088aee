/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_virtio_console.c - virtio-serial (virtio-console with
 * MULTIPORT) on the virtio 1.x PCI transport, driven as Linux's
 * virtio_console driver does it: BARs, features, the eight queues of two
 * named ports through the common configuration, rings built in guest RAM
 * by vring_driver.h, kicks through the notify area.  The control protocol
 * is spoken from the driver's side (DEVICE_READY, PORT_READY, PORT_OPEN,
 * and the device's PORT_ADD / PORT_NAME / PORT_OPEN read back from the
 * control receiveq); the ports' host side is the real struct vcon_port.
 */
#define _GNU_SOURCE
#include <endian.h>
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
#include "log.h"
#include "mem.h"
#include "virtio/virtio_console.h"
#include "virtio/virtio_pci.h"

#define RAM_SIZE	(64u << 20)
#define DEVFN		(0x0f << 3)
#define BAR_ADDR	0xfe000000ull
#define MSIX_ADDR	0xfe100000ull
#define Q_BASE(q)	(0x100000ull + (uint64_t)(q) * 0x600000ull)
#define DATA_LEN	(4u << 20)
#define QSIZE		64
#define NQ		8
#define NAME1		"com.redhat.spice.0"
#define NAME2		"org.qemu.guest_agent.0"

static struct guest_mem mem;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct bus *pio, *mmio;
static struct pci_host *host;
static struct virtio_console *vc;
static struct vcon_port *port1, *port2;
static struct vdrv q[NQ];
static struct vpci_irqs host_irqs = { .msi_base = 0x40 };
static struct vpci vp = {
	.lock = &lock, .devfn = DEVFN, .bar = BAR_ADDR, .msix = MSIX_ADDR,
};
/* The same function for accesses made with the device lock held. */
static struct vpci vp_raw = {
	.devfn = DEVFN, .bar = BAR_ADDR, .msix = MSIX_ADDR,
};

/* The host side's callbacks (device lock held). */
struct host_side {
	unsigned readable, writable, opens, closes;
	bool open;
};
static struct host_side hs1, hs2;

static void on_readable(void *o) { ((struct host_side *)o)->readable++; }
static void on_writable(void *o) { ((struct host_side *)o)->writable++; }
static void on_open(void *o, bool open)
{
	struct host_side *h = o;

	h->open = open;
	if (open)
		h->opens++;
	else
		h->closes++;
}

static const struct vcon_port_ops host_ops_port = {
	on_readable, on_open, on_writable,
};

static struct virtio_console *new_device_raw(void)
{
	struct virtio_console_config c = {
		.pci = host, .devfn = DEVFN, .mem = &mem, .lock = &lock,
		.port = { port1, port2 }, .nports = 2,
	};
	char err[256] = "";
	struct virtio_console *v = virtio_console_new(&c, err, sizeof(err));

	CHECK(v != NULL);
	if (!v) {
		fprintf(stderr, "  %s\n", err);
		exit(1);
	}
	return v;
}

static void create_device(void)
{
	memset(&hs1, 0, sizeof(hs1));
	memset(&hs2, 0, sizeof(hs2));
	port1 = vcon_port_new(NAME1, &host_ops_port, &hs1);
	port2 = vcon_port_new(NAME2, &host_ops_port, &hs2);
	CHECK(port1 && port2);
	pthread_mutex_lock(&lock);
	vc = new_device_raw();
	vpci_map_bars(&vp_raw);
	pthread_mutex_unlock(&lock);
}

static void destroy_device(void)
{
	pthread_mutex_lock(&lock);
	virtio_console_free(vc);
	pthread_mutex_unlock(&lock);
	vcon_port_free(port1);
	vcon_port_free(port2);
	vc = NULL;
}

static void setup_queue(unsigned qn)
{
	uint16_t max = 0;

	vdrv_init(&q[qn], &mem, QSIZE, Q_BASE(qn), DATA_LEN);
	CHECK(vpci_queue_setup(&vp, qn, &q[qn], -1, &max));
	CHECK_EQ(max, VIRTIO_CONSOLE_QUEUE_SIZE);
}

/* §3.1.1: features (MULTIPORT + VERSION_1), all queues, DRIVER_OK. */
static void driver_init(void)
{
	uint64_t want = (1ull << VIRTIO_CONSOLE_F_MULTIPORT) |
			(1ull << VIRTIO_F_VERSION_1), f;

	CHECK(vpci_driver_start(&vp, want, 0, false, 0, 0, &f));
	CHECK_EQ(f, want);	/* both offered */
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_COMMON_NUMQ, 2), NQ);
	for (unsigned i = 0; i < NQ; i++)
		setup_queue(i);
	CHECK_EQ(vpci_driver_ok(&vp), 0x0f);
}

/* ---- chains ------------------------------------------------------------- */

/* Post @n device-writable buffers of @len bytes to queue @qn, and kick. */
static void post_rx(unsigned qn, unsigned n, uint32_t len)
{
	for (unsigned i = 0; i < n; i++) {
		struct vbuf b = { vdrv_alloc(&q[qn], len, 8), len, true };

		vdrv_add(&q[qn], &b, 1, false);
	}
	vpci_kick(&vp, qn);
}

/* A device-readable chain holding @len bytes of @p split over @nseg
 * descriptors; not kicked. */
static uint16_t add_tx(unsigned qn, const void *p, size_t len, unsigned nseg)
{
	struct vbuf b[8];
	size_t off = 0;

	for (unsigned i = 0; i < nseg; i++) {
		size_t part = i + 1 < nseg ? len / nseg : len - off;

		b[i].gpa = vdrv_alloc(&q[qn], part ? part : 1, 1);
		b[i].len = (uint32_t)part;
		b[i].write = false;
		memcpy(vdrv_hva(&q[qn], b[i].gpa, part ? part : 1),
		       (const uint8_t *)p + off, part);
		off += part;
	}
	return vdrv_add(&q[qn], b, nseg, false);
}

/* The descriptor table entry @head's buffer address (direct chains). */
static uint64_t desc_addr(unsigned qn, uint32_t head)
{
	struct virtq_desc d;

	memcpy(&d, vdrv_hva(&q[qn], q[qn].desc + 16ull * head, 16), 16);
	return d.addr;
}

struct ctrl {
	uint32_t id;
	uint16_t event, value;
	char name[80];
};

/* The next control message the device wrote; false if none. */
static bool get_ctrl(struct ctrl *c)
{
	uint32_t head, len;
	const uint8_t *b;

	memset(c, 0, sizeof(*c));
	if (!vdrv_get_used(&q[VIRTIO_CONSOLE_CTRL_RXQ], &head, &len))
		return false;
	CHECK(len >= 8);
	b = vdrv_hva(&q[2], desc_addr(2, head), 8);
	memcpy(&c->id, b, 4);
	memcpy(&c->event, b + 4, 2);
	memcpy(&c->value, b + 6, 2);
	c->id = le32toh(c->id);
	c->event = le16toh(c->event);
	c->value = le16toh(c->value);
	if (len > 8 && len - 8 < sizeof(c->name))
		memcpy(c->name, vdrv_hva(&q[2], desc_addr(2, head) + 8, len - 8),
		       len - 8);
	return true;
}

static void send_ctrl(uint32_t id, uint16_t event, uint16_t value)
{
	uint8_t b[8];
	uint32_t lid = htole32(id);
	uint16_t le = htole16(event), lv = htole16(value);

	memcpy(b, &lid, 4);
	memcpy(b + 4, &le, 2);
	memcpy(b + 6, &lv, 2);
	add_tx(VIRTIO_CONSOLE_CTRL_TXQ, b, 8, 1);
	vpci_kick(&vp, VIRTIO_CONSOLE_CTRL_TXQ);
}

static void expect_ctrl(uint32_t id, uint16_t event, uint16_t value,
			const char *name)
{
	struct ctrl c;

	CHECK(get_ctrl(&c));
	CHECK_EQ(c.id, id);
	CHECK_EQ(c.event, event);
	CHECK_EQ(c.value, value);
	if (name)
		CHECK(strcmp(c.name, name) == 0);
}

/* The multiport bring-up up to both ports added, named, host-open; with
 * @open the guest opens port 1 too. */
static void bring_up(bool open)
{
	driver_init();
	post_rx(VIRTIO_CONSOLE_CTRL_RXQ, 32, 256);
	send_ctrl(0xffffffffu, VIRTIO_CONSOLE_DEVICE_READY, 1);
	expect_ctrl(1, VIRTIO_CONSOLE_DEVICE_ADD, 0, NULL);
	expect_ctrl(2, VIRTIO_CONSOLE_DEVICE_ADD, 0, NULL);
	send_ctrl(1, VIRTIO_CONSOLE_PORT_READY, 1);
	send_ctrl(2, VIRTIO_CONSOLE_PORT_READY, 1);
	expect_ctrl(1, VIRTIO_CONSOLE_PORT_NAME, 1, NAME1);
	expect_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 1, NULL);
	expect_ctrl(2, VIRTIO_CONSOLE_PORT_NAME, 1, NAME2);
	expect_ctrl(2, VIRTIO_CONSOLE_PORT_OPEN, 1, NULL);
	if (open) {
		send_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 1);
		CHECK(vcon_port_guest_open(port1));
	}
}

/* Read back the bytes of the next used receive buffer of port @id. */
static size_t rx_used(unsigned id, uint8_t *out, size_t max)
{
	unsigned qn = VIRTIO_CONSOLE_RXQ(id);
	uint32_t head, len;

	if (!vdrv_get_used(&q[qn], &head, &len))
		return 0;
	CHECK(len <= max);
	if (len > max)
		len = (uint32_t)max;
	memcpy(out, vdrv_hva(&q[qn], desc_addr(qn, head), len ? len : 1), len);
	return len;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 8));
}

/* ---- tests ---------------------------------------------------------------- */

static void test_discovery(void)
{
	create_device();
	pthread_mutex_lock(&lock);
	CHECK_EQ(pci_config_read(host, 0, DEVFN, 0, 2), 0x1af4);
	CHECK_EQ(pci_config_read(host, 0, DEVFN, 2, 2), 0x1043);
	CHECK_EQ(pci_config_read(host, 0, DEVFN, 0x09, 1) |
		 pci_config_read(host, 0, DEVFN, 0x0a, 2) << 8, 0x078000);
	pthread_mutex_unlock(&lock);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_CONSOLE_CFG_MAX_NR_PORTS, 4), 3);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_CONSOLE_CFG_COLS, 2), 0);
	CHECK_EQ(vcon_port_write(port1, "x", 1), -EPIPE);	/* not open */
	destroy_device();
}

static void test_bring_up_and_open(void)
{
	create_device();
	bring_up(false);
	CHECK(!vcon_port_guest_open(port1));
	CHECK_EQ(hs1.opens, 0);
	send_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 1);
	CHECK(hs1.open && hs1.opens == 1);
	CHECK(vcon_port_guest_open(port1));
	CHECK(!vcon_port_guest_open(port2));
	send_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 0);
	CHECK(!hs1.open && hs1.closes == 1);
	send_ctrl(2, VIRTIO_CONSOLE_PORT_OPEN, 1);
	CHECK(hs2.open && vcon_port_guest_open(port2));
	/* A driver reset closes it. */
	vpci_wr(&vp, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	CHECK(!hs2.open && hs2.closes == 1);
	CHECK(!vcon_port_guest_open(port2));
	/* Bring-up again from scratch works. */
	bring_up(true);
	CHECK_EQ(hs1.opens, 2);
	destroy_device();
}

static void test_data_both_ways(void)
{
	static uint8_t out[20000], got[20000];
	size_t n, total;

	create_device();
	bring_up(true);
	/* guest -> host, byte-exact, chains of 1 and 3 descriptors. */
	fill(out, sizeof(out), 1);
	add_tx(VIRTIO_CONSOLE_TXQ(1), out, 1000, 1);
	add_tx(VIRTIO_CONSOLE_TXQ(1), out + 1000, 19000, 3);
	vpci_kick(&vp, VIRTIO_CONSOLE_TXQ(1));
	CHECK(hs1.readable >= 1);
	CHECK_EQ(vcon_port_pending(port1), sizeof(out));
	CHECK_EQ(vcon_port_wait(port1, 0), 1);
	n = vcon_port_read(port1, got, sizeof(got));
	CHECK_EQ(n, sizeof(out));
	CHECK(memcmp(got, out, sizeof(out)) == 0);
	CHECK_EQ(vdrv_used_idx(&q[VIRTIO_CONSOLE_TXQ(1)]), 2);
	CHECK_EQ(vcon_port_pending(port2), 0);

	/* host -> guest: written before buffers exist, then after. */
	fill(out, sizeof(out), 2);
	CHECK_EQ(vcon_port_write(port1, out, 5000), 5000);
	post_rx(VIRTIO_CONSOLE_RXQ(1), 4, 4096);
	total = rx_used(1, got, sizeof(got));
	total += rx_used(1, got + total, sizeof(got) - total);
	CHECK_EQ(total, 5000);
	CHECK(memcmp(got, out, 5000) == 0);
	CHECK_EQ(vcon_port_write(port1, out + 5000, 3000), 3000);
	n = rx_used(1, got, sizeof(got));
	CHECK_EQ(n, 3000);
	CHECK(memcmp(got, out + 5000, 3000) == 0);
	/* Port 0 (no host side): what the guest writes there is dropped. */
	add_tx(VIRTIO_CONSOLE_TXQ(0), "zz", 2, 1);
	vpci_kick(&vp, VIRTIO_CONSOLE_TXQ(0));
	CHECK_EQ(vdrv_used_idx(&q[1]), 1);
	destroy_device();
}

static void test_backpressure(void)
{
	static uint8_t out[3 * VCON_PORT_BUF], got[3 * VCON_PORT_BUF];
	size_t n = 0;
	ssize_t w;
	unsigned used;

	create_device();
	bring_up(true);
	/* guest -> host: 3 x 64 KiB in 16 KiB chains, nothing read. */
	fill(out, sizeof(out), 3);
	for (unsigned i = 0; i < 12; i++)
		add_tx(VIRTIO_CONSOLE_TXQ(1), out + i * 16384, 16384, 2);
	vpci_kick(&vp, VIRTIO_CONSOLE_TXQ(1));
	used = vdrv_used_idx(&q[VIRTIO_CONSOLE_TXQ(1)]);
	CHECK_EQ(used, 4);		/* exactly one buffer's worth */
	CHECK_EQ(vcon_port_pending(port1), VCON_PORT_BUF);
	/* Reading goes on with the ring, byte-exact across the split. */
	while (n < sizeof(out)) {
		size_t r = vcon_port_read(port1, got + n, 10000);

		if (!r)
			break;
		n += r;
	}
	CHECK_EQ(n, sizeof(out));
	CHECK(memcmp(got, out, sizeof(out)) == 0);
	CHECK_EQ(vdrv_used_idx(&q[VIRTIO_CONSOLE_TXQ(1)]), 12);

	/* host -> guest: the buffer takes 64 KiB, then writable once the
	 * guest gives buffers. */
	w = vcon_port_write(port1, out, sizeof(out));
	CHECK_EQ(w, VCON_PORT_BUF);
	CHECK_EQ(vcon_port_write(port1, out, 1), 0);
	CHECK_EQ(hs1.writable, 0);
	post_rx(VIRTIO_CONSOLE_RXQ(1), 16, 4096);
	CHECK_EQ(hs1.writable, 1);
	n = 0;
	for (unsigned i = 0; i < 16; i++)
		n += rx_used(1, got + n, sizeof(got) - n);
	CHECK_EQ(n, VCON_PORT_BUF);
	CHECK(memcmp(got, out, VCON_PORT_BUF) == 0);
	/* Closing drops what waits for the guest. */
	CHECK_EQ(vcon_port_write(port1, out, 100), 100);
	send_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 0);
	CHECK_EQ(vcon_port_write(port1, out, 1), -EPIPE);
	send_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 1);
	post_rx(VIRTIO_CONSOLE_RXQ(1), 1, 4096);
	CHECK_EQ(rx_used(1, got, sizeof(got)), 0);
	destroy_device();
}

static void test_hostile_control(void)
{
	uint8_t b[8] = { 0 };
	struct ctrl c;

	create_device();
	driver_init();
	/* Port messages before DEVICE_READY, unknown ports and events, a
	 * short message: ignored. */
	send_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 1);
	send_ctrl(1, VIRTIO_CONSOLE_PORT_READY, 1);
	add_tx(VIRTIO_CONSOLE_CTRL_TXQ, b, 4, 1);
	vpci_kick(&vp, VIRTIO_CONSOLE_CTRL_TXQ);
	CHECK(!hs1.open);
	post_rx(VIRTIO_CONSOLE_CTRL_RXQ, 4, 256);
	CHECK(!get_ctrl(&c));
	send_ctrl(0xffffffffu, VIRTIO_CONSOLE_DEVICE_READY, 1);
	expect_ctrl(1, VIRTIO_CONSOLE_DEVICE_ADD, 0, NULL);
	expect_ctrl(2, VIRTIO_CONSOLE_DEVICE_ADD, 0, NULL);
	send_ctrl(99, VIRTIO_CONSOLE_PORT_READY, 1);
	send_ctrl(0, VIRTIO_CONSOLE_PORT_OPEN, 1);
	send_ctrl(1, 0x7777, 1);
	send_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 1);	/* before READY */
	CHECK(!hs1.open);
	CHECK(!get_ctrl(&c));
	/* DEVICE_READY spam: the queue toward the guest stays bounded. */
	for (unsigned i = 0; i < 40; i++)
		send_ctrl(0, VIRTIO_CONSOLE_DEVICE_READY, 1);
	for (unsigned i = 0; i < 2; i++)	/* the 2 buffers left */
		CHECK(get_ctrl(&c) && c.event == VIRTIO_CONSOLE_DEVICE_ADD);
	CHECK(!get_ctrl(&c));
	post_rx(VIRTIO_CONSOLE_CTRL_RXQ, 60, 256);
	for (unsigned i = 0; i < VCON_CTRL_PENDING_MAX; i++)
		CHECK(get_ctrl(&c) && c.event == VIRTIO_CONSOLE_DEVICE_ADD);
	CHECK(!get_ctrl(&c));
	send_ctrl(1, VIRTIO_CONSOLE_PORT_READY, 1);
	CHECK(get_ctrl(&c));
	CHECK_EQ(c.event, VIRTIO_CONSOLE_PORT_NAME);
	CHECK(strcmp(c.name, NAME1) == 0);
	expect_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 1, NULL);
	/* Everything still works: the queues are not broken. */
	send_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 1);
	CHECK(hs1.open);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
	destroy_device();
}

static void test_small_ctrl_buffer(void)
{
	struct ctrl c;

	create_device();
	driver_init();
	post_rx(VIRTIO_CONSOLE_CTRL_RXQ, 2, 256);
	send_ctrl(0, VIRTIO_CONSOLE_DEVICE_READY, 1);
	expect_ctrl(1, VIRTIO_CONSOLE_DEVICE_ADD, 0, NULL);
	expect_ctrl(2, VIRTIO_CONSOLE_DEVICE_ADD, 0, NULL);
	post_rx(VIRTIO_CONSOLE_CTRL_RXQ, 1, 10);	/* too small for a name */
	post_rx(VIRTIO_CONSOLE_CTRL_RXQ, 1, 256);
	send_ctrl(1, VIRTIO_CONSOLE_PORT_READY, 1);
	{
		uint32_t head = 0, len = 1;

		CHECK(vdrv_get_used(&q[2], &head, &len));
		CHECK_EQ(len, 0);		/* the name did not fit */
	}
	expect_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 1, NULL);
	CHECK(!get_ctrl(&c));
	destroy_device();
}

static GVariant *save_raw(void)
{
	GVariant *s = virtio_console_device_ops.save(vc);

	return s ? g_variant_ref_sink(s) : NULL;
}

static void test_save_load(void)
{
	static uint8_t out[2000], got[4096];
	GVariant *s1, *s2, *bad;
	char err[256] = "";
	int r;

	create_device();
	bring_up(true);
	fill(out, sizeof(out), 9);
	/* Bytes waiting both ways, a port open, one closed, a control
	 * message pending (port 2's name has no buffer: use them up). */
	CHECK_EQ(vcon_port_write(port1, out, 700), 700);
	add_tx(VIRTIO_CONSOLE_TXQ(1), out + 700, 1300, 2);
	vpci_kick(&vp, VIRTIO_CONSOLE_TXQ(1));
	CHECK_EQ(vcon_port_pending(port1), 1300);

	pthread_mutex_lock(&lock);
	s1 = save_raw();
	CHECK(s1 && g_variant_is_of_type(s1, G_VARIANT_TYPE(VIRTIO_CONSOLE_STATE_TYPE)));
	virtio_console_free(vc);
	pthread_mutex_unlock(&lock);
	CHECK(!hs1.open);
	CHECK(!vcon_port_guest_open(port1));
	pthread_mutex_lock(&lock);
	vc = new_device_raw();
	vpci_map_bars(&vp_raw);
	r = virtio_console_device_ops.load(vc, 1, s1, err, sizeof(err));
	CHECK_EQ(r, 0);
	if (r)
		fprintf(stderr, "  (%s)\n", err);
	s2 = save_raw();
	CHECK(s2 && g_variant_equal(s1, s2));
	pthread_mutex_unlock(&lock);
	g_variant_unref(s2);
	CHECK(hs1.open && vcon_port_guest_open(port1));
	CHECK(!vcon_port_guest_open(port2));
	CHECK_EQ(vcon_port_pending(port1), 1300);
	CHECK_EQ(vcon_port_read(port1, got, sizeof(got)), 1300);
	CHECK(memcmp(got, out + 700, 1300) == 0);
	post_rx(VIRTIO_CONSOLE_RXQ(1), 1, 4096);
	CHECK_EQ(rx_used(1, got, sizeof(got)), 700);
	CHECK(memcmp(got, out, 700) == 0);

	/* Refused loads leave the device as it was. */
	pthread_mutex_lock(&lock);
	bad = state_with(s1, g_variant_new_string("other.port"), 3, 2, 0, 0);
	state_refused(&virtio_console_device_ops, vc, 1, bad,
		      "virtio-console: port 1 is 'other.port'");
	bad = state_with(s1, g_variant_new_boolean(FALSE), 1, 1);
	state_refused(&virtio_console_device_ops, vc, 1, bad,
		      "virtio-console: port 1: flags out of order");
	{
		static uint8_t big[VCON_PORT_BUF + 1];

		bad = state_with(s1, g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE,
				 big, sizeof(big), 1), 3, 2, 0, 6);
		state_refused(&virtio_console_device_ops, vc, 1, bad,
			      "virtio-console: port 1: buffer over");
	}
	bad = state_with(s1, g_variant_new_parsed("[(uint32 7, uint16 1, uint16 0)]"), 1, 3);
	state_refused(&virtio_console_device_ops, vc, 1, bad,
		      "virtio-console: pending control message 7/1/0");
	bad = state_with(s1, g_variant_new_parsed("[(uint32 1, uint16 9, uint16 0)]"), 1, 3);
	state_refused(&virtio_console_device_ops, vc, 1, bad,
		      "virtio-console: pending control message 1/9/0");
	state_refused(&virtio_console_device_ops, vc, 2, g_variant_ref(s1),
		      "virtio-console: state version 2");
	pthread_mutex_unlock(&lock);
	g_variant_unref(s1);
	destroy_device();
}

static void test_bad_config(void)
{
	struct vcon_port *a = vcon_port_new("same", NULL, NULL);
	struct vcon_port *b = vcon_port_new("same", NULL, NULL);
	struct virtio_console_config c = {
		.pci = host, .devfn = DEVFN, .mem = &mem, .lock = &lock,
		.port = { a, b }, .nports = 2,
	};
	char err[256] = "";

	CHECK(vcon_port_new("", NULL, NULL) == NULL);
	CHECK(vcon_port_new("bad/name", NULL, NULL) == NULL);
	CHECK(vcon_port_new("with space", NULL, NULL) == NULL);
	pthread_mutex_lock(&lock);
	CHECK(virtio_console_new(&c, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "two ports named 'same'") != NULL);
	c.nports = 0;
	CHECK(virtio_console_new(&c, err, sizeof(err)) == NULL);
	pthread_mutex_unlock(&lock);
	vcon_port_free(a);
	vcon_port_free(b);
}

int main(void)
{
	log_set_level(LOG_ERROR);	/* the hostile cases log warnings */
	if (guest_mem_init(&mem, RAM_SIZE) != 0)
		SKIP("cannot allocate guest RAM");
	CHECK_EQ(vpci_host_new(&vp, &pio, &vpci_irqs_ops, &host_irqs), 0);
	host = vp.host;
	mmio = vp.mmio;
	vp_raw.host = host;
	vp_raw.mmio = mmio;

	RUN_TEST(test_discovery);
	RUN_TEST(test_bring_up_and_open);
	RUN_TEST(test_data_both_ways);
	RUN_TEST(test_backpressure);
	RUN_TEST(test_hostile_control);
	RUN_TEST(test_small_ctrl_buffer);
	RUN_TEST(test_save_load);
	RUN_TEST(test_bad_config);

	pci_host_free(host);
	bus_free(mmio);
	bus_free(pio);
	guest_mem_free(&mem);
	return check_finish();
}
