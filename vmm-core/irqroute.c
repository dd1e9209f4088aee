/* SPDX-License-Identifier: MIT */
/*
 * The machine's merged GSI routing table.  See irqroute.h.
 */
#include "irqroute.h"

#include <errno.h>
#include <stdlib.h>

struct msi_gsi {
	bool used;
	uint64_t addr;
	uint32_t data;
};

struct irq_routes {
	irq_routes_commit_fn commit;
	void *opaque;
	struct hv_msi_route ioapic[IRQ_ROUTES_MSI_BASE];
	unsigned nioapic;
	unsigned nmsi;			/* MSI GSIs this table may hand out */
	unsigned msi_used;
	struct msi_gsi msi[IRQ_ROUTES_MSI_MAX];
	/* Scratch for the merged table. */
	struct hv_msi_route all[IRQ_ROUTES_MSI_BASE + IRQ_ROUTES_MSI_MAX];
};

struct irq_routes *irq_routes_new(unsigned gsi_count,
				  irq_routes_commit_fn commit, void *opaque)
{
	struct irq_routes *rt = calloc(1, sizeof(*rt));

	if (!rt)
		return NULL;
	rt->commit = commit;
	rt->opaque = opaque;
	rt->nmsi = gsi_count > IRQ_ROUTES_MSI_BASE ?
		   gsi_count - IRQ_ROUTES_MSI_BASE : 0;
	if (rt->nmsi > IRQ_ROUTES_MSI_MAX)
		rt->nmsi = IRQ_ROUTES_MSI_MAX;
	return rt;
}

void irq_routes_free(struct irq_routes *rt)
{
	free(rt);
}

static int commit(struct irq_routes *rt)
{
	unsigned n = 0;

	for (unsigned i = 0; i < rt->nioapic; i++)
		rt->all[n++] = rt->ioapic[i];
	for (unsigned i = 0; i < rt->nmsi; i++)
		if (rt->msi[i].used)
			rt->all[n++] = (struct hv_msi_route){
				IRQ_ROUTES_MSI_BASE + i, rt->msi[i].addr,
				rt->msi[i].data,
			};
	return rt->commit(rt->opaque, rt->all, n);
}

int irq_routes_set_ioapic(struct irq_routes *rt,
			  const struct hv_msi_route *routes, unsigned n)
{
	if (n > IRQ_ROUTES_MSI_BASE)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		if (routes[i].gsi >= IRQ_ROUTES_MSI_BASE)
			return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		rt->ioapic[i] = routes[i];
	rt->nioapic = n;
	return commit(rt);
}

int irq_routes_add_msi(struct irq_routes *rt, uint64_t addr, uint32_t data)
{
	for (unsigned i = 0; i < rt->nmsi; i++) {
		struct msi_gsi *g = &rt->msi[i];
		int r;

		if (g->used)
			continue;
		*g = (struct msi_gsi){ true, addr, data };
		r = commit(rt);
		if (r < 0) {
			g->used = false;
			return r;
		}
		rt->msi_used++;
		return (int)(IRQ_ROUTES_MSI_BASE + i);
	}
	return -ENOSPC;
}

static struct msi_gsi *lookup(struct irq_routes *rt, unsigned gsi)
{
	unsigned i = gsi - IRQ_ROUTES_MSI_BASE;

	if (gsi < IRQ_ROUTES_MSI_BASE || i >= rt->nmsi || !rt->msi[i].used)
		return NULL;
	return &rt->msi[i];
}

int irq_routes_set_msi(struct irq_routes *rt, unsigned gsi, uint64_t addr,
		       uint32_t data)
{
	struct msi_gsi *g = lookup(rt, gsi);

	if (!g)
		return -EINVAL;
	if (g->addr == addr && g->data == data)
		return 0;
	g->addr = addr;
	g->data = data;
	return commit(rt);
}

void irq_routes_remove_msi(struct irq_routes *rt, unsigned gsi)
{
	struct msi_gsi *g = lookup(rt, gsi);

	if (!g)
		return;
	g->used = false;
	rt->msi_used--;
	commit(rt);
}

unsigned irq_routes_msi_count(const struct irq_routes *rt)
{
	return rt->msi_used;
}
