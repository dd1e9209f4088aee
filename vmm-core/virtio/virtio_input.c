/* SPDX-License-Identifier: MIT */
/*
 * The virtio input device, virtio 1.2 §5.8: a keyboard and a tablet.  See
 * virtio_input.h.
 *
 * The device keeps the state it has queued for the guest: keys and
 * buttons down (a bitmap over EV_KEY codes) and the tablet's position.  A
 * report is the difference between that state and what the console asks
 * for, so nothing unchanged is sent.  When reports are dropped (the guest
 * stopped taking events), the codes they carried are marked dirty and the
 * next report sends their state again: the guest may miss steps, never end
 * with a key held that the host let go (its input core would repeat it).
 *
 * Rule of the queues here, as in virtio-net: every chain popped is pushed
 * or given back before the device lock is dropped, so nothing is ever in
 * flight between two calls and a save never waits for one.
 */
#include "virtio_input.h"

#include <errno.h>
#include <linux/input-event-codes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "../display/console.h"
#include "../input/keymap.h"
#include "../log.h"
#include "virtio_pci.h"

#define KEY_BYTES	(KEY_CNT / 8)		/* a bitmap of EV_KEY codes */
#define BUS_VIRTUAL	0x06			/* <linux/input.h> */
#define MAX_ENTRIES	8			/* config answers per kind */
/* The longest report: every declared key resent, a key, two axes, the
 * wheel, SYN_REPORT. */
#define REPORT_MAX	(8 * KEYMAP_KEYS_BYTES + 5 + 2 + 1 + 1)
#define TABLET_BTNS	5

struct vin_event {
	uint16_t type, code;
	uint32_t value;
};

/* One answer of the configuration space: u for (select, subsel). */
struct cfg_entry {
	uint8_t select, subsel, size;
	uint8_t u[VIRTIO_INPUT_CFG_U_LEN];
};

/* What the console asks a report to bring about. */
struct vin_want {
	unsigned nkeys;
	uint16_t code[TABLET_BTNS];
	bool down[TABLET_BTNS];
	bool pos;
	uint32_t x, y;
	int32_t wheel;			/* REL_WHEEL: + away from the user */
};

struct virtio_input {
	struct virtio_pci *vp;
	enum virtio_input_kind kind;
	struct cfg_entry cfg[MAX_ENTRIES];	/* fixed by the kind */
	unsigned ncfg;

	/* Driver-visible state, back to its reset values in vin_reset(). */
	uint8_t select, subsel;
	uint8_t view[VIRTIO_INPUT_CFG_LEN];	/* derived: select, subsel */
	uint8_t leds;				/* CONSOLE_LED_* */
	/* What the queued reports leave the guest with. */
	uint8_t down[KEY_BYTES];		/* EV_KEY codes held */
	uint8_t dirty[KEY_BYTES];		/* ... whose events were dropped */
	bool have_pos;				/* x, y sent (and not dropped) */
	uint32_t x, y;
	struct vin_event pending[VIRTIO_INPUT_PENDING_MAX];
	unsigned npending;
	bool head_started;		/* pending[0] continues a report */

	struct virtio_input_stats stats;
};

