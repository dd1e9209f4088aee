/* SPDX-License-Identifier: MIT */
/*
 * The host side of the guest additions' protocol.  See additions_host.h
 * and docs/guest-additions.md.
 */
#define _GNU_SOURCE
#include "additions_host.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "log.h"
#include "share.h"

#define DISPLAY_MAX 16384

struct additions_host {
	const struct additions_host_ops *ops;
	void *opaque;
	char line[ADDITIONS_LINE_MAX];
	size_t len;
	bool discarding;		/* in an over-long line */
	bool open;
	bool greeted;			/* our hello went out this session */
	bool heard;			/* a valid message came this session */
	bool guest_hello;		/* ... a hello among them */
	struct additions_share share[ADDITIONS_SHARES_MAX];
	unsigned nshares;
	unsigned want_w, want_h;	/* the last requested display size */
	unsigned sent_w, sent_h;	/* ... sent this session */
	struct additions_info info;
	bool has_info;
};

/* ---- sending ------------------------------------------------------------- */

static void send_node(struct additions_host *h, JsonBuilder *b)
{
	g_autoptr(JsonGenerator) gen = json_generator_new();
	g_autoptr(JsonNode) root = json_builder_get_root(b);
	g_autofree char *text = NULL;
	GString *s;

	json_generator_set_root(gen, root);
	text = json_generator_to_data(gen, NULL);
	s = g_string_new(text);
	g_string_append_c(s, '\n');
	/* Ours are small; a message over the bound would be a bug here. */
	if (s->len <= ADDITIONS_LINE_MAX)
		h->ops->send(h->opaque, s->str, s->len);
	else
		vlog(LOG_WARN, "additions: a %zu-byte message not sent (over %u)",
		     s->len, ADDITIONS_LINE_MAX);
	g_string_free(s, TRUE);
}

static void send_display_size(struct additions_host *h)
{
	g_autoptr(JsonBuilder) b = json_builder_new();

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "type");
	json_builder_add_string_value(b, "display-size");
	json_builder_set_member_name(b, "width");
	json_builder_add_int_value(b, h->want_w);
	json_builder_set_member_name(b, "height");
	json_builder_add_int_value(b, h->want_h);
	json_builder_end_object(b);
	send_node(h, b);
	h->sent_w = h->want_w;
	h->sent_h = h->want_h;
}

/* hello, shares, and the display size if one was asked for. */
static void greet(struct additions_host *h)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonBuilder) s = json_builder_new();

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "type");
	json_builder_add_string_value(b, "hello");
	json_builder_set_member_name(b, "protocol");
	json_builder_add_int_value(b, ADDITIONS_PROTOCOL);
	json_builder_set_member_name(b, "host");
	json_builder_add_string_value(b, "vivarium " VIVARIUM_VERSION);
	json_builder_end_object(b);
	send_node(h, b);

	json_builder_begin_object(s);
	json_builder_set_member_name(s, "type");
	json_builder_add_string_value(s, "shares");
	json_builder_set_member_name(s, "shares");
	json_builder_begin_array(s);
	for (unsigned i = 0; i < h->nshares; i++) {
		json_builder_begin_object(s);
		json_builder_set_member_name(s, "tag");
		json_builder_add_string_value(s, h->share[i].tag);
		json_builder_set_member_name(s, "path");
		json_builder_add_string_value(s, h->share[i].path);
		json_builder_set_member_name(s, "readonly");
		json_builder_add_boolean_value(s, h->share[i].readonly);
		json_builder_end_object(s);
	}
	json_builder_end_array(s);
	json_builder_end_object(s);
	send_node(h, s);

	h->greeted = true;
	h->sent_w = h->sent_h = 0;
	if (h->want_w)
		send_display_size(h);
}

/* ---- checking what the guest sent ------------------------------------------ */

/* Nesting deeper than ADDITIONS_DEPTH_MAX, or a \u0000 escape (json-glib
 * would cut the string there): refused before json-glib sees the line. */
