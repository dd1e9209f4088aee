/* SPDX-License-Identifier: MIT */
/* tests/unit/test_ioapic.c - the I/O APIC through MMIO as a guest drives it
 * (Linux arch/x86/kernel/apic/io_apic.c: high dword first, then low), with
 * the messages it sends collected. */
#include "testlib.h"

#include <errno.h>
#include <glib.h>

#include "devices/ioapic.h"

#define BASE IOAPIC_DEFAULT_BASE

struct msg {
	uint64_t addr;
	uint32_t data;
};

static struct bus *mmio;
static struct ioapic *io;
static struct msg msgs[64];
static unsigned nmsgs, nroutes;

static void send_msi(void *opaque, uint64_t addr, uint32_t data)
{
	(void)opaque;
	if (nmsgs < 64)
		msgs[nmsgs] = (struct msg){ addr, data };
	nmsgs++;
}

static void routes_changed(void *opaque)
{
	(void)opaque;
	nroutes++;
}

static const struct ioapic_ops ops = {
	.send_msi = send_msi, .routes_changed = routes_changed,
};

static void w32(uint64_t off, uint32_t v)
{
	io_write(mmio, BASE + off, v, 4);
}

static uint32_t r32(uint64_t off)
{
	return (uint32_t)io_read(mmio, BASE + off, 4);
}

static void reg_w(uint8_t reg, uint32_t v)
{
	w32(0x00, reg);
	w32(0x10, v);
}

static uint32_t reg_r(uint8_t reg)
{
	w32(0x00, reg);
	return r32(0x10);
}

static void rte_w(unsigned pin, uint64_t v)
{
	reg_w((uint8_t)(0x11 + 2 * pin), (uint32_t)(v >> 32));
	reg_w((uint8_t)(0x10 + 2 * pin), (uint32_t)v);
}

static uint64_t rte_r(unsigned pin)
{
	return (uint64_t)reg_r((uint8_t)(0x11 + 2 * pin)) << 32 |
	       reg_r((uint8_t)(0x10 + 2 * pin));
}

#define LEVEL		(1ull << 15)
#define MASKED		(1ull << 16)
#define REMOTE_IRR	(1ull << 14)
#define ACTIVE_LOW	(1ull << 13)
#define LOGICAL		(1ull << 11)
#define DEST(d)		((uint64_t)(d) << 56)

static void setup(void)
{
	mmio = bus_new("mmio");
	nmsgs = nroutes = 0;
	io = ioapic_new(0, &ops, NULL);
	CHECK(io != NULL);
	CHECK_EQ(ioapic_attach(io, mmio, BASE), 0);
}

static void teardown(void)
{
	ioapic_free(io);
	bus_free(mmio);
}

static void test_id_version_arb(void)
{
	setup();
	CHECK_EQ(reg_r(0x01), 0x00170020);	/* 24 entries, version 0x20 */
	reg_w(0x01, 0xffffffff);		/* read-only */
	CHECK_EQ(reg_r(0x01), 0x00170020);
	CHECK_EQ(reg_r(0x00), 0);
	reg_w(0x00, 0xffffffff);		/* only bits 27:24 stick */
	CHECK_EQ(reg_r(0x00), 0x0f000000);
	CHECK_EQ(reg_r(0x02), 0x0f000000);
	reg_w(0x02, 0);
	CHECK_EQ(reg_r(0x02), 0x0f000000);
	reg_w(0x00, 0x02000000);
	CHECK_EQ(reg_r(0x00), 0x02000000);
	/* IOREGSEL reads back; unknown registers read 0, writes dropped. */
	w32(0x00, 0x7f);
	CHECK_EQ(r32(0x00), 0x7f);
	CHECK_EQ(r32(0x10), 0);
	w32(0x10, 0x12345678);
	CHECK_EQ(r32(0x10), 0);
	CHECK_EQ(reg_r(0x03), 0);
	CHECK_EQ(reg_r(0x40), 0);		/* one past pin 23 */
	CHECK_EQ(r32(0x20), 0);			/* holes in the page */
	/* Every pin starts masked. */
	for (unsigned p = 0; p < IOAPIC_PINS; p++)
		CHECK_EQ(rte_r(p), MASKED);
	ioapic_reset(io);
	CHECK_EQ(reg_r(0x00), 0);
	teardown();

	/* The ID given at creation is the reset value. */
	mmio = bus_new("mmio");
	io = ioapic_new(5, &ops, NULL);
	CHECK_EQ(ioapic_attach(io, mmio, BASE), 0);
	CHECK_EQ(reg_r(0x00), 0x05000000);
	teardown();
}

