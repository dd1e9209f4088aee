/* SPDX-License-Identifier: MIT */
/* tests/unit/test_pci.c - configuration mechanism #1 through ports
 * 0xcf8-0xcff as Linux's pci_direct_conf1 and SeaBIOS use it, and the
 * i440FX host bridge. */
#include <errno.h>
#include <string.h>

#include <glib.h>

#include "testlib.h"

#include "devices/pci.h"

static struct bus *pio;
static struct pci_host *host;

static void setup(void)
{
	pio = bus_new("pio");
	host = pci_host_new();
	CHECK(host != NULL);
	CHECK_EQ(pci_host_attach(host, pio, NULL), 0);
}

static void teardown(void)
{
	pci_host_free(host);
	bus_free(pio);
}

static uint32_t addr(unsigned bus, unsigned dev, unsigned fn, unsigned reg)
{
	return 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (reg & 0xfc);
}

static uint32_t cfg_read(unsigned bus, unsigned devfn, unsigned reg,
			 unsigned size)
{
	io_write(pio, 0xcf8, addr(bus, devfn >> 3, devfn & 7, reg), 4);
	return (uint32_t)io_read(pio, 0xcfc + (reg & 3), size);
}

static void cfg_write(unsigned bus, unsigned devfn, unsigned reg,
		      unsigned size, uint32_t v)
{
	io_write(pio, 0xcf8, addr(bus, devfn >> 3, devfn & 7, reg), 4);
	io_write(pio, 0xcfc + (reg & 3), v, size);
}

/* pci_check_type1(): the address register reads back; byte writes to
 * 0xcfb do not disturb it. */
static void test_linux_type1_check(void)
{
	uint32_t tmp;

	setup();
	io_write(pio, 0xcfb, 0x01, 1);
	tmp = (uint32_t)io_read(pio, 0xcf8, 4);
	io_write(pio, 0xcf8, 0x80000000u, 4);
	CHECK_EQ(io_read(pio, 0xcf8, 4), 0x80000000u);
	io_write(pio, 0xcf8, tmp, 4);
	/* Reserved bits 30:24 and 1:0 read 0. */
	io_write(pio, 0xcf8, 0xffffffffu, 4);
	CHECK_EQ(io_read(pio, 0xcf8, 4), 0x80fffffcu);
	/* Narrow accesses do not latch. */
	io_write(pio, 0xcf8, 0x80000000u, 4);
	io_write(pio, 0xcf8, 0x12, 1);
	io_write(pio, 0xcfa, 0x3456, 2);
	CHECK_EQ(io_read(pio, 0xcf8, 4), 0x80000000u);
	CHECK_EQ(io_read(pio, 0xcf8, 2), 0xffff);
	teardown();
}

static void test_host_bridge_ids(void)
{
	setup();
	CHECK_EQ(cfg_read(0, 0, 0x00, 4), 0x12378086u);
	CHECK_EQ(cfg_read(0, 0, 0x00, 2), 0x8086);
	CHECK_EQ(cfg_read(0, 0, 0x02, 2), 0x1237);
	CHECK_EQ(cfg_read(0, 0, 0x08, 4) >> 8, 0x060000u);	/* class */
	CHECK_EQ(cfg_read(0, 0, 0x08, 1), 0x02);		/* revision */
	CHECK_EQ(cfg_read(0, 0, 0x0b, 1), 0x06);		/* base class */
	CHECK_EQ(cfg_read(0, 0, 0x0a, 1), 0x00);		/* subclass */
	CHECK_EQ(cfg_read(0, 0, 0x0e, 1), 0x00);		/* header type */
	CHECK_EQ(cfg_read(0, 0, 0x04, 2), 0x0006);		/* command */
	CHECK_EQ(cfg_read(0, 0, 0x06, 2), 0x0280);		/* status */
	/* Direct (firmware-side) access agrees. */
	CHECK_EQ(pci_config_read(host, 0, 0, 0, 4), 0x12378086u);
	teardown();
}

