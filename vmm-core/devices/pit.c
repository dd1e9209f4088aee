/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/devices/pit.c - the 8254 PIT (Intel 8254 datasheet, "Modes" and
 * "Read-Back Command") and system control port B (0x61).
 *
 * Nothing ticks: a counting counter remembers when it started, and its count
 * and OUT are computed from the clock on every access.  Counter 0's rising
 * OUT edges become IRQ 0 pulses from a vtimer armed for the next edge,
 * computed from the start time so periodic modes do not drift.  Edges come
 * at least PIT_MIN_IRQ_GAP_NS apart (more are coalesced, as are edges the
 * host wakes up too late for); counts stay exact.
 */
#include "pit.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <glib.h>

#include "../bus.h"
#include "../log.h"
#include "../timer.h"

/* Fastest IRQ 0 the host delivers: 100 kHz. */
#define PIT_MIN_IRQ_GAP_NS	10000ull
/* Port 0x61 bit 4 toggles once per DRAM refresh request, every 15.085 us. */
#define REFRESH_PERIOD_NS	15085ull

#define NS_PER_S		1000000000ull
#define NO_EDGE			UINT64_MAX

/* Port 0x61 */
#define PORTB_GATE2		0x01
#define PORTB_WRITABLE		0x0f
#define PORTB_REFRESH		0x10
#define PORTB_OUT2		0x20

enum rw_mode { RW_LATCH, RW_LSB, RW_MSB, RW_WORD };

struct pit_channel {
	/* Control word */
	uint8_t mode;		/* 0-5 */
	uint8_t rw;		/* enum rw_mode, never RW_LATCH here */
	bool bcd;
	/* Count register: the last count written (0 = 65536). */
	uint16_t reload;
	bool count_written;	/* since the control word */
	bool write_msb_next;	/* RW_WORD: LSB written, MSB due */
	uint8_t write_lsb;
	bool read_msb_next;	/* RW_WORD live reads: MSB due */
	/* Output latch (counter latch / read-back) */
	bool latched;
	bool latch_msb_next;
	uint16_t latch;
	bool status_latched;
	uint8_t status;
	bool null_count;	/* count written but not yet in the counter */
	bool gate;
	/*
	 * The counting element.  Ticks since the counter was loaded:
	 * elapsed = base + (paused ? 0 : ticks(now - start_ns)); the count in
	 * use, @n, has been counting since tick @origin.
	 */
	bool counting;
	bool paused;		/* modes 0 and 4 with GATE low */
	uint64_t start_ns;
	uint64_t base;
	uint64_t origin;
	uint32_t n;		/* 1-65536 */
	uint16_t frozen;	/* the count while not counting */
	/* Modes 2 and 3: a count written while counting waits for the end of
	 * the current period, tick @pending_at. */
	bool pending;
	uint32_t pending_n;
	uint64_t pending_at;
};

struct pit {
	struct pit_channel ch[3];
	uint8_t portb;		/* port 0x61 bits 0-3 */
	struct vtimer_queue *q;
	struct vtimer timer;	/* counter 0's next OUT rising edge */
	struct irq_line irq0;
	bool irq_sent;
	uint64_t last_irq_ns;
};

/* ---- time ------------------------------------------------------------- */

static uint64_t ns_to_ticks(uint64_t ns)
{
	return (uint64_t)((unsigned __int128)ns * PIT_FREQ_HZ / NS_PER_S);
}

/* The first ns by which @ticks ticks have passed. */
static uint64_t ticks_to_ns(uint64_t ticks)
{
	return (uint64_t)(((unsigned __int128)ticks * NS_PER_S + PIT_FREQ_HZ - 1) /
			  PIT_FREQ_HZ);
}

static uint64_t pit_now(const struct pit *pit)
{
	return vclock_now(vtimer_queue_clock(pit->q));
}

static uint64_t elapsed(const struct pit_channel *c, uint64_t now)
{
	if (c->paused || now < c->start_ns)
		return c->base;
	return c->base + ns_to_ticks(now - c->start_ns);
}

/* Apply a pending mode 2/3 count whose period boundary has passed. */
static void channel_sync(struct pit_channel *c, uint64_t now)
{
	if (c->counting && c->pending && elapsed(c, now) >= c->pending_at) {
		c->origin = c->pending_at;
		c->n = c->pending_n;
		c->pending = false;
		c->null_count = false;
	}
}