static const struct {
	unsigned btn;			/* CONSOLE_BTN_* */
	uint16_t code;
} tablet_buttons[TABLET_BTNS] = {
	{ CONSOLE_BTN_LEFT, BTN_LEFT }, { CONSOLE_BTN_RIGHT, BTN_RIGHT },
	{ CONSOLE_BTN_MIDDLE, BTN_MIDDLE }, { CONSOLE_BTN_SIDE, BTN_SIDE },
	{ CONSOLE_BTN_EXTRA, BTN_EXTRA },
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static bool bit(const uint8_t *map, unsigned n)
{
	return map[n / 8] >> (n % 8) & 1;
}

static void set_bit(uint8_t *map, unsigned n, bool on)
{
	if (on)
		map[n / 8] |= (uint8_t)(1u << (n % 8));
	else
		map[n / 8] &= (uint8_t)~(1u << (n % 8));
}

/* ---- configuration space --------------------------------------------------- */

static struct cfg_entry *add_entry(struct virtio_input *vi, uint8_t select,
				   uint8_t subsel)
{
	struct cfg_entry *e = &vi->cfg[vi->ncfg++];

	e->select = select;
	e->subsel = subsel;
	return e;
}

static void add_string(struct virtio_input *vi, uint8_t select, const char *s)
{
	struct cfg_entry *e = add_entry(vi, select, 0);

	e->size = (uint8_t)strlen(s);
	memcpy(e->u, s, e->size);
}

/* EV_BITS for @type: the bitmap up to its last byte with a bit set. */
static void add_bits(struct virtio_input *vi, uint8_t type, const uint8_t *map,
		     unsigned len)
{
	struct cfg_entry *e = add_entry(vi, VIRTIO_INPUT_CFG_EV_BITS, type);

	memcpy(e->u, map, len);
	while (len && !map[len - 1])
		len--;
	e->size = (uint8_t)len;
}

static void add_abs(struct virtio_input *vi, uint8_t axis)
{
	struct cfg_entry *e = add_entry(vi, VIRTIO_INPUT_CFG_ABS_INFO, axis);

	e->size = 20;			/* min, max, fuzz, flat, res */
	put32(e->u + 4, CONSOLE_ABS_MAX);
}

/* The answers of each kind (virtio_input.h). */
static void build_config(struct virtio_input *vi)
{
	bool kbd = vi->kind == VIRTIO_INPUT_KEYBOARD;
	uint8_t map[KEY_BYTES] = { 0 };
	struct cfg_entry *e;

	add_string(vi, VIRTIO_INPUT_CFG_ID_NAME,
		   kbd ? "Vivarium Virtio Keyboard" : "Vivarium Virtio Tablet");
	add_string(vi, VIRTIO_INPUT_CFG_ID_SERIAL,
		   kbd ? "vivarium-keyboard" : "vivarium-tablet");
	e = add_entry(vi, VIRTIO_INPUT_CFG_ID_DEVIDS, 0);
	e->size = 8;
	put16(e->u, BUS_VIRTUAL);
	put16(e->u + 2, 0x0627);
	put16(e->u + 4, kbd ? 0x0001 : 0x0003);
	put16(e->u + 6, 0x0001);
	if (kbd) {
		keymap_keys(map);
		add_bits(vi, EV_KEY, map, KEYMAP_KEYS_BYTES);
		e = add_entry(vi, VIRTIO_INPUT_CFG_EV_BITS, EV_REP);
		e->size = 1;		/* no codes: the type alone */
		memset(map, 0, sizeof(map));
		set_bit(map, LED_NUML, true);
		set_bit(map, LED_CAPSL, true);
		set_bit(map, LED_SCROLLL, true);
		add_bits(vi, EV_LED, map, 1);
		return;
	}
	for (unsigned i = 0; i < TABLET_BTNS; i++)
		set_bit(map, tablet_buttons[i].code, true);
	add_bits(vi, EV_KEY, map, KEY_BYTES);
	memset(map, 0, sizeof(map));
	set_bit(map, REL_WHEEL, true);
	add_bits(vi, EV_REL, map, 2);
	memset(map, 0, sizeof(map));
	set_bit(map, ABS_X, true);
	set_bit(map, ABS_Y, true);
	add_bits(vi, EV_ABS, map, 1);
	add_abs(vi, ABS_X);
	add_abs(vi, ABS_Y);
}

static const struct cfg_entry *find_entry(const struct virtio_input *vi,
					  uint8_t select, uint8_t subsel)
{
	for (unsigned i = 0; i < vi->ncfg; i++)
		if (vi->cfg[i].select == select && vi->cfg[i].subsel == subsel)
			return &vi->cfg[i];
	return NULL;
}

/* Does the device declare EV_KEY/EV_REL/EV_ABS code @code of @type? */
static bool declared(const struct virtio_input *vi, uint16_t type,
		     uint16_t code)
{
	const struct cfg_entry *e = find_entry(vi, VIRTIO_INPUT_CFG_EV_BITS,
					       (uint8_t)type);

	return e && type != EV_REP && type != EV_LED && code / 8 < e->size &&
	       bit(e->u, code);
}

/* The view of select/subsel: what config_read returns. */
static void update_view(struct virtio_input *vi)
{
	const struct cfg_entry *e = find_entry(vi, vi->select, vi->subsel);

	memset(vi->view, 0, sizeof(vi->view));
	vi->view[VIRTIO_INPUT_CFG_SELECT] = vi->select;
	vi->view[VIRTIO_INPUT_CFG_SUBSEL] = vi->subsel;
	if (!e)
		return;
	vi->view[VIRTIO_INPUT_CFG_SIZE] = e->size;
	memcpy(vi->view + VIRTIO_INPUT_CFG_U, e->u, e->size);
}

static uint64_t config_read(void *opaque, unsigned offset, unsigned size)
{
	struct virtio_input *vi = opaque;
	uint64_t v = 0;

	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)vi->view[offset + i] << (8 * i);
	return v;
}

