/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_additions_agent.c - the guest agent's own logic
 * (guest-additions/ga_*.c), built natively: its JSON reader against
 * hostile input, the protocol's dispatch and framing, CVT timings against
 * the VESA formula's published results, string sanitizing, os-release,
 * the info it gathers on this host (accepted by the host side's checks);
 * then the real static agent (--fd, --dry-run) against the host side
 * (app/additions_host.c) over a socketpair: greeting, info, shares,
 * display size and clock each reach the agent.  Mounting, modesetting
 * and clock setting themselves run only in a guest.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "additions_host.h"
#include "check.h"
#include "ga.h"
#include "log.h"

static const char *agent_path;

/* ---- JSON -------------------------------------------------------------------- */

static int parse(struct gj_doc *d, const char *s)
{
	return gj_parse(d, s, strlen(s));
}

static void test_json(void)
{
	static struct gj_doc d;
	static const char *const bad[] = {
		"", "{", "{\"a\":1,}", "[1 2]", "{\"a\" 1}", "{\"a\":1} x",
		"\"unterminated", "01", "-", "1.", "1e", "tru", "nul",
		"[[[[[1]]]]]",				/* depth 5 */
		"{\"a\":\"\\u0000\"}",			/* NUL */
		"{\"a\":\"\\ud800\"}",			/* lone surrogate */
		"{\"a\":\"\\udc00\\ud800\"}",
		"{\"a\":\"\\x\"}",			/* bad escape */
		"{\"a\":\"tab\there\"}",		/* raw control character */
		"{\"a\":\"\xc0\xaf\"}",			/* overlong UTF-8 */
		"{\"a\":\"\xed\xa0\x80\"}",		/* encoded surrogate */
		"{\"a\":\"\xff\"}",
		"{1:2}",
	};
	const struct gj_node *r, *n;
	long long v;
	GString *many = g_string_new("[");

	CHECK(parse(&d, " {\"type\":\"x\",\"n\":-42,\"b\":true,\"z\":null,"
		    "\"a\":[1,{\"k\":\"v\"},[]],\"s\":\"q\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"} ") == 0);
	r = &d.node[0];
	CHECK(r->type == GJ_OBJ);
	CHECK(!strcmp(gj_get_str(&d, r, "type"), "x"));
	CHECK(gj_get_int(&d, r, "n", -100, 0, &v) && v == -42);
	CHECK(!gj_get_int(&d, r, "n", 0, 100, &v));	/* out of range */
	CHECK(!gj_get_int(&d, r, "type", 0, 100, &v));	/* not a number */
	CHECK(gj_get(&d, r, "b")->type == GJ_BOOL && gj_get(&d, r, "b")->num == 1);
	CHECK(gj_get(&d, r, "z")->type == GJ_NULL);
	CHECK(gj_get(&d, r, "missing") == NULL);
	n = gj_first(&d, gj_get(&d, r, "a"));
	CHECK(n && n->type == GJ_NUM && n->num == 1);
	n = gj_next(&d, n);
	CHECK(n && !strcmp(gj_get_str(&d, n, "k"), "v"));
	n = gj_next(&d, n);
	CHECK(n && n->type == GJ_ARR && gj_first(&d, n) == NULL && gj_next(&d, n) == NULL);
	CHECK(!strcmp(gj_get_str(&d, r, "s"), "q\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80"));
	/* Numbers that are not integers, or too big, are not integers. */
	CHECK(parse(&d, "{\"a\":1.5,\"b\":1e3,\"c\":99999999999999999999}") == 0);
	CHECK(!gj_get_int(&d, &d.node[0], "a", -1000, 1000, &v));
	CHECK(!gj_get_int(&d, &d.node[0], "b", -1000, 1000, &v));
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		if (parse(&d, bad[i]) == 0)
			fprintf(stderr, "parsed: %s\n", bad[i]);
		CHECK(parse(&d, bad[i]) < 0);
	}
	/* Depth 4 is the limit. */
	CHECK(parse(&d, "[[[[1]]]]") == 0);
	/* GA_NODES values at most. */
	for (unsigned i = 0; i < GA_NODES - 1; i++)
		g_string_append(many, i ? ",0" : "0");
	g_string_append(many, "]");
	CHECK(parse(&d, many->str) == 0);
	g_string_insert(many, 1, "0,");
	CHECK(parse(&d, many->str) < 0);
	/* A line at the bound is refused by the parser too. */
	{
		char *big = g_malloc(GA_LINE_MAX + 1);

		memset(big, ' ', GA_LINE_MAX);
		big[0] = '1';
		CHECK(gj_parse(&d, big, GA_LINE_MAX) < 0);
		CHECK(gj_parse(&d, big, GA_LINE_MAX - 1) == 0);
		g_free(big);
	}
	g_string_free(many, TRUE);
}

static void test_json_write(void)
{
	static struct gj_doc d;
	char buf[64];
	struct gbuf b;

	gbuf_init(&b, buf, sizeof(buf));
	gbuf_str(&b, "a\"b\\c\n\x01\x7f\xc3\xa9");
	CHECK(!b.over);
	CHECK(!strcmp(buf, "\"a\\\"b\\\\c\\u000a\\u0001\\u007f\xc3\xa9\""));
	/* Round trip. */
	CHECK(gj_parse(&d, buf, b.len) == 0 && d.node[0].type == GJ_STR &&
	      !strcmp(d.node[0].str, "a\"b\\c\n\x01\x7f\xc3\xa9"));
	gbuf_init(&b, buf, 8);
	gbuf_str(&b, "much too long");
	CHECK(b.over);
}

/* ---- protocol ------------------------------------------------------------------ */

struct seen {
	int hellos, shares, sizes, times;
	struct ga_share s[GA_SHARES_MAX];
	unsigned ns, w, h;
	long long sec;
	long nsec;
};

static void s_hello(void *o, long long p) { (void)p; ((struct seen *)o)->hellos++; }
static void s_shares(void *o, const struct ga_share *s, unsigned n)
{
	struct seen *x = o;

	x->shares++;
	memcpy(x->s, s, n * sizeof(*s));
	x->ns = n;
}
static void s_size(void *o, unsigned w, unsigned h)
{
	struct seen *x = o;

	x->sizes++;
	x->w = w;
	x->h = h;
}
static void s_time(void *o, long long sec, long nsec)
{
	struct seen *x = o;

	x->times++;
	x->sec = sec;
	x->nsec = nsec;
}

static const struct ga_actions acts = { s_hello, s_shares, s_size, s_time };

static int line(struct ga_reader *r, struct seen *x, const char *s)
{
	return ga_handle_line(r, s, strlen(s), &acts, x);
}

static void test_dispatch(void)
{
	static struct ga_reader r;
	static const char *const bad[] = {
		"[]", "{\"type\":1}", "{\"no\":\"type\"}",
		"{\"type\":\"hello\"}", "{\"type\":\"hello\",\"protocol\":0}",
		"{\"type\":\"hello\",\"protocol\":\"1\"}",
		"{\"type\":\"shares\"}", "{\"type\":\"shares\",\"shares\":{}}",
		"{\"type\":\"shares\",\"shares\":[{\"tag\":\"a\",\"path\":\"rel\"}]}",
		"{\"type\":\"shares\",\"shares\":[{\"tag\":\"a\",\"path\":\"/mnt/../etc\"}]}",
		"{\"type\":\"shares\",\"shares\":[{\"tag\":\"a\",\"path\":\"/\"}]}",
		"{\"type\":\"shares\",\"shares\":[{\"tag\":\"a/b\",\"path\":\"/mnt/x\"}]}",
		"{\"type\":\"shares\",\"shares\":[{\"tag\":\"\",\"path\":\"/mnt/x\"}]}",
		"{\"type\":\"shares\",\"shares\":[{\"tag\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"path\":\"/mnt/x\"}]}",
		"{\"type\":\"shares\",\"shares\":[{\"tag\":\"a\",\"path\":\"/mnt/x\",\"readonly\":\"yes\"}]}",
		"{\"type\":\"shares\",\"shares\":[1]}",
		"{\"type\":\"shares\",\"shares\":[{\"tag\":\"a\",\"path\":\"/a\"},{\"tag\":\"b\",\"path\":\"/b\"},"
		"{\"tag\":\"c\",\"path\":\"/c\"},{\"tag\":\"d\",\"path\":\"/d\"},{\"tag\":\"e\",\"path\":\"/e\"}]}",
		"{\"type\":\"display-size\",\"width\":0,\"height\":600}",
		"{\"type\":\"display-size\",\"width\":800,\"height\":16385}",
		"{\"type\":\"display-size\",\"width\":800.5,\"height\":600}",
		"{\"type\":\"time-sync\",\"sec\":5,\"nsec\":0}",
		"{\"type\":\"time-sync\",\"sec\":1700000000,\"nsec\":1000000000}",
		"{\"type\":\"time-sync\",\"sec\":1700000000}",
	};
	struct seen x = { 0 };
	char big[GA_LINE_MAX * 2];
	const char *two = "{\"type\":\"hello\",\"protocol\":1}\n{\"type\":\"display-size\",\"width\":800,\"height\":600}\n";

	CHECK(line(&r, &x, "{\"type\":\"hello\",\"protocol\":1,\"host\":\"vivarium 0.1.0\"}") == 0);
	CHECK(x.hellos == 1);
	CHECK(line(&r, &x, "{\"type\":\"shares\",\"shares\":[{\"tag\":\"src\",\"path\":\"/home/u/src\",\"readonly\":false},"
		   "{\"tag\":\"My_Data.1-x\",\"path\":\"/mnt/My Data\",\"readonly\":true}]}") == 0);
	CHECK(x.shares == 1 && x.ns == 2);
	CHECK(!strcmp(x.s[0].tag, "src") && !strcmp(x.s[0].path, "/home/u/src") && !x.s[0].readonly);
	CHECK(!strcmp(x.s[1].path, "/mnt/My Data") && x.s[1].readonly);
	CHECK(line(&r, &x, "{\"type\":\"shares\",\"shares\":[]}") == 0 && x.ns == 0);
	CHECK(line(&r, &x, "{\"type\":\"display-size\",\"width\":1280,\"height\":800}") == 0);
	CHECK(x.sizes == 1 && x.w == 1280 && x.h == 800);
	CHECK(line(&r, &x, "{\"type\":\"time-sync\",\"sec\":1700000000,\"nsec\":5}\r") == 0);
	CHECK(x.times == 1 && x.sec == 1700000000 && x.nsec == 5);
	CHECK(line(&r, &x, "{\"type\":\"from-the-future\"}") == 0);
	CHECK(line(&r, &x, "") == 0);
	memset(&x, 0, sizeof(x));
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		if (line(&r, &x, bad[i]) == 0)
			fprintf(stderr, "accepted: %s\n", bad[i]);
		CHECK(line(&r, &x, bad[i]) < 0);
	}
	CHECK(x.hellos == 0 && x.shares == 0 && x.sizes == 0 && x.times == 0);

	/* Framing: split anywhere, two in one, an over-long line dropped
	 * whole (with the line after it kept). */
	ga_reader_reset(&r);
	for (size_t i = 0; i < strlen(two); i++)
		ga_input(&r, two + i, 1, &acts, &x);
	CHECK(x.hellos == 1 && x.sizes == 1 && x.w == 800);
	memset(big, 'x', sizeof(big));
	ga_input(&r, big, sizeof(big), &acts, &x);
	ga_input(&r, big, sizeof(big), &acts, &x);
	ga_input(&r, "}\n", 2, &acts, &x);
	ga_input(&r, two, strlen(two), &acts, &x);
	CHECK(x.hellos == 2 && x.sizes == 2);

	CHECK(ga_path_ok("/mnt/a"));
	CHECK(ga_path_ok("/mnt/.hidden/..x"));
	CHECK(!ga_path_ok("/mnt/."));
	CHECK(!ga_path_ok("/mnt/./a"));
	CHECK(!ga_path_ok("/.."));
	CHECK(!ga_path_ok("/mnt/\x1b"));
}

