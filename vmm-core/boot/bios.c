/* SPDX-License-Identifier: MIT */
/*
 * Booting the PC through SeaBIOS: the flash image as a read-only memory
 * slot below 4 GiB (and its last 128 KiB at 0xe0000), the CMOS bytes
 * SeaBIOS reads, and the fw_cfg items (e820, CPU counts, bootorder,
 * sercon, ACPI tables with their table-loader script, and for --kernel the
 * linuxboot option ROM and the kernel's pieces).  Direct Linux boot is
 * boot/linux.c.
 */
#include "machine_internal.h"

#include <stdlib.h>
#include <sys/mman.h>

#include "devices/fw_cfg.h"
#include "devices/rtc.h"
#include "hv.h"

#define DEFAULT_BIOS	"/usr/share/seabios/bios-256k.bin"
#define LINUXBOOT_ROM	"/usr/share/qemu/linuxboot_dma.bin"
#define LINUXBOOT_NAME	"genroms/linuxboot_dma.bin"
#define VGA_ROM		"/usr/share/seabios/vgabios-stdvga.bin"
#define BIOS_MAX	(16u << 20)
#define ISA_BIOS_SIZE	0x20000		/* the BIOS's last 128 KiB at 0xe0000 */

int firmware_image_read(struct machine *m, const char *path, const char *what,
			const char *package, size_t block, size_t max,
			const char *rule, char *err, size_t errlen)
{
	uint8_t *data;
	size_t len;
	int r = machine_read_file(path, what, &data, &len, err, errlen);

	if (r < 0) {
		if (r == -ENOENT)
			snprintf(err + strlen(err), errlen - strlen(err),
				 " (install Debian's %s package)", package);
		return r;
	}
	if (!len || len % block || len > max) {
		snprintf(err, errlen, "%s '%s' is %zu bytes; %s", what, path, len,
			 rule);
		free(data);
		return -EINVAL;
	}
	m->bios = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m->bios == MAP_FAILED) {
		m->bios = NULL;
		free(data);
		snprintf(err, errlen, "%s: out of memory", what);
		return -ENOMEM;
	}
	memcpy(m->bios, data, len);
	m->bios_len = len;
	free(data);
	return 0;
}

/* The flash image: a multiple of 64 KiB up to 16 MiB. */
static int read_bios(struct machine *m, const char *path, char *err,
		     size_t errlen)
{
	return firmware_image_read(m, path, "firmware", "seabios", 0x10000,
				   BIOS_MAX,
				   "a BIOS image is a multiple of 64 KiB up to 16 MiB",
				   err, errlen);
}

int bios_read_images(struct machine *m, char *err, size_t errlen)
{
	const struct machine_config *cfg = &m->cfg;
	int r;

	r = read_bios(m, cfg->bios_path ? cfg->bios_path : DEFAULT_BIOS,
		      err, errlen);
	if (r < 0)
		return r;
	if (cfg->kernel_path) {
		r = machine_read_file(LINUXBOOT_ROM, "Linux boot option ROM",
				      &m->linuxboot, &m->linuxboot_len,
				      err, errlen);
		if (r < 0) {
			snprintf(err + strlen(err), errlen - strlen(err),
				 " (install Debian's qemu-system-data package, or leave out --firmware bios)");
			return r;
		}
	}
	if (!cfg->no_vga) {
		r = machine_read_file(VGA_ROM, "VGA BIOS", &m->vga_rom,
				      &m->vga_rom_len, err, errlen);
		if (r < 0) {
			snprintf(err + strlen(err), errlen - strlen(err),
				 " (install Debian's seabios package)");
			return r;
		}
	}
	return 0;
}

/* CMOS bytes SeaBIOS reads before fw_cfg (memory sizes, CPU count) and
 * the boot order (QEMU's convention: 0x3d/0x38 nibbles, 2 disk, 3 CD). */
