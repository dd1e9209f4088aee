/* SPDX-License-Identifier: MIT */
/* The port-I/O/MMIO bus: overlap rejection, offset dispatch, all-ones. */
#include <errno.h>

#include "bus.h"
#include "check.h"

struct rec {
	uint64_t last_off, last_val;
	unsigned last_size, reads, writes;
};

static uint64_t rec_read(void *opaque, uint64_t off, unsigned size)
{
	struct rec *r = opaque;

	r->reads++;
	r->last_off = off;
	r->last_size = size;
	return 0x1122334455667788ull;
}

static void rec_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
	struct rec *r = opaque;

	r->writes++;
	r->last_off = off;
	r->last_val = val;
	r->last_size = size;
}

static const struct bus_ops rec_ops = { "rec", rec_read, rec_write };

static void test_overlap(void)
{
	struct bus *b = bus_new("pio");
	struct rec r = { 0 };

	CHECK_EQ(bus_register(b, 0x3f8, 8, &rec_ops, &r), 0);
	CHECK_EQ(bus_register(b, 0x3f8, 8, &rec_ops, &r), -EEXIST);
	CHECK_EQ(bus_register(b, 0x3f0, 9, &rec_ops, &r), -EEXIST);
	CHECK_EQ(bus_register(b, 0x3ff, 1, &rec_ops, &r), -EEXIST);
	CHECK_EQ(bus_register(b, 0x3f0, 8, &rec_ops, &r), 0);
	CHECK_EQ(bus_register(b, 0x400, 1, &rec_ops, &r), 0);
	CHECK_EQ(bus_register(b, 0x500, 0, &rec_ops, &r), -EINVAL);
	CHECK_EQ(bus_register(b, ~0ull, 2, &rec_ops, &r), -EINVAL);
	CHECK_EQ(bus_unregister(b, 0x3f0), 0);
	CHECK_EQ(bus_unregister(b, 0x3f0), -ENOENT);
	CHECK_EQ(bus_register(b, 0x3f0, 8, &rec_ops, &r), 0);
	bus_free(b);
}

static void test_dispatch(void)
{
	struct bus *b = bus_new("mmio");
	struct rec r1 = { 0 }, r2 = { 0 };
	int claimed;

	CHECK_EQ(bus_register(b, 0xfec00000, 0x1000, &rec_ops, &r1), 0);
	CHECK_EQ(bus_register(b, 0xd0000000, 0x100, &rec_ops, &r2), 0);
	CHECK_EQ(bus_read(b, 0xfec00010, 4, &claimed), 0x1122334455667788ull);
	CHECK(claimed);
	CHECK_EQ(r1.last_off, 0x10);
	CHECK_EQ(r1.last_size, 4);
	bus_write(b, 0xd00000f8, 0xffffffffabcdull, 2, &claimed);
	CHECK(claimed);
	CHECK_EQ(r2.last_off, 0xf8);
	CHECK_EQ(r2.last_val, 0xabcd);	/* truncated to the access size */
	CHECK_EQ(r1.writes, 0);
	bus_free(b);
}

static void test_unclaimed(void)
{
	struct bus *b = bus_new("pio");
	struct rec r = { 0 };
	int claimed = 1;

	CHECK_EQ(bus_register(b, 0x60, 1, &rec_ops, &r), 0);
	CHECK_EQ(bus_read(b, 0x61, 1, &claimed), 0xff);
	CHECK(!claimed);
	CHECK_EQ(bus_read(b, 0x1000, 2, NULL), 0xffff);
	CHECK_EQ(bus_read(b, 0x1000, 4, NULL), 0xffffffffu);
	CHECK_EQ(bus_read(b, 0x1000, 8, NULL), ~0ull);
	/* Straddling the end of a range is not claimed by it. */
	CHECK_EQ(bus_read(b, 0x60, 2, &claimed), 0xffff);
	CHECK(!claimed);
	CHECK_EQ(r.reads, 0);
	/* Odd sizes are refused. */
	CHECK_EQ(bus_read(b, 0x60, 3, &claimed), 0xffffff);
	CHECK(!claimed);
	bus_write(b, 0x1000, 1, 1, &claimed);
	CHECK(!claimed);
	/* Many unclaimed accesses must not flood the log or crash. */
	for (int i = 0; i < 100000; i++)
		bus_read(b, (uint64_t)i, 1, NULL);
	bus_free(b);
}

int main(void)
{
	RUN_TEST(test_overlap);
	RUN_TEST(test_dispatch);
	RUN_TEST(test_unclaimed);
	return check_finish();
}
