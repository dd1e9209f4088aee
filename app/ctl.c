/* SPDX-License-Identifier: MIT */
/* app/ctl.c - the client side of a VM's control socket. */
#define _GNU_SOURCE
#include "ctl.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vmlib.h"

#define CTL_LINE_MAX	(1u << 20)

struct ctl_conn {
	int fd;
	unsigned next_id;
	GString *in;		/* bytes received, not yet consumed */
};

int ctl_connect(const char *name, struct ctl_conn **out, char *err,
		size_t errlen)
{
	g_autofree char *path = vmlib_socket_path(name, err, errlen);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ctl_conn *c;
	int fd;

	*out = NULL;
	if (!path)
		return -EINVAL;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		snprintf(err, errlen, "VM '%s' is not running (%s: %s)", name, path,
			 strerror(e));
		return -e;
	}
	c = g_new0(struct ctl_conn, 1);
	c->fd = fd;
	c->next_id = 1;
	c->in = g_string_new(NULL);
	*out = c;
	return 0;
}

void ctl_close(struct ctl_conn *c)
{
	if (!c)
		return;
	close(c->fd);
	g_string_free(c->in, TRUE);
	g_free(c);
}

int ctl_fd(const struct ctl_conn *c)
{
	return c->fd;
}

const char *ctl_pending(struct ctl_conn *c, size_t *len)
{
	*len = c->in->len;
	return c->in->str;
}

