/* SPDX-License-Identifier: MIT */
/*
 * gui/settings.c - the Settings dialog of one VM: what `vivarium edit`
 * and `vivarium share` change (memory, vCPUs, boot order, CD-ROM,
 * display, graphics, VNC, the USB controller, TPM and sound card, network
 * cards, shared folders, notes).
 *
 * Apply sends only the fields that changed, as `edit`'s KEY=VALUE
 * assignments, to vm_edit() (one atomic rewrite of vm.conf after the same
 * checks, app/vmops.h), then the share changes to vm_share_remove() /
 * vm_share_add(): a refusal is shown in the dialog with the library's own
 * line.  A running VM's machine is fixed while it runs, so everything but
 * the notes is insensitive then, with the reason above it.  A saved VM's
 * state was made with its memory, vCPUs, graphics and devices, which
 * `edit` refuses to change (vmops.c, hardware_change()): those are
 * insensitive, with the reason, and the rest can be changed.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "manager.h"
#include "vmops.h"

static const char *const boot_ids[] = { "default", "disk", "cdrom" };
static const char *const boot_labels[] = { "Default (disk, then CD-ROM)", "Disk", "CD-ROM" };
static const char *const display_ids[] = { "auto", "sdl", "none" };
static const char *const display_labels[] = { "Window if a desktop is there (auto)", "Window (SDL)", "None (headless)" };
static const char *const vga_ids[] = { "virtio", "std", "none" };
static const char *const vga_labels[] = { "virtio-gpu and VGA", "Standard VGA", "None" };

struct settings {
	char *name;
	GtkWidget *dlg, *errbar, *errlabel, *hw, *reason;
	GtkWidget *memory, *cpus, *boot, *cdrom, *display, *vga, *vnc, *notes;
	GtkWidget *devices, *usb, *tpm, *sound;
	GtkWidget *nic_new[VM_MAX_NICS], *nic_rm[VM_MAX_NICS];
	GtkWidget *share_rm[MACHINE_MAX_SHARES], *share_path, *share_tag, *share_ro;
	/* The values at open, to send only changes. */
	char *o_memory, *o_cpus, *o_boot, *o_cdrom, *o_display, *o_vga, *o_vnc, *o_notes;
	bool o_usb, o_tpm, o_sound;
	char *share_tags[MACHINE_MAX_SHARES];
	unsigned nshares;
	bool has_nic[VM_MAX_NICS];
};

static void settings_free(gpointer data)
{
	struct settings *s = data;

	g_free(s->name);
	g_free(s->o_memory);
	g_free(s->o_cpus);
	g_free(s->o_boot);
	g_free(s->o_cdrom);
	g_free(s->o_display);
	g_free(s->o_vga);
	g_free(s->o_vnc);
	g_free(s->o_notes);
	for (unsigned i = 0; i < MACHINE_MAX_SHARES; i++)
		g_free(s->share_tags[i]);
	g_free(s);
}

static GtkWidget *combo(const char *const *ids, const char *const *labels, unsigned n,
			const char *active, const char *a11y)
{
	GtkWidget *c = gtk_combo_box_text_new();

	for (unsigned i = 0; i < n; i++)
		gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(c), ids[i], labels[i]);
	if (!active || !gtk_combo_box_set_active_id(GTK_COMBO_BOX(c), active))
		gtk_combo_box_set_active(GTK_COMBO_BOX(c), 0);
	mgr_accessible(c, a11y, NULL);
	return c;
}

static GtkWidget *text_entry(const char *text, const char *a11y, const char *placeholder)
{
	GtkWidget *e = gtk_entry_new();

	gtk_entry_set_text(GTK_ENTRY(e), text ? text : "");
	if (placeholder)
		gtk_entry_set_placeholder_text(GTK_ENTRY(e), placeholder);
	gtk_entry_set_activates_default(GTK_ENTRY(e), TRUE);
	mgr_accessible(e, a11y, NULL);
	return e;
}

/* "KEY=VALUE" into @a when the text differs from what it was. */
static void changed(GPtrArray *a, const char *key, const char *was, const char *now)
{
	if (g_strcmp0(was ? was : "", now ? now : ""))
		g_ptr_array_add(a, g_strdup_printf("%s=%s", key, now ? now : ""));
}

/* "KEY=on|off" (@on, @off) into @a when check button @w changed. */
static void toggled(GPtrArray *a, const char *key, bool was, GtkWidget *w,
		    const char *on, const char *off)
{
	bool now = gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(w));

	if (now != was)
		g_ptr_array_add(a, g_strdup_printf("%s=%s", key, now ? on : off));
}

