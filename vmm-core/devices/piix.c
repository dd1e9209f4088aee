/* SPDX-License-Identifier: MIT */
/*
 * PIIX3 ISA bridge and PIIX4 PM functions (82371SB and 82371AB datasheets).
 * Registers without an effect in this machine are plain storage so that
 * firmware reads back what it wrote.
 */
#include "piix.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "../log.h"

#define PM_PMBA		0x40
#define PM_DEVACTB	0x58
#define  DEVACTB_APMC_EN (1u << 25)
#define PM_PMREGMISC	0x80
#define PM_SMBBA	0x90
#define PM_SMBHSTCFG	0xd2

struct piix {
	struct pci_host *pci;
	struct pci_device isa, pm;
	const struct piix_ops *ops;
	void *opaque;
	bool pirq_level[4];
	uint16_t isa_level;		/* 8259A inputs driven, bit per IRQ */
};

/* Recompute the 8259A inputs from the PIRQ levels and routes. */
static void route(struct piix *p)
{
	uint16_t want = 0;

	for (unsigned i = 0; i < 4; i++) {
		uint8_t rc = p->isa.config[PIIX_PIRQRC + i];

		/* IRQs 0-2, 8 and 13 are reserved routes (datasheet). */
		if (p->pirq_level[i] && !(rc & 0x80) && (rc & 0xf) >= 3 &&
		    (rc & 0xf) != 8 && (rc & 0xf) != 13)
			want |= (uint16_t)(1u << (rc & 0xf));
	}
	for (unsigned irq = 0; irq < 16; irq++) {
		uint16_t bit = (uint16_t)(1u << irq);

		if ((want ^ p->isa_level) & bit && p->ops && p->ops->set_isa_irq)
			p->ops->set_isa_irq(p->opaque, irq, !!(want & bit));
	}
	p->isa_level = want;
}

void piix_set_pirq(struct piix *p, unsigned pirq, int level)
{
	if (pirq >= 4)
		return;
	p->pirq_level[pirq] = level != 0;
	route(p);
}

static void isa_config_write(struct pci_device *dev, unsigned offset,
			     unsigned size, uint32_t value)
{
	if (offset < PIIX_PIRQRC + 4 && offset + size > PIIX_PIRQRC)
		route(dev->opaque);
}

static void pm_config_write(struct pci_device *dev, unsigned offset,
			    unsigned size, uint32_t value)
{
	if (offset == PM_PMBA && size == 4 && (value & 0xffc0) != PIIX_PM_BASE)
		vlog_ratelimited(LOG_WARN, "PIIX4 PM: the PM block stays at 0x%x (guest asked for 0x%x)",
				 PIIX_PM_BASE, value & 0xffc0);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

struct piix *piix_new(struct pci_host *pci, const struct piix_ops *ops,
		      void *opaque)
{
	struct piix *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->pci = pci;
	p->ops = ops;
	p->opaque = opaque;

	/* 00:01.0: PCI-to-ISA bridge, multi-function. */
	pci_device_init(&p->isa, 0x8086, 0x7000, 0, 0x060100, 0, 0, 0);
	p->isa.config[PCI_HEADER_TYPE] = 0x80;
	p->isa.wmask[PCI_COMMAND] = 0;			/* hardwired */
	p->isa.wmask[PCI_COMMAND + 1] = 0;
	p->isa.config[PCI_COMMAND] = PCI_COMMAND_IO | PCI_COMMAND_MEMORY |
				     PCI_COMMAND_MASTER;
	memset(&p->isa.wmask[0x40], 0xff, 0xc0);	/* storage */
	for (unsigned i = 0; i < 4; i++) {
		p->isa.config[PIIX_PIRQRC + i] = 0x80;	/* disabled at reset */
		p->isa.wmask[PIIX_PIRQRC + i] = 0x8f;
	}
	p->isa.config_write = isa_config_write;
	p->isa.opaque = p;

	/* 00:01.3: power management.  PMBA is fixed at the ACPI tables' PM
	 * block.  No SMM in this machine: APMC_EN reads as set, which tells
	 * SeaBIOS that SMM is already initialised (it would otherwise wait
	 * forever for an SMI handler after writing port 0xb2). */
	pci_device_init(&p->pm, 0x8086, 0x7113, 3, 0x068000, 0, 0, 1);
	p->pm.wmask[PCI_COMMAND] = 0;
	p->pm.wmask[PCI_COMMAND + 1] = 0;
	p->pm.config[PCI_COMMAND] = PCI_COMMAND_IO;
	memset(&p->pm.wmask[0x40], 0xff, 0xc0);
	put32(&p->pm.config[PM_PMBA], PIIX_PM_BASE | 1);
	put32(&p->pm.wmask[PM_PMBA], 0);
	put32(&p->pm.config[PM_DEVACTB], DEVACTB_APMC_EN);
	put32(&p->pm.wmask[PM_DEVACTB], ~DEVACTB_APMC_EN);
	p->pm.config[PM_PMREGMISC] = 1;			/* PM I/O enabled */
	put32(&p->pm.config[PM_SMBBA], 1);		/* I/O space indicator */
	p->pm.wmask[PM_SMBBA] = 0xf0;
	p->pm.config_write = pm_config_write;
	p->pm.opaque = p;

	if (pci_add_device(pci, &p->isa, PIIX_DEVFN_ISA) < 0 ||
	    pci_add_device(pci, &p->pm, PIIX_DEVFN_PM) < 0) {
		piix_free(p);
		return NULL;
	}
	return p;
}

void piix_free(struct piix *p)
{
	if (!p)
		return;
	pci_device_cleanup(&p->isa);
	pci_device_cleanup(&p->pm);
	free(p);
}

/* ---- the machine's device table ---------------------------------------- */

static void piix_dev_free(void *dev)
{
	piix_free(dev);
}

static GVariant *piix_dev_save(void *dev)
{
	struct piix *p = dev;

	return g_variant_new("(bbbbq)", p->pirq_level[0], p->pirq_level[1],
			     p->pirq_level[2], p->pirq_level[3], p->isa_level);
}

/* The routing registers come back with the config space (pci-host,
 * loaded first); the 8259A levels must be what they and the PIRQ levels
 * give, and are driven to that. */
static int piix_dev_load(void *dev, uint32_t version, GVariant *state,
			 char *err, size_t errlen)
{
	struct piix *p = dev, t = *p;
	gboolean l[4];
	guint16 isa;
	int r;

	r = device_state_check("piix", version, 1, state, PIIX_STATE_TYPE, err, errlen);
	if (r < 0)
		return r;
	g_variant_get(state, "(bbbbq)", &l[0], &l[1], &l[2], &l[3], &isa);
	for (unsigned i = 0; i < 4; i++)
		t.pirq_level[i] = l[i];
	t.ops = NULL;
	t.isa_level = 0;
	route(&t);		/* no ops: only works out the levels */
	if (t.isa_level != isa)
		return device_load_fail(err, errlen, "piix: 8259A levels 0x%04x do not follow from the PIRQ levels and routes (0x%04x)",
				 isa, t.isa_level);
	for (unsigned i = 0; i < 4; i++)
		p->pirq_level[i] = l[i];
	route(p);
	return 0;
}

const struct device_ops piix_device_ops = {
	.name = "piix",
	.save = piix_dev_save,
	.load = piix_dev_load,
	.state_version = 1,
	.free = piix_dev_free,
};
