/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/sandbox/sandbox.c - putting the sandbox in place (sandbox.h),
 * and the report of a forbidden call.
 *
 * no_new_privs, capabilities and Landlock belong to a thread, not to the
 * process, and when sandbox_enter() runs the process has threads already
 * (the network backends', the VNC server's, the GL driver's).  So each
 * thread is asked to restrict itself: the caller sends it SIGSYS with
 * tgkill() and its handler (the same one that reports forbidden calls,
 * told apart by si_code) does it.  SIGSYS because GL drivers (Mesa) block
 * every other signal in their threads and keep SIGSYS for exactly this
 * kind of handler.  The caller lists /proc/self/task until every thread
 * there has answered (new ones included: a thread started meanwhile by one
 * not yet restricted is asked too), restricts itself last, then loads the
 * base seccomp filter on all threads at once (TSYNC), and asks each thread
 * again to stack the filter of its kind.  A thread that does not answer
 * within 5 s (SIGSYS blocked) fails the whole: the sandbox is never
 * partly in place without an error.
 *
 * A forbidden call: seccomp's SECCOMP_RET_TRAP sends SIGSYS to the thread
 * (the call does not run); the handler writes one line to stderr:
 *   vivarium: sandbox: forbidden system call execve (59) in thread
 *   'vcpu0': the VM process stops
 * (ioctl and socket with their request or family), then dies of SIGSYS
 * (a core dump with coredump=on: its stack shows the caller).  TRAP rather
 * than SECCOMP_RET_KILL_PROCESS with logging: that log goes to the
 * kernel's audit log, which a desktop user often cannot read, and names no
 * thread.  Code that has taken over a thread could replace the handler,
 * but the forbidden call still never runs.
 */
#define _GNU_SOURCE
#include "sandbox/sandbox_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "log.h"

#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1
#endif
#ifndef SECCOMP_FILTER_FLAG_TSYNC
#define SECCOMP_FILTER_FLAG_TSYNC 1
#endif

#define ANSWER_TIMEOUT_MS	5000
#define TIDS_MAX		4096

static __thread enum sandbox_thread thread_kind;
static __thread bool thread_filtered;

static atomic_bool active;		/* sandbox_enter() finished */
static atomic_bool threads_only;	/* sandbox_filter_new_threads() */
static atomic_bool entering;		/* ... started */
static struct sock_fprog progs[SANDBOX_THREAD_KINDS];

/* The test hook (sandbox.h). */
static const char *test_violation;

/* ---- the per-thread steps, run in each thread ------------------------------ */

enum step { STEP_NONE, STEP_RESTRICT, STEP_FILTER };

static atomic_int step;
static int ruleset_fd = -1;
static int last_cap = -1;
static bool drop_bounding;

/* Threads that answered this step, and the first failure. */
static _Atomic pid_t answered[TIDS_MAX];
static atomic_uint nanswered;
static atomic_int step_error;		/* -errno */
static atomic_int step_error_tid;

static int restrict_thread(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = { { 0 } };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (drop_bounding)
		for (int c = 0; c <= last_cap; c++)
			if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
				return -errno;
	if (syscall(SYS_capset, &h, d) < 0)
		return -errno;
	if (ruleset_fd >= 0 && syscall(SYS_landlock_restrict_self, ruleset_fd, 0) < 0)
		return -errno;
	return 0;
}

static int filter_thread(enum sandbox_thread kind)
{
	if (policy_is_base(kind) || thread_filtered || !progs[kind].filter)
		return 0;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &progs[kind]) < 0)
		return -errno;
	thread_filtered = true;
	return 0;
}

static void answer(int r)
{
	pid_t tid = (pid_t)syscall(SYS_gettid);
	unsigned i = atomic_fetch_add(&nanswered, 1);

	if (r < 0) {
		int none = 0;

		if (atomic_compare_exchange_strong(&step_error, &none, r))
			atomic_store(&step_error_tid, tid);
	}
	if (i < TIDS_MAX)
		atomic_store(&answered[i], tid);
}

/* ---- the report of a forbidden call ----------------------------------------- */

static size_t put(char *buf, size_t at, size_t len, const char *s)
{
	while (*s && at + 1 < len)
		buf[at++] = *s++;
	buf[at] = '\0';
	return at;
}

static size_t put_num(char *buf, size_t at, size_t len, unsigned long v, int base)
{
	char tmp[24];
	int n = 0;

	if (base == 16)
		at = put(buf, at, len, "0x");
	do {
		tmp[n++] = "0123456789abcdef"[v % (unsigned)base];
		v /= (unsigned)base;
	} while (v && n < (int)sizeof(tmp));
	while (n && at + 1 < len)
		buf[at++] = tmp[--n];
	buf[at] = '\0';
	return at;
}

