/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/blktest.h - helpers the block layer tests share: a scratch
 * directory, deterministic fill patterns, shell commands (qemu-img, the
 * oracle), and many threads hammering blk_submit() with verification.
 * Header-only; include check.h first.
 */
#ifndef VIVARIUM_BLKTEST_H
#define VIVARIUM_BLKTEST_H

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "block/block.h"

static char dir[] = "/tmp/vivarium-blk-XXXXXX";

/* A path in the scratch directory (8 rotating buffers). */
static inline char *tpath(const char *name)
{
	static char buf[8][256];
	static int i;
	char *p = buf[i++ % 8];
	snprintf(p, 256, "%s/%s", dir, name);
	return p;
}

/* Deterministic pseudo-random bytes from @seed. */
static inline void fill(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

/* Open read-write with format @f; CHECKs success. */
static inline struct blk *open_rw(const char *path, enum blk_format f)
{
	struct blk_open_opts o = { .format = f };
	struct blk *b = NULL;
	char err[256];
	int r = blk_open(path, &o, &b, err, sizeof(err));
	if (r < 0)
		fprintf(stderr, "open %s: %s\n", path, err);
	CHECK_EQ(r, 0);
	return b;
}

/* Run a shell command (printf-style); returns its exit status, -1 if it
 * did not exit normally. */
static inline int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int st = system(cmd);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

/* ---- the worker pool from many threads ---- */

#define POOL_THREADS 8
#define POOL_REQS 200
#define POOL_BLOCK 4096

struct pool_ctx {
	struct blk *b;
	int id;
	int failures;
};

struct waiter {
	struct blk_req req;
	struct iovec iov[2];
	pthread_mutex_t m;
	pthread_cond_t c;
	int done, ret;
};

static inline void waiter_complete(struct blk_req *req, int ret)
{
	struct waiter *w = req->opaque;
	pthread_mutex_lock(&w->m);
	w->done = 1;
	w->ret = ret;
	pthread_cond_signal(&w->c);
	pthread_mutex_unlock(&w->m);
}

static inline int submit_wait(struct blk *b, enum blk_op op, uint64_t off,
		       void *buf, size_t len)
{
	struct waiter w = { .done = 0 };
	pthread_mutex_init(&w.m, NULL);
	pthread_cond_init(&w.c, NULL);
	/* Two iovecs, to exercise scatter-gather. */
	w.iov[0] = (struct iovec){ buf, len / 2 };
	w.iov[1] = (struct iovec){ (char *)buf + len / 2, len - len / 2 };
	w.req = (struct blk_req){ .op = op, .offset = off, .iov = w.iov,
				  .iovcnt = 2, .len = len,
				  .complete = waiter_complete, .opaque = &w };
	int r = blk_submit(b, &w.req);
	if (r < 0)
		return r;
	pthread_mutex_lock(&w.m);
	while (!w.done)
		pthread_cond_wait(&w.c, &w.m);
	pthread_mutex_unlock(&w.m);
	return w.ret;
}

static inline void *pool_thread(void *arg)
{
	struct pool_ctx *c = arg;
	uint8_t w[POOL_BLOCK], r[POOL_BLOCK];
	/* Each thread owns the blocks with index % POOL_THREADS == id. */
	for (int i = 0; i < POOL_REQS; i++) {
		uint64_t blkno = (uint64_t)(i % 16) * POOL_THREADS + c->id;
		fill(w, sizeof(w), (uint32_t)(c->id * 1000 + i));
		if (submit_wait(c->b, BLK_OP_WRITE, blkno * POOL_BLOCK, w,
				sizeof(w)) != 0)
			c->failures++;
		if (submit_wait(c->b, BLK_OP_READ, blkno * POOL_BLOCK, r,
				sizeof(r)) != 0 || memcmp(w, r, sizeof(r)))
			c->failures++;
		if (i % 50 == 0 && submit_wait(c->b, BLK_OP_FLUSH, 0, r, 0))
			c->failures++;
	}
	return NULL;
}

/* @b: POOL_THREADS threads each write and read back their own blocks
 * through blk_submit() at once; CHECKs every request and byte. */
static inline void pool_hammer(struct blk *b)
{
	pthread_t t[POOL_THREADS];
	struct pool_ctx c[POOL_THREADS];
	for (int i = 0; i < POOL_THREADS; i++) {
		c[i] = (struct pool_ctx){ .b = b, .id = i };
		pthread_create(&t[i], NULL, pool_thread, &c[i]);
	}
	int failures = 0;
	for (int i = 0; i < POOL_THREADS; i++) {
		pthread_join(t[i], NULL);
		failures += c[i].failures;
	}
	CHECK_EQ(failures, 0);
}

static inline void blktest_cleanup(void)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

#endif
