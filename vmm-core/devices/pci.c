/* SPDX-License-Identifier: MIT */
/*
 * PCI configuration mechanism #1 (PCI Local Bus 3.0 §3.2.2.3.2) and the
 * i440FX host bridge (Intel 82441FX PMC datasheet, §3.2).
 *
 * CONFIG_ADDRESS (0xcf8) is latched by dword writes only: bit 31 enable,
 * bits 23:16 bus, 15:8 device/function, 7:2 register; bits 30:24 and 1:0
 * read as 0.  Narrower accesses to 0xcf8-0xcfb are not PCI's (the PIIX
 * passes them on to ISA): they read all-ones and writes are dropped, except
 * byte accesses at 0xcf9, the reset control register (see
 * pci_host_set_cf9_handler()).  CONFIG_DATA (0xcfc-0xcff) takes byte, word
 * and dword accesses within the dword at the latched register; with the
 * enable bit clear it reads all-ones.  Only bus 0 exists.
 *
 * BARs (§6.2.5.1): the host keeps the registers' writable bits so that
 * writing all-ones reads back the size, and maps a BAR on the I/O or MMIO
 * bus whenever its address or the command register's decode enables
 * change.  INTx follows the PIIX's PIRQ swizzle; MSI-X (§6.8.2) keeps its
 * table and PBA in a BAR of their own.
 */
#include "pci.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "../bus.h"
#include "../log.h"

#define CONFIG_ADDRESS	0xcf8
#define CONFIG_DATA	0xcfc
#define ADDR_ENABLE	0x80000000u
#define ADDR_MASK	0x80fffffcu


#define MSIX_MAX_VECTORS	128
#define MSIX_TABLE_OFFSET	0
#define MSIX_PBA_OFFSET		2048
#define MSIX_BAR_SIZE		4096
#define MSIX_CTRL_ENABLE	0x8000
#define MSIX_CTRL_MASKALL	0x4000

struct pci_msix {
	uint8_t cap;			/* config offset of the capability */
	unsigned nvectors;
	uint32_t table[MSIX_MAX_VECTORS][4];	/* addr lo, hi, data, ctrl */
	uint64_t pba[MSIX_MAX_VECTORS / 64];
};

struct pci_host {
	uint32_t address;
	const struct pci_host_ops *ops;
	void *ops_opaque;
	unsigned pirq_count[4];		/* asserted INTx per PIRQ */
	struct pci_device *dev[256];
	struct pci_device bridge;	/* 00:00.0 */
	struct bus *pio, *mmio;
	const struct bus_ops *cf9_ops;
	void *cf9_opaque;
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return get16(p) | (uint32_t)get16(p + 2) << 16;
}

static void update_mappings(struct pci_device *dev);
static void update_intx(struct pci_device *dev);
static void msix_config_written(struct pci_device *dev);
static void msix_flush_pending(struct pci_device *dev);

/* ---- config space access ---------------------------------------------- */

static bool access_ok(unsigned offset, unsigned size)
{
	return (size == 1 || size == 2 || size == 4) &&
	       offset + size <= PCI_CONFIG_SIZE &&
	       (offset & ~3u) == ((offset + size - 1) & ~3u);
}

static uint32_t ones(unsigned size)
{
	return size >= 4 ? 0xffffffffu : (1u << (size * 8)) - 1;
}

static struct pci_device *lookup(struct pci_host *host, uint8_t bus,
				 uint8_t devfn)
{
	return bus == 0 ? host->dev[devfn] : NULL;
}

uint32_t pci_config_read(struct pci_host *host, uint8_t bus, uint8_t devfn,
			 unsigned offset, unsigned size)
{
	struct pci_device *dev = lookup(host, bus, devfn);
	uint32_t v = 0;

	if (!dev || !access_ok(offset, size))
		return ones(size);
	for (unsigned i = 0; i < size; i++)
		v |= (uint32_t)dev->config[offset + i] << (8 * i);
	if (dev->config_read)
		v = dev->config_read(dev, offset, size, v) & ones(size);
	return v;
}

void pci_config_write(struct pci_host *host, uint8_t bus, uint8_t devfn,
		      unsigned offset, unsigned size, uint32_t value)
{
	struct pci_device *dev = lookup(host, bus, devfn);

	if (!dev || !access_ok(offset, size))
		return;
	for (unsigned i = 0; i < size; i++) {
		unsigned o = offset + i;
		uint8_t b = (uint8_t)(value >> (8 * i));
		uint8_t w = dev->wmask[o], c = dev->w1cmask[o];

		dev->config[o] = (uint8_t)((dev->config[o] & ~w) | (b & w));
		dev->config[o] &= (uint8_t)~(b & c);
	}
	if (dev->config_write)
		dev->config_write(dev, offset, size, value & ones(size));
	/* Command register, BARs or the ROM BAR: decode may have changed. */
	if (offset < PCI_COMMAND + 2 && offset + size > PCI_COMMAND) {
		update_mappings(dev);
		update_intx(dev);
		if (dev->msix)		/* bus mastering may have come on */
			msix_flush_pending(dev);
	} else if ((offset >= PCI_BASE_ADDRESS_0 && offset < 0x28) ||
		   (offset >= PCI_ROM_ADDRESS && offset < PCI_ROM_ADDRESS + 4)) {
		update_mappings(dev);
	}
	if (dev->msix && offset < dev->msix->cap + 4u &&
	    offset + size > dev->msix->cap + 2u)
		msix_config_written(dev);
}

