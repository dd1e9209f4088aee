/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/sandbox/policy.c - the seccomp allow-lists, built with
 * libseccomp and handed out as BPF programs (sandbox.c loads them).
 *
 * The base filter, loaded on every thread (TSYNC), allows the union of what
 * the VM process does once the sandbox is in place: found by tracing real
 * boots (`strace -f`: SeaBIOS, GRUB and a tiny kernel from CD-ROM, IDE,
 * virtio, raw and qcow2 disks, NAT networking on virtio-net and e1000, VNC,
 * the SDL window under Xvfb, snapshots taken, reverted and deleted while
 * running, save and resume, the control socket), plus what glibc, GLib,
 * SDL and Mesa may call underneath.  Where arguments matter they are
 * checked: ioctl requests (the KVM ioctls hostdrv lists, terminal, tap,
 * and with a window the GPU's), socket families (only with NAT, only
 * AF_INET/AF_INET6 streams and datagrams), clone flags (threads, and fork
 * for the memory writer of a save; no namespaces, no vfork), prctl
 * options, kill/tgkill (this process only), executable mappings (without
 * a window: none but of files, as dlopen() makes).
 *
 * Each kind of thread stacks a stricter filter on it (a call must pass
 * both): the common core (memory, futexes, time, its fds), the ioctls
 * device code issues on the VM (MSIs, routes, doorbells, memory slots) and
 * its own: KVM_RUN and the vCPU ioctls on vCPU threads only, file syncs
 * and allocation on block workers, sockets on network and VNC threads,
 * thread creation on VNC threads, the file-system calls of a shared
 * folder's 9P server on its worker.  None of them may map executable
 * memory, fork, or touch KVM's system and VM-building ioctls; none but
 * the 9P worker (whose Landlock rules are its share) may open a file
 * other than read-only, create, rename or remove files.  (Landlock
 * bounds where the read-only opens reach.)  The main
 * loop and the machine thread (which rebuilds the VM on a reset) keep the
 * base: they create threads, files and the VM.
 *
 * Never allowed anywhere: execve and execveat, ptrace, process_vm_readv/
 * writev, mount and friends, namespaces (unshare, setns, CLONE_NEW*),
 * keyctl, bpf, perf_event_open, module loading, kexec, io_uring, chmod
 * and chown by path, xattrs by path, setuid and capset, sockets other
 * than above (no AF_UNIX but PulseAudio's stream socket with sound on, no
 * AF_NETLINK, AF_PACKET, raw), bind and listen.
 */
#define _GNU_SOURCE
#include "sandbox/sandbox_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/if_tun.h>
#include <linux/usbdevice_fs.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "hv.h"

/* glibc's pthread_create (clone3 returns ENOSYS: it falls back to clone,
 * whose flags a filter can see) and fork. */
#define CLONE_THREAD_FLAGS (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | \
			    CLONE_THREAD | CLONE_SYSVSEM | CLONE_SETTLS | \
			    CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID)
#define CLONE_FORK_FLAGS (CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD)

/* The only opens a filtered thread may make are for reading (glibc reads
 * sysfs for the CPU count, for malloc's arenas): none of these flags. */
#define OPEN_WRITE_FLAGS (O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | O_APPEND | \
			  (__O_TMPFILE & ~O_DIRECTORY))

/* Every thread: memory, futexes, signals, time, its own fds. */
static const char *const sys_core[] = {
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv",
	"pwritev", "preadv2", "pwritev2", "close", "lseek", "dup", "fcntl",
	"fstat", "newfstatat", "statx",
	"futex", "futex_waitv", "set_robust_list", "get_robust_list", "rseq",
	"restart_syscall", "rt_sigreturn", "rt_sigprocmask", "rt_sigaction",
	"sigaltstack", "exit", "exit_group",
	"getpid", "gettid", "getuid", "geteuid", "getgid", "getegid",
	"clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep",
	"gettimeofday", "time", "sched_yield", "sched_getaffinity", "getcpu",
	"getrandom", "munmap", "madvise", "mremap", "brk",
	/* glibc's qsort() sizes its buffer by sysconf(_SC_PHYS_PAGES) */
	"sysinfo",
	"poll", "ppoll", "select", "pselect6", "epoll_wait", "epoll_pwait",
	"epoll_pwait2", "epoll_ctl", "eventfd2",
};

