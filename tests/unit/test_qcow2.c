/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_qcow2.c - the qcow2 driver against qemu-img/qemu-io as
 * the independent oracle: images we write pass `qemu-img check` and
 * `qemu-img compare` against a raw file of the expected content; images
 * QEMU wrote (backing chains, compressed, zero clusters, v2, cluster
 * sizes) read back as `qemu-img convert` says; overlays leave their
 * backing file alone; concurrent requests; and a writer killed with
 * SIGKILL leaves a consistent image holding what it had flushed.  Backing
 * chains: blk_set_backing() as qemu-img info reads it, blk_stream() keeps
 * what top reads (qemu-img compare), also when killed midway.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "blktest.h"
#include "sandboxed.h"

static uint32_t rng = 12345;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

static int write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, buf, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -EIO;
}

static uint8_t *read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return NULL;
	uint8_t *p = malloc((size_t)st.st_size + 1);
	ssize_t n = pread(fd, p, (size_t)st.st_size, 0);
	close(fd);
	*len = (size_t)st.st_size;
	if (n != st.st_size) {
		free(p);
		return NULL;
	}
	return p;
}

/* qemu-img check's exit status: 0 clean, 3 leaks only, 2 corruptions. */
static int qemu_check(const char *path)
{
	return sh("qemu-img check -q '%s' >/dev/null 2>&1", path);
}

/* Read all of @path through the block layer; CHECKs it equals @want. */
static void check_content(const char *path, const uint8_t *want,
			  size_t len)
{
	struct blk_open_opts ro = { .readonly = true };
	struct blk *b;
	char err[512];
	int r = blk_open(path, &ro, &b, err, sizeof(err));
	if (r < 0)
		fprintf(stderr, "open %s: %s\n", path, err);
	CHECK_EQ(r, 0);
	if (r < 0)
		return;
	CHECK_EQ(blk_length(b), len);
	uint8_t *got = malloc(len);
	CHECK_EQ(blk_pread(b, 0, got, len), 0);
	size_t i = 0;
	while (i < len && got[i] == want[i])
		i++;
	if (i < len)
		fprintf(stderr, "  %s differs first at 0x%zx\n", path, i);
	CHECK_EQ(i, len);
	/* Also in odd pieces, through the iovec path. */
	struct iovec v[3] = { { got, 1000 }, { got + 1000, 3 },
			      { got + 1003, 70000 } };
	if (len >= 71003 + 4096) {
		CHECK_EQ(blk_preadv(b, 4096 - 7, v, 3), 0);
		CHECK(!memcmp(got, want + 4096 - 7, 71003));
	}
	free(got);
	blk_close(b);
}

/* ---- images we write, checked by qemu-img ---- */

static void random_ops(struct blk *b, uint8_t *model, uint64_t size,
		       unsigned nops, bool tool_unaligned)
{
	uint8_t *buf = malloc(256 * 1024);
	for (unsigned i = 0; i < nops; i++) {
		unsigned op = rnd() % 10;
		uint64_t len = 1 + rnd() % (op < 7 ? 70000 : 200000);
		uint64_t off = rnd() % size;
		if (!tool_unaligned) {
			off &= ~511ull;
			len = (len + 511) & ~511ull;
		}
		if (off + len > size)
			len = size - off;
		if (!len)
			continue;
		if (op < 7) {
			fill(buf, len, rnd());
			CHECK_EQ(blk_pwrite(b, off, buf, len), 0);
			memcpy(model + off, buf, len);
		} else if (op < 9) {
			CHECK_EQ(blk_write_zeroes(b, off, len, op == 8), 0);
			memset(model + off, 0, len);
		} else {
			CHECK_EQ(blk_discard(b, off, len), 0);
			/* Undefined but stable: adopt what reads back. */
			CHECK_EQ(blk_pread(b, off, model + off, len), 0);
		}
		if (rnd() % 16 == 0)
			CHECK_EQ(blk_flush(b), 0);
	}
	free(buf);
}

static void our_image(unsigned cluster_bits, unsigned compat, uint64_t size,
		      unsigned nops)
{
	char name[64], rawname[64], err[512];
	snprintf(name, sizeof(name), "ours-%u-%u.qcow2", cluster_bits, compat);
	snprintf(rawname, sizeof(rawname), "ours-%u-%u.raw", cluster_bits,
		 compat);
	const char *p = tpath(name), *raw = tpath(rawname);
	struct blk_create_opts co = { .format = BLK_FMT_QCOW2, .size = size,
				      .cluster_bits = cluster_bits,
				      .compat = compat };
	int r = blk_create(p, &co, err, sizeof(err));
	if (r < 0)
		fprintf(stderr, "create: %s\n", err);
	CHECK_EQ(r, 0);
	CHECK_EQ(qemu_check(p), 0);
	uint8_t *model = calloc(1, size);
	struct blk *b = open_rw(p, BLK_FMT_AUTO);
	if (!b)
		return;
	CHECK_EQ(blk_get_format(b), BLK_FMT_QCOW2);
	CHECK_EQ(blk_length(b), size);
	random_ops(b, model, size, nops, true);
	/* Our own check agrees with qemu-img's verdict below. */
	struct blk_check_result res;
	CHECK_EQ(blk_check(b, &res, stderr), 0);
	CHECK_EQ(res.corruptions, 0);
	blk_close(b);
	CHECK_EQ(write_file(raw, model, size), 0);
	int qc = qemu_check(p);
	if (qc)
		sh("qemu-img check '%s' | head -20 >&2", p);
	CHECK_EQ(qc, 0);
	CHECK_EQ(sh("qemu-img compare -q -f qcow2 -F raw '%s' '%s'", p, raw),
		 0);
	check_content(p, model, size);

	/* After close: our check sees no leaks either (frees applied). */
	struct blk_open_opts ro = { .readonly = true };
	CHECK_EQ(blk_open(p, &ro, &b, err, sizeof(err)), 0);
	CHECK_EQ(blk_check(b, &res, stderr), 0);
	CHECK_EQ(res.corruptions, 0);
	CHECK_EQ(res.leaks, 0);
	CHECK_EQ(res.check_errors, 0);
	struct blk_info info;
	CHECK_EQ(blk_get_info(b, &info), 0);
	CHECK_EQ(info.version, compat ? compat : 3);
	CHECK_EQ(info.cluster_size, 1u << cluster_bits);
	CHECK_EQ(info.refcount_bits, 16);
	blk_close(b);
	free(model);
}

