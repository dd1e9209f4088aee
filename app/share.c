/* SPDX-License-Identifier: MIT */
/*
 * app/share.c - --share values and vm.conf [shareN] groups (share.h).
 */
#include "share.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "snapshot/statefile.h"
#include "virtio/virtio_9p.h"

_Static_assert(SHARE_TAG_MAX == VIRTIO_9P_TAG_MAX, "one tag length");

void share_default_tag(const char *path, char *tag)
{
	g_autofree char *base = g_path_get_basename(path);
	size_t n = 0;

	for (const char *p = base; *p && n < SHARE_TAG_MAX; p++) {
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';

		tag[n++] = ok ? c : '_';
	}
	tag[n] = '\0';
	/* "/", ".", "..": no name worth keeping. */
	if (!n || !strcmp(tag, ".") || !strcmp(tag, "..") || !strcmp(tag, "_"))
		snprintf(tag, SHARE_TAG_MAX + 1, "share");
}

void share_spec_clear(struct share_spec *s)
{
	g_free(s->path);
	g_free(s->guest_path);
	memset(s, 0, sizeof(*s));
}

static int set_tag(struct share_spec *s, const char *v, char *err, size_t errlen)
{
	if (!virtio_9p_tag_ok(v)) {
		snprintf(err, errlen, "tag '%s': use 1-%d characters of A-Z a-z 0-9 _ . -",
			 v, SHARE_TAG_MAX);
		return -EINVAL;
	}
	snprintf(s->tag, sizeof(s->tag), "%s", v);
	return 0;
}

int share_spec_parse(const char *spec, struct share_spec *out, char *err,
		     size_t errlen)
{
	g_auto(GStrv) tok = g_strsplit(spec, ",", -1);
	struct share_spec s = { 0 };
	bool have_tag = false;

	if (!tok[0] || !tok[0][0]) {
		snprintf(err, errlen, "--share %s: give the host folder first", spec);
		return -EINVAL;
	}
	for (unsigned i = 1; tok[i]; i++) {
		const char *t = tok[i];

		if (!strcmp(t, "readonly") || !strcmp(t, "ro")) {
			s.readonly = true;
		} else if (!strncmp(t, "tag=", 4)) {
			char e[200];

			if (set_tag(&s, t + 4, e, sizeof(e)) < 0) {
				snprintf(err, errlen, "--share %s: %s", spec, e);
				return -EINVAL;
			}
			have_tag = true;
		} else {
			snprintf(err, errlen, "--share %s: unknown item '%s' (tag=NAME, readonly)",
				 spec, t);
			return -EINVAL;
		}
	}
	s.path = g_canonicalize_filename(tok[0], NULL);
	if (!have_tag)
		share_default_tag(s.path, s.tag);
	*out = s;
	return 0;
}

int share_specs_check(const struct share_spec *s, unsigned n, char *err,
		      size_t errlen)
{
	if (n > MACHINE_MAX_SHARES) {
		snprintf(err, errlen, "at most %u shared folders", MACHINE_MAX_SHARES);
		return -EINVAL;
	}
	for (unsigned i = 0; i < n; i++) {
		struct stat st;

		if (stat(s[i].path, &st) < 0) {
			int e = errno;

			snprintf(err, errlen, "shared folder '%s': %s", s[i].path,
				 strerror(e));
			return -e;
		}
		if (!S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "shared folder '%s' is not a folder",
				 s[i].path);
			return -ENOTDIR;
		}
		for (unsigned k = 0; k < i; k++) {
			if (!strcmp(s[k].tag, s[i].tag)) {
				snprintf(err, errlen, "shared folders '%s' and '%s' both have the tag '%s' (give one tag=NAME)",
					 s[k].path, s[i].path, s[i].tag);
				return -EINVAL;
			}
		}
	}
	return 0;
}

char *share_guest_path(const struct share_spec *s)
{
	if (s->guest_path)
		return g_strdup(s->guest_path);
	return g_strdup_printf("%s/%s", SHARE_GUEST_PATH_DIR, s->tag);
}

/* What a mount over would hide, breaking the guest. */
static const char *const guest_system_dirs[] = {
	"/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32",
	"/proc", "/root", "/run", "/sbin", "/sys", "/tmp", "/usr", "/var",
	"/home", "/mnt", "/media", "/opt", "/srv",
};

