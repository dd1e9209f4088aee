/* SPDX-License-Identifier: MIT */
/* app/png_write.h - console surfaces as PNG files (libpng). */
#ifndef VIVARIUM_PNG_WRITE_H
#define VIVARIUM_PNG_WRITE_H

#include <stddef.h>

struct console_surface;
struct newfile;

/*
 * png_write_surface - write @s as an 8-bit RGB PNG at @path, as a
 * nameless file in the same directory linked into place
 * (vmm-core/newfile.h), so a full disk, a crash or a kill never leaves a
 * truncated file or a temporary one.  An existing @path must be a
 * regular file this process may write (a symlink counts as the file it
 * names, which is replaced): a device node, a directory or a FIFO is
 * refused (-EINVAL), and so is a file we could not write in place
 * (-EACCES), since a rename would replace it anyway.  The new file keeps
 * the old one's permission bits.  Returns 0 or -errno with one line in
 * @err.
 */
int png_write_surface(const char *path, const struct console_surface *s,
		      char *err, size_t errlen);

/*
 * png_file_begin - png_write_surface()'s first half: check @path as it
 * does and start the nameless file in its folder (@nf: newfile.h; commit
 * it with newfile_commit(@nf, true, ...) or drop it with newfile_abort()).
 * For `vivarium screenshot`, which makes the file itself and hands its fd
 * to the VM's process.  0 or -errno + @err.
 */
int png_file_begin(const char *path, struct newfile *nf, char *err,
		   size_t errlen);

/*
 * png_write_fd - write @s as an 8-bit RGB PNG to @fd (a regular file open
 * for writing, else -EINVAL), from its current offset; @fd stays open.
 * 0 or -errno + @err.
 */
int png_write_fd(int fd, const struct console_surface *s, char *err,
		 size_t errlen);

#endif