static void test_read_only_fields(void)
{
	setup();
	cfg_write(0, 0, 0x00, 4, 0xdeadbeef);
	CHECK_EQ(cfg_read(0, 0, 0x00, 4), 0x12378086u);
	cfg_write(0, 0, 0x08, 4, 0xffffffff);
	CHECK_EQ(cfg_read(0, 0, 0x08, 4), 0x06000002u);
	cfg_write(0, 0, 0x0c, 4, 0xffffffff);
	/* Only the latency timer's top bits are writable there. */
	CHECK_EQ(cfg_read(0, 0, 0x0c, 4), 0x0000f800u);
	/* Command: SERR# and parity response only; MAE/BME stay on. */
	cfg_write(0, 0, 0x04, 2, 0xffff);
	CHECK_EQ(cfg_read(0, 0, 0x04, 2), 0x0146);
	cfg_write(0, 0, 0x04, 2, 0x0000);
	CHECK_EQ(cfg_read(0, 0, 0x04, 2), 0x0006);
	/* Status: write-1-to-clear bits, nothing set to clear; the rest
	 * read-only. */
	cfg_write(0, 0, 0x06, 2, 0xffff);
	CHECK_EQ(cfg_read(0, 0, 0x06, 2), 0x0280);
	/* BARs of the host bridge: none. */
	cfg_write(0, 0, 0x10, 4, 0xffffffff);
	CHECK_EQ(cfg_read(0, 0, 0x10, 4), 0);
	/* PAM registers are storage. */
	cfg_write(0, 0, 0x5a, 1, 0xff);
	CHECK_EQ(cfg_read(0, 0, 0x5a, 1), 0x33);
	teardown();
}

static void test_absent_devices(void)
{
	setup();
	CHECK_EQ(cfg_read(0, 1 << 3, 0x00, 4), 0xffffffffu);
	CHECK_EQ(cfg_read(0, 31 << 3 | 7, 0x00, 2), 0xffff);
	CHECK_EQ(cfg_read(0, 0 << 3 | 1, 0x00, 4), 0xffffffffu);	/* fn 1 */
	/* Other buses: all-ones, even "device 0". */
	CHECK_EQ(cfg_read(1, 0, 0x00, 4), 0xffffffffu);
	CHECK_EQ(cfg_read(255, 0, 0x00, 1), 0xff);
	/* Writes there go nowhere. */
	cfg_write(1, 0, 0x04, 2, 0x0007);
	CHECK_EQ(cfg_read(0, 0, 0x04, 2), 0x0006);
	/* Enable bit clear: all-ones, writes dropped. */
	io_write(pio, 0xcf8, 0x00000000u, 4);
	CHECK_EQ(io_read(pio, 0xcfc, 4), 0xffffffffu);
	io_write(pio, 0xcfc, 0x0146, 2);
	CHECK_EQ(cfg_read(0, 0, 0x04, 2), 0x0006);
	teardown();
}

static void test_sub_dword(void)
{
	setup();
	/* Byte and word reads through 0xcfc-0xcff at the latched dword. */
	io_write(pio, 0xcf8, addr(0, 0, 0, 0x00), 4);
	CHECK_EQ(io_read(pio, 0xcfc, 1), 0x86);
	CHECK_EQ(io_read(pio, 0xcfd, 1), 0x80);
	CHECK_EQ(io_read(pio, 0xcfe, 1), 0x37);
	CHECK_EQ(io_read(pio, 0xcff, 1), 0x12);
	CHECK_EQ(io_read(pio, 0xcfe, 2), 0x1237);
	CHECK_EQ(io_read(pio, 0xcfd, 2), 0x3780);
	/* Crossing the end of CONFIG_DATA: all-ones. */
	CHECK_EQ(bus_read(pio, 0xcff, 2, NULL), 0xffff);
	/* Byte writes to the latency timer (0x0d) through 0xcfd. */
	io_write(pio, 0xcf8, addr(0, 0, 0, 0x0c), 4);
	io_write(pio, 0xcfd, 0x40, 1);
	CHECK_EQ(cfg_read(0, 0, 0x0d, 1), 0x40);
	CHECK_EQ(cfg_read(0, 0, 0x0c, 4), 0x00004000u);
	/* Direct access that would cross a dword: refused. */
	CHECK_EQ(pci_config_read(host, 0, 0, 0x03, 2), 0xffff);
	CHECK_EQ(pci_config_read(host, 0, 0, 0xfe, 4), 0xffffffffu);
	teardown();
}

