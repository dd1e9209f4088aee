/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/net/tap.c - the TAP backend (net/tap.h): a tap device's fd,
 * read and written one frame at a time, each behind a virtio-net header,
 * on the backend's thread; opened by name, or made by QEMU's bridge helper.
 */
#define _GNU_SOURCE	/* pipe2 */
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../log.h"

#define TUN_PATH	"/dev/net/tun"
#define HELPER_TIMEOUT_MS 10000
/* struct virtio_net_hdr without num_buffers: the tap's default
 * (TUNSETVNETHDRSZ), little-endian like the host and virtio 1.x. */
#define VNET_HDR_LEN	NET_VNET_HDR_LEN

extern char **environ;

struct tap_be {
	int fd;
	bool vnet;			/* IFF_VNET_HDR: offloads both ways */
	bool dead;			/* the device went away: stop polling */
	char name[IFNAMSIZ];
	struct netdev *nd;
	uint8_t buf[NET_FRAME_MAX];
};

static int tap_poll_fill(void *be, struct pollfd *pfd, int max,
			 int *timeout_ms, bool rx_room, bool tx_pending)
{
	struct tap_be *t = be;

	if (t->dead)
		return 0;
	/* Without rx_room, frames stay in the tap's queue (txqueuelen). */
	pfd[0] = (struct pollfd){
		.fd = t->fd,
		.events = (rx_room ? POLLIN : 0) | (tx_pending ? POLLOUT : 0),
	};
	return 1;
}

static void tap_poll_done(void *be, struct pollfd *pfd, int n)
{
	struct tap_be *t = be;

	if (n < 1)
		return;
	if (!(pfd[0].revents & POLLIN)) {
		if (pfd[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
			/* The kernel says so once the device is deleted. */
			vlog(LOG_WARN, "net tap '%s': the device went away: "
			     "this network is cut", t->name);
			t->dead = true;
		}
		return;
	}
	/* A bounded batch (the receive queue holds it: poll_fill asked for
	 * POLLIN only below half full), so that transmit gets its turn. */
	for (int i = 0; i < 64; i++) {
		uint8_t h[VNET_HDR_LEN];
		struct iovec iov[2] = { { h, sizeof(h) }, { t->buf, sizeof(t->buf) } };
		ssize_t len = t->vnet ? readv(t->fd, iov, 2) :
					read(t->fd, t->buf, sizeof(t->buf));
		struct net_offload off;

		if (len < 0) {
			if (errno != EAGAIN && errno != EINTR)
				vlog_ratelimited(LOG_WARN, "net tap '%s': read: %s",
						 t->name, strerror(errno));
			break;
		}
		if (!t->vnet) {
			net_deliver(t->nd, t->buf, (size_t)len);
			continue;
		}
		if (len < VNET_HDR_LEN)
			continue;
		net_offload_from_hdr(&off, h);
		net_deliver_offload(t->nd, &off, t->buf,
				    (size_t)len - VNET_HDR_LEN);
	}
}

static int tap_write(struct tap_be *t, const struct net_offload *off,
		     const uint8_t *frame, size_t len)
{
	uint8_t h[VNET_HDR_LEN];
	struct iovec iov[2] = { { h, sizeof(h) }, { (void *)frame, len } };
	ssize_t r;

	net_offload_to_hdr(h, off);
	r = t->vnet ? writev(t->fd, iov, 2) : write(t->fd, frame, len);
	return r < 0 ? -1 : 0;
}

static int tap_output_offload(void *be, const struct net_offload *off,
			      const uint8_t *frame, size_t len)
{
	struct tap_be *t = be;

	if (t->dead)
		return 0;
	if (tap_write(t, off, frame, len) < 0) {
		if (errno == EAGAIN || errno == ENOBUFS)
			return -EAGAIN;
		/* EIO: the device is down; others: lost, as on a wire */
		if (errno != EIO)
			vlog_ratelimited(LOG_WARN, "net tap '%s': write: %s",
					 t->name, strerror(errno));
	}
	return 0;
}

static int tap_output(void *be, const uint8_t *frame, size_t len)
{
	return tap_output_offload(be, NULL, frame, len);
}

/* net_caps() to TUNSETOFFLOAD: what the kernel may hand us. */
static void tap_set_rx_offloads(void *be, unsigned caps)
{
	struct tap_be *t = be;
	unsigned long f = 0;

	if (!t->vnet)
		return;
	if (caps & NET_CAP_CSUM) {
		f |= TUN_F_CSUM;
		if (caps & NET_CAP_TSO4)
			f |= TUN_F_TSO4;
		if (caps & NET_CAP_TSO6)
			f |= TUN_F_TSO6;
		if ((caps & NET_CAP_TSO_ECN) && (f & (TUN_F_TSO4 | TUN_F_TSO6)))
			f |= TUN_F_TSO_ECN;
	}
	if (ioctl(t->fd, TUNSETOFFLOAD, f) < 0)
		vlog_ratelimited(LOG_WARN, "net tap '%s': cannot set its offloads to 0x%lx: %s",
				 t->name, f, strerror(errno));
}

static void tap_free(void *be)
{
	struct tap_be *t = be;

	close(t->fd);
	free(t);
}

static const struct net_backend_ops tap_ops = {
	.kind = "tap",
	.poll_fill = tap_poll_fill,
	.poll_done = tap_poll_done,
	.output = tap_output,
	.caps = NET_CAP_ALL,
	.output_offload = tap_output_offload,
	.set_rx_offloads = tap_set_rx_offloads,
	.free = tap_free,
};

/* A tap opened without a vnet header (an old helper's): plain frames. */
static const struct net_backend_ops tap_plain_ops = {
	.kind = "tap",
	.poll_fill = tap_poll_fill,
	.poll_done = tap_poll_done,
	.output = tap_output,
	.free = tap_free,
};

/* A backend on @fd (taken: closed on failure too), tap device @name,
 * opened with IFF_VNET_HDR if @vnet. */
static struct netdev *tap_start(int fd, const char *name, bool vnet,
				char *err, size_t errlen)
{
	struct tap_be *t = calloc(1, sizeof(*t));
	int e;

	if (!t) {
		close(fd);
		snprintf(err, errlen, "tap device '%s': out of memory", name);
		return NULL;
	}
	t->fd = fd;
	t->vnet = vnet;
	snprintf(t->name, sizeof(t->name), "%s", name);
	/* Offloads belong to the device and outlive its last user (a QEMU
	 * before us may have left TSO on): off until the NIC asks. */
	if (ioctl(fd, TUNSETOFFLOAD, 0) < 0)
		vlog(LOG_WARN, "tap device '%s': cannot turn its offloads off: %s",
		     name, strerror(errno));
	if (vnet) {
		int sz = VNET_HDR_LEN;

		if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0) {
			snprintf(err, errlen, "tap device '%s': cannot set its "
				 "virtio-net header size: %s", name, strerror(errno));
			tap_free(t);
			return NULL;
		}
	}
	t->nd = net_new(vnet ? &tap_ops : &tap_plain_ops, t, &e);
	if (!t->nd) {
		snprintf(err, errlen, "tap device '%s': %s", name, strerror(-e));
		tap_free(t);
		return NULL;
	}
	e = net_start(t->nd);
	if (e) {
		snprintf(err, errlen, "tap device '%s': cannot start its "
			 "thread: %s", name, strerror(-e));
		net_free(t->nd);	/* frees t, closes fd */
		return NULL;
	}
	return t->nd;
}

