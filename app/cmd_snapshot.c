/* SPDX-License-Identifier: MIT */
/*
 * app/cmd_snapshot.c - `vivarium snapshot take|list|revert|delete`: a
 * VM's snapshots as external qcow2 overlays (app/snaplib.h).  For now on
 * stopped VMs only; every refusal is one line and changes nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "commands.h"
#include "ctl.h"
#include "options.h"
#include "snaplib.h"
#include "vmlib.h"
#include "vmops.h"

#define ERR(...) (fprintf(stderr, "vivarium: " __VA_ARGS__), fputc('\n', stderr))

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vivarium snapshot take NAME TAG [--description TEXT]\n"
		"       vivarium snapshot list NAME [--json]\n"
		"       vivarium snapshot revert NAME TAG\n"
		"       vivarium snapshot delete NAME TAG\n\n"
		"A snapshot freezes the VM's writable disks (qcow2 images: each gets a new\n"
		"overlay in the VM's folder, snapshots/).  revert throws away what changed\n"
		"since the snapshot: the next start boots from it.  delete merges the\n"
		"snapshot into the images above it and gives its disk space back.\n"
		"TAG: 1 to 64 characters from A-Z a-z 0-9 . _ + -, unique per VM.\n"
		"take and revert work on a running or paused VM too: its memory and\n"
		"devices are part of the snapshot, and a revert puts the running VM back\n"
		"at once.  A stopped VM reverted to such a snapshot resumes from it at its\n"
		"next start.  delete on a running VM pauses it while the images merge\n"
		"(its process saves the machine, closes the disks, merges, and goes on\n"
		"from the saved state); it refuses a snapshot that linked clones are\n"
		"based on ('vivarium clone --linked').\n");
}

/* Parse NAME TAG? with the options of @cmd; -1 to go on, else the exit. */
static int parse(int argc, char **argv, int want, const char **desc,
		 bool *json)
{
	static const struct option opts[] = {
		{ "description", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int opt;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (opt == 'd' && desc) {
			*desc = optarg;
		} else if (opt == 'j' && json) {
			*json = true;
		} else if (opt == 'h') {
			usage(stdout);
			return 0;
		} else {
			ERR("snapshot %s: unknown option '%s' (see 'vivarium snapshot --help')",
			    argv[0], argv[optind - 1]);
			return 2;
		}
	}
	if (argc - optind != want) {
		ERR("snapshot %s takes %s (see 'vivarium snapshot --help')", argv[0],
		    want == 1 ? "a VM's NAME" : "a VM's NAME and a TAG");
		return 2;
	}
	return -1;
}

static int take(int argc, char **argv)
{
	const char *desc = NULL;
	char err[1024];
	int r = parse(argc, argv, 2, &desc, NULL);

	if (r >= 0)
		return r;
	if (desc && strchr(desc, '\n')) {
		ERR("--description is one line");
		return 2;
	}
	if (vm_snapshot_take(argv[optind], argv[optind + 1], desc, err, sizeof(err)) < 0) {
		ERR("%s", err);
		return 1;
	}
	printf("took snapshot '%s' of VM '%s'\n", argv[optind + 1], argv[optind]);
	return 0;
}

static int revert(int argc, char **argv)
{
	bool running, resumes;
	char err[1024];
	int r = parse(argc, argv, 2, NULL, NULL);

	if (r >= 0)
		return r;
	running = vmlib_running(argv[optind], NULL);
	if (vm_snapshot_revert(argv[optind], argv[optind + 1], &resumes, err, sizeof(err)) < 0) {
		ERR("%s", err);
		return 1;
	}
	if (running)
		printf("VM '%s' is back at snapshot '%s'\n", argv[optind], argv[optind + 1]);
	else
		printf("VM '%s' is back at snapshot '%s': it %s from there\n",
		       argv[optind], argv[optind + 1], resumes ? "resumes" : "starts");
	return 0;
}

static int delete(int argc, char **argv)
{
	unsigned long long freed;
	char err[1024];
	int r = parse(argc, argv, 2, NULL, NULL);

	if (r >= 0)
		return r;
	if (vm_snapshot_delete(argv[optind], argv[optind + 1], &freed, err, sizeof(err)) < 0) {
		ERR("%s", err);
		return 1;
	}
	printf("deleted snapshot '%s' of VM '%s' (%llu KiB of images removed)\n",
	       argv[optind + 1], argv[optind], freed >> 10);
	return 0;
}

static void add_str(JsonBuilder *b, const char *key, const char *v)
{
	json_builder_set_member_name(b, key);
	if (v)
		json_builder_add_string_value(b, v);
	else
		json_builder_add_null_value(b);
}

static void list_json(const char *name, const struct snap_index *ix,
		      GPtrArray *order)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonGenerator) gen = json_generator_new();
	g_autoptr(JsonNode) root = NULL;
	g_autofree char *text = NULL;

	json_builder_begin_object(b);
	add_str(b, "vm", name);
	add_str(b, "current", ix->current);
	json_builder_set_member_name(b, "snapshots");
	json_builder_begin_array(b);
	for (guint i = 0; i < order->len; i++) {
		const struct snap *s = order->pdata[i];
		g_autoptr(GPtrArray) kids = snap_children(ix, s->id);

		json_builder_begin_object(b);
		add_str(b, "id", s->id);
		add_str(b, "tag", s->tag);
		add_str(b, "parent", s->parent);
		json_builder_set_member_name(b, "children");
		json_builder_begin_array(b);
		for (guint k = 0; k < kids->len; k++)
			json_builder_add_string_value(b, ((struct snap *)kids->pdata[k])->id);
		json_builder_end_array(b);
		add_str(b, "created", s->created);
		add_str(b, "description", s->description);
		json_builder_set_member_name(b, "has_memory");
		json_builder_add_boolean_value(b, s->has_memory);
		json_builder_set_member_name(b, "current");
		json_builder_add_boolean_value(b, !g_strcmp0(ix->current, s->id));
		json_builder_set_member_name(b, "disks");
		json_builder_begin_array(b);
		for (unsigned d = 0; d < s->ndisks; d++) {
			g_autofree char *p = snap_image_path(name, s->disk[d].image);

			json_builder_begin_object(b);
			add_str(b, "disk", s->disk[d].disk);
			add_str(b, "image", p);
			json_builder_end_object(b);
		}
		json_builder_end_array(b);
		json_builder_end_object(b);
	}
	json_builder_end_array(b);
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	json_generator_set_pretty(gen, TRUE);
	json_generator_set_root(gen, root);
	text = json_generator_to_data(gen, NULL);
	printf("%s\n", text);
}