/* A device added later, with hooks. */
static unsigned hook_writes;
static uint32_t last_hook_value;

static uint32_t dev_read(struct pci_device *d, unsigned off, unsigned size,
			 uint32_t v)
{
	(void)d, (void)size;
	return off == 0x40 ? 0xcafe : v;
}

static void dev_write(struct pci_device *d, unsigned off, unsigned size,
		      uint32_t v)
{
	(void)d, (void)off, (void)size;
	hook_writes++;
	last_hook_value = v;
}

static void test_added_device(void)
{
	static struct pci_device dev;

	setup();
	memset(&dev, 0, sizeof(dev));
	dev.config[0] = 0xf4, dev.config[1] = 0x1a;	/* 1af4:1000 */
	dev.config[2] = 0x00, dev.config[3] = 0x10;
	dev.config[6] = 0x10 | 0x00;
	dev.config[7] = 0x80;				/* detected parity */
	dev.w1cmask[7] = 0xf9;
	dev.wmask[0x3c] = 0xff;				/* interrupt line */
	dev.config_read = dev_read;
	dev.config_write = dev_write;
	CHECK_EQ(pci_add_device(host, &dev, 3 << 3), 0);
	CHECK_EQ(pci_add_device(host, &dev, 3 << 3), -EEXIST);
	CHECK_EQ(pci_add_device(host, &dev, 0), -EEXIST);
	CHECK_EQ(pci_add_device(host, NULL, 9), -EINVAL);
	CHECK_EQ(dev.devfn, 3 << 3);
	CHECK_EQ(cfg_read(0, 3 << 3, 0x00, 4), 0x10001af4u);
	CHECK_EQ(cfg_read(0, 3 << 3, 0x40, 2), 0xcafe);
	cfg_write(0, 3 << 3, 0x3c, 1, 11);
	CHECK_EQ(cfg_read(0, 3 << 3, 0x3c, 1), 11);
	CHECK_EQ(hook_writes, 1);
	CHECK_EQ(last_hook_value, 11);
	/* Write-1-to-clear status bit. */
	cfg_write(0, 3 << 3, 0x06, 2, 0x8000);
	CHECK_EQ(cfg_read(0, 3 << 3, 0x06, 2), 0x0010);
	teardown();
}

/* Byte accesses at 0xcf9 go to the reset control register's handler
 * (acpi_pm_reset_ops in the machine; test_acpi_pm covers that pairing). */
static uint8_t cf9_value;
static int cf9_writes;

static uint64_t cf9_read(void *opaque, uint64_t offset, unsigned size)
{
	(void)opaque;
	CHECK_EQ(offset, 0);
	CHECK_EQ(size, 1);
	return cf9_value;
}

static void cf9_write(void *opaque, uint64_t offset, uint64_t value,
		      unsigned size)
{
	(void)opaque;
	CHECK_EQ(offset, 0);
	CHECK_EQ(size, 1);
	cf9_value = (uint8_t)value;
	cf9_writes++;
}

static const struct bus_ops cf9_ops = {
	.name = "cf9", .read = cf9_read, .write = cf9_write,
};

static void test_cf9_forwarding(void)
{
	setup();
	/* No handler: ignored. */
	io_write(pio, 0xcf9, 0x06, 1);
	CHECK_EQ(io_read(pio, 0xcf9, 1), 0xff);

	pci_host_set_cf9_handler(host, &cf9_ops, NULL);
	io_write(pio, 0xcf8, 0x80000000u, 4);
	io_write(pio, 0xcf9, 0x02, 1);
	CHECK_EQ(cf9_writes, 1);
	CHECK_EQ(cf9_value, 0x02);
	CHECK_EQ(io_read(pio, 0xcf9, 1), 0x02);
	/* The address register is untouched; dword and word accesses are
	 * not the reset register's. */
	CHECK_EQ(io_read(pio, 0xcf8, 4), 0x80000000u);
	io_write(pio, 0xcf8, 0x80000600u, 4);
	io_write(pio, 0xcf8, 0x0600, 2);
	CHECK_EQ(cf9_writes, 1);
	teardown();
}

/* The host bridge alone: what firmware programs (PAM, SMRAM, latency)
 * and CONFIG_ADDRESS come back; a bridge byte that is read-only refuses. */
