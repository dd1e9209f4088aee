/* SPDX-License-Identifier: MIT */
/* tests/unit/test_snaplib.c - the snapshot index's pure parts
 * (app/snaplib.c): index.json parsing and every refusal, the round trip,
 * the tree's depth-first order, and what deleting a snapshot does to the
 * tree (children to the parent, current to the parent) whatever its shape. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "snaplib.h"

static char err[512];

#define U(n) "00000000-0000-4000-8000-00000000000" #n
#define SNAP(n, tag, parent) \
	"{\"id\":\"" U(n) "\",\"tag\":\"" tag "\",\"parent\":" parent \
	",\"created\":\"2025-01-01T00:00:00Z\",\"description\":null,\"has_memory\":false," \
	"\"disks\":[{\"disk\":\"disk0\",\"image\":\"snapshots/x" #n ".qcow2\"}]}"

/*   a(1) -+- b(2) -- d(4)
 *         +- c(3)          e(5) a second root; current = d */
static const char *const tree =
	"{\"version\":1,\"current\":\"" U(4) "\",\"snapshots\":["
	SNAP(1, "a", "null") "," SNAP(2, "b", "\"" U(1) "\"") ","
	SNAP(3, "c", "\"" U(1) "\"") "," SNAP(4, "d", "\"" U(2) "\"") ","
	SNAP(5, "e", "null") "]}";

static int parse(const char *text, struct snap_index *ix)
{
	err[0] = 0;
	return snap_index_parse(text, strlen(text), ix, err, sizeof(err));
}

static const char *order_str(const struct snap_index *ix)
{
	static char buf[128];
	g_autoptr(GArray) depths = NULL;
	g_autoptr(GPtrArray) o = snap_tree_order(ix, &depths);

	buf[0] = 0;
	for (guint i = 0; i < o->len; i++) {
		char one[32];

		snprintf(one, sizeof(one), "%s%s%u", i ? " " : "",
			 ((struct snap *)o->pdata[i])->tag, g_array_index(depths, guint, i));
		g_strlcat(buf, one, sizeof(buf));
	}
	return buf;
}

static void test_parse_and_order(void)
{
	struct snap_index ix, ix2;
	g_autofree char *json = NULL;

	CHECK_EQ(parse(tree, &ix), 0);
	CHECK_EQ(ix.snaps->len, 5);
	CHECK(!strcmp(ix.current, U(4)));
	CHECK(!strcmp(order_str(&ix), "a0 b1 d2 c1 e0"));
	CHECK(snap_find_tag(&ix, "c") && !strcmp(snap_find_tag(&ix, "c")->id, U(3)));
	CHECK(!snap_find_tag(&ix, "zz"));
	CHECK(!strcmp(snap_find_id(&ix, U(2))->disk[0].image, "snapshots/x2.qcow2"));
	/* The round trip keeps everything. */
	json = snap_index_to_json(&ix);
	CHECK_EQ(parse(json, &ix2), 0);
	CHECK(!strcmp(order_str(&ix2), "a0 b1 d2 c1 e0"));
	CHECK(!strcmp(ix2.current, U(4)));
	snap_index_clear(&ix2);
	snap_index_clear(&ix);
	CHECK_EQ(parse("{\"version\":1,\"current\":null,\"snapshots\":[]}", &ix), 0);
	CHECK(!strcmp(order_str(&ix), ""));
	snap_index_clear(&ix);
}

