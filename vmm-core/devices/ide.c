/* SPDX-License-Identifier: MIT */
/*
 * The PIIX3 IDE function (Intel 82371SB datasheet §2.7, "IDE interface")
 * and ATA devices (ATA/ATAPI-6, T13/1410D; register and protocol section
 * numbers below are that document's).
 *
 * Registers: writes to the command block reach both devices of a channel
 * (each keeps its own copy, with the "previous content" copy for 48-bit
 * commands, §6.18); the selected device (DEV bit) answers reads.  With
 * device 1 selected but absent, device 0 answers status with 00h (§9.16.1
 * "device 1 not present"); a channel without devices floats (reads FFh).
 *
 * INTRQ (§5.2.9): the selected device drives it while nIEN is clear; it is
 * deasserted by reading the status register or writing the command
 * register.  The channel's ISA IRQ follows that level, so the PIC sees a
 * rising edge per interrupt.  A rising edge also sets the bus master's
 * interrupt bit (SFF-8038i §3.1.2).
 *
 * Data transfers: a command that moves sectors sets BSY and submits a block
 * request; its completion (on a worker thread, taking the device lock) sets
 * DRQ for PIO or finishes the DMA, and raises INTRQ.  PIO reads fetch up to
 * IDE_BUF_SIZE bytes per request and hand them out one DRQ block at a
 * time; PIO writes go to the medium one DRQ block at a time.  DMA maps the
 * guest's PRD regions (gpa_to_hva, each checked whole) into the request's
 * iovec: no copy.
 *
 * Resets: SRST (device control) and EXECUTE DEVICE DIAGNOSTIC reset both
 * devices to their signatures (§9.12: ATA 01h/01h/00h/00h, PACKET
 * 01h/01h/14h/EBh); a device with a request in flight stays BSY until it
 * completes, and the completion is then dropped (gen).
 */
#include "ide_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "../bus.h"
#include "../log.h"
#include "../mem.h"

/* Command block register offsets. */
#define REG_DATA	0
#define REG_ERROR	1	/* write: features */
#define REG_NSECTOR	2
#define REG_LBAL	3
#define REG_LBAM	4
#define REG_LBAH	5
#define REG_DEVICE	6
#define REG_STATUS	7	/* write: command */

#define DEV_LBA		0x40
#define DEV_DEV		0x10
#define DEV_HEAD	0x0f

#define DEVCTL_NIEN	0x02
#define DEVCTL_SRST	0x04
#define DEVCTL_HOB	0x80

/* ATA commands (§8, ATA8-ACS for FLUSH CACHE EXT and friends). */
#define CMD_NOP			0x00
#define CMD_DEVICE_RESET	0x08
#define CMD_READ_SECTORS	0x20
#define CMD_READ_SECTORS_NR	0x21
#define CMD_READ_SECTORS_EXT	0x24
#define CMD_READ_DMA_EXT	0x25
#define CMD_READ_MULTIPLE_EXT	0x29
#define CMD_WRITE_SECTORS	0x30
#define CMD_WRITE_SECTORS_NR	0x31
#define CMD_WRITE_SECTORS_EXT	0x34
#define CMD_WRITE_DMA_EXT	0x35
#define CMD_WRITE_MULTIPLE_EXT	0x39
#define CMD_READ_VERIFY		0x40
#define CMD_READ_VERIFY_NR	0x41
#define CMD_READ_VERIFY_EXT	0x42
#define CMD_SEEK		0x70
#define CMD_EXEC_DIAGNOSTIC	0x90
#define CMD_INIT_DEV_PARAMS	0x91
#define CMD_PACKET		0xa0
#define CMD_IDENTIFY_PACKET	0xa1
#define CMD_READ_MULTIPLE	0xc4
#define CMD_WRITE_MULTIPLE	0xc5
#define CMD_SET_MULTIPLE	0xc6
#define CMD_READ_DMA		0xc8
#define CMD_READ_DMA_NR		0xc9
#define CMD_WRITE_DMA		0xca
#define CMD_WRITE_DMA_NR	0xcb
#define CMD_CHECK_POWER_MODE	0xe5
#define CMD_CHECK_POWER_MODE_OLD 0x98
#define CMD_FLUSH_CACHE		0xe7
#define CMD_FLUSH_CACHE_EXT	0xea
#define CMD_IDENTIFY		0xec
#define CMD_SET_FEATURES	0xef

/* SET FEATURES subcommands (§8.37). */
#define SF_WCE_ON		0x02
#define SF_XFER_MODE		0x03
#define SF_LOOKAHEAD_OFF	0x55
#define SF_REVERT_OFF		0x66
#define SF_WCE_OFF		0x82
#define SF_LOOKAHEAD_ON		0xaa
#define SF_REVERT_ON		0xcc

/* Bus master IDE registers (SFF-8038i §3), per channel at +0 / +8. */
#define BM_CMD		0
#define BM_STATUS	2
#define BM_PRD		4
#define BM_CMD_START	0x01
#define BM_CMD_WRITE	0x08	/* RWCON: device -> memory */
#define BM_ST_ACTIVE	0x01
#define BM_ST_ERROR	0x02
#define BM_ST_INTR	0x04
#define BM_ST_DMA_CAP	0x60	/* drive 0/1 DMA capable, software's */
#define PRD_EOT		0x80000000u
/* A PRD table lies in one 64 KiB region: at most 8192 descriptors. */
#define PRD_MAX		8192u

/* PIIX3 IDE configuration registers (datasheet §2.7.2). */
#define PIIX_IDETIM		0x40	/* primary; secondary at 0x42 */
#define PIIX_IDETIM_IDE		0x8000	/* IDE decode enable */
#define PIIX_SIDETIM		0x44

static const uint16_t legacy_cmd_base[2] = { 0x1f0, 0x170 };
static const uint16_t legacy_ctl_base[2] = { 0x3f6, 0x376 };

/* ---- small helpers ------------------------------------------------------ */

static struct ide_drive *cur_drive(struct ide_channel *ch)
{
	return &ch->drive[(ch->select & DEV_DEV) ? 1 : 0];
}

static bool channel_empty(const struct ide_channel *ch)
{
	return !ch->drive[0].present && !ch->drive[1].present;
}

static bool channel_decodes(const struct ide_channel *ch)
{
	const uint8_t *cfg = ch->ide->pci.config;

	return cfg[PIIX_IDETIM + 2 * ch->index + 1] & (PIIX_IDETIM_IDE >> 8);
}

static bool bus_master_enabled(const struct ide_channel *ch)
{
	return ch->ide->pci.config[PCI_COMMAND] & PCI_COMMAND_MASTER;
}

static uint8_t ready_status(const struct ide_drive *d)
{
	return d->cdrom ? ST_DRDY : ST_DRDY | ST_DSC;
}

static void update_irq(struct ide_channel *ch)
{
	struct ide_drive *d = cur_drive(ch);
	bool level = d->present && d->intrq && !(ch->devctl & DEVCTL_NIEN);

	if (level && !ch->irq_level)
		ch->bm_status |= BM_ST_INTR;
	if (level != ch->irq_level) {
		ch->irq_level = level;
		irq_line_set(&ch->irq, level);
	}
}

void ide_raise_irq(struct ide_drive *d)
{
	d->intrq = true;
	update_irq(d->ch);
}

static void cmd_ok(struct ide_drive *d)
{
	d->status = ready_status(d);
	d->error = 0;
	ide_raise_irq(d);
}

static void cmd_error(struct ide_drive *d, uint8_t error)
{
	d->status = ready_status(d) | ST_ERR;
	d->error = error;
	d->pio_out = false;
	d->end_block = IDE_END_NONE;
	ide_raise_irq(d);
}

static void cmd_abort(struct ide_drive *d)
{
	cmd_error(d, ERR_ABRT);
}

/* Forget any data phase of the current command. */
static void cancel_transfer(struct ide_drive *d)
{
	d->end_block = IDE_END_NONE;
	d->pos = d->end = d->fill = 0;
	d->pio_out = false;
	d->left = 0;
	d->dma_pending = d->dma_running = d->dma_buf = false;
}

/* ---- IDENTIFY ------------------------------------------------------------ */

/* ATA strings: two characters a word, the first in bits 15:8 (§8.15.10). */
static void id_string(uint16_t *id, unsigned word, unsigned nwords,
		      const char *s)
{
	for (unsigned i = 0; i < nwords; i++) {
		uint8_t hi = *s ? (uint8_t)*s++ : ' ';
		uint8_t lo = *s ? (uint8_t)*s++ : ' ';

		id[word + i] = (uint16_t)(hi << 8 | lo);
	}
}

/* Word 93: hardware reset result (§8.15.52), as this device reports it. */
static uint16_t reset_result(const struct ide_drive *d)
{
	const struct ide_drive *other = &d->ch->drive[d->unit ^ 1];
	uint16_t v = 0x4000 | 0x2000;	/* valid; CBLID- above VIH */

	if (d->unit == 0) {
		/* Number set by jumper, diagnostics passed. */
		v |= 0x0001 | 0x0002 | 0x0008;
		if (other->present)
			v |= 0x0010 | 0x0020;	/* PDIAG-, DASP- seen */
	} else {
		v |= 0x0100 | 0x0200;
	}
	return v;
}