static void test_redirection_programming(void)
{
	uint64_t addr;
	uint32_t data;

	setup();
	/* Read-only bits (delivery status 12, remote IRR 14) and reserved bits
	 * 17-55 ignore writes. */
	rte_w(4, 0xffffffffffffffffull);
	CHECK_EQ(rte_r(4), 0xff0000000001afffull & ~REMOTE_IRR);
	CHECK(nroutes >= 1);
	nroutes = 0;
	rte_w(4, DEST(1) | 0x31);
	CHECK_EQ(rte_r(4), DEST(1) | 0x31);
	CHECK(nroutes >= 1);
	nroutes = 0;
	rte_w(4, DEST(1) | 0x31);		/* unchanged: no new routes */
	CHECK_EQ(nroutes, 0);

	/* Physical, fixed, edge. */
	CHECK(ioapic_pin_msi(io, 4, &addr, &data));
	CHECK_EQ(addr, 0xfee01000);
	CHECK_EQ(data, 0x4031);
	/* Logical, lowest priority, level to cluster 0x0f. */
	rte_w(9, DEST(0x0f) | LEVEL | LOGICAL | (1 << 8) | 0x41);
	CHECK(ioapic_pin_msi(io, 9, &addr, &data));
	CHECK_EQ(addr, 0xfee0f004);
	CHECK_EQ(data, 0xc141);
	/* NMI delivery mode. */
	rte_w(1, DEST(3) | (4 << 8));
	CHECK(ioapic_pin_msi(io, 1, &addr, &data));
	CHECK_EQ(addr, 0xfee03000);
	CHECK_EQ(data, 0x4400);
	/* Masked pins and out-of-range pins have no message. */
	CHECK(!ioapic_pin_msi(io, 5, &addr, &data));
	CHECK(!ioapic_pin_msi(io, 24, &addr, &data));

	/* Sub-dword write: the vector byte alone. */
	w32(0x00, 0x18);
	bus_write(mmio, BASE + 0x10, 0x55, 1, NULL);
	CHECK_EQ(rte_r(4) & 0xff, 0x55);
	CHECK_EQ(rte_r(4) >> 56, 1);
	CHECK_EQ(bus_read(mmio, BASE + 0x10, 1, NULL), 0x55);
	CHECK_EQ(nmsgs, 0);
	teardown();
}

static void test_edge(void)
{
	setup();
	rte_w(4, DEST(0) | 0x34);
	ioapic_set_irq(io, 4, 1);
	CHECK_EQ(nmsgs, 1);
	CHECK_EQ(msgs[0].addr, 0xfee00000);
	CHECK_EQ(msgs[0].data, 0x4034);
	ioapic_set_irq(io, 4, 1);		/* no edge */
	CHECK_EQ(nmsgs, 1);
	ioapic_set_irq(io, 4, 0);
	CHECK_EQ(nmsgs, 1);
	ioapic_set_irq(io, 4, 1);
	CHECK_EQ(nmsgs, 2);
	CHECK_EQ(rte_r(4) & REMOTE_IRR, 0);	/* edge has no remote IRR */
	ioapic_set_irq(io, 4, 0);
	/* EOI of an edge vector does nothing. */
	w32(0x40, 0x34);
	CHECK_EQ(nmsgs, 2);

	/* A masked edge is lost, not held (82093AA). */
	rte_w(4, DEST(0) | MASKED | 0x34);
	ioapic_set_irq(io, 4, 1);
	ioapic_set_irq(io, 4, 0);
	rte_w(4, DEST(0) | 0x34);
	CHECK_EQ(nmsgs, 2);
	ioapic_set_irq(io, 30, 1);		/* ignored */
	CHECK_EQ(nmsgs, 2);
	teardown();
}

