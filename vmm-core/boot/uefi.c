/* SPDX-License-Identifier: MIT */
/*
 * Booting the PC through OVMF (UEFI): two CFI flashes (devices/pflash.h)
 * ending at 4 GiB, as OVMF's split builds expect them and QEMU's PC places
 * them: the code image (read-only) directly below 4 GiB and the variable
 * store directly below the code.  OVMF_CODE_4M.fd (0x37c000 bytes) and
 * OVMF_VARS_4M.fd (0x84000) make one 4 MiB image at 0xffc00000, the
 * address the build fixed for PcdOvmfFlashNvStorageVariableBase.  The CMOS
 * bytes and fw_cfg items are SeaBIOS's (boot/bios.c): OVMF reads the same
 * etc/e820, CPU counts, bootorder and ACPI tables through etc/table-loader.
 */
#define _GNU_SOURCE	/* memfd_create */
#include "machine_internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/block_int.h"
#include "devices/pflash.h"
#include "hv.h"

#define DEFAULT_CODE	"/usr/share/OVMF/OVMF_CODE_4M.fd"
#define DEFAULT_VARS	"/usr/share/OVMF/OVMF_VARS_4M.fd"
#define FLASH_BLOCK	0x1000		/* OVMF's FVB block size */
#define FLASH_MAX	(16u << 20)	/* code + store, below 4 GiB */

static int read_code(struct machine *m, const char *path, char *err,
		     size_t errlen)
{
	return firmware_image_read(m, path, "UEFI firmware", "ovmf", FLASH_BLOCK,
				   FLASH_MAX / 2,
				   "a flash image is a multiple of 4 KiB up to 8 MiB",
				   err, errlen);
}

static int vars_size_ok(const char *path, uint64_t len, char *err,
			size_t errlen)
{
	if (!len || len % FLASH_BLOCK || len > FLASH_MAX / 2) {
		snprintf(err, errlen, "UEFI variable store '%s' is %llu bytes; a flash image is a multiple of 4 KiB up to 8 MiB",
			 path, (unsigned long long)len);
		return -EINVAL;
	}
	return 0;
}

/* Without a store of the VM's own: Debian's template in a memfd, so the
 * variables OVMF sets survive its resets (it resets after changing some,
 * e.g. MemoryTypeInformation on a first boot) and end with the process. */
static int template_store(struct machine *m, char *err, size_t errlen)
{
	uint8_t *data;
	size_t len, done = 0;
	int r = machine_read_file(DEFAULT_VARS, "UEFI variable store", &data,
				  &len, err, errlen);

	if (r < 0) {
		if (r == -ENOENT)
			snprintf(err + strlen(err), errlen - strlen(err),
				 " (install Debian's ovmf package)");
		return r;
	}
	r = vars_size_ok(DEFAULT_VARS, len, err, errlen);
	if (r == 0) {
		m->vars_fd = memfd_create("uefi-vars", MFD_CLOEXEC);
		if (m->vars_fd < 0) {
			r = -errno;
			snprintf(err, errlen, "UEFI variable store: memfd: %s", strerror(-r));
		}
	}
	while (r == 0 && done < len) {
		ssize_t n = pwrite(m->vars_fd, data + done, len - done, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			snprintf(err, errlen, "UEFI variable store: %s", strerror(-r));
		} else {
			done += (size_t)n;
		}
	}
	free(data);
	m->vars_len = len;
	return r;
}

int uefi_read_images(struct machine *m, char *err, size_t errlen)
{
	const struct machine_config *cfg = &m->cfg;
	struct stat st;
	int r;

	r = read_code(m, cfg->bios_path ? cfg->bios_path : DEFAULT_CODE, err,
		      errlen);
	if (r < 0)
		return r;
	if (!cfg->vars_path)
		return template_store(m, err, errlen);
	m->vars_fd = open(cfg->vars_path, O_RDWR | O_CLOEXEC);
	if (m->vars_fd < 0 || fstat(m->vars_fd, &st) < 0) {
		r = -errno;
		snprintf(err, errlen, "UEFI variable store '%s': %s",
			 cfg->vars_path, strerror(-r));
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "UEFI variable store '%s' is not a regular file",
			 cfg->vars_path);
		return -EINVAL;
	}
	m->vars_len = (size_t)st.st_size;
	r = vars_size_ok(cfg->vars_path, (uint64_t)st.st_size, err, errlen);
	if (r < 0)
		return r;
	if (m->bios_len + m->vars_len > FLASH_MAX) {
		snprintf(err, errlen, "UEFI code and variable store together are over 16 MiB");
		return -EINVAL;
	}
	/* One writer, as for a disk (QEMU's image locks, block/lock.c): a
	 * second VM, or QEMU with it as its pflash, is refused. */
	return blk_lock_perms(m->vars_fd, BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE,
			      BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE_UNCHANGED,
			      cfg->vars_path, err, errlen);
}

/* A flash in the device table (which frees it with the others), then on
 * the bus with its memory slot. */
static int add_flash(struct machine *m, const struct pflash_config *cfg,
		     struct pflash **out, char *err, size_t errlen)
{
	struct pflash *f = pflash_new(cfg, err, errlen);
	int r;

	if (!f)
		return -EINVAL;
	r = device_table_add(&m->devices, &pflash_device_ops, f);
	if (r < 0) {
		pflash_free(f);
		snprintf(err, errlen, "%s: %s", cfg->name, strerror(-r));
		return r;
	}
	*out = f;
	TRY(pflash_attach(f, m->mmio), cfg->name);
	return 0;
}

int uefi_load(struct machine *m, char *err, size_t errlen)
{
	uint64_t code_gpa = MEM_4G - m->bios_len;
	struct pflash_config code = {
		.name = "pflash.code", .gpa = code_gpa, .size = m->bios_len,
		.block_size = FLASH_BLOCK, .readonly = true, .fd = -1,
		.image = m->bios,
	};
	struct pflash_config vars = {
		.name = "pflash.vars", .gpa = code_gpa - m->vars_len,
		.size = m->vars_len, .block_size = FLASH_BLOCK,
		.fd = m->vars_fd,
	};
	int r;

	m->code_slot = (struct mem_slot_hv){ .vm = m->vm, .id = MEM_SLOT_BIOS };
	m->vars_slot = (struct mem_slot_hv){ .vm = m->vm, .id = MEM_SLOT_VARS };
	code.slot = mem_slot_hv(&m->code_slot);
	vars.slot = mem_slot_hv(&m->vars_slot);
	r = add_flash(m, &code, &m->dev.code, err, errlen);
	if (r == 0)
		r = add_flash(m, &vars, &m->dev.vars, err, errlen);
	if (r < 0)
		return r;
	bios_cmos(m);
	return bios_fw_cfg(m, err, errlen);
}
