/* SPDX-License-Identifier: MIT */
/*
 * gui/snapshots.c - the Snapshots dialog of one VM: the snapshot tree
 * (snap_tree_order()), with Take, Revert, Delete and Clone (full or
 * linked).  Each goes through the library calls `vivarium snapshot` and
 * `vivarium clone` use (app/vmops.h: over the control socket for a
 * running VM, on the disks for a stopped one; app/clonelib.h), on a GTask
 * thread: a running VM's take saves its memory, a delete merges images, a
 * clone copies disks.  A clone shows its progress and can be cancelled
 * (clone_opts.stop: nothing is left behind).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "clonelib.h"
#include "manager.h"
#include "snaplib.h"
#include "vmops.h"

enum { S_TAG, S_CREATED, S_MEMORY, S_CURRENT, S_DESC, S_NCOLS };

struct snaps {
	char *name;
	GtkWidget *dlg, *tree, *take, *revert, *del, *clone, *errbar, *errlabel;
	GtkWidget *progress, *cancel;
	GtkTreeStore *store;
	bool working;
	bool closed;		/* the widgets are gone; a worker may still run */
	volatile sig_atomic_t stop;
	guint pulse;
};

/* One operation on the worker thread. */
enum op { OP_TAKE, OP_REVERT, OP_DELETE, OP_CLONE };
struct job {
	struct snaps *d;
	enum op op;
	char *tag, *desc, *clone_name;
	bool linked;
	char err[1024];
	int r;
	bool resumes;
	unsigned long long freed;
	uint64_t done, total;	/* clone progress; under the lock */
	GMutex lock;
};

static void job_free(struct job *j)
{
	g_free(j->tag);
	g_free(j->desc);
	g_free(j->clone_name);
	g_mutex_clear(&j->lock);
	g_free(j);
}

static char *selected_tag(struct snaps *d)
{
	GtkTreeSelection *sel = gtk_tree_view_get_selection(GTK_TREE_VIEW(d->tree));
	GtkTreeModel *m;
	GtkTreeIter it;
	char *tag = NULL;

	if (gtk_tree_selection_get_selected(sel, &m, &it))
		gtk_tree_model_get(m, &it, S_TAG, &tag, -1);
	return tag;
}

static void update_buttons(struct snaps *d)
{
	g_autofree char *tag = selected_tag(d);

	gtk_widget_set_sensitive(d->take, !d->working);
	gtk_widget_set_sensitive(d->revert, !d->working && tag);
	gtk_widget_set_sensitive(d->del, !d->working && tag);
	gtk_widget_set_sensitive(d->clone, !d->working);
	gtk_widget_set_visible(d->progress, d->working);
	gtk_widget_set_visible(d->cancel, d->working);
}

/* The tree from the index as the operations see it ("current" from the
 * disks' chains); the selection stays on its tag. */
static void reload(struct snaps *d, const char *select)
{
	struct snap_index ix;
	g_autoptr(GPtrArray) order = NULL;
	g_autoptr(GArray) depths = NULL;
	GtkTreeIter parents[64];
	char err[1024];

	gtk_tree_store_clear(d->store);
	if (snap_load_current(d->name, &ix, err, sizeof(err)) < 0) {
		dialog_error(d->errbar, d->errlabel, err);
		return;
	}
	order = snap_tree_order(&ix, &depths);
	for (guint i = 0; i < order->len; i++) {
		const struct snap *s = order->pdata[i];
		guint depth = MIN(g_array_index(depths, guint, i), G_N_ELEMENTS(parents) - 1);
		GtkTreeIter it;

		gtk_tree_store_append(d->store, &it, depth ? &parents[depth - 1] : NULL);
		gtk_tree_store_set(d->store, &it, S_TAG, s->tag, S_CREATED, s->created,
				   S_MEMORY, s->has_memory ? "disks and memory" : "disks",
				   S_CURRENT, ix.current && !strcmp(ix.current, s->id) ? "current" : "",
				   S_DESC, s->description ? s->description : "", -1);
		parents[depth] = it;
		if (select && !strcmp(select, s->tag))
			gtk_tree_selection_select_iter(gtk_tree_view_get_selection(GTK_TREE_VIEW(d->tree)), &it);
	}
	gtk_tree_view_expand_all(GTK_TREE_VIEW(d->tree));
	snap_index_clear(&ix);
	update_buttons(d);
	mgr_refresh();		/* the details' snapshot count */
}