static bool apply(struct settings *s)
{
	g_autoptr(GPtrArray) a = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *cpus = g_strdup_printf("%d", gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(s->cpus)));
	g_autofree char *cdrom = g_strstrip(g_strdup(gtk_entry_get_text(GTK_ENTRY(s->cdrom))));
	g_autofree char *memory = g_strstrip(g_strdup(gtk_entry_get_text(GTK_ENTRY(s->memory))));
	g_autofree char *vnc = g_strstrip(g_strdup(gtk_entry_get_text(GTK_ENTRY(s->vnc))));
	char err[1024];
	unsigned nchanges = 0;
	int r;

	changed(a, "memory", s->o_memory, memory);
	changed(a, "cpus", s->o_cpus, cpus);
	changed(a, "boot", s->o_boot, gtk_combo_box_get_active_id(GTK_COMBO_BOX(s->boot)));
	changed(a, "cdrom", s->o_cdrom, cdrom);
	changed(a, "display", s->o_display, gtk_combo_box_get_active_id(GTK_COMBO_BOX(s->display)));
	changed(a, "vga", s->o_vga, gtk_combo_box_get_active_id(GTK_COMBO_BOX(s->vga)));
	changed(a, "vnc", s->o_vnc, vnc);
	toggled(a, "usb", s->o_usb, s->usb, "on", "off");
	toggled(a, "tpm", s->o_tpm, s->tpm, "on", "off");
	toggled(a, "audio", s->o_sound, s->sound, "pa", "off");
	changed(a, "notes", s->o_notes, gtk_entry_get_text(GTK_ENTRY(s->notes)));
	for (unsigned i = 0; i < VM_MAX_NICS; i++) {
		g_autofree char *spec = g_strstrip(g_strdup(gtk_entry_get_text(GTK_ENTRY(s->nic_new[i]))));

		if (*spec)
			g_ptr_array_add(a, g_strdup_printf("nic%u=%s", i, spec));
		else if (s->has_nic[i] && gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(s->nic_rm[i])))
			g_ptr_array_add(a, g_strdup_printf("nic%u=", i));
	}
	if (a->len) {
		r = vm_edit(s->name, (const char *const *)a->pdata, a->len, err, sizeof(err));
		if (r < 0) {
			dialog_error(s->errbar, s->errlabel, err);
			return false;
		}
		nchanges += a->len;
	}
	for (unsigned i = 0; i < s->nshares; i++) {
		if (!gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(s->share_rm[i])))
			continue;
		if (vm_share_remove(s->name, s->share_tags[i], err, sizeof(err)) < 0) {
			dialog_error(s->errbar, s->errlabel, err);
			return false;
		}
		gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(s->share_rm[i]), FALSE);
		gtk_widget_set_sensitive(s->share_rm[i], FALSE);
		nchanges++;
	}
	{
		g_autofree char *path = g_strstrip(g_strdup(gtk_entry_get_text(GTK_ENTRY(s->share_path))));
		g_autofree char *tag = g_strstrip(g_strdup(gtk_entry_get_text(GTK_ENTRY(s->share_tag))));

		if (*path) {
			GString *spec = g_string_new(path);
			struct share_spec sh = { 0 };

			if (*tag)
				g_string_append_printf(spec, ",tag=%s", tag);
			if (gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(s->share_ro)))
				g_string_append(spec, ",readonly");
			r = share_spec_parse(spec->str, &sh, err, sizeof(err));
			g_string_free(spec, TRUE);
			if (r >= 0)
				r = vm_share_add(s->name, &sh, err, sizeof(err));
			share_spec_clear(&sh);
			if (r < 0) {
				dialog_error(s->errbar, s->errlabel, err);
				return false;
			}
			nchanges++;
		}
	}
	mgr_message(false, nchanges ? "Saved the settings of VM '%s'" : "No change to VM '%s'", s->name);
	return true;
}

static void on_response(GtkDialog *d, gint response, gpointer data)
{
	struct settings *s = data;

	if (response == GTK_RESPONSE_APPLY && !apply(s))
		return;		/* the error is shown; the dialog stays */
	gtk_widget_destroy(s->dlg);
}

static gboolean on_delete_event(GtkWidget *w, GdkEvent *e, gpointer data)
{
	return TRUE;	/* on_response() has closed it */
}

