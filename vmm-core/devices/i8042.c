/* SPDX-License-Identifier: MIT */
/*
 * The 8042 keyboard controller with a PS/2 keyboard and mouse behind it.
 *
 * Controller (port 0x64 commands): RAM read/write (0x20-0x3f, 0x60-0x7f;
 * byte 0 is the configuration byte), 0xa7/0xa8 and 0xad/0xae port
 * disable/enable, 0xa9/0xab interface tests (0x00 = no error), 0xaa
 * self-test (0x55), 0xc0 input port, 0xd0/0xd1 output port (bit 0 low =
 * reset, bit 1 = A20), 0xd2/0xd3 write the keyboard/aux output buffer
 * (Linux's AUX loop and IRQ tests), 0xd4 write to the aux device, 0xdd/0xdf
 * A20 off/on, 0xf0-0xff pulse output port bits (bit 0: reset).
 *
 * The output buffer holds one byte; the status register describes it.  When
 * it is empty the controller fills it from, in order: its own replies, then
 * the keyboard and the mouse taking turns, each only while its port is
 * enabled (configuration bits 4/5: a disabled device holds its bytes, as
 * a real one does while its clock line is held low).  With configuration
 * bit 6 the keyboard's bytes go through the set-2 to set-1 translation: an
 * 0xf0 break prefix is swallowed and the next byte gets bit 7.
 * IRQ 1 (keyboard byte, config bit 0) or IRQ 12 (aux byte, config bit 1)
 * is high while such a byte is in the output buffer; reading it lowers the
 * line, and the next byte raises it again (a fresh edge).
 *
 * Each device keeps its replies to commands apart from its input data and
 * sends replies first, so a reply is never lost behind (or dropped for)
 * scancodes or motion packets.  Sending a byte to a device enables its port,
 * as the controller must release the clock line to clock it out.
 *
 * Keyboard: IBM PS/2 keyboard technical reference commands (0xed LEDs,
 * 0xee echo, 0xf0 scancode set, 0xf2 ID ab 83, 0xf3 typematic, 0xf4/0xf5/
 * 0xf6 enable/disable/defaults, 0xf7-0xfd set-3 key types, 0xfe resend,
 * 0xff reset); scancodes from keymap.h; a 16-key buffer with the overrun
 * code (0x00 in sets 2/3, 0xff in set 1) when it fills.
 *
 * Mouse: PS/2 mouse commands 0xe6-0xff and the IntelliMouse extension (rates
 * 200, 100, 80 switch the ID to 3: 4-byte packets with the wheel).  Host
 * motion accumulates in the movement counters; stream mode sends it as
 * packets while at most four are queued (further motion coalesces into the
 * counters, large motion is split over several packets), remote mode's
 * Read Data saturates and sets the overflow bits.
 */
#include "i8042.h"

#include <errno.h>
#include <glib.h>
#include <limits.h>
#include <linux/input-event-codes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bus.h"
#include "../display/console.h"
#include "../input/keymap.h"
#include "../log.h"
#include "../timer.h"

#define STS_OBF		0x01
#define STS_IBF		0x02
#define STS_SYS		0x04
#define STS_CMD		0x08	/* last write was to the command port */
#define STS_UNLOCKED	0x10	/* keyboard not inhibited by the keylock */
#define STS_AUXOBF	0x20

#define CFG_KBDINT	0x01
#define CFG_AUXINT	0x02
#define CFG_SYS		0x04
#define CFG_KBDDIS	0x10
#define CFG_AUXDIS	0x20
#define CFG_XLATE	0x40

#define OUT_RESET	0x01	/* low: the CPU is held in reset */
#define OUT_A20		0x02

#define ACK		0xfa
#define RESEND		0xfe
#define BAT_OK		0xaa

#define CTRL_QUEUE	16
#define RING_MAX	64
#define REPLY_BYTES	16
#define KBD_DATA_BYTES	64	/* 16 keys of up to 4 bytes */
#define AUX_DATA_BYTES	16	/* 4 packets of up to 4 bytes */

#define TYPEMATIC_DEFAULT 0x2b	/* 10.9 characters/s after 500 ms */
#define MOUSE_COUNTER_MAX 65535	/* host motion kept while not sent */

/* Set-3 key types (IBM: make-only, make/break, typematic). */
#define KT_BREAK	0x01
#define KT_REPEAT	0x02

enum src { SRC_KBD, SRC_AUX };

struct ring {
	uint8_t b[RING_MAX];
	uint8_t head, count, cap;
};

struct obyte {
	uint8_t data;
	uint8_t src;
};

struct ps2kbd {
	struct ring reply, data;
	uint8_t pending;	/* command awaiting its parameter(s) */
	uint8_t set;		/* scancode set 1-3 */
	bool scanning;
	bool overrun;		/* overrun code queued, buffer still full */
	uint8_t leds;		/* 0xed parameter: bit 0 scroll, 1 num, 2 caps */
	uint8_t typematic;	/* 0xf3 parameter */
	uint8_t last_sent;	/* for 0xfe resend */
	uint8_t set3_type[256];	/* KT_* per set-3 code */
	unsigned repeat_key;	/* KEY_* repeating, 0: none */
	struct vtimer timer;
	bool has_timer;
};

struct ps2mouse {
	struct ring reply, data;
	uint8_t pending;	/* 0xf3 / 0xe8 awaiting its parameter */
	bool wrap, remote, reporting, scale21;
	uint8_t rate, resolution, id;
	uint8_t rates[3];	/* last sample rates set (IntelliMouse knock) */
	uint8_t last_sent;
	int dx, dy, dz;		/* movement counters, PS/2 sense (+y up) */
	unsigned buttons;	/* CONSOLE_BTN_* held */
	unsigned buttons_sent;
};

struct i8042 {
	const struct i8042_ops *ops;
	void *opaque;
	struct irq_line kbd_irq, aux_irq;
	int kbd_level, aux_level;

	uint8_t ram[32];	/* ram[0] is the configuration byte */
	uint8_t outport;
	uint8_t status_cmd;	/* STS_CMD */
	uint8_t pending_cmd;	/* controller command awaiting its data byte */

	bool ob_full;
	struct obyte ob;	/* the output buffer */
	bool xlate_break;	/* translation saw 0xf0 */
	uint8_t last_src;	/* device served last (they take turns) */
	struct obyte ctrlq[CTRL_QUEUE];
	unsigned ctrl_head, ctrl_count;

	struct ps2kbd kbd;
	struct ps2mouse aux;

	/* Wiring, not state: the vmmouse riding on the mouse. */
	const struct i8042_aux_hook *hook;
	void *hook_opaque;
};

/* ---- byte rings ---------------------------------------------------------- */

static void ring_init(struct ring *r, uint8_t cap)
{
	r->head = r->count = 0;
	r->cap = cap;
}

static unsigned ring_room(const struct ring *r)
{
	return (unsigned)(r->cap - r->count);
}