static int clone_stop_progress(struct job *j);

static void clone_progress(void *opaque, uint64_t done, uint64_t total)
{
	struct job *j = opaque;

	g_mutex_lock(&j->lock);
	j->done = done;
	j->total = total;
	g_mutex_unlock(&j->lock);
}

static void job_thread(GTask *task, gpointer src, gpointer data, GCancellable *c)
{
	struct job *j = data;

	switch (j->op) {
	case OP_TAKE:
		j->r = vm_snapshot_take(j->d->name, j->tag, j->desc, j->err, sizeof(j->err));
		break;
	case OP_REVERT:
		j->r = vm_snapshot_revert(j->d->name, j->tag, &j->resumes, j->err, sizeof(j->err));
		break;
	case OP_DELETE:
		j->r = vm_snapshot_delete(j->d->name, j->tag, &j->freed, j->err, sizeof(j->err));
		break;
	case OP_CLONE:
		j->r = clone_stop_progress(j);
		break;
	}
	g_task_return_boolean(task, TRUE);
}

static int clone_stop_progress(struct job *j)
{
	struct clone_opts o = { .snapshot = j->tag, .linked = j->linked, .stop = &j->d->stop,
				.progress = clone_progress, .opaque = j };
	struct clone_result res;

	return vm_clone(j->d->name, j->clone_name, &o, &res, j->err, sizeof(j->err));
}

static gboolean on_pulse(gpointer data)
{
	struct job *j = data;
	GtkProgressBar *p;

	if (j->d->closed)
		return G_SOURCE_CONTINUE;
	p = GTK_PROGRESS_BAR(j->d->progress);
	g_mutex_lock(&j->lock);
	if (j->total)
		gtk_progress_bar_set_fraction(p, (double)j->done / (double)j->total);
	else
		gtk_progress_bar_pulse(p);
	g_mutex_unlock(&j->lock);
	return G_SOURCE_CONTINUE;
}

static void job_done(GObject *src, GAsyncResult *res, gpointer data)
{
	struct job *j = g_task_get_task_data(G_TASK(res));
	struct snaps *d = j->d;

	g_source_remove(d->pulse);
	d->pulse = 0;
	d->working = false;
	if (d->closed) {
		if (j->r < 0)
			mgr_message(true, "%s", j->err);
		mgr_refresh();
		g_object_unref(d->dlg);
		return;
	}
	if (j->r < 0) {
		dialog_error(d->errbar, d->errlabel, j->err);
	} else {
		dialog_error(d->errbar, d->errlabel, NULL);
		switch (j->op) {
		case OP_TAKE:
			mgr_message(false, "Took snapshot '%s' of VM '%s'", j->tag, d->name);
			break;
		case OP_REVERT:
			mgr_message(false, "VM '%s' is back at snapshot '%s'%s", d->name, j->tag,
				    j->resumes ? ": it resumes from there" : "");
			break;
		case OP_DELETE:
			mgr_message(false, "Deleted snapshot '%s' of VM '%s' (%llu KiB of images removed)",
				    j->tag, d->name, j->freed >> 10);
			break;
		case OP_CLONE:
			mgr_message(false, "Cloned VM '%s' as '%s'", d->name, j->clone_name);
			break;
		}
	}
	reload(d, j->op == OP_DELETE ? NULL : j->tag);
	update_buttons(d);
	g_object_unref(d->dlg);		/* held by run() */
}

/* Start @j on a worker thread; the dialog stays (a reference) until done. */
static void run(struct snaps *d, struct job *j, const char *what)
{
	GTask *t = g_task_new(NULL, NULL, job_done, NULL);

	j->d = d;
	g_mutex_init(&j->lock);
	d->working = true;
	d->stop = 0;
	g_object_ref(d->dlg);
	gtk_progress_bar_set_text(GTK_PROGRESS_BAR(d->progress), what);
	gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(d->progress), 0);
	d->pulse = g_timeout_add(200, on_pulse, j);
	update_buttons(d);
	g_task_set_task_data(t, j, (GDestroyNotify)job_free);
	g_task_run_in_thread(t, job_thread);
	g_object_unref(t);
}