static void on_browse(GtkButton *b, gpointer data)
{
	struct settings *s = data;
	GtkFileChooserNative *fc = gtk_file_chooser_native_new("Choose an ISO image", GTK_WINDOW(s->dlg),
							      GTK_FILE_CHOOSER_ACTION_OPEN, "_Open", "_Cancel");

	if (gtk_native_dialog_run(GTK_NATIVE_DIALOG(fc)) == GTK_RESPONSE_ACCEPT) {
		g_autofree char *path = gtk_file_chooser_get_filename(GTK_FILE_CHOOSER(fc));

		if (path)
			gtk_entry_set_text(GTK_ENTRY(s->cdrom), path);
	}
	g_object_unref(fc);
}

/* A check button with mnemonic @label, its accessible name @a11y. */
static GtkWidget *check(bool active, const char *label, const char *a11y)
{
	GtkWidget *b = gtk_check_button_new_with_mnemonic(label);

	gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(b), active);
	mgr_accessible(b, a11y, NULL);
	return b;
}

static GtkWidget *section(const char *title, GtkWidget **grid)
{
	GtkWidget *frame = gtk_frame_new(title);

	*grid = gtk_grid_new();
	gtk_grid_set_row_spacing(GTK_GRID(*grid), 6);
	gtk_grid_set_column_spacing(GTK_GRID(*grid), 12);
	g_object_set(*grid, "margin", 8, NULL);
	gtk_container_add(GTK_CONTAINER(frame), *grid);
	return frame;
}

