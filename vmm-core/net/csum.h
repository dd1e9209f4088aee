/* SPDX-License-Identifier: MIT */
/* vmm-core/net/csum.h - the Internet checksum (RFC 1071), which the NICs
 * and net.c complete in software where a backend or a NIC cannot take a
 * partial one (net.h). */
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

/*
 * net_csum_complete - a partial checksum (virtio-net's NEEDS_CSUM, virtio
 * 1.2 §5.1.6.2): the sender left the checksum of bytes [@start, @len) of
 * @f to us, with the pseudo-header's sum already in the 16-bit field at
 * @start + @off.  Store the complement of the sum there (0 as 0xffff,
 * which UDP needs and TCP reads the same).  -1 when the field is not
 * inside the frame.
 */
static inline int net_csum_complete(uint8_t *f, size_t len, uint16_t start,
				    uint16_t off)
{
	size_t at = (size_t)start + off;
	uint16_t v;

	if (start >= len || at + 2 > len)
		return -1;
	v = (uint16_t)~net_csum_add(0, f + start, len - start);
	if (v == 0)
		v = 0xffff;
	f[at] = (uint8_t)(v >> 8);
	f[at + 1] = (uint8_t)v;
	return 0;
}

#endif