int share_guest_path_check(const char *path, char **out, char *err,
			   size_t errlen)
{
	g_auto(GStrv) parts = NULL;
	GString *norm;

	*out = NULL;
	if (!path || path[0] != '/') {
		snprintf(err, errlen, "guest path '%s': give an absolute path in the guest (e.g. /mnt/src)",
			 path ? path : "");
		return -EINVAL;
	}
	if (strlen(path) > SHARE_GUEST_PATH_MAX) {
		snprintf(err, errlen, "guest path '%.32s...' is longer than %d characters",
			 path, SHARE_GUEST_PATH_MAX);
		return -EINVAL;
	}
	for (const char *p = path; *p; p++) {
		if (*p < 0x20 || *p > 0x7e || *p == '\\') {
			g_autofree char *shown = g_strescape(path, NULL);

			snprintf(err, errlen, "guest path '%s': use printable ASCII characters other than \\",
				 shown);
			return -EINVAL;
		}
	}
	norm = g_string_new(NULL);
	parts = g_strsplit(path, "/", -1);
	for (char **c = parts; *c; c++) {
		if (!**c)
			continue;
		if (!strcmp(*c, ".") || !strcmp(*c, "..")) {
			snprintf(err, errlen, "guest path '%s': no . or .. in it", path);
			g_string_free(norm, TRUE);
			return -EINVAL;
		}
		g_string_append_c(norm, '/');
		g_string_append(norm, *c);
	}
	for (size_t i = 0; i <= G_N_ELEMENTS(guest_system_dirs); i++) {
		const char *d = i < G_N_ELEMENTS(guest_system_dirs) ? guest_system_dirs[i] : "";

		if (!strcmp(norm->str, d)) {
			snprintf(err, errlen, "guest path '%s': a share mounted there would hide the guest's own %s; use a folder below it (e.g. /mnt/NAME)",
				 path, *d ? d : "/");
			g_string_free(norm, TRUE);
			return -EINVAL;
		}
	}
	*out = g_string_free(norm, FALSE);
	return 0;
}

struct machine_share share_to_machine(const struct share_spec *s)
{
	return (struct machine_share){
		.path = s->path, .tag = s->tag, .readonly = s->readonly,
	};
}

int share_spec_from_keyfile(GKeyFile *kf, const char *group,
			    struct share_spec *out, char *err, size_t errlen)
{
	struct share_spec s = { 0 };
	g_autofree char *path = NULL, *tag = NULL, *gp = NULL;
	GError *gerr = NULL;
	char e[200];

	if (!g_key_file_has_group(kf, group))
		return -ENOENT;
	path = g_key_file_get_string(kf, group, "path", NULL);
	if (!path || !path[0] || path[0] != '/') {
		snprintf(err, errlen, "vm.conf [%s]: path: give the host folder's absolute path",
			 group);
		return -EINVAL;
	}
	tag = g_key_file_get_string(kf, group, "tag", NULL);
	if (tag && set_tag(&s, tag, e, sizeof(e)) < 0) {
		snprintf(err, errlen, "vm.conf [%s]: %s", group, e);
		return -EINVAL;
	}
	s.readonly = g_key_file_get_boolean(kf, group, "readonly", &gerr);
	if (gerr) {
		bool absent = g_error_matches(gerr, G_KEY_FILE_ERROR,
					      G_KEY_FILE_ERROR_KEY_NOT_FOUND);

		g_error_free(gerr);
		if (!absent) {
			snprintf(err, errlen, "vm.conf [%s]: readonly: use true or false",
				 group);
			return -EINVAL;
		}
	}
	gp = g_key_file_get_string(kf, group, "guest-path", NULL);
	if (gp && share_guest_path_check(gp, &s.guest_path, e, sizeof(e)) < 0) {
		snprintf(err, errlen, "vm.conf [%s]: %s", group, e);
		return -EINVAL;
	}
	s.path = g_canonicalize_filename(path, NULL);
	if (!tag)
		share_default_tag(s.path, s.tag);
	*out = s;
	return 0;
}

void share_spec_to_keyfile(const struct share_spec *s, GKeyFile *kf,
			   const char *group)
{
	g_key_file_set_string(kf, group, "path", s->path);
	g_key_file_set_string(kf, group, "tag", s->tag);
	g_key_file_set_boolean(kf, group, "readonly", s->readonly);
	if (s->guest_path)
		g_key_file_set_string(kf, group, "guest-path", s->guest_path);
	else
		g_key_file_remove_key(kf, group, "guest-path", NULL);
}

