/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/display/console.h - one guest screen and its input.
 *
 * The display adapter (hw) renders the guest's screen into the console's
 * surface, a 32-bit XRGB8888 image, and says which rectangle changed.
 * Frontends (the SDL window, the VNC server, screenshots) read the surface
 * after console_refresh() and send keyboard and mouse events back, which
 * the console hands to the guest's input device (the PS/2 controller).
 *
 * The console outlives the machine's devices, which are rebuilt on every
 * guest reset: the machine attaches the adapter and the input device after
 * building them (console_set_hw/console_set_input) and detaches them before
 * tearing them down.
 *
 * Threads and locks: every function may be called from any thread.  The
 * console's own lock serialises refreshes and listener calls; hw and input
 * callbacks run with the device lock given at attach time held (taken
 * after the console lock, never the reverse: detach without holding the
 * device lock).
 *
 * Key codes are Linux input event codes (KEY_* of
 * <linux/input-event-codes.h>): a neutral "which physical key" code,
 * independent of layout, that frontends map to and devices map from.
 */
#ifndef VIVARIUM_CONSOLE_H
#define VIVARIUM_CONSOLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct console;

/* Largest surface: 2560x1600 covers every VBE mode the adapter offers. */
#define CONSOLE_MAX_WIDTH	2560
#define CONSOLE_MAX_HEIGHT	1600

struct console_surface {
	unsigned width, height;		/* pixels; 0x0 before the first mode */
	unsigned stride;		/* bytes per row (width * 4) */
	uint32_t *pixels;		/* XRGB8888: 0x00RRGGBB, row-major */
};

/* The display adapter's side; called with its device lock held. */
struct console_hw_ops {
	/*
	 * Bring the surface up to date with the guest: call
	 * console_resize() when the mode changed, draw into
	 * console_surface(con)->pixels, and report what changed with
	 * console_dirty().  @full: redraw everything (after an attach, a
	 * resize or console_invalidate()).
	 */
	void (*update)(void *opaque, struct console *con, bool full);
	/*
	 * Optional: the screen as text, for tests and automation.  Rows end
	 * in '\n'; each character cell is its CP437 code mapped to ASCII
	 * (box drawing to '+', '-', '|'; other codes above 0x7e to '?').
	 * Returns the number of bytes written (NUL-terminated, truncated to
	 * @len) or -ENOTSUP in graphics modes.
	 */
	int (*text)(void *opaque, char *buf, size_t len);
	/*
	 * Optional: the host would like the guest's screen to be @width x
	 * @height (console_request_size()); an adapter that can tell the
	 * guest (virtio-gpu's display info and EDID) records it and raises
	 * its display-change event.  Returns 0 or -errno.
	 */
	int (*request_size)(void *opaque, unsigned width, unsigned height);
};

/* The guest's keyboard and mouse; called with its device lock held. */
struct console_input_ops {
	/* Key @keycode (KEY_*) went down (@down) or up. */
	void (*key)(void *opaque, unsigned keycode, bool down);
	/* Relative motion in device units (+x right, +y down, +dz wheel
	 * towards the user, i.e. scrolling down) and the buttons now held
	 * (CONSOLE_BTN_*). */
	void (*mouse)(void *opaque, int dx, int dy, int dz, unsigned buttons);
	/* Optional: keyboard LEDs as the guest set them (CONSOLE_LED_*). */
	unsigned (*leds)(void *opaque);
};

#define CONSOLE_BTN_LEFT	0x1
#define CONSOLE_BTN_RIGHT	0x2
#define CONSOLE_BTN_MIDDLE	0x4
/* The side buttons (back, forward), for devices that have them (the
 * virtio tablet); the PS/2 mouse ignores them. */
#define CONSOLE_BTN_SIDE	0x8
#define CONSOLE_BTN_EXTRA	0x10

#define CONSOLE_LED_SCROLL	0x1
#define CONSOLE_LED_NUM		0x2
#define CONSOLE_LED_CAPS	0x4

/* A frontend.  Called from the thread running console_refresh(), with the
 * console lock held: the surface is stable during the call, and must not be
 * used after it (copy what you need).  Keep them short. */
