/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/boot/linux.c - direct Linux boot, 64-bit boot protocol
 * (Documentation/arch/x86/boot.rst, "64-bit Boot Protocol").
 *
 * Memory layout (GPAs):
 *   0x0500  GDT (null, null, __BOOT_CS 0x10 code64, __BOOT_DS 0x18 data)
 *   0x7000  boot_params (zero page)
 *   0x8ff0  initial RSP (startup_64 sets its own stack; this is hygiene)
 *   0x9000  PML4, 0xa000 PDPT, 0xb000..0xefff four PDs (0-4 GiB, 2 MiB pages)
 *   0x20000 command line (up to LINUX_CMDLINE_MAX bytes)
 *   1 MiB   protected-mode kernel (bzImage minus its real-mode setup)
 *   the kernel's decompression area [max(1 MiB aligned, pref_address),
 *           + init_size) stays free; the initrd goes as high as the low RAM
 *           top and initrd_addr_max allow, above that area.
 */
#include "linux.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootparam.h"
#include "hv.h"
#include "../mem.h"

#define KERNEL_LOAD_GPA		MEM_HIGH_START		/* 1 MiB */
#define LINUX_STACK_TOP		0x8ff0ull
#define LINUX_PDPT		(LINUX_PML4 + 0x1000)
#define LINUX_PD		(LINUX_PML4 + 0x2000)	/* 4 pages */
#define BOOT_CS			0x10
#define BOOT_DS			0x18
#define MIN_PROTOCOL		0x0206
#define PAGE_SIZE		0x1000ull
#define MiB			(1024ull * 1024)

#define PTE_P			(1ull << 0)
#define PTE_RW			(1ull << 1)
#define PTE_PS			(1ull << 7)

#define CR0_PE			(1ull << 0)
#define CR0_ET			(1ull << 4)
#define CR0_NE			(1ull << 5)
#define CR0_PG			(1ull << 31)
#define CR4_PAE			(1ull << 5)
#define EFER_LME		(1ull << 8)
#define EFER_LMA		(1ull << 10)

static_assert(LINUX_ZERO_PAGE + sizeof(struct boot_params) <= LINUX_STACK_TOP - 0x100,
	      "zero page below the stack page");
static_assert(LINUX_PD + 4 * 0x1000 <= LINUX_CMDLINE, "page tables below cmdline");
static_assert(LINUX_CMDLINE + LINUX_CMDLINE_MAX <= MEM_EBDA_START, "cmdline in low RAM");

/* Put one line for the user in @err and return @rc. */
__attribute__((format(printf, 4, 5)))
static int fail(int rc, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)rd16(p) | (uint32_t)rd16(p + 2) << 16;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* End of the RAM that starts at or below @gpa and contains it (e820). */
static uint64_t ram_end_at(const struct e820_entry *e, unsigned n, uint64_t gpa)
{
	for (unsigned i = 0; i < n; i++)
		if (e[i].type == E820_RAM && gpa >= e[i].addr &&
		    gpa - e[i].addr < e[i].size)
			return e[i].addr + e[i].size;
	return 0;
}

/*
 * Validate the image; fill @hdr (zeroed beyond what the image has) and the
 * copy length.  Returns 0 or -EINVAL with @err set.
 */