static void test_ours_4k(void)
{
	our_image(12, 3, 24 << 20, 300);
}

static void test_ours_512(void)
{
	/* 512-byte clusters: an L2 table maps 32 KiB, a refcount block
	 * 128 KiB, so this grows hundreds of both and the refcount table. */
	our_image(9, 3, 12 << 20, 300);
}

static void test_ours_64k(void)
{
	our_image(16, 3, 64 << 20, 200);
}

static void test_ours_v2(void)
{
	our_image(12, 2, 8 << 20, 200);
}

static void test_ours_2m(void)
{
	our_image(21, 3, 20 << 20, 60);
}

/* Sequential fill past many refcount blocks and several table growths. */
static void test_grow_sequential(void)
{
	const char *p = tpath("grow.qcow2"), *raw = tpath("grow.raw");
	char err[512];
	uint64_t size = 40 << 20;
	struct blk_create_opts co = { .format = BLK_FMT_QCOW2, .size = size,
				      .cluster_bits = 9 };
	CHECK_EQ(blk_create(p, &co, err, sizeof(err)), 0);
	struct blk *b = open_rw(p, BLK_FMT_QCOW2);
	if (!b)
		return;
	uint8_t *model = malloc(size);
	fill(model, size, 77);
	for (uint64_t off = 0; off < size; off += 1 << 20)
		CHECK_EQ(blk_pwrite(b, off, model + off, 1 << 20), 0);
	blk_close(b);
	CHECK_EQ(write_file(raw, model, size), 0);
	CHECK_EQ(qemu_check(p), 0);
	CHECK_EQ(sh("qemu-img compare -q -f qcow2 -F raw '%s' '%s'", p, raw),
		 0);
	free(model);
}

/* ---- images QEMU wrote ---- */

/* Build @img with the shell commands, convert it to raw with qemu-img,
 * and compare with what the block layer reads. */
static void qemu_image(const char *img, const char *cmds)
{
	const char *raw = tpath("qemu-expected.raw");
	int r = sh("cd %s && (%s) >/dev/null 2>&1", dir, cmds);
	if (r != 0)
		fprintf(stderr, "  setup failed: %s\n", cmds);
	CHECK_EQ(r, 0);
	unlink(raw);
	CHECK_EQ(sh("qemu-img convert -O raw '%s' '%s'", tpath(img), raw), 0);
	size_t len;
	uint8_t *want = read_file(raw, &len);
	CHECK(want != NULL);
	if (want)
		check_content(tpath(img), want, len);
	free(want);
}

static void test_qemu_chain(void)
{
	/* qcow2 over qcow2 over raw, each layer writing part of the disk. */
	qemu_image("top.qcow2",
		   "qemu-img create -f raw base.raw 16M && "
		   "qemu-io -f raw -c 'write -P 0x11 0 16M' base.raw && "
		   "qemu-img create -f qcow2 -F raw -b base.raw mid.qcow2 && "
		   "qemu-io -c 'write -P 0x22 1M 3M' -c 'write -P 0x23 7000k 1k' "
		   "mid.qcow2 && "
		   "qemu-img create -f qcow2 -F qcow2 -b mid.qcow2 top.qcow2 20M && "
		   "qemu-io -c 'write -P 0x33 2M 1M' -c 'write -P 0x34 18M 1M' "
		   "-c 'write -z 12M 2M' top.qcow2");
	/* Reading a chain with no backing format: probed. */
	qemu_image("nofmt.qcow2",
		   "qemu-img create -f qcow2 -F qcow2 -b top.qcow2 nofmt.qcow2 && "
		   "qemu-img rebase -u -b top.qcow2 nofmt.qcow2 2>/dev/null; "
		   "qemu-io -c 'write -P 0x44 0 64k' nofmt.qcow2");
	struct blk *b;
	char err[512];
	struct blk_open_opts ro = { .readonly = true };
	CHECK_EQ(blk_open(tpath("top.qcow2"), &ro, &b, err, sizeof(err)), 0);
	struct blk_info info;
	CHECK_EQ(blk_get_info(b, &info), 0);
	CHECK(!strcmp(info.backing, "mid.qcow2"));
	CHECK_EQ(info.backing_format, BLK_FMT_QCOW2);
	uint64_t pnum;
	bool zero;
	CHECK_EQ(blk_block_status(b, 12 << 20, 4 << 20, &pnum, &zero), 0);
	CHECK(zero);
	CHECK_EQ(pnum, 2 << 20);
	CHECK_EQ(blk_block_status(b, 16 << 20, 2 << 20, &pnum, &zero), 0);
	CHECK(zero);	/* past the 16 MiB backing chain: zeroes */
	CHECK_EQ(blk_block_status(b, 2 << 20, 1 << 20, &pnum, &zero), 0);
	CHECK(!zero);
	blk_close(b);
}