/* What the kernel accepts as an interface name (dev_valid_name), and no
 * '%' (a name template: the kernel would pick a new name). */
static bool valid_ifname(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n >= IFNAMSIZ || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '/' || s[i] == ':' || s[i] == '%' ||
		    s[i] <= ' ' || s[i] == 0x7f)
			return false;
	return true;
}

static int open_tun(char *err, size_t errlen)
{
	int fd = open(TUN_PATH, O_RDWR | O_CLOEXEC | O_NONBLOCK), e;
	struct stat st;

	if (fd >= 0)
		return fd;
	e = errno;
	switch (e) {
	case ENOENT:
		snprintf(err, errlen, TUN_PATH ": does not exist: load the tun "
			 "module (modprobe tun) or make the node (mknod "
			 TUN_PATH " c 10 200, mode 0666)");
		break;
	case EACCES:
	case EPERM:
		if (stat(TUN_PATH, &st) == 0)
			snprintf(err, errlen, TUN_PATH ": permission denied: "
				 "its mode is %04o (owner %u, group %u), "
				 "usually 0666: chmod 0666 " TUN_PATH,
				 (unsigned)(st.st_mode & 07777),
				 (unsigned)st.st_uid, (unsigned)st.st_gid);
		else
			snprintf(err, errlen, TUN_PATH ": permission denied");
		break;
	case ENODEV:
	case ENXIO:
		snprintf(err, errlen, TUN_PATH ": no tun driver in this "
			 "kernel: load the tun module (modprobe tun)");
		break;
	default:
		snprintf(err, errlen, TUN_PATH ": %s", strerror(e));
	}
	return -e;
}

