/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/block/block.h - the block layer: disk image formats (raw,
 * qcow2 v2/v3 per docs/interop/qcow2.txt of QEMU, "the qcow2 spec") behind
 * one interface, synchronous calls for tools and a worker pool that runs
 * device requests off the vCPU threads.
 *
 * Units: every offset and length is in bytes.  A disk's length is a
 * multiple of 512; devices issue 512-byte-aligned requests, tools may not.
 * Errors are negative errno values; calls that can fail for a reason the
 * user must read also fill @err (one line, no newline).
 *
 * Thread safety: every call on one struct blk may come from any thread,
 * concurrently (the format driver serialises its metadata updates).
 */
#ifndef VIVARIUM_BLOCK_H
#define VIVARIUM_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>

enum blk_format {
	BLK_FMT_AUTO = 0,	/* probe: qcow2 magic, else raw */
	BLK_FMT_RAW,
	BLK_FMT_QCOW2,
};

struct blk;

/*
 * Image locks: QEMU's protocol, so that vivarium, QEMU and qemu-img/qemu-io
 * see each other (the spec: QEMU's block/file-posix.c, raw_apply_lock_bytes()
 * and raw_check_lock_bytes(); permission bits from include/block/
 * block-common.h: consistent read 0x1, write 0x2, write-unchanged 0x4,
 * resize 0x8).  A process takes, with shared OFD read locks on its open
 * file description, byte 100+N for each permission N it holds and byte
 * 200+N for each permission N it does not share with others; then, with
 * F_OFD_GETLK write-lock probes, it gives up if anyone holds 200+N for an
 * N it wants or 100+N for an N it does not share.  Only bytes 100-103 and
 * 200-203 are locked, never the whole file.
 *
 * Roles: what QEMU 7.2 holds / does not share on the image file (seen in
 * /proc/locks and strace; R consistent read, W write, RS resize), and what
 * vivarium takes for the same role:
 *   role                          QEMU           vivarium (block.c)
 *   VM disk, writable, raw        R W / W        R W / W RS
 *   VM disk, writable, qcow2      R W RS / W RS  R W RS / W RS
 *   CD-ROM; read-only qcow2 disk  R / W RS       R / W RS
 *   read-only raw virtio disk     R / W          R / W RS
 *   backing file                  R / W RS       R / W RS
 *   qemu-img convert source,      R / W RS       R / W RS (img convert,
 *     qemu-img check (qcow2)                       img check)
 *   qemu-img check (raw)          R / -          R / W RS
 *   qemu-img info (qcow2)         - / W RS       nothing (img info)
 *   qemu-img info (raw), info -U  nothing        nothing (img info)
 *   qemu-img check/convert -U     R / -          nothing (-U: no_lock)
 *   convert/create destination    W RS / RS (raw) R W(RS) / W RS, on a
 *                                 R W RS / W RS    nameless file (newfile.h)
 *   qemu-io; qemu-io -r (raw)     R W / -; R / -  (QEMU only)
 *   qemu-io -r (qcow2)            R / W RS       (QEMU only)
 * So a writable image is held by one writer only, readers exclude writers
 * and share with each other, and a writer also refuses QEMU's readers that
 * unshare write (qemu-img check/convert, qemu-io -r of a qcow2, read-only
 * drives, and qemu-img info of a qcow2 without -U), as a QEMU VM does;
 * readers that share everything (qemu-img info of a raw image, -U, qemu-io
 * -r of a raw image) read it anyway.  Our
 * devices cannot follow a resize, hence resize is never shared (QEMU's
 * CD-ROM does the same).  A write lock held by anyone on those bytes (a
 * process not speaking the protocol, e.g. an older vivarium's whole-file
 * lock) refuses the open too.  Where the file system has no locks, images
 * open unlocked.
 */

