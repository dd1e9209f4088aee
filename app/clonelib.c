/* SPDX-License-Identifier: MIT */
/* app/clonelib.c - `vivarium clone` (clonelib.h says what a clone holds). */
#define _GNU_SOURCE
#include "clonelib.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#include "block/block.h"
#include "img.h"
#include "snaplib.h"
#include "vmlib.h"

enum how {
	HOW_COPY,	/* a standalone image in the clone's folder */
	HOW_OVERLAY,	/* a qcow2 overlay on the source's image */
	HOW_SHARE,	/* named where it is */
};

struct clone_disk {
	char group[8];		/* "disk0".."disk3" */
	char *from;		/* absolute: the image (or snapshot image) */
	enum blk_format fmt;	/* vm.conf's (AUTO: probe), then the image's */
	enum how how;
};

struct clone {
	const char *src, *dst;
	const struct clone_opts *o;
	struct clone_result *res;
	char *srcdir;		/* the source's folder */
	char *tmp;		/* the clone being built */
	GKeyFile *kf;		/* the source's vm.conf, becoming the clone's */
	struct snap_index ix;
	struct snap *snap;	/* o->snapshot's, or NULL */
	struct clone_disk disk[VM_MAX_DISKS];
	unsigned ndisks;
	uint64_t total, done;	/* bytes of copies, for o->progress */
	char *err;
	size_t errlen;
};

/* Keys naming files, besides the disks' paths: [group] key. */
static const char *const file_keys[][2] = {
	{ "direct-boot", "kernel" }, { "direct-boot", "initrd" },
	{ "cdrom", "path" }, { "vm", "vnc-password-file" },
};

static int fail(struct clone *c, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct clone *c, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, c->errlen, fmt, ap);
	va_end(ap);
	return r;
}

/* Is absolute @path inside the source's folder? */
static bool in_src(struct clone *c, const char *path)
{
	size_t n = strlen(c->srcdir);

	return !strncmp(path, c->srcdir, n) && path[n] == '/' && path[n + 1];
}

static char *key_path(struct clone *c, const char *group, const char *key)
{
	g_autofree char *p = g_key_file_get_string(c->kf, group, key, NULL);

	return p && *p ? g_canonicalize_filename(p, c->srcdir) : NULL;
}

/* [nicN]: 0 and N, else -1. */
static int nic_index(const char *group, unsigned *n)
{
	const char *d = group + 3;

	if (strncmp(group, "nic", 3) || !*d || strspn(d, "0123456789") != strlen(d) ||
	    strlen(d) > 4)
		return -1;
	*n = (unsigned)atoi(d);
	return 0;
}

static struct snap_disk *snap_disk_of(struct snap *s, const char *group)
{
	for (unsigned d = 0; s && d < s->ndisks; d++)
		if (!strcmp(s->disk[d].disk, group))
			return &s->disk[d];
	return NULL;
}

/* ---- what to do with each disk ---------------------------------------------- */

static int plan_disks(struct clone *c)
{
	for (unsigned d = 0; d < VM_MAX_DISKS; d++) {
		struct clone_disk *cd = &c->disk[c->ndisks];
		struct snap_disk *sd;
		char *path;

		snprintf(cd->group, sizeof(cd->group), "disk%u", d);
		path = key_path(c, cd->group, "path");
		if (!path)
			continue;
		sd = snap_disk_of(c->snap, cd->group);
		cd->fmt = BLK_FMT_AUTO;
		{
			g_autofree char *f = g_key_file_get_string(c->kf, cd->group, "format", NULL);

			/* Never probe what vm.conf says is raw: its guest may
			 * have written a qcow2 header into it. */
			if (f && blk_parse_format(f, &cd->fmt) < 0)
				cd->fmt = BLK_FMT_AUTO;
		}
		if (sd) {
			g_free(path);
			cd->from = snap_image_path(c->src, sd->image);
			cd->fmt = BLK_FMT_QCOW2;	/* frozen images are */
			cd->how = c->o->linked ? HOW_OVERLAY : HOW_COPY;
		} else if (g_key_file_get_boolean(c->kf, cd->group, "readonly", NULL)) {
			/* Never written: the same in every state. */
			cd->from = path;
			cd->how = in_src(c, path) ? HOW_COPY : HOW_SHARE;
		} else if (c->snap) {
			g_free(path);
			return fail(c, -ENOENT,
				    "%s of VM '%s' is not in snapshot '%s' (it was added after it): "
				    "the snapshot has no state for it", cd->group, c->src, c->snap->tag);
		} else {
			cd->from = path;
			cd->how = HOW_COPY;
		}
		c->ndisks++;
	}
	for (unsigned d = 0; c->snap && d < c->snap->ndisks; d++)
		if (!g_key_file_has_group(c->kf, c->snap->disk[d].disk))
			return fail(c, -ENOENT, "snapshot '%s' has %s, which vm.conf of VM '%s' no longer has",
				    c->snap->tag, c->snap->disk[d].disk, c->src);
	return 0;
}

