/* SPDX-License-Identifier: MIT */
/*
 * The console: a surface the display adapter draws into, fanned out to
 * frontends, and input events routed back to the guest's devices.
 */
#include "console.h"

#include <errno.h>
#include <stdatomic.h>
#include <linux/input-event-codes.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LISTENERS 8
#define MAX_INPUTS 8

struct listener {
	const struct console_listener_ops *ops;
	void *opaque;
};

struct console {
	pthread_mutex_t lock;		/* surface, hw, listeners, dirty */
	struct console_surface surf;
	bool resized;			/* since the last refresh */
	bool full;			/* redraw all at the next refresh */
	unsigned dx0, dy0, dx1, dy1;	/* dirty bounding box (exclusive) */

	const struct console_hw_ops *hw;
	void *hw_opaque;
	pthread_mutex_t *hw_lock;
	/* console_set_size_agent(); under lock. */
	int (*size_agent)(void *opaque, unsigned width, unsigned height);
	void *size_agent_opaque;

	/* Input has its own lock: events come from frontends that may hold
	 * nothing else, and must not wait for a refresh. */
	pthread_mutex_t in_lock;
	const struct console_input_ops *in;
	void *in_opaque;
	pthread_mutex_t *in_dev_lock;
	struct {
		const struct console_input_dev_ops *ops;
		void *opaque;
		pthread_mutex_t *lock;
	} dev[MAX_INPUTS];
	unsigned ndev;
	/* Keys down on the PS/2 keyboard: their releases go there too, even
	 * if a keyboard the guest drives took over meanwhile (else the
	 * i8042 would repeat them for ever). */
	unsigned long ps2_down[(KEY_CNT + 8 * sizeof(long) - 1) / (8 * sizeof(long))];
	/* The surface's size for console_mouse_abs(), which must not wait
	 * for a refresh (the console lock). */
	_Atomic unsigned abs_w, abs_h;

	struct listener l[MAX_LISTENERS];
	unsigned nl;
};

static int surface_alloc(struct console_surface *s, unsigned w, unsigned h)
{
	uint32_t *p = calloc((size_t)w * h, 4);

	if (!p)
		return -ENOMEM;
	free(s->pixels);
	s->pixels = p;
	s->width = w;
	s->height = h;
	s->stride = w * 4;
	return 0;
}

static void publish_size(struct console *con)
{
	atomic_store(&con->abs_w, con->surf.width);
	atomic_store(&con->abs_h, con->surf.height);
}

struct console *console_new(void)
{
	struct console *con = calloc(1, sizeof(*con));

	if (!con)
		return NULL;
	if (surface_alloc(&con->surf, 640, 480)) {
		free(con);
		return NULL;
	}
	pthread_mutex_init(&con->lock, NULL);
	pthread_mutex_init(&con->in_lock, NULL);
	con->full = true;
	publish_size(con);
	return con;
}

void console_free(struct console *con)
{
	if (!con)
		return;
	pthread_mutex_destroy(&con->lock);
	pthread_mutex_destroy(&con->in_lock);
	free(con->surf.pixels);
	free(con);
}

void console_set_hw(struct console *con, const struct console_hw_ops *ops,
		    void *opaque, pthread_mutex_t *lock)
{
	pthread_mutex_lock(&con->lock);
	con->hw = ops;
	con->hw_opaque = opaque;
	con->hw_lock = lock;
	con->full = true;
	pthread_mutex_unlock(&con->lock);
}

void console_set_input(struct console *con,
		       const struct console_input_ops *ops, void *opaque,
		       pthread_mutex_t *lock)
{
	pthread_mutex_lock(&con->in_lock);
	con->in = ops;
	con->in_opaque = opaque;
	con->in_dev_lock = lock;
	memset(con->ps2_down, 0, sizeof(con->ps2_down));
	pthread_mutex_unlock(&con->in_lock);
}

int console_add_listener(struct console *con,
			 const struct console_listener_ops *ops, void *opaque)
{
	pthread_mutex_lock(&con->lock);
	if (con->nl == MAX_LISTENERS) {
		pthread_mutex_unlock(&con->lock);
		return -ENOSPC;
	}
	con->l[con->nl++] = (struct listener){ ops, opaque };
	if (ops->resize)
		ops->resize(opaque, &con->surf);
	pthread_mutex_unlock(&con->lock);
	return 0;
}