static void report_violation(const siginfo_t *si, const ucontext_t *uc)
{
	char line[512], name[17] = "";
	const char *call = policy_name(si->si_syscall);
	size_t at = 0;

	prctl(PR_GET_NAME, name, 0, 0, 0);
	at = put(line, at, sizeof(line), "vivarium: sandbox: forbidden system call ");
	if (si->si_arch != AUDIT_ARCH_X86_64)
		at = put(line, at, sizeof(line), "of another architecture ");
	at = put(line, at, sizeof(line), call ? call : "?");
	at = put(line, at, sizeof(line), " (");
	at = put_num(line, at, sizeof(line), (unsigned long)si->si_syscall, 10);
	at = put(line, at, sizeof(line), ")");
	if (uc && call && (!strcmp(call, "ioctl") || !strcmp(call, "socket") ||
			   !strcmp(call, "clone") || !strcmp(call, "mmap") ||
			   !strcmp(call, "mprotect") || !strcmp(call, "openat") ||
			   !strcmp(call, "prctl"))) {
		/* The arguments that the filter looked at. */
		const greg_t *g = uc->uc_mcontext.gregs;

		at = put(line, at, sizeof(line), " with arguments ");
		at = put_num(line, at, sizeof(line), (unsigned long)g[REG_RDI], 16);
		at = put(line, at, sizeof(line), ", ");
		at = put_num(line, at, sizeof(line), (unsigned long)g[REG_RSI], 16);
		at = put(line, at, sizeof(line), ", ");
		at = put_num(line, at, sizeof(line), (unsigned long)g[REG_RDX], 16);
		at = put(line, at, sizeof(line), ", ");
		at = put_num(line, at, sizeof(line), (unsigned long)g[REG_R10], 16);
	}
	at = put(line, at, sizeof(line), " in thread '");
	at = put(line, at, sizeof(line), name);
	/* "\r\n": the terminal may be in raw mode (as vlog). */
	at = put(line, at, sizeof(line), "': the VM process stops\r\n");
	(void)!write(STDERR_FILENO, line, at);
}

static void on_sigsys(int sig, siginfo_t *si, void *ucv)
{
	int saved = errno;
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t set;

	if (si->si_code != SYS_SECCOMP) {
		/* One of ours (sandbox_enter asking), or someone's kill:
		 * the latter is ignored. */
		if ((si->si_code == SI_TKILL || si->si_code == SI_USER) &&
		    si->si_pid == getpid()) {
			int s = atomic_load(&step);

			if (s == STEP_RESTRICT)
				answer(restrict_thread());
			else if (s == STEP_FILTER)
				answer(filter_thread(thread_kind));
		}
		errno = saved;
		return;
	}
	report_violation(si, ucv);
	/* Die of SIGSYS: the default action, now. */
	sigaction(SIGSYS, &dfl, NULL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGSYS);
	_exit(128 + SIGSYS);
}

/* ---- asking every thread ------------------------------------------------------ */

static bool has_answered(pid_t tid)
{
	unsigned n = atomic_load(&nanswered);

	if (n > TIDS_MAX)
		n = TIDS_MAX;
	for (unsigned i = 0; i < n; i++)
		if (atomic_load(&answered[i]) == tid)
			return true;
	return false;
}

/* The name of thread @tid, read through /proc/self/task (may fail once
 * this thread is restricted). */
static void thread_name(int taskfd, pid_t tid, char *buf, size_t len)
{
	char rel[32];
	int fd;
	ssize_t n;

	snprintf(buf, len, "?");
	snprintf(rel, sizeof(rel), "%d/comm", (int)tid);
	fd = openat(taskfd, rel, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
	}
}

/* Tasks the kernel runs in our thread group (KVM's NX huge page recovery,
 * io_uring workers) take no signals and make no system calls.  Known
 * from the first step on, while /proc can still be read. */
#define PF_IO_WORKER	0x00000010
#define PF_USER_WORKER	0x00004000
#define PF_KTHREAD	0x00200000
static pid_t workers[64];
static unsigned nworkers;

