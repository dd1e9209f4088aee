/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/boot/acpi.h - ACPI tables for the direct boot path (ACPI 6.4 §5.2):
 * RSDP (rev 2) -> XSDT -> FADT (-> DSDT, FACS), MADT (, TPM2).  The DSDT holds \_S5
 * so Linux can power off through PM1a_CNT, and \_SB.PCI0 with its _CRS
 * windows (I/O, VGA, the 32-bit hole from the end of low RAM to the
 * IOAPIC, a 64-bit window above RAM) and _PRT; the MADT lists one local APIC
 * per vCPU, the IOAPIC and the ISA interrupt source overrides (IRQ 0 ->
 * GSI 2, SCI level/active-high).  No SMI_CMD: always in ACPI mode.
 */
#ifndef VIVARIUM_BOOT_ACPI_H
#define VIVARIUM_BOOT_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct acpi_config {
	unsigned ncpus;			/* local APIC IDs 0..ncpus-1 */
	uint8_t ioapic_id;
	uint64_t ioapic_addr;		/* 0xfec00000 */
	uint16_t pm_base;		/* PM1a_EVT; CNT at +4, TMR at +8 */
	uint8_t sci_irq;		/* 9 */
	uint16_t reset_port;		/* 0xcf9, value ACPI_RESET_VALUE */
	uint8_t reset_value;
	uint64_t pci_hole_start;	/* end of low RAM: PCI0._CRS's window */
	uint64_t ram_top;		/* end of RAM above 4 GiB (0: none) */
	/* A TPM 2.0 FIFO interface at TPM_TIS_BASE (devices/tpm_tis.h):
	 * \_SB.TPM_ (MSFT0101) in the DSDT and a TPM2 table (TCG ACPI
	 * Specification 1.3 §8.3, start method 6: FIFO), whose event log
	 * area is the firmware's fw_cfg file ACPI_TPM_LOG_FILE. */
	bool tpm;
};

/* The TPM event log SeaBIOS writes its measurements to (TPM2's LASA):
 * a zeroed fw_cfg file of this size the table-loader places in RAM. */
#define ACPI_TPM_LOG_FILE	"etc/tpm/log"
#define ACPI_TPM_LOG_SIZE	0x10000u

#define ACPI_4G			0x100000000ull
#define ACPI_PCI_WINDOW64_ALIGN	0x40000000ull	/* 1 GiB */
#define ACPI_PCI_WINDOW64_SIZE	0x800000000ull	/* 32 GiB */

/* Start of PCI0's 64-bit window for RAM ending at GPA @ram_top (0 or
 * below 4 GiB: no high RAM): max(@ram_top, 4 GiB) rounded up to 1 GiB,
 * where SeaBIOS (src/fw/pciinit.c) maps 64-bit BARs that do not fit
 * below 4 GiB.  The window is ACPI_PCI_WINDOW64_SIZE bytes. */
uint64_t acpi_pci_window64_start(uint64_t ram_top);

/* PCI INTA-D of every slot reach these GSIs (+ (slot + pin) & 3). */
#define ACPI_PCI_GSI_BASE 16

/*
 * acpi_build - build all tables into @buf (@len bytes), which the guest will
 * see at GPA @buf_gpa; the RSDP comes first (16-byte aligned @buf_gpa, so
 * that it is found by the legacy scan of 0xe0000-0xfffff).  Returns the
 * number of bytes used, or -ENOSPC (nothing is written past @len), or
 * -EINVAL (@buf_gpa not 16-byte aligned, tables or IOAPIC not below 4 GiB,
 * ncpus 0 or above 255).  Every table's checksum is valid.  The DSDT is
 * emitted with the helpers of boot/aml.h (add devices in acpi.c's
 * dsdt_body()).
 */
long acpi_build(uint8_t *buf, size_t len, uint64_t buf_gpa,
		const struct acpi_config *cfg);

/* The same tables as fw_cfg files for firmware (QEMU's "etc/table-loader"
 * interface, as SeaBIOS's src/fw/romfile_loader.c runs it): "etc/acpi/rsdp"
 * (allocated in the F-segment), "etc/acpi/tables" (the rest), and the
 * loader script that places them, patches pointers and checksums. */
struct acpi_fw_cfg_blobs {
	uint8_t *tables, *rsdp, *loader;
	size_t tables_len, rsdp_len, loader_len;	/* bytes */
};

/* Returns 0, -ENOMEM, or acpi_build()'s errors; free with
 * acpi_fw_cfg_blobs_free(). */
int acpi_build_fw_cfg(const struct acpi_config *cfg,
		      struct acpi_fw_cfg_blobs *out);
void acpi_fw_cfg_blobs_free(struct acpi_fw_cfg_blobs *b);

#endif
