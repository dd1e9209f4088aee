/* SPDX-License-Identifier: MIT */
#include "timer.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"
#include "sandbox/sandbox.h"

struct vtimer_queue {
	const struct vclock *clk;
	pthread_mutex_t *lock;		/* NULL for manual queues */
	pthread_cond_t cond;
	pthread_t thread;
	bool has_thread;
	bool stop;
	struct vtimer *head;		/* armed timers, earliest first */
};

static void queue_unlink(struct vtimer_queue *q, struct vtimer *t)
{
	for (struct vtimer **pp = &q->head; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	t->next = NULL;
	t->armed = false;
}

static void queue_insert(struct vtimer_queue *q, struct vtimer *t)
{
	struct vtimer **pp = &q->head;

	while (*pp && (*pp)->deadline_ns <= t->deadline_ns)
		pp = &(*pp)->next;
	t->next = *pp;
	*pp = t;
	t->armed = true;
}

/* Pop and run every timer due at @now.  Callbacks may re-arm themselves. */
static unsigned run_due_locked(struct vtimer_queue *q, uint64_t now)
{
	unsigned n = 0;

	while (q->head && q->head->deadline_ns <= now) {
		struct vtimer *t = q->head;

		queue_unlink(q, t);
		t->cb(t->opaque, now);
		n++;
	}
	return n;
}

/* Host CLOCK_MONOTONIC time at which @clk reaches @deadline, @clk running. */
static struct timespec host_deadline(const struct vclock *clk,
				     uint64_t deadline)
{
	uint64_t now = vclock_now(clk), host;
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	host = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	if (deadline > now)
		host += deadline - now;
	ts.tv_sec = (time_t)(host / 1000000000ull);
	ts.tv_nsec = (long)(host % 1000000000ull);
	return ts;
}

/*
 * Runs due callbacks while the clock runs.  A paused clock (a machine's
 * vclock_virt) runs none: the thread waits until vclock_resume() wakes it
 * (queue_clock_changed), then looks at the deadlines afresh, in the clock's
 * time, which did not move while paused: no late ticks to catch up.
 */
static void *timer_thread(void *arg)
{
	struct vtimer_queue *q = arg;

	sandbox_thread_enter(SANDBOX_THREAD_TIMER, "timer");
	pthread_mutex_lock(q->lock);
	while (!q->stop) {
		if (vclock_paused(q->clk)) {
			pthread_cond_wait(&q->cond, q->lock);
			continue;
		}
		run_due_locked(q, vclock_now(q->clk));
		if (q->stop)
			break;
		if (!q->head) {
			pthread_cond_wait(&q->cond, q->lock);
		} else {
			struct timespec ts = host_deadline(q->clk,
							   q->head->deadline_ns);

			pthread_cond_timedwait(&q->cond, q->lock, &ts);
		}
	}
	pthread_mutex_unlock(q->lock);
	return NULL;
}

/* The clock resumed or was set: deadlines moved.  Taking the lock orders
 * this after the thread's look at the clock, so the wake-up is not lost. */
static void queue_clock_changed(void *opaque)
{
	struct vtimer_queue *q = opaque;

	pthread_mutex_lock(q->lock);
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(q->lock);
}

struct vtimer_queue *vtimer_queue_new(pthread_mutex_t *lock,
				      const struct vclock *clk)
{
	struct vtimer_queue *q = calloc(1, sizeof(*q));
	pthread_condattr_t attr;

	if (!q)
		return NULL;
	q->clk = clk;
	q->lock = lock;
	pthread_condattr_init(&attr);
	/* The thread sleeps in host CLOCK_MONOTONIC time (host_deadline). */
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&q->cond, &attr);
	pthread_condattr_destroy(&attr);
	if (vclock_watch(clk, queue_clock_changed, q) < 0) {
		pthread_cond_destroy(&q->cond);
		free(q);
		return NULL;
	}
	if (pthread_create(&q->thread, NULL, timer_thread, q)) {
		vclock_unwatch(clk);
		pthread_cond_destroy(&q->cond);
		free(q);
		return NULL;
	}
	q->has_thread = true;
	return q;
}

struct vtimer_queue *vtimer_queue_new_manual(const struct vclock *clk)
{
	struct vtimer_queue *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->clk = clk;
	pthread_cond_init(&q->cond, NULL);
	return q;
}

void vtimer_queue_free(struct vtimer_queue *q)
{
	if (!q)
		return;
	if (q->has_thread) {
		vclock_unwatch(q->clk);
		pthread_mutex_lock(q->lock);
		q->stop = true;
		pthread_cond_signal(&q->cond);
		pthread_mutex_unlock(q->lock);
		pthread_join(q->thread, NULL);
	}
	while (q->head)
		queue_unlink(q, q->head);
	pthread_cond_destroy(&q->cond);
	free(q);
}

const struct vclock *vtimer_queue_clock(struct vtimer_queue *q)
{
	return q->clk;
}

unsigned vtimer_queue_run_due(struct vtimer_queue *q, uint64_t now_ns)
{
	return run_due_locked(q, now_ns);
}

void vtimer_init(struct vtimer *t, struct vtimer_queue *q,
		 void (*cb)(void *opaque, uint64_t now_ns), void *opaque)
{
	t->cb = cb;
	t->opaque = opaque;
	t->q = q;
	t->deadline_ns = 0;
	t->armed = false;
	t->next = NULL;
}

void vtimer_mod(struct vtimer *t, uint64_t deadline_ns)
{
	struct vtimer_queue *q = t->q;

	if (t->armed)
		queue_unlink(q, t);
	t->deadline_ns = deadline_ns;
	queue_insert(q, t);
	if (q->has_thread && q->head == t)
		pthread_cond_signal(&q->cond);
}

void vtimer_del(struct vtimer *t)
{
	if (t->armed)
		queue_unlink(t->q, t);
}
