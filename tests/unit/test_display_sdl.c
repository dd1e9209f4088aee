/* SPDX-License-Identifier: MIT */
/*
 * The console window (app/display_sdl.c) on a real X server: Xvfb, started
 * here on a display number it picks itself.  What the window shows is read
 * back with XGetImage and compared with the console's surface (at scale 1,
 * at 2x where every guest pixel must be a sharp 2x2 block, letterboxed at
 * a non-integer scale); keys and clicks are real X input events (XTEST,
 * by keycode, as a keyboard makes them) and must reach the console's input
 * device as the right KEY_* codes, with the host key (Right Ctrl) kept from
 * the guest.  With an absolute pointer the guest drives (a recording
 * device added with console_add_input()), a click at a window position
 * must arrive as the guest pixel drawn there, scaled and letterboxed, and
 * nothing may grab the keyboard or the pointer; without one, a click
 * grabs as before.  There is no window manager: the test plays its part
 * where needed (the close request; watching the full-screen request).
 * The clipboard: the window opened as the VM process opens it
 * (vm_display_open, vm_display_set_agents) with the real agents hub and a
 * guest on the real virtio-serial device speaking spice-vdagentd's side;
 * an X client of the test's own (a thread) owns CLIPBOARD and its text
 * must reach the hub and the guest, and the guest's text must come back
 * as the X CLIPBOARD selection (read with XConvertSelection), once.
 *
 * Skips (77) when Xvfb is missing.
 */
#include <X11/Xatom.h>
#include <X11/Xlib.h>
#include <X11/Xutil.h>
#include <X11/extensions/XTest.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/input-event-codes.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "console_pattern.h"
#include "vdagent_guest.h"

#include "agents.h"
#include "display.h"
#include "display/console.h"
#include "display_sdl.h"
#include "log.h"

extern char **environ;

/* ---- the pattern adapter and a recording input device ----------------- */

struct pattern_hw {
	pthread_mutex_t lock;
	unsigned want_w, want_h, seed;
	bool redraw;
};

static void pattern_update(void *opaque, struct console *con, bool full)
{
	struct pattern_hw *hw = opaque;
	struct console_surface *s = console_surface(con);

	if (hw->want_w != s->width || hw->want_h != s->height) {
		console_resize(con, hw->want_w, hw->want_h);
		hw->redraw = true;
	}
	if (hw->redraw || full) {
		pattern_fill(con, hw->seed);
		hw->redraw = false;
	}
}

static const struct console_hw_ops pattern_ops = { .update = pattern_update };

/* An adapter that offers modes, with a guest that follows at once. */
static unsigned size_requests, req_w, req_h;

static int pattern_request_size(void *opaque, unsigned w, unsigned h)
{
	struct pattern_hw *hw = opaque;

	size_requests++;
	req_w = hw->want_w = w;
	req_h = hw->want_h = h;
	return 0;
}

static const struct console_hw_ops pattern_sized_ops = {
	.update = pattern_update,
	.request_size = pattern_request_size,
};

#define MAX_EVENTS 256
struct input_rec {
	pthread_mutex_t lock;
	unsigned nkeys;
	struct { unsigned code; bool down; } keys[MAX_EVENTS];
	unsigned nmouse;
	int sum_dx, sum_dy, sum_dz;
	unsigned buttons_seen;		/* OR of every buttons value */
	unsigned last_buttons;
};

static void rec_key(void *opaque, unsigned keycode, bool down)
{
	struct input_rec *r = opaque;

	if (r->nkeys < MAX_EVENTS) {
		r->keys[r->nkeys].code = keycode;
		r->keys[r->nkeys++].down = down;
	}
}

static void rec_mouse(void *opaque, int dx, int dy, int dz, unsigned buttons)
{
	struct input_rec *r = opaque;

	r->nmouse++;
	r->sum_dx += dx;
	r->sum_dy += dy;
	r->sum_dz += dz;
	r->buttons_seen |= buttons;
	r->last_buttons = buttons;
}

static const struct console_input_ops rec_ops = {
	.key = rec_key, .mouse = rec_mouse,
};

/* An absolute pointer (as the virtio tablet): active while @active. */
struct abs_rec {
	pthread_mutex_t lock;
	bool active;
	unsigned n, x, y, buttons, buttons_seen;
	int sum_dz;
	unsigned press_x, press_y;	/* where the last left press was */
};

static bool abs_active(void *opaque)
{
	return ((struct abs_rec *)opaque)->active;
}

static void abs_event(void *opaque, unsigned x, unsigned y, int dz,
		      unsigned buttons)
{
	struct abs_rec *r = opaque;

	if ((buttons & CONSOLE_BTN_LEFT) && !(r->buttons & CONSOLE_BTN_LEFT)) {
		r->press_x = x;
		r->press_y = y;
	}
	r->n++;
	r->x = x;
	r->y = y;
	r->buttons = buttons;
	r->buttons_seen |= buttons;
	r->sum_dz += dz;
}

static const struct console_input_dev_ops abs_ops = {
	.name = "test-tablet", .caps = CONSOLE_INPUT_ABS, .prio = 0,
	.active = abs_active, .abs = abs_event,
};

static void rec_clear(struct input_rec *r)
{
	pthread_mutex_lock(&r->lock);
	r->nkeys = r->nmouse = 0;
	r->sum_dx = r->sum_dy = r->sum_dz = 0;
	r->buttons_seen = r->last_buttons = 0;
	pthread_mutex_unlock(&r->lock);
}

/* ---- the world: Xvfb, a console, the window --------------------------- */

static pid_t xvfb_pid;
static Display *dpy;
static struct console *con;
static struct pattern_hw hw = { .lock = PTHREAD_MUTEX_INITIALIZER };
static struct input_rec in = { .lock = PTHREAD_MUTEX_INITIALIZER };
static struct abs_rec tablet = { .lock = PTHREAD_MUTEX_INITIALIZER };
static struct sdl_display *sdl;
static int closes;

static void on_close(void *opaque)
{
	closes++;
}

static const struct sdl_display_cbs cbs = { .close = on_close };

