/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_hda.c - the Intel HDA controller and its duplex codec
 * driven through their registers as snd_hda_intel drives them (Intel HDA
 * 1.0a): controller reset, CORB/RIRB set up as azx_init_cmd_io() does,
 * the verbs the codec probe and the generic parser issue, the immediate
 * command interface; a playback and a record stream over synthetic BDLs
 * in guest RAM, paced by a fake clock, into an in-process capture backend
 * (the bytes reach it exactly in BDL order; LPIB, the position buffer,
 * BCIS and the interrupt at IOC entries; INTx and MSI; the backend's
 * space pacing the DMA); hostile BDLs, CORBs and verbs; save and load.
 */
#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "statetest.h"

#include "audio/audio.h"
#include "audio/hda.h"
#include "audio/hda_codec.h"
#include "bus.h"
#include "devices/pci.h"
#include "log.h"
#include "mem.h"
#include "timer.h"

#define RAM_SIZE	(16u << 20)
#define DEVFN		(0x1b << 3)
#define BAR_ADDR	0xfe000000ull
#define CORB		0x100000ull
#define RIRB		0x101000ull
#define POSBUF		0x102000ull
#define BDL_OUT		0x103000ull
#define BDL_IN		0x104000ull
#define BUF		0x200000ull	/* stream buffers */
#define MSI_ADDR	0xfee01000ull
#define MSI_DATA	0x4031
#define OUT		(HDA_SD(HDA_SD_OUT))
#define IN		(HDA_SD(HDA_SD_IN))

static struct guest_mem mem;
static struct bus *pio, *mmio;
static struct pci_host *host;
static struct fake_clock fclk;
static struct vtimer_queue *q;
static struct hda *hda;
static int pirq_level[4];
static unsigned pirq_rises, msi_count;

static void set_pirq(void *o, unsigned p, int l)
{
	(void)o;
	if (p < 4) {
		if (l && !pirq_level[p])
			pirq_rises++;
		pirq_level[p] = l;
	}
}

static int send_msi(void *opaque, uint64_t addr, uint32_t data)
{
	(void)opaque;
	CHECK_EQ(addr, MSI_ADDR);
	CHECK_EQ(data, MSI_DATA);
	msi_count++;
	return 0;
}

static const struct pci_host_ops host_ops = { set_pirq, send_msi };

/* ---- the capture backend: records playback, plays a pattern to record -- */

struct cap {
	struct audio_backend be;
	uint8_t out[1 << 20];
	size_t nout;
	size_t space;			/* SIZE_MAX: unlimited */
	size_t in_avail;		/* bytes of pattern still to record */
	uint8_t in_next;		/* the pattern: a byte counter */
	unsigned starts[2], stops[2];
	struct audio_format fmt[2];
};

static struct cap cap;

static int cap_start(struct audio_backend *be, enum audio_dir d,
		     const struct audio_format *f)
{
	(void)be;
	cap.starts[d]++;
	cap.fmt[d] = *f;
	return 0;
}

static void cap_stop(struct audio_backend *be, enum audio_dir d)
{
	(void)be;
	cap.stops[d]++;
}

static size_t cap_space(struct audio_backend *be)
{
	(void)be;
	return cap.space;
}

static size_t cap_write(struct audio_backend *be, const void *buf, size_t len)
{
	(void)be;
	if (len > sizeof(cap.out) - cap.nout)
		len = sizeof(cap.out) - cap.nout;
	memcpy(cap.out + cap.nout, buf, len);
	cap.nout += len;
	if (cap.space != SIZE_MAX)
		cap.space -= len < cap.space ? len : cap.space;
	return len;
}

static size_t cap_read(struct audio_backend *be, void *buf, size_t len)
{
	uint8_t *b = buf;

	(void)be;
	if (len > cap.in_avail)
		len = cap.in_avail;
	for (size_t i = 0; i < len; i++)
		b[i] = cap.in_next++;
	cap.in_avail -= len;
	return len;
}

static const char *cap_state(struct audio_backend *be)
{
	(void)be;
	return "capture";
}

static void cap_free(struct audio_backend *be)
{
	(void)be;
}

static const struct audio_backend_ops cap_ops = {
	.name = "capture", .start = cap_start, .stop = cap_stop, .space = cap_space,
	.write = cap_write, .read = cap_read, .state = cap_state, .free = cap_free,
};

/* ---- register access through the BAR ----------------------------------- */

static uint32_t rd(unsigned off, unsigned size)
{
	return (uint32_t)io_read(mmio, BAR_ADDR + off, size);
}

static void wr(unsigned off, uint32_t v, unsigned size)
{
	io_write(mmio, BAR_ADDR + off, v, size);
}

static void wr32(uint64_t gpa, uint32_t v)
{
	v = htole32(v);
	CHECK_EQ(guest_mem_write(&mem, gpa, &v, 4), 0);
}

static uint32_t rd32(uint64_t gpa)
{
	uint32_t v = 0;

	CHECK_EQ(guest_mem_read(&mem, gpa, &v, 4), 0);
	return le32toh(v);
}

/* Let @ns of simulated time pass in 1 ms steps, firing the timers. */
static void advance(uint64_t ns)
{
	uint64_t end = fclk.mono_ns + ns;

	while (fclk.mono_ns < end) {
		fclk.mono_ns = fclk.mono_ns + 1000000 < end ?
			       fclk.mono_ns + 1000000 : end;
		vtimer_queue_run_due(q, fclk.mono_ns);
	}
}

