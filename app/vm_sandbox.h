/* SPDX-License-Identifier: MIT */
/*
 * app/vm_sandbox.h - the sandbox of a VM's process (`vivarium run`,
 * `vivarium vm-process`): what it may reach, from the machine's
 * configuration, handed to vmm-core/sandbox (sandbox.h).
 */
#ifndef VIVARIUM_VM_SANDBOX_H
#define VIVARIUM_VM_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>

struct machine_config;

struct vm_sandbox_opts {
	const struct machine_config *mc;	/* drives, NICs */
	const char *vm_name;	/* a library VM: its folder is its own
				 * (snapshots, saves, logs) and the images its
				 * snapshots read are reachable; NULL for `run` */
	const char *sock_path;	/* its control socket: removed at the end */
	bool window;		/* an SDL window on this process */
	bool coredump;		/* keep core dumps possible */
	const char *run_as;	/* vm.conf run-as: vm_run_as() once the
				 * Landlock rules hold their paths (opened as
				 * the starting user), before the filters;
				 * NULL: no change */
};

/*
 * vm_sandbox_enter - sandbox_enter() for a VM: Landlock lets the process
 * read and write its writable disks' images, read its read-only disks,
 * CD-ROM and every image of their backing chains, do anything but make
 * device nodes, FIFOs and sockets beneath its shared folders (read their
 * read-only ones), do anything in its VM
 * folder, remove files in the control socket's folder; the seccomp lists
 * allow NAT's sockets when a NIC is on NAT and the GPU when @window.  The
 * kernel, initrd and firmware are read before (machine_create) and need
 * no rule.  On success @summary (if not NULL) says what is in place, for
 * the VM's log ("seccomp allow-lists on every thread (7 running), Landlock ABI 7, ...");
 * a kernel without Landlock gets a warning line on stderr.  Returns 0 or
 * -errno + @err (sandbox_enter's).
 */
int vm_sandbox_enter(const struct vm_sandbox_opts *o, char *summary,
		     size_t summlen, char *err, size_t errlen);

/*
 * vm_run_as - vm.conf's run-as=USER: become @user (its uid, its primary
 * gid and its supplementary groups from the group database: initgroups,
 * setgid, setuid, for every thread as glibc applies set*id process-wide),
 * like QEMU's -run-with user=.  Called once everything is open (/dev/kvm,
 * images, sockets, the window) and before vm_sandbox_enter().  A process
 * already running as @user does nothing.  Returns 0, or -errno with one
 * line in @err: no such user, @user is root (nothing to drop), not started
 * as root (-EPERM), a set*id call failed, or uid 0 could be regained.
 */
int vm_run_as(const char *user, char *err, size_t errlen);

#endif
