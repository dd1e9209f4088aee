/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_p9.c - the 9P2000.L codec and server (share/p9.h,
 * share/p9_server.h) against a temporary tree: every message, msize and
 * fid bounds, save/load, and confinement: "..", absolute and relative
 * symlinks out of the share, a directory swapped for a symlink between
 * walk and open, device nodes and FIFOs, readonly shares.  A canary file
 * beside the share is watched with inotify (IN_ACCESS, IN_OPEN, IN_MODIFY,
 * IN_ATTRIB: independent of the file system's atime policy) and must see
 * no event and keep its contents.  Each confinement test runs three ways:
 * openat2 and /proc/self/fd, without /proc, without openat2.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "check.h"
#include "p9client.h"
#include "share/p9.h"
#include "share/p9_server.h"

static char top[] = "/tmp/vivarium-p9-XXXXXX";
static char share[300], outside[300], canary[400];
static int ino_fd = -1;
static const char secret[] = "canary: the guest must never read this\n";

static struct p9_server *srv;
static struct p9c *cl;

static size_t direct_rpc(void *opaque, const uint8_t *req, size_t len,
			 uint8_t *resp, size_t room)
{
	return p9_server_handle(opaque, req, len, resp, room);
}

static char *sp(const char *rel)
{
	static char buf[4][600];
	static int i;
	char *p = buf[i++ % 4];

	snprintf(p, 600, "%s/%s", share, rel);
	return p;
}

static void put_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		perror(path);
		exit(1);
	}
	fputs(text, f);
	fclose(f);
}

static char *host_read(const char *path)
{
	gchar *s = NULL;

	if (!g_file_get_contents(path, &s, NULL, NULL))
		return NULL;
	return s;
}

/* The tree: share/{hello.txt, sub/inner.txt, abs -> outside,
 * rel -> ../outside, relfile -> ../outside/canary, abscanary -> canary},
 * outside/canary. */
static void make_tree(void)
{
	if (!mkdtemp(top)) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(share, sizeof(share), "%s/share", top);
	snprintf(outside, sizeof(outside), "%s/outside", top);
	snprintf(canary, sizeof(canary), "%s/canary", outside);
	mkdir(share, 0755);
	mkdir(outside, 0755);
	put_file(canary, secret);
	mkdir(sp("sub"), 0755);
	put_file(sp("hello.txt"), "hello, guest\n");
	put_file(sp("sub/inner.txt"), "inner\n");
	CHECK(symlink(outside, sp("abs")) == 0);
	CHECK(symlink("../outside", sp("rel")) == 0);
	CHECK(symlink("../outside/canary", sp("relfile")) == 0);
	CHECK(symlink(canary, sp("abscanary")) == 0);
	/* Watch the canary and its folder from now on. */
	ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	CHECK(ino_fd >= 0);
	CHECK(inotify_add_watch(ino_fd, canary, IN_ACCESS | IN_OPEN | IN_MODIFY |
				IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF) >= 0);
	CHECK(inotify_add_watch(ino_fd, outside, IN_ALL_EVENTS) >= 0);
}

/* Nothing touched the canary or its folder since the last call. */
static void canary_untouched(const char *what)
{
	char buf[4096];
	ssize_t n = read(ino_fd, buf, sizeof(buf));
	char *s;

	if (n > 0) {
		const struct inotify_event *e = (const void *)buf;

		fprintf(stderr, "  %s: inotify event 0x%x on the canary side (%s)\n",
			what, e->mask, e->len ? e->name : "canary");
	}
	CHECK(n < 0 && errno == EAGAIN);
	s = host_read(canary);
	CHECK(s && !strcmp(s, secret));
	/* host_read itself opened it: drain that. */
	while (read(ino_fd, buf, sizeof(buf)) > 0)
		;
	g_free(s);
}

static void rm_tree(const char *path)
{
	char *cmd = g_strdup_printf("rm -rf '%s'", path);

	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", path);
	g_free(cmd);
}

static void start(bool readonly, bool no_procfd, bool no_openat2,
		  unsigned max_fids)
{
	struct p9_server_config cfg = {
		.root = share, .readonly = readonly, .max_fids = max_fids,
		.no_procfd = no_procfd, .no_openat2 = no_openat2,
	};
	char err[256], v[32];
	uint32_t msize;

	srv = p9_server_new(&cfg, err, sizeof(err));
	CHECK(srv != NULL);
	if (!srv) {
		fprintf(stderr, "  %s\n", err);
		exit(1);
	}
	cl = g_malloc0(sizeof(*cl));
	cl->rpc = direct_rpc;
	cl->opaque = srv;
	CHECK_EQ(p9c_version(cl, 65536, P9_VERSION_L, &msize, v, sizeof(v)), 0);
	CHECK_EQ(msize, 65536);
	CHECK_EQ(p9c_attach(cl, 0, 1000, NULL), 0);
}

static void stop(void)
{
	p9_server_free(srv);
	srv = NULL;
	g_free(cl);
	cl = NULL;
}

/* ---- the codec ------------------------------------------------------------ */

static void test_codec(void)
{
	uint8_t buf[64];
	struct p9_writer w;
	struct p9_reader r;
	struct p9_qid q = { P9_QTDIR, 7, 0x1122334455667788ull }, q2;
	char s[8];

	p9_begin(&w, buf, sizeof(buf), P9_RWALK, 0xbeef);
	p9_put16(&w, 1);
	p9_put_qid(&w, &q);
	p9_put_str(&w, "abc");
	CHECK_EQ(p9_finish(&w), 7 + 2 + 13 + 5);
	CHECK_EQ(buf[0], 27);
	CHECK_EQ(buf[4], P9_RWALK);
	CHECK_EQ(buf[5], 0xef);
	CHECK_EQ(buf[6], 0xbe);
	CHECK_EQ(buf[9], P9_QTDIR);
	CHECK_EQ(buf[14], 0x88);	/* path, little-endian */
	p9_reader_init(&r, buf + 7, 20);
	CHECK_EQ(p9_get16(&r), 1);
	p9_get_qid(&r, &q2);
	CHECK(q2.type == q.type && q2.version == 7 && q2.path == q.path);
	CHECK_EQ(p9_get_str(&r, s, sizeof(s)), 3);
	CHECK(!strcmp(s, "abc"));
	CHECK(!r.bad);
	CHECK_EQ(p9_get32(&r), 0);	/* past the end */
	CHECK(r.bad);

	/* A string longer than the room, one with a NUL. */
	p9_begin(&w, buf, sizeof(buf), 0, 0);
	p9_put_str(&w, "toolongforit");
	p9_put16(&w, 3);
	p9_put_bytes(&w, "a\0b", 3);
	p9_reader_init(&r, buf + 7, w.pos - 7);
	CHECK_EQ(p9_get_str(&r, s, sizeof(s)), -EINVAL);
	CHECK(!r.bad);
	CHECK_EQ(p9_get_str(&r, s, sizeof(s)), -EINVAL);
	CHECK_EQ(r.pos, r.len);
	/* A string whose length runs past the message. */
	buf[0] = 200;
	buf[1] = 0;
	p9_reader_init(&r, buf, 10);
	CHECK_EQ(p9_get_str(&r, s, sizeof(s)), -EINVAL);
	CHECK(r.bad);

	/* The writer stops at its room. */
	p9_begin(&w, buf, 10, 0, 0);
	p9_put32(&w, 1);
	CHECK(w.overflow);
	CHECK_EQ(p9_finish(&w), 0);
}

