/* SPDX-License-Identifier: MIT */
/*
 * app/vmproc.c - launching a VM's process (vmproc.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>

#include "vmlib.h"
#include "vmproc.h"

/* Read the VM process's "ok PID" / "error: ..." line from @fd. */
static int wait_ready(int fd, const char *name, char *line, size_t len)
{
	size_t n = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	while (n + 1 < len) {
		ssize_t r;

		if (poll(&p, 1, VM_START_READY_TIMEOUT_MS) <= 0) {
			snprintf(line, len, "VM '%s' did not report ready within %d s (see its vm.log)",
				 name, VM_START_READY_TIMEOUT_MS / 1000);
			return -ETIMEDOUT;
		}
		r = read(fd, line + n, len - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (memchr(line, '\n', n))
			break;
	}
	line[n] = 0;
	line[strcspn(line, "\n")] = 0;
	if (!strncmp(line, "ok", 2))
		return 0;
	if (!strncmp(line, "error: ", 7)) {
		memmove(line, line + 7, strlen(line + 7) + 1);
		return -EIO;
	}
	{
		g_autofree char *log = vmlib_vm_file(name, VM_LOG_FILE);

		snprintf(line, len, "the process of VM '%s' ended before it was ready (see %s)",
			 name, log);
	}
	return -EIO;
}

int vm_start(const char *name, const struct vm_start_opts *o, pid_t *pid_out,
	     char *err, size_t errlen)
{
	g_autofree char *log = NULL, *fdarg = NULL;
	const char *args[12];
	unsigned na = 0;
	char line[1100];
	struct vm_config cfg;
	int logfd, ready[2], status, r;
	pid_t pid, vm_pid = 0;

	r = vm_config_load(name, &cfg, NULL, err, errlen);
	if (r < 0)
		return r;
	vm_config_clear(&cfg);
	if (vmlib_running(name, &vm_pid)) {
		snprintf(err, errlen, "VM '%s' is already running (pid %d)", name, (int)vm_pid);
		return -EBUSY;
	}
	log = vmlib_vm_file(name, VM_LOG_FILE);
	/* The guest's doings are the user's alone; an older vm.log is made
	 * so too.  Never appended through a link. */
	logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC,
		     VM_FILE_MODE);
	if (logfd >= 0 && fchmod(logfd, VM_FILE_MODE) < 0) {
		close(logfd);
		logfd = -1;
	}
	if (logfd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", log, g_strerror(errno));
		return -EIO;
	}
	if (pipe2(ready, O_CLOEXEC) < 0) {
		r = -errno;
		snprintf(err, errlen, "pipe: %s", g_strerror(errno));
		close(logfd);
		return r;
	}
	/* Everything the child needs, made before fork: a threaded parent's
	 * child may not allocate. */
	fdarg = g_strdup_printf("%d", ready[1]);
	args[na++] = o->exe;
	args[na++] = "vm-process";
	args[na++] = "--ready-fd";
	args[na++] = fdarg;
	if (o->display) {
		args[na++] = "--display";
		args[na++] = o->display;
	}
	if (o->vnc) {
		args[na++] = "--vnc";
		args[na++] = o->vnc;
	}
	if (o->vnc_password_file) {
		args[na++] = "--vnc-password-file";
		args[na++] = o->vnc_password_file;
	}
	args[na++] = name;
	args[na] = NULL;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		r = -errno;
		snprintf(err, errlen, "fork: %s", g_strerror(errno));
		close(ready[0]);
		close(ready[1]);
		close(logfd);
		return r;
	}
	if (pid == 0) {
		/* Detach: own session, then fork again so the VM's process is
		 * nobody's child here and never a zombie of a long-lived
		 * caller (the GTK manager). */
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		setsid();
		if (fork() != 0)
			_exit(0);
		close(ready[0]);
		dup2(null, STDIN_FILENO);
		dup2(logfd, STDOUT_FILENO);
		dup2(logfd, STDERR_FILENO);
		/* The ready pipe's write end stays open across exec. */
		fcntl(ready[1], F_SETFD, 0);
		execv(o->exe, (char *const *)args);
		dprintf(ready[1], "error: cannot run %s: %s\n", o->exe, strerror(errno));
		_exit(127);
	}
	close(ready[1]);
	close(logfd);
	waitpid(pid, &status, 0);
	r = wait_ready(ready[0], name, line, sizeof(line));
	close(ready[0]);
	if (r < 0) {
		snprintf(err, errlen, "%s", line);
		return r;
	}
	if (pid_out)
		*pid_out = (pid_t)atoi(line + 3);
	return 0;
}

char *vm_exe_beside(const char *prog, const char *subdir)
{
	g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
	g_autofree char *dir = NULL;
	char *p;

	if (!self)
		return NULL;
	dir = g_path_get_dirname(self);
	p = g_build_filename(dir, prog, NULL);
	if (g_file_test(p, G_FILE_TEST_IS_EXECUTABLE) && !g_file_test(p, G_FILE_TEST_IS_DIR))
		return p;
	g_free(p);
	if (subdir) {
		p = g_build_filename(dir, "..", subdir, prog, NULL);
		if (g_file_test(p, G_FILE_TEST_IS_EXECUTABLE) && !g_file_test(p, G_FILE_TEST_IS_DIR))
			return p;
		g_free(p);
	}
	return NULL;
}

pid_t survivor_fork(int fd)
{
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		struct sigaction ign = { .sa_handler = SIG_IGN };
		sigset_t none;
		/* Above it first: dup2(3, 3) would keep close-on-exec. */
		int high = fcntl(fd, F_DUPFD, SURVIVOR_FD + 1);

		setsid();
		sigaction(SIGINT, &ign, NULL);
		sigaction(SIGHUP, &ign, NULL);
		sigaction(SIGTERM, &ign, NULL);
		sigaction(SIGPIPE, &ign, NULL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (high < 0 || dup2(high, SURVIVOR_FD) < 0)
			_exit(126);
		syscall(SYS_close_range, SURVIVOR_FD + 1u, ~0u, 0u);
	}
	return pid;
}
