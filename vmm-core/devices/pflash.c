/* SPDX-License-Identifier: MIT */
/*
 * CFI parallel flash, Intel/Sharp command set (see pflash.h).  The command
 * decoder is a small state machine; every guest write is one step of it,
 * so no sequence can loop or allocate.
 */
#include "pflash.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <glib.h>

#include "../bus.h"
#include "../log.h"

enum mode {
	M_ARRAY, M_STATUS, M_ID, M_QUERY, M_PROGRAM, M_ERASE,
	M_WBUF_COUNT, M_WBUF_DATA, M_WBUF_CONFIRM, M_LOCK, M_NMODES
};

#define SR_SEQ_ERR	(PFLASH_SR_ERASE_ERR | PFLASH_SR_PROG_ERR)

struct pflash {
	char name[32];
	uint64_t gpa, size;
	uint32_t block_size;
	bool readonly;
	int fd;
	uint8_t *mem;			/* page-aligned mmap of @map_len */
	size_t map_len;
	struct mem_slot slot;
	bool mapped;			/* slot mapped at gpa */
	struct bus *mmio;
	bool dirty;			/* pwrite()n since the last fdatasync */

	enum mode mode;
	uint8_t status;
	uint8_t wbuf_left;		/* buffer data bytes still expected */
	uint64_t wbuf_base;		/* window offset; UINT64_MAX: none yet */
	uint64_t wbuf_mask;		/* bit i: wbuf[i] written */
	uint8_t wbuf[PFLASH_WBUF_SIZE];
	uint8_t cfi[0x40];		/* query table, by byte offset */
};

static unsigned log2_ceil(uint64_t v)
{
	unsigned n = 0;

	while (n < 63 && (1ull << n) < v)
		n++;
	return n;
}

/* The CFI query structure (JESD68 / Intel's CFI application note): "QRY",
 * the primary command set 0x0001 with its "PRI" extended table at 0x31,
 * typical/maximum times, the device geometry (one erase region). */
static void build_cfi(struct pflash *f)
{
	uint8_t *t = f->cfi;
	uint64_t nblocks = f->size / f->block_size;

	memset(t, 0, sizeof(f->cfi));
	t[0x10] = 'Q'; t[0x11] = 'R'; t[0x12] = 'Y';
	t[0x13] = 0x01; t[0x14] = 0x00;		/* Intel/Sharp extended */
	t[0x15] = 0x31; t[0x16] = 0x00;		/* its table */
	t[0x1b] = 0x45; t[0x1c] = 0x55;		/* Vcc 4.5-5.5 V */
	t[0x1f] = 0x07;				/* byte program 2^7 us */
	t[0x20] = 0x07;				/* buffer write 2^7 us */
	t[0x21] = 0x0a;				/* block erase 2^10 ms */
	t[0x23] = 0x04; t[0x24] = 0x04; t[0x25] = 0x04;	/* max: x16 */
	t[0x27] = (uint8_t)log2_ceil(f->size);
	t[0x28] = 0x00; t[0x29] = 0x00;		/* x8 only */
	t[0x2a] = (uint8_t)log2_ceil(PFLASH_WBUF_SIZE);
	t[0x2c] = 1;				/* one erase block region */
	t[0x2d] = (uint8_t)(nblocks - 1);
	t[0x2e] = (uint8_t)((nblocks - 1) >> 8);
	t[0x2f] = (uint8_t)(f->block_size >> 8);
	t[0x30] = (uint8_t)(f->block_size >> 16);
	t[0x31] = 'P'; t[0x32] = 'R'; t[0x33] = 'I';
	t[0x34] = '1'; t[0x35] = '0';
}

/* Read-array mode is the memory slot; every other mode needs the reads to
 * exit.  A failed map only costs speed (reads then exit in array mode). */
static void set_mode(struct pflash *f, enum mode mode)
{
	bool want = mode == M_ARRAY && f->slot.ops && f->mmio;
	int r;

	f->mode = mode;
	if (want == f->mapped)
		return;
	if (want) {
		r = f->slot.ops->map_readonly(f->slot.opaque, f->gpa, f->size,
					      f->mem);
		f->mapped = r == 0;
		if (r < 0)
			vlog_ratelimited(LOG_WARN, "%s: cannot map the flash: %s",
					 f->name, strerror(-r));
	} else {
		r = f->slot.ops->unmap(f->slot.opaque, f->gpa);
		if (r < 0)	/* reads would see the array: say so, go on */
			vlog_ratelimited(LOG_WARN, "%s: cannot unmap the flash: %s",
					 f->name, strerror(-r));
		f->mapped = false;
	}
}

static void flush(struct pflash *f)
{
	if (f->dirty && f->fd >= 0 && fdatasync(f->fd) < 0)
		vlog_ratelimited(LOG_WARN, "%s: fdatasync: %s", f->name,
				 strerror(errno));
	f->dirty = false;
}