/* ---- CVT ------------------------------------------------------------------------- */

static void test_cvt(void)
{
	/* The VESA CVT formula's results (as `cvt W H 60` prints them). */
	static const struct { unsigned w, h; struct ga_mode m; } v[] = {
		{ 1920, 1080, { 173000, 1920, 2048, 2248, 2576, 1080, 1083, 1088, 1120 } },
		{ 1024, 768, { 63500, 1024, 1072, 1176, 1328, 768, 771, 775, 798 } },
		{ 800, 600, { 38250, 800, 832, 912, 1024, 600, 603, 607, 624 } },
		{ 1280, 800, { 83500, 1280, 1352, 1480, 1680, 800, 803, 809, 831 } },
	};
	struct ga_mode m;

	for (size_t i = 0; i < G_N_ELEMENTS(v); i++) {
		CHECK(ga_cvt(v[i].w, v[i].h, 60, &m) == 0);
		CHECK(!memcmp(&m, &v[i].m, sizeof(m)));
		if (memcmp(&m, &v[i].m, sizeof(m)))
			fprintf(stderr, "%ux%u: %u %u %u %u %u %u %u %u %u\n", v[i].w, v[i].h,
				m.clock_khz, m.hdisp, m.hsync_start, m.hsync_end, m.htotal,
				m.vdisp, m.vsync_start, m.vsync_end, m.vtotal);
	}
	/* A window's odd size: a sane mode of exactly that size. */
	CHECK(ga_cvt(1277, 731, 60, &m) == 0);
	CHECK(m.hdisp == 1277 && m.vdisp == 731);
	CHECK(m.hdisp < m.hsync_start && m.hsync_start < m.hsync_end && m.hsync_end <= m.htotal);
	CHECK(m.vdisp < m.vsync_start && m.vsync_start < m.vsync_end && m.vsync_end <= m.vtotal);
	CHECK(m.vsync_end - m.vsync_start == 10);
	CHECK(ga_cvt(0, 600, 60, &m) < 0);
	CHECK(ga_cvt(800, 16385, 60, &m) < 0);
	CHECK(ga_cvt(800, 600, 0, &m) < 0);
	CHECK(ga_cvt(16384, 16384, 60, &m) == 0 && m.htotal > 16384);
}

