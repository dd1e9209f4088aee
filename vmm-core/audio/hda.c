// SPDX-License-Identifier: MIT
/* vmm-core/audio/hda.c - the Intel HDA controller (hda.h; Intel High
 * Definition Audio 1.0a). */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "hda.h"
#include "hda_codec.h"
#include "audio.h"
#include "../bus.h"
#include "../clock.h"
#include "../devices/pci.h"
#include "../log.h"
#include "../mem.h"
#include "../timer.h"

#define CORB_ENTRIES	256
#define RIRB_ENTRIES	256

struct hda_stream {
	unsigned bd;			/* current BDL entry, 0..LVI */
	uint32_t bd_off;		/* bytes done in it */
	bool active;			/* DMA running (RUN, no error) */
	bool backend;			/* audio_start() done */
	struct audio_format fmt;
	unsigned frame;			/* bytes per frame */
	uint64_t start_ns;		/* pacing: frames due since then */
	uint64_t frames;		/* ...of which moved */
	uint64_t fed_ns;		/* the backend last asked for bytes */
	unsigned phase;			/* bytes moved since RUN, modulo frame */
};

struct hda {
	struct pci_device pci;
	const struct guest_mem *mem;
	struct vtimer_queue *timers;
	struct audio_backend *be;
	struct vtimer tick;
	uint8_t r[HDA_REGS_SIZE];	/* registers as the guest reads them */
	uint16_t rirb_cnt;		/* responses since the last RINTFL */
	uint64_t wall_base_ns;		/* WALCLK 0 */
	struct hda_stream sd[HDA_STREAMS];
	struct hda_codec codec;
	bool level;			/* interrupt as last computed */
	struct hda_stats stats;
};

/* Writable and write-1-to-clear bits per register byte, made once. */
static uint8_t wmask[HDA_REGS_SIZE], w1cmask[HDA_REGS_SIZE];
static uint8_t reset_regs[HDA_REGS_SIZE];

