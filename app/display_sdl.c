/* SPDX-License-Identifier: MIT */
/*
 * The VM's console window on SDL2.
 *
 * The console's listener callbacks copy changed pixels into a shadow of
 * the surface (under a small lock: they run on whichever thread calls
 * console_refresh()); sdl_display_poll() uploads the dirty part of the
 * shadow into a streaming XRGB8888 texture and draws it scaled to the
 * window.  Input goes the other way: SDL scancodes are USB HID usages,
 * which keymap_from_usb() turns into KEY_*, so the guest's own layout
 * decides what a key types.
 *
 * The mouse: while the guest drives an absolute pointer (the console says
 * which: console_pointer_abs(), asked at every poll), the pointer's
 * position over the picture goes to it as the guest pixel under it (the
 * scaling and black bands of present() undone), the window never grabs
 * and the host's cursor is hidden over it (the guest draws its own).
 * Otherwise a click grabs the mouse and motion is relative (PS/2).
 */
#include "display_sdl.h"

#include <SDL2/SDL.h>
#include <SDL2/SDL_syswm.h>
#include <linux/input-event-codes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "display/console.h"
#include "input/keymap.h"
#include "log.h"

#ifdef SDL_VIDEO_DRIVER_X11
#include <X11/Xatom.h>
#include <X11/extensions/Xfixes.h>
#endif

#define HOST_KEY SDL_SCANCODE_RCTRL
/* A window the user resized is offered to the guest once it has kept
 * its size this long (a drag sends many sizes). */
#define RESIZE_SETTLE_MS 200

struct sdl_display {
	struct console *con;
	const struct sdl_display_cbs *cbs;
	void *opaque;
	char *name;
	char state[64];
	bool listening;

	SDL_Window *win;
	SDL_Renderer *ren;
	SDL_Texture *tex;
	unsigned tex_w, tex_h;

	/* Shared with the listener callbacks (lock). */
	pthread_mutex_t lock;
	uint32_t *shadow;		/* XRGB8888, w * h */
	unsigned w, h;
	bool resized;			/* new size since the last poll */
	unsigned dx0, dy0, dx1, dy1;	/* dirty box, exclusive; empty if x1 <= x0 */

	bool redraw;			/* present even without new pixels */
	bool grabbed;
	bool fullscreen;
	bool host_down;			/* Right Ctrl held */
	bool host_used;			/* ... and combined with a key */
	bool swallow_left_up;		/* the click that grabbed */
	unsigned buttons;		/* CONSOLE_BTN_* held in the guest */
	const char *abs_name;		/* the absolute pointer; NULL: relative */
	unsigned abs_x, abs_y;		/* the guest pixel last under the pointer */
	unsigned long keys_down[(KEY_MAX + 1) / (8 * sizeof(long))];
	bool resize_pending;		/* the window was resized ... */
	uint64_t resize_at;		/* ... offer it at this SDL tick (ms) */
	bool clip_changed;		/* SDL_CLIPBOARDUPDATE seen */
	char *clip_set;			/* what we last put there; NULL: none */
	int xfixes_notify;		/* X11: XFixesSelectionNotify's type; -1 */
#ifdef SDL_VIDEO_DRIVER_X11
	Display *x_display;		/* SDL's connection; NULL: not X11 */
	Window x_window;		/* ours: the conversions' requestor */
	Window x_own;			/* SDL's owner window for our own text */
	Atom x_clipboard, x_utf8, x_prop;
#endif
};

/* ---- listener (any thread) ------------------------------------------- */

static void sdl_resize(void *opaque, const struct console_surface *s)
{
	struct sdl_display *d = opaque;
	uint32_t *p = malloc((size_t)s->width * s->height * 4);

	if (!p) {
		vlog(LOG_ERROR, "sdl: out of memory for a %ux%u screen",
		     s->width, s->height);
		return;
	}
	for (unsigned y = 0; y < s->height; y++)
		memcpy(p + (size_t)y * s->width,
		       (const uint8_t *)s->pixels + (size_t)y * s->stride,
		       (size_t)s->width * 4);
	pthread_mutex_lock(&d->lock);
	free(d->shadow);
	d->shadow = p;
	d->w = s->width;
	d->h = s->height;
	d->resized = true;
	d->dx0 = d->dy0 = 0;
	d->dx1 = s->width;
	d->dy1 = s->height;
	pthread_mutex_unlock(&d->lock);
}