static void id_common(struct ide_drive *d, uint16_t *id, const char *model)
{
	id_string(id, 10, 10, d->serial);
	id_string(id, 23, 4, "1.0");
	id_string(id, 27, 20, model);
	id[49] = 0x0b00;		/* IORDY, LBA, DMA */
	id[50] = 0x4000;
	id[51] = 0x0200;		/* PIO mode 2 timing (obsolete) */
	id[52] = 0x0200;
	id[63] = 0x0007;		/* multiword DMA 0-2 */
	if ((d->xfer_mode & 0xf8) == 0x20)
		id[63] |= (uint16_t)(0x100 << (d->xfer_mode & 7));
	id[64] = 0x0003;		/* PIO 3, 4 */
	id[65] = id[66] = id[67] = id[68] = 120;	/* ns */
	id[80] = 0x0078;		/* ATA-3 .. ATA/ATAPI-6 */
	id[88] = 0x003f;		/* UDMA 0-5 */
	if ((d->xfer_mode & 0xf8) == 0x40)
		id[88] |= (uint16_t)(0x100 << (d->xfer_mode & 7));
	id[93] = reset_result(d);
}

static void id_checksum(uint16_t *id)
{
	uint8_t sum = 0xa5;

	for (unsigned i = 0; i < 255; i++)
		sum = (uint8_t)(sum + (id[i] & 0xff) + (id[i] >> 8));
	id[255] = (uint16_t)((uint8_t)-sum << 8 | 0xa5);
}

/* IDENTIFY DEVICE (§8.15). */
static void ide_identify(struct ide_drive *d, uint16_t *id)
{
	uint64_t lba28 = d->nsectors > 0x0fffffff ? 0x0fffffff : d->nsectors;
	uint64_t cur_cyls = d->nsectors / ((uint64_t)d->cur_heads * d->cur_secs);
	uint64_t cur_cap;

	memset(id, 0, 512);
	if (cur_cyls > 65535)
		cur_cyls = 65535;
	cur_cap = cur_cyls * d->cur_heads * d->cur_secs;

	id[0] = 0x0040;			/* fixed device */
	id[1] = d->cyls;
	id[3] = d->heads;
	id[6] = d->secs;
	id_common(d, id, "VIVARIUM HARDDISK");
	id[47] = 0x8000 | IDE_MAX_MULT;
	id[53] = 0x0007;		/* words 54-58, 64-70, 88 valid */
	id[54] = (uint16_t)cur_cyls;
	id[55] = d->cur_heads;
	id[56] = d->cur_secs;
	id[57] = (uint16_t)cur_cap;
	id[58] = (uint16_t)(cur_cap >> 16);
	if (d->mult)
		id[59] = (uint16_t)(0x100 | d->mult);
	id[60] = (uint16_t)lba28;
	id[61] = (uint16_t)(lba28 >> 16);
	/* NOP, write cache, power management; FLUSH CACHE (EXT), LBA48. */
	id[82] = 0x4028;
	id[83] = 0x7400;
	id[84] = 0x4000;
	id[85] = (uint16_t)(0x4008 | (d->wce ? 0x0020 : 0));
	id[86] = 0x3400;
	id[87] = 0x4000;
	for (unsigned i = 0; i < 4; i++)
		id[100 + i] = (uint16_t)(d->nsectors >> (16 * i));
	id_checksum(id);
}

/* IDENTIFY PACKET DEVICE (§8.16). */
void ide_identify_packet(struct ide_drive *d, uint16_t *id)
{
	memset(id, 0, 512);
	/* ATAPI, CD-ROM, removable, accelerated DRQ, 12-byte packets. */
	id[0] = 0x8000 | 0x0500 | 0x0080 | 0x0040;
	id_common(d, id, "VIVARIUM DVD-ROM");
	id[53] = 0x0006;		/* words 64-70, 88 valid */
	/* Power management, PACKET, DEVICE RESET. */
	id[82] = 0x0218;
	id[83] = 0x4000;
	id[84] = 0x4000;
	id[85] = 0x0218;
	id[87] = 0x4000;
	id_checksum(id);
}

static void id_to_buf(const uint16_t *id, uint8_t *buf)
{
	for (unsigned i = 0; i < 256; i++) {
		buf[2 * i] = (uint8_t)id[i];
		buf[2 * i + 1] = (uint8_t)(id[i] >> 8);
	}
}

/* ---- resets ------------------------------------------------------------- */

static void set_signature(struct ide_drive *d)
{
	d->nsector = d->hob_nsector = 1;
	d->lbal = d->hob_lbal = 1;
	d->lbam = d->hob_lbam = d->cdrom ? 0x14 : 0;
	d->lbah = d->hob_lbah = d->cdrom ? 0xeb : 0;
}

/* The device comes out of reset: signature, diagnostic code 01h,
 * status DRDY for ATA devices, 00h for PACKET devices (§9.12). */
static void reset_done(struct ide_drive *d)
{
	d->reset_pending = false;
	cancel_transfer(d);
	set_signature(d);
	d->error = 0x01;
	d->status = d->cdrom ? 0 : ST_DRDY | ST_DSC;
	d->intrq = false;
	if (d->cdrom)
		atapi_reset(d);
}

/* Start a reset of @d: drop the command; BSY until a request in flight
 * has completed (its completion then finishes the reset). */
static void reset_begin(struct ide_drive *d)
{
	d->gen++;
	cancel_transfer(d);
	d->intrq = false;
	d->status = ST_BSY;
}

static void reset_finish(struct ide_drive *d)
{
	if (d->inflight)
		d->reset_pending = true;
	else
		reset_done(d);
}

static void devctl_write(struct ide_channel *ch, uint8_t v)
{
	uint8_t old = ch->devctl;

	ch->devctl = v;
	if (!(old & DEVCTL_SRST) && (v & DEVCTL_SRST)) {
		for (unsigned i = 0; i < 2; i++)
			if (ch->drive[i].present)
				reset_begin(&ch->drive[i]);
	} else if ((old & DEVCTL_SRST) && !(v & DEVCTL_SRST)) {
		for (unsigned i = 0; i < 2; i++)
			if (ch->drive[i].present)
				reset_finish(&ch->drive[i]);
		ch->select = 0;
	}
	update_irq(ch);
}

/* EXECUTE DEVICE DIAGNOSTIC (§8.11): both devices; device 0 interrupts. */
static void execute_diagnostic(struct ide_channel *ch)
{
	for (unsigned i = 0; i < 2; i++) {
		struct ide_drive *d = &ch->drive[i];

		if (!d->present)
			continue;
		reset_begin(d);
		reset_finish(d);
	}
	ch->select = 0;
	if (ch->drive[0].present && !ch->drive[0].reset_pending)
		ch->drive[0].intrq = true;
	update_irq(ch);
}

/* ---- block requests ------------------------------------------------------ */

static void req_done(struct ide_drive *d, enum ide_req_done what, int ret);

static void req_complete(struct blk_req *req, int ret)
{
	struct ide_drive *d = req->opaque;
	pthread_mutex_t *lock = d->ch->ide->lock;
	enum ide_req_done done;

	/* Write-through: make the write durable before reporting it. */
	if (ret == 0 && d->req_flush)
		ret = blk_flush(d->req_blk);
	pthread_mutex_lock(lock);
	d->inflight = false;
	done = d->req_done;
	d->req_done = IDE_REQ_NONE;
	if (d->req_gen != d->gen) {
		if (d->reset_pending && !(d->ch->devctl & DEVCTL_SRST)) {
			reset_done(d);
			update_irq(d->ch);
		}
	} else {
		req_done(d, done, ret);
	}
	pthread_mutex_unlock(lock);
}

/* Submit d->req over d->iov[0, iovcnt). */
static bool submit(struct ide_drive *d, enum blk_op op, uint64_t offset,
		   int iovcnt, uint64_t len, enum ide_req_done done)
{
	int ret;

	if (!d->blk)
		return false;
	d->req = (struct blk_req){
		.op = op,
		.offset = offset,
		.iov = d->iov,
		.iovcnt = iovcnt,
		.complete = req_complete,
		.opaque = d,
	};
	d->req_len = len;
	d->req_blk = d->blk;
	d->req_done = done;
	d->req_gen = d->gen;
	d->req_flush = op == BLK_OP_WRITE && !d->wce;
	d->inflight = true;
	d->status = ST_BSY;
	ret = blk_submit(d->blk, &d->req);
	if (ret < 0) {
		d->inflight = false;
		vlog_ratelimited(LOG_WARN, "ide: block request failed: %s",
				 strerror(-ret));
		return false;
	}
	return true;
}

bool ide_submit_buf(struct ide_drive *d, enum blk_op op, uint64_t offset,
		    uint32_t len, enum ide_req_done done)
{
	d->iov[0] = (struct iovec){ d->buf, len };
	return submit(d, op, offset, op == BLK_OP_FLUSH ? 0 : 1, len, done);
}

/* ---- ATA PIO ------------------------------------------------------------ */

/* Hand out the next DRQ block of a PIO data-in command from buf. */
static void pio_in_block(struct ide_drive *d)
{
	uint32_t n = d->fill - d->pos;

	if (n > d->drq_bytes)
		n = d->drq_bytes;
	d->end = d->pos + n;
	d->pio_out = false;
	d->status = ready_status(d) | ST_DRQ;
	ide_raise_irq(d);
}

