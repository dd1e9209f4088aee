/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_ide.c - the PIIX3 IDE controller (vmm-core/devices/ide.c,
 * atapi.c) under a hostile driver: task file registers and ATA commands,
 * PIO data in and out, bus-master DMA with PRD tables in guest RAM, ATAPI
 * packets, device control (SRST, nIEN, HOB), PCI config (BAR4, command,
 * IDETIM decode), disc changes, and save -> load round trips.
 *
 * Drives: primary master a 64 KiB raw disk (rewritten before each input,
 * so runs do not depend on each other), primary slave a CD-ROM drive with
 * no disc, secondary master a CD-ROM drive holding a 64-sector disc,
 * secondary slave none.  Block requests run on the block layer's worker
 * threads; after every operation the target waits for them
 * (piix_ide_drain()), so a run is deterministic.
 *
 * Input: operations until it ends, each an opcode byte (modulo OP_COUNT)
 * and its arguments (bytes past the end read as 0):
 *   OP_OUT     sel, le32 value     a register write (see reg_port())
 *   OP_IN      sel                 a register read
 *   OP_TASK    ch, device, features, count, lbal, lbam, lbah, command
 *              the task file, then the command (a device select first)
 *   OP_PIO_IN  ch, le16 n          up to n data reads (bit 15: 32-bit)
 *                                  while DRQ is set
 *   OP_PIO_OUT ch, le16 n, seed    up to n 16-bit data writes (a pattern)
 *   OP_PACKET  ch, features, le16 byte count limit, 12 bytes
 *              PACKET (0xa0) and the command packet through the data port
 *   OP_PRD     table (0-7), index, le32 address, le16 count, flags
 *              a PRD entry (bit 0 of flags: end of table)
 *   OP_BM      ch, table, command  PRD address, status cleared, command
 *   OP_MEM     le32 gpa, len, bytes   guest RAM contents (DMA sources)
 *   OP_CFG     which, le32 value   PCI config: command, BAR4, IDETIM x 2,
 *                                  SIDETIM
 *   OP_MEDIA                       the host ejects or inserts the disc
 *   OP_SAVE                        save, load into a fresh controller
 * Checked (abort on failure): once the requests are drained the
 * controller saves (nothing left in flight), and every save loads into a
 * fresh controller with the same drives.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "fuzz.h"
#include "fuzz_input.h"
#include "fuzzlib.h"

#include "block/block.h"
#include "bus.h"
#include "devices/ide.h"
#include "devices/pci.h"
#include "log.h"
#include "mem.h"

#define FUZZ_RAM	(1u << 20)
#define BM_BASE		0xc000u
#define PRD_BASE	0x1000u		/* 8 tables of 32 entries */
#define BUF_BASE	0x10000u
#define DISK_BYTES	(64u << 10)
#define DISC_SECTORS	64u
#define DISC_POS	2		/* secondary master */

enum { OP_OUT, OP_IN, OP_TASK, OP_PIO_IN, OP_PIO_OUT, OP_PACKET, OP_PRD,
       OP_BM, OP_MEM, OP_CFG, OP_MEDIA, OP_SAVE, OP_COUNT };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct guest_mem mem;
static struct bus *pio, *mmio;
static struct pci_host *host;
static struct blk *disk, *disc;
static bool disc_in;
static uint8_t disk_image[DISK_BYTES];
static bool ready;

const char fuzz_target[] = "fuzz_ide";

static void set_irq(void *opaque, unsigned gsi, int level)
{
}