void bios_cmos(struct machine *m)
{
	uint64_t low = guest_mem_low_end(&m->mem), high = 0, ext, above16;
	struct rtc *rtc = m->dev.rtc;
	bool cd_first = m->cfg.boot == MACHINE_BOOT_CDROM;

	if (m->mem.nregions > 2)
		high = m->mem.region[2].size;
	if (m->cfg.boot == MACHINE_BOOT_DEFAULT)
		for (unsigned i = 0; i < m->cfg.ndrives; i++)
			cd_first |= m->cfg.drive[i].cdrom;
	ext = low > MEM_HIGH_START ? (low - MEM_HIGH_START) >> 10 : 0;
	above16 = low > (16u << 20) ? (low - (16u << 20)) >> 16 : 0;
	if (ext > 0xffff)
		ext = 0xffff;
	if (above16 > 0xffff)
		above16 = 0xffff;
	rtc_cmos_set(rtc, 0x15, 640 & 0xff);		/* base memory, KiB */
	rtc_cmos_set(rtc, 0x16, 640 >> 8);
	rtc_cmos_set(rtc, 0x17, (uint8_t)ext);		/* 1 MiB-, KiB */
	rtc_cmos_set(rtc, 0x18, (uint8_t)(ext >> 8));
	rtc_cmos_set(rtc, 0x30, (uint8_t)ext);
	rtc_cmos_set(rtc, 0x31, (uint8_t)(ext >> 8));
	rtc_cmos_set(rtc, 0x34, (uint8_t)above16);	/* 16 MiB-, 64 KiB */
	rtc_cmos_set(rtc, 0x35, (uint8_t)(above16 >> 8));
	rtc_cmos_set(rtc, 0x5b, (uint8_t)(high >> 16));	/* 4 GiB-, 64 KiB */
	rtc_cmos_set(rtc, 0x5c, (uint8_t)(high >> 24));
	rtc_cmos_set(rtc, 0x5d, (uint8_t)(high >> 32));
	rtc_cmos_set(rtc, 0x5f, (uint8_t)(m->cfg.ncpus - 1));
	rtc_cmos_set(rtc, 0x3d, cd_first ? 0x23 : 0x32);
	rtc_cmos_set(rtc, 0x38, 0x01);			/* no floppy signature check */
}

/* fw_cfg "bootorder": OpenFirmware paths as SeaBIOS builds them for its
 * drives, the kind --boot asks for first (CMOS carries the same order for
 * the legacy entries). */
static int bootorder(struct machine *m)
{
	char buf[MACHINE_MAX_DRIVES * 48] = "";
	size_t n = 0;
	int pos[MACHINE_MAX_DRIVES];
	bool cd_first = m->cfg.boot != MACHINE_BOOT_DISK;

	pc_ata_positions(m, pos);
	for (int pass = 0; pass < 2; pass++) {
		unsigned nvirtio = 0;

		for (unsigned i = 0; i < m->cfg.ndrives; i++) {
			bool cd = m->cfg.drive[i].cdrom;

			if (pos[i] < 0)
				nvirtio++;
			if (cd != (cd_first == (pass == 0)))
				continue;
			if (pos[i] >= 0)
				n += (size_t)snprintf(buf + n, sizeof(buf) - n,
					"/pci@i0cf8/ide@1,1/drive@%d/disk@%d\n",
					pos[i] / 2, pos[i] % 2);
			else
				n += (size_t)snprintf(buf + n, sizeof(buf) - n,
					"/pci@i0cf8/scsi@%x/disk@0,0\n",
					VIRTIO_BLK_SLOT + nvirtio - 1);
		}
	}
	return n ? fw_cfg_add_file(m->dev.fw_cfg, "bootorder", buf, n + 1) : 0;
}

