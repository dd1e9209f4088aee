/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/mem.h - guest RAM and the PC physical address map.
 *
 * RAM is split around the 32-bit PCI hole: GPA [0, min(size, 3 GiB)) and,
 * for the rest, [4 GiB, 4 GiB + size - 3 GiB).  The legacy VGA window
 * [640 KiB, 768 KiB) is not RAM (a display adapter decodes it), so low RAM
 * is two regions over one host mapping.  Each region is one KVM memory
 * slot.  Every GPA->HVA translation checks the
 * whole range: a guest-supplied (gpa, len) that leaves RAM or crosses the
 * hole yields NULL, never a pointer.
 */
#ifndef VIVARIUM_MEM_H
#define VIVARIUM_MEM_H

#include <stddef.h>
#include <stdint.h>

#define MEM_PCI_HOLE_START	0xc0000000ull	/* 3 GiB */
#define MEM_4G			0x100000000ull
#define MEM_MAX_REGIONS		3
#define MEM_VGA_START		0xa0000ull
#define MEM_VGA_END		0xc0000ull

struct mem_region {
	uint64_t gpa;
	uint64_t size;		/* bytes, multiple of 4 KiB */
	uint8_t *hva;
	uint64_t map_size;	/* bytes mmap()ed at hva; 0: inside the previous */
};

struct guest_mem {
	uint64_t ram_size;	/* bytes of RAM in all */
	unsigned nregions;
	struct mem_region region[MEM_MAX_REGIONS];
};

/* Allocate @ram_size bytes (a multiple of 4 KiB, at least 1 MiB) of
 * zero-filled anonymous memory.  Returns 0, -EINVAL or -ENOMEM. */
int guest_mem_init(struct guest_mem *mem, uint64_t ram_size);
void guest_mem_free(struct guest_mem *mem);

/* End of RAM below 4 GiB (GPA, bytes). */
uint64_t guest_mem_low_end(const struct guest_mem *mem);

/* HVA of [@gpa, @gpa + @len) if it lies wholly inside one RAM region, else
 * NULL.  @len 0 is treated as 1. */
void *gpa_to_hva(const struct guest_mem *mem, uint64_t gpa, uint64_t len);

/* Copy to/from guest RAM; 0 or -EFAULT if the range is not all RAM. */
int guest_mem_write(const struct guest_mem *mem, uint64_t gpa,
		    const void *src, size_t len);
int guest_mem_read(const struct guest_mem *mem, uint64_t gpa, void *dst,
		   size_t len);

/* ---- e820 (ACPI 6.4 §15 "System Address Map Interfaces") ---------------- */

#define E820_RAM	1
#define E820_RESERVED	2
#define E820_ACPI	3
#define E820_NVS	4

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

/* Where the PC platform keeps things below 1 MiB. */
#define MEM_EBDA_START		0x9fc00ull	/* extended BIOS data area */
#define MEM_BIOS_START		0xe0000ull	/* ACPI tables, RSDP (reserved) */
#define MEM_HIGH_START		0x100000ull	/* 1 MiB */

/*
 * The e820 map of @mem: RAM [0, EBDA), reserved [EBDA, 1 MiB) holding the
 * BIOS area and ACPI tables, RAM above 1 MiB up to the hole, KVM's pages
 * in the hole reserved (HV_KVM_PAGES_GPA, 16 KiB), RAM above 4 GiB.  Fills up to @max entries sorted by address; returns the count.
 */
unsigned guest_mem_e820(const struct guest_mem *mem, struct e820_entry *out,
			unsigned max);

#endif
