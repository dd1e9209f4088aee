/* SPDX-License-Identifier: MIT */
#include "png_write.h"

#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "display/console.h"
#include "newfile.h"

static int write_rows(FILE *f, const struct console_surface *s, char *err,
		      size_t errlen)
{
	png_structp png;
	png_infop info;
	uint8_t *row = NULL;

	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	info = png ? png_create_info_struct(png) : NULL;
	if (!info) {
		png_destroy_write_struct(&png, NULL);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	row = malloc((size_t)s->width * 3);
	if (!row || setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		free(row);
		snprintf(err, errlen, "cannot write the PNG: %s",
			 row ? "write error" : "out of memory");
		return row ? -EIO : -ENOMEM;
	}
	png_init_io(png, f);
	png_set_IHDR(png, info, s->width, s->height, 8, PNG_COLOR_TYPE_RGB,
		     PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
		     PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (unsigned y = 0; y < s->height; y++) {
		const uint32_t *p = (const uint32_t *)((const uint8_t *)s->pixels +
						       (size_t)y * s->stride);

		for (unsigned x = 0; x < s->width; x++) {
			row[3 * x] = (uint8_t)(p[x] >> 16);
			row[3 * x + 1] = (uint8_t)(p[x] >> 8);
			row[3 * x + 2] = (uint8_t)p[x];
		}
		png_write_row(png, row);
	}
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	free(row);
	return 0;
}

int png_write_surface(const char *path, const struct console_surface *s,
		      char *err, size_t errlen)
{
	struct newfile nf;
	FILE *f;
	int r, fd;

	/* Appears complete or not at all, even if we are killed. */
	r = newfile_open(&nf, path, 0666, err, errlen);
	if (r < 0)
		return r;
	fd = dup(nf.fd);
	f = fd >= 0 ? fdopen(fd, "wb") : NULL;
	if (!f) {
		r = -errno;
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		newfile_abort(&nf);
		return r;
	}
	r = write_rows(f, s, err, errlen);
	if (r == 0 && fflush(f)) {
		r = -errno;
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
	}
	if (fclose(f) && r == 0) {
		r = -errno;
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
	}
	if (r < 0) {
		newfile_abort(&nf);
		return r;
	}
	return newfile_commit(&nf, true, err, errlen);
}