/* --kernel with --firmware bios: the linuxboot option ROM loads these. */
static int bios_kernel(struct machine *m, char *err, size_t errlen)
{
	struct linux_boot b = {
		.kernel = m->kernel, .kernel_len = m->kernel_len,
		.initrd = m->initrd, .initrd_len = m->initrd_len,
		.cmdline = m->cfg.cmdline,
	};
	struct fw_cfg *fc = m->dev.fw_cfg;
	struct linux_fw_boot fb;
	int r = linux_fw_boot_prepare(&b, guest_mem_low_end(&m->mem), &fb,
				      err, errlen);

	if (r < 0)
		return r;
	if ((r = fw_cfg_add_u32(fc, FW_CFG_SETUP_ADDR, fb.setup_gpa)) < 0 ||
	    (r = fw_cfg_add_u32(fc, FW_CFG_SETUP_SIZE, (uint32_t)fb.setup_len)) < 0 ||
	    (r = fw_cfg_add_bytes(fc, FW_CFG_SETUP_DATA, fb.setup, fb.setup_len)) < 0 ||
	    (r = fw_cfg_add_u32(fc, FW_CFG_KERNEL_ADDR, fb.kernel_gpa)) < 0 ||
	    (r = fw_cfg_add_u32(fc, FW_CFG_KERNEL_SIZE, (uint32_t)fb.kernel_len)) < 0 ||
	    (r = fw_cfg_add_bytes(fc, FW_CFG_KERNEL_DATA, fb.kernel, fb.kernel_len)) < 0 ||
	    (r = fw_cfg_add_u32(fc, FW_CFG_INITRD_ADDR, fb.initrd_gpa)) < 0 ||
	    (r = fw_cfg_add_u32(fc, FW_CFG_INITRD_SIZE, (uint32_t)fb.initrd_len)) < 0 ||
	    (r = fw_cfg_add_bytes(fc, FW_CFG_INITRD_DATA, fb.initrd, fb.initrd_len)) < 0 ||
	    (r = fw_cfg_add_u32(fc, FW_CFG_CMDLINE_ADDR, fb.cmdline_gpa)) < 0 ||
	    (r = fw_cfg_add_u32(fc, FW_CFG_CMDLINE_SIZE, (uint32_t)fb.cmdline_len)) < 0 ||
	    (r = fw_cfg_add_bytes(fc, FW_CFG_CMDLINE_DATA, fb.cmdline, fb.cmdline_len)) < 0 ||
	    (r = fw_cfg_add_file(fc, LINUXBOOT_NAME, m->linuxboot, m->linuxboot_len)) < 0)
		snprintf(err, errlen, "fw_cfg kernel items: %s", strerror(-r));
	linux_fw_boot_free(&fb);
	return r;
}

/* The fw_cfg items SeaBIOS and OVMF read (see docs in devices/fw_cfg.h);
 * OVMF ignores etc/sercon-port (its console is on COM1 anyway). */
