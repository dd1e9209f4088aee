/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_hda.c - the Intel HDA controller and its codec
 * (vmm-core/audio/hda.c, hda_codec.c) against arbitrary register writes,
 * CORB contents (the verb parser), BDLs and buffers in guest RAM (the BDL
 * walker), and time passing on a manual timer queue.
 *
 * Input: 8 control bytes, a le16 image length, the image (copied into
 * guest RAM at IMAGE_GPA; at most IMAGE_MAX), then operations of 8 bytes:
 *   byte 0 % 5: 0 write (bytes 1-2 le16 offset % 0x100, byte 3: size
 *                 1 << (bits 0-1 % 3), bit 2 adds IMAGE_GPA to the value;
 *                 bytes 4-7 le32 value)
 *               1 read (offset and size as above)
 *               2 time: (byte 1 + 1) x 1 ms, due timers fired
 *               3 verb through ICOI/ICS (bytes 4-7)
 *               4 backend: playback space = le16 bytes 1-2 x 4 (0xffff:
 *                 unlimited), record bytes available = le16 bytes 3-4
 * Control byte 0: bit 0 MSI (else INTx), bit 1 save -> load into a new
 * controller -> save again at the end, bit 2 skip the standard start.
 * The standard start: CRST; CORB at IMAGE_GPA (RP reset, RUN), RIRB at
 * IMAGE_GPA + 0x800 (RINTCNT 1, DMA), position buffer at + 0xc00; both
 * streams' BDLs at + 0x1000 (in) and + 0x2000 (out), CBL le16 control
 * bytes 2-3 x 16, LVI control byte 4, FMT control bytes 5-6, the codec's
 * converters on streams 1 (out) and 2 (in), unmuted, pins enabled; RUN.
 * Checked: nothing crashes or touches memory outside guest RAM (ASan and
 * UBSan under libFuzzer); each operation returns (bounded walks); a saved
 * state loads into a new controller and saves again identically.  A
 * violation abort()s.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "fuzz.h"
#include "fuzzlib.h"

#include "audio/audio.h"
#include "audio/hda.h"
#include "bus.h"
#include "clock.h"
#include "devices/pci.h"
#include "log.h"
#include "mem.h"
#include "timer.h"

#define FUZZ_RAM	(4u << 20)
#define IMAGE_GPA	0x100000ull
#define IMAGE_MAX	0x10000u
#define CTRL_BYTES	8
#define OP_LEN		8
#define DEVFN		(0x1b << 3)
#define BAR_ADDR	0xfe000000ull

static struct guest_mem mem;
static struct bus *pio, *mmio;
static struct pci_host *host;
static struct vtimer_queue *q;
static bool ready;

const char fuzz_target[] = "fuzz_hda";

/* A backend that takes what it has room for and records a counter. */
static size_t space, avail;
static uint8_t counter;

static int be_start(struct audio_backend *b, enum audio_dir d, const struct audio_format *f)
{
	(void)b; (void)d;
	if (f->channels < 1 || f->channels > 16 || !f->rate || f->rate > 192000 ||
	    f->sample > AUDIO_S32LE)
		fuzz_fail("a stream format out of range reached the backend");
	return 0;
}
static void be_stop(struct audio_backend *b, enum audio_dir d) { (void)b; (void)d; }
static size_t be_space(struct audio_backend *b) { (void)b; return space; }
static size_t be_write(struct audio_backend *b, const void *buf, size_t len)
{
	const volatile uint8_t *p = buf;
	volatile uint8_t sink;

	(void)b;
	if (len)			/* touch both ends: ASan checks them */
		sink = (uint8_t)(p[0] + p[len - 1]);
	(void)sink;
	if (space != SIZE_MAX)
		space -= len < space ? len : space;
	return len;
}
static size_t be_read(struct audio_backend *b, void *buf, size_t len)
{
	uint8_t *p = buf;

	(void)b;
	if (len > avail)
		len = avail;
	for (size_t i = 0; i < len; i++)
		p[i] = counter++;
	avail -= len;
	return len;
}
static const char *be_state(struct audio_backend *b) { (void)b; return "fuzz"; }
static void be_free(struct audio_backend *b) { (void)b; }
static const struct audio_backend_ops be_ops = {
	.name = "fuzz", .start = be_start, .stop = be_stop, .space = be_space,
	.write = be_write, .read = be_read, .state = be_state, .free = be_free,
};
static struct audio_backend backend = { .ops = &be_ops };