struct blk_open_opts {
	enum blk_format format;
	bool readonly;
	/* Take no lock at all: read whatever holds it (`img info`, -U). */
	bool no_lock;
	/* Do not open a qcow2 backing file (for `img info` when it is
	 * missing); unallocated clusters then read as zeroes. */
	bool no_backing;
};

/*
 * blk_open - open the image at @path and, for qcow2, its backing chain
 * (backing files read-only).  Unless @opts->no_lock, locks every file for
 * its role (see "Image locks" above: writable or read-only; backing files
 * read-only), so an image a running VM uses (ours or QEMU's) cannot be
 * opened for writing by another process.  Errors: -ENOENT/-EACCES (cannot
 * open), -EBUSY (in use: "'PATH' is in use by another process, which has
 * it open for writing (is a VM using it?)", or "which does not share
 * write access", or "which holds a lock on it"), -EINVAL
 * (corrupt or unsupported header/tables: "'PATH': qcow2 L1 table ...";
 * also not a regular file or block device, a backing chain that loops or
 * is deeper than 16, and, for writing only, qcow2 images with internal
 * snapshots or the dirty/corrupt bit; unsupported at all: encryption,
 * external data files, extended L2 entries), -ENOMEM.  A backing file's
 * error reads "'TOP': backing file: 'BACKING': ...".  A corrupt image is
 * never written; metadata found corrupt while running makes further
 * writes fail with -EIO.
 *
 * Virtual size: qcow2's header size, raw's file length (block devices:
 * BLKGETSIZE64), each rounded up to 512 bytes (the tail reads as zeroes).
 */
int blk_open(const char *path, const struct blk_open_opts *opts,
	     struct blk **out, char *err, size_t errlen);
/*
 * blk_open_fd - blk_open() on a file the caller has open already (@fd, its
 * access mode must allow @opts->readonly's; e.g. a nameless O_TMPFILE being
 * filled by `img convert`).  The block layer works on a duplicate of @fd,
 * so the caller keeps and closes its own; @path names the image in
 * messages and is the folder relative backing files are looked up in.
 * The lock (unless no_lock) is on @fd's open file description, which the
 * caller's @fd shares; blk_close() drops it.  Errors as blk_open(), and -EBADF for an @fd
 * opened read-only when writing is asked for.
 */
int blk_open_fd(int fd, const char *path, const struct blk_open_opts *opts,
		struct blk **out, char *err, size_t errlen);
/* Waits for queued requests, flushes, unlocks and closes.  NULL is fine. */
void blk_close(struct blk *b);

/*
 * blk_suspend - wait for @b's requests, flush it and close its image (and
 * its backing chain), releasing its locks, while @b itself stays valid for
 * its users (a device holding the pointer): for work on the image files
 * that the process must not hold open meanwhile (a snapshot's overlay put
 * on top, a snapshot merged).  Submit nothing until blk_resume(): reads
 * and writes of a suspended image fail with -EIO.  Returns 0 or the
 * flush's -errno (the image is closed either way).  No-op if suspended.
 *
 * blk_resume - open @path (NULL: the image @b had, as it was opened) with
 * @opts and make it @b's image: its virtual size must be @b's.  On
 * failure @b gets its old image back if that still opens (else it stays
 * suspended: every request -EIO) and -errno + @err is returned.  -EBUSY if
 * @b is not suspended.
 */
int blk_suspend(struct blk *b);
/* Is @b suspended (no image open)? */
bool blk_suspended(const struct blk *b);
int blk_resume(struct blk *b, const char *path,
	       const struct blk_open_opts *opts, char *err, size_t errlen);

uint64_t blk_length(const struct blk *b);	/* virtual size, bytes */
bool blk_is_readonly(const struct blk *b);
enum blk_format blk_get_format(const struct blk *b);
const char *blk_path(const struct blk *b);
const char *blk_format_name(enum blk_format f);	/* "raw", "qcow2", "auto" */
/* "raw" / "qcow2" -> format; returns -EINVAL for anything else. */
int blk_parse_format(const char *name, enum blk_format *out);

