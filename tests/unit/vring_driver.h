/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/vring_driver.h - the driver side of a split virtqueue (virtio
 * 1.2 §2.7), written from the spec for tests: it lays out a descriptor
 * table, available and used rings in guest memory, adds chains (direct or
 * through an indirect table), and reads back used elements.  Descriptors
 * are handed out sequentially from 0 for each vdrv_reset(); buffers and
 * indirect tables come from a bump allocator in the data area.
 * Header-only (static inline).
 */
#ifndef VIVARIUM_VRING_DRIVER_H
#define VIVARIUM_VRING_DRIVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mem.h"
#include "virtio/virtqueue.h"

struct vdrv {
	const struct guest_mem *mem;
	uint16_t size;
	uint64_t desc, avail, used;	/* GPAs of the three areas */
	uint64_t data_start, data_next, data_end;
	uint16_t next_desc;		/* next free descriptor */
	uint16_t avail_idx;		/* driver's shadow of avail->idx */
	uint16_t used_seen;		/* used entries already read */
};

/* One buffer of a chain. */
struct vbuf {
	uint64_t gpa;
	uint32_t len;
	bool write;			/* device-writable */
};

static inline void *vdrv_hva(const struct vdrv *d, uint64_t gpa, uint64_t len)
{
	return gpa_to_hva(d->mem, gpa, len);
}

/* Clear the rings and allocators (keeps the layout). */
static inline void vdrv_reset(struct vdrv *d)
{
	memset(vdrv_hva(d, d->desc, VIRTQ_DESC_BYTES(d->size)), 0,
	       VIRTQ_DESC_BYTES(d->size));
	memset(vdrv_hva(d, d->avail, VIRTQ_AVAIL_BYTES(d->size)), 0,
	       VIRTQ_AVAIL_BYTES(d->size));
	memset(vdrv_hva(d, d->used, VIRTQ_USED_BYTES(d->size)), 0,
	       VIRTQ_USED_BYTES(d->size));
	d->next_desc = 0;
	d->avail_idx = 0;
	d->used_seen = 0;
	d->data_next = d->data_start;
}

/* Lay out a queue of @size entries at @base (4 KiB aligned) with
 * @data_len bytes of buffer space after the rings. */
static inline void vdrv_init(struct vdrv *d, const struct guest_mem *mem,
			     uint16_t size, uint64_t base, uint64_t data_len)
{
	d->mem = mem;
	d->size = size;
	d->desc = base;
	d->avail = base + VIRTQ_DESC_BYTES(size);
	d->used = (d->avail + VIRTQ_AVAIL_BYTES(size) + 4095) & ~4095ull;
	d->data_start = (d->used + VIRTQ_USED_BYTES(size) + 4095) & ~4095ull;
	d->data_end = d->data_start + data_len;
	vdrv_reset(d);
}

/* @len bytes of buffer space aligned to @align (a power of two). */
static inline uint64_t vdrv_alloc(struct vdrv *d, uint64_t len,
				  uint64_t align)
{
	uint64_t p = (d->data_next + align - 1) & ~(align - 1);

	d->data_next = p + len;
	return p;
}

/* Write a raw descriptor into the table at @table_gpa (the queue's or an
 * indirect one). */
static inline void vdrv_write_desc(struct vdrv *d, uint64_t table_gpa,
				   unsigned i, uint64_t addr, uint32_t len,
				   uint16_t flags, uint16_t next)
{
	struct virtq_desc v = { addr, len, flags, next };

	memcpy(vdrv_hva(d, table_gpa + 16ull * i, 16), &v, 16);
}

static inline volatile uint16_t *vdrv_avail16(struct vdrv *d, unsigned word)
{
	return (volatile uint16_t *)vdrv_hva(d, d->avail + 2ull * word, 2);
}

static inline volatile uint16_t *vdrv_used16(struct vdrv *d, uint64_t off)
{
	return (volatile uint16_t *)vdrv_hva(d, d->used + off, 2);
}

/* Put @head in the next avail slot and publish the new idx. */
static inline void vdrv_publish(struct vdrv *d, uint16_t head)
{
	*vdrv_avail16(d, 2 + (d->avail_idx & (d->size - 1))) = head;
	d->avail_idx++;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	*vdrv_avail16(d, 1) = d->avail_idx;
}

