/* SPDX-License-Identifier: MIT */
/*
 * gui/newvm.c - the New VM dialog: name, ISO image (or none), memory and
 * vCPUs (defaults from the host, vm_host_defaults()), disk size, Create.
 *
 * One page, not a GtkAssistant: five fields fit on one screen, every
 * refusal of vm_create_check() then shows beside all of them at once (an
 * assistant would send the user back pages to fix one), and keyboard and
 * screen-reader users get one form with one default button.
 *
 * The text goes to vm_create() as typed, so the checks and the one-line
 * errors are the CLI's (`vivarium create`, app/vmops.h): the dialog shows
 * the error and stays open, and the library is unchanged.  The create
 * itself (disk image included) runs on a GTask thread with a progress bar;
 * Cancel then asks vm_create() to stop between steps, which leaves
 * nothing behind.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "manager.h"
#include "vmops.h"

#define DEFAULT_DISK	"16G"

struct newvm {
	GtkWidget *dlg, *name, *iso, *memory, *cpus, *disk;
	GtkWidget *errbar, *errlabel, *progress, *create, *form;
	volatile sig_atomic_t stop;
	bool working;
	/* The worker's copy of the form, and its result. */
	char *t_name, *t_iso, *t_memory, *t_cpus, *t_disk;
	char err[1024];
	int r;
};

struct step {
	struct newvm *n;
	char *text;
	double fraction;
};

static gboolean step_show(gpointer data)
{
	struct step *st = data;

	gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(st->n->progress), st->fraction);
	gtk_progress_bar_set_text(GTK_PROGRESS_BAR(st->n->progress), st->text);
	g_free(st->text);
	g_free(st);
	return G_SOURCE_REMOVE;
}

/* vm_create()'s progress, on the worker thread: shown from the main loop
 * (the dialog lives until the task is done). */
static void on_progress(void *opaque, const char *step, double fraction)
{
	struct step *st = g_new0(struct step, 1);

	st->n = opaque;
	st->text = g_strdup(step);
	st->fraction = fraction;
	g_main_context_invoke(NULL, step_show, st);
}

static void fill_spec(struct newvm *n, struct vm_create_spec *s)
{
	memset(s, 0, sizeof(*s));
	s->name = n->t_name;
	s->iso = *n->t_iso ? n->t_iso : NULL;
	s->memory = n->t_memory;
	s->cpus = n->t_cpus;
	s->disk_size = n->t_disk;
	s->stop = &n->stop;
	s->progress = on_progress;
	s->opaque = n;
}

static void create_thread(GTask *task, gpointer src, gpointer data, GCancellable *c)
{
	struct newvm *n = data;
	struct vm_create_spec s;

	fill_spec(n, &s);
	n->r = vm_create(&s, NULL, n->err, sizeof(n->err));
	g_task_return_boolean(task, TRUE);
}

static void free_form(struct newvm *n)
{
	g_clear_pointer(&n->t_name, g_free);
	g_clear_pointer(&n->t_iso, g_free);
	g_clear_pointer(&n->t_memory, g_free);
	g_clear_pointer(&n->t_cpus, g_free);
	g_clear_pointer(&n->t_disk, g_free);
}

static void set_working(struct newvm *n, bool on)
{
	n->working = on;
	gtk_widget_set_sensitive(n->form, !on);
	gtk_widget_set_sensitive(n->create, !on);
	gtk_widget_set_visible(n->progress, on);
}

static void create_done(GObject *src, GAsyncResult *res, gpointer data)
{
	struct newvm *n = data;
	g_autofree char *name = g_strdup(n->t_name);

	set_working(n, false);
	free_form(n);
	if (n->r == 0) {
		mgr_message(false, "Created VM '%s'", name);
		mgr_select(name);
		gtk_widget_destroy(n->dlg);	/* frees @n */
		return;
	}
	if (n->stop == 2) {	/* closed while working */
		gtk_widget_destroy(n->dlg);
		return;
	}
	n->stop = 0;
	dialog_error(n->errbar, n->errlabel, n->err);
}

