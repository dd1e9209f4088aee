/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/block/qcow2.c - qcow2 images, versions 2 and 3, per QEMU's
 * docs/interop/qcow2.txt ("the spec"): reading and writing, cluster
 * allocation with refcounts, backing files (and changing them), compressed
 * clusters (zlib, zstd; read only), zero clusters, check and create.
 *
 * Not supported: writing images with internal snapshots (read-only open
 * works), encryption, external data files, extended L2 entries.
 *
 * Metadata ordering (a VMM killed, or a host losing power, at any moment
 * leaves an image that `qemu-img check` accepts: leaks possible, never a
 * reference to a cluster whose refcount is 0 or whose content is stale):
 *
 *  - L2 tables and refcount blocks are cached in memory (struct qcache) and
 *    written back by meta_flush(), on blk_flush(), on close, and when a
 *    dirty L2 table must leave the cache.  meta_flush() runs in three steps:
 *      1. write every dirty refcount block, then fdatasync: the refcount
 *         increments for new clusters, and the guest data already written
 *         into them, are durable before anything points at them;
 *      2. write every dirty L2 table and the dirty part of the L1 table,
 *         then fdatasync;
 *      3. apply the deferred refcount decrements of clusters that step 2
 *         unlinked (discard, zeroing, rewriting a compressed cluster), and
 *         write those refcount blocks.  A freed cluster is therefore never
 *         reused while an on-disk L2 entry may still point at it.
 *  - An allocating write writes the guest data (merged with the old
 *    content of the cluster) into the new cluster before it sets the L2
 *    entry in the cache; so the data precedes the entry on disk (step 1).
 *  - A new L2 table is written (zeroed) at allocation, before the L1 entry
 *    naming it can be written (step 2).
 *  - A new refcount block is written and synced before the refcount table
 *    entry naming it; a grown refcount table (with the blocks describing
 *    it) is written and synced before the header points at it, and the
 *    old table is freed only after that header write is synced.
 *  - The backing file (blk_set_backing) changes with one write of the
 *    header's first 512-byte sector, after a meta_flush and fdatasync and
 *    after the bytes that sector newly refers to (name, extensions past
 *    it) are written and synced where the old header has nothing
 *    (qcow2_set_backing()).
 *  - make_empty (blk_commit) clears L2 entries and frees the clusters
 *    through meta_flush as above; only then are they punched out of the
 *    file.
 *
 * Concurrency: one mutex (s->lock) guards all metadata.  Reads and writes
 * of clusters that are already allocated look up the mapping under the
 * lock and do their data I/O without it; s->data_io counts that I/O, and
 * deferred frees wait (in step 3) until it is zero so that a cluster never
 * changes owner under an in-flight request.  Allocating writes run under
 * the lock.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "block_int.h"
#include "../iov.h"
#include "log.h"

#define QCOW2_MAGIC 0x514649fbu
#define OFF_MASK UINT64_C(0x00fffffffffffe00)	/* L1/L2 entry bits 9-55 */
#define REFT_MASK UINT64_C(0xfffffffffffffe00)	/* refcount table entry */
#define OFLAG_COPIED (UINT64_C(1) << 63)
#define OFLAG_COMPRESSED (UINT64_C(1) << 62)
#define OFLAG_ZERO UINT64_C(1)
#define L2E_RESERVED UINT64_C(0x3f000000000001fe)	/* bits 1-8, 56-61 */

#define INCOMPAT_DIRTY (1u << 0)
#define INCOMPAT_CORRUPT (1u << 1)
#define INCOMPAT_DATA_FILE (1u << 2)
#define INCOMPAT_COMPRESSION (1u << 3)
#define INCOMPAT_EXTL2 (1u << 4)
#define COMPAT_LAZY_REFCOUNTS 1u

#define EXT_END 0x00000000u
#define EXT_BACKING_FORMAT 0xe2792acau

#define MAX_L1_BYTES (32u << 20)	/* QEMU's limits, so images move */
#define MAX_REFTABLE_BYTES (8u << 20)
#define MAX_SNAPSHOTS 65536u

enum ckind { K_UNALLOC, K_ZERO, K_NORMAL, K_SHARED, K_COMPRESSED };

struct qcache_ent {
	uint64_t off;		/* host offset of the cached cluster; 0 = free */
	uint8_t *data;		/* one cluster, as on disk (big-endian) */
	uint64_t used;		/* LRU tick */
	bool dirty;
	int pin;
};

struct qcache {
	unsigned n;
	uint64_t tick;
	struct qcache_ent *e;
};

struct qcow2 {
	pthread_mutex_t lock;
	unsigned version;
	unsigned cluster_bits;
	uint64_t cs;			/* cluster size, bytes */
	uint64_t size;			/* header's virtual size */
	uint64_t incompat, compat, autoclear;
	uint32_t header_length;
	uint8_t compression_type;	/* 0 zlib, 1 zstd */

	uint32_t l1_size;
	uint64_t l1_offset;
	uint64_t *l1;			/* host order */
	uint64_t l1_dirty_lo, l1_dirty_hi;	/* entries [lo, hi) */

	uint64_t reft_offset;
	uint32_t reft_clusters;
	uint64_t reft_entries;
	uint64_t *reft;			/* host order */
	unsigned refcount_order;
	unsigned rb_shift;		/* log2(refcount entries per block) */
	uint64_t refcount_max;

	uint32_t nb_snapshots;
	uint64_t snapshots_offset;

	char backing_name[1024];
	enum blk_format backing_fmt;	/* from the header extension */
	struct blk *backing;

	uint64_t file_end;		/* bytes: file size or allocated end */
	uint64_t free_hint;		/* no free cluster below this index */
	struct qcache l2c, rbc;
	/* A cluster of scratch, under lock: write_alloc's merge buffer, and
	 * new refcount blocks (so allocate before merging). */
	uint8_t *cbuf;

	struct { uint64_t cluster, count; } *frees;	/* deferred */
	size_t nfrees, frees_cap;
	unsigned data_io;		/* unlocked data I/O in flight */
	bool broken;			/* metadata found corrupt: no writes */
};

static inline uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static inline uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static inline uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline struct qcow2 *Q(struct blk *b)
{
	return b->opaque;
}

static void corrupt(struct qcow2 *s, struct blk *b, const char *what,
		    uint64_t v)
{
	vlog_ratelimited(LOG_ERROR, "'%s': qcow2 metadata corrupt: %s 0x%llx; "
			 "no more writes", b->path, what,
			 (unsigned long long)v);
	s->broken = true;
}

/* ---- the metadata caches ------------------------------------------- */

static int cache_init(struct qcache *c, unsigned n, uint64_t cs)
{
	c->n = n;
	c->tick = 0;
	c->e = calloc(n, sizeof(*c->e));
	if (!c->e)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		c->e[i].data = malloc(cs);
		if (!c->e[i].data)
			return -ENOMEM;
	}
	return 0;
}

static void cache_free(struct qcache *c)
{
	if (!c->e)
		return;
	for (unsigned i = 0; i < c->n; i++)
		free(c->e[i].data);
	free(c->e);
	c->e = NULL;
}

static int meta_flush(struct blk *b);

/* Write the dirty refcount blocks.  Returns how many, or -errno. */
static int rbc_writeback(struct blk *b)
{
	struct qcow2 *s = Q(b);
	int n = 0;

	for (unsigned i = 0; i < s->rbc.n; i++) {
		struct qcache_ent *e = &s->rbc.e[i];
		if (!e->dirty)
			continue;
		int r = blk_fd_pwrite(b->fd, e->data, s->cs, e->off);
		if (r < 0)
			return r;
		e->dirty = false;
		n++;
	}
	return n;
}

/*
 * The cache slot holding the cluster at @off, pinned (unpin with
 * e->pin--).  Reads it from disk, or zeroes it if @fresh.  Making room may
 * write back a dirty entry (for the L2 cache: a whole meta_flush).
 */
static int cache_get(struct blk *b, struct qcache *c, uint64_t off,
		     bool fresh, struct qcache_ent **out)
{
	struct qcow2 *s = Q(b);
	struct qcache_ent *victim = NULL;

	for (unsigned i = 0; i < c->n; i++) {
		struct qcache_ent *e = &c->e[i];
		if (e->off == off) {
			if (fresh)
				memset(e->data, 0, s->cs);
			e->used = ++c->tick;
			e->pin++;
			*out = e;
			return 0;
		}
		if (!e->pin && (!victim || e->used < victim->used))
			victim = e;
	}
	if (!victim)
		return -EBUSY;	/* cannot happen: at most 2 pinned */
	if (victim->dirty) {
		int r = c == &s->l2c ? meta_flush(b)
				     : blk_fd_pwrite(b->fd, victim->data, s->cs,
						     victim->off);
		if (r < 0)
			return r;
		victim->dirty = false;
	}
	victim->off = 0;
	if (fresh) {
		memset(victim->data, 0, s->cs);
	} else {
		int r = blk_fd_pread(b->fd, victim->data, s->cs, off);
		if (r < 0)
			return r;
	}
	victim->off = off;
	victim->used = ++c->tick;
	victim->pin = 1;
	*out = victim;
	return 0;
}

/* ---- refcounts (spec: "Host cluster management") -------------------- */

