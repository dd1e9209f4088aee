/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/audio/hda.h - an Intel High Definition Audio controller (Intel
 * HDA specification rev 1.0a, §3-§4), as the ICH6's: PCI 8086:2668, class
 * 0x040300, at 00:1b.0 (its place on Intel chipsets), with the duplex
 * codec of hda_codec.h at codec address 0.  Linux's snd_hda_intel and
 * Windows' inbox HDA driver bind to it.
 *
 * BAR 0 (64-bit memory, 16 KiB) holds §3.3's registers: GCAP (1 input, 1
 * output, 0 bidirectional streams, 64-bit OK), VMIN/VMAJ 0/1, GCTL (CRST),
 * WAKEEN/STATESTS, INTCTL/INTSTS, WALCLK (24 MHz, from the machine's
 * monotonic clock), SSYNC, CORB and RIRB (256 entries each), the immediate
 * command registers ICOI/IRII/ICS, DPLBASE/DPUBASE (the DMA position
 * buffer), then stream descriptor 0 (input, at 0x80) and 1 (output, at
 * 0xa0): CTL (SRST, RUN, IOCE, FEIE, DEIE, stream number), STS (BCIS,
 * FIFOE, DESE, FIFORDY), LPIB, CBL, LVI, FIFOW, FIFOS, FMT, BDPL/BDPU.
 * The aliases above 0x2000 read 0.  Interrupts (§3.3.14): INTx pin A, or
 * MSI (capability at 0x60) once the guest enables it.
 *
 * Streams (§4.5): a running stream moves bytes between its buffer
 * descriptor list and the audio backend (audio.h) from the machine's
 * timer thread every HDA_TICK_NS: for playback into a backend with a
 * clock, what it asks for (audio_space()), or, once it has asked for
 * nothing for HDA_STALL_NS (80 ms: a stream being created, a stalled
 * server), the machine's clock's frames, which it drops (Linux's ALSA gives
 * up on a stream whose position stands still for max(1.1 x its buffer,
 * 100 ms): the guest's DMA must not stop); otherwise as many frames as the
 * sample rate in FMT says have passed since RUN; a debt of more than HDA_MAX_LAG_NS is dropped.  So the DMA
 * position follows the backend's clock when it has one, the machine's
 * otherwise, and the guest's data is never more than the backend's buffer
 * plus one tick (5 ms) ahead of what is heard.  Recording takes what the
 * backend has captured, lagging the machine's clock by at most
 * HDA_REC_SLACK_NS, past which silence fills in.  LPIB and the position
 * buffer advance with each chunk; a completed BDL entry with IOC sets BCIS
 * (and interrupts with IOCE).  Data reaches the backend only when the
 * codec's converter is set to the stream's number; otherwise it is
 * dropped (playback) or silence (record).
 *
 * Hostile guests: every BDL entry, buffer, CORB/RIRB slot and position
 * buffer write goes through guest_mem (a range outside RAM is never
 * touched).  A BDL entry or list outside RAM sets DESE and stops the
 * stream's DMA until the guest restarts it; a zero-length entry is skipped;
 * a tick walks at most HDA_BDL_WALK_MAX entries; LVI is 8 bits (256
 * entries at most); CBL 0 or LVI 0 refuse to start (DESE).  A CORB write
 * pointer update processes at most 256 commands; a CORB or RIRB outside
 * RAM sets CMEI (memory error) and stops the CORB.
 *
 * Locking: every call with the device lock held (the timer queue's lock).
 */
#ifndef VIVARIUM_HDA_H
#define VIVARIUM_HDA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../device.h"

struct pci_host;
struct guest_mem;
struct vtimer_queue;
struct audio_backend;
struct hda;

#define HDA_PCI_VENDOR		0x8086
#define HDA_PCI_DEVICE		0x2668	/* ICH6 HD Audio */
#define HDA_CLASS		0x040300
#define HDA_BAR_SIZE		0x4000
#define HDA_MSI_CAP		0x60

#define HDA_TICK_NS		5000000ull	/* stream DMA period */
#define HDA_MAX_LAG_NS		100000000ull	/* debt dropped beyond */
#define HDA_REC_SLACK_NS	50000000ull	/* record: wait for data this long */
#define HDA_STALL_NS		80000000ull	/* playback: a backend silent this long */
#define HDA_BDL_WALK_MAX	64		/* BDL entries per stream per tick */
#define HDA_STREAMS		2		/* SD0 input, SD1 output */
#define HDA_SD_IN		0
#define HDA_SD_OUT		1

/* Register offsets in BAR 0 (§3.3). */
#define HDA_GCAP		0x00
#define HDA_VMIN		0x02
#define HDA_VMAJ		0x03
#define HDA_OUTPAY		0x04
#define HDA_INPAY		0x06
#define HDA_GCTL		0x08
#define  HDA_GCTL_CRST		(1u << 0)
#define  HDA_GCTL_UNSOL		(1u << 8)
#define HDA_WAKEEN		0x0c
#define HDA_STATESTS		0x0e
#define HDA_GSTS		0x10
#define HDA_INTCTL		0x20
#define  HDA_INT_GIE		(1u << 31)
#define  HDA_INT_CIE		(1u << 30)
#define HDA_INTSTS		0x24
#define  HDA_INT_GIS		(1u << 31)
#define  HDA_INT_CIS		(1u << 30)
#define HDA_WALCLK		0x30
#define HDA_SSYNC		0x38
#define HDA_CORBLBASE		0x40
#define HDA_CORBUBASE		0x44
#define HDA_CORBWP		0x48
#define HDA_CORBRP		0x4a
#define  HDA_CORBRP_RST		(1u << 15)
#define HDA_CORBCTL		0x4c
#define  HDA_CORBCTL_CMEIE	(1u << 0)
#define  HDA_CORBCTL_RUN	(1u << 1)
#define HDA_CORBSTS		0x4d
#define  HDA_CORBSTS_CMEI	(1u << 0)
#define HDA_CORBSIZE		0x4e
#define HDA_RIRBLBASE		0x50
#define HDA_RIRBUBASE		0x54
#define HDA_RIRBWP		0x58
#define  HDA_RIRBWP_RST		(1u << 15)
#define HDA_RINTCNT		0x5a
#define HDA_RIRBCTL		0x5c
#define  HDA_RIRBCTL_RINTCTL	(1u << 0)
#define  HDA_RIRBCTL_DMAEN	(1u << 1)
#define  HDA_RIRBCTL_OIC	(1u << 2)
#define HDA_RIRBSTS		0x5d
#define  HDA_RIRBSTS_RINTFL	(1u << 0)
#define  HDA_RIRBSTS_OIS	(1u << 2)
#define HDA_RIRBSIZE		0x5e
#define HDA_ICOI		0x60
#define HDA_IRII		0x64
#define HDA_ICS			0x68
#define  HDA_ICS_ICB		(1u << 0)
#define  HDA_ICS_IRV		(1u << 1)
#define HDA_DPLBASE		0x70
#define  HDA_DPLBASE_EN		(1u << 0)
#define HDA_DPUBASE		0x74
#define HDA_SD(n)		(0x80 + 0x20 * (n))
#define HDA_SD_CTL		0x00	/* 3 bytes */
#define  HDA_SD_CTL_SRST	(1u << 0)
#define  HDA_SD_CTL_RUN		(1u << 1)
#define  HDA_SD_CTL_IOCE	(1u << 2)
#define  HDA_SD_CTL_FEIE	(1u << 3)
#define  HDA_SD_CTL_DEIE	(1u << 4)
#define  HDA_SD_CTL_STRM_SHIFT	20
#define HDA_SD_STS		0x03
#define  HDA_SD_STS_BCIS	(1u << 2)
#define  HDA_SD_STS_FIFOE	(1u << 3)
#define  HDA_SD_STS_DESE	(1u << 4)
#define  HDA_SD_STS_FIFORDY	(1u << 5)
#define HDA_SD_LPIB		0x04
#define HDA_SD_CBL		0x08
#define HDA_SD_LVI		0x0c
#define HDA_SD_FIFOW		0x0e
#define HDA_SD_FIFOS		0x10
#define HDA_SD_FMT		0x12
#define HDA_SD_BDPL		0x18
#define HDA_SD_BDPU		0x1c
#define HDA_REGS_SIZE		HDA_SD(HDA_STREAMS)

struct hda_config {
	struct pci_host *pci;
	uint8_t devfn;
	const struct guest_mem *mem;
	/* The machine's timers (device lock held around callbacks): the
	 * stream DMA runs there, WALCLK reads its clock. */
	struct vtimer_queue *timers;
	/* The host side; NULL: no sound, the DMA still advances. */
	struct audio_backend *backend;
};

/*
 * hda_new - create the controller with its codec and put it on
 * @cfg->pci at @cfg->devfn.  Returns it, or NULL with a one-line reason in
 * @err (devfn taken, out of memory).
 */
struct hda *hda_new(const struct hda_config *cfg, char *err, size_t errlen);
/* Take it off the bus, stop its streams and free it; NULL is fine. */
void hda_free(struct hda *h);
/* Controller reset (CRST 0 and a machine reset): streams stop, registers
 * and codec to power-on values. */
void hda_reset(struct hda *h);

/*
 * hda_device_ops: state HDA_STATE_TYPE, version 1: (the HDA_REGS_SIZE
 * register bytes as the guest reads them, INTSTS and WALCLK excepted;
 * responses since the last RIRB interrupt; per stream (current BDL entry,
 * byte offset in it, DMA running); WALCLK in 24 MHz ticks; the codec's
 * HDA_CODEC_STATE_TYPE).  A running stream restarts its pacing at load.
 */
#define HDA_STATE_TYPE "(ayqa(uub)t(a(qyyyyyyuay)u))"
extern const struct device_ops hda_device_ops;

/* Counters for tests and logs. */
struct hda_stats {
	uint64_t bytes[HDA_STREAMS];	/* moved by DMA, per SD */
	uint64_t interrupts;		/* MSI messages or INTx assertions */
	uint64_t verbs;			/* codec commands executed */
	uint64_t bdl_errors;		/* DESE raised */
};
void hda_get_stats(const struct hda *h, struct hda_stats *out);

/* For tests and the fuzz target: the BAR as the guest sees it, and one
 * stream DMA tick at the clock's current time. */
uint64_t hda_mmio_read(struct hda *h, uint64_t off, unsigned size);
void hda_mmio_write(struct hda *h, uint64_t off, uint64_t val,
		    unsigned size);
void hda_tick(struct hda *h);

#endif
