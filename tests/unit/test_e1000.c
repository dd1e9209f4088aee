/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_e1000.c - the 82540EM (devices/e1000.c) driven the way
 * Linux's e1000 drives it: through its BARs (MMIO and the IOADDR/IODATA
 * window), with descriptor rings and buffers in a guest_mem, over a real
 * backend (net_socket_new() on one end of a SOCK_SEQPACKET socketpair; the
 * test holds the other end and sees the frames byte for byte).  INTA# is
 * watched through the PCI host's PIRQ, ITR on a fake clock with a manual
 * timer queue.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <zlib.h>

#include "testlib.h"
#include "statetest.h"

#include "bus.h"
#include "devices/e1000.h"
#include "devices/pci.h"
#include "log.h"
#include "mem.h"
#include "net/csum.h"
#include "net/net.h"
#include "timer.h"
#include "sandboxed.h"

#define RAM_SIZE	(32u << 20)
#define DEVFN		(3 << 3)	/* INTA# -> PIRQ (3 + 1 - 1) & 3 = 3 */
#define DEVFN2		(4 << 3)
#define PIRQ		3
#define MMIO_BASE	0xfebc0000ull
#define MMIO_BASE2	0xfeba0000ull
#define IO_BASE		0xc000
#define TX_RING		0x100000ull
#define RX_RING		0x110000ull
#define TX_BUFS		0x200000ull
#define RX_BUFS		0x400000ull

/* Registers (SDM table 13-2) and bits the tests use. */
enum {
	CTRL = 0x0, STATUS = 0x8, EECD = 0x10, EERD = 0x14, MDIC = 0x20,
	VET = 0x38, ICR = 0xc0, ITR = 0xc4, ICS = 0xc8, IMS = 0xd0, IMC = 0xd8,
	RCTL = 0x100, TCTL = 0x400, PBA = 0x1000,
	RDBAL = 0x2800, RDBAH = 0x2804, RDLEN = 0x2808, RDH = 0x2810,
	RDT = 0x2818, TDBAL = 0x3800, TDBAH = 0x3804, TDLEN = 0x3808,
	TDH = 0x3810, TDT = 0x3818, GPRC = 0x4074, GPTC = 0x4080,
	GORCL = 0x4088, GORCH = 0x408c, GOTCL = 0x4090, GOTCH = 0x4094,
	TPR = 0x40d0, TPT = 0x40d4, MTA = 0x5200, RA = 0x5400, VFTA = 0x5600,
};
#define CTRL_RST	0x04000000u
#define CTRL_VME	0x40000000u
#define CTRL_PHY_RST	0x80000000u
#define ICR_TXDW	0x01u
#define ICR_TXQE	0x02u
#define ICR_LSC		0x04u
#define ICR_RXDMT0	0x10u
#define ICR_RXT0	0x80u
#define ICR_MDAC	0x200u
#define RCTL_EN		(1u << 1)
#define RCTL_UPE	(1u << 3)
#define RCTL_MPE	(1u << 4)
#define RCTL_LPE	(1u << 5)
#define RCTL_BAM	(1u << 15)
#define RCTL_SZ_256	(3u << 16)
#define RCTL_VFE	(1u << 18)
#define RCTL_SECRC	(1u << 26)
#define TCTL_EN		(1u << 1)
#define TCTL_PSP	(1u << 3)
#define CMD_EOP		0x01
#define CMD_IFCS	0x02
#define CMD_IC		0x04
#define CMD_TSE		0x04
#define CMD_RS		0x08
#define CMD_DEXT	0x20
#define CMD_VLE		0x40
#define POPTS_IXSM	0x01
#define POPTS_TXSM	0x02
#define TUCMD_TCP	0x01
#define TUCMD_IP	0x02
#define TUCMD_TSE	0x04

