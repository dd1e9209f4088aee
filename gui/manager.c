/* SPDX-License-Identifier: MIT */
/*
 * gui/manager.c - vivarium-manager: the VM library in a GTK 3 window.
 *
 * Everything it shows comes from libvivarium's live model (app/vmlist.h):
 * the library folder and the VMs' control sockets, never `vivarium`'s
 * output.  Actions go to the VMs' control sockets (vm_list_request()) or
 * launch a VM's process (vm_start()), each on a worker thread so that the
 * window never waits; their one-line errors appear in the info bar.
 * Closing the window leaves running VMs running.
 *
 * The dialogs (New VM, Settings, Snapshots: newvm.c, settings.c,
 * snapshots.c) and Delete change the library through the same calls as
 * the CLI (app/vmops.h, snaplib.h, clonelib.h); the model then hears the
 * change from the library folder like any other.
 *
 * Thumbnails: every THUMB_PERIOD_S while the window is shown, each running
 * VM whose row is in view is asked for a screenshot ("screenshot" with
 * "fd": a memfd of ours) on a worker thread, one at a time per VM; the PNG
 * is scaled into the list.  Nothing is asked while the window is hidden or
 * minimized.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gtk/gtk.h>
#include <sys/mman.h>

#include "ctl.h"

#include "manager.h"
#include "snaplib.h"
#include "vmlist.h"
#include "vmops.h"
#include "vmproc.h"

#define APP_ID		"org.vivarium.Manager"
#define THUMB_PERIOD_S		3
#define THUMB_W			96	/* pixels; 4:3 */
#define THUMB_H			72
#define THUMB_PNG_MAX		(32u << 20)	/* a 2560x1600 screen's PNG fits */

enum { COL_NAME, COL_STATE, COL_OS, COL_ICON, COL_THUMB, NCOLS };

/* The details pane: one row per fact. */
enum {
	D_NAME, D_STATE, D_OS, D_MEMORY, D_CPUS, D_FIRMWARE, D_DISPLAY,
	D_DISKS, D_CDROM, D_NICS, D_SHARES, D_SNAPS, D_NOTES, D_ERROR, ND
};
static const char *const detail_names[ND] = {
	"Name", "State", "Guest OS", "Memory", "vCPUs", "Firmware",
	"Display", "Disks", "CD-ROM", "Network", "Shared folders", "Snapshots", "Notes",
	"Last error",
};

struct mgr {
	GtkApplication *app;
	GtkWidget *win, *tree, *info, *info_label;
	GtkWidget *detail[ND], *detail_key[ND], *details_box, *empty;
	GtkToolItem *b_new, *b_start, *b_stop, *b_off, *b_pause, *b_reset, *b_console;
	GtkToolItem *b_snap, *b_settings, *b_delete;
	GtkListStore *store;
	struct vm_list *list;
	char *exe;			/* the vivarium binary, for vm_start() */
	GHashTable *busy;		/* names with an action under way */
	GHashTable *shooting;		/* names with a thumbnail under way */
	bool report_startup;		/* --startup-report */
	bool drawn;
	char *want_selected;		/* made by us, not yet seen by the library monitor */
};

static struct mgr M;
static void set_icon(GtkToolItem *t, const char *icon);
static double t_exec;			/* seconds since boot at exec */

/* ---- helpers -------------------------------------------------------------- */

static const char *state_label(const struct vm_item *it)
{
	switch (it->state) {
	case VM_STATE_STOPPED: return "Stopped";
	case VM_STATE_SAVED: return "Saved";
	case VM_STATE_STARTING: return "Starting";
	case VM_STATE_RUNNING: return "Running";
	case VM_STATE_PAUSED: return "Paused";
	case VM_STATE_STOPPING: return "Stopping";
	case VM_STATE_BROKEN: return "Broken";
	}
	return "?";
}

static const char *state_icon(const struct vm_item *it)
{
	switch (it->state) {
	case VM_STATE_RUNNING: return "media-playback-start";
	case VM_STATE_PAUSED: return "media-playback-pause";
	case VM_STATE_SAVED: return "document-save";
	case VM_STATE_BROKEN: return "dialog-error";
	case VM_STATE_STARTING:
	case VM_STATE_STOPPING: return "content-loading";
	default: return "media-playback-stop";
	}
}

static void show_message_v(bool error, const char *fmt, va_list ap)
{
	g_autofree char *msg = g_strdup_vprintf(fmt, ap);

	gtk_info_bar_set_message_type(GTK_INFO_BAR(M.info), error ? GTK_MESSAGE_ERROR : GTK_MESSAGE_INFO);
	gtk_label_set_text(GTK_LABEL(M.info_label), msg);
	gtk_widget_show(M.info);
	gtk_info_bar_set_revealed(GTK_INFO_BAR(M.info), TRUE);
}

static void show_error(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static void show_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	show_message_v(true, fmt, ap);
	va_end(ap);
}

void mgr_message(bool error, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	show_message_v(error, fmt, ap);
	va_end(ap);
}

GtkWindow *mgr_window(void) { return M.win ? GTK_WINDOW(M.win) : NULL; }
struct vm_list *mgr_list(void) { return M.list; }

static char *selected_name(void)
{
	GtkTreeSelection *sel = gtk_tree_view_get_selection(GTK_TREE_VIEW(M.tree));
	GtkTreeModel *model;
	GtkTreeIter it;
	char *name = NULL;

	if (gtk_tree_selection_get_selected(sel, &model, &it))
		gtk_tree_model_get(model, &it, COL_NAME, &name, -1);
	return name;
}

char *mgr_selected(void)
{
	return selected_name();
}