/* ---- version, framing, bounds ------------------------------------------------ */

static void test_version(void)
{
	struct p9_server_config cfg = { .root = share, .max_msize = 8192 };
	struct p9c *c = g_malloc0(sizeof(*c));
	struct p9_writer w;
	char err[256], v[32];
	uint32_t msize;
	uint8_t raw[16], resp[64];

	srv = p9_server_new(&cfg, err, sizeof(err));
	c->rpc = direct_rpc;
	c->opaque = srv;
	/* Before Tversion, nothing else. */
	CHECK_EQ(p9c_attach(c, 0, 0, NULL), -EPROTO);
	CHECK_EQ(p9c_version(c, 1 << 20, P9_VERSION_L, &msize, v, sizeof(v)), 0);
	CHECK_EQ(msize, 8192);		/* the server's maximum */
	CHECK(!strcmp(v, P9_VERSION_L));
	CHECK_EQ(p9c_version(c, 5000, P9_VERSION_L, &msize, v, sizeof(v)), 0);
	CHECK_EQ(msize, 5000);
	CHECK_EQ(p9_server_msize(srv), 5000);
	CHECK_EQ(p9c_version(c, 100, P9_VERSION_L, &msize, v, sizeof(v)), -EINVAL);
	CHECK_EQ(p9c_version(c, 8192, "9P2000.u", &msize, v, sizeof(v)), 0);
	CHECK(!strcmp(v, "unknown"));
	CHECK_EQ(p9c_attach(c, 0, 0, NULL), -EPROTO);
	CHECK_EQ(p9c_version(c, 8192, P9_VERSION_L, &msize, v, sizeof(v)), 0);
	CHECK_EQ(p9c_attach(c, 0, 0, NULL), 0);
	/* A session restarts at Tversion: the fid is gone. */
	CHECK_EQ(p9_server_nfids(srv), 1);
	CHECK_EQ(p9c_version(c, 8192, P9_VERSION_L, &msize, v, sizeof(v)), 0);
	CHECK_EQ(p9_server_nfids(srv), 0);
	CHECK_EQ(p9c_attach(c, 0, 0, NULL), 0);

	/* Over msize: EMSGSIZE, whatever the message. */
	p9c_begin(c, &w, P9_TWRITE);
	p9_put32(&w, 0);
	p9_put64(&w, 0);
	p9_put32(&w, 9000);
	p9_reserve(&w, 9000);
	CHECK_EQ(p9c_send(c, &w), -EMSGSIZE);
	/* A size field over what arrived, under the header, a short body. */
	memset(raw, 0, sizeof(raw));
	raw[0] = 100;
	raw[4] = P9_TCLUNK;
	CHECK_EQ(p9_server_handle(srv, raw, 11, resp, sizeof(resp)), 11);
	CHECK_EQ(resp[4], P9_RLERROR);
	CHECK_EQ(resp[7], EINVAL);
	raw[0] = 3;
	CHECK_EQ(p9_server_handle(srv, raw, 11, resp, sizeof(resp)), 11);
	CHECK_EQ(resp[7], EINVAL);
	raw[0] = 9;			/* Tclunk with half a fid */
	CHECK_EQ(p9_server_handle(srv, raw, 11, resp, sizeof(resp)), 11);
	CHECK_EQ(resp[7], EINVAL);
	CHECK_EQ(p9_server_handle(srv, raw, 5, resp, sizeof(resp)), 0);
	CHECK_EQ(p9_server_handle(srv, raw, 11, resp, 10), 0);
	/* 9P2000's own messages and unknown types: EOPNOTSUPP. */
	p9c_begin(c, &w, P9_TSTAT);
	p9_put32(&w, 0);
	CHECK_EQ(p9c_send(c, &w), -EOPNOTSUPP);
	p9c_begin(c, &w, 250);
	CHECK_EQ(p9c_send(c, &w), -EOPNOTSUPP);
	p9c_begin(c, &w, P9_TAUTH);
	p9_put32(&w, 5);
	p9_put_str(&w, "u");
	p9_put_str(&w, "");
	p9_put32(&w, 0);
	CHECK_EQ(p9c_send(c, &w), -EOPNOTSUPP);
	/* Tflush answers at once. */
	p9c_begin(c, &w, P9_TFLUSH);
	p9_put16(&w, 3);
	CHECK_EQ(p9c_send(c, &w), P9_RFLUSH);
	/* A reply bigger than the room: Rread shrinks to it. */
	CHECK_EQ(p9c_walk_ok(c, 0, 1, "hello.txt", NULL), 0);
	CHECK_EQ(p9c_lopen(c, 1, 0, NULL), 0);
	c->room = 11 + 4;
	{
		char b[64];

		CHECK_EQ(p9c_read(c, 1, 0, b, 64), 4);
		CHECK(!memcmp(b, "hell", 4));
	}
	c->room = 0;
	p9_server_free(srv);
	srv = NULL;
	g_free(c);
}

static void test_fid_cap(void)
{
	start(false, false, false, 16);
	for (uint32_t f = 1; f < 16; f++)
		CHECK_EQ(p9c_walk_ok(cl, 0, f, "", NULL), 0);
	CHECK_EQ(p9_server_nfids(srv), 16);
	CHECK_EQ(p9c_walk_ok(cl, 0, 100, "", NULL), -EMFILE);
	CHECK_EQ(p9c_attach(cl, 101, 0, NULL), -EMFILE);
	/* In use, NOFID: refused. */
	CHECK_EQ(p9c_clunk(cl, 15), 0);
	CHECK_EQ(p9c_walk_ok(cl, 0, 1, "", NULL), -EBADF);
	CHECK_EQ(p9c_walk_ok(cl, 0, P9_NOFID, "", NULL), -EBADF);
	CHECK_EQ(p9c_clunk(cl, 15), -EBADF);
	CHECK_EQ(p9c_walk_ok(cl, 0, 15, "", NULL), 0);
	/* A long walk: at most 16 names. */
	CHECK_EQ(p9c_walk(cl, 0, 200, "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q", NULL), -EINVAL);
	stop();
}