static void test_qemu_compressed(void)
{
	qemu_image("comp.qcow2",
		   "qemu-img create -f raw csrc.raw 8M && "
		   "qemu-io -f raw -c 'write -P 0x5a 0 1M' -c 'write -P 0 1M 1M' "
		   "-c 'write -P 0xa7 3M 100k' csrc.raw && "
		   "head -c 2097152 /bin/sh >> /dev/null; "
		   "dd if=/usr/bin/qemu-img of=csrc.raw bs=64k seek=64 count=32 "
		   "conv=notrunc && "
		   "qemu-img convert -c -O qcow2 csrc.raw comp.qcow2");
	qemu_image("comp4k.qcow2",
		   "qemu-img convert -c -O qcow2 -o cluster_size=4k csrc.raw "
		   "comp4k.qcow2");
	if (sh("cd %s && qemu-img convert -c -O qcow2 -o compression_type=zstd "
	       "csrc.raw compz.qcow2 >/dev/null 2>&1", dir) == 0) {
		qemu_image("compz.qcow2", "true");
		struct blk *b;
		char err[512];
		struct blk_open_opts ro = { .readonly = true };
		CHECK_EQ(blk_open(tpath("compz.qcow2"), &ro, &b, err,
				  sizeof(err)), 0);
		struct blk_info info;
		CHECK_EQ(blk_get_info(b, &info), 0);
		CHECK(info.compressed_zstd);
		blk_close(b);
	} else {
		printf("  (this qemu-img cannot write zstd; zstd not tested)\n");
	}
	/* Rewriting parts of compressed clusters: copy-on-write. */
	const char *p = tpath("comp.qcow2"), *raw = tpath("comp-after.raw");
	size_t len;
	uint8_t *model = read_file(tpath("csrc.raw"), &len);
	struct blk *b = open_rw(p, BLK_FMT_QCOW2);
	if (!b || !model)
		return;
	rng = 99;
	random_ops(b, model, len, 100, true);
	blk_close(b);
	CHECK_EQ(write_file(raw, model, len), 0);
	CHECK_EQ(qemu_check(p), 0);
	CHECK_EQ(sh("qemu-img compare -q -f qcow2 -F raw '%s' '%s'", p, raw),
		 0);
	free(model);
}

static void test_qemu_zero_v2_sizes(void)
{
	qemu_image("zero.qcow2",
		   "qemu-img create -f qcow2 -o cluster_size=4k zbase.qcow2 4M && "
		   "qemu-io -c 'write -P 0x66 0 4M' zbase.qcow2 && "
		   "qemu-img create -f qcow2 -F qcow2 -b zbase.qcow2 zero.qcow2 && "
		   "qemu-io -c 'write -z 64k 128k' -c 'write -z -u 1M 1M' "
		   "-c 'write -P 0x67 2M 4k' -c 'discard 2M 4k' zero.qcow2");
	qemu_image("v2.qcow2",
		   "qemu-img create -f qcow2 -o compat=0.10 v2.qcow2 6M && "
		   "qemu-io -c 'write -P 0x71 0 100k' -c 'write -P 0x72 5M 1M' "
		   "-c 'write -z 50k 10k' v2.qcow2");
	qemu_image("c512.qcow2",
		   "qemu-img create -f qcow2 -o cluster_size=512 c512.qcow2 3M && "
		   "qemu-io -c 'write -P 0x81 1000 300k' -c 'write -P 0x82 2M 64k' "
		   "c512.qcow2");
	qemu_image("c2m.qcow2",
		   "qemu-img create -f qcow2 -o cluster_size=2M c2m.qcow2 9M && "
		   "qemu-io -c 'write -P 0x91 3M 1k' -c 'write -P 0x92 8M 1M' "
		   "c2m.qcow2");
	qemu_image("r64.qcow2",
		   "qemu-img create -f qcow2 -o refcount_bits=64 r64.qcow2 2M && "
		   "qemu-io -c 'write -P 0xa1 0 1M' r64.qcow2");
	qemu_image("r1.qcow2",
		   "qemu-img create -f qcow2 -o refcount_bits=1 r1.qcow2 2M && "
		   "qemu-io -c 'write -P 0xa2 512k 1M' r1.qcow2");
	qemu_image("odd.qcow2",
		   "qemu-img create -f qcow2 odd.qcow2 1000000 && "
		   "qemu-io -c 'write -P 0xb1 0 999936' odd.qcow2");

	/* Writing images QEMU made with other refcount widths. */
	const char *names[] = { "r64.qcow2", "r1.qcow2", "v2.qcow2",
				"zero.qcow2" };
	for (unsigned i = 0; i < 4; i++) {
		const char *p = tpath(names[i]), *raw = tpath("w.raw");
		struct blk *b = open_rw(p, BLK_FMT_QCOW2);
		if (!b)
			continue;
		uint64_t size = blk_length(b);
		uint8_t *model = malloc(size);
		CHECK_EQ(blk_pread(b, 0, model, size), 0);
		rng = 1000 + i;
		random_ops(b, model, size, 80, true);
		blk_close(b);
		CHECK_EQ(write_file(raw, model, size), 0);
		int qc = qemu_check(p);
		if (qc)
			sh("qemu-img check '%s' | head >&2", p);
		CHECK_EQ(qc, 0);
		CHECK_EQ(sh("qemu-img compare -q -f qcow2 -F raw '%s' '%s'", p,
			    raw), 0);
		free(model);
	}
}

/* Writes through an overlay we created leave the backing file alone. */
static void test_overlay(void)
{
	const char *base = tpath("ovbase.raw"), *ov = tpath("ov.qcow2");
	const char *exp = tpath("ov-expected.raw");
	char err[512];
	uint64_t size = 4 << 20;
	uint8_t *orig = malloc(size), *model = malloc(size);
	fill(orig, size, 5);
	CHECK_EQ(write_file(base, orig, size), 0);
	memcpy(model, orig, size);

	struct blk_create_opts co = { .format = BLK_FMT_QCOW2,
				      .backing = "ovbase.raw",
				      .cluster_bits = 13 };
	CHECK_EQ(blk_create(ov, &co, err, sizeof(err)), 0);
	struct blk *b = open_rw(ov, BLK_FMT_AUTO);
	if (!b)
		return;
	CHECK_EQ(blk_length(b), size);	/* size 0: the backing file's */
	/* The backing file is opened read-only with a shared lock. */
	struct blk *w;
	struct blk_open_opts rw = { 0 };
	CHECK_EQ(blk_open(base, &rw, &w, err, sizeof(err)), -EBUSY);
	rng = 4242;
	random_ops(b, model, size, 200, true);
	blk_close(b);
	size_t blen;
	uint8_t *after = read_file(base, &blen);
	CHECK_EQ(blen, size);
	CHECK(after && !memcmp(after, orig, size));
	free(after);
	CHECK_EQ(write_file(exp, model, size), 0);
	CHECK_EQ(qemu_check(ov), 0);
	CHECK_EQ(sh("qemu-img compare -q -f qcow2 -F raw '%s' '%s'", ov, exp),
		 0);
	CHECK_EQ(sh("qemu-img info '%s' | grep -q 'backing file format: raw'",
		    ov), 0);
	check_content(ov, model, size);

	/* Creating over an existing file, or with a missing backing file. */
	CHECK_EQ(blk_create(ov, &co, err, sizeof(err)), -EEXIST);
	co.backing = "nonexistent.raw";
	CHECK_EQ(blk_create(tpath("ov2.qcow2"), &co, err, sizeof(err)),
		 -ENOENT);
	CHECK(strstr(err, "nonexistent.raw") != NULL);
	CHECK(access(tpath("ov2.qcow2"), F_OK) != 0);
	free(orig);
	free(model);
}

