/* SPDX-License-Identifier: MIT */
/* vmm-core/clock.h - an injectable clock, so time-dependent devices (PIT,
 * RTC, ACPI PM timer) are unit-testable with a fake one; and a machine's
 * virtual clock, which stands still while the machine is paused. */
#ifndef VIVARIUM_CLOCK_H
#define VIVARIUM_CLOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct vclock {
	/* Monotonic time in ns (CLOCK_MONOTONIC for the host clock). */
	uint64_t (*monotonic_ns)(const struct vclock *clk);
	/* Wall-clock time in ns since the Unix epoch (CLOCK_REALTIME). */
	int64_t (*realtime_ns)(const struct vclock *clk);
	void *opaque;
};

/* The host's clocks. */
extern const struct vclock vclock_host;

static inline uint64_t vclock_now(const struct vclock *clk)
{
	return clk->monotonic_ns(clk);
}

/*
 * struct vclock_virt - a machine's clock.  Devices and the machine's timer
 * queue read it through @clk like any other vclock.
 *
 * Monotonic time: the followed clock's monotonic time minus the time spent
 * paused (plus whatever vclock_set() moved it by).  It stands still while
 * paused, so device deadlines (PIT, RTC periodic, ACPI PM timer, typematic)
 * are in guest time and a paused or saved machine does not come back to a
 * storm of late ticks.
 *
 * Wall-clock time (the RTC's CMOS time): the followed clock's realtime minus
 * the time spent paused, frozen while paused.  It follows the host's
 * realtime (steps and slews included) except across pauses: like QEMU with
 * -rtc clock=vm and VirtualBox, the guest's clock continues from where it
 * stopped and falls behind the host's by the paused interval (a guest's NTP
 * or its tools put it right).  The alternative, jumping forward on resume,
 * would have the RTC's update and alarm interrupts see time skip while the
 * PIT and the PM timer did not.  vclock_set() leaves it alone: a snapshot's
 * load restores the RTC's own offset to it.
 *
 * All functions are thread-safe.  Fields are private to clock.c.
 */
struct vclock_virt {
	struct vclock clk;
	const struct vclock *host;	/* the clock followed */
	pthread_mutex_t lock;		/* guards the fields below; a leaf */
	bool paused;
	int64_t mono_offset;		/* running: host monotonic + offset */
	uint64_t mono_frozen;		/* paused: the monotonic time */
	int64_t real_lag;		/* running: host realtime - lag */
	int64_t real_frozen;		/* paused: the realtime */
	uint64_t host_paused_at;	/* host monotonic ns at vclock_pause */
	/* One watcher (the machine's timer queue), told of every change that
	 * moves deadlines: resume, set. */
	pthread_mutex_t watch_lock;	/* held while calling it */
	void (*watch)(void *opaque);
	void *watch_opaque;
};

/* Start @v running, equal to @host's monotonic time (so a machine that
 * never pauses sees the same numbers as on @host).  @host: &vclock_host,
 * or a fake clock in tests. */
void vclock_virt_init(struct vclock_virt *v, const struct vclock *host);
void vclock_virt_destroy(struct vclock_virt *v);

/* Stop @v's time (monotonic and realtime); no-op if already paused.  A
 * timer queue on @v runs no callback once this has returned and the caller
 * has taken the queue's lock (the device lock). */
void vclock_pause(struct vclock_virt *v);
/* Let @v's time run on from where it stopped; no-op if running.  Wakes the
 * watcher: call without the device lock held. */
void vclock_resume(struct vclock_virt *v);
/* Set @v's monotonic time to @ns (ns), paused or running: for loading a
 * snapshot, whose device deadlines are in the saved clock's time.  Wakes the
 * watcher if running: then call without the device lock held. */
void vclock_set(struct vclock_virt *v, uint64_t ns);
bool vclock_virt_paused(struct vclock_virt *v);

/* For timer queues, any vclock: whether @clk is a paused vclock_virt
 * (false for other clocks). */
bool vclock_paused(const struct vclock *clk);
/* Have @fn(@opaque) called after @clk resumes or is set while running, from
 * the thread that did it (@fn must not watch or unwatch @clk).  Other clocks
 * never change so: a no-op.  One watcher per clock: returns 0, or -EBUSY.
 * vclock_unwatch() returns once no call to @fn is under way. */
int vclock_watch(const struct vclock *clk, void (*fn)(void *opaque),
		 void *opaque);
void vclock_unwatch(const struct vclock *clk);

#endif
