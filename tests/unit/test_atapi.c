/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_atapi.c - the ATAPI CD-ROM drive (secondary master of
 * the PIIX3 IDE controller) with real ISO 9660 images made by xorriso:
 * PACKET commands in PIO (byte count limits) and DMA, the MMC commands
 * firmware, installers and Linux's sr driver send, sense data after
 * no-disc and disc changes, tray eject/load and PREVENT ALLOW MEDIUM
 * REMOVAL.  Data is checked against the ISO files.
 */
#include "ide_driver.h"

#include "statetest.h"
#include "sandboxed.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#define CD_POS	2		/* secondary master */
#define CH	1

static char dir[] = "/tmp/vivarium-atapi-XXXXXX";
static char iso1[128], iso2[128];
static int fd1;
static uint64_t iso1_sectors, iso2_sectors;
static struct ide_rig rig;
static struct ide_rig *r = &rig;
static struct blk *disc;		/* in the drive, if any */

struct result {
	uint8_t status, error, ireason;
	uint32_t len;			/* bytes transferred */
	unsigned blocks;		/* DRQ blocks */
	bool blocks_ok;			/* each block <= limit, as asked */
};

static struct result packet_ex(const uint8_t *cdb, uint8_t *data, uint32_t max,
			       uint16_t limit, uint32_t block_multiple)
{
	struct result res = { .blocks_ok = true };
	uint8_t st;

	rig_select(r, CH, 0, 0);
	rig_outb(r, 0x171, 0);			/* PIO */
	rig_outb(r, 0x174, (uint8_t)limit);
	rig_outb(r, 0x175, (uint8_t)(limit >> 8));
	rig_outb(r, 0x177, 0xa0);
	st = rig_wait(r, CH);
	CHECK_EQ(st & (S_DRQ | S_ERR), S_DRQ);
	CHECK_EQ(rig_inb(r, 0x172) & 3, 1);	/* CoD: the packet */
	for (unsigned i = 0; i < 12; i += 2)
		rig_out(r, 0x170, (uint32_t)cdb[i] | (uint32_t)cdb[i + 1] << 8, 2);
	for (;;) {
		uint32_t n;

		rig_wait(r, CH);
		st = rig_inb(r, 0x177);
		if (!(st & S_DRQ))
			break;
		CHECK_EQ(rig_inb(r, 0x172) & 3, 2);	/* IO: data in */
		n = rig_inb(r, 0x174) | (uint32_t)rig_inb(r, 0x175) << 8;
		if (n == 0 || n > (limit & ~1u) ||
		    (block_multiple && n % block_multiple))
			res.blocks_ok = false;
		for (uint32_t i = 0; i < n; i += 2) {
			uint16_t w = (uint16_t)rig_in(r, 0x170, 2);

			if (res.len + i < max)
				data[res.len + i] = (uint8_t)w;
			if (res.len + i + 1 < max && i + 1 < n)
				data[res.len + i + 1] = (uint8_t)(w >> 8);
		}
		res.len += n;
		if (++res.blocks > 100000)
			break;
	}
	res.status = st;
	res.error = rig_inb(r, 0x171);
	res.ireason = rig_inb(r, 0x172) & 3;
	return res;
}

static struct result packet(const uint8_t *cdb, uint8_t *data, uint32_t max)
{
	return packet_ex(cdb, data, max, 0xfffe, 0);
}

/* A command that must succeed with @expect_len bytes (or any if ~0). */
static void ok(const uint8_t *cdb, uint8_t *data, uint32_t max,
	       uint32_t expect_len)
{
	struct result res = packet(cdb, data, max);

	CHECK_EQ(res.status & (S_ERR | S_BSY | S_DRQ), 0);
	CHECK_EQ(res.status & S_DRDY, S_DRDY);
	CHECK_EQ(res.ireason, 3);
	if (expect_len != ~0u)
		CHECK_EQ(res.len, expect_len);
	if (res.status & S_ERR)
		fprintf(stderr, "  opcode 0x%02x: error 0x%02x\n", cdb[0],
			res.error);
}

static void request_sense(uint8_t *key, uint8_t *asc, uint8_t *ascq)
{
	uint8_t cdb[12] = { 0x03, 0, 0, 0, 18 };
	uint8_t s[18] = { 0 };

	ok(cdb, s, sizeof(s), 18);
	CHECK_EQ(s[0], 0x70);
	CHECK_EQ(s[7], 10);
	*key = s[2] & 0xf;
	*asc = s[12];
	*ascq = s[13];
}

/* The command fails with CHECK CONDITION: @key in the error register,
 * and REQUEST SENSE reports @key/@asc/@ascq. */
static void fails(const uint8_t *cdb, uint8_t key, uint8_t asc, uint8_t ascq)
{
	uint8_t buf[64], k, a, q;
	struct result res = packet(cdb, buf, sizeof(buf));

	CHECK_EQ(res.status & (S_ERR | S_BSY | S_DRQ), S_ERR);
	CHECK_EQ(res.error >> 4, key);
	CHECK_EQ(res.ireason, 3);
	request_sense(&k, &a, &q);
	CHECK_EQ(k, key);
	CHECK_EQ(a, asc);
	CHECK_EQ(q, ascq);
}

static const uint8_t TUR[12] = { 0x00 };

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static struct blk *open_iso(const char *path)
{
	struct blk_open_opts o = { .format = BLK_FMT_RAW, .readonly = true };
	struct blk *b = NULL;
	char err[256];

	CHECK_EQ(blk_open(path, &o, &b, err, sizeof(err)), 0);
	return b;
}

