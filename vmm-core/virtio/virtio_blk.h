/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/virtio/virtio_blk.h - the virtio block device (virtio 1.2 §5.2)
 * on the PCI transport (virtio_pci.h, PCI ID 1af4:1042, class 0x018000)
 * over a block-layer disk (block/block.h).
 *
 * Requests: READ, WRITE, FLUSH, GET_ID (the serial), DISCARD and
 * WRITE_ZEROES (one segment each, up to VIRTIO_BLK_MAX_DWZ_SECTORS); a
 * read-only disk offers VIRTIO_BLK_F_RO and fails writes with IOERR
 * without touching the image.  A request outside the disk or with a length
 * that is not a multiple of 512 bytes completes with IOERR; an unknown
 * type with UNSUPP.  A chain without room for the status byte breaks the
 * queue (NEEDS_RESET).
 *
 * Threads: the queue notify runs on the vCPU thread (an MMIO exit) or on
 * the machine's I/O thread (an ioeventfd, virtio_pci.h) with the device
 * lock held; it takes chains off the queue and hands them to the block
 * layer's workers with blk_submit().  Each completion takes the device lock,
 * writes the status byte, pushes the used element and interrupts.  A guest
 * reset waits for the requests in flight (see virtio_pci.h).
 */
#ifndef VIVARIUM_VIRTIO_BLK_H
#define VIVARIUM_VIRTIO_BLK_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "../device.h"
#include "../iofd.h"

struct pci_host;
struct guest_mem;
struct blk;
struct virtio_blk;

/* Feature bits (§5.2.3). */
#define VIRTIO_BLK_F_SIZE_MAX		1
#define VIRTIO_BLK_F_SEG_MAX		2
#define VIRTIO_BLK_F_RO			5
#define VIRTIO_BLK_F_BLK_SIZE		6
#define VIRTIO_BLK_F_FLUSH		9
#define VIRTIO_BLK_F_MQ			12
#define VIRTIO_BLK_F_DISCARD		13
#define VIRTIO_BLK_F_WRITE_ZEROES	14

/* Request types and status values (§5.2.6). */
#define VIRTIO_BLK_T_IN			0
#define VIRTIO_BLK_T_OUT		1
#define VIRTIO_BLK_T_FLUSH		4
#define VIRTIO_BLK_T_GET_ID		8
#define VIRTIO_BLK_T_DISCARD		11
#define VIRTIO_BLK_T_WRITE_ZEROES	13
#define VIRTIO_BLK_S_OK			0
#define VIRTIO_BLK_S_IOERR		1
#define VIRTIO_BLK_S_UNSUPP		2
#define VIRTIO_BLK_DWZ_F_UNMAP		1

#define VIRTIO_BLK_ID_BYTES		20	/* GET_ID string */
#define VIRTIO_BLK_QUEUE_SIZE		256
#define VIRTIO_BLK_SEG_MAX		(VIRTIO_BLK_QUEUE_SIZE - 2)
#define VIRTIO_BLK_SIZE_MAX		(1u << 20)	/* bytes per segment */
#define VIRTIO_BLK_MAX_DWZ_SECTORS	(1u << 22)	/* 2 GiB */
#define VIRTIO_BLK_DISCARD_ALIGN	8	/* sectors (4 KiB) */

/* Device configuration layout (§5.2.4) up to unused1; offsets in bytes. */
#define VIRTIO_BLK_CFG_CAPACITY		0	/* le64, 512-byte sectors */
#define VIRTIO_BLK_CFG_SIZE_MAX		8
#define VIRTIO_BLK_CFG_SEG_MAX		12
#define VIRTIO_BLK_CFG_BLK_SIZE		20
#define VIRTIO_BLK_CFG_NUM_QUEUES	34
#define VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS 36
#define VIRTIO_BLK_CFG_MAX_DISCARD_SEG	40
#define VIRTIO_BLK_CFG_DISCARD_ALIGN	44
#define VIRTIO_BLK_CFG_MAX_WZ_SECTORS	48
#define VIRTIO_BLK_CFG_MAX_WZ_SEG	52
#define VIRTIO_BLK_CFG_WZ_MAY_UNMAP	56
#define VIRTIO_BLK_CFG_LEN		60

struct virtio_blk_config {
	struct pci_host *pci;
	uint8_t devfn;			/* slot << 3 | function */
	const struct guest_mem *mem;
	pthread_mutex_t *lock;		/* the machine's device lock */
	struct iofd iofd;		/* doorbells (iofd.h); zero: none */
	struct blk *blk;		/* stays the caller's; not closed here */
	const char *serial;		/* GET_ID; NULL = none; 20 bytes max */
	unsigned num_queues;		/* 0 or 1 = one queue; up to 16 */
};

/*
 * virtio_blk_new - create the device and put it on @cfg->pci at
 * @cfg->devfn.  Call with the device lock held (or before the VM runs).
 * Returns the device, or NULL with a one-line reason in @err (a devfn
 * already taken, a serial over 20 bytes, a disk whose length is not a
 * multiple of 512, out of memory).
 */
struct virtio_blk *virtio_blk_new(const struct virtio_blk_config *cfg,
				  char *err, size_t errlen);
/* Wait for every request in flight to complete.  Call with NO lock held
 * (completions take the device lock), with the vCPUs stopped. */
void virtio_blk_drain(struct virtio_blk *vb);
/* Take the device off the bus and free it, after virtio_blk_drain(); the
 * device lock held.  NULL is fine. */
void virtio_blk_free(struct virtio_blk *vb);
/*
 * Its lifecycle in the machine's device table (device.h).
 * virtio_blk_device_ops: state VIRTIO_BLK_STATE_TYPE, version 1: (the
 * transport's VIRTIO_PCI_STATE_TYPE (virtio_pci.h: status, features,
 * selectors, vectors, ISR, INTx, every queue's size, vector, GPAs and
 * indices), the disk's size in sectors (checked: the configuration space
 * is derived from the image)).  Saved between requests: save fails (NULL)
 * while any is in flight; quiesce drains them.
 */
#define VIRTIO_BLK_STATE_TYPE \
	"((yttuuqqyyba(qqttt(qbbbbtttqqqbb)))t)"
extern const struct device_ops virtio_blk_device_ops;

/* The transport, for tests and for the machine's interrupt wiring. */
struct virtio_pci *virtio_blk_transport(struct virtio_blk *vb);

#endif