/* ---- every operation ------------------------------------------------------- */

static void test_read_walk_getattr(void)
{
	struct p9c_attr a;
	struct p9_qid q, q2;
	char buf[256];
	struct stat st;

	start(false, false, false, 0);
	CHECK_EQ(p9c_getattr(cl, 0, &a), 0);
	CHECK_EQ(a.qid.type, P9_QTDIR);
	CHECK(S_ISDIR(a.mode));
	CHECK_EQ(a.uid, 1000);		/* the attaching user's */
	CHECK_EQ(a.gid, 1000);
	CHECK_EQ(p9c_walk_ok(cl, 0, 1, "sub/inner.txt", &q), 0);
	CHECK_EQ(q.type, P9_QTFILE);
	stat(sp("sub/inner.txt"), &st);
	CHECK_EQ(q.path, st.st_ino);
	CHECK_EQ(p9c_getattr(cl, 1, &a), 0);
	CHECK_EQ(a.size, 6);
	CHECK_EQ(a.mtime[0], (uint64_t)st.st_mtim.tv_sec);
	CHECK_EQ(a.nlink, 1);
	CHECK_EQ(a.valid, P9_GETATTR_BASIC);
	/* Not open yet: no read. */
	CHECK_EQ(p9c_read(cl, 1, 0, buf, 10), -EBADF);
	CHECK_EQ(p9c_lopen(cl, 1, 0, &q2), 0);
	CHECK_EQ(q2.path, q.path);
	CHECK_EQ(p9c_lopen(cl, 1, 0, NULL), -EBADF);	/* twice */
	CHECK_EQ(p9c_read(cl, 1, 0, buf, sizeof(buf)), 6);
	CHECK(!memcmp(buf, "inner\n", 6));
	CHECK_EQ(p9c_read(cl, 1, 2, buf, 2), 2);
	CHECK(!memcmp(buf, "ne", 2));
	CHECK_EQ(p9c_read(cl, 1, 100, buf, 2), 0);
	/* Partial walks: the qids walked, newfid not made. */
	CHECK_EQ(p9c_walk(cl, 0, 2, "sub/nothere", NULL), 1);
	CHECK_EQ(p9c_getattr(cl, 2, &a), -EBADF);
	CHECK_EQ(p9c_walk(cl, 0, 2, "nothere", NULL), -ENOENT);
	/* Through a file: ENOTDIR after one qid. */
	CHECK_EQ(p9c_walk(cl, 0, 2, "hello.txt/x", NULL), 1);
	/* Walk onto itself: the fid moves. */
	CHECK_EQ(p9c_walk_ok(cl, 0, 3, "", NULL), 0);
	CHECK_EQ(p9c_walk_ok(cl, 3, 3, "sub", &q), 0);
	CHECK_EQ(q.type, P9_QTDIR);
	CHECK_EQ(p9c_walk_ok(cl, 3, 3, "..", &q2), 0);
	CHECK_EQ(p9c_getattr(cl, 3, &a), 0);
	CHECK_EQ(a.qid.path, (uint64_t)({ stat(share, &st); st.st_ino; }));
	/* A name holding '/'. */
	{
		struct p9_writer w;

		p9c_begin(cl, &w, P9_TWALK);
		p9_put32(&w, 0);
		p9_put32(&w, 9);
		p9_put16(&w, 1);
		p9_put_str(&w, "sub/inner.txt");
		CHECK_EQ(p9c_send(cl, &w), -ENOENT);
	}
	/* statfs */
	{
		struct p9_writer w;

		p9c_begin(cl, &w, P9_TSTATFS);
		p9_put32(&w, 0);
		CHECK_EQ(p9c_send(cl, &w), P9_RSTATFS);
		CHECK_EQ(cl->r.len, 4 + 4 + 8 * 6 + 4);
		p9_get32(&cl->r);
		CHECK(p9_get32(&cl->r) > 0);	/* bsize */
	}
	canary_untouched("read/walk/getattr");
	stop();
}

