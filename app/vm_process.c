/* SPDX-License-Identifier: MIT */
/*
 * app/vm_process.c - `vivarium vm-process NAME`: the process of one running
 * VM, started (detached) by `vivarium start`.
 *
 * Threads: the main thread runs a GLib main loop serving the control
 * socket (docs/control-protocol.md) and the serial console; one thread
 * runs machine_run() (and, under it, the vCPU, timer and serial input
 * threads, which keep SIGTERM/SIGINT/SIGHUP blocked so that those reach
 * the main loop).
 *
 * COM1's host side is a chardev_fd over two pipes: guest output is read by
 * the main loop, appended to serial.log and a 64 KiB history, and sent to
 * every client attached with "attach-serial"; those clients' bytes go to
 * the guest.
 *
 * Life: lock vm.pid (a second process for the same VM fails here), bind
 * the socket (replacing a stale one), machine_create(), report "ok" on the
 * ready fd, run.  When machine_run() returns: a "stopped" event, the
 * socket and vm.pid are removed, and the process exits with the VM's exit
 * status (0 after the guest powered off, 1 on an error).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <glib-unix.h>
#include <json-glib/json-glib.h>

#include "audio/audio.h"
#include "commands.h"
#include "host/chardev.h"
#include "display.h"
#include "display/console.h"
#include "agents.h"
#include "additions_host.h"
#include "png_write.h"
#include "snaplib.h"
#include "log.h"
#include "machine.h"
#include "net/net.h"
#include "nic.h"
#include "sandbox/sandbox.h"
#include "vm_sandbox.h"
#include "vmlib.h"
#include "usb/usb_host.h"
#include "usb_keeper.h"
#include "host/swtpm.h"
#include "devices/tpm_tis.h"

#define HISTORY_MAX		(64u << 10)	/* serial output kept for attach */
#define SERIAL_LOG_MAX		(64ull << 20)	/* serial.log stops growing here */
#define CLIENT_OUT_MAX		(1u << 20)	/* queued bytes per client */
#define CLIENT_LINE_MAX		(64u << 10)
#define CLIENTS_MAX		32
#define CLIENT_FDS_MAX		4	/* passed fds waiting for a request */
#define GUEST_IN_MAX		(1u << 20)	/* queued serial input */
#define STOP_TIMEOUT_DEFAULT	60		/* seconds */
#define VM_LOG_MAX		(1u << 20)	/* vm.log, then vm.log.1 */

enum vm_state { ST_RUNNING, ST_PAUSED, ST_STOPPING, ST_STOPPED };
static const char *const state_names[] = {
	"running", "paused", "stopping", "stopped",
};

struct vmproc;

struct client {
	struct vmproc *vp;
	int fd;
	guint in_watch, out_watch;
	GString *line;		/* JSON mode: bytes of the current line */
	GByteArray *out;	/* not yet sent */
	int fds[CLIENT_FDS_MAX];	/* passed with SCM_RIGHTS, oldest first */
	unsigned nfds;
	bool serial;		/* attached: raw serial bytes both ways */
	bool events;		/* subscribed to events */
	bool dead;
};

struct vmproc {
	const char *name;
	atomic_bool reverting;	/* the next rebuild is a snapshot revert's */
	struct vm_config cfg;
	struct machine *m;
	struct chardev *serial;
	int ser_out_rd;		/* guest output, read here */
	int ser_in_wr;		/* guest input, written here */
	GByteArray *ser_in_pending;
	guint ser_in_watch;
	int serial_log;
	uint64_t serial_log_bytes;
	GByteArray *history;

	int listen_fd;
	char *sock_path;
	char *pid_path;
	int pid_fd;
	GList *clients;
	GMainLoop *loop;

	struct console *con;
	struct vm_display *display;
	const char *display_kind;	/* as resolved: "sdl" or "none" */
	const char *vnc;

	enum vm_state state;
	bool forced;
	bool saved;		/* stopped by "save": the state is on disk */
	bool resuming;		/* this start loads the saved state */
	guint stop_timer;
	int end_pipe[2];
	pthread_t thread;
	int status;
	char err[512];
	gint64 started_us;
	int ready_fd;		/* 'vivarium start' waits on it; -1 once told */
	/* The disks' images now (snapshots move them to new overlays). */
	char *disk_path[VM_MAX_DISKS];
	/* The NICs' host backends: made before the machine, freed after. */
	struct netdev *nic[VM_MAX_NICS];
	uint8_t nic_mac[VM_MAX_NICS][6];
	/* The guest agents on virtio-serial (agents=on); NULL: none. */
	struct vm_agents *agents;
	/* clipboard-get requests waiting for the guest's next text. */
	GList *clip_waiters;
	/* The sound card's host side (audio=pa or none); NULL: no card. */
	struct audio_backend *audio;
	/* The TPM's swtpm (tpm=on), started before the sandbox and stopped
	 * after the machine; NULL: no TPM. */
	struct swtpm *tpm;
};

static void vm_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void vm_log(const char *fmt, ...)
{
	g_autoptr(GDateTime) now = g_date_time_new_now_local();
	g_autofree char *ts = g_date_time_format(now, "%Y-%m-%d %H:%M:%S");
	va_list ap;

	fprintf(stderr, "[%s] ", ts);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	log_rotate_check();
}

/* ---- clients: output ------------------------------------------------------ */

static void clip_waiters_drop(struct vmproc *vp, struct client *c);

static void client_free(struct client *c)
{
	struct vmproc *vp = c->vp;

	clip_waiters_drop(vp, c);
	vp->clients = g_list_remove(vp->clients, c);
	if (c->in_watch)
		g_source_remove(c->in_watch);
	if (c->out_watch)
		g_source_remove(c->out_watch);
	close(c->fd);
	for (unsigned i = 0; i < c->nfds; i++)
		close(c->fds[i]);
	g_string_free(c->line, TRUE);
	g_byte_array_unref(c->out);
	g_free(c);
}

/* Removing a client from inside its own callbacks: mark it, free it from
 * an idle callback. */
static gboolean reap_clients(gpointer opaque)
{
	struct vmproc *vp = opaque;
	GList *l = vp->clients;

	while (l) {
		GList *next = l->next;
		struct client *c = l->data;

		if (c->dead)
			client_free(c);
		l = next;
	}
	return G_SOURCE_REMOVE;
}

/* The watches go at once: a dead client's fd may stay readable (unread
 * bytes, EOF), and a watch left on it would starve the idle reaper and
 * spin the loop. */
static void client_kill(struct client *c)
{
	if (c->dead)
		return;
	c->dead = true;
	if (c->in_watch)
		g_source_remove(c->in_watch);
	if (c->out_watch)
		g_source_remove(c->out_watch);
	c->in_watch = c->out_watch = 0;
	g_idle_add(reap_clients, c->vp);
}

static gboolean client_writable(gint fd, GIOCondition cond, gpointer opaque);

static void client_flush(struct client *c)
{
	while (c->out->len) {
		ssize_t n = send(c->fd, c->out->data, c->out->len,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			g_byte_array_remove_range(c->out, 0, (guint)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!c->out_watch)
				c->out_watch = g_unix_fd_add(c->fd, G_IO_OUT,
							     client_writable, c);
			return;
		}
		client_kill(c);
		return;
	}
}

static gboolean client_writable(gint fd, GIOCondition cond, gpointer opaque)
{
	struct client *c = opaque;

	(void)fd, (void)cond;
	c->out_watch = 0;
	if (!c->dead)
		client_flush(c);
	return G_SOURCE_REMOVE;
}

/* Queue bytes for @c.  A client that does not read loses serial output
 * (as a terminal would) and is disconnected if it lets replies pile up. */
static void client_send(struct client *c, const void *buf, size_t len)
{
	if (c->dead)
		return;
	if (c->out->len + len > CLIENT_OUT_MAX) {
		if (c->serial)
			return;
		vm_log("control client does not read its replies; disconnecting it");
		client_kill(c);
		return;
	}
	g_byte_array_append(c->out, buf, (guint)len);
	if (!c->out_watch)
		client_flush(c);
}

static void client_send_json(struct client *c, JsonNode *node)
{
	g_autoptr(JsonGenerator) gen = json_generator_new();
	g_autofree char *text = NULL;

	json_generator_set_root(gen, node);
	text = json_generator_to_data(gen, NULL);
	client_send(c, text, strlen(text));
	client_send(c, "\n", 1);
}

static void reply(struct client *c, JsonNode *id, bool ok, JsonNode *result,
		  const char *error)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonNode) root = NULL;

	json_builder_begin_object(b);
	if (id) {
		json_builder_set_member_name(b, "id");
		json_builder_add_value(b, json_node_copy(id));
	}
	json_builder_set_member_name(b, "ok");
	json_builder_add_boolean_value(b, ok);
	if (ok && result) {
		json_builder_set_member_name(b, "result");
		json_builder_add_value(b, result);
	} else if (result) {
		json_node_unref(result);
	}
	if (!ok) {
		json_builder_set_member_name(b, "error");
		json_builder_add_string_value(b, error);
	}
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	client_send_json(c, root);
}

/* @ev to every connection that subscribed (and is not a serial one). */
static void broadcast_event(struct vmproc *vp, JsonNode *ev)
{
	for (GList *l = vp->clients; l; l = l->next) {
		struct client *c = l->data;

		if (c->events && !c->serial)
			client_send_json(c, ev);
	}
}

static void broadcast_state(struct vmproc *vp)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonNode) root = NULL;

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "event");
	json_builder_add_string_value(b, "state");
	json_builder_set_member_name(b, "state");
	json_builder_add_string_value(b, state_names[vp->state]);
	if (vp->state == ST_STOPPED) {
		json_builder_set_member_name(b, "exit_status");
		json_builder_add_int_value(b, vp->status);
		json_builder_set_member_name(b, "forced");
		json_builder_add_boolean_value(b, vp->forced);
		json_builder_set_member_name(b, "saved");
		json_builder_add_boolean_value(b, vp->saved);
		if (vp->err[0]) {
			json_builder_set_member_name(b, "error");
			json_builder_add_string_value(b, vp->err);
		}
	}
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	broadcast_event(vp, root);
}

static void set_state(struct vmproc *vp, enum vm_state st)
{
	if (vp->state == st)
		return;
	vp->state = st;
	vm_log("state: %s", state_names[st]);
	if (vp->display) {
		char title[16];

		snprintf(title, sizeof(title), "%s", state_names[st]);
		title[0] = (char)g_ascii_toupper(title[0]);
		vm_display_set_state(vp->display, title);
	}
	broadcast_state(vp);
}

/* ---- the serial console ------------------------------------------------- */

static gboolean guest_in_writable(gint fd, GIOCondition cond, gpointer opaque);

