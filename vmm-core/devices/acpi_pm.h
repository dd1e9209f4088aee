/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/devices/acpi_pm.h - ACPI fixed hardware (ACPI 6.4 §4.8): the PM1a
 * event block (PM1_STS, PM1_EN; 4 bytes), PM1a control block (PM1_CNT;
 * 2 bytes) and the 24-bit PM timer (3.579545 MHz; 4 bytes), at consecutive
 * ports from a base (0x600: EVT +0, CNT +4, TMR +8), SCI on IRQ 9.
 * Also the PIIX reset control register at port 0xcf9 (FADT RESET_REG).
 * No SMI_CMD: the platform is always in ACPI mode (SCI_EN reads 1).
 */
#ifndef VIVARIUM_ACPI_PM_H
#define VIVARIUM_ACPI_PM_H

#include <stdint.h>

#include "../irq.h"
#include "../device.h"

#define ACPI_PM_BASE		0x600
#define ACPI_PM1_EVT_OFF	0
#define ACPI_PM1_CNT_OFF	4
#define ACPI_PM_TMR_OFF		8
#define ACPI_PM_LEN		12
#define ACPI_SCI_IRQ		9
#define ACPI_RESET_PORT		0xcf9
#define ACPI_RESET_VALUE	0x06
/* SLP_TYP value our DSDT's \_S5 package gives for soft-off. */
#define ACPI_S5_SLP_TYP		5

struct bus;
struct bus_ops;
struct acpi_pm;
struct vtimer_queue;

struct acpi_pm_ops {
	void (*poweroff)(void *opaque);	/* SLP_EN with SLP_TYP = S5 */
	void (*reset)(void *opaque);	/* 0xcf9 reset request */
};

struct acpi_pm *acpi_pm_new(struct vtimer_queue *q, struct irq_line sci,
			    const struct acpi_pm_ops *ops, void *opaque);
void acpi_pm_free(struct acpi_pm *pm);
/*
 * Its lifecycle in the machine's device table (device.h).
 * acpi_pm_device_ops: state ACPI_PM_STATE_TYPE, version 1: (PM1_STS
 * without TMR_STS (which is computed; PWRBTN_STS and WAK_STS included),
 * PM1_EN, PM1_CNT's stored bits (BM_RLD, SLP_TYP), the PM timer's count-0
 * time, the count >> 23 when TMR_STS was last cleared, the 0xcf9 reset
 * control register, SCI level, TMR_STS timer armed, its deadline).  Times
 * are ns of the machine's clock.  There is no GPE block: nothing to keep.
 */
#define ACPI_PM_STATE_TYPE "(qqqttybbt)"
extern const struct device_ops acpi_pm_device_ops;
/* Registers [@base, @base + ACPI_PM_LEN).  The reset control register at
 * ACPI_RESET_PORT (0xcf9) shares CONFIG_ADDRESS's ports, which the PCI host
 * owns: hand it acpi_pm_reset_ops with pci_host_set_cf9_handler(host,
 * &acpi_pm_reset_ops, pm). */
int acpi_pm_attach(struct acpi_pm *pm, struct bus *pio, uint16_t base);
/* The 0xcf9 register (one byte, offset 0): a write with bit 2 (RST_CPU) set
 * calls ops->reset; reads return bits 1 and 3 as last written. */
extern const struct bus_ops acpi_pm_reset_ops;
void acpi_pm_reset(struct acpi_pm *pm);
/* Press the power button: sets PWRBTN_STS and raises the SCI if enabled. */
void acpi_pm_power_button(struct acpi_pm *pm);

#endif