static void test_create_write(void)
{
	struct p9_qid q;
	char *s, buf[64];
	struct stat st;
	struct p9c_attr a;
	struct p9_writer w;

	start(false, false, false, 0);
	/* Tlcreate: the fid becomes the new, open file. */
	CHECK_EQ(p9c_walk_ok(cl, 0, 1, "", NULL), 0);
	CHECK_EQ(p9c_lcreate(cl, 1, "new.txt", 2 | P9_DOTL_CREATE, 06755, &q), 0);
	CHECK_EQ(q.type, P9_QTFILE);
	CHECK_EQ(p9c_write(cl, 1, 0, "written by the guest", 20), 20);
	CHECK_EQ(p9c_read(cl, 1, 8, buf, 2), 2);
	CHECK(!memcmp(buf, "by", 2));
	s = host_read(sp("new.txt"));
	CHECK(s && !strcmp(s, "written by the guest"));
	g_free(s);
	stat(sp("new.txt"), &st);
	CHECK_EQ(st.st_mode & 07777, 0755 & ~(mode_t)0);	/* no setuid/setgid */
	CHECK_EQ(st.st_uid, getuid());
	/* Tfsync on the open fid. */
	p9c_begin(cl, &w, P9_TFSYNC);
	p9_put32(&w, 1);
	p9_put32(&w, 0);
	CHECK_EQ(p9c_send(cl, &w), P9_RFSYNC);
	/* Exclusive create of an existing name. */
	CHECK_EQ(p9c_walk_ok(cl, 0, 2, "", NULL), 0);
	CHECK_EQ(p9c_lcreate(cl, 2, "new.txt", 2 | P9_DOTL_CREATE | P9_DOTL_EXCL, 0644, NULL),
		 -EEXIST);
	/* Without EXCL it opens the existing file. */
	CHECK_EQ(p9c_lcreate(cl, 2, "new.txt", 0 | P9_DOTL_CREATE, 0644, NULL), 0);
	CHECK_EQ(p9c_read(cl, 2, 0, buf, 7), 7);
	CHECK(!memcmp(buf, "written", 7));
	/* Names that are not one entry. */
	CHECK_EQ(p9c_walk_ok(cl, 0, 3, "", NULL), 0);
	CHECK_EQ(p9c_lcreate(cl, 3, "..", 2 | P9_DOTL_CREATE, 0644, NULL), -EINVAL);
	CHECK_EQ(p9c_lcreate(cl, 3, "a/b", 2 | P9_DOTL_CREATE, 0644, NULL), -EINVAL);
	CHECK_EQ(p9c_lcreate(cl, 3, "", 2 | P9_DOTL_CREATE, 0644, NULL), -EINVAL);

	/* Tmkdir, Tsymlink, Treadlink, Tlink, Tmknod (regular). */
	p9c_begin(cl, &w, P9_TMKDIR);
	p9_put32(&w, 0);
	p9_put_str(&w, "dir");
	p9_put32(&w, 02755);
	p9_put32(&w, 0);
	CHECK_EQ(p9c_send(cl, &w), P9_RMKDIR);
	CHECK(stat(sp("dir"), &st) == 0 && S_ISDIR(st.st_mode));
	CHECK_EQ(st.st_mode & 07777, 0755);

	p9c_begin(cl, &w, P9_TSYMLINK);
	p9_put32(&w, 0);
	p9_put_str(&w, "ln");
	p9_put_str(&w, "/etc/passwd");
	p9_put32(&w, 0);
	CHECK_EQ(p9c_send(cl, &w), P9_RSYMLINK);
	CHECK(readlink(sp("ln"), buf, sizeof(buf)) == 11);
	CHECK_EQ(p9c_walk_ok(cl, 0, 4, "ln", &q), 0);
	CHECK_EQ(q.type, P9_QTSYMLINK);
	p9c_begin(cl, &w, P9_TREADLINK);
	p9_put32(&w, 4);
	CHECK_EQ(p9c_send(cl, &w), P9_RREADLINK);
	CHECK_EQ(p9_get_str(&cl->r, buf, sizeof(buf)), 11);
	CHECK(!strcmp(buf, "/etc/passwd"));
	/* Treadlink of a file: EINVAL as readlink(2). */
	p9c_begin(cl, &w, P9_TREADLINK);
	p9_put32(&w, 1);
	CHECK_EQ(p9c_send(cl, &w), -EINVAL);

	CHECK_EQ(p9c_walk_ok(cl, 0, 5, "hello.txt", NULL), 0);
	p9c_begin(cl, &w, P9_TLINK);
	p9_put32(&w, 0);
	p9_put32(&w, 5);
	p9_put_str(&w, "hardlink");
	CHECK_EQ(p9c_send(cl, &w), P9_RLINK);
	CHECK(stat(sp("hardlink"), &st) == 0 && st.st_nlink == 2);

	p9c_begin(cl, &w, P9_TMKNOD);
	p9_put32(&w, 0);
	p9_put_str(&w, "plain");
	p9_put32(&w, S_IFREG | 0600);
	p9_put32(&w, 0);
	p9_put32(&w, 0);
	p9_put32(&w, 0);
	CHECK_EQ(p9c_send(cl, &w), P9_RMKNOD);
	CHECK(stat(sp("plain"), &st) == 0 && S_ISREG(st.st_mode));

	/* Tsetattr: mode (setuid dropped), size, times; chown is a no-op. */
	p9c_begin(cl, &w, P9_TSETATTR);
	p9_put32(&w, 5);
	p9_put32(&w, P9_SETATTR_MODE | P9_SETATTR_SIZE | P9_SETATTR_MTIME |
		 P9_SETATTR_MTIME_SET | P9_SETATTR_UID);
	p9_put32(&w, 04600);
	p9_put32(&w, 12345);
	p9_put32(&w, 0);
	p9_put64(&w, 3);
	p9_put64(&w, 0);
	p9_put64(&w, 0);
	p9_put64(&w, 1000000000);
	p9_put64(&w, 5);
	CHECK_EQ(p9c_send(cl, &w), P9_RSETATTR);
	CHECK(stat(sp("hello.txt"), &st) == 0);
	CHECK_EQ(st.st_mode & 07777, 0600);
	CHECK_EQ(st.st_size, 3);
	CHECK_EQ(st.st_mtim.tv_sec, 1000000000);
	CHECK_EQ(st.st_mtim.tv_nsec, 5);
	CHECK_EQ(st.st_uid, getuid());
	CHECK_EQ(p9c_getattr(cl, 5, &a), 0);
	CHECK_EQ(a.size, 3);

	/* Trenameat, then Trename; a fid on the moved file follows it. */
	CHECK_EQ(p9c_walk_ok(cl, 0, 6, "dir", NULL), 0);
	p9c_begin(cl, &w, P9_TRENAMEAT);
	p9_put32(&w, 0);
	p9_put_str(&w, "hello.txt");
	p9_put32(&w, 6);
	p9_put_str(&w, "moved.txt");
	CHECK_EQ(p9c_send(cl, &w), P9_RRENAMEAT);
	CHECK(access(sp("dir/moved.txt"), F_OK) == 0);
	p9c_begin(cl, &w, P9_TRENAME);
	p9_put32(&w, 5);		/* the fid walked to hello.txt */
	p9_put32(&w, 0);
	p9_put_str(&w, "back.txt");
	CHECK_EQ(p9c_send(cl, &w), P9_RRENAME);
	CHECK(access(sp("back.txt"), F_OK) == 0);
	CHECK(access(sp("dir/moved.txt"), F_OK) != 0);

	/* Treaddir: every name, in pieces. */
	{
		CHECK_EQ(p9c_walk_ok(cl, 0, 7, "", NULL), 0);
		CHECK_EQ(p9c_lopen(cl, 7, P9_DOTL_DIRECTORY, NULL), 0);
		GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
		uint64_t off = 0, next = 0;
		char names[8192];
		int n, rounds = 0;

		while ((n = p9c_readdir(cl, 7, off, 80, names, sizeof(names), &next)) > 0 &&
		       rounds++ < 100) {
			char *p = names;

			for (int i = 0; i < n; i++) {
				g_hash_table_add(seen, g_strdup(p));
				p += strlen(p) + 1;
			}
			off = next;
		}
		CHECK_EQ(n, 0);
		CHECK(rounds > 3);	/* 80 bytes: a few entries a time */
		for (const char *want[] = { ".", "..", "new.txt", "dir", "ln", "hardlink",
					    "plain", "back.txt", "sub", "abs", "rel" },
		     **p = want; p < want + 11; p++)
			CHECK(g_hash_table_contains(seen, *p));
		CHECK_EQ(g_hash_table_size(seen), 13);
		g_hash_table_destroy(seen);
		/* A directory is opened read-only. */
		CHECK_EQ(p9c_walk_ok(cl, 0, 8, "sub", NULL), 0);
		CHECK_EQ(p9c_lopen(cl, 8, 2, NULL), -EISDIR);
		/* Treaddir of a file. */
		CHECK_EQ(p9c_readdir(cl, 1, 0, 4000, names, sizeof(names), &next), -ENOTDIR);
	}

	/* Tunlinkat (file, then folder), Tremove. */
	p9c_begin(cl, &w, P9_TUNLINKAT);
	p9_put32(&w, 0);
	p9_put_str(&w, "plain");
	p9_put32(&w, 0);
	CHECK_EQ(p9c_send(cl, &w), P9_RUNLINKAT);
	CHECK(access(sp("plain"), F_OK) != 0);
	p9c_begin(cl, &w, P9_TUNLINKAT);
	p9_put32(&w, 0);
	p9_put_str(&w, "dir");
	p9_put32(&w, 0);
	CHECK_EQ(p9c_send(cl, &w), -EISDIR);
	p9c_begin(cl, &w, P9_TUNLINKAT);
	p9_put32(&w, 0);
	p9_put_str(&w, "dir");
	p9_put32(&w, P9_DOTL_AT_REMOVEDIR);
	CHECK_EQ(p9c_send(cl, &w), P9_RUNLINKAT);
	CHECK(access(sp("dir"), F_OK) != 0);
	CHECK_EQ(p9c_fid_op(cl, P9_TREMOVE, 4), 0);	/* the symlink "ln" */
	CHECK(access(sp("ln"), F_OK) != 0 && errno == ENOENT);
	CHECK_EQ(p9c_clunk(cl, 4), -EBADF);		/* clunked by Tremove */
	/* The root cannot be removed. */
	CHECK_EQ(p9c_walk_ok(cl, 0, 9, "", NULL), 0);
	CHECK_EQ(p9c_fid_op(cl, P9_TREMOVE, 9), -EBUSY);
	canary_untouched("create/write");
	stop();
	/* Back as the other tests expect it. */
	CHECK(rename(sp("back.txt"), sp("hello.txt")) == 0);
	put_file(sp("hello.txt"), "hello, guest\n");
	chmod(sp("hello.txt"), 0644);
	unlink(sp("new.txt"));
	unlink(sp("hardlink"));
}

