/* SPDX-License-Identifier: MIT */
/*
 * app/display.h - a VM's frontends as one thing for `vivarium run` and the
 * VM process: the console, the SDL window and/or the VNC server, and the
 * GLib timer that refreshes them (on the thread running the default main
 * context: the process's main thread, where SDL must live).
 */
#ifndef VIVARIUM_DISPLAY_H
#define VIVARIUM_DISPLAY_H

#include <stdbool.h>
#include <stddef.h>

struct console;
struct vm_agents;
struct vm_display;

enum vm_display_kind {
	VM_DISPLAY_AUTO = 0,	/* sdl if $DISPLAY/$WAYLAND_DISPLAY is set and
				 * a window opens; else headless */
	VM_DISPLAY_NONE,
	VM_DISPLAY_SDL,
};

struct vm_display_opts {
	enum vm_display_kind kind;
	const char *vnc;		/* ADDR:PORT or unix:PATH; NULL: none */
	const char *vnc_password_file;	/* first line is the password */
	const char *name;		/* the VM's name: window title, VNC */
};

/* Parse "sdl" / "none" / "auto".  Returns 0 or -EINVAL. */
int vm_display_parse_kind(const char *s, enum vm_display_kind *out);

/* Would vm_display_open() start any frontend for @o (a window, or VNC)? */
bool vm_display_wanted(const struct vm_display_opts *o);

/*
 * vm_display_open - start the frontends @o asks for, on @con.  With none
 * (kind none, no VNC) it still succeeds and only refreshes on demand
 * (screenshots).  @close: what the window's close button does (press the
 * power button).  Returns 0 or -errno with one line in @err (no display
 * to open a window on, VNC address in use, unreadable password file).
 */
int vm_display_open(struct vm_display **out, struct console *con,
		    const struct vm_display_opts *o,
		    void (*close)(void *opaque), void *opaque,
		    char *err, size_t errlen);
/*
 * vm_display_set_agents - connect the guest agents @a (app/agents.h; NULL:
 * disconnect) to the frontends: the console window's clipboard and the
 * guest's (text both ways: a host copy is offered to the guest, a guest
 * copy is put on the host's clipboard), and the console's size requests
 * (window resize, VNC SetDesktopSize, display-size) to the guest
 * session's agent too (console_set_size_agent()).  @a must outlive the
 * display or be disconnected first (vm_display_close() does).
 */
void vm_display_set_agents(struct vm_display *d, struct vm_agents *a);
/* Is there a console window? */
bool vm_display_is_sdl(const struct vm_display *d);
/* The state shown in the window title ("Running", "Paused"...). */
void vm_display_set_state(struct vm_display *d, const char *state);
/* Raise the console window; false if there is none (display none). */
bool vm_display_raise(struct vm_display *d);
void vm_display_close(struct vm_display *d);

#endif
