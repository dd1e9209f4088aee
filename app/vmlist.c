/* SPDX-License-Identifier: MIT */
/*
 * app/vmlist.c - the VM library as a live model (vmlist.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib-unix.h>

#include "ctl.h"
#include "vmlist.h"

/* A VM's socket appears at bind(), a moment before listen(): connects
 * refused then are tried again, a bounded number of times. */
#define CONNECT_RETRY_MS	100
#define CONNECT_RETRIES		50
/* docs/control-protocol.md: a client that lets 1 MiB pile up is dropped;
 * a line longer than that from the VM is not a protocol we speak. */
#define LINE_MAX_BYTES		(1u << 20)

struct vm_entry {
	struct vm_item it;		/* first: the public view */
	struct vm_list *l;
	GFileMonitor *dir_mon;
	int fd;				/* subscribed connection; -1: none */
	GSource *watch;
	GString *buf;
	GSource *retry;
	unsigned retries;
	bool stopped_saved;		/* the "stopped" event said saved */
	bool got_stopped;
	bool restarted;			/* a new socket came before the old one's end */
};

struct vm_list {
	GPtrArray *items;		/* struct vm_entry *, sorted by name */
	GMainContext *ctx;
	GFileMonitor *root_mon, *run_mon;
	char *root, *rundir;
	vm_list_fn fn;
	void *opaque;
};

static const char *const state_names[] = {
	[VM_STATE_STOPPED] = "stopped",
	[VM_STATE_SAVED] = "saved",
	[VM_STATE_STARTING] = "starting",
	[VM_STATE_RUNNING] = "running",
	[VM_STATE_PAUSED] = "paused",
	[VM_STATE_STOPPING] = "stopping",
	[VM_STATE_BROKEN] = "broken",
};

const char *vm_state_name(enum vm_state st)
{
	return (unsigned)st < G_N_ELEMENTS(state_names) ? state_names[st] : "?";
}

static void emit(struct vm_entry *e, enum vm_list_change what)
{
	if (e->l->fn)
		e->l->fn(e->l, &e->it, what, e->l->opaque);
}

static void entry_connect(struct vm_entry *e);
static void rescan(struct vm_list *l, bool notify);

/* ---- vm.conf and the state on disk ----------------------------------------- */

static void entry_load_conf(struct vm_entry *e)
{
	char err[512];

	vm_config_clear(&e->it.cfg);
	g_clear_pointer(&e->it.error, g_free);
	if (vm_config_load(e->it.name, &e->it.cfg, NULL, err, sizeof(err)) < 0) {
		memset(&e->it.cfg, 0, sizeof(e->it.cfg));
		e->it.error = g_strdup(err);
	}
}

/* The state of a VM we are not connected to, from its folder. */
static void entry_disk_state(struct vm_entry *e)
{
	pid_t pid = 0;

	if (e->fd >= 0)
		return;
	if (vmlib_running(e->it.name, &pid)) {
		e->it.state = VM_STATE_STARTING;
		e->it.pid = pid;
		entry_connect(e);
		return;
	}
	e->it.pid = 0;
	if (e->it.error)
		e->it.state = VM_STATE_BROKEN;
	else
		e->it.state = vmlib_saved(e->it.name) ? VM_STATE_SAVED : VM_STATE_STOPPED;
}

/* ---- the subscribed connection ----------------------------------------------- */

static void entry_disconnect(struct vm_entry *e)
{
	if (e->watch) {
		g_source_destroy(e->watch);
		g_clear_pointer(&e->watch, g_source_unref);
	}
	if (e->fd >= 0)
		close(e->fd);
	e->fd = -1;
	g_string_truncate(e->buf, 0);
}