/* Only select and subsel are the driver's to write (§5.8.4). */
static void config_write(void *opaque, unsigned offset, unsigned size,
			 uint64_t value)
{
	struct virtio_input *vi = opaque;

	for (unsigned i = 0; i < size; i++, value >>= 8) {
		if (offset + i == VIRTIO_INPUT_CFG_SELECT)
			vi->select = (uint8_t)value;
		else if (offset + i == VIRTIO_INPUT_CFG_SUBSEL)
			vi->subsel = (uint8_t)value;
	}
	update_view(vi);
}

/* ---- events to the guest --------------------------------------------------- */

/* Queue @q may be used now: the driver runs it, nothing is broken. */
static bool queue_live(struct virtio_input *vi, unsigned q)
{
	struct virtq *vq = virtio_pci_queue(vi->vp, q);
	uint8_t s = virtio_pci_status(vi->vp);

	return (s & (VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_NEEDS_RESET)) ==
	       VIRTIO_CONFIG_S_DRIVER_OK && vq->ready && !vq->broken;
}

/* Hand the pending events to the eventq's buffers, one each, in order. */
static void deliver(struct virtio_input *vi)
{
	struct virtq *vq = virtio_pci_queue(vi->vp, VIRTIO_INPUT_EVENTQ);
	unsigned done = 0;

	if (!queue_live(vi, VIRTIO_INPUT_EVENTQ))
		return;
	while (done < vi->npending) {
		const struct vin_event *ev = &vi->pending[done];
		uint8_t b[VIRTIO_INPUT_EVENT_LEN];
		struct virtq_elem e;
		int r = virtq_pop(vq, &e);

		/* Empty: ask for a kick, then look again (a buffer added
		 * meanwhile would bring none). */
		if (r == 0 && virtq_enable_notify(vq))
			r = virtq_pop(vq, &e);
		if (r != 1)
			break;		/* empty, broken, or out of memory */
		if (e.out_num || e.in_len < VIRTIO_INPUT_EVENT_LEN) {
			vlog_ratelimited(LOG_WARN, "virtio-input: event chain with %llu readable and %llu writable bytes",
					 (unsigned long long)e.out_len,
					 (unsigned long long)e.in_len);
			virtq_unpop(vq, &e);
			virtq_elem_release(&e);
			virtq_set_broken(vq);
			break;
		}
		put16(b, ev->type);
		put16(b + 2, ev->code);
		put32(b + 4, ev->value);
		iov_from_buf(e.iov, e.in_num, 0, b, sizeof(b));
		virtq_push(vq, &e, sizeof(b));
		virtq_elem_release(&e);
		vi->head_started = ev->type != EV_SYN;
		done++;
	}
	if (!done)
		return;
	vi->npending -= done;
	memmove(vi->pending, vi->pending + done,
		vi->npending * sizeof(vi->pending[0]));
	vi->stats.delivered += done;
	virtio_pci_notify_used(vi->vp, VIRTIO_INPUT_EVENTQ);
}

