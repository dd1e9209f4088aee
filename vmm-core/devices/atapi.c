/* SPDX-License-Identifier: MIT */
/*
 * ATAPI CD/DVD-ROM: the PACKET protocol (ATA/ATAPI-6 §9.10 PIO, §9.11 DMA)
 * and the MMC-5 commands installers, firmware and Linux's sr/cdrom use.
 * The disc is an ISO image read in 2048-byte sectors: one data track,
 * one session.
 *
 * Sense: a command that fails stores its sense key/ASC/ASCQ, puts the key
 * in the error register (bits 7:4) and sets ERR; REQUEST SENSE reports it.
 * Every command but REQUEST SENSE first clears the stored sense.
 * A disc inserted by the host raises UNIT ATTENTION / 28h MEDIUM MAY HAVE
 * CHANGED, reported (once) by the next command other than INQUIRY, REQUEST
 * SENSE, GET CONFIGURATION and GET EVENT STATUS NOTIFICATION (MMC-5
 * §4.1.6.1).
 *
 * Tray: the guest opens it with START STOP UNIT (LoEj, unless PREVENT
 * ALLOW MEDIUM REMOVAL locked it) and closes it again with the same disc;
 * with the tray open the drive has no medium (NOT READY / 3Ah/02h).
 */
#include "ide_internal.h"

#include <errno.h>
#include <string.h>

#include "../log.h"

/* MMC-5 / SPC-3 operation codes. */
#define GPCMD_TEST_UNIT_READY		0x00
#define GPCMD_REQUEST_SENSE		0x03
#define GPCMD_INQUIRY			0x12
#define GPCMD_MODE_SELECT_6		0x15
#define GPCMD_MODE_SENSE_6		0x1a
#define GPCMD_START_STOP_UNIT		0x1b
#define GPCMD_PREVENT_ALLOW		0x1e
#define GPCMD_READ_CAPACITY		0x25
#define GPCMD_READ_10			0x28
#define GPCMD_SEEK_10			0x2b
#define GPCMD_READ_TOC			0x43
#define GPCMD_GET_CONFIGURATION		0x46
#define GPCMD_GET_EVENT_STATUS		0x4a
#define GPCMD_READ_DISC_INFO		0x51
#define GPCMD_READ_TRACK_INFO		0x52
#define GPCMD_MODE_SELECT_10		0x55
#define GPCMD_MODE_SENSE_10		0x5a
#define GPCMD_READ_12			0xa8
#define GPCMD_SET_CD_SPEED		0xbb
#define GPCMD_MECHANISM_STATUS		0xbd
#define GPCMD_READ_CD			0xbe

/* Additional sense codes. */
#define ASC_INVALID_OPCODE		0x20
#define ASC_LBA_OUT_OF_RANGE		0x21
#define ASC_INVALID_FIELD		0x24
#define ASC_MEDIUM_MAY_HAVE_CHANGED	0x28
#define ASC_SAVING_NOT_SUPPORTED	0x39
#define ASC_MEDIUM_NOT_PRESENT		0x3a
#define ASC_REMOVAL_PREVENTED		0x53
#define ASC_ILLEGAL_MODE_FOR_TRACK	0x64
#define ASC_UNRECOVERED_READ		0x11

/* MMC profiles. */
#define PROFILE_CD_ROM		0x0008
#define PROFILE_DVD_ROM		0x0010
/* Discs larger than 80 minutes of CD are DVDs. */
#define CD_MAX_SECTORS		(80u * 60 * 75)

/* Command flags. */
#define F_ALLOW_UA	0x01	/* reported even with a unit attention */
#define F_MEDIUM	0x02	/* needs a disc */

/* ---- helpers ------------------------------------------------------------ */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* MSF of a logical block (the 2-second pregap: LBA 0 is 00:02:00). */
static void put_msf(uint8_t *p, uint32_t lba)
{
	uint32_t f = lba + 150;

	p[0] = (uint8_t)(f / (60 * 75));
	p[1] = (uint8_t)(f / 75 % 60);
	p[2] = (uint8_t)(f % 75);
}