/* ---- info ------------------------------------------------------------------------- */

static void test_sanitize_os_release(void)
{
	char out[16], path[] = "/tmp/test_additions_osrXXXXXX";
	char name[GA_OS_MAX + 1];
	int fd;

	ga_sanitize("a\x1b[2Jb\xff\xc2\x9b" "c\xc3\xa9", out, sizeof(out));
	CHECK(!strcmp(out, "a?[2Jb??c\xc3\xa9"));
	/* Cut at a character boundary. */
	ga_sanitize("abcd\xc3\xa9", out, 6);
	CHECK(!strcmp(out, "abcd"));
	fd = mkstemp(path);
	CHECK(fd >= 0);
	CHECK(dprintf(fd, "NAME=\"Plain\"\nID=x\nPRETTY_NAME=\"Fancy \\\"OS\\\" 1\"\n") > 0);
	close(fd);
	CHECK(ga_os_release_name(path, name, sizeof(name)) && !strcmp(name, "Fancy \"OS\" 1"));
	fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(dprintf(fd, "NAME='Only\x1bName'\n") > 0);
	close(fd);
	CHECK(ga_os_release_name(path, name, sizeof(name)) && !strcmp(name, "Only?Name"));
	fd = open(path, O_WRONLY | O_TRUNC);
	close(fd);
	CHECK(!ga_os_release_name(path, name, sizeof(name)));
	unlink(path);
}

