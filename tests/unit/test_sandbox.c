/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_sandbox.c - vmm-core/sandbox on this kernel, no KVM: each
 * case forks a child that enters the sandbox (it cannot be left) and the
 * parent judges its exit and what it wrote.
 *
 *  - a thread started before sandbox_enter() ends up restricted too
 *    (no_new_privs, no capabilities, two filters when it has a kind, files
 *    outside the paths refused by Landlock);
 *  - a thread started after installs its kind's filter;
 *  - a forbidden call (execve; a socket family; an ioctl no list has;
 *    KVM_RUN on a block worker's filter) kills the child with SIGSYS and
 *    one line naming the call and the thread;
 *  - a thread that blocks SIGSYS cannot be reached: sandbox_enter() fails
 *    and names it;
 *  - core dumps off, unless coredump;
 *  - sandbox_probe() agrees with what a child can actually do.
 * Skips (77) where the kernel has no seccomp filters.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audio/audio.h"
#include "check.h"
#include "sandbox/sandbox.h"

static char tmp[] = "/tmp/vivarium-sandbox-XXXXXX";
static char inside[600], outside[600];

/* Run @fn in a child with stderr into a pipe; its wait status and
 * output (NUL-terminated, at most @len). */
static int in_child(int (*fn)(void), char *out, size_t len)
{
	int p[2], status = 0;
	size_t got = 0;
	pid_t pid;

	if (pipe(p) < 0)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		dup2(p[1], STDERR_FILENO);
		dup2(p[1], STDOUT_FILENO);
		status = fn();
		fflush(NULL);
		_exit(status);
	}
	close(p[1]);
	for (;;) {
		ssize_t n = read(p[0], out + got, len - 1 - got);

		if (n <= 0)
			break;
		got += (size_t)n;
		if (got == len - 1)
			break;
	}
	out[got] = '\0';
	close(p[0]);
	waitpid(pid, &status, 0);
	return status;
}

/* The child's sandbox has sound (sandbox_config.audio). */
static bool with_audio;

static int enter(bool coredump)
{
	const struct sandbox_path paths[] = {
		{ inside, SANDBOX_FOLDER, true },
	};
	struct sandbox_config cfg = {
		.coredump = coredump, .paths = paths, .npaths = 1,
		.audio = with_audio,
	};
	struct sandbox_report rep;
	char err[256];
	int r = sandbox_enter(&cfg, &rep, err, sizeof(err));

	if (r < 0)
		fprintf(stderr, "enter: %s\n", err);
	return r;
}

/* ---- a thread from before, a thread from after ------------------------------ */

/* Field @field (hex or decimal) of /proc/@pid/task/@tid/status, read by
 * the parent: the sandboxed child cannot read /proc. */
static long task_field(pid_t pid, pid_t tid, const char *field, int base)
{
	char path[96], line[256];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)tid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, strlen(field)))
			v = strtol(line + strlen(field), NULL, base);
	fclose(f);
	return v;
}

static atomic_int stage;
static atomic_int early_tid, late_tid;
static int early_open_errno;

static void *early_thread(void *arg)
{
	int fd;

	(void)arg;
	sandbox_thread_enter(SANDBOX_THREAD_TIMER, "early");
	atomic_store(&early_tid, (int)syscall(SYS_gettid));
	while (atomic_load(&stage) < 1)
		usleep(1000);
	/* Restricted from the outside by now: a file outside, with the
	 * flags fopen("r") uses. */
	fd = open(outside, O_RDONLY);
	early_open_errno = fd < 0 ? errno : 0;
	if (fd >= 0)
		close(fd);
	atomic_store(&stage, 2);
	for (;;)
		sleep(1);	/* nanosleep: pause() is on no filtered list */
	return NULL;
}

static void *late_thread(void *arg)
{
	(void)arg;
	sandbox_thread_enter(SANDBOX_THREAD_NET, "late");
	atomic_store(&late_tid, (int)syscall(SYS_gettid));
	for (;;)
		sleep(1);
	return NULL;
}

