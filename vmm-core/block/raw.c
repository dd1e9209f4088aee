/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/block/raw.c - raw images: the file (or block device) is the
 * disk.  Its length is the file's, rounded up to 512 bytes (the tail past
 * the end of the file reads as zeroes).  Discard punches holes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block_int.h"

static int raw_open(struct blk *b, const struct blk_chain *chain, char *err,
		    size_t errlen)
{
	struct stat st;
	uint64_t size;

	if (fstat(b->fd, &st) < 0)
		return blk_err(err, errlen, -errno, "'%s': %s", b->path,
			       strerror(errno));
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(b->fd, BLKGETSIZE64, &size) < 0)
			return blk_err(err, errlen, -errno,
				       "'%s': cannot get size: %s", b->path,
				       strerror(errno));
	} else {
		size = (uint64_t)st.st_size;
	}
	b->length = (size + BLK_SECTOR - 1) & ~(uint64_t)(BLK_SECTOR - 1);
	return 0;
}

static void raw_close(struct blk *b)
{
}

static int raw_preadv(struct blk *b, uint64_t off, const struct iovec *iov,
		      int iovcnt, uint64_t len)
{
	return blk_fd_preadv(b->fd, iov, iovcnt, off);
}

static int raw_pwritev(struct blk *b, uint64_t off, const struct iovec *iov,
		       int iovcnt, uint64_t len)
{
	return blk_fd_pwritev(b->fd, iov, iovcnt, off);
}

static int raw_flush(struct blk *b)
{
	return fdatasync(b->fd) < 0 ? -errno : 0;
}

static int write_zero_buf(struct blk *b, uint64_t off, uint64_t len)
{
	size_t chunk = len < (1u << 20) ? (size_t)len : (1u << 20);
	void *z = calloc(1, chunk);
	int ret = 0;

	if (!z)
		return -ENOMEM;
	while (len && !ret) {
		size_t n = len < chunk ? (size_t)len : chunk;
		ret = blk_fd_pwrite(b->fd, z, n, off);
		off += n;
		len -= n;
	}
	free(z);
	return ret;
}

static int raw_discard(struct blk *b, uint64_t off, uint64_t len)
{
	/* A hint: a file system without hole punching keeps the data. */
	fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		  (off_t)off, (off_t)len);
	return 0;
}

static int raw_write_zeroes(struct blk *b, uint64_t off, uint64_t len,
			    bool may_unmap)
{
	if (may_unmap &&
	    fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) == 0)
		return 0;
	if (fallocate(b->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) == 0)
		return 0;
	return write_zero_buf(b, off, len);
}

static int raw_block_status(struct blk *b, uint64_t off, uint64_t len,
			    uint64_t *pnum, bool *zero)
{
	off_t data = lseek(b->fd, (off_t)off, SEEK_DATA);

	if (data < 0 && errno == ENXIO) {
		/* No data from here to the end of the file. */
		*pnum = len;
		*zero = true;
		return 0;
	}
	if (data < 0) {
		*pnum = len;
		*zero = false;
		return 0;
	}
	if ((uint64_t)data > off) {
		uint64_t n = (uint64_t)data - off;
		*pnum = n < len ? n : len;
		*zero = true;
		return 0;
	}
	off_t hole = lseek(b->fd, (off_t)off, SEEK_HOLE);
	uint64_t n = hole < 0 || (uint64_t)hole <= off ? len
						      : (uint64_t)hole - off;
	*pnum = n < len ? n : len;
	*zero = false;
	return 0;
}

static int raw_get_info(struct blk *b, struct blk_info *out)
{
	return 0;
}

static int raw_check(struct blk *b, struct blk_check_result *res,
		     FILE *report)
{
	return 0;
}

const struct blk_driver blk_raw_driver = {
	.open = raw_open,
	.close = raw_close,
	.preadv = raw_preadv,
	.pwritev = raw_pwritev,
	.flush = raw_flush,
	.discard = raw_discard,
	.write_zeroes = raw_write_zeroes,
	.block_status = raw_block_status,
	.get_info = raw_get_info,
	.check = raw_check,
};