/* The base adds: files and folders (Landlock says where), processes,
 * sockets that exist, and the rest of what libraries call. */
static const char *const sys_base[] = {
	"open", "openat", "unlink", "unlinkat", "rename", "renameat",
	"renameat2", "link", "linkat", "mkdir", "mkdirat", "rmdir", "fchmod",
	"ftruncate", "fallocate", "fsync", "fdatasync", "sync_file_range",
	"fadvise64", "flock", "getdents64", "readlink", "readlinkat", "access",
	"faccessat", "faccessat2", "stat", "lstat", "statfs", "fstatfs",
	"getcwd", "umask", "msync", "mincore", "dup2", "dup3", "pipe", "pipe2",
	"memfd_create", "close_range",
	"wait4", "waitid", "set_tid_address", "arch_prctl", "getppid",
	"getpgrp", "getpgid", "getsid", "getresuid", "getresgid", "getgroups",
	"uname", "getrusage", "times", "getrlimit",
	"sched_getparam", "sched_getscheduler", "sched_get_priority_max",
	"sched_get_priority_min", "rt_sigtimedwait", "rt_sigpending",
	"rt_sigsuspend", "membarrier", "timerfd_create", "timerfd_settime",
	"timerfd_gettime", "epoll_create", "epoll_create1", "eventfd",
	"accept", "accept4", "recvfrom", "recvmsg", "sendto", "sendmsg",
	"shutdown", "getsockopt", "setsockopt", "getsockname", "getpeername",
};

/* Block workers: what image I/O needs beyond the core. */
static const char *const sys_block[] = {
	"fsync", "fdatasync", "fallocate", "ftruncate", "fadvise64",
};

/* vCPU threads: the UEFI variable store's flash (devices/pflash.c) makes
 * its writes durable per erase and per program batch. */
static const char *const sys_vcpu[] = {
	"fdatasync",
};

/* A shared folder's 9P server (share/p9_server.c): the file-system calls
 * of every 9P2000.L operation; Landlock bounds them to the share (read-only
 * for a readonly one).  Opens of any kind: creating files is its job. */
static const char *const sys_share[] = {
	"openat", "openat2", "getdents64", "mkdirat", "symlinkat", "linkat",
	"renameat", "renameat2", "unlinkat", "readlinkat", "fchmod",
	"fchmodat", "fchmodat2", "utimensat", "ftruncate", "fsync",
	"fdatasync", "fstatfs", "flock", "fgetxattr", "flistxattr",
};

/* Sockets that exist (NAT's, VNC clients'). */
static const char *const sys_sockets[] = {
	"accept", "accept4", "recvfrom", "recvmsg", "sendto", "sendmsg",
	"shutdown", "getsockopt", "setsockopt", "getsockname", "getpeername",
};

/* With a window: the X server's shared memory. */
static const char *const sys_window[] = {
	"shmget", "shmat", "shmdt", "shmctl",
};

/* usbfs on the fds of passed-through host USB devices (usb/usb_host.c):
 * what libusb's Linux backend issues to wrap an fd, claim and release
 * interfaces (detaching and reattaching the host's drivers through
 * USBDEVFS_IOCTL), set configurations and alternates, clear halts, reset,
 * and submit, reap and discard URBs.  The fds are only those the VM was
 * handed: Landlock gives it no /dev/bus/usb. */
static const unsigned long ioctl_usbfs[] = {
	USBDEVFS_CONTROL, USBDEVFS_SETINTERFACE, USBDEVFS_SETCONFIGURATION,
	USBDEVFS_GETDRIVER, USBDEVFS_SUBMITURB, USBDEVFS_DISCARDURB,
	USBDEVFS_REAPURBNDELAY, USBDEVFS_CLAIMINTERFACE,
	USBDEVFS_RELEASEINTERFACE, USBDEVFS_CONNECTINFO, USBDEVFS_IOCTL,
	USBDEVFS_RESET, USBDEVFS_CLEAR_HALT, USBDEVFS_GET_CAPABILITIES,
	USBDEVFS_DISCONNECT_CLAIM, USBDEVFS_GET_SPEED,
};

