/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_ide.c - the PIIX3 IDE controller with ATA disks, driven
 * through its legacy ports, config space and bus-master registers the way
 * SeaBIOS's ata.c and Linux's libata do it.  Data is checked against the
 * raw image files themselves (pread/pwrite beside the device).
 *
 * Drives: primary master = 4 MiB raw disk of pseudo-random bytes, primary
 * slave = a sparse 200 GiB raw disk (LBA48), secondary master = a CD-ROM
 * drive with no disc, secondary slave absent.
 */
#include "ide_driver.h"

#include "statetest.h"
#include "sandboxed.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#define DISK_A_SECTORS	8192u			/* 4 MiB */
#define DISK_B_BYTES	(200ull << 30)
#define DISK_B_SECTORS	(DISK_B_BYTES / 512)

static char dir[] = "/tmp/vivarium-ide-XXXXXX";
static char path_a[128], path_b[128];
static int fd_a, fd_b;
static struct blk *disk_a, *disk_b;
static struct ide_rig rig;
static struct ide_rig *r = &rig;

/* ---- helpers ------------------------------------------------------------ */

static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

static void file_read(int fd, uint64_t off, void *buf, size_t len)
{
	CHECK_EQ(pread(fd, buf, len, (off_t)off), (ssize_t)len);
}

/* Issue an ATA command to @unit of @ch: LBA (bit 6) addressing. */
static void ata_cmd(unsigned ch, unsigned unit, uint8_t cmd, uint8_t feature,
		    uint32_t count, uint64_t lba, bool lba48)
{
	uint16_t c = rig_cmd(ch);

	rig_select(r, ch, unit, (uint8_t)(0x40 | (lba48 ? 0 : (lba >> 24) & 0xf)));
	if (lba48) {
		rig_outb(r, c + 1, 0);
		rig_outb(r, c + 2, (uint8_t)(count >> 8));
		rig_outb(r, c + 3, (uint8_t)(lba >> 24));
		rig_outb(r, c + 4, (uint8_t)(lba >> 32));
		rig_outb(r, c + 5, (uint8_t)(lba >> 40));
	}
	rig_outb(r, c + 1, feature);
	rig_outb(r, c + 2, (uint8_t)count);
	rig_outb(r, c + 3, (uint8_t)lba);
	rig_outb(r, c + 4, (uint8_t)(lba >> 8));
	rig_outb(r, c + 5, (uint8_t)(lba >> 16));
	rig_outb(r, c + 7, cmd);
}

/* Read @n bytes from the data port: words, or dwords with @pio32. */
static void data_in(unsigned ch, uint8_t *dst, unsigned n, bool pio32)
{
	unsigned step = pio32 ? 4 : 2;

	for (unsigned i = 0; i < n; i += step) {
		uint32_t v = (uint32_t)rig_in(r, rig_cmd(ch), step);

		memcpy(dst + i, &v, step);
	}
}

static void data_out(unsigned ch, const uint8_t *src, unsigned n)
{
	for (unsigned i = 0; i < n; i += 2)
		rig_out(r, rig_cmd(ch), (uint32_t)src[i] | (uint32_t)src[i + 1] << 8,
			2);
}

/* Wait, then read the status register (acknowledging INTRQ). */
static uint8_t wait_ack(unsigned ch)
{
	rig_wait(r, ch);
	return rig_inb(r, rig_cmd(ch) + 7);
}

/* PIO data-in command: @nblocks DRQ blocks of @block bytes into @dst. */
static bool pio_in(unsigned ch, uint8_t *dst, unsigned nblocks, unsigned block)
{
	for (unsigned b = 0; b < nblocks; b++) {
		uint8_t st = wait_ack(ch);

		if ((st & (S_DRQ | S_ERR | S_BSY)) != S_DRQ) {
			fprintf(stderr, "  block %u: status 0x%02x\n", b, st);
			return false;
		}
		data_in(ch, dst + (size_t)b * block, block, b & 1);
	}
	return true;
}

static bool identify(unsigned ch, unsigned unit, uint8_t cmd, uint16_t *id)
{
	uint8_t buf[512];

	ata_cmd(ch, unit, cmd, 0, 0, 0, false);
	if (!pio_in(ch, buf, 1, 512))
		return false;
	for (unsigned i = 0; i < 256; i++)
		id[i] = (uint16_t)(buf[2 * i] | buf[2 * i + 1] << 8);
	return true;
}

static void id_str(const uint16_t *id, unsigned w, unsigned nw, char *out)
{
	for (unsigned i = 0; i < nw; i++) {
		out[2 * i] = (char)(id[w + i] >> 8);
		out[2 * i + 1] = (char)id[w + i];
	}
	out[2 * nw] = 0;
}

static uint8_t error_reg(unsigned ch)
{
	return rig_inb(r, rig_cmd(ch) + 1);
}

/* ---- tests -------------------------------------------------------------- */