static struct blk *make_image(const char *dir, const char *name, size_t len,
			      bool ro)
{
	struct blk_open_opts o = { .format = BLK_FMT_RAW, .readonly = ro };
	char path[256], err[256];
	uint8_t *b = malloc(len);
	struct blk *blk;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || !b)
		fuzz_fail("cannot make an image");
	for (size_t i = 0; i < len; i++)	/* sector numbers, readable */
		b[i] = (uint8_t)((i & 1) ? i >> 11 : i >> 9);
	if (write(fd, b, len) != (ssize_t)len)
		fuzz_fail("cannot write an image");
	close(fd);
	free(b);
	if (blk_open(path, &o, &blk, err, sizeof(err)) != 0)
		fuzz_fail_with(err, "cannot open an image");
	unlink(path);
	return blk;
}

static void init_once(void)
{
	char dir[] = "/tmp/fuzz-ide-XXXXXX";

	if (ready)
		return;
	log_set_level(LOG_ERROR);
	fuzz_ram(&mem, FUZZ_RAM);
	host = fuzz_pci_host(&pio, &mmio, NULL, NULL);
	if (!mkdtemp(dir))
		fuzz_fail("cannot make a temporary directory");
	disk = make_image(dir, "disk.raw", DISK_BYTES, false);
	disc = make_image(dir, "disc.iso", DISC_SECTORS * 2048u, true);
	rmdir(dir);
	for (size_t i = 0; i < DISK_BYTES; i++)
		disk_image[i] = (uint8_t)((i & 1) ? i >> 11 : i >> 9);
	ready = true;
}

/* A controller with the drives above (the disc as it is now). */
static struct piix_ide *ide_new(void)
{
	struct piix_ide_config cfg = {
		.pci = host, .devfn = PIIX_IDE_DEVFN, .pio = pio, .mem = &mem,
		.lock = &lock,
		.irq = { { set_irq, NULL, 14 }, { set_irq, NULL, 15 } },
		.drive = { { disk, false }, { NULL, true },
			   { disc_in ? disc : NULL, true }, { NULL, false } },
	};
	char err[256];
	struct piix_ide *ide = piix_ide_new(&cfg, err, sizeof(err));

	if (!ide)
		fuzz_fail_with(err, "cannot build the controller");
	pci_config_write(host, 0, PIIX_IDE_DEVFN, PCI_BASE_ADDRESS_0 + 16, 4,
			 BM_BASE);
	pci_config_write(host, 0, PIIX_IDE_DEVFN, PCI_COMMAND, 2,
			 PCI_COMMAND_IO | PCI_COMMAND_MASTER);
	return ide;
}

/* Drain, then free.  Device lock not held. */
static void ide_free(struct piix_ide *ide)
{
	piix_ide_drain(ide);
	pthread_mutex_lock(&lock);
	piix_ide_free(ide);
	pthread_mutex_unlock(&lock);
}

/* Drained (lock not held): save, which must work now, load into a fresh
 * controller, which must take it. */
static struct piix_ide *save_load(struct piix_ide *ide)
{
	const struct device_ops *ops = &piix_ide_device_ops;
	uint32_t cfg[18];
	GVariant *s;

	pthread_mutex_lock(&lock);
	s = fuzz_save(ops, ide, "save failed with every request drained");
	for (unsigned i = 0; i < 18; i++)	/* the PCI host's part */
		cfg[i] = pci_config_read(host, 0, PIIX_IDE_DEVFN, 4 * i, 4);
	pthread_mutex_unlock(&lock);
	ide_free(ide);
	ide = ide_new();
	pthread_mutex_lock(&lock);
	pci_config_write(host, 0, PIIX_IDE_DEVFN, PCI_BASE_ADDRESS_0 + 16, 4,
			 cfg[PCI_BASE_ADDRESS_0 / 4 + 4]);
	pci_config_write(host, 0, PIIX_IDE_DEVFN, PCI_COMMAND, 2,
			 cfg[PCI_COMMAND / 4] & 0xffff);
	pci_config_write(host, 0, PIIX_IDE_DEVFN, 0x40, 4, cfg[0x40 / 4]);
	pci_config_write(host, 0, PIIX_IDE_DEVFN, 0x44, 1, cfg[0x44 / 4]);
	fuzz_load(ops, ide, s);
	pthread_mutex_unlock(&lock);
	g_variant_unref(s);
	return ide;
}

