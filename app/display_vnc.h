/* SPDX-License-Identifier: MIT */
/*
 * app/display_vnc.h - the VM's VNC server (libvncserver, RFB 3.8).
 *
 * Serves the console's surface: updates from the console's dirty
 * rectangles, desktop resize (DesktopSize pseudo-encoding) when the guest
 * changes mode, key events (keysym -> KEY_*), pointer events as relative
 * PS/2 motion and buttons.  Optional VNC authentication.
 */
#ifndef VIVARIUM_DISPLAY_VNC_H
#define VIVARIUM_DISPLAY_VNC_H

#include <stddef.h>

struct console;
struct vnc_display;

/*
 * vnc_display_new - listen on @spec: "ADDR:PORT" (ADDR may be empty or
 * "localhost": 127.0.0.1; PORT is a TCP port number, 5900 + display is
 * not implied), or "unix:PATH" (a Unix socket, created mode 0600,
 * replacing a stale socket file).  @password: NULL for no authentication,
 * else VNC authentication with it (only the first 8 characters count, as
 * the protocol defines).  @name: the desktop name.  Serves from its own
 * thread; frames arrive through the console's listener interface when
 * someone calls console_refresh().  Returns NULL with one line in @err
 * (address in use, bad spec).
 */
struct vnc_display *vnc_display_new(struct console *con, const char *spec,
				    const char *password, const char *name,
				    char *err, size_t errlen);
/* Number of connected clients (for tests and the status command). */
unsigned vnc_display_clients(struct vnc_display *d);
void vnc_display_free(struct vnc_display *d);

#endif