/* ---- making the clone's files ------------------------------------------------- */

static void on_progress(void *opaque, uint64_t done, uint64_t total)
{
	struct clone *c = opaque;

	(void)total;
	if (c->o->progress)
		c->o->progress(c->o->opaque, c->done + done, c->total);
}

/* @cd->from, its chain merged, as the standalone image @to. */
static int copy_disk(struct clone *c, struct clone_disk *cd, const char *to)
{
	struct blk_open_opts so = { .format = cd->fmt, .readonly = true };
	struct blk_open_opts oo = { .format = cd->fmt };
	struct blk_create_opts co = { .format = cd->fmt, .mode = VM_FILE_MODE };
	struct blk *in = NULL, *out = NULL;
	const char *side = "reading";
	char why[512];
	int r;

	/* Locked as a copy's source: refused if anyone writes it. */
	r = blk_open(cd->from, &so, &in, why, sizeof(why));
	if (r < 0)
		return fail(c, r, "%s of VM '%s': %s", cd->group, c->src, why);
	co.size = blk_length(in);
	r = blk_create(to, &co, why, sizeof(why));
	if (r == 0)
		r = blk_open(to, &oo, &out, why, sizeof(why));
	if (r < 0) {
		blk_close(in);
		return fail(c, r, "cannot create the clone's %s: %s", cd->group, why);
	}
	r = img_copy(in, out, c->o->stop, on_progress, c, &side);
	c->done += blk_length(in);
	blk_close(out);
	blk_close(in);
	if (r == -EINTR)
		return fail(c, r, "interrupted: VM '%s' was not made", c->dst);
	if (r < 0 && !strcmp(side, "reading"))
		return fail(c, r, "cannot copy %s of VM '%s': reading %s: %s", cd->group, c->src,
			    cd->from, g_strerror(-r));
	if (r < 0)
		return fail(c, r, "cannot copy %s of VM '%s' into the clone: %s", cd->group, c->src,
			    g_strerror(-r));
	return 0;
}

static int make_disk(struct clone *c, struct clone_disk *cd)
{
	g_autofree char *name = NULL, *to = NULL;
	char why[512];
	int r = 0;

	if (cd->how == HOW_SHARE) {
		g_key_file_set_string(c->kf, cd->group, "path", cd->from);
		c->res->shared++;
		return 0;
	}
	/* disk0 as `create` names it, the others after their group; raw
	 * stays raw. */
	name = g_strdup_printf("%s.%s", !strcmp(cd->group, "disk0") ? "disk" : cd->group,
			       cd->fmt == BLK_FMT_RAW ? "img" : "qcow2");
	to = g_build_filename(c->tmp, name, NULL);
	if (cd->how == HOW_COPY) {
		r = copy_disk(c, cd, to);
		c->res->copied++;
	} else {
		/* The base is in another VM's folder: named by its absolute
		 * path, which stays right wherever the clone's folder goes
		 * (not if the library moves). */
		struct blk_create_opts o = { .format = BLK_FMT_QCOW2, .backing = cd->from,
					     .backing_format = BLK_FMT_QCOW2,
					     .mode = VM_FILE_MODE };

		r = blk_create(to, &o, why, sizeof(why));
		if (r < 0)
			fail(c, r, "cannot create the clone's %s on %s: %s", cd->group, cd->from, why);
		c->res->overlays++;
	}
	if (r < 0)
		return r;
	g_key_file_set_string(c->kf, cd->group, "path", name);
	g_key_file_set_string(c->kf, cd->group, "format", blk_format_name(cd->fmt));
	return 0;
}