static void test_pci_config(void)
{
	CHECK_EQ(rig_cfg_read(r, PCI_VENDOR_ID, 2), 0x8086);
	CHECK_EQ(rig_cfg_read(r, PCI_DEVICE_ID, 2), 0x7010);
	CHECK_EQ(rig_cfg_read(r, PCI_CLASS_PROG, 1), 0x80);
	CHECK_EQ(rig_cfg_read(r, PCI_CLASS_DEVICE, 2), 0x0101);
	CHECK_EQ(rig_cfg_read(r, PCI_HEADER_TYPE, 1), 0x00);
	CHECK_EQ(rig_cfg_read(r, PCI_INTERRUPT_PIN, 1), 0);
	/* Legacy mode: no BAR0-3; BAR4 is 16 bytes of I/O. */
	for (unsigned b = 0; b < 4; b++)
		CHECK_EQ(rig_cfg_read(r, PCI_BASE_ADDRESS_0 + 4 * b, 4), 0);
	CHECK_EQ(rig_cfg_read(r, PCI_BASE_ADDRESS_0 + 16, 4), RIG_BM | 1);
	rig_cfg_write(r, PCI_BASE_ADDRESS_0 + 16, 4, 0xffffffff);
	CHECK_EQ(rig_cfg_read(r, PCI_BASE_ADDRESS_0 + 16, 4), 0xfffffff1);
	rig_cfg_write(r, PCI_BASE_ADDRESS_0 + 16, 4, RIG_BM);
	/* IDETIM: decode enabled on both channels, writable (ata_piix and
	 * SeaBIOS); SIDETIM writable. */
	CHECK_EQ(rig_cfg_read(r, 0x40, 2), 0x8000);
	CHECK_EQ(rig_cfg_read(r, 0x42, 2), 0x8000);
	rig_cfg_write(r, 0x44, 1, 0x55);
	CHECK_EQ(rig_cfg_read(r, 0x44, 1), 0x55);
	/* Decode off: the channel's ports float. */
	rig_cfg_write(r, 0x40, 2, 0x0000);
	CHECK_EQ(rig_in(r, 0x1f7, 1), 0xff);
	CHECK_EQ(rig_in(r, 0x3f6, 1), 0xff);
	CHECK(rig_inb(r, 0x177) != 0xff);
	rig_cfg_write(r, 0x40, 2, 0xa307);
	CHECK_EQ(rig_cfg_read(r, 0x40, 2), 0xa307);
	CHECK_EQ(rig_inb(r, 0x1f7) & (S_BSY | S_DRDY), S_DRDY);
	/* Bus master registers answer in BAR4. */
	CHECK_EQ(rig_inb(r, RIG_BM + 2) & 0x80, 0);	/* not simplex */
	rig_out(r, RIG_BM + 4, 0x12345677, 4);
	CHECK_EQ(rig_in(r, RIG_BM + 4, 4), 0x12345674);
}

static void test_identify(void)
{
	uint16_t id[256];
	char s[41];
	uint8_t sum = 0;
	unsigned rises = rig_irq_rises(r, 0);

	rig_outb(r, 0x3f6, 0x00);		/* nIEN clear */
	CHECK(identify(0, 0, 0xec, id));
	CHECK_EQ(rig_irq_rises(r, 0), rises + 1);
	CHECK_EQ(rig_irq_level(r, 0), 0);	/* status read acked it */
	CHECK_EQ(rig_inb(r, 0x1f7), S_DRDY | S_DSC);
	CHECK_EQ(id[0], 0x0040);
	id_str(id, 27, 20, s);
	CHECK(strncmp(s, "VIVARIUM HARDDISK   ", 20) == 0);
	id_str(id, 10, 10, s);
	CHECK(s[0] == 'V' && s[19] != 0);
	CHECK_EQ(id[60] | (uint32_t)id[61] << 16, DISK_A_SECTORS);
	CHECK_EQ(id[100] | (uint64_t)id[101] << 16, DISK_A_SECTORS);
	CHECK(id[83] & (1 << 10));		/* LBA48 */
	CHECK(id[86] & (1 << 10));
	CHECK(id[49] & (1 << 9));		/* LBA */
	CHECK(id[49] & (1 << 8));		/* DMA */
	CHECK_EQ(id[63] & 7, 7);		/* MWDMA 0-2 */
	CHECK_EQ(id[47] & 0xff, 16);
	CHECK_EQ(id[80] & 0x40, 0x40);		/* ATA/ATAPI-6 */
	/* CHS geometry an old loader can use: inside the disk. */
	CHECK(id[1] >= 1 && id[3] >= 1 && id[3] <= 16 && id[6] >= 1 &&
	      id[6] <= 63);
	CHECK((uint32_t)id[1] * id[3] * id[6] <= DISK_A_SECTORS);
	CHECK_EQ(id[53] & 1, 1);
	CHECK_EQ(id[57] | (uint32_t)id[58] << 16,
		 (uint32_t)id[54] * id[55] * id[56]);
	/* Integrity word (§8.15.62): A5h and a zero byte sum. */
	CHECK_EQ(id[255] & 0xff, 0xa5);
	for (unsigned i = 0; i < 256; i++)
		sum = (uint8_t)(sum + (id[i] & 0xff) + (id[i] >> 8));
	CHECK_EQ(sum, 0);

	/* The 200 GiB disk: LBA28 capacity saturates, LBA48 is exact. */
	CHECK(identify(0, 1, 0xec, id));
	CHECK_EQ(id[60] | (uint32_t)id[61] << 16, 0x0fffffff);
	CHECK_EQ(id[100] | (uint64_t)id[101] << 16 | (uint64_t)id[102] << 32,
		 DISK_B_SECTORS);
	CHECK_EQ(id[1], 16383);
	CHECK_EQ(id[3], 16);
	CHECK_EQ(id[6], 63);

	/* IDENTIFY PACKET DEVICE to a disk: aborted. */
	ata_cmd(0, 0, 0xa1, 0, 0, 0, false);
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC | S_ERR);
	CHECK_EQ(error_reg(0), 0x04);
}