static bool have_program(const char *name)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", name);
	return system(cmd) == 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Xvfb on a display number of its own.  Not -displayfd's first free one:
 * X servers of other sandboxes on this machine may share the abstract
 * socket namespace (@/tmp/.X11-unix/XN) without sharing /tmp's lock files,
 * so start high, at a number from our pid, and move on when Xvfb exits
 * (its socket was taken) or something else answers. */
static void start_xvfb(void)
{
	char dispname[40];
	posix_spawn_file_actions_t fa;
	const char *log = getenv("XVFB_LOG");

	for (int attempt = 0; attempt < 8 && !dpy; attempt++) {
		int n = 100 + (int)((getpid() + attempt * 97) % 800);
		Display *other;
		int status;

		snprintf(dispname, sizeof(dispname), ":%d", n);
		other = XOpenDisplay(dispname);
		if (other) {
			XCloseDisplay(other);
			continue;
		}
		char *argv[] = { "Xvfb", dispname, "-screen", "0", "1280x1024x24",
				 "-nolisten", "tcp", "-noreset", NULL };
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_addopen(&fa, 2, log ? log : "/dev/null",
						 O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (posix_spawnp(&xvfb_pid, "Xvfb", &fa, NULL, argv, environ))
			SKIP("cannot start Xvfb");
		posix_spawn_file_actions_destroy(&fa);
		for (int i = 0; i < 100 && !dpy; i++) {
			if (waitpid(xvfb_pid, &status, WNOHANG) == xvfb_pid) {
				xvfb_pid = 0;	/* gave up: display taken */
				break;
			}
			usleep(100000);
			dpy = XOpenDisplay(dispname);
		}
		if (!dpy && xvfb_pid > 0) {
			kill(xvfb_pid, SIGTERM);
			waitpid(xvfb_pid, NULL, 0);
			xvfb_pid = 0;
		}
	}
	if (!dpy)
		SKIP("Xvfb did not start (8 display numbers tried)");
	setenv("DISPLAY", dispname, 1);
	unsetenv("WAYLAND_DISPLAY");
	setenv("SDL_VIDEODRIVER", "x11", 1);
	printf("  Xvfb on %s\n", dispname);
}

static void stop_xvfb(void)
{
	if (dpy)
		XCloseDisplay(dpy);
	if (xvfb_pid > 0) {
		kill(xvfb_pid, SIGTERM);
		waitpid(xvfb_pid, NULL, 0);
	}
}

/* One turn of the VM process's display loop. */
static void frame(void)
{
	console_refresh(con);
	sdl_display_poll(sdl);
}

static void pump(double secs)
{
	double end = now_s() + secs;

	while (now_s() < end) {
		frame();
		usleep(5000);
	}
}

/* Real key presses and releases by keycode (XTEST), then let them
 * arrive. */
static void key_event(const char *keysym_name, bool down)
{
	KeyCode kc = XKeysymToKeycode(dpy, XStringToKeysym(keysym_name));

	CHECK(kc);
	XTestFakeKeyEvent(dpy, kc, down, 0);
	XSync(dpy, False);
	pump(0.03);
}

/* Press the keys of "A+B+C" in order, release them in reverse. */
static void keys(const char *combo)
{
	char buf[128], *names[8], *save;
	int n = 0;

	snprintf(buf, sizeof(buf), "%s", combo);
	for (char *t = strtok_r(buf, "+", &save); t && n < 8;
	     t = strtok_r(NULL, "+", &save))
		names[n++] = t;
	for (int i = 0; i < n; i++)
		key_event(names[i], true);
	for (int i = n - 1; i >= 0; i--)
		key_event(names[i], false);
	pump(0.1);
}

static void button(unsigned b, bool down)
{
	XTestFakeButtonEvent(dpy, b, down, 0);
	XSync(dpy, False);
	pump(0.03);
}

static bool title_of(Window w, char *buf, size_t len)
{
	XTextProperty tp;
	bool ok = false;

	if (XGetWMName(dpy, w, &tp) && tp.value) {
		snprintf(buf, len, "%s", (char *)tp.value);
		XFree(tp.value);
		ok = true;
	}
	return ok;
}

/* The top-level window whose title contains @needle (no window manager:
 * SDL's window is a child of the root). */
static Window find_window(const char *needle)
{
	Window root_ret, parent, *kids = NULL, found = 0;
	unsigned n = 0;
	char title[512];

	if (!XQueryTree(dpy, DefaultRootWindow(dpy), &root_ret, &parent, &kids, &n))
		return 0;
	for (unsigned i = 0; i < n && !found; i++) {
		XWindowAttributes a;

		if (XGetWindowAttributes(dpy, kids[i], &a) &&
		    a.map_state == IsViewable && title_of(kids[i], title, sizeof(title)) &&
		    strstr(title, needle))
			found = kids[i];
	}
	if (kids)
		XFree(kids);
	return found;
}

static void window_size(Window w, int *ww, int *wh)
{
	XWindowAttributes a;

	XGetWindowAttributes(dpy, w, &a);
	*ww = a.width;
	*wh = a.height;
}

/* What the window shows, as 0x00RRGGBB. */
static uint32_t *grab_pixels(Window w, int ww, int wh)
{
	XImage *img = XGetImage(dpy, w, 0, 0, (unsigned)ww, (unsigned)wh,
				AllPlanes, ZPixmap);
	uint32_t *p;

	if (!img)
		return NULL;
	p = malloc((size_t)ww * wh * 4);
	for (int y = 0; p && y < wh; y++)
		for (int x = 0; x < ww; x++)
			p[(size_t)y * ww + x] = XGetPixel(img, x, y) & 0xffffff;
	XDestroyImage(img);
	return p;
}

static void dump_keys(const char *what)
{
	if (!getenv("DUMP_KEYS"))
		return;
	printf("  %s:", what);
	for (unsigned i = 0; i < in.nkeys; i++)
		printf(" %u%s", in.keys[i].code, in.keys[i].down ? "d" : "u");
	printf("\n");
}

static unsigned count_keys(void)
{
	unsigned n;

	pthread_mutex_lock(&in.lock);
	n = in.nkeys;
	pthread_mutex_unlock(&in.lock);
	return n;
}

static bool key_seen(unsigned code)
{
	bool seen = false;

	pthread_mutex_lock(&in.lock);
	for (unsigned i = 0; i < in.nkeys; i++)
		seen |= in.keys[i].code == code;
	pthread_mutex_unlock(&in.lock);
	return seen;
}

static Window win;

/* Run the display loop until the window is @w x @h (or 3 s passed);
 * returns the size it has then. */
static void wait_size(int w, int h, int *ww, int *wh)
{
	double end = now_s() + 3;

	do {
		pump(0.05);
		window_size(win, ww, wh);
	} while ((*ww != w || *wh != h) && now_s() < end);
	pump(0.1);
}

/* Run the display loop until @n key events arrived (or 3 s passed). */
static void wait_keys(unsigned n)
{
	double end = now_s() + 3;

	while (count_keys() < n && now_s() < end)
		pump(0.02);
	pump(0.1);	/* and catch any extra */
}

/* Pixels of the window (@ww x @wh) that differ from the pattern shown at
 * the whole scale @k; retried while the display loop catches up (3 s). */
static unsigned mismatches(int ww, int wh, unsigned k, unsigned seed)
{
	double end = now_s() + 3;
	unsigned bad;

	for (;;) {
		uint32_t *p = grab_pixels(win, ww, wh);

		bad = p ? 0 : (unsigned)(ww * wh);
		for (int y = 0; p && y < wh; y++)
			for (int x = 0; x < ww; x++)
				bad += p[(size_t)y * ww + x] !=
				       pattern_pixel((unsigned)x / k, (unsigned)y / k, seed);
		free(p);
		if (!bad || now_s() > end)
			return bad;
		pump(0.05);
	}
}

static void resize_window(int w, int h)
{
	XResizeWindow(dpy, win, (unsigned)w, (unsigned)h);
	XSync(dpy, False);
	pump(0.5);
}

/* ---- tests ------------------------------------------------------------ */

/* The window opens at the guest's size, titled with the VM's name. */
static void test_open(void)
{
	char err[256] = "", title[512] = "";
	double end = now_s() + 5;
	int ww = 0, wh = 0;

	sdl = sdl_display_new(con, "testvm", &cbs, NULL, err, sizeof(err));
	CHECK(sdl);
	if (!sdl) {
		fprintf(stderr, "  %s\n", err);
		stop_xvfb();
		exit(check_finish());
	}
	while (!(win = find_window("testvm")) && now_s() < end)
		pump(0.05);
	CHECK(win);
	if (!win) {
		stop_xvfb();
		exit(check_finish());
	}
	wait_size(320, 200, &ww, &wh);
	CHECK_EQ(ww, 320);
	CHECK_EQ(wh, 200);
	title_of(win, title, sizeof(title));
	CHECK(!strcmp(title, "testvm - Vivarium"));
	sdl_display_set_state(sdl, "Running");
	pump(0.1);
	title_of(win, title, sizeof(title));
	CHECK(!strcmp(title, "testvm - Running - Vivarium"));
}

/* At scale 1 the window shows the surface exactly. */
static void test_pixels_scale1(void)
{
	CHECK_EQ(mismatches(320, 200, 1, hw.seed), 0);

	/* A redraw with other content reaches the window. */
	pthread_mutex_lock(&hw.lock);
	hw.seed = 77;
	hw.redraw = true;
	pthread_mutex_unlock(&hw.lock);
	pump(0.1);
	CHECK_EQ(mismatches(320, 200, 1, 77), 0);
}

/* At exactly 2x every guest pixel is a sharp 2x2 block; at 1.5625x the
 * picture is letterboxed (black bands above and below). */
static void test_scaling(void)
{
	uint32_t *p;
	unsigned bad = 0, lit = 0;

	resize_window(640, 400);
	CHECK_EQ(mismatches(640, 400, 2, hw.seed), 0);

	resize_window(500, 400);	/* 500/320 = 1.5625 < 400/200 */
	p = grab_pixels(win, 500, 400);
	CHECK(p);
	if (p) {
		/* Picture 500x313 from y = 43. */
		for (unsigned x = 0; x < 500; x++) {
			bad += p[10 * 500 + x] != 0 || p[390 * 500 + x] != 0;
			lit += p[200 * 500 + x] != 0;
		}
		CHECK_EQ(bad, 0);
		CHECK(lit > 450);
	}
	free(p);
}

/* A new guest mode resizes the window to it at scale 1. */
static void test_guest_resize(void)
{
	int ww, wh;

	pthread_mutex_lock(&hw.lock);
	hw.want_w = 400;
	hw.want_h = 300;
	pthread_mutex_unlock(&hw.lock);
	wait_size(400, 300, &ww, &wh);
	CHECK_EQ(ww, 400);
	CHECK_EQ(wh, 300);
	CHECK_EQ(mismatches(400, 300, 1, hw.seed), 0);

	/* Larger than the desktop (1280x1024, no panels): scaled down to
	 * fit, aspect kept. */
	pthread_mutex_lock(&hw.lock);
	hw.want_w = 1600;
	hw.want_h = 1200;
	pthread_mutex_unlock(&hw.lock);
	wait_size(1280, 960, &ww, &wh);
	CHECK_EQ(ww, 1280);
	CHECK_EQ(wh, 960);
	pthread_mutex_lock(&hw.lock);
	hw.want_w = 400;
	hw.want_h = 300;
	pthread_mutex_unlock(&hw.lock);
	wait_size(400, 300, &ww, &wh);
	CHECK_EQ(ww, 400);
	CHECK_EQ(wh, 300);
}

/* A window the user resizes is offered to an adapter that can take it,
 * once, after it settles; the guest's new mode then shows at scale 1. */
static void test_resize_request(void)
{
	int ww, wh;

	console_set_hw(con, &pattern_sized_ops, &hw, &hw.lock);
	pthread_mutex_lock(&hw.lock);
	size_requests = 0;
	pthread_mutex_unlock(&hw.lock);
	/* A drag: several sizes in quick succession, one request. */
	XResizeWindow(dpy, win, 450, 330);
	XSync(dpy, False);
	pump(0.05);
	XResizeWindow(dpy, win, 520, 360);
	XSync(dpy, False);
	pump(0.05);
	pthread_mutex_lock(&hw.lock);
	CHECK_EQ(size_requests, 0);		/* not settled yet */
	pthread_mutex_unlock(&hw.lock);
	pump(0.6);
	pthread_mutex_lock(&hw.lock);
	CHECK_EQ(size_requests, 1);
	CHECK_EQ(req_w, 520);
	CHECK_EQ(req_h, 360);
	pthread_mutex_unlock(&hw.lock);
	wait_size(520, 360, &ww, &wh);
	CHECK_EQ(ww, 520);
	CHECK_EQ(wh, 360);
	CHECK_EQ(mismatches(520, 360, 1, hw.seed), 0);
	/* The window following the guest asks nothing more. */
	pump(0.5);
	pthread_mutex_lock(&hw.lock);
	CHECK_EQ(size_requests, 1);
	pthread_mutex_unlock(&hw.lock);

	/* Back to the adapter without modes: a resize only scales. */
	console_set_hw(con, &pattern_ops, &hw, &hw.lock);
	pthread_mutex_lock(&hw.lock);
	hw.want_w = 400;
	hw.want_h = 300;
	pthread_mutex_unlock(&hw.lock);
	wait_size(400, 300, &ww, &wh);
	resize_window(800, 600);
	pump(0.4);
	CHECK_EQ(mismatches(800, 600, 2, hw.seed), 0);
	pthread_mutex_lock(&hw.lock);
	CHECK_EQ(size_requests, 1);
	CHECK_EQ(hw.want_w, 400);
	pthread_mutex_unlock(&hw.lock);
	resize_window(400, 300);
}

static void focus(void)
{
	XSetInputFocus(dpy, win, RevertToPointerRoot, CurrentTime);
	XSync(dpy, False);
	pump(0.2);
}

/* Keys by scancode to KEY_*; the host key stays out of the guest; its
 * combinations are ours; focus loss lets go of held keys. */
static void test_keys(void)
{
	char title[512];

	focus();
	rec_clear(&in);
	keys("a");
	keys("Return");
	keys("Alt_R");		/* AltGr */
	keys("Print");
	keys("Pause");
	keys("F12");
	wait_keys(12);
	pthread_mutex_lock(&in.lock);
	dump_keys("typed");
	CHECK_EQ(in.nkeys, 12);
	CHECK_EQ(in.keys[0].code, KEY_A);
	CHECK(in.keys[0].down);
	CHECK_EQ(in.keys[1].code, KEY_A);
	CHECK(!in.keys[1].down);
	CHECK_EQ(in.keys[2].code, KEY_ENTER);
	CHECK_EQ(in.keys[4].code, KEY_RIGHTALT);
	CHECK_EQ(in.keys[6].code, KEY_SYSRQ);
	CHECK_EQ(in.keys[8].code, KEY_PAUSE);
	CHECK_EQ(in.keys[10].code, KEY_F12);
	CHECK(!in.keys[11].down);
	pthread_mutex_unlock(&in.lock);

	/* Host alone: grab on (hint in the title), nothing to the guest;
	 * again: grab off. */
	rec_clear(&in);
	keys("Control_R");
	title_of(win, title, sizeof(title));
	CHECK(strstr(title, "(Right Ctrl releases)"));
	keys("Control_R");
	title_of(win, title, sizeof(title));
	CHECK(!strstr(title, "Right Ctrl"));
	dump_keys("host");
	CHECK_EQ(count_keys(), 0);

	/* Host+Del: Ctrl+Alt+Del in the guest, and no grab toggle. */
	rec_clear(&in);
	keys("Control_R+Delete");
	wait_keys(6);
	pthread_mutex_lock(&in.lock);
	dump_keys("host+del");
	CHECK_EQ(in.nkeys, 6);
	CHECK_EQ(in.keys[0].code, KEY_LEFTCTRL);
	CHECK_EQ(in.keys[1].code, KEY_LEFTALT);
	CHECK_EQ(in.keys[2].code, KEY_DELETE);
	CHECK(in.keys[2].down);
	CHECK_EQ(in.keys[5].code, KEY_LEFTCTRL);
	CHECK(!in.keys[5].down);
	pthread_mutex_unlock(&in.lock);
	CHECK(!key_seen(KEY_RIGHTCTRL));
	title_of(win, title, sizeof(title));
	CHECK(!strstr(title, "Right Ctrl"));

	/* A key held when the focus goes elsewhere is released. */
	rec_clear(&in);
	key_event("Shift_L", true);
	wait_keys(1);
	CHECK_EQ(count_keys(), 1);
	{
		Window other = XCreateSimpleWindow(dpy, DefaultRootWindow(dpy),
						   900, 900, 50, 50, 0, 0, 0);

		XMapWindow(dpy, other);
		XSync(dpy, False);
		pump(0.1);
		XSetInputFocus(dpy, other, RevertToPointerRoot, CurrentTime);
		XSync(dpy, False);
		wait_keys(2);
		pthread_mutex_lock(&in.lock);
		CHECK_EQ(in.nkeys, 2);
		CHECK_EQ(in.keys[1].code, KEY_LEFTSHIFT);
		CHECK(!in.keys[1].down);
		pthread_mutex_unlock(&in.lock);
		key_event("Shift_L", false);
		XDestroyWindow(dpy, other);
		XSync(dpy, False);
	}
	CHECK_EQ(count_keys(), 2);
}

/* A click grabs (and is not the guest's); then motion, buttons and the
 * wheel go to the guest; the host key lets go. */
static void test_mouse(void)
{
	char title[512];
	Window child;
	int rx, ry;

	focus();
	rec_clear(&in);
	XTranslateCoordinates(dpy, win, DefaultRootWindow(dpy), 100, 100, &rx,
			      &ry, &child);
	XTestFakeMotionEvent(dpy, -1, rx, ry, 0);
	XSync(dpy, False);
	pump(0.1);
	button(1, true);
	button(1, false);
	pump(0.1);
	title_of(win, title, sizeof(title));
	CHECK(strstr(title, "(Right Ctrl releases)"));
	pthread_mutex_lock(&in.lock);
	CHECK_EQ(in.buttons_seen, 0);		/* the grabbing click */
	pthread_mutex_unlock(&in.lock);

	XTestFakeRelativeMotionEvent(dpy, 30, -20, 0);
	XSync(dpy, False);
	pump(0.1);
	button(3, true);
	button(3, false);
	button(5, true);			/* wheel down */
	button(5, false);
	pump(0.1);
	pthread_mutex_lock(&in.lock);
	printf("  mouse: %u events, dx %d dy %d dz %d buttons 0x%x\n",
	       in.nmouse, in.sum_dx, in.sum_dy, in.sum_dz, in.buttons_seen);
	CHECK_EQ(in.sum_dx, 30);
	CHECK_EQ(in.sum_dy, -20);
	CHECK_EQ(in.buttons_seen, CONSOLE_BTN_RIGHT);
	CHECK_EQ(in.last_buttons, 0);
	CHECK_EQ(in.sum_dz, 1);		/* towards the user */
	pthread_mutex_unlock(&in.lock);
	keys("Control_R");
	title_of(win, title, sizeof(title));
	CHECK(!strstr(title, "Right Ctrl"));
}

/* Does another client hold a grab of the keyboard or the pointer?  (We
 * try to take both, and let go.) */
static bool grabbed_elsewhere(void)
{
	Window root = DefaultRootWindow(dpy);
	int k = XGrabKeyboard(dpy, root, False, GrabModeAsync, GrabModeAsync,
			      CurrentTime);
	int p = XGrabPointer(dpy, root, False, ButtonPressMask, GrabModeAsync,
			     GrabModeAsync, None, None, CurrentTime);

	if (k == GrabSuccess)
		XUngrabKeyboard(dpy, CurrentTime);
	if (p == GrabSuccess)
		XUngrabPointer(dpy, CurrentTime);
	XSync(dpy, False);
	return k != GrabSuccess || p != GrabSuccess;
}

/* Move the pointer to window point (@x, @y) (XTEST, root coordinates). */
static void move_to(int x, int y)
{
	Window child;
	int rx, ry;

	XTranslateCoordinates(dpy, win, DefaultRootWindow(dpy), x, y, &rx, &ry,
			      &child);
	XTestFakeMotionEvent(dpy, -1, rx, ry, 0);
	XSync(dpy, False);
	pump(0.05);
}

/* The guest pixel an absolute coordinate (0..CONSOLE_ABS_MAX) lands on in
 * a screen @size pixels across, as Linux's evdev users scale it: both
 * v * size / (max + 1) and v * (size - 1) / max, rounded (libinput,
 * Xorg), must agree; returns the first, or ~0u if they differ. */
static unsigned guest_pixel(unsigned v, unsigned size)
{
	unsigned a = (unsigned)((unsigned long long)v * size / (CONSOLE_ABS_MAX + 1));
	unsigned b = (unsigned)(((unsigned long long)v * (size - 1) +
				 CONSOLE_ABS_MAX / 2) / CONSOLE_ABS_MAX);

	return a == b ? a : ~0u;
}

/* With the window @ww x @wh showing the 400x300 guest at @x0,@y0 scaled to
 * @pw x @ph (what present() computes): a click at the centre of guest
 * pixel (@gx, @gy)'s span arrives at that pixel. */
static void click_lands(int ww, int wh, int x0, int y0, int pw, int ph,
			unsigned gx, unsigned gy)
{
	int wx = x0 + (int)(((2 * gx + 1) * (unsigned)pw) / 800);
	int wy = y0 + (int)(((2 * gy + 1) * (unsigned)ph) / 600);
	unsigned px, py, n;

	(void)ww;
	(void)wh;
	move_to(wx, wy);
	button(1, true);
	button(1, false);
	pump(0.05);
	pthread_mutex_lock(&tablet.lock);
	px = guest_pixel(tablet.press_x, 400);
	py = guest_pixel(tablet.press_y, 300);
	n = tablet.n;
	pthread_mutex_unlock(&tablet.lock);
	if (px != gx || py != gy)
		fprintf(stderr, "  window %dx%d, point %d,%d: pixel %u,%u arrived as %u,%u\n",
			ww, wh, wx, wy, gx, gy, px, py);
	CHECK_EQ(px, gx);
	CHECK_EQ(py, gy);
	CHECK(n > 0);
}

/* An absolute pointer the guest drives: clicks arrive where they are on
 * the picture (scaled, letterboxed), nothing grabs, the pointer leaves
 * and comes back freely; when the guest lets go of the device, a click
 * grabs again. */
static void test_absolute(void)
{
	static const unsigned px[][2] = { { 0, 0 }, { 399, 299 }, { 1, 1 },
					  { 200, 150 }, { 123, 45 }, { 398, 7 } };
	char title[512];
	int ww, wh;
	Window root_ret, child;
	int rx, ry, cx, cy;
	unsigned mask;

	focus();
	rec_clear(&in);
	pthread_mutex_lock(&tablet.lock);
	tablet.active = true;
	pthread_mutex_unlock(&tablet.lock);
	CHECK_EQ(console_add_input(con, &abs_ops, &tablet, &tablet.lock), 0);
	pump(0.1);
	title_of(win, title, sizeof(title));
	CHECK(strstr(title, "(seamless mouse: test-tablet)") != NULL);

	/* 2x, nearest: the picture fills the window. */
	resize_window(800, 600);
	window_size(win, &ww, &wh);
	CHECK(ww == 800 && wh == 600);
	for (unsigned i = 0; i < sizeof(px) / sizeof(px[0]); i++)
		click_lands(800, 600, 0, 0, 800, 600, px[i][0], px[i][1]);
	/* 4/3, linear, black bands left and right: the picture is
	 * 533x400 from x = 83. */
	resize_window(700, 400);
	for (unsigned i = 0; i < sizeof(px) / sizeof(px[0]); i++)
		click_lands(700, 400, 83, 0, 533, 400, px[i][0], px[i][1]);
	/* A band maps to the picture's edge. */
	move_to(10, 200);
	pthread_mutex_lock(&tablet.lock);
	CHECK_EQ(guest_pixel(tablet.x, 400), 0);
	pthread_mutex_unlock(&tablet.lock);
	pthread_mutex_lock(&in.lock);
	CHECK_EQ(in.nmouse, 0);			/* nothing relative */
	CHECK_EQ(in.buttons_seen, 0);
	pthread_mutex_unlock(&in.lock);

	/* Never grabbed: not after clicks, not by the host key. */
	title_of(win, title, sizeof(title));
	CHECK(!strstr(title, "Right Ctrl"));
	CHECK(!grabbed_elsewhere());
	keys("Control_R");
	title_of(win, title, sizeof(title));
	CHECK(!strstr(title, "Right Ctrl"));
	CHECK(!grabbed_elsewhere());

	/* Out of the window and back: the pointer goes where it is sent. */
	XTestFakeMotionEvent(dpy, -1, 1200, 1000, 0);
	XSync(dpy, False);
	pump(0.1);
	XQueryPointer(dpy, DefaultRootWindow(dpy), &root_ret, &child, &rx, &ry,
		      &cx, &cy, &mask);
	CHECK(rx == 1200 && ry == 1000);
	/* The wheel, then right button, back over the picture. */
	click_lands(700, 400, 83, 0, 533, 400, 300, 200);
	button(5, true);
	button(5, false);
	button(3, true);
	pump(0.05);
	pthread_mutex_lock(&tablet.lock);
	CHECK_EQ(tablet.sum_dz, 1);		/* towards the user */
	CHECK_EQ(tablet.buttons, CONSOLE_BTN_RIGHT);
	pthread_mutex_unlock(&tablet.lock);
	button(3, false);
	pump(0.05);
	pthread_mutex_lock(&tablet.lock);
	CHECK_EQ(tablet.buttons, 0);
	CHECK_EQ(tablet.buttons_seen, CONSOLE_BTN_LEFT | CONSOLE_BTN_RIGHT);
	pthread_mutex_unlock(&tablet.lock);

	/* The guest lets go (a reboot): relative again, a click grabs. */
	pthread_mutex_lock(&tablet.lock);
	tablet.active = false;
	pthread_mutex_unlock(&tablet.lock);
	pump(0.1);
	title_of(win, title, sizeof(title));
	CHECK(!strstr(title, "seamless"));
	move_to(350, 200);
	button(1, true);
	button(1, false);
	pump(0.1);
	title_of(win, title, sizeof(title));
	CHECK(strstr(title, "(Right Ctrl releases)") != NULL);
	CHECK(grabbed_elsewhere());
	/* ... and the guest taking it up again ends the grab. */
	pthread_mutex_lock(&tablet.lock);
	tablet.active = true;
	pthread_mutex_unlock(&tablet.lock);
	pump(0.1);
	title_of(win, title, sizeof(title));
	CHECK(strstr(title, "(seamless mouse: test-tablet)") != NULL);
	CHECK(!grabbed_elsewhere());
	console_remove_input(con, &abs_ops, &tablet);
	pump(0.1);
	title_of(win, title, sizeof(title));
	CHECK(!strstr(title, "seamless") && !strstr(title, "Right Ctrl"));
	resize_window(400, 300);
}

/* The _NET_WM_STATE request SDL sends the window manager (the root
 * window gets it): 1 add, 0 remove the full-screen state; -1 none. */
static int fullscreen_request(void)
{
	Atom state = XInternAtom(dpy, "_NET_WM_STATE", False);
	Atom fs = XInternAtom(dpy, "_NET_WM_STATE_FULLSCREEN", False);
	XEvent ev;
	int r = -1;

	while (XCheckTypedEvent(dpy, ClientMessage, &ev))
		if (ev.xclient.window == win && ev.xclient.message_type == state &&
		    ((Atom)ev.xclient.data.l[1] == fs ||
		     (Atom)ev.xclient.data.l[2] == fs))
			r = (int)ev.xclient.data.l[0];
	return r;
}

/* Host+F asks the window manager for full screen, again to leave it; the
 * F is not the guest's. */
static void test_fullscreen(void)
{
	focus();
	rec_clear(&in);
	XSelectInput(dpy, DefaultRootWindow(dpy), SubstructureNotifyMask);
	XSync(dpy, False);
	keys("Control_R+f");
	XSync(dpy, False);
	CHECK_EQ(fullscreen_request(), 1);
	keys("Control_R+f");
	XSync(dpy, False);
	CHECK_EQ(fullscreen_request(), 0);
	XSelectInput(dpy, DefaultRootWindow(dpy), NoEventMask);
	CHECK_EQ(count_keys(), 0);
}

/* The window manager's close request (WM_DELETE_WINDOW) calls close(). */
static void test_close(void)
{
	XEvent ev = { 0 };

	closes = 0;
	ev.xclient.type = ClientMessage;
	ev.xclient.window = win;
	ev.xclient.message_type = XInternAtom(dpy, "WM_PROTOCOLS", False);
	ev.xclient.format = 32;
	ev.xclient.data.l[0] = (long)XInternAtom(dpy, "WM_DELETE_WINDOW", False);
	ev.xclient.data.l[1] = CurrentTime;
	XSendEvent(dpy, win, False, NoEventMask, &ev);
	XSync(dpy, False);
	pump(0.3);
	CHECK_EQ(closes, 1);
	/* The window stays until the VM process frees it. */
	CHECK(find_window("testvm") == win);
	sdl_display_free(sdl);
	sdl = NULL;
	XSync(dpy, False);
	CHECK(!find_window("testvm"));
}

/* ---- the clipboard --------------------------------------------------- */

/* An X client owning CLIPBOARD, on a thread with its own connection (the
 * window's SDL_GetClipboardText waits for its answer on the main
 * thread).  It offers UTF8_STRING, or only image/png with @image. */
struct clip_owner {
	pthread_t thread;
	char text[256];
	bool image;
	volatile bool stop, owning, lost;
	volatile unsigned answered;	/* conversions served */
};

static void *clip_owner_main(void *opaque)
{
	struct clip_owner *o = opaque;
	Display *d = XOpenDisplay(NULL);
	Window w;
	Atom clipboard, targets, utf8, png;

	if (!d)
		return NULL;
	clipboard = XInternAtom(d, "CLIPBOARD", False);
	targets = XInternAtom(d, "TARGETS", False);
	utf8 = XInternAtom(d, "UTF8_STRING", False);
	png = XInternAtom(d, "image/png", False);
	w = XCreateSimpleWindow(d, DefaultRootWindow(d), 0, 0, 1, 1, 0, 0, 0);
	XSetSelectionOwner(d, clipboard, w, CurrentTime);
	XSync(d, False);
	o->owning = XGetSelectionOwner(d, clipboard) == w;
	while (!o->stop) {
		while (XPending(d)) {
			XEvent ev, reply = { 0 };
			XSelectionRequestEvent *rq = &ev.xselectionrequest;

			XNextEvent(d, &ev);
			if (ev.type == SelectionClear) {
				o->lost = true;
				continue;
			}
			if (ev.type != SelectionRequest)
				continue;
			reply.xselection.type = SelectionNotify;
			reply.xselection.requestor = rq->requestor;
			reply.xselection.selection = rq->selection;
			reply.xselection.target = rq->target;
			reply.xselection.time = rq->time;
			reply.xselection.property = rq->property;
			if (rq->target == targets) {
				Atom list[2] = { targets, o->image ? png : utf8 };

				XChangeProperty(d, rq->requestor, rq->property, XA_ATOM,
						32, PropModeReplace,
						(unsigned char *)list, 2);
			} else if (rq->target == utf8 && !o->image) {
				XChangeProperty(d, rq->requestor, rq->property, utf8, 8,
						PropModeReplace,
						(unsigned char *)o->text,
						(int)strlen(o->text));
			} else if (rq->target == png && o->image) {
				static const unsigned char sig[8] = {
					0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };

				XChangeProperty(d, rq->requestor, rq->property, png, 8,
						PropModeReplace, sig, 8);
			} else {
				reply.xselection.property = None;
			}
			XSendEvent(d, rq->requestor, False, NoEventMask, &reply);
			XFlush(d);
			o->answered++;
		}
		usleep(2000);
	}
	XDestroyWindow(d, w);
	XCloseDisplay(d);
	return NULL;
}

static void clip_owner_start(struct clip_owner *o, const char *text,
			     bool image)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->text, sizeof(o->text), "%s", text);
	o->image = image;
	pthread_create(&o->thread, NULL, clip_owner_main, o);
}

