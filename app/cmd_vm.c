/* SPDX-License-Identifier: MIT */
/* app/cmd_vm.c - the library commands: create, list, show, edit, delete. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "block/block.h"
#include "commands.h"
#include "ctl.h"
#include "options.h"
#include "snaplib.h"
#include "vmlib.h"

#define ERR(...) (fprintf(stderr, "vivarium: " __VA_ARGS__), fputc('\n', stderr))

/* ---- create --------------------------------------------------------------- */

static void create_usage(FILE *f)
{
	fprintf(f,
		"usage: vivarium create NAME [--memory SIZE] [--cpus N] [--disk-size SIZE]\n"
		"                       [--iso PATH] [--kernel PATH [--initrd PATH] [--append STR]]\n"
		"                       [--firmware auto|bios|uefi|none] [--notes TEXT]\n"
		"                       [--nic SPEC]... [--nic none] [--vga virtio|std|none]\n"
		"                       [--share HOSTDIR[,tag=NAME][,readonly]]...\n\n"
		"Adds a VM to the library (%s).\n"
		"SIZE takes K, M, G, T suffixes; memory defaults to 1G, cpus to 1.\n"
		"--disk-size creates an empty disk image in the VM's folder.\n"
		"The VM gets one virtio-net card on NAT unless --nic says otherwise\n"
		"(SPEC as for `vivarium run --nic`; up to 4); each card's MAC address\n"
		"is derived from the VM's UUID and kept in vm.conf.\n"
		"--vga: the display adapter, virtio (the default for new VMs:\n"
		"virtio-gpu beside the standard VGA, the guest's screen follows the\n"
		"window) or std (the standard VGA alone) or none.\n"
		"--share shares a host folder with the guest (as `vivarium run --share`;\n"
		"up to 4; `vivarium share` adds and removes them later).\n",
		"$XDG_DATA_HOME/vivarium/vms");
}

/* The new disk: qcow2, or raw while this build's block layer has no
 * qcow2 creation.  Returns 0 with the file name in @file. */
static int create_disk(const char *dir, uint64_t size, struct vm_disk *disk,
		       char *err, size_t errlen)
{
	struct blk_create_opts o = { .format = BLK_FMT_QCOW2, .size = size,
				     .mode = VM_FILE_MODE };
	g_autofree char *path = g_build_filename(dir, VM_DISK_FILE, NULL);
	int r = blk_create(path, &o, err, errlen);

	if (r == -ENOTSUP) {
		g_free(path);
		path = g_build_filename(dir, "disk.img", NULL);
		o.format = BLK_FMT_RAW;
		r = blk_create(path, &o, err, errlen);
	}
	if (r < 0)
		return r;
	disk->path = g_steal_pointer(&path);
	disk->format = o.format;
	disk->bus = MACHINE_IF_VIRTIO;
	return 0;
}