static void put(uint8_t *r, unsigned off, unsigned size, uint32_t v)
{
	for (unsigned i = 0; i < size; i++)
		r[off + i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get(const uint8_t *r, unsigned off, unsigned size)
{
	uint32_t v = 0;

	for (unsigned i = 0; i < size; i++)
		v |= (uint32_t)r[off + i] << (8 * i);
	return v;
}

static void init_tables(void)
{
	static bool done;

	if (done)
		return;
	put(reset_regs, HDA_GCAP, 2, 1u << 12 | 1u << 8 | 1);	/* OSS ISS 64OK */
	reset_regs[HDA_VMAJ] = 1;
	put(reset_regs, HDA_OUTPAY, 2, 0x3c);
	put(reset_regs, HDA_INPAY, 2, 0x1d);
	reset_regs[HDA_CORBSIZE] = 0x42;	/* 256 entries, only size */
	reset_regs[HDA_RIRBSIZE] = 0x42;
	put(wmask, HDA_GCTL, 4, 0x103);		/* CRST, FCNTRL, UNSOL */
	put(wmask, HDA_WAKEEN, 2, 0x7fff);
	put(w1cmask, HDA_STATESTS, 2, 0x7fff);
	put(w1cmask, HDA_GSTS, 2, 0x2);
	put(wmask, HDA_INTCTL, 4, HDA_INT_GIE | HDA_INT_CIE | 0x3);
	put(wmask, HDA_SSYNC, 4, 0x3);
	put(wmask, HDA_CORBLBASE, 4, 0xffffff80);
	put(wmask, HDA_CORBUBASE, 4, 0xffffffff);
	put(wmask, HDA_CORBWP, 2, 0xff);
	put(wmask, HDA_CORBRP, 2, HDA_CORBRP_RST);
	wmask[HDA_CORBCTL] = HDA_CORBCTL_CMEIE | HDA_CORBCTL_RUN;
	w1cmask[HDA_CORBSTS] = HDA_CORBSTS_CMEI;
	put(wmask, HDA_RIRBLBASE, 4, 0xffffff80);
	put(wmask, HDA_RIRBUBASE, 4, 0xffffffff);
	put(wmask, HDA_RINTCNT, 2, 0xff);
	wmask[HDA_RIRBCTL] = 0x7;
	w1cmask[HDA_RIRBSTS] = HDA_RIRBSTS_RINTFL | HDA_RIRBSTS_OIS;
	put(wmask, HDA_ICOI, 4, 0xffffffff);
	wmask[HDA_ICS] = HDA_ICS_ICB;
	w1cmask[HDA_ICS] = HDA_ICS_IRV;
	put(wmask, HDA_DPLBASE, 4, 0xffffff81);
	put(wmask, HDA_DPUBASE, 4, 0xffffffff);
	for (unsigned n = 0; n < HDA_STREAMS; n++) {
		unsigned sd = HDA_SD(n);

		put(wmask, sd + HDA_SD_CTL, 3, 0xf4001f);
		w1cmask[sd + HDA_SD_STS] = HDA_SD_STS_BCIS | HDA_SD_STS_FIFOE |
					   HDA_SD_STS_DESE;
		put(wmask, sd + HDA_SD_CBL, 4, 0xffffffff);
		put(wmask, sd + HDA_SD_LVI, 2, 0xff);
		put(wmask, sd + HDA_SD_FIFOW, 2, 0x7);
		put(reset_regs, sd + HDA_SD_FIFOW, 2, 0x4);	/* 32 bytes */
		put(reset_regs, sd + HDA_SD_FIFOS, 2, 0xff);
		put(wmask, sd + HDA_SD_FMT, 2, 0x7f7f);
		put(wmask, sd + HDA_SD_BDPL, 4, 0xffffff80);
		put(wmask, sd + HDA_SD_BDPU, 4, 0xffffffff);
	}
	done = true;
}

static uint32_t reg(const struct hda *h, unsigned off, unsigned size)
{
	return get(h->r, off, size);
}

static void set_reg(struct hda *h, unsigned off, unsigned size, uint32_t v)
{
	put(h->r, off, size, v);
}

static uint64_t now_ns(const struct hda *h)
{
	return vclock_now(vtimer_queue_clock(h->timers));
}

static uint64_t reg64(const struct hda *h, unsigned lo)
{
	return reg(h, lo, 4) | (uint64_t)reg(h, lo + 4, 4) << 32;
}

/* ---- interrupts (§3.3.14, §3.3.15) ---------------------------------------- */

static bool stream_irq(const struct hda *h, unsigned n)
{
	uint32_t ctl = reg(h, HDA_SD(n) + HDA_SD_CTL, 1);
	uint8_t sts = h->r[HDA_SD(n) + HDA_SD_STS];

	return ((sts & HDA_SD_STS_BCIS) && (ctl & HDA_SD_CTL_IOCE)) ||
	       ((sts & HDA_SD_STS_FIFOE) && (ctl & HDA_SD_CTL_FEIE)) ||
	       ((sts & HDA_SD_STS_DESE) && (ctl & HDA_SD_CTL_DEIE));
}

static bool controller_irq(const struct hda *h)
{
	uint8_t rc = h->r[HDA_RIRBCTL], rs = h->r[HDA_RIRBSTS];

	return ((rs & HDA_RIRBSTS_RINTFL) && (rc & HDA_RIRBCTL_RINTCTL)) ||
	       ((rs & HDA_RIRBSTS_OIS) && (rc & HDA_RIRBCTL_OIC)) ||
	       ((h->r[HDA_CORBSTS] & HDA_CORBSTS_CMEI) &&
		(h->r[HDA_CORBCTL] & HDA_CORBCTL_CMEIE)) ||
	       (reg(h, HDA_STATESTS, 2) & reg(h, HDA_WAKEEN, 2));
}

static uint32_t intsts(const struct hda *h)
{
	uint32_t ctl = reg(h, HDA_INTCTL, 4), v = 0;

	for (unsigned n = 0; n < HDA_STREAMS; n++)
		if (stream_irq(h, n))
			v |= 1u << n;
	if (controller_irq(h))
		v |= HDA_INT_CIS;
	if ((v & ctl & 0x3) || ((v & HDA_INT_CIS) && (ctl & HDA_INT_CIE)))
		v |= HDA_INT_GIS;
	return v;
}

/* Recompute the interrupt; @event: a status bit was just set, which with
 * MSI is a new message even when another cause is still pending (the
 * driver's handler loops over INTSTS, so none is lost). */
static void irq_update(struct hda *h, bool event)
{
	bool level = (reg(h, HDA_INTCTL, 4) & HDA_INT_GIE) &&
		     (intsts(h) & HDA_INT_GIS);
	bool msi = pci_msi_enabled(&h->pci);

	if (level && (event || !h->level) && (msi || !h->level))
		h->stats.interrupts++;
	if (msi) {
		pci_set_irq(&h->pci, 0);
		if (level && (event || !h->level))
			pci_msi_notify(&h->pci);
	} else {
		pci_set_irq(&h->pci, level);
	}
	h->level = level;
}

/* ---- CORB/RIRB and immediate commands (§4.4) --------------------------- */

static void rirb_push(struct hda *h, uint32_t resp, unsigned cad)
{
	unsigned wp = (reg(h, HDA_RIRBWP, 2) + 1) % RIRB_ENTRIES;
	uint32_t e[2] = { htole32(resp), htole32(cad & 0xf) };
	uint64_t base = reg64(h, HDA_RIRBLBASE);

	if (!(h->r[HDA_RIRBCTL] & HDA_RIRBCTL_DMAEN))
		return;
	if (guest_mem_write(h->mem, base + 8ull * wp, e, sizeof(e)) < 0) {
		vlog_ratelimited(LOG_WARN, "hda: RIRB at %#llx is outside RAM",
				 (unsigned long long)base);
		h->r[HDA_CORBSTS] |= HDA_CORBSTS_CMEI;
		h->r[HDA_CORBCTL] &= (uint8_t)~HDA_CORBCTL_RUN;
		return;
	}
	set_reg(h, HDA_RIRBWP, 2, wp);
	h->rirb_cnt++;
	/* RINTCNT 0 means 256 (§3.3.27). */
	if (h->rirb_cnt >= (reg(h, HDA_RINTCNT, 2) & 0xff ?: 256)) {
		h->r[HDA_RIRBSTS] |= HDA_RIRBSTS_RINTFL;
		h->rirb_cnt = 0;
	}
}

static uint32_t exec_verb(struct hda *h, uint32_t cmd, bool *answered)
{
	h->stats.verbs++;
	*answered = (cmd >> 28) == 0;	/* only codec 0 is present */
	return *answered ? hda_codec_verb(&h->codec, cmd & 0x0fffffff) : 0;
}

/* Execute the commands between CORBRP and CORBWP: at most 256, as the
 * pointers are 8 bits. */
static void corb_run(struct hda *h)
{
	uint64_t base = reg64(h, HDA_CORBLBASE);
	unsigned wp = reg(h, HDA_CORBWP, 2) & 0xff;
	unsigned rp = reg(h, HDA_CORBRP, 2) & 0xff;
	bool any = false;

	if (!(h->r[HDA_CORBCTL] & HDA_CORBCTL_RUN) ||
	    (reg(h, HDA_CORBRP, 2) & HDA_CORBRP_RST))
		return;
	while (rp != wp && (h->r[HDA_CORBCTL] & HDA_CORBCTL_RUN)) {
		uint32_t cmd, resp;
		bool answered;

		rp = (rp + 1) % CORB_ENTRIES;
		if (guest_mem_read(h->mem, base + 4ull * rp, &cmd, 4) < 0) {
			vlog_ratelimited(LOG_WARN, "hda: CORB at %#llx is outside RAM",
					 (unsigned long long)base);
			h->r[HDA_CORBSTS] |= HDA_CORBSTS_CMEI;
			h->r[HDA_CORBCTL] &= (uint8_t)~HDA_CORBCTL_RUN;
			break;
		}
		set_reg(h, HDA_CORBRP, 2, rp);
		resp = exec_verb(h, le32toh(cmd), &answered);
		if (answered) {
			rirb_push(h, resp, le32toh(cmd) >> 28);
			any = true;
		}
	}
	/* The link's next frame carries no response: interrupt for what
	 * arrived even below RINTCNT (§3.3.27). */
	if (any && h->rirb_cnt) {
		h->r[HDA_RIRBSTS] |= HDA_RIRBSTS_RINTFL;
		h->rirb_cnt = 0;
	}
	irq_update(h, any);
}

static void immediate_command(struct hda *h)
{
	bool answered;
	uint32_t resp = exec_verb(h, reg(h, HDA_ICOI, 4), &answered);

	if (answered)
		set_reg(h, HDA_IRII, 4, resp);
	h->r[HDA_ICS] = (uint8_t)((h->r[HDA_ICS] & ~HDA_ICS_ICB) |
				  (answered ? HDA_ICS_IRV : 0));
}

/* ---- streams (§3.3.35-§3.3.44, §4.5) ------------------------------------- */

static unsigned sdreg(unsigned n, unsigned off)
{
	return HDA_SD(n) + off;
}

static enum audio_dir stream_dir(unsigned n)
{
	return n == HDA_SD_OUT ? AUDIO_OUT : AUDIO_IN;
}

/* FMT (§3.7.1): BASE 48/44.1 kHz, MULT x1-x4, DIV /1-/8, BITS, CHAN. */
static bool parse_fmt(uint16_t fmt, struct audio_format *f)
{
	unsigned base = fmt & 0x4000 ? 44100 : 48000;
	unsigned mult = ((fmt >> 11) & 7) + 1, div = ((fmt >> 8) & 7) + 1;
	unsigned bits = (fmt >> 4) & 7;

	if (mult > 4 || bits > 4)
		return false;
	f->rate = base * mult / div;
	f->sample = bits == 0 ? AUDIO_U8 : bits == 1 ? AUDIO_S16LE : AUDIO_S32LE;
	f->channels = (uint8_t)((fmt & 0xf) + 1);
	return true;
}

static void stream_stop(struct hda *h, unsigned n)
{
	struct hda_stream *s = &h->sd[n];

	s->active = false;
	if (s->backend)
		audio_stop(h->be, stream_dir(n));
	s->backend = false;
	h->r[sdreg(n, HDA_SD_STS)] &= (uint8_t)~HDA_SD_STS_FIFORDY;
}

static void stream_error(struct hda *h, unsigned n, const char *why,
			 uint64_t gpa)
{
	struct hda_stream *s = &h->sd[n];

	vlog_ratelimited(LOG_WARN, "hda: stream %u: %s (%#llx); DMA stopped",
			 n, why, (unsigned long long)gpa);
	h->r[sdreg(n, HDA_SD_STS)] |= HDA_SD_STS_DESE;
	h->stats.bdl_errors++;
	(void)s;
	stream_stop(h, n);
	irq_update(h, true);
}

static void arm_tick(struct hda *h)
{
	if (!h->tick.armed)
		vtimer_mod(&h->tick, now_ns(h) + HDA_TICK_NS);
}

/* What the DMA needs of the registers @r of stream @n: a format, CBL and
 * LVI not 0 (§3.3.38, §3.3.39).  NULL or a reason. */
static const char *stream_params_bad(const uint8_t *r, unsigned n,
				     struct audio_format *f)
{
	if (!parse_fmt((uint16_t)get(r, sdreg(n, HDA_SD_FMT), 2), f))
		return "bad stream format";
	if (!get(r, sdreg(n, HDA_SD_CBL), 4) || !get(r, sdreg(n, HDA_SD_LVI), 2))
		return "CBL or LVI is 0";
	return NULL;
}

/* RUN set: check what the DMA will need, open the backend's stream. */
static void stream_start(struct hda *h, unsigned n)
{
	struct hda_stream *s = &h->sd[n];
	unsigned tag = reg(h, sdreg(n, HDA_SD_CTL), 3) >> HDA_SD_CTL_STRM_SHIFT;
	bool silent;

	const char *bad = stream_params_bad(h->r, n, &s->fmt);

	if (bad) {
		stream_error(h, n, bad, reg(h, sdreg(n, HDA_SD_FMT), 2));
		return;
	}
	s->frame = audio_frame_bytes(&s->fmt);
	s->active = true;
	s->start_ns = now_ns(h);
	s->fed_ns = s->start_ns;
	s->frames = 0;
	s->phase = 0;
	if (hda_codec_stream_bound(&h->codec, n == HDA_SD_IN, tag, &silent)) {
		audio_start(h->be, stream_dir(n), &s->fmt);
		s->backend = true;
	}
	h->r[sdreg(n, HDA_SD_STS)] |= HDA_SD_STS_FIFORDY;
	arm_tick(h);
}

/* SRST (§3.3.35): the descriptor's registers to their reset values; the
 * bit itself reads back as written. */
static void stream_reset(struct hda *h, unsigned n)
{
	unsigned sd = HDA_SD(n);

	stream_stop(h, n);
	memcpy(&h->r[sd], &reset_regs[sd], 0x20);
	h->r[sd + HDA_SD_CTL] = HDA_SD_CTL_SRST;
	h->sd[n].bd = 0;
	h->sd[n].bd_off = 0;
}

static void write_position(struct hda *h, unsigned n)
{
	uint64_t base = reg64(h, HDA_DPLBASE);
	uint32_t lpib = htole32(reg(h, sdreg(n, HDA_SD_LPIB), 4));

	if (!(base & HDA_DPLBASE_EN))
		return;
	base &= ~0x7full;
	if (guest_mem_write(h->mem, base + 8ull * n, &lpib, 4) < 0)
		vlog_ratelimited(LOG_WARN, "hda: DMA position buffer at %#llx is outside RAM",
				 (unsigned long long)base);
}

/* Silence for a bound but muted playback path, frames at a time. */
static void write_silence(struct hda *h, uint64_t bytes)
{
	static const uint8_t zero[4096];

	while (bytes) {
		size_t n = bytes < sizeof(zero) ? bytes : sizeof(zero);

		if (audio_write(h->be, zero, n) < n)
			break;
		bytes -= n;
	}
}

/* Playback of @len bytes of the guest's buffer at @buf through the DAC's
 * amp: as they are at 0 dB on both channels, else scaled in a copy (the
 * guest's buffer is its own). */
static void write_with_gain(struct hda *h, struct hda_stream *s, const uint8_t *buf,
			    size_t len, const uint32_t gain[2])
{
	uint8_t tmp[4096];
	unsigned phase = s->phase;

	if (gain[0] == HDA_GAIN_UNITY && gain[1] == HDA_GAIN_UNITY) {
		audio_write(h->be, buf, len);
		return;
	}
	while (len) {
		size_t n = len < sizeof(tmp) ? len : sizeof(tmp);

		memcpy(tmp, buf, n);
		audio_apply_gain(&s->fmt, tmp, n, phase, gain);
		if (audio_write(h->be, tmp, n) < n)
			break;
		phase = (unsigned)((phase + n) % s->frame);
		buf += n;
		len -= n;
	}
}

/*
 * Move up to @bytes between stream @n's buffers and the backend, walking
 * its BDL from the current entry (§3.6.2: 16 bytes each: address, length,
 * IOC in bit 0 of the last dword).  Recording stops early where the
 * backend has no more, unless fewer than @must bytes were moved: those are
 * padded with silence.  Returns the bytes moved.
 */
static uint64_t stream_dma(struct hda *h, unsigned n, uint64_t bytes,
			   uint64_t must)
{
	struct hda_stream *s = &h->sd[n];
	uint64_t bdl = reg64(h, sdreg(n, HDA_SD_BDPL));
	uint32_t cbl = reg(h, sdreg(n, HDA_SD_CBL), 4);
	unsigned lvi = reg(h, sdreg(n, HDA_SD_LVI), 2) & 0xff;
	unsigned tag = reg(h, sdreg(n, HDA_SD_CTL), 3) >> HDA_SD_CTL_STRM_SHIFT;
	uint32_t lpib = reg(h, sdreg(n, HDA_SD_LPIB), 4);
	bool silent, bound = hda_codec_stream_bound(&h->codec, n == HDA_SD_IN,
						    tag, &silent);
	uint8_t fill = s->fmt.sample == AUDIO_U8 ? 0x80 : 0;
	uint64_t moved = 0;
	unsigned walked = 0;
	bool short_read = false;
	uint32_t gain[2];

	hda_codec_stream_gain(&h->codec, n == HDA_SD_IN, gain);
	if (bound && !s->backend) {	/* bound after RUN */
		audio_start(h->be, stream_dir(n), &s->fmt);
		s->backend = true;
	}
	while (moved < bytes && walked < HDA_BDL_WALK_MAX && s->active) {
		struct { uint64_t addr; uint32_t len, flags; } e;
		uint64_t chunk;
		uint8_t *buf;

		if (s->bd > lvi)
			s->bd = 0;
		if (guest_mem_read(h->mem, bdl + 16ull * s->bd, &e, sizeof(e)) < 0) {
			stream_error(h, n, "BDL outside RAM", bdl);
			break;
		}
		e.addr = le64toh(e.addr);
		e.len = le32toh(e.len);
		if (s->bd_off >= e.len) {	/* zero length or shrunk */
			s->bd_off = 0;
			s->bd = s->bd >= lvi ? 0 : s->bd + 1;
			walked++;
			continue;
		}
		chunk = e.len - s->bd_off;
		if (chunk > bytes - moved)
			chunk = bytes - moved;
		buf = gpa_to_hva(h->mem, e.addr + s->bd_off, chunk);
		if (!buf || e.addr + s->bd_off < e.addr) {
			stream_error(h, n, "buffer outside RAM", e.addr);
			break;
		}
		if (n == HDA_SD_OUT) {
			if (bound && !silent)
				write_with_gain(h, s, buf, chunk, gain);
			else if (bound)
				write_silence(h, chunk);
		} else {
			size_t got = bound && !silent ? audio_read(h->be, buf, chunk) : 0;

			if (got < chunk && bound && !silent) {
				/* Pad only what the rate makes overdue. */
				uint64_t need = moved < must ? must - moved : 0;
				uint64_t keep = got > need ? got : need < chunk ? need : chunk;

				keep -= keep % s->frame;
				if (keep < chunk) {
					chunk = keep;
					short_read = true;
				}
			}
			if (got && (gain[0] != HDA_GAIN_UNITY || gain[1] != HDA_GAIN_UNITY))
				audio_apply_gain(&s->fmt, buf, got, s->phase, gain);
			memset(buf + got, fill, chunk > got ? chunk - got : 0);
			if (!chunk)
				break;
		}
		moved += chunk;
		s->phase = s->frame ? (unsigned)((s->phase + chunk) % s->frame) : 0;
		s->bd_off += (uint32_t)chunk;
		lpib = cbl ? (uint32_t)((lpib + chunk) % cbl) : 0;	/* 0: never while RUN */
		if (s->bd_off == e.len) {
			if (le32toh(e.flags) & 1) {
				h->r[sdreg(n, HDA_SD_STS)] |= HDA_SD_STS_BCIS;
				set_reg(h, sdreg(n, HDA_SD_LPIB), 4, lpib);
				write_position(h, n);
				irq_update(h, true);
			}
			s->bd_off = 0;
			s->bd = s->bd >= lvi ? 0 : s->bd + 1;
			walked++;
		}
		if (short_read)
			break;
	}
	set_reg(h, sdreg(n, HDA_SD_LPIB), 4, lpib);
	write_position(h, n);
	h->stats.bytes[n] += moved;
	return moved;
}

/*
 * One tick of a running stream.  Playback into a backend with a clock
 * (audio_space() not SIZE_MAX): what the backend asks for now, which keeps
 * its buffer at its target latency, so its clock alone decides how fast
 * the guest's buffer drains (no drift between two clocks), and latency is
 * that buffer plus one tick.  Otherwise (record, no server, the null
 * backend): the frames the sample rate says are due since RUN by the
 * machine's clock and not yet moved.  A debt beyond HDA_MAX_LAG_NS (a
 * stalled timer thread, a paused machine's catch-up) is forgiven rather
 * than burst.
 */
static void stream_tick(struct hda *h, unsigned n, uint64_t now)
{
	struct hda_stream *s = &h->sd[n];
	uint64_t due, bytes, moved, max_lag, rec_slack;
	unsigned __int128 t;

	if (!s->active || (reg(h, HDA_SSYNC, 4) & (1u << n)) || !s->frame)
		return;
	t = (unsigned __int128)(now - s->start_ns) * s->fmt.rate / 1000000000u;
	due = (uint64_t)t > s->frames ? (uint64_t)t - s->frames : 0;
	max_lag = s->fmt.rate * HDA_MAX_LAG_NS / 1000000000u;
	if (due > max_lag) {
		s->frames += due - max_lag;
		due = max_lag;
	}
	bytes = due * s->frame;
	if (n == HDA_SD_OUT && s->backend) {
		size_t space = audio_space(h->be);

		if (space != SIZE_MAX) {
			/* A backend with a clock: what it asks for (it keeps
			 * its own target latency), at most HDA_MAX_LAG_NS.
			 * One that has asked for nothing for HDA_STALL_NS (a
			 * stream still being created, a stalled server) gets
			 * the machine's clock's bytes, which it drops: the
			 * guest's DMA must not stop, or its driver gives up. */
			uint64_t cap = max_lag * s->frame;

			bytes = (space < cap ? space : cap) / s->frame * s->frame;
			if (bytes)
				s->fed_ns = now;
			else if (now - s->fed_ns >= HDA_STALL_NS)
				bytes = due * s->frame;
			s->frames = (uint64_t)t;	/* the machine's clock: caught up */
			if (bytes)
				stream_dma(h, n, bytes, bytes);
			return;
		}
	}
	s->fed_ns = now;	/* paced by the machine's clock: no stall */
	if (!bytes)
		return;
	/* Recording: the backend's clock again, within HDA_REC_SLACK_NS of
	 * the machine's (its fragments arrive in bursts); beyond that,
	 * silence keeps the guest's clock running. */
	rec_slack = n == HDA_SD_IN ? s->fmt.rate * HDA_REC_SLACK_NS / 1000000000u : 0;
	moved = stream_dma(h, n, bytes,
			   due > rec_slack ? (due - rec_slack) * s->frame : 0);
	s->frames += moved / s->frame;
}

void hda_tick(struct hda *h)
{
	uint64_t now = now_ns(h);
	bool any = false;

	for (unsigned n = 0; n < HDA_STREAMS; n++) {
		stream_tick(h, n, now);
		any |= h->sd[n].active;
	}
	if (any && !h->tick.armed)
		vtimer_mod(&h->tick, now + HDA_TICK_NS);
}

static void tick_fired(void *opaque, uint64_t now)
{
	(void)now;
	hda_tick(opaque);
}

/* ---- registers ----------------------------------------------------------------- */

void hda_reset(struct hda *h)
{
	for (unsigned n = 0; n < HDA_STREAMS; n++) {
		stream_stop(h, n);
		h->sd[n].bd = h->sd[n].bd_off = 0;
	}
	vtimer_del(&h->tick);
	memcpy(h->r, reset_regs, sizeof(h->r));
	h->rirb_cnt = 0;
	h->wall_base_ns = now_ns(h);
	hda_codec_reset(&h->codec);
	irq_update(h, false);
}

uint64_t hda_mmio_read(struct hda *h, uint64_t off, unsigned size)
{
	uint8_t tmp[8] = { 0 };
	uint64_t v = 0;

	if (size > 4 || off >= HDA_REGS_SIZE || off + size > HDA_REGS_SIZE)
		return 0;
	for (unsigned i = 0; i < size; i++)
		tmp[i] = h->r[off + i];
	/* The computed registers. */
	for (unsigned i = 0; i < size; i++) {
		unsigned o = (unsigned)off + i;

		if (o >= HDA_INTSTS && o < HDA_INTSTS + 4)
			tmp[i] = (uint8_t)(intsts(h) >> (8 * (o - HDA_INTSTS)));
		else if (o >= HDA_WALCLK && o < HDA_WALCLK + 4) {
			uint64_t ticks = (now_ns(h) - h->wall_base_ns) * 3 / 125;

			tmp[i] = (uint8_t)(ticks >> (8 * (o - HDA_WALCLK)));
		}
	}
	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)tmp[i] << (8 * i);
	return v;
}

static bool touches(uint64_t off, unsigned size, unsigned reg_off,
		    unsigned reg_size)
{
	return off < reg_off + reg_size && off + size > reg_off;
}

/* The byte the guest wrote at @o, if the access covered it. */
static bool written(uint64_t off, unsigned size, uint64_t val, unsigned o,
		    uint8_t *b)
{
	if (o < off || o >= off + size)
		return false;
	*b = (uint8_t)(val >> (8 * (o - off)));
	return true;
}

static void sd_ctl_written(struct hda *h, unsigned n, uint32_t old)
{
	uint32_t ctl = reg(h, sdreg(n, HDA_SD_CTL), 3);

	if (ctl & HDA_SD_CTL_SRST) {
		if (!(old & HDA_SD_CTL_SRST))
			stream_reset(h, n);
		/* RUN cannot be set while in reset. */
		h->r[sdreg(n, HDA_SD_CTL)] = (uint8_t)(ctl & ~HDA_SD_CTL_RUN);
	} else if ((ctl & HDA_SD_CTL_RUN) && !(old & HDA_SD_CTL_RUN)) {
		stream_start(h, n);
	} else if (!(ctl & HDA_SD_CTL_RUN) && (old & HDA_SD_CTL_RUN)) {
		stream_stop(h, n);
	}
	irq_update(h, false);
}

void hda_mmio_write(struct hda *h, uint64_t off, uint64_t val, unsigned size)
{
	uint8_t old[HDA_REGS_SIZE], b;

	if (size > 4 || off >= HDA_REGS_SIZE || off + size > HDA_REGS_SIZE)
		return;
	/* While CRST is 0 only GCTL is writable (§3.3.7). */
	if (!(h->r[HDA_GCTL] & HDA_GCTL_CRST) &&
	    !touches(off, size, HDA_GCTL, 4))
		return;
	memcpy(old, h->r, sizeof(old));
	for (unsigned i = 0; i < size; i++) {
		unsigned o = (unsigned)off + i;
		uint8_t v = (uint8_t)(val >> (8 * i));

		h->r[o] = (uint8_t)((h->r[o] & ~wmask[o]) | (v & wmask[o]));
		h->r[o] &= (uint8_t)~(v & w1cmask[o]);
	}
	/* CBL, LVI, FIFOW, FMT and the BDL address are fixed while RUN is
	 * set (§3.3.38-§3.3.44: software must not change them): the DMA
	 * keeps what it checked at RUN. */
	for (unsigned n = 0; n < HDA_STREAMS; n++)
		if (old[sdreg(n, HDA_SD_CTL)] & HDA_SD_CTL_RUN)
			memcpy(&h->r[sdreg(n, HDA_SD_CBL)], &old[sdreg(n, HDA_SD_CBL)],
			       0x20 - HDA_SD_CBL);
	if (touches(off, size, HDA_GCTL, 1)) {
		bool was = old[HDA_GCTL] & HDA_GCTL_CRST;
		bool is = h->r[HDA_GCTL] & HDA_GCTL_CRST;

		if (was && !is) {
			uint8_t gctl = h->r[HDA_GCTL];

			hda_reset(h);
			h->r[HDA_GCTL] = gctl;
		} else if (!was && is) {
			/* Out of reset, the codec asks for a state change
			 * (STATESTS bit 0: codec 0 present, §3.3.9). */
			h->r[HDA_STATESTS] |= 1;
			irq_update(h, true);
		}
	}
	if (touches(off, size, HDA_CORBRP, 2)) {
		/* CORBRPRST (§3.3.21): RP to 0; the bit reads back 1 until
		 * the guest writes 0. */
		if (h->r[HDA_CORBRP + 1] & 0x80)
			h->r[HDA_CORBRP] = 0;
	}
	if (written(off, size, val, HDA_RIRBWP + 1, &b) && (b & 0x80))
		set_reg(h, HDA_RIRBWP, 2, 0);		/* RIRBWPRST */
	if (touches(off, size, HDA_CORBWP, 1) ||
	    (touches(off, size, HDA_CORBCTL, 1) &&
	     (h->r[HDA_CORBCTL] & ~old[HDA_CORBCTL] & HDA_CORBCTL_RUN)))
		corb_run(h);
	if (touches(off, size, HDA_ICS, 1) && (h->r[HDA_ICS] & HDA_ICS_ICB))
		immediate_command(h);
	for (unsigned n = 0; n < HDA_STREAMS; n++)
		if (touches(off, size, sdreg(n, HDA_SD_CTL), 3))
			sd_ctl_written(h, n, get(old, sdreg(n, HDA_SD_CTL), 3));
	irq_update(h, false);
}

static uint64_t bar_read(void *opaque, uint64_t off, unsigned size)
{
	return hda_mmio_read(opaque, off, size);
}

static void bar_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
	hda_mmio_write(opaque, off, val, size);
}

