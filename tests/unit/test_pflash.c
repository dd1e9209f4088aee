/* SPDX-License-Identifier: MIT */
/*
 * The CFI flash (devices/pflash.h): OVMF's probe, program, erase, write to
 * buffer, status and query, hostile sequences, the read-only memory slot
 * switching, the write-back to the store's file, and save/load.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#include "bus.h"
#include "check.h"
#include "devices/pflash.h"
#include "statetest.h"

#define BASE	0xffc00000ull
#define BLOCK	0x1000u
#define SIZE	(16 * BLOCK)

static struct bus *mmio;
static int fd = -1;

/* The fake slot: records what the device maps. */
static struct {
	bool mapped;
	uint64_t gpa, size;
	void *hva;
	unsigned maps, unmaps;
} fs;

static int fs_map_ro(void *opaque, uint64_t gpa, uint64_t size, void *hva)
{
	(void)opaque;
	CHECK(!fs.mapped);
	fs.mapped = true;
	fs.gpa = gpa;
	fs.size = size;
	fs.hva = hva;
	fs.maps++;
	return 0;
}

static int fs_unmap(void *opaque, uint64_t gpa)
{
	(void)opaque;
	CHECK(fs.mapped);
	CHECK_EQ(gpa, fs.gpa);
	fs.mapped = false;
	fs.unmaps++;
	return 0;
}

static const struct mem_slot_ops fake_slot_ops = {
	.map_readonly = fs_map_ro, .unmap = fs_unmap,
};

/* A fresh store file: block i filled with byte i (block 15: erased). */
static void make_file(void)
{
	uint8_t buf[SIZE];
	char path[] = "/tmp/test_pflash.XXXXXX";

	for (unsigned i = 0; i < SIZE; i++)
		buf[i] = i / BLOCK == 15 ? 0xff : (uint8_t)(i / BLOCK);
	if (fd >= 0)
		close(fd);
	fd = mkstemp(path);
	CHECK(fd >= 0);
	unlink(path);
	CHECK_EQ(pwrite(fd, buf, SIZE, 0), SIZE);
}

static struct pflash *new_flash(bool readonly, bool with_slot)
{
	struct pflash_config cfg = {
		.name = "pflash.test", .gpa = BASE, .size = SIZE,
		.block_size = BLOCK, .readonly = readonly, .fd = fd,
	};
	char err[256] = "";
	struct pflash *f;

	if (with_slot)
		cfg.slot = (struct mem_slot){ .ops = &fake_slot_ops };
	memset(&fs, 0, sizeof(fs));
	f = pflash_new(&cfg, err, sizeof(err));
	CHECK(f != NULL);
	if (!f) {
		fprintf(stderr, "  %s\n", err);
		exit(1);
	}
	CHECK_EQ(pflash_attach(f, mmio), 0);
	return f;
}

static uint8_t rd(uint64_t off)
{
	return (uint8_t)bus_read(mmio, BASE + off, 1, NULL);
}

static void wr(uint64_t off, uint8_t v)
{
	bus_write(mmio, BASE + off, v, 1, NULL);
}

static uint8_t file_byte(uint64_t off)
{
	uint8_t b = 0;

	CHECK_EQ(pread(fd, &b, 1, (off_t)off), 1);
	return b;
}

static void test_geometry_refused(void)
{
	uint8_t img[8192] = { 0 };
	struct pflash_config cfg = {
		.name = "bad", .gpa = BASE, .size = 8192, .block_size = 4096,
		.fd = -1, .image = img,
	};
	char err[256];
	struct pflash *f;

	cfg.block_size = 3000;			/* not a power of two */
	CHECK(pflash_new(&cfg, err, sizeof(err)) == NULL);
	cfg.block_size = 4096;
	cfg.size = 6000;			/* not whole blocks */
	CHECK(pflash_new(&cfg, err, sizeof(err)) == NULL);
	cfg.size = 8192;
	cfg.gpa = BASE + 1;			/* unaligned */
	CHECK(pflash_new(&cfg, err, sizeof(err)) == NULL);
	cfg.gpa = 0xfffffffffffff000ull;	/* wraps */
	CHECK(pflash_new(&cfg, err, sizeof(err)) == NULL);
	cfg.gpa = BASE;
	cfg.image = NULL;			/* no contents */
	CHECK(pflash_new(&cfg, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "no flash geometry") != NULL);
	/* A file shorter than the flash. */
	make_file();
	CHECK_EQ(ftruncate(fd, SIZE / 2), 0);
	cfg.fd = fd;
	cfg.size = SIZE;
	CHECK(pflash_new(&cfg, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "too short") != NULL);
	/* An image flash holds a copy of it. */
	cfg.fd = -1;
	cfg.size = 8192;
	cfg.image = img;
	img[5] = 0x5a;
	f = pflash_new(&cfg, err, sizeof(err));
	CHECK(f != NULL);
	img[5] = 0;
	CHECK_EQ(pflash_data(f)[5], 0x5a);
	pflash_free(f);
}