/* ---- synchronous I/O (tools, tests; devices use blk_submit) ------------ */

/*
 * Read/write [@offset, @offset + total iov length).  A range past the end
 * of the disk is -EINVAL; a write to a read-only disk -EROFS.  Reading an
 * unallocated qcow2 cluster reads the backing file, or zeroes.
 * Returns 0 or -errno (-EIO for corrupt metadata met on the way; -EPERM
 * for a write that would put the qcow2 magic at offset 0 of an image whose
 * format was probed as raw: the next probe would trust guest data).
 */
int blk_preadv(struct blk *b, uint64_t offset, const struct iovec *iov,
	       int iovcnt);
int blk_pwritev(struct blk *b, uint64_t offset, const struct iovec *iov,
		int iovcnt);
int blk_pread(struct blk *b, uint64_t offset, void *buf, size_t len);
int blk_pwrite(struct blk *b, uint64_t offset, const void *buf, size_t len);
/* Make every completed write durable (fdatasync of data, then metadata). */
int blk_flush(struct blk *b);
/* Hint that the range is unused: its content becomes undefined-but-stable
 * (qcow2: whole clusters covered become unallocated without a backing
 * file, zero clusters with one (v3), unchanged with one in v2; partial
 * clusters unchanged; raw: punch hole).  Never fails for a range the
 * format cannot discard. */
int blk_discard(struct blk *b, uint64_t offset, uint64_t len);
/* Make the range read as zeroes; @may_unmap lets the format free space
 * (qcow2 v3 without it: whole allocated clusters keep their host cluster
 * and get the zero flag; partial clusters are written with zeroes). */
int blk_write_zeroes(struct blk *b, uint64_t offset, uint64_t len,
		     bool may_unmap);

/*
 * blk_block_status - how [@offset, @offset + @len) starts: sets *@pnum to
 * the length (bytes, > 0) of the leading run with the same status, and
 * *@zero to whether that run reads as zeroes without reading data
 * (unallocated with no backing data, zero clusters, holes).  For convert
 * and `img info`'s disk size.  Returns 0 or -errno.
 */
int blk_block_status(struct blk *b, uint64_t offset, uint64_t len,
		     uint64_t *pnum, bool *zero);

/* ---- asynchronous requests: the worker pool -------------------------- */

enum blk_op {
	BLK_OP_READ,
	BLK_OP_WRITE,
	BLK_OP_FLUSH,
	BLK_OP_DISCARD,
	BLK_OP_WRITE_ZEROES,
};

struct blk_req {
	enum blk_op op;
	uint64_t offset;		/* bytes */
	const struct iovec *iov;	/* READ/WRITE: guest buffers */
	int iovcnt;
	uint64_t len;			/* DISCARD/WRITE_ZEROES: bytes */
	bool may_unmap;			/* WRITE_ZEROES */
	/* Called exactly once, on a worker thread, with no block-layer lock
	 * held, @ret 0 or -errno.  It may take the device lock. */
	void (*complete)(struct blk_req *req, int ret);
	void *opaque;
	struct blk_req *next_;		/* private to the block layer */
};

/*
 * blk_submit - queue @req for a worker thread.  @req and its iovecs must
 * stay valid until complete() runs.  Returns 0 (complete() will run) or
 * -errno (-EROFS for a write to a read-only disk, -EINVAL for no
 * complete() or an unknown op, -ESHUTDOWN while closing: complete() will
 * not run).  Range errors come through complete().  Four worker threads
 * per blk, started by the first submit; requests run concurrently and may
 * complete in any order.
 */
int blk_submit(struct blk *b, struct blk_req *req);
/*
 * blk_start_workers - start @b's worker threads now, as children of the
 * calling thread, instead of at the first blk_submit(): a sandboxed
 * machine starts them on the thread that opens the image, so a vCPU thread
 * (whose filter allows no new threads) never does.  After it blk_submit()
 * starts none (it uses those that started; none: -EAGAIN).  Returns 0, or
 * -errno (-EAGAIN: no thread could start).
 */
