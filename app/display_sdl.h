/* SPDX-License-Identifier: MIT */
/*
 * app/display_sdl.h - the VM's console window (SDL2).
 *
 * Shows the console's surface scaled to the window with its aspect ratio
 * kept (letterboxed), nearest-neighbour at integer scales, linear otherwise.
 * A window the user resizes is offered to the guest as its screen size
 * once it has settled (200 ms; console_request_size()): with virtio-gpu
 * the guest takes that mode and the picture is 1:1 again; with the
 * standard VGA nothing changes and the scaling stays.
 * Keyboard by scancode (USB HID usage -> KEY_*), so the guest's layout
 * applies.  Host key: Right Ctrl (released alone: leave the grab; Host+F:
 * full screen; Host+Del: Ctrl+Alt+Del).  A click grabs the mouse (relative
 * PS/2 mouse).  Closing the window calls @cbs->close (the VM process
 * presses the ACPI power button).  Clipboard: text only (SDL2 offers
 * nothing else); a change of the host's clipboard goes to
 * @cbs->clipboard, read at the end of the poll that saw it
 * (SDL_GetClipboardText: on X11 it waits for the owner's answer, at most
 * a second in SDL 2.26).
 *
 * Threads: everything here runs on the thread that called sdl_display_new
 * (SDL video must stay on one thread: the process's main thread).
 */
#ifndef VIVARIUM_DISPLAY_SDL_H
#define VIVARIUM_DISPLAY_SDL_H

#include <stddef.h>

struct console;
struct sdl_display;

struct sdl_display_cbs {
	/* The user closed the window (may be NULL: ignored). */
	void (*close)(void *opaque);
	/* The host's clipboard (X11/Wayland CLIPBOARD) changed while the
	 * window exists: @text is its UTF-8 text, "" when it holds no text
	 * (an image, or nothing).  Not called for what
	 * sdl_display_set_clipboard() put there.  May be NULL. */
	void (*clipboard)(void *opaque, const char *text);
};

/*
 * sdl_display_new - open the window for @con, titled "@vm_name - Vivarium"
 * plus the state.  Registers itself as a listener of @con.  Returns NULL
 * with one line in @err when SDL cannot open a window (no display).
 */
struct sdl_display *sdl_display_new(struct console *con, const char *vm_name,
				    const struct sdl_display_cbs *cbs,
				    void *opaque, char *err, size_t errlen);
/* Title state shown after the name, e.g. "Running", "Paused". */
void sdl_display_set_state(struct sdl_display *d, const char *state);
/*
 * sdl_display_poll - handle pending SDL events and present the frame if
 * the console changed.  Call every ~16 ms on the display thread, after
 * console_refresh().  Never blocks.
 */
void sdl_display_poll(struct sdl_display *d);
/* Put @text (UTF-8) on the host's clipboard, e.g. what the guest copied
 * (SDL_SetClipboardText: the window owns the CLIPBOARD selection). */
void sdl_display_set_clipboard(struct sdl_display *d, const char *text);
/* Show the window above the others (un-minimized; the window manager may
 * only flash it).  The manager's Console button. */
void sdl_display_raise(struct sdl_display *d);
void sdl_display_free(struct sdl_display *d);

#endif
