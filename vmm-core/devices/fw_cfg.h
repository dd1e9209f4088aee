/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/devices/fw_cfg.h - the firmware configuration interface SeaBIOS
 * and OVMF read on a PC (QEMU's docs/specs/fw_cfg.rst, "the fw_cfg spec"):
 * a 16-bit selector at port 0x510, a byte-wide data port at 0x511, and the
 * DMA interface at 0x514 (big-endian 64-bit address of a FWCfgDmaAccess;
 * writing its low half at 0x518 starts the transfer).
 *
 * Items are numbered keys (signature, ID, RAM size, CPU counts, ...) and
 * named files listed in the file directory (key 0x19), which gives them
 * keys from 0x20 up, sorted by name.  Items are read-only for the guest.
 */
#ifndef VIVARIUM_FW_CFG_H
#define VIVARIUM_FW_CFG_H

#include <stddef.h>
#include <stdint.h>

#include "../device.h"

struct bus;
struct guest_mem;
struct fw_cfg;

#define FW_CFG_PORT_SEL		0x510
#define FW_CFG_PORT_DATA	0x511
#define FW_CFG_PORT_DMA		0x514

/* Numbered items (the fw_cfg spec, "Selector Register"). */
#define FW_CFG_SIGNATURE	0x00
#define FW_CFG_ID		0x01
#define FW_CFG_UUID		0x02
#define FW_CFG_RAM_SIZE		0x03
#define FW_CFG_NOGRAPHIC	0x04
#define FW_CFG_NB_CPUS		0x05
#define FW_CFG_KERNEL_ADDR	0x07
#define FW_CFG_KERNEL_SIZE	0x08
#define FW_CFG_INITRD_ADDR	0x0a
#define FW_CFG_INITRD_SIZE	0x0b
#define FW_CFG_NUMA		0x0d
#define FW_CFG_BOOT_MENU	0x0e
#define FW_CFG_MAX_CPUS		0x0f
#define FW_CFG_KERNEL_DATA	0x11
#define FW_CFG_INITRD_DATA	0x12
#define FW_CFG_CMDLINE_ADDR	0x13
#define FW_CFG_CMDLINE_SIZE	0x14
#define FW_CFG_CMDLINE_DATA	0x15
#define FW_CFG_SETUP_ADDR	0x16
#define FW_CFG_SETUP_SIZE	0x17
#define FW_CFG_SETUP_DATA	0x18
#define FW_CFG_FILE_DIR		0x19
#define FW_CFG_FILE_FIRST	0x20
#define FW_CFG_MAX_FILES	64
#define FW_CFG_NAME_MAX		56	/* including the NUL */

/* DMA control bits (FWCfgDmaAccess.control). */
#define FW_CFG_DMA_ERROR	0x01
#define FW_CFG_DMA_READ		0x02
#define FW_CFG_DMA_SKIP		0x04
#define FW_CFG_DMA_SELECT	0x08
#define FW_CFG_DMA_WRITE	0x10

/* @mem: where DMA transfers go (checked per access). */
struct fw_cfg *fw_cfg_new(const struct guest_mem *mem);
void fw_cfg_free(struct fw_cfg *fc);
/*
 * Its lifecycle in the machine's device table (device.h).
 * fw_cfg_device_ops: state FW_CFG_STATE_TYPE, version 1: (selector, offset
 * into the selected item (at most its length), the DMA address's high
 * half written at 0x514 and awaiting its low half, whether the selector
 * names an item, that item's length).  DMA transfers run to completion
 * within the port write, so there is no other DMA state.  The items'
 * contents are not state: the machine rebuilds them from its
 * configuration, and load checks the selected one is there with the same
 * length.
 */
#define FW_CFG_STATE_TYPE "(quubu)"
extern const struct device_ops fw_cfg_device_ops;
/* Register ports 0x510-0x51f.  Returns 0 or -errno. */
int fw_cfg_attach(struct fw_cfg *fc, struct bus *pio);

/* Set numbered item @key (< 0x20) to a copy of @data (@len bytes).
 * Returns 0, -EINVAL or -ENOMEM. */
int fw_cfg_add_bytes(struct fw_cfg *fc, uint16_t key, const void *data,
		     size_t len);
/* Little-endian integer items, as SeaBIOS reads them. */
int fw_cfg_add_u16(struct fw_cfg *fc, uint16_t key, uint16_t value);
int fw_cfg_add_u64(struct fw_cfg *fc, uint16_t key, uint64_t value);
int fw_cfg_add_u32(struct fw_cfg *fc, uint16_t key, uint32_t value);
/*
 * fw_cfg_add_file - add file @name (< 56 bytes, e.g. "etc/e820") holding
 * a copy of @data.  Returns 0, -EEXIST, -EINVAL (name too long, too many
 * files) or -ENOMEM.  Keys are assigned in name order when the directory
 * is first read, so files may be added in any order before the guest runs.
 */
int fw_cfg_add_file(struct fw_cfg *fc, const char *name, const void *data,
		    size_t len);

/* Key the file @name got, or -ENOENT (for tests). */
int fw_cfg_file_key(struct fw_cfg *fc, const char *name);

#endif