/* Drop the oldest whole report not begun; its keys and position are sent
 * again with the next report.  False if there is none. */
static bool drop_oldest(struct virtio_input *vi)
{
	unsigned from = 0, to;

	if (vi->head_started)
		while (from < vi->npending && vi->pending[from++].type != EV_SYN)
			;
	for (to = from; to < vi->npending && vi->pending[to].type != EV_SYN; to++) {
		if (vi->pending[to].type == EV_KEY)
			set_bit(vi->dirty, vi->pending[to].code, true);
		else if (vi->pending[to].type == EV_ABS)
			vi->have_pos = false;
	}
	if (to == vi->npending)
		return false;		/* only the report begun, or nothing */
	to++;				/* and its SYN_REPORT */
	memmove(vi->pending + from, vi->pending + to,
		(vi->npending - to) * sizeof(vi->pending[0]));
	vi->npending -= to - from;
	vi->stats.dropped += to - from;
	vlog_ratelimited(LOG_WARN, "virtio-input: the guest takes no input events: %u waiting, a report dropped",
			 vi->npending);
	return true;
}

/* The report that brings the guest from the queued state to @w (and
 * resends what was dropped); 0 events when nothing changes. */
static unsigned build_report(const struct virtio_input *vi,
			     const struct vin_want *w, struct vin_event *ev)
{
	unsigned n = 0;

	if (w->pos && (!vi->have_pos || w->x != vi->x))
		ev[n++] = (struct vin_event){ EV_ABS, ABS_X, w->x };
	if (w->pos && (!vi->have_pos || w->y != vi->y))
		ev[n++] = (struct vin_event){ EV_ABS, ABS_Y, w->y };
	for (unsigned c = 0; c < KEY_CNT; c++) {
		bool wanted = false;

		if (!vi->dirty[c / 8]) {
			c |= 7;
			continue;
		}
		for (unsigned i = 0; i < w->nkeys; i++)
			wanted |= w->code[i] == c;
		if (bit(vi->dirty, c) && !wanted)
			ev[n++] = (struct vin_event){ EV_KEY, (uint16_t)c,
						      bit(vi->down, c) };
	}
	for (unsigned i = 0; i < w->nkeys; i++)
		if (w->down[i] != bit(vi->down, w->code[i]) ||
		    bit(vi->dirty, w->code[i]))
			ev[n++] = (struct vin_event){ EV_KEY, w->code[i], w->down[i] };
	if (w->wheel)
		ev[n++] = (struct vin_event){ EV_REL, REL_WHEEL, (uint32_t)w->wheel };
	if (n)
		ev[n++] = (struct vin_event){ EV_SYN, SYN_REPORT, 0 };
	return n;
}

/* The guest will have seen @ev. */
static void apply(struct virtio_input *vi, const struct vin_event *ev,
		  unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (ev[i].type == EV_KEY) {
			set_bit(vi->down, ev[i].code, ev[i].value);
			set_bit(vi->dirty, ev[i].code, false);
		} else if (ev[i].type == EV_ABS) {
			*(ev[i].code == ABS_X ? &vi->x : &vi->y) = ev[i].value;
			vi->have_pos = true;
		}
	}
}

/* Queue the report for @w, dropping old ones beyond the limit, and
 * deliver what the buffers take. */