static bool ring_put(struct ring *r, uint8_t v)
{
	if (r->count >= r->cap)
		return false;
	r->b[(r->head + r->count) % RING_MAX] = v;
	r->count++;
	return true;
}

static int ring_get(struct ring *r)
{
	uint8_t v;

	if (!r->count)
		return -1;
	v = r->b[r->head];
	r->head = (uint8_t)((r->head + 1) % RING_MAX);
	r->count--;
	return v;
}

static void dev_reply(struct ring *reply, uint8_t v)
{
	if (!ring_put(reply, v))
		vlog_ratelimited(LOG_DEBUG,
				 "i8042: device replies not read, dropping");
}

/* ---- output buffer and IRQs ------------------------------------------- */

static void update_irq(struct i8042 *k)
{
	int kbd = 0, aux = 0;

	if (k->ob_full) {
		if (k->ob.src == SRC_AUX)
			aux = (k->ram[0] & CFG_AUXINT) != 0;
		else
			kbd = (k->ram[0] & CFG_KBDINT) != 0;
	}
	if (kbd != k->kbd_level) {
		k->kbd_level = kbd;
		irq_line_set(&k->kbd_irq, kbd);
	}
	if (aux != k->aux_level) {
		k->aux_level = aux;
		irq_line_set(&k->aux_irq, aux);
	}
}

static void mouse_fill(struct i8042 *k);

/* The keyboard's next byte as the controller passes it on. */
static bool kbd_pull(struct i8042 *k, uint8_t *out)
{
	struct ps2kbd *kb = &k->kbd;

	for (;;) {
		int b = ring_get(&kb->reply);

		if (b < 0)
			b = ring_get(&kb->data);
		if (b < 0)
			return false;
		kb->last_sent = (uint8_t)b;
		if (!kb->data.count)
			kb->overrun = false;
		if (!(k->ram[0] & CFG_XLATE)) {
			*out = (uint8_t)b;
			return true;
		}
		if (b == 0xf0) {
			k->xlate_break = true;
			continue;
		}
		*out = (uint8_t)(keymap_xlate((uint8_t)b) |
				 (k->xlate_break ? 0x80 : 0));
		k->xlate_break = false;
		return true;
	}
}

static bool aux_pull(struct i8042 *k, uint8_t *out)
{
	int b = ring_get(&k->aux.reply);

	if (b < 0) {
		mouse_fill(k);
		b = ring_get(&k->aux.data);
	}
	if (b < 0)
		return false;
	k->aux.last_sent = (uint8_t)b;
	*out = (uint8_t)b;
	return true;
}

static bool kbd_ready(const struct i8042 *k)
{
	return !(k->ram[0] & CFG_KBDDIS) &&
	       (k->kbd.reply.count || k->kbd.data.count);
}

static bool aux_ready(const struct i8042 *k)
{
	const struct ps2mouse *m = &k->aux;

	if (k->ram[0] & CFG_AUXDIS)
		return false;
	return m->reply.count || m->data.count ||
	       (m->reporting && !m->remote && !m->wrap &&
		(m->dx || m->dy || (m->id == 3 && m->dz) ||
		 m->buttons != m->buttons_sent));
}

/* Fill an empty output buffer; update the IRQ lines. */
static void pump(struct i8042 *k)
{
	if (!k->ob_full && k->ctrl_count) {
		k->ob = k->ctrlq[k->ctrl_head];
		k->ctrl_head = (k->ctrl_head + 1) % CTRL_QUEUE;
		k->ctrl_count--;
		k->ob_full = true;
	}
	if (!k->ob_full) {
		bool kr = kbd_ready(k), ar = aux_ready(k);
		uint8_t v;

		if (kr && (!ar || k->last_src == SRC_AUX)) {
			if (kbd_pull(k, &v)) {
				k->ob = (struct obyte){ v, SRC_KBD };
				k->ob_full = true;
				k->last_src = SRC_KBD;
			}
		}
		if (!k->ob_full && ar && aux_pull(k, &v)) {
			k->ob = (struct obyte){ v, SRC_AUX };
			k->ob_full = true;
			k->last_src = SRC_AUX;
		}
		/* A lone 0xf0 swallowed by translation leaves it empty. */
		if (!k->ob_full && kbd_ready(k) && kbd_pull(k, &v)) {
			k->ob = (struct obyte){ v, SRC_KBD };
			k->ob_full = true;
			k->last_src = SRC_KBD;
		}
	}
	update_irq(k);
}

/* A byte the controller itself puts in the output buffer. */
static void ctrl_queue(struct i8042 *k, uint8_t data, enum src src)
{
	if (k->ctrl_count == CTRL_QUEUE) {
		vlog_ratelimited(LOG_DEBUG, "i8042: output not read, dropping");
		return;
	}
	k->ctrlq[(k->ctrl_head + k->ctrl_count) % CTRL_QUEUE] =
		(struct obyte){ data, (uint8_t)src };
	k->ctrl_count++;
	pump(k);
}

static void reply(struct i8042 *k, uint8_t data)
{
	ctrl_queue(k, data, SRC_KBD);
}

static uint8_t status(const struct i8042 *k)
{
	uint8_t s = STS_UNLOCKED | k->status_cmd;

	if (k->ram[0] & CFG_SYS)
		s |= STS_SYS;
	if (k->ob_full) {
		s |= STS_OBF;
		if (k->ob.src == SRC_AUX)
			s |= STS_AUXOBF;
	}
	return s;
}

static uint8_t read_data(struct i8042 *k)
{
	uint8_t v = k->ob.data;

	if (!k->ob_full)
		return v;	/* the last byte, again */
	k->ob_full = false;
	/* The line drops when the buffer is read; a following byte raises
	 * it again, so the PIC sees an edge per byte. */
	update_irq(k);
	pump(k);
	return v;
}

/* ---- output port ------------------------------------------------------ */

static void set_outport(struct i8042 *k, uint8_t v)
{
	uint8_t old = k->outport;

	k->outport = v;
	if ((old ^ v) & OUT_A20 && k->ops && k->ops->set_a20)
		k->ops->set_a20(k->opaque, v & OUT_A20);
	if (!(v & OUT_RESET) && k->ops && k->ops->reset)
		k->ops->reset(k->opaque);
}

static uint8_t outport_value(const struct i8042 *k)
{
	uint8_t v = k->outport & (uint8_t)~0x30;

	/* Bits 4/5: keyboard / aux output buffer full. */
	if (k->ob_full)
		v |= k->ob.src == SRC_AUX ? 0x20 : 0x10;
	return v;
}

/* ---- the keyboard ----------------------------------------------------- */

static uint64_t typematic_delay_ns(uint8_t r)
{
	return (uint64_t)(1 + ((r >> 5) & 3)) * 250000000ull;
}

/* Period = (8 + A) * 2^B * 4.17 ms (A: bits 0-2, B: bits 3-4), i.e.
 * 30 down to 2 characters per second. */
static uint64_t typematic_period_ns(uint8_t r)
{
	return (uint64_t)(8 + (r & 7)) * (1u << ((r >> 3) & 3)) *
	       1000000000ull / 240;
}

