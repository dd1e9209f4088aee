/* SPDX-License-Identifier: MIT */
/*
 * app/img_copy.c - img_copy() (img.h): what a guest sees of one image,
 * copied into another, sparse; `vivarium img convert` and `vivarium
 * clone` both use it.  In libvivarium, apart from the CLI's img commands,
 * so that front ends that clone (the manager) link no command code.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "block/block.h"
#include "img.h"

#define COPY_CHUNK	(2u << 20)	/* bytes read per step */
#define ZERO_GRAIN	4096u		/* zero pieces this small stay unwritten */

static bool all_zero(const uint8_t *buf, size_t len)
{
	return len == 0 || (buf[0] == 0 && !memcmp(buf, buf + 1, len - 1));
}

/* Write @buf (at disk offset @off) except its all-zero ZERO_GRAIN pieces:
 * the new image already reads them as zero and stays sparse. */
static int write_nonzero(struct blk *dst, uint64_t off, const uint8_t *buf,
			 size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		size_t start, n;
		int ret;

		while (pos < len) {
			n = len - pos < ZERO_GRAIN ? len - pos : ZERO_GRAIN;
			if (!all_zero(buf + pos, n))
				break;
			pos += n;
		}
		start = pos;
		while (pos < len) {
			n = len - pos < ZERO_GRAIN ? len - pos : ZERO_GRAIN;
			if (all_zero(buf + pos, n))
				break;
			pos += n;
		}
		if (pos > start) {
			ret = blk_pwrite(dst, off + start, buf + start, pos - start);
			if (ret < 0)
				return ret;
		}
	}
	return 0;
}

/* img.h: convert's copy, also `vivarium clone`'s. */
int img_copy(struct blk *src, struct blk *dst,
	     const volatile sig_atomic_t *stop,
	     void (*progress)(void *opaque, uint64_t done, uint64_t total),
	     void *opaque, const char **failed_side)
{
	uint64_t size = blk_length(src), off = 0;
	uint8_t *buf;
	int ret = 0;

	if (posix_memalign((void **)&buf, 4096, COPY_CHUNK))
		return -ENOMEM;
	while (off < size && !ret) {
		uint64_t pnum = 0, run_end;
		bool zero = false;

		*failed_side = "reading";
		ret = blk_block_status(src, off, size - off, &pnum, &zero);
		if (ret < 0)
			break;
		if (pnum == 0 || pnum > size - off) {
			ret = -EIO;	/* a status that would not move on */
			break;
		}
		run_end = off + pnum;
		if (zero)
			off = run_end;
		while (off < run_end && !ret) {
			size_t n = run_end - off < COPY_CHUNK ? run_end - off : COPY_CHUNK;

			if (stop && *stop) {
				ret = -EINTR;
				break;
			}
			*failed_side = "reading";
			ret = blk_pread(src, off, buf, n);
			if (!ret) {
				*failed_side = "writing";
				ret = write_nonzero(dst, off, buf, n);
			}
			off += n;
			if (progress)
				progress(opaque, off, size);
		}
		if (stop && *stop)
			ret = -EINTR;
		if (progress)
			progress(opaque, off, size);
	}
	if (!ret) {
		*failed_side = "writing";
		ret = blk_flush(dst);
	}
	free(buf);
	return ret;
}

