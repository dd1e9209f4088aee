/* SPDX-License-Identifier: MIT */
#include "iov.h"

#include <string.h>

/* Walk [@offset, @offset + @len) of @iov: copy out to @dst, in from @src,
 * or zero (both NULL).  Returns the bytes covered. */
static size_t iov_walk(const struct iovec *iov, unsigned cnt, size_t offset,
		       void *dst, const void *src, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < cnt && done < len; i++) {
		char *p;
		size_t n;

		if (offset >= iov[i].iov_len) {
			offset -= iov[i].iov_len;
			continue;
		}
		p = (char *)iov[i].iov_base + offset;
		n = iov[i].iov_len - offset;
		if (n > len - done)
			n = len - done;
		if (dst)
			memcpy((char *)dst + done, p, n);
		else if (src)
			memcpy(p, (const char *)src + done, n);
		else
			memset(p, 0, n);
		done += n;
		offset = 0;
	}
	return done;
}

size_t iov_to_buf(const struct iovec *iov, unsigned cnt, size_t offset,
		  void *buf, size_t len)
{
	return iov_walk(iov, cnt, offset, buf, NULL, len);
}

size_t iov_from_buf(const struct iovec *iov, unsigned cnt, size_t offset,
		    const void *buf, size_t len)
{
	return iov_walk(iov, cnt, offset, NULL, buf, len);
}

size_t iov_memset0(const struct iovec *iov, unsigned cnt, size_t offset,
		   size_t len)
{
	return iov_walk(iov, cnt, offset, NULL, NULL, len);
}

int iov_slice(const struct iovec *iov, unsigned cnt, size_t offset,
	      size_t len, struct iovec *out, unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < cnt && len > 0; i++) {
		size_t take;

		if (offset >= iov[i].iov_len) {
			offset -= iov[i].iov_len;
			continue;
		}
		if (n == max)
			return -1;
		take = iov[i].iov_len - offset;
		if (take > len)
			take = len;
		out[n].iov_base = (char *)iov[i].iov_base + offset;
		out[n].iov_len = take;
		n++;
		len -= take;
		offset = 0;
	}
	return len ? -1 : (int)n;
}
