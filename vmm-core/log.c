/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static enum log_level current_level = LOG_WARN;

static const char *const level_names[] = {
	[LOG_ERROR] = "error", [LOG_WARN] = "warning",
	[LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void log_init(void)
{
	const char *env = getenv("VIVARIUM_LOG");

	if (!env)
		return;
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (!strcmp(env, level_names[i]))
			current_level = (enum log_level)i;
}

void log_set_level(enum log_level level)
{
	current_level = level;
}

enum log_level log_get_level(void)
{
	return current_level;
}

void vlog(enum log_level level, const char *fmt, ...)
{
	va_list ap;
	char buf[512];

	if (level > current_level)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* One fprintf per message so lines from vCPU threads do not interleave;
	 * "\r\n" because the terminal may be in raw mode. */
	fprintf(stderr, "vivarium: %s: %s\r\n", level_names[level], buf);
}

#define RL_BURST 10u
#define RL_INTERVAL_NS 100000000ull	/* one token per 100 ms */

bool ratelimit_ok(struct ratelimit *rl)
{
	struct timespec ts;
	uint64_t now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	if (!rl->init) {
		rl->init = 1;
		rl->tokens = RL_BURST;
		rl->last_ns = now;
	}
	if (now - rl->last_ns >= RL_INTERVAL_NS) {
		uint64_t tokens = rl->tokens + (now - rl->last_ns) / RL_INTERVAL_NS;

		rl->tokens = tokens > RL_BURST ? RL_BURST : (uint32_t)tokens;
		rl->last_ns = now;
		if (rl->suppressed) {
			fprintf(stderr, "vivarium: %u similar messages suppressed\r\n",
				rl->suppressed);
			rl->suppressed = 0;
		}
	}
	if (rl->tokens) {
		rl->tokens--;
		return true;
	}
	rl->suppressed++;
	return false;
}