static bool find_row(const char *name, GtkTreeIter *out);

void mgr_select(const char *name)
{
	GtkTreeIter it;

	g_clear_pointer(&M.want_selected, g_free);
	if (find_row(name, &it))
		gtk_tree_selection_select_iter(gtk_tree_view_get_selection(GTK_TREE_VIEW(M.tree)), &it);
	else	/* the folder monitor has not reported it yet: select it when it does */
		M.want_selected = g_strdup(name);
}

static bool find_row(const char *name, GtkTreeIter *out)
{
	GtkTreeModel *model = GTK_TREE_MODEL(M.store);
	bool ok = gtk_tree_model_get_iter_first(model, out);

	while (ok) {
		g_autofree char *n = NULL;

		gtk_tree_model_get(model, out, COL_NAME, &n, -1);
		if (n && !strcmp(n, name))
			return true;
		ok = gtk_tree_model_iter_next(model, out);
	}
	return false;
}

/* ---- the details pane and the toolbar ------------------------------------------- */

/* "2.0 GiB" */
static char *human_size(uint64_t bytes)
{
	return g_format_size_full(bytes, G_FORMAT_SIZE_IEC_UNITS);
}

/* "PATH: 16.0 GiB, 196.0 kB on disk" from the image's own header. */
static char *disk_text(const char *path)
{
	uint64_t virt, used;
	char err[256];
	g_autofree char *vs = NULL, *us = NULL;

	if (vm_disk_sizes(path, &virt, &used, err, sizeof(err)) < 0)
		return g_strdup_printf("%s (%s)", path, access(path, F_OK) ? "missing" : "unreadable");
	vs = human_size(virt);
	us = human_size(used);
	return g_strdup_printf("%s: %s, %s on disk", path, vs, us);
}

static void set_detail(unsigned i, const char *text)
{
	bool shown = text && *text;

	gtk_label_set_text(GTK_LABEL(M.detail[i]), shown ? text : "");
	gtk_widget_set_visible(M.detail[i], shown);
	gtk_widget_set_visible(M.detail_key[i], shown);
}

static void update_details(void)
{
	g_autofree char *name = selected_name();
	const struct vm_item *it = name ? vm_list_find(M.list, name) : NULL;
	const struct vm_config *c;
	GString *s;
	char buf[32];

	gtk_widget_set_visible(M.details_box, it != NULL);
	gtk_widget_set_visible(M.empty, it == NULL);
	if (!it)
		return;
	c = &it->cfg;
	set_detail(D_NAME, it->name);
	set_detail(D_STATE, state_label(it));
	set_detail(D_OS, it->guest_os);
	set_detail(D_ERROR, it->error ? it->error : it->last_error);
	if (it->state == VM_STATE_BROKEN) {
		for (unsigned i = D_MEMORY; i <= D_NOTES; i++)
			set_detail(i, NULL);
		return;
	}
	set_detail(D_MEMORY, vm_size_str(c->memory, buf, sizeof(buf)));
	snprintf(buf, sizeof(buf), "%u", c->cpus);
	set_detail(D_CPUS, buf);
	set_detail(D_FIRMWARE, c->kernel ? "direct kernel boot" : vm_firmware_name(c->firmware));
	{
		g_autofree char *d = g_strdup_printf("%s, graphics %s%s%s", c->display ? c->display : "auto",
						     c->vga ? c->vga : "std", c->vnc ? ", VNC " : "",
						     c->vnc ? c->vnc : "");
		set_detail(D_DISPLAY, d);
	}
	s = g_string_new(NULL);
	for (unsigned i = 0; i < c->ndisks; i++) {
		g_autofree char *f = disk_text(c->disk[i].path);

		g_string_append_printf(s, "%s%s, %s%s", i ? "\n" : "", f, vm_if_name(c->disk[i].bus),
				       c->disk[i].readonly ? ", read-only" : "");
	}
	set_detail(D_DISKS, s->len ? s->str : "none");
	g_string_truncate(s, 0);
	set_detail(D_CDROM, c->cdrom ? c->cdrom : "empty");
	for (unsigned i = 0; i < c->nnics; i++)
		g_string_append_printf(s, "%s%s on %s", i ? "\n" : "", nic_model_name(c->nic[i].model),
				       nic_net_name(c->nic[i].net));
	set_detail(D_NICS, s->len ? s->str : "none");
	g_string_truncate(s, 0);
	for (unsigned i = 0; i < c->nshares; i++)
		g_string_append_printf(s, "%s%s: %s%s", i ? "\n" : "", c->share[i].tag, c->share[i].path,
				       c->share[i].readonly ? " (read-only)" : "");
	set_detail(D_SHARES, s->len ? s->str : NULL);
	g_string_free(s, TRUE);
	{
		struct snap_index ix;
		char err[256];

		if (snap_load(it->name, &ix, err, sizeof(err)) < 0) {
			set_detail(D_SNAPS, err);
		} else {
			snprintf(buf, sizeof(buf), "%u", ix.snaps->len);
			set_detail(D_SNAPS, buf);
		}
		snap_index_clear(&ix);
	}
	set_detail(D_NOTES, c->notes);
}