/* The host changes the disc (@path NULL: removes it). */
static int change(const char *path)
{
	struct blk *nb = path ? open_iso(path) : NULL, *old = NULL;
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = piix_ide_change_media(r->ide, CD_POS, nb, &old);
	pthread_mutex_unlock(&r->lock);
	if (ret == 0) {
		blk_close(old);
		disc = nb;
	} else {
		blk_close(nb);
	}
	return ret;
}

/* ---- tests -------------------------------------------------------------- */

static void test_identify_packet(void)
{
	uint8_t b[512], sum = 0;
	uint16_t w0;
	char model[17];

	rig_select(r, CH, 0, 0);
	rig_outb(r, 0x177, 0xa1);
	CHECK_EQ(rig_wait(r, CH) & (S_DRQ | S_ERR), S_DRQ);
	CHECK_EQ(rig_inb(r, 0x177) & S_DRQ, S_DRQ);
	for (unsigned i = 0; i < 512; i += 2) {
		uint16_t w = (uint16_t)rig_in(r, 0x170, 2);

		b[i] = (uint8_t)w;
		b[i + 1] = (uint8_t)(w >> 8);
	}
	CHECK_EQ(rig_wait(r, CH) & (S_DRQ | S_ERR), 0);
	w0 = (uint16_t)(b[0] | b[1] << 8);
	CHECK_EQ(w0 >> 14, 2);			/* ATAPI */
	CHECK_EQ((w0 >> 8) & 0x1f, 5);		/* CD-ROM (SeaBIOS checks) */
	CHECK(w0 & 0x80);			/* removable */
	CHECK_EQ(w0 & 3, 0);			/* 12-byte packets */
	for (unsigned i = 0; i < 16; i += 2) {	/* words 27.. swapped */
		model[i] = (char)b[54 + i + 1];
		model[i + 1] = (char)b[54 + i];
	}
	model[16] = 0;
	CHECK(strcmp(model, "VIVARIUM DVD-ROM") == 0);
	CHECK_EQ(b[99] & 0x03, 0x03);		/* word 49: LBA, DMA */
	for (unsigned i = 0; i < 512; i++)
		sum = (uint8_t)(sum + b[i]);
	CHECK_EQ(sum, 0);
	CHECK_EQ(b[510], 0xa5);

	/* IDENTIFY DEVICE: aborted, with the PACKET signature. */
	rig_outb(r, 0x177, 0xec);
	CHECK_EQ(rig_wait(r, CH) & (S_ERR | S_DRQ), S_ERR);
	CHECK_EQ(rig_inb(r, 0x171) & 0x04, 0x04);
	CHECK_EQ(rig_inb(r, 0x174), 0x14);
	CHECK_EQ(rig_inb(r, 0x175), 0xeb);
	rig_inb(r, 0x177);

	/* DEVICE RESET: signature, status 00h, no interrupt. */
	{
		unsigned rises = rig_irq_rises(r, CH);

		rig_outb(r, 0x177, 0x08);
		CHECK_EQ(rig_wait(r, CH), 0x00);
		CHECK_EQ(rig_inb(r, 0x172), 1);
		CHECK_EQ(rig_inb(r, 0x173), 1);
		CHECK_EQ(rig_inb(r, 0x174), 0x14);
		CHECK_EQ(rig_inb(r, 0x175), 0xeb);
		CHECK_EQ(rig_irq_rises(r, CH), rises);
	}
}

static void test_inquiry(void)
{
	uint8_t cdb[12] = { 0x12, 0, 0, 0, 96 };
	uint8_t b[96];

	ok(cdb, b, sizeof(b), 36);
	CHECK_EQ(b[0], 0x05);			/* CD/DVD */
	CHECK_EQ(b[1], 0x80);			/* removable */
	CHECK_EQ(b[4], 31);
	CHECK(memcmp(b + 8, "VIVARIUM", 8) == 0);
	CHECK(memcmp(b + 16, "DVD-ROM ", 8) == 0);
	/* An odd allocation length: 5 bytes in a 5-byte DRQ block. */
	cdb[4] = 5;
	ok(cdb, b, sizeof(b), 5);
	CHECK_EQ(b[0], 0x05);
	/* EVPD pages: none. */
	cdb[1] = 1;
	fails(cdb, 5, 0x24, 0);
}

static void test_no_disc(void)
{
	uint8_t key, asc, ascq, b[64];
	uint8_t rc[12] = { 0x25 };
	uint8_t gc[12] = { 0x46, 0, 0, 0, 0, 0, 0, 0, 64 };
	uint8_t gesn[12] = { 0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8 };

	/* REQUEST SENSE with nothing stored: the drive is not ready. */
	request_sense(&key, &asc, &ascq);
	CHECK_EQ(key, 2);
	CHECK_EQ(asc, 0x3a);
	fails(TUR, 2, 0x3a, 0x01);
	fails(rc, 2, 0x3a, 0x01);
	/* The stored sense is reported once. */
	request_sense(&key, &asc, &ascq);
	CHECK_EQ(key, 2);
	/* No disc: no current profile, no media present. */
	ok(gc, b, sizeof(b), ~0u);
	CHECK_EQ(be16(b + 6), 0);
	ok(gesn, b, sizeof(b), 8);
	CHECK_EQ(b[5] & 2, 0);
}

