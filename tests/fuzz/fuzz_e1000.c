/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_e1000.c - the 82540EM (vmm-core/devices/e1000.c) under a
 * hostile driver: register writes and reads through its BARs, descriptor
 * rings and buffers written into guest RAM, frames from the network,
 * virtual time passing (ITR and transmit-continuation timers), the cable,
 * and save -> load round trips.
 *
 * Input: a mode byte, then operations until the input ends.  Mode bit 0
 * clear: no backend (no cable): transmitted packets are walked, offloaded
 * and segmented in full, then dropped; frames from the network are
 * dropped.  Set: a backend whose thread never runs (net_new() without
 * net_start()), so everything stays on this thread: the cable is in,
 * frames are received, and transmitted ones queue until net_send says
 * -EAGAIN.  Each operation is an opcode byte (taken modulo OP_COUNT) and
 * its arguments (bytes past the end read as 0):
 *   OP_WRITE  sel, le32 value       register write (see reg_at())
 *   OP_READ   sel                   register read
 *   OP_DESC   ring (bit 0: RX), index, 16 bytes   a descriptor in a ring
 *   OP_DATA   slot, le16 len, bytes               a 2 KiB buffer slot
 *   OP_RX     le16 len, bytes                     a frame from the network
 *   OP_CLOCK  le16 t                time passes by t x 64 ns; timers run
 *   OP_IO     which, le32 value     IOADDR write / IODATA write / read
 *   OP_PCI    command byte          PCI command (I/O, memory, master, INTx off)
 *   OP_SAVE                         save, load into a fresh NIC, go on there
 *   OP_LINK                         pull or plug the cable (with a backend)
 * A register selector with bit 7 clear picks one of the registers a driver
 * uses; with it set, the next two bytes give any dword of the 128 KiB.
 * Checked (abort on failure): every save loads into a fresh NIC, and
 * INTA# is never asserted without a cause in ICR & IMS.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "fuzz.h"
#include "fuzz_input.h"
#include "fuzzlib.h"

#include "bus.h"
#include "clock.h"
#include "devices/e1000.h"
#include "devices/pci.h"
#include "log.h"
#include "mem.h"
#include "net/net.h"
#include "timer.h"

#define FUZZ_RAM	(1u << 20)
#define DEVFN		(3 << 3)
#define MMIO_BASE	0xfebc0000u
#define IO_BASE		0xc000u
#define TX_RING		0x10000u
#define RX_RING		0x20000u
#define BUFS		0x40000u	/* 64 slots of 2 KiB */
#define SLOT		2048u

enum { OP_WRITE, OP_READ, OP_DESC, OP_DATA, OP_RX, OP_CLOCK, OP_IO, OP_PCI,
       OP_SAVE, OP_LINK, OP_COUNT };

static const uint32_t regs[] = {
	0x0000, 0x0008, 0x0010, 0x0014, 0x0018, 0x0020, 0x0038, 0x00c0,
	0x00c4, 0x00c8, 0x00d0, 0x00d8, 0x0100, 0x0400, 0x1000, 0x2800,
	0x2804, 0x2808, 0x2810, 0x2818, 0x2820, 0x3800, 0x3804, 0x3808,
	0x3810, 0x3818, 0x4074, 0x408c, 0x5000, 0x5200, 0x5204, 0x5400,
	0x5404, 0x5408, 0x540c, 0x5600, 0x5604, 0x5820,
};
#define NREGS_SEL (sizeof(regs) / sizeof(regs[0]))

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct guest_mem mem;
static struct bus *pio, *mmio;
static struct pci_host *host;
static struct vtimer_queue *timers;
static struct netdev *backend;
static bool ready;

const char fuzz_target[] = "fuzz_e1000";

/* A backend whose thread is never started: its callbacks never run. */
static int idle_poll_fill(void *be, struct pollfd *pfd, int max,
			  int *timeout_ms, bool rx_room, bool tx_pending)
{
	return 0;
}

static void idle_poll_done(void *be, struct pollfd *pfd, int n)
{
}