/* ---- the counter ------------------------------------------------------ */

static uint32_t count_of(uint16_t reload)
{
	return reload ? reload : 65536;
}

/* CE after @t ticks of count @n (8254 datasheet, mode descriptions). */
static uint16_t mode_count(uint8_t mode, uint32_t n, uint64_t t)
{
	uint32_t p, high;
	bool low;

	switch (mode) {
	case 2:
		return (uint16_t)(n - t % n);
	case 3:
		/* Down by two; OUT high for ceil(n/2) ticks, low for the rest.
		 * An odd count goes n, n-1, n-3 ... 2 high, n, n-3 ... 2 low. */
		p = (uint32_t)(t % n);
		high = (n + 1) / 2;
		low = p >= high;
		if (low)
			p -= high;
		if (!p)
			return (uint16_t)n;
		if (!(n & 1))
			return (uint16_t)(n - 2 * p);
		return (uint16_t)(low ? n - 1 - 2 * p : n + 1 - 2 * p);
	default:	/* 0, 1, 4, 5: down through zero, wrapping */
		return (uint16_t)(n - t);
	}
}

static bool mode_out(uint8_t mode, uint32_t n, uint64_t t)
{
	switch (mode) {
	case 0:
	case 1:
		return t >= n;
	case 2:
		return n == 1 || t % n != n - 1;
	case 3:
		return t % n < (n + 1) / 2;
	default:	/* 4, 5: low for the one tick at terminal count */
		return t != n;
	}
}

static uint16_t channel_count(const struct pit_channel *c, uint64_t now)
{
	if (!c->counting)
		return c->frozen;
	return mode_count(c->mode, c->n, elapsed(c, now) - c->origin);
}

static bool channel_out(const struct pit_channel *c, uint64_t now)
{
	if (!c->counting)	/* mode 0 waits low, the others high */
		return c->mode != 0;
	return mode_out(c->mode, c->n, elapsed(c, now) - c->origin);
}

/* Load the count register into the counter and count from @now. */
static void channel_start(struct pit_channel *c, uint64_t now)
{
	c->n = count_of(c->reload);
	c->pending = false;
	c->counting = true;
	c->paused = !c->gate;		/* only modes 0 and 4 get here gated */
	c->start_ns = now;
	c->base = 0;
	c->origin = 0;
	c->null_count = false;
}

static void channel_stop(struct pit_channel *c, uint64_t now)
{
	c->frozen = channel_count(c, now);
	c->counting = false;
	c->paused = false;
	c->pending = false;
}

/* A complete count was written. */
static void channel_loaded(struct pit_channel *c, uint64_t now)
{
	c->count_written = true;
	c->null_count = true;
	switch (c->mode) {
	case 0:
	case 4:
		channel_start(c, now);
		break;
	case 2:
	case 3:
		if (c->counting) {
			uint64_t t = elapsed(c, now) - c->origin;

			c->pending = true;
			c->pending_n = count_of(c->reload);
			c->pending_at = c->origin + (t / c->n + 1) * c->n;
		} else if (c->gate) {
			channel_start(c, now);
		}
		break;
	default:	/* 1, 5: the next GATE rising edge loads it */
		break;
	}
}

static void channel_set_gate(struct pit_channel *c, bool gate, uint64_t now)
{
	if (gate == c->gate)
		return;
	c->gate = gate;
	switch (c->mode) {
	case 0:
	case 4:		/* GATE low suspends counting */
		if (!c->counting)
			break;
		if (!gate) {
			c->base = elapsed(c, now);
			c->paused = true;
		} else {
			c->start_ns = now;
			c->paused = false;
		}
		break;
	case 2:
	case 3:		/* low stops (OUT high), rising edge reloads */
		if (!gate && c->counting)
			channel_stop(c, now);
		else if (gate && c->count_written)
			channel_start(c, now);
		break;
	default:	/* 1, 5: rising edge (re)triggers */
		if (gate && c->count_written)
			channel_start(c, now);
		break;
	}
}