static void typematic_stop(struct ps2kbd *kb)
{
	kb->repeat_key = 0;
	if (kb->has_timer)
		vtimer_del(&kb->timer);
}

static bool set3_is_modifier(uint8_t c)
{
	switch (c) {
	case 0x11: case 0x12: case 0x14: case 0x19: case 0x39: case 0x58:
	case 0x59: case 0x8b: case 0x8c: case 0x8d:
		return true;
	}
	return false;
}

/* Power-on key types of set 3: shifts, Ctrl, Alt, Caps Lock and the
 * Windows keys make/break, every other key make-only and typematic. */
static void set3_default_types(struct ps2kbd *kb)
{
	for (unsigned c = 0; c < 256; c++)
		kb->set3_type[c] = set3_is_modifier((uint8_t)c) ? KT_BREAK
								 : KT_REPEAT;
}

static void set3_all_types(struct ps2kbd *kb, uint8_t type)
{
	for (unsigned c = 0; c < 256; c++)
		kb->set3_type[c] = type;
}

static void kbd_defaults(struct ps2kbd *kb)
{
	typematic_stop(kb);
	kb->typematic = TYPEMATIC_DEFAULT;
	set3_default_types(kb);
	ring_init(&kb->data, KBD_DATA_BYTES);
	kb->overrun = false;
}

static void kbd_power_on(struct ps2kbd *kb)
{
	ring_init(&kb->reply, REPLY_BYTES);
	kbd_defaults(kb);
	kb->pending = 0;
	kb->set = 2;
	kb->scanning = true;
	kb->leds = 0;
	kb->last_sent = 0;
}

/* Queue one key's bytes; a full buffer gets the overrun code once. */
static void kbd_queue_key(struct ps2kbd *kb, const uint8_t *b, unsigned n)
{
	if (ring_room(&kb->data) < n + 1) {
		if (!kb->overrun && ring_room(&kb->data))
			ring_put(&kb->data, kb->set == 1 ? 0xff : 0x00);
		kb->overrun = true;
		return;
	}
	for (unsigned i = 0; i < n; i++)
		ring_put(&kb->data, b[i]);
}

/* The bytes @keycode sends now, given the set-3 key types. */
static unsigned kbd_codes(const struct ps2kbd *kb, unsigned keycode,
			  bool down, uint8_t *out)
{
	unsigned n = keymap_scancodes(keycode, kb->set, down, out);

	if (n && kb->set == 3 && !down &&
	    !(kb->set3_type[out[n - 1]] & KT_BREAK))
		return 0;
	return n;
}

static bool kbd_repeats(const struct ps2kbd *kb, unsigned keycode)
{
	uint8_t b[KEYMAP_MAX_BYTES];
	unsigned n;

	if (keycode == KEY_PAUSE)
		return false;
	n = keymap_scancodes(keycode, kb->set, true, b);
	if (!n)
		return false;
	return kb->set != 3 || (kb->set3_type[b[n - 1]] & KT_REPEAT);
}

static void typematic_fire(void *opaque, uint64_t now_ns)
{
	struct i8042 *k = opaque;
	struct ps2kbd *kb = &k->kbd;
	uint8_t b[KEYMAP_MAX_BYTES];
	unsigned n;

	if (!kb->repeat_key || !kb->scanning)
		return;
	/* Repeats never overrun the buffer: skipped while it is half full
	 * (the guest is not reading). */
	n = kbd_codes(kb, kb->repeat_key, true, b);
	if (n && kb->data.count + n <= kb->data.cap / 2) {
		for (unsigned i = 0; i < n; i++)
			ring_put(&kb->data, b[i]);
	}
	vtimer_mod(&kb->timer, now_ns + typematic_period_ns(kb->typematic));
	pump(k);
}

static void kbd_command(struct i8042 *k, uint8_t b);

static void kbd_parameter(struct i8042 *k, uint8_t b)
{
	struct ps2kbd *kb = &k->kbd;
	uint8_t cmd = kb->pending;

	if (cmd >= 0xfb && cmd <= 0xfd) {
		/* A key list ends with the next command byte. */
		if (b >= 0xed) {
			kb->pending = 0;
			kbd_command(k, b);
			return;
		}
		kb->set3_type[b] = cmd == 0xfb ? KT_REPEAT :
				   cmd == 0xfc ? KT_BREAK : 0;
		dev_reply(&kb->reply, ACK);
		return;
	}
	kb->pending = 0;
	switch (cmd) {
	case 0xed:
		kb->leds = b & 7;
		dev_reply(&kb->reply, ACK);
		break;
	case 0xf0:
		if (b > 3) {
			dev_reply(&kb->reply, RESEND);
			break;
		}
		dev_reply(&kb->reply, ACK);
		if (b == 0)
			dev_reply(&kb->reply, kb->set);
		else if (b != kb->set) {
			typematic_stop(kb);
			kb->set = b;
		}
		break;
	case 0xf3:
		kb->typematic = b & 0x7f;
		dev_reply(&kb->reply, ACK);
		break;
	}
}

static void kbd_command(struct i8042 *k, uint8_t b)
{
	struct ps2kbd *kb = &k->kbd;

	if (kb->pending) {
		kbd_parameter(k, b);
		return;
	}
	switch (b) {
	case 0xff:		/* reset and self-test */
		kbd_power_on(kb);
		dev_reply(&kb->reply, ACK);
		dev_reply(&kb->reply, BAT_OK);
		break;
	case 0xfe:		/* resend */
		dev_reply(&kb->reply, kb->last_sent);
		break;
	case 0xf2:		/* identify: MF2 keyboard */
		dev_reply(&kb->reply, ACK);
		dev_reply(&kb->reply, 0xab);
		dev_reply(&kb->reply, 0x83);
		break;
	case 0xee:		/* echo */
		dev_reply(&kb->reply, 0xee);
		break;
	case 0xed:		/* set LEDs */
	case 0xf0:		/* get/set scancode set */
	case 0xf3:		/* set typematic rate/delay */
	case 0xfb:		/* set-3 key lists: typematic */
	case 0xfc:		/* make/break */
	case 0xfd:		/* make only */
		kb->pending = b;
		dev_reply(&kb->reply, ACK);
		break;
	case 0xf4:		/* enable scanning */
		ring_init(&kb->data, KBD_DATA_BYTES);
		kb->overrun = false;
		kb->scanning = true;
		dev_reply(&kb->reply, ACK);
		break;
	case 0xf5:		/* disable scanning, defaults */
	case 0xf6:		/* defaults, scanning on */
		kbd_defaults(kb);
		kb->scanning = b == 0xf6;
		dev_reply(&kb->reply, ACK);
		break;
	case 0xf7:		/* set 3: all keys typematic */
	case 0xf8:		/* all make/break */
	case 0xf9:		/* all make only */
	case 0xfa:		/* all make/break/typematic */
		set3_all_types(kb, b == 0xf7 ? KT_REPEAT :
				   b == 0xf8 ? KT_BREAK :
				   b == 0xf9 ? 0 : KT_BREAK | KT_REPEAT);
		dev_reply(&kb->reply, ACK);
		break;
	default:
		dev_reply(&kb->reply, RESEND);
		break;
	}
}