static int idle_output(void *be, const uint8_t *f, size_t len)
{
	return 0;
}

static void idle_free(void *be)
{
}

static const struct net_backend_ops idle_ops = {
	.kind = "idle", .poll_fill = idle_poll_fill,
	.poll_done = idle_poll_done, .output = idle_output, .free = idle_free,
};

static void init_once(void)
{
	if (ready)
		return;
	log_set_level(LOG_ERROR);	/* a hostile driver draws warnings */
	fuzz_ram(&mem, FUZZ_RAM);
	host = fuzz_pci_host(&pio, &mmio, NULL, NULL);
	timers = fuzz_timer_queue();
	ready = true;
}

static uint32_t reg_at(struct in *in)
{
	uint8_t sel = in_u8(in);

	if (!(sel & 0x80))
		return regs[sel % NREGS_SEL];
	return (uint32_t)(in_u16(in) & 0x7fff) * 4;
}

static struct e1000 *nic_new(uint16_t command)
{
	struct e1000_config c = {
		.pci = host, .devfn = DEVFN, .mem = &mem, .lock = &lock,
		.timers = timers, .backend = backend,
		.mac = { 0x52, 0x54, 0, 0x12, 0x34, 0x56 },
	};
	char err[128];
	struct e1000 *e = e1000_new(&c, err, sizeof(err));

	if (!e)
		fuzz_fail(err);
	pci_config_write(host, 0, DEVFN, PCI_BASE_ADDRESS_0, 4, MMIO_BASE);
	pci_config_write(host, 0, DEVFN, PCI_BASE_ADDRESS_0 + 4, 4, IO_BASE);
	pci_config_write(host, 0, DEVFN, PCI_COMMAND, 2, command);
	return e;
}

/* Save, check, load into a fresh NIC (which must take it), free the old. */
static struct e1000 *save_load(struct e1000 *e)
{
	const struct device_ops *ops = &e1000_device_ops;
	GVariant *s = fuzz_save(ops, e, "save failed"), *regs_v;
	uint16_t command = e1000_pci_device(e)->config[PCI_COMMAND] |
			   e1000_pci_device(e)->config[PCI_COMMAND + 1] << 8;
	const uint32_t *r;
	gsize n;
	gboolean irq;

	regs_v = g_variant_get_child_value(s, 0);
	r = g_variant_get_fixed_array(regs_v, &n, sizeof(uint32_t));
	g_variant_get_child(s, 6, "b", &irq);
	if (n != E1000_STATE_NREGS)
		fuzz_fail("saved register count");
	if (irq && !(r[9] & r[11]))	/* ICR, IMS */
		fuzz_fail("INTA# asserted without a cause");
	g_variant_unref(regs_v);
	e1000_free(e);
	e = nic_new(command);
	fuzz_load(ops, e, s);
	g_variant_unref(s);
	return e;
}

