/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_net_tap.c - the TAP backend (net/tap.c) on real tap
 * devices, in a network and mount namespace of the test's own (so every
 * device it makes goes away with it, whatever fails): ARP and ping of the
 * host through a tap, frames held in the tap's queue while the NIC has no
 * buffers, the refusals and their messages (with CAP_NET_ADMIN or the DAC
 * overrides dropped in a child), and QEMU's bridge helper when installed.
 * Needs root, /dev/net/tun and iproute2's ip: else it skips (77).
 */
#define _GNU_SOURCE	/* unshare */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/ethtool.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "netframe.h"
#include "net/tap.h"
#include "sandboxed.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char tmp[] = "/tmp/vivarium-tap-XXXXXX";

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };

/* A shell command, quiet; its exit status. */
static int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	strncat(cmd, " >/dev/null 2>&1", sizeof(cmd) - strlen(cmd) - 1);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A tap (persistent, so it outlives our opens) with @addr/24, up. */
static bool make_tap(const char *name, const char *addr)
{
	char p[128];
	int fd;

	if (sh("ip tuntap add dev %s mode tap", name) ||
	    sh("ip addr add %s/24 dev %s", addr, name) ||
	    sh("ip link set %s up", name))
		return false;
	/* No IPv6 chatter (router solicitations...) among the frames. */
	snprintf(p, sizeof(p), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", name);
	fd = open(p, O_WRONLY);
	if (fd >= 0) {
		if (write(fd, "1", 1) != 1)
			perror(p);
		close(fd);
	}
	return true;
}

static void del_link(const char *name)
{
	sh("ip link del %s", name);
}

/* Remove @caps (bits) from this process's capability sets. */
static int drop_caps(uint64_t caps)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return -1;
	for (unsigned i = 0; i < 2; i++) {
		uint32_t m = (uint32_t)(caps >> (32 * i));

		d[i].effective &= ~m;
		d[i].permitted &= ~m;
		d[i].inheritable &= ~m;
	}
	return (int)syscall(SYS_capset, &h, d);
}

#define CAPBIT(c)	(1ull << (c))

/* Run @fn in a child (no backend threads may be running); its CHECKs
 * count there, its status here. */
static void in_child(int (*fn)(void))
{
	int st = 0, before = check_failures__;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		int r = fn();

		fflush(stdout);
		_exit(r || check_failures__ != before ? 1 : 0);
	}
	CHECK(pid > 0);
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Expect net_tap_new(@name) to fail with a message holding @want. */
static void refused(const char *name, const char *want)
{
	char err[512] = "";
	struct netdev *nd = net_tap_new(name, err, sizeof(err));

	CHECK(nd == NULL);
	net_free(nd);
	if (!strstr(err, want) || strchr(err, '\n')) {
		fprintf(stderr, "  '%s': got '%s', want '%s'\n", name, err, want);
		CHECK(0);
	}
}

/* ---- frames --------------------------------------------------------------- */

static bool match_arp_reply(const uint8_t *f, size_t len, const void *arg)
{
	return eth_type(f, len) == ETHTYPE_ARP && len >= 42 &&
	       get16(f + 20) == 2 && get32(f + 28) == *(const uint32_t *)arg;
}

/* An echo reply with this id (and any sequence number). */
static bool match_echo_reply(const uint8_t *f, size_t len, const void *arg)
{
	size_t l4len;
	const uint8_t *p = ip4_l4(f, len, 1, &l4len);

	return p && l4len >= 8 && p[0] == 0 &&
	       get16(p + 4) == *(const unsigned *)arg;
}

struct link {
	struct netdev *nd;
	struct rec_nic nic;
	unsigned seen;
	uint8_t host_mac[6];
	uint32_t host_ip, guest_ip;
};

/* Asks again, as a guest does: until the kernel has activated the tap's
 * queueing discipline (linkwatch, up to a second after the carrier came
 * with our open), what the host sends through it is dropped. */
