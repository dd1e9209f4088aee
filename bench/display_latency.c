/* SPDX-License-Identifier: MIT */
/*
 * bench/display_latency.c - how long a frame the guest draws takes to reach
 * the user: from a guest write to the VGA's linear framebuffer until the
 * new pixels are (a) in the SDL window, as another X client reads them back
 * from the X server, and (b) in a VNC client's framebuffer.
 *
 *   display_latency [--frames N] [--warmup N] [--vnc tcp|unix]
 *                   [--guest wait|spin] [--seed N] [--no-sdl]
 *
 * The machine is the real one (machine_create() with test-guest hooks), the
 * frontends are the app's (vm_display_open(): SDL window + VNC server,
 * refreshed by a GLib timeout every 16 ms on this main thread).  The guest
 * programs the VGA's BAR0 and a Bochs VBE mode (640x480x32, LFB), then for
 * each frame reads a colour from the bench's port, paints a 32x32 square in
 * the middle of the screen and writes the bench's "done" port; that exit is
 * t0.  The path measured is the one every guest frame takes: KVM's dirty
 * log of the VRAM slot -> console_refresh() -> the SDL window / the VNC
 * server -> the X server / the VNC client.
 *
 * Observers, each on its own thread and timestamping with CLOCK_MONOTONIC:
 *  - a console listener: the refresh that put the colour in the console's
 *    surface (the part common to both frontends);
 *  - an X client of its own (XGetImage of the window's centre pixel,
 *    polled every POLL_US);
 *  - a libvncclient client (TCP 127.0.0.1 or a Unix socket), checking its
 *    framebuffer after every server message.
 * Before each frame the bench sleeps a random 0-20 ms, so that frames start
 * at every phase of the 16 ms refresh timer.
 *
 * --guest wait (default): while it has no new colour the vCPU thread waits
 * inside the port read with the device lock released, the way an idle guest
 * sits in hlt, so the vCPU does not compete with the frontends for the two
 * CPUs.  --guest spin: the read returns 0 at once and the guest loops on it
 * (an exit per read), a guest that keeps one CPU busy.  --no-sdl: only the
 * VNC server (no X display needed).
 *
 * Needs /dev/kvm (exit 77 without it) and an X display ($DISPLAY; see
 * display_latency.sh, which starts Xvfb).  Exit: 0, 1 on failure or when a
 * frame never arrived, 2 bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <rfb/rfbclient.h>
#include <X11/Xlib.h>
#include <X11/Xutil.h>

#include "display.h"
#include "display/console.h"
#include "guestlib.h"
#include "log.h"
#include "machine.h"

#define FRAME_MS	16		/* app/display.c's refresh period */
#define BENCH_PORT	0x530		/* +0: colour (read), +4: done (write) */
#define BENCH_PORT_LEN	8
#define CODE_GPA	0x10000u
#define SCREEN_W	640
#define SCREEN_H	480
#define SQUARE		32
#define SQUARE_X	(SCREEN_W / 2 - SQUARE / 2)
#define SQUARE_Y	(SCREEN_H / 2 - SQUARE / 2)
#define POLL_US		200		/* X poll period */
#define FRAME_TIMEOUT_NS 3000000000ll	/* a frame not seen by then is lost */
#define VM_NAME		"display-latency"

/* Bochs VBE DISPI register write (index port 0x1ce, data port 0x1cf). */
#define DISPI(idx, val)                                                 \
	"mov $0x1ce, %dx\n mov $" #idx ", %ax\n out %ax, %dx\n"        \
	"mov $0x1cf, %dx\n mov $" #val ", %ax\n out %ax, %dx\n"

/*
 * Real mode at CODE_GPA: BAR0 of 00:02.0 = 0xe0000000 and memory decoding
 * on (PCI configuration mechanism #1), VBE 640x480x32 with the LFB, then
 * 32-bit flat protected mode and the frame loop.  Colour 0 means "none
 * yet": the guest asks again.
 */
