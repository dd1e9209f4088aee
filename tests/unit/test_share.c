/* SPDX-License-Identifier: MIT */
/* tests/unit/test_share.c - a VM's shared folders on the library side
 * (app/share.c): --share values, [shareN] groups with guest-path, the
 * `vivarium share add|remove` edits of vm.conf and their refusals (each
 * leaving the key file unchanged), and the check of a saved machine state's
 * virtio-9p devices against the shares a VM has now. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "check.h"
#include "share.h"
#include "snaplib.h"
#include "snapshot/statefile.h"
#include "virtio/virtio_9p.h"
#include "vmlib.h"

static char err[512];
static char *tmp;		/* a scratch folder: src/, data/, file */

static char *in_tmp(const char *name)
{
	return g_build_filename(tmp, name, NULL);
}

static void setup(void)
{
	g_autofree char *src = NULL, *data = NULL, *file = NULL;

	tmp = g_dir_make_tmp("vivarium-share-XXXXXX", NULL);
	CHECK(tmp != NULL);
	src = in_tmp("src");
	data = in_tmp("my data");
	file = in_tmp("file");
	CHECK_EQ(g_mkdir(src, 0700), 0);
	CHECK_EQ(g_mkdir(data, 0700), 0);
	CHECK(g_file_set_contents(file, "x", 1, NULL));
}

static void test_guest_path(void)
{
	static const char *const bad[] = {
		"", "mnt/x", "/", "//", "/etc", "/etc/", "//usr", "/mnt", "/home",
		"/mnt/../etc", "/mnt/./x", "/mnt/x\n", "/mnt/\x01", "/mnt/\xc3\xa9",
		"/mnt/a\\b",
	};
	char *out = NULL;
	g_autofree char *longp = g_strnfill(SHARE_GUEST_PATH_MAX + 1, 'a');

	longp[0] = '/';
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		err[0] = 0;
		CHECK_EQ(share_guest_path_check(bad[i], &out, err, sizeof(err)), -EINVAL);
		CHECK(out == NULL);
		CHECK(err[0] && !strchr(err, '\n'));
	}
	CHECK_EQ(share_guest_path_check(longp, &out, err, sizeof(err)), -EINVAL);
	CHECK_EQ(share_guest_path_check("//mnt//src/", &out, err, sizeof(err)), 0);
	CHECK(out && !strcmp(out, "/mnt/src"));
	g_free(out);
	CHECK_EQ(share_guest_path_check("/home/me/My Src", &out, err, sizeof(err)), 0);
	CHECK(out && !strcmp(out, "/home/me/My Src"));
	g_free(out);
	CHECK_EQ(share_guest_path_check("/etcetera", &out, err, sizeof(err)), 0);
	g_free(out);
}

static void test_keyfile_roundtrip(void)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	struct share_spec s = { 0 };
	g_autofree char *gp = NULL, *v = NULL;

	CHECK(g_key_file_load_from_data(kf,
		"[share2]\npath=/srv/x\ntag=x\nguest-path=/data//x/\n", -1, 0, NULL));
	CHECK_EQ(share_spec_from_keyfile(kf, "share2", &s, err, sizeof(err)), 0);
	CHECK(s.guest_path && !strcmp(s.guest_path, "/data/x"));	/* normalised */
	gp = share_guest_path(&s);
	CHECK(!strcmp(gp, "/data/x"));
	share_spec_to_keyfile(&s, kf, "share2");
	v = g_key_file_get_string(kf, "share2", "guest-path", NULL);
	CHECK(v && !strcmp(v, "/data/x"));
	/* Unset: the default, /mnt/TAG, and no key written. */
	g_free(s.guest_path);
	s.guest_path = NULL;
	g_free(gp);
	gp = share_guest_path(&s);
	CHECK(!strcmp(gp, "/mnt/x"));
	share_spec_to_keyfile(&s, kf, "share2");
	CHECK(!g_key_file_has_key(kf, "share2", "guest-path", NULL));
	share_spec_clear(&s);

	CHECK(g_key_file_load_from_data(kf, "[share0]\npath=/srv/x\nguest-path=/etc\n", -1, 0, NULL));
	err[0] = 0;
	CHECK_EQ(share_spec_from_keyfile(kf, "share0", &s, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "[share0]") && strstr(err, "/etc"));
	CHECK(g_key_file_load_from_data(kf, "[share0]\npath=/srv/x\nguest-path=rel\n", -1, 0, NULL));
	CHECK_EQ(share_spec_from_keyfile(kf, "share0", &s, err, sizeof(err)), -EINVAL);

	/* Through the whole vm.conf: guest-path survives a parse and a write. */
	{
		struct vm_config c;
		g_autoptr(GKeyFile) k2 = g_key_file_new();
		g_autofree char *out = NULL;

		CHECK(g_key_file_load_from_data(kf,
			"[vm]\nname=t\n[share1]\npath=/srv/a\nguest-path=/data/a\n[share3]\npath=/srv/b\nreadonly=true\n",
			-1, 0, NULL));
		CHECK_EQ(vm_config_from_keyfile(kf, "/lib/vms/t", &c, err, sizeof(err)), 0);
		CHECK_EQ(c.nshares, 2);
		CHECK(!strcmp(c.share[0].tag, "a") && !strcmp(c.share[0].guest_path, "/data/a"));
		CHECK(!strcmp(c.share[1].tag, "b") && c.share[1].readonly && !c.share[1].guest_path);
		vm_config_to_keyfile(&c, "/lib/vms/t", k2);
		out = g_key_file_get_string(k2, "share0", "guest-path", NULL);
		CHECK(out && !strcmp(out, "/data/a"));
		CHECK(!g_key_file_has_key(k2, "share1", "guest-path", NULL));
		vm_config_clear(&c);
	}
}