/* ---- hostile images: clear errors, no crash ---- */

static void patch_be(const char *path, uint64_t at, uint64_t v, int width)
{
	uint8_t b[8];
	for (int i = width - 1; i >= 0; i--, v >>= 8)
		b[i] = (uint8_t)v;
	int fd = open(path, O_WRONLY);
	CHECK(pwrite(fd, b, (size_t)width, (off_t)at) == width);
	close(fd);
}

static uint64_t peek_be(const char *path, uint64_t at, int width)
{
	uint8_t b[8] = { 0 };
	uint64_t v = 0;
	int fd = open(path, O_RDONLY);
	CHECK(pread(fd, b, (size_t)width, (off_t)at) == width);
	close(fd);
	for (int i = 0; i < width; i++)
		v = v << 8 | b[i];
	return v;
}

/* A fresh 1 MiB image, 4 KiB clusters, data in its first clusters. */
static const char *good_image(const char *name)
{
	const char *p = tpath(name);
	char err[512];
	unlink(p);
	struct blk_create_opts co = { .format = BLK_FMT_QCOW2,
				      .size = 1 << 20, .cluster_bits = 12 };
	CHECK_EQ(blk_create(p, &co, err, sizeof(err)), 0);
	struct blk *b = open_rw(p, BLK_FMT_QCOW2);
	uint8_t buf[8192];
	fill(buf, sizeof(buf), 3);
	if (b) {
		CHECK_EQ(blk_pwrite(b, 0, buf, sizeof(buf)), 0);
		blk_close(b);
	}
	return p;
}

/* Open read-only must fail with @want and a message naming the file and
 * containing @what. */
static void expect_open_error(const char *p, int want, const char *what)
{
	struct blk_open_opts ro = { .format = BLK_FMT_QCOW2, .readonly = true };
	struct blk *b = (struct blk *)1;
	char err[512] = "";
	int r = blk_open(p, &ro, &b, err, sizeof(err));
	if (r != want || !strstr(err, what))
		fprintf(stderr, "  got %d '%s', want %d '...%s...'\n", r, err,
			want, what);
	CHECK_EQ(r, want);
	CHECK(strstr(err, what) != NULL);
	CHECK(strstr(err, p) != NULL);
	CHECK(b == NULL);
}

static void test_corrupt_headers(void)
{
	static const struct {
		uint64_t at;
		int width;
		uint64_t v;
		int err;
		const char *what;
	} cases[] = {
		{ 0, 4, 0x514649fa, -EINVAL, "not a qcow2 image" },
		{ 4, 4, 4, -EINVAL, "version 4" },
		{ 20, 4, 8, -EINVAL, "cluster_bits 8" },
		{ 20, 4, 22, -EINVAL, "cluster_bits 22" },
		{ 24, 8, UINT64_MAX, -EINVAL, "virtual size" },
		{ 24, 8, 1ull << 40, -EINVAL, "too small" },
		{ 36, 4, 0xffffffff, -EINVAL, "L1 table" },
		{ 40, 8, 0x3200, -EINVAL, "L1 table offset" },
		{ 40, 8, 1ull << 40, -EINVAL, "L1 table offset" },
		{ 48, 8, 1ull << 40, -EINVAL, "refcount table offset" },
		{ 48, 8, 0x1100, -EINVAL, "refcount table offset" },
		{ 56, 4, 0xffffffff, -EINVAL, "refcount table size" },
		{ 60, 4, 0x7fffffff, -EINVAL, "snapshot table" },
		{ 72, 8, 1ull << 40, -EINVAL, "incompatible features" },
		{ 72, 8, 1ull << 2, -EINVAL, "external data file" },
		{ 96, 4, 7, -EINVAL, "refcount_order 7" },
		{ 100, 4, 0xfff8, -EINVAL, "header_length" },
		{ 100, 4, 60, -EINVAL, "header_length" },
		{ 32, 4, 2, -EINVAL, "encrypted" },
		{ 8, 8, 0x70, -EINVAL, "backing file name" },
		{ 16, 4, 5000, -EINVAL, "backing file name" },
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *p = good_image("bad.qcow2");
		patch_be(p, cases[i].at, cases[i].v, cases[i].width);
		if (cases[i].at == 16)
			patch_be(p, 8, 0x100, 8);	/* a backing name */
		expect_open_error(p, cases[i].err, cases[i].what);
	}

	/* Truncated files. */
	const uint64_t cuts[] = { 0, 3, 50, 71, 100, 4096, 4096 * 3 + 8 };
	for (unsigned i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		const char *p = good_image("cut.qcow2");
		CHECK_EQ(truncate(p, (off_t)cuts[i]), 0);
		struct blk_open_opts o = { .format = BLK_FMT_QCOW2,
					   .readonly = true };
		struct blk *b;
		char err[512] = "";
		int r = blk_open(p, &o, &b, err, sizeof(err));
		CHECK(r == -EINVAL);
		CHECK(err[0] != '\0');
	}

	/* Table entries: L1 entry past the end, refcount block misaligned. */
	const char *p = good_image("l1.qcow2");
	uint64_t l1 = peek_be(p, 40, 8);
	patch_be(p, l1, 1ull << 40, 8);
	expect_open_error(p, -EINVAL, "L1 entry 0");
	p = good_image("rt.qcow2");
	uint64_t rt = peek_be(p, 48, 8);
	patch_be(p, rt, peek_be(p, rt, 8) + 512, 8);
	expect_open_error(p, -EINVAL, "refcount table entry 0");

	/* A bad L2 entry opens, then fails the I/O that meets it. */
	p = good_image("l2.qcow2");
	uint64_t l2 = peek_be(p, l1, 8) & 0x00fffffffffffe00ull;
	patch_be(p, l2, (1ull << 63) | 0x1234, 8);	/* misaligned */
	patch_be(p, l2 + 8, (1ull << 62) | 0x3ffffffffull, 8);	/* garbage */
	struct blk *b = open_rw(p, BLK_FMT_QCOW2);
	if (b) {
		uint8_t buf[4096];
		CHECK_EQ(blk_pread(b, 0, buf, 4096), -EIO);
		CHECK_EQ(blk_pread(b, 4096, buf, 4096), -EIO);
		CHECK_EQ(blk_pread(b, 8192, buf, 4096), 0);	/* fine here */
		CHECK_EQ(blk_pwrite(b, 0, buf, 4096), -EIO);
		CHECK_EQ(blk_pwrite(b, 65536, buf, 4096), -EIO);  /* broken */
		CHECK_EQ(blk_pread(b, 1 << 20, buf, 512), -EINVAL);
		struct blk_check_result res;
		CHECK_EQ(blk_check(b, &res, NULL), 0);
		CHECK(res.corruptions >= 1);
		blk_close(b);
	}
	CHECK_EQ(sh("qemu-img check -q '%s' >/dev/null 2>&1", p), 2);

	/* Read-only only: the dirty or corrupt bit, internal snapshots. */
	p = good_image("dirty.qcow2");
	patch_be(p, 72, 1, 8);
	struct blk_open_opts rw = { 0 }, ro = { .readonly = true };
	char err[512];
	CHECK_EQ(blk_open(p, &rw, &b, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "not closed cleanly") != NULL);
	CHECK_EQ(blk_open(p, &ro, &b, err, sizeof(err)), 0);
	blk_close(b);
	p = good_image("snap.qcow2");
	CHECK_EQ(sh("qemu-img snapshot -c s1 '%s' && qemu-io -c 'write -P 9 0 "
		    "8k' '%s' >/dev/null", p, p), 0);
	CHECK_EQ(blk_open(p, &rw, &b, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "snapshots") != NULL);
	CHECK_EQ(blk_open(p, &ro, &b, err, sizeof(err)), 0);
	if (b) {
		uint8_t buf[512];
		CHECK_EQ(blk_pread(b, 0, buf, 512), 0);
		CHECK(buf[0] == 9 && buf[511] == 9);
		struct blk_check_result res;
		CHECK_EQ(blk_check(b, &res, stderr), 0);
		CHECK_EQ(res.corruptions, 0);	/* snapshot refs counted */
		CHECK_EQ(res.leaks, 0);
		blk_close(b);
	}
}

