/* SPDX-License-Identifier: MIT */
/* tests/unit/test_pci_dev.c - PCI device plumbing: BAR sizing and mapping
 * as SeaBIOS and Linux probe them, the expansion ROM, the capability list,
 * INTx through the PIIX PIRQ swizzle, MSI-X masking and pending bits, and
 * the hooks that tell a function of BAR moves and MSI-X changes. */
#include <errno.h>
#include <string.h>

#include <glib.h>

#include "testlib.h"

#include "devices/pci.h"

static struct bus *pio, *mmio;
static struct pci_host *host;
static struct pci_device dev;

static unsigned pirq_level[4], pirq_calls;
static uint64_t msi_addr[16];
static uint32_t msi_data[16];
static unsigned msis;

static void set_pirq(void *opaque, unsigned pirq, int level)
{
	CHECK(pirq < 4);
	pirq_level[pirq & 3] = (unsigned)level;
	pirq_calls++;
}

static int send_msi(void *opaque, uint64_t addr, uint32_t data)
{
	if (msis < 16) {
		msi_addr[msis] = addr;
		msi_data[msis] = data;
	}
	msis++;
	return 0;
}

static const struct pci_host_ops host_ops = {
	.set_pirq = set_pirq,
	.send_msi = send_msi,
};

static uint64_t last_off;
static unsigned bar_reads;

static uint64_t bar_read(void *opaque, uint64_t offset, unsigned size)
{
	bar_reads++;
	last_off = offset;
	return 0x5a;
}

static void bar_write(void *opaque, uint64_t offset, uint64_t value,
		      unsigned size)
{
	last_off = offset;
}

static const struct bus_ops bar_ops = {
	.name = "test-bar", .read = bar_read, .write = bar_write,
};

static void setup(void)
{
	pio = bus_new("pio");
	mmio = bus_new("mmio");
	host = pci_host_new();
	CHECK(host != NULL);
	CHECK_EQ(pci_host_attach(host, pio, mmio), 0);
	pci_host_set_ops(host, &host_ops, NULL);
	memset(&dev, 0, sizeof(dev));
	memset(pirq_level, 0, sizeof(pirq_level));
	pirq_calls = msis = bar_reads = 0;
}

static void teardown(void)
{
	pci_device_cleanup(&dev);
	pci_host_free(host);
	bus_free(pio);
	bus_free(mmio);
}

#define DEVFN (3 << 3)		/* 00:03.0 */

static uint32_t rd(unsigned off, unsigned size)
{
	return pci_config_read(host, 0, DEVFN, off, size);
}

static void wr(unsigned off, unsigned size, uint32_t v)
{
	pci_config_write(host, 0, DEVFN, off, size, v);
}

static void test_ids_and_bad_bars(void)
{
	setup();
	pci_device_init(&dev, 0x1af4, 0x1042, 1, 0x010000, 0x1af4, 0x0002, 1);
	CHECK_EQ(pci_device_set_bar(&dev, 0, PCI_BAR_IO, 24, false, &bar_ops, NULL), -EINVAL);
	CHECK_EQ(pci_device_set_bar(&dev, 5, PCI_BAR_MEM64, 4096, false, &bar_ops, NULL), -EINVAL);
	CHECK_EQ(pci_device_set_bar(&dev, 0, PCI_BAR_ROM, 4096, false, &bar_ops, NULL), -EINVAL);
	CHECK_EQ(pci_add_device(host, &dev, DEVFN), 0);
	CHECK_EQ(rd(0, 4), 0x10421af4u);
	CHECK_EQ(rd(0x08, 4), 0x01000001u);
	CHECK_EQ(rd(0x2c, 4), 0x00021af4u);
	CHECK_EQ(rd(0x3d, 1), 1);
	wr(0x3c, 1, 11);
	CHECK_EQ(rd(0x3c, 1), 11);
	teardown();
}