/* copy_file_range()'s work where it cannot: [*@pos, @end) of @in to the
 * same offsets of @out, *@pos moved on.  Bytes copied, or -1 (errno). */
static ssize_t copy_range(int in, int out, off_t *pos, off_t end)
{
	char buf[65536];
	size_t want = (size_t)MIN((off_t)sizeof(buf), end - *pos);
	ssize_t n;

	errno = 0;
	n = pread(in, buf, want, *pos);

	if (n <= 0)
		return n;
	if (pwrite(out, buf, (size_t)n, *pos) != n) {
		if (errno == 0)
			errno = EIO;	/* a short write */
		return -1;
	}
	*pos += n;
	return n;
}

/* Copy regular file @from as @to (new), holes and all: data extents only. */
static int copy_file(const char *from, const char *to, char *why, size_t len)
{
	int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, r = 0;
	struct stat st;
	off_t data = 0, hole;

	if (in < 0 || fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
		r = in < 0 ? -errno : -EINVAL;
		snprintf(why, len, "cannot read '%s': %s", from,
			 r == -EINVAL ? "not a regular file" : g_strerror(-r));
		goto out;
	}
	out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, VM_FILE_MODE);
	if (out < 0 || ftruncate(out, st.st_size) < 0) {
		r = -errno;
		snprintf(why, len, "cannot create '%s': %s", to, g_strerror(-r));
		goto out;
	}
	while ((data = lseek(in, data, SEEK_DATA)) >= 0) {
		hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			hole = st.st_size;
		while (data < hole) {
			off_t o = data;
			ssize_t n = copy_file_range(in, &data, out, &o, (size_t)(hole - data), 0);

			if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP ||
				      errno == EINVAL))
				n = copy_range(in, out, &data, hole);
			if (n <= 0) {
				r = n < 0 ? -errno : -EIO;
				snprintf(why, len, "cannot copy '%s': %s", from, g_strerror(-r));
				goto out;
			}
		}
	}
	if (errno != ENXIO) {			/* ENXIO: no data past it */
		r = -errno;
		snprintf(why, len, "cannot copy '%s': %s", from, g_strerror(-r));
	} else if (fsync(out) < 0) {
		r = -errno;
		snprintf(why, len, "cannot write '%s': %s", to, g_strerror(-r));
	}
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return r;
}

/* Files vm.conf names besides the disks: copied from inside the source's
 * folder (the same relative name), else named by their absolute path. */
static int make_files(struct clone *c)
{
	for (size_t i = 0; i < G_N_ELEMENTS(file_keys); i++) {
		const char *group = file_keys[i][0], *key = file_keys[i][1];
		g_autofree char *from = key_path(c, group, key);
		g_autofree char *to = NULL, *dir = NULL;
		const char *rel;
		char why[512];
		int r;

		if (!from)
			continue;
		if (!in_src(c, from)) {
			g_key_file_set_string(c->kf, group, key, from);
			continue;
		}
		rel = from + strlen(c->srcdir) + 1;
		to = g_build_filename(c->tmp, rel, NULL);
		dir = g_path_get_dirname(to);
		if (g_mkdir_with_parents(dir, VM_DIR_MODE) < 0)
			return fail(c, -errno, "cannot create %s: %s", dir, g_strerror(errno));
		if (!g_file_test(to, G_FILE_TEST_EXISTS)) {	/* named twice */
			r = copy_file(from, to, why, sizeof(why));
			if (r < 0)
				return fail(c, r, "%s of VM '%s': %s", key, c->src, why);
		}
		g_key_file_set_string(c->kf, group, key, rel);
	}
	return 0;
}

/* The UEFI variable store (boot entries and all): the clone's disks are
 * copies, so the entries that name their partitions still hold.  The
 * store as it is now, also for a clone of a snapshot: snapshots do not
 * keep it. */
static int make_uefi_vars(struct clone *c)
{
	g_autofree char *from = g_build_filename(c->srcdir, VM_UEFI_VARS_FILE, NULL);
	g_autofree char *to = g_build_filename(c->tmp, VM_UEFI_VARS_FILE, NULL);
	char why[512];
	int r;

	if (!g_file_test(from, G_FILE_TEST_IS_REGULAR))
		return 0;
	r = copy_file(from, to, why, sizeof(why));
	return r < 0 ? fail(c, r, "the UEFI variables of VM '%s': %s", c->src, why) : 0;
}

