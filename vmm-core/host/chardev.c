/* SPDX-License-Identifier: MIT */
/*
 * Character device backends: stdio (raw terminal, input thread), file
 * (append), buffer (tests), fd (a pair of pipes or a socket, no escape).
 *
 * Output never blocks a vCPU for long.  stdout that is not a regular file is
 * reopened through /proc/self/fd/1 with O_NONBLOCK: a private open file
 * description, so the shell's terminal (shared by fds 0-2) is never left
 * non-blocking.  When the terminal does not drain, a write waits at most
 * WRITE_WAIT_MS, then the chardev is "stuck" and drops output without
 * waiting until a write succeeds again.
 *
 * Input: one thread polls stdin and a control pipe (stop, wakeup).  Bytes
 * pass the Ctrl-A escape filter, then go to the sink under the device lock;
 * what the sink cannot take yet is held (stdin is not read meanwhile, so the
 * terminal provides the back-pressure) and offered again on
 * chardev_input_wakeup() or every RETRY_MS.
 *
 * The terminal: raw mode as QEMU's stdio chardev sets it (no echo, no
 * canonical mode, no signals from Ctrl-C/Ctrl-Z, 8 bits, output
 * post-processing kept so "\n" still returns the carriage).  The saved
 * settings are restored by chardev_free(), by an atexit() handler, and by a
 * handler for fatal signals installed where the disposition was SIG_DFL
 * (it restores the terminal, then re-raises with the old disposition).
 */
#define _GNU_SOURCE
#include "chardev.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "../log.h"
#include "../sandbox/sandbox.h"

#define WRITE_WAIT_MS	20
#define RETRY_MS	10
#define POLL_CHUNK	64		/* bytes per write() when only poll() guards */
#define BUFFER_MAX	(64u << 20)	/* buffer backend cap */

enum chr_kind { CHR_STDIO, CHR_FILE, CHR_BUFFER, CHR_FD };

struct chardev {
	enum chr_kind kind;

	/* Output (out_lock: chardev_write may come from several threads). */
	pthread_mutex_t out_lock;
	int out_fd;		/* -1: buffer */
	bool out_owned;		/* close on free */
	bool out_poll;		/* blocking fd that is not a regular file:
				 * poll() before each small write */
	bool out_stuck;
	char *buf;
	size_t len, cap;

	/* Input (stdio and fd). */
	int in_fd;		/* -1: no input */
	int ctl[2];		/* control pipe: [0] thread, [1] wakeup/stop */
	pthread_mutex_t ctl_lock;	/* ctl[] and thread_started */
	pthread_t thread;
	bool thread_started;
	atomic_bool stopping;
	atomic_bool waiting;	/* the thread holds bytes the sink refused */
	struct chardev_sink sink;
	pthread_mutex_t *lock;
	struct chardev_escape esc;
	bool raw;		/* this chardev put the terminal in raw mode */
};

/* ---- the escape filter ------------------------------------------------ */

size_t chardev_escape_filter(struct chardev_escape *esc, const uint8_t *in,
			     size_t len, uint8_t *out, bool *quit)
{
	size_t n = 0;

	*quit = false;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = in[i];

		if (esc->pending) {
			esc->pending = false;
			if (c == CHARDEV_ESCAPE_CHAR) {
				out[n++] = c;
			} else if (c == 'x' || c == 'X') {
				*quit = true;
				return n;
			}
			/* Anything else after Ctrl-A is dropped. */
		} else if (c == CHARDEV_ESCAPE_CHAR) {
			esc->pending = true;
		} else {
			out[n++] = c;
		}
	}
	return n;
}

/* ---- the terminal ----------------------------------------------------- */

static const int fatal_signals[] = {
	SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGPIPE,
	SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT,
};
#define NFATAL (sizeof(fatal_signals) / sizeof(fatal_signals[0]))

static pthread_mutex_t term_lock = PTHREAD_MUTEX_INITIALIZER;
static struct termios term_saved;
static int term_fd = -1;
static volatile sig_atomic_t term_raw_active;
static bool term_atexit_registered;
static struct sigaction term_old_action[NFATAL];
static bool term_handler_installed[NFATAL];

/* Async-signal-safe. */
static void term_restore_now(void)
{
	if (term_raw_active) {
		term_raw_active = 0;
		tcsetattr(term_fd, TCSANOW, &term_saved);
	}
}

static void term_atexit(void)
{
	term_restore_now();
}