static int list(int argc, char **argv)
{
	struct snap_index ix;
	g_autoptr(GPtrArray) order = NULL;
	g_autoptr(GArray) depths = NULL;
	bool json = false;
	char err[1024];
	int r = parse(argc, argv, 1, NULL, &json);
	int width = 3;
	const char *name;

	if (r >= 0)
		return r;
	name = argv[optind];
	if (vm_name_check(name, err, sizeof(err)) < 0 ||
	    snap_load_current(name, &ix, err, sizeof(err)) < 0) {
		ERR("%s", err);
		return 1;
	}
	order = snap_tree_order(&ix, &depths);
	if (json) {
		list_json(name, &ix, order);
	} else if (!order->len) {
		printf("VM '%s' has no snapshots\n", name);
	} else {
		for (guint i = 0; i < order->len; i++) {
			const struct snap *s = order->pdata[i];
			int w = 2 * (int)g_array_index(depths, guint, i) + (int)strlen(s->tag);

			width = MAX(width, w);
		}
		printf("%-*s  %-20s  %-6s  %s\n", width, "TAG", "CREATED (UTC)", "STATE",
		       "DESCRIPTION");
		for (guint i = 0; i < order->len; i++) {
			const struct snap *s = order->pdata[i];
			int ind = 2 * (int)g_array_index(depths, guint, i);
			bool cur = !g_strcmp0(ix.current, s->id);

			g_autofree char *line = g_strdup_printf("%*s%-*s  %-20s  %-6s  %s%s%s", ind, "",
				width - ind, s->tag, s->created, s->has_memory ? "memory" : "disks",
				s->description ? s->description : "",
				cur && s->description ? " " : "", cur ? "(current)" : "");

			printf("%s\n", g_strchomp(line));
		}
	}
	snap_index_clear(&ix);
	return 0;
}

int cmd_snapshot(int argc, char **argv)
{
	static const struct subcommand subs[] = {
		{ "take", take }, { "list", list }, { "revert", revert }, { "delete", delete },
	};
	int r;

	if (subcommand_run(subs, G_N_ELEMENTS(subs), usage, argc, argv, &r))
		return r;
	ERR("snapshot: unknown subcommand '%s' (take, list, revert, delete)", argv[1]);
	return 2;
}
