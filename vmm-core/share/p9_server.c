/* SPDX-License-Identifier: MIT */
/*
 * The 9P2000.L server: see p9_server.h.  Written from the protocol as
 * Linux's client speaks it (net/9p/client.c, fs/9p/) and the 9P2000.L
 * notes; every handler parses its whole request first, then acts.
 */
#define _GNU_SOURCE
#include "p9_server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <glib.h>
#include <linux/openat2.h>

#include "../log.h"
#include "p9.h"

#ifndef __NR_openat2
#define __NR_openat2 437
#endif

#define XATTR_ONE_MAX	(64u * 1024)	/* Linux's XATTR_SIZE_MAX */
#define NAME_MAX_9P	255
#define RLERROR_SIZE	11

enum fid_kind { FID_FILE, FID_XATTR };

struct p9_fid {
	uint32_t num;
	enum fid_kind kind;
	int fd;			/* O_PATH of the file; -1: stale (or xattr) */
	int ofd;		/* opened by Tlopen/Tlcreate; -1: not */
	uint32_t oflags;	/* P9_DOTL_* of the open, or P9_FID_NOT_OPEN */
	char *path;		/* relative to the root; "" is the root */
	uint32_t uid;		/* reported as owner of everything */
	uint8_t *xbuf;		/* FID_XATTR: the value or list */
	size_t xlen;
};

struct p9_server {
	int root;		/* O_PATH | O_DIRECTORY */
	dev_t root_dev;
	int procfd;		/* /proc/self/fd, O_PATH; -1: none */
	bool readonly;
	bool use_openat2;
	bool versioned;		/* Tversion done */
	uint32_t msize, max_msize;
	unsigned max_fids;
	GHashTable *fids;	/* uint32 -> struct p9_fid* */
	size_t xattr_bytes;
	char *rootpath;
};

/* ---- fids ------------------------------------------------------------- */

static void fid_close(struct p9_server *s, struct p9_fid *f)
{
	if (f->fd >= 0)
		close(f->fd);
	if (f->ofd >= 0)
		close(f->ofd);
	s->xattr_bytes -= f->xlen;
	free(f->xbuf);
	g_free(f->path);
	free(f);
}

static gboolean drop_fid(gpointer k, gpointer v, gpointer s)
{
	(void)k;
	fid_close(s, v);
	return TRUE;
}

static void clear_fids(struct p9_server *s)
{
	g_hash_table_foreach_steal(s->fids, drop_fid, s);
}

static struct p9_fid *fid_get(struct p9_server *s, uint32_t num)
{
	return g_hash_table_lookup(s->fids, GUINT_TO_POINTER(num));
}

/* A new fid @num (not in use, not NOFID, under the cap). */
static int fid_new(struct p9_server *s, uint32_t num, struct p9_fid **out)
{
	struct p9_fid *f;

	if (num == P9_NOFID || fid_get(s, num))
		return -EBADF;
	if (g_hash_table_size(s->fids) >= s->max_fids)
		return -EMFILE;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->num = num;
	f->fd = f->ofd = -1;
	f->oflags = P9_FID_NOT_OPEN;
	*out = f;
	return 0;
}

static void fid_insert(struct p9_server *s, struct p9_fid *f)
{
	g_hash_table_insert(s->fids, GUINT_TO_POINTER(f->num), f);
}

static void fid_remove(struct p9_server *s, uint32_t num)
{
	struct p9_fid *f = fid_get(s, num);

	if (f) {
		g_hash_table_steal(s->fids, GUINT_TO_POINTER(num));
		fid_close(s, f);
	}
}

/* A file fid usable for I/O on its inode: exists, not stale. */
static int fid_file(struct p9_server *s, uint32_t num, struct p9_fid **out)
{
	struct p9_fid *f = fid_get(s, num);

	if (!f)
		return -EBADF;
	if (f->kind != FID_FILE)
		return -EBADF;
	if (f->fd < 0)
		return -ESTALE;
	*out = f;
	return 0;
}

/* ---- confined lookups ----------------------------------------------------- */

/* A name the guest gives for one directory entry. */
static bool name_ok(const char *n)
{
	return n[0] && !strchr(n, '/') && strcmp(n, ".") && strcmp(n, "..") &&
	       strlen(n) <= NAME_MAX_9P;
}

/* Whether the guest may create, rename or remove entry @name: not in a
 * read-only share (-EROFS), not a name other than one path component
 * (-EINVAL), in that order. */
static int may_change(const struct p9_server *s, const char *name)
{
	if (s->readonly)
		return -EROFS;
	return name_ok(name) ? 0 : -EINVAL;
}

/* Each '/'-separated component of a saved path is a valid name. */
static bool path_ok(const char *p)
{
	size_t n = strlen(p);
	const char *c = p;

	if (!n)
		return true;
	if (n >= PATH_MAX)
		return false;
	for (;;) {
		const char *slash = strchr(c, '/');
		size_t len = slash ? (size_t)(slash - c) : strlen(c);
		char comp[NAME_MAX_9P + 1];

		if (!len || len > NAME_MAX_9P)
			return false;
		memcpy(comp, c, len);
		comp[len] = '\0';
		if (!name_ok(comp))
			return false;
		if (!slash)
			return true;
		c = slash + 1;
	}
}

/*
 * at_open - open @path (relative, no "..") beneath @dirfd, never following
 * a symlink, never leaving @dirfd: openat2 with RESOLVE_BENEATH and
 * RESOLVE_NO_SYMLINKS (a trailing symlink comes back as itself with
 * O_PATH | O_NOFOLLOW, else ELOOP), or each component with O_NOFOLLOW.
 * Returns the fd or -errno.
 */
static int at_open(struct p9_server *s, int dirfd, const char *path, int flags,
		   mode_t mode)
{
	const char *p = path[0] ? path : ".";
	int cur, fd;

	/* openat2 refuses O_PATH with any flag but these three. */
	flags |= O_NOFOLLOW | O_CLOEXEC | ((flags & O_PATH) ? 0 : O_NOCTTY);
	if (s->use_openat2) {
		struct open_how how = {
			.flags = (uint64_t)flags,
			.mode = (flags & (O_CREAT | __O_TMPFILE)) ? mode : 0,
			.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
				   RESOLVE_NO_MAGICLINKS,
		};

		fd = (int)syscall(__NR_openat2, dirfd, p, &how, sizeof(how));
		if (fd >= 0)
			return fd;
		if (errno != ENOSYS)
			return -errno;
		s->use_openat2 = false;	/* an older kernel: the fallback */
	}
	/* One component at a time, each a name (path_ok), O_NOFOLLOW. */
	if (!path_ok(path))
		return -EXDEV;
	if (!path[0]) {
		fd = openat(dirfd, ".", flags, mode);
		return fd < 0 ? -errno : fd;
	}
	cur = dirfd;
	for (;;) {
		const char *slash = strchr(p, '/');
		char comp[NAME_MAX_9P + 1];
		size_t len = slash ? (size_t)(slash - p) : strlen(p);

		memcpy(comp, p, len);
		comp[len] = '\0';
		if (slash)
			fd = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW |
				    O_CLOEXEC);
		else
			fd = openat(cur, comp, flags, mode);
		if (fd < 0)
			fd = -errno;
		if (cur != dirfd)
			close(cur);
		if (fd < 0 || !slash)
			return fd;
		cur = fd;
		p = slash + 1;
	}
}

static int root_open(struct p9_server *s, const char *path, int flags)
{
	return at_open(s, s->root, path, flags, 0);
}

static char *path_join(const char *dir, const char *name)
{
	char *p = dir[0] ? g_strdup_printf("%s/%s", dir, name) : g_strdup(name);

	if (strlen(p) >= PATH_MAX) {
		g_free(p);
		return NULL;
	}
	return p;
}

