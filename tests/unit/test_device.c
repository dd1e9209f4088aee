/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_device.c - the device table: teardown quiesces every
 * device, then frees every device, each pass last created first; and the
 * ops table of every device the PC machine builds is complete.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "check.h"
#include "device.h"
#include "devices/acpi_pm.h"
#include "devices/debugport.h"
#include "devices/fw_cfg.h"
#include "devices/i8042.h"
#include "devices/ide.h"
#include "devices/ioapic.h"
#include "devices/pci.h"
#include "devices/pic.h"
#include "devices/piix.h"
#include "devices/pit.h"
#include "devices/rtc.h"
#include "devices/uart.h"
#include "devices/vga.h"
#include "virtio/virtio_blk.h"

/* What the fake devices did, in order: 'q'/'f' and the device's id. */
static char events[64][2];
static unsigned nevents;

struct fake {
	char id;
};

static void record(char what, void *dev)
{
	struct fake *f = dev;

	if (nevents < 64) {
		events[nevents][0] = what;
		events[nevents][1] = f->id;
		nevents++;
	}
}

static void fake_quiesce(void *dev)
{
	record('q', dev);
}

static void fake_free(void *dev)
{
	record('f', dev);
}

static const struct device_ops fake_ops = {
	.name = "fake", .quiesce = fake_quiesce, .free = fake_free,
};
static const struct device_ops fake_noquiesce_ops = {
	.name = "fake-nq", .free = fake_free,
};

static void test_teardown_order(void)
{
	struct device_table t = { .n = 0 };
	struct fake dev[4] = { { 'a' }, { 'b' }, { 'c' }, { 'd' } };
	static const char want[][2] = {
		{ 'q', 'd' }, { 'q', 'b' }, { 'q', 'a' },	/* c: no quiesce */
		{ 'f', 'd' }, { 'f', 'c' }, { 'f', 'b' }, { 'f', 'a' },
	};

	nevents = 0;
	CHECK_EQ(device_table_add(&t, &fake_ops, &dev[0]), 0);
	CHECK_EQ(device_table_add(&t, &fake_ops, &dev[1]), 0);
	CHECK_EQ(device_table_add(&t, &fake_noquiesce_ops, &dev[2]), 0);
	CHECK_EQ(device_table_add(&t, &fake_ops, &dev[3]), 0);
	CHECK_EQ(t.n, 4);
	device_table_quiesce(&t);
	device_table_free(&t);
	CHECK_EQ(t.n, 0);
	CHECK_EQ(nevents, sizeof(want) / sizeof(want[0]));
	for (unsigned i = 0; i < nevents && i < sizeof(want) / sizeof(want[0]); i++) {
		CHECK_EQ(events[i][0], want[i][0]);
		CHECK_EQ(events[i][1], want[i][1]);
	}
	/* An empty table walks nothing. */
	nevents = 0;
	device_table_quiesce(&t);
	device_table_free(&t);
	CHECK_EQ(nevents, 0);
}

static void test_add_rejects(void)
{
	static const struct device_ops no_free = { .name = "x" };
	static const struct device_ops no_name = { .free = fake_free };
	struct device_table t = { .n = 0 };
	struct fake f = { 'x' };

	CHECK_EQ(device_table_add(&t, &fake_ops, NULL), -EINVAL);
	CHECK_EQ(device_table_add(&t, NULL, &f), -EINVAL);
	CHECK_EQ(device_table_add(&t, &no_free, &f), -EINVAL);
	CHECK_EQ(device_table_add(&t, &no_name, &f), -EINVAL);
	CHECK_EQ(t.n, 0);
	for (unsigned i = 0; i < DEVICE_TABLE_MAX; i++)
		CHECK_EQ(device_table_add(&t, &fake_ops, &f), 0);
	CHECK_EQ(device_table_add(&t, &fake_ops, &f), -ENOSPC);
	CHECK_EQ(t.n, DEVICE_TABLE_MAX);
}

/* Every device of the PC's table: a unique name, a free op, save and load
 * (a snapshot needs every one of them) and a state version; the disk
 * controllers quiesce (their in-flight requests). */
static void test_pc_device_ops(void)
{
	static const struct device_ops *const all[] = {
		&pic_device_ops, &ioapic_device_ops, &pit_device_ops,
		&uart_device_ops, &rtc_device_ops, &i8042_device_ops,
		&pci_host_device_ops, &piix_device_ops, &acpi_pm_device_ops,
		&vga_device_ops, &piix_ide_device_ops, &virtio_blk_device_ops,
		&fw_cfg_device_ops, &debugport_device_ops,
	};
	const unsigned n = sizeof(all) / sizeof(all[0]);

	for (unsigned i = 0; i < n; i++) {
		const struct device_ops *o = all[i];

		CHECK(o->name && o->name[0]);
		CHECK(o->free != NULL);
		CHECK(o->save != NULL && o->load != NULL);
		CHECK(o->state_version >= 1);
		for (unsigned j = 0; j < i; j++)
			CHECK(strcmp(o->name, all[j]->name) != 0);
	}
	CHECK(piix_ide_device_ops.quiesce != NULL);
	CHECK(virtio_blk_device_ops.quiesce != NULL);
	CHECK(pic_device_ops.quiesce == NULL);
	CHECK(pic_device_ops.reset != NULL);
}

int main(void)
{
	RUN_TEST(test_teardown_order);
	RUN_TEST(test_add_rejects);
	RUN_TEST(test_pc_device_ops);
	return check_finish();
}
