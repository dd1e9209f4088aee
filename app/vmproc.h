/* SPDX-License-Identifier: MIT */
/*
 * app/vmproc.h - launching a VM's process (`vivarium vm-process NAME`),
 * shared by `vivarium start` and the manager: the process is detached (its
 * own session, nobody's child), writes vm.log, and says "ok PID" or
 * "error: ..." on a pipe once it is up or has failed.
 */
#ifndef VIVARIUM_VMPROC_H
#define VIVARIUM_VMPROC_H

#include <stddef.h>
#include <sys/types.h>

#define VM_START_READY_TIMEOUT_MS	60000

struct vm_start_opts {
	const char *exe;		/* the vivarium binary (absolute) */
	const char *display;		/* "none", "sdl", "auto"; NULL: vm.conf's */
	const char *vnc;		/* ADDR:PORT, unix:PATH, "" off; NULL: vm.conf's */
	const char *vnc_password_file;	/* NULL: vm.conf's */
};

/*
 * vm_start - start VM @name (valid vm.conf, not running) in the
 * background and wait, at most VM_START_READY_TIMEOUT_MS, until its
 * process reports ready.  Sets *@pid (may be NULL) to the VM process's
 * pid.  Returns 0, or a negative errno with one line in @err ("VM 'x' is
 * already running (pid 42)", the VM process's own error...).  Blocks: call
 * it off a GUI's main thread.  Safe in a threaded program (nothing but
 * async-signal-safe calls between fork and exec).
 */
int vm_start(const char *name, const struct vm_start_opts *o, pid_t *pid,
	     char *err, size_t errlen);

/*
 * vm_exe_beside - the path of program @prog in the directory of the
 * running executable, or in the build tree's @subdir beside it (the
 * manager in gui/ finds app/vivarium); NULL if not there (g_free).
 */
char *vm_exe_beside(const char *prog, const char *subdir);

/*
 * survivor_fork - fork a child of this (threaded) process that outlives
 * it and learns of its end by EOF on a pipe or socket: the child is in a
 * session of its own (a terminal's ^C or a kill of the VM's process group
 * does not end it), ignores SIGINT, SIGHUP, SIGTERM and SIGPIPE, blocks no
 * signal, and has @fd (the child's end) as its SURVIVOR_FD (3) and no other
 * fd above 2.  Returns the child's pid in the parent, 0 in the child, which may
 * make async-signal-safe calls only (then exec or _exit: 126 if the fd
 * could not be moved), or -errno with nothing forked.
 */
#define SURVIVOR_FD	3	/* the child's end of the pipe or socket */
pid_t survivor_fork(int fd);

#endif
