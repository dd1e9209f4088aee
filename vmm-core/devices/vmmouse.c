/* SPDX-License-Identifier: MIT */
/*
 * The VMware vmmouse: a queue of pointer packets read through the
 * backdoor port, announced by PS/2 mouse interrupts.  The protocol is in
 * vmmouse.h; it is what Linux's drivers/input/mouse/vmmouse.c and the
 * open-vm-tools / Xorg vmmouse clients expect.
 */
#include "vmmouse.h"

#include <glib.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "../display/console.h"
#include "../log.h"
#include "i8042.h"

#define PACKET_WORDS	4
#define DATA_MAX_WORDS	6	/* EAX, EBX, ECX, EDX, ESI, EDI */

struct vmmouse {
	struct i8042 *kbc;
	bool enabled, absolute;
	uint32_t q[VMMOUSE_QUEUE_WORDS];
	unsigned head, len;		/* words, oldest at head */
};

/* ---- the queue ----------------------------------------------------------- */

static void q_clear(struct vmmouse *v)
{
	v->head = v->len = 0;
}

static void q_push(struct vmmouse *v, uint32_t w)
{
	v->q[(v->head + v->len) % VMMOUSE_QUEUE_WORDS] = w;
	v->len++;
}

static uint32_t q_pop(struct vmmouse *v)
{
	uint32_t w = v->q[v->head];

	v->head = (v->head + 1) % VMMOUSE_QUEUE_WORDS;
	v->len--;
	return w;
}

static uint32_t *q_at(struct vmmouse *v, unsigned i)
{
	return &v->q[(v->head + i) % VMMOUSE_QUEUE_WORDS];
}

static int32_t sat32(int64_t x)
{
	return x < INT32_MIN ? INT32_MIN : x > INT32_MAX ? INT32_MAX : (int32_t)x;
}

static int32_t wheel(int64_t dz)
{
	return dz < -128 ? -128 : dz > 127 ? 127 : (int32_t)dz;
}

/*
 * Queue one packet.  When full, the newest packet becomes this one
 * (the wheel, and motion between relative ones, add up), so the guest
 * still ends with
 * the latest position and buttons.  The words queued after an ENABLE are
 * a suffix of [version, packet, packet...], so with at least 4 words the
 * last 4 are the newest packet.
 */
static void push_packet(struct vmmouse *v, uint32_t flags, int32_t x,
			int32_t y, int32_t z)
{
	if (v->len + PACKET_WORDS > VMMOUSE_QUEUE_WORDS) {
		unsigned t = v->len - PACKET_WORDS;

		vlog_ratelimited(LOG_DEBUG, "vmmouse: queue full (the guest does not read it): merging");
		if (flags & *q_at(v, t) & VMMOUSE_RELATIVE_PACKET) {
			x = sat32((int64_t)x + (int32_t)*q_at(v, t + 1));
			y = sat32((int64_t)y + (int32_t)*q_at(v, t + 2));
		}
		z = wheel((int64_t)z + (int32_t)*q_at(v, t + 3));
		*q_at(v, t) = flags;
		*q_at(v, t + 1) = (uint32_t)x;
		*q_at(v, t + 2) = (uint32_t)y;
		*q_at(v, t + 3) = (uint32_t)z;
		return;
	}
	q_push(v, flags);
	q_push(v, (uint32_t)x);
	q_push(v, (uint32_t)y);
	q_push(v, (uint32_t)z);
}

static uint32_t button_flags(unsigned buttons)
{
	return (buttons & CONSOLE_BTN_LEFT ? VMMOUSE_LEFT_BUTTON : 0) |
	       (buttons & CONSOLE_BTN_RIGHT ? VMMOUSE_RIGHT_BUTTON : 0) |
	       (buttons & CONSOLE_BTN_MIDDLE ? VMMOUSE_MIDDLE_BUTTON : 0);
}

/* ---- host input ---------------------------------------------------------- */

bool vmmouse_active(struct vmmouse *v)
{
	return v->enabled && v->absolute;
}

static bool input_active(void *opaque)
{
	return vmmouse_active(opaque);
}