static int parse_header(const struct linux_boot *b, struct bp_setup_header *hdr,
			size_t *hdr_len, size_t *setup_size, char *err,
			size_t errlen)
{
	const uint8_t *k = b->kernel;
	size_t len = b->kernel_len, end;
	unsigned sects;
	uint64_t sys;

	memset(hdr, 0, sizeof(*hdr));
	if (!k || len < 0x206)
		return fail(-EINVAL, err, errlen, "not a bzImage (file is only %zu bytes)",
			    k ? len : 0);
	if (rd32(k + 0x202) != BP_HDRS_MAGIC)
		return fail(-EINVAL, err, errlen, "not a bzImage (no HdrS signature)");
	if (rd16(k + 0x1fe) != BP_BOOT_FLAG)
		return fail(-EINVAL, err, errlen,
			    "not a bzImage (no 0xAA55 boot flag at 0x1fe)");
	if (len < 0x208)
		return fail(-EINVAL, err, errlen,
			    "bzImage truncated: %zu bytes, not even the setup header",
			    len);
	if (rd16(k + 0x206) < MIN_PROTOCOL)
		return fail(-EINVAL, err, errlen,
			    "boot protocol %u.%02u too old (need 2.06 or later)",
			    k[0x207], k[0x206]);

	end = 0x202 + (size_t)k[0x201];
	if (end > BP_HDR_AREA_END)
		end = BP_HDR_AREA_END;
	if (end < 0x208)
		return fail(-EINVAL, err, errlen,
			    "not a bzImage (setup header length %zu is impossible)",
			    end);
	if (len < end)
		return fail(-EINVAL, err, errlen,
			    "bzImage truncated: setup header needs %zu bytes, file has %zu",
			    end, len);
	memcpy(hdr, k + BP_SETUP_HDR_OFF,
	       end - BP_SETUP_HDR_OFF < sizeof(*hdr) ? end - BP_SETUP_HDR_OFF
						     : sizeof(*hdr));
	*hdr_len = end - BP_SETUP_HDR_OFF;

	if (!(hdr->loadflags & BP_LOADED_HIGH))
		return fail(-EINVAL, err, errlen,
			    "not a bzImage (zImage: kernel not loaded high)");
	if (hdr->version < 0x020c || !(hdr->xloadflags & BP_XLF_KERNEL_64))
		return fail(-EINVAL, err, errlen,
			    "kernel has no 64-bit entry point (boot protocol %u.%02u, "
			    "XLF_KERNEL_64 %s); a 64-bit x86 kernel is needed",
			    hdr->version >> 8, hdr->version & 0xff,
			    hdr->version < 0x020c ? "absent" : "clear");

	sects = hdr->setup_sects ? hdr->setup_sects : 4;
	*setup_size = (size_t)(sects + 1) * 512;
	if (len <= *setup_size)
		return fail(-EINVAL, err, errlen,
			    "bzImage truncated: no protected-mode kernel after the "
			    "%zu-byte setup (file has %zu bytes)",
			    *setup_size, len);
	/* The protected-mode kernel is the rest of the file (boot.rst,
	 * "Loading the rest of the kernel"); syssize only counts it in
	 * 16-byte paragraphs, rounded up by the image's builder (memtest86+
	 * 6.x: (_end - _start + 15) >> 4), so a complete image may stop up
	 * to 15 bytes short of syssize * 16.  Anything shorter is cut. */
	sys = (uint64_t)hdr->syssize * 16;
	if (!hdr->syssize)
		return fail(-EINVAL, err, errlen,
			    "not a bzImage (syssize 0: empty protected-mode kernel)");
	if (sys > len - *setup_size + LINUX_SYSSIZE_SLACK)
		return fail(-EINVAL, err, errlen,
			    "bzImage truncated: kernel needs %llu bytes after the "
			    "setup, file has %zu",
			    (unsigned long long)sys - LINUX_SYSSIZE_SLACK,
			    len - *setup_size);
	return 0;
}

int linux_load(struct guest_mem *mem, const struct linux_boot *b,
	       struct linux_entry *entry, char *err, size_t errlen)
{
	struct bp_setup_header hdr;
	struct boot_params *bp;
	struct e820_entry e820[BP_E820_MAX];
	size_t hdr_len = 0, setup_size = 0, cmdlen, kernel_size, kernel_pad;
	uint64_t low_top, kernel_end, runtime_start, runtime_end;
	uint64_t initrd_gpa = 0, initrd_top, cmdline_max;
	unsigned ne;
	void *dst;
	int r;

	if (err && errlen)
		err[0] = 0;
	if (!mem || !b || !entry)
		return fail(-EINVAL, err, errlen, "linux_load: bad arguments");
	memset(entry, 0, sizeof(*entry));
	r = parse_header(b, &hdr, &hdr_len, &setup_size, err, errlen);
	if (r)
		return r;