static void test_insert(void)
{
	uint8_t key, asc, ascq, b[8];
	uint8_t gesn[12] = { 0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8 };

	CHECK_EQ(change(iso1), 0);
	/* GESN is not held up by the unit attention: NEW MEDIA, once. */
	ok(gesn, b, sizeof(b), 8);
	CHECK_EQ(be16(b), 6);
	CHECK_EQ(b[2], 0x04);			/* media class */
	CHECK_EQ(b[3], 0x10);
	CHECK_EQ(b[4], 2);			/* new media */
	CHECK_EQ(b[5], 0x02);			/* present, tray closed */
	ok(gesn, b, sizeof(b), 8);
	CHECK_EQ(b[4], 0);
	/* REQUEST SENSE reports the unit attention and clears it. */
	request_sense(&key, &asc, &ascq);
	CHECK_EQ(key, 6);
	CHECK_EQ(asc, 0x28);
	CHECK_EQ(ascq, 0);
	ok(TUR, NULL, 0, 0);

	/* Another disc: the next command gets UNIT ATTENTION, then works. */
	CHECK_EQ(change(iso2), 0);
	fails(TUR, 6, 0x28, 0);
	ok(TUR, NULL, 0, 0);
	{
		uint8_t rc[12] = { 0x25 }, c[8];

		ok(rc, c, sizeof(c), 8);
		CHECK_EQ(be32(c), iso2_sectors - 1);
	}
	/* Removed: not ready; back to the first disc. */
	CHECK_EQ(change(NULL), 0);
	ok(gesn, b, sizeof(b), 8);
	CHECK_EQ(b[4], 3);			/* media removal */
	CHECK_EQ(b[5], 0);
	fails(TUR, 2, 0x3a, 0x01);
	CHECK_EQ(change(iso1), 0);
	fails(TUR, 6, 0x28, 0);
	ok(TUR, NULL, 0, 0);
}

static void test_read_capacity(void)
{
	uint8_t rc[12] = { 0x25 }, b[8];

	ok(rc, b, sizeof(b), 8);
	CHECK_EQ(be32(b), iso1_sectors - 1);
	CHECK_EQ(be32(b + 4), 2048);
}

static void read10(uint8_t *cdb, uint32_t lba, uint16_t count)
{
	memset(cdb, 0, 12);
	cdb[0] = 0x28;
	cdb[2] = (uint8_t)(lba >> 24);
	cdb[3] = (uint8_t)(lba >> 16);
	cdb[4] = (uint8_t)(lba >> 8);
	cdb[5] = (uint8_t)lba;
	cdb[7] = (uint8_t)(count >> 8);
	cdb[8] = (uint8_t)count;
}

static void test_read_pio(void)
{
	static uint8_t got[80 * 2048], want[80 * 2048];
	uint32_t n = iso1_sectors < 80 ? (uint32_t)iso1_sectors : 80;
	uint8_t cdb[12];
	struct result res;

	CHECK(pread(fd1, want, n * 2048, 0) == (ssize_t)(n * 2048));
	/* The primary volume descriptor. */
	read10(cdb, 16, 1);
	ok(cdb, got, 2048, 2048);
	CHECK(memcmp(got, "\001CD001", 6) == 0);
	CHECK(memcmp(got, want + 16 * 2048, 2048) == 0);

	/* Many sectors, largest limit: whole sectors per DRQ block. */
	read10(cdb, 0, (uint16_t)n);
	res = packet_ex(cdb, got, sizeof(got), 0xfffe, 2048);
	CHECK_EQ(res.status & (S_ERR | S_DRQ), 0);
	CHECK_EQ(res.len, n * 2048);
	CHECK(res.blocks_ok);
	CHECK(res.blocks >= 2);
	CHECK(memcmp(got, want, n * 2048) == 0);

	/* SeaBIOS's way: limit = 2048, one sector per block. */
	memset(got, 0, sizeof(got));
	res = packet_ex(cdb, got, sizeof(got), 2048, 2048);
	CHECK_EQ(res.blocks, n);
	CHECK(res.blocks_ok);
	CHECK(memcmp(got, want, n * 2048) == 0);

	/* A limit below a sector: blocks of 1000 bytes; same data. */
	memset(got, 0, sizeof(got));
	read10(cdb, 16, 3);
	res = packet_ex(cdb, got, sizeof(got), 1000, 0);
	CHECK_EQ(res.status & (S_ERR | S_DRQ), 0);
	CHECK_EQ(res.len, 3 * 2048);
	CHECK(res.blocks_ok);
	CHECK(memcmp(got, want + 16 * 2048, 3 * 2048) == 0);

	/* READ(12) and READ CD (user data). */
	memset(got, 0, sizeof(got));
	{
		uint8_t c12[12] = { 0xa8, 0, 0, 0, 0, 17, 0, 0, 0, 2 };

		ok(c12, got, sizeof(got), 2 * 2048);
		CHECK(memcmp(got, want + 17 * 2048, 2 * 2048) == 0);
	}
	{
		uint8_t cd[12] = { 0xbe, 0, 0, 0, 0, 16, 0, 0, 2, 0x10 };

		ok(cd, got, sizeof(got), 2 * 2048);
		CHECK(memcmp(got, want + 16 * 2048, 2 * 2048) == 0);
		cd[9] = 0xf8;			/* raw sectors: not offered */
		fails(cd, 5, 0x24, 0);
		cd[9] = 0x10;
		cd[1] = 1 << 2;			/* CD-DA: not this track */
		fails(cd, 5, 0x64, 0);
	}
	/* Zero sectors: no data phase. */
	read10(cdb, 0, 0);
	ok(cdb, got, sizeof(got), 0);
}

