/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_block.c - the generic block layer on raw images: range
 * checks, probing, OFD locks (QEMU's lock bytes), discard/write_zeroes, block status, creation
 * and the worker pool under many submitting threads.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "blktest.h"
#include "sandboxed.h"

static void test_raw_io(void)
{
	struct blk_create_opts co = { .format = BLK_FMT_RAW, .size = 1 << 20 };
	char err[256];
	const char *p = tpath("raw.img");

	CHECK_EQ(blk_create(p, &co, err, sizeof(err)), 0);
	CHECK_EQ(blk_create(p, &co, err, sizeof(err)), -EEXIST);
	CHECK(strstr(err, "already exists") != NULL);

	struct blk *b = open_rw(p, BLK_FMT_AUTO);
	if (!b)
		return;
	CHECK_EQ(blk_get_format(b), BLK_FMT_RAW);
	CHECK_EQ(blk_length(b), 1 << 20);
	uint8_t w[8192], r[8192];
	fill(w, sizeof(w), 1);
	CHECK_EQ(blk_pwrite(b, 4096 + 3, w, sizeof(w)), 0);
	CHECK_EQ(blk_pread(b, 4096 + 3, r, sizeof(r)), 0);
	CHECK(!memcmp(w, r, sizeof(r)));
	/* Past the end, and overflowing offsets. */
	CHECK_EQ(blk_pread(b, (1 << 20) - 511, r, 512), -EINVAL);
	CHECK_EQ(blk_pread(b, UINT64_MAX - 10, r, 512), -EINVAL);
	CHECK_EQ(blk_pwrite(b, 1 << 20, w, 1), -EINVAL);
	CHECK_EQ(blk_discard(b, 0, (1 << 20) + 512), -EINVAL);
	/* write_zeroes and discard read back as zero. */
	CHECK_EQ(blk_write_zeroes(b, 4096, 4096, false), 0);
	CHECK_EQ(blk_pread(b, 4096, r, 4096), 0);
	CHECK(r[0] == 0 && r[4095] == 0 && !memcmp(r, r + 1, 4095));
	CHECK_EQ(blk_write_zeroes(b, 8192, 4096, true), 0);
	CHECK_EQ(blk_pread(b, 8192, r, 4096), 0);
	CHECK(r[0] == 0 && !memcmp(r, r + 1, 4095));
	CHECK_EQ(blk_pread(b, 12288, r, 3), 0);
	CHECK(!memcmp(r, w + 8192 - 3, 3));	/* the tail survived */
	/* A guest may not plant a qcow2 magic in a probed raw image. */
	CHECK_EQ(blk_pwrite(b, 0, "QFI\xfb", 4), -EPERM);
	CHECK_EQ(blk_flush(b), 0);

	uint64_t pnum = 0;
	bool zero = false;
	CHECK_EQ(blk_block_status(b, 0, 1 << 20, &pnum, &zero), 0);
	CHECK(pnum > 0 && pnum <= 1 << 20);
	CHECK_EQ(blk_block_status(b, 512 * 1024, 512 * 1024, &pnum, &zero), 0);
	CHECK(zero);	/* never written: a hole */

	struct blk_info info;
	CHECK_EQ(blk_get_info(b, &info), 0);
	CHECK_EQ(info.format, BLK_FMT_RAW);
	CHECK_EQ(info.virtual_size, 1 << 20);
	CHECK_EQ(info.file_length, 1 << 20);
	CHECK(info.actual_size < (1 << 20));	/* sparse */
	blk_close(b);

	/* Read-only: writes refused. */
	struct blk_open_opts ro = { .readonly = true };
	CHECK_EQ(blk_open(p, &ro, &b, err, sizeof(err)), 0);
	CHECK(blk_is_readonly(b));
	CHECK_EQ(blk_pwrite(b, 0, w, 512), -EROFS);
	CHECK_EQ(blk_pread(b, 4096 + 3, r, 100), 0);
	CHECK(r[0] == 0);
	blk_close(b);
}

static void test_odd_size_and_errors(void)
{
	char err[256];
	const char *p = tpath("odd.iso");
	int fd = open(p, O_CREAT | O_WRONLY, 0644);
	CHECK(write(fd, "hello", 5) == 5);
	close(fd);
	struct blk_open_opts ro = { .readonly = true, .format = BLK_FMT_RAW };
	struct blk *b;
	CHECK_EQ(blk_open(p, &ro, &b, err, sizeof(err)), 0);
	CHECK_EQ(blk_length(b), 512);
	uint8_t r[512];
	CHECK_EQ(blk_pread(b, 0, r, 512), 0);
	CHECK(!memcmp(r, "hello", 5) && r[5] == 0 && r[511] == 0);
	blk_close(b);

	CHECK_EQ(blk_open(tpath("missing"), &ro, &b, err, sizeof(err)),
		 -ENOENT);
	CHECK(strstr(err, "missing") != NULL);
	CHECK(b == NULL);
	CHECK_EQ(blk_open(dir, &ro, &b, err, sizeof(err)), -EINVAL);

	enum blk_format f;
	CHECK_EQ(blk_parse_format("qcow2", &f), 0);
	CHECK_EQ(f, BLK_FMT_QCOW2);
	CHECK_EQ(blk_parse_format("vmdk", &f), -EINVAL);
	CHECK(!strcmp(blk_format_name(BLK_FMT_RAW), "raw"));
	blk_close(NULL);
}

static void test_locks(void)
{
	struct blk_create_opts co = { .format = BLK_FMT_RAW, .size = 65536 };
	char err[256];
	const char *p = tpath("lock.img");
	struct blk *w1, *w2, *r1, *r2;
	struct blk_open_opts rw = { 0 }, ro = { .readonly = true },
			     nolock = { .readonly = true, .no_lock = true };

	CHECK_EQ(blk_create(p, &co, err, sizeof(err)), 0);
	CHECK_EQ(blk_open(p, &rw, &w1, err, sizeof(err)), 0);
	/* OFD locks conflict between open file descriptions, even in one
	 * process; and across processes. */
	CHECK_EQ(blk_open(p, &rw, &w2, err, sizeof(err)), -EBUSY);
	CHECK(strstr(err, "in use by another process") != NULL);
	CHECK_EQ(blk_open(p, &ro, &r1, err, sizeof(err)), -EBUSY);
	CHECK_EQ(blk_open(p, &nolock, &r1, err, sizeof(err)), 0);
	blk_close(r1);
	pid_t pid = fork();
	if (pid == 0) {
		struct blk *x;
		_exit(blk_open(p, &ro, &x, NULL, 0) == -EBUSY ? 0 : 1);
	}
	int st;
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	blk_close(w1);
	/* Readers share. */
	CHECK_EQ(blk_open(p, &ro, &r1, err, sizeof(err)), 0);
	CHECK_EQ(blk_open(p, &ro, &r2, err, sizeof(err)), 0);
	CHECK_EQ(blk_open(p, &rw, &w2, err, sizeof(err)), -EBUSY);
	blk_close(r1);
	blk_close(r2);
	CHECK_EQ(blk_open(p, &rw, &w2, err, sizeof(err)), 0);
	blk_close(w2);
}

/* The bytes another open file description holds a lock on, as a bitmap:
 * bit n for byte 100 + n, bit 8 + n for byte 200 + n (QEMU's protocol). */
static unsigned held_bytes(const char *p)
{
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	unsigned bits = 0;

	for (unsigned n = 0; fd >= 0 && n < 8; n++) {
		for (unsigned base = 0; base < 2; base++) {
			struct flock fl = { .l_type = F_WRLCK,
					    .l_whence = SEEK_SET,
					    .l_start = 100 + 100 * base + n,
					    .l_len = 1 };
			if (fcntl(fd, F_OFD_GETLK, &fl) == 0 &&
			    fl.l_type != F_UNLCK)
				bits |= 1u << (n + 8 * base);
		}
	}
	if (fd >= 0)
		close(fd);
	return bits;
}

static void test_lock_bytes(void)
{
	struct blk_create_opts raw = { .format = BLK_FMT_RAW, .size = 65536 },
			       q2 = { .format = BLK_FMT_QCOW2, .size = 65536 };
	struct blk_open_opts rw = { 0 }, ro = { .readonly = true };
	const char *pr = tpath("bytes.raw"), *pq = tpath("bytes.qcow2");
	char err[256];
	struct blk *b;

	CHECK_EQ(blk_create(pr, &raw, err, sizeof(err)), 0);
	CHECK_EQ(blk_create(pq, &q2, err, sizeof(err)), 0);
	/* A writer holds consistent read + write (+ resize for qcow2) and
	 * shares neither write nor resize; a reader holds consistent read. */
	CHECK_EQ(blk_open(pr, &rw, &b, err, sizeof(err)), 0);
	CHECK_EQ(held_bytes(pr), 0x3u | (0xau << 8));
	blk_close(b);
	CHECK_EQ(held_bytes(pr), 0);
	CHECK_EQ(blk_open(pq, &rw, &b, err, sizeof(err)), 0);
	CHECK_EQ(held_bytes(pq), 0xbu | (0xau << 8));
	blk_close(b);
	CHECK_EQ(blk_open(pr, &ro, &b, err, sizeof(err)), 0);
	CHECK_EQ(held_bytes(pr), 0x1u | (0xau << 8));
	blk_close(b);

	/* Someone else's whole-file write lock (an older vivarium, or a tool
	 * that does not speak the protocol) refuses every open. */
	int fd = open(pr, O_RDWR | O_CLOEXEC);
	struct flock whole = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	CHECK_EQ(fcntl(fd, F_OFD_SETLK, &whole), 0);
	CHECK_EQ(blk_open(pr, &ro, &b, err, sizeof(err)), -EBUSY);
	CHECK(strstr(err, "holds a lock on it") != NULL);
	close(fd);

	/* blk_open_fd's locks go with blk_close(), though the caller's fd
	 * keeps the open file description. */
	fd = open(pr, O_RDWR | O_CLOEXEC);
	CHECK_EQ(blk_open_fd(fd, pr, &rw, &b, err, sizeof(err)), 0);
	CHECK(held_bytes(pr) != 0);
	blk_close(b);
	CHECK_EQ(held_bytes(pr), 0);
	/* A failed open leaves no lock bytes behind either. */
	struct blk *w;
	CHECK_EQ(blk_open(pr, &rw, &w, err, sizeof(err)), 0);
	CHECK_EQ(blk_open_fd(fd, pr, &rw, &b, err, sizeof(err)), -EBUSY);
	CHECK(strstr(err, "does not share write access") != NULL);
	blk_close(w);
	CHECK_EQ(held_bytes(pr), 0);
	close(fd);
}

struct counter {
	pthread_mutex_t m;
	int done;
};

static void count_complete(struct blk_req *req, int ret)
{
	struct counter *c = req->opaque;
	usleep(1000);	/* drain must wait for this to return */
	pthread_mutex_lock(&c->m);
	c->done += ret == 0 ? 1 : 1000;
	pthread_mutex_unlock(&c->m);
}

static void test_pool(void)
{
	struct blk_create_opts co = { .format = BLK_FMT_RAW,
				      .size = 1 << 20 };
	char err[256];
	const char *p = tpath("pool.img");
	CHECK_EQ(blk_create(p, &co, err, sizeof(err)), 0);
	struct blk *b = open_rw(p, BLK_FMT_RAW);
	if (!b)
		return;
	pool_hammer(b);

	/* blk_drain waits for every complete() to return. */
	struct counter cnt = { PTHREAD_MUTEX_INITIALIZER, 0 };
	static struct blk_req reqs[64];
	static uint8_t buf[64][512];
	static struct iovec iov[64];
	for (int i = 0; i < 64; i++) {
		iov[i] = (struct iovec){ buf[i], 512 };
		reqs[i] = (struct blk_req){ .op = i % 3 ? BLK_OP_READ
							: BLK_OP_WRITE,
					    .offset = (uint64_t)i * 512,
					    .iov = &iov[i], .iovcnt = 1,
					    .complete = count_complete,
					    .opaque = &cnt };
		CHECK_EQ(blk_submit(b, &reqs[i]), 0);
	}
	blk_drain(b);
	CHECK_EQ(cnt.done, 64);
	/* A request past the end completes with -EINVAL. */
	cnt.done = 0;
	reqs[0].offset = 1 << 20;
	CHECK_EQ(blk_submit(b, &reqs[0]), 0);
	blk_drain(b);
	CHECK_EQ(cnt.done, 1000);
	blk_close(b);

	struct blk_open_opts ro = { .readonly = true };
	CHECK_EQ(blk_open(p, &ro, &b, err, sizeof(err)), 0);
	reqs[1].op = BLK_OP_WRITE;
	CHECK_EQ(blk_submit(b, &reqs[1]), -EROFS);
	blk_close(b);
}

int main(void)
{
	sandbox_test_threads(false);
	if (!mkdtemp(dir))
		SKIP("cannot make a temporary directory");
	RUN_TEST(test_raw_io);
	RUN_TEST(test_odd_size_and_errors);
	RUN_TEST(test_locks);
	RUN_TEST(test_lock_bytes);
	RUN_TEST(test_pool);
	blktest_cleanup();
	return check_finish();
}