/* share_keyfile_add() of folder @dir (in tmp) with @tag (NULL: default)
 * and @guest (may be NULL). */
static int add(GKeyFile *kf, const char *dir, const char *tag, bool ro,
	       const char *guest)
{
	struct share_spec s = { .readonly = ro };
	int r;

	s.path = in_tmp(dir);
	if (tag)
		snprintf(s.tag, sizeof(s.tag), "%s", tag);
	else
		share_default_tag(s.path, s.tag);
	s.guest_path = g_strdup(guest);
	err[0] = 0;
	r = share_keyfile_add(kf, &s, err, sizeof(err));
	share_spec_clear(&s);
	return r;
}

static char *before;		/* the key file before a refused edit */

static void remember(GKeyFile *kf)
{
	g_free(before);
	before = g_key_file_to_data(kf, NULL, NULL);
}

/* @r must be @want with one line in err naming @needle, and @kf as it
 * was at remember(). */
static void refused(GKeyFile *kf, int r, int want, const char *needle)
{
	g_autofree char *now = g_key_file_to_data(kf, NULL, NULL);

	CHECK_EQ(r, want);
	CHECK(err[0] && !strchr(err, '\n'));
	CHECK(!needle || strstr(err, needle));
	CHECK(!strcmp(before, now));
}