static void test_read_dma(void)
{
	static uint8_t want[8 * 2048];
	uint8_t *m = gpa_to_hva(&r->mem, 0x200000, sizeof(want));
	uint8_t cdb[12];
	unsigned rises = rig_irq_rises(r, CH);

	CHECK(pread(fd1, want, sizeof(want), 16 * 2048) == (ssize_t)sizeof(want));
	memset(m, 0, sizeof(want));
	rig_prd(r, 0x9000, 0, 0x200000, 6000, false);
	rig_prd(r, 0x9000, 1, 0x200000 + 6000, sizeof(want) - 6000, true);
	rig_bm_setup(r, CH, 0x9000, true);
	read10(cdb, 16, 8);
	rig_select(r, CH, 0, 0);
	rig_outb(r, 0x171, 1);			/* DMA */
	rig_outb(r, 0x177, 0xa0);
	CHECK_EQ(rig_wait(r, CH) & S_DRQ, S_DRQ);
	for (unsigned i = 0; i < 12; i += 2)
		rig_out(r, 0x170, (uint32_t)cdb[i] | (uint32_t)cdb[i + 1] << 8, 2);
	rig_bm_start(r, CH, true);
	CHECK_EQ(rig_wait_bm(r, CH) & 0x07, 0x04);
	rig_bm_stop(r, CH);
	CHECK_EQ(rig_wait(r, CH) & (S_ERR | S_DRQ | S_DRDY), S_DRDY);
	CHECK_EQ(rig_inb(r, 0x172) & 3, 3);
	rig_inb(r, 0x177);
	CHECK_EQ(rig_irq_rises(r, CH), rises + 1);
	CHECK(memcmp(m, want, sizeof(want)) == 0);

	/* INQUIRY by DMA: the reply buffer goes through the PRDs. */
	memset(m, 0, 64);
	rig_prd(r, 0x9000, 0, 0x200000, 36, true);
	rig_bm_setup(r, CH, 0x9000, true);
	memset(cdb, 0, sizeof(cdb));
	cdb[0] = 0x12;
	cdb[4] = 36;
	rig_outb(r, 0x171, 1);
	rig_outb(r, 0x177, 0xa0);
	rig_wait(r, CH);
	for (unsigned i = 0; i < 12; i += 2)
		rig_out(r, 0x170, (uint32_t)cdb[i] | (uint32_t)cdb[i + 1] << 8, 2);
	rig_bm_start(r, CH, true);
	CHECK_EQ(rig_wait_bm(r, CH) & 0x07, 0x04);
	rig_bm_stop(r, CH);
	CHECK_EQ(rig_wait(r, CH) & (S_ERR | S_DRQ), 0);
	rig_inb(r, 0x177);
	CHECK(memcmp(m + 8, "VIVARIUM", 8) == 0);
}

static void test_out_of_range(void)
{
	uint8_t cdb[12];
	uint8_t seek[12] = { 0x2b };

	read10(cdb, (uint32_t)iso1_sectors, 1);
	fails(cdb, 5, 0x21, 0);
	read10(cdb, (uint32_t)iso1_sectors - 1, 2);
	fails(cdb, 5, 0x21, 0);
	read10(cdb, 0xffffffff, 0xffff);
	fails(cdb, 5, 0x21, 0);
	seek[2] = 0x7f;
	fails(seek, 5, 0x21, 0);
	seek[2] = 0;
	seek[5] = 20;
	ok(seek, NULL, 0, 0);
	/* Unknown opcodes, and one Linux sends to DVDs that we lack. */
	{
		uint8_t bad[12] = { 0xff }, dvd[12] = { 0xad };

		fails(bad, 5, 0x20, 0);
		fails(dvd, 5, 0x20, 0);
	}
}

static void msf_of(uint32_t lba, uint8_t *m)
{
	lba += 150;
	m[0] = (uint8_t)(lba / 4500);
	m[1] = (uint8_t)(lba / 75 % 60);
	m[2] = (uint8_t)(lba % 75);
}

