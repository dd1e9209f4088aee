/* SPDX-License-Identifier: MIT */
/* app/snaplib.c - a VM's snapshots: the index and take/revert/delete on a
 * stopped VM (snaplib.h says the model and the files). */
#define _GNU_SOURCE
#include "snaplib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "newfile.h"

#define CHAIN_MAX	17	/* the block layer's depth limit, plus the top */

/* ---- the index ----------------------------------------------------------- */

void snap_free(struct snap *s)
{
	if (!s)
		return;
	g_free(s->id);
	g_free(s->tag);
	g_free(s->parent);
	g_free(s->created);
	g_free(s->description);
	for (unsigned i = 0; i < s->ndisks; i++) {
		g_free(s->disk[i].disk);
		g_free(s->disk[i].image);
	}
	g_free(s);
}

void snap_index_init(struct snap_index *ix)
{
	ix->snaps = g_ptr_array_new_with_free_func((GDestroyNotify)snap_free);
	ix->current = NULL;
}

void snap_index_clear(struct snap_index *ix)
{
	if (ix->snaps)
		g_ptr_array_unref(ix->snaps);
	g_free(ix->current);
	ix->snaps = NULL;
	ix->current = NULL;
}

int snap_tag_check(const char *tag, char *err, size_t errlen)
{
	return vmlib_check_name("snapshot tag", tag, err, errlen);
}

struct snap *snap_find_tag(const struct snap_index *ix, const char *tag)
{
	for (guint i = 0; tag && i < ix->snaps->len; i++) {
		struct snap *s = ix->snaps->pdata[i];

		if (!strcmp(s->tag, tag))
			return s;
	}
	return NULL;
}

struct snap *snap_find_id(const struct snap_index *ix, const char *id)
{
	for (guint i = 0; id && i < ix->snaps->len; i++) {
		struct snap *s = ix->snaps->pdata[i];

		if (!strcmp(s->id, id))
			return s;
	}
	return NULL;
}

GPtrArray *snap_children(const struct snap_index *ix, const char *id)
{
	GPtrArray *out = g_ptr_array_new();

	for (guint i = 0; i < ix->snaps->len; i++) {
		struct snap *s = ix->snaps->pdata[i];

		if (g_strcmp0(s->parent, id) == 0)
			g_ptr_array_add(out, s);
	}
	return out;
}

static void tree_walk(const struct snap_index *ix, const char *id, guint depth,
		      GPtrArray *out, GArray *depths)
{
	g_autoptr(GPtrArray) kids = snap_children(ix, id);

	for (guint i = 0; i < kids->len; i++) {
		struct snap *s = kids->pdata[i];

		g_ptr_array_add(out, s);
		if (depths)
			g_array_append_val(depths, depth);
		tree_walk(ix, s->id, depth + 1, out, depths);
	}
}

GPtrArray *snap_tree_order(const struct snap_index *ix, GArray **depths)
{
	GPtrArray *out = g_ptr_array_new();
	GArray *d = depths ? g_array_new(FALSE, FALSE, sizeof(guint)) : NULL;

	/* The parse refused loops, so every snapshot hangs from a root. */
	tree_walk(ix, NULL, 0, out, d);
	if (depths)
		*depths = d;
	return out;
}

void snap_index_add(struct snap_index *ix, struct snap *s)
{
	g_ptr_array_add(ix->snaps, s);
}

void snap_index_remove(struct snap_index *ix, struct snap *s)
{
	for (guint i = 0; i < ix->snaps->len; i++) {
		struct snap *c = ix->snaps->pdata[i];

		if (g_strcmp0(c->parent, s->id) == 0) {
			g_free(c->parent);
			c->parent = g_strdup(s->parent);
		}
	}
	if (g_strcmp0(ix->current, s->id) == 0) {
		g_free(ix->current);
		ix->current = g_strdup(s->parent);
	}
	g_ptr_array_remove(ix->snaps, s);
}

/* A string member, NULL if absent or null; *@bad if of another type. */
static const char *member_str(JsonObject *o, const char *key, bool *bad)
{
	JsonNode *n = json_object_get_member(o, key);

	if (!n || JSON_NODE_HOLDS_NULL(n))
		return NULL;
	if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) {
		*bad = true;
		return NULL;
	}
	return json_node_get_string(n);
}

static bool disk_group_ok(const char *g)
{
	return g && strlen(g) == 5 && !strncmp(g, "disk", 4) &&
	       g[4] >= '0' && g[4] < '0' + VM_MAX_DISKS;
}

