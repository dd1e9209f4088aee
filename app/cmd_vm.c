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
#include "vmops.h"

#define ERR(...) (fprintf(stderr, "vivarium: " __VA_ARGS__), fputc('\n', stderr))

/* ---- create --------------------------------------------------------------- */

static void create_usage(FILE *f)
{
	fprintf(f,
		"usage: vivarium create NAME [--memory SIZE] [--cpus N] [--disk-size SIZE]\n"
		"                       [--iso PATH] [--kernel PATH [--initrd PATH] [--append STR]]\n"
		"                       [--firmware auto|bios|uefi|none] [--notes TEXT]\n"
		"                       [--nic SPEC]... [--nic none] [--vga virtio|std|none]\n"
		"                       [--usb on|off] [--audio pa|none|off] [--tpm on|off]\n"
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
		"--usb: an xHCI USB controller with a USB tablet and keyboard (on\n"
		"by default; off for a boot loader that reads the PS/2 keyboard itself).\n"
		"--tpm on: a TPM 2.0 on swtpm, its state in the folder's tpm/.\n"
		"--audio: the Intel HDA sound card through PulseAudio (pa), silent\n"
		"(none) or left out (off); by default pa when a PulseAudio server\n"
		"answers now, else none.\n"
		"--share shares a host folder with the guest (as `vivarium run --share`;\n"
		"up to 4; `vivarium share` adds and removes them later).\n",
		"$XDG_DATA_HOME/vivarium/vms");
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
		{ "usb", required_argument, NULL, 'U' },
		{ "tpm", required_argument, NULL, 'T' },
		{ "audio", required_argument, NULL, 'O' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	/* The options as given; vm_create() checks them all (vmops.h). */
	struct vm_create_spec s = { 0 };
	g_autoptr(GPtrArray) nics = g_ptr_array_new();
	g_autoptr(GPtrArray) shares = g_ptr_array_new();
	g_autofree char *dir = NULL;
	char err[1024];
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'm': s.memory = optarg; break;
		case 'c': s.cpus = optarg; break;
		case 'd': s.disk_size = optarg; break;
		case 'I': s.iso = optarg; break;
		case 'k': s.kernel = optarg; break;
		case 'i': s.initrd = optarg; break;
		case 'a': s.append = optarg; break;
		case 'f': s.firmware = optarg; break;
		case 'n': s.notes = optarg; break;
		case 'V': s.vga = optarg; break;
		case 'U': s.usb = optarg; break;
		case 'T': s.tpm = optarg; break;
		case 'O': s.audio = optarg; break;
		case 'N': g_ptr_array_add(nics, optarg); break;
		case 'S': g_ptr_array_add(shares, optarg); break;
		case 'h':
			create_usage(stdout);
			return 0;
		default:
			create_usage(stderr);
			return 2;
		}
	}
	if (optind + 1 != argc) {
		if (optind < argc)
			ERR("create takes one NAME (got '%s' too)", argv[argc - 1]);
		else
			ERR("create needs a NAME");
		return 2;
	}
	s.name = argv[optind];
	s.nics = (const char *const *)nics->pdata;
	s.nnics = nics->len;
	s.shares = (const char *const *)shares->pdata;
	s.nshares = shares->len;
	if (vm_create(&s, &dir, err, sizeof(err)) < 0) {
		ERR("%s", err);
		return 1;
	}
	printf("created VM '%s' in %s\n", s.name, dir);
	return 0;
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
		add_str(b, "run_as", c->run_as);
		json_builder_set_member_name(b, "sandbox");
		json_builder_add_boolean_value(b, c->sandbox);
		json_builder_set_member_name(b, "coredump");
		json_builder_add_boolean_value(b, c->coredump);
		add_str(b, "input", c->input_ps2 ? "ps2" : "virtio");
		add_str(b, "audio", vm_audio_name(c->audio));
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
		if (c->usb)
			printf("usb:      xHCI with a tablet and keyboard\n");
		if (c->tpm)
			printf("tpm:      TPM 2.0 (swtpm, state in tpm/)\n");
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
		if (c->run_as)
			printf("run-as:   %s\n", c->run_as);
		printf("input:    %s\n", c->input_ps2 ? "ps2 (PS/2 keyboard and mouse only)"
			: "virtio (virtio tablet and keyboard, and PS/2)");
		printf("audio:    %s\n", c->audio == VM_AUDIO_PA ? "pa (Intel HDA at 00:1b.0, through PulseAudio)"
			: c->audio == VM_AUDIO_NONE ? "none (Intel HDA at 00:1b.0, silent)"
			: "off (no sound card)");
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
	struct vm_edit_result res;
	g_autofree char *note = NULL;
	const char *name;
	char err[512];

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: vivarium edit NAME KEY=VALUE...\n\n"
		       "Keys: memory, cpus, firmware (auto|bios|uefi|none), boot (default|disk|cdrom),\n"
		       "display (none|sdl|auto), vga (std|virtio|none), vnc (ADDR:PORT|unix:PATH),\n"
		       "vnc-password-file, notes, sandbox (on|off), coredump (on|off), run-as (USER),\n"
		       "input (virtio|ps2), vmmouse (on|off), audio (pa|none|off), kernel,\n"
		       "initrd, append, cdrom (an ISO path).\n"
		       "An empty VALUE removes vnc, vnc-password-file, notes, run-as, kernel,\n"
		       "initrd, append or cdrom.\n"
		       "A running VM sees the change when it next starts.\n");
		return 0;
	}
	if (argc < 3) {
		ERR("usage: vivarium edit NAME KEY=VALUE...");
		return 2;
	}
	name = argv[1];
	if (vm_edit_report(name, (const char *const *)argv + 2, (unsigned)argc - 2,
			   &res, err, sizeof(err)) < 0) {
		ERR("%s", err);
		return 1;
	}
	note = vm_edit_firmware_note(name, &res);
	if (note)
		printf("%s\n", note);
	if (vmlib_running(name, NULL))
		printf("VM '%s' is running: the change applies when it next starts\n", name);
	return 0;
}

/* ---- delete ------------------------------------------------------------------ */

/* vm_delete()'s question, on a terminal only. */
static bool ask_delete(void *opaque, const char *dir)
{
	const char *name = opaque;
	char answer[16] = "";

	if (!isatty(STDIN_FILENO)) {
		ERR("delete removes '%s' and its disk images: add --yes to confirm", name);
		return false;
	}
	printf("Delete VM '%s' and everything in %s? [y/N] ", name, dir);
	fflush(stdout);
	if (!fgets(answer, sizeof(answer), stdin) || (answer[0] != 'y' && answer[0] != 'Y')) {
		printf("not deleted\n");
		return false;
	}
	return true;
}

int cmd_delete(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "yes", no_argument, NULL, 'y' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool yes = false;
	const char *name;
	char err[1024];
	int opt, r;

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
	r = vm_delete(name, yes ? NULL : ask_delete, (void *)name, err, sizeof(err));
	if (r == -ECANCELED)
		return 1;	/* said so */
	if (r < 0) {
		ERR("%s", err);
		return 1;
	}
	printf("deleted VM '%s'\n", name);
	return 0;
}
