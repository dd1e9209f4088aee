/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_vmops.c - the library's create, edit, share, snapshot
 * and delete (app/vmops.c), which `vivarium` and the manager both call:
 * each refusal is one line and leaves the library as it was (no folder,
 * hidden or not, no vm.conf change); a stop between steps leaves nothing;
 * progress is reported in order; host defaults are in range.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "check.h"
#include "snaplib.h"
#include "vmops.h"

static char *work;

/* Every entry of the library folder, hidden ones included, joined. */
static char *library_listing(void)
{
	g_autofree char *root = vmlib_root();
	g_autoptr(GDir) d = g_dir_open(root, 0, NULL);
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	const char *n;

	while (d && (n = g_dir_read_name(d)))
		g_ptr_array_add(names, g_strdup(n));
	g_ptr_array_sort(names, (GCompareFunc)g_strcmp0);
	g_ptr_array_add(names, NULL);
	return g_strjoinv(",", (char **)names->pdata);
}

static bool one_line(const char *s)
{
	return s[0] && !strchr(s, '\n');
}

static void test_refusals(void)
{
	g_autofree char *iso = g_build_filename(work, "x.iso", NULL);
	g_autofree char *dir_iso = g_build_filename(work, "dir.iso", NULL);
	g_autofree char *before = NULL, *after = NULL, *conf = NULL, *conf2 = NULL;
	struct vm_create_spec s = { .name = "base", .memory = "64M", .disk_size = "1M" };
	char err[1024];

	CHECK(g_file_set_contents(iso, "CD001", 5, NULL));
	CHECK(g_mkdir(dir_iso, 0700) == 0);
	CHECK_EQ(vm_create(&s, NULL, err, sizeof(err)), 0);
	before = library_listing();
	conf = vmlib_vm_file("base", VM_CONF_FILE);
	CHECK(g_file_get_contents(conf, &conf2, NULL, NULL));

	struct { struct vm_create_spec s; int r; const char *says; } bad[] = {
		{ { .name = "base" }, -EEXIST, "a VM named 'base' already exists" },
		{ { .name = "m", .memory = "12Q" }, -EINVAL,
		  "memory '12Q' is not a whole number of MiB, at least 16M" },
		{ { .name = "m", .memory = "15M" }, -EINVAL, "memory '15M'" },
		{ { .name = "c", .cpus = "0" }, -EINVAL, "cpus '0'" },
		{ { .name = "d", .disk_size = "100" }, -EINVAL, "disk size '100'" },
		{ { .name = "i", .iso = "/nonexistent/x.iso" }, -ENOENT, "ISO image" },
		{ { .name = "j", .iso = dir_iso }, 0, "ISO image" },
		{ { .name = ".hidden" }, -EINVAL, "" },
		{ { .name = "f", .firmware = "none" }, -EINVAL, "boots a kernel directly" },
		{ { .name = "f", .firmware = "efi" }, -EINVAL, "firmware 'efi': use auto, bios, uefi or none" },
		{ { .name = "f", .firmware = "uefi", .kernel = "/etc/hostname" }, -EINVAL,
		  "firmware uefi does not boot a kernel directly yet" },
		{ { .name = "v", .vga = "cga" }, -EINVAL, "vga 'cga'" },
		{ { .name = "u", .usb = "yes" }, -EINVAL, "usb 'yes': use on or off" },
	};
	for (unsigned i = 0; i < G_N_ELEMENTS(bad); i++) {
		int r1, r2;

		err[0] = 0;
		r1 = vm_create_check(&bad[i].s, err, sizeof(err));
		CHECK(r1 < 0);
		CHECK(bad[i].r == 0 || r1 == bad[i].r);
		CHECK(one_line(err) && strstr(err, bad[i].says));
		err[0] = 0;
		r2 = vm_create(&bad[i].s, NULL, err, sizeof(err));
		CHECK_EQ(r2, r1);
		CHECK(one_line(err) && strstr(err, bad[i].says));
		if (!strstr(err, bad[i].says))
			fprintf(stderr, "  case %u said: %s\n", i, err);
		after = library_listing();
		CHECK(!strcmp(before, after));		/* nothing made, not even hidden */
		g_clear_pointer(&after, g_free);
	}
	/* A bad edit changes nothing either. */
	{
		const char *edits[] = { "cpus=2", "memory=12Q" };
		g_autofree char *now = NULL;

		CHECK(vm_edit("base", edits, 2, err, sizeof(err)) < 0);
		CHECK(strstr(err, "memory '12Q'") != NULL);
		CHECK(g_file_get_contents(conf, &now, NULL, NULL));
		CHECK(!strcmp(now, conf2));
	}
}

static unsigned nsteps;
static double last_fraction = -1;