static void clip_owner_stop(struct clip_owner *o)
{
	o->stop = true;
	pthread_join(o->thread, NULL);
}

static struct vcon_guest vg;
static struct vm_agents *agents;
static struct vm_display *vd;

/* The VM process's main loop (the display's frame timer, the agents'
 * port watch) for @secs, or until @done says so. */
static bool loop_until(bool (*done)(void), double secs)
{
	double end = now_s() + secs;

	while (now_s() < end) {
		while (g_main_context_iteration(NULL, FALSE)) {
		}
		if (done && done())
			return true;
		usleep(3000);
	}
	return done ? done() : true;
}

static const char *want_text, *want_owner;

static bool hub_has(void)
{
	const char *owner, *t = vm_agents_clipboard_get(agents, &owner);

	return !strcmp(owner, want_owner) && !g_strcmp0(t, want_text);
}

/* The CLIPBOARD selection's UTF-8 text as an X client pastes it
 * (XConvertSelection), the display loop turning meanwhile (SDL answers
 * from it); NULL if no answer in 3 s. */
static char *x_clipboard_text(void)
{
	Atom clipboard = XInternAtom(dpy, "CLIPBOARD", False);
	Atom utf8 = XInternAtom(dpy, "UTF8_STRING", False);
	Atom prop = XInternAtom(dpy, "VIV_PASTE", False);
	Window w = XCreateSimpleWindow(dpy, DefaultRootWindow(dpy), 0, 0, 1, 1,
				       0, 0, 0);
	double end = now_s() + 3;
	char *text = NULL;
	XEvent ev;

	XConvertSelection(dpy, clipboard, utf8, prop, w, CurrentTime);
	XFlush(dpy);
	while (now_s() < end) {
		loop_until(NULL, 0.01);
		if (!XCheckTypedWindowEvent(dpy, w, SelectionNotify, &ev))
			continue;
		if (ev.xselection.property != None) {
			Atom type;
			int fmt;
			unsigned long n, left;
			unsigned char *data = NULL;

			if (XGetWindowProperty(dpy, w, prop, 0, 65536, True,
					       AnyPropertyType, &type, &fmt, &n,
					       &left, &data) == Success && data) {
				text = strndup((char *)data, n);
				XFree(data);
			}
		}
		break;
	}
	XDestroyWindow(dpy, w);
	return text;
}