int blk_start_workers(struct blk *b);
/* Wait until every request submitted so far has completed (its complete()
 * has returned); precisely, until none is outstanding, so requests that
 * other threads submit meanwhile are waited for too.  Call with no lock
 * held that complete() takes. */
void blk_drain(struct blk *b);

/* ---- image tools (`vivarium img`) ----------------------------------------- */

struct blk_create_opts {
	enum blk_format format;		/* RAW or QCOW2 */
	uint64_t size;			/* bytes; 0 with a backing file: its size */
	const char *backing;		/* qcow2 only; may be NULL */
	enum blk_format backing_format;	/* AUTO: probe */
	unsigned cluster_bits;		/* qcow2: 9..21; 0 = 16 (64 KiB) */
	unsigned compat;		/* qcow2: 3 (default, 0) or 2 */
	unsigned mode;			/* file mode; 0: 0666 less the umask */
};

/*
 * blk_create - create a new image.  Refuses to overwrite an existing file
 * (-EEXIST).  Writes a nameless file in @path's folder and links it in
 * when complete (vmm-core/newfile.h), so a full disk (-ENOSPC), any error
 * or a kill leaves nothing behind.
 * @size is rounded up to 512.  A relative @backing is stored as given and
 * resolved against @path's directory (as when opening); it is opened now
 * (errors as blk_open(), e.g. -ENOENT "'DIR/NAME': cannot open: ..."),
 * and its format, given or probed, is recorded in the backing-format
 * header extension.  qcow2 images get refcount_bits 16, no lazy refcounts.
 */
int blk_create(const char *path, const struct blk_create_opts *opts,
	       char *err, size_t errlen);
/*
 * blk_create_fd - blk_create()'s work on @fd, an empty file open for
 * writing that @path will name (messages; relative backing files are
 * looked up beside it): sets @opts->mode if not 0, writes the format's
 * metadata (qcow2) or the length (raw).  Naming the file is the
 * caller's; on failure @fd's content is undefined.
 */
int blk_create_fd(int fd, const char *path, const struct blk_create_opts *opts,
		  char *err, size_t errlen);

struct blk_info {
	enum blk_format format;
	uint64_t virtual_size;		/* bytes */
	uint64_t actual_size;		/* bytes the file occupies on the host */
	uint64_t file_length;		/* bytes, st_size */
	/* qcow2 only: */
	unsigned version;		/* 2 or 3 */
	uint64_t cluster_size;		/* bytes */
	char backing[4096];		/* as stored in the header; "" if none */
	enum blk_format backing_format;	/* from the header extension; AUTO */
	bool dirty;			/* incompatible "dirty" bit */
	bool corrupt;			/* incompatible "corrupt" bit */
	bool lazy_refcounts;
	unsigned refcount_bits;
	bool compressed_zstd;		/* compression type zstd */
};
int blk_get_info(struct blk *b, struct blk_info *out);

/* What `qemu-img check` reports (for qcow2; raw always checks clean). */
struct blk_check_result {
	uint64_t corruptions;		/* refcount too low, bad offsets, ... */
	uint64_t leaks;			/* clusters with refcount > uses */
	uint64_t check_errors;		/* I/O errors while checking */
	uint64_t allocated_clusters;	/* data clusters in use */
	uint64_t total_clusters;	/* virtual size / cluster size */
	uint64_t fragmented_clusters;
	uint64_t compressed_clusters;
	uint64_t image_end_offset;	/* bytes */
};
/*
 * blk_check - walk the L1/L2 tables and refcounts (qcow2 spec "Host cluster
 * management") and count what disagrees.  Writes each problem as one line
 * to @report (may be NULL): "ERROR cluster N refcount=R reference=F"
 * (a corruption), "Leaked cluster N refcount=R reference=F", "ERROR
 * OFLAG_COPIED ...", as qemu-img does.  Internal snapshots' tables count as
 * references.  Returns 0 (look at @res) or -errno if the image could not
 * be read.  Changes nothing the guest can see (an image open for writing
 * has its cached metadata written out first).
 */
