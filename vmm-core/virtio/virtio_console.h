/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/virtio/virtio_console.h - virtio-serial: the virtio console
 * device (virtio 1.2 §5.3, device ID 3, PCI 1af4:1043, class 0x078000)
 * with VIRTIO_CONSOLE_F_MULTIPORT and named ports, on the PCI transport
 * (virtio_pci.h).
 *
 * Queues (§5.3.2): 0/1 port 0's receiveq/transmitq, 2/3 the control
 * receiveq/transmitq, then 2 + 2*N / 3 + 2*N for port N >= 1.  Port 0 is
 * the legacy console and has no host side here (what the guest writes to
 * it is dropped); the named ports are 1..nports, max_nr_ports is
 * nports + 1.  Bring-up (§5.3.6.2): the driver sends DEVICE_READY, the
 * device answers PORT_ADD per port; each PORT_READY(1) gets PORT_NAME and
 * PORT_OPEN(1) (the host side is always connected); the guest's
 * PORT_OPEN(0/1) is the guest application opening or closing the port.
 * Control messages toward the guest wait in a bounded queue while the
 * driver has no control receive buffers; beyond VCON_CTRL_PENDING_MAX they
 * are dropped with a warning.  Malformed control messages (short, unknown
 * event, bad port id, a port message before DEVICE_READY) are logged at a
 * limited rate and ignored.
 *
 * The host side of a named port is a struct vcon_port: made by the
 * program before the machine, it outlives the machine's resets (each build
 * of the device attaches to it, each teardown detaches, as a NIC and its
 * net backend).  It holds two bounded byte buffers:
 *  - guest -> host (VCON_PORT_BUF bytes): the device copies what the
 *    guest's transmit chains carry and calls ops->readable; the host takes
 *    bytes with vcon_port_read().  When the buffer is full the device
 *    leaves the rest of the chain in the ring (back-pressure: the guest's
 *    writes block) and goes on once the host has read.
 *  - host -> guest (VCON_PORT_BUF bytes): vcon_port_write() queues bytes,
 *    which go into the port's receive buffers while the guest has the port
 *    open; with no buffers they wait, and a full buffer makes
 *    vcon_port_write() short (ops->writable says when there is room).
 *    Bytes queued while the guest has the port closed are dropped when it
 *    closes (a guest driver discards data for a closed port anyway).
 *
 * Threads and locks: the device runs with the device lock held (vCPU or
 * I/O thread).  A port has a mutex of its own, taken after the device
 * lock.  vcon_port_* may be called from any thread without the device
 * lock; those that must reach the device take it themselves.  The ops
 * callbacks run with the device lock held: keep them short (wake a loop).
 */
#ifndef VIVARIUM_VIRTIO_CONSOLE_H
#define VIVARIUM_VIRTIO_CONSOLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../device.h"
#include "../iofd.h"

struct pci_host;
struct guest_mem;
struct virtio_console;
struct vcon_port;

/* Feature bits (§5.3.3). */
#define VIRTIO_CONSOLE_F_SIZE		0
#define VIRTIO_CONSOLE_F_MULTIPORT	1
#define VIRTIO_CONSOLE_F_EMERG_WRITE	2

/* Control events (§5.3.6.2). */
#define VIRTIO_CONSOLE_DEVICE_READY	0
#define VIRTIO_CONSOLE_DEVICE_ADD	1	/* PORT_ADD */
#define VIRTIO_CONSOLE_DEVICE_REMOVE	2
#define VIRTIO_CONSOLE_PORT_READY	3
#define VIRTIO_CONSOLE_CONSOLE_PORT	4
#define VIRTIO_CONSOLE_RESIZE		5
#define VIRTIO_CONSOLE_PORT_OPEN	6
#define VIRTIO_CONSOLE_PORT_NAME	7
#define VIRTIO_CONSOLE_CTRL_LEN		8	/* le32 id, le16 event, value */

/* Device configuration (§5.3.4), byte offsets. */
#define VIRTIO_CONSOLE_CFG_COLS		0
#define VIRTIO_CONSOLE_CFG_ROWS		2
#define VIRTIO_CONSOLE_CFG_MAX_NR_PORTS	4
#define VIRTIO_CONSOLE_CFG_EMERG_WR	8
#define VIRTIO_CONSOLE_CFG_LEN		12

#define VIRTIO_CONSOLE_QUEUE_SIZE	128
#define VIRTIO_CONSOLE_CTRL_RXQ		2
#define VIRTIO_CONSOLE_CTRL_TXQ		3
/* Receive (guest-bound) and transmit queue of port @id. */
#define VIRTIO_CONSOLE_RXQ(id)	((id) == 0 ? 0u : 2u + 2u * (id))
#define VIRTIO_CONSOLE_TXQ(id)	(VIRTIO_CONSOLE_RXQ(id) + 1u)