static void put_addr(uint8_t *p, uint32_t lba, bool msf)
{
	if (msf) {
		p[0] = 0;
		put_msf(p + 1, lba);
	} else {
		put32(p, lba);
	}
}

static bool medium_present(const struct ide_drive *d)
{
	return d->blk && !d->tray_open;
}

static bool is_dvd(const struct ide_drive *d)
{
	return d->nsectors > CD_MAX_SECTORS;
}

void atapi_set_medium(struct ide_drive *d)
{
	d->nsectors = d->blk ? blk_length(d->blk) / CD_SECTOR : 0;
}

void atapi_reset(struct ide_drive *d)
{
	d->sense_key = d->asc = d->ascq = 0;
	d->atapi_dma = false;
	d->medium_read = false;
}

/* ---- completion --------------------------------------------------------- */

static void atapi_ok(struct ide_drive *d)
{
	d->status = ST_DRDY;
	d->error = 0;
	d->nsector = IREASON_IO | IREASON_COD;
	d->end_block = IDE_END_NONE;
	d->pio_out = false;
	ide_raise_irq(d);
}

/* CHECK CONDITION with @key/@asc/@ascq. */
static void atapi_fail(struct ide_drive *d, uint8_t key, uint8_t asc,
		       uint8_t ascq)
{
	d->sense_key = key;
	d->asc = asc;
	d->ascq = ascq;
	d->status = ST_DRDY | ST_ERR;
	d->error = (uint8_t)(key << 4);
	d->nsector = IREASON_IO | IREASON_COD;
	d->end_block = IDE_END_NONE;
	d->pio_out = false;
	d->left = 0;
	ide_raise_irq(d);
}

static void fail_not_ready(struct ide_drive *d)
{
	atapi_fail(d, SENSE_NOT_READY, ASC_MEDIUM_NOT_PRESENT,
		   d->tray_open ? 0x02 : 0x01);
}

static void fail_invalid_field(struct ide_drive *d)
{
	atapi_fail(d, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD, 0);
}

void atapi_dma_done(struct ide_drive *d, int err)
{
	if (err == 0)
		atapi_ok(d);
	else if (err == -EFAULT)
		atapi_fail(d, 0x0b /* ABORTED COMMAND */, 0, 0);
	else
		atapi_fail(d, SENSE_MEDIUM_ERROR, ASC_UNRECOVERED_READ, 0);
}

/* ---- data phases ---------------------------------------------------------- */

static void read_chunk(struct ide_drive *d);

/* Next PIO data-in DRQ block (§9.10): byte count in LBA mid/high, an
 * interrupt per block; the status phase after the last. */
static void pio_in_block(struct ide_drive *d)
{
	uint32_t avail = d->fill - d->pos, limit = d->byte_limit;

	if (!avail) {
		if (d->left)
			read_chunk(d);
		else
			atapi_ok(d);
		return;
	}
	if (d->medium_read && limit >= CD_SECTOR)
		limit -= limit % CD_SECTOR;
	if (avail > limit)
		avail = limit;
	d->end = d->pos + avail;
	d->lbam = (uint8_t)avail;
	d->lbah = (uint8_t)(avail >> 8);
	d->nsector = IREASON_IO;
	d->pio_out = false;
	d->end_block = IDE_END_ATAPI_PIO_IN;
	d->status = ST_DRDY | ST_DRQ;
	ide_raise_irq(d);
}

static void pio_out_block(struct ide_drive *d);

/* Move buf[0, len) to the guest (@to_device false) or from it, by DMA or
 * PIO as the PACKET command asked. */
static void buffer_transfer(struct ide_drive *d, uint32_t len, bool to_device)
{
	if (!len) {
		atapi_ok(d);
		return;
	}
	d->fill = len;
	d->pos = 0;
	d->left = 0;
	d->medium_read = false;
	d->is_write = to_device;
	if (d->atapi_dma) {
		d->dma_buf = true;
		ide_dma_queue(d);
	} else if (to_device) {
		pio_out_block(d);
	} else {
		pio_in_block(d);
	}
}