static void guest_in_flush(struct vmproc *vp)
{
	while (vp->ser_in_pending->len) {
		ssize_t n = write(vp->ser_in_wr, vp->ser_in_pending->data,
				  vp->ser_in_pending->len);

		if (n > 0) {
			g_byte_array_remove_range(vp->ser_in_pending, 0, (guint)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if (!vp->ser_in_watch)
				vp->ser_in_watch = g_unix_fd_add(vp->ser_in_wr, G_IO_OUT,
								 guest_in_writable, vp);
			return;
		}
		g_byte_array_set_size(vp->ser_in_pending, 0);	/* VM is gone */
		return;
	}
}

static gboolean guest_in_writable(gint fd, GIOCondition cond, gpointer opaque)
{
	struct vmproc *vp = opaque;

	(void)fd, (void)cond;
	vp->ser_in_watch = 0;
	guest_in_flush(vp);
	return G_SOURCE_REMOVE;
}

static void guest_input(struct vmproc *vp, const uint8_t *buf, size_t len)
{
	if (vp->ser_in_pending->len + len > GUEST_IN_MAX) {
		vlog_ratelimited(LOG_WARN, "serial input arrives faster than the guest reads it; dropping");
		return;
	}
	g_byte_array_append(vp->ser_in_pending, buf, (guint)len);
	if (!vp->ser_in_watch)
		guest_in_flush(vp);
}

static void guest_output(struct vmproc *vp, const uint8_t *buf, size_t len)
{
	if (vp->serial_log >= 0 && vp->serial_log_bytes < SERIAL_LOG_MAX) {
		ssize_t n = write(vp->serial_log, buf, len);

		if (n > 0)
			vp->serial_log_bytes += (uint64_t)n;
	}
	g_byte_array_append(vp->history, buf, (guint)len);
	if (vp->history->len > HISTORY_MAX)
		g_byte_array_remove_range(vp->history, 0,
					  vp->history->len - HISTORY_MAX);
	for (GList *l = vp->clients; l; l = l->next) {
		struct client *c = l->data;

		if (c->serial)
			client_send(c, buf, len);
	}
}

/* One read of guest output; returns its result (> 0: bytes passed on). */
static ssize_t guest_out_read(struct vmproc *vp)
{
	uint8_t buf[4096];
	ssize_t n = read(vp->ser_out_rd, buf, sizeof(buf));

	if (n > 0)
		guest_output(vp, buf, (size_t)n);
	return n;
}

static gboolean guest_out_readable(gint fd, GIOCondition cond, gpointer opaque)
{
	ssize_t n = guest_out_read(opaque);

	(void)fd, (void)cond;
	if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
		return G_SOURCE_REMOVE;
	return G_SOURCE_CONTINUE;
}

/* ---- request members: the type is checked, never assumed ------------------ */

/* A member of @req, or NULL if absent.  A null value counts as absent. */
static JsonNode *member(JsonObject *req, const char *name)
{
	JsonNode *n = json_object_get_member(req, name);

	return n && !JSON_NODE_HOLDS_NULL(n) ? n : NULL;
}

static bool holds(JsonNode *n, GType type)
{
	return JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == type;
}

/* String member @name: *@out = its value, or @def when absent.  false (and
 * @err, naming the member) when it has another type. */
static bool get_string(JsonObject *req, const char *name, const char *def,
		       const char **out, char *err, size_t errlen)
{
	JsonNode *n = member(req, name);

	*out = def;
	if (!n)
		return true;
	if (!holds(n, G_TYPE_STRING)) {
		snprintf(err, errlen, "\"%s\" must be a string", name);
		return false;
	}
	*out = json_node_get_string(n);
	return true;
}

/* Integer member @name within [@min, @max]; a fraction, a string or a
 * boolean is an error, not a conversion. */
static bool get_int(JsonObject *req, const char *name, gint64 def, gint64 min,
		    gint64 max, gint64 *out, char *err, size_t errlen)
{
	JsonNode *n = member(req, name);

	*out = def;
	if (!n)
		return true;
	if (!holds(n, G_TYPE_INT64) || json_node_get_int(n) < min ||
	    json_node_get_int(n) > max) {
		snprintf(err, errlen, "\"%s\" must be an integer from %" G_GINT64_FORMAT
			 " to %" G_GINT64_FORMAT, name, min, max);
		return false;
	}
	*out = json_node_get_int(n);
	return true;
}

static bool get_bool(JsonObject *req, const char *name, bool def, bool *out,
		     char *err, size_t errlen)
{
	JsonNode *n = member(req, name);

	*out = def;
	if (!n)
		return true;
	if (!holds(n, G_TYPE_BOOLEAN)) {
		snprintf(err, errlen, "\"%s\" must be true or false", name);
		return false;
	}
	*out = json_node_get_boolean(n);
	return true;
}

/* The request's "id" is echoed in its reply: a string, an integer or a
 * finite number (1e400 would come back as "inf", which is not JSON). */
static bool id_ok(JsonNode *id)
{
	if (!id || JSON_NODE_HOLDS_NULL(id) || holds(id, G_TYPE_STRING) ||
	    holds(id, G_TYPE_INT64))
		return true;
	return holds(id, G_TYPE_DOUBLE) && isfinite(json_node_get_double(id));
}

/* JSON's \u0000 escape: json-glib would cut the string there, so that
 * "status\u0000junk" matched "status".  Strings with a NUL are refused. */
static bool has_nul_escape(const char *line, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (line[i] != '\\')
			continue;
		if (line[i + 1] == 'u' && i + 5 < len && !memcmp(line + i + 2, "0000", 4))
			return true;
		i++;	/* skip the escaped character (\\ included) */
	}
	return false;
}

/* ---- commands --------------------------------------------------------------- */

/* "guest": what the guest additions last reported (absent: nothing yet). */
static void guest_info_json(JsonBuilder *b, const struct additions_info *in)
{
	if (!in)
		return;
	json_builder_set_member_name(b, "guest");
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "os");
	json_builder_add_string_value(b, in->os);
	json_builder_set_member_name(b, "kernel");
	json_builder_add_string_value(b, in->kernel);
	json_builder_set_member_name(b, "hostname");
	json_builder_add_string_value(b, in->hostname);
	json_builder_set_member_name(b, "additions_version");
	json_builder_add_string_value(b, in->version);
	json_builder_set_member_name(b, "addresses");
	json_builder_begin_array(b);
	for (unsigned i = 0; i < in->naddr; i++)
		json_builder_add_string_value(b, in->addr[i]);
	json_builder_end_array(b);
	json_builder_set_member_name(b, "reported_ms_ago");
	json_builder_add_int_value(b, MAX(0, (g_get_real_time() - in->when_us) / 1000));
	json_builder_end_object(b);
}

/* {"event": "guest", "guest": {...}}: the guest additions' new report, to
 * subscribers (the manager shows the guest's OS without asking). */
static void broadcast_guest(void *opaque)
{
	struct vmproc *vp = opaque;
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonNode) ev = NULL;

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "event");
	json_builder_add_string_value(b, "guest");
	guest_info_json(b, vm_agents_guest_info(vp->agents));
	json_builder_end_object(b);
	ev = json_builder_get_root(b);
	broadcast_event(vp, ev);
}

/* "audio": the sound card's host side, or null without one. */
static void audio_json(struct vmproc *vp, JsonBuilder *b)
{
	const char *name, *state;
	bool playing, recording;

	json_builder_set_member_name(b, "audio");
	if (!vp->audio) {
		json_builder_add_null_value(b);
		return;
	}
	audio_status(vp->audio, &name, &state, &playing, &recording);
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "backend");
	json_builder_add_string_value(b, name);
	json_builder_set_member_name(b, "state");
	json_builder_add_string_value(b, state);
	json_builder_set_member_name(b, "muted");
	json_builder_add_boolean_value(b, audio_muted(vp->audio));
	json_builder_set_member_name(b, "playing");
	json_builder_add_boolean_value(b, playing);
	json_builder_set_member_name(b, "recording");
	json_builder_add_boolean_value(b, recording);
	json_builder_end_object(b);
}

static JsonNode *status_node(struct vmproc *vp)
{
	g_autoptr(JsonBuilder) b = json_builder_new();

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "name");
	json_builder_add_string_value(b, vp->name);
	json_builder_set_member_name(b, "state");
	json_builder_add_string_value(b, state_names[vp->state]);
	json_builder_set_member_name(b, "pid");
	json_builder_add_int_value(b, getpid());
	json_builder_set_member_name(b, "uptime_ms");
	json_builder_add_int_value(b, (g_get_monotonic_time() - vp->started_us) / 1000);
	json_builder_set_member_name(b, "boots");
	json_builder_add_int_value(b, machine_boot_count(vp->m));
	json_builder_set_member_name(b, "cpus");
	json_builder_add_int_value(b, vp->cfg.cpus);
	json_builder_set_member_name(b, "memory");
	json_builder_add_int_value(b, (gint64)vp->cfg.memory);
	json_builder_set_member_name(b, "display");
	json_builder_add_string_value(b, vp->display_kind ? vp->display_kind : "none");
	if (vp->vnc) {
		json_builder_set_member_name(b, "vnc");
		json_builder_add_string_value(b, vp->vnc);
	}
	/* Where the frontends' input goes now (the guest's drivers decide). */
	{
		const char *abs = vp->con ? console_pointer_abs(vp->con) : NULL;
		g_autofree char *pointer = abs ? g_strdup_printf("absolute: %s", abs)
					       : g_strdup("relative");

		json_builder_set_member_name(b, "pointer");
		json_builder_add_string_value(b, pointer);
		json_builder_set_member_name(b, "keyboard");
		json_builder_add_string_value(b, vp->con ? console_keyboard(vp->con) : "ps2");
	}
	{
		const char *names[3];
		unsigned n = vm_agents_connected(vp->agents, names, 3);

		json_builder_set_member_name(b, "agents");
		json_builder_begin_array(b);
		for (unsigned i = 0; i < n; i++)
			json_builder_add_string_value(b, names[i]);
		json_builder_end_array(b);
	}
	audio_json(vp, b);
	guest_info_json(b, vm_agents_guest_info(vp->agents));
	json_builder_end_object(b);
	return json_builder_get_root(b);
}

static void force_stop(struct vmproc *vp, const char *why)
{
	if (vp->state == ST_STOPPED)
		return;
	vm_log("pulling the plug: %s", why);
	vp->forced = true;
	machine_stop(vp->m, 0);
	set_state(vp, ST_STOPPING);
}

static gboolean stop_timeout(gpointer opaque)
{
	struct vmproc *vp = opaque;

	vp->stop_timer = 0;
	force_stop(vp, "the guest did not power off in time after the power button");
	return G_SOURCE_REMOVE;
}

static void req_stop(struct vmproc *vp, struct client *c, JsonNode *id,
		     JsonObject *req)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	char err[256];
	const char *method = "acpi";
	bool force;
	gint64 timeout;

	/* A malformed timeout is an error, never a forced stop. */
	if (!get_bool(req, "force", false, &force, err, sizeof(err)) ||
	    !get_int(req, "timeout", STOP_TIMEOUT_DEFAULT, 0, 24 * 3600, &timeout,
		     err, sizeof(err))) {
		reply(c, id, false, NULL, err);
		return;
	}
	if (force || timeout == 0) {
		force_stop(vp, "stop --force");
	} else if (vp->state != ST_PAUSED && vm_agents_qga_connected(vp->agents) &&
		   vm_agents_shutdown(vp->agents, err, sizeof(err)) == 0) {
		/* The guest agent shuts the guest down (no ACPI needed). */
		method = "agent";
		vm_log("asked the guest agent to shut down (the plug is pulled if the VM still runs in %" G_GINT64_FORMAT " s)",
		       timeout);
		if (vp->stop_timer)
			g_source_remove(vp->stop_timer);
		vp->stop_timer = g_timeout_add_seconds((guint)timeout, stop_timeout, vp);
	} else {
		/* A paused guest cannot answer the button: let it run. */
		if (vp->state == ST_PAUSED) {
			machine_resume(vp->m);
			set_state(vp, ST_RUNNING);
		}
		vm_log("pressing the ACPI power button (the plug is pulled if the VM still runs in %" G_GINT64_FORMAT " s)",
		       timeout);
		if (machine_power_button(vp->m) < 0)
			vm_log("the machine is between resets; the button press was lost");
		if (vp->stop_timer)
			g_source_remove(vp->stop_timer);
		vp->stop_timer = g_timeout_add_seconds((guint)timeout, stop_timeout, vp);
	}
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "method");
	json_builder_add_string_value(b, force || timeout == 0 ? "force" : method);
	json_builder_set_member_name(b, "timeout");
	json_builder_add_int_value(b, force ? 0 : timeout);
	json_builder_end_object(b);
	reply(c, id, true, json_builder_get_root(b), NULL);
}