GUEST_CODE16(dl_guest,
	"cli\n"
	"mov $0xcf8, %dx\n mov $0x80001010, %eax\n out %eax, %dx\n"
	"mov $0xcfc, %dx\n mov $0xe0000000, %eax\n out %eax, %dx\n"
	"mov $0xcf8, %dx\n mov $0x80001004, %eax\n out %eax, %dx\n"
	"mov $0xcfc, %dx\n mov $0x0003, %ax\n out %ax, %dx\n"
	DISPI(4, 0)			/* ENABLE: off while changing */
	DISPI(1, 640)			/* XRES */
	DISPI(2, 480)			/* YRES */
	DISPI(3, 32)			/* BPP */
	DISPI(4, 0x41)			/* ENABLED | LFB_ENABLED */
	"lgdtl %cs:(dl_gdtr - dl_guest)\n"
	"mov %cr0, %eax\n or $1, %eax\n mov %eax, %cr0\n"
	"ljmpl $0x08, $(0x10000 + dl_pm32 - dl_guest)\n"
	".code32\n"
	"dl_pm32:\n"
	"mov $0x10, %ax\n mov %ax, %ds\n mov %ax, %es\n mov %ax, %ss\n"
	"mov $0x8000, %esp\n cld\n"
	"1: mov $0x530, %dx\n in %dx, %eax\n test %eax, %eax\n jz 1b\n"
	/* Rows 241-255, then 224-240: the sampled centre row comes last. */
	"mov $(0xe0000000 + (241 * 640 + 304) * 4), %edi\n"
	"mov $15, %ebx\n"
	"2: mov $32, %ecx\n rep stosl\n"
	"add $((640 - 32) * 4), %edi\n dec %ebx\n jnz 2b\n"
	"mov $(0xe0000000 + (224 * 640 + 304) * 4), %edi\n"
	"mov $17, %ebx\n"
	"3: mov $32, %ecx\n rep stosl\n"
	"add $((640 - 32) * 4), %edi\n dec %ebx\n jnz 3b\n"
	"mov $0x534, %dx\n out %eax, %dx\n"
	"jmp 1b\n"
	".p2align 3\n"
	"dl_gdt: .quad 0\n"
	".quad 0x00cf9a000000ffff\n"	/* 0x08: code, flat 4 GiB */
	".quad 0x00cf92000000ffff\n"	/* 0x10: data, flat 4 GiB */
	"dl_gdtr: .word 23\n .long 0x10000 + dl_gdt - dl_guest\n");

_Static_assert(SQUARE_X == 304 && SQUARE_Y == 224 && SQUARE == 32,
	       "the guest code paints at (304, 224), 32x32");

/* Saturated colours: consecutive ones differ by >= 0x80 in some channel. */
static const uint32_t palette[] = {
	0xff2020, 0x20e020, 0x2040ff, 0xffff40, 0x40ffff, 0xff40ff,
	0xf0f0f0, 0xff8000,
};

/* One observer's sighting of the current frame. */
struct seen {
	pthread_mutex_t lock;
	uint32_t colour;		/* the frame's colour, 0: none yet */
	int64_t t;			/* ns, 0: not seen yet */
};

struct bench {
	unsigned frames, warmup;
	bool spin;
	bool use_unix;
	bool no_sdl;
	unsigned seed;

	struct machine *m;
	struct console *con;
	GMainLoop *loop;
	char vnc_spec[128];
	char vnc_host[108];
	int vnc_port;
	char sock_dir[64];

	/* Under the device lock (machine_lock()): the colour port. */
	uint32_t pending;
	bool quit;
	pthread_cond_t colour_cond;

	/* The done port. */
	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	uint32_t done_colour;
	int64_t t0;

	_Atomic uint32_t target;	/* the colour observers look for */
	atomic_bool stop_observers;
	atomic_bool x_ready, vnc_ready;
	struct seen con_seen, x_seen, vnc_seen;

