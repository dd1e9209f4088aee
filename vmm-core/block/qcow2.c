/* SPDX-License-Identifier: MIT */
/* vmm-core/block/qcow2.c - qcow2 (placeholder until the driver lands). */
#include <errno.h>

#include "block_int.h"

static int q_open(struct blk *b, const struct blk_chain *chain, char *err,
		  size_t errlen)
{
	return blk_err(err, errlen, -ENOTSUP, "'%s': qcow2 not supported yet",
		       b->path);
}

static void q_close(struct blk *b)
{
}

static int q_io(struct blk *b, uint64_t off, const struct iovec *iov,
		int iovcnt, uint64_t len)
{
	return -ENOTSUP;
}

static int q_flush(struct blk *b)
{
	return -ENOTSUP;
}

static int q_range(struct blk *b, uint64_t off, uint64_t len)
{
	return -ENOTSUP;
}

static int q_wz(struct blk *b, uint64_t off, uint64_t len, bool may_unmap)
{
	return -ENOTSUP;
}

static int q_status(struct blk *b, uint64_t off, uint64_t len,
		    uint64_t *pnum, bool *zero)
{
	return -ENOTSUP;
}

static int q_info(struct blk *b, struct blk_info *out)
{
	return -ENOTSUP;
}

static int q_check(struct blk *b, struct blk_check_result *res, FILE *report)
{
	return -ENOTSUP;
}

int blk_qcow2_create(int fd, const struct blk_create_opts *opts,
		     uint64_t size, enum blk_format backing_fmt, char *err,
		     size_t errlen)
{
	return blk_err(err, errlen, -ENOTSUP, "qcow2 not supported yet");
}

const struct blk_driver blk_qcow2_driver = {
	.open = q_open, .close = q_close, .preadv = q_io, .pwritev = q_io,
	.flush = q_flush, .discard = q_range, .write_zeroes = q_wz,
	.block_status = q_status, .get_info = q_info, .check = q_check,
};
