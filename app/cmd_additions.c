/* SPDX-License-Identifier: MIT */
/*
 * app/cmd_additions.c - `vivarium additions insert|eject NAME` and
 * `vivarium additions path`: the guest additions CD (docs/guest-additions.md)
 * in a library VM's CD-ROM drive (vm.conf [cdrom] path), as VirtualBox's
 * "Insert Guest Additions CD image".
 *
 * Where the ISO is, first found of: $VIVARIUM_ADDITIONS_ISO; next to the
 * running program in a build tree (BUILD/app/vivarium ->
 * BUILD/guest-additions/vivarium-additions.iso); the installed copy
 * (meson install: DATADIR/vivarium/vivarium-additions.iso).
 *
 * A running VM: its drive gets the CD at its next start (the IDE model can
 * change media at run time, piix_ide_change_media(), but neither the
 * machine nor the control protocol offers it yet).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "commands.h"
#include "vmlib.h"

#define ERR(...) (fprintf(stderr, "vivarium: " __VA_ARGS__), fputc('\n', stderr))
#define ISO_NAME "vivarium-additions.iso"

#ifndef VIVARIUM_DATADIR
#define VIVARIUM_DATADIR "/usr/local/share"
#endif

/* The ISO's path (g_free), or NULL with the places looked at in @where. */
static char *find_iso(GString *where)
{
	const char *env = g_getenv("VIVARIUM_ADDITIONS_ISO");
	g_autofree char *exe = g_file_read_link("/proc/self/exe", NULL);
	char *p;

	if (env && *env) {
		if (g_file_test(env, G_FILE_TEST_IS_REGULAR))
			return g_canonicalize_filename(env, NULL);
		g_string_append_printf(where, "%s ($VIVARIUM_ADDITIONS_ISO), ", env);
	}
	if (exe) {
		g_autofree char *dir = g_path_get_dirname(exe);

		p = g_build_filename(dir, "..", "guest-additions", ISO_NAME, NULL);
		if (g_file_test(p, G_FILE_TEST_IS_REGULAR)) {
			char *c = g_canonicalize_filename(p, NULL);

			g_free(p);
			return c;
		}
		g_free(p);
	}
	p = g_build_filename(VIVARIUM_DATADIR, "vivarium", ISO_NAME, NULL);
	if (g_file_test(p, G_FILE_TEST_IS_REGULAR))
		return p;
	g_string_append_printf(where, "the build tree's guest-additions/, %s", p);
	g_free(p);
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: vivarium additions insert NAME   put the guest additions CD in the VM's CD-ROM drive\n"
		   "       vivarium additions eject NAME    take it out again\n"
		   "       vivarium additions path          where the CD image is\n\n"
		   "In the guest (Linux, x86-64), as root: mount the CD (mount /dev/sr0 /mnt)\n"
		   "and run 'sh /mnt/install.sh'.  The VM needs agents=on (the default).\n"
		   "A running VM gets the CD at its next start.\n");
}

/* Set (@iso) or remove (NULL) vm.conf's cdrom path of VM @name. */
static int set_cdrom(const char *name, const char *iso, char *err, size_t errlen)
{
	g_autoptr(GKeyFile) kf = NULL;
	g_autofree char *dir = vmlib_vm_dir(name);
	g_autofree char *conf = NULL, *kv = g_strdup_printf("cdrom=%s", iso ? iso : "");
	struct vm_config cfg;

	if (vm_config_load(name, &cfg, &kf, err, errlen) < 0)
		return -EINVAL;
	vm_config_clear(&cfg);
	if (vm_config_set(kf, kv, err, errlen) < 0)
		return -EINVAL;
	if (vm_config_from_keyfile(kf, dir, &cfg, err, errlen) < 0)
		return -EINVAL;
	vm_config_clear(&cfg);
	conf = g_build_filename(dir, VM_CONF_FILE, NULL);
	return vm_keyfile_save(kf, conf, err, errlen);
}

int cmd_additions(int argc, char **argv)
{
	g_autoptr(GString) where = g_string_new(NULL);
	g_autofree char *iso = NULL;
	const char *sub = argc > 1 ? argv[1] : NULL, *name;
	struct vm_config cfg;
	char err[512];
	bool ours;

	if (!sub || !strcmp(sub, "--help") || !strcmp(sub, "-h")) {
		usage(sub ? stdout : stderr);
		return sub ? 0 : 2;
	}
	if (!strcmp(sub, "path") && argc == 2) {
		iso = find_iso(where);
		if (!iso) {
			ERR("the guest additions CD image is not built or installed (looked at %s; 'make' builds it, with xorriso)",
			    where->str);
			return 1;
		}
		printf("%s\n", iso);
		return 0;
	}
	if ((strcmp(sub, "insert") && strcmp(sub, "eject")) || argc != 3) {
		usage(stderr);
		return 2;
	}
	name = argv[2];
	if (vm_name_check(name, err, sizeof(err)) < 0) {
		ERR("%s", err);
		return 1;
	}
	if (!vmlib_exists(name)) {
		ERR("no VM named '%s' (see 'vivarium list')", name);
		return 1;
	}
	if (vm_config_load(name, &cfg, NULL, err, sizeof(err)) < 0) {
		ERR("%s", err);
		return 1;
	}
	ours = cfg.cdrom && g_str_has_suffix(cfg.cdrom, "/" ISO_NAME);
	if (!strcmp(sub, "eject")) {
		if (!cfg.cdrom) {
			printf("VM '%s' has no CD in its drive\n", name);
			vm_config_clear(&cfg);
			return 0;
		}
		if (!ours) {
			ERR("the CD in '%s' is %s, not the guest additions (use 'vivarium edit %s cdrom=' to remove it)",
			    name, cfg.cdrom, name);
			vm_config_clear(&cfg);
			return 1;
		}
		vm_config_clear(&cfg);
		if (set_cdrom(name, NULL, err, sizeof(err)) < 0) {
			ERR("%s", err);
			return 1;
		}
		printf("guest additions CD taken out of '%s'%s\n", name,
		       vmlib_running(name, NULL) ? " (the running VM keeps it until it next starts)" : "");
		return 0;
	}
	iso = find_iso(where);
	if (!iso) {
		ERR("the guest additions CD image is not built or installed (looked at %s; 'make' builds it, with xorriso)",
		    where->str);
		vm_config_clear(&cfg);
		return 1;
	}
	if (cfg.cdrom && !ours)
		printf("replacing the CD in '%s' (%s)\n", name, cfg.cdrom);
	if (!cfg.agents)
		printf("note: VM '%s' has agents=off; the additions need agents=on ('vivarium edit %s agents=on')\n",
		       name, name);
	/* boot=default puts a CD first; ours has no boot record, so the
	 * firmware goes on to the disk after a failed try. */
	if (cfg.boot == MACHINE_BOOT_DEFAULT && cfg.ndisks)
		printf("note: boot=default tries the CD first; it is not bootable, so the firmware goes on to the disk ('vivarium edit %s boot=disk' skips the try)\n",
		       name);
	vm_config_clear(&cfg);
	if (set_cdrom(name, iso, err, sizeof(err)) < 0) {
		ERR("%s", err);
		return 1;
	}
	printf("guest additions CD (%s) in the drive of '%s'%s\n", iso, name,
	       vmlib_running(name, NULL) ? "; the running VM sees it when it next starts (stop and start it)" : "");
	printf("in the guest, as root: mount /dev/sr0 /mnt && sh /mnt/install.sh\n");
	return 0;
}