static void sdl_update(void *opaque, const struct console_surface *s,
		       unsigned x, unsigned y, unsigned w, unsigned h)
{
	struct sdl_display *d = opaque;

	pthread_mutex_lock(&d->lock);
	if (s->width != d->w || s->height != d->h || x + w > d->w ||
	    y + h > d->h) {
		pthread_mutex_unlock(&d->lock);	/* the resize failed */
		return;
	}
	for (unsigned row = y; row < y + h; row++)
		memcpy(d->shadow + (size_t)row * d->w + x,
		       (const uint8_t *)s->pixels + (size_t)row * s->stride +
			       (size_t)x * 4,
		       (size_t)w * 4);
	if (d->dx1 <= d->dx0 || d->dy1 <= d->dy0) {
		d->dx0 = x;
		d->dy0 = y;
		d->dx1 = x + w;
		d->dy1 = y + h;
	} else {
		if (x < d->dx0)
			d->dx0 = x;
		if (y < d->dy0)
			d->dy0 = y;
		if (x + w > d->dx1)
			d->dx1 = x + w;
		if (y + h > d->dy1)
			d->dy1 = y + h;
	}
	pthread_mutex_unlock(&d->lock);
}

static const struct console_listener_ops sdl_listener_ops = {
	.resize = sdl_resize,
	.update = sdl_update,
};

/* ---- window ----------------------------------------------------------- */

static void update_title(struct sdl_display *d)
{
	char title[512], mode[96] = "";

	if (d->grabbed)
		snprintf(mode, sizeof(mode), " (Right Ctrl releases)");
	else if (d->abs_name)
		snprintf(mode, sizeof(mode), " (seamless mouse: %s)", d->abs_name);
	snprintf(title, sizeof(title), "%s%s%s - Vivarium%s", d->name,
		 d->state[0] ? " - " : "", d->state, mode);
	SDL_SetWindowTitle(d->win, title);
}

/* Window size for a @w x @h guest: scale 1, or scaled down (aspect kept)
 * to fit the desktop's usable area. */
static void fit_to_desktop(struct sdl_display *d, unsigned w, unsigned h,
			   int *ww, int *wh)
{
	SDL_Rect r;
	int idx = d->win ? SDL_GetWindowDisplayIndex(d->win) : 0;

	*ww = (int)w;
	*wh = (int)h;
	if (SDL_GetDisplayUsableBounds(idx < 0 ? 0 : idx, &r) == 0 &&
	    r.w > 0 && r.h > 0 && (*ww > r.w || *wh > r.h)) {
		double s = fmin((double)r.w / w, (double)r.h / h);

		*ww = (int)(w * s);
		*wh = (int)(h * s);
		if (*ww < 1)
			*ww = 1;
		if (*wh < 1)
			*wh = 1;
	}
}

static int make_texture(struct sdl_display *d, unsigned w, unsigned h)
{
	if (d->tex)
		SDL_DestroyTexture(d->tex);
	d->tex = SDL_CreateTexture(d->ren, SDL_PIXELFORMAT_RGB888,
				   SDL_TEXTUREACCESS_STREAMING, (int)w, (int)h);
	if (!d->tex) {
		vlog(LOG_ERROR, "sdl: cannot make a %ux%u texture: %s", w, h,
		     SDL_GetError());
		d->tex_w = d->tex_h = 0;
		return -1;
	}
	d->tex_w = w;
	d->tex_h = h;
	return 0;
}

/* Upload what changed; returns true if there was anything. */
static bool upload(struct sdl_display *d)
{
	bool changed = false;

	pthread_mutex_lock(&d->lock);
	if (d->resized) {
		unsigned w = d->w, h = d->h;

		d->resized = false;
		if (make_texture(d, w, h) == 0 && !d->fullscreen &&
		    !(SDL_GetWindowFlags(d->win) & SDL_WINDOW_MAXIMIZED)) {
			int ww, wh;

			/* A new guest mode: the window follows at scale 1. */
			fit_to_desktop(d, w, h, &ww, &wh);
			SDL_SetWindowSize(d->win, ww, wh);
		}
		d->dx0 = d->dy0 = 0;
		d->dx1 = w;
		d->dy1 = h;
	}
	if (d->tex && d->dx1 > d->dx0 && d->dy1 > d->dy0 &&
	    d->tex_w == d->w && d->tex_h == d->h) {
		SDL_Rect r = { (int)d->dx0, (int)d->dy0,
			       (int)(d->dx1 - d->dx0), (int)(d->dy1 - d->dy0) };

		SDL_UpdateTexture(d->tex, &r,
				  d->shadow + (size_t)d->dy0 * d->w + d->dx0,
				  (int)(d->w * 4));
		changed = true;
	}
	d->dx0 = d->dx1 = d->dy0 = d->dy1 = 0;
	pthread_mutex_unlock(&d->lock);
	return changed;
}