/* OVMF's QemuFlashDetected(): 0x50 then a read must give 0x00 (not 0x50:
 * RAM), 0x70 then a read 0x00 (not the array byte: ROM), 0xff back. */
static void test_ovmf_probe(void)
{
	struct pflash *f;
	uint8_t orig;

	make_file();
	f = new_flash(false, true);
	CHECK(fs.mapped);
	CHECK_EQ(fs.gpa, BASE);
	CHECK_EQ(fs.size, SIZE);
	CHECK(fs.hva == pflash_data(f));
	orig = rd(BLOCK + 7);
	CHECK_EQ(orig, 1);
	wr(BLOCK + 7, 0x50);
	CHECK(!fs.mapped);		/* reads exit now */
	CHECK(!pflash_romd(f));
	CHECK_EQ(rd(BLOCK + 7), 0x00);
	wr(BLOCK + 7, 0x70);
	CHECK_EQ(rd(BLOCK + 7), 0x00);
	wr(BLOCK + 7, 0xff);
	CHECK(fs.mapped);
	CHECK(pflash_romd(f));
	CHECK_EQ(rd(BLOCK + 7), orig);
	CHECK_EQ(file_byte(BLOCK + 7), orig);	/* probing wrote nothing */
	pflash_free(f);
	CHECK(!fs.mapped);
}

static void test_query_and_id(void)
{
	struct pflash *f;

	make_file();
	f = new_flash(false, false);
	wr(0x55, 0x98);
	CHECK_EQ(rd(0x10), 'Q');
	CHECK_EQ(rd(0x11), 'R');
	CHECK_EQ(rd(0x12), 'Y');
	CHECK_EQ(rd(0x13), 0x01);		/* Intel/Sharp command set */
	CHECK_EQ(rd(0x27), 16);			/* 2^16 bytes */
	CHECK_EQ(rd(0x2c), 1);
	CHECK_EQ(rd(0x2d) | rd(0x2e) << 8, 15);	/* 16 blocks */
	CHECK_EQ((rd(0x2f) | rd(0x30) << 8) * 256u, BLOCK);
	CHECK_EQ(rd(0x31), 'P');
	/* Any block answers by the low address bits; a wide read too. */
	CHECK_EQ(rd(5 * BLOCK + 0x10), 'Q');
	CHECK_EQ(bus_read(mmio, BASE + 0x10, 4, NULL), 0x01595251);
	CHECK_EQ(rd(0x80), 0);			/* past the table */
	wr(0, 0x90);
	CHECK_EQ(rd(0), PFLASH_MANUFACTURER);
	CHECK_EQ(rd(1), PFLASH_DEVICE_ID);
	CHECK_EQ(rd(BLOCK + 2), 0);		/* not locked */
	wr(0, 0xff);
	CHECK_EQ(rd(0x10), 0);			/* the array again */
	pflash_free(f);
}

