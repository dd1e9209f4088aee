/* SPDX-License-Identifier: MIT */
/*
 * The QEMU guest agent client.  See qga.h.
 */
#include "qga.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "log.h"

struct qga {
	const struct qga_transport *t;
	void *opaque;
	bool connected;
	bool seek_delim;		/* dropping bytes up to an 0xFF */
	gint64 sync_id;			/* awaited sync id; 0: none */
	GString *line;
	bool overlong;			/* the current line is dropped */
	bool awaiting;			/* a command's reply */
	JsonNode *reply;		/* its object */
};

struct qga *qga_new(const struct qga_transport *t, void *opaque)
{
	struct qga *q = g_new0(struct qga, 1);

	q->t = t;
	q->opaque = opaque;
	q->line = g_string_new(NULL);
	return q;
}

static void clear_reply(struct qga *q)
{
	if (q->reply)
		json_node_unref(q->reply);
	q->reply = NULL;
	q->awaiting = false;
}

void qga_free(struct qga *q)
{
	if (!q)
		return;
	clear_reply(q);
	g_string_free(q->line, TRUE);
	g_free(q);
}

void qga_reset(struct qga *q)
{
	q->connected = false;
	q->seek_delim = false;
	q->sync_id = 0;
	g_string_truncate(q->line, 0);
	q->overlong = false;
	clear_reply(q);
}

bool qga_connected(const struct qga *q)
{
	return q->connected;
}

static void process_line(struct qga *q)
{
	g_autoptr(JsonParser) p = json_parser_new();
	JsonNode *root;
	JsonObject *o;

	if (!json_parser_load_from_data(p, q->line->str, (gssize)q->line->len,
					NULL))
		return;
	root = json_parser_get_root(p);
	if (!root || !JSON_NODE_HOLDS_OBJECT(root))
		return;
	o = json_node_get_object(root);
	if (q->sync_id) {
		JsonNode *r = json_object_get_member(o, "return");

		if (r && JSON_NODE_HOLDS_VALUE(r) &&
		    json_node_get_value_type(r) == G_TYPE_INT64 &&
		    json_node_get_int(r) == q->sync_id) {
			q->sync_id = 0;
			q->connected = true;
		}
		return;			/* anything else: stale */
	}
	if (q->awaiting && !q->reply &&
	    (json_object_has_member(o, "return") ||
	     json_object_has_member(o, "error")))
		q->reply = json_node_copy(root);
}

static void feed(struct qga *q, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (b[i] == 0xff) {
			/* The delimiter of a sync reply. */
			q->seek_delim = false;
			g_string_truncate(q->line, 0);
			q->overlong = false;
			continue;
		}
		if (q->seek_delim)
			continue;
		if (b[i] == '\n') {
			if (!q->overlong && q->line->len)
				process_line(q);
			g_string_truncate(q->line, 0);
			q->overlong = false;
		} else if (q->line->len >= QGA_LINE_MAX) {
			if (!q->overlong)
				vlog_ratelimited(LOG_WARN, "guest agent: reply line over %u bytes dropped",
						 QGA_LINE_MAX);
			q->overlong = true;
		} else if (!q->overlong) {
			g_string_append_c(q->line, (char)b[i]);
		}
	}
}

void qga_poll(struct qga *q)
{
	uint8_t buf[4096];
	size_t n;
	unsigned rounds = 0;

	/* Bounded: what waits now, at most 1 MiB a call. */
	while (rounds++ < 256 && (n = q->t->read(q->opaque, buf, sizeof(buf))))
		feed(q, buf, n);
}

static int send_all(struct qga *q, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = q->t->write(q->opaque, p, len);

		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EAGAIN;	/* the port's buffer is full */
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_cmd(struct qga *q, const char *cmd, JsonObject *args)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonGenerator) g = json_generator_new();
	g_autoptr(JsonNode) root = NULL;
	g_autofree char *s = NULL;
	GString *line;
	int r;

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "execute");
	json_builder_add_string_value(b, cmd);
	if (args) {
		json_builder_set_member_name(b, "arguments");
		json_builder_add_value(b, json_node_init_object(json_node_alloc(), args));
	}
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	json_generator_set_root(g, root);
	s = json_generator_to_data(g, NULL);
	line = g_string_new(s);
	g_string_append_c(line, '\n');
	r = send_all(q, line->str, line->len);
	g_string_free(line, TRUE);
	return r;
}

int qga_sync_start(struct qga *q)
{
	g_autoptr(JsonObject) args = json_object_new();
	static const uint8_t ff = 0xff;
	int r;

	clear_reply(q);
	q->connected = false;
	q->sync_id = g_random_int_range(1, G_MAXINT32);
	q->seek_delim = true;
	g_string_truncate(q->line, 0);
	json_object_set_int_member(args, "id", q->sync_id);
	r = send_all(q, &ff, 1);
	if (r == 0)
		r = send_cmd(q, "guest-sync-delimited", args);
	if (r < 0)
		q->sync_id = 0;
	return r;
}

