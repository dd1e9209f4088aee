/* SPDX-License-Identifier: MIT */
/*
 * x_close_window WINDOW-ID - ask an X window to close as a window manager's
 * close button does: a WM_PROTOCOLS / WM_DELETE_WINDOW client message
 * (ICCCM §4.2.8.1).  Needs $DISPLAY.  Exit 0 sent, 1 error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <X11/Xlib.h>

int main(int argc, char **argv)
{
	XEvent ev = { 0 };
	Display *dpy;
	Window w;

	if (argc != 2) {
		fprintf(stderr, "usage: x_close_window WINDOW-ID\n");
		return 1;
	}
	dpy = XOpenDisplay(NULL);
	if (!dpy) {
		fprintf(stderr, "x_close_window: cannot open the display\n");
		return 1;
	}
	w = (Window)strtoul(argv[1], NULL, 0);
	ev.xclient.type = ClientMessage;
	ev.xclient.window = w;
	ev.xclient.message_type = XInternAtom(dpy, "WM_PROTOCOLS", False);
	ev.xclient.format = 32;
	ev.xclient.data.l[0] = (long)XInternAtom(dpy, "WM_DELETE_WINDOW", False);
	ev.xclient.data.l[1] = CurrentTime;
	if (!XSendEvent(dpy, w, False, NoEventMask, &ev)) {
		fprintf(stderr, "x_close_window: XSendEvent failed\n");
		return 1;
	}
	XCloseDisplay(dpy);
	return 0;
}