/* Send buf[0, len) to the guest, at most @alloc bytes of it. */
static void reply(struct ide_drive *d, uint32_t len, uint32_t alloc)
{
	buffer_transfer(d, len > alloc ? alloc : len, false);
}

static void read_chunk_done(struct ide_drive *d, int ret)
{
	if (ret < 0) {
		atapi_fail(d, SENSE_MEDIUM_ERROR, ASC_UNRECOVERED_READ, 0);
		return;
	}
	d->fill = (uint32_t)d->req_len;
	d->pos = 0;
	d->offset += d->req_len;
	d->left -= d->req_len;
	pio_in_block(d);
}

static void read_chunk(struct ide_drive *d)
{
	uint32_t n = d->left > IDE_BUF_SIZE ? IDE_BUF_SIZE : (uint32_t)d->left;

	if (!medium_present(d)) {
		fail_not_ready(d);
		return;
	}
	if (!ide_submit_buf(d, BLK_OP_READ, d->offset, n,
			    IDE_REQ_ATAPI_READ_CHUNK))
		atapi_fail(d, SENSE_MEDIUM_ERROR, ASC_UNRECOVERED_READ, 0);
}

/* Read @count sectors from @lba: PIO or DMA. */
static void read_sectors(struct ide_drive *d, uint32_t lba, uint32_t count)
{
	if ((uint64_t)lba + count > d->nsectors) {
		atapi_fail(d, SENSE_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE, 0);
		return;
	}
	if (!count) {
		atapi_ok(d);
		return;
	}
	d->offset = (uint64_t)lba * CD_SECTOR;
	d->left = (uint64_t)count * CD_SECTOR;
	d->fill = d->pos = 0;
	d->medium_read = true;
	d->is_write = false;
	if (d->atapi_dma) {
		d->dma_buf = false;
		ide_dma_queue(d);
	} else {
		read_chunk(d);
	}
}

/* PIO data-out block (parameter lists, MODE SELECT): interrupt reason
 * 00h, ignored once received. */
static void pio_out_block(struct ide_drive *d)
{
	uint32_t avail = d->fill - d->pos;

	if (!avail) {
		atapi_ok(d);
		return;
	}
	if (avail > d->byte_limit)
		avail = d->byte_limit;
	d->end = d->pos + avail;
	d->lbam = (uint8_t)avail;
	d->lbah = (uint8_t)(avail >> 8);
	d->nsector = 0;
	d->pio_out = true;
	d->end_block = IDE_END_ATAPI_PIO_OUT;
	d->status = ST_DRDY | ST_DRQ;
	ide_raise_irq(d);
}

static void receive(struct ide_drive *d, uint32_t len)
{
	buffer_transfer(d, len, true);
}

/* ---- commands ----------------------------------------------------------- */

static void cmd_request_sense(struct ide_drive *d, const uint8_t *cdb)
{
	uint8_t *b = d->buf;
	uint8_t key = d->sense_key, asc = d->asc, ascq = d->ascq;

	if (!key && d->unit_attention) {
		key = SENSE_UNIT_ATTENTION;
		asc = ASC_MEDIUM_MAY_HAVE_CHANGED;
		ascq = 0;
		d->unit_attention = false;
	} else if (!key && !medium_present(d)) {
		key = SENSE_NOT_READY;
		asc = ASC_MEDIUM_NOT_PRESENT;
		ascq = d->tray_open ? 0x02 : 0x01;
	}
	memset(b, 0, 18);
	b[0] = 0x70;			/* current error, fixed format */
	b[2] = key;
	b[7] = 10;			/* additional length */
	b[12] = asc;
	b[13] = ascq;
	d->sense_key = d->asc = d->ascq = 0;
	reply(d, 18, cdb[4]);
}

static void cmd_inquiry(struct ide_drive *d, const uint8_t *cdb)
{
	uint8_t *b = d->buf;

	if (cdb[1] & 1) {		/* EVPD: no vital product data pages */
		fail_invalid_field(d);
		return;
	}
	memset(b, 0, 36);
	b[0] = 0x05;			/* CD/DVD device */
	b[1] = 0x80;			/* removable */
	b[2] = 0x00;
	b[3] = 0x21;			/* ATAPI, response data format 1 */
	b[4] = 36 - 5;
	memcpy(b + 8, "VIVARIUM", 8);
	memcpy(b + 16, "DVD-ROM         ", 16);
	memcpy(b + 32, "1.0 ", 4);
	reply(d, 36, get16(cdb + 3));
}

