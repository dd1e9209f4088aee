/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/devices/ioapic.c - the I/O APIC (Intel 82093AA datasheet §3,
 * with the version 0x20 EOI register).  Pins leave as MSI messages in the
 * format of Intel SDM vol. 3 §11.11: every message is delivered at once, so
 * Delivery Status always reads 0.
 */
#include "ioapic.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <glib.h>

#include "../bus.h"
#include "../log.h"

#define IOAPIC_VERSION		0x20

/* MMIO offsets */
#define IOREGSEL		0x00
#define IOWIN			0x10
#define IOEOI			0x40

/* Indirect registers */
#define REG_ID			0x00
#define REG_VER			0x01
#define REG_ARB			0x02
#define REG_REDTBL		0x10	/* two per pin */

/* Redirection table entry (82093AA §3.2.4) */
#define RTE_VECTOR		0xffull
#define RTE_DELMODE_SHIFT	8
#define RTE_DESTMODE		(1ull << 11)
#define RTE_POLARITY_LOW	(1ull << 13)
#define RTE_REMOTE_IRR		(1ull << 14)
#define RTE_LEVEL		(1ull << 15)
#define RTE_MASKED		(1ull << 16)
#define RTE_DEST_SHIFT		56
/* What a guest may write: vector, delivery and destination modes,
 * polarity, trigger mode, mask, destination. */
#define RTE_WRITABLE		(0x1afffull | (0xffull << RTE_DEST_SHIFT))

#define MSI_ADDR_BASE		0xfee00000ull

struct ioapic {
	uint8_t id;		/* bits 27:24 of REG_ID */
	uint8_t initial_id;
	uint8_t regsel;
	uint32_t level;		/* pin input levels, before polarity */
	uint64_t rte[IOAPIC_PINS];
	const struct ioapic_ops *ops;
	void *opaque;
};

static bool pin_asserted(const struct ioapic *io, unsigned pin)
{
	bool high = (io->level >> pin) & 1;

	return (io->rte[pin] & RTE_POLARITY_LOW) ? !high : high;
}

static void rte_msi(uint64_t rte, uint64_t *addr, uint32_t *data)
{
	*addr = MSI_ADDR_BASE | ((rte >> RTE_DEST_SHIFT) & 0xff) << 12 |
		((rte & RTE_DESTMODE) ? 1ull << 2 : 0);
	*data = (uint32_t)(rte & RTE_VECTOR) |
		(uint32_t)((rte >> RTE_DELMODE_SHIFT) & 7) << 8 |
		1u << 14 |			/* assert */
		((rte & RTE_LEVEL) ? 1u << 15 : 0);
}

static void send(struct ioapic *io, unsigned pin)
{
	uint64_t addr;
	uint32_t data;

	rte_msi(io->rte[pin], &addr, &data);
	if (io->ops && io->ops->send_msi)
		io->ops->send_msi(io->opaque, addr, data);
}

/* A level-triggered pin sends while asserted, unmasked and not awaiting an
 * EOI (Remote IRR clear); sending sets Remote IRR. */
static void service_level(struct ioapic *io, unsigned pin)
{
	uint64_t *rte = &io->rte[pin];

	if (!(*rte & RTE_LEVEL) || (*rte & (RTE_MASKED | RTE_REMOTE_IRR)) ||
	    !pin_asserted(io, pin))
		return;
	*rte |= RTE_REMOTE_IRR;
	send(io, pin);
}

static uint32_t reg_read(const struct ioapic *io, uint8_t reg)
{
	switch (reg) {
	case REG_ID:
		return (uint32_t)io->id << 24;
	case REG_VER:
		return (uint32_t)(IOAPIC_PINS - 1) << 16 | IOAPIC_VERSION;
	case REG_ARB:
		return (uint32_t)io->id << 24;
	}
	if (reg >= REG_REDTBL && reg < REG_REDTBL + 2 * IOAPIC_PINS) {
		uint64_t rte = io->rte[(reg - REG_REDTBL) / 2];

		return (reg & 1) ? (uint32_t)(rte >> 32) : (uint32_t)rte;
	}
	return 0;
}

