/* SPDX-License-Identifier: MIT */
/*
 * The device side of a split virtqueue, virtio 1.2 §2.7.  See virtqueue.h.
 *
 * Shared-memory discipline: the driver (other vCPUs) may change the rings
 * at any moment.  Each descriptor is copied once into a local before it is
 * checked and used (a compiler barrier keeps the compiler from re-reading
 * it), the avail idx is read with acquire semantics before the ring entries
 * behind it, and the used idx is stored with release semantics after the
 * used element.  A full fence separates publishing used entries (or
 * avail_event) from reading the driver's suppression fields (§2.7.10).
 */
#include "virtqueue.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "../log.h"
#include "../mem.h"

#define compiler_barrier() __asm__ __volatile__("" ::: "memory")

/* ---- ring field access ---------------------------------------------- */

static uint16_t avail_flags(const struct virtq *vq)
{
	return __atomic_load_n(&vq->map.avail[0], __ATOMIC_RELAXED);
}

static uint16_t avail_idx_acquire(const struct virtq *vq)
{
	return __atomic_load_n(&vq->map.avail[1], __ATOMIC_ACQUIRE);
}

static uint16_t avail_ring(const struct virtq *vq, uint16_t slot)
{
	return __atomic_load_n(&vq->map.avail[2 + slot], __ATOMIC_RELAXED);
}

static uint16_t used_event(const struct virtq *vq)
{
	return __atomic_load_n(&vq->map.avail[2 + vq->size], __ATOMIC_RELAXED);
}

static uint16_t *used_flags_ptr(const struct virtq *vq)
{
	return (uint16_t *)vq->map.used;
}

static uint16_t *used_idx_ptr(const struct virtq *vq)
{
	return (uint16_t *)(vq->map.used + 2);
}

static uint32_t *used_ring_ptr(const struct virtq *vq, uint16_t slot)
{
	return (uint32_t *)(vq->map.used + 4 + (size_t)slot * 8);
}

static uint16_t *avail_event_ptr(const struct virtq *vq)
{
	return (uint16_t *)(vq->map.used + 4 + (size_t)vq->size * 8);
}

/* One descriptor, copied out of shared memory once. */
static void read_desc(const struct virtq_desc *table, uint32_t i,
		      struct virtq_desc *out)
{
	memcpy(out, &table[i], sizeof(*out));
	compiler_barrier();
}

/* ---- life cycle -------------------------------------------------------- */

void virtq_init(struct virtq *vq, const struct guest_mem *mem, unsigned index)
{
	memset(vq, 0, sizeof(*vq));
	vq->mem = mem;
	vq->index = index;
}

void virtq_reset(struct virtq *vq)
{
	struct virtq keep = *vq;

	memset(vq, 0, sizeof(*vq));
	vq->mem = keep.mem;
	vq->index = keep.index;
	vq->on_broken = keep.on_broken;
	vq->opaque = keep.opaque;
	/* Elements popped before the reset must never reach the new rings. */
	vq->gen = keep.gen + 1;
}