static void test_add_remove(void)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autofree char *v = NULL, *text = NULL;
	struct vm_config c;

	CHECK(g_key_file_load_from_data(kf, "# mine\n[vm]\nname=t\n", -1,
					G_KEY_FILE_KEEP_COMMENTS, NULL));
	CHECK_EQ(add(kf, "src", NULL, false, NULL), 0);		/* [share0] */
	v = g_key_file_get_string(kf, "share0", "tag", NULL);
	CHECK(v && !strcmp(v, "src"));
	CHECK(!g_key_file_has_key(kf, "share0", "guest-path", NULL));
	/* "my data": the default tag has the space made '_'. */
	CHECK_EQ(add(kf, "my data", NULL, true, "/data"), 1);
	g_free(v);
	v = g_key_file_get_string(kf, "share1", "tag", NULL);
	CHECK(v && !strcmp(v, "my_data"));
	CHECK(g_key_file_get_boolean(kf, "share1", "readonly", NULL));

	remember(kf);
	refused(kf, add(kf, "src", NULL, false, NULL), -EEXIST, "tag 'src'");
	refused(kf, add(kf, "src", "other", false, "/data"), -EEXIST, "/data");
	refused(kf, add(kf, "src", "other", false, "/mnt/src"), -EEXIST, "'src'");
	refused(kf, add(kf, "nonexistent", "n", false, NULL), -ENOENT, "nonexistent");
	refused(kf, add(kf, "file", "f", false, NULL), -ENOTDIR, "not a folder");
	refused(kf, add(kf, "src", "a b", false, NULL), -EINVAL, "tag 'a b'");
	refused(kf, add(kf, "src", "", false, NULL), -EINVAL, NULL);
	refused(kf, add(kf, "src", "x", false, "/etc"), -EINVAL, "/etc");
	refused(kf, add(kf, "src", "x", false, "/mnt//x"), -EINVAL, "/mnt/x");
	refused(kf, add(kf, "src", "x", false, "relative"), -EINVAL, NULL);

	CHECK_EQ(add(kf, "src", "t2", false, NULL), 2);
	CHECK_EQ(add(kf, "src", "t3", false, NULL), 3);
	remember(kf);
	refused(kf, add(kf, "src", "t4", false, NULL), -ENOSPC, "remove one");

	/* The whole file still parses, comments kept, four shares in order. */
	CHECK_EQ(vm_config_from_keyfile(kf, "/lib/vms/t", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.nshares, 4);
	CHECK(!strcmp(c.share[3].tag, "t3"));
	CHECK(share_specs_check(c.share, c.nshares, err, sizeof(err)) == 0);
	vm_config_clear(&c);
	text = g_key_file_to_data(kf, NULL, NULL);
	CHECK(strstr(text, "# mine") != NULL);

	/* remove: the group goes; its number is the next add's. */
	remember(kf);
	refused(kf, share_keyfile_remove(kf, "nope", err, sizeof(err)), -ENOENT,
		"'src', 'my_data', 't2', 't3'");
	CHECK_EQ(share_keyfile_remove(kf, "my_data", err, sizeof(err)), 1);
	CHECK(!g_key_file_has_group(kf, "share1"));
	CHECK(g_key_file_has_group(kf, "share0") && g_key_file_has_group(kf, "share2"));
	CHECK_EQ(vm_config_from_keyfile(kf, "/lib/vms/t", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.nshares, 3);
	vm_config_clear(&c);
	/* Its tag and guest path are free again. */
	CHECK_EQ(add(kf, "my data", "my_data", false, "/data"), 1);
	for (unsigned i = 0; i < 4; i++) {
		g_autofree char *g = g_strdup_printf("share%u", i);
		g_autofree char *t = g_key_file_get_string(kf, g, "tag", NULL);

		CHECK(t != NULL);
		CHECK(share_keyfile_remove(kf, t, err, sizeof(err)) == (int)i);
	}
	remember(kf);
	refused(kf, share_keyfile_remove(kf, "src", err, sizeof(err)), -ENOENT, "has none");

	/* A group that does not parse refuses the edit rather than being
	 * overwritten or ignored. */
	CHECK(g_key_file_load_from_data(kf, "[vm]\nname=t\n[share0]\ntag=x\n", -1, 0, NULL));
	remember(kf);
	refused(kf, add(kf, "src", NULL, false, NULL), -EINVAL, "[share0]");
}

/* A virtio-9p section's payload: VIRTIO_9P_STATE_TYPE with every value
 * zero or empty but the tag and readonly flag. */
static GVariant *zero_of(const GVariantType *t)
{
	if (g_variant_type_is_tuple(t)) {
		GPtrArray *kids = g_ptr_array_new();
		GVariant *v;

		for (const GVariantType *k = g_variant_type_first(t); k;
		     k = g_variant_type_next(k))
			g_ptr_array_add(kids, zero_of(k));
		v = g_variant_new_tuple((GVariant **)kids->pdata, kids->len);
		g_ptr_array_free(kids, TRUE);
		return v;
	}
	if (g_variant_type_is_array(t))
		return g_variant_new_array(g_variant_type_element(t), NULL, 0);
	switch (g_variant_type_peek_string(t)[0]) {
	case 'y': return g_variant_new_byte(0);
	case 'b': return g_variant_new_boolean(FALSE);
	case 'q': return g_variant_new_uint16(0);
	case 'u': return g_variant_new_uint32(0);
	case 't': return g_variant_new_uint64(0);
	case 's': return g_variant_new_string("");
	}
	CHECK(!"a type the test does not know");
	return g_variant_new_byte(0);
}

static GVariant *v9p_state(const char *tag, bool ro)
{
	GVariant *z = g_variant_ref_sink(zero_of(G_VARIANT_TYPE(VIRTIO_9P_STATE_TYPE)));
	GVariant *kids[4] = {
		g_variant_get_child_value(z, 0), g_variant_new_string(tag),
		g_variant_new_boolean(ro), g_variant_get_child_value(z, 3),
	};
	GVariant *v;

	CHECK_EQ(g_variant_n_children(z), 4);
	v = g_variant_new_tuple(kids, 4);
	g_variant_unref(kids[0]);
	g_variant_unref(kids[3]);
	g_variant_unref(z);
	CHECK(g_variant_is_of_type(v, G_VARIANT_TYPE(VIRTIO_9P_STATE_TYPE)));
	return v;
}

/* A state file as machine_save() lays it out: other devices around the
 * virtio-9p sections "virtio-9p", "virtio-9p.1"... in device order. */
static char *write_state(unsigned n, const char *const *tags, const bool *ro)
{
	struct statefile *sf = statefile_new(0x1234);
	char *path = in_tmp("test.state");

	CHECK_EQ(statefile_put(sf, "pic", 1, g_variant_new_uint32(7)), 0);
	for (unsigned i = 0; i < n; i++) {
		char id[32];

		snprintf(id, sizeof(id), i ? "virtio-9p.%u" : "virtio-9p", i);
		CHECK_EQ(statefile_put(sf, id, 1, v9p_state(tags[i], ro[i])), 0);
	}
	/* Not a 9p device, though its name starts alike. */
	CHECK_EQ(statefile_put(sf, "virtio-9px", 1, g_variant_new_string("zz")), 0);
	CHECK_EQ(statefile_put(sf, "cpu.0", 1, g_variant_new_uint32(1)), 0);
	CHECK_EQ(statefile_save(sf, path, err, sizeof(err)), 0);
	statefile_free(sf);
	return path;
}

static void test_state_check(void)
{
	static const char *const tags[] = { "src", "data" };
	static const bool ro[] = { true, false };
	struct share_spec s[2] = {
		{ .path = (char *)"/x", .tag = "src", .readonly = true },
		{ .path = (char *)"/y", .tag = "data" },
	};
	g_autofree char *path = write_state(2, tags, ro);
	g_autofree char *none = NULL, *missing = in_tmp("no.state");

	CHECK_EQ(share_state_check(path, s, 2, err, sizeof(err)), 0);
	/* Another host folder under the same tag: the device loads it (its
	 * fids come back stale where the files differ). */
	s[1].path = (char *)"/elsewhere";
	CHECK_EQ(share_state_check(path, s, 2, err, sizeof(err)), 0);

	/* A share removed since. */
	err[0] = 0;
	CHECK_EQ(share_state_check(path, s, 1, err, sizeof(err)), -ESTALE);
	CHECK(strstr(err, "the shared folders 'src' (readonly), 'data'") != NULL);
	CHECK(strstr(err, "now has the shared folder 'src' (readonly)") != NULL);
	CHECK(!strchr(err, '\n'));
	/* None now. */
	CHECK_EQ(share_state_check(path, s, 0, err, sizeof(err)), -ESTALE);
	CHECK(strstr(err, "now has no shared folder") != NULL);
	/* readonly changed, tags swapped, a tag renamed. */
	s[0].readonly = false;
	CHECK_EQ(share_state_check(path, s, 2, err, sizeof(err)), -ESTALE);
	s[0].readonly = true;
	{
		struct share_spec sw[2] = { s[1], s[0] };

		CHECK_EQ(share_state_check(path, sw, 2, err, sizeof(err)), -ESTALE);
	}
	snprintf(s[1].tag, sizeof(s[1].tag), "data2");
	CHECK_EQ(share_state_check(path, s, 2, err, sizeof(err)), -ESTALE);
	snprintf(s[1].tag, sizeof(s[1].tag), "data");

	/* A state without shares, and a VM with one added since. */
	none = write_state(0, NULL, NULL);
	CHECK_EQ(share_state_check(none, s, 0, err, sizeof(err)), 0);
	CHECK_EQ(share_state_check(none, s, 1, err, sizeof(err)), -ESTALE);
	CHECK(strstr(err, "saved with no shared folder") != NULL);

	/* No file; not a state file; a 9p section of another shape. */
	CHECK_EQ(share_state_check(missing, s, 2, err, sizeof(err)), -ENOENT);
	CHECK(g_file_set_contents(missing, "not a state", -1, NULL));
	CHECK(share_state_check(missing, s, 2, err, sizeof(err)) < 0);
	{
		struct statefile *sf = statefile_new(1);

		CHECK_EQ(statefile_put(sf, "virtio-9p", 1,
				       g_variant_new("(uub)", 1u, 2u, TRUE)), 0);
		CHECK_EQ(statefile_save(sf, missing, err, sizeof(err)), 0);
		statefile_free(sf);
		err[0] = 0;
		CHECK_EQ(share_state_check(missing, s, 2, err, sizeof(err)), -EPROTO);
		CHECK(strstr(err, "virtio-9p") != NULL);
	}
}

/* snap_shares_check() on a library VM with a snapshot that has memory
 * (its state file as above) and one that has not. */
static void test_snapshot_revert_check(void)
{
	static const char *const tags[] = { "src" };
	static const bool ro[] = { false };
	static const char id[] = "0b0e7ad8-5f7c-4d3e-9a43-0ad2b6c1f001";
	static const char id2[] = "0b0e7ad8-5f7c-4d3e-9a43-0ad2b6c1f002";
	g_autofree char *lib = in_tmp("data"), *dir = NULL, *snaps = NULL;
	g_autofree char *index = NULL, *state = NULL, *made = NULL;
	struct share_spec s[1] = { { .path = (char *)"/x", .tag = "src" } };

	g_setenv("XDG_DATA_HOME", lib, TRUE);
	dir = vmlib_vm_dir("t");
	snaps = g_build_filename(dir, SNAP_DIR, NULL);
	CHECK_EQ(g_mkdir_with_parents(snaps, 0700), 0);
	{
		g_autofree char *conf = g_build_filename(dir, VM_CONF_FILE, NULL);

		CHECK(g_file_set_contents(conf, "[vm]\nname=t\n", -1, NULL));
	}
	index = g_strdup_printf(
		"{\"version\":1,\"current\":\"%s\",\"snapshots\":["
		"{\"id\":\"%s\",\"tag\":\"running\",\"parent\":null,\"created\":\"2026-01-01T00:00:00Z\","
		"\"description\":null,\"has_memory\":true,\"disks\":[]},"
		"{\"id\":\"%s\",\"tag\":\"disks\",\"parent\":\"%s\",\"created\":\"2026-01-01T00:00:01Z\","
		"\"description\":null,\"has_memory\":false,\"disks\":[]}]}",
		id2, id, id2, id);
	{
		g_autofree char *ixp = vmlib_vm_file("t", SNAP_INDEX_FILE);

		CHECK(g_file_set_contents(ixp, index, -1, NULL));
	}
	made = write_state(1, tags, ro);
	state = snap_memory_path("t", id, "state");
	CHECK_EQ(rename(made, state), 0);

	CHECK_EQ(snap_shares_check("t", "running", s, 1, err, sizeof(err)), 0);
	err[0] = 0;
	CHECK_EQ(snap_shares_check("t", "running", s, 0, err, sizeof(err)), -ESTALE);
	CHECK(strstr(err, "cannot revert VM 't' to snapshot 'running'") &&
	      strstr(err, "saved with the shared folder 'src'") &&
	      strstr(err, "now has no shared folder"));
	snprintf(s[0].tag, sizeof(s[0].tag), "other");
	CHECK_EQ(snap_shares_check("t", "running", s, 1, err, sizeof(err)), -ESTALE);
	/* No memory: the VM boots with what it has now.  No such snapshot:
	 * the revert says so itself. */
	CHECK_EQ(snap_shares_check("t", "disks", s, 1, err, sizeof(err)), 0);
	CHECK_EQ(snap_shares_check("t", "nosuch", s, 1, err, sizeof(err)), 0);
	CHECK_EQ(snap_shares_check("nosuchvm", "running", s, 1, err, sizeof(err)), 0);
}

int main(void)
{
	setup();
	RUN_TEST(test_guest_path);
	RUN_TEST(test_keyfile_roundtrip);
	RUN_TEST(test_add_remove);
	RUN_TEST(test_state_check);
	RUN_TEST(test_snapshot_revert_check);
	vmlib_remove_tree(tmp);
	g_free(tmp);
	g_free(before);
	return check_finish();
}