static void test_read_toc(void)
{
	uint8_t cdb[12] = { 0x43, 0, 0, 0, 0, 0, 0, 0x03, 0x24 };
	uint8_t b[804], m[3];
	uint32_t n = (uint32_t)iso1_sectors;

	/* Format 0, LBA. */
	ok(cdb, b, sizeof(b), 20);
	CHECK_EQ(be16(b), 18);
	CHECK_EQ(b[2], 1);
	CHECK_EQ(b[3], 1);
	CHECK_EQ(b[5], 0x14);			/* data track */
	CHECK_EQ(b[6], 1);
	CHECK_EQ(be32(b + 8), 0);
	CHECK_EQ(b[14], 0xaa);			/* lead-out */
	CHECK_EQ(be32(b + 16), n);
	/* Format 0, MSF. */
	cdb[1] = 2;
	ok(cdb, b, sizeof(b), 20);
	CHECK_EQ(b[9], 0);
	CHECK_EQ(b[10], 2);			/* 00:02:00 */
	CHECK_EQ(b[11], 0);
	msf_of(n, m);
	CHECK(b[17] == m[0] && b[18] == m[1] && b[19] == m[2]);
	/* Starting at the lead-out: only it; past the last track: error. */
	cdb[1] = 0;
	cdb[6] = 0xaa;
	ok(cdb, b, sizeof(b), 12);
	CHECK_EQ(b[6], 0xaa);
	cdb[6] = 2;
	fails(cdb, 5, 0x24, 0);
	cdb[6] = 0;
	/* Allocation length 4: the header only. */
	cdb[7] = 0;
	cdb[8] = 4;
	ok(cdb, b, sizeof(b), 4);
	cdb[7] = 3;
	cdb[8] = 0x24;
	/* Format 1: session information. */
	cdb[2] = 1;
	ok(cdb, b, sizeof(b), 12);
	CHECK_EQ(be16(b), 10);
	CHECK_EQ(b[2], 1);
	CHECK_EQ(b[6], 1);
	CHECK_EQ(be32(b + 8), 0);
	/* Format 2: full TOC, A0/A1/A2 and track 1, MSF. */
	cdb[2] = 2;
	ok(cdb, b, sizeof(b), 48);
	CHECK_EQ(be16(b), 46);
	CHECK_EQ(b[4 + 3], 0xa0);
	CHECK_EQ(b[4 + 8], 1);			/* first track */
	CHECK_EQ(b[15 + 3], 0xa1);
	CHECK_EQ(b[15 + 8], 1);			/* last track */
	CHECK_EQ(b[26 + 3], 0xa2);
	CHECK(b[26 + 8] == m[0] && b[26 + 9] == m[1] && b[26 + 10] == m[2]);
	CHECK_EQ(b[37 + 3], 1);
	CHECK_EQ(b[37 + 9], 2);
	/* The old SFF-8020i place for the format: control byte bits 7:6. */
	cdb[2] = 0;
	cdb[9] = 0x40;
	ok(cdb, b, sizeof(b), 12);
	/* Format 4 (ATIP): not on a pressed disc. */
	cdb[9] = 0;
	cdb[2] = 4;
	fails(cdb, 5, 0x24, 0);
}

static void test_get_configuration(void)
{
	uint8_t cdb[12] = { 0x46, 0, 0, 0, 0, 0, 0, 0x01, 0 };
	uint8_t b[256];
	static const uint16_t codes[] = { 0, 1, 2, 3, 0x10, 0x1e, 0x1f };
	unsigned off = 8, i = 0;
	struct result res = packet(cdb, b, sizeof(b));

	CHECK_EQ(res.status & S_ERR, 0);
	CHECK_EQ(be32(b) + 4, res.len);
	CHECK_EQ(be16(b + 6), 0x0008);		/* CD-ROM */
	while (off + 4 <= res.len && i < 7) {
		CHECK_EQ(be16(b + off), codes[i]);
		if (codes[i] == 0) {		/* profile list */
			CHECK_EQ(b[off + 2] & 3, 3);
			CHECK_EQ(be16(b + off + 4), 0x0010);
			CHECK_EQ(b[off + 6] & 1, 0);
			CHECK_EQ(be16(b + off + 8), 0x0008);
			CHECK_EQ(b[off + 10] & 1, 1);
		}
		if (codes[i] == 1)		/* core: ATAPI */
			CHECK_EQ(be32(b + off + 4), 2);
		if (codes[i] == 0x1f)		/* DVD read: not current */
			CHECK_EQ(b[off + 2] & 1, 0);
		off += 4 + b[off + 3];
		i++;
	}
	CHECK_EQ(i, 7);
	CHECK_EQ(off, res.len);

	/* RT = 2: just the removable medium feature. */
	cdb[1] = 2;
	cdb[3] = 3;
	ok(cdb, b, sizeof(b), 16);
	CHECK_EQ(be16(b + 8), 3);
	CHECK_EQ(b[12], 0x29);			/* tray, eject, lock */
	/* RT = 1 from 0x10: current features only. */
	cdb[1] = 1;
	cdb[3] = 0x10;
	ok(cdb, b, sizeof(b), 8 + 12 + 8);
	CHECK_EQ(be16(b + 8), 0x10);
	CHECK_EQ(be16(b + 20), 0x1e);
	cdb[1] = 3;
	fails(cdb, 5, 0x24, 0);
}

static void test_event_status(void)
{
	uint8_t cdb[12] = { 0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8 };
	uint8_t b[8];

	/* test_insert's last disc is still news, once. */
	ok(cdb, b, sizeof(b), 8);
	CHECK_EQ(b[4], 2);
	ok(cdb, b, sizeof(b), 8);
	CHECK_EQ(b[4], 0);
	CHECK_EQ(b[5], 0x02);
	/* No class we have asked for: NEA. */
	cdb[4] = 0x40;
	ok(cdb, b, sizeof(b), 4);
	CHECK_EQ(b[2] & 0x80, 0x80);
	CHECK_EQ(b[3], 0x10);
	/* Asynchronous operation is not offered. */
	cdb[1] = 0;
	cdb[4] = 0x10;
	fails(cdb, 5, 0x24, 0);
}

