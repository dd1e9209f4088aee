/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/p9client.h - a minimal 9P2000.L client for the tests: builds
 * T-messages with the codec (share/p9.h) and checks R-messages, over a
 * function that carries one request to the server and returns the reply
 * (straight into p9_server_handle, or through a virtqueue).
 * Header-only.
 */
#ifndef VIVARIUM_P9CLIENT_H
#define VIVARIUM_P9CLIENT_H

#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "share/p9.h"

#define P9C_BUF (1u << 20)

struct p9c {
	/* Send @req (@len bytes), the reply into @resp (room @room); returns
	 * its length (0: none). */
	size_t (*rpc)(void *opaque, const uint8_t *req, size_t len,
		      uint8_t *resp, size_t room);
	void *opaque;
	uint8_t req[P9C_BUF], resp[P9C_BUF];
	size_t resp_len;
	struct p9_reader r;		/* over the last reply's body */
	uint16_t tag;
	size_t room;			/* reply room; 0: P9C_BUF */
};

/* Start a T-message. */
static inline void p9c_begin(struct p9c *c, struct p9_writer *w, uint8_t type)
{
	p9_begin(w, c->req, sizeof(c->req), type, ++c->tag);
}

/*
 * p9c_send - finish @w and send it.  Returns the reply's type with its
 * body in c->r, or -errno for Rlerror (its ecode), or -1000 for no reply
 * or a reply whose tag or size is wrong.
 */
static inline int p9c_send(struct p9c *c, struct p9_writer *w)
{
	size_t n = p9_finish(w);
	struct p9_reader h;
	uint32_t size;
	uint8_t type;
	uint16_t tag;

	c->resp_len = c->rpc(c->opaque, c->req, n, c->resp,
			     c->room ? c->room : sizeof(c->resp));
	if (c->resp_len < P9_HDR_SIZE)
		return -1000;
	p9_reader_init(&h, c->resp, c->resp_len);
	size = p9_get32(&h);
	type = p9_get8(&h);
	tag = p9_get16(&h);
	if (size != c->resp_len || tag != c->tag)
		return -1000;
	p9_reader_init(&c->r, c->resp + P9_HDR_SIZE, size - P9_HDR_SIZE);
	if (type == P9_RLERROR)
		return -(int)p9_get32(&c->r);
	return type;
}

/* The reply was @type (else its -errno / -1000 is returned as is). */
static inline int p9c_expect(struct p9c *c, struct p9_writer *w, uint8_t rtype)
{
	int r = p9c_send(c, w);

	if (r < 0)
		return r;
	return r == rtype ? 0 : -1001;
}

static inline int p9c_version(struct p9c *c, uint32_t msize, const char *v,
			      uint32_t *got, char *vout, size_t vlen)
{
	struct p9_writer w;
	int r;

	p9_begin(&w, c->req, sizeof(c->req), P9_TVERSION, P9_NOTAG);
	p9_put32(&w, msize);
	p9_put_str(&w, v);
	c->tag = P9_NOTAG;
	r = p9c_send(c, &w);
	if (r != P9_RVERSION)
		return r < 0 ? r : -1001;
	*got = p9_get32(&c->r);
	p9_get_str(&c->r, vout, vlen);
	c->tag = 0;
	return 0;
}

static inline int p9c_attach(struct p9c *c, uint32_t fid, uint32_t uid,
			     struct p9_qid *q)
{
	struct p9_writer w;
	int r;

	p9c_begin(c, &w, P9_TATTACH);
	p9_put32(&w, fid);
	p9_put32(&w, P9_NOFID);
	p9_put_str(&w, "user");
	p9_put_str(&w, "");
	p9_put32(&w, uid);
	r = p9c_expect(c, &w, P9_RATTACH);
	if (r == 0 && q)
		p9_get_qid(&c->r, q);
	return r;
}

/* Walk @fid to @newfid through the '/'-separated @path ("" clones).
 * Returns the number of qids walked (all: the walk succeeded), or -errno.
 * The last qid goes into @q when not NULL. */
static inline int p9c_walk(struct p9c *c, uint32_t fid, uint32_t newfid,
			   const char *path, struct p9_qid *q)
{
	char buf[4096], *save = NULL, *tok;
	struct p9_writer w;
	uint16_t n = 0, got;
	uint8_t *np;
	int r;

	p9c_begin(c, &w, P9_TWALK);
	p9_put32(&w, fid);
	p9_put32(&w, newfid);
	np = p9_reserve(&w, 2);
	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		p9_put_str(&w, tok);
		n++;
	}
	np[0] = (uint8_t)n;
	np[1] = (uint8_t)(n >> 8);
	r = p9c_expect(c, &w, P9_RWALK);
	if (r < 0)
		return r;
	got = p9_get16(&c->r);
	for (unsigned i = 0; i < got; i++) {
		struct p9_qid t;

		p9_get_qid(&c->r, &t);
		if (q)
			*q = t;
	}
	return got;
}

/* A one-name walk that must fully succeed: 0 or -errno (-1002 partial). */
static inline int p9c_walk_ok(struct p9c *c, uint32_t fid, uint32_t newfid,
			      const char *path, struct p9_qid *q)
{
	unsigned n = 0;
	int r;

	for (const char *p = path; *p; p++)
		if (*p != '/' && (p == path || p[-1] == '/'))
			n++;
	r = p9c_walk(c, fid, newfid, path, q);
	if (r < 0)
		return r;
	return (unsigned)r == n ? 0 : -1002;
}

