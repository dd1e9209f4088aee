/* SPDX-License-Identifier: MIT */
/*
 * The fw_cfg device (QEMU's docs/specs/fw_cfg.rst).  The guest selects an
 * item, then reads it byte by byte from the data port or in one go with a
 * DMA descriptor; reads past an item's end give zeroes.  Every DMA address
 * and length comes from the guest and is checked against RAM; a bad one
 * sets the error bit, never more.
 */
#include "fw_cfg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "../bus.h"
#include "../log.h"
#include "../mem.h"

#define NKEYS		(FW_CFG_FILE_FIRST + FW_CFG_MAX_FILES)
#define DMA_SIGNATURE	0x51454d5520434647ull	/* "QEMU CFG" */
#define FEATURE_TRADITIONAL	0x01
#define FEATURE_DMA		0x02
/* A DMA descriptor may ask for any length; copy in bounded steps. */
#define DMA_CHUNK	65536

struct item {
	uint8_t *data;
	uint32_t len;
};

struct file {
	char name[FW_CFG_NAME_MAX];
	struct item item;
};

struct fw_cfg {
	const struct guest_mem *mem;
	struct item key[FW_CFG_FILE_FIRST];	/* numbered items */
	struct file file[FW_CFG_MAX_FILES];	/* sorted by name once sealed */
	unsigned nfiles;
	bool sealed;				/* directory built */
	struct item dir;
	uint16_t sel;
	uint32_t offset;
	uint32_t dma_hi;
};

static void be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void be32(uint8_t *p, uint32_t v) { be16(p, (uint16_t)(v >> 16)); be16(p + 2, (uint16_t)v); }
static uint32_t rd_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int set_item(struct item *it, const void *data, size_t len)
{
	uint8_t *copy;

	if (len > UINT32_MAX)
		return -EINVAL;
	copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	if (len)
		memcpy(copy, data, len);
	free(it->data);
	it->data = copy;
	it->len = (uint32_t)len;
	return 0;
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const struct file *)a)->name, ((const struct file *)b)->name);
}

/* Sort the files and build the directory (the fw_cfg spec, "File
 * Directory"): a big-endian count, then {size, select, reserved, name}. */
static void seal(struct fw_cfg *fc)
{
	uint8_t *d;
	size_t len = 4 + 64 * (size_t)fc->nfiles;

	if (fc->sealed)
		return;
	fc->sealed = true;
	qsort(fc->file, fc->nfiles, sizeof(fc->file[0]), cmp_file);
	d = calloc(1, len);
	if (!d)
		return;		/* the directory reads as empty */
	be32(d, fc->nfiles);
	for (unsigned i = 0; i < fc->nfiles; i++) {
		uint8_t *e = d + 4 + 64 * i;

		be32(e, fc->file[i].item.len);
		be16(e + 4, (uint16_t)(FW_CFG_FILE_FIRST + i));
		memcpy(e + 8, fc->file[i].name, FW_CFG_NAME_MAX);
	}
	fc->dir.data = d;
	fc->dir.len = (uint32_t)len;
}

/* The item selector @sel names, or NULL. */
static const struct item *selected_key(struct fw_cfg *fc, uint16_t sel)
{
	uint16_t k = sel & 0x3fff;	/* bit 14: write, bit 15: arch */

	if (sel & 0x8000)
		return NULL;		/* no arch-specific items */
	if (k == FW_CFG_FILE_DIR) {
		seal(fc);
		return &fc->dir;
	}
	if (k < FW_CFG_FILE_FIRST)
		return &fc->key[k];
	seal(fc);
	if ((unsigned)(k - FW_CFG_FILE_FIRST) < fc->nfiles)
		return &fc->file[k - FW_CFG_FILE_FIRST].item;
	return NULL;
}

static const struct item *selected(struct fw_cfg *fc)
{
	return selected_key(fc, fc->sel);
}

static void select_key(struct fw_cfg *fc, uint16_t key)
{
	fc->sel = key;
	fc->offset = 0;
}

static uint8_t read_byte(struct fw_cfg *fc)
{
	const struct item *it = selected(fc);

	if (!it || fc->offset >= it->len)
		return 0;
	return it->data[fc->offset++];
}

/* ---- DMA ------------------------------------------------------------------ */