static void start_create(struct newvm *n)
{
	struct vm_create_spec s;
	GTask *t;

	free_form(n);
	n->t_name = g_strstrip(g_strdup(gtk_entry_get_text(GTK_ENTRY(n->name))));
	n->t_iso = g_strstrip(g_strdup(gtk_entry_get_text(GTK_ENTRY(n->iso))));
	n->t_memory = g_strstrip(g_strdup(gtk_entry_get_text(GTK_ENTRY(n->memory))));
	n->t_cpus = g_strdup_printf("%d", gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(n->cpus)));
	n->t_disk = g_strstrip(g_strdup(gtk_entry_get_text(GTK_ENTRY(n->disk))));
	/* The quick checks at once, on this thread: the error appears as
	 * the button is pressed. */
	fill_spec(n, &s);
	if (vm_create_check(&s, n->err, sizeof(n->err)) < 0) {
		dialog_error(n->errbar, n->errlabel, n->err);
		free_form(n);
		return;
	}
	dialog_error(n->errbar, n->errlabel, NULL);
	n->stop = 0;
	set_working(n, true);
	gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(n->progress), 0);
	t = g_task_new(NULL, NULL, create_done, n);
	g_task_set_task_data(t, n, NULL);
	g_task_run_in_thread(t, create_thread);
	g_object_unref(t);
}

static void on_response(GtkDialog *d, gint response, gpointer data)
{
	struct newvm *n = data;

	if (response == GTK_RESPONSE_ACCEPT) {
		if (!n->working)
			start_create(n);
		return;
	}
	/* Cancel, Escape or the window's close button. */
	if (n->working) {
		n->stop = 2;	/* create_done() closes the dialog */
		return;
	}
	gtk_widget_destroy(n->dlg);
}

static gboolean on_delete_event(GtkWidget *w, GdkEvent *e, gpointer data)
{
	struct newvm *n = data;

	/* The dialog's own handler has sent the response (on_response()
	 * destroyed the dialog, or asked the worker to stop: not while it
	 * uses the dialog). */
	n->stop = n->working ? 2 : n->stop;
	return TRUE;
}

static void newvm_free(gpointer data)
{
	free_form(data);
	g_free(data);
}

static void on_browse(GtkButton *b, gpointer data)
{
	struct newvm *n = data;
	GtkFileChooserNative *fc = gtk_file_chooser_native_new("Choose an ISO image", GTK_WINDOW(n->dlg),
							      GTK_FILE_CHOOSER_ACTION_OPEN, "_Open", "_Cancel");
	GtkFileFilter *f = gtk_file_filter_new();

	gtk_file_filter_set_name(f, "CD/DVD images (*.iso)");
	gtk_file_filter_add_pattern(f, "*.iso");
	gtk_file_filter_add_pattern(f, "*.ISO");
	gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(fc), f);
	f = gtk_file_filter_new();
	gtk_file_filter_set_name(f, "All files");
	gtk_file_filter_add_pattern(f, "*");
	gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(fc), f);
	if (gtk_native_dialog_run(GTK_NATIVE_DIALOG(fc)) == GTK_RESPONSE_ACCEPT) {
		g_autofree char *path = gtk_file_chooser_get_filename(GTK_FILE_CHOOSER(fc));

		if (path)
			gtk_entry_set_text(GTK_ENTRY(n->iso), path);
	}
	g_object_unref(fc);
}

