/* SPDX-License-Identifier: MIT */
/* tests/unit/testlib.h - helpers the unit tests share: a fake clock, bus
 * accesses that CHECK a device claimed them, and a recording irq line.
 * Header-only (static inline); includes check.h. */
#ifndef VIVARIUM_TESTLIB_H
#define VIVARIUM_TESTLIB_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

#include "bus.h"
#include "clock.h"
#include "irq.h"

/*
 * A clock the test moves by hand.  clk.monotonic_ns returns mono_ns and
 * clk.realtime_ns returns real_ns (ns since the Unix epoch); set or bump
 * the fields directly.  Pass &fc->clk wherever a struct vclock is wanted.
 */
struct fake_clock {
	uint64_t mono_ns;
	int64_t real_ns;
	struct vclock clk;
};

static inline uint64_t fake_clock_mono__(const struct vclock *c)
{
	return ((const struct fake_clock *)c->opaque)->mono_ns;
}

static inline int64_t fake_clock_real__(const struct vclock *c)
{
	return ((const struct fake_clock *)c->opaque)->real_ns;
}

/* Both times start at 0. */
static inline void fake_clock_init(struct fake_clock *fc)
{
	fc->mono_ns = 0;
	fc->real_ns = 0;
	fc->clk = (struct vclock){ fake_clock_mono__, fake_clock_real__, fc };
}

/* Move both times forward by @ns. */
static inline void fake_clock_advance(struct fake_clock *fc, uint64_t ns)
{
	fc->mono_ns += ns;
	fc->real_ns += (int64_t)ns;
}

/* One write of @size bytes (1, 2, 4 or 8) of @v at @addr on @bus; CHECKs
 * that a device claimed it. */
static inline void io_write(struct bus *bus, uint64_t addr, uint64_t v,
			    unsigned size)
{
	int claimed = 0;

	bus_write(bus, addr, v, size, &claimed);
	CHECK(claimed);
	if (!claimed)
		fprintf(stderr, "  (unclaimed %u-byte write at 0x%llx)\n", size,
			(unsigned long long)addr);
}

/* One read of @size bytes at @addr on @bus; CHECKs that a device claimed
 * it.  Returns the value read. */
static inline uint64_t io_read(struct bus *bus, uint64_t addr, unsigned size)
{
	int claimed = 0;
	uint64_t v = bus_read(bus, addr, size, &claimed);

	CHECK(claimed);
	if (!claimed)
		fprintf(stderr, "  (unclaimed %u-byte read at 0x%llx)\n", size,
			(unsigned long long)addr);
	return v;
}

/*
 * An irq line that records what a device drives on it: the current level,
 * the number of 0->1 transitions, and the gsi the last set() carried.
 * Every set() must carry the gsi the line was made with (CHECKed).
 */
struct irq_recorder {
	int level;		/* last level driven, 0 or 1 */
	unsigned rises;		/* 0 -> 1 transitions */
	unsigned gsi;		/* gsi of the last set(); 0 before any */
	unsigned want_gsi;	/* the gsi irq_recorder_line() was given */
};

static inline void irq_recorder_set__(void *opaque, unsigned gsi, int level)
{
	struct irq_recorder *r = opaque;

	CHECK_EQ(gsi, r->want_gsi);
	if (level && !r->level)
		r->rises++;
	r->level = level;
	r->gsi = gsi;
}

/* Clear @r and return a line for @gsi that records into it. */
static inline struct irq_line irq_recorder_line(struct irq_recorder *r,
						unsigned gsi)
{
	memset(r, 0, sizeof(*r));
	r->want_gsi = gsi;
	return (struct irq_line){ irq_recorder_set__, r, gsi };
}

#endif
