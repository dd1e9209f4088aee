/* SPDX-License-Identifier: MIT */
/*
 * bench/sandbox_syscall.c - what the seccomp filters add to one system
 * call, with no KVM and no guest: ns per call of ioctl(-1, KVM_RUN) (the
 * vCPU's hot call, refused at once with EBADF) and of read(-1) on a thread
 * without filters, then on a vCPU thread with the base filter and the
 * vCPU's (sandbox_filter_new_threads()).  For bench/sandbox.sh.
 *
 *   sandbox_syscall [CALLS]      (default 2000000)
 * Prints "ioctl NS_OFF NS_ON" and "read NS_OFF NS_ON".
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/sandbox.h"

#define KVM_RUN_REQ 0xae80	/* _IO(KVMIO, 0x80) */

static long calls = 2000000;
static double ns[2][2];		/* [filtered][ioctl, read] */

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void measure(double out[2])
{
	double t0 = now_ns();

	for (long i = 0; i < calls; i++)
		(void)!ioctl(-1, KVM_RUN_REQ, 0);
	out[0] = (now_ns() - t0) / calls;
	t0 = now_ns();
	for (long i = 0; i < calls; i++)
		(void)!read(-1, NULL, 0);
	out[1] = (now_ns() - t0) / calls;
}

static void *thread(void *arg)
{
	bool filtered = arg != NULL;

	if (filtered)
		sandbox_thread_enter(SANDBOX_THREAD_VCPU, "vcpu0");
	measure(ns[filtered]);
	return NULL;
}

int main(int argc, char **argv)
{
	struct sandbox_config cfg = { 0 };
	char err[256];
	pthread_t t;

	if (argc > 1)
		calls = atol(argv[1]);
	pthread_create(&t, NULL, thread, NULL);
	pthread_join(t, NULL);
	if (sandbox_filter_new_threads(&cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "sandbox_syscall: %s\n", err);
		return 1;
	}
	pthread_create(&t, NULL, thread, (void *)1);
	pthread_join(t, NULL);
	printf("ioctl %.1f %.1f\nread %.1f %.1f\n", ns[0][0], ns[1][0], ns[0][1], ns[1][1]);
	return 0;
}