struct hostpeer {
	int fd;
	unsigned infos;
};

static void hp_send(void *opaque, const void *buf, size_t len)
{
	struct hostpeer *p = opaque;

	if (p->fd >= 0)
		CHECK(write(p->fd, buf, len) == (ssize_t)len);
}

static void hp_info(void *opaque)
{
	((struct hostpeer *)opaque)->infos++;
}

static const struct additions_host_ops hp_ops = { hp_send, hp_info };

static void test_info_host_accepts(void)
{
	struct ga_info in;
	struct utsname u;
	char l[GA_LINE_MAX];
	size_t n;
	struct hostpeer p = { -1, 0 };
	struct additions_host *h = additions_host_new(&hp_ops, &p);
	const struct additions_info *hi;

	ga_info_gather(&in, NULL);
	CHECK(uname(&u) == 0 && !strcmp(in.kernel, u.release));
	for (unsigned i = 0; i < in.naddr; i++) {
		unsigned char a[16];

		CHECK(inet_pton(AF_INET, in.addr[i], a) == 1 || inet_pton(AF_INET6, in.addr[i], a) == 1);
		CHECK(strcmp(in.addr[i], "127.0.0.1") && strcmp(in.addr[i], "::1"));
	}
	n = ga_info_line(&in, l, sizeof(l));
	CHECK(n > 0 && l[n - 1] == '\n');
	/* The host side takes it as it is. */
	additions_host_input(h, l, n);
	hi = additions_host_info(h);
	CHECK(p.infos == 1 && hi);
	if (hi) {
		CHECK(!strcmp(hi->kernel, in.kernel) && !strcmp(hi->os, in.os));
		CHECK(!strcmp(hi->hostname, in.hostname) && hi->naddr == in.naddr);
		CHECK(!strcmp(hi->version, GA_VERSION));
	}
	/* A worst case: every field full of multi-byte characters and the
	 * most addresses still fits a line and passes. */
	memset(&in, 0, sizeof(in));
	for (unsigned i = 0; i + 2 < GA_OS_MAX; i += 2)
		strcat(in.os, "\xc3\xa9");
	for (unsigned i = 0; i < GA_ADDR_MAX; i++, in.naddr++)
		strcpy(in.addr[i], "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");
	n = ga_info_line(&in, l, sizeof(l));
	CHECK(n > 0);
	additions_host_input(h, l, n);
	CHECK(p.infos == 2);
	additions_host_free(h);
}

