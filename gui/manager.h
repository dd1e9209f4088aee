/* SPDX-License-Identifier: MIT */
/*
 * gui/manager.h - what the manager's window (manager.c) shares with its
 * dialogs: the New VM dialog (newvm.c), Settings (settings.c) and
 * Snapshots (snapshots.c).  Everything here runs on the GTK main thread;
 * library work that may take long runs on GTask worker threads.
 */
#ifndef VIVARIUM_GUI_MANAGER_H
#define VIVARIUM_GUI_MANAGER_H

#include <stdbool.h>

#include <gtk/gtk.h>

#include "vmlist.h"

#define REQUEST_TIMEOUT_MS	10000

/* The main window (NULL before it exists) and the live model. */
GtkWindow *mgr_window(void);
struct vm_list *mgr_list(void);

/* The VM selected in the list (g_free), or NULL. */
char *mgr_selected(void);
/* Select VM @name in the list if it is there. */
void mgr_select(const char *name);

/* The main window's info bar: one line, an error or (@error false) news. */
void mgr_message(bool error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* The toolbar's sensitivity and the details pane, again (after a dialog
 * changed something the model does not report, e.g. snapshots). */
void mgr_refresh(void);

/* Set @w's accessible name (and description, may be NULL). */
void mgr_accessible(GtkWidget *w, const char *name, const char *desc);

/* A row of a dialog's form: @label (with a mnemonic) names @field, for
 * people and for screen readers (LABEL_FOR / LABELLED_BY). */
void mgr_form_row(GtkGrid *grid, int row, const char *label, GtkWidget *field);

/* An error area for a dialog: a label in an error info bar, hidden until
 * dialog_error() shows it. */
GtkWidget *dialog_error_bar(GtkWidget **label);
void dialog_error(GtkWidget *bar, GtkWidget *label, const char *msg);

/* The dialogs, each modal to the main window. */
void newvm_open(void);				/* newvm.c */
void settings_open(const char *name);		/* settings.c */
void snapshots_open(const char *name);		/* snapshots.c */

#endif