/* The TPM's state (tpm=on: swtpm's files in tpm/) as it is now, as for the
 * UEFI variables: NEW's TPM is a copy of NAME's, keys and NV included, as a
 * VirtualBox clone copies its NVRAM file.  swtpm replaces its state file
 * by a rename, so a running NAME's copy is whole.  Its lock file, links
 * and files with a second name are not copied. */
static int make_tpm_state(struct clone *c)
{
	g_autofree char *from = g_build_filename(c->srcdir, VM_TPM_DIR, NULL);
	g_autofree char *to = g_build_filename(c->tmp, VM_TPM_DIR, NULL);
	g_autoptr(GError) gerr = NULL;
	g_autoptr(GDir) d = NULL;
	const char *name;

	if (!g_file_test(from, G_FILE_TEST_IS_DIR))
		return 0;
	d = g_dir_open(from, 0, &gerr);
	if (!d)
		return fail(c, -EIO, "the TPM state of VM '%s': %s", c->src, gerr->message);
	if (mkdir(to, 0700) < 0)
		return fail(c, -errno, "cannot make %s: %s", to, g_strerror(errno));
	while ((name = g_dir_read_name(d))) {
		g_autofree char *f = g_build_filename(from, name, NULL);
		g_autofree char *t = g_build_filename(to, name, NULL);
		struct stat st;
		char why[512];
		int r;

		/* swtpm's own files only: under run-as its user's swtpm
		 * could have left links to files of others there. */
		if (!strcmp(name, ".lock") || lstat(f, &st) < 0 ||
		    !S_ISREG(st.st_mode) || st.st_nlink != 1)
			continue;
		r = copy_file(f, t, why, sizeof(why));
		if (r < 0)
			return fail(c, r, "the TPM state of VM '%s': %s", c->src, why);
	}
	return 0;
}

/* The snapshot's memory as the clone's saved state (revert's hard links;
 * a copy where links cannot be made). */
static int make_saved(struct clone *c)
{
	static const char *const ext[2] = { "ram", "state" };
	static const char *const name[2] = { VM_SAVED_RAM_FILE, VM_SAVED_STATE_FILE };
	g_auto(GStrv) groups = g_key_file_get_groups(c->kf, NULL);
	unsigned idx;

	if (!c->snap || !c->snap->has_memory)
		return 0;
	for (char **g = groups; *g; g++)
		if (nic_index(*g, &idx) == 0)
			c->res->memory_dropped = true;
	if (c->res->memory_dropped)
		return 0;
	{
		/* The shares are NAME's now, the memory's those of then: a
		 * resume would be refused, so the clone boots. */
		struct share_spec sh[MACHINE_MAX_SHARES] = { 0 };
		g_autofree char *state = snap_memory_path(c->src, c->snap->id, "state");
		unsigned n = 0;
		char e[512];

		for (unsigned i = 0; i < MACHINE_MAX_SHARES; i++) {
			g_autofree char *group = g_strdup_printf("share%u", i);

			if (share_spec_from_keyfile(c->kf, group, &sh[n], e, sizeof(e)) == 0)
				n++;
		}
		if (share_state_check(state, sh, n, e, sizeof(e)) == -ESTALE)
			c->res->memory_dropped = c->res->memory_dropped_shares = true;
		for (unsigned i = 0; i < n; i++)
			share_spec_clear(&sh[i]);
		if (c->res->memory_dropped)
			return 0;
	}
	/* The memory first: a saved.state names a complete saved.ram. */
	for (int i = 0; i < 2; i++) {
		g_autofree char *from = snap_memory_path(c->src, c->snap->id, ext[i]);
		g_autofree char *to = g_build_filename(c->tmp, name[i], NULL);
		char why[512];
		int r = 0;

		if (link(from, to) < 0)
			r = copy_file(from, to, why, sizeof(why));
		if (r < 0)
			return fail(c, r, "the memory of snapshot '%s': %s", c->snap->tag, why);
	}
	c->res->saved = true;
	return 0;
}