static bool kernel_worker(int taskfd, pid_t tid)
{
	char rel[32], buf[512], *p;
	unsigned long flags = 0;
	ssize_t n;
	int fd;

	for (unsigned i = 0; i < nworkers; i++)
		if (workers[i] == tid)
			return true;
	snprintf(rel, sizeof(rel), "%d/stat", (int)tid);
	fd = openat(taskfd, rel, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* pid (comm) state ppid pgrp session tty tpgid flags: the comm may
	 * hold spaces and parentheses, so count from its last ')'. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %lu", &flags) != 1)
		return false;
	if (!(flags & (PF_IO_WORKER | PF_USER_WORKER | PF_KTHREAD)))
		return false;
	if (nworkers < sizeof(workers) / sizeof(workers[0]))
		workers[nworkers++] = tid;
	return true;
}

/*
 * Have every thread but this one run step @s in its SIGSYS handler; wait
 * until all threads in /proc/self/task have answered.  0, or -errno + @err.
 */
static int ask_threads(int taskfd, enum step s, unsigned *count, char *err,
		       size_t errlen)
{
	pid_t self = (pid_t)syscall(SYS_gettid), pid = getpid();
	struct timespec tick = { 0, 2 * 1000 * 1000 };
	unsigned waited_ms = 0, threads = 1;
	char buf[4096];

	atomic_store(&nanswered, 0);
	atomic_store(&step_error, 0);
	atomic_store(&step, s);
	for (;;) {
		pid_t late = 0;
		long n;

		threads = 1;
		lseek(taskfd, 0, SEEK_SET);
		while ((n = syscall(SYS_getdents64, taskfd, buf, sizeof(buf))) > 0) {
			for (long off = 0; off < n;) {
				struct dirent64 *de = (struct dirent64 *)(buf + off);
				pid_t tid = (pid_t)atoi(de->d_name);

				off += de->d_reclen;
				if (tid <= 0 || tid == self)
					continue;
				if (!has_answered(tid) && kernel_worker(taskfd, tid))
					continue;
				threads++;
				if (has_answered(tid))
					continue;
				late = tid;
				/* Again every 100 ms: a thread between clone
				 * and its first instruction may miss one. */
				if (waited_ms % 100 == 0)
					syscall(SYS_tgkill, pid, tid, SIGSYS);
			}
		}
		if (n < 0) {
			snprintf(err, errlen, "sandbox: cannot list this process's threads: %s",
				 strerror(errno));
			return -errno;
		}
		if (atomic_load(&step_error) < 0) {
			char name[32];
			int e = atomic_load(&step_error);

			thread_name(taskfd, atomic_load(&step_error_tid), name, sizeof(name));
			snprintf(err, errlen, "sandbox: thread '%s' could not %s: %s", name,
				 s == STEP_RESTRICT ? "restrict itself" : "install its filter",
				 strerror(-e));
			return e;
		}
		if (!late)
			break;
		if (waited_ms >= ANSWER_TIMEOUT_MS) {
			char name[32];

			thread_name(taskfd, late, name, sizeof(name));
			snprintf(err, errlen,
				 "sandbox: thread '%s' (%d) does not take SIGSYS, so it cannot be restricted (set sandbox=off to run without)",
				 name, (int)late);
			return -ETIMEDOUT;
		}
		nanosleep(&tick, NULL);
		waited_ms += 2;
	}
	atomic_store(&step, STEP_NONE);
	if (count)
		*count = threads;
	return 0;
}

/* ---- setup ------------------------------------------------------------------------ */

static int install_handler(void)
{
	struct sigaction sa = { .sa_sigaction = on_sigsys,
				.sa_flags = SA_SIGINFO | SA_RESTART };
	sigset_t set;

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0)
		return -errno;
	sigemptyset(&set);
	sigaddset(&set, SIGSYS);
	return -pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

/* Are there capabilities to drop (any set of this thread)? */
static bool have_caps(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = { { 0 } };

	if (syscall(SYS_capget, &h, d) < 0)
		return true;
	for (int i = 0; i < 2; i++)
		if (d[i].effective || d[i].permitted || d[i].inheritable)
			return true;
	return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, 0, 0, 0) > 0;
}

static void caps_prepare(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = { { 0 } };

	for (last_cap = 0; prctl(PR_CAPBSET_READ, last_cap + 1, 0, 0, 0) >= 0; last_cap++)
		;
	/* The bounding set can only be shrunk with CAP_SETPCAP. */
	drop_bounding = syscall(SYS_capget, &h, d) == 0 &&
			(d[0].effective & (1u << CAP_SETPCAP));
}

