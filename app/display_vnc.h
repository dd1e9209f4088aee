/* SPDX-License-Identifier: MIT */
/*
 * app/display_vnc.h - the VM's VNC server (libvncserver, RFB 3.8).
 *
 * Serves the console's surface: updates from the console's dirty
 * rectangles, desktop resize (DesktopSize and ExtendedDesktopSize
 * pseudo-encodings) when the guest changes mode, a client's SetDesktopSize
 * offered to the guest (console_request_size()), key events (keysym ->
 * KEY_*), pointer events as absolute positions while the guest drives an
 * absolute pointer (the console's console_mouse_abs(): the virtio tablet,
 * the vmmouse), else as relative PS/2 motion and buttons.  Optional VNC
 * authentication.
 */
#ifndef VIVARIUM_DISPLAY_VNC_H
#define VIVARIUM_DISPLAY_VNC_H

#include <stddef.h>

struct console;
struct vnc_display;

/* Clients served at once (handshaking or connected): each costs two
 * threads and three fds; more connections are closed at accept. */
#define VNC_MAX_CLIENTS		16
/* A client that has not finished the RFB handshake (version, security,
 * ClientInit) this many ms after it connected is closed. */
#define VNC_HANDSHAKE_MS	10000

struct vnc_display_opts {
	const char *password;	/* NULL: no authentication; else VNC
				 * authentication (only the first 8
				 * characters count: RFB 3.8 §7.2.2) */
	const char *name;	/* the desktop name; NULL: "vivarium" */
	unsigned max_clients;	/* 0: VNC_MAX_CLIENTS */
	unsigned handshake_ms;	/* 0: VNC_HANDSHAKE_MS */
};

/*
 * vnc_display_new - listen on @spec: "ADDR:PORT" (ADDR may be empty or
 * "localhost": 127.0.0.1; PORT is a TCP port number, 5900 + display is
 * not implied), or "unix:PATH" (a Unix socket, created mode 0600,
 * replacing a stale socket file: one whose connect() is refused; anything
 * else there fails).  Before a sandbox, a unix: socket gets a watcher
 * process that removes it once this process has ended (the sandbox may
 * forbid the unlink here).  @o may be NULL (defaults).  A TCP
 * listener without a password logs a warning: whoever can reach it sees
 * the screen and types into the VM.  Serves from threads of its own (one
 * accepting, two per client); frames arrive through the console's listener
 * interface when someone calls console_refresh().  Connections beyond
 * max_clients, or whose fds libvncserver's select() cannot take (>=
 * FD_SETSIZE), are closed at once.  Returns NULL with one line in @err
 * (address in use, bad spec).
 */
struct vnc_display *vnc_display_new(struct console *con, const char *spec,
				    const struct vnc_display_opts *o,
				    char *err, size_t errlen);
/* Number of connected clients (for tests and the status command). */
unsigned vnc_display_clients(struct vnc_display *d);
void vnc_display_free(struct vnc_display *d);

#endif
