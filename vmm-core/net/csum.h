/* SPDX-License-Identifier: MIT */
/* vmm-core/net/csum.h - the Internet checksum (RFC 1071), which the NICs
 * complete in software for the backends (net.h: frames pass with complete
 * checksums). */
#ifndef VIVARIUM_NET_CSUM_H
#define VIVARIUM_NET_CSUM_H

#include <stddef.h>
#include <stdint.h>

/* @sum plus @len bytes at @p as big-endian 16-bit words (an odd last byte
 * padded with zero), folded to 16 bits. */
static inline uint32_t net_csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	uint64_t s = sum;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		s += (uint32_t)p[len - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint32_t)s;
}

#endif