static void cmd_read_capacity(struct ide_drive *d, const uint8_t *cdb)
{
	put32(d->buf, (uint32_t)(d->nsectors ? d->nsectors - 1 : 0));
	put32(d->buf + 4, CD_SECTOR);
	reply(d, 8, 8);
}

static void cmd_read_cd(struct ide_drive *d, const uint8_t *cdb)
{
	unsigned type = (cdb[1] >> 2) & 7;
	uint32_t count = (uint32_t)cdb[6] << 16 | get16(cdb + 7);

	if (type != 0 && type != 2) {	/* any, or mode 1: our data track */
		atapi_fail(d, SENSE_ILLEGAL_REQUEST,
			   ASC_ILLEGAL_MODE_FOR_TRACK, 0);
		return;
	}
	switch (cdb[9] & 0xf8) {
	case 0x00:			/* no fields: nothing to transfer */
		if ((uint64_t)get32(cdb + 2) + count > d->nsectors)
			atapi_fail(d, SENSE_ILLEGAL_REQUEST,
				   ASC_LBA_OUT_OF_RANGE, 0);
		else
			atapi_ok(d);
		return;
	case 0x10:			/* user data */
		read_sectors(d, get32(cdb + 2), count);
		return;
	}
	fail_invalid_field(d);
}

/* READ TOC/PMA/ATIP (MMC-5 §6.26): formats 0 (TOC), 1 (session info),
 * 2 (full TOC, always MSF). */
static void cmd_read_toc(struct ide_drive *d, const uint8_t *cdb)
{
	uint8_t *b = d->buf;
	bool msf = cdb[1] & 2;
	unsigned format = cdb[2] & 0xf, start = cdb[6];
	uint32_t leadout = (uint32_t)d->nsectors, len;

	if (!format)			/* SFF-8020i: format in control bits */
		format = cdb[9] >> 6;
	memset(b, 0, 64);
	switch (format) {
	case 0:
		if (start > 1 && start != 0xaa) {
			fail_invalid_field(d);
			return;
		}
		len = 4;
		if (start <= 1) {
			b[len + 1] = 0x14;	/* ADR 1, data track */
			b[len + 2] = 1;
			put_addr(b + len + 4, 0, msf);
			len += 8;
		}
		b[len + 1] = 0x14;
		b[len + 2] = 0xaa;		/* lead-out */
		put_addr(b + len + 4, leadout, msf);
		len += 8;
		b[2] = 1;
		b[3] = 1;
		break;
	case 1:
		len = 12;
		b[2] = 1;
		b[3] = 1;
		b[5] = 0x14;
		b[6] = 1;
		put_addr(b + 8, 0, msf);
		break;
	case 2: {
		static const uint8_t points[4] = { 0xa0, 0xa1, 0xa2, 0x01 };

		len = 4;
		for (unsigned i = 0; i < 4; i++, len += 11) {
			uint8_t *p = b + len;

			p[0] = 1;		/* session */
			p[1] = 0x14;
			p[3] = points[i];
			switch (points[i]) {
			case 0xa0:		/* first track, disc type 00h */
				p[8] = 1;
				break;
			case 0xa1:		/* last track */
				p[8] = 1;
				break;
			case 0xa2:
				put_msf(p + 8, leadout);
				break;
			default:
				put_msf(p + 8, 0);
				break;
			}
		}
		b[2] = 1;
		b[3] = 1;
		break;
	}
	default:
		fail_invalid_field(d);
		return;
	}
	put16(b, (uint16_t)(len - 2));
	reply(d, len, get16(cdb + 7));
}

