/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/block/block.c - the generic block layer: open with format
 * probe and OFD file locks, range checks, the synchronous calls, the worker
 * pool behind blk_submit(), and image creation.  Format specifics live in
 * raw.c and qcow2.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block_int.h"
#include "newfile.h"
#include "../iov.h"
#include "../sandbox/sandbox.h"

static const uint8_t qcow2_magic[4] = { 'Q', 'F', 'I', 0xfb };

int blk_err(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

/* ---- fd and iovec helpers ------------------------------------------- */

static int fd_io(int fd, const struct iovec *iov, int iovcnt, uint64_t off,
		 bool write)
{
	struct iovec local[64], *v = local;
	int n = iovcnt, ret = 0;

	if (iovcnt <= 0)
		return 0;
	if (iovcnt > 64) {
		v = malloc(sizeof(*v) * (size_t)iovcnt);
		if (!v)
			return -ENOMEM;
	}
	memcpy(v, iov, sizeof(*v) * (size_t)iovcnt);
	struct iovec *cur = v;
	while (n > 0) {
		if (cur->iov_len == 0) {
			cur++;
			n--;
			continue;
		}
		int cnt = n > IOV_MAX ? IOV_MAX : n;
		ssize_t r = write ? pwritev(fd, cur, cnt, (off_t)off)
				  : preadv(fd, cur, cnt, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (r == 0) {
			if (write) {
				ret = -EIO;
				break;
			}
			/* End of file: the rest reads as zeroes. */
			for (int i = 0; i < n; i++)
				memset(cur[i].iov_base, 0, cur[i].iov_len);
			break;
		}
		off += (uint64_t)r;
		size_t done = (size_t)r;
		while (n > 0 && done >= cur->iov_len) {
			done -= cur->iov_len;
			cur++;
			n--;
		}
		if (n > 0) {
			cur->iov_base = (char *)cur->iov_base + done;
			cur->iov_len -= done;
		}
	}
	if (v != local)
		free(v);
	return ret;
}

int blk_fd_preadv(int fd, const struct iovec *iov, int iovcnt, uint64_t off)
{
	return fd_io(fd, iov, iovcnt, off, false);
}

int blk_fd_pwritev(int fd, const struct iovec *iov, int iovcnt, uint64_t off)
{
	return fd_io(fd, iov, iovcnt, off, true);
}

int blk_fd_pread(int fd, void *buf, size_t len, uint64_t off)
{
	struct iovec v = { buf, len };

	return fd_io(fd, &v, 1, off, false);
}

int blk_fd_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
	struct iovec v = { (void *)buf, len };

	return fd_io(fd, &v, 1, off, true);
}

/* ---- open and close -------------------------------------------------- */

const char *blk_format_name(enum blk_format f)
{
	switch (f) {
	case BLK_FMT_RAW:
		return "raw";
	case BLK_FMT_QCOW2:
		return "qcow2";
	default:
		return "auto";
	}
}

int blk_parse_format(const char *name, enum blk_format *out)
{
	if (!name)
		return -EINVAL;
	if (!strcmp(name, "raw"))
		*out = BLK_FMT_RAW;
	else if (!strcmp(name, "qcow2"))
		*out = BLK_FMT_QCOW2;
	else
		return -EINVAL;
	return 0;
}

/*
 * The lock bytes an image takes for its role (block.h, "Image locks"):
 * QEMU's permissions for a guest device over the format's file: consistent
 * read, write if writable, and resize too for a writable qcow2 (it grows
 * its file); write and resize never shared, since our devices cannot
 * follow a resize and the format's metadata must not change under us.
 */
static int lock_role(struct blk *b, char *err, size_t errlen)
{
	unsigned perm = BLK_PERM_CONSISTENT_READ;
	unsigned shared = BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE_UNCHANGED;
	int ret;

	if (!b->readonly) {
		perm |= BLK_PERM_WRITE;
		if (b->format == BLK_FMT_QCOW2)
			perm |= BLK_PERM_RESIZE;
	}
	ret = blk_lock_perms(b->fd, perm, shared, b->path, err, errlen);
	b->locked = ret == 0;
	return ret;
}

/* Open @path, or, with @fd >= 0, a duplicate of @fd that @path names. */
static int open_one(int fd, const char *path, enum blk_format fmt,
		    bool readonly, bool no_lock, bool no_backing,
		    const struct blk_chain *chain, struct blk **out, char *err,
		    size_t errlen)
{
	struct blk *b;
	struct stat st;
	int ret;

	*out = NULL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return blk_err(err, errlen, -ENOMEM, "out of memory");
	b->fd = -1;
	pthread_mutex_init(&b->q_lock, NULL);
	pthread_cond_init(&b->q_cond, NULL);
	pthread_cond_init(&b->q_idle, NULL);
	b->path = strdup(path);
	b->readonly = readonly;
	if (!b->path) {
		ret = blk_err(err, errlen, -ENOMEM, "out of memory");
		goto fail;
	}
	/* O_NONBLOCK: a backing "file" that is a FIFO must not hang us. */
	if (fd >= 0)
		b->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	else
		b->fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC |
				   O_NONBLOCK);
	if (b->fd < 0) {
		ret = -errno;
		blk_err(err, errlen, ret, "'%s': cannot open%s: %s", path,
			readonly ? "" : " for writing", strerror(errno));
		goto fail;
	}
	if (fstat(b->fd, &st) < 0) {
		ret = blk_err(err, errlen, -errno, "'%s': %s", path,
			      strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		ret = blk_err(err, errlen, -EINVAL,
			      "'%s' is not a regular file or block device",
			      path);
		goto fail;
	}
	struct blk_chain here = { 0 };
	if (chain) {
		here = *chain;
		for (unsigned i = 0; i < here.depth; i++) {
			if (here.dev[i] == st.st_dev &&
			    here.ino[i] == st.st_ino) {
				ret = blk_err(err, errlen, -EINVAL,
					      "'%s': backing chain loops back "
					      "to this file", path);
				goto fail;
			}
		}
	}
	here.no_lock = no_lock;
	here.no_backing = no_backing;
	here.dev[here.depth] = st.st_dev;
	here.ino[here.depth] = st.st_ino;
	b->chain = here;
	/* The probe reads before locking: the lock bytes depend on the
	 * format, and nothing is written before they are held. */
	if (fmt == BLK_FMT_AUTO) {
		uint8_t magic[4] = { 0 };
		ret = blk_fd_pread(b->fd, magic, sizeof(magic), 0);
		if (ret < 0) {
			blk_err(err, errlen, ret, "'%s': cannot read: %s", path,
				strerror(-ret));
			goto fail;
		}
		if (!memcmp(magic, qcow2_magic, 4)) {
			fmt = BLK_FMT_QCOW2;
		} else {
			fmt = BLK_FMT_RAW;
			b->probed_raw = true;
		}
	}
	b->format = fmt;
	if (fmt != BLK_FMT_RAW && fmt != BLK_FMT_QCOW2) {
		ret = blk_err(err, errlen, -EINVAL, "'%s': unknown format",
			      path);
		goto fail;
	}
	/* Before b->drv is set: blk_close() of a failed open must not call
	 * a driver that has not opened. */
	if (!no_lock) {
		ret = lock_role(b, err, errlen);
		if (ret < 0)
			goto fail;
	}
	b->drv = fmt == BLK_FMT_RAW ? &blk_raw_driver : &blk_qcow2_driver;
	ret = b->drv->open(b, &here, err, errlen);
	if (ret < 0) {
		b->drv->close(b);	/* frees what open got done */
		b->drv = NULL;
		goto fail;
	}
	*out = b;
	return 0;
fail:
	blk_close(b);
	return ret;
}

int blk_open(const char *path, const struct blk_open_opts *opts,
	     struct blk **out, char *err, size_t errlen)
{
	struct blk_open_opts def = { 0 };

	if (!opts)
		opts = &def;
	if (err && errlen)
		err[0] = '\0';
	return open_one(-1, path, opts->format, opts->readonly, opts->no_lock,
			opts->no_backing, NULL, out, err, errlen);
}

int blk_open_fd(int fd, const char *path, const struct blk_open_opts *opts,
		struct blk **out, char *err, size_t errlen)
{
	struct blk_open_opts def = { 0 };
	int acc = fcntl(fd, F_GETFL);

	if (!opts)
		opts = &def;
	if (err && errlen)
		err[0] = '\0';
	*out = NULL;
	if (acc < 0 || (!opts->readonly && (acc & O_ACCMODE) == O_RDONLY))
		return blk_err(err, errlen, -EBADF, "'%s': not open for %s",
			       path, opts->readonly ? "reading" : "writing");
	return open_one(fd, path, opts->format, opts->readonly, opts->no_lock,
			opts->no_backing, NULL, out, err, errlen);
}

int blk_open_backing(const char *path, enum blk_format fmt, bool no_lock,
		     const struct blk_chain *chain, struct blk **out, char *err,
		     size_t errlen)
{
	struct blk_chain next = *chain;

	if (chain->depth >= BLK_MAX_CHAIN)
		return blk_err(err, errlen, -EINVAL,
			       "'%s': backing chain deeper than %u images",
			       path, BLK_MAX_CHAIN);
	next.depth++;
	return open_one(-1, path, fmt, true, no_lock, false, &next, out, err,
			errlen);
}

static void stop_workers(struct blk *b)
{
	pthread_mutex_lock(&b->q_lock);
	b->stopping = true;
	pthread_cond_broadcast(&b->q_cond);
	pthread_mutex_unlock(&b->q_lock);
	for (unsigned i = 0; i < b->nworkers; i++)
		pthread_join(b->workers[i], NULL);
	b->nworkers = 0;
}

void blk_close(struct blk *b)
{
	if (!b)
		return;
	blk_drain(b);
	stop_workers(b);
	if (b->drv) {
		if (!b->readonly)
			b->drv->flush(b);
		b->drv->close(b);
	}
	/* Unlock explicitly: with blk_open_fd() the caller's fd shares the
	 * open file description, whose locks would outlive our close(). */
	if (b->locked)
		blk_unlock_perms(b->fd);
	if (b->fd >= 0)
		close(b->fd);
	pthread_mutex_destroy(&b->q_lock);
	pthread_cond_destroy(&b->q_cond);
	pthread_cond_destroy(&b->q_idle);
	free(b->path);
	free(b);
}

int blk_suspend(struct blk *b)
{
	int r = 0;

	if (!b || !b->drv)
		return 0;
	blk_drain(b);
	if (!b->readonly)
		r = b->drv->flush(b);
	b->drv->close(b);
	b->drv = NULL;
	b->opaque = NULL;
	if (b->locked)
		blk_unlock_perms(b->fd);
	b->locked = false;
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
	return r;
}

bool blk_suspended(const struct blk *b)
{
	return b && !b->drv;
}

/* The image of @nb (just opened, never submitted to) becomes @b's; @nb's
 * shell is freed. */
static void take_image(struct blk *b, struct blk *nb)
{
	free(b->path);
	b->path = nb->path;
	b->fd = nb->fd;
	b->readonly = nb->readonly;
	b->locked = nb->locked;
	b->probed_raw = nb->probed_raw;
	b->format = nb->format;
	b->length = nb->length;
	b->drv = nb->drv;
	b->opaque = nb->opaque;
	b->chain = nb->chain;
	pthread_mutex_destroy(&nb->q_lock);
	pthread_cond_destroy(&nb->q_cond);
	pthread_cond_destroy(&nb->q_idle);
	free(nb);
}

int blk_resume(struct blk *b, const char *path,
	       const struct blk_open_opts *opts, char *err, size_t errlen)
{
	struct blk_open_opts same = { .format = b->format, .readonly = b->readonly };
	struct blk *nb;
	char e2[400];
	int r;

	if (b->drv)
		return -EBUSY;
	if (!path) {
		path = b->path;
		opts = &same;
	}
	r = blk_open(path, opts, &nb, err, errlen);
	if (r == 0 && nb->length != b->length) {
		r = blk_err(err, errlen, -EINVAL,
			    "'%s' is %" PRIu64 " bytes, not %" PRIu64 " as the image it replaces",
			    path, nb->length, b->length);
		blk_close(nb);
	}
	if (r == 0) {
		take_image(b, nb);
		return 0;
	}
	/* Back to the image it had. */
	if (blk_open(b->path, &same, &nb, e2, sizeof(e2)) == 0)
		take_image(b, nb);
	return r;
}

uint64_t blk_length(const struct blk *b)
{
	return b->length;
}

bool blk_is_readonly(const struct blk *b)
{
	return b->readonly;
}

enum blk_format blk_get_format(const struct blk *b)
{
	return b->format;
}

const char *blk_path(const struct blk *b)
{
	return b->path;
}

struct blk *blk_backing(struct blk *b)
{
	struct blk **slot = b->drv->backing_slot ? b->drv->backing_slot(b)
						 : NULL;

	return slot ? *slot : NULL;
}

char *blk_backing_path(const char *image, const char *name)
{
	const char *slash = strrchr(image, '/');
	size_t dl = name[0] == '/' || !slash ? 0 : (size_t)(slash - image) + 1;
	char *full = malloc(dl + strlen(name) + 1);

	if (full) {
		memcpy(full, image, dl);
		strcpy(full + dl, name);
	}
	return full;
}

/* ---- synchronous I/O ------------------------------------------------- */

static bool range_ok(const struct blk *b, uint64_t off, uint64_t len)
{
	return off <= b->length && len <= b->length - off;
}

static int iov_total(const struct iovec *iov, int iovcnt, uint64_t *len)
{
	uint64_t t = 0;

	if (iovcnt < 0 || (iovcnt && !iov))
		return -EINVAL;
	for (int i = 0; i < iovcnt; i++) {
		if (t + iov[i].iov_len < t)
			return -EINVAL;
		t += iov[i].iov_len;
	}
	*len = t;
	return 0;
}

int blk_preadv(struct blk *b, uint64_t offset, const struct iovec *iov,
	       int iovcnt)
{
	uint64_t len;

	if (iov_total(iov, iovcnt, &len) < 0 || !range_ok(b, offset, len))
		return -EINVAL;
	if (!len)
		return 0;
	if (!b->drv)
		return -EIO;	/* suspended, and its image lost */
	return b->drv->preadv(b, offset, iov, iovcnt, len);
}

int blk_pwritev(struct blk *b, uint64_t offset, const struct iovec *iov,
		int iovcnt)
{
	uint64_t len;

	if (b->readonly)
		return -EROFS;
	if (iov_total(iov, iovcnt, &len) < 0 || !range_ok(b, offset, len))
		return -EINVAL;
	if (!len)
		return 0;
	if (b->probed_raw && offset < 4) {
		/* A guest must not turn a probed raw image into a qcow2
		 * header that the next probe would trust. */
		uint8_t head[4] = { 0 };
		uint64_t n = len < 4 - offset ? len : 4 - offset;
		if (blk_fd_pread(b->fd, head, 4, 0) == 0) {
			iov_to_buf(iov, (unsigned)iovcnt, 0, head + offset, n);
			if (!memcmp(head, qcow2_magic, 4))
				return -EPERM;
		}
	}
	if (!b->drv)
		return -EIO;	/* suspended, and its image lost */
	return b->drv->pwritev(b, offset, iov, iovcnt, len);
}

int blk_pread(struct blk *b, uint64_t offset, void *buf, size_t len)
{
	struct iovec v = { buf, len };

	return blk_preadv(b, offset, &v, 1);
}

int blk_pwrite(struct blk *b, uint64_t offset, const void *buf, size_t len)
{
	struct iovec v = { (void *)buf, len };

	return blk_pwritev(b, offset, &v, 1);
}

int blk_flush(struct blk *b)
{
	if (b->readonly)
		return 0;
	if (!b->drv)
		return -EIO;	/* suspended, and its image lost */
	return b->drv->flush(b);
}

int blk_discard(struct blk *b, uint64_t offset, uint64_t len)
{
	if (b->readonly)
		return -EROFS;
	if (!range_ok(b, offset, len))
		return -EINVAL;
	if (!len)
		return 0;
	if (!b->drv)
		return -EIO;	/* suspended, and its image lost */
	return b->drv->discard(b, offset, len);
}

int blk_write_zeroes(struct blk *b, uint64_t offset, uint64_t len,
		     bool may_unmap)
{
	if (b->readonly)
		return -EROFS;
	if (!range_ok(b, offset, len))
		return -EINVAL;
	if (!len)
		return 0;
	if (!b->drv)
		return -EIO;	/* suspended, and its image lost */
	return b->drv->write_zeroes(b, offset, len, may_unmap);
}

int blk_block_status(struct blk *b, uint64_t offset, uint64_t len,
		     uint64_t *pnum, bool *zero)
{
	if (!range_ok(b, offset, len) || !len)
		return -EINVAL;
	if (!b->drv)
		return -EIO;	/* suspended, and its image lost */
	return b->drv->block_status(b, offset, len, pnum, zero);
}

int blk_get_info(struct blk *b, struct blk_info *out)
{
	struct stat st;

	memset(out, 0, sizeof(*out));
	out->format = b->format;
	out->virtual_size = b->length;
	if (fstat(b->fd, &st) < 0)
		return -errno;
	out->actual_size = (uint64_t)st.st_blocks * 512;
	out->file_length = (uint64_t)st.st_size;
	return b->drv->get_info(b, out);
}

int blk_check(struct blk *b, struct blk_check_result *res, FILE *report)
{
	memset(res, 0, sizeof(*res));
	return b->drv->check(b, res, report);
}

/* ---- the worker pool ------------------------------------------------- */

static int run_req(struct blk *b, struct blk_req *r)
{
	switch (r->op) {
	case BLK_OP_READ:
		return blk_preadv(b, r->offset, r->iov, r->iovcnt);
	case BLK_OP_WRITE:
		return blk_pwritev(b, r->offset, r->iov, r->iovcnt);
	case BLK_OP_FLUSH:
		return blk_flush(b);
	case BLK_OP_DISCARD:
		return blk_discard(b, r->offset, r->len);
	case BLK_OP_WRITE_ZEROES:
		return blk_write_zeroes(b, r->offset, r->len, r->may_unmap);
	}
	return -EINVAL;
}

static void *worker_main(void *arg)
{
	struct blk *b = arg;

	sandbox_thread_enter(SANDBOX_THREAD_BLOCK, "blk-worker");
	pthread_mutex_lock(&b->q_lock);
	for (;;) {
		while (!b->q_head && !b->stopping)
			pthread_cond_wait(&b->q_cond, &b->q_lock);
		if (!b->q_head)
			break;	/* stopping and nothing left */
		struct blk_req *r = b->q_head;
		b->q_head = r->next_;
		if (!b->q_head)
			b->q_tail = NULL;
		pthread_mutex_unlock(&b->q_lock);

		int ret = run_req(b, r);
		r->complete(r, ret);	/* r may be gone after this */

		pthread_mutex_lock(&b->q_lock);
		if (--b->inflight == 0)
			pthread_cond_broadcast(&b->q_idle);
	}
	pthread_mutex_unlock(&b->q_lock);
	return NULL;
}

int blk_start_workers(struct blk *b)
{
	pthread_mutex_lock(&b->q_lock);
	while (!b->stopping && b->nworkers < BLK_WORKERS) {
		if (pthread_create(&b->workers[b->nworkers], NULL, worker_main,
				   b) != 0)
			break;
		b->nworkers++;
	}
	b->workers_started = true;
	pthread_mutex_unlock(&b->q_lock);
	return b->nworkers ? 0 : -EAGAIN;
}

int blk_submit(struct blk *b, struct blk_req *req)
{
	bool writes = req->op != BLK_OP_READ && req->op != BLK_OP_FLUSH;

	if (writes && b->readonly)
		return -EROFS;
	if (!req->complete || (unsigned)req->op > BLK_OP_WRITE_ZEROES)
		return -EINVAL;
	pthread_mutex_lock(&b->q_lock);
	if (b->stopping) {
		pthread_mutex_unlock(&b->q_lock);
		return -ESHUTDOWN;
	}
	while (!b->workers_started && b->nworkers < BLK_WORKERS) {
		if (pthread_create(&b->workers[b->nworkers], NULL, worker_main,
				   b) != 0)
			break;
		b->nworkers++;
	}
	if (!b->nworkers) {
		pthread_mutex_unlock(&b->q_lock);
		return -EAGAIN;
	}
	req->next_ = NULL;
	if (b->q_tail)
		b->q_tail->next_ = req;
	else
		b->q_head = req;
	b->q_tail = req;
	b->inflight++;
	pthread_cond_signal(&b->q_cond);
	pthread_mutex_unlock(&b->q_lock);
	return 0;
}

void blk_drain(struct blk *b)
{
	pthread_mutex_lock(&b->q_lock);
	while (b->inflight)
		pthread_cond_wait(&b->q_idle, &b->q_lock);
	pthread_mutex_unlock(&b->q_lock);
}

/* ---- creation -------------------------------------------------------- */

int blk_create_fd(int fd, const char *path, const struct blk_create_opts *opts,
		  char *err, size_t errlen)
{
	uint64_t size = opts->size;
	enum blk_format backing_fmt = opts->backing_format;
	int ret;

	if (err && errlen)
		err[0] = '\0';
	if (opts->format != BLK_FMT_RAW && opts->format != BLK_FMT_QCOW2)
		return blk_err(err, errlen, -EINVAL,
			       "image format must be raw or qcow2");
	if (opts->backing && opts->format != BLK_FMT_QCOW2)
		return blk_err(err, errlen, -EINVAL,
			       "only qcow2 images can have a backing file");
	if (opts->backing) {
		/* Open it now: a typo fails here, not at the VM's start. */
		struct blk *bb;
		struct blk_open_opts bo = { .format = backing_fmt,
					    .readonly = true,
					    .no_lock = true };
		char *bpath = blk_backing_path(path, opts->backing);

		if (!bpath)
			return blk_err(err, errlen, -ENOMEM, "out of memory");
		ret = blk_open(bpath, &bo, &bb, err, errlen);
		free(bpath);
		if (ret < 0)
			return ret;
		if (!size)
			size = blk_length(bb);
		backing_fmt = blk_get_format(bb);
		blk_close(bb);
	}
	if (!size)
		return blk_err(err, errlen, -EINVAL,
			       "image size must be given (and not 0)");
	if (size > (UINT64_C(1) << 62))
		return blk_err(err, errlen, -EINVAL, "image size too large");
	size = (size + BLK_SECTOR - 1) & ~(uint64_t)(BLK_SECTOR - 1);

	if (opts->mode && fchmod(fd, opts->mode) < 0)
		return blk_err(err, errlen, -errno, "'%s': cannot set mode: %s",
			       path, strerror(errno));
	if (opts->format == BLK_FMT_QCOW2)
		return blk_qcow2_create(fd, opts, size, backing_fmt, err,
					errlen);
	if (ftruncate(fd, (off_t)size) < 0)
		return blk_err(err, errlen, -errno,
			       "'%s': cannot set size: %s", path,
			       strerror(errno));
	return 0;
}

int blk_create(const char *path, const struct blk_create_opts *opts,
	       char *err, size_t errlen)
{
	struct newfile nf;
	struct stat st;
	int ret;

	if (err && errlen)
		err[0] = '\0';
	if (lstat(path, &st) == 0)
		return blk_err(err, errlen, -EEXIST,
			       "'%s' already exists; not overwriting it", path);
	ret = newfile_open(&nf, path, opts->mode ? opts->mode : 0666, err,
			   errlen);
	if (ret < 0)
		return ret;
	ret = blk_create_fd(nf.fd, path, opts, err, errlen);
	if (ret < 0) {
		newfile_abort(&nf);
		return ret;
	}
	return newfile_commit(&nf, false, err, errlen);
}
