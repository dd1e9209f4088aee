/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "png_write.h"

#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* Where the PNG goes: @path itself, or the file a symlink there names.
 * *@mode: the existing file's permission bits, or -1 for a new file. */
static char *target_of(const char *path, int *mode, char *err, size_t errlen,
		       int *r)
{
	struct stat st;
	char *target;

	*mode = -1;
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT) {
			target = strdup(path);
			*r = target ? 0 : -ENOMEM;
			if (!target)
				snprintf(err, errlen, "out of memory");
			return target;
		}
		*r = -errno;
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		return NULL;
	}
	target = S_ISLNK(st.st_mode) ? realpath(path, NULL) : strdup(path);
	if (!target) {
		*r = -errno;
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		return NULL;
	}
	if (lstat(target, &st) < 0) {
		if (errno == ENOENT)	/* a symlink to a file yet to be made */
			return *r = 0, target;
		*r = -errno;
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		free(target);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		*r = -EINVAL;
		snprintf(err, errlen, "%s is not a regular file; give a file name for the PNG", path);
		free(target);
		return NULL;
	}
	if (faccessat(AT_FDCWD, target, W_OK, AT_EACCESS) < 0) {
		*r = -errno;
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		free(target);
		return NULL;
	}
	*mode = (int)(st.st_mode & 07777);
	*r = 0;
	return target;
}

int png_file_begin(const char *path, struct newfile *nf, char *err,
		   size_t errlen)
{
	char *target;
	int mode, r;

	target = target_of(path, &mode, err, errlen, &r);
	if (!target)
		return r;
	/* Appears complete or not at all, even if we are killed. */
	r = newfile_open(nf, target, mode >= 0 ? (mode_t)mode : 0666, err, errlen);
	free(target);
	if (r < 0)
		return r;
	if (mode >= 0)
		(void)!fchmod(nf->fd, (mode_t)mode);	/* umask aside */
	return 0;
}

int png_write_fd(int fd, const struct console_surface *s, char *err,
		 size_t errlen)
{
	struct stat st;
	int acc = fcntl(fd, F_GETFL), dfd, r;
	FILE *f;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || acc < 0 ||
	    (acc & O_ACCMODE) == O_RDONLY) {
		snprintf(err, errlen, "the file for the PNG is not a regular file open for writing");
		return -EINVAL;
	}
	dfd = dup(fd);
	f = dfd >= 0 ? fdopen(dfd, "wb") : NULL;
	if (!f) {
		r = -errno;
		snprintf(err, errlen, "cannot write the PNG: %s", strerror(errno));
		if (dfd >= 0)
			close(dfd);
		return r;
	}
	r = write_rows(f, s, err, errlen);
	if (r == 0 && fflush(f)) {
		r = -errno;
		snprintf(err, errlen, "cannot write the PNG: %s", strerror(errno));
	}
	if (fclose(f) && r == 0) {
		r = -errno;
		snprintf(err, errlen, "cannot write the PNG: %s", strerror(errno));
	}
	return r;
}

int png_write_surface(const char *path, const struct console_surface *s,
		      char *err, size_t errlen)
{
	struct newfile nf;
	int r = png_file_begin(path, &nf, err, errlen);

	if (r < 0)
		return r;
	r = png_write_fd(nf.fd, s, err, errlen);
	if (r < 0) {
		char e2[400];

		snprintf(e2, sizeof(e2), "%s: %s", path, err);
		snprintf(err, errlen, "%s", e2);
		newfile_abort(&nf);
		return r;
	}
	return newfile_commit(&nf, true, err, errlen);
}