int blk_check(struct blk *b, struct blk_check_result *res, FILE *report);

/* ---- backing chains: snapshots as external overlays ---------------------- */

/*
 * These calls are image tools: the caller has no request in flight on
 * @top (blk_drain()) and submits none until they return.  @top must be
 * open for writing and be qcow2 (-EROFS, -EINVAL otherwise).  A new
 * backing file is opened read-only, locked as a backing file (block.h,
 * "Image locks"), relative to @top's folder as when opening; a chain that
 * would loop is refused (-EINVAL).  A crash at any point leaves every
 * image readable and `qemu-img check` clean (leaks aside), @top reading
 * as before.
 */

/*
 * blk_set_backing - make @b's header name @backing (NULL or "": none) as
 * its backing file, with format @fmt in the backing-format header
 * extension (qcow2 spec: "Header", header extension 0xe2792aca); AUTO
 * probes it.  Changes no data: reads of unallocated clusters come from
 * the new file afterwards (the "unsafe" `qemu-img rebase -u`).  If @b was
 * opened with no_backing the new file is not opened (AUTO then writes no
 * format extension).  Crash safety: the switch is one write of the
 * header's first 512 bytes, after what it refers to is durable (qcow2.c,
 * qcow2_set_backing()).  Errors: -ENOENT etc. opening the new file (as
 * blk_open()), -EINVAL, -ENOSPC for a name that does not fit in the
 * header cluster beside the header's extensions, -EIO.
 */
int blk_set_backing(struct blk *b, const char *backing, enum blk_format fmt,
		    char *err, size_t errlen);

/*
 * blk_stream - copy into @top every cluster @top does not have but its
 * backing file B (opened with it) has allocated (data, or zero clusters,
 * written as zero clusters where the format can: qcow2 v3), and zeroes
 * where @top reads past B's end; then make B's own backing file, if any,
 * @top's (blk_set_backing(), named relative to @top's folder, or none).
 * @top reads the same throughout.  Ordering: the copies, a flush, then
 * the header: a crash leaves @top on B with some clusters copied.
 */
int blk_stream(struct blk *top, char *err, size_t errlen);

enum {
	/* blk_commit(): keep @top's clusters (qemu-img commit -d). */
	BLK_COMMIT_KEEP_TOP = 1u << 0,
};

/*
 * blk_commit - write @top's own clusters (data, and zero clusters as
 * zeroes) into its backing file B, as `qemu-img commit` does, then,
 * unless BLK_COMMIT_KEEP_TOP, unallocate all of @top's clusters so it
 * reads through to B.  B is reopened writable for it (-EBUSY if anyone
 * else uses it, a VM or another overlay's user) and read-only again at
 * the end.  B must be at least as large as @top (-EINVAL; it is not
 * grown).  Ordering: B's writes and a flush of B complete before @top's
 * clusters are dropped, so @top reads the same at every point; B's
 * content is undefined if the commit fails midway (as with qemu-img).
 */
int blk_commit(struct blk *top, unsigned flags, char *err, size_t errlen);

/*
 * blk_rebase - the safe `qemu-img rebase`: wherever @top reads from its
 * backing chain and @backing (NULL or "": none, i.e. zeroes) would read
 * differently, copy the old content into @top (all-zero clusters as zero
 * clusters where the format can); then blk_set_backing(@top, @backing,
 * @fmt).  @top reads the same before and after, and at every point
 * between (the header changes last).  Needs @top opened with its backing
 * chain.
 */
int blk_rebase(struct blk *top, const char *backing, enum blk_format fmt,
	       char *err, size_t errlen);

#endif
