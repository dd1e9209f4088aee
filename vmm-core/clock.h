/* SPDX-License-Identifier: MIT */
/* vmm-core/clock.h - an injectable clock, so time-dependent devices (PIT,
 * RTC, ACPI PM timer) are unit-testable with a fake one. */
#ifndef VIVARIUM_CLOCK_H
#define VIVARIUM_CLOCK_H

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

#endif
