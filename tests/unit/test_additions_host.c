/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_additions_host.c - the host side of the guest additions'
 * protocol (app/additions_host.c) against a guest peer on a socketpair:
 * the greeting, line framing (split and joined lines), the line bound,
 * hostile JSON (each refused, the last good info kept), display-size and
 * time-sync messages, and the shares message built from a vm.conf.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "additions_host.h"
#include "check.h"
#include "log.h"

struct peer {
	int guest, host;		/* the socketpair's ends */
	struct additions_host *h;
	unsigned infos;
	GString *in;			/* bytes the guest has not parsed yet */
};

static void host_send(void *opaque, const void *buf, size_t len)
{
	struct peer *p = opaque;

	CHECK(write(p->host, buf, len) == (ssize_t)len);
}

static void host_info(void *opaque)
{
	((struct peer *)opaque)->infos++;
}

static const struct additions_host_ops ops = { host_send, host_info };

static void peer_open(struct peer *p)
{
	int sv[2];

	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
	p->guest = sv[0];
	p->host = sv[1];
	p->h = additions_host_new(&ops, p);
	p->infos = 0;
	p->in = g_string_new(NULL);
	CHECK(p->h != NULL);
}

static void peer_close(struct peer *p)
{
	additions_host_free(p->h);
	close(p->guest);
	close(p->host);
	g_string_free(p->in, TRUE);
}

/* The guest writes @len bytes; the host reads what arrived, as the VM
 * process's loop does, in reads of at most @chunk bytes. */
static void guest_write_n(struct peer *p, const void *buf, size_t len,
			  size_t chunk)
{
	char tmp[8192];
	ssize_t n;

	CHECK(write(p->guest, buf, len) == (ssize_t)len);
	while ((n = read(p->host, tmp, MIN(chunk, sizeof(tmp)))) > 0)
		additions_host_input(p->h, tmp, (size_t)n);
}

static void guest_write(struct peer *p, const char *s)
{
	guest_write_n(p, s, strlen(s), 8192);
}

/* The next line the host sent, parsed (NULL: none waiting). */
static JsonObject *guest_read(struct peer *p, JsonParser *parser)
{
	char tmp[4096];
	ssize_t n;
	char *nl;
	gsize len;

	while ((n = read(p->guest, tmp, sizeof(tmp))) > 0)
		g_string_append_len(p->in, tmp, n);
	nl = memchr(p->in->str, '\n', p->in->len);
	if (!nl)
		return NULL;
	len = (gsize)(nl - p->in->str);
	CHECK(len + 1 <= ADDITIONS_LINE_MAX);
	if (!json_parser_load_from_data(parser, p->in->str, (gssize)len, NULL)) {
		CHECK(!"the host sent a line that is not JSON");
		g_string_erase(p->in, 0, (gssize)len + 1);
		return NULL;
	}
	g_string_erase(p->in, 0, (gssize)len + 1);
	CHECK(JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)));
	return json_node_get_object(json_parser_get_root(parser));
}

/* The type of the next message, "" if none. */
static char *next_type(struct peer *p)
{
	g_autoptr(JsonParser) parser = json_parser_new();
	JsonObject *o = guest_read(p, parser);

	return g_strdup(o ? json_object_get_string_member_with_default(o, "type", "?") : "");
}

static void drain(struct peer *p)
{
	g_autofree char *t = NULL;

	while (*(t = next_type(p)))
		g_free(t);
}

static const char good_info[] =
	"{\"type\":\"info\",\"os\":\"Debian GNU/Linux 12 (bookworm)\",\"kernel\":\"6.1.0-18-amd64\","
	"\"hostname\":\"deb\",\"version\":\"1.0.0\",\"addresses\":[\"10.0.2.15\",\"fec0::5054:ff:fe12:3456\"]}\n";