static uint16_t cmd_base(unsigned ch)
{
	return ch & 1 ? 0x170 : 0x1f0;
}

/* sel bit 7: secondary channel; bits 3:0: 0-7 the command block, 8 device
 * control / alternate status, 9 BM command, 10 BM status, 11 BM PRD
 * address (32-bit), 12 the data port 32-bit, else the data port 16-bit.
 * Returns the port, and the size in *size. */
static uint16_t reg_port(uint8_t sel, unsigned *size)
{
	unsigned ch = sel >> 7, r = sel & 15;

	*size = 1;
	if (r < 8)
		return (uint16_t)(cmd_base(ch) + r);
	switch (r) {
	case 8: return ch ? 0x376 : 0x3f6;
	case 9: return (uint16_t)(BM_BASE + 8 * ch);
	case 10: return (uint16_t)(BM_BASE + 8 * ch + 2);
	case 11: *size = 4; return (uint16_t)(BM_BASE + 8 * ch + 4);
	case 12: *size = 4; return cmd_base(ch);
	}
	*size = 2;
	return cmd_base(ch);
}

static void one_op(struct piix_ide **ide, struct in *in)
{
	static const uint16_t cfg_off[5] = { PCI_COMMAND, PCI_BASE_ADDRESS_0 + 16,
					     0x40, 0x42, 0x44 };
	static const uint8_t cfg_size[5] = { 2, 4, 2, 2, 1 };
	uint8_t buf[256], ch, b;
	unsigned size, n;
	uint16_t port;
	uint32_t v;

	pthread_mutex_lock(&lock);
	switch (in_u8(in) % OP_COUNT) {
	case OP_OUT:
		port = reg_port(in_u8(in), &size);
		bus_write(pio, port, in_u32(in), size, NULL);
		break;
	case OP_IN:
		port = reg_port(in_u8(in), &size);
		bus_read(pio, port, size, NULL);
		break;
	case OP_TASK: {
		uint8_t t[7];

		ch = in_u8(in) & 1;
		in_bytes(in, t, 7);
		port = cmd_base(ch);
		bus_write(pio, port + 6, t[0], 1, NULL);
		for (unsigned i = 0; i < 5; i++)
			bus_write(pio, port + 1 + i, t[1 + i], 1, NULL);
		bus_write(pio, port + 7, t[6], 1, NULL);
		break;
	}
	case OP_PIO_IN:
		ch = in_u8(in) & 1;
		n = in_u16(in);
		size = n & 0x8000 ? 4 : 2;
		n &= 0x7fff;
		for (unsigned i = 0; i < n; i++) {
			if (!(bus_read(pio, ch ? 0x376 : 0x3f6, 1, NULL) & 0x08))
				break;
			bus_read(pio, cmd_base(ch), size, NULL);
		}
		break;
	case OP_PIO_OUT:
		ch = in_u8(in) & 1;
		n = in_u16(in) & 0x7fff;
		b = in_u8(in);
		for (unsigned i = 0; i < n; i++) {
			if (!(bus_read(pio, ch ? 0x376 : 0x3f6, 1, NULL) & 0x08))
				break;
			bus_write(pio, cmd_base(ch), (uint16_t)(i * 0x0101 + b), 2,
				  NULL);
		}
		break;
	case OP_PACKET:
		ch = in_u8(in) & 1;
		port = cmd_base(ch);
		bus_write(pio, port + 1, in_u8(in), 1, NULL);
		bus_write(pio, port + 4, in_u8(in), 1, NULL);
		bus_write(pio, port + 5, in_u8(in), 1, NULL);
		bus_write(pio, port + 7, 0xa0, 1, NULL);
		in_bytes(in, buf, 12);
		for (unsigned i = 0; i < 12; i += 2)
			bus_write(pio, port, buf[i] | buf[i + 1] << 8, 2, NULL);
		break;
	case OP_PRD: {
		uint8_t t = in_u8(in) & 7, idx = in_u8(in) & 31, e[8];

		v = in_u32(in);
		memcpy(e, &v, 4);
		e[4] = in_u8(in);
		e[5] = in_u8(in);
		e[6] = 0;
		e[7] = in_u8(in) & 1 ? 0x80 : 0;
		guest_mem_write(&mem, PRD_BASE + 256u * t + 8u * idx, e, 8);
		break;
	}
	case OP_BM:
		ch = in_u8(in) & 1;
		b = in_u8(in) & 7;
		bus_write(pio, BM_BASE + 8 * ch + 4, PRD_BASE + 256u * b, 4, NULL);
		bus_write(pio, BM_BASE + 8 * ch + 2, 0x06, 1, NULL);
		bus_write(pio, BM_BASE + 8 * ch, in_u8(in), 1, NULL);
		break;
	case OP_MEM:
		v = in_u32(in) % FUZZ_RAM;
		n = in_u8(in);
		in_bytes(in, buf, n);
		guest_mem_write(&mem, v, buf, n);
		break;
	case OP_CFG:
		b = in_u8(in) % 5;
		v = in_u32(in);
		pci_config_write(host, 0, PIIX_IDE_DEVFN, cfg_off[b], cfg_size[b], v);
		break;
	case OP_MEDIA: {
		struct blk *old = NULL;

		if (piix_ide_change_media(*ide, DISC_POS, disc_in ? NULL : disc,
					  &old) == 0)
			disc_in = !disc_in;
		break;
	}
	case OP_SAVE:
		pthread_mutex_unlock(&lock);
		piix_ide_drain(*ide);
		*ide = save_load(*ide);
		return;
	}
	pthread_mutex_unlock(&lock);
	piix_ide_drain(*ide);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size, 0 };
	struct piix_ide *ide;

	init_once();
	for (unsigned i = 0; i < mem.nregions; i++)
		memset(mem.region[i].hva, 0, mem.region[i].size);
	if (blk_pwrite(disk, 0, disk_image, DISK_BYTES) != 0)
		fuzz_fail("cannot restore the disk");
	disc_in = true;
	pthread_mutex_lock(&lock);
	ide = ide_new();
	pthread_mutex_unlock(&lock);
	while (in_more(&in))
		one_op(&ide, &in);
	ide = save_load(ide);
	ide_free(ide);
	return 0;
}