/* Where the guest screen goes in the renderer's output (@ow x @oh
 * pixels): centred, aspect kept, black around it.  Returns true when each
 * guest pixel is a whole number of output pixels (drawn nearest
 * neighbour, else linear).  False and an empty @dst without a texture or
 * an output. */
static bool picture_rect(const struct sdl_display *d, int ow, int oh,
			 SDL_Rect *dst)
{
	double f;
	long k;
	bool whole = false;

	*dst = (SDL_Rect){ 0, 0, 0, 0 };
	if (!d->tex || !d->tex_w || !d->tex_h || ow <= 0 || oh <= 0)
		return false;
	f = fmin((double)ow / d->tex_w, (double)oh / d->tex_h);
	k = lround(f);
	if (k >= 1 && fabs(f - k) * fmax(d->tex_w, d->tex_h) < 0.5 &&
	    k * (long)d->tex_w <= ow && k * (long)d->tex_h <= oh) {
		dst->w = (int)(k * d->tex_w);
		dst->h = (int)(k * d->tex_h);
		whole = true;
	} else {
		dst->w = (int)lround(f * d->tex_w);
		dst->h = (int)lround(f * d->tex_h);
	}
	dst->x = (ow - dst->w) / 2;
	dst->y = (oh - dst->h) / 2;
	return whole;
}

/* Draw the guest screen where picture_rect() puts it. */
static void present(struct sdl_display *d)
{
	int ow = 0, oh = 0;
	SDL_Rect dst;
	bool whole;

	SDL_SetRenderDrawColor(d->ren, 0, 0, 0, 255);
	SDL_RenderClear(d->ren);
	SDL_GetRendererOutputSize(d->ren, &ow, &oh);
	whole = picture_rect(d, ow, oh, &dst);
	if (dst.w > 0 && dst.h > 0) {
		SDL_SetTextureScaleMode(d->tex, whole ? SDL_ScaleModeNearest
						      : SDL_ScaleModeLinear);
		SDL_RenderCopy(d->ren, d->tex, NULL, &dst);
	}
	SDL_RenderPresent(d->ren);
}

/* ---- input ------------------------------------------------------------ */

static bool key_is_down(struct sdl_display *d, unsigned k)
{
	return d->keys_down[k / (8 * sizeof(long))] >> (k % (8 * sizeof(long))) & 1;
}

static void guest_key(struct sdl_display *d, unsigned k, bool down)
{
	unsigned long bit = 1UL << (k % (8 * sizeof(long)));

	if (!k || k > KEY_MAX || down == key_is_down(d, k))
		return;		/* unknown, or a release we never pressed */
	if (down)
		d->keys_down[k / (8 * sizeof(long))] |= bit;
	else
		d->keys_down[k / (8 * sizeof(long))] &= ~bit;
	console_key(d->con, k, down);
}

/* Let go of everything the guest thinks is held (focus went elsewhere,
 * so the releases will not come to us). */
static void release_all(struct sdl_display *d)
{
	for (unsigned k = 0; k <= KEY_MAX; k++)
		if (key_is_down(d, k))
			guest_key(d, k, false);
	if (d->buttons) {
		d->buttons = 0;
		if (!d->abs_name ||
		    !console_mouse_abs(d->con, d->abs_x, d->abs_y, 0, 0))
			console_mouse(d->con, 0, 0, 0, 0);
	}
	d->host_down = false;
}

