/* SPDX-License-Identifier: MIT */
/*
 * Direct Linux boot: the real Debian bzImage from /boot (skipped if there is
 * none), a synthetic minimal bzImage, hostile and corrupt images, the
 * boot_params produced and the long-mode vCPU state and page tables.
 */
#include <errno.h>
#include <glib.h>
#include <glob.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "boot/bootparam.h"
#include "boot/linux.h"
#include "check.h"
#include "hv.h"
#include "mem.h"

#define MiB (1024ull * 1024)
#define GiB (1024 * MiB)
#define RSDP_GPA 0xe0000ull

static uint8_t *real_kernel;
static size_t real_len;
static char real_path[4096];

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return rd16(p) | (uint32_t)rd16(p + 2) << 16; }
static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v) { wr16(p, (uint16_t)v); wr16(p + 2, (uint16_t)(v >> 16)); }

static void load_real_kernel(void)
{
	glob_t g;
	FILE *f;
	long n;

	if (glob("/boot/vmlinuz-*", 0, NULL, &g) || !g.gl_pathc)
		return;
	snprintf(real_path, sizeof(real_path), "%s", g.gl_pathv[g.gl_pathc - 1]);
	globfree(&g);
	f = fopen(real_path, "rb");
	if (!f)
		return;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0) {
		rewind(f);
		real_kernel = malloc((size_t)n);
		if (real_kernel && fread(real_kernel, 1, (size_t)n, f) == (size_t)n)
			real_len = (size_t)n;
	}
	fclose(f);
	if (!real_len) {
		free(real_kernel);
		real_kernel = NULL;
	}
}

/* A minimal image that satisfies the protocol: @sects setup sectors (0 for
 * the historical "means 4"), @payload bytes of protected-mode kernel. */
static uint8_t *synthetic(uint8_t sects, size_t payload, uint16_t version,
			  size_t *len)
{
	size_t setup = (size_t)((sects ? sects : 4) + 1) * 512;
	uint8_t *k = calloc(1, setup + payload);

	k[0x1f1] = sects;
	wr32(k + 0x1f4, (uint32_t)((payload + 15) / 16));
	wr16(k + 0x1fe, 0xaa55);
	k[0x200] = 0xeb;
	k[0x201] = 0x6a;			/* header ends at 0x26c */
	wr32(k + 0x202, 0x53726448);		/* "HdrS" */
	wr16(k + 0x206, version);
	k[0x211] = BP_LOADED_HIGH;
	wr32(k + 0x22c, 0x7fffffff);		/* initrd_addr_max */
	wr32(k + 0x230, 0x200000);		/* kernel_alignment */
	k[0x234] = 1;				/* relocatable */
	wr16(k + 0x236, BP_XLF_KERNEL_64);
	wr32(k + 0x238, 2047);			/* cmdline_size */
	wr32(k + 0x258, 0x1000000);		/* pref_address */
	wr32(k + 0x260, 0x400000);		/* init_size */
	for (size_t i = 0; i < payload; i++)
		k[setup + i] = (uint8_t)(i * 7 + 3);
	*len = setup + payload;
	return k;
}

static struct boot_params *zero_page(struct guest_mem *m)
{
	return gpa_to_hva(m, LINUX_ZERO_PAGE, sizeof(struct boot_params));
}