static void test_mode_sense(void)
{
	uint8_t cdb[12] = { 0x5a, 0, 0x2a, 0, 0, 0, 0, 0, 64 };
	uint8_t b[128];
	struct result res = packet(cdb, b, sizeof(b));

	CHECK_EQ(res.status & S_ERR, 0);
	CHECK_EQ(res.len, 8 + 22);
	CHECK_EQ(be16(b), res.len - 2);
	CHECK_EQ(be16(b + 6), 0);		/* no block descriptors */
	CHECK_EQ(b[8] & 0x3f, 0x2a);
	CHECK_EQ(b[9], 0x14);
	CHECK(b[10] & 0x01);			/* reads CD-R */
	CHECK_EQ(b[14] & 0xe9, 0x29);		/* tray, eject, lock */
	CHECK_EQ(b[14] & 0x02, 0);		/* not locked */
	/* All pages. */
	cdb[2] = 0x3f;
	ok(cdb, b, sizeof(b), 8 + 12 + 8 + 22);
	CHECK_EQ(b[8], 0x01);
	CHECK_EQ(b[20], 0x0d);
	CHECK_EQ(b[28], 0x2a);
	/* Changeable values: none. */
	cdb[2] = 0x40 | 0x2a;
	ok(cdb, b, sizeof(b), 30);
	CHECK_EQ(b[14], 0);
	/* Saved values: not supported; an unknown page: invalid. */
	cdb[2] = 0xc0 | 0x2a;
	fails(cdb, 5, 0x39, 0);
	cdb[2] = 0x05;
	fails(cdb, 5, 0x24, 0);
	/* MODE SENSE(6). */
	{
		uint8_t c6[12] = { 0x1a, 0, 0x2a, 0, 64 };

		ok(c6, b, sizeof(b), 4 + 22);
		CHECK_EQ(b[0], 25);
		CHECK_EQ(b[4], 0x2a);
	}
}

static void test_mode_select(void)
{
	uint8_t cdb[12] = { 0x55, 0x10, 0, 0, 0, 0, 0, 0, 20 };
	uint8_t st;

	/* A parameter list of 20 bytes: a data-out phase, then done. */
	rig_select(r, CH, 0, 0);
	rig_outb(r, 0x171, 0);
	rig_outb(r, 0x174, 0xfe);
	rig_outb(r, 0x175, 0xff);
	rig_outb(r, 0x177, 0xa0);
	rig_wait(r, CH);
	for (unsigned i = 0; i < 12; i += 2)
		rig_out(r, 0x170, (uint32_t)cdb[i] | (uint32_t)cdb[i + 1] << 8, 2);
	st = rig_wait(r, CH);
	rig_inb(r, 0x177);
	CHECK_EQ(st & (S_DRQ | S_ERR), S_DRQ);
	CHECK_EQ(rig_inb(r, 0x172) & 3, 0);	/* data out */
	CHECK_EQ(rig_inb(r, 0x174), 20);
	for (unsigned i = 0; i < 20; i += 2)
		rig_out(r, 0x170, 0, 2);
	st = rig_wait(r, CH);
	CHECK_EQ(st & (S_DRQ | S_ERR), 0);
	CHECK_EQ(rig_inb(r, 0x172) & 3, 3);
	rig_inb(r, 0x177);
}

static void test_eject_load(void)
{
	uint8_t eject[12] = { 0x1b, 0, 0, 0, 0x02 };
	uint8_t load[12] = { 0x1b, 0, 0, 0, 0x03 };
	uint8_t gesn[12] = { 0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8 };
	uint8_t mech[12] = { 0xbd, 0, 0, 0, 0, 0, 0, 0, 0, 8 };
	uint8_t b[8];
	bool open;

	ok(eject, NULL, 0, 0);
	pthread_mutex_lock(&r->lock);
	open = piix_ide_tray_open(r->ide, CD_POS);
	pthread_mutex_unlock(&r->lock);
	CHECK(open);
	fails(TUR, 2, 0x3a, 0x02);		/* tray open */
	ok(gesn, b, sizeof(b), 8);
	CHECK_EQ(b[4], 3);			/* media removal */
	CHECK_EQ(b[5], 0x03);			/* disc in the open tray */
	ok(mech, b, sizeof(b), 8);
	CHECK_EQ(b[1] & 0x10, 0x10);		/* door open */
	/* Ejecting again is fine. */
	ok(eject, NULL, 0, 0);
	ok(load, NULL, 0, 0);
	ok(gesn, b, sizeof(b), 8);
	CHECK_EQ(b[4], 2);
	fails(TUR, 6, 0x28, 0);
	ok(TUR, NULL, 0, 0);
	ok(mech, b, sizeof(b), 8);
	CHECK_EQ(b[1] & 0x10, 0);
	/* Start/stop without LoEj: spin up/down, no tray movement. */
	eject[4] = 0;
	ok(eject, NULL, 0, 0);
	ok(TUR, NULL, 0, 0);
}

static void test_prevent(void)
{
	uint8_t prevent[12] = { 0x1e, 0, 0, 0, 1 };
	uint8_t allow[12] = { 0x1e, 0, 0, 0, 0 };
	uint8_t eject[12] = { 0x1b, 0, 0, 0, 0x02 };
	uint8_t load[12] = { 0x1b, 0, 0, 0, 0x03 };
	uint8_t gesn[12] = { 0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8 };
	uint8_t ms[12] = { 0x5a, 0, 0x2a, 0, 0, 0, 0, 0, 64 };
	uint8_t b[64];
	bool locked;

	ok(prevent, NULL, 0, 0);
	pthread_mutex_lock(&r->lock);
	locked = piix_ide_tray_locked(r->ide, CD_POS);
	pthread_mutex_unlock(&r->lock);
	CHECK(locked);
	ok(ms, b, sizeof(b), 30);
	CHECK_EQ(b[14] & 0x02, 0x02);		/* lock state */
	fails(eject, 5, 0x53, 0x02);		/* removal prevented */
	ok(TUR, NULL, 0, 0);
	/* The host cannot take the disc either; the guest is asked. */
	CHECK_EQ(change(iso2), -EBUSY);
	ok(gesn, b, sizeof(b), 8);
	CHECK_EQ(b[4], 1);			/* eject request */
	ok(TUR, NULL, 0, 0);			/* still the same disc */
	ok(allow, NULL, 0, 0);
	ok(eject, NULL, 0, 0);
	ok(load, NULL, 0, 0);
	fails(TUR, 6, 0x28, 0);
	ok(TUR, NULL, 0, 0);
}