static void update_actions(void)
{
	g_autofree char *name = selected_name();
	const struct vm_item *it = name ? vm_list_find(M.list, name) : NULL;
	bool busy = it && g_hash_table_contains(M.busy, it->name);
	bool up = it && (it->state == VM_STATE_RUNNING || it->state == VM_STATE_PAUSED);
	bool paused = it && it->state == VM_STATE_PAUSED;

	gtk_widget_set_sensitive(GTK_WIDGET(M.b_start), it && !busy &&
				 (it->state == VM_STATE_STOPPED || it->state == VM_STATE_SAVED));
	gtk_widget_set_sensitive(GTK_WIDGET(M.b_stop), up && !busy);
	gtk_widget_set_sensitive(GTK_WIDGET(M.b_off), it && !busy &&
				 (up || it->state == VM_STATE_STOPPING));
	gtk_widget_set_sensitive(GTK_WIDGET(M.b_pause), up && !busy);
	gtk_widget_set_sensitive(GTK_WIDGET(M.b_reset), up && !busy);
	gtk_widget_set_sensitive(GTK_WIDGET(M.b_console), up);
	/* Delete stays pressable on a running VM: it says why it refuses. */
	gtk_widget_set_sensitive(GTK_WIDGET(M.b_delete), it && !busy);
	gtk_widget_set_sensitive(GTK_WIDGET(M.b_settings), it && it->state != VM_STATE_BROKEN);
	gtk_widget_set_sensitive(GTK_WIDGET(M.b_snap), it && !busy && it->state != VM_STATE_BROKEN);
	gtk_tool_button_set_label(GTK_TOOL_BUTTON(M.b_pause), paused ? "_Resume" : "_Pause");
	set_icon(M.b_pause, paused ? "media-playback-start" : "media-playback-pause");
	gtk_widget_set_tooltip_text(GTK_WIDGET(M.b_pause), paused ? "Resume the VM (Ctrl+P)"
								  : "Pause the VM (Ctrl+P)");
}

/* A tool button's icon at a fixed size: a theme with only large
 * versions of an icon would make one button tower over the others. */
static void set_icon(GtkToolItem *t, const char *icon)
{
	GtkWidget *img = gtk_image_new_from_icon_name(icon, GTK_ICON_SIZE_SMALL_TOOLBAR);

	gtk_image_set_pixel_size(GTK_IMAGE(img), 16);
	gtk_widget_show(img);
	gtk_tool_button_set_icon_widget(GTK_TOOL_BUTTON(t), img);
}

static void set_row(GtkTreeIter *iter, const struct vm_item *it)
{
	gtk_list_store_set(M.store, iter, COL_NAME, it->name, COL_STATE, state_label(it),
			   COL_OS, it->guest_os ? it->guest_os : "", COL_ICON, state_icon(it), -1);
	/* A stopped VM's screen is gone. */
	if (it->state != VM_STATE_RUNNING && it->state != VM_STATE_PAUSED)
		gtk_list_store_set(M.store, iter, COL_THUMB, NULL, -1);
}

/* ---- thumbnails ------------------------------------------------------------------ */

struct shot {
	char *name;
	GdkPixbuf *pix;		/* the result, scaled; NULL on failure */
};

static void shot_free(struct shot *s)
{
	g_free(s->name);
	g_clear_object(&s->pix);
	g_free(s);
}

/* Worker thread: the VM writes its screen as PNG into our memfd. */
static void shot_thread(GTask *task, gpointer src, gpointer data, GCancellable *c)
{
	struct shot *s = data;
	g_autoptr(JsonObject) args = json_object_new();
	g_autoptr(GdkPixbufLoader) ld = NULL;
	struct ctl_conn *conn = NULL;
	JsonNode *res = NULL;
	char err[256];
	struct stat st;
	void *png;
	int fd = memfd_create("vivarium-thumb", MFD_CLOEXEC);

	if (fd < 0)
		goto out;
	json_object_set_boolean_member(args, "fd", TRUE);
	if (ctl_connect(s->name, &conn, err, sizeof(err)) < 0 ||
	    ctl_call_fd(conn, "screenshot", args, fd, REQUEST_TIMEOUT_MS, &res, err, sizeof(err)) < 0 ||
	    fstat(fd, &st) < 0 || st.st_size <= 0 || (uint64_t)st.st_size > THUMB_PNG_MAX)
		goto out;
	png = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (png == MAP_FAILED)
		goto out;
	ld = gdk_pixbuf_loader_new_with_type("png", NULL);
	if (ld && gdk_pixbuf_loader_write(ld, png, (gsize)st.st_size, NULL) &&
	    gdk_pixbuf_loader_close(ld, NULL)) {
		GdkPixbuf *full = gdk_pixbuf_loader_get_pixbuf(ld);
		int w = gdk_pixbuf_get_width(full), h = gdk_pixbuf_get_height(full);
		double k = MIN((double)THUMB_W / w, (double)THUMB_H / h);

		s->pix = gdk_pixbuf_scale_simple(full, MAX(1, (int)(w * k)), MAX(1, (int)(h * k)),
						 GDK_INTERP_BILINEAR);
	}
	munmap(png, (size_t)st.st_size);
out:
	if (res)
		json_node_unref(res);
	if (conn)
		ctl_close(conn);
	if (fd >= 0)
		close(fd);
	g_task_return_boolean(task, TRUE);
}

static void shot_done(GObject *src, GAsyncResult *res, gpointer data)
{
	struct shot *s = g_task_get_task_data(G_TASK(res));
	const struct vm_item *it = vm_list_find(M.list, s->name);
	GtkTreeIter iter;

	g_hash_table_remove(M.shooting, s->name);
	if (s->pix && it && (it->state == VM_STATE_RUNNING || it->state == VM_STATE_PAUSED) &&
	    find_row(s->name, &iter))
		gtk_list_store_set(M.store, &iter, COL_THUMB, s->pix, -1);
}