/* The guest's agent copies @text: grab, our request, its data. */
static void guest_copies(const char *text)
{
	uint8_t p[8 + 256];
	struct vp_msg m[8];
	size_t len = strlen(text);
	int n;

	p[0] = VD_AGENT_CLIPBOARD_SELECTION_CLIPBOARD;
	p[1] = p[2] = p[3] = 0;
	vp_put32(p + 4, VD_AGENT_CLIPBOARD_UTF8_TEXT);
	vag_send(&vg, 1, VD_AGENT_CLIPBOARD_GRAB, p, 8);
	n = vag_recv(&vg, 1, m, 8);
	CHECK(n > 0 && vag_find(m, n, VD_AGENT_CLIPBOARD_REQUEST) >= 0);
	if (n > 0)
		vp_free(m, n);
	memcpy(p + 8, text, len);
	vag_send(&vg, 1, VD_AGENT_CLIPBOARD, p, 8 + len);
}

/* The host's copy reaches the hub and the guest's paste. */
static void host_copy_reaches_guest(const char *text)
{
	struct clip_owner o;
	struct vp_msg m[8];
	uint8_t rq[8];
	int n, i;

	clip_owner_start(&o, text, false);
	want_text = text;
	want_owner = "host";
	CHECK(loop_until(hub_has, 5));
	CHECK(o.owning && o.answered >= 1);
	/* The guest's agent sees a grab offering text ... */
	n = vag_recv(&vg, 1, m, 8);
	i = n > 0 ? vag_find(m, n, VD_AGENT_CLIPBOARD_GRAB) : -1;
	CHECK(i >= 0);
	if (i >= 0) {
		CHECK_EQ(m[i].size, 8);
		CHECK_EQ(vp_get32(m[i].data + 4), VD_AGENT_CLIPBOARD_UTF8_TEXT);
	}
	if (n > 0)
		vp_free(m, n);
	/* ... and its paste gets the text. */
	memset(rq, 0, sizeof(rq));
	vp_put32(rq + 4, VD_AGENT_CLIPBOARD_UTF8_TEXT);
	vag_send(&vg, 1, VD_AGENT_CLIPBOARD_REQUEST, rq, 8);
	n = vag_recv(&vg, 1, m, 8);
	i = n > 0 ? vag_find(m, n, VD_AGENT_CLIPBOARD) : -1;
	CHECK(i >= 0);
	if (i >= 0) {
		CHECK_EQ(m[i].size, 8 + strlen(text));
		CHECK(m[i].size == 8 + strlen(text) &&
		      memcmp(m[i].data + 8, text, strlen(text)) == 0);
	}
	if (n > 0)
		vp_free(m, n);
	clip_owner_stop(&o);
}

