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
/* Ctrl+Alt+Del as three presses and releases. */
void console_ctrl_alt_del(struct console *con);
/* CONSOLE_LED_* as the guest last set them; 0 without an input device. */
unsigned console_leds(struct console *con);

#endif
