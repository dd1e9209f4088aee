/* SPDX-License-Identifier: MIT */
/* app/options.h - parsing of command-line values shared by subcommands. */
#ifndef VIVARIUM_OPTIONS_H
#define VIVARIUM_OPTIONS_H

#include <stdint.h>

/*
 * parse_size - "512M", "2G", "1048576K", "4096" (bytes), suffixes K, M, G, T
 * (powers of 1024, case-insensitive, optional trailing "iB"/"B").  Returns 0
 * with *bytes set, or -EINVAL (not a size) / -ERANGE (overflows 64 bits).
 */
int parse_size(const char *s, uint64_t *bytes);

/* parse_uint - a decimal integer in [min, max]; 0, -EINVAL or -ERANGE. */
int parse_uint(const char *s, unsigned min, unsigned max, unsigned *out);

#endif
