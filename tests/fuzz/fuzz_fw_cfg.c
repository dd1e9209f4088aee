/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_fw_cfg.c - fw_cfg (vmm-core/devices/fw_cfg.c) under a
 * hostile firmware: the selector and data ports, the DMA interface with
 * FWCfgDmaAccess structures anywhere in (or outside) guest RAM, any
 * control word (select, skip, read, write), length and address, and
 * save -> load round trips.
 *
 * Input: operations until it ends, each an opcode byte (modulo OP_COUNT)
 * and its arguments (bytes past the end read as 0):
 *   OP_SEL    le16 key                    selector write (port 0x510)
 *   OP_DATA   count                       count byte reads of port 0x511
 *   OP_DMA    slot, how, be32 control, be32 length, le32 address
 *             a descriptor at one of 16 slots (how bit 2 clear) or at a
 *             GPA of the input (how bit 2 set: le32 follows), started by
 *             how & 3: 0 one 8-byte write at 0x514, 1 the two 4-byte
 *             halves (high first), 2 only the low half at 0x518, 3 the
 *             high half only (nothing starts)
 *   OP_PORT   offset, size, le32 value    any write in 0x510-0x51b
 *   OP_RPORT  offset, size                any read there
 *   OP_MEM    le16 offset, len, bytes     guest RAM contents
 *   OP_SAVE                               save, load into a fresh device
 * Checked (abort on failure): byte reads and successful DMA reads give the
 * selected item's bytes from the offset a model keeps (zeroes past its
 * end), a DMA descriptor in RAM is completed with control 0 or the error
 * bit, and every save loads into a fresh device.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "fuzz.h"
#include "fuzz_input.h"
#include "fuzzlib.h"

#include "bus.h"
#include "devices/fw_cfg.h"
#include "log.h"
#include "mem.h"

#define FUZZ_RAM	(1u << 20)	/* the least guest_mem takes */
#define DESC_BASE	0x1000u		/* 16 descriptor slots */
#define BUF_BASE	0x10000u
#define BIG_LEN		70000u		/* more than the device's DMA chunk */

enum { OP_SEL, OP_DATA, OP_DMA, OP_PORT, OP_RPORT, OP_MEM, OP_SAVE,
       OP_COUNT };

static struct guest_mem mem;
static struct bus *pio;
static bool ready;

/* The items, as the model knows them. */
static uint8_t kernel[3000], big[BIG_LEN];
static const char cmdline[] = "console=ttyS0 root=/dev/vda";
static const uint8_t e820[20] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a, 0,
				  0, 0, 0, 0, 1, 0, 0, 0 };
static const char bootorder[] = "/pci@i0cf8/ide@1,1/drive@0/disk@0\n";

struct model {
	uint16_t sel;
	uint32_t off;
	bool lost;		/* after a failed DMA: unknown until a select */
};

const char fuzz_target[] = "fuzz_fw_cfg";

static void init_once(void)
{
	if (ready)
		return;
	log_set_level(LOG_ERROR);
	fuzz_ram(&mem, FUZZ_RAM);
	pio = bus_new("pio");
	if (!pio)
		fuzz_fail("cannot make the bus");
	for (unsigned i = 0; i < sizeof(kernel); i++)
		kernel[i] = (uint8_t)(i * 7 + 1);
	for (unsigned i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i ^ (i >> 8));
	ready = true;
}

static struct fw_cfg *dev_new(void)
{
	struct fw_cfg *fc = fw_cfg_new(&mem);

	if (!fc || fw_cfg_add_u64(fc, FW_CFG_RAM_SIZE, FUZZ_RAM) ||
	    fw_cfg_add_u16(fc, FW_CFG_NB_CPUS, 2) ||
	    fw_cfg_add_u32(fc, FW_CFG_KERNEL_SIZE, sizeof(kernel)) ||
	    fw_cfg_add_bytes(fc, FW_CFG_KERNEL_DATA, kernel, sizeof(kernel)) ||
	    fw_cfg_add_bytes(fc, FW_CFG_CMDLINE_DATA, cmdline, sizeof(cmdline)) ||
	    fw_cfg_add_file(fc, "etc/e820", e820, sizeof(e820)) ||
	    fw_cfg_add_file(fc, "bootorder", bootorder, sizeof(bootorder) - 1) ||
	    fw_cfg_add_file(fc, "etc/table-loader", big, sizeof(big)) ||
	    fw_cfg_add_file(fc, "genroms/empty", "", 0) ||
	    fw_cfg_attach(fc, pio) != 0)
		fuzz_fail("cannot build the device");
	return fc;
}

