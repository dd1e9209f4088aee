/* SPDX-License-Identifier: MIT */
/* tests/fuzz/sandbox_stub.c - the libFuzzer builds compile a target's
 * sources without the sandbox (libseccomp, Landlock): timer.c's thread
 * still names its kind, to nobody. */
#include "sandbox/sandbox.h"

void sandbox_thread_enter(enum sandbox_thread kind, const char *name)
{
	(void)kind, (void)name;
}