int pci_add_device(struct pci_host *host, struct pci_device *dev,
		   uint8_t devfn)
{
	if (!host || !dev)
		return -EINVAL;
	if (host->dev[devfn])
		return -EEXIST;
	dev->devfn = devfn;
	dev->host = host;
	for (unsigned i = 0; i <= PCI_NUM_BARS; i++)
		dev->bar[i].addr = PCI_BAR_UNMAPPED;
	host->dev[devfn] = dev;
	return 0;
}

static void unmap_bar(struct pci_device *dev, unsigned i);

void pci_remove_device(struct pci_host *host, struct pci_device *dev)
{
	if (!host || !dev || host->dev[dev->devfn] != dev)
		return;
	for (unsigned i = 0; i <= PCI_NUM_BARS; i++)
		unmap_bar(dev, i);
	pci_set_irq(dev, 0);
	host->dev[dev->devfn] = NULL;
	dev->host = NULL;
}

/* ---- port I/O --------------------------------------------------------- */

static uint64_t addr_read(void *opaque, uint64_t offset, unsigned size)
{
	struct pci_host *host = opaque;

	if (offset == 0 && size == 4)
		return host->address;
	if (offset == 1 && size == 1 && host->cf9_ops && host->cf9_ops->read)
		return host->cf9_ops->read(host->cf9_opaque, 0, 1) & 0xff;
	return ones(size);
}

static void addr_write(void *opaque, uint64_t offset, uint64_t value,
		       unsigned size)
{
	struct pci_host *host = opaque;

	if (offset == 0 && size == 4)
		host->address = (uint32_t)value & ADDR_MASK;
	else if (offset == 1 && size == 1 && host->cf9_ops &&
		 host->cf9_ops->write)
		host->cf9_ops->write(host->cf9_opaque, 0, value & 0xff, 1);
}

static uint64_t data_read(void *opaque, uint64_t offset, unsigned size)
{
	struct pci_host *host = opaque;
	uint32_t a = host->address;

	if (!(a & ADDR_ENABLE) || size > 4)
		return size >= 8 ? ~0ull : ones(size);
	return pci_config_read(host, (uint8_t)(a >> 16), (uint8_t)(a >> 8),
			       (a & 0xfc) + (unsigned)offset, size);
}

static void data_write(void *opaque, uint64_t offset, uint64_t value,
		       unsigned size)
{
	struct pci_host *host = opaque;
	uint32_t a = host->address;

	if (!(a & ADDR_ENABLE) || size > 4)
		return;
	pci_config_write(host, (uint8_t)(a >> 16), (uint8_t)(a >> 8),
			 (a & 0xfc) + (unsigned)offset, size, (uint32_t)value);
}

static const struct bus_ops addr_ops = {
	.name = "pci-config-address",
	.read = addr_read,
	.write = addr_write,
};

static const struct bus_ops data_ops = {
	.name = "pci-config-data",
	.read = data_read,
	.write = data_write,
};

void pci_host_set_ops(struct pci_host *host, const struct pci_host_ops *ops,
		      void *opaque)
{
	host->ops = ops;
	host->ops_opaque = opaque;
}

int pci_host_attach(struct pci_host *host, struct bus *pio, struct bus *mmio)
{
	host->pio = pio;
	host->mmio = mmio;
	int r = bus_register(pio, CONFIG_ADDRESS, 4, &addr_ops, host);

	if (r < 0)
		return r;
	r = bus_register(pio, CONFIG_DATA, 4, &data_ops, host);
	if (r < 0)
		bus_unregister(pio, CONFIG_ADDRESS);
	return r;
}

void pci_host_set_cf9_handler(struct pci_host *host,
			      const struct bus_ops *ops, void *opaque)
{
	host->cf9_ops = ops;
	host->cf9_opaque = opaque;
}

/* ---- the i440FX host bridge ------------------------------------------- */

static void bridge_init(struct pci_device *d)
{
	memset(d, 0, sizeof(*d));
	put16(&d->config[PCI_VENDOR_ID], 0x8086);
	put16(&d->config[PCI_DEVICE_ID], 0x1237);
	/* PCICMD: memory access and bus master hardwired on; SERR# and
	 * parity error response writable. */
	put16(&d->config[PCI_COMMAND], 0x0006);
	put16(&d->wmask[PCI_COMMAND], 0x0140);
	/* PCISTS: fast back-to-back capable, medium DEVSEL; error bits
	 * write-1-to-clear. */
	put16(&d->config[PCI_STATUS], 0x0280);
	put16(&d->w1cmask[PCI_STATUS], 0xf900);
	d->config[PCI_REVISION_ID] = 0x02;
	d->config[PCI_CLASS_PROG] = 0x00;
	put16(&d->config[PCI_CLASS_DEVICE], 0x0600);	/* host bridge */
	d->wmask[PCI_LATENCY_TIMER] = 0xf8;
	d->config[PCI_HEADER_TYPE] = 0x00;
	/* Chipset registers firmware programs, kept as storage only (no
	 * effect on the memory map yet): PAM0-6 (0x59-0x5f), SMRAM (0x72). */
	d->wmask[0x59] = 0x30;
	memset(&d->wmask[0x5a], 0x33, 6);
	d->config[0x72] = 0x02;
	d->wmask[0x72] = 0x78;
}

struct pci_host *pci_host_new(void)
{
	struct pci_host *host = calloc(1, sizeof(*host));

	if (!host)
		return NULL;
	bridge_init(&host->bridge);
	pci_add_device(host, &host->bridge, 0);
	return host;
}

void pci_host_free(struct pci_host *host)
{
	free(host);
}