static int parse_snap(JsonNode *node, struct snap **out, char *err,
		      size_t errlen)
{
	struct snap *s = g_new0(struct snap, 1);
	const char *id, *tag, *parent, *created, *desc;
	JsonObject *o;
	JsonNode *n;
	JsonArray *disks;
	bool bad = false;
	char why[256];

	*out = NULL;
	if (!JSON_NODE_HOLDS_OBJECT(node)) {
		snprintf(err, errlen, "a snapshot is not an object");
		goto fail;
	}
	o = json_node_get_object(node);
	id = member_str(o, "id", &bad);
	tag = member_str(o, "tag", &bad);
	parent = member_str(o, "parent", &bad);
	created = member_str(o, "created", &bad);
	desc = member_str(o, "description", &bad);
	if (bad || !id || !tag || !created) {
		snprintf(err, errlen, "a snapshot lacks id, tag or created, or has a non-string one");
		goto fail;
	}
	if (!g_uuid_string_is_valid(id) || (parent && !g_uuid_string_is_valid(parent))) {
		snprintf(err, errlen, "snapshot '%s': its id or parent is not a UUID", tag);
		goto fail;
	}
	if (snap_tag_check(tag, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s", why);
		goto fail;
	}
	s->id = g_strdup(id);
	s->tag = g_strdup(tag);
	s->parent = g_strdup(parent);
	s->created = g_strdup(created);
	s->description = g_strdup(desc);
	n = json_object_get_member(o, "has_memory");
	if (n && (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_BOOLEAN)) {
		snprintf(err, errlen, "snapshot '%s': has_memory is not true or false", tag);
		goto fail;
	}
	s->has_memory = n && json_node_get_boolean(n);
	n = json_object_get_member(o, "disks");
	if (!n || !JSON_NODE_HOLDS_ARRAY(n)) {
		snprintf(err, errlen, "snapshot '%s': disks is not an array", tag);
		goto fail;
	}
	disks = json_node_get_array(n);
	if (json_array_get_length(disks) > VM_MAX_DISKS) {
		snprintf(err, errlen, "snapshot '%s': more than %d disks", tag, VM_MAX_DISKS);
		goto fail;
	}
	for (guint i = 0; i < json_array_get_length(disks); i++) {
		JsonNode *dn = json_array_get_element(disks, i);
		const char *g, *img;

		if (!JSON_NODE_HOLDS_OBJECT(dn)) {
			snprintf(err, errlen, "snapshot '%s': a disk is not an object", tag);
			goto fail;
		}
		g = member_str(json_node_get_object(dn), "disk", &bad);
		img = member_str(json_node_get_object(dn), "image", &bad);
		if (bad || !disk_group_ok(g) || !img || !*img) {
			snprintf(err, errlen, "snapshot '%s': a disk needs \"disk\" (disk0-disk%d) and \"image\"",
				 tag, VM_MAX_DISKS - 1);
			goto fail;
		}
		for (unsigned j = 0; j < s->ndisks; j++)
			if (!strcmp(s->disk[j].disk, g)) {
				snprintf(err, errlen, "snapshot '%s': %s is there twice", tag, g);
				goto fail;
			}
		s->disk[s->ndisks].disk = g_strdup(g);
		s->disk[s->ndisks].image = g_strdup(img);
		s->ndisks++;
	}
	*out = s;
	return 0;
fail:
	snap_free(s);
	return -EINVAL;
}

/* Every parent known and no loop: each walk up ends within n steps. */
static int check_tree(const struct snap_index *ix, char *err, size_t errlen)
{
	for (guint i = 0; i < ix->snaps->len; i++) {
		const struct snap *s = ix->snaps->pdata[i];
		guint steps = 0;

		for (const struct snap *p = s; p->parent; steps++) {
			p = snap_find_id(ix, p->parent);
			if (!p) {
				snprintf(err, errlen, "snapshot '%s' has an unknown parent", s->tag);
				return -EINVAL;
			}
			if (steps > ix->snaps->len) {
				snprintf(err, errlen, "snapshot '%s' is its own ancestor", s->tag);
				return -EINVAL;
			}
		}
	}
	if (ix->current && !snap_find_id(ix, ix->current)) {
		snprintf(err, errlen, "current names no snapshot");
		return -EINVAL;
	}
	return 0;
}

int snap_index_parse(const char *text, size_t len, struct snap_index *ix,
		     char *err, size_t errlen)
{
	g_autoptr(JsonParser) p = json_parser_new();
	GError *gerr = NULL;
	JsonObject *o;
	JsonNode *n;
	JsonArray *a;
	bool bad = false;
	const char *cur;
	char why[384];
	int r;

	snap_index_init(ix);
	if (!json_parser_load_from_data(p, text, (gssize)len, &gerr)) {
		snprintf(err, errlen, "not JSON: %s", gerr->message);
		g_error_free(gerr);
		goto fail;
	}
	n = json_parser_get_root(p);
	if (!n || !JSON_NODE_HOLDS_OBJECT(n)) {
		snprintf(err, errlen, "not a JSON object");
		goto fail;
	}
	o = json_node_get_object(n);
	if (json_object_get_int_member_with_default(o, "version", 0) != SNAP_INDEX_VERSION) {
		snprintf(err, errlen, "version %" G_GINT64_FORMAT " (this vivarium reads version %d)",
			 json_object_get_int_member_with_default(o, "version", 0), SNAP_INDEX_VERSION);
		goto fail;
	}
	n = json_object_get_member(o, "snapshots");
	if (!n || !JSON_NODE_HOLDS_ARRAY(n)) {
		snprintf(err, errlen, "snapshots is not an array");
		goto fail;
	}
	a = json_node_get_array(n);
	for (guint i = 0; i < json_array_get_length(a); i++) {
		struct snap *s;

		r = parse_snap(json_array_get_element(a, i), &s, why, sizeof(why));
		if (r == 0 && (snap_find_id(ix, s->id) || snap_find_tag(ix, s->tag))) {
			snprintf(why, sizeof(why), "snapshot '%s': its id or tag is there twice", s->tag);
			snap_free(s);
			r = -EINVAL;
		}
		if (r < 0) {
			snprintf(err, errlen, "%s", why);
			goto fail;
		}
		snap_index_add(ix, s);
	}
	cur = member_str(o, "current", &bad);
	if (bad) {
		snprintf(err, errlen, "current is not a string or null");
		snap_index_clear(ix);
		goto fail;
	}
	ix->current = g_strdup(cur);
	if (check_tree(ix, err, errlen) == 0)
		return 0;
fail:
	snap_index_clear(ix);
	return -EINVAL;
}

static void add_str(JsonBuilder *b, const char *key, const char *v)
{
	json_builder_set_member_name(b, key);
	if (v)
		json_builder_add_string_value(b, v);
	else
		json_builder_add_null_value(b);
}

char *snap_index_to_json(const struct snap_index *ix)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonGenerator) gen = json_generator_new();
	g_autoptr(JsonNode) root = NULL;

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "version");
	json_builder_add_int_value(b, SNAP_INDEX_VERSION);
	add_str(b, "current", ix->current);
	json_builder_set_member_name(b, "snapshots");
	json_builder_begin_array(b);
	for (guint i = 0; i < ix->snaps->len; i++) {
		const struct snap *s = ix->snaps->pdata[i];

		json_builder_begin_object(b);
		add_str(b, "id", s->id);
		add_str(b, "tag", s->tag);
		add_str(b, "parent", s->parent);
		add_str(b, "created", s->created);
		add_str(b, "description", s->description);
		json_builder_set_member_name(b, "has_memory");
		json_builder_add_boolean_value(b, s->has_memory);
		json_builder_set_member_name(b, "disks");
		json_builder_begin_array(b);
		for (unsigned d = 0; d < s->ndisks; d++) {
			json_builder_begin_object(b);
			add_str(b, "disk", s->disk[d].disk);
			add_str(b, "image", s->disk[d].image);
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
	return json_generator_to_data(gen, NULL);
}

/* ---- files ------------------------------------------------------------------ */

char *snap_image_path(const char *name, const char *image)
{
	g_autofree char *dir = vmlib_vm_dir(name);

	return g_canonicalize_filename(image, dir);
}

int snap_load(const char *name, struct snap_index *ix, char *err,
	      size_t errlen)
{
	g_autofree char *path = vmlib_vm_file(name, SNAP_INDEX_FILE);
	g_autofree char *text = NULL;
	GError *gerr = NULL;
	char why[400];
	gsize len;
	int r;

	if (!vmlib_exists(name)) {
		snap_index_init(ix);
		snprintf(err, errlen, "no VM named '%s' (see 'vivarium list')", name);
		return -ENOENT;
	}
	if (!g_file_get_contents(path, &text, &len, &gerr)) {
		r = g_error_matches(gerr, G_FILE_ERROR, G_FILE_ERROR_NOENT) ? 0 : -EIO;
		if (r < 0)
			snprintf(err, errlen, "cannot read %s: %s", path, gerr->message);
		g_error_free(gerr);
		snap_index_init(ix);
		return r;
	}
	r = snap_index_parse(text, len, ix, why, sizeof(why));
	if (r < 0)
		snprintf(err, errlen, "%s: %s", path, why);
	return r;
}

/* Write @len bytes as @path, atomically (nameless file, fsync, rename). */
static int write_atomic(const char *path, const char *data, size_t len,
			char *err, size_t errlen)
{
	struct newfile nf;
	int r = newfile_open(&nf, path, VM_FILE_MODE, err, errlen);

	if (r < 0)
		return r;
	errno = 0;
	if (fchmod(nf.fd, VM_FILE_MODE) < 0 || write(nf.fd, data, len) != (ssize_t)len) {
		r = errno ? -errno : -EIO;
		snprintf(err, errlen, "cannot write %s: %s", path, g_strerror(-r));
		newfile_abort(&nf);
		return r;
	}
	return newfile_commit(&nf, true, err, errlen);
}

static void fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* ---- one operation on a stopped VM ------------------------------------------- */

struct snap_vm {
	const char *name;
	char *dir;		/* the VM's folder */
	char *snapdir;		/* its snapshots/ */
	GKeyFile *kf;		/* vm.conf, comments kept */
	struct snap_index ix;
	int lockfd;		/* the folder, flock()ed */
	bool self;		/* called by the VM's own running process */
};

static void vm_close(struct snap_vm *v)
{
	if (v->lockfd >= 0)
		close(v->lockfd);	/* drops the flock */
	if (v->kf)
		g_key_file_unref(v->kf);
	snap_index_clear(&v->ix);
	g_free(v->dir);
	g_free(v->snapdir);
	memset(v, 0, sizeof(*v));
	v->lockfd = -1;
}

/* The chain of @path, top first: absolute paths, each backing file's name
 * resolved against its overlay's folder.  Reads headers only (no locks).
 * -errno if any image of it cannot be read: the caller then knows nothing
 * about the images below.  With @unread, the image that cannot be read
 * is in @out too (its overlay names it). */
static int chain_walk(const char *path, GPtrArray *out, bool unread)
{
	g_autofree char *cur = g_canonicalize_filename(path, NULL);
	const struct blk_open_opts oo = { .readonly = true, .no_lock = true,
					  .no_backing = true };

	for (int depth = 0; cur && depth < CHAIN_MAX; depth++) {
		struct blk_info info;
		struct blk *b;
		char e[256];
		int r = blk_open(cur, &oo, &b, e, sizeof(e));

		if (r == 0) {
			r = blk_get_info(b, &info);
			blk_close(b);
		}
		if (r < 0 && !unread)
			return r;
		g_ptr_array_add(out, g_strdup(cur));
		if (r < 0)
			return r;
		if (info.format != BLK_FMT_QCOW2 || !info.backing[0])
			return 0;
		{
			g_autofree char *d = g_path_get_dirname(cur);

			g_free(cur);
			cur = g_canonicalize_filename(info.backing, d);
		}
	}
	return -ELOOP;
}

static int chain_of(const char *path, GPtrArray *out)
{
	return chain_walk(path, out, false);
}

int snap_image_chain(const char *path, GPtrArray *out)
{
	return chain_walk(path, out, true);
}

/* vm.conf's [@group] path, absolute; NULL if none. */
static char *conf_disk_path(GKeyFile *kf, const char *dir, const char *group)
{
	g_autofree char *p = g_key_file_get_string(kf, group, "path", NULL);

	return p && *p ? g_canonicalize_filename(p, dir) : NULL;
}

#define disk_path(v, group) conf_disk_path((v)->kf, (v)->dir, group)

static bool disk_readonly(struct snap_vm *v, const char *group)
{
	return g_key_file_get_boolean(v->kf, group, "readonly", NULL);
}

/* The snapshot owning frozen image @abs, or NULL. */
static struct snap *owner_of(const struct snap_index *ix, const char *dir,
			     const char *abs)
{
	for (guint i = 0; i < ix->snaps->len; i++) {
		struct snap *s = ix->snaps->pdata[i];

		for (unsigned d = 0; d < s->ndisks; d++) {
			g_autofree char *p = g_canonicalize_filename(s->disk[d].image, dir);

			if (!strcmp(p, abs))
				return s;
		}
	}
	return NULL;
}

/* The chains are the truth for "current": the first frozen image down the
 * chain of the first writable disk that reaches one. */
static void reconcile_current(struct snap_index *ix, const char *dir,
			      GKeyFile *kf)
{
	for (unsigned d = 0; ix->snaps->len && d < VM_MAX_DISKS; d++) {
		g_autofree char *group = g_strdup_printf("disk%u", d);
		g_autofree char *path = conf_disk_path(kf, dir, group);
		g_autoptr(GPtrArray) chain = g_ptr_array_new_with_free_func(g_free);

		if (!path || g_key_file_get_boolean(kf, group, "readonly", NULL))
			continue;
		chain_of(path, chain);	/* as far as it reads */
		for (guint i = 0; i < chain->len; i++) {
			struct snap *s = owner_of(ix, dir, chain->pdata[i]);

			if (s) {
				g_free(ix->current);
				ix->current = g_strdup(s->id);
				return;
			}
		}
	}
	g_clear_pointer(&ix->current, g_free);
}

int snap_load_current(const char *name, struct snap_index *ix, char *err,
		      size_t errlen)
{
	g_autofree char *dir = vmlib_vm_dir(name);
	g_autofree char *conf = g_build_filename(dir, VM_CONF_FILE, NULL);
	g_autoptr(GKeyFile) kf = g_key_file_new();
	int r = snap_load(name, ix, err, errlen);

	if (r == 0 && g_key_file_load_from_file(kf, conf, 0, NULL))
		reconcile_current(ix, dir, kf);
	return r;
}

int snap_lock(const char *name, char *err, size_t errlen)
{
	g_autofree char *dir = vmlib_vm_dir(name);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), r;

	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0)
		return fd;
	r = -errno;
	if (fd >= 0)
		close(fd);
	snprintf(err, errlen, r == -EWOULDBLOCK
		 ? "another snapshot or clone command is at work on VM '%s': try again when it is done"
		 : "cannot lock the folder of VM '%s': %s", name, g_strerror(-r));
	return r;
}

