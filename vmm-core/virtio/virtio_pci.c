/* SPDX-License-Identifier: MIT */
/*
 * The virtio 1.x PCI transport, virtio 1.2 §4.1.  See virtio_pci.h.
 */
#include "virtio_pci.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <glib.h>

#include "../bus.h"
#include "../devices/pci.h"
#include "../log.h"

struct vp_queue {
	uint16_t size;			/* driver's choice, power of two */
	uint16_t vector;		/* MSI-X vector or NO_VECTOR */
	uint64_t desc, driver, device;	/* area GPAs as written */
	struct virtq vq;
	/* Its doorbell as an ioeventfd: not state, derived by iofd_sync()
	 * from BAR 4's mapping and the queue's readiness. */
	struct virtio_pci *vp;
	unsigned index;
	int kick_fd;			/* -1: none, the notify exits */
	uint64_t kick_gpa;		/* where it is registered */
};

/* An MSI-X vector as an irqfd: not state either (iofd_sync()). */
struct vp_vector {
	int fd;				/* -1: none, MSIs go through the host */
	int gsi;
	uint64_t addr;			/* the message its GSI is routed to */
	uint32_t data;
};

struct virtio_pci {
	struct pci_device pci;
	const struct virtio_pci_ops *ops;
	void *opaque;
	unsigned num_queues, config_len, nvectors;
	uint16_t queue_size_max;
	uint64_t device_features;
	uint64_t driver_features;
	uint32_t dfselect, gfselect;
	uint16_t queue_select;
	uint16_t config_vector;
	uint8_t status;
	uint8_t config_generation;
	uint8_t isr;
	bool reset_pending;		/* 0 written, requests still in flight */
	unsigned inflight;
	struct vp_queue queue[VIRTIO_PCI_MAX_QUEUES];
	/* Doorbells from the machine (iofd.h); ops NULL: none.  An op that
	 * said -ENOTSUP is not asked again. */
	struct iofd iofd;
	bool no_ioeventfd, no_irqfd;
	struct vp_vector vec[VIRTIO_PCI_MAX_QUEUES + 1];
	/* Which way notifications went, logged at teardown (info). */
	uint64_t kicks_fd, kicks_exit, msis_fd, msis_host;
};

static void iofd_sync(struct virtio_pci *vp);
static void vectors_sync(struct virtio_pci *vp);
static void kicks_sync(struct virtio_pci *vp);

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le(const uint8_t *p, unsigned size)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* ---- interrupts --------------------------------------------------------- */

static void raise_intx(struct virtio_pci *vp, uint8_t isr_bit)
{
	vp->isr |= isr_bit;
	pci_set_irq(&vp->pci, 1);
}

/* MSI-X @v: through its irqfd when it has one and the vector is
 * deliverable now (its GSI routes the table's current message); else
 * through the PCI host, which also keeps masked vectors pending. */
static void send_vector(struct virtio_pci *vp, unsigned v)
{
	if (v < vp->nvectors && vp->vec[v].fd >= 0 &&
	    pci_msix_deliverable(&vp->pci, v)) {
		uint64_t one = 1;

		if (write(vp->vec[v].fd, &one, sizeof(one)) == sizeof(one)) {
			vp->msis_fd++;
			return;
		}
	}
	vp->msis_host++;
	pci_msix_notify(&vp->pci, v);
}

void virtio_pci_notify_used(struct virtio_pci *vp, unsigned q)
{
	if (q >= vp->num_queues || !virtq_should_notify(&vp->queue[q].vq))
		return;
	if (pci_msix_enabled(&vp->pci))
		send_vector(vp, vp->queue[q].vector);
	else
		raise_intx(vp, 1);
}

/* §4.1.4.5.1: the ISR's configuration bit is set in either mode. */
static void config_interrupt(struct virtio_pci *vp)
{
	if (!(vp->status & VIRTIO_CONFIG_S_DRIVER_OK))
		return;
	if (pci_msix_enabled(&vp->pci)) {
		vp->isr |= 2;
		send_vector(vp, vp->config_vector);
	} else {
		raise_intx(vp, 2);
	}
}

void virtio_pci_config_changed(struct virtio_pci *vp)
{
	vp->config_generation++;
	config_interrupt(vp);
}

void virtio_pci_set_needs_reset(struct virtio_pci *vp)
{
	if (vp->status & VIRTIO_CONFIG_S_NEEDS_RESET)
		return;
	vp->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	config_interrupt(vp);		/* §2.1.2: tell a running driver */
}

static void queue_broken(struct virtq *vq, void *opaque)
{
	virtio_pci_set_needs_reset(opaque);
}

/* ---- reset -------------------------------------------------------------- */

static void queue_init(struct virtio_pci *vp, unsigned q)
{
	struct vp_queue *pq = &vp->queue[q];

	pq->size = vp->queue_size_max;
	pq->vector = VIRTIO_MSI_NO_VECTOR;
	pq->desc = pq->driver = pq->device = 0;
	virtq_reset(&pq->vq);
}

static void finish_reset(struct virtio_pci *vp)
{
	vp->reset_pending = false;
	vp->status = 0;
	vp->driver_features = 0;
	vp->dfselect = vp->gfselect = 0;
	vp->queue_select = 0;
	vp->config_vector = VIRTIO_MSI_NO_VECTOR;
	vp->isr = 0;
	pci_set_irq(&vp->pci, 0);
	for (unsigned q = 0; q < vp->num_queues; q++)
		queue_init(vp, q);
	iofd_sync(vp);
	if (vp->ops->reset)
		vp->ops->reset(vp->opaque);
}