static void on_progress(void *opaque, const char *step, double f)
{
	volatile sig_atomic_t *stop = opaque;

	CHECK(f >= last_fraction && f <= 1);
	last_fraction = f;
	nsteps++;
	/* Stop once the disk is being made: the create must undo it. */
	if (stop && strstr(step, "disk"))
		*stop = 1;
}

static void test_create_progress_and_stop(void)
{
	volatile sig_atomic_t stop = 0;
	struct vm_create_spec s = { .name = "gone", .disk_size = "8M",
				    .stop = &stop, .progress = on_progress, .opaque = (void *)&stop };
	g_autofree char *before = library_listing(), *after = NULL, *dir = NULL;
	char err[1024];
	uint64_t virt, used;
	struct vm_config cfg;

	CHECK_EQ(vm_create(&s, NULL, err, sizeof(err)), -ECANCELED);
	CHECK(strstr(err, "cancelled") != NULL);
	after = library_listing();
	CHECK(!strcmp(before, after));
	CHECK(nsteps >= 2);

	nsteps = 0;
	last_fraction = -1;
	stop = 0;
	s.name = "made";
	s.opaque = NULL;
	s.iso = NULL;
	s.memory = "48M";
	s.cpus = "2";
	s.usb = "on";
	CHECK_EQ(vm_create(&s, &dir, err, sizeof(err)), 0);
	CHECK(dir && g_str_has_suffix(dir, "/made"));
	CHECK(last_fraction == 1 && nsteps >= 4);
	CHECK_EQ(vm_config_load("made", &cfg, NULL, err, sizeof(err)), 0);
	CHECK_EQ(cfg.memory, 48ull << 20);
	CHECK_EQ(cfg.cpus, 2);
	CHECK_EQ(cfg.ndisks, 1);
	CHECK_EQ(cfg.nnics, 1);
	CHECK(cfg.usb);
	CHECK(cfg.ndisks == 1 && vm_disk_sizes(cfg.disk[0].path, &virt, &used, err, sizeof(err)) == 0);
	CHECK_EQ(virt, 8ull << 20);
	CHECK(used > 0 && used < (8ull << 20));	/* qcow2: metadata only */
	vm_config_clear(&cfg);
}

static void test_snapshots_and_delete(void)
{
	char err[1024];
	unsigned long long freed = 0;
	bool resumes = true;
	struct snap_index ix;
	g_autofree char *dir = vmlib_vm_dir("made");
	g_autofree char *shared = g_build_filename(work, "shared", NULL);
	struct share_spec sh = { 0 };

	CHECK_EQ(vm_snapshot_take("made", "s1", "first", err, sizeof(err)), 0);
	CHECK(vm_snapshot_take("made", "s1", NULL, err, sizeof(err)) < 0 && one_line(err));
	CHECK(vm_snapshot_take("made", "s2", "two\nlines", err, sizeof(err)) == -EINVAL);
	CHECK_EQ(vm_snapshot_take("made", "s2", NULL, err, sizeof(err)), 0);
	CHECK_EQ(snap_load_current("made", &ix, err, sizeof(err)), 0);
	CHECK_EQ(ix.snaps->len, 2);
	snap_index_clear(&ix);
	CHECK_EQ(vm_snapshot_revert("made", "s1", &resumes, err, sizeof(err)), 0);
	CHECK(!resumes);
	CHECK_EQ(snap_load_current("made", &ix, err, sizeof(err)), 0);
	CHECK(ix.current && !strcmp(snap_find_id(&ix, ix.current)->tag, "s1"));
	snap_index_clear(&ix);
	CHECK_EQ(vm_snapshot_delete("made", "s2", &freed, err, sizeof(err)), 0);
	CHECK(vm_snapshot_delete("made", "nosuch", NULL, err, sizeof(err)) < 0 && one_line(err));

	CHECK(g_mkdir(shared, 0700) == 0);
	CHECK_EQ(share_spec_parse(shared, &sh, err, sizeof(err)), 0);
	CHECK_EQ(vm_share_add("made", &sh, err, sizeof(err)), 0);
	CHECK(vm_share_add("made", &sh, err, sizeof(err)) == -EEXIST);
	CHECK_EQ(vm_share_remove("made", "shared", err, sizeof(err)), 0);
	CHECK(vm_share_remove("made", "shared", err, sizeof(err)) < 0);
	share_spec_clear(&sh);

	CHECK_EQ(vm_delete("made", NULL, NULL, err, sizeof(err)) , 0);
	CHECK(!g_file_test(dir, G_FILE_TEST_EXISTS));
	CHECK(vm_delete("made", NULL, NULL, err, sizeof(err)) == -ENOENT && one_line(err));
}

