/* SPDX-License-Identifier: MIT */
/*
 * The machine's merged GSI routing table (vmm-core/irqroute.c) against a
 * fake commit: the IOAPIC's part and the irqfds' part never drop each
 * other's routes, every change commits the whole table, and failures
 * leave nothing half taken.
 */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "irqroute.h"

static struct hv_msi_route table[IRQ_ROUTES_MSI_BASE + IRQ_ROUTES_MSI_MAX];
static unsigned ntable, commits;
static int fail_next;

static int fake_commit(void *opaque, const struct hv_msi_route *r, unsigned n)
{
	(void)opaque;
	commits++;
	if (fail_next) {
		int e = fail_next;

		fail_next = 0;
		return e;
	}
	memcpy(table, r, n * sizeof(*r));
	ntable = n;
	return 0;
}

/* The committed route of @gsi, or NULL. */
static const struct hv_msi_route *route(unsigned gsi)
{
	for (unsigned i = 0; i < ntable; i++)
		if (table[i].gsi == gsi)
			return &table[i];
	return NULL;
}

static bool unique(void)
{
	for (unsigned i = 0; i < ntable; i++)
		for (unsigned j = 0; j < i; j++)
			if (table[i].gsi == table[j].gsi)
				return false;
	return true;
}

static void reset_fake(void)
{
	ntable = commits = 0;
	fail_next = 0;
}

static void test_merged(void)
{
	struct hv_msi_route pins[2] = {
		{ 4, 0xfee00000, 0x34 }, { 16, 0xfee01000, 0x8041 },
	};
	struct irq_routes *rt;
	int a, b;

	reset_fake();
	rt = irq_routes_new(1024, fake_commit, NULL);
	CHECK(rt != NULL);
	CHECK_EQ(irq_routes_set_ioapic(rt, pins, 2), 0);
	CHECK_EQ(ntable, 2);
	a = irq_routes_add_msi(rt, 0xfee00000, 0x41);
	b = irq_routes_add_msi(rt, 0xfee02000, 0x42);
	CHECK_EQ(a, IRQ_ROUTES_MSI_BASE);
	CHECK_EQ(b, IRQ_ROUTES_MSI_BASE + 1);
	CHECK_EQ(irq_routes_msi_count(rt), 2);
	/* Both parts in the table, each once. */
	CHECK_EQ(ntable, 4);
	CHECK(unique());
	CHECK(route(4) && route(4)->data == 0x34);
	CHECK(route(16) && route(16)->data == 0x8041);
	CHECK(route((unsigned)b) && route((unsigned)b)->addr == 0xfee02000);

	/* The IOAPIC replaces its part: the MSIs stay. */
	pins[0].data = 0x35;
	CHECK_EQ(irq_routes_set_ioapic(rt, pins, 1), 0);
	CHECK_EQ(ntable, 3);
	CHECK(route(4) && route(4)->data == 0x35);
	CHECK(route(16) == NULL);
	CHECK(route((unsigned)a) && route((unsigned)a)->data == 0x41);
	CHECK(route((unsigned)b) != NULL);

	/* Re-routing an MSI: committed only when it changes. */
	commits = 0;
	CHECK_EQ(irq_routes_set_msi(rt, (unsigned)a, 0xfee00000, 0x41), 0);
	CHECK_EQ(commits, 0);
	CHECK_EQ(irq_routes_set_msi(rt, (unsigned)a, 0xfee03000, 0x51), 0);
	CHECK_EQ(commits, 1);
	CHECK(route((unsigned)a) && route((unsigned)a)->addr == 0xfee03000 &&
	      route((unsigned)a)->data == 0x51);
	CHECK(route(4) != NULL);
	CHECK_EQ(irq_routes_set_msi(rt, 4, 0xfee00000, 1), -EINVAL);
	CHECK_EQ(irq_routes_set_msi(rt, IRQ_ROUTES_MSI_BASE + 7, 0xfee00000, 1),
		 -EINVAL);

	/* Removing frees the GSI for the next add. */
	irq_routes_remove_msi(rt, (unsigned)a);
	CHECK(route((unsigned)a) == NULL);
	CHECK(route((unsigned)b) != NULL && route(4) != NULL);
	CHECK_EQ(irq_routes_msi_count(rt), 1);
	CHECK_EQ(irq_routes_add_msi(rt, 0xfee00000, 0x61), a);
	irq_routes_remove_msi(rt, 3);		/* not ours: ignored */
	CHECK_EQ(irq_routes_msi_count(rt), 2);
	irq_routes_free(rt);
}

static void test_bad_ioapic_part(void)
{
	struct hv_msi_route bad = { IRQ_ROUTES_MSI_BASE, 0xfee00000, 0x30 };
	struct irq_routes *rt;

	reset_fake();
	rt = irq_routes_new(1024, fake_commit, NULL);
	CHECK_EQ(irq_routes_set_ioapic(rt, &bad, 1), -EINVAL);
	CHECK_EQ(commits, 0);
	CHECK_EQ(irq_routes_set_ioapic(rt, &bad, IRQ_ROUTES_MSI_BASE + 1),
		 -EINVAL);
	irq_routes_free(rt);
}

static void test_limits_and_failures(void)
{
	struct irq_routes *rt;

	/* KVM with room for the IOAPIC's pins and two more GSIs. */
	reset_fake();
	rt = irq_routes_new(IRQ_ROUTES_MSI_BASE + 2, fake_commit, NULL);
	CHECK(irq_routes_add_msi(rt, 0xfee00000, 1) >= 0);
	CHECK(irq_routes_add_msi(rt, 0xfee00000, 2) >= 0);
	CHECK_EQ(irq_routes_add_msi(rt, 0xfee00000, 3), -ENOSPC);
	irq_routes_free(rt);

	/* No room at all (an old KVM): every MSI stays on KVM_SIGNAL_MSI. */
	rt = irq_routes_new(IRQ_ROUTES_MSI_BASE, fake_commit, NULL);
	CHECK_EQ(irq_routes_add_msi(rt, 0xfee00000, 1), -ENOSPC);
	irq_routes_free(rt);

	/* A refused commit takes nothing. */
	reset_fake();
	rt = irq_routes_new(1024, fake_commit, NULL);
	fail_next = -ENOMEM;
	CHECK_EQ(irq_routes_add_msi(rt, 0xfee00000, 1), -ENOMEM);
	CHECK_EQ(irq_routes_msi_count(rt), 0);
	CHECK_EQ(irq_routes_add_msi(rt, 0xfee00000, 1), IRQ_ROUTES_MSI_BASE);
	CHECK_EQ(ntable, 1);
	irq_routes_free(rt);
}

int main(void)
{
	RUN_TEST(test_merged);
	RUN_TEST(test_bad_ioapic_part);
	RUN_TEST(test_limits_and_failures);
	return check_finish();
}