/* ---- device helpers ---------------------------------------------------- */

void pci_device_init(struct pci_device *dev, uint16_t vendor, uint16_t device,
		     uint8_t revision, uint32_t class_code,
		     uint16_t subsys_vendor, uint16_t subsys_id,
		     uint8_t int_pin)
{
	uint8_t *c = dev->config;

	put16(&c[PCI_VENDOR_ID], vendor);
	put16(&c[PCI_DEVICE_ID], device);
	c[PCI_REVISION_ID] = revision;
	c[PCI_CLASS_PROG] = (uint8_t)class_code;
	put16(&c[PCI_CLASS_DEVICE], (uint16_t)(class_code >> 8));
	put16(&c[PCI_SUBSYSTEM_VENDOR_ID], subsys_vendor);
	put16(&c[PCI_SUBSYSTEM_ID], subsys_id);
	put16(&dev->wmask[PCI_COMMAND], PCI_COMMAND_IO | PCI_COMMAND_MEMORY |
		PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);
	put16(&dev->w1cmask[PCI_STATUS], 0xf900);
	dev->wmask[PCI_LATENCY_TIMER] = 0xff;
	c[PCI_INTERRUPT_PIN] = int_pin <= 4 ? int_pin : 0;
	dev->wmask[PCI_INTERRUPT_LINE] = 0xff;
	for (unsigned i = 0; i <= PCI_NUM_BARS; i++)
		dev->bar[i].addr = PCI_BAR_UNMAPPED;
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static unsigned bar_reg(unsigned idx)
{
	return idx == PCI_ROM_SLOT ? PCI_ROM_ADDRESS : PCI_BASE_ADDRESS_0 + 4 * idx;
}

int pci_device_set_bar(struct pci_device *dev, unsigned idx,
		       enum pci_bar_kind kind, uint64_t size, bool prefetchable,
		       const struct bus_ops *ops, void *opaque)
{
	uint8_t *c = dev->config, *w = dev->wmask;
	unsigned reg = bar_reg(idx);

	if (idx > PCI_ROM_SLOT || !is_pow2(size) ||
	    (kind == PCI_BAR_ROM) != (idx == PCI_ROM_SLOT))
		return -EINVAL;
	switch (kind) {
	case PCI_BAR_IO:
		if (size < 4 || size > 0x10000)
			return -EINVAL;
		put32(&c[reg], 0x1);
		put32(&w[reg], ~(uint32_t)(size - 1) & 0xfffffffcu);
		break;
	case PCI_BAR_MEM32:
		if (size < 16 || size > (1ull << 31))
			return -EINVAL;
		put32(&c[reg], prefetchable ? 0x8 : 0x0);
		put32(&w[reg], ~(uint32_t)(size - 1) & 0xfffffff0u);
		break;
	case PCI_BAR_MEM64:
		if (size < 16 || idx >= PCI_NUM_BARS - 1 ||
		    dev->bar[idx + 1].kind != PCI_BAR_NONE)
			return -EINVAL;
		put32(&c[reg], 0x4 | (prefetchable ? 0x8 : 0x0));
		put32(&w[reg], (uint32_t)~(size - 1) & 0xfffffff0u);
		put32(&c[reg + 4], 0);
		put32(&w[reg + 4], (uint32_t)(~(size - 1) >> 32));
		break;
	case PCI_BAR_ROM:
		if (size < 2048 || size > (16u << 20))
			return -EINVAL;
		put32(&c[reg], 0);
		put32(&w[reg], (~(uint32_t)(size - 1) & 0xfffff800u) | 1);
		break;
	default:
		return -EINVAL;
	}
	dev->bar[idx] = (struct pci_bar){
		.kind = kind, .size = size, .prefetchable = prefetchable,
		.ops = ops, .opaque = opaque, .addr = PCI_BAR_UNMAPPED,
	};
	return 0;
}

/* Where BAR @i decodes now, or PCI_BAR_UNMAPPED. */
static uint64_t bar_address(const struct pci_device *dev, unsigned i)
{
	const struct pci_bar *b = &dev->bar[i];
	uint16_t cmd = get16(&dev->config[PCI_COMMAND]);
	uint32_t lo = get32(&dev->config[bar_reg(i)]);
	uint32_t wm = get32(&dev->wmask[bar_reg(i)]);
	uint64_t addr, limit;

	switch (b->kind) {
	case PCI_BAR_IO:
		if (!(cmd & PCI_COMMAND_IO))
			return PCI_BAR_UNMAPPED;
		addr = lo & 0xfffffffcu;
		limit = 0x10000;
		break;
	case PCI_BAR_MEM32:
		if (!(cmd & PCI_COMMAND_MEMORY))
			return PCI_BAR_UNMAPPED;
		addr = lo & 0xfffffff0u;
		limit = 1ull << 32;
		break;
	case PCI_BAR_MEM64:
		if (!(cmd & PCI_COMMAND_MEMORY))
			return PCI_BAR_UNMAPPED;
		addr = (lo & 0xfffffff0u) |
		       (uint64_t)get32(&dev->config[bar_reg(i) + 4]) << 32;
		limit = 1ull << 52;	/* beyond any guest physical address */
		break;
	case PCI_BAR_ROM:
		if (!(cmd & PCI_COMMAND_MEMORY) || !(lo & 1))
			return PCI_BAR_UNMAPPED;
		addr = lo & 0xfffff800u;
		wm &= ~1u;
		limit = 1ull << 32;
		break;
	default:
		return PCI_BAR_UNMAPPED;
	}
	/* 0 is "not assigned"; all writable bits set is a sizing probe. */
	if (addr == 0 || (lo & wm) == wm || addr + b->size > limit)
		return PCI_BAR_UNMAPPED;
	return addr;
}

static struct bus *bar_bus(const struct pci_device *dev, unsigned i)
{
	if (!dev->host)
		return NULL;
	return dev->bar[i].kind == PCI_BAR_IO ? dev->host->pio : dev->host->mmio;
}

static void unmap_bar(struct pci_device *dev, unsigned i)
{
	struct pci_bar *b = &dev->bar[i];
	struct bus *bus = bar_bus(dev, i);

	if (b->addr == PCI_BAR_UNMAPPED)
		return;
	if (b->map)
		b->map(dev, i, PCI_BAR_UNMAPPED);
	else if (bus)
		bus_unregister(bus, b->addr);
	b->addr = PCI_BAR_UNMAPPED;
	if (dev->bar_mapped)
		dev->bar_mapped(dev, i, PCI_BAR_UNMAPPED);
}

static void update_mappings(struct pci_device *dev)
{
	for (unsigned i = 0; i <= PCI_NUM_BARS; i++) {
		struct pci_bar *b = &dev->bar[i];
		uint64_t addr;
		struct bus *bus;

		if (b->kind == PCI_BAR_NONE)
			continue;
		addr = bar_address(dev, i);
		if (addr == b->addr)
			continue;
		unmap_bar(dev, i);
		if (addr == PCI_BAR_UNMAPPED)
			continue;
		bus = bar_bus(dev, i);
		if (b->map) {
			b->map(dev, i, addr);
		} else if (!bus || !b->ops) {
			continue;
		} else if (bus_register(bus, addr, b->size, b->ops, b->opaque) < 0) {
			/* Overlapping BARs are the guest's mistake: the later
			 * one stays dark, as real decoders would conflict. */
			vlog_ratelimited(LOG_WARN, "PCI %02x.%u: BAR %u at 0x%llx (%llu bytes) overlaps another range; not mapped",
					 dev->devfn >> 3, dev->devfn & 7, i,
					 (unsigned long long)addr,
					 (unsigned long long)b->size);
			continue;
		}
		b->addr = addr;
		if (dev->bar_mapped)
			dev->bar_mapped(dev, i, addr);
	}
}

/* ---- expansion ROM ------------------------------------------------------ */

struct pci_rom {
	uint8_t *data;
	size_t len;		/* image length; the BAR may be larger */
};

static uint64_t rom_read(void *opaque, uint64_t offset, unsigned size)
{
	const struct pci_rom *rom = opaque;
	uint64_t v = 0;

	for (unsigned i = 0; i < size; i++)
		if (offset + i < rom->len)
			v |= (uint64_t)rom->data[offset + i] << (8 * i);
	return v;
}

static void rom_write(void *opaque, uint64_t offset, uint64_t value,
		      unsigned size)
{
}

static const struct bus_ops rom_ops = {
	.name = "pci-rom",
	.read = rom_read,
	.write = rom_write,
};

int pci_device_set_rom(struct pci_device *dev, const void *image, size_t len)
{
	struct pci_rom *rom;
	uint64_t size = 2048;
	int r;

	if (!image || !len || len > (16u << 20))
		return -EINVAL;
	while (size < len)
		size <<= 1;
	rom = calloc(1, sizeof(*rom));
	if (!rom || !(rom->data = malloc(len))) {
		free(rom);
		return -ENOMEM;
	}
	memcpy(rom->data, image, len);
	rom->len = len;
	r = pci_device_set_bar(dev, PCI_ROM_SLOT, PCI_BAR_ROM, size, false,
			       &rom_ops, rom);
	if (r < 0) {
		free(rom->data);
		free(rom);
	}
	return r;
}

void pci_device_cleanup(struct pci_device *dev)
{
	struct pci_bar *rom = &dev->bar[PCI_ROM_SLOT];

	if (dev->host)
		pci_remove_device(dev->host, dev);
	if (rom->kind == PCI_BAR_ROM && rom->ops == &rom_ops) {
		struct pci_rom *r = rom->opaque;

		free(r->data);
		free(r);
		rom->opaque = NULL;
	}
	free(dev->msix);
	dev->msix = NULL;
}

/* ---- capabilities ------------------------------------------------------- */

int pci_add_capability(struct pci_device *dev, uint8_t id, uint8_t offset,
		       uint8_t len)
{
	uint8_t *c = dev->config;

	if (offset < 0x40 || (offset & 3) || len < 2 ||
	    (unsigned)offset + len > PCI_CONFIG_SIZE)
		return -EINVAL;
	/* Refuse to overlap a capability already in the list (its length is
	 * unknown: treat its first two bytes as taken). */
	for (uint8_t p = c[PCI_CAPABILITY_LIST], n = 0; p && n < 48;
	     p = c[p + 1], n++)
		if (p >= offset && p < offset + len)
			return -EINVAL;
	c[offset] = id;
	c[offset + 1] = c[PCI_CAPABILITY_LIST];
	c[PCI_CAPABILITY_LIST] = offset;
	put16(&c[PCI_STATUS], get16(&c[PCI_STATUS]) | PCI_STATUS_CAP_LIST);
	return 0;
}

/* ---- INTx ----------------------------------------------------------------- */

/* The level the device presents on its pin: its own, unless disabled. */
static bool intx_effective(const struct pci_device *dev)
{
	return dev->intx_level &&
	       !(get16(&dev->config[PCI_COMMAND]) & PCI_COMMAND_INTX_DISABLE);
}

/* Propagate a change of the effective level to the PIRQ wired-OR. */
static void intx_drive(struct pci_device *dev, bool was, bool now)
{
	struct pci_host *host = dev->host;
	unsigned pin = dev->config[PCI_INTERRUPT_PIN], pirq;

	if (was == now || !host || pin < 1 || pin > 4)
		return;
	pirq = pci_intx_to_pirq(dev->devfn >> 3, pin);
	if (now) {
		if (host->pirq_count[pirq]++ == 0 && host->ops && host->ops->set_pirq)
			host->ops->set_pirq(host->ops_opaque, pirq, 1);
	} else if (host->pirq_count[pirq] > 0) {
		if (--host->pirq_count[pirq] == 0 && host->ops && host->ops->set_pirq)
			host->ops->set_pirq(host->ops_opaque, pirq, 0);
	}
}

/* Propagate the effective level if it changed since last time (the
 * command register's INTx disable bit masks the device's own level). */
static void update_intx(struct pci_device *dev)
{
	bool now = intx_effective(dev);

	intx_drive(dev, dev->intx_driven, now);
	dev->intx_driven = now;
}

void pci_set_irq(struct pci_device *dev, int level)
{
	uint16_t st = get16(&dev->config[PCI_STATUS]);

	dev->intx_level = level != 0;
	put16(&dev->config[PCI_STATUS], dev->intx_level ?
	      (uint16_t)(st | PCI_STATUS_INTERRUPT) :
	      (uint16_t)(st & ~PCI_STATUS_INTERRUPT));
	update_intx(dev);
}

/* ---- MSI-X ------------------------------------------------------------------ */

static uint16_t msix_ctrl(const struct pci_device *dev)
{
	return get16(&dev->config[dev->msix->cap + 2]);
}

bool pci_msix_enabled(const struct pci_device *dev)
{
	return dev->msix && (msix_ctrl(dev) & MSIX_CTRL_ENABLE);
}

static bool msix_masked(const struct pci_device *dev, unsigned v)
{
	return (msix_ctrl(dev) & MSIX_CTRL_MASKALL) ||
	       (dev->msix->table[v][3] & 1) ||
	       !(get16(&dev->config[PCI_COMMAND]) & PCI_COMMAND_MASTER);
}

static int msix_send(struct pci_device *dev, unsigned v)
{
	struct pci_host *host = dev->host;
	const uint32_t *e = dev->msix->table[v];

	if (!host || !host->ops || !host->ops->send_msi)
		return -ENODEV;
	return host->ops->send_msi(host->ops_opaque,
				   e[0] | (uint64_t)e[1] << 32, e[2]);
}

/* Send what became deliverable (unmask, enable). */
static void msix_flush_pending(struct pci_device *dev)
{
	struct pci_msix *x = dev->msix;

	if (!pci_msix_enabled(dev))
		return;
	for (unsigned v = 0; v < x->nvectors; v++) {
		uint64_t bit = 1ull << (v % 64);

		if ((x->pba[v / 64] & bit) && !msix_masked(dev, v)) {
			x->pba[v / 64] &= ~bit;
			msix_send(dev, v);
		}
	}
}

static void msix_config_written(struct pci_device *dev)
{
	if (dev->msix_changed)
		dev->msix_changed(dev);
	msix_flush_pending(dev);
}

bool pci_msix_deliverable(const struct pci_device *dev, unsigned vector)
{
	return pci_msix_enabled(dev) && vector < dev->msix->nvectors &&
	       !msix_masked(dev, vector);
}

bool pci_msix_message(const struct pci_device *dev, unsigned vector,
		      uint64_t *addr, uint32_t *data)
{
	const uint32_t *e;

	if (!dev->msix || vector >= dev->msix->nvectors)
		return false;
	e = dev->msix->table[vector];
	*addr = e[0] | (uint64_t)e[1] << 32;
	*data = e[2];
	return true;
}

int pci_msix_notify(struct pci_device *dev, unsigned vector)
{
	struct pci_msix *x = dev->msix;

	if (!x || vector >= x->nvectors || !pci_msix_enabled(dev))
		return 0;
	if (msix_masked(dev, vector)) {
		x->pba[vector / 64] |= 1ull << (vector % 64);
		return 0;
	}
	return msix_send(dev, vector);
}

/* ---- MSI (PCI 3.0 §6.8.1) ---------------------------------------------- */

#define MSI_CTRL_ENABLE		0x0001
#define MSI_CTRL_64BIT		0x0080

int pci_msi_init(struct pci_device *dev, uint8_t cap_off)
{
	uint8_t c = cap_off;

	if (pci_add_capability(dev, PCI_CAP_ID_MSI, cap_off, 14) < 0)
		return -EINVAL;
	dev->msi_cap = cap_off;
	put16(&dev->config[c + 2], MSI_CTRL_64BIT);
	dev->wmask[c + 2] = MSI_CTRL_ENABLE | 0x70;	/* enable, MME */
	for (unsigned i = 4; i < 8; i++)		/* address, dword aligned */
		dev->wmask[c + i] = i == 4 ? 0xfc : 0xff;
	for (unsigned i = 8; i < 12; i++)		/* upper address */
		dev->wmask[c + i] = 0xff;
	dev->wmask[c + 12] = dev->wmask[c + 13] = 0xff;	/* data */
	return 0;
}

bool pci_msi_enabled(const struct pci_device *dev)
{
	return dev->msi_cap &&
	       (get16(&dev->config[dev->msi_cap + 2]) & MSI_CTRL_ENABLE);
}

int pci_msi_notify(struct pci_device *dev)
{
	struct pci_host *host = dev->host;
	const uint8_t *c = &dev->config[dev->msi_cap];

	if (!pci_msi_enabled(dev) || !host || !host->ops ||
	    !host->ops->send_msi)
		return -ENODEV;
	if (!(get16(&dev->config[PCI_COMMAND]) & PCI_COMMAND_MASTER))
		return 0;
	return host->ops->send_msi(host->ops_opaque,
				   get32(c + 4) | (uint64_t)get32(c + 8) << 32,
				   get16(c + 12));
}

static uint64_t msix_read(void *opaque, uint64_t offset, unsigned size)
{
	struct pci_device *dev = opaque;
	struct pci_msix *x = dev->msix;

	if ((size != 4 && size != 8) || (offset & (size - 1)))
		return 0;
	if (offset < MSIX_PBA_OFFSET) {
		unsigned v = (unsigned)(offset / 16), w = (unsigned)(offset % 16) / 4;
		uint64_t val;

		if (v >= x->nvectors)
			return 0;
		val = x->table[v][w];
		if (size == 8 && w < 3)
			val |= (uint64_t)x->table[v][w + 1] << 32;
		return val;
	}
	offset -= MSIX_PBA_OFFSET;
	if (offset / 8 < MSIX_MAX_VECTORS / 64) {
		uint64_t q = x->pba[offset / 8];

		return size == 8 ? q : (uint32_t)(q >> (8 * (offset % 8)));
	}
	return 0;
}

static void msix_write(void *opaque, uint64_t offset, uint64_t value,
		       unsigned size)
{
	struct pci_device *dev = opaque;
	struct pci_msix *x = dev->msix;
	unsigned v, w;

	if ((size != 4 && size != 8) || (offset & (size - 1)) ||
	    offset >= MSIX_PBA_OFFSET)
		return;		/* the PBA is read-only */
	v = (unsigned)(offset / 16);
	w = (unsigned)(offset % 16) / 4;
	if (v >= x->nvectors)
		return;
	x->table[v][w] = (uint32_t)value;
	if (size == 8 && w < 3)
		x->table[v][w + 1] = (uint32_t)(value >> 32);
	x->table[v][3] &= 1;	/* only the mask bit exists in vector control */
	if (dev->msix_changed)
		dev->msix_changed(dev);
	msix_flush_pending(dev);
}

static const struct bus_ops msix_ops = {
	.name = "pci-msix",
	.read = msix_read,
	.write = msix_write,
};

int pci_msix_init(struct pci_device *dev, uint8_t cap_off, unsigned nvectors,
		  unsigned bar_idx)
{
	struct pci_msix *x;
	int r;

	if (nvectors < 1 || nvectors > MSIX_MAX_VECTORS || dev->msix ||
	    bar_idx >= PCI_NUM_BARS)
		return -EINVAL;
	r = pci_add_capability(dev, PCI_CAP_ID_MSIX, cap_off, 12);
	if (r < 0)
		return r;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	r = pci_device_set_bar(dev, bar_idx, PCI_BAR_MEM32, MSIX_BAR_SIZE,
			       false, &msix_ops, dev);
	if (r < 0) {
		free(x);
		return r;
	}
	x->cap = cap_off;
	x->nvectors = nvectors;
	for (unsigned v = 0; v < nvectors; v++)
		x->table[v][3] = 1;	/* masked at reset */
	put16(&dev->config[cap_off + 2], (uint16_t)(nvectors - 1));
	put16(&dev->wmask[cap_off + 2], MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL);
	put32(&dev->config[cap_off + 4], MSIX_TABLE_OFFSET | bar_idx);
	put32(&dev->config[cap_off + 8], MSIX_PBA_OFFSET | bar_idx);
	dev->msix = x;
	return 0;
}

/* ---- the machine's device table ---------------------------------------- */

static void pci_host_dev_free(void *dev)
{
	pci_host_free(dev);
}

/* ---- snapshot ------------------------------------------------------------ */

#define FUNC_TYPE	"(yaybata(uuuu)at)"
#define MSIX_PBA_WORDS	(MSIX_MAX_VECTORS / 64)

static GVariant *function_save(const struct pci_device *dev)
{
	const struct pci_msix *x = dev->msix;
	GVariantBuilder table;
	uint64_t addr[PCI_NUM_BARS + 1];

	for (unsigned i = 0; i <= PCI_NUM_BARS; i++)
		addr[i] = dev->bar[i].addr;
	g_variant_builder_init(&table, G_VARIANT_TYPE("a(uuuu)"));
	for (unsigned v = 0; x && v < x->nvectors; v++)
		g_variant_builder_add(&table, "(uuuu)", x->table[v][0],
				      x->table[v][1], x->table[v][2],
				      x->table[v][3]);
	return g_variant_new("(y@ayb@ata(uuuu)@at)", dev->devfn,
		g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, dev->config,
					  PCI_CONFIG_SIZE, 1),
		dev->intx_level,
		g_variant_new_fixed_array(G_VARIANT_TYPE_UINT64, addr,
					  PCI_NUM_BARS + 1, sizeof(addr[0])),
		&table,
		g_variant_new_fixed_array(G_VARIANT_TYPE_UINT64,
					  x ? x->pba : NULL, x ? MSIX_PBA_WORDS : 0,
					  sizeof(uint64_t)));
}