/* Everything linux_load promises about boot_params, for any image. */
static void check_boot_params(struct guest_mem *m, const uint8_t *k,
			      const struct linux_entry *e, const char *cmdline,
			      const uint8_t *initrd, size_t initrd_len)
{
	struct boot_params *bp = zero_page(m);
	struct e820_entry want[BP_E820_MAX];
	unsigned n = guest_mem_e820(m, want, BP_E820_MAX);
	size_t setup = (size_t)((k[0x1f1] ? k[0x1f1] : 4) + 1) * 512;
	uint64_t low_top = guest_mem_low_end(m);
	const char *cl;

	CHECK(bp != NULL);
	if (!bp)
		return;
	CHECK(e->protocol >= 0x0206);
	CHECK_EQ(e->protocol, rd16(k + 0x206));
	CHECK_EQ(e->kernel_gpa, 0x100000);
	CHECK_EQ(e->rip, 0x100200);
	CHECK_EQ(e->zero_page, LINUX_ZERO_PAGE);
	CHECK(memcmp(gpa_to_hva(m, 0x100000, e->kernel_size), k + setup,
		     e->kernel_size) == 0);
	CHECK(e->kernel_size + LINUX_SYSSIZE_SLACK >=
	      (uint64_t)rd32(k + 0x1f4) * 16);

	/* The header is copied as is, apart from the fields we write. */
	CHECK_EQ(bp->hdr.setup_sects, k[0x1f1]);
	CHECK_EQ(bp->hdr.syssize, rd32(k + 0x1f4));
	CHECK_EQ(bp->hdr.boot_flag, 0xaa55);
	CHECK_EQ(bp->hdr.header, 0x53726448);
	CHECK_EQ(bp->hdr.version, rd16(k + 0x206));
	CHECK_EQ(bp->hdr.kernel_alignment, rd32(k + 0x230));
	CHECK_EQ(bp->hdr.xloadflags, rd16(k + 0x236));
	CHECK_EQ(bp->hdr.cmdline_size, rd32(k + 0x238));
	CHECK_EQ(bp->hdr.pref_address, rd32(k + 0x258));
	CHECK_EQ(bp->hdr.init_size, rd32(k + 0x260));
	CHECK(memcmp((uint8_t *)bp + 0x202, k + 0x202, 0x210 - 0x202) == 0);
	CHECK(memcmp((uint8_t *)bp + 0x22c, k + 0x22c, 0x202 + k[0x201] - 0x22c) == 0);
	CHECK_EQ(bp->hdr.type_of_loader, 0xff);
	CHECK(bp->hdr.loadflags & BP_LOADED_HIGH);
	CHECK(bp->hdr.loadflags & BP_CAN_USE_HEAP);
	CHECK(bp->hdr.heap_end_ptr != 0);
	CHECK_EQ(bp->hdr.vid_mode, 0xffff);
	CHECK_EQ(bp->sentinel, 0);

	CHECK_EQ(bp->hdr.cmd_line_ptr, LINUX_CMDLINE);
	CHECK_EQ(bp->ext_cmd_line_ptr, 0);
	cl = gpa_to_hva(m, LINUX_CMDLINE, 1);
	CHECK(cl && strcmp(cl, cmdline ? cmdline : "") == 0);

	if (initrd_len) {
		uint64_t img = bp->hdr.ramdisk_image |
			       (uint64_t)bp->ext_ramdisk_image << 32;
		uint64_t size = bp->hdr.ramdisk_size |
				(uint64_t)bp->ext_ramdisk_size << 32;

		CHECK_EQ(img, e->initrd_gpa);
		CHECK_EQ(size, initrd_len);
		CHECK_EQ(e->initrd_size, initrd_len);
		CHECK_EQ(img & 0xfff, 0);
		CHECK(img + size <= low_top);
		CHECK(img + size - 1 <= bp->hdr.initrd_addr_max);
		/* above the kernel's decompression area */
		CHECK(img >= bp->hdr.pref_address + bp->hdr.init_size);
		CHECK(img >= e->kernel_gpa + e->kernel_size);
		/* as high as possible: less than a page + alignment below top */
		{
			uint64_t top = low_top < (uint64_t)bp->hdr.initrd_addr_max + 1
				       ? low_top : (uint64_t)bp->hdr.initrd_addr_max + 1;

			CHECK(top - (img + size) < 0x2000);
		}
		CHECK(memcmp(gpa_to_hva(m, img, size), initrd, size) == 0);
	} else {
		CHECK_EQ(bp->hdr.ramdisk_image, 0);
		CHECK_EQ(bp->hdr.ramdisk_size, 0);
		CHECK_EQ(e->initrd_gpa, 0);
	}

	CHECK_EQ(bp->e820_entries, n);
	for (unsigned i = 0; i < n && i < bp->e820_entries; i++) {
		CHECK_EQ(bp->e820_table[i].addr, want[i].addr);
		CHECK_EQ(bp->e820_table[i].size, want[i].size);
		CHECK_EQ(bp->e820_table[i].type, want[i].type);
	}
	if (bp->hdr.version >= 0x020e)
		CHECK_EQ(bp->acpi_rsdp_addr, RSDP_GPA);
	else
		CHECK_EQ(bp->acpi_rsdp_addr, 0);
}

/* ---- the real kernel ---------------------------------------------------- */

