/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/block/lock.c - image locks in QEMU's byte-range protocol, so
 * that vivarium, QEMU and qemu-img each see the others' use of an image.
 * The protocol and the roles are described in block.h ("Image locks"); the
 * spec is QEMU's block/file-posix.c (raw_apply_lock_bytes(),
 * raw_check_lock_bytes()).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "block_int.h"

#define PERM_BASE	100	/* byte 100 + n: "I hold permission n" */
#define SHARED_BASE	200	/* byte 200 + n: "I do not share permission n" */
#define NPERMS		4	/* BLK_PERM_ALL's bits */

static int lock_byte(int fd, off_t off, short type)
{
	struct flock fl = {
		.l_type = type,
		.l_whence = SEEK_SET,
		.l_start = off,
		.l_len = 1,
	};

	return fcntl(fd, F_OFD_SETLK, &fl) == 0 ? 0 : -errno;
}

/* 1 if another open file description holds a lock on byte @off, 0 if
 * none does, -errno.  Our own locks never conflict with our probe. */
static int byte_taken(int fd, off_t off)
{
	struct flock fl = {
		.l_type = F_WRLCK,
		.l_whence = SEEK_SET,
		.l_start = off,
		.l_len = 1,
	};

	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return -errno;
	return fl.l_type != F_UNLCK;
}

void blk_unlock_perms(int fd)
{
	struct flock fl = {
		.l_type = F_UNLCK,
		.l_whence = SEEK_SET,
		.l_start = PERM_BASE,
		.l_len = SHARED_BASE + NPERMS - PERM_BASE,
	};

	fcntl(fd, F_OFD_SETLK, &fl);
}

/* Why an open gives up, per permission bit: someone else does not share
 * the permission we want, or holds one we do not share. */
static const char *const not_shared[NPERMS] = {
	"does not share read access", "does not share write access",
	"does not share write access", "does not share resize access",
};
static const char *const held[NPERMS] = {
	"has it open for reading", "has it open for writing",
	"has it open for writing", "has it open for resizing",
};

/* Give up: drop what step one took, and say why (one line). */
static int busy(int fd, const char *path, char *err, size_t errlen,
		const char *which)
{
	blk_unlock_perms(fd);
	return blk_err(err, errlen, -EBUSY, "'%s' is in use by another "
		       "process, which %s (is a VM using it?)", path, which);
}

int blk_lock_perms(int fd, unsigned perm, unsigned shared, const char *path,
		   char *err, size_t errlen)
{
	int r = 0;

	/* Step one, as QEMU: announce ours (shared read locks, which only a
	 * write lock, i.e. someone not speaking this protocol, refuses)... */
	for (unsigned n = 0; n < NPERMS && !r; n++) {
		if (perm & (1u << n))
			r = lock_byte(fd, PERM_BASE + n, F_RDLCK);
		if (!r && !(shared & (1u << n)))
			r = lock_byte(fd, SHARED_BASE + n, F_RDLCK);
	}
	if (r == -EINVAL || r == -ENOLCK || r == -EOPNOTSUPP) {
		blk_unlock_perms(fd);
		return 0;	/* file system without locks: go on unlocked */
	}
	if (r == -EAGAIN || r == -EACCES)
		return busy(fd, path, err, errlen, "holds a lock on it");
	if (r < 0) {
		blk_unlock_perms(fd);
		return blk_err(err, errlen, r, "'%s': cannot lock: %s", path,
			       strerror(-r));
	}
	/* ...then look at everybody else's.  Two processes opening at once
	 * both see each other's step one, so at worst both give up. */
	for (unsigned n = 0; n < NPERMS; n++) {
		if (perm & (1u << n)) {
			r = byte_taken(fd, SHARED_BASE + n);
			if (r > 0)
				return busy(fd, path, err, errlen,
					    not_shared[n]);
			if (r < 0)
				break;
		}
		if (!(shared & (1u << n))) {
			r = byte_taken(fd, PERM_BASE + n);
			if (r > 0)
				return busy(fd, path, err, errlen, held[n]);
			if (r < 0)
				break;
		}
	}
	if (r < 0) {
		blk_unlock_perms(fd);
		return blk_err(err, errlen, r, "'%s': cannot test locks: %s",
			       path, strerror(-r));
	}
	return 0;
}