static GVariant *pci_host_dev_save(void *opaque)
{
	struct pci_host *host = opaque;
	GVariantBuilder funcs;

	g_variant_builder_init(&funcs, G_VARIANT_TYPE("a" FUNC_TYPE));
	for (unsigned devfn = 0; devfn < 256; devfn++)
		if (host->dev[devfn])
			g_variant_builder_add_value(&funcs,
				function_save(host->dev[devfn]));
	return g_variant_new("(u@a" FUNC_TYPE ")", host->address,
			     g_variant_builder_end(&funcs));
}

/* One function's saved state, checked against the function this machine
 * built at the same devfn. */
struct func_state {
	struct pci_device *dev;
	uint8_t config[PCI_CONFIG_SIZE];
	bool intx_level;
	uint64_t addr[PCI_NUM_BARS + 1];
	uint32_t table[MSIX_MAX_VECTORS][4];
	uint64_t pba[MSIX_PBA_WORDS];
	/* For rollback: what the function had before. */
	uint8_t old_config[PCI_CONFIG_SIZE];
	uint64_t old_addr[PCI_NUM_BARS + 1];
};

/* Bits of config byte @o that only the device's own code sets: they must
 * be what this machine's function has (IDs, header type, BAR type and
 * alignment bits, capability pointers, the MSI-X capability). */