/* ---- the real agent against the host side ---------------------------------------------- */

static void test_agent_binary(void)
{
	int sv[2], errp[2];
	pid_t pid;
	char fdarg[16];
	posix_spawn_file_actions_t fa;
	struct hostpeer p;
	struct additions_host *h;
	struct additions_share sh[2] = {
		{ .tag = "src", .path = "/home/u/src" },
		{ .tag = "data", .path = "/mnt/data", .readonly = true },
	};
	GString *log = g_string_new(NULL);
	gint64 deadline;
	int status = -1;
	bool sent_time = false;

	if (!agent_path || access(agent_path, X_OK) != 0)
		SKIP("the static agent was not built here");
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHECK(pipe2(errp, O_CLOEXEC) == 0);
	fcntl(sv[0], F_SETFD, FD_CLOEXEC);
	snprintf(fdarg, sizeof(fdarg), "%d", sv[1]);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
	{
		char *argv[] = { (char *)agent_path, "--dry-run", "--fd", fdarg, NULL };

		CHECK(posix_spawn(&pid, agent_path, &fa, NULL, argv, environ) == 0);
	}
	posix_spawn_file_actions_destroy(&fa);
	close(sv[1]);
	close(errp[1]);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(errp[0], F_SETFL, O_NONBLOCK);

	p.fd = sv[0];
	p.infos = 0;
	h = additions_host_new(&hp_ops, &p);
	additions_host_set_shares(h, sh, 2);
	additions_host_display_size(h, 1024, 768);
	/* The port opens: the host greets; the agent says hello and info. */
	additions_host_reset(h, true);
	deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
	while (g_get_monotonic_time() < deadline) {
		struct pollfd pf[2] = { { sv[0], POLLIN, 0 }, { errp[0], POLLIN, 0 } };
		char buf[4096];
		ssize_t n;

		poll(pf, 2, 100);
		while ((n = read(sv[0], buf, sizeof(buf))) > 0)
			additions_host_input(h, buf, (size_t)n);
		while ((n = read(errp[0], buf, sizeof(buf))) > 0)
			g_string_append_len(log, buf, n);
		if (additions_host_connected(h) && p.infos && !sent_time) {
			CHECK(additions_host_time_sync(h, g_get_real_time()) == 0);
			sent_time = true;
		}
		if (sent_time && strstr(log->str, "would set the clock") &&
		    strstr(log->str, "would mount share data"))
			break;
	}
	CHECK(additions_host_connected(h));
	CHECK(p.infos >= 1);
	CHECK(additions_host_info(h) && !strcmp(additions_host_info(h)->version, GA_VERSION));
	CHECK(strstr(log->str, "would mount share src at /home/u/src (9p, read-write)") != NULL);
	CHECK(strstr(log->str, "would mount share data at /mnt/data (9p, read-only)") != NULL);
	CHECK(strstr(log->str, "1024x768") != NULL);
	CHECK(strstr(log->str, "would set the clock") != NULL);
	/* A display size while connected reaches it too. */
	CHECK(additions_host_display_size(h, 800, 600) == 0);
	deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
	while (!strstr(log->str, "800x600") && g_get_monotonic_time() < deadline) {
		struct pollfd pf = { errp[0], POLLIN, 0 };
		char buf[4096];
		ssize_t n;

		poll(&pf, 1, 100);
		while ((n = read(errp[0], buf, sizeof(buf))) > 0)
			g_string_append_len(log, buf, n);
	}
	CHECK(strstr(log->str, "800x600") != NULL);
	/* Hostile bytes from the host side do not stop it. */
	p.fd = -1;
	{
		static const char hostile[] =
			"{\"type\":\"shares\",\"shares\":[{\"tag\":\"x\",\"path\":\"/..\"}]}\n";

		CHECK(write(sv[0], hostile, strlen(hostile)) == (ssize_t)strlen(hostile));
	}
	/* The host end closes: the agent (on --fd) ends, status 0. */
	close(sv[0]);
	deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
	while (waitpid(pid, &status, WNOHANG) == 0 && g_get_monotonic_time() < deadline)
		g_usleep(20000);
	if (!WIFEXITED(status)) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		CHECK(!"the agent did not end when its peer closed");
	} else {
		CHECK(WEXITSTATUS(status) == 0);
	}
	{
		char buf[4096];
		ssize_t n;

		while ((n = read(errp[0], buf, sizeof(buf))) > 0)
			g_string_append_len(log, buf, n);
	}
	CHECK(strstr(log->str, "malformed line(s) from the host ignored") != NULL);
	if (!strstr(log->str, "malformed"))
		fprintf(stderr, "agent log:\n%s", log->str);
	close(errp[0]);
	additions_host_free(h);
	g_string_free(log, TRUE);
}

int main(int argc, char **argv)
{
	log_set_level(LOG_ERROR);
	agent_path = argc > 1 ? argv[1] : NULL;
	RUN_TEST(test_json);
	RUN_TEST(test_json_write);
	RUN_TEST(test_dispatch);
	RUN_TEST(test_cvt);
	RUN_TEST(test_sanitize_os_release);
	RUN_TEST(test_info_host_accepts);
	RUN_TEST(test_agent_binary);
	return check_finish();
}