static void new_controller(void)
{
	struct hda_config cfg = {
		.pci = host, .devfn = DEVFN, .mem = &mem, .timers = q,
		.backend = &cap.be,
	};
	char err[128] = "";

	hda = hda_new(&cfg, err, sizeof(err));
	CHECK(hda != NULL);
	if (!hda) {
		fprintf(stderr, "  %s\n", err);
		exit(1);
	}
	pci_config_write(host, 0, DEVFN, PCI_BASE_ADDRESS_0, 4, (uint32_t)BAR_ADDR);
	pci_config_write(host, 0, DEVFN, PCI_BASE_ADDRESS_0 + 4, 4, 0);
	pci_config_write(host, 0, DEVFN, PCI_COMMAND, 2,
			 PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
}

static void reset_backend(void)
{
	memset(&cap, 0, sizeof(cap));
	cap.be.ops = &cap_ops;
	cap.space = SIZE_MAX;
}

/* azx_reset() then azx_init_cmd_io(): CRST 0 -> 1, CORB and RIRB of 256
 * entries, RINTCNT 1, interrupts on. */
static void driver_init(void)
{
	wr(HDA_GCTL, 0, 4);
	CHECK_EQ(rd(HDA_GCTL, 4) & HDA_GCTL_CRST, 0);
	wr(HDA_GCTL, HDA_GCTL_CRST, 4);
	CHECK_EQ(rd(HDA_GCTL, 4) & HDA_GCTL_CRST, HDA_GCTL_CRST);
	CHECK_EQ(rd(HDA_STATESTS, 2), 1);	/* codec 0 present */
	wr(HDA_STATESTS, 0x7fff, 2);
	CHECK_EQ(rd(HDA_STATESTS, 2), 0);

	wr(HDA_CORBCTL, 0, 1);
	wr(HDA_CORBLBASE, (uint32_t)CORB, 4);
	wr(HDA_CORBUBASE, 0, 4);
	CHECK_EQ(rd(HDA_CORBSIZE, 1), 0x42);
	wr(HDA_CORBSIZE, 0x02, 1);
	wr(HDA_CORBWP, 0, 2);
	wr(HDA_CORBRP, HDA_CORBRP_RST, 2);
	CHECK_EQ(rd(HDA_CORBRP, 2), HDA_CORBRP_RST);
	wr(HDA_CORBRP, 0, 2);
	CHECK_EQ(rd(HDA_CORBRP, 2), 0);
	wr(HDA_CORBCTL, HDA_CORBCTL_RUN | HDA_CORBCTL_CMEIE, 1);

	wr(HDA_RIRBCTL, 0, 1);
	wr(HDA_RIRBLBASE, (uint32_t)RIRB, 4);
	wr(HDA_RIRBUBASE, 0, 4);
	wr(HDA_RIRBWP, HDA_RIRBWP_RST, 2);
	CHECK_EQ(rd(HDA_RIRBWP, 2), 0);
	wr(HDA_RINTCNT, 1, 2);
	wr(HDA_RIRBCTL, HDA_RIRBCTL_DMAEN | HDA_RIRBCTL_RINTCTL, 1);
	wr(HDA_INTCTL, HDA_INT_GIE | HDA_INT_CIE, 4);
	wr(HDA_DPUBASE, 0, 4);
	wr(HDA_DPLBASE, (uint32_t)POSBUF | HDA_DPLBASE_EN, 4);
}

static unsigned corb_wp, rirb_rp;

/* One verb through the CORB; its response from the RIRB (the interrupt
 * handler's part: RIRBSTS cleared). */
static uint32_t verb(unsigned nid, unsigned v, unsigned payload)
{
	uint32_t cmd = (uint32_t)nid << 20 |
		       (v >= 0x100 ? (uint32_t)v << 8 | (payload & 0xff)
				   : (uint32_t)v << 16 | (payload & 0xffff));
	corb_wp = (corb_wp + 1) % 256;
	wr32(CORB + 4 * corb_wp, cmd);
	wr(HDA_CORBWP, corb_wp, 2);
	CHECK_EQ(rd(HDA_CORBRP, 2), corb_wp);
	CHECK_EQ(rd(HDA_RIRBWP, 2), (rirb_rp + 1) % 256);
	CHECK(rd(HDA_RIRBSTS, 1) & HDA_RIRBSTS_RINTFL);
	CHECK(rd(HDA_INTSTS, 4) & HDA_INT_CIS);
	rirb_rp = (rirb_rp + 1) % 256;
	CHECK_EQ(rd32(RIRB + 8 * rirb_rp + 4), 0);	/* codec 0, solicited */
	wr(HDA_RIRBSTS, HDA_RIRBSTS_RINTFL, 1);
	CHECK_EQ(rd(HDA_INTSTS, 4) & HDA_INT_CIS, 0);
	return rd32(RIRB + 8 * rirb_rp);
}

static void setup(void)
{
	reset_backend();
	pirq_rises = msi_count = 0;
	memset(pirq_level, 0, sizeof(pirq_level));
	corb_wp = rirb_rp = 0;
	new_controller();
	driver_init();
}

static void teardown(void)
{
	hda_free(hda);
	hda = NULL;
}

/* ---- tests --------------------------------------------------------------- */

static void test_identity(void)
{
	hda_free(NULL);
	setup();
	CHECK_EQ(pci_config_read(host, 0, DEVFN, PCI_VENDOR_ID, 4), 0x26688086);
	CHECK_EQ(pci_config_read(host, 0, DEVFN, PCI_CLASS_PROG, 1), 0x00);
	CHECK_EQ(pci_config_read(host, 0, DEVFN, PCI_CLASS_DEVICE, 2), 0x0403);
	CHECK_EQ(pci_config_read(host, 0, DEVFN, PCI_INTERRUPT_PIN, 1), 1);
	CHECK_EQ(pci_config_read(host, 0, DEVFN, PCI_CAPABILITY_LIST, 1), HDA_MSI_CAP);
	CHECK_EQ(pci_config_read(host, 0, DEVFN, HDA_MSI_CAP, 1), PCI_CAP_ID_MSI);
	CHECK_EQ(rd(HDA_GCAP, 2), 0x1101);	/* 1 out, 1 in, 64-bit */
	CHECK_EQ(rd(HDA_VMIN, 1), 0);
	CHECK_EQ(rd(HDA_VMAJ, 1), 1);
	CHECK_EQ(rd(OUT + HDA_SD_FIFOS, 2), 0xff);
	/* WALCLK runs at 24 MHz of the machine's clock. */
	{
		uint32_t w0 = rd(HDA_WALCLK, 4);

		advance(1000000);
		CHECK_EQ(rd(HDA_WALCLK, 4) - w0, 24000);
	}
	/* Controller reset: registers to their defaults, writes ignored
	 * until CRST is 1 again. */
	wr(HDA_INTCTL, 0, 4);
	wr(HDA_GCTL, 0, 4);
	wr(HDA_INTCTL, HDA_INT_GIE, 4);
	CHECK_EQ(rd(HDA_INTCTL, 4), 0);
	CHECK_EQ(rd(HDA_CORBLBASE, 4), 0);
	teardown();
}

/* The verbs snd_hda_codec's probe and the generic parser send, with the
 * answers the codec gives. */
static void test_codec_probe(void)
{
	setup();
	CHECK_EQ(verb(0, 0xf00, HDA_PAR_VENDOR_ID), HDA_CODEC_VENDOR_ID);
	CHECK_EQ(verb(0, 0xf00, HDA_PAR_REVISION_ID), 0x00100101);
	CHECK_EQ(verb(0, 0xf00, HDA_PAR_NODE_COUNT), 0x00010001);
	CHECK_EQ(verb(1, 0xf00, HDA_PAR_FG_TYPE), 0x01);
	CHECK_EQ(verb(1, 0xf00, HDA_PAR_NODE_COUNT), 0x00020004);
	CHECK_EQ(verb(1, 0xf20, 0), HDA_CODEC_SUBSYSTEM);
	CHECK_EQ(verb(1, 0xf00, HDA_PAR_PCM), HDA_CODEC_PCM);
	CHECK_EQ(verb(1, 0xf00, HDA_PAR_STREAM_FORMATS), 1);
	CHECK_EQ(verb(1, 0x705, 0), 0);			/* power up D0 */
	CHECK_EQ(verb(1, 0xf05, 0), 0);
	CHECK_EQ(verb(1, 0xf00, HDA_PAR_GPIO_COUNT), 0);
	/* Widgets: DAC, line-out pin, ADC, mic pin. */
	CHECK_EQ(verb(2, 0xf00, HDA_PAR_WIDGET_CAP), 0x0000001d);
	CHECK_EQ(verb(3, 0xf00, HDA_PAR_WIDGET_CAP), 0x00400101);
	CHECK_EQ(verb(4, 0xf00, HDA_PAR_WIDGET_CAP), 0x0010011b);
	CHECK_EQ(verb(5, 0xf00, HDA_PAR_WIDGET_CAP), 0x00400001);
	CHECK_EQ(verb(2, 0xf00, HDA_PAR_AMP_OUT_CAP), 0x80034a4a);
	CHECK_EQ(verb(4, 0xf00, HDA_PAR_AMP_IN_CAP), 0x80034a4a);
	CHECK_EQ(verb(3, 0xf00, HDA_PAR_PIN_CAP), 0x00010010);
	CHECK_EQ(verb(5, 0xf00, HDA_PAR_PIN_CAP), 0x00000020);
	CHECK_EQ(verb(3, 0xf00, HDA_PAR_CONN_LEN), 1);
	CHECK_EQ(verb(3, 0xf02, 0), 2);
	CHECK_EQ(verb(4, 0xf02, 0), 5);
	CHECK_EQ(verb(3, 0xf1c, 0), 0x01014010);
	CHECK_EQ(verb(5, 0xf1c, 0), 0x01a19020);
	/* Set and read back what the parser sets. */
	verb(2, 0x2, 0x0011);				/* 48 kHz 16-bit stereo */
	CHECK_EQ(verb(2, 0xa00, 0), 0x0011);
	verb(2, 0x706, 0x10);				/* stream 1, channel 0 */
	CHECK_EQ(verb(2, 0xf06, 0), 0x10);
	verb(2, 0x3, 0xb000 | 0x40);			/* out amp L+R, unmuted */
	CHECK_EQ(verb(2, 0xb, 0xa000), 0x40);
	CHECK_EQ(verb(2, 0xb, 0x8000), 0x40);
	verb(2, 0x3, 0xa000 | 0x80);			/* mute left only */
	CHECK_EQ(verb(2, 0xb, 0xa000), 0x80);
	CHECK_EQ(verb(2, 0xb, 0x8000), 0x40);
	verb(3, 0x707, 0x40);
	CHECK_EQ(verb(3, 0xf07, 0), 0x40);
	verb(3, 0x70c, 0x02);
	CHECK_EQ(verb(3, 0xf0c, 0), 0x02);
	verb(3, 0x71c, 0xf0);				/* config default byte 0 */
	CHECK_EQ(verb(3, 0xf1c, 0), 0x010140f0);
	verb(1, 0x720, 0x34);
	CHECK_EQ(verb(1, 0xf20, 0), 0x1af41134);
	/* Unknown verbs, absent nodes: 0, and the codec is unharmed. */
	CHECK_EQ(verb(0x7f, 0xf00, 0), 0);
	CHECK_EQ(verb(2, 0xfff, 0xff), 0);
	CHECK_EQ(verb(9, 0x706, 0x10), 0);
	CHECK_EQ(verb(2, 0xf06, 0), 0x10);
	/* Function group reset. */
	verb(1, 0x7ff, 0);
	CHECK_EQ(verb(2, 0xf06, 0), 0);
	CHECK_EQ(verb(1, 0xf20, 0), HDA_CODEC_SUBSYSTEM);

	/* A batch of commands in one CORBWP write: in order, one RIRB
	 * interrupt. */
	for (unsigned i = 0; i < 5; i++)
		wr32(CORB + 4 * (corb_wp + 1 + i),
		     (uint32_t)(2 + (i % 4)) << 20 | 0xf0009);
	wr(HDA_CORBWP, corb_wp + 5, 2);
	CHECK_EQ(rd(HDA_RIRBWP, 2), rirb_rp + 5);
	CHECK_EQ(rd32(RIRB + 8 * (rirb_rp + 1)), 0x1d);
	CHECK_EQ(rd32(RIRB + 8 * (rirb_rp + 5)), 0x1d);
	corb_wp += 5;
	rirb_rp += 5;
	CHECK(pirq_level[pci_intx_to_pirq(0x1b, 1)]);
	wr(HDA_RIRBSTS, HDA_RIRBSTS_RINTFL, 1);
	CHECK(!pirq_level[pci_intx_to_pirq(0x1b, 1)]);
	/* A command to an absent codec gets no response. */
	wr32(CORB + 4 * (corb_wp + 1), 0x2u << 28 | 0xf0000);
	wr(HDA_CORBWP, corb_wp + 1, 2);
	corb_wp++;
	CHECK_EQ(rd(HDA_RIRBWP, 2), rirb_rp);

	/* The immediate command interface (the driver's fallback). */
	wr(HDA_ICOI, 0x000f0000 | HDA_PAR_VENDOR_ID, 4);
	wr(HDA_ICS, HDA_ICS_ICB, 2);
	CHECK_EQ(rd(HDA_ICS, 2) & (HDA_ICS_ICB | HDA_ICS_IRV), HDA_ICS_IRV);
	CHECK_EQ(rd(HDA_IRII, 4), HDA_CODEC_VENDOR_ID);
	wr(HDA_ICS, HDA_ICS_IRV, 2);
	CHECK_EQ(rd(HDA_ICS, 2) & HDA_ICS_IRV, 0);
	teardown();
}

/* Fill @n BDL entries at @bdl: buffers at BUF + @base of @len bytes each,
 * with IOC on the odd ones; buffer bytes from a counter. */
static void make_bdl(uint64_t bdl, uint64_t base, unsigned n, uint32_t len)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t a = BUF + base + (uint64_t)i * len;

		wr32(bdl + 16 * i, (uint32_t)a);
		wr32(bdl + 16 * i + 4, (uint32_t)(a >> 32));
		wr32(bdl + 16 * i + 8, len);
		wr32(bdl + 16 * i + 12, i & 1);
		for (uint32_t b = 0; b < len; b++) {
			uint8_t v = (uint8_t)(i * 37 + b * 7 + 1);

			CHECK_EQ(guest_mem_write(&mem, a + b, &v, 1), 0);
		}
	}
}