static void test_pio_read(void)
{
	static uint8_t got[300 * 512], want[300 * 512];
	unsigned rises = rig_irq_rises(r, 0);

	/* READ SECTORS, 8 sectors: one DRQ block and one interrupt each. */
	ata_cmd(0, 0, 0x20, 0, 8, 100, false);
	CHECK(pio_in(0, got, 8, 512));
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);
	CHECK_EQ(rig_irq_rises(r, 0), rises + 8);
	file_read(fd_a, 100 * 512, want, 8 * 512);
	CHECK(memcmp(got, want, 8 * 512) == 0);

	/* READ SECTORS EXT of 300 sectors: more than one buffer's worth. */
	ata_cmd(0, 0, 0x24, 0, 300, 1000, true);
	CHECK(pio_in(0, got, 300, 512));
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);
	file_read(fd_a, 1000 * 512, want, 300 * 512);
	CHECK(memcmp(got, want, 300 * 512) == 0);

	/* Count 0 means 256 sectors. */
	ata_cmd(0, 0, 0x20, 0, 0, 4000, false);
	CHECK(pio_in(0, got, 256, 512));
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);
	file_read(fd_a, 4000 * 512, want, 256 * 512);
	CHECK(memcmp(got, want, 256 * 512) == 0);
}

static void test_multiple(void)
{
	static uint8_t got[10 * 512], want[10 * 512];
	unsigned rises;

	/* READ MULTIPLE before SET MULTIPLE MODE: aborted. */
	ata_cmd(0, 0, 0xc4, 0, 4, 0, false);
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC | S_ERR);
	CHECK_EQ(error_reg(0), 0x04);
	/* Not a power of two, and too large: aborted. */
	ata_cmd(0, 0, 0xc6, 0, 3, 0, false);
	CHECK_EQ(wait_ack(0) & S_ERR, S_ERR);
	ata_cmd(0, 0, 0xc6, 0, 32, 0, false);
	CHECK_EQ(wait_ack(0) & S_ERR, S_ERR);
	ata_cmd(0, 0, 0xc6, 0, 4, 0, false);
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);

	/* 10 sectors in blocks of 4, 4, 2. */
	rises = rig_irq_rises(r, 0);
	ata_cmd(0, 0, 0xc4, 0, 10, 500, false);
	CHECK(pio_in(0, got, 2, 2048));
	CHECK(pio_in(0, got + 4096, 1, 1024));
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);
	CHECK_EQ(rig_irq_rises(r, 0), rises + 3);
	file_read(fd_a, 500 * 512, want, sizeof(want));
	CHECK(memcmp(got, want, sizeof(want)) == 0);

	/* WRITE MULTIPLE, 6 sectors: blocks of 4 and 2. */
	fill_random(got, 6 * 512, 77);
	ata_cmd(0, 0, 0xc5, 0, 6, 600, false);
	CHECK_EQ(wait_ack(0) & (S_DRQ | S_ERR), S_DRQ);
	data_out(0, got, 2048);
	CHECK_EQ(wait_ack(0) & (S_DRQ | S_ERR), S_DRQ);
	data_out(0, got + 2048, 1024);
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);
	file_read(fd_a, 600 * 512, want, 6 * 512);
	CHECK(memcmp(got, want, 6 * 512) == 0);
	ata_cmd(0, 0, 0xc6, 0, 0, 0, false);	/* off again */
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);
}

static void test_pio_write(void)
{
	uint8_t data[5 * 512], back[5 * 512];
	unsigned rises = rig_irq_rises(r, 0);

	fill_random(data, sizeof(data), 5);
	ata_cmd(0, 0, 0x30, 0, 5, 200, false);
	for (unsigned s = 0; s < 5; s++) {
		uint8_t st = s ? wait_ack(0) : rig_wait(r, 0);

		CHECK_EQ(st & (S_DRQ | S_ERR), S_DRQ);
		data_out(0, data + s * 512, 512);
	}
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);
	/* No interrupt before the first block, one after each block. */
	CHECK_EQ(rig_irq_rises(r, 0), rises + 5);
	file_read(fd_a, 200 * 512, back, sizeof(back));
	CHECK(memcmp(data, back, sizeof(back)) == 0);

	/* The data reads back through the device too. */
	ata_cmd(0, 0, 0x20, 0, 5, 200, false);
	CHECK(pio_in(0, back, 5, 512));
	CHECK(memcmp(data, back, sizeof(back)) == 0);
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);

	/* FLUSH CACHE and FLUSH CACHE EXT. */
	ata_cmd(0, 0, 0xe7, 0, 0, 0, false);
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);
	ata_cmd(0, 0, 0xea, 0, 0, 0, false);
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);

	/* Write cache off: write-through, same data on the file. */
	ata_cmd(0, 0, 0xef, 0x82, 0, 0, false);
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);
	fill_random(data, 512, 6);
	ata_cmd(0, 0, 0x30, 0, 1, 210, false);
	CHECK_EQ(rig_wait(r, 0) & S_DRQ, S_DRQ);
	data_out(0, data, 512);
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);
	file_read(fd_a, 210 * 512, back, 512);
	CHECK(memcmp(data, back, 512) == 0);
	ata_cmd(0, 0, 0xef, 0x02, 0, 0, false);
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);
}