static void send(struct virtio_input *vi, const struct vin_want *w)
{
	struct vin_event ev[REPORT_MAX];
	unsigned n;

	if (!queue_live(vi, VIRTIO_INPUT_EVENTQ))
		return;		/* the console asks only active devices */
	for (;;) {
		n = build_report(vi, w, ev);
		if (vi->npending + n <= VIRTIO_INPUT_PENDING_MAX ||
		    !drop_oldest(vi))
			break;
	}
	if (!n)
		return;
	if (vi->npending + n > VIRTIO_INPUT_PENDING_MAX) {
		/* Cannot happen (REPORT_MAX is well below the limit): drop
		 * this one rather than a report begun. */
		for (unsigned i = 0; i < n; i++)
			if (ev[i].type == EV_KEY)
				set_bit(vi->dirty, ev[i].code, true);
		vi->stats.dropped += n;
		return;
	}
	memcpy(vi->pending + vi->npending, ev, n * sizeof(ev[0]));
	vi->npending += n;
	apply(vi, ev, n);
	deliver(vi);
}

/* ---- the status queue ---------------------------------------------------- */

static void status_event(struct virtio_input *vi, const uint8_t *b)
{
	uint16_t type = (uint16_t)(b[0] | b[1] << 8);
	uint16_t code = (uint16_t)(b[2] | b[3] << 8);
	uint32_t value = (uint32_t)(b[4] | b[5] << 8 | b[6] << 16) |
			 (uint32_t)b[7] << 24;
	static const uint8_t led_bit[] = {
		[LED_NUML] = CONSOLE_LED_NUM, [LED_CAPSL] = CONSOLE_LED_CAPS,
		[LED_SCROLLL] = CONSOLE_LED_SCROLL,
	};

	vi->stats.status++;
	/* EV_LED for the LEDs a keyboard declares; EV_REP and the rest of
	 * what the guest's input core passes down mean nothing here. */
	if (type != EV_LED || vi->kind != VIRTIO_INPUT_KEYBOARD ||
	    code >= sizeof(led_bit))
		return;
	if (value)
		vi->leds |= led_bit[code];
	else
		vi->leds &= (uint8_t)~led_bit[code];
}

/* Read what the driver sent, at most a queue's worth per notify. */
static void status_run(struct virtio_input *vi)
{
	struct virtq *vq = virtio_pci_queue(vi->vp, VIRTIO_INPUT_STATUSQ);
	unsigned budget = vq->size;
	bool pushed = false;
	struct virtq_elem e;
	int r = 0;

	if (!queue_live(vi, VIRTIO_INPUT_STATUSQ))
		return;
	do {
		virtq_disable_notify(vq);
		while (budget && (r = virtq_pop(vq, &e)) == 1) {
			uint8_t b[VIRTIO_INPUT_EVENT_LEN];

			if (e.in_num) {
				vlog_ratelimited(LOG_WARN, "virtio-input: status chain with %llu writable bytes",
						 (unsigned long long)e.in_len);
				virtq_unpop(vq, &e);
				virtq_elem_release(&e);
				virtq_set_broken(vq);
				goto out;
			}
			if (e.out_len >= sizeof(b)) {
				iov_to_buf(e.iov, e.out_num, 0, b, sizeof(b));
				status_event(vi, b);
			} else {
				vlog_ratelimited(LOG_WARN, "virtio-input: status chain of %llu bytes, shorter than an event",
						 (unsigned long long)e.out_len);
			}
			virtq_push(vq, &e, 0);
			virtq_elem_release(&e);
			pushed = true;
			budget--;
		}
	} while (r == 0 && budget && virtq_enable_notify(vq));
	if (r == 1 || r == -ENOMEM)
		virtq_enable_notify(vq);	/* the next kick comes back */
out:
	if (pushed)
		virtio_pci_notify_used(vi->vp, VIRTIO_INPUT_STATUSQ);
}

/* ---- the transport's callbacks --------------------------------------------- */

static void queue_notify(void *opaque, unsigned q)
{
	struct virtio_input *vi = opaque;

	if (q == VIRTIO_INPUT_EVENTQ)
		deliver(vi);		/* new buffers */
	else
		status_run(vi);
}

/* The transport was reset (also while it is built). */
static void vin_reset(void *opaque)
{
	struct virtio_input *vi = opaque;

	vi->select = vi->subsel = 0;
	update_view(vi);
	vi->leds = 0;
	memset(vi->down, 0, sizeof(vi->down));
	memset(vi->dirty, 0, sizeof(vi->dirty));
	vi->have_pos = false;
	vi->x = vi->y = 0;
	vi->npending = 0;
	vi->head_started = false;
}