static bool say_no(void *opaque, const char *dir)
{
	(*(int *)opaque)++;
	return false;
}

static void test_delete_refused(void)
{
	struct vm_create_spec s = { .name = "keep" };
	g_autofree char *dir = vmlib_vm_dir("keep");
	char err[1024];
	int asked = 0;

	CHECK_EQ(vm_create(&s, NULL, err, sizeof(err)), 0);
	CHECK_EQ(vm_delete_check("keep", err, sizeof(err)), 0);
	CHECK(vm_delete_check("nosuch", err, sizeof(err)) == -ENOENT && strstr(err, "no VM named"));
	CHECK_EQ(vm_delete("keep", say_no, &asked, err, sizeof(err)), -ECANCELED);
	CHECK_EQ(asked, 1);
	CHECK(g_file_test(dir, G_FILE_TEST_IS_DIR));
	CHECK(vm_delete("../x", say_no, &asked, err, sizeof(err)) == -EINVAL);
	CHECK_EQ(asked, 1);
}

/* firmware=uefi: create makes the store; an edit to uefi makes one (or
 * keeps the old one) before vm.conf says uefi, and says what changes. */
static void test_uefi(void)
{
	struct vm_create_spec s = { .name = "ue", .firmware = "uefi" };
	const char *to_uefi[] = { "firmware=uefi" }, *to_bios[] = { "firmware=bios" };
	g_autofree char *vars = NULL, *vars2 = NULL, *note = NULL;
	struct vm_edit_result res;
	char err[1024];

	if (access(VM_UEFI_VARS_TEMPLATE, R_OK) != 0) {
		printf("# %s missing (Debian's ovmf): skipped\n", VM_UEFI_VARS_TEMPLATE);
		return;
	}
	CHECK_EQ(vm_create(&s, NULL, err, sizeof(err)), 0);
	vars = vmlib_vm_file("ue", VM_UEFI_VARS_FILE);
	CHECK(g_file_test(vars, G_FILE_TEST_IS_REGULAR));
	s.name = "ub";
	s.firmware = "bios";
	CHECK_EQ(vm_create(&s, NULL, err, sizeof(err)), 0);
	vars2 = vmlib_vm_file("ub", VM_UEFI_VARS_FILE);
	CHECK(!g_file_test(vars2, G_FILE_TEST_EXISTS));
	CHECK_EQ(vm_edit_report("ub", to_uefi, 1, &res, err, sizeof(err)), 0);
	CHECK_EQ(res.old_firmware, MACHINE_FW_BIOS);
	CHECK_EQ(res.new_firmware, MACHINE_FW_UEFI);
	CHECK(res.uefi_vars_made);
	CHECK(g_file_test(vars2, G_FILE_TEST_IS_REGULAR));
	note = vm_edit_firmware_note("ub", &res);
	CHECK(note && strstr(note, "EFI system partition") && strstr(note, "(new,"));
	g_clear_pointer(&note, g_free);
	CHECK_EQ(vm_edit_report("ub", to_bios, 1, &res, err, sizeof(err)), 0);
	note = vm_edit_firmware_note("ub", &res);
	CHECK(note && strstr(note, "stays"));
	g_clear_pointer(&note, g_free);
	CHECK(g_file_test(vars2, G_FILE_TEST_IS_REGULAR));
	CHECK_EQ(vm_edit_report("ub", to_uefi, 1, &res, err, sizeof(err)), 0);
	CHECK(!res.uefi_vars_made);	/* the kept one */
	/* An edit that leaves the firmware alone says nothing of it. */
	CHECK_EQ(vm_edit_report("ub", (const char *[]){ "cpus=2" }, 1, &res, err, sizeof(err)), 0);
	CHECK(vm_edit_firmware_note("ub", &res) == NULL);
}

static void test_host_defaults(void)
{
	uint64_t mem;
	unsigned cpus;

	vm_host_defaults(&mem, &cpus);
	CHECK(machine_ram_ok(mem));
	CHECK(mem >= (512ull << 20) || mem < (1ull << 30));
	CHECK(mem <= (4ull << 30));
	CHECK(cpus >= 1 && cpus <= 4);
}

int main(void)
{
	work = g_dir_make_tmp("vivarium-vmops-XXXXXX", NULL);
	if (!work)
		SKIP("no temporary folder");
	g_setenv("XDG_DATA_HOME", work, TRUE);
	RUN_TEST(test_refusals);
	RUN_TEST(test_create_progress_and_stop);
	RUN_TEST(test_snapshots_and_delete);
	RUN_TEST(test_delete_refused);
	RUN_TEST(test_host_defaults);
	RUN_TEST(test_uefi);
	vmlib_remove_tree(work);
	return check_finish();
}