static void ata_read_chunk(struct ide_drive *d);

static void ata_read_block_done(struct ide_drive *d)
{
	if (d->pos < d->fill)
		pio_in_block(d);
	else if (d->left)
		ata_read_chunk(d);
	else {
		d->end_block = IDE_END_NONE;
		d->status = ready_status(d);	/* no interrupt (§9.7) */
	}
}

static void ata_read_chunk_done(struct ide_drive *d, int ret)
{
	if (ret < 0) {
		cmd_error(d, ERR_UNC);
		return;
	}
	d->fill = (uint32_t)d->req_len;
	d->pos = 0;
	d->offset += d->req_len;
	d->left -= d->req_len;
	d->end_block = IDE_END_ATA_READ;
	pio_in_block(d);
}

static void ata_read_chunk(struct ide_drive *d)
{
	uint32_t n = d->left > IDE_BUF_SIZE ? IDE_BUF_SIZE : (uint32_t)d->left;

	if (!ide_submit_buf(d, BLK_OP_READ, d->offset, n,
			    IDE_REQ_ATA_READ_CHUNK))
		cmd_error(d, ERR_UNC);
}

static void ata_write_block_done(struct ide_drive *d);

static void ata_write_next_block(struct ide_drive *d, bool irq)
{
	uint64_t n = d->left < d->drq_bytes ? d->left : d->drq_bytes;

	d->pos = 0;
	d->end = (uint32_t)n;
	d->pio_out = true;
	d->end_block = IDE_END_ATA_WRITE;
	d->status = ready_status(d) | ST_DRQ;
	if (irq)
		ide_raise_irq(d);
}

static void ata_write_done(struct ide_drive *d, int ret)
{
	if (ret < 0) {
		cmd_error(d, ERR_ABRT);
		return;
	}
	d->offset += d->req_len;
	d->left -= d->req_len;
	if (d->left)
		ata_write_next_block(d, true);
	else {
		d->end_block = IDE_END_NONE;
		cmd_ok(d);
	}
}

static void ata_write_block_done(struct ide_drive *d)
{
	d->pio_out = false;
	if (!ide_submit_buf(d, BLK_OP_WRITE, d->offset, d->end,
			    IDE_REQ_ATA_WRITE))
		cmd_error(d, ERR_ABRT);
}

/* A data-in command whose data is already in buf (IDENTIFY). */
static void pio_in_buffer(struct ide_drive *d, uint32_t len)
{
	d->fill = len;
	d->pos = 0;
	d->left = 0;
	d->drq_bytes = len;
	d->end_block = IDE_END_ATA_READ;
	pio_in_block(d);
}

/* ---- bus-master DMA (SFF-8038i) ------------------------------------------- */

enum map_result { MAP_DONE, MAP_MORE, MAP_SHORT, MAP_FAULT };

static bool prd_read(struct ide_channel *ch, unsigned idx, uint64_t *addr,
		     uint32_t *count, bool *eot)
{
	uint8_t e[8];

	if (guest_mem_read(ch->ide->mem, (uint64_t)ch->prd_table + 8ull * idx,
			   e, sizeof(e)) < 0)
		return false;
	*addr = ((uint32_t)e[0] | (uint32_t)e[1] << 8 | (uint32_t)e[2] << 16 |
		 (uint32_t)e[3] << 24) & ~1u;
	*count = ((uint32_t)e[4] | (uint32_t)e[5] << 8) & 0xfffe;
	if (*count == 0)
		*count = 0x10000;
	*eot = e[7] & 0x80;
	return true;
}

/*
 * Map up to @want bytes of the PRD list, after the ch->prd_done bytes
 * already moved, into @iov (at most @max entries, host-contiguous regions
 * merged).  The list is walked from its start each time, at most PRD_MAX
 * descriptors.  *@got: bytes mapped; *@table_end: the mapping ends exactly
 * at the end of the last descriptor.  MAP_MORE: @iov is full.
 */
static enum map_result dma_map(struct ide_channel *ch, uint64_t want,
			       struct iovec *iov, int max, int *niov,
			       uint64_t *got, bool *table_end)
{
	uint64_t skip = ch->prd_done, total = 0;
	int n = 0;

	*table_end = false;
	for (unsigned i = 0; i < PRD_MAX && total < want; i++) {
		uint64_t addr;
		uint32_t count;
		bool eot;

		if (!prd_read(ch, i, &addr, &count, &eot))
			goto fault;
		if (skip >= count) {
			skip -= count;
			if (eot)
				break;
			continue;
		}
		addr += skip;
		count -= (uint32_t)skip;
		skip = 0;
		while (count && total < want) {
			uint64_t take = want - total < count ? want - total : count;
			uint8_t *hva = gpa_to_hva(ch->ide->mem, addr, take);

			if (!hva)
				goto fault;
			if (n && (uint8_t *)iov[n - 1].iov_base +
					 iov[n - 1].iov_len == hva) {
				iov[n - 1].iov_len += take;
			} else if (n == max) {
				*niov = n;
				*got = total;
				return MAP_MORE;
			} else {
				iov[n++] = (struct iovec){ hva, take };
			}
			total += take;
			addr += take;
			count -= (uint32_t)take;
		}
		if (total == want) {
			*table_end = eot && count == 0;
			break;
		}
		if (eot)
			break;
	}
	*niov = n;
	*got = total;
	return total == want ? MAP_DONE : MAP_SHORT;
fault:
	vlog_ratelimited(LOG_WARN, "ide: PRD table 0x%x: region outside RAM",
			 (unsigned)ch->prd_table);
	*niov = n;
	*got = total;
	return MAP_FAULT;
}

/* Drop bytes from the end of @iov so that it holds @len. */
static int iov_trim(struct iovec *iov, int n, uint64_t len)
{
	uint64_t total = 0;

	for (int i = 0; i < n; i++) {
		if (total + iov[i].iov_len >= len) {
			iov[i].iov_len = len - total;
			return iov[i].iov_len ? i + 1 : i;
		}
		total += iov[i].iov_len;
	}
	return n;
}

/* The drive's side of a finished transfer. */
static void dma_drive_done(struct ide_drive *d, int err)
{
	d->dma_running = false;
	d->dma_buf = false;
	if (d->cdrom) {
		atapi_dma_done(d, err);
	} else if (err == 0) {
		cmd_ok(d);
	} else {
		cmd_error(d, err == -EFAULT ? ERR_ABRT
			     : d->is_write ? ERR_ABRT : ERR_UNC);
	}
}

/* The PRD list ran out before the transfer: Active and Interrupt both
 * clear (SFF-8038i §3.1.2, "PRD smaller than transfer"); the drive is left
 * ready without an interrupt, and the guest's driver times out. */
static void dma_short(struct ide_drive *d)
{
	d->ch->bm_status &= (uint8_t)~BM_ST_ACTIVE;
	d->dma_running = false;
	d->dma_buf = false;
	d->left = 0;
	d->status = ready_status(d);
	if (d->cdrom)
		d->nsector = IREASON_IO | IREASON_COD;
}

static void dma_fault(struct ide_drive *d)
{
	d->ch->bm_status = (uint8_t)((d->ch->bm_status & ~BM_ST_ACTIVE) |
				     BM_ST_ERROR);
	dma_drive_done(d, -EFAULT);
}

static void dma_finish(struct ide_drive *d, bool table_end)
{
	if (table_end)
		d->ch->bm_status &= (uint8_t)~BM_ST_ACTIVE;
	dma_drive_done(d, 0);
}

/* ATAPI: move buf[0, fill) to (or, for is_write, from) the PRD regions. */
static void dma_copy_buf(struct ide_drive *d)
{
	struct ide_channel *ch = d->ch;
	uint64_t done = 0;
	bool table_end = false;

	while (done < d->fill) {
		uint64_t got;
		int n;
		enum map_result r = dma_map(ch, d->fill - done, d->iov,
					    IDE_DMA_IOV, &n, &got, &table_end);

		if (r == MAP_FAULT) {
			dma_fault(d);
			return;
		}
		for (int i = 0; i < n; i++) {
			if (d->is_write)
				memcpy(d->buf + done, d->iov[i].iov_base,
				       d->iov[i].iov_len);
			else
				memcpy(d->iov[i].iov_base, d->buf + done,
				       d->iov[i].iov_len);
			done += d->iov[i].iov_len;
		}
		ch->prd_done += got;
		if (r == MAP_SHORT || got == 0) {
			dma_short(d);
			return;
		}
	}
	dma_finish(d, table_end);
}

static void dma_segment(struct ide_drive *d);

static void dma_segment_done(struct ide_drive *d, int ret)
{
	if (ret < 0) {
		d->ch->bm_status &= (uint8_t)~BM_ST_ACTIVE;
		dma_drive_done(d, -EIO);
		return;
	}
	d->offset += d->req_len;
	d->left -= d->req_len;
	d->ch->prd_done += d->req_len;
	if (d->left == 0)
		dma_finish(d, d->dma_table_end);
	else if (d->dma_short)
		dma_short(d);
	else
		dma_segment(d);
}