static int build_filters(const struct sandbox_config *cfg, char *err, size_t errlen)
{
	struct policy_opts o = { .pid = getpid(), .nat = cfg->nat, .window = cfg->window,
				  .shares = cfg->shares, .audio = cfg->audio };

	for (int k = 0; k < SANDBOX_THREAD_KINDS; k++) {
		int r;

		/* One base program serves MAIN, MACHINE and OTHER. */
		if (policy_is_base((enum sandbox_thread)k) && k != SANDBOX_THREAD_OTHER)
			continue;
		r = policy_build((enum sandbox_thread)k, &o, &progs[k], err, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}

int sandbox_enter(const struct sandbox_config *cfg, struct sandbox_report *rep,
		  char *err, size_t errlen)
{
	struct sandbox_report dummy;
	bool expected = false;
	int taskfd = -1, abi, r;
	long s;

	if (!rep)
		rep = &dummy;
	memset(rep, 0, sizeof(*rep));
	if (!atomic_compare_exchange_strong(&entering, &expected, true)) {
		snprintf(err, errlen, "sandbox: already in place");
		return -EALREADY;
	}
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0 && errno == EINVAL) {
		snprintf(err, errlen, "sandbox: this kernel has no seccomp (set sandbox=off to run without)");
		return -ENOSYS;
	}
	test_violation = getenv("VIVARIUM_TEST_SANDBOX_VIOLATION");
	policy_names_init();
	r = build_filters(cfg, err, errlen);
	if (r < 0)
		return r;
	abi = landlock_abi();
	if (abi > 0) {
		ruleset_fd = landlock_ruleset(abi, cfg->paths, cfg->npaths, err, errlen);
		if (ruleset_fd < 0)
			return ruleset_fd;
		rep->landlock_abi = abi;
	} else {
		snprintf(rep->landlock_why, sizeof(rep->landlock_why), "%s",
			 abi == -ENOSYS ? "the kernel has no Landlock" :
			 abi == -EOPNOTSUPP ? "Landlock is off on this kernel (boot option lsm=)" :
			 strerror(-abi));
	}
	if (cfg->before_restrict) {
		r = cfg->before_restrict(cfg->opaque, err, errlen);
		if (r < 0)
			goto out;
	}
	caps_prepare();
	rep->caps_dropped = have_caps();
	taskfd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (taskfd < 0) {
		r = -errno;
		snprintf(err, errlen, "sandbox: cannot open /proc/self/task: %s", strerror(errno));
		goto out;
	}
	r = install_handler();
	if (r < 0) {
		snprintf(err, errlen, "sandbox: cannot handle SIGSYS: %s", strerror(-r));
		goto out;
	}
	/* Core dumps hold guest RAM; a non-dumpable process also cannot be
	 * read or traced by the user's other processes. */
	rep->coredump = cfg->coredump;
	if (!cfg->coredump) {
		struct rlimit no = { 0, 0 };

		if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 || setrlimit(RLIMIT_CORE, &no) < 0) {
			r = -errno;
			snprintf(err, errlen, "sandbox: cannot turn core dumps off: %s",
				 strerror(errno));
			goto out;
		}
	}
	/* Every other thread, then this one. */
	r = ask_threads(taskfd, STEP_RESTRICT, &rep->threads, err, errlen);
	if (r == 0) {
		r = restrict_thread();
		if (r < 0)
			snprintf(err, errlen, "sandbox: cannot restrict the main thread: %s",
				 strerror(-r));
	}
	if (r < 0)
		goto out;
	/* > 0: the thread that could not be synchronised. */
	s = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC,
		    &progs[SANDBOX_THREAD_OTHER]);
	if (s != 0) {
		r = s < 0 ? -errno : -ESRCH;
		snprintf(err, errlen, "sandbox: cannot load the seccomp filter on every thread: %s",
			 strerror(-r));
		goto out;
	}
	atomic_store(&active, true);
	/* From here on a new thread installs its own filter at its start;
	 * those running get theirs now. */
	r = ask_threads(taskfd, STEP_FILTER, NULL, err, errlen);
	if (r == 0)
		r = filter_thread(thread_kind);
out:
	if (taskfd >= 0)
		close(taskfd);
	if (ruleset_fd >= 0)
		close(ruleset_fd);
	ruleset_fd = -1;
	return r;
}

bool sandbox_active(void)
{
	return atomic_load(&active);
}

/* ---- threads ------------------------------------------------------------------------ */

