/* SPDX-License-Identifier: MIT */
/* The 9P2000.L codec: see p9.h. */
#include "p9.h"

#include <errno.h>
#include <string.h>

static const uint8_t *take(struct p9_reader *r, size_t n)
{
	const uint8_t *p;

	if (r->bad || n > r->len - r->pos) {
		r->bad = true;
		return NULL;
	}
	p = r->buf + r->pos;
	r->pos += n;
	return p;
}

static uint64_t get_le(struct p9_reader *r, unsigned n)
{
	const uint8_t *p = take(r, n);
	uint64_t v = 0;

	if (!p)
		return 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

uint8_t p9_get8(struct p9_reader *r) { return (uint8_t)get_le(r, 1); }
uint16_t p9_get16(struct p9_reader *r) { return (uint16_t)get_le(r, 2); }
uint32_t p9_get32(struct p9_reader *r) { return (uint32_t)get_le(r, 4); }
uint64_t p9_get64(struct p9_reader *r) { return get_le(r, 8); }

const uint8_t *p9_get_bytes(struct p9_reader *r, size_t n)
{
	return take(r, n);
}

int p9_get_str(struct p9_reader *r, char *out, size_t outlen)
{
	uint16_t n = p9_get16(r);
	const uint8_t *p = take(r, n);

	if (outlen)
		out[0] = '\0';
	if (!p || (size_t)n + 1 > outlen || memchr(p, '\0', n))
		return -EINVAL;
	memcpy(out, p, n);
	out[n] = '\0';
	return n;
}

void p9_get_qid(struct p9_reader *r, struct p9_qid *q)
{
	q->type = p9_get8(r);
	q->version = p9_get32(r);
	q->path = p9_get64(r);
}

uint8_t *p9_reserve(struct p9_writer *w, size_t n)
{
	uint8_t *p;

	if (w->overflow || n > w->room - w->pos) {
		w->overflow = true;
		return NULL;
	}
	p = w->buf + w->pos;
	w->pos += n;
	return p;
}

static void put_le(struct p9_writer *w, uint64_t v, unsigned n)
{
	uint8_t *p = p9_reserve(w, n);

	if (!p)
		return;
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void p9_put8(struct p9_writer *w, uint8_t v) { put_le(w, v, 1); }
void p9_put16(struct p9_writer *w, uint16_t v) { put_le(w, v, 2); }
void p9_put32(struct p9_writer *w, uint32_t v) { put_le(w, v, 4); }
void p9_put64(struct p9_writer *w, uint64_t v) { put_le(w, v, 8); }

void p9_put_bytes(struct p9_writer *w, const void *src, size_t n)
{
	uint8_t *p = p9_reserve(w, n);

	if (p && n)
		memcpy(p, src, n);
}

void p9_put_strn(struct p9_writer *w, const char *s, size_t n)
{
	if (n > 0xffff) {
		w->overflow = true;
		return;
	}
	p9_put16(w, (uint16_t)n);
	p9_put_bytes(w, s, n);
}

void p9_put_str(struct p9_writer *w, const char *s)
{
	p9_put_strn(w, s, strlen(s));
}

void p9_put_qid(struct p9_writer *w, const struct p9_qid *q)
{
	p9_put8(w, q->type);
	p9_put32(w, q->version);
	p9_put64(w, q->path);
}

void p9_begin(struct p9_writer *w, void *buf, size_t room, uint8_t type,
	      uint16_t tag)
{
	w->buf = buf;
	w->room = room;
	w->pos = 0;
	w->overflow = false;
	p9_put32(w, 0);
	p9_put8(w, type);
	p9_put16(w, tag);
}

size_t p9_finish(struct p9_writer *w)
{
	size_t n = w->pos;

	if (w->overflow || n < P9_HDR_SIZE || n > 0xffffffffu)
		return 0;
	for (unsigned i = 0; i < 4; i++)
		w->buf[i] = (uint8_t)(n >> (8 * i));
	return n;
}

const char *p9_type_name(uint8_t type)
{
	static const struct { uint8_t t; const char *n; } names[] = {
		{ P9_RLERROR, "Rlerror" }, { P9_TSTATFS, "Tstatfs" },
		{ P9_TLOPEN, "Tlopen" }, { P9_TLCREATE, "Tlcreate" },
		{ P9_TSYMLINK, "Tsymlink" }, { P9_TMKNOD, "Tmknod" },
		{ P9_TRENAME, "Trename" }, { P9_TREADLINK, "Treadlink" },
		{ P9_TGETATTR, "Tgetattr" }, { P9_TSETATTR, "Tsetattr" },
		{ P9_TXATTRWALK, "Txattrwalk" }, { P9_TXATTRCREATE, "Txattrcreate" },
		{ P9_TREADDIR, "Treaddir" }, { P9_TFSYNC, "Tfsync" },
		{ P9_TLOCK, "Tlock" }, { P9_TGETLOCK, "Tgetlock" },
		{ P9_TLINK, "Tlink" }, { P9_TMKDIR, "Tmkdir" },
		{ P9_TRENAMEAT, "Trenameat" }, { P9_TUNLINKAT, "Tunlinkat" },
		{ P9_TVERSION, "Tversion" }, { P9_TAUTH, "Tauth" },
		{ P9_TATTACH, "Tattach" }, { P9_TFLUSH, "Tflush" },
		{ P9_TWALK, "Twalk" }, { P9_TREAD, "Tread" },
		{ P9_TWRITE, "Twrite" }, { P9_TCLUNK, "Tclunk" },
		{ P9_TREMOVE, "Tremove" },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].t == type)
			return names[i].n;
	return "T?";
}