static const struct bus_ops bar_ops = {
	.name = "hda",
	.read = bar_read,
	.write = bar_write,
};

/* MSI enable toggled: the interrupt moves between INTx and messages. */
static void config_write(struct pci_device *dev, unsigned offset,
			 unsigned size, uint32_t value)
{
	(void)value;
	if (offset < HDA_MSI_CAP + 4u && offset + size > HDA_MSI_CAP + 2u)
		irq_update(dev->opaque, false);
}

/* ---- lifecycle ----------------------------------------------------------------- */

struct hda *hda_new(const struct hda_config *cfg, char *err, size_t errlen)
{
	struct hda *h = calloc(1, sizeof(*h));
	int r;

	if (!h) {
		snprintf(err, errlen, "hda: out of memory");
		return NULL;
	}
	init_tables();
	h->mem = cfg->mem;
	h->timers = cfg->timers;
	h->be = cfg->backend;
	vtimer_init(&h->tick, cfg->timers, tick_fired, h);
	pci_device_init(&h->pci, HDA_PCI_VENDOR, HDA_PCI_DEVICE, 1, HDA_CLASS,
			0x1af4, 0x1100, 1);
	h->pci.opaque = h;
	h->pci.config_write = config_write;
	/* ICH6 TCSEL (0x44): drivers clear its traffic class bits. */
	h->pci.wmask[0x44] = 0x07;
	if (pci_device_set_bar(&h->pci, 0, PCI_BAR_MEM64, HDA_BAR_SIZE, false,
			       &bar_ops, h) < 0 ||
	    pci_msi_init(&h->pci, HDA_MSI_CAP) < 0) {
		snprintf(err, errlen, "hda: cannot set up the BAR and MSI");
		pci_device_cleanup(&h->pci);
		free(h);
		return NULL;
	}
	hda_reset(h);
	r = pci_add_device(cfg->pci, &h->pci, cfg->devfn);
	if (r < 0) {
		snprintf(err, errlen, "hda: PCI %02x.%x: %s", cfg->devfn >> 3,
			 cfg->devfn & 7,
			 r == -EEXIST ? "slot in use" : "cannot add");
		pci_device_cleanup(&h->pci);
		free(h);
		return NULL;
	}
	return h;
}