/* vm.conf's [vm] and [clone] for the clone, and new MAC addresses. */
static int make_conf(struct clone *c)
{
	g_autoptr(GDateTime) now = g_date_time_new_now_utc();
	g_autofree char *uuid = g_uuid_string_random();
	g_autofree char *created = g_date_time_format_iso8601(now);
	g_autofree char *src_uuid = g_key_file_get_string(c->kf, "vm", "uuid", NULL);
	g_autofree char *conf = g_build_filename(c->tmp, VM_CONF_FILE, NULL);
	g_auto(GStrv) groups = g_key_file_get_groups(c->kf, NULL);
	struct vm_config cfg;

	g_key_file_set_string(c->kf, "vm", "name", c->dst);
	g_key_file_set_string(c->kf, "vm", "uuid", uuid);
	g_key_file_set_string(c->kf, "vm", "created", created);
	g_key_file_remove_group(c->kf, SNAP_CLONE_GROUP, NULL);	/* a clone's clone */
	g_key_file_set_string(c->kf, SNAP_CLONE_GROUP, "source", c->src);
	if (src_uuid && *src_uuid)
		g_key_file_set_string(c->kf, SNAP_CLONE_GROUP, "source-uuid", src_uuid);
	if (c->snap) {
		g_key_file_set_string(c->kf, SNAP_CLONE_GROUP, "snapshot", c->snap->tag);
		g_key_file_set_string(c->kf, SNAP_CLONE_GROUP, "snapshot-id", c->snap->id);
	}
	g_key_file_set_boolean(c->kf, SNAP_CLONE_GROUP, "linked", c->o->linked);
	/* [nicN]: the addresses of the new UUID. */
	for (char **g = groups; *g; g++) {
		unsigned idx;
		uint8_t mac[6];
		char buf[18];

		if (nic_index(*g, &idx) < 0 || vm_mac_from_uuid(uuid, idx, mac) < 0)
			continue;
		snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x",
			 mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
		g_key_file_set_string(c->kf, *g, "mac", buf);
	}
	/* What the clone's first load will see must make sense. */
	if (vm_config_from_keyfile(c->kf, c->tmp, &cfg, c->err, c->errlen) < 0)
		return -EINVAL;
	vm_config_clear(&cfg);
	return vm_keyfile_save(c->kf, conf, c->err, c->errlen);
}