static bool line_shape_ok(const char *s, size_t len)
{
	unsigned depth = 0;
	bool in_str = false;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (in_str) {
			if (c == '\\') {
				if (i + 5 < len && s[i + 1] == 'u' &&
				    !memcmp(s + i + 2, "0000", 4))
					return false;
				i++;
			} else if (c == '"') {
				in_str = false;
			}
		} else if (c == '"') {
			in_str = true;
		} else if (c == '{' || c == '[') {
			if (++depth > ADDITIONS_DEPTH_MAX)
				return false;
		} else if ((c == '}' || c == ']') && depth) {
			depth--;
		} else if (c == '\0') {
			return false;
		}
	}
	return true;
}

/* UTF-8 without control characters (C0, DEL, C1), 1..@max bytes
 * (0 allowed with @may_be_empty). */
static bool text_ok(const char *s, size_t max, bool may_be_empty)
{
	size_t n = strlen(s);

	if (n > max || (!n && !may_be_empty) || !g_utf8_validate(s, (gssize)n, NULL))
		return false;
	for (const char *p = s; *p; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		if (c < 0x20 || (c >= 0x7f && c <= 0x9f))
			return false;
	}
	return true;
}

/* String member @name (required) that passes text_ok() into @out. */
static bool take_text(JsonObject *o, const char *name, char *out, size_t max,
		      bool may_be_empty)
{
	JsonNode *n = json_object_get_member(o, name);
	const char *s;

	if (!n || !JSON_NODE_HOLDS_VALUE(n) ||
	    json_node_get_value_type(n) != G_TYPE_STRING)
		return false;
	s = json_node_get_string(n);
	if (!s || !text_ok(s, max, may_be_empty))
		return false;
	memcpy(out, s, strlen(s) + 1);
	return true;
}

static bool address_ok(const char *s)
{
	unsigned char a[16];

	return strlen(s) < 46 && (inet_pton(AF_INET, s, a) == 1 ||
				  inet_pton(AF_INET6, s, a) == 1);
}

static bool on_info(struct additions_host *h, JsonObject *o)
{
	struct additions_info in = { 0 };
	JsonNode *n = json_object_get_member(o, "addresses");
	JsonArray *arr;

	if (!take_text(o, "os", in.os, ADDITIONS_OS_MAX, true) ||
	    !take_text(o, "kernel", in.kernel, ADDITIONS_KERNEL_MAX, true) ||
	    !take_text(o, "hostname", in.hostname, ADDITIONS_HOSTNAME_MAX, true) ||
	    !take_text(o, "version", in.version, ADDITIONS_VERSION_MAX, true) ||
	    !n || !JSON_NODE_HOLDS_ARRAY(n))
		return false;
	arr = json_node_get_array(n);
	if (json_array_get_length(arr) > ADDITIONS_ADDR_MAX)
		return false;
	for (guint i = 0; i < json_array_get_length(arr); i++) {
		JsonNode *e = json_array_get_element(arr, i);
		const char *s;

		if (!JSON_NODE_HOLDS_VALUE(e) ||
		    json_node_get_value_type(e) != G_TYPE_STRING)
			return false;
		s = json_node_get_string(e);
		if (!s || !address_ok(s))
			return false;
		memcpy(in.addr[in.naddr++], s, strlen(s) + 1);
	}
	in.when_us = g_get_real_time();
	h->info = in;
	h->has_info = true;
	if (h->ops->info)
		h->ops->info(h->opaque);
	return true;
}