static void test_greeting(void)
{
	struct peer p;
	struct additions_share sh[2] = {
		{ .tag = "src", .path = "/home/u/src", .readonly = false },
		{ .tag = "data", .path = "/mnt/data", .readonly = true },
	};
	g_autoptr(JsonParser) parser = json_parser_new();
	JsonObject *o;
	JsonArray *a;
	g_autofree char *t = NULL;

	peer_open(&p);
	additions_host_set_shares(p.h, sh, 2);
	CHECK(!additions_host_connected(p.h));
	additions_host_reset(p.h, true);
	o = guest_read(&p, parser);
	CHECK(o && !strcmp(json_object_get_string_member_with_default(o, "type", ""), "hello"));
	CHECK(o && json_object_get_int_member_with_default(o, "protocol", 0) == ADDITIONS_PROTOCOL);
	o = guest_read(&p, parser);
	CHECK(o && !strcmp(json_object_get_string_member_with_default(o, "type", ""), "shares"));
	a = o ? json_object_get_array_member(o, "shares") : NULL;
	CHECK(a && json_array_get_length(a) == 2);
	if (a && json_array_get_length(a) == 2) {
		JsonObject *s0 = json_array_get_object_element(a, 0);
		JsonObject *s1 = json_array_get_object_element(a, 1);

		CHECK(!strcmp(json_object_get_string_member(s0, "tag"), "src"));
		CHECK(!strcmp(json_object_get_string_member(s0, "path"), "/home/u/src"));
		CHECK(!json_object_get_boolean_member(s0, "readonly"));
		CHECK(!strcmp(json_object_get_string_member(s1, "path"), "/mnt/data"));
		CHECK(json_object_get_boolean_member(s1, "readonly"));
	}
	/* No display size was asked for: nothing more. */
	CHECK(guest_read(&p, parser) == NULL);

	/* The guest's hello crossing ours: no second greeting. */
	guest_write(&p, "{\"type\":\"hello\",\"protocol\":1,\"version\":\"1.0.0\"}\n");
	CHECK(additions_host_connected(p.h));
	t = next_type(&p);
	CHECK(!strcmp(t, ""));
	g_free(t);
	/* A later hello (the agent restarted): greeted again. */
	guest_write(&p, "{\"type\":\"hello\",\"protocol\":7,\"version\":\"9.0\",\"new-member\":[1,2]}\n");
	t = next_type(&p);
	CHECK(!strcmp(t, "hello"));
	g_free(t);
	t = next_type(&p);
	CHECK(!strcmp(t, "shares"));
	/* A hello without a version or protocol is refused. */
	guest_write(&p, "{\"type\":\"hello\",\"protocol\":0,\"version\":\"1\"}\n");
	guest_write(&p, "{\"type\":\"hello\",\"protocol\":1}\n");
	g_free(t);
	t = next_type(&p);
	CHECK(!strcmp(t, ""));

	/* Closed: not connected; reopened: greeted at once. */
	additions_host_reset(p.h, false);
	CHECK(!additions_host_connected(p.h));
	g_free(t);
	t = next_type(&p);
	CHECK(!strcmp(t, ""));
	additions_host_reset(p.h, true);
	g_free(t);
	t = next_type(&p);
	CHECK(!strcmp(t, "hello"));
	peer_close(&p);
}

static void test_info_framing(void)
{
	struct peer p;
	const struct additions_info *in;
	g_autofree char *two = g_strconcat(good_info, "\n", good_info, NULL);

	peer_open(&p);
	additions_host_reset(p.h, true);
	drain(&p);
	CHECK(additions_host_info(p.h) == NULL);
	/* One byte at a time. */
	guest_write_n(&p, good_info, strlen(good_info), 1);
	in = additions_host_info(p.h);
	CHECK(in != NULL);
	CHECK_EQ(p.infos, 1);
	if (in) {
		CHECK(!strcmp(in->os, "Debian GNU/Linux 12 (bookworm)"));
		CHECK(!strcmp(in->kernel, "6.1.0-18-amd64"));
		CHECK(!strcmp(in->hostname, "deb"));
		CHECK(!strcmp(in->version, "1.0.0"));
		CHECK_EQ(in->naddr, 2);
		CHECK(!strcmp(in->addr[0], "10.0.2.15"));
		CHECK(!strcmp(in->addr[1], "fec0::5054:ff:fe12:3456"));
	}
	CHECK(additions_host_connected(p.h));
	/* Two lines (and a blank one) in one write. */
	guest_write(&p, two);
	CHECK_EQ(p.infos, 3);
	/* CRLF endings are fine. */
	guest_write(&p, "{\"type\":\"info\",\"os\":\"Alpine\",\"kernel\":\"\",\"hostname\":\"\",\"version\":\"1\",\"addresses\":[]}\r\n");
	CHECK_EQ(p.infos, 4);
	in = additions_host_info(p.h);
	CHECK(in && !strcmp(in->os, "Alpine") && in->naddr == 0);
	/* Unknown types are ignored without harm. */
	guest_write(&p, "{\"type\":\"from-the-future\",\"x\":{\"y\":[1]}}\n");
	CHECK_EQ(p.infos, 4);
	/* Closed and reopened: the info stays. */
	additions_host_reset(p.h, false);
	CHECK(additions_host_info(p.h) != NULL);
	peer_close(&p);
}