static void test_backing_chains(void)
{
	char err[512];
	/* a -> b -> a */
	const char *a = tpath("loop-a.qcow2"), *bb = tpath("loop-b.qcow2");
	struct blk_create_opts co = { .format = BLK_FMT_QCOW2,
				      .size = 1 << 20 };
	CHECK_EQ(blk_create(bb, &co, err, sizeof(err)), 0);
	co.backing = "loop-b.qcow2";
	CHECK_EQ(blk_create(a, &co, err, sizeof(err)), 0);
	CHECK_EQ(sh("qemu-img rebase -u -F qcow2 -b loop-a.qcow2 '%s'", bb), 0);
	expect_open_error(a, -EINVAL, "loops");
	/* Its own backing file. */
	const char *self = tpath("self.qcow2");
	co.backing = NULL;
	CHECK_EQ(blk_create(self, &co, err, sizeof(err)), 0);
	CHECK_EQ(sh("qemu-img rebase -u -F qcow2 -b self.qcow2 '%s'", self), 0);
	expect_open_error(self, -EINVAL, "loops");
	/* A chain deeper than 16. */
	char name[64], prev[64] = "";
	for (int i = 0; i <= 17; i++) {
		snprintf(name, sizeof(name), "deep-%d.qcow2", i);
		co.backing = prev[0] ? prev : NULL;
		CHECK_EQ(blk_create(tpath(name), &co, err, sizeof(err)), 0);
		snprintf(prev, sizeof(prev), "%s", name);
		if (i == 16) {
			struct blk *b;
			struct blk_open_opts ro = { .readonly = true };
			CHECK_EQ(blk_open(tpath(name), &ro, &b, err,
					  sizeof(err)), 0);
			blk_close(b);
		}
	}
	expect_open_error(tpath("deep-17.qcow2"), -EINVAL, "deeper than 16");
	/* A backing file that is missing, or a FIFO. */
	const char *miss = tpath("miss.qcow2");
	CHECK_EQ(sh("cd %s && qemu-img create -q -f qcow2 -u -F raw -b gone.raw "
		    "miss.qcow2 1M", dir), 0);
	expect_open_error(miss, -ENOENT, "gone.raw");
	struct blk_open_opts nb = { .readonly = true, .no_backing = true };
	struct blk *b;
	CHECK_EQ(blk_open(miss, &nb, &b, err, sizeof(err)), 0);
	if (b) {
		struct blk_info info;
		uint8_t buf[512];
		CHECK_EQ(blk_get_info(b, &info), 0);
		CHECK(!strcmp(info.backing, "gone.raw"));
		CHECK_EQ(blk_pread(b, 0, buf, 512), 0);
		CHECK(buf[0] == 0 && buf[511] == 0);
		blk_close(b);
	}
	CHECK_EQ(sh("cd %s && mkfifo fifo.raw && qemu-img create -q -f qcow2 "
		    "-u -F raw -b fifo.raw fifo.qcow2 1M", dir), 0);
	expect_open_error(tpath("fifo.qcow2"), -EINVAL, "not a regular file");
}

/* ---- backing chains: set_backing, stream (qemu-img as the oracle) ---- */

/* Build, in the scratch folder's @sub (may be "."), base <- mid <- top
 * with qemu-img create options @o: data and zero clusters in each, mid
 * @mid_size (0: 16M) over a 16 MiB base; CHECKs, and flattens top into
 * @sub/flat.raw. */
