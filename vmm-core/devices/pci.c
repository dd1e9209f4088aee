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
 */
#include "pci.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../bus.h"

#define CONFIG_ADDRESS	0xcf8
#define CONFIG_DATA	0xcfc
#define ADDR_ENABLE	0x80000000u
#define ADDR_MASK	0x80fffffcu


struct pci_host {
	uint32_t address;
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
}

int pci_add_device(struct pci_host *host, struct pci_device *dev,
		   uint8_t devfn)
{
	if (!host || !dev)
		return -EINVAL;
	if (host->dev[devfn])
		return -EEXIST;
	dev->devfn = devfn;
	host->dev[devfn] = dev;
	return 0;
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
