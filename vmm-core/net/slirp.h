/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/net/slirp.h - the NAT backend ("user networking"): a TCP/IP
 * stack in the VMM (libslirp) that the guest talks to as its LAN and that
 * makes ordinary host sockets for the guest's connections.  No privileges.
 *
 * The guest's network is QEMU's user-net: with the default 10.0.2.0/24,
 *   10.0.2.2   the gateway; connections to it reach the host's 127.0.0.1
 *   10.0.2.3   DNS, forwarded to the host's resolver (/etc/resolv.conf)
 *   10.0.2.15  the first address DHCP hands out (16 of them: .15-.30)
 * and IPv6 as QEMU has it: prefix fec0::/64 by router advertisement,
 * gateway fec0::2, DNS fec0::3 (off with ipv6_off).  The gateway, DNS and
 * DHCP addresses move with @net: network + 2, + 3 and + 15.
 *
 * The backend answers pings to the gateway and DNS addresses itself;
 * pings to the outside work where the host lets unprivileged processes
 * make ICMP sockets (net.ipv4.ping_group_range).  Otherwise only TCP and
 * UDP cross.
 *
 * Host forwards ("hostfwd") listen on a host address and port and connect
 * to the guest: as QEMU's hostfwd, but a forward without a host address
 * listens on 127.0.0.1 only, not on every interface (QEMU's default).
 *
 * Bounds (libslirp 4.7's, and ours).  Guest -> host data waits in a
 * connection's buffer of 128 KiB whose free space is the TCP window the
 * guest sees.  Host -> guest data is read from a host socket only while
 * that connection's 128 KiB buffer toward the guest is less than half
 * full, and leaves it only as the guest's TCP window allows; a UDP socket
 * is read only while at most 4 of its datagrams wait in libslirp's output
 * queue; and no host socket is read at all while the backend's receive
 * queue (net.h) is half full.  So what the guest does not take waits in
 * the host kernel's socket buffers (a TCP sender is slowed, UDP dropped
 * there).
 * The number of connections is bounded too (max_conns): past it the
 * forwards stop accepting (connections wait in the kernel's backlog) and
 * the guest's new TCP connections, UDP datagrams and pings are dropped
 * (not DHCP): existing connections go on.
 */
#ifndef VIVARIUM_NET_SLIRP_H
#define VIVARIUM_NET_SLIRP_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net.h"

/* A host forward: connections to host_addr:host_port (UDP datagrams with
 * @udp) go to guest_addr:guest_port.  Ports in host order; addresses in
 * network order (struct in_addr); guest_addr 0.0.0.0 means the first
 * DHCP address (10.0.2.15 by default). */
struct net_hostfwd {
	bool udp;
	struct in_addr host_addr;
	uint16_t host_port;
	struct in_addr guest_addr;
	uint16_t guest_port;
};

/*
 * net_hostfwd_parse - QEMU's syntax, "[tcp|udp]:[HOSTADDR]:HOSTPORT-
 * [GUESTADDR]:GUESTPORT": "tcp:127.0.0.1:2222-:22", "udp::5353-10.0.2.15:53",
 * "tcp::8080-:80", "::8080-:80" (protocol empty: tcp); the protocol field
 * may also be left out altogether ("127.0.0.1:2222-:22", ":2222-:22").
 * An empty HOSTADDR is 127.0.0.1, an empty GUESTADDR 0.0.0.0 (the DHCP
 * address, see above).  Addresses are dotted quads, ports decimal 1-65535.
 * Returns 0, or -EINVAL with one line in @err ("hostfwd 'S': what").
 */
int net_hostfwd_parse(const char *s, struct net_hostfwd *out, char *err,
		      size_t errlen);

#define NET_SLIRP_MAX_CONNS	512	/* default of max_conns */

struct net_slirp_config {
	const char *net;		/* "A.B.C.D/N", N 8-27; NULL: "10.0.2.0/24" */
	bool restrict_;			/* guest reaches nothing but the forwards */
	bool ipv6_off;			/* no IPv6 (default: on, as QEMU) */
	const struct net_hostfwd *fwd;	/* @nfwd forwards */
	unsigned nfwd;
	const char *hostname;		/* DHCP option 12 to the guest; NULL: none */
	const char *const *dns_search;	/* DHCP option 119, NULL-terminated; NULL: none */
	unsigned max_conns;		/* sockets; 0: NET_SLIRP_MAX_CONNS */
};

/*
 * net_slirp_new - a NAT backend (net_kind() "nat"), its thread running.
 * @cfg NULL: every default.  Each forward is listening when it returns;
 * one that cannot listen (the port is taken: "hostfwd tcp:127.0.0.1:2222:
 * address already in use") fails the whole call, with one line in @err.
 * A UDP forward on a port whose other user set SO_REUSEADDR is not seen
 * as taken (the kernel lets both bind).
 *
 * restrict_: the guest gets DHCP (without router and DNS options) and
 * answers to ARP, and can answer connections that come in through TCP
 * forwards; its own TCP connections are reset, its UDP (DNS included)
 * dropped, its pings answered only by the gateway and DNS addresses.  So
 * UDP forwards carry host -> guest only.
 *
 * NULL with @err on failure (bad @net, a forward's guest address outside
 * it, an address taken, no memory...).
 */
struct netdev *net_slirp_new(const struct net_slirp_config *cfg, char *err,
			     size_t errlen);

/*
 * Saved state (net.h's net_state_save()/net_state_load(), kind "nat"):
 * NET_SLIRP_STATE_TYPE, version NET_SLIRP_STATE_VERSION: (libslirp's state
 * version, slirp_state_version(); the libslirp that wrote it,
 * slirp_version_string(), for messages; what slirp_state_save() wrote).
 *
 * What that holds is libslirp's choice (its src/state.c, state version 4
 * since libslirp 4.0): the DHCP lease table (which MAC has which of the 16
 * addresses) and the IP identification counter, plus the connections of
 * guest forwards ("guestfwd"), which this backend does not make.  Not the
 * guest's TCP connections through the NAT nor those of host forwards, not
 * the ARP table: after a restore the guest keeps its address (its lease is
 * still its own, another MAC does not get it), the NAT learns the guest's
 * MAC again by ARP (a first reply waits for it, or for virtio-net's
 * announce), and a connection the guest had gets a reset at its next
 * segment.  The forwards listen as configured: they belong to the backend
 * (made with it, never by a load), so a load adds none.
 *
 * Load: a state of another libslirp state version is not used (one
 * warning; the NAT goes on as it is: fresh after a start).  Of the same
 * version, it must be exactly what this libslirp writes for a backend
 * without guest forwards - as long as the backend's own save, with no
 * connections in it - or it is refused ("nat: ... corrupt"): libslirp
 * reads a short state as zeros, and would size buffers from one with
 * connections.  Into a running backend (a revert within the process) the
 * lease table is replaced; its live connections stay and meet the
 * guest's resets.  No socket is made or bound by a load or a save.
 */
#define NET_SLIRP_STATE_TYPE	"(isay)"
#define NET_SLIRP_STATE_VERSION	1u

#endif