	/* Command line: cmdline_size excludes the NUL (protocol 2.06+). */
	cmdlen = b->cmdline ? strlen(b->cmdline) : 0;
	cmdline_max = hdr.cmdline_size;
	if (cmdline_max > LINUX_CMDLINE_MAX - 1)
		cmdline_max = LINUX_CMDLINE_MAX - 1;
	if (cmdlen > cmdline_max)
		return fail(-E2BIG, err, errlen,
			    "kernel command line too long (%zu bytes; this kernel "
			    "takes at most %llu)",
			    cmdlen, (unsigned long long)cmdline_max);

	ne = guest_mem_e820(mem, e820, BP_E820_MAX);
	low_top = ram_end_at(e820, ne, KERNEL_LOAD_GPA);

	/* The kernel: image at 1 MiB, then it decompresses itself to
	 * max(load address aligned up, pref_address) and needs init_size
	 * bytes there (head_64.S).  parse_header() demanded protocol 2.12,
	 * so pref_address/init_size (2.10) and initrd_addr_max (2.03) are
	 * all there. */
	kernel_size = b->kernel_len - setup_size;
	/* The paragraphs syssize rounds up to are zeroed below. */
	kernel_pad = (uint64_t)hdr.syssize * 16 > kernel_size
		     ? (size_t)((uint64_t)hdr.syssize * 16 - kernel_size) : 0;
	kernel_end = KERNEL_LOAD_GPA + kernel_size + kernel_pad;
	runtime_start = KERNEL_LOAD_GPA;
	if (hdr.relocatable_kernel && hdr.kernel_alignment &&
	    !(hdr.kernel_alignment & (hdr.kernel_alignment - 1)))
		runtime_start = align_up(runtime_start, hdr.kernel_alignment);
	if (hdr.pref_address > runtime_start)
		runtime_start = hdr.pref_address;
	runtime_end = runtime_start + hdr.init_size;
	if (runtime_end < kernel_end)
		runtime_end = kernel_end;
	runtime_end = align_up(runtime_end, PAGE_SIZE);
	if (!low_top || runtime_end > low_top)
		return fail(-ENOSPC, err, errlen,
			    "kernel needs RAM up to %llu MiB to decompress and "
			    "start; the guest has %llu MiB below the PCI hole; give "
			    "the VM more memory (--memory)",
			    (unsigned long long)((runtime_end + MiB - 1) / MiB),
			    (unsigned long long)(low_top / MiB));

	/* The initrd: as high as possible, page aligned, its last byte at or
	 * below initrd_addr_max, above the kernel's area. */
	if (b->initrd && b->initrd_len) {
		initrd_top = low_top;
		if ((uint64_t)hdr.initrd_addr_max + 1 < initrd_top)
			initrd_top = (uint64_t)hdr.initrd_addr_max + 1;
		initrd_top &= ~(PAGE_SIZE - 1);
		if (initrd_top < runtime_end ||
		    b->initrd_len > initrd_top - runtime_end)
			return fail(-ENOSPC, err, errlen,
				    "initrd (%llu MiB) does not fit in guest "
				    "memory below %llu MiB (the kernel uses up to "
				    "%llu MiB); give the VM more memory (--memory)",
				    (unsigned long long)((b->initrd_len + MiB - 1) / MiB),
				    (unsigned long long)(initrd_top / MiB),
				    (unsigned long long)(runtime_end / MiB));
		initrd_gpa = (initrd_top - b->initrd_len) & ~(PAGE_SIZE - 1);
	}