	int64_t *lat_con, *lat_x, *lat_vnc;	/* ns; -1: never seen */
	unsigned measured;
	int status;
	char run_err[256];
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_us(unsigned us)
{
	struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

static void seen_reset(struct seen *s, uint32_t colour)
{
	pthread_mutex_lock(&s->lock);
	s->colour = colour;
	s->t = 0;
	pthread_mutex_unlock(&s->lock);
}

/* An observer saw @colour at @t. */
static void seen_mark(struct seen *s, uint32_t colour, int64_t t)
{
	pthread_mutex_lock(&s->lock);
	if (s->colour == colour && !s->t)
		s->t = t;
	pthread_mutex_unlock(&s->lock);
}

static int64_t seen_get(struct seen *s)
{
	int64_t t;

	pthread_mutex_lock(&s->lock);
	t = s->t;
	pthread_mutex_unlock(&s->lock);
	return t;
}

/* ---- the bench's ports (device lock held) ----------------------------- */

static uint64_t port_read(void *opaque, uint64_t offset, unsigned size)
{
	struct bench *b = opaque;
	uint32_t c;

	if (offset != 0 || size != 4)
		return 0;
	/* Wait with the device lock released, as a guest in hlt would. */
	while (!b->spin && !b->pending && !b->quit)
		pthread_cond_wait(&b->colour_cond, machine_lock(b->m));
	c = b->pending;
	b->pending = 0;
	return c;
}

static void port_write(void *opaque, uint64_t offset, uint64_t value,
		       unsigned size)
{
	struct bench *b = opaque;
	int64_t t = now_ns();

	if (offset != 4 || size != 4)
		return;
	pthread_mutex_lock(&b->lock);
	b->done_colour = (uint32_t)value;
	b->t0 = t;
	pthread_cond_broadcast(&b->done_cond);
	pthread_mutex_unlock(&b->lock);
}

static const struct bus_ops bench_port_ops = {
	.name = "display-latency", .read = port_read, .write = port_write,
};

/* ---- machine hooks ------------------------------------------------------ */

static int hook_load(struct machine *m, struct guest_mem *mem, void *opaque)
{
	(void)m;
	(void)opaque;
	return guest_mem_write(mem, CODE_GPA, dl_guest,
			       (size_t)(dl_guest_end - dl_guest));
}

static int hook_setup_bsp(struct machine *m, struct hv_vcpu *vcpu,
			  void *opaque)
{
	struct hv_regs regs = { .rip = 0, .rsp = 0x8000, .rflags = 2 };
	struct hv_sregs sregs;
	int r = hv_vcpu_get_sregs(vcpu, &sregs);

	(void)m;
	(void)opaque;
	if (r < 0)
		return r;
	sregs.cs.selector = (uint16_t)(CODE_GPA >> 4);
	sregs.cs.base = CODE_GPA;
	r = hv_vcpu_set_sregs(vcpu, &sregs);
	return r < 0 ? r : hv_vcpu_set_regs(vcpu, &regs);
}

static int hook_add_devices(struct machine *m, void *opaque)
{
	return bus_register(machine_pio(m), BENCH_PORT, BENCH_PORT_LEN,
			    &bench_port_ops, opaque);
}

static void *machine_main(void *opaque)
{
	struct bench *b = opaque;

	b->status = machine_run(b->m, b->run_err, sizeof(b->run_err));
	return NULL;
}

/* ---- observer 1: the console's surface ---------------------------------- */

static uint32_t centre_pixel(const struct console_surface *s)
{
	if (s->width != SCREEN_W || s->height != SCREEN_H)
		return 0;
	return s->pixels[(size_t)(SCREEN_H / 2) * (s->stride / 4) + SCREEN_W / 2]
	       & 0xffffff;
}

static void con_resize(void *opaque, const struct console_surface *s)
{
	struct bench *b = opaque;

	seen_mark(&b->con_seen, centre_pixel(s), now_ns());
}

static void con_update(void *opaque, const struct console_surface *s,
		       unsigned x, unsigned y, unsigned w, unsigned h)
{
	(void)x, (void)y, (void)w, (void)h;
	con_resize(opaque, s);
}

static const struct console_listener_ops con_listener = {
	.resize = con_resize, .update = con_update,
};

/* ---- observer 2: the SDL window, through the X server ------------------- */

static int x_error(Display *dpy, XErrorEvent *e)
{
	(void)dpy;
	(void)e;
	return 0;	/* a window gone or resized mid-read: poll again */
}

/* The window whose name starts with VM_NAME, below @w. */
static Window find_window(Display *dpy, Window w)
{
	Window root, parent, *kids = NULL, found = 0;
	unsigned n = 0;
	char *name = NULL;

	if (XFetchName(dpy, w, &name) && name) {
		if (!strncmp(name, VM_NAME, strlen(VM_NAME)))
			found = w;
		XFree(name);
	}
	if (found || !XQueryTree(dpy, w, &root, &parent, &kids, &n))
		return found;
	for (unsigned i = 0; i < n && !found; i++)
		found = find_window(dpy, kids[i]);
	if (kids)
		XFree(kids);
	return found;
}

static uint32_t x_channel(unsigned long pixel, unsigned long mask)
{
	unsigned shift = 0, bits = 0;

	if (!mask)
		return 0;
	while (!(mask & 1)) {
		mask >>= 1;
		shift++;
	}
	while (mask & 1) {
		mask >>= 1;
		bits++;
	}
	pixel = (pixel >> shift) & ((1ul << bits) - 1);
	return bits >= 8 ? (uint32_t)(pixel >> (bits - 8))
			 : (uint32_t)(pixel << (8 - bits));
}

static void *x_main(void *opaque)
{
	struct bench *b = opaque;
	Display *dpy = XOpenDisplay(NULL);
	Window win = 0;
	XWindowAttributes wa;

	if (!dpy) {
		fprintf(stderr, "display_latency: cannot open the X display\n");
		return NULL;
	}
	XSetErrorHandler(x_error);
	for (int i = 0; i < 500 && !win && !b->stop_observers; i++) {
		win = find_window(dpy, DefaultRootWindow(dpy));
		if (!win)
			sleep_us(10000);
	}
	if (!win) {
		fprintf(stderr, "display_latency: no window named '%s...' on the X display\n",
			VM_NAME);
		XCloseDisplay(dpy);
		return NULL;
	}
	b->x_ready = true;
	while (!b->stop_observers) {
		uint32_t want = b->target;
		XImage *img;

		if (!want || seen_get(&b->x_seen) ||
		    !XGetWindowAttributes(dpy, win, &wa) ||
		    wa.map_state != IsViewable) {
			sleep_us(POLL_US);
			continue;
		}
		/* The surface is letterboxed into the window: its centre is
		 * the window's centre, inside the square at any scale. */
		img = XGetImage(dpy, win, wa.width / 2, wa.height / 2, 1, 1,
				AllPlanes, ZPixmap);
		if (img) {
			int64_t t = now_ns();
			unsigned long p = XGetPixel(img, 0, 0);
			uint32_t rgb = x_channel(p, img->red_mask) << 16 |
				       x_channel(p, img->green_mask) << 8 |
				       x_channel(p, img->blue_mask);

			XDestroyImage(img);
			seen_mark(&b->x_seen, rgb, t);
		}
		sleep_us(POLL_US);
	}
	XCloseDisplay(dpy);
	return NULL;
}

/* ---- observer 3: a VNC client ------------------------------------------- */

static uint32_t vnc_pixel(rfbClient *cl, int x, int y)
{
	const rfbPixelFormat *f = &cl->format;
	uint32_t p;

	if (!cl->frameBuffer || x >= cl->width || y >= cl->height ||
	    f->bitsPerPixel != 32)
		return 0;
	memcpy(&p, cl->frameBuffer + ((size_t)y * cl->width + x) * 4, 4);
	return ((p >> f->redShift) & f->redMax) * 255 / f->redMax << 16 |
	       ((p >> f->greenShift) & f->greenMax) * 255 / f->greenMax << 8 |
	       ((p >> f->blueShift) & f->blueMax) * 255 / f->blueMax;
}

static void *vnc_main(void *opaque)
{
	struct bench *b = opaque;
	rfbClient *cl = rfbGetClient(8, 3, 4);

	if (!cl)
		return NULL;
	rfbEnableClientLogging = FALSE;
	cl->serverHost = strdup(b->vnc_host);
	cl->serverPort = b->vnc_port;
	if (!rfbInitClient(cl, NULL, NULL)) {	/* frees cl */
		fprintf(stderr, "display_latency: the VNC client cannot connect to %s\n",
			b->vnc_spec);
		return NULL;
	}
	b->vnc_ready = true;
	while (!b->stop_observers) {
		int n = WaitForMessage(cl, 1000);	/* us */

		if (n < 0 || (n > 0 && !HandleRFBServerMessage(cl))) {
			fprintf(stderr, "display_latency: VNC connection lost\n");
			break;
		}
		if (n > 0)
			seen_mark(&b->vnc_seen,
				  vnc_pixel(cl, SCREEN_W / 2, SCREEN_H / 2),
				  now_ns());
	}
	rfbClientCleanup(cl);
	return NULL;
}

/* ---- the frames --------------------------------------------------------- */

/* Wait until @s saw the frame (or the deadline passed). */
static int64_t wait_seen(struct seen *s, int64_t deadline)
{
	int64_t t;

	while (!(t = seen_get(s)) && now_ns() < deadline)
		sleep_us(200);
	return t;
}

static void give_colour(struct bench *b, uint32_t colour)
{
	pthread_mutex_lock(machine_lock(b->m));
	b->pending = colour;
	pthread_cond_broadcast(&b->colour_cond);
	pthread_mutex_unlock(machine_lock(b->m));
}

static void *controller_main(void *opaque)
{
	struct bench *b = opaque;
	pthread_t xt, vt;
	unsigned total = b->warmup + b->frames;

	if (b->no_sdl)
		b->x_ready = true;
	else
		pthread_create(&xt, NULL, x_main, b);
	pthread_create(&vt, NULL, vnc_main, b);
	for (int i = 0; i < 1000 && !(b->x_ready && b->vnc_ready); i++)
		sleep_us(10000);
	if (!b->x_ready || !b->vnc_ready) {
		b->measured = 0;
		goto out;
	}
	for (unsigned i = 0; i < total; i++) {
		uint32_t colour = palette[i % (sizeof(palette) / sizeof(palette[0]))];
		int64_t t0, deadline;

		/* A random phase against the refresh timer. */
		sleep_us((unsigned)(rand_r(&b->seed) % 20000));
		seen_reset(&b->con_seen, colour);
		seen_reset(&b->x_seen, colour);
		seen_reset(&b->vnc_seen, colour);
		pthread_mutex_lock(&b->lock);
		b->done_colour = 0;
		pthread_mutex_unlock(&b->lock);
		b->target = colour;
		give_colour(b, colour);

		deadline = now_ns() + FRAME_TIMEOUT_NS;
		pthread_mutex_lock(&b->lock);
		while (b->done_colour != colour && now_ns() < deadline) {
			struct timespec ts = { 0, 0 };

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 10000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&b->done_cond, &b->lock, &ts);
		}
		t0 = b->done_colour == colour ? b->t0 : 0;
		pthread_mutex_unlock(&b->lock);
		if (!t0) {
			fprintf(stderr, "display_latency: frame %u: the guest never drew it\n", i);
			break;
		}
		deadline = t0 + FRAME_TIMEOUT_NS;
		int64_t tc = wait_seen(&b->con_seen, deadline);
		int64_t tx = b->no_sdl ? 0 : wait_seen(&b->x_seen, deadline);
		int64_t tv = wait_seen(&b->vnc_seen, deadline);

		b->target = 0;
		if (i < b->warmup)
			continue;
		b->lat_con[b->measured] = tc ? tc - t0 : -1;
		b->lat_x[b->measured] = tx ? tx - t0 : -1;
		b->lat_vnc[b->measured] = tv ? tv - t0 : -1;
		b->measured++;
	}
out:
	b->stop_observers = true;
	if (!b->no_sdl)
		pthread_join(xt, NULL);
	pthread_join(vt, NULL);
	g_main_loop_quit(b->loop);
	return NULL;
}

/* ---- results ------------------------------------------------------------ */

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Prints one row; returns the number of frames never seen. */
static unsigned print_row(const char *label, int64_t *lat, unsigned n)
{
	int64_t *v = calloc(n ? n : 1, sizeof(*v));
	unsigned k = 0;

	/* -1 marks "never seen"; a real latency can be slightly negative
	 * (a refresh caught the square mid-paint, before the done port). */
	for (unsigned i = 0; i < n; i++)
		if (lat[i] != -1)
			v[k++] = lat[i];
	if (!k) {
		printf("%-44s no frame arrived\n", label);
		free(v);
		return n;
	}
	qsort(v, k, sizeof(*v), cmp_i64);
	printf("%-44s median %5.1f ms, p95 %5.1f, min %5.1f, max %5.1f",
	       label, v[(k - 1) / 2] / 1e6,
	       v[(k * 95 + 99) / 100 - 1] / 1e6, v[0] / 1e6, v[k - 1] / 1e6);
	if (k < n)
		printf("  (%u of %u frames never arrived)", n - k, n);
	printf("\n");
	free(v);
	return n - k;
}

/* ---- main --------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f, "usage: display_latency [--frames N] [--warmup N] [--vnc tcp|unix]\n"
		   "                       [--guest wait|spin] [--seed N] [--no-sdl]\n");
}

static int free_tcp_port(void)
{
	/* The next few ports above 5900 + pid % 1000: vnc_display_new
	 * fails cleanly if one is taken, and the caller tries the next. */
	return 15900 + (int)(getpid() % 1000);
}