int cmd_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "memory", required_argument, NULL, 'm' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "disk-size", required_argument, NULL, 'd' },
		{ "iso", required_argument, NULL, 'I' },
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "append", required_argument, NULL, 'a' },
		{ "firmware", required_argument, NULL, 'f' },
		{ "notes", required_argument, NULL, 'n' },
		{ "nic", required_argument, NULL, 'N' },
		{ "share", required_argument, NULL, 'S' },
		{ "vga", required_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	/* New VMs get virtio-gpu (the screen follows the window; firmware
	 * and boot loaders still see the standard VGA). */
	struct vm_config cfg = { .memory = VM_DEFAULT_MEMORY, .cpus = 1, .sandbox = true,
				 .vga = g_strdup("virtio"),
				 .vmmouse = true, .agents = true };
	bool nic_none = false;
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autofree char *root = NULL, *tmp = NULL, *final = NULL, *conf = NULL;
	g_autoptr(GDateTime) now = g_date_time_new_now_utc();
	const char *name, *fw = "auto";
	uint64_t disk_size = 0;
	char err[512];
	int opt, r = 1;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			if (parse_size(optarg, &cfg.memory) < 0 || !machine_ram_ok(cfg.memory)) {
				ERR("--memory '%s' is not " MACHINE_RAM_RULE, optarg);
				goto out;
			}
			break;
		case 'c':
			if (parse_uint(optarg, 1, MACHINE_MAX_CPUS, &cfg.cpus) < 0) {
				ERR("--cpus '%s': give a number from 1 to %u", optarg, MACHINE_MAX_CPUS);
				goto out;
			}
			break;
		case 'd':
			if (parse_size(optarg, &disk_size) < 0 || disk_size < (1ull << 20) ||
			    (disk_size & 511)) {
				ERR("--disk-size '%s' is not a size of at least 1M in whole 512-byte sectors (examples: 8G, 512M)",
				    optarg);
				goto out;
			}
			break;
		case 'I': g_free(cfg.cdrom); cfg.cdrom = g_canonicalize_filename(optarg, NULL); break;
		case 'k': g_free(cfg.kernel); cfg.kernel = g_canonicalize_filename(optarg, NULL); break;
		case 'i': g_free(cfg.initrd); cfg.initrd = g_canonicalize_filename(optarg, NULL); break;
		case 'a': g_free(cfg.append); cfg.append = g_strdup(optarg); break;
		case 'f': fw = optarg; break;
		case 'n': g_free(cfg.notes); cfg.notes = g_strdup(optarg); break;
		case 'V': {
			struct machine_config mc = { 0 };

			if (parse_vga(optarg, &mc) < 0) {
				ERR("--vga '%s': use std, virtio or none", optarg);
				goto out;
			}
			g_free(cfg.vga);
			cfg.vga = g_strdup(optarg);
			break;
		}
		case 'N':
			if (!strcmp(optarg, "none")) {
				nic_none = true;
				break;
			}
			if (cfg.nnics == VM_MAX_NICS) {
				ERR("at most %u network cards", VM_MAX_NICS);
				goto out;
			}
			if (nic_spec_parse(optarg, &cfg.nic[cfg.nnics], err, sizeof(err)) < 0) {
				ERR("%s", err);
				goto out;
			}
			cfg.nnics++;
			break;
		case 'S':
			if (cfg.nshares == MACHINE_MAX_SHARES) {
				ERR("at most %u shared folders", MACHINE_MAX_SHARES);
				goto out;
			}
			if (share_spec_parse(optarg, &cfg.share[cfg.nshares], err, sizeof(err)) < 0) {
				ERR("%s", err);
				goto out;
			}
			cfg.nshares++;
			break;
		case 'h':
			create_usage(stdout);
			r = 0;
			goto out;
		default:
			create_usage(stderr);
			r = 2;
			goto out;
		}
	}
	if (optind + 1 != argc) {
		if (optind < argc)
			ERR("create takes one NAME (got '%s' too)", argv[argc - 1]);
		else
			ERR("create needs a NAME");
		r = 2;
		goto out;
	}
	name = argv[optind];
	if (vm_name_check(name, err, sizeof(err)) < 0) {
		ERR("%s", err);
		goto out;
	}
	if (!strcmp(fw, "auto"))
		cfg.firmware = MACHINE_FW_AUTO;
	else if (!strcmp(fw, "bios"))
		cfg.firmware = MACHINE_FW_BIOS;
	else if (!strcmp(fw, "uefi"))
		cfg.firmware = MACHINE_FW_UEFI;
	else if (!strcmp(fw, "none"))
		cfg.firmware = MACHINE_FW_NONE;
	else {
		ERR("--firmware '%s': use auto, bios, uefi or none", fw);
		goto out;
	}
	if ((cfg.initrd || cfg.append) && !cfg.kernel) {
		ERR("--initrd and --append go with --kernel PATH");
		goto out;
	}
	if (cfg.firmware == MACHINE_FW_NONE && !cfg.kernel) {
		ERR("--firmware none boots a kernel directly: give --kernel PATH");
		goto out;
	}
	if (cfg.firmware == MACHINE_FW_UEFI && cfg.kernel) {
		ERR("--firmware uefi does not boot --kernel yet: boot a disk or ISO, or use --firmware bios");
		goto out;
	}
	if ((cfg.kernel && vm_check_readable("kernel", cfg.kernel, err, sizeof(err)) < 0) ||
	    (cfg.initrd && vm_check_readable("initrd", cfg.initrd, err, sizeof(err)) < 0) ||
	    (cfg.cdrom && vm_check_readable("ISO image", cfg.cdrom, err, sizeof(err)) < 0)) {
		ERR("%s", err);
		goto out;
	}
	if (nic_none && cfg.nnics) {
		ERR("--nic none goes alone");
		goto out;
	}
	/* A missing folder, a file, a tag twice: refused before anything is
	 * made. */
	if (share_specs_check(cfg.share, cfg.nshares, err, sizeof(err)) < 0) {
		ERR("%s", err);
		goto out;
	}
	if (vmlib_exists(name)) {
		ERR("a VM named '%s' already exists (see 'vivarium show %s')", name, name);
		goto out;
	}

	/* Build the folder under a hidden temporary name, then rename it into
	 * place: a failure (or a crash) leaves no half-made VM in the list. */
	root = vmlib_root();
	if (g_mkdir_with_parents(root, VM_DIR_MODE) < 0) {
		ERR("cannot create the library folder %s: %s", root, g_strerror(errno));
		goto out;
	}
	vmlib_tighten_dir(root);
	tmp = g_strdup_printf("%s/.%s.new-XXXXXX", root, name);
	if (!g_mkdtemp_full(tmp, VM_DIR_MODE)) {
		ERR("cannot create a folder in %s: %s", root, g_strerror(errno));
		g_clear_pointer(&tmp, g_free);
		goto out;
	}
	if (chmod(tmp, VM_DIR_MODE) < 0) {	/* the umask may have taken more */
		ERR("cannot make %s private: %s", tmp, g_strerror(errno));
		goto out;
	}
	final = g_build_filename(root, name, NULL);
	cfg.name = g_strdup(name);
	cfg.uuid = g_uuid_string_random();
	cfg.display = g_strdup("none");
	cfg.created = g_date_time_format_iso8601(now);
	if (cfg.kernel && !cfg.append)
		cfg.append = g_strdup(VM_DEFAULT_APPEND);
	if (cfg.cdrom)
		cfg.boot = MACHINE_BOOT_CDROM;
	if (!nic_none && !cfg.nnics)
		cfg.nnics = 1;		/* virtio-net on NAT, as zeroed */
	for (unsigned i = 0; i < cfg.nnics; i++) {
		if (!cfg.nic[i].has_mac)
			vm_mac_from_uuid(cfg.uuid, i, cfg.nic[i].mac);
		cfg.nic[i].has_mac = true;
	}
	if (disk_size) {
		if (create_disk(tmp, disk_size, &cfg.disk[0], err, sizeof(err)) < 0) {
			ERR("cannot create the disk image: %s", err);
			goto out;
		}
		cfg.ndisks = 1;
		/* Stored relative to the folder, which is about to be renamed. */
		char *rel = g_path_get_basename(cfg.disk[0].path);
		g_free(cfg.disk[0].path);
		cfg.disk[0].path = rel;
	}
	if (cfg.firmware == MACHINE_FW_UEFI &&
	    vm_uefi_vars_create(tmp, err, sizeof(err)) < 0) {
		ERR("%s", err);
		goto out;
	}
	vm_config_to_keyfile(&cfg, tmp, kf);
	conf = g_build_filename(tmp, VM_CONF_FILE, NULL);
	if (vm_keyfile_save(kf, conf, err, sizeof(err)) < 0) {
		ERR("%s", err);
		goto out;
	}
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) < 0) {
		if (errno == EEXIST || errno == ENOTEMPTY)
			ERR("a VM named '%s' already exists (see 'vivarium show %s')", name, name);
		else
			ERR("cannot rename %s to %s: %s", tmp, final, g_strerror(errno));
		goto out;
	}
	g_clear_pointer(&tmp, g_free);
	printf("created VM '%s' in %s\n", name, final);
	r = 0;
