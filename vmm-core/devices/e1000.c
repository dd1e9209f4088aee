/* SPDX-License-Identifier: MIT */
/*
 * The Intel 82540EM gigabit Ethernet controller (e1000.h): its registers
 * (8254x SDM §13), the Microwire EEPROM (§5), the M88E1011 PHY behind MDIC,
 * the receive and transmit descriptor rings (§3.2-§3.4), transmit checksum
 * and TCP segmentation offload done in software (§3.3.6-§3.3.7, §3.5) or,
 * for TCP segments on a backend with offloads (TAP), handed to the host's
 * stack whole as one GSO frame, and its save and load.
 *
 * Everything runs with the device lock held: register accesses (vCPU
 * threads), the backend's callbacks (its thread), the timers (the timer
 * thread).  Guest memory is only reached through gpa_to_hva() and
 * guest_mem_read()/guest_mem_write(), which check every range.
 */
#include "../net/csum.h"
#include "e1000.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <zlib.h>

#include "../bus.h"
#include "../log.h"
#include "../mem.h"
#include "../net/net.h"
#include "../timer.h"
#include "pci.h"

/* ---- registers (SDM table 13-2) ------------------------------------------ */

#define CTRL		0x0000
#define STATUS		0x0008
#define EECD		0x0010
#define EERD		0x0014
#define CTRL_EXT	0x0018
#define MDIC		0x0020
#define FCAL		0x0028
#define FCAH		0x002c
#define FCT		0x0030
#define VET		0x0038
#define ICR		0x00c0
#define ITR		0x00c4
#define ICS		0x00c8
#define IMS		0x00d0
#define IMC		0x00d8
#define RCTL		0x0100
#define FCTTV		0x0170
#define TXCW		0x0178
#define TCTL		0x0400
#define TIPG		0x0410
#define AIT		0x0458
#define LEDCTL		0x0e00
#define PBA		0x1000
#define FCRTL		0x2160
#define FCRTH		0x2168
#define RDBAL		0x2800	/* RDBAH +4, RDLEN +8, RDH +0x10, RDT +0x18 */
#define RDBAH		0x2804
#define RDLEN		0x2808
#define RDH		0x2810
#define RDT		0x2818
#define RDTR		0x2820
#define RXDCTL		0x2828
#define RADV		0x282c
#define RSRPD		0x2c00
#define TDBAL		0x3800	/* same layout as the receive ring's */
#define TDBAH		0x3804
#define TDLEN		0x3808
#define TDH		0x3810
#define TDT		0x3818
#define TIDV		0x3820
#define TXDCTL		0x3828
#define TADV		0x382c
#define TSPMT		0x3830
#define STATS		0x4000	/* 64 counters, SDM §13.7 */
#define RXCSUM		0x5000
#define MTA		0x5200	/* 128 words */
#define RA		0x5400	/* 16 x (RAL, RAH) */
#define VFTA		0x5600	/* 128 words */
#define WUC		0x5800
#define WUFC		0x5808
#define WUS		0x5810
#define MANC		0x5820
#define REG_WORDS	(MANC / 4 + 1)

/* Statistics counters we count (the rest read 0). */
#define RNBC		0x40a0
#define ROC		0x40ac
#define PRC64		0x405c	/* PRC64..PRC1522: 6 consecutive words */
#define GPRC		0x4074
#define BPRC		0x4078
#define MPRC		0x407c
#define GPTC		0x4080
#define GORCL		0x4088
#define GOTCL		0x4090
#define TORL		0x40c0
#define TOTL		0x40c8
#define TPR		0x40d0
#define TPT		0x40d4
#define PTC64		0x40d8	/* PTC64..PTC1522 */
#define MPTC		0x40f0
#define BPTC		0x40f4
#define TSCTC		0x40f8

#define CTRL_FD		0x00000001u
#define CTRL_SLU	0x00000040u
#define CTRL_SPD_1000	0x00000200u
#define CTRL_RST	0x04000000u
#define CTRL_VME	0x40000000u
#define CTRL_PHY_RST	0x80000000u
#define CTRL_WMASK	0xd8fc1be9u	/* all but RST and reserved bits */

#define STATUS_FD	0x00000001u
#define STATUS_LU	0x00000002u
#define STATUS_SPEED_1000 0x00000080u
#define STATUS_ASDV_1000 0x00000200u

#define EECD_SK		0x001u
#define EECD_CS		0x002u
#define EECD_DI		0x004u
#define EECD_DO		0x008u
#define EECD_REQ	0x040u
#define EECD_GNT	0x080u
#define EECD_PRES	0x100u
#define EECD_WMASK	0x077u		/* SK, CS, DI, FWE, REQ */

#define EERD_START	0x00000001u
#define EERD_DONE	0x00000010u
#define EERD_VALID	0xffffff11u

#define CTRL_EXT_EE_RST	0x00002000u

#define MDIC_DATA	0x0000ffffu
#define MDIC_OP_WRITE	1u
#define MDIC_OP_READ	2u
#define MDIC_READY	0x10000000u
#define MDIC_I		0x20000000u
#define MDIC_E		0x40000000u
#define PHY_ADDR	1

#define ICR_TXDW	0x00000001u
#define ICR_TXQE	0x00000002u
#define ICR_LSC		0x00000004u
#define ICR_RXDMT0	0x00000010u
#define ICR_RXT0	0x00000080u
#define ICR_MDAC	0x00000200u
#define ICR_VALID	0x0001fedfu

#define RCTL_EN		0x00000002u
#define RCTL_UPE	0x00000008u
#define RCTL_MPE	0x00000010u
#define RCTL_LPE	0x00000020u
#define RCTL_BAM	0x00008000u
#define RCTL_VFE	0x00040000u
#define RCTL_BSEX	0x02000000u
#define RCTL_SECRC	0x04000000u
#define RCTL_WMASK	0x06dfb3feu

#define TCTL_EN		0x00000002u
#define TCTL_PSP	0x00000008u
#define TCTL_WMASK	0x033ffffau

#define RAH_AV		0x80000000u
#define RAH_WMASK	0x8003ffffu

#define ALL		0xffffffffu

/* Descriptors (SDM §3.2, §3.3: legacy, context §3.3.6, data §3.3.7): 16
 * bytes. */
#define DESC		16
#define TXD_CMD_EOP	0x01
#define TXD_CMD_IC	0x04	/* legacy: insert checksum */
#define TXD_CMD_TSE	0x04	/* data descriptor: TCP segmentation */
#define TXD_CMD_RS	0x08
#define TXD_CMD_DEXT	0x20
#define TXD_CMD_VLE	0x40
#define TXD_DTYP_C	0x0	/* context */
#define TXD_DTYP_D	0x1	/* data */
#define TXD_STA_DD	0x01
#define TXD_POPTS_IXSM	0x01
#define TXD_POPTS_TXSM	0x02
#define TUCMD_TCP	0x01
#define TUCMD_IP	0x02
#define RXD_STA_DD	0x01
#define RXD_STA_EOP	0x02
#define RXD_STA_IXSM	0x04
#define RXD_STA_VP	0x08

/* PHY registers (IEEE 802.3 clause 22 and the M88E1011's). */
#define MII_BMCR	0
#define MII_BMSR	1
#define MII_CR_RESET	0x8000
#define MII_CR_POWER_DOWN 0x0800
#define MII_CR_RESTART_AN 0x0200
/* Registers the driver may write; the others are computed or absent. */
#define PHY_RW_MASK	0xff550291u	/* 0 4 7 9 16 18 20 22 24-31 */

#define TX_PKT_MAX	(65536 + 256)	/* a 64 KiB TSO payload + headers */
#define ETH_ZLEN	60
#define ETH_HLEN	14
#define FCS_LEN		4
#define NEVER		UINT64_MAX

/* ---- state ---------------------------------------------------------------- */

/* The EEPROM's Microwire port as software bit-bangs it through EECD. */
struct ee_port {
	bool reading;		/* shifting data out */
	bool ignoring;		/* a command other than READ: until CS drops */
	uint8_t bits;		/* command bits shifted in (start bit first) */
	uint16_t cmd;		/* start (bit 8), opcode (7:6), address (5:0) */
	uint16_t addr;		/* word being read */
	uint8_t out_bit;	/* next bit of it, MSB (0) first */
	bool dout;		/* DO */
};

/* The transmit context (SDM §3.3.6), as the last context descriptor set it. */
struct tx_ctx {
	uint8_t ipcss, ipcso;
	uint16_t ipcse;
	uint8_t tucss, tucso;
	uint16_t tucse;
	uint32_t paylen;
	uint8_t tucmd, hdrlen;
	uint16_t mss;
};

struct e1000 {
	struct pci_device pci;
	const struct guest_mem *mem;
	pthread_mutex_t *lock;
	struct vtimer_queue *timers;
	struct vtimer itr_timer;	/* a held-back assertion */
	struct vtimer tx_timer;		/* a transmit run out of budget */
	struct netdev *nd;
	uint8_t macaddr[6];