static void term_fatal_signal(int sig)
{
	int saved_errno = errno;

	term_restore_now();
	for (unsigned i = 0; i < NFATAL; i++) {
		if (fatal_signals[i] == sig) {
			sigaction(sig, &term_old_action[i], NULL);
			break;
		}
	}
	/* @sig is blocked while this handler runs: it is delivered with the
	 * old disposition when we return (a fault re-faults likewise). */
	raise(sig);
	errno = saved_errno;
}

static void term_install_handlers(void)
{
	for (unsigned i = 0; i < NFATAL; i++) {
		struct sigaction old, sa;

		if (sigaction(fatal_signals[i], NULL, &old) < 0)
			continue;
		/* Leave alone whatever the application handles (or ignores)
		 * itself. */
		if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL)
			continue;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = term_fatal_signal;
		sigemptyset(&sa.sa_mask);
		term_old_action[i] = old;
		if (sigaction(fatal_signals[i], &sa, NULL) == 0)
			term_handler_installed[i] = true;
	}
}

static void term_remove_handlers(void)
{
	for (unsigned i = 0; i < NFATAL; i++) {
		struct sigaction cur;

		if (!term_handler_installed[i])
			continue;
		term_handler_installed[i] = false;
		if (sigaction(fatal_signals[i], NULL, &cur) == 0 &&
		    !(cur.sa_flags & SA_SIGINFO) &&
		    cur.sa_handler == term_fatal_signal)
			sigaction(fatal_signals[i], &term_old_action[i], NULL);
	}
}

/* Raw mode on @fd if it is our controlling terminal in the foreground.
 * Returns true if this call set it (the caller then owns restoring). */
static bool term_enter_raw(int fd)
{
	struct termios raw;
	bool ok = false;

	pthread_mutex_lock(&term_lock);
	if (term_raw_active || !isatty(fd) || tcgetpgrp(fd) != getpgrp())
		goto out;
	if (tcgetattr(fd, &term_saved) < 0)
		goto out;
	term_fd = fd;
	if (!term_atexit_registered && atexit(term_atexit) == 0)
		term_atexit_registered = true;
	term_install_handlers();
	term_raw_active = 1;

	raw = term_saved;
	raw.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR |
				   IGNCR | ICRNL | IXON);
	raw.c_oflag |= OPOST;
	raw.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	raw.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
	raw.c_cflag |= CS8;
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	if (tcsetattr(fd, TCSANOW, &raw) < 0) {
		term_raw_active = 0;
		term_remove_handlers();
		goto out;
	}
	ok = true;
out:
	pthread_mutex_unlock(&term_lock);
	return ok;
}

static void term_leave_raw(void)
{
	pthread_mutex_lock(&term_lock);
	term_restore_now();
	term_remove_handlers();
	pthread_mutex_unlock(&term_lock);
}

/* ---- construction ----------------------------------------------------- */

static struct chardev *chr_alloc(enum chr_kind kind)
{
	struct chardev *chr = calloc(1, sizeof(*chr));

	if (!chr)
		return NULL;
	chr->kind = kind;
	chr->out_fd = -1;
	chr->in_fd = -1;
	chr->ctl[0] = chr->ctl[1] = -1;
	pthread_mutex_init(&chr->out_lock, NULL);
	pthread_mutex_init(&chr->ctl_lock, NULL);
	return chr;
}

/* Decide how to write to @fd without blocking for long. */
static void setup_output(struct chardev *chr, int fd, bool may_reopen)
{
	struct stat st;

	chr->out_fd = fd;
	if (fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
		return;		/* never blocks for long */
	if (may_reopen) {
		char path[64];
		int nfd;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		nfd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		if (nfd >= 0) {
			chr->out_fd = nfd;
			chr->out_owned = true;
			return;
		}
	}
	if (fcntl(fd, F_GETFL) & O_NONBLOCK)
		return;
	chr->out_poll = true;
}

struct chardev *chardev_stdio_new(void)
{
	struct chardev *chr = chr_alloc(CHR_STDIO);

	if (!chr)
		return NULL;
	setup_output(chr, STDOUT_FILENO, true);
	if (fcntl(STDIN_FILENO, F_GETFD) >= 0) {
		/* A background job must not read the terminal (SIGTTIN). */
		if (!isatty(STDIN_FILENO) ||
		    tcgetpgrp(STDIN_FILENO) == getpgrp())
			chr->in_fd = STDIN_FILENO;
		chr->raw = term_enter_raw(STDIN_FILENO);
	}
	return chr;
}

struct chardev *chardev_file_new(const char *path)
{
	struct chardev *chr;
	int fd, err;

	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY,
		  0644);
	if (fd < 0)
		return NULL;
	chr = chr_alloc(CHR_FILE);
	if (!chr) {
		err = errno;
		close(fd);
		errno = err;
		return NULL;
	}
	setup_output(chr, fd, false);
	chr->out_owned = true;
	return chr;
}