/* /sys/class/net/@name/@file as a number (tun_flags is hex, owner and
 * group decimal, -1 when unset); false if there is no such file. */
static bool sys_value(const char *name, const char *file, long *v)
{
	char p[128], buf[32] = "";
	FILE *f;

	snprintf(p, sizeof(p), "/sys/class/net/%s/%s", name, file);
	f = fopen(p, "re");
	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	*v = strtol(buf, NULL, 0);
	return buf[0] != '\0';
}

static void tunsetiff_error(const char *name, bool existed, int e, char *err,
			    size_t errlen)
{
	long flags, owner = -1, group = -1;

	switch (e) {
	case EPERM:
		if (!existed) {
			snprintf(err, errlen, "tap device '%s' does not exist and "
				 "creating it needs CAP_NET_ADMIN: create it once "
				 "as root with 'ip tuntap add dev %s mode tap "
				 "user $USER'", name, name);
			return;
		}
		sys_value(name, "owner", &owner);
		sys_value(name, "group", &group);
		if (owner < 0 && group < 0)
			break;
		snprintf(err, errlen, "tap device '%s' belongs to %s %ld, and "
			 "opening another's tap needs CAP_NET_ADMIN: recreate "
			 "it with 'ip tuntap add dev %s mode tap user $USER'",
			 name, owner >= 0 ? "user" : "group",
			 owner >= 0 ? owner : group, name);
		return;
	case EBUSY:
		snprintf(err, errlen, "tap device '%s' is busy: another program "
			 "(another VM?) has it open", name);
		return;
	case EINVAL:
		if (!existed)
			break;
		if (!sys_value(name, "tun_flags", &flags))
			snprintf(err, errlen, "'%s' is not a tap device: it is "
				 "a network interface of another kind", name);
		else if (flags & IFF_TUN)
			snprintf(err, errlen, "'%s' is a TUN device (IP packets), "
				 "not a TAP device (Ethernet frames): recreate it "
				 "with 'mode tap'", name);
		else if (flags & IFF_MULTI_QUEUE)
			snprintf(err, errlen, "tap device '%s' is multi-queue; "
				 "vivarium opens one queue: recreate it without "
				 "multi_queue", name);
		else
			break;
		return;
	}
	snprintf(err, errlen, "tap device '%s': %s", name, strerror(e));
}

struct netdev *net_tap_new(const char *ifname, char *err, size_t errlen)
{
	struct ifreq ifr;
	bool existed;
	int fd;

	if (!valid_ifname(ifname)) {
		snprintf(err, errlen, "tap device name '%s': 1 to 15 characters, "
			 "none of '/', ':', '%%' or blanks", ifname ? ifname : "");
		return NULL;
	}
	fd = open_tun(err, errlen);
	if (fd < 0)
		return NULL;
	existed = if_nametoindex(ifname) != 0;
	if (!existed) {
		/* The kernel would make it (with CAP_NET_ADMIN), down and
		 * unconfigured: a VM without a network, and a typo'd name
		 * would litter the host with devices.  Say what to do. */
		snprintf(err, errlen, "tap device '%s' does not exist: create it "
			 "with 'ip tuntap add dev %s mode tap user $USER', then "
			 "add it to a bridge or give it an address", ifname,
			 ifname);
		close(fd);
		return NULL;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		tunsetiff_error(ifname, existed, errno, err, errlen);
		close(fd);
		return NULL;
	}
	return tap_start(fd, ifname, true, err, errlen);
}

/* ---- QEMU's bridge helper ------------------------------------------------- */

/* The fd the helper sends over @sock (one byte, SCM_RIGHTS), within
 * HELPER_TIMEOUT_MS; -1 if none (the helper failed: it closed the socket). */
static int recv_fd(int sock, bool *timed_out)
{
	char byte, cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &byte, 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct pollfd p = { .fd = sock, .events = POLLIN };
	struct cmsghdr *c;
	int fd = -1, r;

	*timed_out = false;
	do {
		r = poll(&p, 1, HELPER_TIMEOUT_MS);
	} while (r < 0 && errno == EINTR);
	if (r == 0) {
		*timed_out = true;
		return -1;
	}
	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) <= 0)
		return -1;
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(sizeof(int)))
			continue;
		if (fd >= 0) {
			int extra;

			memcpy(&extra, CMSG_DATA(c), sizeof(extra));
			close(extra);
			continue;
		}
		memcpy(&fd, CMSG_DATA(c), sizeof(fd));
	}
	return fd;
}