static void vq_fail(struct virtq *vq, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void vq_fail(struct virtq *vq, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	if (vq->broken)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vlog_ratelimited(LOG_WARN, "virtio: queue %u broken: %s", vq->index,
			 msg);
	virtq_set_broken(vq);
}

void virtq_set_broken(struct virtq *vq)
{
	if (vq->broken)
		return;
	vq->broken = true;
	if (vq->on_broken)
		vq->on_broken(vq, vq->opaque);
}

/* Check a queue of @size entries at the GPAs (size, alignment, wholly in
 * RAM) and map it into *@map.  Returns 0, or -EINVAL with @vq broken. */
static int map_rings(struct virtq *vq, uint16_t size, uint64_t desc_gpa,
		     uint64_t avail_gpa, uint64_t used_gpa,
		     struct virtq_map *map)
{
	if (size == 0 || size > VIRTQ_MAX_SIZE || (size & (size - 1))) {
		vq_fail(vq, "size %u is not a power of two up to 32768", size);
		return -EINVAL;
	}
	if ((desc_gpa & 15) || (avail_gpa & 1) || (used_gpa & 3)) {
		vq_fail(vq, "misaligned rings (desc 0x%llx avail 0x%llx used 0x%llx)",
			(unsigned long long)desc_gpa,
			(unsigned long long)avail_gpa,
			(unsigned long long)used_gpa);
		return -EINVAL;
	}
	map->desc = gpa_to_hva(vq->mem, desc_gpa, VIRTQ_DESC_BYTES(size));
	map->avail = gpa_to_hva(vq->mem, avail_gpa, VIRTQ_AVAIL_BYTES(size));
	map->used = gpa_to_hva(vq->mem, used_gpa, VIRTQ_USED_BYTES(size));
	if (!map->desc || !map->avail || !map->used) {
		vq_fail(vq, "rings outside RAM (desc 0x%llx avail 0x%llx used 0x%llx, size %u)",
			(unsigned long long)desc_gpa,
			(unsigned long long)avail_gpa,
			(unsigned long long)used_gpa, size);
		return -EINVAL;
	}
	return 0;
}

int virtq_enable(struct virtq *vq, uint16_t size, uint64_t desc_gpa,
		 uint64_t avail_gpa, uint64_t used_gpa, uint64_t features)
{
	struct virtq_map map;

	if (map_rings(vq, size, desc_gpa, avail_gpa, used_gpa, &map) < 0)
		return -EINVAL;
	vq->size = size;
	vq->desc_gpa = desc_gpa;
	vq->avail_gpa = avail_gpa;
	vq->used_gpa = used_gpa;
	vq->map = map;
	vq->indirect = features & (1ull << VIRTIO_F_INDIRECT_DESC);
	vq->event_idx = features & (1ull << VIRTIO_F_EVENT_IDX);
	vq->last_avail_idx = 0;
	vq->used_idx = 0;
	/* Nothing used yet, so nothing owed: the first push is judged by
	 * used_event / the flags like any other. */
	vq->signalled_used = 0;
	vq->signalled_used_valid = true;
	vq->notify_enabled = true;
	vq->inflight = 0;
	vq->ready = true;
	return 0;
}

int virtq_remap(struct virtq *vq)
{
	struct virtq_map map = { 0 };

	if (vq->ready && map_rings(vq, vq->size, vq->desc_gpa, vq->avail_gpa,
				   vq->used_gpa, &map) < 0) {
		vq->map = map;
		vq->ready = false;
		return -EINVAL;
	}
	vq->map = map;
	return 0;
}

/* ---- popping chains ---------------------------------------------------- */

struct walk {
	struct iovec *iov;
	unsigned cnt, cap;
	unsigned out_num, in_num;
	uint64_t out_len, in_len;
	unsigned descs;			/* descriptors visited in all */
	bool writable_seen;
};

/* Add one buffer; returns 0, -EINVAL (hostile; vq now broken), -ENOMEM. */
static int walk_add(struct virtq *vq, struct walk *w,
		    const struct virtq_desc *d)
{
	bool writable = d->flags & VIRTQ_DESC_F_WRITE;
	void *hva;

	if (!writable && w->writable_seen) {
		vq_fail(vq, "device-readable descriptor after a writable one");
		return -EINVAL;
	}
	w->writable_seen |= writable;
	if (d->len == 0)
		return 0;
	if (d->addr + d->len < d->addr) {
		vq_fail(vq, "buffer 0x%llx+0x%x wraps", (unsigned long long)d->addr,
			d->len);
		return -EINVAL;
	}
	hva = gpa_to_hva(vq->mem, d->addr, d->len);
	if (!hva) {
		vq_fail(vq, "buffer 0x%llx+0x%x is not guest RAM",
			(unsigned long long)d->addr, d->len);
		return -EINVAL;
	}
	if (w->out_len + w->in_len + d->len > VIRTQ_MAX_CHAIN_BYTES) {
		vq_fail(vq, "chain longer than 4 GiB");
		return -EINVAL;
	}
	if (w->cnt == w->cap) {
		unsigned ncap = w->cap ? w->cap * 2 : 8;
		struct iovec *n = realloc(w->iov, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		w->iov = n;
		w->cap = ncap;
	}
	w->iov[w->cnt].iov_base = hva;
	w->iov[w->cnt].iov_len = d->len;
	w->cnt++;
	if (writable) {
		w->in_num++;
		w->in_len += d->len;
	} else {
		w->out_num++;
		w->out_len += d->len;
	}
	return 0;
}

/*
 * Walk the chain from @head: direct descriptors, then at most one indirect
 * table (§2.7.5.3.2: zero or more direct descriptors followed by a single
 * indirect one).  Each table's walk is bounded by its size (a longer walk
 * is a loop) and the whole walk by VIRTQ_MAX_CHAIN.
 */
static int walk_chain(struct virtq *vq, uint16_t head, struct walk *w)
{
	const struct virtq_desc *table = vq->map.desc;
	uint32_t table_size = vq->size, i = head, steps = 0;
	bool in_indirect = false;
	struct virtq_desc d;
	int r;

	for (;;) {
		if (++steps > table_size) {
			vq_fail(vq, "descriptor chain from head %u loops", head);
			return -EINVAL;
		}
		if (++w->descs > VIRTQ_MAX_CHAIN) {
			vq_fail(vq, "chain from head %u has more than %u descriptors",
				head, VIRTQ_MAX_CHAIN);
			return -EINVAL;
		}
		read_desc(table, i, &d);
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			void *t;

			if (in_indirect) {
				vq_fail(vq, "nested indirect descriptor table");
				return -EINVAL;
			}
			if (!vq->indirect) {
				vq_fail(vq, "indirect descriptor without VIRTIO_F_INDIRECT_DESC");
				return -EINVAL;
			}
			if (d.flags & VIRTQ_DESC_F_NEXT) {
				vq_fail(vq, "indirect descriptor with NEXT set");
				return -EINVAL;
			}
			if (d.len == 0 || d.len % sizeof(struct virtq_desc)) {
				vq_fail(vq, "indirect table length %u", d.len);
				return -EINVAL;
			}
			t = (d.addr + d.len < d.addr) ? NULL
				: gpa_to_hva(vq->mem, d.addr, d.len);
			if (!t) {
				vq_fail(vq, "indirect table 0x%llx+0x%x is not guest RAM",
					(unsigned long long)d.addr, d.len);
				return -EINVAL;
			}
			table = t;
			table_size = d.len / sizeof(struct virtq_desc);
			in_indirect = true;
			i = 0;
			steps = 0;
			continue;
		}
		r = walk_add(vq, w, &d);
		if (r < 0)
			return r;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		i = d.next;
		if (i >= table_size) {
			vq_fail(vq, "next index %u beyond the %s table of %u",
				i, in_indirect ? "indirect" : "descriptor",
				table_size);
			return -EINVAL;
		}
	}
}

int virtq_pop(struct virtq *vq, struct virtq_elem *elem)
{
	struct walk w = { 0 };
	uint16_t avail_idx, pending, head;
	int r;

	if (vq->broken)
		return -EIO;
	if (!vq->ready)
		return 0;
	avail_idx = avail_idx_acquire(vq);
	pending = (uint16_t)(avail_idx - vq->last_avail_idx);
	if (pending == 0)
		return 0;
	if (pending > vq->size) {
		vq_fail(vq, "avail idx jumped from %u to %u (size %u)",
			vq->last_avail_idx, avail_idx, vq->size);
		return -EIO;
	}
	if (vq->inflight >= vq->size) {
		vq_fail(vq, "more than %u buffers in flight", vq->size);
		return -EIO;
	}
	head = avail_ring(vq, vq->last_avail_idx & (vq->size - 1));
	if (head >= vq->size) {
		vq_fail(vq, "head index %u >= size %u", head, vq->size);
		return -EIO;
	}
	r = walk_chain(vq, head, &w);
	if (r < 0) {
		free(w.iov);
		return r == -ENOMEM ? -ENOMEM : -EIO;
	}
	vq->last_avail_idx++;
	vq->inflight++;
	if (vq->event_idx && vq->notify_enabled)
		__atomic_store_n(avail_event_ptr(vq), vq->last_avail_idx,
				 __ATOMIC_RELAXED);

	elem->head = head;
	elem->gen = vq->gen;
	elem->out_num = w.out_num;
	elem->in_num = w.in_num;
	elem->out_len = w.out_len;
	elem->in_len = w.in_len;
	elem->iov = w.iov;
	return 1;
}

void virtq_elem_release(struct virtq_elem *elem)
{
	free(elem->iov);
	elem->iov = NULL;
	elem->out_num = elem->in_num = 0;
}

void virtq_unpop(struct virtq *vq, const struct virtq_elem *elem)
{
	if (elem->gen != vq->gen || vq->inflight == 0)
		return;
	vq->last_avail_idx--;
	vq->inflight--;
}

/* ---- used ring --------------------------------------------------------- */

int virtq_push(struct virtq *vq, const struct virtq_elem *elem,
	       uint32_t written)
{
	uint16_t slot;

	if (!vq->ready || vq->broken || elem->gen != vq->gen ||
	    vq->inflight == 0)
		return -EIO;
	if (written > elem->in_len)
		written = (uint32_t)elem->in_len;
	slot = vq->used_idx & (vq->size - 1);
	__atomic_store_n(used_ring_ptr(vq, slot), (uint32_t)elem->head,
			 __ATOMIC_RELAXED);
	__atomic_store_n(used_ring_ptr(vq, slot) + 1, written,
			 __ATOMIC_RELAXED);
	vq->used_idx++;
	/* §2.7.8: the element is visible before the idx that covers it. */
	__atomic_store_n(used_idx_ptr(vq), vq->used_idx, __ATOMIC_RELEASE);
	vq->inflight--;
	return 0;
}

bool virtq_should_notify(struct virtq *vq)
{
	uint16_t old = vq->signalled_used, now = vq->used_idx;
	bool valid = vq->signalled_used_valid;

	if (!vq->ready || vq->broken)
		return false;
	if (valid && old == now)
		return false;		/* nothing new since the last one */
	/* The used idx store must be visible before we read the driver's
	 * suppression state, or both sides may skip the notification. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx) {
		if (avail_flags(vq) & VIRTQ_AVAIL_F_NO_INTERRUPT)
			return false;
		vq->signalled_used = now;
		vq->signalled_used_valid = true;
		return true;
	}
	vq->signalled_used = now;
	vq->signalled_used_valid = true;
	if (!valid)
		return true;
	/* §2.7.10: notify if used_event lies in (old, now]. */
	return (uint16_t)(now - used_event(vq) - 1) < (uint16_t)(now - old);
}

void virtq_disable_notify(struct virtq *vq)
{
	if (!vq->ready)
		return;
	vq->notify_enabled = false;
	if (!vq->event_idx)
		__atomic_store_n(used_flags_ptr(vq), VIRTQ_USED_F_NO_NOTIFY,
				 __ATOMIC_RELAXED);
}

bool virtq_enable_notify(struct virtq *vq)
{
	if (!vq->ready || vq->broken)
		return false;
	vq->notify_enabled = true;
	if (vq->event_idx)
		__atomic_store_n(avail_event_ptr(vq), vq->last_avail_idx,
				 __ATOMIC_RELAXED);
	else
		__atomic_store_n(used_flags_ptr(vq), 0, __ATOMIC_RELAXED);
	/* Publish the request before looking for buffers that raced it. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return avail_idx_acquire(vq) != vq->last_avail_idx;
}

/* ---- iovec helpers ----------------------------------------------------- */


/* ---- saved state --------------------------------------------------------- */

GVariant *virtq_save(const struct virtq *vq)
{
	return g_variant_new(VIRTQ_STATE_TYPE, vq->size, vq->ready, vq->broken,
			     vq->indirect, vq->event_idx,
			     (guint64)vq->desc_gpa, (guint64)vq->avail_gpa,
			     (guint64)vq->used_gpa, vq->last_avail_idx,
			     vq->used_idx, vq->signalled_used,
			     vq->signalled_used_valid, vq->notify_enabled);
}

int virtq_state_parse(const struct virtq *vq, GVariant *state,
		      uint16_t max_size, struct virtq *out, const char *who,
		      char *err, size_t errlen)
{
	struct virtq t = *vq;
	gboolean b[6];
	guint64 desc, avail, used;

	if (!g_variant_is_of_type(state, G_VARIANT_TYPE(VIRTQ_STATE_TYPE))) {
		snprintf(err, errlen, "%s: queue %u state is of type %s, not " VIRTQ_STATE_TYPE,
			 who, vq->index, g_variant_get_type_string(state));
		return -EINVAL;
	}
	g_variant_get(state, VIRTQ_STATE_TYPE, &t.size, &b[0], &b[1], &b[2],
		      &b[3], &desc, &avail, &used, &t.last_avail_idx,
		      &t.used_idx, &t.signalled_used, &b[4], &b[5]);
	t.ready = b[0];
	t.broken = b[1];
	t.indirect = b[2];
	t.event_idx = b[3];
	t.signalled_used_valid = b[4];
	t.notify_enabled = b[5];
	t.desc_gpa = desc;
	t.avail_gpa = avail;
	t.used_gpa = used;
	t.inflight = 0;
	t.map = (struct virtq_map){ 0 };
	if (t.size > max_size || (t.size & (t.size - 1)) ||
	    (t.ready && !t.size)) {
		snprintf(err, errlen, "%s: queue %u size %u is not a power of two up to %u",
			 who, vq->index, t.size, max_size);
		return -EINVAL;
	}
	/* The same checks as the guest's enable, on a copy that has no hook
	 * to call and is thrown away on failure. */
	if (t.ready) {
		struct virtq check = t;

		check.on_broken = NULL;
		check.broken = false;
		if (map_rings(&check, t.size, t.desc_gpa, t.avail_gpa, t.used_gpa,
			      &t.map) < 0) {
			snprintf(err, errlen, "%s: queue %u rings (desc 0x%llx avail 0x%llx used 0x%llx, size %u) misaligned or outside RAM",
				 who, vq->index, (unsigned long long)t.desc_gpa,
				 (unsigned long long)t.avail_gpa,
				 (unsigned long long)t.used_gpa, t.size);
			return -EINVAL;
		}
	}
	*out = t;
	return 0;
}