static void channel_control(struct pit_channel *c, uint8_t v, uint64_t now,
			    unsigned idx)
{
	channel_stop(c, now);
	c->rw = (v >> 4) & 3;
	c->mode = (v >> 1) & 7;
	if (c->mode > 5)
		c->mode -= 4;	/* 6 and 7 are 2 and 3 */
	c->bcd = v & 1;
	if (c->bcd)
		vlog_ratelimited(LOG_INFO, "pit: counter %u BCD counting treated as binary",
				 idx);
	c->count_written = false;
	c->write_msb_next = false;
	c->read_msb_next = false;
	c->latched = false;
	c->status_latched = false;
	c->null_count = true;
}

static void channel_latch_count(struct pit_channel *c, uint64_t now)
{
	if (c->latched)
		return;		/* a second latch before the read is ignored */
	c->latch = channel_count(c, now);
	c->latched = true;
	c->latch_msb_next = c->rw == RW_MSB;
}

static void channel_latch_status(struct pit_channel *c, uint64_t now)
{
	if (c->status_latched)
		return;
	c->status = (uint8_t)((channel_out(c, now) ? 0x80 : 0) |
			      (c->null_count ? 0x40 : 0) | c->rw << 4 |
			      c->mode << 1 | (c->bcd ? 1 : 0));
	c->status_latched = true;
}

static uint8_t channel_read(struct pit_channel *c, uint64_t now)
{
	uint16_t v;
	bool msb;

	if (c->status_latched) {
		c->status_latched = false;
		return c->status;
	}
	if (c->latched) {
		msb = c->latch_msb_next;
		if (c->rw == RW_WORD && !msb)
			c->latch_msb_next = true;
		else
			c->latched = false;
		return (uint8_t)(msb ? c->latch >> 8 : c->latch);
	}
	v = channel_count(c, now);
	msb = c->rw == RW_MSB || (c->rw == RW_WORD && c->read_msb_next);
	if (c->rw == RW_WORD)
		c->read_msb_next = !c->read_msb_next;
	return (uint8_t)(msb ? v >> 8 : v);
}

static void channel_write(struct pit_channel *c, uint8_t v, uint64_t now)
{
	switch (c->rw) {
	case RW_LSB:
		c->reload = v;
		break;
	case RW_MSB:
		c->reload = (uint16_t)(v << 8);
		break;
	default:
		if (!c->write_msb_next) {
			c->write_lsb = v;
			c->write_msb_next = true;
			/* Mode 0: the first byte stops the count, OUT low. */
			if (c->mode == 0 && c->counting)
				channel_stop(c, now);
			return;
		}
		c->write_msb_next = false;
		c->reload = (uint16_t)(c->write_lsb | v << 8);
		break;
	}
	channel_loaded(c, now);
}

/* ---- IRQ 0 ------------------------------------------------------------ */

/* The first rising OUT edge of @c after tick @after, as a tick; NO_EDGE. */
static uint64_t next_edge(const struct pit_channel *c, uint64_t after)
{
	uint64_t o = c->origin, n = c->n, m;

	if (!c->counting || c->paused)
		return NO_EDGE;
	switch (c->mode) {
	case 0:
	case 1:
		return after < o + n ? o + n : NO_EDGE;
	case 4:
	case 5:		/* OUT returns high one tick after terminal count */
		return after < o + n + 1 ? o + n + 1 : NO_EDGE;
	default:
		if (c->pending && after >= c->pending_at) {
			o = c->pending_at;
			n = c->pending_n;
		}
		m = o + ((after - o) / n + 1) * n;
		return m;
	}
}

static uint64_t edge_ns(const struct pit_channel *c, uint64_t tick)
{
	return c->start_ns + ticks_to_ns(tick - c->base);
}

/* Arm the timer for counter 0's next rising edge after @now, no sooner
 * than PIT_MIN_IRQ_GAP_NS after the last IRQ: a periodic counter skips to
 * a later edge, a one-shot is late. */
static void pit_arm(struct pit *pit, uint64_t now)
{
	struct pit_channel *c = &pit->ch[0];
	uint64_t edge = next_edge(c, elapsed(c, now)), deadline, earliest;

	if (edge == NO_EDGE) {
		vtimer_del(&pit->timer);
		return;
	}
	deadline = edge_ns(c, edge);
	earliest = pit->last_irq_ns + PIT_MIN_IRQ_GAP_NS;
	if (pit->irq_sent && deadline < earliest) {
		if (c->mode == 2 || c->mode == 3)
			deadline = edge_ns(c, next_edge(c, elapsed(c, earliest - 1)));
		else
			deadline = earliest;
	}
	vtimer_mod(&pit->timer, deadline);
}