/* Terminal, tap, sockets, block devices: the ioctls outside KVM. */
static const unsigned long ioctl_tty[] = {
	TCGETS, TCSETS, TCSETSW, TCSETSF, TIOCGWINSZ, TIOCGPGRP,
};
static const unsigned long ioctl_tap[] = {
	TUNSETOFFLOAD, TUNSETVNETHDRSZ, TUNGETIFF,
};
static const unsigned long ioctl_socket[] = {
	FIONREAD, FIONBIO,
};
static const unsigned long ioctl_blockdev[] = {
	BLKGETSIZE64,
};

/* prctl options libraries use; not PR_SET_DUMPABLE (dumps hold guest
 * RAM, and a dumpable process can be read by the user's other
 * processes), PR_SET_MM, PR_SET_PTRACER, PR_SET_SECUREBITS... */
static const unsigned long prctl_ok[] = {
	PR_SET_NAME, PR_GET_NAME, PR_GET_DUMPABLE, PR_GET_NO_NEW_PRIVS,
	PR_GET_SECCOMP, PR_CAPBSET_READ, PR_GET_TIMERSLACK,
#ifdef PR_SET_VMA
	PR_SET_VMA,
#endif
};

struct builder {
	scmp_filter_ctx ctx;
	int r;
	char *err;
	size_t errlen;
	unsigned long ioctls[256];	/* added, to skip repeats */
	unsigned nioctls;
};

static void rule(struct builder *b, uint32_t action, const char *name,
		 unsigned n, const struct scmp_arg_cmp *cmp)
{
	int nr, r;

	if (b->r < 0)
		return;
	nr = seccomp_syscall_resolve_name(name);
	if (nr < 0)	/* not a call of this architecture (or libseccomp) */
		return;
	r = seccomp_rule_add_array(b->ctx, action, nr, n, cmp);
	if (r < 0) {
		b->r = r;
		snprintf(b->err, b->errlen, "seccomp: cannot add a rule for %s: %s",
			 name, strerror(-r));
	}
}

static void allow(struct builder *b, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rule(b, SCMP_ACT_ALLOW, names[i], 0, NULL);
}

#define ALLOW(b, list) allow(b, list, sizeof(list) / sizeof((list)[0]))

static void allow1(struct builder *b, const char *name, struct scmp_arg_cmp c)
{
	rule(b, SCMP_ACT_ALLOW, name, 1, &c);
}

static void allow2(struct builder *b, const char *name, struct scmp_arg_cmp c0,
		   struct scmp_arg_cmp c1)
{
	struct scmp_arg_cmp c[2] = { c0, c1 };

	rule(b, SCMP_ACT_ALLOW, name, 2, c);
}

/* ioctl(fd, @req): the kernel takes the request as 32 bits, so compare
 * those (a caller that sign-extends is still matched).  libseccomp
 * compares a call's values one after the other, largest first, whatever
 * the order they were added in: KVM_RUN (0xae80) comes near the end of
 * ~35 in each of a vCPU's two filters, about 0.1 us a call here
 * (bench/sandbox_syscall.c). */
static void allow_ioctls(struct builder *b, const unsigned long *req, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		bool seen = false;

		for (unsigned k = 0; k < b->nioctls && !seen; k++)
			seen = b->ioctls[k] == req[i];
		if (seen)
			continue;
		if (b->nioctls < sizeof(b->ioctls) / sizeof(b->ioctls[0]))
			b->ioctls[b->nioctls++] = req[i];
		allow1(b, "ioctl", SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, req[i]));
	}
}

#define ALLOW_IOCTLS(b, list) allow_ioctls(b, list, sizeof(list) / sizeof((list)[0]))