int bios_fw_cfg(struct machine *m, char *err, size_t errlen)
{
	struct acpi_config acfg = pc_acpi_config(m);
	struct acpi_fw_cfg_blobs acpi;
	struct e820_entry e820[3];
	struct fw_cfg *fc;
	unsigned n = 0;
	uint8_t uuid[16] = { 0 };
	int r;

	TRY_DEV(m->dev.fw_cfg, fw_cfg_new(&m->mem), fw_cfg_device_ops, "fw_cfg");
	fc = m->dev.fw_cfg;
	TRY(fw_cfg_attach(fc, m->pio), "fw_cfg");
	/* RAM and KVM's pages: SeaBIOS reserves its own areas below 1 MiB and
	 * the flash, and passes reserved entries on to the OS. */
	e820[n++] = (struct e820_entry){ 0, guest_mem_low_end(&m->mem), E820_RAM };
	e820[n++] = (struct e820_entry){ HV_KVM_PAGES_GPA, HV_KVM_PAGES_SIZE,
					 E820_RESERVED };
	if (m->mem.nregions > 2)
		e820[n++] = (struct e820_entry){ m->mem.region[2].gpa,
						 m->mem.region[2].size, E820_RAM };
	TRY(fw_cfg_add_file(fc, "etc/e820", e820, n * sizeof(e820[0])), "fw_cfg e820");
	TRY(fw_cfg_add_u64(fc, FW_CFG_RAM_SIZE, m->cfg.ram_size), "fw_cfg");
	TRY(fw_cfg_add_u16(fc, FW_CFG_NB_CPUS, (uint16_t)m->cfg.ncpus), "fw_cfg");
	TRY(fw_cfg_add_u16(fc, FW_CFG_MAX_CPUS, (uint16_t)m->cfg.ncpus), "fw_cfg");
	TRY(fw_cfg_add_u64(fc, FW_CFG_NUMA, 0), "fw_cfg");
	TRY(fw_cfg_add_u16(fc, FW_CFG_BOOT_MENU, 0), "fw_cfg");
	TRY(fw_cfg_add_bytes(fc, FW_CFG_UUID, uuid, sizeof(uuid)), "fw_cfg");
	TRY(fw_cfg_add_u16(fc, FW_CFG_NOGRAPHIC, m->cfg.sercon), "fw_cfg");
	if (m->kernel) {
		static const char rom_first[] = "/rom@" LINUXBOOT_NAME "\n";

		r = bios_kernel(m, err, errlen);
		if (r < 0)
			return r;
		TRY(fw_cfg_add_file(fc, "bootorder", rom_first, sizeof(rom_first)),
		    "fw_cfg bootorder");
	} else {
		TRY(bootorder(m), "fw_cfg bootorder");
	}
	if (m->cfg.sercon) {
		uint16_t port = COM1_BASE;

		TRY(fw_cfg_add_file(fc, "etc/sercon-port", &port, 2), "fw_cfg");
	}
	if (acfg.tpm) {
		/* The event log area TPM2's LASA points at (SeaBIOS fills
		 * it as it measures the boot). */
		void *log = calloc(1, ACPI_TPM_LOG_SIZE);

		r = log ? fw_cfg_add_file(fc, ACPI_TPM_LOG_FILE, log,
					  ACPI_TPM_LOG_SIZE) : -ENOMEM;
		free(log);
		TRY(r, "fw_cfg TPM log");
	}
	r = acpi_build_fw_cfg(&acfg, &acpi);
	if (r < 0) {
		snprintf(err, errlen, "cannot build ACPI tables: %s", strerror(-r));
		return r;
	}
	r = fw_cfg_add_file(fc, "etc/acpi/rsdp", acpi.rsdp, acpi.rsdp_len);
	if (r == 0)
		r = fw_cfg_add_file(fc, "etc/acpi/tables", acpi.tables, acpi.tables_len);
	if (r == 0)
		r = fw_cfg_add_file(fc, "etc/table-loader", acpi.loader, acpi.loader_len);
	acpi_fw_cfg_blobs_free(&acpi);
	TRY(r, "fw_cfg ACPI tables");
	return 0;
}

/* The flash at the top of 4 GiB (read-only slot) and its last 128 KiB at
 * 0xe0000 in RAM, where the reset vector's far jump lands; SeaBIOS then
 * copies itself from the high alias (PAM registers are storage only). */
int bios_load(struct machine *m, char *err, size_t errlen)
{
	size_t isa = m->bios_len < ISA_BIOS_SIZE ? m->bios_len : ISA_BIOS_SIZE;
	int r;

	r = hv_vm_set_memory(m->vm, MEM_SLOT_BIOS, MEM_4G - m->bios_len,
			     m->bios_len, m->bios, HV_MEM_READONLY);
	if (r == -ENOTSUP)	/* no read-only slots: guest writes stick until reset */
		r = hv_vm_set_memory(m->vm, MEM_SLOT_BIOS, MEM_4G - m->bios_len,
				     m->bios_len, m->bios, 0);
	TRY(r, "cannot map the BIOS");
	TRY(guest_mem_write(&m->mem, MEM_HIGH_START - isa,
			    m->bios + m->bios_len - isa, isa), "BIOS shadow");
	bios_cmos(m);
	return bios_fw_cfg(m, err, errlen);
}
