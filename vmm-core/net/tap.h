/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/net/tap.h - the TAP backend: the guest's frames go to and come
 * from a Linux tap device (an Ethernet interface of the host whose other
 * end is a file descriptor), which the host bridges or routes.
 *
 * The tap is opened without a packet-information header and with a
 * virtio-net header (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, 10 bytes): one
 * read or write, one frame behind its header, so partial checksums and
 * TCP segments up to 64 KiB pass both ways (net_caps() NET_CAP_ALL); what
 * the kernel may hand us follows the NIC's net_set_rx_offloads()
 * (TUNSETOFFLOAD), and is off until it asks.
 * Frames are read only while the backend's receive queue has room, so
 * what the guest does not take waits in the tap's own queue (txqueuelen
 * frames, 1000 by default; the kernel drops past that).
 *
 * Kernel documentation: Documentation/networking/tuntap.rst.
 */
#ifndef VIVARIUM_NET_TAP_H
#define VIVARIUM_NET_TAP_H

#include <stddef.h>

#include "net.h"

/*
 * net_tap_new - a TAP backend (net_kind() "tap") on the tap device
 * @ifname (1-15 characters), its thread running.
 *
 * Opening an existing tap needs /dev/net/tun read-write and either the
 * tap to belong to this user or group ("ip tuntap add dev NAME mode tap
 * user USER") or CAP_NET_ADMIN.  A tap that does not exist is refused,
 * even with CAP_NET_ADMIN (the kernel would make one, down and
 * unconfigured: a VM without a network, and a mistyped name would leave
 * devices behind).  Only one process at a time can hold a tap.
 *
 * NULL with one line in @err saying what and what to do:
 * "/dev/net/tun: permission denied: ...", "tap device 'x' does not exist:
 * create it with ...", "tap device 'x' is busy: ...".
 */
struct netdev *net_tap_new(const char *ifname, char *err, size_t errlen);

/* Where Debian's qemu-system-common installs QEMU's bridge helper. */
#define NET_BRIDGE_HELPER	"/usr/lib/qemu/qemu-bridge-helper"

/*
 * net_tap_bridge_new - a TAP backend on a new tap device that QEMU's bridge
 * helper (@helper, NULL: NET_BRIDGE_HELPER) makes, attaches to the bridge
 * @bridge and brings up: what QEMU's "-netdev bridge,br=NAME" does, for
 * users without CAP_NET_ADMIN.  The helper must be allowed to (setuid
 * root, or run by a process with CAP_NET_ADMIN) and the bridge named in
 * its ACL, /etc/qemu/bridge.conf ("allow br0").  The tap goes away when
 * the backend closes it.
 *
 * The helper's protocol (QEMU's qemu-bridge-helper.c): run as
 * "qemu-bridge-helper --br=BRIDGE --fd=N" with N one end of a Unix stream
 * socket pair; it sends the tap's fd back over it (SCM_RIGHTS, one byte
 * of data) and exits 0, or prints why not on stderr and exits 1.  It is
 * asked for a virtio-net header (--use-vnet); a tap it sends without one
 * works with plain frames (net_caps() 0).
 *
 * NULL with one line in @err (the helper's own message and a hint).
 */
struct netdev *net_tap_bridge_new(const char *bridge, const char *helper,
				  char *err, size_t errlen);

#endif