static void test_lba48(void)
{
	const uint64_t lba = 300000000ull;	/* beyond 28 bits */
	uint8_t data[2 * 512], back[2 * 512];

	fill_random(data, sizeof(data), 48);
	ata_cmd(0, 1, 0x34, 0, 2, lba, true);
	for (unsigned s = 0; s < 2; s++) {
		CHECK_EQ((s ? wait_ack(0) : rig_wait(r, 0)) & (S_DRQ | S_ERR),
			 S_DRQ);
		data_out(0, data + s * 512, 512);
	}
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);
	file_read(fd_b, lba * 512, back, sizeof(back));
	CHECK(memcmp(data, back, sizeof(back)) == 0);

	memset(back, 0, sizeof(back));
	ata_cmd(0, 1, 0x24, 0, 2, lba, true);
	CHECK(pio_in(0, back, 2, 512));
	CHECK(memcmp(data, back, sizeof(back)) == 0);
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);

	/* HOB: the previous content of each register reads back. */
	rig_select(r, 0, 1, 0x40);
	rig_outb(r, 0x1f3, 0x12);
	rig_outb(r, 0x1f3, 0x34);
	rig_outb(r, 0x3f6, 0x80);
	CHECK_EQ(rig_inb(r, 0x1f3), 0x12);
	rig_outb(r, 0x3f6, 0x00);
	CHECK_EQ(rig_inb(r, 0x1f3), 0x34);

	/* Past the end of the disk, in 48-bit terms: IDNF. */
	ata_cmd(0, 1, 0x24, 0, 1, DISK_B_SECTORS, true);
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC | S_ERR);
	CHECK_EQ(error_reg(0), 0x10);
}

static void test_chs(void)
{
	uint8_t got[512], want[512];
	uint16_t c = 0x1f0;

	/* INITIALIZE DEVICE PARAMETERS: 16 heads, 63 sectors/track. */
	rig_select(r, 0, 0, 15);
	rig_outb(r, c + 2, 63);
	rig_outb(r, c + 7, 0x91);
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);

	/* C/H/S = 1/2/3 is LBA (1 * 16 + 2) * 63 + 2 = 1136. */
	rig_select(r, 0, 0, 2);
	rig_outb(r, c + 2, 1);
	rig_outb(r, c + 3, 3);
	rig_outb(r, c + 4, 1);
	rig_outb(r, c + 5, 0);
	rig_outb(r, c + 7, 0x20);
	CHECK(pio_in(0, got, 1, 512));
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);
	file_read(fd_a, 1136 * 512, want, 512);
	CHECK(memcmp(got, want, 512) == 0);

	/* Sector 0 does not exist in CHS: IDNF. */
	rig_outb(r, c + 3, 0);
	rig_outb(r, c + 7, 0x20);
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC | S_ERR);
	CHECK_EQ(error_reg(0), 0x10);
}

static void test_errors(void)
{
	unsigned rises = rig_irq_rises(r, 0);

	/* An unknown command: ABRT, with an interrupt. */
	ata_cmd(0, 0, 0xff, 0, 0, 0, false);
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC | S_ERR);
	CHECK_EQ(error_reg(0), 0x04);
	CHECK_EQ(rig_irq_rises(r, 0), rises + 1);
	/* NOP: always aborted. */
	ata_cmd(0, 0, 0x00, 0, 0, 0, false);
	CHECK_EQ(wait_ack(0) & S_ERR, S_ERR);
	/* DEVICE RESET is a PACKET command: aborted on a disk. */
	ata_cmd(0, 0, 0x08, 0, 0, 0, false);
	CHECK_EQ(wait_ack(0) & S_ERR, S_ERR);

	/* Out of range: the last sector plus one. */
	ata_cmd(0, 0, 0x20, 0, 2, DISK_A_SECTORS - 1, false);
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC | S_ERR);
	CHECK_EQ(error_reg(0), 0x10);
	CHECK_EQ(rig_inb(r, 0x1f3), (uint8_t)DISK_A_SECTORS);
	CHECK_EQ(rig_inb(r, 0x1f4), (uint8_t)(DISK_A_SECTORS >> 8));
	ata_cmd(0, 0, 0xc8, 0, 1, 0x0fffffff, false);
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC | S_ERR);
	CHECK_EQ(error_reg(0), 0x10);
	ata_cmd(0, 0, 0x40, 0, 1, DISK_A_SECTORS, false);	/* VERIFY */
	CHECK_EQ(wait_ack(0) & S_ERR, S_ERR);
	ata_cmd(0, 0, 0x40, 0, 8, 16, false);
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);

	/* SET FEATURES: a transfer mode we have, one we do not. */
	ata_cmd(0, 0, 0xef, 0x03, 0x22, 0, false);	/* MWDMA2 */
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);
	ata_cmd(0, 0, 0xef, 0x03, 0x50, 0, false);
	CHECK_EQ(wait_ack(0) & S_ERR, S_ERR);
	ata_cmd(0, 0, 0xef, 0x99, 0, 0, false);
	CHECK_EQ(wait_ack(0) & S_ERR, S_ERR);
	{
		uint16_t id[256];

		CHECK(identify(0, 0, 0xec, id));
		CHECK_EQ(id[63], 0x0407);	/* MWDMA2 selected */
		CHECK_EQ(id[88] & 0xff00, 0);
	}
	/* CHECK POWER MODE: active. */
	ata_cmd(0, 0, 0xe5, 0, 0, 0, false);
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);
	CHECK_EQ(rig_inb(r, 0x1f2), 0xff);
	/* IDLE IMMEDIATE, STANDBY IMMEDIATE: no-ops. */
	ata_cmd(0, 0, 0xe1, 0, 0, 0, false);
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);
	ata_cmd(0, 0, 0xe0, 0, 0, 0, false);
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);

	/* Data port with no DRQ: harmless. */
	CHECK_EQ(rig_in(r, 0x1f0, 2), 0);
	rig_out(r, 0x1f0, 0x1234, 2);
	CHECK_EQ(rig_inb(r, 0x1f7), S_DRDY | S_DSC);
}