static unsigned parse_uint(const char *s, const char *what)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (!*s || *end || v > 100000) {
		fprintf(stderr, "display_latency: %s: '%s' is not a number (0-100000)\n",
			what, s);
		exit(2);
	}
	return (unsigned)v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "frames", required_argument, NULL, 'n' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "vnc", required_argument, NULL, 'v' },
		{ "guest", required_argument, NULL, 'g' },
		{ "seed", required_argument, NULL, 's' },
		{ "no-sdl", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct bench b = { .frames = 50, .warmup = 3, .seed = 1 };
	struct machine_boot_hooks hooks = {
		.load = hook_load, .setup_bsp = hook_setup_bsp,
		.add_devices = hook_add_devices, .opaque = &b,
	};
	struct machine_config cfg = {
		.ram_size = 16ull << 20, .ncpus = 1, .hooks = &hooks,
	};
	struct vm_display_opts dopts = { .kind = VM_DISPLAY_SDL, .name = VM_NAME };
	struct vm_display *disp = NULL;
	pthread_t mt, ct;
	unsigned lost = 0;
	char err[256];
	int c, r;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			b.frames = parse_uint(optarg, "--frames");
			break;
		case 'w':
			b.warmup = parse_uint(optarg, "--warmup");
			break;
		case 's':
			b.seed = parse_uint(optarg, "--seed");
			break;
		case 'v':
			if (strcmp(optarg, "tcp") && strcmp(optarg, "unix")) {
				fprintf(stderr, "display_latency: --vnc takes tcp or unix\n");
				return 2;
			}
			b.use_unix = !strcmp(optarg, "unix");
			break;
		case 'g':
			if (strcmp(optarg, "wait") && strcmp(optarg, "spin")) {
				fprintf(stderr, "display_latency: --guest takes wait or spin\n");
				return 2;
			}
			b.spin = !strcmp(optarg, "spin");
			break;
		case 'S':
			b.no_sdl = true;
			dopts.kind = VM_DISPLAY_NONE;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || !b.frames) {
		usage(stderr);
		return 2;
	}
	log_init();
	if (access("/dev/kvm", R_OK | W_OK) != 0) {
		printf("display_latency: skipped: /dev/kvm is not accessible: %s\n",
		       strerror(errno));
		return 77;
	}
	if (!b.no_sdl && (!getenv("DISPLAY") || !*getenv("DISPLAY"))) {
		fprintf(stderr, "display_latency: no X display: run it through bench/display_latency.sh (starts Xvfb) or set DISPLAY\n");
		return 1;
	}
	XInitThreads();

	pthread_mutex_init(&b.lock, NULL);
	pthread_cond_init(&b.done_cond, NULL);
	pthread_cond_init(&b.colour_cond, NULL);
	pthread_mutex_init(&b.con_seen.lock, NULL);
	pthread_mutex_init(&b.x_seen.lock, NULL);
	pthread_mutex_init(&b.vnc_seen.lock, NULL);
	b.lat_con = calloc(b.frames, sizeof(int64_t));
	b.lat_x = calloc(b.frames, sizeof(int64_t));
	b.lat_vnc = calloc(b.frames, sizeof(int64_t));
	b.con = console_new();
	if (!b.con || !b.lat_con || !b.lat_x || !b.lat_vnc) {
		fprintf(stderr, "display_latency: out of memory\n");
		return 1;
	}
	cfg.console = b.con;
	if (machine_create(&cfg, &b.m, err, sizeof(err)) < 0) {
		fprintf(stderr, "display_latency: %s\n", err);
		return 1;
	}
	console_add_listener(b.con, &con_listener, &b);

	if (b.use_unix) {
		snprintf(b.sock_dir, sizeof(b.sock_dir), "/tmp/display-latency.XXXXXX");
		if (!mkdtemp(b.sock_dir)) {
			fprintf(stderr, "display_latency: mkdtemp: %s\n", strerror(errno));
			return 1;
		}
		snprintf(b.vnc_host, sizeof(b.vnc_host), "%s/vnc", b.sock_dir);
		snprintf(b.vnc_spec, sizeof(b.vnc_spec), "unix:%s", b.vnc_host);
		b.vnc_port = 0;
		dopts.vnc = b.vnc_spec;
		r = vm_display_open(&disp, b.con, &dopts, NULL, NULL, err, sizeof(err));
	} else {
		snprintf(b.vnc_host, sizeof(b.vnc_host), "127.0.0.1");
		r = -EADDRINUSE;
		for (int i = 0; i < 20 && r < 0; i++) {
			b.vnc_port = free_tcp_port() + i;
			snprintf(b.vnc_spec, sizeof(b.vnc_spec), "127.0.0.1:%d",
				 b.vnc_port);
			dopts.vnc = b.vnc_spec;
			r = vm_display_open(&disp, b.con, &dopts, NULL, NULL, err,
					    sizeof(err));
		}
	}
	if (r < 0) {
		fprintf(stderr, "display_latency: %s\n", err);
		return 1;
	}

	b.loop = g_main_loop_new(NULL, FALSE);
	pthread_create(&mt, NULL, machine_main, &b);
	pthread_create(&ct, NULL, controller_main, &b);
	g_main_loop_run(b.loop);	/* the frontends' 16 ms timer runs here */
	pthread_join(ct, NULL);

	pthread_mutex_lock(machine_lock(b.m));
	b.quit = true;
	pthread_cond_broadcast(&b.colour_cond);
	pthread_mutex_unlock(machine_lock(b.m));
	machine_stop(b.m, 0);
	pthread_join(mt, NULL);
	if (b.status < 0)
		fprintf(stderr, "display_latency: machine: %s\n", b.run_err);

	vm_display_close(disp);
	console_remove_listener(b.con, &con_listener, &b);
	machine_destroy(b.m);
	console_free(b.con);
	g_main_loop_unref(b.loop);
	if (b.use_unix) {
		unlink(b.vnc_host);
		rmdir(b.sock_dir);
	}

	if (!b.measured) {
		fprintf(stderr, "display_latency: no frame measured\n");
		return 1;
	}
	printf("display_latency: %u frames (+%u warm-up), refresh %d ms, guest %s, VNC over %s\n",
	       b.measured, b.warmup, FRAME_MS, b.spin ? "spinning" : "waiting",
	       b.use_unix ? "a Unix socket" : "TCP 127.0.0.1");
	print_row("guest write -> console surface (refresh):", b.lat_con, b.measured);
	if (!b.no_sdl)
		lost += print_row("guest write -> SDL window (X server pixels):",
				  b.lat_x, b.measured);
	lost += print_row("guest write -> VNC client:", b.lat_vnc, b.measured);
	free(b.lat_con);
	free(b.lat_x);
	free(b.lat_vnc);
	return lost || b.measured < b.frames ? 1 : 0;
}