struct console_listener_ops {
	/* The surface changed size (and content); also on registration. */
	void (*resize)(void *opaque, const struct console_surface *s);
	/* Rectangle [x, x+w) x [y, y+h) of @s changed. */
	void (*update)(void *opaque, const struct console_surface *s,
		       unsigned x, unsigned y, unsigned w, unsigned h);
};

/* Returns NULL on allocation failure.  The surface starts as 640x480
 * black, so frontends have something to show before the guest draws. */
struct console *console_new(void);
/* Listeners must be removed first. */
void console_free(struct console *con);

/* Attach the display adapter (@ops NULL: detach; the last image stays).
 * @lock: the device lock held around @ops calls. */
void console_set_hw(struct console *con, const struct console_hw_ops *ops,
		    void *opaque, pthread_mutex_t *lock);
/* Attach the input device (@ops NULL: detach; events are then dropped). */
void console_set_input(struct console *con,
		       const struct console_input_ops *ops, void *opaque,
		       pthread_mutex_t *lock);

/* ---- more input devices ------------------------------------------------- */
/*
 * Beside the PS/2 pair of console_set_input(), a machine may have other
 * input devices: absolute pointers (the virtio tablet, vmmouse, a USB
 * tablet) and keyboards (the virtio keyboard).  Each is added with the
 * device lock its calls need; the console routes:
 *  - keys to the first added device with CONSOLE_INPUT_KEY whose active()
 *    says the guest drives it, else to the PS/2 keyboard; the release of a
 *    key pressed on the PS/2 keyboard goes there whatever is active then
 *    (its driver taking over while a key is held leaves no key stuck);
 *  - console_mouse_abs() to the first active device with
 *    CONSOLE_INPUT_ABS, in order of @prio (lowest first, then order of
 *    adding); with none active it is dropped: frontends then use relative
 *    motion (console_pointer_abs() says which).
 */
#define CONSOLE_INPUT_KEY	0x1
#define CONSOLE_INPUT_ABS	0x2

/* Absolute coordinates devices report: 0..CONSOLE_ABS_MAX on each axis. */
#define CONSOLE_ABS_MAX		0x7fff

struct console_input_dev_ops {
	const char *name;		/* "virtio-tablet", "vmmouse": status */
	unsigned caps;			/* CONSOLE_INPUT_* */
	int prio;			/* for absolute pointing: lower first */
	/* The range abs() takes on each axis, 0..abs_max (the device's own,
	 * so a pixel is scaled once, exactly); 0: CONSOLE_ABS_MAX. */
	unsigned abs_max;
	/* Is the guest driving this device now (driver loaded, enabled)?
	 * Called often; keep it cheap. */
	bool (*active)(void *opaque);
	/* CONSOLE_INPUT_KEY: as console_input_ops.key and .leds (optional). */
	void (*key)(void *opaque, unsigned keycode, bool down);
	unsigned (*leds)(void *opaque);
	/*
	 * CONSOLE_INPUT_ABS: the pointer is at (@x, @y), each 0..abs_max
	 * across the guest's screen (console_abs_scale() of a pixel), @dz
	 * wheel steps (+ towards the user), @buttons CONSOLE_BTN_* now held.
	 */
	void (*abs)(void *opaque, unsigned x, unsigned y, int dz,
		    unsigned buttons);
};

/* Returns 0, or -ENOSPC (at most 8). */
int console_add_input(struct console *con,
		      const struct console_input_dev_ops *ops, void *opaque,
		      pthread_mutex_t *lock);
void console_remove_input(struct console *con,
			  const struct console_input_dev_ops *ops,
			  void *opaque);

/*
 * console_abs_scale - pixel @pos of a screen @size pixels across as an
 * absolute coordinate 0..@max: the middle of the pixel's share of the
 * range, so that a guest scaling back by either v * size / (max + 1) or
 * v * (size - 1) / max lands on @pos exactly.  @pos >= @size is clamped
 * to the last pixel; @size 0 gives 0.
 */