/* Only while the window is on screen, and only the rows in view. */
static gboolean on_thumb_tick(gpointer unused)
{
	GdkWindow *gw = gtk_widget_get_window(M.win);
	GtkTreePath *first = NULL, *last = NULL;
	GtkTreeIter iter;
	bool more;

	if (!M.list || !gw || !gtk_widget_get_mapped(M.win) ||
	    (gdk_window_get_state(gw) & GDK_WINDOW_STATE_ICONIFIED))
		return G_SOURCE_CONTINUE;
	if (!gtk_tree_view_get_visible_range(GTK_TREE_VIEW(M.tree), &first, &last))
		return G_SOURCE_CONTINUE;
	more = gtk_tree_model_get_iter(GTK_TREE_MODEL(M.store), &iter, first);
	while (more) {
		g_autofree char *name = NULL;
		GtkTreePath *p = gtk_tree_model_get_path(GTK_TREE_MODEL(M.store), &iter);
		bool past = gtk_tree_path_compare(p, last) > 0;
		const struct vm_item *it;

		gtk_tree_path_free(p);
		if (past)
			break;
		gtk_tree_model_get(GTK_TREE_MODEL(M.store), &iter, COL_NAME, &name, -1);
		it = name ? vm_list_find(M.list, name) : NULL;
		if (it && (it->state == VM_STATE_RUNNING || it->state == VM_STATE_PAUSED) &&
		    !g_hash_table_contains(M.shooting, name)) {
			struct shot *s = g_new0(struct shot, 1);
			GTask *t = g_task_new(NULL, NULL, shot_done, NULL);

			s->name = g_strdup(name);
			g_hash_table_add(M.shooting, g_strdup(name));
			g_task_set_task_data(t, s, (GDestroyNotify)shot_free);
			g_task_run_in_thread(t, shot_thread);
			g_object_unref(t);
		}
		more = gtk_tree_model_iter_next(GTK_TREE_MODEL(M.store), &iter);
	}
	gtk_tree_path_free(first);
	gtk_tree_path_free(last);
	return G_SOURCE_CONTINUE;
}

/* The rows, in the model's order; the selection stays on its name. */
static void rebuild_rows(void)
{
	g_autofree char *sel = selected_name();
	GtkTreeSelection *ts = gtk_tree_view_get_selection(GTK_TREE_VIEW(M.tree));
	GtkTreeIter iter;

	gtk_list_store_clear(M.store);
	for (unsigned i = 0; i < vm_list_count(M.list); i++) {
		gtk_list_store_append(M.store, &iter);
		set_row(&iter, vm_list_nth(M.list, i));
	}
	if (M.want_selected && find_row(M.want_selected, &iter)) {
		gtk_tree_selection_select_iter(ts, &iter);
		g_clear_pointer(&M.want_selected, g_free);
	} else if (sel && find_row(sel, &iter))
		gtk_tree_selection_select_iter(ts, &iter);
	else if (gtk_tree_model_get_iter_first(GTK_TREE_MODEL(M.store), &iter))
		gtk_tree_selection_select_iter(ts, &iter);
}

static gboolean rebuild_idle(gpointer unused)
{
	rebuild_rows();
	update_details();
	update_actions();
	return G_SOURCE_REMOVE;
}

static void on_model(struct vm_list *l, const struct vm_item *it,
		     enum vm_list_change what, void *opaque)
{
	GtkTreeIter iter;

	if (what == VM_LIST_CHANGED && find_row(it->name, &iter))
		set_row(&iter, it);
	else if (what == VM_LIST_REMOVED)
		/* @it is still in the model: rebuild once it is gone */
		g_idle_add(rebuild_idle, NULL);
	else
		rebuild_rows();
	update_details();
	update_actions();
}

static void on_selection(GtkTreeSelection *sel, gpointer unused)
{
	update_details();
	update_actions();
}

/* ---- actions, each on a worker thread ---------------------------------------------------- */

struct job {
	char *name;
	char *cmd;		/* NULL: start */
	bool force;
	char err[1100];
	int r;
};

static void job_free(struct job *j)
{
	g_free(j->name);
	g_free(j->cmd);
	g_free(j);
}

static void job_thread(GTask *task, gpointer src, gpointer data, GCancellable *c)
{
	struct job *j = data;

	if (!j->cmd) {
		struct vm_start_opts so = { .exe = M.exe };

		j->r = M.exe ? vm_start(j->name, &so, NULL, j->err, sizeof(j->err)) : -ENOENT;
		if (!M.exe)
			snprintf(j->err, sizeof(j->err), "cannot find the vivarium program beside vivarium-manager");
	} else {
		g_autoptr(JsonObject) args = json_object_new();

		if (j->force)
			json_object_set_boolean_member(args, "force", TRUE);
		j->r = vm_list_request(M.list, j->name, j->cmd, args, REQUEST_TIMEOUT_MS,
				       j->err, sizeof(j->err));
	}
	g_task_return_boolean(task, TRUE);
}

static void job_done(GObject *src, GAsyncResult *res, gpointer data)
{
	struct job *j = g_task_get_task_data(G_TASK(res));

	g_hash_table_remove(M.busy, j->name);
	if (j->r < 0)
		show_error("%s: %s", j->name, j->err);
	update_actions();
}

static void run_job(const char *cmd, bool force)
{
	g_autofree char *name = selected_name();
	struct job *j;
	GTask *t;

	if (!name || g_hash_table_contains(M.busy, name))
		return;
	j = g_new0(struct job, 1);
	j->name = g_strdup(name);
	j->cmd = g_strdup(cmd);
	j->force = force;
	g_hash_table_add(M.busy, g_strdup(name));
	gtk_info_bar_set_revealed(GTK_INFO_BAR(M.info), FALSE);
	update_actions();
	t = g_task_new(NULL, NULL, job_done, NULL);
	g_task_set_task_data(t, j, (GDestroyNotify)job_free);
	g_task_run_in_thread(t, job_thread);
	g_object_unref(t);
}