void console_remove_listener(struct console *con,
			     const struct console_listener_ops *ops,
			     void *opaque)
{
	pthread_mutex_lock(&con->lock);
	for (unsigned i = 0; i < con->nl; i++) {
		if (con->l[i].ops == ops && con->l[i].opaque == opaque) {
			memmove(&con->l[i], &con->l[i + 1],
				(con->nl - i - 1) * sizeof(con->l[0]));
			con->nl--;
			break;
		}
	}
	pthread_mutex_unlock(&con->lock);
}

static void dirty_all(struct console *con)
{
	con->dx0 = con->dy0 = 0;
	con->dx1 = con->surf.width;
	con->dy1 = con->surf.height;
}

bool console_refresh(struct console *con)
{
	bool changed = false;

	pthread_mutex_lock(&con->lock);
	if (con->hw) {
		bool full = con->full;

		con->full = false;
		if (full)
			dirty_all(con);
		pthread_mutex_lock(con->hw_lock);
		con->hw->update(con->hw_opaque, con, full);
		pthread_mutex_unlock(con->hw_lock);
	}
	if (con->resized) {
		con->resized = false;
		changed = true;
		for (unsigned i = 0; i < con->nl; i++)
			if (con->l[i].ops->resize)
				con->l[i].ops->resize(con->l[i].opaque,
						      &con->surf);
		con->dx0 = con->dx1 = con->dy0 = con->dy1 = 0;
	}
	if (con->dx1 > con->dx0 && con->dy1 > con->dy0) {
		changed = true;
		for (unsigned i = 0; i < con->nl; i++)
			if (con->l[i].ops->update)
				con->l[i].ops->update(con->l[i].opaque,
					&con->surf, con->dx0, con->dy0,
					con->dx1 - con->dx0,
					con->dy1 - con->dy0);
	}
	con->dx0 = con->dx1 = con->dy0 = con->dy1 = 0;
	pthread_mutex_unlock(&con->lock);
	return changed;
}

void console_invalidate(struct console *con)
{
	pthread_mutex_lock(&con->lock);
	con->full = true;
	pthread_mutex_unlock(&con->lock);
}

int console_resize(struct console *con, unsigned width, unsigned height)
{
	if (width < 1)
		width = 1;
	if (height < 1)
		height = 1;
	if (width > CONSOLE_MAX_WIDTH)
		width = CONSOLE_MAX_WIDTH;
	if (height > CONSOLE_MAX_HEIGHT)
		height = CONSOLE_MAX_HEIGHT;
	if (width == con->surf.width && height == con->surf.height) {
		dirty_all(con);
		return 0;
	}
	if (surface_alloc(&con->surf, width, height))
		return -ENOMEM;
	publish_size(con);
	con->resized = true;
	dirty_all(con);
	return 0;
}

struct console_surface *console_surface(struct console *con)
{
	return &con->surf;
}

void console_dirty(struct console *con, unsigned x, unsigned y, unsigned w,
		   unsigned h)
{
	unsigned x1, y1;

	if (x >= con->surf.width || y >= con->surf.height || !w || !h)
		return;
	x1 = w > con->surf.width - x ? con->surf.width : x + w;
	y1 = h > con->surf.height - y ? con->surf.height : y + h;
	if (con->dx1 <= con->dx0 || con->dy1 <= con->dy0) {
		con->dx0 = x;
		con->dy0 = y;
		con->dx1 = x1;
		con->dy1 = y1;
		return;
	}
	if (x < con->dx0)
		con->dx0 = x;
	if (y < con->dy0)
		con->dy0 = y;
	if (x1 > con->dx1)
		con->dx1 = x1;
	if (y1 > con->dy1)
		con->dy1 = y1;
}

int console_snapshot(struct console *con, struct console_surface *out)
{
	size_t n;

	pthread_mutex_lock(&con->lock);
	n = (size_t)con->surf.stride * con->surf.height;
	*out = con->surf;
	out->pixels = malloc(n ? n : 1);
	if (out->pixels)
		memcpy(out->pixels, con->surf.pixels, n);
	pthread_mutex_unlock(&con->lock);
	return out->pixels ? 0 : -ENOMEM;
}

