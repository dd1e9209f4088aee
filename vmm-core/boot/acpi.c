/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/boot/acpi.c - the ACPI tables (ACPI 6.4 §5.2).
 *
 * Layout in the buffer (each table 16-byte aligned, FACS 64-byte aligned
 * as a GPA):  RSDP, RSDT, XSDT, FADT, FACS, DSDT, MADT, and TPM2 with a
 * TPM.  The RSDT is there
 * for acpi=rsdt and old tools; Linux uses the XSDT.
 */
#include "acpi.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aml.h"
#include "../devices/acpi_pm.h"
#include "../devices/tpm_tis.h"

#define OEM_ID		"VIVARI"	/* 6 chars */
#define OEM_TABLE_ID	"VIVARIUM"	/* 8 chars */
#define CREATOR_ID	"VIVA"
#define OEM_REVISION	1
#define CREATOR_REV	1

#define LAPIC_DEFAULT_ADDR	0xfee00000u

struct acpi_sdt_hdr {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __attribute__((packed));
static_assert(sizeof(struct acpi_sdt_hdr) == 36, "SDT header");

struct acpi_rsdp {
	char signature[8];		/* "RSD PTR " */
	uint8_t checksum;		/* first 20 bytes */
	char oem_id[6];
	uint8_t revision;		/* 2 */
	uint32_t rsdt_address;
	uint32_t length;		/* 36 */
	uint64_t xsdt_address;
	uint8_t extended_checksum;	/* all 36 bytes */
	uint8_t reserved[3];
} __attribute__((packed));
static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP");

/* Generic Address Structure (§5.2.3.2) */
struct acpi_gas {
	uint8_t space_id;	/* 1: system I/O */
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;	/* 1 byte, 2 word, 3 dword, 4 qword */
	uint64_t address;
} __attribute__((packed));
static_assert(sizeof(struct acpi_gas) == 12, "GAS");

#define GAS_SYSTEM_IO	1
#define GAS_ACCESS_BYTE	1
#define GAS_ACCESS_WORD	2
#define GAS_ACCESS_DWORD 3

/* FADT, revision 6 (§5.2.9, Table 5.9) */
struct acpi_fadt {
	struct acpi_sdt_hdr hdr;
	uint32_t firmware_ctrl;		/* 36 */
	uint32_t dsdt;			/* 40 */
	uint8_t reserved0;		/* 44 */
	uint8_t preferred_pm_profile;	/* 45 */
	uint16_t sci_int;		/* 46 */
	uint32_t smi_cmd;		/* 48 */
	uint8_t acpi_enable;		/* 52 */
	uint8_t acpi_disable;		/* 53 */
	uint8_t s4bios_req;		/* 54 */
	uint8_t pstate_cnt;		/* 55 */
	uint32_t pm1a_evt_blk;		/* 56 */
	uint32_t pm1b_evt_blk;		/* 60 */
	uint32_t pm1a_cnt_blk;		/* 64 */
	uint32_t pm1b_cnt_blk;		/* 68 */
	uint32_t pm2_cnt_blk;		/* 72 */
	uint32_t pm_tmr_blk;		/* 76 */
	uint32_t gpe0_blk;		/* 80 */
	uint32_t gpe1_blk;		/* 84 */
	uint8_t pm1_evt_len;		/* 88 */
	uint8_t pm1_cnt_len;		/* 89 */
	uint8_t pm2_cnt_len;		/* 90 */
	uint8_t pm_tmr_len;		/* 91 */
	uint8_t gpe0_blk_len;		/* 92 */
	uint8_t gpe1_blk_len;		/* 93 */
	uint8_t gpe1_base;		/* 94 */
	uint8_t cst_cnt;		/* 95 */
	uint16_t p_lvl2_lat;		/* 96 */
	uint16_t p_lvl3_lat;		/* 98 */
	uint16_t flush_size;		/* 100 */
	uint16_t flush_stride;		/* 102 */
	uint8_t duty_offset;		/* 104 */
	uint8_t duty_width;		/* 105 */
	uint8_t day_alrm;		/* 106 */
	uint8_t mon_alrm;		/* 107 */
	uint8_t century;		/* 108 */
	uint16_t iapc_boot_arch;	/* 109 */
	uint8_t reserved1;		/* 111 */
	uint32_t flags;			/* 112 */
	struct acpi_gas reset_reg;	/* 116 */
	uint8_t reset_value;		/* 128 */
	uint16_t arm_boot_arch;		/* 129 */
	uint8_t minor_version;		/* 131 */
	uint64_t x_firmware_ctrl;	/* 132 */
	uint64_t x_dsdt;		/* 140 */
	struct acpi_gas x_pm1a_evt_blk;	/* 148 */
	struct acpi_gas x_pm1b_evt_blk;	/* 160 */
	struct acpi_gas x_pm1a_cnt_blk;	/* 172 */
	struct acpi_gas x_pm1b_cnt_blk;	/* 184 */
	struct acpi_gas x_pm2_cnt_blk;	/* 196 */
	struct acpi_gas x_pm_tmr_blk;	/* 208 */
	struct acpi_gas x_gpe0_blk;	/* 220 */
	struct acpi_gas x_gpe1_blk;	/* 232 */
	struct acpi_gas sleep_control_reg; /* 244 */
	struct acpi_gas sleep_status_reg;  /* 256 */
	uint64_t hypervisor_vendor_id;	/* 268 */
} __attribute__((packed));
static_assert(offsetof(struct acpi_fadt, sci_int) == 46, "FADT SCI_INT");
static_assert(offsetof(struct acpi_fadt, pm1a_evt_blk) == 56, "FADT PM1a_EVT");
static_assert(offsetof(struct acpi_fadt, pm_tmr_blk) == 76, "FADT PM_TMR");
static_assert(offsetof(struct acpi_fadt, pm1_evt_len) == 88, "FADT PM1_EVT_LEN");
static_assert(offsetof(struct acpi_fadt, century) == 108, "FADT CENTURY");
static_assert(offsetof(struct acpi_fadt, iapc_boot_arch) == 109, "FADT IAPC");
static_assert(offsetof(struct acpi_fadt, flags) == 112, "FADT flags");
static_assert(offsetof(struct acpi_fadt, reset_reg) == 116, "FADT RESET_REG");
static_assert(offsetof(struct acpi_fadt, reset_value) == 128, "FADT RESET_VALUE");
static_assert(offsetof(struct acpi_fadt, minor_version) == 131, "FADT minor");
static_assert(offsetof(struct acpi_fadt, x_firmware_ctrl) == 132, "FADT X_FACS");
static_assert(offsetof(struct acpi_fadt, x_dsdt) == 140, "FADT X_DSDT");
static_assert(offsetof(struct acpi_fadt, x_pm1a_evt_blk) == 148, "FADT X_PM1a_EVT");
static_assert(offsetof(struct acpi_fadt, x_pm_tmr_blk) == 208, "FADT X_PM_TMR");
static_assert(offsetof(struct acpi_fadt, sleep_control_reg) == 244, "FADT SLEEP_CTL");
static_assert(offsetof(struct acpi_fadt, hypervisor_vendor_id) == 268, "FADT HVID");
static_assert(sizeof(struct acpi_fadt) == 276, "FADT length (ACPI 6.x)");

/* FADT flags (Table 5.10) */
#define FADT_WBINVD		(1u << 0)
#define FADT_PROC_C1		(1u << 2)
#define FADT_PWR_BUTTON		(1u << 4)	/* set: no fixed power button */
#define FADT_SLP_BUTTON		(1u << 5)	/* set: no fixed sleep button */
#define FADT_FIX_RTC		(1u << 6)	/* set: no RTC wake status */
#define FADT_TMR_VAL_EXT	(1u << 8)
#define FADT_RESET_REG_SUP	(1u << 10)
/* IA-PC boot architecture flags (Table 5.11) */
#define IAPC_LEGACY_DEVICES	(1u << 0)
#define IAPC_8042		(1u << 1)
#define IAPC_VGA_NOT_PRESENT	(1u << 2)

/* FACS (§5.2.10) */
struct acpi_facs {
	char signature[4];
	uint32_t length;
	uint32_t hardware_signature;
	uint32_t firmware_waking_vector;
	uint32_t global_lock;
	uint32_t flags;
	uint64_t x_firmware_waking_vector;
	uint8_t version;
	uint8_t reserved[3];
	uint32_t ospm_flags;
	uint8_t reserved1[24];
} __attribute__((packed));
static_assert(sizeof(struct acpi_facs) == 64, "FACS");

/* MADT (§5.2.12) */
#define MADT_PCAT_COMPAT	1u
#define MADT_LAPIC		0
#define MADT_IOAPIC		1
#define MADT_ISO		2
#define MADT_LAPIC_NMI		4
#define MADT_LAPIC_ENABLED	1u
#define MADT_FLAGS_CONFORMS	0x0000
#define MADT_FLAGS_LEVEL_HIGH	0x000d	/* polarity 01 high, trigger 11 level */

/* TPM2 (TCG ACPI Specification for TPM 2.0 1.3 §8.3, revision 4): a FIFO
 * interface has no CRB control area; LAML/LASA give the event log. */
struct acpi_tpm2 {
	struct acpi_sdt_hdr hdr;
	uint16_t platform_class;	/* 0: client */
	uint16_t reserved;
	uint64_t control_area;		/* 0: not CRB */
	uint32_t start_method;		/* 6: memory-mapped I/O (FIFO) */
	uint8_t start_params[12];
	uint32_t laml;			/* log area minimum length */
	uint64_t lasa;			/* log area start address */
} __attribute__((packed));
static_assert(sizeof(struct acpi_tpm2) == 76, "TPM2 rev 4");

#define TPM2_START_METHOD_FIFO	6

/* Where the tables go: a bump allocator over the buffer. */
struct layout {
	uint8_t *buf;
	size_t len, off;
	uint64_t gpa;
};

/* Offset of @size zeroed bytes whose GPA is @align-aligned, or -1. */
static long take(struct layout *l, size_t size, uint64_t align)
{
	uint64_t at = ((l->gpa + l->off + align - 1) & ~(align - 1)) - l->gpa;

	if (at > l->len || size > l->len - at)
		return -1;
	memset(l->buf + l->off, 0, at + size - l->off);
	l->off = at + size;
	return (long)at;
}

static uint8_t checksum(const void *p, size_t n)
{
	uint8_t sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += ((const uint8_t *)p)[i];
	return (uint8_t)-sum;
}

static void fill_hdr(uint8_t *p, const char sig[4], uint32_t length,
		     uint8_t revision)
{
	struct acpi_sdt_hdr h;

	memset(&h, 0, sizeof(h));
	memcpy(h.signature, sig, 4);
	h.length = length;
	h.revision = revision;
	memcpy(h.oem_id, OEM_ID, 6);
	memcpy(h.oem_table_id, OEM_TABLE_ID, 8);
	h.oem_revision = OEM_REVISION;
	memcpy(h.creator_id, CREATOR_ID, 4);
	h.creator_revision = CREATOR_REV;
	memcpy(p, &h, sizeof(h));
}

static void finish_table(uint8_t *p)
{
	struct acpi_sdt_hdr h;

	memcpy(&h, p, sizeof(h));
	p[offsetof(struct acpi_sdt_hdr, checksum)] = 0;
	p[offsetof(struct acpi_sdt_hdr, checksum)] = checksum(p, h.length);
}

static struct acpi_gas gas_io(uint16_t port, uint8_t bits, uint8_t access)
{
	return (struct acpi_gas){ .space_id = GAS_SYSTEM_IO, .bit_width = bits,
				  .access_size = access, .address = port };
}

/* Word (0x88) and DWord (0x87) address space descriptors (ACPI 6.4
 * §6.4.3.5.2-3): producer, MinFixed + MaxFixed, positive decode. */
static size_t res_word(uint8_t *p, uint8_t type, uint8_t tflags, uint16_t min,
		       uint16_t max)
{
	uint16_t f[5] = { 0, min, max, 0, (uint16_t)(max - min + 1) };

	p[0] = 0x88;
	p[1] = 13;
	p[2] = 0;
	p[3] = type;
	p[4] = 0x0c;
	p[5] = tflags;
	memcpy(p + 6, f, sizeof(f));
	return 16;
}

static size_t res_dword_mem(uint8_t *p, uint32_t min, uint32_t max)
{
	uint32_t f[5] = { 0, min, max, 0, max - min + 1 };

	p[0] = 0x87;
	p[1] = 23;
	p[2] = 0;
	p[3] = 0;		/* memory */
	p[4] = 0x0c;
	p[5] = 0x03;		/* cacheable, read-write */
	memcpy(p + 6, f, sizeof(f));
	return 26;
}

/* QWord Address Space Descriptor, memory (ACPI 6.4 §6.4.3.5.1). */
static size_t res_qword_mem(uint8_t *p, uint64_t min, uint64_t max)
{
	uint64_t f[5] = { 0, min, max, 0, max - min + 1 };

	p[0] = 0x8a;
	p[1] = 43;
	p[2] = 0;
	p[3] = 0;		/* memory */
	p[4] = 0x0c;
	p[5] = 0x03;		/* cacheable, read-write */
	memcpy(p + 6, f, sizeof(f));
	return 46;
}

uint64_t acpi_pci_window64_start(uint64_t ram_top)
{
	uint64_t top = ram_top > ACPI_4G ? ram_top : ACPI_4G;

	return (top + ACPI_PCI_WINDOW64_ALIGN - 1) & ~(ACPI_PCI_WINDOW64_ALIGN - 1);
}

/* PCI0._CRS: bus 0-255, config ports, the I/O outside them, the VGA
 * window, the 32-bit hole up to the IOAPIC and the 64-bit window above
 * RAM (where SeaBIOS puts 64-bit BARs that do not fit below 4 GiB:
 * 4 GiB + RAM above it, rounded up to 1 GiB). */
static void pci0_crs(struct aml *a, const struct acpi_config *cfg)
{
	uint8_t buf[192];
	size_t n = 0;
	uint64_t hole = cfg->pci_hole_start ? cfg->pci_hole_start : 0xc0000000ull;
	uint64_t start64;

	n += res_word(buf + n, 2, 0, 0x00, 0xff);	/* bus numbers */
	memcpy(buf + n, "\x47\x01\xf8\x0c\xf8\x0c\x01\x08", 8);	/* IO 0xcf8/8 */
	n += 8;
	n += res_word(buf + n, 1, 0x03, 0x0000, 0x0cf7);
	n += res_word(buf + n, 1, 0x03, 0x0d00, 0xffff);
	n += res_dword_mem(buf + n, 0x000a0000, 0x000bffff);
	n += res_dword_mem(buf + n, (uint32_t)hole, 0xfebfffff);
	start64 = acpi_pci_window64_start(cfg->ram_top);
	n += res_qword_mem(buf + n, start64, start64 + ACPI_PCI_WINDOW64_SIZE - 1);
	buf[n++] = 0x79;				/* end tag */
	buf[n++] = 0;
	aml_name_decl(a, "_CRS");
	aml_byte(a, AML_BUFFER_OP);
	aml_pkg_open(a);
	aml_integer(a, n);
	aml_bytes(a, buf, n);
	aml_end(a);
}

/* PCI0._PRT (ACPI 6.4 §6.2.13): every slot's INTA-D to GSI 16-19 with the
 * PIIX swizzle, wired straight to IOAPIC inputs 16-19 (level, active low). */
static void pci0_prt(struct aml *a)
{
	aml_name_decl(a, "_PRT");
	aml_package_begin(a, 31 * 4);
	for (unsigned slot = 1; slot < 32; slot++) {
		for (unsigned pin = 0; pin < 4; pin++) {
			aml_package_begin(a, 4);
			aml_integer(a, (uint64_t)slot << 16 | 0xffff);
			aml_integer(a, pin);
			aml_integer(a, 0);
			aml_integer(a, ACPI_PCI_GSI_BASE + ((slot + pin) & 3));
			aml_end(a);
		}
	}
	aml_end(a);
}

/* Name(_CRS, ResourceTemplate) from raw descriptors (end tag added). */
static void crs_buffer(struct aml *a, const uint8_t *res, size_t n)
{
	aml_name_decl(a, "_CRS");
	aml_byte(a, AML_BUFFER_OP);
	aml_pkg_open(a);
	aml_integer(a, n + 2);
	aml_bytes(a, res, n);
	aml_byte(a, 0x79);
	aml_byte(a, 0);
	aml_end(a);
}

/* IO(Decode16, @port, @port, 1, @len) and IRQNoFlags(@irq) (ACPI 6.4
 * §6.4.2.5, §6.4.2.1). */
static size_t res_io(uint8_t *p, uint16_t port, uint8_t len)
{
	p[0] = 0x47;
	p[1] = 0x01;
	p[2] = (uint8_t)port;
	p[3] = (uint8_t)(port >> 8);
	p[4] = (uint8_t)port;
	p[5] = (uint8_t)(port >> 8);
	p[6] = 1;
	p[7] = len;
	return 8;
}

static size_t res_irq(uint8_t *p, unsigned irq)
{
	p[0] = 0x22;
	p[1] = (uint8_t)(1u << irq);
	p[2] = (uint8_t)((1u << irq) >> 8);
	return 3;
}

/* A legacy device of the ISA bridge: what firmware (SeaBIOS looks for the
 * keyboard's PNP0303 before it sets up PS/2) and OSes enumerate. */
static void isa_device(struct aml *a, const char *name, const char *hid,
		       unsigned uid, const uint8_t *res, size_t n)
{
	aml_device_begin(a, name);
	aml_name_decl(a, "_HID");
	aml_eisaid(a, hid);
	if (uid) {
		aml_name_decl(a, "_UID");
		aml_integer(a, uid);
	}
	crs_buffer(a, res, n);
	aml_end(a);
}

static void isa_devices(struct aml *a)
{
	uint8_t r[32];
	size_t n;

	aml_device_begin(a, "ISA_");
	aml_name_decl(a, "_ADR");
	aml_integer(a, 0x00010000);		/* 00:01.0, the PIIX3 */
	n = res_io(r, 0x60, 1);
	n += res_io(r + n, 0x64, 1);
	n += res_irq(r + n, 1);
	isa_device(a, "KBD_", "PNP0303", 0, r, n);
	n = res_irq(r, 12);
	isa_device(a, "MOU_", "PNP0F13", 0, r, n);
	n = res_io(r, 0x3f8, 8);
	n += res_irq(r + n, 4);
	isa_device(a, "COM1", "PNP0501", 1, r, n);
	n = res_io(r, 0x70, 2);
	n += res_irq(r + n, 8);
	isa_device(a, "RTC_", "PNP0B00", 0, r, n);
	aml_end(a);
}

/* The TPM (TCG PC Client Platform Firmware Profile §9.2 / TCG ACPI 1.3
 * §8.2): _HID MSFT0101 ("TPM 2.0"), its five localities as
 * Memory32Fixed, no interrupt (drivers poll). */
static void tpm_device(struct aml *a)
{
	uint8_t r[12];
	uint32_t base = TPM_TIS_BASE, size = TPM_TIS_SIZE;

	r[0] = 0x86;			/* Memory32Fixed (§6.4.3.4) */
	r[1] = 9;
	r[2] = 0;
	r[3] = 1;			/* read-write */
	memcpy(r + 4, &base, 4);
	memcpy(r + 8, &size, 4);
	aml_device_begin(a, "TPM_");
	aml_name_decl(a, "_HID");
	aml_string(a, "MSFT0101");
	aml_name_decl(a, "_STA");
	aml_integer(a, 0x0f);
	crs_buffer(a, r, sizeof(r));
	aml_end(a);
}

/* The DSDT's AML body.  Later devices (power button, PCI root) go into the
 * \_SB scope. */
static void dsdt_body(struct aml *a, const struct acpi_config *cfg)
{
	aml_scope_begin(a, "\\_SB_");
	/* PCI bus 0 behind the host bridge (PCI Firmware 3.2 §4.1.1): without
	 * it Linux with ACPI enumerates no PCI device at all. */
	aml_device_begin(a, "PCI0");
	aml_name_decl(a, "_HID");
	aml_eisaid(a, "PNP0A03");
	aml_name_decl(a, "_UID");
	aml_integer(a, 0);
	aml_name_decl(a, "_ADR");
	aml_integer(a, 0);
	aml_name_decl(a, "_BBN");
	aml_integer(a, 0);
	pci0_crs(a, cfg);
	pci0_prt(a);
	isa_devices(a);
	aml_end(a);
	if (cfg->tpm)
		tpm_device(a);
	aml_end(a);

	/* \_S5: PM1a/PM1b SLP_TYP for soft-off (§7.4.2) */
	aml_name_decl(a, "_S5_");
	aml_package_begin(a, 4);
	aml_integer(a, ACPI_S5_SLP_TYP);
	aml_integer(a, ACPI_S5_SLP_TYP);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_end(a);
}

static void put8(uint8_t **p, uint8_t v) { *(*p)++ = v; }
static void put16(uint8_t **p, uint16_t v) { memcpy(*p, &v, 2); *p += 2; }
static void put32(uint8_t **p, uint32_t v) { memcpy(*p, &v, 4); *p += 4; }

static size_t madt_size(const struct acpi_config *cfg)
{
	return 36 + 8 + cfg->ncpus * 8 + 12 + 2 * 10 + 6;
}

static void madt_fill(uint8_t *t, const struct acpi_config *cfg)
{
	uint8_t *p = t + 36;

	fill_hdr(t, "APIC", (uint32_t)madt_size(cfg), 5);
	put32(&p, LAPIC_DEFAULT_ADDR);
	put32(&p, MADT_PCAT_COMPAT);
	for (unsigned i = 0; i < cfg->ncpus; i++) {
		put8(&p, MADT_LAPIC);
		put8(&p, 8);
		put8(&p, (uint8_t)i);		/* ACPI processor UID */
		put8(&p, (uint8_t)i);		/* APIC ID */
		put32(&p, MADT_LAPIC_ENABLED);
	}
	put8(&p, MADT_IOAPIC);
	put8(&p, 12);
	put8(&p, cfg->ioapic_id);
	put8(&p, 0);
	put32(&p, (uint32_t)cfg->ioapic_addr);
	put32(&p, 0);				/* GSI base */
	/* ISA IRQ 0 (PIT) arrives on IOAPIC pin 2 */
	put8(&p, MADT_ISO);
	put8(&p, 10);
	put8(&p, 0);				/* bus: ISA */
	put8(&p, 0);
	put32(&p, 2);
	put16(&p, MADT_FLAGS_CONFORMS);
	/* The SCI: level-triggered, active high */
	put8(&p, MADT_ISO);
	put8(&p, 10);
	put8(&p, 0);
	put8(&p, cfg->sci_irq);
	put32(&p, cfg->sci_irq);
	put16(&p, MADT_FLAGS_LEVEL_HIGH);
	/* NMI on LINT1 of every local APIC */
	put8(&p, MADT_LAPIC_NMI);
	put8(&p, 6);
	put8(&p, 0xff);				/* all processors */
	put16(&p, MADT_FLAGS_CONFORMS);
	put8(&p, 1);				/* LINT1 */
	finish_table(t);
}

/* Where build_tables() put each table (offsets into the buffer). */
struct table_offsets {
	long rsdp, rsdt, xsdt, fadt, facs, dsdt, madt;
	long tpm2;		/* -1: none */
	unsigned ntables;	/* in the RSDT and XSDT */
};

static long build_tables(uint8_t *buf, size_t len, uint64_t buf_gpa,
			 const struct acpi_config *cfg, struct table_offsets *o)
{
	struct layout l = { .buf = buf, .len = len, .gpa = buf_gpa };
	long rsdp, rsdt, xsdt, fadt_off, facs_off, dsdt, madt, tpm2 = -1;
	struct acpi_rsdp r;
	struct acpi_fadt f;
	struct acpi_facs fc;
	struct aml a;
	uint64_t tables[3];
	unsigned nt = cfg && cfg->tpm ? 3 : 2;

	if (!buf || !cfg || (buf_gpa & 15) || !cfg->ncpus || cfg->ncpus > 255 ||
	    cfg->ioapic_addr >= (1ull << 32) || buf_gpa >= (1ull << 32) ||
	    len > (1ull << 32) - buf_gpa)
		return -EINVAL;

	rsdp = take(&l, sizeof(r), 16);
	rsdt = take(&l, 36 + nt * 4, 16);
	xsdt = take(&l, 36 + nt * 8, 16);
	fadt_off = take(&l, sizeof(f), 16);
	facs_off = take(&l, sizeof(fc), 64);
	dsdt = take(&l, 36, 16);
	if (rsdp < 0 || rsdt < 0 || xsdt < 0 || fadt_off < 0 || facs_off < 0 ||
	    dsdt < 0)
		return -ENOSPC;

	/* DSDT: header, then AML straight into the rest of the buffer. */
	aml_init(&a, buf + l.off, len - l.off);
	dsdt_body(&a, cfg);
	if (a.overflow || a.depth)
		return -ENOSPC;
	l.off += a.len;
	fill_hdr(buf + dsdt, "DSDT", (uint32_t)(36 + a.len), 2);
	finish_table(buf + dsdt);

	madt = take(&l, madt_size(cfg), 16);
	if (madt < 0)
		return -ENOSPC;
	madt_fill(buf + madt, cfg);
	if (cfg->tpm) {
		struct acpi_tpm2 t2;

		tpm2 = take(&l, sizeof(t2), 16);
		if (tpm2 < 0)
			return -ENOSPC;
		memset(&t2, 0, sizeof(t2));
		fill_hdr((uint8_t *)&t2, "TPM2", sizeof(t2), 4);
		t2.start_method = TPM2_START_METHOD_FIFO;
		/* The log exists where firmware does (acpi_build_fw_cfg). */
		memcpy(buf + tpm2, &t2, sizeof(t2));
		finish_table(buf + tpm2);
	}

	/* FACS: no checksum; the global lock and waking vector stay 0. */
	memset(&fc, 0, sizeof(fc));
	memcpy(fc.signature, "FACS", 4);
	fc.length = sizeof(fc);
	fc.version = 2;
	memcpy(buf + facs_off, &fc, sizeof(fc));

	memset(&f, 0, sizeof(f));
	fill_hdr((uint8_t *)&f, "FACP", sizeof(f), 6);
	f.minor_version = 4;			/* ACPI 6.4 */
	f.firmware_ctrl = (uint32_t)(buf_gpa + facs_off);
	f.x_firmware_ctrl = 0;			/* 32-bit FIRMWARE_CTRL rules */
	f.dsdt = (uint32_t)(buf_gpa + dsdt);
	f.x_dsdt = buf_gpa + dsdt;
	f.preferred_pm_profile = 0;		/* unspecified */
	f.sci_int = cfg->sci_irq;
	f.smi_cmd = 0;				/* always in ACPI mode */
	f.pm1a_evt_blk = cfg->pm_base + ACPI_PM1_EVT_OFF;
	f.pm1a_cnt_blk = cfg->pm_base + ACPI_PM1_CNT_OFF;
	f.pm_tmr_blk = cfg->pm_base + ACPI_PM_TMR_OFF;
	f.pm1_evt_len = 4;
	f.pm1_cnt_len = 2;
	f.pm_tmr_len = 4;
	f.p_lvl2_lat = 0x0fff;			/* > 100: no C2 */
	f.p_lvl3_lat = 0x0fff;			/* > 1000: no C3 */
	f.century = 0x32;			/* CMOS RTC century register */
	f.iapc_boot_arch = IAPC_LEGACY_DEVICES | IAPC_8042;
	/* Fixed power button (PWR_BUTTON clear), no sleep button, 24-bit
	 * PM timer (TMR_VAL_EXT clear), no RTC wake. */
	f.flags = FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON | FADT_FIX_RTC |
		  FADT_RESET_REG_SUP;
	f.reset_reg = gas_io(cfg->reset_port, 8, GAS_ACCESS_BYTE);
	f.reset_value = cfg->reset_value;
	f.x_pm1a_evt_blk = gas_io((uint16_t)f.pm1a_evt_blk, 32, GAS_ACCESS_WORD);
	f.x_pm1a_cnt_blk = gas_io((uint16_t)f.pm1a_cnt_blk, 16, GAS_ACCESS_WORD);
	f.x_pm_tmr_blk = gas_io((uint16_t)f.pm_tmr_blk, 32, GAS_ACCESS_DWORD);
	memcpy(buf + fadt_off, &f, sizeof(f));
	finish_table(buf + fadt_off);

	tables[0] = buf_gpa + fadt_off;
	tables[1] = buf_gpa + madt;
	tables[2] = buf_gpa + (uint64_t)tpm2;
	fill_hdr(buf + xsdt, "XSDT", 36 + nt * 8, 1);
	memcpy(buf + xsdt + 36, tables, nt * 8);
	finish_table(buf + xsdt);
	fill_hdr(buf + rsdt, "RSDT", 36 + nt * 4, 1);
	for (unsigned i = 0; i < nt; i++) {
		uint32_t t32 = (uint32_t)tables[i];

		memcpy(buf + rsdt + 36 + 4 * i, &t32, 4);
	}
	finish_table(buf + rsdt);

	memset(&r, 0, sizeof(r));
	memcpy(r.signature, "RSD PTR ", 8);
	memcpy(r.oem_id, OEM_ID, 6);
	r.revision = 2;
	r.rsdt_address = (uint32_t)(buf_gpa + rsdt);
	r.length = sizeof(r);
	r.xsdt_address = buf_gpa + xsdt;
	r.checksum = checksum(&r, 20);
	r.extended_checksum = checksum(&r, sizeof(r));
	memcpy(buf + rsdp, &r, sizeof(r));
	*o = (struct table_offsets){ rsdp, rsdt, xsdt, fadt_off, facs_off,
				     dsdt, madt, tpm2, nt };
	return (long)l.off;
}

long acpi_build(uint8_t *buf, size_t len, uint64_t buf_gpa,
		const struct acpi_config *cfg)
{
	struct table_offsets o;

	return build_tables(buf, len, buf_gpa, cfg, &o);
}

/* ---- the firmware path: QEMU's table-loader interface ------------------- */

#define LOADER_FILE_TABLES	"etc/acpi/tables"
#define LOADER_FILE_RSDP	"etc/acpi/rsdp"
#define LOADER_CMD_SIZE		128
#define LOADER_ALLOCATE		1
#define LOADER_ADD_POINTER	2
#define LOADER_ADD_CHECKSUM	3
#define LOADER_ZONE_HIGH	1
#define LOADER_ZONE_FSEG	2
#define LOADER_NAME		56
#define LOADER_TABLES_MAX	0x10000

struct loader {
	uint8_t *buf;
	size_t len;
};

static uint8_t *loader_cmd(struct loader *l, uint32_t cmd)
{
	uint8_t *c = l->buf + l->len;

	l->len += LOADER_CMD_SIZE;
	memset(c, 0, LOADER_CMD_SIZE);
	memcpy(c, &cmd, 4);
	return c + 4;
}

static void loader_allocate(struct loader *l, const char *file, uint32_t align,
			    uint8_t zone)
{
	uint8_t *c = loader_cmd(l, LOADER_ALLOCATE);

	strncpy((char *)c, file, LOADER_NAME - 1);
	memcpy(c + LOADER_NAME, &align, 4);
	c[LOADER_NAME + 4] = zone;
}

/* dest[offset .. offset + size) += address of src's allocation */
static void loader_pointer(struct loader *l, const char *dest, const char *src,
			   uint32_t offset, uint8_t size)
{
	uint8_t *c = loader_cmd(l, LOADER_ADD_POINTER);

	strncpy((char *)c, dest, LOADER_NAME - 1);
	strncpy((char *)c + LOADER_NAME, src, LOADER_NAME - 1);
	memcpy(c + 2 * LOADER_NAME, &offset, 4);
	c[2 * LOADER_NAME + 4] = size;
}

/* file[result] -= sum(file[start .. start + length)) */
static void loader_checksum(struct loader *l, const char *file, uint32_t result,
			    uint32_t start, uint32_t length)
{
	uint8_t *c = loader_cmd(l, LOADER_ADD_CHECKSUM);

	strncpy((char *)c, file, LOADER_NAME - 1);
	memcpy(c + LOADER_NAME, &result, 4);
	memcpy(c + LOADER_NAME + 4, &start, 4);
	memcpy(c + LOADER_NAME + 8, &length, 4);
}

static uint32_t table_len(const uint8_t *t)
{
	uint32_t v;

	memcpy(&v, t + 4, 4);
	return v;
}

void acpi_fw_cfg_blobs_free(struct acpi_fw_cfg_blobs *b)
{
	free(b->tables);
	free(b->rsdp);
	free(b->loader);
	memset(b, 0, sizeof(*b));
}

int acpi_build_fw_cfg(const struct acpi_config *cfg,
		      struct acpi_fw_cfg_blobs *out)
{
	struct table_offsets o;
	struct loader l;
	uint8_t *t;
	long n;
	const char *T = LOADER_FILE_TABLES, *R = LOADER_FILE_RSDP;

