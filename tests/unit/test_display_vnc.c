/* SPDX-License-Identifier: MIT */
/*
 * The VNC server (app/display_vnc.c) against a real RFB client
 * (libvncclient) in the same process, over real sockets: the pixels the
 * client receives, dirty rectangles, desktop resize, key and pointer events
 * reaching the console's input device, VNC authentication, the Unix socket
 * and the errors of bad or busy addresses.
 *
 * The console's adapter here is a test pattern generator: its update()
 * applies what the test asked for (a mode, a redraw, a changed rectangle)
 * through the same console calls the VGA adapter makes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/input-event-codes.h>
#include <netinet/in.h>
#include <rfb/rfbclient.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "console_pattern.h"
#include "display/console.h"
#include "display_vnc.h"
#include "sandboxed.h"

/* ---- the pattern adapter --------------------------------------------- */

struct pattern_hw {
	pthread_mutex_t lock;		/* the "device lock" */
	unsigned want_w, want_h;	/* mode to set at the next update */
	unsigned seed;
	bool redraw;
	bool rect;			/* fill rect with colour */
	unsigned rx, ry, rw, rh;
	uint32_t colour;
};

static void pattern_update(void *opaque, struct console *con, bool full)
{
	struct pattern_hw *hw = opaque;
	struct console_surface *s = console_surface(con);

	if (hw->want_w && (hw->want_w != s->width || hw->want_h != s->height)) {
		console_resize(con, hw->want_w, hw->want_h);
		hw->redraw = true;
	}
	if (hw->redraw || full) {
		pattern_fill(con, hw->seed);
		hw->redraw = false;
	}
	if (hw->rect) {
		for (unsigned y = hw->ry; y < hw->ry + hw->rh; y++)
			for (unsigned x = hw->rx; x < hw->rx + hw->rw; x++)
				s->pixels[y * s->width + x] = hw->colour;
		console_dirty(con, hw->rx, hw->ry, hw->rw, hw->rh);
		hw->rect = false;
	}
}

static const struct console_hw_ops pattern_ops = { .update = pattern_update };

/* An adapter that offers modes, with a guest that follows at once. */
static unsigned size_requests;

static int pattern_request_size(void *opaque, unsigned w, unsigned h)
{
	struct pattern_hw *hw = opaque;	/* the device lock is held */

	size_requests++;
	hw->want_w = w;
	hw->want_h = h;
	hw->seed++;
	return 0;
}

static const struct console_hw_ops pattern_sized_ops = {
	.update = pattern_update,
	.request_size = pattern_request_size,
};

/* ---- a recording input device ---------------------------------------- */

#define MAX_EVENTS 64
struct input_rec {
	pthread_mutex_t lock;
	unsigned nkeys;
	struct { unsigned code; bool down; } keys[MAX_EVENTS];
	unsigned nmouse;
	struct { int dx, dy, dz; unsigned buttons; } mouse[MAX_EVENTS];
};

static void rec_key(void *opaque, unsigned keycode, bool down)
{
	struct input_rec *r = opaque;	/* the device lock is held */

	if (r->nkeys < MAX_EVENTS) {
		r->keys[r->nkeys].code = keycode;
		r->keys[r->nkeys++].down = down;
	}
}

static void rec_mouse(void *opaque, int dx, int dy, int dz, unsigned buttons)
{
	struct input_rec *r = opaque;

	if (r->nmouse < MAX_EVENTS) {
		r->mouse[r->nmouse].dx = dx;
		r->mouse[r->nmouse].dy = dy;
		r->mouse[r->nmouse].dz = dz;
		r->mouse[r->nmouse++].buttons = buttons;
	}
}

static const struct console_input_ops rec_ops = {
	.key = rec_key, .mouse = rec_mouse,
};

/* An absolute pointer the guest drives (as the virtio tablet). */
struct abs_rec {
	pthread_mutex_t lock;
	unsigned n;
	struct { unsigned x, y, buttons; int dz; } ev[MAX_EVENTS];
};

static bool abs_active(void *opaque)
{
	(void)opaque;
	return true;
}

static void abs_event(void *opaque, unsigned x, unsigned y, int dz,
		      unsigned buttons)
{
	struct abs_rec *r = opaque;

	if (r->n < MAX_EVENTS) {
		r->ev[r->n].x = x;
		r->ev[r->n].y = y;
		r->ev[r->n].dz = dz;
		r->ev[r->n++].buttons = buttons;
	}
}

static const struct console_input_dev_ops abs_ops = {
	.name = "test-tablet", .caps = CONSOLE_INPUT_ABS,
	.active = abs_active, .abs = abs_event,
};

