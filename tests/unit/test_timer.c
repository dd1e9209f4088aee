/* SPDX-License-Identifier: MIT */
/* Device timers: ordering, re-arming from callbacks, the threaded queue. */
#include <unistd.h>

#include "testlib.h"
#include "timer.h"

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

int main(void)
{
	RUN_TEST(test_manual);
	RUN_TEST(test_thread);
	return check_finish();
}