static void test_program(void)
{
	struct pflash *f;

	make_file();
	f = new_flash(false, true);
	/* OVMF's QemuFlashWrite: 0x10, data per byte, then 0xff. */
	wr(15 * BLOCK + 3, 0x10);
	wr(15 * BLOCK + 3, 0xa5);
	CHECK(!fs.mapped);
	CHECK_EQ(rd(15 * BLOCK + 3), PFLASH_SR_READY);	/* status mode */
	wr(15 * BLOCK + 4, 0x40);
	wr(15 * BLOCK + 4, 0x3c);
	/* Written back as it happens, before the batch ends. */
	CHECK_EQ(file_byte(15 * BLOCK + 3), 0xa5);
	CHECK_EQ(file_byte(15 * BLOCK + 4), 0x3c);
	wr(15 * BLOCK + 4, 0xff);
	CHECK(fs.mapped);
	CHECK_EQ(rd(15 * BLOCK + 3), 0xa5);
	CHECK_EQ(rd(15 * BLOCK + 4), 0x3c);
	/* Programming only clears bits. */
	wr(15 * BLOCK + 3, 0x10);
	wr(15 * BLOCK + 3, 0x5a);
	wr(0, 0xff);
	CHECK_EQ(rd(15 * BLOCK + 3), 0xa5 & 0x5a);
	CHECK_EQ(file_byte(15 * BLOCK + 3), 0xa5 & 0x5a);
	/* A 4-byte program writes 4 bytes. */
	wr(15 * BLOCK + 8, 0x10);
	bus_write(mmio, BASE + 15 * BLOCK + 8, 0x11223344, 4, NULL);
	wr(0, 0xff);
	CHECK_EQ(bus_read(mmio, BASE + 15 * BLOCK + 8, 4, NULL), 0x11223344);
	CHECK_EQ(file_byte(15 * BLOCK + 11), 0x11);
	CHECK_EQ(pflash_status(f) & 0x7f, 0);	/* no error bits */
	pflash_free(f);

	/* The next boot reads what the last one wrote. */
	f = new_flash(false, true);
	CHECK_EQ(rd(15 * BLOCK + 4), 0x3c);
	CHECK_EQ(rd(15 * BLOCK + 8), 0x44);
	pflash_free(f);
}

static void test_erase(void)
{
	struct pflash *f;

	make_file();
	f = new_flash(false, true);
	wr(3 * BLOCK + 0x123, 0x20);
	wr(3 * BLOCK + 0x123, 0xd0);
	CHECK_EQ(rd(3 * BLOCK), PFLASH_SR_READY);
	wr(0, 0xff);
	for (unsigned i = 0; i < BLOCK; i += 511)
		CHECK_EQ(rd(3 * BLOCK + i), 0xff);
	CHECK_EQ(rd(3 * BLOCK - 1), 2);		/* neighbours kept */
	CHECK_EQ(rd(4 * BLOCK), 4);
	CHECK_EQ(file_byte(3 * BLOCK), 0xff);
	CHECK_EQ(file_byte(3 * BLOCK + BLOCK - 1), 0xff);
	CHECK_EQ(file_byte(4 * BLOCK), 4);
	/* Setup without confirm: a sequence error, nothing erased. */
	wr(5 * BLOCK, 0x20);
	wr(5 * BLOCK, 0x77);
	CHECK_EQ(rd(5 * BLOCK) & 0x30, 0x30);
	wr(0, 0x50);				/* clear status */
	CHECK_EQ(rd(0), 0);
	wr(0, 0xff);
	CHECK_EQ(rd(5 * BLOCK), 5);
	CHECK_EQ(file_byte(5 * BLOCK), 5);
	pflash_free(f);
}