static void test_real_kernel(void)
{
	struct guest_mem m;
	struct linux_entry e;
	char err[256] = "";
	size_t initrd_len = 5 * MiB + 123;
	uint8_t *initrd = malloc(initrd_len);
	const char *cmdline = "console=ttyS0 earlyprintk=serial panic=-1 quiet";
	struct linux_boot b = {
		.kernel = real_kernel, .kernel_len = real_len,
		.initrd = initrd, .initrd_len = initrd_len,
		.cmdline = cmdline, .rsdp_gpa = RSDP_GPA,
	};

	for (size_t i = 0; i < initrd_len; i++)
		initrd[i] = (uint8_t)(i ^ (i >> 9));

	printf("real kernel: %s (%zu bytes, protocol %u.%02u)\n", real_path,
	       real_len, real_kernel[0x207], real_kernel[0x206]);
	CHECK_EQ(guest_mem_init(&m, 512 * MiB), 0);
	CHECK_EQ(linux_load(&m, &b, &e, err, sizeof(err)), 0);
	if (err[0])
		printf("unexpected error: %s\n", err);
	check_boot_params(&m, real_kernel, &e, cmdline, initrd, initrd_len);
	guest_mem_free(&m);

	/* RAM above the hole: the initrd stays below 3 GiB and
	 * initrd_addr_max, ext_* fields zero; e820 has the high RAM. */
	CHECK_EQ(guest_mem_init(&m, 5 * GiB), 0);
	CHECK_EQ(linux_load(&m, &b, &e, err, sizeof(err)), 0);
	check_boot_params(&m, real_kernel, &e, cmdline, initrd, initrd_len);
	CHECK(e.initrd_gpa + initrd_len <= MEM_PCI_HOLE_START);
	CHECK_EQ(zero_page(&m)->ext_ramdisk_image, 0);
	CHECK_EQ(zero_page(&m)->e820_entries, 5);
	guest_mem_free(&m);

	/* No initrd, no command line. */
	b.initrd = NULL;
	b.initrd_len = 0;
	b.cmdline = NULL;
	CHECK_EQ(guest_mem_init(&m, 256 * MiB), 0);
	CHECK_EQ(linux_load(&m, &b, &e, err, sizeof(err)), 0);
	check_boot_params(&m, real_kernel, &e, NULL, NULL, 0);
	guest_mem_free(&m);
	free(initrd);
}

/* ---- the vCPU and page tables ------------------------------------------- */

/* Walk 4-level paging as the CPU would; returns the PA or ~0 if unmapped. */
static uint64_t walk(struct guest_mem *m, uint64_t cr3, uint64_t va)
{
	uint64_t e, table = cr3 & ~0xfffull;

	for (int level = 3; level >= 0; level--) {
		unsigned idx = (va >> (12 + 9 * level)) & 0x1ff;

		if (guest_mem_read(m, table + idx * 8, &e, 8))
			return ~0ull;
		if (!(e & 1) || !(e & 2))	/* present, writable */
			return ~0ull;
		if (level == 1 && (e & 0x80))
			return (e & 0x000fffffffe00000ull) | (va & 0x1fffff);
		if (level == 2 && (e & 0x80))
			return ~0ull;		/* we use no 1 GiB pages */
		table = e & 0x000ffffffffff000ull;
		if (level == 0)
			return table | (va & 0xfff);
	}
	return ~0ull;
}