static uint64_t rb_get(const struct qcow2 *s, const uint8_t *blk, uint64_t i)
{
	switch (s->refcount_order) {
	case 3:
		return blk[i];
	case 4:
		return be16(blk + 2 * i);
	case 5:
		return be32(blk + 4 * i);
	case 6:
		return be64(blk + 8 * i);
	default: {
		unsigned bits = 1u << s->refcount_order;
		uint64_t bit = i * bits;
		return (blk[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
	}
	}
}

static void rb_set(const struct qcow2 *s, uint8_t *blk, uint64_t i,
		   uint64_t v)
{
	switch (s->refcount_order) {
	case 3:
		blk[i] = (uint8_t)v;
		break;
	case 4:
		put_be16(blk + 2 * i, (uint16_t)v);
		break;
	case 5:
		put_be32(blk + 4 * i, (uint32_t)v);
		break;
	case 6:
		put_be64(blk + 8 * i, v);
		break;
	default: {
		unsigned bits = 1u << s->refcount_order;
		uint64_t bit = i * bits;
		uint8_t mask = (uint8_t)(((1u << bits) - 1) << (bit % 8));
		blk[bit / 8] = (uint8_t)((blk[bit / 8] & ~mask) |
					 ((v << (bit % 8)) & mask));
	}
	}
}

static int get_refcount(struct blk *b, uint64_t cluster, uint64_t *rc)
{
	struct qcow2 *s = Q(b);
	uint64_t ti = cluster >> s->rb_shift;
	struct qcache_ent *e;

	*rc = 0;
	if (ti >= s->reft_entries || !(s->reft[ti] & REFT_MASK))
		return 0;
	int r = cache_get(b, &s->rbc, s->reft[ti] & REFT_MASK, false, &e);
	if (r < 0)
		return r;
	*rc = rb_get(s, e->data,
		     cluster & ((UINT64_C(1) << s->rb_shift) - 1));
	e->pin--;
	return 0;
}

/* Add @delta to a cluster's refcount; its refcount block must exist. */
static int update_refcount(struct blk *b, uint64_t cluster, int delta)
{
	struct qcow2 *s = Q(b);
	uint64_t ti = cluster >> s->rb_shift;
	uint64_t i = cluster & ((UINT64_C(1) << s->rb_shift) - 1);
	struct qcache_ent *e;

	if (ti >= s->reft_entries || !(s->reft[ti] & REFT_MASK)) {
		corrupt(s, b, "refcount of unmapped cluster", cluster);
		return -EIO;
	}
	int r = cache_get(b, &s->rbc, s->reft[ti] & REFT_MASK, false, &e);
	if (r < 0)
		return r;
	uint64_t v = rb_get(s, e->data, i);
	if ((delta < 0 && v == 0) || (delta > 0 && v >= s->refcount_max)) {
		e->pin--;
		corrupt(s, b, "refcount out of range for cluster", cluster);
		return -EIO;
	}
	v = delta < 0 ? v - 1 : v + 1;
	rb_set(s, e->data, i, v);
	e->dirty = true;
	e->pin--;
	if (v == 0 && cluster < s->free_hint)
		s->free_hint = cluster;
	return 0;
}

/* Clusters the allocator must never hand out even if their refcount
 * says free (a corrupt image): the header, L1 and refcount tables. */
static bool is_fixed_metadata(const struct qcow2 *s, uint64_t c)
{
	uint64_t l1c = s->l1_offset >> s->cluster_bits;
	uint64_t l1n = ((uint64_t)s->l1_size * 8 + s->cs - 1) >> s->cluster_bits;
	uint64_t rtc = s->reft_offset >> s->cluster_bits;

	return c == 0 || (c >= l1c && c < l1c + l1n) ||
	       (c >= rtc && c < rtc + s->reft_clusters);
}

/* A new, self-describing refcount block for table index @ti at the free
 * cluster @c (which lies in the range the block covers). */
static int new_refblock(struct blk *b, uint64_t ti, uint64_t c)
{
	struct qcow2 *s = Q(b);
	uint8_t ent[8];
	int r;

	memset(s->cbuf, 0, s->cs);
	rb_set(s, s->cbuf, c & ((UINT64_C(1) << s->rb_shift) - 1), 1);
	r = blk_fd_pwrite(b->fd, s->cbuf, s->cs, c << s->cluster_bits);
	if (r < 0)
		return r;
	if (fdatasync(b->fd) < 0)
		return -errno;
	put_be64(ent, c << s->cluster_bits);
	r = blk_fd_pwrite(b->fd, ent, 8, s->reft_offset + ti * 8);
	if (r < 0)
		return r;
	s->reft[ti] = c << s->cluster_bits;
	if (((c + 1) << s->cluster_bits) > s->file_end)
		s->file_end = (c + 1) << s->cluster_bits;
	return 0;
}

/* Move the refcount table to the end of the file with room for index
 * @need_ti (see the ordering notes at the top). */
static int grow_reftable(struct blk *b, uint64_t need_ti)
{
	struct qcow2 *s = Q(b);
	uint64_t P = (s->file_end + s->cs - 1) >> s->cluster_bits;
	uint64_t entries = s->reft_entries * 2, T, B = 0;
	uint64_t per_cluster = s->cs / 8;
	int r;

	if (entries <= need_ti)
		entries = need_ti + 1;
	for (int iter = 0;; iter++) {
		T = (entries + per_cluster - 1) / per_cluster;
		for (;;) {
			uint64_t end = P + T + B, nb = 0;
			for (uint64_t ti = P >> s->rb_shift;
			     ti <= (end - 1) >> s->rb_shift; ti++)
				if (ti >= s->reft_entries ||
				    !(s->reft[ti] & REFT_MASK))
					nb++;
			if (nb == B)
				break;
			B = nb;
		}
		uint64_t maxti = (P + T + B - 1) >> s->rb_shift;
		if (maxti < entries || iter > 8)
			break;
		entries = maxti + 1;
	}
	if (T * s->cs > MAX_REFTABLE_BYTES) {
		vlog_ratelimited(LOG_ERROR, "'%s': qcow2 refcount table would "
				 "exceed %u MiB", b->path,
				 MAX_REFTABLE_BYTES >> 20);
		return -EFBIG;
	}
	entries = T * per_cluster;
	uint64_t *nt = calloc(entries, 8);
	uint8_t *disk = calloc(T, s->cs);
	if (!nt || !disk) {
		free(nt);
		free(disk);
		return -ENOMEM;
	}
	memcpy(nt, s->reft, s->reft_entries * 8);
	/* The new refcount blocks, after the table. */
	uint64_t end = P + T + B, next = P + T;
	for (uint64_t ti = P >> s->rb_shift; ti <= (end - 1) >> s->rb_shift;
	     ti++) {
		if (nt[ti] & REFT_MASK)
			continue;
		memset(s->cbuf, 0, s->cs);
		uint64_t first = ti << s->rb_shift;
		uint64_t last = first + (UINT64_C(1) << s->rb_shift);
		for (uint64_t c = first < P ? P : first; c < end && c < last;
		     c++)
			rb_set(s, s->cbuf, c - first, 1);
		r = blk_fd_pwrite(b->fd, s->cbuf, s->cs, next << s->cluster_bits);
		if (r < 0)
			goto out;
		nt[ti] = next << s->cluster_bits;
		next++;
	}
	/* Clusters of the new area covered by blocks that already exist. */
	for (uint64_t c = P; c < end; c++) {
		uint64_t ti = c >> s->rb_shift;
		if (ti < s->reft_entries && (s->reft[ti] & REFT_MASK)) {
			r = update_refcount(b, c, +1);
			if (r < 0)
				goto out;
		}
	}
	r = rbc_writeback(b);
	if (r < 0)
		goto out;
	for (uint64_t i = 0; i < entries; i++)
		put_be64(disk + i * 8, nt[i]);
	r = blk_fd_pwrite(b->fd, disk, T * s->cs, P << s->cluster_bits);
	if (r < 0)
		goto out;
	if (fdatasync(b->fd) < 0) {
		r = -errno;
		goto out;
	}
	uint8_t hdr[12];
	put_be64(hdr, P << s->cluster_bits);
	put_be32(hdr + 8, (uint32_t)T);
	r = blk_fd_pwrite(b->fd, hdr, 12, 48);
	if (r < 0)
		goto out;
	if (fdatasync(b->fd) < 0) {
		r = -errno;
		goto out;
	}
	uint64_t old_off = s->reft_offset, old_n = s->reft_clusters;
	free(s->reft);
	s->reft = nt;
	nt = NULL;
	s->reft_entries = entries;
	s->reft_offset = P << s->cluster_bits;
	s->reft_clusters = (uint32_t)T;
	if ((end << s->cluster_bits) > s->file_end)
		s->file_end = end << s->cluster_bits;
	/* Nothing names the old table any more, durably: free it. */
	for (uint64_t i = 0; i < old_n; i++) {
		r = update_refcount(b, (old_off >> s->cluster_bits) + i, -1);
		if (r < 0)
			goto out;
	}
	r = 0;
out:
	free(nt);
	free(disk);
	return r;
}

/* Allocate @n contiguous clusters (refcount 1); *@out = host offset. */
static int alloc_clusters(struct blk *b, uint64_t n, uint64_t *out)
{
	struct qcow2 *s = Q(b);
	uint64_t limit = UINT64_C(1) << (56 - s->cluster_bits);

	for (int guard = 0; guard < 64; guard++) {
		uint64_t start = s->free_hint, run = 0, c = s->free_hint;
		while (run < n) {
			uint64_t rc;
			if (c >= limit)
				return -ENOSPC;
			int r = get_refcount(b, c, &rc);
			if (r < 0)
				return r;
			if (rc == 0 && !is_fixed_metadata(s, c)) {
				if (!run)
					start = c;
				run++;
			} else {
				run = 0;
				if (c == s->free_hint)
					s->free_hint = c + 1;
			}
			c++;
		}
		bool again = false;
		for (uint64_t i = start; i < start + n && !again; i++) {
			uint64_t ti = i >> s->rb_shift;
			int r = 0;
			if (ti >= s->reft_entries) {
				r = grow_reftable(b, ti);
				again = true;
			} else if (!(s->reft[ti] & REFT_MASK)) {
				r = new_refblock(b, ti, i);
				again = true;
			}
			if (r < 0)
				return r;
		}
		if (again)
			continue;
		for (uint64_t i = start; i < start + n; i++) {
			int r = update_refcount(b, i, +1);
			if (r < 0)
				return r;
		}
		s->free_hint = start + n;
		if (((start + n) << s->cluster_bits) > s->file_end)
			s->file_end = (start + n) << s->cluster_bits;
		*out = start << s->cluster_bits;
		return 0;
	}
	return -EIO;
}

/* Host clusters a compressed L2 entry occupies. */
static void compressed_span(const struct qcow2 *s, uint64_t e,
			    uint64_t *off, uint64_t *len)
{
	unsigned x = 62 - (s->cluster_bits - 8);
	uint64_t coff = e & ((UINT64_C(1) << x) - 1);
	uint64_t nsec = ((e & ~OFLAG_COPIED & ~OFLAG_COMPRESSED) >> x) + 1;

	*off = coff;
	*len = nsec * 512 - (coff & 511);
}

/* Free later (meta_flush step 3) the host clusters behind an L2 entry. */
static int defer_free_entry(struct blk *b, uint64_t e)
{
	struct qcow2 *s = Q(b);
	uint64_t first, count;

	if (e & OFLAG_COMPRESSED) {
		uint64_t off, len;
		compressed_span(s, e, &off, &len);
		first = off >> s->cluster_bits;
		count = ((off + len - 1) >> s->cluster_bits) - first + 1;
	} else {
		if (!(e & OFF_MASK))
			return 0;
		first = (e & OFF_MASK) >> s->cluster_bits;
		count = 1;
	}
	if (s->nfrees == s->frees_cap) {
		size_t cap = s->frees_cap ? s->frees_cap * 2 : 64;
		void *p = realloc(s->frees, cap * sizeof(*s->frees));
		if (!p)
			return -ENOMEM;	/* a leak, not corruption */
		s->frees = p;
		s->frees_cap = cap;
	}
	s->frees[s->nfrees].cluster = first;
	s->frees[s->nfrees].count = count;
	s->nfrees++;
	return 0;
}

static int write_l1(struct blk *b)
{
	struct qcow2 *s = Q(b);
	uint64_t lo = s->l1_dirty_lo, hi = s->l1_dirty_hi;

	if (lo >= hi)
		return 0;
	uint8_t *buf = malloc((hi - lo) * 8);
	if (!buf)
		return -ENOMEM;
	for (uint64_t i = lo; i < hi; i++)
		put_be64(buf + (i - lo) * 8, s->l1[i]);
	int r = blk_fd_pwrite(b->fd, buf, (hi - lo) * 8, s->l1_offset + lo * 8);
	free(buf);
	if (r == 0) {
		s->l1_dirty_lo = UINT64_MAX;
		s->l1_dirty_hi = 0;
	}
	return r;
}

static void l1_set(struct qcow2 *s, uint64_t i, uint64_t v)
{
	s->l1[i] = v;
	if (i < s->l1_dirty_lo)
		s->l1_dirty_lo = i;
	if (i + 1 > s->l1_dirty_hi)
		s->l1_dirty_hi = i + 1;
}

/* The three steps of the ordering notes at the top.  Under s->lock. */
static int meta_flush(struct blk *b)
{
	struct qcow2 *s = Q(b);
	bool l2_dirty = s->l1_dirty_lo < s->l1_dirty_hi;
	int r;

	for (unsigned i = 0; i < s->l2c.n; i++)
		l2_dirty |= s->l2c.e[i].dirty;
	r = rbc_writeback(b);
	if (r < 0)
		return r;
	if (l2_dirty) {
		if (fdatasync(b->fd) < 0)
			return -errno;
		for (unsigned i = 0; i < s->l2c.n; i++) {
			struct qcache_ent *e = &s->l2c.e[i];
			if (!e->dirty)
				continue;
			r = blk_fd_pwrite(b->fd, e->data, s->cs, e->off);
			if (r < 0)
				return r;
			e->dirty = false;
		}
		r = write_l1(b);
		if (r < 0)
			return r;
		if (fdatasync(b->fd) < 0)
			return -errno;
	}
	if (s->nfrees && __atomic_load_n(&s->data_io, __ATOMIC_ACQUIRE) == 0) {
		size_t n = s->nfrees;
		s->nfrees = 0;
		for (size_t i = 0; i < n; i++)
			for (uint64_t c = 0; c < s->frees[i].count; c++) {
				r = update_refcount(b, s->frees[i].cluster + c,
						    -1);
				if (r < 0)
					return r;
			}
		r = rbc_writeback(b);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- mapping lookups ------------------------------------------------- */

/*
 * The L2 table for L1 index @l1i, pinned in the cache.  Returns 1 if there
 * is none and !@alloc; with @alloc, allocates and writes a zeroed table.
 */
static int l2_get(struct blk *b, uint64_t l1i, bool alloc,
		  struct qcache_ent **out)
{
	struct qcow2 *s = Q(b);
	uint64_t l1e = s->l1[l1i], off = l1e & OFF_MASK;
	int r;

	if (!off) {
		if (!alloc)
			return 1;
		r = alloc_clusters(b, 1, &off);
		if (r < 0)
			return r;
		r = cache_get(b, &s->l2c, off, true, out);
		if (r < 0)
			return r;
		r = blk_fd_pwrite(b->fd, (*out)->data, s->cs, off);
		if (r < 0) {
			(*out)->pin--;
			(*out)->off = 0;
			return r;
		}
		l1_set(s, l1i, off | OFLAG_COPIED);
		return 0;
	}
	if (alloc && !(l1e & OFLAG_COPIED)) {
		uint64_t rc;
		r = get_refcount(b, off >> s->cluster_bits, &rc);
		if (r < 0)
			return r;
		if (rc != 1) {
			corrupt(s, b, "shared L2 table at", off);
			return -EIO;
		}
		l1_set(s, l1i, off | OFLAG_COPIED);
	}
	return cache_get(b, &s->l2c, off, false, out);
}

static enum ckind entry_kind(const struct qcow2 *s, uint64_t e)
{
	if (e & OFLAG_COMPRESSED)
		return K_COMPRESSED;
	if ((e & OFLAG_ZERO) && s->version >= 3)
		return K_ZERO;
	if (!(e & OFF_MASK))
		return K_UNALLOC;
	return (e & OFLAG_COPIED) ? K_NORMAL : K_SHARED;
}

/* Is a standard L2 entry's host offset usable?  (Not for compressed.) */
static bool entry_ok(const struct qcow2 *s, uint64_t e)
{
	uint64_t off = e & OFF_MASK;

	if (e & L2E_RESERVED)
		return false;
	if ((e & OFLAG_ZERO) && s->version < 3)
		return false;
	if (!off)
		return !(e & OFLAG_COPIED) || (e & OFLAG_ZERO);
	return !(off & (s->cs - 1)) && off < s->file_end;
}

/*
 * How [@off, @off + @maxlen) starts: the L2 entry of its first cluster,
 * its kind, and *@n, the length of the run of clusters (within one L2
 * table) of the same kind; for K_NORMAL/K_SHARED also contiguous on the
 * host.  Under s->lock.  -EIO for a corrupt entry.
 */
static int lookup(struct blk *b, uint64_t off, uint64_t maxlen,
		  uint64_t *entry, enum ckind *kind, uint64_t *n)
{
	struct qcow2 *s = Q(b);
	uint64_t l2_entries = s->cs / 8;
	uint64_t gc = off >> s->cluster_bits;
	uint64_t l1i = gc / l2_entries, l2i = gc % l2_entries;
	uint64_t in = off & (s->cs - 1);
	uint64_t room = (l2_entries - l2i) * s->cs - in;
	struct qcache_ent *t;

	if (maxlen > room)
		maxlen = room;
	if (l1i >= s->l1_size)
		return -EIO;
	int r = l2_get(b, l1i, false, &t);
	if (r < 0)
		return r;
	if (r == 1) {
		*entry = 0;
		*kind = K_UNALLOC;
		*n = maxlen;
		return 0;
	}
	uint64_t e = be64(t->data + l2i * 8);
	enum ckind k = entry_kind(s, e);
	if (k != K_COMPRESSED && !entry_ok(s, e)) {
		t->pin--;
		corrupt(s, b, "L2 entry", e);
		return -EIO;
	}
	uint64_t len = s->cs - in;
	if (k != K_COMPRESSED) {
		for (uint64_t i = l2i + 1; len < maxlen && i < l2_entries; i++) {
			uint64_t e2 = be64(t->data + i * 8);
			if (entry_kind(s, e2) != k || !entry_ok(s, e2))
				break;
			if ((k == K_NORMAL || k == K_SHARED) &&
			    (e2 & OFF_MASK) != (e & OFF_MASK) + (i - l2i) * s->cs)
				break;
			len += s->cs;
		}
	}
	t->pin--;
	*entry = e;
	*kind = k;
	*n = len < maxlen ? len : maxlen;
	return 0;
}

/* ---- data paths ------------------------------------------------------ */

/* Decompress the compressed cluster @e into @out (one cluster). */
static int read_compressed(struct blk *b, uint64_t e, uint8_t *out)
{
	struct qcow2 *s = Q(b);
	uint64_t off, len;
	int ret = -EIO;

	compressed_span(s, e, &off, &len);
	if (off >= s->file_end)
		return -EIO;
	uint8_t *in = malloc(len);
	if (!in)
		return -ENOMEM;
	int r = blk_fd_pread(b->fd, in, len, off);
	if (r < 0) {
		free(in);
		return r;
	}
	if (s->compression_type == 0) {
		z_stream z = { 0 };
		if (inflateInit2(&z, -15) != Z_OK) {
			free(in);
			return -ENOMEM;
		}
		z.next_in = in;
		z.avail_in = (uInt)len;
		z.next_out = out;
		z.avail_out = (uInt)s->cs;
		int zr = inflate(&z, Z_FINISH);
		/* Sector padding may follow the stream, or it may end early
		 * at the sector boundary: a full cluster out is what counts. */
		if ((zr == Z_STREAM_END || zr == Z_BUF_ERROR) &&
		    z.avail_out == 0)
			ret = 0;
		inflateEnd(&z);
	} else {
		ZSTD_DCtx *dc = ZSTD_createDCtx();
		ZSTD_inBuffer ib = { in, len, 0 };
		ZSTD_outBuffer ob = { out, s->cs, 0 };
		if (!dc) {
			free(in);
			return -ENOMEM;
		}
		while (ob.pos < ob.size && ib.pos < ib.size) {
			size_t zr = ZSTD_decompressStream(dc, &ob, &ib);
			if (ZSTD_isError(zr))
				break;
			if (zr == 0 && ob.pos < ob.size)
				break;	/* frame ended short */
		}
		if (ob.pos == ob.size)
			ret = 0;
		ZSTD_freeDCtx(dc);
	}
	free(in);
	return ret;
}

/* Read guest range [@off, @off+@len) of an unallocated run: backing file
 * where it reaches, zeroes past it. */
static int read_backing(struct blk *b, uint64_t off, const struct iovec *iov,
			int iovcnt, uint64_t skip, uint64_t len)
{
	struct qcow2 *s = Q(b);
	uint64_t blen = s->backing ? blk_length(s->backing) : 0;
	uint64_t have = off < blen ? blen - off : 0;

	if (have > len)
		have = len;
	if (have) {
		struct iovec *v = malloc(sizeof(*v) * (size_t)iovcnt);
		if (!v)
			return -ENOMEM;
		int n = iov_slice(iov, (unsigned)iovcnt, skip, have, v, (unsigned)iovcnt);
		int r = blk_preadv(s->backing, off, v, n);
		free(v);
		if (r < 0)
			return r;
	}
	if (have < len)
		iov_memset0(iov, (unsigned)iovcnt, skip + have, len - have);
	return 0;
}

static int qcow2_preadv(struct blk *b, uint64_t off, const struct iovec *iov,
			int iovcnt, uint64_t len)
{
	struct qcow2 *s = Q(b);
	uint64_t pos = 0;
	struct iovec *v = malloc(sizeof(*v) * (size_t)iovcnt);
	uint8_t *cbuf = NULL;
	int r = 0;

	if (!v)
		return -ENOMEM;
	while (pos < len && r == 0) {
		uint64_t cur = off + pos, e, n = 0;
		enum ckind k = K_UNALLOC;

		pthread_mutex_lock(&s->lock);
		r = lookup(b, cur, len - pos, &e, &k, &n);
		if (r == 0 && (k == K_NORMAL || k == K_SHARED ||
			       k == K_COMPRESSED))
			__atomic_add_fetch(&s->data_io, 1, __ATOMIC_ACQ_REL);
		pthread_mutex_unlock(&s->lock);
		if (r < 0)
			break;
		switch (k) {
		case K_NORMAL:
		case K_SHARED: {
			int cnt = iov_slice(iov, (unsigned)iovcnt, pos, n, v, (unsigned)iovcnt);
			r = blk_fd_preadv(b->fd, v, cnt,
					  (e & OFF_MASK) + (cur & (s->cs - 1)));
			__atomic_sub_fetch(&s->data_io, 1, __ATOMIC_ACQ_REL);
			break;
		}
		case K_COMPRESSED:
			if (!cbuf)
				cbuf = malloc(s->cs);
			r = cbuf ? read_compressed(b, e, cbuf) : -ENOMEM;
			__atomic_sub_fetch(&s->data_io, 1, __ATOMIC_ACQ_REL);
			if (r == 0)
				iov_from_buf(iov, (unsigned)iovcnt, pos,
						 cbuf + (cur & (s->cs - 1)), n);
			break;
		case K_ZERO:
			iov_memset0(iov, (unsigned)iovcnt, pos, n);
			break;
		case K_UNALLOC:
			r = read_backing(b, cur, iov, iovcnt, pos, n);
			break;
		}
		pos += n;
	}
	free(v);
	free(cbuf);
	return r;
}

/* The current content of the guest cluster at @gc_off (entry @e, kind @k)
 * into @buf.  Under s->lock. */
static int cluster_content(struct blk *b, uint64_t gc_off, uint64_t e,
			   enum ckind k, uint8_t *buf)
{
	struct qcow2 *s = Q(b);
	struct iovec v = { buf, s->cs };

	switch (k) {
	case K_ZERO:
		memset(buf, 0, s->cs);
		return 0;
	case K_UNALLOC:
		return read_backing(b, gc_off, &v, 1, 0, s->cs);
	case K_COMPRESSED:
		return read_compressed(b, e, buf);
	default:
		return blk_fd_pread(b->fd, buf, s->cs, e & OFF_MASK);
	}
}

/*
 * Write [@cur, @cur+@n) (within one cluster) into a cluster that is not a
 * plain allocated one: allocate (or reuse a preallocated zero cluster),
 * write the merged content, then point the L2 entry at it.  Under lock.
 */
static int write_alloc(struct blk *b, uint64_t cur, const struct iovec *iov,
		       int iovcnt, uint64_t skip, uint64_t n)
{
	struct qcow2 *s = Q(b);
	uint64_t l2_entries = s->cs / 8, gc = cur >> s->cluster_bits;
	uint64_t l1i = gc / l2_entries, l2i = gc % l2_entries;
	uint64_t base = gc << s->cluster_bits, in = cur - base;
	struct qcache_ent *t;
	int r;

	r = l2_get(b, l1i, true, &t);
	if (r < 0)
		return r;
	uint64_t e = be64(t->data + l2i * 8);
	enum ckind k = entry_kind(s, e);
	if (k == K_NORMAL) {
		/* Raced with another allocating write: just write. */
		t->pin--;
		struct iovec *v = malloc(sizeof(*v) * (size_t)iovcnt);
		if (!v)
			return -ENOMEM;
		int cnt = iov_slice(iov, (unsigned)iovcnt, skip, n, v, (unsigned)iovcnt);
		r = blk_fd_pwritev(b->fd, v, cnt, (e & OFF_MASK) + in);
		free(v);
		return r;
	}
	if (k != K_COMPRESSED && !entry_ok(s, e)) {
		t->pin--;
		corrupt(s, b, "L2 entry", e);
		return -EIO;
	}
	bool reuse = k == K_ZERO && (e & OFF_MASK) && (e & OFLAG_COPIED);
	uint64_t host = e & OFF_MASK;
	/* Allocate first: a new refcount block is built in s->cbuf. */
	if (!reuse) {
		r = alloc_clusters(b, 1, &host);
		if (r < 0)
			goto out;
	}
	if (n < s->cs) {
		r = cluster_content(b, base, e, k, s->cbuf);
		if (r < 0)
			goto out;	/* the new cluster leaks */
	}
	iov_to_buf(iov, (unsigned)iovcnt, skip, s->cbuf + in, n);
	r = blk_fd_pwrite(b->fd, s->cbuf, s->cs, host);
	if (r < 0)
		goto out;	/* the new cluster leaks */
	put_be64(t->data + l2i * 8, host | OFLAG_COPIED);
	t->dirty = true;
	if (!reuse && (k == K_COMPRESSED || k == K_SHARED || k == K_ZERO))
		r = defer_free_entry(b, e);
out:
	t->pin--;
	return r;
}

static int qcow2_pwritev(struct blk *b, uint64_t off, const struct iovec *iov,
			 int iovcnt, uint64_t len)
{
	struct qcow2 *s = Q(b);
	uint64_t pos = 0;
	struct iovec *v = malloc(sizeof(*v) * (size_t)iovcnt);
	int r = 0;

	if (!v)
		return -ENOMEM;
	while (pos < len && r == 0) {
		uint64_t cur = off + pos, e, n = 0;
		enum ckind k;

		pthread_mutex_lock(&s->lock);
		if (s->broken) {
			pthread_mutex_unlock(&s->lock);
			r = -EIO;
			break;
		}
		r = lookup(b, cur, len - pos, &e, &k, &n);
		if (r == 0 && k == K_NORMAL) {
			__atomic_add_fetch(&s->data_io, 1, __ATOMIC_ACQ_REL);
			pthread_mutex_unlock(&s->lock);
			int cnt = iov_slice(iov, (unsigned)iovcnt, pos, n, v, (unsigned)iovcnt);
			r = blk_fd_pwritev(b->fd, v, cnt,
					   (e & OFF_MASK) + (cur & (s->cs - 1)));
			__atomic_sub_fetch(&s->data_io, 1, __ATOMIC_ACQ_REL);
		} else {
			if (r == 0) {
				n = s->cs - (cur & (s->cs - 1));
				if (n > len - pos)
					n = len - pos;
				r = write_alloc(b, cur, iov, iovcnt, pos, n);
			}
			pthread_mutex_unlock(&s->lock);
		}
		pos += n;
	}
	free(v);
	return r;
}

static int qcow2_flush(struct blk *b)
{
	struct qcow2 *s = Q(b);
	int r;

	pthread_mutex_lock(&s->lock);
	r = meta_flush(b);
	pthread_mutex_unlock(&s->lock);
	if (r == 0 && fdatasync(b->fd) < 0)
		r = -errno;
	return r;
}

/* Make whole clusters [@off, @off+@len) read as zero (or, for a discard,
 * anything stable).  Returns 1 where the format cannot do it without
 * writing data (the caller then writes zeroes). */
static int zero_cluster(struct blk *b, uint64_t gc, bool discard,
			bool may_unmap)
{
	struct qcow2 *s = Q(b);
	uint64_t l2_entries = s->cs / 8;
	uint64_t l1i = gc / l2_entries, l2i = gc % l2_entries;
	bool v3 = s->version >= 3;
	struct qcache_ent *t;
	uint64_t ne;
	int r;

	/* The entry we want: unallocated reads zero without a backing file,
	 * a zero flag hides the backing file (v3 only). */
	if (!s->backing)
		ne = 0;
	else if (v3)
		ne = OFLAG_ZERO;
	else
		return discard ? 0 : 1;
	r = l2_get(b, l1i, ne != 0, &t);
	if (r < 0)
		return r;
	if (r == 1)
		return 0;	/* no L2 table, no backing file: reads zero */
	uint64_t e = be64(t->data + l2i * 8);
	enum ckind k = entry_kind(s, e);
	if (k != K_COMPRESSED && !entry_ok(s, e)) {
		t->pin--;
		corrupt(s, b, "L2 entry", e);
		return -EIO;
	}
	if (!discard && !may_unmap && k == K_NORMAL) {
		/* Keep the allocation: v3 preallocated zero cluster. */
		t->pin--;
		if (!v3)
			return 1;
		ne = e | OFLAG_ZERO;
		put_be64(t->data + l2i * 8, ne);
		t->dirty = true;
		return 0;
	}
	if (e != ne) {
		put_be64(t->data + l2i * 8, ne);
		t->dirty = true;
		if (k != K_UNALLOC)
			r = defer_free_entry(b, e);
	}
	t->pin--;
	return r;
}

static int zero_range(struct blk *b, uint64_t off, uint64_t len,
		      bool discard, bool may_unmap)
{
	struct qcow2 *s = Q(b);
	uint64_t end = off + len, cur = off;
	uint8_t *z = NULL;
	int r = 0;

	while (cur < end && r == 0) {
		uint64_t cend = (cur | (s->cs - 1)) + 1;
		uint64_t n = (cend < end ? cend : end) - cur;
		/* A whole cluster, or all of the disk's last one. */
		bool whole = !(cur & (s->cs - 1)) &&
			     (n == s->cs || cur + n == b->length);
		if (whole) {
			pthread_mutex_lock(&s->lock);
			r = s->broken ? -EIO
				      : zero_cluster(b, cur >> s->cluster_bits,
						     discard, may_unmap);
			pthread_mutex_unlock(&s->lock);
		} else {
			r = discard ? 0 : 1;	/* discard: a hint, skip */
		}
		if (r == 1) {
			if (!z && !(z = calloc(1, s->cs)))
				return -ENOMEM;
			r = blk_pwrite(b, cur, z, (size_t)n);
		}
		cur += n;
	}
	free(z);
	return r;
}

static int qcow2_discard(struct blk *b, uint64_t off, uint64_t len)
{
	return zero_range(b, off, len, true, true);
}

static int qcow2_write_zeroes(struct blk *b, uint64_t off, uint64_t len,
			      bool may_unmap)
{
	return zero_range(b, off, len, false, may_unmap);
}

static int qcow2_block_status(struct blk *b, uint64_t off, uint64_t len,
			      uint64_t *pnum, bool *zero)
{
	struct qcow2 *s = Q(b);
	uint64_t e, n;
	enum ckind k;
	int r;

	pthread_mutex_lock(&s->lock);
	r = lookup(b, off, len, &e, &k, &n);
	pthread_mutex_unlock(&s->lock);
	if (r < 0)
		return r;
	*pnum = n;
	*zero = k == K_ZERO;
	if (k == K_UNALLOC) {
		uint64_t blen = s->backing ? blk_length(s->backing) : 0;
		if (off >= blen) {
			*zero = true;
		} else {
			uint64_t bn;
			if (n > blen - off)
				n = blen - off;
			r = blk_block_status(s->backing, off, n, &bn, zero);
			if (r < 0)
				return r;
			*pnum = bn;
		}
	}
	return 0;
}

/* ---- open ------------------------------------------------------------ */

static void qcow2_close(struct blk *b)
{
	struct qcow2 *s = Q(b);

	if (!s)
		return;
	blk_close(s->backing);
	cache_free(&s->l2c);
	cache_free(&s->rbc);
	free(s->l1);
	free(s->reft);
	free(s->cbuf);
	free(s->frees);
	pthread_mutex_destroy(&s->lock);
	free(s);
	b->opaque = NULL;
}

static int parse_extensions(struct blk *b, const uint8_t *hdr, uint64_t start,
			    uint64_t end, char *err, size_t errlen)
{
	struct qcow2 *s = Q(b);
	uint64_t pos = start;

	while (pos + 8 <= end) {
		uint32_t type = be32(hdr + pos), len = be32(hdr + pos + 4);
		pos += 8;
		if (type == EXT_END)
			return 0;
		if (len > end - pos)
			return blk_err(err, errlen, -EINVAL,
				       "'%s': qcow2 header extension 0x%08x "
				       "runs past the header cluster", b->path,
				       type);
		if (type == EXT_BACKING_FORMAT) {
			char name[16] = { 0 };
			if (len >= sizeof(name))
				return blk_err(err, errlen, -EINVAL,
					       "'%s': qcow2 backing format "
					       "name too long", b->path);
			memcpy(name, hdr + pos, len);
			if (blk_parse_format(name, &s->backing_fmt) < 0)
				return blk_err(err, errlen, -EINVAL,
					       "'%s': backing file format "
					       "'%s' is not supported (raw, "
					       "qcow2)", b->path, name);
		}
		pos += ((uint64_t)len + 7) & ~UINT64_C(7);
	}
	return 0;
}

static int open_backing(struct blk *b, const struct blk_chain *chain,
			char *err, size_t errlen)
{
	struct qcow2 *s = Q(b);
	const char *name = s->backing_name;
	char *full = NULL;
	int r;

	if (name[0] != '/') {
		const char *slash = strrchr(b->path, '/');
		if (slash) {
			size_t dl = (size_t)(slash - b->path) + 1;
			full = malloc(dl + strlen(name) + 1);
			if (!full)
				return blk_err(err, errlen, -ENOMEM,
					       "out of memory");
			memcpy(full, b->path, dl);
			strcpy(full + dl, name);
			name = full;
		}
	}
	char sub[512];
	r = blk_open_backing(name, s->backing_fmt, chain->no_lock, chain,
			     &s->backing, sub, sizeof(sub));
	/* Say which top image it was for, once: not at every level. */
	if (r < 0 && chain->depth == 0)
		blk_err(err, errlen, r, "'%s': backing file: %s", b->path, sub);
	else if (r < 0)
		blk_err(err, errlen, r, "%s", sub);
	free(full);
	return r;
}

static int read_table(int fd, uint64_t off, uint64_t n, uint64_t **out)
{
	uint8_t *raw = malloc(n ? n * 8 : 1);
	uint64_t *t = calloc(n ? n : 1, 8);
	int r = -ENOMEM;

	if (raw && t) {
		r = n ? blk_fd_pread(fd, raw, n * 8, off) : 0;
		for (uint64_t i = 0; r == 0 && i < n; i++)
			t[i] = be64(raw + i * 8);
	}
	free(raw);
	if (r < 0) {
		free(t);
		return r;
	}
	*out = t;
	return 0;
}

#define BAD(...) blk_err(err, errlen, -EINVAL, __VA_ARGS__)

static int qcow2_open(struct blk *b, const struct blk_chain *chain,
		      char *err, size_t errlen)
{
	struct qcow2 *s;
	struct stat st;
	uint8_t h[112] = { 0 };
	const char *p = b->path;
	uint64_t fsize;
	int r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return blk_err(err, errlen, -ENOMEM, "out of memory");
	b->opaque = s;
	pthread_mutex_init(&s->lock, NULL);
	s->l1_dirty_lo = UINT64_MAX;
	if (fstat(b->fd, &st) < 0)
		return blk_err(err, errlen, -errno, "'%s': %s", p,
			       strerror(errno));
	off_t end = lseek(b->fd, 0, SEEK_END);
	fsize = end > 0 ? (uint64_t)end : 0;
	if (fsize < 72)
		return BAD("'%s': qcow2 header truncated (file is %llu bytes)",
			   p, (unsigned long long)fsize);
	r = blk_fd_pread(b->fd, h, sizeof(h), 0);
	if (r < 0)
		return blk_err(err, errlen, r, "'%s': cannot read: %s", p,
			       strerror(-r));
	if (be32(h) != QCOW2_MAGIC)
		return BAD("'%s': not a qcow2 image (bad magic)", p);
	s->version = be32(h + 4);
	if (s->version != 2 && s->version != 3)
		return blk_err(err, errlen, -EINVAL,
			       "'%s': qcow2 version %u is not supported (2, 3)",
			       p, s->version);
	uint64_t bf_off = be64(h + 8);
	uint32_t bf_len = be32(h + 16);
	s->cluster_bits = be32(h + 20);
	if (s->cluster_bits < 9 || s->cluster_bits > 21)
		return BAD("'%s': qcow2 cluster_bits %u out of range 9..21", p,
			   s->cluster_bits);
	s->cs = UINT64_C(1) << s->cluster_bits;
	s->size = be64(h + 24);
	uint32_t crypt = be32(h + 32);
	s->l1_size = be32(h + 36);
	s->l1_offset = be64(h + 40);
	s->reft_offset = be64(h + 48);
	s->reft_clusters = be32(h + 56);
	s->nb_snapshots = be32(h + 60);
	s->snapshots_offset = be64(h + 64);
	s->refcount_order = 4;
	s->header_length = 72;
	if (s->version >= 3) {
		s->incompat = be64(h + 72);
		s->compat = be64(h + 80);
		s->autoclear = be64(h + 88);
		s->refcount_order = be32(h + 96);
		s->header_length = be32(h + 100);
		if (fsize < 104)
			return BAD("'%s': qcow2 v3 header truncated", p);
		if (s->header_length < 104 || s->header_length % 8 ||
		    s->header_length > s->cs || s->header_length > fsize)
			return BAD("'%s': qcow2 header_length %u invalid", p,
				   s->header_length);
		if (s->header_length > 104)
			s->compression_type = h[104];
	}
	if (s->incompat & ~(uint64_t)(INCOMPAT_DIRTY | INCOMPAT_CORRUPT |
				      INCOMPAT_COMPRESSION))
		return blk_err(err, errlen, -EINVAL,
			       "'%s': qcow2 incompatible features 0x%llx are "
			       "not supported (external data file, extended "
			       "L2 entries or newer)", p,
			       (unsigned long long)s->incompat);
	if (!!(s->incompat & INCOMPAT_COMPRESSION) != (s->compression_type != 0))
		return BAD("'%s': qcow2 compression type %u disagrees with "
			   "its feature bit", p, s->compression_type);
	if (s->compression_type > 1)
		return blk_err(err, errlen, -EINVAL,
			       "'%s': qcow2 compression type %u not supported",
			       p, s->compression_type);
	if (crypt)
		return blk_err(err, errlen, -EINVAL,
			       "'%s': encrypted qcow2 images are not supported",
			       p);
	if (s->refcount_order > 6)
		return BAD("'%s': qcow2 refcount_order %u exceeds 6", p,
			   s->refcount_order);
	if (!b->readonly && (s->incompat & INCOMPAT_CORRUPT))
		return BAD("'%s' is marked corrupt; open it read-only or "
			   "repair it ('qemu-img check -r all')", p);
	if (!b->readonly && (s->incompat & INCOMPAT_DIRTY))
		return BAD("'%s' was not closed cleanly (lazy refcounts); "
			   "repair it first ('qemu-img check -r all')", p);
	if (!b->readonly && s->nb_snapshots)
		return blk_err(err, errlen, -EINVAL,
			       "'%s' has internal snapshots; vivarium can "
			       "only open it read-only", p);
	s->rb_shift = s->cluster_bits + 3 - s->refcount_order;
	s->refcount_max = s->refcount_order == 6
				  ? UINT64_MAX
				  : (UINT64_C(1) << (1u << s->refcount_order)) - 1;

	/* Sizes and tables, checked before any allocation. */
	if (s->size > (UINT64_C(1) << 62))
		return BAD("'%s': qcow2 virtual size %llu too large", p,
			   (unsigned long long)s->size);
	b->length = (s->size + BLK_SECTOR - 1) & ~(uint64_t)(BLK_SECTOR - 1);
	uint64_t l2_span = s->cs * (s->cs / 8);
	uint64_t l1_need = (b->length + l2_span - 1) / l2_span;
	if ((uint64_t)s->l1_size * 8 > MAX_L1_BYTES)
		return BAD("'%s': qcow2 L1 table of %u entries is too large",
			   p, s->l1_size);
	if (s->l1_size < l1_need)
		return BAD("'%s': qcow2 L1 table (%u entries) too small for "
			   "the virtual size", p, s->l1_size);
	if (s->l1_size && ((s->l1_offset & (s->cs - 1)) || !s->l1_offset ||
			   s->l1_offset > fsize ||
			   (uint64_t)s->l1_size * 8 > fsize - s->l1_offset))
		return BAD("'%s': qcow2 L1 table offset 0x%llx misaligned or "
			   "past the end of the file", p,
			   (unsigned long long)s->l1_offset);
	if (!s->reft_clusters ||
	    (uint64_t)s->reft_clusters * s->cs > MAX_REFTABLE_BYTES)
		return BAD("'%s': qcow2 refcount table size (%u clusters) "
			   "invalid", p, s->reft_clusters);
	if ((s->reft_offset & (s->cs - 1)) || !s->reft_offset ||
	    s->reft_offset > fsize ||
	    (uint64_t)s->reft_clusters * s->cs > fsize - s->reft_offset)
		return BAD("'%s': qcow2 refcount table offset 0x%llx "
			   "misaligned or past the end of the file", p,
			   (unsigned long long)s->reft_offset);
	if (s->nb_snapshots > MAX_SNAPSHOTS ||
	    (s->nb_snapshots && ((s->snapshots_offset & (s->cs - 1)) ||
				 s->snapshots_offset >= fsize)))
		return BAD("'%s': qcow2 snapshot table invalid", p);

	/* The header cluster: extensions and the backing file name. */
	uint64_t hc = s->cs < fsize ? s->cs : fsize;
	uint8_t *hdr = calloc(1, s->cs);
	if (!hdr)
		return blk_err(err, errlen, -ENOMEM, "out of memory");
	r = blk_fd_pread(b->fd, hdr, hc, 0);
	uint64_t ext_end = hc;
	if (r == 0 && bf_off) {
		if (bf_len == 0 || bf_len > 1023 || bf_off > hc ||
		    bf_len > hc - bf_off || bf_off < s->header_length) {
			free(hdr);
			return BAD("'%s': qcow2 backing file name (offset "
				   "0x%llx, %u bytes) invalid", p,
				   (unsigned long long)bf_off, bf_len);
		}
		memcpy(s->backing_name, hdr + bf_off, bf_len);
		s->backing_name[bf_len] = '\0';
		if (strlen(s->backing_name) != bf_len) {
			free(hdr);
			return BAD("'%s': qcow2 backing file name contains a "
				   "NUL byte", p);
		}
		ext_end = bf_off;
	}
	if (r == 0)
		r = parse_extensions(b, hdr, s->header_length, ext_end, err,
				     errlen);
	free(hdr);
	if (r < 0)
		return r;

	/* L1 and refcount tables, each entry checked. */
	r = read_table(b->fd, s->l1_offset, s->l1_size, &s->l1);
	if (r < 0)
		return blk_err(err, errlen, r, "'%s': cannot read L1 table: %s",
			       p, strerror(-r));
	for (uint32_t i = 0; i < s->l1_size; i++) {
		uint64_t o = s->l1[i] & OFF_MASK;
		if ((o & (s->cs - 1)) || o >= fsize)
			return BAD("'%s': qcow2 L1 entry %u: L2 table offset "
				   "0x%llx misaligned or past the end of the "
				   "file", p, i, (unsigned long long)o);
	}
	s->reft_entries = (uint64_t)s->reft_clusters * s->cs / 8;
	r = read_table(b->fd, s->reft_offset, s->reft_entries, &s->reft);
	if (r < 0)
		return blk_err(err, errlen, r,
			       "'%s': cannot read refcount table: %s", p,
			       strerror(-r));
	for (uint64_t i = 0; i < s->reft_entries; i++) {
		uint64_t o = s->reft[i] & REFT_MASK;
		if ((o & (s->cs - 1)) || o >= fsize)
			return BAD("'%s': qcow2 refcount table entry %llu: "
				   "block offset 0x%llx misaligned or past the "
				   "end of the file", p,
				   (unsigned long long)i,
				   (unsigned long long)o);
	}
	s->file_end = fsize;

	/* Caches: about 8 MiB each at most, 4..256 tables. */
	uint64_t n = (UINT64_C(8) << 20) / s->cs;
	n = n < 4 ? 4 : n > 256 ? 256 : n;
	s->cbuf = malloc(s->cs);
	if (!s->cbuf || cache_init(&s->l2c, (unsigned)n, s->cs) < 0 ||
	    cache_init(&s->rbc, (unsigned)n, s->cs) < 0)
		return blk_err(err, errlen, -ENOMEM, "out of memory");

	if (s->backing_name[0] && !chain->no_backing) {
		r = open_backing(b, chain, err, errlen);
		if (r < 0)
			return r;
	}
	if (!b->readonly && s->autoclear) {
		/* We do not keep bitmaps current: say so (spec). */
		uint8_t z[8] = { 0 };
		r = blk_fd_pwrite(b->fd, z, 8, 88);
		if (r == 0 && fdatasync(b->fd) < 0)
			r = -errno;
		if (r < 0)
			return blk_err(err, errlen, r, "'%s': cannot write: %s",
				       p, strerror(-r));
		s->autoclear = 0;
	}
	return 0;
}

/* ---- info and check -------------------------------------------------- */

static int qcow2_get_info(struct blk *b, struct blk_info *out)
{
	struct qcow2 *s = Q(b);

	out->version = s->version;
	out->cluster_size = s->cs;
	snprintf(out->backing, sizeof(out->backing), "%s", s->backing_name);
	out->backing_format = s->backing_fmt;
	out->dirty = s->incompat & INCOMPAT_DIRTY;
	out->corrupt = s->incompat & INCOMPAT_CORRUPT;
	out->lazy_refcounts = s->compat & COMPAT_LAZY_REFCOUNTS;
	out->refcount_bits = 1u << s->refcount_order;
	out->compressed_zstd = s->compression_type == 1;
	return 0;
}

struct checker {
	struct blk *b;
	struct qcow2 *s;
	struct blk_check_result *res;
	FILE *report;
	uint32_t *refs;
	uint64_t nclusters;
	uint8_t *l2;
	uint64_t last_data;	/* for fragmentation */
};

static void ck_ref(struct checker *k, uint64_t off, uint64_t len,
		   const char *what)
{
	if (!len)
		return;
	uint64_t first = off >> k->s->cluster_bits;
	uint64_t last = (off + len - 1) >> k->s->cluster_bits;
	for (uint64_t c = first; c <= last; c++) {
		if (c >= k->nclusters) {
			k->res->corruptions++;
			if (k->report)
				fprintf(k->report, "ERROR %s at 0x%llx is "
					"past the end of the file\n", what,
					(unsigned long long)off);
			return;
		}
		if (k->refs[c] < UINT32_MAX)
			k->refs[c]++;
	}
}

/* References from one L1 table; @active: also check the COPIED flags. */
static int ck_l1(struct checker *k, const uint64_t *l1, uint64_t n,
		 bool active)
{
	struct qcow2 *s = k->s;
	uint64_t l2e = s->cs / 8;

	for (uint64_t i = 0; i < n; i++) {
		uint64_t o = l1[i] & OFF_MASK;
		if (!o)
			continue;
		if (o & (s->cs - 1)) {
			k->res->corruptions++;
			if (k->report)
				fprintf(k->report, "ERROR L2 table at 0x%llx "
					"is not cluster aligned\n",
					(unsigned long long)o);
			continue;
		}
		ck_ref(k, o, s->cs, "L2 table");
		if (o >= k->nclusters << s->cluster_bits)
			continue;
		/* Each L1 table names an L2 table at most once (snapshots
		 * share them): more is corrupt, and walking it again and
		 * again would let a small file make check run for hours. */
		if (k->refs[o >> s->cluster_bits] > 1 + s->nb_snapshots)
			continue;
		if (active) {
			uint64_t rc;
			if (get_refcount(k->b, o >> s->cluster_bits, &rc) == 0 &&
			    (rc == 1) != !!(l1[i] & OFLAG_COPIED)) {
				k->res->corruptions++;
				if (k->report)
					fprintf(k->report, "ERROR OFLAG_COPIED "
						"L2 cluster: l1_index=%llu "
						"l1_entry=%llx refcount=%llu\n",
						(unsigned long long)i,
						(unsigned long long)l1[i],
						(unsigned long long)rc);
			}
		}
		if (blk_fd_pread(k->b->fd, k->l2, s->cs, o) < 0) {
			k->res->check_errors++;
			continue;
		}
		/* Fragmentation is counted within each L2 table, as qemu-img
		 * does. */
		k->last_data = 0;
		for (uint64_t j = 0; j < l2e; j++) {
			uint64_t e = be64(k->l2 + j * 8);
			enum ckind kind = entry_kind(s, e);
			if (kind == K_COMPRESSED) {
				uint64_t co, cl;
				if (e & OFLAG_COPIED) {
					k->res->corruptions++;
					if (k->report)
						fprintf(k->report, "ERROR "
							"compressed cluster "
							"with COPIED flag: "
							"%llx\n",
							(unsigned long long)e);
				}
				compressed_span(s, e, &co, &cl);
				ck_ref(k, co, cl, "compressed cluster");
				if (active) {
					/* Never the start of a contiguous run:
					 * qemu-img counts them fragmented. */
					k->res->allocated_clusters++;
					k->res->compressed_clusters++;
					k->res->fragmented_clusters++;
				}
				continue;
			}
			uint64_t h = e & OFF_MASK;
			if (e & L2E_RESERVED || (h & (s->cs - 1))) {
				k->res->corruptions++;
				if (k->report)
					fprintf(k->report, "ERROR L2 entry %llx "
						"has reserved bits set or is "
						"misaligned\n",
						(unsigned long long)e);
				continue;
			}
			if (!h)
				continue;
			ck_ref(k, h, s->cs, "data cluster");
			if (!active || h >= k->nclusters << s->cluster_bits)
				continue;
			if (kind == K_NORMAL || kind == K_SHARED) {
				k->res->allocated_clusters++;
				if (k->last_data && h != k->last_data + s->cs)
					k->res->fragmented_clusters++;
				k->last_data = h;
			}
			uint64_t rc;
			if (get_refcount(k->b, h >> s->cluster_bits, &rc) == 0 &&
			    (rc == 1) != !!(e & OFLAG_COPIED)) {
				k->res->corruptions++;
				if (k->report)
					fprintf(k->report, "ERROR OFLAG_COPIED "
						"data cluster: l2_entry=%llx "
						"refcount=%llu\n",
						(unsigned long long)e,
						(unsigned long long)rc);
			}
		}
	}
	return 0;
}

static void ck_snapshots(struct checker *k)
{
	struct qcow2 *s = k->s;
	uint64_t pos = s->snapshots_offset;
	uint64_t fend = k->nclusters << s->cluster_bits;

	for (uint32_t i = 0; i < s->nb_snapshots; i++) {
		uint8_t e[40];
		if (pos > fend || blk_fd_pread(k->b->fd, e, 40, pos) < 0) {
			k->res->corruptions++;
			return;
		}
		uint64_t l1o = be64(e);
		uint32_t l1n = be32(e + 8);
		uint64_t elen = 40 + (uint64_t)be32(e + 36) + be16(e + 12) +
				be16(e + 14);
		pos += (elen + 7) & ~UINT64_C(7);
		if ((uint64_t)l1n * 8 > MAX_L1_BYTES || (l1o & (s->cs - 1)) ||
		    l1o > fend || (uint64_t)l1n * 8 > fend - l1o) {
			k->res->corruptions++;
			if (k->report)
				fprintf(k->report, "ERROR snapshot %u has an "
					"invalid L1 table\n", i);
			continue;
		}
		ck_ref(k, l1o, (uint64_t)l1n * 8, "snapshot L1 table");
		uint64_t *l1;
		if (read_table(k->b->fd, l1o, l1n, &l1) < 0) {
			k->res->check_errors++;
			continue;
		}
		ck_l1(k, l1, l1n, false);
		free(l1);
	}
	ck_ref(k, s->snapshots_offset, pos - s->snapshots_offset,
	       "snapshot table");
}

static int qcow2_check(struct blk *b, struct blk_check_result *res,
		       FILE *report)
{
	struct qcow2 *s = Q(b);
	struct checker k = { .b = b, .s = s, .res = res, .report = report };
	struct stat st;
	int r = 0;

	pthread_mutex_lock(&s->lock);
	if (!b->readonly && (r = meta_flush(b)) < 0)
		goto out;
	if (fstat(b->fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	off_t fe = lseek(b->fd, 0, SEEK_END);
	uint64_t fsize = fe > 0 ? (uint64_t)fe : 0;
	k.nclusters = (fsize + s->cs - 1) >> s->cluster_bits;
	k.refs = calloc(k.nclusters ? k.nclusters : 1, sizeof(*k.refs));
	k.l2 = malloc(s->cs);
	if (!k.refs || !k.l2) {
		r = -ENOMEM;
		goto out;
	}
	res->total_clusters = (b->length + s->cs - 1) >> s->cluster_bits;
	ck_ref(&k, 0, s->cs, "header");
	ck_ref(&k, s->l1_offset, (uint64_t)s->l1_size * 8, "L1 table");
	ck_ref(&k, s->reft_offset, (uint64_t)s->reft_clusters * s->cs,
	       "refcount table");
	for (uint64_t i = 0; i < s->reft_entries; i++)
		if (s->reft[i] & REFT_MASK)
			ck_ref(&k, s->reft[i] & REFT_MASK, s->cs,
			       "refcount block");
	if (s->nb_snapshots)
		ck_snapshots(&k);
	ck_l1(&k, s->l1, s->l1_size, true);

	uint64_t last_used = 0;
	for (uint64_t c = 0; c < k.nclusters; c++) {
		uint64_t rc;
		if (get_refcount(b, c, &rc) < 0) {
			res->check_errors++;
			continue;
		}
		if (k.refs[c])
			last_used = c + 1;
		if (rc < k.refs[c]) {
			res->corruptions++;
			if (report)
				fprintf(report, "ERROR cluster %llu "
					"refcount=%llu reference=%u\n",
					(unsigned long long)c,
					(unsigned long long)rc, k.refs[c]);
		} else if (rc > k.refs[c]) {
			res->leaks++;
			if (report)
				fprintf(report, "Leaked cluster %llu "
					"refcount=%llu reference=%u\n",
					(unsigned long long)c,
					(unsigned long long)rc, k.refs[c]);
		}
	}
	res->image_end_offset = last_used << s->cluster_bits;
out:
	pthread_mutex_unlock(&s->lock);
	free(k.refs);
	free(k.l2);
	return r;
}

/* ---- create ---------------------------------------------------------- */

int blk_qcow2_create(int fd, const struct blk_create_opts *opts,
		     uint64_t size, enum blk_format backing_fmt, char *err,
		     size_t errlen)
{
	unsigned cb = opts->cluster_bits ? opts->cluster_bits : 16;
	unsigned version = opts->compat ? opts->compat : 3;
	const char *backing = opts->backing;
	const char *bfmt = backing ? blk_format_name(backing_fmt) : NULL;
	int r;

	if (cb < 9 || cb > 21)
		return blk_err(err, errlen, -EINVAL,
			       "cluster size must be 512 bytes .. 2 MiB (a "
			       "power of two)");
	if (version != 2 && version != 3)
		return blk_err(err, errlen, -EINVAL,
			       "qcow2 compat must be 2 (0.10) or 3 (1.1)");
	if (backing && (strlen(backing) == 0 || strlen(backing) > 1023))
		return blk_err(err, errlen, -EINVAL,
			       "backing file name must be 1..1023 bytes");
	uint64_t cs = UINT64_C(1) << cb;
	uint64_t l2_span = cs * (cs / 8);
	uint64_t l1_size = (size + l2_span - 1) / l2_span;
	if (l1_size * 8 > MAX_L1_BYTES)
		return blk_err(err, errlen, -EINVAL,
			       "image too large for %llu-byte clusters; use "
			       "larger clusters", (unsigned long long)cs);
	/* Layout: header | refcount table | refcount blocks | L1 table. */
	uint64_t per_rb = cs * 8 / 16, l1c = (l1_size * 8 + cs - 1) / cs;
	uint64_t rt = 1, rb = 1;
	for (int i = 0; i < 16; i++) {
		uint64_t total = 1 + rt + rb + l1c;
		uint64_t nrb = (total + per_rb - 1) / per_rb;
		uint64_t nrt = (nrb * 8 + cs - 1) / cs;
		if (nrb == rb && nrt == rt)
			break;
		rb = nrb;
		rt = nrt;
	}
	uint64_t total = 1 + rt + rb + l1c;
	if (rt * cs > MAX_REFTABLE_BYTES)
		return blk_err(err, errlen, -EINVAL, "image too large");
	uint8_t *img = calloc(total, cs);
	if (!img)
		return blk_err(err, errlen, -ENOMEM, "out of memory");
	uint8_t *h = img;
	uint64_t hlen = version == 3 ? 112 : 72, pos;
	put_be32(h, QCOW2_MAGIC);
	put_be32(h + 4, version);
	put_be32(h + 20, cb);
	put_be64(h + 24, size);
	put_be32(h + 36, (uint32_t)l1_size);
	put_be64(h + 40, (1 + rt + rb) * cs);
	put_be64(h + 48, cs);
	put_be32(h + 56, (uint32_t)rt);
	if (version == 3) {
		put_be32(h + 96, 4);
		put_be32(h + 100, (uint32_t)hlen);
	}
	pos = hlen;
	if (bfmt) {
		size_t fl = strlen(bfmt);
		put_be32(h + pos, EXT_BACKING_FORMAT);
		put_be32(h + pos + 4, (uint32_t)fl);
		memcpy(h + pos + 8, bfmt, fl);
		pos += 8 + ((fl + 7) & ~(size_t)7);
	}
	pos += 8;	/* end of extensions */
	if (backing) {
		size_t bl = strlen(backing);
		if (pos + bl > cs) {
			free(img);
			return blk_err(err, errlen, -EINVAL,
				       "backing file name does not fit in a "
				       "%llu-byte header cluster",
				       (unsigned long long)cs);
		}
		put_be64(h + 8, pos);
		put_be32(h + 16, (uint32_t)bl);
		memcpy(h + pos, backing, bl);
	}
	/* Refcount table and blocks: every metadata cluster has 1. */
	for (uint64_t i = 0; i < rb; i++)
		put_be64(img + cs + i * 8, (1 + rt + i) * cs);
	for (uint64_t c = 0; c < total; c++)
		put_be16(img + (1 + rt) * cs + c * 2, 1);
	r = blk_fd_pwrite(fd, img, total * cs, 0);
	free(img);
	if (r < 0)
		return blk_err(err, errlen, r, "cannot write the image: %s",
			       strerror(-r));
	return 0;
}

/* ---- backing chains: allocation, header rewrite, make empty ----------- */

static int qcow2_alloc_status(struct blk *b, uint64_t off, uint64_t len,
			      uint64_t *pnum, enum blk_alloc *st)
{
	struct qcow2 *s = Q(b);
	uint64_t e, n;
	enum ckind k;
	int r;

	pthread_mutex_lock(&s->lock);
	r = lookup(b, off, len, &e, &k, &n);
	pthread_mutex_unlock(&s->lock);
	if (r < 0)
		return r;
	*pnum = n;
	*st = k == K_UNALLOC ? BLK_ALLOC_NONE
	      : k == K_ZERO  ? BLK_ALLOC_ZERO
			     : BLK_ALLOC_DATA;
	return 0;
}

#define EXT_FEATURE_TABLE 0x6803f857u
#define HDR_ATOMIC 512u		/* the header sector, written in one pwrite */

/*
 * The new header in @neu (a copy of the header cluster @old): fields 8-19
 * for a name at @name_off, and the extension area rebuilt from @old's,
 * with the backing-format extension for @fmt (AUTO: none) where @old had
 * it, else last; without the feature name table if @drop_table (it is
 * optional, spec: "Feature name table").  Returns the end of the new
 * extension area (after the end marker), or 0 if it does not fit.
 */
static uint64_t build_exts(const struct qcow2 *s, const uint8_t *old,
			   uint64_t old_end, enum blk_format fmt,
			   bool drop_table, uint8_t *neu)
{
	const char *fname = fmt == BLK_FMT_AUTO ? NULL : blk_format_name(fmt);
	uint64_t pos = s->header_length, o = s->header_length;
	bool done_fmt = false;

	memcpy(neu, old, s->header_length);
	for (;;) {
		uint32_t type = 0;
		uint64_t at = o, padded = 0;
		if (o + 8 <= old_end && be32(old + o) != EXT_END) {
			padded = ((uint64_t)be32(old + o + 4) + 7) & ~UINT64_C(7);
			if (padded <= old_end - o - 8) {
				type = be32(old + o);
				o += 8 + padded;
			}
		}
		if (type == EXT_BACKING_FORMAT || (!type && !done_fmt)) {
			done_fmt = true;
			if (fname) {
				size_t fl = strlen(fname);
				if (pos + 16 > s->cs)
					return 0;
				put_be32(neu + pos, EXT_BACKING_FORMAT);
				put_be32(neu + pos + 4, (uint32_t)fl);
				memset(neu + pos + 8, 0, 8);
				memcpy(neu + pos + 8, fname, fl);
				pos += 16;
			}
			if (type)
				continue;
		}
		if (!type)
			break;
		if (type == EXT_FEATURE_TABLE && drop_table)
			continue;
		if (pos + 8 + padded > s->cs)
			return 0;
		memcpy(neu + pos, old + at, 8 + padded);
		pos += 8 + padded;
	}
	if (pos + 8 > s->cs)
		return 0;
	memset(neu + pos, 0, 8);	/* end of extensions */
	return pos + 8;
}

/*
 * qcow2_set_backing - point the header at backing file @name (spec:
 * "Header" bytes 8-19, extension 0xe2792aca).  Crash safety: a crash
 * leaves the old header or the new one, never a mix.  A write of one
 * sector is atomic (the assumption every qcow2 metadata update makes), so
 * the switch is one pwrite of the header's first 512 bytes; everything
 * that sector newly refers to is written before, into bytes the old
 * header does not use:
 *   1. meta_flush and fdatasync: data and metadata written so far (a
 *      stream's or rebase's copies) are durable before the backing file
 *      changes;
 *   2. the new extension area may differ from the old only inside the
 *      first sector or past the old header's last byte (QEMU's images
 *      keep a 392-byte feature name table there: if adding or removing
 *      the backing-format extension would move it across the sector
 *      boundary, the table is left out); the name goes right after it,
 *      or past the old header's last byte; that part beyond the first
 *      sector is written and synced;
 *   3. the first sector is written and synced.
 * A name that fits nowhere in the header cluster is refused (-ENOSPC).
 */
static int qcow2_set_backing(struct blk *b, const char *name,
			     enum blk_format fmt, struct blk *nb, char *err,
			     size_t errlen)
{
	struct qcow2 *s = Q(b);
	size_t nl = name ? strlen(name) : 0;
	uint8_t *old = calloc(2, s->cs), *neu;
	uint64_t old_used, old_ext_end, ext_end = 0, name_off = 0;
	int r;

	if (!old)
		return blk_err(err, errlen, -ENOMEM, "out of memory");
	neu = old + s->cs;
	if (name && (nl == 0 || nl > sizeof(s->backing_name) - 1)) {
		free(old);
		return blk_err(err, errlen, -EINVAL, "'%s': backing file name "
			       "must be 1..%zu bytes", b->path,
			       sizeof(s->backing_name) - 1);
	}
	pthread_mutex_lock(&s->lock);
	r = s->broken ? -EIO : meta_flush(b);
	if (r == 0 && fdatasync(b->fd) < 0)
		r = -errno;
	if (r == 0)
		r = blk_fd_pread(b->fd, old, s->cs, 0);
	if (r < 0) {
		blk_err(err, errlen, r, "'%s': cannot write: %s", b->path,
			strerror(-r));
		goto out;
	}
	/* The old header's extent: its extensions and its name. */
	uint64_t bf_off = be64(old + 8), bf_len = be32(old + 16);
	old_ext_end = bf_off ? bf_off : s->cs;
	for (uint64_t o = s->header_length; o + 8 <= old_ext_end;) {
		uint32_t len = be32(old + o + 4);
		bool end = be32(old + o) == EXT_END;
		o += 8 + (((uint64_t)len + 7) & ~UINT64_C(7));
		if (end || o >= old_ext_end) {
			old_ext_end = o < old_ext_end ? o : old_ext_end;
			break;
		}
	}
	old_used = old_ext_end;
	if (bf_off && bf_off + bf_len > old_used)
		old_used = bf_off + bf_len;
	for (int drop = 0; drop < 2 && !ext_end; drop++) {
		ext_end = build_exts(s, old, old_ext_end, fmt, drop, neu);
		/* Past the first sector, the old header's bytes must stay. */
		for (uint64_t i = HDR_ATOMIC; ext_end && i < ext_end &&
					      i < old_used; i++)
			if (neu[i] != old[i])
				ext_end = 0;
	}
	if (!ext_end) {
		r = blk_err(err, errlen, -ENOSPC, "'%s': the header extensions "
			    "leave no room to change the backing file", b->path);
		goto out;
	}
	if (name) {
		name_off = ext_end;
		if (name_off + nl > HDR_ATOMIC && name_off < old_used)
			name_off = (old_used + 7) & ~UINT64_C(7);
		if (name_off + nl > s->cs) {
			r = blk_err(err, errlen, -ENOSPC, "'%s': backing file "
				    "name does not fit in the %llu-byte header "
				    "cluster", b->path,
				    (unsigned long long)s->cs);
			goto out;
		}
		memcpy(neu + name_off, name, nl);
	}
	put_be64(neu + 8, name_off);
	put_be32(neu + 16, (uint32_t)nl);
	uint64_t end = name ? name_off + nl : ext_end;
	if (end < ext_end)
		end = ext_end;
	uint64_t from = old_used > HDR_ATOMIC ? old_used : HDR_ATOMIC;
	if (end > from) {
		r = blk_fd_pwrite(b->fd, neu + from, end - from, from);
		if (r == 0 && fdatasync(b->fd) < 0)
			r = -errno;
	}
	if (r == 0)
		r = blk_fd_pwrite(b->fd, neu, HDR_ATOMIC, 0);
	if (r == 0 && fdatasync(b->fd) < 0)
		r = -errno;
	if (r < 0) {
		blk_err(err, errlen, r, "'%s': cannot write the header: %s",
			b->path, strerror(-r));
		goto out;
	}
	memcpy(s->backing_name, name ? name : "", nl);
	s->backing_name[nl] = '\0';
	s->backing_fmt = fmt;
	struct blk *gone = s->backing;
	s->backing = nb;
	pthread_mutex_unlock(&s->lock);
	blk_close(gone);
	free(old);
	return 0;
out:
	pthread_mutex_unlock(&s->lock);
	free(old);
	return r;
}

/* Host extents a make_empty frees, to give back to the file system. */
struct extents {
	struct { uint64_t off, len; } *v;
	size_t n, cap;
};

static void extents_add(struct extents *x, uint64_t off, uint64_t len)
{
	if (x->n && x->v[x->n - 1].off + x->v[x->n - 1].len == off) {
		x->v[x->n - 1].len += len;
		return;
	}
	if (x->n == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 64;
		void *p = realloc(x->v, cap * sizeof(*x->v));
		if (!p)
			return;	/* the space stays in the file, that is all */
		x->v = p;
		x->cap = cap;
	}
	x->v[x->n].off = off;
	x->v[x->n].len = len;
	x->n++;
}

/*
 * Unallocate every cluster (the L2 tables stay), then write it out: the
 * image reads through to its backing file (spec: unallocated entry).  The
 * freed data clusters are punched out of the file once no L2 entry on
 * disk names them (after meta_flush), so the host gets the space back.
 */
static int qcow2_make_empty(struct blk *b)
{
	struct qcow2 *s = Q(b);
	struct extents gone = { 0 };
	uint64_t l2e = s->cs / 8;
	int r = 0;

	pthread_mutex_lock(&s->lock);
	if (s->broken)
		r = -EIO;
	for (uint64_t i = 0; i < s->l1_size && r == 0; i++) {
		struct qcache_ent *t;
		if (!(s->l1[i] & OFF_MASK))
			continue;
		r = l2_get(b, i, true, &t);
		if (r < 0)
			break;
		for (uint64_t j = 0; j < l2e && r == 0; j++) {
			uint64_t e = be64(t->data + j * 8);
			enum ckind k = entry_kind(s, e);
			if (!e)
				continue;
			if (k != K_COMPRESSED && !entry_ok(s, e)) {
				corrupt(s, b, "L2 entry", e);
				r = -EIO;
				break;
			}
			put_be64(t->data + j * 8, 0);
			t->dirty = true;
			r = defer_free_entry(b, e);
			if (k != K_COMPRESSED && (e & OFF_MASK))
				extents_add(&gone, e & OFF_MASK, s->cs);
		}
		t->pin--;
	}
	if (r == 0)
		r = meta_flush(b);
	for (size_t i = 0; r == 0 && i < gone.n; i++)
		fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			  (off_t)gone.v[i].off, (off_t)gone.v[i].len);
	pthread_mutex_unlock(&s->lock);
	free(gone.v);
	if (r == 0 && fdatasync(b->fd) < 0)
		r = -errno;
	return r;
}

static struct blk **qcow2_backing_slot(struct blk *b)
{
	return &Q(b)->backing;
}

const struct blk_driver blk_qcow2_driver = {
	.open = qcow2_open,
	.close = qcow2_close,
	.preadv = qcow2_preadv,
	.pwritev = qcow2_pwritev,
	.flush = qcow2_flush,
	.discard = qcow2_discard,
	.write_zeroes = qcow2_write_zeroes,
	.block_status = qcow2_block_status,
	.get_info = qcow2_get_info,
	.check = qcow2_check,
	.alloc_status = qcow2_alloc_status,
	.set_backing = qcow2_set_backing,
	.make_empty = qcow2_make_empty,
	.backing_slot = qcow2_backing_slot,
};