static void test_write_buffer(void)
{
	struct pflash *f;

	make_file();
	f = new_flash(false, false);
	wr(15 * BLOCK, 0xe8);
	CHECK(rd(15 * BLOCK) & PFLASH_SR_READY);	/* a buffer is free */
	wr(15 * BLOCK, 3);				/* 4 bytes */
	wr(15 * BLOCK + 0x42, 0xaa);
	wr(15 * BLOCK + 0x40, 0xbb);
	bus_write(mmio, BASE + 15 * BLOCK + 0x44, 0x1234, 2, NULL);
	CHECK_EQ(file_byte(15 * BLOCK + 0x42), 0xff);	/* not before confirm */
	wr(15 * BLOCK, 0xd0);
	wr(0, 0xff);
	CHECK_EQ(rd(15 * BLOCK + 0x40), 0xbb);
	CHECK_EQ(rd(15 * BLOCK + 0x41), 0xff);
	CHECK_EQ(rd(15 * BLOCK + 0x42), 0xaa);
	CHECK_EQ(rd(15 * BLOCK + 0x44), 0x34);
	CHECK_EQ(rd(15 * BLOCK + 0x45), 0x12);
	CHECK_EQ(file_byte(15 * BLOCK + 0x42), 0xaa);
	CHECK_EQ(file_byte(15 * BLOCK + 0x45), 0x12);
	/* Count too large; data outside the window; too many bytes at once;
	 * no confirm: each a sequence error that programs nothing. */
	wr(0, 0xe8);
	wr(0, 200);
	CHECK_EQ(rd(0) & 0x30, 0x30);
	wr(0, 0x50);
	wr(0, 0xe8);
	wr(0, 1);
	wr(15 * BLOCK + 0x80, 0x00);
	wr(15 * BLOCK + 0xc0, 0x00);
	CHECK_EQ(rd(0) & 0x30, 0x30);
	wr(0, 0x50);
	wr(0, 0xe8);
	wr(0, 0);
	bus_write(mmio, BASE + 15 * BLOCK + 0x80, 0, 4, NULL);
	CHECK_EQ(rd(0) & 0x30, 0x30);
	wr(0, 0x50);
	wr(0, 0xe8);
	wr(0, 0);
	wr(15 * BLOCK + 0x90, 0x00);
	wr(0, 0x20);				/* not 0xd0 */
	CHECK_EQ(rd(0) & 0x30, 0x30);
	wr(0, 0xff);
	CHECK_EQ(rd(15 * BLOCK + 0x80), 0xff);
	CHECK_EQ(rd(15 * BLOCK + 0x90), 0xff);
	CHECK_EQ(rd(15 * BLOCK + 0xc0), 0xff);
	pflash_free(f);
}

static void test_readonly(void)
{
	struct pflash *f;

	make_file();
	f = new_flash(true, true);
	wr(BLOCK, 0x10);
	wr(BLOCK, 0x00);
	CHECK_EQ(rd(BLOCK), PFLASH_SR_READY | PFLASH_SR_PROG_ERR | PFLASH_SR_PROTECT);
	wr(0, 0x50);
	wr(BLOCK, 0x20);
	wr(BLOCK, 0xd0);
	CHECK_EQ(rd(BLOCK), PFLASH_SR_READY | PFLASH_SR_ERASE_ERR | PFLASH_SR_PROTECT);
	wr(0, 0xff);
	CHECK_EQ(rd(BLOCK), 1);
	CHECK_EQ(file_byte(BLOCK), 1);
	/* The lock commands are accepted and lock nothing. */
	wr(0, 0x60);
	wr(0, 0xd0);
	wr(0, 0x60);
	wr(0, 0x99);
	CHECK_EQ(rd(0) & 0x30, 0x30);
	pflash_free(f);
}

/* Hostile sequences: random commands, data, offsets and sizes.  Every step
 * is bounded; afterwards clear status + read array bring the array back. */
static void test_hostile(void)
{
	static const uint8_t cmds[] = { 0x10, 0x20, 0x40, 0x50, 0x60, 0x70,
					0x90, 0x98, 0xd0, 0xe8, 0xff, 0x01,
					0x2f, 0x00, 0x3f, 0xfe };
	struct pflash *f;
	unsigned seed = 12345;

	make_file();
	f = new_flash(false, true);
	for (unsigned i = 0; i < 200000; i++) {
		unsigned r = rand_r(&seed);
		unsigned size = 1u << (r & 3);
		uint64_t off = (uint64_t)rand_r(&seed) % SIZE;
		uint64_t v = (r >> 4) & 1 ? cmds[(r >> 5) % sizeof(cmds)]
					  : (uint64_t)rand_r(&seed) << 32 | (unsigned)rand_r(&seed);

		if ((r >> 12) & 1)
			(void)bus_read(mmio, BASE + off, size, NULL);
		else
			bus_write(mmio, BASE + off, v, size, NULL);
		/* The slot is mapped exactly in read-array mode. */
		if (fs.mapped != pflash_romd(f)) {
			CHECK(fs.mapped == pflash_romd(f));
			break;
		}
	}
	/* Accesses past the end never reach the device. */
	bus_write(mmio, BASE + SIZE - 2, 0xffffffff, 4, NULL);
	wr(0, 0x50);
	wr(0, 0xff);
	CHECK(pflash_romd(f));
	CHECK(fs.mapped);
	/* The file and memory agree after all that. */
	for (unsigned i = 0; i < SIZE; i += 97)
		if (file_byte(i) != pflash_data(f)[i]) {
			CHECK_EQ(file_byte(i), pflash_data(f)[i]);
			break;
		}
	pflash_free(f);
}