/* The child: prints "tids EARLY LATE MAIN" and what it saw, then waits
 * to be killed. */
static int child_threads(void)
{
	pthread_t e, l;
	char path[700];
	int fd, created, outside_errno;

	pthread_create(&e, NULL, early_thread, NULL);
	while (!atomic_load(&early_tid))
		usleep(1000);
	if (enter(false) < 0)
		return 10;
	atomic_store(&stage, 1);
	while (atomic_load(&stage) < 2)
		usleep(1000);
	pthread_create(&l, NULL, late_thread, NULL);
	while (!atomic_load(&late_tid))
		usleep(1000);
	snprintf(path, sizeof(path), "%s/new-file", inside);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	created = fd >= 0;
	if (fd >= 0)
		close(fd);
	fd = open(outside, O_RDONLY | O_CLOEXEC);
	outside_errno = fd < 0 ? errno : 0;
	printf("tids %d %d %d created %d main-outside %d early-outside %d dumpable %d\n",
	       atomic_load(&early_tid), atomic_load(&late_tid), (int)syscall(SYS_gettid),
	       created, outside_errno, early_open_errno, prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
	fflush(stdout);
	for (;;)
		sleep(1);
	return 0;
}

static void test_threads(void)
{
	int p[2], early, late, main_tid, created, main_out, early_out, dumpable;
	char line[256] = "";
	ssize_t n;
	pid_t pid;

	if (pipe(p) < 0)
		return;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		dup2(p[1], STDOUT_FILENO);
		dup2(p[1], STDERR_FILENO);
		_exit(child_threads());
	}
	close(p[1]);
	n = read(p[0], line, sizeof(line) - 1);
	line[n > 0 ? n : 0] = '\0';
	printf("  %s", line);
	CHECK(sscanf(line, "tids %d %d %d created %d main-outside %d early-outside %d dumpable %d",
		     &early, &late, &main_tid, &created, &main_out, &early_out, &dumpable) == 7);
	if (!strncmp(line, "tids", 4)) {
		CHECK(created);
		CHECK_EQ(main_out, EACCES);
		CHECK_EQ(early_out, EACCES);	/* Landlock reached it */
		CHECK_EQ(dumpable, 0);
		/* Each thread: no_new_privs, no capabilities, the base filter
		 * and its kind's (main: the base only). */
		CHECK_EQ(task_field(pid, early, "NoNewPrivs:", 10), 1);
		CHECK_EQ(task_field(pid, early, "CapEff:", 16), 0);
		CHECK_EQ(task_field(pid, early, "CapPrm:", 16), 0);
		CHECK_EQ(task_field(pid, early, "CapBnd:", 16), 0);
		CHECK_EQ(task_field(pid, early, "Seccomp:", 10), 2);
		CHECK_EQ(task_field(pid, early, "Seccomp_filters:", 10), 2);
		CHECK_EQ(task_field(pid, late, "Seccomp_filters:", 10), 2);
		CHECK_EQ(task_field(pid, late, "NoNewPrivs:", 10), 1);
		CHECK_EQ(task_field(pid, main_tid, "Seccomp_filters:", 10), 1);
		CHECK_EQ(task_field(pid, main_tid, "CapEff:", 16), 0);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(p[0]);
}

/* ---- forbidden calls ---------------------------------------------------------- */

static int child_execve(void)
{
	char *const argv[] = { "true", NULL };

	if (enter(false) < 0)
		return 10;
	prctl(PR_SET_NAME, "tester", 0, 0, 0);
	execve("/bin/true", argv, environ);
	return 11;	/* must not come back */
}

static int child_socket(void)
{
	if (enter(false) < 0)
		return 10;
	socket(AF_UNIX, SOCK_STREAM, 0);
	return 11;
}

static int child_ioctl(void)
{
	if (enter(false) < 0)
		return 10;
	ioctl(0, 0x12345678, 0);	/* on no list */
	return 11;
}

static void *worker_runs_kvm(void *arg)
{
	(void)arg;
	sandbox_thread_enter(SANDBOX_THREAD_BLOCK, "blk-worker");
	/* KVM_RUN on any fd: the base allows it, a worker's filter not. */
	ioctl(-1, 0xae80, 0);
	return NULL;
}

static int child_worker_kvm_run(void)
{
	pthread_t t;

	if (enter(false) < 0)
		return 10;
	pthread_create(&t, NULL, worker_runs_kvm, NULL);
	pthread_join(t, NULL);
	return 11;
}

static void expect_sigsys(int (*fn)(void), const char *what, const char *call,
			  const char *thread)
{
	char out[2048], want[128];
	int st = in_child(fn, out, sizeof(out));

	printf("  %s: %s", what, out);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS);
	snprintf(want, sizeof(want), "forbidden system call %s", call);
	CHECK(strstr(out, want) != NULL);
	snprintf(want, sizeof(want), "in thread '%s'", thread);
	CHECK(strstr(out, want) != NULL);
	CHECK(strchr(out, '\n') == strrchr(out, '\n'));	/* one line */
}