static void test_level_remote_irr(void)
{
	setup();
	rte_w(11, DEST(2) | LEVEL | 0x51);
	ioapic_set_irq(io, 11, 1);
	CHECK_EQ(nmsgs, 1);
	CHECK_EQ(msgs[0].addr, 0xfee02000);
	CHECK_EQ(msgs[0].data, 0xc051);
	CHECK(rte_r(11) & REMOTE_IRR);
	/* No more messages until the EOI. */
	ioapic_set_irq(io, 11, 0);
	ioapic_set_irq(io, 11, 1);
	CHECK_EQ(nmsgs, 1);
	/* EOI of another vector: nothing. */
	ioapic_eoi(io, 0x52);
	CHECK_EQ(nmsgs, 1);
	/* EOI while still asserted: delivered again. */
	ioapic_eoi(io, 0x51);
	CHECK_EQ(nmsgs, 2);
	CHECK(rte_r(11) & REMOTE_IRR);
	/* Deasserted before the EOI: Remote IRR clears, nothing sent. */
	ioapic_set_irq(io, 11, 0);
	w32(0x40, 0x51);			/* the EOI register */
	CHECK_EQ(nmsgs, 2);
	CHECK_EQ(rte_r(11) & REMOTE_IRR, 0);
	ioapic_set_irq(io, 11, 1);
	CHECK_EQ(nmsgs, 3);

	/* Switching to edge clears a stuck Remote IRR (the pre-0x20 Linux
	 * workaround); back to level, the asserted pin sends again. */
	rte_w(11, DEST(2) | 0x51);
	CHECK_EQ(rte_r(11) & REMOTE_IRR, 0);
	CHECK_EQ(nmsgs, 3);
	rte_w(11, DEST(2) | LEVEL | 0x51);
	CHECK_EQ(nmsgs, 4);

	/* Two pins sharing a vector both get the EOI. */
	rte_w(12, DEST(2) | LEVEL | 0x51);
	ioapic_set_irq(io, 12, 1);
	CHECK_EQ(nmsgs, 5);
	ioapic_set_irq(io, 11, 0);
	ioapic_set_irq(io, 12, 0);
	ioapic_eoi(io, 0x51);
	CHECK_EQ(rte_r(11) & REMOTE_IRR, 0);
	CHECK_EQ(rte_r(12) & REMOTE_IRR, 0);
	CHECK_EQ(nmsgs, 5);
	teardown();
}

static void test_masking(void)
{
	setup();
	/* A level pin asserted while masked sends when unmasked. */
	rte_w(16, DEST(0) | LEVEL | MASKED | 0x61);
	ioapic_set_irq(io, 16, 1);
	CHECK_EQ(nmsgs, 0);
	CHECK_EQ(rte_r(16) & REMOTE_IRR, 0);
	rte_w(16, DEST(0) | LEVEL | 0x61);
	CHECK_EQ(nmsgs, 1);
	CHECK(rte_r(16) & REMOTE_IRR);
	/* Masked again with Remote IRR set: the EOI clears it, no message. */
	rte_w(16, DEST(0) | LEVEL | MASKED | 0x61);
	CHECK(rte_r(16) & REMOTE_IRR);		/* preserved across writes */
	ioapic_eoi(io, 0x61);
	CHECK_EQ(nmsgs, 1);
	CHECK_EQ(rte_r(16) & REMOTE_IRR, 0);
	/* Deasserted while masked: nothing when unmasked. */
	ioapic_set_irq(io, 16, 0);
	rte_w(16, DEST(0) | LEVEL | 0x61);
	CHECK_EQ(nmsgs, 1);
	teardown();
}