struct chardev *chardev_buffer_new(void)
{
	struct chardev *chr = chr_alloc(CHR_BUFFER);

	if (!chr)
		return NULL;
	chr->cap = 256;
	chr->buf = calloc(1, chr->cap);
	if (!chr->buf) {
		free(chr);
		return NULL;
	}
	return chr;
}

struct chardev *chardev_fd_new(int in_fd, int out_fd)
{
	struct chardev *chr = chr_alloc(CHR_FD);

	if (!chr)
		return NULL;
	setup_output(chr, out_fd, false);
	chr->out_owned = true;
	chr->in_fd = in_fd;
	return chr;
}

const char *chardev_buffer_data(struct chardev *chr, size_t *len)
{
	const char *p = NULL;
	size_t n = 0;

	if (chr && chr->kind == CHR_BUFFER) {
		pthread_mutex_lock(&chr->out_lock);
		p = chr->buf;
		n = chr->len;
		pthread_mutex_unlock(&chr->out_lock);
	}
	if (len)
		*len = n;
	return p;
}

/* ---- output ----------------------------------------------------------- */

static uint64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Wait for @fd to take output, at most until @deadline (ms).  Returns true
 * if it may be written. */
static bool wait_writable(int fd, uint64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		uint64_t now = ms_now();
		int r;

		if (now >= deadline)
			return false;
		r = poll(&p, 1, (int)(deadline - now));
		if (r > 0)
			return true;
		if (r == 0 || errno != EINTR)
			return false;
	}
}

static int buffer_append(struct chardev *chr, const uint8_t *buf, size_t len)
{
	if (chr->len + len + 1 > chr->cap) {
		size_t cap = chr->cap;
		char *nb;

		while (cap < chr->len + len + 1)
			cap *= 2;
		if (cap > BUFFER_MAX + 1) {
			if (chr->len >= BUFFER_MAX)
				return 0;
			len = BUFFER_MAX - chr->len;
			cap = BUFFER_MAX + 1;
		}
		nb = realloc(chr->buf, cap);
		if (!nb)
			return -ENOMEM;
		chr->buf = nb;
		chr->cap = cap;
	}
	memcpy(chr->buf + chr->len, buf, len);
	chr->len += len;
	chr->buf[chr->len] = 0;
	return 0;
}

static int fd_write(struct chardev *chr, const uint8_t *buf, size_t len)
{
	uint64_t deadline = chr->out_stuck ? 0 : ms_now() + WRITE_WAIT_MS;

	while (len) {
		size_t chunk = len;
		ssize_t n;

		if (chr->out_poll) {
			if (!wait_writable(chr->out_fd, deadline))
				goto stuck;
			if (chunk > POLL_CHUNK)
				chunk = POLL_CHUNK;
		}
		n = write(chr->out_fd, buf, chunk);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			chr->out_stuck = false;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_writable(chr->out_fd, deadline))
				continue;
			goto stuck;
		}
		return n < 0 ? -errno : -EIO;
	}
	return 0;
stuck:
	if (!chr->out_stuck)
		vlog_ratelimited(LOG_DEBUG, "chardev: output stuck, dropping");
	chr->out_stuck = true;
	return 0;
}

int chardev_write(struct chardev *chr, const uint8_t *buf, size_t len)
{
	int r;

	if (!chr || !len)
		return 0;
	pthread_mutex_lock(&chr->out_lock);
	if (chr->kind == CHR_BUFFER)
		r = buffer_append(chr, buf, len);
	else
		r = fd_write(chr, buf, len);
	pthread_mutex_unlock(&chr->out_lock);
	return r;
}

/* ---- input ------------------------------------------------------------ */

static void ctl_drain(int fd)
{
	char tmp[64];

	while (read(fd, tmp, sizeof(tmp)) > 0)
		;
}

