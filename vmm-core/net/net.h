/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/net/net.h - a network backend (the host side of a NIC) and the
 * interface between it and the NIC model that the guest drives.
 *
 * What passes are whole Ethernet frames (destination MAC first, no FCS),
 * at most NET_FRAME_MAX bytes, with complete checksums - unless both ends
 * speak offloads: a backend that can (TAP with its vnet header: net_caps())
 * carries frames with a partial checksum or a TCP segmentation offload
 * (struct net_offload, the virtio-net header's fields) both ways, so a
 * guest's 64 KiB TCP segment crosses as one frame instead of 45.  The NIC
 * sends them with net_send_offload() and says with net_set_rx_offloads()
 * which it takes on receive; whatever one end cannot take, net.c completes
 * (checksums) or drops (segments) in between.
 *
 * Threads.  Every backend runs on a thread of its own (created by its
 * constructor), never on a vCPU:
 *  - guest -> network: the NIC calls net_send() with the device lock held
 *    (a vCPU's exit); the frame is copied into the backend's bounded
 *    transmit queue and the thread sends it.  A full queue answers -EAGAIN:
 *    the NIC leaves the rest of its transmit ring for later, and the
 *    backend calls the NIC's tx_ready when the queue has drained, so a
 *    guest flooding packets slows its own network and nothing else.
 *  - network -> guest: the thread takes the device lock and offers each
 *    frame to the NIC's receive.  A NIC without receive buffers answers 0:
 *    the frame waits in the bounded receive queue until the NIC calls
 *    net_rx_ready() (the guest added buffers); frames that find the queue
 *    full are dropped (and counted), as a real wire drops them.
 *
 * A backend outlives the machine's resets: it is made by the program with
 * the machine's configuration, and each build of the machine's NIC attaches
 * to it, each teardown detaches.  The "cable" (link up or down) belongs to
 * the backend for the same reason.
 *
 * Locks: net_attach()/net_detach() are called with the device lock held;
 * the NIC's callbacks run with it held; net_send()/net_rx_ready() take only
 * the backend's internal mutex (order: device lock, then the backend's).
 */
#ifndef VIVARIUM_NET_H
#define VIVARIUM_NET_H

#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct netdev;

/* 64 KiB of payload plus an Ethernet and VLAN header: room for a
 * segmentation offload frame. */
#define NET_FRAME_MAX		(65535 + 18)
#define NET_FRAME_MIN		14	/* an Ethernet header */
/* Bounds of each direction's queue. */
#define NET_QUEUE_FRAMES	256
#define NET_QUEUE_BYTES		(4u << 20)

/*
 * A frame's offload metadata: the fields of struct virtio_net_hdr (virtio
 * 1.2 §5.1.6, which Linux's tap vnet header shares), host byte order.
 * All zero: a plain frame, checksums complete.
 */
struct net_offload {
	uint8_t flags;		/* NET_OFF_F_* */
	uint8_t gso_type;	/* NET_GSO_*, | NET_GSO_ECN */
	uint16_t hdr_len;	/* bytes of Ethernet + IP + TCP headers */
	uint16_t gso_size;	/* TCP payload bytes per segment (MSS) */
	uint16_t csum_start;	/* NEEDS_CSUM: the sum covers [start, end) */
	uint16_t csum_offset;	/* ... and goes at start + offset */
};
#define NET_OFF_F_NEEDS_CSUM	1	/* the checksum is partial */
#define NET_OFF_F_DATA_VALID	2	/* receive: checksums were checked */
#define NET_GSO_NONE		0
#define NET_GSO_TCPV4		1
#define NET_GSO_TCPV6		4
#define NET_GSO_ECN		0x80

/* Offload capabilities: of a backend (net_caps()), of a NIC's receive
 * (net_set_rx_offloads()). */
#define NET_CAP_CSUM		1u	/* frames with NEEDS_CSUM */
#define NET_CAP_TSO4		2u	/* NET_GSO_TCPV4 (needs CSUM) */
#define NET_CAP_TSO6		4u	/* NET_GSO_TCPV6 (needs CSUM) */
#define NET_CAP_TSO_ECN		8u	/* NET_GSO_ECN (needs TSO4/6) */
#define NET_CAP_ALL		15u

/* What the NIC model supplies.  Each runs on the backend's thread with
 * the device lock held. */
struct net_client_ops {
	/*
	 * receive - a frame for the guest, @iov/@iovcnt (NET_FRAME_MIN ..
	 * NET_FRAME_MAX bytes).  Returns the frame's length once it is in
	 * the guest's buffers (or dropped on purpose: a filter, the link
	 * down, a frame too big for the buffers), 0 if there is no room now
	 * (the backend keeps it and offers it again after net_rx_ready()).
	 */
	size_t (*receive)(void *opaque, const struct iovec *iov, int iovcnt);
	/*
	 * receive_offload - the same for a frame with offload metadata
	 * @off, within what the NIC asked for with net_set_rx_offloads()
	 * (plus NET_OFF_F_DATA_VALID).  May be NULL: then every frame goes
	 * to receive, checksums completed, segmentation offloads dropped.
	 */
	size_t (*receive_offload)(void *opaque, const struct net_offload *off,
				  const struct iovec *iov, int iovcnt);
	/* The transmit queue has room again after net_send() said -EAGAIN:
	 * go on with the transmit ring.  May be NULL. */
	void (*tx_ready)(void *opaque);
	/* The cable was plugged (@up) or pulled (net_set_link()).  May be
	 * NULL: the NIC reads net_link_up() when it needs it. */
	void (*link_changed)(void *opaque, bool up);
};

/* Counters since the backend was made. */
struct net_stats {
	uint64_t tx_frames, tx_bytes, tx_dropped;	/* guest -> network */
	uint64_t rx_frames, rx_bytes, rx_dropped;	/* network -> guest */
};

/*
 * net_attach - connect the NIC (@ops, @opaque) to @nd; its callbacks run
 * with @lock (the device lock, held by the caller; the same lock for every
 * attach of a backend) held.  Returns 0, -EBUSY if a NIC is attached
 * already, -EINVAL for a different lock.
 */
int net_attach(struct netdev *nd, const struct net_client_ops *ops,
	       void *opaque, pthread_mutex_t *lock);
/* Disconnect the NIC; once it returns no callback runs for it.  The device
 * lock held.  Frames still queued toward the guest are dropped.  NULL or
 * a backend with nothing attached: no-op. */
void net_detach(struct netdev *nd);

/*
 * net_send - a frame from the guest, gathered from @iov/@iovcnt (copied:
 * the buffers may be reused at once).  Returns 0 (queued), -EAGAIN (the
 * queue is full: try again after tx_ready), -EMSGSIZE (shorter than
 * NET_FRAME_MIN or longer than NET_FRAME_MAX; counted as dropped), -ENOLINK
 * (the cable is pulled: the frame is dropped, as on a wire).
 */
int net_send(struct netdev *nd, const struct iovec *iov, int iovcnt);
/*
 * net_send_offload - net_send() of a frame with offload metadata @off
 * (NULL: none).  A partial checksum the backend cannot take is completed
 * here; a segmentation offload it cannot take (not in net_caps()) is
 * -EINVAL, as is @off out of shape (unknown flags or GSO type, a GSO
 * frame without NEEDS_CSUM or with gso_size 0, the checksum field or
 * hdr_len beyond the frame); both counted as dropped.
 */
int net_send_offload(struct netdev *nd, const struct net_offload *off,
		     const struct iovec *iov, int iovcnt);
/* NET_CAP_* the backend carries both ways (0: plain frames only).  Fixed
 * for the backend's life. */
unsigned net_caps(const struct netdev *nd);
/*
 * net_set_rx_offloads - the NIC takes frames with @caps (NET_CAP_*, a
 * subset of net_caps(); the rest is ignored) in receive_offload from now
 * on: the backend asks its host side for them.  Frames already queued
 * that need more are completed or dropped on the way.  0 after a reset.
 * Any lock state; the device lock usually held.
 */
void net_set_rx_offloads(struct netdev *nd, unsigned caps);
/*
 * net_tx_kick - have the backend's thread call the NIC's tx_ready soon
 * (once its transmit queue is at most half full, as after -EAGAIN).  For a
 * NIC that stops its transmit ring after a bounded batch with more frames
 * waiting: it goes on from tx_ready, off the vCPU, taking turns with
 * receive.  Cheap (an eventfd write); any lock state.
 */
void net_tx_kick(struct netdev *nd);
/* The guest gave the NIC receive buffers: offer held frames again.  Cheap
 * (an eventfd write when frames wait); any lock state. */
void net_rx_ready(struct netdev *nd);

/* The cable: pull (@up false) or plug it.  Calls the attached NIC's
 * link_changed (takes the device lock; do not hold it).  Backends start
 * with the link up. */
void net_set_link(struct netdev *nd, bool up);
bool net_link_up(const struct netdev *nd);
void net_get_stats(struct netdev *nd, struct net_stats *st);
/* "nat", "tap", "socket". */
const char *net_kind(const struct netdev *nd);

/*
 * net_stop - stop the backend's thread (it no longer reads, sends nor takes
 * the device lock); frames go nowhere from now on.  Call without the
 * device lock, before the machine that owns that lock is destroyed: the
 * thread may be about to take it.  The NIC may still detach afterwards.
 * Idempotent; NULL ok.
 */
void net_stop(struct netdev *nd);
/* Stop the backend's thread (net_stop) and free it.  Detach the NIC
 * first.  NULL ok. */
void net_free(struct netdev *nd);

/* ---- saved state ---------------------------------------------------------- */

/* GLib's serialised value (glib/gvariant.h); only pointers pass here. */
typedef struct _GVariant GVariant;

/*
 * A backend's own state, for the machine's state file (vmm-core/
 * machine_state.c: section "net.N" for NIC N, beside the NIC's device
 * section; docs/machine-state.md).  NET_STATE_TYPE: (the backend's kind,
 * net_kind(); the version of its state; its state, a variant of the type
 * the backend documents - NAT: net/slirp.h).  The NIC's own state (rings,
 * filters) is its device section's; the cable is not saved (it is the
 * running program's, as the backend).
 */
#define NET_STATE_TYPE		"(suv)"
#define NET_STATE_VERSION	1u	/* of the section around it */

/*
 * net_state_save - @nd's state as a NET_STATE_TYPE GVariant (a new
 * floating reference), or NULL when the backend keeps none (TAP, socket).
 * Any thread; the machine calls it with the vCPUs paused.
 */
GVariant *net_state_save(struct netdev *nd);
/*
 * net_state_load - restore what net_state_save() returned (outside input:
 * every value is checked).  A state of another kind than @nd's (the NIC
 * was moved to another backend since the save) or of a backend that
 * restores nothing is not used: one warning in the log, 0.  Otherwise the
 * backend loads it, or says it goes on without it (NAT: a state of
 * another libslirp state version; one warning, 0), or refuses it: -EINVAL
 * with one line in @err ("nat: ...").  Any thread, before the vCPUs run.
 */
int net_state_load(struct netdev *nd, GVariant *state, char *err,
		   size_t errlen);

/* ---- backends ------------------------------------------------------------- */

/*
 * net_socket_new - frames over a datagram socket (SOCK_DGRAM or
 * SOCK_SEQPACKET, e.g. one end of a socketpair(AF_UNIX)): one frame per
 * datagram.  Takes ownership of @fd.  For tests, and a way to wire two VMs
 * together.  NULL with *@err = -errno.
 */
struct netdev *net_socket_new(int fd, int *err);
/*
 * net_socket_vnet_new - the same with offloads (net_caps() NET_CAP_ALL):
 * each datagram is the 10-byte virtio-net header (struct virtio_net_hdr
 * without num_buffers, little-endian: what a tap with IFF_VNET_HDR reads
 * and writes; net_offload_to_hdr) and the frame.  Frames with partial
 * checksums and 64 KiB TCP segments pass as they are, so the peer must
 * take them.
 */
struct netdev *net_socket_vnet_new(int fd, int *err);

/* The 10-byte virtio-net header @h (little-endian) to and from @off
 * (NULL: all zero). */
#define NET_VNET_HDR_LEN	10
void net_offload_from_hdr(struct net_offload *off, const uint8_t *h);
void net_offload_to_hdr(uint8_t *h, const struct net_offload *off);

/* ---- for backend implementations (net.c runs the thread) ----------------- */

struct net_backend_ops {
	const char *kind;
	/*
	 * poll_fill - put the backend's fds in @pfd (room for @max) and
	 * lower *@timeout_ms (-1: none) if it has a timer; return how many
	 * fds.  @rx_room says whether the receive queue has room: a backend
	 * that can leave frames in the host's queue (TAP) stops reading when
	 * it has none; @tx_pending whether frames wait to be sent (ask for
	 * POLLOUT if output() said -EAGAIN).
	 */
	int (*poll_fill)(void *be, struct pollfd *pfd, int max, int *timeout_ms,
			 bool rx_room, bool tx_pending);
	/* After poll(): handle the events of the fds poll_fill gave (@n of
	 * them, in the same order); frames received go to net_deliver(). */
	void (*poll_done)(void *be, struct pollfd *pfd, int n);
	/* Send one frame to the network.  0 (sent or dropped), -EAGAIN (keep
	 * it; poll for POLLOUT and call again). */
	int (*output)(void *be, const uint8_t *frame, size_t len);
	/* NET_CAP_* of output_offload and of net_deliver_offload(); 0 for a
	 * backend of plain frames (then the two ops below are NULL). */
	unsigned caps;
	/* output() of a frame with offload metadata within @caps. */
	int (*output_offload)(void *be, const struct net_offload *off,
			      const uint8_t *frame, size_t len);
	/* Ask the host side for received frames with @caps offloads (a
	 * subset of caps).  Any thread. */
	void (*set_rx_offloads)(void *be, unsigned caps);
	/* After the thread stopped: free the backend's state. */
	void (*free)(void *be);
	/* Its state for net_state_save(): a new GVariant of its own type
	 * and *@version; NULL when it keeps none.  NULL: keeps none. */
	GVariant *(*save_state)(void *be, uint32_t *version);
	/* Restore what save_state made, @version as it said, the type not
	 * checked yet: 0 (loaded, or not used with a warning) or -EINVAL +
	 * @err.  NULL: nothing to restore. */
	int (*load_state)(void *be, uint32_t version, GVariant *state,
			  char *err, size_t errlen);
};

#define NET_POLL_MAX	64	/* fds a backend may poll, besides the wakeup */

/* Make a netdev running @ops on @be (its thread not started yet: the
 * backend keeps the pointer first).  NULL with *@err = -errno (@be is
 * then not freed). */
struct netdev *net_new(const struct net_backend_ops *ops, void *be, int *err);
/* Start its thread.  0 or -errno (then net_free() it: that frees @be). */
int net_start(struct netdev *nd);
/* On the backend's thread, from poll_done: a frame received from the
 * network, toward the guest (copied). */
void net_deliver(struct netdev *nd, const uint8_t *frame, size_t len);
/* The same with offload metadata @off (NULL: none) within the backend's
 * caps; out of shape (as in net_send_offload) is dropped and counted. */
void net_deliver_offload(struct netdev *nd, const struct net_offload *off,
			 const uint8_t *frame, size_t len);

#endif