int console_text(struct console *con, char *buf, size_t len)
{
	int r = -ENOTSUP;

	pthread_mutex_lock(&con->lock);
	if (con->hw && con->hw->text) {
		pthread_mutex_lock(con->hw_lock);
		r = con->hw->text(con->hw_opaque, buf, len);
		pthread_mutex_unlock(con->hw_lock);
	}
	pthread_mutex_unlock(&con->lock);
	return r;
}

int console_add_input(struct console *con,
		      const struct console_input_dev_ops *ops, void *opaque,
		      pthread_mutex_t *lock)
{
	pthread_mutex_lock(&con->in_lock);
	if (con->ndev == MAX_INPUTS) {
		pthread_mutex_unlock(&con->in_lock);
		return -ENOSPC;
	}
	con->dev[con->ndev].ops = ops;
	con->dev[con->ndev].opaque = opaque;
	con->dev[con->ndev].lock = lock;
	con->ndev++;
	pthread_mutex_unlock(&con->in_lock);
	return 0;
}

void console_remove_input(struct console *con,
			  const struct console_input_dev_ops *ops,
			  void *opaque)
{
	pthread_mutex_lock(&con->in_lock);
	for (unsigned i = 0; i < con->ndev; i++) {
		if (con->dev[i].ops == ops && con->dev[i].opaque == opaque) {
			memmove(&con->dev[i], &con->dev[i + 1],
				(con->ndev - i - 1) * sizeof(con->dev[0]));
			con->ndev--;
			break;
		}
	}
	pthread_mutex_unlock(&con->in_lock);
}

unsigned console_abs_scale(unsigned pos, unsigned size, unsigned max)
{
	uint64_t v;

	if (!size)
		return 0;
	if (pos >= size)
		pos = size - 1;
	v = ((2 * (uint64_t)pos + 1) * ((uint64_t)max + 1)) / (2 * (uint64_t)size);
	return v > max ? max : (unsigned)v;
}

/* The active device with @cap (lowest prio first for ABS, else the first
 * added); -1 if none.  In_lock held; takes each candidate's lock to ask. */
static int active_dev(struct console *con, unsigned cap)
{
	int best = -1;

	for (unsigned i = 0; i < con->ndev; i++) {
		const struct console_input_dev_ops *o = con->dev[i].ops;
		bool on;

		if (!(o->caps & cap))
			continue;
		if (best >= 0 && (cap != CONSOLE_INPUT_ABS ||
				  o->prio >= con->dev[best].ops->prio))
			continue;
		pthread_mutex_lock(con->dev[i].lock);
		on = !o->active || o->active(con->dev[i].opaque);
		pthread_mutex_unlock(con->dev[i].lock);
		if (on)
			best = (int)i;
	}
	return best;
}

bool console_mouse_abs(struct console *con, unsigned x, unsigned y, int dz,
		       unsigned buttons)
{
	unsigned w = atomic_load(&con->abs_w), h = atomic_load(&con->abs_h);
	int i;

	pthread_mutex_lock(&con->in_lock);
	i = active_dev(con, CONSOLE_INPUT_ABS);
	if (i >= 0 && con->dev[i].ops->abs) {
		unsigned max = con->dev[i].ops->abs_max ? con->dev[i].ops->abs_max
							: CONSOLE_ABS_MAX;

		pthread_mutex_lock(con->dev[i].lock);
		con->dev[i].ops->abs(con->dev[i].opaque,
				     console_abs_scale(x, w, max),
				     console_abs_scale(y, h, max), dz, buttons);
		pthread_mutex_unlock(con->dev[i].lock);
	}
	pthread_mutex_unlock(&con->in_lock);
	return i >= 0;
}

const char *console_pointer_abs(struct console *con)
{
	const char *name = NULL;
	int i;

	pthread_mutex_lock(&con->in_lock);
	i = active_dev(con, CONSOLE_INPUT_ABS);
	if (i >= 0)
		name = con->dev[i].ops->name;
	pthread_mutex_unlock(&con->in_lock);
	return name;
}

