/* SPDX-License-Identifier: MIT */
#include "clock.h"

#include <errno.h>
#include <time.h>

static uint64_t host_monotonic_ns(const struct vclock *clk)
{
	struct timespec ts;

	(void)clk;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int64_t host_realtime_ns(const struct vclock *clk)
{
	struct timespec ts;

	(void)clk;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

const struct vclock vclock_host = {
	.monotonic_ns = host_monotonic_ns,
	.realtime_ns = host_realtime_ns,
	.opaque = NULL,
};

/* ---- the machine's virtual clock -------------------------------------- */

static uint64_t virt_monotonic_ns(const struct vclock *clk)
{
	struct vclock_virt *v = clk->opaque;
	uint64_t ns;

	pthread_mutex_lock(&v->lock);
	if (v->paused)
		ns = v->mono_frozen;
	else
		ns = (uint64_t)((int64_t)vclock_now(v->host) + v->mono_offset);
	pthread_mutex_unlock(&v->lock);
	return ns;
}

static int64_t virt_realtime_ns(const struct vclock *clk)
{
	struct vclock_virt *v = clk->opaque;
	int64_t ns;

	pthread_mutex_lock(&v->lock);
	if (v->paused)
		ns = v->real_frozen;
	else
		ns = v->host->realtime_ns(v->host) - v->real_lag;
	pthread_mutex_unlock(&v->lock);
	return ns;
}

/* NULL unless @clk is a vclock_virt's. */
static struct vclock_virt *virt_of(const struct vclock *clk)
{
	return clk->monotonic_ns == virt_monotonic_ns ? clk->opaque : NULL;
}

void vclock_virt_init(struct vclock_virt *v, const struct vclock *host)
{
	*v = (struct vclock_virt){
		.clk = { virt_monotonic_ns, virt_realtime_ns, v },
		.host = host,
	};
	pthread_mutex_init(&v->lock, NULL);
	pthread_mutex_init(&v->watch_lock, NULL);
}

void vclock_virt_destroy(struct vclock_virt *v)
{
	pthread_mutex_destroy(&v->watch_lock);
	pthread_mutex_destroy(&v->lock);
}

static void notify(struct vclock_virt *v)
{
	pthread_mutex_lock(&v->watch_lock);
	if (v->watch)
		v->watch(v->watch_opaque);
	pthread_mutex_unlock(&v->watch_lock);
}

void vclock_pause(struct vclock_virt *v)
{
	pthread_mutex_lock(&v->lock);
	if (!v->paused) {
		uint64_t host_now = vclock_now(v->host);

		v->mono_frozen = (uint64_t)((int64_t)host_now + v->mono_offset);
		v->real_frozen = v->host->realtime_ns(v->host) - v->real_lag;
		v->host_paused_at = host_now;
		v->paused = true;
	}
	pthread_mutex_unlock(&v->lock);
	/* Nothing to tell: a timer thread finds the clock paused when it next
	 * looks, and its deadlines only get further away. */
}

void vclock_resume(struct vclock_virt *v)
{
	bool resumed = false;

	pthread_mutex_lock(&v->lock);
	if (v->paused) {
		uint64_t host_now = vclock_now(v->host);

		v->mono_offset = (int64_t)(v->mono_frozen - host_now);
		/* The paused interval, measured on the monotonic clock so that
		 * a realtime step during the pause still reaches the guest. */
		v->real_lag += (int64_t)(host_now - v->host_paused_at);
		v->paused = false;
		resumed = true;
	}
	pthread_mutex_unlock(&v->lock);
	if (resumed)
		notify(v);
}

void vclock_set(struct vclock_virt *v, uint64_t ns)
{
	bool running;

	pthread_mutex_lock(&v->lock);
	running = !v->paused;
	if (running)
		v->mono_offset = (int64_t)(ns - vclock_now(v->host));
	else
		v->mono_frozen = ns;
	pthread_mutex_unlock(&v->lock);
	if (running)
		notify(v);
}

bool vclock_virt_paused(struct vclock_virt *v)
{
	bool paused;

	pthread_mutex_lock(&v->lock);
	paused = v->paused;
	pthread_mutex_unlock(&v->lock);
	return paused;
}

bool vclock_paused(const struct vclock *clk)
{
	struct vclock_virt *v = virt_of(clk);

	return v && vclock_virt_paused(v);
}

int vclock_watch(const struct vclock *clk, void (*fn)(void *opaque),
		 void *opaque)
{
	struct vclock_virt *v = virt_of(clk);
	int r = 0;

	if (!v)
		return 0;
	pthread_mutex_lock(&v->watch_lock);
	if (v->watch) {
		r = -EBUSY;
	} else {
		v->watch = fn;
		v->watch_opaque = opaque;
	}
	pthread_mutex_unlock(&v->watch_lock);
	return r;
}

void vclock_unwatch(const struct vclock *clk)
{
	struct vclock_virt *v = virt_of(clk);

	if (!v)
		return;
	pthread_mutex_lock(&v->watch_lock);
	v->watch = NULL;
	v->watch_opaque = NULL;
	pthread_mutex_unlock(&v->watch_lock);
}
