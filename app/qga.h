/* SPDX-License-Identifier: MIT */
/*
 * app/qga.h - a client of the QEMU guest agent (qemu-guest-agent, on the
 * virtio-serial port org.qemu.guest_agent.0): JSON objects, one per line,
 * {"execute": CMD, "arguments": {...}} answered by {"return": ...} or
 * {"error": {"class": ..., "desc": ...}}.
 *
 * Synchronisation: the agent may hold a half-read request or unread
 * replies from an earlier client.  qga_sync_start() sends the 0xFF byte
 * (the agent's parser resets on it) and guest-sync-delimited with a fresh
 * id; the agent answers 0xFF then {"return": id}.  Everything before the
 * 0xFF and replies with another id are dropped.  Once the id comes back
 * the agent counts as connected; a command that times out disconnects it
 * (its late reply would be taken for the next one's), so the next command
 * synchronises again first.
 *
 * Every call is bounded by its timeout: an agent that never answers costs
 * that wait and a log line.  Commands block the calling thread (the
 * VM process's main loop) while they wait.
 *
 * The bytes travel through a struct qga_transport: the port's host side
 * in the VM process (vcon_port_*), a socket in the tests.  Not
 * thread-safe: one thread drives a struct qga.
 */
#ifndef VIVARIUM_QGA_H
#define VIVARIUM_QGA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-glib/json-glib.h>

struct qga;

struct qga_transport {
	/* Send @len bytes; returns the count taken or -errno. */
	ssize_t (*write)(void *opaque, const void *buf, size_t len);
	/* Take up to @len bytes waiting now (0: none); never blocks. */
	size_t (*read)(void *opaque, void *buf, size_t len);
	/* Wait up to @timeout_ms for bytes; > 0 when some wait. */
	int (*wait)(void *opaque, int timeout_ms);
};

#define QGA_LINE_MAX		(64u << 10)	/* longer replies are dropped */
#define QGA_SYNC_TIMEOUT_MS	1000
#define QGA_CMD_TIMEOUT_MS	2000
#define QGA_FREEZE_TIMEOUT_MS	10000

/* NULL on allocation failure. */
struct qga *qga_new(const struct qga_transport *t, void *opaque);
void qga_free(struct qga *q);

/* The port was closed or opened: disconnected, input forgotten. */
void qga_reset(struct qga *q);
bool qga_connected(const struct qga *q);

/* Send the 0xFF and guest-sync-delimited; the reply is taken by
 * qga_poll() or the next blocking call.  0 or -errno (the write). */
int qga_sync_start(struct qga *q);
/* Take the bytes waiting now (a sync reply sets connected).  Never
 * blocks. */
void qga_poll(struct qga *q);

/*
 * qga_sync - qga_sync_start() and wait up to @timeout_ms for the answer.
 * 0 (connected), -ETIMEDOUT.
 */
int qga_sync(struct qga *q, int timeout_ms);

/*
 * qga_exec - run @cmd with @args (NULL: none; not consumed) and wait up to
 * @timeout_ms for the reply (synchronising first if not connected, within
 * the same time).  0 with *@ret (the "return" value; json_node_unref it;
 * @ret may be NULL), -EREMOTEIO with the agent's "desc" in @err,
 * -ETIMEDOUT (disconnected: the next call synchronises), -EPIPE (the port
 * is closed), -EPROTO.
 */
int qga_exec(struct qga *q, const char *cmd, JsonObject *args, int timeout_ms,
	     JsonNode **ret, char *err, size_t errlen);

/* guest-ping.  As qga_exec(). */
int qga_ping(struct qga *q, int timeout_ms, char *err, size_t errlen);
/*
 * guest-shutdown {"mode": "powerdown"}: the agent does not answer on
 * success, so this waits @timeout_ms for an error and returns 0 without
 * one (the guest is shutting down), -EREMOTEIO with it.
 */
int qga_shutdown(struct qga *q, int timeout_ms, char *err, size_t errlen);
/* guest-fsfreeze-freeze / -thaw: *@count (may be NULL) file systems. */
int qga_fsfreeze(struct qga *q, bool freeze, int timeout_ms, int *count,
		 char *err, size_t errlen);
/* guest-set-time {"time": @ns} (ns since the Unix epoch). */
int qga_set_time(struct qga *q, int64_t ns, int timeout_ms, char *err,
		 size_t errlen);

#endif