static void test_line_bound(void)
{
	struct peer p;
	size_t big = ADDITIONS_LINE_MAX * 3;
	char *junk = g_malloc(big);
	/* A line of exactly the bound (newline included) is over by one
	 * byte of room for nothing: the longest accepted has LINE_MAX - 1
	 * bytes before its newline. */
	GString *edge = g_string_new("{\"type\":\"info\",\"os\":\"");
	const char *tail = "\",\"kernel\":\"k\",\"hostname\":\"h\",\"version\":\"1\",\"addresses\":[]}";

	memset(junk, 'a', big);
	peer_open(&p);
	additions_host_reset(p.h, true);
	drain(&p);
	/* An over-long line, in pieces, then a good one: only that counts. */
	for (unsigned i = 0; i < 4; i++)
		guest_write_n(&p, junk, big, 4096);
	guest_write(&p, "\n");
	CHECK_EQ(p.infos, 0);
	guest_write(&p, good_info);
	CHECK_EQ(p.infos, 1);
	/* An over-long line whose newline and a good line come together. */
	guest_write_n(&p, junk, big, 4096);
	{
		g_autofree char *s = g_strconcat("}\n", good_info, NULL);

		guest_write(&p, s);
	}
	CHECK_EQ(p.infos, 2);
	/* The edge: LINE_MAX - 1 bytes and the newline pass the framing
	 * (the os string is over its own bound: refused as malformed, not
	 * dropped as a half line that would eat the next good one). */
	while (edge->len + strlen(tail) < ADDITIONS_LINE_MAX - 1)
		g_string_append_c(edge, 'x');
	g_string_append(edge, tail);
	CHECK_EQ(edge->len, ADDITIONS_LINE_MAX - 1);
	g_string_append_c(edge, '\n');
	guest_write(&p, edge->str);
	guest_write(&p, good_info);
	CHECK_EQ(p.infos, 3);
	/* One more byte: the line is dropped whole, the next one counts. */
	g_string_insert_c(edge, 20, 'x');
	guest_write(&p, edge->str);
	guest_write(&p, good_info);
	CHECK_EQ(p.infos, 4);
	g_string_free(edge, TRUE);
	g_free(junk);
	peer_close(&p);
}

