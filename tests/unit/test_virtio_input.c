/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_virtio_input.c - the virtio keyboard and tablet on the
 * virtio 1.x PCI transport, driven the way Linux's virtio_input driver
 * does it (BARs, the configuration space's select/subsel, two queues set
 * up through the common configuration, rings built in guest RAM by
 * vring_driver.h, kicks through the notify area), and fed through a real
 * console (display/console.h) as the frontends feed it: the events must
 * land byte for byte in the guest's buffers, LED state must come back from
 * the status queue, hostile chains must break the queue and nothing else,
 * a guest that takes no events must cost a bounded queue and end with the
 * host's key state, and a saved state must load into a new device.
 */
#include <errno.h>
#include <linux/input-event-codes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testlib.h"
#include "statetest.h"
#include "virtio_pci_driver.h"
#include "vring_driver.h"

#include "bus.h"
#include "devices/pci.h"
#include "display/console.h"
#include "input/keymap.h"
#include "log.h"
#include "mem.h"
#include "virtio/virtio_input.h"
#include "virtio/virtio_pci.h"

#define RAM_SIZE	(16u << 20)
#define DEVFN		(0x0d << 3)
#define BAR_ADDR	0xfe000000ull
#define MSIX_ADDR	0xfe100000ull
#define EVQ_BASE	0x0100000ull
#define STQ_BASE	0x0400000ull
#define DATA_LEN	(1u << 20)
#define QSIZE		64
#define MSI_BASE_DATA	0x40

#define F(bit)		(1ull << (bit))

static struct guest_mem mem;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct bus *pio, *mmio;
static struct pci_host *host;
static struct virtio_input *vi;
static enum virtio_input_kind kind;
static struct console *con;
static struct vdrv evd, std;
static struct vpci vp = {
	.lock = &lock, .devfn = DEVFN, .bar = BAR_ADDR, .msix = MSIX_ADDR,
};
/* The same function for accesses made with the device lock held. */
static struct vpci vp_raw = {
	.devfn = DEVFN, .bar = BAR_ADDR, .msix = MSIX_ADDR,
};
static uint64_t ev_gpa[QSIZE];		/* the eventq buffer of each head */
static struct vpci_irqs host_irqs = { .msi_base = MSI_BASE_DATA };

/* ---- register accesses, as a vCPU makes them --------------------------- */

/* ---- the device and its driver ------------------------------------------ */

static struct virtio_input *new_device_raw(void)
{
	struct virtio_input_config c = {
		.pci = host, .devfn = DEVFN, .mem = &mem, .kind = kind,
	};
	struct virtio_input *v;
	char err[256] = "";

	v = virtio_input_new(&c, err, sizeof(err));
	CHECK(v != NULL);
	if (!v) {
		fprintf(stderr, "  %s\n", err);
		exit(1);
	}
	vpci_map_bars(&vp_raw);
	return v;
}

static const struct console_input_dev_ops *dev_ops(void)
{
	return kind == VIRTIO_INPUT_KEYBOARD ? &virtio_keyboard_input_ops
					     : &virtio_tablet_input_ops;
}

static const struct device_ops *table_ops(void)
{
	return kind == VIRTIO_INPUT_KEYBOARD ? &virtio_keyboard_device_ops
					     : &virtio_tablet_device_ops;
}

/* A @k device on the bus, registered with a fresh console (640x480). */
static void create_device(enum virtio_input_kind k)
{
	kind = k;
	vpci_irqs_clear(&host_irqs);
	pthread_mutex_lock(&lock);
	vi = new_device_raw();
	pthread_mutex_unlock(&lock);
	con = console_new();
	CHECK_EQ(console_add_input(con, dev_ops(), vi, &lock), 0);
}

static void destroy_device(void)
{
	console_remove_input(con, dev_ops(), vi);
	console_free(con);
	pthread_mutex_lock(&lock);
	CHECK_EQ(host_irqs.msi_bad, 0);
	virtio_input_free(vi);
	pthread_mutex_unlock(&lock);
	vi = NULL;
	con = NULL;
}

static void setup_queue(unsigned q, struct vdrv *d, uint64_t base)
{
	uint16_t max = 0;

	vdrv_init(d, &mem, QSIZE, base, DATA_LEN);
	CHECK(vpci_queue_setup(&vp, q, d, (int)q + 1, &max));
	CHECK_EQ(max, VIRTIO_INPUT_QUEUE_SIZE);
}

/* §3.1.1 as virtinput_probe(): features (@ring: INDIRECT_DESC and
 * EVENT_IDX too), both queues (MSI-X: config 0, queue q -> q + 1),
 * DRIVER_OK. */
static void driver_init(bool ring)
{
	uint64_t f = F(VIRTIO_F_VERSION_1) |
		     (ring ? F(VIRTIO_F_INDIRECT_DESC) | F(VIRTIO_F_EVENT_IDX) : 0);

	/* Accepts @f whatever is offered, as the fuzz target does. */
	CHECK(vpci_driver_start(&vp, 0, f, true, 3, MSI_BASE_DATA, &f));
	setup_queue(VIRTIO_INPUT_EVENTQ, &evd, EVQ_BASE);
	setup_queue(VIRTIO_INPUT_STATUSQ, &std, STQ_BASE);
	CHECK_EQ(vpci_driver_ok(&vp), 0x0f);
}

/* ---- the configuration space, as the driver reads it ------------------- */