static void test_vcpu(void)
{
	struct guest_mem m;
	struct linux_entry e = { .rip = 0x100200, .zero_page = LINUX_ZERO_PAGE };
	struct hv_regs regs;
	struct hv_sregs sregs;
	uint64_t gdt[4];
	const uint64_t vas[] = { 0, 0x7000, 0x100200, 0x1000000 + 12345,
				 0x3fffffff, 0x40000000, 2 * GiB + 0x1234,
				 0xfec00000, 0xfee00000, 4 * GiB - 1 };

	memset(&regs, 0x55, sizeof(regs));
	memset(&sregs, 0, sizeof(sregs));
	sregs.efer = 1;		/* SCE: other EFER bits are kept */
	CHECK_EQ(guest_mem_init(&m, 64 * MiB), 0);
	CHECK_EQ(linux_setup_vcpu(&m, &e, &regs, &sregs), 0);

	for (size_t i = 0; i < sizeof(vas) / sizeof(vas[0]); i++)
		CHECK_EQ(walk(&m, sregs.cr3, vas[i]), vas[i]);
	CHECK_EQ(walk(&m, sregs.cr3, 4 * GiB), ~0ull);
	CHECK_EQ(walk(&m, sregs.cr3, 512 * GiB), ~0ull);

	CHECK_EQ(guest_mem_read(&m, LINUX_GDT, gdt, sizeof(gdt)), 0);
	CHECK_EQ(gdt[0], 0);
	CHECK_EQ(gdt[2], 0x00af9b000000ffffull);	/* __BOOT_CS, 64-bit */
	CHECK_EQ(gdt[3], 0x00cf93000000ffffull);	/* __BOOT_DS */
	CHECK_EQ(sregs.gdt.base, LINUX_GDT);
	CHECK_EQ(sregs.gdt.limit, 31);

	CHECK_EQ(sregs.cs.selector, 0x10);
	CHECK_EQ(sregs.cs.l, 1);
	CHECK_EQ(sregs.cs.db, 0);
	CHECK_EQ(sregs.cs.present, 1);
	CHECK_EQ(sregs.cs.s, 1);
	CHECK_EQ(sregs.cs.type, 0xb);
	CHECK_EQ(sregs.cs.dpl, 0);
	CHECK_EQ(sregs.cs.base, 0);
	CHECK_EQ(sregs.cs.limit, 0xffffffff);
	const struct hv_segment *ds[] = { &sregs.ds, &sregs.es, &sregs.ss,
					  &sregs.fs, &sregs.gs };
	for (int i = 0; i < 5; i++) {
		CHECK_EQ(ds[i]->selector, 0x18);
		CHECK_EQ(ds[i]->type, 3);
		CHECK_EQ(ds[i]->present, 1);
		CHECK_EQ(ds[i]->s, 1);
		CHECK_EQ(ds[i]->db, 1);
		CHECK_EQ(ds[i]->g, 1);
		CHECK_EQ(ds[i]->limit, 0xffffffff);
	}
	CHECK_EQ(sregs.tr.type, 11);
	CHECK_EQ(sregs.tr.present, 1);

	CHECK((sregs.cr0 & 0x80000001) == 0x80000001);	/* PG, PE */
	CHECK(sregs.cr0 & 0x20);			/* NE */
	CHECK(sregs.cr4 & 0x20);			/* PAE */
	CHECK_EQ(sregs.cr3, LINUX_PML4);
	CHECK_EQ(sregs.efer, 0x501);			/* LMA|LME, SCE kept */

	CHECK_EQ(regs.rip, 0x100200);
	CHECK_EQ(regs.rsi, LINUX_ZERO_PAGE);
	CHECK_EQ(regs.rflags, 2);			/* IF clear */
	CHECK(regs.rsp != 0 && regs.rsp < MEM_EBDA_START && !(regs.rsp & 15));
	CHECK_EQ(regs.rax | regs.rbx | regs.rbp | regs.rdi, 0);
	guest_mem_free(&m);

	CHECK_EQ(linux_setup_vcpu(NULL, &e, &regs, &sregs), -EINVAL);
}

/* ---- synthetic images --------------------------------------------------- */

static void test_synthetic(void)
{
	struct guest_mem m;
	struct linux_entry e;
	char err[256];
	size_t len;
	uint8_t initrd[10000];
	uint8_t *k = synthetic(0, 4096, 0x020f, &len);	/* setup_sects 0 = 4 */
	struct linux_boot b = { .kernel = k, .kernel_len = len,
				.initrd = initrd, .initrd_len = sizeof(initrd),
				.cmdline = "x", .rsdp_gpa = RSDP_GPA };

	memset(initrd, 0xab, sizeof(initrd));
	CHECK_EQ(len, 5 * 512 + 4096);
	CHECK_EQ(guest_mem_init(&m, 64 * MiB), 0);
	CHECK_EQ(linux_load(&m, &b, &e, err, sizeof(err)), 0);
	CHECK_EQ(e.kernel_size, 4096);
	check_boot_params(&m, k, &e, "x", initrd, sizeof(initrd));
	/* initrd right at the top of RAM */
	CHECK_EQ(e.initrd_gpa, (64 * MiB - sizeof(initrd)) & ~0xfffull);
	guest_mem_free(&m);
	free(k);

	/* Protocol 2.12: no acpi_rsdp_addr field yet. */
	k = synthetic(1, 512, 0x020c, &len);
	b.kernel = k;
	b.kernel_len = len;
	CHECK_EQ(guest_mem_init(&m, 64 * MiB), 0);
	CHECK_EQ(linux_load(&m, &b, &e, err, sizeof(err)), 0);
	check_boot_params(&m, k, &e, "x", initrd, sizeof(initrd));
	guest_mem_free(&m);

	/* A lower initrd_addr_max is honoured. */
	wr32(k + 0x22c, 0x2000000 - 1);
	CHECK_EQ(guest_mem_init(&m, 64 * MiB), 0);
	CHECK_EQ(linux_load(&m, &b, &e, err, sizeof(err)), 0);
	check_boot_params(&m, k, &e, "x", initrd, sizeof(initrd));
	CHECK(e.initrd_gpa + sizeof(initrd) <= 0x2000000);
	/* ... and one below the kernel's area is -ENOSPC. */
	wr32(k + 0x22c, 0x1000000);
	CHECK_EQ(linux_load(&m, &b, &e, err, sizeof(err)), -ENOSPC);
	CHECK(strstr(err, "initrd") != NULL);
	guest_mem_free(&m);
	free(k);
}

/* ---- hostile and corrupt images ----------------------------------------- */

