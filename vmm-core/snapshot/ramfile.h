/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/snapshot/ramfile.h - guest memory of a saved machine: one file
 * holding every memory block (the RAM mappings, the VGA's VRAM) at
 * page-aligned offsets, zero pages left as holes, so that
 *  - the file takes the space of the memory the guest touched (sparse);
 *  - a restore maps it (MAP_PRIVATE) instead of reading it: the guest
 *    faults pages in from the page cache as it touches them, its writes
 *    go to private copies, and the file never changes (the Firecracker
 *    approach: a revert costs page-table set-up, not a read of the RAM).
 *
 * Layout (little-endian): a 4 KiB header — magic "VIVRAM\0\0", u32 format
 * version (1), u32 block count (at most RAMFILE_BLOCKS_MAX), then per
 * block {char id[32] (NUL-padded), u64 file offset, u64 size}, and the
 * SHA-256 of the header's first 4064 bytes in its last 32 — then the
 * blocks' pages.  Data pages carry no checksum (they are mapped, not
 * read); a file shorter than its last block is refused as truncated.
 */
#ifndef VIVARIUM_RAMFILE_H
#define VIVARIUM_RAMFILE_H

#include <stddef.h>
#include <stdint.h>

#define RAMFILE_PAGE		4096u
#define RAMFILE_BLOCKS_MAX	64u
#define RAMFILE_ID_MAX		31u	/* bytes of a block id */

struct ramfile_block {
	const char *id;		/* "ram.0", "vram"; [a-z0-9._-] */
	uint8_t *hva;		/* page-aligned start of the host mapping */
	uint64_t size;		/* bytes, a multiple of RAMFILE_PAGE */
};

struct ramfile_stats {
	uint64_t bytes;		/* memory in all */
	uint64_t data_bytes;	/* non-zero pages written */
	uint64_t ns;		/* time taken */
};

/*
 * ramfile_save - write @n blocks to a new file at @path (vmm-core/newfile.h:
 * complete or not at all; mode 0600; an existing file is replaced), zero
 * pages as holes, fsync'ed.  The memory must not change meanwhile (the
 * vCPUs are paused).  @stats may be NULL.  Returns 0 or -errno with @err
 * (-ENOSPC: the disk is full; nothing is left behind).
 */
int ramfile_save(const char *path, const struct ramfile_block *b, unsigned n,
		 struct ramfile_stats *stats, char *err, size_t errlen);

/*
 * ramfile_write / ramfile_commit - ramfile_save() in two steps, so that the
 * guest need not stand still while the disk catches up: ramfile_write()
 * copies the memory into a new, still nameless file (page cache speed;
 * the memory may change once it returns), ramfile_commit() fsyncs it and
 * gives it its name @path; ramfile_abort() drops it instead.  @w is opaque
 * storage for them.  Errors as ramfile_save().
 */
struct ramfile_writer {
	char opaque[96];
};
int ramfile_write(const char *path, const struct ramfile_block *b, unsigned n,
		  struct ramfile_writer *w, struct ramfile_stats *stats,
		  char *err, size_t errlen);
int ramfile_commit(struct ramfile_writer *w, char *err, size_t errlen);
void ramfile_abort(struct ramfile_writer *w);

/*
 * ramfile_write_cow - as ramfile_write(), but the copy is made by a child
 * process that fork() gives a copy-on-write view of the blocks, so the
 * memory may change as soon as this returns (milliseconds: the page
 * tables are copied, not the memory); the guest's writes meanwhile cost
 * copy-on-write faults.  The blocks are MADV_DOFORK for the fork only and
 * MADV_DONTFORK again after it.  The child only calls pwrite() and
 * _exit().  ramfile_commit() waits for the child first (@stats' data_bytes
 * and ns are filled then).  -errno if the fork fails (nothing to abort).
 */
int ramfile_write_cow(const char *path, const struct ramfile_block *b,
		      unsigned n, struct ramfile_writer *w,
		      struct ramfile_stats *stats, char *err, size_t errlen);

/*
 * ramfile_map - map the file at @path over the @n blocks' host memory
 * (MAP_PRIVATE | MAP_FIXED at each block's hva): the blocks' ids and sizes
 * must be those in the file, in the same order (-ESTALE "saved for other
 * memory" otherwise); a bad header is -EBADMSG, a short file -EBADMSG
 * ("truncated").  Checks everything before mapping anything; a mapping
 * that then fails leaves that block's old contents replaced by zeros
 * (-ENOMEM): the caller discards the machine.  Returns 0 or -errno.
 */
int ramfile_map(const char *path, const struct ramfile_block *b, unsigned n,
		char *err, size_t errlen);

#endif