static void set_grab(struct sdl_display *d, bool on)
{
	if (d->grabbed == on || (on && d->abs_name))
		return;		/* an absolute pointer needs no grab */
	if (on && SDL_SetRelativeMouseMode(SDL_TRUE) < 0)
		vlog(LOG_WARN, "sdl: cannot capture the mouse: %s", SDL_GetError());
	if (!on)
		SDL_SetRelativeMouseMode(SDL_FALSE);
	SDL_SetWindowKeyboardGrab(d->win, on ? SDL_TRUE : SDL_FALSE);
	d->grabbed = on;
	if (!on && d->buttons) {
		d->buttons = 0;
		console_mouse(d->con, 0, 0, 0, 0);
	}
	update_title(d);
}

static void toggle_fullscreen(struct sdl_display *d)
{
	bool on = !d->fullscreen;

	if (SDL_SetWindowFullscreen(d->win, on ? SDL_WINDOW_FULLSCREEN_DESKTOP : 0) < 0) {
		vlog(LOG_WARN, "sdl: full screen: %s", SDL_GetError());
		return;
	}
	d->fullscreen = on;
	d->redraw = true;
}

static void handle_key(struct sdl_display *d, const SDL_KeyboardEvent *e)
{
	bool down = e->type == SDL_KEYDOWN;
	SDL_Scancode sc = e->keysym.scancode;

	if (e->repeat)
		return;		/* the guest keyboard repeats on its own */
	if (sc == HOST_KEY) {
		if (down) {
			d->host_down = true;
			d->host_used = false;
		} else if (d->host_down) {
			d->host_down = false;
			if (!d->host_used)
				set_grab(d, !d->grabbed);
		}
		return;
	}
	if (d->host_down && down) {
		/* Host combinations are ours; the key's release then finds
		 * it not pressed in the guest and is dropped too. */
		d->host_used = true;
		if (sc == SDL_SCANCODE_F)
			toggle_fullscreen(d);
		else if (sc == SDL_SCANCODE_DELETE)
			console_ctrl_alt_del(d->con);
		return;
	}
	guest_key(d, keymap_from_usb((unsigned)sc), down);
}

static unsigned button_bit(Uint8 b)
{
	switch (b) {
	case SDL_BUTTON_LEFT:
		return CONSOLE_BTN_LEFT;
	case SDL_BUTTON_RIGHT:
		return CONSOLE_BTN_RIGHT;
	case SDL_BUTTON_MIDDLE:
		return CONSOLE_BTN_MIDDLE;
	}
	return 0;
}

/* ---- absolute pointing ---------------------------------------------------- */

/* Output pixel @p of a picture at @start, @len pixels long, showing @n
 * guest pixels: the guest pixel whose span holds the output pixel's
 * centre, clamped to the picture (the bands map to its edges). */
static unsigned unscale(int p, int start, int len, unsigned n)
{
	int64_t v;

	if (p < start || len <= 0 || !n)
		return 0;
	v = ((2 * (int64_t)(p - start) + 1) * n) / (2 * (int64_t)len);
	return v >= n ? n - 1 : (unsigned)v;
}

/* Window point (@x, @y) (SDL's window coordinates) to the guest pixel
 * drawn there: points to output pixels (they differ on high-DPI
 * displays), then picture_rect() undone. */
static void window_to_guest(struct sdl_display *d, int x, int y,
			    unsigned *gx, unsigned *gy)
{
	int ww = 0, wh = 0, ow = 0, oh = 0;
	SDL_Rect dst;

	SDL_GetWindowSize(d->win, &ww, &wh);
	SDL_GetRendererOutputSize(d->ren, &ow, &oh);
	if (ww > 0 && wh > 0 && (ow != ww || oh != wh)) {
		x = (int)((int64_t)x * ow / ww);
		y = (int)((int64_t)y * oh / wh);
	}
	picture_rect(d, ow, oh, &dst);
	*gx = unscale(x, dst.x, dst.w, d->tex_w);
	*gy = unscale(y, dst.y, dst.h, d->tex_h);
}

/* Follow the console: which pointer the guest drives now.  Going
 * absolute lets go of a grab and hides the host's cursor. */
static void update_pointer_mode(struct sdl_display *d)
{
	const char *abs = console_pointer_abs(d->con);

	if (abs == d->abs_name)
		return;
	if (abs && d->grabbed)
		set_grab(d, false);
	if (d->buttons) {		/* held in the other mode */
		if (d->abs_name)
			console_mouse_abs(d->con, d->abs_x, d->abs_y, 0, 0);
		else
			console_mouse(d->con, 0, 0, 0, 0);
		d->buttons = 0;
	}
	d->abs_name = abs;
	SDL_ShowCursor(abs ? SDL_DISABLE : SDL_ENABLE);
	update_title(d);
}

