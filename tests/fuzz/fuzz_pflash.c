/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_pflash.c - the CFI flash (vmm-core/devices/pflash.c)
 * under a hostile firmware: any command byte, data, offset and access size,
 * on a writable store backed by a file (a memfd) and on a read-only flash,
 * with save -> load round trips into a fresh device.
 *
 * Input: operations until it ends, each an opcode byte (modulo OP_COUNT)
 * and its arguments (bytes past the end read as 0):
 *   OP_WRITE  le16 offset, size, le32 value   any write
 *   OP_CMD    le16 offset, index              a known command byte
 *   OP_READ   le16 offset, size               any read
 *   OP_SAVE                                   save, load into a fresh device
 *   OP_RO     le16 offset, size, le32 value   a write to the read-only flash
 * Checked (abort on failure): the memory slot is mapped exactly in
 * read-array mode; contents change only by clearing bits or by a whole
 * block becoming 0xff; reads in read-array mode give the contents; the
 * file always equals the contents; the read-only flash never changes;
 * every save loads into a fresh device.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <glib.h>

#include "fuzz.h"
#include "fuzz_input.h"
#include "fuzzlib.h"

#include "bus.h"
#include "devices/pflash.h"
#include "log.h"

#define BASE	0xffc00000ull
#define RO_BASE	0xffe00000ull
#define BLOCK	0x1000u
#define SIZE	(4 * BLOCK)

enum { OP_WRITE, OP_CMD, OP_READ, OP_SAVE, OP_RO, OP_COUNT };

static const uint8_t cmds[] = { 0xff, 0x70, 0x50, 0x90, 0x98, 0x10, 0x40,
				0x20, 0xd0, 0xe8, 0x60, 0x01, 0x2f, 0x00 };

static struct bus *mmio;
static int fd = -1;
static uint8_t image[SIZE], model[SIZE], ro_image[SIZE];
static bool mapped[2];

const char fuzz_target[] = "fuzz_pflash";

static int slot_map(void *opaque, uint64_t gpa, uint64_t size, void *hva)
{
	bool *m = opaque;

	(void)gpa; (void)size; (void)hva;
	if (*m)
		fuzz_fail("mapped twice");
	*m = true;
	return 0;
}

static int slot_unmap(void *opaque, uint64_t gpa)
{
	bool *m = opaque;

	(void)gpa;
	if (!*m)
		fuzz_fail("unmapped while not mapped");
	*m = false;
	return 0;
}

static const struct mem_slot_ops slot_ops = {
	.map_readonly = slot_map, .unmap = slot_unmap,
};

static void init_once(void)
{
	if (mmio)
		return;
	log_set_level(LOG_ERROR);
	mmio = bus_new("mmio");
	fd = memfd_create("fuzz_pflash", 0);
	if (!mmio || fd < 0)
		fuzz_fail("cannot set up");
	for (unsigned i = 0; i < SIZE; i++) {
		image[i] = i >= 3 * BLOCK ? 0xff : (uint8_t)(i * 31 + 7);
		ro_image[i] = (uint8_t)(i * 13 + 1);
	}
}

static struct pflash *dev_new(bool ro)
{
	struct pflash_config cfg = {
		.name = ro ? "ro" : "rw", .gpa = ro ? RO_BASE : BASE,
		.size = SIZE, .block_size = BLOCK, .readonly = ro,
		.fd = ro ? -1 : fd, .image = ro ? ro_image : NULL,
		.slot = { .ops = &slot_ops, .opaque = &mapped[ro] },
	};
	char err[256];
	struct pflash *f = pflash_new(&cfg, err, sizeof(err));

	if (!f || pflash_attach(f, mmio) != 0)
		fuzz_fail("cannot build the device");
	return f;
}

static void check(struct pflash *f, bool ro)
{
	const uint8_t *d = pflash_data(f);

	if (mapped[ro] != pflash_romd(f))
		fuzz_fail("slot mapped outside read-array mode (or not in it)");
	if (ro) {
		if (memcmp(d, ro_image, SIZE))
			fuzz_fail("the read-only flash changed");
		return;
	}
	for (unsigned b = 0; b < SIZE / BLOCK; b++) {
		const uint8_t *now = d + b * BLOCK, *was = model + b * BLOCK;
		bool erased = true;

		for (unsigned i = 0; i < BLOCK && erased; i++)
			erased = now[i] == 0xff;
		if (erased)
			continue;
		for (unsigned i = 0; i < BLOCK; i++)
			if (now[i] & ~was[i])
				fuzz_fail("a program set bits");
	}
	memcpy(model, d, SIZE);
}

static void check_file(struct pflash *f)
{
	static uint8_t buf[SIZE];

	if (pread(fd, buf, SIZE, 0) != SIZE || memcmp(buf, pflash_data(f), SIZE))
		fuzz_fail("the file differs from the contents");
}

static struct pflash *save_load(struct pflash *f, bool ro)
{
	const struct device_ops *ops = &pflash_device_ops;
	GVariant *s = fuzz_save(ops, f, "save failed");

	pflash_free(f);
	f = dev_new(ro);
	fuzz_load(ops, f, s);
	g_variant_unref(s);
	return f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned sizes[4] = { 1, 2, 4, 8 };
	struct in in = { data, size, 0 };
	struct pflash *f, *ro;

