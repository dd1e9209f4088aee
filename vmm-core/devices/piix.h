/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/devices/piix.h - the PIIX south bridge functions of the i440FX
 * PC: the PIIX3 PCI-to-ISA bridge at 00:01.0 (82371SB, 8086:7000) with its
 * PIRQ route control registers, and the PIIX4 power management function at
 * 00:01.3 (82371AB, 8086:7113) in front of the ACPI PM block (acpi_pm.h).
 * (The IDE function 00:01.1 is devices/ide.h.)
 *
 * PCI interrupts: PIRQ[A-D] reach 8259A inputs through PIRQRC[A-D]
 * (config 0x60-0x63: bit 7 disables, bits 3:0 the IRQ; 82371SB datasheet
 * §2.2.12), and, as on boards with an 82093AA, IOAPIC inputs 16-19
 * directly.  The machine owns both ends; this file keeps the registers
 * and works out the 8259A levels.
 */
#ifndef VIVARIUM_PIIX_H
#define VIVARIUM_PIIX_H

#include <stdint.h>

#include "acpi_pm.h"
#include "pci.h"
#include "../device.h"

#define PIIX_DEVFN_ISA		((1 << 3) | 0)
#define PIIX_DEVFN_IDE		((1 << 3) | 1)
#define PIIX_DEVFN_PM		((1 << 3) | 3)
#define PIIX_PIRQRC		0x60
#define PIIX_PM_BASE		ACPI_PM_BASE	/* fixed: where the ACPI tables say */

struct piix;

struct piix_ops {
	/* 8259A input @irq (0-15) driven by PCI interrupts changed level. */
	void (*set_isa_irq)(void *opaque, unsigned irq, int level);
};

/* Create the ISA bridge and PM functions and add them to @pci. */
struct piix *piix_new(struct pci_host *pci, const struct piix_ops *ops,
		      void *opaque);
void piix_free(struct piix *p);
/*
 * Its lifecycle in the machine's device table (device.h).
 * piix_device_ops: state PIIX_STATE_TYPE, version 1: (PIRQ[A-D] input
 * levels, the 8259A inputs driven, bit per IRQ).  The PIRQRC route
 * registers and the PM function's config (PMBA, DEVACTB, SMBus ...) live
 * in the functions' config space, which the PCI host's state carries
 * (pci.h); load, after the host's, checks the 8259A levels against them
 * and drives the ones that differ.
 */
#define PIIX_STATE_TYPE "(bbbbq)"
extern const struct device_ops piix_device_ops;
/* PIRQ @pirq (0-3) changed level (the pci_host_ops set_pirq hook).
 * Call with the device lock held. */
void piix_set_pirq(struct piix *p, unsigned pirq, int level);

#endif
