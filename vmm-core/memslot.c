/* SPDX-License-Identifier: MIT */
#include "memslot.h"

#include <stddef.h>

#include "hv.h"

static int hv_slot_map(void *opaque, uint64_t gpa, uint64_t size, void *hva,
		       bool dirty_log)
{
	struct mem_slot_hv *hs = opaque;

	return hv_vm_set_memory(hs->vm, hs->id, gpa, size, hva,
				dirty_log ? HV_MEM_LOG_DIRTY : 0);
}

static int hv_slot_map_readonly(void *opaque, uint64_t gpa, uint64_t size,
				void *hva)
{
	struct mem_slot_hv *hs = opaque;

	return hv_vm_set_memory(hs->vm, hs->id, gpa, size, hva,
				HV_MEM_READONLY);
}

static int hv_slot_unmap(void *opaque, uint64_t gpa)
{
	struct mem_slot_hv *hs = opaque;

	return hv_vm_set_memory(hs->vm, hs->id, gpa, 0, NULL, 0);
}

static int hv_slot_get_dirty(void *opaque, uint64_t *bitmap)
{
	struct mem_slot_hv *hs = opaque;

	return hv_vm_get_dirty_log(hs->vm, hs->id, bitmap);
}

const struct mem_slot_ops mem_slot_hv_ops = {
	.map = hv_slot_map,
	.map_readonly = hv_slot_map_readonly,
	.unmap = hv_slot_unmap,
	.get_dirty = hv_slot_get_dirty,
};