/* The last non-empty line the helper wrote to stderr (@fd), into @out. */
static void last_line(int fd, char *out, size_t outlen)
{
	char buf[2048];
	size_t n = 0;
	ssize_t r;
	char *end, *start;

	while (n < sizeof(buf) - 1 &&
	       (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
	end = buf + n;
	while (end > buf && (end[-1] == '\n' || end[-1] == ' '))
		*--end = '\0';
	start = strrchr(buf, '\n');
	start = start ? start + 1 : buf;
	n = strlen(start) < outlen ? strlen(start) : outlen - 1;
	memcpy(out, start, n);
	out[n] = '\0';
}

static const char *helper_hint(const char *msg)
{
	if (strstr(msg, "acl"))
		return " (name the bridge in /etc/qemu/bridge.conf: 'allow BRIDGE')";
	if (strstr(msg, "Operation not permitted"))
		return " (the helper needs CAP_NET_ADMIN: make it setuid root, "
		       "or run vivarium with CAP_NET_ADMIN)";
	if (strstr(msg, "No such device"))
		return " (no such bridge: ip link add NAME type bridge)";
	return "";
}

struct netdev *net_tap_bridge_new(const char *bridge, const char *helper,
				  char *err, size_t errlen)
{
	posix_spawn_file_actions_t fa;
	char br_arg[IFNAMSIZ + 8], fd_arg[16], msg[256] = "";
	char *argv[5];
	int sv[2], ep[2], target, fd, status = 0, e;
	bool timed_out;
	struct ifreq ifr;
	pid_t pid;

	if (!helper)
		helper = NET_BRIDGE_HELPER;
	if (!valid_ifname(bridge)) {
		snprintf(err, errlen, "bridge name '%s': 1 to 15 characters, "
			 "none of '/', ':', '%%' or blanks", bridge ? bridge : "");
		return NULL;
	}
	if (access(helper, X_OK) < 0) {
		snprintf(err, errlen, "bridge helper %s: %s: install QEMU's "
			 "(Debian: qemu-system-common)", helper, strerror(errno));
		return NULL;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, errlen, "bridge helper: socketpair: %s",
			 strerror(errno));
		return NULL;
	}
	if (pipe2(ep, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "bridge helper: pipe: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return NULL;
	}
	/* The helper's end goes to a number of its own: dup2 onto another
	 * number is what drops close-on-exec. */
	target = sv[1] == 3 ? 4 : 3;
	snprintf(br_arg, sizeof(br_arg), "--br=%s", bridge);
	snprintf(fd_arg, sizeof(fd_arg), "--fd=%d", target);
	argv[0] = (char *)"qemu-bridge-helper";
	argv[1] = (char *)"--use-vnet";
	argv[2] = br_arg;
	argv[3] = fd_arg;
	argv[4] = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, ep[1], 2);
	posix_spawn_file_actions_adddup2(&fa, sv[1], target);
	e = posix_spawn(&pid, helper, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(sv[1]);
	close(ep[1]);
	if (e) {
		snprintf(err, errlen, "bridge helper %s: %s", helper, strerror(e));
		close(sv[0]);
		close(ep[0]);
		return NULL;
	}
	fd = recv_fd(sv[0], &timed_out);
	close(sv[0]);
	if (timed_out)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	last_line(ep[0], msg, sizeof(msg));
	close(ep[0]);
	if (fd < 0) {
		if (timed_out)
			snprintf(msg, sizeof(msg), "no answer in %d s",
				 HELPER_TIMEOUT_MS / 1000);
		else if (!msg[0])
			snprintf(msg, sizeof(msg), "it exited (status %d) "
				 "without a tap", WIFEXITED(status) ?
				 WEXITSTATUS(status) : -1);
		snprintf(err, errlen, "bridge helper for '%s': %s%s", bridge,
			 msg, helper_hint(msg));
		return NULL;
	}
	memset(&ifr, 0, sizeof(ifr));
	if (ioctl(fd, TUNGETIFF, &ifr) < 0 ||
	    (ifr.ifr_flags & (IFF_TAP | IFF_NO_PI)) != (IFF_TAP | IFF_NO_PI)) {
		snprintf(err, errlen, "bridge helper for '%s': what it sent is "
			 "not a tap without packet information", bridge);
		close(fd);
		return NULL;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		snprintf(err, errlen, "bridge helper for '%s': %s", bridge,
			 strerror(errno));
		close(fd);
		return NULL;
	}
	ifr.ifr_name[IFNAMSIZ - 1] = '\0';
	return tap_start(fd, ifr.ifr_name, !!(ifr.ifr_flags & IFF_VNET_HDR),
			 err, errlen);
}