static void chain3(const char *sub, const char *o, const char *mid_size)
{
	int r = sh("(cd %s && mkdir -p %s && cd %s && rm -f *.qcow2 flat.raw && "
		   "qemu-img create -q -f qcow2 -o %s base.qcow2 16M && "
		   "qemu-io -c 'write -P 0x11 0 1M' -c 'write -z 2M 1M' "
		   "-c 'write -P 0x13 5M 1M' -c 'write -P 0x12 10M 6M' base.qcow2 && "
		   "qemu-img create -q -f qcow2 -o %s -b base.qcow2 -F qcow2 "
		   "mid.qcow2 %s && "
		   "qemu-io -c 'write -P 0x21 512k 1M' -c 'write -z 5M 64k' "
		   "-c 'write -P 0x22 4M 100k' mid.qcow2 && "
		   "qemu-img create -q -f qcow2 -o %s -b mid.qcow2 -F qcow2 "
		   "top.qcow2 16M && "
		   "qemu-io -c 'write -P 0x31 0 4k' -c 'write -z 4M 64k' "
		   "-c 'write -P 0x32 6M 1M' top.qcow2 && "
		   "qemu-img convert -O raw top.qcow2 flat.raw && "
		   "cp mid.qcow2 mid.orig && cp base.qcow2 base.orig"
		   ") >/dev/null 2>&1",
		   dir, sub, sub, o, o, mid_size, o);
	CHECK_EQ(r, 0);
}

/* qemu-img's view of @img: its backing file (name, format) and checks. */
static void expect_backing(const char *img, const char *name, const char *fmt)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "qemu-img info -U --output json '%s' | "
		 "python3 -c 'import json,sys; d=json.load(sys.stdin); "
		 "print(d.get(\"backing-filename\"), "
		 "d.get(\"backing-filename-format\"))' | grep -qx '%s %s'",
		 img, name ? name : "None", fmt ? fmt : "None");
	int r = sh("%s", cmd);
	if (r)
		sh("qemu-img info -U '%s' >&2", img);
	CHECK_EQ(r, 0);
}

static void test_set_backing(void)
{
	const char *p = tpath("sb.qcow2");
	char err[512];
	struct blk_create_opts co = { .format = BLK_FMT_QCOW2,
				      .size = 1 << 20, .cluster_bits = 12 };
	struct blk *b;

	unlink(p);
	CHECK_EQ(blk_create(tpath("sb-a.qcow2"), &co, err, sizeof(err)), 0);
	CHECK_EQ(blk_create(tpath("sb-long-name-for-the-backing.raw"),
			    &(struct blk_create_opts){ .format = BLK_FMT_RAW,
						       .size = 1 << 20 },
			    err, sizeof(err)), 0);
	CHECK_EQ(blk_create(p, &co, err, sizeof(err)), 0);
	b = open_rw(p, BLK_FMT_QCOW2);
	if (!b)
		return;
	/* Back and forth, names of different lengths, with and without a
	 * backing file: qemu-img agrees each time and checks clean. */
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(blk_set_backing(b, "sb-a.qcow2", BLK_FMT_AUTO, err,
					 sizeof(err)), 0);
		CHECK_EQ(blk_flush(b), 0);
		expect_backing(p, "sb-a.qcow2", "qcow2");
		CHECK_EQ(blk_set_backing(b, "sb-long-name-for-the-backing.raw",
					 BLK_FMT_RAW, err, sizeof(err)), 0);
		expect_backing(p, "sb-long-name-for-the-backing.raw", "raw");
		CHECK_EQ(blk_set_backing(b, NULL, BLK_FMT_AUTO, err,
					 sizeof(err)), 0);
		expect_backing(p, NULL, NULL);
		CHECK_EQ(sh("qemu-img check -U -q '%s'", p), 0);	/* we hold it */
	}
	/* Refused, the header left alone: itself (a loop), a missing file. */
	CHECK_EQ(blk_set_backing(b, "sb.qcow2", BLK_FMT_QCOW2, err,
				 sizeof(err)), -EINVAL);
	CHECK(strstr(err, "loops") != NULL);
	CHECK_EQ(blk_set_backing(b, "sb-gone.qcow2", BLK_FMT_QCOW2, err,
				 sizeof(err)), -ENOENT);
	expect_backing(p, NULL, NULL);
	blk_close(b);
	/* Read-only, raw: no. */
	struct blk_open_opts ro = { .readonly = true };
	CHECK_EQ(blk_open(p, &ro, &b, err, sizeof(err)), 0);
	CHECK_EQ(blk_set_backing(b, "sb-a.qcow2", BLK_FMT_QCOW2, err,
				 sizeof(err)), -EROFS);
	blk_close(b);
	b = open_rw(tpath("sb-long-name-for-the-backing.raw"), BLK_FMT_RAW);
	CHECK_EQ(blk_set_backing(b, "sb-a.qcow2", BLK_FMT_QCOW2, err,
				 sizeof(err)), -EINVAL);
	CHECK_EQ(blk_stream(b, err, sizeof(err)), -EINVAL);
	CHECK_EQ(blk_commit(b, 0, err, sizeof(err)), -EINVAL);
	blk_close(b);
}

/* Stream @sub/top.qcow2 and check it with qemu-img: same content, clean,
 * now on @want (NULL: none); mid and base untouched. */
static void stream_check(const char *sub, const char *want)
{
	char top[256], flat[256];
	char err[512];

	snprintf(top, sizeof(top), "%s/%s/top.qcow2", dir, sub);
	snprintf(flat, sizeof(flat), "%s/%s/flat.raw", dir, sub);
	struct blk *b = open_rw(top, BLK_FMT_QCOW2);
	if (!b)
		return;
	int r = blk_stream(b, err, sizeof(err));
	if (r < 0)
		fprintf(stderr, "stream %s: %s\n", top, err);
	CHECK_EQ(r, 0);
	/* @b reads through its new backing file as before. */
	uint8_t *buf = malloc(16 << 20);
	size_t len;
	uint8_t *want_data = read_file(flat, &len);
	CHECK_EQ(blk_pread(b, 0, buf, 16 << 20), 0);
	CHECK(want_data && len == 16 << 20 && !memcmp(buf, want_data, len));
	free(buf);
	free(want_data);
	blk_close(b);
	CHECK_EQ(qemu_check(top), 0);
	CHECK_EQ(sh("qemu-img compare -q '%s' '%s'", top, flat), 0);
	expect_backing(top, want, want ? "qcow2" : NULL);
	CHECK_EQ(sh("cd %s/%s && cmp -s mid.qcow2 mid.orig && "
		    "cmp -s base.qcow2 base.orig", dir, sub), 0);
}