	/* Everything fits: write it. */
	dst = gpa_to_hva(mem, KERNEL_LOAD_GPA, kernel_size + kernel_pad);
	if (!dst)
		return fail(-ENOSPC, err, errlen, "kernel does not fit in guest RAM");
	memcpy(dst, b->kernel + setup_size, kernel_size);
	memset((uint8_t *)dst + kernel_size, 0, kernel_pad);
	if (initrd_gpa &&
	    guest_mem_write(mem, initrd_gpa, b->initrd, b->initrd_len))
		return fail(-ENOSPC, err, errlen, "initrd does not fit in guest RAM");
	dst = gpa_to_hva(mem, LINUX_CMDLINE, cmdlen + 1);
	if (!dst)
		return fail(-ENOSPC, err, errlen, "guest RAM too small for the command line");
	memcpy(dst, cmdlen ? b->cmdline : "", cmdlen);
	((char *)dst)[cmdlen] = 0;

	bp = gpa_to_hva(mem, LINUX_ZERO_PAGE, sizeof(*bp));
	if (!bp)
		return fail(-ENOSPC, err, errlen, "guest RAM too small for boot_params");
	memset(bp, 0, sizeof(*bp));
	memcpy((uint8_t *)bp + BP_SETUP_HDR_OFF, b->kernel + BP_SETUP_HDR_OFF,
	       hdr_len);
	bp->hdr.vid_mode = BP_VID_MODE_NORMAL;
	bp->hdr.type_of_loader = BP_TYPE_OF_LOADER_UNDEF;
	bp->hdr.loadflags = (uint8_t)((hdr.loadflags | BP_CAN_USE_HEAP) &
				      ~(BP_QUIET_FLAG | BP_KEEP_SEGMENTS));
	bp->hdr.heap_end_ptr = 0xfe00;	/* real-mode heap; unused on 64-bit entry */
	bp->hdr.cmd_line_ptr = (uint32_t)LINUX_CMDLINE;
	bp->ext_cmd_line_ptr = 0;
	bp->hdr.ramdisk_image = (uint32_t)initrd_gpa;
	bp->hdr.ramdisk_size = initrd_gpa ? (uint32_t)b->initrd_len : 0;
	bp->ext_ramdisk_image = (uint32_t)(initrd_gpa >> 32);
	bp->ext_ramdisk_size = initrd_gpa ? (uint32_t)((uint64_t)b->initrd_len >> 32)
					  : 0;
	bp->hdr.hardware_subarch = 0;	/* X86_SUBARCH_PC */
	bp->hdr.setup_data = 0;
	if (hdr.version >= 0x020e)
		bp->acpi_rsdp_addr = b->rsdp_gpa;
	bp->e820_entries = (uint8_t)ne;
	for (unsigned i = 0; i < ne; i++) {
		bp->e820_table[i].addr = e820[i].addr;
		bp->e820_table[i].size = e820[i].size;
		bp->e820_table[i].type = e820[i].type;
	}

	entry->rip = KERNEL_LOAD_GPA + 0x200;	/* startup_64 */
	entry->zero_page = LINUX_ZERO_PAGE;
	entry->kernel_gpa = KERNEL_LOAD_GPA;
	entry->kernel_size = kernel_size;
	entry->initrd_gpa = initrd_gpa;
	entry->initrd_size = initrd_gpa ? b->initrd_len : 0;
	entry->protocol = hdr.version;
	return 0;
}

/* ---- vCPU state for the 64-bit entry ------------------------------------ */

static uint64_t gdt_entry(uint32_t base, uint32_t limit, uint8_t access,
			  uint8_t flags)
{
	return (uint64_t)(limit & 0xffff) |
	       (uint64_t)(base & 0xffffff) << 16 |
	       (uint64_t)access << 40 |
	       (uint64_t)((limit >> 16) & 0xf) << 48 |
	       (uint64_t)(flags & 0xf) << 52 |
	       (uint64_t)(base >> 24) << 56;
}

/* The hv_segment for a GDT descriptor @d loaded with selector @sel. */
static struct hv_segment seg_from_desc(uint64_t d, uint16_t sel)
{
	uint8_t access = (uint8_t)(d >> 40), flags = (uint8_t)(d >> 52) & 0xf;
	uint32_t limit = (uint32_t)(d & 0xffff) | (uint32_t)((d >> 48) & 0xf) << 16;
	struct hv_segment s = {
		.base = (d >> 16 & 0xffffff) | (d >> 56 & 0xff) << 24,
		.selector = sel,
		.type = access & 0xf,
		.s = (access >> 4) & 1,
		.dpl = (access >> 5) & 3,
		.present = (access >> 7) & 1,
		.avl = flags & 1,
		.l = (flags >> 1) & 1,
		.db = (flags >> 2) & 1,
		.g = (flags >> 3) & 1,
	};