/* Map and submit the next piece of a medium transfer. */
static void dma_segment(struct ide_drive *d)
{
	uint64_t got;
	int n;
	bool table_end;
	enum map_result r;

	if (d->dma_buf) {
		dma_copy_buf(d);
		return;
	}
	r = dma_map(d->ch, d->left, d->iov, IDE_DMA_IOV, &n, &got, &table_end);
	if (r == MAP_FAULT) {
		dma_fault(d);
		return;
	}
	if (r != MAP_DONE) {
		/* Whole 512-byte units per request; the rest next time. */
		got &= ~(uint64_t)(ATA_SECTOR - 1);
		n = iov_trim(d->iov, n, got);
		table_end = false;
	}
	if (got == 0) {
		dma_short(d);
		return;
	}
	d->dma_table_end = table_end;
	d->dma_short = r == MAP_SHORT;
	if (!submit(d, d->is_write ? BLK_OP_WRITE : BLK_OP_READ, d->offset, n,
		    got, IDE_REQ_DMA_SEGMENT)) {
		d->ch->bm_status &= (uint8_t)~BM_ST_ACTIVE;
		dma_drive_done(d, -EIO);
	}
}

static void dma_begin(struct ide_drive *d)
{
	d->dma_pending = false;
	d->dma_running = true;
	d->ch->prd_done = 0;
	dma_segment(d);
}

void ide_dma_queue(struct ide_drive *d)
{
	struct ide_channel *ch = d->ch;

	d->end_block = IDE_END_NONE;
	d->pio_out = false;
	d->dma_pending = true;
	d->status = ready_status(d) | ST_DRQ;
	if ((ch->bm_cmd & BM_CMD_START) && (ch->bm_status & BM_ST_ACTIVE) &&
	    bus_master_enabled(ch))
		dma_begin(d);
}

/* ---- ATA commands ---------------------------------------------------------- */

static bool is_lba48(uint8_t cmd)
{
	switch (cmd) {
	case CMD_READ_SECTORS_EXT:
	case CMD_READ_DMA_EXT:
	case CMD_READ_MULTIPLE_EXT:
	case CMD_WRITE_SECTORS_EXT:
	case CMD_WRITE_DMA_EXT:
	case CMD_WRITE_MULTIPLE_EXT:
	case CMD_READ_VERIFY_EXT:
		return true;
	}
	return false;
}

/* The command's first sector (LBA or CHS, §6.2) and count (0 = 256 or
 * 65536).  Returns false for a CHS address outside the current geometry. */
static bool ata_address(struct ide_drive *d, bool lba48, uint64_t *lba,
			uint32_t *count)
{
	uint8_t sel = d->ch->select;

	if (lba48) {
		*lba = (uint64_t)d->lbal | (uint64_t)d->lbam << 8 |
		       (uint64_t)d->lbah << 16 | (uint64_t)d->hob_lbal << 24 |
		       (uint64_t)d->hob_lbam << 32 | (uint64_t)d->hob_lbah << 40;
		*count = (uint32_t)d->nsector | (uint32_t)d->hob_nsector << 8;
		if (*count == 0)
			*count = 65536;
		return true;
	}
	*count = d->nsector ? d->nsector : 256;
	if (sel & DEV_LBA) {
		*lba = (uint64_t)(sel & DEV_HEAD) << 24 | (uint64_t)d->lbah << 16 |
		       (uint64_t)d->lbam << 8 | d->lbal;
		return true;
	}
	uint32_t cyl = (uint32_t)d->lbam | (uint32_t)d->lbah << 8;
	uint32_t head = sel & DEV_HEAD, sect = d->lbal;

	if (sect == 0 || sect > d->cur_secs || head >= d->cur_heads)
		return false;
	*lba = ((uint64_t)cyl * d->cur_heads + head) * d->cur_secs + sect - 1;
	return true;
}

/* Report an address error at @lba (§8.x "ID not found"): the registers
 * hold the address, as the error outputs say. */
static void ata_idnf(struct ide_drive *d, uint64_t lba, bool lba48)
{
	d->lbal = (uint8_t)lba;
	d->lbam = (uint8_t)(lba >> 8);
	d->lbah = (uint8_t)(lba >> 16);
	if (lba48) {
		d->hob_lbal = (uint8_t)(lba >> 24);
		d->hob_lbam = (uint8_t)(lba >> 32);
		d->hob_lbah = (uint8_t)(lba >> 40);
	}
	cmd_error(d, ERR_IDNF);
}

/* READ/WRITE SECTORS, MULTIPLE, DMA, READ VERIFY. */
static void ata_rw(struct ide_drive *d, uint8_t cmd)
{
	bool lba48 = is_lba48(cmd);
	bool multiple = cmd == CMD_READ_MULTIPLE || cmd == CMD_WRITE_MULTIPLE ||
			cmd == CMD_READ_MULTIPLE_EXT ||
			cmd == CMD_WRITE_MULTIPLE_EXT;
	bool dma = cmd == CMD_READ_DMA || cmd == CMD_READ_DMA_NR ||
		   cmd == CMD_READ_DMA_EXT || cmd == CMD_WRITE_DMA ||
		   cmd == CMD_WRITE_DMA_NR || cmd == CMD_WRITE_DMA_EXT;
	bool write = cmd == CMD_WRITE_SECTORS || cmd == CMD_WRITE_SECTORS_NR ||
		     cmd == CMD_WRITE_SECTORS_EXT || cmd == CMD_WRITE_MULTIPLE ||
		     cmd == CMD_WRITE_MULTIPLE_EXT || cmd == CMD_WRITE_DMA ||
		     cmd == CMD_WRITE_DMA_NR || cmd == CMD_WRITE_DMA_EXT;
	bool verify = cmd == CMD_READ_VERIFY || cmd == CMD_READ_VERIFY_NR ||
		      cmd == CMD_READ_VERIFY_EXT;
	uint64_t lba;
	uint32_t count;

	if (multiple && !d->mult) {
		cmd_abort(d);
		return;
	}
	if (!ata_address(d, lba48, &lba, &count)) {
		cmd_error(d, ERR_IDNF);
		return;
	}
	if (lba >= d->nsectors || count > d->nsectors - lba) {
		ata_idnf(d, lba < d->nsectors ? d->nsectors : lba, lba48);
		return;
	}
	if (write && blk_is_readonly(d->blk)) {
		cmd_abort(d);
		return;
	}
	if (verify) {
		cmd_ok(d);
		return;
	}
	d->offset = lba * ATA_SECTOR;
	d->left = (uint64_t)count * ATA_SECTOR;
	d->is_write = write;
	d->drq_bytes = (multiple ? d->mult : 1) * ATA_SECTOR;
	if (dma)
		ide_dma_queue(d);
	else if (write)
		ata_write_next_block(d, false);
	else
		ata_read_chunk(d);
}

static void flush_done(struct ide_drive *d, int ret)
{
	if (ret < 0)
		cmd_abort(d);
	else
		cmd_ok(d);
}

static void set_features(struct ide_drive *d)
{
	switch (d->feature) {
	case SF_XFER_MODE: {
		uint8_t m = d->nsector;

		if (m <= 0x01 || (m >= 0x08 && m <= 0x0c) ||
		    (m >= 0x20 && m <= 0x22) || (m >= 0x40 && m <= 0x45)) {
			d->xfer_mode = m;
			cmd_ok(d);
		} else {
			cmd_abort(d);
		}
		return;
	}
	case SF_WCE_ON:
	case SF_WCE_OFF:
		d->wce = d->feature == SF_WCE_ON;
		cmd_ok(d);
		return;
	case SF_LOOKAHEAD_OFF:
	case SF_LOOKAHEAD_ON:
	case SF_REVERT_OFF:
	case SF_REVERT_ON:
		cmd_ok(d);
		return;
	}
	cmd_abort(d);
}

/* Commands both kinds of device take. */
static bool common_command(struct ide_drive *d, uint8_t cmd)
{
	switch (cmd) {
	case CMD_SET_FEATURES:
		set_features(d);
		return true;
	case CMD_CHECK_POWER_MODE:
	case CMD_CHECK_POWER_MODE_OLD:
		d->nsector = 0xff;	/* active or idle */
		cmd_ok(d);
		return true;
	case 0xe0: case 0xe1: case 0xe2: case 0xe3:	/* STANDBY/IDLE (IMM.) */
	case 0x94: case 0x95: case 0x96: case 0x97:	/* old opcodes */
	case 0xe6: case 0x99:				/* SLEEP */
		cmd_ok(d);
		return true;
	}
	return false;
}

