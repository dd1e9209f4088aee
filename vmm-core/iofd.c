/* SPDX-License-Identifier: MIT */
/*
 * The machine's eventfd doorbells over KVM.  See iofd.h.
 */
#include "iofd.h"

#include <errno.h>

#include "hv.h"
#include "iothread.h"
#include "irqroute.h"

/* Any width where KVM can match it; else the 16-bit write virtio 1.x
 * drivers make (§4.1.4.4: the queue index), the others exit as before. */
static unsigned doorbell_len(const struct iofd_hv *h)
{
	return (hv_vm_features(h->vm) & HV_VM_IOEVENTFD_ANYLEN) ? 0 : 2;
}

static int hv_ioeventfd_add(void *opaque, uint64_t gpa, int fd,
			    void (*fn)(void *arg), void *arg)
{
	struct iofd_hv *h = opaque;
	int r;

	if (!h->ioeventfd || !h->io)
		return -ENOTSUP;
	r = iothread_add(h->io, fd, fn, arg);
	if (r < 0)
		return r;
	r = hv_vm_ioeventfd(h->vm, gpa, doorbell_len(h), false, fd, true);
	if (r < 0)
		iothread_remove(h->io, fd);
	return r;
}

static void hv_ioeventfd_remove(void *opaque, uint64_t gpa, int fd)
{
	struct iofd_hv *h = opaque;

	/* KVM first: no signal arrives once the thread forgot the fd. */
	hv_vm_ioeventfd(h->vm, gpa, doorbell_len(h), false, fd, false);
	iothread_remove(h->io, fd);
}

static int hv_irqfd_add(void *opaque, int fd, uint64_t addr, uint32_t data)
{
	struct iofd_hv *h = opaque;
	int gsi, r;

	if (!h->irqfd || !h->routes)
		return -ENOTSUP;
	gsi = irq_routes_add_msi(h->routes, addr, data);
	if (gsi < 0)
		return gsi;
	r = hv_vm_irqfd(h->vm, (uint32_t)gsi, fd, true);
	if (r < 0) {
		irq_routes_remove_msi(h->routes, (unsigned)gsi);
		return r;
	}
	return gsi;
}

static int hv_irqfd_update(void *opaque, int gsi, uint64_t addr,
			   uint32_t data)
{
	struct iofd_hv *h = opaque;

	return irq_routes_set_msi(h->routes, (unsigned)gsi, addr, data);
}

static void hv_irqfd_remove(void *opaque, int gsi, int fd)
{
	struct iofd_hv *h = opaque;

	hv_vm_irqfd(h->vm, (uint32_t)gsi, fd, false);
	irq_routes_remove_msi(h->routes, (unsigned)gsi);
}

const struct iofd_ops iofd_hv_ops = {
	.ioeventfd_add = hv_ioeventfd_add,
	.ioeventfd_remove = hv_ioeventfd_remove,
	.irqfd_add = hv_irqfd_add,
	.irqfd_update = hv_irqfd_update,
	.irqfd_remove = hv_irqfd_remove,
};
