/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_ramfile.c - guest memory files (vmm-core/snapshot/ramfile.h):
 * a save is sparse (zero pages are holes), a map gives the same bytes back
 * lazily and privately (writes never reach the file), and a file for other
 * memory, a corrupt header or a truncated file is refused before anything
 * is mapped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "snapshot/ramfile.h"

#define PG RAMFILE_PAGE

static uint8_t *anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static char dir[] = "/tmp/vivarium-ramfile.XXXXXX";

static void path_of(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

static void test_save_and_map(void)
{
	size_t ram_len = 64 * PG, vram_len = 16 * PG;
	uint8_t *ram = anon(ram_len), *vram = anon(vram_len);
	uint8_t *ram2 = anon(ram_len), *vram2 = anon(vram_len);
	struct ramfile_block b[2] = { { "ram.0", ram, ram_len }, { "vram", vram, vram_len } };
	struct ramfile_block b2[2] = { { "ram.0", ram2, ram_len }, { "vram", vram2, vram_len } };
	struct ramfile_stats st = { 0 };
	char path[128], err[256];
	struct stat sb;
	int fd;

	/* A few touched pages, among them the first and the last. */
	ram[0] = 1;
	memset(ram + 5 * PG, 0xab, 3 * PG);
	ram[ram_len - 1] = 0x77;
	vram[7 * PG + 100] = 0x55;
	memset(ram2, 0xee, ram_len);	/* the map replaces whatever was there */
	path_of(path, sizeof(path), "m.ram");
	CHECK_EQ(ramfile_save(path, b, 2, &st, err, sizeof(err)), 0);
	CHECK_EQ(st.bytes, ram_len + vram_len);
	CHECK_EQ(st.data_bytes, 6 * PG);
	CHECK(stat(path, &sb) == 0);
	CHECK_EQ(sb.st_size, PG + ram_len + vram_len);
	CHECK_EQ(sb.st_mode & 0777, 0600);
	/* Sparse: about the header and six pages on disk. */
	CHECK((uint64_t)sb.st_blocks * 512 <= 16 * PG);
	CHECK_EQ(ramfile_map(path, b2, 2, err, sizeof(err)), 0);
	CHECK(memcmp(ram, ram2, ram_len) == 0);
	CHECK(memcmp(vram, vram2, vram_len) == 0);
	/* Private: the guest's writes stay in memory, the file is unchanged. */
	ram2[5 * PG] = 0;
	fd = open(path, O_RDONLY);
	{
		uint8_t byte = 0;

		CHECK(pread(fd, &byte, 1, PG + 5 * PG) == 1 && byte == 0xab);
	}
	close(fd);
	/* A second map of the same file sees the file, not the write. */
	CHECK_EQ(ramfile_map(path, b2, 2, err, sizeof(err)), 0);
	CHECK_EQ(ram2[5 * PG], 0xab);
	munmap(ram, ram_len);
	munmap(vram, vram_len);
	munmap(ram2, ram_len);
	munmap(vram2, vram_len);
}

/* The copy-on-write writer saves memory as it was at the call: writes
 * right after it returns do not reach the file. */
static void test_cow(void)
{
	size_t len = 256 * PG;
	uint8_t *m = anon(len), *back = anon(len), *want = malloc(len);
	struct ramfile_block b = { "ram.0", m, len }, b2 = { "ram.0", back, len };
	struct ramfile_writer w;
	struct ramfile_stats st = { 0 };
	char path[128], err[256];

	for (size_t i = 0; i < len; i += PG)
		memset(m + i, (int)(i / PG) | 1, PG / 2);	/* half of each page */
	memcpy(want, m, len);
	path_of(path, sizeof(path), "cow.ram");
	CHECK_EQ(ramfile_write_cow(path, &b, 1, &w, &st, err, sizeof(err)), 0);
	/* The "guest" runs on at once. */
	memset(m, 0x5a, len);
	CHECK(access(path, F_OK) != 0);		/* no name before the commit */
	CHECK_EQ(ramfile_commit(&w, err, sizeof(err)), 0);
	CHECK_EQ(st.data_bytes, len);
	CHECK_EQ(ramfile_map(path, &b2, 1, err, sizeof(err)), 0);
	CHECK(memcmp(back, want, len) == 0);
	CHECK_EQ(m[0], 0x5a);
	/* Abort: nothing left. */
	path_of(path, sizeof(path), "cow2.ram");
	CHECK_EQ(ramfile_write_cow(path, &b, 1, &w, NULL, err, sizeof(err)), 0);
	ramfile_abort(&w);
	CHECK(access(path, F_OK) != 0);
	munmap(m, len);
	munmap(back, len);
	free(want);
}

static void test_refusals(void)
{
	size_t len = 8 * PG;
	uint8_t *m = anon(len), *other = anon(2 * len);
	struct ramfile_block b = { "ram.0", m, len };
	struct ramfile_block wrong_size = { "ram.0", other, 2 * len };
	struct ramfile_block wrong_id = { "ram.1", other, len };
	struct ramfile_block bad = { "RAM", m, len };
	char path[128], err[256];
	uint8_t byte;
	int fd;

	memset(m, 3, len);
	path_of(path, sizeof(path), "r.ram");
	CHECK_EQ(ramfile_save(path, &b, 1, NULL, err, sizeof(err)), 0);
	memset(other, 9, 2 * len);
	CHECK_EQ(ramfile_map(path, &wrong_size, 1, err, sizeof(err)), -ESTALE);
	CHECK_EQ(ramfile_map(path, &wrong_id, 1, err, sizeof(err)), -ESTALE);
	CHECK(strstr(err, "other memory") != NULL);
	CHECK_EQ(other[0], 9);		/* nothing mapped */
	CHECK_EQ(ramfile_save(path, &bad, 1, NULL, err, sizeof(err)), -EINVAL);
	/* A flipped header byte. */
	fd = open(path, O_RDWR);
	CHECK(pread(fd, &byte, 1, 20) == 1);
	byte ^= 1;
	CHECK(pwrite(fd, &byte, 1, 20) == 1);
	CHECK_EQ(ramfile_map(path, &b, 1, err, sizeof(err)), -EBADMSG);
	byte ^= 1;
	CHECK(pwrite(fd, &byte, 1, 20) == 1);
	CHECK_EQ(ramfile_map(path, &b, 1, err, sizeof(err)), 0);
	/* Truncated. */
	CHECK(ftruncate(fd, PG + len - 1) == 0);
	close(fd);
	CHECK_EQ(ramfile_map(path, &b, 1, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "truncated") != NULL);
	/* Not a memory file; not there. */
	path_of(path, sizeof(path), "junk");
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	CHECK(write(fd, "hello", 5) == 5);
	close(fd);
	CHECK_EQ(ramfile_map(path, &b, 1, err, sizeof(err)), -EBADMSG);
	path_of(path, sizeof(path), "nosuch");
	CHECK_EQ(ramfile_map(path, &b, 1, err, sizeof(err)), -ENOENT);
	munmap(m, len);
	munmap(other, 2 * len);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN_TEST(test_save_and_map);
	RUN_TEST(test_cow);
	RUN_TEST(test_refusals);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			return 1;
	}
	return check_finish();
}