static void dev_free(struct fw_cfg *fc)
{
	bus_unregister(pio, FW_CFG_PORT_SEL);
	fw_cfg_free(fc);
}

/* The bytes of item @sel as the model knows them; false: not modelled
 * (the directory, whose layout the unit test checks). */
static bool item(struct fw_cfg *fc, uint16_t sel, const uint8_t **p,
		 uint32_t *len)
{
	static const uint8_t sig[4] = "QEMU", id[4] = { 3 };
	static uint8_t ram[8], cpus[2] = { 2 }, ksize[4];
	int k = sel & 0x3fff;

	for (int i = 0; i < 8; i++)
		ram[i] = (uint8_t)((uint64_t)FUZZ_RAM >> (8 * i));
	ksize[0] = sizeof(kernel) & 0xff;
	ksize[1] = sizeof(kernel) >> 8;
	*p = NULL;
	*len = 0;
	if (sel & 0x8000)
		return true;
	switch (k) {
	case FW_CFG_SIGNATURE: *p = sig; *len = 4; return true;
	case FW_CFG_ID: *p = id; *len = 4; return true;
	case FW_CFG_RAM_SIZE: *p = ram; *len = 8; return true;
	case FW_CFG_NB_CPUS: *p = cpus; *len = 2; return true;
	case FW_CFG_KERNEL_SIZE: *p = ksize; *len = 4; return true;
	case FW_CFG_KERNEL_DATA: *p = kernel; *len = sizeof(kernel); return true;
	case FW_CFG_CMDLINE_DATA:
		*p = (const uint8_t *)cmdline;
		*len = sizeof(cmdline);
		return true;
	case FW_CFG_FILE_DIR:
		return false;
	}
	if (k == fw_cfg_file_key(fc, "etc/e820")) {
		*p = e820;
		*len = sizeof(e820);
	} else if (k == fw_cfg_file_key(fc, "bootorder")) {
		*p = (const uint8_t *)bootorder;
		*len = sizeof(bootorder) - 1;
	} else if (k == fw_cfg_file_key(fc, "etc/table-loader")) {
		*p = big;
		*len = sizeof(big);
	}
	return true;
}

/* The byte at the model's offset, advancing it; -1: not modelled. */
static int expect_byte(struct fw_cfg *fc, struct model *m)
{
	const uint8_t *p;
	uint32_t len;
	int v;

	if (m->lost || !item(fc, m->sel, &p, &len))
		return -1;
	v = m->off < len ? p[m->off] : 0;
	if (m->off < UINT32_MAX)
		m->off++;
	return v;
}

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static uint32_t rd_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void op_dma(struct fw_cfg *fc, struct model *m, struct in *in)
{
	uint8_t slot = in_u8(in) % 16, how = in_u8(in), d[16], *hd;
	uint32_t control, len, addr;
	uint64_t gpa = DESC_BASE + 16u * slot;
	const uint8_t *p;
	uint32_t ilen, before;
	bool modelled, in_ram;

	in_bytes(in, d, 4);
	control = rd_be32(d);
	in_bytes(in, d + 4, 4);
	len = rd_be32(d + 4);
	addr = in_u32(in);
	if (how & 4)
		gpa = in_u32(in);
	be32(d + 8, 0);
	be32(d + 12, addr);
	hd = gpa_to_hva(&mem, gpa, 16);
	in_ram = hd != NULL;
	if (in_ram)
		memcpy(hd, d, 16);
	switch (how & 3) {
	case 0:
		bus_write(pio, FW_CFG_PORT_DMA, __builtin_bswap64(gpa), 8, NULL);
		break;
	case 1:
		bus_write(pio, FW_CFG_PORT_DMA,
			  __builtin_bswap32((uint32_t)(gpa >> 32)), 4, NULL);
		/* fall through */
	case 2:
		bus_write(pio, FW_CFG_PORT_DMA + 4,
			  __builtin_bswap32((uint32_t)gpa), 4, NULL);
		break;
	case 3:
		bus_write(pio, FW_CFG_PORT_DMA,
			  __builtin_bswap32((uint32_t)(gpa >> 32)), 4, NULL);
		return;
	}
	if (!in_ram || (how & 3) == 2) {
		m->lost = true;		/* ran who knows what, or nothing */
		return;
	}
	if (hd[0] | hd[1] | hd[2] | (hd[3] & ~FW_CFG_DMA_ERROR))
		fuzz_fail("DMA descriptor not completed with 0 or the error bit");
	if (control & FW_CFG_DMA_SELECT) {
		m->sel = (uint16_t)(control >> 16);
		m->off = 0;
		m->lost = false;
	}
	if (hd[3] & FW_CFG_DMA_ERROR) {
		m->lost = true;
		return;
	}
	if (control & FW_CFG_DMA_WRITE)
		fuzz_fail("a DMA write to a read-only item succeeded");
	if (!(control & (FW_CFG_DMA_READ | FW_CFG_DMA_SKIP)))
		return;
	before = m->off;
	m->off = m->off > UINT32_MAX - len ? UINT32_MAX : m->off + len;
	modelled = !m->lost && item(fc, m->sel, &p, &ilen);
	/* Compare what landed, unless it overwrote its own descriptor. */
	if (modelled && (control & FW_CFG_DMA_READ) && len &&
	    (addr >= gpa + 16 || (uint64_t)addr + len <= gpa)) {
		const uint8_t *got = gpa_to_hva(&mem, addr, len);

		if (!got)
			fuzz_fail("DMA read succeeded outside RAM");
		for (uint32_t i = 0; i < len; i++) {
			uint64_t o = (uint64_t)before + i;
			uint8_t want = o < ilen ? p[o] : 0;

			if (got[i] != want)
				fuzz_fail("DMA read gave the wrong bytes");
		}
	}
}