static void clipboard_reply(struct vmproc *vp, struct client *c, JsonNode *id,
			    int changed);

/* clipboard-get with wait_ms: at most this long, this many at once. */
#define CLIP_WAIT_MAX_MS	10000
#define CLIP_WAITERS_MAX	32

struct clip_waiter {
	struct vmproc *vp;
	struct client *c;
	JsonNode *id;		/* a copy, or NULL */
	guint timer;
};

static void clip_waiter_free(struct clip_waiter *w)
{
	w->vp->clip_waiters = g_list_remove(w->vp->clip_waiters, w);
	if (w->timer)
		g_source_remove(w->timer);
	if (w->id)
		json_node_unref(w->id);
	g_free(w);
}

/* The wait ran out: the clipboard as it is, "changed": false. */
static gboolean clip_wait_timeout(gpointer opaque)
{
	struct clip_waiter *w = opaque;

	w->timer = 0;
	clipboard_reply(w->vp, w->c, w->id, 0);
	clip_waiter_free(w);
	return G_SOURCE_REMOVE;
}

/* The guest copied text (agents' listener): every waiter gets it. */
static void clip_guest_text(void *opaque, const char *text)
{
	struct vmproc *vp = opaque;

	(void)text;
	while (vp->clip_waiters) {
		struct clip_waiter *w = vp->clip_waiters->data;

		clipboard_reply(vp, w->c, w->id, 1);
		clip_waiter_free(w);
	}
}

/* A client going away takes its waits with it. */
static void clip_waiters_drop(struct vmproc *vp, struct client *c)
{
	GList *l = vp->clip_waiters;

	while (l) {
		GList *next = l->next;
		struct clip_waiter *w = l->data;

		if (!c || w->c == c)
			clip_waiter_free(w);
		l = next;
	}
}

/* "clipboard-set": the host's clipboard text, offered to the guest. */
static void req_clipboard_set(struct vmproc *vp, struct client *c, JsonNode *id,
			      JsonObject *req)
{
	char err[256];
	const char *text;

	if (!get_string(req, "text", NULL, &text, err, sizeof(err))) {
		reply(c, id, false, NULL, err);
		return;
	}
	if (!vp->agents) {
		reply(c, id, false, NULL, "the VM has no guest agents (agents=off)");
		return;
	}
	if (vm_agents_clipboard_set(vp->agents, text, false) < 0) {
		reply(c, id, false, NULL, "\"text\" is over 1 MiB");
		return;
	}
	clipboard_reply(vp, c, id, -1);
}

/* "clipboard-get": the guest's clipboard as the host knows it; with
 * "wait_ms", once the guest copies text next (or the time is up). */
static void req_clipboard_get(struct vmproc *vp, struct client *c, JsonNode *id,
			      JsonObject *req)
{
	char err[160];
	gint64 ms;
	struct clip_waiter *w;

	if (!get_int(req, "wait_ms", -1, 0, CLIP_WAIT_MAX_MS, &ms, err, sizeof(err))) {
		reply(c, id, false, NULL, err);
		return;
	}
	if (ms < 0) {
		clipboard_reply(vp, c, id, -1);
		return;
	}
	/* Nothing will come (no agents) or nothing to wait: as it is. */
	if (!vp->agents || ms == 0) {
		clipboard_reply(vp, c, id, 0);
		return;
	}
	if (g_list_length(vp->clip_waiters) >= CLIP_WAITERS_MAX) {
		reply(c, id, false, NULL, "too many clipboard-get requests waiting");
		return;
	}
	w = g_new0(struct clip_waiter, 1);
	w->vp = vp;
	w->c = c;
	w->id = id ? json_node_copy(id) : NULL;
	w->timer = g_timeout_add((guint)ms, clip_wait_timeout, w);
	vp->clip_waiters = g_list_append(vp->clip_waiters, w);
}

/* The clipboard-get result; @changed >= 0 adds "changed" (a wait's
 * outcome: the guest copied text during it). */
static void clipboard_reply(struct vmproc *vp, struct client *c, JsonNode *id,
			    int changed)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	const char *owner = "none", *text = NULL, *names[3];
	unsigned n = vm_agents_connected(vp->agents, names, 3);
	bool connected = false;

	if (vp->agents)
		text = vm_agents_clipboard_get(vp->agents, &owner);
	for (unsigned i = 0; i < n; i++)
		connected |= !strcmp(names[i], "vdagent");
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "text");
	if (text)
		json_builder_add_string_value(b, text);
	else
		json_builder_add_null_value(b);
	json_builder_set_member_name(b, "owner");
	json_builder_add_string_value(b, owner);
	json_builder_set_member_name(b, "connected");
	json_builder_add_boolean_value(b, connected);
	if (changed >= 0) {
		json_builder_set_member_name(b, "changed");
		json_builder_add_boolean_value(b, changed > 0);
	}
	json_builder_end_object(b);
	reply(c, id, true, json_builder_get_root(b), NULL);
}

/* A NIC's state for "nics" and the "nic" event. */
static void nic_json(struct vmproc *vp, JsonBuilder *b, unsigned i)
{
	const struct nic_spec *n = &vp->cfg.nic[i];
	struct net_stats st;
	char mac[18];

	net_get_stats(vp->nic[i], &st);
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "index");
	json_builder_add_int_value(b, i);
	json_builder_set_member_name(b, "model");
	json_builder_add_string_value(b, nic_model_name(n->model));
	json_builder_set_member_name(b, "network");
	json_builder_add_string_value(b, nic_net_name(n->net));
	json_builder_set_member_name(b, "mac");
	json_builder_add_string_value(b, nic_mac_str(vp->nic_mac[i], mac, sizeof(mac)));
	json_builder_set_member_name(b, "link");
	json_builder_add_string_value(b, net_link_up(vp->nic[i]) ? "up" : "down");
	json_builder_set_member_name(b, "hostfwd");
	json_builder_begin_array(b);
	for (unsigned f = 0; f < n->nfwd; f++)
		json_builder_add_string_value(b, n->fwd[f]);
	json_builder_end_array(b);
	json_builder_set_member_name(b, "tx_frames");
	json_builder_add_int_value(b, (gint64)st.tx_frames);
	json_builder_set_member_name(b, "rx_frames");
	json_builder_add_int_value(b, (gint64)st.rx_frames);
	json_builder_set_member_name(b, "tx_dropped");
	json_builder_add_int_value(b, (gint64)st.tx_dropped);
	json_builder_set_member_name(b, "rx_dropped");
	json_builder_add_int_value(b, (gint64)st.rx_dropped);
	json_builder_end_object(b);
}

/* "nics": every NIC, its MAC, cable and counters. */
static void req_nics(struct vmproc *vp, struct client *c, JsonNode *id)
{
	g_autoptr(JsonBuilder) b = json_builder_new();

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "nics");
	json_builder_begin_array(b);
	for (unsigned i = 0; i < vp->cfg.nnics; i++)
		nic_json(vp, b, i);
	json_builder_end_array(b);
	json_builder_end_object(b);
	reply(c, id, true, json_builder_get_root(b), NULL);
}

/* "nic-link": plug ("up": true) or pull NIC "nic"'s cable; the guest sees
 * its link change.  Subscribers get a "nic" event. */
static void req_nic_link(struct vmproc *vp, struct client *c, JsonNode *id,
			 JsonObject *req)
{
	char err[128];
	gint64 idx;
	bool up;

	if (!get_int(req, "nic", 0, 0, VM_MAX_NICS - 1, &idx, err, sizeof(err)) ||
	    !get_bool(req, "up", true, &up, err, sizeof(err))) {
		reply(c, id, false, NULL, err);
		return;
	}
	if ((unsigned)idx >= vp->cfg.nnics) {
		snprintf(err, sizeof(err), "the VM has no NIC %u (it has %u)",
			 (unsigned)idx, vp->cfg.nnics);
		reply(c, id, false, NULL, err);
		return;
	}
	net_set_link(vp->nic[idx], up);
	vm_log("nic%u: cable %s", (unsigned)idx, up ? "plugged in" : "pulled out");
	{
		g_autoptr(JsonBuilder) b = json_builder_new();
		g_autoptr(JsonNode) ev = NULL;

		json_builder_begin_object(b);
		json_builder_set_member_name(b, "event");
		json_builder_add_string_value(b, "nic");
		json_builder_set_member_name(b, "nic");
		nic_json(vp, b, (unsigned)idx);
		json_builder_end_object(b);
		ev = json_builder_get_root(b);
		broadcast_event(vp, ev);
	}
	req_nics(vp, c, id);
}

/* "audio-mute": "mute" true (the default) or false: the host hears and
 * records silence; the guest's card and DMA run on unchanged. */
static void req_audio_mute(struct vmproc *vp, struct client *c, JsonNode *id,
			   JsonObject *req)
{
	char err[128];
	bool mute;

	if (!get_bool(req, "mute", true, &mute, err, sizeof(err))) {
		reply(c, id, false, NULL, err);
		return;
	}
	if (!vp->audio) {
		reply(c, id, false, NULL, "the VM has no sound card (vm.conf audio=off)");
		return;
	}
	audio_set_mute(vp->audio, mute);
	vm_log("audio: %s", mute ? "muted" : "unmuted");
	reply(c, id, true, status_node(vp), NULL);
}

/* "display-size": offer "width" x "height" to the guest as its screen
 * size (console_request_size), as a resize of the console window does. */
static void req_display_size(struct vmproc *vp, struct client *c,
			     JsonNode *id, JsonObject *req)
{
	char err[160];
	gint64 w, h;
	int r, ra;

	if (!get_int(req, "width", 0, 1, CONSOLE_MAX_WIDTH, &w, err, sizeof(err)) ||
	    !get_int(req, "height", 0, 1, CONSOLE_MAX_HEIGHT, &h, err, sizeof(err))) {
		reply(c, id, false, NULL, err);
		return;
	}
	if (!w || !h) {
		reply(c, id, false, NULL, "\"width\" and \"height\" are required");
		return;
	}
	r = console_request_size(vp->con, (unsigned)w, (unsigned)h);
	/* The guest additions apply it where the guest's compositor does
	 * not follow the adapter (or the adapter cannot say it). */
	ra = vm_agents_additions_display_size(vp->agents, (unsigned)w, (unsigned)h);
	if (r == -ENOTSUP && ra == 0)
		r = 0;
	if (r < 0) {
		snprintf(err, sizeof(err), r == -ENOTSUP ?
			 "the display adapter cannot offer the guest a screen size (vga=virtio can) and the guest's spice-vdagent is not connected" :
			 "cannot offer the size: %s", strerror(-r));
		reply(c, id, false, NULL, err);
		return;
	}
	vm_log("display size %ux%u offered to the guest", (unsigned)w, (unsigned)h);
	{
		g_autoptr(JsonBuilder) b = json_builder_new();

		json_builder_begin_object(b);
		json_builder_set_member_name(b, "width");
		json_builder_add_int_value(b, w);
		json_builder_set_member_name(b, "height");
		json_builder_add_int_value(b, h);
		json_builder_end_object(b);
		reply(c, id, true, json_builder_get_root(b), NULL);
	}
}