	init_once();
	if (pwrite(fd, image, SIZE, 0) != SIZE || ftruncate(fd, SIZE) != 0)
		fuzz_fail("cannot reset the file");
	memcpy(model, image, SIZE);
	f = dev_new(false);
	ro = dev_new(true);
	while (in_more(&in)) {
		uint8_t op = in_u8(&in) % OP_COUNT;
		uint16_t off = in_u16(&in);
		unsigned sz;
		uint32_t v;

		switch (op) {
		case OP_WRITE:
			sz = sizes[in_u8(&in) % 4];
			v = in_u32(&in);
			bus_write(mmio, BASE + off % SIZE, (uint64_t)v << 32 | v, sz, NULL);
			break;
		case OP_CMD:
			bus_write(mmio, BASE + off % SIZE,
				  cmds[in_u8(&in) % sizeof(cmds)], 1, NULL);
			break;
		case OP_READ: {
			bool array = pflash_romd(f);
			uint64_t got;

			sz = sizes[in_u8(&in) % 4];
			off %= SIZE;
			got = bus_read(mmio, BASE + off, sz, NULL);
			if (array && off + sz <= SIZE) {
				uint64_t want = 0;

				memcpy(&want, pflash_data(f) + off, sz);
				if (got != want)
					fuzz_fail("a read-array read gave other bytes");
			}
			break;
		}
		case OP_SAVE:
			f = save_load(f, false);
			ro = save_load(ro, true);
			break;
		case OP_RO:
			sz = sizes[in_u8(&in) % 4];
			v = in_u32(&in);
			bus_write(mmio, RO_BASE + off % SIZE, v, sz, NULL);
			break;
		}
		check(f, false);
		check(ro, true);
	}
	check_file(f);
	f = save_load(f, false);
	check_file(f);
	pflash_free(f);
	pflash_free(ro);
	return 0;
}

/* ---- seeds: what OVMF does, then hostile sequences ----------------------- */

static void s_cmd(struct seed *s, uint16_t off, uint8_t cmd)
{
	unsigned i = 0;

	while (cmds[i] != cmd)
		i++;
	put8(s, OP_CMD);
	put16(s, off);
	put8(s, (uint8_t)i);
}

static void s_write(struct seed *s, uint16_t off, uint8_t size_ix, uint32_t v)
{
	put8(s, OP_WRITE);
	put16(s, off);
	put8(s, size_ix);
	put32(s, v);
}

void fuzz_make_seeds(void (*add)(const void *, size_t))
{
	static struct seed s;

	/* OVMF: probe, erase a block, program bytes, read back, save. */
	s.n = 0;
	s_cmd(&s, 0x10, 0x50);
	put8(&s, OP_READ); put16(&s, 0x10); put8(&s, 0);
	s_cmd(&s, 0x10, 0x70);
	put8(&s, OP_READ); put16(&s, 0x10); put8(&s, 0);
	s_cmd(&s, 0x10, 0xff);
	s_cmd(&s, BLOCK, 0x20);
	s_cmd(&s, BLOCK, 0xd0);
	for (uint16_t i = 0; i < 8; i++) {
		s_cmd(&s, BLOCK + i, 0x10);
		s_write(&s, BLOCK + i, 0, 0x5a + i);
	}
	s_cmd(&s, BLOCK + 7, 0xff);
	put8(&s, OP_READ); put16(&s, BLOCK); put8(&s, 3);
	put8(&s, OP_SAVE);
	add(s.b, s.n);

	/* Query, ID, write to buffer, then a save mid-buffer. */
	s.n = 0;
	s_cmd(&s, 0, 0x98);
	put8(&s, OP_READ); put16(&s, 0x10); put8(&s, 2);
	s_cmd(&s, 0, 0x90);
	put8(&s, OP_READ); put16(&s, 0); put8(&s, 1);
	s_cmd(&s, 3 * BLOCK, 0xe8);
	s_write(&s, 3 * BLOCK, 0, 7);
	s_write(&s, 3 * BLOCK + 0x20, 2, 0x11223344);
	put8(&s, OP_SAVE);
	s_write(&s, 3 * BLOCK + 0x24, 2, 0x55667788);
	s_cmd(&s, 3 * BLOCK, 0xd0);
	s_cmd(&s, 0, 0xff);
	add(s.b, s.n);

	/* Hostile: bad confirms, a huge buffer count, the read-only flash. */
	s.n = 0;
	s_cmd(&s, 0, 0x20);
	s_cmd(&s, 0, 0x00);
	s_cmd(&s, 0, 0xe8);
	s_write(&s, 0, 0, 0xff);
	s_cmd(&s, 0, 0x60);
	s_cmd(&s, 0, 0x2f);
	put8(&s, OP_RO); put16(&s, 0); put8(&s, 0); put32(&s, 0x10);
	put8(&s, OP_RO); put16(&s, 0); put8(&s, 0); put32(&s, 0x00);
	put8(&s, OP_RO); put16(&s, 0); put8(&s, 0); put32(&s, 0x20);
	put8(&s, OP_RO); put16(&s, 0); put8(&s, 0); put32(&s, 0xd0);
	put8(&s, OP_SAVE);
	add(s.b, s.n);
}