static void test_locks_xattr(void)
{
	struct p9_writer w;
	char buf[256];

	start(false, false, false, 0);
	CHECK_EQ(p9c_walk_ok(cl, 0, 1, "sub/inner.txt", NULL), 0);
	CHECK_EQ(p9c_walk_ok(cl, 0, 2, "sub/inner.txt", NULL), 0);
	CHECK_EQ(p9c_lopen(cl, 1, 2, NULL), 0);
	CHECK_EQ(p9c_lopen(cl, 2, 2, NULL), 0);
	/* fid 1 write-locks bytes 0-9; fid 2 (another guest process)
	 * conflicts, then gets it after the unlock. */
	for (int step = 0; step < 4; step++) {
		uint32_t fid = step == 1 || step == 3 ? 2 : 1;
		uint8_t type = step == 2 ? P9_LOCK_TYPE_UNLCK : P9_LOCK_TYPE_WRLCK;

		p9c_begin(cl, &w, P9_TLOCK);
		p9_put32(&w, fid);
		p9_put8(&w, type);
		p9_put32(&w, 0);
		p9_put64(&w, 0);
		p9_put64(&w, 10);
		p9_put32(&w, 42);
		p9_put_str(&w, "guest");
		CHECK_EQ(p9c_send(cl, &w), P9_RLOCK);
		CHECK_EQ(p9_get8(&cl->r), step == 1 ? P9_LOCK_BLOCKED : P9_LOCK_SUCCESS);
		if (step == 0) {
			p9c_begin(cl, &w, P9_TGETLOCK);
			p9_put32(&w, 2);
			p9_put8(&w, P9_LOCK_TYPE_RDLCK);
			p9_put64(&w, 5);
			p9_put64(&w, 1);
			p9_put32(&w, 7);
			p9_put_str(&w, "guest");
			CHECK_EQ(p9c_send(cl, &w), P9_RGETLOCK);
			CHECK_EQ(p9_get8(&cl->r), P9_LOCK_TYPE_WRLCK);
			CHECK_EQ(p9_get64(&cl->r), 0);
			CHECK_EQ(p9_get64(&cl->r), 10);
		}
	}
	/* Txattrwalk: a list, then one value read through the new fid. */
	if (setxattr(sp("sub/inner.txt"), "user.test", "value!", 6, 0) == 0) {
		p9c_begin(cl, &w, P9_TXATTRWALK);
		p9_put32(&w, 1);
		p9_put32(&w, 10);
		p9_put_str(&w, "");
		CHECK_EQ(p9c_send(cl, &w), P9_RXATTRWALK);
		CHECK(p9_get64(&cl->r) >= 10);
		CHECK(p9c_read(cl, 10, 0, buf, sizeof(buf)) >= 10);
		CHECK(memmem(buf, sizeof(buf), "user.test", 10) != NULL);
		CHECK_EQ(p9c_clunk(cl, 10), 0);
		p9c_begin(cl, &w, P9_TXATTRWALK);
		p9_put32(&w, 2);
		p9_put32(&w, 11);
		p9_put_str(&w, "user.test");
		CHECK_EQ(p9c_send(cl, &w), P9_RXATTRWALK);
		CHECK_EQ(p9_get64(&cl->r), 6);
		CHECK_EQ(p9c_read(cl, 11, 0, buf, sizeof(buf)), 6);
		CHECK(!memcmp(buf, "value!", 6));
		CHECK_EQ(p9c_read(cl, 11, 4, buf, sizeof(buf)), 2);
		CHECK_EQ(p9c_read(cl, 11, 99, buf, sizeof(buf)), 0);
	} else {
		printf("  (no user xattrs on %s: xattr values not tested)\n", top);
	}
	p9c_begin(cl, &w, P9_TXATTRWALK);
	p9_put32(&w, 1);
	p9_put32(&w, 12);
	p9_put_str(&w, "user.absent");
	CHECK(p9c_send(cl, &w) == -ENODATA);
	/* Setting xattrs is not offered. */
	p9c_begin(cl, &w, P9_TXATTRCREATE);
	p9_put32(&w, 1);
	p9_put_str(&w, "user.x");
	p9_put64(&w, 1);
	p9_put32(&w, 0);
	CHECK_EQ(p9c_send(cl, &w), -EOPNOTSUPP);
	canary_untouched("locks/xattr");
	stop();
}

/* ---- confinement ---------------------------------------------------------- */