static const struct virtio_pci_ops vin_pci_ops = {
	.config_read = config_read,
	.config_write = config_write,
	.queue_notify = queue_notify,
	.reset = vin_reset,
};

struct virtio_input *virtio_input_new(const struct virtio_input_config *cfg,
				      char *err, size_t errlen)
{
	struct virtio_pci_config pc;
	struct virtio_input *vi;
	int r;

	if (!cfg->pci || !cfg->mem || (cfg->kind != VIRTIO_INPUT_KEYBOARD &&
				       cfg->kind != VIRTIO_INPUT_TABLET)) {
		snprintf(err, errlen, "virtio-input: incomplete configuration");
		return NULL;
	}
	vi = calloc(1, sizeof(*vi));
	if (!vi) {
		snprintf(err, errlen, "virtio-input: out of memory");
		return NULL;
	}
	vi->kind = cfg->kind;
	build_config(vi);
	vin_reset(vi);
	pc = (struct virtio_pci_config){
		.pci = cfg->pci, .devfn = cfg->devfn, .mem = cfg->mem,
		.device_id = VIRTIO_ID_INPUT,
		.class_code = 0x098000,		/* input device, other */
		.num_queues = 2,
		.queue_size = VIRTIO_INPUT_QUEUE_SIZE,
		.config_len = VIRTIO_INPUT_CFG_LEN,
		.ops = &vin_pci_ops, .opaque = vi, .iofd = cfg->iofd,
	};
	vi->vp = virtio_pci_new(&pc, &r);
	if (!vi->vp) {
		snprintf(err, errlen, "virtio-input: cannot add PCI device %02x.%u: %s",
			 cfg->devfn >> 3, cfg->devfn & 7,
			 r == -EEXIST ? "slot in use" : strerror(-r));
		free(vi);
		return NULL;
	}
	return vi;
}

void virtio_input_free(struct virtio_input *vi)
{
	if (!vi)
		return;
	virtio_pci_free(vi->vp);
	free(vi);
}

void virtio_input_get_stats(const struct virtio_input *vi,
			    struct virtio_input_stats *st)
{
	*st = vi->stats;
}

unsigned virtio_input_pending(const struct virtio_input *vi)
{
	return vi->npending;
}

struct virtio_pci *virtio_input_transport(struct virtio_input *vi)
{
	return vi->vp;
}

/* ---- the console's side ---------------------------------------------------- */

static bool vin_active(void *opaque)
{
	return queue_live(opaque, VIRTIO_INPUT_EVENTQ);
}

static void vin_key(void *opaque, unsigned keycode, bool down)
{
	struct virtio_input *vi = opaque;
	struct vin_want w = { .nkeys = 1, .code = { (uint16_t)keycode },
			      .down = { down } };

	if (keycode < KEY_CNT && declared(vi, EV_KEY, (uint16_t)keycode))
		send(vi, &w);
}

static unsigned vin_leds(void *opaque)
{
	return ((struct virtio_input *)opaque)->leds;
}

static void vin_abs(void *opaque, unsigned x, unsigned y, int dz,
		    unsigned buttons)
{
	struct virtio_input *vi = opaque;
	struct vin_want w = {
		.nkeys = TABLET_BTNS, .pos = true,
		.x = x > CONSOLE_ABS_MAX ? CONSOLE_ABS_MAX : x,
		.y = y > CONSOLE_ABS_MAX ? CONSOLE_ABS_MAX : y,
		/* The console's dz is towards the user; REL_WHEEL away. */
		.wheel = dz < -0x7fff ? 0x7fff : dz > 0x7fff ? -0x7fff : -dz,
	};

	if (vi->kind != VIRTIO_INPUT_TABLET)
		return;		/* the console asks ABS devices only */
	for (unsigned i = 0; i < TABLET_BTNS; i++) {
		w.code[i] = tablet_buttons[i].code;
		w.down[i] = buttons & tablet_buttons[i].btn;
	}
	send(vi, &w);
}