static void start_reset(struct virtio_pci *vp)
{
	if (vp->inflight == 0) {
		finish_reset(vp);
		return;
	}
	/* §4.1.4.3.1: status reads non-zero until the reset is done; the
	 * driver polls it.  Queues stop now. */
	vp->reset_pending = true;
	for (unsigned q = 0; q < vp->num_queues; q++)
		vp->queue[q].vq.ready = false;
	kicks_sync(vp);
}

void virtio_pci_reset(struct virtio_pci *vp)
{
	start_reset(vp);
}

void virtio_pci_req_start(struct virtio_pci *vp)
{
	vp->inflight++;
}

bool virtio_pci_req_end(struct virtio_pci *vp)
{
	if (vp->inflight)
		vp->inflight--;
	if (!vp->reset_pending)
		return true;
	if (vp->inflight == 0)
		finish_reset(vp);
	return false;
}

unsigned virtio_pci_inflight(const struct virtio_pci *vp)
{
	return vp->inflight;
}

/* ---- common configuration ---------------------------------------------- */

static void common_snapshot(struct virtio_pci *vp, uint8_t *c)
{
	const struct vp_queue *pq = vp->queue_select < vp->num_queues ?
		&vp->queue[vp->queue_select] : NULL;

	memset(c, 0, VIRTIO_PCI_COMMON_LEN);
	put32(c + VIRTIO_PCI_COMMON_DFSELECT, vp->dfselect);
	put32(c + VIRTIO_PCI_COMMON_DF, vp->dfselect < 2 ?
	      (uint32_t)(vp->device_features >> (32 * vp->dfselect)) : 0);
	put32(c + VIRTIO_PCI_COMMON_GFSELECT, vp->gfselect);
	put32(c + VIRTIO_PCI_COMMON_GF, vp->gfselect < 2 ?
	      (uint32_t)(vp->driver_features >> (32 * vp->gfselect)) : 0);
	put16(c + VIRTIO_PCI_COMMON_MSIX, vp->config_vector);
	put16(c + VIRTIO_PCI_COMMON_NUMQ, (uint16_t)vp->num_queues);
	c[VIRTIO_PCI_COMMON_STATUS] = vp->status;
	c[VIRTIO_PCI_COMMON_CFGGENERATION] = vp->config_generation;
	put16(c + VIRTIO_PCI_COMMON_Q_SELECT, vp->queue_select);
	if (!pq) {
		put16(c + VIRTIO_PCI_COMMON_Q_MSIX, VIRTIO_MSI_NO_VECTOR);
		return;		/* queue_size 0: no such queue */
	}
	put16(c + VIRTIO_PCI_COMMON_Q_SIZE, pq->size);
	put16(c + VIRTIO_PCI_COMMON_Q_MSIX, pq->vector);
	put16(c + VIRTIO_PCI_COMMON_Q_ENABLE, pq->vq.ready);
	put16(c + VIRTIO_PCI_COMMON_Q_NOFF, vp->queue_select);
	put64(c + VIRTIO_PCI_COMMON_Q_DESCLO, pq->desc);
	put64(c + VIRTIO_PCI_COMMON_Q_AVAILLO, pq->driver);
	put64(c + VIRTIO_PCI_COMMON_Q_USEDLO, pq->device);
}

static uint64_t common_read(struct virtio_pci *vp, unsigned off,
			    unsigned size)
{
	uint8_t c[VIRTIO_PCI_COMMON_LEN];

	if (off >= VIRTIO_PCI_COMMON_LEN || size > VIRTIO_PCI_COMMON_LEN - off)
		return 0;
	/* While a reset waits for requests, status keeps its old,
	 * non-zero value (§4.1.4.3.1: 0 once the reset is done). */
	common_snapshot(vp, c);
	return get_le(c + off, size);
}

static uint16_t checked_vector(const struct virtio_pci *vp, uint16_t v)
{
	/* §4.1.5.1.2.1: a mapping that cannot be done reads NO_VECTOR. */
	return v < vp->nvectors ? v : VIRTIO_MSI_NO_VECTOR;
}

static void kick_all(struct virtio_pci *vp)
{
	for (unsigned q = 0; q < vp->num_queues; q++)
		if (vp->queue[q].vq.ready && !vp->queue[q].vq.broken)
			vp->ops->queue_notify(vp->opaque, q);
}

static void write_status(struct virtio_pci *vp, uint8_t v)
{
	uint8_t old = vp->status;

	if (v == 0) {
		start_reset(vp);
		return;
	}
	if (vp->reset_pending)
		return;
	v |= old & VIRTIO_CONFIG_S_NEEDS_RESET;
	if ((v & VIRTIO_CONFIG_S_FEATURES_OK) &&
	    !(old & VIRTIO_CONFIG_S_FEATURES_OK)) {
		uint64_t f = vp->driver_features;

		/* §3.1.1: a subset of what we offer, and VERSION_1
		 * (no legacy interface here, §7.2). */
		if ((f & ~vp->device_features) ||
		    !(f & (1ull << VIRTIO_F_VERSION_1)) ||
		    (vp->ops->features_ok && !vp->ops->features_ok(vp->opaque, f))) {
			vlog_ratelimited(LOG_WARN, "virtio %02x.%u: driver features 0x%llx refused",
					 vp->pci.devfn >> 3, vp->pci.devfn & 7,
					 (unsigned long long)f);
			v &= (uint8_t)~VIRTIO_CONFIG_S_FEATURES_OK;
		}
	}
	if ((v & VIRTIO_CONFIG_S_DRIVER_OK) &&
	    !(v & VIRTIO_CONFIG_S_FEATURES_OK)) {
		vlog_ratelimited(LOG_WARN, "virtio %02x.%u: DRIVER_OK without FEATURES_OK",
				 vp->pci.devfn >> 3, vp->pci.devfn & 7);
		v &= (uint8_t)~VIRTIO_CONFIG_S_DRIVER_OK;
		vp->status = v;
		virtio_pci_set_needs_reset(vp);
		return;
	}
	vp->status = v;
	/* Buffers made available before DRIVER_OK are looked at now. */
	if ((v & VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_DRIVER_OK))
		kick_all(vp);
}

