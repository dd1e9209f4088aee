/* SPDX-License-Identifier: MIT */
/*
 * The guest side of docs/guest-additions.md: line framing, the host's
 * messages, the hello and info lines, and gathering the info.  See ga.h.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>

#include "ga.h"

void ga_reader_reset(struct ga_reader *r)
{
	r->len = 0;
	r->discarding = false;
}

bool ga_path_ok(const char *path)
{
	const char *p;
	size_t n;

	if (!path || path[0] != '/' || !path[1])
		return false;
	n = strlen(path);
	if (n > GA_PATH_MAX)
		return false;
	for (p = path; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	/* Components "." and "..": between slashes or at the end. */
	for (p = path; *p; p++) {
		if (p[0] != '/')
			continue;
		if (p[1] == '.' && (p[2] == '/' || !p[2]))
			return false;
		if (p[1] == '.' && p[2] == '.' && (p[3] == '/' || !p[3]))
			return false;
	}
	return true;
}

static int on_shares(struct ga_reader *r, const struct gj_node *root,
		     const struct ga_actions *a, void *opaque)
{
	const struct gj_doc *d = &r->doc;
	const struct gj_node *arr = gj_get(d, root, "shares");
	struct ga_share s[GA_SHARES_MAX];
	unsigned n = 0;

	if (!arr || arr->type != GJ_ARR)
		return -1;
	for (const struct gj_node *e = gj_first(d, arr); e; e = gj_next(d, e)) {
		const char *tag = gj_get_str(d, e, "tag");
		const char *path = gj_get_str(d, e, "path");
		const struct gj_node *ro = gj_get(d, e, "readonly");

		if (n == GA_SHARES_MAX || e->type != GJ_OBJ || !tag || !path ||
		    !*tag || strlen(tag) > GA_TAG_MAX || !ga_path_ok(path) ||
		    (ro && ro->type != GJ_BOOL))
			return -1;
		/* The tag: what the host's share.c allows. */
		for (const char *t = tag; *t; t++)
			if (!((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') ||
			      (*t >= '0' && *t <= '9') || *t == '_' || *t == '.' ||
			      *t == '-'))
				return -1;
		memset(&s[n], 0, sizeof(s[n]));
		strcpy(s[n].tag, tag);
		strcpy(s[n].path, path);
		s[n].readonly = ro && ro->num;
		n++;
	}
	if (a->shares)
		a->shares(opaque, s, n);
	return 0;
}

int ga_handle_line(struct ga_reader *r, const char *line, size_t len,
		   const struct ga_actions *a, void *opaque)
{
	const struct gj_node *root;
	const char *type;
	long long v1, v2;

	if (len && line[len - 1] == '\r')
		len--;
	if (!len)
		return 0;
	if (gj_parse(&r->doc, line, len) < 0)
		goto bad;
	root = &r->doc.node[0];
	type = gj_get_str(&r->doc, root, "type");
	if (root->type != GJ_OBJ || !type)
		goto bad;
	if (!strcmp(type, "hello")) {
		if (!gj_get_int(&r->doc, root, "protocol", 1, 1 << 30, &v1))
			goto bad;
		if (a->hello)
			a->hello(opaque, v1);
	} else if (!strcmp(type, "shares")) {
		if (on_shares(r, root, a, opaque) < 0)
			goto bad;
	} else if (!strcmp(type, "display-size")) {
		if (!gj_get_int(&r->doc, root, "width", 1, GA_DISPLAY_MAX, &v1) ||
		    !gj_get_int(&r->doc, root, "height", 1, GA_DISPLAY_MAX, &v2))
			goto bad;
		if (a->display_size)
			a->display_size(opaque, (unsigned)v1, (unsigned)v2);
	} else if (!strcmp(type, "time-sync")) {
		/* 2000-01-01 .. 2200-01-01: anything else is not a clock. */
		if (!gj_get_int(&r->doc, root, "sec", 946684800LL, 7258118400LL, &v1) ||
		    !gj_get_int(&r->doc, root, "nsec", 0, 999999999, &v2))
			goto bad;
		if (a->time_sync)
			a->time_sync(opaque, v1, (long)v2);
	}
	/* Other types: a newer host's, ignored. */
	return 0;
bad:
	r->bad++;
	return -1;
}

void ga_input(struct ga_reader *r, const char *buf, size_t len,
	      const struct ga_actions *a, void *opaque)
{
	const char *p = buf, *end = buf + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t chunk = (size_t)((nl ? nl : end) - p);

		if (r->discarding) {
			if (nl)
				r->discarding = false;
		} else if (r->len + chunk >= GA_LINE_MAX) {
			r->bad++;
			r->len = 0;
			r->discarding = !nl;
		} else {
			memcpy(r->line + r->len, p, chunk);
			r->len += chunk;
			if (nl) {
				ga_handle_line(r, r->line, r->len, a, opaque);
				r->len = 0;
			}
		}
		p += chunk + (nl ? 1 : 0);
	}
}

size_t ga_hello_line(char *buf, size_t cap)
{
	struct gbuf b;

	gbuf_init(&b, buf, cap);
	gbuf_raw(&b, "{\"type\":\"hello\",\"protocol\":");
	gbuf_int(&b, GA_PROTOCOL);
	gbuf_raw(&b, ",\"version\":");
	gbuf_str(&b, GA_VERSION);
	gbuf_raw(&b, "}\n");
	return b.over ? 0 : b.len;
}