const struct console_input_dev_ops virtio_keyboard_input_ops = {
	.name = "virtio-keyboard",
	.caps = CONSOLE_INPUT_KEY,
	.active = vin_active,
	.key = vin_key,
	.leds = vin_leds,
};

const struct console_input_dev_ops virtio_tablet_input_ops = {
	.name = "virtio-tablet",
	.caps = CONSOLE_INPUT_ABS,
	.prio = 0,
	.active = vin_active,
	.abs = vin_abs,
};

/* ---- the machine's device table ---------------------------------------- */

static const char *dev_name(const struct virtio_input *vi)
{
	return vi->kind == VIRTIO_INPUT_KEYBOARD ? "virtio-keyboard"
						 : "virtio-tablet";
}

static void vin_dev_reset(void *dev)
{
	virtio_pci_reset(((struct virtio_input *)dev)->vp);
}

static void vin_dev_free(void *dev)
{
	virtio_input_free(dev);
}

static GVariant *bytes(const void *p, size_t len)
{
	return g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, p, len, 1);
}

static GVariant *vin_dev_save(void *dev)
{
	struct virtio_input *vi = dev;
	GVariant *t = virtio_pci_save(vi->vp);
	GVariantBuilder b;

	if (!t) {
		vlog(LOG_ERROR, "%s: buffers in flight: not saved", dev_name(vi));
		return NULL;
	}
	g_variant_builder_init(&b, G_VARIANT_TYPE("a(qqu)"));
	for (unsigned i = 0; i < vi->npending; i++)
		g_variant_builder_add(&b, "(qqu)", vi->pending[i].type,
				      vi->pending[i].code, vi->pending[i].value);
	return g_variant_new("(@" VIRTIO_PCI_STATE_TYPE "yyybuu@ay@aya(qqu)b)",
			     t, vi->select, vi->subsel, vi->leds,
			     (gboolean)vi->have_pos, vi->x, vi->y,
			     bytes(vi->down, KEY_BYTES), bytes(vi->dirty, KEY_BYTES),
			     &b, (gboolean)vi->head_started);
}

/* A key bitmap of the state: KEY_BYTES, only codes the device declares. */
static bool keys_ok(const struct virtio_input *vi, GVariant *v,
		    const char *what, char *err, size_t errlen)
{
	const uint8_t *p = g_variant_get_data(v);
	gsize n = g_variant_get_size(v);

	if (n != KEY_BYTES) {
		snprintf(err, errlen, "%s: %s bitmap of %zu bytes, not %d",
			 dev_name(vi), what, (size_t)n, KEY_BYTES);
		return false;
	}
	for (unsigned c = 0; c < KEY_CNT; c++) {
		if (bit(p, c) && !declared(vi, EV_KEY, (uint16_t)c)) {
			snprintf(err, errlen, "%s: %s key %u, which the device does not have",
				 dev_name(vi), what, c);
			return false;
		}
	}
	return true;
}

/* The pending events: whole reports (but a first one begun) of codes the
 * device declares, values in range.  Fills @out. */