static void allow_hv_ioctls(struct builder *b, enum hv_ioctl_scope scope)
{
	const unsigned long *l;
	size_t n = hv_ioctl_list(scope, &l);

	allow_ioctls(b, l, n);
}

/* ioctls of a whole type (the request's bits 8-15): a GPU driver's. */
static void allow_ioctl_type(struct builder *b, unsigned type)
{
	allow1(b, "ioctl", SCMP_A1(SCMP_CMP_MASKED_EQ, 0xff00u, type << 8));
}

static void allow_common(struct builder *b, const struct policy_opts *o)
{
	ALLOW(b, sys_core);
	/* clone3's flags live in memory a filter cannot read: glibc falls
	 * back to clone on ENOSYS. */
	rule(b, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL);
	for (size_t i = 0; i < sizeof(prctl_ok) / sizeof(prctl_ok[0]); i++)
		allow1(b, "prctl", SCMP_A0(SCMP_CMP_EQ, prctl_ok[i]));
	/* Signals within this process only (vCPU kicks, raise()). */
	allow1(b, "tgkill", SCMP_A0(SCMP_CMP_EQ, (uint64_t)o->pid));
	/* A thread stacking its own filter (sandbox_thread_enter). */
	allow2(b, "seccomp", SCMP_A0(SCMP_CMP_EQ, SECCOMP_SET_MODE_FILTER),
	       SCMP_A1(SCMP_CMP_EQ, 0));
}

/* mmap/mprotect: @exec all, or (!@exec) never PROT_EXEC, except (@files)
 * mappings of files (dlopen). */
static void allow_mappings(struct builder *b, bool exec, bool files)
{
	if (exec) {
		rule(b, SCMP_ACT_ALLOW, "mmap", 0, NULL);
		rule(b, SCMP_ACT_ALLOW, "mprotect", 0, NULL);
		return;
	}
	allow1(b, "mmap", SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (files)
		allow1(b, "mmap", SCMP_A3(SCMP_CMP_MASKED_EQ, MAP_ANONYMOUS, 0));
	allow1(b, "mprotect", SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
}

static void allow_threads(struct builder *b)
{
	allow1(b, "clone", SCMP_A0(SCMP_CMP_EQ, CLONE_THREAD_FLAGS));
}

static void allow_nat_sockets(struct builder *b)
{
	static const int families[] = { AF_INET, AF_INET6 };
	static const int types[] = { SOCK_STREAM, SOCK_DGRAM };

	for (unsigned f = 0; f < 2; f++)
		for (unsigned t = 0; t < 2; t++)
			allow2(b, "socket", SCMP_A0(SCMP_CMP_EQ, (uint64_t)families[f]),
			       SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, (uint64_t)types[t]));
	rule(b, SCMP_ACT_ALLOW, "connect", 0, NULL);
}

/* libpulse's client: a stream socket to the server, SCM_CREDENTIALS
 * (setsockopt SO_PASSCRED, sendmsg: the base has them) and a memfd pool. */
static void allow_audio_sockets(struct builder *b)
{
	allow2(b, "socket", SCMP_A0(SCMP_CMP_EQ, (uint64_t)AF_UNIX),
	       SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, (uint64_t)SOCK_STREAM));
	rule(b, SCMP_ACT_ALLOW, "connect", 0, NULL);
}