void i8042_key_event(struct i8042 *k, unsigned keycode, bool down)
{
	struct ps2kbd *kb = &k->kbd;
	uint8_t b[KEYMAP_MAX_BYTES];
	unsigned n;

	if (!kb->scanning)
		return;
	n = kbd_codes(kb, keycode, down, b);
	if (n)
		kbd_queue_key(kb, b, n);
	/* Only the key pressed last repeats (none if it does not). */
	if (down && kb->has_timer && kbd_repeats(kb, keycode)) {
		const struct vclock *clk = vtimer_queue_clock(kb->timer.q);

		kb->repeat_key = keycode;
		vtimer_mod(&kb->timer, vclock_now(clk) +
			   typematic_delay_ns(kb->typematic));
	} else if (down || keycode == kb->repeat_key) {
		typematic_stop(kb);
	}
	pump(k);
}

unsigned i8042_leds(struct i8042 *k)
{
	unsigned leds = 0;

	if (k->kbd.leds & 0x01)
		leds |= CONSOLE_LED_SCROLL;
	if (k->kbd.leds & 0x02)
		leds |= CONSOLE_LED_NUM;
	if (k->kbd.leds & 0x04)
		leds |= CONSOLE_LED_CAPS;
	return leds;
}

/* ---- the mouse -------------------------------------------------------- */