/* ---- seeds: what ata_piix / ide-cd / SeaBIOS do, per feature ----------- */

static void s_task(struct seed *s, uint8_t ch, uint8_t dev, uint8_t feat,
		   uint8_t count, uint32_t lba, uint8_t cmd)
{
	put8(s, OP_TASK);
	put8(s, ch);
	put8(s, dev);
	put8(s, feat);
	put8(s, count);
	put8(s, (uint8_t)lba);
	put8(s, (uint8_t)(lba >> 8));
	put8(s, (uint8_t)(lba >> 16));
	put8(s, cmd);
}

static void s_pio_in(struct seed *s, uint8_t ch, uint16_t n)
{
	put8(s, OP_PIO_IN);
	put8(s, ch);
	put16(s, n);
}

static void s_pio_out(struct seed *s, uint8_t ch, uint16_t n, uint8_t seed)
{
	put8(s, OP_PIO_OUT);
	put8(s, ch);
	put16(s, n);
	put8(s, seed);
}

static void s_out(struct seed *s, uint8_t sel, uint32_t v)
{
	put8(s, OP_OUT);
	put8(s, sel);
	put32(s, v);
}

static void s_in(struct seed *s, uint8_t sel)
{
	put8(s, OP_IN);
	put8(s, sel);
}

