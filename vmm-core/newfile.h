/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/newfile.h - a file that appears under its name only once it is
 * complete.  It is written as an O_TMPFILE (nameless) in the destination's
 * folder and linked in at the end, so a process killed half-way leaves
 * nothing behind.  Where the file system has no O_TMPFILE, it is written
 * under a temporary name beside the destination, ".NAME.vivarium-PID-N";
 * such temporaries of processes that no longer run (killed, crashed) are
 * removed by the next newfile_open() for the same NAME.
 *
 * Errors are negative errno values with a one-line message in @err.
 */
#ifndef VIVARIUM_NEWFILE_H
#define VIVARIUM_NEWFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct newfile {
	int fd;		/* open O_RDWR: write the content here */
	char *path;	/* the name it gets */
	char *tmp;	/* its temporary name; NULL while nameless */
};

/*
 * newfile_open - start a new file for @path, created with @mode (the umask
 * applies, as with open(2)).  Does not look at @path itself: the commit
 * decides about an existing file.  Returns 0, or -errno with @err
 * ("'PATH': cannot create: ..."); @nf then needs no newfile_abort().
 */
int newfile_open(struct newfile *nf, const char *path, mode_t mode,
		 char *err, size_t errlen);

/*
 * newfile_commit - fsync the file and give it its name.  With @replace, an
 * existing file at the path is replaced (atomically: rename(2)); without,
 * -EEXIST ("'PATH' already exists; not overwriting it") leaves both as they
 * were.  Closes the file and releases @nf whatever happens: on failure,
 * nothing is left behind.
 */
int newfile_commit(struct newfile *nf, bool replace, char *err,
		   size_t errlen);

/* newfile_abort - drop the new file (close it, remove its temporary name).
 * Safe on a committed or aborted @nf. */
void newfile_abort(struct newfile *nf);

#endif
