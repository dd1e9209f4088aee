/* SPDX-License-Identifier: MIT */
/* tests/unit/test_chardev.c - the Ctrl-A escape filter, the buffer and file
 * backends, and the stdio backend on pipes (input thread, back-pressure,
 * EOF, non-blocking output) and on a pseudo-terminal (raw mode restored by
 * chardev_free, at exit and on a fatal signal). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#include "host/chardev.h"
#include "sandboxed.h"

/* ---- the escape filter ------------------------------------------------ */

static size_t filter(struct chardev_escape *esc, const char *in, size_t len,
		     char *out, bool *quit)
{
	return chardev_escape_filter(esc, (const uint8_t *)in, len,
				     (uint8_t *)out, quit);
}

static void test_escape_filter(void)
{
	struct chardev_escape esc = { 0 };
	char out[32];
	bool quit;
	size_t n;

	n = filter(&esc, "ls -l\r", 6, out, &quit);
	CHECK_EQ(n, 6);
	CHECK(!memcmp(out, "ls -l\r", 6));
	CHECK(!quit);

	/* Ctrl-A Ctrl-A: one literal Ctrl-A. */
	n = filter(&esc, "a\x01\x01" "b", 4, out, &quit);
	CHECK_EQ(n, 3);
	CHECK(!memcmp(out, "a\x01" "b", 3));
	CHECK(!quit);

	/* Ctrl-A x: quit; what follows is dropped. */
	n = filter(&esc, "ok\x01xmore", 8, out, &quit);
	CHECK_EQ(n, 2);
	CHECK(!memcmp(out, "ok", 2));
	CHECK(quit);
	CHECK(!esc.pending);

	/* Split across reads. */
	n = filter(&esc, "z\x01", 2, out, &quit);
	CHECK_EQ(n, 1);
	CHECK(!quit);
	CHECK(esc.pending);
	n = filter(&esc, "X", 1, out, &quit);
	CHECK_EQ(n, 0);
	CHECK(quit);
	n = filter(&esc, "\x01", 1, out, &quit);
	CHECK_EQ(n, 0);
	n = filter(&esc, "\x01", 1, out, &quit);
	CHECK_EQ(n, 1);
	CHECK_EQ(out[0], 1);
	CHECK(!quit);

	/* Ctrl-A then another key: both dropped. */
	n = filter(&esc, "\x01q1", 3, out, &quit);
	CHECK_EQ(n, 1);
	CHECK_EQ(out[0], '1');
	CHECK(!quit);

	/* Ctrl-C passes (raw mode sends it to the guest). */
	n = filter(&esc, "\x03", 1, out, &quit);
	CHECK_EQ(n, 1);
	CHECK_EQ(out[0], 3);
}

/* ---- buffer and file backends ----------------------------------------- */

static size_t nop_receive(void *opaque, const uint8_t *buf, size_t len)
{
	(void)opaque, (void)buf;
	return len;
}

static void test_buffer(void)
{
	struct chardev *c = chardev_buffer_new();
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct chardev_sink sink = { 0 };
	const char *d;
	size_t len;

	CHECK(c != NULL);
	d = chardev_buffer_data(c, &len);
	CHECK_EQ(len, 0);
	CHECK(d && d[0] == 0);
	CHECK_EQ(chardev_write(c, (const uint8_t *)"abc", 3), 0);
	for (int i = 0; i < 1000; i++)
		CHECK_EQ(chardev_write(c, (const uint8_t *)"0123456789", 10), 0);
	d = chardev_buffer_data(c, &len);
	CHECK_EQ(len, 10003);
	CHECK(!strncmp(d, "abc0123", 7));
	CHECK_EQ(d[len], 0);
	/* No input: starting it is accepted and does nothing. */
	sink.receive = nop_receive;
	CHECK_EQ(chardev_start_input(c, &sink, &lock), 0);
	chardev_input_wakeup(c);
	chardev_free(c);
	chardev_input_wakeup(NULL);
	CHECK_EQ(chardev_write(NULL, (const uint8_t *)"x", 1), 0);
}

