/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_qga.c - the guest agent client (app/qga.c) against a
 * guest agent written here from qemu-guest-agent's protocol, on the other
 * end of a socketpair and its own thread: it resets its parser on 0xFF,
 * answers guest-sync-delimited with 0xFF + {"return": id}, guest-ping,
 * guest-fsfreeze-freeze/thaw (refusing a second freeze as the real agent
 * does), guest-set-time, guest-get-time, guest-info, stays silent on
 * guest-shutdown, and can be told to send stale replies first, to answer
 * late, or never to answer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "check.h"
#include "log.h"
#include "qga.h"

/* ---- the agent ------------------------------------------------------------ */

struct agent {
	int fd;
	pthread_t thread;
	atomic_bool stop;
	atomic_int silent;		/* answer nothing */
	atomic_int stale_first;		/* junk and a stale reply before syncs */
	atomic_int delay_info_ms;	/* guest-info answers late */
	atomic_int frozen, shutdowns, syncs;
	atomic_llong set_time;
};

static void agent_send(struct agent *a, const char *s)
{
	size_t n = strlen(s);

	if (write(a->fd, s, n) != (ssize_t)n)
		return;
}

static void agent_line(struct agent *a, const char *line)
{
	g_autoptr(JsonParser) p = json_parser_new();
	JsonObject *o, *args = NULL;
	const char *cmd;
	char buf[256];

	if (!json_parser_load_from_data(p, line, -1, NULL) ||
	    !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(p))) {
		agent_send(a, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"Invalid JSON syntax\"}}\n");
		return;
	}
	o = json_node_get_object(json_parser_get_root(p));
	cmd = json_object_get_string_member_with_default(o, "execute", "");
	if (json_object_has_member(o, "arguments"))
		args = json_object_get_object_member(o, "arguments");
	if (a->silent)
		return;
	if (!strcmp(cmd, "guest-sync-delimited")) {
		a->syncs++;
		if (a->stale_first) {
			agent_send(a, "{\"return\": 424242}\n{\"ret");
			agent_send(a, "\xff{\"return\": 7}\n");	/* another id */
		}
		snprintf(buf, sizeof(buf), "\xff{\"return\": %lld}\n",
			 (long long)json_object_get_int_member(args, "id"));
		agent_send(a, buf);
	} else if (!strcmp(cmd, "guest-ping")) {
		agent_send(a, "{\"return\": {}}\n");
	} else if (!strcmp(cmd, "guest-fsfreeze-freeze")) {
		if (a->frozen) {
			agent_send(a, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"Command guest-fsfreeze-freeze has been disabled: the agent is in frozen state\"}}\n");
			return;
		}
		a->frozen = 1;
		agent_send(a, "{\"return\": 3}\n");
	} else if (!strcmp(cmd, "guest-fsfreeze-thaw")) {
		a->frozen = 0;
		agent_send(a, "{\"return\": 3}\n");
	} else if (!strcmp(cmd, "guest-set-time")) {
		a->set_time = json_object_get_int_member(args, "time");
		agent_send(a, "{\"return\": {}}\n");
	} else if (!strcmp(cmd, "guest-get-time")) {
		agent_send(a, "{\"return\": 1234567890123456789}\n");
	} else if (!strcmp(cmd, "guest-info")) {
		if (a->delay_info_ms)
			usleep((useconds_t)a->delay_info_ms * 1000);
		agent_send(a, "{\"return\": {\"version\": \"7.2.0\"}}\n");
	} else if (!strcmp(cmd, "guest-shutdown")) {
		a->shutdowns++;			/* no reply on success */
	} else {
		snprintf(buf, sizeof(buf), "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command %s has not been found\"}}\n",
			 cmd);
		agent_send(a, buf);
	}
}

static void *agent_main(void *opaque)
{
	struct agent *a = opaque;
	GString *line = g_string_new(NULL);

	while (!a->stop) {
		struct pollfd pfd = { a->fd, POLLIN, 0 };
		char buf[512];
		ssize_t n;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		n = read(a->fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			if ((uint8_t)buf[i] == 0xff)
				g_string_truncate(line, 0);	/* parser reset */
			else if (buf[i] == '\n') {
				agent_line(a, line->str);
				g_string_truncate(line, 0);
			} else
				g_string_append_c(line, buf[i]);
		}
	}
	g_string_free(line, TRUE);
	return NULL;
}

/* ---- the client's transport: a socket ------------------------------------ */

static ssize_t sock_write(void *o, const void *buf, size_t len)
{
	ssize_t n = send(*(int *)o, buf, len, MSG_NOSIGNAL);

	return n < 0 ? -errno : n;
}

static size_t sock_read(void *o, void *buf, size_t len)
{
	ssize_t n = recv(*(int *)o, buf, len, MSG_DONTWAIT);

	return n > 0 ? (size_t)n : 0;
}

static int sock_wait(void *o, int ms)
{
	struct pollfd pfd = { *(int *)o, POLLIN, 0 };

	return poll(&pfd, 1, ms);
}

static const struct qga_transport sock_transport = {
	sock_write, sock_read, sock_wait,
};

static struct agent ag;
static int cfd;
static struct qga *q;

static void start(void)
{
	int sv[2];

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	memset(&ag, 0, sizeof(ag));
	ag.fd = sv[1];
	cfd = sv[0];
	CHECK(pthread_create(&ag.thread, NULL, agent_main, &ag) == 0);
	q = qga_new(&sock_transport, &cfd);
}