/*
 * Open VM @name for a snapshot operation: vm.conf, not running, the
 * folder flock()ed (one snapshot command at a time; nothing is created
 * for it), the index.  Changes nothing on disk.
 */
static int vm_open_as(struct snap_vm *v, const char *name, bool self,
		      char *err, size_t errlen);

/* @self: the caller is VM @name's own running process (its image locks
 * are its own, and it is paused). */
static int vm_open_as(struct snap_vm *v, const char *name, bool self,
		      char *err, size_t errlen)
{
	struct vm_config cfg;
	GError *gerr = NULL;
	g_autofree char *conf = NULL;
	pid_t pid;
	int r;

	memset(v, 0, sizeof(*v));
	v->lockfd = -1;
	snap_index_init(&v->ix);
	v->name = name;
	r = vm_config_load(name, &cfg, NULL, err, errlen);
	if (r < 0)
		return r;
	vm_config_clear(&cfg);
	v->self = self;
	if (self) {
		if (!vmlib_running(name, &pid) || pid != getpid()) {
			snprintf(err, errlen, "VM '%s' is not this process's", name);
			return -EPERM;
		}
	} else if (vmlib_running(name, &pid)) {
		snprintf(err, errlen,
			 "VM '%s' is running: stop it first (or let its own process do this)",
			 name);
		return -EBUSY;
	}
	v->dir = vmlib_vm_dir(name);
	v->snapdir = g_build_filename(v->dir, SNAP_DIR, NULL);
	r = snap_lock(name, err, errlen);
	if (r < 0)
		return r;
	v->lockfd = r;
	/* Again under the lock: what we act on is what we read now. */
	conf = g_build_filename(v->dir, VM_CONF_FILE, NULL);
	v->kf = g_key_file_new();
	if (!g_key_file_load_from_file(v->kf, conf, G_KEY_FILE_KEEP_COMMENTS, &gerr)) {
		snprintf(err, errlen, "cannot read %s: %s", conf, gerr->message);
		g_error_free(gerr);
		return -EINVAL;
	}
	snap_index_clear(&v->ix);
	r = snap_load(name, &v->ix, err, errlen);
	if (r < 0)
		return r;
	reconcile_current(&v->ix, v->dir, v->kf);
	return 0;
}