static void test_stream(void)
{
	/* v3: mid's zero clusters become zero clusters over base's data. */
	chain3("st3", "cluster_size=65536", "");
	stream_check("st3", "base.qcow2");
	CHECK_EQ(sh("qemu-img map --output json %s/st3/top.qcow2 | python3 -c "
		    "'import json,sys; sys.exit(not any(e[\"start\"] <= 5 << 20 "
		    "< e[\"start\"] + e[\"length\"] and e[\"depth\"] == 0 "
		    "and e[\"zero\"] for e in json.load(sys.stdin)))'", dir),
		 0);
	/* Again: now base's clusters come up, and no backing file is left. */
	stream_check("st3", NULL);
	/* v2 (no zero clusters: zeroes are written), 4 KiB clusters under
	 * 64 KiB ones. */
	chain3("st2", "compat=0.10,cluster_size=4096", "");
	stream_check("st2", "base.qcow2");
	/* mid shorter than top and base: top read zeroes past mid's end,
	 * and still does on base. */
	chain3("stshort", "cluster_size=65536", "8M");
	stream_check("stshort", "base.qcow2");
	/* Chain files in another folder: top's new name says where. */
	CHECK_EQ(sh("cd %s && mkdir -p stsub/in && cd stsub && rm -f in/* && "
		    "qemu-img create -q -f qcow2 in/base.qcow2 16M && "
		    "qemu-io -c 'write -P 0x41 0 16M' in/base.qcow2 && "
		    "qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "
		    "in/mid.qcow2 && qemu-io -c 'write -P 0x42 1M 1M' "
		    "in/mid.qcow2 && qemu-img create -q -f qcow2 -b "
		    "in/mid.qcow2 -F qcow2 top.qcow2 && "
		    "qemu-img convert -O raw top.qcow2 flat.raw && "
		    "cp in/mid.qcow2 mid.orig && cp in/base.qcow2 base.orig && "
		    "cp in/mid.qcow2 mid.qcow2 && cp in/base.qcow2 base.qcow2 "
		    ">/dev/null", dir), 0);
	stream_check("stsub", "in/base.qcow2");
}

/* A stream killed with SIGKILL at some point: top checks clean (leaks
 * allowed) and reads as before, on mid or on base. */
static void test_stream_crash(void)
{
	CHECK_EQ(sh("cd %s && mkdir -p stk && cd stk && rm -f * && "
		    "qemu-img create -q -f qcow2 base.qcow2 64M && "
		    "qemu-io -c 'write -P 0x51 0 64M' base.qcow2 && "
		    "qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "
		    "mid.qcow2 && qemu-io -c 'write -P 0x52 0 48M' -c "
		    "'write -z 50M 2M' mid.qcow2 && qemu-img create -q -f qcow2 "
		    "-b mid.qcow2 -F qcow2 top.qcow2 && qemu-io -c "
		    "'write -P 0x53 8M 8M' top.qcow2 && "
		    "qemu-img convert -O raw top.qcow2 flat.raw >/dev/null",
		    dir), 0);
	char top[256], copy[256];
	snprintf(copy, sizeof(copy), "%s/stk/top.qcow2", dir);
	snprintf(top, sizeof(top), "%s/stk/t.qcow2", dir);
	unsigned killed = 0;
	for (int round = 0; round < 6; round++) {
		CHECK_EQ(sh("cp '%s' '%s'", copy, top), 0);
		pid_t pid = fork();
		if (pid == 0) {
			char err[512];
			struct blk *b;
			struct blk_open_opts o = { 0 };
			if (blk_open(top, &o, &b, err, sizeof(err)) < 0)
				_exit(2);
			_exit(blk_stream(b, err, sizeof(err)) < 0 ? 1 : 0);
		}
		struct timespec ts = { 0, (long)(5 + round * 15) * 1000000L };
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		int st;
		waitpid(pid, &st, 0);
		killed += WIFSIGNALED(st);
		int rc = qemu_check(top);
		CHECK(rc == 0 || rc == 3);
		CHECK_EQ(sh("qemu-img compare -q '%s' '%s/stk/flat.raw'", top,
			    dir), 0);
	}
	fprintf(stderr, "  %u of 6 streams killed midway\n", killed);
}

/* ---- many threads through the worker pool ---- */

static void test_concurrent(void)
{
	const char *p = tpath("conc.qcow2");
	char err[512];
	/* 16 KiB clusters: the threads' 4 KiB blocks share clusters, so
	 * allocations race with each other and with unlocked I/O. */
	struct blk_create_opts co = { .format = BLK_FMT_QCOW2,
				      .size = 8 << 20, .cluster_bits = 14 };
	CHECK_EQ(blk_create(p, &co, err, sizeof(err)), 0);
	struct blk *b = open_rw(p, BLK_FMT_QCOW2);
	if (!b)
		return;
	pool_hammer(b);
	blk_close(b);
	CHECK_EQ(qemu_check(p), 0);
}

/* ---- a writer killed with SIGKILL ---- */

#define CR_SIZE (6u << 20)
#define CR_SECT 512u

