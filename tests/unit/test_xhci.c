/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_xhci.c - the xHCI controller driven as a driver drives
 * it (xHCI 1.2 §4.2 initialisation: DCBAA, command ring, a two-segment
 * event ring, MSI-X), with the USB HID tablet and keyboard on its root
 * ports: port reset, Enable Slot, Address Device, GET_DESCRIPTOR through
 * Setup/Data/Status TRBs, SET_CONFIGURATION, Configure Endpoint, interrupt
 * IN reports after console input; hostile rings and contexts (outside
 * RAM, Link TRB loops, oversized TDs, bad contexts, doorbells for disabled
 * slots); save and load into a new controller.
 */
#include <endian.h>
#include <linux/input-event-codes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "statetest.h"

#include "bus.h"
#include "devices/pci.h"
#include "display/console.h"
#include "log.h"
#include "mem.h"
#include "usb/hid.h"
#include "usb/xhci.h"

#define RAM_SIZE	(16u << 20)
#define DEVFN		(0x18 << 3)
#define BAR_ADDR	0xfe000000ull
#define MSIX_ADDR	0xfe100000ull
#define DCBAA		0x210000ull
#define CMD_RING	0x211000ull	/* 32 TRBs, the last a Link */
#define ERST		0x212000ull
#define EV_SEG0		0x213000ull	/* 16 TRBs */
#define EV_SEG1		0x214000ull	/* 16 TRBs */
#define OUT_CTX(s)	(0x220000ull + 0x1000ull * (s))
#define IN_CTX		0x240000ull
#define EP0_RING(s)	(0x250000ull + 0x1000ull * (s))
#define EP1_RING(s)	(0x270000ull + 0x1000ull * (s))
#define DATA		0x290000ull
#define CMD_TRBS	32
#define MSI_DATA	0x41

static struct guest_mem mem;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct bus *pio, *mmio;
static struct pci_host *host;
static struct xhci *xc;
static struct usb_hid tablet, kbd;
static struct console *con;
static unsigned msi_count;

static void set_pirq(void *o, unsigned p, int l) { (void)o; (void)p; (void)l; }

static int send_msi(void *opaque, uint64_t addr, uint32_t data)
{
	(void)opaque;
	if (addr == 0xfee00000ull && data == MSI_DATA)
		msi_count++;
	return 0;
}

static const struct pci_host_ops host_ops = { set_pirq, send_msi };

static uint32_t rd(uint64_t off)
{
	uint32_t v;

	pthread_mutex_lock(&lock);
	v = (uint32_t)io_read(mmio, BAR_ADDR + off, 4);
	pthread_mutex_unlock(&lock);
	return v;
}

static void wr(uint64_t off, uint64_t v, unsigned size)
{
	pthread_mutex_lock(&lock);
	io_write(mmio, BAR_ADDR + off, v, size);
	pthread_mutex_unlock(&lock);
}

/* ---- the driver's rings ----------------------------------------------- */

struct trb { uint64_t param; uint32_t status, ctl; };

static void put_trb(uint64_t gpa, uint64_t param, uint32_t status,
		    uint32_t ctl)
{
	uint32_t w[4] = { htole32((uint32_t)param),
			  htole32((uint32_t)(param >> 32)), htole32(status),
			  htole32(ctl) };

	CHECK_EQ(guest_mem_write(&mem, gpa, w, 16), 0);
}

static uint64_t cmd_enq;
static bool cmd_cycle;
static uint64_t ev_deq;
static unsigned ev_seg, ev_idx;
static bool ev_cycle;

static void wr32(uint64_t gpa, uint32_t v)
{
	v = htole32(v);
	CHECK_EQ(guest_mem_write(&mem, gpa, &v, 4), 0);
}

static uint32_t rd32(uint64_t gpa)
{
	uint32_t v = 0;

	CHECK_EQ(guest_mem_read(&mem, gpa, &v, 4), 0);
	return le32toh(v);
}

/* The next event, or false when the ring holds none. */
static bool ev_take(struct trb *t)
{
	uint32_t w[4];

	CHECK_EQ(guest_mem_read(&mem, ev_deq, w, 16), 0);
	if (!(le32toh(w[3]) & 1) != !ev_cycle)
		return false;
	t->param = le32toh(w[0]) | (uint64_t)le32toh(w[1]) << 32;
	t->status = le32toh(w[2]);
	t->ctl = le32toh(w[3]);
	if (++ev_idx == 16) {
		ev_idx = 0;
		ev_seg ^= 1;
		if (!ev_seg)
			ev_cycle = !ev_cycle;
	}
	ev_deq = (ev_seg ? EV_SEG1 : EV_SEG0) + 16 * ev_idx;
	wr(XHCI_RT_IR0 + XHCI_IR_ERDP, ev_deq | XHCI_ERDP_EHB, 8);
	return true;
}

static unsigned cc_of(const struct trb *t) { return t->status >> 24; }

static void cmd(uint64_t param, uint32_t status, uint32_t ctl)
{
	put_trb(cmd_enq, param, status, ctl | (cmd_cycle ? TRB_C : 0));
	cmd_enq += 16;
	if (cmd_enq == CMD_RING + 16 * (CMD_TRBS - 1)) {
		put_trb(cmd_enq, CMD_RING, 0,
			TRB_LINK << 10 | TRB_TC | (cmd_cycle ? TRB_C : 0));
		cmd_enq = CMD_RING;
		cmd_cycle = !cmd_cycle;
	}
	wr(XHCI_DB, 0, 4);
}

/* Run a command; its completion event's code (slot ID in *slot). */
static unsigned cmd_run(uint64_t param, uint32_t ctl, unsigned *slot)
{
	uint64_t at = cmd_enq;
	struct trb t;

	cmd(param, 0, ctl);
	CHECK(ev_take(&t));
	CHECK_EQ(t.ctl >> 10 & 0x3f, TRB_CMD_COMPLETION);
	CHECK_EQ(t.param, at);
	if (slot)
		*slot = t.ctl >> 24;
	return cc_of(&t);
}

static void msix_enable(void)
{
	pthread_mutex_lock(&lock);
	io_write(mmio, MSIX_ADDR, 0xfee00000u, 4);
	io_write(mmio, MSIX_ADDR + 4, 0, 4);
	io_write(mmio, MSIX_ADDR + 8, MSI_DATA, 4);
	io_write(mmio, MSIX_ADDR + 12, 0, 4);
	pthread_mutex_unlock(&lock);
	pci_config_write(host, 0, DEVFN, 0x42, 2, 0x8000);
}