static void test_hostile(void)
{
	static const char *const bad[] = {
		"not json\n",
		"[1,2,3]\n",
		"\"info\"\n",
		"{\"type\":5}\n",
		"{\"type\":\"info\"}\n",
		/* a control character (an escape sequence for the terminal) */
		"{\"type\":\"info\",\"os\":\"\\u001b[2J\",\"kernel\":\"k\",\"hostname\":\"h\",\"version\":\"1\",\"addresses\":[]}\n",
		/* C1 control */
		"{\"type\":\"info\",\"os\":\"\\u009b2J\",\"kernel\":\"k\",\"hostname\":\"h\",\"version\":\"1\",\"addresses\":[]}\n",
		/* \u0000 */
		"{\"type\":\"info\",\"os\":\"a\\u0000b\",\"kernel\":\"k\",\"hostname\":\"h\",\"version\":\"1\",\"addresses\":[]}\n",
		/* not an address */
		"{\"type\":\"info\",\"os\":\"o\",\"kernel\":\"k\",\"hostname\":\"h\",\"version\":\"1\",\"addresses\":[\"999.1.1.1\"]}\n",
		"{\"type\":\"info\",\"os\":\"o\",\"kernel\":\"k\",\"hostname\":\"h\",\"version\":\"1\",\"addresses\":[\"10.0.0.1; rm -rf /\"]}\n",
		"{\"type\":\"info\",\"os\":\"o\",\"kernel\":\"k\",\"hostname\":\"h\",\"version\":\"1\",\"addresses\":[1]}\n",
		"{\"type\":\"info\",\"os\":\"o\",\"kernel\":\"k\",\"hostname\":\"h\",\"version\":\"1\",\"addresses\":\"10.0.0.1\"}\n",
		/* wrong types */
		"{\"type\":\"info\",\"os\":1,\"kernel\":\"k\",\"hostname\":\"h\",\"version\":\"1\",\"addresses\":[]}\n",
		"{\"type\":\"info\",\"os\":null,\"kernel\":\"k\",\"hostname\":\"h\",\"version\":\"1\",\"addresses\":[]}\n",
		/* a hostname over 64 bytes */
		"{\"type\":\"info\",\"os\":\"o\",\"kernel\":\"k\",\"hostname\":\"hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh\",\"version\":\"1\",\"addresses\":[]}\n",
		/* nested too deep */
		"{\"type\":\"info\",\"x\":[[[[[[[[1]]]]]]]]}\n",
		/* invalid UTF-8 */
		"{\"type\":\"info\",\"os\":\"\xff\xfe\",\"kernel\":\"k\",\"hostname\":\"h\",\"version\":\"1\",\"addresses\":[]}\n",
		/* a NUL byte in the line */
		"{\"type\":\"info\"\0,\"os\":\"o\"}\n",
	};
	struct peer p;
	const struct additions_info *in;
	GString *many = g_string_new("{\"type\":\"info\",\"os\":\"o\",\"kernel\":\"k\",\"hostname\":\"h\",\"version\":\"1\",\"addresses\":[");
	GString *deep = g_string_new("{\"type\":\"info\",\"x\":");

	peer_open(&p);
	additions_host_reset(p.h, true);
	drain(&p);
	guest_write(&p, good_info);
	CHECK_EQ(p.infos, 1);
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		/* The NUL line: written with its true length. */
		size_t len = i == G_N_ELEMENTS(bad) - 1 ? 30 : strlen(bad[i]);

		guest_write_n(&p, bad[i], len, 8192);
		if (p.infos != 1)
			fprintf(stderr, "accepted: %s", bad[i]);
		CHECK_EQ(p.infos, 1);
	}
	/* 17 addresses: one too many. */
	for (unsigned i = 0; i <= ADDITIONS_ADDR_MAX; i++)
		g_string_append_printf(many, "%s\"10.0.0.%u\"", i ? "," : "", i + 1);
	g_string_append(many, "]}\n");
	guest_write(&p, many->str);
	CHECK_EQ(p.infos, 1);
	/* 4000 levels of nesting within the line bound: refused unparsed. */
	for (unsigned i = 0; i < 4000; i++)
		g_string_append_c(deep, '[');
	for (unsigned i = 0; i < 4000; i++)
		g_string_append_c(deep, ']');
	g_string_append(deep, "}\n");
	CHECK(deep->len < ADDITIONS_LINE_MAX);
	guest_write(&p, deep->str);
	CHECK_EQ(p.infos, 1);
	/* The good info is what is kept. */
	in = additions_host_info(p.h);
	CHECK(in && !strcmp(in->os, "Debian GNU/Linux 12 (bookworm)") && in->naddr == 2);
	/* And the session still works. */
	guest_write(&p, good_info);
	CHECK_EQ(p.infos, 2);
	g_string_free(many, TRUE);
	g_string_free(deep, TRUE);
	peer_close(&p);
}

static void test_display_time(void)
{
	struct peer p;
	g_autoptr(JsonParser) parser = json_parser_new();
	JsonObject *o;
	gint64 now = g_get_real_time();

	peer_open(&p);
	CHECK_EQ(additions_host_display_size(p.h, 0, 600), (unsigned long long)-EINVAL);
	CHECK_EQ(additions_host_display_size(p.h, 16385, 600), (unsigned long long)-EINVAL);
	/* Before the guest is there: remembered, sent with the greeting. */
	CHECK_EQ(additions_host_display_size(p.h, 1280, 800), (unsigned long long)-ENOTCONN);
	CHECK_EQ(additions_host_time_sync(p.h, now), (unsigned long long)-ENOTCONN);
	additions_host_reset(p.h, true);
	o = guest_read(&p, parser);		/* hello */
	o = guest_read(&p, parser);		/* shares */
	CHECK(o && json_array_get_length(json_object_get_array_member(o, "shares")) == 0);
	o = guest_read(&p, parser);
	CHECK(o && !strcmp(json_object_get_string_member_with_default(o, "type", ""), "display-size"));
	CHECK(o && json_object_get_int_member_with_default(o, "width", 0) == 1280);
	CHECK(o && json_object_get_int_member_with_default(o, "height", 0) == 800);
	guest_write(&p, "{\"type\":\"hello\",\"protocol\":1,\"version\":\"1.0.0\"}\n");
	/* Connected: a new size goes out once; the same size again does not. */
	CHECK_EQ(additions_host_display_size(p.h, 1024, 768), 0);
	CHECK_EQ(additions_host_display_size(p.h, 1024, 768), 0);
	o = guest_read(&p, parser);
	CHECK(o && json_object_get_int_member_with_default(o, "width", 0) == 1024);
	CHECK(guest_read(&p, parser) == NULL);
	CHECK_EQ(additions_host_time_sync(p.h, now), 0);
	o = guest_read(&p, parser);
	CHECK(o && !strcmp(json_object_get_string_member_with_default(o, "type", ""), "time-sync"));
	CHECK(o && json_object_get_int_member_with_default(o, "sec", 0) == now / 1000000);
	CHECK(o && json_object_get_int_member_with_default(o, "nsec", -1) == (now % 1000000) * 1000);
	peer_close(&p);
}