static void test_polarity(void)
{
	setup();
	/* PCI INTx is active low: a low input asserts. */
	rte_w(17, DEST(0) | LEVEL | ACTIVE_LOW | MASKED | 0x71);
	ioapic_set_irq(io, 17, 1);		/* idle high */
	rte_w(17, DEST(0) | LEVEL | ACTIVE_LOW | 0x71);
	CHECK_EQ(nmsgs, 0);
	ioapic_set_irq(io, 17, 0);
	CHECK_EQ(nmsgs, 1);
	ioapic_set_irq(io, 17, 1);
	ioapic_eoi(io, 0x71);
	CHECK_EQ(nmsgs, 1);
	/* Edge, active low: the falling input edge fires. */
	rte_w(18, DEST(0) | ACTIVE_LOW | 0x72);
	ioapic_set_irq(io, 18, 1);
	CHECK_EQ(nmsgs, 1);
	ioapic_set_irq(io, 18, 0);
	CHECK_EQ(nmsgs, 2);
	CHECK_EQ(msgs[1].data, 0x4072);
	ioapic_set_irq(io, 18, 1);
	CHECK_EQ(nmsgs, 2);
	teardown();
}

static GVariant *state(uint8_t id, uint8_t regsel, uint32_t level,
		       const uint64_t *rte, unsigned n)
{
	return g_variant_ref_sink(g_variant_new("(yyu@at)", id, regsel, level,
		g_variant_new_fixed_array(G_VARIANT_TYPE_UINT64, rte, n,
					  sizeof(uint64_t))));
}

static void test_save_load(void)
{
	struct bus *mmio2 = bus_new("mmio2");
	struct ioapic *fresh = ioapic_new(0, &ops, NULL);
	struct ioapic *saved;
	GVariant *a, *b;
	char err[128] = "";
	unsigned sent;

	setup();
	CHECK_EQ(ioapic_attach(fresh, mmio2, BASE), 0);
	reg_w(0x00, 5u << 24);				/* ID 5 */
	rte_w(4, DEST(1) | 0x31);			/* edge, unmasked */
	rte_w(11, DEST(2) | LEVEL | 0x51);		/* level ... */
	ioapic_set_irq(io, 11, 1);			/* ... awaiting EOI */
	rte_w(16, MASKED | ACTIVE_LOW | LEVEL | 0x61);
	ioapic_set_irq(io, 16, 1);			/* idle high */
	CHECK(rte_r(11) & REMOTE_IRR);
	w32(0x00, 0x13);				/* IOREGSEL left set */

	a = g_variant_ref_sink(ioapic_device_ops.save(io));
	CHECK(g_variant_is_of_type(a, G_VARIANT_TYPE(IOAPIC_STATE_TYPE)));
	nroutes = 0;
	sent = nmsgs;
	CHECK_EQ(ioapic_device_ops.load(fresh, 1, a, err, sizeof(err)), 0);
	CHECK_EQ(nroutes, 1);				/* routes re-pushed */
	CHECK_EQ(nmsgs, sent);				/* nothing sent */
	b = g_variant_ref_sink(ioapic_device_ops.save(fresh));
	CHECK(g_variant_equal(a, b));
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
		uint64_t a1 = 0, a2 = 0;
		uint32_t d1 = 0, d2 = 0;

		CHECK_EQ(ioapic_pin_msi(io, pin, &a1, &d1),
			 ioapic_pin_msi(fresh, pin, &a2, &d2));
		CHECK_EQ(a1, a2);
		CHECK_EQ(d1, d2);
	}

	/* Through the registers, and on: the EOI re-sends pin 11 (still
	 * asserted), an edge on pin 4 goes out, pin 16 stays masked. */
	saved = io;
	io = fresh;
	{
		struct bus *m1 = mmio;

		mmio = mmio2;
		CHECK_EQ(r32(0x00), 0x13);
		CHECK_EQ(reg_r(0x00), 5u << 24);
		CHECK_EQ(rte_r(11), DEST(2) | LEVEL | REMOTE_IRR | 0x51);
		CHECK_EQ(rte_r(16), MASKED | ACTIVE_LOW | LEVEL | 0x61);
		w32(0x40, 0x51);
		CHECK_EQ(nmsgs, sent + 1);
		CHECK_EQ(msgs[sent].data, 0xc051);
		ioapic_set_irq(io, 4, 1);
		CHECK_EQ(nmsgs, sent + 2);
		CHECK_EQ(msgs[sent + 1].addr, 0xfee01000);
		CHECK_EQ(msgs[sent + 1].data, 0x4031);
		ioapic_set_irq(io, 16, 0);
		CHECK_EQ(nmsgs, sent + 2);
		mmio = m1;
	}
	io = saved;
	g_variant_unref(a);
	g_variant_unref(b);
	ioapic_free(fresh);
	bus_free(mmio2);
	teardown();
}

