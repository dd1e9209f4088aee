/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/virtio/virtio_net.h - the virtio network device (virtio 1.2
 * §5.1) on the PCI transport (virtio_pci.h, PCI ID 1af4:1041, class
 * 0x020000) over a network backend (net/net.h).
 *
 * Queues: receiveq 0, transmitq 1, controlq 2 (§5.1.2); one pair, no
 * VIRTIO_NET_F_MQ.  Every frame in either direction is preceded by the
 * 12-byte struct virtio_net_hdr, num_buffers included (VERSION_1, §5.1.6).
 *
 * Features offered:
 *  - MAC (the configured address in config space), STATUS (link state from
 *    the backend's cable: net_link_up(), and a configuration interrupt when
 *    it changes), MRG_RXBUF (a frame may span several receive buffers);
 *  - CSUM: the driver may hand frames with VIRTIO_NET_HDR_F_NEEDS_CSUM;
 *    they go to the backend as they are if it carries partial checksums
 *    (net_caps(): TAP), or net.c completes the checksum in software;
 *  - with a backend that carries offloads (TAP): GUEST_CSUM, HOST_TSO4/6,
 *    GUEST_TSO4/6, HOST_ECN, GUEST_ECN - a 64 KiB TCP segment crosses as
 *    one frame in either direction, the header's fields passed through
 *    (net_send_offload, receive_offload); what the driver takes on
 *    receive is set at FEATURES_OK (net_set_rx_offloads), and back to
 *    none at reset;
 *  - CTRL_VQ with CTRL_RX + CTRL_RX_EXTRA (promiscuous, all-multicast,
 *    all-unicast, no-multicast, no-unicast, no-broadcast), the MAC filter
 *    table (VIRTIO_NET_CTRL_MAC_TABLE_SET, up to VIRTIO_NET_MAC_TABLE
 *    addresses of each kind: more switch that kind to accept-all, as
 *    §5.1.6.5.2 allows), CTRL_MAC_ADDR (ADDR_SET; the address then shows
 *    in config space), GUEST_ANNOUNCE (VIRTIO_NET_S_ANNOUNCE, ANNOUNCE_ACK).
 * Not offered: the offloads above with a backend of plain frames (NAT:
 * libslirp takes whole frames only, as QEMU offers none with -nic user);
 * UFO/USO, CTRL_GUEST_OFFLOADS, CTRL_VLAN, MTU, SPEED_DUPLEX, MQ, RSS.
 *
 * Receive filtering (with CTRL_RX negotiated; without it every frame is
 * taken): after a reset the device is promiscuous until the driver says
 * otherwise (what a driver that never sends CTRL_RX expects).  Otherwise a
 * frame is taken if broadcast (unless no-broadcast), multicast and
 * all-multicast or in the table (unless no-multicast), unicast to the
 * device's address, all-unicast or in the table (unless no-unicast).
 *
 * Hostile input: a receive chain with device-readable buffers or fewer
 * than 12 writable bytes, a control chain without a writable byte, and
 * whatever virtqueue.h catches break the queue (NEEDS_RESET).  Transmit
 * frames with a short header, a GSO type or NEEDS_CSUM not negotiated, a
 * header that does not fit the frame (net_send_offload: csum_start +
 * csum_offset + 2 or hdr_len beyond it, GSO without NEEDS_CSUM or with
 * gso_size 0), or a length outside NET_FRAME_MIN..NET_FRAME_MAX are
 * dropped (the chain is returned) and counted; control commands with a bad class, length or feature are
 * answered VIRTIO_NET_ERR.  Warnings are rate limited.
 *
 * Threads and flow control: everything runs with the device lock held.
 * Transmit runs on the driver's notify (a vCPU's exit, or the machine's
 * I/O thread with an ioeventfd: virtio_pci.h), at most
 * VIRTIO_NET_TX_BATCH frames at a time; net_send() copies each frame, so
 * nothing is in flight after it returns.  When the backend's queue is full (-EAGAIN) the chain goes
 * back to the ring and the device waits for the backend's tx_ready; when
 * the batch runs out with frames left, net_tx_kick() has the backend's
 * thread call tx_ready, and the device goes on from there: the driver
 * (which, with EVENT_IDX, is not asked to kick again) loses nothing and no
 * vCPU loops.  The control queue works the same way.  Receive runs on the
 * backend's thread: a frame fills one buffer (or, with MRG_RXBUF, as many
 * as it needs); with too few buffers the chains go back and receive
 * answers 0, and the receive queue's notify calls net_rx_ready().  A frame
 * that can never fit (bigger than one buffer without MRG_RXBUF, or than
 * the whole ring) is dropped and counted.  While the driver is not running
 * (no DRIVER_OK, NEEDS_RESET, receive queue not enabled) or the cable is
 * pulled, frames are dropped as by an unconfigured NIC.
 */