static void finish(void)
{
	ag.stop = true;
	pthread_join(ag.thread, NULL);
	close(ag.fd);
	close(cfd);
	qga_free(q);
}

/* ---- tests ----------------------------------------------------------------- */

static void test_sync_and_commands(void)
{
	char err[256] = "";
	JsonNode *ret = NULL;
	int count = 0;

	start();
	CHECK(!qga_connected(q));
	CHECK_EQ(qga_sync(q, 2000), 0);
	CHECK(qga_connected(q));
	CHECK_EQ(qga_ping(q, 2000, err, sizeof(err)), 0);
	CHECK_EQ(qga_fsfreeze(q, true, 2000, &count, err, sizeof(err)), 0);
	CHECK_EQ(count, 3);
	CHECK(ag.frozen);
	CHECK_EQ(qga_fsfreeze(q, true, 2000, &count, err, sizeof(err)), -EREMOTEIO);
	CHECK(strstr(err, "frozen state") != NULL);
	CHECK(qga_connected(q));		/* an error is an answer */
	CHECK_EQ(qga_fsfreeze(q, false, 2000, &count, err, sizeof(err)), 0);
	CHECK(!ag.frozen);
	CHECK_EQ(qga_set_time(q, 1700000000123456789ll, 2000, err, sizeof(err)), 0);
	CHECK_EQ(ag.set_time, 1700000000123456789ll);
	CHECK_EQ(qga_exec(q, "guest-get-time", NULL, 2000, &ret, err, sizeof(err)), 0);
	CHECK(ret && json_node_get_int(ret) == 1234567890123456789ll);
	if (ret)
		json_node_unref(ret);
	CHECK_EQ(qga_exec(q, "no-such", NULL, 2000, NULL, err, sizeof(err)), -EREMOTEIO);
	CHECK(strstr(err, "has not been found") != NULL);
	CHECK_EQ(ag.syncs, 1);
	CHECK_EQ(qga_shutdown(q, 300, err, sizeof(err)), 0);
	CHECK_EQ(ag.shutdowns, 1);
	finish();
}

static void test_stale_bytes_before_sync(void)
{
	char err[256];

	start();
	ag.stale_first = 1;
	/* Junk, a stale reply and a sync reply with another id come first. */
	CHECK_EQ(qga_ping(q, 2000, err, sizeof(err)), 0);
	CHECK(qga_connected(q));
	CHECK_EQ(ag.syncs, 1);
	finish();
}

static void test_silent_agent(void)
{
	char err[256] = "";
	gint64 t0;

	start();
	ag.silent = 1;
	t0 = g_get_monotonic_time();
	CHECK_EQ(qga_sync(q, 200), -ETIMEDOUT);
	CHECK_EQ(qga_ping(q, 300, err, sizeof(err)), -ETIMEDOUT);
	CHECK(strstr(err, "does not answer") != NULL);
	CHECK_EQ(qga_fsfreeze(q, true, 300, NULL, err, sizeof(err)), -ETIMEDOUT);
	/* Bounded: three waits of 0.2-0.3 s. */
	CHECK(g_get_monotonic_time() - t0 < 2 * G_USEC_PER_SEC);
	CHECK(!qga_connected(q));
	/* The agent comes back: the next call synchronises. */
	ag.silent = 0;
	CHECK_EQ(qga_ping(q, 2000, err, sizeof(err)), 0);
	CHECK(qga_connected(q));
	finish();
}

static void test_late_reply_not_taken(void)
{
	char err[256] = "";
	JsonNode *ret = NULL;

	start();
	CHECK_EQ(qga_sync(q, 2000), 0);
	ag.delay_info_ms = 500;
	CHECK_EQ(qga_exec(q, "guest-info", NULL, 200, &ret, err, sizeof(err)), -ETIMEDOUT);
	CHECK(ret == NULL);
	CHECK(!qga_connected(q));
	/* The late {"version"} reply must not become get-time's answer. */
	CHECK_EQ(qga_exec(q, "guest-get-time", NULL, 3000, &ret, err, sizeof(err)), 0);
	CHECK(ret && JSON_NODE_HOLDS_VALUE(ret) &&
	      json_node_get_int(ret) == 1234567890123456789ll);
	if (ret)
		json_node_unref(ret);
	CHECK_EQ(ag.syncs, 2);
	finish();
}

static void test_overlong_line_and_closed_port(void)
{
	char err[256] = "";
	GString *junk = g_string_new(NULL);

	start();
	CHECK_EQ(qga_sync(q, 2000), 0);
	/* A 100 KiB line the client must drop, then a normal exchange. */
	for (unsigned i = 0; i < 100000; i++)
		g_string_append_c(junk, 'x');
	g_string_append_c(junk, '\n');
	agent_send(&ag, junk->str);
	g_string_free(junk, TRUE);
	CHECK_EQ(qga_ping(q, 2000, err, sizeof(err)), 0);
	qga_reset(q);
	CHECK(!qga_connected(q));
	/* The guest's end goes away: writes fail at once. */
	ag.stop = true;
	pthread_join(ag.thread, NULL);
	close(ag.fd);
	CHECK(qga_ping(q, 500, err, sizeof(err)) < 0);
	close(cfd);
	qga_free(q);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	RUN_TEST(test_sync_and_commands);
	RUN_TEST(test_stale_bytes_before_sync);
	RUN_TEST(test_silent_agent);
	RUN_TEST(test_late_reply_not_taken);
	RUN_TEST(test_overlong_line_and_closed_port);
	return check_finish();
}