const char *console_keyboard(struct console *con)
{
	const char *name = "ps2";
	int i;

	pthread_mutex_lock(&con->in_lock);
	i = active_dev(con, CONSOLE_INPUT_KEY);
	if (i >= 0)
		name = con->dev[i].ops->name;
	pthread_mutex_unlock(&con->in_lock);
	return name;
}

void console_set_size_agent(struct console *con,
			    int (*fn)(void *opaque, unsigned width,
				      unsigned height),
			    void *opaque)
{
	pthread_mutex_lock(&con->lock);
	con->size_agent = fn;
	con->size_agent_opaque = opaque;
	pthread_mutex_unlock(&con->lock);
}

int console_request_size(struct console *con, unsigned width,
			 unsigned height)
{
	int r = -ENOTSUP, ra = -ENOTSUP;

	if (!width || !height || width > CONSOLE_MAX_WIDTH ||
	    height > CONSOLE_MAX_HEIGHT)
		return -EINVAL;
	pthread_mutex_lock(&con->lock);
	if (con->hw && con->hw->request_size) {
		pthread_mutex_lock(con->hw_lock);
		r = con->hw->request_size(con->hw_opaque, width, height);
		pthread_mutex_unlock(con->hw_lock);
	}
	/* Both: an X11 session may not follow the adapter's preferred mode,
	 * and the agent's size is the same one. */
	if (con->size_agent)
		ra = con->size_agent(con->size_agent_opaque, width, height);
	pthread_mutex_unlock(&con->lock);
	return r == 0 || ra == 0 ? 0 : r;
}

void console_key(struct console *con, unsigned keycode, bool down)
{
	const unsigned bits = 8 * sizeof(long);
	unsigned long *word = keycode < KEY_CNT ? &con->ps2_down[keycode / bits] : NULL;
	unsigned long mask = 1ul << (keycode % bits);
	int i = -1;

	pthread_mutex_lock(&con->in_lock);
	if (down || !word || !(*word & mask))
		i = active_dev(con, CONSOLE_INPUT_KEY);
	if (i >= 0 && con->dev[i].ops->key) {
		pthread_mutex_lock(con->dev[i].lock);
		con->dev[i].ops->key(con->dev[i].opaque, keycode, down);
		pthread_mutex_unlock(con->dev[i].lock);
	} else if (con->in && con->in->key) {
		if (word && down)
			*word |= mask;
		else if (word)
			*word &= ~mask;
		pthread_mutex_lock(con->in_dev_lock);
		con->in->key(con->in_opaque, keycode, down);
		pthread_mutex_unlock(con->in_dev_lock);
	}
	pthread_mutex_unlock(&con->in_lock);
}

void console_mouse(struct console *con, int dx, int dy, int dz,
		   unsigned buttons)
{
	pthread_mutex_lock(&con->in_lock);
	if (con->in && con->in->mouse) {
		pthread_mutex_lock(con->in_dev_lock);
		con->in->mouse(con->in_opaque, dx, dy, dz, buttons);
		pthread_mutex_unlock(con->in_dev_lock);
	}
	pthread_mutex_unlock(&con->in_lock);
}

void console_ctrl_alt_del(struct console *con)
{
	console_key(con, KEY_LEFTCTRL, true);
	console_key(con, KEY_LEFTALT, true);
	console_key(con, KEY_DELETE, true);
	console_key(con, KEY_DELETE, false);
	console_key(con, KEY_LEFTALT, false);
	console_key(con, KEY_LEFTCTRL, false);
}

unsigned console_leds(struct console *con)
{
	unsigned leds = 0;
	int i;

	pthread_mutex_lock(&con->in_lock);
	i = active_dev(con, CONSOLE_INPUT_KEY);
	if (i >= 0 && con->dev[i].ops->leds) {
		pthread_mutex_lock(con->dev[i].lock);
		leds = con->dev[i].ops->leds(con->dev[i].opaque);
		pthread_mutex_unlock(con->dev[i].lock);
	} else if (con->in && con->in->leds) {
		pthread_mutex_lock(con->in_dev_lock);
		leds = con->in->leds(con->in_opaque);
		pthread_mutex_unlock(con->in_dev_lock);
	}
	pthread_mutex_unlock(&con->in_lock);
	return leds;
}