static void build_base(struct builder *b, const struct policy_opts *o)
{
	allow_common(b, o);
	ALLOW(b, sys_base);
	allow_mappings(b, o->window, true);
	/* Mesa's llvmpipe (the SDL window's renderer under X without a GPU)
	 * pins the worker threads it starts at the first draw, which may
	 * come after the filter: once it killed the VM at start. */
	if (o->window)
		rule(b, SCMP_ACT_ALLOW, "sched_setaffinity", 0, NULL);
	allow_threads(b);
	allow1(b, "clone", SCMP_A0(SCMP_CMP_EQ, CLONE_FORK_FLAGS));
	allow1(b, "kill", SCMP_A0(SCMP_CMP_EQ, (uint64_t)o->pid));
	/* getrlimit through prlimit64: reading only. */
	allow2(b, "prlimit64", SCMP_A0(SCMP_CMP_EQ, 0), SCMP_A2(SCMP_CMP_EQ, 0));
	allow_hv_ioctls(b, HV_IOCTLS_VCPU);
	allow_hv_ioctls(b, HV_IOCTLS_VM_DEVICE);
	allow_hv_ioctls(b, HV_IOCTLS_VM_SETUP);
	allow_hv_ioctls(b, HV_IOCTLS_SYSTEM);
	ALLOW_IOCTLS(b, ioctl_tty);
	ALLOW_IOCTLS(b, ioctl_tap);
	ALLOW_IOCTLS(b, ioctl_socket);
	ALLOW_IOCTLS(b, ioctl_blockdev);
	ALLOW_IOCTLS(b, ioctl_usbfs);	/* `vivarium usb attach` on main */
	if (o->nat)
		allow_nat_sockets(b);
	if (o->audio)
		allow_audio_sockets(b);
	if (o->shares)
		ALLOW(b, sys_share);
	if (o->window) {
		ALLOW(b, sys_window);
		allow_ioctl_type(b, 'd');	/* DRM, drivers' included */
		allow_ioctl_type(b, 'b');	/* dma-buf */
		allow_ioctl_type(b, '>');	/* sync_file */
		allow_ioctl_type(b, 'F');	/* NVIDIA's driver (/dev/nvidia*) */
	}
}

/* A filtered thread: the core, no executable mappings, read-only opens
 * of the kind glibc makes, device code's VM ioctls. */
static void build_leaf(struct builder *b, const struct policy_opts *o)
{
	allow_common(b, o);
	allow_mappings(b, false, false);
	allow1(b, "openat", SCMP_A2(SCMP_CMP_MASKED_EQ, OPEN_WRITE_FLAGS, 0));
	allow1(b, "open", SCMP_A1(SCMP_CMP_MASKED_EQ, OPEN_WRITE_FLAGS, 0));
	allow_hv_ioctls(b, HV_IOCTLS_VM_DEVICE);
}

bool policy_is_base(enum sandbox_thread kind)
{
	return kind == SANDBOX_THREAD_OTHER || kind == SANDBOX_THREAD_MAIN ||
	       kind == SANDBOX_THREAD_MACHINE || kind >= SANDBOX_THREAD_KINDS;
}

static void build(struct builder *b, enum sandbox_thread kind,
		  const struct policy_opts *o)
{
	if (policy_is_base(kind)) {
		build_base(b, o);
		return;
	}
	build_leaf(b, o);
	switch (kind) {
	case SANDBOX_THREAD_VCPU:
		allow_hv_ioctls(b, HV_IOCTLS_VCPU);
		ALLOW_IOCTLS(b, ioctl_tap);	/* virtio-net's offloads */
		ALLOW(b, sys_vcpu);
		/* USB passthrough: a doorbell submits the URB, a Stop
		 * Endpoint discards it; libusb may wake its event thread. */
		ALLOW_IOCTLS(b, ioctl_usbfs);
		rule(b, SCMP_ACT_ALLOW, "timerfd_settime", 0, NULL);
		break;
	case SANDBOX_THREAD_BLOCK:
		ALLOW(b, sys_block);
		break;
	case SANDBOX_THREAD_NET:
		ALLOW(b, sys_sockets);
		ALLOW_IOCTLS(b, ioctl_socket);
		/* NAT's sockets beyond poll()'s share go into an epoll set. */
		rule(b, SCMP_ACT_ALLOW, "epoll_create1", 0, NULL);
		if (o->nat)
			allow_nat_sockets(b);
		break;
	case SANDBOX_THREAD_VNC:
		ALLOW(b, sys_sockets);
		ALLOW_IOCTLS(b, ioctl_socket);
		rule(b, SCMP_ACT_ALLOW, "pipe2", 0, NULL);
		allow_threads(b);	/* a connection's threads */
		break;
	case SANDBOX_THREAD_SIGNALS:
		rule(b, SCMP_ACT_ALLOW, "rt_sigtimedwait", 0, NULL);
		break;
	case SANDBOX_THREAD_SHARE:
		ALLOW(b, sys_share);
		break;
	case SANDBOX_THREAD_USB:
		/* libusb's event loop: usbfs, its timerfd. */
		ALLOW_IOCTLS(b, ioctl_usbfs);
		rule(b, SCMP_ACT_ALLOW, "timerfd_settime", 0, NULL);
		rule(b, SCMP_ACT_ALLOW, "timerfd_gettime", 0, NULL);
		break;
	case SANDBOX_THREAD_TPM:
		/* swtpm's data and control sockets (host/swtpm.c): send
		 * and recv (MSG_NOSIGNAL: a dead swtpm is no SIGPIPE),
		 * poll is the core's. */
		rule(b, SCMP_ACT_ALLOW, "sendto", 0, NULL);
		rule(b, SCMP_ACT_ALLOW, "recvfrom", 0, NULL);
		break;
	case SANDBOX_THREAD_TIMER:
	case SANDBOX_THREAD_IO:
	case SANDBOX_THREAD_SERIAL:
	default:
		break;
	}
}