/* A question before an operation, answered in on_ask_response(): never
 * gtk_dialog_run(), whose nested main loop would hold the button's click
 * (and an AT-SPI action on it) until the question closes. */
struct ask {
	struct snaps *d;
	enum op op;
	char *tag;				/* selected snapshot, may be NULL */
	GtkWidget *e_tag, *e_desc, *e_name, *linked;	/* the form's fields */
};

static void ask_free(gpointer data)
{
	struct ask *q = data;

	g_free(q->tag);
	g_free(q);
}

static char *entry_text(GtkWidget *e)
{
	return g_strstrip(g_strdup(gtk_entry_get_text(GTK_ENTRY(e))));
}

static void on_ask_response(GtkDialog *dlg, gint response, gpointer data)
{
	struct ask *q = data;
	struct snaps *d = q->d;
	struct job *j;

	if (response != GTK_RESPONSE_ACCEPT || d->closed || d->working) {
		gtk_widget_destroy(GTK_WIDGET(dlg));	/* frees @q */
		return;
	}
	j = g_new0(struct job, 1);
	j->op = q->op;
	j->tag = g_strdup(q->tag);
	switch (q->op) {
	case OP_TAKE:
		g_free(j->tag);
		j->tag = entry_text(q->e_tag);
		j->desc = entry_text(q->e_desc);
		if (!*j->desc)
			g_clear_pointer(&j->desc, g_free);
		break;
	case OP_CLONE:
		j->linked = gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(q->linked));
		j->clone_name = entry_text(q->e_name);
		break;
	default:
		break;
	}
	gtk_widget_destroy(GTK_WIDGET(dlg));
	run(d, j, j->op == OP_TAKE ? "Taking the snapshot…" : j->op == OP_REVERT ? "Reverting…"
		  : j->op == OP_DELETE ? "Deleting the snapshot…" : "Cloning…");
}

/* A form question: @form in a dialog titled @title with Cancel and @ok. */
static void ask_form(struct snaps *d, struct ask *q, const char *title, const char *ok,
		     GtkWidget *form)
{
	GtkWidget *w = gtk_dialog_new_with_buttons(title, GTK_WINDOW(d->dlg),
						   GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
						   "_Cancel", GTK_RESPONSE_CANCEL, ok, GTK_RESPONSE_ACCEPT, NULL);
	GtkWidget *area = gtk_dialog_get_content_area(GTK_DIALOG(w));

	q->d = d;
	g_object_set_data_full(G_OBJECT(w), "ask", q, ask_free);
	g_object_set(area, "margin", 12, "spacing", 8, NULL);
	gtk_dialog_set_default_response(GTK_DIALOG(w), GTK_RESPONSE_ACCEPT);
	gtk_box_pack_start(GTK_BOX(area), form, FALSE, FALSE, 0);
	g_signal_connect(w, "response", G_CALLBACK(on_ask_response), q);
	gtk_widget_show_all(w);
}

/* A yes/no question about snapshot @q->tag. */
static void ask_confirm(struct snaps *d, struct ask *q, const char *ok, const char *fmt,
			const char *detail)
{
	GtkWidget *w = gtk_message_dialog_new(GTK_WINDOW(d->dlg), GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
					      GTK_MESSAGE_QUESTION, GTK_BUTTONS_NONE, fmt, q->tag, d->name);

	q->d = d;
	g_object_set_data_full(G_OBJECT(w), "ask", q, ask_free);
	gtk_message_dialog_format_secondary_text(GTK_MESSAGE_DIALOG(w), "%s", detail);
	gtk_dialog_add_buttons(GTK_DIALOG(w), "_Cancel", GTK_RESPONSE_CANCEL, ok, GTK_RESPONSE_ACCEPT, NULL);
	g_signal_connect(w, "response", G_CALLBACK(on_ask_response), q);
	gtk_widget_show_all(w);
}

static GtkWidget *entry(const char *text, const char *a11y)
{
	GtkWidget *e = gtk_entry_new();

	gtk_entry_set_text(GTK_ENTRY(e), text ? text : "");
	gtk_entry_set_activates_default(GTK_ENTRY(e), TRUE);
	mgr_accessible(e, a11y, NULL);
	return e;
}

