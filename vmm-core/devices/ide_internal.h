/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/devices/ide_internal.h - state shared by the ATA core (ide.c)
 * and the ATAPI packet commands (atapi.c).  Not a public interface.
 * Everything here runs with the device lock held.
 */
#ifndef VIVARIUM_IDE_INTERNAL_H
#define VIVARIUM_IDE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "../block/block.h"
#include "ide.h"
#include "pci.h"

/* Status register (ATA/ATAPI-6 §7.15). */
#define ST_ERR		0x01
#define ST_DRQ		0x08
#define ST_DSC		0x10	/* ATA: seek complete (obsolete, set as drives do) */
#define ST_DF		0x20
#define ST_DRDY		0x40
#define ST_BSY		0x80

/* Error register (§7.11). */
#define ERR_AMNF	0x01
#define ERR_ABRT	0x04
#define ERR_IDNF	0x10
#define ERR_UNC		0x40

/* Interrupt reason (sector count register of a PACKET device, §8.21). */
#define IREASON_COD	0x01
#define IREASON_IO	0x02

/* SCSI sense keys (SPC-3 §4.5.6). */
#define SENSE_NONE		0x0
#define SENSE_NOT_READY		0x2
#define SENSE_MEDIUM_ERROR	0x3
#define SENSE_ILLEGAL_REQUEST	0x5
#define SENSE_UNIT_ATTENTION	0x6

/* GET EVENT STATUS NOTIFICATION media event codes (MMC-5 §6.6.2.4). */
#define MEDIA_EV_NONE		0
#define MEDIA_EV_EJECT_REQUEST	1
#define MEDIA_EV_NEW_MEDIA	2
#define MEDIA_EV_REMOVAL	3

/* PIO buffer: 256 ATA sectors, 64 CD sectors; a PACKET device's DRQ block
 * (byte count limit <= 0xfffe) and 16-sector READ MULTIPLE blocks fit. */
#define IDE_BUF_SIZE		(128u * 1024)
#define ATA_SECTOR		512u
#define CD_SECTOR		2048u
#define IDE_MAX_MULT		16u
/* iovecs per block request: a DMA transfer larger than this many PRD
 * regions goes out as several requests. */
#define IDE_DMA_IOV		256

struct ide_channel;

/* What the end of a PIO DRQ block leads to (the guest moved its last byte):
 * a state of the command, as plain data. */
enum ide_end_block {
	IDE_END_NONE,			/* the data phase is over */
	IDE_END_ATA_READ,		/* ATA data-in: next block or chunk */
	IDE_END_ATA_WRITE,		/* ATA data-out: write the block */
	IDE_END_ATAPI_PIO_IN,		/* ATAPI data-in: next block */
	IDE_END_ATAPI_PIO_OUT,		/* ATAPI data-out: next block */
	IDE_END_ATAPI_PACKET,		/* the 12-byte command packet is in */
};

/* What the completion of the drive's block request does. */
enum ide_req_done {
	IDE_REQ_NONE,			/* none since the last completion */
	IDE_REQ_ATA_READ_CHUNK,		/* PIO read: hand out the chunk */
	IDE_REQ_ATA_WRITE,		/* PIO write: next block or done */
	IDE_REQ_FLUSH,			/* FLUSH CACHE: status */
	IDE_REQ_DMA_SEGMENT,		/* bus master: next segment or done */
	IDE_REQ_ATAPI_READ_CHUNK,	/* ATAPI PIO read: hand out the chunk */
};

struct ide_drive {
	struct ide_channel *ch;
	unsigned unit;			/* 0 master, 1 slave */
	bool present;
	bool cdrom;
	struct blk *blk;		/* disk image or disc; NULL: none */
	uint64_t nsectors;		/* medium size in 512 / 2048-byte sectors */
	char serial[21];

	/* The task file as this device latched it (writes go to both). */
	uint8_t feature, nsector, lbal, lbam, lbah;
	uint8_t hob_feature, hob_nsector, hob_lbal, hob_lbam, hob_lbah;
	uint8_t status, error;
	bool intrq;			/* INTRQ asserted (unless nIEN) */

	/* ATA settings. */
	uint16_t cyls, heads, secs;	/* default geometry (IDENTIFY 1/3/6) */
	uint16_t cur_heads, cur_secs;	/* INITIALIZE DEVICE PARAMETERS */
	unsigned mult;			/* READ/WRITE MULTIPLE block, 0: off */
	uint8_t xfer_mode;		/* SET FEATURES 03h value */
	bool wce;			/* write cache enabled */

