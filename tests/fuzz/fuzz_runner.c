/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_runner.c - runs a libFuzzer target without libFuzzer, so
 * the unit tier exercises every fuzz target on every build (gcc too).
 *
 *   fuzz_NAME_run                 seeds, then random mutations of them for
 *                                 FUZZ_SECONDS (default 2) seconds
 *   fuzz_NAME_run FILE|DIR...     also every file given (a crash input,
 *                                 a libFuzzer corpus)
 *   fuzz_NAME_run --write-seeds DIR
 *                                 write the built-in seeds as files, a
 *                                 starting corpus for the libFuzzer binary
 *
 * The target supplies LLVMFuzzerTestOneInput() and, optionally,
 * fuzz_make_seeds().  A target signals a bug by crashing or abort()ing,
 * as under libFuzzer; this runner prints the input that was running first
 * (FUZZ_SEED=n reproduces a run's mutations).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"

#define MAX_SEEDS	256
#define FUZZ_MAX_INPUT	(1u << 20)

static struct { uint8_t *data; size_t len; } seeds[MAX_SEEDS];
static unsigned nseeds;
static const uint8_t *current;
static size_t current_len;
static char crash_path[] = "/tmp/fuzz-crash-XXXXXX";

__attribute__((weak)) void fuzz_make_seeds(void (*add)(const void *, size_t))
{
	(void)add;
}

static void add_seed(const void *p, size_t len)
{
	if (nseeds == MAX_SEEDS || len > FUZZ_MAX_INPUT)
		return;
	seeds[nseeds].data = malloc(len ? len : 1);
	if (!seeds[nseeds].data)
		return;
	memcpy(seeds[nseeds].data, p, len);
	seeds[nseeds].len = len;
	nseeds++;
}

/* On a crash, keep the input that caused it. */
static void on_crash(int sig)
{
	int fd = mkstemp(crash_path);

	if (fd >= 0 && current) {
		ssize_t w = write(fd, current, current_len);

		(void)w;
		close(fd);
		fprintf(stderr, "fuzz: signal %d; input (%zu bytes) saved as %s\n",
			sig, current_len, crash_path);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void run(const uint8_t *p, size_t len)
{
	current = p;
	current_len = len;
	LLVMFuzzerTestOneInput(p, len);
	current = NULL;
}

static void run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = malloc(FUZZ_MAX_INPUT);
	size_t n;

	if (!f || !buf) {
		fprintf(stderr, "fuzz: cannot read %s\n", path);
		exit(1);
	}
	n = fread(buf, 1, FUZZ_MAX_INPUT, f);
	fclose(f);
	add_seed(buf, n);
	run(buf, n);
	free(buf);
}

static void run_path(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *e;

	if (stat(path, &st) != 0) {
		fprintf(stderr, "fuzz: %s: no such file or directory\n", path);
		exit(1);
	}
	if (!S_ISDIR(st.st_mode)) {
		run_file(path);
		return;
	}
	d = opendir(path);
	while (d && (e = readdir(d))) {
		char p[4096];

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
		run_file(p);
	}
	if (d)
		closedir(d);
}

static uint64_t rng_state;

static uint32_t rnd(void)
{
	/* xorshift64*: reproducible from FUZZ_SEED. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

/* A few of the mutations libFuzzer makes. */
static size_t mutate(uint8_t *p, size_t len, size_t max)
{
	static const uint32_t interesting[] = {
		0, 1, 2, 3, 4, 7, 8, 15, 16, 0x7f, 0x80, 0xff, 0x100, 0x1000,
		0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000u,
		0xffffffffu,
	};
	unsigned n = 1 + rnd() % 8;

	for (unsigned i = 0; i < n; i++) {
		size_t at = len ? rnd() % len : 0;

		switch (rnd() % 7) {
		case 0:			/* flip a bit */
			if (len)
				p[at] ^= (uint8_t)(1u << (rnd() % 8));
			break;
		case 1:			/* random byte */
			if (len)
				p[at] = (uint8_t)rnd();
			break;
		case 2: {		/* interesting 8/16/32-bit value */
			uint32_t v = interesting[rnd() % (sizeof(interesting) /
							  sizeof(interesting[0]))];
			unsigned w = 1u << (rnd() % 3);

			if (at + w <= len)
				memcpy(p + at, &v, w);
			break;
		}
		case 3: {		/* copy a chunk inside the input */
			size_t from = len ? rnd() % len : 0;
			size_t cnt = 1 + rnd() % 32;

			if (from + cnt <= len && at + cnt <= len)
				memmove(p + at, p + from, cnt);
			break;
		}
		case 4:			/* small add/subtract */
			if (len)
				p[at] = (uint8_t)(p[at] + (int)(rnd() % 33) - 16);
			break;
		case 5:			/* truncate */
			if (len > 1)
				len = 1 + rnd() % len;
			break;
		default:		/* grow with random bytes */
			if (len < max) {
				size_t add = 1 + rnd() % 64;

				if (len + add > max)
					add = max - len;
				for (size_t k = 0; k < add; k++)
					p[len + k] = (uint8_t)rnd();
				len += add;
			}
			break;
		}
	}
	return len;
}

static int write_seeds(const char *dir)
{
	mkdir(dir, 0755);
	for (unsigned i = 0; i < nseeds; i++) {
		char p[4096];
		FILE *f;

		snprintf(p, sizeof(p), "%s/seed-%03u", dir, i);
		f = fopen(p, "wb");
		if (!f || fwrite(seeds[i].data, 1, seeds[i].len, f) != seeds[i].len) {
			fprintf(stderr, "fuzz: cannot write %s\n", p);
			return 1;
		}
		fclose(f);
	}
	printf("%u seeds written to %s\n", nseeds, dir);
	return 0;
}

int main(int argc, char **argv)
{
	const char *secs = getenv("FUZZ_SECONDS"), *seed = getenv("FUZZ_SEED");
	double budget = secs ? atof(secs) : 2.0;
	uint8_t *buf = malloc(FUZZ_MAX_INPUT);
	struct timespec t0, t;
	unsigned long iters = 0;

	signal(SIGSEGV, on_crash);
	signal(SIGABRT, on_crash);
	signal(SIGBUS, on_crash);
	signal(SIGFPE, on_crash);
	fuzz_make_seeds(add_seed);
	if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0)
		return write_seeds(argv[2]);
	for (unsigned i = 0; i < nseeds; i++)
		run(seeds[i].data, seeds[i].len);
	for (int i = 1; i < argc; i++)
		run_path(argv[i]);
	if (!nseeds)
		add_seed("", 0);

	rng_state = seed ? strtoull(seed, NULL, 0) : (uint64_t)time(NULL);
	if (!rng_state)
		rng_state = 1;
	printf("fuzz: %u seeds, mutating for %.1f s (FUZZ_SEED=%llu)\n", nseeds,
	       budget, (unsigned long long)rng_state);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		for (int k = 0; k < 64; k++) {
			unsigned s = rnd() % nseeds;
			size_t len = seeds[s].len;

			memcpy(buf, seeds[s].data, len);
			len = mutate(buf, len, FUZZ_MAX_INPUT);
			run(buf, len);
			iters++;
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((double)(t.tv_sec - t0.tv_sec) +
		 (t.tv_nsec - t0.tv_nsec) / 1e9 < budget);
	printf("fuzz: %lu inputs, no crash\n", iters + nseeds);
	free(buf);
	return 0;
}