static void on_start(GtkToolButton *b, gpointer u) { run_job(NULL, false); }
static void on_stop(GtkToolButton *b, gpointer u) { run_job("stop", false); }
static void on_off(GtkToolButton *b, gpointer u) { run_job("stop", true); }
static void on_console(GtkToolButton *b, gpointer u) { run_job("console-raise", false); }
static void on_reset(GtkToolButton *b, gpointer u) { run_job("reset", false); }

static void on_new(GtkToolButton *b, gpointer u) { newvm_open(); }

static void on_settings(GtkToolButton *b, gpointer u)
{
	g_autofree char *name = selected_name();

	if (name)
		settings_open(name);
}

static void on_snapshots(GtkToolButton *b, gpointer u)
{
	g_autofree char *name = selected_name();

	if (name)
		snapshots_open(name);
}

static void on_delete_response(GtkDialog *d, gint response, gpointer data)
{
	char *name = data;
	char err[1024];

	gtk_widget_destroy(GTK_WIDGET(d));
	/* vm_delete() checks everything again, under the VM's lock. */
	if (response == GTK_RESPONSE_ACCEPT) {
		if (vm_delete(name, NULL, NULL, err, sizeof(err)) < 0)
			show_error("%s", err);
		else
			mgr_message(false, "Deleted VM '%s'", name);
	}
	g_free(name);
}

/* Refused at once (running, linked clones...) with the library's line;
 * else a confirmation naming the VM.  Not gtk_dialog_run(): a nested main
 * loop would hold the click (and an AT-SPI action) until it closes. */
static void on_delete(GtkToolButton *b, gpointer u)
{
	g_autofree char *name = selected_name();
	g_autofree char *dir = NULL;
	GtkWidget *d, *del;
	char err[1024];

	if (!name || g_hash_table_contains(M.busy, name))
		return;
	gtk_info_bar_set_revealed(GTK_INFO_BAR(M.info), FALSE);
	if (vm_delete_check(name, err, sizeof(err)) < 0) {
		show_error("%s", err);
		return;
	}
	dir = vmlib_vm_dir(name);
	d = gtk_message_dialog_new(GTK_WINDOW(M.win), GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
				   GTK_MESSAGE_WARNING, GTK_BUTTONS_NONE, "Delete VM '%s'?", name);
	gtk_message_dialog_format_secondary_text(GTK_MESSAGE_DIALOG(d),
		"Its folder %s goes, disk images and snapshots included. This cannot be undone.", dir);
	gtk_window_set_title(GTK_WINDOW(d), "Delete VM");
	gtk_dialog_add_button(GTK_DIALOG(d), "_Cancel", GTK_RESPONSE_CANCEL);
	del = gtk_dialog_add_button(GTK_DIALOG(d), "_Delete", GTK_RESPONSE_ACCEPT);
	gtk_style_context_add_class(gtk_widget_get_style_context(del), "destructive-action");
	gtk_dialog_set_default_response(GTK_DIALOG(d), GTK_RESPONSE_CANCEL);
	g_signal_connect(d, "response", G_CALLBACK(on_delete_response), g_steal_pointer(&name));
	gtk_widget_show_all(d);
}

static void on_pause(GtkToolButton *b, gpointer u)
{
	g_autofree char *name = selected_name();
	const struct vm_item *it = name ? vm_list_find(M.list, name) : NULL;

	if (it)
		run_job(it->state == VM_STATE_PAUSED ? "resume" : "pause", false);
}

static void on_row_activated(GtkTreeView *tv, GtkTreePath *p, GtkTreeViewColumn *c, gpointer u)
{
	g_autofree char *name = selected_name();
	const struct vm_item *it = name ? vm_list_find(M.list, name) : NULL;

	/* Enter or a double click: start a stopped VM, show a running one. */
	if (it && (it->state == VM_STATE_STOPPED || it->state == VM_STATE_SAVED))
		run_job(NULL, false);
	else if (it && (it->state == VM_STATE_RUNNING || it->state == VM_STATE_PAUSED))
		run_job("console-raise", false);
}

/* ---- the window ------------------------------------------------------------------------------ */

static double boot_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* When this process was exec'ed, in seconds since boot (/proc/self/stat
 * field 22, in clock ticks). */
