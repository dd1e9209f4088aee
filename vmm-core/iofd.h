/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/iofd.h - eventfd doorbells the machine hands a device (as it
 * hands the VGA a memory slot, memslot.h), so that the device never calls
 * the hypervisor layer itself:
 *
 *  - ioeventfd: guest writes to a doorbell address signal an eventfd
 *    inside KVM instead of exiting to a vCPU thread; the machine's I/O
 *    thread (iothread.h) then calls the device's handler with the device
 *    lock held.  The vCPU does not wait for the device.
 *  - irqfd: a GSI routed to an MSI message (irqroute.h), with an eventfd
 *    attached: the device raises the MSI by writing 1 to the eventfd.
 *
 * Both are optional: an op answering -ENOTSUP (no KVM_CAP_IOEVENTFD or
 * KVM_CAP_IRQFD, VIVARIUM_IOFD=off, unit tests) leaves the device on its
 * exit path (MMIO handler) and its direct MSIs.  The eventfds are the
 * device's: it creates them (non-blocking) and closes them after removing.
 * Every call with the device lock held.
 */
#ifndef VIVARIUM_IOFD_H
#define VIVARIUM_IOFD_H

#include <stdbool.h>
#include <stdint.h>

struct iothread;
struct irq_routes;
struct hv_vm;

struct iofd_ops {
	/*
	 * ioeventfd_add - guest writes of any width to MMIO address @gpa
	 * signal @fd; on the I/O thread, @fn(@arg) runs (device lock held)
	 * after each signal or burst of signals.  Returns 0, -ENOTSUP or
	 * -errno (the address taken, too many).
	 */
	int (*ioeventfd_add)(void *opaque, uint64_t gpa, int fd,
			     void (*fn)(void *arg), void *arg);
	/* Undo ioeventfd_add(@gpa, @fd): afterwards @fn is not called for
	 * it; a signal not yet handled stays in @fd's counter. */
	void (*ioeventfd_remove)(void *opaque, uint64_t gpa, int fd);
	/*
	 * irqfd_add - route a free GSI to MSI (@addr, @data) (Intel SDM vol.
	 * 3 §11.11 format) and attach @fd to it: writing to @fd raises that
	 * MSI.  Returns the GSI (>= 0), -ENOTSUP or -errno.
	 */
	int (*irqfd_add)(void *opaque, int fd, uint64_t addr, uint32_t data);
	/* Re-route @gsi to (@addr, @data).  0 or -errno. */
	int (*irqfd_update)(void *opaque, int gsi, uint64_t addr,
			    uint32_t data);
	/* Detach @fd from @gsi and free the GSI. */
	void (*irqfd_remove)(void *opaque, int gsi, int fd);
};

struct iofd {
	const struct iofd_ops *ops;	/* NULL: none (exit path, direct MSIs) */
	void *opaque;
};

/* The machine's doorbells over KVM: ioeventfds and irqfds of @vm, handlers
 * on @io, GSIs from @routes.  Fields are the machine's. */
struct iofd_hv {
	struct hv_vm *vm;
	struct iothread *io;
	struct irq_routes *routes;
	bool ioeventfd;		/* off: ioeventfd_add says -ENOTSUP */
	bool irqfd;		/* off: irqfd_add says -ENOTSUP */
};

extern const struct iofd_ops iofd_hv_ops;

static inline struct iofd iofd_hv(struct iofd_hv *h)
{
	return (struct iofd){ .ops = &iofd_hv_ops, .opaque = h };
}

#endif
