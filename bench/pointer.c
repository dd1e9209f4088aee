/* SPDX-License-Identifier: MIT */
/*
 * bench/pointer.c - pointer latency: from a host pointer event to the
 * guest-visible virtio-input event.  The frontends are the app's
 * (vm_display_open(): the SDL window and the VNC server, refreshed by the
 * GLib timeout every 16 ms on the main thread, as in the VM process); the
 * guest's side is the real virtio tablet (vmm-core/virtio/virtio_input.c)
 * with a synthetic driver ring in guest RAM (tests/unit/vring_driver.h),
 * set up as Linux's virtio_input does.  For each event the measuring
 * thread notes the time, moves the pointer (SDL: an XTEST motion on the X
 * server, which SDL reads as SDL_MOUSEMOTION; VNC: a libvncclient
 * PointerEvent) and spins until the eventq's used index moves (the
 * device wrote the event into the guest's buffer); random 0-20 ms pauses
 * between events decorrelate them from the frame timer.  Prints median,
 * p99, min and max per path.  The guest's own latency (interrupt,
 * driver, evdev) is not in these figures.  Run it through pointer.sh
 * (starts Xvfb).
 */
#define _GNU_SOURCE
#include <X11/Xlib.h>
#include <X11/Xutil.h>
#include <X11/extensions/XTest.h>
#include <errno.h>
#include <getopt.h>
#include <glib.h>
#include <pthread.h>
#include <rfb/rfbclient.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"
#include "vring_driver.h"

#include "bus.h"
#include "devices/pci.h"
#include "display.h"
#include "display/console.h"
#include "log.h"
#include "mem.h"
#include "virtio/virtio_input.h"
#include "virtio/virtio_pci.h"

#define RAM_SIZE	(16u << 20)
#define DEVFN		(0x0e << 3)
#define BAR_ADDR	0xfe000000ull
#define EVQ_BASE	0x0100000ull
#define STQ_BASE	0x0400000ull
#define QSIZE		64

static struct guest_mem mem;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct bus *pio, *mmio;
static struct pci_host *host;
static struct virtio_input *vi;
static struct console *con;
static struct vdrv evd, std;
static GMainLoop *loop;
static unsigned nevents = 1000, warmup = 20;
static bool no_sdl, no_vnc;
static char vnc_path[128];

static void set_pirq(void *o, unsigned pirq, int level)
{
	(void)o; (void)pirq; (void)level;
}

static int send_msi(void *o, uint64_t addr, uint32_t data)
{
	(void)o; (void)addr; (void)data;
	return 0;
}

static const struct pci_host_ops host_ops = { set_pirq, send_msi };

static uint64_t bar_rd(uint64_t off, unsigned size)
{
	uint64_t v;

	pthread_mutex_lock(&lock);
	v = io_read(mmio, BAR_ADDR + off, size);
	pthread_mutex_unlock(&lock);
	return v;
}

static void bar_wr(uint64_t off, uint64_t v, unsigned size)
{
	pthread_mutex_lock(&lock);
	io_write(mmio, BAR_ADDR + off, v, size);
	pthread_mutex_unlock(&lock);
}