/* A mouse event while the pointer is absolute: true if it was one.
 * Motion only moves (*@moved: send at the end of the poll); buttons and
 * the wheel send the position first. */
static bool abs_mouse(struct sdl_display *d, const SDL_Event *ev, bool *moved)
{
	unsigned bit;
	int dz;

	switch (ev->type) {
	case SDL_MOUSEMOTION:
		window_to_guest(d, ev->motion.x, ev->motion.y, &d->abs_x, &d->abs_y);
		*moved = true;
		return true;
	case SDL_MOUSEBUTTONDOWN:
	case SDL_MOUSEBUTTONUP:
		window_to_guest(d, ev->button.x, ev->button.y, &d->abs_x, &d->abs_y);
		bit = ev->button.button == SDL_BUTTON_X1 ? CONSOLE_BTN_SIDE :
		      ev->button.button == SDL_BUTTON_X2 ? CONSOLE_BTN_EXTRA :
		      button_bit(ev->button.button);
		if (ev->type == SDL_MOUSEBUTTONDOWN)
			d->buttons |= bit;
		else
			d->buttons &= ~bit;
		dz = 0;
		break;
	case SDL_MOUSEWHEEL:
		/* SDL: y > 0 is away from the user; the console's dz > 0
		 * towards. */
		dz = ev->wheel.direction == SDL_MOUSEWHEEL_FLIPPED ?
		     ev->wheel.y : -ev->wheel.y;
		if (!dz)
			return true;
		break;
	default:
		return false;
	}
	console_mouse_abs(d->con, d->abs_x, d->abs_y, dz, d->buttons);
	*moved = false;
	return true;
}

static void handle_window(struct sdl_display *d, const SDL_WindowEvent *e,
			  bool *closed)
{
	switch (e->event) {
	case SDL_WINDOWEVENT_CLOSE:
		*closed = true;
		break;
	case SDL_WINDOWEVENT_FOCUS_LOST:
		release_all(d);
		set_grab(d, false);
		break;
	case SDL_WINDOWEVENT_RESIZED:
		d->resize_pending = true;
		d->resize_at = SDL_GetTicks64() + RESIZE_SETTLE_MS;
		d->redraw = true;
		break;
	case SDL_WINDOWEVENT_EXPOSED:
	case SDL_WINDOWEVENT_SIZE_CHANGED:
	case SDL_WINDOWEVENT_SHOWN:
	case SDL_WINDOWEVENT_RESTORED:
		d->redraw = true;
		break;
	}
}

/*
 * The window settled at a size other than the guest's screen: ask the
 * guest for a screen of the window's size in pixels (console_request_size;
 * virtio-gpu offers it as the preferred mode).  Adapters that cannot
 * (-ENOTSUP, the standard VGA) keep today's scaling.  A size the window
 * took to follow the guest equals the guest's screen and asks nothing.
 */
static void offer_size(struct sdl_display *d)
{
	int w, h;
	unsigned gw, gh;

	if (!d->resize_pending || SDL_GetTicks64() < d->resize_at)
		return;
	d->resize_pending = false;
	if (SDL_GetRendererOutputSize(d->ren, &w, &h) < 0 || w <= 0 || h <= 0)
		return;
	pthread_mutex_lock(&d->lock);
	gw = d->w;
	gh = d->h;
	pthread_mutex_unlock(&d->lock);
	if ((unsigned)w == gw && (unsigned)h == gh)
		return;
	w = w > CONSOLE_MAX_WIDTH ? CONSOLE_MAX_WIDTH : w;
	h = h > CONSOLE_MAX_HEIGHT ? CONSOLE_MAX_HEIGHT : h;
	console_request_size(d->con, (unsigned)w, (unsigned)h);
}

/* ---- clipboard --------------------------------------------------------- */

/*
 * The host's clipboard now holds @text ("" : no text): hand it on, unless
 * it is what we put there ourselves (the guest's text must not come back
 * to the guest as a host copy).  Once someone else's text is seen, the
 * same text copied again later is a real copy.
 */
static void host_text(struct sdl_display *d, const char *text)
{
	if (d->clip_set && !strcmp(text, d->clip_set))
		return;
	free(d->clip_set);
	d->clip_set = NULL;
	if (d->cbs && d->cbs->clipboard)
		d->cbs->clipboard(d->opaque, text);
}

