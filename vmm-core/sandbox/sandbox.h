/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/sandbox/sandbox.h - the VM process's sandbox: seccomp-bpf
 * allow-lists (one for the whole process, a stricter one stacked on each
 * kind of thread), Landlock (the files it may reach), no_new_privs, no
 * capabilities, no core dumps.  ARCHITECTURE.md "The sandbox" says what
 * each allows and why; policy.c and landlock.c hold the lists.
 *
 * Once in place it cannot be lifted: call sandbox_enter() after everything
 * that needs more (opening images, devices and sockets, the window, the
 * bridge helper) and before the machine runs.  A call outside the
 * allow-lists never runs: the thread gets SIGSYS, whose handler writes
 * one line to stderr (vm.log in a VM process) naming the thread and the
 * call, and the process dies of SIGSYS.
 *
 * Threads: every thread the VMM starts calls sandbox_thread_enter() first
 * with its kind.  That names it (what ps, gdb and the report of a
 * forbidden call show) and, once the sandbox is in place, stacks its
 * kind's filter on the process's.  Threads running when sandbox_enter() is
 * called get all of it then (see sandbox.c).
 */
#ifndef VIVARIUM_SANDBOX_H
#define VIVARIUM_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>

enum sandbox_thread {
	SANDBOX_THREAD_OTHER = 0,	/* a library's, or not yet known: the base */
	SANDBOX_THREAD_MAIN,		/* the main loop: GLib, SDL, control socket */
	SANDBOX_THREAD_MACHINE,		/* machine_run(): builds and rebuilds */
	SANDBOX_THREAD_VCPU,		/* vcpu.c */
	SANDBOX_THREAD_TIMER,		/* timer.c */
	SANDBOX_THREAD_IO,		/* iothread.c: the doorbells */
	SANDBOX_THREAD_BLOCK,		/* block.c: an image's workers */
	SANDBOX_THREAD_NET,		/* net/net.c: a backend's thread */
	SANDBOX_THREAD_SERIAL,		/* host/chardev.c: terminal input */
	SANDBOX_THREAD_VNC,		/* display_vnc.c: acceptor, clients */
	SANDBOX_THREAD_SIGNALS,		/* `vivarium run`'s sigwait thread */
	SANDBOX_THREAD_SHARE,		/* virtio_9p.c: a shared folder's server */
	SANDBOX_THREAD_USB,		/* usb/usb_host.c: libusb's events */
	SANDBOX_THREAD_TPM,		/* devices/tpm_tis.c: TPM commands */
	SANDBOX_THREAD_KINDS
};

/* What Landlock lets the process do with a path (sandbox_config.paths). */
enum sandbox_access {
	SANDBOX_READ,		/* read a file, or every file and folder beneath
				 * a folder */
	SANDBOX_READ_WRITE,	/* read and write a file (and truncate it); no
				 * creating, renaming or removing */
	SANDBOX_FOLDER,		/* anything beneath a folder: read, write,
				 * create, rename and remove files and folders */
	SANDBOX_REMOVE,		/* remove files beneath a folder (a socket the
				 * process made there, at its end) */
	SANDBOX_SHARE,		/* a shared folder: SANDBOX_FOLDER and making
				 * symlinks (no device nodes, FIFOs, sockets) */
};

struct sandbox_path {
	const char *path;
	enum sandbox_access access;
	bool required;		/* missing: an error; else skipped */
};

struct sandbox_config {
	bool coredump;		/* keep core dumps possible (vm.conf coredump=on) */
	bool nat;		/* NAT networking: libslirp opens AF_INET and
				 * AF_INET6 sockets as the guest connects */
	bool window;		/* an SDL console window on this process:
				 * GPU (DRM, dma-buf) ioctls, SysV shared
				 * memory, the GL driver's JIT mappings */
	bool shares;		/* shared folders (virtio-9p): the base allows
				 * the calls of their servers (sys_share) */
	bool audio;		/* the PulseAudio backend: its mainloop thread
				 * (base) connects, and reconnects, to the
				 * server's AF_UNIX stream socket */
	/* What the process may reach, besides the read-only system paths
	 * landlock.c adds (libraries and their data, time zones, resolv.conf,
	 * /dev/null, /dev/urandom). */
	const struct sandbox_path *paths;
	size_t npaths;
	/* Called once the Landlock rules hold their paths (opened with the
	 * starting credentials) and before any thread is restricted: the
	 * place to change user (set*id is forbidden afterwards).  Returns 0
	 * or -errno with one line in @err, which fails sandbox_enter().
	 * NULL: nothing. */
	int (*before_restrict)(void *opaque, char *err, size_t errlen);
	void *opaque;
};