	memset(out, 0, sizeof(*out));
	t = calloc(1, LOADER_TABLES_MAX);
	l.buf = calloc(32, LOADER_CMD_SIZE);
	l.len = 0;
	if (!t || !l.buf) {
		free(t);
		free(l.buf);
		return -ENOMEM;
	}
	/* Built at GPA 0, so every pointer holds an offset into the tables
	 * file; the loader adds the file's address once it is placed. */
	n = build_tables(t, LOADER_TABLES_MAX, 0, cfg, &o);
	if (n < 0) {
		free(t);
		free(l.buf);
		return (int)n;
	}
	out->rsdp = malloc(sizeof(struct acpi_rsdp));
	if (!out->rsdp) {
		free(t);
		free(l.buf);
		return -ENOMEM;
	}
	memcpy(out->rsdp, t + o.rsdp, sizeof(struct acpi_rsdp));
	out->rsdp_len = sizeof(struct acpi_rsdp);
	memset(t + o.rsdp, 0, sizeof(struct acpi_rsdp));  /* lives in its own file */

	loader_allocate(&l, R, 16, LOADER_ZONE_FSEG);
	loader_allocate(&l, T, 64, LOADER_ZONE_HIGH);	/* FACS: 64-aligned */
	if (o.tpm2 >= 0) {
		uint32_t laml = ACPI_TPM_LOG_SIZE;

		/* SeaBIOS (src/tcgbios.c) logs its measurements there. */
		loader_allocate(&l, ACPI_TPM_LOG_FILE, 64, LOADER_ZONE_HIGH);
		memcpy(t + o.tpm2 + offsetof(struct acpi_tpm2, laml), &laml, 4);
		finish_table(t + o.tpm2);
		loader_pointer(&l, T, ACPI_TPM_LOG_FILE,
			       (uint32_t)(o.tpm2 + offsetof(struct acpi_tpm2, lasa)), 8);
		loader_checksum(&l, T, (uint32_t)o.tpm2 + 9, (uint32_t)o.tpm2,
				table_len(t + o.tpm2));
	}
	for (unsigned i = 0; i < o.ntables; i++) {
		loader_pointer(&l, T, T, (uint32_t)(o.rsdt + 36 + 4 * i), 4);
		loader_pointer(&l, T, T, (uint32_t)(o.xsdt + 36 + 8 * i), 8);
	}
	loader_pointer(&l, T, T, (uint32_t)(o.fadt + offsetof(struct acpi_fadt, firmware_ctrl)), 4);
	loader_pointer(&l, T, T, (uint32_t)(o.fadt + offsetof(struct acpi_fadt, dsdt)), 4);
	loader_pointer(&l, T, T, (uint32_t)(o.fadt + offsetof(struct acpi_fadt, x_dsdt)), 8);
	loader_checksum(&l, T, (uint32_t)o.fadt + 9, (uint32_t)o.fadt, table_len(t + o.fadt));
	loader_checksum(&l, T, (uint32_t)o.rsdt + 9, (uint32_t)o.rsdt, table_len(t + o.rsdt));
	loader_checksum(&l, T, (uint32_t)o.xsdt + 9, (uint32_t)o.xsdt, table_len(t + o.xsdt));
	loader_pointer(&l, R, T, offsetof(struct acpi_rsdp, rsdt_address), 4);
	loader_pointer(&l, R, T, offsetof(struct acpi_rsdp, xsdt_address), 8);
	loader_checksum(&l, R, offsetof(struct acpi_rsdp, checksum), 0, 20);
	loader_checksum(&l, R, offsetof(struct acpi_rsdp, extended_checksum), 0,
			sizeof(struct acpi_rsdp));
	out->tables = t;
	out->tables_len = (size_t)n;
	out->loader = l.buf;
	out->loader_len = l.len;
	return 0;
}