static GtkWidget *form_grid(void)
{
	GtkWidget *grid = gtk_grid_new();

	gtk_grid_set_row_spacing(GTK_GRID(grid), 6);
	gtk_grid_set_column_spacing(GTK_GRID(grid), 12);
	return grid;
}

static void on_take(GtkButton *b, gpointer data)
{
	struct snaps *d = data;
	struct ask *q = g_new0(struct ask, 1);
	GtkWidget *grid = form_grid();
	g_autoptr(GDateTime) now = g_date_time_new_now_local();
	g_autofree char *dflt = g_date_time_format(now, "snap-%Y%m%d-%H%M%S");

	q->op = OP_TAKE;
	q->e_tag = entry(dflt, "Snapshot name");
	q->e_desc = entry("", "Description");
	mgr_form_row(GTK_GRID(grid), 0, "_Name", q->e_tag);
	mgr_form_row(GTK_GRID(grid), 1, "_Description", q->e_desc);
	ask_form(d, q, "Take Snapshot", "_Take", grid);
}

static void on_revert(GtkButton *b, gpointer data)
{
	struct snaps *d = data;
	struct ask *q;
	char *tag = selected_tag(d);

	if (!tag)
		return;
	q = g_new0(struct ask, 1);
	q->op = OP_REVERT;
	q->tag = tag;
	ask_confirm(d, q, "_Revert to snapshot", "Revert to snapshot '%s' of VM '%s'?",
		    "What the VM did since the snapshot is lost. A running VM goes on from the snapshot.");
}

static void on_delete(GtkButton *b, gpointer data)
{
	struct snaps *d = data;
	struct ask *q;
	char *tag = selected_tag(d);

	if (!tag)
		return;
	q = g_new0(struct ask, 1);
	q->op = OP_DELETE;
	q->tag = tag;
	ask_confirm(d, q, "_Delete snapshot", "Delete snapshot '%s' of VM '%s'?",
		    "Its images are merged into the ones after it; the VM's current state stays.");
}

static void on_clone(GtkButton *b, gpointer data)
{
	struct snaps *d = data;
	struct ask *q = g_new0(struct ask, 1);
	g_autofree char *dflt = g_strdup_printf("%s-clone", d->name);
	g_autofree char *from = NULL;
	GtkWidget *grid = form_grid(), *full, *src;

	q->op = OP_CLONE;
	q->tag = selected_tag(d);
	from = q->tag ? g_strdup_printf("From snapshot '%s'", q->tag)
		      : g_strdup("From the VM's current state (no snapshot selected)");
	src = gtk_label_new(from);
	gtk_label_set_xalign(GTK_LABEL(src), 0);
	gtk_grid_attach(GTK_GRID(grid), src, 0, 0, 2, 1);
	q->e_name = entry(dflt, "Clone name");
	mgr_form_row(GTK_GRID(grid), 1, "_Name", q->e_name);
	full = gtk_radio_button_new_with_mnemonic(NULL, "_Full: standalone copies of the disks");
	q->linked = gtk_radio_button_new_with_mnemonic_from_widget(GTK_RADIO_BUTTON(full),
		"_Linked: new overlays on the snapshot's images (needs a snapshot)");
	gtk_widget_set_sensitive(q->linked, q->tag != NULL);
	gtk_grid_attach(GTK_GRID(grid), full, 1, 2, 1, 1);
	gtk_grid_attach(GTK_GRID(grid), q->linked, 1, 3, 1, 1);
	ask_form(d, q, "Clone VM", "C_lone", grid);
}

static void on_cancel(GtkButton *b, gpointer data)
{
	struct snaps *d = data;

	d->stop = 1;	/* a clone stops; take/revert/delete run to their end */
}

static void on_selection(GtkTreeSelection *s, gpointer data)
{
	update_buttons(data);
}

static void on_response(GtkDialog *dlg, gint response, gpointer data)
{
	struct snaps *d = data;

	if (d->working)
		d->stop = 1;	/* the worker holds the dialog until done */
	d->closed = true;
	gtk_widget_destroy(d->dlg);
}

/* The dialog's own handler has sent the response: on_response() did it. */
static gboolean on_delete_event(GtkWidget *w, GdkEvent *e, gpointer data)
{
	return TRUE;
}

static void snaps_free(gpointer data)
{
	struct snaps *d = data;

	g_free(d->name);
	g_object_unref(d->store);
	g_free(d);
}