/* Program stream descriptor @sd as the driver's prepare() does. */
static void stream_setup(unsigned sd, uint64_t bdl, uint32_t cbl, unsigned lvi,
			 uint16_t fmt, unsigned tag)
{
	wr(sd + HDA_SD_CTL, HDA_SD_CTL_SRST, 1);
	CHECK(rd(sd + HDA_SD_CTL, 1) & HDA_SD_CTL_SRST);
	wr(sd + HDA_SD_CTL, 0, 1);
	CHECK_EQ(rd(sd + HDA_SD_CTL, 1) & HDA_SD_CTL_SRST, 0);
	wr(sd + HDA_SD_CTL, tag << HDA_SD_CTL_STRM_SHIFT, 4);
	wr(sd + HDA_SD_CBL, cbl, 4);
	wr(sd + HDA_SD_LVI, lvi, 2);
	wr(sd + HDA_SD_FMT, fmt, 2);
	wr(sd + HDA_SD_BDPL, (uint32_t)bdl, 4);
	wr(sd + HDA_SD_BDPU, (uint32_t)(bdl >> 32), 4);
}

static void codec_route_out(unsigned tag)
{
	verb(2, 0x2, 0x0011);
	verb(2, 0x706, tag << 4);
	verb(2, 0x3, 0xb000 | 0x4a);
	verb(3, 0x707, 0x40);
}

