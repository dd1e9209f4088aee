/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/irqroute.h - the machine's one GSI routing table.
 *
 * KVM keeps a single GSI -> interrupt routing table per VM and replaces it
 * as a whole (KVM_SET_GSI_ROUTING, hv_vm_set_msi_routes()).  Two users
 * share it: the IOAPIC, whose redirection table is mirrored into GSIs
 * 0..IRQ_ROUTES_MSI_BASE-1 (so that EOIs of level-triggered vectors exit to
 * us), and irqfds, each on a GSI of its own from IRQ_ROUTES_MSI_BASE up,
 * routed to the MSI its eventfd raises.  This table holds both parts and
 * commits the merged whole after every change; neither user can drop the
 * other's routes.
 *
 * Pure bookkeeping over a commit function (the machine's calls
 * hv_vm_set_msi_routes()), so it is tested without KVM.  Every call with
 * the device lock held.
 */
#ifndef VIVARIUM_IRQROUTE_H
#define VIVARIUM_IRQROUTE_H

#include <stdbool.h>
#include <stdint.h>

#include "hv.h"

/* The IOAPIC's pins come first; the rest are for MSIs. */
#define IRQ_ROUTES_MSI_BASE	HV_IOAPIC_PINS
/* MSI GSIs handed out at most (whatever KVM allows beyond that). */
#define IRQ_ROUTES_MSI_MAX	1000

/* Replace the VM's table with @n routes; 0 or -errno. */
typedef int (*irq_routes_commit_fn)(void *opaque,
				    const struct hv_msi_route *routes,
				    unsigned n);

struct irq_routes;

/* A table for GSIs below @gsi_count (hv_vm_gsi_count()), committed with
 * @commit.  Empty; nothing committed yet.  NULL if out of memory. */
struct irq_routes *irq_routes_new(unsigned gsi_count,
				  irq_routes_commit_fn commit, void *opaque);
void irq_routes_free(struct irq_routes *rt);

/* The IOAPIC's part: replace every route below IRQ_ROUTES_MSI_BASE with
 * @n routes (each gsi < IRQ_ROUTES_MSI_BASE), then commit.  0, -EINVAL
 * or the commit's -errno (the table keeps the new part: the next commit
 * retries it). */
int irq_routes_set_ioapic(struct irq_routes *rt,
			  const struct hv_msi_route *routes, unsigned n);

/* A free GSI routed to MSI (@addr, @data), committed.  Returns the GSI,
 * -ENOSPC or the commit's -errno (then nothing was taken). */
int irq_routes_add_msi(struct irq_routes *rt, uint64_t addr, uint32_t data);
/* Re-route MSI @gsi (from irq_routes_add_msi); commits only if the
 * message changed.  0, -EINVAL (not one of ours) or the commit's -errno. */
int irq_routes_set_msi(struct irq_routes *rt, unsigned gsi, uint64_t addr,
		       uint32_t data);
/* Give MSI @gsi back, committed (its irqfd detached first). */
void irq_routes_remove_msi(struct irq_routes *rt, unsigned gsi);

/* MSI GSIs in use now (tests). */
unsigned irq_routes_msi_count(const struct irq_routes *rt);

#endif