static void test_nien(void)
{
	uint16_t id[256];
	unsigned rises = rig_irq_rises(r, 0);

	rig_outb(r, 0x3f6, 0x02);
	CHECK(identify(0, 0, 0xec, id));
	CHECK_EQ(rig_irq_rises(r, 0), rises);
	/* A pending interrupt shows once nIEN is cleared. */
	ata_cmd(0, 0, 0xe5, 0, 0, 0, false);
	rig_wait(r, 0);
	CHECK_EQ(rig_irq_level(r, 0), 0);
	rig_outb(r, 0x3f6, 0x00);
	CHECK_EQ(rig_irq_level(r, 0), 1);
	CHECK_EQ(rig_irq_rises(r, 0), rises + 1);
	rig_inb(r, 0x1f7);
	CHECK_EQ(rig_irq_level(r, 0), 0);
}

static void check_signature(unsigned ch, uint8_t mid, uint8_t high)
{
	uint16_t c = rig_cmd(ch);

	CHECK_EQ(rig_inb(r, c + 2), 1);
	CHECK_EQ(rig_inb(r, c + 3), 1);
	CHECK_EQ(rig_inb(r, c + 4), mid);
	CHECK_EQ(rig_inb(r, c + 5), high);
	CHECK_EQ(rig_inb(r, c + 1), 0x01);	/* diagnostic: passed */
}

static void test_srst(void)
{
	unsigned rises = rig_irq_rises(r, 0);

	/* SeaBIOS's ata_reset: SRST with nIEN, then nIEN alone. */
	rig_outb(r, 0x3f6, 0x0e);
	CHECK_EQ(rig_inb(r, 0x3f6) & S_BSY, S_BSY);
	rig_outb(r, 0x3f6, 0x0a);
	CHECK_EQ(rig_wait(r, 0), S_DRDY | S_DSC);
	CHECK_EQ(rig_inb(r, 0x1f6) & 0x10, 0);	/* device 0 selected */
	check_signature(0, 0x00, 0x00);
	rig_select(r, 0, 1, 0);
	CHECK_EQ(rig_wait(r, 0), S_DRDY | S_DSC);
	check_signature(0, 0x00, 0x00);
	CHECK_EQ(rig_irq_rises(r, 0), rises);	/* no interrupt */
	rig_outb(r, 0x3f6, 0x00);

	/* The CD-ROM: PACKET signature, status 00h; absent slave: 00h. */
	rig_outb(r, 0x376, 0x06);
	rig_outb(r, 0x376, 0x02);
	CHECK_EQ(rig_wait(r, 1), 0x00);
	check_signature(1, 0x14, 0xeb);
	rig_select(r, 1, 1, 0);
	CHECK_EQ(rig_inb(r, 0x177), 0x00);
	CHECK_EQ(rig_inb(r, 0x376), 0x00);
	/* SeaBIOS's presence check: the registers still latch... */
	rig_outb(r, 0x172, 0x55);
	rig_outb(r, 0x173, 0xaa);
	CHECK_EQ(rig_inb(r, 0x172), 0x55);
	CHECK_EQ(rig_inb(r, 0x173), 0xaa);
	CHECK_EQ(rig_inb(r, 0x176), 0xb0);
	/* ...but the absent device runs no command. */
	rig_outb(r, 0x177, 0xa1);
	CHECK_EQ(rig_inb(r, 0x376), 0x00);
	CHECK_EQ(rig_inb(r, 0x177), 0x00);
	rig_outb(r, 0x376, 0x00);

	/* EXECUTE DEVICE DIAGNOSTIC: both reset, device 0 interrupts. */
	rises = rig_irq_rises(r, 0);
	rig_select(r, 0, 1, 0);
	rig_outb(r, 0x1f7, 0x90);
	CHECK_EQ(rig_wait(r, 0), S_DRDY | S_DSC);
	CHECK_EQ(rig_irq_rises(r, 0), rises + 1);
	CHECK_EQ(rig_inb(r, 0x1f6) & 0x10, 0);
	check_signature(0, 0, 0);
	rig_inb(r, 0x1f7);
}

static void test_dma_read(void)
{
	static uint8_t want[16 * 512];
	uint8_t *m1 = gpa_to_hva(&r->mem, 0x100000, 4096);
	uint8_t *m2 = gpa_to_hva(&r->mem, 0x200000, 4096);
	unsigned rises = rig_irq_rises(r, 0);
	uint8_t bm;

	memset(m1, 0, 4096);
	memset(m2, 0, 4096);
	rig_prd(r, 0x8000, 0, 0x100000, 4096, false);
	rig_prd(r, 0x8000, 1, 0x200000, 4096, true);
	rig_bm_setup(r, 0, 0x8000, true);
	ata_cmd(0, 0, 0xc8, 0, 16, 10, false);
	rig_bm_start(r, 0, true);
	bm = rig_wait_bm(r, 0);
	CHECK_EQ(bm & 0x07, 0x04);		/* interrupt, exact: inactive */
	rig_bm_stop(r, 0);
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);
	CHECK_EQ(rig_irq_rises(r, 0), rises + 1);
	file_read(fd_a, 10 * 512, want, sizeof(want));
	CHECK(memcmp(m1, want, 4096) == 0);
	CHECK(memcmp(m2, want + 4096, 4096) == 0);

	/* The bus master started before the command (also allowed), and a
	 * PRD list larger than the transfer: Active stays set. */
	memset(m1, 0, 4096);
	rig_prd(r, 0x8000, 0, 0x100000, 0, true);	/* 0 = 64 KiB */
	rig_bm_setup(r, 0, 0x8000, true);
	rig_bm_start(r, 0, true);
	ata_cmd(0, 0, 0x25, 0, 8, 40, true);		/* READ DMA EXT */
	bm = rig_wait_bm(r, 0);
	CHECK_EQ(bm & 0x07, 0x05);
	rig_bm_stop(r, 0);
	CHECK_EQ(rig_inb(r, RIG_BM + 2) & 0x01, 0);	/* stop clears it */
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);
	file_read(fd_a, 40 * 512, want, 4096);
	CHECK(memcmp(m1, want, 4096) == 0);
	rig_outb(r, RIG_BM + 2, 0x04);			/* write-1-clear */
	CHECK_EQ(rig_inb(r, RIG_BM + 2) & 0x04, 0);
}