static int save_index(struct snap_vm *v, char *err, size_t errlen)
{
	g_autofree char *text = snap_index_to_json(&v->ix);
	g_autofree char *path = g_build_filename(v->dir, SNAP_INDEX_FILE, NULL);

	return write_atomic(path, text, strlen(text), err, errlen);
}

static int save_conf(struct snap_vm *v, char *err, size_t errlen)
{
	g_autofree char *path = g_build_filename(v->dir, VM_CONF_FILE, NULL);

	return vm_keyfile_save(v->kf, path, err, errlen);
}

/* @abs as stored in vm.conf and index.json: relative to the VM's folder
 * when inside it. */
static char *stored_name(struct snap_vm *v, const char *abs)
{
	size_t n = strlen(v->dir);

	if (!strncmp(abs, v->dir, n) && abs[n] == '/')
		return g_strdup(abs + n + 1);
	return g_strdup(abs);
}

/* @abs as an overlay in snapshots/ names its backing file. */
static char *backing_name(struct snap_vm *v, const char *abs)
{
	size_t n = strlen(v->snapdir), m = strlen(v->dir);

	if (!strncmp(abs, v->snapdir, n) && abs[n] == '/')
		return g_strdup(abs + n + 1);
	if (!strncmp(abs, v->dir, m) && abs[m] == '/')
		return g_strconcat("../", abs + m + 1, NULL);
	return g_strdup(abs);
}

/*
 * A new overlay on @backing (absolute) for disk @group: a complete file
 * (blk_create writes it nameless and links it in at the end), named in
 * *@out.  Mode 0600, qcow2 v3, the backing file's size.
 */
static int new_overlay(struct snap_vm *v, const char *group,
		       const char *backing, char **out, char *err,
		       size_t errlen)
{
	g_autofree char *uuid = g_uuid_string_random();
	g_autofree char *bname = backing_name(v, backing);
	g_autofree char *path = g_strdup_printf("%s/%s-%s.qcow2", v->snapdir, uuid, group);
	struct blk_create_opts o = { .format = BLK_FMT_QCOW2, .backing = bname,
				     .backing_format = BLK_FMT_QCOW2,
				     .mode = VM_FILE_MODE };
	char why[400];
	int r;

	if (g_mkdir_with_parents(v->snapdir, VM_DIR_MODE) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot create %s: %s", v->snapdir, g_strerror(-r));
		return r;
	}
	r = blk_create(path, &o, why, sizeof(why));
	if (r < 0) {
		snprintf(err, errlen, "cannot create an overlay for %s: %s", group, why);
		return r;
	}
	*out = g_steal_pointer(&path);
	return 0;
}

/* Can @path be opened for writing (a qcow2 nobody else uses)?  With
 * @want_qcow2, a raw image is refused with the way out. */
static int check_writable(struct snap_vm *v, const char *group,
			  const char *path, bool want_qcow2, char *err,
			  size_t errlen)
{
	/* The VM's own process holds its disks: probe without a lock. */
	struct blk_open_opts oo = { .readonly = v->self, .no_lock = v->self };
	struct blk *b;
	char why[400];
	int r = blk_open(path, &oo, &b, why, sizeof(why));

	if (r < 0) {
		snprintf(err, errlen, "%s of VM '%s': %s", group, v->name, why);
		return r;
	}
	if (want_qcow2 && blk_get_format(b) != BLK_FMT_QCOW2) {
		snprintf(err, errlen,
			 "%s of VM '%s' is a raw image, which cannot hold snapshots: convert it "
			 "('vivarium img convert -O qcow2 %s NEW.qcow2') and put NEW.qcow2 in vm.conf",
			 group, v->name, path);
		r = -ENOTSUP;
	}
	blk_close(b);
	return r;
}