/* ---- the library's vm.conf ------------------------------------------------- */

/* The [shareN] groups of @kf, parsed: @have[N] tells which exist. */
static int keyfile_shares(GKeyFile *kf, struct share_spec *sh, bool *have,
			  char *err, size_t errlen)
{
	for (unsigned i = 0; i < MACHINE_MAX_SHARES; i++) {
		g_autofree char *group = g_strdup_printf("share%u", i);
		int r = share_spec_from_keyfile(kf, group, &sh[i], err, errlen);

		have[i] = r == 0;
		if (r < 0 && r != -ENOENT) {
			for (unsigned k = 0; k < i; k++)
				share_spec_clear(&sh[k]);
			return r;
		}
	}
	return 0;
}

static void shares_clear(struct share_spec *sh, const bool *have)
{
	for (unsigned i = 0; i < MACHINE_MAX_SHARES; i++)
		if (have[i])
			share_spec_clear(&sh[i]);
}

int share_keyfile_add(GKeyFile *kf, const struct share_spec *s, char *err,
		      size_t errlen)
{
	struct share_spec sh[MACHINE_MAX_SHARES] = { 0 };
	bool have[MACHINE_MAX_SHARES];
	g_autofree char *gp = share_guest_path(s);
	int r, free_n = -1;
	struct stat st;

	if (!virtio_9p_tag_ok(s->tag)) {
		snprintf(err, errlen, "tag '%s': use 1-%d characters of A-Z a-z 0-9 _ . -",
			 s->tag, SHARE_TAG_MAX);
		return -EINVAL;
	}
	if (s->guest_path) {
		g_autofree char *norm = NULL;

		r = share_guest_path_check(s->guest_path, &norm, err, errlen);
		if (r < 0)
			return r;
		if (strcmp(norm, s->guest_path)) {
			snprintf(err, errlen, "guest path '%s': write it as %s",
				 s->guest_path, norm);
			return -EINVAL;
		}
	}
	if (!s->path || s->path[0] != '/') {
		snprintf(err, errlen, "shared folder '%s': give an absolute path",
			 s->path ? s->path : "");
		return -EINVAL;
	}
	if (stat(s->path, &st) < 0) {
		r = -errno;
		snprintf(err, errlen, "shared folder '%s': %s", s->path, strerror(-r));
		return r;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "'%s' is not a folder: only a folder can be shared",
			 s->path);
		return -ENOTDIR;
	}
	r = keyfile_shares(kf, sh, have, err, errlen);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < MACHINE_MAX_SHARES; i++) {
		g_autofree char *other = NULL;

		if (!have[i]) {
			if (free_n < 0)
				free_n = (int)i;
			continue;
		}
		other = share_guest_path(&sh[i]);
		if (!strcmp(sh[i].tag, s->tag)) {
			snprintf(err, errlen, "the tag '%s' is taken by the shared folder %s: choose another tag",
				 s->tag, sh[i].path);
			r = -EEXIST;
			break;
		}
		if (!strcmp(other, gp)) {
			snprintf(err, errlen, "the guest path %s is taken by the share '%s': choose another guest path",
				 gp, sh[i].tag);
			r = -EEXIST;
			break;
		}
	}
	shares_clear(sh, have);
	if (r < 0)
		return r;
	if (free_n < 0) {
		snprintf(err, errlen, "the VM has %u shared folders already, the most it can have: remove one first",
			 MACHINE_MAX_SHARES);
		return -ENOSPC;
	}
	{
		g_autofree char *group = g_strdup_printf("share%d", free_n);

		share_spec_to_keyfile(s, kf, group);
	}
	return free_n;
}

int share_keyfile_remove(GKeyFile *kf, const char *tag, char *err,
			 size_t errlen)
{
	struct share_spec sh[MACHINE_MAX_SHARES] = { 0 };
	bool have[MACHINE_MAX_SHARES];
	g_autoptr(GString) tags = g_string_new(NULL);
	int r = keyfile_shares(kf, sh, have, err, errlen), found = -1;

	if (r < 0)
		return r;
	for (unsigned i = 0; i < MACHINE_MAX_SHARES; i++) {
		if (!have[i])
			continue;
		if (found < 0 && !strcmp(sh[i].tag, tag))
			found = (int)i;
		g_string_append_printf(tags, "%s'%s'", tags->len ? ", " : "", sh[i].tag);
	}
	shares_clear(sh, have);
	if (found < 0) {
		g_autofree char *shown = g_strescape(tag, NULL);

		if (tags->len)
			snprintf(err, errlen, "no shared folder has the tag '%s' (there are %s)",
				 shown, tags->str);
		else
			snprintf(err, errlen, "no shared folder has the tag '%s' (the VM has none)",
				 shown);
		return -ENOENT;
	}
	{
		g_autofree char *group = g_strdup_printf("share%d", found);

		g_key_file_remove_group(kf, group, NULL);
	}
	return found;
}

