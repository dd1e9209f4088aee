/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/block/chain.c - backing-chain operations for disk snapshots as
 * external overlays: set the backing file, stream (pull the backing
 * file's clusters up), commit (push the top's clusters down), and safe
 * rebase.  Generic over the format drivers' alloc_status, set_backing and
 * make_empty (qcow2.c); the ordering that keeps each crash-safe is in
 * block.h beside each call.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block_int.h"

#define COPY_CHUNK (UINT64_C(1) << 20)	/* bytes per read/write */

/* What @b alone holds at @off: the driver's answer, or, for formats
 * without backing files (raw), data everywhere but holes. */
static int alloc_status(struct blk *b, uint64_t off, uint64_t len,
			uint64_t *pnum, enum blk_alloc *st)
{
	bool zero;
	int r;

	if (b->drv->alloc_status)
		return b->drv->alloc_status(b, off, len, pnum, st);
	r = blk_block_status(b, off, len, pnum, &zero);
	*st = zero ? BLK_ALLOC_ZERO : BLK_ALLOC_DATA;
	return r;
}

static int io_fail(char *err, size_t errlen, int r, const char *what,
		   const struct blk *b)
{
	return blk_err(err, errlen, r, "'%s': cannot %s: %s", b->path, what,
		       strerror(-r));
}

/* Copy [@off, @off+@len) from @src to @dst through @buf (COPY_CHUNK). */
static int copy_range(struct blk *src, struct blk *dst, uint64_t off,
		      uint64_t len, uint8_t *buf, char *err, size_t errlen)
{
	while (len) {
		size_t n = len < COPY_CHUNK ? (size_t)len : COPY_CHUNK;
		int r = blk_pread(src, off, buf, n);
		if (r < 0)
			return io_fail(err, errlen, r, "read", src);
		r = blk_pwrite(dst, off, buf, n);
		if (r < 0)
			return io_fail(err, errlen, r, "write", dst);
		off += n;
		len -= n;
	}
	return 0;
}

/* Open @name (as @b's header would name it) read-only as @b's backing
 * file: locked as one, refusing a chain that would loop. */
static int open_new_backing(struct blk *b, const char *name,
			    enum blk_format fmt, struct blk **out, char *err,
			    size_t errlen)
{
	char *full = blk_backing_path(b->path, name);
	char sub[512] = "";
	int r;

	if (!full)
		return blk_err(err, errlen, -ENOMEM, "out of memory");
	r = blk_open_backing(full, fmt, b->chain.no_lock, &b->chain, out, sub,
			     sizeof(sub));
	free(full);
	if (r < 0)
		blk_err(err, errlen, r, "'%s': backing file: %s", b->path, sub);
	return r;
}

static int can_chain(struct blk *b, char *err, size_t errlen)
{
	if (b->readonly)
		return blk_err(err, errlen, -EROFS, "'%s' is open read-only",
			       b->path);
	if (!b->drv->set_backing)
		return blk_err(err, errlen, -EINVAL, "'%s': %s images have no "
			       "backing file", b->path,
			       blk_format_name(b->format));
	return 0;
}

int blk_set_backing(struct blk *b, const char *backing, enum blk_format fmt,
		    char *err, size_t errlen)
{
	struct blk *nb = NULL;
	int r;

	if (err && errlen)
		err[0] = '\0';
	r = can_chain(b, err, errlen);
	if (r < 0)
		return r;
	if (backing && !backing[0])
		backing = NULL;
	if (backing && !b->chain.no_backing) {
		r = open_new_backing(b, backing, fmt, &nb, err, errlen);
		if (r < 0)
			return r;
		fmt = blk_get_format(nb);
	}
	r = b->drv->set_backing(b, backing, backing ? fmt : BLK_FMT_AUTO, nb,
				err, errlen);
	if (r < 0)
		blk_close(nb);
	return r;
}

/* The name @top's header should give @bb, a file of its backing chain:
 * the chain's relative names were joined onto @top's folder, so strip it
 * (what is left is relative to that folder); a path that does not start
 * with it is absolute. */
static const char *name_from(const struct blk *top, const struct blk *bb)
{
	const char *slash = strrchr(top->path, '/');
	size_t dl = slash ? (size_t)(slash - top->path) + 1 : 0;

	if (!strncmp(bb->path, top->path, dl) && bb->path[dl])
		return bb->path + dl;
	return bb->path;
}

