/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/block/block_int.h - what the format drivers (raw.c, qcow2.c)
 * share with the generic layer (block.c).  Not for devices or tools.
 */
#ifndef VIVARIUM_BLOCK_INT_H
#define VIVARIUM_BLOCK_INT_H

#include <pthread.h>
#include <sys/types.h>

#include "block.h"

#define BLK_SECTOR 512u
#define BLK_MAX_CHAIN 16	/* backing files below the top image */
#define BLK_WORKERS 4

/* Where the top image's open came from: to find backing-chain loops. */
struct blk_chain {
	unsigned depth;			/* 0 for the top image */
	bool no_lock;			/* the top image's opts->no_lock */
	bool no_backing;		/* ... and opts->no_backing */
	dev_t dev[BLK_MAX_CHAIN + 1];
	ino_t ino[BLK_MAX_CHAIN + 1];
};

/* What one image (not its backing chain) holds for a range. */
enum blk_alloc {
	BLK_ALLOC_NONE,		/* nothing: reads come from the backing file */
	BLK_ALLOC_DATA,		/* data of its own */
	BLK_ALLOC_ZERO,		/* reads as zeroes, hiding the backing file */
};

struct blk_driver {
	/* b->fd, b->path, b->readonly are set; set b->length. */
	int (*open)(struct blk *b, const struct blk_chain *chain, char *err,
		    size_t errlen);
	void (*close)(struct blk *b);
	/* Ranges are checked against blk_length(); @len is the iov total. */
	int (*preadv)(struct blk *b, uint64_t off, const struct iovec *iov,
		      int iovcnt, uint64_t len);
	int (*pwritev)(struct blk *b, uint64_t off, const struct iovec *iov,
		       int iovcnt, uint64_t len);
	int (*flush)(struct blk *b);
	int (*discard)(struct blk *b, uint64_t off, uint64_t len);
	int (*write_zeroes)(struct blk *b, uint64_t off, uint64_t len,
			    bool may_unmap);
	int (*block_status)(struct blk *b, uint64_t off, uint64_t len,
			    uint64_t *pnum, bool *zero);
	int (*get_info)(struct blk *b, struct blk_info *out);
	int (*check)(struct blk *b, struct blk_check_result *res, FILE *report);
	/* The rest only for formats with backing files (NULL for raw). */
	/* How [@off, @off+@len) starts in this image alone (not its backing
	 * chain): *@pnum bytes (> 0) of the same status. */
	int (*alloc_status)(struct blk *b, uint64_t off, uint64_t len,
			    uint64_t *pnum, enum blk_alloc *st);
	/* Rewrite the header to name @name (NULL: none) with format @fmt
	 * (AUTO: no format extension), crash-safely; on success take @nb
	 * (may be NULL) as the open backing file, closing the old one. */
	int (*set_backing)(struct blk *b, const char *name,
			   enum blk_format fmt, struct blk *nb, char *err,
			   size_t errlen);
	/* Unmap every cluster: the image reads through to its backing file. */
	int (*make_empty)(struct blk *b);
	/* Where the driver keeps the open backing file (swapped by commit). */
	struct blk **(*backing_slot)(struct blk *b);
};

extern const struct blk_driver blk_raw_driver;
extern const struct blk_driver blk_qcow2_driver;

struct blk {
	char *path;
	int fd;
	bool readonly;
	bool locked;		/* holds lock bytes (blk_lock_perms) */
	bool probed_raw;	/* format guessed: keep sector 0 non-qcow2 */
	enum blk_format format;
	uint64_t length;	/* bytes, multiple of 512 */
	const struct blk_driver *drv;
	void *opaque;		/* the driver's state */
	struct blk_chain chain;	/* where this image sits in its chain */

	/* Worker pool, started by the first blk_submit(). */
	pthread_mutex_t q_lock;
	pthread_cond_t q_cond;		/* work queued or stopping */
	pthread_cond_t q_idle;		/* inflight dropped to 0 */
	struct blk_req *q_head, *q_tail;
	unsigned inflight;		/* submitted, complete() not returned */
	unsigned nworkers;
	bool workers_started;	/* blk_start_workers(): submit starts none */
	bool stopping;
	pthread_t workers[BLK_WORKERS];
};

/* QEMU's block permissions (include/block/block-common.h), the bits of
 * the lock protocol described in block.h. */
enum {
	BLK_PERM_CONSISTENT_READ = 0x1,
	BLK_PERM_WRITE = 0x2,
	BLK_PERM_WRITE_UNCHANGED = 0x4,
	BLK_PERM_RESIZE = 0x8,
	BLK_PERM_ALL = 0xf,
};

/*
 * blk_lock_perms - take @fd's locks for holding @perm and sharing @shared
 * (BLK_PERM_* bits), then check that nobody else unshares a permission in
 * @perm or holds one outside @shared (block.h, "Image locks").  Returns 0
 * (also on a file system without locks: nothing is locked), -EBUSY with
 * "'PATH' is in use by another process, which ..." in @err, or -errno; on
 * failure @fd holds no lock bytes.
 */
int blk_lock_perms(int fd, unsigned perm, unsigned shared, const char *path,
		   char *err, size_t errlen);
/* Drop every lock byte of the protocol that @fd's open file description
 * holds. */
void blk_unlock_perms(int fd);

/* Open a backing file read-only (shared lock unless @no_lock), one level
 * below @chain.  Errors as blk_open(), with @err filled. */
int blk_open_backing(const char *path, enum blk_format fmt, bool no_lock,
		     const struct blk_chain *chain, struct blk **out, char *err,
		     size_t errlen);

/* The open backing file of @b, or NULL (none, raw, or not opened). */
struct blk *blk_backing(struct blk *b);
/* @name resolved against @image's folder, as opening does (malloc'd;
 * NULL when out of memory). */
char *blk_backing_path(const char *image, const char *name);

/* Full-length positioned I/O on @fd: retries short transfers and EINTR,
 * splits at IOV_MAX.  Reads past end of file fill zeroes.  0 or -errno. */
int blk_fd_preadv(int fd, const struct iovec *iov, int iovcnt, uint64_t off);
int blk_fd_pwritev(int fd, const struct iovec *iov, int iovcnt, uint64_t off);
int blk_fd_pread(int fd, void *buf, size_t len, uint64_t off);
int blk_fd_pwrite(int fd, const void *buf, size_t len, uint64_t off);

/* Format a one-line error into @err (may be NULL) and return @ret. */
int blk_err(char *err, size_t errlen, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

int blk_qcow2_create(int fd, const struct blk_create_opts *opts,
		     uint64_t size, enum blk_format backing_fmt, char *err,
		     size_t errlen);

#endif