static void one_op(struct e1000 **e, struct in *in)
{
	uint8_t buf[16384];
	uint32_t off, v;
	unsigned len;

	switch (in_u8(in) % OP_COUNT) {
	case OP_WRITE:
		off = reg_at(in);
		bus_write(mmio, MMIO_BASE + off, in_u32(in), 4, NULL);
		break;
	case OP_READ:
		bus_read(mmio, MMIO_BASE + reg_at(in), 4, NULL);
		break;
	case OP_DESC: {
		uint8_t ring = in_u8(in), idx = in_u8(in);
		uint64_t at = ((ring & 1) ? RX_RING : TX_RING) + 16u * idx;

		in_bytes(in, buf, 16);
		guest_mem_write(&mem, at, buf, 16);
		break;
	}
	case OP_DATA: {
		uint8_t slot = in_u8(in) % 64;

		len = in_u16(in) % (SLOT + 1);
		in_bytes(in, buf, len);
		guest_mem_write(&mem, BUFS + (uint64_t)slot * SLOT, buf, len);
		break;
	}
	case OP_RX:
		len = in_u16(in) % sizeof(buf);
		in_bytes(in, buf, len);
		e1000_receive_frame(*e, buf, len);
		break;
	case OP_CLOCK:
		fuzz_now_ns += (uint64_t)in_u16(in) * 64;
		vtimer_queue_run_due(timers, fuzz_now_ns);
		break;
	case OP_IO:
		off = in_u8(in) % 3;
		v = in_u32(in);
		if (off == 2)
			bus_read(pio, IO_BASE + 4, 4, NULL);
		else
			bus_write(pio, IO_BASE + 4 * off, v, 4, NULL);
		break;
	case OP_PCI:
		v = in_u8(in);
		pci_config_write(host, 0, DEVFN, PCI_COMMAND, 2, (v & 7) |
				 ((v & 8) ? PCI_COMMAND_INTX_DISABLE : 0));
		break;
	case OP_SAVE:
		*e = save_load(*e);
		break;
	case OP_LINK:
		if (backend) {		/* net_set_link takes the device lock */
			pthread_mutex_unlock(&lock);
			net_set_link(backend, !net_link_up(backend));
			pthread_mutex_lock(&lock);
		}
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size, 0 };
	struct e1000 *e;
	int err;

	init_once();
	backend = NULL;
	if (in_u8(&in) & 1) {
		backend = net_new(&idle_ops, NULL, &err);
		if (!backend)
			fuzz_fail("cannot make the backend");
	}
	for (unsigned i = 0; i < mem.nregions; i++)
		memset(mem.region[i].hva, 0, mem.region[i].size);
	fuzz_now_ns = 1000000000ull;
	pthread_mutex_lock(&lock);
	e = nic_new(PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	while (in.at < in.n)
		one_op(&e, &in);
	e = save_load(e);
	e1000_free(e);
	pthread_mutex_unlock(&lock);
	net_free(backend);
	return 0;
}

/* ---- seeds: what a driver does, and what a hostile one does ------------- */

static void op_w(struct seed *s, uint32_t off, uint32_t v)
{
	uint8_t o[8] = { OP_WRITE, 0x80, (uint8_t)(off / 4), (uint8_t)(off / 4 >> 8),
			 (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
			 (uint8_t)(v >> 24) };

	put(s, o, sizeof(o));
}

static void op_r(struct seed *s, uint32_t off)
{
	uint8_t o[4] = { OP_READ, 0x80, (uint8_t)(off / 4), (uint8_t)(off / 4 >> 8) };

	put(s, o, sizeof(o));
}

static void op_desc(struct seed *s, bool rx, uint8_t idx, uint64_t addr,
		    uint32_t w2, uint32_t w3)
{
	uint8_t o[19] = { OP_DESC, rx, idx };

	memcpy(o + 3, &addr, 8);
	memcpy(o + 11, &w2, 4);
	memcpy(o + 15, &w3, 4);
	put(s, o, sizeof(o));
}

static void op_data(struct seed *s, uint8_t slot, const uint8_t *p, uint16_t len)
{
	uint8_t o[4] = { OP_DATA, slot, (uint8_t)len, (uint8_t)(len >> 8) };

	put(s, o, sizeof(o));
	put(s, p, len);
}

static void op_rx(struct seed *s, const uint8_t *p, uint16_t len)
{
	uint8_t o[3] = { OP_RX, (uint8_t)len, (uint8_t)(len >> 8) };

	put(s, o, sizeof(o));
	put(s, p, len);
}

static void op_clock(struct seed *s, uint16_t t)
{
	uint8_t o[3] = { OP_CLOCK, (uint8_t)t, (uint8_t)(t >> 8) };

	put(s, o, sizeof(o));
}

/* Ethernet + IPv4 + TCP, @pay payload bytes; TSO-style if @tso. */
static uint16_t frame(uint8_t *f, uint16_t pay, bool tso)
{
	static const uint8_t hdr[54] = {
		0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x52, 0x55, 10, 0, 2, 2,
		0x08, 0x00, 0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0,
		10, 0, 2, 15, 10, 0, 2, 2, 0x9c, 0x40, 0, 80, 0, 0, 0, 1,
		0, 0, 0, 0, 0x50, 0x19, 0xff, 0xff, 0, 0, 0, 0,
	};
	uint16_t tot = (uint16_t)(40 + pay);

	memcpy(f, hdr, sizeof(hdr));
	if (!tso) {
		f[16] = (uint8_t)(tot >> 8);
		f[17] = (uint8_t)tot;
	}
	for (unsigned i = 0; i < pay; i++)
		f[54 + i] = (uint8_t)i;
	return (uint16_t)(54 + pay);
}

static void seed_tx_setup(struct seed *s)
{
	op_w(s, 0x00d0, 0x9f);			/* IMS */
	op_w(s, 0x3800, TX_RING);
	op_w(s, 0x3808, 16 * 16);
	op_w(s, 0x3810, 0);
	op_w(s, 0x3818, 0);
	op_w(s, 0x0400, 0x0004010a);		/* TCTL: EN, PSP */
}

static void seed_rx_setup(struct seed *s, uint32_t rctl)
{
	op_w(s, 0x2800, RX_RING);
	op_w(s, 0x2808, 8 * 16);
	op_w(s, 0x2810, 0);
	op_w(s, 0x2818, 0);
	for (uint8_t i = 0; i < 8; i++)
		op_desc(s, true, i, BUFS + (uint64_t)(8 + i) * SLOT, 0, 0);
	op_w(s, 0x0100, rctl | 2);
	op_w(s, 0x2818, 7);
}

void fuzz_make_seeds(void (*add)(const void *, size_t))
{
	static struct seed s;
	static uint8_t f[4096];
	uint16_t n;

	init_once();
	/* Legacy transmit, with a checksum insert, then a VLAN tag. */
	s.n = 0;
	put(&s, (uint8_t[]){ 1 }, 1);
	seed_tx_setup(&s);
	n = frame(f, 100, false);
	op_data(&s, 0, f, n);
	op_desc(&s, false, 0, BUFS, 60 | (uint32_t)0x08 << 24, 0);
	op_desc(&s, false, 1, BUFS + 60, (n - 60) | (uint32_t)0x0d << 24 | 50u << 16,
		34u << 8);
	op_w(&s, 0x0000, 0x40000241);		/* CTRL.VME */
	op_desc(&s, false, 2, BUFS, n | (uint32_t)0x49 << 24, 5u << 16);
	op_w(&s, 0x3818, 3);
	op_r(&s, 0x00c0);
	op_r(&s, 0x4080);
	add(s.b, s.n);
	s.b[0] = 0;				/* the same without a cable */
	add(s.b, s.n);

	/* Context + data: checksums, then TSO over three descriptors. */
	s.n = 0;
	put(&s, (uint8_t[]){ 1 }, 1);
	seed_tx_setup(&s);
	n = frame(f, 100, false);
	op_data(&s, 0, f, n);
	/* A context (IP, TCP): its bytes 0-7 are where an address would be. */
	op_desc(&s, false, 0, (uint64_t)(50u << 8 | 34) << 32 | 33u << 16 | 24u << 8 | 14,
		(uint32_t)0x23 << 24, 0);
	op_desc(&s, false, 1, BUFS, n | 1u << 20 | (uint32_t)0x29 << 24, 3u << 8);
	n = frame(f, 1500, true);
	op_data(&s, 1, f, 2048);
	op_desc(&s, false, 2, (uint64_t)(50u << 8 | 34) << 32 | 33u << 16 | 24u << 8 | 14,
		1500 | (uint32_t)0x27 << 24, 536u << 16 | 54u << 8);
	op_desc(&s, false, 3, BUFS + SLOT, 54 | 1u << 20 | (uint32_t)0x24 << 24, 3u << 8);
	op_desc(&s, false, 4, BUFS + SLOT + 54, 1000 | 1u << 20 | (uint32_t)0x24 << 24, 3u << 8);
	op_desc(&s, false, 5, BUFS + SLOT + 1054, 500 | 1u << 20 | (uint32_t)0x2d << 24, 3u << 8);
	op_w(&s, 0x3818, 6);
	op_clock(&s, 1000);
	put(&s, (uint8_t[]){ OP_SAVE }, 1);
	op_r(&s, 0x40f8);
	add(s.b, s.n);
	s.b[0] = 0;
	add(s.b, s.n);

	/* Receive: frames, one over several 256-byte buffers, a tag, the
	 * cable pulled and plugged. */
	s.n = 0;
	put(&s, (uint8_t[]){ 1 }, 1);
	op_w(&s, 0x00d0, 0x9f);
	seed_rx_setup(&s, 1u << 15 | 3u << 16);
	n = frame(f, 100, false);
	op_rx(&s, f, n);
	n = frame(f, 900, false);
	op_rx(&s, f, n);
	f[12] = 0x81;
	f[13] = 0x00;
	op_w(&s, 0x0000, 0x40000241);
	op_rx(&s, f, 80);
	op_r(&s, 0x00c0);
	op_w(&s, 0x2818, 3);
	put(&s, (uint8_t[]){ OP_SAVE }, 1);
	op_rx(&s, f, 60);
	put(&s, (uint8_t[]){ OP_LINK }, 1);
	op_rx(&s, f, 60);
	put(&s, (uint8_t[]){ OP_LINK }, 1);
	op_r(&s, 0x00c0);
	op_rx(&s, f, 60);
	add(s.b, s.n);

	/* The EEPROM bit-banged (READ of word 1), EERD, MDIC, ITR. */
	s.n = 0;
	put(&s, (uint8_t[]){ 1 }, 1);
	op_w(&s, 0x0010, 0x40);
	op_w(&s, 0x0010, 0x42);
	for (int i = 8; i >= 0; i--) {
		uint32_t di = ((0x181u >> i) & 1) << 2;

		op_w(&s, 0x0010, 0x42 | di);
		op_w(&s, 0x0010, 0x43 | di);
		op_w(&s, 0x0010, 0x42 | di);
	}
	for (int i = 0; i < 8; i++) {
		op_w(&s, 0x0010, 0x43);
		op_r(&s, 0x0010);
		op_w(&s, 0x0010, 0x42);
	}
	put(&s, (uint8_t[]){ OP_SAVE }, 1);
	op_w(&s, 0x0010, 0);
	op_w(&s, 0x0014, 0x3f01);
	op_r(&s, 0x0014);
	op_w(&s, 0x0020, 0x08220000);		/* MDIC read PHY 1 reg 2 */
	op_w(&s, 0x0020, 0x24200800);		/* write BMCR: power down, I */
	op_w(&s, 0x00c4, 100);
	op_w(&s, 0x00d0, 0x204);
	op_w(&s, 0x00c8, 0x4);
	op_r(&s, 0x00c0);
	op_w(&s, 0x00c8, 0x4);
	op_clock(&s, 300);
	op_clock(&s, 300);
	op_r(&s, 0x00c0);
	add(s.b, s.n);

	/* Hostile: a ring past RAM, indices past the ring, no EOP. */
	s.n = 0;
	put(&s, (uint8_t[]){ 1 }, 1);
	seed_tx_setup(&s);
	for (uint8_t i = 0; i < 16; i++)
		op_desc(&s, false, i, BUFS, 64, 0);
	op_w(&s, 0x3818, 15);
	op_w(&s, 0x3818, 200);
	op_w(&s, 0x3800, FUZZ_RAM - 128);
	op_w(&s, 0x3818, 3);
	op_w(&s, 0x3808, 0xfff80);
	op_w(&s, 0x3800, 0);
	op_w(&s, 0x3818, 0xffff);
	seed_rx_setup(&s, 1u << 3 | 1u << 5 | 3u << 16);
	op_w(&s, 0x2818, 100);
	op_rx(&s, f, 1600);
	op_w(&s, 0x2818, 7);
	op_rx(&s, f, 4000);
	add(s.b, s.n);
}