/*
 * Every image some chain uses: vm.conf's disks and every snapshot's frozen
 * images, down to their bottoms.  -errno if any chain could not be read
 * to the end (then nothing may be removed).  Also fills @edges (image ->
 * its backing file) when not NULL.
 */
static int used_images(struct snap_vm *v, GHashTable *set, GHashTable *edges)
{
	g_autoptr(GPtrArray) tops = g_ptr_array_new_with_free_func(g_free);
	int r = 0;

	for (unsigned d = 0; d < VM_MAX_DISKS; d++) {
		g_autofree char *group = g_strdup_printf("disk%u", d);
		char *p = disk_path(v, group);

		if (p)
			g_ptr_array_add(tops, p);
	}
	for (guint i = 0; i < v->ix.snaps->len; i++) {
		struct snap *s = v->ix.snaps->pdata[i];

		for (unsigned d = 0; d < s->ndisks; d++)
			g_ptr_array_add(tops, g_canonicalize_filename(s->disk[d].image, v->dir));
	}
	for (guint i = 0; i < tops->len; i++) {
		g_autoptr(GPtrArray) chain = g_ptr_array_new_with_free_func(g_free);
		int r2 = chain_of(tops->pdata[i], chain);

		if (r2 < 0 && !r)
			r = r2;
		for (guint j = 0; j < chain->len; j++) {
			g_hash_table_add(set, g_strdup(chain->pdata[j]));
			if (edges && j + 1 < chain->len)
				g_hash_table_replace(edges, g_strdup(chain->pdata[j]),
						     g_strdup(chain->pdata[j + 1]));
		}
	}
	return r;
}

/*
 * Remove the images in snapshots/ that nothing uses any more: the active
 * overlays a revert replaced, and what an interrupted command left (an
 * overlay made before vm.conf named it, a frozen image deleted from the
 * index before it was removed).  Only when every chain could be read to
 * its end; only *.qcow2 files directly in snapshots/.
 */
static void collect_garbage(struct snap_vm *v)
{
	g_autoptr(GHashTable) used = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	GDir *d;
	const char *e;

	if (used_images(v, used, NULL) < 0)
		return;
	d = g_dir_open(v->snapdir, 0, NULL);
	while (d && (e = g_dir_read_name(d))) {
		g_autofree char *p = g_build_filename(v->snapdir, e, NULL);
		struct stat st;

		if (e[0] == '.' || !g_str_has_suffix(e, ".qcow2") ||
		    lstat(p, &st) < 0 || !S_ISREG(st.st_mode) ||
		    g_hash_table_contains(used, p))
			continue;
		unlink(p);
	}
	if (d)
		g_dir_close(d);
}

static int refuse_saved(struct snap_vm *v, char *err, size_t errlen)
{
	if (!vmlib_saved(v->name))
		return 0;
	snprintf(err, errlen,
		 "VM '%s' has a saved state, whose memory belongs to its current disks: "
		 "resume it ('vivarium start %s') or discard it ('vivarium discard %s') first",
		 v->name, v->name, v->name);
	return -EBUSY;
}

static struct snap *need_tag(struct snap_vm *v, const char *tag, char *err,
			     size_t errlen)
{
	struct snap *s = snap_find_tag(&v->ix, tag);

	if (!s)
		snprintf(err, errlen, "VM '%s' has no snapshot '%s' (see 'vivarium snapshot list %s')",
			 v->name, tag, v->name);
	return s;
}

static void unlink_all(GPtrArray *paths)
{
	for (guint i = 0; i < paths->len; i++)
		unlink(paths->pdata[i]);
}

/* ---- linked clones ------------------------------------------------------------- */

/* The chains of every image VM @name's disks and snapshots read (images
 * that cannot be read included), each a GPtrArray of paths, top first,
 * into @chains; its vm.conf in *@kf.  -errno if a chain or the index
 * could not be read to the end. */
static int chains_of(const char *name, GPtrArray *chains, GKeyFile **kf)
{
	g_autofree char *dir = vmlib_vm_dir(name);
	g_autofree char *conf = g_build_filename(dir, VM_CONF_FILE, NULL);
	g_autoptr(GPtrArray) tops = g_ptr_array_new_with_free_func(g_free);
	struct snap_index ix;
	char err[512];
	int r = 0;

	*kf = g_key_file_new();
	if (!g_key_file_load_from_file(*kf, conf, 0, NULL))
		return -EIO;
	for (unsigned d = 0; d < VM_MAX_DISKS; d++) {
		g_autofree char *group = g_strdup_printf("disk%u", d);
		char *p = conf_disk_path(*kf, dir, group);

		if (p)
			g_ptr_array_add(tops, p);
	}
	if (snap_load(name, &ix, err, sizeof(err)) < 0)
		r = -EIO;
	for (guint i = 0; ix.snaps && i < ix.snaps->len; i++) {
		struct snap *s = ix.snaps->pdata[i];

		for (unsigned d = 0; d < s->ndisks; d++)
			g_ptr_array_add(tops, g_canonicalize_filename(s->disk[d].image, dir));
	}
	snap_index_clear(&ix);
	for (guint i = 0; i < tops->len; i++) {
		GPtrArray *chain = g_ptr_array_new_with_free_func(g_free);
		int r2 = chain_walk(tops->pdata[i], chain, true);

		if (r2 < 0 && !r)
			r = r2;
		g_ptr_array_add(chains, chain);
	}
	return r;
}

int snap_vm_images(const char *name, GPtrArray *out)
{
	g_autoptr(GPtrArray) chains = g_ptr_array_new_with_free_func((GDestroyNotify)g_ptr_array_unref);
	g_autoptr(GKeyFile) kf = NULL;
	int r = chains_of(name, chains, &kf);

	for (guint c = 0; c < chains->len; c++) {
		GPtrArray *chain = chains->pdata[c];

		for (guint i = 0; i < chain->len; i++) {
			bool seen = false;

			for (guint k = 0; k < out->len && !seen; k++)
				seen = !strcmp(out->pdata[k], chain->pdata[i]);
			if (!seen)
				g_ptr_array_add(out, g_strdup(chain->pdata[i]));
		}
	}
	return r;
}

