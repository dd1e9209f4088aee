/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/virtio/virtio_pci.h - the virtio 1.x PCI transport ("modern",
 * non-transitional; virtio 1.2 §4.1), shared by every virtio device.
 *
 * The function is 1af4:(0x1040 + virtio device ID), revision 1, subsystem
 * 1af4:0040 (§4.1.2.1).  BAR 4, a 16 KiB 64-bit memory BAR, holds the
 * common configuration (offset 0), ISR status (0x1000), device-specific
 * configuration (0x2000) and the queue notify area (0x3000, 4 bytes per
 * queue); vendor capabilities (§4.1.4) point at each, plus the
 * VIRTIO_PCI_CAP_PCI_CFG window (§4.1.4.9).  BAR 1 holds the MSI-X table
 * (one vector per queue plus one for configuration changes); with MSI-X
 * off, interrupts go through INTA# and the ISR (§4.1.4.5).  No legacy
 * (0.9.5) interface.
 *
 * Device life cycle (§3.1, §2.1): the transport negotiates features
 * (VIRTIO_F_VERSION_1 required), sets up queues, and calls the device's
 * ops.  A device reset (0 written to device_status) waits for requests in
 * flight: the device brackets each request with virtio_pci_req_start() /
 * virtio_pci_req_end(), device_status keeps reading non-zero until the
 * last one ends, and ends during a reset drop their results.  Nothing
 * blocks the vCPU.
 *
 * Doorbells (iofd.h): given the machine's iofd, each ready queue's notify
 * address is an ioeventfd while BAR 4 decodes (the driver's write costs no
 * exit; the machine's I/O thread calls queue_notify), and each MSI-X vector
 * in use an irqfd while MSI-X is on; see "eventfd doorbells" in
 * virtio_pci.c.  Neither is state: both are derived again after a load.
 * queue_notify therefore runs on a vCPU thread or on the I/O thread.
 *
 * Locking: every call with the device lock held.
 */
#ifndef VIVARIUM_VIRTIO_PCI_H
#define VIVARIUM_VIRTIO_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "../iofd.h"
#include "virtqueue.h"

struct pci_host;
struct guest_mem;
struct virtio_pci;

#define VIRTIO_PCI_VENDOR_ID		0x1af4
#define VIRTIO_PCI_DEVICE_ID_BASE	0x1040
#define VIRTIO_PCI_SUBSYS_ID		0x0040	/* §4.1.2.1: >= 0x40 */

/* Device status bits (§2.1). */
#define VIRTIO_CONFIG_S_ACKNOWLEDGE	0x01
#define VIRTIO_CONFIG_S_DRIVER		0x02
#define VIRTIO_CONFIG_S_DRIVER_OK	0x04
#define VIRTIO_CONFIG_S_FEATURES_OK	0x08
#define VIRTIO_CONFIG_S_NEEDS_RESET	0x40
#define VIRTIO_CONFIG_S_FAILED		0x80

/* Reserved feature bits (§6). */
#define VIRTIO_F_VERSION_1		32

/* Vendor capability types (§4.1.4). */
#define VIRTIO_PCI_CAP_COMMON_CFG	1
#define VIRTIO_PCI_CAP_NOTIFY_CFG	2
#define VIRTIO_PCI_CAP_ISR_CFG		3
#define VIRTIO_PCI_CAP_DEVICE_CFG	4
#define VIRTIO_PCI_CAP_PCI_CFG		5

#define VIRTIO_MSI_NO_VECTOR		0xffff

/* Common configuration layout (§4.1.4.3), byte offsets. */
#define VIRTIO_PCI_COMMON_DFSELECT	0x00
#define VIRTIO_PCI_COMMON_DF		0x04
#define VIRTIO_PCI_COMMON_GFSELECT	0x08
#define VIRTIO_PCI_COMMON_GF		0x0c
#define VIRTIO_PCI_COMMON_MSIX		0x10
#define VIRTIO_PCI_COMMON_NUMQ		0x12
#define VIRTIO_PCI_COMMON_STATUS	0x14
#define VIRTIO_PCI_COMMON_CFGGENERATION	0x15
#define VIRTIO_PCI_COMMON_Q_SELECT	0x16
#define VIRTIO_PCI_COMMON_Q_SIZE	0x18
#define VIRTIO_PCI_COMMON_Q_MSIX	0x1a
#define VIRTIO_PCI_COMMON_Q_ENABLE	0x1c
#define VIRTIO_PCI_COMMON_Q_NOFF	0x1e
#define VIRTIO_PCI_COMMON_Q_DESCLO	0x20
#define VIRTIO_PCI_COMMON_Q_DESCHI	0x24
#define VIRTIO_PCI_COMMON_Q_AVAILLO	0x28
#define VIRTIO_PCI_COMMON_Q_AVAILHI	0x2c
#define VIRTIO_PCI_COMMON_Q_USEDLO	0x30
#define VIRTIO_PCI_COMMON_Q_USEDHI	0x34
#define VIRTIO_PCI_COMMON_LEN		0x38

/* Where things are in BAR VIRTIO_PCI_BAR. */
#define VIRTIO_PCI_BAR			4
#define VIRTIO_PCI_MSIX_BAR		1
#define VIRTIO_PCI_BAR_SIZE		0x4000
#define VIRTIO_PCI_COMMON_OFF		0x0000
#define VIRTIO_PCI_ISR_OFF		0x1000
#define VIRTIO_PCI_DEVICE_OFF		0x2000
#define VIRTIO_PCI_NOTIFY_OFF		0x3000
#define VIRTIO_PCI_NOTIFY_MULT		4	/* bytes per queue */
#define VIRTIO_PCI_MAX_QUEUES		64

/* Config space offset of each vendor capability. */
#define VIRTIO_PCI_CAP_MSIX_OFF		0x40
#define VIRTIO_PCI_CAP_COMMON_OFF	0x50
#define VIRTIO_PCI_CAP_NOTIFY_OFF	0x60
#define VIRTIO_PCI_CAP_ISR_OFF		0x74
#define VIRTIO_PCI_CAP_DEVICE_OFF	0x84
#define VIRTIO_PCI_CAP_PCICFG_OFF	0x94

/* What a device supplies.  All are called with the device lock held. */
struct virtio_pci_ops {
	/* Device-specific configuration: @offset + @size (1, 2, 4 or 8)
	 * lies inside config_len.  Read returns the little-endian value. */
	uint64_t (*config_read)(void *opaque, unsigned offset, unsigned size);
	void (*config_write)(void *opaque, unsigned offset, unsigned size,
			     uint64_t value);
	/* The driver notified queue @q (ready, not broken, DRIVER_OK). */
	void (*queue_notify)(void *opaque, unsigned q);
	/* Optional: the driver sets FEATURES_OK with @features; return
	 * false to refuse the combination (§3.1.1 step 5). */
	bool (*features_ok)(void *opaque, uint64_t features);
	/* The device was reset and nothing is in flight: forget state. */
	void (*reset)(void *opaque);
};

struct virtio_pci_config {
	struct pci_host *pci;
	uint8_t devfn;
	const struct guest_mem *mem;
	uint16_t device_id;		/* virtio device ID (§5), e.g. 2 */
	uint32_t class_code;		/* PCI base << 16 | sub << 8 | prog-if */
	/* Device-specific feature bits; VERSION_1, INDIRECT_DESC and
	 * EVENT_IDX are added by the transport. */
	uint64_t features;
	unsigned num_queues;		/* 1..VIRTIO_PCI_MAX_QUEUES */
	uint16_t queue_size;		/* largest queue, a power of two */
	unsigned config_len;		/* bytes of device config, <= 4096 */
	const struct virtio_pci_ops *ops;
	void *opaque;
	/* The machine's doorbells; ops NULL: every notify is an MMIO exit
	 * and every MSI goes through the PCI host. */
	struct iofd iofd;
};

/*
 * virtio_pci_new - build the PCI function and add it to @cfg->pci at
 * @cfg->devfn.  Returns the transport, or NULL with *@err set to -EINVAL
 * (bad config), -EEXIST (devfn taken) or -ENOMEM.
 */
struct virtio_pci *virtio_pci_new(const struct virtio_pci_config *cfg,
				  int *err);
/* Take the function off the bus and free it.  Nothing may be in flight. */
void virtio_pci_free(struct virtio_pci *vp);

/* Queue @q (< num_queues), for virtq_pop()/virtq_push(). */
struct virtq *virtio_pci_queue(struct virtio_pci *vp, unsigned q);
/* The features the driver accepted (valid once FEATURES_OK). */
uint64_t virtio_pci_features(const struct virtio_pci *vp);
uint8_t virtio_pci_status(const struct virtio_pci *vp);
struct pci_device *virtio_pci_device(struct virtio_pci *vp);

/* After pushing used buffers to queue @q: interrupt the driver if it
 * wants one (virtq_should_notify), through MSI-X or INTx + ISR bit 0. */
void virtio_pci_notify_used(struct virtio_pci *vp, unsigned q);
/* The device configuration changed: bump config_generation, ISR bit 1,
 * configuration interrupt (§4.1.5.3). */
void virtio_pci_config_changed(struct virtio_pci *vp);
/* Device-detected error: set NEEDS_RESET (§2.1.2) and, after DRIVER_OK,
 * send a configuration change notification.  Queue errors do this
 * through virtq on_broken. */
void virtio_pci_set_needs_reset(struct virtio_pci *vp);

/* Reset the device as the driver's write of 0 to device_status does
 * (§2.4; the transport's state, every queue, then the device's ops->reset):
 * for the machine's in-place reset of a device (device_ops.reset).  With
 * requests in flight it completes when the last one ends. */
void virtio_pci_reset(struct virtio_pci *vp);

/* Request accounting for reset quiescing.  req_end() returns true if the
 * device should complete the request (push it, notify), false if a reset
 * is under way and the result must be dropped (the reset finishes when
 * the last one ends). */
void virtio_pci_req_start(struct virtio_pci *vp);
bool virtio_pci_req_end(struct virtio_pci *vp);
/* Requests in flight. */
unsigned virtio_pci_inflight(const struct virtio_pci *vp);

/* For tests: the queues whose doorbell is an ioeventfd now (their
 * addresses in @gpa[0..num_queues-1] when non-NULL, PCI_BAR_UNMAPPED for
 * the others), and the GSI of MSI-X vector @v's irqfd (-1: none). */
unsigned virtio_pci_iofd_kicks(const struct virtio_pci *vp, uint64_t *gpa);
int virtio_pci_iofd_vector_gsi(const struct virtio_pci *vp, unsigned v);

/*
 * The transport's saved state, VIRTIO_PCI_STATE_TYPE: (device_status,
 * device features offered (checked against this device's), driver
 * features, device_feature_select, driver_feature_select, queue_select,
 * config_msix_vector, config_generation, ISR, INTx level, then per queue
 * (queue_size, queue_msix_vector, desc/driver/device area GPAs as the
 * driver wrote them, the virtqueue's VIRTQ_STATE_TYPE)).  The PCI
 * function's config space, BAR mappings and MSI-X table are the PCI host's.
 *
 * virtio_pci_save - a new floating reference, or NULL while a request is
 * in flight or a reset waits for one (the device's quiesce drains them).
 *
 * virtio_pci_load - check every value of @state first (features a subset
 * of the offer, vectors in range, queue sizes powers of two up to the
 * maximum, ready queues' GPAs through the checks the guest's enable uses),
 * then restore it, recompute the rings' host views and drive INTx to the
 * saved level.  Returns 0, or -EINVAL with one line in @err prefixed by
 * @who (the device's name) and nothing changed.
 */
#define VIRTIO_PCI_STATE_TYPE "(yttuuqqyyba(qqttt" VIRTQ_STATE_TYPE "))"
GVariant *virtio_pci_save(struct virtio_pci *vp);
int virtio_pci_load(struct virtio_pci *vp, GVariant *state, const char *who,
		    char *err, size_t errlen);

#endif
