/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/boot/bootparam.h - the x86 boot protocol's setup header and
 * boot_params ("zero page") layouts (Documentation/arch/x86/boot.rst and
 * zero-page.rst), as our own packed structs with the documented offsets
 * checked at compile time.  Boot-internal: used by linux.c and its test.
 */
#ifndef VIVARIUM_BOOT_BOOTPARAM_H
#define VIVARIUM_BOOT_BOOTPARAM_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#define BP_SETUP_HDR_OFF	0x1f1	/* setup header, in image and zero page */
#define BP_BOOT_FLAG		0xaa55
#define BP_HDRS_MAGIC		0x53726448u	/* "HdrS" */

/* loadflags */
#define BP_LOADED_HIGH		(1u << 0)
#define BP_KASLR_FLAG		(1u << 1)
#define BP_QUIET_FLAG		(1u << 5)
#define BP_KEEP_SEGMENTS	(1u << 6)
#define BP_CAN_USE_HEAP		(1u << 7)

/* xloadflags (protocol 2.12+) */
#define BP_XLF_KERNEL_64		(1u << 0)
#define BP_XLF_CAN_BE_LOADED_ABOVE_4G	(1u << 1)

#define BP_E820_MAX		128	/* E820_MAX_ENTRIES_ZEROPAGE */
#define BP_TYPE_OF_LOADER_UNDEF	0xff	/* "boot loader not assigned an ID" */
#define BP_VID_MODE_NORMAL	0xffff

struct bp_setup_header {
	uint8_t setup_sects;		/* 0x1f1 */
	uint16_t root_flags;		/* 0x1f2 */
	uint32_t syssize;		/* 0x1f4, 16-byte paragraphs */
	uint16_t ram_size;		/* 0x1f8 */
	uint16_t vid_mode;		/* 0x1fa */
	uint16_t root_dev;		/* 0x1fc */
	uint16_t boot_flag;		/* 0x1fe, 0xaa55 */
	uint16_t jump;			/* 0x200 */
	uint32_t header;		/* 0x202, "HdrS" */
	uint16_t version;		/* 0x206 */
	uint32_t realmode_swtch;	/* 0x208 */
	uint16_t start_sys_seg;		/* 0x20c */
	uint16_t kernel_version;	/* 0x20e */
	uint8_t type_of_loader;		/* 0x210 */
	uint8_t loadflags;		/* 0x211 */
	uint16_t setup_move_size;	/* 0x212 */
	uint32_t code32_start;		/* 0x214 */
	uint32_t ramdisk_image;		/* 0x218 */
	uint32_t ramdisk_size;		/* 0x21c */
	uint32_t bootsect_kludge;	/* 0x220 */
	uint16_t heap_end_ptr;		/* 0x224 */
	uint8_t ext_loader_ver;		/* 0x226 */
	uint8_t ext_loader_type;	/* 0x227 */
	uint32_t cmd_line_ptr;		/* 0x228 */
	uint32_t initrd_addr_max;	/* 0x22c */
	uint32_t kernel_alignment;	/* 0x230 */
	uint8_t relocatable_kernel;	/* 0x234 */
	uint8_t min_alignment;		/* 0x235 */
	uint16_t xloadflags;		/* 0x236 */
	uint32_t cmdline_size;		/* 0x238 */
	uint32_t hardware_subarch;	/* 0x23c */
	uint64_t hardware_subarch_data;	/* 0x240 */
	uint32_t payload_offset;	/* 0x248 */
	uint32_t payload_length;	/* 0x24c */
	uint64_t setup_data;		/* 0x250 */
	uint64_t pref_address;		/* 0x258 */
	uint32_t init_size;		/* 0x260 */
	uint32_t handover_offset;	/* 0x264 */
	uint32_t kernel_info_offset;	/* 0x268 */
} __attribute__((packed));		/* ends at 0x26c */