static GtkWidget *action(GtkWidget *box, const char *label, const char *tip, GCallback cb,
			 struct snaps *d)
{
	GtkWidget *b = gtk_button_new_with_mnemonic(label);

	gtk_widget_set_tooltip_text(b, tip);
	g_signal_connect(b, "clicked", cb, d);
	gtk_box_pack_start(GTK_BOX(box), b, FALSE, FALSE, 0);
	return b;
}

void snapshots_open(const char *name)
{
	struct snaps *d = g_new0(struct snaps, 1);
	g_autofree char *title = g_strdup_printf("Snapshots of %s", name);
	GtkWidget *area, *sw, *box;
	const char *cols[] = { "Snapshot", "Taken (UTC)", "Holds", "", "Description" };

	d->name = g_strdup(name);
	d->dlg = gtk_dialog_new_with_buttons(title, mgr_window(),
					     GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
					     "_Close", GTK_RESPONSE_CLOSE, NULL);
	g_object_set_data_full(G_OBJECT(d->dlg), "snapshots", d, snaps_free);
	gtk_window_set_default_size(GTK_WINDOW(d->dlg), 680, 380);
	area = gtk_dialog_get_content_area(GTK_DIALOG(d->dlg));
	g_object_set(area, "margin", 12, "spacing", 8, NULL);
	d->errbar = dialog_error_bar(&d->errlabel);
	gtk_box_pack_start(GTK_BOX(area), d->errbar, FALSE, FALSE, 0);

	d->store = gtk_tree_store_new(S_NCOLS, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING,
				      G_TYPE_STRING, G_TYPE_STRING);
	d->tree = gtk_tree_view_new_with_model(GTK_TREE_MODEL(d->store));
	mgr_accessible(d->tree, "Snapshots", "The VM's snapshots as a tree: each one's parent is the one it was taken after");
	for (int i = 0; i < S_NCOLS; i++)
		gtk_tree_view_append_column(GTK_TREE_VIEW(d->tree),
			gtk_tree_view_column_new_with_attributes(cols[i], gtk_cell_renderer_text_new(),
								 "text", i, NULL));
	g_signal_connect(gtk_tree_view_get_selection(GTK_TREE_VIEW(d->tree)), "changed",
			 G_CALLBACK(on_selection), d);
	sw = gtk_scrolled_window_new(NULL, NULL);
	gtk_container_add(GTK_CONTAINER(sw), d->tree);
	gtk_box_pack_start(GTK_BOX(area), sw, TRUE, TRUE, 0);

	box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
	d->take = action(box, "_Take…", "Take a snapshot of the VM now (a running VM's memory too)",
			 G_CALLBACK(on_take), d);
	d->revert = action(box, "_Revert", "Go back to the selected snapshot", G_CALLBACK(on_revert), d);
	d->del = action(box, "_Delete", "Delete the selected snapshot", G_CALLBACK(on_delete), d);
	d->clone = action(box, "C_lone…", "A new VM from the selected snapshot (or the current state)",
			  G_CALLBACK(on_clone), d);
	d->progress = gtk_progress_bar_new();
	gtk_progress_bar_set_show_text(GTK_PROGRESS_BAR(d->progress), TRUE);
	gtk_widget_set_no_show_all(d->progress, TRUE);
	mgr_accessible(d->progress, "Progress", NULL);
	gtk_box_pack_start(GTK_BOX(box), d->progress, TRUE, TRUE, 0);
	d->cancel = gtk_button_new_with_mnemonic("_Stop");
	gtk_widget_set_tooltip_text(d->cancel, "Stop the clone (nothing is left behind)");
	gtk_widget_set_no_show_all(d->cancel, TRUE);
	g_signal_connect(d->cancel, "clicked", G_CALLBACK(on_cancel), d);
	gtk_box_pack_end(GTK_BOX(box), d->cancel, FALSE, FALSE, 0);
	gtk_box_pack_start(GTK_BOX(area), box, FALSE, FALSE, 0);

	g_signal_connect(d->dlg, "response", G_CALLBACK(on_response), d);
	g_signal_connect(d->dlg, "delete-event", G_CALLBACK(on_delete_event), d);
	reload(d, NULL);
	update_buttons(d);
	gtk_widget_show_all(d->dlg);
}
