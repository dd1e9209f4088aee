/* SPDX-License-Identifier: MIT */
/* tests/unit/test_piix.c - PIIX3 PIRQ routing as SeaBIOS programs it
 * (PIRQRC = 10, 10, 11, 11), and the PIIX4 PM function's fixed PM base
 * and SMM-less DEVACTB. */
#include <string.h>

#include "testlib.h"

#include "devices/piix.h"

static unsigned isa_level[16], isa_calls;

static void set_isa_irq(void *opaque, unsigned irq, int level)
{
	CHECK(irq < 16);
	isa_level[irq & 15] = (unsigned)level;
	isa_calls++;
}

static const struct piix_ops ops = { .set_isa_irq = set_isa_irq };

static void test_ids(void)
{
	struct pci_host *host = pci_host_new();
	struct piix *p = piix_new(host, &ops, NULL);

	CHECK(p != NULL);
	CHECK_EQ(pci_config_read(host, 0, PIIX_DEVFN_ISA, 0, 4), 0x70008086u);
	CHECK_EQ(pci_config_read(host, 0, PIIX_DEVFN_ISA, 0x0e, 1), 0x80);
	CHECK_EQ(pci_config_read(host, 0, PIIX_DEVFN_ISA, 0x0a, 2), 0x0601);
	CHECK_EQ(pci_config_read(host, 0, PIIX_DEVFN_PM, 0, 4), 0x71138086u);
	CHECK_EQ(pci_config_read(host, 0, PIIX_DEVFN_PM, 0x40, 4), 0x601);
	pci_config_write(host, 0, PIIX_DEVFN_PM, 0x40, 4, 0xb001);
	CHECK_EQ(pci_config_read(host, 0, PIIX_DEVFN_PM, 0x40, 4), 0x601);
	/* APMC_EN stays set whatever SeaBIOS writes. */
	pci_config_write(host, 0, PIIX_DEVFN_PM, 0x58, 4, 0);
	CHECK(pci_config_read(host, 0, PIIX_DEVFN_PM, 0x58, 4) & (1u << 25));
	/* Storage registers read back. */
	pci_config_write(host, 0, PIIX_DEVFN_PM, 0x80, 1, 1);
	CHECK_EQ(pci_config_read(host, 0, PIIX_DEVFN_PM, 0x80, 1), 1);
	piix_free(p);
	pci_host_free(host);
}

static void test_pirq_routing(void)
{
	struct pci_host *host = pci_host_new();
	struct piix *p = piix_new(host, &ops, NULL);

	memset(isa_level, 0, sizeof(isa_level));
	isa_calls = 0;
	/* Disabled at reset: nothing reaches the 8259A. */
	CHECK_EQ(pci_config_read(host, 0, PIIX_DEVFN_ISA, 0x60, 4), 0x80808080u);
	piix_set_pirq(p, 0, 1);
	CHECK_EQ(isa_calls, 0);
	/* Routing an asserted PIRQ raises its IRQ at once. */
	pci_config_write(host, 0, PIIX_DEVFN_ISA, 0x60, 1, 10);
	CHECK_EQ(isa_level[10], 1);
	pci_config_write(host, 0, PIIX_DEVFN_ISA, 0x61, 1, 10);
	piix_set_pirq(p, 1, 1);
	piix_set_pirq(p, 0, 0);
	CHECK_EQ(isa_level[10], 1);		/* PIRQB still holds IRQ 10 */
	piix_set_pirq(p, 1, 0);
	CHECK_EQ(isa_level[10], 0);
	/* Moving a route moves the level. */
	pci_config_write(host, 0, PIIX_DEVFN_ISA, 0x63, 1, 11);
	piix_set_pirq(p, 3, 1);
	CHECK_EQ(isa_level[11], 1);
	pci_config_write(host, 0, PIIX_DEVFN_ISA, 0x63, 1, 5);
	CHECK_EQ(isa_level[11], 0);
	CHECK_EQ(isa_level[5], 1);
	/* Reserved IRQs and the disable bit route nowhere. */
	pci_config_write(host, 0, PIIX_DEVFN_ISA, 0x63, 1, 2);
	CHECK_EQ(isa_level[5], 0);
	CHECK_EQ(isa_level[2], 0);
	pci_config_write(host, 0, PIIX_DEVFN_ISA, 0x63, 1, 0x8b);
	CHECK_EQ(isa_level[11], 0);
	piix_set_pirq(p, 7, 1);			/* out of range: ignored */
	piix_free(p);
	pci_host_free(host);
}

int main(void)
{
	RUN_TEST(test_ids);
	RUN_TEST(test_pirq_routing);
	return check_finish();
}