static double exec_time(void)
{
	g_autofree char *stat = NULL;
	char *p;
	unsigned long long start = 0;

	if (!g_file_get_contents("/proc/self/stat", &stat, NULL, NULL))
		return boot_seconds();
	p = strrchr(stat, ')');
	for (int f = 2; p && f < 22; f++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%llu", &start) != 1)
		return boot_seconds();
	return (double)start / (double)sysconf(_SC_CLK_TCK);
}

static long rss_kib(void)
{
	g_autofree char *status = NULL;
	const char *p;

	if (!g_file_get_contents("/proc/self/status", &status, NULL, NULL))
		return -1;
	p = strstr(status, "VmRSS:");
	return p ? strtol(p + 6, NULL, 10) : -1;
}

static gboolean report_and_quit(gpointer unused)
{
	printf("vivarium-manager: %u VMs, window drawn %.0f ms after exec, RSS %ld KiB\n",
	       vm_list_count(M.list), (boot_seconds() - t_exec) * 1000, rss_kib());
	fflush(stdout);
	g_application_quit(G_APPLICATION(M.app));
	return G_SOURCE_REMOVE;
}

static gboolean on_first_draw(GtkWidget *w, cairo_t *cr, gpointer unused)
{
	if (!M.drawn) {
		M.drawn = true;
		if (M.report_startup)	/* after this frame is out */
			g_idle_add(report_and_quit, NULL);
	}
	return FALSE;
}

static GtkToolItem *tool(GtkWidget *bar, const char *label, const char *icon, const char *tip,
			 GCallback cb, GtkAccelGroup *ag, guint key, GdkModifierType mods)
{
	GtkToolItem *t = gtk_tool_button_new(NULL, label);

	gtk_tool_button_set_use_underline(GTK_TOOL_BUTTON(t), TRUE);
	set_icon(t, icon);
	gtk_tool_item_set_is_important(t, TRUE);	/* label beside the icon */
	gtk_widget_set_tooltip_text(GTK_WIDGET(t), tip);
	g_signal_connect(t, "clicked", cb, NULL);
	gtk_widget_add_accelerator(GTK_WIDGET(t), "clicked", ag, key, mods, GTK_ACCEL_VISIBLE);
	gtk_toolbar_insert(GTK_TOOLBAR(bar), t, -1);
	return t;
}

static void set_accessible(GtkWidget *w, const char *name, const char *desc)
{
	AtkObject *a = gtk_widget_get_accessible(w);

	atk_object_set_name(a, name);
	if (desc)
		atk_object_set_description(a, desc);
}

void mgr_accessible(GtkWidget *w, const char *name, const char *desc)
{
	set_accessible(w, name, desc);
}

void mgr_refresh(void)
{
	update_details();
	update_actions();
}

void mgr_form_row(GtkGrid *grid, int row, const char *label, GtkWidget *field)
{
	GtkWidget *l = gtk_label_new_with_mnemonic(label);

	gtk_widget_set_halign(l, GTK_ALIGN_END);
	gtk_label_set_mnemonic_widget(GTK_LABEL(l), field);
	gtk_widget_set_hexpand(field, TRUE);
	gtk_grid_attach(grid, l, 0, row, 1, 1);
	gtk_grid_attach(grid, field, 1, row, 1, 1);
}

/* A box with an icon and a wrapping label, not a GtkInfoBar: GTK 3's info
 * bar gives a label that wraps the height of one line (its second line
 * is cut off). */
GtkWidget *dialog_error_bar(GtkWidget **label)
{
	GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
	GtkWidget *icon = gtk_image_new_from_icon_name("dialog-error", GTK_ICON_SIZE_BUTTON);

	*label = gtk_label_new("");
	gtk_label_set_line_wrap(GTK_LABEL(*label), TRUE);
	gtk_label_set_max_width_chars(GTK_LABEL(*label), 60);
	gtk_label_set_xalign(GTK_LABEL(*label), 0);
	gtk_label_set_selectable(GTK_LABEL(*label), TRUE);
	gtk_style_context_add_class(gtk_widget_get_style_context(*label), "error");
	gtk_widget_set_valign(icon, GTK_ALIGN_START);
	gtk_box_pack_start(GTK_BOX(box), icon, FALSE, FALSE, 0);
	gtk_box_pack_start(GTK_BOX(box), *label, TRUE, TRUE, 0);
	gtk_widget_show(icon);
	gtk_widget_show(*label);
	/* The dialog's show_all leaves it hidden; dialog_error() shows it. */
	gtk_widget_set_no_show_all(box, TRUE);
	set_accessible(box, "Error", NULL);
	return box;
}

void dialog_error(GtkWidget *bar, GtkWidget *label, const char *msg)
{
	gtk_label_set_text(GTK_LABEL(label), msg ? msg : "");
	gtk_widget_set_visible(bar, msg != NULL);
}

static GtkWidget *build_list(void)
{
	GtkWidget *sw = gtk_scrolled_window_new(NULL, NULL);
	GtkCellRenderer *r;
	GtkTreeViewColumn *col;

	M.store = gtk_list_store_new(NCOLS, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING,
				     GDK_TYPE_PIXBUF);
	M.tree = gtk_tree_view_new_with_model(GTK_TREE_MODEL(M.store));
	set_accessible(M.tree, "Virtual machines", "The VMs in the library and their state");
	col = gtk_tree_view_column_new();
	gtk_tree_view_column_set_title(col, "Name");
	r = gtk_cell_renderer_pixbuf_new();
	gtk_tree_view_column_pack_start(col, r, FALSE);
	gtk_tree_view_column_add_attribute(col, r, "icon-name", COL_ICON);
	r = gtk_cell_renderer_text_new();
	gtk_tree_view_column_pack_start(col, r, TRUE);
	gtk_tree_view_column_add_attribute(col, r, "text", COL_NAME);
	gtk_tree_view_column_set_expand(col, TRUE);
	gtk_tree_view_append_column(GTK_TREE_VIEW(M.tree), col);
	gtk_tree_view_append_column(GTK_TREE_VIEW(M.tree),
		gtk_tree_view_column_new_with_attributes("State", gtk_cell_renderer_text_new(),
							 "text", COL_STATE, NULL));
	gtk_tree_view_append_column(GTK_TREE_VIEW(M.tree),
		gtk_tree_view_column_new_with_attributes("Guest OS", gtk_cell_renderer_text_new(),
							 "text", COL_OS, NULL));
	col = gtk_tree_view_column_new_with_attributes("Screen", gtk_cell_renderer_pixbuf_new(),
						       "pixbuf", COL_THUMB, NULL);
	gtk_tree_view_append_column(GTK_TREE_VIEW(M.tree), col);
	gtk_tree_view_set_search_column(GTK_TREE_VIEW(M.tree), COL_NAME);
	g_signal_connect(gtk_tree_view_get_selection(GTK_TREE_VIEW(M.tree)), "changed",
			 G_CALLBACK(on_selection), NULL);
	g_signal_connect(M.tree, "row-activated", G_CALLBACK(on_row_activated), NULL);
	gtk_container_add(GTK_CONTAINER(sw), M.tree);
	gtk_widget_set_size_request(sw, 300, -1);
	return sw;
}

static GtkWidget *build_details(void)
{
	GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
	GtkWidget *sw = gtk_scrolled_window_new(NULL, NULL);
	GtkWidget *grid = gtk_grid_new();

	gtk_grid_set_row_spacing(GTK_GRID(grid), 6);
	gtk_grid_set_column_spacing(GTK_GRID(grid), 12);
	g_object_set(grid, "margin", 12, NULL);
	for (unsigned i = 0; i < ND; i++) {
		M.detail_key[i] = gtk_label_new(detail_names[i]);
		gtk_widget_set_halign(M.detail_key[i], GTK_ALIGN_END);
		gtk_widget_set_valign(M.detail_key[i], GTK_ALIGN_START);
		gtk_style_context_add_class(gtk_widget_get_style_context(M.detail_key[i]), "dim-label");
		M.detail[i] = gtk_label_new("");
		gtk_label_set_selectable(GTK_LABEL(M.detail[i]), TRUE);
		gtk_label_set_line_wrap(GTK_LABEL(M.detail[i]), TRUE);
		gtk_label_set_xalign(GTK_LABEL(M.detail[i]), 0);
		gtk_widget_set_hexpand(M.detail[i], TRUE);
		/* The name label is the value's label (LABEL_FOR /
		 * LABELLED_BY): screen readers say "Memory, 1G". */
		gtk_label_set_mnemonic_widget(GTK_LABEL(M.detail_key[i]), M.detail[i]);
		gtk_grid_attach(GTK_GRID(grid), M.detail_key[i], 0, (int)i, 1, 1);
		gtk_grid_attach(GTK_GRID(grid), M.detail[i], 1, (int)i, 1, 1);
	}
	gtk_widget_set_no_show_all(grid, TRUE);
	for (unsigned i = 0; i < ND; i++) {
		gtk_widget_set_no_show_all(M.detail[i], TRUE);
		gtk_widget_set_no_show_all(M.detail_key[i], TRUE);
	}
	M.details_box = grid;
	M.empty = gtk_label_new("No VM in the library yet: create one with New (Ctrl+N).");
	gtk_widget_set_no_show_all(M.empty, TRUE);
	gtk_box_pack_start(GTK_BOX(box), grid, FALSE, FALSE, 0);
	gtk_box_pack_start(GTK_BOX(box), M.empty, TRUE, TRUE, 0);
	gtk_container_add(GTK_CONTAINER(sw), box);
	set_accessible(sw, "Details", "The selected VM's settings and state");
	return sw;
}

static void on_info_response(GtkInfoBar *bar, gint response, gpointer unused)
{
	gtk_info_bar_set_revealed(bar, FALSE);
}

static void activate(GtkApplication *app, gpointer unused)
{
	GtkAccelGroup *ag = gtk_accel_group_new();
	GtkWidget *vbox, *bar, *paned;
	char err[512];

	if (M.win) {
		gtk_window_present(GTK_WINDOW(M.win));
		return;
	}
	M.win = gtk_application_window_new(app);
	gtk_window_set_title(GTK_WINDOW(M.win), "Vivarium");
	gtk_window_set_icon_name(GTK_WINDOW(M.win), APP_ID);
	gtk_window_set_default_size(GTK_WINDOW(M.win), 1010, 600);
	gtk_window_add_accel_group(GTK_WINDOW(M.win), ag);
	vbox = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);

	bar = gtk_toolbar_new();
	gtk_toolbar_set_style(GTK_TOOLBAR(bar), GTK_TOOLBAR_BOTH_HORIZ);
	gtk_toolbar_set_icon_size(GTK_TOOLBAR(bar), GTK_ICON_SIZE_SMALL_TOOLBAR);
	set_accessible(bar, "Actions", NULL);
	M.b_new = tool(bar, "_New", "list-add", "Create a new VM (Ctrl+N)",
		       G_CALLBACK(on_new), ag, GDK_KEY_n, GDK_CONTROL_MASK);
	gtk_toolbar_insert(GTK_TOOLBAR(bar), gtk_separator_tool_item_new(), -1);
	M.b_start = tool(bar, "_Start", "media-playback-start", "Start the VM (Ctrl+Return)",
			 G_CALLBACK(on_start), ag, GDK_KEY_Return, GDK_CONTROL_MASK);
	M.b_stop = tool(bar, "S_top", "system-shutdown", "Press the VM's power button (Ctrl+H)",
			G_CALLBACK(on_stop), ag, GDK_KEY_h, GDK_CONTROL_MASK);
	M.b_off = tool(bar, "Power _Off", "process-stop", "Pull the VM's plug (Ctrl+Shift+H)",
		       G_CALLBACK(on_off), ag, GDK_KEY_h, GDK_CONTROL_MASK | GDK_SHIFT_MASK);
	M.b_pause = tool(bar, "_Pause", "media-playback-pause", "Pause the VM (Ctrl+P)",
			 G_CALLBACK(on_pause), ag, GDK_KEY_p, GDK_CONTROL_MASK);
	M.b_reset = tool(bar, "R_eset", "view-refresh", "Reset the VM, as its reset button (Ctrl+R)",
			 G_CALLBACK(on_reset), ag, GDK_KEY_r, GDK_CONTROL_MASK);
	/* The rarer two as icons (with tooltips and accessible names): all
	 * ten buttons then fit the window's default width. */
	gtk_tool_item_set_is_important(M.b_off, FALSE);
	gtk_tool_item_set_is_important(M.b_reset, FALSE);
	M.b_console = tool(bar, "_Console", "video-display", "Show the VM's console window (Ctrl+O)",
			   G_CALLBACK(on_console), ag, GDK_KEY_o, GDK_CONTROL_MASK);
	gtk_toolbar_insert(GTK_TOOLBAR(bar), gtk_separator_tool_item_new(), -1);
	M.b_snap = tool(bar, "Snap_shots", "camera-photo", "Take, revert, delete and clone snapshots (Ctrl+T)",
			G_CALLBACK(on_snapshots), ag, GDK_KEY_t, GDK_CONTROL_MASK);
	M.b_settings = tool(bar, "Se_ttings", "preferences-system", "Change the VM's settings (Ctrl+E)",
			    G_CALLBACK(on_settings), ag, GDK_KEY_e, GDK_CONTROL_MASK);
	M.b_delete = tool(bar, "_Delete", "edit-delete", "Delete the VM and its disks (Delete)",
			  G_CALLBACK(on_delete), ag, GDK_KEY_Delete, 0);
	gtk_box_pack_start(GTK_BOX(vbox), bar, FALSE, FALSE, 0);

	M.info = gtk_info_bar_new();
	gtk_info_bar_set_message_type(GTK_INFO_BAR(M.info), GTK_MESSAGE_ERROR);
	M.info_label = gtk_label_new("");
	gtk_label_set_line_wrap(GTK_LABEL(M.info_label), TRUE);
	gtk_label_set_xalign(GTK_LABEL(M.info_label), 0);
	gtk_container_add(GTK_CONTAINER(gtk_info_bar_get_content_area(GTK_INFO_BAR(M.info))),
			  M.info_label);
	g_signal_connect(M.info, "response", G_CALLBACK(on_info_response), NULL);
	{
		GtkWidget *close = gtk_info_bar_add_button(GTK_INFO_BAR(M.info), "_Dismiss",
							   GTK_RESPONSE_CLOSE);

		gtk_widget_set_tooltip_text(close, "Hide this message");
	}
	gtk_info_bar_set_revealed(GTK_INFO_BAR(M.info), FALSE);
	gtk_box_pack_start(GTK_BOX(vbox), M.info, FALSE, FALSE, 0);

	paned = gtk_paned_new(GTK_ORIENTATION_HORIZONTAL);
	gtk_paned_pack1(GTK_PANED(paned), build_list(), TRUE, FALSE);
	gtk_paned_pack2(GTK_PANED(paned), build_details(), TRUE, FALSE);
	gtk_paned_set_position(GTK_PANED(paned), 420);
	gtk_box_pack_start(GTK_BOX(vbox), paned, TRUE, TRUE, 0);
	gtk_container_add(GTK_CONTAINER(M.win), vbox);
	g_signal_connect_after(M.win, "draw", G_CALLBACK(on_first_draw), NULL);

	{
		const char *quit[] = { "<Control>q", NULL };
		GSimpleAction *a = g_simple_action_new("quit", NULL);

		g_signal_connect_swapped(a, "activate", G_CALLBACK(g_application_quit), app);
		g_action_map_add_action(G_ACTION_MAP(app), G_ACTION(a));
		gtk_application_set_accels_for_action(app, "app.quit", quit);
		g_object_unref(a);
	}

	M.list = vm_list_new(on_model, NULL, err, sizeof(err));
	gtk_widget_show_all(M.win);
	if (!M.list) {
		show_error("%s", err);
		gtk_widget_set_sensitive(bar, FALSE);
	} else {
		rebuild_rows();
	}
	update_details();
	update_actions();
	gtk_widget_grab_focus(M.tree);
	on_thumb_tick(NULL);
	g_timeout_add_seconds(THUMB_PERIOD_S, on_thumb_tick, NULL);
}

