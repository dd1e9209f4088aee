/* SPDX-License-Identifier: MIT */
/* tests/unit/test_fw_cfg.c - fw_cfg as SeaBIOS reads it: the signature and
 * ID through the data port, the file directory, DMA reads, skips and
 * selects, and hostile DMA descriptors. */
#include <errno.h>
#include <string.h>

#include <glib.h>

#include "testlib.h"

#include "devices/fw_cfg.h"
#include "mem.h"

static struct bus *pio;
static struct guest_mem mem;
static struct fw_cfg *fc;

static void setup(void)
{
	pio = bus_new("pio");
	CHECK_EQ(guest_mem_init(&mem, 16ull << 20), 0);
	fc = fw_cfg_new(&mem);
	CHECK(fc != NULL);
	CHECK_EQ(fw_cfg_attach(fc, pio), 0);
}

static void teardown(void)
{
	fw_cfg_free(fc);
	guest_mem_free(&mem);
	bus_free(pio);
}

static void read_port(uint16_t key, void *buf, size_t len)
{
	io_write(pio, 0x510, key, 2);
	for (size_t i = 0; i < len; i++)
		((uint8_t *)buf)[i] = (uint8_t)io_read(pio, 0x511, 1);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* Write a FWCfgDmaAccess at @desc and start it as SeaBIOS does (two
 * big-endian halves, the low one last).  Returns the control word after. */
static uint32_t dma(uint64_t desc, uint32_t control, uint32_t len, uint64_t addr)
{
	uint8_t *d = gpa_to_hva(&mem, desc, 16);

	put_be32(d, control);
	put_be32(d + 4, len);
	put_be32(d + 8, (uint32_t)(addr >> 32));
	put_be32(d + 12, (uint32_t)addr);
	io_write(pio, 0x514, __builtin_bswap32((uint32_t)(desc >> 32)), 4);
	io_write(pio, 0x518, __builtin_bswap32((uint32_t)desc), 4);
	return be32(d);
}

static void test_signature_and_id(void)
{
	char sig[5] = "";
	uint32_t id = 0;

	setup();
	read_port(FW_CFG_SIGNATURE, sig, 4);
	CHECK(!strcmp(sig, "QEMU"));
	read_port(FW_CFG_ID, &id, 4);
	CHECK_EQ(id, 3);			/* traditional + DMA */
	/* Past the end and unknown keys read zeroes. */
	CHECK_EQ(io_read(pio, 0x511, 1), 0);
	read_port(0x1f, &id, 4);
	CHECK_EQ(id, 0);
	read_port(0x7fff, &id, 4);
	CHECK_EQ(id, 0);
	/* The DMA register reads as "QEMU CFG" (big-endian). */
	CHECK_EQ(__builtin_bswap64(io_read(pio, 0x514, 8)), 0x51454d5520434647ull);
	teardown();
}

static void test_numbered_items(void)
{
	uint16_t n = 0;
	uint64_t ram = 0;

	setup();
	CHECK_EQ(fw_cfg_add_u16(fc, FW_CFG_NB_CPUS, 4), 0);
	CHECK_EQ(fw_cfg_add_u64(fc, FW_CFG_RAM_SIZE, 1ull << 30), 0);
	CHECK_EQ(fw_cfg_add_u16(fc, FW_CFG_FILE_DIR, 1), -EINVAL);
	CHECK_EQ(fw_cfg_add_u16(fc, 0x20, 1), -EINVAL);
	read_port(FW_CFG_NB_CPUS, &n, 2);
	CHECK_EQ(n, 4);
	read_port(FW_CFG_RAM_SIZE, &ram, 8);
	CHECK_EQ(ram, 1ull << 30);
	teardown();
}

static void test_file_dir(void)
{
	uint8_t dir[4 + 3 * 64];
	char buf[16] = "";

	setup();
	CHECK_EQ(fw_cfg_add_file(fc, "etc/sercon-port", "\xf8\x03", 2), 0);
	CHECK_EQ(fw_cfg_add_file(fc, "bootorder", "/pci@i0cf8/x\n", 13), 0);
	CHECK_EQ(fw_cfg_add_file(fc, "etc/e820", "0123456789abcdefghij", 20), 0);
	CHECK_EQ(fw_cfg_add_file(fc, "etc/e820", "x", 1), -EEXIST);
	CHECK_EQ(fw_cfg_add_file(fc, "0123456789012345678901234567890123456789012345678901234567", "x", 1), -EINVAL);
	read_port(FW_CFG_FILE_DIR, dir, sizeof(dir));
	CHECK_EQ(be32(dir), 3);
	/* Sorted by name, keys from 0x20. */
	CHECK(!strcmp((char *)dir + 4 + 8, "bootorder"));
	CHECK(!strcmp((char *)dir + 68 + 8, "etc/e820"));
	CHECK(!strcmp((char *)dir + 132 + 8, "etc/sercon-port"));
	CHECK_EQ(be32(dir + 68), 20);
	CHECK_EQ(dir[68 + 4] << 8 | dir[68 + 5], 0x21);
	CHECK_EQ(fw_cfg_file_key(fc, "etc/sercon-port"), 0x22);
	CHECK_EQ(fw_cfg_file_key(fc, "nope"), -ENOENT);
	/* Sealed: no more files. */
	CHECK_EQ(fw_cfg_add_file(fc, "late", "x", 1), -EINVAL);
	read_port(0x21, buf, 10);
	CHECK(!memcmp(buf, "0123456789", 10));
	teardown();
}

static void test_dma(void)
{
	uint8_t *dst;

	setup();
	CHECK_EQ(fw_cfg_add_file(fc, "etc/table-loader", "ABCDEFGH", 8), 0);
	CHECK_EQ(fw_cfg_file_key(fc, "etc/table-loader"), 0x20);
	dst = gpa_to_hva(&mem, 0x2000, 16);
	memset(dst, 0xee, 16);
	/* Select + read 4, then skip 2, then read past the end (zero-fill). */
	CHECK_EQ(dma(0x1000, 0x20u << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 4, 0x2000), 0);
	CHECK(!memcmp(dst, "ABCD", 4));
	CHECK_EQ(dma(0x1000, FW_CFG_DMA_SKIP, 2, 0), 0);
	CHECK_EQ(dma(0x1000, FW_CFG_DMA_READ, 6, 0x2004), 0);
	CHECK(!memcmp(dst + 4, "GH\0\0\0\0", 6));
	CHECK_EQ(dst[10], 0xee);
	/* Writes are refused with the error bit. */
	CHECK_EQ(dma(0x1000, 0x20u << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_WRITE, 4, 0x2000), FW_CFG_DMA_ERROR);
	CHECK(!memcmp(dst, "ABCD", 4));
	teardown();
}

static void test_dma_hostile(void)
{
	setup();
	CHECK_EQ(fw_cfg_add_file(fc, "f", "0123456789", 10), 0);
	/* Destination outside RAM, crossing RAM's end, or into the VGA hole. */
	CHECK_EQ(dma(0x1000, 0x20u << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 16, 0xfffffff0ull), FW_CFG_DMA_ERROR);
	CHECK_EQ(dma(0x1000, 0x20u << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 16, (16ull << 20) - 8), FW_CFG_DMA_ERROR);
	CHECK_EQ(dma(0x1000, 0x20u << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 16, 0x9fff8), FW_CFG_DMA_ERROR);
	/* A 4 GiB length finishes in bounded steps with an error, not a hang. */
	CHECK_EQ(dma(0x1000, 0x20u << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 0xffffffffu, 0x100000), FW_CFG_DMA_ERROR);
	/* A huge skip is fine. */
	CHECK_EQ(dma(0x1000, FW_CFG_DMA_SKIP, 0xffffffffu, 0), 0);
	CHECK_EQ(dma(0x1000, FW_CFG_DMA_SKIP, 0xffffffffu, 0), 0);
	/* A descriptor outside RAM is ignored. */
	io_write(pio, 0x514, 0, 4);
	io_write(pio, 0x518, __builtin_bswap32(0xfff00000u), 4);
	/* Odd access sizes do nothing. */
	io_write(pio, 0x511, 0x12, 1);
	io_write(pio, 0x510, 0x20, 1);
	CHECK_EQ((uint16_t)io_read(pio, 0x511, 2), 0xffff);
	teardown();
}

/* The same items as the machine would rebuild them. */
static struct fw_cfg *items(struct fw_cfg *f)
{
	CHECK_EQ(fw_cfg_add_file(f, "etc/b", "0123456789", 10), 0);
	CHECK_EQ(fw_cfg_add_file(f, "etc/a", "ABCDEFGH", 8), 0);
	CHECK_EQ(fw_cfg_add_u32(f, FW_CFG_NB_CPUS, 2), 0);
	return f;
}

static void test_save_load(void)
{
	struct bus *pio2 = bus_new("pio2");
	struct fw_cfg *f2;
	GVariant *a, *b;
	uint8_t buf[4];
	char err[128] = "";
	int key_b;

	setup();
	f2 = items(fw_cfg_new(&mem));
	CHECK_EQ(fw_cfg_attach(f2, pio2), 0);
	items(fc);
	key_b = fw_cfg_file_key(fc, "etc/b");
	CHECK_EQ(key_b, 0x21);
	read_port((uint16_t)key_b, buf, 3);		/* "012", offset 3 */
	io_write(pio, 0x514, __builtin_bswap32(0x1u), 4);	/* DMA high half */
	a = g_variant_ref_sink(fw_cfg_device_ops.save(fc));
	CHECK(g_variant_is_of_type(a, G_VARIANT_TYPE(FW_CFG_STATE_TYPE)));
	CHECK_EQ(fw_cfg_device_ops.load(f2, 1, a, err, sizeof(err)), 0);
	b = g_variant_ref_sink(fw_cfg_device_ops.save(f2));
	CHECK(g_variant_equal(a, b));
	g_variant_unref(b);
	/* Reading on gives the same bytes from both. */
	CHECK_EQ(io_read(pio2, 0x511, 1), '3');
	CHECK_EQ(io_read(pio, 0x511, 1), '3');
	/* The pending high half: completing a DMA at 1:0000_1000 (not RAM)
	 * fails on both alike, the descriptor untouched. */
	io_write(pio2, 0x518, __builtin_bswap32(0x1000u), 4);
	io_write(pio, 0x518, __builtin_bswap32(0x1000u), 4);
	CHECK_EQ(io_read(pio2, 0x511, 1), '4');
	CHECK_EQ(io_read(pio, 0x511, 1), '4');

	/* Past the end by DMA: saved at the end. */
	CHECK_EQ(dma(0x1000, (uint32_t)key_b << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_SKIP, 100, 0), 0);
	b = g_variant_ref_sink(fw_cfg_device_ops.save(fc));
	CHECK_EQ(fw_cfg_device_ops.load(f2, 1, b, err, sizeof(err)), 0);
	CHECK_EQ(io_read(pio2, 0x511, 1), 0);
	g_variant_unref(b);

	/* Refused: version, type, an item of another length, a missing
	 * item, an offset past the end; f2 stays as it was. */
	io_write(pio2, 0x510, FW_CFG_SIGNATURE, 2);	/* f2: "QEMU" at 1 */
	io_read(pio2, 0x511, 1);
	b = g_variant_ref_sink(fw_cfg_device_ops.save(f2));
#define REFUSED(v)                                                           \
	do {                                                                 \
		GVariant *s__ = g_variant_ref_sink(v);                       \
		err[0] = 0;                                                  \
		CHECK_EQ(fw_cfg_device_ops.load(f2, 1, s__, err, sizeof(err)), -EINVAL); \
		CHECK(strncmp(err, "fw_cfg:", 7) == 0);                      \
		g_variant_unref(s__);                                        \
	} while (0)
	CHECK_EQ(fw_cfg_device_ops.load(f2, 2, a, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "fw_cfg: state version 2 not supported") != NULL);
	REFUSED(g_variant_new("(quu)", 0x21, 0, 0));
	REFUSED(g_variant_new("(quubu)", 0x21, 3, 0, TRUE, 11));	/* length */
	REFUSED(g_variant_new("(quubu)", 0x22, 0, 0, TRUE, 8));	/* 3rd file */
	REFUSED(g_variant_new("(quubu)", 0x21, 11, 0, TRUE, 10));	/* offset */
	REFUSED(g_variant_new("(quubu)", 0x06, 0, 0, FALSE, 0));	/* exists */
	REFUSED(g_variant_new("(quubu)", 0x8000, 1, 0, FALSE, 0));	/* no item */
#undef REFUSED
	a = (g_variant_unref(a), g_variant_ref_sink(fw_cfg_device_ops.save(f2)));
	CHECK(g_variant_equal(a, b));
	CHECK_EQ(io_read(pio2, 0x511, 1), 'E');
	/* An unknown key the guest selected is state too. */
	g_variant_unref(b);
	b = g_variant_ref_sink(g_variant_new("(quubu)", 0x22, 0, 0, FALSE, 0));
	CHECK_EQ(fw_cfg_device_ops.load(f2, 1, b, err, sizeof(err)), 0);
	CHECK_EQ(io_read(pio2, 0x511, 1), 0);
	g_variant_unref(a);
	g_variant_unref(b);
	fw_cfg_free(f2);
	bus_free(pio2);
	teardown();
}

int main(void)
{
	RUN_TEST(test_signature_and_id);
	RUN_TEST(test_numbered_items);
	RUN_TEST(test_file_dir);
	RUN_TEST(test_dma);
	RUN_TEST(test_dma_hostile);
	RUN_TEST(test_save_load);
	return check_finish();
}