int blk_stream(struct blk *top, char *err, size_t errlen)
{
	struct blk *mid = blk_backing(top), *base;
	uint64_t len = blk_length(top), off = 0;
	uint8_t *buf;
	int r;

	if (err && errlen)
		err[0] = '\0';
	r = can_chain(top, err, errlen);
	if (r < 0)
		return r;
	if (!mid)
		return blk_err(err, errlen, -EINVAL, "'%s' has no open backing "
			       "file to stream from", top->path);
	base = blk_backing(mid);
	uint64_t mlen = blk_length(mid), blen = base ? blk_length(base) : 0;
	buf = malloc(COPY_CHUNK);
	if (!buf)
		return blk_err(err, errlen, -ENOMEM, "out of memory");
	while (off < len && r == 0) {
		uint64_t n, m;
		enum blk_alloc st;
		r = alloc_status(top, off, len - off, &n, &st);
		if (r < 0) {
			io_fail(err, errlen, r, "read", top);
			break;
		}
		if (st != BLK_ALLOC_NONE) {
			off += n;
			continue;
		}
		/* @top reads [off, off+n) from @mid: take what @mid holds. */
		for (uint64_t end = off + n; off < end && r == 0; off += m) {
			if (off >= mlen) {
				/* Zeroes past @mid's end, which @base might
				 * not give once it is the backing file. */
				m = end - off;
				if (off < blen)
					r = blk_write_zeroes(top, off, m, true);
				continue;
			}
			uint64_t want = (end < mlen ? end : mlen) - off;
			r = alloc_status(mid, off, want, &m, &st);
			if (r < 0) {
				io_fail(err, errlen, r, "read", mid);
				break;
			}
			if (st == BLK_ALLOC_ZERO)
				r = blk_write_zeroes(top, off, m, true);
			else if (st == BLK_ALLOC_DATA)
				r = copy_range(mid, top, off, m, buf, err,
					       errlen);
		}
		if (r < 0 && err && errlen && !err[0])
			io_fail(err, errlen, r, "write", top);
	}
	free(buf);
	/* Everything durable before the header names another file. */
	if (r == 0 && (r = blk_flush(top)) < 0)
		io_fail(err, errlen, r, "flush", top);
	if (r == 0)
		r = blk_set_backing(top, base ? name_from(top, base) : NULL,
				    base ? blk_get_format(base) : BLK_FMT_AUTO,
				    err, errlen);
	return r;
}

/* Write @top's own clusters (data and zeroes) into @dst. */
static int push_down(struct blk *top, struct blk *dst, char *err,
		     size_t errlen)
{
	uint64_t len = blk_length(top), off = 0, n;
	uint8_t *buf = malloc(COPY_CHUNK);
	enum blk_alloc st;
	int r = 0;

	if (!buf)
		return blk_err(err, errlen, -ENOMEM, "out of memory");
	for (; off < len && r == 0; off += n) {
		r = alloc_status(top, off, len - off, &n, &st);
		if (r < 0)
			io_fail(err, errlen, r, "read", top);
		else if (st == BLK_ALLOC_DATA)
			r = copy_range(top, dst, off, n, buf, err, errlen);
		else if (st == BLK_ALLOC_ZERO &&
			 (r = blk_write_zeroes(dst, off, n, true)) < 0)
			io_fail(err, errlen, r, "write", dst);
	}
	free(buf);
	if (r == 0 && (r = blk_flush(dst)) < 0)
		io_fail(err, errlen, r, "flush", dst);
	return r;
}

int blk_commit(struct blk *top, unsigned flags, char *err, size_t errlen)
{
	struct blk *mid = blk_backing(top), *wb = NULL, **slot;
	char sub[512] = "";
	int r;

	if (err && errlen)
		err[0] = '\0';
	r = can_chain(top, err, errlen);
	if (r < 0)
		return r;
	if (!mid)
		return blk_err(err, errlen, -EINVAL, "'%s' has no open backing "
			       "file to commit into", top->path);
	if (blk_length(top) > blk_length(mid))
		return blk_err(err, errlen, -EINVAL, "'%s' is larger than its "
			       "backing file '%s' (vivarium does not grow it)",
			       top->path, mid->path);
	char *path = strdup(mid->path);
	enum blk_format fmt = blk_get_format(mid);
	/* A probed raw file is probed again: writes then still may not put
	 * a qcow2 header at its start (blk_pwritev()). */
	struct blk_open_opts wo = {
		.format = mid->probed_raw ? BLK_FMT_AUTO : fmt,
		.no_lock = top->chain.no_lock,
	};
	if (!path)
		return blk_err(err, errlen, -ENOMEM, "out of memory");
	/* Our own read-only handle shares no write: close it for the
	 * writable one, and take a read-only one back at the end. */
	slot = top->drv->backing_slot(top);
	blk_close(mid);
	*slot = NULL;
	r = blk_open(path, &wo, &wb, sub, sizeof(sub));
	if (r < 0) {
		blk_err(err, errlen, r, "'%s': backing file: %s", top->path,
			sub);
	} else {
		*slot = wb;
		/* The backing file's copy is durable before @top lets go. */
		r = push_down(top, wb, err, errlen);
		if (r == 0 && !(flags & BLK_COMMIT_KEEP_TOP) &&
		    (r = top->drv->make_empty(top)) < 0)
			io_fail(err, errlen, r, "empty", top);
		*slot = NULL;
		blk_close(wb);
	}
	int r2 = blk_open_backing(path, fmt, top->chain.no_lock, &top->chain,
				  slot, sub, sizeof(sub));
	if (r2 < 0 && r == 0)
		r = blk_err(err, errlen, r2, "'%s': backing file: %s",
			    top->path, sub);
	free(path);
	return r;
}