/* Select (@select, @subsel) with byte writes; returns size and copies u. */
static unsigned cfg_select(uint8_t select, uint8_t subsel, uint8_t *u)
{
	unsigned size;

	vpci_wr(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_INPUT_CFG_SELECT, select, 1);
	vpci_wr(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_INPUT_CFG_SUBSEL, subsel, 1);
	size = (unsigned)vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_INPUT_CFG_SIZE, 1);
	for (unsigned i = 0; u && i < VIRTIO_INPUT_CFG_U_LEN; i++)
		u[i] = (uint8_t)vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_INPUT_CFG_U + i, 1);
	return size;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)(p[0] | p[1] << 8 | p[2] << 16) | (uint32_t)p[3] << 24;
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static bool ubit(const uint8_t *u, unsigned n)
{
	return u[n / 8] >> (n % 8) & 1;
}

/* ---- events --------------------------------------------------------------- */

struct ev {
	uint16_t type, code;
	uint32_t value;
};

/* Post @n eventq buffers: 8 bytes each, one descriptor, or (@split) the
 * event in two descriptors of 3 and 5 bytes, or (@indirect) through an
 * indirect table.  Bytes set to 0xee first. */
static void ev_post(unsigned n, bool split, bool indirect)
{
	pthread_mutex_lock(&lock);
	for (unsigned i = 0; i < n; i++) {
		uint64_t gpa = vdrv_alloc(&evd, 8, 8);
		struct vbuf b[2] = { { gpa, 8, true } };
		uint16_t head;

		memset(vdrv_hva(&evd, gpa, 8), 0xee, 8);
		if (split) {
			b[0].len = 3;
			b[1] = (struct vbuf){ gpa + 3, 5, true };
		}
		head = vdrv_add(&evd, b, split ? 2 : 1, indirect);
		ev_gpa[head] = gpa;
	}
	pthread_mutex_unlock(&lock);
	vpci_kick(&vp, VIRTIO_INPUT_EVENTQ);
}

/* The events the device has put in used buffers since the last call, in
 * order; each used element must say 8 bytes. */
static unsigned ev_take(struct ev *out, unsigned cap)
{
	uint32_t id, len;
	unsigned n = 0;

	pthread_mutex_lock(&lock);
	while (n < cap && vdrv_get_used(&evd, &id, &len)) {
		const uint8_t *p = vdrv_hva(&evd, ev_gpa[id % QSIZE], 8);

		CHECK_EQ(len, 8);
		out[n].type = le16(p);
		out[n].code = le16(p + 2);
		out[n].value = le32(p + 4);
		n++;
	}
	pthread_mutex_unlock(&lock);
	return n;
}

/* The raw 8 bytes of the next used event buffer. */
static bool ev_take_raw(uint8_t b[8])
{
	uint32_t id, len;
	bool ok;

	pthread_mutex_lock(&lock);
	ok = vdrv_get_used(&evd, &id, &len);
	if (ok)
		memcpy(b, vdrv_hva(&evd, ev_gpa[id % QSIZE], 8), 8);
	pthread_mutex_unlock(&lock);
	return ok;
}

static bool ev_is(const struct ev *e, uint16_t type, uint16_t code,
		  uint32_t value)
{
	bool ok = e->type == type && e->code == code && e->value == value;

	if (!ok)
		fprintf(stderr, "  (event %u/%u/%d, wanted %u/%u/%d)\n", e->type,
			e->code, (int)e->value, type, code, (int)value);
	return ok;
}

/* Send one event on the statusq; returns the used length. */
static uint32_t status_send(uint16_t type, uint16_t code, uint32_t value,
			    uint32_t len)
{
	uint8_t b[8] = { (uint8_t)type, (uint8_t)(type >> 8), (uint8_t)code,
			 (uint8_t)(code >> 8), (uint8_t)value,
			 (uint8_t)(value >> 8), (uint8_t)(value >> 16),
			 (uint8_t)(value >> 24) };
	uint32_t id, used = ~0u;
	uint64_t gpa;

	pthread_mutex_lock(&lock);
	gpa = vdrv_alloc(&std, 8, 8);
	memcpy(vdrv_hva(&std, gpa, 8), b, 8);
	vdrv_add(&std, &(struct vbuf){ gpa, len, false }, 1, false);
	pthread_mutex_unlock(&lock);
	vpci_kick(&vp, VIRTIO_INPUT_STATUSQ);
	pthread_mutex_lock(&lock);
	CHECK(vdrv_get_used(&std, &id, &used));
	pthread_mutex_unlock(&lock);
	return used;
}

static struct virtio_input_stats stats(void)
{
	struct virtio_input_stats st;

	pthread_mutex_lock(&lock);
	virtio_input_get_stats(vi, &st);
	pthread_mutex_unlock(&lock);
	return st;
}

static unsigned pending(void)
{
	unsigned n;

	pthread_mutex_lock(&lock);
	n = virtio_input_pending(vi);
	pthread_mutex_unlock(&lock);
	return n;
}

/* ---- tests ---------------------------------------------------------------- */

/* PCI identity, the transport's offer, two queues of 64. */
static void test_discovery(void)
{
	uint64_t f;

	create_device(VIRTIO_INPUT_TABLET);
	CHECK_EQ(pci_config_read(host, 0, DEVFN, 0, 4), 0x10521af4u);
	CHECK_EQ(pci_config_read(host, 0, DEVFN, 8, 4) >> 8, 0x098000);
	vpci_wr(&vp, VIRTIO_PCI_COMMON_DFSELECT, 0, 4);
	f = vpci_rd(&vp, VIRTIO_PCI_COMMON_DF, 4);
	vpci_wr(&vp, VIRTIO_PCI_COMMON_DFSELECT, 1, 4);
	f |= vpci_rd(&vp, VIRTIO_PCI_COMMON_DF, 4) << 32;
	CHECK_EQ(f, F(VIRTIO_F_VERSION_1) | F(VIRTIO_F_INDIRECT_DESC) |
		    F(VIRTIO_F_EVENT_IDX));
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_COMMON_NUMQ, 2), 2);
	destroy_device();
}