static void test_clipboard(void)
{
	struct vm_display_opts opts = { .kind = VM_DISPLAY_SDL, .name = "cliptest" };
	struct vcon_port *ports[2];
	struct clip_owner o;
	struct vp_msg m[8];
	char err[256] = "", *got;
	int n;

	agents = vm_agents_new(true, true, err, sizeof(err));
	CHECK(agents != NULL);
	if (!agents)
		return;
	n = (int)vm_agents_ports(agents, ports, 2);
	if (vg_init(&vg, ports, (unsigned)n) < 0) {
		CHECK(!"virtio-serial device");
		return;
	}
	CHECK_EQ(vm_display_open(&vd, con, &opts, NULL, NULL, err, sizeof(err)), 0);
	if (!vd) {
		printf("  %s\n", err);
		return;
	}
	vm_display_set_agents(vd, agents);
	vag_connect(&vg, 1, NULL, 0);
	loop_until(NULL, 0.3);

	/* Host -> guest, twice (a second copy replaces the first). */
	host_copy_reaches_guest("copied on the host, \xc3\xa9t\xc3\xa9");
	host_copy_reaches_guest("a second host copy");

	/* Guest -> host: the X CLIPBOARD selection holds the guest's text. */
	guest_copies("copied in the guest \xe2\x9c\x93");
	loop_until(NULL, 0.2);
	got = x_clipboard_text();
	CHECK(got && !strcmp(got, "copied in the guest \xe2\x9c\x93"));
	printf("  X CLIPBOARD after the guest's copy: \"%s\"\n", got ? got : "(none)");
	free(got);
	/* No echo: our own SDL_SetClipboardText raised SDL_CLIPBOARDUPDATE;
	 * it must not come back to the guest as a host grab. */
	loop_until(NULL, 0.5);
	n = vag_recv(&vg, 1, m, 8);
	CHECK(n == 0);
	if (n > 0)
		vp_free(m, n);
	want_text = "copied in the guest \xe2\x9c\x93";
	want_owner = "guest";
	CHECK(hub_has());

	/* An image copied on the host: not carried, and the guest's own
	 * clipboard stays as it is. */
	clip_owner_start(&o, "", true);
	loop_until(NULL, 1.0);
	CHECK(o.owning && o.answered >= 1);
	CHECK(hub_has());
	n = vag_recv(&vg, 1, m, 8);
	CHECK(n == 0);
	if (n > 0)
		vp_free(m, n);
	clip_owner_stop(&o);

	/* After a host text, an image withdraws the host's offer: the
	 * guest's agent gets a release, the hub holds nothing. */
	host_copy_reaches_guest("text before an image");
	clip_owner_start(&o, "", true);
	want_text = NULL;
	want_owner = "none";
	CHECK(loop_until(hub_has, 3));
	n = vag_recv(&vg, 1, m, 8);
	CHECK(n > 0 && vag_find(m, n, VD_AGENT_CLIPBOARD_RELEASE) >= 0);
	if (n > 0)
		vp_free(m, n);
	clip_owner_stop(&o);

	vm_display_close(vd);
	vd = NULL;
	vg_free(&vg);
	vm_agents_free(agents);
}