static int take_fd(struct client *c);

/* "usb-attach": pass the host USB device whose usbfs node's fd came with
 * the request through (`vivarium usb attach` opens it: the VM's sandbox
 * has no /dev/bus/usb).  "device": its sysfs name; "vid", "pid"; "speed":
 * sysfs's text ("480"); "product" optional. */
static void req_usb_attach(struct vmproc *vp, struct client *c, JsonNode *id,
			   JsonObject *req)
{
	struct usb_host_info info = { 0 };
	struct usb_host_sel sel;
	const char *dev, *speed, *product;
	gint64 vid, pid;
	char err[512];
	unsigned port;
	int fd;

	if (!get_string(req, "device", NULL, &dev, err, sizeof(err)) ||
	    !get_string(req, "speed", NULL, &speed, err, sizeof(err)) ||
	    !get_string(req, "product", "", &product, err, sizeof(err)) ||
	    !get_int(req, "vid", 0, 0, 0xffff, &vid, err, sizeof(err)) ||
	    !get_int(req, "pid", 0, 0, 0xffff, &pid, err, sizeof(err))) {
		reply(c, id, false, NULL, err);
		return;
	}
	if (!dev || !speed) {
		reply(c, id, false, NULL, "usb-attach: give \"device\" (BUS-PORT) and \"speed\" (as sysfs shows it)");
		return;
	}
	if (usb_host_parse(dev, &sel, err, sizeof(err)) < 0 || sel.by_id) {
		reply(c, id, false, NULL, "usb-attach: \"device\" is the BUS-PORT[.PORT...] name of a host USB device");
		return;
	}
	info.speed = usb_host_speed(speed);
	if (!info.speed) {
		reply(c, id, false, NULL, "usb-attach: \"speed\" is sysfs's text: 1.5, 12, 480, 5000, 10000 or 20000");
		return;
	}
	fd = take_fd(c);
	if (fd < 0) {
		reply(c, id, false, NULL, "usb-attach: no file descriptor came with the request (send the device node's with SCM_RIGHTS)");
		return;
	}
	snprintf(info.name, sizeof(info.name), "%s", dev);
	snprintf(info.product, sizeof(info.product), "%s", product);
	snprintf(info.node, sizeof(info.node), "its fd");
	info.vid = (uint16_t)vid;
	info.pid = (uint16_t)pid;
	if (machine_usb_attach(vp->m, fd, &info, &port, err, sizeof(err)) < 0) {
		reply(c, id, false, NULL, err);
		return;
	}
	vm_log("USB %s (%04x:%04x %s): passed through on root port %u", dev,
	       info.vid, info.pid, product, port);
	{
		g_autoptr(JsonBuilder) b = json_builder_new();

		json_builder_begin_object(b);
		json_builder_set_member_name(b, "port");
		json_builder_add_int_value(b, port);
		json_builder_end_object(b);
		reply(c, id, true, json_builder_get_root(b), NULL);
	}
}

/* "usb-detach": "device" (BUS-PORT, VID:PID or root port) back to the
 * host. */
static void req_usb_detach(struct vmproc *vp, struct client *c, JsonNode *id,
			   JsonObject *req)
{
	const char *dev;
	char err[512];

	if (!get_string(req, "device", NULL, &dev, err, sizeof(err)) || !dev) {
		reply(c, id, false, NULL, dev ? err : "usb-detach: give \"device\"");
		return;
	}
	if (machine_usb_detach(vp->m, dev, err, sizeof(err)) < 0) {
		reply(c, id, false, NULL, err);
		return;
	}
	vm_log("USB %s: given back to the host", dev);
	reply(c, id, true, NULL, NULL);
}

/* "usb-list": the passed-through devices. */
static void req_usb_list(struct vmproc *vp, struct client *c, JsonNode *id)
{
	struct machine_usb_entry e[MACHINE_USB_HOST_MAX];
	size_t n = machine_usb_list(vp->m, e, MACHINE_USB_HOST_MAX);
	g_autoptr(JsonBuilder) b = json_builder_new();

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "devices");
	json_builder_begin_array(b);
	for (size_t i = 0; i < n; i++) {
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "device");
		json_builder_add_string_value(b, e[i].name);
		json_builder_set_member_name(b, "port");
		json_builder_add_int_value(b, e[i].port);
		json_builder_set_member_name(b, "vid");
		json_builder_add_int_value(b, e[i].vid);
		json_builder_set_member_name(b, "pid");
		json_builder_add_int_value(b, e[i].pid);
		json_builder_set_member_name(b, "product");
		json_builder_add_string_value(b, e[i].product);
		json_builder_set_member_name(b, "gone");
		json_builder_add_boolean_value(b, e[i].gone);
		json_builder_end_object(b);
	}
	json_builder_end_array(b);
	json_builder_end_object(b);
	reply(c, id, true, json_builder_get_root(b), NULL);
}

/* "screenshot": the screen as a PNG into the file whose fd came with the
 * request ("fd": true) or at "path" (absolute), or with "format": "text",
 * the text-mode screen in the reply. */
static void req_screenshot(struct vmproc *vp, struct client *c, JsonNode *id,
			   JsonObject *req)
{
	const char *path, *format;
	struct console_surface s;
	char err[512];
	bool want_fd;
	int fd = -1, r;

	if (!get_string(req, "path", NULL, &path, err, sizeof(err)) ||
	    !get_string(req, "format", "png", &format, err, sizeof(err)) ||
	    !get_bool(req, "fd", false, &want_fd, err, sizeof(err))) {
		reply(c, id, false, NULL, err);
		return;
	}
	if (want_fd && (path || strcmp(format, "png"))) {
		reply(c, id, false, NULL, "screenshot: \"fd\" goes with neither \"path\" nor \"format\" text");
		return;
	}
	if (want_fd && (fd = take_fd(c)) < 0) {
		reply(c, id, false, NULL, "screenshot: no file descriptor came with the request (send one with SCM_RIGHTS)");
		return;
	}
	console_refresh(vp->con);
	if (!strcmp(format, "text")) {
		g_autofree char *text = g_malloc(64 << 10);
		g_autoptr(JsonBuilder) b = json_builder_new();

		if (console_text(vp->con, text, 64 << 10) < 0) {
			reply(c, id, false, NULL, "the screen is not in a text mode");
			return;
		}
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "text");
		json_builder_add_string_value(b, text);
		json_builder_end_object(b);
		reply(c, id, true, json_builder_get_root(b), NULL);
		return;
	}
	if (strcmp(format, "png")) {
		reply(c, id, false, NULL, "screenshot: format must be png or text");
		return;
	}
	if (fd < 0 && (!path || !g_path_is_absolute(path))) {
		reply(c, id, false, NULL, "screenshot: give an absolute \"path\" for the PNG file");
		return;
	}
	if (console_snapshot(vp->con, &s) < 0) {
		if (fd >= 0)
			close(fd);
		reply(c, id, false, NULL, "screenshot: out of memory");
		return;
	}
	if (fd >= 0) {
		r = png_write_fd(fd, &s, err, sizeof(err));
		close(fd);
	} else {
		r = png_write_surface(path, &s, err, sizeof(err));
		/* The sandbox lets the VM's process write only its folder. */
		if (r == -EACCES && sandbox_active())
			snprintf(err + strlen(err), sizeof(err) - strlen(err),
				 " (the VM's sandbox lets it write only in its folder; `vivarium screenshot` passes a file instead)");
	}
	free(s.pixels);
	if (r < 0) {
		reply(c, id, false, NULL, err);
		return;
	}
	{
		g_autoptr(JsonBuilder) b = json_builder_new();

		json_builder_begin_object(b);
		json_builder_set_member_name(b, "width");
		json_builder_add_int_value(b, s.width);
		json_builder_set_member_name(b, "height");
		json_builder_add_int_value(b, s.height);
		json_builder_end_object(b);
		reply(c, id, true, json_builder_get_root(b), NULL);
	}
}

/* "save": the machine's state to the VM's folder, then stop; the next
 * start resumes it (VirtualBox's "save the machine state"). */
/* Under run-as the VM's folder (root's library) is usually out of the
 * user's reach: a clear line rather than the file calls' EACCES. */
static bool folder_writable(struct vmproc *vp, const char *what, char *err,
			    size_t errlen)
{
	g_autofree char *dir = NULL;

	if (!vp->cfg.run_as)
		return true;
	dir = vmlib_vm_dir(vp->name);
	if (faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) == 0)
		return true;
	snprintf(err, errlen,
		 "cannot %s: the VM process runs as %s (vm.conf run-as), which cannot write the VM's folder %s; stop the VM and unset run-as, or give %s the folder",
		 what, vp->cfg.run_as, dir, vp->cfg.run_as);
	return false;
}

static void req_save(struct vmproc *vp, struct client *c, JsonNode *id)
{
	bool was_paused;
	g_autofree char *state = vmlib_vm_file(vp->name, VM_SAVED_STATE_FILE);
	g_autofree char *ram = vmlib_vm_file(vp->name, VM_SAVED_RAM_FILE);
	g_autoptr(JsonBuilder) b = json_builder_new();
	struct machine_save_stats st;
	char err[512];

	if (vp->state == ST_STOPPING) {
		reply(c, id, false, NULL, "the VM is stopping");
		return;
	}
	if (!folder_writable(vp, "save the state", err, sizeof(err))) {
		reply(c, id, false, NULL, err);
		return;
	}
	vm_log("saving the machine state");
	/* Paused from here to the end: a guest running on after the state
	 * point would write to its disks (and console) what the saved
	 * memory never saw. */
	was_paused = vp->state == ST_PAUSED;
	machine_pause(vp->m);
	if (machine_save(vp->m, state, ram, &st, err, sizeof(err)) < 0) {
		vm_log("save failed: %s", err);
		if (!was_paused)
			machine_resume(vp->m);
		reply(c, id, false, NULL, err);
		return;
	}
	vm_log("saved: %.1f MiB of memory (%.1f MiB written) in %.0f ms; the guest stood still %.0f ms",
	       st.ram_bytes / 1048576.0, st.ram_data_bytes / 1048576.0,
	       st.ram_ns / 1e6, st.pause_ns / 1e6);
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "pause_ms");
	json_builder_add_double_value(b, st.pause_ns / 1e6);
	json_builder_set_member_name(b, "memory");
	json_builder_add_int_value(b, (gint64)st.ram_bytes);
	json_builder_set_member_name(b, "memory_written");
	json_builder_add_int_value(b, (gint64)st.ram_data_bytes);
	json_builder_end_object(b);
	reply(c, id, true, json_builder_get_root(b), NULL);
	vp->saved = true;
	machine_stop(vp->m, 0);
	set_state(vp, ST_STOPPING);
}

/* ---- snapshots of the running VM (app/snaplib.h) ---------------------------- */

/* snap_take_running()'s hook: the paused machine's state to the snapshot's
 * memory files. */
/* Machine drive index of vm.conf group @group ("diskN"): the disks are the
 * first drives, in group order (vm_machine_config).  -1: none. */
