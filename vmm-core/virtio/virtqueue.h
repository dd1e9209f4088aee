/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/virtio/virtqueue.h - the device side of a split virtqueue
 * (virtio 1.2 §2.7): descriptor chains read from guest memory and turned
 * into iovecs, indirect tables (§2.7.5.3), the used ring, and notification
 * suppression in both directions (§2.7.7, §2.7.10, VIRTIO_F_EVENT_IDX).
 *
 * The guest is hostile.  Every index, address and length read from the
 * rings is checked; the walk of a chain is bounded by the queue size, the
 * indirect table size and VIRTQ_MAX_CHAIN.  A ring the driver has corrupted
 * (a loop, an address outside RAM, a bad head index, an avail idx that
 * jumps by more than the queue size, a nested indirect table, a readable
 * descriptor after a writable one...) makes the queue *broken*: it stops
 * processing, calls the on_broken hook once (the transport then sets
 * VIRTIO_CONFIG_S_NEEDS_RESET, §2.1.2) and logs at a limited rate.
 *
 * Locking: a virtqueue has no lock of its own; every call is made with the
 * device lock held.  Memory ordering against the driver (other vCPUs) is
 * done here with acquire/release loads and stores and full fences.
 */
#ifndef VIVARIUM_VIRTQUEUE_H
#define VIVARIUM_VIRTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "../iov.h"

struct guest_mem;

/* Ring layout (§2.7.5, §2.7.6, §2.7.8); all fields little-endian. */
#define VIRTQ_DESC_F_NEXT	1
#define VIRTQ_DESC_F_WRITE	2
#define VIRTQ_DESC_F_INDIRECT	4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY	1

struct virtq_desc {
	uint64_t addr;		/* GPA */
	uint32_t len;		/* bytes */
	uint16_t flags;
	uint16_t next;
};

struct virtq_used_elem {
	uint32_t id;		/* head descriptor index */
	uint32_t len;		/* bytes written into device-writable buffers */
};

/* Byte sizes of the three areas for a queue of @size entries, with the
 * trailing used_event / avail_event words (present whether or not
 * VIRTIO_F_EVENT_IDX is negotiated, §2.7). */
#define VIRTQ_DESC_BYTES(size)	((uint64_t)(size) * 16)
#define VIRTQ_AVAIL_BYTES(size)	(6 + (uint64_t)(size) * 2)
#define VIRTQ_USED_BYTES(size)	(6 + (uint64_t)(size) * 8)

#define VIRTQ_MAX_SIZE		32768	/* §2.7: split queue size limit */
/* Most descriptors (direct and indirect together) one chain may have;
 * longer is treated as a hostile chain. */
#define VIRTQ_MAX_CHAIN		4096
/* §2.7.5: a chain is at most 2^32 bytes in total. */
#define VIRTQ_MAX_CHAIN_BYTES	(1ull << 32)

/* Feature bits of the ring (virtio 1.2 §6). */
#define VIRTIO_F_INDIRECT_DESC	28
#define VIRTIO_F_EVENT_IDX	29

/* Host views of a ready queue's three areas: derived from the GPAs by
 * virtq_remap() (guest RAM does not move while the VM exists), never state
 * of their own. */
struct virtq_map {
	struct virtq_desc *desc;
	uint16_t *avail;		/* flags, idx, ring[size], used_event */
	uint8_t *used;			/* flags, idx, ring[size], avail_event */
};

/*
 * A queue's state is plain data: the size, the GPAs of the descriptor
 * table and the available and used rings, the indices and flags (what a
 * snapshot saves, with no element in flight).  @map is derived from it.
 */
struct virtq {
	uint16_t size;			/* entries, a power of two */
	bool ready;			/* enabled, @map valid */
	bool broken;
	bool indirect;			/* VIRTIO_F_INDIRECT_DESC negotiated */
	bool event_idx;			/* VIRTIO_F_EVENT_IDX negotiated */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t last_avail_idx;	/* next avail entry to take */
	uint16_t used_idx;		/* next used entry to fill */
	uint16_t signalled_used;	/* used_idx at the last notification */
	bool signalled_used_valid;
	bool notify_enabled;		/* driver asked to notify (§2.7.10) */
	unsigned inflight;		/* popped, not yet pushed */
	uint32_t gen;			/* bumped by virtq_reset() */

	struct virtq_map map;		/* derived: virtq_remap() */
	/* Wiring, kept by virtq_reset(). */
	const struct guest_mem *mem;
	unsigned index;			/* queue number, for log messages */
	/* Called once when the queue becomes broken (device lock held). */
	void (*on_broken)(struct virtq *vq, void *opaque);
	void *opaque;
};

/* One descriptor chain taken from the available ring.  iov[0, out_num)
 * are device-readable (driver -> device), iov[out_num, out_num + in_num)
 * device-writable.  Zero-length descriptors produce no iovec. */
struct virtq_elem {
	uint16_t head;			/* descriptor index for the used ring */
	uint32_t gen;			/* the queue's gen when popped */
	unsigned out_num, in_num;
	uint64_t out_len, in_len;	/* bytes */
	struct iovec *iov;		/* malloc'd; virtq_elem_release() */
};