static void run_stream(unsigned sd, unsigned n)
{
	uint32_t ctl = rd(sd + HDA_SD_CTL, 4) & 0xffffff;

	wr(HDA_INTCTL, rd(HDA_INTCTL, 4) | 1u << n, 4);
	wr(sd + HDA_SD_CTL, ctl | HDA_SD_CTL_RUN | HDA_SD_CTL_IOCE, 4);
}

/* 48 kHz 16-bit stereo = 192 bytes/ms: four entries of 960 bytes (5 ms
 * each), IOC on entries 1 and 3 (a period of 10 ms). */
static void test_playback(void)
{
	const uint32_t len = 960, cbl = 4 * 960;
	uint8_t want[4 * 960];
	unsigned pirq = pci_intx_to_pirq(0x1b, 1);

	setup();
	codec_route_out(1);
	make_bdl(BDL_OUT, 0, 4, len);
	CHECK_EQ(guest_mem_read(&mem, BUF, want, cbl), 0);
	stream_setup(OUT, BDL_OUT, cbl, 3, 0x0011, 1);
	pirq_rises = 0;
	run_stream(OUT, HDA_SD_OUT);
	CHECK(rd(OUT + HDA_SD_STS, 1) & HDA_SD_STS_FIFORDY);
	CHECK_EQ(cap.starts[AUDIO_OUT], 1);
	CHECK_EQ(cap.fmt[AUDIO_OUT].rate, 48000);
	CHECK_EQ(cap.fmt[AUDIO_OUT].sample, AUDIO_S16LE);
	CHECK_EQ(cap.fmt[AUDIO_OUT].channels, 2);

	/* 5 ms: the first entry, no IOC on it. */
	advance(5000000);
	CHECK_EQ(cap.nout, 960);
	CHECK_EQ(rd(OUT + HDA_SD_LPIB, 4), 960);
	CHECK_EQ(rd32(POSBUF + 8 * HDA_SD_OUT), 960);
	CHECK_EQ(rd(OUT + HDA_SD_STS, 1) & HDA_SD_STS_BCIS, 0);
	CHECK(!pirq_level[pirq]);
	/* 10 ms: entry 1 done, IOC: BCIS and the interrupt. */
	advance(5000000);
	CHECK_EQ(cap.nout, 1920);
	CHECK(rd(OUT + HDA_SD_STS, 1) & HDA_SD_STS_BCIS);
	CHECK_EQ(rd(HDA_INTSTS, 4), HDA_INT_GIS | 1u << HDA_SD_OUT);
	CHECK(pirq_level[pirq]);
	CHECK_EQ(rd(OUT + HDA_SD_LPIB, 4), 1920);
	wr(OUT + HDA_SD_STS, HDA_SD_STS_BCIS, 1);
	CHECK(!pirq_level[pirq]);
	/* 25 ms: wrapped to entry 0; LPIB wraps at CBL. */
	advance(15000000);
	CHECK_EQ(cap.nout, 25 * 192);
	CHECK_EQ(rd(OUT + HDA_SD_LPIB, 4), 25 * 192 - cbl);
	CHECK_EQ(rd32(POSBUF + 8 * HDA_SD_OUT), 25 * 192 - cbl);
	/* The bytes are the guest's buffers, in BDL order, twice round. */
	CHECK(memcmp(cap.out, want, cbl) == 0);
	CHECK(memcmp(cap.out + cbl, want, cap.nout - cbl) == 0);
	CHECK_EQ(pirq_rises, 2);	/* entries 1 and 3 */

	/* The backend's clock: with no room, nothing moves (for less than
	 * HDA_STALL_NS); the device then fills exactly what the backend
	 * asks for, no more. */
	wr(OUT + HDA_SD_STS, HDA_SD_STS_BCIS, 1);
	cap.space = 0;
	advance(HDA_STALL_NS - 5000000);
	CHECK_EQ(cap.nout, 25 * 192);
	cap.space = 2000;
	advance(5000000);
	CHECK_EQ(cap.nout, 25 * 192 + 2000);
	advance(20000000);
	CHECK_EQ(cap.nout, 25 * 192 + 2000);
	/* A backend that asks for nothing for HDA_STALL_NS (a stalled
	 * server): the machine's clock moves the DMA again (the guest's
	 * driver would give up on a position that stands still), the
	 * backend dropping what it cannot take; no burst of the stall. */
	{
		uint32_t lpib = rd(OUT + HDA_SD_LPIB, 4);
		size_t at = cap.nout;

		advance(HDA_STALL_NS - 20000000 - 5000000);
		CHECK_EQ(cap.nout, at);
		CHECK_EQ(rd(OUT + HDA_SD_LPIB, 4), lpib);
		advance(5000000);
		CHECK(cap.nout > at && cap.nout <= at + 960);
		at = cap.nout;
		advance(100000000);
		CHECK_EQ(cap.nout - at, 100 * 192);
		CHECK(rd(OUT + HDA_SD_LPIB, 4) != lpib);
	}
	/* Back to the machine's clock (no server): no burst either. */
	cap.space = SIZE_MAX;
	{
		size_t at = cap.nout;

		advance(5000000);
		CHECK_EQ(cap.nout, at + 960);
	}

	/* Muted by the host: the DMA goes on, the backend gets silence. */
	{
		size_t at = cap.nout;
		bool silent = true;

		audio_set_mute(&cap.be, true);
		advance(10000000);
		CHECK_EQ(cap.nout - at, 1920);
		for (size_t i = at; i < cap.nout; i++)
			silent &= cap.out[i] == 0;
		CHECK(silent);
		audio_set_mute(&cap.be, false);
	}
	/* Muted by the guest (DAC amp): silence too; unbound: nothing. */
	verb(2, 0x3, 0xb000 | 0x80);
	{
		size_t at = cap.nout;

		advance(5000000);
		CHECK_EQ(cap.nout - at, 960);
		CHECK_EQ(cap.out[at], 0);
		verb(2, 0x706, 0x20);		/* DAC on stream 2 */
		at = cap.nout;
		advance(5000000);
		CHECK_EQ(cap.nout, at);
	}
	/* RUN cleared: the stream stops, the backend's too. */
	wr(OUT + HDA_SD_CTL, rd(OUT + HDA_SD_CTL, 1) & ~HDA_SD_CTL_RUN, 1);
	CHECK_EQ(rd(OUT + HDA_SD_CTL, 1) & HDA_SD_CTL_RUN, 0);
	CHECK_EQ(rd(OUT + HDA_SD_STS, 1) & HDA_SD_STS_FIFORDY, 0);
	CHECK_EQ(cap.stops[AUDIO_OUT], 1);
	{
		uint32_t lpib = rd(OUT + HDA_SD_LPIB, 4);

		advance(20000000);
		CHECK_EQ(rd(OUT + HDA_SD_LPIB, 4), lpib);
	}
	teardown();
}