/* ---- fixture --------------------------------------------------------- */

struct fixture {
	struct console *con;
	struct pattern_hw hw;
	struct input_rec in;
	struct vnc_display *vnc;
};

static void fixture_init(struct fixture *f, unsigned w, unsigned h)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->hw.lock, NULL);
	pthread_mutex_init(&f->in.lock, NULL);
	f->con = console_new();
	f->hw.want_w = w;
	f->hw.want_h = h;
	f->hw.seed = 1;
	console_set_hw(f->con, &pattern_ops, &f->hw, &f->hw.lock);
	console_set_input(f->con, &rec_ops, &f->in, &f->in.lock);
	console_refresh(f->con);
}

static void fixture_fini(struct fixture *f)
{
	vnc_display_free(f->vnc);
	console_set_hw(f->con, NULL, NULL, NULL);
	console_set_input(f->con, NULL, NULL, NULL);
	console_free(f->con);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A free TCP port on 127.0.0.1 (the kernel's pick, then released). */
static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	getsockname(fd, (struct sockaddr *)&sa, &len);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* 0: the default; the flood test shortens it. */
static unsigned handshake_ms;

static struct vnc_display *start_tcp(struct fixture *f, int *port,
				     const char *password)
{
	char spec[64], err[256] = "";

	*port = free_port();
	snprintf(spec, sizeof(spec), "127.0.0.1:%d", *port);
	f->vnc = vnc_display_new(f->con, spec, &(struct vnc_display_opts){
					 .password = password, .name = "test-vm",
					 .handshake_ms = handshake_ms },
				 err, sizeof(err));
	if (!f->vnc)
		fprintf(stderr, "vnc_display_new(%s): %s\n", spec, err);
	return f->vnc;
}

/* ---- the client ------------------------------------------------------- */

static const char *client_password;
static int client_updates;

static char *get_password(rfbClient *cl)
{
	return strdup(client_password ? client_password : "");
}

static void finished_update(rfbClient *cl)
{
	client_updates++;
}

/* Connect to "host" + port, or to a Unix socket path (port < 0).  Returns
 * NULL if the handshake failed (rfbInitClient frees the client then). */
static rfbClient *client_connect(const char *host, int port,
				 const char *password)
{
	rfbClient *cl = rfbGetClient(8, 3, 4);

	rfbEnableClientLogging = FALSE;
	/* Ask for XRGB8888 so the framebuffer compares with the surface. */
	cl->format.redShift = 16;
	cl->format.greenShift = 8;
	cl->format.blueShift = 0;
	cl->appData.encodingsString = "zrle hextile raw";	/* lossless */
	cl->appData.enableJPEG = FALSE;
	cl->GetPassword = get_password;
	cl->FinishedFrameBufferUpdate = finished_update;
	free(cl->serverHost);
	cl->serverHost = strdup(host);
	cl->serverPort = port < 0 ? 0 : port;
	cl->connectTimeout = 5;
	cl->readTimeout = 10;
	client_password = password;
	client_updates = 0;
	if (!rfbInitClient(cl, NULL, NULL))
		return NULL;
	return cl;
}

static void client_close(rfbClient *cl)
{
	if (cl) {
		free(cl->frameBuffer);	/* the library leaves it to us */
		rfbClientCleanup(cl);
	}
}

/* The client holds exactly the console's current surface (the X byte of
 * XRGB is undefined: libvncclient's ZRLE decoder leaves junk there). */
static bool client_matches(rfbClient *cl, struct console *con)
{
	const uint32_t *fb = (const uint32_t *)cl->frameBuffer;
	struct console_surface s;
	bool same;

	if (console_snapshot(con, &s))
		return false;
	same = cl->width == (int)s.width && cl->height == (int)s.height;
	for (size_t i = 0; same && i < (size_t)s.width * s.height; i++)
		same = ((fb[i] ^ s.pixels[i]) & 0xffffff) == 0;
	free(s.pixels);
	return same;
}

/* Pixel (x, y) of the client's framebuffer as 0x00RRGGBB. */
static uint32_t client_pixel(rfbClient *cl, unsigned x, unsigned y)
{
	return ((const uint32_t *)cl->frameBuffer)[y * cl->width + x] & 0xffffff;
}

/* Run the display loop (refresh, handle server messages) until @done or
 * @timeout seconds pass.  Returns whether @done became true. */
static bool pump(rfbClient *cl, struct fixture *f,
		 bool (*done)(rfbClient *, struct fixture *), double timeout)
{
	double end = now_s() + timeout;

	while (now_s() < end) {
		console_refresh(f->con);
		if (done(cl, f))
			return true;
		if (cl) {
			int n = WaitForMessage(cl, 10000);

			if (n < 0 || (n > 0 && !HandleRFBServerMessage(cl)))
				return false;
		} else {
			usleep(10000);
		}
	}
	return done(cl, f);
}

static bool same_as_console(rfbClient *cl, struct fixture *f)
{
	return client_updates > 0 && client_matches(cl, f->con);
}

static unsigned nkeys(struct fixture *f)
{
	unsigned n;

	pthread_mutex_lock(&f->in.lock);
	n = f->in.nkeys;
	pthread_mutex_unlock(&f->in.lock);
	return n;
}

static unsigned nmouse(struct fixture *f)
{
	unsigned n;

	pthread_mutex_lock(&f->in.lock);
	n = f->in.nmouse;
	pthread_mutex_unlock(&f->in.lock);
	return n;
}

static unsigned want_keys, want_mouse;
static bool got_keys(rfbClient *cl, struct fixture *f)
{
	return nkeys(f) >= want_keys;
}

static bool got_mouse(rfbClient *cl, struct fixture *f)
{
	return nmouse(f) >= want_mouse;
}

static bool one_client(rfbClient *cl, struct fixture *f)
{
	return vnc_display_clients(f->vnc) == 1;
}

static bool no_client(rfbClient *cl, struct fixture *f)
{
	return vnc_display_clients(f->vnc) == 0;
}


/* ---- raw connections --------------------------------------------------- */

static unsigned count_dir(const char *path)
{
	DIR *d = opendir(path);
	unsigned n = 0;

	if (!d)
		return 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 2;	/* . and .. */
}

static unsigned nthreads(void)
{
	return count_dir("/proc/self/task");
}

static unsigned nfds(void)
{
	return count_dir("/proc/self/fd");
}

/* A TCP connection to 127.0.0.1:@port that says nothing (non-blocking, so
 * a full accept queue does not stall the test). */
static int raw_connect(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
	    errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Has the server closed @fd (EOF or reset), after reading what it sent? */
static bool raw_closed(int fd)
{
	char buf[256];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
			  errno != ENOTCONN);
}

/* ---- tests ------------------------------------------------------------ */

/* The first frame is the console's surface, pixel for pixel (the colour
 * channels in the right places); the desktop name is the VM's. */
static void test_pixels(void)
{
	struct fixture f;
	rfbClient *cl;
	int port;

	fixture_init(&f, 320, 200);
	if (!start_tcp(&f, &port, NULL)) {
		CHECK(0);
		fixture_fini(&f);
		return;
	}
	cl = client_connect("127.0.0.1", port, NULL);
	CHECK(cl);
	if (cl) {
		CHECK(!strcmp(cl->desktopName, "test-vm"));
		CHECK_EQ(cl->width, 320);
		CHECK_EQ(cl->height, 200);
		CHECK(pump(cl, &f, same_as_console, 5));
		/* The pattern's red is x*7+y*13+1 at the top left... */
		CHECK_EQ(client_pixel(cl, 0, 0), 0x012d00);
		CHECK(pump(cl, &f, one_client, 5));
		CHECK_EQ(vnc_display_clients(f.vnc), 1);
	}
	client_close(cl);
	fixture_fini(&f);
}

/* A rectangle the adapter marks dirty reaches the client, and only the
 * pixels inside it changed. */
static void test_dirty_rect(void)
{
	struct fixture f;
	rfbClient *cl;
	int port;

	fixture_init(&f, 320, 200);
	if (!start_tcp(&f, &port, NULL)) {
		CHECK(0);
		fixture_fini(&f);
		return;
	}
	cl = client_connect("127.0.0.1", port, NULL);
	CHECK(cl);
	if (cl) {
		CHECK(pump(cl, &f, same_as_console, 5));
		pthread_mutex_lock(&f.hw.lock);
		f.hw.rect = true;
		f.hw.rx = 10, f.hw.ry = 20, f.hw.rw = 30, f.hw.rh = 5;
		f.hw.colour = 0xff8000;
		pthread_mutex_unlock(&f.hw.lock);
		client_updates = 0;
		CHECK(pump(cl, &f, same_as_console, 5));
		CHECK_EQ(client_pixel(cl, 10, 20), 0xff8000);
		CHECK_EQ(client_pixel(cl, 39, 24), 0xff8000);
		CHECK_EQ(client_pixel(cl, 39, 25), pattern_pixel(39, 25, 1));
		CHECK_EQ(client_pixel(cl, 40, 24), pattern_pixel(40, 24, 1));
	}
	client_close(cl);
	fixture_fini(&f);
}

/* A mode change reaches the client as a new desktop size with the new
 * picture. */
static void test_resize(void)
{
	struct fixture f;
	rfbClient *cl;
	int port;

	fixture_init(&f, 320, 200);
	if (!start_tcp(&f, &port, NULL)) {
		CHECK(0);
		fixture_fini(&f);
		return;
	}
	cl = client_connect("127.0.0.1", port, NULL);
	CHECK(cl);
	if (cl) {
		CHECK(pump(cl, &f, same_as_console, 5));
		pthread_mutex_lock(&f.hw.lock);
		f.hw.want_w = 642;	/* not a multiple of 4 */
		f.hw.want_h = 481;
		f.hw.seed = 9;
		pthread_mutex_unlock(&f.hw.lock);
		client_updates = 0;
		CHECK(pump(cl, &f, same_as_console, 5));
		CHECK_EQ(cl->width, 642);
		CHECK_EQ(cl->height, 481);
		CHECK_EQ(client_pixel(cl, 641, 480), pattern_pixel(641, 480, 9));
	}
	client_close(cl);
	fixture_fini(&f);
}

/* RFB SetDesktopSize (type 251, the ExtendedDesktopSize extension) with
 * one screen of @w x @h. */
static bool send_set_desktop_size(rfbClient *cl, unsigned w, unsigned h)
{
	uint8_t m[8 + 16] = { 251, 0, w >> 8, w & 0xff, h >> 8, h & 0xff, 1, 0 };

	m[8 + 8] = w >> 8;
	m[8 + 9] = w & 0xff;
	m[8 + 10] = h >> 8;
	m[8 + 11] = h & 0xff;
	return WriteToRFBServer(cl, (const char *)m, sizeof(m));
}

static bool size_is_800x500(rfbClient *cl, struct fixture *f)
{
	return cl->width == 800 && cl->height == 500 && client_matches(cl, f->con);
}

/* A viewer's SetDesktopSize goes to the adapter; the guest's new mode
 * comes back as a resize.  Without an adapter that offers modes the
 * request changes nothing. */
static void test_set_desktop_size(void)
{
	struct fixture f;
	rfbClient *cl;
	int port;

	fixture_init(&f, 320, 200);
	console_set_hw(f.con, &pattern_sized_ops, &f.hw, &f.hw.lock);
	size_requests = 0;
	if (!start_tcp(&f, &port, NULL)) {
		CHECK(0);
		fixture_fini(&f);
		return;
	}
	cl = client_connect("127.0.0.1", port, NULL);
	CHECK(cl);
	if (cl) {
		CHECK(pump(cl, &f, same_as_console, 5));
		CHECK(send_set_desktop_size(cl, 800, 500));
		CHECK(pump(cl, &f, size_is_800x500, 5));
		pthread_mutex_lock(&f.hw.lock);
		CHECK_EQ(size_requests, 1);
		pthread_mutex_unlock(&f.hw.lock);
		CHECK_EQ(client_pixel(cl, 799, 499), pattern_pixel(799, 499, 2));

		/* The standard VGA's case: refused, nothing changes. */
		console_set_hw(f.con, &pattern_ops, &f.hw, &f.hw.lock);
		CHECK(send_set_desktop_size(cl, 640, 480));
		pump(cl, &f, no_client, 0.5);
		CHECK_EQ(cl->width, 800);
		CHECK_EQ(cl->height, 500);
		CHECK_EQ(size_requests, 1);
		/* A zero size is refused before the console. */
		console_set_hw(f.con, &pattern_sized_ops, &f.hw, &f.hw.lock);
		CHECK(send_set_desktop_size(cl, 0, 480));
		pump(cl, &f, no_client, 0.5);
		CHECK_EQ(size_requests, 1);
		CHECK_EQ(cl->width, 800);
	}
	client_close(cl);
	fixture_fini(&f);
}

/* Keys typed in the viewer arrive as KEY_* press/release pairs; pointer
 * positions become relative motion, buttons and wheel steps. */
static void test_input(void)
{
	struct fixture f;
	rfbClient *cl;
	int port;

	fixture_init(&f, 320, 200);
	if (!start_tcp(&f, &port, NULL)) {
		CHECK(0);
		fixture_fini(&f);
		return;
	}
	cl = client_connect("127.0.0.1", port, NULL);
	CHECK(cl);
	if (cl) {
		CHECK(pump(cl, &f, same_as_console, 5));
		SendKeyEvent(cl, 'a', TRUE);
		SendKeyEvent(cl, 'a', FALSE);
		SendKeyEvent(cl, 0xffe3 /* Control_L */, TRUE);
		SendKeyEvent(cl, 0xff0d /* Return */, TRUE);
		SendKeyEvent(cl, 0xff0d, FALSE);
		SendKeyEvent(cl, 0xffe3, FALSE);
		SendKeyEvent(cl, 0xff52 /* Up */, FALSE); /* never pressed */
		want_keys = 6;
		CHECK(pump(cl, &f, got_keys, 5));
		pthread_mutex_lock(&f.in.lock);
		CHECK_EQ(f.in.nkeys, 6);
		CHECK_EQ(f.in.keys[0].code, KEY_A);
		CHECK(f.in.keys[0].down);
		CHECK_EQ(f.in.keys[1].code, KEY_A);
		CHECK(!f.in.keys[1].down);
		CHECK_EQ(f.in.keys[2].code, KEY_LEFTCTRL);
		CHECK_EQ(f.in.keys[3].code, KEY_ENTER);
		CHECK(f.in.keys[3].down);
		CHECK_EQ(f.in.keys[5].code, KEY_LEFTCTRL);
		CHECK(!f.in.keys[5].down);
		pthread_mutex_unlock(&f.in.lock);

		SendPointerEvent(cl, 100, 100, 0);	/* where we start */
		SendPointerEvent(cl, 105, 97, 0);
		SendPointerEvent(cl, 105, 97, 1);
		SendPointerEvent(cl, 105, 97, 0);
		SendPointerEvent(cl, 105, 97, 8);	/* wheel up */
		SendPointerEvent(cl, 105, 97, 0);	/* no change: nothing */
		SendPointerEvent(cl, 105, 97, 16 | 4);	/* down, right held */
		want_mouse = 5;
		CHECK(pump(cl, &f, got_mouse, 5));
		pthread_mutex_lock(&f.in.lock);
		CHECK_EQ(f.in.nmouse, 5);
		CHECK_EQ(f.in.mouse[0].dx, 5);
		CHECK_EQ(f.in.mouse[0].dy, -3);
		CHECK_EQ(f.in.mouse[0].buttons, 0);
		CHECK_EQ(f.in.mouse[1].buttons, CONSOLE_BTN_LEFT);
		CHECK_EQ(f.in.mouse[2].buttons, 0);
		CHECK_EQ(f.in.mouse[3].dz, -1);
		CHECK_EQ(f.in.mouse[4].dz, 1);
		CHECK_EQ(f.in.mouse[4].buttons, CONSOLE_BTN_RIGHT);
		pthread_mutex_unlock(&f.in.lock);

		/* A key held when the viewer leaves is released. */
		SendKeyEvent(cl, 'b', TRUE);
		want_keys = 7;
		CHECK(pump(cl, &f, got_keys, 5));
		client_close(cl);
		cl = NULL;
		want_keys = 8;
		CHECK(pump(NULL, &f, got_keys, 5));
		pthread_mutex_lock(&f.in.lock);
		CHECK_EQ(f.in.nkeys, 8);
		CHECK_EQ(f.in.keys[7].code, KEY_B);
		CHECK(!f.in.keys[7].down);
		pthread_mutex_unlock(&f.in.lock);
		CHECK(pump(NULL, &f, no_client, 5));
	}
	client_close(cl);
	fixture_fini(&f);
}

static struct abs_rec tablet = { .lock = PTHREAD_MUTEX_INITIALIZER };

static bool got_abs(rfbClient *cl, struct fixture *f)
{
	unsigned n;

	(void)cl;
	(void)f;
	pthread_mutex_lock(&tablet.lock);
	n = tablet.n;
	pthread_mutex_unlock(&tablet.lock);
	return n >= want_mouse;
}

/* With an absolute pointer the guest drives, a viewer's pointer positions
 * arrive as positions (the framebuffer pixel, scaled to 0..0x7fff as
 * console_abs_scale() does), the first one included, with buttons and
 * wheel steps; nothing is relative; a viewer leaving lets go of the
 * buttons there. */
static void test_input_absolute(void)
{
	struct fixture f;
	rfbClient *cl;
	int port;

	fixture_init(&f, 320, 200);
	tablet.n = 0;
	CHECK_EQ(console_add_input(f.con, &abs_ops, &tablet, &tablet.lock), 0);
	if (!start_tcp(&f, &port, NULL)) {
		CHECK(0);
		fixture_fini(&f);
		return;
	}
	cl = client_connect("127.0.0.1", port, NULL);
	CHECK(cl);
	if (cl) {
		CHECK(pump(cl, &f, same_as_console, 5));
		SendPointerEvent(cl, 100, 50, 0);	/* the first: sent */
		SendPointerEvent(cl, 0, 0, 0);
		SendPointerEvent(cl, 319, 199, 1);
		SendPointerEvent(cl, 319, 199, 1);	/* no change: nothing */
		SendPointerEvent(cl, 319, 199, 1 | 16);	/* wheel down */
		SendPointerEvent(cl, 400, 300, 4);	/* past the edge */
		want_mouse = 5;
		CHECK(pump(cl, &f, got_abs, 5));
		pthread_mutex_lock(&tablet.lock);
		CHECK_EQ(tablet.n, 5);
		CHECK_EQ(tablet.ev[0].x, console_abs_scale(100, 320, CONSOLE_ABS_MAX));
		CHECK_EQ(tablet.ev[0].y, console_abs_scale(50, 200, CONSOLE_ABS_MAX));
		CHECK_EQ(tablet.ev[0].x * 320 / (CONSOLE_ABS_MAX + 1), 100);
		CHECK_EQ(tablet.ev[0].y * 200 / (CONSOLE_ABS_MAX + 1), 50);
		CHECK_EQ(tablet.ev[1].x * 320 / (CONSOLE_ABS_MAX + 1), 0);
		CHECK_EQ(tablet.ev[2].x * 320 / (CONSOLE_ABS_MAX + 1), 319);
		CHECK_EQ(tablet.ev[2].y * 200 / (CONSOLE_ABS_MAX + 1), 199);
		CHECK_EQ(tablet.ev[2].buttons, CONSOLE_BTN_LEFT);
		CHECK_EQ(tablet.ev[3].dz, 1);
		CHECK_EQ(tablet.ev[3].buttons, CONSOLE_BTN_LEFT);
		CHECK_EQ(tablet.ev[4].x, tablet.ev[2].x);
		CHECK_EQ(tablet.ev[4].y, tablet.ev[2].y);
		CHECK_EQ(tablet.ev[4].buttons, CONSOLE_BTN_RIGHT);
		pthread_mutex_unlock(&tablet.lock);
		CHECK_EQ(nmouse(&f), 0);

		/* Leaving with the right button held lets go of it. */
		client_close(cl);
		cl = NULL;
		want_mouse = 6;
		CHECK(pump(NULL, &f, got_abs, 5));
		pthread_mutex_lock(&tablet.lock);
		CHECK_EQ(tablet.ev[5].buttons, 0);
		CHECK_EQ(tablet.ev[5].x, tablet.ev[2].x);
		pthread_mutex_unlock(&tablet.lock);
		CHECK(pump(NULL, &f, no_client, 5));
		CHECK_EQ(nmouse(&f), 0);
	}
	client_close(cl);
	console_remove_input(f.con, &abs_ops, &tablet);
	fixture_fini(&f);
}

/* VNC authentication: a wrong password is refused, the right one gets the
 * desktop; only the first 8 characters count (the DES key, RFB 3.8
 * §7.2.2), on both sides. */
static void test_password(void)
{
	struct fixture f;
	rfbClient *cl;
	int port;

	fixture_init(&f, 320, 200);
	if (!start_tcp(&f, &port, "s3cretpw-and-more")) {
		CHECK(0);
		fixture_fini(&f);
		return;
	}
	cl = client_connect("127.0.0.1", port, "wrong");
	CHECK(!cl);
	client_close(cl);
	cl = client_connect("127.0.0.1", port, "s3cretp");
	CHECK(!cl);
	client_close(cl);
	cl = client_connect("127.0.0.1", port, "s3cretpw");
	CHECK(cl);
	if (cl)
		CHECK(pump(cl, &f, same_as_console, 5));
	client_close(cl);
	fixture_fini(&f);
}

/* unix:PATH: a socket of mode 0600 that serves the desktop, replacing a
 * stale socket file; removed when the server goes. */
static void test_unix_socket(void)
{
	char dir[] = "/tmp/vivarium-vnc-XXXXXX", path[128], spec[160];
	char err[256] = "";
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct fixture f;
	struct stat st;
	rfbClient *cl;
	int fd;

	CHECK(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/vnc.sock", dir);
	snprintf(spec, sizeof(spec), "unix:%s", path);
	/* A stale socket: bound, its server gone. */
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	close(fd);

	fixture_init(&f, 320, 200);
	f.vnc = vnc_display_new(f.con, spec, &(struct vnc_display_opts){
				.name = "unix-vm" }, err, sizeof(err));
	CHECK(f.vnc);
	if (!f.vnc)
		fprintf(stderr, "  %s\n", err);
	CHECK(stat(path, &st) == 0);
	CHECK(S_ISSOCK(st.st_mode));
	CHECK_EQ(st.st_mode & 07777, 0600);

	/* A second server on the same live socket is refused. */
	{
		struct vnc_display *v2 = vnc_display_new(f.con, spec, NULL,
							 err, sizeof(err));
		CHECK(!v2);
		CHECK(strstr(err, "in use"));
		vnc_display_free(v2);
	}

	cl = f.vnc ? client_connect(path, -1, NULL) : NULL;
	CHECK(cl);
	if (cl) {
		CHECK(!strcmp(cl->desktopName, "unix-vm"));
		CHECK(pump(cl, &f, same_as_console, 5));
	}
	client_close(cl);
	fixture_fini(&f);
	CHECK(stat(path, &st) < 0 && errno == ENOENT);
	rmdir(dir);
}

/* Bad specs and a busy port give one clear line, no server. */
static void test_errors(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	struct console *con = console_new();
	struct vnc_display *v;
	char err[256], spec[64];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(listen(fd, 1) == 0);
	getsockname(fd, (struct sockaddr *)&sa, &len);
	snprintf(spec, sizeof(spec), "127.0.0.1:%d", ntohs(sa.sin_port));
	err[0] = '\0';
	v = vnc_display_new(con, spec, NULL, err, sizeof(err));
	CHECK(!v);
	CHECK(strstr(err, "in use"));
	printf("  busy port: %s\n", err);
	vnc_display_free(v);
	close(fd);

	static const char *bad[] = {
		"nonsense", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:59x",
		"vnc.example.org:5900", "unix:", "unix:/nonexistent-dir/vnc.sock",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		v = vnc_display_new(con, bad[i], NULL, err, sizeof(err));
		CHECK(!v);
		CHECK(err[0] && !strchr(err, '\n'));
		vnc_display_free(v);
	}
	/* "localhost" and an empty address are the loopback. */
	snprintf(spec, sizeof(spec), "localhost:%d", free_port());
	v = vnc_display_new(con, spec, NULL, err, sizeof(err));
	CHECK(v);
	vnc_display_free(v);
	snprintf(spec, sizeof(spec), ":%d", free_port());
	v = vnc_display_new(con, spec, NULL, err, sizeof(err));
	CHECK(v);
	vnc_display_free(v);
	console_free(con);
}

/* Freeing the server with a viewer connected returns promptly. */
static void test_free_with_client(void)
{
	struct fixture f;
	rfbClient *cl;
	double t;
	int port;

	fixture_init(&f, 320, 200);
	if (!start_tcp(&f, &port, NULL)) {
		CHECK(0);
		fixture_fini(&f);
		return;
	}
	cl = client_connect("127.0.0.1", port, NULL);
	CHECK(cl);
	if (cl)
		CHECK(pump(cl, &f, same_as_console, 5));
	t = now_s();
	vnc_display_free(f.vnc);
	f.vnc = NULL;
	CHECK(now_s() - t < 2);
	printf("  free with a client: %.3f s\n", now_s() - t);
	client_close(cl);
	fixture_fini(&f);
}


/* A flood of silent connections (finding 3: ~333 killed the VM, each one
 * two threads and three fds, and an fd above FD_SETSIZE aborted the process
 * in libvncserver's select()): the server keeps at most its client limit,
 * refuses connections whose fd select() cannot take, closes clients that do
 * not finish the handshake in time, and still serves a real viewer. */
static void test_flood(void)
{
	enum { FLOOD = 3 * 16, HIGH = 1100 };
	unsigned t0, f0, open_now = 0, closed = 0;
	static int raw[FLOOD], filler[HIGH];
	struct fixture f;
	rfbClient *cl;
	int port, nfill = 0, hi[4];
	double end;

	fixture_init(&f, 320, 200);
	handshake_ms = 1500;
	if (!start_tcp(&f, &port, NULL)) {
		handshake_ms = 0;
		CHECK(0);
		fixture_fini(&f);
		return;
	}
	handshake_ms = 0;
	t0 = nthreads();
	f0 = nfds();

	/* Push the next fd numbers past FD_SETSIZE: the server must refuse
	 * those connections, not abort. */
	while (nfill < HIGH) {
		filler[nfill] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (filler[nfill] < 0)
			break;
		nfill++;
	}
	CHECK(nfill == HIGH);
	for (int i = 0; i < 4; i++)
		hi[i] = raw_connect(port);
	end = now_s() + 5;
	for (int i = 0; i < 4; i++)
		while (!raw_closed(hi[i]) && now_s() < end)
			usleep(10000);
	for (int i = 0; i < 4; i++) {
		CHECK(raw_closed(hi[i]));
		close(hi[i]);
	}
	while (nfill)
		close(filler[--nfill]);

	/* Three times the limit: the excess is closed at once.  Some stop
	 * in the middle of the protocol version. */
	for (int i = 0; i < FLOOD; i++) {
		raw[i] = raw_connect(port);
		if (i % 8 == 0 && raw[i] >= 0) {
			usleep(1000);
			/* May fail: the server closes the excess at once. */
			if (send(raw[i], "RFB 00", 6, MSG_NOSIGNAL) != 6)
				continue;
		}
	}
	/* The server takes the backlog at its pace (a loaded machine):
	 * wait until the excess is closed, not a fixed time. */
	end = now_s() + 5;
	do {
		usleep(20000);
		open_now = 0;
		for (int i = 0; i < FLOOD; i++)
			if (raw[i] >= 0 && !raw_closed(raw[i]))
				open_now++;
	} while (open_now > 16 && now_s() < end);
	printf("  %u of %d silent connections kept; threads %u -> %u, fds %u -> %u\n",
	       open_now, FLOOD, t0, nthreads(), f0, nfds());
	CHECK(open_now <= 16);
	CHECK(open_now >= 8);	/* the limit's worth were kept, not all shut */
	CHECK(nthreads() <= t0 + 2 * 16);
	/* ours, and four per client on the server's side */
	CHECK(nfds() <= f0 + FLOOD + 4 * 16);
	/* Waiting clients do not spin (libvncserver's output thread sleeps
	 * deferUpdateTime ms in a loop until the handshake is done). */
	{
		struct timespec c0, c1;
		double w0 = now_s(), cpu;

		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
		usleep(300000);
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
		cpu = (c1.tv_sec - c0.tv_sec) + (c1.tv_nsec - c0.tv_nsec) / 1e9;
		printf("  cpu while 16 clients wait: %.0f%% of one core\n",
		       100 * cpu / (now_s() - w0));
		CHECK(cpu < 0.25 * (now_s() - w0));
	}

	/* The silent ones are closed after the handshake timeout (1.5 s;
	 * more time for a loaded machine). */
	end = now_s() + 10;
	while (now_s() < end) {
		closed = 0;
		for (int i = 0; i < FLOOD; i++)
			closed += raw[i] < 0 || raw_closed(raw[i]);
		if (closed == FLOOD)
			break;
		usleep(50000);
	}
	CHECK_EQ(closed, FLOOD);
	for (int i = 0; i < FLOOD; i++)
		if (raw[i] >= 0)
			close(raw[i]);
	end = now_s() + 5;
	while (nthreads() > t0 && now_s() < end)
		usleep(10000);
	CHECK(nthreads() <= t0);

	/* A real viewer still gets the desktop, and outlives the timeout. */
	cl = client_connect("127.0.0.1", port, NULL);
	CHECK(cl);
	if (cl) {
		CHECK(pump(cl, &f, same_as_console, 5));
		usleep(1700000);
		pthread_mutex_lock(&f.hw.lock);
		f.hw.rect = true;
		f.hw.rx = 1, f.hw.ry = 2, f.hw.rw = 3, f.hw.rh = 4;
		f.hw.colour = 0x00ff00;
		pthread_mutex_unlock(&f.hw.lock);
		client_updates = 0;
		CHECK(pump(cl, &f, same_as_console, 5));
		CHECK_EQ(vnc_display_clients(f.vnc), 1);
	}
	client_close(cl);
	fixture_fini(&f);
}

int main(void)
{
	sandbox_test_threads(false);
	RUN_TEST(test_pixels);
	RUN_TEST(test_dirty_rect);
	RUN_TEST(test_resize);
	RUN_TEST(test_set_desktop_size);
	RUN_TEST(test_input);
	RUN_TEST(test_input_absolute);
	RUN_TEST(test_password);
	RUN_TEST(test_unix_socket);
	RUN_TEST(test_errors);
	RUN_TEST(test_free_with_client);
	RUN_TEST(test_flood);
	return check_finish();
}