static bool events_ok(const struct virtio_input *vi, GVariant *v,
		      bool started, struct vin_event *out, unsigned *nout,
		      char *err, size_t errlen)
{
	gsize n = g_variant_n_children(v);

	if (n > VIRTIO_INPUT_PENDING_MAX || (started && !n)) {
		snprintf(err, errlen, "%s: %zu events pending%s (at most %d)",
			 dev_name(vi), (size_t)n, started ? ", a report begun" : "",
			 VIRTIO_INPUT_PENDING_MAX);
		return false;
	}
	for (gsize i = 0; i < n; i++) {
		struct vin_event *e = &out[i];
		bool ok;

		g_variant_get_child(v, i, "(qqu)", &e->type, &e->code, &e->value);
		switch (e->type) {
		case EV_SYN:
			ok = e->code == SYN_REPORT && !e->value;
			break;
		case EV_KEY:
			ok = declared(vi, e->type, e->code) && e->value <= 1;
			break;
		case EV_ABS:
			ok = declared(vi, e->type, e->code) &&
			     e->value <= CONSOLE_ABS_MAX;
			break;
		case EV_REL:
			ok = declared(vi, e->type, e->code);
			break;
		default:
			ok = false;
		}
		if (!ok) {
			snprintf(err, errlen, "%s: pending event %zu (type %u, code %u, value %u) out of range",
				 dev_name(vi), (size_t)i, e->type, e->code, e->value);
			return false;
		}
	}
	if (n && out[n - 1].type != EV_SYN) {
		snprintf(err, errlen, "%s: pending events end inside a report",
			 dev_name(vi));
		return false;
	}
	*nout = (unsigned)n;
	return true;
}

static int vin_dev_load(void *dev, uint32_t version, GVariant *state,
			char *err, size_t errlen)
{
	struct virtio_input *vi = dev;
	GVariant *t = NULL, *down = NULL, *dirty = NULL, *ev = NULL;
	struct vin_event events[VIRTIO_INPUT_PENDING_MAX];
	guchar select, subsel, leds;
	gboolean have_pos, started;
	guint32 x, y;
	unsigned n = 0;
	int r;

	r = device_state_check(dev_name(vi), version, 1, state,
			       VIRTIO_INPUT_STATE_TYPE, err, errlen);
	if (r < 0)
		return r;
	g_variant_get(state, "(@" VIRTIO_PCI_STATE_TYPE "yyybuu@ay@ay@a(qqu)b)",
		      &t, &select, &subsel, &leds, &have_pos, &x, &y, &down,
		      &dirty, &ev, &started);
	r = -EINVAL;
	if (leds & ~(vi->kind == VIRTIO_INPUT_KEYBOARD ?
		     CONSOLE_LED_NUM | CONSOLE_LED_CAPS | CONSOLE_LED_SCROLL : 0))
		snprintf(err, errlen, "%s: LEDs 0x%x out of range", dev_name(vi), leds);
	else if ((vi->kind == VIRTIO_INPUT_KEYBOARD && (have_pos || x || y)) ||
		 x > CONSOLE_ABS_MAX || y > CONSOLE_ABS_MAX)
		snprintf(err, errlen, "%s: position %u,%u out of range",
			 dev_name(vi), x, y);
	else if (!keys_ok(vi, down, "held", err, errlen) ||
		 !keys_ok(vi, dirty, "resent", err, errlen) ||
		 !events_ok(vi, ev, started, events, &n, err, errlen))
		;
	else
		r = virtio_pci_load(vi->vp, t, dev_name(vi), err, errlen);
	if (r == 0) {
		vi->select = select;
		vi->subsel = subsel;
		update_view(vi);
		vi->leds = leds;
		vi->have_pos = have_pos;
		vi->x = x;
		vi->y = y;
		memcpy(vi->down, g_variant_get_data(down), KEY_BYTES);
		memcpy(vi->dirty, g_variant_get_data(dirty), KEY_BYTES);
		memcpy(vi->pending, events, n * sizeof(events[0]));
		vi->npending = n;
		vi->head_started = started;
	}
	g_variant_unref(t);
	g_variant_unref(down);
	g_variant_unref(dirty);
	g_variant_unref(ev);
	return r;
}

const struct device_ops virtio_keyboard_device_ops = {
	.name = "virtio-keyboard",
	.reset = vin_dev_reset,
	.save = vin_dev_save,
	.load = vin_dev_load,
	.state_version = 1,
	.free = vin_dev_free,
};

const struct device_ops virtio_tablet_device_ops = {
	.name = "virtio-tablet",
	.reset = vin_dev_reset,
	.save = vin_dev_save,
	.load = vin_dev_load,
	.state_version = 1,
	.free = vin_dev_free,
};