static void enable_queue(struct virtio_pci *vp, struct vp_queue *pq)
{
	if (pq->vq.ready || pq->vq.broken)
		return;
	if (!(vp->status & VIRTIO_CONFIG_S_FEATURES_OK)) {
		vlog_ratelimited(LOG_WARN, "virtio %02x.%u: queue %u enabled before FEATURES_OK",
				 vp->pci.devfn >> 3, vp->pci.devfn & 7,
				 pq->vq.index);
		virtio_pci_set_needs_reset(vp);
		return;
	}
	/* On failure the queue is broken and on_broken sets NEEDS_RESET. */
	virtq_enable(&pq->vq, pq->size, pq->desc, pq->driver, pq->device,
		     vp->driver_features);
	kicks_sync(vp);
}

/* Set the low or high half (or all, @size 8) of a 64-bit field. */
static void set64(uint64_t *field, unsigned half_off, unsigned size,
		  uint64_t v)
{
	if (size == 8)
		*field = v;
	else if (half_off == 0)
		*field = (*field & 0xffffffff00000000ull) | (uint32_t)v;
	else
		*field = (*field & 0xffffffffull) | (uint64_t)(uint32_t)v << 32;
}

static void common_write(struct virtio_pci *vp, unsigned off, unsigned size,
			 uint64_t v)
{
	struct vp_queue *pq = vp->queue_select < vp->num_queues ?
		&vp->queue[vp->queue_select] : NULL;

	if (vp->reset_pending && off != VIRTIO_PCI_COMMON_STATUS)
		return;		/* the driver waits for status 0 first */
	if (off >= VIRTIO_PCI_COMMON_Q_DESCLO && off < VIRTIO_PCI_COMMON_LEN) {
		unsigned base = off & ~7u, half = off & 7u;
		uint64_t *field;

		if (!((size == 4 && (half == 0 || half == 4)) ||
		      (size == 8 && half == 0)))
			goto bad;
		if (!pq || pq->vq.ready)
			return;		/* fixed once the queue runs */
		field = base == VIRTIO_PCI_COMMON_Q_DESCLO ? &pq->desc :
			base == VIRTIO_PCI_COMMON_Q_AVAILLO ? &pq->driver :
			&pq->device;
		set64(field, half, size, v);
		return;
	}
	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT:
		if (size != 4)
			goto bad;
		vp->dfselect = (uint32_t)v;
		return;
	case VIRTIO_PCI_COMMON_GFSELECT:
		if (size != 4)
			goto bad;
		vp->gfselect = (uint32_t)v;
		return;
	case VIRTIO_PCI_COMMON_GF:
		if (size != 4)
			goto bad;
		if (vp->status & VIRTIO_CONFIG_S_FEATURES_OK)
			return;		/* negotiation is over */
		if (vp->gfselect < 2) {
			unsigned sh = 32 * vp->gfselect;

			vp->driver_features &= ~(0xffffffffull << sh);
			vp->driver_features |= (uint64_t)(uint32_t)v << sh;
		}
		return;
	case VIRTIO_PCI_COMMON_MSIX:
		if (size != 2)
			goto bad;
		vp->config_vector = checked_vector(vp, (uint16_t)v);
		vectors_sync(vp);
		return;
	case VIRTIO_PCI_COMMON_STATUS:
		if (size != 1)
			goto bad;
		write_status(vp, (uint8_t)v);
		return;
	case VIRTIO_PCI_COMMON_Q_SELECT:
		if (size != 2)
			goto bad;
		vp->queue_select = (uint16_t)v;
		return;
	case VIRTIO_PCI_COMMON_Q_SIZE:
		if (size != 2)
			goto bad;
		if (!pq || pq->vq.ready)
			return;
		if (v == 0 || v > vp->queue_size_max || (v & (v - 1))) {
			vlog_ratelimited(LOG_WARN, "virtio %02x.%u: queue size %u refused (power of two up to %u)",
					 vp->pci.devfn >> 3, vp->pci.devfn & 7,
					 (unsigned)v, vp->queue_size_max);
			return;
		}
		pq->size = (uint16_t)v;
		return;
	case VIRTIO_PCI_COMMON_Q_MSIX:
		if (size != 2)
			goto bad;
		if (pq) {
			pq->vector = checked_vector(vp, (uint16_t)v);
			vectors_sync(vp);
		}
		return;
	case VIRTIO_PCI_COMMON_Q_ENABLE:
		if (size != 2)
			goto bad;
		if (pq && v == 1)
			enable_queue(vp, pq);
		return;
	default:
		break;		/* read-only fields: ignored */
	}
	if (off < VIRTIO_PCI_COMMON_LEN)
		return;
bad:
	vlog_ratelimited(LOG_WARN, "virtio %02x.%u: %u-byte write at common config 0x%x ignored",
			 vp->pci.devfn >> 3, vp->pci.devfn & 7, size, off);
}