static void ata_command(struct ide_drive *d, uint8_t cmd)
{
	uint16_t id[256];

	switch (cmd) {
	case CMD_IDENTIFY:
		ide_identify(d, id);
		id_to_buf(id, d->buf);
		pio_in_buffer(d, 512);
		return;
	case CMD_READ_SECTORS: case CMD_READ_SECTORS_NR: case CMD_READ_SECTORS_EXT:
	case CMD_READ_MULTIPLE: case CMD_READ_MULTIPLE_EXT:
	case CMD_WRITE_SECTORS: case CMD_WRITE_SECTORS_NR: case CMD_WRITE_SECTORS_EXT:
	case CMD_WRITE_MULTIPLE: case CMD_WRITE_MULTIPLE_EXT:
	case CMD_READ_DMA: case CMD_READ_DMA_NR: case CMD_READ_DMA_EXT:
	case CMD_WRITE_DMA: case CMD_WRITE_DMA_NR: case CMD_WRITE_DMA_EXT:
	case CMD_READ_VERIFY: case CMD_READ_VERIFY_NR: case CMD_READ_VERIFY_EXT:
		ata_rw(d, cmd);
		return;
	case CMD_SET_MULTIPLE: {
		unsigned n = d->nsector;

		if (n > IDE_MAX_MULT || (n & (n - 1))) {
			cmd_abort(d);
		} else {
			d->mult = n;
			cmd_ok(d);
		}
		return;
	}
	case CMD_INIT_DEV_PARAMS:
		if (d->nsector == 0) {
			cmd_abort(d);
			return;
		}
		d->cur_secs = d->nsector;
		d->cur_heads = (uint16_t)((d->ch->select & DEV_HEAD) + 1);
		cmd_ok(d);
		return;
	case CMD_FLUSH_CACHE:
	case CMD_FLUSH_CACHE_EXT:
		if (blk_is_readonly(d->blk))
			cmd_ok(d);
		else if (!ide_submit_buf(d, BLK_OP_FLUSH, 0, 0, IDE_REQ_FLUSH))
			cmd_abort(d);
		return;
	case CMD_SEEK:
		cmd_ok(d);
		return;
	}
	if (cmd >= 0x10 && cmd <= 0x1f) {	/* RECALIBRATE (obsolete) */
		cmd_ok(d);
		return;
	}
	if (common_command(d, cmd))
		return;
	vlog_ratelimited(LOG_DEBUG, "ide: ATA command 0x%02x aborted", cmd);
	cmd_abort(d);
}

static void atapi_device_command(struct ide_drive *d, uint8_t cmd)
{
	uint16_t id[256];

	switch (cmd) {
	case CMD_PACKET:
		atapi_packet_cmd(d);
		return;
	case CMD_IDENTIFY_PACKET:
		ide_identify_packet(d, id);
		id_to_buf(id, d->buf);
		pio_in_buffer(d, 512);
		return;
	case CMD_DEVICE_RESET:
		/* §8.10: no interrupt; the device register keeps DEV. */
		reset_begin(d);
		reset_finish(d);
		d->ch->select &= (uint8_t)~DEV_HEAD;
		return;
	case CMD_IDENTIFY:
		/* §8.15: a PACKET device aborts with its signature. */
		set_signature(d);
		cmd_abort(d);
		return;
	case CMD_FLUSH_CACHE:
		cmd_ok(d);
		return;
	}
	if (common_command(d, cmd))
		return;
	vlog_ratelimited(LOG_DEBUG, "ide: command 0x%02x to ATAPI aborted", cmd);
	cmd_abort(d);
}

static void command_write(struct ide_channel *ch, uint8_t cmd)
{
	struct ide_drive *d = cur_drive(ch);

	if (cmd == CMD_EXEC_DIAGNOSTIC) {
		if (!(ch->drive[0].status & ST_BSY) &&
		    !(ch->drive[1].status & ST_BSY))
			execute_diagnostic(ch);
		return;
	}
	if (!d->present || (ch->devctl & DEVCTL_SRST))
		return;
	if (d->status & ST_BSY) {
		/* Only DEVICE RESET reaches a busy PACKET device (§8.10). */
		if (d->cdrom && cmd == CMD_DEVICE_RESET)
			atapi_device_command(d, cmd);
		return;
	}
	cancel_transfer(d);
	d->intrq = false;
	update_irq(ch);
	d->error = 0;
	if (d->cdrom)
		atapi_device_command(d, cmd);
	else
		ata_command(d, cmd);
}

/* ---- the commands' next steps, from their state ------------------------ */

/* The guest moved the last byte of the DRQ block. */
static void end_block(struct ide_drive *d)
{
	switch (d->end_block) {
	case IDE_END_NONE:
		break;
	case IDE_END_ATA_READ:
		ata_read_block_done(d);
		break;
	case IDE_END_ATA_WRITE:
		ata_write_block_done(d);
		break;
	case IDE_END_ATAPI_PIO_IN:
	case IDE_END_ATAPI_PIO_OUT:
	case IDE_END_ATAPI_PACKET:
		atapi_end_block(d, d->end_block);
		break;
	}
}

/* The block request @what of the current command completed with @ret. */
static void req_done(struct ide_drive *d, enum ide_req_done what, int ret)
{
	switch (what) {
	case IDE_REQ_NONE:
		break;
	case IDE_REQ_ATA_READ_CHUNK:
		ata_read_chunk_done(d, ret);
		break;
	case IDE_REQ_ATA_WRITE:
		ata_write_done(d, ret);
		break;
	case IDE_REQ_FLUSH:
		flush_done(d, ret);
		break;
	case IDE_REQ_DMA_SEGMENT:
		dma_segment_done(d, ret);
		break;
	case IDE_REQ_ATAPI_READ_CHUNK:
		atapi_req_done(d, what, ret);
		break;
	}
}

/* ---- legacy port I/O -------------------------------------------------- */

static uint64_t data_read(struct ide_drive *d, unsigned size)
{
	uint64_t v = 0;

	if (!d->present || !(d->status & ST_DRQ) || d->pio_out ||
	    d->status & ST_BSY || d->dma_pending || d->dma_running)
		return 0;
	for (unsigned i = 0; i < size && d->pos < d->end; i++)
		v |= (uint64_t)d->buf[d->pos++] << (8 * i);
	if (d->pos >= d->end) {
		d->status &= (uint8_t)~ST_DRQ;
		end_block(d);
	}
	return v;
}

static void data_write(struct ide_drive *d, uint64_t v, unsigned size)
{
	if (!d->present || !(d->status & ST_DRQ) || !d->pio_out ||
	    d->status & ST_BSY)
		return;
	for (unsigned i = 0; i < size && d->pos < d->end; i++)
		d->buf[d->pos++] = (uint8_t)(v >> (8 * i));
	if (d->pos >= d->end) {
		d->status &= (uint8_t)~ST_DRQ;
		d->pio_out = false;
		end_block(d);
	}
}

static uint8_t reg_read(struct ide_channel *ch, unsigned reg)
{
	struct ide_drive *d = cur_drive(ch);
	bool hob = ch->devctl & DEVCTL_HOB;

	switch (reg) {
	case REG_ERROR:
		return d->present ? d->error : 0;
	case REG_NSECTOR:
		return hob ? d->hob_nsector : d->nsector;
	case REG_LBAL:
		return hob ? d->hob_lbal : d->lbal;
	case REG_LBAM:
		return hob ? d->hob_lbam : d->lbam;
	case REG_LBAH:
		return hob ? d->hob_lbah : d->lbah;
	case REG_DEVICE:
		return ch->select;
	case REG_STATUS:
		if (!d->present)
			return 0;
		d->intrq = false;
		update_irq(ch);
		return d->status;
	}
	return 0xff;
}

static void reg_write(struct ide_channel *ch, unsigned reg, uint8_t v)
{
	if (reg == REG_STATUS) {
		command_write(ch, v);
		return;
	}
	ch->devctl &= (uint8_t)~DEVCTL_HOB;	/* §7.9: cleared by writes */
	if (reg == REG_DEVICE) {
		ch->select = v;
		update_irq(ch);
		return;
	}
	for (unsigned i = 0; i < 2; i++) {
		struct ide_drive *d = &ch->drive[i];

		switch (reg) {
		case REG_ERROR:
			d->hob_feature = d->feature;
			d->feature = v;
			break;
		case REG_NSECTOR:
			d->hob_nsector = d->nsector;
			d->nsector = v;
			break;
		case REG_LBAL:
			d->hob_lbal = d->lbal;
			d->lbal = v;
			break;
		case REG_LBAM:
			d->hob_lbam = d->lbam;
			d->lbam = v;
			break;
		case REG_LBAH:
			d->hob_lbah = d->lbah;
			d->lbah = v;
			break;
		}
	}
}

/* All-ones of @size bytes: a floating bus. */
static uint64_t ones(unsigned size)
{
	return size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
}

static uint64_t cmd_block_read(void *opaque, uint64_t offset, unsigned size)
{
	struct ide_channel *ch = opaque;
	uint64_t v = 0;

	if (!channel_decodes(ch) || channel_empty(ch))
		return ones(size);
	if (offset == REG_DATA)
		return data_read(cur_drive(ch), size);
	for (unsigned i = 0; i < size && offset + i < 8; i++)
		v |= (uint64_t)reg_read(ch, (unsigned)offset + i) << (8 * i);
	return v;
}

static void cmd_block_write(void *opaque, uint64_t offset, uint64_t value,
			    unsigned size)
{
	struct ide_channel *ch = opaque;

	if (!channel_decodes(ch))
		return;
	if (offset == REG_DATA) {
		data_write(cur_drive(ch), value, size);
		return;
	}
	for (unsigned i = 0; i < size && offset + i < 8; i++)
		reg_write(ch, (unsigned)offset + i, (uint8_t)(value >> (8 * i)));
}

static uint64_t ctl_block_read(void *opaque, uint64_t offset, unsigned size)
{
	struct ide_channel *ch = opaque;
	struct ide_drive *d = cur_drive(ch);

	if (!channel_decodes(ch) || channel_empty(ch))
		return ones(size);
	return d->present ? d->status : 0;	/* alternate status */
}