static void test_dma_write(void)
{
	uint8_t *m = gpa_to_hva(&r->mem, 0x300000, 3 * 512);
	uint8_t back[3 * 512];

	fill_random(m, 3 * 512, 99);
	/* Odd-sized PRD regions: 1000 + 536 bytes. */
	rig_prd(r, 0x8000, 0, 0x300000, 1000, false);
	rig_prd(r, 0x8000, 1, 0x300000 + 1000, 536, true);
	rig_bm_setup(r, 0, 0x8000, false);
	ata_cmd(0, 0, 0xca, 0, 3, 3000, false);
	rig_bm_start(r, 0, false);
	CHECK_EQ(rig_wait_bm(r, 0) & 0x07, 0x04);
	rig_bm_stop(r, 0);
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);
	file_read(fd_a, 3000 * 512, back, sizeof(back));
	CHECK(memcmp(m, back, sizeof(back)) == 0);

	/* WRITE DMA EXT to the LBA48 disk. */
	fill_random(m, 512, 100);
	rig_prd(r, 0x8000, 0, 0x300000, 512, true);
	rig_bm_setup(r, 0, 0x8000, false);
	ata_cmd(0, 1, 0x35, 0, 1, 400000000ull, true);
	rig_bm_start(r, 0, false);
	CHECK_EQ(rig_wait_bm(r, 0) & 0x07, 0x04);
	rig_bm_stop(r, 0);
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);
	file_read(fd_b, 400000000ull * 512, back, 512);
	CHECK(memcmp(m, back, 512) == 0);
}

/* A PRD list of 600 scattered 512-byte regions: several block requests. */
static void test_dma_scatter(void)
{
	static uint8_t want[600 * 512];
	bool same = true;

	for (unsigned i = 0; i < 600; i++) {
		memset(gpa_to_hva(&r->mem, 0x400000 + i * 1024, 512), 0, 512);
		rig_prd(r, 0x10000, i, 0x400000 + i * 1024, 512, i == 599);
	}
	rig_bm_setup(r, 0, 0x10000, true);
	ata_cmd(0, 0, 0x25, 0, 600, 7000 - 600, true);
	rig_bm_start(r, 0, true);
	CHECK_EQ(rig_wait_bm(r, 0) & 0x07, 0x04);
	rig_bm_stop(r, 0);
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);
	file_read(fd_a, (7000 - 600) * 512ull, want, sizeof(want));
	for (unsigned i = 0; i < 600; i++)
		same &= memcmp(gpa_to_hva(&r->mem, 0x400000 + i * 1024, 512),
			       want + i * 512, 512) == 0;
	CHECK(same);
}

static void test_dma_bad_prd(void)
{
	uint16_t id[256];

	/* A region outside guest RAM: bus master error, drive error. */
	rig_prd(r, 0x8000, 0, 0x100000, 512, false);
	rig_prd(r, 0x8000, 1, 0xf0000000u, 4096, true);
	rig_bm_setup(r, 0, 0x8000, true);
	ata_cmd(0, 0, 0xc8, 0, 9, 0, false);
	rig_bm_start(r, 0, true);
	CHECK_EQ(rig_wait_bm(r, 0) & 0x07, 0x06);
	rig_bm_stop(r, 0);
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC | S_ERR);
	CHECK_EQ(error_reg(0), 0x04);

	/* A region running off the end of RAM. */
	rig_prd(r, 0x8000, 0, RIG_RAM - 512, 4096, true);
	rig_bm_setup(r, 0, 0x8000, false);
	ata_cmd(0, 0, 0xca, 0, 8, 0, false);
	rig_bm_start(r, 0, false);
	CHECK_EQ(rig_wait_bm(r, 0) & 0x07, 0x06);
	rig_bm_stop(r, 0);
	CHECK_EQ(wait_ack(0) & S_ERR, S_ERR);

	/* The PRD table itself outside RAM. */
	rig_bm_setup(r, 0, 0x80000000u, true);
	ata_cmd(0, 0, 0xc8, 0, 1, 0, false);
	rig_bm_start(r, 0, true);
	CHECK_EQ(rig_wait_bm(r, 0) & 0x07, 0x06);
	rig_bm_stop(r, 0);
	CHECK_EQ(wait_ack(0) & S_ERR, S_ERR);

	/* The controller still works. */
	rig_outb(r, RIG_BM + 2, 0x06);
	CHECK(identify(0, 0, 0xec, id));
	CHECK_EQ(id[0], 0x0040);
}