/* ---- shares in a saved machine state ---------------------------------------- */

/* "no shared folder", "the shared folder 'a' (readonly)", "the shared
 * folders 'a', 'b'". */
static void describe(GString *out, const char *const *tags, const bool *ro,
		     unsigned n)
{
	g_string_append(out, !n ? "no shared folder" : n == 1 ? "the shared folder "
			: "the shared folders ");
	for (unsigned i = 0; i < n; i++)
		g_string_append_printf(out, "%s'%s'%s", i ? ", " : "", tags[i],
				       ro[i] ? " (readonly)" : "");
}

int share_state_check(const char *state_path, const struct share_spec *s,
		      unsigned n, char *err, size_t errlen)
{
	const char *name = virtio_9p_device_ops.name;
	size_t name_len = strlen(name);
	struct statefile *sf = NULL;
	g_autoptr(GPtrArray) tags = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GArray) ro = g_array_new(FALSE, TRUE, sizeof(bool));
	const char *now_tags[MACHINE_MAX_SHARES];
	bool now_ro[MACHINE_MAX_SHARES];
	bool same;
	int r;

	r = statefile_load(state_path, 0, &sf, err, errlen);
	if (r < 0)
		return r;
	/* The devices' sections, in the order they were built and saved:
	 * "virtio-9p", "virtio-9p.1"... (machine_state.c). */
	for (unsigned i = 0; i < statefile_count(sf); i++) {
		const char *id = statefile_id(sf, i);
		GVariant *v, *t, *b;
		bool flag;

		if (strncmp(id, name, name_len) || (id[name_len] && id[name_len] != '.'))
			continue;
		v = statefile_get(sf, id, NULL, NULL, err, errlen);
		/* (transport, tag, readonly, server): only the first two
		 * fields after the transport are read, whatever follows. */
		if (!v || !g_variant_is_of_type(v, G_VARIANT_TYPE_TUPLE) ||
		    g_variant_n_children(v) < 3) {
			if (v)
				g_variant_unref(v);
			snprintf(err, errlen, "%s: section %s is not a shared folder's state",
				 state_path, id);
			statefile_free(sf);
			return -EPROTO;
		}
		t = g_variant_get_child_value(v, 1);
		b = g_variant_get_child_value(v, 2);
		if (!g_variant_is_of_type(t, G_VARIANT_TYPE_STRING) ||
		    !g_variant_is_of_type(b, G_VARIANT_TYPE_BOOLEAN)) {
			g_variant_unref(t);
			g_variant_unref(b);
			g_variant_unref(v);
			snprintf(err, errlen, "%s: section %s is not a shared folder's state",
				 state_path, id);
			statefile_free(sf);
			return -EPROTO;
		}
		g_ptr_array_add(tags, g_strescape(g_variant_get_string(t, NULL), NULL));
		flag = g_variant_get_boolean(b);
		g_array_append_val(ro, flag);
		g_variant_unref(t);
		g_variant_unref(b);
		g_variant_unref(v);
	}
	statefile_free(sf);
	if (n > MACHINE_MAX_SHARES)
		n = MACHINE_MAX_SHARES;
	same = tags->len == n;
	for (unsigned i = 0; i < n; i++) {
		now_tags[i] = s[i].tag;
		now_ro[i] = s[i].readonly;
		if (same && (strcmp(tags->pdata[i], s[i].tag) ||
			     g_array_index(ro, bool, i) != s[i].readonly))
			same = false;
	}
	if (!same) {
		g_autoptr(GString) msg = g_string_new("the state was saved with ");

		describe(msg, (const char *const *)tags->pdata, (const bool *)(void *)ro->data,
			 tags->len);
		g_string_append(msg, ", and the VM now has ");
		describe(msg, now_tags, now_ro, n);
		snprintf(err, errlen, "%s", msg->str);
		return -ESTALE;
	}
	return 0;
}