static int clampi(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static void mouse_clear_counters(struct ps2mouse *m)
{
	m->dx = m->dy = m->dz = 0;
	m->buttons_sent = m->buttons;
}

static void mouse_defaults(struct ps2mouse *m)
{
	m->rate = 100;
	m->resolution = 2;	/* 4 counts/mm */
	m->scale21 = false;
	m->remote = false;
	m->reporting = false;
	ring_init(&m->data, AUX_DATA_BYTES);
	mouse_clear_counters(m);
}

static void mouse_power_on(struct ps2mouse *m)
{
	ring_init(&m->reply, REPLY_BYTES);
	mouse_defaults(m);
	m->pending = 0;
	m->wrap = false;
	m->id = 0;
	m->rates[0] = m->rates[1] = m->rates[2] = 0;
	m->last_sent = 0;
}

static unsigned packet_size(const struct ps2mouse *m)
{
	return m->id == 3 ? 4 : 3;
}

/* 2:1 scaling (stream mode): 1->1, 2->1, 3->3, 4->6, 5->9, n->2n. */
static int scale21(int v)
{
	static const int small[6] = { 0, 1, 1, 3, 6, 9 };
	int a = v < 0 ? -v : v;
	int s = a < 6 ? small[a] : 2 * a;

	return v < 0 ? -s : s;
}

/*
 * Build one packet from the counters.  @split: take at most what one packet
 * holds and leave the rest for the next (stream mode); otherwise saturate,
 * set the overflow bits and clear the counters (Read Data).
 */
static unsigned mouse_packet(struct ps2mouse *m, bool split, uint8_t *p)
{
	int lim = split && m->scale21 ? 127 : 255;
	int x = clampi(m->dx, -lim - 1, lim);
	int y = clampi(m->dy, -lim - 1, lim);
	int z = clampi(m->dz, -8, 7);
	uint8_t b0 = 0x08;

	if (split && m->scale21) {
		x = scale21(x);
		y = scale21(y);
	}
	if (m->buttons & CONSOLE_BTN_LEFT)
		b0 |= 0x01;
	if (m->buttons & CONSOLE_BTN_RIGHT)
		b0 |= 0x02;
	if (m->buttons & CONSOLE_BTN_MIDDLE)
		b0 |= 0x04;
	if (x < 0)
		b0 |= 0x10;
	if (y < 0)
		b0 |= 0x20;
	if (!split && x != m->dx)
		b0 |= 0x40;
	if (!split && y != m->dy)
		b0 |= 0x80;
	p[0] = b0;
	p[1] = (uint8_t)x;
	p[2] = (uint8_t)y;
	p[3] = (uint8_t)z;
	if (split) {
		m->dx -= clampi(m->dx, -lim - 1, lim);
		m->dy -= clampi(m->dy, -lim - 1, lim);
		m->dz -= z;
		m->buttons_sent = m->buttons;
	} else {
		mouse_clear_counters(m);
	}
	if (m->id != 3)
		m->dz = 0;
	return packet_size(m);
}

/* Stream mode: turn pending motion into packets while there is room. */
static void mouse_fill(struct i8042 *k)
{
	struct ps2mouse *m = &k->aux;
	unsigned n = packet_size(m);

	if (!m->reporting || m->remote || m->wrap)
		return;
	if (m->id != 3)
		m->dz = 0;
	/* At most AUX_DATA_BYTES / 3 rounds: each adds a packet. */
	while (ring_room(&m->data) >= n &&
	       (m->dx || m->dy || m->dz || m->buttons != m->buttons_sent)) {
		uint8_t p[4];

		mouse_packet(m, true, p);
		for (unsigned i = 0; i < n; i++)
			ring_put(&m->data, p[i]);
	}
}

static int counter_add(int c, int d)
{
	long long v = (long long)c + d;

	return (int)(v < -MOUSE_COUNTER_MAX ? -MOUSE_COUNTER_MAX :
		     v > MOUSE_COUNTER_MAX ? MOUSE_COUNTER_MAX : v);
}

void i8042_mouse_event(struct i8042 *k, int dx, int dy, int dz,
		       unsigned buttons)
{
	struct ps2mouse *m = &k->aux;

	if (k->hook && k->hook->mouse &&
	    k->hook->mouse(k->hook_opaque, dx, dy, dz, buttons))
		return;
	m->buttons = buttons & (CONSOLE_BTN_LEFT | CONSOLE_BTN_RIGHT |
				CONSOLE_BTN_MIDDLE);
	/* Stream mode with reporting off: the mouse sends nothing. */
	if (!m->remote && !m->reporting) {
		m->buttons_sent = m->buttons;
		return;
	}
	m->dx = counter_add(m->dx, dx);
	m->dy = counter_add(m->dy, dy == INT_MIN ? INT_MAX : -dy);
	if (m->id == 3)
		m->dz = counter_add(m->dz, dz);
	mouse_fill(k);
	pump(k);
}

bool i8042_aux_notify(struct i8042 *k, unsigned buttons)
{
	struct ps2mouse *m = &k->aux;
	unsigned n = packet_size(m);
	uint8_t b0 = 0x08;

	m->buttons = buttons & (CONSOLE_BTN_LEFT | CONSOLE_BTN_RIGHT |
				CONSOLE_BTN_MIDDLE);
	if (!m->reporting || m->remote || m->wrap || m->data.count) {
		/* Not streaming, or a packet is still to come, whose last
		 * byte brings the driver to the backdoor anyway (and the
		 * buttons are in the backdoor's packets, not owed here). */
		m->buttons_sent = m->buttons;
		return false;
	}
	if (m->buttons & CONSOLE_BTN_LEFT)
		b0 |= 0x01;
	if (m->buttons & CONSOLE_BTN_RIGHT)
		b0 |= 0x02;
	if (m->buttons & CONSOLE_BTN_MIDDLE)
		b0 |= 0x04;
	ring_put(&m->data, b0);
	for (unsigned i = 1; i < n; i++)
		ring_put(&m->data, 0);
	m->buttons_sent = m->buttons;
	pump(k);
	return true;
}

void i8042_set_aux_hook(struct i8042 *k, const struct i8042_aux_hook *hook,
			void *opaque)
{
	k->hook = hook;
	k->hook_opaque = opaque;
}

static void mouse_set_rate(struct ps2mouse *m, uint8_t rate)
{
	m->rate = rate;
	m->rates[0] = m->rates[1];
	m->rates[1] = m->rates[2];
	m->rates[2] = rate;
	if (m->rates[0] == 200 && m->rates[1] == 100 && m->rates[2] == 80)
		m->id = 3;	/* IntelliMouse: wheel */
}

static void mouse_parameter(struct ps2mouse *m, uint8_t b)
{
	uint8_t cmd = m->pending;

	m->pending = 0;
	if (cmd == 0xf3) {
		switch (b) {
		case 10: case 20: case 40: case 60: case 80: case 100:
		case 200:
			mouse_set_rate(m, b);
			dev_reply(&m->reply, ACK);
			return;
		}
	} else if (cmd == 0xe8 && b <= 3) {
		m->resolution = b;
		dev_reply(&m->reply, ACK);
		return;
	}
	dev_reply(&m->reply, RESEND);
}

static void mouse_command(struct i8042 *k, uint8_t b)
{
	struct ps2mouse *m = &k->aux;
	uint8_t p[4];
	unsigned n;

	if (m->wrap && b != 0xec && b != 0xff) {
		dev_reply(&m->reply, b);	/* wrap mode echoes */
		return;
	}
	if (b != 0xfe)
		/* A command ends the stream: packets not yet sent go. */
		ring_init(&m->data, AUX_DATA_BYTES);
	if (m->pending) {
		mouse_parameter(m, b);
		return;
	}
	switch (b) {
	case 0xff:		/* reset */
		mouse_power_on(m);
		if (k->hook && k->hook->reset)
			k->hook->reset(k->hook_opaque);
		dev_reply(&m->reply, ACK);
		dev_reply(&m->reply, BAT_OK);
		dev_reply(&m->reply, 0x00);	/* ID */
		break;
	case 0xfe:		/* resend */
		dev_reply(&m->reply, m->last_sent);
		break;
	case 0xf6:		/* set defaults */
		mouse_defaults(m);
		dev_reply(&m->reply, ACK);
		break;
	case 0xf5:		/* disable data reporting */
	case 0xf4:		/* enable data reporting */
		m->reporting = b == 0xf4;
		mouse_clear_counters(m);
		dev_reply(&m->reply, ACK);
		break;
	case 0xf3:		/* set sample rate */
	case 0xe8:		/* set resolution */
		m->pending = b;
		dev_reply(&m->reply, ACK);
		break;
	case 0xf2:		/* get device ID */
		dev_reply(&m->reply, ACK);
		dev_reply(&m->reply, m->id);
		break;
	case 0xf0:		/* remote mode */
	case 0xea:		/* stream mode */
		m->remote = b == 0xf0;
		mouse_clear_counters(m);
		dev_reply(&m->reply, ACK);
		break;
	case 0xee:		/* wrap mode */
		m->wrap = true;
		mouse_clear_counters(m);
		dev_reply(&m->reply, ACK);
		break;
	case 0xec:		/* reset wrap mode */
		m->wrap = false;
		mouse_clear_counters(m);
		dev_reply(&m->reply, ACK);
		break;
	case 0xeb:		/* read data */
		dev_reply(&m->reply, ACK);
		n = mouse_packet(m, false, p);
		for (unsigned i = 0; i < n; i++)
			dev_reply(&m->reply, p[i]);
		break;
	case 0xe9:		/* status request */
		dev_reply(&m->reply, ACK);
		dev_reply(&m->reply,
			  (uint8_t)((m->remote ? 0x40 : 0) |
				    (m->reporting ? 0x20 : 0) |
				    (m->scale21 ? 0x10 : 0) |
				    (m->buttons & CONSOLE_BTN_LEFT ? 0x04 : 0) |
				    (m->buttons & CONSOLE_BTN_MIDDLE ? 0x02 : 0) |
				    (m->buttons & CONSOLE_BTN_RIGHT ? 0x01 : 0)));
		dev_reply(&m->reply, m->resolution);
		dev_reply(&m->reply, m->rate);
		break;
	case 0xe7:		/* scaling 2:1 */
	case 0xe6:		/* scaling 1:1 */
		m->scale21 = b == 0xe7;
		dev_reply(&m->reply, ACK);
		break;
	default:
		dev_reply(&m->reply, RESEND);
		break;
	}
}

/* ---- controller commands ---------------------------------------------- */

static void controller_command(struct i8042 *k, uint8_t cmd)
{
	if (cmd >= 0x20 && cmd <= 0x3f) {
		reply(k, k->ram[cmd & 0x1f]);
		return;
	}
	if ((cmd >= 0x60 && cmd <= 0x7f) || cmd == 0xd1 || cmd == 0xd2 ||
	    cmd == 0xd3 || cmd == 0xd4) {
		k->pending_cmd = cmd;
		return;
	}
	if (cmd >= 0xf0) {
		/* Pulse the output port bits whose command bit is 0; only
		 * bit 0 (reset) has an effect. */
		if (!(cmd & 1) && k->ops && k->ops->reset)
			k->ops->reset(k->opaque);
		return;
	}
	switch (cmd) {
	case 0xa4:		/* password installed? no */
		reply(k, 0xf1);
		break;
	case 0xa7:
		k->ram[0] |= CFG_AUXDIS;
		break;
	case 0xa8:
		k->ram[0] &= (uint8_t)~CFG_AUXDIS;
		break;
	case 0xa9:		/* aux interface test */
	case 0xab:		/* keyboard interface test */
		reply(k, 0x00);
		break;
	case 0xaa:		/* controller self-test */
		k->ram[0] |= CFG_SYS;
		reply(k, 0x55);
		break;
	case 0xad:
		k->ram[0] |= CFG_KBDDIS;
		break;
	case 0xae:
		k->ram[0] &= (uint8_t)~CFG_KBDDIS;
		break;
	case 0xc0:		/* input port: keyboard not inhibited */
		reply(k, 0x80);
		break;
	case 0xd0:
		reply(k, outport_value(k));
		break;
	case 0xdd:
		set_outport(k, k->outport & (uint8_t)~OUT_A20);
		break;
	case 0xdf:
		set_outport(k, k->outport | OUT_A20);
		break;
	case 0xe0:		/* test inputs */
		reply(k, 0x00);
		break;
	default:
		break;		/* unknown: ignored */
	}
}

static void controller_data(struct i8042 *k, uint8_t cmd, uint8_t v)
{
	if (cmd >= 0x60 && cmd <= 0x7f) {
		if (cmd == 0x60)
			v &= 0x7f;	/* bit 7 of the config byte is 0 */
		k->ram[cmd & 0x1f] = v;
		return;
	}
	switch (cmd) {
	case 0xd1:
		set_outport(k, v);
		break;
	case 0xd2:
		ctrl_queue(k, v, SRC_KBD);
		break;
	case 0xd3:
		ctrl_queue(k, v, SRC_AUX);
		break;
	case 0xd4:
		k->ram[0] &= (uint8_t)~CFG_AUXDIS;
		mouse_command(k, v);
		break;
	}
}

static uint64_t data_port_read(void *opaque, uint64_t offset, unsigned size)
{
	(void)offset, (void)size;
	return read_data(opaque);
}

static void data_port_write(void *opaque, uint64_t offset, uint64_t value,
			    unsigned size)
{
	struct i8042 *k = opaque;
	uint8_t cmd = k->pending_cmd;

	(void)offset, (void)size;
	k->status_cmd = 0;
	k->pending_cmd = 0;
	if (cmd) {
		controller_data(k, cmd, (uint8_t)value);
	} else {
		k->ram[0] &= (uint8_t)~CFG_KBDDIS;
		kbd_command(k, (uint8_t)value);
	}
	pump(k);
}

static const struct bus_ops i8042_ops_data = {
	.name = "i8042-data",
	.read = data_port_read,
	.write = data_port_write,
};

static uint64_t cmd_port_read(void *opaque, uint64_t offset, unsigned size)
{
	(void)offset, (void)size;
	return status(opaque);
}

static void cmd_port_write(void *opaque, uint64_t offset, uint64_t value,
			   unsigned size)
{
	struct i8042 *k = opaque;

	(void)offset, (void)size;
	k->status_cmd = STS_CMD;
	k->pending_cmd = 0;
	controller_command(k, (uint8_t)value);
	pump(k);
}

static const struct bus_ops i8042_ops_cmd = {
	.name = "i8042-cmd",
	.read = cmd_port_read,
	.write = cmd_port_write,
};

/* ---- console input ---------------------------------------------------- */

static void input_key(void *opaque, unsigned keycode, bool down)
{
	i8042_key_event(opaque, keycode, down);
}

static void input_mouse(void *opaque, int dx, int dy, int dz,
			unsigned buttons)
{
	i8042_mouse_event(opaque, dx, dy, dz, buttons);
}

static unsigned input_leds(void *opaque)
{
	return i8042_leds(opaque);
}

const struct console_input_ops i8042_input_ops = {
	.key = input_key,
	.mouse = input_mouse,
	.leds = input_leds,
};

/* ---- life cycle ------------------------------------------------------- */

void i8042_reset(struct i8042 *k)
{
	/* The state a PC BIOS leaves (the direct boot path has no BIOS):
	 * translation on, system flag set, both interrupts enabled. */
	k->ram[0] = CFG_XLATE | CFG_SYS | CFG_AUXINT | CFG_KBDINT;
	k->outport = 0xcc | OUT_A20 | OUT_RESET;
	k->status_cmd = 0;
	k->pending_cmd = 0;
	k->ob_full = false;
	k->ob = (struct obyte){ 0, SRC_KBD };
	k->xlate_break = false;
	k->last_src = SRC_AUX;
	k->ctrl_head = k->ctrl_count = 0;
	kbd_power_on(&k->kbd);
	mouse_power_on(&k->aux);
	update_irq(k);
}

struct i8042 *i8042_new(const struct i8042_ops *ops, void *opaque,
			struct irq_line kbd_irq, struct irq_line aux_irq,
			struct vtimer_queue *timers)
{
	struct i8042 *k = calloc(1, sizeof(*k));

	if (!k)
		return NULL;
	k->ops = ops;
	k->opaque = opaque;
	k->kbd_irq = kbd_irq;
	k->aux_irq = aux_irq;
	if (timers) {
		vtimer_init(&k->kbd.timer, timers, typematic_fire, k);
		k->kbd.has_timer = true;
	}
	i8042_reset(k);
	return k;
}

void i8042_free(struct i8042 *k)
{
	if (!k)
		return;
	if (k->kbd.has_timer)
		vtimer_del(&k->kbd.timer);
	free(k);
}

int i8042_attach(struct i8042 *k, struct bus *pio)
{
	int r = bus_register(pio, 0x60, 1, &i8042_ops_data, k);

	if (r < 0)
		return r;
	r = bus_register(pio, 0x64, 1, &i8042_ops_cmd, k);
	if (r < 0)
		bus_unregister(pio, 0x60);
	return r;
}

/* ---- the machine's device table ---------------------------------------- */

static void i8042_dev_reset(void *dev)
{
	i8042_reset(dev);
}

static void i8042_dev_free(void *dev)
{
	i8042_free(dev);
}

/* ---- saved state (I8042_STATE_TYPE in i8042.h) ----------------------- */

#define I8042_STATE_VERSION 1u
/* The longest a typematic timer waits: the 1 s delay (0xf3 bits 5-6 = 3);
 * the slowest repeat period is 500 ms. */
#define TYPEMATIC_MAX_NS 1000000000ull

static GVariant *bytes_v(const uint8_t *b, size_t n)
{
	return g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, b, n, 1);
}