#ifndef VIVARIUM_VIRTIO_NET_H
#define VIVARIUM_VIRTIO_NET_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../device.h"
#include "../iofd.h"

struct pci_host;
struct guest_mem;
struct netdev;
struct virtio_net;

/* Feature bits (§5.1.3). */
#define VIRTIO_NET_F_CSUM		0
#define VIRTIO_NET_F_GUEST_CSUM		1
#define VIRTIO_NET_F_MTU		3
#define VIRTIO_NET_F_MAC		5
#define VIRTIO_NET_F_GUEST_TSO4		7
#define VIRTIO_NET_F_GUEST_TSO6		8
#define VIRTIO_NET_F_GUEST_ECN		9
#define VIRTIO_NET_F_GUEST_UFO		10
#define VIRTIO_NET_F_HOST_TSO4		11
#define VIRTIO_NET_F_HOST_TSO6		12
#define VIRTIO_NET_F_HOST_ECN		13
#define VIRTIO_NET_F_HOST_UFO		14
#define VIRTIO_NET_F_MRG_RXBUF		15
#define VIRTIO_NET_F_STATUS		16
#define VIRTIO_NET_F_CTRL_VQ		17
#define VIRTIO_NET_F_CTRL_RX		18
#define VIRTIO_NET_F_CTRL_VLAN		19
#define VIRTIO_NET_F_CTRL_RX_EXTRA	20
#define VIRTIO_NET_F_GUEST_ANNOUNCE	21
#define VIRTIO_NET_F_MQ			22
#define VIRTIO_NET_F_CTRL_MAC_ADDR	23

/* Configuration layout (§5.1.4), byte offsets; status bits. */
#define VIRTIO_NET_CFG_MAC		0	/* 6 bytes */
#define VIRTIO_NET_CFG_STATUS		6	/* le16 */
#define VIRTIO_NET_CFG_MAX_VQ_PAIRS	8	/* le16, 1 */
#define VIRTIO_NET_CFG_LEN		10
#define VIRTIO_NET_S_LINK_UP		1
#define VIRTIO_NET_S_ANNOUNCE		2

/* struct virtio_net_hdr (§5.1.6): flags, gso_type, le16 hdr_len,
 * gso_size, csum_start, csum_offset, num_buffers. */
#define VIRTIO_NET_HDR_LEN		12
#define VIRTIO_NET_HDR_F_NEEDS_CSUM	1
#define VIRTIO_NET_HDR_F_DATA_VALID	2
#define VIRTIO_NET_HDR_GSO_NONE		0
#define VIRTIO_NET_HDR_GSO_TCPV4	1
#define VIRTIO_NET_HDR_GSO_TCPV6	4
#define VIRTIO_NET_HDR_GSO_ECN		0x80

/* Control queue (§5.1.6.5): class, command, data; then one ack byte. */
#define VIRTIO_NET_OK			0
#define VIRTIO_NET_ERR			1
#define VIRTIO_NET_CTRL_RX		0
#define VIRTIO_NET_CTRL_RX_PROMISC	0
#define VIRTIO_NET_CTRL_RX_ALLMULTI	1
#define VIRTIO_NET_CTRL_RX_ALLUNI	2
#define VIRTIO_NET_CTRL_RX_NOMULTI	3
#define VIRTIO_NET_CTRL_RX_NOUNI	4
#define VIRTIO_NET_CTRL_RX_NOBCAST	5
#define VIRTIO_NET_CTRL_MAC		1
#define VIRTIO_NET_CTRL_MAC_TABLE_SET	0
#define VIRTIO_NET_CTRL_MAC_ADDR_SET	1
#define VIRTIO_NET_CTRL_VLAN		2
#define VIRTIO_NET_CTRL_ANNOUNCE	3
#define VIRTIO_NET_CTRL_ANNOUNCE_ACK	0

#define VIRTIO_NET_RXQ			0
#define VIRTIO_NET_TXQ			1
#define VIRTIO_NET_CTRLQ		2
#define VIRTIO_NET_QUEUE_SIZE		256
#define VIRTIO_NET_MAC_TABLE		64	/* addresses of each kind */
#define VIRTIO_NET_TX_BATCH		128	/* frames per turn: half a ring */