/* Elsewhere than X11 (Wayland): SDL_CLIPBOARDUPDATE, then SDL's paste. */
static void clipboard_changed(struct sdl_display *d)
{
	char *text;

	d->clip_changed = false;
	text = SDL_GetClipboardText();	/* "" on failure or no text */
	if (!text)
		return;
	host_text(d, text);
	SDL_free(text);
}

/*
 * X11.  SDL 2.26 raises SDL_CLIPBOARDUPDATE only when the selection it
 * owned is taken, not when one program's copy follows another's, and its
 * paste waits up to a second and reads a stale property when the owner
 * has no text (an image).  So on SDL's own connection: XFixes reports
 * every new CLIPBOARD owner; we ask the owner for UTF8_STRING into a
 * property of our window (ICCCM §2.4, with the owner's timestamp) and
 * take its SelectionNotify when it comes, both through SDL_SYSWMEVENT.
 * Nothing waits.  Text over what one property holds (INCR transfers,
 * about 256 KiB and up) is not carried.
 */
static void watch_x11_clipboard(struct sdl_display *d)
{
	d->xfixes_notify = -1;
#ifdef SDL_VIDEO_DRIVER_X11
	SDL_SysWMinfo info;
	int ev_base, err_base, major = 5, minor = 0;
	Display *x;

	SDL_VERSION(&info.version);
	if (!SDL_GetWindowWMInfo(d->win, &info) ||
	    info.subsystem != SDL_SYSWM_X11)
		return;
	x = info.info.x11.display;
	if (!XFixesQueryExtension(x, &ev_base, &err_base) ||
	    !XFixesQueryVersion(x, &major, &minor) || major < 1) {
		vlog(LOG_WARN, "sdl: no XFixes: copies on the host do not reach the guest");
		return;
	}
	d->x_display = x;
	d->x_window = info.info.x11.window;
	d->x_clipboard = XInternAtom(x, "CLIPBOARD", False);
	d->x_utf8 = XInternAtom(x, "UTF8_STRING", False);
	d->x_prop = XInternAtom(x, "VIVARIUM_CLIPBOARD", False);
	XFixesSelectSelectionInput(x, d->x_window, d->x_clipboard,
				   XFixesSetSelectionOwnerNotifyMask |
				   XFixesSelectionWindowDestroyNotifyMask |
				   XFixesSelectionClientCloseNotifyMask);
	SDL_EventState(SDL_SYSWMEVENT, SDL_ENABLE);
	d->xfixes_notify = ev_base + XFixesSelectionNotify;
#endif
}

#ifdef SDL_VIDEO_DRIVER_X11
/* The owner's answer to our conversion. */
static void x11_paste_done(struct sdl_display *d, const XSelectionEvent *e)
{
	Atom type;
	int fmt;
	unsigned long n, left;
	unsigned char *data = NULL;

	if (e->property == None) {	/* no text on offer */
		host_text(d, "");
		return;
	}
	if (XGetWindowProperty(d->x_display, d->x_window, d->x_prop, 0,
			       (4u << 20) / 4, True, AnyPropertyType, &type, &fmt,
			       &n, &left, &data) != Success)
		return;
	if (fmt == 8 && (type == d->x_utf8 || type == XA_STRING) && !left) {
		char *text = strndup((const char *)data, n);

		if (text)
			host_text(d, text);
		free(text);
	} else {
		vlog_ratelimited(LOG_WARN, "sdl: the host's clipboard text is too large or not text: not offered to the guest");
	}
	if (data)
		XFree(data);
}
#endif

/* An X event through SDL_SYSWMEVENT. */
static void syswm_event(struct sdl_display *d, const SDL_SysWMmsg *msg)
{
#ifdef SDL_VIDEO_DRIVER_X11
	const XEvent *e;

	if (!msg || msg->subsystem != SDL_SYSWM_X11 || d->xfixes_notify < 0)
		return;
	e = &msg->msg.x11.event;
	if (e->type == d->xfixes_notify) {
		const XFixesSelectionNotifyEvent *n =
			(const XFixesSelectionNotifyEvent *)e;

		if (n->selection != d->x_clipboard || n->owner == d->x_own)
			return;		/* our own SDL_SetClipboardText */
		if (n->owner == None) {	/* the owner went away */
			host_text(d, "");
			return;
		}
		XConvertSelection(d->x_display, d->x_clipboard, d->x_utf8,
				  d->x_prop, d->x_window, n->selection_timestamp);
		XFlush(d->x_display);
	} else if (e->type == SelectionNotify &&
		   e->xselection.requestor == d->x_window &&
		   e->xselection.selection == d->x_clipboard &&
		   (e->xselection.property == d->x_prop ||
		    e->xselection.property == None)) {
		x11_paste_done(d, &e->xselection);
	}
#else
	(void)d;
	(void)msg;
#endif
}