out:
	if (tmp)
		vmlib_remove_tree(tmp);
	vm_config_clear(&cfg);
	return r;
}

/* ---- list and show -------------------------------------------------------- */

struct vm_view {
	struct vm_config cfg;
	const char *state;	/* running, paused, stopping, stopped, saved, broken */
	pid_t pid;
	int nsnaps;		/* show: its snapshots; -1 if unreadable */
	char err[512];		/* why broken */
	JsonNode *guest;	/* status's "guest" (the guest additions' report) */
};

/* Config and live state of @name; a VM whose vm.conf cannot be read is
 * "broken" (shown, with the reason, not skipped). */
static void vm_view_load(const char *name, struct vm_view *v)
{
	memset(v, 0, sizeof(*v));
	if (vm_config_load(name, &v->cfg, NULL, v->err, sizeof(v->err)) < 0) {
		v->state = "broken";
		v->cfg.name = g_strdup(name);
		return;
	}
	v->state = vmlib_saved(name) ? "saved" : "stopped";
	if (vmlib_running(name, &v->pid)) {
		g_autoptr(JsonNode) res = NULL;
		char err[256];

		/* Paused and stopping are known only to the VM's process. */
		v->state = "running";
		if (ctl_simple(name, "status", NULL, 2000, &res, err, sizeof(err)) == 0 &&
		    res && JSON_NODE_HOLDS_OBJECT(res))
		{
			JsonObject *o = json_node_get_object(res);
			JsonNode *g = json_object_get_member(o, "guest");

			v->state = g_intern_string(json_object_get_string_member_with_default(
				o, "state", "running"));
			if (g && JSON_NODE_HOLDS_OBJECT(g))
				v->guest = json_node_copy(g);
		}
	}
}

