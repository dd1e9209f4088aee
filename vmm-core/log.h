/* SPDX-License-Identifier: MIT */
/* vmm-core/log.h - logging to stderr (or a file), with rate limiting for
 * anything a guest can trigger. */
#ifndef VIVARIUM_LOG_H
#define VIVARIUM_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Messages above this level are dropped; default LOG_WARN, VIVARIUM_LOG=debug
 * etc. in the environment overrides at log_init(). */
void log_init(void);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

void vlog(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * log_set_rotation - stderr (and stdout, if it is the same file) is the
 * file at @path: when a message leaves it larger than @max_bytes, it is
 * renamed to "@path.1" (replacing an older one) and a new @path (0600) is
 * started, so the log never takes more than about 2 x @max_bytes (where
 * the folder cannot be written, say under vm.conf run-as, the file is
 * truncated instead, with a line saying so: stderr must be O_APPEND).  Checked
 * after each vlog() and by log_rotate_check().  @path is copied; NULL
 * turns rotation off.  Returns 0, or -EINVAL if stderr is not @path.
 */
int log_set_rotation(const char *path, uint64_t max_bytes);
/* Rotate now if the log is over its size (for callers that write to
 * stderr themselves).  Thread-safe. */
void log_rotate_check(void);
/* log_rotate_here - whether this thread's messages may rotate the log
 * (default true).  Sandboxed device threads may not rename or create
 * files: their messages wait for a thread that may (the VM process's main
 * loop checks every few seconds). */
void log_rotate_here(bool may);

/* A token bucket: at most @burst messages, refilled at one per @interval_ns.
 * Initialise statically with RATELIMIT_INIT. */
struct ratelimit {
	uint64_t last_ns;
	uint32_t tokens;
	uint32_t suppressed;
	int init;
};
#define RATELIMIT_INIT { 0, 0, 0, 0 }
/* Returns true if a message may be printed now; thread-safe enough for
 * logging (races only lose or add a message). */
bool ratelimit_ok(struct ratelimit *rl);

/* Log at most 10 messages a second from this call site. */
#define vlog_ratelimited(level, ...)                                    \
	do {                                                            \
		static struct ratelimit rl__ = RATELIMIT_INIT;          \
		if ((level) <= log_get_level() && ratelimit_ok(&rl__)) \
			vlog(level, __VA_ARGS__);                       \
	} while (0)

#endif