	uint32_t reg[REG_WORDS];
	uint16_t phy[E1000_PHY_REGS];
	uint16_t eeprom[E1000_EEPROM_WORDS];
	struct ee_port ee;
	struct tx_ctx ctx;
	uint32_t tso_sent;	/* segments of the packet at TDH sent */
	bool irq_level;		/* INTA# */
	bool link_up;		/* STATUS.LU */
	bool cable_up;		/* the backend's cable */
	uint64_t itr_last;	/* last assertion, virtual ns, or NEVER */
	uint32_t ioaddr;
	bool tx_blocked;	/* net_send said -EAGAIN: tx_ready owed */
	bool rx_waiting;	/* receive said 0: net_rx_ready owed */

	uint8_t txbuf[TX_PKT_MAX];
	uint8_t segbuf[TX_PKT_MAX];
	uint8_t rxbuf[NET_FRAME_MAX + FCS_LEN];
};

#define R(e, off)	((e)->reg[(off) / 4])

/* ---- byte order helpers ----------------------------------------------------- */

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_le32(const uint8_t *p)
{
	return get_le16(p) | (uint32_t)get_le16(p + 2) << 16;
}

static uint64_t get_le64(const uint8_t *p)
{
	return get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	put_le16(p, (uint16_t)v);
	put_le16(p + 2, (uint16_t)(v >> 16));
}

static uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)get_be16(p) << 16 | get_be16(p + 2);
}

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	put_be16(p, (uint16_t)(v >> 16));
	put_be16(p + 2, (uint16_t)v);
}

/* ---- the register table ------------------------------------------------- */

/* Registers that hold state: saved in this order, reset to @reset, stored
 * through @wmask on a plain write (0: the write has its own handler or is
 * ignored), refused on load with bits outside @vmask. */
struct reg_def {
	uint16_t off;
	uint16_t n;		/* consecutive words */
	uint32_t reset, wmask, vmask;
};

static const struct reg_def reg_defs[] = {
	{ CTRL, 1, CTRL_FD | CTRL_SLU | CTRL_SPD_1000, 0, CTRL_WMASK },
	{ EECD, 1, 0, 0, EECD_WMASK },
	{ EERD, 1, 0, 0, EERD_VALID },
	{ CTRL_EXT, 1, 0, ~CTRL_EXT_EE_RST, ~CTRL_EXT_EE_RST },
	{ MDIC, 1, 0, 0, ~0x80000000u },
	{ FCAL, 1, 0, ALL, ALL },
	{ FCAH, 1, 0, 0xffff, 0xffff },
	{ FCT, 1, 0, 0xffff, 0xffff },
	{ VET, 1, 0x8100, 0xffff, 0xffff },
	{ ICR, 1, 0, 0, ICR_VALID },
	{ ITR, 1, 0, 0, 0xffff },
	{ IMS, 1, 0, 0, ICR_VALID },
	{ RCTL, 1, 0, 0, RCTL_WMASK },
	{ FCTTV, 1, 0, 0xffff, 0xffff },
	{ TXCW, 1, 0, ALL, ALL },
	{ TCTL, 1, 0, 0, TCTL_WMASK },
	{ TIPG, 1, 0, 0x3fffffff, 0x3fffffff },
	{ AIT, 1, 0, 0xffff, 0xffff },
	{ LEDCTL, 1, 0x07068302, ALL, ALL },
	{ PBA, 1, 0x0030, 0xffff, 0xffff },	/* 48 KiB receive, 16 KiB transmit */
	{ FCRTL, 1, 0, 0x8000fff8, 0x8000fff8 },
	{ FCRTH, 1, 0, 0xfff8, 0xfff8 },
	{ RDBAL, 1, 0, 0xfffffff0, 0xfffffff0 },
	{ RDBAH, 1, 0, ALL, ALL },
	{ RDLEN, 1, 0, 0x000fff80, 0x000fff80 },
	{ RDH, 1, 0, 0xffff, 0xffff },
	{ RDT, 1, 0, 0, 0xffff },
	{ RDTR, 1, 0, 0xffff, 0xffff },
	{ RXDCTL, 1, 0x00010000, 0x013f3f3f, 0x013f3f3f },
	{ RADV, 1, 0, 0xffff, 0xffff },
	{ RSRPD, 1, 0, 0xfff, 0xfff },
	{ TDBAL, 1, 0, 0xfffffff0, 0xfffffff0 },
	{ TDBAH, 1, 0, ALL, ALL },
	{ TDLEN, 1, 0, 0x000fff80, 0x000fff80 },
	{ TDH, 1, 0, 0, 0xffff },
	{ TDT, 1, 0, 0, 0xffff },
	{ TIDV, 1, 0, 0xffff, 0xffff },
	{ TXDCTL, 1, 0x00010000, 0xff3f3f3f, 0xff3f3f3f },
	{ TADV, 1, 0, 0xffff, 0xffff },
	{ TSPMT, 1, 0x01000400, ALL, ALL },
	{ STATS, 64, 0, 0, ALL },
	{ RXCSUM, 1, 0x0300, 0x03ff, 0x03ff },
	{ MTA, 128, 0, ALL, ALL },
	{ RA, 32, 0, ALL, ALL },		/* RAH words: RAH_WMASK */
	{ VFTA, 128, 0, ALL, ALL },
	{ WUC, 1, 0, ALL, ALL },
	{ WUFC, 1, 0, ALL, ALL },
	{ WUS, 1, 0, ALL, ALL },
	{ MANC, 1, 0, ALL, ALL },
};

#define NDEFS (sizeof(reg_defs) / sizeof(reg_defs[0]))

/* The definition covering @off (4-byte aligned), or NULL. */
static const struct reg_def *reg_lookup(uint32_t off)
{
	size_t lo = 0, hi = NDEFS;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct reg_def *d = &reg_defs[mid];

		if (off < d->off)
			hi = mid;
		else if (off >= d->off + 4u * d->n)
			lo = mid + 1;
		else
			return d;
	}
	return NULL;
}

/* @d's write mask (@valid false) or load mask for its word at @off. */
static uint32_t reg_mask(const struct reg_def *d, uint32_t off, bool valid)
{
	if (d->off == RA && (off & 4))
		return RAH_WMASK;
	return valid ? d->vmask : d->wmask;
}

/* ---- interrupts (ICR, ITR, ICS, IMS, IMC: SDM §13.4) ------------------ */

static const struct vclock *clk(struct e1000 *e)
{
	return vtimer_queue_clock(e->timers);
}

/*
 * Drive INTA# from ICR & IMS.  An assertion comes no sooner than ITR x
 * 256 ns after the previous one (with timers): until then the ITR timer
 * holds it.  Deassertion is immediate.
 */
static void update_irq(struct e1000 *e)
{
	bool want = (R(e, ICR) & R(e, IMS)) != 0;
	uint64_t itr_ns = (uint64_t)(R(e, ITR) & 0xffff) * 256, now;

	if (!want) {
		vtimer_del(&e->itr_timer);
		if (e->irq_level) {
			e->irq_level = false;
			pci_set_irq(&e->pci, 0);
		}
		return;
	}
	if (e->irq_level)
		return;
	if (e->timers) {
		now = vclock_now(clk(e));
		if (itr_ns && e->itr_last != NEVER && now >= e->itr_last &&
		    now - e->itr_last < itr_ns) {
			vtimer_mod(&e->itr_timer, e->itr_last + itr_ns);
			return;
		}
		e->itr_last = now;
	}
	e->irq_level = true;
	pci_set_irq(&e->pci, 1);
}

static void set_cause(struct e1000 *e, uint32_t cause)
{
	R(e, ICR) |= cause & ICR_VALID;
	update_irq(e);
}

static void itr_fired(void *opaque, uint64_t now)
{
	update_irq(opaque);
}

/* ---- statistics (SDM §13.7) --------------------------------------------- */

static void stat_add(struct e1000 *e, uint32_t off, uint32_t n)
{
	uint32_t *c = &R(e, off);

	*c = *c > UINT32_MAX - n ? UINT32_MAX : *c + n;
}

static void stat_add64(struct e1000 *e, uint32_t lo, uint64_t n)
{
	uint64_t v = R(e, lo) | (uint64_t)R(e, lo + 4) << 32;

	v = v > UINT64_MAX - n ? UINT64_MAX : v + n;
	R(e, lo) = (uint32_t)v;
	R(e, lo + 4) = (uint32_t)(v >> 32);
}

/* The size bucket counters (64, 65-127, ..., 1024-1522 bytes on the wire). */
static void stat_size(struct e1000 *e, uint32_t base, size_t wire)
{
	static const size_t top[] = { 64, 127, 255, 511, 1023, 1522 };

	for (unsigned i = 0; i < 6; i++) {
		if (wire <= top[i]) {
			stat_add(e, base + 4 * i, 1);
			return;
		}
	}
}