/* Reset @vq to the unconfigured state (size 0, not ready, not broken),
 * keeping @mem, @index and the hooks. */
void virtq_init(struct virtq *vq, const struct guest_mem *mem,
		unsigned index);
void virtq_reset(struct virtq *vq);

/*
 * virtq_enable - start using the rings at @desc_gpa, @avail_gpa and
 * @used_gpa for a queue of @size entries (a power of two, 1..32768),
 * with the ring features in @features (bit VIRTIO_F_INDIRECT_DESC,
 * VIRTIO_F_EVENT_IDX).  Checks the areas' alignment (16, 2, 4: §2.7) and
 * that each lies wholly in RAM.  Returns 0, or -EINVAL (the queue is
 * then broken, and on_broken has been called).
 */
int virtq_enable(struct virtq *vq, uint16_t size, uint64_t desc_gpa,
		 uint64_t avail_gpa, uint64_t used_gpa, uint64_t features);

/*
 * virtq_remap - recompute @vq->map from the size and GPAs, checked as
 * virtq_enable() checks them: what virtq_enable() does, and what a
 * snapshot's load calls after restoring the plain-data fields (which come
 * from a file: as untrusted as the guest).  A queue that is not ready gets
 * an empty map.  Returns 0, or -EINVAL: the queue is then broken and not
 * ready (on_broken called), its GPAs and indices kept for inspection.
 */
int virtq_remap(struct virtq *vq);

/*
 * virtq_pop - take the next available chain.  Returns 1 with @elem filled
 * (release it with virtq_elem_release() after virtq_push()), 0 if the
 * queue is empty or not ready, -EIO if the queue is (now) broken,
 * -ENOMEM.  Never blocks; the walk is bounded (VIRTQ_MAX_CHAIN).
 */
int virtq_pop(struct virtq *vq, struct virtq_elem *elem);
void virtq_elem_release(struct virtq_elem *elem);

/*
 * virtq_unpop - give back @elem, popped and not pushed: the next pop
 * returns its chain again (read afresh from the ring).  Only the most
 * recently popped element can go back; several go back in the reverse
 * order of their pops.  For a device that finds out after popping that
 * it cannot use the chain now (a full backend queue, too few receive
 * buffers for a frame).  Works on a broken queue too, so that nothing
 * stays counted in flight.  An element of an earlier gen (a reset since)
 * is ignored.  Release @elem afterwards as usual.
 */
void virtq_unpop(struct virtq *vq, const struct virtq_elem *elem);

/*
 * virtq_push - return @elem's chain to the driver through the used ring
 * with @written bytes written into its device-writable buffers (clamped to
 * elem->in_len), and publish the new used idx (§2.7.8: len before idx).
 * Does not notify: call virtq_should_notify() after one or more pushes.
 * Returns 0, or -EIO if the queue is broken or was reset (the element is
 * dropped).
 */
int virtq_push(struct virtq *vq, const struct virtq_elem *elem,
	       uint32_t written);

/*
 * virtq_should_notify - whether the driver wants a used buffer
 * notification for what was pushed since the last call that returned
 * true (§2.7.10: the NO_INTERRUPT flag, or used_event with EVENT_IDX).
 */
bool virtq_should_notify(struct virtq *vq);

/*
 * Available buffer notification suppression (§2.7.10 device side).
 * virtq_disable_notify() asks the driver not to notify (NO_NOTIFY flag;
 * with EVENT_IDX nothing: avail_event is simply left behind).
 * virtq_enable_notify() asks for a notification on the next new buffer
 * (flag cleared / avail_event = last_avail_idx) and returns true if
 * buffers arrived meanwhile, so that the caller polls again.
 */
void virtq_disable_notify(struct virtq *vq);
bool virtq_enable_notify(struct virtq *vq);

/* Mark the queue broken (device-detected protocol error); calls
 * on_broken the first time. */
void virtq_set_broken(struct virtq *vq);

/* ---- saved state ---------------------------------------------------------- */

/*
 * A queue's plain-data state as a GVariant of VIRTQ_STATE_TYPE: (size,
 * ready, broken, INDIRECT_DESC, EVENT_IDX, descriptor table GPA, available
 * ring GPA, used ring GPA, last_avail_idx, used idx, used idx at the last
 * notification, that value valid, driver notifications enabled).  Saved
 * with nothing in flight (vq->inflight 0: the transport checks).
 */
#define VIRTQ_STATE_TYPE "(qbbbbtttqqqbb)"
typedef struct _GVariant GVariant;
/* A new floating reference. */
GVariant *virtq_save(const struct virtq *vq);
/*
 * virtq_state_parse - check @state (of VIRTQ_STATE_TYPE, from a file: as
 * untrusted as the guest) against @vq and fill *@out with @vq (its wiring
 * and gen) carrying the saved state, its map recomputed as virtq_remap()
 * does (a ready queue's size is a power of two up to @max_size, its rings
 * aligned and wholly in RAM).  @vq and the on_broken hook are not touched;
 * the caller commits with *vq = *out.  Returns 0, or -EINVAL with one line
 * in @err prefixed by @who.
 */
int virtq_state_parse(const struct virtq *vq, GVariant *state,
		      uint16_t max_size, struct virtq *out, const char *who,
		      char *err, size_t errlen);

#endif