unsigned console_abs_scale(unsigned pos, unsigned size, unsigned max);

/* Register a frontend; its resize() is called at once.  Returns 0 or
 * -ENOMEM / -ENOSPC (at most 8). */
int console_add_listener(struct console *con,
			 const struct console_listener_ops *ops, void *opaque);
void console_remove_listener(struct console *con,
			     const struct console_listener_ops *ops,
			     void *opaque);

/*
 * console_refresh - ask the adapter for what changed and pass it to every
 * listener (one resize and/or one update with the bounding rectangle).
 * Frontends call it at their frame rate.  Returns true if anything changed.
 */
bool console_refresh(struct console *con);
/* The next refresh redraws the whole screen. */
void console_invalidate(struct console *con);

/* ---- for the adapter's update() only ---------------------------------- */
/* Resize the surface to @width x @height (clamped to 1..CONSOLE_MAX_*),
 * cleared to black, and mark all of it dirty.  Returns 0 or -ENOMEM (the
 * old surface stays). */
int console_resize(struct console *con, unsigned width, unsigned height);
struct console_surface *console_surface(struct console *con);
/* Add a rectangle (clipped to the surface) to what changed. */
void console_dirty(struct console *con, unsigned x, unsigned y, unsigned w,
		   unsigned h);

/* ---- for frontends ------------------------------------------------------ */
/* Copy the current surface (after a refresh) into @out, which the caller
 * frees with free(out->pixels).  Returns 0 or -ENOMEM. */
int console_snapshot(struct console *con, struct console_surface *out);
/* The adapter's text(); -ENOTSUP in graphics modes or without one. */
int console_text(struct console *con, char *buf, size_t len);
/* Send input to the guest (dropped while no input device is attached). */
void console_key(struct console *con, unsigned keycode, bool down);
void console_mouse(struct console *con, int dx, int dy, int dz,
		   unsigned buttons);
/*
 * console_mouse_abs - the host pointer is over the guest's pixel (@x, @y)
 * of the current surface (frontends undo their scaling and bands first):
 * send it to the active absolute pointer, scaled with console_abs_scale().
 * Returns true if a device took it, false when none is active (use
 * console_mouse() then).
 */
bool console_mouse_abs(struct console *con, unsigned x, unsigned y, int dz,
		       unsigned buttons);
/* The name of the absolute pointer the guest drives now (its ops' name),
 * or NULL when pointing is relative (PS/2: frontends grab). */
const char *console_pointer_abs(struct console *con);
/* The name of the keyboard keys go to: an added device's, or "ps2". */
const char *console_keyboard(struct console *con);
/*
 * console_request_size - a frontend's window (or a VNC client, or the
 * control socket's display-size) is now @width x @height pixels: offer it
 * to the adapter as the preferred mode (console_hw_ops.request_size;
 * ignored by adapters without one, such as the standard VGA) and to the
 * size agent if one is set (console_set_size_agent()).  Returns 0 if
 * either took it; else -ENOTSUP (no adapter that can, no agent
 * connected) or the adapter's error; -EINVAL for a size outside
 * 1..CONSOLE_MAX_*.
 */
int console_request_size(struct console *con, unsigned width,
			 unsigned height);
/*
 * console_set_size_agent - also hand every console_request_size() to
 * @fn: the guest session's agent (spice-vdagent's MONITORS_CONFIG, for
 * X11 sessions that do not follow the adapter's preferred mode).  @fn runs
 * on the requester's thread with the console lock held, after the
 * adapter: it must not block or call into the console.  It returns 0 if
 * it passed the size on, -errno if not (-ENOTCONN: no agent connected).
 * @fn NULL: none (set it so before @opaque goes away).
 */
void console_set_size_agent(struct console *con,
			    int (*fn)(void *opaque, unsigned width,
				      unsigned height),
			    void *opaque);

/* Ctrl+Alt+Del as three presses and releases. */
void console_ctrl_alt_del(struct console *con);
/* CONSOLE_LED_* as the guest last set them; 0 without an input device. */
unsigned console_leds(struct console *con);

#endif
