/* SPDX-License-Identifier: MIT */
/*
 * The machine's I/O thread (vmm-core/iothread.c) with real eventfds:
 * handlers run under the device lock, a removed registration is never
 * called again (not even for a signal the thread fetched before the
 * remove), iothread_run_pending() and the thread never handle one signal
 * twice, and a stopped thread handles nothing by itself.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "iothread.h"
#include "sandboxed.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

struct counter {
	atomic_uint calls;
	atomic_bool unlocked;	/* a call found the device lock free */
};

static void count(void *opaque)
{
	struct counter *c = opaque;

	/* Held by the caller (this thread or not): trylock fails. */
	if (pthread_mutex_trylock(&lock) == 0) {
		atomic_store(&c->unlocked, true);
		pthread_mutex_unlock(&lock);
	}
	atomic_fetch_add(&c->calls, 1);
}

static int new_efd(void)
{
	return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

static void ring(int fd)
{
	uint64_t one = 1;

	CHECK_EQ(write(fd, &one, sizeof(one)), sizeof(one));
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Wait up to 2 s for @c to reach @n calls. */
static bool wait_calls(struct counter *c, unsigned n)
{
	for (unsigned i = 0; i < 2000 && atomic_load(&c->calls) < n; i++)
		sleep_ms(1);
	return atomic_load(&c->calls) >= n;
}

static void test_signal_reaches_handler(void)
{
	struct iothread *t = iothread_new(&lock);
	struct counter a = { 0 }, b = { 0 };
	int fa = new_efd(), fb = new_efd();

	CHECK(t != NULL);
	pthread_mutex_lock(&lock);
	CHECK_EQ(iothread_add(t, fa, count, &a), 0);
	CHECK_EQ(iothread_add(t, fb, count, &b), 0);
	CHECK_EQ(iothread_add(t, fa, count, &a), -EEXIST);
	CHECK_EQ(iothread_add(t, -1, count, &a), -EINVAL);
	CHECK_EQ(iothread_count(t), 2);
	pthread_mutex_unlock(&lock);

	ring(fa);
	CHECK(wait_calls(&a, 1));
	ring(fb);
	CHECK(wait_calls(&b, 1));
	/* A burst before the thread looks may be one call; never more
	 * calls than signals, and the counter is left empty. */
	pthread_mutex_lock(&lock);
	ring(fa);
	ring(fa);
	ring(fa);
	pthread_mutex_unlock(&lock);
	CHECK(wait_calls(&a, 2));
	sleep_ms(20);
	CHECK(atomic_load(&a.calls) >= 2 && atomic_load(&a.calls) <= 4);
	CHECK(!atomic_load(&a.unlocked) && !atomic_load(&b.unlocked));
	CHECK_EQ(atomic_load(&b.calls), 1);

	pthread_mutex_lock(&lock);
	iothread_remove(t, fa);
	iothread_remove(t, fb);
	iothread_remove(t, 12345);	/* unknown: ignored */
	CHECK_EQ(iothread_count(t), 0);
	pthread_mutex_unlock(&lock);
	iothread_free(t);
	close(fa);
	close(fb);
}

/* The thread fetched the event but waits for the lock the test holds;
 * meanwhile the registration goes (and its slot is reused). */
static void test_removed_while_pending(void)
{
	struct iothread *t = iothread_new(&lock);
	struct counter a = { 0 }, b = { 0 };
	int fa = new_efd(), fb = new_efd();
	uint64_t v;

	pthread_mutex_lock(&lock);
	CHECK_EQ(iothread_add(t, fa, count, &a), 0);
	ring(fa);
	sleep_ms(50);		/* the thread is blocked on the lock now */
	iothread_remove(t, fa);
	CHECK_EQ(iothread_add(t, fb, count, &b), 0);	/* same slot */
	pthread_mutex_unlock(&lock);
	sleep_ms(50);
	CHECK_EQ(atomic_load(&a.calls), 0);
	CHECK_EQ(atomic_load(&b.calls), 0);
	/* The signal stayed in the removed fd for its owner to read. */
	CHECK_EQ(read(fa, &v, sizeof(v)), sizeof(v));
	CHECK_EQ(v, 1);
	ring(fb);
	CHECK(wait_calls(&b, 1));
	CHECK_EQ(atomic_load(&a.calls), 0);

	pthread_mutex_lock(&lock);
	iothread_remove(t, fb);
	pthread_mutex_unlock(&lock);
	iothread_free(t);
	close(fa);
	close(fb);
}

static void test_run_pending(void)
{
	struct iothread *t = iothread_new(&lock);
	struct counter a = { 0 };
	int fa = new_efd();

	pthread_mutex_lock(&lock);
	CHECK_EQ(iothread_add(t, fa, count, &a), 0);
	ring(fa);
	/* Under the lock the thread cannot have handled it: we do. */
	CHECK_EQ(iothread_run_pending(t), 1);
	CHECK_EQ(atomic_load(&a.calls), 1);
	CHECK_EQ(iothread_run_pending(t), 0);
	pthread_mutex_unlock(&lock);
	sleep_ms(50);
	CHECK_EQ(atomic_load(&a.calls), 1);	/* not twice */

	/* Stopped: signals wait for run_pending. */
	iothread_stop(t);
	iothread_stop(t);			/* idempotent */
	ring(fa);
	sleep_ms(50);
	CHECK_EQ(atomic_load(&a.calls), 1);
	pthread_mutex_lock(&lock);
	CHECK_EQ(iothread_run_pending(t), 1);
	CHECK_EQ(atomic_load(&a.calls), 2);
	CHECK(!atomic_load(&a.unlocked));
	iothread_remove(t, fa);			/* still allowed */
	pthread_mutex_unlock(&lock);
	iothread_free(t);
	iothread_free(NULL);
	close(fa);
}

static void test_full(void)
{
	struct iothread *t = iothread_new(&lock);
	struct counter a = { 0 };
	int fds[IOTHREAD_MAX_FDS + 1];
	unsigned n = 0;

	pthread_mutex_lock(&lock);
	for (unsigned i = 0; i < IOTHREAD_MAX_FDS + 1; i++) {
		fds[i] = new_efd();
		if (fds[i] >= 0 && iothread_add(t, fds[i], count, &a) == 0)
			n++;
	}
	CHECK_EQ(n, IOTHREAD_MAX_FDS);
	CHECK_EQ(iothread_add(t, fds[IOTHREAD_MAX_FDS], count, &a), -ENOSPC);
	for (unsigned i = 0; i < IOTHREAD_MAX_FDS + 1; i++)
		iothread_remove(t, fds[i]);
	CHECK_EQ(iothread_count(t), 0);
	pthread_mutex_unlock(&lock);
	iothread_free(t);
	for (unsigned i = 0; i < IOTHREAD_MAX_FDS + 1; i++)
		close(fds[i]);
}

int main(void)
{
	sandbox_test_threads(false);
	RUN_TEST(test_signal_reaches_handler);
	RUN_TEST(test_removed_while_pending);
	RUN_TEST(test_run_pending);
	RUN_TEST(test_full);
	return check_finish();
}