void sdl_display_set_clipboard(struct sdl_display *d, const char *text)
{
	char *copy = strdup(text ? text : "");

	if (!copy)
		return;
	free(d->clip_set);
	d->clip_set = copy;
	if (SDL_SetClipboardText(copy) < 0) {
		vlog_ratelimited(LOG_WARN, "sdl: cannot set the clipboard: %s",
				 SDL_GetError());
		return;
	}
#ifdef SDL_VIDEO_DRIVER_X11
	/* SDL owns CLIPBOARD through a window of its own: its new-owner
	 * event is ours to ignore. */
	if (d->x_display)
		d->x_own = XGetSelectionOwner(d->x_display, d->x_clipboard);
#endif
}

void sdl_display_poll(struct sdl_display *d)
{
	SDL_Event ev;
	bool closed = false, moved = false;
	int mdx = 0, mdy = 0;	/* motion gathered over this poll */

	update_pointer_mode(d);
	while (SDL_PollEvent(&ev)) {
		if (d->abs_name && abs_mouse(d, &ev, &moved))
			continue;
		switch (ev.type) {
		case SDL_QUIT:
			closed = true;
			break;
		case SDL_WINDOWEVENT:
			handle_window(d, &ev.window, &closed);
			break;
		case SDL_CLIPBOARDUPDATE:
			/* On X11 the XFixes events say more (syswm_event). */
			d->clip_changed = d->xfixes_notify < 0;
			break;
		case SDL_SYSWMEVENT:
			syswm_event(d, ev.syswm.msg);
			break;
		case SDL_KEYDOWN:
		case SDL_KEYUP:
			handle_key(d, &ev.key);
			break;
		case SDL_MOUSEMOTION:
			if (d->grabbed) {
				mdx += ev.motion.xrel;
				mdy += ev.motion.yrel;
			}
			break;
		case SDL_MOUSEBUTTONDOWN:
		case SDL_MOUSEBUTTONUP: {
			bool down = ev.type == SDL_MOUSEBUTTONDOWN;
			unsigned bit = button_bit(ev.button.button);

			if (!d->grabbed) {
				/* A left click grabs and is not the guest's. */
				if (down && ev.button.button == SDL_BUTTON_LEFT) {
					set_grab(d, true);
					d->swallow_left_up = true;
				}
				break;
			}
			if (!down && ev.button.button == SDL_BUTTON_LEFT &&
			    d->swallow_left_up) {
				d->swallow_left_up = false;
				break;
			}
			if (!bit)
				break;
			d->buttons = down ? d->buttons | bit : d->buttons & ~bit;
			console_mouse(d->con, mdx, mdy, 0, d->buttons);
			mdx = mdy = 0;
			break;
		}
		case SDL_MOUSEWHEEL:
			if (d->grabbed && ev.wheel.y) {
				int y = ev.wheel.direction == SDL_MOUSEWHEEL_FLIPPED ?
					-ev.wheel.y : ev.wheel.y;

				/* SDL: y > 0 is away from the user (up);
				 * the console's dz > 0 is towards. */
				console_mouse(d->con, mdx, mdy, -y, d->buttons);
				mdx = mdy = 0;
			}
			break;
		}
	}
	if (mdx || mdy)
		console_mouse(d->con, mdx, mdy, 0, d->buttons);
	if (moved)
		console_mouse_abs(d->con, d->abs_x, d->abs_y, 0, d->buttons);
	if (d->clip_changed)
		clipboard_changed(d);
	if (closed && d->cbs && d->cbs->close)
		d->cbs->close(d->opaque);
	offer_size(d);

	if (upload(d) || d->redraw) {
		d->redraw = false;
		present(d);
	}
}

/* ---- lifetime --------------------------------------------------------- */