static bool fixed_byte(const struct pci_device *dev, unsigned o)
{
	if (o < 0x04 || (o >= PCI_REVISION_ID && o <= PCI_CLASS_DEVICE + 1) ||
	    o == PCI_HEADER_TYPE || (o >= PCI_BASE_ADDRESS_0 && o < 0x34) ||
	    o == PCI_CAPABILITY_LIST || o == PCI_INTERRUPT_PIN)
		return true;
	return dev->msix && o >= dev->msix->cap && o < dev->msix->cap + 12u;
}

static int function_parse(GVariant *v, struct pci_host *host, uint8_t *devfn, struct func_state *f, char *err,
			  size_t errlen)
{
	GVariant *config, *addr, *table, *pba;
	const uint8_t *c;
	const uint64_t *a, *p;
	gsize nc, na, nt, np;
	gboolean intx;
	struct pci_device *dev, tmp;
	const struct pci_msix *x;
	unsigned slot, fn;
	int r = 0;

	g_variant_get(v, "(y@ayb@at@a(uuuu)@at)", devfn, &config, &intx, &addr,
		      &table, &pba);
	slot = *devfn >> 3;
	fn = *devfn & 7;
	dev = host->dev[*devfn];
	x = dev ? dev->msix : NULL;
	c = g_variant_get_fixed_array(config, &nc, 1);
	a = g_variant_get_fixed_array(addr, &na, sizeof(uint64_t));
	p = g_variant_get_fixed_array(pba, &np, sizeof(uint64_t));
	nt = g_variant_n_children(table);
	if (!dev)
		r = device_load_fail(err, errlen, "pci-host: function %02x.%u is not in this machine",
			      slot, fn);
	else if (nc != PCI_CONFIG_SIZE || na != PCI_NUM_BARS + 1)
		r = device_load_fail(err, errlen, "pci-host: %02x.%u: %zu config bytes, %zu BAR addresses",
			      slot, fn, (size_t)nc, (size_t)na);
	else if (nt != (x ? x->nvectors : 0) || np != (x ? MSIX_PBA_WORDS : 0))
		r = device_load_fail(err, errlen, "pci-host: %02x.%u: MSI-X table of %zu entries, PBA of %zu words",
			      slot, fn, (size_t)nt, (size_t)np);
	for (unsigned o = 0; !r && o < PCI_CONFIG_SIZE; o++)
		if (fixed_byte(dev, o) &&
		    ((c[o] ^ dev->config[o]) & ~dev->wmask[o]))
			r = device_load_fail(err, errlen, "pci-host: %02x.%u: config byte 0x%02x is 0x%02x, not 0x%02x (read-only bits; a BAR not aligned to its size?)",
				      slot, fn, o, c[o], dev->config[o]);
	if (!r && !!(c[PCI_STATUS] & PCI_STATUS_INTERRUPT) != !!intx)
		r = device_load_fail(err, errlen, "pci-host: %02x.%u: INTx level %d but status 0x%02x",
			      slot, fn, intx ? 1 : 0, c[PCI_STATUS]);
	if (!r) {
		memcpy(f->config, c, PCI_CONFIG_SIZE);
		f->dev = dev;
		f->intx_level = intx;
		tmp = *dev;
		memcpy(tmp.config, c, PCI_CONFIG_SIZE);
		for (unsigned i = 0; !r && i <= PCI_NUM_BARS; i++) {
			f->addr[i] = a[i];
			if (a[i] != PCI_BAR_UNMAPPED && a[i] != bar_address(&tmp, i))
				r = device_load_fail(err, errlen, "pci-host: %02x.%u: BAR %u mapped at 0x%llx, which its registers do not decode",
					      slot, fn, i, (unsigned long long)a[i]);
		}
	}
	for (unsigned v2 = 0; !r && v2 < nt; v2++) {
		g_variant_get_child(table, v2, "(uuuu)", &f->table[v2][0],
				    &f->table[v2][1], &f->table[v2][2],
				    &f->table[v2][3]);
		if (f->table[v2][3] & ~1u)
			r = device_load_fail(err, errlen, "pci-host: %02x.%u: MSI-X vector %u control 0x%x",
				      slot, fn, v2, f->table[v2][3]);
	}
	for (unsigned w = 0; !r && w < np; w++) {
		unsigned first = 64 * w;
		uint64_t valid = x->nvectors >= first + 64 ? ~0ull :
				 x->nvectors <= first ? 0 :
				 (1ull << (x->nvectors - first)) - 1;

		f->pba[w] = p[w];
		if (p[w] & ~valid)
			r = device_load_fail(err, errlen, "pci-host: %02x.%u: MSI-X pending bits 0x%llx past vector %u",
				      slot, fn, (unsigned long long)p[w], x->nvectors - 1);
	}
	g_variant_unref(config);
	g_variant_unref(addr);
	g_variant_unref(table);
	g_variant_unref(pba);
	return r;
}