static void test_shares_from_config(void)
{
	static const char conf[] =
		"[vm]\nname=t\n"
		"[share0]\npath=/srv/src\ntag=src\nguest-path=/home/u/src\n"
		"[share2]\npath=/srv/My Data\nreadonly=true\n"
		"[share3]\npath=/srv/x\ntag=bad\nguest-path=/mnt/../etc\n";
	g_autoptr(GKeyFile) kf = g_key_file_new();
	const char *tags[] = { "src", "My_Data", "bad", "cli" };
	bool ro[] = { false, true, false, false };
	struct additions_share out[ADDITIONS_SHARES_MAX];
	unsigned n;
	struct peer p;
	g_autoptr(JsonParser) parser = json_parser_new();
	JsonObject *o;
	JsonArray *a;

	CHECK(g_key_file_load_from_data(kf, conf, -1, G_KEY_FILE_NONE, NULL));
	n = additions_shares_from_config(tags, ro, 4, kf, out);
	CHECK_EQ(n, 4);
	CHECK(!strcmp(out[0].tag, "src") && !strcmp(out[0].path, "/home/u/src") && !out[0].readonly);
	/* The default tag matched, no guest-path: /mnt/TAG. */
	CHECK(!strcmp(out[1].tag, "My_Data") && !strcmp(out[1].path, "/mnt/My_Data") && out[1].readonly);
	/* An invalid guest-path: the default. */
	CHECK(!strcmp(out[2].path, "/mnt/bad"));
	/* A share vm.conf does not have (run --share): the default. */
	CHECK(!strcmp(out[3].path, "/mnt/cli"));
	/* No vm.conf at all. */
	n = additions_shares_from_config(tags, ro, 1, NULL, out);
	CHECK(n == 1 && !strcmp(out[0].path, "/mnt/src"));

	CHECK(additions_guest_path_ok("/mnt/a b"));
	CHECK(!additions_guest_path_ok("/"));
	CHECK(!additions_guest_path_ok("mnt/x"));
	CHECK(!additions_guest_path_ok("/mnt/./x"));
	CHECK(!additions_guest_path_ok("/mnt/x\n"));
	CHECK(!additions_guest_path_ok(""));
	CHECK(!additions_guest_path_ok(NULL));

	/* The shares message built from it. */
	n = additions_shares_from_config(tags, ro, 2, kf, out);
	peer_open(&p);
	additions_host_set_shares(p.h, out, n);
	additions_host_reset(p.h, true);
	o = guest_read(&p, parser);
	o = guest_read(&p, parser);
	a = o ? json_object_get_array_member(o, "shares") : NULL;
	CHECK(a && json_array_get_length(a) == 2);
	if (a && json_array_get_length(a) == 2) {
		JsonObject *s1 = json_array_get_object_element(a, 1);

		CHECK(!strcmp(json_object_get_string_member(s1, "tag"), "My_Data"));
		CHECK(!strcmp(json_object_get_string_member(s1, "path"), "/mnt/My_Data"));
		CHECK(json_object_get_boolean_member(s1, "readonly"));
	}
	peer_close(&p);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	RUN_TEST(test_greeting);
	RUN_TEST(test_info_framing);
	RUN_TEST(test_line_bound);
	RUN_TEST(test_hostile);
	RUN_TEST(test_display_time);
	RUN_TEST(test_shares_from_config);
	return check_finish();
}