/* ---- the BAR ------------------------------------------------------------ */

static void notify_write(struct virtio_pci *vp, unsigned off)
{
	unsigned q = off / VIRTIO_PCI_NOTIFY_MULT;
	struct virtq *vq;

	if (q >= vp->num_queues || vp->reset_pending ||
	    (vp->status & (VIRTIO_CONFIG_S_NEEDS_RESET |
			   VIRTIO_CONFIG_S_DRIVER_OK)) != VIRTIO_CONFIG_S_DRIVER_OK)
		return;
	vq = &vp->queue[q].vq;
	if (vq->ready && !vq->broken)
		vp->ops->queue_notify(vp->opaque, q);
}

static uint64_t bar_read(void *opaque, uint64_t offset, unsigned size)
{
	struct virtio_pci *vp = opaque;
	unsigned off = (unsigned)(offset & 0xfff);

	switch (offset & ~0xfffull) {
	case VIRTIO_PCI_COMMON_OFF:
		return common_read(vp, off, size);
	case VIRTIO_PCI_ISR_OFF: {
		/* §4.1.4.5: reading clears it and lowers INTx. */
		uint8_t isr = vp->isr;

		if (off != 0)
			return 0;
		vp->isr = 0;
		pci_set_irq(&vp->pci, 0);
		return isr;
	}
	case VIRTIO_PCI_DEVICE_OFF:
		if (off >= vp->config_len || size > vp->config_len - off ||
		    !vp->ops->config_read)
			return 0;
		return vp->ops->config_read(vp->opaque, off, size);
	default:
		return 0;	/* notify area reads as 0 */
	}
}

static void bar_write(void *opaque, uint64_t offset, uint64_t value,
		      unsigned size)
{
	struct virtio_pci *vp = opaque;
	unsigned off = (unsigned)(offset & 0xfff);

	switch (offset & ~0xfffull) {
	case VIRTIO_PCI_COMMON_OFF:
		common_write(vp, off, size, value);
		return;
	case VIRTIO_PCI_DEVICE_OFF:
		if (off >= vp->config_len || size > vp->config_len - off ||
		    !vp->ops->config_write || vp->reset_pending)
			return;
		vp->ops->config_write(vp->opaque, off, size, value);
		return;
	case VIRTIO_PCI_NOTIFY_OFF:
		vp->kicks_exit++;
		notify_write(vp, off);
		return;
	default:
		return;		/* ISR is read-only */
	}
}

static const struct bus_ops virtio_bar_ops = {
	.name = "virtio-pci",
	.read = bar_read,
	.write = bar_write,
};

/* ---- eventfd doorbells (iofd.h) ----------------------------------------- */

/*
 * Derived, never saved: each ready queue's notify address (BAR 4 + 0x3000
 * + 4 * queue; §4.1.4.4: one address per queue, so no datamatch: whatever
 * value or width the driver writes there is a notification) as an
 * ioeventfd whenever BAR 4 decodes; each MSI-X vector a queue or the
 * configuration uses as an irqfd whenever MSI-X is enabled and its
 * message is an APIC one.  iofd_sync() brings both in line after every
 * change of what they derive from: BAR moves (bar_mapped), queue enable,
 * vector assignment, MSI-X table and control writes (msix_changed),
 * device reset and state load.  The MMIO handler stays the path for
 * everything else (and for the notify area when KVM has no ioeventfd).
 */

/* The I/O thread, device lock held: the doorbell of queue @arg rang. */
static void kick_handler(void *arg)
{
	struct vp_queue *pq = arg;

	pq->vp->kicks_fd++;
	notify_write(pq->vp, pq->index * VIRTIO_PCI_NOTIFY_MULT);
}

/* Drop @pq's ioeventfd; returns whether the doorbell had rung unseen. */
static bool kick_detach(struct virtio_pci *vp, struct vp_queue *pq)
{
	uint64_t count;
	bool rung;

	if (pq->kick_fd < 0)
		return false;
	vp->iofd.ops->ioeventfd_remove(vp->iofd.opaque, pq->kick_gpa,
				       pq->kick_fd);
	rung = read(pq->kick_fd, &count, sizeof(count)) == sizeof(count);
	close(pq->kick_fd);
	pq->kick_fd = -1;
	pq->kick_gpa = PCI_BAR_UNMAPPED;
	return rung;
}

static void kick_attach(struct virtio_pci *vp, struct vp_queue *pq,
			uint64_t gpa)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), r;

	r = fd < 0 ? -errno :
	    vp->iofd.ops->ioeventfd_add(vp->iofd.opaque, gpa, fd, kick_handler, pq);
	if (r == 0) {
		pq->kick_fd = fd;
		pq->kick_gpa = gpa;
		return;
	}
	if (fd >= 0)
		close(fd);
	if (r == -ENOTSUP)
		vp->no_ioeventfd = true;	/* the exit path, for good */
	else
		vlog_ratelimited(LOG_WARN, "virtio %02x.%u: queue %u's doorbell at 0x%llx stays an exit: %s",
				 vp->pci.devfn >> 3, vp->pci.devfn & 7, pq->index,
				 (unsigned long long)gpa, strerror(-r));
}

