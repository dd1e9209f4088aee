/* SPDX-License-Identifier: MIT */
/* Device timers: ordering, re-arming from callbacks, the threaded queue,
 * and both on a machine's clock that pauses. */
#include <unistd.h>

#include "testlib.h"
#include "timer.h"
#include "sandboxed.h"

struct counter {
	struct vtimer t;
	unsigned fired;
	uint64_t period, last;
};

static void on_fire(void *opaque, uint64_t now)
{
	struct counter *c = opaque;

	c->fired++;
	c->last = now;
	if (c->period)
		vtimer_mod(&c->t, c->t.deadline_ns + c->period);
}

static void test_manual(void)
{
	struct fake_clock fc;
	struct vtimer_queue *q;
	struct counter a = { .period = 0 }, b = { .period = 1000 };

	fake_clock_init(&fc);
	q = vtimer_queue_new_manual(&fc.clk);

	vtimer_init(&a.t, q, on_fire, &a);
	vtimer_init(&b.t, q, on_fire, &b);
	vtimer_mod(&a.t, 500);
	vtimer_mod(&b.t, 1000);
	CHECK_EQ(vtimer_queue_run_due(q, 499), 0);
	CHECK_EQ(vtimer_queue_run_due(q, 500), 1);
	CHECK_EQ(a.fired, 1);
	CHECK(!a.t.armed);
	/* A periodic timer catches up one period per run, without drift. */
	CHECK_EQ(vtimer_queue_run_due(q, 10500), 10);
	CHECK_EQ(b.fired, 10);
	CHECK_EQ(b.t.deadline_ns, 11000);
	vtimer_del(&b.t);
	CHECK_EQ(vtimer_queue_run_due(q, 100000), 0);
	/* Re-arming an armed timer moves it. */
	vtimer_mod(&a.t, 200000);
	vtimer_mod(&a.t, 150000);
	CHECK_EQ(vtimer_queue_run_due(q, 160000), 1);
	CHECK_EQ(vtimer_queue_run_due(q, 300000), 0);
	vtimer_queue_free(q);
}

static void test_thread(void)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct vtimer_queue *q = vtimer_queue_new(&lock, &vclock_host);
	struct counter c = { .period = 1000000 };	/* 1 ms */
	unsigned fired;

	CHECK(q != NULL);
	pthread_mutex_lock(&lock);
	vtimer_init(&c.t, q, on_fire, &c);
	vtimer_mod(&c.t, vclock_now(&vclock_host) + 1000000);
	pthread_mutex_unlock(&lock);
	usleep(100000);
	pthread_mutex_lock(&lock);
	fired = c.fired;
	vtimer_del(&c.t);
	pthread_mutex_unlock(&lock);
	/* ~100 expected; a loaded machine may lag but not stall. */
	CHECK(fired >= 20 && fired <= 110);
	vtimer_queue_free(q);
}

/* On a machine's clock, a periodic timer that catches up (one period per
 * run, like test_manual's) has nothing to catch up after a pause. */
static void test_manual_paused(void)
{
	struct fake_clock fc;
	struct vclock_virt v;
	struct vtimer_queue *q;
	struct counter c = { .period = 1000000 };	/* 1 kHz */

	fake_clock_init(&fc);
	vclock_virt_init(&v, &fc.clk);
	q = vtimer_queue_new_manual(&v.clk);
	vtimer_init(&c.t, q, on_fire, &c);
	vtimer_mod(&c.t, 1000000);
	fake_clock_advance(&fc, 10000000);
	CHECK_EQ(vtimer_queue_run_due(q, vclock_now(&v.clk)), 10);
	vclock_pause(&v);
	fake_clock_advance(&fc, 5000000000ull);
	CHECK_EQ(vtimer_queue_run_due(q, vclock_now(&v.clk)), 0);
	vclock_resume(&v);
	CHECK_EQ(vtimer_queue_run_due(q, vclock_now(&v.clk)), 0);
	fake_clock_advance(&fc, 1000000);
	CHECK_EQ(vtimer_queue_run_due(q, vclock_now(&v.clk)), 1);
	CHECK_EQ(c.fired, 11);				/* not 5011 */
	CHECK_EQ(c.last, 11000000);
	vtimer_queue_free(q);
	vclock_virt_destroy(&v);
}

static unsigned fired_locked(pthread_mutex_t *lock, struct counter *c)
{
	unsigned n;

	pthread_mutex_lock(lock);
	n = c->fired;
	pthread_mutex_unlock(lock);
	return n;
}

static uint64_t host_ms(void)
{
	return vclock_now(&vclock_host) / 1000000;
}

/* Wait up to 2 s for @c to have fired more than @n times. */
static unsigned wait_fired(pthread_mutex_t *lock, struct counter *c,
			   unsigned n)
{
	uint64_t end = host_ms() + 2000;

	while (fired_locked(lock, c) <= n && host_ms() < end)
		usleep(1000);
	return fired_locked(lock, c);
}

/* The timer thread on a machine's clock: no callback while paused, no
 * storm after, and a resume wakes it (the next tick is 1 ms away, though it
 * slept through the pause with nothing armed in host time). */
static void test_thread_paused(void)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct vclock_virt v;
	struct vtimer_queue *q, *q2;
	struct counter c = { .period = 1000000 };	/* 1 kHz */
	unsigned before, after;
	uint64_t resumed_ms;

	vclock_virt_init(&v, &vclock_host);
	q = vtimer_queue_new(&lock, &v.clk);
	CHECK(q != NULL);
	q2 = vtimer_queue_new(&lock, &v.clk);		/* one per clock */
	CHECK(q2 == NULL);
	pthread_mutex_lock(&lock);
	vtimer_init(&c.t, q, on_fire, &c);
	vtimer_mod(&c.t, vclock_now(&v.clk) + 1000000);
	pthread_mutex_unlock(&lock);
	CHECK(wait_fired(&lock, &c, 4) > 4);
	vclock_pause(&v);
	/* The guarantee: paused, and the lock taken once, nothing fires. */
	before = fired_locked(&lock, &c);
	usleep(300000);
	CHECK_EQ(fired_locked(&lock, &c), before);
	resumed_ms = host_ms();
	vclock_resume(&v);
	CHECK(wait_fired(&lock, &c, before) > before);
	usleep(10000);
	after = fired_locked(&lock, &c);
	/* At most a tick per ms since the resume (and some slack): not the
	 * 300 a catch-up would add. */
	CHECK(after - before <= host_ms() - resumed_ms + 20);
	pthread_mutex_lock(&lock);
	vtimer_del(&c.t);
	pthread_mutex_unlock(&lock);
	vtimer_queue_free(q);
	/* Freed, the clock takes a new queue. */
	q2 = vtimer_queue_new(&lock, &v.clk);
	CHECK(q2 != NULL);
	vtimer_queue_free(q2);
	vclock_virt_destroy(&v);
}

int main(void)
{
	sandbox_test_threads(false);
	RUN_TEST(test_manual);
	RUN_TEST(test_thread);
	RUN_TEST(test_manual_paused);
	RUN_TEST(test_thread_paused);
	return check_finish();
}
