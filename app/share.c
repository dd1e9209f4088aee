/* SPDX-License-Identifier: MIT */
/*
 * app/share.c - --share values and vm.conf [shareN] groups (share.h).
 */
#include "share.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

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
	g_autofree char *path = NULL, *tag = NULL;
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
}