static void run_test_violation(void)
{
	/* One thread, once. */
	const char *v = __atomic_exchange_n(&test_violation, NULL, __ATOMIC_SEQ_CST);

	if (!v)
		return;
	if (!strcmp(v, "execve")) {
		char *const argv[] = { "true", NULL };

		execve("/bin/true", argv, environ);
		fprintf(stderr, "sandbox test: execve returned: %s\r\n", strerror(errno));
	} else if (!strncmp(v, "open:", 5)) {
		int fd = open(v + 5, O_RDONLY | O_CLOEXEC);

		fprintf(stderr, "sandbox test: open %s: %s\r\n", v + 5,
			fd >= 0 ? "opened" : strerror(errno));
		if (fd >= 0)
			close(fd);
	}
}

int sandbox_filter_new_threads(const struct sandbox_config *cfg, char *err,
			       size_t errlen)
{
	bool expected = false;
	int r;

	if (!atomic_compare_exchange_strong(&entering, &expected, true)) {
		snprintf(err, errlen, "sandbox: already in place");
		return -EALREADY;
	}
	policy_names_init();
	r = build_filters(cfg, err, errlen);
	if (r == 0)
		r = install_handler();
	if (r == 0)
		atomic_store(&threads_only, true);
	return r;
}

/* sandbox_filter_new_threads(): the base (unless inherited from a
 * filtered thread that started this one), then the kind's. */
static int filter_thread_alone(enum sandbox_thread kind)
{
	if (policy_is_base(kind))
		return 0;
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != SECCOMP_MODE_FILTER &&
	    (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	     syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &progs[SANDBOX_THREAD_OTHER]) < 0))
		return -errno;
	return filter_thread(kind);
}

void sandbox_thread_enter(enum sandbox_thread kind, const char *name)
{
	int r;

	thread_kind = kind;
	log_rotate_here(policy_is_base(kind));
	if (name)
		prctl(PR_SET_NAME, name, 0, 0, 0);
	if (atomic_load(&threads_only))
		r = filter_thread_alone(kind);
	else if (atomic_load(&active))
		r = filter_thread(kind);
	else
		return;
	if (r < 0) {
		char line[160];
		int n = snprintf(line, sizeof(line),
				 "vivarium: sandbox: thread '%s' cannot install its filter: %s: the VM process stops\r\n",
				 name ? name : "?", strerror(errno));

		(void)!write(STDERR_FILENO, line, (size_t)n);
		_exit(1);
	}
	if (kind == SANDBOX_THREAD_VCPU)
		run_test_violation();
}

/* ---- what the host has ----------------------------------------------------------------- */

void sandbox_probe(struct sandbox_support *s)
{
	uint32_t action = SECCOMP_RET_TRAP;
	long r;

	memset(s, 0, sizeof(*s));
	r = prctl(PR_GET_SECCOMP, 0, 0, 0, 0);
	s->in_seccomp = r > 0;
	/* No program: EFAULT where filters (and the flag) are known,
	 * EINVAL where not. */
	errno = 0;
	r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, NULL);
	s->seccomp = r < 0 && errno == EFAULT;
	errno = 0;
	r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, NULL);
	s->seccomp_tsync = r < 0 && errno == EFAULT;
	s->seccomp_trap = syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0;
	s->no_new_privs = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) >= 0;
	s->landlock_abi = landlock_abi();
}

void sandbox_describe(const struct sandbox_support *s, struct sandbox_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->usable = s->seccomp && s->seccomp_tsync && s->seccomp_trap && s->no_new_privs;
	snprintf(v->seccomp, sizeof(v->seccomp), "%s%s",
		 !s->seccomp ? "no filters in this kernel: VMs start only with sandbox=off" :
		 !s->seccomp_tsync ? "no TSYNC: VMs start only with sandbox=off" :
		 !s->seccomp_trap ? "no TRAP action: VMs start only with sandbox=off" :
		 "filters, TSYNC, TRAP: each VM process runs on allow-lists",
		 s->in_seccomp ? " (this process is filtered already: a container's)" : "");
	if (s->landlock_abi > 0)
		snprintf(v->landlock, sizeof(v->landlock),
			 "ABI %d: a VM process reaches only its own files", s->landlock_abi);
	else
		snprintf(v->landlock, sizeof(v->landlock),
			 "%s: VMs run without file restrictions, with a warning",
			 s->landlock_abi == -ENOSYS ? "not in this kernel" :
			 s->landlock_abi == -EOPNOTSUPP ? "off (add landlock to the lsm= boot option)" :
			 strerror(-s->landlock_abi));
	snprintf(v->no_new_privs, sizeof(v->no_new_privs), "%s",
		 s->no_new_privs ? "yes: and no capabilities, no core dumps" :
		 "no: VMs start only with sandbox=off");
}