static void test_refusals(void)
{
	static const char *const bad[] = {
		"", "[]", "{\"version\":2,\"snapshots\":[]}", "{\"version\":1}",
		"{\"version\":1,\"snapshots\":[1]}",
		/* unknown current, unknown parent, a loop, doubles */
		"{\"version\":1,\"current\":\"" U(9) "\",\"snapshots\":[" SNAP(1, "a", "null") "]}",
		"{\"version\":1,\"snapshots\":[" SNAP(1, "a", "\"" U(9) "\"") "]}",
		"{\"version\":1,\"snapshots\":[" SNAP(1, "a", "\"" U(2) "\"") ","
			SNAP(2, "b", "\"" U(1) "\"") "]}",
		"{\"version\":1,\"snapshots\":[" SNAP(1, "a", "null") "," SNAP(1, "b", "null") "]}",
		"{\"version\":1,\"snapshots\":[" SNAP(1, "a", "null") "," SNAP(2, "a", "null") "]}",
		/* a bad tag, id, disk group */
		"{\"version\":1,\"snapshots\":[" SNAP(1, "a/b", "null") "]}",
		"{\"version\":1,\"snapshots\":[{\"id\":\"x\",\"tag\":\"a\",\"created\":\"t\",\"disks\":[]}]}",
		"{\"version\":1,\"snapshots\":[{\"id\":\"" U(1) "\",\"tag\":\"a\",\"created\":\"t\","
			"\"disks\":[{\"disk\":\"disk9\",\"image\":\"x\"}]}]}",
		"{\"version\":1,\"snapshots\":[{\"id\":\"" U(1) "\",\"tag\":\"a\",\"created\":\"t\","
			"\"disks\":[{\"disk\":\"disk0\",\"image\":\"x\"},{\"disk\":\"disk0\",\"image\":\"y\"}]}]}",
		"{\"version\":1,\"snapshots\":[{\"id\":\"" U(1) "\",\"tag\":\"a\",\"created\":\"t\","
			"\"has_memory\":1,\"disks\":[]}]}",
	};

	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		struct snap_index ix;

		if (parse(bad[i], &ix) != -EINVAL || !err[0] || strchr(err, '\n'))
			fprintf(stderr, "accepted or badly refused: %s (%s)\n", bad[i], err);
		CHECK(err[0] != 0 && !strchr(err, '\n'));
		CHECK(ix.snaps == NULL);
	}
}

/* Delete each snapshot of the tree in turn, from a fresh copy. */
static void test_remove(void)
{
	static const struct {
		const char *tag, *order, *current;
	} cases[] = {
		{ "a", "b0 d1 c0 e0", U(4) },	/* a root with two children */
		{ "b", "a0 c1 d1 e0", U(4) },	/* one child (siblings: creation order) */
		{ "d", "a0 b1 c1 e0", U(2) },	/* the current leaf: current goes up */
		{ "c", "a0 b1 d2 e0", U(4) },	/* a leaf */
		{ "e", "a0 b1 d2 c1", U(4) },	/* a lone root */
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct snap_index ix;

		CHECK_EQ(parse(tree, &ix), 0);
		snap_index_remove(&ix, snap_find_tag(&ix, cases[i].tag));
		CHECK_EQ(ix.snaps->len, 4);
		if (strcmp(order_str(&ix), cases[i].order))
			fprintf(stderr, "delete %s: %s\n", cases[i].tag, order_str(&ix));
		CHECK(!strcmp(order_str(&ix), cases[i].order));
		CHECK(!g_strcmp0(ix.current, cases[i].current));
		snap_index_clear(&ix);
	}
	/* Down to nothing: current ends NULL. */
	{
		struct snap_index ix;

		CHECK_EQ(parse(tree, &ix), 0);
		for (const char *t = "dbaec"; *t; t++) {
			char tag[2] = { *t, 0 };

			snap_index_remove(&ix, snap_find_tag(&ix, tag));
		}
		CHECK_EQ(ix.snaps->len, 0);
		CHECK(ix.current == NULL);
		snap_index_clear(&ix);
	}
}

static void test_tags(void)
{
	CHECK_EQ(snap_tag_check("before-upgrade_1.2+x", err, sizeof(err)), 0);
	CHECK_EQ(snap_tag_check("", err, sizeof(err)), -EINVAL);
	CHECK(!strcmp(err, "a snapshot tag cannot be empty"));
	CHECK_EQ(snap_tag_check("a b", err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "snapshot tag 'a b'") != NULL);
	CHECK_EQ(snap_tag_check("-x", err, sizeof(err)), -EINVAL);
	/* The VM name rules kept their words. */
	CHECK_EQ(vm_name_check("", err, sizeof(err)), -EINVAL);
	CHECK(!strcmp(err, "a VM name cannot be empty"));
}

int main(void)
{
	RUN_TEST(test_parse_and_order);
	RUN_TEST(test_refusals);
	RUN_TEST(test_remove);
	RUN_TEST(test_tags);
	return check_finish();
}
