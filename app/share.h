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

#define SHARE_GUEST_PATH_MAX 255	/* bytes of a guest-path */
#define SHARE_GUEST_PATH_DIR "/mnt"	/* the default guest path: /mnt/TAG */

struct share_spec {
	char *path;			/* absolute, g_malloc'ed */
	char tag[SHARE_TAG_MAX + 1];
	bool readonly;
	/* Where the guest additions mount it (vm.conf guest-path); NULL:
	 * the default, SHARE_GUEST_PATH_DIR "/" TAG.  g_malloc'ed. */
	char *guest_path;
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

/* Where the guest mounts @s: its guest_path, else /mnt/TAG (g_free). */
char *share_guest_path(const struct share_spec *s);

/*
 * share_guest_path_check - a guest-path value: absolute, at most
 * SHARE_GUEST_PATH_MAX bytes of printable ASCII other than '\\', no "."
 * or ".." component, and neither "/" nor a system folder a mount would
 * hide (/etc, /usr, /proc...; the list is in docs/vm-conf.md).  Returns 0
 * with the path normalised into a new string in *@out (g_free: doubled
 * and trailing slashes removed), or -EINVAL with one line in @err.
 */
int share_guest_path_check(const char *path, char **out, char *err,
			   size_t errlen);

/* @s as the machine's share (pointers into @s: keep it alive). */
struct machine_share share_to_machine(const struct share_spec *s);

/*
 * share_spec_from_keyfile / share_spec_to_keyfile - the [shareN] group
 * @group of vm.conf: path (required), tag, readonly (true/false),
 * guest-path (share_guest_path_check(); written only when set).
 * From: 0, -ENOENT (no such group), -EINVAL + @err.
 */
int share_spec_from_keyfile(GKeyFile *kf, const char *group,
			    struct share_spec *out, char *err, size_t errlen);
void share_spec_to_keyfile(const struct share_spec *s, GKeyFile *kf,
			   const char *group);

/* ---- the library's vm.conf: `vivarium share add|remove` ---------------- */

/*
 * share_keyfile_add - add @s (path absolute; its tag already chosen, e.g.
 * share_default_tag()) to vm.conf @kf as the first free [shareN] group.
 * Refused, @kf unchanged, with -ENOENT / -ENOTDIR (the host folder is
 * missing, or not a folder), -EEXIST (its tag, or its guest path, is one
 * another share of @kf has), -ENOSPC (MACHINE_MAX_SHARES already) or
 * -EINVAL (a [shareN] group of @kf that does not parse), each with one
 * line in @err.  Returns N, the group's number, on success.
 */
int share_keyfile_add(GKeyFile *kf, const struct share_spec *s, char *err,
		      size_t errlen);

/*
 * share_keyfile_remove - remove the [shareN] group whose tag is @tag from
 * @kf.  Returns N, or -ENOENT with one line naming the tags there are.
 */
int share_keyfile_remove(GKeyFile *kf, const char *tag, char *err,
			 size_t errlen);

/* ---- shares in a saved machine state ------------------------------------- */

/*
 * share_state_check - does the machine state at @state_path (a `vivarium
 * save` or a snapshot's memory: docs/machine-state.md) hold the virtio-9p
 * devices of exactly the shares @s[0..@n) — the same tags and readonly
 * settings in the same order?  The devices' load refuses any other (the
 * guest's mounts would point at nothing), so a resume or a revert checks
 * first.  Returns 0 if they match; -ESTALE with one line saying what the
 * state has and what @s has ("the state was saved with the shared folders
 * 'a', 'b' (readonly), and the VM now has the shared folder 'a'"); or
 * -errno + @err when the file cannot be read or parsed (-EPROTO: a
 * virtio-9p section without a tag and readonly flag where version 1 has
 * them).
 */
int share_state_check(const char *state_path, const struct share_spec *s,
		      unsigned n, char *err, size_t errlen);

#endif
