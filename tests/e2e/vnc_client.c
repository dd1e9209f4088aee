/* SPDX-License-Identifier: MIT */
/*
 * vnc_client - a scriptable VNC viewer for tests (libvncclient).
 *
 *   vnc_client SPEC [--password-file F] [--timeout S] ACTION...
 *
 * SPEC is HOST:PORT (the port as is, not 5900 + display) or unix:PATH.
 * After connecting it waits for the first complete frame, then runs the
 * actions in order:
 *   --wait-change     wait until the picture differs from what it is now
 *   --wait-nonblank   wait until some pixel is not black
 *   --key NAME        press and release a key: an X keysym name (Return,
 *                     a, F1, Control_L...) or 0xHEX; "A+B+C" holds A and B
 *                     while C is typed (e.g. Control_L+Alt_L+Delete)
 *   --pointer X,Y[,MASK]  a pointer event at framebuffer pixel (X, Y) with
 *                     the RFB button mask MASK (1 left, 2 middle, 4 right,
 *                     8 wheel up, 16 wheel down; default 0)
 *   --save FILE       write the picture as PNG (FILE.png) or PPM (else)
 *   --pointer X,Y[,MASK]  move the pointer to pixel (X, Y) with buttons
 *                     MASK held (RFB: 1 left, 2 middle, 4 right, 8/16
 *                     wheel up/down; default 0)
 *   --sleep MS        wait MS milliseconds (serving updates meanwhile)
 *   --print-size      print "WIDTHxHEIGHT" on its own line
 *   --print-name      print the desktop name on its own line
 * Each wait gives up after the --timeout (seconds, default 10).
 * Exit 0 when every action succeeded; else 1 with one line on stderr
 * saying why.
 */
#include <X11/Xlib.h>
#include <errno.h>
#include <png.h>
#include <rfb/rfbclient.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *password;

/* Which pixels the server has sent since the connection or the last
 * resize: the first frame is complete when all have come (the first
 * update message may carry only pseudo-rectangles). */
static uint8_t *covered;
static size_t ncovered;
static MallocFrameBufferProc lib_malloc_fb;

