/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_input.h - reading a fuzz input as a stream of operations
 * (bytes past the end read as 0, so every input is a valid program) and
 * writing seeds in the same encoding.  Header-only, for the device targets.
 */
#ifndef VIVARIUM_FUZZ_INPUT_H
#define VIVARIUM_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct in {
	const uint8_t *p;
	size_t n, at;
};

static inline uint8_t in_u8(struct in *in)
{
	return in->at < in->n ? in->p[in->at++] : (in->at++, 0);
}

static inline uint16_t in_u16(struct in *in)
{
	uint16_t v = in_u8(in);

	return (uint16_t)(v | in_u8(in) << 8);
}

static inline uint32_t in_u32(struct in *in)
{
	uint32_t v = in_u16(in);

	return v | (uint32_t)in_u16(in) << 16;
}

static inline void in_bytes(struct in *in, uint8_t *dst, size_t len)
{
	for (size_t i = 0; i < len; i++)
		dst[i] = in_u8(in);
}

static inline int in_more(const struct in *in)
{
	return in->at < in->n;
}

/* A seed under construction (little-endian values, as in_* read them). */
struct seed {
	uint8_t b[65536];
	size_t n;
};

static inline void put(struct seed *s, const void *p, size_t len)
{
	if (s->n + len <= sizeof(s->b)) {
		memcpy(s->b + s->n, p, len);
		s->n += len;
	}
}

static inline void put8(struct seed *s, uint8_t v)
{
	put(s, &v, 1);
}

static inline void put16(struct seed *s, uint16_t v)
{
	put8(s, (uint8_t)v);
	put8(s, (uint8_t)(v >> 8));
}

static inline void put32(struct seed *s, uint32_t v)
{
	put16(s, (uint16_t)v);
	put16(s, (uint16_t)(v >> 16));
}

#endif