/* Map BAR @i at @addr as update_mappings() would. */
static int map_bar_at(struct pci_device *dev, unsigned i, uint64_t addr)
{
	struct pci_bar *b = &dev->bar[i];
	struct bus *bus = bar_bus(dev, i);
	int r;

	if (addr == PCI_BAR_UNMAPPED)
		return 0;
	if (b->map) {
		b->map(dev, i, addr);
	} else {
		if (!bus || !b->ops)
			return 0;
		r = bus_register(bus, addr, b->size, b->ops, b->opaque);
		if (r < 0)
			return r;
	}
	b->addr = addr;
	if (dev->bar_mapped)
		dev->bar_mapped(dev, i, addr);
	return 0;
}

/*
 * Everything is parsed and checked first.  Then every BAR is unmapped,
 * each function gets its config space and its BARs mapped where they
 * were (a BAR left dark by an overlap stays dark); if a mapping fails
 * the old config and mappings come back.  Last, MSI-X tables and INTx:
 * the PIRQs are driven to their levels (no MSI is sent).
 */
static int pci_host_dev_load(void *opaque, uint32_t version, GVariant *state,
			     char *err, size_t errlen)
{
	struct pci_host *host = opaque;
	struct func_state *f = NULL;
	GVariant *funcs = NULL;
	unsigned nfuncs = 0, n, i, j;
	uint32_t address;
	int r = 0;

	r = device_state_check("pci-host", version, 1, state, PCI_HOST_STATE_TYPE, err, errlen);
	if (r < 0)
		return r;
	g_variant_get(state, "(u@a" FUNC_TYPE ")", &address, &funcs);
	for (i = 0; i < 256; i++)
		nfuncs += host->dev[i] != NULL;
	n = (unsigned)g_variant_n_children(funcs);
	if (address & ~ADDR_MASK)
		r = device_load_fail(err, errlen, "pci-host: CONFIG_ADDRESS 0x%08x sets reserved bits",
			      address);
	else if (n != nfuncs)
		r = device_load_fail(err, errlen, "pci-host: %u functions saved, this machine has %u",
			      n, nfuncs);
	else if (!(f = calloc(n ? n : 1, sizeof(*f))))
		r = -ENOMEM;
	for (i = 0; !r && i < n; i++) {
		GVariant *v = g_variant_get_child_value(funcs, i);
		uint8_t devfn;

		r = function_parse(v, host, &devfn, &f[i], err, errlen);
		g_variant_unref(v);
		if (!r && i && devfn <= f[i - 1].dev->devfn)
			r = device_load_fail(err, errlen, "pci-host: function %02x.%u out of order or repeated",
				      devfn >> 3, devfn & 7);
	}
	if (funcs)
		g_variant_unref(funcs);
	if (r < 0) {
		free(f);
		return r;
	}

	for (i = 0; i < n; i++) {
		memcpy(f[i].old_config, f[i].dev->config, PCI_CONFIG_SIZE);
		for (j = 0; j <= PCI_NUM_BARS; j++) {
			f[i].old_addr[j] = f[i].dev->bar[j].addr;
			unmap_bar(f[i].dev, j);
		}
	}
	for (i = 0; !r && i < n; i++) {
		memcpy(f[i].dev->config, f[i].config, PCI_CONFIG_SIZE);
		for (j = 0; !r && j <= PCI_NUM_BARS; j++) {
			r = map_bar_at(f[i].dev, j, f[i].addr[j]);
			if (r < 0)
				r = device_load_fail(err, errlen, "pci-host: %02x.%u BAR %u at 0x%llx overlaps another range",
					      f[i].dev->devfn >> 3, f[i].dev->devfn & 7,
					      j, (unsigned long long)f[i].addr[j]);
		}
	}
	if (r < 0) {
		for (i = 0; i < n; i++)
			for (j = 0; j <= PCI_NUM_BARS; j++)
				unmap_bar(f[i].dev, j);
		for (i = 0; i < n; i++) {
			memcpy(f[i].dev->config, f[i].old_config, PCI_CONFIG_SIZE);
			for (j = 0; j <= PCI_NUM_BARS; j++)
				map_bar_at(f[i].dev, j, f[i].old_addr[j]);
		}
		free(f);
		return r;
	}
	host->address = address;
	for (i = 0; i < n; i++) {
		struct pci_device *dev = f[i].dev;

		if (dev->msix) {
			memcpy(dev->msix->table, f[i].table, sizeof(f[i].table));
			memcpy(dev->msix->pba, f[i].pba, sizeof(f[i].pba));
			if (dev->msix_changed)
				dev->msix_changed(dev);
		}
		dev->intx_level = f[i].intx_level;
		update_intx(dev);
	}
	free(f);
	return 0;
}

const struct device_ops pci_host_device_ops = {
	.name = "pci-host",
	.save = pci_host_dev_save,
	.load = pci_host_dev_load,
	.state_version = 1,
	.free = pci_host_dev_free,
};