static void confinement(bool no_procfd, bool no_openat2)
{
	struct p9_qid q, root;
	struct p9c_attr a;
	struct stat st;
	struct p9_writer w;
	char buf[256], names[8192];
	uint64_t next;
	int n;

	start(false, no_procfd, no_openat2, 0);
	CHECK_EQ(p9c_getattr(cl, 0, &a), 0);
	root = a.qid;
	/* "..": from the root, the root; several in a row, still. */
	CHECK_EQ(p9c_walk_ok(cl, 0, 1, "..", &q), 0);
	CHECK_EQ(q.path, root.path);
	CHECK_EQ(p9c_walk_ok(cl, 0, 2, "sub/../../../..", &q), 0);
	CHECK_EQ(q.path, root.path);
	CHECK_EQ(p9c_walk(cl, 0, 3, "../outside/canary", NULL), 1);
	CHECK_EQ(p9c_walk(cl, 0, 3, "../../tmp", NULL), 2);
	CHECK_EQ(p9c_lopen(cl, 2, P9_DOTL_DIRECTORY, NULL), 0);
	n = p9c_readdir(cl, 2, 0, 8000, names, sizeof(names), &next);
	CHECK(n > 3);
	for (char *p = names; n > 0; n--, p += strlen(p) + 1)
		CHECK(strcmp(p, "outside") && strcmp(p, "canary") && strcmp(p, "share"));

	/* Symlinks out: shown (walk gives the link, readlink its target),
	 * never followed. */
	CHECK_EQ(p9c_walk_ok(cl, 0, 4, "abs", &q), 0);
	CHECK_EQ(q.type, P9_QTSYMLINK);
	CHECK_EQ(p9c_getattr(cl, 4, &a), 0);
	CHECK(S_ISLNK(a.mode));
	p9c_begin(cl, &w, P9_TREADLINK);
	p9_put32(&w, 4);
	CHECK_EQ(p9c_send(cl, &w), P9_RREADLINK);
	CHECK(p9_get_str(&cl->r, buf, sizeof(buf)) > 0 && !strcmp(buf, outside));
	CHECK_EQ(p9c_lopen(cl, 4, P9_DOTL_DIRECTORY, NULL), -ELOOP);
	CHECK_EQ(p9c_walk(cl, 0, 5, "abs/canary", NULL), 1);
	CHECK_EQ(p9c_walk(cl, 4, 5, "canary", NULL), -ENOTDIR);
	CHECK_EQ(p9c_walk(cl, 0, 5, "rel/canary", NULL), 1);
	CHECK_EQ(p9c_walk_ok(cl, 0, 5, "relfile", &q), 0);
	CHECK_EQ(q.type, P9_QTSYMLINK);
	CHECK_EQ(p9c_lopen(cl, 5, 0, NULL), -ELOOP);
	CHECK_EQ(p9c_read(cl, 5, 0, buf, 10), -EBADF);
	CHECK_EQ(p9c_walk_ok(cl, 0, 6, "abscanary", NULL), 0);
	CHECK_EQ(p9c_lopen(cl, 6, 2, NULL), -ELOOP);
	CHECK_EQ(p9c_lcreate(cl, 0, "abscanary", 2 | P9_DOTL_CREATE, 0644, NULL), -ELOOP);
	/* Nothing done through a link reaches the canary: setattr, xattrs,
	 * link, statfs act on the link or refuse. */
	p9c_begin(cl, &w, P9_TSETATTR);
	p9_put32(&w, 6);
	p9_put32(&w, P9_SETATTR_MODE | P9_SETATTR_SIZE);
	p9_put32(&w, 0777);
	for (int i = 0; i < 2; i++)
		p9_put32(&w, 0);
	for (int i = 0; i < 5; i++)
		p9_put64(&w, 0);
	CHECK(p9c_send(cl, &w) < 0);
	p9c_begin(cl, &w, P9_TSETATTR);
	p9_put32(&w, 6);
	p9_put32(&w, P9_SETATTR_SIZE);
	p9_put32(&w, 0);
	for (int i = 0; i < 2; i++)
		p9_put32(&w, 0);
	for (int i = 0; i < 5; i++)
		p9_put64(&w, 0);
	CHECK_EQ(p9c_send(cl, &w), -ELOOP);
	p9c_begin(cl, &w, P9_TXATTRWALK);
	p9_put32(&w, 6);
	p9_put32(&w, 20);
	p9_put_str(&w, "user.x");
	CHECK_EQ(p9c_send(cl, &w), -ENODATA);
	p9c_begin(cl, &w, P9_TLINK);	/* a hard link to the link itself */
	p9_put32(&w, 0);
	p9_put32(&w, 6);
	p9_put_str(&w, "hl");
	CHECK_EQ(p9c_send(cl, &w), P9_RLINK);
	CHECK(lstat(sp("hl"), &st) == 0 && S_ISLNK(st.st_mode));
	unlink(sp("hl"));
	/* Creating through a symlinked folder. */
	CHECK_EQ(p9c_lcreate(cl, 4, "x", 2 | P9_DOTL_CREATE, 0644, NULL), -ENOTDIR);
	p9c_begin(cl, &w, P9_TMKDIR);
	p9_put32(&w, 4);
	p9_put_str(&w, "d");
	p9_put32(&w, 0755);
	p9_put32(&w, 0);
	CHECK_EQ(p9c_send(cl, &w), -ENOTDIR);
	p9c_begin(cl, &w, P9_TRENAMEAT);
	p9_put32(&w, 0);
	p9_put_str(&w, "hello.txt");
	p9_put32(&w, 4);
	p9_put_str(&w, "stolen");
	CHECK_EQ(p9c_send(cl, &w), -ENOTDIR);
	CHECK(access(sp("hello.txt"), F_OK) == 0);

	/* The race: walk to sub/inner.txt and to sub, then the host swaps
	 * sub for a symlink to the outside folder (holding a "inner.txt"
	 * of its own: the canary's copy), then the guest opens. */
	CHECK_EQ(p9c_walk_ok(cl, 0, 7, "sub/inner.txt", NULL), 0);
	CHECK_EQ(p9c_walk_ok(cl, 0, 8, "sub", NULL), 0);
	CHECK(rename(sp("sub"), sp("sub.real")) == 0);
	CHECK(symlink(outside, sp("sub")) == 0);
	n = p9c_lopen(cl, 7, 0, NULL);
	if (no_procfd) {
		/* Reopened by path: the path now runs through a symlink:
		 * refused. */
		CHECK(n == -ELOOP || n == -ESTALE || n == -ENOTDIR || n == -EXDEV);
	} else {
		/* The inode walked to, wherever it is now. */
		CHECK_EQ(n, 0);
		CHECK_EQ(p9c_read(cl, 7, 0, buf, sizeof(buf)), 6);
		CHECK(!memcmp(buf, "inner\n", 6));
	}
	/* The folder fid still lists the real folder. */
	CHECK_EQ(p9c_lopen(cl, 8, P9_DOTL_DIRECTORY, NULL), 0);
	n = p9c_readdir(cl, 8, 0, 8000, names, sizeof(names), &next);
	CHECK_EQ(n, 3);		/* ., .., inner.txt */
	for (char *p = names; n > 0; n--, p += strlen(p) + 1)
		CHECK(strcmp(p, "canary"));
	/* A fresh walk through the swapped name stops at the link. */
	CHECK_EQ(p9c_walk(cl, 0, 9, "sub/canary", NULL), 1);
	/* Creating in the folder fid lands in the real folder. */
	CHECK_EQ(p9c_walk_ok(cl, 8, 10, "", NULL), 0);
	CHECK_EQ(p9c_lcreate(cl, 10, "made", 2 | P9_DOTL_CREATE, 0644, NULL), 0);
	CHECK(access(sp("sub.real/made"), F_OK) == 0);
	unlink(sp("sub.real/made"));
	/* ".." from the folder fid: computed from its path, resolved from
	 * the root: the share's root, never outside's parent. */
	CHECK_EQ(p9c_walk_ok(cl, 8, 11, "..", &q), 0);
	CHECK_EQ(q.path, root.path);
	CHECK(unlink(sp("sub")) == 0);
	CHECK(rename(sp("sub.real"), sp("sub")) == 0);

	/* Device nodes, FIFOs, sockets: shown, never opened. */
	if (mknod(sp("null"), S_IFCHR | 0666, makedev(1, 3)) == 0) {
		CHECK_EQ(p9c_walk_ok(cl, 0, 12, "null", NULL), 0);
		CHECK_EQ(p9c_getattr(cl, 12, &a), 0);
		CHECK(S_ISCHR(a.mode));
		CHECK_EQ(p9c_lopen(cl, 12, 2, NULL), -EPERM);
		CHECK_EQ(p9c_lcreate(cl, 0, "null", 2 | P9_DOTL_CREATE, 0644, NULL), -EPERM);
		unlink(sp("null"));
	} else {
		printf("  (cannot make a device node here: skipped)\n");
	}
	CHECK(mkfifo(sp("fifo"), 0644) == 0);
	CHECK_EQ(p9c_walk_ok(cl, 0, 13, "fifo", NULL), 0);
	CHECK_EQ(p9c_lopen(cl, 13, 0, NULL), -EPERM);	/* and no hang */
	CHECK_EQ(p9c_lcreate(cl, 0, "fifo", 0 | P9_DOTL_CREATE, 0644, NULL), -EPERM);
	unlink(sp("fifo"));
	/* Tmknod makes no device, FIFO or socket. */
	for (uint32_t t = 0; t < 4; t++) {
		static const uint32_t kinds[] = { S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK };

		p9c_begin(cl, &w, P9_TMKNOD);
		p9_put32(&w, 0);
		p9_put_str(&w, "dev");
		p9_put32(&w, kinds[t] | 0666);
		p9_put32(&w, 1);
		p9_put32(&w, 3);
		p9_put32(&w, 0);
		CHECK_EQ(p9c_send(cl, &w), -EPERM);
		CHECK(access(sp("dev"), F_OK) != 0);
	}
	canary_untouched(no_procfd ? "confinement, no /proc" :
			 no_openat2 ? "confinement, no openat2" : "confinement");
	stop();
}