static bool arp_host(struct link *l)
{
	uint8_t f[64], r[64];

	for (int i = 0; i < 15; i++) {
		guest_send(l->nd, &lock, f,
			   arp_frame(f, 1, guest_mac, l->guest_ip, mac_bcast,
				     l->host_ip));
		if (rec_wait(&l->nic, &l->seen, match_arp_reply, &l->host_ip,
			     200, r, sizeof(r))) {
			memcpy(l->host_mac, r + 22, 6);
			return true;
		}
	}
	return false;
}

static void ping(struct link *l, unsigned id, unsigned seq)
{
	uint8_t icmp[16 + 8], f[128];

	memset(icmp, 0, sizeof(icmp));
	icmp[0] = 8;		/* echo request */
	put16(icmp + 4, id);
	put16(icmp + 6, seq);
	memcpy(icmp + 8, "vivarium-tap-abc", 16);
	CHECK_EQ(guest_send(l->nd, &lock, f,
			    ip4_frame(f, l->host_mac, guest_mac, 1, l->guest_ip,
				      l->host_ip, icmp, sizeof(icmp))), 0);
}

/* ---- the tests ------------------------------------------------------------ */

static void test_arp_and_ping(void)
{
	struct link l = { .host_ip = ip4("192.168.77.1"),
			  .guest_ip = ip4("192.168.77.2") };
	char err[512] = "";
	uint8_t f[256];
	unsigned id = 0x4242;
	size_t len, l4len = 0;
	const uint8_t *p;

	CHECK(make_tap("vvtap0", "192.168.77.1"));
	l.nd = net_tap_new("vvtap0", err, sizeof(err));
	CHECK(l.nd != NULL);
	if (!l.nd) {
		fprintf(stderr, "  net_tap_new: %s\n", err);
		goto out;
	}
	CHECK(!strcmp(net_kind(l.nd), "tap"));
	rec_attach(&l.nic, l.nd, &lock, 100000);
	CHECK(arp_host(&l));
	ping(&l, id, 1);
	len = rec_wait(&l.nic, &l.seen, match_echo_reply, &id, 2000, f,
		       sizeof(f));
	CHECK(len > 0);
	p = len ? ip4_l4(f, len, 1, &l4len) : NULL;
	CHECK(p != NULL);
	if (p) {
		CHECK(!memcmp(f, guest_mac, 6));
		CHECK_EQ(ip4_src(f), l.host_ip);
		CHECK_EQ(get16(p + 6), 1);
		CHECK(l4len == 24 && !memcmp(p + 8, "vivarium-tap-abc", 16));
	}
	rec_detach_free(&l.nic, l.nd);
out:
	del_link("vvtap0");
}

/* SIOCETHTOOL's value of @cmd (ETHTOOL_GTXCSUM, ETHTOOL_GTSO) on @name. */
static int ethtool_get(const char *name, uint32_t cmd)
{
	struct ethtool_value v = { .cmd = cmd };
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_data = (void *)&v;
	r = s < 0 ? -1 : ioctl(s, SIOCETHTOOL, &ifr);
	if (s >= 0)
		close(s);
	return r < 0 ? -1 : (int)v.data;
}

/*
 * A tap QEMU used keeps the offloads QEMU set (checksum, TSO); the backend
 * turns them off at open, or TCP from the host would reach a NIC whose
 * driver never asked for them with partial checksums and 64 KiB segments
 * (ping, computed in full, would still work).
 */