struct virtio_net_config {
	struct pci_host *pci;
	uint8_t devfn;			/* slot << 3 | function */
	const struct guest_mem *mem;
	pthread_mutex_t *lock;		/* the machine's device lock */
	struct iofd iofd;		/* doorbells (iofd.h); zero: none */
	struct netdev *backend;		/* stays the caller's; attached here */
	uint8_t mac[6];			/* the NIC's address (VIRTIO_NET_F_MAC) */
	/* The machine's timers (timer.h), for the announce after a load;
	 * NULL: none. */
	struct vtimer_queue *timers;
};

/*
 * virtio_net_new - create the device, put it on @cfg->pci at @cfg->devfn
 * and attach it to @cfg->backend (net_attach()).  Call with the device
 * lock held (or before the VM runs).  Returns the device, or NULL with a
 * one-line reason in @err (incomplete configuration, a multicast or
 * all-zero MAC, the devfn taken, another NIC on the backend, out of
 * memory).
 */
struct virtio_net *virtio_net_new(const struct virtio_net_config *cfg,
				  char *err, size_t errlen);
/* Detach from the backend (no callback runs afterwards), take the device
 * off the bus and free it; the device lock held.  NULL is fine. */
void virtio_net_free(struct virtio_net *vn);

/*
 * virtio_net_announce - ask the guest to announce itself (gratuitous ARP,
 * unsolicited neighbour advertisements: §5.1.6.5.4), e.g. after the
 * machine was restored or moved: with GUEST_ANNOUNCE negotiated and the
 * driver running, set VIRTIO_NET_S_ANNOUNCE and send a configuration
 * interrupt; the driver's ANNOUNCE_ACK clears it.  Returns whether it
 * asked.  Device lock held.  The device does it by itself
 * VIRTIO_NET_ANNOUNCE_DELAY_NS of the machine's time after a load (a
 * restored snapshot: switches and the host's bridge learn where the MAC
 * is now), when it was given timers: late enough that the vCPUs run with
 * their restored interrupt controllers, as QEMU's announce timer waits.
 */
#define VIRTIO_NET_ANNOUNCE_DELAY_NS	50000000ull
bool virtio_net_announce(struct virtio_net *vn);

/* What the device itself dropped (the backend counts its own, net.h). */
struct virtio_net_stats {
	uint64_t rx_filtered;		/* not for this NIC (receive filter) */
	uint64_t rx_oversize;		/* larger than the buffers can take */
	uint64_t rx_not_ready;		/* driver not running, cable pulled */
	uint64_t tx_bad;		/* bad header, checksum request, GSO */
};
/* Device lock held. */
void virtio_net_get_stats(const struct virtio_net *vn,
			  struct virtio_net_stats *st);

/*
 * Its lifecycle in the machine's device table (device.h):
 * virtio_net_device_ops, "virtio-net".  reset: the driver's reset (status
 * 0), back to the configured MAC, promiscuous, empty tables.  quiesce:
 * none (nothing is in flight outside the device lock).
 *
 * State VIRTIO_NET_STATE_TYPE, version 1: (the transport's
 * VIRTIO_PCI_STATE_TYPE (virtio_pci.h), the MAC address in use (6 bytes),
 * receive mode bits (VIRTIO_NET_RXMODE_*), the unicast filter table and
 * the multicast one (6 bytes per address, at most VIRTIO_NET_MAC_TABLE
 * each), an announce pending (VIRTIO_NET_S_ANNOUNCE), work left for the
 * backend's turn (VIRTIO_NET_PENDING_*)).  The cable is the backend's and
 * read live.  load checks every value against the state's own negotiated
 * features (e.g. a MAC other than the configured one needs CTRL_MAC_ADDR)
 * and refuses with one line; with work pending it asks for the backend's
 * turn (net_tx_kick()).
 */
#define VIRTIO_NET_RXMODE_PROMISC	0x01
#define VIRTIO_NET_RXMODE_ALLMULTI	0x02
#define VIRTIO_NET_RXMODE_ALLUNI	0x04
#define VIRTIO_NET_RXMODE_NOMULTI	0x08
#define VIRTIO_NET_RXMODE_NOUNI		0x10
#define VIRTIO_NET_RXMODE_NOBCAST	0x20
#define VIRTIO_NET_RXMODE_UNI_OVERFLOW	0x40	/* table too small: all unicast */
#define VIRTIO_NET_RXMODE_MULTI_OVERFLOW 0x80	/* ...: all multicast */
#define VIRTIO_NET_PENDING_TX		0x01
#define VIRTIO_NET_PENDING_CTRL		0x02
#define VIRTIO_NET_STATE_TYPE \
	"((yttuuqqyyba(qqttt(qbbbbtttqqqbb)))ayqayayby)"
extern const struct device_ops virtio_net_device_ops;

/* The transport, for tests and for the machine's interrupt wiring. */
struct virtio_pci *virtio_net_transport(struct virtio_net *vn);

#endif
