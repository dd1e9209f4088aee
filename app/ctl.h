/* SPDX-License-Identifier: MIT */
/*
 * app/ctl.h - the client side of a VM's control socket (protocol in
 * docs/control-protocol.md): JSON objects, one per line, over a Unix
 * stream socket.  A request {"id": N, "cmd": "..."} gets one reply
 * {"id": N, "ok": true, "result": {...}} or {"id": N, "ok": false,
 * "error": "..."}; lines with "event" are events and are skipped here.
 */
#ifndef VIVARIUM_CTL_H
#define VIVARIUM_CTL_H

#include <stddef.h>

#include <json-glib/json-glib.h>

struct ctl_conn;

/* Connect to running VM @name.  -ENOENT/-ECONNREFUSED (+ @err) if it does
 * not run. */
int ctl_connect(const char *name, struct ctl_conn **out, char *err,
		size_t errlen);
void ctl_close(struct ctl_conn *c);
int ctl_fd(const struct ctl_conn *c);

/*
 * ctl_call - send {"id", "cmd": @cmd, ...@args' members} (@args may be
 * NULL; it is not consumed) and wait at most @timeout_ms for the reply.
 * Returns 0 with *@result (the "result" object, or NULL; json_node_unref
 * it) on "ok": true; -EREMOTEIO with @err = the VM's "error" text;
 * -ETIMEDOUT, -ECONNRESET (the VM went away) or -EPROTO otherwise.
 */
int ctl_call(struct ctl_conn *c, const char *cmd, JsonObject *args,
	     int timeout_ms, JsonNode **result, char *err, size_t errlen);
/* ctl_call() with file descriptor @fd sent along (SCM_RIGHTS) with the
 * request line ("screenshot" with "fd": true).  @fd stays ours. */
int ctl_call_fd(struct ctl_conn *c, const char *cmd, JsonObject *args, int fd,
		int timeout_ms, JsonNode **result, char *err, size_t errlen);

/* Wait up to @timeout_ms for the VM to close the connection (it exits).
 * Returns 0 on close, -ETIMEDOUT. */
int ctl_wait_closed(struct ctl_conn *c, int timeout_ms);

/* Bytes read past the reply of "attach-serial" (serial output that came
 * in the same read); *@len set.  Valid until the next call. */
const char *ctl_pending(struct ctl_conn *c, size_t *len);
void ctl_pending_clear(struct ctl_conn *c);

/* One-shot: connect to @name, call @cmd, close.  As ctl_call. */
int ctl_simple(const char *name, const char *cmd, JsonObject *args,
	       int timeout_ms, JsonNode **result, char *err, size_t errlen);

#endif