/* The parent folder of @f (O_PATH, resolved from the root) and its last
 * name, checked to be @f's inode still (-ESTALE if not).  The root has
 * no parent here (-EBUSY: nothing renames or removes the share itself). */
static int fid_parent(struct p9_server *s, const struct p9_fid *f, int *pfd,
		      const char **base)
{
	const char *slash = strrchr(f->path, '/');
	struct stat a, b;
	char *dir;
	int fd;

	if (!f->path[0])
		return -EBUSY;
	dir = slash ? g_strndup(f->path, (gsize)(slash - f->path)) : g_strdup("");
	fd = root_open(s, dir, O_PATH | O_DIRECTORY);
	g_free(dir);
	if (fd < 0)
		return fd == -ENOENT ? -ESTALE : fd;
	*base = slash ? slash + 1 : f->path;
	if (fstat(f->fd, &a) < 0 ||
	    fstatat(fd, *base, &b, AT_SYMLINK_NOFOLLOW) < 0 ||
	    a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		close(fd);
		return -ESTALE;
	}
	*pfd = fd;
	return 0;
}

/*
 * fid_reopen - a real descriptor of @f's inode with @flags: through
 * /proc/self/fd/N (the very inode the O_PATH fd holds), or without /proc
 * by its path again, checked to be the same inode.  Regular files and
 * directories only.
 */
static int fid_reopen(struct p9_server *s, const struct p9_fid *f, int flags)
{
	struct stat st, st2;
	int fd;

	if (fstat(f->fd, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode)) {
		/* "." of the O_PATH fd itself: no name involved. */
		fd = openat(f->fd, ".", (flags & ~O_ACCMODE) | O_RDONLY |
			    O_DIRECTORY | O_CLOEXEC);
		return fd < 0 ? -errno : fd;
	}
	if (!S_ISREG(st.st_mode))
		return S_ISLNK(st.st_mode) ? -ELOOP : -EPERM;
	if (s->procfd >= 0) {
		char n[16];

		snprintf(n, sizeof(n), "%d", f->fd);
		fd = openat(s->procfd, n, flags | O_CLOEXEC | O_NOCTTY);
		return fd < 0 ? -errno : fd;
	}
	fd = root_open(s, f->path, flags | O_NONBLOCK);
	if (fd < 0)
		return fd == -ENOENT ? -ESTALE : fd;
	if (fstat(fd, &st2) < 0 || st2.st_dev != st.st_dev ||
	    st2.st_ino != st.st_ino) {
		close(fd);
		return -ESTALE;
	}
	if (!(flags & O_NONBLOCK))
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

/* ---- qids and attributes --------------------------------------------------- */

static uint64_t qid_path(const struct p9_server *s, dev_t dev, ino_t ino)
{
	/* Inode numbers of the share's own file system as they are; a
	 * file system mounted inside gets its device mixed into the top
	 * bits (best effort: distinct in practice). */
	if (dev == s->root_dev)
		return (uint64_t)ino;
	return (uint64_t)ino ^ ((uint64_t)dev << 40) ^ (1ull << 63);
}

static struct p9_qid qid_of(const struct p9_server *s, const struct stat *st)
{
	struct p9_qid q = {
		.type = S_ISDIR(st->st_mode) ? P9_QTDIR :
			S_ISLNK(st->st_mode) ? P9_QTSYMLINK : P9_QTFILE,
		.version = 0,
		.path = qid_path(s, st->st_dev, st->st_ino),
	};

	return q;
}

static int fd_qid(const struct p9_server *s, int fd, struct p9_qid *q)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	*q = qid_of(s, &st);
	return 0;
}

/* A guest mode for a new file or chmod: permissions and the sticky bit;
 * never set-user-ID or set-group-ID (the owner is the host user). */
static mode_t guest_mode(uint32_t mode)
{
	return (mode_t)(mode & 01777);
}

/* P9_DOTL_* open flags to the host's, or -EINVAL.  Ours on top. */
static int open_flags(uint32_t f)
{
	int fl = (int)(f & P9_DOTL_ACCMODE);

	if (fl == 3)
		return -EINVAL;
	if (f & P9_DOTL_TRUNC)
		fl |= O_TRUNC;
	if (f & P9_DOTL_APPEND)
		fl |= O_APPEND;
	if (f & P9_DOTL_DSYNC)
		fl |= O_DSYNC;
	if ((f & P9_DOTL_SYNC) == P9_DOTL_SYNC)
		fl |= O_SYNC;
	/* O_DIRECT (alignment rules of the host's disk), O_NOATIME (EPERM
	 * unless owner), O_NONBLOCK, O_CREAT/O_EXCL (Tlcreate's business)
	 * are not passed on. */
	return fl;
}

static bool flags_write(uint32_t f)
{
	return (f & P9_DOTL_ACCMODE) != 0 || (f & P9_DOTL_TRUNC);
}

/* ---- the reply --------------------------------------------------------- */

struct ctx {
	struct p9_server *s;
	struct p9_reader r;
	struct p9_writer w;
	uint8_t type;
	uint16_t tag;
	uint8_t *resp;
	size_t room;
};

static void reply(struct ctx *c)
{
	p9_begin(&c->w, c->resp, c->room, (uint8_t)(c->type + 1), c->tag);
}

/* A parse error: the request was shorter than its fields. */
#define PARSED(c) do { if ((c)->r.bad) return -EINVAL; } while (0)

#define GET_NAME(c, buf) do { \
	if (p9_get_str(&(c)->r, buf, sizeof(buf)) < 0) { \
		PARSED(c); return -ENAMETOOLONG; } } while (0)

/* ---- messages ------------------------------------------------------------ */

static int do_version(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t msize = p9_get32(&c->r);
	char version[32];
	bool known;

	known = p9_get_str(&c->r, version, sizeof(version)) >= 0 &&
		!strcmp(version, P9_VERSION_L);
	PARSED(c);
	if (msize < P9_MIN_MSIZE)
		return -EINVAL;
	/* A new session: whatever was open is gone. */
	clear_fids(s);
	s->msize = msize < s->max_msize ? msize : s->max_msize;
	s->versioned = known;
	reply(c);
	p9_put32(&c->w, s->msize);
	p9_put_str(&c->w, known ? P9_VERSION_L : "unknown");
	return 0;
}

static int do_attach(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fid = p9_get32(&c->r), afid = p9_get32(&c->r), n_uname;
	char uname[256], aname[256];
	struct p9_fid *f;
	struct p9_qid q;
	int r;

	if (p9_get_str(&c->r, uname, sizeof(uname)) < 0 ||
	    p9_get_str(&c->r, aname, sizeof(aname)) < 0) {
		PARSED(c);
		return -EINVAL;
	}
	n_uname = p9_get32(&c->r);
	PARSED(c);
	if (afid != P9_NOFID)
		return -EINVAL;		/* no authentication */
	r = fid_new(s, fid, &f);
	if (r < 0)
		return r;
	f->fd = root_open(s, "", O_PATH | O_DIRECTORY);
	if (f->fd < 0) {
		r = f->fd;
		fid_close(s, f);
		return r;
	}
	f->path = g_strdup("");
	f->uid = n_uname == P9_NONUNAME ? 0 : n_uname;
	r = fd_qid(s, f->fd, &q);
	if (r < 0) {
		fid_close(s, f);
		return r;
	}
	fid_insert(s, f);
	reply(c);
	p9_put_qid(&c->w, &q);
	return 0;
}