static void pit_timer_fired(void *opaque, uint64_t now)
{
	struct pit *pit = opaque;

	channel_sync(&pit->ch[0], now);
	irq_line_pulse(&pit->irq0);
	pit->irq_sent = true;
	pit->last_irq_ns = now;
	pit_arm(pit, now);
}

static void pit_note_period(const struct pit_channel *c)
{
	uint32_t n = count_of(c->reload);

	if ((c->mode == 2 || c->mode == 3) && ticks_to_ns(n) < PIT_MIN_IRQ_GAP_NS)
		vlog_ratelimited(LOG_INFO,
				 "pit: IRQ 0 period of %u ticks limited to %llu ns",
				 n, (unsigned long long)PIT_MIN_IRQ_GAP_NS);
}

/* ---- ports ------------------------------------------------------------ */

static void pit_readback(struct pit *pit, uint8_t v, uint64_t now)
{
	for (unsigned i = 0; i < 3; i++) {
		if (!(v & (2u << i)))
			continue;
		if (!(v & 0x20))
			channel_latch_count(&pit->ch[i], now);
		if (!(v & 0x10))
			channel_latch_status(&pit->ch[i], now);
	}
}

static void pit_write_byte(struct pit *pit, unsigned port, uint8_t v)
{
	uint64_t now = pit_now(pit);
	unsigned idx = port < 3 ? port : v >> 6;

	for (unsigned i = 0; i < 3; i++)
		channel_sync(&pit->ch[i], now);
	if (port == 3 && idx == 3) {
		pit_readback(pit, v, now);
		return;
	}
	if (port < 3)
		channel_write(&pit->ch[idx], v, now);
	else if (((v >> 4) & 3) == RW_LATCH)
		channel_latch_count(&pit->ch[idx], now);
	else
		channel_control(&pit->ch[idx], v, now, idx);
	if (idx == 0) {
		if (port == 0)
			pit_note_period(&pit->ch[0]);
		pit_arm(pit, now);
	}
}

static uint64_t pit_read(void *opaque, uint64_t off, unsigned size)
{
	struct pit *pit = opaque;
	uint64_t now = pit_now(pit), v = 0;

	for (unsigned i = 0; i < size && off + i < 4; i++) {
		unsigned port = (unsigned)(off + i);

		if (port == 3)
			continue;	/* the control word is write-only */
		channel_sync(&pit->ch[port], now);
		v |= (uint64_t)channel_read(&pit->ch[port], now) << (8 * i);
	}
	return v;
}

static void pit_write(void *opaque, uint64_t off, uint64_t value, unsigned size)
{
	for (unsigned i = 0; i < size && off + i < 4; i++)
		pit_write_byte(opaque, (unsigned)(off + i), (uint8_t)(value >> (8 * i)));
}

static uint64_t portb_read(void *opaque, uint64_t off, unsigned size)
{
	struct pit *pit = opaque;
	uint64_t now = pit_now(pit);
	uint8_t v = pit->portb;

	channel_sync(&pit->ch[2], now);
	if ((now / REFRESH_PERIOD_NS) & 1)
		v |= PORTB_REFRESH;
	if (channel_out(&pit->ch[2], now))
		v |= PORTB_OUT2;
	return v;
}

static void portb_write(void *opaque, uint64_t off, uint64_t value,
			unsigned size)
{
	struct pit *pit = opaque;
	uint64_t now = pit_now(pit);

	pit->portb = (uint8_t)value & PORTB_WRITABLE;
	channel_sync(&pit->ch[2], now);
	channel_set_gate(&pit->ch[2], value & PORTB_GATE2, now);
}

static const struct bus_ops pit_ops = {
	.name = "pit", .read = pit_read, .write = pit_write,
};
static const struct bus_ops portb_ops = {
	.name = "port61", .read = portb_read, .write = portb_write,
};

/* ---- public ----------------------------------------------------------- */

