/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

static pthread_mutex_t rot_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread bool rot_not_here;
static char *rot_path;
static uint64_t rot_max;

int log_set_rotation(const char *path, uint64_t max_bytes)
{
	struct stat a, b;
	char *copy = NULL;

	if (path) {
		if (stat(path, &a) < 0 || fstat(STDERR_FILENO, &b) < 0 ||
		    a.st_dev != b.st_dev || a.st_ino != b.st_ino)
			return -EINVAL;
		copy = strdup(path);
		if (!copy)
			return -ENOMEM;
	}
	pthread_mutex_lock(&rot_lock);
	free(rot_path);
	rot_path = copy;
	rot_max = max_bytes;
	pthread_mutex_unlock(&rot_lock);
	return 0;
}

void log_rotate_check(void)
{
	struct stat err, out;
	char old[4096];
	int fd;

	if (rot_not_here)
		return;
	pthread_mutex_lock(&rot_lock);
	if (!rot_path || fstat(STDERR_FILENO, &err) < 0 ||
	    (uint64_t)err.st_size <= rot_max)
		goto out;
	snprintf(old, sizeof(old), "%s.1", rot_path);
	if (rename(rot_path, old) < 0) {
		/* The folder is out of reach (a VM process that changed its
		 * user): bounded all the same, by starting over in place. */
		if (errno == EACCES || errno == EPERM) {
			fflush(stderr);
			if (ftruncate(STDERR_FILENO, 0) == 0)
				fprintf(stderr, "log: %s could not be rotated (%s); its older lines were dropped\n",
					rot_path, strerror(EACCES));
		}
		goto out;
	}
	fd = open(rot_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		goto out;
	fflush(stdout);
	fflush(stderr);
	if (fstat(STDOUT_FILENO, &out) == 0 && out.st_dev == err.st_dev &&
	    out.st_ino == err.st_ino)
		dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
out:
	pthread_mutex_unlock(&rot_lock);
}

void log_rotate_here(bool may)
{
	rot_not_here = !may;
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
	log_rotate_check();
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
