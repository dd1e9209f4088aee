/* SPDX-License-Identifier: MIT */
#include "mem.h"

#include "hv.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

int guest_mem_init(struct guest_mem *out, uint64_t ram_size)
{
	struct guest_mem local, *mem = &local;
	uint64_t low, high;

	/* Built aside and published whole: another thread looking at *out
	 * meanwhile (a monitor, a test) never sees a region without memory. */
	memset(out, 0, sizeof(*out));
	memset(mem, 0, sizeof(*mem));
	if (ram_size < MEM_HIGH_START || (ram_size & 0xfff) ||
	    ram_size > (1ull << 40))
		return -EINVAL;
	low = ram_size < MEM_PCI_HOLE_START ? ram_size : MEM_PCI_HOLE_START;
	high = ram_size - low;
	/* Low RAM is one mapping seen through two regions around the VGA
	 * window: [0, 640 KiB) and [768 KiB, low). */
	mem->region[0] = (struct mem_region){ .gpa = 0, .size = MEM_VGA_START,
					      .map_size = low };
	mem->region[1] = (struct mem_region){ .gpa = MEM_VGA_END,
					      .size = low - MEM_VGA_END };
	mem->nregions = 2;
	if (high)
		mem->region[mem->nregions++] = (struct mem_region){
			.gpa = MEM_4G, .size = high, .map_size = high };
	for (unsigned i = 0; i < mem->nregions; i++) {
		void *p;

		if (!mem->region[i].map_size) {		/* shares the previous */
			mem->region[i].hva = mem->region[i - 1].hva +
					     (mem->region[i].gpa - mem->region[i - 1].gpa);
			continue;
		}
		p = mmap(NULL, mem->region[i].map_size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED) {
			guest_mem_free(mem);
			return -ENOMEM;
		}
		/* Guest RAM is never in a core dump's way or a fork's. */
		madvise(p, mem->region[i].map_size, MADV_DONTFORK);
		mem->region[i].hva = p;
	}
	mem->ram_size = ram_size;
	*out = local;
	return 0;
}

void guest_mem_free(struct guest_mem *mem)
{
	for (unsigned i = 0; i < mem->nregions; i++)
		if (mem->region[i].hva && mem->region[i].map_size)
			munmap(mem->region[i].hva, mem->region[i].map_size);
	memset(mem, 0, sizeof(*mem));
}

void *gpa_to_hva(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	if (!len)
		len = 1;
	for (unsigned i = 0; i < mem->nregions; i++) {
		const struct mem_region *r = &mem->region[i];

		/* Written so that no sum can overflow. */
		if (r->hva && gpa >= r->gpa && gpa - r->gpa < r->size &&
		    len <= r->size - (gpa - r->gpa))
			return r->hva + (gpa - r->gpa);
	}
	return NULL;
}

int guest_mem_write(const struct guest_mem *mem, uint64_t gpa,
		    const void *src, size_t len)
{
	void *p = gpa_to_hva(mem, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}

int guest_mem_read(const struct guest_mem *mem, uint64_t gpa, void *dst,
		   size_t len)
{
	const void *p = gpa_to_hva(mem, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

uint64_t guest_mem_low_end(const struct guest_mem *mem)
{
	return mem->nregions > 1 ? mem->region[1].gpa + mem->region[1].size : 0;
}

static unsigned add(struct e820_entry *out, unsigned n, unsigned max,
		    uint64_t addr, uint64_t size, uint32_t type)
{
	if (n < max && size)
		out[n] = (struct e820_entry){ addr, size, type };
	return size ? n + 1 : n;
}

unsigned guest_mem_e820(const struct guest_mem *mem, struct e820_entry *out,
			unsigned max)
{
	uint64_t low = guest_mem_low_end(mem);
	unsigned n = 0;

	n = add(out, n, max, 0, MEM_EBDA_START, E820_RAM);
	n = add(out, n, max, MEM_EBDA_START, MEM_HIGH_START - MEM_EBDA_START,
		E820_RESERVED);
	if (low > MEM_HIGH_START)
		n = add(out, n, max, MEM_HIGH_START, low - MEM_HIGH_START,
			E820_RAM);
	n = add(out, n, max, HV_KVM_PAGES_GPA, HV_KVM_PAGES_SIZE,
		E820_RESERVED);
	if (mem->nregions > 2)
		n = add(out, n, max, mem->region[2].gpa, mem->region[2].size,
			E820_RAM);
	return n < max ? n : max;
}