/* One feature descriptor header (MMC-5 §5.2.2). */
static uint8_t *feature(uint8_t *p, uint16_t code, unsigned version,
			bool persistent, bool current, uint8_t addlen)
{
	put16(p, code);
	p[2] = (uint8_t)(version << 2 | (persistent ? 2 : 0) | (current ? 1 : 0));
	p[3] = addlen;
	memset(p + 4, 0, addlen);
	return p + 4;
}

/* GET CONFIGURATION (MMC-5 §6.6). */
static void cmd_get_configuration(struct ide_drive *d, const uint8_t *cdb)
{
	uint8_t *b = d->buf, *p = b + 8;
	unsigned rt = cdb[1] & 3;
	uint16_t start = get16(cdb + 2);
	bool medium = medium_present(d), dvd = medium && is_dvd(d);
	bool cd = medium && !dvd;
	uint16_t profile = !medium ? 0 : dvd ? PROFILE_DVD_ROM : PROFILE_CD_ROM;
	struct {
		uint16_t code;
		bool current;
	} feats[] = {
		{ 0x0000, true }, { 0x0001, true }, { 0x0002, true },
		{ 0x0003, true }, { 0x0010, medium }, { 0x001e, cd },
		{ 0x001f, dvd },
	};

	if (rt == 3) {
		fail_invalid_field(d);
		return;
	}
	memset(b, 0, 8);
	for (unsigned i = 0; i < sizeof(feats) / sizeof(feats[0]); i++) {
		uint16_t code = feats[i].code;
		uint8_t *q;

		if (rt == 2 ? code != start : code < start)
			continue;
		if (rt == 1 && !feats[i].current)
			continue;
		switch (code) {
		case 0x0000:			/* profile list */
			q = feature(p, code, 0, true, true, 8);
			put16(q, PROFILE_DVD_ROM);
			q[2] = dvd;
			put16(q + 4, PROFILE_CD_ROM);
			q[6] = cd;
			p = q + 8;
			break;
		case 0x0001:			/* core */
			q = feature(p, code, 1, true, true, 8);
			put32(q, 2);		/* ATAPI */
			q[4] = 0x01;		/* DBE */
			p = q + 8;
			break;
		case 0x0002:			/* morphing: polled, OCEvent */
			q = feature(p, code, 1, true, true, 4);
			q[0] = 0x02;
			p = q + 4;
			break;
		case 0x0003:			/* removable medium: tray,
						 * eject, lock */
			q = feature(p, code, 0, true, true, 4);
			q[0] = 0x29;
			p = q + 4;
			break;
		case 0x0010:			/* random readable */
			q = feature(p, code, 0, false, medium, 8);
			put32(q, CD_SECTOR);
			put16(q + 4, dvd ? 16 : 1);
			p = q + 8;
			break;
		case 0x001e:			/* CD read */
			q = feature(p, code, 2, false, cd, 4);
			p = q + 4;
			break;
		case 0x001f:			/* DVD read */
			q = feature(p, code, 1, false, dvd, 4);
			p = q + 4;
			break;
		}
	}
	put32(b, (uint32_t)(p - b - 4));
	put16(b + 6, profile);
	reply(d, (uint32_t)(p - b), get16(cdb + 7));
}

/* GET EVENT STATUS NOTIFICATION (MMC-5 §6.8), polled, media class only. */
static void cmd_get_event_status(struct ide_drive *d, const uint8_t *cdb)
{
	uint8_t *b = d->buf;

	if (!(cdb[1] & 1)) {		/* asynchronous: not supported */
		fail_invalid_field(d);
		return;
	}
	memset(b, 0, 8);
	b[3] = 0x10;			/* supported: media */
	if (!(cdb[4] & 0x10)) {
		put16(b, 2);
		b[2] = 0x80;		/* NEA: no event available */
		reply(d, 4, get16(cdb + 7));
		return;
	}
	put16(b, 6);
	b[2] = 0x04;			/* media class */
	b[4] = d->media_event;
	b[5] = (uint8_t)((d->blk ? 0x02 : 0) | (d->tray_open ? 0x01 : 0));
	d->media_event = MEDIA_EV_NONE;
	reply(d, 8, get16(cdb + 7));
}

/* One mode page at @p; @changeable: the mask of changeable values (none).
 * Returns its length, 0 for a page we do not have. */
