/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/bus.h - the port-I/O and MMIO buses.  A device registers address
 * ranges with an ops table; accesses reach it as an offset from the start of
 * its range.  Overlapping registrations are rejected.  An access nobody
 * claims reads as all-ones, drops writes, and is logged (rate-limited).
 * The bus itself takes no lock: callers hold the machine's device lock.
 */
#ifndef VIVARIUM_BUS_H
#define VIVARIUM_BUS_H

#include <stdint.h>

struct bus_ops {
	const char *name;
	/* @offset from the registered base; @size 1, 2, 4 or 8 bytes.
	 * Returns the value read (low @size bytes used). */
	uint64_t (*read)(void *opaque, uint64_t offset, unsigned size);
	void (*write)(void *opaque, uint64_t offset, uint64_t value,
		      unsigned size);
};

struct bus;

/* @name: "pio" or "mmio", used in log messages. */
struct bus *bus_new(const char *name);
void bus_free(struct bus *bus);

/*
 * bus_register - claim [@base, @base + @len).  Returns 0, -EINVAL for a zero
 * length or a range that wraps, -EEXIST if it overlaps a registered range,
 * -ENOMEM.  @ops must outlive the registration.
 */
int bus_register(struct bus *bus, uint64_t base, uint64_t len,
		 const struct bus_ops *ops, void *opaque);
/* Remove the range starting exactly at @base.  Returns 0 or -ENOENT. */
int bus_unregister(struct bus *bus, uint64_t base);

/*
 * Dispatch one access of @size bytes (1, 2, 4 or 8) at @addr.  An access
 * that starts in a range but runs past its end, or hits no range, reads as
 * all-ones and writes nothing.  bus_read returns the value; both return
 * through *claimed (may be NULL) whether a device handled it.
 */
uint64_t bus_read(struct bus *bus, uint64_t addr, unsigned size, int *claimed);
void bus_write(struct bus *bus, uint64_t addr, uint64_t value, unsigned size,
	       int *claimed);

#endif