	s.limit = s.g ? (limit << 12) | 0xfff : limit;
	return s;
}

int linux_setup_vcpu(struct guest_mem *mem, const struct linux_entry *entry,
		     struct hv_regs *regs, struct hv_sregs *sregs)
{
	uint64_t gdt[4], *pml4, *pdpt, *pd;
	struct hv_segment data;

	if (!mem || !entry || !regs || !sregs)
		return -EINVAL;

	gdt[0] = 0;
	gdt[1] = 0;
	/* access 0x9b: present, DPL 0, code, exec/read, accessed; G + L */
	gdt[BOOT_CS / 8] = gdt_entry(0, 0xfffff, 0x9b, 0xa);
	/* access 0x93: present, DPL 0, data, read/write, accessed; G + D/B */
	gdt[BOOT_DS / 8] = gdt_entry(0, 0xfffff, 0x93, 0xc);
	if (guest_mem_write(mem, LINUX_GDT, gdt, sizeof(gdt)))
		return -EFAULT;

	pml4 = gpa_to_hva(mem, LINUX_PML4, PAGE_SIZE);
	pdpt = gpa_to_hva(mem, LINUX_PDPT, PAGE_SIZE);
	pd = gpa_to_hva(mem, LINUX_PD, 4 * PAGE_SIZE);
	if (!pml4 || !pdpt || !pd)
		return -EFAULT;
	memset(pml4, 0, PAGE_SIZE);
	memset(pdpt, 0, PAGE_SIZE);
	pml4[0] = LINUX_PDPT | PTE_P | PTE_RW;
	for (unsigned i = 0; i < 4; i++)
		pdpt[i] = (LINUX_PD + i * PAGE_SIZE) | PTE_P | PTE_RW;
	for (uint64_t j = 0; j < 4 * 512; j++)
		pd[j] = (j << 21) | PTE_P | PTE_RW | PTE_PS;

	sregs->cs = seg_from_desc(gdt[BOOT_CS / 8], BOOT_CS);
	data = seg_from_desc(gdt[BOOT_DS / 8], BOOT_DS);
	sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = data;
	/* A busy 64-bit TSS, as VM entry in IA-32e mode requires of TR. */
	sregs->tr = (struct hv_segment){ .limit = 0xffff, .type = 11,
					 .present = 1 };
	sregs->ldt = (struct hv_segment){ .limit = 0xffff, .type = 2,
					  .present = 1 };
	sregs->gdt.base = LINUX_GDT;
	sregs->gdt.limit = sizeof(gdt) - 1;
	sregs->idt.base = 0;
	sregs->idt.limit = 0;
	sregs->cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_PG;
	sregs->cr3 = LINUX_PML4;
	sregs->cr4 = CR4_PAE;
	sregs->efer |= EFER_LME | EFER_LMA;

	memset(regs, 0, sizeof(*regs));
	regs->rip = entry->rip;
	regs->rsi = entry->zero_page;
	regs->rsp = LINUX_STACK_TOP;
	regs->rflags = 2;	/* reserved bit 1; IF clear */
	return 0;
}

/* ---- through the BIOS: fw_cfg items for the linuxboot option ROM -------- */

#define FWBOOT_SETUP_GPA	0x10000u	/* real-mode setup + heap + stack */
#define FWBOOT_CMDLINE_GPA	0x20000u	/* right after the 64 KiB segment */
#define FWBOOT_RESERVED_TOP	0x20000u	/* keep clear below the RAM top */

void linux_fw_boot_free(struct linux_fw_boot *fb)
{
	free(fb->setup);
	free(fb->cmdline);
	memset(fb, 0, sizeof(*fb));
}