/* 8192 descriptors without an end bit, covering less than the transfer:
 * the walk stops there, Active and Interrupt both clear (PRD short). */
static void test_dma_no_eot(void)
{
	static uint8_t want[16384];

	for (unsigned i = 0; i < 8192; i++)
		rig_prd(r, 0x20000, i, 0x500000 + 2 * i, 2, false);
	memset(gpa_to_hva(&r->mem, 0x500000, 16384), 0, 16384);
	rig_bm_setup(r, 0, 0x20000, true);
	ata_cmd(0, 0, 0xc8, 0, 64, 0, false);
	rig_bm_start(r, 0, true);
	CHECK_EQ(rig_wait_bm(r, 0) & 0x07, 0x00);
	rig_bm_stop(r, 0);
	CHECK_EQ(rig_wait(r, 0) & (S_BSY | S_DRQ), 0);
	file_read(fd_a, 0, want, sizeof(want));
	CHECK(memcmp(gpa_to_hva(&r->mem, 0x500000, 16384), want,
		     sizeof(want)) == 0);

	/* No bus mastering in the command register: nothing moves until
	 * it is enabled, and a reset clears the command. */
	rig_cfg_write(r, PCI_COMMAND, 2, PCI_COMMAND_IO);
	rig_prd(r, 0x8000, 0, 0x100000, 512, true);
	rig_bm_setup(r, 0, 0x8000, true);
	ata_cmd(0, 0, 0xc8, 0, 1, 0, false);
	rig_bm_start(r, 0, true);
	usleep(10000);
	CHECK_EQ(rig_inb(r, RIG_BM + 2) & 0x07, 0x01);
	CHECK_EQ(rig_inb(r, 0x3f6) & S_DRQ, S_DRQ);
	rig_bm_stop(r, 0);
	rig_cfg_write(r, PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MASTER);
	rig_outb(r, 0x3f6, 0x04);
	rig_outb(r, 0x3f6, 0x00);
	CHECK_EQ(rig_wait(r, 0), S_DRDY | S_DSC);
}

/* Only a primary master: the secondary channel floats. */
static void test_floating_channel(void)
{
	struct ide_rig r2;
	struct ide_drive_config drives[4] = { { disk_a, false } };

	rig_setup(&r2, drives);
	CHECK_EQ(rig_inb(&r2, 0x177), 0xff);
	CHECK_EQ(rig_inb(&r2, 0x376), 0xff);
	CHECK_EQ(rig_inb(&r2, 0x1f7), S_DRDY | S_DSC);
	rig_outb(&r2, 0x1f6, 0xb0);
	CHECK_EQ(rig_inb(&r2, 0x1f7), 0x00);
	rig_teardown(&r2);
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

/* In the middle of a 20-sector PIO read (5 sectors and 100 bytes of the
 * sixth moved): saved, loaded into a fresh controller with the same drives
 * and saved again, equal; the read then goes on in both and delivers the
 * right remaining sectors. */
static void test_save_load(void)
{
	static uint8_t got[20 * 512], got2[20 * 512], want[20 * 512];
	struct ide_drive_config drives[4] = {
		{ disk_a, false }, { disk_b, false }, { NULL, true },
		{ NULL, false },
	};
	struct ide_rig r2, *orig = r;
	GVariant *s1, *s2;
	char err[256] = "";
	int ret;

	file_read(fd_a, 200 * 512, want, sizeof(want));
	ata_cmd(0, 0, 0x20, 0, 20, 200, false);
	CHECK(pio_in(0, got, 5, 512));
	CHECK_EQ(wait_ack(0) & (S_DRQ | S_ERR), S_DRQ);
	data_in(0, got + 5 * 512, 100, false);
	s1 = ide_save(r);
	CHECK(s1 != NULL);
	if (!s1)
		return;
	CHECK(g_variant_is_of_type(s1, G_VARIANT_TYPE(PIIX_IDE_STATE_TYPE)));

	rig_setup(&r2, drives);
	pthread_mutex_lock(&r2.lock);
	ret = piix_ide_device_ops.load(r2.ide, 1, s1, err, sizeof(err));
	pthread_mutex_unlock(&r2.lock);
	CHECK_EQ(ret, 0);
	if (ret)
		fprintf(stderr, "  (%s)\n", err);
	s2 = ide_save(&r2);
	CHECK(s2 && g_variant_equal(s1, s2));
	CHECK_EQ(rig_irq_level(&r2, 0), rig_irq_level(r, 0));

	/* Both go on: the rest of sector 6, then sectors 7-20. */
	memcpy(got2, got, 5 * 512 + 100);
	data_in(0, got + 5 * 512 + 100, 412, false);
	CHECK(pio_in(0, got + 6 * 512, 14, 512));
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);
	r = &r2;
	data_in(0, got2 + 5 * 512 + 100, 412, false);
	CHECK(pio_in(0, got2 + 6 * 512, 14, 512));
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);
	r = orig;
	CHECK(memcmp(got, want, sizeof(want)) == 0);
	CHECK(memcmp(got2, want, sizeof(want)) == 0);

	/* Refused, and the controller unchanged. */
	pthread_mutex_lock(&r2.lock);
	state_refused(&piix_ide_device_ops, r2.ide, 1, g_variant_new("(u)", 1),
		      "piix-ide: state is of type");
	state_refused(&piix_ide_device_ops, r2.ide, 2, g_variant_ref(s1),
		      "piix-ide: state version 2 not supported");
	state_refused(&piix_ide_device_ops, r2.ide, 1,
		      state_with(s1, g_variant_new_uint32(5000), 4, 0, 7, 3, 1),
		      "piix-ide: drive 0 buffer position");
	state_refused(&piix_ide_device_ops, r2.ide, 1,
		      state_with(s1, g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, "ab", 2, 1),
				 4, 0, 7, 3, 0),
		      "piix-ide: drive 0 buffer position");
	state_refused(&piix_ide_device_ops, r2.ide, 1,
		      state_with(s1, g_variant_new_byte(9), 4, 0, 7, 3, 5),
		      "piix-ide: drive 0 data phase step 9");
	state_refused(&piix_ide_device_ops, r2.ide, 1,
		      state_with(s1, g_variant_new_uint64(DISK_A_SECTORS * 512ull + 512), 4, 0, 7, 3, 6),
		      "piix-ide: drive 0 medium transfer");
	state_refused(&piix_ide_device_ops, r2.ide, 1,
		      state_with(s1, g_variant_new_byte(1), 4, 0, 7, 4, 5),
		      "piix-ide: drive 0 was saved with a request in flight");
	state_refused(&piix_ide_device_ops, r2.ide, 1,
		      state_with(s1, g_variant_new_boolean(FALSE), 4, 0, 8, 0, 0),
		      "piix-ide: drive 1 was a");
	state_refused(&piix_ide_device_ops, r2.ide, 1,
		      state_with(s1, g_variant_new_uint64(1), 4, 1, 7, 0, 3),
		      "piix-ide: drive 2 had no medium");
	state_refused(&piix_ide_device_ops, r2.ide, 1,
		      state_with(s1, g_variant_new_uint16(0), 4, 0, 7, 2, 0),
		      "piix-ide: drive 0 settings");
	state_refused(&piix_ide_device_ops, r2.ide, 1,
		      state_with(s1, g_variant_new_byte(0x80), 2, 0, 4),
		      "piix-ide: channel 0 bus master");
	{
		GVariant *c0 = g_variant_get_child_value(s1, 0);
		gboolean level;

		g_variant_get_child(c0, 2, "b", &level);
		g_variant_unref(c0);
		state_refused(&piix_ide_device_ops, r2.ide, 1,
			      state_with(s1, g_variant_new_boolean(!level), 2, 0, 2),
			      "piix-ide: channel 0 IRQ level");
	}
	pthread_mutex_unlock(&r2.lock);
	g_variant_unref(s1);
	if (s2)
		g_variant_unref(s2);

	/* While a request is in flight (its completion waits for the lock),
	 * there is no state to save. */
	rig_select(r, 0, 0, 0x40);
	pthread_mutex_lock(&r->lock);
	io_write(r->pio, 0x1f2, 1, 1);
	io_write(r->pio, 0x1f3, 0, 1);
	io_write(r->pio, 0x1f4, 0, 1);
	io_write(r->pio, 0x1f5, 0, 1);
	io_write(r->pio, 0x1f7, 0x20, 1);
	CHECK(piix_ide_device_ops.save(r->ide) == NULL);
	pthread_mutex_unlock(&r->lock);
	CHECK(pio_in(0, got, 1, 512));
	CHECK_EQ(wait_ack(0), S_DRDY | S_DSC);
	rig_teardown(&r2);
}