/* A ring's bytes, oldest first. */
static GVariant *ring_v(const struct ring *r)
{
	uint8_t b[RING_MAX];

	for (unsigned i = 0; i < r->count; i++)
		b[i] = r->b[(r->head + i) % RING_MAX];
	return bytes_v(b, r->count);
}

static GVariant *i8042_save(void *dev)
{
	struct i8042 *k = dev;
	const struct ps2kbd *kb = &k->kbd;
	const struct ps2mouse *m = &k->aux;
	GVariantBuilder q;
	uint64_t remain = 0;
	bool armed = kb->has_timer && kb->timer.armed;

	g_variant_builder_init(&q, G_VARIANT_TYPE("a(yy)"));
	for (unsigned i = 0; i < k->ctrl_count; i++) {
		const struct obyte *o = &k->ctrlq[(k->ctrl_head + i) % CTRL_QUEUE];

		g_variant_builder_add(&q, "(yy)", o->data, o->src);
	}
	if (armed) {
		uint64_t now = vclock_now(vtimer_queue_clock(kb->timer.q));

		remain = kb->timer.deadline_ns > now ? kb->timer.deadline_ns - now
						      : 0;
	}
	return g_variant_new("((@ayyyybyybya(yy)bb)"
			     "(@ay@ayyybbyyy@ayubt)"
			     "(@ay@ayybbbbyyy@ayyiiiuu))",
		bytes_v(k->ram, sizeof(k->ram)), k->outport, k->status_cmd,
		k->pending_cmd, (gboolean)k->ob_full, k->ob.data, k->ob.src,
		(gboolean)k->xlate_break, k->last_src, &q,
		(gboolean)k->kbd_level, (gboolean)k->aux_level,
		ring_v(&kb->reply), ring_v(&kb->data), kb->pending, kb->set,
		(gboolean)kb->scanning, (gboolean)kb->overrun, kb->leds,
		kb->typematic, kb->last_sent,
		bytes_v(kb->set3_type, sizeof(kb->set3_type)),
		(guint32)kb->repeat_key, (gboolean)armed, (guint64)remain,
		ring_v(&m->reply), ring_v(&m->data), m->pending, (gboolean)m->wrap,
		(gboolean)m->remote, (gboolean)m->reporting,
		(gboolean)m->scale21, m->rate, m->resolution, m->id,
		bytes_v(m->rates, sizeof(m->rates)), m->last_sent,
		(gint32)m->dx, (gint32)m->dy, (gint32)m->dz,
		(guint32)m->buttons, (guint32)m->buttons_sent);
}