static void fail(const char *fmt, ...)
{
	va_list ap;

	fputs("vnc_client: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *get_password(rfbClient *cl)
{
	if (!password)
		fail("the server asks for a password: give --password-file");
	return strdup(password);
}

static rfbBool malloc_fb(rfbClient *cl)
{
	free(covered);
	covered = calloc((size_t)cl->width * cl->height, 1);
	ncovered = 0;
	if (!covered)
		return FALSE;
	return lib_malloc_fb(cl);
}

static void got_update(rfbClient *cl, int x, int y, int w, int h)
{
	if (x < 0 || y < 0 || w <= 0 || h <= 0 || x + w > cl->width ||
	    y + h > cl->height)
		return;
	for (int row = y; row < y + h; row++) {
		uint8_t *c = covered + (size_t)row * cl->width + x;

		for (int i = 0; i < w; i++) {
			ncovered += !c[i];
			c[i] = 1;
		}
	}
}

static char *read_password(const char *path)
{
	static char buf[256];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		fail("cannot read %s: %s", path, strerror(errno));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	return buf;
}

/* Handle server messages for up to @secs seconds or until @done. */
static bool pump(rfbClient *cl, double secs, bool (*done)(rfbClient *))
{
	double end = now_s() + secs;

	while (!done(cl)) {
		double left = end - now_s();
		int n;

		if (left <= 0)
			return false;
		n = WaitForMessage(cl, left > 0.05 ? 50000 : (unsigned)(left * 1e6));
		if (n < 0)
			fail("connection lost");
		if (n > 0 && !HandleRFBServerMessage(cl))
			fail("connection lost (server closed it or sent bad data)");
	}
	return true;
}

static bool have_frame(rfbClient *cl)
{
	return covered && ncovered == (size_t)cl->width * cl->height;
}

static size_t fb_bytes(rfbClient *cl)
{
	return (size_t)cl->width * cl->height * 4;
}

static uint32_t *reference;
static int ref_w, ref_h;

/* The X byte of XRGB is undefined (the ZRLE decoder leaves junk). */
static bool differs(rfbClient *cl)
{
	const uint32_t *fb = (const uint32_t *)cl->frameBuffer;

	if (cl->width != ref_w || cl->height != ref_h)
		return true;
	for (size_t i = 0; i < (size_t)cl->width * cl->height; i++)
		if ((fb[i] ^ reference[i]) & 0xffffff)
			return true;
	return false;
}

static bool never(rfbClient *cl)
{
	(void)cl;
	return false;
}

static bool nonblank(rfbClient *cl)
{
	const uint32_t *fb = (const uint32_t *)cl->frameBuffer;

	for (size_t i = 0; i < (size_t)cl->width * cl->height; i++)
		if (fb[i] & 0xffffff)
			return true;
	return false;
}

static uint32_t keysym_of(const char *name)
{
	KeySym ks;

	if (!strncmp(name, "0x", 2))
		return (uint32_t)strtoul(name, NULL, 16);
	ks = XStringToKeysym(name);
	if (ks == NoSymbol)
		fail("unknown key name '%s' (use X keysym names: Return, a, F1, Control_L)",
		     name);
	return (uint32_t)ks;
}

static void send_keys(rfbClient *cl, const char *combo)
{
	uint32_t syms[8];
	char buf[256], *save, *tok;
	int n = 0;

	snprintf(buf, sizeof(buf), "%s", combo);
	for (tok = strtok_r(buf, "+", &save); tok && n < 8;
	     tok = strtok_r(NULL, "+", &save))
		syms[n++] = keysym_of(tok);
	if (!n)
		fail("empty --key");
	for (int i = 0; i < n; i++) {
		if (!SendKeyEvent(cl, syms[i], TRUE))
			fail("connection lost while sending keys");
		usleep(20000);
	}
	for (int i = n - 1; i >= 0; i--) {
		if (!SendKeyEvent(cl, syms[i], FALSE))
			fail("connection lost while sending keys");
		usleep(20000);
	}
}

static void save_ppm(rfbClient *cl, const char *path)
{
	const uint32_t *fb = (const uint32_t *)cl->frameBuffer;
	FILE *f = fopen(path, "wb");

	if (!f)
		fail("cannot write %s: %s", path, strerror(errno));
	fprintf(f, "P6\n%d %d\n255\n", cl->width, cl->height);
	for (size_t i = 0; i < (size_t)cl->width * cl->height; i++) {
		uint8_t rgb[3] = { fb[i] >> 16, fb[i] >> 8, fb[i] };

		fwrite(rgb, 1, 3, f);
	}
	if (fclose(f))
		fail("cannot write %s: %s", path, strerror(errno));
}

static void save_png(rfbClient *cl, const char *path)
{
	const uint32_t *fb = (const uint32_t *)cl->frameBuffer;
	FILE *f = fopen(path, "wb");
	png_structp png;
	png_infop info;
	uint8_t *row;

	if (!f)
		fail("cannot write %s: %s", path, strerror(errno));
	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	info = png ? png_create_info_struct(png) : NULL;
	row = malloc((size_t)cl->width * 3);
	if (!png || !info || !row)
		fail("out of memory");
	if (setjmp(png_jmpbuf(png)))
		fail("cannot write %s", path);
	png_init_io(png, f);
	png_set_IHDR(png, info, cl->width, cl->height, 8, PNG_COLOR_TYPE_RGB,
		     PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
		     PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (int y = 0; y < cl->height; y++) {
		for (int x = 0; x < cl->width; x++) {
			uint32_t p = fb[(size_t)y * cl->width + x];

			row[3 * x] = p >> 16;
			row[3 * x + 1] = p >> 8;
			row[3 * x + 2] = p;
		}
		png_write_row(png, row);
	}
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	free(row);
	if (fclose(f))
		fail("cannot write %s: %s", path, strerror(errno));
}

static void usage(void)
{
	fprintf(stderr, "usage: vnc_client HOST:PORT|unix:PATH [--password-file F] [--timeout S]\n"
		"       [--wait-change] [--wait-nonblank] [--key NAME] [--save FILE.png|FILE.ppm]\n"
		"       [--pointer X,Y[,MASK]] [--sleep MS] [--print-size] [--print-name]\n");
	exit(1);
}

int main(int argc, char **argv)
{
	const char *spec;
	double timeout = 10;
	rfbClient *cl;
	char *colon;

	if (argc < 2 || argv[1][0] == '-')
		usage();
	spec = argv[1];
	/* Settings first; actions run in order afterwards. */
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--password-file") && i + 1 < argc)
			password = read_password(argv[++i]);
		else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
			timeout = atof(argv[++i]);
		else if ((!strcmp(argv[i], "--key") || !strcmp(argv[i], "--save") ||
			  !strcmp(argv[i], "--pointer") || !strcmp(argv[i], "--sleep")) &&
			 i + 1 < argc)
			i++;
		else if (strcmp(argv[i], "--wait-change") &&
			 strcmp(argv[i], "--wait-nonblank") &&
			 strcmp(argv[i], "--print-size") &&
			 strcmp(argv[i], "--print-name"))
			usage();
	}

	rfbEnableClientLogging = FALSE;
	cl = rfbGetClient(8, 3, 4);
	if (!cl)
		fail("out of memory");
	/* XRGB8888 in memory, as the console's surface. */
	cl->format.redShift = 16;
	cl->format.greenShift = 8;
	cl->format.blueShift = 0;
	cl->appData.encodingsString = "zrle hextile copyrect raw";
	cl->appData.enableJPEG = FALSE;
	cl->GetPassword = get_password;
	lib_malloc_fb = cl->MallocFrameBuffer;
	cl->MallocFrameBuffer = malloc_fb;
	cl->GotFrameBufferUpdate = got_update;
	cl->connectTimeout = (unsigned)(timeout < 1 ? 1 : timeout);
	cl->readTimeout = (unsigned)(timeout < 1 ? 1 : timeout);
	free(cl->serverHost);
	if (!strncmp(spec, "unix:", 5)) {
		cl->serverHost = strdup(spec + 5);
		cl->serverPort = 0;
		if (access(spec + 5, F_OK))
			fail("%s: %s", spec + 5, strerror(errno));
	} else {
		colon = strrchr(spec, ':');
		if (!colon || !colon[1])
			fail("'%s' is not HOST:PORT or unix:PATH", spec);
		cl->serverHost = strndup(spec, (size_t)(colon - spec));
		cl->serverPort = atoi(colon + 1);
		if (!cl->serverHost[0]) {
			free(cl->serverHost);
			cl->serverHost = strdup("127.0.0.1");
		}
	}
	if (!rfbInitClient(cl, NULL, NULL))
		fail("cannot connect to %s (refused, or authentication failed)", spec);
	if (!pump(cl, timeout, have_frame))
		fail("no frame from %s within %g s", spec, timeout);

	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--password-file") || !strcmp(a, "--timeout")) {
			i++;
		} else if (!strcmp(a, "--wait-change")) {
			free(reference);
			reference = malloc(fb_bytes(cl));
			if (!reference)
				fail("out of memory");
			memcpy(reference, cl->frameBuffer, fb_bytes(cl));
			ref_w = cl->width;
			ref_h = cl->height;
			if (!pump(cl, timeout, differs))
				fail("the picture did not change within %g s", timeout);
		} else if (!strcmp(a, "--wait-nonblank")) {
			if (!pump(cl, timeout, nonblank))
				fail("the picture stayed black for %g s", timeout);
		} else if (!strcmp(a, "--key")) {
			send_keys(cl, argv[++i]);
		} else if (!strcmp(a, "--pointer")) {
			int x, y, mask = 0;

			if (sscanf(argv[++i], "%d,%d,%d", &x, &y, &mask) < 2 ||
			    x < 0 || y < 0 || x > 0xffff || y > 0xffff)
				fail("--pointer '%s': give X,Y or X,Y,MASK", argv[i]);
			if (!SendPointerEvent(cl, x, y, mask))
				fail("cannot send a pointer event");
		} else if (!strcmp(a, "--save")) {
			const char *path = argv[++i];
			size_t n = strlen(path);

			if (n > 4 && !strcmp(path + n - 4, ".png"))
				save_png(cl, path);
			else
				save_ppm(cl, path);
		} else if (!strcmp(a, "--pointer")) {
			int x, y, mask = 0;

			if (sscanf(argv[++i], "%d,%d,%d", &x, &y, &mask) < 2)
				fail("--pointer wants X,Y[,MASK], not '%s'", argv[i]);
			if (!SendPointerEvent(cl, x, y, mask))
				fail("cannot send a pointer event");
		} else if (!strcmp(a, "--sleep")) {
			pump(cl, atof(argv[++i]) / 1000, never);
		} else if (!strcmp(a, "--print-size")) {
			printf("%dx%d\n", cl->width, cl->height);
			fflush(stdout);
		} else if (!strcmp(a, "--print-name")) {
			printf("%s\n", cl->desktopName ? cl->desktopName : "");
			fflush(stdout);
		}
	}
	free(reference);
	free(covered);
	free(cl->frameBuffer);
	rfbClientCleanup(cl);
	return 0;
}
