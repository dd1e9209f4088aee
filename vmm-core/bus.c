/* SPDX-License-Identifier: MIT */
#include "bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "log.h"

struct bus_range {
	uint64_t base, len;
	const struct bus_ops *ops;
	void *opaque;
};

struct bus {
	char name[16];
	struct bus_range *r;	/* sorted by base, non-overlapping */
	unsigned n, cap;
};

struct bus *bus_new(const char *name)
{
	struct bus *bus = calloc(1, sizeof(*bus));

	if (bus)
		strncpy(bus->name, name ? name : "bus", sizeof(bus->name) - 1);
	return bus;
}

void bus_free(struct bus *bus)
{
	if (!bus)
		return;
	free(bus->r);
	free(bus);
}

/* Index of the first range whose end is above @addr. */
static unsigned lower_bound(const struct bus *bus, uint64_t addr)
{
	unsigned lo = 0, hi = bus->n;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const struct bus_range *r = &bus->r[mid];

		if (r->base + r->len <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len,
		 const struct bus_ops *ops, void *opaque)
{
	unsigned i;

	if (!len || base + len < base || !ops)
		return -EINVAL;
	i = lower_bound(bus, base);
	if (i < bus->n && bus->r[i].base < base + len)
		return -EEXIST;
	if (bus->n == bus->cap) {
		unsigned cap = bus->cap ? bus->cap * 2 : 16;
		struct bus_range *r = realloc(bus->r, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		bus->r = r;
		bus->cap = cap;
	}
	memmove(&bus->r[i + 1], &bus->r[i], (bus->n - i) * sizeof(*bus->r));
	bus->r[i] = (struct bus_range){ base, len, ops, opaque };
	bus->n++;
	return 0;
}

int bus_unregister(struct bus *bus, uint64_t base)
{
	unsigned i = lower_bound(bus, base);

	if (i >= bus->n || bus->r[i].base != base)
		return -ENOENT;
	memmove(&bus->r[i], &bus->r[i + 1], (bus->n - i - 1) * sizeof(*bus->r));
	bus->n--;
	return 0;
}

/* The range wholly containing [addr, addr + size), or NULL. */
static const struct bus_range *find(const struct bus *bus, uint64_t addr,
				    unsigned size)
{
	unsigned i = lower_bound(bus, addr);
	const struct bus_range *r;

	if (i >= bus->n)
		return NULL;
	r = &bus->r[i];
	if (addr < r->base || addr - r->base + size > r->len)
		return NULL;
	return r;
}

static bool size_ok(unsigned size)
{
	return size == 1 || size == 2 || size == 4 || size == 8;
}

uint64_t bus_read(struct bus *bus, uint64_t addr, unsigned size, int *claimed)
{
	const struct bus_range *r = size_ok(size) ? find(bus, addr, size) : NULL;

	if (claimed)
		*claimed = r != NULL;
	if (!r || !r->ops->read) {
		if (!r)
			vlog_ratelimited(LOG_INFO, "%s: unclaimed read of %u bytes at 0x%llx",
					 bus->name, size, (unsigned long long)addr);
		return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
	}
	return r->ops->read(r->opaque, addr - r->base, size);
}

void bus_write(struct bus *bus, uint64_t addr, uint64_t value, unsigned size,
	       int *claimed)
{
	const struct bus_range *r = size_ok(size) ? find(bus, addr, size) : NULL;

	if (claimed)
		*claimed = r != NULL;
	if (!r) {
		vlog_ratelimited(LOG_INFO, "%s: unclaimed write of %u bytes at 0x%llx",
				 bus->name, size, (unsigned long long)addr);
		return;
	}
	if (r->ops->write) {
		if (size < 8)
			value &= (1ull << (size * 8)) - 1;
		r->ops->write(r->opaque, addr - r->base, value, size);
	}
}