/* Every answer of both kinds, as the driver's probe reads them. */
static void test_config_space(void)
{
	uint8_t u[VIRTIO_INPUT_CFG_U_LEN], keys[KEYMAP_KEYS_BYTES];
	unsigned n;

	create_device(VIRTIO_INPUT_KEYBOARD);
	CHECK_EQ(cfg_select(VIRTIO_INPUT_CFG_UNSET, 0, u), 0);
	n = cfg_select(VIRTIO_INPUT_CFG_ID_NAME, 0, u);
	CHECK_EQ(n, strlen("Vivarium Virtio Keyboard"));
	CHECK(!memcmp(u, "Vivarium Virtio Keyboard", n) && u[n] == 0);
	n = cfg_select(VIRTIO_INPUT_CFG_ID_SERIAL, 0, u);
	CHECK(n == strlen("vivarium-keyboard") && !memcmp(u, "vivarium-keyboard", n));
	CHECK_EQ(cfg_select(VIRTIO_INPUT_CFG_ID_DEVIDS, 0, u), 8);
	CHECK_EQ(le16(u), 0x06);		/* BUS_VIRTUAL */
	CHECK_EQ(le16(u + 2), 0x0627);
	CHECK_EQ(le16(u + 4), 0x0001);
	CHECK_EQ(le16(u + 6), 0x0001);
	CHECK_EQ(cfg_select(VIRTIO_INPUT_CFG_PROP_BITS, 0, u), 0);
	/* EV_KEY: exactly what the frontends can send, the first 32 keys
	 * included (udev's ID_INPUT_KEYBOARD test). */
	keymap_keys(keys);
	n = cfg_select(VIRTIO_INPUT_CFG_EV_BITS, EV_KEY, u);
	CHECK(n > 0 && n <= KEYMAP_KEYS_BYTES);
	CHECK(!memcmp(u, keys, n));
	for (unsigned i = n; i < KEYMAP_KEYS_BYTES; i++)
		CHECK_EQ(keys[i], 0);
	for (unsigned k = KEY_ESC; k <= KEY_D; k++)
		CHECK(ubit(u, k));
	CHECK(ubit(u, KEY_F24) && ubit(u, KEY_SYSRQ) && ubit(u, KEY_RIGHTMETA));
	CHECK(!ubit(u, 0));
	CHECK_EQ(cfg_select(VIRTIO_INPUT_CFG_EV_BITS, EV_REP, u), 1);
	CHECK_EQ(u[0], 0);
	CHECK_EQ(cfg_select(VIRTIO_INPUT_CFG_EV_BITS, EV_LED, u), 1);
	CHECK_EQ(u[0], 1 << LED_NUML | 1 << LED_CAPSL | 1 << LED_SCROLLL);
	CHECK_EQ(cfg_select(VIRTIO_INPUT_CFG_EV_BITS, EV_ABS, u), 0);
	CHECK_EQ(cfg_select(VIRTIO_INPUT_CFG_EV_BITS, EV_REL, u), 0);
	CHECK_EQ(cfg_select(VIRTIO_INPUT_CFG_EV_BITS, EV_SYN, u), 0);
	CHECK_EQ(cfg_select(VIRTIO_INPUT_CFG_ABS_INFO, ABS_X, u), 0);
	destroy_device();

	create_device(VIRTIO_INPUT_TABLET);
	n = cfg_select(VIRTIO_INPUT_CFG_ID_NAME, 0, u);
	CHECK(n == strlen("Vivarium Virtio Tablet") &&
	      !memcmp(u, "Vivarium Virtio Tablet", n));
	n = cfg_select(VIRTIO_INPUT_CFG_ID_SERIAL, 0, u);
	CHECK(n == strlen("vivarium-tablet") && !memcmp(u, "vivarium-tablet", n));
	CHECK_EQ(cfg_select(VIRTIO_INPUT_CFG_ID_DEVIDS, 0, u), 8);
	CHECK_EQ(le16(u + 4), 0x0003);
	/* Not INPUT_PROP_DIRECT: a pointer, not a touchscreen. */
	CHECK_EQ(cfg_select(VIRTIO_INPUT_CFG_PROP_BITS, 0, u), 0);
	n = cfg_select(VIRTIO_INPUT_CFG_EV_BITS, EV_KEY, u);
	CHECK_EQ(n, BTN_EXTRA / 8 + 1);
	for (unsigned c = 0; c < 8 * n; c++)
		CHECK_EQ(ubit(u, c), c >= BTN_LEFT && c <= BTN_EXTRA);
	CHECK_EQ(cfg_select(VIRTIO_INPUT_CFG_EV_BITS, EV_REL, u), 2);
	CHECK_EQ(le16(u), 1 << REL_WHEEL);
	CHECK_EQ(cfg_select(VIRTIO_INPUT_CFG_EV_BITS, EV_ABS, u), 1);
	CHECK_EQ(u[0], 1 << ABS_X | 1 << ABS_Y);
	CHECK_EQ(cfg_select(VIRTIO_INPUT_CFG_EV_BITS, EV_REP, u), 0);
	CHECK_EQ(cfg_select(VIRTIO_INPUT_CFG_EV_BITS, EV_LED, u), 0);
	for (unsigned axis = ABS_X; axis <= ABS_Y; axis++) {
		CHECK_EQ(cfg_select(VIRTIO_INPUT_CFG_ABS_INFO, (uint8_t)axis, u), 20);
		/* As virtinput_cfg_abs() reads them: le32 fields. */
		CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_INPUT_CFG_U, 4), 0);
		CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_INPUT_CFG_U + 4, 4),
			 CONSOLE_ABS_MAX);
		CHECK_EQ(le32(u + 8) | le32(u + 12) | le32(u + 16), 0);
	}
	CHECK_EQ(cfg_select(VIRTIO_INPUT_CFG_ABS_INFO, ABS_Z, u), 0);
	/* Strings are subsel 0 only; unknown selectors read size 0 and a
	 * zeroed u. */
	CHECK_EQ(cfg_select(VIRTIO_INPUT_CFG_ID_NAME, 1, u), 0);
	CHECK_EQ(cfg_select(0x7f, 0, u), 0);
	for (unsigned i = 0; i < sizeof(u); i++)
		CHECK_EQ(u[i], 0);
	/* select and subsel read back; a 2-byte write sets both; size and
	 * u are the device's. */
	vpci_wr(&vp, VIRTIO_PCI_DEVICE_OFF, VIRTIO_INPUT_CFG_ABS_INFO | ABS_Y << 8, 2);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF, 2), VIRTIO_INPUT_CFG_ABS_INFO | ABS_Y << 8);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_INPUT_CFG_SIZE, 1), 20);
	vpci_wr(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_INPUT_CFG_SIZE, 0x55, 1);
	vpci_wr(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_INPUT_CFG_U + 4, 7, 4);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_INPUT_CFG_SIZE, 1), 20);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_INPUT_CFG_U + 4, 4),
		 CONSOLE_ABS_MAX);
	/* A driver reset puts select back to UNSET. */
	vpci_set_status(&vp, 0);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF, 2), 0);
	destroy_device();
}