static void test_save_load(void)
{
	struct bus *pio2 = bus_new("pio2");
	struct pci_host *host2 = pci_host_new();
	GVariant *a, *b, *bad;
	char err[160] = "";

	setup();
	CHECK_EQ(pci_host_attach(host2, pio2, NULL), 0);
	cfg_write(0, 0, 0x59, 1, 0x30);			/* PAM0 */
	cfg_write(0, 0, 0x5a, 2, 0x3333);
	cfg_write(0, 0, 0x5c, 4, 0x33333333);
	cfg_write(0, 0, 0x72, 1, 0x0a);			/* SMRAM */
	cfg_write(0, 0, 0x0d, 1, 0x40);			/* latency timer */
	io_write(pio, 0xcf8, addr(0, 0, 0, 0x58), 4);
	a = g_variant_ref_sink(pci_host_device_ops.save(host));
	CHECK_EQ(pci_host_device_ops.load(host2, 1, a, err, sizeof(err)), 0);
	b = g_variant_ref_sink(pci_host_device_ops.save(host2));
	CHECK(g_variant_equal(a, b));
	g_variant_unref(b);
	CHECK_EQ(io_read(pio2, 0xcf8, 4), addr(0, 0, 0, 0x58));
	CHECK_EQ(io_read(pio2, 0xcfd, 1), 0x30);	/* 0x59 */
	CHECK_EQ(pci_config_read(host2, 0, 0, 0x58, 4), 0x33333000u);
	CHECK_EQ(pci_config_read(host2, 0, 0, 0x5c, 4), 0x33333333u);
	CHECK_EQ(pci_config_read(host2, 0, 0, 0x72, 1), 0x0a);
	CHECK_EQ(pci_config_read(host2, 0, 0, 0x0d, 1), 0x40);

	/* A device ID other than the i440FX's, and a wrong version. */
	{
		GVariant *funcs, *fn, *cfg, *rest[4];
		uint8_t c[256];
		const uint8_t *data;
		guint32 address;
		guint8 devfn;
		gboolean intx;
		gsize len;

		g_variant_get(a, "(u@a(yaybata(uuuu)at))", &address, &funcs);
		fn = g_variant_get_child_value(funcs, 0);
		g_variant_get(fn, "(y@ayb@at@a(uuuu)@at)", &devfn, &cfg, &intx,
			      &rest[0], &rest[1], &rest[2]);
		data = g_variant_get_fixed_array(cfg, &len, 1);
		CHECK_EQ(len, 256);
		memcpy(c, data, 256);
		c[2] = 0x38;
		rest[3] = g_variant_new("(y@ayb@at@a(uuuu)@at)", devfn,
			g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, c, 256, 1),
			intx, rest[0], rest[1], rest[2]);
		bad = g_variant_ref_sink(g_variant_new("(u@a(yaybata(uuuu)at))",
			address, g_variant_new_array(NULL, &rest[3], 1)));
		for (unsigned i = 0; i < 3; i++)
			g_variant_unref(rest[i]);
		g_variant_unref(cfg);
		g_variant_unref(fn);
		g_variant_unref(funcs);
	}
	pci_config_write(host2, 0, 0, 0x0d, 1, 0x20);
	CHECK_EQ(pci_host_device_ops.load(host2, 1, bad, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "pci-host: 00.0: config byte 0x02") != NULL);
	CHECK_EQ(pci_host_device_ops.load(host2, 7, a, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "pci-host: state version 7 not supported") != NULL);
	CHECK_EQ(pci_config_read(host2, 0, 0, 0x0d, 1), 0x20);
	g_variant_unref(bad);
	g_variant_unref(a);
	pci_host_free(host2);
	bus_free(pio2);
	teardown();
}

int main(void)
{
	RUN_TEST(test_linux_type1_check);
	RUN_TEST(test_host_bridge_ids);
	RUN_TEST(test_read_only_fields);
	RUN_TEST(test_absent_devices);
	RUN_TEST(test_sub_dword);
	RUN_TEST(test_added_device);
	RUN_TEST(test_cf9_forwarding);
	RUN_TEST(test_save_load);
	return check_finish();
}
