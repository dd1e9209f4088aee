/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_statefile.c - the machine-state file (docs/machine-state.md):
 * round trips, and every kind of bad file refused with its own error:
 * truncated, bit-flipped, newer format, other configuration, bad ids,
 * duplicate sections, payloads not in normal form.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "snapshot/statefile.h"

#define HASH 0x1234abcd5678ef00ull

static GBytes *sample(void)
{
	struct statefile *sf = statefile_new(HASH);
	uint8_t fifo[16] = { 1, 2, 3, 4, 5 };
	GBytes *b;
	int r;

	CHECK_EQ(statefile_put(sf, "pic", 1, g_variant_new("(yyy)", 1, 2, 3)), 0);
	CHECK_EQ(statefile_put(sf, "uart.0", 2,
			       g_variant_new("(u@ay)", 77u,
					     g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, fifo,
								       sizeof(fifo), 1))), 0);
	CHECK_EQ(statefile_put(sf, "virtio-blk.1", 1, g_variant_new_string("x")), 0);
	b = statefile_serialise(sf, &r);
	CHECK(b != NULL && r == 0);
	statefile_free(sf);
	return b;
}

static void test_round_trip(void)
{
	GBytes *b = sample(), *b2;
	struct statefile *sf = NULL;
	char err[256];
	uint32_t ver = 0;
	GVariant *v;
	guint8 a, c, d;
	size_t len;
	const void *data = g_bytes_get_data(b, &len);
	int r;

	CHECK_EQ(len % 8, 0);
	CHECK_EQ(statefile_parse(data, len, HASH, &sf, err, sizeof(err)), 0);
	CHECK_EQ(statefile_count(sf), 3);
	CHECK(!strcmp(statefile_id(sf, 1), "uart.0"));
	CHECK(statefile_id(sf, 3) == NULL);
	v = statefile_get(sf, "pic", G_VARIANT_TYPE("(yyy)"), &ver, err, sizeof(err));
	CHECK(v != NULL && ver == 1);
	if (v) {
		g_variant_get(v, "(yyy)", &a, &c, &d);
		CHECK(a == 1 && c == 2 && d == 3);
		g_variant_unref(v);
	}
	/* The owner's type is enforced. */
	v = statefile_get(sf, "pic", G_VARIANT_TYPE("(yy)"), NULL, err, sizeof(err));
	CHECK(v == NULL && strstr(err, "pic"));
	CHECK(statefile_get(sf, "nosuch", NULL, NULL, err, sizeof(err)) == NULL);
	/* Parse -> serialise gives the same bytes. */
	b2 = statefile_serialise(sf, &r);
	CHECK(b2 && g_bytes_equal(b, b2));
	g_bytes_unref(b2);
	statefile_free(sf);
	/* 0: any configuration. */
	CHECK_EQ(statefile_parse(data, len, 0, &sf, err, sizeof(err)), 0);
	CHECK_EQ(statefile_config_hash(sf), HASH);
	statefile_free(sf);
	g_bytes_unref(b);
}

static void test_refusals(void)
{
	GBytes *b = sample();
	size_t len;
	const uint8_t *data = g_bytes_get_data(b, &len);
	uint8_t *buf = malloc(len);
	struct statefile *sf = (void *)1;
	char err[256];
	unsigned truncs = 0, flips = 0;

	/* Every truncation. */
	for (size_t n = 0; n < len; n++) {
		if (statefile_parse(data, n, HASH, &sf, err, sizeof(err)) < 0 && !sf)
			truncs++;
	}
	CHECK_EQ(truncs, len);
	/* Every single-bit flip (the checksum covers the header too). */
	for (size_t i = 0; i < len; i++) {
		memcpy(buf, data, len);
		buf[i] ^= (uint8_t)(1u << (i % 8));
		if (statefile_parse(buf, len, HASH, &sf, err, sizeof(err)) < 0 && !sf)
			flips++;
	}
	CHECK_EQ(flips, len);
	/* Another configuration. */
	CHECK_EQ(statefile_parse(data, len, HASH + 1, &sf, err, sizeof(err)), -ESTALE);
	CHECK(strstr(err, "another machine configuration") != NULL);
	/* Not a state file at all. */
	CHECK_EQ(statefile_parse("hello", 5, 0, &sf, err, sizeof(err)), -EINVAL);
	free(buf);
	g_bytes_unref(b);
}

/* Rewrite a file's checksum after editing it, to reach the checks behind it. */
static void reseal(uint8_t *p, size_t len)
{
	GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
	gsize dlen = 32;

	g_checksum_update(sum, p, len - 32);
	g_checksum_get_digest(sum, p + len - 32, &dlen);
	g_checksum_free(sum);
}

