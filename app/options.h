/* SPDX-License-Identifier: MIT */
/* app/options.h - parsing of command-line values shared by subcommands. */
#ifndef VIVARIUM_OPTIONS_H
#define VIVARIUM_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

struct machine_drive;

/*
 * parse_size - "512M", "2G", "1048576K", "4096" (bytes), suffixes K, M, G, T
 * (powers of 1024, case-insensitive, optional trailing "iB"/"B").  Returns 0
 * with *bytes set, or -EINVAL (not a size) / -ERANGE (overflows 64 bits).
 */
int parse_size(const char *s, uint64_t *bytes);

/* parse_uint - a decimal integer in [min, max]; 0, -EINVAL or -ERANGE. */
int parse_uint(const char *s, unsigned min, unsigned max, unsigned *out);

/*
 * parse_drive_spec - a --disk value: "PATH[,format=raw|qcow2][,if=virtio|ata]
 * [,readonly]" (a path containing ',' is written with ",," as in QEMU).
 * Fills @d (its path is a heap copy the caller may keep for the process's
 * life).  Returns 0 or -EINVAL with one line in @err.
 */
int parse_drive_spec(const char *spec, struct machine_drive *d, char *err,
		     size_t errlen);

#endif