/* Does @kf ([clone]) say its VM is a linked clone of VM @src (UUID
 * @src_uuid, may be NULL), of its snapshot @sid unless that is NULL? */
static bool says_linked_clone(GKeyFile *kf, const char *src,
			      const char *src_uuid, const char *sid)
{
	g_autofree char *name = g_key_file_get_string(kf, SNAP_CLONE_GROUP, "source", NULL);
	g_autofree char *uuid = g_key_file_get_string(kf, SNAP_CLONE_GROUP, "source-uuid", NULL);
	g_autofree char *id = g_key_file_get_string(kf, SNAP_CLONE_GROUP, "snapshot-id", NULL);

	if (!g_key_file_get_boolean(kf, SNAP_CLONE_GROUP, "linked", NULL))
		return false;
	if (uuid && src_uuid ? g_ascii_strcasecmp(uuid, src_uuid) != 0 : g_strcmp0(name, src) != 0)
		return false;
	return !sid || !g_strcmp0(id, sid);
}

int snap_users(const char *name, const struct snap *s, char ***users)
{
	g_autofree char *dir = vmlib_vm_dir(name);
	g_autofree char *conf = g_build_filename(dir, VM_CONF_FILE, NULL);
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autofree char *uuid = NULL;
	g_auto(GStrv) names = vmlib_list();
	g_autoptr(GPtrArray) frozen = g_ptr_array_new_with_free_func(g_free);
	GPtrArray *out = g_ptr_array_new();
	size_t n = strlen(dir);
	int count;

	if (g_key_file_load_from_file(kf, conf, 0, NULL))
		uuid = g_key_file_get_string(kf, "vm", "uuid", NULL);
	for (unsigned d = 0; s && d < s->ndisks; d++)
		g_ptr_array_add(frozen, g_canonicalize_filename(s->disk[d].image, dir));
	for (char **o = names; *o; o++) {
		g_autoptr(GPtrArray) chains = g_ptr_array_new_with_free_func((GDestroyNotify)g_ptr_array_unref);
		g_autoptr(GKeyFile) okf = NULL;
		bool uses = false;
		int r;

		if (!strcmp(*o, name))
			continue;
		r = chains_of(*o, chains, &okf);
		for (guint c = 0; c < chains->len && !uses; c++) {
			GPtrArray *chain = chains->pdata[c];

			for (guint j = 0; j < chain->len && !uses; j++) {
				const char *p = chain->pdata[j];
				const char *above = j ? chain->pdata[j - 1] : NULL;

				/* The VM: any image of its folder. */
				if (!s) {
					uses = !strncmp(p, dir, n) && p[n] == '/';
					continue;
				}
				/* A snapshot: its frozen image, as their disk or
				 * under an image of theirs.  Under one of @name's
				 * own (a later snapshot's), the delete merges into
				 * that one and they read the same. */
				if (above && !strncmp(above, dir, n) && above[n] == '/')
					continue;
				for (guint f = 0; f < frozen->len && !uses; f++)
					uses = !strcmp(p, frozen->pdata[f]);
			}
		}
		/* A chain that cannot be read: what its vm.conf says. */
		if (!uses && r < 0)
			uses = says_linked_clone(okf, name, uuid, s ? s->id : NULL);
		if (uses)
			g_ptr_array_add(out, g_strdup(*o));
	}
	count = (int)out->len;
	g_ptr_array_add(out, NULL);
	*users = (char **)g_ptr_array_free(out, FALSE);
	if (!count)
		g_clear_pointer(users, g_strfreev);
	return count;
}

/* ---- take --------------------------------------------------------------------- */

/*
 * Order, and what a crash after each step leaves:
 *  1. a new overlay on each writable disk's active image, each complete
 *     before it has a name: unused files in snapshots/, removed by the
 *     next snapshot command;
 *  2. vm.conf names the overlays (atomic rename): the VM runs on them, its
 *     old active images are an extra layer of its chains that no snapshot
 *     names — it reads the same, and no snapshot names an image that is
 *     still written;
 *  3. index.json gains the snapshot (atomic rename): done.
 */
int snap_take(const char *name, const char *tag, const char *description,
	      char *err, size_t errlen)
{
	return snap_take_running(name, tag, description, NULL, err, errlen);
}

char *snap_memory_path(const char *name, const char *id, const char *ext)
{
	g_autofree char *base = g_strdup_printf("%s/%s.%s", SNAP_DIR, id, ext);

	return vmlib_vm_file(name, base);
}

int snap_take_running(const char *name, const char *tag,
		      const char *description, const struct snap_running *run,
		      char *err, size_t errlen)
{
	g_autoptr(GPtrArray) made = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GDateTime) now = g_date_time_new_now_utc();
	struct snap *s = NULL;
	struct snap_vm v;
	char *actives[VM_MAX_DISKS] = { 0 };
	const char *groups[VM_MAX_DISKS] = { 0 };
	static const char *const all[VM_MAX_DISKS] = { "disk0", "disk1", "disk2", "disk3" };
	unsigned n = 0;
	int r;

	r = snap_tag_check(tag, err, errlen);
	if (r < 0)
		return r;
	r = vm_open_as(&v, name, run != NULL, err, errlen);
	if (r == 0)
		r = refuse_saved(&v, err, errlen);
	if (r < 0)
		goto out;
	if (snap_find_tag(&v.ix, tag)) {
		snprintf(err, errlen, "VM '%s' has a snapshot '%s' already", name, tag);
		r = -EEXIST;
		goto out;
	}
	for (unsigned d = 0; d < VM_MAX_DISKS; d++) {
		char *p = disk_path(&v, all[d]);

		if (!p || disk_readonly(&v, all[d])) {	/* shared as they are */
			g_free(p);
			continue;
		}
		groups[n] = all[d];
		actives[n++] = p;
		r = check_writable(&v, all[d], p, true, err, errlen);
		if (r < 0)
			goto out;
	}
	if (!n) {
		snprintf(err, errlen, "VM '%s' has no writable disk to take a snapshot of", name);
		r = -EINVAL;
		goto out;
	}

	s = g_new0(struct snap, 1);
	s->id = g_uuid_string_random();
	s->tag = g_strdup(tag);
	s->parent = g_strdup(v.ix.current);
	s->created = g_date_time_format(now, "%Y-%m-%dT%H:%M:%SZ");
	s->description = description && *description ? g_strdup(description) : NULL;
	for (unsigned i = 0; i < n; i++) {		/* 1 */
		char *o = NULL;

		r = new_overlay(&v, groups[i], actives[i], &o, err, errlen);
		if (r < 0) {
			unlink_all(made);
			goto out;
		}
		g_ptr_array_add(made, o);
		s->disk[i].disk = g_strdup(groups[i]);
		s->disk[i].image = stored_name(&v, actives[i]);
		s->ndisks++;
	}
	if (run) {			/* 1b: the memory; the VM moves to 1 */
		g_autofree char *state = snap_memory_path(name, s->id, "state");
		g_autofree char *ram = snap_memory_path(name, s->id, "ram");

		if (g_mkdir_with_parents(v.snapdir, 0700) < 0) {
			r = -errno;
			snprintf(err, errlen, "cannot create %s: %s", v.snapdir, g_strerror(errno));
			unlink_all(made);
			goto out;
		}
		fsync_dir(v.snapdir);
		r = run->save(run->opaque, state, ram, groups,
			      (const char *const *)made->pdata, n, err, errlen);
		if (r < 0) {
			unlink_all(made);
			goto out;
		}
		s->has_memory = true;
	}
	fsync_dir(v.snapdir);
	for (unsigned i = 0; i < n; i++) {		/* 2 */
		g_autofree char *rel = stored_name(&v, made->pdata[i]);

		g_key_file_set_string(v.kf, groups[i], "path", rel);
		g_key_file_set_string(v.kf, groups[i], "format", "qcow2");
	}
	r = save_conf(&v, err, errlen);
	if (r < 0) {
		unlink_all(made);
		goto out;
	}
	g_free(v.ix.current);				/* 3 */
	v.ix.current = g_strdup(s->id);
	snap_index_add(&v.ix, g_steal_pointer(&s));
	r = save_index(&v, err, errlen);
	if (r == 0)
		collect_garbage(&v);