/* One step of a walk from (@fd, @path): a new O_PATH fd and path. */
static int walk_one(struct p9_server *s, int fd, const char *path,
		    const char *name, int *nfd, char **npath)
{
	if (!strcmp(name, "..")) {
		/* Computed, then resolved from the root: never above it. */
		const char *slash = strrchr(path, '/');
		char *up = slash ? g_strndup(path, (gsize)(slash - path))
				 : g_strdup("");

		*nfd = root_open(s, up, O_PATH);
		if (*nfd < 0) {
			g_free(up);
			return *nfd;
		}
		*npath = up;
		return 0;
	}
	if (!strcmp(name, ".")) {
		*nfd = at_open(s, fd, "", O_PATH, 0);
		if (*nfd < 0)
			return *nfd;
		*npath = g_strdup(path);
		return 0;
	}
	if (!name_ok(name))
		return -ENOENT;
	*npath = path_join(path, name);
	if (!*npath)
		return -ENAMETOOLONG;
	*nfd = at_open(s, fd, name, O_PATH, 0);
	if (*nfd < 0) {
		g_free(*npath);
		*npath = NULL;
		return *nfd;
	}
	return 0;
}

static int do_walk(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = p9_get32(&c->r), newfidn = p9_get32(&c->r);
	uint16_t nwname = p9_get16(&c->r);
	char names[P9_MAXWELEM][NAME_MAX_9P + 1];
	struct p9_qid qids[P9_MAXWELEM];
	struct p9_fid *f, *nf;
	char *path;
	int fd, r = 0;
	unsigned i;

	PARSED(c);
	if (nwname > P9_MAXWELEM)
		return -EINVAL;
	for (i = 0; i < nwname; i++)
		GET_NAME(c, names[i]);
	r = fid_file(s, fidn, &f);
	if (r < 0)
		return r;
	if (newfidn != fidn && (newfidn == P9_NOFID || fid_get(s, newfidn)))
		return -EBADF;
	if (newfidn != fidn && g_hash_table_size(s->fids) >= s->max_fids)
		return -EMFILE;

	fd = dup(f->fd);
	if (fd < 0)
		return -errno;
	path = g_strdup(f->path);
	for (i = 0; i < nwname; i++) {
		int nfd;
		char *npath;
		struct stat st;

		/* Only a folder has entries. */
		if (fstat(fd, &st) < 0) {
			r = -errno;
			break;
		}
		if (!S_ISDIR(st.st_mode)) {
			r = -ENOTDIR;
			break;
		}
		r = walk_one(s, fd, path, names[i], &nfd, &npath);
		if (r < 0)
			break;
		close(fd);
		g_free(path);
		fd = nfd;
		path = npath;
		r = fd_qid(s, fd, &qids[i]);
		if (r < 0)
			break;
	}
	if (i < nwname) {
		close(fd);
		g_free(path);
		if (i == 0)
			return r;
		/* Partial: the qids walked, newfid untouched (9P walk(5)). */
		reply(c);
		p9_put16(&c->w, (uint16_t)i);
		for (unsigned k = 0; k < i; k++)
			p9_put_qid(&c->w, &qids[k]);
		return 0;
	}
	if (newfidn == fidn) {
		close(f->fd);
		if (f->ofd >= 0)
			close(f->ofd);
		f->ofd = -1;
		f->oflags = P9_FID_NOT_OPEN;
		f->fd = fd;
		g_free(f->path);
		f->path = path;
	} else {
		r = fid_new(s, newfidn, &nf);
		if (r < 0) {
			close(fd);
			g_free(path);
			return r;
		}
		nf->fd = fd;
		nf->path = path;
		nf->uid = f->uid;
		fid_insert(s, nf);
	}
	reply(c);
	p9_put16(&c->w, nwname);
	for (i = 0; i < nwname; i++)
		p9_put_qid(&c->w, &qids[i]);
	return 0;
}

static int do_clunk(struct ctx *c)
{
	uint32_t fid = p9_get32(&c->r);

	PARSED(c);
	if (!fid_get(c->s, fid))
		return -EBADF;
	fid_remove(c->s, fid);
	reply(c);
	return 0;
}

static int do_getattr(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = p9_get32(&c->r);
	struct p9_fid *f;
	struct p9_qid q;
	struct stat st;
	int r;

	p9_get64(&c->r);		/* request_mask: we give the basic set */
	PARSED(c);
	r = fid_file(s, fidn, &f);
	if (r < 0)
		return r;
	if (fstat(f->fd, &st) < 0)
		return -errno;
	q = qid_of(s, &st);
	reply(c);
	p9_put64(&c->w, P9_GETATTR_BASIC);
	p9_put_qid(&c->w, &q);
	p9_put32(&c->w, st.st_mode);
	p9_put32(&c->w, f->uid);
	p9_put32(&c->w, f->uid);
	p9_put64(&c->w, st.st_nlink);
	p9_put64(&c->w, st.st_rdev);
	p9_put64(&c->w, (uint64_t)st.st_size);
	p9_put64(&c->w, (uint64_t)st.st_blksize);
	p9_put64(&c->w, (uint64_t)st.st_blocks);
	p9_put64(&c->w, (uint64_t)st.st_atim.tv_sec);
	p9_put64(&c->w, (uint64_t)st.st_atim.tv_nsec);
	p9_put64(&c->w, (uint64_t)st.st_mtim.tv_sec);
	p9_put64(&c->w, (uint64_t)st.st_mtim.tv_nsec);
	p9_put64(&c->w, (uint64_t)st.st_ctim.tv_sec);
	p9_put64(&c->w, (uint64_t)st.st_ctim.tv_nsec);
	for (unsigned i = 0; i < 4; i++)	/* btime, gen, data_version */
		p9_put64(&c->w, 0);
	return 0;
}

static int set_times(struct p9_server *s, struct p9_fid *f, uint32_t valid,
		     uint64_t as, uint64_t an, uint64_t ms, uint64_t mn)
{
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { 0, UTIME_OMIT } };
	struct stat st;
	int r;

	if (valid & P9_SETATTR_ATIME) {
		if (!(valid & P9_SETATTR_ATIME_SET))
			ts[0].tv_nsec = UTIME_NOW;
		else if (an >= 1000000000ull || as > INT64_MAX)
			return -EINVAL;
		else
			ts[0] = (struct timespec){ (time_t)as, (long)an };
	}
	if (valid & P9_SETATTR_MTIME) {
		if (!(valid & P9_SETATTR_MTIME_SET))
			ts[1].tv_nsec = UTIME_NOW;
		else if (mn >= 1000000000ull || ms > INT64_MAX)
			return -EINVAL;
		else
			ts[1] = (struct timespec){ (time_t)ms, (long)mn };
	}
	if (fstat(f->fd, &st) < 0)
		return -errno;
	if (s->procfd >= 0 && !S_ISLNK(st.st_mode)) {
		char n[16];

		snprintf(n, sizeof(n), "%d", f->fd);
		r = utimensat(s->procfd, n, ts, 0);
		return r < 0 ? -errno : 0;
	}
	{
		const char *base;
		int pfd;

		if (!f->path[0]) {
			r = utimensat(s->root, ".", ts, 0);
			return r < 0 ? -errno : 0;
		}
		r = fid_parent(s, f, &pfd, &base);
		if (r < 0)
			return r;
		r = utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
		close(pfd);
		return r;
	}
}

static int set_mode(struct p9_server *s, struct p9_fid *f, uint32_t mode)
{
	struct stat st;
	int r;

	if (fstat(f->fd, &st) < 0)
		return -errno;
	if (S_ISLNK(st.st_mode))
		return -EOPNOTSUPP;
	if (s->procfd >= 0) {
		char n[16];

		snprintf(n, sizeof(n), "%d", f->fd);
		r = fchmodat(s->procfd, n, guest_mode(mode), 0);
		return r < 0 ? -errno : 0;
	}
	{
		int fd = fid_reopen(s, f, O_RDONLY);

		if (fd < 0)
			return fd;
		r = fchmod(fd, guest_mode(mode)) < 0 ? -errno : 0;
		close(fd);
		return r;
	}
}

