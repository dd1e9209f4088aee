/* SPDX-License-Identifier: MIT */
#include "clock.h"

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