static int drive_of_group(const char *name, const char *group)
{
	g_autofree char *conf = vmlib_vm_file(name, VM_CONF_FILE);
	g_autoptr(GKeyFile) kf = g_key_file_new();
	int idx = 0;

	if (!g_key_file_load_from_file(kf, conf, G_KEY_FILE_NONE, NULL))
		return -1;
	for (unsigned d = 0; d < VM_MAX_DISKS; d++) {
		g_autofree char *g = g_strdup_printf("disk%u", d);

		if (!g_key_file_has_group(kf, g))
			continue;
		if (!strcmp(g, group))
			return idx;
		idx++;
	}
	return -1;
}

/* A take in progress: where the disks go at the state point. */
struct take_job {
	struct vmproc *vp;
	const char *paths[MACHINE_MAX_DRIVES];	/* NULL: unchanged */
	const char *old[MACHINE_MAX_DRIVES];
	bool resume;		/* the VM ran before the take */
	bool moved;		/* the disks are on the new overlays */
	bool frozen;		/* the guest agent froze the file systems */
	gint64 paused_us;	/* when the take paused the VM */
	gint64 pause_us;	/* how long the guest stood still */
};

static int take_at_state_point(void *opaque, char *err, size_t errlen)
{
	struct take_job *j = opaque;
	int r = machine_with_drives_closed(j->vp->m, j->paths, NULL, NULL, err, errlen);

	if (r < 0)
		return r;
	j->moved = true;
	j->pause_us = g_get_monotonic_time() - j->paused_us;
	/* The memory is the child's to write: the guest runs on. */
	if (j->resume)
		machine_resume(j->vp->m);
	return 0;
}

static int snapshot_save(void *opaque, const char *state, const char *ram,
			 const char *const *groups, const char *const *overlays,
			 unsigned n, char *err, size_t errlen)
{
	struct take_job *j = opaque;
	struct vmproc *vp = j->vp;
	struct machine_save_stats st;
	gint64 t0 = g_get_monotonic_time();
	int r;

	for (unsigned i = 0; i < n; i++) {
		int d = drive_of_group(vp->name, groups[i]);

		if (d < 0 || (unsigned)d >= vp->cfg.ndisks) {
			snprintf(err, errlen, "vm.conf's disks changed while the VM runs");
			return -ESTALE;
		}
		j->old[d] = vp->disk_path[d] ? vp->disk_path[d] : vp->cfg.disk[d].path;
		j->paths[d] = overlays[i];
	}
	r = machine_save_then(vp->m, state, ram, take_at_state_point, j, &st, err, errlen);
	if (r < 0)
		return r;
	for (unsigned d = 0; d < MACHINE_MAX_DRIVES; d++) {
		if (!j->paths[d])
			continue;
		g_free(vp->disk_path[d]);
		vp->disk_path[d] = g_strdup(j->paths[d]);
	}
	vm_log("snapshot memory: %.1f MiB (%.1f MiB written), saved in %.0f ms while the guest ran",
	       st.ram_bytes / 1048576.0, st.ram_data_bytes / 1048576.0,
	       (g_get_monotonic_time() - t0) / 1e3);
	return 0;
}

/* After snaplib moved the disks to new overlays in vm.conf: the images the
 * machine must open at its rebuild (NULL: unchanged).  0 or -errno. */
static int new_disk_paths(struct vmproc *vp, const char *paths[MACHINE_MAX_DRIVES],
			  char *err, size_t errlen)
{
	struct vm_config cfg;
	int r = vm_config_load(vp->name, &cfg, NULL, err, errlen);

	if (r < 0)
		return r;
	for (unsigned i = 0; i < MACHINE_MAX_DRIVES; i++)
		paths[i] = NULL;
	if (cfg.ndisks != vp->cfg.ndisks) {
		snprintf(err, errlen, "vm.conf's disks changed while the VM runs");
		vm_config_clear(&cfg);
		return -ESTALE;
	}
	for (unsigned i = 0; i < cfg.ndisks; i++) {
		const char *now = vp->disk_path[i] ? vp->disk_path[i] : vp->cfg.disk[i].path;

		if (strcmp(now, cfg.disk[i].path)) {
			g_free(vp->disk_path[i]);
			vp->disk_path[i] = g_strdup(cfg.disk[i].path);
			paths[i] = vp->disk_path[i];
		}
	}
	vm_config_clear(&cfg);
	return 0;
}

/* {"event": "snapshot", "action": ACTION, "tag": TAG} to subscribers. */
static void broadcast_snapshot(struct vmproc *vp, const char *action,
			       const char *tag)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonNode) ev = NULL;

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "event");
	json_builder_add_string_value(b, "snapshot");
	json_builder_set_member_name(b, "action");
	json_builder_add_string_value(b, action);
	json_builder_set_member_name(b, "tag");
	json_builder_add_string_value(b, tag);
	json_builder_end_object(b);
	ev = json_builder_get_root(b);
	broadcast_event(vp, ev);
}

static void req_snapshot(struct vmproc *vp, struct client *c, JsonNode *id,
			 JsonObject *req, bool take)
{
	bool was_paused = vp->state == ST_PAUSED;
	struct take_job j = { .vp = vp, .resume = !was_paused };
	struct snap_running run = { .save = snapshot_save, .opaque = &j };
	const char *paths[MACHINE_MAX_DRIVES];
	const char *tag, *desc;
	g_autofree char *mem_id = NULL;
	g_autofree char *state = NULL, *ram = NULL;
	char err[1024] = "";
	int r;

	if (!get_string(req, "tag", NULL, &tag, err, sizeof(err)) ||
	    !get_string(req, "description", NULL, &desc, err, sizeof(err)) || !tag) {
		reply(c, id, false, NULL, tag || err[0] ? err : "give the snapshot's \"tag\"");
		return;
	}
	if (vp->state == ST_STOPPING) {
		reply(c, id, false, NULL, "the VM is stopping");
		return;
	}
	if (!folder_writable(vp, take ? "take a snapshot" : "revert to a snapshot", err, sizeof(err))) {
		reply(c, id, false, NULL, err);
		return;
	}
	/* A take: the guest agent flushes and freezes the file systems
	 * first (the guest must run for it), and thaws them afterwards. */
	if (take && !was_paused) {
		bool frozen = false;
		char e2[256];

		if (vm_agents_fsfreeze(vp->agents, true, &frozen, e2, sizeof(e2)) < 0)
			vm_log("snapshot '%s' without frozen file systems: %s", tag, e2);
		j.frozen = frozen;
	}
	/* Memory and disks stand still until the state point (a take: the
	 * guest runs on while its memory is written) or the rebuild. */
	machine_pause(vp->m);
	j.paused_us = g_get_monotonic_time();
	if (take) {
		vm_log("taking snapshot '%s'", tag);
		r = snap_take_running(vp->name, tag, desc, &run, err, sizeof(err));
		if (r < 0 && j.moved) {
			/* vm.conf or the index could not be written (a full
			 * disk): back to the images vm.conf names. */
			char e2[400];

			machine_pause(vp->m);
			if (machine_with_drives_closed(vp->m, j.old, NULL, NULL, e2, sizeof(e2)) < 0)
				vm_log("cannot go back to the disks vm.conf names: %s", e2);
			else
				vm_log("back on the disks vm.conf names; the guest's writes since the take are lost");
			for (unsigned d = 0; d < MACHINE_MAX_DRIVES; d++) {
				if (j.paths[d]) {
					g_free(vp->disk_path[d]);
					vp->disk_path[d] = g_strdup(j.old[d]);
				}
			}
		}
		if (r < 0 && !was_paused)
			machine_resume(vp->m);
		if (j.frozen) {
			bool done;
			char e2[256];

			if (vm_agents_fsfreeze(vp->agents, false, &done, e2, sizeof(e2)) < 0)
				vm_log("guest-fsfreeze-thaw after the snapshot: %s", e2);
		}
		if (r < 0) {
			vm_log("snapshot take failed: %s", err);
			reply(c, id, false, NULL, err);
			return;
		}
		vm_log("took snapshot '%s': the guest stood still %.1f ms (pause, overlays, state, disks moved)",
		       tag, j.pause_us / 1e3);
		set_state(vp, was_paused ? ST_PAUSED : ST_RUNNING);
		broadcast_snapshot(vp, "taken", tag);
		{
			g_autoptr(JsonBuilder) b = json_builder_new();

			json_builder_begin_object(b);
			json_builder_set_member_name(b, "pause_ms");
			json_builder_add_double_value(b, j.pause_us / 1e3);
			json_builder_end_object(b);
			reply(c, id, true, json_builder_get_root(b), NULL);
		}
		return;
	}
	vm_log("reverting to snapshot '%s'", tag);
	/* The machine runs with the shares it started with; the snapshot's
	 * memory needs its own (virtio-9p's load refuses others, which would
	 * end the VM midway): refused while nothing has changed. */
	r = snap_shares_check(vp->name, tag, vp->cfg.share, vp->cfg.nshares, err,
			      sizeof(err));
	if (r < 0)
		g_strlcat(err, ": share them as they were ('vivarium share add'), restart the VM and revert again; nothing was changed",
			  sizeof(err));
	if (r == 0)
		r = snap_revert_running(vp->name, tag, true, &mem_id, err, sizeof(err));
	if (r == 0 && mem_id) {
		state = snap_memory_path(vp->name, mem_id, "state");
		ram = snap_memory_path(vp->name, mem_id, "ram");
	}
	if (r == 0)
		r = new_disk_paths(vp, paths, err, sizeof(err));
	/* Rebuilt on the new overlays from the snapshot's state, or booted
	 * (a snapshot without memory); a paused VM runs the snapshot. */
	if (r == 0) {
		atomic_store(&vp->reverting, true);
		r = machine_revert_drives(vp->m, state, ram, paths, err, sizeof(err));
	}
	if (r < 0) {
		atomic_store(&vp->reverting, false);
		vm_log("snapshot revert failed: %s", err);
		if (!was_paused)
			machine_resume(vp->m);
		reply(c, id, false, NULL, err);
		return;
	}
	set_state(vp, ST_RUNNING);
	/* The guest's clock jumped back; its file systems may be frozen (a
	 * take freezes them before the state point). */
	vm_agents_set_time(vp->agents, true);
	broadcast_snapshot(vp, "reverted", tag);
	reply(c, id, true, NULL, NULL);
}

/* A snapshot delete while the VM runs: the images merge while the VM,
 * paused, holds none of its writable disks open. */
struct delete_job {
	struct vmproc *vp;
	const char *tag;
	bool users_checked;
	int r;
	unsigned long long freed;
	char err[1024];
};

static void delete_disks_closed(void *opaque)
{
	struct delete_job *j = opaque;

	j->r = snap_delete_running(j->vp->name, j->tag, true, j->users_checked,
				   &j->freed, j->err, sizeof(j->err));
}