static void test_file(void)
{
	char path[] = "/tmp/vivarium-chardev-XXXXXX";
	int fd = mkstemp(path);
	struct chardev *c;
	char buf[64];
	ssize_t n;

	CHECK(fd >= 0);
	CHECK_EQ(write(fd, "old\n", 4), 4);
	close(fd);

	c = chardev_file_new(path);
	CHECK(c != NULL);
	CHECK_EQ(chardev_write(c, (const uint8_t *)"new ", 4), 0);
	CHECK_EQ(chardev_write(c, (const uint8_t *)"line\n", 5), 0);
	chardev_free(c);
	/* A second chardev appends too. */
	c = chardev_file_new(path);
	CHECK_EQ(chardev_write(c, (const uint8_t *)"again\n", 6), 0);
	CHECK(chardev_buffer_data(c, NULL) == NULL);
	chardev_free(c);

	fd = open(path, O_RDONLY);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	CHECK_EQ(n, 19);
	buf[n > 0 ? n : 0] = 0;
	CHECK(!strcmp(buf, "old\nnew line\nagain\n"));
	unlink(path);

	/* A fresh file is created 0644 (umask permitting). */
	{
		struct stat st;
		mode_t old = umask(022);

		c = chardev_file_new(path);
		umask(old);
		CHECK(c != NULL);
		chardev_free(c);
		CHECK_EQ(stat(path, &st), 0);
		CHECK_EQ(st.st_mode & 0777, 0644);
		unlink(path);
	}

	errno = 0;
	CHECK(chardev_file_new("/nonexistent-dir/x/serial.log") == NULL);
	CHECK_EQ(errno, ENOENT);
}

/* ---- stdio on pipes --------------------------------------------------- */

struct sink_state {
	pthread_mutex_t lock;
	char got[256];
	size_t n;
	size_t per_call;	/* 0: take everything */
	int quits;
	int calls;
};

static size_t sink_receive(void *opaque, const uint8_t *buf, size_t len)
{
	struct sink_state *s = opaque;
	size_t take = len;

	s->calls++;
	if (s->per_call && take > s->per_call)
		take = s->per_call;
	if (s->n + take > sizeof(s->got) - 1)
		take = sizeof(s->got) - 1 - s->n;
	memcpy(s->got + s->n, buf, take);
	s->n += take;
	s->got[s->n] = 0;
	return take;
}