static void setup_queue(unsigned q, struct vdrv *d, uint64_t base)
{
	vdrv_init(d, &mem, QSIZE, base, 1u << 20);
	bar_wr(VIRTIO_PCI_COMMON_Q_SELECT, q, 2);
	bar_wr(VIRTIO_PCI_COMMON_Q_SIZE, QSIZE, 2);
	bar_wr(VIRTIO_PCI_COMMON_Q_DESCLO, d->desc, 8);
	bar_wr(VIRTIO_PCI_COMMON_Q_AVAILLO, d->avail, 8);
	bar_wr(VIRTIO_PCI_COMMON_Q_USEDLO, d->used, 8);
	bar_wr(VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
}

/* The tablet on the bus, brought up as virtinput_probe() does, with
 * every eventq buffer posted. */
static int tablet_up(void)
{
	struct virtio_input_config c = {
		.pci = host, .devfn = DEVFN, .mem = &mem, .kind = VIRTIO_INPUT_TABLET,
	};
	char err[256] = "";
	uint64_t f = 1ull << VIRTIO_F_VERSION_1;

	pthread_mutex_lock(&lock);
	vi = virtio_input_new(&c, err, sizeof(err));
	pthread_mutex_unlock(&lock);
	if (!vi) {
		fprintf(stderr, "pointer: %s\n", err);
		return -1;
	}
	pci_config_write(host, 0, DEVFN, PCI_BASE_ADDRESS_0 + 4 * VIRTIO_PCI_BAR, 4,
			 (uint32_t)BAR_ADDR);
	pci_config_write(host, 0, DEVFN, PCI_BASE_ADDRESS_0 + 4 * VIRTIO_PCI_BAR + 4,
			 4, (uint32_t)(BAR_ADDR >> 32));
	pci_config_write(host, 0, DEVFN, PCI_COMMAND, 2,
			 PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	bar_wr(VIRTIO_PCI_COMMON_STATUS, 0, 1);
	bar_wr(VIRTIO_PCI_COMMON_STATUS, 3, 1);
	bar_wr(VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
	bar_wr(VIRTIO_PCI_COMMON_GF, f >> 32, 4);
	bar_wr(VIRTIO_PCI_COMMON_STATUS, 0x0b, 1);
	setup_queue(VIRTIO_INPUT_EVENTQ, &evd, EVQ_BASE);
	setup_queue(VIRTIO_INPUT_STATUSQ, &std, STQ_BASE);
	bar_wr(VIRTIO_PCI_COMMON_STATUS, 0x0f, 1);
	if (bar_rd(VIRTIO_PCI_COMMON_STATUS, 1) != 0x0f) {
		fprintf(stderr, "pointer: the tablet did not take DRIVER_OK\n");
		return -1;
	}
	for (unsigned i = 0; i < QSIZE; i++) {
		struct vbuf b = { vdrv_alloc(&evd, 8, 8), 8, true };

		vdrv_add(&evd, &b, 1, false);
	}
	bar_wr(VIRTIO_PCI_NOTIFY_OFF + VIRTIO_INPUT_EVENTQ * VIRTIO_PCI_NOTIFY_MULT,
	       VIRTIO_INPUT_EVENTQ, 2);
	return 0;
}

/* The guest driver's side: take the used buffers back, post them again. */
static void repost(void)
{
	uint32_t head, len;
	bool any = false;

	while (vdrv_get_used(&evd, &head, &len)) {
		struct virtq_desc d;
		struct vbuf b;

		memcpy(&d, vdrv_hva(&evd, evd.desc + 16ull * head, 16), 16);
		b = (struct vbuf){ d.addr, 8, true };
		vdrv_add(&evd, &b, 1, false);
		any = true;
	}
	if (any)
		bar_wr(VIRTIO_PCI_NOTIFY_OFF + VIRTIO_INPUT_EVENTQ * VIRTIO_PCI_NOTIFY_MULT,
		       VIRTIO_INPUT_EVENTQ, 2);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* Spin until the used index moves from @idx0; its time, or -1 after 2 s. */
static int64_t wait_used(uint16_t idx0)
{
	int64_t end = now_ns() + 2000000000ll;
	volatile uint16_t *idx = vdrv_used16(&evd, 2);

	while (now_ns() < end) {
		if (*idx != idx0)
			return now_ns();
		for (volatile int i = 0; i < 200; i++) {
		}
	}
	return -1;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static void report(const char *label, int64_t *lat, unsigned n)
{
	unsigned k = 0, lost;

	for (unsigned i = 0; i < n; i++)
		if (lat[i] >= 0)
			lat[k++] = lat[i];
	lost = n - k;
	if (!k) {
		printf("%-34s no event arrived\n", label);
		return;
	}
	qsort(lat, k, sizeof(*lat), cmp_i64);
	printf("%-34s median %6.2f ms, p99 %6.2f, min %6.2f, max %6.2f  (%u events",
	       label, lat[(k - 1) / 2] / 1e6, lat[(k * 99 + 99) / 100 - 1] / 1e6,
	       lat[0] / 1e6, lat[k - 1] / 1e6, k);
	if (lost)
		printf(", %u lost", lost);
	printf(")\n");
}

/* The console window: a top-level window titled "pointer-bench ...". */
static Window find_window(Display *x)
{
	Window root, parent, *kids = NULL, found = 0;
	unsigned n = 0;

	if (!XQueryTree(x, DefaultRootWindow(x), &root, &parent, &kids, &n))
		return 0;
	for (unsigned i = 0; i < n && !found; i++) {
		char *name = NULL;

		if (XFetchName(x, kids[i], &name) && name) {
			if (strstr(name, "pointer-bench"))
				found = kids[i];
			XFree(name);
		}
	}
	if (kids)
		XFree(kids);
	return found;
}

static void pause_random(void)
{
	usleep((useconds_t)(rand() % 20000));
}

static void bench_sdl(void)
{
	Display *x = XOpenDisplay(NULL);
	int64_t *lat = calloc(nevents, sizeof(*lat));
	Window w = 0, child;
	int wx = 0, wy = 0;

	if (!x || !lat) {
		fprintf(stderr, "pointer: cannot open the X display\n");
		free(lat);
		return;
	}
	for (int i = 0; i < 50 && !(w = find_window(x)); i++)
		usleep(100000);
	if (!w || !XTranslateCoordinates(x, w, DefaultRootWindow(x), 0, 0,
					 &wx, &wy, &child)) {
		fprintf(stderr, "pointer: the console window did not appear\n");
		XCloseDisplay(x);
		free(lat);
		return;
	}
	/* Until the window uses the tablet (its poll follows the console). */
	usleep(300000);
	for (unsigned i = 0; i < warmup + nevents; i++) {
		uint16_t idx0;
		int64_t t0, t1;

		pause_random();
		repost();
		idx0 = vdrv_used_idx(&evd);
		t0 = now_ns();
		XTestFakeMotionEvent(x, -1, wx + 100 + (int)(i % 2) * 200,
				     wy + 100 + (int)(i % 3) * 50, CurrentTime);
		XFlush(x);
		t1 = wait_used(idx0);
		if (i >= warmup)
			lat[i - warmup] = t1 < 0 ? -1 : t1 - t0;
	}
	usleep(50000);
	repost();
	report("SDL motion -> tablet eventq:", lat, nevents);
	XCloseDisplay(x);
	free(lat);
}

static void bench_vnc(void)
{
	rfbClient *cl = rfbGetClient(8, 3, 4);
	int64_t *lat = calloc(nevents, sizeof(*lat));

	if (!cl || !lat)
		return;
	rfbEnableClientLogging = FALSE;
	cl->serverHost = strdup(vnc_path);
	cl->serverPort = 0;
	if (!rfbInitClient(cl, NULL, NULL)) {	/* frees cl */
		fprintf(stderr, "pointer: the VNC client cannot connect\n");
		free(lat);
		return;
	}
	for (unsigned i = 0; i < warmup + nevents; i++) {
		uint16_t idx0;
		int64_t t0, t1, end = now_ns() + (rand() % 20000) * 1000ll;

		/* The pause reads what the server sends (frame updates). */
		while (now_ns() < end) {
			int n = WaitForMessage(cl, 1000);

			if (n > 0 && !HandleRFBServerMessage(cl))
				break;
		}
		repost();
		idx0 = vdrv_used_idx(&evd);
		t0 = now_ns();
		SendPointerEvent(cl, 100 + (int)(i % 2) * 200, 100 + (int)(i % 3) * 50, 0);
		t1 = wait_used(idx0);
		if (i >= warmup)
			lat[i - warmup] = t1 < 0 ? -1 : t1 - t0;
	}
	usleep(50000);
	repost();
	report("VNC PointerEvent -> tablet eventq:", lat, nevents);
	rfbClientCleanup(cl);
	free(lat);
}

static void *bench_main(void *opaque)
{
	(void)opaque;
	srand(1);
	if (!no_sdl)
		bench_sdl();
	if (!no_vnc)
		bench_vnc();
	g_main_loop_quit(loop);
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "events", required_argument, NULL, 'n' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "no-sdl", no_argument, NULL, 's' },
		{ "no-vnc", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	struct vm_display_opts dopts = { .name = "pointer-bench" };
	struct vm_display *disp = NULL;
	char dir[] = "/tmp/pointer-bench.XXXXXX", err[256] = "";
	pthread_t t;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			nevents = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'w':
			warmup = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 's':
			no_sdl = true;
			break;
		case 'v':
			no_vnc = true;
			break;
		default:
			fprintf(stderr, "usage: pointer [--events N] [--warmup N] [--no-sdl] [--no-vnc]\n");
			return 2;
		}
	}
	if (!nevents || nevents > 1000000) {
		fprintf(stderr, "pointer: --events: 1 to 1000000\n");
		return 2;
	}
	log_init();
	log_set_level(LOG_ERROR);
	if (!no_sdl && (!getenv("DISPLAY") || !*getenv("DISPLAY"))) {
		fprintf(stderr, "pointer: no X display: run it through bench/pointer.sh (starts Xvfb)\n");
		return 1;
	}
	XInitThreads();
	if (guest_mem_init(&mem, RAM_SIZE) != 0) {
		fprintf(stderr, "pointer: cannot allocate guest RAM\n");
		return 1;
	}
	pio = bus_new("pio");
	mmio = bus_new("mmio");
	host = pci_host_new();
	pci_host_attach(host, pio, mmio);
	pci_host_set_ops(host, &host_ops, NULL);
	if (tablet_up() < 0)
		return 1;
	con = console_new();
	console_add_input(con, &virtio_tablet_input_ops, vi, &lock);
	if (!mkdtemp(dir)) {
		fprintf(stderr, "pointer: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	snprintf(vnc_path, sizeof(vnc_path), "%s/vnc", dir);
	{
		char spec[160];

		snprintf(spec, sizeof(spec), "unix:%s", vnc_path);
		dopts.vnc = no_vnc ? NULL : spec;
		dopts.kind = no_sdl ? VM_DISPLAY_NONE : VM_DISPLAY_SDL;
		if (vm_display_open(&disp, con, &dopts, NULL, NULL, err, sizeof(err)) < 0) {
			fprintf(stderr, "pointer: %s\n", err);
			rmdir(dir);
			return 1;
		}
	}
	printf("pointer latency, %u events per path (after %u warm-up), 0-20 ms apart\n",
	       nevents, warmup);
	loop = g_main_loop_new(NULL, FALSE);
	pthread_create(&t, NULL, bench_main, NULL);
	g_main_loop_run(loop);	/* the frontends' 16 ms timer runs here */
	pthread_join(t, NULL);
	vm_display_close(disp);
	unlink(vnc_path);
	rmdir(dir);
	console_remove_input(con, &virtio_tablet_input_ops, vi);
	console_free(con);
	pthread_mutex_lock(&lock);
	virtio_input_free(vi);
	pthread_mutex_unlock(&lock);
	g_main_loop_unref(loop);
	return 0;
}
