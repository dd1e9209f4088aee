/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_qcow2.c - the block layer on hostile image files.  A
 * libFuzzer target (LLVMFuzzerTestOneInput), also run by fuzz_runner.c
 * as the unit test fuzz_qcow2.  Each input is an image file (in a memfd):
 * open it read-only, read, walk its block status, check it; and if our
 * check found it consistent, open it read-write, write, zero and discard,
 * and require the data to read back and the check to stay free of
 * refcount corruption.  Anything else but a crash, a hang or a broken
 * invariant (__builtin_trap) is fine.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "block/block.h"
#include "fuzz.h"

#define MAX_INPUT (4u << 20)

static int memfd = -1;
static char mem_path[64];

static int load(const uint8_t *data, size_t size)
{
	if (memfd < 0) {
		memfd = memfd_create("fuzz-image", MFD_CLOEXEC);
		if (memfd < 0)
			return -1;
		snprintf(mem_path, sizeof(mem_path), "/proc/self/fd/%d",
			 memfd);
	}
	if (ftruncate(memfd, 0) < 0)
		return -1;
	size_t done = 0;
	while (done < size) {
		ssize_t n = pwrite(memfd, data + done, size - done,
				   (off_t)done);
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

/* Lines of a check report that mean a refcount below its uses, or a
 * reference past the end of the file: real corruption. */
static bool refcount_corrupt(struct blk *b)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	struct blk_check_result res;
	bool bad = false;

	if (!f)
		return false;
	if (blk_check(b, &res, f) == 0) {
		fflush(f);
		bad = text && (strstr(text, "ERROR cluster") ||
			       strstr(text, "past the end"));
	}
	fclose(f);
	free(text);
	return bad;
}

static void read_some(struct blk *b)
{
	static uint8_t buf[65536];
	uint64_t len = blk_length(b);
	uint64_t offs[4] = { 0, len / 2, len > 65536 ? len - 65536 : 0,
			     len / 3 };

	for (int i = 0; i < 4; i++) {
		uint64_t n = len - offs[i] < sizeof(buf) ? len - offs[i]
							 : sizeof(buf);
		n &= ~511ull;
		if (n)
			blk_pread(b, offs[i] & ~511ull, buf, n);
	}
	/* Past the end: always refused. */
	if (blk_pread(b, len, buf, 512) != -EINVAL)
		__builtin_trap();
	uint64_t off = 0;
	for (int i = 0; i < 64 && off < len; i++) {
		uint64_t pnum = 0;
		bool zero;
		if (blk_block_status(b, off, len - off, &pnum, &zero) < 0)
			break;
		if (pnum == 0 || pnum > len - off)
			__builtin_trap();
		off += pnum;
	}
}

static void write_some(struct blk *b)
{
	static uint8_t w[8192], r[8192];
	uint64_t len = blk_length(b);

	if (len < sizeof(w))
		return;
	for (size_t i = 0; i < sizeof(w); i++)
		w[i] = (uint8_t)(i * 7 + 1);
	uint64_t offs[3] = { 0, (len / 2) & ~511ull, len - sizeof(w) };
	for (int i = 0; i < 3; i++) {
		if (blk_pwrite(b, offs[i] + 512, w, sizeof(w) - 1024) != 0)
			continue;	/* refused corrupt metadata: fine */
		if (blk_pread(b, offs[i] + 512, r, sizeof(w) - 1024) == 0 &&
		    memcmp(w, r, sizeof(w) - 1024))
			__builtin_trap();
	}
	blk_write_zeroes(b, len / 4 & ~511ull, 4096, false);
	blk_discard(b, 0, len / 8 & ~511ull);
	if (blk_write_zeroes(b, len - 1024, 1024, true) == 0 &&
	    blk_pread(b, len - 1024, r, 1024) == 0 && (r[0] || r[1023]))
		__builtin_trap();
	blk_flush(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct blk_open_opts ro = { .format = BLK_FMT_QCOW2,
				    .readonly = true, .no_lock = true };
	struct blk *b;
	char err[512];
	bool clean = false;

	if (size > MAX_INPUT || load(data, size) < 0)
		return 0;
	err[0] = '\0';
	int r = blk_open(mem_path, &ro, &b, err, sizeof(err));
	if (r < 0) {
		if (!err[0] || b)	/* every failure says why */
			__builtin_trap();
		return 0;
	}
	struct blk_info info;
	blk_get_info(b, &info);
	read_some(b);
	struct blk_check_result res;
	if (blk_check(b, &res, NULL) == 0 && res.corruptions == 0 &&
	    res.check_errors == 0)
		clean = true;
	blk_close(b);
	if (!clean)
		return 0;

	/* A consistent image must stay so under our writes. */
	if (load(data, size) < 0)
		return 0;
	struct blk_open_opts rw = { .format = BLK_FMT_QCOW2, .no_lock = true };
	if (blk_open(mem_path, &rw, &b, err, sizeof(err)) < 0)
		return 0;
	write_some(b);
	if (refcount_corrupt(b))
		__builtin_trap();
	blk_close(b);
	return 0;
}

/* ---- seeds: valid images built with the block layer itself ---- */

static void put_be(uint8_t *p, size_t len, size_t at, uint64_t v, int n)
{
	if (at + (size_t)n > len)
		return;
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[at + (size_t)i] = (uint8_t)v;
}

static uint8_t *build_seed(unsigned cluster_bits, unsigned compat,
			   uint64_t size, unsigned salt, const char *tmpdir,
			   size_t *len)
{
	char path[512], err[256];
	struct blk *b;
	uint8_t *out = NULL;

	snprintf(path, sizeof(path), "%s/seed.qcow2", tmpdir);
	unlink(path);
	struct blk_create_opts co = { .format = BLK_FMT_QCOW2, .size = size,
				      .cluster_bits = cluster_bits,
				      .compat = compat };
	if (blk_create(path, &co, err, sizeof(err)) < 0)
		return NULL;
	struct blk_open_opts rw = { .format = BLK_FMT_QCOW2 };
	if (blk_open(path, &rw, &b, err, sizeof(err)) < 0)
		return NULL;
	uint8_t buf[3000];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i ^ salt);
	blk_pwrite(b, 0, buf, sizeof(buf));
	blk_pwrite(b, size / 2 + 100, buf, sizeof(buf));
	blk_pwrite(b, size - 4096, buf, 2048);
	blk_write_zeroes(b, size / 4, size / 8, salt & 1);
	blk_close(b);
	int fd = open(path, O_RDONLY);
	off_t n = fd < 0 ? -1 : lseek(fd, 0, SEEK_END);
	if (n > 0 && (out = malloc((size_t)n)) &&
	    pread(fd, out, (size_t)n, 0) != n) {
		free(out);
		out = NULL;
	}
	if (fd >= 0)
		close(fd);
	unlink(path);
	*len = (size_t)n;
	return out;
}

/* Valid images (cluster sizes 512 B..64 KiB, v2 and v3, data and zero
 * clusters), and each with header fields set to edge values: the cases
 * open must refuse with a message. */
void fuzz_make_seeds(void (*add)(const void *data, size_t len))
{
	static const struct {
		unsigned cluster_bits, compat;
		uint64_t size;
	} kinds[] = {
		{ 9, 3, 64 << 10 }, { 9, 3, 200 << 10 }, { 12, 2, 256 << 10 },
		{ 12, 3, 1 << 20 }, { 16, 3, 1 << 20 },
	};
	static const struct { int at, width; uint64_t v; } edits[] = {
		{ 4, 4, 4 },		/* version */
		{ 20, 4, 8 },		/* cluster_bits too small */
		{ 20, 4, 22 },		/* too large */
		{ 24, 8, UINT64_MAX },	/* virtual size */
		{ 36, 4, 0xffffffff },	/* l1_size */
		{ 40, 8, 0x200 },	/* L1 offset misaligned */
		{ 40, 8, 1ull << 40 },	/* L1 offset past the end */
		{ 48, 8, 1ull << 40 },	/* refcount table past the end */
		{ 56, 4, 0xffffffff },	/* refcount table clusters */
		{ 60, 4, 0x7fffffff },	/* snapshots */
		{ 72, 8, 1ull << 40 },	/* unknown incompatible feature */
		{ 96, 4, 7 },		/* refcount_order */
		{ 100, 4, 0xfff8 },	/* header_length */
		{ 8, 8, 0x70 },		/* backing name over the header */
		{ 16, 4, 5000 },	/* backing name too long */
	};
	char tmp[] = "/tmp/vivarium-fuzzseed-XXXXXX";

	if (!mkdtemp(tmp))
		return;
	for (unsigned k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		size_t len;
		uint8_t *img = build_seed(kinds[k].cluster_bits,
					  kinds[k].compat, kinds[k].size, k,
					  tmp, &len);
		if (!img)
			continue;
		add(img, len);
		if (k == 0 || k == 2) {
			for (unsigned e = 0;
			     e < sizeof(edits) / sizeof(edits[0]); e++) {
				uint8_t *c = malloc(len);
				memcpy(c, img, len);
				put_be(c, len, (size_t)edits[e].at, edits[e].v,
				       edits[e].width);
				add(c, len);
				free(c);
			}
			add(img, len / 2);	/* truncated */
			add(img, 80);
		}
		free(img);
	}
	rmdir(tmp);
}