	/* The data phase.  PIO: DRQ block [pos, end) of buf; buf holds
	 * fill valid bytes (data-in).  Medium: offset/left in bytes. */
	uint8_t *buf;
	uint32_t pos, end, fill;
	bool pio_out;			/* DRQ block is guest -> device */
	enum ide_end_block end_block;
	uint64_t offset;		/* medium byte offset of the next chunk */
	uint64_t left;			/* medium bytes still to move */
	uint32_t drq_bytes;		/* ATA PIO: bytes per DRQ block */
	bool is_write;			/* medium transfer direction */

	/* DMA: the command waits for the bus master (dma_pending), or a
	 * transfer runs (dma_running).  dma_buf: ATAPI moves buf[0, fill)
	 * (to guest memory, or from it when is_write) instead of the medium. */
	bool dma_pending, dma_running, dma_buf;
	bool dma_table_end;		/* this segment ends the PRD list */
	bool dma_short;			/* PRD list ends before the transfer */

	/* The one block request a drive has in flight. */
	struct blk_req req;
	struct iovec iov[IDE_DMA_IOV];
	uint64_t req_len;
	struct blk *req_blk;		/* the blk d->req went to */
	enum ide_req_done req_done;	/* IDE_REQ_NONE once completed */
	unsigned req_gen;
	bool req_flush;			/* write-through: flush after the write */
	bool inflight;
	bool reset_pending;		/* a reset waits for the request */
	unsigned gen;			/* bumped by resets: stale completions */

	/* ATAPI. */
	bool atapi_dma;			/* PACKET features bit 0 */
	bool medium_read;		/* data-in comes from the disc */
	uint32_t byte_limit;		/* PIO byte count limit, even, > 0 */
	uint8_t cdb[12];
	uint8_t sense_key, asc, ascq;
	bool unit_attention;
	bool tray_open, locked;
	uint8_t media_event;
};

struct ide_channel {
	struct piix_ide *ide;
	unsigned index;
	struct ide_drive drive[2];
	uint8_t select;			/* device register */
	uint8_t devctl;			/* device control register */
	bool irq_level;
	struct irq_line irq;
	/* Bus master (SFF-8038i §3). */
	uint8_t bm_cmd, bm_status;
	uint32_t prd_table;
	uint64_t prd_done;		/* bytes of the PRD list already used */
};

struct piix_ide {
	struct pci_device pci;
	struct pci_host *host;
	struct bus *pio;
	struct guest_mem *mem;
	pthread_mutex_t *lock;
	unsigned ports_registered;	/* bitmask of legacy ranges */
	struct ide_channel ch[2];
};

/* ---- ide.c services for atapi.c ---------------------------------------- */

/* Assert the drive's INTRQ (after a status change). */
void ide_raise_irq(struct ide_drive *d);
/* Submit d->req for [offset, offset + len) of d->blk into d->buf; its
 * completion does @done.  Sets BSY.  Returns false (nothing submitted)
 * on a submit error. */
bool ide_submit_buf(struct ide_drive *d, enum blk_op op, uint64_t offset,
		    uint32_t len, enum ide_req_done done);
/* Queue a bus-master transfer for the current command (medium or buf). */
void ide_dma_queue(struct ide_drive *d);
/* Fill IDENTIFY PACKET DEVICE data (256 words) into @id. */
void ide_identify_packet(struct ide_drive *d, uint16_t *id);

/* ---- atapi.c ------------------------------------------------------------ */

/* PACKET command (A0h) issued: start the packet phase. */
void atapi_packet_cmd(struct ide_drive *d);
/* Reset the ATAPI state of @d after a reset (sense, keeps medium/lock). */
void atapi_reset(struct ide_drive *d);
/* The bus master finished the drive's DMA data phase: @err 0, -EIO
 * (medium error) or -EFAULT (PRD outside guest RAM). */
void atapi_dma_done(struct ide_drive *d, int err);
/* Set medium size from d->blk. */
void atapi_set_medium(struct ide_drive *d);
/* d->end_block IDE_END_ATAPI_*: the guest moved the DRQ block's last byte. */
void atapi_end_block(struct ide_drive *d, enum ide_end_block what);
/* d->req_done IDE_REQ_ATAPI_*: the block request completed with @ret. */
void atapi_req_done(struct ide_drive *d, enum ide_req_done what, int ret);

#endif