static bool dma_transfer(struct fw_cfg *fc, uint32_t control, uint32_t len,
			 uint64_t addr)
{
	const struct item *it = selected(fc);

	if (control & FW_CFG_DMA_WRITE)
		return false;		/* every item is read-only */
	if (!(control & (FW_CFG_DMA_READ | FW_CFG_DMA_SKIP)))
		return true;
	while (len) {
		uint32_t n = len < DMA_CHUNK ? len : DMA_CHUNK;

		if (control & FW_CFG_DMA_READ) {
			uint8_t *dst = gpa_to_hva(fc->mem, addr, n);
			uint32_t avail = 0;

			if (!dst)
				return false;
			if (it && fc->offset < it->len)
				avail = it->len - fc->offset;
			if (avail > n)
				avail = n;
			if (avail)
				memcpy(dst, it->data + fc->offset, avail);
			memset(dst + avail, 0, n - avail);
			addr += n;
		}
		/* The offset keeps counting past the end (reads give 0). */
		fc->offset = fc->offset > UINT32_MAX - n ? UINT32_MAX : fc->offset + n;
		len -= n;
	}
	return true;
}

/* Run the FWCfgDmaAccess at @gpa: {be32 control, be32 length, be64 address}. */
static void dma_run(struct fw_cfg *fc, uint64_t gpa)
{
	uint8_t *d = gpa_to_hva(fc->mem, gpa, 16);
	uint32_t control, len;
	uint64_t addr;
	bool ok;

	if (!d) {
		vlog_ratelimited(LOG_WARN, "fw_cfg: DMA descriptor at 0x%llx is not in RAM",
				 (unsigned long long)gpa);
		return;
	}
	control = rd_be32(d);
	len = rd_be32(d + 4);
	addr = (uint64_t)rd_be32(d + 8) << 32 | rd_be32(d + 12);
	if (control & FW_CFG_DMA_SELECT)
		select_key(fc, (uint16_t)(control >> 16));
	ok = dma_transfer(fc, control, len, addr);
	if (!ok)
		vlog_ratelimited(LOG_WARN, "fw_cfg: DMA of %u bytes to 0x%llx failed (control 0x%x)",
				 len, (unsigned long long)addr, control);
	/* Completion: control becomes 0, or just the error bit. */
	be32(d, ok ? 0 : FW_CFG_DMA_ERROR);
}

/* ---- ports ----------------------------------------------------------------- */

static uint64_t fw_cfg_read(void *opaque, uint64_t offset, unsigned size)
{
	struct fw_cfg *fc = opaque;

	switch (offset) {
	case 0:			/* selector: write-only */
		return ~0ull;
	case 1:
		if (size == 1)
			return read_byte(fc);
		return ~0ull;
	case 4:			/* DMA address reads as the signature */
		if (size == 8)
			return __builtin_bswap64(DMA_SIGNATURE);
		if (size == 4)
			return __builtin_bswap32((uint32_t)(DMA_SIGNATURE >> 32));
		return ~0ull;
	case 8:
		if (size == 4)
			return __builtin_bswap32((uint32_t)DMA_SIGNATURE);
		return ~0ull;
	default:
		return ~0ull;
	}
}

static void fw_cfg_write(void *opaque, uint64_t offset, uint64_t value,
			 unsigned size)
{
	struct fw_cfg *fc = opaque;

	switch (offset) {
	case 0:
		if (size == 2)
			select_key(fc, (uint16_t)value);
		break;
	case 4:			/* big-endian: the high half first */
		if (size == 4) {
			fc->dma_hi = __builtin_bswap32((uint32_t)value);
		} else if (size == 8) {
			dma_run(fc, __builtin_bswap64(value));
		}
		break;
	case 8:
		if (size == 4) {
			dma_run(fc, (uint64_t)fc->dma_hi << 32 |
				    __builtin_bswap32((uint32_t)value));
			fc->dma_hi = 0;
		}
		break;
	default:
		break;		/* the data port is read-only */
	}
}

static const struct bus_ops fw_cfg_ops = {
	.name = "fw_cfg",
	.read = fw_cfg_read,
	.write = fw_cfg_write,
};

/* ---- setup ----------------------------------------------------------------- */

struct fw_cfg *fw_cfg_new(const struct guest_mem *mem)
{
	struct fw_cfg *fc = calloc(1, sizeof(*fc));
	uint32_t id = FEATURE_TRADITIONAL | FEATURE_DMA;

	if (!fc)
		return NULL;
	fc->mem = mem;
	if (fw_cfg_add_bytes(fc, FW_CFG_SIGNATURE, "QEMU", 4) < 0 ||
	    fw_cfg_add_bytes(fc, FW_CFG_ID, &id, 4) < 0) {
		fw_cfg_free(fc);
		return NULL;
	}
	return fc;
}

void fw_cfg_free(struct fw_cfg *fc)
{
	if (!fc)
		return;
	for (unsigned i = 0; i < FW_CFG_FILE_FIRST; i++)
		free(fc->key[i].data);
	for (unsigned i = 0; i < fc->nfiles; i++)
		free(fc->file[i].item.data);
	free(fc->dir.data);
	free(fc);
}

