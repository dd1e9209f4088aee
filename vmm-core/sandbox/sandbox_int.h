/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/sandbox/sandbox_int.h - what sandbox.c, policy.c and landlock.c
 * share.  Not for other users: sandbox.h is the interface.
 */
#ifndef VIVARIUM_SANDBOX_INT_H
#define VIVARIUM_SANDBOX_INT_H

#include <linux/filter.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "sandbox/sandbox.h"

/* What the seccomp allow-lists depend on besides the thread kind. */
struct policy_opts {
	pid_t pid;		/* ours: kill/tgkill may target it only */
	bool nat;		/* AF_INET/AF_INET6 sockets (libslirp) */
	bool window;		/* SDL: GPU ioctls, SysV shm, JIT mappings */
	bool shares;		/* shared folders: the 9P server's calls */
	bool audio;		/* PulseAudio: AF_UNIX stream socket, connect */
};

/*
 * policy_build - the seccomp filter of thread kind @kind (KIND_OTHER, MAIN
 * and MACHINE: the process-wide base, the union of all) as a BPF program
 * in *@prog (filter malloc'ed; free it).  Every call outside the list
 * traps (SIGSYS, sandbox.c reports it).  0 or -errno + @err.
 */
int policy_build(enum sandbox_thread kind, const struct policy_opts *o,
		 struct sock_fprog *prog, char *err, size_t errlen);

/* Base filters are loaded with SECCOMP_FILTER_FLAG_TSYNC (every thread),
 * the others on the calling thread only. */
bool policy_is_base(enum sandbox_thread kind);

/* The name of system call @nr, or NULL; from a table filled by
 * policy_names_init() (async-signal-safe once filled). */
void policy_names_init(void);
const char *policy_name(long nr);

/* ---- Landlock (landlock.c) ---------------------------------------------- */

/* landlock_create_ruleset(NULL, 0, VERSION): the ABI, or -errno
 * (-ENOSYS: not built in; -EOPNOTSUPP: disabled at boot). */
int landlock_abi(void);

/*
 * landlock_ruleset - a ruleset fd for @abi holding @paths and the system's
 * read-only paths (landlock.c says which), to landlock_restrict_self() on
 * every thread.  Paths that do not exist are skipped unless required.
 * Returns the fd, or -errno + @err.
 */
int landlock_ruleset(int abi, const struct sandbox_path *paths, size_t npaths,
		     char *err, size_t errlen);

#endif