void ctl_pending_clear(struct ctl_conn *c)
{
	g_string_truncate(c->in, 0);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -ECONNRESET;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read more into c->in before @deadline (ms).  0, -ETIMEDOUT, -ECONNRESET
 * (closed). */
static int fill(struct ctl_conn *c, long long deadline)
{
	char buf[4096];

	for (;;) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		long long left = deadline - now_ms();
		ssize_t n;
		int r;

		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			return -ETIMEDOUT;
		n = recv(c->fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -ECONNRESET;
		g_string_append_len(c->in, buf, n);
		return 0;
	}
}

/* Take one line (without its newline) off c->in, or NULL. */
static char *take_line(struct ctl_conn *c)
{
	char *nl = memchr(c->in->str, '\n', c->in->len);
	char *line;

	if (!nl)
		return NULL;
	line = g_strndup(c->in->str, (gsize)(nl - c->in->str));
	g_string_erase(c->in, 0, nl - c->in->str + 1);
	return line;
}

/* @text and a newline, with @fd (if >= 0) attached to its first byte. */
static int send_line(int sock, const char *text, int fd)
{
	size_t len = strlen(text);
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov[2] = {
		{ .iov_base = (void *)text, .iov_len = len },
		{ .iov_base = (void *)"\n", .iov_len = 1 },
	};
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
	ssize_t n;

	if (fd < 0)
		return send_all(sock, text, len) < 0 || send_all(sock, "\n", 1) < 0 ?
		       -ECONNRESET : 0;
	memset(&u, 0, sizeof(u));
	m.msg_control = u.buf;
	m.msg_controllen = sizeof(u.buf);
	CMSG_FIRSTHDR(&m)->cmsg_level = SOL_SOCKET;
	CMSG_FIRSTHDR(&m)->cmsg_type = SCM_RIGHTS;
	CMSG_FIRSTHDR(&m)->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(CMSG_FIRSTHDR(&m)), &fd, sizeof(int));
	do
		n = sendmsg(sock, &m, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -ECONNRESET;
	/* The rest, if the socket took only part of it. */
	if ((size_t)n > len)
		return 0;
	if ((size_t)n < len && send_all(sock, text + n, len - (size_t)n) < 0)
		return -ECONNRESET;
	return send_all(sock, "\n", 1) < 0 ? -ECONNRESET : 0;
}

int ctl_call(struct ctl_conn *c, const char *cmd, JsonObject *args,
	     int timeout_ms, JsonNode **result, char *err, size_t errlen)
{
	return ctl_call_fd(c, cmd, args, -1, timeout_ms, result, err, errlen);
}

int ctl_call_fd(struct ctl_conn *c, const char *cmd, JsonObject *args, int fd,
		int timeout_ms, JsonNode **result, char *err, size_t errlen)
{
	long long deadline = now_ms() + timeout_ms;
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonGenerator) gen = json_generator_new();
	g_autoptr(JsonNode) root = NULL;
	g_autofree char *text = NULL;
	unsigned id = c->next_id++;
	int r;

	if (result)
		*result = NULL;
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "id");
	json_builder_add_int_value(b, id);
	json_builder_set_member_name(b, "cmd");
	json_builder_add_string_value(b, cmd);
	if (args) {
		JsonObjectIter it;
		const char *k;
		JsonNode *v;

		json_object_iter_init(&it, args);
		while (json_object_iter_next(&it, &k, &v)) {
			json_builder_set_member_name(b, k);
			json_builder_add_value(b, json_node_copy(v));
		}
	}
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	json_generator_set_root(gen, root);
	text = json_generator_to_data(gen, NULL);
	if (send_line(c->fd, text, fd) < 0) {
		snprintf(err, errlen, "the VM closed its control connection");
		return -ECONNRESET;
	}
	for (;;) {
		g_autofree char *line = take_line(c);
		g_autoptr(JsonParser) p = NULL;
		JsonObject *o;

		if (!line) {
			if (c->in->len > CTL_LINE_MAX) {
				snprintf(err, errlen, "reply line too long");
				return -EPROTO;
			}
			r = fill(c, deadline);
			if (r == -ETIMEDOUT) {
				snprintf(err, errlen, "the VM did not answer '%s' within %d s",
					 cmd, timeout_ms / 1000);
				return r;
			}
			if (r < 0) {
				snprintf(err, errlen, "the VM closed its control connection");
				return r;
			}
			continue;
		}
		p = json_parser_new();
		if (!json_parser_load_from_data(p, line, -1, NULL) ||
		    !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(p))) {
			snprintf(err, errlen, "the VM sent a line that is not a JSON object");
			return -EPROTO;
		}
		o = json_node_get_object(json_parser_get_root(p));
		/* A refusal of the connection itself carries no id. */
		if (!json_object_has_member(o, "id") && json_object_has_member(o, "ok") &&
		    !json_object_get_boolean_member_with_default(o, "ok", FALSE)) {
			snprintf(err, errlen, "%s",
				 json_object_get_string_member_with_default(o, "error",
									    "the VM refused"));
			return -EREMOTEIO;
		}
		if (json_object_has_member(o, "event") ||
		    !json_object_has_member(o, "id") ||
		    json_object_get_int_member(o, "id") != id)
			continue;
		if (!json_object_get_boolean_member_with_default(o, "ok", FALSE)) {
			snprintf(err, errlen, "%s",
				 json_object_get_string_member_with_default(o, "error",
									    "the VM refused"));
			return -EREMOTEIO;
		}
		if (result && json_object_has_member(o, "result"))
			*result = json_node_copy(json_object_get_member(o, "result"));
		return 0;
	}
}

int ctl_wait_closed(struct ctl_conn *c, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;

	for (;;) {
		int r = fill(c, deadline);

		g_string_truncate(c->in, 0);
		if (r == -ECONNRESET)
			return 0;
		if (r == -ETIMEDOUT)
			return r;
	}
}

int ctl_simple(const char *name, const char *cmd, JsonObject *args,
	       int timeout_ms, JsonNode **result, char *err, size_t errlen)
{
	struct ctl_conn *c;
	int r = ctl_connect(name, &c, err, errlen);

	if (r < 0)
		return r;
	r = ctl_call(c, cmd, args, timeout_ms, result, err, errlen);
	ctl_close(c);
	return r;
}