/* A PACKET command interrupts at every DRQ block and at completion. */
static void test_interrupts(void)
{
	uint8_t cdb[12];
	uint8_t got[4 * 2048];
	unsigned rises = rig_irq_rises(r, CH);
	struct result res;

	read10(cdb, 16, 4);
	res = packet_ex(cdb, got, sizeof(got), 2048, 2048);
	CHECK_EQ(res.blocks, 4);
	CHECK_EQ(rig_irq_rises(r, CH), rises + 5);
	/* SRST on the channel keeps the disc and clears the stored sense. */
	rig_outb(r, 0x376, 0x04);
	rig_outb(r, 0x376, 0x00);
	CHECK_EQ(rig_wait(r, CH), 0);
	ok(TUR, NULL, 0, 0);
}


static GVariant *ide_save(struct ide_rig *rig_)
{
	GVariant *v;

	piix_ide_drain(rig_->ide);
	pthread_mutex_lock(&rig_->lock);
	v = piix_ide_device_ops.save(rig_->ide);
	pthread_mutex_unlock(&rig_->lock);
	return v ? g_variant_ref_sink(v) : NULL;
}

/* Load @s into @to and save it again: the same state. */
static void ide_restore(struct ide_rig *to, GVariant *s)
{
	char err[256] = "";
	GVariant *again;
	int ret;

	pthread_mutex_lock(&to->lock);
	ret = piix_ide_device_ops.load(to->ide, 1, s, err, sizeof(err));
	pthread_mutex_unlock(&to->lock);
	CHECK_EQ(ret, 0);
	if (ret)
		fprintf(stderr, "  (%s)\n", err);
	again = ide_save(to);
	CHECK(again && g_variant_equal(s, again));
	if (again)
		g_variant_unref(again);
}

/* The next PIO data-in block of the packet command on r: its bytes. */
static uint32_t packet_block(uint8_t *dst)
{
	uint32_t n;

	rig_wait(r, CH);
	CHECK_EQ(rig_inb(r, 0x177) & (S_DRQ | S_ERR), S_DRQ);
	n = rig_inb(r, 0x174) | (uint32_t)rig_inb(r, 0x175) << 8;
	for (uint32_t i = 0; i < n; i += 2) {
		uint16_t w = (uint16_t)rig_in(r, 0x170, 2);

		dst[i] = (uint8_t)w;
		dst[i + 1] = (uint8_t)(w >> 8);
	}
	return n;
}

/* Sense data and a locked tray, then the middle of a 4-sector PIO read:
 * each saved, loaded into a fresh controller and saved again, equal; the
 * restored drive reports the same sense, keeps the tray locked, and its
 * read goes on with the right sectors. */
static void test_save_load(void)
{
	static uint8_t got[4 * 2048], got2[4 * 2048], want[4 * 2048];
	uint8_t prevent[12] = { 0x1e, 0, 0, 0, 1 };
	uint8_t allow[12] = { 0x1e, 0, 0, 0, 0 };
	struct ide_drive_config drives[4] = { [CD_POS] = { disc, true } };
	struct ide_rig r2, *orig = r;
	uint8_t cdb[12], k, a, q;
	struct result res;
	GVariant *s1, *s3;
	bool locked;

	CHECK(disc != NULL);
	rig_setup(&r2, drives);
	ok(prevent, NULL, 0, 0);
	read10(cdb, 0xffff0000u, 1);
	res = packet(cdb, got, sizeof(got));
	CHECK_EQ(res.status & S_ERR, S_ERR);
	s1 = ide_save(r);
	CHECK(s1 != NULL);
	if (!s1)
		return;
	ide_restore(&r2, s1);
	r = &r2;
	request_sense(&k, &a, &q);
	CHECK_EQ(k, 5);
	CHECK_EQ(a, 0x21);
	pthread_mutex_lock(&r2.lock);
	locked = piix_ide_tray_locked(r2.ide, CD_POS);
	pthread_mutex_unlock(&r2.lock);
	CHECK(locked);
	ok(allow, NULL, 0, 0);
	r = orig;
	ok(allow, NULL, 0, 0);

	/* One of four 2048-byte blocks read. */
	CHECK(pread(fd1, want, sizeof(want), 16 * 2048) == (ssize_t)sizeof(want));
	read10(cdb, 16, 4);
	rig_select(r, CH, 0, 0);
	rig_outb(r, 0x171, 0);
	rig_outb(r, 0x174, 0x00);
	rig_outb(r, 0x175, 0x08);		/* limit 2048 */
	rig_outb(r, 0x177, 0xa0);
	rig_wait(r, CH);
	for (unsigned i = 0; i < 12; i += 2)
		rig_out(r, 0x170, (uint32_t)cdb[i] | (uint32_t)cdb[i + 1] << 8, 2);
	CHECK_EQ(packet_block(got), 2048);
	s3 = ide_save(r);
	CHECK(s3 != NULL);
	if (!s3) {
		g_variant_unref(s1);
		rig_teardown(&r2);
		return;
	}
	ide_restore(&r2, s3);
	memcpy(got2, got, 2048);
	for (unsigned b = 1; b < 4; b++)
		CHECK_EQ(packet_block(got + b * 2048), 2048);
	r = &r2;
	for (unsigned b = 1; b < 4; b++)
		CHECK_EQ(packet_block(got2 + b * 2048), 2048);
	CHECK_EQ(rig_wait(r, CH) & (S_DRQ | S_ERR), 0);
	r = orig;
	CHECK_EQ(rig_wait(r, CH) & (S_DRQ | S_ERR), 0);
	CHECK(memcmp(got, want, sizeof(want)) == 0);
	CHECK(memcmp(got2, want, sizeof(want)) == 0);

	/* Out-of-range ATAPI values are refused. */
	pthread_mutex_lock(&r2.lock);
	state_refused(&piix_ide_device_ops, r2.ide, 1,
		      state_with(s1, g_variant_new_byte(0x10), 4, 1, 7, 5, 4),
		      "piix-ide: drive 2 ATAPI byte limit");
	state_refused(&piix_ide_device_ops, r2.ide, 1,
		      state_with(s1, g_variant_new_uint32(0xffff), 4, 1, 7, 5, 2),
		      "piix-ide: drive 2 ATAPI byte limit");
	state_refused(&piix_ide_device_ops, r2.ide, 1,
		      state_with(s1, g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, cdb, 6, 1),
				 4, 1, 7, 5, 3),
		      "piix-ide: drive 2 packet of 6 bytes");
	state_refused(&piix_ide_device_ops, r2.ide, 1,
		      state_with(s3, g_variant_new_uint32(0), 4, 1, 7, 5, 2),
		      "piix-ide: drive 2 ATAPI data phase");
	pthread_mutex_unlock(&r2.lock);
	g_variant_unref(s1);
	g_variant_unref(s3);
	rig_teardown(&r2);
}