static const uint8_t our_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t peer_mac[6] = { 0x52, 0x55, 0x0a, 0x00, 0x02, 0x02 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct guest_mem mem;
static struct bus *pio, *mmio;
static struct pci_host *host;
static struct fake_clock fc;
static struct vtimer_queue *timers;
static struct e1000 *nic;
static struct netdev *nd;
static int peer = -1;
static unsigned pirq_level[4];
static uint64_t next_buf;

static void set_pirq(void *opaque, unsigned pirq, int level)
{
	if (pirq < 4)
		pirq_level[pirq] = (unsigned)level;
}

static const struct pci_host_ops host_ops = { .set_pirq = set_pirq };

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* ---- register access, as a vCPU makes it (device lock held) ------------- */

static uint32_t rd(uint32_t off)
{
	uint32_t v;

	pthread_mutex_lock(&lock);
	v = (uint32_t)io_read(mmio, MMIO_BASE + off, 4);
	pthread_mutex_unlock(&lock);
	return v;
}

static void wr(uint32_t off, uint32_t v)
{
	pthread_mutex_lock(&lock);
	io_write(mmio, MMIO_BASE + off, v, 4);
	pthread_mutex_unlock(&lock);
}

static unsigned irq(void)
{
	unsigned v;

	pthread_mutex_lock(&lock);
	v = pirq_level[PIRQ];
	pthread_mutex_unlock(&lock);
	return v;
}

static void *gpa(uint64_t a, size_t len)
{
	void *p = gpa_to_hva(&mem, a, len);

	CHECK(p != NULL);
	return p;
}

/* Wait up to 2 s for register @off to read @want. */
static bool wait_reg(uint32_t off, uint32_t want)
{
	for (int i = 0; i < 400; i++) {
		if (rd(off) == want)
			return true;
		sleep_ms(5);
	}
	return false;
}

/* A frame from the peer's end, or -1 after 2 s. */
static ssize_t peer_recv(uint8_t *buf, size_t max)
{
	struct pollfd p = { .fd = peer, .events = POLLIN };

	if (poll(&p, 1, 2000) != 1)
		return -1;
	return recv(peer, buf, max, 0);
}

/* Nothing more from the device for @ms. */
static bool peer_quiet(unsigned ms)
{
	struct pollfd p = { .fd = peer, .events = POLLIN };

	return poll(&p, 1, (int)ms) == 0;
}

static void cfg_wr(uint8_t devfn, unsigned off, unsigned size, uint32_t v)
{
	pthread_mutex_lock(&lock);
	pci_config_write(host, 0, devfn, off, size, v);
	pthread_mutex_unlock(&lock);
}

static uint32_t cfg_rd(uint8_t devfn, unsigned off, unsigned size)
{
	uint32_t v;

	pthread_mutex_lock(&lock);
	v = pci_config_read(host, 0, devfn, off, size);
	pthread_mutex_unlock(&lock);
	return v;
}

/* A backend on a fresh socketpair; *@other gets the test's end. */
/* setup()'s backend carries offloads (a TAP's vnet header) when set. */
static bool vnet_backend;

static struct netdev *make_backend(int *other)
{
	int sv[2], err = 0;
	struct netdev *b;

	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
	b = vnet_backend ? net_socket_vnet_new(sv[0], &err)
			 : net_socket_new(sv[0], &err);
	CHECK(b != NULL);
	*other = sv[1];
	return b;
}

static struct e1000 *make_nic(uint8_t devfn, struct netdev *b, uint64_t base)
{
	struct e1000_config c = {
		.pci = host, .devfn = devfn, .mem = &mem, .lock = &lock,
		.timers = timers, .backend = b,
	};
	char err[128] = "";
	struct e1000 *e;

	memcpy(c.mac, our_mac, 6);
	pthread_mutex_lock(&lock);
	e = e1000_new(&c, err, sizeof(err));
	pthread_mutex_unlock(&lock);
	CHECK(e != NULL);
	if (!e) {
		fprintf(stderr, "  (%s)\n", err);
		return NULL;
	}
	cfg_wr(devfn, PCI_BASE_ADDRESS_0, 4, (uint32_t)base);
	if (devfn == DEVFN)
		cfg_wr(devfn, PCI_BASE_ADDRESS_0 + 4, 4, IO_BASE);
	cfg_wr(devfn, PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY |
	       PCI_COMMAND_MASTER);
	return e;
}

static void setup(void)
{
	CHECK_EQ(guest_mem_init(&mem, RAM_SIZE), 0);
	pio = bus_new("pio");
	mmio = bus_new("mmio");
	host = pci_host_new();
	CHECK_EQ(pci_host_attach(host, pio, mmio), 0);
	pci_host_set_ops(host, &host_ops, NULL);
	memset(pirq_level, 0, sizeof(pirq_level));
	fake_clock_init(&fc);
	fc.mono_ns = 1000000000ull;
	timers = vtimer_queue_new_manual(&fc.clk);
	nd = make_backend(&peer);
	nic = make_nic(DEVFN, nd, MMIO_BASE);
	next_buf = TX_BUFS;
}

static void teardown(void)
{
	pthread_mutex_lock(&lock);
	e1000_free(nic);
	pthread_mutex_unlock(&lock);
	nic = NULL;
	net_free(nd);
	close(peer);
	vtimer_queue_free(timers);
	pci_host_free(host);
	bus_free(pio);
	bus_free(mmio);
	guest_mem_free(&mem);
}

static void run_timers(void)
{
	pthread_mutex_lock(&lock);
	vtimer_queue_run_due(timers, fc.mono_ns);
	pthread_mutex_unlock(&lock);
}

/* ---- checksums, computed here independently ------------------------------ */

static uint32_t sum16(uint32_t s, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		s += i & 1 ? p[i] : (uint32_t)p[i] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/* The IPv4 pseudo-header sum (not complemented), with @l4len or 0. */
static uint16_t pseudo4(const uint8_t *ip, uint8_t proto, uint16_t l4len)
{
	return fold(sum16(proto + l4len, ip + 12, 8));
}

/* Whether the IPv4 header at @ip and its TCP/UDP checksum verify. */
static bool ip_ok(const uint8_t *ip)
{
	return fold(sum16(0, ip, (ip[0] & 15) * 4u)) == 0xffff;
}

static bool l4_ok(const uint8_t *ip, size_t iplen)
{
	size_t hl = (ip[0] & 15) * 4u;

	return fold(sum16(pseudo4(ip, ip[9], (uint16_t)(iplen - hl)), ip + hl,
			  iplen - hl)) == 0xffff;
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)be16(p) << 16 | be16(p + 2);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

/*
 * An Ethernet + IPv4 + TCP (or UDP) frame with @pay payload bytes at @f:
 * 54 (42) bytes of headers.  @tso: as Linux's e1000_tso() leaves it
 * (total length 0, IP checksum 0, TCP checksum the pseudo-header without
 * length); else as CHECKSUM_PARTIAL (checksum the pseudo-header with it).
 */
static size_t make_ip4(uint8_t *f, bool tcp, size_t pay, uint32_t seq,
		       uint8_t flags, bool tso)
{
	uint8_t *ip = f + 14, *l4 = ip + 20;
	size_t l4len = (tcp ? 20 : 8) + pay;

	memcpy(f, peer_mac, 6);
	memcpy(f + 6, our_mac, 6);
	put16(f + 12, 0x0800);
	memset(ip, 0, 20);
	ip[0] = 0x45;
	put16(ip + 2, tso ? 0 : (uint16_t)(20 + l4len));
	put16(ip + 4, 0x1234);
	put16(ip + 6, 0x4000);
	ip[8] = 64;
	ip[9] = tcp ? 6 : 17;
	put32(ip + 12, 0x0a00020f);
	put32(ip + 16, 0x0a000202);
	memset(l4, 0, tcp ? 20 : 8);
	put16(l4, 40000);
	put16(l4 + 2, tcp ? 80 : 53);
	if (tcp) {
		put32(l4 + 4, seq);
		l4[12] = 5 << 4;
		l4[13] = flags;
		put16(l4 + 14, 0xffff);
		put16(l4 + 16, pseudo4(ip, 6, tso ? 0 : (uint16_t)l4len));
	} else {
		put16(l4 + 4, (uint16_t)l4len);
		put16(l4 + 6, pseudo4(ip, 17, (uint16_t)l4len));
	}
	for (size_t i = 0; i < pay; i++)
		l4[l4len - pay + i] = (uint8_t)(i * 7 + 3);
	return 14 + 20 + l4len;
}

/* ---- a driver's rings ------------------------------------------------------ */

static uint64_t buf_put(const void *data, size_t len)
{
	uint64_t a = next_buf;

	memcpy(gpa(a, len ? len : 1), data, len);
	next_buf += (len + 63) & ~63ull;
	return a;
}

static uint8_t *txd(unsigned i)
{
	return gpa(TX_RING + 16ull * i, 16);
}

static void txd_legacy(unsigned i, uint64_t addr, uint16_t len, uint8_t cmd,
		       uint8_t cso, uint8_t css, uint16_t special)
{
	uint8_t *d = txd(i);

	memset(d, 0, 16);
	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 2);
	d[10] = cso;
	d[11] = cmd;
	d[13] = css;
	memcpy(d + 14, &special, 2);
}

static void txd_context(unsigned i, uint8_t ipcss, uint8_t ipcso,
			uint16_t ipcse, uint8_t tucss, uint8_t tucso,
			uint16_t tucse, uint32_t paylen, uint8_t tucmd,
			uint8_t hdrlen, uint16_t mss)
{
	uint8_t *d = txd(i);
	uint32_t w = (paylen & 0xfffff) | (uint32_t)(tucmd | CMD_DEXT) << 24;

	memset(d, 0, 16);
	d[0] = ipcss;
	d[1] = ipcso;
	memcpy(d + 2, &ipcse, 2);
	d[4] = tucss;
	d[5] = tucso;
	memcpy(d + 6, &tucse, 2);
	memcpy(d + 8, &w, 4);
	d[13] = hdrlen;
	memcpy(d + 14, &mss, 2);
}

static void txd_data(unsigned i, uint64_t addr, uint32_t len, uint8_t dcmd,
		     uint8_t popts, uint16_t vlan)
{
	uint8_t *d = txd(i);
	uint32_t w = (len & 0xfffff) | 1u << 20 | (uint32_t)(dcmd | CMD_DEXT) << 24;

	memset(d, 0, 16);
	memcpy(d, &addr, 8);
	memcpy(d + 8, &w, 4);
	d[13] = popts;
	memcpy(d + 14, &vlan, 2);
}

/* Transmit ring of @count descriptors, empty, transmitter on. */
static void tx_setup(unsigned count)
{
	memset(gpa(TX_RING, 16ull * count), 0, 16ull * count);
	wr(TDBAL, (uint32_t)TX_RING);
	wr(TDBAH, 0);
	wr(TDLEN, 16 * count);
	wr(TDH, 0);
	wr(TDT, 0);
	wr(TCTL, TCTL_EN | TCTL_PSP | 0x0f << 4 | 0x40 << 12);
}

/* Receive ring of @count descriptors with @bufsz-byte buffers, all but
 * one given to the device (RDT = count - 1), receiver on with @rctl. */
static void rx_setup(unsigned count, uint32_t rctl, size_t bufsz)
{
	memset(gpa(RX_RING, 16ull * count), 0, 16ull * count);
	for (unsigned i = 0; i < count; i++) {
		uint64_t a = RX_BUFS + (uint64_t)i * bufsz;

		memcpy(gpa(RX_RING + 16ull * i, 8), &a, 8);
		memset(gpa(a, bufsz), 0xee, bufsz);
	}
	wr(RDBAL, (uint32_t)RX_RING);
	wr(RDBAH, 0);
	wr(RDLEN, 16 * count);
	wr(RDH, 0);
	wr(RDT, 0);
	wr(RCTL, rctl | RCTL_EN);
	wr(RDT, count - 1);
}

static uint8_t *rxd(unsigned i)
{
	return gpa(RX_RING + 16ull * i, 16);
}

static uint16_t rxd_len(unsigned i)
{
	return (uint16_t)(rxd(i)[8] | rxd(i)[9] << 8);
}

/* ---- EEPROM and PHY, as the driver reaches them ------------------------- */

/* e1000_read_eeprom() for Microwire parts: grant, CS, opcode 110b and six
 * address bits out on DI, sixteen bits in from DO, standby. */
static void ee_clock_out(uint32_t *eecd, unsigned bit)
{
	*eecd = (*eecd & ~4u) | (bit ? 4u : 0);
	wr(EECD, *eecd);
	wr(EECD, *eecd | 1);
	wr(EECD, *eecd);
}

static uint16_t ee_read(unsigned word)
{
	uint32_t eecd = rd(EECD);
	uint16_t v = 0;

	eecd |= 0x40;				/* REQ */
	wr(EECD, eecd);
	CHECK(rd(EECD) & 0x80);			/* GNT */
	eecd &= ~5u;				/* SK, DI low */
	wr(EECD, eecd);
	eecd |= 2;				/* CS */
	wr(EECD, eecd);
	for (int i = 2; i >= 0; i--)
		ee_clock_out(&eecd, (0x6 >> i) & 1);
	for (int i = 5; i >= 0; i--)
		ee_clock_out(&eecd, (word >> i) & 1);
	for (int i = 0; i < 16; i++) {
		wr(EECD, eecd | 1);
		v = (uint16_t)(v << 1 | ((rd(EECD) >> 3) & 1));
		wr(EECD, eecd);
	}
	eecd &= ~0x43u;				/* CS, SK, REQ low */
	wr(EECD, eecd);
	return v;
}

static uint32_t mdic(unsigned op, unsigned phy, unsigned reg, uint16_t data,
		     bool intr)
{
	wr(MDIC, data | reg << 16 | phy << 21 | op << 26 | (intr ? 1u << 29 : 0));
	return rd(MDIC);
}

static uint16_t phy_rd(unsigned reg)
{
	uint32_t v = mdic(2, 1, reg, 0, false);

	CHECK(v & (1u << 28));			/* READY */
	CHECK(!(v & (1u << 30)));		/* no ERROR */
	return (uint16_t)v;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_pci(void)
{
	setup();
	CHECK_EQ(cfg_rd(DEVFN, 0, 4), 0x100e8086u);
	CHECK_EQ(cfg_rd(DEVFN, PCI_REVISION_ID, 4) >> 8, 0x020000);
	CHECK_EQ(cfg_rd(DEVFN, PCI_SUBSYSTEM_VENDOR_ID, 4), 0x001e8086u);
	CHECK_EQ(cfg_rd(DEVFN, PCI_INTERRUPT_PIN, 1), 1);
	/* Sizing: 128 KiB of memory, 8 I/O ports. */
	cfg_wr(DEVFN, PCI_COMMAND, 2, 0);
	cfg_wr(DEVFN, PCI_BASE_ADDRESS_0, 4, 0xffffffff);
	CHECK_EQ(cfg_rd(DEVFN, PCI_BASE_ADDRESS_0, 4), 0xfffe0000u);
	cfg_wr(DEVFN, PCI_BASE_ADDRESS_0 + 4, 4, 0xffffffff);
	CHECK_EQ(cfg_rd(DEVFN, PCI_BASE_ADDRESS_0 + 4, 4), 0xfffffff9u);
	cfg_wr(DEVFN, PCI_BASE_ADDRESS_0, 4, (uint32_t)MMIO_BASE);
	cfg_wr(DEVFN, PCI_BASE_ADDRESS_0 + 4, 4, IO_BASE);
	cfg_wr(DEVFN, PCI_COMMAND, 2, 7);
	/* STATUS: link up, full duplex, 1000 Mb/s. */
	CHECK_EQ(rd(STATUS) & 0xc3, 0x83);
	/* The I/O window reaches the same registers. */
	{
		uint32_t st = rd(STATUS);

		pthread_mutex_lock(&lock);
		io_write(pio, IO_BASE, STATUS, 4);
		CHECK_EQ(io_read(pio, IO_BASE, 4), STATUS);
		CHECK_EQ(io_read(pio, IO_BASE + 4, 4), st);
		pthread_mutex_unlock(&lock);
	}
	/* PBA: 48 KiB receive, the rest of 64 transmit. */
	CHECK_EQ(rd(PBA), 0x00100030u);
	wr(PBA, 0x28);
	CHECK_EQ(rd(PBA), 0x00180028u);
	/* A second NIC on the same backend is refused; so is a taken devfn
	 * and a multicast address. */
	{
		struct e1000_config c = {
			.pci = host, .devfn = DEVFN2, .mem = &mem,
			.lock = &lock, .backend = nd,
		};
		char err[128] = "";

		pthread_mutex_lock(&lock);
		CHECK(e1000_new(&c, err, sizeof(err)) == NULL);
		CHECK(strstr(err, "NIC already") != NULL);
		c.backend = NULL;
		c.devfn = DEVFN;
		CHECK(e1000_new(&c, err, sizeof(err)) == NULL);
		CHECK(strstr(err, "taken") != NULL);
		c.devfn = DEVFN2;
		c.mac[0] = 1;
		CHECK(e1000_new(&c, err, sizeof(err)) == NULL);
		CHECK(strstr(err, "multicast") != NULL);
		pthread_mutex_unlock(&lock);
	}
	teardown();
}

static void test_eeprom(void)
{
	uint16_t w[64], sum = 0;
	uint32_t v;

	setup();
	for (unsigned i = 0; i < 64; i++) {
		w[i] = ee_read(i);
		sum = (uint16_t)(sum + w[i]);
	}
	CHECK_EQ(sum, 0xbaba);
	for (unsigned i = 0; i < 6; i++)
		CHECK_EQ((w[i / 2] >> (8 * (i & 1))) & 0xff, our_mac[i]);
	CHECK_EQ(w[0x0d], 0x100e);
	CHECK_EQ(w[0x0e], 0x8086);
	/* EERD: start, address in 15:8; done in bit 4, data in 31:16. */
	wr(EERD, 1u << 8 | 1);
	v = rd(EERD);
	CHECK(v & 0x10);
	CHECK_EQ(v >> 16, w[1]);
	wr(EERD, 0x3fu << 8 | 1);
	CHECK_EQ(rd(EERD) >> 16, w[0x3f]);
	/* The MAC is in RAL/RAH[0] after reset, address valid. */
	CHECK_EQ(rd(RA), 0x12005452u);
	CHECK_EQ(rd(RA + 4), 0x80005634u);
	teardown();
}

static void test_phy(void)
{
	setup();
	CHECK_EQ(phy_rd(2), 0x0141);
	CHECK_EQ(phy_rd(3), 0x0c20);
	CHECK_EQ(phy_rd(1) & 0x24, 0x24);	/* link, autoneg complete */
	CHECK_EQ(phy_rd(17) & 0x0400, 0x0400);	/* M88: link */
	/* e1000_phy_reset(): the reset bit clears itself. */
	mdic(1, 1, 0, 0x1140 | 0x8000, false);
	CHECK_EQ(phy_rd(0), 0x1140);
	mdic(1, 1, 0, 0x1140 | 0x0200, false);	/* restart autoneg */
	CHECK_EQ(phy_rd(0), 0x1140);
	mdic(1, 1, 4, 0x0de1, false);
	CHECK_EQ(phy_rd(4), 0x0de1);
	mdic(1, 1, 2, 0x1234, false);		/* read-only */
	CHECK_EQ(phy_rd(2), 0x0141);
	/* Another PHY address: ERROR. */
	CHECK(mdic(2, 2, 1, 0, false) & (1u << 30));
	/* Interrupt on completion. */
	rd(ICR);
	mdic(2, 1, 1, 0, true);
	CHECK(rd(ICR) & ICR_MDAC);
	/* Power down takes the link down (LSC), power up brings it back. */
	mdic(1, 1, 0, 0x1140 | 0x0800, false);
	CHECK(!(rd(STATUS) & 2));
	CHECK(!(phy_rd(1) & 4));
	CHECK(rd(ICR) & ICR_LSC);
	mdic(1, 1, 0, 0x1140, false);
	CHECK(rd(STATUS) & 2);
	CHECK(rd(ICR) & ICR_LSC);
	/* CTRL.PHY_RST puts the PHY's registers back. */
	wr(CTRL, rd(CTRL) | CTRL_PHY_RST);
	wr(CTRL, rd(CTRL) & ~CTRL_PHY_RST);
	CHECK_EQ(phy_rd(4), 0x01e1);
	teardown();
}

/* Legacy descriptors: a frame in two buffers, then one with IC. */
static void test_tx_legacy(void)
{
	uint8_t f[200], back[2048];
	uint64_t a;

	setup();
	wr(IMS, ICR_TXDW);
	tx_setup(16);
	for (unsigned i = 0; i < sizeof(f); i++)
		f[i] = (uint8_t)(i ^ 0x5a);
	memcpy(f, peer_mac, 6);
	a = buf_put(f, sizeof(f));
	txd_legacy(0, a, 50, CMD_IFCS, 0, 0, 0);
	txd_legacy(1, a + 50, 150, CMD_EOP | CMD_IFCS | CMD_RS, 0, 0, 0);
	wr(TDT, 2);
	CHECK_EQ(peer_recv(back, sizeof(back)), 200);
	CHECK(memcmp(back, f, 200) == 0);
	CHECK_EQ(rd(TDH), 2);
	CHECK_EQ(txd(0)[12] & 1, 0);		/* no RS: no DD */
	CHECK_EQ(txd(1)[12] & 1, 1);
	CHECK_EQ(irq(), 1);
	CHECK_EQ(rd(ICR), ICR_TXDW | ICR_TXQE);
	CHECK_EQ(irq(), 0);

	/* IC: checksum from CSS to the end, stored at CSO (a UDP frame). */
	{
		size_t n = make_ip4(f, false, 37, 0, 0, false);

		a = buf_put(f, n);
		txd_legacy(2, a, (uint16_t)n, CMD_EOP | CMD_RS | CMD_IC,
			   14 + 20 + 6, 14 + 20, 0);
		wr(TDT, 3);
		CHECK_EQ(peer_recv(back, sizeof(back)), (ssize_t)n);
		CHECK(l4_ok(back + 14, n - 14));
		CHECK(memcmp(back, f, 14 + 20 + 6) == 0);
	}
	/* A short frame is padded to 60 bytes (TCTL.PSP). */
	a = buf_put(f, 20);
	txd_legacy(3, a, 20, CMD_EOP | CMD_RS, 0, 0, 0);
	wr(TDT, 4);
	CHECK_EQ(peer_recv(back, sizeof(back)), 60);
	CHECK(memcmp(back, f, 20) == 0);
	CHECK_EQ(back[59], 0);
	/* Statistics: three frames, read to clear. */
	CHECK_EQ(rd(GPTC), 3);
	CHECK_EQ(rd(GPTC), 0);
	CHECK_EQ(rd(TPT), 3);
	CHECK(rd(GOTCL) > 0);
	CHECK_EQ(rd(GOTCH), 0);
	CHECK_EQ(rd(GOTCL), 0);			/* cleared with the high half */
	teardown();
}

/* Context + data descriptors: TCP and UDP checksums, the IP header's. */
static void test_tx_offload(void)
{
	uint8_t f[2048], back[2048];
	size_t n;
	uint64_t a;

	setup();
	tx_setup(16);
	n = make_ip4(f, true, 1000, 77, 0x18, false);
	a = buf_put(f, n);
	/* As e1000_tx_csum(): TUCSS/TUCSO, TUCSE 0, TCP. */
	txd_context(0, 0, 0, 0, 34, 34 + 16, 0, 0, TUCMD_TCP, 0, 0);
	txd_data(1, a, 100, 0, POPTS_TXSM, 0);
	txd_data(2, a + 100, (uint32_t)(n - 100), CMD_EOP | CMD_RS, POPTS_TXSM, 0);
	wr(TDT, 3);
	CHECK_EQ(peer_recv(back, sizeof(back)), (ssize_t)n);
	CHECK(l4_ok(back + 14, n - 14));
	CHECK(memcmp(back + 54, f + 54, n - 54) == 0);
	CHECK_EQ(txd(0)[12] & 1, 0);		/* context without RS */
	CHECK_EQ(txd(2)[12] & 1, 1);

	/* IPv4 header checksum too (IXSM), and UDP (TUCMD.TCP clear). */
	n = make_ip4(f, false, 333, 0, 0, false);
	put16(f + 14 + 10, 0);
	a = buf_put(f, n);
	txd_context(3, 14, 14 + 10, 14 + 19, 34, 34 + 6, 0, 0,
		    TUCMD_IP | CMD_RS, 0, 0);
	txd_data(4, a, (uint32_t)n, CMD_EOP | CMD_RS, POPTS_TXSM | POPTS_IXSM, 0);
	wr(TDT, 5);
	CHECK_EQ(peer_recv(back, sizeof(back)), (ssize_t)n);
	CHECK(ip_ok(back + 14));
	CHECK(l4_ok(back + 14, n - 14));
	CHECK_EQ(txd(3)[12] & 1, 1);		/* context with RS: DD */

	/* VLAN insertion: VLE with CTRL.VME. */
	wr(CTRL, rd(CTRL) | CTRL_VME);
	n = make_ip4(f, true, 10, 1, 0x10, false);
	a = buf_put(f, n);
	txd_legacy(5, a, (uint16_t)n, CMD_EOP | CMD_RS | CMD_VLE, 0, 0, 0x2005);
	wr(TDT, 6);
	CHECK_EQ(peer_recv(back, sizeof(back)), (ssize_t)n + 4);
	CHECK(memcmp(back, f, 12) == 0);
	CHECK_EQ(be16(back + 12), 0x8100);
	CHECK_EQ(be16(back + 14), 0x2005);
	CHECK(memcmp(back + 16, f + 12, n - 12) == 0);
	teardown();
}

/* TCP segmentation as Linux's e1000_tso() asks for it. */
static void test_tx_tso(void)
{
	uint8_t f[8192], back[2048];
	const size_t pay = 3500, mss = 1000;
	size_t n;
	uint64_t a;

	setup();
	tx_setup(16);
	n = make_ip4(f, true, pay, 1000000, 0x19, true);	/* ACK PSH FIN */
	a = buf_put(f, n);
	txd_context(0, 14, 14 + 10, 14 + 19, 34, 34 + 16, 0, (uint32_t)pay,
		    TUCMD_TCP | TUCMD_IP | TUCMD_TSE, 54, (uint16_t)mss);
	txd_data(1, a, 54, CMD_TSE, POPTS_IXSM | POPTS_TXSM, 0);
	txd_data(2, a + 54, 2000, CMD_TSE, POPTS_IXSM | POPTS_TXSM, 0);
	txd_data(3, a + 2054, (uint32_t)(n - 2054), CMD_TSE | CMD_EOP | CMD_RS,
		 POPTS_IXSM | POPTS_TXSM, 0);
	wr(TDT, 4);
	for (unsigned k = 0; k < 4; k++) {
		size_t p = k < 3 ? mss : pay - 3 * mss;
		ssize_t got = peer_recv(back, sizeof(back));
		const uint8_t *ip = back + 14, *tcp = ip + 20;

		CHECK_EQ(got, (ssize_t)(54 + p));
		if (got != (ssize_t)(54 + p))
			break;
		CHECK_EQ(be16(ip + 2), 40 + p);
		CHECK_EQ(be16(ip + 4), 0x1234 + k);
		CHECK(ip_ok(ip));
		CHECK(l4_ok(ip, 40 + p));
		CHECK_EQ(be32(tcp + 4), 1000000 + k * mss);
		CHECK_EQ(tcp[13], k < 3 ? 0x10 : 0x19);
		CHECK(memcmp(back + 54, f + 54 + k * mss, p) == 0);
		CHECK(memcmp(back, f, 14) == 0);
	}
	CHECK(peer_quiet(50));
	CHECK_EQ(rd(TDH), 4);
	CHECK_EQ(txd(3)[12] & 1, 1);
	CHECK_EQ(rd(0x40f8), 1);		/* TSCTC */
	CHECK_EQ(rd(GPTC), 4);

	/* With TSE the VLAN tag comes from the first data descriptor
	 * (SDM §3.3.7.1), and every segment carries it. */
	wr(CTRL, rd(CTRL) | CTRL_VME);
	txd_data(4, a, 54, CMD_TSE | CMD_VLE, POPTS_IXSM | POPTS_TXSM, 0x0123);
	txd_data(5, a + 54, (uint32_t)(n - 54), CMD_TSE | CMD_EOP | CMD_RS,
		 POPTS_IXSM | POPTS_TXSM, 0);
	wr(TDT, 6);
	for (unsigned k = 0; k < 4; k++) {
		size_t p = k < 3 ? mss : pay - 3 * mss;
		ssize_t got = peer_recv(back, sizeof(back));

		CHECK_EQ(got, (ssize_t)(58 + p));
		CHECK_EQ(be16(back + 12), 0x8100);
		CHECK_EQ(be16(back + 14), 0x0123);
		CHECK(ip_ok(back + 18));
		CHECK(l4_ok(back + 18, 40 + p));
	}
	CHECK(peer_quiet(20));
	teardown();
}

/*
 * On a backend with offloads (TAP), a TSO packet goes out whole with GSO
 * metadata: the host's stack segments it.  Its headers are the whole
 * packet's (IP length and checksum), the TCP checksum is partial (the
 * pseudo-header with the TCP length: completing it gives a valid sum over
 * the whole segment), the statistics count the segments the wire carries.
 * With a VLAN tag to insert, or a segment that fits one frame, it is
 * segmented here as before (plain header).
 */
static void test_tx_tso_gso(void)
{
	uint8_t f[8192], back[NET_VNET_HDR_LEN + 8192];
	const size_t pay = 3500, mss = 1000;
	struct net_offload off;
	size_t n;
	ssize_t got;
	uint64_t a;
	uint8_t *fr = back + NET_VNET_HDR_LEN, *ip = fr + 14, *tcp = ip + 20;

	vnet_backend = true;
	setup();
	vnet_backend = false;
	tx_setup(16);
	n = make_ip4(f, true, pay, 1000000, 0x99, true);	/* CWR ACK FIN */
	a = buf_put(f, n);
	txd_context(0, 14, 14 + 10, 14 + 19, 34, 34 + 16, 0, (uint32_t)pay,
		    TUCMD_TCP | TUCMD_IP | TUCMD_TSE, 54, (uint16_t)mss);
	txd_data(1, a, 54, CMD_TSE, POPTS_IXSM | POPTS_TXSM, 0);
	txd_data(2, a + 54, (uint32_t)(n - 54), CMD_TSE | CMD_EOP | CMD_RS,
		 POPTS_IXSM | POPTS_TXSM, 0);
	wr(TDT, 3);
	got = peer_recv(back, sizeof(back));
	CHECK_EQ(got, (ssize_t)(NET_VNET_HDR_LEN + n));
	net_offload_from_hdr(&off, back);
	CHECK_EQ(off.flags, NET_OFF_F_NEEDS_CSUM);
	CHECK_EQ(off.gso_type, NET_GSO_TCPV4 | NET_GSO_ECN);
	CHECK_EQ(off.hdr_len, 54);
	CHECK_EQ(off.gso_size, mss);
	CHECK_EQ(off.csum_start, 34);
	CHECK_EQ(off.csum_offset, 16);
	CHECK_EQ(be16(ip + 2), n - 14);
	CHECK(ip_ok(ip));
	CHECK_EQ(be32(tcp + 4), 1000000);
	CHECK_EQ(tcp[13], 0x99);
	CHECK(memcmp(fr + 54, f + 54, pay) == 0);
	CHECK(memcmp(fr, f, 14) == 0);
	CHECK_EQ(net_csum_complete(fr, n, off.csum_start, off.csum_offset), 0);
	CHECK(l4_ok(ip, n - 14));
	CHECK(peer_quiet(50));
	CHECK_EQ(rd(TDH), 3);
	CHECK_EQ(txd(2)[12] & 1, 1);
	CHECK_EQ(rd(0x40f8), 1);		/* TSCTC */
	CHECK_EQ(rd(GPTC), 4);			/* the wire's segments */

	/* A VLAN tag to insert: segmented here, plain headers. */
	wr(CTRL, rd(CTRL) | CTRL_VME);
	txd_data(3, a, 54, CMD_TSE | CMD_VLE, POPTS_IXSM | POPTS_TXSM, 0x0123);
	txd_data(4, a + 54, (uint32_t)(n - 54), CMD_TSE | CMD_EOP | CMD_RS,
		 POPTS_IXSM | POPTS_TXSM, 0);
	wr(TDT, 5);
	for (unsigned k = 0; k < 4; k++) {
		size_t p = k < 3 ? mss : pay - 3 * mss;

		got = peer_recv(back, sizeof(back));
		CHECK_EQ(got, (ssize_t)(NET_VNET_HDR_LEN + 58 + p));
		net_offload_from_hdr(&off, back);
		CHECK_EQ(off.gso_type, NET_GSO_NONE);
		CHECK_EQ(be16(fr + 12), 0x8100);
		CHECK(ip_ok(fr + 18));
		CHECK(l4_ok(fr + 18, 40 + p));
	}
	CHECK(peer_quiet(20));
	teardown();
}

/* More frames than the budget and the backend's queue take: a run stops
 * after E1000_TX_BUDGET frames and goes on from the timer; with the peer
 * not reading, net_send says -EAGAIN and the ring stays put until the
 * peer drains (tx_ready); in order, none lost. */
static void test_tx_flow_control(void)
{
	enum { COUNT = 1024, FRAMES = 700 };
	uint8_t f[1500], back[2048];
	uint64_t a;
	uint32_t held;
	unsigned got = 0;

	setup();
	tx_setup(COUNT);
	memcpy(f, peer_mac, 6);
	memset(f + 6, 0x11, sizeof(f) - 6);
	for (unsigned i = 0; i < FRAMES; i++) {
		put32(f + 20, i);
		a = buf_put(f, sizeof(f));
		txd_legacy(i, a, sizeof(f), CMD_EOP | CMD_RS, 0, 0, 0);
	}
	wr(TDT, FRAMES);
	CHECK_EQ(rd(TDH), E1000_TX_BUDGET);
	for (int i = 0; i < 100; i++) {		/* the timer goes on... */
		run_timers();
		sleep_ms(2);
	}
	held = rd(TDH);				/* ...until the backend is full */
	CHECK(held >= E1000_TX_BUDGET);
	CHECK(held < FRAMES);
	run_timers();
	sleep_ms(50);
	CHECK_EQ(rd(TDH), held);
	for (int spins = 0; got < FRAMES && spins < 3000; spins++) {
		struct pollfd p = { .fd = peer, .events = POLLIN };

		run_timers();
		if (poll(&p, 1, 10) != 1)
			continue;
		if (recv(peer, back, sizeof(back), 0) != sizeof(f))
			break;
		CHECK_EQ(be32(back + 20), got);
		if (be32(back + 20) != got)
			break;
		got++;
	}
	CHECK_EQ(got, FRAMES);
	CHECK(wait_reg(TDH, FRAMES));
	CHECK(peer_quiet(20));
	teardown();
}

/* Receive, as Linux sets it up: 2048-byte buffers, the FCS kept. */
static void test_rx(void)
{
	uint8_t f[1514];
	uint8_t *b;
	uint32_t fcs;

	setup();
	rx_setup(8, RCTL_BAM, 2048);
	wr(IMS, ICR_RXT0);
	memcpy(f, our_mac, 6);
	memcpy(f + 6, peer_mac, 6);
	put16(f + 12, 0x0800);
	for (unsigned i = 14; i < sizeof(f); i++)
		f[i] = (uint8_t)i;
	CHECK_EQ(send(peer, f, sizeof(f), 0), (ssize_t)sizeof(f));
	CHECK(wait_reg(RDH, 1));
	CHECK_EQ(rxd_len(0), sizeof(f) + 4);
	CHECK_EQ(rxd(0)[12], 0x07);		/* DD EOP IXSM */
	b = gpa(RX_BUFS, 2048);
	CHECK(memcmp(b, f, sizeof(f)) == 0);
	fcs = (uint32_t)crc32(0L, f, sizeof(f));
	CHECK(memcmp(b + sizeof(f), &fcs, 4) == 0);
	CHECK_EQ(irq(), 1);
	CHECK_EQ(rd(ICR) & ICR_RXT0, ICR_RXT0);
	CHECK_EQ(irq(), 0);
	/* A short broadcast is padded to 60 (+ FCS); SECRC drops the FCS. */
	wr(RCTL, rd(RCTL) | RCTL_SECRC);
	memset(f, 0xff, 6);
	CHECK_EQ(send(peer, f, 42, 0), 42);
	CHECK(wait_reg(RDH, 2));
	CHECK_EQ(rxd_len(1), 60);
	b = gpa(RX_BUFS + 2048, 60);
	CHECK(memcmp(b, f, 42) == 0);
	CHECK_EQ(b[59], 0);
	CHECK_EQ(rd(GPRC), 2);
	CHECK_EQ(rd(TPR), 2);
	CHECK(rd(GORCL) == 1518 + 64);
	CHECK_EQ(rd(GORCH), 0);
	teardown();
}

/* A frame over several descriptors; a tag stripped into the descriptor. */
static void test_rx_multi(void)
{
	uint8_t f[1000];

	setup();
	rx_setup(16, RCTL_SZ_256, 256);
	memcpy(f, our_mac, 6);
	memcpy(f + 6, peer_mac, 6);
	for (unsigned i = 12; i < sizeof(f); i++)
		f[i] = (uint8_t)(i * 3);
	CHECK_EQ(send(peer, f, sizeof(f), 0), (ssize_t)sizeof(f));
	CHECK(wait_reg(RDH, 4));		/* 1004 bytes: 256 x 3 + 236 */
	for (unsigned i = 0; i < 4; i++) {
		CHECK_EQ(rxd_len(i), i < 3 ? 256 : 236);
		CHECK_EQ(rxd(i)[12] & 3, i < 3 ? 1 : 3);
		CHECK(memcmp(gpa(RX_BUFS + 256ull * i, 256), f + 256 * i,
			     i < 3 ? 256 : 1000 - 768) == 0);
	}
	/* With CTRL.VME the 802.1Q tag goes into the descriptor (VP). */
	wr(CTRL, rd(CTRL) | CTRL_VME);
	put16(f + 12, 0x8100);
	put16(f + 14, 0x6007);
	put16(f + 16, 0x0800);
	CHECK_EQ(send(peer, f, 100, 0), 100);
	CHECK(wait_reg(RDH, 5));
	CHECK_EQ(rxd_len(4), 96 + 4);
	CHECK_EQ(rxd(4)[12], 0x0f);		/* DD EOP IXSM VP */
	CHECK_EQ(rxd(4)[14] | rxd(4)[15] << 8, 0x6007);
	CHECK(memcmp(gpa(RX_BUFS + 256ull * 4, 100), f, 12) == 0);
	CHECK(memcmp(gpa(RX_BUFS + 256ull * 4 + 12, 84), f + 16, 84) == 0);
	teardown();
}

/* Address filters, synchronously through e1000_receive_frame(). */
static unsigned rx_one(const uint8_t *da, uint16_t type, uint16_t tci)
{
	uint8_t f[64] = { 0 };
	uint32_t before = rd(RDH);

	memcpy(f, da, 6);
	memcpy(f + 6, peer_mac, 6);
	put16(f + 12, type);
	put16(f + 14, tci);
	pthread_mutex_lock(&lock);
	CHECK_EQ(e1000_receive_frame(nic, f, sizeof(f)), sizeof(f));
	pthread_mutex_unlock(&lock);
	return rd(RDH) != before;
}

static void test_rx_filter(void)
{
	static const uint8_t other[6] = { 0x52, 0x54, 0, 0, 0, 9 };
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	static const uint8_t mcast[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb };
	unsigned h = (mcast[4] >> 4 | mcast[5] << 4) & 0xfff;

	setup();
	rx_setup(64, 0, 2048);
	CHECK(rx_one(our_mac, 0x0800, 0));
	CHECK(!rx_one(other, 0x0800, 0));
	CHECK(!rx_one(bcast, 0x0800, 0));
	wr(RCTL, rd(RCTL) | RCTL_BAM);
	CHECK(rx_one(bcast, 0x0800, 0));
	CHECK(!rx_one(mcast, 0x0800, 0));
	wr(MTA + 4 * (h >> 5), 1u << (h & 31));	/* hash, RCTL.MO 0 */
	CHECK(rx_one(mcast, 0x0800, 0));
	wr(MTA + 4 * (h >> 5), 0);
	CHECK(!rx_one(mcast, 0x0800, 0));
	wr(RCTL, rd(RCTL) | RCTL_MPE);
	CHECK(rx_one(mcast, 0x0800, 0));
	CHECK(!rx_one(other, 0x0800, 0));
	/* An exact filter, RAR[1] (Linux puts unicast and multicast there). */
	wr(RA + 8, 0x00005452);
	wr(RA + 12, 0x80000900);
	CHECK(rx_one(other, 0x0800, 0));
	wr(RA + 12, 0x00000900);		/* AV clear */
	CHECK(!rx_one(other, 0x0800, 0));
	wr(RCTL, rd(RCTL) | RCTL_UPE);
	CHECK(rx_one(other, 0x0800, 0));
	/* VLAN filter: tagged frames need their VID in VFTA. */
	wr(RCTL, rd(RCTL) | RCTL_VFE);
	CHECK(!rx_one(our_mac, 0x8100, 5));
	wr(VFTA, 1u << 5);
	CHECK(rx_one(our_mac, 0x8100, 5));
	CHECK(rx_one(our_mac, 0x0800, 0));	/* untagged: not filtered */
	/* Receiver off: dropped. */
	wr(RCTL, 0);
	CHECK(!rx_one(our_mac, 0x0800, 0));
	teardown();
}

/* No descriptors: the frame waits in the backend until RDT moves. */
static void test_rx_no_buffers(void)
{
	uint8_t f[100] = { 0 };

	setup();
	rx_setup(8, 0, 2048);
	wr(RDT, 0);				/* take the buffers back */
	memcpy(f, our_mac, 6);
	f[20] = 0x42;
	CHECK_EQ(send(peer, f, sizeof(f), 0), (ssize_t)sizeof(f));
	f[20] = 0x43;
	CHECK_EQ(send(peer, f, sizeof(f), 0), (ssize_t)sizeof(f));
	sleep_ms(100);
	CHECK_EQ(rd(RDH), 0);
	CHECK(rd(0x40a0) > 0);			/* RNBC */
	wr(RDT, 1);				/* room for one */
	CHECK(wait_reg(RDH, 1));
	CHECK_EQ(*(uint8_t *)gpa(RX_BUFS + 20, 1), 0x42);
	sleep_ms(50);
	CHECK_EQ(rd(RDH), 1);
	wr(RDT, 5);
	CHECK(wait_reg(RDH, 2));
	CHECK_EQ(*(uint8_t *)gpa(RX_BUFS + 2048 + 20, 1), 0x43);
	/* The minimum threshold: few descriptors left raises RXDMT0. */
	CHECK(rd(ICR) & ICR_RXDMT0);
	teardown();
}

static void test_interrupts(void)
{
	setup();
	rd(ICR);
	wr(ICS, ICR_RXT0 | ICR_TXDW);
	CHECK_EQ(irq(), 0);			/* masked */
	wr(IMS, ICR_TXDW);
	CHECK_EQ(rd(IMS), ICR_TXDW);
	CHECK_EQ(irq(), 1);
	wr(IMC, ICR_TXDW);
	CHECK_EQ(irq(), 0);
	wr(IMS, ICR_RXT0);
	CHECK_EQ(irq(), 1);
	CHECK_EQ(rd(ICR), ICR_RXT0 | ICR_TXDW);
	CHECK_EQ(irq(), 0);
	CHECK_EQ(rd(ICR), 0);
	/* Writing ICR clears the bits written. */
	wr(ICS, ICR_RXT0 | ICR_LSC);
	wr(ICR, ICR_RXT0);
	CHECK_EQ(irq(), 0);
	CHECK_EQ(rd(ICR), ICR_LSC);
	/* PCI INTx disable masks the pin. */
	wr(ICS, ICR_RXT0);
	CHECK_EQ(irq(), 1);
	cfg_wr(DEVFN, PCI_COMMAND, 2, 7 | PCI_COMMAND_INTX_DISABLE);
	CHECK_EQ(irq(), 0);
	cfg_wr(DEVFN, PCI_COMMAND, 2, 7);
	CHECK_EQ(irq(), 1);
	rd(ICR);

	/* ITR: 100 x 256 ns between assertions, on the virtual clock. */
	fc.mono_ns += 1000000;
	wr(ITR, 100);
	wr(ICS, ICR_RXT0);
	CHECK_EQ(irq(), 1);			/* none for long: at once */
	rd(ICR);
	fc.mono_ns += 10000;
	wr(ICS, ICR_RXT0);
	CHECK_EQ(irq(), 0);			/* held back */
	fc.mono_ns += 15000;
	run_timers();
	CHECK_EQ(irq(), 0);			/* 25 us < 25.6 us */
	fc.mono_ns += 600;
	run_timers();
	CHECK_EQ(irq(), 1);
	rd(ICR);
	/* A cause cleared while held back: nothing comes. */
	wr(ICS, ICR_RXT0);
	rd(ICR);
	fc.mono_ns += 30000;
	run_timers();
	CHECK_EQ(irq(), 0);
	/* ITR 0: no throttling. */
	wr(ITR, 0);
	wr(ICS, ICR_RXT0);
	CHECK_EQ(irq(), 1);
	rd(ICR);
	wr(ICS, ICR_RXT0);
	CHECK_EQ(irq(), 1);
	teardown();
}

static void test_link(void)
{
	setup();
	rd(ICR);
	wr(IMS, ICR_LSC);
	net_set_link(nd, false);		/* takes the device lock */
	CHECK(!(rd(STATUS) & 2));
	CHECK(!(phy_rd(1) & 4));
	CHECK_EQ(phy_rd(17) & 0x0400, 0);
	CHECK_EQ(irq(), 1);
	CHECK_EQ(rd(ICR), ICR_LSC);
	CHECK_EQ(irq(), 0);
	net_set_link(nd, true);
	CHECK(rd(STATUS) & 2);
	CHECK(phy_rd(1) & 4);
	CHECK_EQ(rd(ICR), ICR_LSC);
	/* Linux's e1000_up() fires an LSC itself to start its watchdog. */
	wr(ICS, ICR_LSC);
	CHECK_EQ(rd(ICR), ICR_LSC);
	teardown();
}

static void test_reset(void)
{
	setup();
	rx_setup(8, RCTL_BAM, 2048);
	wr(IMS, ICR_RXT0);
	wr(ICS, ICR_RXT0);
	CHECK_EQ(irq(), 1);
	wr(RA, 0x11223344);
	/* Linux resets through the I/O window: these parts cannot ack it. */
	pthread_mutex_lock(&lock);
	io_write(pio, IO_BASE, CTRL, 4);
	io_write(pio, IO_BASE + 4, CTRL_RST, 4);
	pthread_mutex_unlock(&lock);
	CHECK_EQ(irq(), 0);
	CHECK_EQ(rd(IMS), 0);
	CHECK_EQ(rd(ICR), 0);
	CHECK_EQ(rd(RCTL), 0);
	CHECK_EQ(rd(RDLEN), 0);
	CHECK_EQ(rd(CTRL) & CTRL_RST, 0);
	CHECK_EQ(rd(RA), 0x12005452u);
	CHECK_EQ(rd(VET), 0x8100);
	teardown();
}

/* A hostile driver: nothing crashes, nothing outside RAM is touched. */
static void test_hostile(void)
{
	uint8_t f[128] = { 0 }, back[2048];
	uint64_t a;

	setup();
	memcpy(f, peer_mac, 6);
	a = buf_put(f, sizeof(f));

	/* Lengths keep their 128-byte granularity; indices 16 bits. */
	wr(TDLEN, 1000);
	CHECK_EQ(rd(TDLEN), 896);
	wr(RDLEN, 0xffffffff);
	CHECK_EQ(rd(RDLEN), 0xfff80);
	wr(TDT, 0x12345);
	CHECK_EQ(rd(TDT), 0x2345);

	/* A ring outside RAM, or past its end: nothing moves. */
	tx_setup(16);
	txd_legacy(0, a, sizeof(f), CMD_EOP | CMD_RS, 0, 0, 0);
	wr(TDBAL, 0xf0000000);
	wr(TDT, 1);
	CHECK_EQ(rd(TDH), 0);
	wr(TDBAL, (uint32_t)(RAM_SIZE - 1024));	/* 256 bytes over the end */
	wr(TDLEN, 1280);
	wr(TDT, 1);
	CHECK_EQ(rd(TDH), 0);
	wr(TDBAL, (uint32_t)TX_RING);
	wr(TDLEN, 256);
	wr(TDT, 200);				/* tail past the ring */
	CHECK_EQ(rd(TDH), 0);
	wr(TDH, 300);				/* head past the ring */
	wr(TDT, 1);
	CHECK_EQ(rd(TDH), 300);
	wr(TDLEN, 0);				/* no ring at all */
	wr(TDH, 0);
	wr(TDT, 1);
	CHECK_EQ(rd(TDH), 0);
	CHECK(peer_quiet(20));

	/* A ring full of descriptors without EOP: it waits, bounded. */
	wr(TDLEN, 256);
	for (unsigned i = 0; i < 16; i++)
		txd_legacy(i, a, 8, CMD_RS, 0, 0, 0);
	wr(TDT, 15);
	CHECK_EQ(rd(TDH), 0);
	CHECK(peer_quiet(20));

	/* A buffer outside RAM: dropped, but the descriptor completes. */
	tx_setup(16);
	txd_legacy(0, 0x7ffffff00000ull, 100, CMD_EOP | CMD_RS, 0, 0, 0);
	txd_legacy(1, a, sizeof(f), CMD_EOP | CMD_RS, 0, 0, 0);
	wr(TDT, 2);
	CHECK_EQ(peer_recv(back, sizeof(back)), sizeof(f));
	CHECK_EQ(rd(TDH), 2);
	CHECK_EQ(txd(0)[12] & 1, 1);

	/* A context descriptor inside a packet drops the packet. */
	txd_legacy(2, a, 64, CMD_RS, 0, 0, 0);
	txd_context(3, 0, 0, 0, 0, 0, 0, 0, CMD_RS, 0, 0);
	txd_legacy(4, a, sizeof(f), CMD_EOP | CMD_RS, 0, 0, 0);
	wr(TDT, 5);
	CHECK_EQ(peer_recv(back, sizeof(back)), sizeof(f));
	CHECK_EQ(rd(TDH), 5);
	CHECK(peer_quiet(20));

	/* TSO with MSS 0 or a header longer than the packet: dropped. */
	txd_context(5, 14, 24, 33, 34, 50, 0, 100, TUCMD_TCP | TUCMD_IP | TUCMD_TSE, 54, 0);
	txd_data(6, a, sizeof(f), CMD_TSE | CMD_EOP | CMD_RS, POPTS_TXSM, 0);
	txd_context(7, 14, 24, 33, 34, 50, 0, 100, TUCMD_TCP | TUCMD_IP | TUCMD_TSE, 200, 10);
	txd_data(8, a, sizeof(f), CMD_TSE | CMD_EOP | CMD_RS, POPTS_TXSM, 0);
	/* Checksum offsets past the packet: sent unchanged. */
	txd_context(9, 200, 250, 0, 120, 127, 0, 0, TUCMD_TCP, 0, 0);
	txd_data(10, a, sizeof(f), CMD_EOP | CMD_RS, POPTS_TXSM | POPTS_IXSM, 0);
	wr(TDT, 11);
	CHECK_EQ(peer_recv(back, sizeof(back)), sizeof(f));
	CHECK(memcmp(back, f, sizeof(f)) == 0);
	CHECK_EQ(rd(TDH), 11);
	CHECK(peer_quiet(20));

	/* Receive: a ring outside RAM drops, a buffer outside RAM loses
	 * the data but completes the descriptor. */
	rx_setup(8, RCTL_UPE, 2048);
	wr(RDBAL, 0xf0000000);
	CHECK(!rx_one(our_mac, 0x0800, 0));
	wr(RDBAL, (uint32_t)RX_RING);
	wr(RDT, 300);
	CHECK(!rx_one(our_mac, 0x0800, 0));
	wr(RDT, 7);
	memset(rxd(0), 0xff, 8);
	CHECK(rx_one(our_mac, 0x0800, 0));
	CHECK_EQ(rxd(0)[12] & 1, 1);
	/* A frame no ring of this size can hold is dropped, not held. */
	rx_setup(8, RCTL_UPE | RCTL_LPE | RCTL_SZ_256, 256);
	{
		static uint8_t big[4000];

		memcpy(big, our_mac, 6);
		pthread_mutex_lock(&lock);
		CHECK_EQ(e1000_receive_frame(nic, big, sizeof(big)), sizeof(big));
		pthread_mutex_unlock(&lock);
	}
	CHECK_EQ(rd(RDH), 0);
	/* Without RCTL.LPE a frame over 1522 bytes is dropped. */
	wr(RCTL, rd(RCTL) & ~RCTL_LPE);
	memset(back, 0, sizeof(back));
	memcpy(back, our_mac, 6);
	pthread_mutex_lock(&lock);
	CHECK_EQ(e1000_receive_frame(nic, back, 1519), 1519);
	pthread_mutex_unlock(&lock);
	CHECK_EQ(rd(RDH), 0);
	teardown();
}

/* Save a NIC in a busy state, load it into a fresh one: the same bytes. */
static void test_save_load(void)
{
	const struct device_ops *ops = &e1000_device_ops;
	struct netdev *nd2;
	struct e1000 *nic2;
	GVariant *s1, *s2;
	char err[256] = "";
	int peer2;
	uint32_t eecd;

	setup();
	CHECK(strcmp(ops->name, "e1000") == 0);
	rx_setup(8, RCTL_BAM, 2048);
	tx_setup(16);
	CHECK(rx_one(our_mac, 0x0800, 0));
	wr(MTA + 8, 0xdeadbeef);
	wr(VFTA + 12, 0x10);
	wr(RA + 16, 0x01020304);
	wr(RA + 20, 0x80000506);
	txd_context(0, 14, 24, 33, 34, 50, 0, 1234, TUCMD_TCP | TUCMD_IP, 54, 1448);
	wr(TDT, 1);
	mdic(1, 1, 4, 0x0de1, false);
	wr(ITR, 200);
	wr(IMS, ICR_RXT0 | ICR_LSC);
	wr(ICS, ICR_RXT0 | ICR_TXQE);
	CHECK_EQ(irq(), 1);
	/* The EEPROM port in the middle of a command. */
	eecd = 0x42;
	wr(EECD, eecd);
	ee_clock_out(&eecd, 1);
	ee_clock_out(&eecd, 1);
	pthread_mutex_lock(&lock);
	io_write(pio, IO_BASE, TDT, 4);
	s1 = g_variant_ref_sink(ops->save(nic));
	pthread_mutex_unlock(&lock);
	CHECK(g_variant_is_of_type(s1, G_VARIANT_TYPE(E1000_STATE_TYPE)));
	{
		GVariant *regs = g_variant_get_child_value(s1, 0);

		CHECK_EQ(g_variant_n_children(regs), E1000_STATE_NREGS);
		g_variant_unref(regs);
	}

	nd2 = make_backend(&peer2);
	nic2 = make_nic(DEVFN2, nd2, MMIO_BASE2);
	pthread_mutex_lock(&lock);
	CHECK_EQ(ops->load(nic2, 1, s1, err, sizeof(err)), 0);
	s2 = g_variant_ref_sink(ops->save(nic2));
	CHECK_EQ(pirq_level[(4 + 1 - 1) & 3], 1);	/* INTA# re-driven */
	pthread_mutex_unlock(&lock);
	CHECK(g_variant_equal(s1, s2));
	if (!g_variant_equal(s1, s2)) {
		gchar *a = g_variant_print(s1, FALSE), *b = g_variant_print(s2, FALSE);

		fprintf(stderr, "  saved  %s\n  loaded %s\n", a, b);
		g_free(a);
		g_free(b);
	}
	/* The loaded NIC goes on where the first was: the EEPROM read. */
	pthread_mutex_lock(&lock);
	{
		uint32_t v;

		bus_write(mmio, MMIO_BASE2 + EERD, 2u << 8 | 1, 4, NULL);
		v = (uint32_t)bus_read(mmio, MMIO_BASE2 + EERD, 4, NULL);
		CHECK_EQ(v >> 16, 0x5634);
		CHECK_EQ((uint32_t)bus_read(mmio, MMIO_BASE2 + 0x5208, 4, NULL),
			 0xdeadbeef);
	}

	/* Refusals: one line naming the device, nothing changed. */
	state_refused(ops, nic2, 2, g_variant_ref(s1), "e1000: state version 2");
	state_refused(ops, nic2, 1, g_variant_new("(u)", 1), "e1000: state is of type");
	state_refused(ops, nic2, 1,		/* RDLEN not in 128-byte units */
		      state_with(s1, g_variant_new_uint32(1000), 2, 0, 24),
		      "e1000: register 0x2808");
	state_refused(ops, nic2, 1,		/* ICR bit 8 does not exist */
		      state_with(s1, g_variant_new_uint32(0x100), 2, 0, 9),
		      "e1000: register 0x00c0");
	state_refused(ops, nic2, 1,		/* a computed PHY register */
		      state_with(s1, g_variant_new_uint16(1), 2, 1, 1),
		      "e1000: PHY register 1");
	state_refused(ops, nic2, 1,
		      state_with(s1, g_variant_new_fixed_array(G_VARIANT_TYPE_UINT16,
				 NULL, 0, 2), 1, 2), "e1000: 397 registers");
	state_refused(ops, nic2, 1,		/* EEPROM word 64 */
		      state_with(s1, g_variant_new_uint16(64), 2, 3, 4),
		      "e1000: EEPROM port");
	{					/* INTA# without a cause */
		GVariant *no_icr = state_with(s1, g_variant_new_uint32(0), 2, 0, 9);

		state_refused(ops, nic2, 1,
			      state_with(no_icr, g_variant_new_boolean(TRUE), 1, 6),
			      "e1000: INTA# asserted");
		g_variant_unref(no_icr);
	}
	state_refused(ops, nic2, 1,
		      state_with(s1, g_variant_new_uint32(3), 1, 9),
		      "e1000: IOADDR");
	pthread_mutex_unlock(&lock);

	pthread_mutex_lock(&lock);
	e1000_free(nic2);
	pthread_mutex_unlock(&lock);
	net_free(nd2);
	close(peer2);
	g_variant_unref(s1);
	g_variant_unref(s2);
	teardown();
}

int main(void)
{
	sandbox_test_threads(false);
	log_set_level(LOG_ERROR);	/* the hostile tests warn */
	RUN_TEST(test_pci);
	RUN_TEST(test_eeprom);
	RUN_TEST(test_phy);
	RUN_TEST(test_tx_legacy);
	RUN_TEST(test_tx_offload);
	RUN_TEST(test_tx_tso);
	RUN_TEST(test_tx_tso_gso);
	RUN_TEST(test_tx_flow_control);
	RUN_TEST(test_rx);
	RUN_TEST(test_rx_multi);
	RUN_TEST(test_rx_filter);
	RUN_TEST(test_rx_no_buffers);
	RUN_TEST(test_interrupts);
	RUN_TEST(test_link);
	RUN_TEST(test_reset);
	RUN_TEST(test_hostile);
	RUN_TEST(test_save_load);
	return check_finish();
}