/* Without a display: NULL and one line. */
static void test_no_display(void)
{
	char err[256] = "";
	struct sdl_display *d;
	char *saved = strdup(getenv("DISPLAY"));

	setenv("DISPLAY", ":9999", 1);
	d = sdl_display_new(con, "x", &cbs, NULL, err, sizeof(err));
	CHECK(!d);
	CHECK(err[0] && !strchr(err, '\n'));
	printf("  no display: %s\n", err);
	sdl_display_free(d);
	setenv("DISPLAY", saved, 1);
	free(saved);
}

int main(void)
{
	XInitThreads();		/* the clipboard owner is a thread */
	log_set_level(LOG_ERROR);
	if (!have_program("Xvfb"))
		SKIP("Xvfb is not installed (Debian: xvfb)");
	start_xvfb();

	con = console_new();
	hw.want_w = 320;
	hw.want_h = 200;
	hw.seed = 1;
	console_set_hw(con, &pattern_ops, &hw, &hw.lock);
	console_set_input(con, &rec_ops, &in, &in.lock);
	console_refresh(con);

	RUN_TEST(test_open);
	RUN_TEST(test_pixels_scale1);
	RUN_TEST(test_scaling);
	RUN_TEST(test_guest_resize);
	RUN_TEST(test_resize_request);
	RUN_TEST(test_keys);
	RUN_TEST(test_mouse);
	RUN_TEST(test_absolute);
	RUN_TEST(test_fullscreen);
	RUN_TEST(test_close);
	RUN_TEST(test_clipboard);
	RUN_TEST(test_no_display);

	console_set_hw(con, NULL, NULL, NULL);
	console_set_input(con, NULL, NULL, NULL);
	console_free(con);
	stop_xvfb();
	return check_finish();
}