static void test_confinement(void)
{
	confinement(false, false);
}

static void test_confinement_no_procfd(void)
{
	confinement(true, false);
}

static void test_confinement_no_openat2(void)
{
	confinement(false, true);
}

static void test_readonly(void)
{
	struct p9_writer w;
	char buf[64];
	struct stat before, after;

	stat(sp("hello.txt"), &before);
	start(true, false, false, 0);
	CHECK(p9_server_readonly(srv));
	CHECK_EQ(p9c_walk_ok(cl, 0, 1, "hello.txt", NULL), 0);
	CHECK_EQ(p9c_lopen(cl, 1, 1, NULL), -EROFS);
	CHECK_EQ(p9c_lopen(cl, 1, 2, NULL), -EROFS);
	CHECK_EQ(p9c_lopen(cl, 1, P9_DOTL_TRUNC, NULL), -EROFS);
	CHECK_EQ(p9c_lopen(cl, 1, 0, NULL), 0);
	CHECK(p9c_read(cl, 1, 0, buf, sizeof(buf)) > 0);
	CHECK_EQ(p9c_write(cl, 1, 0, "x", 1), -EROFS);
	CHECK_EQ(p9c_walk_ok(cl, 0, 2, "", NULL), 0);
	CHECK_EQ(p9c_lcreate(cl, 2, "new", 2 | P9_DOTL_CREATE, 0644, NULL), -EROFS);
	for (int op = 0; op < 9; op++) {
		p9c_begin(cl, &w, op == 0 ? P9_TMKDIR : op == 1 ? P9_TSYMLINK :
				  op == 2 ? P9_TUNLINKAT : op == 3 ? P9_TRENAMEAT :
				  op == 4 ? P9_TLINK : op == 5 ? P9_TSETATTR :
				  op == 6 ? P9_TMKNOD : op == 7 ? P9_TRENAME :
				  P9_TXATTRCREATE);
		switch (op) {
		case 0: p9_put32(&w, 0); p9_put_str(&w, "d"); p9_put32(&w, 0755); p9_put32(&w, 0); break;
		case 1: p9_put32(&w, 0); p9_put_str(&w, "l"); p9_put_str(&w, "x"); p9_put32(&w, 0); break;
		case 2: p9_put32(&w, 0); p9_put_str(&w, "hello.txt"); p9_put32(&w, 0); break;
		case 3: p9_put32(&w, 0); p9_put_str(&w, "hello.txt"); p9_put32(&w, 0); p9_put_str(&w, "h2"); break;
		case 4: p9_put32(&w, 0); p9_put32(&w, 1); p9_put_str(&w, "h3"); break;
		case 5: p9_put32(&w, 1); p9_put32(&w, P9_SETATTR_MODE | P9_SETATTR_SIZE);
			p9_put32(&w, 0777); p9_put32(&w, 0); p9_put32(&w, 0);
			for (int i = 0; i < 5; i++) p9_put64(&w, 0);
			break;
		case 6: p9_put32(&w, 0); p9_put_str(&w, "f"); p9_put32(&w, S_IFREG | 0644);
			p9_put32(&w, 0); p9_put32(&w, 0); p9_put32(&w, 0); break;
		case 7: p9_put32(&w, 1); p9_put32(&w, 0); p9_put_str(&w, "h4"); break;
		case 8: p9_put32(&w, 1); p9_put_str(&w, "user.x"); p9_put64(&w, 1); p9_put32(&w, 0); break;
		}
		CHECK_EQ(p9c_send(cl, &w), -EROFS);
	}
	CHECK_EQ(p9c_fid_op(cl, P9_TREMOVE, 1), -EROFS);
	stat(sp("hello.txt"), &after);
	CHECK(before.st_mtim.tv_sec == after.st_mtim.tv_sec &&
	      before.st_mtim.tv_nsec == after.st_mtim.tv_nsec &&
	      before.st_size == after.st_size && before.st_mode == after.st_mode);
	CHECK(access(sp("d"), F_OK) != 0 && access(sp("l"), F_OK) != 0 &&
	      access(sp("h2"), F_OK) != 0 && access(sp("new"), F_OK) != 0 &&
	      access(sp("f"), F_OK) != 0);
	canary_untouched("readonly");
	stop();
}