static void test_offloads_cleared(void)
{
	struct ifreq ifr;
	char err[512] = "";
	struct netdev *nd;
	int fd;

	CHECK(make_tap("vvtap4", "192.168.80.1"));
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "vvtap4");
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	CHECK(fd >= 0 && ioctl(fd, TUNSETIFF, &ifr) == 0);
	CHECK(ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) == 0);
	close(fd);
	CHECK_EQ(ethtool_get("vvtap4", ETHTOOL_GTXCSUM), 1);
	CHECK_EQ(ethtool_get("vvtap4", ETHTOOL_GTSO), 1);
	nd = net_tap_new("vvtap4", err, sizeof(err));
	CHECK(nd != NULL);
	CHECK_EQ(ethtool_get("vvtap4", ETHTOOL_GTXCSUM), 0);
	CHECK_EQ(ethtool_get("vvtap4", ETHTOOL_GTSO), 0);
	/* Until a NIC whose driver takes them asks (virtio-net's
	 * FEATURES_OK), and back off after its reset. */
	CHECK_EQ(net_caps(nd), NET_CAP_ALL);
	net_set_rx_offloads(nd, NET_CAP_CSUM | NET_CAP_TSO4 | NET_CAP_TSO6);
	CHECK_EQ(ethtool_get("vvtap4", ETHTOOL_GTXCSUM), 1);
	CHECK_EQ(ethtool_get("vvtap4", ETHTOOL_GTSO), 1);
	net_set_rx_offloads(nd, 0);
	CHECK_EQ(ethtool_get("vvtap4", ETHTOOL_GTSO), 0);
	net_free(nd);
	del_link("vvtap4");
}

/*
 * The NIC has no buffers while the host answers 400 pings, more than the
 * backend's receive queue holds (NET_QUEUE_FRAMES): the backend stops
 * reading and the rest wait in the tap's queue, so that once the NIC has
 * room every answer arrives and none was dropped.
 */
static void test_rx_held_in_kernel(void)
{
	enum { N = 400 };
	struct link l = { .host_ip = ip4("192.168.79.1"),
			  .guest_ip = ip4("192.168.79.2") };
	char err[512] = "";
	unsigned id = 0x77, got = 0;
	struct net_stats st;

	CHECK(N > NET_QUEUE_FRAMES && N < 1000);	/* 1000: txqueuelen */
	CHECK(make_tap("vvtap3", "192.168.79.1"));
	l.nd = net_tap_new("vvtap3", err, sizeof(err));
	CHECK(l.nd != NULL);
	if (!l.nd)
		goto out;
	rec_attach(&l.nic, l.nd, &lock, 100000);
	CHECK(arp_host(&l));
	pthread_mutex_lock(&lock);
	l.nic.room = 0;
	pthread_mutex_unlock(&lock);
	for (unsigned i = 0; i < N; i++)
		ping(&l, id, i);
	ms_sleep(300);
	pthread_mutex_lock(&lock);
	l.nic.room = 100000;
	pthread_mutex_unlock(&lock);
	net_rx_ready(l.nd);
	while (got < N && rec_wait(&l.nic, &l.seen, match_echo_reply, &id, 2000,
				   NULL, 0))
		got++;
	CHECK_EQ(got, N);
	net_get_stats(l.nd, &st);
	CHECK_EQ(st.rx_dropped, 0);
	CHECK(st.tx_frames >= N + 1);
	rec_detach_free(&l.nic, l.nd);
out:
	del_link("vvtap3");
}

static int refusals_without_net_admin(void)
{
	if (drop_caps(CAPBIT(CAP_NET_ADMIN)) < 0) {
		perror("capset");
		return 1;
	}
	refused("vvnone0", "tap device 'vvnone0' does not exist: create it "
		"with 'ip tuntap add dev vvnone0 mode tap user $USER'");
	CHECK(if_nametoindex("vvnone0") == 0);
	refused("vvtap2", "tap device 'vvtap2' belongs to user 4242, and "
		"opening another's tap needs CAP_NET_ADMIN");
	/* A tap of our own (uid 0) opens without it. */
	{
		char err[512] = "";
		struct netdev *nd = net_tap_new("vvtap4", err, sizeof(err));

		CHECK(nd != NULL);
		if (!nd)
			fprintf(stderr, "  vvtap4: %s\n", err);
		net_free(nd);
	}
	return 0;
}

/* /dev/net/tun itself: a node we may not open, and none at all (in the
 * child's own mount namespace). */