void hda_free(struct hda *h)
{
	if (!h)
		return;
	vtimer_del(&h->tick);
	for (unsigned n = 0; n < HDA_STREAMS; n++)
		stream_stop(h, n);
	pci_device_cleanup(&h->pci);
	free(h);
}

void hda_get_stats(const struct hda *h, struct hda_stats *out)
{
	*out = h->stats;
}

/* ---- save/load ----------------------------------------------------------------- */

static GVariant *hda_save(void *opaque)
{
	struct hda *h = opaque;
	GVariantBuilder sds;
	uint64_t wall = (now_ns(h) - h->wall_base_ns) * 3 / 125;

	g_variant_builder_init(&sds, G_VARIANT_TYPE("a(uub)"));
	for (unsigned n = 0; n < HDA_STREAMS; n++) {
		unsigned lvi = reg(h, sdreg(n, HDA_SD_LVI), 2) & 0xff;
		/* The guest may lower LVI under a running stream: its DMA
		 * wraps to entry 0 at its next tick (stream_dma()); so does the
		 * saved state, which load would refuse otherwise. */
		bool wrap = h->sd[n].bd > lvi;

		g_variant_builder_add(&sds, "(uub)", wrap ? 0 : h->sd[n].bd,
				      h->sd[n].bd_off,
				      (gboolean)h->sd[n].active);
	}
	return g_variant_new("(@ayqa(uub)t@(a(qyyyyyyuay)u))",
			     g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, h->r,
						       sizeof(h->r), 1),
			     h->rirb_cnt, &sds, wall,
			     hda_codec_save(&h->codec));
}