static void test_load_refuses(void)
{
	uint64_t rte[IOAPIC_PINS];
	GVariant *before, *after, *bad;
	char err[128];

	setup();
	rte_w(3, DEST(1) | LEVEL | 0x33);
	reg_w(0x00, 7u << 24);
	before = g_variant_ref_sink(ioapic_device_ops.save(io));
	for (unsigned i = 0; i < IOAPIC_PINS; i++)
		rte[i] = MASKED;
	nroutes = 0;

	CHECK_EQ(ioapic_device_ops.load(io, 2, before, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "ioapic: state version 2 not supported") != NULL);
	bad = g_variant_ref_sink(g_variant_new("(yyuu)", 0, 0, 0, 0));
	CHECK_EQ(ioapic_device_ops.load(io, 1, bad, err, sizeof(err)), -EINVAL);
	CHECK(strncmp(err, "ioapic:", 7) == 0);
	g_variant_unref(bad);
#define REFUSED(v)                                                           \
	do {                                                                 \
		GVariant *s__ = (v);                                         \
		err[0] = 0;                                                  \
		CHECK_EQ(ioapic_device_ops.load(io, 1, s__, err, sizeof(err)), -EINVAL); \
		CHECK(strncmp(err, "ioapic:", 7) == 0);                      \
		g_variant_unref(s__);                                        \
	} while (0)
	REFUSED(state(0x10, 0, 0, rte, IOAPIC_PINS));		/* ID */
	REFUSED(state(0, 0, 1u << 24, rte, IOAPIC_PINS));	/* pin 24 */
	REFUSED(state(0, 0, 0, rte, IOAPIC_PINS - 1));		/* short table */
	rte[5] = 1ull << 12;					/* delivery status */
	REFUSED(state(0, 0, 0, rte, IOAPIC_PINS));
	rte[5] = REMOTE_IRR | 0x40;				/* on an edge pin */
	REFUSED(state(0, 0, 0, rte, IOAPIC_PINS));
#undef REFUSED
	CHECK_EQ(nroutes, 0);
	after = g_variant_ref_sink(ioapic_device_ops.save(io));
	CHECK(g_variant_equal(before, after));
	CHECK_EQ(rte_r(3), DEST(1) | LEVEL | 0x33);
	g_variant_unref(before);
	g_variant_unref(after);
	teardown();
}

int main(void)
{
	RUN_TEST(test_id_version_arb);
	RUN_TEST(test_redirection_programming);
	RUN_TEST(test_edge);
	RUN_TEST(test_level_remote_irr);
	RUN_TEST(test_masking);
	RUN_TEST(test_polarity);
	RUN_TEST(test_save_load);
	RUN_TEST(test_load_refuses);
	return check_finish();
}
