/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/console_pattern.h - a known picture for the frontend tests:
 * distinct red, green and blue per pixel (so a swapped channel shows),
 * drawn into a console's surface by a tiny display adapter.
 */
#ifndef VIVARIUM_CONSOLE_PATTERN_H
#define VIVARIUM_CONSOLE_PATTERN_H

#include <stdint.h>

#include "display/console.h"

static inline uint32_t pattern_pixel(unsigned x, unsigned y, unsigned seed)
{
	return ((x * 7 + y * 13 + seed) & 0xff) << 16 |
	       ((x * 3 + seed * 5 + 40) & 0xff) << 8 | ((y * 11 + x) & 0xff);
}

/* Fill the whole surface with the pattern for @seed and mark it dirty. */
static inline void pattern_fill(struct console *con, unsigned seed)
{
	struct console_surface *s = console_surface(con);

	for (unsigned y = 0; y < s->height; y++)
		for (unsigned x = 0; x < s->width; x++)
			s->pixels[y * s->width + x] = pattern_pixel(x, y, seed);
	console_dirty(con, 0, 0, s->width, s->height);
}

#endif
