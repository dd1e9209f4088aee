/* SPDX-License-Identifier: MIT */
/* app/options.h - parsing of command-line values shared by subcommands. */
#ifndef VIVARIUM_OPTIONS_H
#define VIVARIUM_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct machine_drive;
struct machine_config;

/*
 * parse_size - "512M", "2G", "1048576K", "4096" (bytes), suffixes K, M, G, T
 * (powers of 1024, case-insensitive, optional trailing "iB"/"B").  Returns 0
 * with *bytes set, or -EINVAL (not a size) / -ERANGE (overflows 64 bits).
 */
int parse_size(const char *s, uint64_t *bytes);

/* parse_uint - a decimal integer in [min, max]; 0, -EINVAL or -ERANGE. */
int parse_uint(const char *s, unsigned min, unsigned max, unsigned *out);

/* One subcommand of a command with several (img, share, snapshot). */
struct subcommand {
	const char *name;
	int (*fn)(int argc, char **argv);	/* argv[0] is the name */
};

/*
 * subcommand_run - run the subcommand of @subs (@n of them) argv[1] names
 * on argv + 1, its exit status in *@status.  No argv[1]: @usage(stderr),
 * status 2; "--help", "-h" or "help": @usage(stdout), status 0.  Returns
 * false if argv[1] is another word, for the caller to say so (its own
 * words; exit status 2).
 */
bool subcommand_run(const struct subcommand *subs, size_t n,
		    void (*usage)(FILE *f), int argc, char **argv, int *status);

/*
 * parse_drive_spec - a --disk value: "PATH[,format=raw|qcow2][,if=virtio|ata]
 * [,readonly]" (a path containing ',' is written with ",," as in QEMU).
 * Fills @d (its path is a heap copy the caller may keep for the process's
 * life).  Returns 0 or -EINVAL with one line in @err.
 */
int parse_drive_spec(const char *spec, struct machine_drive *d, char *err,
		     size_t errlen);

/*
 * parse_vga - a --vga / vm.conf vga value: "std" (the standard VGA),
 * "virtio" (the standard VGA and virtio-gpu, the console switching to
 * virtio-gpu once the guest's driver shows a picture) or "none".  Sets
 * @cfg->no_vga and @cfg->virtio_gpu.  Returns 0 or -EINVAL.
 */
int parse_vga(const char *s, struct machine_config *cfg);

/* A parsed --vnc / vm.conf vnc value. */
struct vnc_addr {
	bool is_unix;
	char path[108];		/* unix: the socket path (fits sun_path) */
	char host[64];		/* TCP: a numeric IPv4/IPv6 address */
	unsigned port;		/* TCP: 1-65535 */
};

/*
 * parse_vnc_addr - a VNC listener address: "ADDR:PORT" (ADDR a numeric
 * IPv4 address, "[IPv6]", "localhost" or empty, the last two meaning
 * 127.0.0.1; PORT 1-65535) or "unix:PATH" (PATH non-empty and short
 * enough for a sockaddr_un).  The one check for `run --vnc`, `start
 * --vnc`, vm.conf and `edit`, and the parse the VNC server listens by.
 * @out may be NULL.  Returns 0 or -EINVAL with one line in @err.
 */
int parse_vnc_addr(const char *spec, struct vnc_addr *out, char *err,
		   size_t errlen);

/* Bytes of a VNC password file read at most: the password is its first
 * line. */
#define VNC_PASSWORD_FILE_MAX	4096

/*
 * vnc_password_read - the first line of @path into @pw (@len bytes with
 * the NUL).  @path must be a regular file (a FIFO, a device such as
 * /dev/zero or a directory is refused without blocking or reading it);
 * at most VNC_PASSWORD_FILE_MAX bytes are read.  Returns 0, or with one
 * line in @err: -errno if it cannot be opened or read, -EINVAL if it is
 * not a regular file or its first line is empty, has a NUL, or does not
 * fit in @len.
 */
int vnc_password_read(const char *path, char *pw, size_t len, char *err,
		      size_t errlen);

#endif