/* The VM ended (or its socket went): stopped or saved. */
static void entry_ended(struct vm_entry *e)
{
	pid_t old = e->it.pid, now = 0;

	entry_disconnect(e);
	e->it.pid = 0;
	if (e->it.error)
		e->it.state = VM_STATE_BROKEN;
	else if (e->got_stopped)
		e->it.state = e->stopped_saved ? VM_STATE_SAVED : VM_STATE_STOPPED;
	else	/* killed: no event; what its folder holds */
		e->it.state = vmlib_saved(e->it.name) ? VM_STATE_SAVED : VM_STATE_STOPPED;
	/* Started again before we saw this end: a new process holds vm.pid. */
	if (e->restarted && vmlib_running(e->it.name, &now) && now != old) {
		e->restarted = false;
		e->retries = 0;
		e->it.state = VM_STATE_STARTING;
		entry_connect(e);
	}
	e->restarted = false;
	emit(e, VM_LIST_CHANGED);
}

static enum vm_state state_from_str(const char *s, enum vm_state dflt)
{
	for (unsigned i = 0; i < G_N_ELEMENTS(state_names); i++)
		if (s && !strcmp(s, state_names[i]))
			return (enum vm_state)i;
	return dflt;
}

static void take_guest(struct vm_entry *e, JsonObject *o)
{
	JsonNode *g = json_object_get_member(o, "guest");
	const char *os;

	if (!g || !JSON_NODE_HOLDS_OBJECT(g))
		return;
	os = json_object_get_string_member_with_default(json_node_get_object(g), "os", NULL);
	g_free(e->it.guest_os);
	e->it.guest_os = os && *os ? g_strdup(os) : NULL;
}

/* One line from the VM: the reply to subscribe (the status object) or an
 * event.  Returns false to drop the connection. */
static bool entry_line(struct vm_entry *e, const char *line, gsize len)
{
	g_autoptr(JsonParser) p = json_parser_new();
	JsonObject *o;
	const char *ev;

	if (!json_parser_load_from_data(p, line, (gssize)len, NULL) ||
	    !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(p)))
		return false;
	o = json_node_get_object(json_parser_get_root(p));
	ev = json_object_get_string_member_with_default(o, "event", NULL);
	if (!ev) {
		JsonNode *res = json_object_get_member(o, "result");

		if (!json_object_get_boolean_member_with_default(o, "ok", FALSE) ||
		    !res || !JSON_NODE_HOLDS_OBJECT(res))
			return false;	/* refused (too many clients...) */
		o = json_node_get_object(res);
		e->it.state = state_from_str(json_object_get_string_member_with_default(o, "state", NULL),
					     VM_STATE_RUNNING);
		e->it.pid = (pid_t)json_object_get_int_member_with_default(o, "pid", e->it.pid);
		take_guest(e, o);
		emit(e, VM_LIST_CHANGED);
		return true;
	}
	if (!strcmp(ev, "state")) {
		const char *st = json_object_get_string_member_with_default(o, "state", NULL);

		if (st && !strcmp(st, "stopped")) {
			const char *why = json_object_get_string_member_with_default(o, "error", NULL);

			e->got_stopped = true;
			e->stopped_saved = json_object_get_boolean_member_with_default(o, "saved", FALSE);
			g_free(e->it.last_error);
			e->it.last_error = why ? g_strdup(why) : NULL;
			return true;	/* the end of file follows */
		}
		e->it.state = state_from_str(st, e->it.state);
	} else if (!strcmp(ev, "guest")) {
		take_guest(e, o);
	}
	/* snapshot, nic: the details changed */
	emit(e, VM_LIST_CHANGED);
	return true;
}

static gboolean on_readable(gint fd, GIOCondition cond, gpointer opaque)
{
	struct vm_entry *e = opaque;
	char chunk[16384];

	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		char *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0)
			goto ended;
		g_string_append_len(e->buf, chunk, n);
		while ((nl = memchr(e->buf->str, '\n', e->buf->len))) {
			gsize len = (gsize)(nl - e->buf->str);

			if (!entry_line(e, e->buf->str, len))
				goto ended;
			g_string_erase(e->buf, 0, (gssize)len + 1);
		}
		if (e->buf->len > LINE_MAX_BYTES)
			goto ended;
	}
	return G_SOURCE_CONTINUE;