static void fsync_path(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* ---- the whole ------------------------------------------------------------------ */

/* Everything that can be refused before anything is made. */
static int check(struct clone *c)
{
	g_autofree char *final = vmlib_vm_dir(c->dst);
	struct stat st;
	int r;

	r = vm_name_check(c->dst, c->err, c->errlen);
	if (r == 0)
		r = vm_name_check(c->src, c->err, c->errlen);
	if (r == 0 && c->o->snapshot)
		r = snap_tag_check(c->o->snapshot, c->err, c->errlen);
	if (r < 0)
		return r;
	if (c->o->linked && !c->o->snapshot)
		return fail(c, -EINVAL,
			    "a linked clone shares the disk images of a snapshot of VM '%s': "
			    "give --snapshot TAG (see 'vivarium snapshot list %s')", c->src, c->src);
	if (!vmlib_exists(c->src))
		return fail(c, -ENOENT, "no VM named '%s' (see 'vivarium list')", c->src);
	if (vmlib_exists(c->dst))
		return fail(c, -EEXIST, "a VM named '%s' already exists (see 'vivarium show %s')",
			    c->dst, c->dst);
	if (lstat(final, &st) == 0)
		return fail(c, -EEXIST, "%s is in the way, and is no VM: choose another name", final);
	if (!c->o->snapshot && vmlib_running(c->src, NULL))
		return fail(c, -EBUSY,
			    "VM '%s' is running: stop it, or clone one of its snapshots (--snapshot TAG)",
			    c->src);
	if (!c->o->snapshot && vmlib_saved(c->src))
		return fail(c, -EBUSY,
			    "VM '%s' has a saved state, whose memory belongs to its current disks: resume "
			    "it ('vivarium start %s') or discard it ('vivarium discard %s') first, or clone "
			    "one of its snapshots (--snapshot TAG)", c->src, c->src, c->src);
	return 0;
}

static int build(struct clone *c)
{
	struct vm_config cfg;
	int r;

	r = vm_config_load(c->src, &cfg, &c->kf, c->err, c->errlen);
	if (r < 0)
		return r;
	vm_config_clear(&cfg);
	if (c->o->snapshot) {
		r = snap_load_current(c->src, &c->ix, c->err, c->errlen);
		if (r < 0)
			return r;
		c->snap = snap_find_tag(&c->ix, c->o->snapshot);
		if (!c->snap)
			return fail(c, -ENOENT, "VM '%s' has no snapshot '%s' (see 'vivarium snapshot list %s')",
				    c->src, c->o->snapshot, c->src);
	}
	r = check(c);		/* again, under the lock */
	if (r == 0)
		r = plan_disks(c);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < c->ndisks; i++) {
		struct clone_disk *cd = &c->disk[i];
		struct blk_open_opts so = { .format = cd->fmt, .readonly = true, .no_lock = true };
		struct blk *b;
		char why[512];

		/* Every image readable before anything is made. */
		if (cd->how == HOW_SHARE)
			continue;
		r = blk_open(cd->from, &so, &b, why, sizeof(why));
		if (r < 0)
			return fail(c, r, "%s of VM '%s': %s", cd->group, c->src, why);
		cd->fmt = blk_get_format(b);
		if (cd->how == HOW_COPY)
			c->total += blk_length(b);
		blk_close(b);
	}
	{
		g_autofree char *root = vmlib_root();

		c->tmp = g_strdup_printf("%s/.%s.new-XXXXXX", root, c->dst);
		if (!g_mkdtemp_full(c->tmp, VM_DIR_MODE)) {
			g_clear_pointer(&c->tmp, g_free);
			return fail(c, -errno, "cannot create a folder in %s: %s", root, g_strerror(errno));
		}
		if (chmod(c->tmp, VM_DIR_MODE) < 0)	/* the umask may have taken more */
			return fail(c, -errno, "cannot make %s private: %s", c->tmp, g_strerror(errno));
	}
	for (unsigned i = 0; i < c->ndisks; i++) {
		r = make_disk(c, &c->disk[i]);
		if (r < 0)
			return r;
	}
	r = make_files(c);
	if (r == 0)
		r = make_uefi_vars(c);
	if (r == 0)
		r = make_tpm_state(c);
	if (r == 0)
		r = make_saved(c);
	if (r == 0)
		r = make_conf(c);
	if (r < 0)
		return r;
	if (c->o->stop && *c->o->stop)
		return fail(c, -EINTR, "interrupted: VM '%s' was not made", c->dst);
	fsync_path(c->tmp);
	{
		g_autofree char *root = vmlib_root();
		g_autofree char *final = vmlib_vm_dir(c->dst);

		if (renameat2(AT_FDCWD, c->tmp, AT_FDCWD, final, RENAME_NOREPLACE) < 0) {
			if (errno == EEXIST || errno == ENOTEMPTY)
				return fail(c, -EEXIST, "a VM named '%s' already exists (see 'vivarium show %s')",
					    c->dst, c->dst);
			return fail(c, -errno, "cannot rename %s to %s: %s", c->tmp, final,
				    g_strerror(errno));
		}
		g_clear_pointer(&c->tmp, g_free);
		fsync_path(root);
	}
	return 0;
}

int vm_clone(const char *src, const char *dst, const struct clone_opts *o,
	     struct clone_result *res, char *err, size_t errlen)
{
	struct clone c = { .src = src, .dst = dst, .o = o, .res = res,
			   .err = err, .errlen = errlen };
	int lockfd, r;

	memset(res, 0, sizeof(*res));
	snap_index_init(&c.ix);
	r = check(&c);
	if (r < 0)
		goto out;
	c.srcdir = vmlib_vm_dir(src);
	lockfd = snap_lock(src, err, errlen);
	if (lockfd < 0) {
		r = lockfd;
		goto out;
	}
	r = build(&c);
	if (c.tmp)
		vmlib_remove_tree(c.tmp);
	close(lockfd);		/* the clone, if made, is in the library now */
out:
	for (unsigned i = 0; i < c.ndisks; i++)
		g_free(c.disk[i].from);
	if (c.kf)
		g_key_file_unref(c.kf);
	snap_index_clear(&c.ix);
	g_free(c.srcdir);
	g_free(c.tmp);
	return r;
}