static int tun_node_refusals(void)
{
	char node[700], dir[700];
	int fd;

	if (unshare(CLONE_NEWNS) < 0 ||
	    mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0) {
		perror("mount namespace");
		return 1;
	}
	snprintf(node, sizeof(node), "%s/tun", tmp);
	fd = open(node, O_CREAT | O_WRONLY, 0);
	close(fd);
	chmod(node, 0);
	if (mount(node, "/dev/net/tun", "none", MS_BIND, NULL) < 0) {
		perror("bind mount");
		return 1;
	}
	if (drop_caps(CAPBIT(CAP_DAC_OVERRIDE) |
		      CAPBIT(CAP_DAC_READ_SEARCH)) < 0)
		return 1;
	refused("vvtap4", "/dev/net/tun: permission denied: its mode is 0000 "
		"(owner 0, group 0), usually 0666: chmod 0666 /dev/net/tun");
	snprintf(dir, sizeof(dir), "%s/empty", tmp);
	mkdir(dir, 0755);
	umount("/dev/net/tun");
	if (mount(dir, "/dev/net", "none", MS_BIND, NULL) < 0) {
		perror("bind mount");
		return 1;
	}
	refused("vvtap4", "/dev/net/tun: does not exist: load the tun module");
	return 0;
}

static void test_refusals(void)
{
	char err[512] = "";
	struct netdev *nd;

	refused("", "tap device name '': 1 to 15 characters");
	refused("a-name-too-long-x", "1 to 15 characters");
	refused("a/b", "none of '/'");
	refused("tap%d", "none of '/', ':', '%'");

	/* Without CAP_NET_ADMIN (children: no backend thread runs now). */
	CHECK(sh("ip tuntap add dev vvtap2 mode tap user 4242") == 0);
	CHECK(sh("ip tuntap add dev vvtap4 mode tap user 0") == 0);
	in_child(refusals_without_net_admin);
	in_child(tun_node_refusals);

	/* Busy: one opener at a time. */
	nd = net_tap_new("vvtap4", err, sizeof(err));
	CHECK(nd != NULL);
	refused("vvtap4", "tap device 'vvtap4' is busy: another program "
		"(another VM?) has it open");
	net_free(nd);

	/* Not a tap. */
	refused("lo", "'lo' is not a tap device: it is a network interface "
		"of another kind");
	CHECK(sh("ip tuntap add dev vvtun0 mode tun") == 0);
	refused("vvtun0", "'vvtun0' is a TUN device (IP packets), not a TAP "
		"device (Ethernet frames)");
	CHECK(sh("ip tuntap add dev vvtapmq mode tap multi_queue") == 0);
	refused("vvtapmq", "tap device 'vvtapmq' is multi-queue");

	/* Even with CAP_NET_ADMIN a missing tap is refused, not made. */
	refused("vvnew0", "tap device 'vvnew0' does not exist: create it");
	CHECK(if_nametoindex("vvnew0") == 0);
	(void)nd;

	del_link("vvtap2");
	del_link("vvtap4");
	del_link("vvtun0");
	del_link("vvtapmq");
}

/* QEMU's bridge helper, with an ACL of our own: /etc seen through an
 * overlay (in this process's mount namespace) adding qemu/bridge.conf. */
static bool acl_overlay(const char *acl)
{
	char d[700], opts[2200];
	FILE *f;

	snprintf(d, sizeof(d), "%s/ov", tmp);
	mkdir(d, 0755);
	if (mount("tmpfs", d, "tmpfs", 0, "size=1m") < 0)
		return false;
	static const char *const dirs[] = { "upper", "upper/qemu", "work" };

	for (unsigned i = 0; i < 3; i++) {
		snprintf(opts, sizeof(opts), "%s/%s", d, dirs[i]);
		mkdir(opts, 0755);
	}
	snprintf(opts, sizeof(opts), "%s/upper/qemu/bridge.conf", d);
	f = fopen(opts, "w");
	if (!f)
		return false;
	fputs(acl, f);
	fclose(f);
	snprintf(opts, sizeof(opts), "lowerdir=/etc,upperdir=%s/upper,"
		 "workdir=%s/work", d, d);
	return mount("overlay", "/etc", "overlay", 0, opts) == 0;
}