static void sink_quit(void *opaque)
{
	struct sink_state *s = opaque;

	pthread_mutex_lock(&s->lock);
	s->quits++;
	pthread_mutex_unlock(&s->lock);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Wait until @s holds @want bytes (or 2 s). */
static bool wait_for(struct sink_state *s, size_t want)
{
	for (int i = 0; i < 400; i++) {
		size_t n;

		pthread_mutex_lock(&s->lock);
		n = s->n;
		pthread_mutex_unlock(&s->lock);
		if (n >= want)
			return true;
		sleep_ms(5);
	}
	return false;
}

static void test_stdio_input(void)
{
	static struct sink_state s = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct chardev_sink sink = {
		.receive = sink_receive, .opaque = &s,
		.quit = sink_quit, .quit_opaque = &s,
	};
	int saved_in = dup(STDIN_FILENO), p[2];
	struct chardev *c;

	CHECK_EQ(pipe(p), 0);
	dup2(p[0], STDIN_FILENO);
	close(p[0]);

	c = chardev_stdio_new();
	CHECK(c != NULL);
	CHECK_EQ(chardev_start_input(c, &sink, &s.lock), 0);
	CHECK_EQ(chardev_start_input(c, &sink, &s.lock), -EBUSY);

	CHECK_EQ(write(p[1], "echo hi\r", 8), 8);
	CHECK(wait_for(&s, 8));
	CHECK(!strcmp(s.got, "echo hi\r"));

	/* Escapes: literal Ctrl-A, then quit. */
	CHECK_EQ(write(p[1], "\x01\x01" "a\x01x", 5), 5);
	CHECK(wait_for(&s, 10));
	for (int i = 0; i < 400 && !s.quits; i++)
		sleep_ms(5);
	CHECK_EQ(s.quits, 1);
	CHECK(!memcmp(s.got + 8, "\x01" "a", 2));

	/* Back-pressure: the sink takes one byte per call; the rest is
	 * offered again (after a wakeup, or the retry period). */
	pthread_mutex_lock(&s.lock);
	s.per_call = 1;
	pthread_mutex_unlock(&s.lock);
	CHECK_EQ(write(p[1], "xyz", 3), 3);
	for (int i = 0; i < 6; i++) {
		sleep_ms(2);
		pthread_mutex_lock(&s.lock);
		chardev_input_wakeup(c);
		pthread_mutex_unlock(&s.lock);
	}
	CHECK(wait_for(&s, 13));
	CHECK(!memcmp(s.got + 10, "xyz", 3));

	/* EOF stops input; free still works. */
	close(p[1]);
	sleep_ms(20);
	chardev_stop_input(c);
	chardev_stop_input(c);
	chardev_free(c);

	/* Stopping the input before any EOF also works. */
	CHECK_EQ(pipe(p), 0);
	dup2(p[0], STDIN_FILENO);
	close(p[0]);
	c = chardev_stdio_new();
	CHECK_EQ(chardev_start_input(c, &sink, &s.lock), 0);
	chardev_free(c);
	close(p[1]);

	dup2(saved_in, STDIN_FILENO);
	close(saved_in);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Output to a pipe nobody reads: never blocks for long, drops instead. */
static void test_stdio_output_stuck(void)
{
	int saved_out, p[2];
	struct chardev *c;
	static uint8_t chunk[4096];
	uint64_t t0, t1;
	char buf[16];
	int flags;

	fflush(stdout);
	saved_out = dup(STDOUT_FILENO);
	CHECK_EQ(pipe(p), 0);
	dup2(p[1], STDOUT_FILENO);
	close(p[1]);

	c = chardev_stdio_new();
	CHECK(c != NULL);
	CHECK_EQ(chardev_write(c, (const uint8_t *)"hello", 5), 0);
	CHECK_EQ(read(p[0], buf, sizeof(buf)), 5);
	CHECK(!memcmp(buf, "hello", 5));

	memset(chunk, 'x', sizeof(chunk));
	t0 = now_ms();
	for (int i = 0; i < 256; i++)	/* 1 MiB into a 64 KiB pipe */
		CHECK_EQ(chardev_write(c, chunk, sizeof(chunk)), 0);
	t1 = now_ms();
	CHECK(t1 - t0 < 1000);
	/* Once the reader drains, output flows again. */
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	while (read(p[0], chunk, sizeof(chunk)) > 0)
		;
	CHECK_EQ(chardev_write(c, (const uint8_t *)"again", 5), 0);
	CHECK_EQ(read(p[0], buf, sizeof(buf)), 5);
	CHECK(!memcmp(buf, "again", 5));
	/* The shared stdout description stays blocking. */
	flags = fcntl(STDOUT_FILENO, F_GETFL);
	CHECK(!(flags & O_NONBLOCK));
	chardev_free(c);

	dup2(saved_out, STDOUT_FILENO);
	close(saved_out);
	close(p[0]);
}

/* ---- stdio on a pseudo-terminal --------------------------------------- */

/* Child: make the pty slave its controlling terminal and stdin/stdout. */
static int child_on_pty(const char *slave)
{
	int fd;

	setsid();
	fd = open(slave, O_RDWR);
	if (fd < 0)
		_exit(90);
	ioctl(fd, TIOCSCTTY, 0);
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	close(fd);
	return 0;
}

static bool is_raw(int fd)
{
	struct termios t;

	if (tcgetattr(fd, &t) < 0)
		return false;
	return !(t.c_lflag & (ICANON | ECHO | ISIG)) && (t.c_oflag & OPOST);
}

/* mode 0: chardev_free; 1: exit() without free; 2: killed by SIGTERM. */
static void pty_case(int mode)
{
	int master = posix_openpt(O_RDWR | O_NOCTTY);
	int status = 0, sfd;
	char *slave;
	pid_t pid;

	if (master < 0 || grantpt(master) || unlockpt(master) ||
	    !(slave = ptsname(master))) {
		printf("  (no pty: skipped)\n");
		return;
	}
	sfd = open(slave, O_RDWR | O_NOCTTY);
	CHECK(sfd >= 0);
	CHECK(!is_raw(sfd));
	pid = fork();
	if (pid == 0) {
		struct chardev *c;

		child_on_pty(slave);
		c = chardev_stdio_new();
		if (!c || !is_raw(STDIN_FILENO))
			_exit(91);
		if (mode == 0) {
			chardev_free(c);
			_exit(is_raw(STDIN_FILENO) ? 92 : 0);
		}
		if (mode == 1)
			exit(0);
		raise(SIGTERM);
		_exit(93);
	}
	CHECK(pid > 0);
	waitpid(pid, &status, 0);
	if (mode == 2) {
		CHECK(WIFSIGNALED(status));
		CHECK_EQ(WTERMSIG(status), SIGTERM);
	} else {
		CHECK(WIFEXITED(status));
		CHECK_EQ(WEXITSTATUS(status), 0);
	}
	CHECK(!is_raw(sfd));		/* the terminal is cooked again */
	close(sfd);
	close(master);
}

static void test_pty_raw_restored_on_free(void)
{
	pty_case(0);
}

static void test_pty_raw_restored_at_exit(void)
{
	pty_case(1);
}

static void test_pty_raw_restored_on_signal(void)
{
	pty_case(2);
}

int main(void)
{
	sandbox_test_threads(false);
	setvbuf(stdout, NULL, _IOLBF, 0);
	RUN_TEST(test_escape_filter);
	RUN_TEST(test_buffer);
	RUN_TEST(test_file);
	RUN_TEST(test_stdio_input);
	RUN_TEST(test_stdio_output_stuck);
	RUN_TEST(test_pty_raw_restored_on_free);
	RUN_TEST(test_pty_raw_restored_at_exit);
	RUN_TEST(test_pty_raw_restored_on_signal);
	return check_finish();
}