static int do_setattr(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = p9_get32(&c->r), valid = p9_get32(&c->r);
	uint32_t mode = p9_get32(&c->r);
	uint64_t size, as, an, ms, mn;
	struct p9_fid *f;
	int r;

	p9_get32(&c->r);		/* uid, gid: ownership is not stored */
	p9_get32(&c->r);
	size = p9_get64(&c->r);
	as = p9_get64(&c->r);
	an = p9_get64(&c->r);
	ms = p9_get64(&c->r);
	mn = p9_get64(&c->r);
	PARSED(c);
	r = fid_file(s, fidn, &f);
	if (r < 0)
		return r;
	if (s->readonly && (valid & (P9_SETATTR_MODE | P9_SETATTR_SIZE |
				     P9_SETATTR_ATIME | P9_SETATTR_MTIME |
				     P9_SETATTR_UID | P9_SETATTR_GID)))
		return -EROFS;
	if (valid & P9_SETATTR_MODE) {
		r = set_mode(s, f, mode);
		if (r < 0)
			return r;
	}
	if (valid & P9_SETATTR_SIZE) {
		int fd;

		if (size > INT64_MAX)
			return -EFBIG;
		if (f->ofd >= 0 && (f->oflags & P9_DOTL_ACCMODE)) {
			fd = fcntl(f->ofd, F_DUPFD_CLOEXEC, 0);
			if (fd < 0)
				fd = -errno;
		} else
			fd = fid_reopen(s, f, O_WRONLY);
		if (fd < 0)
			return fd;
		r = ftruncate(fd, (off_t)size) < 0 ? -errno : 0;
		close(fd);
		if (r < 0)
			return r;
	}
	if (valid & (P9_SETATTR_ATIME | P9_SETATTR_MTIME)) {
		r = set_times(s, f, valid, as, an, ms, mn);
		if (r < 0)
			return r;
	}
	reply(c);
	return 0;
}

static int do_statfs(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = p9_get32(&c->r);
	struct p9_fid *f;
	struct statfs sf;
	uint64_t fsid;
	int r;

	PARSED(c);
	r = fid_file(s, fidn, &f);
	if (r < 0)
		return r;
	if (fstatfs(f->fd, &sf) < 0)
		return -errno;
	memcpy(&fsid, &sf.f_fsid, sizeof(fsid));
	reply(c);
	p9_put32(&c->w, (uint32_t)sf.f_type);
	p9_put32(&c->w, (uint32_t)sf.f_bsize);
	p9_put64(&c->w, sf.f_blocks);
	p9_put64(&c->w, sf.f_bfree);
	p9_put64(&c->w, sf.f_bavail);
	p9_put64(&c->w, sf.f_files);
	p9_put64(&c->w, sf.f_ffree);
	p9_put64(&c->w, fsid);
	p9_put32(&c->w, (uint32_t)sf.f_namelen);
	return 0;
}

static int do_lopen(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = p9_get32(&c->r), flags = p9_get32(&c->r);
	struct p9_fid *f;
	struct p9_qid q;
	int fl, fd, r;

	PARSED(c);
	r = fid_file(s, fidn, &f);
	if (r < 0)
		return r;
	if (f->ofd >= 0)
		return -EBADF;		/* opened already */
	fl = open_flags(flags);
	if (fl < 0)
		return fl;
	if (s->readonly && flags_write(flags))
		return -EROFS;
	r = fd_qid(s, f->fd, &q);
	if (r < 0)
		return r;
	if (q.type == P9_QTDIR && (fl & O_ACCMODE) != O_RDONLY)
		return -EISDIR;
	fd = fid_reopen(s, f, fl);
	if (fd < 0)
		return fd;
	f->ofd = fd;
	f->oflags = flags & ~(P9_DOTL_CREATE | P9_DOTL_EXCL);
	reply(c);
	p9_put_qid(&c->w, &q);
	p9_put32(&c->w, 0);		/* iounit: msize - 24 */
	return 0;
}

/* Turn the file fid @f into the new entry @name of the folder it was:
 * O_PATH fd @fd (checked against @ofd when that is open). */
static int become(struct p9_server *s, struct p9_fid *f, const char *name,
		  int fd, int ofd, uint32_t oflags)
{
	char *np = path_join(f->path, name);

	if (!np)
		return -ENAMETOOLONG;
	if (ofd >= 0) {
		struct stat a, b;

		if (fstat(fd, &a) < 0 || fstat(ofd, &b) < 0 ||
		    a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
			g_free(np);
			return -ESTALE;
		}
	}
	close(f->fd);
	f->fd = fd;
	f->ofd = ofd;
	f->oflags = oflags;
	g_free(f->path);
	f->path = np;
	(void)s;
	return 0;
}

static int do_lcreate(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = p9_get32(&c->r), flags, mode;
	char name[NAME_MAX_9P + 2];
	struct p9_fid *f;
	struct p9_qid q;
	int fl, ofd, fd, r;

	GET_NAME(c, name);
	flags = p9_get32(&c->r);
	mode = p9_get32(&c->r);
	p9_get32(&c->r);		/* gid: the host user's */
	PARSED(c);
	r = fid_file(s, fidn, &f);
	if (r == 0)
		r = may_change(s, name);
	if (r < 0)
		return r;
	if (f->ofd >= 0)
		return -EBADF;
	fl = open_flags(flags);
	if (fl < 0)
		return fl;
	/* Exclusive first: O_CREAT on an existing FIFO or device would
	 * open it.  An existing name without EXCL asked: opened as Tlopen
	 * would (regular files only). */
	ofd = at_open(s, f->fd, name, fl | O_CREAT | O_EXCL, guest_mode(mode));
	if (ofd == -EEXIST && !(flags & P9_DOTL_EXCL)) {
		struct p9_fid tmp = { .fd = -1, .path = f->path };

		tmp.fd = at_open(s, f->fd, name, O_PATH, 0);
		if (tmp.fd < 0)
			return tmp.fd;
		ofd = fid_reopen(s, &tmp, fl);
		close(tmp.fd);
	}
	if (ofd < 0)
		return ofd;
	fd = at_open(s, f->fd, name, O_PATH, 0);
	if (fd < 0) {
		close(ofd);
		return fd;
	}
	r = become(s, f, name, fd, ofd, flags & ~(P9_DOTL_CREATE | P9_DOTL_EXCL |
						   P9_DOTL_TRUNC));
	if (r < 0) {
		close(fd);
		close(ofd);
		return r;
	}
	r = fd_qid(s, f->fd, &q);
	if (r < 0)
		return r;
	reply(c);
	p9_put_qid(&c->w, &q);
	p9_put32(&c->w, 0);
	return 0;
}

/* The qid of entry @name of folder @dfd (not followed). */
static int entry_qid(struct p9_server *s, int dfd, const char *name,
		     struct p9_qid *q)
{
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	*q = qid_of(s, &st);
	return 0;
}