static void test_forbidden(void)
{
	expect_sigsys(child_execve, "execve", "execve (59)", "tester");
	expect_sigsys(child_socket, "socket", "socket (41) with arguments 0x1, 0x1",
		      "test_sandbox");
	expect_sigsys(child_ioctl, "ioctl", "ioctl (16) with arguments 0x0, 0x12345678",
		      "test_sandbox");
	expect_sigsys(child_worker_kvm_run, "KVM_RUN on a block worker",
		      "ioctl (16) with arguments 0xffffffff, 0xae80", "blk-worker");
}

/* ---- sound: PulseAudio's thread and socket ---------------------------------------- */

/* libpulse's mainloop thread (it blocks every signal but the SIGSYS the
 * backend lets through) is reached; its unix stream socket and connect
 * are allowed (no server here: ENOENT, not SIGSYS). */
static int child_audio(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct audio_backend *be;
	int fd;

	setenv("PULSE_SERVER", "unix:/nonexistent/vivarium-test", 1);
	be = audio_pa_new("sandbox-test");
	if (!be)
		return 12;
	with_audio = true;
	if (enter(false) < 0)
		return 10;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 13;
	strcpy(sa.sun_path, "/nonexistent/vivarium-test");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno != ENOENT)
		return 14;
	close(fd);
	/* A datagram socket is still no sound server's. */
	socket(AF_UNIX, SOCK_DGRAM, 0);
	return 11;
}

static void test_audio(void)
{
	char out[2048];
	int st = in_child(child_audio, out, sizeof(out));

	printf("  audio: %s", out);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS);
	CHECK(strstr(out, "forbidden system call socket (41) with arguments 0x1, 0x2") != NULL);
}

/* ---- a thread that cannot be reached -------------------------------------------- */

static void *deaf_thread(void *arg)
{
	sigset_t all;

	(void)arg;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	prctl(PR_SET_NAME, "deaf", 0, 0, 0);
	for (;;)
		pause();
	return NULL;
}

static int child_deaf(void)
{
	pthread_t t;

	pthread_create(&t, NULL, deaf_thread, NULL);
	usleep(50000);
	return enter(false) == -ETIMEDOUT ? 0 : 1;
}

static void test_deaf_thread(void)
{
	char out[2048];
	int st = in_child(child_deaf, out, sizeof(out));

	printf("  %s", out);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(strstr(out, "thread 'deaf'") != NULL);
	CHECK(strstr(out, "does not take SIGSYS") != NULL);
}

/* ---- core dumps ------------------------------------------------------------------ */

static int child_coredump_on(void)
{
	struct rlimit rl;

	if (enter(true) < 0)
		return 10;
	getrlimit(RLIMIT_CORE, &rl);
	return prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1 ? 0 : 1;
}