#define BP_HDR_FIELD(f) (BP_SETUP_HDR_OFF + offsetof(struct bp_setup_header, f))
static_assert(BP_HDR_FIELD(syssize) == 0x1f4, "syssize");
static_assert(BP_HDR_FIELD(boot_flag) == 0x1fe, "boot_flag");
static_assert(BP_HDR_FIELD(header) == 0x202, "header");
static_assert(BP_HDR_FIELD(version) == 0x206, "version");
static_assert(BP_HDR_FIELD(type_of_loader) == 0x210, "type_of_loader");
static_assert(BP_HDR_FIELD(loadflags) == 0x211, "loadflags");
static_assert(BP_HDR_FIELD(ramdisk_image) == 0x218, "ramdisk_image");
static_assert(BP_HDR_FIELD(heap_end_ptr) == 0x224, "heap_end_ptr");
static_assert(BP_HDR_FIELD(cmd_line_ptr) == 0x228, "cmd_line_ptr");
static_assert(BP_HDR_FIELD(initrd_addr_max) == 0x22c, "initrd_addr_max");
static_assert(BP_HDR_FIELD(xloadflags) == 0x236, "xloadflags");
static_assert(BP_HDR_FIELD(cmdline_size) == 0x238, "cmdline_size");
static_assert(BP_HDR_FIELD(pref_address) == 0x258, "pref_address");
static_assert(BP_HDR_FIELD(init_size) == 0x260, "init_size");
static_assert(BP_SETUP_HDR_OFF + sizeof(struct bp_setup_header) == 0x26c,
	      "setup header end");

struct bp_e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

/* The zero page.  Only the fields we fill are named. */
struct boot_params {
	uint8_t screen_info[0x40];		/* 0x000 */
	uint8_t apm_bios_info[0x14];		/* 0x040 */
	uint8_t _pad2[4];			/* 0x054 */
	uint64_t tboot_addr;			/* 0x058 */
	uint8_t ist_info[0x10];			/* 0x060 */
	uint64_t acpi_rsdp_addr;		/* 0x070, protocol 2.14+ */
	uint8_t _pad3[8];			/* 0x078 */
	uint8_t hd0_info[16];			/* 0x080 */
	uint8_t hd1_info[16];			/* 0x090 */
	uint8_t sys_desc_table[16];		/* 0x0a0 */
	uint8_t olpc_ofw_header[16];		/* 0x0b0 */
	uint32_t ext_ramdisk_image;		/* 0x0c0 */
	uint32_t ext_ramdisk_size;		/* 0x0c4 */
	uint32_t ext_cmd_line_ptr;		/* 0x0c8 */
	uint8_t _pad4[0x140 - 0xcc];		/* 0x0cc */
	uint8_t edid_info[0x80];		/* 0x140 */
	uint8_t efi_info[0x20];			/* 0x1c0 */
	uint32_t alt_mem_k;			/* 0x1e0 */
	uint32_t scratch;			/* 0x1e4 */
	uint8_t e820_entries;			/* 0x1e8 */
	uint8_t eddbuf_entries;			/* 0x1e9 */
	uint8_t edd_mbr_sig_buf_entries;	/* 0x1ea */
	uint8_t kbd_status;			/* 0x1eb */
	uint8_t secure_boot;			/* 0x1ec */
	uint8_t _pad5[2];			/* 0x1ed */
	uint8_t sentinel;			/* 0x1ef, must stay 0 */
	uint8_t _pad6[1];			/* 0x1f0 */
	struct bp_setup_header hdr;		/* 0x1f1 */
	uint8_t _pad7[0x290 - 0x26c];		/* 0x26c */
	uint32_t edd_mbr_sig_buffer[16];	/* 0x290 */
	struct bp_e820_entry e820_table[BP_E820_MAX];	/* 0x2d0 */
	uint8_t _pad8[48];			/* 0xcd0 */
	uint8_t eddbuf[0xeec - 0xd00];		/* 0xd00 */
	uint8_t _pad9[276];			/* 0xeec */
} __attribute__((packed));

static_assert(offsetof(struct boot_params, acpi_rsdp_addr) == 0x070, "rsdp");
static_assert(offsetof(struct boot_params, ext_ramdisk_image) == 0x0c0, "ext_rd");
static_assert(offsetof(struct boot_params, ext_cmd_line_ptr) == 0x0c8, "ext_cmdl");
static_assert(offsetof(struct boot_params, e820_entries) == 0x1e8, "e820_entries");
static_assert(offsetof(struct boot_params, sentinel) == 0x1ef, "sentinel");
static_assert(offsetof(struct boot_params, hdr) == BP_SETUP_HDR_OFF, "hdr");
static_assert(offsetof(struct boot_params, e820_table) == 0x2d0, "e820_table");
static_assert(offsetof(struct boot_params, eddbuf) == 0xd00, "eddbuf");
static_assert(sizeof(struct boot_params) == 4096, "zero page size");

/* Setup header bytes copied from the image: 0x1f1 up to 0x202 + the byte at
 * 0x201 (the jump's offset), but never past the header area (0x290). */
#define BP_HDR_AREA_END		0x290

#endif