static void test_save_load(void)
{
	struct pflash *f, *g;
	GVariant *s, *s2;
	char err[256];

	make_file();
	f = new_flash(false, false);
	/* Mid write-to-buffer: 2 of 4 bytes in. */
	wr(15 * BLOCK, 0xe8);
	wr(15 * BLOCK, 3);
	wr(15 * BLOCK + 0x10, 0x12);
	wr(15 * BLOCK + 0x11, 0x34);
	s = g_variant_ref_sink(pflash_device_ops.save(f));
	CHECK(g_variant_is_of_type(s, G_VARIANT_TYPE(PFLASH_STATE_TYPE)));

	pflash_free(f);
	g = new_flash(false, true);
	CHECK(fs.mapped);
	CHECK_EQ(pflash_device_ops.load(g, 1, s, err, sizeof(err)), 0);
	CHECK(!fs.mapped);		/* buffer mode: reads exit */
	s2 = g_variant_ref_sink(pflash_device_ops.save(g));
	CHECK(g_variant_equal(s, s2));
	g_variant_unref(s2);
	/* The sequence goes on where it was. */
	wr(15 * BLOCK + 0x12, 0x56);
	wr(15 * BLOCK + 0x13, 0x78);
	wr(15 * BLOCK, 0xd0);
	wr(0, 0xff);
	CHECK(fs.mapped);
	CHECK_EQ(bus_read(mmio, BASE + 15 * BLOCK + 0x10, 4, NULL), 0x78563412);

	/* Refusals leave the device as it was. */
	state_refused(&pflash_device_ops, g, 1,
		      state_with(s, g_variant_new_uint64(SIZE * 2), 1, 0),
		      "pflash.test: saved for");
	state_refused(&pflash_device_ops, g, 1,
		      state_with(s, g_variant_new_byte(10), 1, 1),
		      "pflash.test: mode 10 out of range");
	state_refused(&pflash_device_ops, g, 1,
		      state_with(s, g_variant_new_byte(65), 1, 3),
		      "pflash.test: write buffer");
	state_refused(&pflash_device_ops, g, 1,
		      state_with(s, g_variant_new_uint64(SIZE), 1, 4),
		      "pflash.test: write buffer");
	state_refused(&pflash_device_ops, g, 1,
		      state_with(s, g_variant_new_uint64(3), 1, 4),
		      "pflash.test: write buffer");
	state_refused(&pflash_device_ops, g, 1,
		      state_with(s, g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, "ab", 2, 1), 1, 6),
		      "pflash.test: 2 buffer bytes");
	state_refused(&pflash_device_ops, g, 2, g_variant_ref(s),
		      "pflash: state version 2");
	g_variant_unref(s);

	/* Reset: read array, status ready. */
	wr(0, 0x90);
	pflash_device_ops.reset(g);
	CHECK(pflash_romd(g));
	CHECK(fs.mapped);
	CHECK_EQ(pflash_status(g), PFLASH_SR_READY);
	pflash_free(g);
}

int main(void)
{
	mmio = bus_new("mmio");
	RUN_TEST(test_geometry_refused);
	RUN_TEST(test_ovmf_probe);
	RUN_TEST(test_query_and_id);
	RUN_TEST(test_program);
	RUN_TEST(test_erase);
	RUN_TEST(test_write_buffer);
	RUN_TEST(test_readonly);
	RUN_TEST(test_hostile);
	RUN_TEST(test_save_load);
	bus_free(mmio);
	if (fd >= 0)
		close(fd);
	return check_finish();
}