static bool on_hello(struct additions_host *h, JsonObject *o)
{
	JsonNode *n = json_object_get_member(o, "protocol");
	char version[ADDITIONS_VERSION_MAX + 1];

	if (!n || !JSON_NODE_HOLDS_VALUE(n) ||
	    json_node_get_value_type(n) != G_TYPE_INT64 ||
	    json_node_get_int(n) < 1)
		return false;
	if (!take_text(o, "version", version, ADDITIONS_VERSION_MAX, false))
		return false;
	/* A newer guest speaks our version (the lower one): nothing to do. */
	vlog(LOG_INFO, "additions: the guest's agent %s (protocol %" G_GINT64_FORMAT ") said hello",
	     version, json_node_get_int(n));
	/* The first hello after our own crossed it: no second greeting. */
	if (!(h->greeted && !h->guest_hello))
		greet(h);
	h->guest_hello = true;
	return true;
}

static void on_line(struct additions_host *h, const char *line, size_t len)
{
	g_autoptr(JsonParser) p = json_parser_new();
	JsonNode *root, *t;
	JsonObject *o;
	const char *type;
	bool ok;

	if (len == 0 || (len == 1 && line[0] == '\r'))
		return;			/* blank lines are allowed */
	if (!line_shape_ok(line, len) ||
	    !json_parser_load_from_data(p, line, (gssize)len, NULL) ||
	    !(root = json_parser_get_root(p)) || !JSON_NODE_HOLDS_OBJECT(root)) {
		vlog_ratelimited(LOG_WARN, "additions: the guest sent a line that is not a JSON object: ignored");
		return;
	}
	o = json_node_get_object(root);
	t = json_object_get_member(o, "type");
	if (!t || !JSON_NODE_HOLDS_VALUE(t) ||
	    json_node_get_value_type(t) != G_TYPE_STRING) {
		vlog_ratelimited(LOG_WARN, "additions: the guest sent a message without a \"type\": ignored");
		return;
	}
	type = json_node_get_string(t);
	if (!strcmp(type, "hello"))
		ok = on_hello(h, o);
	else if (!strcmp(type, "info"))
		ok = on_info(h, o);
	else
		return;			/* a newer agent's message: ignored */
	if (ok)
		h->heard = true;
	else
		vlog_ratelimited(LOG_WARN, "additions: the guest's \"%s\" message is malformed: ignored",
				 type);
}

/* ---- the interface ---------------------------------------------------------- */

struct additions_host *additions_host_new(const struct additions_host_ops *ops,
					  void *opaque)
{
	struct additions_host *h = g_try_new0(struct additions_host, 1);

	if (!h)
		return NULL;
	h->ops = ops;
	h->opaque = opaque;
	return h;
}

void additions_host_free(struct additions_host *h)
{
	g_free(h);
}

void additions_host_set_shares(struct additions_host *h,
			       const struct additions_share *s, unsigned n)
{
	h->nshares = MIN(n, ADDITIONS_SHARES_MAX);
	memcpy(h->share, s, h->nshares * sizeof(*s));
}

void additions_host_reset(struct additions_host *h, bool open)
{
	h->len = 0;
	h->discarding = false;
	h->open = open;
	h->greeted = h->heard = h->guest_hello = false;
	h->sent_w = h->sent_h = 0;
	if (open)
		greet(h);
}

void additions_host_input(struct additions_host *h, const void *buf,
			  size_t len)
{
	const char *p = buf, *end = p + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t chunk = (size_t)((nl ? nl : end) - p);

		if (h->discarding) {
			if (nl)
				h->discarding = false;
		} else if (h->len + chunk >= ADDITIONS_LINE_MAX) {
			/* Over the bound (the newline counts): the whole
			 * line goes, up to its newline. */
			vlog_ratelimited(LOG_WARN, "additions: the guest sent a line over %u bytes: dropped",
					 ADDITIONS_LINE_MAX);
			h->len = 0;
			h->discarding = !nl;
		} else {
			memcpy(h->line + h->len, p, chunk);
			h->len += chunk;
			if (nl) {
				h->line[h->len] = '\0';
				on_line(h, h->line, h->len);
				h->len = 0;
			}
		}
		p += chunk + (nl ? 1 : 0);
	}
}