/* A folder fid for creating or removing entries in. */
static int dir_fid(struct p9_server *s, uint32_t num, struct p9_fid **out)
{
	struct stat st;
	int r = fid_file(s, num, out);

	if (r < 0)
		return r;
	if (fstat((*out)->fd, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* dir_fid(), then may_change() for its entry @name. */
static int dir_for_change(struct p9_server *s, uint32_t num, const char *name,
			  struct p9_fid **out)
{
	int r = dir_fid(s, num, out);

	return r < 0 ? r : may_change(s, name);
}

static int do_mkdir(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = p9_get32(&c->r), mode;
	char name[NAME_MAX_9P + 2];
	struct p9_fid *d;
	struct p9_qid q;
	int r;

	GET_NAME(c, name);
	mode = p9_get32(&c->r);
	p9_get32(&c->r);		/* gid */
	PARSED(c);
	r = dir_for_change(s, fidn, name, &d);
	if (r < 0)
		return r;
	if (mkdirat(d->fd, name, guest_mode(mode)) < 0)
		return -errno;
	r = entry_qid(s, d->fd, name, &q);
	if (r < 0)
		return r;
	reply(c);
	p9_put_qid(&c->w, &q);
	return 0;
}

static int do_symlink(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = p9_get32(&c->r);
	char name[NAME_MAX_9P + 2], *target = g_malloc(PATH_MAX);
	struct p9_fid *d;
	struct p9_qid q;
	int r;

	if (p9_get_str(&c->r, name, sizeof(name)) < 0 ||
	    p9_get_str(&c->r, target, PATH_MAX) < 0) {
		r = c->r.bad ? -EINVAL : -ENAMETOOLONG;
		goto out;
	}
	p9_get32(&c->r);		/* gid */
	r = -EINVAL;
	if (c->r.bad)
		goto out;
	r = dir_for_change(s, fidn, name, &d);
	if (r == 0 && !target[0])
		r = -EINVAL;
	if (r < 0)
		goto out;
	/* Stored as given: the server never follows it, the guest
	 * resolves it in its own tree. */
	r = symlinkat(target, d->fd, name) < 0 ? -errno : 0;
	if (r == 0)
		r = entry_qid(s, d->fd, name, &q);
	if (r == 0) {
		reply(c);
		p9_put_qid(&c->w, &q);
	}
out:
	g_free(target);
	return r;
}

static int do_mknod(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = p9_get32(&c->r), mode;
	char name[NAME_MAX_9P + 2];
	struct p9_fid *d;
	struct p9_qid q;
	int r, fd;

	GET_NAME(c, name);
	mode = p9_get32(&c->r);
	p9_get32(&c->r);		/* major, minor, gid */
	p9_get32(&c->r);
	p9_get32(&c->r);
	PARSED(c);
	r = dir_for_change(s, fidn, name, &d);
	if (r < 0)
		return r;
	/* Device nodes, FIFOs and sockets: not in a shared folder. */
	if ((mode & S_IFMT) != S_IFREG && (mode & S_IFMT) != 0)
		return -EPERM;
	fd = at_open(s, d->fd, name, O_WRONLY | O_CREAT | O_EXCL, guest_mode(mode));
	if (fd < 0)
		return fd;
	r = fd_qid(s, fd, &q);
	close(fd);
	if (r < 0)
		return r;
	reply(c);
	p9_put_qid(&c->w, &q);
	return 0;
}

static int do_readlink(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = p9_get32(&c->r);
	char *buf;
	struct p9_fid *f;
	ssize_t n;
	int r;

	PARSED(c);
	r = fid_file(s, fidn, &f);
	if (r < 0)
		return r;
	buf = g_malloc(PATH_MAX);
	/* The link itself (the O_PATH fd holds it), never followed. */
	n = readlinkat(f->fd, "", buf, PATH_MAX);
	if (n < 0) {
		r = errno == ENOENT ? -EINVAL : -errno;
		g_free(buf);
		return r;
	}
	reply(c);
	p9_put_strn(&c->w, buf, (size_t)n);
	g_free(buf);
	return 0;
}

/* After a rename of @from to @to: fids at or under @from follow. */
static void rename_fids(struct p9_server *s, const char *from, const char *to)
{
	size_t n = strlen(from);
	GHashTableIter it;
	gpointer v;

	g_hash_table_iter_init(&it, s->fids);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		struct p9_fid *f = v;
		char *np;

		if (!f->path || strncmp(f->path, from, n) ||
		    (f->path[n] && f->path[n] != '/'))
			continue;
		np = g_strconcat(to, f->path + n, NULL);
		if (strlen(np) >= PATH_MAX) {
			g_free(np);
			continue;
		}
		g_free(f->path);
		f->path = np;
	}
}

static int do_renameat(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t ofidn = p9_get32(&c->r), nfidn;
	char oname[NAME_MAX_9P + 2], nname[NAME_MAX_9P + 2];
	struct p9_fid *od = NULL, *nd = NULL;
	char *from, *to;
	int r;

	GET_NAME(c, oname);
	nfidn = p9_get32(&c->r);
	GET_NAME(c, nname);
	PARSED(c);
	r = dir_fid(s, ofidn, &od);
	if (r == 0)
		r = dir_for_change(s, nfidn, nname, &nd);
	if (r == 0 && !name_ok(oname))
		r = -EINVAL;
	if (r < 0)
		return r;
	from = path_join(od->path, oname);
	to = path_join(nd->path, nname);
	if (!from || !to) {
		r = -ENAMETOOLONG;
	} else {
		r = renameat(od->fd, oname, nd->fd, nname) < 0 ? -errno : 0;
		if (r == 0)
			rename_fids(s, from, to);
	}
	g_free(from);
	g_free(to);
	if (r == 0)
		reply(c);
	return r;
}

static int do_rename(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = p9_get32(&c->r), dfidn = p9_get32(&c->r);
	char name[NAME_MAX_9P + 2];
	struct p9_fid *f = NULL, *d = NULL;
	const char *base;
	char *from, *to;
	int pfd, r;

	GET_NAME(c, name);
	PARSED(c);
	r = fid_file(s, fidn, &f);
	if (r == 0)
		r = dir_for_change(s, dfidn, name, &d);
	if (r < 0)
		return r;
	to = path_join(d->path, name);
	if (!to)
		return -ENAMETOOLONG;
	r = fid_parent(s, f, &pfd, &base);
	if (r < 0) {
		g_free(to);
		return r;
	}
	from = g_strdup(f->path);
	r = renameat(pfd, base, d->fd, name) < 0 ? -errno : 0;
	close(pfd);
	if (r == 0)
		rename_fids(s, from, to);
	g_free(from);
	g_free(to);
	if (r == 0)
		reply(c);
	return r;
}

static int do_unlinkat(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = p9_get32(&c->r), flags;
	char name[NAME_MAX_9P + 2];
	struct p9_fid *d;
	int r;

	GET_NAME(c, name);
	flags = p9_get32(&c->r);
	PARSED(c);
	r = dir_for_change(s, fidn, name, &d);
	if (r < 0)
		return r;
	if (unlinkat(d->fd, name, flags & P9_DOTL_AT_REMOVEDIR ? AT_REMOVEDIR : 0) < 0)
		return -errno;
	reply(c);
	return 0;
}

static int do_remove(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = p9_get32(&c->r);
	struct p9_fid *f;
	const char *base;
	struct stat st;
	int pfd, r;

	PARSED(c);
	r = fid_file(s, fidn, &f);
	if (r == 0 && s->readonly)
		r = -EROFS;
	if (r == 0 && fstat(f->fd, &st) < 0)
		r = -errno;
	if (r == 0)
		r = fid_parent(s, f, &pfd, &base);
	if (r == 0) {
		r = unlinkat(pfd, base, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0);
		r = r < 0 ? -errno : 0;
		close(pfd);
	}
	/* Tremove clunks the fid whatever happened. */
	fid_remove(s, fidn);
	if (r == 0)
		reply(c);
	return r;
}

static int do_link(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t dfidn = p9_get32(&c->r), fidn = p9_get32(&c->r);
	char name[NAME_MAX_9P + 2];
	struct p9_fid *d = NULL, *f = NULL;
	struct stat st;
	int r;

	GET_NAME(c, name);
	PARSED(c);
	r = dir_fid(s, dfidn, &d);
	if (r == 0)
		r = fid_file(s, fidn, &f);
	if (r == 0)
		r = may_change(s, name);
	if (r < 0)
		return r;
	if (fstat(f->fd, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EPERM;
	if (s->procfd >= 0 && !S_ISLNK(st.st_mode)) {
		char n[16];

		/* The inode the fid holds, through its magic link. */
		snprintf(n, sizeof(n), "%d", f->fd);
		r = linkat(s->procfd, n, d->fd, name, AT_SYMLINK_FOLLOW);
		r = r < 0 ? -errno : 0;
	} else {
		const char *base;
		int pfd;

		r = fid_parent(s, f, &pfd, &base);
		if (r == 0) {
			r = linkat(pfd, base, d->fd, name, 0) < 0 ? -errno : 0;
			close(pfd);
		}
	}
	if (r == 0)
		reply(c);
	return r;
}

static int do_read(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = p9_get32(&c->r), count;
	uint64_t off = p9_get64(&c->r);
	struct p9_fid *f;
	uint8_t *data;
	size_t room;
	ssize_t n;

	count = p9_get32(&c->r);
	PARSED(c);
	f = fid_get(s, fidn);
	if (!f)
		return -EBADF;
	room = c->room < s->msize ? c->room : s->msize;
	if (count > room - RLERROR_SIZE)
		count = (uint32_t)(room - RLERROR_SIZE);
	if (f->kind == FID_XATTR) {
		size_t k = off < f->xlen ? f->xlen - (size_t)off : 0;

		if (k > count)
			k = count;
		reply(c);
		p9_put32(&c->w, (uint32_t)k);
		p9_put_bytes(&c->w, f->xbuf + (k ? off : 0), k);
		return 0;
	}
	if (f->fd < 0)
		return -ESTALE;
	if (f->ofd < 0)
		return -EBADF;
	if (off > INT64_MAX)
		return -EINVAL;
	reply(c);
	p9_put32(&c->w, 0);
	data = p9_reserve(&c->w, count);
	if (!data)
		return -EMSGSIZE;
	n = pread(f->ofd, data, count, (off_t)off);
	if (n < 0)
		return -errno;
	c->w.pos = P9_HDR_SIZE;
	p9_put32(&c->w, (uint32_t)n);
	c->w.pos += (size_t)n;
	return 0;
}

static int do_write(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = p9_get32(&c->r), count;
	uint64_t off = p9_get64(&c->r);
	const uint8_t *data;
	struct p9_fid *f;
	ssize_t n;
	int r;

	count = p9_get32(&c->r);
	data = p9_get_bytes(&c->r, count);
	PARSED(c);
	r = fid_file(s, fidn, &f);
	if (r < 0)
		return r;
	if (s->readonly)
		return -EROFS;
	if (f->ofd < 0)
		return -EBADF;
	if (off > INT64_MAX)
		return -EINVAL;
	n = pwrite(f->ofd, data, count, (off_t)off);
	if (n < 0)
		return -errno;
	reply(c);
	p9_put32(&c->w, (uint32_t)n);
	return 0;
}

static uint8_t dirent_qtype(unsigned char t)
{
	return t == DT_DIR ? P9_QTDIR : t == DT_LNK ? P9_QTSYMLINK : P9_QTFILE;
}

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

static int do_readdir(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = p9_get32(&c->r), count;
	uint64_t off = p9_get64(&c->r);
	struct p9_fid *f;
	struct stat st;
	size_t room, end;
	uint8_t *buf;
	long n;
	int r;

	count = p9_get32(&c->r);
	PARSED(c);
	r = fid_file(s, fidn, &f);
	if (r < 0)
		return r;
	if (f->ofd < 0)
		return -EBADF;
	if (fstat(f->ofd, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	room = c->room < s->msize ? c->room : s->msize;
	if (count > room - RLERROR_SIZE)
		count = (uint32_t)(room - RLERROR_SIZE);
	if (off > INT64_MAX)
		return -EINVAL;
	if (lseek(f->ofd, (off_t)off, SEEK_SET) < 0)
		return -errno;
	/* Our entries (24 + name) and the host's (19 + name + NUL, padded
	 * to 8) differ in size: read a buffer's worth and stop at the first
	 * entry that does not fit; the next Treaddir asks from its offset. */
	buf = g_malloc(count < 4096 ? 4096 : count);
	n = syscall(SYS_getdents64, f->ofd, buf, count < 4096 ? 4096 : count);
	if (n < 0) {
		r = -errno;
		g_free(buf);
		return r;
	}
	reply(c);
	p9_put32(&c->w, 0);
	end = P9_HDR_SIZE + 4 + count;
	for (long pos = 0; pos < n;) {
		struct linux_dirent64 *d = (void *)(buf + pos);
		size_t nl = strlen(d->d_name);
		struct p9_qid q = {
			.type = dirent_qtype(d->d_type),
			.path = qid_path(s, st.st_dev, d->d_ino),
		};

		if (c->w.pos + 24 + nl > end)
			break;
		p9_put_qid(&c->w, &q);
		p9_put64(&c->w, (uint64_t)d->d_off);
		p9_put8(&c->w, d->d_type);
		p9_put_strn(&c->w, d->d_name, nl);
		pos += d->d_reclen;
	}
	g_free(buf);
	if (c->w.pos == P9_HDR_SIZE + 4 && n > 0)
		return -EINVAL;		/* count too small for one entry */
	{
		size_t got = c->w.pos - P9_HDR_SIZE - 4, keep = c->w.pos;

		c->w.pos = P9_HDR_SIZE;
		p9_put32(&c->w, (uint32_t)got);
		c->w.pos = keep;
	}
	return 0;
}

static int do_fsync(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = p9_get32(&c->r), datasync = p9_get32(&c->r);
	struct p9_fid *f;
	int r;

	PARSED(c);
	r = fid_file(s, fidn, &f);
	if (r < 0)
		return r;
	if (f->ofd < 0)
		return -EBADF;
	if ((datasync ? fdatasync(f->ofd) : fsync(f->ofd)) < 0)
		return -errno;
	reply(c);
	return 0;
}

/* Open file description locks: each fid's open is its own owner, so
 * guest processes (on different fids) see each other's locks, and the
 * server never blocks (the client retries a BLOCKED lock). */
static int do_lock(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = p9_get32(&c->r);
	uint8_t type = p9_get8(&c->r), status = P9_LOCK_SUCCESS;
	uint64_t start, len;
	char client[256];
	struct p9_fid *f;
	struct flock fl;
	int r;

	p9_get32(&c->r);		/* flags: never blocking here */
	start = p9_get64(&c->r);
	len = p9_get64(&c->r);
	p9_get32(&c->r);		/* proc_id */
	GET_NAME(c, client);
	PARSED(c);
	r = fid_file(s, fidn, &f);
	if (r < 0)
		return r;
	memset(&fl, 0, sizeof(fl));
	fl.l_whence = SEEK_SET;
	if (type > P9_LOCK_TYPE_UNLCK || start > INT64_MAX || len > INT64_MAX ||
	    f->ofd < 0) {
		status = P9_LOCK_ERROR;
	} else {
		fl.l_type = type == P9_LOCK_TYPE_RDLCK ? F_RDLCK :
			    type == P9_LOCK_TYPE_WRLCK ? F_WRLCK : F_UNLCK;
		fl.l_start = (off_t)start;
		fl.l_len = (off_t)len;
		if (fcntl(f->ofd, F_OFD_SETLK, &fl) < 0)
			status = (errno == EAGAIN || errno == EACCES) ?
				 P9_LOCK_BLOCKED : P9_LOCK_ERROR;
	}
	reply(c);
	p9_put8(&c->w, status);
	return 0;
}

static int do_getlock(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = p9_get32(&c->r), proc_id;
	uint8_t type = p9_get8(&c->r);
	uint64_t start = p9_get64(&c->r), len = p9_get64(&c->r);
	char client[256];
	struct p9_fid *f;
	struct flock fl;
	int r;

	proc_id = p9_get32(&c->r);
	GET_NAME(c, client);
	PARSED(c);
	r = fid_file(s, fidn, &f);
	if (r < 0)
		return r;
	if (f->ofd < 0)
		return -EBADF;
	if (type > P9_LOCK_TYPE_WRLCK || start > INT64_MAX || len > INT64_MAX)
		return -EINVAL;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = type == P9_LOCK_TYPE_RDLCK ? F_RDLCK : F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)start;
	fl.l_len = (off_t)len;
	if (fcntl(f->ofd, F_OFD_GETLK, &fl) < 0)
		return -errno;
	reply(c);
	if (fl.l_type == F_UNLCK) {
		p9_put8(&c->w, P9_LOCK_TYPE_UNLCK);
		p9_put64(&c->w, start);
		p9_put64(&c->w, len);
		p9_put32(&c->w, proc_id);
	} else {
		p9_put8(&c->w, fl.l_type == F_RDLCK ? P9_LOCK_TYPE_RDLCK
						    : P9_LOCK_TYPE_WRLCK);
		p9_put64(&c->w, (uint64_t)fl.l_start);
		p9_put64(&c->w, (uint64_t)fl.l_len);
		p9_put32(&c->w, 0);	/* another open's: no guest pid */
	}
	p9_put_str(&c->w, client);
	return 0;
}

static int do_xattrwalk(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = p9_get32(&c->r), newfidn = p9_get32(&c->r);
	char name[256];
	struct p9_fid *f, *nf;
	struct stat st;
	ssize_t n = 0;
	uint8_t *buf = NULL;
	int fd, r;

	GET_NAME(c, name);
	PARSED(c);
	r = fid_file(s, fidn, &f);
	if (r < 0)
		return r;
	if (fstat(f->fd, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
		/* Not opened (a link, a device): no attributes to show. */
		if (name[0])
			return -ENODATA;
		goto done;
	}
	if (f->ofd >= 0) {
		fd = fcntl(f->ofd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
	} else {
		fd = fid_reopen(s, f, O_RDONLY);
		if (fd < 0)
			return fd;
	}
	n = name[0] ? fgetxattr(fd, name, NULL, 0) : flistxattr(fd, NULL, 0);
	if (n > (ssize_t)XATTR_ONE_MAX) {
		n = -1;
		errno = E2BIG;
	}
	if (n > 0 && s->xattr_bytes + (size_t)n > P9_XATTR_BYTES_MAX) {
		n = -1;
		errno = ENOMEM;
	}
	if (n > 0) {
		buf = malloc((size_t)n);
		if (!buf) {
			n = -1;
			errno = ENOMEM;
		} else {
			n = name[0] ? fgetxattr(fd, name, buf, (size_t)n)
				    : flistxattr(fd, (char *)buf, (size_t)n);
		}
	}
	r = -errno;
	close(fd);
	if (n < 0) {
		free(buf);
		return r == -ENOTSUP ? -EOPNOTSUPP : r;
	}
done:
	r = fid_new(s, newfidn, &nf);
	if (r < 0) {
		free(buf);
		return r;
	}
	nf->kind = FID_XATTR;
	nf->xbuf = buf;
	nf->xlen = (size_t)n;
	nf->path = g_strdup(f->path);
	s->xattr_bytes += nf->xlen;
	fid_insert(s, nf);
	reply(c);
	p9_put64(&c->w, (uint64_t)n);
	return 0;
}

static int do_flush(struct ctx *c)
{
	p9_get16(&c->r);		/* oldtag */
	PARSED(c);
	/* Requests are served in order, one at a time: the flushed one has
	 * had its reply already. */
	reply(c);
	return 0;
}

static int dispatch(struct ctx *c)
{
	if (c->type == P9_TVERSION)
		return do_version(c);
	if (!c->s->versioned)
		return -EPROTO;		/* Tversion comes first */
	switch (c->type) {
	case P9_TATTACH:	return do_attach(c);
	case P9_TWALK:		return do_walk(c);
	case P9_TCLUNK:		return do_clunk(c);
	case P9_TGETATTR:	return do_getattr(c);
	case P9_TSETATTR:	return do_setattr(c);
	case P9_TSTATFS:	return do_statfs(c);
	case P9_TLOPEN:		return do_lopen(c);
	case P9_TLCREATE:	return do_lcreate(c);
	case P9_TMKDIR:		return do_mkdir(c);
	case P9_TSYMLINK:	return do_symlink(c);
	case P9_TMKNOD:		return do_mknod(c);
	case P9_TREADLINK:	return do_readlink(c);
	case P9_TRENAMEAT:	return do_renameat(c);
	case P9_TRENAME:	return do_rename(c);
	case P9_TUNLINKAT:	return do_unlinkat(c);
	case P9_TREMOVE:	return do_remove(c);
	case P9_TLINK:		return do_link(c);
	case P9_TREAD:		return do_read(c);
	case P9_TWRITE:		return do_write(c);
	case P9_TREADDIR:	return do_readdir(c);
	case P9_TFSYNC:		return do_fsync(c);
	case P9_TLOCK:		return do_lock(c);
	case P9_TGETLOCK:	return do_getlock(c);
	case P9_TXATTRWALK:	return do_xattrwalk(c);
	case P9_TXATTRCREATE:
		return c->s->readonly ? -EROFS : -EOPNOTSUPP;
	case P9_TFLUSH:		return do_flush(c);
	default:
		/* Tauth (no authentication), 9P2000's and 9P2000.u's own
		 * messages, R-messages, unknown types. */
		return -EOPNOTSUPP;
	}
}

size_t p9_server_handle(struct p9_server *s, const uint8_t *req, size_t len,
			uint8_t *resp, size_t room)
{
	struct ctx c = { .s = s, .resp = resp, .room = room };
	struct p9_reader hdr;
	uint32_t size;
	size_t n;
	int r;

	if (len < P9_HDR_SIZE || room < RLERROR_SIZE)
		return 0;
	p9_reader_init(&hdr, req, len);
	size = p9_get32(&hdr);
	c.type = p9_get8(&hdr);
	c.tag = p9_get16(&hdr);
	if (c.room > s->msize)
		c.room = s->msize;
	if (c.room < RLERROR_SIZE)
		c.room = RLERROR_SIZE;
	if (size < P9_HDR_SIZE || size > len)
		r = -EINVAL;
	else if (size > s->msize)
		r = -EMSGSIZE;
	else {
		p9_reader_init(&c.r, req + P9_HDR_SIZE, size - P9_HDR_SIZE);
		r = dispatch(&c);
	}
	if (r == 0) {
		n = p9_finish(&c.w);
		if (n)
			return n;
		r = -EMSGSIZE;		/* a reply over the room given */
	}
	if (r > 0 || r < -4095)
		r = -EIO;
	p9_begin(&c.w, resp, room, P9_RLERROR, c.tag);
	p9_put32(&c.w, (uint32_t)-r);
	return p9_finish(&c.w);
}

/* ---- life cycle -------------------------------------------------------- */

struct p9_server *p9_server_new(const struct p9_server_config *cfg, char *err,
				size_t errlen)
{
	struct p9_server *s;
	struct stat st;
	int fd;

	if (!cfg->root || !cfg->root[0]) {
		snprintf(err, errlen, "share: no folder given");
		return NULL;
	}
	if (cfg->max_msize && cfg->max_msize < P9_MIN_MSIZE) {
		snprintf(err, errlen, "share: msize %u is under %u", cfg->max_msize,
			 P9_MIN_MSIZE);
		return NULL;
	}
	fd = open(cfg->root, O_PATH | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "share '%s': %s", cfg->root, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "share '%s' is not a folder", cfg->root);
		close(fd);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		close(fd);
		snprintf(err, errlen, "share: out of memory");
		return NULL;
	}
	s->root = fd;
	s->root_dev = st.st_dev;
	s->readonly = cfg->readonly;
	s->use_openat2 = !cfg->no_openat2;
	s->max_fids = cfg->max_fids ? cfg->max_fids : P9_MAX_FIDS_DEFAULT;
	s->max_msize = cfg->max_msize ? cfg->max_msize : P9_MAX_MSIZE_DEFAULT;
	s->msize = s->max_msize;
	s->procfd = cfg->no_procfd ? -1 :
		    open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	s->rootpath = g_strdup(cfg->root);
	s->fids = g_hash_table_new(g_direct_hash, g_direct_equal);
	return s;
}

void p9_server_reset(struct p9_server *s)
{
	clear_fids(s);
	s->versioned = false;
	s->msize = s->max_msize;
}

void p9_server_free(struct p9_server *s)
{
	if (!s)
		return;
	p9_server_reset(s);
	g_hash_table_destroy(s->fids);
	if (s->procfd >= 0)
		close(s->procfd);
	close(s->root);
	g_free(s->rootpath);
	free(s);
}

uint32_t p9_server_msize(const struct p9_server *s) { return s->msize; }
uint32_t p9_server_max_msize(const struct p9_server *s) { return s->max_msize; }
unsigned p9_server_nfids(const struct p9_server *s) { return g_hash_table_size(s->fids); }
bool p9_server_readonly(const struct p9_server *s) { return s->readonly; }

/* ---- saved state ------------------------------------------------------- */

static gint cmp_u32(gconstpointer a, gconstpointer b)
{
	uint32_t x = GPOINTER_TO_UINT(*(gconstpointer *)a);
	uint32_t y = GPOINTER_TO_UINT(*(gconstpointer *)b);

	return x < y ? -1 : x > y;
}

GVariant *p9_server_save(struct p9_server *s)
{
	GVariantBuilder b;
	GPtrArray *keys = g_ptr_array_new();
	GHashTableIter it;
	gpointer k;

	g_hash_table_iter_init(&it, s->fids);
	while (g_hash_table_iter_next(&it, &k, NULL))
		g_ptr_array_add(keys, k);
	g_ptr_array_sort(keys, cmp_u32);	/* a stable order */
	g_variant_builder_init(&b, G_VARIANT_TYPE("a(usuu)"));
	for (guint i = 0; i < keys->len; i++) {
		struct p9_fid *f = fid_get(s, GPOINTER_TO_UINT(keys->pdata[i]));

		if (f->kind != FID_FILE)
			continue;
		g_variant_builder_add(&b, "(usuu)", f->num, f->path, f->uid,
				      f->fd < 0 ? P9_FID_NOT_OPEN : f->oflags);
	}
	g_ptr_array_free(keys, TRUE);
	return g_variant_new("(bua(usuu))", s->versioned, s->msize, &b);
}

#define LOAD_FLAGS (P9_DOTL_ACCMODE | P9_DOTL_TRUNC | P9_DOTL_APPEND | \
		    P9_DOTL_NONBLOCK | P9_DOTL_DSYNC | P9_DOTL_DIRECT | \
		    P9_DOTL_DIRECTORY | P9_DOTL_NOATIME | P9_DOTL_SYNC | \
		    0400 | 0100000 | 0400000 | 020000 | 02000000)

int p9_server_load(struct p9_server *s, GVariant *state, char *err,
		   size_t errlen)
{
	gboolean versioned;
	guint32 msize;
	GVariant *fids;
	GHashTable *seen;
	gsize n;
	GPtrArray *made;

	if (!g_variant_is_of_type(state, G_VARIANT_TYPE(P9_SERVER_STATE_TYPE))) {
		snprintf(err, errlen, "virtio-9p: share state of type %s",
			 g_variant_get_type_string(state));
		return -EINVAL;
	}
	g_variant_get(state, "(bu@a(usuu))", &versioned, &msize, &fids);
	n = g_variant_n_children(fids);
	if (msize < P9_MIN_MSIZE || msize > s->max_msize) {
		snprintf(err, errlen, "virtio-9p: saved msize %u outside %u..%u",
			 msize, P9_MIN_MSIZE, s->max_msize);
		g_variant_unref(fids);
		return -EINVAL;
	}
	if (n > s->max_fids) {
		snprintf(err, errlen, "virtio-9p: %zu fids saved, at most %u",
			 (size_t)n, s->max_fids);
		g_variant_unref(fids);
		return -EINVAL;
	}
	seen = g_hash_table_new(g_direct_hash, g_direct_equal);
	for (gsize i = 0; i < n; i++) {
		guint32 num, uid, oflags;
		const char *path;

		g_variant_get_child(fids, i, "(u&suu)", &num, &path, &uid, &oflags);
		if (num == P9_NOFID ||
		    g_hash_table_contains(seen, GUINT_TO_POINTER(num)) ||
		    !path_ok(path) ||
		    (oflags != P9_FID_NOT_OPEN && ((oflags & ~LOAD_FLAGS) ||
						   (oflags & 3) == 3))) {
			snprintf(err, errlen, "virtio-9p: saved fid %u ('%s', flags 0x%x) is not valid",
				 num, path, oflags);
			g_hash_table_destroy(seen);
			g_variant_unref(fids);
			return -EINVAL;
		}
		g_hash_table_add(seen, GUINT_TO_POINTER(num));
	}
	g_hash_table_destroy(seen);

	/* Checked: build the new session's fids, then swap them in. */
	made = g_ptr_array_new();
	for (gsize i = 0; i < n; i++) {
		struct p9_fid *f = calloc(1, sizeof(*f));
		guint32 num, uid, oflags;
		const char *path;
		bool stale = false;

		if (!f) {
			for (guint k = 0; k < made->len; k++)
				fid_close(s, made->pdata[k]);
			g_ptr_array_free(made, TRUE);
			g_variant_unref(fids);
			snprintf(err, errlen, "virtio-9p: out of memory");
			return -ENOMEM;
		}
		g_variant_get_child(fids, i, "(u&suu)", &num, &path, &uid, &oflags);
		f->num = num;
		f->uid = uid;
		f->path = g_strdup(path);
		f->ofd = -1;
		f->oflags = P9_FID_NOT_OPEN;
		f->fd = root_open(s, path, O_PATH);
		if (f->fd >= 0 && oflags != P9_FID_NOT_OPEN) {
			int fl = open_flags(oflags & ~P9_DOTL_TRUNC);

			if (s->readonly && flags_write(oflags))
				stale = true;
			else if (fl >= 0)
				f->ofd = fid_reopen(s, f, fl);
			if (f->ofd < 0)
				stale = true;
			else
				f->oflags = oflags;
		}
		if (f->fd < 0 || stale) {
			vlog_ratelimited(LOG_WARN, "virtio-9p: %s: '%s' cannot be opened again after the restore; its fid %u is stale",
					 s->rootpath, path, num);
			if (f->fd >= 0)
				close(f->fd);
			if (f->ofd >= 0)
				close(f->ofd);
			f->fd = f->ofd = -1;
		}
		g_ptr_array_add(made, f);
	}
	g_variant_unref(fids);
	p9_server_reset(s);
	for (guint k = 0; k < made->len; k++)
		fid_insert(s, made->pdata[k]);
	g_ptr_array_free(made, TRUE);
	s->versioned = versioned;
	s->msize = msize;
	return 0;
}