static void vm_view_clear(struct vm_view *v)
{
	vm_config_clear(&v->cfg);
	if (v->guest)
		json_node_unref(v->guest);
	v->guest = NULL;
}

/* "guest:" and "ip:" lines of show from the guest additions' report. */
static void show_guest(const struct vm_view *v)
{
	JsonObject *g;
	JsonArray *a;
	const char *os, *kernel, *host, *ver;

	if (!v->guest) {
		if (!strcmp(v->state, "running") || !strcmp(v->state, "paused"))
			printf("guest:    - (no report from the guest additions; 'vivarium additions insert' has them)\n");
		return;
	}
	g = json_node_get_object(v->guest);
	os = json_object_get_string_member_with_default(g, "os", "");
	kernel = json_object_get_string_member_with_default(g, "kernel", "");
	host = json_object_get_string_member_with_default(g, "hostname", "");
	ver = json_object_get_string_member_with_default(g, "additions_version", "");
	printf("guest:    %s%s%s%s%s (additions %s)\n", *os ? os : "unnamed OS",
	       *kernel ? ", kernel " : "", kernel, *host ? ", hostname " : "", host, ver);
	a = json_object_has_member(g, "addresses") ? json_object_get_array_member(g, "addresses") : NULL;
	printf("ip:       ");
	for (guint i = 0; a && i < json_array_get_length(a); i++)
		printf("%s%s", i ? ", " : "", json_array_get_string_element(a, i));
	printf("%s\n", a && json_array_get_length(a) ? "" : "-");
}

static void add_str(JsonBuilder *b, const char *key, const char *v)
{
	json_builder_set_member_name(b, key);
	if (v)
		json_builder_add_string_value(b, v);
	else
		json_builder_add_null_value(b);
}

static void add_int(JsonBuilder *b, const char *key, gint64 v)
{
	json_builder_set_member_name(b, key);
	json_builder_add_int_value(b, v);
}

