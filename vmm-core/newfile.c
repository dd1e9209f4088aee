/* SPDX-License-Identifier: MIT */
/* vmm-core/newfile.c - new files that appear only when complete. */
#define _GNU_SOURCE
#include "newfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP_TAG		".vivarium-"
#define TMP_TRIES	100

static int nf_err(char *err, size_t errlen, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int nf_err(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

/* @path's folder ("." for a bare name) and its last component. */
static char *dir_of(const char *path, const char **base)
{
	const char *slash = strrchr(path, '/');

	*base = slash ? slash + 1 : path;
	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

/* Is @name "." BASE TMP_TAG PID "-" N, and if so which PID? */
static pid_t tmp_pid(const char *name, const char *base)
{
	size_t bl = strlen(base), tl = strlen(TMP_TAG);
	const char *p;
	char *end;
	long pid;

	if (name[0] != '.' || strncmp(name + 1, base, bl) ||
	    strncmp(name + 1 + bl, TMP_TAG, tl))
		return 0;
	p = name + 1 + bl + tl;
	pid = strtol(p, &end, 10);
	if (end == p || *end != '-' || pid <= 0 || end[1] < '0' || end[1] > '9')
		return 0;
	strtoul(end + 1, &end, 10);
	return *end ? 0 : (pid_t)pid;
}

/* Remove the temporaries for @base in @dir left by processes that no
 * longer run: killed (kill -9, power loss) before they could clean up.
 * Only regular files of this user; best effort. */
static void sweep_stale(const char *dir, const char *base)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *e;
	struct stat st;
	DIR *d;

	if (dfd < 0)
		return;
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
	while ((e = readdir(d))) {
		pid_t pid = tmp_pid(e->d_name, base);

		if (!pid || pid == getpid())
			continue;
		if (kill(pid, 0) == 0 || errno != ESRCH)
			continue;	/* alive (or not ours to judge) */
		if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode) && st.st_uid == geteuid())
			unlinkat(dfd, e->d_name, 0);
	}
	closedir(d);
}

/* A fresh ".BASE.vivarium-PID-N" name in @dir, created with @mode. */
static int open_named_tmp(const char *dir, const char *base, mode_t mode,
			  char **tmp)
{
	int fd = -1;

	for (unsigned n = 0; n < TMP_TRIES; n++) {
		if (asprintf(tmp, "%s/.%s%s%ld-%u", dir, base, TMP_TAG,
			     (long)getpid(), n) < 0) {
			*tmp = NULL;
			return -ENOMEM;
		}
		fd = open(*tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
				O_CLOEXEC, mode);
		if (fd >= 0)
			return fd;
		free(*tmp);
		*tmp = NULL;
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

int newfile_open(struct newfile *nf, const char *path, mode_t mode,
		 char *err, size_t errlen)
{
	const char *base;
	char *dir = dir_of(path, &base);
	int fd;

	memset(nf, 0, sizeof(*nf));
	nf->fd = -1;
	nf->path = strdup(path);
	if (!dir || !nf->path) {
		free(dir);
		free(nf->path);
		nf->path = NULL;
		return nf_err(err, errlen, -ENOMEM, "out of memory");
	}
	sweep_stale(dir, base);
	/* Linking a nameless file in needs /proc/self/fd (or a capability):
	 * without it, take the named way now, not after the work is done. */
	fd = -EOPNOTSUPP;
	if (access("/proc/self/fd", X_OK) == 0) {
		fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, mode);
		if (fd < 0)
			fd = -errno;
	}
	/* No O_TMPFILE: EOPNOTSUPP from the file system, EISDIR or EINVAL
	 * from a kernel that predates it. */
	if (fd == -EOPNOTSUPP || fd == -EISDIR || fd == -EINVAL)
		fd = open_named_tmp(dir, base, mode, &nf->tmp);
	free(dir);
	if (fd < 0) {
		free(nf->path);
		nf->path = NULL;
		return nf_err(err, errlen, fd, "'%s': cannot create: %s", path,
			      strerror(-fd));
	}
	nf->fd = fd;
	return 0;
}

/* Give the nameless file a temporary name beside its final one. */
static int link_as_tmp(struct newfile *nf, const char *proc)
{
	const char *base;
	char *dir = dir_of(nf->path, &base);
	int r = -EEXIST;

	if (!dir)
		return -ENOMEM;
	for (unsigned n = 0; n < TMP_TRIES && r == -EEXIST; n++) {
		if (asprintf(&nf->tmp, "%s/.%s%s%ld-%u", dir, base, TMP_TAG,
			     (long)getpid(), n) < 0) {
			nf->tmp = NULL;
			r = -ENOMEM;
			break;
		}
		r = linkat(AT_FDCWD, proc, AT_FDCWD, nf->tmp,
			   AT_SYMLINK_FOLLOW) < 0 ? -errno : 0;
		if (r < 0) {
			free(nf->tmp);
			nf->tmp = NULL;
		}
	}
	free(dir);
	return r;
}

int newfile_commit(struct newfile *nf, bool replace, char *err,
		   size_t errlen)
{
	char proc[64];
	int r = 0;

	if (fsync(nf->fd) < 0) {
		r = nf_err(err, errlen, -errno, "'%s': cannot write: %s",
			   nf->path, strerror(errno));
		goto out;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", nf->fd);
	if (!nf->tmp && !replace) {
		/* linkat never replaces: EEXIST if the name was taken. */
		if (linkat(AT_FDCWD, proc, AT_FDCWD, nf->path,
			   AT_SYMLINK_FOLLOW) < 0)
			r = -errno;
		goto named;
	}
	if (!nf->tmp) {
		/* rename() replaces, linkat() cannot: through a name. */
		r = link_as_tmp(nf, proc);
		if (r < 0)
			goto named;
	}
	if (replace) {
		r = rename(nf->tmp, nf->path) < 0 ? -errno : 0;
	} else if (renameat2(AT_FDCWD, nf->tmp, AT_FDCWD, nf->path,
			     RENAME_NOREPLACE) < 0) {
		r = -errno;
		/* File systems without RENAME_NOREPLACE: link() refuses too. */
		if (r == -EINVAL || r == -ENOSYS)
			r = link(nf->tmp, nf->path) < 0 ? -errno : 0;
	} else {
		free(nf->tmp);		/* renamed: names nothing now */
		nf->tmp = NULL;
	}
	if (replace && r == 0) {
		free(nf->tmp);
		nf->tmp = NULL;
	}
named:
	if (r == -EEXIST)
		nf_err(err, errlen, r, "'%s' already exists; not overwriting it",
		       nf->path);
	else if (r < 0)
		nf_err(err, errlen, r, "'%s': cannot create: %s", nf->path,
		       strerror(-r));
out:
	newfile_abort(nf);
	return r;
}

void newfile_abort(struct newfile *nf)
{
	if (nf->fd >= 0)
		close(nf->fd);
	nf->fd = -1;
	if (nf->tmp)
		unlink(nf->tmp);
	free(nf->tmp);
	free(nf->path);
	nf->tmp = NULL;
	nf->path = NULL;
}