/* ---- saved state ---------------------------------------------------------- */

static void test_save_load(void)
{
	struct p9_server_config cfg = { .root = share };
	struct p9_server *s2;
	GVariant *st, *bad;
	char err[256], buf[64];
	int r;

	start(false, false, false, 0);
	CHECK_EQ(p9c_walk_ok(cl, 0, 1, "sub/inner.txt", NULL), 0);
	CHECK_EQ(p9c_lopen(cl, 1, 0, NULL), 0);
	CHECK_EQ(p9c_walk_ok(cl, 0, 2, "sub", NULL), 0);
	put_file(sp("gone.txt"), "soon gone\n");
	CHECK_EQ(p9c_walk_ok(cl, 0, 3, "gone.txt", NULL), 0);
	CHECK_EQ(p9c_walk_ok(cl, 0, 4, "sub", NULL), 0);
	CHECK_EQ(p9c_lcreate(cl, 4, "w.txt", 2 | P9_DOTL_CREATE, 0644, NULL), 0);
	st = g_variant_ref_sink(p9_server_save(srv));
	CHECK(g_variant_is_of_type(st, G_VARIANT_TYPE(P9_SERVER_STATE_TYPE)));
	unlink(sp("gone.txt"));

	/* A fresh server takes it: the fids are back, open ones open. */
	s2 = p9_server_new(&cfg, err, sizeof(err));
	CHECK_EQ(p9_server_load(s2, st, err, sizeof(err)), 0);
	CHECK_EQ(p9_server_nfids(s2), 5);
	CHECK_EQ(p9_server_msize(s2), 65536);
	cl->opaque = s2;
	CHECK_EQ(p9c_read(cl, 1, 0, buf, sizeof(buf)), 6);
	CHECK(!memcmp(buf, "inner\n", 6));
	CHECK_EQ(p9c_write(cl, 4, 0, "after", 5), 5);
	{
		char *s = host_read(sp("sub/w.txt"));

		CHECK(s && !strcmp(s, "after"));
		g_free(s);
	}
	/* The vanished file's fid is stale; clunk still works. */
	{
		struct p9c_attr a;

		CHECK_EQ(p9c_getattr(cl, 3, &a), -ESTALE);
		CHECK_EQ(p9c_clunk(cl, 3), 0);
	}
	CHECK_EQ(p9c_walk_ok(cl, 2, 20, "inner.txt", NULL), 0);

	/* Refused: an escaping path, a duplicate fid, bad flags, msize. */
	bad = g_variant_new_parsed("(true, uint32 8192, [(uint32 1, '../outside', uint32 0, uint32 4294967295)])");
	r = p9_server_load(s2, bad, err, sizeof(err));
	CHECK_EQ(r, -EINVAL);
	CHECK(strstr(err, "not valid") != NULL);
	bad = g_variant_new_parsed("(true, uint32 8192, [(uint32 1, 'sub', uint32 0, uint32 4294967295), (uint32 1, 'sub', uint32 0, uint32 4294967295)])");
	CHECK_EQ(p9_server_load(s2, bad, err, sizeof(err)), -EINVAL);
	bad = g_variant_new_parsed("(true, uint32 8192, [(uint32 1, '/etc', uint32 0, uint32 4294967295)])");
	CHECK_EQ(p9_server_load(s2, bad, err, sizeof(err)), -EINVAL);
	bad = g_variant_new_parsed("(true, uint32 8192, [(uint32 1, 'sub//x', uint32 0, uint32 4294967295)])");
	CHECK_EQ(p9_server_load(s2, bad, err, sizeof(err)), -EINVAL);
	bad = g_variant_new_parsed("(true, uint32 8192, [(uint32 1, 'sub', uint32 0, uint32 3)])");
	CHECK_EQ(p9_server_load(s2, bad, err, sizeof(err)), -EINVAL);
	bad = g_variant_new_parsed("(true, uint32 100, @a(usuu) [])");
	CHECK_EQ(p9_server_load(s2, bad, err, sizeof(err)), -EINVAL);
	bad = g_variant_new_parsed("(true, uint32 99999999, @a(usuu) [])");
	CHECK_EQ(p9_server_load(s2, bad, err, sizeof(err)), -EINVAL);
	/* Refused loads changed nothing. */
	CHECK_EQ(p9_server_nfids(s2), 5);
	/* A path through a symlink out is stale, not followed. */
	bad = g_variant_new_parsed("(true, uint32 8192, [(uint32 1, 'abs/canary', uint32 0, uint32 0)])");
	CHECK_EQ(p9_server_load(s2, bad, err, sizeof(err)), 0);
	CHECK_EQ(p9c_read(cl, 1, 0, buf, sizeof(buf)), -ESTALE);
	g_variant_unref(st);
	p9_server_free(s2);
	cl->opaque = srv;
	unlink(sp("sub/w.txt"));
	canary_untouched("save/load");
	stop();
}

static void test_new_errors(void)
{
	struct p9_server_config cfg = { .root = canary };
	char err[256];

	CHECK(p9_server_new(&cfg, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "not a folder") != NULL);
	cfg.root = "/nonexistent/vivarium";
	CHECK(p9_server_new(&cfg, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "No such file") != NULL);
	while (read(ino_fd, err, sizeof(err)) > 0)
		;
}

int main(void)
{
	make_tree();
	RUN_TEST(test_codec);
	RUN_TEST(test_version);
	RUN_TEST(test_fid_cap);
	RUN_TEST(test_read_walk_getattr);
	RUN_TEST(test_create_write);
	RUN_TEST(test_locks_xattr);
	RUN_TEST(test_confinement);
	RUN_TEST(test_confinement_no_procfd);
	RUN_TEST(test_confinement_no_openat2);
	RUN_TEST(test_readonly);
	RUN_TEST(test_save_load);
	RUN_TEST(test_new_errors);
	canary_untouched("the end");
	rm_tree(top);
	return check_finish();
}