static void vm_view_json(JsonBuilder *b, const struct vm_view *v, bool full)
{
	const struct vm_config *c = &v->cfg;
	g_autofree char *dir = vmlib_vm_dir(c->name);

	json_builder_begin_object(b);
	add_str(b, "name", c->name);
	add_str(b, "uuid", c->uuid);
	add_str(b, "state", v->state);
	json_builder_set_member_name(b, "pid");
	if (v->pid)
		json_builder_add_int_value(b, v->pid);
	else
		json_builder_add_null_value(b);
	if (!strcmp(v->state, "broken")) {
		add_str(b, "error", v->err);
		json_builder_end_object(b);
		return;
	}
	add_int(b, "memory", (gint64)c->memory);
	add_int(b, "cpus", c->cpus);
	add_str(b, "firmware", vm_firmware_name(c->firmware));
	if (full) {
		add_str(b, "path", dir);
		add_str(b, "boot", vm_boot_name(c->boot));
		add_str(b, "display", c->display);
		add_str(b, "vnc", c->vnc);
		add_str(b, "notes", c->notes);
		json_builder_set_member_name(b, "sandbox");
		json_builder_add_boolean_value(b, c->sandbox);
		json_builder_set_member_name(b, "coredump");
		json_builder_add_boolean_value(b, c->coredump);
		add_str(b, "input", c->input_ps2 ? "ps2" : "virtio");
		add_str(b, "created", c->created);
		add_str(b, "kernel", c->kernel);
		add_str(b, "initrd", c->initrd);
		add_str(b, "append", c->append);
		add_str(b, "cdrom", c->cdrom);
		json_builder_set_member_name(b, "disks");
		json_builder_begin_array(b);
		for (unsigned i = 0; i < c->ndisks; i++) {
			const struct vm_disk *d = &c->disk[i];

			json_builder_begin_object(b);
			add_str(b, "path", d->path);
			add_str(b, "format", blk_format_name(d->format));
			add_str(b, "interface", vm_if_name(d->bus));
			json_builder_set_member_name(b, "readonly");
			json_builder_add_boolean_value(b, d->readonly);
			json_builder_end_object(b);
		}
		json_builder_end_array(b);
		json_builder_set_member_name(b, "nics");
		json_builder_begin_array(b);
		for (unsigned i = 0; i < c->nnics; i++) {
			const struct nic_spec *n = &c->nic[i];
			uint8_t mac[6] = { 0 };
			char ms[18];

			if (c->uuid)
				vm_mac_from_uuid(c->uuid, i, mac);
			json_builder_begin_object(b);
			add_str(b, "model", nic_model_name(n->model));
			add_str(b, "network", nic_net_name(n->net));
			add_str(b, "mac", nic_mac_str(n->has_mac ? n->mac : mac, ms, sizeof(ms)));
			if (n->net == NIC_NET_TAP)
				add_str(b, "ifname", n->ifname);
			else if (n->net == NIC_NET_BRIDGE)
				add_str(b, "bridge", n->ifname);
			json_builder_set_member_name(b, "hostfwd");
			json_builder_begin_array(b);
			for (unsigned f = 0; f < n->nfwd; f++)
				json_builder_add_string_value(b, n->fwd[f]);
			json_builder_end_array(b);
			json_builder_set_member_name(b, "restrict");
			json_builder_add_boolean_value(b, n->restricted);
			add_str(b, "link", n->link_down ? "down" : "up");
			json_builder_end_object(b);
		}
		json_builder_end_array(b);
		json_builder_set_member_name(b, "shares");
		share_list_json(b, c->share, c->nshares);
		json_builder_set_member_name(b, "snapshots");
		if (v->nsnaps >= 0)
			json_builder_add_int_value(b, v->nsnaps);
		else
			json_builder_add_null_value(b);
		json_builder_set_member_name(b, "guest");
		if (v->guest)
			json_builder_add_value(b, json_node_copy(v->guest));
		else
			json_builder_add_null_value(b);
	}
	json_builder_end_object(b);
}

static void print_json(JsonBuilder *b)
{
	g_autoptr(JsonGenerator) gen = json_generator_new();
	g_autoptr(JsonNode) root = json_builder_get_root(b);
	g_autofree char *text = NULL;

	json_generator_set_pretty(gen, TRUE);
	json_generator_set_root(gen, root);
	text = json_generator_to_data(gen, NULL);
	printf("%s\n", text);
}

/* Parse [--json] NAME? for list/show. */
static int parse_json_flag(int argc, char **argv, const char *usage,
			   bool *json, int want_args)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (opt == 'j') {
			*json = true;
			continue;
		}
		fprintf(opt == 'h' ? stdout : stderr, "usage: %s\n", usage);
		return opt == 'h' ? 0 : 2;
	}
	if (argc - optind != want_args) {
		ERR("usage: %s", usage);
		return 2;
	}
	return -1;
}

int cmd_list(int argc, char **argv)
{
	g_auto(GStrv) names = NULL;
	bool json = false;
	int r = parse_json_flag(argc, argv, "vivarium list [--json]", &json, 0);

	if (r >= 0)
		return r;
	names = vmlib_list();
	if (json) {
		g_autoptr(JsonBuilder) b = json_builder_new();

		json_builder_begin_array(b);
		for (char **n = names; *n; n++) {
			struct vm_view v;

			vm_view_load(*n, &v);
			vm_view_json(b, &v, false);
			vm_view_clear(&v);
		}
		json_builder_end_array(b);
		print_json(b);
		return 0;
	}
	printf("%-24s %-9s %8s %5s  %s\n", "NAME", "STATE", "MEMORY", "CPUS", "PID");
	for (char **n = names; *n; n++) {
		struct vm_view v;
		char mem[32], pid[16] = "-";

		vm_view_load(*n, &v);
		if (v.pid)
			snprintf(pid, sizeof(pid), "%d", (int)v.pid);
		printf("%-24s %-9s %8s %5u  %s\n", *n, v.state,
		       strcmp(v.state, "broken") ? vm_size_str(v.cfg.memory, mem, sizeof(mem)) : "-",
		       v.cfg.cpus, pid);
		vm_view_clear(&v);
	}
	return 0;
}