int linux_fw_boot_prepare(const struct linux_boot *b, uint64_t low_ram_top,
			  struct linux_fw_boot *fb, char *err, size_t errlen)
{
	struct bp_setup_header hdr;
	size_t hdr_len = 0, setup_size = 0, cmdlen;
	uint64_t initrd_max;
	int r;

	memset(fb, 0, sizeof(*fb));
	if (err && errlen)
		err[0] = 0;
	r = parse_header(b, &hdr, &hdr_len, &setup_size, err, errlen);
	if (r)
		return r;
	cmdlen = b->cmdline ? strlen(b->cmdline) : 0;
	if (cmdlen > hdr.cmdline_size || cmdlen >= LINUX_CMDLINE_MAX)
		return fail(-E2BIG, err, errlen,
			    "kernel command line too long (%zu bytes; this kernel takes at most %u)",
			    cmdlen, hdr.cmdline_size);
	fb->setup = malloc(setup_size);
	fb->cmdline = malloc(cmdlen + 1);
	if (!fb->setup || !fb->cmdline) {
		linux_fw_boot_free(fb);
		return fail(-ENOMEM, err, errlen, "out of memory");
	}
	memcpy(fb->setup, b->kernel, setup_size);
	memcpy(fb->cmdline, b->cmdline ? b->cmdline : "", cmdlen + 1);
	fb->setup_len = setup_size;
	fb->cmdline_len = cmdlen + 1;
	fb->kernel = b->kernel + setup_size;
	fb->kernel_len = b->kernel_len - setup_size;
	fb->setup_gpa = FWBOOT_SETUP_GPA;
	fb->cmdline_gpa = FWBOOT_CMDLINE_GPA;
	fb->kernel_gpa = KERNEL_LOAD_GPA;

	/* The initrd as high as initrd_addr_max and RAM allow, page-aligned,
	 * clear of the top where the BIOS keeps its tables. */
	initrd_max = hdr.initrd_addr_max;
	if (low_ram_top < FWBOOT_RESERVED_TOP + KERNEL_LOAD_GPA) {
		linux_fw_boot_free(fb);
		return fail(-ENOSPC, err, errlen, "not enough RAM for the kernel");
	}
	if (initrd_max > low_ram_top - FWBOOT_RESERVED_TOP - 1)
		initrd_max = low_ram_top - FWBOOT_RESERVED_TOP - 1;
	if (b->initrd_len) {
		uint64_t floor = KERNEL_LOAD_GPA + fb->kernel_len;

		if (hdr.init_size > fb->kernel_len)
			floor = KERNEL_LOAD_GPA + hdr.init_size;
		if (b->initrd_len > initrd_max + 1 - floor) {
			linux_fw_boot_free(fb);
			return fail(-ENOSPC, err, errlen,
				    "initrd (%zu MiB) does not fit in guest memory below %llu MiB; give the VM more memory (--memory)",
				    b->initrd_len >> 20,
				    (unsigned long long)((initrd_max + 1) >> 20));
		}
		fb->initrd_gpa = (uint32_t)((initrd_max + 1 - b->initrd_len) & ~0xfffull);
		fb->initrd = b->initrd;
		fb->initrd_len = b->initrd_len;
	}

	/* The setup header as a boot loader fills it (boot.rst "Details of
	 * header fields"): loader type "undefined", heap up to the command
	 * line, where the command line and initrd are. */
	hdr.type_of_loader = 0xff;
	hdr.loadflags |= BP_CAN_USE_HEAP;
	hdr.heap_end_ptr = (uint16_t)(FWBOOT_CMDLINE_GPA - FWBOOT_SETUP_GPA - 0x200);
	hdr.cmd_line_ptr = FWBOOT_CMDLINE_GPA;
	hdr.ramdisk_image = fb->initrd_gpa;
	hdr.ramdisk_size = (uint32_t)fb->initrd_len;
	hdr.vid_mode = 0xffff;			/* "normal" */
	memcpy(fb->setup + BP_SETUP_HDR_OFF, &hdr, hdr_len);
	return 0;
}