out:
	if (r < 0 && s && s->has_memory) {
		g_autofree char *state = snap_memory_path(name, s->id, "state");
		g_autofree char *ram = snap_memory_path(name, s->id, "ram");

		unlink(state);
		unlink(ram);
	}
	snap_free(s);
	for (unsigned i = 0; i < VM_MAX_DISKS; i++)
		g_free(actives[i]);
	vm_close(&v);
	return r;
}

/* ---- revert -------------------------------------------------------------------- */

/*
 * Order, and what a crash after each step leaves:
 *  1. a new overlay on each of the snapshot's frozen images: unused files,
 *     removed by the next snapshot command;
 *  2. vm.conf names them (atomic): the VM is at the snapshot; index.json's
 *     "current" is stale, which the next load corrects from the chains;
 *  3. index.json says current = the snapshot;
 *  4. the old active overlays, which nothing uses now, are removed.
 */
int snap_revert(const char *name, const char *tag, char *err, size_t errlen)
{
	return snap_revert_running(name, tag, false, NULL, err, errlen);
}

int snap_revert_running(const char *name, const char *tag, bool self,
			char **memory_id, char *err, size_t errlen)
{
	g_autoptr(GPtrArray) made = g_ptr_array_new_with_free_func(g_free);
	struct snap_vm v;
	struct snap *s;
	int r;

	if (memory_id)
		*memory_id = NULL;
	r = vm_open_as(&v, name, self, err, errlen);
	/* A saved state belongs to the current state, which a revert throws
	 * away: the caller drops it (or replaces it by the snapshot's). */
	if (r < 0)
		goto out;
	s = need_tag(&v, tag, err, errlen);
	if (!s) {
		r = -ENOENT;
		goto out;
	}
	for (unsigned d = 0; d < s->ndisks; d++) {
		const char *g = s->disk[d].disk;
		g_autofree char *frozen = g_canonicalize_filename(s->disk[d].image, v.dir);
		g_autofree char *active = disk_path(&v, g);
		g_autoptr(GPtrArray) chain = g_ptr_array_new_with_free_func(g_free);

		if (!active) {
			snprintf(err, errlen, "snapshot '%s' has %s, which vm.conf of VM '%s' no longer has",
				 tag, g, name);
			r = -ENOENT;
			goto out;
		}
		r = chain_of(frozen, chain);
		if (r < 0) {
			snprintf(err, errlen, "snapshot '%s': %s (or an image under it) cannot be read: %s",
				 tag, frozen, g_strerror(-r));
			goto out;
		}
		/* Nobody may be using the disk we are about to replace. */
		r = check_writable(&v, g, active, false, err, errlen);
		if (r < 0)
			goto out;
	}
	for (unsigned d = 0; d < s->ndisks; d++) {	/* 1 */
		g_autofree char *frozen = g_canonicalize_filename(s->disk[d].image, v.dir);
		char *o = NULL;

		r = new_overlay(&v, s->disk[d].disk, frozen, &o, err, errlen);
		if (r < 0) {
			unlink_all(made);
			goto out;
		}
		g_ptr_array_add(made, o);
	}
	fsync_dir(v.snapdir);
	for (unsigned d = 0; d < s->ndisks; d++) {	/* 2 */
		g_autofree char *rel = stored_name(&v, made->pdata[d]);

		g_key_file_set_string(v.kf, s->disk[d].disk, "path", rel);
		g_key_file_set_string(v.kf, s->disk[d].disk, "format", "qcow2");
	}
	r = save_conf(&v, err, errlen);
	if (r < 0) {
		unlink_all(made);
		goto out;
	}
	g_free(v.ix.current);				/* 3 */
	v.ix.current = g_strdup(s->id);
	r = save_index(&v, err, errlen);
	collect_garbage(&v);				/* 4 */
	if (r == 0 && memory_id && s->has_memory)
		*memory_id = g_strdup(s->id);
out:
	vm_close(&v);
	return r;
}

int snap_shares_check(const char *name, const char *tag,
		      const struct share_spec *s, unsigned n, char *err,
		      size_t errlen)
{
	g_autofree char *state = NULL;
	struct snap_index ix;
	struct snap *sn;
	char e[512];
	int r;

	if (snap_load(name, &ix, e, sizeof(e)) < 0)
		return 0;
	sn = snap_find_tag(&ix, tag);
	if (sn && sn->has_memory)
		state = snap_memory_path(name, sn->id, "state");
	snap_index_clear(&ix);
	if (!state)
		return 0;
	r = share_state_check(state, s, n, e, sizeof(e));
	if (r != -ESTALE)
		return 0;
	snprintf(err, errlen, "cannot revert VM '%s' to snapshot '%s': %s", name, tag, e);
	return r;
}