static void rte_write(struct ioapic *io, unsigned pin, bool high, uint32_t v)
{
	uint64_t old = io->rte[pin], rte;

	rte = high ? (old & 0xffffffffull) | (uint64_t)v << 32
		   : (old & ~0xffffffffull) | v;
	rte = (rte & RTE_WRITABLE) | (old & ~RTE_WRITABLE);
	/* An edge-triggered pin has no Remote IRR (Linux clears a stuck one
	 * on pre-0x20 IOAPICs by switching to edge and back). */
	if (!(rte & RTE_LEVEL))
		rte &= ~RTE_REMOTE_IRR;
	io->rte[pin] = rte;
	if (rte != old && io->ops && io->ops->routes_changed)
		io->ops->routes_changed(io->opaque);
	/* Unmasked, or switched to level, while asserted. */
	service_level(io, pin);
}

static void reg_write(struct ioapic *io, uint8_t reg, uint32_t v)
{
	switch (reg) {
	case REG_ID:
		io->id = (v >> 24) & 0x0f;
		return;
	case REG_VER:
	case REG_ARB:
		return;		/* read-only */
	}
	if (reg >= REG_REDTBL && reg < REG_REDTBL + 2 * IOAPIC_PINS)
		rte_write(io, (reg - REG_REDTBL) / 2, reg & 1, v);
	else
		vlog_ratelimited(LOG_DEBUG, "ioapic: write to register 0x%x ignored",
				 reg);
}

/* Registers are 32 bits wide; narrower accesses see their bytes of it. */
static uint64_t ioapic_mmio_read(void *opaque, uint64_t off, unsigned size)
{
	struct ioapic *io = opaque;
	unsigned shift = (off & 3) * 8;
	uint32_t v;

	switch (off & ~3ull) {
	case IOREGSEL:
		v = io->regsel;
		break;
	case IOWIN:
		v = reg_read(io, io->regsel);
		break;
	default:
		v = 0;
		break;
	}
	return size >= 4 ? v : (v >> shift) & ((1u << (size * 8)) - 1);
}

static void ioapic_mmio_write(void *opaque, uint64_t off, uint64_t value,
			      unsigned size)
{
	struct ioapic *io = opaque;
	unsigned shift = (off & 3) * 8;
	uint32_t v = (uint32_t)value;

	if (size < 4) {
		/* Merge into the register's current value. */
		uint32_t mask = ((1u << (size * 8)) - 1) << shift;

		v = ((uint32_t)ioapic_mmio_read(io, off & ~3ull, 4) & ~mask) |
		    ((v << shift) & mask);
	}
	switch (off & ~3ull) {
	case IOREGSEL:
		io->regsel = (uint8_t)v;
		break;
	case IOWIN:
		reg_write(io, io->regsel, v);
		break;
	case IOEOI:
		ioapic_eoi(io, (uint8_t)v);
		break;
	default:
		vlog_ratelimited(LOG_DEBUG, "ioapic: write at +0x%llx ignored",
				 (unsigned long long)off);
		break;
	}
}

static const struct bus_ops ioapic_bus_ops = {
	.name = "ioapic", .read = ioapic_mmio_read, .write = ioapic_mmio_write,
};

/* Input levels are wires and survive; every pin comes back masked. */
static void reset_state(struct ioapic *io)
{
	io->id = io->initial_id;
	io->regsel = 0;
	for (unsigned i = 0; i < IOAPIC_PINS; i++)
		io->rte[i] = RTE_MASKED;
}

struct ioapic *ioapic_new(uint8_t id, const struct ioapic_ops *ops,
			  void *opaque)
{
	struct ioapic *io = calloc(1, sizeof(*io));

	if (!io)
		return NULL;
	io->initial_id = id & 0x0f;
	io->ops = ops;
	io->opaque = opaque;
	reset_state(io);
	return io;
}

void ioapic_free(struct ioapic *ioapic)
{
	free(ioapic);
}

int ioapic_attach(struct ioapic *ioapic, struct bus *mmio, uint64_t base)
{
	return bus_register(mmio, base, IOAPIC_MMIO_SIZE, &ioapic_bus_ops, ioapic);
}

void ioapic_reset(struct ioapic *ioapic)
{
	reset_state(ioapic);
	if (ioapic->ops && ioapic->ops->routes_changed)
		ioapic->ops->routes_changed(ioapic->opaque);
}