int fw_cfg_attach(struct fw_cfg *fc, struct bus *pio)
{
	/* 0x510 selector, 0x511 data, 0x514-0x51b DMA address. */
	return bus_register(pio, FW_CFG_PORT_SEL, 12, &fw_cfg_ops, fc);
}

int fw_cfg_add_bytes(struct fw_cfg *fc, uint16_t key, const void *data,
		     size_t len)
{
	if (key >= FW_CFG_FILE_FIRST || key == FW_CFG_FILE_DIR)
		return -EINVAL;
	return set_item(&fc->key[key], data, len);
}

int fw_cfg_add_u16(struct fw_cfg *fc, uint16_t key, uint16_t value)
{
	uint8_t b[2] = { (uint8_t)value, (uint8_t)(value >> 8) };

	return fw_cfg_add_bytes(fc, key, b, 2);
}

int fw_cfg_add_u32(struct fw_cfg *fc, uint16_t key, uint32_t value)
{
	uint8_t b[4];

	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(value >> (8 * i));
	return fw_cfg_add_bytes(fc, key, b, 4);
}

int fw_cfg_add_u64(struct fw_cfg *fc, uint16_t key, uint64_t value)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(value >> (8 * i));
	return fw_cfg_add_bytes(fc, key, b, 8);
}

int fw_cfg_add_file(struct fw_cfg *fc, const char *name, const void *data,
		    size_t len)
{
	struct file *f;
	int r;

	if (!name || !*name || strlen(name) >= FW_CFG_NAME_MAX || fc->sealed ||
	    fc->nfiles >= FW_CFG_MAX_FILES)
		return -EINVAL;
	for (unsigned i = 0; i < fc->nfiles; i++)
		if (!strcmp(fc->file[i].name, name))
			return -EEXIST;
	f = &fc->file[fc->nfiles];
	memset(f, 0, sizeof(*f));
	r = set_item(&f->item, data, len);
	if (r < 0)
		return r;
	strcpy(f->name, name);
	fc->nfiles++;
	return 0;
}

int fw_cfg_file_key(struct fw_cfg *fc, const char *name)
{
	seal(fc);
	for (unsigned i = 0; i < fc->nfiles; i++)
		if (!strcmp(fc->file[i].name, name))
			return FW_CFG_FILE_FIRST + (int)i;
	return -ENOENT;
}

/* ---- the machine's device table ---------------------------------------- */

static void fw_cfg_dev_free(void *dev)
{
	fw_cfg_free(dev);
}

/*
 * Reads at or past an item's end give zeroes and DMA moves the offset on
 * regardless, so an offset past the end behaves as one at the end, and
 * any offset into no item as 0: saved that way, so that the offset a
 * state carries is always within its item.
 */
static GVariant *fw_cfg_dev_save(void *dev)
{
	struct fw_cfg *fc = dev;
	const struct item *it = selected(fc);
	uint32_t len = it ? it->len : 0;
	uint32_t off = fc->offset < len ? fc->offset : len;

	return g_variant_new("(quubu)", fc->sel, off, fc->dma_hi, it != NULL,
			     len);
}

/* The items are rebuilt from the machine's configuration: the selected
 * one must be there (or absent) as when saved, with the same length. */
static int fw_cfg_dev_load(void *dev, uint32_t version, GVariant *state,
			   char *err, size_t errlen)
{
	struct fw_cfg *fc = dev;
	const struct item *it;
	guint16 sel;
	guint32 off, dma_hi, len;
	gboolean exists;
	int r;

	r = device_state_check("fw_cfg", version, 1, state, FW_CFG_STATE_TYPE, err, errlen);
	if (r < 0)
		return r;
	g_variant_get(state, "(quubu)", &sel, &off, &dma_hi, &exists, &len);
	it = selected_key(fc, sel);
	if (!it != !exists)
		return device_load_fail(err, errlen, "fw_cfg: selected item 0x%04x %s in this machine",
				 sel, it ? "exists, but did not" : "does not exist");
	if (it && it->len != len)
		return device_load_fail(err, errlen, "fw_cfg: item 0x%04x is %u bytes, saved with %u",
				 sel, it->len, len);
	if (off > len || (!it && len))
		return device_load_fail(err, errlen, "fw_cfg: offset %u past the end of item 0x%04x (%u bytes)",
				 off, sel, len);
	fc->sel = sel;
	fc->offset = off;
	fc->dma_hi = dma_hi;
	return 0;
}

const struct device_ops fw_cfg_device_ops = {
	.name = "fw_cfg",
	.save = fw_cfg_dev_save,
	.load = fw_cfg_dev_load,
	.state_version = 1,
	.free = fw_cfg_dev_free,
};