/* ---- delete --------------------------------------------------------------------- */

/*
 * Order, and what a crash after each step leaves:
 *  1. each image whose backing file is one of the snapshot's frozen images
 *     (its children: later snapshots' frozen images, the active overlay;
 *     found from the chains, not the index) gets the frozen image's
 *     clusters and then its backing file (blk_stream: copies, flush, one
 *     header write); every image reads the same throughout, and the
 *     frozen image is only read;
 *  2. index.json without the snapshot (atomic; its children now hang from
 *     its parent);
 *  3. the frozen images, which no chain uses now, are removed: the disk
 *     space comes back.  A crash before leaves them unused in snapshots/,
 *     for the next snapshot command to remove.
 */
int snap_delete(const char *name, const char *tag, unsigned long long *freed,
		char *err, size_t errlen)
{
	return snap_delete_running(name, tag, false, false, freed, err, errlen);
}

static int users_refusal(const char *name, const char *tag, const struct snap *s,
			 char *err, size_t errlen)
{
	g_auto(GStrv) users = NULL;

	if (snap_users(name, s, &users) > 0) {
		g_autofree char *list = g_strjoinv(", ", users);

		snprintf(err, errlen, "snapshot '%s' of VM '%s' is the base of linked clone(s) %s: delete them first",
			 tag, name, list);
		return -EBUSY;
	}
	return 0;
}

int snap_check_users(const char *name, const char *tag, char *err,
		     size_t errlen)
{
	struct snap_index ix;
	char e[512];
	struct snap *s;
	int r = 0;

	if (snap_load(name, &ix, e, sizeof(e)) < 0)
		return 0;
	s = snap_find_tag(&ix, tag);
	if (s)
		r = users_refusal(name, tag, s, err, errlen);
	snap_index_clear(&ix);
	return r;
}

int snap_delete_running(const char *name, const char *tag, bool self,
			bool users_checked,
			unsigned long long *freed, char *err, size_t errlen)
{
	g_autofree char *mem_id = NULL;
	g_autoptr(GHashTable) used = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr(GHashTable) edges = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_autoptr(GPtrArray) frozen = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) kids = g_ptr_array_new_with_free_func((GDestroyNotify)blk_close);
	struct snap_vm v;
	struct snap *s;
	int r;

	*freed = 0;
	r = vm_open_as(&v, name, self, err, errlen);
	if (r < 0)
		goto out;
	s = need_tag(&v, tag, err, errlen);
	if (!s) {
		r = -ENOENT;
		goto out;
	}
	if (!users_checked) {
		r = users_refusal(name, tag, s, err, errlen);
		if (r < 0)
			goto out;
	}
	r = used_images(&v, used, edges);
	if (r < 0) {
		snprintf(err, errlen, "an image of VM '%s' cannot be read (%s): see 'qemu-img info --backing-chain'",
			 name, g_strerror(-r));
		goto out;
	}
	for (unsigned d = 0; d < s->ndisks; d++) {
		char *f = g_canonicalize_filename(s->disk[d].image, v.dir);

		g_ptr_array_add(frozen, f);
		for (guint i = 0; i < v.ix.snaps->len; i++) {
			struct snap *o = v.ix.snaps->pdata[i];

			for (unsigned k = 0; o != s && k < o->ndisks; k++) {
				g_autofree char *p = g_canonicalize_filename(o->disk[k].image, v.dir);

				if (!strcmp(p, f)) {
					snprintf(err, errlen, "snapshot '%s' shares %s with snapshot '%s': not deleting it",
						 tag, f, o->tag);
					r = -EINVAL;
					goto out;
				}
			}
		}
	}
	/* Every child is opened for writing before any is changed: one in
	 * use (a linked clone running on a later snapshot's image) refuses
	 * the delete with nothing changed. */
	for (guint f = 0; f < frozen->len; f++) {
		GHashTableIter it;
		gpointer child, backing;

		g_hash_table_iter_init(&it, edges);
		while (g_hash_table_iter_next(&it, &child, &backing)) {
			struct blk_open_opts oo = { 0 };
			struct blk *b;
			char why[400];

			if (strcmp(backing, frozen->pdata[f]))
				continue;
			r = blk_open(child, &oo, &b, why, sizeof(why));
			if (r < 0) {
				snprintf(err, errlen, "cannot merge snapshot '%s' into %s: %s",
					 tag, (char *)child, why);
				goto out;
			}
			g_ptr_array_add(kids, b);
		}
	}
	for (guint k = 0; k < kids->len; k++) {		/* 1 */
		char why[400];

		r = blk_stream(kids->pdata[k], why, sizeof(why));
		if (r < 0) {
			snprintf(err, errlen, "cannot merge snapshot '%s' into %s: %s",
				 tag, blk_path(kids->pdata[k]), why);
			goto out;
		}
	}
	g_ptr_array_set_size(kids, 0);			/* closes them */
	if (s->has_memory)
		mem_id = g_strdup(s->id);
	snap_index_remove(&v.ix, s);			/* 2 */
	r = save_index(&v, err, errlen);
	if (r < 0)
		goto out;
	if (mem_id) {	/* nothing names them any more */
		g_autofree char *state = snap_memory_path(name, mem_id, "state");
		g_autofree char *ram = snap_memory_path(name, mem_id, "ram");
		struct stat st;

		unlink(state);
		if (lstat(ram, &st) == 0 && unlink(ram) == 0)
			*freed += (unsigned long long)st.st_blocks * 512;
	}
	g_hash_table_remove_all(used);			/* 3 */
	g_hash_table_remove_all(edges);
	if (used_images(&v, used, NULL) < 0)
		goto out;	/* left for the next command's collection */
	for (guint f = 0; f < frozen->len; f++) {
		const char *p = frozen->pdata[f];
		size_t n = strlen(v.dir);
		struct stat st;

		/* Only what is ours: an image outside the VM's folder (the
		 * user's own) stays. */
		if (g_hash_table_contains(used, p) || strncmp(p, v.dir, n) || p[n] != '/' ||
		    lstat(p, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (unlink(p) == 0)
			*freed += (unsigned long long)st.st_blocks * 512;
	}
	collect_garbage(&v);
out:
	g_ptr_array_set_size(kids, 0);	/* closed while the folder is locked */
	vm_close(&v);
	return r;
}