/* The interrupt as an MSI once the guest enables it. */
static void test_msi(void)
{
	setup();
	pci_config_write(host, 0, DEVFN, HDA_MSI_CAP + 4, 4, (uint32_t)MSI_ADDR);
	pci_config_write(host, 0, DEVFN, HDA_MSI_CAP + 8, 4, 0);
	pci_config_write(host, 0, DEVFN, HDA_MSI_CAP + 12, 2, MSI_DATA);
	pci_config_write(host, 0, DEVFN, HDA_MSI_CAP + 2, 2, 1);
	codec_route_out(1);
	CHECK_EQ(msi_count, 4);		/* one per RIRB response */
	CHECK_EQ(pirq_rises, 0);
	make_bdl(BDL_OUT, 0, 4, 960);
	stream_setup(OUT, BDL_OUT, 4 * 960, 3, 0x0011, 1);
	run_stream(OUT, HDA_SD_OUT);
	advance(20000000);
	CHECK_EQ(msi_count, 4 + 2);	/* entries 1 and 3, BCIS left set */
	wr(OUT + HDA_SD_STS, HDA_SD_STS_BCIS, 1);
	advance(20000000);
	CHECK_EQ(msi_count, 4 + 4);	/* a message per IOC */
	CHECK_EQ(pirq_rises, 0);
	/* Without bus mastering the function sends no message (PCI 3.0
	 * §6.8.1); the DMA of this model goes on regardless. */
	pci_config_write(host, 0, DEVFN, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	wr(OUT + HDA_SD_STS, HDA_SD_STS_BCIS, 1);
	advance(20000000);
	CHECK_EQ(msi_count, 4 + 4);
	/* MSI off again: INTx, whose level follows the pending BCIS. */
	pci_config_write(host, 0, DEVFN, PCI_COMMAND, 2,
			 PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	pci_config_write(host, 0, DEVFN, HDA_MSI_CAP + 2, 2, 0);
	CHECK(pirq_level[pci_intx_to_pirq(0x1b, 1)]);
	wr(OUT + HDA_SD_STS, HDA_SD_STS_BCIS, 1);
	CHECK(!pirq_level[pci_intx_to_pirq(0x1b, 1)]);
	teardown();
}

/* Record: the backend's bytes land in the guest's buffers in BDL order,
 * silence where the backend has none. */
static void test_capture(void)
{
	uint8_t got[1920];
	bool ok = true;

	setup();
	verb(4, 0x2, 0x0011);
	verb(4, 0x706, 0x30);
	verb(4, 0x3, 0x7000 | 0x4a);		/* in amp L+R, unmuted, 0 dB */
	verb(5, 0x707, 0x20);
	make_bdl(BDL_IN, 0x10000, 2, 960);
	stream_setup(IN, BDL_IN, 1920, 1, 0x0011, 3);
	cap.in_avail = 1000;
	run_stream(IN, HDA_SD_IN);
	CHECK_EQ(cap.starts[AUDIO_IN], 1);
	/* 10 ms: what the backend has, no silence yet (it may be late). */
	advance(10000000);
	CHECK_EQ(rd(IN + HDA_SD_LPIB, 4), 1000);
	CHECK_EQ(rd(IN + HDA_SD_STS, 1) & HDA_SD_STS_BCIS, 0);
	/* 60 ms: beyond HDA_REC_SLACK_NS silence fills in: 480 frames of the
	 * 2880 due, both entries, IOC. */
	advance(50000000);
	CHECK(rd(IN + HDA_SD_STS, 1) & HDA_SD_STS_BCIS);
	CHECK_EQ(rd(HDA_INTSTS, 4), HDA_INT_GIS | 1u << HDA_SD_IN);
	CHECK_EQ(rd32(POSBUF + 8 * HDA_SD_IN), 0);	/* wrapped: 1920 % 1920 */
	CHECK_EQ(guest_mem_read(&mem, BUF + 0x10000, got, sizeof(got)), 0);
	for (unsigned i = 0; i < 1920; i++)
		ok &= got[i] == (i < 1000 ? (uint8_t)i : 0);
	CHECK(ok);
	teardown();
}

/* The guest's volume: the DAC's output amp scales playback per channel
 * (1 dB steps, 0 dB at the top, a muted channel silent), the ADC's input
 * amp scales what is recorded; the guest's own buffer is left as it was. */
/* audio_apply_gain on its own: every sample width at its extremes, the
 * channels' own gains, a buffer starting mid-sample, a gain above unity. */
static void test_apply_gain(void)
{
	const uint32_t half[2] = { 0x8000, 0x10000 }, over[2] = { 0x20000, 0x20000 };
	struct audio_format u8 = { AUDIO_U8, 48000, 2 };
	struct audio_format s16 = { AUDIO_S16LE, 48000, 2 };
	struct audio_format s32 = { AUDIO_S32LE, 48000, 1 };
	uint8_t b8[4] = { 0, 255, 0, 255 };
	int16_t b16[4] = { INT16_MIN, INT16_MIN, INT16_MAX, INT16_MAX };
	int32_t b32[2] = { INT32_MIN, INT32_MAX }, w32[2];
	uint8_t raw[8];

	audio_apply_gain(&u8, b8, sizeof(b8), 0, half);
	CHECK(b8[0] == 64 && b8[1] == 255 && b8[2] == 64 && b8[3] == 255);
	audio_apply_gain(&s16, b16, sizeof(b16), 0, half);
	CHECK(b16[0] == -16384 && b16[1] == INT16_MIN);
	CHECK(b16[2] == 16383 && b16[3] == INT16_MAX);
	memcpy(w32, b32, sizeof(w32));
	audio_apply_gain(&s32, w32, sizeof(w32), 0, over);
	CHECK(w32[0] == INT32_MIN && w32[1] == INT32_MAX);
	audio_apply_gain(&s32, w32, sizeof(w32), 0, half);
	CHECK(w32[0] == INT32_MIN / 2 && w32[1] == INT32_MAX / 2);
	/* From byte 1 of the left sample: that sample's bytes are left, the
	 * right one (gain 1.0) too, the next left one halved. */
	b16[0] = b16[1] = b16[2] = 0x4000;
	memcpy(raw, b16, 6);
	audio_apply_gain(&s16, raw + 1, 5, 1, half);
	memcpy(b16, raw, 6);
	CHECK(b16[0] == 0x4000 && b16[1] == 0x4000 && b16[2] == 0x2000);
}

static void test_amp_gain(void)
{
	const uint32_t len = 960, cbl = 4 * 960;
	int16_t frame[2] = { 16000, -16000 }, out[240 * 2], in[480], raw[480];
	bool ok = true;

	setup();
	codec_route_out(1);
	make_bdl(BDL_OUT, 0, 4, len);
	for (unsigned i = 0; i < cbl / 4; i++)
		CHECK_EQ(guest_mem_write(&mem, BUF + 4ull * i, frame, 4), 0);
	verb(2, 0x3, 0xa000 | (0x4a - 6));	/* out amp, left: -6 dB */
	verb(2, 0x3, 0x9000 | 0x80 | 0x4a);	/* out amp, right: muted */
	stream_setup(OUT, BDL_OUT, cbl, 3, 0x0011, 1);
	run_stream(OUT, HDA_SD_OUT);
	advance(5000000);
	CHECK_EQ(cap.nout, 960);
	memcpy(out, cap.out, sizeof(out));
	for (unsigned i = 0; i < 240; i++)	/* 16000 x 10^(-6/20) = 8019 */
		ok &= abs(out[2 * i] - 8019) <= 1 && out[2 * i + 1] == 0;
	CHECK(ok);
	CHECK_EQ(guest_mem_read(&mem, BUF, frame, 4), 0);
	CHECK(frame[0] == 16000 && frame[1] == -16000);
	/* Back to 0 dB on both: the guest's bytes as they are. */
	verb(2, 0x3, 0xb000 | 0x4a);
	advance(5000000);
	memcpy(out, cap.out + 960, sizeof(out));
	ok = true;
	for (unsigned i = 0; i < 240; i++)
		ok &= out[2 * i] == 16000 && out[2 * i + 1] == -16000;
	CHECK(ok);
	wr(OUT + HDA_SD_CTL, rd(OUT + HDA_SD_CTL, 1) & ~HDA_SD_CTL_RUN, 1);

	/* Recording at -20 dB (x 0.1) on both channels. */
	verb(4, 0x2, 0x0011);
	verb(4, 0x706, 0x30);
	verb(4, 0x3, 0x7000 | (0x4a - 20));
	verb(5, 0x707, 0x20);
	make_bdl(BDL_IN, 0x10000, 2, 960);
	stream_setup(IN, BDL_IN, 1920, 1, 0x0011, 3);
	cap.in_next = 0;
	cap.in_avail = 1920;
	run_stream(IN, HDA_SD_IN);
	advance(5000000);
	CHECK_EQ(rd(IN + HDA_SD_LPIB, 4), 960);
	CHECK_EQ(guest_mem_read(&mem, BUF + 0x10000, in, sizeof(in)), 0);
	for (unsigned i = 0; i < 480; i++) {	/* what cap_read() gave */
		uint8_t lo = (uint8_t)(2 * i), hi = (uint8_t)(2 * i + 1);

		raw[i] = (int16_t)(uint16_t)(lo | hi << 8);
	}
	ok = true;
	for (unsigned i = 0; i < 480; i++)
		ok &= abs(10 * in[i] - raw[i]) <= 12;	/* x 0.1, within one step */
	CHECK(ok);
	teardown();
}

static void hostile_bdl_entry(uint64_t addr, uint32_t len, const char *what)
{
	uint32_t des;

	(void)what;
	setup();
	codec_route_out(1);
	make_bdl(BDL_OUT, 0, 2, 960);
	wr32(BDL_OUT + 16, (uint32_t)addr);
	wr32(BDL_OUT + 20, (uint32_t)(addr >> 32));
	wr32(BDL_OUT + 24, len);
	stream_setup(OUT, BDL_OUT, 1920, 1, 0x0011, 1);
	wr(OUT + HDA_SD_CTL, rd(OUT + HDA_SD_CTL, 4) | HDA_SD_CTL_DEIE, 4);
	run_stream(OUT, HDA_SD_OUT);
	advance(20000000);
	des = rd(OUT + HDA_SD_STS, 1) & HDA_SD_STS_DESE;
	CHECK(des);
	CHECK_EQ(cap.nout, 960);		/* entry 0 only */
	CHECK(rd(HDA_INTSTS, 4) & (1u << HDA_SD_OUT));
	/* Stopped: time passes, nothing moves. */
	advance(20000000);
	CHECK_EQ(cap.nout, 960);
	teardown();
}

static void test_hostile(void)
{
	struct hda_stats st;

	/* Buffers outside RAM, across its end, wrapping the address space. */
	hostile_bdl_entry(RAM_SIZE - 16, 960, "across the end of RAM");
	hostile_bdl_entry(0xfffffffffffffff0ull, 960, "wrapping");
	hostile_bdl_entry(0xc0000000ull, 960, "in the PCI hole");

	/* A BDL outside RAM. */
	setup();
	codec_route_out(1);
	stream_setup(OUT, 0x7fffff80ull, 1920, 1, 0x0011, 1);
	run_stream(OUT, HDA_SD_OUT);
	advance(10000000);
	CHECK(rd(OUT + HDA_SD_STS, 1) & HDA_SD_STS_DESE);
	CHECK_EQ(cap.nout, 0);
	teardown();

	/* CBL, LVI, FMT and the BDL address are fixed while RUN is set. */
	setup();
	codec_route_out(1);
	make_bdl(BDL_OUT, 0, 2, 960);
	stream_setup(OUT, BDL_OUT, 1920, 1, 0x0011, 1);
	run_stream(OUT, HDA_SD_OUT);
	wr(OUT + HDA_SD_CBL, 0, 4);
	wr(OUT + HDA_SD_LVI, 0, 2);
	wr(OUT + HDA_SD_FMT, 0x0071, 2);
	wr(OUT + HDA_SD_BDPL, 0x7fffff80u, 4);
	CHECK_EQ(rd(OUT + HDA_SD_CBL, 4), 1920);
	CHECK_EQ(rd(OUT + HDA_SD_LVI, 2), 1);
	CHECK_EQ(rd(OUT + HDA_SD_FMT, 2), 0x0011);
	CHECK_EQ(rd(OUT + HDA_SD_BDPL, 4), (uint32_t)BDL_OUT);
	advance(20000000);
	CHECK_EQ(cap.nout, 20 * 192);
	teardown();

	/* 256 zero-length entries: each tick walks a bounded number and
	 * moves nothing; time still passes. */
	setup();
	codec_route_out(1);
	for (unsigned i = 0; i < 256; i++) {
		wr32(BDL_OUT + 16 * i, (uint32_t)BUF);
		wr32(BDL_OUT + 16 * i + 8, 0);
		wr32(BDL_OUT + 16 * i + 12, 1);
	}
	stream_setup(OUT, BDL_OUT, 0xffffffff, 0x1ff, 0x0011, 1);
	CHECK_EQ(rd(OUT + HDA_SD_LVI, 2), 0xff);	/* 8 bits */
	run_stream(OUT, HDA_SD_OUT);
	advance(50000000);
	CHECK_EQ(cap.nout, 0);
	CHECK_EQ(rd(OUT + HDA_SD_STS, 1) & HDA_SD_STS_BCIS, 0);
	/* One real entry among them: found and played, huge CBL fine. */
	wr32(BDL_OUT + 16 * 200 + 8, 192);
	advance(10000000);
	CHECK(cap.nout > 0 && cap.nout % 192 == 0);
	teardown();

	/* CBL 0 or LVI 0: refused at RUN with DESE. */
	setup();
	make_bdl(BDL_OUT, 0, 2, 960);
	stream_setup(OUT, BDL_OUT, 0, 1, 0x0011, 1);
	run_stream(OUT, HDA_SD_OUT);
	CHECK(rd(OUT + HDA_SD_STS, 1) & HDA_SD_STS_DESE);
	advance(10000000);
	CHECK_EQ(cap.nout, 0);
	/* A reserved format (BITS 7): refused too. */
	stream_setup(OUT, BDL_OUT, 1920, 1, 0x0071, 1);
	run_stream(OUT, HDA_SD_OUT);
	CHECK(rd(OUT + HDA_SD_STS, 1) & HDA_SD_STS_DESE);
	hda_get_stats(hda, &st);
	CHECK_EQ(st.bdl_errors, 2);
	teardown();

	/* The CORB outside RAM: CMEI, the CORB stops; RIRB too. */
	setup();
	wr(HDA_CORBCTL, 0, 1);
	wr(HDA_CORBLBASE, 0xffffff80u, 4);
	wr(HDA_CORBUBASE, 0xffffffffu, 4);
	wr(HDA_CORBCTL, HDA_CORBCTL_RUN | HDA_CORBCTL_CMEIE, 1);
	wr(HDA_CORBWP, 200, 2);
	CHECK(rd(HDA_CORBSTS, 1) & HDA_CORBSTS_CMEI);
	CHECK_EQ(rd(HDA_CORBCTL, 1) & HDA_CORBCTL_RUN, 0);
	CHECK(rd(HDA_INTSTS, 4) & HDA_INT_CIS);
	wr(HDA_CORBSTS, HDA_CORBSTS_CMEI, 1);
	/* A full lap of the CORB in one write: 255 commands, no more. */
	wr(HDA_CORBLBASE, (uint32_t)CORB, 4);
	wr(HDA_CORBUBASE, 0, 4);
	wr(HDA_RIRBLBASE, 0x7fffff00u, 4);	/* RIRB outside RAM */
	wr(HDA_CORBRP, HDA_CORBRP_RST, 2);
	wr(HDA_CORBRP, 0, 2);
	wr(HDA_CORBCTL, HDA_CORBCTL_RUN, 1);
	for (unsigned i = 0; i < 256; i++)
		wr32(CORB + 4 * i, 0x000f0000);
	wr(HDA_CORBWP, 255, 2);
	CHECK(rd(HDA_CORBSTS, 1) & HDA_CORBSTS_CMEI);
	CHECK_EQ(rd(HDA_CORBRP, 2), 1);		/* stopped at the first */
	/* Accesses off the registers and of odd sizes. */
	CHECK_EQ(rd(0x2084, 4), 0);
	wr(0x3ffc, 0xffffffff, 4);
	wr(HDA_GCAP, 0, 2);
	CHECK_EQ(rd(HDA_GCAP, 2), 0x1101);
	CHECK_EQ(rd(HDA_SD(1) + 0x1e, 2), 0);
	teardown();
}

static void test_save_load(void)
{
	GVariant *st, *st2, *bad;
	char err[256] = "";
	uint64_t before;

	setup();
	codec_route_out(1);
	make_bdl(BDL_OUT, 0, 4, 960);
	stream_setup(OUT, BDL_OUT, 4 * 960, 3, 0x0011, 1);
	run_stream(OUT, HDA_SD_OUT);
	advance(5000000);
	st = g_variant_ref_sink(hda_device_ops.save(hda));
	CHECK(g_variant_is_of_type(st, G_VARIANT_TYPE(HDA_STATE_TYPE)));
	before = cap.nout;
	/* A new controller takes the state and carries on from the same BDL
	 * position and codec settings. */
	hda_free(hda);
	{
		struct hda_config cfg = {
			.pci = host, .devfn = DEVFN, .mem = &mem, .timers = q,
			.backend = &cap.be,
		};

		hda = hda_new(&cfg, err, sizeof(err));
		CHECK(hda != NULL);
	}
	CHECK_EQ(hda_device_ops.load(hda, 1, st, err, sizeof(err)), 0);
	if (err[0])
		fprintf(stderr, "  %s\n", err);
	st2 = g_variant_ref_sink(hda_device_ops.save(hda));
	CHECK(g_variant_equal(st, st2));
	g_variant_unref(st2);
	CHECK_EQ(hda_mmio_read(hda, OUT + HDA_SD_LPIB, 4), 960);
	CHECK_EQ(hda_mmio_read(hda, HDA_CORBWP, 2), corb_wp);
	CHECK_EQ(cap.starts[AUDIO_OUT], 2);	/* the stream runs again */
	advance(5000000);
	CHECK_EQ(cap.nout - before, 960);
	{
		uint8_t want[960];

		CHECK_EQ(guest_mem_read(&mem, BUF + 960, want, sizeof(want)), 0);
		CHECK(memcmp(cap.out + before, want, sizeof(want)) == 0);
	}

	/* The guest lowers LVI under the running stream (now on entry 2):
	 * a save before the DMA's next tick still loads, at entry 0. */
	advance(5000000);
	hda_mmio_write(hda, OUT + HDA_SD_LVI, 1, 2);
	st2 = g_variant_ref_sink(hda_device_ops.save(hda));
	CHECK_EQ(hda_device_ops.load(hda, 1, st2, err, sizeof(err)), 0);
	g_variant_unref(st2);

	/* Refused states: each leaves the controller as it was. */
	bad = state_with(st, g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE,
						       "x", 1, 1), 1, 0);
	state_refused(&hda_device_ops, hda, 1, bad, "hda: ");
	bad = state_with(st, g_variant_new("(uub)", 300u, 0u, TRUE), 2, 2, 1);
	state_refused(&hda_device_ops, hda, 1, bad, "hda: stream 1");
	bad = state_with(st, g_variant_new_uint16(1000), 1, 1);
	state_refused(&hda_device_ops, hda, 1, bad, "hda: CORB/RIRB");
	{
		uint8_t r[HDA_REGS_SIZE];
		gsize n;
		GVariant *rv = g_variant_get_child_value(st, 0);

		memcpy(r, g_variant_get_fixed_array(rv, &n, 1), sizeof(r));
		g_variant_unref(rv);
		r[HDA_GCAP] = 0x33;
		bad = state_with(st, g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE,
							       r, sizeof(r), 1), 1, 0);
		state_refused(&hda_device_ops, hda, 1, bad, "hda: register byte 0");
	}
	bad = state_with(st, g_variant_new_byte(7), 4, 4, 0, 2, 3);
	state_refused(&hda_device_ops, hda, 1, bad, "hda codec: node 2");
	state_refused(&hda_device_ops, hda, 2, g_variant_ref(st), "hda: state version 2");
	g_variant_unref(st);
	teardown();
}

int main(void)
{
	log_set_level(LOG_ERROR);	/* the hostile cases log warnings */
	if (guest_mem_init(&mem, RAM_SIZE) != 0)
		SKIP("cannot allocate guest RAM");
	fake_clock_init(&fclk);
	fclk.mono_ns = 1000000000ull;
	q = vtimer_queue_new_manual(&fclk.clk);
	pio = bus_new("pio");
	mmio = bus_new("mmio");
	host = pci_host_new();
	CHECK_EQ(pci_host_attach(host, pio, mmio), 0);
	pci_host_set_ops(host, &host_ops, NULL);

	RUN_TEST(test_identity);
	RUN_TEST(test_codec_probe);
	RUN_TEST(test_playback);
	RUN_TEST(test_msi);
	RUN_TEST(test_capture);
	RUN_TEST(test_apply_gain);
	RUN_TEST(test_amp_gain);
	RUN_TEST(test_hostile);
	RUN_TEST(test_save_load);

	pci_host_free(host);
	bus_free(mmio);
	bus_free(pio);
	vtimer_queue_free(q);
	guest_mem_free(&mem);
	return check_finish();
}