ended:
	entry_ended(e);		/* destroys this source (GLib holds it until we return) */
	return G_SOURCE_REMOVE;
}

static gboolean on_retry(gpointer opaque)
{
	struct vm_entry *e = opaque;

	g_clear_pointer(&e->retry, g_source_unref);
	entry_connect(e);
	return G_SOURCE_REMOVE;
}

static void entry_connect(struct vm_entry *e)
{
	static const char req[] = "{\"id\": 1, \"cmd\": \"subscribe\"}\n";
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	g_autofree char *path = NULL;
	char err[256];
	int fd;

	if (e->fd >= 0 || e->retry)
		return;
	path = vmlib_socket_path(e->it.name, err, sizeof(err));
	if (!path || strlen(path) >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
		close(fd);
		/* Not listening yet (or its socket not made yet): while its
		 * process holds vm.pid, a few more tries. */
		if (e->retries++ < CONNECT_RETRIES && vmlib_running(e->it.name, NULL)) {
			e->retry = g_timeout_source_new(CONNECT_RETRY_MS);
			g_source_set_callback(e->retry, on_retry, e, NULL);
			g_source_attach(e->retry, e->l->ctx);
		} else if (e->it.state == VM_STATE_STARTING) {
			e->it.state = vmlib_saved(e->it.name) ? VM_STATE_SAVED : VM_STATE_STOPPED;
			e->it.pid = 0;
			emit(e, VM_LIST_CHANGED);
		}
		return;
	}
	e->fd = fd;
	e->retries = 0;
	e->got_stopped = e->stopped_saved = e->restarted = false;
	e->watch = g_unix_fd_source_new(fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
	g_source_set_callback(e->watch, (GSourceFunc)(void (*)(void))on_readable, e, NULL);
	g_source_attach(e->watch, e->l->ctx);
}

/* ---- watching folders ------------------------------------------------------------ */

static bool is_name(GFile *f, const char *name)
{
	g_autofree char *b = f ? g_file_get_basename(f) : NULL;

	return b && !strcmp(b, name);
}

/* Something changed in VM @e's folder: vm.conf (edit), saved.state. */
static void on_vm_dir(GFileMonitor *m, GFile *f, GFile *other,
		      GFileMonitorEvent ev, gpointer opaque)
{
	struct vm_entry *e = opaque;
	enum vm_state before = e->it.state;

	if (is_name(f, VM_CONF_FILE) || is_name(other, VM_CONF_FILE)) {
		if (ev == G_FILE_MONITOR_EVENT_CHANGED)
			return;	/* wait for CHANGES_DONE: a whole file */
		if (ev == G_FILE_MONITOR_EVENT_DELETED) {
			rescan(e->l, true);	/* may free @e */
			return;
		}
		entry_load_conf(e);
		if (e->fd < 0)
			entry_disk_state(e);
		emit(e, VM_LIST_CHANGED);
	} else if (is_name(f, VM_SAVED_STATE_FILE) || is_name(other, VM_SAVED_STATE_FILE)) {
		if (e->fd >= 0 || e->retry)
			return;
		entry_disk_state(e);
		if (e->it.state != before)
			emit(e, VM_LIST_CHANGED);
	}
}

static struct vm_entry *entry_new(struct vm_list *l, const char *name)
{
	struct vm_entry *e = g_new0(struct vm_entry, 1);
	g_autofree char *dir = vmlib_vm_dir(name);
	g_autoptr(GFile) f = g_file_new_for_path(dir);

	e->l = l;
	e->fd = -1;
	e->buf = g_string_new(NULL);
	e->it.name = g_strdup(name);
	entry_load_conf(e);
	e->dir_mon = g_file_monitor_directory(f, G_FILE_MONITOR_WATCH_MOVES, NULL, NULL);
	if (e->dir_mon)
		g_signal_connect(e->dir_mon, "changed", G_CALLBACK(on_vm_dir), e);
	entry_disk_state(e);
	return e;
}

static void entry_free(struct vm_entry *e)
{
	if (e->dir_mon) {
		g_file_monitor_cancel(e->dir_mon);
		g_signal_handlers_disconnect_by_data(e->dir_mon, e);
		g_object_unref(e->dir_mon);
	}
	entry_disconnect(e);
	if (e->retry) {
		g_source_destroy(e->retry);
		g_source_unref(e->retry);
	}
	g_string_free(e->buf, TRUE);
	vm_config_clear(&e->it.cfg);
	g_free(e->it.name);
	g_free(e->it.error);
	g_free(e->it.guest_os);
	g_free(e->it.last_error);
	g_free(e);
}

static gint cmp_entry(gconstpointer a, gconstpointer b)
{
	const struct vm_entry *x = *(struct vm_entry *const *)a;
	const struct vm_entry *y = *(struct vm_entry *const *)b;

	return strcmp(x->it.name, y->it.name);
}

static struct vm_entry *find(const struct vm_list *l, const char *name, guint *index)
{
	for (guint i = 0; i < l->items->len; i++) {
		struct vm_entry *e = g_ptr_array_index(l->items, i);

		if (!strcmp(e->it.name, name)) {
			if (index)
				*index = i;
			return e;
		}
	}
	return NULL;
}

/* Bring the items in line with the library's folders. */
static void rescan(struct vm_list *l, bool notify)
{
	g_auto(GStrv) names = vmlib_list();
	GPtrArray *added = g_ptr_array_new();

	for (guint i = l->items->len; i-- > 0;) {
		struct vm_entry *e = g_ptr_array_index(l->items, i);

		if (!g_strv_contains((const char *const *)names, e->it.name)) {
			g_ptr_array_remove_index(l->items, i);
			if (notify)
				emit(e, VM_LIST_REMOVED);
			entry_free(e);
		}
	}
	for (char **n = names; *n; n++) {
		if (!find(l, *n, NULL)) {
			struct vm_entry *e = entry_new(l, *n);

			g_ptr_array_add(l->items, e);
			g_ptr_array_add(added, e);
		}
	}
	g_ptr_array_sort(l->items, cmp_entry);
	for (guint i = 0; notify && i < added->len; i++)
		emit(g_ptr_array_index(added, i), VM_LIST_ADDED);
	g_ptr_array_free(added, TRUE);
}

static void on_root(GFileMonitor *m, GFile *f, GFile *other,
		    GFileMonitorEvent ev, gpointer opaque)
{
	switch (ev) {
	case G_FILE_MONITOR_EVENT_CREATED:
	case G_FILE_MONITOR_EVENT_DELETED:
	case G_FILE_MONITOR_EVENT_MOVED_IN:
	case G_FILE_MONITOR_EVENT_MOVED_OUT:
	case G_FILE_MONITOR_EVENT_RENAMED:
		rescan(opaque, true);
		break;
	default:
		break;
	}
}

/* A control socket appeared: its VM started. */
static void on_rundir(GFileMonitor *m, GFile *f, GFile *other,
		      GFileMonitorEvent ev, gpointer opaque)
{
	struct vm_list *l = opaque;
	g_autofree char *base = NULL;
	struct vm_entry *e;
	size_t n;

	if (ev != G_FILE_MONITOR_EVENT_CREATED && ev != G_FILE_MONITOR_EVENT_MOVED_IN &&
	    ev != G_FILE_MONITOR_EVENT_RENAMED)
		return;
	base = g_file_get_basename(ev == G_FILE_MONITOR_EVENT_RENAMED ? other : f);
	n = base ? strlen(base) : 0;
	if (n <= 5 || strcmp(base + n - 5, ".sock"))
		return;
	base[n - 5] = 0;
	e = find(l, base, NULL);
	if (!e) {		/* made and started before its folder's event came */
		rescan(l, true);
		e = find(l, base, NULL);
	}
	if (e && e->fd >= 0) {
		e->restarted = true;	/* the old process's end is still queued */
	} else if (e) {
		e->retries = 0;
		if (e->retry) {
			g_source_destroy(e->retry);
			g_clear_pointer(&e->retry, g_source_unref);
		}
		e->it.state = VM_STATE_STARTING;
		entry_connect(e);
		emit(e, VM_LIST_CHANGED);
	}
}

/* ---- the list ------------------------------------------------------------------------ */

static GFileMonitor *watch_dir(const char *path, GCallback cb, void *opaque,
			       char *err, size_t errlen)
{
	g_autoptr(GFile) f = g_file_new_for_path(path);
	g_autoptr(GError) e = NULL;
	GFileMonitor *m = g_file_monitor_directory(f, G_FILE_MONITOR_WATCH_MOVES, NULL, &e);

	if (!m) {
		snprintf(err, errlen, "cannot watch %s: %s", path, e->message);
		return NULL;
	}
	g_signal_connect(m, "changed", cb, opaque);
	return m;
}

struct vm_list *vm_list_new(vm_list_fn fn, void *opaque, char *err,
			    size_t errlen)
{
	struct vm_list *l = g_new0(struct vm_list, 1);

	l->fn = fn;
	l->opaque = opaque;
	l->ctx = g_main_context_ref_thread_default();
	l->items = g_ptr_array_new();
	l->root = vmlib_root();
	if (g_mkdir_with_parents(l->root, VM_DIR_MODE) < 0) {
		snprintf(err, errlen, "cannot make %s: %s", l->root, g_strerror(errno));
		goto fail;
	}
	l->rundir = vmlib_runtime_dir(err, errlen);
	if (!l->rundir)
		goto fail;
	/* Watch first, then read: nothing falls between the two. */
	l->root_mon = watch_dir(l->root, G_CALLBACK(on_root), l, err, errlen);
	if (!l->root_mon)
		goto fail;
	l->run_mon = watch_dir(l->rundir, G_CALLBACK(on_rundir), l, err, errlen);
	if (!l->run_mon)
		goto fail;
	rescan(l, false);
	return l;
fail:
	vm_list_free(l);
	return NULL;
}

void vm_list_free(struct vm_list *l)
{
	if (!l)
		return;
	if (l->root_mon) {
		g_file_monitor_cancel(l->root_mon);
		g_signal_handlers_disconnect_by_data(l->root_mon, l);
		g_object_unref(l->root_mon);
	}
	if (l->run_mon) {
		g_file_monitor_cancel(l->run_mon);
		g_signal_handlers_disconnect_by_data(l->run_mon, l);
		g_object_unref(l->run_mon);
	}
	for (guint i = 0; i < l->items->len; i++)
		entry_free(g_ptr_array_index(l->items, i));
	g_ptr_array_free(l->items, TRUE);
	g_main_context_unref(l->ctx);
	g_free(l->root);
	g_free(l->rundir);
	g_free(l);
}

unsigned vm_list_count(const struct vm_list *l)
{
	return l->items->len;
}

const struct vm_item *vm_list_nth(const struct vm_list *l, unsigned i)
{
	return i < l->items->len ? &((struct vm_entry *)g_ptr_array_index(l->items, i))->it : NULL;
}

const struct vm_item *vm_list_find(const struct vm_list *l, const char *name)
{
	struct vm_entry *e = find(l, name, NULL);

	return e ? &e->it : NULL;
}

int vm_list_request(struct vm_list *l, const char *name, const char *cmd,
		    JsonObject *args, int timeout_ms, char *err, size_t errlen)
{
	JsonNode *res = NULL;
	int r = ctl_simple(name, cmd, args, timeout_ms, &res, err, errlen);

	if (res)
		json_node_unref(res);
	return r;
}