static void test_sealed_corruption(void)
{
	GBytes *b = sample();
	size_t len;
	const uint8_t *data = g_bytes_get_data(b, &len);
	uint8_t *buf = malloc(len);
	struct statefile *sf;
	char err[256];

	/* A newer format. */
	memcpy(buf, data, len);
	buf[8] = 2;
	reseal(buf, len);
	CHECK_EQ(statefile_parse(buf, len, HASH, &sf, err, sizeof(err)), -EPROTONOSUPPORT);
	CHECK(strstr(err, "newer vivarium") != NULL);
	/* A section id with a capital letter ("pic" is the first, at 48). */
	memcpy(buf, data, len);
	CHECK(!memcmp(buf + 48, "pic", 3));
	buf[48] = 'P';
	reseal(buf, len);
	CHECK_EQ(statefile_parse(buf, len, HASH, &sf, err, sizeof(err)), -EBADMSG);
	/* More sections claimed than there are. */
	memcpy(buf, data, len);
	buf[24] = 5;
	reseal(buf, len);
	CHECK_EQ(statefile_parse(buf, len, HASH, &sf, err, sizeof(err)), -EBADMSG);
	/* One section fewer: stray bytes. */
	memcpy(buf, data, len);
	buf[24] = 2;
	reseal(buf, len);
	CHECK_EQ(statefile_parse(buf, len, HASH, &sf, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "stray") != NULL);
	/* A payload length past the end. */
	memcpy(buf, data, len);
	buf[32 + 8 + 3] = 0x7f;
	reseal(buf, len);
	CHECK_EQ(statefile_parse(buf, len, HASH, &sf, err, sizeof(err)), -EBADMSG);
	free(buf);
	g_bytes_unref(b);
}

static void test_duplicate_id(void)
{
	struct statefile *sf = statefile_new(1);
	GBytes *b;
	uint8_t *buf, *at;
	size_t len;
	char err[256];
	int r;

	CHECK_EQ(statefile_put(sf, "ab", 1, g_variant_new_int32(1)), 0);
	CHECK_EQ(statefile_put(sf, "cd", 1, g_variant_new_int32(2)), 0);
	b = statefile_serialise(sf, &r);
	statefile_free(sf);
	g_bytes_get_data(b, &len);
	buf = g_memdup2(g_bytes_get_data(b, NULL), len);
	at = memmem(buf, len, "cd", 2);
	CHECK(at != NULL);
	if (at) {
		memcpy(at, "ab", 2);
		reseal(buf, len);
		CHECK_EQ(statefile_parse(buf, len, 1, &sf, err, sizeof(err)), -EBADMSG);
		CHECK(strstr(err, "twice") != NULL);
	}
	g_free(buf);
	g_bytes_unref(b);
}

static void test_put_rules(void)
{
	struct statefile *sf = statefile_new(1);
	char id[80];

	CHECK_EQ(statefile_put(sf, "a", 1, g_variant_new_int32(1)), 0);
	CHECK_EQ(statefile_put(sf, "a", 1, g_variant_new_int32(1)), -EEXIST);
	CHECK_EQ(statefile_put(sf, "", 1, g_variant_new_int32(1)), -EINVAL);
	CHECK_EQ(statefile_put(sf, "A", 1, g_variant_new_int32(1)), -EINVAL);
	CHECK_EQ(statefile_put(sf, "a/b", 1, g_variant_new_int32(1)), -EINVAL);
	CHECK_EQ(statefile_put(sf, "b", 1, NULL), -EINVAL);
	memset(id, 'x', sizeof(id) - 1);
	id[STATEFILE_ID_MAX] = 0;
	CHECK_EQ(statefile_put(sf, id, 1, g_variant_new_int32(1)), 0);
	id[STATEFILE_ID_MAX] = 'x';
	id[STATEFILE_ID_MAX + 1] = 0;
	CHECK_EQ(statefile_put(sf, id, 1, g_variant_new_int32(1)), -EINVAL);
	for (unsigned i = 2; i < STATEFILE_SECTIONS_MAX; i++) {
		snprintf(id, sizeof(id), "s%u", i);
		CHECK_EQ(statefile_put(sf, id, 1, g_variant_new_int32(1)), 0);
	}
	CHECK_EQ(statefile_put(sf, "last", 1, g_variant_new_int32(1)), -E2BIG);
	statefile_free(sf);
}

static void test_files(void)
{
	char dir[] = "/tmp/vivarium-statefile.XXXXXX", path[128], err[256];
	struct statefile *sf = statefile_new(HASH), *back = NULL;
	FILE *f;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/m.state", dir);
	CHECK_EQ(statefile_put(sf, "pit", 3, g_variant_new_uint64(99)), 0);
	CHECK_EQ(statefile_save(sf, path, err, sizeof(err)), 0);
	CHECK_EQ(statefile_load(path, HASH, &back, err, sizeof(err)), 0);
	CHECK(back && statefile_count(back) == 1);
	statefile_free(back);
	/* Truncated on disk: one line naming the file. */
	CHECK(truncate(path, 20) == 0);
	CHECK(statefile_load(path, HASH, &back, err, sizeof(err)) < 0 && !back);
	CHECK(strstr(err, path) != NULL);
	/* A directory, and a file that does not exist. */
	CHECK_EQ(statefile_load(dir, HASH, &back, err, sizeof(err)), -EINVAL);
	snprintf(path, sizeof(path), "%s/nosuch", dir);
	CHECK_EQ(statefile_load(path, HASH, &back, err, sizeof(err)), -ENOENT);
	snprintf(path, sizeof(path), "%s/m.state", dir);
	f = fopen(path, "w");
	fclose(f);
	CHECK_EQ(statefile_load(path, HASH, &back, err, sizeof(err)), -EINVAL);
	unlink(path);
	rmdir(dir);
	statefile_free(sf);
}

int main(void)
{
	RUN_TEST(test_round_trip);
	RUN_TEST(test_refusals);
	RUN_TEST(test_sealed_corruption);
	RUN_TEST(test_duplicate_id);
	RUN_TEST(test_put_rules);
	RUN_TEST(test_files);
	return check_finish();
}
