/* SPDX-License-Identifier: MIT */
/*
 * app/additions_host.h - the host side of the guest additions' protocol
 * (docs/guest-additions.md) on the virtio-serial port
 * org.vivarium.additions.0: line-delimited JSON both ways.
 *
 * Host -> guest: hello, shares (tag, guest path, readonly), display-size,
 * time-sync.  Guest -> host: hello, info (OS name, kernel, hostname, IP
 * addresses, additions version), which is kept for `status` and `show`.
 *
 * Everything from the guest is hostile: a line longer than
 * ADDITIONS_LINE_MAX bytes is dropped up to its newline, JSON nested
 * deeper than ADDITIONS_DEPTH_MAX or with \u0000 is refused before it is
 * parsed, each member's type and length is checked, strings with control
 * characters are refused (they end up on a terminal), and addresses must
 * parse as IPv4/IPv6.  A message that fails is logged at a limited rate
 * and ignored; the session goes on.
 *
 * Not thread-safe: one thread (the VM process's main loop) drives it.
 */
#ifndef VIVARIUM_ADDITIONS_HOST_H
#define VIVARIUM_ADDITIONS_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#define ADDITIONS_PORT		"org.vivarium.additions.0"
#define ADDITIONS_PROTOCOL	1
#define ADDITIONS_LINE_MAX	8192	/* bytes, the newline included */
#define ADDITIONS_DEPTH_MAX	4	/* nested objects/arrays */
#define ADDITIONS_SHARES_MAX	4
#define ADDITIONS_PATH_MAX	255	/* a share's guest path, bytes */
#define ADDITIONS_TAG_MAX	31
#define ADDITIONS_ADDR_MAX	16	/* addresses kept from an info */
#define ADDITIONS_OS_MAX	128	/* bytes of each info string ... */
#define ADDITIONS_KERNEL_MAX	128
#define ADDITIONS_HOSTNAME_MAX	64
#define ADDITIONS_VERSION_MAX	32

/* A share as the guest is told: mount @tag at @path. */
struct additions_share {
	char tag[ADDITIONS_TAG_MAX + 1];
	char path[ADDITIONS_PATH_MAX + 1];
	bool readonly;
};

/* What the guest's last valid info said. */
struct additions_info {
	char os[ADDITIONS_OS_MAX + 1];
	char kernel[ADDITIONS_KERNEL_MAX + 1];
	char hostname[ADDITIONS_HOSTNAME_MAX + 1];
	char version[ADDITIONS_VERSION_MAX + 1];
	char addr[ADDITIONS_ADDR_MAX][46];	/* INET6_ADDRSTRLEN */
	unsigned naddr;
	gint64 when_us;			/* g_get_real_time() of arrival */
};

struct additions_host_ops {
	/* @len bytes (whole lines) for the guest. */
	void (*send)(void *opaque, const void *buf, size_t len);
	/* A new valid info arrived (additions_host_info()).  May be NULL. */
	void (*info)(void *opaque);
};

struct additions_host;

/* NULL only on allocation failure. */
struct additions_host *additions_host_new(const struct additions_host_ops *ops,
					  void *opaque);
void additions_host_free(struct additions_host *h);	/* NULL ok */

/* The shares the guest is told about (copied; at most
 * ADDITIONS_SHARES_MAX).  Sent with each hello. */
void additions_host_set_shares(struct additions_host *h,
			       const struct additions_share *s, unsigned n);

/*
 * additions_host_reset - the guest closed (@open false) or (re)opened
 * the port: the half line buffered is dropped and the session restarts.
 * On open the host greets first (hello, shares, the last display size), so
 * that a guest restored from a snapshot, which does not say hello again,
 * answers with its info.  The last info is kept across resets.
 */
void additions_host_reset(struct additions_host *h, bool open);

/* Bytes the guest wrote (any split); complete lines are handled now. */
void additions_host_input(struct additions_host *h, const void *buf,
			  size_t len);

/* A valid message came from the guest since the port last opened. */
bool additions_host_connected(const struct additions_host *h);

/* The guest's last info; NULL if none came yet. */
const struct additions_info *additions_host_info(const struct additions_host *h);

/*
 * additions_host_display_size - the host's requested screen size in
 * pixels (1..16384 each).  Remembered and sent now if the guest is
 * connected and the size differs from the last one sent (so calling it
 * from several places is harmless), else at the next hello.  0,
 * -EINVAL, or -ENOTCONN (remembered, not sent).
 */
int additions_host_display_size(struct additions_host *h, unsigned width,
				unsigned height);

/* time-sync with the host's wall clock @real_us (microseconds since the
 * Unix epoch, g_get_real_time()).  0 or -ENOTCONN. */
int additions_host_time_sync(struct additions_host *h, gint64 real_us);

/*
 * additions_shares_from_config - the shares' guest paths: for each of the
 * @n shares (@tags, @readonly), the [shareN] group of @kf (vm.conf; may
 * be NULL) with that tag gives "guest-path"; absent or invalid (not
 * absolute, over ADDITIONS_PATH_MAX, "." or ".." components, control
 * characters, "/" itself: warned about) it is /mnt/TAG.  Fills @out;
 * returns the count (at most ADDITIONS_SHARES_MAX).
 */
unsigned additions_shares_from_config(const char *const *tags,
				      const bool *readonly, unsigned n,
				      GKeyFile *kf, struct additions_share *out);

/* Is @path acceptable as a share's guest path (see above)? */
bool additions_guest_path_ok(const char *path);

#endif