bool additions_host_connected(const struct additions_host *h)
{
	return h && h->open && h->heard;
}

const struct additions_info *additions_host_info(const struct additions_host *h)
{
	return h && h->has_info ? &h->info : NULL;
}

int additions_host_display_size(struct additions_host *h, unsigned width,
				unsigned height)
{
	if (!width || !height || width > DISPLAY_MAX || height > DISPLAY_MAX)
		return -EINVAL;
	h->want_w = width;
	h->want_h = height;
	if (!h->open || !h->greeted)
		return -ENOTCONN;
	if (h->sent_w != width || h->sent_h != height)
		send_display_size(h);
	return h->heard ? 0 : -ENOTCONN;
}

int additions_host_time_sync(struct additions_host *h, gint64 real_us)
{
	g_autoptr(JsonBuilder) b = json_builder_new();

	if (!h->open)
		return -ENOTCONN;
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "type");
	json_builder_add_string_value(b, "time-sync");
	json_builder_set_member_name(b, "sec");
	json_builder_add_int_value(b, real_us / G_USEC_PER_SEC);
	json_builder_set_member_name(b, "nsec");
	json_builder_add_int_value(b, (real_us % G_USEC_PER_SEC) * 1000);
	json_builder_end_object(b);
	send_node(h, b);
	return h->heard ? 0 : -ENOTCONN;
}

bool additions_guest_path_ok(const char *path)
{
	g_auto(GStrv) parts = NULL;

	if (!path || path[0] != '/' || !path[1] ||
	    !text_ok(path, ADDITIONS_PATH_MAX, false))
		return false;
	parts = g_strsplit(path, "/", -1);
	for (char **p = parts; *p; p++)
		if (!strcmp(*p, ".") || !strcmp(*p, ".."))
			return false;
	return true;
}

unsigned additions_shares_from_config(const char *const *tags,
				      const bool *readonly, unsigned n,
				      GKeyFile *kf, struct additions_share *out)
{
	g_auto(GStrv) groups = kf ? g_key_file_get_groups(kf, NULL) : NULL;
	unsigned count = 0;

	for (unsigned i = 0; i < n && count < ADDITIONS_SHARES_MAX; i++) {
		struct additions_share *s = &out[count];
		g_autofree char *path = NULL;

		if (!tags[i] || strlen(tags[i]) > ADDITIONS_TAG_MAX)
			continue;
		memset(s, 0, sizeof(*s));
		g_strlcpy(s->tag, tags[i], sizeof(s->tag));
		s->readonly = readonly[i];
		/* The group with this tag (groups may have gaps; tags are
		 * unique, share_specs_check()). */
		for (char **g = groups; g && *g && !path; g++) {
			g_autofree char *tag = NULL, *group_path = NULL;

			if (!g_str_has_prefix(*g, "share"))
				continue;
			tag = g_key_file_get_string(kf, *g, "tag", NULL);
			if (!tag) {
				/* The default tag: the folder's last name. */
				g_autofree char *hp = g_key_file_get_string(kf, *g, "path", NULL);
				char def[SHARE_TAG_MAX + 1];

				if (!hp)
					continue;
				share_default_tag(hp, def);
				if (strcmp(def, tags[i]))
					continue;
			} else if (strcmp(tag, tags[i])) {
				continue;
			}
			group_path = g_key_file_get_string(kf, *g, "guest-path", NULL);
			if (group_path && !additions_guest_path_ok(group_path)) {
				vlog(LOG_WARN, "vm.conf [%s]: guest-path '%s' is not an absolute path without '.'/'..' (using /mnt/%s)",
				     *g, group_path, tags[i]);
				continue;
			}
			path = g_steal_pointer(&group_path);
			if (!path)
				break;
		}
		if (path)
			g_strlcpy(s->path, path, sizeof(s->path));
		else
			snprintf(s->path, sizeof(s->path), "/mnt/%s", tags[i]);
		count++;
	}
	return count;
}
