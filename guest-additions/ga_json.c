/* SPDX-License-Identifier: MIT */
/*
 * A small JSON (RFC 8259) reader into a bounded node array, and a writer
 * of string literals.  See ga.h.
 */
#include <stdio.h>
#include <string.h>

#include "ga.h"

struct pstate {
	struct gj_doc *d;
	const char *s, *end;
};

static void skip_ws(struct pstate *p)
{
	while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' ||
				 *p->s == '\r' || *p->s == '\n'))
		p->s++;
}

static int new_node(struct pstate *p, enum gj_type t)
{
	struct gj_node *n;

	if (p->d->n >= GA_NODES)
		return -1;
	n = &p->d->node[p->d->n];
	memset(n, 0, sizeof(*n));
	n->type = t;
	n->first = n->next = -1;
	return p->d->n++;
}

static int hex4(const char *s, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		char c = s[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static void put_utf8(char *o, size_t *k, unsigned cp)
{
	if (cp < 0x80) {
		o[(*k)++] = (char)cp;
	} else if (cp < 0x800) {
		o[(*k)++] = (char)(0xc0 | (cp >> 6));
		o[(*k)++] = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		o[(*k)++] = (char)(0xe0 | (cp >> 12));
		o[(*k)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[(*k)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		o[(*k)++] = (char)(0xf0 | (cp >> 18));
		o[(*k)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
		o[(*k)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[(*k)++] = (char)(0x80 | (cp & 0x3f));
	}
}

/* Length of the UTF-8 sequence at @s (at most @n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned cp;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/* A string literal at p->s (the opening quote) into strbuf. */
static const char *parse_string(struct pstate *p)
{
	struct gj_doc *d = p->d;
	char *o = d->strbuf + d->sused;
	size_t k = 0, room = sizeof(d->strbuf) - d->sused;

	p->s++;
	while (p->s < p->end && *p->s != '"') {
		unsigned char c = (unsigned char)*p->s;

		/* Each input byte makes at most one output byte (escapes
		 * shrink), so @room only needs the NUL checked. */
		if (k + 5 > room)
			return NULL;
		if (c < 0x20)
			return NULL;
		if (c == '\\') {
			unsigned cp, lo;

			if (p->end - p->s < 2)
				return NULL;
			switch (p->s[1]) {
			case '"': o[k++] = '"'; break;
			case '\\': o[k++] = '\\'; break;
			case '/': o[k++] = '/'; break;
			case 'b': o[k++] = '\b'; break;
			case 'f': o[k++] = '\f'; break;
			case 'n': o[k++] = '\n'; break;
			case 'r': o[k++] = '\r'; break;
			case 't': o[k++] = '\t'; break;
			case 'u':
				if (p->end - p->s < 6 || hex4(p->s + 2, &cp) < 0 || cp == 0)
					return NULL;
				p->s += 6;
				if (cp >= 0xdc00 && cp <= 0xdfff)
					return NULL;
				if (cp >= 0xd800 && cp <= 0xdbff) {
					if (p->end - p->s < 6 || p->s[0] != '\\' ||
					    p->s[1] != 'u' || hex4(p->s + 2, &lo) < 0 ||
					    lo < 0xdc00 || lo > 0xdfff)
						return NULL;
					p->s += 6;
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				}
				put_utf8(o, &k, cp);
				continue;
			default:
				return NULL;
			}
			p->s += 2;
			continue;
		}
		{
			size_t len = utf8_len((const unsigned char *)p->s,
					      (size_t)(p->end - p->s));

			if (!len)
				return NULL;
			memcpy(o + k, p->s, len);
			k += len;
			p->s += len;
		}
	}
	if (p->s >= p->end)
		return NULL;
	p->s++;
	o[k++] = '\0';
	d->sused += k;
	return o;
}

static int parse_value(struct pstate *p, int depth);

/* Append child @c to @parent's list (@last: its last child so far). */
static void link_child(struct gj_doc *d, int parent, int *last, int c)
{
	if (*last < 0)
		d->node[parent].first = c;
	else
		d->node[*last].next = c;
	*last = c;
}

static int parse_container(struct pstate *p, int depth, bool obj)
{
	int self = new_node(p, obj ? GJ_OBJ : GJ_ARR), last = -1;
	char close = obj ? '}' : ']';

	if (self < 0 || depth > GA_DEPTH_MAX)
		return -1;
	p->s++;
	skip_ws(p);
	if (p->s < p->end && *p->s == close) {
		p->s++;
		return self;
	}
	for (;;) {
		const char *key = NULL;
		int c;

		skip_ws(p);
		if (obj) {
			if (p->s >= p->end || *p->s != '"' || !(key = parse_string(p)))
				return -1;
			skip_ws(p);
			if (p->s >= p->end || *p->s != ':')
				return -1;
			p->s++;
		}
		c = parse_value(p, depth + 1);
		if (c < 0)
			return -1;
		p->d->node[c].key = key;
		link_child(p->d, self, &last, c);
		skip_ws(p);
		if (p->s < p->end && *p->s == ',') {
			p->s++;
			continue;
		}
		if (p->s < p->end && *p->s == close) {
			p->s++;
			return self;
		}
		return -1;
	}
}

static int parse_number(struct pstate *p)
{
	const char *s = p->s;
	int self = new_node(p, GJ_NUM);
	long long v = 0;
	bool neg = false, is_int = true, digits = false;

	if (self < 0)
		return -1;
	if (s < p->end && *s == '-')
		neg = true, s++;
	if (s < p->end && *s == '0') {
		s++;
		digits = true;
	} else {
		while (s < p->end && *s >= '0' && *s <= '9') {
			int dgt = *s++ - '0';

			digits = true;
			if (v > (__LONG_LONG_MAX__ - dgt) / 10)
				is_int = false;
			else
				v = v * 10 + dgt;
		}
	}
	if (!digits)
		return -1;
	if (s < p->end && *s == '.') {
		is_int = false;
		s++;
		if (s >= p->end || *s < '0' || *s > '9')
			return -1;
		while (s < p->end && *s >= '0' && *s <= '9')
			s++;
	}
	if (s < p->end && (*s == 'e' || *s == 'E')) {
		is_int = false;
		s++;
		if (s < p->end && (*s == '+' || *s == '-'))
			s++;
		if (s >= p->end || *s < '0' || *s > '9')
			return -1;
		while (s < p->end && *s >= '0' && *s <= '9')
			s++;
	}
	p->s = s;
	p->d->node[self].is_int = is_int;
	p->d->node[self].num = neg ? -v : v;
	return self;
}

static int parse_word(struct pstate *p, const char *w, enum gj_type t,
		      long long v)
{
	size_t n = strlen(w);
	int self;

	if ((size_t)(p->end - p->s) < n || memcmp(p->s, w, n))
		return -1;
	p->s += n;
	self = new_node(p, t);
	if (self >= 0)
		p->d->node[self].num = v;
	return self;
}

static int parse_value(struct pstate *p, int depth)
{
	int self;

	skip_ws(p);
	if (p->s >= p->end)
		return -1;
	switch (*p->s) {
	case '{':
		return parse_container(p, depth, true);
	case '[':
		return parse_container(p, depth, false);
	case '"':
		self = new_node(p, GJ_STR);
		if (self < 0 || !(p->d->node[self].str = parse_string(p)))
			return -1;
		return self;
	case 't':
		return parse_word(p, "true", GJ_BOOL, 1);
	case 'f':
		return parse_word(p, "false", GJ_BOOL, 0);
	case 'n':
		return parse_word(p, "null", GJ_NULL, 0);
	default:
		return parse_number(p);
	}
}

int gj_parse(struct gj_doc *d, const char *s, size_t len)
{
	struct pstate p = { d, s, s + len };

	if (len >= GA_LINE_MAX)
		return -1;
	d->n = 0;
	d->sused = 0;
	if (parse_value(&p, 1) != 0)
		return -1;
	skip_ws(&p);
	return p.s == p.end ? 0 : -1;
}

const struct gj_node *gj_first(const struct gj_doc *d, const struct gj_node *n)
{
	return n && n->first >= 0 ? &d->node[n->first] : NULL;
}

const struct gj_node *gj_next(const struct gj_doc *d, const struct gj_node *n)
{
	return n && n->next >= 0 ? &d->node[n->next] : NULL;
}

const struct gj_node *gj_get(const struct gj_doc *d, const struct gj_node *obj,
			     const char *key)
{
	const struct gj_node *found = NULL;

	if (!obj || obj->type != GJ_OBJ)
		return NULL;
	/* The last of duplicate keys wins, as in most readers. */
	for (const struct gj_node *c = gj_first(d, obj); c; c = gj_next(d, c))
		if (c->key && !strcmp(c->key, key))
			found = c;
	return found;
}

const char *gj_get_str(const struct gj_doc *d, const struct gj_node *obj,
		       const char *key)
{
	const struct gj_node *n = gj_get(d, obj, key);

	return n && n->type == GJ_STR ? n->str : NULL;
}

bool gj_get_int(const struct gj_doc *d, const struct gj_node *obj,
		const char *key, long long min, long long max, long long *out)
{
	const struct gj_node *n = gj_get(d, obj, key);

	if (!n || n->type != GJ_NUM || !n->is_int || n->num < min || n->num > max)
		return false;
	*out = n->num;
	return true;
}

/* ---- writing ----------------------------------------------------------------- */

void gbuf_init(struct gbuf *b, char *p, size_t cap)
{
	b->p = p;
	b->len = 0;
	b->cap = cap;
	b->over = cap == 0;
	if (cap)
		p[0] = '\0';
}

static void gbuf_putn(struct gbuf *b, const char *s, size_t n)
{
	if (b->over || b->len + n + 1 > b->cap) {
		b->over = true;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void gbuf_raw(struct gbuf *b, const char *s)
{
	gbuf_putn(b, s, strlen(s));
}

void gbuf_str(struct gbuf *b, const char *s)
{
	gbuf_putn(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			gbuf_putn(b, esc, 2);
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			gbuf_putn(b, esc, 6);
		} else {
			gbuf_putn(b, s, 1);
		}
	}
	gbuf_putn(b, "\"", 1);
}

void gbuf_int(struct gbuf *b, long long v)
{
	char tmp[24];

	snprintf(tmp, sizeof(tmp), "%lld", v);
	gbuf_raw(b, tmp);
}