static void req_snapshot_delete(struct vmproc *vp, struct client *c,
				JsonNode *id, JsonObject *req)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	struct delete_job j = { .vp = vp };
	bool was_paused = vp->state == ST_PAUSED;
	gint64 t0;
	char err[1024] = "";
	const char *tag;
	int r;

	if (!get_string(req, "tag", NULL, &tag, err, sizeof(err)) || !tag ||
	    !get_bool(req, "clones_checked", false, &j.users_checked, err, sizeof(err))) {
		reply(c, id, false, NULL, err[0] ? err : "give the snapshot's \"tag\"");
		return;
	}
	if (vp->state == ST_STOPPING) {
		reply(c, id, false, NULL, "the VM is stopping");
		return;
	}
	/* Whether a linked clone is based on the snapshot is in the other
	 * VMs' folders, which the sandbox keeps from us: the client looks
	 * (snap_check_users(), as `vivarium snapshot delete` does). */
	if (!j.users_checked && sandbox_active()) {
		reply(c, id, false, NULL,
		      "snapshot-delete: the sandboxed VM process cannot see the library's other VMs: check that no linked clone is based on the snapshot and say \"clones_checked\": true ('vivarium snapshot delete' does)");
		return;
	}
	j.tag = tag;
	vm_log("deleting snapshot '%s'", tag);
	machine_pause(vp->m);
	t0 = g_get_monotonic_time();
	r = machine_with_drives_closed(vp->m, NULL, delete_disks_closed, &j, err, sizeof(err));
	if (r == 0 && j.r < 0) {
		r = j.r;
		memcpy(err, j.err, sizeof(err));
	}
	if (!was_paused)
		machine_resume(vp->m);
	if (r < 0) {
		vm_log("snapshot delete failed: %s", err);
		reply(c, id, false, NULL, err);
		return;
	}
	vm_log("deleted snapshot '%s' (%llu KiB freed); the guest stood still %.0f ms",
	       tag, j.freed >> 10, (g_get_monotonic_time() - t0) / 1e3);
	broadcast_snapshot(vp, "deleted", tag);
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "freed");
	json_builder_add_int_value(b, (gint64)j.freed);
	json_builder_end_object(b);
	reply(c, id, true, json_builder_get_root(b), NULL);
}

static void req_attach_serial(struct vmproc *vp, struct client *c, JsonNode *id,
			      JsonObject *req)
{
	gint64 history;
	char err[128];
	guint n;

	if (!get_int(req, "history", 0, 0, G_MAXINT32, &history, err, sizeof(err))) {
		reply(c, id, false, NULL, err);
		return;
	}
	n = history > vp->history->len ? vp->history->len : (guint)history;
	reply(c, id, true, NULL, NULL);
	/* From here on the connection carries serial bytes only. */
	c->serial = true;
	if (n)
		client_send(c, vp->history->data + vp->history->len - n, n);
}

static void handle_request(struct vmproc *vp, struct client *c,
			   const char *line, size_t len)
{
	g_autoptr(JsonParser) p = json_parser_new();
	JsonObject *req;
	JsonNode *id;
	const char *cmd;
	char msg[512];

	if (has_nul_escape(line, len)) {
		reply(c, NULL, false, NULL, "strings with NUL characters (\\u0000) are not accepted");
		return;
	}
	if (!json_parser_load_from_data(p, line, (gssize)len, NULL) ||
	    !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(p))) {
		reply(c, NULL, false, NULL, "not a JSON object");
		return;
	}
	req = json_node_get_object(json_parser_get_root(p));
	id = json_object_get_member(req, "id");
	if (!id_ok(id)) {
		reply(c, NULL, false, NULL, "\"id\" must be a string or a finite number");
		return;
	}
	if (!get_string(req, "cmd", NULL, &cmd, msg, sizeof(msg)) || !cmd) {
		reply(c, id, false, NULL, "no \"cmd\" string in the request");
		return;
	}
	if (vp->state == ST_STOPPED) {
		reply(c, id, false, NULL, "the VM has stopped");
		return;
	}
	if (!strcmp(cmd, "status")) {
		reply(c, id, true, status_node(vp), NULL);
	} else if (!strcmp(cmd, "subscribe")) {
		c->events = true;
		reply(c, id, true, status_node(vp), NULL);
	} else if (!strcmp(cmd, "pause")) {
		if (vp->state == ST_STOPPING) {
			reply(c, id, false, NULL, "the VM is stopping");
			return;
		}
		machine_pause(vp->m);
		set_state(vp, ST_PAUSED);
		reply(c, id, true, status_node(vp), NULL);
	} else if (!strcmp(cmd, "resume")) {
		if (vp->state == ST_STOPPING) {
			reply(c, id, false, NULL, "the VM is stopping");
			return;
		}
		bool was_paused = vp->state == ST_PAUSED;

		machine_resume(vp->m);
		set_state(vp, ST_RUNNING);
		if (was_paused)		/* the guest's clock stood still */
			vm_agents_set_time(vp->agents, false);
		reply(c, id, true, status_node(vp), NULL);
	} else if (!strcmp(cmd, "reset")) {
		if (vp->state == ST_STOPPING) {
			reply(c, id, false, NULL, "the VM is stopping");
			return;
		}
		vm_log("reset requested");
		machine_reset(vp->m);	/* a paused VM runs again after it */
		set_state(vp, ST_RUNNING);
		reply(c, id, true, NULL, NULL);
	} else if (!strcmp(cmd, "stop")) {
		req_stop(vp, c, id, req);
	} else if (!strcmp(cmd, "snapshot-take")) {
		req_snapshot(vp, c, id, req, true);
	} else if (!strcmp(cmd, "snapshot-revert")) {
		req_snapshot(vp, c, id, req, false);
	} else if (!strcmp(cmd, "snapshot-delete")) {
		req_snapshot_delete(vp, c, id, req);
	} else if (!strcmp(cmd, "save")) {
		req_save(vp, c, id);
	} else if (!strcmp(cmd, "screenshot")) {
		req_screenshot(vp, c, id, req);
	} else if (!strcmp(cmd, "attach-serial")) {
		req_attach_serial(vp, c, id, req);
	} else if (!strcmp(cmd, "nics")) {
		req_nics(vp, c, id);
	} else if (!strcmp(cmd, "nic-link")) {
		req_nic_link(vp, c, id, req);
	} else if (!strcmp(cmd, "display-size")) {
		req_display_size(vp, c, id, req);
	} else if (!strcmp(cmd, "audio-mute")) {
		req_audio_mute(vp, c, id, req);
	} else if (!strcmp(cmd, "clipboard-set")) {
		req_clipboard_set(vp, c, id, req);
	} else if (!strcmp(cmd, "clipboard-get")) {
		req_clipboard_get(vp, c, id, req);
	} else if (!strcmp(cmd, "usb-attach")) {
		req_usb_attach(vp, c, id, req);
	} else if (!strcmp(cmd, "usb-detach")) {
		req_usb_detach(vp, c, id, req);
	} else if (!strcmp(cmd, "usb-list")) {
		req_usb_list(vp, c, id);
	} else if (!strcmp(cmd, "console-raise")) {
		if (vm_display_raise(vp->display))
			reply(c, id, true, NULL, NULL);
		else
			reply(c, id, false, NULL,
			      "the VM has no console window (it runs with display none)");
	} else {
		/* Cut at a character, not a byte: the error is UTF-8 JSON. */
		g_autofree char *shown = g_utf8_make_valid(cmd, -1);

		if (g_utf8_strlen(shown, -1) > 64)
			*g_utf8_offset_to_pointer(shown, 64) = 0;
		snprintf(msg, sizeof(msg),
			 "unknown command '%s' (status, subscribe, pause, resume, reset, stop, "
			 "save, snapshot-take, snapshot-revert, snapshot-delete, screenshot, attach-serial, nics, nic-link, display-size, audio-mute, clipboard-set, clipboard-get, usb-attach, usb-detach, usb-list, console-raise)", shown);
		reply(c, id, false, NULL, msg);
	}
}

/* ---- clients: input ------------------------------------------------------ */

/* recv() that keeps file descriptors passed along (SCM_RIGHTS) for a
 * request that asks for one ("screenshot" with "fd"); beyond
 * CLIENT_FDS_MAX waiting, they are closed. */
static ssize_t recv_fds(struct client *c, uint8_t *buf, size_t len)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(CLIENT_FDS_MAX * sizeof(int))];
	} u;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr m = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	ssize_t n = recvmsg(c->fd, &m, MSG_CMSG_CLOEXEC);

	if (n < 0)
		return n;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
		size_t k;

		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
			if (c->nfds < CLIENT_FDS_MAX)
				c->fds[c->nfds++] = fd;
			else
				close(fd);
		}
	}
	return n;
}

/* The oldest fd the client passed, now the caller's; -1 if none. */
static int take_fd(struct client *c)
{
	int fd;

	if (!c->nfds)
		return -1;
	fd = c->fds[0];
	memmove(c->fds, c->fds + 1, --c->nfds * sizeof(int));
	return fd;
}