static inline int p9c_fid_op(struct p9c *c, uint8_t type, uint32_t fid)
{
	struct p9_writer w;

	p9c_begin(c, &w, type);
	p9_put32(&w, fid);
	return p9c_expect(c, &w, (uint8_t)(type + 1));
}

static inline int p9c_clunk(struct p9c *c, uint32_t fid)
{
	return p9c_fid_op(c, P9_TCLUNK, fid);
}

static inline int p9c_lopen(struct p9c *c, uint32_t fid, uint32_t flags,
			    struct p9_qid *q)
{
	struct p9_writer w;
	int r;

	p9c_begin(c, &w, P9_TLOPEN);
	p9_put32(&w, fid);
	p9_put32(&w, flags);
	r = p9c_expect(c, &w, P9_RLOPEN);
	if (r == 0 && q)
		p9_get_qid(&c->r, q);
	return r;
}

static inline int p9c_lcreate(struct p9c *c, uint32_t fid, const char *name,
			      uint32_t flags, uint32_t mode, struct p9_qid *q)
{
	struct p9_writer w;
	int r;

	p9c_begin(c, &w, P9_TLCREATE);
	p9_put32(&w, fid);
	p9_put_str(&w, name);
	p9_put32(&w, flags);
	p9_put32(&w, mode);
	p9_put32(&w, 0);
	r = p9c_expect(c, &w, P9_RLCREATE);
	if (r == 0 && q)
		p9_get_qid(&c->r, q);
	return r;
}

/* Read up to @n bytes at @off into @buf: the count, or -errno. */
static inline long p9c_read(struct p9c *c, uint32_t fid, uint64_t off,
			    void *buf, uint32_t n)
{
	struct p9_writer w;
	const uint8_t *d;
	uint32_t got;
	int r;

	p9c_begin(c, &w, P9_TREAD);
	p9_put32(&w, fid);
	p9_put64(&w, off);
	p9_put32(&w, n);
	r = p9c_expect(c, &w, P9_RREAD);
	if (r < 0)
		return r;
	got = p9_get32(&c->r);
	d = p9_get_bytes(&c->r, got);
	if (!d || got > n)
		return -1003;
	memcpy(buf, d, got);
	return got;
}

static inline long p9c_write(struct p9c *c, uint32_t fid, uint64_t off,
			     const void *buf, uint32_t n)
{
	struct p9_writer w;
	int r;

	p9c_begin(c, &w, P9_TWRITE);
	p9_put32(&w, fid);
	p9_put64(&w, off);
	p9_put32(&w, n);
	p9_put_bytes(&w, buf, n);
	r = p9c_expect(c, &w, P9_RWRITE);
	if (r < 0)
		return r;
	return p9_get32(&c->r);
}

struct p9c_attr {
	uint64_t valid;
	struct p9_qid qid;
	uint32_t mode, uid, gid;
	uint64_t nlink, rdev, size, blksize, blocks;
	uint64_t atime[2], mtime[2], ctime[2];
};

static inline int p9c_getattr(struct p9c *c, uint32_t fid, struct p9c_attr *a)
{
	struct p9_writer w;
	int r;

	p9c_begin(c, &w, P9_TGETATTR);
	p9_put32(&w, fid);
	p9_put64(&w, P9_GETATTR_BASIC);
	r = p9c_expect(c, &w, P9_RGETATTR);
	if (r < 0)
		return r;
	a->valid = p9_get64(&c->r);
	p9_get_qid(&c->r, &a->qid);
	a->mode = p9_get32(&c->r);
	a->uid = p9_get32(&c->r);
	a->gid = p9_get32(&c->r);
	a->nlink = p9_get64(&c->r);
	a->rdev = p9_get64(&c->r);
	a->size = p9_get64(&c->r);
	a->blksize = p9_get64(&c->r);
	a->blocks = p9_get64(&c->r);
	for (unsigned i = 0; i < 2; i++)
		a->atime[i] = p9_get64(&c->r);
	for (unsigned i = 0; i < 2; i++)
		a->mtime[i] = p9_get64(&c->r);
	for (unsigned i = 0; i < 2; i++)
		a->ctime[i] = p9_get64(&c->r);
	for (unsigned i = 0; i < 4; i++)
		p9_get64(&c->r);
	return c->r.bad || c->r.pos != c->r.len ? -1004 : 0;
}

/* Treaddir from @off; the names (NUL-separated, after each other) into
 * @names (room @room), the last entry's offset into *@next.  Returns the
 * number of entries, or -errno. */
static inline int p9c_readdir(struct p9c *c, uint32_t fid, uint64_t off,
			      uint32_t count, char *names, size_t room,
			      uint64_t *next)
{
	struct p9_writer w;
	struct p9_reader d;
	uint32_t n;
	size_t used = 0;
	int r, k = 0;

	p9c_begin(c, &w, P9_TREADDIR);
	p9_put32(&w, fid);
	p9_put64(&w, off);
	p9_put32(&w, count);
	r = p9c_expect(c, &w, P9_RREADDIR);
	if (r < 0)
		return r;
	n = p9_get32(&c->r);
	p9_reader_init(&d, p9_get_bytes(&c->r, n), n);
	while (d.pos < d.len) {
		struct p9_qid q;
		char name[256];
		int len;

		p9_get_qid(&d, &q);
		*next = p9_get64(&d);
		p9_get8(&d);
		len = p9_get_str(&d, name, sizeof(name));
		if (len < 0 || d.bad || used + (size_t)len + 1 > room)
			return -1005;
		memcpy(names + used, name, (size_t)len + 1);
		used += (size_t)len + 1;
		k++;
	}
	return k;
}

#endif
