/* SPDX-License-Identifier: MIT */
/* Guest memory: the hole, range checks on GPA->HVA, the e820 map. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "hv.h"
#include "mem.h"

static void test_small(void)
{
	struct guest_mem m;
	struct e820_entry e[8];
	unsigned n;
	uint8_t buf[4] = { 1, 2, 3, 4 };

	CHECK_EQ(guest_mem_init(&m, 256ull << 20), 0);
	CHECK_EQ(m.nregions, 2);
	CHECK_EQ(guest_mem_low_end(&m), 256ull << 20);
	CHECK(gpa_to_hva(&m, 0, 1) != NULL);
	/* The VGA window is not RAM; ranges may not cross into it. */
	CHECK(gpa_to_hva(&m, MEM_VGA_START, 1) == NULL);
	CHECK(gpa_to_hva(&m, MEM_VGA_END - 1, 1) == NULL);
	CHECK(gpa_to_hva(&m, MEM_VGA_START - 4, 8) == NULL);
	CHECK(gpa_to_hva(&m, MEM_VGA_END - 4, 8) == NULL);
	/* Both low regions are views of one mapping. */
	CHECK((uint8_t *)gpa_to_hva(&m, MEM_VGA_END, 1) ==
	      (uint8_t *)gpa_to_hva(&m, 0, 1) + MEM_VGA_END);
	CHECK(gpa_to_hva(&m, (256ull << 20) - 4, 4) != NULL);
	CHECK(gpa_to_hva(&m, (256ull << 20) - 4, 5) == NULL);
	CHECK(gpa_to_hva(&m, 256ull << 20, 1) == NULL);
	CHECK(gpa_to_hva(&m, ~0ull, 2) == NULL);
	CHECK(gpa_to_hva(&m, 16, ~0ull) == NULL);
	CHECK_EQ(guest_mem_write(&m, 0x1000, buf, 4), 0);
	CHECK_EQ(((uint8_t *)gpa_to_hva(&m, 0x1000, 4))[3], 4);
	CHECK_EQ(guest_mem_read(&m, (256ull << 20) - 2, buf, 4), -EFAULT);

	n = guest_mem_e820(&m, e, 8);
	CHECK_EQ(n, 4);
	CHECK_EQ(e[0].addr, 0);
	CHECK_EQ(e[0].size, MEM_EBDA_START);
	CHECK_EQ(e[0].type, E820_RAM);
	CHECK_EQ(e[1].type, E820_RESERVED);
	CHECK_EQ(e[2].addr, MEM_HIGH_START);
	CHECK_EQ(e[2].addr + e[2].size, 256ull << 20);
	/* KVM's identity map and TSS pages, reserved as QEMU does */
	CHECK_EQ(e[3].addr, HV_KVM_PAGES_GPA);
	CHECK_EQ(e[3].size, HV_KVM_PAGES_SIZE);
	CHECK_EQ(e[3].type, E820_RESERVED);
	guest_mem_free(&m);
}

static void test_hole(void)
{
	struct guest_mem m;
	struct e820_entry e[8];
	uint64_t total = 0;
	unsigned n;

	CHECK_EQ(guest_mem_init(&m, 4ull << 30), 0);
	CHECK_EQ(m.nregions, 3);
	CHECK_EQ(guest_mem_low_end(&m), MEM_PCI_HOLE_START);
	CHECK_EQ(m.region[2].gpa, MEM_4G);
	CHECK_EQ(m.region[2].size, 1ull << 30);
	/* The hole is not RAM, and a range may not span it. */
	CHECK(gpa_to_hva(&m, MEM_PCI_HOLE_START, 1) == NULL);
	CHECK(gpa_to_hva(&m, 0xfec00000, 4) == NULL);
	CHECK(gpa_to_hva(&m, MEM_PCI_HOLE_START - 4, 8) == NULL);
	CHECK(gpa_to_hva(&m, MEM_4G, 4096) != NULL);
	n = guest_mem_e820(&m, e, 8);
	CHECK_EQ(n, 5);
	for (unsigned i = 0; i < n; i++) {
		if (e[i].type == E820_RAM)
			total += e[i].size;
		if (i)
			CHECK(e[i].addr >= e[i - 1].addr + e[i - 1].size);
	}
	CHECK_EQ(total, (4ull << 30) - (MEM_HIGH_START - MEM_EBDA_START));
	guest_mem_free(&m);
}