static bool is_broadcast(const uint8_t *a)
{
	static const uint8_t ff[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

	return memcmp(a, ff, 6) == 0;
}

/* A good frame of @wire bytes (FCS included) to @da, received or sent. */
static void stat_frame(struct e1000 *e, bool rx, const uint8_t *da,
		       size_t wire)
{
	stat_add(e, rx ? GPRC : GPTC, 1);
	stat_add(e, rx ? TPR : TPT, 1);
	stat_add64(e, rx ? GORCL : GOTCL, wire);
	stat_add64(e, rx ? TORL : TOTL, wire);
	stat_size(e, rx ? PRC64 : PTC64, wire);
	if (is_broadcast(da))
		stat_add(e, rx ? BPRC : BPTC, 1);
	else if (da[0] & 1)
		stat_add(e, rx ? MPRC : MPTC, 1);
}

/* Read-to-clear; a 64-bit pair clears when its high word is read. */
static uint32_t stat_read(struct e1000 *e, uint32_t off)
{
	uint32_t v = R(e, off);

	switch (off) {
	case GORCL: case GOTCL: case TORL: case TOTL:
		return v;
	case GORCL + 4: case GOTCL + 4: case TORL + 4: case TOTL + 4:
		R(e, off - 4) = 0;
		break;
	}
	R(e, off) = 0;
	return v;
}

/* ---- EEPROM (SDM §5) ------------------------------------------------------- */

#define EE_CHECKSUM_WORD	0x3f
#define EE_SUM			0xbaba
#define EE_READ_OPCODE		2	/* Microwire: start bit, then 10b */

static void eeprom_build(struct e1000 *e)
{
	uint16_t *w = e->eeprom, sum = 0;

	memset(w, 0, sizeof(e->eeprom));
	for (unsigned i = 0; i < 3; i++)
		w[i] = (uint16_t)(e->macaddr[2 * i] | e->macaddr[2 * i + 1] << 8);
	w[0x04] = 0xffff;		/* LED settings: the driver's defaults */
	w[0x0b] = E1000_SUBSYS_ID;
	w[0x0c] = E1000_VENDOR_ID;	/* subsystem vendor */
	w[0x0d] = E1000_DEVICE_ID;
	w[0x0e] = E1000_VENDOR_ID;
	w[0x0f] = 0x3000;		/* symmetric and asymmetric pause */
	for (unsigned i = 0; i < EE_CHECKSUM_WORD; i++)
		sum = (uint16_t)(sum + w[i]);
	w[EE_CHECKSUM_WORD] = (uint16_t)(EE_SUM - sum);
}

/* Chip select low: the port forgets any command. */
static void ee_idle(struct ee_port *p)
{
	*p = (struct ee_port){ .dout = true };
}

/* A rising edge of SK with CS high: shift @di in, or the next bit out. */
static void ee_clock(struct e1000 *e, bool di)
{
	struct ee_port *p = &e->ee;

	if (p->reading) {
		p->dout = (e->eeprom[p->addr] >> (15 - p->out_bit)) & 1;
		if (++p->out_bit == 16) {
			p->out_bit = 0;
			p->addr = (p->addr + 1) % E1000_EEPROM_WORDS;
		}
		return;
	}
	if (p->ignoring || (!p->bits && !di))	/* waiting for the start bit */
		return;
	p->cmd = (uint16_t)(p->cmd << 1 | di);
	if (++p->bits < 9)
		return;
	if (((p->cmd >> 6) & 3) == EE_READ_OPCODE) {
		p->reading = true;
		p->addr = p->cmd & 0x3f;
		p->out_bit = 0;
		p->dout = false;		/* the dummy 0 before the data */
	} else {
		p->ignoring = true;		/* write-protected */
	}
}

static void eecd_write(struct e1000 *e, uint32_t v)
{
	uint32_t old = R(e, EECD);

	R(e, EECD) = v & EECD_WMASK;
	if (!(v & EECD_CS))
		ee_idle(&e->ee);
	else if ((v & EECD_SK) && !(old & EECD_SK))
		ee_clock(e, (v & EECD_DI) != 0);
}

static uint32_t eecd_read(struct e1000 *e)
{
	uint32_t v = R(e, EECD) | EECD_PRES;	/* SIZE 0: 64 words */

	if (e->ee.dout)
		v |= EECD_DO;
	if (v & EECD_REQ)
		v |= EECD_GNT;
	return v;
}

static void eerd_write(struct e1000 *e, uint32_t v)
{
	unsigned a = (v >> 8) & 0xff;
	uint16_t data;

	if (!(v & EERD_START)) {
		R(e, EERD) = v & 0xff00;
		return;
	}
	data = a < E1000_EEPROM_WORDS ? e->eeprom[a] : 0;
	R(e, EERD) = (uint32_t)data << 16 | a << 8 | EERD_DONE;
}

/* ---- PHY (M88E1011) ------------------------------------------------------ */

static void link_update(struct e1000 *e)
{
	bool up = e->cable_up && !(e->phy[MII_BMCR] & MII_CR_POWER_DOWN);

	if (up == e->link_up)
		return;
	e->link_up = up;
	set_cause(e, ICR_LSC);
}

static void phy_reset(struct e1000 *e)
{
	memset(e->phy, 0, sizeof(e->phy));
	e->phy[MII_BMCR] = 0x1140;	/* autonegotiation, full duplex, 1000 */
	e->phy[4] = 0x01e1;		/* advertise 10/100 half/full */
	e->phy[9] = 0x0300;		/* advertise 1000 half/full */
	e->phy[16] = 0x0068;		/* M88 specific control */
	e->phy[20] = 0x0c60;		/* M88 extended specific control */
	e->phy[24] = 0x4100;		/* LED control */
	link_update(e);
}

static uint16_t phy_read(struct e1000 *e, unsigned reg)
{
	bool up = e->link_up;

	switch (reg) {
	case MII_BMSR:	/* capabilities; link; autonegotiation complete */
		return up ? 0x796d : 0x7949;
	case 2:
		return 0x0141;		/* Marvell */
	case 3:
		return 0x0c20;		/* 88E1011, revision 0 */
	case 5:		/* link partner: 10/100 half/full, pause, ack */
		return up ? 0x45e1 : 0;
	case 6:
		return up ? 0x0001 : 0;
	case 10:	/* 1000BASE-T status: partner 1000 half/full, rx ok */
		return up ? 0x3c00 : 0;
	case 15:
		return 0x3000;		/* 1000BASE-T half/full capable */
	case 17:	/* M88 status: 1000, full duplex, resolved, link */
		return up ? 0xac00 : 0;
	default:
		return (PHY_RW_MASK >> reg) & 1 ? e->phy[reg] : 0;
	}
}

static void phy_write(struct e1000 *e, unsigned reg, uint16_t v)
{
	if (!((PHY_RW_MASK >> reg) & 1))
		return;
	if (reg == MII_BMCR) {
		/* Reset and restart clear themselves; autonegotiation
		 * completes at once. */
		e->phy[MII_BMCR] = v & (uint16_t)~(MII_CR_RESET | MII_CR_RESTART_AN);
		link_update(e);
		return;
	}
	e->phy[reg] = v;
}

static void mdic_write(struct e1000 *e, uint32_t v)
{
	unsigned reg = (v >> 16) & 31, addr = (v >> 21) & 31, op = (v >> 26) & 3;
	uint32_t r = v & 0x2fffffffu;

	if (addr != PHY_ADDR || (op != MDIC_OP_READ && op != MDIC_OP_WRITE))
		r |= MDIC_E;
	else if (op == MDIC_OP_READ)
		r = (r & ~MDIC_DATA) | phy_read(e, reg);
	else
		phy_write(e, reg, (uint16_t)v);
	R(e, MDIC) = r | MDIC_READY;
	if (v & MDIC_I)
		set_cause(e, ICR_MDAC);
}

/* ---- rings ---------------------------------------------------------------- */

struct ring {
	uint8_t *base;		/* descriptor 0 in host memory */
	uint32_t count;		/* descriptors */
	uint32_t head, tail;
};

/* Whether the guest lets the function master the bus (DMA). */
static bool dma_ok(struct e1000 *e)
{
	return (e->pci.config[PCI_COMMAND] & PCI_COMMAND_MASTER) != 0;
}

/* The ring whose registers start at @bal (RDBAL, TDBAL), if usable. */
static bool ring_get(struct e1000 *e, uint32_t bal, struct ring *r,
		     const char *what)
{
	uint64_t base = R(e, bal) | (uint64_t)R(e, bal + 4) << 32;
	uint32_t len = R(e, bal + 8);

	r->count = len / DESC;
	r->head = R(e, bal + 0x10);
	r->tail = R(e, bal + 0x18);
	if (!r->count)
		return false;
	if (r->head >= r->count || r->tail >= r->count) {
		vlog_ratelimited(LOG_WARN, "e1000: %s ring head %u or tail %u beyond its %u descriptors",
				 what, r->head, r->tail, r->count);
		return false;
	}
	r->base = gpa_to_hva(e->mem, base, len);
	if (!r->base) {
		vlog_ratelimited(LOG_WARN, "e1000: %s ring at 0x%llx (%u bytes) is not in RAM",
				 what, (unsigned long long)base, len);
		return false;
	}
	return true;
}

static void desc_read(const struct ring *r, uint32_t i, uint8_t d[DESC])
{
	memcpy(d, r->base + (size_t)i * DESC, DESC);
}

/* ---- checksums --------------------------------------------------------------- */

/*
 * The checksum offload (SDM §3.3.6): the one's complement sum of bytes
 * @css to @cse inclusive (0: to the end), plus @add, complemented and
 * stored big-endian at @cso.  The field's own content is in the sum: the
 * driver seeds it (the pseudo-header, or 0).  A UDP checksum of 0 goes
 * out as 0xffff.  Offsets outside the packet: nothing is stored.
 */
static void insert_csum(uint8_t *pkt, size_t len, unsigned css, unsigned cso,
			unsigned cse, uint32_t add, bool udp)
{
	size_t end = cse ? (size_t)cse + 1 : len;
	uint16_t v;

	if (end > len)
		end = len;
	if (css >= end || (size_t)cso + 2 > len) {
		vlog_ratelimited(LOG_WARN, "e1000: checksum start %u, offset %u, end %u outside a %zu-byte packet",
				 css, cso, cse, len);
		return;
	}
	v = (uint16_t)~net_csum_add(add, pkt + css, end - css);
	if (udp && v == 0)
		v = 0xffff;
	put_be16(pkt + cso, v);
}

/* ---- transmit (SDM §3.3, §3.4, §3.5) ------------------------------------ */

/* A packet gathered from the ring, its options from its first descriptor
 * (checksums, TSE) and its VLAN tag from its last, or its first with TSE
 * (SDM §3.3.7.1). */
struct tx_pkt {
	size_t len;		/* bytes in e->txbuf */
	uint32_t ndesc;
	bool bad;		/* a buffer outside RAM or too much data */
	bool ext;		/* data descriptors (else legacy) */
	uint8_t cmd, popts, cso, css;
	bool vle;
	uint16_t vlan;
};

static void tx_context(struct e1000 *e, const uint8_t *d)
{
	e->ctx = (struct tx_ctx){
		.ipcss = d[0], .ipcso = d[1], .ipcse = get_le16(d + 2),
		.tucss = d[4], .tucso = d[5], .tucse = get_le16(d + 6),
		.paylen = get_le32(d + 8) & 0xfffff, .tucmd = d[11],
		.hdrlen = d[13], .mss = get_le16(d + 14),
	};
}

/*
 * Gather the packet starting at the ring's head into e->txbuf.  Returns 1
 * with p->ndesc descriptors up to its EOP, 0 if the EOP is not before the
 * tail yet, -1 if a descriptor other than a data one (a context) comes
 * before it: the p->ndesc descriptors before it are a broken packet.
 */
static int tx_gather(struct e1000 *e, const struct ring *r, struct tx_pkt *p)
{
	uint32_t i = r->head;

	memset(p, 0, sizeof(*p));
	while (i != r->tail) {
		uint8_t d[DESC];
		bool ext;
		uint32_t len;

		desc_read(r, i, d);
		ext = d[11] & TXD_CMD_DEXT;
		if (ext && (d[10] >> 4) != TXD_DTYP_D)
			return -1;
		len = ext ? get_le32(d + 8) & 0xfffff : get_le16(d + 8);
		if (!p->ndesc) {
			p->ext = ext;
			p->cmd = d[11];
			p->popts = d[13];
			p->cso = d[10];
			p->css = d[13];
			p->vle = d[11] & TXD_CMD_VLE;
			p->vlan = get_le16(d + 14);
		}
		p->ndesc++;
		if (len && !p->bad) {
			if (p->len + len > TX_PKT_MAX) {
				vlog_ratelimited(LOG_WARN, "e1000: transmit packet over %u bytes dropped",
						 TX_PKT_MAX);
				p->bad = true;
			} else if (guest_mem_read(e->mem, get_le64(d),
						  e->txbuf + p->len, len)) {
				vlog_ratelimited(LOG_WARN, "e1000: transmit buffer 0x%llx (%u bytes) is not in RAM",
						 (unsigned long long)get_le64(d), len);
				p->bad = true;
			} else {
				p->len += len;
			}
		}
		if (d[11] & TXD_CMD_EOP) {
			if (!p->ext || !(p->cmd & TXD_CMD_TSE)) {
				p->vle = d[11] & TXD_CMD_VLE;
				p->vlan = get_le16(d + 14);
			}
			return 1;
		}
		i = (i + 1) % r->count;
	}
	return 0;
}

/* Hand @n descriptors at the head back: DD where RS asks.  Returns
 * whether a status was written. */
static bool tx_complete(struct e1000 *e, struct ring *r, uint32_t n)
{
	bool wb = false;

	__atomic_thread_fence(__ATOMIC_RELEASE);	/* data read before DD */
	for (uint32_t k = 0; k < n; k++) {
		volatile uint8_t *d = r->base + (size_t)r->head * DESC;

		if (d[11] & TXD_CMD_RS) {
			d[12] = (uint8_t)((d[12] & 0xf0) | TXD_STA_DD);
			wb = true;
		}
		r->head = (r->head + 1) % r->count;
	}
	R(e, TDH) = r->head;
	return wb;
}

/* Send one frame with the packet's VLAN tag and padding.  0 (sent, or
 * dropped as a wire without link drops it), -EAGAIN. */
static int tx_frame(struct e1000 *e, const struct tx_pkt *p,
		    const uint8_t *buf, size_t len)
{
	static const uint8_t zeros[ETH_ZLEN];
	uint8_t tag[4];
	struct iovec iov[4];
	size_t total = len;
	int n = 0, r;

	if (p->vle && (R(e, CTRL) & CTRL_VME)) {
		put_be16(tag, (uint16_t)R(e, VET));
		put_be16(tag + 2, p->vlan);
		iov[n++] = (struct iovec){ (void *)buf, 12 };
		iov[n++] = (struct iovec){ tag, 4 };
		iov[n++] = (struct iovec){ (void *)(buf + 12), len - 12 };
		total += 4;
	} else {
		iov[n++] = (struct iovec){ (void *)buf, len };
	}
	if ((R(e, TCTL) & TCTL_PSP) && total < ETH_ZLEN) {
		iov[n++] = (struct iovec){ (void *)zeros, ETH_ZLEN - total };
		total = ETH_ZLEN;
	}
	if (!e->nd || !e->link_up)
		return 0;
	r = net_send(e->nd, iov, n);
	if (r == -EAGAIN)
		return r;
	if (r == 0)
		stat_frame(e, false, buf, total + FCS_LEN);
	return 0;
}

/* The offloads of a packet sent whole. */
static void tx_offload(struct e1000 *e, const struct tx_pkt *p, uint8_t *pkt,
		       size_t len)
{
	const struct tx_ctx *c = &e->ctx;

	if (!p->ext) {
		if (p->cmd & TXD_CMD_IC)
			insert_csum(pkt, len, p->css, p->cso, 0, 0, false);
		return;
	}
	if (p->popts & TXD_POPTS_IXSM)
		insert_csum(pkt, len, c->ipcss, c->ipcso, c->ipcse, 0, false);
	if (p->popts & TXD_POPTS_TXSM)
		insert_csum(pkt, len, c->tucss, c->tucso, c->tucse, 0,
			    !(c->tucmd & TUCMD_TCP));
}

/* Fix the headers of segment @k of @nseg (@pay payload bytes at TCP
 * offset @off) in e->segbuf, as SDM §3.5.9 says; @seglen bytes. */
static void tso_fix(struct e1000 *e, size_t seglen, uint32_t k, uint32_t nseg,
		    size_t off, uint16_t ip_id, uint32_t seq)
{
	const struct tx_ctx *c = &e->ctx;
	uint8_t *s = e->segbuf;
	bool tcp = c->tucmd & TUCMD_TCP;

	if (c->tucmd & TUCMD_IP) {
		if ((size_t)c->ipcss + 6 <= c->hdrlen) {
			put_be16(s + c->ipcss + 2, (uint16_t)(seglen - c->ipcss));
			put_be16(s + c->ipcss + 4, (uint16_t)(ip_id + k));
		}
	} else if ((size_t)c->ipcss + 40 <= c->hdrlen) {
		put_be16(s + c->ipcss + 4, (uint16_t)(seglen - c->ipcss - 40));
	}
	if (tcp && (size_t)c->tucss + 14 <= c->hdrlen) {
		put_be32(s + c->tucss + 4, seq + (uint32_t)off);
		if (k + 1 < nseg)
			s[c->tucss + 13] &= (uint8_t)~0x09;	/* FIN, PSH */
	} else if (!tcp && (size_t)c->tucss + 8 <= c->hdrlen) {
		put_be16(s + c->tucss + 4, (uint16_t)(seglen - c->tucss));
	}
}

/*
 * TCP segmentation (SDM §3.5): MSS-sized frames, each with a copy of the
 * HDRLEN-byte header fixed up and its checksums; the TCP/UDP one gets the
 * segment's length added to the pseudo-header sum the driver seeded.
 * From segment e->tso_sent on.  0 when done (or the packet is dropped),
 * -EAGAIN, 1 when @frames reached the budget.
 */
static int tx_tso(struct e1000 *e, const struct tx_pkt *p, unsigned *frames)
{
	const struct tx_ctx *c = &e->ctx;
	size_t hdr = c->hdrlen, mss = c->mss, pay;
	uint32_t nseg, seq = 0;
	uint16_t ip_id = 0;

	if (!mss || hdr < ETH_HLEN || hdr > p->len) {
		vlog_ratelimited(LOG_WARN, "e1000: TSO header of %zu bytes, MSS %zu for a %zu-byte packet: dropped",
				 hdr, mss, p->len);
		(*frames)++;
		return 0;
	}
	pay = p->len - hdr;
	nseg = pay ? (uint32_t)((pay + mss - 1) / mss) : 1;
	if ((size_t)c->ipcss + 6 <= hdr)
		ip_id = get_be16(e->txbuf + c->ipcss + 4);
	if ((size_t)c->tucss + 8 <= hdr)
		seq = get_be32(e->txbuf + c->tucss + 4);
	for (uint32_t k = e->tso_sent; k < nseg; k++) {
		size_t off = (size_t)k * mss;
		size_t n = pay - off < mss ? pay - off : mss;
		size_t seglen = hdr + n;
		int r;

		if (*frames >= E1000_TX_BUDGET)
			return 1;
		memcpy(e->segbuf, e->txbuf, hdr);
		memcpy(e->segbuf + hdr, e->txbuf + hdr + off, n);
		tso_fix(e, seglen, k, nseg, off, ip_id, seq);
		if (p->popts & TXD_POPTS_IXSM)
			insert_csum(e->segbuf, seglen, c->ipcss, c->ipcso,
				    c->ipcse, 0, false);
		if ((p->popts & TXD_POPTS_TXSM) && c->tucss < seglen)
			insert_csum(e->segbuf, seglen, c->tucss, c->tucso,
				    c->tucse, (uint32_t)(seglen - c->tucss),
				    !(c->tucmd & TUCMD_TCP));
		r = tx_frame(e, p, e->segbuf, seglen);
		if (r)
			return r;
		(*frames)++;
		e->tso_sent = k + 1;
	}
	stat_add(e, TSCTC, 1);
	return 0;
}

/*
 * TCP segmentation by the backend (TAP's vnet header): the packet goes out
 * as one frame with GSO metadata, its headers those of the whole packet
 * (IP length and checksum; the TCP checksum field the driver's
 * pseudo-header seed plus the TCP length: a partial checksum, as Linux's
 * own GSO frames carry), and the host's stack cuts it as tx_tso() would.
 * Only the common shape: TCP with TXSM, no VLAN tag to insert (the tag
 * would move the offsets), a header where it must be, under 64 KiB, and
 * a backend taking that GSO type.  1 when the packet is not that shape
 * (segment it in software), else tx_frame()'s 0 / -EAGAIN.
 */
static int tx_gso(struct e1000 *e, const struct tx_pkt *p)
{
	const struct tx_ctx *c = &e->ctx;
	unsigned caps = e->nd ? net_caps(e->nd) : 0;
	bool v4 = c->tucmd & TUCMD_IP;
	size_t hdr = c->hdrlen, len = p->len, tcplen;
	uint8_t *f = e->txbuf, *tcp;
	struct net_offload off;
	struct iovec iov;
	uint32_t sum;
	int r;

	if (!(c->tucmd & TUCMD_TCP) || !(p->popts & TXD_POPTS_TXSM) ||
	    !(caps & NET_CAP_CSUM) || !(caps & (v4 ? NET_CAP_TSO4 : NET_CAP_TSO6)) ||
	    (p->vle && (R(e, CTRL) & CTRL_VME)) || !c->mss ||
	    len <= hdr + c->mss || len - c->ipcss > 65535 + (v4 ? 0 : 40) ||
	    c->ipcss < ETH_HLEN || (size_t)c->ipcss + (v4 ? 20 : 40) > c->tucss ||
	    (size_t)c->tucss + 20 > hdr || c->tucso != c->tucss + 16 ||
	    hdr > len || (v4 && (p->popts & TXD_POPTS_IXSM) &&
			  (size_t)c->ipcso + 2 > c->tucss))
		return 1;
	tcp = f + c->tucss;
	if ((tcp[13] & 0x80) && !(caps & NET_CAP_TSO_ECN))	/* CWR */
		return 1;
	if (!e->link_up)
		return 0;
	if (v4) {
		put_be16(f + c->ipcss + 2, (uint16_t)(len - c->ipcss));
		if (p->popts & TXD_POPTS_IXSM)
			insert_csum(f, hdr, c->ipcss, c->ipcso, c->ipcse, 0,
				    false);
	} else {
		put_be16(f + c->ipcss + 4, (uint16_t)(len - c->ipcss - 40));
	}
	tcplen = len - c->tucss;
	sum = net_csum_add((uint32_t)tcplen, tcp + 16, 2);
	put_be16(tcp + 16, (uint16_t)sum);
	off = (struct net_offload){
		.flags = NET_OFF_F_NEEDS_CSUM,
		.gso_type = (uint8_t)((v4 ? NET_GSO_TCPV4 : NET_GSO_TCPV6) |
				      ((tcp[13] & 0x80) ? NET_GSO_ECN : 0)),
		.hdr_len = (uint16_t)hdr, .gso_size = c->mss,
		.csum_start = c->tucss, .csum_offset = 16,
	};
	iov = (struct iovec){ f, len };
	r = net_send_offload(e->nd, &off, &iov, 1);
	if (r == -EAGAIN)
		return r;
	if (r == 0) {
		/* The statistics of what the wire carries: the segments. */
		uint32_t nseg = (uint32_t)((len - hdr + c->mss - 1) / c->mss);

		for (uint32_t k = 0; k < nseg; k++) {
			size_t n = len - hdr - (size_t)k * c->mss;

			stat_frame(e, false, f, hdr + (n < c->mss ? n : c->mss) +
				   FCS_LEN);
		}
		stat_add(e, TSCTC, 1);
	}
	return 0;
}

/* Send the gathered packet: 0 (sent or dropped), -EAGAIN, 1 (budget). */
static int tx_packet(struct e1000 *e, const struct tx_pkt *p, unsigned *frames)
{
	int r;

	if (p->ext && (p->cmd & TXD_CMD_TSE)) {
		if (e->tso_sent == 0 && !p->bad) {
			r = tx_gso(e, p);
			if (r <= 0) {
				if (r == 0)
					(*frames)++;
				return r;
			}
		}
		return tx_tso(e, p, frames);
	}
	if (p->len < ETH_HLEN) {
		vlog_ratelimited(LOG_WARN, "e1000: %zu-byte transmit packet dropped",
				 p->len);
		(*frames)++;
		return 0;
	}
	tx_offload(e, p, e->txbuf, p->len);
	r = tx_frame(e, p, e->txbuf, p->len);
	if (r == 0)
		(*frames)++;
	return r;
}

/* Go on with the ring later: on the timer thread (else at the next TDT
 * write or tx_ready). */
static void tx_later(struct e1000 *e)
{
	if (e->timers)
		vtimer_mod(&e->tx_timer, vclock_now(clk(e)));
}

/*
 * Walk the transmit ring from TDH toward TDT: context descriptors update
 * the context, packets (up to their EOP) are sent.  One pass at most, and
 * at most E1000_TX_BUDGET frames; stops at a packet whose EOP is not
 * there yet, or when the backend is full (-EAGAIN: tx_ready resumes).
 */
static void tx_run(struct e1000 *e)
{
	struct ring r;
	unsigned frames = 0;
	bool wb = false, moved = false;

	if (!(R(e, TCTL) & TCTL_EN) || e->tx_blocked || !dma_ok(e) ||
	    !ring_get(e, TDBAL, &r, "transmit"))
		return;
	while (r.head != r.tail) {
		uint8_t d[DESC];
		struct tx_pkt p;
		int g, st;

		if (frames >= E1000_TX_BUDGET) {
			tx_later(e);
			break;
		}
		desc_read(&r, r.head, d);
		if ((d[11] & TXD_CMD_DEXT) && (d[10] >> 4) != TXD_DTYP_D) {
			if ((d[10] >> 4) == TXD_DTYP_C)
				tx_context(e, d);
			else
				vlog_ratelimited(LOG_WARN, "e1000: transmit descriptor type %u skipped",
						 d[10] >> 4);
			wb |= tx_complete(e, &r, 1);
			moved = true;
			continue;
		}
		g = tx_gather(e, &r, &p);
		if (g == 0)
			break;			/* the rest is not there yet */
		if (g < 0 || p.bad) {
			if (g < 0)
				vlog_ratelimited(LOG_WARN, "e1000: context descriptor inside a packet: %u descriptors dropped",
						 p.ndesc);
			frames++;
			wb |= tx_complete(e, &r, p.ndesc);
			moved = true;
			e->tso_sent = 0;
			continue;
		}
		st = tx_packet(e, &p, &frames);
		if (st == -EAGAIN) {
			e->tx_blocked = true;
			break;
		}
		if (st > 0) {
			tx_later(e);
			break;
		}
		wb |= tx_complete(e, &r, p.ndesc);
		moved = true;
		e->tso_sent = 0;
	}
	if (wb)
		R(e, ICR) |= ICR_TXDW;
	if (moved && r.head == r.tail)
		R(e, ICR) |= ICR_TXQE;
	update_irq(e);
}

static void tx_timer_fired(void *opaque, uint64_t now)
{
	tx_run(opaque);
}

/* ---- receive (SDM §3.2) ------------------------------------------------ */

static bool rar_match(struct e1000 *e, const uint8_t *da)
{
	for (unsigned i = 0; i < 16; i++) {
		uint32_t lo = R(e, RA + 8 * i), hi = R(e, RA + 8 * i + 4);
		uint8_t a[6];

		if (!(hi & RAH_AV) || (hi & 0x30000))	/* ASEL: destination */
			continue;
		put_le32(a, lo);
		put_le16(a + 4, (uint16_t)hi);
		if (memcmp(a, da, 6) == 0)
			return true;
	}
	return false;
}

/* The multicast table's bit for @da: 12 bits of its last two bytes, which
 * ones RCTL.MO says (as Linux's e1000_hash_mc_addr() computes them). */
static bool mta_match(struct e1000 *e, const uint8_t *da)
{
	static const uint8_t shift[4] = { 4, 3, 2, 0 };
	unsigned s = shift[(R(e, RCTL) >> 12) & 3];
	uint32_t h = ((uint32_t)da[4] >> s | (uint32_t)da[5] << (8 - s)) & 0xfff;

	return (R(e, MTA + 4 * (h >> 5)) >> (h & 31)) & 1;
}

static bool rx_filter(struct e1000 *e, const uint8_t *f, bool tagged)
{
	uint32_t rctl = R(e, RCTL);

	if (tagged && (rctl & RCTL_VFE)) {
		uint16_t vid = get_be16(f + 14) & 0xfff;

		if (!((R(e, VFTA + 4 * (vid >> 5)) >> (vid & 31)) & 1))
			return false;
	}
	if (rar_match(e, f))
		return true;
	if (!(f[0] & 1))
		return rctl & RCTL_UPE;
	if (is_broadcast(f) && (rctl & RCTL_BAM))
		return true;
	return (rctl & RCTL_MPE) || mta_match(e, f);
}

static size_t rx_bufsize(uint32_t rctl)
{
	unsigned bs = (rctl >> 16) & 3;

	if (rctl & RCTL_BSEX)
		return bs ? 16384u >> (bs - 1) : 2048;	/* 00: reserved */
	return 2048u >> bs;
}

/* Write @len bytes of e->rxbuf into @need descriptors at the head. */
static void rx_write(struct e1000 *e, struct ring *r, size_t len,
		     uint32_t need, bool vp, uint16_t tci)
{
	size_t bufsz = rx_bufsize(R(e, RCTL)), off = 0;

	for (uint32_t k = 0; k < need; k++) {
		volatile uint8_t *d = r->base + (size_t)r->head * DESC;
		uint8_t a[8];
		size_t n = len - off < bufsz ? len - off : bufsz;
		uint8_t st = RXD_STA_DD | RXD_STA_IXSM;

		for (unsigned i = 0; i < 8; i++)
			a[i] = d[i];
		if (guest_mem_write(e->mem, get_le64(a), e->rxbuf + off, n))
			vlog_ratelimited(LOG_WARN, "e1000: receive buffer 0x%llx (%zu bytes) is not in RAM",
					 (unsigned long long)get_le64(a), n);
		off += n;
		if (k + 1 == need)
			st |= RXD_STA_EOP;
		if (vp)
			st |= RXD_STA_VP;
		d[8] = (uint8_t)n;
		d[9] = (uint8_t)(n >> 8);
		d[10] = d[11] = 0;			/* packet checksum */
		d[13] = 0;				/* errors */
		d[14] = vp ? (uint8_t)tci : 0;
		d[15] = vp ? (uint8_t)(tci >> 8) : 0;
		__atomic_thread_fence(__ATOMIC_RELEASE);
		d[12] = st;
		r->head = (r->head + 1) % r->count;
	}
	R(e, RDH) = r->head;
}

/*
 * A frame of @len bytes in e->rxbuf from the network: filter, strip a VLAN
 * tag, pad, append the FCS, and write it into the receive ring.  Returns
 * @len, or 0 when it must wait for descriptors.
 */
static size_t rx_deliver(struct e1000 *e, size_t len)
{
	uint8_t *f = e->rxbuf;
	uint32_t rctl = R(e, RCTL), need, avail;
	size_t n = len, wire = (len < ETH_ZLEN ? ETH_ZLEN : len) + FCS_LEN;
	bool tagged, vp = false;
	uint16_t tci = 0;
	struct ring r;

	if (len < ETH_HLEN || !(rctl & RCTL_EN) || !e->link_up || !dma_ok(e) ||
	    !ring_get(e, RDBAL, &r, "receive"))
		return len;
	tagged = n >= 18 && get_be16(f + 12) == (uint16_t)R(e, VET);
	if (wire > ((rctl & RCTL_LPE) ? 16384u : 1522u)) {
		stat_add(e, ROC, 1);
		return len;
	}
	if (!rx_filter(e, f, tagged))
		return len;
	if (tagged && (R(e, CTRL) & CTRL_VME)) {
		tci = get_be16(f + 14);
		memmove(f + 12, f + 16, n - 16);
		n -= 4;
		vp = true;
	}
	if (n < ETH_ZLEN) {
		memset(f + n, 0, ETH_ZLEN - n);
		n = ETH_ZLEN;
	}
	if (!(rctl & RCTL_SECRC)) {
		put_le32(f + n, (uint32_t)crc32(0L, f, (uInt)n));
		n += FCS_LEN;
	}
	need = (uint32_t)((n + rx_bufsize(rctl) - 1) / rx_bufsize(rctl));
	if (need > r.count - 1) {
		vlog_ratelimited(LOG_WARN, "e1000: a %zu-byte frame needs %u receive descriptors, the ring has %u: dropped",
				 n, need, r.count);
		return len;
	}
	avail = (r.tail + r.count - r.head) % r.count;
	if (need > avail) {
		stat_add(e, RNBC, 1);
		e->rx_waiting = true;
		return 0;
	}
	rx_write(e, &r, n, need, vp, tci);
	stat_frame(e, true, f, wire);
	avail -= need;
	R(e, ICR) |= ICR_RXT0;
	if (avail <= r.count >> (1 + ((rctl >> 8) & 3)))	/* RDMTS */
		R(e, ICR) |= ICR_RXDMT0;
	update_irq(e);
	return len;
}

/* The guest gave buffers (or changed the receiver): frames held by the
 * backend may fit now. */
static void rx_kick(struct e1000 *e)
{
	if (e->rx_waiting && e->nd) {
		e->rx_waiting = false;
		net_rx_ready(e->nd);
	}
}

size_t e1000_receive_frame(struct e1000 *e, const void *frame, size_t len)
{
	if (len > NET_FRAME_MAX)
		return len;
	memcpy(e->rxbuf, frame, len);
	return rx_deliver(e, len);
}

/* ---- the backend's callbacks ---------------------------------------------- */

static size_t net_receive(void *opaque, const struct iovec *iov, int iovcnt)
{
	struct e1000 *e = opaque;
	size_t len = 0;

	for (int i = 0; i < iovcnt; i++) {
		if (len + iov[i].iov_len > NET_FRAME_MAX)
			return len + iov[i].iov_len;	/* net.h's bound: drop */
		memcpy(e->rxbuf + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	return rx_deliver(e, len);
}

static void net_tx_ready(void *opaque)
{
	struct e1000 *e = opaque;

	e->tx_blocked = false;
	tx_run(e);
}

static void net_link_changed(void *opaque, bool up)
{
	struct e1000 *e = opaque;

	e->cable_up = up;
	link_update(e);
}

static const struct net_client_ops e1000_net_ops = {
	.receive = net_receive,
	.tx_ready = net_tx_ready,
	.link_changed = net_link_changed,
};

/* ---- register access ------------------------------------------------------ */

/* The MAC's reset (CTRL.RST): registers, interrupt state, the transmit
 * context; RAL/RAH[0] loaded from the EEPROM.  The PHY stays. */
static void mac_reset(struct e1000 *e)
{
	for (size_t i = 0; i < NDEFS; i++)
		for (unsigned k = 0; k < reg_defs[i].n; k++)
			R(e, reg_defs[i].off + 4u * k) = reg_defs[i].reset;
	R(e, RA) = get_le32(e->macaddr);
	R(e, RA + 4) = get_le16(e->macaddr + 4) | RAH_AV;
	ee_idle(&e->ee);
	memset(&e->ctx, 0, sizeof(e->ctx));
	e->tso_sent = 0;
	e->tx_blocked = false;
	e->itr_last = NEVER;
	vtimer_del(&e->tx_timer);
	update_irq(e);			/* ICR and IMS are 0: INTA# drops */
	rx_kick(e);			/* held frames: the receiver is off */
}

static void ctrl_write(struct e1000 *e, uint32_t v)
{
	uint32_t old = R(e, CTRL);

	if (v & CTRL_RST) {
		mac_reset(e);
		return;
	}
	R(e, CTRL) = v & CTRL_WMASK;
	if ((old & CTRL_PHY_RST) && !(v & CTRL_PHY_RST))
		phy_reset(e);
}

static uint32_t reg_read(struct e1000 *e, uint32_t off)
{
	const struct reg_def *d;
	uint32_t v;

	switch (off) {
	case STATUS:
		return STATUS_FD | STATUS_SPEED_1000 | STATUS_ASDV_1000 |
		       (e->link_up ? STATUS_LU : 0);
	case EECD:
		return eecd_read(e);
	case ICR:
		v = R(e, ICR);
		R(e, ICR) = 0;
		update_irq(e);
		return v;
	case PBA:
		v = R(e, PBA) & 0xffff;
		return (v < 64 ? 64 - v : 0) << 16 | v;
	}
	if (off >= STATS && off < STATS + 0x100)
		return stat_read(e, off);
	d = reg_lookup(off);
	return d ? R(e, off) : 0;
}

static void reg_write(struct e1000 *e, uint32_t off, uint32_t v)
{
	const struct reg_def *d;

	switch (off) {
	case CTRL:
		ctrl_write(e, v);
		return;
	case EECD:
		eecd_write(e, v);
		return;
	case EERD:
		eerd_write(e, v);
		return;
	case MDIC:
		mdic_write(e, v);
		return;
	case ICR:			/* writing 1s clears them */
		R(e, ICR) &= ~v;
		update_irq(e);
		return;
	case ICS:
		set_cause(e, v);
		return;
	case IMS:
		R(e, IMS) |= v & ICR_VALID;
		update_irq(e);
		return;
	case IMC:
		R(e, IMS) &= ~v;
		update_irq(e);
		return;
	case ITR:
		R(e, ITR) = v & 0xffff;
		update_irq(e);
		return;
	case RCTL:
		R(e, RCTL) = v & RCTL_WMASK;
		rx_kick(e);
		return;
	case RDT:
		R(e, RDT) = v & 0xffff;
		rx_kick(e);
		return;
	case TCTL:
		R(e, TCTL) = v & TCTL_WMASK;
		tx_run(e);
		return;
	case TDH:
		R(e, TDH) = v & 0xffff;
		e->tso_sent = 0;
		return;
	case TDT:
		/* Try again even if a -EAGAIN is pending: a backend out of
		 * memory says -EAGAIN and owes no tx_ready. */
		R(e, TDT) = v & 0xffff;
		e->tx_blocked = false;
		tx_run(e);
		return;
	}
	d = reg_lookup(off);
	if (d && d->wmask)
		R(e, off) = v & reg_mask(d, off, false);
	else if (!d)
		vlog_ratelimited(LOG_DEBUG, "e1000: write of 0x%x to unknown register 0x%05x",
				 v, off);
}

static uint64_t mmio_read(void *opaque, uint64_t offset, unsigned size)
{
	struct e1000 *e = opaque;
	uint32_t off = (uint32_t)offset, v;

	if (size == 8 && !(off & 7))
		return reg_read(e, off) | (uint64_t)reg_read(e, off + 4) << 32;
	v = reg_read(e, off & ~3u);
	if (size >= 4)
		return v;
	return (v >> (8 * (off & 3))) & ((1u << (8 * size)) - 1);
}

static void mmio_write(void *opaque, uint64_t offset, uint64_t value,
		       unsigned size)
{
	struct e1000 *e = opaque;
	uint32_t off = (uint32_t)offset;

	if (size == 8 && !(off & 7)) {
		reg_write(e, off, (uint32_t)value);
		reg_write(e, off + 4, (uint32_t)(value >> 32));
	} else if (size == 4 && !(off & 3)) {
		reg_write(e, off, (uint32_t)value);
	} else {
		vlog_ratelimited(LOG_WARN, "e1000: %u-byte write at 0x%05x dropped",
				 size, off);
	}
}

static const struct bus_ops e1000_mmio_ops = {
	.name = "e1000",
	.read = mmio_read,
	.write = mmio_write,
};

/* BAR1: IOADDR (offset 0) selects a register, IODATA (offset 4) reaches
 * it (the SDM's I/O-mapped register access). */
static uint64_t io_read(void *opaque, uint64_t offset, unsigned size)
{
	struct e1000 *e = opaque;

	if (size != 4 || (offset != 0 && offset != 4))
		return 0;
	return offset == 0 ? e->ioaddr : reg_read(e, e->ioaddr);
}

static void io_write(void *opaque, uint64_t offset, uint64_t value,
		     unsigned size)
{
	struct e1000 *e = opaque;

	if (size != 4)
		return;
	if (offset == 0)
		e->ioaddr = (uint32_t)value & 0x1fffc;
	else if (offset == 4)
		reg_write(e, e->ioaddr, (uint32_t)value);
}

static const struct bus_ops e1000_io_ops = {
	.name = "e1000-io",
	.read = io_read,
	.write = io_write,
};

/* ---- lifecycle -------------------------------------------------------------- */

void e1000_reset(struct e1000 *e)
{
	R(e, ICR) = R(e, IMS) = 0;
	e->cable_up = e->nd && net_link_up(e->nd);
	phy_reset(e);			/* may set LSC: the MAC reset clears it */
	mac_reset(e);
	e->ioaddr = 0;
}

struct e1000 *e1000_new(const struct e1000_config *cfg, char *err,
			size_t errlen)
{
	struct e1000 *e;
	int r;

	if (!cfg || !cfg->pci || !cfg->mem || !cfg->lock) {
		snprintf(err, errlen, "e1000: incomplete configuration");
		return NULL;
	}
	if (cfg->mac[0] & 1) {
		snprintf(err, errlen, "e1000: MAC address %02x:%02x:%02x:%02x:%02x:%02x is a multicast address",
			 cfg->mac[0], cfg->mac[1], cfg->mac[2], cfg->mac[3],
			 cfg->mac[4], cfg->mac[5]);
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(err, errlen, "e1000: out of memory");
		return NULL;
	}
	e->mem = cfg->mem;
	e->lock = cfg->lock;
	e->timers = cfg->timers;
	e->nd = cfg->backend;
	memcpy(e->macaddr, cfg->mac, 6);
	vtimer_init(&e->itr_timer, cfg->timers, itr_fired, e);
	vtimer_init(&e->tx_timer, cfg->timers, tx_timer_fired, e);
	pci_device_init(&e->pci, E1000_VENDOR_ID, E1000_DEVICE_ID, 0x03,
			0x020000, E1000_VENDOR_ID, E1000_SUBSYS_ID, 1);
	e->pci.opaque = e;
	if (pci_device_set_bar(&e->pci, 0, PCI_BAR_MEM32, E1000_MMIO_SIZE,
			       false, &e1000_mmio_ops, e) < 0 ||
	    pci_device_set_bar(&e->pci, 1, PCI_BAR_IO, E1000_IO_SIZE, false,
			       &e1000_io_ops, e) < 0) {
		snprintf(err, errlen, "e1000: cannot declare the BARs");
		free(e);
		return NULL;
	}
	r = pci_add_device(cfg->pci, &e->pci, cfg->devfn);
	if (r < 0) {
		snprintf(err, errlen, "e1000: PCI %02x.%u: %s", cfg->devfn >> 3,
			 cfg->devfn & 7, r == -EEXIST ? "taken" : strerror(-r));
		free(e);
		return NULL;
	}
	eeprom_build(e);
	e1000_reset(e);
	if (e->nd) {
		r = net_attach(e->nd, &e1000_net_ops, e, e->lock);
		if (r < 0) {
			snprintf(err, errlen, "e1000: the backend %s", r == -EBUSY ?
				 "has a NIC already" : "was attached under another lock");
			pci_device_cleanup(&e->pci);
			free(e);
			return NULL;
		}
	}
	return e;
}

void e1000_free(struct e1000 *e)
{
	if (!e)
		return;
	if (e->nd)
		net_detach(e->nd);
	vtimer_del(&e->itr_timer);
	vtimer_del(&e->tx_timer);
	pci_device_cleanup(&e->pci);
	free(e);
}

struct pci_device *e1000_pci_device(struct e1000 *e)
{
	return &e->pci;
}

/* ---- save and load ------------------------------------------------------------- */

/* Where register @off sits in the saved array (it is in the table). */
static unsigned state_index(uint32_t off)
{
	unsigned n = 0;

	for (size_t i = 0; i < NDEFS; i++) {
		if (off >= reg_defs[i].off && off < reg_defs[i].off + 4u * reg_defs[i].n)
			return n + (off - reg_defs[i].off) / 4;
		n += reg_defs[i].n;
	}
	abort();	/* a register of the table's own */
}

static unsigned nregs(void)
{
	unsigned n = 0;

	for (size_t i = 0; i < NDEFS; i++)
		n += reg_defs[i].n;
	return n;
}

static GVariant *e1000_save(void *opaque)
{
	struct e1000 *e = opaque;
	uint32_t regs[E1000_STATE_NREGS];
	const struct ee_port *p = &e->ee;
	const struct tx_ctx *c = &e->ctx;
	unsigned n = 0;

	if (nregs() != E1000_STATE_NREGS)	/* the header's format */
		return NULL;
	for (size_t i = 0; i < NDEFS; i++)
		for (unsigned k = 0; k < reg_defs[i].n; k++)
			regs[n++] = R(e, reg_defs[i].off + 4u * k);
	return g_variant_new("(@au@aq@aq(bbyqqyb)(yyqyyquyyq)ubbtu)",
		g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32, regs, n,
					  sizeof(regs[0])),
		g_variant_new_fixed_array(G_VARIANT_TYPE_UINT16, e->phy,
					  E1000_PHY_REGS, sizeof(e->phy[0])),
		g_variant_new_fixed_array(G_VARIANT_TYPE_UINT16, e->eeprom,
					  E1000_EEPROM_WORDS, sizeof(e->eeprom[0])),
		p->reading, p->ignoring, p->bits, p->cmd, p->addr, p->out_bit,
		p->dout, c->ipcss, c->ipcso, c->ipcse, c->tucss, c->tucso,
		c->tucse, c->paylen, c->tucmd, c->hdrlen, c->mss, e->tso_sent,
		e->irq_level, e->link_up, (guint64)e->itr_last, e->ioaddr);
}

/* What a load checks before it touches the device. */
struct e1000_state {
	uint32_t regs[E1000_STATE_NREGS];
	uint16_t phy[E1000_PHY_REGS];
	uint16_t eeprom[E1000_EEPROM_WORDS];
	struct ee_port ee;
	struct tx_ctx ctx;
	uint32_t tso_sent, ioaddr;
	gboolean irq_level, link_up;
	uint64_t itr_last;
};

static int check_arrays(struct e1000_state *s, GVariant *vr, GVariant *vp,
			GVariant *ve, char *err, size_t errlen)
{
	gsize nr, np, ne;
	const uint32_t *r = g_variant_get_fixed_array(vr, &nr, sizeof(uint32_t));
	const uint16_t *p = g_variant_get_fixed_array(vp, &np, sizeof(uint16_t));
	const uint16_t *w = g_variant_get_fixed_array(ve, &ne, sizeof(uint16_t));
	unsigned n = 0;

	if (nr != E1000_STATE_NREGS || nregs() != E1000_STATE_NREGS || np != E1000_PHY_REGS ||
	    ne != E1000_EEPROM_WORDS)
		return device_load_fail(err, errlen, "e1000: %zu registers, %zu PHY registers, %zu EEPROM words (want %u, %u, %u)",
					(size_t)nr, (size_t)np, (size_t)ne,
					E1000_STATE_NREGS, E1000_PHY_REGS,
					E1000_EEPROM_WORDS);
	for (size_t i = 0; i < NDEFS; i++) {
		for (unsigned k = 0; k < reg_defs[i].n; k++, n++) {
			uint32_t off = reg_defs[i].off + 4u * k;
			uint32_t bad = r[n] & ~reg_mask(&reg_defs[i], off, true);

			if (bad)
				return device_load_fail(err, errlen, "e1000: register 0x%04x is 0x%08x: bits 0x%08x do not exist",
							off, r[n], bad);
			s->regs[n] = r[n];
		}
	}
	for (unsigned i = 0; i < E1000_PHY_REGS; i++) {
		if (p[i] && !((PHY_RW_MASK >> i) & 1))
			return device_load_fail(err, errlen, "e1000: PHY register %u is 0x%04x, but it is not kept",
						i, p[i]);
		s->phy[i] = p[i];
	}
	if (s->phy[MII_BMCR] & (MII_CR_RESET | MII_CR_RESTART_AN))
		return device_load_fail(err, errlen, "e1000: PHY control 0x%04x has self-clearing bits set",
					s->phy[MII_BMCR]);
	memcpy(s->eeprom, w, sizeof(s->eeprom));
	return 0;
}

static int check_scalars(const struct e1000_state *s, char *err, size_t errlen)
{
	const struct ee_port *p = &s->ee;
	uint32_t icr = s->regs[state_index(ICR)], ims = s->regs[state_index(IMS)];

	if (p->bits > 9 || p->cmd >= 1u << p->bits ||
	    p->addr >= E1000_EEPROM_WORDS || p->out_bit > 15 ||
	    (p->reading && p->ignoring) ||
	    ((p->reading || p->ignoring) && p->bits != 9))
		return device_load_fail(err, errlen, "e1000: EEPROM port state (%u bits, command 0x%x, word %u, bit %u) is impossible",
					p->bits, p->cmd, p->addr, p->out_bit);
	if (s->ctx.paylen > 0xfffff || s->tso_sent > 65536)
		return device_load_fail(err, errlen, "e1000: TSO payload %u or %u segments sent out of range",
					s->ctx.paylen, s->tso_sent);
	if (s->irq_level && !(icr & ims))
		return device_load_fail(err, errlen, "e1000: INTA# asserted with ICR 0x%x and IMS 0x%x",
					icr, ims);
	if (s->ioaddr & ~0x1fffcu)
		return device_load_fail(err, errlen, "e1000: IOADDR 0x%x out of range",
					s->ioaddr);
	return 0;
}

static int e1000_load(void *opaque, uint32_t version, GVariant *state,
		      char *err, size_t errlen)
{
	struct e1000 *e = opaque;
	struct e1000_state *s;
	GVariant *vr, *vp, *ve;
	gboolean reading, ignoring, dout;
	guint64 itr_last;
	unsigned n = 0;
	int r;

	r = device_state_check("e1000", version, e1000_device_ops.state_version,
			       state, E1000_STATE_TYPE, err, errlen);
	if (r < 0)
		return r;
	s = calloc(1, sizeof(*s));
	if (!s)
		return device_load_fail(err, errlen, "e1000: out of memory");
	g_variant_get(state, "(@au@aq@aq(bbyqqyb)(yyqyyquyyq)ubbtu)", &vr, &vp,
		      &ve, &reading, &ignoring, &s->ee.bits, &s->ee.cmd,
		      &s->ee.addr, &s->ee.out_bit, &dout, &s->ctx.ipcss,
		      &s->ctx.ipcso, &s->ctx.ipcse, &s->ctx.tucss, &s->ctx.tucso,
		      &s->ctx.tucse, &s->ctx.paylen, &s->ctx.tucmd,
		      &s->ctx.hdrlen, &s->ctx.mss, &s->tso_sent, &s->irq_level,
		      &s->link_up, &itr_last, &s->ioaddr);
	s->ee.reading = reading;
	s->ee.ignoring = ignoring;
	s->ee.dout = dout;
	s->itr_last = itr_last;
	r = check_arrays(s, vr, vp, ve, err, errlen);
	if (!r)
		r = check_scalars(s, err, errlen);
	g_variant_unref(vr);
	g_variant_unref(vp);
	g_variant_unref(ve);
	if (r < 0) {
		free(s);
		return r;
	}

	for (size_t i = 0; i < NDEFS; i++)
		for (unsigned k = 0; k < reg_defs[i].n; k++)
			R(e, reg_defs[i].off + 4u * k) = s->regs[n++];
	memcpy(e->phy, s->phy, sizeof(e->phy));
	memcpy(e->eeprom, s->eeprom, sizeof(e->eeprom));
	e->ee = s->ee;
	e->ctx = s->ctx;
	e->tso_sent = s->tso_sent;
	e->ioaddr = s->ioaddr;
	e->itr_last = s->itr_last;
	e->link_up = s->link_up;
	e->irq_level = s->irq_level;
	e->tx_blocked = false;
	e->rx_waiting = false;
	free(s);
	pci_set_irq(&e->pci, e->irq_level);
	vtimer_del(&e->tx_timer);
	e->cable_up = e->nd && net_link_up(e->nd);
	link_update(e);			/* LSC if the cable changed meanwhile */
	update_irq(e);			/* re-arms a held-back assertion */
	tx_run(e);
	return 0;
}

static void e1000_dev_reset(void *opaque)
{
	e1000_reset(opaque);
}

static void e1000_dev_free(void *opaque)
{
	e1000_free(opaque);
}

const struct device_ops e1000_device_ops = {
	.name = "e1000",
	.reset = e1000_dev_reset,
	.save = e1000_save,
	.load = e1000_load,
	.state_version = 1,
	.free = e1000_dev_free,
};