static void ctl_block_write(void *opaque, uint64_t offset, uint64_t value,
			    unsigned size)
{
	struct ide_channel *ch = opaque;

	if (channel_decodes(ch))
		devctl_write(ch, (uint8_t)value);
}

static const struct bus_ops cmd_block_ops = {
	.name = "ide",
	.read = cmd_block_read,
	.write = cmd_block_write,
};

static const struct bus_ops ctl_block_ops = {
	.name = "ide-ctl",
	.read = ctl_block_read,
	.write = ctl_block_write,
};

/* ---- bus master registers (BAR4) -------------------------------------------- */

static struct ide_drive *dma_drive(struct ide_channel *ch)
{
	struct ide_drive *d = cur_drive(ch);

	if (d->dma_pending)
		return d;
	d = &ch->drive[d->unit ^ 1];
	return d->dma_pending ? d : NULL;
}

static uint8_t bm_read_byte(struct ide_channel *ch, unsigned off)
{
	switch (off) {
	case BM_CMD:
		return ch->bm_cmd;
	case BM_STATUS:
		return ch->bm_status;
	case BM_PRD: case BM_PRD + 1: case BM_PRD + 2: case BM_PRD + 3:
		return (uint8_t)(ch->prd_table >> (8 * (off - BM_PRD)));
	}
	return 0;
}

static void bm_cmd_write(struct ide_channel *ch, uint8_t v)
{
	uint8_t old = ch->bm_cmd;

	/* RWCON is read-only while the engine runs. */
	if (old & BM_CMD_START)
		v = (uint8_t)((v & BM_CMD_START) | (old & BM_CMD_WRITE));
	ch->bm_cmd = v & (BM_CMD_START | BM_CMD_WRITE);
	if (!(old & BM_CMD_START) && (v & BM_CMD_START)) {
		struct ide_drive *d = dma_drive(ch);

		ch->bm_status |= BM_ST_ACTIVE;
		if (d && bus_master_enabled(ch))
			dma_begin(d);
	} else if ((old & BM_CMD_START) && !(v & BM_CMD_START)) {
		/* A transfer in flight completes; its data stays. */
		ch->bm_status &= (uint8_t)~BM_ST_ACTIVE;
	}
}

static void bm_write_byte(struct ide_channel *ch, unsigned off, uint8_t v)
{
	switch (off) {
	case BM_CMD:
		bm_cmd_write(ch, v);
		break;
	case BM_STATUS:
		ch->bm_status = (uint8_t)((ch->bm_status & ~BM_ST_DMA_CAP &
					   ~(v & (BM_ST_ERROR | BM_ST_INTR))) |
					  (v & BM_ST_DMA_CAP));
		break;
	case BM_PRD: case BM_PRD + 1: case BM_PRD + 2: case BM_PRD + 3: {
		unsigned sh = 8 * (off - BM_PRD);

		ch->prd_table = (ch->prd_table & ~(0xffu << sh)) |
				(uint32_t)v << sh;
		ch->prd_table &= ~3u;
		break;
	}
	}
}

static uint64_t bm_read(void *opaque, uint64_t offset, unsigned size)
{
	struct piix_ide *ide = opaque;
	uint64_t v = 0;

	for (unsigned i = 0; i < size && offset + i < 16; i++) {
		unsigned o = (unsigned)offset + i;

		v |= (uint64_t)bm_read_byte(&ide->ch[o / 8], o % 8) << (8 * i);
	}
	return v;
}

static void bm_write(void *opaque, uint64_t offset, uint64_t value,
		     unsigned size)
{
	struct piix_ide *ide = opaque;

	for (unsigned i = 0; i < size && offset + i < 16; i++) {
		unsigned o = (unsigned)offset + i;

		bm_write_byte(&ide->ch[o / 8], o % 8, (uint8_t)(value >> (8 * i)));
	}
}

static const struct bus_ops bm_ops = {
	.name = "ide-busmaster",
	.read = bm_read,
	.write = bm_write,
};

/* ---- construction --------------------------------------------------------- */

static void default_geometry(struct ide_drive *d)
{
	uint64_t total = d->nsectors;
	uint64_t cyls;

	d->heads = 16;
	d->secs = 63;
	cyls = total / (16 * 63);
	if (cyls > 16383)
		cyls = 16383;
	if (cyls < 1)
		cyls = 1;
	d->cyls = (uint16_t)cyls;
	d->cur_heads = d->heads;
	d->cur_secs = d->secs;
}

static int drive_init(struct piix_ide *ide, unsigned pos,
		      const struct ide_drive_config *dc)
{
	struct ide_drive *d = &ide->ch[pos / 2].drive[pos % 2];

	d->ch = &ide->ch[pos / 2];
	d->unit = pos % 2;
	if (!dc->blk && !dc->cdrom)
		return 0;
	d->present = true;
	d->cdrom = dc->cdrom;
	d->blk = dc->blk;
	d->buf = calloc(1, IDE_BUF_SIZE);
	if (!d->buf)
		return -ENOMEM;
	snprintf(d->serial, sizeof(d->serial), "VV%08u", 1000 + pos);
	d->wce = true;
	if (d->cdrom) {
		atapi_set_medium(d);
	} else {
		d->nsectors = blk_length(d->blk) / ATA_SECTOR;
		default_geometry(d);
	}
	reset_done(d);
	return 0;
}

static void set_err(char *err, size_t errlen, const char *what, int ret)
{
	if (err && errlen)
		snprintf(err, errlen, "IDE controller: %s: %s", what,
			 strerror(-ret));
}

struct piix_ide *piix_ide_new(const struct piix_ide_config *cfg, char *err,
			      size_t errlen)
{
	struct piix_ide *ide = calloc(1, sizeof(*ide));
	int ret;

	if (!ide) {
		set_err(err, errlen, "allocation", -ENOMEM);
		return NULL;
	}
	ide->host = cfg->pci;
	ide->pio = cfg->pio;
	ide->mem = cfg->mem;
	ide->lock = cfg->lock;
	for (unsigned c = 0; c < 2; c++) {
		ide->ch[c].ide = ide;
		ide->ch[c].index = c;
		ide->ch[c].irq = cfg->irq[c];
	}
	for (unsigned pos = 0; pos < PIIX_IDE_DRIVES; pos++) {
		const struct ide_drive_config *dc = &cfg->drive[pos];

		if (dc->blk && !dc->cdrom &&
		    blk_length(dc->blk) < ATA_SECTOR) {
			if (err && errlen)
				snprintf(err, errlen,
					 "IDE disk '%s' is smaller than one "
					 "512-byte sector", blk_path(dc->blk));
			goto fail;
		}
		ret = drive_init(ide, pos, dc);
		if (ret < 0) {
			set_err(err, errlen, "allocation", ret);
			goto fail;
		}
	}

	pci_device_init(&ide->pci, 0x8086, 0x7010, 0x00, 0x010180, 0, 0, 0);
	ide->pci.config[PCI_STATUS] = 0x80;		/* fast back-to-back */
	ide->pci.config[PCI_STATUS + 1] = 0x02;	/* DEVSEL medium */
	/* IDETIM (both channels) and SIDETIM are read/write; decode on. */
	for (unsigned o = PIIX_IDETIM; o <= PIIX_SIDETIM; o++)
		ide->pci.wmask[o] = 0xff;
	ide->pci.config[PIIX_IDETIM + 1] = PIIX_IDETIM_IDE >> 8;
	ide->pci.config[PIIX_IDETIM + 3] = PIIX_IDETIM_IDE >> 8;
	ide->pci.opaque = ide;
	ret = pci_device_set_bar(&ide->pci, 4, PCI_BAR_IO, 16, false, &bm_ops,
				 ide);
	if (ret < 0) {
		set_err(err, errlen, "bus master BAR", ret);
		goto fail;
	}
	for (unsigned c = 0; c < 2; c++) {
		ret = bus_register(cfg->pio, legacy_cmd_base[c], 8,
				   &cmd_block_ops, &ide->ch[c]);
		if (ret < 0) {
			set_err(err, errlen, "legacy ports", ret);
			goto fail;
		}
		ide->ports_registered |= 1u << (2 * c);
		ret = bus_register(cfg->pio, legacy_ctl_base[c], 1,
				   &ctl_block_ops, &ide->ch[c]);
		if (ret < 0) {
			set_err(err, errlen, "legacy ports", ret);
			goto fail;
		}
		ide->ports_registered |= 1u << (2 * c + 1);
	}
	ret = pci_add_device(cfg->pci, &ide->pci, cfg->devfn);
	if (ret < 0) {
		set_err(err, errlen, "PCI function", ret);
		goto fail;
	}
	return ide;
fail:
	piix_ide_free(ide);
	return NULL;
}

void piix_ide_drain(struct piix_ide *ide)
{
	if (!ide)
		return;
	for (;;) {
		struct blk *b = NULL;

		pthread_mutex_lock(ide->lock);
		for (unsigned pos = 0; pos < PIIX_IDE_DRIVES && !b; pos++) {
			struct ide_drive *d = &ide->ch[pos / 2].drive[pos % 2];

			if (d->inflight)
				b = d->req_blk;
		}
		pthread_mutex_unlock(ide->lock);
		if (!b)
			return;
		blk_drain(b);
	}
}

