/* SPDX-License-Identifier: MIT */
/*
 * vivarium-additions - the Vivarium guest agent (docs/guest-additions.md).
 *
 * Finds the virtio-serial port org.vivarium.additions.0
 * (/sys/class/virtio-ports/NAME/name -> /dev/NAME), says hello with its
 * info, then does what the host asks: mounts the shared folders, applies
 * the display size, sets the clock; it sends its info again when the
 * host says hello (after a revert or a restart of the VM process) and when
 * the guest's addresses or names change (checked every INFO_PERIOD_MS).
 *
 * Robust: the port closing or failing (the VM paused, reverted, the device
 * reset) closes it here and it is looked for again after a pause; the loop
 * always sleeps in poll() with a timeout, never spins.
 *
 *   vivarium-additions [--dry-run] [--fd N] [--info] [--version]
 *     --dry-run  log what would be done instead of mounting, modesetting
 *                or setting the clock
 *     --fd N     speak on file descriptor N instead of the port (tests)
 *     --info     print the info line and exit
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ga.h"

#define INFO_PERIOD_MS		5000
/* A failed mount (9p not loaded yet early in boot, the device not probed)
 * is tried again after 2 s, doubling to 30 s. */
#define RETRY_MOUNT_MIN_MS	2000
#define RETRY_MOUNT_MAX_MS	30000
#define REOPEN_MIN_MS		1000
#define REOPEN_MAX_MS		10000
#define WRITE_TIMEOUT_MS	2000

struct agent {
	int fd;
	bool fixed_fd;		/* --fd: never reopened */
	bool dry_run;
	struct ga_reader rd;
	char last_info[GA_LINE_MAX];
	bool send_info;		/* the host said hello */
	struct ga_share share[GA_SHARES_MAX];
	unsigned nshares;
	unsigned mount_failed;
	long long next_mount_ms;
	unsigned mount_backoff_ms;
};

static long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* /dev/vportNpM whose sysfs name is ours, opened; -1 if none. */
static int open_port(void)
{
	DIR *d = opendir("/sys/class/virtio-ports");
	struct dirent *e;
	int fd = -1;

	if (!d)
		return -1;
	while (fd < 0 && (e = readdir(d))) {
		char p[512], name[128];
		int nfd;
		ssize_t n;

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/sys/class/virtio-ports/%s/name", e->d_name);
		nfd = open(p, O_RDONLY | O_CLOEXEC);
		if (nfd < 0)
			continue;
		n = read(nfd, name, sizeof(name) - 1);
		close(nfd);
		if (n <= 0)
			continue;
		name[n] = '\0';
		name[strcspn(name, "\n")] = '\0';
		if (strcmp(name, GA_PORT_NAME))
			continue;
		snprintf(p, sizeof(p), "/dev/%s", e->d_name);
		fd = open(p, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		if (fd < 0)
			fprintf(stderr, "vivarium-additions: %s: %s\n", p, strerror(errno));
	}
	closedir(d);
	return fd;
}

/* A whole line, or nothing (waits up to WRITE_TIMEOUT_MS for room). */
static int send_line(struct agent *a, const char *buf, size_t len)
{
	size_t off = 0;
	long long deadline = now_ms() + WRITE_TIMEOUT_MS;

	while (off < len) {
		ssize_t n = write(a->fd, buf + off, len - off);

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = { a->fd, POLLOUT, 0 };
			long long left = deadline - now_ms();

			if (left <= 0 || poll(&p, 1, (int)left) <= 0)
				return -1;
			continue;
		}
		return -1;
	}
	return 0;
}

static void send_info(struct agent *a, bool force)
{
	struct ga_info in;
	char line[GA_LINE_MAX];
	size_t n;

	ga_info_gather(&in, NULL);
	n = ga_info_line(&in, line, sizeof(line));
	if (!n || (!force && !strcmp(line, a->last_info)))
		return;
	if (send_line(a, line, n) == 0)
		memcpy(a->last_info, line, n + 1);
}

/* ---- the host's messages -------------------------------------------------------- */

static void on_hello(void *opaque, long long protocol)
{
	struct agent *a = opaque;

	if (protocol != GA_PROTOCOL)
		ga_log("the host speaks protocol %lld (we speak %d)", protocol, GA_PROTOCOL);
	a->send_info = true;
}

static void on_shares(void *opaque, const struct ga_share *s, unsigned n)
{
	struct agent *a = opaque;

	memcpy(a->share, s, n * sizeof(*s));
	a->nshares = n;
	a->mount_failed = ga_mount_shares(s, n, a->dry_run);
	a->mount_backoff_ms = RETRY_MOUNT_MIN_MS;
	a->next_mount_ms = now_ms() + a->mount_backoff_ms;
}

