/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/sandbox/landlock.c - the files a sandboxed VM process may
 * reach, as a Landlock ruleset (Documentation/userspace-api/landlock.rst),
 * through the raw system calls: glibc has no wrappers, and Debian 12's
 * <linux/landlock.h> stops at ABI 2, so the later fields and rights are
 * defined here.
 *
 * Handled (denied unless a rule allows): every file-system right the
 * kernel's ABI knows (ABI 1: read, write, execute, list, make and remove
 * files of each type; 2: linking and renaming across folders; 3:
 * truncating; 5: ioctls on devices: none are allowed, the ones we use were
 * opened before), TCP bind (ABI 4: none allowed, every listener is open
 * already; TCP connect stays free: NAT connects wherever the guest goes),
 * and from ABI 7 (where signals between a process's own threads are always
 * allowed) signals and abstract Unix sockets outside the process's domain.
 *
 * Allowed besides the caller's paths (sandbox_config.paths), read-only:
 * /usr, /lib, /lib64 (libraries loaded late, GLib's charset tables and
 * gconv, time zones, GL drivers, X locale data), /etc's files that
 * glibc, GLib and libslirp read at run time (time zone, resolv.conf and,
 * when it is a link into a folder of its own as with systemd-resolved or
 * NetworkManager, that folder, so that new DNS servers are seen;
 * ld.so.cache; nsswitch.conf, passwd, group, hosts, localtime), /dev/null,
 * /dev/zero, /dev/urandom (GLib's random UUIDs for snapshots), and
 * /sys/devices/system/cpu (glibc's CPU count).  Not /proc: a process's
 * own entries there are reached through file descriptors it has, and
 * /proc/PID of the user's other processes (environments, command lines)
 * is exactly what a sandbox must not read.
 */
#define _GNU_SOURCE
#include "sandbox/sandbox_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#define __NR_landlock_add_rule 445
#define __NR_landlock_restrict_self 446
#endif

#define LL_CREATE_RULESET_VERSION	(1u << 0)
#define LL_RULE_PATH_BENEATH		1

/* File-system rights, by the ABI that brought them. */
#define LL_FS_EXECUTE		(1ull << 0)
#define LL_FS_WRITE_FILE	(1ull << 1)
#define LL_FS_READ_FILE		(1ull << 2)
#define LL_FS_READ_DIR		(1ull << 3)
#define LL_FS_REMOVE_DIR	(1ull << 4)
#define LL_FS_REMOVE_FILE	(1ull << 5)
#define LL_FS_MAKE_CHAR		(1ull << 6)
#define LL_FS_MAKE_DIR		(1ull << 7)
#define LL_FS_MAKE_REG		(1ull << 8)
#define LL_FS_MAKE_SOCK		(1ull << 9)
#define LL_FS_MAKE_FIFO		(1ull << 10)
#define LL_FS_MAKE_BLOCK	(1ull << 11)
#define LL_FS_MAKE_SYM		(1ull << 12)
#define LL_FS_ABI1		((1ull << 13) - 1)
#define LL_FS_REFER		(1ull << 13)	/* ABI 2 */
#define LL_FS_TRUNCATE		(1ull << 14)	/* ABI 3 */
#define LL_FS_IOCTL_DEV		(1ull << 15)	/* ABI 5 */
#define LL_NET_BIND_TCP		(1ull << 0)	/* ABI 4 */
#define LL_SCOPE_ABSTRACT_UNIX	(1ull << 0)	/* ABI 6 */
#define LL_SCOPE_SIGNAL		(1ull << 1)	/* ABI 6 */

/* struct landlock_ruleset_attr as of ABI 6; older kernels take the size
 * of the fields they know (landlock_ruleset()). */
struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

struct ll_path_beneath_attr {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));

int landlock_abi(void)
{
	long r = syscall(__NR_landlock_create_ruleset, NULL, 0,
			 LL_CREATE_RULESET_VERSION);

	return r < 0 ? -errno : (int)r;
}

static uint64_t fs_handled(int abi)
{
	uint64_t h = LL_FS_ABI1;

	if (abi >= 2)
		h |= LL_FS_REFER;
	if (abi >= 3)
		h |= LL_FS_TRUNCATE;
	if (abi >= 5)
		h |= LL_FS_IOCTL_DEV;
	return h;
}

#define LL_FS_READ	(LL_FS_READ_FILE | LL_FS_READ_DIR)
#define LL_FILE_RW	(LL_FS_READ_FILE | LL_FS_WRITE_FILE | LL_FS_TRUNCATE)
#define LL_FOLDER	(LL_FS_READ | LL_FS_WRITE_FILE | LL_FS_TRUNCATE | \
			 LL_FS_REMOVE_DIR | LL_FS_REMOVE_FILE | LL_FS_MAKE_DIR | \
			 LL_FS_MAKE_REG | LL_FS_MAKE_SOCK | LL_FS_REFER)