/* Round @round of the crash writer's deterministic workload. */
static void crash_round(uint32_t seed, unsigned round, struct blk *b,
			uint8_t *model, uint8_t *touched)
{
	uint32_t s = seed * 7919u + round * 104729u;
	uint8_t buf[65536];
	for (int i = 0; i < 12; i++) {
		s = s * 1103515245u + 12345u;
		uint64_t off = (uint64_t)(s >> 8) % (CR_SIZE / CR_SECT) * CR_SECT;
		s = s * 1103515245u + 12345u;
		uint64_t len = ((s >> 8) % 128 + 1) * CR_SECT;
		if (off + len > CR_SIZE)
			len = CR_SIZE - off;
		bool zero = (s >> 4) % 8 == 0;
		if (!zero)
			fill(buf, len, s);
		if (b) {
			int r = zero ? blk_write_zeroes(b, off, len, (s & 1))
				     : blk_pwrite(b, off, buf, len);
			if (r)
				_exit(3);
		}
		if (model) {
			if (zero)
				memset(model + off, 0, len);
			else
				memcpy(model + off, buf, len);
		}
		if (touched)
			memset(touched + off / CR_SECT, 1, len / CR_SECT);
	}
}

static void crash_child(const char *p, uint32_t seed, unsigned first,
			int fd)
{
	struct blk *b;
	struct blk_open_opts rw = { 0 };
	if (blk_open(p, &rw, &b, NULL, 0) < 0)
		_exit(2);
	for (unsigned round = first;; round++) {
		crash_round(seed, round, b, NULL, NULL);
		if (blk_flush(b) < 0)
			_exit(4);
		if (write(fd, &round, sizeof(round)) != sizeof(round))
			_exit(5);
	}
}

static void crash_test(unsigned cluster_bits)
{
	char name[64], err[512];
	snprintf(name, sizeof(name), "crash-%u.qcow2", cluster_bits);
	const char *p = tpath(name);
	struct blk_create_opts co = { .format = BLK_FMT_QCOW2,
				      .size = CR_SIZE,
				      .cluster_bits = cluster_bits };
	CHECK_EQ(blk_create(p, &co, err, sizeof(err)), 0);
	uint8_t *model = calloc(1, CR_SIZE);
	uint8_t *touched = calloc(1, CR_SIZE / CR_SECT);
	uint8_t *got = malloc(CR_SIZE);
	unsigned next_round = 0, kills = 0;

	for (int iter = 0; iter < 6; iter++) {
		int pfd[2];
		CHECK_EQ(pipe(pfd), 0);
		pid_t pid = fork();
		if (pid == 0) {
			close(pfd[0]);
			crash_child(p, 1, next_round, pfd[1]);
		}
		close(pfd[1]);
		struct timespec ts = { 0, (long)(30 + rnd() % 250) * 1000000L };
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		int st;
		waitpid(pid, &st, 0);
		if (WIFSIGNALED(st))
			kills++;
		else
			fprintf(stderr, "  crash child exited %d\n",
				WEXITSTATUS(st));
		/* The rounds it reported flushed are durable; the next one
		 * was in flight and may have landed in part. */
		unsigned r, last = next_round, n = 0;
		while (read(pfd[0], &r, sizeof(r)) == sizeof(r)) {
			last = r;
			n++;
		}
		close(pfd[0]);
		unsigned upto = n ? last + 1 : next_round;
		for (unsigned round = next_round; round < upto; round++)
			crash_round(1, round, NULL, model, NULL);
		memset(touched, 0, CR_SIZE / CR_SECT);
		crash_round(1, upto, NULL, NULL, touched);

		int qc = qemu_check(p);
		if (qc != 0 && qc != 3)
			sh("qemu-img check '%s' | head -20 >&2", p);
		CHECK(qc == 0 || qc == 3);	/* leaks are allowed */
		struct blk_open_opts ro = { .readonly = true };
		struct blk *b;
		CHECK_EQ(blk_open(p, &ro, &b, err, sizeof(err)), 0);
		if (!b)
			break;
		CHECK_EQ(blk_pread(b, 0, got, CR_SIZE), 0);
		struct blk_check_result res;
		CHECK_EQ(blk_check(b, &res, NULL), 0);
		CHECK_EQ(res.corruptions, 0);
		blk_close(b);
		uint64_t bad = 0;
		for (uint64_t s = 0; s < CR_SIZE / CR_SECT; s++) {
			if (touched[s])	/* in flight: adopt what landed */
				memcpy(model + s * CR_SECT, got + s * CR_SECT,
				       CR_SECT);
			else if (memcmp(model + s * CR_SECT, got + s * CR_SECT,
					CR_SECT))
				bad++;
		}
		if (bad)
			fprintf(stderr, "  %llu flushed sectors lost after "
				"kill %d\n", (unsigned long long)bad, iter);
		CHECK_EQ(bad, 0);
		next_round = upto + 1;
	}
	CHECK(kills >= 5);
	printf("  cluster_bits %u: %u kills, %u rounds\n", cluster_bits, kills,
	       next_round);
	free(model);
	free(touched);
	free(got);
}

static void test_crash_4k(void)
{
	crash_test(12);
}

static void test_crash_512(void)
{
	crash_test(9);
}

static void test_crash_64k(void)
{
	crash_test(16);
}

int main(void)
{
	sandbox_test_threads(false);
	if (!mkdtemp(dir))
		SKIP("cannot make a temporary directory");
	if (sh("qemu-img --version >/dev/null 2>&1 && "
	       "qemu-io --version >/dev/null 2>&1") != 0)
		SKIP("qemu-img/qemu-io (package qemu-utils) not installed");
	RUN_TEST(test_ours_4k);
	RUN_TEST(test_ours_512);
	RUN_TEST(test_ours_64k);
	RUN_TEST(test_ours_v2);
	RUN_TEST(test_ours_2m);
	RUN_TEST(test_grow_sequential);
	RUN_TEST(test_qemu_chain);
	RUN_TEST(test_qemu_compressed);
	RUN_TEST(test_qemu_zero_v2_sizes);
	RUN_TEST(test_overlay);
	RUN_TEST(test_corrupt_headers);
	RUN_TEST(test_backing_chains);
	RUN_TEST(test_set_backing);
	RUN_TEST(test_stream);
	RUN_TEST(test_stream_crash);
	RUN_TEST(test_concurrent);
	RUN_TEST(test_crash_4k);
	RUN_TEST(test_crash_512);
	RUN_TEST(test_crash_64k);
	blktest_cleanup();
	return check_finish();
}