static void test_bridge_helper(void)
{
	struct link l = { .host_ip = ip4("192.168.78.1"),
			  .guest_ip = ip4("192.168.78.2") };
	char err[512] = "", p[128], master[64] = "";
	ssize_t n;

	if (access(NET_BRIDGE_HELPER, X_OK) < 0) {
		printf("  (skipped: no %s)\n", NET_BRIDGE_HELPER);
		return;
	}
	if (!acl_overlay("allow vvbr0\n")) {
		printf("  (skipped: cannot put an ACL over /etc: %s)\n",
		       strerror(errno));
		return;
	}
	CHECK(sh("ip link add vvbr0 type bridge") == 0);
	CHECK(sh("ip addr add 192.168.78.1/24 dev vvbr0") == 0);
	CHECK(sh("ip link set vvbr0 up") == 0);
	CHECK(sh("ip link add vvbr1 type bridge") == 0);

	l.nd = net_tap_bridge_new("vvbr0", NULL, err, sizeof(err));
	CHECK(l.nd != NULL);
	if (!l.nd) {
		fprintf(stderr, "  net_tap_bridge_new: %s\n", err);
		goto refusals;
	}
	CHECK(!strcmp(net_kind(l.nd), "tap"));
	rec_attach(&l.nic, l.nd, &lock, 100000);
	/* The helper's tap (tap0 in this namespace) is in the bridge. */
	snprintf(p, sizeof(p), "/sys/class/net/tap0/master");
	n = readlink(p, master, sizeof(master) - 1);
	CHECK(n > 0 && strstr(master, "vvbr0"));
	CHECK(arp_host(&l));
	rec_detach_free(&l.nic, l.nd);
	CHECK(if_nametoindex("tap0") == 0);	/* gone with the backend */
refusals:
	CHECK(net_tap_bridge_new("vvbr1", NULL, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "bridge helper for 'vvbr1': access denied by acl "
		      "file (name the bridge in /etc/qemu/bridge.conf") != NULL);
	CHECK(!strchr(err, '\n'));
	CHECK(net_tap_bridge_new("vvbr0", "/nonexistent/helper", err,
				 sizeof(err)) == NULL);
	CHECK(strstr(err, "bridge helper /nonexistent/helper: No such file") !=
	      NULL);
	CHECK(net_tap_bridge_new("a/b", NULL, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "bridge name 'a/b'") != NULL);
	del_link("vvbr0");
	del_link("vvbr1");
	umount("/etc");
	snprintf(p, sizeof(p), "%s/ov", tmp);
	umount(p);
}

int main(void)
{
	char cmd[128];

	sandbox_test_threads(false);
	if (geteuid() != 0)
		SKIP("needs root to make tap devices");
	if (access("/dev/net/tun", R_OK | W_OK) < 0)
		SKIP("/dev/net/tun: %s", strerror(errno));
	if (sh("ip -V") != 0)
		SKIP("no iproute2 'ip' command");
	/* Our own network and mount namespaces: every device made here goes
	 * away with this process, whatever fails. */
	if (unshare(CLONE_NEWNET | CLONE_NEWNS) < 0)
		SKIP("cannot make a network namespace: %s", strerror(errno));
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0)
		SKIP("cannot make mounts private: %s", strerror(errno));
	/* A sysfs of this namespace: /sys/class/net shows our devices. */
	if (mount("sysfs", "/sys", "sysfs", 0, NULL) < 0)
		SKIP("cannot mount this namespace's sysfs: %s", strerror(errno));
	if (!mkdtemp(tmp))
		SKIP("mkdtemp: %s", strerror(errno));
	RUN_TEST(test_refusals);
	RUN_TEST(test_arp_and_ping);
	RUN_TEST(test_rx_held_in_kernel);
	RUN_TEST(test_offloads_cleared);
	RUN_TEST(test_bridge_helper);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmp);
	return check_finish();
}
