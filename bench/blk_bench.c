/* SPDX-License-Identifier: MIT */
/*
 * bench/blk_bench.c - request throughput of the block layer: COUNT
 * requests of one size through blk_submit() with DEPTH in flight, at the
 * offsets `qemu-img bench` uses (start at OFFSET, advance by STEP, wrap at
 * the disk's end), so both tools run the same pattern on the same file.
 * Takes qemu-img bench's options and prints its two lines:
 *
 *   blk_bench [-c COUNT] [-d DEPTH] [-f raw|qcow2] [-o OFFSET]
 *             [--pattern=BYTE] [-s SIZE] [-S STEP] [-w] FILE
 *
 * Exit: 0, 1 on an I/O error or a file that cannot be opened, 2 bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "block/block.h"
#include "options.h"

struct bench {
	struct blk *blk;
	bool write;
	uint64_t count;		/* requests in all */
	uint64_t size;		/* bytes per request */
	uint64_t step;		/* bytes between request offsets */
	uint64_t wrap;		/* offsets stay below this */

	pthread_mutex_t lock;
	pthread_cond_t idle;
	uint64_t issued;
	uint64_t next_offset;
	unsigned inflight;
	int error;		/* first failure, -errno */
};

struct slot {
	struct blk_req req;
	struct iovec iov;
	struct bench *bn;
};

/* Under bn->lock: claim the next offset for @s.  False when all issued. */
static bool claim_next(struct bench *bn, struct slot *s)
{
	if (bn->error || bn->issued == bn->count)
		return false;
	s->req.offset = bn->next_offset;
	bn->next_offset += bn->step;
	bn->next_offset = bn->wrap ? bn->next_offset % bn->wrap : 0;
	bn->issued++;
	bn->inflight++;
	return true;
}

static void submit_or_fail(struct slot *s)
{
	struct bench *bn = s->bn;
	int ret = blk_submit(bn->blk, &s->req);

	if (ret < 0) {
		pthread_mutex_lock(&bn->lock);
		if (!bn->error)
			bn->error = ret;
		if (--bn->inflight == 0)
			pthread_cond_signal(&bn->idle);
		pthread_mutex_unlock(&bn->lock);
	}
}

/* On a worker thread: account, then reuse the slot for the next request. */
static void on_complete(struct blk_req *req, int ret)
{
	struct slot *s = req->opaque;
	struct bench *bn = s->bn;
	bool again;

	pthread_mutex_lock(&bn->lock);
	if (ret < 0 && !bn->error)
		bn->error = ret;
	bn->inflight--;
	again = claim_next(bn, s);
	if (!again && bn->inflight == 0)
		pthread_cond_signal(&bn->idle);
	pthread_mutex_unlock(&bn->lock);
	if (again)
		submit_or_fail(s);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: blk_bench [-c COUNT] [-d DEPTH] [-f raw|qcow2] [-o OFFSET]\n"
		"                 [--pattern=BYTE] [-s SIZE] [-S STEP] [-w] FILE\n"
		"Defaults as qemu-img bench: -c 75000 -d 64 -s 4K, STEP = SIZE.\n");
}

static int parse_size_arg(const char *opt, const char *s, uint64_t *out)
{
	if (parse_size(s, out) < 0) {
		fprintf(stderr, "blk_bench: %s '%s' is not a size\n", opt, s);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pattern", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct blk_open_opts oo = { 0 };
	struct bench bn = {
		.count = 75000, .size = 4096,
		.lock = PTHREAD_MUTEX_INITIALIZER, .idle = PTHREAD_COND_INITIALIZER,
	};
	uint64_t offset = 0, step = 0, depth = 64, pattern = 0;
	struct slot *slots;
	uint8_t *bufs;
	char err[512] = "";
	double t0, t1;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "c:d:f:o:s:S:wh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': if (parse_size_arg("-c", optarg, &bn.count)) return 2; break;
		case 'd': if (parse_size_arg("-d", optarg, &depth)) return 2; break;
		case 'o': if (parse_size_arg("-o", optarg, &offset)) return 2; break;
		case 's': if (parse_size_arg("-s", optarg, &bn.size)) return 2; break;
		case 'S': if (parse_size_arg("-S", optarg, &step)) return 2; break;
		case 'P': if (parse_size_arg("--pattern", optarg, &pattern)) return 2; break;
		case 'w': bn.write = true; break;
		case 'f':
			if (blk_parse_format(optarg, &oo.format) < 0) {
				fprintf(stderr, "blk_bench: unknown format '%s'\n", optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind + 1 != argc || !bn.count || !depth || depth > 1024 ||
	    !bn.size || bn.size > (64u << 20) || pattern > 255) {
		usage(stderr);
		return 2;
	}
	bn.step = step ? step : bn.size;
	oo.readonly = !bn.write;
	ret = blk_open(argv[optind], &oo, &bn.blk, err, sizeof(err));
	if (ret < 0) {
		fprintf(stderr, "blk_bench: %s\n", err[0] ? err : strerror(-ret));
		return 1;
	}
	if (blk_length(bn.blk) < bn.size || offset > blk_length(bn.blk) - bn.size) {
		fprintf(stderr, "blk_bench: the disk is smaller than -o + -s\n");
		blk_close(bn.blk);
		return 2;
	}
	bn.wrap = blk_length(bn.blk) - bn.size;
	bn.next_offset = offset;
	if (depth > bn.count)
		depth = bn.count;

	slots = calloc(depth, sizeof(*slots));
	if (!slots || posix_memalign((void **)&bufs, 4096, depth * bn.size)) {
		fprintf(stderr, "blk_bench: out of memory\n");
		return 1;
	}
	memset(bufs, (int)pattern, depth * bn.size);
	printf("Sending %" PRIu64 " %s requests, %" PRIu64 " bytes each, %" PRIu64
	       " in parallel (starting at offset %" PRIu64 ", step size %" PRIu64 ")\n",
	       bn.count, bn.write ? "write" : "read", bn.size, depth, offset, bn.step);
	fflush(stdout);

	t0 = now_s();
	for (uint64_t i = 0; i < depth; i++) {
		struct slot *s = &slots[i];
		bool go;

		s->bn = &bn;
		s->iov = (struct iovec){ bufs + i * bn.size, bn.size };
		s->req = (struct blk_req){
			.op = bn.write ? BLK_OP_WRITE : BLK_OP_READ,
			.iov = &s->iov, .iovcnt = 1,
			.complete = on_complete, .opaque = s,
		};
		pthread_mutex_lock(&bn.lock);
		go = claim_next(&bn, s);
		pthread_mutex_unlock(&bn.lock);
		if (go)
			submit_or_fail(s);
	}
	pthread_mutex_lock(&bn.lock);
	while (bn.inflight)
		pthread_cond_wait(&bn.idle, &bn.lock);
	pthread_mutex_unlock(&bn.lock);
	t1 = now_s();
	/* complete() has returned for every request before we free slots. */
	blk_drain(bn.blk);

	if (bn.error)
		fprintf(stderr, "blk_bench: request failed: %s\n", strerror(-bn.error));
	else
		printf("Run completed in %.3f seconds.\n", t1 - t0);
	blk_close(bn.blk);
	free(slots);
	free(bufs);
	return bn.error ? 1 : 0;
}