static void s_prd(struct seed *s, uint8_t t, uint8_t idx, uint32_t addr,
		  uint16_t count, bool eot)
{
	put8(s, OP_PRD);
	put8(s, t);
	put8(s, idx);
	put32(s, addr);
	put16(s, count);
	put8(s, eot);
}

static void s_bm(struct seed *s, uint8_t ch, uint8_t t, uint8_t cmd)
{
	put8(s, OP_BM);
	put8(s, ch);
	put8(s, t);
	put8(s, cmd);
}

/* An ATAPI packet to the secondary master (PIO unless @dma). */
static void s_packet(struct seed *s, bool dma, uint16_t limit,
		     const uint8_t cdb[12])
{
	s_out(s, 0x86, 0xa0);
	put8(s, OP_PACKET);
	put8(s, 1);
	put8(s, dma);
	put16(s, limit);
	put(s, cdb, 12);
}

/* A packet, its data read by PIO, the status read. */
static void s_cdb_raw(struct seed *s, const uint8_t c[12])
{
	s_packet(s, false, 0xfffe, c);
	s_pio_in(s, 1, 0x7fff);
	s_in(s, 0x87);
}

#define S_CDB(s, ...) s_cdb_raw(s, (const uint8_t[12]){ __VA_ARGS__ })