/* Where queue @pq's ioeventfd belongs now, or PCI_BAR_UNMAPPED. */
static uint64_t kick_want(const struct virtio_pci *vp,
			  const struct vp_queue *pq)
{
	uint64_t bar = vp->pci.bar[VIRTIO_PCI_BAR].addr;

	if (!vp->iofd.ops || vp->no_ioeventfd || bar == PCI_BAR_UNMAPPED ||
	    vp->reset_pending || !pq->vq.ready)
		return PCI_BAR_UNMAPPED;
	return bar + VIRTIO_PCI_NOTIFY_OFF + pq->index * VIRTIO_PCI_NOTIFY_MULT;
}

static void kicks_sync(struct virtio_pci *vp)
{
	uint64_t rung = 0;

	for (unsigned q = 0; q < vp->num_queues; q++) {
		struct vp_queue *pq = &vp->queue[q];
		uint64_t want = kick_want(vp, pq);

		if (want == pq->kick_gpa)
			continue;
		if (kick_detach(vp, pq))
			rung |= 1ull << q;
		if (want != PCI_BAR_UNMAPPED)
			kick_attach(vp, pq, want);
	}
	/* A doorbell rung just before a move reaches the device, as its
	 * exit would have (after a reset, notify_write ignores it). */
	for (unsigned q = 0; rung && q < vp->num_queues; q++)
		if (rung & (1ull << q))
			notify_write(vp, q * VIRTIO_PCI_NOTIFY_MULT);
}

static void vector_release(struct virtio_pci *vp, struct vp_vector *x)
{
	if (x->fd < 0)
		return;
	vp->iofd.ops->irqfd_remove(vp->iofd.opaque, x->gsi, x->fd);
	close(x->fd);
	x->fd = -1;
	x->gsi = -1;
}

static bool vector_used(const struct virtio_pci *vp, unsigned v)
{
	if (v == vp->config_vector)
		return true;
	for (unsigned q = 0; q < vp->num_queues; q++)
		if (vp->queue[q].vector == v)
			return true;
	return false;
}

/* An MSI to the local APICs (Intel SDM vol. 3 §11.11.1): 0xfeeXXXXX. */
static bool msi_addr_ok(uint64_t addr)
{
	return (addr & 0xfffffffffff00000ull) == 0xfee00000ull;
}

static void vector_attach(struct virtio_pci *vp, unsigned v, uint64_t addr,
			  uint32_t data)
{
	struct vp_vector *x = &vp->vec[v];
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), gsi;

	gsi = fd < 0 ? -errno :
	      vp->iofd.ops->irqfd_add(vp->iofd.opaque, fd, addr, data);
	if (gsi >= 0) {
		*x = (struct vp_vector){ fd, gsi, addr, data };
		return;
	}
	if (fd >= 0)
		close(fd);
	if (gsi == -ENOTSUP)
		vp->no_irqfd = true;
	else
		vlog_ratelimited(LOG_WARN, "virtio %02x.%u: MSI-X vector %u stays on the PCI host's path: %s",
				 vp->pci.devfn >> 3, vp->pci.devfn & 7, v,
				 strerror(-gsi));
}

static void vectors_sync(struct virtio_pci *vp)
{
	for (unsigned v = 0; v < vp->nvectors; v++) {
		struct vp_vector *x = &vp->vec[v];
		uint64_t addr;
		uint32_t data;

		if (!vp->iofd.ops || vp->no_irqfd ||
		    !pci_msix_enabled(&vp->pci) || !vector_used(vp, v) ||
		    !pci_msix_message(&vp->pci, v, &addr, &data) ||
		    !msi_addr_ok(addr)) {
			vector_release(vp, x);
			continue;
		}
		if (x->fd < 0) {
			vector_attach(vp, v, addr, data);
		} else if (x->addr != addr || x->data != data) {
			if (vp->iofd.ops->irqfd_update(vp->iofd.opaque, x->gsi,
						       addr, data) < 0)
				vector_release(vp, x);
			else {
				x->addr = addr;
				x->data = data;
			}
		}
	}
}

static void iofd_sync(struct virtio_pci *vp)
{
	kicks_sync(vp);
	vectors_sync(vp);
}

/* Everything off, no notification replayed: for teardown and load. */
static void iofd_release(struct virtio_pci *vp)
{
	if (!vp->iofd.ops)
		return;
	for (unsigned q = 0; q < vp->num_queues; q++)
		kick_detach(vp, &vp->queue[q]);
	for (unsigned v = 0; v < vp->nvectors; v++)
		vector_release(vp, &vp->vec[v]);
}

static void vp_bar_mapped(struct pci_device *dev, unsigned bar, uint64_t addr)
{
	(void)addr;
	if (bar == VIRTIO_PCI_BAR)
		kicks_sync(dev->opaque);
}

static void vp_msix_changed(struct pci_device *dev)
{
	vectors_sync(dev->opaque);
}

unsigned virtio_pci_iofd_kicks(const struct virtio_pci *vp, uint64_t *gpa)
{
	unsigned n = 0;

	for (unsigned q = 0; q < vp->num_queues; q++) {
		if (vp->queue[q].kick_fd >= 0)
			n++;
		if (gpa)
			gpa[q] = vp->queue[q].kick_gpa;
	}
	return n;
}

int virtio_pci_iofd_vector_gsi(const struct virtio_pci *vp, unsigned v)
{
	return v < vp->nvectors ? vp->vec[v].gsi : -1;
}

/* ---- VIRTIO_PCI_CAP_PCI_CFG: BAR access through config space ------------ */

#define PCICFG_BAR	(VIRTIO_PCI_CAP_PCICFG_OFF + 4)
#define PCICFG_OFFSET	(VIRTIO_PCI_CAP_PCICFG_OFF + 8)
#define PCICFG_LENGTH	(VIRTIO_PCI_CAP_PCICFG_OFF + 12)
#define PCICFG_DATA	(VIRTIO_PCI_CAP_PCICFG_OFF + 16)