/* What sandbox_enter() put in place (for the VM's log). */
struct sandbox_report {
	int landlock_abi;	/* in force; 0: none (the kernel has none) */
	char landlock_why[96];	/* when 0: why, for the one warning line */
	unsigned threads;	/* threads the sandbox reached when entered */
	bool caps_dropped;	/* there were capabilities to drop */
	bool coredump;		/* core dumps left possible */
};

/*
 * sandbox_enter - put the sandbox in place, in this order: core dumps off
 * (PR_SET_DUMPABLE 0 and RLIMIT_CORE 0) unless @cfg->coredump; then on
 * every thread no_new_privs, no capabilities (effective, permitted,
 * inheritable, ambient, bounding) and the Landlock domain of @cfg's paths
 * (skipped, with @rep->landlock_why, where the kernel has no Landlock);
 * then the process-wide seccomp filter (SECCOMP_FILTER_FLAG_TSYNC) and
 * each known thread's own.  Call once, from the thread that will go on
 * running the main loop.
 * Returns 0, or -errno + one line in @err: -ENOSYS when the kernel has no
 * seccomp filters, -ETIMEDOUT when a thread blocks SIGSYS (named: the
 * sandbox cannot reach it), -ENOENT for a required path that is missing,
 * -EALREADY when called twice.  On failure the process may be partly
 * restricted: the caller ends it.
 */
int sandbox_enter(const struct sandbox_config *cfg, struct sandbox_report *rep,
		  char *err, size_t errlen);

/* sandbox_active - sandbox_enter() succeeded in this process. */
bool sandbox_active(void);

/*
 * sandbox_thread_enter - call first thing in a new thread (for a vCPU:
 * after creating it, so the filter need not allow creating vCPUs): names
 * the thread @name (at most 15 bytes are kept; NULL: unchanged) and
 * records @kind; once the sandbox is in place, installs @kind's filter on
 * this thread (threads it starts inherit it).  Never fails: a filter that
 * cannot be installed ends the process with one line on stderr, as the
 * sandbox cannot be half in place.
 */
void sandbox_thread_enter(enum sandbox_thread kind, const char *name);

/*
 * sandbox_filter_new_threads - for tests: from now on each thread that
 * calls sandbox_thread_enter() with a kind of its own (vCPU, timer, I/O,
 * block, net, serial, VNC, signals) sets no_new_privs and loads the base
 * filter and its kind's, as in a sandboxed VM process; nothing else of
 * the sandbox (the calling thread, other threads, files: untouched).  So
 * unit and guest tests, whose own code needs more, run the VMM's threads
 * on their allow-lists.  0 or -errno + @err.
 */
int sandbox_filter_new_threads(const struct sandbox_config *cfg, char *err,
			       size_t errlen);

/* ---- what the host has (vivarium doctor) -------------------------------- */

struct sandbox_support {
	bool seccomp;		/* seccomp filters (SECCOMP_SET_MODE_FILTER) */
	bool seccomp_tsync;	/* SECCOMP_FILTER_FLAG_TSYNC */
	bool seccomp_trap;	/* SECCOMP_RET_TRAP among the actions */
	bool no_new_privs;	/* PR_SET_NO_NEW_PRIVS */
	int landlock_abi;	/* > 0: the ABI version; else -errno */
	bool in_seccomp;	/* this process is filtered already (a container) */
};

/* sandbox_probe - ask the running kernel, changing nothing. */
void sandbox_probe(struct sandbox_support *s);

/* What vivarium makes of a host's support, for doctor: one line each. */
struct sandbox_verdict {
	bool usable;		/* VMs start with the sandbox (the default) */
	char seccomp[128];
	char landlock[128];
	char no_new_privs[64];
};

/* sandbox_describe - @v for a host with @s.  Pure. */
void sandbox_describe(const struct sandbox_support *s, struct sandbox_verdict *v);

/*
 * Test hook, for tests/e2e/test_sandbox.sh only: VIVARIUM_TEST_SANDBOX_VIOLATION
 * in the environment of a sandboxed VM process makes its first vCPU
 * thread, once filtered, call "execve" (which must kill the process with
 * the call named on stderr) or "open:PATH" (open PATH for reading and
 * write "sandbox test: open PATH: RESULT" to stderr; Landlock must refuse
 * anything outside the VM's paths).
 */

#endif
