/* SPDX-License-Identifier: MIT */
/* tests/unit/test_chardev_fd.c - the fd chardev backend (a VM process's
 * serial console over pipes): output reaches the fd, input reaches the
 * sink byte for byte (no Ctrl-A escape), a full pipe drops instead of
 * blocking, chardev_free closes both fds. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "host/chardev.h"
#include "sandboxed.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t got[256];
static size_t ngot;
static int quits;

static size_t sink_receive(void *opaque, const uint8_t *buf, size_t len)
{
	(void)opaque;
	if (len > sizeof(got) - ngot)
		len = sizeof(got) - ngot;
	memcpy(got + ngot, buf, len);
	ngot += len;
	return len;
}

static void sink_quit(void *opaque)
{
	(void)opaque;
	quits++;
}

static void wait_for(size_t n)
{
	for (int i = 0; i < 500; i++) {
		size_t have;

		pthread_mutex_lock(&lock);
		have = ngot;
		pthread_mutex_unlock(&lock);
		if (have >= n)
			return;
		usleep(2000);
	}
}

static void test_both_ways(void)
{
	int out[2], in[2];
	struct chardev *chr;
	struct chardev_sink sink = { .receive = sink_receive, .quit = sink_quit };
	static const uint8_t typed[] = { 'a', 0x01, 'x', 0x01, 0x01, 'b' };
	char buf[64];
	ssize_t n;

	CHECK(pipe2(out, O_NONBLOCK) == 0);
	CHECK(pipe2(in, 0) == 0);
	chr = chardev_fd_new(in[0], out[1]);
	CHECK(chr != NULL);
	CHECK_EQ(chardev_write(chr, (const uint8_t *)"hello", 5), 0);
	n = read(out[0], buf, sizeof(buf));
	CHECK_EQ(n, 5);
	CHECK(n == 5 && !memcmp(buf, "hello", 5));

	CHECK_EQ(chardev_start_input(chr, &sink, &lock), 0);
	CHECK_EQ(chardev_start_input(chr, &sink, &lock), -EBUSY);
	CHECK_EQ(write(in[1], typed, sizeof(typed)), (ssize_t)sizeof(typed));
	wait_for(sizeof(typed));
	pthread_mutex_lock(&lock);
	CHECK_EQ(ngot, sizeof(typed));
	CHECK(!memcmp(got, typed, sizeof(typed)));	/* Ctrl-A x passes */
	pthread_mutex_unlock(&lock);
	CHECK_EQ(quits, 0);

	chardev_free(chr);
	/* Both fds are closed: the peers see EOF / EPIPE. */
	CHECK_EQ(read(out[0], buf, sizeof(buf)), 0);
	signal(SIGPIPE, SIG_IGN);
	CHECK(write(in[1], "z", 1) < 0 && errno == EPIPE);
	close(out[0]);
	close(in[1]);
}

static void test_full_pipe_drops(void)
{
	int out[2];
	struct chardev *chr;
	uint8_t chunk[4096];
	struct timespec t0, t1;
	long long ms;

	memset(chunk, 'x', sizeof(chunk));
	CHECK(pipe2(out, O_NONBLOCK) == 0);
	chr = chardev_fd_new(-1, out[1]);
	CHECK(chr != NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* Far more than a pipe holds, nobody reading: must not block. */
	for (int i = 0; i < 64; i++)
		CHECK_EQ(chardev_write(chr, chunk, sizeof(chunk)), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	CHECK(ms < 2000);
	chardev_free(chr);
	close(out[0]);
}

int main(void)
{
	sandbox_test_threads(false);
	RUN_TEST(test_both_ways);
	RUN_TEST(test_full_pipe_drops);
	return check_finish();
}
