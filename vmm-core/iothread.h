/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/iothread.h - the machine's I/O thread: it waits on eventfds
 * (the guest's doorbells, which KVM signals through ioeventfds instead of
 * exiting to a vCPU thread) and calls each one's handler with the device
 * lock held, as a vCPU's exit would.
 *
 * One thread per machine build, started before the devices and stopped
 * before they are freed (like the timer thread).  The thread only ever
 * takes the device lock; handlers run under it, one at a time.
 *
 * Registrations are made and dropped with the device lock held (devices
 * do it from their register writes, resets and loads).  The thread checks
 * a registration again under that lock before it calls the handler, so
 * once iothread_remove() returns the handler is not called for that
 * registration any more, even for a signal that arrived before.
 */
#ifndef VIVARIUM_IOTHREAD_H
#define VIVARIUM_IOTHREAD_H

#include <pthread.h>

struct iothread;

/* Registrations one I/O thread holds at most. */
#define IOTHREAD_MAX_FDS 256

/* Called with the device lock held after @fd's counter was read (and so
 * cleared): one call for any number of signals since the last. */
typedef void (*iothread_fn)(void *opaque);

/* Start the thread; handlers run with @lock (the device lock) held.
 * Returns NULL on failure (errno set). */
struct iothread *iothread_new(pthread_mutex_t *lock);

/*
 * iothread_add - call @fn(@opaque) whenever eventfd @fd (non-blocking, the
 * caller's, open until it was removed) is signalled.  Device lock held.
 * Returns 0, -EEXIST (@fd already registered), -ENOSPC (IOTHREAD_MAX_FDS)
 * or -errno from epoll.
 */
int iothread_add(struct iothread *t, int fd, iothread_fn fn, void *opaque);

/* Forget @fd (before the caller closes it); unknown fds are ignored.
 * Device lock held.  A signal not yet handled stays in @fd's counter:
 * the caller may read it. */
void iothread_remove(struct iothread *t, int fd);

/*
 * iothread_run_pending - handle, on the calling thread, every registered
 * eventfd signalled now (non-blocking reads; the I/O thread and this call
 * never handle one signal twice).  Device lock held.  For a machine that
 * was paused: afterwards every doorbell the guest rang before it stopped
 * has reached its device, as its exits would have.  Returns the number of
 * handlers called.
 */
unsigned iothread_run_pending(struct iothread *t);

/* Registrations now (for tests). */
unsigned iothread_count(struct iothread *t);

/* Stop and join the thread (without the device lock).  Registrations
 * stay, and may still be removed; nothing is handled any more except by
 * iothread_run_pending().  Idempotent. */
void iothread_stop(struct iothread *t);
/* Stop if needed and free.  NULL is fine. */
void iothread_free(struct iothread *t);

#endif
