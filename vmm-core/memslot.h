/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/memslot.h - a memory slot the machine hands a device that maps
 * host memory of its own into the guest (the VGA's VRAM as BAR0), so that
 * the device never calls the hypervisor layer itself.
 *
 * The slot is one guest-physical window: map() places (or moves) it,
 * unmap() removes it.  With dirty logging, get_dirty() says which pages
 * the guest wrote since the last call.
 */
#ifndef VIVARIUM_MEMSLOT_H
#define VIVARIUM_MEMSLOT_H

#include <stdbool.h>
#include <stdint.h>

struct hv_vm;

struct mem_slot_ops {
	/* Map @size bytes at @hva at guest-physical @gpa (all 4 KiB
	 * aligned); @dirty_log: log the guest's writes for get_dirty().
	 * Returns 0 or -errno. */
	int (*map)(void *opaque, uint64_t gpa, uint64_t size, void *hva,
		   bool dirty_log);
	/* Map @size bytes at @hva read-only at @gpa: reads run at memory
	 * speed, writes exit as MMIO (a flash in read-array mode).  NULL
	 * for slots that never need it.  Returns 0 or -errno. */
	int (*map_readonly)(void *opaque, uint64_t gpa, uint64_t size,
			    void *hva);
	/* Remove the mapping placed at @gpa.  Returns 0 or -errno. */
	int (*unmap)(void *opaque, uint64_t gpa);
	/* Fetch and clear the dirty log: bit i of @bitmap set means the guest
	 * wrote page i (4 KiB) of the mapping; @bitmap holds one bit per
	 * page, rounded up to whole 64-bit words.  Returns 0 or -errno. */
	int (*get_dirty)(void *opaque, uint64_t *bitmap);
};

struct mem_slot {
	const struct mem_slot_ops *ops;	/* NULL: no slot */
	void *opaque;
};

/* The slot over the hypervisor: memory slot @id of @vm
 * (hv_vm_set_memory, hv_vm_get_dirty_log). */
struct mem_slot_hv {
	struct hv_vm *vm;
	uint32_t id;
};

extern const struct mem_slot_ops mem_slot_hv_ops;

/* A struct mem_slot over @hs, which must outlive its users. */
static inline struct mem_slot mem_slot_hv(struct mem_slot_hv *hs)
{
	return (struct mem_slot){ .ops = &mem_slot_hv_ops, .opaque = hs };
}

#endif