static struct fw_cfg *save_load(struct fw_cfg *fc, struct model *m)
{
	const struct device_ops *ops = &fw_cfg_device_ops;
	GVariant *s = fuzz_save(ops, fc, "save failed");

	dev_free(fc);
	fc = dev_new();
	fuzz_load(ops, fc, s);
	g_variant_unref(s);
	/* An offset past the end is saved as the end: reads give 0 alike. */
	if (!m->lost) {
		const uint8_t *p;
		uint32_t len;

		if (item(fc, m->sel, &p, &len) && m->off > len)
			m->off = len;
		else if (!item(fc, m->sel, &p, &len))
			m->lost = true;
	}
	return fc;
}

static void one_op(struct fw_cfg **fc, struct model *m, struct in *in)
{
	static const unsigned sizes[4] = { 1, 2, 4, 8 };
	uint8_t buf[256];
	unsigned off, size, n;

	switch (in_u8(in) % OP_COUNT) {
	case OP_SEL:
		m->sel = in_u16(in);
		m->off = 0;
		m->lost = false;
		bus_write(pio, FW_CFG_PORT_SEL, m->sel, 2, NULL);
		break;
	case OP_DATA:
		n = in_u8(in);
		for (unsigned i = 0; i < n; i++) {
			int want = expect_byte(*fc, m);
			uint64_t v = bus_read(pio, FW_CFG_PORT_DATA, 1, NULL);

			if (want >= 0 && v != (uint64_t)want)
				fuzz_fail("data port read the wrong byte");
		}
		break;
	case OP_DMA:
		op_dma(*fc, m, in);
		break;
	case OP_PORT:
		off = in_u8(in) % 12;
		size = sizes[in_u8(in) % 4];
		bus_write(pio, FW_CFG_PORT_SEL + off, in_u32(in), size, NULL);
		m->lost = true;		/* may select or run DMA */
		break;
	case OP_RPORT:
		off = in_u8(in) % 12;
		size = sizes[in_u8(in) % 4];
		bus_read(pio, FW_CFG_PORT_SEL + off, size, NULL);
		m->lost = true;		/* may read the data port */
		break;
	case OP_MEM:
		off = in_u16(in);
		n = in_u8(in);
		in_bytes(in, buf, n);
		guest_mem_write(&mem, off, buf, n);
		break;
	case OP_SAVE:
		*fc = save_load(*fc, m);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size, 0 };
	struct model m = { 0 };
	struct fw_cfg *fc;

	init_once();
	for (unsigned i = 0; i < mem.nregions; i++)
		memset(mem.region[i].hva, 0, mem.region[i].size);
	fc = dev_new();
	while (in_more(&in))
		one_op(&fc, &m, &in);
	fc = save_load(fc, &m);
	dev_free(fc);
	return 0;
}

/* ---- seeds: what SeaBIOS and OVMF do, then hostile descriptors ---------- */