void fuzz_make_seeds(void (*add)(const void *, size_t))
{
	static struct seed s;

	/* ATA PIO: IDENTIFY, READ SECTORS, SET MULTIPLE + READ/WRITE
	 * MULTIPLE, WRITE SECTORS, LBA48 READ EXT (HOB), CHS, VERIFY, SEEK,
	 * SET FEATURES, FLUSH, CHECK POWER MODE, SRST. */
	s.n = 0;
	s_task(&s, 0, 0xa0, 0, 0, 0, 0xec);
	s_pio_in(&s, 0, 256);
	s_task(&s, 0, 0xe0, 0, 4, 10, 0x20);
	s_pio_in(&s, 0, 1024);
	s_task(&s, 0, 0xe0, 0, 8, 0, 0xc6);
	s_task(&s, 0, 0xe0, 0, 16, 100, 0xc4);
	s_pio_in(&s, 0, 0x8000 | 2048);
	s_task(&s, 0, 0xe0, 0, 3, 20, 0x30);
	s_pio_out(&s, 0, 768, 0x5a);
	s_task(&s, 0, 0xe0, 0, 9, 30, 0xc5);
	s_pio_out(&s, 0, 9 * 256, 0x11);
	put8(&s, OP_SAVE);
	s_out(&s, 2, 0);			/* HOB count, LBA 47:24 */
	s_out(&s, 3, 0);
	s_out(&s, 4, 0);
	s_out(&s, 5, 0);
	s_task(&s, 0, 0xe0, 0, 2, 110, 0x24);
	s_out(&s, 8, 0x80);
	s_in(&s, 2);
	s_pio_in(&s, 0, 512);
	s_task(&s, 0, 0xe0, 0, 2, 127, 0x24);	/* past the end: IDNF */
	s_in(&s, 1);
	s_task(&s, 0, 0xa3, 0, 1, 0x0001, 0x20);	/* CHS 0/3/1 */
	s_pio_in(&s, 0, 256);
	s_task(&s, 0, 0xe0, 0, 8, 0, 0x40);
	s_task(&s, 0, 0xe0, 0, 0, 50, 0x70);
	s_task(&s, 0, 0xe0, 0x03, 0x46, 0, 0xef);	/* UDMA 6 */
	s_task(&s, 0, 0xe0, 0x82, 0, 0, 0xef);
	s_task(&s, 0, 0xe0, 0, 0, 0, 0xe7);
	s_task(&s, 0, 0xe0, 0, 0, 0, 0xe5);
	s_task(&s, 0, 0xa0, 0, 0, 0, 0x91);
	s_out(&s, 8, 0x06);
	s_out(&s, 8, 0x02);
	s_in(&s, 7);
	add(s.b, s.n);

	/* ATA DMA: READ DMA over three PRDs, WRITE DMA, READ DMA EXT, a
	 * short PRD table, the engine stopped early. */
	s.n = 0;
	s_prd(&s, 0, 0, BUF_BASE, 1024, false);
	s_prd(&s, 0, 1, BUF_BASE + 0x1000, 512, false);
	s_prd(&s, 0, 2, BUF_BASE + 0x2000, 0, true);	/* 0: 64 KiB */
	s_task(&s, 0, 0xe0, 0, 200, 0, 0xc8);
	s_bm(&s, 0, 0, 0x09);
	s_in(&s, 10);
	s_out(&s, 9, 0);
	s_in(&s, 7);
	s_prd(&s, 1, 0, BUF_BASE, 2048, true);
	s_task(&s, 0, 0xe0, 0, 4, 40, 0xca);
	s_bm(&s, 0, 1, 0x01);
	s_out(&s, 9, 0);
	put8(&s, OP_SAVE);
	s_task(&s, 0, 0xe0, 0, 8, 40, 0x25);
	s_bm(&s, 0, 1, 0x09);			/* table short of the count */
	s_in(&s, 10);
	s_out(&s, 9, 0);
	s_task(&s, 0, 0xe0, 0, 1, 0, 0xc8);
	put8(&s, OP_SAVE);			/* DMA waiting for the engine */
	s_bm(&s, 0, 1, 0x09);
	s_in(&s, 10);
	add(s.b, s.n);

	/* ATAPI: IDENTIFY PACKET, unit attention, sense, INQUIRY, READ
	 * CAPACITY, READ(10) PIO, READ(12) DMA, MODE SENSE(6/10), GET
	 * CONFIGURATION, READ TOC (formats 0, 1, 2), GET EVENT STATUS, disc
	 * and track info, MECHANISM STATUS, READ CD, lock, eject, media
	 * change, the empty drive. */
	s.n = 0;
	s_out(&s, 0x86, 0xa0);
	s_task(&s, 1, 0xa0, 0, 0, 0, 0xa1);
	s_pio_in(&s, 1, 256);
	S_CDB(&s, 0x00);
	S_CDB(&s, 0x03, 0, 0, 0, 18);
	S_CDB(&s, 0x12, 0, 0, 0, 36);
	S_CDB(&s, 0x25);
	S_CDB(&s, 0x28, 0, 0, 0, 0, 5, 0, 0, 3);
	s_prd(&s, 2, 0, BUF_BASE, 4096, false);
	s_prd(&s, 2, 1, BUF_BASE + 0x4000, 2048, true);
	{
		uint8_t c[12] = { 0xa8, 0, 0, 0, 0, 8, 0, 0, 0, 3 };

		s_packet(&s, true, 0xfffe, c);
		s_bm(&s, 1, 2, 0x09);
		s_in(&s, 0x8a);
		s_out(&s, 0x89, 0);
	}
	S_CDB(&s, 0x5a, 0, 0x2a, 0, 0, 0, 0, 1, 0);
	S_CDB(&s, 0x5a, 0, 0x3f, 0, 0, 0, 0, 1, 0);
	{
		uint8_t c[12] = { 0x1a, 0, 0x01, 0, 0xff };

		s_packet(&s, false, 0xfffe, c);
		s_pio_in(&s, 1, 0x7fff);
	}
	S_CDB(&s, 0x46, 0x02, 0, 0, 0, 0, 0, 4, 0);
	S_CDB(&s, 0x46, 0x00, 0, 0x1e, 0, 0, 0, 4, 0);
	S_CDB(&s, 0x43, 0, 0, 0, 0, 0, 0, 3, 0x24);
	S_CDB(&s, 0x43, 0, 0, 0, 0, 0, 0, 0, 0x0c, 0x40);
	S_CDB(&s, 0x43, 0x02, 0, 0, 0, 0, 0, 3, 0x24, 0x80);
	put8(&s, OP_SAVE);
	S_CDB(&s, 0x4a, 0x01, 0, 0, 0x10, 0, 0, 0, 8);
	S_CDB(&s, 0x51, 0, 0, 0, 0, 0, 0, 0, 34);
	S_CDB(&s, 0x52, 0x01, 0, 0, 0, 1, 0, 0, 36);
	S_CDB(&s, 0xbd, 0, 0, 0, 0, 0, 0, 0, 8);
	S_CDB(&s, 0xbe, 0, 0, 0, 0, 2, 0, 0, 1, 0x10);
	S_CDB(&s, 0xbb, 0, 0xff, 0xff);
	S_CDB(&s, 0x2b, 0, 0, 0, 0, 60);
	S_CDB(&s, 0x1e, 0, 0, 0, 1);	/* lock */
	put8(&s, OP_MEDIA);				/* refused: locked */
	S_CDB(&s, 0x4a, 0x01, 0, 0, 0x10, 0, 0, 0, 8);
	S_CDB(&s, 0x1e);		/* unlock */
	S_CDB(&s, 0x1b, 0, 0, 0, 2);	/* eject */
	put8(&s, OP_MEDIA);
	S_CDB(&s, 0x00);
	S_CDB(&s, 0x03, 0, 0, 0, 18);
	put8(&s, OP_SAVE);
	s_out(&s, 0x06, 0xb0);				/* the empty drive */
	{
		uint8_t c[12] = { 0x25 };

		put8(&s, OP_PACKET);
		put8(&s, 0);
		put8(&s, 0);
		put16(&s, 0xfffe);
		put(&s, c, 12);
		s_pio_in(&s, 0, 100);
	}
	add(s.b, s.n);

	/* Hostile: PRDs past RAM and crossing 64 KiB, DMA with no command,
	 * the wrong direction, a tiny byte count limit, a bad packet, the
	 * decode and bus master turned off, SRST mid-command. */
	s.n = 0;
	s_prd(&s, 3, 0, FUZZ_RAM - 512, 1024, true);
	s_task(&s, 0, 0xe0, 0, 2, 0, 0xc8);
	s_bm(&s, 0, 3, 0x09);
	s_in(&s, 10);
	s_bm(&s, 0, 3, 0x01);
	s_prd(&s, 4, 0, 0xffff0, 0x20, false);
	s_prd(&s, 4, 1, BUF_BASE, 0xffff, true);
	s_task(&s, 0, 0xe0, 0, 0, 0, 0xca);
	s_bm(&s, 0, 4, 0x01);
	{
		uint8_t c[12] = { 0x28, 0, 0, 0, 0, 1, 0, 0, 4 };

		s_out(&s, 0x86, 0xa0);
		put8(&s, OP_PACKET);
		put8(&s, 1);
		put8(&s, 0);
		put16(&s, 3);
		put(&s, c, 12);
		s_pio_in(&s, 1, 0x7fff);
	}
	S_CDB(&s, 0x28, 0, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff);
	S_CDB(&s, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
	s_task(&s, 0, 0xe0, 0, 4, 0, 0x20);
	s_out(&s, 8, 0x04);
	s_pio_in(&s, 0, 10);
	s_out(&s, 8, 0x00);
	put8(&s, OP_CFG); put8(&s, 2); put32(&s, 0);
	s_task(&s, 0, 0xe0, 0, 1, 0, 0x20);
	put8(&s, OP_CFG); put8(&s, 2); put32(&s, 0x8000);
	put8(&s, OP_CFG); put8(&s, 0); put32(&s, 1);
	s_task(&s, 0, 0xe0, 0, 1, 0, 0xc8);
	s_bm(&s, 0, 0, 0x09);
	put8(&s, OP_SAVE);
	add(s.b, s.n);
}
