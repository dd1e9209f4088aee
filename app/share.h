/* SPDX-License-Identifier: MIT */
/*
 * app/share.h - a VM's shared folders as the user writes them: the
 * --share option of `run` and vm.conf's [shareN] groups (docs/vm-conf.md),
 * turned into the machine's virtio-9p shares (machine.h).
 *
 *   --share HOSTDIR[,tag=NAME][,readonly]
 *
 * NAME is the mount tag the guest mounts (mount -t 9p -o trans=virtio,
 * version=9p2000.L NAME /mnt): 1-31 characters of A-Z a-z 0-9 _ . -;
 * by default HOSTDIR's last name with every other character made '_'.
 *
 * Errors: negative errno with one line in @err (no newline).
 */
#ifndef VIVARIUM_SHARE_H
#define VIVARIUM_SHARE_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>

#include "machine.h"

#define SHARE_TAG_MAX 31

struct share_spec {
	char *path;			/* absolute, g_malloc'ed */
	char tag[SHARE_TAG_MAX + 1];
	bool readonly;
};

/* The default tag for folder @path into @tag (SHARE_TAG_MAX + 1 bytes):
 * its last name sanitized, "share" when nothing is left. */
void share_default_tag(const char *path, char *tag);

/* One --share value into @out (share_spec_clear() it): 0 or -EINVAL. */
int share_spec_parse(const char *spec, struct share_spec *out, char *err,
		     size_t errlen);
void share_spec_clear(struct share_spec *s);

/*
 * share_specs_check - what must hold before a VM starts with @n shares:
 * at most MACHINE_MAX_SHARES, each HOSTDIR an existing folder (not a file,
 * not missing), no tag used twice.  0, or -EINVAL / -ENOENT / -ENOTDIR
 * with one line naming the share.
 */
int share_specs_check(const struct share_spec *s, unsigned n, char *err,
		      size_t errlen);

/* @s as the machine's share (pointers into @s: keep it alive). */
struct machine_share share_to_machine(const struct share_spec *s);

/*
 * share_spec_from_keyfile / share_spec_to_keyfile - the [shareN] group
 * @group of vm.conf: path (required), tag, readonly (true/false).
 * From: 0, -ENOENT (no such group), -EINVAL + @err.
 */
int share_spec_from_keyfile(GKeyFile *kf, const char *group,
			    struct share_spec *out, char *err, size_t errlen);
void share_spec_to_keyfile(const struct share_spec *s, GKeyFile *kf,
			   const char *group);

#endif