/* Whether @len bytes at @p are all zero. */
static bool all_zero(const uint8_t *p, size_t len)
{
	return len == 0 || (p[0] == 0 && !memcmp(p, p + 1, len - 1));
}

/* Whether the whole range reads as zeroes without reading it. */
static bool reads_zero(struct blk *b, uint64_t off, uint64_t len)
{
	uint64_t n, end = off + len;
	bool zero;

	if (end > blk_length(b))
		end = blk_length(b);
	for (; off < end; off += n)
		if (blk_block_status(b, off, end - off, &n, &zero) < 0 || !zero)
			return false;
	return true;
}

/* Where @top reads from its backing chain, make it hold (in its own
 * clusters) whatever would read differently from @nb (NULL: zeroes). */
static int keep_reads(struct blk *top, struct blk *nb, uint64_t chunk,
		      char *err, size_t errlen)
{
	uint64_t len = blk_length(top), nlen = nb ? blk_length(nb) : 0;
	uint8_t *a = malloc(chunk), *b = malloc(chunk);
	uint64_t off = 0, n = 0;
	enum blk_alloc st;
	int r = a && b ? 0 : -ENOMEM;

	while (off < len && r == 0) {
		r = alloc_status(top, off, len - off, &n, &st);
		if (r < 0 || st != BLK_ALLOC_NONE) {
			off += n;
			continue;
		}
		for (uint64_t end = off + n; off < end && r == 0;) {
			uint64_t m = chunk - off % chunk;
			if (m > end - off)
				m = end - off;
			if (reads_zero(top, off, m) &&
			    (off >= nlen || reads_zero(nb, off, m))) {
				off += m;
				continue;
			}
			r = blk_pread(top, off, a, m);
			if (r == 0 && off < nlen) {
				uint64_t have = nlen - off < m ? nlen - off : m;
				r = blk_pread(nb, off, b, have);
				memset(b + have, 0, m - have);
			} else {
				memset(b, 0, m);
			}
			if (r == 0 && memcmp(a, b, m))
				r = all_zero(a, m)
					    ? blk_write_zeroes(top, off, m, true)
					    : blk_pwrite(top, off, a, m);
			off += m;
		}
	}
	free(a);
	free(b);
	if (r < 0)
		io_fail(err, errlen, r, r == -ENOMEM ? "copy" : "rebase", top);
	return r;
}

int blk_rebase(struct blk *top, const char *backing, enum blk_format fmt,
	       char *err, size_t errlen)
{
	struct blk_info info;
	struct blk *nb = NULL;
	int r;

	if (err && errlen)
		err[0] = '\0';
	r = can_chain(top, err, errlen);
	if (r < 0)
		return r;
	if (top->chain.no_backing)
		return blk_err(err, errlen, -EINVAL, "'%s' was opened without "
			       "its backing file: a safe rebase needs it",
			       top->path);
	if (backing && !backing[0])
		backing = NULL;
	if (backing) {
		r = open_new_backing(top, backing, fmt, &nb, err, errlen);
		if (r < 0)
			return r;
		fmt = blk_get_format(nb);
	}
	r = blk_get_info(top, &info);
	if (r == 0)
		r = keep_reads(top, nb, info.cluster_size ? info.cluster_size
							  : COPY_CHUNK,
			       err, errlen);
	else
		io_fail(err, errlen, r, "read", top);
	if (r == 0 && (r = blk_flush(top)) < 0)
		io_fail(err, errlen, r, "flush", top);
	if (r == 0)
		r = top->drv->set_backing(top, backing,
					  backing ? fmt : BLK_FMT_AUTO, nb, err,
					  errlen);
	if (r < 0)
		blk_close(nb);
	return r;
}