/* "clone of: SRC (snapshot TAG, linked)" from vm.conf's [clone]. */
static void show_clone(const char *name)
{
	g_autofree char *conf = vmlib_vm_file(name, VM_CONF_FILE);
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autofree char *src = NULL, *tag = NULL;

	if (!g_key_file_load_from_file(kf, conf, 0, NULL))
		return;
	src = g_key_file_get_string(kf, SNAP_CLONE_GROUP, "source", NULL);
	tag = g_key_file_get_string(kf, SNAP_CLONE_GROUP, "snapshot", NULL);
	if (!src)
		return;
	printf("clone of: %s", src);
	if (tag)
		printf(" (snapshot %s%s)", tag,
		       g_key_file_get_boolean(kf, SNAP_CLONE_GROUP, "linked", NULL) ? ", linked" : "");
	printf("\n");
}

int cmd_show(int argc, char **argv)
{
	bool json = false;
	int r = parse_json_flag(argc, argv, "vivarium show NAME [--json]", &json, 1);
	const struct vm_config *c;
	const char *name;
	struct vm_view v;
	char err[512], mem[32];

	if (r >= 0)
		return r;
	name = argv[optind];
	if (vm_name_check(name, err, sizeof(err)) < 0) {
		ERR("%s", err);
		return 1;
	}
	if (!vmlib_exists(name)) {
		ERR("no VM named '%s' (see 'vivarium list')", name);
		return 1;
	}
	vm_view_load(name, &v);
	c = &v.cfg;
	{
		struct snap_index ix;

		v.nsnaps = snap_load(name, &ix, err, sizeof(err)) < 0 ? -1 : (int)ix.snaps->len;
		snap_index_clear(&ix);
	}
	if (json) {
		g_autoptr(JsonBuilder) b = json_builder_new();

		vm_view_json(b, &v, true);
		print_json(b);
	} else if (!strcmp(v.state, "broken")) {
		printf("name:     %s\nstate:    broken: %s\n", name, v.err);
	} else {
		g_autofree char *dir = vmlib_vm_dir(name);

		printf("name:     %s\n", c->name);
		printf("uuid:     %s\n", c->uuid ? c->uuid : "-");
		if (v.pid)
			printf("state:    %s (pid %d)\n", v.state, (int)v.pid);
		else
			printf("state:    %s\n", v.state);
		printf("folder:   %s\n", dir);
		printf("memory:   %s\n", vm_size_str(c->memory, mem, sizeof(mem)));
		printf("cpus:     %u\n", c->cpus);
		printf("firmware: %s\n", vm_firmware_name(c->firmware));
		printf("boot:     %s\n", vm_boot_name(c->boot));
		printf("display:  %s\n", c->display);
		if (c->vga && strcmp(c->vga, "std"))
			printf("vga:      %s\n", c->vga);
		if (c->vnc)
			printf("vnc:      %s\n", c->vnc);
		if (c->kernel) {
			printf("kernel:   %s\n", c->kernel);
			printf("initrd:   %s\n", c->initrd ? c->initrd : "-");
			printf("append:   %s\n", c->append ? c->append : "-");
		}
		for (unsigned i = 0; i < c->ndisks; i++)
			printf("disk%u:    %s (%s, %s%s)\n", i, c->disk[i].path,
			       blk_format_name(c->disk[i].format), vm_if_name(c->disk[i].bus),
			       c->disk[i].readonly ? ", read-only" : "");
		if (c->cdrom)
			printf("cdrom:    %s\n", c->cdrom);
		for (unsigned i = 0; i < c->nnics; i++) {
			uint8_t mac[6] = { 0 };
			g_autofree char *d = NULL;

			if (c->uuid)
				vm_mac_from_uuid(c->uuid, i, mac);
			d = nic_describe(&c->nic[i], mac);
			printf("nic%u:     %s\n", i, d);
		}
		for (unsigned i = 0; i < c->nshares; i++) {
			g_autofree char *gp = share_guest_path(&c->share[i]);

			printf("share:    '%s' = %s (%s; guest path %s)\n", c->share[i].tag,
			       c->share[i].path, c->share[i].readonly ? "read-only" : "read-write", gp);
		}
		if (v.nsnaps >= 0)
			printf("snapshots: %d\n", v.nsnaps);
		else
			printf("snapshots: ? (%s)\n", err);
		show_clone(name);
		printf("sandbox:  %s%s\n", c->sandbox ? "on" : "off",
		       c->coredump ? " (core dumps on)" : "");
		printf("input:    %s\n", c->input_ps2 ? "ps2 (PS/2 keyboard and mouse only)"
			: "virtio (virtio tablet and keyboard, and PS/2)");
		if (c->notes)
			printf("notes:    %s\n", c->notes);
		if (c->created)
			printf("created:  %s\n", c->created);
		show_guest(&v);
	}
	vm_view_clear(&v);
	return !strcmp(v.state, "broken") && !json;
}