struct pit *pit_new(struct vtimer_queue *q, struct irq_line irq0)
{
	struct pit *pit = calloc(1, sizeof(*pit));

	if (!pit)
		return NULL;
	pit->q = q;
	pit->irq0 = irq0;
	vtimer_init(&pit->timer, q, pit_timer_fired, pit);
	pit_reset(pit);
	return pit;
}

void pit_free(struct pit *pit)
{
	if (!pit)
		return;
	vtimer_del(&pit->timer);
	free(pit);
}

int pit_attach(struct pit *pit, struct bus *pio)
{
	int r = bus_register(pio, 0x40, 4, &pit_ops, pit);

	return r ? r : bus_register(pio, 0x61, 1, &portb_ops, pit);
}

/* Every counter as after a control word for mode 3, LSB then MSB, with no
 * count: idle, OUT high, no IRQ.  Counters 0 and 1 have GATE tied high;
 * counter 2's follows port 0x61 bit 0, which resets to 0. */
void pit_reset(struct pit *pit)
{
	uint64_t now = pit_now(pit);

	vtimer_del(&pit->timer);
	for (unsigned i = 0; i < 3; i++) {
		struct pit_channel *c = &pit->ch[i];

		*c = (struct pit_channel){ 0 };
		channel_control(c, 0x36, now, i);
		c->gate = i != 2;
	}
	pit->portb = 0;
	pit->irq_sent = false;
	pit->last_irq_ns = 0;
}

/* ---- the machine's device table ---------------------------------------- */

static void pit_dev_reset(void *dev)
{
	pit_reset(dev);
}

static void pit_dev_free(void *dev)
{
	pit_free(dev);
}

/* ---- saved state (PIT_STATE_TYPE in pit.h) ----------------------------- */

#define CHANNEL_TYPE	"(yybqbbybbbqbybbbbtttuqbut)"

static GVariant *channel_save(const struct pit_channel *c)
{
	return g_variant_new(CHANNEL_TYPE, c->mode, c->rw, c->bcd, c->reload,
			     c->count_written, c->write_msb_next, c->write_lsb,
			     c->read_msb_next, c->latched, c->latch_msb_next,
			     c->latch, c->status_latched, c->status,
			     c->null_count, c->gate, c->counting, c->paused,
			     (guint64)c->start_ns, (guint64)c->base,
			     (guint64)c->origin, c->n, c->frozen, c->pending,
			     c->pending_n, (guint64)c->pending_at);
}

static GVariant *pit_dev_save(void *dev)
{
	struct pit *pit = dev;

	return g_variant_new("(@" CHANNEL_TYPE "@" CHANNEL_TYPE "@" CHANNEL_TYPE
			     "ybtbt)",
			     channel_save(&pit->ch[0]), channel_save(&pit->ch[1]),
			     channel_save(&pit->ch[2]), pit->portb, pit->irq_sent,
			     (guint64)pit->last_irq_ns, pit->timer.armed,
			     (guint64)pit->timer.deadline_ns);
}

/* Read counter @idx from @v into @c and check it as the counter's own code
 * could have left it at clock time @now. */