/* Set avail->idx to any value (hostile tests). */
static inline void vdrv_set_avail_idx(struct vdrv *d, uint16_t idx)
{
	d->avail_idx = idx;
	*vdrv_avail16(d, 1) = idx;
}

/*
 * Add a chain of @n buffers and make it available.  With @indirect the
 * queue gets one descriptor pointing at a table holding the chain.
 * Returns the head index.
 */
static inline uint16_t vdrv_add(struct vdrv *d, const struct vbuf *b,
				unsigned n, bool indirect)
{
	uint16_t head = d->next_desc;

	if (indirect) {
		uint64_t table = vdrv_alloc(d, 16ull * n, 16);

		for (unsigned i = 0; i < n; i++)
			vdrv_write_desc(d, table, i, b[i].gpa, b[i].len,
					(uint16_t)((b[i].write ? VIRTQ_DESC_F_WRITE : 0) |
					(i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
					(uint16_t)(i + 1));
		vdrv_write_desc(d, d->desc, head, table, 16 * n,
				VIRTQ_DESC_F_INDIRECT, 0);
		d->next_desc = (uint16_t)((d->next_desc + 1) & (d->size - 1));
	} else {
		for (unsigned i = 0; i < n; i++) {
			uint16_t idx = d->next_desc;

			d->next_desc = (uint16_t)((d->next_desc + 1) &
						  (d->size - 1));
			vdrv_write_desc(d, d->desc, idx, b[i].gpa, b[i].len,
					(uint16_t)((b[i].write ? VIRTQ_DESC_F_WRITE : 0) |
					(i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
					d->next_desc);
		}
	}
	vdrv_publish(d, head);
	return head;
}

/* The device's used idx. */
static inline uint16_t vdrv_used_idx(struct vdrv *d)
{
	return *vdrv_used16(d, 2);
}

/* Take the next used element; false if there is none. */
static inline bool vdrv_get_used(struct vdrv *d, uint32_t *id, uint32_t *len)
{
	const uint32_t *e;

	if (vdrv_used_idx(d) == d->used_seen)
		return false;
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	e = vdrv_hva(d, d->used + 4 + 8ull * (d->used_seen & (d->size - 1)), 8);
	*id = e[0];
	*len = e[1];
	d->used_seen++;
	return true;
}

static inline void vdrv_set_used_event(struct vdrv *d, uint16_t v)
{
	*vdrv_avail16(d, 2 + d->size) = v;
}

static inline void vdrv_set_avail_flags(struct vdrv *d, uint16_t v)
{
	*vdrv_avail16(d, 0) = v;
}

static inline uint16_t vdrv_avail_event(struct vdrv *d)
{
	return *vdrv_used16(d, 4 + 8ull * d->size);
}

static inline uint16_t vdrv_used_flags(struct vdrv *d)
{
	return *vdrv_used16(d, 0);
}

/*
 * Poll the used idx (under @lock, every @poll_us) until it equals @idx, or
 * with @or_past has gone beyond it; for at most @timeout_ms.  For devices
 * that complete on their own threads.  Returns whether it got there.
 */
static inline bool vdrv_wait_used(struct vdrv *d, pthread_mutex_t *lock,
				  uint16_t idx, bool or_past,
				  unsigned poll_us, unsigned timeout_ms)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		uint16_t u;

		pthread_mutex_lock(lock);
		u = vdrv_used_idx(d);
		pthread_mutex_unlock(lock);
		if (u == idx || (or_past && (int16_t)(u - idx) > 0))
			return true;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 +
		    (t.tv_nsec - t0.tv_nsec) / 1000000 >= timeout_ms)
			return false;
		usleep(poll_us);
	}
}

/* A queue of @size entries packed from @desc: the available ring right
 * after the descriptor table, the used ring at the next 4-byte boundary
 * (the least alignment §2.7 allows). */
static inline void vdrv_packed_layout(uint64_t desc, uint16_t size,
				      uint64_t *avail, uint64_t *used)
{
	*avail = desc + VIRTQ_DESC_BYTES(size);
	*used = (*avail + VIRTQ_AVAIL_BYTES(size) + 3) & ~3ull;
}

#endif
