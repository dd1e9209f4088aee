/* SPDX-License-Identifier: MIT */
/* tests/unit/test_clock.c - the machine's virtual clock (vclock_virt):
 * pause, resume, set, its wall clock, and many threads at once. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "clock.h"
#include "testlib.h"

#define MS	1000000ull
#define SEC	1000000000ull

static void test_follows_host(void)
{
	struct fake_clock fc;
	struct vclock_virt v;

	fake_clock_init(&fc);
	fc.mono_ns = 7 * SEC;
	fc.real_ns = 1700000000 * (int64_t)SEC;
	vclock_virt_init(&v, &fc.clk);
	/* Unpaused, it reads as the clock it follows. */
	CHECK_EQ(vclock_now(&v.clk), 7 * SEC);
	CHECK_EQ(v.clk.realtime_ns(&v.clk), fc.real_ns);
	fake_clock_advance(&fc, 3 * MS);
	CHECK_EQ(vclock_now(&v.clk), 7 * SEC + 3 * MS);
	CHECK(!vclock_paused(&v.clk));
	CHECK(!vclock_paused(&fc.clk));		/* other clocks never pause */
	vclock_virt_destroy(&v);
}

static void test_pause_resume(void)
{
	struct fake_clock fc;
	struct vclock_virt v;
	int64_t real0;

	fake_clock_init(&fc);
	fc.mono_ns = SEC;
	fc.real_ns = real0 = 1700000000 * (int64_t)SEC;
	vclock_virt_init(&v, &fc.clk);
	fake_clock_advance(&fc, 10 * MS);
	vclock_pause(&v);
	CHECK(vclock_paused(&v.clk));
	CHECK(vclock_virt_paused(&v));
	/* A paused clock does not advance, monotonic or wall. */
	fake_clock_advance(&fc, 5 * SEC);
	CHECK_EQ(vclock_now(&v.clk), SEC + 10 * MS);
	CHECK_EQ(v.clk.realtime_ns(&v.clk), real0 + (int64_t)(10 * MS));
	vclock_pause(&v);			/* idempotent */
	fake_clock_advance(&fc, SEC);
	CHECK_EQ(vclock_now(&v.clk), SEC + 10 * MS);
	/* It runs on from where it stopped: both now 6 s behind the host. */
	vclock_resume(&v);
	CHECK(!vclock_paused(&v.clk));
	CHECK_EQ(vclock_now(&v.clk), SEC + 10 * MS);
	fake_clock_advance(&fc, 2 * MS);
	CHECK_EQ(vclock_now(&v.clk), SEC + 12 * MS);
	CHECK_EQ(v.clk.realtime_ns(&v.clk), real0 + (int64_t)(12 * MS));
	vclock_resume(&v);			/* idempotent */
	CHECK_EQ(vclock_now(&v.clk), SEC + 12 * MS);
	/* A host realtime step while running reaches the wall clock. */
	fc.real_ns += 3600 * (int64_t)SEC;
	CHECK_EQ(v.clk.realtime_ns(&v.clk),
		 real0 + 3600 * (int64_t)SEC + (int64_t)(12 * MS));
	vclock_virt_destroy(&v);
}

static void test_set(void)
{
	struct fake_clock fc;
	struct vclock_virt v;
	int64_t real;

	fake_clock_init(&fc);
	fc.mono_ns = SEC;
	vclock_virt_init(&v, &fc.clk);
	real = v.clk.realtime_ns(&v.clk);
	/* Running: it jumps (either way) and runs on from there. */
	vclock_set(&v, 100 * SEC);
	CHECK_EQ(vclock_now(&v.clk), 100 * SEC);
	fake_clock_advance(&fc, MS);
	CHECK_EQ(vclock_now(&v.clk), 100 * SEC + MS);
	vclock_set(&v, 5 * MS);
	CHECK_EQ(vclock_now(&v.clk), 5 * MS);
	/* The wall clock is not the monotonic one: only the host moved it. */
	CHECK_EQ(v.clk.realtime_ns(&v.clk), real + (int64_t)MS);
	/* Paused (a snapshot's load): it stays there until resumed. */
	vclock_pause(&v);
	vclock_set(&v, 42 * SEC);
	fake_clock_advance(&fc, SEC);
	CHECK_EQ(vclock_now(&v.clk), 42 * SEC);
	vclock_resume(&v);
	fake_clock_advance(&fc, MS);
	CHECK_EQ(vclock_now(&v.clk), 42 * SEC + MS);
	vclock_virt_destroy(&v);
}

static unsigned watched;

static void on_change(void *opaque)
{
	(void)opaque;
	watched++;
}

static void test_watch(void)
{
	struct fake_clock fc;
	struct vclock_virt v;

	fake_clock_init(&fc);
	vclock_virt_init(&v, &fc.clk);
	CHECK_EQ(vclock_watch(&v.clk, on_change, NULL), 0);
	CHECK_EQ(vclock_watch(&v.clk, on_change, NULL), -EBUSY);
	CHECK_EQ(vclock_watch(&fc.clk, on_change, NULL), 0);	/* no-op */
	vclock_pause(&v);
	CHECK_EQ(watched, 0);			/* deadlines only recede */
	vclock_set(&v, SEC);
	CHECK_EQ(watched, 0);			/* paused: told at resume */
	vclock_resume(&v);
	CHECK_EQ(watched, 1);
	vclock_resume(&v);
	CHECK_EQ(watched, 1);
	vclock_set(&v, 2 * SEC);
	CHECK_EQ(watched, 2);
	vclock_unwatch(&v.clk);
	vclock_pause(&v);
	vclock_resume(&v);
	CHECK_EQ(watched, 2);
	vclock_virt_destroy(&v);
}

/* Readers on the host clock see time never go backwards while another
 * thread pauses and resumes as fast as it can. */
static struct vclock_virt shared;
static atomic_bool stop;
static atomic_uint reading;		/* readers that have read once */

static void *reader(void *arg)
{
	uint64_t last = 0, n = 0;
	int64_t last_real = 0;

	(void)arg;
	while (!atomic_load(&stop)) {
		uint64_t t = vclock_now(&shared.clk);
		int64_t r = shared.clk.realtime_ns(&shared.clk);

		if (t < last || r < last_real - (int64_t)SEC)
			return (void *)1;
		last = t;
		last_real = r;
		if (n++ == 0)
			atomic_fetch_add(&reading, 1);
	}
	return NULL;
}

static void test_threads(void)
{
	pthread_t t[3];
	void *ret;
	uint64_t before;

	vclock_virt_init(&shared, &vclock_host);
	atomic_store(&stop, false);
	atomic_store(&reading, 0);
	for (unsigned i = 0; i < 3; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, reader, NULL), 0);
	/* On a busy machine the readers may start late: wait for them. */
	while (atomic_load(&reading) < 3)
		sched_yield();
	for (unsigned i = 0; i < 20000; i++) {
		if (i & 1)
			vclock_resume(&shared);
		else
			vclock_pause(&shared);
	}
	atomic_store(&stop, true);
	for (unsigned i = 0; i < 3; i++) {
		CHECK_EQ(pthread_join(t[i], &ret), 0);
		CHECK(ret == NULL);
	}
	/* Ended resumed: the clock runs. */
	before = vclock_now(&shared.clk);
	while (vclock_now(&shared.clk) == before)
		;
	vclock_virt_destroy(&shared);
}

int main(void)
{
	RUN_TEST(test_follows_host);
	RUN_TEST(test_pause_resume);
	RUN_TEST(test_set);
	RUN_TEST(test_watch);
	RUN_TEST(test_threads);
	return check_finish();
}