static unsigned mode_page(struct ide_drive *d, unsigned code, bool changeable,
			  uint8_t *p)
{
	unsigned len;

	switch (code) {
	case 0x01:			/* read/write error recovery */
		len = 12;
		memset(p, 0, len);
		p[3] = 5;		/* read retry count */
		break;
	case 0x0d:			/* CD device parameters */
		len = 8;
		memset(p, 0, len);
		put16(p + 4, 60);	/* S units per M */
		put16(p + 6, 75);	/* F units per S */
		break;
	case 0x2a:			/* capabilities and mechanical status */
		len = 22;
		memset(p, 0, len);
		p[2] = 0x0b;		/* reads CD-R, CD-RW, DVD-ROM */
		p[4] = 0x70;		/* multi-session, mode 2 forms */
		p[6] = (uint8_t)(0x29 | (d->locked ? 0x02 : 0));
		put16(p + 8, 2816);	/* max read speed, kB/s (16x) */
		put16(p + 10, 256);	/* volume levels */
		put16(p + 12, 512);	/* buffer, KiB */
		put16(p + 14, 2816);	/* current read speed */
		break;
	default:
		return 0;
	}
	if (changeable)
		memset(p + 2, 0, len - 2);
	p[0] = (uint8_t)code;
	p[1] = (uint8_t)(len - 2);
	return len;
}

/* MODE SENSE (6) and (10) (SPC-3 §6.9, §6.10; pages MMC-5 §7). */
static void cmd_mode_sense(struct ide_drive *d, const uint8_t *cdb, bool ten)
{
	static const uint8_t all[] = { 0x01, 0x0d, 0x2a };
	uint8_t *b = d->buf;
	unsigned pc = cdb[2] >> 6, code = cdb[2] & 0x3f;
	unsigned hdr = ten ? 8 : 4, len = hdr;

	if (pc == 3) {
		atapi_fail(d, SENSE_ILLEGAL_REQUEST, ASC_SAVING_NOT_SUPPORTED, 0);
		return;
	}
	memset(b, 0, hdr);
	if (code == 0x3f) {
		for (unsigned i = 0; i < sizeof(all); i++)
			len += mode_page(d, all[i], pc == 1, b + len);
	} else {
		unsigned n = mode_page(d, code, pc == 1, b + len);

		if (!n) {
			fail_invalid_field(d);
			return;
		}
		len += n;
	}
	if (ten) {
		put16(b, (uint16_t)(len - 2));
		reply(d, len, get16(cdb + 7));
	} else {
		b[0] = (uint8_t)(len - 1);
		reply(d, len, cdb[4]);
	}
}

static void cmd_start_stop(struct ide_drive *d, const uint8_t *cdb)
{
	bool loej = cdb[4] & 2, start = cdb[4] & 1;

	if (!loej) {			/* spin up / down: nothing to do */
		atapi_ok(d);
		return;
	}
	if (!start) {			/* eject */
		if (d->locked) {
			atapi_fail(d, SENSE_ILLEGAL_REQUEST,
				   ASC_REMOVAL_PREVENTED, 0x02);
			return;
		}
		if (!d->tray_open) {
			d->tray_open = true;
			if (d->blk)
				d->media_event = MEDIA_EV_REMOVAL;
		}
	} else if (d->tray_open) {	/* load: the same disc, if any */
		d->tray_open = false;
		if (d->blk) {
			d->media_event = MEDIA_EV_NEW_MEDIA;
			d->unit_attention = true;
		}
	}
	atapi_ok(d);
}

static void cmd_read_disc_info(struct ide_drive *d, const uint8_t *cdb)
{
	uint8_t *b = d->buf;

	if (cdb[1] & 7) {		/* only standard disc information */
		fail_invalid_field(d);
		return;
	}
	memset(b, 0, 34);
	put16(b, 32);
	b[2] = 0x0e;			/* last session complete, disc complete */
	b[3] = 1;			/* first track */
	b[4] = 1;			/* sessions */
	b[5] = 1;			/* first track of last session */
	b[6] = 1;			/* last track of last session */
	b[7] = 0x20;			/* unrestricted use */
	b[8] = 0x00;			/* CD-DA or CD-ROM */
	put32(b + 16, 0xffffffff);	/* no next session */
	put32(b + 20, 0xffffffff);
	reply(d, 34, get16(cdb + 7));
}