static void init_once(void)
{
	if (ready)
		return;
	log_set_level(LOG_ERROR);	/* hostile input logs warnings */
	fuzz_ram(&mem, FUZZ_RAM);
	host = fuzz_pci_host(&pio, &mmio, &fuzz_no_irqs, NULL);
	q = fuzz_timer_queue();
	ready = true;
}

static struct hda *new_hda(bool msi)
{
	struct hda_config c = { .pci = host, .devfn = DEVFN, .mem = &mem,
				.timers = q, .backend = &backend };
	char err[256];
	struct hda *h = hda_new(&c, err, sizeof(err));

	if (!h)
		fuzz_fail(err);
	pci_config_write(host, 0, DEVFN, PCI_BASE_ADDRESS_0, 4, (uint32_t)BAR_ADDR);
	pci_config_write(host, 0, DEVFN, PCI_BASE_ADDRESS_0 + 4, 4, 0);
	pci_config_write(host, 0, DEVFN, PCI_COMMAND, 2,
			 PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	if (msi) {
		pci_config_write(host, 0, DEVFN, HDA_MSI_CAP + 4, 4, 0xfee00000u);
		pci_config_write(host, 0, DEVFN, HDA_MSI_CAP + 12, 2, 0x41);
		pci_config_write(host, 0, DEVFN, HDA_MSI_CAP + 2, 2, 1);
	}
	return h;
}

static void wr(uint64_t off, uint64_t v, unsigned size)
{
	bus_write(mmio, BAR_ADDR + off, v, size, NULL);
}

static void verb(uint32_t v)
{
	wr(HDA_ICOI, v, 4);
	wr(HDA_ICS, HDA_ICS_ICB, 2);
}

static void standard_start(const uint8_t *ctl)
{
	wr(HDA_GCTL, HDA_GCTL_CRST, 4);
	wr(HDA_CORBLBASE, (uint32_t)IMAGE_GPA, 4);
	wr(HDA_CORBRP, HDA_CORBRP_RST, 2);
	wr(HDA_CORBRP, 0, 2);
	wr(HDA_CORBCTL, HDA_CORBCTL_RUN | HDA_CORBCTL_CMEIE, 1);
	wr(HDA_RIRBLBASE, (uint32_t)IMAGE_GPA + 0x800, 4);
	wr(HDA_RINTCNT, 1, 2);
	wr(HDA_RIRBCTL, HDA_RIRBCTL_DMAEN | HDA_RIRBCTL_RINTCTL, 1);
	wr(HDA_DPLBASE, (uint32_t)IMAGE_GPA + 0xc00 + 1, 4);
	wr(HDA_INTCTL, HDA_INT_GIE | HDA_INT_CIE | 3, 4);
	verb(0x00220000 | fuzz_le16(ctl + 5));	/* DAC format */
	verb(0x00270610);			/* DAC on stream 1 */
	verb(0x0023b04a);			/* DAC amp unmuted */
	verb(0x00370740);			/* line out enabled */
	verb(0x00420000 | fuzz_le16(ctl + 5));
	verb(0x00470620);
	verb(0x0043704a);
	verb(0x00570720);
	for (unsigned n = 0; n < HDA_STREAMS; n++) {
		unsigned sd = HDA_SD(n);
		unsigned tag = n == HDA_SD_OUT ? 1 : 2;

		wr(sd + HDA_SD_CBL, fuzz_le16(ctl + 2) * 16u, 4);
		wr(sd + HDA_SD_LVI, ctl[4], 2);
		wr(sd + HDA_SD_FMT, fuzz_le16(ctl + 5), 2);
		wr(sd + HDA_SD_BDPL, (uint32_t)IMAGE_GPA + 0x1000 * (n + 1), 4);
		wr(sd + HDA_SD_CTL, tag << HDA_SD_CTL_STRM_SHIFT |
		   HDA_SD_CTL_RUN | HDA_SD_CTL_IOCE | HDA_SD_CTL_DEIE, 4);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *ctl = data, *op;
	size_t nops;
	struct hda *h;

	init_once();
	if (size < CTRL_BYTES + 2)
		return 0;
	op = fuzz_image(&mem, IMAGE_GPA, IMAGE_MAX, data, size, CTRL_BYTES + 2,
			fuzz_le16(data + CTRL_BYTES), &nops);
	nops /= OP_LEN;
	space = SIZE_MAX;
	avail = 0;

	h = new_hda(ctl[0] & 1);
	if (!(ctl[0] & 4))
		standard_start(ctl);
	for (size_t i = 0; i < nops; i++, op += OP_LEN) {
		uint64_t off = fuzz_le16(op + 1) % 0x100;
		unsigned sz = 1u << ((op[3] & 3) % 3);
		uint32_t v = fuzz_le32(op + 4) +
			     ((op[3] & 4) ? (uint32_t)IMAGE_GPA : 0);

		switch (op[0] % 5) {
		case 0:
			wr(off, v, sz);
			break;
		case 1:
			bus_read(mmio, BAR_ADDR + off, sz, NULL);
			break;
		case 2:
			fuzz_now_ns += (op[1] + 1u) * 1000000ull;
			vtimer_queue_run_due(q, fuzz_now_ns);
			break;
		case 3:
			verb(fuzz_le32(op + 4));
			break;
		case 4:
			space = fuzz_le16(op + 1) == 0xffff ? SIZE_MAX
							    : fuzz_le16(op + 1) * 4u;
			avail = fuzz_le16(op + 3);
			break;
		}
	}
	if (ctl[0] & 2) {
		GVariant *a = fuzz_save(&hda_device_ops, h, "save failed");

		hda_free(h);
		h = new_hda(ctl[0] & 1);
		fuzz_load_same(&hda_device_ops, h, a, "save failed");
	}
	hda_free(h);
	return 0;
}

/* Seeds: the standard start at 48 kHz 16-bit stereo, four BDL entries of
 * 960 bytes per stream (IOC on odd ones), a CORB of probe verbs, then
 * time, verbs, stream resets and a full CORB write pointer. */
void fuzz_make_seeds(void (*add)(const void *data, size_t len))
{
	static uint8_t s[CTRL_BYTES + 2 + 0x3000 + 8 * OP_LEN];
	uint8_t *img = s + CTRL_BYTES + 2, *op;
	uint32_t t;

	memset(s, 0, sizeof(s));
	s[0] = 2;			/* save/load at the end */
	s[2] = 240;			/* CBL 3840 */
	s[4] = 3;			/* LVI 3 */
	s[5] = 0x11;			/* FMT 48 kHz 16-bit stereo */
	s[CTRL_BYTES + 1] = 0x30;	/* image 0x3000 bytes */
	for (unsigned i = 1; i <= 6; i++) {	/* CORB: parameters of NID i-1 */
		t = (i - 1) << 20 | 0xf0000 | (i == 1 ? 0 : 9);
		memcpy(img + 4 * i, &t, 4);
	}
	for (unsigned n = 0; n < 2; n++)
		for (unsigned e = 0; e < 4; e++) {
			uint8_t *bd = img + 0x1000 * (n + 1) + 16 * e;

			t = (uint32_t)IMAGE_GPA + 0x2800 + 0x100 * e;
			memcpy(bd, &t, 4);
			t = 960;
			memcpy(bd + 8, &t, 4);
			bd[12] = e & 1;
		}
	op = img + 0x3000;
	op[0] = 0;				/* CORBWP = 6 */
	op[1] = HDA_CORBWP;
	op[3] = 1;
	op[4] = 6;
	op += OP_LEN;
	op[0] = 2;				/* 20 ms */
	op[1] = 19;
	op += OP_LEN;
	op[0] = 4;				/* backend: room for 1000 */
	op[1] = 250;
	op[3] = 0xe8;
	op[4] = 3;
	op += OP_LEN;
	op[0] = 2;
	op[1] = 60;
	op += OP_LEN;
	op[0] = 3;				/* verb: DAC format */
	op[4] = 0x31;
	op[6] = 0x22;
	op += OP_LEN;
	op[0] = 0;				/* SRST the output stream */
	op[1] = HDA_SD(HDA_SD_OUT);
	op[4] = 1;
	op += OP_LEN;
	op[0] = 2;
	op[1] = 9;
	add(s, sizeof(s));
}
