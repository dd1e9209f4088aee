/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/virtio/virtio_9p.h - the virtio 9P transport (virtio 1.2 §5.19,
 * device ID 9; PCI ID 1af4:1049, class 0x018000: mass storage, other)
 * carrying 9P2000.L to a share/p9_server.h server of one host folder.  The guest mounts it with
 *   mount -t 9p -o trans=virtio,version=9p2000.L TAG /mnt
 *
 * Configuration space (§5.19.4): le16 tag_len, then the mount tag's bytes
 * (no NUL); feature VIRTIO_9P_MOUNT_TAG (bit 0).  One request queue of
 * VIRTIO_9P_QUEUE_SIZE: each chain is one T-message in its device-readable
 * part and room for the R-message in its device-writable part (located by
 * byte offset, never by descriptor: Linux's zero-copy reads and writes put
 * the payload in descriptors of their own).
 *
 * Threads: queue_notify (vCPU or I/O thread, device lock held) only takes
 * chains off the queue and hands them to the device's worker thread; the
 * worker copies each request out of guest memory (the server parses a
 * copy the guest cannot change under it), serves it, copies the reply in,
 * then takes the device lock to push the used element and interrupt.  A
 * slow host disk stalls the worker, never a vCPU.  Requests are served in
 * order, one at a time (so Tflush has nothing to cancel).  A guest reset
 * waits for the requests in flight (virtio_pci.h), then the server drops
 * every fid.
 *
 * Hostile chains: a chain without a device-writable byte breaks the queue
 * (NEEDS_RESET); a request longer than the negotiated msize gets Rlerror
 * EMSGSIZE; a reply never exceeds the writable room.
 */
#ifndef VIVARIUM_VIRTIO_9P_H
#define VIVARIUM_VIRTIO_9P_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../device.h"
#include "../iofd.h"

struct pci_host;
struct guest_mem;
struct virtio_9p;
struct virtio_pci;

#define VIRTIO_9P_DEVICE_ID	9
#define VIRTIO_9P_MOUNT_TAG	0	/* feature bit */
#define VIRTIO_9P_QUEUE_SIZE	128
#define VIRTIO_9P_TAG_MAX	31	/* bytes of a mount tag */

struct virtio_9p_config {
	struct pci_host *pci;
	uint8_t devfn;			/* slot << 3 | function */
	const struct guest_mem *mem;
	pthread_mutex_t *lock;		/* the machine's device lock */
	struct iofd iofd;		/* doorbells (iofd.h); zero: none */
	const char *path;		/* the shared host folder */
	const char *tag;		/* mount tag: virtio_9p_tag_ok() */
	bool readonly;			/* every change refused with EROFS */
	uint32_t max_msize;		/* 0: P9_MAX_MSIZE_DEFAULT */
	unsigned max_fids;		/* 0: P9_MAX_FIDS_DEFAULT */
};

/* A mount tag we offer: 1..VIRTIO_9P_TAG_MAX bytes of [A-Za-z0-9_.-]. */
bool virtio_9p_tag_ok(const char *tag);

/*
 * virtio_9p_new - open the folder, start the worker, put the function on
 * @cfg->pci at @cfg->devfn.  Call with the device lock held (or before the
 * VM runs).  Returns the device, or NULL with one line in @err (a missing
 * folder or a file, a bad tag, the slot taken, out of memory).
 */
struct virtio_9p *virtio_9p_new(const struct virtio_9p_config *cfg, char *err,
				size_t errlen);
/* Wait until the worker has finished every request handed to it.  Call
 * with NO lock held (completions take the device lock). */
void virtio_9p_drain(struct virtio_9p *v);
/* Stop the worker, take the function off the bus, free; after
 * virtio_9p_drain(), with the device lock held.  NULL is fine. */
void virtio_9p_free(struct virtio_9p *v);

struct virtio_pci *virtio_9p_transport(struct virtio_9p *v);
/* Fids the server holds now (for tests). */
unsigned virtio_9p_nfids(struct virtio_9p *v);

/*
 * virtio_9p_device_ops: state VIRTIO_9P_STATE_TYPE, version 1: (the
 * transport's VIRTIO_PCI_STATE_TYPE, the mount tag, readonly, the server's
 * P9_SERVER_STATE_TYPE (p9_server.h: the session's msize and every fid by
 * its path in the share, with its open flags)).  Load refuses another tag
 * or readonly setting; fids whose files are gone come back stale (ESTALE)
 * rather than failing the restore.  Saved between requests: quiesce
 * drains them.
 */
#define VIRTIO_9P_STATE_TYPE \
	"((yttuuqqyyba(qqttt(qbbbbtttqqqbb)))sb(bua(usuu)))"
extern const struct device_ops virtio_9p_device_ops;

#endif