/* The window's target, if it addresses our BAR sensibly (§4.1.4.9.1). */
static bool pcicfg_target(const struct virtio_pci *vp, unsigned *off,
			  unsigned *len)
{
	const uint8_t *c = vp->pci.config;
	uint32_t o = get32(c + PCICFG_OFFSET), l = get32(c + PCICFG_LENGTH);

	if (c[PCICFG_BAR] != VIRTIO_PCI_BAR || (l != 1 && l != 2 && l != 4) ||
	    (o & (l - 1)) || o >= VIRTIO_PCI_BAR_SIZE)
		return false;
	*off = o;
	*len = l;
	return true;
}

static bool touches_data(unsigned offset, unsigned size)
{
	return offset < PCICFG_DATA + 4 && offset + size > PCICFG_DATA;
}

static uint32_t pcicfg_read(struct pci_device *dev, unsigned offset,
			    unsigned size, uint32_t value)
{
	struct virtio_pci *vp = dev->opaque;
	unsigned off, len;
	uint64_t v;

	if (!touches_data(offset, size) || !pcicfg_target(vp, &off, &len))
		return value;
	v = bar_read(vp, off, len);
	put32(dev->config + PCICFG_DATA, 0);
	for (unsigned i = 0; i < len; i++)
		dev->config[PCICFG_DATA + i] = (uint8_t)(v >> (8 * i));
	return (uint32_t)get_le(dev->config + offset, size);
}

static void pcicfg_write(struct pci_device *dev, unsigned offset,
			 unsigned size, uint32_t value)
{
	struct virtio_pci *vp = dev->opaque;
	unsigned off, len;

	if (!touches_data(offset, size) || !pcicfg_target(vp, &off, &len))
		return;
	bar_write(vp, off, get_le(dev->config + PCICFG_DATA, len), len);
}

/* ---- construction ------------------------------------------------------- */

static int add_vendor_cap(struct pci_device *dev, uint8_t at, uint8_t len,
			  uint8_t type, uint32_t offset, uint32_t length)
{
	int r = pci_add_capability(dev, PCI_CAP_ID_VNDR, at, len);

	if (r < 0)
		return r;
	dev->config[at + 2] = len;
	dev->config[at + 3] = type;
	dev->config[at + 4] = VIRTIO_PCI_BAR;
	put32(dev->config + at + 8, offset);
	put32(dev->config + at + 12, length);
	return 0;
}

static int build_function(struct virtio_pci *vp,
			  const struct virtio_pci_config *cfg)
{
	struct pci_device *d = &vp->pci;
	int r;

	pci_device_init(d, VIRTIO_PCI_VENDOR_ID,
			(uint16_t)(VIRTIO_PCI_DEVICE_ID_BASE + cfg->device_id),
			1, cfg->class_code, VIRTIO_PCI_VENDOR_ID,
			VIRTIO_PCI_SUBSYS_ID, 1);
	d->opaque = vp;
	d->config_read = pcicfg_read;
	d->config_write = pcicfg_write;
	d->bar_mapped = vp_bar_mapped;
	d->msix_changed = vp_msix_changed;
	r = pci_device_set_bar(d, VIRTIO_PCI_BAR, PCI_BAR_MEM64,
			       VIRTIO_PCI_BAR_SIZE, false, &virtio_bar_ops, vp);
	if (r < 0)
		return r;
	/* pci_add_capability() puts each new one first: add in reverse. */
	r = add_vendor_cap(d, VIRTIO_PCI_CAP_PCICFG_OFF, 20,
			   VIRTIO_PCI_CAP_PCI_CFG, 0, 0);
	if (r < 0)
		return r;
	d->config[PCICFG_BAR] = 0;	/* the driver picks the window */
	d->wmask[PCICFG_BAR] = 0xff;
	memset(d->wmask + PCICFG_OFFSET, 0xff, 12);	/* offset, length, data */
	if (cfg->config_len) {
		r = add_vendor_cap(d, VIRTIO_PCI_CAP_DEVICE_OFF, 16,
				   VIRTIO_PCI_CAP_DEVICE_CFG,
				   VIRTIO_PCI_DEVICE_OFF, cfg->config_len);
		if (r < 0)
			return r;
	}
	r = add_vendor_cap(d, VIRTIO_PCI_CAP_ISR_OFF, 16, VIRTIO_PCI_CAP_ISR_CFG,
			   VIRTIO_PCI_ISR_OFF, 1);
	if (r < 0)
		return r;
	r = add_vendor_cap(d, VIRTIO_PCI_CAP_NOTIFY_OFF, 20,
			   VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_OFF,
			   cfg->num_queues * VIRTIO_PCI_NOTIFY_MULT);
	if (r < 0)
		return r;
	put32(d->config + VIRTIO_PCI_CAP_NOTIFY_OFF + 16, VIRTIO_PCI_NOTIFY_MULT);
	r = add_vendor_cap(d, VIRTIO_PCI_CAP_COMMON_OFF, 16,
			   VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFF,
			   VIRTIO_PCI_COMMON_LEN);
	if (r < 0)
		return r;
	return pci_msix_init(d, VIRTIO_PCI_CAP_MSIX_OFF, vp->nvectors,
			     VIRTIO_PCI_MSIX_BAR);
}