static int child_coredump_off(void)
{
	struct rlimit rl;

	if (enter(false) < 0)
		return 10;
	getrlimit(RLIMIT_CORE, &rl);
	return prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0 && rl.rlim_cur == 0 ? 0 : 1;
}

static void test_coredump(void)
{
	char out[1024];
	int st = in_child(child_coredump_on, out, sizeof(out));

	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	st = in_child(child_coredump_off, out, sizeof(out));
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* ---- the probe against what a child can do -------------------------------------- */

static int child_tsync_filter(void)
{
	/* Allow everything, with TSYNC. */
	struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog prog = { .len = 1, .filter = &allow };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return 1;
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
		       SECCOMP_FILTER_FLAG_TSYNC, &prog) == 0 ? 0 : 2;
}

static void test_probe(void)
{
	struct sandbox_support s;
	struct sandbox_verdict v;
	char out[256];
	int st;

	sandbox_probe(&s);
	st = in_child(child_tsync_filter, out, sizeof(out));
	CHECK(s.seccomp_tsync == (WIFEXITED(st) && WEXITSTATUS(st) == 0));
	CHECK(s.seccomp);
	CHECK(s.seccomp_trap);
	CHECK(s.no_new_privs);
	CHECK(s.landlock_abi == (int)syscall(SYS_landlock_create_ruleset, NULL, 0, 1) ||
	      (s.landlock_abi < 0 && errno == -s.landlock_abi));
	sandbox_describe(&s, &v);
	CHECK(v.usable);
	printf("  here: seccomp: %s; Landlock: %s; no_new_privs: %s\n", v.seccomp,
	       v.landlock, v.no_new_privs);
}

/* sandbox_describe() for hosts we do not have. */
static void test_describe(void)
{
	struct sandbox_support none = { .landlock_abi = -ENOSYS, .no_new_privs = true };
	struct sandbox_support old = { .seccomp = true, .no_new_privs = true,
				       .landlock_abi = -EOPNOTSUPP };
	struct sandbox_support full = { .seccomp = true, .seccomp_tsync = true,
					.seccomp_trap = true, .no_new_privs = true,
					.landlock_abi = 4 };
	struct sandbox_verdict v;

	sandbox_describe(&none, &v);
	CHECK(!v.usable);
	CHECK(strstr(v.seccomp, "sandbox=off") != NULL);
	CHECK(strstr(v.landlock, "not in this kernel") != NULL);
	sandbox_describe(&old, &v);
	CHECK(!v.usable);
	CHECK(strstr(v.seccomp, "no TSYNC") != NULL);
	CHECK(strstr(v.landlock, "lsm=") != NULL);
	sandbox_describe(&full, &v);
	CHECK(v.usable);
	CHECK(strstr(v.landlock, "ABI 4") != NULL);
}

int main(void)
{
	char cmd[700];
	int fd;

	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0) {
		printf("SKIP: no seccomp in this kernel\n");
		return 77;
	}
	if (!mkdtemp(tmp))
		return 1;
	snprintf(inside, sizeof(inside), "%s/inside", tmp);
	snprintf(outside, sizeof(outside), "%s/outside", tmp);
	mkdir(inside, 0700);
	fd = open(outside, O_WRONLY | O_CREAT, 0600);
	if (fd >= 0)
		close(fd);
	RUN_TEST(test_describe);
	RUN_TEST(test_probe);
	RUN_TEST(test_coredump);
	if (syscall(SYS_landlock_create_ruleset, NULL, 0, 1) > 0)
		RUN_TEST(test_threads);
	else
		printf("# no Landlock: the thread test (files) is skipped\n");
	RUN_TEST(test_forbidden);
	RUN_TEST(test_audio);
	RUN_TEST(test_deaf_thread);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	if (system(cmd)) {
		/* left behind */
	}
	return check_finish();
}