static int channel_load(GVariant *v, struct pit_channel *c, unsigned idx,
			uint64_t now, char *err, size_t errlen)
{
	gboolean b[12];
	guint64 start_ns, base, origin, pending_at;

	g_variant_get(v, CHANNEL_TYPE, &c->mode, &c->rw, &b[0], &c->reload,
		      &b[1], &b[2], &c->write_lsb, &b[3], &b[4], &b[5],
		      &c->latch, &b[6], &c->status, &b[7], &b[8], &b[9],
		      &b[10], &start_ns, &base, &origin, &c->n, &c->frozen,
		      &b[11], &c->pending_n, &pending_at);
	c->bcd = b[0];
	c->count_written = b[1];
	c->write_msb_next = b[2];
	c->read_msb_next = b[3];
	c->latched = b[4];
	c->latch_msb_next = b[5];
	c->status_latched = b[6];
	c->null_count = b[7];
	c->gate = b[8];
	c->counting = b[9];
	c->paused = b[10];
	c->pending = b[11];
	c->start_ns = start_ns;
	c->base = base;
	c->origin = origin;
	c->pending_at = pending_at;
	if (c->mode > 5 || c->rw == RW_LATCH || c->rw > RW_WORD)
		return device_load_fail(err, errlen, "pit: counter %u mode %u or access mode %u out of range",
				 idx, c->mode, c->rw);
	if ((c->write_msb_next || c->read_msb_next) && c->rw != RW_WORD)
		return device_load_fail(err, errlen, "pit: counter %u LSB/MSB flip-flop set without LSB/MSB access",
				 idx);
	if (c->latched && c->latch_msb_next && c->rw == RW_LSB)
		return device_load_fail(err, errlen, "pit: counter %u latch read position inconsistent with LSB access",
				 idx);
	/* A counter never loaded has no count yet (0). */
	if (c->n > 65536 || (c->counting && c->n < 1) ||
	    (c->pending && (c->pending_n < 1 || c->pending_n > 65536)))
		return device_load_fail(err, errlen, "pit: counter %u count %u/%u out of range (1-65536)",
				 idx, c->n, c->pending_n);
	if (idx != 2 && !c->gate)
		return device_load_fail(err, errlen, "pit: counter %u has its gate low (tied high)", idx);
	if (!c->counting && (c->paused || c->pending))
		return device_load_fail(err, errlen, "pit: counter %u paused or pending while not counting",
				 idx);
	if (c->paused && c->mode != 0 && c->mode != 4)
		return device_load_fail(err, errlen, "pit: counter %u paused in mode %u", idx, c->mode);
	if (c->pending && ((c->mode != 2 && c->mode != 3) ||
			   c->pending_at < c->origin))
		return device_load_fail(err, errlen, "pit: counter %u pending count inconsistent with mode %u",
				 idx, c->mode);
	if (c->counting && c->origin > elapsed(c, now))
		return device_load_fail(err, errlen, "pit: counter %u started after the saved clock time",
				 idx);
	return 0;
}

/* Everything is checked on copies first; then the timer is re-armed at
 * its saved deadline (in the machine clock's time, which the restore has
 * set to the saved value).  IRQ 0 is a pulse per edge and rests low:
 * there is no level to re-drive. */
static int pit_dev_load(void *dev, uint32_t version, GVariant *state,
			char *err, size_t errlen)
{
	struct pit *pit = dev;
	struct pit_channel ch[3];
	GVariant *cv[3];
	guint8 portb;
	gboolean irq_sent, armed;
	guint64 last_irq_ns, deadline;
	uint64_t now = pit_now(pit);
	int r = 0;

	r = device_state_check("pit", version, 1, state, PIT_STATE_TYPE, err, errlen);
	if (r < 0)
		return r;
	g_variant_get(state, "(@" CHANNEL_TYPE "@" CHANNEL_TYPE "@" CHANNEL_TYPE
		      "ybtbt)", &cv[0], &cv[1], &cv[2], &portb, &irq_sent,
		      &last_irq_ns, &armed, &deadline);
	for (unsigned i = 0; i < 3; i++) {
		ch[i] = (struct pit_channel){ 0 };
		if (!r)
			r = channel_load(cv[i], &ch[i], i, now, err, errlen);
		g_variant_unref(cv[i]);
	}
	if (r < 0)
		return r;
	if (portb & ~PORTB_WRITABLE)
		return device_load_fail(err, errlen, "pit: port 0x61 value 0x%02x has read-only bits",
				 portb);
	if (ch[2].gate != !!(portb & PORTB_GATE2))
		return device_load_fail(err, errlen, "pit: counter 2 gate differs from port 0x61 bit 0");
	if (armed && (!ch[0].counting || ch[0].paused))
		return device_load_fail(err, errlen, "pit: IRQ 0 timer armed while counter 0 is not counting");
	for (unsigned i = 0; i < 3; i++)
		pit->ch[i] = ch[i];
	pit->portb = portb;
	pit->irq_sent = irq_sent;
	pit->last_irq_ns = last_irq_ns;
	if (armed)
		vtimer_mod(&pit->timer, deadline);
	else
		vtimer_del(&pit->timer);
	return 0;
}

const struct device_ops pit_device_ops = {
	.name = "pit",
	.reset = pit_dev_reset,
	.save = pit_dev_save,
	.load = pit_dev_load,
	.state_version = 1,
	.free = pit_dev_free,
};