static void new_controller(void)
{
	struct xhci_config c = { .pci = host, .devfn = DEVFN, .mem = &mem };
	char err[256] = "";

	pthread_mutex_lock(&lock);
	xc = xhci_new(&c, err, sizeof(err));
	CHECK(xc != NULL);
	if (!xc) {
		fprintf(stderr, "  %s\n", err);
		exit(1);
	}
	usb_hid_init(&tablet, USB_HID_TABLET);
	usb_hid_init(&kbd, USB_HID_KEYBOARD);
	CHECK_EQ(xhci_attach(xc, 1, &tablet.dev), 0);
	CHECK_EQ(xhci_attach(xc, 2, &kbd.dev), 0);
	CHECK_EQ(xhci_attach(xc, 2, &kbd.dev), -EBUSY);
	CHECK_EQ(xhci_attach(xc, 5, &kbd.dev), -EINVAL);	/* USB 3 port */
	pthread_mutex_unlock(&lock);
	pci_config_write(host, 0, DEVFN, PCI_BASE_ADDRESS_0, 4, (uint32_t)BAR_ADDR);
	pci_config_write(host, 0, DEVFN, PCI_BASE_ADDRESS_0 + 4, 4, 0);
	pci_config_write(host, 0, DEVFN, PCI_BASE_ADDRESS_0 + 8, 4, (uint32_t)MSIX_ADDR);
	pci_config_write(host, 0, DEVFN, PCI_COMMAND, 2,
			 PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	con = console_new();
	CHECK_EQ(console_add_input(con, &usb_tablet_input_ops, &tablet, &lock), 0);
	CHECK_EQ(console_add_input(con, &usb_keyboard_input_ops, &kbd, &lock), 0);
}

static void free_controller(void)
{
	console_remove_input(con, &usb_tablet_input_ops, &tablet);
	console_remove_input(con, &usb_keyboard_input_ops, &kbd);
	console_free(con);
	pthread_mutex_lock(&lock);
	xhci_free(xc);
	pthread_mutex_unlock(&lock);
	xc = NULL;
}

/* §4.2: reset, then DCBAA, command ring, event ring, interrupter, run. */
static void driver_start(void)
{
	memset(gpa_to_hva(&mem, 0x200000, 0x100000), 0, 0x100000);
	wr(XHCI_OP_USBCMD, XHCI_CMD_HCRST, 4);
	CHECK(rd(XHCI_OP_USBSTS) & XHCI_STS_HCH);
	wr(XHCI_OP_CONFIG, XHCI_MAX_SLOTS, 4);
	wr(XHCI_OP_DCBAAP, DCBAA, 8);
	cmd_enq = CMD_RING;
	cmd_cycle = true;
	wr(XHCI_OP_CRCR, CMD_RING | XHCI_CRCR_RCS, 8);
	put_trb(ERST, EV_SEG0, 16, 0);
	put_trb(ERST + 16, EV_SEG1, 16, 0);
	ev_deq = EV_SEG0;
	ev_seg = ev_idx = 0;
	ev_cycle = true;
	wr(XHCI_RT_IR0 + XHCI_IR_ERSTSZ, 2, 4);
	wr(XHCI_RT_IR0 + XHCI_IR_ERDP, EV_SEG0, 8);
	wr(XHCI_RT_IR0 + XHCI_IR_ERSTBA, ERST, 8);
	wr(XHCI_RT_IR0 + XHCI_IR_IMAN, XHCI_IMAN_IE, 4);
	msix_enable();
	wr(XHCI_OP_USBCMD, XHCI_CMD_RS | XHCI_CMD_INTE, 4);
	CHECK(!(rd(XHCI_OP_USBSTS) & XHCI_STS_HCH));
}

static void test_registers(void)
{
	new_controller();
	CHECK_EQ(pci_config_read(host, 0, DEVFN, PCI_REVISION_ID, 4) >> 8 & 0xffffff,
		 XHCI_CLASS);
	CHECK_EQ(rd(XHCI_CAP_CAPLENGTH), 0x01000040);
	CHECK_EQ(rd(XHCI_CAP_HCSPARAMS1), 8u << 24 | 1u << 8 | 32);
	/* The protocol capabilities: USB 2 ports 1-4, USB 3 ports 5-8. */
	{
		uint32_t x = (rd(XHCI_CAP_HCCPARAMS1) >> 16) * 4;

		CHECK_EQ(rd(x) & 0xff, 2);
		CHECK_EQ(rd(x) >> 24, 2);
		CHECK_EQ(rd(x + 4), 0x20425355);
		CHECK_EQ(rd(x + 8) & 0xffff, 4 << 8 | 1);
		x += (rd(x) >> 8 & 0xff) * 4;
		CHECK_EQ(rd(x) >> 24, 3);
		CHECK_EQ(rd(x + 8) & 0xffff, 4 << 8 | 5);
	}
	driver_start();
	/* Devices connected, full speed, USB 2 ports not yet enabled. */
	CHECK_EQ(rd(XHCI_OP_PORTSC(1)) & (XHCI_PORT_CCS | XHCI_PORT_PED),
		 XHCI_PORT_CCS);
	CHECK_EQ(rd(XHCI_OP_PORTSC(1)) >> XHCI_PORT_SPEED_SHIFT & 0xf,
		 USB_SPEED_FULL);
	CHECK(rd(XHCI_OP_PORTSC(1)) & XHCI_PORT_CSC);
	CHECK_EQ(rd(XHCI_OP_PORTSC(3)) & XHCI_PORT_CCS, 0);
	/* No Op, wrapping the command ring and both event segments. */
	for (unsigned i = 0; i < 70; i++) {
		unsigned before = msi_count;

		CHECK_EQ(cmd_run(0, TRB_NOOP_CMD << 10, NULL), CC_SUCCESS);
		CHECK(msi_count > before);
	}
	/* Command Abort (a 64-bit write, as Linux's): Command Ring Stopped,
	 * CRR clear, the ring's pointer kept; a doorbell restarts it. */
	{
		struct trb t;

		CHECK(rd(XHCI_OP_CRCR) & XHCI_CRCR_CRR);
		wr(XHCI_OP_CRCR, XHCI_CRCR_CA, 8);
		CHECK(ev_take(&t));
		CHECK_EQ(cc_of(&t), 24);
		CHECK_EQ(t.param, cmd_enq);
		CHECK(!(rd(XHCI_OP_CRCR) & XHCI_CRCR_CRR));
		CHECK_EQ(cmd_run(0, TRB_NOOP_CMD << 10, NULL), CC_SUCCESS);
	}
	free_controller();
}

/* Reset port @p and take its Port Status Change event. */
static void port_reset(unsigned p)
{
	struct trb t;

	wr(XHCI_OP_PORTSC(p), XHCI_PORT_PP | XHCI_PORT_CSC, 4);
	wr(XHCI_OP_PORTSC(p), XHCI_PORT_PP | XHCI_PORT_PR, 4);
	CHECK(ev_take(&t));
	CHECK_EQ(t.ctl >> 10 & 0x3f, TRB_PORT_STATUS_CHANGE);
	CHECK_EQ(t.param >> 24, p);
	CHECK(rd(XHCI_OP_PORTSC(p)) & XHCI_PORT_PED);
	CHECK(rd(XHCI_OP_PORTSC(p)) & XHCI_PORT_PRC);
	wr(XHCI_OP_PORTSC(p), XHCI_PORT_PP | XHCI_PORT_PRC, 4);
	CHECK(!(rd(XHCI_OP_PORTSC(p)) & XHCI_PORT_PRC));
}

/* An input context: add flags, slot context for @port, EP0 with a ring. */
static void input_ctx(uint32_t add, unsigned port, uint64_t ep0_ring)
{
	memset(gpa_to_hva(&mem, IN_CTX, XHCI_IN_CTX_SIZE), 0, XHCI_IN_CTX_SIZE);
	wr32(IN_CTX + 4, add);
	wr32(IN_CTX + 32, 1u << 27);			/* context entries 1 */
	wr32(IN_CTX + 32 + 4, port << 16);
	wr32(IN_CTX + 64 + 4, 64u << 16 | XHCI_EPT_CONTROL << 3 | 3 << 1);
	wr32(IN_CTX + 64 + 8, (uint32_t)ep0_ring | 1);
}

static uint64_t ep0_enq[XHCI_MAX_SLOTS + 1];

/* A control transfer on slot @s: returns the status stage's event code
 * (or the first event's, when it is not a success). */
static void control_post(unsigned s, uint8_t type, uint8_t req,
			 uint16_t val, uint16_t idx, uint16_t len)
{
	uint64_t setup = type | req << 8 | (uint64_t)val << 16 |
			 (uint64_t)idx << 32 | (uint64_t)len << 48;
	bool in = type & 0x80;
	uint64_t e = ep0_enq[s];

	put_trb(e, setup, 8, TRB_SETUP << 10 | TRB_IDT | TRB_C |
		(len ? (in ? 3u : 2u) << 16 : 0));
	e += 16;
	if (len) {
		put_trb(e, DATA, len, TRB_DATA << 10 | TRB_ISP | TRB_C |
			(in ? TRB_DIR_IN : 0));
		e += 16;
	}
	put_trb(e, 0, 0, TRB_STATUS << 10 | TRB_IOC | TRB_C |
		(in && len ? 0 : TRB_DIR_IN));
	e += 16;
	ep0_enq[s] = e;
	wr(XHCI_DB + 4 * s, 1, 4);
}

/* The events of the control TD last posted on slot @s. */
static unsigned control_wait(unsigned s, uint32_t *residual)
{
	struct trb t;

	*residual = 0;
	CHECK(ev_take(&t));
	CHECK_EQ(t.ctl >> 10 & 0x3f, TRB_TRANSFER_EVENT);
	CHECK_EQ(t.ctl >> 24, s);
	CHECK_EQ(t.ctl >> 16 & 0x1f, 1);
	if (cc_of(&t) == CC_SHORT_PACKET) {
		*residual = t.status & 0xffffff;
		CHECK(ev_take(&t));
	}
	return cc_of(&t);
}

static unsigned control(unsigned s, uint8_t type, uint8_t req, uint16_t val,
			uint16_t idx, uint16_t len, uint32_t *residual)
{
	control_post(s, type, req, val, idx, len);
	return control_wait(s, residual);
}

/* Port reset, Enable Slot, Address Device, descriptors, configuration,
 * Configure Endpoint for EP 1 IN: the slot ID. */
static unsigned enumerate(unsigned port, const char *product)
{
	unsigned s, cc;
	uint32_t res;
	uint8_t d[64];

	port_reset(port);
	CHECK_EQ(cmd_run(0, TRB_ENABLE_SLOT << 10, &s), CC_SUCCESS);
	CHECK(s >= 1 && s <= XHCI_MAX_SLOTS);
	uint64_t out = htole64(OUT_CTX(s));
	CHECK_EQ(guest_mem_write(&mem, DCBAA + 8 * s, &out, 8), 0);
	input_ctx(3, port, EP0_RING(s));
	ep0_enq[s] = EP0_RING(s);
	CHECK_EQ(cmd_run(IN_CTX, TRB_ADDRESS_DEVICE << 10 | s << 24, NULL),
		 CC_SUCCESS);
	CHECK_EQ(rd32(OUT_CTX(s) + 12), XHCI_SLOT_ADDRESSED << 27 | s);
	CHECK_EQ(rd32(OUT_CTX(s) + 32) & 7, XHCI_EP_RUNNING);

	/* GET_DESCRIPTOR(device), short: 64 asked, 18 given. */
	cc = control(s, 0x80, USB_REQ_GET_DESCRIPTOR, USB_DT_DEVICE << 8, 0,
		     64, &res);
	CHECK_EQ(cc, CC_SUCCESS);
	CHECK_EQ(res, 64 - 18);
	CHECK_EQ(guest_mem_read(&mem, DATA, d, 18), 0);
	CHECK_EQ(d[0], 18);
	CHECK_EQ(d[1], USB_DT_DEVICE);
	CHECK_EQ(d[7], 64);
	CHECK_EQ(d[8] | d[9] << 8, 0x0627);
	/* The configuration, whole. */
	cc = control(s, 0x80, USB_REQ_GET_DESCRIPTOR, USB_DT_CONFIG << 8, 0,
		     34, &res);
	CHECK_EQ(cc, CC_SUCCESS);
	CHECK_EQ(res, 0);
	CHECK_EQ(guest_mem_read(&mem, DATA, d, 34), 0);
	CHECK_EQ(d[9 + 5], 3);			/* HID */
	CHECK_EQ(d[18 + 9 + 2], 0x81);		/* EP 1 IN */
	/* The report descriptor, as long as the HID descriptor says. */
	{
		unsigned rlen = d[18 + 7] | d[18 + 8] << 8;

		CHECK_EQ(d[18 + 1], 0x21);
		cc = control(s, 0x81, USB_REQ_GET_DESCRIPTOR, 0x2200, 0, 256, &res);
		CHECK_EQ(cc, CC_SUCCESS);
		CHECK_EQ(256 - res, rlen);
		CHECK_EQ(guest_mem_read(&mem, DATA, d, 2), 0);
		CHECK_EQ(d[0] | d[1] << 8, 0x0105);	/* Usage Page (GD) */
	}
	/* The product string. */
	cc = control(s, 0x80, USB_REQ_GET_DESCRIPTOR, USB_DT_STRING << 8 | 2,
		     0x409, 64, &res);
	CHECK_EQ(cc, CC_SUCCESS);
	CHECK_EQ(guest_mem_read(&mem, DATA, d, 64), 0);
	CHECK_EQ(d[0], 2 + 2 * strlen(product));
	for (size_t i = 0; i < strlen(product); i++)
		CHECK_EQ(d[2 + 2 * i], (uint8_t)product[i]);
	/* A request the device refuses stalls and halts EP0. */
	cc = control(s, 0x80, USB_REQ_GET_DESCRIPTOR, 0x7700, 0, 8, &res);
	CHECK_EQ(cc, CC_STALL);
	CHECK_EQ(rd32(OUT_CTX(s) + 32) & 7, XHCI_EP_HALTED);
	CHECK_EQ(cmd_run(0, TRB_RESET_EP << 10 | 1 << 16 | s << 24, NULL),
		 CC_SUCCESS);
	CHECK_EQ(rd32(OUT_CTX(s) + 32) & 7, XHCI_EP_STOPPED);
	CHECK_EQ(control(s, 0x00, USB_REQ_SET_CONFIGURATION, 1, 0, 0, &res),
		 CC_SUCCESS);

	/* Configure Endpoint: EP 1 IN (DCI 3), interrupt, 8 bytes. */
	memset(gpa_to_hva(&mem, IN_CTX, XHCI_IN_CTX_SIZE), 0, XHCI_IN_CTX_SIZE);
	wr32(IN_CTX + 4, 1 | 1u << 3);
	wr32(IN_CTX + 32, 3u << 27);
	wr32(IN_CTX + 32 * 4 + 4, 8u << 16 | XHCI_EPT_INT_IN << 3 | 3 << 1);
	wr32(IN_CTX + 32 * 4 + 8, (uint32_t)EP1_RING(s) | 1);
	CHECK_EQ(cmd_run(IN_CTX, TRB_CONFIGURE_EP << 10 | s << 24, NULL),
		 CC_SUCCESS);
	CHECK_EQ(rd32(OUT_CTX(s) + 12) >> 27, XHCI_SLOT_CONFIGURED);
	CHECK_EQ(rd32(OUT_CTX(s)) >> 27, 3);
	CHECK_EQ(rd32(OUT_CTX(s) + 32 * 3) & 7, XHCI_EP_RUNNING);
	return s;
}

static uint64_t ep1_enq[XHCI_MAX_SLOTS + 1];

/* Queue an 8-byte interrupt IN TD at DATA + 64 * @slot. */
static void int_in(unsigned s)
{
	if (!ep1_enq[s])
		ep1_enq[s] = EP1_RING(s);
	put_trb(ep1_enq[s], DATA + 64 * s, 8,
		TRB_NORMAL << 10 | TRB_ISP | TRB_IOC | TRB_C);
	ep1_enq[s] += 16;
	wr(XHCI_DB + 4 * s, 3, 4);
}

static void take_report(unsigned s, uint8_t *r, unsigned len)
{
	struct trb t;

	CHECK(ev_take(&t));
	CHECK_EQ(t.ctl >> 10 & 0x3f, TRB_TRANSFER_EVENT);
	CHECK_EQ(t.ctl >> 16 & 0x1f, 3);
	CHECK_EQ(t.ctl >> 24, s);
	CHECK_EQ(cc_of(&t), len < 8 ? CC_SHORT_PACKET : CC_SUCCESS);
	CHECK_EQ(t.status & 0xffffff, 8 - len);
	CHECK_EQ(guest_mem_read(&mem, DATA + 64 * s, r, len), 0);
}

static unsigned ts, ks;	/* tablet's and keyboard's slots */

static void test_enumerate_and_reports(void)
{
	struct trb t;
	uint8_t r[8];
	unsigned x, y;

	new_controller();
	driver_start();
	memset(ep1_enq, 0, sizeof(ep1_enq));
	CHECK(console_pointer_abs(con) == NULL);
	CHECK(!strcmp(console_keyboard(con), "ps2"));
	ts = enumerate(1, "USB Tablet");
	ks = enumerate(2, "USB Keyboard");
	CHECK(ts != ks);

	/* The driver polls: the TD waits (NAK) and the tablet is active. */
	int_in(ts);
	CHECK(!ev_take(&t));
	CHECK(!strcmp(console_pointer_abs(con), "usb-tablet"));
	CHECK(console_mouse_abs(con, 100, 200, -1, CONSOLE_BTN_LEFT));
	take_report(ts, r, 6);
	x = console_abs_scale(100, 640, CONSOLE_ABS_MAX);
	y = console_abs_scale(200, 480, CONSOLE_ABS_MAX);
	CHECK_EQ(r[0], 1);
	CHECK_EQ(r[1] | r[2] << 8, x);
	CHECK_EQ(r[3] | r[4] << 8, y);
	CHECK_EQ((int8_t)r[5], 1);		/* away from the user */
	/* Reports queue while no TD waits. */
	console_mouse_abs(con, 639, 479, 0, 0);
	console_mouse_abs(con, 0, 0, 0, CONSOLE_BTN_RIGHT);
	int_in(ts);
	take_report(ts, r, 6);
	CHECK_EQ(r[1] | r[2] << 8, console_abs_scale(639, 640, CONSOLE_ABS_MAX));
	int_in(ts);
	take_report(ts, r, 6);
	CHECK_EQ(r[0], 2);

	/* The keyboard: boot protocol report for A with left shift. */
	CHECK(!strcmp(console_keyboard(con), "usb-keyboard"));
	int_in(ks);
	console_key(con, KEY_LEFTSHIFT, true);
	take_report(ks, r, 8);
	CHECK_EQ(r[0], 0x02);
	int_in(ks);
	console_key(con, KEY_A, true);
	take_report(ks, r, 8);
	CHECK_EQ(r[0], 0x02);
	CHECK_EQ(r[2], 0x04);
	/* SET_REPORT: caps lock LED. */
	{
		uint32_t res;
		uint8_t led = 0x02;

		CHECK_EQ(guest_mem_write(&mem, DATA, &led, 1), 0);
		CHECK_EQ(control(ks, 0x21, 0x09, 0x0200, 0, 1, &res), CC_SUCCESS);
		CHECK_EQ(console_leds(con), CONSOLE_LED_CAPS);
	}

	/* Stop Endpoint: the tablet is no longer driven. */
	int_in(ts);
	CHECK_EQ(cmd_run(0, TRB_STOP_EP << 10 | 3 << 16 | ts << 24, NULL),
		 CC_SUCCESS);
	CHECK_EQ(rd32(OUT_CTX(ts) + 32 * 3) & 7, XHCI_EP_STOPPED);
	CHECK(console_pointer_abs(con) == NULL);
	CHECK_EQ(cmd_run(0, TRB_STOP_EP << 10 | 3 << 16 | ts << 24, NULL),
		 CC_CONTEXT_STATE);
	/* Set TR Dequeue past the cancelled TD, ring: running again. */
	CHECK_EQ(cmd_run(ep1_enq[ts] | 1, TRB_SET_TR_DEQ << 10 | 3 << 16 | ts << 24,
			 NULL), CC_SUCCESS);
	int_in(ts);
	CHECK(!strcmp(console_pointer_abs(con), "usb-tablet"));
	console_mouse_abs(con, 1, 1, 0, 0);
	take_report(ts, r, 6);

	/* Disable Slot; then its doorbells are ignored. */
	CHECK_EQ(cmd_run(0, TRB_DISABLE_SLOT << 10 | ks << 24, NULL), CC_SUCCESS);
	CHECK_EQ(cmd_run(0, TRB_DISABLE_SLOT << 10 | ks << 24, NULL),
		 CC_SLOT_NOT_ENABLED);
	int_in(ks);
	console_key(con, KEY_B, true);
	CHECK(!ev_take(&t));
	CHECK(!(rd(XHCI_OP_USBSTS) & XHCI_STS_HCE));
	free_controller();
}

static void expect_hce(void)
{
	CHECK(rd(XHCI_OP_USBSTS) & XHCI_STS_HCE);
	CHECK(rd(XHCI_OP_USBSTS) & XHCI_STS_HCH);
	/* Only a reset brings it back. */
	wr(XHCI_OP_USBCMD, XHCI_CMD_RS, 4);
	CHECK(rd(XHCI_OP_USBSTS) & XHCI_STS_HCE);
	driver_start();
	CHECK(!(rd(XHCI_OP_USBSTS) & XHCI_STS_HCE));
}

static void test_hostile(void)
{
	struct trb t;
	unsigned s;
	uint32_t res;

	new_controller();
	driver_start();

	/* A command ring outside RAM. */
	wr(XHCI_OP_USBCMD, 0, 4);
	wr(XHCI_OP_CRCR, 0xf0000000ull | 1, 8);
	wr(XHCI_OP_USBCMD, XHCI_CMD_RS, 4);
	wr(XHCI_DB, 0, 4);
	expect_hce();

	/* A command ring of Link TRBs pointing at each other. */
	put_trb(CMD_RING, CMD_RING + 16, 0, TRB_LINK << 10 | TRB_C);
	put_trb(CMD_RING + 16, CMD_RING, 0, TRB_LINK << 10 | TRB_C);
	wr(XHCI_DB, 0, 4);
	expect_hce();

	/* An event ring segment outside RAM, or of a bad size. */
	put_trb(ERST + 16, 0xf0000000ull, 16, 0);
	wr(XHCI_RT_IR0 + XHCI_IR_ERSTBA, ERST, 8);
	CHECK(rd(XHCI_OP_USBSTS) & XHCI_STS_HCE);
	driver_start();
	put_trb(ERST + 16, EV_SEG1, 5000, 0);
	wr(XHCI_RT_IR0 + XHCI_IR_ERSTBA, ERST, 8);
	CHECK(rd(XHCI_OP_USBSTS) & XHCI_STS_HCE);
	driver_start();

	/* Commands for slots out of range or disabled, unknown commands. */
	CHECK_EQ(cmd_run(IN_CTX, TRB_ADDRESS_DEVICE << 10 | 0u << 24, NULL),
		 CC_TRB_ERROR);
	CHECK_EQ(cmd_run(IN_CTX, TRB_ADDRESS_DEVICE << 10 | 200u << 24, NULL),
		 CC_TRB_ERROR);
	CHECK_EQ(cmd_run(IN_CTX, TRB_ADDRESS_DEVICE << 10 | 5u << 24, NULL),
		 CC_SLOT_NOT_ENABLED);
	CHECK_EQ(cmd_run(0, 63u << 10, NULL), CC_TRB_ERROR);
	/* Doorbells for disabled slots, bad targets: nothing. */
	wr(XHCI_DB + 4 * 7, 3, 4);
	wr(XHCI_DB + 4 * 1, 200, 4);
	wr(XHCI_DB + 4 * 300, 1, 4);
	CHECK(!ev_take(&t));

	/* Address Device with bad contexts. */
	CHECK_EQ(cmd_run(0, TRB_ENABLE_SLOT << 10, &s), CC_SUCCESS);
	CHECK_EQ(cmd_run(0xff000000ull, TRB_ADDRESS_DEVICE << 10 | s << 24, NULL),
		 CC_TRB_ERROR);			/* input context not RAM */
	input_ctx(3, 9, EP0_RING(s));		/* no port 9 */
	CHECK_EQ(cmd_run(IN_CTX, TRB_ADDRESS_DEVICE << 10 | s << 24, NULL),
		 CC_TRB_ERROR);
	input_ctx(3, 3, EP0_RING(s));		/* nothing on port 3 */
	{
		uint64_t out = htole64(OUT_CTX(s));

		CHECK_EQ(guest_mem_write(&mem, DCBAA + 8 * s, &out, 8), 0);
	}
	CHECK_EQ(cmd_run(IN_CTX, TRB_ADDRESS_DEVICE << 10 | s << 24, NULL),
		 CC_TRANSACTION);
	input_ctx(3, 1, EP0_RING(s));		/* port 1 not reset yet */
	CHECK_EQ(cmd_run(IN_CTX, TRB_ADDRESS_DEVICE << 10 | s << 24, NULL),
		 CC_TRANSACTION);
	port_reset(1);
	{
		uint64_t out = htole64(0xf0000000ull);	/* output ctx not RAM */

		CHECK_EQ(guest_mem_write(&mem, DCBAA + 8 * s, &out, 8), 0);
		CHECK_EQ(cmd_run(IN_CTX, TRB_ADDRESS_DEVICE << 10 | s << 24, NULL),
			 CC_PARAMETER);
		out = htole64(OUT_CTX(s));
		CHECK_EQ(guest_mem_write(&mem, DCBAA + 8 * s, &out, 8), 0);
	}
	wr32(IN_CTX + 64 + 4, 64u << 16 | XHCI_EPT_BULK_IN << 3);
	CHECK_EQ(cmd_run(IN_CTX, TRB_ADDRESS_DEVICE << 10 | s << 24, NULL),
		 CC_PARAMETER);			/* EP0 not a control EP */
	input_ctx(3, 1, EP0_RING(s));
	ep0_enq[s] = EP0_RING(s);
	CHECK_EQ(cmd_run(IN_CTX, TRB_ADDRESS_DEVICE << 10 | s << 24, NULL),
		 CC_SUCCESS);
	/* Configure Endpoint: an OUT type on an IN DCI, streams. */
	memset(gpa_to_hva(&mem, IN_CTX, XHCI_IN_CTX_SIZE), 0, XHCI_IN_CTX_SIZE);
	wr32(IN_CTX + 4, 1u << 3);
	wr32(IN_CTX + 32 * 4 + 4, 8u << 16 | XHCI_EPT_INT_OUT << 3);
	wr32(IN_CTX + 32 * 4 + 8, (uint32_t)EP1_RING(s) | 1);
	CHECK_EQ(cmd_run(IN_CTX, TRB_CONFIGURE_EP << 10 | s << 24, NULL),
		 CC_PARAMETER);
	wr32(IN_CTX + 32 * 4 + 4, 8u << 16 | XHCI_EPT_INT_IN << 3);
	wr32(IN_CTX + 32 * 4, 5u << 10);
	CHECK_EQ(cmd_run(IN_CTX, TRB_CONFIGURE_EP << 10 | s << 24, NULL),
		 CC_PARAMETER);
	CHECK_EQ(cmd_run(0, TRB_RESET_EP << 10 | 3 << 16 | s << 24, NULL),
		 CC_EP_NOT_ENABLED);
	CHECK_EQ(cmd_run(0, TRB_STOP_EP << 10 | 0 << 16 | s << 24, NULL),
		 CC_TRB_ERROR);

	/* A data stage buffer outside RAM. */
	put_trb(ep0_enq[s], 0x0012000001000680ull, 8,
		TRB_SETUP << 10 | TRB_IDT | TRB_C | 3 << 16);
	put_trb(ep0_enq[s] + 16, 0xf0000000ull, 18,
		TRB_DATA << 10 | TRB_C | TRB_DIR_IN);
	put_trb(ep0_enq[s] + 32, 0, 0, TRB_STATUS << 10 | TRB_IOC | TRB_C);
	ep0_enq[s] += 48;
	wr(XHCI_DB + 4 * s, 1, 4);
	CHECK(ev_take(&t));
	CHECK_EQ(cc_of(&t), CC_DATA_BUFFER);
	/* A Setup TRB without immediate data, or of the wrong length. */
	put_trb(ep0_enq[s], DATA, 8, TRB_SETUP << 10 | TRB_C);
	put_trb(ep0_enq[s] + 16, 0, 0, TRB_STATUS << 10 | TRB_IOC | TRB_C);
	ep0_enq[s] += 32;
	wr(XHCI_DB + 4 * s, 1, 4);
	CHECK(ev_take(&t));
	CHECK_EQ(cc_of(&t), CC_TRB_ERROR);
	/* Still works afterwards. */
	CHECK_EQ(control(s, 0x80, USB_REQ_GET_DESCRIPTOR, USB_DT_DEVICE << 8, 0,
			 18, &res), CC_SUCCESS);

	/* A transfer ring of Link TRBs: TRB Error, the endpoint halts. */
	put_trb(ep0_enq[s], ep0_enq[s] + 16, 0, TRB_LINK << 10 | TRB_C);
	put_trb(ep0_enq[s] + 16, ep0_enq[s], 0, TRB_LINK << 10 | TRB_C);
	wr(XHCI_DB + 4 * s, 1, 4);
	CHECK(ev_take(&t));
	CHECK_EQ(cc_of(&t), CC_TRB_ERROR);
	CHECK_EQ(rd32(OUT_CTX(s) + 32) & 7, XHCI_EP_HALTED);
	CHECK(!(rd(XHCI_OP_USBSTS) & XHCI_STS_HCE));
	/* A TD longer than XHCI_TD_MAX_TRBS: the same. */
	CHECK_EQ(cmd_run(0, TRB_RESET_EP << 10 | 1 << 16 | s << 24, NULL),
		 CC_SUCCESS);
	ep0_enq[s] = EP0_RING(s) + 0x400;
	CHECK_EQ(cmd_run(ep0_enq[s] | 1, TRB_SET_TR_DEQ << 10 | 1 << 16 | s << 24,
			 NULL), CC_SUCCESS);
	for (unsigned i = 0; i < XHCI_TD_MAX_TRBS + 2; i++)
		put_trb(ep0_enq[s] + 16 * i, DATA, 8,
			(i ? TRB_NORMAL : TRB_SETUP) << 10 | TRB_C | TRB_CH |
			(i ? 0 : TRB_IDT));
	wr(XHCI_DB + 4 * s, 1, 4);
	CHECK(ev_take(&t));
	CHECK_EQ(cc_of(&t), CC_TRB_ERROR);
	CHECK_EQ(rd32(OUT_CTX(s) + 32) & 7, XHCI_EP_HALTED);
	/* A transfer ring outside RAM: host controller error. */
	CHECK_EQ(cmd_run(0, TRB_RESET_EP << 10 | 1 << 16 | s << 24, NULL),
		 CC_SUCCESS);
	CHECK_EQ(cmd_run(0xf0000000ull | 1, TRB_SET_TR_DEQ << 10 | 1 << 16 | s << 24,
			 NULL), CC_SUCCESS);
	wr(XHCI_DB + 4 * s, 1, 4);
	expect_hce();
	free_controller();
}

static void test_oversized_td(void)
{
	struct trb t;
	unsigned s;

	new_controller();
	driver_start();
	s = enumerate(1, "USB Tablet");
	/* 4 x 0x1ffff bytes on the interrupt endpoint: more than a TD may. */
	for (unsigned i = 0; i < 4; i++)
		put_trb(EP1_RING(s) + 16 * i, DATA, 0x1ffff,
			TRB_NORMAL << 10 | TRB_C | (i < 3 ? TRB_CH : TRB_IOC));
	wr(XHCI_DB + 4 * s, 3, 4);
	CHECK(ev_take(&t));
	CHECK_EQ(cc_of(&t), CC_TRB_ERROR);
	CHECK(!(rd(XHCI_OP_USBSTS) & XHCI_STS_HCE));
	free_controller();
}

static void test_save_load(void)
{
	GVariant *st;
	char err[256] = "";
	uint8_t r[8];
	struct trb t;

	new_controller();
	driver_start();
	memset(ep1_enq, 0, sizeof(ep1_enq));
	ts = enumerate(1, "USB Tablet");
	int_in(ts);
	console_mouse_abs(con, 5, 5, 0, 0);
	console_mouse_abs(con, 7, 7, 0, 0);	/* one report queued */
	take_report(ts, r, 6);
	pthread_mutex_lock(&lock);
	st = g_variant_ref_sink(xhci_device_ops.save(xc));
	pthread_mutex_unlock(&lock);
	free_controller();

	new_controller();
	pthread_mutex_lock(&lock);
	CHECK_EQ(xhci_device_ops.load(xc, 1, st, err, sizeof(err)), 0);
	pthread_mutex_unlock(&lock);
	if (err[0])
		fprintf(stderr, "  %s\n", err);
	/* Same state: saving again gives the same bytes. */
	pthread_mutex_lock(&lock);
	{
		GVariant *again = g_variant_ref_sink(xhci_device_ops.save(xc));

		CHECK(g_variant_equal(st, again));
		g_variant_unref(again);
	}
	pthread_mutex_unlock(&lock);
	/* The queued report and the running endpoint came along. */
	CHECK(!strcmp(console_pointer_abs(con), "usb-tablet"));
	int_in(ts);
	take_report(ts, r, 6);
	CHECK_EQ(r[1] | r[2] << 8, console_abs_scale(7, 640, CONSOLE_ABS_MAX));
	CHECK(!ev_take(&t));

	/* Bad states are refused and change nothing. */
	pthread_mutex_lock(&lock);
	state_refused(&xhci_device_ops, xc, 1,
		      state_with(st, g_variant_new_uint32(99), 1, 14),
		      "xhci: event ring enqueue");
	state_refused(&xhci_device_ops, xc, 1,
		      state_with(st, g_variant_new_byte(9), 3, 18, 0, 1),
		      "xhci: slot 1");
	state_refused(&xhci_device_ops, xc, 1,
		      state_with(st, g_variant_new_uint32(0), 3, 17, 0, 0),
		      "xhci: port 1");
	state_refused(&xhci_device_ops, xc, 1,
		      state_with(st, g_variant_new_byte(9), 5, 18, 0, 5, 2, 0),
		      "xhci: slot 1 endpoint 3");
	pthread_mutex_unlock(&lock);
	g_variant_unref(st);
	free_controller();
}

/* ---- a bulk loopback device on the usb.h interface ---------------------- */

struct loopdev {
	struct usb_device dev;
	uint8_t data[8192];
	size_t len;
	bool stall;
};

static const uint8_t loop_device_desc[18] = {
	18, USB_DT_DEVICE, 0x00, 0x02, 0xff, 0, 0, 64, 0x34, 0x12, 0x78, 0x56,
	0, 1, 0, 0, 0, 1,
};
static const uint8_t loop_config_desc[32] = {
	9, USB_DT_CONFIG, 32, 0, 1, 1, 0, 0x80, 50,
	9, USB_DT_INTERFACE, 0, 0, 2, 0xff, 0, 0, 0,
	7, USB_DT_ENDPOINT, 0x02, 0x02, 0x00, 0x02, 0,
	7, USB_DT_ENDPOINT, 0x82, 0x02, 0x00, 0x02, 0,
};
static const struct usb_desc loop_desc = {
	loop_device_desc, loop_config_desc, NULL, 0,
};

static void loop_reset(struct usb_device *d) { d->addr = 0; d->config = 0; }

static int loop_control(struct usb_device *d, const struct usb_setup *s,
			uint8_t *data)
{
	return usb_std_control(d, &loop_desc, s, data);
}

static int loop_data(struct usb_device *d, unsigned ep, bool in,
		     uint8_t *buf, size_t len)
{
	struct loopdev *l = (struct loopdev *)d;
	size_t n;

	if (ep != 2 || l->stall)
		return USB_RET_STALL;
	if (!in) {
		n = len < sizeof(l->data) ? len : sizeof(l->data);
		memcpy(l->data, buf, n);
		l->len = n;
		return (int)len;
	}
	if (!l->len)
		return USB_RET_NAK;
	n = l->len < len ? l->len : len;
	memcpy(buf, l->data, n);
	l->len = 0;
	return (int)n;
}

static const struct usb_device_ops loop_ops = {
	.name = "loopback", .reset = loop_reset, .control = loop_control,
	.data = loop_data,
};

static void test_bulk(void)
{
	static struct loopdev loop, loop3;
	struct trb t;
	unsigned s;
	uint32_t res;
	uint8_t pattern[3500], back[4096];
	uint64_t out_ring, in_ring;

	new_controller();
	memset(&loop, 0, sizeof(loop));
	loop.dev.ops = &loop_ops;
	loop.dev.speed = USB_SPEED_HIGH;
	loop3 = loop;
	loop3.dev.speed = USB_SPEED_SUPER;
	pthread_mutex_lock(&lock);
	CHECK_EQ(xhci_attach(xc, 5, &loop.dev), -EINVAL);	/* USB 2 device */
	CHECK_EQ(xhci_attach(xc, 3, &loop.dev), 0);
	CHECK_EQ(xhci_attach(xc, 5, &loop3.dev), 0);
	pthread_mutex_unlock(&lock);
	driver_start();
	/* A USB 3 port's link trains by itself: enabled, U0, SuperSpeed. */
	CHECK(rd(XHCI_OP_PORTSC(5)) & XHCI_PORT_PED);
	CHECK_EQ(rd(XHCI_OP_PORTSC(5)) >> XHCI_PORT_SPEED_SHIFT & 0xf,
		 USB_SPEED_SUPER);
	CHECK_EQ(rd(XHCI_OP_PORTSC(5)) >> XHCI_PORT_PLS_SHIFT & 0xf, XHCI_PLS_U0);

	port_reset(3);
	CHECK_EQ(cmd_run(0, TRB_ENABLE_SLOT << 10, &s), CC_SUCCESS);
	{
		uint64_t o = htole64(OUT_CTX(s));

		CHECK_EQ(guest_mem_write(&mem, DCBAA + 8 * s, &o, 8), 0);
	}
	input_ctx(3, 3, EP0_RING(s));
	ep0_enq[s] = EP0_RING(s);
	CHECK_EQ(cmd_run(IN_CTX, TRB_ADDRESS_DEVICE << 10 | s << 24, NULL),
		 CC_SUCCESS);
	CHECK_EQ(loop.dev.addr, s);
	CHECK_EQ(control(s, 0x00, USB_REQ_SET_CONFIGURATION, 1, 0, 0, &res),
		 CC_SUCCESS);
	CHECK_EQ(loop.dev.config, 1);
	/* EP 2 OUT (DCI 4) and EP 2 IN (DCI 5), bulk, 512 bytes. */
	out_ring = EP1_RING(s);
	in_ring = EP1_RING(s) + 0x800;
	memset(gpa_to_hva(&mem, IN_CTX, XHCI_IN_CTX_SIZE), 0, XHCI_IN_CTX_SIZE);
	wr32(IN_CTX + 4, 1 | 1u << 4 | 1u << 5);
	wr32(IN_CTX + 32, 5u << 27);
	wr32(IN_CTX + 32 * 5 + 4, 512u << 16 | XHCI_EPT_BULK_OUT << 3);
	wr32(IN_CTX + 32 * 5 + 8, (uint32_t)out_ring | 1);
	wr32(IN_CTX + 32 * 6 + 4, 512u << 16 | XHCI_EPT_BULK_IN << 3);
	wr32(IN_CTX + 32 * 6 + 8, (uint32_t)in_ring | 1);
	CHECK_EQ(cmd_run(IN_CTX, TRB_CONFIGURE_EP << 10 | s << 24, NULL),
		 CC_SUCCESS);

	/* OUT: 3500 bytes over three chained TRBs, IOC on the last. */
	for (unsigned i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i * 7 + 3);
	CHECK_EQ(guest_mem_write(&mem, DATA, pattern, 1000), 0);
	CHECK_EQ(guest_mem_write(&mem, DATA + 0x1000, pattern + 1000, 2000), 0);
	CHECK_EQ(guest_mem_write(&mem, DATA + 0x2000, pattern + 3000, 500), 0);
	put_trb(out_ring, DATA, 1000, TRB_NORMAL << 10 | TRB_C | TRB_CH);
	put_trb(out_ring + 16, DATA + 0x1000, 2000, TRB_NORMAL << 10 | TRB_C | TRB_CH);
	put_trb(out_ring + 32, DATA + 0x2000, 500, TRB_NORMAL << 10 | TRB_C | TRB_IOC);
	wr(XHCI_DB + 4 * s, 4, 4);
	CHECK(ev_take(&t));
	CHECK_EQ(cc_of(&t), CC_SUCCESS);
	CHECK_EQ(t.param, out_ring + 32);
	CHECK_EQ(t.ctl >> 16 & 0x1f, 4);
	CHECK_EQ(loop.len, 3500);
	CHECK(!memcmp(loop.data, pattern, 3500));

	/* IN: two 2048-byte TRBs (ISP) and an Event Data TRB: a short
	 * packet in the second, then the Event Data event with the count. */
	put_trb(in_ring, DATA + 0x4000, 2048, TRB_NORMAL << 10 | TRB_C | TRB_CH | TRB_ISP);
	put_trb(in_ring + 16, DATA + 0x4800, 2048, TRB_NORMAL << 10 | TRB_C | TRB_CH | TRB_ISP);
	put_trb(in_ring + 32, 0xabcdef12345ull, 0, TRB_EVENT_DATA << 10 | TRB_C | TRB_IOC);
	wr(XHCI_DB + 4 * s, 5, 4);
	CHECK(ev_take(&t));
	CHECK_EQ(cc_of(&t), CC_SHORT_PACKET);
	CHECK_EQ(t.param, in_ring + 16);
	CHECK_EQ(t.status & 0xffffff, 4096 - 3500);
	CHECK(ev_take(&t));
	CHECK_EQ(t.param, 0xabcdef12345ull);
	CHECK(t.ctl & (1u << 2));		/* ED */
	CHECK_EQ(t.status & 0xffffff, 3500);
	CHECK_EQ(guest_mem_read(&mem, DATA + 0x4000, back, 3500), 0);
	CHECK(!memcmp(back, pattern, 3500));

	/* Nothing to read: the TD waits (NAK); data arrives: it completes. */
	put_trb(in_ring + 48, DATA + 0x4000, 512, TRB_NORMAL << 10 | TRB_C | TRB_IOC);
	wr(XHCI_DB + 4 * s, 5, 4);
	CHECK(!ev_take(&t));
	loop.data[0] = 0x5a;
	loop.len = 1;
	pthread_mutex_lock(&lock);
	usb_device_wakeup(&loop.dev, 2);
	pthread_mutex_unlock(&lock);
	CHECK(ev_take(&t));
	CHECK_EQ(cc_of(&t), CC_SHORT_PACKET);
	CHECK_EQ(t.status & 0xffffff, 511);

	/* A stall halts the endpoint; Reset Endpoint, Set TR Dequeue. */
	loop.stall = true;
	put_trb(out_ring + 48, DATA, 10, TRB_NORMAL << 10 | TRB_C | TRB_IOC);
	wr(XHCI_DB + 4 * s, 4, 4);
	CHECK(ev_take(&t));
	CHECK_EQ(cc_of(&t), CC_STALL);
	CHECK_EQ(rd32(OUT_CTX(s) + 32 * 4) & 7, XHCI_EP_HALTED);
	wr(XHCI_DB + 4 * s, 4, 4);		/* a halted endpoint stays */
	CHECK(!ev_take(&t));
	loop.stall = false;
	CHECK_EQ(cmd_run(0, TRB_RESET_EP << 10 | 4 << 16 | s << 24, NULL),
		 CC_SUCCESS);
	CHECK_EQ(cmd_run((out_ring + 64) | 1, TRB_SET_TR_DEQ << 10 | 4 << 16 | s << 24,
			 NULL), CC_SUCCESS);
	CHECK_EQ(rd32(OUT_CTX(s) + 32 * 4 + 8), (uint32_t)(out_ring + 64) | 1);
	put_trb(out_ring + 64, DATA, 10, TRB_NORMAL << 10 | TRB_C | TRB_IOC);
	wr(XHCI_DB + 4 * s, 4, 4);
	CHECK(ev_take(&t));
	CHECK_EQ(cc_of(&t), CC_SUCCESS);
	CHECK_EQ(loop.len, 10);

	/* Evaluate Context: EP0's max packet size; a zero one is refused. */
	memset(gpa_to_hva(&mem, IN_CTX, XHCI_IN_CTX_SIZE), 0, XHCI_IN_CTX_SIZE);
	wr32(IN_CTX + 4, 2);
	wr32(IN_CTX + 64 + 4, 8u << 16 | XHCI_EPT_CONTROL << 3);
	CHECK_EQ(cmd_run(IN_CTX, TRB_EVALUATE_CTX << 10 | s << 24, NULL),
		 CC_SUCCESS);
	CHECK_EQ(rd32(OUT_CTX(s) + 32 + 4) >> 16, 8);
	wr32(IN_CTX + 64 + 4, XHCI_EPT_CONTROL << 3);
	CHECK_EQ(cmd_run(IN_CTX, TRB_EVALUATE_CTX << 10 | s << 24, NULL),
		 CC_PARAMETER);
	CHECK_EQ(rd32(OUT_CTX(s) + 32 + 4) >> 16, 8);

	/* Unplugged: a port change, then transfers fail, not hang. */
	pthread_mutex_lock(&lock);
	xhci_detach(xc, 3);
	pthread_mutex_unlock(&lock);
	CHECK(ev_take(&t));
	CHECK_EQ(t.ctl >> 10 & 0x3f, TRB_PORT_STATUS_CHANGE);
	CHECK(!(rd(XHCI_OP_PORTSC(3)) & XHCI_PORT_CCS));
	CHECK(rd(XHCI_OP_PORTSC(3)) & XHCI_PORT_CSC);
	put_trb(out_ring + 80, DATA, 10, TRB_NORMAL << 10 | TRB_C | TRB_IOC);
	wr(XHCI_DB + 4 * s, 4, 4);
	CHECK(ev_take(&t));
	CHECK_EQ(cc_of(&t), CC_TRANSACTION);
	/* Reset Device: back to Default, address 0, the bulk EPs gone. */
	CHECK_EQ(cmd_run(0, TRB_RESET_DEVICE << 10 | s << 24, NULL), CC_SUCCESS);
	CHECK_EQ(rd32(OUT_CTX(s) + 12), XHCI_SLOT_DEFAULT << 27);
	wr(XHCI_DB + 4 * s, 4, 4);		/* disabled: ignored */
	CHECK(!ev_take(&t));
	CHECK_EQ(cmd_run(0, TRB_DISABLE_SLOT << 10 | s << 24, NULL), CC_SUCCESS);
	pthread_mutex_lock(&lock);
	xhci_detach(xc, 5);
	pthread_mutex_unlock(&lock);
	free_controller();
}

/* ---- a device that answers later (usb_device_ops.submit) ---------------- */

struct asyncdev {
	struct usb_device dev;
	struct usb_xfer *cur[32];	/* by ep * 2 + in; control at 0 */
	unsigned submits, cancels;
};

static unsigned xfer_idx(const struct usb_xfer *x)
{
	return x->ep ? x->ep * 2 + x->in : 0;
}

static int async_submit(struct usb_device *d, struct usb_xfer *x)
{
	struct asyncdev *a = (struct asyncdev *)d;

	CHECK(a->cur[xfer_idx(x)] == NULL);	/* one per endpoint */
	a->cur[xfer_idx(x)] = x;
	a->submits++;
	return USB_RET_ASYNC;
}

static void async_cancel(struct usb_device *d, struct usb_xfer *x)
{
	struct asyncdev *a = (struct asyncdev *)d;

	CHECK(a->cur[xfer_idx(x)] == x);
	a->cur[xfer_idx(x)] = NULL;
	a->cancels++;
}

static const struct usb_device_ops async_ops = {
	.name = "async", .reset = loop_reset, .control = loop_control,
	.data = loop_data, .submit = async_submit, .cancel = async_cancel,
};

static struct asyncdev adev;

/* The device finishes its transfer @idx with @result, IN data @d. */
static void async_complete(unsigned idx, int result, const void *d, size_t n)
{
	struct usb_xfer *x = adev.cur[idx];

	CHECK(x != NULL);
	if (!x)
		return;
	pthread_mutex_lock(&lock);
	adev.cur[idx] = NULL;
	if (n)
		memcpy(x->buf, d, n);
	usb_xfer_complete(x, result);
	pthread_mutex_unlock(&lock);
}

/* Port reset, Enable Slot, Address Device for the device on @port. */
static unsigned address(unsigned port)
{
	unsigned s;
	uint64_t o;

	port_reset(port);
	CHECK_EQ(cmd_run(0, TRB_ENABLE_SLOT << 10, &s), CC_SUCCESS);
	o = htole64(OUT_CTX(s));
	CHECK_EQ(guest_mem_write(&mem, DCBAA + 8 * s, &o, 8), 0);
	input_ctx(3, port, EP0_RING(s));
	ep0_enq[s] = EP0_RING(s);
	CHECK_EQ(cmd_run(IN_CTX, TRB_ADDRESS_DEVICE << 10 | s << 24, NULL),
		 CC_SUCCESS);
	return s;
}

static void test_async(void)
{
	struct xhci_stats st;
	struct trb t;
	unsigned s, submits;
	uint32_t res;
	uint8_t d[64];
	uint64_t out_ring, in_ring;

	new_controller();
	memset(&adev, 0, sizeof(adev));
	adev.dev.ops = &async_ops;
	adev.dev.speed = USB_SPEED_HIGH;
	pthread_mutex_lock(&lock);
	CHECK_EQ(xhci_attach(xc, 3, &adev.dev), 0);
	pthread_mutex_unlock(&lock);
	driver_start();
	s = address(3);
	CHECK_EQ(adev.dev.addr, s);		/* SET_ADDRESS: synchronous */
	CHECK_EQ(adev.submits, 0);

	/* GET_DESCRIPTOR goes to submit; no event until it completes, and
	 * another doorbell submits nothing more. */
	control_post(s, 0x80, USB_REQ_GET_DESCRIPTOR, USB_DT_DEVICE << 8, 0, 64);
	CHECK(!ev_take(&t));
	CHECK_EQ(adev.submits, 1);
	CHECK(adev.cur[0] != NULL);
	CHECK_EQ(adev.cur[0]->setup.bRequest, USB_REQ_GET_DESCRIPTOR);
	CHECK_EQ(adev.cur[0]->len, 64);
	CHECK(adev.cur[0]->in);
	wr(XHCI_DB + 4 * s, 1, 4);
	CHECK_EQ(adev.submits, 1);
	CHECK(!ev_take(&t));
	async_complete(0, 18, loop_device_desc, 18);
	CHECK_EQ(control_wait(s, &res), CC_SUCCESS);
	CHECK_EQ(res, 64 - 18);
	CHECK_EQ(guest_mem_read(&mem, DATA, d, 18), 0);
	CHECK(!memcmp(d, loop_device_desc, 18));
	control_post(s, 0x00, USB_REQ_SET_CONFIGURATION, 1, 0, 0);
	CHECK(!ev_take(&t));
	CHECK(!adev.cur[0]->in);
	async_complete(0, 0, NULL, 0);
	CHECK_EQ(control_wait(s, &res), CC_SUCCESS);

	/* Bulk EP 2 OUT (DCI 4) and IN (DCI 5). */
	out_ring = EP1_RING(s);
	in_ring = EP1_RING(s) + 0x800;
	memset(gpa_to_hva(&mem, IN_CTX, XHCI_IN_CTX_SIZE), 0, XHCI_IN_CTX_SIZE);
	wr32(IN_CTX + 4, 1 | 1u << 4 | 1u << 5);
	wr32(IN_CTX + 32, 5u << 27);
	wr32(IN_CTX + 32 * 5 + 4, 512u << 16 | XHCI_EPT_BULK_OUT << 3);
	wr32(IN_CTX + 32 * 5 + 8, (uint32_t)out_ring | 1);
	wr32(IN_CTX + 32 * 6 + 4, 512u << 16 | XHCI_EPT_BULK_IN << 3);
	wr32(IN_CTX + 32 * 6 + 8, (uint32_t)in_ring | 1);
	CHECK_EQ(cmd_run(IN_CTX, TRB_CONFIGURE_EP << 10 | s << 24, NULL),
		 CC_SUCCESS);

	/* Two IN TDs: one in flight; its completion submits the next. */
	put_trb(in_ring, DATA + 0x1000, 512, TRB_NORMAL << 10 | TRB_C | TRB_ISP | TRB_IOC);
	put_trb(in_ring + 16, DATA + 0x2000, 512, TRB_NORMAL << 10 | TRB_C | TRB_ISP | TRB_IOC);
	submits = adev.submits;
	wr(XHCI_DB + 4 * s, 5, 4);
	CHECK_EQ(adev.submits, submits + 1);
	CHECK_EQ(adev.cur[5]->len, 512);
	CHECK(!ev_take(&t));
	memset(d, 0xa5, sizeof(d));
	async_complete(5, 40, d, 40);
	CHECK(ev_take(&t));
	CHECK_EQ(cc_of(&t), CC_SHORT_PACKET);
	CHECK_EQ(t.param, in_ring);
	CHECK_EQ(t.status & 0xffffff, 512 - 40);
	CHECK_EQ(adev.submits, submits + 2);
	CHECK(adev.cur[5] != NULL);
	CHECK(!ev_take(&t));
	CHECK_EQ(guest_mem_read(&mem, DATA + 0x1000, d, 41), 0);
	CHECK_EQ(d[39], 0xa5);

	/* Stop Endpoint with a TD in flight: cancelled, a Stopped event at
	 * it, then the command's; the dequeue pointer stays on the TD and a
	 * doorbell submits it again. */
	cmd(0, 0, TRB_STOP_EP << 10 | 5 << 16 | s << 24);
	CHECK_EQ(adev.cancels, 1);
	CHECK(adev.cur[5] == NULL);
	CHECK(ev_take(&t));
	CHECK_EQ(t.ctl >> 10 & 0x3f, TRB_TRANSFER_EVENT);
	CHECK_EQ(cc_of(&t), CC_STOPPED);
	CHECK_EQ(t.param, in_ring + 16);
	CHECK(ev_take(&t));
	CHECK_EQ(t.ctl >> 10 & 0x3f, TRB_CMD_COMPLETION);
	CHECK_EQ(cc_of(&t), CC_SUCCESS);
	CHECK_EQ(rd32(OUT_CTX(s) + 32 * 5) & 7, XHCI_EP_STOPPED);
	CHECK_EQ(rd32(OUT_CTX(s) + 32 * 5 + 8), (uint32_t)(in_ring + 16) | 1);
	wr(XHCI_DB + 4 * s, 5, 4);
	CHECK_EQ(adev.submits, submits + 3);
	/* An asynchronous stall halts the endpoint. */
	async_complete(5, USB_RET_STALL, NULL, 0);
	CHECK(ev_take(&t));
	CHECK_EQ(cc_of(&t), CC_STALL);
	CHECK_EQ(rd32(OUT_CTX(s) + 32 * 5) & 7, XHCI_EP_HALTED);
	CHECK_EQ(cmd_run(0, TRB_RESET_EP << 10 | 5 << 16 | s << 24, NULL),
		 CC_SUCCESS);
	/* A device gone mid-transfer: Transaction Error, halted. */
	CHECK_EQ(cmd_run((in_ring + 32) | 1, TRB_SET_TR_DEQ << 10 | 5 << 16 | s << 24,
			 NULL), CC_SUCCESS);
	put_trb(in_ring + 32, DATA + 0x1000, 64, TRB_NORMAL << 10 | TRB_C | TRB_IOC);
	wr(XHCI_DB + 4 * s, 5, 4);
	async_complete(5, USB_RET_NODEV, NULL, 0);
	CHECK(ev_take(&t));
	CHECK_EQ(cc_of(&t), CC_TRANSACTION);
	/* A completion the device claims for more than asked is cut. */
	CHECK_EQ(cmd_run(0, TRB_RESET_EP << 10 | 5 << 16 | s << 24, NULL),
		 CC_SUCCESS);
	CHECK_EQ(cmd_run((in_ring + 48) | 1, TRB_SET_TR_DEQ << 10 | 5 << 16 | s << 24,
			 NULL), CC_SUCCESS);
	put_trb(in_ring + 48, DATA + 0x1000, 16, TRB_NORMAL << 10 | TRB_C | TRB_IOC);
	wr(XHCI_DB + 4 * s, 5, 4);
	async_complete(5, 100000, d, 16);
	CHECK(ev_take(&t));
	CHECK_EQ(cc_of(&t), CC_SUCCESS);

	/* OUT: the device sees the guest's bytes in its buffer. */
	CHECK_EQ(guest_mem_write(&mem, DATA, "0123456789", 10), 0);
	put_trb(out_ring, DATA, 10, TRB_NORMAL << 10 | TRB_C | TRB_IOC);
	wr(XHCI_DB + 4 * s, 4, 4);
	CHECK(adev.cur[4] != NULL);
	if (adev.cur[4]) {
		CHECK_EQ(adev.cur[4]->len, 10);
		CHECK(!adev.cur[4]->in);
		CHECK(!memcmp(adev.cur[4]->buf, "0123456789", 10));
	}
	async_complete(4, 10, NULL, 0);
	CHECK(ev_take(&t));
	CHECK_EQ(cc_of(&t), CC_SUCCESS);
	CHECK_EQ(t.param, out_ring);

	/* usb-storage's TDs: 120 KiB over 30 page-sized TRBs go through
	 * whole; more than XHCI_ASYNC_TD_MAX_BYTES is a TRB Error. */
	{
		uint64_t r = out_ring + 16;
		uint8_t *g = gpa_to_hva(&mem, 0x300000, 30 * 4096);

		for (unsigned i = 0; i < 30 * 4096; i++)
			g[i] = (uint8_t)(i * 13 + i / 4096);
		for (unsigned i = 0; i < 30; i++)
			put_trb(r + 16 * i, 0x300000 + 4096 * i, 4096,
				TRB_NORMAL << 10 | TRB_C | (i < 29 ? TRB_CH : TRB_IOC));
		wr(XHCI_DB + 4 * s, 4, 4);
		CHECK(adev.cur[4] != NULL);
		if (adev.cur[4]) {
			CHECK_EQ(adev.cur[4]->len, 30 * 4096);
			CHECK(!memcmp(adev.cur[4]->buf, g, 30 * 4096));
		}
		async_complete(4, 30 * 4096, NULL, 0);
		CHECK(ev_take(&t));
		CHECK_EQ(cc_of(&t), CC_SUCCESS);
		CHECK_EQ(t.param, r + 16 * 29);
		r += 16 * 30;
		for (unsigned i = 0; i < 9; i++)
			put_trb(r + 16 * i, 0x300000, 0x1ffff,
				TRB_NORMAL << 10 | TRB_C | (i < 8 ? TRB_CH : TRB_IOC));
		submits = adev.submits;
		wr(XHCI_DB + 4 * s, 4, 4);
		CHECK_EQ(adev.submits, submits);
		CHECK(ev_take(&t));
		CHECK_EQ(cc_of(&t), CC_TRB_ERROR);
		out_ring = r + 16 * 9 - 16;	/* the Reset Device below uses +16 */
	}

	/* Reset Device cancels what is in flight. */
	put_trb(out_ring + 16, DATA, 10, TRB_NORMAL << 10 | TRB_C | TRB_IOC);
	wr(XHCI_DB + 4 * s, 4, 4);
	CHECK(adev.cur[4] != NULL);
	CHECK_EQ(cmd_run(0, TRB_RESET_DEVICE << 10 | s << 24, NULL), CC_SUCCESS);
	CHECK(adev.cur[4] == NULL);
	CHECK_EQ(adev.cancels, 2);

	/* Unplugged from the host with a transfer in flight: cancelled, a
	 * port change, the port empty. */
	input_ctx(3, 3, EP0_RING(s));
	ep0_enq[s] = EP0_RING(s);
	CHECK_EQ(cmd_run(IN_CTX, TRB_ADDRESS_DEVICE << 10 | s << 24, NULL),
		 CC_SUCCESS);
	control_post(s, 0x80, USB_REQ_GET_DESCRIPTOR, USB_DT_DEVICE << 8, 0, 18);
	CHECK(adev.cur[0] != NULL);
	pthread_mutex_lock(&lock);
	usb_device_unplug(&adev.dev);
	pthread_mutex_unlock(&lock);
	CHECK_EQ(adev.cancels, 3);
	CHECK(adev.dev.host_ops == NULL);
	CHECK(ev_take(&t));
	CHECK_EQ(t.ctl >> 10 & 0x3f, TRB_PORT_STATUS_CHANGE);
	CHECK_EQ(t.param >> 24, 3);
	CHECK(!(rd(XHCI_OP_PORTSC(3)) & XHCI_PORT_CCS));

	/* Plugged again; the controller's reset cancels EP0's transfer. */
	CHECK_EQ(cmd_run(0, TRB_DISABLE_SLOT << 10 | s << 24, NULL), CC_SUCCESS);
	pthread_mutex_lock(&lock);
	CHECK_EQ(xhci_attach(xc, 3, &adev.dev), 0);
	pthread_mutex_unlock(&lock);
	CHECK(ev_take(&t));			/* the connect */
	CHECK_EQ(t.ctl >> 10 & 0x3f, TRB_PORT_STATUS_CHANGE);
	s = address(3);
	control_post(s, 0x80, USB_REQ_GET_DESCRIPTOR, USB_DT_DEVICE << 8, 0, 18);
	CHECK(adev.cur[0] != NULL);
	wr(XHCI_OP_USBCMD, XHCI_CMD_HCRST, 4);
	CHECK(adev.cur[0] == NULL);
	CHECK_EQ(adev.cancels, 4);
	xhci_get_stats(xc, &st);
	CHECK_EQ(st.xfers_cancelled, 4);
	CHECK(st.xfers_async >= 10);
	pthread_mutex_lock(&lock);
	xhci_detach(xc, 3);
	pthread_mutex_unlock(&lock);
	free_controller();
}

int main(void)
{
	log_set_level(LOG_ERROR);	/* the hostile cases log warnings */
	if (guest_mem_init(&mem, RAM_SIZE) != 0)
		SKIP("cannot allocate guest RAM");
	pio = bus_new("pio");
	mmio = bus_new("mmio");
	host = pci_host_new();
	CHECK_EQ(pci_host_attach(host, pio, mmio), 0);
	pci_host_set_ops(host, &host_ops, NULL);

	RUN_TEST(test_registers);
	RUN_TEST(test_enumerate_and_reports);
	RUN_TEST(test_hostile);
	RUN_TEST(test_oversized_td);
	RUN_TEST(test_bulk);
	RUN_TEST(test_save_load);
	RUN_TEST(test_async);

	pci_host_free(host);
	bus_free(mmio);
	bus_free(pio);
	guest_mem_free(&mem);
	return check_finish();
}