void piix_ide_free(struct piix_ide *ide)
{
	if (!ide)
		return;
	for (unsigned c = 0; c < 2; c++) {
		if (ide->ports_registered & (1u << (2 * c)))
			bus_unregister(ide->pio, legacy_cmd_base[c]);
		if (ide->ports_registered & (1u << (2 * c + 1)))
			bus_unregister(ide->pio, legacy_ctl_base[c]);
	}
	pci_device_cleanup(&ide->pci);	/* takes it off the bus too */
	for (unsigned pos = 0; pos < PIIX_IDE_DRIVES; pos++)
		free(ide->ch[pos / 2].drive[pos % 2].buf);
	free(ide);
}

static struct ide_drive *cdrom_at(struct piix_ide *ide, unsigned pos)
{
	struct ide_drive *d;

	if (!ide || pos >= PIIX_IDE_DRIVES)
		return NULL;
	d = &ide->ch[pos / 2].drive[pos % 2];
	return d->present && d->cdrom ? d : NULL;
}

int piix_ide_change_media(struct piix_ide *ide, unsigned pos, struct blk *blk,
			  struct blk **old)
{
	struct ide_drive *d = cdrom_at(ide, pos);

	if (!d)
		return -EINVAL;
	if (d->locked && d->blk && !d->tray_open) {
		d->media_event = MEDIA_EV_EJECT_REQUEST;
		return -EBUSY;
	}
	if (old)
		*old = d->blk;
	d->blk = blk;
	d->tray_open = false;
	atapi_set_medium(d);
	if (blk) {
		d->unit_attention = true;
		d->media_event = MEDIA_EV_NEW_MEDIA;
	} else {
		d->media_event = MEDIA_EV_REMOVAL;
	}
	return 0;
}

bool piix_ide_tray_locked(struct piix_ide *ide, unsigned pos)
{
	struct ide_drive *d = cdrom_at(ide, pos);

	return d && d->locked;
}

bool piix_ide_tray_open(struct piix_ide *ide, unsigned pos)
{
	struct ide_drive *d = cdrom_at(ide, pos);

	return d && d->tray_open;
}

/* ---- the machine's device table ---------------------------------------- */

/* In-flight requests complete under the device lock: wait for them
 * before the machine takes it to free the device. */
static void piix_ide_dev_quiesce(void *dev)
{
	piix_ide_drain(dev);
}

static void piix_ide_dev_free(void *dev)
{
	piix_ide_free(dev);
}

/* ---- saved state (PIIX_IDE_STATE_TYPE in ide.h) ------------------------ */

#define ST_ID		"(bbbt)"
#define ST_TF		"(yyyyyyyyyyyyb)"
#define ST_SET		"(qquyb)"
#define ST_PIO		"(ayuuubyttub)"
#define ST_DMA		"(bbbbby)"
#define ST_ATAPI	"(bbuayyyybbby)"
#define ST_DRIVE	"(" ST_ID ST_TF ST_SET ST_PIO ST_DMA ST_ATAPI ")"
#define ST_CHANNEL	"(yybyyut" ST_DRIVE ST_DRIVE ")"

/* The bytes of buf that hold data: the DRQ block and what is filled. */
static uint32_t buf_used(uint32_t end, uint32_t fill)
{
	return end > fill ? end : fill;
}

static GVariant *drive_save(const struct ide_drive *d)
{
	uint32_t used = buf_used(d->end, d->fill);

	return g_variant_new("(@" ST_ID "@" ST_TF "@" ST_SET "@" ST_PIO "@" ST_DMA
			     "@" ST_ATAPI ")",
		g_variant_new(ST_ID, d->present, d->cdrom, d->blk != NULL,
			      (guint64)d->nsectors),
		g_variant_new(ST_TF, d->feature, d->nsector, d->lbal, d->lbam,
			      d->lbah, d->hob_feature, d->hob_nsector,
			      d->hob_lbal, d->hob_lbam, d->hob_lbah, d->status,
			      d->error, d->intrq),
		g_variant_new(ST_SET, d->cur_heads, d->cur_secs, (guint32)d->mult,
			      d->xfer_mode, d->wce),
		g_variant_new("(@ayuuubyttub)",
			      g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE,
							d->buf ? d->buf : (const uint8_t *)"",
							d->buf ? used : 0, 1),
			      d->pos, d->end, d->fill, d->pio_out,
			      (guint8)d->end_block, (guint64)d->offset,
			      (guint64)d->left, d->drq_bytes, d->is_write),
		g_variant_new(ST_DMA, d->dma_pending, d->dma_running, d->dma_buf,
			      d->dma_table_end, d->dma_short, (guint8)d->req_done),
		g_variant_new("(bbu@ayyyybbby)", d->atapi_dma, d->medium_read,
			      d->byte_limit,
			      g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, d->cdb,
							sizeof(d->cdb), 1),
			      d->sense_key, d->asc, d->ascq, d->unit_attention,
			      d->tray_open, d->locked, d->media_event));
}

/* NULL while a block request is in flight: quiesce first (device.h). */
static GVariant *piix_ide_dev_save(void *dev)
{
	struct piix_ide *ide = dev;
	GVariant *ch[2];

	for (unsigned pos = 0; pos < PIIX_IDE_DRIVES; pos++) {
		const struct ide_drive *d = &ide->ch[pos / 2].drive[pos % 2];

		if (d->inflight || d->req_done != IDE_REQ_NONE ||
		    d->reset_pending || d->dma_running) {
			vlog(LOG_ERROR, "piix-ide: drive %u has a request in flight: not saved",
			     pos);
			return NULL;
		}
	}
	for (unsigned c = 0; c < 2; c++) {
		const struct ide_channel *p = &ide->ch[c];

		ch[c] = g_variant_new("(yybyyut@" ST_DRIVE "@" ST_DRIVE ")",
				      p->select, p->devctl, p->irq_level,
				      p->bm_cmd, p->bm_status, p->prd_table,
				      (guint64)p->prd_done,
				      drive_save(&p->drive[0]),
				      drive_save(&p->drive[1]));
	}
	return g_variant_new("(@" ST_CHANNEL "@" ST_CHANNEL ")", ch[0], ch[1]);
}

static bool xfer_mode_ok(uint8_t m)
{
	return m <= 0x01 || (m >= 0x08 && m <= 0x0c) ||
	       (m >= 0x20 && m <= 0x22) || (m >= 0x40 && m <= 0x45);
}

/* Read drive @pos from @v into @t (a copy of the live drive, whose wiring
 * and medium it keeps; t->buf is left alone, the saved bytes go to *@bytes)
 * and check it against what the drive's code can leave between requests. */