/* The host removes the disc after a READ(10) finished (fuzz_ide's find):
 * the drive's state then loads into a machine whose drive is empty too,
 * and the disc goes back in and reads. */
static void test_save_after_removal(void)
{
	struct ide_drive_config drives[4] = { [CD_POS] = { NULL, true } };
	static uint8_t got[4 * 2048];
	struct ide_rig r2;
	uint8_t cdb[12];
	GVariant *s;

	CHECK(disc != NULL);
	read10(cdb, 16, 4);
	ok(cdb, got, sizeof(got), sizeof(got));
	CHECK_EQ(change(NULL), 0);
	rig_setup(&r2, drives);
	s = ide_save(r);
	CHECK(s != NULL);
	if (s) {
		ide_restore(&r2, s);
		g_variant_unref(s);
	}
	rig_teardown(&r2);
	CHECK_EQ(change(iso1), 0);
	packet(TUR, NULL, 0);			/* unit attention */
	ok(cdb, got, sizeof(got), sizeof(got));
}

static bool make_iso(const char *path, const char *label, unsigned kib,
		     uint64_t *sectors)
{
	char src[160], cmd[512];
	struct stat st;
	FILE *f;

	snprintf(src, sizeof(src), "%s/src-%s", dir, label);
	if (mkdir(src, 0700) < 0)
		return false;
	snprintf(cmd, sizeof(cmd), "%s/data.bin", src);
	f = fopen(cmd, "w");
	if (!f)
		return false;
	for (unsigned i = 0; i < kib * 1024; i++)
		fputc((int)((i * 2654435761u) >> 13) & 0xff, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd),
		 "xorriso -as mkisofs -quiet -V %s -o %s %s >/dev/null 2>&1",
		 label, path, src);
	if (system(cmd) != 0 || stat(path, &st) < 0)
		return false;
	*sectors = (uint64_t)st.st_size / 2048;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", src);
	if (system(cmd) != 0)
		return false;
	return true;
}

int main(void)
{
	sandbox_test_threads(false);
	if (system("xorriso -version >/dev/null 2>&1") != 0)
		SKIP("xorriso is not installed (apt-get install xorriso)");
	rig_tmpdir(dir);
	snprintf(iso1, sizeof(iso1), "%s/one.iso", dir);
	snprintf(iso2, sizeof(iso2), "%s/two.iso", dir);
	CHECK(make_iso(iso1, "ONE", 300, &iso1_sectors));
	CHECK(make_iso(iso2, "TWO", 700, &iso2_sectors));
	CHECK(iso2_sectors != iso1_sectors);
	fd1 = open(iso1, O_RDONLY);
	CHECK(fd1 >= 0);

	{
		struct ide_drive_config drives[4] = {
			[CD_POS] = { NULL, true },
		};

		rig_setup(r, drives);
	}
	RUN_TEST(test_identify_packet);
	RUN_TEST(test_inquiry);
	RUN_TEST(test_no_disc);
	RUN_TEST(test_insert);
	RUN_TEST(test_read_capacity);
	RUN_TEST(test_read_pio);
	RUN_TEST(test_read_dma);
	RUN_TEST(test_out_of_range);
	RUN_TEST(test_read_toc);
	RUN_TEST(test_get_configuration);
	RUN_TEST(test_event_status);
	RUN_TEST(test_mode_sense);
	RUN_TEST(test_mode_select);
	RUN_TEST(test_eject_load);
	RUN_TEST(test_prevent);
	RUN_TEST(test_interrupts);
	RUN_TEST(test_save_load);
	RUN_TEST(test_save_after_removal);
	rig_teardown(r);

	blk_close(disc);
	close(fd1);
	unlink(iso1);
	unlink(iso2);
	rmdir(dir);
	return check_finish();
}
