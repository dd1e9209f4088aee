/* SPDX-License-Identifier: MIT */
/* tests/unit/test_piix.c - PIIX3 PIRQ routing as SeaBIOS programs it
 * (PIRQRC = 10, 10, 11, 11), and the PIIX4 PM function's fixed PM base
 * and SMM-less DEVACTB. */
#include <errno.h>
#include <string.h>

#include <glib.h>

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

/* The routes and the PM function's config travel in the host's state;
 * the PIIX's own carries the PIRQ and 8259A levels. */
static void test_save_load(void)
{
	struct pci_host *host = pci_host_new(), *host2 = pci_host_new();
	struct piix *p = piix_new(host, &ops, NULL);
	struct piix *p2 = piix_new(host2, &ops, NULL);
	GVariant *hs, *ps, *ps2, *hs2;
	char err[160] = "";

	memset(isa_level, 0, sizeof(isa_level));
	pci_config_write(host, 0, PIIX_DEVFN_ISA, 0x60, 4, 0x0b0b0a0a);
	pci_config_write(host, 0, PIIX_DEVFN_PM, 0x80, 1, 0);
	pci_config_write(host, 0, PIIX_DEVFN_PM, 0x90, 4, 0x0000b101);
	piix_set_pirq(p, 1, 1);
	piix_set_pirq(p, 2, 1);
	CHECK_EQ(isa_level[10], 1);
	CHECK_EQ(isa_level[11], 1);
	hs = g_variant_ref_sink(pci_host_device_ops.save(host));
	ps = g_variant_ref_sink(piix_device_ops.save(p));
	CHECK(g_variant_is_of_type(ps, G_VARIANT_TYPE(PIIX_STATE_TYPE)));

	/* In the machine's order: the host, then the PIIX. */
	memset(isa_level, 0, sizeof(isa_level));
	isa_calls = 0;
	CHECK_EQ(pci_host_device_ops.load(host2, 1, hs, err, sizeof(err)), 0);
	CHECK_EQ(piix_device_ops.load(p2, 1, ps, err, sizeof(err)), 0);
	CHECK_EQ(isa_calls, 2);				/* both re-driven */
	CHECK_EQ(isa_level[10], 1);
	CHECK_EQ(isa_level[11], 1);
	ps2 = g_variant_ref_sink(piix_device_ops.save(p2));
	hs2 = g_variant_ref_sink(pci_host_device_ops.save(host2));
	CHECK(g_variant_equal(ps, ps2));
	CHECK(g_variant_equal(hs, hs2));
	CHECK_EQ(pci_config_read(host2, 0, PIIX_DEVFN_ISA, 0x60, 4), 0x0b0b0a0au);
	CHECK_EQ(pci_config_read(host2, 0, PIIX_DEVFN_PM, 0x80, 1), 0);
	CHECK_EQ(pci_config_read(host2, 0, PIIX_DEVFN_PM, 0x90, 4), 0xb101);
	CHECK_EQ(pci_config_read(host2, 0, PIIX_DEVFN_PM, 0x40, 4), 0x601);
	/* And on: PIRQB drops, PIRQA (IRQ 10) rises. */
	piix_set_pirq(p2, 1, 0);
	CHECK_EQ(isa_level[10], 0);
	piix_set_pirq(p2, 0, 1);
	CHECK_EQ(isa_level[10], 1);
	g_variant_unref(ps2);
	g_variant_unref(hs2);

	/* Refused, leaving the PIIX as it was. */
	ps2 = g_variant_ref_sink(piix_device_ops.save(p2));
	isa_calls = 0;
	CHECK_EQ(piix_device_ops.load(p2, 2, ps, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "piix: state version 2 not supported") != NULL);
	hs2 = g_variant_ref_sink(g_variant_new("(bbbb)", 1, 0, 0, 0));
	CHECK_EQ(piix_device_ops.load(p2, 1, hs2, err, sizeof(err)), -EINVAL);
	CHECK(strncmp(err, "piix:", 5) == 0);
	g_variant_unref(hs2);
	/* IRQ 5 claimed, which no route gives; IRQ 11 missing. */
	hs2 = g_variant_ref_sink(g_variant_new("(bbbbq)", 1, 0, 1, 0, 1u << 5));
	CHECK_EQ(piix_device_ops.load(p2, 1, hs2, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "piix: 8259A levels 0x0020") != NULL);
	g_variant_unref(hs2);
	CHECK_EQ(isa_calls, 0);
	hs2 = g_variant_ref_sink(piix_device_ops.save(p2));
	CHECK(g_variant_equal(ps2, hs2));
	g_variant_unref(hs2);
	g_variant_unref(ps2);

	g_variant_unref(hs);
	g_variant_unref(ps);
	piix_free(p2);
	piix_free(p);
	pci_host_free(host2);
	pci_host_free(host);
}

int main(void)
{
	RUN_TEST(test_ids);
	RUN_TEST(test_pirq_routing);
	RUN_TEST(test_save_load);
	return check_finish();
}
