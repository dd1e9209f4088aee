/* SPDX-License-Identifier: MIT */
/*
 * app/nic.h - a VM's network cards as the user writes them: the --nic
 * option of `run`, `create` and `start`, and vm.conf's [nicN] groups
 * (docs/vm-conf.md), turned into machine NICs on host backends.
 *
 *   --nic MODEL[,nat][,hostfwd=RULE]...[,restrict=on|off][,mac=MAC][,link=up|down]
 *   --nic MODEL,tap,ifname=NAME[,mac=MAC][,link=up|down]
 *   --nic MODEL,bridge,br=NAME[,mac=MAC][,link=up|down]
 *   --nic tap,ifname=NAME      (MODEL defaults to virtio, the backend to nat)
 *   --nic none
 *
 * MODEL is virtio (virtio-net) or e1000 (Intel 82540EM); RULE is QEMU's
 * hostfwd syntax ([tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT),
 * except that an empty HOSTADDR means 127.0.0.1.
 *
 * Errors: negative errno with one line in @err (no newline).
 */
#ifndef VIVARIUM_NIC_H
#define VIVARIUM_NIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "machine.h"

struct netdev;

#define NIC_MAX_FWD		16	/* host forwards per NIC */
#define NIC_IFNAME_MAX		16	/* IFNAMSIZ, with the NUL */

enum nic_network {
	NIC_NET_NAT = 0,	/* libslirp: DHCP, DNS, outgoing, hostfwd */
	NIC_NET_TAP,		/* an existing tap device */
	NIC_NET_BRIDGE,		/* a tap QEMU's bridge helper puts on a bridge */
};

struct nic_spec {
	enum machine_nic_model model;
	enum nic_network net;
	bool has_mac;			/* else derived from the VM's UUID */
	uint8_t mac[6];
	char ifname[NIC_IFNAME_MAX];	/* tap: the device; bridge: the bridge */
	char *fwd[NIC_MAX_FWD];		/* nat: hostfwd rules, g_malloc'ed */
	unsigned nfwd;
	bool restricted;		/* nat: only the forwards reach the guest */
	bool link_down;			/* start with the cable pulled */
};

/* Names as written in --nic and vm.conf. */
const char *nic_model_name(enum machine_nic_model model);
const char *nic_net_name(enum nic_network net);

/* "52:54:00:12:34:56" (case-insensitive, ':' or '-') into @mac: 0 or
 * -EINVAL (also for a multicast address, which no NIC may have). */
int nic_parse_mac(const char *s, uint8_t mac[6]);
/* @mac as "xx:xx:xx:xx:xx:xx" into @buf (18 bytes at least). */
const char *nic_mac_str(const uint8_t mac[6], char *buf, size_t len);

/*
 * nic_spec_parse - one --nic value (not "none", which the caller handles)
 * into @out (nic_spec_clear() it).  Each hostfwd rule is checked with the
 * NAT backend's own parser.  0 or -EINVAL + @err.
 */
int nic_spec_parse(const char *spec, struct nic_spec *out, char *err,
		   size_t errlen);
void nic_spec_clear(struct nic_spec *s);

/*
 * nic_spec_from_keyfile / nic_spec_to_keyfile - the [nicN] group @group of
 * vm.conf: model, network, mac, ifname, hostfwd (a ';'-separated list),
 * restrict, link.  From: 0, -ENOENT (no such group), -EINVAL + @err.
 */
int nic_spec_from_keyfile(GKeyFile *kf, const char *group,
			  struct nic_spec *out, char *err, size_t errlen);
void nic_spec_to_keyfile(const struct nic_spec *s, GKeyFile *kf,
			 const char *group);

/*
 * nic_open - the host backend for @s (a slirp NAT with its forwards bound,
 * or the tap device opened) and the machine NIC on it: @out->backend is
 * the new backend (net_free() it after the machine is gone), with the
 * cable as @s says.  A forward on a busy port, a missing tap device, a
 * permission missing: -errno + one line in @err, nothing left open.
 * @mac: the MAC to use when @s has none (the VM's derived one).
 */
int nic_open(const struct nic_spec *s, const uint8_t mac[6],
	     struct machine_nic *out, char *err, size_t errlen);

/* One line describing @s for `show`: "virtio-net 52:54:00:.. nat
 * hostfwd=tcp:127.0.0.1:2222-:22" (g_free it).  @mac as for nic_open. */
char *nic_describe(const struct nic_spec *s, const uint8_t mac[6]);

#endif
