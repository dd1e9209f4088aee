/* SPDX-License-Identifier: MIT */
/* app/png_write.h - console surfaces as PNG files (libpng). */
#ifndef VIVARIUM_PNG_WRITE_H
#define VIVARIUM_PNG_WRITE_H

#include <stddef.h>

struct console_surface;

/*
 * png_write_surface - write @s as an 8-bit RGB PNG at @path (replacing
 * it), as a nameless file in the same directory linked into place
 * (vmm-core/newfile.h), so a full disk, a crash or a kill never leaves a
 * truncated file or a temporary one.  Returns 0 or -errno with one
 * line in @err.
 */
int png_write_surface(const char *path, const struct console_surface *s,
		      char *err, size_t errlen);

#endif