/* SeaBIOS's pci_bios_get_bar(): write ~0, read the size mask, restore. */
static void test_bar_sizing_and_mapping(void)
{
	int claimed;

	setup();
	pci_device_init(&dev, 0x8086, 0x1234, 0, 0x020000, 0, 0, 1);
	CHECK_EQ(pci_device_set_bar(&dev, 0, PCI_BAR_IO, 64, false, &bar_ops, NULL), 0);
	CHECK_EQ(pci_device_set_bar(&dev, 1, PCI_BAR_MEM32, 4096, false, &bar_ops, NULL), 0);
	CHECK_EQ(pci_device_set_bar(&dev, 2, PCI_BAR_MEM64, 1 << 20, true, &bar_ops, NULL), 0);
	CHECK_EQ(pci_add_device(host, &dev, DEVFN), 0);

	CHECK_EQ(rd(0x10, 4), 0x1);
	CHECK_EQ(rd(0x18, 4), 0xc);
	wr(0x10, 4, 0xffffffff);
	CHECK_EQ(rd(0x10, 4), 0xffffffc1u);
	wr(0x14, 4, 0xffffffff);
	CHECK_EQ(rd(0x14, 4), 0xfffff000u);
	wr(0x18, 4, 0xffffffff);
	wr(0x1c, 4, 0xffffffff);
	CHECK_EQ(rd(0x18, 4), 0xfff0000cu);
	CHECK_EQ(rd(0x1c, 4), 0xffffffffu);

	/* Sizing with decode on maps nothing. */
	wr(0x04, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
	CHECK_EQ(dev.bar[0].addr, PCI_BAR_UNMAPPED);
	CHECK_EQ(dev.bar[1].addr, PCI_BAR_UNMAPPED);

	wr(0x10, 4, 0xc000);
	wr(0x14, 4, 0xfebf0000);
	wr(0x18, 4, 0x00000000);
	wr(0x1c, 4, 0x00000008);	/* 32 GiB */
	CHECK_EQ(dev.bar[0].addr, 0xc000);
	CHECK_EQ(dev.bar[1].addr, 0xfebf0000u);
	CHECK_EQ(dev.bar[2].addr, 0x800000000ull);
	CHECK_EQ(bus_read(pio, 0xc010, 1, &claimed), 0x5a);
	CHECK(claimed);
	CHECK_EQ(last_off, 0x10);
	CHECK_EQ(bus_read(mmio, 0xfebf0ffc, 4, &claimed), 0x5a);
	CHECK_EQ(last_off, 0xffc);
	CHECK_EQ(bus_read(mmio, 0x800000040ull, 4, &claimed), 0x5a);
	CHECK_EQ(last_off, 0x40);

	/* Moving a BAR leaves nothing behind at the old address. */
	wr(0x14, 4, 0xfeb00000);
	bus_read(mmio, 0xfebf0000, 4, &claimed);
	CHECK(!claimed);
	bus_read(mmio, 0xfeb00004, 4, &claimed);
	CHECK(claimed);

	/* Decode off unmaps; on again maps. */
	wr(0x04, 2, 0);
	bus_read(pio, 0xc000, 1, &claimed);
	CHECK(!claimed);
	CHECK_EQ(dev.bar[2].addr, PCI_BAR_UNMAPPED);
	wr(0x04, 2, PCI_COMMAND_IO);
	bus_read(pio, 0xc000, 1, &claimed);
	CHECK(claimed);
	CHECK_EQ(dev.bar[1].addr, PCI_BAR_UNMAPPED);

	/* An I/O BAR past 64 KiB does not decode. */
	wr(0x10, 4, 0xfffc0);
	CHECK_EQ(dev.bar[0].addr, PCI_BAR_UNMAPPED);

	pci_remove_device(host, &dev);
	CHECK_EQ(rd(0, 2), 0xffff);
	teardown();
}

static void test_overlapping_bars(void)
{
	static struct pci_device other;
	int claimed;

	setup();
	memset(&other, 0, sizeof(other));
	pci_device_init(&dev, 0x8086, 1, 0, 0, 0, 0, 0);
	pci_device_init(&other, 0x8086, 2, 0, 0, 0, 0, 0);
	CHECK_EQ(pci_device_set_bar(&dev, 0, PCI_BAR_MEM32, 4096, false, &bar_ops, NULL), 0);
	CHECK_EQ(pci_device_set_bar(&other, 0, PCI_BAR_MEM32, 4096, false, &bar_ops, NULL), 0);
	CHECK_EQ(pci_add_device(host, &dev, DEVFN), 0);
	CHECK_EQ(pci_add_device(host, &other, 4 << 3), 0);
	wr(0x10, 4, 0xfe000000);
	wr(0x04, 2, PCI_COMMAND_MEMORY);
	pci_config_write(host, 0, 4 << 3, 0x10, 4, 0xfe000000);
	pci_config_write(host, 0, 4 << 3, 0x04, 2, PCI_COMMAND_MEMORY);
	CHECK_EQ(dev.bar[0].addr, 0xfe000000u);
	CHECK_EQ(other.bar[0].addr, PCI_BAR_UNMAPPED);
	/* Once the first moves away, reprogramming the second maps it. */
	wr(0x10, 4, 0xfd000000);
	pci_config_write(host, 0, 4 << 3, 0x10, 4, 0xfe000000);
	CHECK_EQ(other.bar[0].addr, 0xfe000000u);
	bus_read(mmio, 0xfe000000, 4, &claimed);
	CHECK(claimed);
	pci_device_cleanup(&other);
	teardown();
}

static void test_rom(void)
{
	uint8_t image[3000];
	int claimed;

	setup();
	for (unsigned i = 0; i < sizeof(image); i++)
		image[i] = (uint8_t)(i * 7);
	image[0] = 0x55;
	image[1] = 0xaa;
	pci_device_init(&dev, 0x1234, 0x1111, 0, 0x030000, 0, 0, 0);
	CHECK_EQ(pci_device_set_rom(&dev, image, sizeof(image)), 0);
	CHECK_EQ(pci_add_device(host, &dev, DEVFN), 0);
	wr(0x30, 4, 0xfffffffe);
	CHECK_EQ(rd(0x30, 4), 0xfffff000u);		/* 4 KiB */
	wr(0x30, 4, 0xfeb40000 | 1);
	CHECK_EQ(dev.bar[PCI_ROM_SLOT].addr, PCI_BAR_UNMAPPED);	/* memory decode off */
	wr(0x04, 2, PCI_COMMAND_MEMORY);
	CHECK_EQ(dev.bar[PCI_ROM_SLOT].addr, 0xfeb40000u);
	CHECK_EQ(bus_read(mmio, 0xfeb40000, 2, &claimed), 0xaa55);
	CHECK_EQ(bus_read(mmio, 0xfeb40000 + 2999, 1, &claimed), (uint8_t)(2999 * 7));
	CHECK_EQ(bus_read(mmio, 0xfeb40000 + 3000, 4, &claimed), 0);	/* padding */
	bus_write(mmio, 0xfeb40000, 0, 2, &claimed);
	CHECK_EQ(bus_read(mmio, 0xfeb40000, 2, &claimed), 0xaa55);
	wr(0x30, 4, 0xfeb40000);			/* ROM enable off */
	bus_read(mmio, 0xfeb40000, 2, &claimed);
	CHECK(!claimed);
	teardown();
}

static void test_capabilities(void)
{
	setup();
	pci_device_init(&dev, 0x1af4, 0x1042, 1, 0, 0, 0, 1);
	CHECK_EQ(pci_add_capability(&dev, PCI_CAP_ID_VNDR, 0x40, 16), 0);
	CHECK_EQ(pci_add_capability(&dev, PCI_CAP_ID_VNDR, 0x50, 16), 0);
	CHECK_EQ(pci_add_capability(&dev, PCI_CAP_ID_VNDR, 0x48, 16), -EINVAL);
	CHECK_EQ(pci_add_capability(&dev, PCI_CAP_ID_VNDR, 0x3c, 4), -EINVAL);
	CHECK_EQ(pci_add_capability(&dev, PCI_CAP_ID_VNDR, 0xfc, 8), -EINVAL);
	CHECK_EQ(pci_add_device(host, &dev, DEVFN), 0);
	CHECK(rd(0x06, 2) & PCI_STATUS_CAP_LIST);
	/* Walk as Linux's pci_find_capability does. */
	CHECK_EQ(rd(0x34, 1), 0x50);
	CHECK_EQ(rd(0x51, 1), 0x40);
	CHECK_EQ(rd(0x41, 1), 0);
	teardown();
}

/* Slot 3, INTA -> PIRQ D; slot 4 INTA -> PIRQ A; two devices on one PIRQ
 * form a wired-OR. */
static void test_intx(void)
{
	static struct pci_device b;

	setup();
	memset(&b, 0, sizeof(b));
	pci_device_init(&dev, 0x8086, 1, 0, 0, 0, 0, 1);
	pci_device_init(&b, 0x8086, 2, 0, 0, 0, 0, 2);	/* INTB of slot 2 */
	CHECK_EQ(pci_add_device(host, &dev, DEVFN), 0);
	CHECK_EQ(pci_add_device(host, &b, 2 << 3), 0);
	CHECK_EQ(pci_intx_to_pirq(3, 1), 3);
	CHECK_EQ(pci_intx_to_pirq(2, 2), 3);
	CHECK_EQ(pci_intx_to_pirq(4, 1), 0);

	pci_set_irq(&dev, 1);
	CHECK_EQ(pirq_level[3], 1);
	CHECK(rd(0x06, 2) & PCI_STATUS_INTERRUPT);
	pci_set_irq(&b, 1);
	pci_set_irq(&dev, 0);
	CHECK_EQ(pirq_level[3], 1);			/* b still holds it */
	CHECK(!(rd(0x06, 2) & PCI_STATUS_INTERRUPT));
	pci_set_irq(&b, 0);
	CHECK_EQ(pirq_level[3], 0);
	CHECK_EQ(pirq_calls, 2);

	/* INTx disable masks the pin but not the status bit. */
	pci_set_irq(&dev, 1);
	wr(0x04, 2, PCI_COMMAND_INTX_DISABLE);
	CHECK_EQ(pirq_level[3], 0);
	CHECK(rd(0x06, 2) & PCI_STATUS_INTERRUPT);
	pci_set_irq(&dev, 1);				/* repeated: no change */
	CHECK_EQ(pirq_level[3], 0);
	wr(0x04, 2, 0);
	CHECK_EQ(pirq_level[3], 1);
	/* Removing an asserting device releases its PIRQ. */
	pci_remove_device(host, &dev);
	CHECK_EQ(pirq_level[3], 0);
	pci_device_cleanup(&b);
	teardown();
}

static void msix_entry(uint64_t bar, unsigned v, uint64_t addr, uint32_t data,
		       uint32_t ctrl)
{
	int claimed;

	bus_write(mmio, bar + 16 * v, (uint32_t)addr, 4, &claimed);
	bus_write(mmio, bar + 16 * v + 4, addr >> 32, 4, &claimed);
	bus_write(mmio, bar + 16 * v + 8, data, 4, &claimed);
	bus_write(mmio, bar + 16 * v + 12, ctrl, 4, &claimed);
}

static void test_msix(void)
{
	const uint64_t bar = 0xfebf1000;
	int claimed;

	setup();
	pci_device_init(&dev, 0x1af4, 0x1042, 1, 0, 0, 0, 1);
	CHECK_EQ(pci_msix_init(&dev, 0x98, 0, 1), -EINVAL);
	CHECK_EQ(pci_msix_init(&dev, 0x98, 3, 1), 0);
	CHECK_EQ(pci_add_device(host, &dev, DEVFN), 0);
	CHECK_EQ(rd(0x98, 1), PCI_CAP_ID_MSIX);
	CHECK_EQ(rd(0x9a, 2), 2);			/* table size - 1 */
	CHECK_EQ(rd(0x9c, 4), 0x1);			/* table in BAR 1 at 0 */
	CHECK_EQ(rd(0xa0, 4), 0x801);			/* PBA at 2048 */
	wr(0x14, 4, (uint32_t)bar);
	wr(0x04, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	CHECK(!pci_msix_enabled(&dev));
	CHECK_EQ(pci_msix_notify(&dev, 0), 0);
	CHECK_EQ(msis, 0);

	/* Entries come up masked. */
	CHECK_EQ(bus_read(mmio, bar + 12, 4, &claimed), 1);
	wr(0x9a, 2, 0x8000);
	CHECK(pci_msix_enabled(&dev));
	pci_msix_notify(&dev, 1);
	CHECK_EQ(msis, 0);
	CHECK_EQ(bus_read(mmio, bar + 2048, 8, &claimed), 0x2);	/* pending */
	/* Unmasking the entry delivers the pending message. */
	msix_entry(bar, 1, 0xfee01000, 0x4041, 0);
	CHECK_EQ(msis, 1);
	CHECK_EQ(msi_addr[0], 0xfee01000u);
	CHECK_EQ(msi_data[0], 0x4041);
	CHECK_EQ(bus_read(mmio, bar + 2048, 8, &claimed), 0);
	pci_msix_notify(&dev, 1);
	CHECK_EQ(msis, 2);

	/* Function mask holds everything; clearing it delivers. */
	wr(0x9a, 2, 0xc000);
	pci_msix_notify(&dev, 1);
	CHECK_EQ(msis, 2);
	wr(0x9a, 2, 0x8000);
	CHECK_EQ(msis, 3);

	/* Bus mastering off: no message leaves the device. */
	wr(0x04, 2, PCI_COMMAND_MEMORY);
	pci_msix_notify(&dev, 1);
	CHECK_EQ(msis, 3);
	wr(0x04, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	CHECK_EQ(msis, 4);

	/* Hostile indexes and access sizes. */
	CHECK_EQ(pci_msix_notify(&dev, 3), 0);
	CHECK_EQ(pci_msix_notify(&dev, 0xffff), 0);
	CHECK_EQ(msis, 4);
	bus_write(mmio, bar + 16 * 100, 0x1234, 4, &claimed);	/* past the table */
	bus_write(mmio, bar + 2048, ~0ull, 8, &claimed);	/* PBA read-only */
	CHECK_EQ(bus_read(mmio, bar + 2048, 8, &claimed), 0);
	bus_write(mmio, bar + 1, 0xff, 1, &claimed);
	CHECK_EQ(bus_read(mmio, bar, 4, &claimed), 0);	/* byte write ignored */
	/* 64-bit table access. */
	bus_write(mmio, bar + 32, 0x00000001fee02000ull, 8, &claimed);
	CHECK_EQ(bus_read(mmio, bar + 32, 8, &claimed), 0x00000001fee02000ull);
	/* Vector control: only the mask bit sticks. */
	bus_write(mmio, bar + 12, 0xfffffffe, 4, &claimed);
	CHECK_EQ(bus_read(mmio, bar + 12, 4, &claimed), 0);
	teardown();
}

/* ---- hooks: bar_mapped, msix_changed -------------------------------------- */

static struct { unsigned bar; uint64_t addr; } mapped[16];
static unsigned nmapped, nchanged, changed_msis;

static void hook_bar_mapped(struct pci_device *d, unsigned bar, uint64_t addr)
{
	CHECK(d == &dev);
	CHECK_EQ(d->bar[bar].addr, addr);	/* told after the fact */
	if (nmapped < 16)
		mapped[nmapped] = (typeof(mapped[0])){ bar, addr };
	nmapped++;
}

static void hook_msix_changed(struct pci_device *d)
{
	CHECK(d == &dev);
	nchanged++;
	changed_msis = msis;	/* pending vectors are sent after the hook */
}

static void test_hooks(void)
{
	const uint64_t bar = 0xfebf1000;
	uint64_t addr;
	uint32_t data;

	setup();
	nmapped = nchanged = 0;
	pci_device_init(&dev, 0x1af4, 0x1042, 1, 0, 0, 0, 1);
	CHECK_EQ(pci_device_set_bar(&dev, 0, PCI_BAR_MEM32, 4096, false,
				    &bar_ops, NULL), 0);
	CHECK_EQ(pci_msix_init(&dev, 0x98, 2, 1), 0);
	dev.bar_mapped = hook_bar_mapped;
	dev.msix_changed = hook_msix_changed;
	CHECK_EQ(pci_add_device(host, &dev, DEVFN), 0);

	/* Addresses alone change nothing; decode on maps both BARs. */
	wr(0x10, 4, 0xfebf0000);
	wr(0x14, 4, (uint32_t)bar);
	CHECK_EQ(nmapped, 0);
	wr(0x04, 2, PCI_COMMAND_MEMORY);
	CHECK_EQ(nmapped, 2);
	CHECK(mapped[0].bar == 0 && mapped[0].addr == 0xfebf0000);
	CHECK(mapped[1].bar == 1 && mapped[1].addr == bar);
	/* A move: unmap, then map; a rewrite of the same address: nothing. */
	nmapped = 0;
	wr(0x10, 4, 0xfeb00000);
	CHECK_EQ(nmapped, 2);
	CHECK(mapped[0].bar == 0 && mapped[0].addr == PCI_BAR_UNMAPPED);
	CHECK(mapped[1].bar == 0 && mapped[1].addr == 0xfeb00000);
	wr(0x10, 4, 0xfeb00000);
	CHECK_EQ(nmapped, 2);
	/* Decode off unmaps every BAR. */
	wr(0x04, 2, 0);
	CHECK_EQ(nmapped, 4);
	CHECK(mapped[2].addr == PCI_BAR_UNMAPPED && mapped[3].addr == PCI_BAR_UNMAPPED);
	wr(0x04, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	CHECK_EQ(nmapped, 6);

	/* MSI-X: control writes and table writes; not other config. */
	CHECK_EQ(nchanged, 0);
	wr(0x9a, 2, 0x8000);
	CHECK_EQ(nchanged, 1);
	CHECK(!pci_msix_deliverable(&dev, 0));	/* entries start masked */
	pci_msix_notify(&dev, 0);		/* pending */
	msix_entry(bar, 0, 0xfee00000, 0x41, 0);
	CHECK_EQ(nchanged, 5);			/* four 4-byte writes */
	CHECK_EQ(changed_msis, 0);		/* the hook came first */
	CHECK_EQ(msis, 1);
	CHECK(pci_msix_deliverable(&dev, 0));
	CHECK(!pci_msix_deliverable(&dev, 1));
	CHECK(!pci_msix_deliverable(&dev, 2));	/* out of range */
	CHECK(pci_msix_message(&dev, 0, &addr, &data));
	CHECK(addr == 0xfee00000 && data == 0x41);
	CHECK(!pci_msix_message(&dev, 2, &addr, &data));
	wr(0x3c, 1, 11);			/* interrupt line: no hook */
	CHECK_EQ(nchanged, 5);
	wr(0x9a, 2, 0xc000);			/* function mask */
	CHECK_EQ(nchanged, 6);
	CHECK(!pci_msix_deliverable(&dev, 0));
	wr(0x9a, 2, 0x8000);
	wr(0x04, 2, PCI_COMMAND_MEMORY);	/* bus master off */
	CHECK(!pci_msix_deliverable(&dev, 0));

	/* Removal unmaps, and says so. */
	nmapped = 0;
	pci_remove_device(host, &dev);
	CHECK_EQ(nmapped, 2);
	teardown();
}

/* ---- snapshot ------------------------------------------------------------ */

/* A function with every kind of BAR, MSI-X and INTA, at DEVFN of @h. */
static void build(struct pci_host *h, struct pci_device *d)
{
	static const uint8_t rom[16] = { 0x55, 0xaa, 1 };

	memset(d, 0, sizeof(*d));
	pci_device_init(d, 0x1af4, 0x1042, 1, 0x010000, 0x1af4, 2, 1);
	CHECK_EQ(pci_device_set_bar(d, 0, PCI_BAR_IO, 64, false, &bar_ops, NULL), 0);
	CHECK_EQ(pci_msix_init(d, 0x98, 3, 1), 0);
	CHECK_EQ(pci_device_set_bar(d, 2, PCI_BAR_MEM64, 1 << 20, true, &bar_ops, NULL), 0);
	CHECK_EQ(pci_device_set_rom(d, rom, sizeof(rom)), 0);
	CHECK_EQ(pci_add_device(h, d, DEVFN), 0);
}

/* A second function at 00:04.0 whose BAR overlaps the first's MSI-X BAR. */
static void build_other(struct pci_host *h, struct pci_device *d)
{
	memset(d, 0, sizeof(*d));
	pci_device_init(d, 0x8086, 2, 0, 0, 0, 0, 0);
	CHECK_EQ(pci_device_set_bar(d, 0, PCI_BAR_MEM32, 4096, false, &bar_ops, NULL), 0);
	CHECK_EQ(pci_add_device(h, d, 4 << 3), 0);
}

/* A pci-host state taken apart, to be changed and put back together. */
struct fstate {
	guint8 devfn;
	uint8_t config[256];
	gboolean intx;
	uint64_t addr[7];
	uint32_t tab[8][4];
	unsigned ntab, npba;
	uint64_t pba[2];
};

static unsigned take_apart(GVariant *s, uint32_t *address, struct fstate *f)
{
	GVariant *funcs;
	unsigned n;

	g_variant_get(s, "(u@a(yaybata(uuuu)at))", address, &funcs);
	n = (unsigned)g_variant_n_children(funcs);
	for (unsigned i = 0; i < n && i < 4; i++) {
		GVariant *fn = g_variant_get_child_value(funcs, i);
		GVariant *c, *a, *t, *p;
		const void *data;
		gsize len;

		g_variant_get(fn, "(y@ayb@at@a(uuuu)@at)", &f[i].devfn, &c,
			      &f[i].intx, &a, &t, &p);
		data = g_variant_get_fixed_array(c, &len, 1);
		memcpy(f[i].config, data, len < 256 ? len : 256);
		data = g_variant_get_fixed_array(a, &len, 8);
		memcpy(f[i].addr, data, 8 * (len < 7 ? len : 7));
		f[i].ntab = (unsigned)g_variant_n_children(t);
		for (unsigned v = 0; v < f[i].ntab && v < 8; v++)
			g_variant_get_child(t, v, "(uuuu)", &f[i].tab[v][0],
					    &f[i].tab[v][1], &f[i].tab[v][2],
					    &f[i].tab[v][3]);
		data = g_variant_get_fixed_array(p, &len, 8);
		f[i].npba = (unsigned)len;
		memcpy(f[i].pba, data, 8 * (len < 2 ? len : 2));
		g_variant_unref(c);
		g_variant_unref(a);
		g_variant_unref(t);
		g_variant_unref(p);
		g_variant_unref(fn);
	}
	g_variant_unref(funcs);
	return n;
}

static GVariant *put_together(uint32_t address, const struct fstate *f,
			      unsigned n)
{
	GVariantBuilder funcs;

	g_variant_builder_init(&funcs, G_VARIANT_TYPE("a(yaybata(uuuu)at)"));
	for (unsigned i = 0; i < n; i++) {
		GVariantBuilder t;

		g_variant_builder_init(&t, G_VARIANT_TYPE("a(uuuu)"));
		for (unsigned v = 0; v < f[i].ntab; v++)
			g_variant_builder_add(&t, "(uuuu)", f[i].tab[v][0],
					      f[i].tab[v][1], f[i].tab[v][2],
					      f[i].tab[v][3]);
		g_variant_builder_add(&funcs, "(y@ayb@ata(uuuu)@at)", f[i].devfn,
			g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, f[i].config, 256, 1),
			f[i].intx,
			g_variant_new_fixed_array(G_VARIANT_TYPE_UINT64, f[i].addr, 7, 8),
			&t,
			g_variant_new_fixed_array(G_VARIANT_TYPE_UINT64, f[i].pba,
						  f[i].npba, 8));
	}
	return g_variant_ref_sink(g_variant_new("(ua(yaybata(uuuu)at))",
						address, &funcs));
}

static void test_save_load(void)
{
	struct bus *pio2 = bus_new("pio2"), *mmio2 = bus_new("mmio2");
	struct pci_host *host2 = pci_host_new();
	static struct pci_device other, dev2, other2;
	const uint64_t msix_bar = 0xfebf1000;
	GVariant *a, *b;
	char err[160] = "";
	int claimed;

	setup();
	CHECK_EQ(pci_host_attach(host2, pio2, mmio2), 0);
	pci_host_set_ops(host2, &host_ops, NULL);
	build(host, &dev);
	build_other(host, &other);
	build(host2, &dev2);
	build_other(host2, &other2);

	/* Program and enable everything, as firmware would. */
	wr(0x10, 4, 0xc000);
	wr(0x14, 4, (uint32_t)msix_bar);
	wr(0x18, 4, 0x00000000);
	wr(0x1c, 4, 0x00000008);
	wr(0x30, 4, 0xfeb40001);
	wr(0x3c, 1, 11);
	wr(0x04, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	pci_config_write(host, 0, 4 << 3, 0x10, 4, (uint32_t)msix_bar);
	pci_config_write(host, 0, 4 << 3, 0x04, 2, PCI_COMMAND_MEMORY);
	CHECK_EQ(other.bar[0].addr, PCI_BAR_UNMAPPED);	/* dark: overlap */
	wr(0x9a, 2, 0x8000);				/* MSI-X on */
	msix_entry(msix_bar, 1, 0xfee01000, 0x4041, 0);
	msix_entry(msix_bar, 2, 0xfee02000, 0x4042, 1);	/* masked ... */
	pci_msix_notify(&dev, 2);			/* ... and pending */
	pci_set_irq(&dev, 1);				/* INTA -> PIRQ D */
	CHECK_EQ(pirq_level[3], 1);
	io_write(pio, 0xcf8, 0x80000000u | DEVFN << 8 | 0x3c, 4);

	a = g_variant_ref_sink(pci_host_device_ops.save(host));
	CHECK(g_variant_is_of_type(a, G_VARIANT_TYPE(PCI_HOST_STATE_TYPE)));
	pirq_level[3] = 0;
	pirq_calls = msis = 0;
	CHECK_EQ(pci_host_device_ops.load(host2, 1, a, err, sizeof(err)), 0);
	CHECK_EQ(err[0], 0);
	CHECK_EQ(pirq_level[3], 1);			/* PIRQ D re-driven */
	CHECK_EQ(pirq_calls, 1);
	CHECK_EQ(msis, 0);				/* no message sent */
	b = g_variant_ref_sink(pci_host_device_ops.save(host2));
	CHECK(g_variant_equal(a, b));
	g_variant_unref(b);

	/* The BARs decode on the new buses, where they were. */
	bar_reads = 0;
	CHECK_EQ(bus_read(pio2, 0xc010, 1, &claimed), 0x5a);
	CHECK(claimed);
	CHECK_EQ(bus_read(mmio2, 0x800000040ull, 4, &claimed), 0x5a);
	CHECK(claimed);
	CHECK_EQ(last_off, 0x40);
	CHECK_EQ(bar_reads, 2);
	CHECK_EQ(bus_read(mmio2, 0xfeb40000, 2, &claimed), 0xaa55);
	CHECK_EQ(dev2.bar[1].addr, msix_bar);
	CHECK_EQ(other2.bar[0].addr, PCI_BAR_UNMAPPED);	/* still dark */
	CHECK_EQ(bus_read(mmio2, msix_bar + 16 + 8, 4, &claimed), 0x4041);
	CHECK_EQ(bus_read(mmio2, msix_bar + 2048, 8, &claimed), 0x4);
	/* CONFIG_ADDRESS survived: CONFIG_DATA reads the interrupt line. */
	CHECK_EQ(io_read(pio2, 0xcf8, 4), 0x80000000u | DEVFN << 8 | 0x3c);
	CHECK_EQ(io_read(pio2, 0xcfc, 1), 11);
	/* Unmasking vector 2 delivers what was pending before the save, on
	 * the original and on the restored function alike. */
	msix_entry(msix_bar, 2, 0xfee02000, 0x4042, 0);
	CHECK_EQ(msis, 1);
	{
		struct bus *m1 = mmio;

		mmio = mmio2;
		msix_entry(msix_bar, 2, 0xfee02000, 0x4042, 0);
		mmio = m1;
	}
	CHECK_EQ(msis, 2);
	CHECK_EQ(msi_data[1], 0x4042);
	/* And on from there: INTx drops, a BAR moves. */
	pci_set_irq(&dev2, 0);
	CHECK_EQ(pirq_level[3], 0);
	pci_config_write(host2, 0, DEVFN, 0x10, 4, 0xd000);
	CHECK_EQ(bus_read(pio2, 0xd000, 1, &claimed), 0x5a);
	bus_read(pio2, 0xc000, 1, &claimed);
	CHECK(!claimed);

	g_variant_unref(a);
	pci_device_cleanup(&dev2);
	pci_device_cleanup(&other2);
	pci_device_cleanup(&other);
	pci_host_free(host2);
	bus_free(pio2);
	bus_free(mmio2);
	teardown();
}

static void test_load_refuses(void)
{
	struct bus *pio2 = bus_new("pio2"), *mmio2 = bus_new("mmio2");
	struct pci_host *host2 = pci_host_new();
	static struct pci_device dev2;
	struct fstate good[4], f[4];
	GVariant *a, *moved, *before, *after;
	uint32_t address, addr;
	char err[160];
	unsigned n, nf;
	const unsigned d = 1;
	int claimed;

	setup();
	CHECK_EQ(pci_host_attach(host2, pio2, mmio2), 0);
	pci_host_set_ops(host2, &host_ops, NULL);
	build(host, &dev);
	build(host2, &dev2);
	wr(0x10, 4, 0xc000);
	wr(0x14, 4, 0xfebf1000);
	wr(0x04, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
	a = g_variant_ref_sink(pci_host_device_ops.save(host));
	CHECK_EQ(pci_host_device_ops.load(host2, 1, a, err, sizeof(err)), 0);
	before = g_variant_ref_sink(pci_host_device_ops.save(host2));
	n = take_apart(a, &address, good);
	CHECK_EQ(n, 2);					/* bridge, ours */
	CHECK_EQ(good[d].devfn, DEVFN);

	CHECK_EQ(pci_host_device_ops.load(host2, 2, a, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "pci-host: state version 2 not supported") != NULL);
#define REFUSED(v, why)                                                      \
	do {                                                                 \
		GVariant *s__ = (v);                                         \
		err[0] = 0;                                                  \
		CHECK_EQ(pci_host_device_ops.load(host2, 1, s__, err, sizeof(err)), -EINVAL); \
		CHECK(strncmp(err, "pci-host:", 9) == 0);                    \
		CHECK(strstr(err, why) != NULL);                             \
		g_variant_unref(s__);                                        \
	} while (0)
#define MUTATED(stmt, why)                                                   \
	do {                                                                 \
		memcpy(f, good, sizeof(f));                                  \
		nf = n;                                                      \
		addr = address;                                              \
		stmt;                                                        \
		REFUSED(put_together(addr, f, nf), why);                     \
	} while (0)
	REFUSED(g_variant_ref_sink(g_variant_new("(uay)", 0, NULL)), "type");
	MUTATED(f[d].config[0x10] = 0x05, "byte 0x10");	/* I/O BAR misaligned */
	MUTATED(f[d].config[0x14] = 0x10, "byte 0x14");	/* MEM BAR misaligned */
	MUTATED(f[d].config[0x00] = 0x86, "byte 0x00");	/* another vendor */
	MUTATED(f[d].config[0x9c] = 0x02, "byte 0x9c");	/* MSI-X table BIR */
	MUTATED(f[d].devfn = 5 << 3, "not in this machine");
	MUTATED(f[0] = f[d], "repeated");
	MUTATED(nf = 1, "1 functions saved");
	MUTATED(f[d].addr[0] = 0xc040, "do not decode");
	MUTATED(f[d].addr[3] = 0x1000, "do not decode");	/* no BAR 3 */
	MUTATED(f[d].tab[1][3] = 2, "vector 1 control");
	MUTATED(f[d].pba[0] = 1u << 3, "pending bits");	/* vector 3 of 3 */
	MUTATED(f[d].ntab = 2, "table of 2");
	MUTATED(f[d].npba = 1, "PBA of 1");
	MUTATED(f[d].intx = TRUE, "INTx level 1");	/* status bit clear */
	MUTATED(addr = 0x80000001, "CONFIG_ADDRESS");
	/* A BAR on a range already taken on the new bus: refused, and the
	 * old mappings are back. */
	wr(0x14, 4, 0xfd000000);
	moved = g_variant_ref_sink(pci_host_device_ops.save(host));
	CHECK_EQ(bus_register(mmio2, 0xfd000000, 16, &bar_ops, NULL), 0);
	REFUSED(moved, "overlaps");
#undef MUTATED
#undef REFUSED
	after = g_variant_ref_sink(pci_host_device_ops.save(host2));
	CHECK(g_variant_equal(before, after));
	CHECK_EQ(dev2.bar[0].addr, 0xc000);
	CHECK_EQ(dev2.bar[1].addr, 0xfebf1000u);
	bus_read(mmio2, 0xfebf1000, 4, &claimed);
	CHECK(claimed);
	bus_read(pio2, 0xc000, 1, &claimed);
	CHECK(claimed);
	g_variant_unref(a);
	g_variant_unref(before);
	g_variant_unref(after);
	pci_device_cleanup(&dev2);
	pci_host_free(host2);
	bus_free(pio2);
	bus_free(mmio2);
	teardown();
}

int main(void)
{
	RUN_TEST(test_ids_and_bad_bars);
	RUN_TEST(test_bar_sizing_and_mapping);
	RUN_TEST(test_overlapping_bars);
	RUN_TEST(test_rom);
	RUN_TEST(test_capabilities);
	RUN_TEST(test_intx);
	RUN_TEST(test_msix);
	RUN_TEST(test_hooks);
	RUN_TEST(test_save_load);
	RUN_TEST(test_load_refuses);
	return check_finish();
}