/* (@x, @y) already 0..VMMOUSE_ABS_MAX (abs_max in the ops below). */
static void input_abs(void *opaque, unsigned x, unsigned y, int dz,
		      unsigned buttons)
{
	struct vmmouse *v = opaque;

	if (!vmmouse_active(v))
		return;		/* the guest just turned it off */
	push_packet(v, button_flags(buttons),
		    (int32_t)(x > VMMOUSE_ABS_MAX ? VMMOUSE_ABS_MAX : x),
		    (int32_t)(y > VMMOUSE_ABS_MAX ? VMMOUSE_ABS_MAX : y), wheel(dz));
	i8042_aux_notify(v->kbc, buttons);
}

const struct console_input_dev_ops vmmouse_input_ops = {
	.name = "vmmouse",
	.caps = CONSOLE_INPUT_ABS,
	.prio = 2,	/* after the virtio (0) and USB (1) tablets */
	.abs_max = VMMOUSE_ABS_MAX,
	.active = input_active,
	.abs = input_abs,
};

/*
 * The PS/2 mouse's host input (a frontend pointing relatively: grabbed,
 * or one without absolute support) while the guest drives the vmmouse:
 * its driver ignores what the PS/2 packets say, so the motion goes
 * through the queue as relative packets, in either mode (Linux reports
 * each packet as its flag says, on its relative device).
 */
static bool hook_mouse(void *opaque, int dx, int dy, int dz, unsigned buttons)
{
	struct vmmouse *v = opaque;

	if (!v->enabled)
		return false;
	push_packet(v, button_flags(buttons) | VMMOUSE_RELATIVE_PACKET, dx,
		    sat32(-(int64_t)dy), wheel(dz));
	i8042_aux_notify(v->kbc, buttons);
	return true;
}

static void hook_reset(void *opaque)
{
	vmmouse_reset(opaque);
}

static const struct i8042_aux_hook aux_hook = {
	.mouse = hook_mouse,
	.reset = hook_reset,
};

/* ---- the backdoor --------------------------------------------------------- */

static void disable(struct vmmouse *v)
{
	v->enabled = v->absolute = false;
	q_clear(v);
}

static void command(struct vmmouse *v, uint32_t sub)
{
	switch (sub) {
	case VMMOUSE_CMD_ENABLE:
		/* A fresh start: the driver reads the version word next. */
		q_clear(v);
		q_push(v, VMMOUSE_VERSION_ID);
		v->enabled = true;
		v->absolute = false;
		break;
	case VMMOUSE_CMD_DISABLE:
		disable(v);
		break;
	case VMMOUSE_CMD_REQUEST_RELATIVE:
	case VMMOUSE_CMD_REQUEST_ABSOLUTE:
		if (v->enabled)
			v->absolute = sub == VMMOUSE_CMD_REQUEST_ABSOLUTE;
		break;
	default:
		vlog_ratelimited(LOG_INFO, "vmmouse: unknown command 0x%x", sub);
		break;
	}
}

/* DATA: @n words into EAX (returned), EBX, ECX, EDX, ESI, EDI. */
static uint32_t data(struct vmmouse *v, uint32_t n, struct io_regs *r)
{
	uint64_t *out[DATA_MAX_WORDS] = { NULL, &r->rbx, &r->rcx, &r->rdx,
					  &r->rsi, &r->rdi };
	uint32_t eax;

	if (!v->enabled || n == 0 || n > DATA_MAX_WORDS || n > v->len) {
		/* The protocol's error: the driver sees it in STATUS and
		 * starts over (disable, enable). */
		vlog_ratelimited(LOG_INFO, "vmmouse: %u words asked, %u queued%s: disabled",
				 n, v->len, v->enabled ? "" : " (disabled)");
		disable(v);
		return VMMOUSE_ERROR;
	}
	eax = q_pop(v);
	for (uint32_t i = 1; i < n; i++)
		*out[i] = q_pop(v);
	return eax;
}