/* Write [off, off + len) of the contents back to the file.  false: the
 * file did not take it (the caller reports a program/erase error). */
static bool write_back(struct pflash *f, uint64_t off, size_t len)
{
	size_t done = 0;

	if (f->fd < 0)
		return true;
	while (done < len) {
		ssize_t n = pwrite(f->fd, f->mem + off + done, len - done,
				   (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			vlog_ratelimited(LOG_WARN, "%s: writing the variable store: %s",
					 f->name, n < 0 ? strerror(errno) : "short write");
			return false;
		}
		done += (size_t)n;
	}
	f->dirty = true;
	return true;
}

static void program(struct pflash *f, uint64_t off, uint64_t value,
		    unsigned size)
{
	if (f->readonly) {
		f->status |= PFLASH_SR_PROG_ERR | PFLASH_SR_PROTECT;
		vlog_ratelimited(LOG_WARN, "%s: program at 0x%llx of a read-only flash",
				 f->name, (unsigned long long)off);
		return;
	}
	for (unsigned i = 0; i < size; i++)	/* the bus keeps it in range */
		f->mem[off + i] &= (uint8_t)(value >> (8 * i));
	if (!write_back(f, off, size))
		f->status |= PFLASH_SR_PROG_ERR;
}

static void erase(struct pflash *f, uint64_t off)
{
	uint64_t start = off & ~(uint64_t)(f->block_size - 1);

	if (f->readonly) {
		f->status |= PFLASH_SR_ERASE_ERR | PFLASH_SR_PROTECT;
		vlog_ratelimited(LOG_WARN, "%s: erase at 0x%llx of a read-only flash",
				 f->name, (unsigned long long)off);
		return;
	}
	memset(f->mem + start, 0xff, f->block_size);
	if (!write_back(f, start, f->block_size))
		f->status |= PFLASH_SR_ERASE_ERR;
	flush(f);
}

static void wbuf_commit(struct pflash *f)
{
	uint64_t lo = PFLASH_WBUF_SIZE, hi = 0;

	if (f->readonly) {
		f->status |= PFLASH_SR_PROG_ERR | PFLASH_SR_PROTECT;
		return;
	}
	for (unsigned i = 0; i < PFLASH_WBUF_SIZE; i++) {
		if (!(f->wbuf_mask & (1ull << i)))
			continue;
		f->mem[f->wbuf_base + i] &= f->wbuf[i];
		lo = i < lo ? i : lo;
		hi = i + 1;
	}
	if (hi > lo && !write_back(f, f->wbuf_base + lo, hi - lo))
		f->status |= PFLASH_SR_PROG_ERR;
}

/* Reads outside read-array mode: status, ID or query data in every byte
 * lane (an x8 device answers each byte address alike). */
static uint8_t read_byte(struct pflash *f, uint64_t off)
{
	switch (f->mode) {
	case M_ARRAY:
		return f->mem[off];
	case M_ID:
		/* 0: manufacturer, 1: device, 2 of each block: lock status */
		switch (off & 0xff) {
		case 0: return PFLASH_MANUFACTURER;
		case 1: return PFLASH_DEVICE_ID;
		default: return 0;
		}
	case M_QUERY:
		return (off & 0xff) < sizeof(f->cfi) ? f->cfi[off & 0xff] : 0;
	default:
		return f->status;
	}
}

static uint64_t pflash_read(void *opaque, uint64_t off, unsigned size)
{
	struct pflash *f = opaque;
	uint64_t v = 0;

	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)read_byte(f, off + i) << (8 * i);
	return v;
}

/* A new command in a mode that takes one (array, status, ID, query). */
static void command(struct pflash *f, uint64_t off, uint8_t cmd)
{
	switch (cmd) {
	case 0xff:
		flush(f);	/* the end of a program batch */
		set_mode(f, M_ARRAY);
		break;
	case 0x70:
		set_mode(f, M_STATUS);
		break;
	case 0x50:
		f->status = 0;	/* read as 0x00 (OVMF's probe), see pflash.h */
		set_mode(f, M_STATUS);
		break;
	case 0x90:
		set_mode(f, M_ID);
		break;
	case 0x98:
		set_mode(f, M_QUERY);
		break;
	case 0x10:
	case 0x40:
		set_mode(f, M_PROGRAM);
		break;
	case 0x20:
		set_mode(f, M_ERASE);
		break;
	case 0xe8:
		f->wbuf_left = 0;
		f->wbuf_base = UINT64_MAX;
		f->wbuf_mask = 0;
		f->status |= PFLASH_SR_READY;	/* XSR: a buffer is free */
		set_mode(f, M_WBUF_COUNT);
		break;
	case 0x60:
		set_mode(f, M_LOCK);
		break;
	default:
		vlog_ratelimited(LOG_WARN, "%s: unknown command 0x%02x at 0x%llx",
				 f->name, cmd, (unsigned long long)off);
		f->status |= SR_SEQ_ERR;
		set_mode(f, M_STATUS);
		break;
	}
}