static void *input_main(void *arg)
{
	struct chardev *chr = arg;
	uint8_t raw[256], held[256];
	size_t nheld = 0, off = 0;
	bool eof = false;

	sandbox_thread_enter(SANDBOX_THREAD_SERIAL, "serial-in");
	while (!atomic_load(&chr->stopping)) {
		struct pollfd p[2] = {
			{ .fd = chr->ctl[0], .events = POLLIN },
			{ .fd = chr->in_fd, .events = POLLIN },
		};
		/* stdin only while nothing is held and it has not ended */
		nfds_t nfds = nheld || eof ? 1 : 2;
		int r;

		if (eof && !nheld) {
			if (chr->sink.eof)
				chr->sink.eof(chr->sink.quit_opaque);
			break;
		}
		atomic_store(&chr->waiting, nheld != 0);
		r = poll(p, nfds, nheld ? RETRY_MS : -1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents)
			ctl_drain(chr->ctl[0]);
		if (atomic_load(&chr->stopping))
			break;
		if (!nheld && !eof && p[1].revents) {
			ssize_t n = read(chr->in_fd, raw, sizeof(raw));
			bool quit = false;

			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0) {
				eof = true;
				continue;
			}
			if (chr->kind == CHR_FD) {	/* no escape: bytes as sent */
				memcpy(held, raw, (size_t)n);
				nheld = (size_t)n;
			} else {
				nheld = chardev_escape_filter(&chr->esc, raw,
							      (size_t)n, held, &quit);
			}
			off = 0;
			if (quit && chr->sink.quit)
				chr->sink.quit(chr->sink.quit_opaque);
		}
		if (nheld) {
			size_t took;

			pthread_mutex_lock(chr->lock);
			took = chr->sink.receive(chr->sink.opaque, held + off,
						 nheld);
			pthread_mutex_unlock(chr->lock);
			if (took > nheld)
				took = nheld;
			off += took;
			nheld -= took;
		}
	}
	atomic_store(&chr->waiting, false);
	return NULL;
}

int chardev_start_input(struct chardev *chr, const struct chardev_sink *sink,
			pthread_mutex_t *lock)
{
	int r;

	if (!chr || !sink || !sink->receive || !lock)
		return -EINVAL;
	if ((chr->kind != CHR_STDIO && chr->kind != CHR_FD) || chr->in_fd < 0)
		return 0;
	pthread_mutex_lock(&chr->ctl_lock);
	if (chr->thread_started) {
		r = -EBUSY;
		goto out;
	}
	if (pipe2(chr->ctl, O_CLOEXEC | O_NONBLOCK) < 0) {
		r = -errno;
		goto out;
	}
	chr->sink = *sink;
	chr->lock = lock;
	atomic_store(&chr->stopping, false);
	r = -pthread_create(&chr->thread, NULL, input_main, chr);
	if (r) {
		close(chr->ctl[0]);
		close(chr->ctl[1]);
		chr->ctl[0] = chr->ctl[1] = -1;
		goto out;
	}
	chr->thread_started = true;
out:
	pthread_mutex_unlock(&chr->ctl_lock);
	return r;
}

void chardev_input_wakeup(struct chardev *chr)
{
	if (!chr || !atomic_load(&chr->waiting))
		return;
	pthread_mutex_lock(&chr->ctl_lock);
	if (chr->thread_started) {
		ssize_t r = write(chr->ctl[1], "w", 1);

		(void)r;	/* a full pipe already means "wake up" */
	}
	pthread_mutex_unlock(&chr->ctl_lock);
}

/* Must not be called with the sink's lock held: the thread may be waiting
 * for it. */
void chardev_stop_input(struct chardev *chr)
{
	pthread_t thread;
	ssize_t r;

	if (!chr)
		return;
	pthread_mutex_lock(&chr->ctl_lock);
	if (!chr->thread_started) {
		pthread_mutex_unlock(&chr->ctl_lock);
		return;
	}
	atomic_store(&chr->stopping, true);
	r = write(chr->ctl[1], "s", 1);
	(void)r;
	thread = chr->thread;
	pthread_mutex_unlock(&chr->ctl_lock);
	pthread_join(thread, NULL);

	pthread_mutex_lock(&chr->ctl_lock);
	chr->thread_started = false;
	close(chr->ctl[0]);
	close(chr->ctl[1]);
	chr->ctl[0] = chr->ctl[1] = -1;
	pthread_mutex_unlock(&chr->ctl_lock);
}

void chardev_free(struct chardev *chr)
{
	if (!chr)
		return;
	chardev_stop_input(chr);
	if (chr->raw)
		term_leave_raw();
	if (chr->out_owned && chr->out_fd >= 0)
		close(chr->out_fd);
	if (chr->kind == CHR_FD && chr->in_fd >= 0)
		close(chr->in_fd);
	pthread_mutex_destroy(&chr->out_lock);
	pthread_mutex_destroy(&chr->ctl_lock);
	free(chr->buf);
	free(chr);
}