struct virtio_pci *virtio_pci_new(const struct virtio_pci_config *cfg,
				  int *err)
{
	struct virtio_pci *vp;
	int r;

	if (!cfg->pci || !cfg->mem || !cfg->ops || !cfg->ops->queue_notify ||
	    cfg->num_queues < 1 || cfg->num_queues > VIRTIO_PCI_MAX_QUEUES ||
	    cfg->queue_size < 1 || cfg->queue_size > VIRTQ_MAX_SIZE ||
	    (cfg->queue_size & (cfg->queue_size - 1)) ||
	    cfg->config_len > 4096 || cfg->device_id >= 0x40) {
		*err = -EINVAL;
		return NULL;
	}
	vp = calloc(1, sizeof(*vp));
	if (!vp) {
		*err = -ENOMEM;
		return NULL;
	}
	vp->ops = cfg->ops;
	vp->opaque = cfg->opaque;
	vp->iofd = cfg->iofd;
	vp->num_queues = cfg->num_queues;
	vp->config_len = cfg->config_len;
	vp->queue_size_max = cfg->queue_size;
	vp->nvectors = cfg->num_queues + 1;
	vp->device_features = cfg->features | (1ull << VIRTIO_F_VERSION_1) |
			      (1ull << VIRTIO_F_INDIRECT_DESC) |
			      (1ull << VIRTIO_F_EVENT_IDX);
	for (unsigned q = 0; q < vp->num_queues; q++) {
		virtq_init(&vp->queue[q].vq, cfg->mem, q);
		vp->queue[q].vq.on_broken = queue_broken;
		vp->queue[q].vq.opaque = vp;
		vp->queue[q].vp = vp;
		vp->queue[q].index = q;
		vp->queue[q].kick_fd = -1;
		vp->queue[q].kick_gpa = PCI_BAR_UNMAPPED;
	}
	for (unsigned v = 0; v < VIRTIO_PCI_MAX_QUEUES + 1; v++)
		vp->vec[v] = (struct vp_vector){ .fd = -1, .gsi = -1 };
	r = build_function(vp, cfg);
	if (r == 0)
		r = pci_add_device(cfg->pci, &vp->pci, cfg->devfn);
	if (r < 0) {
		pci_device_cleanup(&vp->pci);
		free(vp);
		*err = r;
		return NULL;
	}
	finish_reset(vp);
	return vp;
}

void virtio_pci_free(struct virtio_pci *vp)
{
	if (!vp)
		return;
	if (vp->kicks_fd + vp->kicks_exit + vp->msis_fd + vp->msis_host)
		vlog(LOG_INFO, "virtio %02x.%u: notifies %llu by ioeventfd, %llu by exit; MSI-X %llu by irqfd, %llu by the PCI host",
		     vp->pci.devfn >> 3, vp->pci.devfn & 7,
		     (unsigned long long)vp->kicks_fd,
		     (unsigned long long)vp->kicks_exit,
		     (unsigned long long)vp->msis_fd,
		     (unsigned long long)vp->msis_host);
	iofd_release(vp);
	vp->iofd.ops = NULL;		/* the unmaps below change nothing */
	pci_device_cleanup(&vp->pci);	/* off the bus, BARs unmapped */
	free(vp);
}

struct virtq *virtio_pci_queue(struct virtio_pci *vp, unsigned q)
{
	return q < vp->num_queues ? &vp->queue[q].vq : NULL;
}

uint64_t virtio_pci_features(const struct virtio_pci *vp)
{
	return vp->driver_features;
}

uint8_t virtio_pci_status(const struct virtio_pci *vp)
{
	return vp->status;
}

struct pci_device *virtio_pci_device(struct virtio_pci *vp)
{
	return &vp->pci;
}

/* ---- saved state ---------------------------------------------------------- */

#define QUEUE_TYPE "(qqttt" VIRTQ_STATE_TYPE ")"

GVariant *virtio_pci_save(struct virtio_pci *vp)
{
	GVariantBuilder qb;

	if (vp->inflight || vp->reset_pending)
		return NULL;
	g_variant_builder_init(&qb, G_VARIANT_TYPE("a" QUEUE_TYPE));
	for (unsigned q = 0; q < vp->num_queues; q++) {
		const struct vp_queue *pq = &vp->queue[q];

		if (pq->vq.inflight) {
			g_variant_builder_clear(&qb);
			return NULL;
		}
		g_variant_builder_add(&qb, "(qqttt@" VIRTQ_STATE_TYPE ")", pq->size,
				      pq->vector, (guint64)pq->desc,
				      (guint64)pq->driver, (guint64)pq->device,
				      virtq_save(&pq->vq));
	}
	return g_variant_new("(yttuuqqyyb@a" QUEUE_TYPE ")", vp->status,
			     (guint64)vp->device_features,
			     (guint64)vp->driver_features, vp->dfselect,
			     vp->gfselect, vp->queue_select, vp->config_vector,
			     vp->config_generation, vp->isr, vp->pci.intx_level,
			     g_variant_builder_end(&qb));
}

static bool vector_ok(const struct virtio_pci *vp, uint16_t v)
{
	return v == VIRTIO_MSI_NO_VECTOR || v < vp->nvectors;
}

/* Check queue @q's saved value against the transport state @t already
 * read, into @out (the live queue untouched). */