void newvm_open(void)
{
	struct newvm *n = g_new0(struct newvm, 1);
	GtkWidget *area, *grid, *box, *browse, *hint;
	uint64_t mem;
	unsigned cpus;
	char buf[32];

	vm_host_defaults(&mem, &cpus);
	n->dlg = gtk_dialog_new_with_buttons("New VM", mgr_window(),
					     GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
					     "_Cancel", GTK_RESPONSE_CANCEL, NULL);
	n->create = gtk_dialog_add_button(GTK_DIALOG(n->dlg), "C_reate", GTK_RESPONSE_ACCEPT);
	gtk_style_context_add_class(gtk_widget_get_style_context(n->create), "suggested-action");
	gtk_dialog_set_default_response(GTK_DIALOG(n->dlg), GTK_RESPONSE_ACCEPT);
	gtk_window_set_default_size(GTK_WINDOW(n->dlg), 520, -1);
	area = gtk_dialog_get_content_area(GTK_DIALOG(n->dlg));
	g_object_set(area, "margin", 12, "spacing", 8, NULL);

	n->errbar = dialog_error_bar(&n->errlabel);
	gtk_box_pack_start(GTK_BOX(area), n->errbar, FALSE, FALSE, 0);

	grid = gtk_grid_new();
	n->form = grid;
	gtk_grid_set_row_spacing(GTK_GRID(grid), 6);
	gtk_grid_set_column_spacing(GTK_GRID(grid), 12);

	n->name = gtk_entry_new();
	gtk_entry_set_activates_default(GTK_ENTRY(n->name), TRUE);
	gtk_entry_set_placeholder_text(GTK_ENTRY(n->name), "e.g. debian12");
	mgr_accessible(n->name, "Name", "The VM's name: letters, digits, . _ + -");
	mgr_form_row(GTK_GRID(grid), 0, "_Name", n->name);

	box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
	n->iso = gtk_entry_new();
	gtk_entry_set_activates_default(GTK_ENTRY(n->iso), TRUE);
	gtk_entry_set_placeholder_text(GTK_ENTRY(n->iso), "none: an empty CD-ROM drive");
	mgr_accessible(n->iso, "ISO image", "The CD/DVD image to install from; empty for none");
	gtk_box_pack_start(GTK_BOX(box), n->iso, TRUE, TRUE, 0);
	browse = gtk_button_new_with_mnemonic("_Browse…");
	mgr_accessible(browse, "Browse for an ISO image", NULL);
	g_signal_connect(browse, "clicked", G_CALLBACK(on_browse), n);
	gtk_box_pack_start(GTK_BOX(box), browse, FALSE, FALSE, 0);
	mgr_form_row(GTK_GRID(grid), 1, "_ISO image", box);
	gtk_label_set_mnemonic_widget(GTK_LABEL(gtk_grid_get_child_at(GTK_GRID(grid), 0, 1)), n->iso);

	n->memory = gtk_entry_new();
	gtk_entry_set_activates_default(GTK_ENTRY(n->memory), TRUE);
	gtk_entry_set_text(GTK_ENTRY(n->memory), vm_size_str(mem, buf, sizeof(buf)));
	mgr_accessible(n->memory, "Memory", "The guest's RAM: a size with K, M, G, T (e.g. 2G)");
	mgr_form_row(GTK_GRID(grid), 2, "_Memory", n->memory);

	n->cpus = gtk_spin_button_new_with_range(1, MACHINE_MAX_CPUS, 1);
	gtk_spin_button_set_value(GTK_SPIN_BUTTON(n->cpus), cpus);
	gtk_entry_set_activates_default(GTK_ENTRY(n->cpus), TRUE);
	mgr_accessible(n->cpus, "vCPUs", "Virtual CPUs");
	mgr_form_row(GTK_GRID(grid), 3, "_vCPUs", n->cpus);

	n->disk = gtk_entry_new();
	gtk_entry_set_activates_default(GTK_ENTRY(n->disk), TRUE);
	gtk_entry_set_text(GTK_ENTRY(n->disk), DEFAULT_DISK);
	gtk_entry_set_placeholder_text(GTK_ENTRY(n->disk), "none: no disk");
	mgr_accessible(n->disk, "Disk size", "A new qcow2 disk image of this size; empty for none");
	mgr_form_row(GTK_GRID(grid), 4, "_Disk size", n->disk);
	gtk_box_pack_start(GTK_BOX(area), grid, FALSE, FALSE, 0);

	hint = gtk_label_new("The disk image grows as the guest writes. Memory and vCPUs\n"
			     "are preset from this host; Settings changes them later.");
	gtk_style_context_add_class(gtk_widget_get_style_context(hint), "dim-label");
	gtk_label_set_xalign(GTK_LABEL(hint), 0);
	gtk_box_pack_start(GTK_BOX(area), hint, FALSE, FALSE, 0);

	n->progress = gtk_progress_bar_new();
	gtk_progress_bar_set_show_text(GTK_PROGRESS_BAR(n->progress), TRUE);
	mgr_accessible(n->progress, "Progress", NULL);
	gtk_widget_set_no_show_all(n->progress, TRUE);
	gtk_box_pack_start(GTK_BOX(area), n->progress, FALSE, FALSE, 0);

	g_object_set_data_full(G_OBJECT(n->dlg), "newvm", n, newvm_free);
	g_signal_connect(n->dlg, "response", G_CALLBACK(on_response), n);
	g_signal_connect(n->dlg, "delete-event", G_CALLBACK(on_delete_event), n);
	gtk_widget_show_all(n->dlg);
	gtk_widget_grab_focus(n->name);
}