#define FAIL(...) device_load_fail(err, errlen, "hda: " __VA_ARGS__)

static int hda_load(void *opaque, uint32_t version, GVariant *state,
		    char *err, size_t errlen)
{
	struct hda *h = opaque;
	GVariant *regs, *sds, *codec;
	struct hda_codec c;
	uint8_t r[HDA_REGS_SIZE];
	struct hda_stream sd[HDA_STREAMS];
	const uint8_t *rb;
	gsize nr;
	uint16_t cnt;
	uint64_t wall;
	int ret = 0;

	ret = device_state_check("hda", version, hda_device_ops.state_version,
				 state, HDA_STATE_TYPE, err, errlen);
	if (ret < 0)
		return ret;
	g_variant_get(state, "(@ayq@a(uub)t@(a(qyyyyyyuay)u))", &regs, &cnt,
		      &sds, &wall, &codec);
	rb = g_variant_get_fixed_array(regs, &nr, 1);
	if (nr != HDA_REGS_SIZE || g_variant_n_children(sds) != HDA_STREAMS) {
		ret = FAIL("%zu register bytes and %zu streams, not %u and %u",
			   (size_t)nr, (size_t)g_variant_n_children(sds),
			   HDA_REGS_SIZE, HDA_STREAMS);
		goto out;
	}
	memcpy(r, rb, sizeof(r));
	/* Read-only bits are this controller's, not the file's. */
	for (unsigned o = 0; o < HDA_REGS_SIZE; o++) {
		uint8_t ro = (uint8_t)~(wmask[o] | w1cmask[o]);

		if (o >= HDA_INTSTS && o < HDA_INTSTS + 4)
			continue;
		if (o == HDA_CORBRP || o == HDA_RIRBWP || o == HDA_IRII ||
		    (o > HDA_IRII && o < HDA_IRII + 4) || o == HDA_ICS ||
		    o == HDA_STATESTS ||
		    ((o - 0x80) % 0x20 >= HDA_SD_LPIB &&
		     (o - 0x80) % 0x20 < HDA_SD_LPIB + 4 && o >= 0x80) ||
		    (o >= 0x80 && (o - 0x80) % 0x20 == HDA_SD_STS))
			continue;	/* state the device itself sets */
		if ((r[o] & ro) != (reset_regs[o] & ro)) {
			ret = FAIL("register byte %#x is %#x, this controller's read-only bits are %#x",
				   o, r[o], reset_regs[o] & ro);
			goto out;
		}
	}
	if (cnt > 256 || r[HDA_RIRBWP + 1] || (r[HDA_CORBRP + 1] & 0x7f)) {
		ret = FAIL("CORB/RIRB pointers out of range");
		goto out;
	}
	for (unsigned n = 0; n < HDA_STREAMS; n++) {
		gboolean act;
		unsigned lvi = get(r, sdreg(n, HDA_SD_LVI), 2);
		uint32_t ctl = get(r, sdreg(n, HDA_SD_CTL), 3);

		memset(&sd[n], 0, sizeof(sd[n]));
		g_variant_get_child(sds, n, "(uub)", &sd[n].bd, &sd[n].bd_off,
				    &act);
		sd[n].active = act;
		struct audio_format f;

		if (sd[n].bd > lvi || (act && (!(ctl & HDA_SD_CTL_RUN) ||
					       (ctl & HDA_SD_CTL_SRST) ||
					       stream_params_bad(r, n, &f)))) {
			ret = FAIL("stream %u: BDL entry %u of %u, or running without RUN, format, CBL or LVI",
				   n, sd[n].bd, lvi);
			goto out;
		}
	}
	ret = hda_codec_load(&c, codec, err, errlen);
	if (ret < 0)
		goto out;
	for (unsigned n = 0; n < HDA_STREAMS; n++)
		stream_stop(h, n);
	vtimer_del(&h->tick);
	memcpy(h->r, r, sizeof(r));
	h->rirb_cnt = cnt;
	h->codec = c;
	/* Rounded up, so that WALCLK reads back as saved. */
	h->wall_base_ns = now_ns(h) - (wall * 125 + 2) / 3;
	for (unsigned n = 0; n < HDA_STREAMS; n++) {
		h->sd[n].bd = sd[n].bd;
		h->sd[n].bd_off = sd[n].bd_off;
		if (sd[n].active) {
			unsigned bd = sd[n].bd;
			uint32_t off = sd[n].bd_off;

			stream_start(h, n);	/* pacing from now */
			h->sd[n].bd = bd;
			h->sd[n].bd_off = off;
			/* Where in a frame the DMA stands (the gain's channel). */
			if (h->sd[n].frame)
				h->sd[n].phase = get(r, sdreg(n, HDA_SD_LPIB), 4) %
						 h->sd[n].frame;
		}
	}
	h->level = false;
	irq_update(h, false);
out:
	g_variant_unref(regs);
	g_variant_unref(sds);
	g_variant_unref(codec);
	return ret;
}

static void dev_reset(void *opaque)
{
	hda_reset(opaque);
}

static void dev_free(void *opaque)
{
	hda_free(opaque);
}

const struct device_ops hda_device_ops = {
	.name = "hda",
	.reset = dev_reset,
	.save = hda_save,
	.load = hda_load,
	.state_version = 1,
	.free = dev_free,
};