static gboolean client_readable(gint fd, GIOCondition cond, gpointer opaque)
{
	struct client *c = opaque;
	uint8_t buf[4096];
	ssize_t n;

	(void)cond;
	if (c->dead)
		return G_SOURCE_REMOVE;
	n = recv_fds(c, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return G_SOURCE_CONTINUE;
	if (n <= 0) {
		client_kill(c);
		return G_SOURCE_REMOVE;
	}
	if (c->serial) {
		guest_input(c->vp, buf, (size_t)n);
		return G_SOURCE_CONTINUE;
	}
	for (ssize_t i = 0; i < n && !c->dead; i++) {
		if (buf[i] != '\n') {
			g_string_append_c(c->line, (char)buf[i]);
			if (c->line->len > CLIENT_LINE_MAX) {
				reply(c, NULL, false, NULL, "request line too long");
				client_kill(c);
			}
			continue;
		}
		if (c->line->len)
			handle_request(c->vp, c, c->line->str, c->line->len);
		g_string_truncate(c->line, 0);
		/* After attach-serial the rest of the bytes are serial input. */
		if (c->serial && i + 1 < n) {
			guest_input(c->vp, buf + i + 1, (size_t)(n - i - 1));
			break;
		}
	}
	return c->dead ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
}

static gboolean accept_client(gint fd, GIOCondition cond, gpointer opaque)
{
	struct vmproc *vp = opaque;
	struct client *c;
	int cfd;

	(void)cond;
	cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (cfd < 0)
		return G_SOURCE_CONTINUE;
	if (g_list_length(vp->clients) >= CLIENTS_MAX) {
		static const char busy[] =
			"{\"ok\":false,\"error\":\"too many control connections\"}\n";
		ssize_t r = send(cfd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);

		(void)r;
		close(cfd);
		return G_SOURCE_CONTINUE;
	}
	c = g_new0(struct client, 1);
	c->vp = vp;
	c->fd = cfd;
	c->line = g_string_new(NULL);
	c->out = g_byte_array_new();
	c->in_watch = g_unix_fd_add(cfd, G_IO_IN | G_IO_HUP | G_IO_ERR,
				    client_readable, c);
	vp->clients = g_list_append(vp->clients, c);
	return G_SOURCE_CONTINUE;
}

/* ---- the machine thread and the end ------------------------------------- */

static void report_ready(int fd, const char *msg)
{
	if (fd < 0)
		return;
	(void)!write(fd, msg, strlen(msg));
	(void)!write(fd, "\n", 1);
	close(fd);
}

/* 'vivarium start' hears "ok" only once the VM is built: a size that cannot
 * be allocated or a file that is no kernel is its error, not vm.log's. */
static gboolean first_boot_built(gpointer opaque)
{
	struct vmproc *vp = opaque;
	char msg[32];

	vm_log("VM '%s' started: pid %d, %u vCPUs, %" PRIu64 " MiB, control socket %s%s",
	       vp->name, (int)getpid(), vp->cfg.cpus, vp->cfg.memory >> 20, vp->sock_path,
	       vp->resuming ? ", resumed from its saved state" : "");
	/* The machine places them in this order from slot 0x14 (pc.c). */
	for (unsigned i = 0; i < vp->cfg.nshares; i++)
		vm_log("shared folder '%s': %s%s, virtio-9p at PCI 00:%02x.0",
		       vp->cfg.share[i].tag, vp->cfg.share[i].path,
		       vp->cfg.share[i].readonly ? " (read-only)" : "", 0x14 + i);
	if (vp->resuming) {
		/* Consumed, as VirtualBox does: the machine runs on from it.  The
		 * memory file stays mapped (its space is freed when the VM ends). */
		g_autofree char *state = vmlib_vm_file(vp->name, VM_SAVED_STATE_FILE);
		g_autofree char *ram = vmlib_vm_file(vp->name, VM_SAVED_RAM_FILE);

		unlink(state);
		unlink(ram);
		/* The guest's clock stood still while the state was on disk. */
		vm_agents_set_time(vp->agents, false);
	}
	snprintf(msg, sizeof(msg), "ok %d", (int)getpid());
	report_ready(vp->ready_fd, msg);
	vp->ready_fd = -1;
	return G_SOURCE_REMOVE;
}

/* machine_run()'s thread: hand the report to the main loop, ahead of the
 * machine-ended watch. */
/* A restart (the guest's own reboot, a triple fault, `vivarium reset`) is
 * worth a line in vm.log, as VirtualBox's VBox.log has one: a guest that
 * reboots on its own is otherwise invisible there.  At most one line a
 * second, so a guest in a reset loop cannot fill the log; each line says
 * the count so far. */
static gboolean restart_logged(gpointer opaque)
{
	struct vmproc *vp = opaque;
	static gint64 last_us;
	gint64 now = g_get_monotonic_time();

	if (last_us && now - last_us < G_USEC_PER_SEC)
		return G_SOURCE_REMOVE;
	last_us = now;
	vm_log("the machine restarted (boot %u since the VM process started)",
	       machine_boot_count(vp->m));
	return G_SOURCE_REMOVE;
}

static void machine_built(void *opaque, unsigned boot)
{
	struct vmproc *vp = opaque;

	if (boot == 1)
		g_idle_add_full(G_PRIORITY_HIGH, first_boot_built, opaque, NULL);
	else if (!atomic_exchange(&vp->reverting, false))	/* a revert logs itself */
		g_idle_add(restart_logged, opaque);
}

static void *machine_thread(void *opaque)
{
	struct vmproc *vp = opaque;
	sigset_t set;
	char one = 1;
	ssize_t r;

	sandbox_thread_enter(SANDBOX_THREAD_MACHINE, "machine");
	/* Threads created below inherit this mask: signals go to the loop. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	vp->status = machine_run(vp->m, vp->err, sizeof(vp->err));
	r = write(vp->end_pipe[1], &one, 1);
	(void)r;
	return NULL;
}

static gboolean machine_ended(gint fd, GIOCondition cond, gpointer opaque)
{
	struct vmproc *vp = opaque;

	(void)fd, (void)cond;
	pthread_join(vp->thread, NULL);
	/* The last words of the guest. */
	while (guest_out_read(vp) > 0)
		;
	if (vp->ready_fd >= 0) {
		char msg[600];

		snprintf(msg, sizeof(msg), "error: %s%s%s%s",
			 vp->status < 0 ? vp->err : "the VM ended before it started",
			 vp->resuming ? " (the saved state is kept; 'vivarium discard " : "",
			 vp->resuming ? vp->name : "", vp->resuming ? "' drops it)" : "");
		report_ready(vp->ready_fd, msg);
		vp->ready_fd = -1;
	}
	if (vp->status < 0)
		vm_log("VM failed: %s", vp->err);
	else if (vp->saved)
		vm_log("VM stopped: its state is saved; the next start resumes it");
	else if (vp->forced)
		vm_log("VM stopped (plug pulled)");
	else
		vm_log("VM ended: exit status %d%s", vp->status,
		       vp->status == MACHINE_EXIT_POWEROFF ? " (guest powered off)" : "");
	set_state(vp, ST_STOPPED);
	g_main_loop_quit(vp->loop);
	return G_SOURCE_REMOVE;
}

/* The console window's close button: ask the guest to power off, as
 * 'vivarium stop' does (without its deadline: the user can close again or
 * use 'vivarium stop --force'). */
static void window_closed(void *opaque)
{
	struct vmproc *vp = opaque;

	if (vp->state == ST_STOPPED)
		return;
	vm_log("console window closed: pressing the ACPI power button");
	if (vp->state == ST_PAUSED) {
		machine_resume(vp->m);
		set_state(vp, ST_RUNNING);
	}
	if (machine_power_button(vp->m) < 0)
		vm_log("the machine is between resets; the button press was lost");
}

static gboolean rotate_log(gpointer opaque)
{
	(void)opaque;
	log_rotate_check();
	return G_SOURCE_CONTINUE;
}

static gboolean on_signal(gpointer opaque)
{
	struct vmproc *vp = opaque;

	force_stop(vp, "signal received");
	return G_SOURCE_CONTINUE;
}

/* ---- setup ------------------------------------------------------------ */

static int lock_pid_file(struct vmproc *vp, char *err, size_t errlen)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	char buf[32];
	int fd, n;

	vp->pid_path = vmlib_vm_file(vp->name, VM_PID_FILE);
	fd = open(vp->pid_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", vp->pid_path, strerror(errno));
		return -errno;
	}
	(void)!fchmod(fd, 0600);	/* one made by an older version was 0644 */
	if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
		pid_t pid = 0;

		close(fd);
		if (vmlib_running(vp->name, &pid)) {
			snprintf(err, errlen, "VM '%s' is already running (pid %d)",
				 vp->name, (int)pid);
			return -EBUSY;
		}
		/* Only a reader holds it (someone who opened an old 0644 file):
		 * the lock lives on the file, so take a new one. */
		vm_log("%s is locked by a process that is not a VM; replacing it",
		       vp->pid_path);
		unlink(vp->pid_path);
		fd = open(vp->pid_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0 || fcntl(fd, F_OFD_SETLK, &fl) < 0) {
			snprintf(err, errlen, "cannot lock %s: %s", vp->pid_path, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -EBUSY;
		}
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
		snprintf(err, errlen, "cannot write %s: %s", vp->pid_path, strerror(errno));
		close(fd);
		return -EIO;
	}
	vp->pid_fd = fd;
	return 0;
}

static int listen_socket(struct vmproc *vp, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	vp->sock_path = vmlib_socket_path(vp->name, err, errlen);
	if (!vp->sock_path)
		return -EINVAL;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", vp->sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	/* A socket file with nobody behind it is a crashed VM's: replace it.
	 * One that answers belongs to a live process (same name in another
	 * library sharing this runtime directory): leave it alone. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(fd);
		snprintf(err, errlen,
			 "another running VM serves %s (a VM of the same name in another library?)",
			 vp->sock_path);
		vp->sock_path[0] = 0;	/* not ours to remove */
		return -EADDRINUSE;
	}
	close(fd);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	unlink(vp->sock_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", vp->sock_path, strerror(errno));
		close(fd);
		vp->sock_path[0] = 0;
		return -errno;
	}
	chmod(vp->sock_path, 0600);
	vp->listen_fd = fd;
	return 0;
}

/* The NICs' backends, each on the MAC vm.conf gives (or the UUID's): a
 * forward on a busy port or a missing tap device fails the start. */
static int open_nics(struct vmproc *vp, struct machine_config *mc, char *err,
		     size_t errlen)
{
	for (unsigned i = 0; i < vp->cfg.nnics; i++) {
		const struct nic_spec *n = &vp->cfg.nic[i];
		uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, (uint8_t)(0x56 + i) };
		char e[400];
		int r;

		if (vp->cfg.uuid)
			vm_mac_from_uuid(vp->cfg.uuid, i, mac);
		r = nic_open(n, mac, &mc->nic[i], e, sizeof(e));
		if (r < 0) {
			snprintf(err, errlen, "nic%u: %s", i, e);
			return r;
		}
		vp->nic[i] = mc->nic[i].backend;
		memcpy(vp->nic_mac[i], mc->nic[i].mac, 6);
		mc->nnics = i + 1;
	}
	return 0;
}

static int setup_serial(struct vmproc *vp, char *err, size_t errlen)
{
	g_autofree char *log = vmlib_vm_file(vp->name, VM_SERIAL_LOG_FILE);
	int out[2], in[2];

	if (pipe2(out, O_CLOEXEC | O_NONBLOCK) < 0)
		goto fail;
	if (pipe2(in, O_CLOEXEC) < 0) {
		close(out[0]);
		close(out[1]);
		goto fail;
	}
	/* Our end of the input pipe must not block the loop. */
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	vp->serial = chardev_fd_new(in[0], out[1]);
	if (!vp->serial) {
		close(out[0]), close(out[1]), close(in[0]), close(in[1]);
		goto fail;
	}
	vp->ser_out_rd = out[0];
	vp->ser_in_wr = in[1];
	vp->serial_log = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (vp->serial_log >= 0)
		(void)!fchmod(vp->serial_log, 0600);
	else
		vm_log("cannot write %s: %s (serial output is not logged)", log, strerror(errno));
	return 0;
fail:
	snprintf(err, errlen, "cannot set up the serial console: %s", strerror(errno));
	return -errno;
}

/* The guest additions' port, told the shares and their guest paths
 * (vm.conf [shareN] guest-path, default /mnt/TAG). */
static int enable_additions(struct vmproc *vp, char *err, size_t errlen)
{
	g_autofree char *conf = vmlib_vm_file(vp->name, VM_CONF_FILE);
	g_autoptr(GKeyFile) kf = g_key_file_new();
	const char *tags[ADDITIONS_SHARES_MAX];
	bool ro[ADDITIONS_SHARES_MAX];
	struct additions_share as[ADDITIONS_SHARES_MAX];
	unsigned n = MIN(vp->cfg.nshares, ADDITIONS_SHARES_MAX);

	for (unsigned i = 0; i < n; i++) {
		tags[i] = vp->cfg.share[i].tag;
		ro[i] = vp->cfg.share[i].readonly;
	}
	n = additions_shares_from_config(tags, ro, n,
					 g_key_file_load_from_file(kf, conf, G_KEY_FILE_NONE, NULL) ? kf : NULL,
					 as);
	return vm_agents_enable_additions(vp->agents, as, n, err, errlen);
}

static void cleanup(struct vmproc *vp)
{
	while (vp->clients) {
		struct client *c = vp->clients->data;

		/* Best effort: the "stopped" event, then close. */
		if (c->out->len)
			(void)!send(c->fd, c->out->data, c->out->len, MSG_NOSIGNAL | MSG_DONTWAIT);
		client_free(c);
	}
	if (vp->listen_fd >= 0)
		close(vp->listen_fd);
	if (vp->sock_path && vp->sock_path[0])
		unlink(vp->sock_path);
	clip_waiters_drop(vp, NULL);
	vm_agents_off_guest_text(vp->agents, clip_guest_text, vp);
	vm_display_close(vp->display);
	/* The backends' threads take the machine's device lock: stopped
	 * before it goes. */
	for (unsigned i = 0; i < VM_MAX_NICS; i++)
		net_stop(vp->nic[i]);
	machine_destroy(vp->m);
	swtpm_stop(vp->tpm);
	audio_backend_free(vp->audio);
	vm_agents_free(vp->agents);
	for (unsigned i = 0; i < VM_MAX_NICS; i++)
		net_free(vp->nic[i]);
	console_free(vp->con);
	chardev_free(vp->serial);
	if (vp->ser_out_rd >= 0)
		close(vp->ser_out_rd);
	if (vp->ser_in_wr >= 0)
		close(vp->ser_in_wr);
	if (vp->serial_log >= 0)
		close(vp->serial_log);
	/* Unlink while the lock is held, so no new process's file goes. */
	if (vp->pid_fd >= 0) {
		unlink(vp->pid_path);
		close(vp->pid_fd);
	}
	g_free(vp->sock_path);
	g_free(vp->pid_path);
	if (vp->history)
		g_byte_array_unref(vp->history);
	if (vp->ser_in_pending)
		g_byte_array_unref(vp->ser_in_pending);
	for (unsigned i = 0; i < VM_MAX_DISKS; i++)
		g_free(vp->disk_path[i]);
	vm_config_clear(&vp->cfg);
}