static void s_sel(struct seed *s, uint16_t key)
{
	put8(s, OP_SEL);
	put16(s, key);
}

static void s_data(struct seed *s, uint8_t n)
{
	put8(s, OP_DATA);
	put8(s, n);
}

static void s_dma(struct seed *s, uint8_t slot, uint8_t how, uint32_t control,
		  uint32_t len, uint32_t addr)
{
	put8(s, OP_DMA);
	put8(s, slot);
	put8(s, how);
	put32(s, __builtin_bswap32(control));
	put32(s, __builtin_bswap32(len));
	put32(s, addr);
}

void fuzz_make_seeds(void (*add)(const void *, size_t))
{
	static struct seed s;

	/* Traditional interface: signature, ID, directory, a file. */
	s.n = 0;
	s_sel(&s, FW_CFG_SIGNATURE);
	s_data(&s, 4);
	s_sel(&s, FW_CFG_ID);
	s_data(&s, 4);
	s_sel(&s, FW_CFG_FILE_DIR);
	s_data(&s, 255);
	s_sel(&s, FW_CFG_FILE_FIRST);
	s_data(&s, 40);
	s_sel(&s, FW_CFG_KERNEL_DATA);
	s_data(&s, 10);
	put8(&s, OP_SAVE);
	s_data(&s, 10);
	add(s.b, s.n);

	/* DMA: select + read the directory, each file, skip then read,
	 * the big file in one go (past the chunk), a zero-length read. */
	s.n = 0;
	s_dma(&s, 0, 0, FW_CFG_FILE_DIR << 16 | FW_CFG_DMA_SELECT |
	      FW_CFG_DMA_READ, 4 + 64 * 4, BUF_BASE);
	for (uint16_t k = FW_CFG_FILE_FIRST; k < FW_CFG_FILE_FIRST + 4; k++)
		s_dma(&s, (uint8_t)(k & 15), 1, (uint32_t)k << 16 |
		      FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 100,
		      BUF_BASE + 0x1000u * (k & 15));
	s_dma(&s, 1, 0, FW_CFG_KERNEL_DATA << 16 | FW_CFG_DMA_SELECT |
	      FW_CFG_DMA_SKIP, 1000, 0);
	s_dma(&s, 2, 0, FW_CFG_DMA_READ, 2500, BUF_BASE);
	s_dma(&s, 3, 1, (FW_CFG_FILE_FIRST + 3) << 16 | FW_CFG_DMA_SELECT |
	      FW_CFG_DMA_READ, BIG_LEN + 10, BUF_BASE);
	s_dma(&s, 4, 0, FW_CFG_DMA_READ, 0, BUF_BASE);
	put8(&s, OP_SAVE);
	s_data(&s, 8);
	add(s.b, s.n);

	/* Hostile: a write, a read past RAM, a huge skip, a descriptor
	 * outside RAM and one overlapping its own buffer, half addresses. */
	s.n = 0;
	s_dma(&s, 0, 0, FW_CFG_ID << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_WRITE,
	      4, BUF_BASE);
	s_dma(&s, 1, 0, FW_CFG_KERNEL_DATA << 16 | FW_CFG_DMA_SELECT |
	      FW_CFG_DMA_READ, 0x10000, FUZZ_RAM - 0x100);
	s_dma(&s, 2, 0, FW_CFG_DMA_SKIP, 0xffffffffu, 0);
	s_data(&s, 4);
	s_dma(&s, 3, 4 | 0, FW_CFG_DMA_READ, 16, 0);
	put32(&s, 0xfffffff8u);
	s_dma(&s, 4, 0, FW_CFG_SIGNATURE << 16 | FW_CFG_DMA_SELECT |
	      FW_CFG_DMA_READ, 64, DESC_BASE + 64);
	s_dma(&s, 5, 3, 0, 0, 0);
	s_dma(&s, 6, 2, FW_CFG_DMA_READ, 8, BUF_BASE);
	put8(&s, OP_PORT); put8(&s, 4); put8(&s, 2); put32(&s, 0x1234);
	put8(&s, OP_RPORT); put8(&s, 4); put8(&s, 3);
	put8(&s, OP_RPORT); put8(&s, 8); put8(&s, 2);
	s_sel(&s, 0x8000);
	s_data(&s, 4);
	s_sel(&s, 0x7fff);
	s_data(&s, 4);
	put8(&s, OP_SAVE);
	add(s.b, s.n);
}