/* The console routes to the device only while its driver runs it. */
static void test_active(void)
{
	create_device(VIRTIO_INPUT_TABLET);
	CHECK(console_pointer_abs(con) == NULL);
	CHECK(!console_mouse_abs(con, 1, 1, 0, 0));
	driver_init(false);
	CHECK(!strcmp(console_pointer_abs(con), "virtio-tablet"));
	CHECK(!strcmp(console_keyboard(con), "ps2"));
	/* Before DRIVER_OK, and after a reset: PS/2. */
	vpci_set_status(&vp, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	vpci_set_status(&vp, 0);
	CHECK(console_pointer_abs(con) == NULL);
	destroy_device();

	create_device(VIRTIO_INPUT_KEYBOARD);
	CHECK(!strcmp(console_keyboard(con), "ps2"));
	driver_init(true);
	CHECK(!strcmp(console_keyboard(con), "virtio-keyboard"));
	CHECK(console_pointer_abs(con) == NULL);
	/* A broken eventq is not driven. */
	pthread_mutex_lock(&lock);
	virtq_set_broken(virtio_pci_queue(virtio_input_transport(vi),
					  VIRTIO_INPUT_EVENTQ));
	pthread_mutex_unlock(&lock);
	CHECK(!strcmp(console_keyboard(con), "ps2"));
	CHECK(vpci_status(&vp) & VIRTIO_CONFIG_S_NEEDS_RESET);
	destroy_device();
}

/* Pointer positions, buttons and the wheel, byte for byte in buffers of
 * any layout; only what changed is sent. */
static void test_tablet_events(void)
{
	static const uint8_t want_x[8] = { 0x03, 0x00, 0x00, 0x00, 0x19, 0x14, 0x00, 0x00 };
	struct ev e[64];
	uint8_t raw[8];
	unsigned n, x, y, irqs;

	create_device(VIRTIO_INPUT_TABLET);
	driver_init(true);
	ev_post(8, false, false);
	ev_post(8, true, false);
	ev_post(8, false, true);

	/* Pixel (100, 200) of the console's 640x480: the middle of its
	 * share of 0..0x7fff: x = (2 * 100 + 1) * 32768 / (2 * 640) = 5145. */
	irqs = host_irqs.msi[1];
	CHECK(console_mouse_abs(con, 100, 200, 0, 0));
	x = console_abs_scale(100, 640, CONSOLE_ABS_MAX);
	y = console_abs_scale(200, 480, CONSOLE_ABS_MAX);
	CHECK_EQ(x, 5145);
	CHECK(ev_take_raw(raw));
	CHECK(!memcmp(raw, want_x, 8));
	n = ev_take(e, 64);
	CHECK_EQ(n, 2);
	CHECK(ev_is(&e[0], EV_ABS, ABS_Y, y));
	CHECK(ev_is(&e[1], EV_SYN, SYN_REPORT, 0));
	CHECK(host_irqs.msi[1] > irqs);
	CHECK_EQ(x * 640 / (CONSOLE_ABS_MAX + 1), 100);
	CHECK_EQ(y * 480 / (CONSOLE_ABS_MAX + 1), 200);

	/* Left down at the same place: no axis. */
	console_mouse_abs(con, 100, 200, 0, CONSOLE_BTN_LEFT);
	n = ev_take(e, 64);
	CHECK_EQ(n, 2);
	CHECK(ev_is(&e[0], EV_KEY, BTN_LEFT, 1));
	CHECK(ev_is(&e[1], EV_SYN, SYN_REPORT, 0));
	/* Drag in x only, right and side down, left up. */
	console_mouse_abs(con, 639, 200, 0, CONSOLE_BTN_RIGHT | CONSOLE_BTN_SIDE);
	n = ev_take(e, 64);
	CHECK_EQ(n, 5);
	CHECK(ev_is(&e[0], EV_ABS, ABS_X, console_abs_scale(639, 640, CONSOLE_ABS_MAX)));
	CHECK(ev_is(&e[1], EV_KEY, BTN_LEFT, 0));
	CHECK(ev_is(&e[2], EV_KEY, BTN_RIGHT, 1));
	CHECK(ev_is(&e[3], EV_KEY, BTN_SIDE, 1));
	CHECK(ev_is(&e[4], EV_SYN, SYN_REPORT, 0));
	/* The wheel towards the user (scrolling down) is REL_WHEEL -1; the
	 * middle and extra buttons. */
	console_mouse_abs(con, 639, 200, 1, CONSOLE_BTN_MIDDLE | CONSOLE_BTN_EXTRA);
	n = ev_take(e, 64);
	CHECK_EQ(n, 6);
	CHECK(ev_is(&e[0], EV_KEY, BTN_RIGHT, 0));
	CHECK(ev_is(&e[1], EV_KEY, BTN_MIDDLE, 1));
	CHECK(ev_is(&e[2], EV_KEY, BTN_SIDE, 0));
	CHECK(ev_is(&e[3], EV_KEY, BTN_EXTRA, 1));
	CHECK(ev_is(&e[4], EV_REL, REL_WHEEL, 0xffffffffu));
	CHECK(ev_is(&e[5], EV_SYN, SYN_REPORT, 0));
	console_mouse_abs(con, 639, 200, -2, CONSOLE_BTN_MIDDLE | CONSOLE_BTN_EXTRA);
	n = ev_take(e, 64);
	CHECK_EQ(n, 2);
	CHECK(ev_is(&e[0], EV_REL, REL_WHEEL, 2));
	/* Nothing changed: nothing sent. */
	console_mouse_abs(con, 639, 200, 0, CONSOLE_BTN_MIDDLE | CONSOLE_BTN_EXTRA);
	CHECK_EQ(ev_take(e, 64), 0);
	/* Past the edge: the last pixel. */
	console_mouse_abs(con, 5000, 5000, 0, CONSOLE_BTN_MIDDLE | CONSOLE_BTN_EXTRA);
	n = ev_take(e, 64);
	CHECK_EQ(n, 2);
	CHECK(ev_is(&e[0], EV_ABS, ABS_Y, console_abs_scale(479, 480, CONSOLE_ABS_MAX)));
	CHECK_EQ(stats().delivered, 20);
	CHECK_EQ(pending(), 0);
	destroy_device();
}

/* Keys as KEY_* codes with SYN_REPORT; nothing for keys it does not
 * declare or releases of keys it never pressed. */
static void test_keyboard_events(void)
{
	static const uint8_t a_down[16] = { 0x01, 0x00, 0x1e, 0x00, 0x01, 0x00, 0x00, 0x00,
					    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 };
	uint8_t raw[16];
	struct ev e[16];

	create_device(VIRTIO_INPUT_KEYBOARD);
	driver_init(false);
	ev_post(16, false, false);
	console_key(con, KEY_A, true);
	CHECK(ev_take_raw(raw) && ev_take_raw(raw + 8));
	CHECK(!memcmp(raw, a_down, 16));
	console_key(con, KEY_A, false);
	CHECK_EQ(ev_take(e, 16), 2);
	CHECK(ev_is(&e[0], EV_KEY, KEY_A, 0));
	console_key(con, KEY_A, false);		/* not down */
	console_key(con, KEY_MICMUTE, true);	/* not declared */
	CHECK_EQ(ev_take(e, 16), 0);
	console_ctrl_alt_del(con);
	CHECK_EQ(ev_take(e, 16), 12);
	CHECK(ev_is(&e[0], EV_KEY, KEY_LEFTCTRL, 1));
	CHECK(ev_is(&e[4], EV_KEY, KEY_DELETE, 1));
	CHECK(ev_is(&e[11], EV_SYN, SYN_REPORT, 0));
	destroy_device();
}

/* LED state comes back through the statusq; other events are read and
 * ignored; a short chain is returned unread. */
static void test_leds(void)
{
	create_device(VIRTIO_INPUT_KEYBOARD);
	driver_init(true);
	CHECK_EQ(console_leds(con), 0);
	CHECK_EQ(status_send(EV_LED, LED_CAPSL, 1, 8), 0);
	CHECK_EQ(console_leds(con), CONSOLE_LED_CAPS);
	status_send(EV_LED, LED_NUML, 1, 8);
	status_send(EV_LED, LED_SCROLLL, 1, 8);
	CHECK_EQ(console_leds(con), CONSOLE_LED_CAPS | CONSOLE_LED_NUM | CONSOLE_LED_SCROLL);
	status_send(EV_LED, LED_CAPSL, 0, 8);
	status_send(EV_REP, REP_DELAY, 250, 8);
	status_send(EV_LED, LED_KANA, 1, 8);
	CHECK_EQ(console_leds(con), CONSOLE_LED_NUM | CONSOLE_LED_SCROLL);
	CHECK_EQ(status_send(EV_LED, LED_NUML, 0, 7), 0);	/* short */
	CHECK_EQ(console_leds(con), CONSOLE_LED_NUM | CONSOLE_LED_SCROLL);
	CHECK_EQ(stats().status, 6);
	CHECK(host_irqs.msi[2] > 0);
	CHECK(!(vpci_status(&vp) & VIRTIO_CONFIG_S_NEEDS_RESET));
	/* A reset forgets them. */
	driver_init(true);
	CHECK_EQ(console_leds(con), 0);
	destroy_device();

	/* The tablet has none. */
	create_device(VIRTIO_INPUT_TABLET);
	driver_init(true);
	status_send(EV_LED, LED_CAPSL, 1, 8);
	CHECK(virtio_tablet_input_ops.leds == NULL);
	CHECK_EQ(console_leds(con), 0);
	CHECK_EQ(stats().status, 1);
	destroy_device();
}

/* Chains the spec does not allow break their queue (NEEDS_RESET), and a
 * reset brings the device back. */
static void test_hostile_chains(void)
{
	struct ev e[8];
	uint64_t gpa;

	create_device(VIRTIO_INPUT_KEYBOARD);
	/* An eventq buffer the device may only read. */
	driver_init(false);
	pthread_mutex_lock(&lock);
	gpa = vdrv_alloc(&evd, 8, 8);
	vdrv_add(&evd, &(struct vbuf){ gpa, 8, false }, 1, false);
	pthread_mutex_unlock(&lock);
	vpci_kick(&vp, VIRTIO_INPUT_EVENTQ);
	console_key(con, KEY_Q, true);	/* pops it */
	CHECK(vpci_status(&vp) & VIRTIO_CONFIG_S_NEEDS_RESET);
	CHECK_EQ(ev_take(e, 8), 0);
	CHECK(!strcmp(console_keyboard(con), "ps2"));

	/* An eventq buffer of 4 bytes. */
	driver_init(false);
	pthread_mutex_lock(&lock);
	gpa = vdrv_alloc(&evd, 8, 8);
	vdrv_add(&evd, &(struct vbuf){ gpa, 4, true }, 1, false);
	pthread_mutex_unlock(&lock);
	console_key(con, KEY_Q, true);
	CHECK(vpci_status(&vp) & VIRTIO_CONFIG_S_NEEDS_RESET);

	/* A statusq chain with a writable buffer. */
	driver_init(false);
	pthread_mutex_lock(&lock);
	gpa = vdrv_alloc(&std, 16, 8);
	vdrv_add(&std, (struct vbuf[]){ { gpa, 8, false }, { gpa + 8, 8, true } },
		 2, false);
	pthread_mutex_unlock(&lock);
	vpci_kick(&vp, VIRTIO_INPUT_STATUSQ);
	CHECK(vpci_status(&vp) & VIRTIO_CONFIG_S_NEEDS_RESET);

	/* A descriptor loop and a buffer outside RAM (virtqueue.c's
	 * checks), on each queue. */
	driver_init(false);
	pthread_mutex_lock(&lock);
	vdrv_write_desc(&std, std.desc, 0, 0x1000, 8, VIRTQ_DESC_F_NEXT, 0);
	vdrv_publish(&std, 0);
	pthread_mutex_unlock(&lock);
	vpci_kick(&vp, VIRTIO_INPUT_STATUSQ);
	CHECK(vpci_status(&vp) & VIRTIO_CONFIG_S_NEEDS_RESET);
	driver_init(false);
	pthread_mutex_lock(&lock);
	vdrv_write_desc(&evd, evd.desc, 0, RAM_SIZE - 4, 8, VIRTQ_DESC_F_WRITE, 0);
	vdrv_publish(&evd, 0);
	pthread_mutex_unlock(&lock);
	console_key(con, KEY_Q, true);
	CHECK(vpci_status(&vp) & VIRTIO_CONFIG_S_NEEDS_RESET);

	/* A driver that starts over gets a working device. */
	driver_init(false);
	ev_post(4, false, false);
	console_key(con, KEY_Q, true);
	CHECK_EQ(ev_take(e, 8), 2);
	CHECK(ev_is(&e[0], EV_KEY, KEY_Q, 1));
	destroy_device();
}

/* Replay @n events onto a key state (KEY_CNT bits); CHECK that each
 * report ends in SYN_REPORT.  Returns the number of reports. */
static unsigned replay(const struct ev *e, unsigned n, uint8_t *down,
		       unsigned *x, unsigned *y)
{
	unsigned reports = 0;

	for (unsigned i = 0; i < n; i++) {
		if (e[i].type == EV_KEY) {
			if (e[i].value)
				down[e[i].code / 8] |= (uint8_t)(1 << e[i].code % 8);
			else
				down[e[i].code / 8] &= (uint8_t)~(1 << e[i].code % 8);
		} else if (e[i].type == EV_ABS) {
			*(e[i].code == ABS_X ? x : y) = e[i].value;
		} else if (e[i].type == EV_SYN) {
			reports++;
		}
	}
	CHECK(n == 0 || e[n - 1].type == EV_SYN);
	return reports;
}

/* Take everything the device has waiting, @per buffers at a time. */
static unsigned drain(struct ev *out, unsigned cap, unsigned per)
{
	unsigned n = 0;

	for (int i = 0; i < 100 && pending(); i++) {
		ev_post(per, false, false);
		n += ev_take(out + n, cap - n);
	}
	return n + ev_take(out + n, cap - n);
}

/* A guest that takes no events: the queue stays bounded, whole reports
 * are dropped oldest first (never the one begun), and the guest still
 * ends with the host's state. */
static void test_overflow(void)
{
	static struct ev e[4096];
	uint8_t down[KEY_CNT / 8] = { 0 };
	unsigned n, reports, waiting, x = 0, y = 0;
	struct virtio_input_stats st;

	create_device(VIRTIO_INPUT_KEYBOARD);
	driver_init(true);
	/* Shift goes down (its report waits), then 300 taps of A: the
	 * queue holds at most VIRTIO_INPUT_PENDING_MAX events. */
	console_key(con, KEY_LEFTSHIFT, true);
	for (unsigned i = 0; i < 300; i++) {
		console_key(con, KEY_A, true);
		console_key(con, KEY_A, false);
		CHECK(pending() <= VIRTIO_INPUT_PENDING_MAX);
	}
	console_key(con, KEY_B, true);
	st = stats();
	CHECK(st.dropped > 0);
	waiting = pending();
	CHECK(waiting > VIRTIO_INPUT_PENDING_MAX - 8);
	n = drain(e, 4096, 5);
	CHECK_EQ(n, waiting);
	reports = replay(e, n, down, &x, &y);
	CHECK(reports >= n / 3 && reports <= n / 2);
	/* Shift's press was dropped; it is resent with a later report, so
	 * the guest ends with Shift and B down, A up. */
	CHECK(down[KEY_LEFTSHIFT / 8] >> (KEY_LEFTSHIFT % 8) & 1);
	CHECK(down[KEY_B / 8] >> (KEY_B % 8) & 1);
	CHECK(!(down[KEY_A / 8] >> (KEY_A % 8) & 1));
	/* The newest made it: B's press last, A's release before it. */
	CHECK(ev_is(&e[n - 2], EV_KEY, KEY_B, 1));
	for (unsigned i = n - 2; i-- > 0;) {
		if (e[i].type == EV_KEY && e[i].code == KEY_A) {
			CHECK_EQ(e[i].value, 0);
			break;
		}
	}
	destroy_device();

	/* A report begun is never dropped: one buffer takes ABS_X of a
	 * tablet report; then the queue overflows. */
	create_device(VIRTIO_INPUT_TABLET);
	driver_init(false);
	ev_post(1, false, false);
	console_mouse_abs(con, 10, 20, 0, CONSOLE_BTN_LEFT);
	CHECK_EQ(ev_take(e, 8), 1);
	CHECK(ev_is(&e[0], EV_ABS, ABS_X, console_abs_scale(10, 640, CONSOLE_ABS_MAX)));
	for (unsigned i = 0; i < 200; i++)
		console_mouse_abs(con, 11 + i % 600, 20, 0, (i & 1) ? CONSOLE_BTN_LEFT : 0);
	CHECK(pending() <= VIRTIO_INPUT_PENDING_MAX);
	CHECK(stats().dropped > 0);
	n = drain(e, 4096, 7);
	/* The rest of the report begun comes first. */
	CHECK(ev_is(&e[0], EV_ABS, ABS_Y, console_abs_scale(20, 480, CONSOLE_ABS_MAX)));
	CHECK(ev_is(&e[1], EV_KEY, BTN_LEFT, 1));
	CHECK(ev_is(&e[2], EV_SYN, SYN_REPORT, 0));
	memset(down, 0, sizeof(down));
	replay(e, n, down, &x, &y);
	/* The last position and button state, whatever was dropped. */
	CHECK_EQ(x, console_abs_scale(11 + 199 % 600, 640, CONSOLE_ABS_MAX));
	CHECK(down[BTN_LEFT / 8] >> (BTN_LEFT % 8) & 1);
	destroy_device();

	/* A reset drops what waits. */
	create_device(VIRTIO_INPUT_KEYBOARD);
	driver_init(false);
	console_key(con, KEY_A, true);
	CHECK_EQ(pending(), 2);
	vpci_set_status(&vp, 0);
	CHECK_EQ(pending(), 0);
	destroy_device();
}

static GVariant *save_raw(void)
{
	GVariant *s = table_ops()->save(vi);

	return s ? g_variant_ref_sink(s) : NULL;
}

static void refuse(GVariant *bad, const char *prefix)
{
	state_refused(table_ops(), vi, 1, bad, prefix);
}

/* Save with events waiting, LEDs set and a config selector chosen; load
 * into a new device (saves the same); the events then reach the guest. */
static void test_save_load(void)
{
	uint8_t keys[KEY_CNT / 8] = { 0 };
	struct ev e[16];
	GVariant *s1, *s2, *t;
	char err[256] = "";
	int r;

	CHECK(!strcmp(VIRTIO_INPUT_STATE_TYPE,
		      "(" VIRTIO_PCI_STATE_TYPE "yyybuuayaya(qqu)b)"));
	create_device(VIRTIO_INPUT_KEYBOARD);
	driver_init(true);
	status_send(EV_LED, LED_NUML, 1, 8);
	ev_post(1, false, false);
	console_key(con, KEY_X, true);	/* half delivered */
	CHECK_EQ(ev_take(e, 16), 1);
	console_key(con, KEY_Y, true);
	cfg_select(VIRTIO_INPUT_CFG_EV_BITS, EV_LED, NULL);
	CHECK_EQ(pending(), 3);

	console_remove_input(con, dev_ops(), vi);
	pthread_mutex_lock(&lock);
	s1 = save_raw();
	CHECK(s1 && g_variant_is_of_type(s1, G_VARIANT_TYPE(VIRTIO_INPUT_STATE_TYPE)));
	virtio_input_free(vi);
	vi = new_device_raw();
	r = virtio_keyboard_device_ops.load(vi, 1, s1, err, sizeof(err));
	CHECK_EQ(r, 0);
	if (r)
		fprintf(stderr, "  (%s)\n", err);
	s2 = save_raw();
	CHECK(s2 && g_variant_equal(s1, s2));
	pthread_mutex_unlock(&lock);
	CHECK_EQ(console_add_input(con, dev_ops(), vi, &lock), 0);

	CHECK_EQ(vpci_status(&vp), 0x0f);
	CHECK_EQ(console_leds(con), CONSOLE_LED_NUM);
	CHECK_EQ(vpci_rd(&vp, VIRTIO_PCI_DEVICE_OFF + VIRTIO_INPUT_CFG_SIZE, 1), 1);
	CHECK_EQ(pending(), 3);
	ev_post(8, false, false);
	CHECK_EQ(ev_take(e, 16), 3);
	CHECK(ev_is(&e[0], EV_SYN, SYN_REPORT, 0));
	CHECK(ev_is(&e[1], EV_KEY, KEY_Y, 1));
	CHECK(ev_is(&e[2], EV_SYN, SYN_REPORT, 0));
	/* The held keys came along: X's release is sent. */
	console_key(con, KEY_X, false);
	CHECK_EQ(ev_take(e, 16), 2);
	CHECK(ev_is(&e[0], EV_KEY, KEY_X, 0));

	/* Refused, the device unchanged. */
	pthread_mutex_lock(&lock);
	state_refused(table_ops(), vi, 1, g_variant_new("(u)", 1),
		      "virtio-keyboard: state is of type");
	state_refused(table_ops(), vi, 2, g_variant_ref(s1),
		      "virtio-keyboard: state version 2 not supported");
	refuse(state_with(s1, g_variant_new_byte(0x08), 1, 3),
	       "virtio-keyboard: LEDs 0x8");
	refuse(state_with(s1, g_variant_new_boolean(TRUE), 1, 4),
	       "virtio-keyboard: position");
	refuse(state_with(s1, g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, keys, 95, 1), 1, 7),
	       "virtio-keyboard: held bitmap of 95 bytes");
	keys[BTN_LEFT / 8] = 1 << (BTN_LEFT % 8);
	refuse(state_with(s1, g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, keys, 96, 1), 1, 8),
	       "virtio-keyboard: resent key 272");
	t = g_variant_new_parsed("[(@q 1, @q 30, @u 2), (0, 0, 0)]");
	refuse(state_with(s1, t, 1, 9), "virtio-keyboard: pending event 0");
	t = g_variant_new_parsed("[(@q 1, @q 30, @u 1)]");
	refuse(state_with(s1, t, 1, 9), "virtio-keyboard: pending events end inside");
	t = g_variant_new_parsed("[(@q 3, @q 0, @u 1), (0, 0, 0)]");
	refuse(state_with(s1, t, 1, 9), "virtio-keyboard: pending event 0");
	t = g_variant_new_parsed("@a(qqu) []");
	refuse(state_with(s1, t, 1, 9), "virtio-keyboard: 0 events pending, a report begun");
	refuse(state_with(s1, g_variant_new_uint16(3), 4, 0, 10, 0, 0),
	       "virtio-keyboard: queue 0 size 3");
	pthread_mutex_unlock(&lock);
	g_variant_unref(s1);
	if (s2)
		g_variant_unref(s2);
	destroy_device();

	/* A tablet's position must be in range. */
	create_device(VIRTIO_INPUT_TABLET);
	driver_init(false);
	ev_post(8, false, false);
	console_mouse_abs(con, 1, 2, 0, CONSOLE_BTN_RIGHT);
	pthread_mutex_lock(&lock);
	s1 = save_raw();
	refuse(state_with(s1, g_variant_new_uint32(CONSOLE_ABS_MAX + 1), 1, 5),
	       "virtio-tablet: position 32768");
	refuse(state_with(s1, g_variant_new_byte(CONSOLE_LED_NUM), 1, 3),
	       "virtio-tablet: LEDs 0x2");
	t = g_variant_new_parsed("[(@q 3, @q 0, @u 32768), (0, 0, 0)]");
	refuse(state_with(s1, t, 1, 9), "virtio-tablet: pending event 0");
	t = g_variant_new_parsed("[(@q 2, @q 8, @u 4294967295), (0, 0, 0)]");
	s2 = state_with(s1, t, 1, 9);
	CHECK_EQ(virtio_tablet_device_ops.load(vi, 1, s2, err, sizeof(err)), 0);
	pthread_mutex_unlock(&lock);
	g_variant_unref(s1);
	g_variant_unref(s2);
	destroy_device();
}

