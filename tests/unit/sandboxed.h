/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/sandboxed.h - run the VMM's own threads in a test (net
 * backends, block workers, vCPUs...) on the seccomp allow-lists they have
 * in a sandboxed VM process (sandbox_filter_new_threads): a call off
 * their list kills the test with SIGSYS and one line naming the call and
 * the thread.  The test's own threads stay free.  VIVARIUM_TEST_NO_SANDBOX
 * in the environment turns it off (to tell a list's fault from another).
 */
#ifndef VIVARIUM_TEST_SANDBOXED_H
#define VIVARIUM_TEST_SANDBOXED_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "sandbox/sandbox.h"

static inline void sandbox_test_threads(bool nat)
{
	struct sandbox_config cfg = { .nat = nat };
	char err[256];

	if (getenv("VIVARIUM_TEST_NO_SANDBOX"))
		return;
	if (sandbox_filter_new_threads(&cfg, err, sizeof(err)) < 0)
		fprintf(stderr, "# the VMM's threads run unfiltered: %s\n", err);
}

#endif