#define VCON_MAX_PORTS		8	/* named ports per device */
#define VCON_PORT_NAME_MAX	64	/* bytes, without the NUL */
#define VCON_PORT_BUF		(64u << 10)	/* each direction */
#define VCON_CTRL_PENDING_MAX	32

/* The host side's callbacks; each runs with the device lock held. */
struct vcon_port_ops {
	/* Bytes from the guest wait: vcon_port_read(). */
	void (*readable)(void *opaque);
	/* The guest opened (@open) or closed the port; closed also when the
	 * device is reset or torn down.  After a load: the loaded state. */
	void (*guest_open)(void *opaque, bool open);
	/* Room in the guest-bound buffer again after a short
	 * vcon_port_write().  May be NULL. */
	void (*writable)(void *opaque);
};

/*
 * vcon_port_new - the host side of the port named @name (1 to
 * VCON_PORT_NAME_MAX printable ASCII bytes, e.g. "com.redhat.spice.0":
 * the guest's /dev/virtio-ports/NAME).  @ops may be NULL (bytes then
 * wait unread).  Returns NULL on a bad name or allocation failure.
 */
struct vcon_port *vcon_port_new(const char *name,
				const struct vcon_port_ops *ops, void *opaque);
/* Detach the device first (machine teardown).  NULL ok. */
void vcon_port_free(struct vcon_port *p);
const char *vcon_port_name(const struct vcon_port *p);

/*
 * vcon_port_write - queue @len bytes for the guest.  Returns the bytes
 * taken (fewer than @len, even 0, when the buffer is full: wait for
 * ops->writable), or -EPIPE while the guest does not have the port open.
 * Takes the device lock (do not hold it) to hand them to the device.
 */
ssize_t vcon_port_write(struct vcon_port *p, const void *buf, size_t len);
/*
 * vcon_port_read - take up to @len bytes the guest wrote.  Returns the
 * count (0: none waiting).  If the device had stopped on a full buffer it
 * goes on (takes the device lock: do not hold it).
 */
size_t vcon_port_read(struct vcon_port *p, void *buf, size_t len);
/* Bytes waiting for vcon_port_read(). */
size_t vcon_port_pending(struct vcon_port *p);
/*
 * vcon_port_wait - wait up to @timeout_ms (>= 0) for bytes to read or a
 * change of the guest's open state.  Returns 1 when bytes wait, 0 on
 * timeout or close.  Without the device lock.
 */
int vcon_port_wait(struct vcon_port *p, int timeout_ms);
/* Does the guest have the port open? */
bool vcon_port_guest_open(struct vcon_port *p);

struct virtio_console_config {
	struct pci_host *pci;
	uint8_t devfn;			/* slot << 3 | function */
	const struct guest_mem *mem;
	pthread_mutex_t *lock;		/* the machine's device lock */
	struct iofd iofd;		/* doorbells (iofd.h); zero: none */
	/* Named ports 1..nports in this order; the program's. */
	struct vcon_port *port[VCON_MAX_PORTS];
	unsigned nports;		/* 1..VCON_MAX_PORTS */
};

/*
 * virtio_console_new - create the device on @cfg->pci at @cfg->devfn and
 * attach the ports.  Call with the device lock held (or before the VM
 * runs).  Returns the device, or NULL with one line in @err (incomplete
 * configuration, a port attached elsewhere, duplicate names, the slot
 * taken, out of memory).
 */
struct virtio_console *virtio_console_new(const struct virtio_console_config *cfg,
					  char *err, size_t errlen);
/* Detach the ports (the guest counts as closed), take the function off
 * the bus, free.  The device lock held.  NULL ok. */
void virtio_console_free(struct virtio_console *vc);
struct virtio_pci *virtio_console_transport(struct virtio_console *vc);

/*
 * virtio_console_device_ops: state VIRTIO_CONSOLE_STATE_TYPE, version 1:
 * (the transport's VIRTIO_PCI_STATE_TYPE, DEVICE_READY seen, per port
 * (name, PORT_ADD sent, PORT_READY seen, guest open, bytes of the head
 * transmit chain already taken, guest-bound bytes, host-bound bytes),
 * control messages waiting for the guest (port id, event, value)).  Load
 * checks the port names against the configuration, the flags' order
 * (ready needs added needs DEVICE_READY), buffers up to VCON_PORT_BUF,
 * pending messages' events and ids, and tells each port's host side the
 * open state.
 */
#define VIRTIO_CONSOLE_STATE_TYPE \
	"((yttuuqqyyba(qqttt(qbbbbtttqqqbb)))ba(sbbbuayay)a(uqq))"
extern const struct device_ops virtio_console_device_ops;

#endif