/* One line in @err, naming the device; returns -EINVAL. */
#define refuse(err, errlen, fmt, ...) \
	device_load_fail(err, errlen, "i8042: " fmt, ##__VA_ARGS__)

/* Byte array @v into @r (capacity @cap).  False if it does not fit. */
static bool ring_load(struct ring *r, uint8_t cap, GVariant *v)
{
	gsize n;
	const uint8_t *b = g_variant_get_fixed_array(v, &n, 1);

	ring_init(r, cap);
	if (n > cap)
		return false;
	for (gsize i = 0; i < n; i++)
		ring_put(r, b[i]);
	return true;
}

static bool rate_ok(unsigned r)
{
	switch (r) {
	case 10: case 20: case 40: case 60: case 80: case 100: case 200:
		return true;
	}
	return false;
}

static bool ctrl_pending_ok(unsigned c)
{
	return c == 0 || (c >= 0x60 && c <= 0x7f) || (c >= 0xd1 && c <= 0xd4);
}

static bool kbd_pending_ok(unsigned c)
{
	return c == 0 || c == 0xed || c == 0xf0 || c == 0xf3 ||
	       (c >= 0xfb && c <= 0xfd);
}

#define MOUSE_BTNS (CONSOLE_BTN_LEFT | CONSOLE_BTN_RIGHT | CONSOLE_BTN_MIDDLE)

/* The controller tuple into @n; 0 or -EINVAL. */
static int load_ctrl(struct i8042 *n, GVariant *v, bool *kl, bool *al,
		     char *err, size_t errlen)
{
	GVariant *ram, *q;
	guchar ob_data, ob_src, last_src;
	gboolean ob_full, xb, kbd_level, aux_level;
	const uint8_t *p;
	gsize len;
	int r = 0;

	g_variant_get(v, "(@ayyyybyyby@a(yy)bb)", &ram, &n->outport,
		      &n->status_cmd, &n->pending_cmd, &ob_full, &ob_data,
		      &ob_src, &xb, &last_src, &q, &kbd_level, &aux_level);
	p = g_variant_get_fixed_array(ram, &len, 1);
	if (len != sizeof(n->ram))
		r = refuse(err, errlen, "controller RAM of %zu bytes, not %zu",
			   (size_t)len, sizeof(n->ram));
	else if (p[0] & 0x80)
		r = refuse(err, errlen, "configuration byte 0x%02x has bit 7 set",
			   p[0]);
	else if (n->status_cmd & ~STS_CMD)
		r = refuse(err, errlen, "status bits 0x%02x", n->status_cmd);
	else if (!ctrl_pending_ok(n->pending_cmd))
		r = refuse(err, errlen, "no controller command 0x%02x takes data",
			   n->pending_cmd);
	else if (ob_src > SRC_AUX || last_src > SRC_AUX)
		r = refuse(err, errlen, "output source %u out of range",
			   ob_src > SRC_AUX ? ob_src : last_src);
	else if (g_variant_n_children(q) > CTRL_QUEUE)
		r = refuse(err, errlen, "%zu controller bytes queued, at most %u",
			   (size_t)g_variant_n_children(q), CTRL_QUEUE);
	if (!r) {
		memcpy(n->ram, p, sizeof(n->ram));
		n->ob_full = ob_full;
		n->ob = (struct obyte){ ob_data, ob_src };
		n->xlate_break = xb;
		n->last_src = last_src;
		n->ctrl_head = 0;
		n->ctrl_count = (unsigned)g_variant_n_children(q);
		for (unsigned i = 0; i < n->ctrl_count && !r; i++) {
			guchar d, s;

			g_variant_get_child(q, i, "(yy)", &d, &s);
			if (s > SRC_AUX)
				r = refuse(err, errlen,
					   "queued byte %u: source %u out of range",
					   i, s);
			n->ctrlq[i] = (struct obyte){ d, s };
		}
		*kl = kbd_level;
		*al = aux_level;
	}
	g_variant_unref(ram);
	g_variant_unref(q);
	return r;
}

static int load_kbd(struct ps2kbd *kb, GVariant *v, bool *armed,
		    uint64_t *remain, char *err, size_t errlen)
{
	GVariant *reply, *data, *types;
	gboolean scanning, overrun, timer_armed;
	guint32 key;
	guint64 rem;
	const uint8_t *t;
	uint8_t codes[KEYMAP_MAX_BYTES];
	gsize len;
	int r = 0;

	g_variant_get(v, "(@ay@ayyybbyyy@ayubt)", &reply, &data, &kb->pending,
		      &kb->set, &scanning, &overrun, &kb->leds, &kb->typematic,
		      &kb->last_sent, &types, &key, &timer_armed, &rem);
	t = g_variant_get_fixed_array(types, &len, 1);
	if (!ring_load(&kb->reply, REPLY_BYTES, reply))
		r = refuse(err, errlen, "keyboard replies longer than %u bytes",
			   REPLY_BYTES);
	else if (!ring_load(&kb->data, KBD_DATA_BYTES, data))
		r = refuse(err, errlen, "keyboard buffer longer than %u bytes",
			   KBD_DATA_BYTES);
	else if (!kbd_pending_ok(kb->pending))
		r = refuse(err, errlen, "keyboard command 0x%02x takes no parameter",
			   kb->pending);
	else if (kb->set < 1 || kb->set > 3)
		r = refuse(err, errlen, "scancode set %u not supported", kb->set);
	else if (kb->leds > 7)
		r = refuse(err, errlen, "LED bits 0x%02x", kb->leds);
	else if (kb->typematic > 0x7f)
		r = refuse(err, errlen, "typematic byte 0x%02x", kb->typematic);
	else if (len != sizeof(kb->set3_type))
		r = refuse(err, errlen, "%zu set-3 key types, not %zu",
			   (size_t)len, sizeof(kb->set3_type));
	else if (key && (key > KEY_MAX || key == KEY_PAUSE ||
			 !keymap_scancodes(key, kb->set, true, codes)))
		r = refuse(err, errlen, "key %u cannot repeat in set %u", key,
			   kb->set);
	else if (timer_armed && !key)
		r = refuse(err, errlen, "typematic timer armed with no key held");
	else if (timer_armed && rem > TYPEMATIC_MAX_NS)
		r = refuse(err, errlen, "typematic timer %llu ns away, at most %llu",
			   (unsigned long long)rem, TYPEMATIC_MAX_NS);
	for (gsize i = 0; !r && i < len; i++)
		if (t[i] & ~(KT_BREAK | KT_REPEAT))
			r = refuse(err, errlen, "set-3 key type %u of code 0x%02zx",
				   t[i], (size_t)i);
	if (!r) {
		memcpy(kb->set3_type, t, sizeof(kb->set3_type));
		kb->scanning = scanning;
		kb->overrun = overrun;
		kb->repeat_key = key;
		*armed = timer_armed;
		*remain = rem;
	}
	g_variant_unref(reply);
	g_variant_unref(data);
	g_variant_unref(types);
	return r;
}

static int load_mouse(struct ps2mouse *m, GVariant *v, char *err,
		      size_t errlen)
{
	GVariant *reply, *data, *rates;
	gboolean wrap, remote, reporting, scale21;
	gint32 dx, dy, dz;
	guint32 buttons, sent;
	const uint8_t *rt;
	gsize len;
	int r = 0;

	g_variant_get(v, "(@ay@ayybbbbyyy@ayyiiiuu)", &reply, &data,
		      &m->pending, &wrap, &remote, &reporting, &scale21,
		      &m->rate, &m->resolution, &m->id, &rates, &m->last_sent,
		      &dx, &dy, &dz, &buttons, &sent);
	rt = g_variant_get_fixed_array(rates, &len, 1);
	if (!ring_load(&m->reply, REPLY_BYTES, reply))
		r = refuse(err, errlen, "mouse replies longer than %u bytes",
			   REPLY_BYTES);
	else if (!ring_load(&m->data, AUX_DATA_BYTES, data))
		r = refuse(err, errlen, "mouse buffer longer than %u bytes",
			   AUX_DATA_BYTES);
	else if (m->pending && m->pending != 0xf3 && m->pending != 0xe8)
		r = refuse(err, errlen, "mouse command 0x%02x takes no parameter",
			   m->pending);
	else if (!rate_ok(m->rate))
		r = refuse(err, errlen, "mouse sample rate %u", m->rate);
	else if (m->resolution > 3)
		r = refuse(err, errlen, "mouse resolution %u", m->resolution);
	else if (m->id != 0 && m->id != 3)
		r = refuse(err, errlen, "mouse ID %u", m->id);
	else if (len != sizeof(m->rates))
		r = refuse(err, errlen, "%zu knock rates, not %zu", (size_t)len,
			   sizeof(m->rates));
	else if ((rt[0] && !rate_ok(rt[0])) || (rt[1] && !rate_ok(rt[1])) ||
		 (rt[2] && !rate_ok(rt[2])))
		r = refuse(err, errlen, "knock rates %u %u %u", rt[0], rt[1],
			   rt[2]);
	else if (dx < -MOUSE_COUNTER_MAX || dx > MOUSE_COUNTER_MAX ||
		 dy < -MOUSE_COUNTER_MAX || dy > MOUSE_COUNTER_MAX ||
		 dz < -MOUSE_COUNTER_MAX || dz > MOUSE_COUNTER_MAX)
		r = refuse(err, errlen, "mouse counters %d %d %d past %d", dx, dy,
			   dz, MOUSE_COUNTER_MAX);
	else if ((buttons | sent) & ~MOUSE_BTNS)
		r = refuse(err, errlen, "mouse buttons 0x%x/0x%x", buttons, sent);
	if (!r) {
		memcpy(m->rates, rt, sizeof(m->rates));
		m->wrap = wrap;
		m->remote = remote;
		m->reporting = reporting;
		m->scale21 = scale21;
		m->dx = dx;
		m->dy = dy;
		m->dz = dz;
		m->buttons = buttons;
		m->buttons_sent = sent;
	}
	g_variant_unref(reply);
	g_variant_unref(data);
	g_variant_unref(rates);
	return r;
}

static int i8042_load(void *dev, uint32_t version, GVariant *state, char *err,
		      size_t errlen)
{
	struct i8042 *k = dev;
	struct i8042 n = *k;	/* decoded here, copied over once all is valid */
	struct vtimer timer;
	GVariant *c, *kv, *mv;
	bool kl = false, al = false, armed = false;
	uint64_t remain = 0;
	int r;

	r = device_state_check("i8042", version, I8042_STATE_VERSION, state,
			       I8042_STATE_TYPE, err, errlen);
	if (r < 0)
		return r;
	c = g_variant_get_child_value(state, 0);
	kv = g_variant_get_child_value(state, 1);
	mv = g_variant_get_child_value(state, 2);
	r = load_ctrl(&n, c, &kl, &al, err, errlen);
	if (!r)
		r = load_kbd(&n.kbd, kv, &armed, &remain, err, errlen);
	if (!r)
		r = load_mouse(&n.aux, mv, err, errlen);
	g_variant_unref(c);
	g_variant_unref(kv);
	g_variant_unref(mv);
	if (r)
		return r;
	/* The interrupt lines follow the output buffer (update_irq()). */
	n.kbd_level = n.aux_level = 0;
	if (n.ob_full && n.ob.src == SRC_AUX)
		n.aux_level = (n.ram[0] & CFG_AUXINT) != 0;
	else if (n.ob_full)
		n.kbd_level = (n.ram[0] & CFG_KBDINT) != 0;
	if (kl != (n.kbd_level != 0) || al != (n.aux_level != 0))
		return refuse(err, errlen,
			      "IRQ levels %d/%d do not match the output buffer",
			      kl, al);
	if (armed && !k->kbd.has_timer)
		return refuse(err, errlen,
			      "typematic repeat armed, but this keyboard has no timers");

	/* Commit: everything but the timer, which stays linked (or not)
	 * in its queue as this device's own. */
	if (k->kbd.has_timer)
		vtimer_del(&k->kbd.timer);
	timer = k->kbd.timer;
	*k = n;
	k->kbd.timer = timer;
	if (armed)
		vtimer_mod(&k->kbd.timer,
			   vclock_now(vtimer_queue_clock(timer.q)) + remain);
	/* Drive the outputs to their levels: IRQ 1, IRQ 12, A20 (the reset
	 * line is a pulse, never re-sent). */
	irq_line_set(&k->kbd_irq, k->kbd_level);
	irq_line_set(&k->aux_irq, k->aux_level);
	if (k->ops && k->ops->set_a20)
		k->ops->set_a20(k->opaque, k->outport & OUT_A20);
	return 0;
}

const struct device_ops i8042_device_ops = {
	.name = "i8042",
	.reset = i8042_dev_reset,
	.save = i8042_save,
	.load = i8042_load,
	.state_version = I8042_STATE_VERSION,
	.free = i8042_dev_free,
};