static int drive_load(GVariant *v, struct ide_drive *t, unsigned pos,
		      GVariant **bytes, char *err, size_t errlen)
{
	GVariant *id, *tf, *set, *pio, *dma, *at, *cdb;
	gboolean present, cdrom, medium, b[16];
	guint64 nsectors, offset, left, size;
	guint32 mult;
	guint8 end_block, req_done;
	const void *p;
	gsize len, blen;
	uint32_t sector;

	g_variant_get(v, "(@" ST_ID "@" ST_TF "@" ST_SET "@" ST_PIO "@" ST_DMA
		      "@" ST_ATAPI ")", &id, &tf, &set, &pio, &dma, &at);
	g_variant_get(id, ST_ID, &present, &cdrom, &medium, &nsectors);
	g_variant_get(tf, ST_TF, &t->feature, &t->nsector, &t->lbal, &t->lbam,
		      &t->lbah, &t->hob_feature, &t->hob_nsector, &t->hob_lbal,
		      &t->hob_lbam, &t->hob_lbah, &t->status, &t->error, &b[0]);
	t->intrq = b[0];
	g_variant_get(set, ST_SET, &t->cur_heads, &t->cur_secs, &mult,
		      &t->xfer_mode, &b[1]);
	t->mult = mult;
	t->wce = b[1];
	g_variant_get(pio, "(@ayuuubyttub)", bytes, &t->pos, &t->end, &t->fill,
		      &b[2], &end_block, &offset, &left, &t->drq_bytes, &b[3]);
	t->pio_out = b[2];
	t->offset = offset;
	t->left = left;
	t->is_write = b[3];
	g_variant_get(dma, ST_DMA, &b[4], &b[5], &b[6], &b[7], &b[8], &req_done);
	t->dma_pending = b[4];
	t->dma_running = b[5];
	t->dma_buf = b[6];
	t->dma_table_end = b[7];
	t->dma_short = b[8];
	g_variant_get(at, "(bbu@ayyyybbby)", &b[9], &b[10], &t->byte_limit, &cdb,
		      &t->sense_key, &t->asc, &t->ascq, &b[11], &b[12], &b[13],
		      &t->media_event);
	t->atapi_dma = b[9];
	t->medium_read = b[10];
	t->unit_attention = b[11];
	t->tray_open = b[12];
	t->locked = b[13];
	p = g_variant_get_fixed_array(cdb, &len, 1);
	if (len == sizeof(t->cdb))
		memcpy(t->cdb, p, len);
	g_variant_unref(cdb);
	g_variant_unref(id);
	g_variant_unref(tf);
	g_variant_unref(set);
	g_variant_unref(pio);
	g_variant_unref(dma);
	g_variant_unref(at);
	g_variant_get_fixed_array(*bytes, &blen, 1);

	if (present != t->present || cdrom != t->cdrom)
		return device_load_fail(err, errlen, "piix-ide: drive %u was %s, this machine has %s there",
				 pos, !present ? "absent" : cdrom ? "a CD-ROM" : "a disk",
				 !t->present ? "none" : t->cdrom ? "a CD-ROM" : "a disk");
	if (medium != (t->blk != NULL) || nsectors != t->nsectors)
		return device_load_fail(err, errlen, "piix-ide: drive %u had %s of %llu sectors, this machine's has %llu",
				 pos, medium ? "a medium" : "no medium",
				 (unsigned long long)nsectors,
				 (unsigned long long)t->nsectors);
	if (len != sizeof(t->cdb))
		return device_load_fail(err, errlen, "piix-ide: drive %u packet of %zu bytes, not 12",
				 pos, (size_t)len);
	if (t->dma_running || req_done != IDE_REQ_NONE)
		return device_load_fail(err, errlen, "piix-ide: drive %u was saved with a request in flight",
				 pos);
	if (end_block > IDE_END_ATAPI_PACKET)
		return device_load_fail(err, errlen, "piix-ide: drive %u data phase step %u out of range",
				 pos, end_block);
	t->end_block = (enum ide_end_block)end_block;
	if (!t->present) {
		if (blen || t->pos || t->end || t->fill ||
		    t->end_block != IDE_END_NONE || t->dma_pending)
			return device_load_fail(err, errlen, "piix-ide: absent drive %u has a data phase",
					 pos);
		return 0;
	}
	if (t->end > IDE_BUF_SIZE || t->fill > IDE_BUF_SIZE || t->pos > t->end ||
	    blen != buf_used(t->end, t->fill))
		return device_load_fail(err, errlen, "piix-ide: drive %u buffer position %u, block end %u, fill %u or %zu saved bytes out of range",
				 pos, t->pos, t->end, t->fill, (size_t)blen);
	sector = t->cdrom ? CD_SECTOR : ATA_SECTOR;
	size = t->nsectors * sector;
	/* A disc change keeps a command's medium position (its next read
	 * fails: no disc, or past the new one's end), so a CD-ROM's is
	 * bounded by what READ(12) can address, not by the disc now in. */
	if (t->cdrom)
		size = (1ull << 32) * CD_SECTOR;
	if (t->offset > size || t->left > size - t->offset ||
	    t->offset % ATA_SECTOR || t->left % ATA_SECTOR)
		return device_load_fail(err, errlen, "piix-ide: drive %u medium transfer at %llu, %llu bytes left, is outside the medium",
				 pos, (unsigned long long)t->offset,
				 (unsigned long long)t->left);
	if ((t->mult > IDE_MAX_MULT || (t->mult & (t->mult - 1))) ||
	    !xfer_mode_ok(t->xfer_mode) ||
	    t->drq_bytes > IDE_MAX_MULT * ATA_SECTOR ||
	    t->cur_heads > 16 || t->cur_secs > 255 ||
	    (!t->cdrom && (!t->cur_heads || !t->cur_secs)))
		return device_load_fail(err, errlen, "piix-ide: drive %u settings out of range (multiple %u, mode 0x%02x, DRQ block %u, geometry %u/%u)",
				 pos, t->mult, t->xfer_mode, t->drq_bytes,
				 t->cur_heads, t->cur_secs);
	switch (t->end_block) {
	case IDE_END_NONE:
		break;
	case IDE_END_ATA_READ:
		if (t->pio_out || !t->drq_bytes || t->end > t->fill ||
		    (t->cdrom && t->left))
			return device_load_fail(err, errlen, "piix-ide: drive %u PIO read state inconsistent",
					 pos);
		break;
	case IDE_END_ATA_WRITE:
		if (t->cdrom || !t->pio_out || !t->drq_bytes || t->end > t->left)
			return device_load_fail(err, errlen, "piix-ide: drive %u PIO write state inconsistent",
					 pos);
		break;
	default:	/* the ATAPI steps */
		if (!t->cdrom || (t->end_block != IDE_END_ATAPI_PACKET &&
				  !t->byte_limit) ||
		    (t->end_block == IDE_END_ATAPI_PIO_IN && t->end > t->fill))
			return device_load_fail(err, errlen, "piix-ide: drive %u ATAPI data phase inconsistent",
					 pos);
		break;
	}
	if (t->dma_pending && (t->end_block != IDE_END_NONE ||
			       (t->dma_buf && t->left)))
		return device_load_fail(err, errlen, "piix-ide: drive %u DMA wait inconsistent with its data phase",
				 pos);
	if ((t->byte_limit & 1) || t->byte_limit > 0xfffe ||
	    t->sense_key > 0xf || t->media_event > MEDIA_EV_REMOVAL)
		return device_load_fail(err, errlen, "piix-ide: drive %u ATAPI byte limit %u, sense key %u or media event %u out of range",
				 pos, t->byte_limit, t->sense_key, t->media_event);
	return 0;
}

/* Everything is checked on copies before any drive changes; then the
 * buffers are copied in and each channel's IRQ driven to its saved level.
 * The PCI function (config space, BAR4 mapping, IDE decode) is the PCI
 * host's section. */
static int piix_ide_dev_load(void *dev, uint32_t version, GVariant *state,
			     char *err, size_t errlen)
{
	struct piix_ide *ide = dev;
	struct ide_channel ch[2];
	GVariant *cv[2], *dv[2][2], *bytes[2][2] = { { NULL } };
	gboolean level[2];
	guint64 prd_done;
	int r = 0;

	r = device_state_check("piix-ide", version, 1, state, PIIX_IDE_STATE_TYPE,
			       err, errlen);
	if (r < 0)
		return r;
	g_variant_get(state, "(@" ST_CHANNEL "@" ST_CHANNEL ")", &cv[0], &cv[1]);
	for (unsigned c = 0; c < 2; c++) {
		ch[c] = ide->ch[c];
		g_variant_get(cv[c], "(yybyyut@" ST_DRIVE "@" ST_DRIVE ")",
			      &ch[c].select, &ch[c].devctl, &level[c],
			      &ch[c].bm_cmd, &ch[c].bm_status, &ch[c].prd_table,
			      &prd_done, &dv[c][0], &dv[c][1]);
		ch[c].prd_done = prd_done;
		ch[c].irq_level = level[c];
		g_variant_unref(cv[c]);
		for (unsigned u = 0; u < 2; u++) {
			if (!r)
				r = drive_load(dv[c][u], &ch[c].drive[u], 2 * c + u,
					       &bytes[c][u], err, errlen);
			g_variant_unref(dv[c][u]);
		}
	}
	for (unsigned c = 0; c < 2 && !r; c++) {
		const struct ide_drive *d = &ch[c].drive[(ch[c].select & DEV_DEV) ? 1 : 0];
		bool want = d->present && d->intrq && !(ch[c].devctl & DEVCTL_NIEN);

		if ((ch[c].bm_cmd & ~(BM_CMD_START | BM_CMD_WRITE)) ||
		    (ch[c].bm_status & ~(BM_ST_ACTIVE | BM_ST_ERROR | BM_ST_INTR |
					 BM_ST_DMA_CAP)) ||
		    (ch[c].prd_table & 3))
			r = device_load_fail(err, errlen, "piix-ide: channel %u bus master command 0x%02x, status 0x%02x or PRD table 0x%x out of range",
				      c, ch[c].bm_cmd, ch[c].bm_status, ch[c].prd_table);
		else if (ch[c].irq_level != want)
			r = device_load_fail(err, errlen, "piix-ide: channel %u IRQ level %d does not match the selected drive's INTRQ",
				      c, ch[c].irq_level);
		for (unsigned u = 0; u < 2 && !r; u++)
			if ((ch[c].drive[u].status & ST_BSY) &&
			    !(ch[c].devctl & DEVCTL_SRST))
				r = device_load_fail(err, errlen, "piix-ide: drive %u busy with no request and no reset",
					      2 * c + u);
	}
	if (r == 0) {
		for (unsigned c = 0; c < 2; c++) {
			for (unsigned u = 0; u < 2; u++) {
				struct ide_drive *d = &ide->ch[c].drive[u];
				const void *p;
				gsize n;

				ch[c].drive[u].buf = d->buf;
				*d = ch[c].drive[u];
				p = g_variant_get_fixed_array(bytes[c][u], &n, 1);
				if (n)
					memcpy(d->buf, p, n);
			}
			ide->ch[c].select = ch[c].select;
			ide->ch[c].devctl = ch[c].devctl;
			ide->ch[c].bm_cmd = ch[c].bm_cmd;
			ide->ch[c].bm_status = ch[c].bm_status;
			ide->ch[c].prd_table = ch[c].prd_table;
			ide->ch[c].prd_done = ch[c].prd_done;
			ide->ch[c].irq_level = ch[c].irq_level;
			irq_line_set(&ide->ch[c].irq, ide->ch[c].irq_level);
		}
	}
	for (unsigned c = 0; c < 2; c++)
		for (unsigned u = 0; u < 2; u++)
			if (bytes[c][u])
				g_variant_unref(bytes[c][u]);
	return r;
}

const struct device_ops piix_ide_device_ops = {
	.name = "piix-ide",
	.quiesce = piix_ide_dev_quiesce,
	.save = piix_ide_dev_save,
	.load = piix_ide_dev_load,
	.state_version = 1,
	.free = piix_ide_dev_free,
};
