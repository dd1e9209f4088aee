/* SPDX-License-Identifier: MIT */
/*
 * The machine's I/O thread: epoll over eventfds, handlers under the device
 * lock.  See iothread.h.
 *
 * Each registration lives in a slot; epoll carries (slot, generation) so
 * that an event fetched before a remove (or before the slot was reused)
 * is recognised as stale once the thread holds the device lock.
 */
#include "iothread.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "sandbox/sandbox.h"

#define STOP_TAG	UINT64_MAX
#define EVENTS_MAX	32

struct io_slot {
	int fd;				/* -1: free */
	uint32_t gen;
	iothread_fn fn;
	void *opaque;
};

struct iothread {
	pthread_mutex_t *lock;
	int epfd;
	int stop_fd;
	pthread_t thread;
	bool running;
	atomic_bool stop;
	/* Under the device lock. */
	struct io_slot slot[IOTHREAD_MAX_FDS];
	unsigned n;
};

static uint64_t tag(unsigned i, uint32_t gen)
{
	return (uint64_t)gen << 32 | i;
}

/* Read @s's counter; call its handler if it was signalled. */
static bool dispatch(struct io_slot *s)
{
	uint64_t count;

	if (read(s->fd, &count, sizeof(count)) != sizeof(count))
		return false;	/* EAGAIN: handled already */
	s->fn(s->opaque);
	return true;
}

static void *io_main(void *arg)
{
	struct iothread *t = arg;
	struct epoll_event ev[EVENTS_MAX];

	sandbox_thread_enter(SANDBOX_THREAD_IO, "iothread");
	while (!atomic_load(&t->stop)) {
		int n = epoll_wait(t->epfd, ev, EVENTS_MAX, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			vlog(LOG_ERROR, "I/O thread: epoll_wait: %s", strerror(errno));
			break;
		}
		if (atomic_load(&t->stop))
			break;
		pthread_mutex_lock(t->lock);
		for (int i = 0; i < n; i++) {
			uint64_t d = ev[i].data.u64;
			unsigned k = (unsigned)(uint32_t)d;
			struct io_slot *s;

			if (d == STOP_TAG || k >= IOTHREAD_MAX_FDS)
				continue;
			s = &t->slot[k];
			/* Removed, or the slot reused, since epoll saw it. */
			if (s->fd < 0 || s->gen != (uint32_t)(d >> 32))
				continue;
			dispatch(s);
		}
		pthread_mutex_unlock(t->lock);
	}
	return NULL;
}

struct iothread *iothread_new(pthread_mutex_t *lock)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = STOP_TAG };
	struct iothread *t = calloc(1, sizeof(*t));
	int e;

	if (!t)
		return NULL;
	t->lock = lock;
	for (unsigned i = 0; i < IOTHREAD_MAX_FDS; i++)
		t->slot[i].fd = -1;
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	t->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (t->epfd < 0 || t->stop_fd < 0 ||
	    epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->stop_fd, &ev) < 0)
		goto fail;
	e = pthread_create(&t->thread, NULL, io_main, t);
	if (e) {
		errno = e;
		goto fail;
	}
	t->running = true;
	return t;
fail:
	e = errno;
	if (t->epfd >= 0)
		close(t->epfd);
	if (t->stop_fd >= 0)
		close(t->stop_fd);
	free(t);
	errno = e;
	return NULL;
}

int iothread_add(struct iothread *t, int fd, iothread_fn fn, void *opaque)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct io_slot *s = NULL;

	if (fd < 0 || !fn)
		return -EINVAL;
	for (unsigned i = 0; i < IOTHREAD_MAX_FDS; i++) {
		if (t->slot[i].fd == fd)
			return -EEXIST;
		if (!s && t->slot[i].fd < 0)
			s = &t->slot[i];
	}
	if (!s)
		return -ENOSPC;
	s->gen++;
	ev.data.u64 = tag((unsigned)(s - t->slot), s->gen);
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	s->fd = fd;
	s->fn = fn;
	s->opaque = opaque;
	t->n++;
	return 0;
}

void iothread_remove(struct iothread *t, int fd)
{
	for (unsigned i = 0; fd >= 0 && i < IOTHREAD_MAX_FDS; i++) {
		struct io_slot *s = &t->slot[i];

		if (s->fd != fd)
			continue;
		epoll_ctl(t->epfd, EPOLL_CTL_DEL, fd, NULL);
		s->fd = -1;
		s->fn = NULL;
		s->opaque = NULL;
		t->n--;
		return;
	}
}

unsigned iothread_run_pending(struct iothread *t)
{
	unsigned done = 0;

	for (unsigned i = 0; i < IOTHREAD_MAX_FDS; i++)
		if (t->slot[i].fd >= 0 && dispatch(&t->slot[i]))
			done++;
	return done;
}

unsigned iothread_count(struct iothread *t)
{
	return t->n;
}

void iothread_stop(struct iothread *t)
{
	uint64_t one = 1;

	if (!t || !t->running)
		return;
	atomic_store(&t->stop, true);
	if (write(t->stop_fd, &one, sizeof(one)) < 0)
		vlog(LOG_ERROR, "I/O thread: cannot wake it to stop: %s",
		     strerror(errno));
	pthread_join(t->thread, NULL);
	t->running = false;
}

void iothread_free(struct iothread *t)
{
	if (!t)
		return;
	iothread_stop(t);
	for (unsigned i = 0; i < IOTHREAD_MAX_FDS; i++)
		if (t->slot[i].fd >= 0)
			epoll_ctl(t->epfd, EPOLL_CTL_DEL, t->slot[i].fd, NULL);
	close(t->epfd);
	close(t->stop_fd);
	free(t);
}