static gint on_options(GApplication *app, GVariantDict *opts, gpointer unused)
{
	if (g_variant_dict_contains(opts, "version")) {
		printf("vivarium-manager " VIVARIUM_VERSION "\n");
		return 0;
	}
	M.report_startup = g_variant_dict_contains(opts, "startup-report");
	return -1;
}

int main(int argc, char **argv)
{
	static const GOptionEntry entries[] = {
		{ "startup-report", 0, 0, G_OPTION_ARG_NONE, NULL,
		  "Print the time to the first drawn window and the resident memory, then quit", NULL },
		{ "version", 0, 0, G_OPTION_ARG_NONE, NULL, "Print the version", NULL },
		{ NULL },
	};
	int status;

	t_exec = exec_time();
	M.exe = vm_exe_beside("vivarium", "app");
	M.busy = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	M.shooting = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	/* Several managers may run (one per display); each is its own. */
	M.app = gtk_application_new(APP_ID, G_APPLICATION_NON_UNIQUE);
	g_application_add_main_option_entries(G_APPLICATION(M.app), entries);
	g_signal_connect(M.app, "handle-local-options", G_CALLBACK(on_options), NULL);
	g_signal_connect(M.app, "activate", G_CALLBACK(activate), NULL);
	status = g_application_run(G_APPLICATION(M.app), argc, argv);
	vm_list_free(M.list);
	g_object_unref(M.app);
	g_hash_table_destroy(M.busy);
	g_free(M.exe);
	g_free(M.want_selected);
	return status;
}