size_t ga_info_line(const struct ga_info *in, char *buf, size_t cap)
{
	struct gbuf b;

	gbuf_init(&b, buf, cap);
	gbuf_raw(&b, "{\"type\":\"info\",\"os\":");
	gbuf_str(&b, in->os);
	gbuf_raw(&b, ",\"kernel\":");
	gbuf_str(&b, in->kernel);
	gbuf_raw(&b, ",\"hostname\":");
	gbuf_str(&b, in->hostname);
	gbuf_raw(&b, ",\"version\":");
	gbuf_str(&b, GA_VERSION);
	gbuf_raw(&b, ",\"addresses\":[");
	for (unsigned i = 0; i < in->naddr && i < GA_ADDR_MAX; i++) {
		if (i)
			gbuf_raw(&b, ",");
		gbuf_str(&b, in->addr[i]);
	}
	gbuf_raw(&b, "]}\n");
	return b.over ? 0 : b.len;
}

/* ---- info ---------------------------------------------------------------------- */

void ga_sanitize(const char *in, char *out, size_t cap)
{
	size_t k = 0;

	if (!cap)
		return;
	while (*in) {
		const unsigned char *s = (const unsigned char *)in;
		size_t len = 1;
		bool ok = true;
		unsigned cp = s[0];

		if (s[0] >= 0x80) {
			/* A valid sequence, not a C1 control. */
			if (s[0] >= 0xc2 && s[0] <= 0xdf)
				len = 2, cp = s[0] & 0x1f;
			else if (s[0] >= 0xe0 && s[0] <= 0xef)
				len = 3, cp = s[0] & 0x0f;
			else if (s[0] >= 0xf0 && s[0] <= 0xf4)
				len = 4, cp = s[0] & 0x07;
			else
				ok = false, len = 1;
			for (size_t i = 1; ok && i < len; i++) {
				if ((s[i] & 0xc0) != 0x80)
					ok = false;
				else
					cp = cp << 6 | (s[i] & 0x3f);
			}
			if (ok && ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
				   (len == 4 && (cp < 0x10000 || cp > 0x10ffff))))
				ok = false;
			if (!ok)
				len = 1;
			/* A C1 control, well formed: one '?' for it. */
			else if (cp >= 0x80 && cp <= 0x9f)
				ok = false;
		} else if (cp < 0x20 || cp == 0x7f) {
			ok = false;
		}
		if (k + (ok ? len : 1) + 1 > cap)
			break;
		if (ok) {
			memcpy(out + k, in, len);
			k += len;
		} else {
			out[k++] = '?';
		}
		in += len;
	}
	out[k] = '\0';
}

bool ga_os_release_name(const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "re");
	char line[512], pretty[256] = "", name[256] = "";

	if (!f)
		return false;
	/* Lines of KEY=VALUE, the value maybe quoted (os-release(5)). */
	for (unsigned i = 0; i < 200 && fgets(line, sizeof(line), f); i++) {
		char *v = strchr(line, '='), *e;
		char *dst;

		if (!v)
			continue;
		*v++ = '\0';
		if (!strcmp(line, "PRETTY_NAME"))
			dst = pretty;
		else if (!strcmp(line, "NAME"))
			dst = name;
		else
			continue;
		e = v + strcspn(v, "\r\n");
		*e = '\0';
		if ((*v == '"' || *v == '\'') && e > v + 1 && e[-1] == *v) {
			e[-1] = '\0';
			v++;
		}
		snprintf(dst, 256, "%s", v);
		/* Backslash escapes: drop the backslash. */
		for (char *r = dst, *w = dst;; r++) {
			if (*r == '\\' && r[1])
				r++;
			*w++ = *r;
			if (!*r)
				break;
		}
	}
	fclose(f);
	if (!pretty[0] && !name[0])
		return false;
	ga_sanitize(pretty[0] ? pretty : name, out, cap);
	return true;
}

void ga_info_gather(struct ga_info *in, const char *os_release)
{
	struct utsname u;
	struct ifaddrs *ifa = NULL;

	memset(in, 0, sizeof(*in));
	if (os_release)
		ga_os_release_name(os_release, in->os, sizeof(in->os));
	else if (!ga_os_release_name("/etc/os-release", in->os, sizeof(in->os)))
		ga_os_release_name("/usr/lib/os-release", in->os, sizeof(in->os));
	if (uname(&u) == 0) {
		ga_sanitize(u.release, in->kernel, sizeof(in->kernel));
		ga_sanitize(u.nodename, in->hostname, sizeof(in->hostname));
	}
	if (getifaddrs(&ifa) < 0)
		return;
	for (struct ifaddrs *i = ifa; i && in->naddr < GA_ADDR_MAX; i = i->ifa_next) {
		char s[INET6_ADDRSTRLEN];
		const void *src;
		int fam;

		if (!i->ifa_addr || !(i->ifa_flags & IFF_UP) ||
		    (i->ifa_flags & IFF_LOOPBACK))
			continue;
		fam = i->ifa_addr->sa_family;
		if (fam == AF_INET) {
			src = &((const struct sockaddr_in *)i->ifa_addr)->sin_addr;
		} else if (fam == AF_INET6) {
			const struct in6_addr *a6 = &((const struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;

			if (IN6_IS_ADDR_LINKLOCAL(a6))
				continue;	/* needs a scope to be of use */
			src = a6;
		} else {
			continue;
		}
		if (inet_ntop(fam, src, s, sizeof(s)))
			snprintf(in->addr[in->naddr++], sizeof(in->addr[0]), "%s", s);
	}
	freeifaddrs(ifa);
}