static void pflash_write(void *opaque, uint64_t off, uint64_t value,
			 unsigned size)
{
	struct pflash *f = opaque;
	uint8_t cmd = (uint8_t)value;

	switch (f->mode) {
	case M_PROGRAM:
		program(f, off, value, size);
		f->status |= PFLASH_SR_READY;
		set_mode(f, M_STATUS);
		break;
	case M_ERASE:
		if (cmd == 0xd0)
			erase(f, off);
		else
			f->status |= SR_SEQ_ERR;
		f->status |= PFLASH_SR_READY;
		set_mode(f, M_STATUS);
		break;
	case M_WBUF_COUNT:
		if (cmd >= PFLASH_WBUF_SIZE) {
			f->status |= SR_SEQ_ERR;
			set_mode(f, M_STATUS);
			break;
		}
		f->wbuf_left = (uint8_t)(cmd + 1);
		set_mode(f, M_WBUF_DATA);
		break;
	case M_WBUF_DATA: {
		uint64_t base = off & ~(uint64_t)(PFLASH_WBUF_SIZE - 1);

		if (f->wbuf_base == UINT64_MAX)
			f->wbuf_base = base;
		/* Every byte in the window the first one chose. */
		if (base != f->wbuf_base ||
		    ((off + size - 1) & ~(uint64_t)(PFLASH_WBUF_SIZE - 1)) != base ||
		    size > f->wbuf_left) {
			f->status |= SR_SEQ_ERR | PFLASH_SR_READY;
			set_mode(f, M_STATUS);
			break;
		}
		for (unsigned i = 0; i < size; i++) {
			f->wbuf[off - base + i] = (uint8_t)(value >> (8 * i));
			f->wbuf_mask |= 1ull << (off - base + i);
		}
		f->wbuf_left = (uint8_t)(f->wbuf_left - size);
		if (!f->wbuf_left)
			set_mode(f, M_WBUF_CONFIRM);
		break;
	}
	case M_WBUF_CONFIRM:
		if (cmd == 0xd0)
			wbuf_commit(f);
		else
			f->status |= SR_SEQ_ERR;
		f->status |= PFLASH_SR_READY;
		set_mode(f, M_STATUS);
		break;
	case M_LOCK:
		/* set (0x01), clear (0xd0), lock-down (0x2f): no locks here */
		if (cmd != 0x01 && cmd != 0xd0 && cmd != 0x2f)
			f->status |= SR_SEQ_ERR;
		f->status |= PFLASH_SR_READY;
		set_mode(f, M_STATUS);
		break;
	default:
		command(f, off, cmd);
		break;
	}
}

static const struct bus_ops pflash_bus_ops = {
	.name = "pflash",
	.read = pflash_read,
	.write = pflash_write,
};