void settings_open(const char *name)
{
	const struct vm_item *it = mgr_list() ? vm_list_find(mgr_list(), name) : NULL;
	const struct vm_config *c;
	struct settings *s;
	g_autofree char *title = g_strdup_printf("Settings of %s", name);
	GtkWidget *area, *box, *grid, *frame, *hwbox, *cdbox, *browse, *sw;
	bool running, saved;
	char buf[32];
	int row;

	if (!it || it->state == VM_STATE_BROKEN)
		return;
	c = &it->cfg;
	running = it->state != VM_STATE_STOPPED && it->state != VM_STATE_SAVED;
	saved = it->state == VM_STATE_SAVED;
	s = g_new0(struct settings, 1);
	s->name = g_strdup(name);
	s->o_memory = g_strdup(vm_size_str(c->memory, buf, sizeof(buf)));
	s->o_cpus = g_strdup_printf("%u", c->cpus);
	s->o_boot = g_strdup(vm_boot_name(c->boot));
	s->o_cdrom = g_strdup(c->cdrom);
	s->o_display = g_strdup(c->display ? c->display : "none");
	s->o_vga = g_strdup(c->vga ? c->vga : "std");
	s->o_vnc = g_strdup(c->vnc);
	s->o_notes = g_strdup(c->notes);
	s->o_usb = c->usb;
	s->o_tpm = c->tpm;
	s->o_sound = c->audio != VM_AUDIO_OFF;

	s->dlg = gtk_dialog_new_with_buttons(title, mgr_window(),
					     GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
					     "_Cancel", GTK_RESPONSE_CANCEL, "_Save", GTK_RESPONSE_APPLY, NULL);
	g_object_set_data_full(G_OBJECT(s->dlg), "settings", s, settings_free);
	gtk_dialog_set_default_response(GTK_DIALOG(s->dlg), GTK_RESPONSE_APPLY);
	gtk_window_set_default_size(GTK_WINDOW(s->dlg), 640, 640);
	area = gtk_dialog_get_content_area(GTK_DIALOG(s->dlg));
	g_object_set(area, "margin", 12, "spacing", 8, NULL);
	s->errbar = dialog_error_bar(&s->errlabel);
	gtk_box_pack_start(GTK_BOX(area), s->errbar, FALSE, FALSE, 0);

	s->reason = gtk_label_new(NULL);
	if (running) {
		g_autofree char *why = g_strdup_printf(
			"VM '%s' is running: its memory, vCPUs, boot order, CD-ROM, display, VNC, devices, network cards and shared folders can be changed once it is stopped.",
			name);

		gtk_label_set_text(GTK_LABEL(s->reason), why);
	} else if (saved) {
		g_autofree char *why = g_strdup_printf(
			"VM '%s' holds a saved state made with its memory, vCPUs, graphics and devices: those can be changed once it has been started and shut down, or its saved state discarded.",
			name);

		gtk_label_set_text(GTK_LABEL(s->reason), why);
	}
	gtk_label_set_line_wrap(GTK_LABEL(s->reason), TRUE);
	gtk_label_set_xalign(GTK_LABEL(s->reason), 0);
	gtk_widget_set_no_show_all(s->reason, !running && !saved);
	gtk_box_pack_start(GTK_BOX(area), s->reason, FALSE, FALSE, 0);

	sw = gtk_scrolled_window_new(NULL, NULL);
	gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(sw), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
	box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 8);
	gtk_container_add(GTK_CONTAINER(sw), box);
	gtk_box_pack_start(GTK_BOX(area), sw, TRUE, TRUE, 0);

	/* What needs a stopped VM. */
	hwbox = gtk_box_new(GTK_ORIENTATION_VERTICAL, 8);
	s->hw = hwbox;
	gtk_box_pack_start(GTK_BOX(box), hwbox, FALSE, FALSE, 0);

	frame = section("Machine", &grid);
	s->memory = text_entry(s->o_memory, "Memory", "e.g. 2G");
	mgr_form_row(GTK_GRID(grid), 0, "_Memory", s->memory);
	s->cpus = gtk_spin_button_new_with_range(1, MACHINE_MAX_CPUS, 1);
	gtk_spin_button_set_value(GTK_SPIN_BUTTON(s->cpus), c->cpus);
	mgr_accessible(s->cpus, "vCPUs", NULL);
	mgr_form_row(GTK_GRID(grid), 1, "_vCPUs", s->cpus);
	s->boot = combo(boot_ids, boot_labels, G_N_ELEMENTS(boot_ids), s->o_boot, "Boot order");
	mgr_form_row(GTK_GRID(grid), 2, "_Boot from", s->boot);
	cdbox = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
	s->cdrom = text_entry(s->o_cdrom, "CD-ROM", "empty drive");
	gtk_box_pack_start(GTK_BOX(cdbox), s->cdrom, TRUE, TRUE, 0);
	browse = gtk_button_new_with_mnemonic("B_rowse…");
	mgr_accessible(browse, "Browse for a CD-ROM image", NULL);
	g_signal_connect(browse, "clicked", G_CALLBACK(on_browse), s);
	gtk_box_pack_start(GTK_BOX(cdbox), browse, FALSE, FALSE, 0);
	mgr_form_row(GTK_GRID(grid), 3, "_CD-ROM", cdbox);
	gtk_label_set_mnemonic_widget(GTK_LABEL(gtk_grid_get_child_at(GTK_GRID(grid), 0, 3)), s->cdrom);
	gtk_box_pack_start(GTK_BOX(hwbox), frame, FALSE, FALSE, 0);

	frame = section("Display", &grid);
	s->display = combo(display_ids, display_labels, G_N_ELEMENTS(display_ids), s->o_display, "Display");
	mgr_form_row(GTK_GRID(grid), 0, "_Display", s->display);
	s->vga = combo(vga_ids, vga_labels, G_N_ELEMENTS(vga_ids), s->o_vga, "Graphics");
	mgr_form_row(GTK_GRID(grid), 1, "_Graphics", s->vga);
	s->vnc = text_entry(s->o_vnc, "VNC", "off; e.g. 127.0.0.1:5901 or unix:/path");
	mgr_form_row(GTK_GRID(grid), 2, "V_NC", s->vnc);
	gtk_box_pack_start(GTK_BOX(hwbox), frame, FALSE, FALSE, 0);

	frame = section("Devices", &grid);
	s->devices = frame;
	s->usb = check(c->usb, "_USB controller (tablet and keyboard)", "USB controller");
	gtk_grid_attach(GTK_GRID(grid), s->usb, 0, 0, 1, 1);
	s->tpm = check(c->tpm, "T_PM 2.0 (swtpm)", "TPM");
	gtk_grid_attach(GTK_GRID(grid), s->tpm, 0, 1, 1, 1);
	s->sound = check(s->o_sound, "Sound card (Intel HD Aud_io)", "Sound card");
	gtk_grid_attach(GTK_GRID(grid), s->sound, 0, 2, 1, 1);
	gtk_box_pack_start(GTK_BOX(hwbox), frame, FALSE, FALSE, 0);
	if (saved) {
		gtk_widget_set_sensitive(s->memory, FALSE);
		gtk_widget_set_sensitive(s->cpus, FALSE);
		gtk_widget_set_sensitive(s->vga, FALSE);
		gtk_widget_set_sensitive(s->devices, FALSE);
	}

	frame = section("Network cards", &grid);
	row = 0;
	for (unsigned i = 0; i < VM_MAX_NICS; i++) {
		g_autofree char *lbl = g_strdup_printf("Card %u", i);
		g_autofree char *now = NULL, *a11y = g_strdup_printf("Card %u: new setting", i);
		g_autofree char *rm = g_strdup_printf("Remove card %u", i);
		GtkWidget *l, *cur;

		if (i < c->nnics) {
			uint8_t mac[6] = { 0 };

			if (c->uuid)
				vm_mac_from_uuid(c->uuid, i, mac);
			now = nic_describe(&c->nic[i], c->nic[i].has_mac ? c->nic[i].mac : mac);
			s->has_nic[i] = true;
		}
		l = gtk_label_new(lbl);
		gtk_widget_set_halign(l, GTK_ALIGN_END);
		gtk_grid_attach(GTK_GRID(grid), l, 0, row, 1, 1);
		cur = gtk_label_new(now ? now : "none");
		gtk_label_set_xalign(GTK_LABEL(cur), 0);
		gtk_label_set_selectable(GTK_LABEL(cur), TRUE);
		gtk_grid_attach(GTK_GRID(grid), cur, 1, row, 2, 1);
		s->nic_new[i] = text_entry("", a11y, now ? "replace with: e.g. e1000,nat" : "add: e.g. virtio-net,nat");
		gtk_widget_set_hexpand(s->nic_new[i], TRUE);
		gtk_grid_attach(GTK_GRID(grid), s->nic_new[i], 1, row + 1, 1, 1);
		s->nic_rm[i] = gtk_check_button_new_with_label("Remove");
		mgr_accessible(s->nic_rm[i], rm, NULL);
		gtk_widget_set_sensitive(s->nic_rm[i], now != NULL);
		gtk_grid_attach(GTK_GRID(grid), s->nic_rm[i], 2, row + 1, 1, 1);
		gtk_label_set_mnemonic_widget(GTK_LABEL(l), s->nic_new[i]);
		row += 2;
	}
	gtk_box_pack_start(GTK_BOX(hwbox), frame, FALSE, FALSE, 0);

	frame = section("Shared folders", &grid);
	s->nshares = c->nshares;
	for (unsigned i = 0; i < c->nshares; i++) {
		g_autofree char *txt = g_strdup_printf("'%s': %s%s", c->share[i].tag, c->share[i].path,
						       c->share[i].readonly ? " (read-only)" : "");
		g_autofree char *rm = g_strdup_printf("Remove share %s", c->share[i].tag);
		GtkWidget *l = gtk_label_new(txt);

		s->share_tags[i] = g_strdup(c->share[i].tag);
		gtk_label_set_xalign(GTK_LABEL(l), 0);
		gtk_widget_set_hexpand(l, TRUE);
		gtk_grid_attach(GTK_GRID(grid), l, 0, (int)i, 2, 1);
		s->share_rm[i] = gtk_check_button_new_with_label("Remove");
		mgr_accessible(s->share_rm[i], rm, NULL);
		gtk_grid_attach(GTK_GRID(grid), s->share_rm[i], 2, (int)i, 1, 1);
	}
	s->share_path = text_entry("", "New shared folder", "a host folder to share");
	mgr_form_row(GTK_GRID(grid), (int)c->nshares, "_Add folder", s->share_path);
	s->share_tag = text_entry("", "New share's tag", "tag (default: the folder's name)");
	mgr_form_row(GTK_GRID(grid), (int)c->nshares + 1, "_Tag", s->share_tag);
	s->share_ro = gtk_check_button_new_with_mnemonic("_Read-only");
	gtk_grid_attach(GTK_GRID(grid), s->share_ro, 1, (int)c->nshares + 2, 1, 1);
	gtk_box_pack_start(GTK_BOX(hwbox), frame, FALSE, FALSE, 0);
	gtk_widget_set_sensitive(hwbox, !running);

	frame = section("Notes", &grid);
	s->notes = text_entry(s->o_notes, "Notes", NULL);
	mgr_form_row(GTK_GRID(grid), 0, "N_otes", s->notes);
	gtk_box_pack_start(GTK_BOX(box), frame, FALSE, FALSE, 0);

	g_signal_connect(s->dlg, "response", G_CALLBACK(on_response), s);
	g_signal_connect(s->dlg, "delete-event", G_CALLBACK(on_delete_event), s);
	gtk_widget_show_all(s->dlg);
}