static void cmd_read_track_info(struct ide_drive *d, const uint8_t *cdb)
{
	uint8_t *b = d->buf;
	uint32_t v = get32(cdb + 2);
	bool ok;

	switch (cdb[1] & 3) {
	case 0:				/* LBA */
		ok = v < d->nsectors;
		break;
	case 1:				/* track number */
	case 2:				/* session number */
		ok = v == 1;
		break;
	default:
		ok = false;
	}
	if (!ok) {
		fail_invalid_field(d);
		return;
	}
	memset(b, 0, 36);
	put16(b, 34);
	b[2] = 1;			/* track */
	b[3] = 1;			/* session */
	b[5] = 0x04;			/* data track, uninterrupted */
	b[6] = 0x01;			/* data mode 1 */
	put32(b + 24, (uint32_t)d->nsectors);		/* track size */
	put32(b + 28, (uint32_t)(d->nsectors - 1));	/* last recorded */
	reply(d, 36, get16(cdb + 7));
}

static void cmd_mechanism_status(struct ide_drive *d, const uint8_t *cdb)
{
	uint8_t *b = d->buf;

	memset(b, 0, 8);
	b[1] = d->tray_open ? 0x10 : 0;
	reply(d, 8, get16(cdb + 8));
}

struct atapi_cmd {
	uint8_t op;
	uint8_t flags;
};

static const struct atapi_cmd commands[] = {
	{ GPCMD_TEST_UNIT_READY, F_MEDIUM },
	{ GPCMD_REQUEST_SENSE, F_ALLOW_UA },
	{ GPCMD_INQUIRY, F_ALLOW_UA },
	{ GPCMD_MODE_SELECT_6, 0 },
	{ GPCMD_MODE_SENSE_6, 0 },
	{ GPCMD_START_STOP_UNIT, 0 },
	{ GPCMD_PREVENT_ALLOW, 0 },
	{ GPCMD_READ_CAPACITY, F_MEDIUM },
	{ GPCMD_READ_10, F_MEDIUM },
	{ GPCMD_SEEK_10, F_MEDIUM },
	{ GPCMD_READ_TOC, F_MEDIUM },
	{ GPCMD_GET_CONFIGURATION, F_ALLOW_UA },
	{ GPCMD_GET_EVENT_STATUS, F_ALLOW_UA },
	{ GPCMD_READ_DISC_INFO, F_MEDIUM },
	{ GPCMD_READ_TRACK_INFO, F_MEDIUM },
	{ GPCMD_MODE_SELECT_10, 0 },
	{ GPCMD_MODE_SENSE_10, 0 },
	{ GPCMD_READ_12, F_MEDIUM },
	{ GPCMD_SET_CD_SPEED, 0 },
	{ GPCMD_MECHANISM_STATUS, 0 },
	{ GPCMD_READ_CD, F_MEDIUM },
};