/* Rights that mean something on a file (not a folder): Landlock refuses
 * the others in a rule for a file. */
#define LL_FILE_ONLY	(LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | \
			 LL_FS_TRUNCATE | LL_FS_IOCTL_DEV)

static uint64_t rights(enum sandbox_access a)
{
	switch (a) {
	case SANDBOX_READ: return LL_FS_READ;
	case SANDBOX_READ_WRITE: return LL_FILE_RW;
	case SANDBOX_FOLDER: return LL_FOLDER;
	case SANDBOX_SHARE: return LL_FOLDER | LL_FS_MAKE_SYM;
	case SANDBOX_REMOVE: return LL_FS_REMOVE_FILE;
	}
	return 0;
}

/* Allow @access beneath @path (a file or folder).  Missing: -ENOENT. */
static int add_path(int rs, int abi, const char *path, uint64_t access,
		    char *err, size_t errlen)
{
	struct ll_path_beneath_attr pb;
	struct stat st;
	int fd = open(path, O_PATH | O_CLOEXEC);
	int r = 0;

	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "landlock: cannot open '%s': %s", path, strerror(errno));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		snprintf(err, errlen, "landlock: cannot stat '%s': %s", path, strerror(errno));
		close(fd);
		return r;
	}
	if (!S_ISDIR(st.st_mode))
		access &= LL_FILE_ONLY;
	pb.allowed_access = access & fs_handled(abi);
	pb.parent_fd = fd;
	if (pb.allowed_access &&
	    syscall(__NR_landlock_add_rule, rs, LL_RULE_PATH_BENEATH, &pb, 0) < 0) {
		r = -errno;
		snprintf(err, errlen, "landlock: cannot add a rule for '%s': %s", path,
			 strerror(errno));
	}
	close(fd);
	return r;
}

/* What glibc, GLib, SDL and libslirp read at run time (see the top). */
static const char *const system_read[] = {
	"/usr", "/lib", "/lib64", "/etc/ld.so.cache", "/etc/localtime",
	"/etc/resolv.conf", "/etc/nsswitch.conf", "/etc/passwd", "/etc/group",
	"/etc/hosts", "/dev/null", "/dev/zero", "/dev/urandom",
	"/sys/devices/system/cpu",
};

/* /etc/resolv.conf's folder, when it is a link out of /etc to a folder of
 * the resolver's own (e.g. /run/systemd/resolve): NetworkManager and
 * resolved replace the file there, and a rule follows an inode. */
static int add_resolver_folder(int rs, int abi, char *err, size_t errlen)
{
	char real[PATH_MAX], *slash;

	if (!realpath("/etc/resolv.conf", real))
		return 0;
	slash = strrchr(real, '/');
	if (!slash || slash == real)
		return 0;
	*slash = '\0';
	if (!strcmp(real, "/etc") || !strncmp(real, "/etc/", 5) ||
	    !strncmp(real, "/usr/", 5))
		return 0;
	return add_path(rs, abi, real, LL_FS_READ, err, errlen);
}

int landlock_ruleset(int abi, const struct sandbox_path *paths, size_t npaths,
		     char *err, size_t errlen)
{
	struct ll_ruleset_attr attr = { .handled_access_fs = fs_handled(abi) };
	size_t size = sizeof(attr.handled_access_fs);
	int rs, r = 0;

	if (abi >= 4) {
		attr.handled_access_net = LL_NET_BIND_TCP;
		size = offsetof(struct ll_ruleset_attr, scoped);
	}
	/* ABI 6 brought scopes; from ABI 7 on, threads of one process that
	 * restrict themselves one by one may still signal each other. */
	if (abi >= 7) {
		attr.scoped = LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL;
		size = sizeof(attr);
	}
	rs = (int)syscall(__NR_landlock_create_ruleset, &attr, size, 0);
	if (rs < 0) {
		r = -errno;
		snprintf(err, errlen, "landlock: cannot create a ruleset: %s", strerror(errno));
		return r;
	}
	fcntl(rs, F_SETFD, FD_CLOEXEC);
	for (size_t i = 0; i < sizeof(system_read) / sizeof(system_read[0]) && r == 0; i++) {
		r = add_path(rs, abi, system_read[i], LL_FS_READ, err, errlen);
		if (r == -ENOENT)
			r = 0;
	}
	if (r == 0)
		r = add_resolver_folder(rs, abi, err, errlen);
	for (size_t i = 0; i < npaths && r == 0; i++) {
		if (!paths[i].path)
			continue;
		r = add_path(rs, abi, paths[i].path, rights(paths[i].access), err, errlen);
		if (r == -ENOENT && !paths[i].required)
			r = 0;
	}
	if (r < 0) {
		close(rs);
		return r;
	}
	return rs;
}