/* Wait until @done(q) or @deadline (g_get_monotonic_time() us). */
static int wait_for(struct qga *q, bool (*done)(struct qga *), gint64 deadline)
{
	for (;;) {
		gint64 left;

		qga_poll(q);
		if (done(q))
			return 0;
		left = deadline - g_get_monotonic_time();
		if (left <= 0)
			return -ETIMEDOUT;
		q->t->wait(q->opaque, (int)((left + 999) / 1000));
	}
}

static bool is_synced(struct qga *q)
{
	return q->connected;
}

static bool has_reply(struct qga *q)
{
	return q->reply != NULL;
}

static int sync_until(struct qga *q, gint64 deadline)
{
	int r = qga_sync_start(q);

	if (r < 0)
		return r;
	r = wait_for(q, is_synced, deadline);
	if (r < 0) {
		q->sync_id = 0;
		vlog(LOG_WARN, "guest agent: no answer to guest-sync-delimited");
	}
	return r;
}

int qga_sync(struct qga *q, int timeout_ms)
{
	return sync_until(q, g_get_monotonic_time() + (gint64)timeout_ms * 1000);
}

/* exec, where a timeout with @silence_ok counts as success (a command the
 * agent does not answer on success). */
static int exec(struct qga *q, const char *cmd, JsonObject *args,
		int timeout_ms, bool silence_ok, JsonNode **ret, char *err,
		size_t errlen)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
	JsonObject *o;
	int r;

	if (ret)
		*ret = NULL;
	if (!q->connected) {
		r = sync_until(q, deadline);
		if (r < 0) {
			snprintf(err, errlen, "the guest agent does not answer");
			return r;
		}
	}
	clear_reply(q);
	r = send_cmd(q, cmd, args);
	if (r < 0) {
		snprintf(err, errlen, "cannot write to the guest agent's port: %s",
			 strerror(-r));
		q->connected = false;
		return r;
	}
	q->awaiting = true;
	r = wait_for(q, has_reply, deadline);
	if (r < 0) {
		clear_reply(q);
		q->connected = false;
		if (silence_ok)
			return 0;
		vlog(LOG_WARN, "guest agent: no answer to %s within %d ms", cmd,
		     timeout_ms);
		snprintf(err, errlen, "the guest agent did not answer %s within %d ms",
			 cmd, timeout_ms);
		return r;
	}
	o = json_node_get_object(q->reply);
	if (json_object_has_member(o, "error")) {
		JsonNode *e = json_object_get_member(o, "error");
		const char *desc = NULL;

		if (JSON_NODE_HOLDS_OBJECT(e))
			desc = json_object_get_string_member_with_default(
				json_node_get_object(e), "desc", NULL);
		snprintf(err, errlen, "%s: %s", cmd, desc ? desc : "error");
		clear_reply(q);
		return -EREMOTEIO;
	}
	if (ret)
		*ret = json_node_copy(json_object_get_member(o, "return"));
	clear_reply(q);
	return 0;
}

int qga_exec(struct qga *q, const char *cmd, JsonObject *args, int timeout_ms,
	     JsonNode **ret, char *err, size_t errlen)
{
	return exec(q, cmd, args, timeout_ms, false, ret, err, errlen);
}

int qga_ping(struct qga *q, int timeout_ms, char *err, size_t errlen)
{
	return exec(q, "guest-ping", NULL, timeout_ms, false, NULL, err, errlen);
}

int qga_shutdown(struct qga *q, int timeout_ms, char *err, size_t errlen)
{
	g_autoptr(JsonObject) args = json_object_new();

	json_object_set_string_member(args, "mode", "powerdown");
	return exec(q, "guest-shutdown", args, timeout_ms, true, NULL, err,
		    errlen);
}

int qga_fsfreeze(struct qga *q, bool freeze, int timeout_ms, int *count,
		 char *err, size_t errlen)
{
	JsonNode *ret = NULL;
	int r = exec(q, freeze ? "guest-fsfreeze-freeze" : "guest-fsfreeze-thaw",
		     NULL, timeout_ms, false, &ret, err, errlen);

	if (r == 0 && count)
		*count = ret && JSON_NODE_HOLDS_VALUE(ret) ?
			 (int)json_node_get_int(ret) : 0;
	if (ret)
		json_node_unref(ret);
	return r;
}

int qga_set_time(struct qga *q, int64_t ns, int timeout_ms, char *err,
		 size_t errlen)
{
	g_autoptr(JsonObject) args = json_object_new();

	json_object_set_int_member(args, "time", ns);
	return exec(q, "guest-set-time", args, timeout_ms, false, NULL, err,
		    errlen);
}