/* The filter as BPF: libseccomp writes it to a file, read back here. */
static int export_bpf(scmp_filter_ctx ctx, struct sock_fprog *prog, char *err,
		      size_t errlen)
{
	int fd = memfd_create("vivarium-seccomp", MFD_CLOEXEC);
	struct stat st;
	void *buf = NULL;
	ssize_t n;
	int r;

	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "seccomp: memfd_create: %s", strerror(errno));
		return r;
	}
	r = seccomp_export_bpf(ctx, fd);
	if (r < 0) {
		snprintf(err, errlen, "seccomp: cannot export the filter: %s", strerror(-r));
		goto out;
	}
	if (fstat(fd, &st) < 0 || st.st_size <= 0 ||
	    st.st_size % (off_t)sizeof(struct sock_filter) ||
	    st.st_size / (off_t)sizeof(struct sock_filter) > 0xffff) {
		r = -EINVAL;
		snprintf(err, errlen, "seccomp: the exported filter has a bad size");
		goto out;
	}
	buf = malloc((size_t)st.st_size);
	n = buf ? pread(fd, buf, (size_t)st.st_size, 0) : -1;
	if (n != st.st_size) {
		r = buf ? -EIO : -ENOMEM;
		snprintf(err, errlen, "seccomp: cannot read the exported filter back");
		free(buf);
		goto out;
	}
	prog->filter = buf;
	prog->len = (unsigned short)(st.st_size / (off_t)sizeof(struct sock_filter));
	r = 0;
out:
	close(fd);
	return r;
}

int policy_build(enum sandbox_thread kind, const struct policy_opts *o,
		 struct sock_fprog *prog, char *err, size_t errlen)
{
	struct builder b = { .err = err, .errlen = errlen };
	int r;

	b.ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!b.ctx) {
		snprintf(err, errlen, "seccomp: cannot make a filter (libseccomp)");
		return -ENOMEM;
	}
	/* We set no_new_privs ourselves, on every thread; a 32-bit or x32
	 * call traps as well. */
	seccomp_attr_set(b.ctx, SCMP_FLTATR_CTL_NNP, 0);
	seccomp_attr_set(b.ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_TRAP);
	/* A binary tree of syscall numbers, where libseccomp can. */
	seccomp_attr_set(b.ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	build(&b, kind, o);
	r = b.r;
	if (r == 0)
		r = export_bpf(b.ctx, prog, err, errlen);
	seccomp_release(b.ctx);
	return r;
}

/* ---- names for the report of a forbidden call ----------------------------- */

#define NAMES_MAX 512
static char *names[NAMES_MAX];

void policy_names_init(void)
{
	for (int nr = 0; nr < NAMES_MAX; nr++)
		if (!names[nr])
			names[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
}

const char *policy_name(long nr)
{
	return nr >= 0 && nr < NAMES_MAX ? names[nr] : NULL;
}