struct pflash *pflash_new(const struct pflash_config *cfg, char *err,
			  size_t errlen)
{
	struct pflash *f;
	size_t done = 0;

	if (!cfg->size || cfg->block_size < 4096 ||
	    (cfg->block_size & (cfg->block_size - 1)) ||
	    cfg->size % cfg->block_size || cfg->size / cfg->block_size > 0x10000 ||
	    (cfg->gpa & 0xfff) || cfg->gpa + cfg->size < cfg->gpa ||
	    (cfg->fd < 0 && !cfg->image) || (cfg->slot.ops && !cfg->slot.ops->map_readonly)) {
		snprintf(err, errlen, "%s: %llu bytes in blocks of %u at 0x%llx is no flash geometry",
			 cfg->name, (unsigned long long)cfg->size, cfg->block_size,
			 (unsigned long long)cfg->gpa);
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		snprintf(err, errlen, "%s: out of memory", cfg->name);
		return NULL;
	}
	snprintf(f->name, sizeof(f->name), "%s", cfg->name);
	f->gpa = cfg->gpa;
	f->size = cfg->size;
	f->block_size = cfg->block_size;
	f->readonly = cfg->readonly;
	f->fd = cfg->fd;
	f->slot = cfg->slot;
	f->map_len = (cfg->size + 4095) & ~(size_t)4095;
	f->mem = mmap(NULL, f->map_len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (f->mem == MAP_FAILED) {
		free(f);
		snprintf(err, errlen, "%s: out of memory", cfg->name);
		return NULL;
	}
	if (cfg->fd < 0) {
		memcpy(f->mem, cfg->image, cfg->size);
		done = cfg->size;
	}
	while (done < cfg->size) {
		ssize_t n = pread(cfg->fd, f->mem + done, cfg->size - done,
				  (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "%s: reading the flash file: %s",
				 cfg->name, n < 0 ? strerror(errno) : "file too short");
			munmap(f->mem, f->map_len);
			free(f);
			return NULL;
		}
		done += (size_t)n;
	}
	f->status = PFLASH_SR_READY;
	f->mode = M_ARRAY;
	f->wbuf_base = UINT64_MAX;
	build_cfi(f);
	return f;
}

int pflash_attach(struct pflash *f, struct bus *mmio)
{
	int r = bus_register(mmio, f->gpa, f->size, &pflash_bus_ops, f);

	if (r < 0)
		return r;
	f->mmio = mmio;
	set_mode(f, f->mode);
	return 0;
}

void pflash_free(struct pflash *f)
{
	if (!f)
		return;
	flush(f);
	if (f->mapped)
		f->slot.ops->unmap(f->slot.opaque, f->gpa);
	if (f->mmio)
		bus_unregister(f->mmio, f->gpa);
	munmap(f->mem, f->map_len);
	free(f);
}

const uint8_t *pflash_data(const struct pflash *f)
{
	return f->mem;
}

uint8_t pflash_status(const struct pflash *f)
{
	return f->status;
}

bool pflash_romd(const struct pflash *f)
{
	return f->mode == M_ARRAY;
}

/* ---- the machine's device table ---------------------------------------- */

static void pflash_dev_reset(void *dev)
{
	struct pflash *f = dev;

	flush(f);
	f->status = PFLASH_SR_READY;
	f->wbuf_left = 0;
	f->wbuf_base = UINT64_MAX;
	f->wbuf_mask = 0;
	set_mode(f, M_ARRAY);
}

static void pflash_dev_quiesce(void *dev)
{
	flush(dev);	/* a saved state has the store on disk */
}

static GVariant *pflash_dev_save(void *dev)
{
	struct pflash *f = dev;

	return g_variant_new("(tyyytt@ay)", (guint64)f->size, (guint8)f->mode,
			     f->status, f->wbuf_left, (guint64)f->wbuf_base,
			     (guint64)f->wbuf_mask,
			     g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, f->wbuf,
						       sizeof(f->wbuf), 1));
}

static int pflash_dev_load(void *dev, uint32_t version, GVariant *state,
			   char *err, size_t errlen)
{
	struct pflash *f = dev;
	guint64 size, base, mask;
	guint8 mode, status, left;
	GVariant *buf;
	uint8_t wbuf[PFLASH_WBUF_SIZE];
	const uint8_t *bytes;
	gsize len;
	int r;

	r = device_state_check("pflash", version, 1, state, PFLASH_STATE_TYPE,
			       err, errlen);
	if (r < 0)
		return r;
	g_variant_get(state, "(tyyytt@ay)", &size, &mode, &status, &left,
		      &base, &mask, &buf);
	bytes = g_variant_get_fixed_array(buf, &len, 1);
	if (len != sizeof(f->wbuf)) {
		g_variant_unref(buf);
		return device_load_fail(err, errlen, "%s: %zu buffer bytes, not %zu",
					f->name, (size_t)len, sizeof(f->wbuf));
	}
	memcpy(wbuf, bytes, sizeof(wbuf));
	g_variant_unref(buf);
	if (size != f->size)
		return device_load_fail(err, errlen, "%s: saved for %llu bytes of flash, this one has %llu",
					f->name, (unsigned long long)size,
					(unsigned long long)f->size);
	if (mode >= M_NMODES)
		return device_load_fail(err, errlen, "%s: mode %u out of range",
					f->name, mode);
	if (left > PFLASH_WBUF_SIZE ||
	    (base != UINT64_MAX &&
	     (base % PFLASH_WBUF_SIZE || base + PFLASH_WBUF_SIZE > f->size)) ||
	    (mode == M_WBUF_DATA && !left) ||
	    ((mode == M_WBUF_CONFIRM || mask) && base == UINT64_MAX))
		return device_load_fail(err, errlen, "%s: write buffer (%u left at 0x%llx) inconsistent",
					f->name, left, (unsigned long long)base);
	f->status = status;
	f->wbuf_left = left;
	f->wbuf_base = base;
	f->wbuf_mask = mask;
	memcpy(f->wbuf, wbuf, sizeof(f->wbuf));
	set_mode(f, (enum mode)mode);
	return 0;
}

static void pflash_dev_free(void *dev)
{
	pflash_free(dev);
}

const struct device_ops pflash_device_ops = {
	.name = "pflash",
	.reset = pflash_dev_reset,
	.quiesce = pflash_dev_quiesce,
	.save = pflash_dev_save,
	.load = pflash_dev_load,
	.state_version = 1,
	.free = pflash_dev_free,
};