void ioapic_set_irq(struct ioapic *ioapic, unsigned pin, int level)
{
	bool was;

	if (pin >= IOAPIC_PINS)
		return;
	was = pin_asserted(ioapic, pin);
	if (level)
		ioapic->level |= 1u << pin;
	else
		ioapic->level &= ~(1u << pin);
	if (ioapic->rte[pin] & RTE_LEVEL)
		service_level(ioapic, pin);
	else if (!was && pin_asserted(ioapic, pin) &&
		 !(ioapic->rte[pin] & RTE_MASKED))
		send(ioapic, pin);	/* a masked edge is lost (82093AA) */
}

void ioapic_eoi(struct ioapic *ioapic, uint8_t vector)
{
	for (unsigned i = 0; i < IOAPIC_PINS; i++) {
		uint64_t *rte = &ioapic->rte[i];

		if ((*rte & RTE_VECTOR) != vector || !(*rte & RTE_REMOTE_IRR))
			continue;
		*rte &= ~RTE_REMOTE_IRR;
		service_level(ioapic, i);
	}
}

bool ioapic_pin_msi(const struct ioapic *ioapic, unsigned pin,
		    uint64_t *addr, uint32_t *data)
{
	if (pin >= IOAPIC_PINS || (ioapic->rte[pin] & RTE_MASKED))
		return false;
	rte_msi(ioapic->rte[pin], addr, data);
	return true;
}

/* ---- the machine's device table ---------------------------------------- */

static void ioapic_dev_reset(void *dev)
{
	ioapic_reset(dev);
}

static void ioapic_dev_free(void *dev)
{
	ioapic_free(dev);
}

static GVariant *ioapic_dev_save(void *dev)
{
	struct ioapic *io = dev;

	return g_variant_new("(yyu@at)", io->id, io->regsel, io->level,
			     g_variant_new_fixed_array(G_VARIANT_TYPE_UINT64,
						       io->rte, IOAPIC_PINS,
						       sizeof(io->rte[0])));
}

/* Checked in full, then applied; the machine re-reads the table
 * (routes_changed) as after a guest's write.  Nothing is sent: a pin
 * awaiting its EOI keeps Remote IRR, and the MSIs of the others were
 * delivered before the save. */
static int ioapic_dev_load(void *dev, uint32_t version, GVariant *state,
			   char *err, size_t errlen)
{
	struct ioapic *io = dev;
	const uint64_t *rte;
	GVariant *table;
	guint8 id, regsel;
	guint32 level;
	gsize n;
	int r = 0;

	r = device_state_check("ioapic", version, 1, state, IOAPIC_STATE_TYPE, err, errlen);
	if (r < 0)
		return r;
	g_variant_get(state, "(yyu@at)", &id, &regsel, &level, &table);
	rte = g_variant_get_fixed_array(table, &n, sizeof(uint64_t));
	if (id > 0x0f)
		r = device_load_fail(err, errlen, "ioapic: ID %u out of range", id);
	else if (level >> IOAPIC_PINS)
		r = device_load_fail(err, errlen, "ioapic: input levels 0x%x name pins past %u",
			      level, IOAPIC_PINS - 1);
	else if (n != IOAPIC_PINS)
		r = device_load_fail(err, errlen, "ioapic: %zu redirection entries, not %u",
			      (size_t)n, IOAPIC_PINS);
	for (unsigned i = 0; !r && i < IOAPIC_PINS; i++) {
		if (rte[i] & ~(RTE_WRITABLE | RTE_REMOTE_IRR))
			r = device_load_fail(err, errlen, "ioapic: pin %u entry 0x%llx sets reserved bits",
				      i, (unsigned long long)rte[i]);
		else if ((rte[i] & RTE_REMOTE_IRR) && !(rte[i] & RTE_LEVEL))
			r = device_load_fail(err, errlen, "ioapic: pin %u has Remote IRR but is edge-triggered",
				      i);
	}
	if (!r) {
		io->id = id;
		io->regsel = regsel;
		io->level = level;
		for (unsigned i = 0; i < IOAPIC_PINS; i++)
			io->rte[i] = rte[i];
		if (io->ops && io->ops->routes_changed)
			io->ops->routes_changed(io->opaque);
	}
	g_variant_unref(table);
	return r;
}

const struct device_ops ioapic_device_ops = {
	.name = "ioapic",
	.reset = ioapic_dev_reset,
	.save = ioapic_dev_save,
	.load = ioapic_dev_load,
	.state_version = 1,
	.free = ioapic_dev_free,
};
