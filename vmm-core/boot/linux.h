/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/boot/linux.h - direct Linux boot per the x86 boot protocol
 * (Documentation/arch/x86/boot.rst), 64-bit entry: the protected-mode kernel
 * is loaded at its preferred 1 MiB address, boot_params ("zero page") at
 * LINUX_ZERO_PAGE with the setup header copied from the image, the command
 * line at LINUX_CMDLINE, the initrd as high as initrd_addr_max and RAM
 * allow, the e820 map from guest_mem_e820(); the boot vCPU enters
 * startup_64 (load address + 0x200) in long mode with RSI = zero page.
 */
#ifndef VIVARIUM_BOOT_LINUX_H
#define VIVARIUM_BOOT_LINUX_H

#include <stddef.h>
#include <stdint.h>

struct guest_mem;
struct hv_regs;
struct hv_sregs;

/* Fixed low-memory layout of the direct boot path (GPAs). */
#define LINUX_GDT		0x0500ull
#define LINUX_ZERO_PAGE		0x7000ull
#define LINUX_PML4		0x9000ull	/* + PDPT 0xa000, PDs 0xb000.. */
#define LINUX_CMDLINE		0x20000ull
#define LINUX_CMDLINE_MAX	0x10000ull	/* bytes, NUL included */

struct linux_boot {
	const uint8_t *kernel;	/* the bzImage file's bytes */
	size_t kernel_len;
	const uint8_t *initrd;	/* may be NULL */
	size_t initrd_len;
	const char *cmdline;	/* may be NULL */
	uint64_t rsdp_gpa;	/* ACPI RSDP for boot_params (0: none) */
};

struct linux_entry {
	uint64_t rip;		/* startup_64 */
	uint64_t zero_page;	/* GPA of boot_params, for RSI */
	uint64_t kernel_gpa, kernel_size;
	uint64_t initrd_gpa, initrd_size;
	uint16_t protocol;	/* boot protocol version, e.g. 0x020f */
};

/* How far a complete image may fall short of syssize * 16: syssize counts
 * 16-byte paragraphs, rounded up (boot.rst, "syssize"). */
#define LINUX_SYSSIZE_SLACK	15

/*
 * linux_load - check @b->kernel is a bzImage this path can boot (magic
 * "HdrS", protocol >= 2.06, 64-bit entry XLF_KERNEL_64, loaded high) and lay
 * out kernel, initrd, command line and boot_params in @mem.  The
 * protected-mode kernel is the file after the setup sectors; it may end up
 * to LINUX_SYSSIZE_SLACK bytes before syssize * 16 (that tail is zeroed).
 * Returns 0, or -EINVAL (not a bzImage, truncated, too old: @err says which),
 * -E2BIG (command line longer than cmdline_size), -ENOSPC (kernel or initrd
 * does not fit in RAM below the limits).  On error @err (@errlen bytes)
 * holds one line for the user.
 */
int linux_load(struct guest_mem *mem, const struct linux_boot *b,
	       struct linux_entry *entry, char *err, size_t errlen);

/*
 * linux_setup_vcpu - write the GDT and identity page tables (first 4 GiB,
 * 2 MiB pages) to @mem and fill @regs/@sregs for 64-bit entry at @entry.
 * @sregs must hold the vCPU's current values (they are modified: segments,
 * GDT/IDT, CR0/CR3/CR4, EFER |= LME|LMA; apic_base, cr2, cr8 kept); @regs
 * is overwritten (RIP, RSI = zero page, RSP, RFLAGS = 2, the rest 0).
 * Returns 0, -EINVAL (NULL argument) or -EFAULT (low RAM missing).
 */
int linux_setup_vcpu(struct guest_mem *mem, const struct linux_entry *entry,
		     struct hv_regs *regs, struct hv_sregs *sregs);

/*
 * Booting through the BIOS instead: SeaBIOS runs the linuxboot option ROM
 * (QEMU's linuxboot_dma.bin, from the qemu-system-data package), which
 * reads these as fw_cfg items (setup, kernel, initrd, command line, each
 * with its load GPA) and enters the kernel's real-mode setup code.
 */
struct linux_fw_boot {
	uint32_t setup_gpa, kernel_gpa, initrd_gpa, cmdline_gpa;
	uint8_t *setup;			/* the patched setup sectors (heap) */
	size_t setup_len;
	const uint8_t *kernel;		/* the protected-mode part of b->kernel */
	size_t kernel_len;
	const uint8_t *initrd;		/* b->initrd */
	size_t initrd_len;
	char *cmdline;			/* with its NUL (heap) */
	size_t cmdline_len;
};

/* Check the bzImage as linux_load() does and lay it out for the option
 * ROM below @low_ram_top (bytes of RAM below the PCI hole).  Returns 0,
 * -EINVAL, -E2BIG, -ENOSPC or -ENOMEM with one line in @err. */
int linux_fw_boot_prepare(const struct linux_boot *b, uint64_t low_ram_top,
			  struct linux_fw_boot *fb, char *err, size_t errlen);
void linux_fw_boot_free(struct linux_fw_boot *fb);

#endif