int main(void)
{
	static uint8_t img[DISK_A_SECTORS * 512];
	struct blk_open_opts opts = { .format = BLK_FMT_RAW };
	char err[256];

	sandbox_test_threads(false);
	rig_tmpdir(dir);
	snprintf(path_a, sizeof(path_a), "%s/a.raw", dir);
	snprintf(path_b, sizeof(path_b), "%s/b.raw", dir);
	fd_a = open(path_a, O_RDWR | O_CREAT | O_EXCL, 0600);
	fd_b = open(path_b, O_RDWR | O_CREAT | O_EXCL, 0600);
	CHECK(fd_a >= 0 && fd_b >= 0);
	fill_random(img, sizeof(img), 1);
	CHECK_EQ(pwrite(fd_a, img, sizeof(img), 0), (ssize_t)sizeof(img));
	if (ftruncate(fd_b, (off_t)DISK_B_BYTES) < 0)
		SKIP("cannot make a sparse 200 GiB file in /tmp: %s",
		     strerror(errno));
	CHECK_EQ(blk_open(path_a, &opts, &disk_a, err, sizeof(err)), 0);
	CHECK_EQ(blk_open(path_b, &opts, &disk_b, err, sizeof(err)), 0);

	{
		struct ide_drive_config drives[4] = {
			{ disk_a, false }, { disk_b, false }, { NULL, true },
			{ NULL, false },
		};

		rig_setup(r, drives);
	}
	RUN_TEST(test_pci_config);
	RUN_TEST(test_identify);
	RUN_TEST(test_pio_read);
	RUN_TEST(test_multiple);
	RUN_TEST(test_pio_write);
	RUN_TEST(test_lba48);
	RUN_TEST(test_chs);
	RUN_TEST(test_errors);
	RUN_TEST(test_nien);
	RUN_TEST(test_srst);
	RUN_TEST(test_dma_read);
	RUN_TEST(test_dma_write);
	RUN_TEST(test_dma_scatter);
	RUN_TEST(test_dma_bad_prd);
	RUN_TEST(test_dma_no_eot);
	RUN_TEST(test_floating_channel);
	RUN_TEST(test_save_load);
	rig_teardown(r);

	blk_close(disk_a);
	blk_close(disk_b);
	close(fd_a);
	close(fd_b);
	unlink(path_a);
	unlink(path_b);
	rmdir(dir);
	return check_finish();
}