static void on_display_size(void *opaque, unsigned w, unsigned h)
{
	struct agent *a = opaque;

	ga_apply_display_size(w, h, a->dry_run);
}

static void on_time_sync(void *opaque, long long sec, long nsec)
{
	struct agent *a = opaque;

	ga_set_clock(sec, nsec, a->dry_run);
}

static const struct ga_actions actions = {
	.hello = on_hello, .shares = on_shares,
	.display_size = on_display_size, .time_sync = on_time_sync,
};

/* ---- the loop -------------------------------------------------------------------- */

static void port_close(struct agent *a)
{
	if (a->fd >= 0 && !a->fixed_fd)
		close(a->fd);
	a->fd = -1;
	a->last_info[0] = '\0';
}

/* One session on the open port; returns when it closes or fails. */
static void session(struct agent *a)
{
	char hello[128];
	size_t n = ga_hello_line(hello, sizeof(hello));
	long long next_info = 0;
	unsigned bad_seen = 0;

	ga_reader_reset(&a->rd);
	if (send_line(a, hello, n) < 0)
		return;
	send_info(a, true);
	next_info = now_ms() + INFO_PERIOD_MS;
	for (;;) {
		struct pollfd p = { a->fd, POLLIN, 0 };
		long long now = now_ms(), wake = next_info;
		char buf[4096];
		ssize_t r;

		if (a->mount_failed && a->next_mount_ms < wake)
			wake = a->next_mount_ms;
		r = poll(&p, 1, wake > now ? (int)(wake - now) : 0);
		if (r < 0 && errno != EINTR)
			return;
		if (r > 0 && (p.revents & POLLIN)) {
			r = read(a->fd, buf, sizeof(buf));
			if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
				return;		/* the host side went away */
			if (r > 0)
				ga_input(&a->rd, buf, (size_t)r, &actions, a);
			if (a->rd.bad != bad_seen) {
				ga_log("%u malformed line(s) from the host ignored",
				       a->rd.bad - bad_seen);
				bad_seen = a->rd.bad;
			}
		} else if (r > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL))) {
			return;
		}
		now = now_ms();
		if (a->send_info) {
			a->send_info = false;
			send_info(a, true);
		}
		if (now >= next_info) {
			send_info(a, false);
			next_info = now + INFO_PERIOD_MS;
		}
		if (a->mount_failed && now >= a->next_mount_ms) {
			a->mount_failed = ga_mount_shares(a->share, a->nshares, a->dry_run);
			a->mount_backoff_ms = a->mount_backoff_ms * 2 > RETRY_MOUNT_MAX_MS ?
					      RETRY_MOUNT_MAX_MS : a->mount_backoff_ms * 2;
			a->next_mount_ms = now + a->mount_backoff_ms;
		}
	}
}

int main(int argc, char **argv)
{
	struct agent *a = calloc(1, sizeof(*a));
	unsigned backoff = REOPEN_MIN_MS;
	bool said_missing = false;

	if (!a)
		return 1;
	a->fd = -1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dry-run")) {
			a->dry_run = true;
		} else if (!strcmp(argv[i], "--fd") && i + 1 < argc) {
			a->fd = atoi(argv[++i]);
			a->fixed_fd = true;
		} else if (!strcmp(argv[i], "--info")) {
			struct ga_info in;
			char line[GA_LINE_MAX];

			ga_info_gather(&in, NULL);
			if (!ga_info_line(&in, line, sizeof(line)))
				return 1;
			fputs(line, stdout);
			return 0;
		} else if (!strcmp(argv[i], "--version")) {
			printf("vivarium-additions %s (protocol %d)\n", GA_VERSION, GA_PROTOCOL);
			return 0;
		} else {
			fprintf(stderr, "usage: vivarium-additions [--dry-run] [--fd N] [--info] [--version]\n");
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	ga_log("%s starting%s", GA_VERSION, a->dry_run ? " (dry run)" : "");
	for (;;) {
		if (a->fd < 0) {
			a->fd = open_port();
			if (a->fd < 0) {
				if (!said_missing)
					ga_log("no virtio-serial port %s yet (is the VM's agents=on?); looking again every few seconds",
					       GA_PORT_NAME);
				said_missing = true;
				poll(NULL, 0, (int)backoff);
				backoff = backoff * 2 > REOPEN_MAX_MS ? REOPEN_MAX_MS : backoff * 2;
				continue;
			}
			ga_log("connected on the port %s", GA_PORT_NAME);
		}
		said_missing = false;
		session(a);
		if (a->fixed_fd)
			return 0;	/* tests: the peer closed */
		ga_log("the port closed; reconnecting");
		port_close(a);
		poll(NULL, 0, REOPEN_MIN_MS);
		backoff = REOPEN_MIN_MS;
	}
}
