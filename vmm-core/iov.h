/* SPDX-License-Identifier: MIT */
/* vmm-core/iov.h - scatter-gather (struct iovec array) helpers shared by
 * the block layer and the device models.  Offsets and lengths in bytes. */
#ifndef VIVARIUM_IOV_H
#define VIVARIUM_IOV_H

#include <stddef.h>
#include <sys/uio.h>

/* Copy up to @len bytes starting @offset bytes into @iov to @buf.
 * Returns the number of bytes copied. */
size_t iov_to_buf(const struct iovec *iov, unsigned cnt, size_t offset,
		  void *buf, size_t len);
/* Copy @len bytes of @buf into @iov from @offset on; returns bytes copied. */
size_t iov_from_buf(const struct iovec *iov, unsigned cnt, size_t offset,
		    const void *buf, size_t len);
/* Zero up to @len bytes of @iov from @offset on; returns bytes zeroed. */
size_t iov_memset0(const struct iovec *iov, unsigned cnt, size_t offset,
		   size_t len);
/* Describe bytes [@offset, @offset + @len) of @iov in @out (at most @max
 * entries).  Returns the number of entries, or -1 if the range is not all
 * inside @iov or needs more than @max entries. */
int iov_slice(const struct iovec *iov, unsigned cnt, size_t offset,
	      size_t len, struct iovec *out, unsigned max);

#endif