int cmd_vm_process(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ready-fd", required_argument, NULL, 'r' },
		{ "display", required_argument, NULL, 'd' },
		{ "vnc", required_argument, NULL, 'v' },
		{ "vnc-password-file", required_argument, NULL, 'p' },
		{ 0 },
	};
	struct vmproc vp = {
		.listen_fd = -1, .pid_fd = -1, .ser_out_rd = -1,
		.ser_in_wr = -1, .serial_log = -1, .end_pipe = { -1, -1 },
		.ready_fd = -1,
	};
	struct machine_config mc;
	struct vm_display_opts dopts = { 0 };
	const char *display = NULL, *vnc = NULL, *vnc_pw = NULL;
	char err[1024] = "", msg[1100];
	int ready_fd = -1, opt, r;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 'r')
			ready_fd = atoi(optarg);
		else if (opt == 'd')
			display = optarg;
		else if (opt == 'v')
			vnc = optarg;
		else if (opt == 'p')
			vnc_pw = optarg;
		else
			return 2;
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "vivarium: vm-process NAME (started by 'vivarium start')\n");
		return 2;
	}
	if (ready_fd >= 0)
		fcntl(ready_fd, F_SETFD, FD_CLOEXEC);
	signal(SIGPIPE, SIG_IGN);
	vp.name = argv[optind];
	vp.started_us = g_get_monotonic_time();
	{
		/* 'vivarium start' made vm.log our stderr: keep it bounded. */
		g_autofree char *log = vmlib_vm_file(vp.name, VM_LOG_FILE);

		log_set_rotation(log, VM_LOG_MAX);
	}
	vp.history = g_byte_array_new();
	vp.ser_in_pending = g_byte_array_new();

	r = vm_config_load(vp.name, &vp.cfg, NULL, err, sizeof(err));
	if (r == 0)
		r = lock_pid_file(&vp, err, sizeof(err));
	if (r == 0)
		r = listen_socket(&vp, err, sizeof(err));
	if (r == 0)
		r = setup_serial(&vp, err, sizeof(err));
	if (r == 0) {
		/* Options of this start override vm.conf. */
		if (vm_display_parse_kind(display ? display : vp.cfg.display, &dopts.kind) < 0) {
			snprintf(err, sizeof(err), "display '%s': use none, sdl or auto", display);
			r = -EINVAL;
		}
		dopts.vnc = vp.vnc = vnc ? (*vnc ? vnc : NULL) : vp.cfg.vnc;
		dopts.vnc_password_file = vnc_pw ? vnc_pw : vp.cfg.vnc_password_file;
		dopts.name = vp.name;
	}
	if (r == 0) {
		vm_machine_config(&vp.cfg, vp.serial, &mc);
		/* The sound card's host side, named after the VM in the mixer;
		 * no server is no error (the card stays, silent). */
		if (vp.cfg.audio) {
			vp.audio = mc.audio = vp.cfg.audio == VM_AUDIO_PA
					      ? audio_pa_new(vp.name) : audio_null_new();
			if (!vp.audio)
				vm_log("audio: cannot start the sound card's host side; no sound card");
		}
		/* A shared folder gone or a tag twice: the start fails. */
		r = share_specs_check(vp.cfg.share, vp.cfg.nshares, err, sizeof(err));
	}
	if (r == 0 && vp.cfg.tpm) {
		/* swtpm keeps the TPM's state in the folder's tpm/; started
		 * now, as the sandbox would not let us exec it. */
		g_autofree char *vdir = vmlib_vm_dir(vp.name);
		g_autofree char *tdir = g_build_filename(vdir, VM_TPM_DIR, NULL);

		r = swtpm_start_as(tdir, vp.cfg.run_as, &vp.tpm, err, sizeof(err));
		if (r == 0) {
			mc.tpm = vp.tpm;
			vm_log("TPM 2.0: swtpm (pid %d), state in %s, TIS at 0x%x",
			       (int)swtpm_pid(vp.tpm), tdir, TPM_TIS_BASE);
		}
	}
	if (r == 0 && vp.cfg.agents) {
		vp.agents = vm_agents_new(true, true, err, sizeof(err));
		if (!vp.agents)
			r = -ENOMEM;
		else
			r = enable_additions(&vp, err, sizeof(err));
		if (r == 0)
			mc.nserial_ports = vm_agents_ports(vp.agents, mc.serial_port,
							   MACHINE_MAX_SERIAL_PORTS);
		if (vp.agents) {
			vm_agents_on_guest_text(vp.agents, clip_guest_text, &vp);
			vm_agents_on_guest_info(vp.agents, broadcast_guest, &vp);
		}
	}
	if (r == 0)
		r = open_nics(&vp, &mc, err, sizeof(err));
	if (r == 0) {
		mc.built = machine_built;
		mc.built_opaque = &vp;
		vp.con = mc.console = console_new();
		if (!vp.con) {
			snprintf(err, sizeof(err), "out of memory");
			r = -ENOMEM;
		}
	}
	if (r == 0 && vp.cfg.usb) {
		char e[256];

		/* Before a host device can be passed through: should this
		 * process die holding one, the keeper gives it back. */
		if (usb_keeper_start(e, sizeof(e)) < 0)
			vm_log("%s: a passed-through USB device stays driverless on the host if this process dies", e);
	}
	if (r == 0)
		r = machine_create(&mc, &vp.m, err, sizeof(err));
	if (r == 0 && vmlib_saved(vp.name)) {
		g_autofree char *state = vmlib_vm_file(vp.name, VM_SAVED_STATE_FILE);
		g_autofree char *ram = vmlib_vm_file(vp.name, VM_SAVED_RAM_FILE);
		char e[700];

		/* Shares changed since the save (vm.conf edited by hand): a
		 * clear line rather than the device's refusal. */
		r = share_state_check(state, vp.cfg.share, vp.cfg.nshares, e, sizeof(e));
		if (r == -ESTALE)
			g_strlcat(e, ": put vm.conf's [shareN] groups back as they were", sizeof(e));
		else
			r = machine_restore_on_start(vp.m, state, ram, e, sizeof(e));
		if (r < 0)
			snprintf(err, sizeof(err),
				 "the saved state cannot be resumed: %s ('vivarium discard %s' drops it)",
				 e, vp.name);
		vp.resuming = r == 0;
	}
	/* vm.conf's [usbN]: attached when present, before the sandbox; not
	 * on a resume (the saved controller had none: save refuses them). */
	for (unsigned i = 0; r == 0 && i < vp.cfg.nusb_hosts; i++) {
		char e[512];
		unsigned port;

		if (vp.resuming) {
			vm_log("USB %s ([usb%u]): not attached on a resume; `vivarium usb attach %s %s` does",
			       vp.cfg.usb_host[i], i, vp.name, vp.cfg.usb_host[i]);
			continue;
		}
		if (machine_usb_attach_spec(vp.m, vp.cfg.usb_host[i], &port, e,
					    sizeof(e)) < 0)
			vm_log("USB %s ([usb%u]) not attached: %s", vp.cfg.usb_host[i], i, e);
		else
			vm_log("USB %s ([usb%u]): passed through on root port %u",
			       vp.cfg.usb_host[i], i, port);
	}
	/* The window and VNC server open before "ready", so that "no display"
	 * or "address in use" reach 'vivarium start'. */
	if (r == 0)
		r = vm_display_open(&vp.display, vp.con, &dopts, window_closed, &vp,
				    err, sizeof(err));
	if (r == 0)
		vp.display_kind = vm_display_is_sdl(vp.display) ? "sdl" : "none";
	if (r == 0 && vp.agents)
		vm_display_set_agents(vp.display, vp.agents);
	if (r == 0 && pipe2(vp.end_pipe, O_CLOEXEC) < 0) {
		snprintf(err, sizeof(err), "pipe: %s", strerror(errno));
		r = -errno;
	}
	/* Everything is open: the user it runs as from now on (inside
	 * vm_sandbox_enter() once Landlock holds the VM's paths, which the
	 * user may not reach: set*id is forbidden afterwards). */
	if (r == 0 && vp.cfg.run_as && !vp.cfg.sandbox)
		r = vm_run_as(vp.cfg.run_as, err, sizeof(err));
	/* Everything is open: the machine builds (and rebuilds) inside the
	 * sandbox. */
	if (r == 0 && vp.cfg.sandbox) {
		struct vm_sandbox_opts so = {
			.mc = &mc, .vm_name = vp.name, .sock_path = vp.sock_path,
			.window = vm_display_is_sdl(vp.display),
			.coredump = vp.cfg.coredump, .run_as = vp.cfg.run_as,
		};
		char summary[256];

		r = vm_sandbox_enter(&so, summary, sizeof(summary), err, sizeof(err));
		if (r == 0)
			vm_log("sandbox: %s", summary);
	} else if (r == 0) {
		vm_log("sandbox: off (vm.conf sandbox=off)%s",
		       vp.cfg.coredump ? "" : "; core dumps off");
		if (!vp.cfg.coredump)
			prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	}
	if (r == 0 && vp.cfg.run_as)
		vm_log("running as %s (uid %u, gid %u)", vp.cfg.run_as,
		       (unsigned)geteuid(), (unsigned)getegid());
	else if (r == 0 && geteuid() == 0)
		vm_log("running as root (uid 0)%s; vm.conf run-as=USER drops to that user after set-up",
		       vp.cfg.sandbox ? ", without capabilities" : "");
	if (r == 0 && (r = -pthread_create(&vp.thread, NULL, machine_thread, &vp)))
		snprintf(err, sizeof(err), "cannot start the machine thread: %s", strerror(-r));
	if (r < 0) {
		vm_log("cannot start VM '%s': %s", vp.name, err);
		snprintf(msg, sizeof(msg), "error: %s", err);
		report_ready(ready_fd, msg);
		cleanup(&vp);
		return 1;
	}
	vp.ready_fd = ready_fd;	/* answered once the VM is built */
	vp.loop = g_main_loop_new(NULL, FALSE);
	g_unix_fd_add(vp.listen_fd, G_IO_IN, accept_client, &vp);
	g_unix_fd_add(vp.ser_out_rd, G_IO_IN, guest_out_readable, &vp);
	g_unix_fd_add(vp.end_pipe[0], G_IO_IN, machine_ended, &vp);
	/* Sandboxed device threads leave vm.log's rotation to this loop. */
	g_timeout_add_seconds(5, rotate_log, NULL);
	g_unix_signal_add(SIGTERM, on_signal, &vp);
	g_unix_signal_add(SIGINT, on_signal, &vp);
	g_unix_signal_add(SIGHUP, on_signal, &vp);
	g_main_loop_run(vp.loop);
	g_main_loop_unref(vp.loop);

	close(vp.end_pipe[0]);
	close(vp.end_pipe[1]);
	r = vp.status < 0 ? 1 : vp.status;
	cleanup(&vp);
	return r;
}