static void execute(struct ide_drive *d)
{
	const uint8_t *cdb = d->cdb;
	const struct atapi_cmd *c = NULL;

	for (unsigned i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (commands[i].op == cdb[0])
			c = &commands[i];
	if (!c) {
		vlog_ratelimited(LOG_DEBUG, "atapi: opcode 0x%02x not supported",
				 cdb[0]);
		atapi_fail(d, SENSE_ILLEGAL_REQUEST, ASC_INVALID_OPCODE, 0);
		return;
	}
	if (c->op != GPCMD_REQUEST_SENSE)
		d->sense_key = d->asc = d->ascq = 0;
	if (d->unit_attention && !(c->flags & F_ALLOW_UA)) {
		d->unit_attention = false;
		atapi_fail(d, SENSE_UNIT_ATTENTION, ASC_MEDIUM_MAY_HAVE_CHANGED,
			   0);
		return;
	}
	if ((c->flags & F_MEDIUM) && !medium_present(d)) {
		fail_not_ready(d);
		return;
	}
	switch (c->op) {
	case GPCMD_TEST_UNIT_READY:
	case GPCMD_SET_CD_SPEED:
		atapi_ok(d);
		break;
	case GPCMD_REQUEST_SENSE:
		cmd_request_sense(d, cdb);
		break;
	case GPCMD_INQUIRY:
		cmd_inquiry(d, cdb);
		break;
	case GPCMD_MODE_SELECT_6:
		receive(d, cdb[4]);
		break;
	case GPCMD_MODE_SELECT_10:
		receive(d, get16(cdb + 7));
		break;
	case GPCMD_MODE_SENSE_6:
		cmd_mode_sense(d, cdb, false);
		break;
	case GPCMD_MODE_SENSE_10:
		cmd_mode_sense(d, cdb, true);
		break;
	case GPCMD_START_STOP_UNIT:
		cmd_start_stop(d, cdb);
		break;
	case GPCMD_PREVENT_ALLOW:
		d->locked = cdb[4] & 1;
		atapi_ok(d);
		break;
	case GPCMD_READ_CAPACITY:
		cmd_read_capacity(d, cdb);
		break;
	case GPCMD_READ_10:
		read_sectors(d, get32(cdb + 2), get16(cdb + 7));
		break;
	case GPCMD_READ_12:
		read_sectors(d, get32(cdb + 2), get32(cdb + 6));
		break;
	case GPCMD_READ_CD:
		cmd_read_cd(d, cdb);
		break;
	case GPCMD_SEEK_10:
		if (get32(cdb + 2) >= d->nsectors)
			atapi_fail(d, SENSE_ILLEGAL_REQUEST,
				   ASC_LBA_OUT_OF_RANGE, 0);
		else
			atapi_ok(d);
		break;
	case GPCMD_READ_TOC:
		cmd_read_toc(d, cdb);
		break;
	case GPCMD_GET_CONFIGURATION:
		cmd_get_configuration(d, cdb);
		break;
	case GPCMD_GET_EVENT_STATUS:
		cmd_get_event_status(d, cdb);
		break;
	case GPCMD_READ_DISC_INFO:
		cmd_read_disc_info(d, cdb);
		break;
	case GPCMD_READ_TRACK_INFO:
		cmd_read_track_info(d, cdb);
		break;
	case GPCMD_MECHANISM_STATUS:
		cmd_mechanism_status(d, cdb);
		break;
	}
}

static void packet_received(struct ide_drive *d)
{
	memcpy(d->cdb, d->buf, sizeof(d->cdb));
	d->pio_out = false;
	d->status = ST_BSY;
	execute(d);
}

void atapi_packet_cmd(struct ide_drive *d)
{
	uint32_t limit = (uint32_t)d->lbam | (uint32_t)d->lbah << 8;

	/* A limit of 0 is invalid for PIO (§8.21); take the largest. */
	if (limit == 0 || limit == 0xffff)
		limit = 0xfffe;
	limit &= ~1u;
	if (!limit)
		limit = 2;
	d->byte_limit = limit;
	d->atapi_dma = d->feature & 1;
	d->nsector = IREASON_COD;
	d->pos = 0;
	d->end = sizeof(d->cdb);
	d->fill = 0;
	d->pio_out = true;
	d->end_block = IDE_END_ATAPI_PACKET;
	d->status = ST_DRDY | ST_DRQ;	/* no interrupt: accelerated DRQ */
}

void atapi_end_block(struct ide_drive *d, enum ide_end_block what)
{
	switch (what) {
	case IDE_END_ATAPI_PIO_IN:
		pio_in_block(d);
		break;
	case IDE_END_ATAPI_PIO_OUT:
		pio_out_block(d);
		break;
	case IDE_END_ATAPI_PACKET:
		packet_received(d);
		break;
	default:
		break;
	}
}

void atapi_req_done(struct ide_drive *d, enum ide_req_done what, int ret)
{
	if (what == IDE_REQ_ATAPI_READ_CHUNK)
		read_chunk_done(d, ret);
}