static int queue_parse(const struct virtio_pci *vp, const struct virtio_pci *t,
		       unsigned q, GVariant *v, struct vp_queue *out,
		       const char *who, char *err, size_t errlen)
{
	const uint64_t ring = (1ull << VIRTIO_F_INDIRECT_DESC) |
			      (1ull << VIRTIO_F_EVENT_IDX);
	guint64 desc, driver, device;
	GVariant *vs;
	int r;

	*out = vp->queue[q];
	g_variant_get(v, "(qqttt@" VIRTQ_STATE_TYPE ")", &out->size, &out->vector,
		      &desc, &driver, &device, &vs);
	out->desc = desc;
	out->driver = driver;
	out->device = device;
	r = virtq_state_parse(&vp->queue[q].vq, vs, vp->queue_size_max, &out->vq,
			      who, err, errlen);
	g_variant_unref(vs);
	if (r < 0)
		return r;
	if (!out->size || out->size > vp->queue_size_max ||
	    (out->size & (out->size - 1)) || !vector_ok(vp, out->vector)) {
		snprintf(err, errlen, "%s: queue %u size %u or MSI-X vector %u out of range",
			 who, q, out->size, out->vector);
		return -EINVAL;
	}
	if (out->vq.ready &&
	    (!(t->status & VIRTIO_CONFIG_S_FEATURES_OK) ||
	     out->vq.size != out->size || out->vq.desc_gpa != out->desc ||
	     out->vq.avail_gpa != out->driver || out->vq.used_gpa != out->device ||
	     out->vq.indirect != !!(t->driver_features & (1ull << VIRTIO_F_INDIRECT_DESC)) ||
	     out->vq.event_idx != !!(t->driver_features & (1ull << VIRTIO_F_EVENT_IDX)))) {
		snprintf(err, errlen, "%s: queue %u enabled with a size, areas or ring features (0x%llx) other than the transport's",
			 who, q, (unsigned long long)(t->driver_features & ring));
		return -EINVAL;
	}
	return 0;
}

int virtio_pci_load(struct virtio_pci *vp, GVariant *state, const char *who,
		    char *err, size_t errlen)
{
	const uint8_t status_bits = VIRTIO_CONFIG_S_ACKNOWLEDGE |
		VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK |
		VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_NEEDS_RESET |
		VIRTIO_CONFIG_S_FAILED;
	struct vp_queue *queues;
	struct virtio_pci t;
	guint64 offered, accepted;
	gboolean intx;
	GVariant *qa;
	int r = 0;

	if (!g_variant_is_of_type(state, G_VARIANT_TYPE(VIRTIO_PCI_STATE_TYPE))) {
		snprintf(err, errlen, "%s: transport state is of type %s, not " VIRTIO_PCI_STATE_TYPE,
			 who, g_variant_get_type_string(state));
		return -EINVAL;
	}
	if (vp->inflight || vp->reset_pending) {
		snprintf(err, errlen, "%s: requests in flight", who);
		return -EBUSY;
	}
	memset(&t, 0, sizeof(t));
	g_variant_get(state, "(yttuuqqyyb@a" QUEUE_TYPE ")", &t.status, &offered,
		      &accepted, &t.dfselect, &t.gfselect, &t.queue_select,
		      &t.config_vector, &t.config_generation, &t.isr, &intx, &qa);
	t.driver_features = accepted;
	if (offered != vp->device_features) {
		snprintf(err, errlen, "%s: saved with features 0x%llx, this device offers 0x%llx",
			 who, (unsigned long long)offered,
			 (unsigned long long)vp->device_features);
		r = -EINVAL;
	} else if (accepted & ~offered) {
		snprintf(err, errlen, "%s: driver features 0x%llx not offered",
			 who, (unsigned long long)accepted);
		r = -EINVAL;
	} else if ((t.status & ~status_bits) || (t.isr & ~3u) ||
		   !vector_ok(vp, t.config_vector)) {
		snprintf(err, errlen, "%s: device status 0x%02x, ISR 0x%02x or config vector %u out of range",
			 who, t.status, t.isr, t.config_vector);
		r = -EINVAL;
	} else if (g_variant_n_children(qa) != vp->num_queues) {
		snprintf(err, errlen, "%s: %zu queues saved, this device has %u",
			 who, (size_t)g_variant_n_children(qa), vp->num_queues);
		r = -EINVAL;
	}
	if (r < 0) {
		g_variant_unref(qa);
		return r;
	}
	queues = calloc(vp->num_queues, sizeof(*queues));
	if (!queues) {
		g_variant_unref(qa);
		snprintf(err, errlen, "%s: out of memory", who);
		return -ENOMEM;
	}
	for (unsigned q = 0; q < vp->num_queues && !r; q++) {
		GVariant *v = g_variant_get_child_value(qa, q);

		r = queue_parse(vp, &t, q, v, &queues[q], who, err, errlen);
		g_variant_unref(v);
	}
	g_variant_unref(qa);
	if (r == 0) {
		/* Doorbells follow the loaded state, not the replaced one. */
		iofd_release(vp);
		vp->status = t.status;
		vp->driver_features = t.driver_features;
		vp->dfselect = t.dfselect;
		vp->gfselect = t.gfselect;
		vp->queue_select = t.queue_select;
		vp->config_vector = t.config_vector;
		vp->config_generation = t.config_generation;
		vp->isr = t.isr;
		for (unsigned q = 0; q < vp->num_queues; q++) {
			vp->queue[q] = queues[q];
			vp->queue[q].kick_fd = -1;	/* released above */
			vp->queue[q].kick_gpa = PCI_BAR_UNMAPPED;
		}
		pci_set_irq(&vp->pci, intx);
		/* BAR mappings and the MSI-X table are the PCI host's, loaded
		 * before this device (it comes first in the machine's table). */
		iofd_sync(vp);
	}
	free(queues);
	return r;
}
