/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/timer.h - device timers.  One thread per machine sleeps until the
 * earliest deadline and runs expired callbacks with the machine's device lock
 * held (the same lock vCPU threads hold while dispatching to devices).
 * A queue made with vtimer_queue_new_manual() has no thread: tests fire due
 * timers with vtimer_queue_run_due().
 */
#ifndef VIVARIUM_TIMER_H
#define VIVARIUM_TIMER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "clock.h"

struct vtimer_queue;

struct vtimer {
	void (*cb)(void *opaque, uint64_t now_ns);
	void *opaque;
	uint64_t deadline_ns;
	bool armed;
	struct vtimer_queue *q;
	struct vtimer *next;
};

/* @lock: the device lock held around callbacks (and by callers of
 * vtimer_mod/vtimer_del).  @clk: deadlines are in its monotonic time; a
 * machine's vclock_virt (clock.h) runs no callback while paused, and after
 * vclock_resume() the thread looks at the deadlines afresh (the clock did
 * not move meanwhile: no late ticks).  One threaded queue per vclock_virt.
 * Call this and vtimer_queue_free() without @lock held.  Returns NULL on
 * allocation/thread failure, or when @clk already has a queue. */
struct vtimer_queue *vtimer_queue_new(pthread_mutex_t *lock,
				      const struct vclock *clk);
/* No thread: callbacks run only from vtimer_queue_run_due(). */
struct vtimer_queue *vtimer_queue_new_manual(const struct vclock *clk);
/* Stops the thread (if any); timers must no longer be used. */
void vtimer_queue_free(struct vtimer_queue *q);
const struct vclock *vtimer_queue_clock(struct vtimer_queue *q);
/* Manual queues: run every callback whose deadline <= @now_ns.
 * Returns the number run. */
unsigned vtimer_queue_run_due(struct vtimer_queue *q, uint64_t now_ns);

void vtimer_init(struct vtimer *t, struct vtimer_queue *q,
		 void (*cb)(void *opaque, uint64_t now_ns), void *opaque);
/* Arm (or re-arm) @t to fire at monotonic time @deadline_ns.  Call with the
 * device lock held. */
void vtimer_mod(struct vtimer *t, uint64_t deadline_ns);
void vtimer_del(struct vtimer *t);

#endif