struct sdl_display *sdl_display_new(struct console *con, const char *vm_name,
				    const struct sdl_display_cbs *cbs,
				    void *opaque, char *err, size_t errlen)
{
	struct sdl_display *d = calloc(1, sizeof(*d));
	int ww, wh;

	if (!d || !(d->name = strdup(vm_name ? vm_name : "VM"))) {
		snprintf(err, errlen, "sdl: out of memory");
		free(d);
		return NULL;
	}
	d->con = con;
	d->cbs = cbs;
	d->opaque = opaque;
	pthread_mutex_init(&d->lock, NULL);

	/* The VM process handles its own signals; a minimised full-screen
	 * VM on focus loss is not what anyone wants. */
	SDL_SetHint(SDL_HINT_NO_SIGNAL_HANDLERS, "1");
	SDL_SetHint(SDL_HINT_VIDEO_MINIMIZE_ON_FOCUS_LOSS, "0");
	SDL_SetHint(SDL_HINT_GRAB_KEYBOARD, "1");
	SDL_SetHint(SDL_HINT_APP_NAME, "Vivarium");
	if (SDL_InitSubSystem(SDL_INIT_VIDEO) < 0) {
		snprintf(err, errlen, "sdl: cannot open a window (%s); is there a display? (DISPLAY, WAYLAND_DISPLAY)",
			 SDL_GetError());
		goto fail_init;
	}
	/* Registration calls sdl_resize() with the current surface. */
	if (console_add_listener(con, &sdl_listener_ops, d) < 0) {
		snprintf(err, errlen, "sdl: too many displays on this console");
		goto fail_sdl;
	}
	d->listening = true;
	pthread_mutex_lock(&d->lock);
	fit_to_desktop(d, d->w, d->h, &ww, &wh);
	pthread_mutex_unlock(&d->lock);
	d->win = SDL_CreateWindow(d->name, SDL_WINDOWPOS_CENTERED,
				  SDL_WINDOWPOS_CENTERED, ww, wh,
				  SDL_WINDOW_RESIZABLE | SDL_WINDOW_HIDDEN);
	if (!d->win) {
		snprintf(err, errlen, "sdl: cannot open a window: %s", SDL_GetError());
		goto fail_listener;
	}
	d->ren = SDL_CreateRenderer(d->win, -1, SDL_RENDERER_ACCELERATED);
	if (!d->ren)	/* no GPU (Xvfb, remote X): draw in software */
		d->ren = SDL_CreateRenderer(d->win, -1, SDL_RENDERER_SOFTWARE);
	if (!d->ren) {
		snprintf(err, errlen, "sdl: cannot draw in the window: %s",
			 SDL_GetError());
		goto fail_window;
	}
	update_title(d);
	watch_x11_clipboard(d);
	SDL_ShowWindow(d->win);
	d->redraw = true;
	return d;

fail_window:
	SDL_DestroyWindow(d->win);
fail_listener:
	console_remove_listener(con, &sdl_listener_ops, d);
fail_sdl:
	SDL_QuitSubSystem(SDL_INIT_VIDEO);
fail_init:
	pthread_mutex_destroy(&d->lock);
	free(d->shadow);
	free(d->name);
	free(d);
	return NULL;
}

void sdl_display_set_state(struct sdl_display *d, const char *state)
{
	snprintf(d->state, sizeof(d->state), "%s", state ? state : "");
	update_title(d);
}

void sdl_display_raise(struct sdl_display *d)
{
	if (!d->win)
		return;
	SDL_ShowWindow(d->win);
	SDL_RestoreWindow(d->win);	/* out of the taskbar if minimized */
	SDL_RaiseWindow(d->win);
}

void sdl_display_free(struct sdl_display *d)
{
	if (!d)
		return;
	if (d->listening)
		console_remove_listener(d->con, &sdl_listener_ops, d);
	release_all(d);
	if (d->grabbed)
		SDL_SetRelativeMouseMode(SDL_FALSE);
	if (d->tex)
		SDL_DestroyTexture(d->tex);
	SDL_DestroyRenderer(d->ren);
	SDL_DestroyWindow(d->win);
	SDL_QuitSubSystem(SDL_INIT_VIDEO);
	pthread_mutex_destroy(&d->lock);
	free(d->shadow);
	free(d->clip_set);
	free(d->name);
	free(d);
}