/* What a pointer report costs the host, from console_mouse_abs() to the
 * event in the guest's buffers with the interrupt sent (the part of the
 * pointer's latency after the window's frame tick; printed, not
 * checked: it depends on the machine). */
static void test_report_cost(void)
{
	struct timespec t0, t1;
	struct ev e[64];
	const unsigned reports = 20000;
	unsigned got = 0, avail = 0;
	double ns;

	create_device(VIRTIO_INPUT_TABLET);
	driver_init(true);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned i = 0; i < reports; i++) {
		unsigned n;

		if (avail < 8) {	/* the ring holds 64 */
			ev_post(64 - avail, false, false);
			avail = 64;
		}
		console_mouse_abs(con, i % 640, (i / 640) % 480, 0, 0);
		n = ev_take(e, 64);
		avail -= n;
		got += n;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
	CHECK_EQ(pending(), 0);
	CHECK(got >= 2 * reports);
	printf("  %u pointer reports (%u events): %.2f us each, buffer posting and reading included\n",
	       reports, got, ns / reports / 1000);
	destroy_device();
}

static void test_bad_config(void)
{
	struct virtio_input_config c = { .pci = host, .devfn = DEVFN, .mem = &mem,
					 .kind = 7 };
	char err[256] = "";

	pthread_mutex_lock(&lock);
	CHECK(virtio_input_new(&c, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "incomplete") != NULL);
	pthread_mutex_unlock(&lock);
	create_device(VIRTIO_INPUT_TABLET);
	c.kind = VIRTIO_INPUT_KEYBOARD;
	pthread_mutex_lock(&lock);
	CHECK(virtio_input_new(&c, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "slot in use") != NULL);
	pthread_mutex_unlock(&lock);
	destroy_device();
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
	RUN_TEST(test_config_space);
	RUN_TEST(test_active);
	RUN_TEST(test_tablet_events);
	RUN_TEST(test_keyboard_events);
	RUN_TEST(test_leds);
	RUN_TEST(test_hostile_chains);
	RUN_TEST(test_overflow);
	RUN_TEST(test_save_load);
	RUN_TEST(test_report_cost);
	RUN_TEST(test_bad_config);

	pci_host_free(host);
	bus_free(mmio);
	bus_free(pio);
	guest_mem_free(&mem);
	return check_finish();
}