/* linux_load on @k/@len must fail with @want and say something. */
static int quiet;

static int expect_fail(const uint8_t *k, size_t len, const char *cmdline,
		       size_t initrd_len, uint64_t ram, int want,
		       const char *needle)
{
	struct guest_mem m;
	struct linux_entry e;
	char err[256];
	uint8_t *initrd = NULL;
	int r;

	if (initrd_len) {
		initrd = mmap(NULL, initrd_len, PROT_READ,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (initrd == MAP_FAILED)
			return -1;
	}
	struct linux_boot b = { .kernel = k, .kernel_len = len,
				.initrd = initrd, .initrd_len = initrd_len,
				.cmdline = cmdline, .rsdp_gpa = RSDP_GPA };

	memset(err, 0, sizeof(err));
	CHECK_EQ(guest_mem_init(&m, ram), 0);
	r = linux_load(&m, &b, &e, err, sizeof(err));
	CHECK_EQ(r, want);
	CHECK(err[0] != 0 && !strchr(err, '\n'));
	if (needle && !strstr(err, needle)) {
		fprintf(stderr, "message \"%s\" lacks \"%s\"\n", err, needle);
		CHECK(!"message");
	}
	if (r == want && !quiet)
		printf("  %-8s %s\n", want == -EINVAL ? "EINVAL" :
		       want == -E2BIG ? "E2BIG" : "ENOSPC", err);
	guest_mem_free(&m);
	if (initrd)
		munmap(initrd, initrd_len);
	return r;
}

static void test_hostile_synthetic(void)
{
	size_t len;
	uint8_t *k = synthetic(4, 8192, 0x020f, &len), *c;
	uint8_t rnd[65536];
	char *longcl;

	srand(1);
	for (size_t i = 0; i < sizeof(rnd); i++)
		rnd[i] = (uint8_t)rand();
	c = malloc(len);

	expect_fail(k, 0, NULL, 0, 64 * MiB, -EINVAL, "not a bzImage");
	expect_fail(NULL, 0, NULL, 0, 64 * MiB, -EINVAL, "not a bzImage");
	expect_fail(rnd, sizeof(rnd), NULL, 0, 64 * MiB, -EINVAL, "HdrS");
	expect_fail(rnd, 10, NULL, 0, 64 * MiB, -EINVAL, NULL);

	memcpy(c, k, len);
	memset(c + 0x202, 0, 4);
	expect_fail(c, len, NULL, 0, 64 * MiB, -EINVAL, "HdrS");
	memcpy(c, k, len);
	wr16(c + 0x1fe, 0);
	expect_fail(c, len, NULL, 0, 64 * MiB, -EINVAL, "0xAA55");
	memcpy(c, k, len);
	wr16(c + 0x206, 0x0204);
	expect_fail(c, len, NULL, 0, 64 * MiB, -EINVAL, "2.04 too old");
	memcpy(c, k, len);
	wr16(c + 0x236, 0);
	expect_fail(c, len, NULL, 0, 64 * MiB, -EINVAL, "64-bit");
	memcpy(c, k, len);
	c[0x211] = 0;
	expect_fail(c, len, NULL, 0, 64 * MiB, -EINVAL, "zImage");
	memcpy(c, k, len);
	wr32(c + 0x1f4, 0);
	expect_fail(c, len, NULL, 0, 64 * MiB, -EINVAL, NULL);
	memcpy(c, k, len);
	wr32(c + 0x1f4, 0xffffffff);
	expect_fail(c, len, NULL, 0, 64 * MiB, -EINVAL, "truncated");
	memcpy(c, k, len);
	c[0x1f1] = 0xff;		/* setup past the end of the file */
	expect_fail(c, len, NULL, 0, 64 * MiB, -EINVAL, "truncated");
	memcpy(c, k, len);
	wr32(c + 0x260, 0xffffffff);	/* init_size 4 GiB */
	expect_fail(c, len, NULL, 0, 64 * MiB, -ENOSPC, "--memory");
	memcpy(c, k, len);
	c[0x201] = 0xff;		/* header length: clamped, still parses */
	memset(c + 0x290, 0x77, 0x301 - 0x290);
	{
		struct guest_mem m;
		struct linux_entry e;
		struct linux_boot b = { .kernel = c, .kernel_len = len };

		CHECK_EQ(guest_mem_init(&m, 64 * MiB), 0);
		CHECK_EQ(linux_load(&m, &b, &e, NULL, 0), 0);
		CHECK_EQ(zero_page(&m)->edd_mbr_sig_buffer[0], 0);
		guest_mem_free(&m);
	}
	/* truncation everywhere */
	quiet = 1;
	for (size_t cut = 0; cut < len; cut += 97)
		expect_fail(k, cut, NULL, 0, 64 * MiB, -EINVAL, NULL);
	quiet = 0;
	/* syssize rounds up to 16-byte paragraphs: 15 bytes short is a
	 * complete image, 16 is a cut one. */
	expect_fail(k, len - 16, NULL, 0, 64 * MiB, -EINVAL, "truncated");

	/* command line: exactly cmdline_size is fine, one more is E2BIG */
	longcl = malloc(3 * 65536);
	memset(longcl, 'a', 2048);
	longcl[2047] = 0;
	{
		struct guest_mem m;
		struct linux_entry e;
		struct linux_boot b = { .kernel = k, .kernel_len = len,
					.cmdline = longcl };

		CHECK_EQ(guest_mem_init(&m, 64 * MiB), 0);
		CHECK_EQ(linux_load(&m, &b, &e, NULL, 0), 0);
		CHECK_EQ(strlen(gpa_to_hva(&m, LINUX_CMDLINE, 1)), 2047);
		guest_mem_free(&m);
	}
	longcl[2047] = 'a';
	longcl[2048] = 0;
	expect_fail(k, len, longcl, 0, 64 * MiB, -E2BIG, "too long");
	/* a kernel claiming a huge cmdline_size is still bounded by ours */
	memcpy(c, k, len);
	wr32(c + 0x238, 0xffffffff);
	memset(longcl, 'b', 3 * 65536 - 1);
	longcl[3 * 65536 - 1] = 0;
	expect_fail(c, len, longcl, 0, 64 * MiB, -E2BIG, "too long");
	free(longcl);

	/* initrd larger than RAM, and a 5 GiB one */
	expect_fail(k, len, NULL, 200 * MiB, 128 * MiB, -ENOSPC, "--memory");
	expect_fail(k, len, NULL, 5 * GiB, 8 * GiB, -ENOSPC, "does not fit");

	free(c);
	free(k);
}

static void test_hostile_real(void)
{
	uint8_t *c = malloc(real_len);
	size_t setup = (size_t)(real_kernel[0x1f1] + 1) * 512;
	char *longcl;
	uint32_t cls = rd32(real_kernel + 0x238);

	CHECK(c != NULL && real_len > 0x1000);
	if (!c || real_len <= 0x1000) {
		free(c);
		return;
	}
	memcpy(c, real_kernel, real_len);
	memset(c + 0x202, 'X', 4);
	expect_fail(c, real_len, NULL, 0, 256 * MiB, -EINVAL, "HdrS");
	memcpy(c, real_kernel, real_len);
	wr16(c + 0x206, 0x0205);
	expect_fail(c, real_len, NULL, 0, 256 * MiB, -EINVAL, "2.05 too old");
	memcpy(c, real_kernel, real_len);

	expect_fail(c, 0x100, NULL, 0, 256 * MiB, -EINVAL, NULL);
	expect_fail(c, 0x250, NULL, 0, 256 * MiB, -EINVAL, "truncated");
	expect_fail(c, setup, NULL, 0, 256 * MiB, -EINVAL, "truncated");
	expect_fail(c, setup + 100000, NULL, 0, 256 * MiB, -EINVAL, "truncated");
	expect_fail(c, real_len / 2, NULL, 0, 256 * MiB, -EINVAL, "truncated");
	expect_fail(c, real_len - 4096, NULL, 0, 256 * MiB, -EINVAL, "truncated");

	longcl = malloc(cls + 2);
	memset(longcl, 'z', cls + 1);
	longcl[cls + 1] = 0;
	expect_fail(c, real_len, longcl, 0, 256 * MiB, -E2BIG, "too long");
	free(longcl);

	expect_fail(c, real_len, NULL, 300 * MiB, 256 * MiB, -ENOSPC, "--memory");
	/* too little RAM for pref_address + init_size */
	expect_fail(c, real_len, NULL, 0, 32 * MiB, -ENOSPC, "--memory");

	/* Random mutations of the setup header: any outcome but a crash. */
	{
		struct guest_mem m;
		struct linux_entry e;
		char err[128];
		uint8_t initrd[4096] = { 0 };
		int counts[4] = { 0 };

		CHECK_EQ(guest_mem_init(&m, 96 * MiB), 0);
		srand(7);
		for (int it = 0; it < 3000; it++) {
			struct linux_boot b = { .kernel = c, .initrd = initrd,
						.initrd_len = sizeof(initrd),
						.cmdline = "console=ttyS0" };
			int r;

			memcpy(c + 0x1f1, real_kernel + 0x1f1, 0x300);
			for (int j = 0, n = 1 + rand() % 4; j < n; j++)
				c[0x1f1 + rand() % 0x80] = (uint8_t)rand();
			/* keep most images parseable so later checks run */
			if (rand() % 2)
				wr32(c + 0x202, 0x53726448);
			b.kernel_len = rand() % 8 ? real_len
						  : (size_t)rand() % real_len;
			err[0] = 0;
			r = linux_load(&m, &b, &e, err, sizeof(err));
			CHECK(r == 0 || r == -EINVAL || r == -E2BIG || r == -ENOSPC);
			CHECK(r == 0 || err[0]);
			counts[r == 0 ? 0 : r == -EINVAL ? 1 : r == -E2BIG ? 2 : 3]++;
		}
		printf("  fuzz: %d ok, %d EINVAL, %d E2BIG, %d ENOSPC\n",
		       counts[0], counts[1], counts[2], counts[3]);
		guest_mem_free(&m);
	}
	free(c);
}

/* An image whose file ends short of syssize * 16 by less than a paragraph,
 * as memtest86+ 6.x's does: loaded, the missing tail zeroed in guest RAM
 * (even over old contents), the setup header copied as is. */
static void test_syssize_rounding(void)
{
	struct guest_mem m;
	struct linux_entry e;
	char err[256];
	size_t len, setup = 3 * 512;
	uint8_t *k = synthetic(2, 8192, 0x020c, &len);
	struct linux_boot b = { .kernel = k, .cmdline = "console=ttyS0" };

	CHECK_EQ(rd32(k + 0x1f4), 512);
	CHECK_EQ(guest_mem_init(&m, 64 * MiB), 0);
	for (size_t short_by = 1; short_by <= LINUX_SYSSIZE_SLACK; short_by++) {
		memset(gpa_to_hva(&m, 0x100000, 8193), 0xee, 8193);
		b.kernel_len = len - short_by;
		err[0] = 0;
		CHECK_EQ(linux_load(&m, &b, &e, err, sizeof(err)), 0);
		if (err[0])
			printf("  short by %zu: %s\n", short_by, err);
		CHECK_EQ(e.kernel_size, 8192 - short_by);
		CHECK(memcmp(gpa_to_hva(&m, 0x100000, 8192 - short_by),
			     k + setup, 8192 - short_by) == 0);
		for (size_t i = 8192 - short_by; i < 8192; i++)
			CHECK_EQ(((uint8_t *)gpa_to_hva(&m, 0x100000, 8192))[i], 0);
		/* the byte after syssize * 16 is not ours to touch */
		CHECK_EQ(((uint8_t *)gpa_to_hva(&m, 0x100000 + 8192, 1))[0], 0xee);
		CHECK_EQ(zero_page(&m)->hdr.syssize, 512);
	}
	guest_mem_free(&m);
	expect_fail(k, len - LINUX_SYSSIZE_SLACK - 1, NULL, 0, 64 * MiB,
		    -EINVAL, "kernel needs 8177 bytes after the setup, file has 8176");

	/* Through the BIOS the same image is accepted too. */
	{
		struct linux_fw_boot fb;

		b.kernel_len = len - 8;
		CHECK_EQ(linux_fw_boot_prepare(&b, 64 * MiB, &fb, err,
					       sizeof(err)), 0);
		CHECK_EQ(fb.kernel_len, 8192 - 8);
		linux_fw_boot_free(&fb);
		b.kernel_len = len - 16;
		CHECK_EQ(linux_fw_boot_prepare(&b, 64 * MiB, &fb, err,
					       sizeof(err)), -EINVAL);
		CHECK(strstr(err, "truncated") != NULL);
	}
	free(k);
}

/* Debian's memtest86+ (/boot/memtest86+x64.bin, a boot protocol 2.12
 * image with a 64-bit entry): its file is 8 bytes short of syssize * 16. */
static void test_memtest(void)
{
	const char *path = "/boot/memtest86+x64.bin";
	struct guest_mem m;
	struct linux_entry e;
	struct linux_fw_boot fb;
	char err[256] = "";
	gchar *k = NULL;
	gsize len = 0;
	size_t setup;

	if (!g_file_get_contents(path, &k, &len, NULL)) {
		printf("SKIP part: no %s (apt-get install memtest86+)\n", path);
		return;
	}
	setup = (size_t)(((uint8_t *)k)[0x1f1] + 1) * 512;
	printf("  %s: %zu bytes, setup %zu, syssize*16 %u\n", path,
	       (size_t)len, setup, rd32((uint8_t *)k + 0x1f4) * 16);
	struct linux_boot b = { .kernel = (uint8_t *)k, .kernel_len = len,
				.cmdline = "console=ttyS0,115200",
				.rsdp_gpa = RSDP_GPA };

	CHECK_EQ(guest_mem_init(&m, 256 * MiB), 0);
	CHECK_EQ(linux_load(&m, &b, &e, err, sizeof(err)), 0);
	if (err[0])
		printf("  unexpected error: %s\n", err);
	CHECK_EQ(e.kernel_size, len - setup);
	CHECK_EQ(e.rip, 0x100200);
	check_boot_params(&m, (uint8_t *)k, &e, "console=ttyS0,115200", NULL, 0);
	guest_mem_free(&m);
	CHECK_EQ(linux_fw_boot_prepare(&b, 256 * MiB, &fb, err, sizeof(err)), 0);
	CHECK_EQ(fb.kernel_len, len - setup);
	linux_fw_boot_free(&fb);
	g_free(k);
}

/* The fw_cfg items for SeaBIOS's linuxboot option ROM: the setup header
 * patched as a boot loader fills it, the initrd high and page-aligned. */
static void test_fw_boot(void)
{
	struct linux_fw_boot fb;
	char err[256] = "";
	size_t initrd_len = 3 * MiB + 5;
	uint8_t *initrd = calloc(1, initrd_len);
	struct linux_boot b = {
		.kernel = real_kernel, .kernel_len = real_len,
		.initrd = initrd, .initrd_len = initrd_len,
		.cmdline = "console=ttyS0",
	};
	const uint64_t top = 256 * MiB;

	CHECK_EQ(linux_fw_boot_prepare(&b, top, &fb, err, sizeof(err)), 0);
	CHECK_EQ(fb.setup_len, (size_t)(real_kernel[0x1f1] + 1) * 512);
	CHECK(fb.kernel == real_kernel + fb.setup_len);
	CHECK_EQ(fb.kernel_len + fb.setup_len, real_len);
	CHECK_EQ(fb.kernel_gpa, 0x100000);
	CHECK_EQ(fb.cmdline_len, strlen("console=ttyS0") + 1);
	CHECK(!strcmp(fb.cmdline, "console=ttyS0"));
	CHECK_EQ(fb.initrd_gpa % 4096, 0);
	CHECK(fb.initrd_gpa + initrd_len <= top - 0x20000);
	CHECK(fb.initrd_gpa + initrd_len > top - 0x20000 - 4096);
	CHECK_EQ(fb.setup[0x210], 0xff);			/* type_of_loader */
	CHECK(fb.setup[0x211] & BP_CAN_USE_HEAP);
	CHECK_EQ(rd16(fb.setup + 0x224), fb.cmdline_gpa - fb.setup_gpa - 0x200);
	CHECK_EQ(rd32(fb.setup + 0x228), fb.cmdline_gpa);
	CHECK_EQ(rd32(fb.setup + 0x218), fb.initrd_gpa);
	CHECK_EQ(rd32(fb.setup + 0x21c), initrd_len);
	CHECK_EQ(rd16(fb.setup + 0x1fa), 0xffff);
	/* The image itself is untouched. */
	CHECK(real_kernel[0x210] != 0xff || rd32(real_kernel + 0x228) == 0);
	linux_fw_boot_free(&fb);

	/* Too little memory for the initrd; a command line too long. */
	b.initrd_len = 300 * MiB;
	b.initrd = NULL;
	CHECK_EQ(linux_fw_boot_prepare(&b, top, &fb, err, sizeof(err)), -ENOSPC);
	CHECK(strstr(err, "--memory") != NULL);
	b.initrd_len = 0;
	{
		size_t n = 70000;
		char *big = malloc(n + 1);

		memset(big, 'a', n);
		big[n] = 0;
		b.cmdline = big;
		CHECK_EQ(linux_fw_boot_prepare(&b, top, &fb, err, sizeof(err)), -E2BIG);
		free(big);
	}
	/* Not a kernel. */
	b.kernel = initrd;
	b.kernel_len = initrd_len;
	b.cmdline = NULL;
	CHECK_EQ(linux_fw_boot_prepare(&b, top, &fb, err, sizeof(err)), -EINVAL);
	free(initrd);
}

int main(void)
{
	load_real_kernel();
	RUN_TEST(test_synthetic);
	RUN_TEST(test_syssize_rounding);
	RUN_TEST(test_memtest);
	RUN_TEST(test_hostile_synthetic);
	RUN_TEST(test_vcpu);
	if (real_kernel) {
		RUN_TEST(test_real_kernel);
		RUN_TEST(test_hostile_real);
		RUN_TEST(test_fw_boot);
	} else {
		printf("SKIP part: no /boot/vmlinuz-* on this machine; real-kernel "
		       "tests not run\n");
	}
	free(real_kernel);
	return check_finish();
}