/* ---- edit ------------------------------------------------------------------- */

int cmd_edit(int argc, char **argv)
{
	g_autoptr(GKeyFile) kf = NULL;
	g_autofree char *dir = NULL, *conf = NULL;
	struct vm_config cfg;
	enum machine_firmware old_fw, new_fw;
	int made = 0;
	const char *name;
	char err[512];

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: vivarium edit NAME KEY=VALUE...\n\n"
		       "Keys: memory, cpus, firmware (auto|bios|uefi|none), boot (default|disk|cdrom),\n"
		       "display (none|sdl|auto), vga (std|virtio|none), vnc (ADDR:PORT|unix:PATH),\n"
		       "vnc-password-file, notes, sandbox (on|off), coredump (on|off),\n"
		       "input (virtio|ps2), vmmouse (on|off), kernel, initrd, append,\n"
		       "cdrom (an ISO path).\n"
		       "An empty VALUE removes vnc, vnc-password-file, notes, kernel, initrd,\n"
		       "append or cdrom.\n"
		       "A running VM sees the change when it next starts.\n");
		return 0;
	}
	if (argc < 3) {
		ERR("usage: vivarium edit NAME KEY=VALUE...");
		return 2;
	}
	name = argv[1];
	if (vm_config_load(name, &cfg, &kf, err, sizeof(err)) < 0) {
		ERR("%s", err);
		return 1;
	}
	old_fw = cfg.firmware;
	vm_config_clear(&cfg);
	for (int i = 2; i < argc; i++) {
		if (vm_config_set(kf, argv[i], err, sizeof(err)) < 0) {
			ERR("%s", err);
			return 1;
		}
	}
	/* The result as a whole must still make sense (e.g. an initrd
	 * without a kernel); nothing is written otherwise. */
	dir = vmlib_vm_dir(name);
	if (vm_config_from_keyfile(kf, dir, &cfg, err, sizeof(err)) < 0) {
		ERR("%s", err);
		return 1;
	}
	new_fw = cfg.firmware;
	vm_config_clear(&cfg);
	/* The store first: vm.conf never names UEFI without one. */
	if (new_fw == MACHINE_FW_UEFI && old_fw != MACHINE_FW_UEFI &&
	    (made = vm_uefi_vars_create(dir, err, sizeof(err))) < 0) {
		ERR("%s", err);
		return 1;
	}
	conf = g_build_filename(dir, VM_CONF_FILE, NULL);
	if (vm_keyfile_save(kf, conf, err, sizeof(err)) < 0) {
		ERR("%s", err);
		return 1;
	}
	if (new_fw == MACHINE_FW_UEFI && old_fw != MACHINE_FW_UEFI)
		printf("firmware %s -> uefi: OVMF boots '%s' from now on, with its variables (boot entries) in %s/%s%s.\n"
		       "A UEFI boot needs a GPT disk with an EFI system partition (FAT, \\EFI\\BOOT\\BOOTX64.EFI or a boot entry) or a UEFI-bootable ISO;\n"
		       "an OS installed through the BIOS will not boot this way ('vivarium edit %s firmware=bios' goes back).\n",
		       vm_firmware_name(old_fw), name, dir, VM_UEFI_VARS_FILE,
		       made > 0 ? " (new, from Debian's OVMF_VARS_4M.fd)" : " (kept from before)",
		       name);
	else if (old_fw == MACHINE_FW_UEFI && new_fw != MACHINE_FW_UEFI)
		printf("firmware uefi -> %s: the UEFI variable store %s/%s stays for a later firmware=uefi;\n"
		       "an OS installed through UEFI will not boot from the BIOS.\n",
		       vm_firmware_name(new_fw), dir, VM_UEFI_VARS_FILE);
	if (vmlib_running(name, NULL))
		printf("VM '%s' is running: the change applies when it next starts\n", name);
	return 0;
}

