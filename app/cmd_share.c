/* SPDX-License-Identifier: MIT */
/*
 * app/cmd_share.c - `vivarium share add|list|remove`: a library VM's shared
 * folders, the [shareN] groups of its vm.conf (docs/vm-conf.md).
 *
 * add and remove change vm.conf only (atomically, as `edit` does, with the
 * VM's folder lock held so that no snapshot or clone command rewrites
 * vm.conf meanwhile); a running VM sees the change at its next start:
 * shares are not hot-plugged.  A VM holding a saved state is refused: the
 * state holds the shares it ran with, and a resume needs exactly those.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "commands.h"
#include "options.h"
#include "snaplib.h"
#include "vmlib.h"
#include "vmops.h"
#include "virtio/virtio_9p.h"

#define ERR(...) (fprintf(stderr, "vivarium: " __VA_ARGS__), fputc('\n', stderr))

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vivarium share add NAME HOSTDIR [--tag TAG] [--readonly] [--guest-path PATH]\n"
		"       vivarium share list NAME [--json]\n"
		"       vivarium share remove NAME TAG\n\n"
		"Shares host folder HOSTDIR with VM NAME over virtio-9p (up to %u folders).\n"
		"TAG is the name the guest mounts it by (1-%d characters of A-Z a-z 0-9 _ . -;\n"
		"default: HOSTDIR's own name):\n"
		"    mount -t 9p -o trans=virtio,version=9p2000.L TAG /mnt/TAG\n"
		"The guest additions mount it at PATH (default /mnt/TAG).  --readonly makes\n"
		"every change from the guest fail.  A running VM sees an added or removed\n"
		"share at its next start.\n",
		MACHINE_MAX_SHARES, SHARE_TAG_MAX);
}

static void running_note(const char *name)
{
	if (vmlib_running(name, NULL))
		printf("VM '%s' is running: the change takes effect at its next start (shared folders are not hot-plugged)\n",
		       name);
}

static int share_add(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tag", required_argument, NULL, 't' },
		{ "readonly", no_argument, NULL, 'r' },
		{ "guest-path", required_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct share_spec s = { 0 };
	g_autofree char *gp = NULL;
	const char *tag = NULL, *guest = NULL, *name;
	int opt, r = 1, n;
	char err[512];

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 't': tag = optarg; break;
		case 'r': s.readonly = true; break;
		case 'g': guest = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (argc - optind != 2) {
		ERR("usage: vivarium share add NAME HOSTDIR [--tag TAG] [--readonly] [--guest-path PATH]");
		return 2;
	}
	name = argv[optind];
	if (!argv[optind + 1][0]) {
		ERR("share add: give the host folder");
		return 1;
	}
	if (tag && !virtio_9p_tag_ok(tag)) {
		g_autofree char *shown = g_strescape(tag, NULL);

		ERR("--tag '%s': a mount tag is 1-%d characters of A-Z a-z 0-9 _ . -",
		    shown, SHARE_TAG_MAX);
		return 1;
	}
	if (guest && share_guest_path_check(guest, &s.guest_path, err, sizeof(err)) < 0) {
		ERR("--guest-path: %s", err);
		return 1;
	}
	s.path = g_canonicalize_filename(argv[optind + 1], NULL);
	if (tag)
		snprintf(s.tag, sizeof(s.tag), "%s", tag);
	else
		share_default_tag(s.path, s.tag);
	n = vm_share_add(name, &s, err, sizeof(err));
	if (n < 0) {
		/* A default tag that clashes: say how to choose one. */
		ERR("%s%s", err, n == -EEXIST && !tag && strstr(err, "tag") ? " (--tag TAG)" : "");
		goto out;
	}
	gp = share_guest_path(&s);
	printf("VM '%s' shares %s as '%s'%s ([share%d]); the guest additions mount it at %s\n",
	       name, s.path, s.tag, s.readonly ? ", read-only" : "", n, gp);
	running_note(name);
	r = 0;
out:
	share_spec_clear(&s);
	return r;
}

static void add_share_json(JsonBuilder *b, const struct share_spec *s)
{
	g_autofree char *gp = share_guest_path(s);

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "tag");
	json_builder_add_string_value(b, s->tag);
	json_builder_set_member_name(b, "path");
	json_builder_add_string_value(b, s->path);
	json_builder_set_member_name(b, "readonly");
	json_builder_add_boolean_value(b, s->readonly);
	json_builder_set_member_name(b, "guest_path");
	json_builder_add_string_value(b, gp);
	json_builder_end_object(b);
}

void share_list_json(JsonBuilder *b, const struct share_spec *s, unsigned n)
{
	json_builder_begin_array(b);
	for (unsigned i = 0; i < n; i++)
		add_share_json(b, &s[i]);
	json_builder_end_array(b);
}

static int share_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct vm_config cfg;
	bool json = false;
	char err[512];
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (opt == 'j') {
			json = true;
			continue;
		}
		usage(opt == 'h' ? stdout : stderr);
		return opt == 'h' ? 0 : 2;
	}
	if (argc - optind != 1) {
		ERR("usage: vivarium share list NAME [--json]");
		return 2;
	}
	if (vm_config_load(argv[optind], &cfg, NULL, err, sizeof(err)) < 0) {
		ERR("%s", err);
		return 1;
	}
	if (json) {
		g_autoptr(JsonBuilder) b = json_builder_new();
		g_autoptr(JsonGenerator) gen = json_generator_new();
		g_autoptr(JsonNode) root = NULL;
		g_autofree char *text = NULL;

		share_list_json(b, cfg.share, cfg.nshares);
		root = json_builder_get_root(b);
		json_generator_set_pretty(gen, TRUE);
		json_generator_set_root(gen, root);
		text = json_generator_to_data(gen, NULL);
		printf("%s\n", text);
	} else if (!cfg.nshares) {
		printf("VM '%s' has no shared folders ('vivarium share add %s HOSTDIR' adds one)\n",
		       cfg.name, cfg.name);
	} else {
		printf("%-16s %-5s %-24s %s\n", "TAG", "MODE", "GUEST PATH", "HOST FOLDER");
		for (unsigned i = 0; i < cfg.nshares; i++) {
			g_autofree char *gp = share_guest_path(&cfg.share[i]);

			printf("%-16s %-5s %-24s %s\n", cfg.share[i].tag,
			       cfg.share[i].readonly ? "ro" : "rw", gp, cfg.share[i].path);
		}
	}
	vm_config_clear(&cfg);
	return 0;
}

static int share_remove(int argc, char **argv)
{
	const char *name, *tag;
	char err[512];
	int n;

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	if (argc != 3) {
		ERR("usage: vivarium share remove NAME TAG");
		return 2;
	}
	name = argv[1];
	tag = argv[2];
	n = vm_share_remove(name, tag, err, sizeof(err));
	if (n < 0) {
		ERR("%s", err);
		return 1;
	}
	printf("VM '%s' no longer shares '%s' ([share%d] removed)\n", name, tag, n);
	running_note(name);
	return 0;
}

int cmd_share(int argc, char **argv)
{
	static const struct subcommand subs[] = {
		{ "add", share_add }, { "list", share_list }, { "remove", share_remove },
	};
	int r;

	if (subcommand_run(subs, G_N_ELEMENTS(subs), usage, argc, argv, &r))
		return r;
	ERR("share: unknown subcommand '%s' (add, list, remove)", argv[1]);
	return 2;
}