/* The e820 map at the sizes guests are given (512 MiB; 3 GiB, exactly
 * the low RAM; 3 GiB + 1 MiB, the first size with RAM above 4 GiB;
 * 4 GiB; 6 GiB): sorted, disjoint, page-aligned, every byte of RAM
 * present once outside [EBDA, 1 MiB), nothing in the PCI hole
 * [3 GiB, 4 GiB), high RAM from exactly 4 GiB. */
static void test_e820_sizes(void)
{
	static const uint64_t sizes[] = { 512ull << 20, 3ull << 30,
					  (3ull << 30) + (1 << 20), 4ull << 30,
					  6ull << 30 };

	for (unsigned k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		struct guest_mem m;
		struct e820_entry e[8];
		uint64_t size = sizes[k], ram = 0, high = 0;
		unsigned n;

		CHECK_EQ(guest_mem_init(&m, size), 0);
		n = guest_mem_e820(&m, e, 8);
		CHECK_EQ(n, size > MEM_PCI_HOLE_START ? 5 : 4);
		for (unsigned i = 0; i < n; i++) {
			CHECK(e[i].size > 0);
			CHECK(e[i].type == E820_RAM || e[i].type == E820_RESERVED);
			if (i)
				CHECK(e[i].addr >= e[i - 1].addr + e[i - 1].size);
			/* nothing in the hole but KVM's pages */
			CHECK(e[i].addr + e[i].size <= MEM_PCI_HOLE_START ||
			      e[i].addr >= MEM_4G ||
			      (e[i].addr == HV_KVM_PAGES_GPA &&
			       e[i].size == HV_KVM_PAGES_SIZE &&
			       e[i].type == E820_RESERVED));
			if (e[i].type != E820_RAM)
				continue;
			CHECK_EQ(e[i].addr % 4096, 0);
			CHECK_EQ(e[i].size % 4096 == 0 || e[i].addr == 0, 1);
			ram += e[i].size;
			if (e[i].addr >= MEM_4G) {
				CHECK_EQ(e[i].addr, MEM_4G);
				high += e[i].size;
			}
			/* what the map calls RAM is backed by guest memory */
			CHECK(gpa_to_hva(&m, e[i].addr, e[i].size) != NULL);
		}
		CHECK_EQ(ram, size - (MEM_HIGH_START - MEM_EBDA_START));
		CHECK_EQ(high, size > MEM_PCI_HOLE_START ? size - MEM_PCI_HOLE_START : 0);
		CHECK_EQ(guest_mem_low_end(&m),
			 size < MEM_PCI_HOLE_START ? size : MEM_PCI_HOLE_START);
		/* the legacy BIOS area and the VGA window are reserved */
		CHECK_EQ(e[1].type, E820_RESERVED);
		CHECK(e[1].addr <= MEM_VGA_START && e[1].addr + e[1].size >= MEM_HIGH_START);
		guest_mem_free(&m);
	}
}

static void test_bad_sizes(void)
{
	struct guest_mem m;

	CHECK_EQ(guest_mem_init(&m, 0), -EINVAL);
	CHECK_EQ(guest_mem_init(&m, (1 << 20) + 1), -EINVAL);
	CHECK_EQ(guest_mem_init(&m, 4096), -EINVAL);
}

int main(void)
{
	RUN_TEST(test_small);
	RUN_TEST(test_hole);
	RUN_TEST(test_e820_sizes);
	RUN_TEST(test_bad_sizes);
	return check_finish();
}