/* ---- delete ------------------------------------------------------------------ */

/* The rest of delete, with the VM's folder locked (snap_lock()). */
static int delete_locked(const char *name, const char *dir, bool yes)
{
	g_autofree char *root = NULL, *tmp = NULL;
	g_auto(GStrv) users = NULL;
	int r;

	if (snap_users(name, NULL, &users) > 0) {
		g_autofree char *list = g_strjoinv(", ", users);

		ERR("VM '%s' is the base of linked clone(s) %s: delete them first", name, list);
		return 1;
	}
	if (!yes) {
		char answer[16] = "";

		if (!isatty(STDIN_FILENO)) {
			ERR("delete removes '%s' and its disk images: add --yes to confirm", name);
			return 1;
		}
		printf("Delete VM '%s' and everything in %s? [y/N] ", name, dir);
		fflush(stdout);
		if (!fgets(answer, sizeof(answer), stdin) ||
		    (answer[0] != 'y' && answer[0] != 'Y')) {
			printf("not deleted\n");
			return 1;
		}
	}
	/* Out of the list at once (rename), then removed. */
	root = vmlib_root();
	tmp = g_strdup_printf("%s/.%s.deleted-%d", root, name, (int)getpid());
	if (rename(dir, tmp) < 0) {
		ERR("cannot delete %s: %s", dir, g_strerror(errno));
		return 1;
	}
	r = vmlib_remove_tree(tmp);
	if (r < 0) {
		ERR("VM '%s' is deleted, but %s could not be removed entirely: %s",
		    name, tmp, g_strerror(-r));
		return 1;
	}
	printf("deleted VM '%s'\n", name);
	return 0;
}

int cmd_delete(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "yes", no_argument, NULL, 'y' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	g_autofree char *dir = NULL;
	bool yes = false;
	const char *name;
	struct stat st;
	char err[512];
	pid_t pid;
	int opt, r, lockfd;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "yh", opts, NULL)) != -1) {
		if (opt == 'y') {
			yes = true;
			continue;
		}
		fprintf(opt == 'h' ? stdout : stderr,
			"usage: vivarium delete NAME [--yes]\n\n"
			"Removes the VM and its folder, disk images included.\n"
			"A VM that linked clones are based on is not deleted: delete them first.\n");
		return opt == 'h' ? 0 : 2;
	}
	if (argc - optind != 1) {
		ERR("usage: vivarium delete NAME [--yes]");
		return 2;
	}
	name = argv[optind];
	if (vm_name_check(name, err, sizeof(err)) < 0) {
		ERR("%s", err);
		return 1;
	}
	dir = vmlib_vm_dir(name);
	/* A link in the library is not ours to empty: what it points to may
	 * be anything.  Nothing is touched. */
	if (lstat(dir, &st) == 0 && S_ISLNK(st.st_mode)) {
		ERR("%s is a symbolic link, not a VM folder: not deleting it (remove the link yourself)",
		    dir);
		return 1;
	}
	if (!vmlib_exists(name)) {
		ERR("no VM named '%s' (see 'vivarium list')", name);
		return 1;
	}
	if (vmlib_running(name, &pid)) {
		ERR("VM '%s' is running (pid %d): stop it first ('vivarium stop %s')",
		    name, (int)pid, name);
		return 1;
	}
	/* Held to the end: no clone starts reading the VM, no snapshot
	 * command changes it, and no linked clone of it appears after the
	 * check. */
	lockfd = snap_lock(name, err, sizeof(err));
	if (lockfd < 0) {
		ERR("%s", err);
		return 1;
	}
	r = delete_locked(name, dir, yes);
	close(lockfd);
	return r;
}