uint32_t vmmouse_backdoor(void *opaque, unsigned size, bool is_write,
			  uint32_t value, struct io_regs *r)
{
	struct vmmouse *v = opaque;
	uint32_t eax = (uint32_t)r->rax;

	(void)value;
	if (is_write || size != 4) {
		vlog_ratelimited(LOG_INFO, "vmport: %u-byte %s ignored", size,
				 is_write ? "OUT" : "IN");
		return 0xffffffffu;
	}
	if (eax != VMPORT_MAGIC) {
		vlog_ratelimited(LOG_INFO, "vmport: IN without the magic (EAX 0x%x)", eax);
		return 0xffffffffu;
	}
	switch ((uint16_t)r->rcx) {
	case VMPORT_CMD_GETVERSION:
		r->rbx = VMPORT_MAGIC;
		return VMPORT_VERSION;
	case VMPORT_CMD_ABSPOINTER_STATUS:
		return v->enabled ? v->len : VMMOUSE_ERROR;
	case VMPORT_CMD_ABSPOINTER_DATA:
		return data(v, (uint32_t)r->rbx, r);
	case VMPORT_CMD_ABSPOINTER_COMMAND:
		command(v, (uint32_t)r->rbx);
		return eax;
	case VMPORT_CMD_ABSPOINTER_RESTRICT:
		/* Who may use the port: the CPU's I/O permission checks
		 * (IOPL, the TSS bitmap) apply before KVM exits to us. */
		return eax;
	default:
		vlog_ratelimited(LOG_INFO, "vmport: unknown command %u",
				 (unsigned)(uint16_t)r->rcx);
		return 0xffffffffu;
	}
}

/* ---- life cycle ----------------------------------------------------------- */

void vmmouse_reset(struct vmmouse *v)
{
	disable(v);
}

struct vmmouse *vmmouse_new(struct i8042 *kbc)
{
	struct vmmouse *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->kbc = kbc;
	if (kbc)
		i8042_set_aux_hook(kbc, &aux_hook, v);
	return v;
}

void vmmouse_free(struct vmmouse *v)
{
	if (!v)
		return;
	if (v->kbc)
		i8042_set_aux_hook(v->kbc, NULL, NULL);
	free(v);
}

static void dev_reset(void *dev)
{
	vmmouse_reset(dev);
}

static void dev_free(void *dev)
{
	vmmouse_free(dev);
}

/* ---- saved state (VMMOUSE_STATE_TYPE) ------------------------------------- */

#define VMMOUSE_STATE_VERSION 1u

static GVariant *vmmouse_save(void *dev)
{
	struct vmmouse *v = dev;
	uint32_t q[VMMOUSE_QUEUE_WORDS];

	for (unsigned i = 0; i < v->len; i++)
		q[i] = *q_at(v, i);
	return g_variant_new("(bb@au)", v->enabled, v->absolute,
			     g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32, q,
						       v->len, sizeof(q[0])));
}

static int vmmouse_load(void *dev, uint32_t version, GVariant *state,
			char *err, size_t errlen)
{
	struct vmmouse *v = dev;
	gboolean enabled, absolute;
	GVariant *qv;
	const uint32_t *q;
	gsize n = 0;
	int r;

	r = device_state_check("vmmouse", version, VMMOUSE_STATE_VERSION, state,
			       VMMOUSE_STATE_TYPE, err, errlen);
	if (r < 0)
		return r;
	g_variant_get(state, "(bb@au)", &enabled, &absolute, &qv);
	q = g_variant_get_fixed_array(qv, &n, sizeof(uint32_t));
	if (n > VMMOUSE_QUEUE_WORDS)
		r = device_load_fail(err, errlen, "vmmouse: %zu words queued, at most %u",
				     (size_t)n, VMMOUSE_QUEUE_WORDS);
	else if (!enabled && (absolute || n))
		r = device_load_fail(err, errlen, "vmmouse: disabled, yet %s",
				     absolute ? "absolute" : "words queued");
	if (r == 0) {
		v->enabled = enabled;
		v->absolute = absolute;
		q_clear(v);
		for (gsize i = 0; i < n; i++)
			q_push(v, q[i]);
	}
	g_variant_unref(qv);
	return r;
}

const struct device_ops vmmouse_device_ops = {
	.name = "vmmouse",
	.reset = dev_reset,
	.save = vmmouse_save,
	.load = vmmouse_load,
	.state_version = VMMOUSE_STATE_VERSION,
	.free = dev_free,
};
