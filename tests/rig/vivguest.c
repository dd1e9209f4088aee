/* SPDX-License-Identifier: MIT */
/*
 * tests/rig/vivguest.c - what the rig's test guest cannot do with busybox:
 * read input events and set a display mode.  Built static on the host by
 * mkguest-initramfs.sh (cc -static) into the guest's /bin.
 *
 *   vivguest inputs
 *       one line per input device: GUEST-INPUT name="..." dev=eventN
 *       abs=XMIN..XMAX,YMIN..YMAX (absolute axes, if any)
 *   vivguest evread NAME REPORTS TIMEOUT_MS
 *       read the device named NAME until REPORTS reports (SYN_REPORT) came
 *       or TIMEOUT_MS passed: GUEST-EV type= code= value= per event,
 *       then GUEST-EVREAD=ok|timeout reports=N
 *   vivguest modes
 *       GUEST-DRM=card0-Virtual-N:connected:WxH,... per connector of
 *       /dev/dri/card0, asking the driver to probe it again first
 *   vivguest modeset WIDTH HEIGHT
 *       a DRM dumb buffer of WIDTH x HEIGHT (XRGB8888, filled with one
 *       colour, 0x00336699) on the first connected connector, with its mode of that
 *       size: GUEST-MODESET=ok|fail ...
 *   vivguest clip-get TIMEOUT_MS
 *   vivguest clip-set TEXT TIMEOUT_MS
 *       the guest side of the SPICE agent on the virtio-serial port
 *       com.redhat.spice.0 (spice-vdagentd's wire format, vd_agent.h:
 *       chunks on port 1, messages with the selection header): announce
 *       capabilities, then clip-get waits for the host's clipboard grab,
 *       requests the text and prints GUEST-CLIP-TEXT=<text>; clip-set
 *       grabs with UTF-8 text and answers the host's request with TEXT:
 *       GUEST-CLIP-SENT.  Either ends with GUEST-CLIP=ok|timeout|fail.
 *       (What spice-vdagent does in an X session, without X.)
 *   vivguest tone FILE RATE CHANNELS [PREFIX]
 *       a raw S16_LE recording (arecord -t raw, pacat --record): in 2 ms
 *       blocks of channel 0, the first and last block louder than RMS
 *       1000 (of 32767) are the sound's start and end; over that span,
 *       the frequency from the median distance between upward zero
 *       crossings (interpolated; a dropped fragment does not move it),
 *       the RMS, the quiet blocks inside it (gaps) and the longest
 *       stretch without one:
 *       PREFIX hz= rms= frames= start_s= end_s= span_s= sound_s= gap_ms=
 *              gaps= gapat= longest_s= longest_at_s=
 *       (PREFIX defaults to TONE; hz=0 when there is no sound; sound_s:
 *       the span less its gaps; gaps: how many; gapat: where the first
 *       16 start, and longest_at_s where the longest stretch starts, in s
 *       from the sound's start).
 *   vivguest jitter SECONDS [PREFIX]
 *       10 ms sleeps for SECONDS: how late the wakeups come (a gauge of
 *       whether anything here gets the CPU in real time):
 *       PREFIX n= max_ms= p99_ms= over20= over40= (PREFIX: JITTER)
 *       Both are also used in L1 by tests/e2e/test_audio_in_rig.sh.
 *
 * The DRM structures are the kernel's UAPI (include/uapi/drm/drm_mode.h),
 * spelled out here because Debian ships those headers only with libdrm-dev.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <linux/input.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* ---- input ------------------------------------------------------------------ */

static int open_input(const char *want, char *dev, size_t devlen)
{
	DIR *d = opendir("/dev/input");
	struct dirent *e;
	int found = -1;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char path[300], name[256] = "";
		int fd;

		if (strncmp(e->d_name, "event", 5))
			continue;
		snprintf(path, sizeof(path), "/dev/input/%s", e->d_name);
		fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			continue;
		ioctl(fd, EVIOCGNAME(sizeof(name) - 1), name);
		if (want && !strcmp(name, want)) {
			unsigned long evbits = 0;

			/* Two devices of one name (the vmmouse's): the
			 * absolute one. */
			ioctl(fd, EVIOCGBIT(0, sizeof(evbits)), &evbits);
			if (found < 0 || (evbits & (1ul << EV_ABS))) {
				if (found >= 0)
					close(found);
				snprintf(dev, devlen, "%s", e->d_name);
				found = fd;
				continue;
			}
		}
		if (!want) {
			struct input_absinfo ax, ay;
			unsigned long evbits = 0;

			ioctl(fd, EVIOCGBIT(0, sizeof(evbits)), &evbits);
			printf("GUEST-INPUT name=\"%s\" dev=%s", name, e->d_name);
			if ((evbits & (1ul << EV_ABS)) &&
			    !ioctl(fd, EVIOCGABS(ABS_X), &ax) &&
			    !ioctl(fd, EVIOCGABS(ABS_Y), &ay))
				printf(" abs=%d..%d,%d..%d", ax.minimum,
				       ax.maximum, ay.minimum, ay.maximum);
			printf("\n");
		}
		close(fd);
	}
	closedir(d);
	return found;
}

static long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000ll + t.tv_nsec / 1000000;
}

static int evread(const char *name, int reports, int timeout_ms)
{
	char dev[300];
	int fd = open_input(name, dev, sizeof(dev)), got = 0;
	long long end = now_ms() + timeout_ms;

	if (fd < 0) {
		printf("GUEST-EVREAD=nodevice name=\"%s\"\n", name);
		return 1;
	}
	printf("GUEST-EVREAD-READY dev=%s\n", dev);
	fflush(stdout);
	while (got < reports) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		struct input_event ev[16];
		long long left = end - now_ms();
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		n = read(fd, ev, sizeof(ev));
		for (ssize_t i = 0; i < n / (ssize_t)sizeof(ev[0]); i++) {
			printf("GUEST-EV type=%u code=%u value=%d\n", ev[i].type,
			       ev[i].code, ev[i].value);
			if (ev[i].type == EV_SYN && ev[i].code == SYN_REPORT)
				got++;
		}
		fflush(stdout);
	}
	printf("GUEST-EVREAD=%s reports=%d\n", got >= reports ? "ok" : "timeout",
	       got);
	close(fd);
	return got >= reports ? 0 : 1;
}

/* ---- DRM (include/uapi/drm/drm_mode.h, drm.h) ------------------------------- */

struct drm_mode_modeinfo {
	uint32_t clock;
	uint16_t hdisplay, hsync_start, hsync_end, htotal, hskew;
	uint16_t vdisplay, vsync_start, vsync_end, vtotal, vscan;
	uint32_t vrefresh, flags, type;
	char name[32];
};

struct drm_mode_card_res {
	uint64_t fb_id_ptr, crtc_id_ptr, connector_id_ptr, encoder_id_ptr;
	uint32_t count_fbs, count_crtcs, count_connectors, count_encoders;
	uint32_t min_width, max_width, min_height, max_height;
};

struct drm_mode_crtc {
	uint64_t set_connectors_ptr;
	uint32_t count_connectors, crtc_id, fb_id, x, y, gamma_size, mode_valid;
	struct drm_mode_modeinfo mode;
};

struct drm_mode_get_encoder {
	uint32_t encoder_id, encoder_type, crtc_id, possible_crtcs,
		 possible_clones;
};

struct drm_mode_get_connector {
	uint64_t encoders_ptr, modes_ptr, props_ptr, prop_values_ptr;
	uint32_t count_modes, count_props, count_encoders, encoder_id;
	uint32_t connector_id, connector_type, connector_type_id, connection;
	uint32_t mm_width, mm_height, subpixel, pad;
};

struct drm_mode_fb_cmd {
	uint32_t fb_id, width, height, pitch, bpp, depth, handle;
};

struct drm_mode_create_dumb {
	uint32_t height, width, bpp, flags, handle, pitch;
	uint64_t size;
};

struct drm_mode_map_dumb {
	uint32_t handle, pad;
	uint64_t offset;
};

struct drm_mode_fb_dirty_cmd {
	uint32_t fb_id, flags, color, num_clips;
	uint64_t clips_ptr;
};

#define DRM_IOWR_(nr, t)	_IOWR('d', nr, t)
#define IOC_GETRESOURCES	DRM_IOWR_(0xA0, struct drm_mode_card_res)
#define IOC_SETCRTC		DRM_IOWR_(0xA2, struct drm_mode_crtc)
#define IOC_GETENCODER		DRM_IOWR_(0xA6, struct drm_mode_get_encoder)
#define IOC_GETCONNECTOR	DRM_IOWR_(0xA7, struct drm_mode_get_connector)
#define IOC_ADDFB		DRM_IOWR_(0xAE, struct drm_mode_fb_cmd)
#define IOC_DIRTYFB		DRM_IOWR_(0xB1, struct drm_mode_fb_dirty_cmd)
#define IOC_CREATE_DUMB		DRM_IOWR_(0xB2, struct drm_mode_create_dumb)
#define IOC_MAP_DUMB		DRM_IOWR_(0xB3, struct drm_mode_map_dumb)
#define DRM_CONNECTED		1

#define FAIL(...) do { printf("GUEST-MODESET=fail "); printf(__VA_ARGS__); \
		       printf(" (%s)\n", strerror(errno)); return 1; } while (0)

/* GETCONNECTOR twice: first with no room for modes, which makes the
 * driver probe the connector again (for DRM master, which the first
 * opener of the card is), then for the list.  0 or -1. */
static int get_connector(int fd, uint32_t id, struct drm_mode_get_connector *c,
			 struct drm_mode_modeinfo *modes, unsigned max)
{
	memset(c, 0, sizeof(*c));
	c->connector_id = id;
	if (ioctl(fd, IOC_GETCONNECTOR, c))
		return -1;
	memset(c, 0, sizeof(*c));
	c->connector_id = id;
	c->modes_ptr = (uintptr_t)modes;
	c->count_modes = max;
	if (ioctl(fd, IOC_GETCONNECTOR, c))
		return -1;
	if (c->count_modes > max)
		c->count_modes = max;
	return 0;
}

/* GUEST-DRM=cardN-TYPE-ID:connected|disconnected:WxH,... per connector,
 * the modes in the driver's order (the preferred first). */
static int modes(void)
{
	uint32_t conns[16];
	struct drm_mode_card_res res = { 0 };
	struct drm_mode_modeinfo m[64];
	struct drm_mode_get_connector c;
	int fd = open("/dev/dri/card0", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		printf("GUEST-DRM=none (%s)\n", strerror(errno));
		return 1;
	}
	res.connector_id_ptr = (uintptr_t)conns;
	res.count_connectors = 16;
	if (ioctl(fd, IOC_GETRESOURCES, &res)) {
		printf("GUEST-DRM=none (GETRESOURCES: %s)\n", strerror(errno));
		close(fd);
		return 1;
	}
	for (unsigned i = 0; i < res.count_connectors && i < 16; i++) {
		if (get_connector(fd, conns[i], &c, m, 64))
			continue;
		printf("GUEST-DRM=card0-%s-%u:%s:", c.connector_type == 15 ?
		       "Virtual" : "Other", c.connector_type_id,
		       c.connection == DRM_CONNECTED ? "connected" : "disconnected");
		for (unsigned k = 0; k < c.count_modes; k++)
			printf("%s%ux%u", k ? "," : "", m[k].hdisplay, m[k].vdisplay);
		printf("\n");
	}
	close(fd);
	return 0;
}

static int modeset(unsigned w, unsigned h)
{
	uint32_t crtcs[16], conns[16], encs[16];
	struct drm_mode_card_res res = { 0 };
	struct drm_mode_modeinfo modes[64], *mode = NULL;
	struct drm_mode_get_connector c = { 0 };
	struct drm_mode_get_encoder enc = { 0 };
	struct drm_mode_create_dumb cd = { 0 };
	struct drm_mode_map_dumb md = { 0 };
	struct drm_mode_fb_cmd fb = { 0 };
	struct drm_mode_fb_dirty_cmd dirty = { 0 };
	struct drm_mode_crtc set = { 0 };
	uint32_t conn_id = 0, crtc_id = 0;
	uint32_t *px;
	int fd = open("/dev/dri/card0", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		FAIL("open /dev/dri/card0");
	res.crtc_id_ptr = (uintptr_t)crtcs;
	res.connector_id_ptr = (uintptr_t)conns;
	res.encoder_id_ptr = (uintptr_t)encs;
	res.count_crtcs = res.count_connectors = res.count_encoders = 16;
	if (ioctl(fd, IOC_GETRESOURCES, &res))
		FAIL("GETRESOURCES");
	for (unsigned i = 0; i < res.count_connectors && i < 16 && !mode; i++) {
		if (get_connector(fd, conns[i], &c, modes, 64) ||
		    c.connection != DRM_CONNECTED)
			continue;
		for (unsigned k = 0; k < c.count_modes && k < 64; k++)
			if (modes[k].hdisplay == w && modes[k].vdisplay == h) {
				mode = &modes[k];
				conn_id = conns[i];
				break;
			}
	}
	if (!mode) {
		errno = ENOENT;
		FAIL("no connected connector has a %ux%u mode", w, h);
	}
	enc.encoder_id = c.encoder_id ? c.encoder_id : encs[0];
	if (ioctl(fd, IOC_GETENCODER, &enc))
		FAIL("GETENCODER");
	crtc_id = enc.crtc_id ? enc.crtc_id : crtcs[0];
	cd.width = w;
	cd.height = h;
	cd.bpp = 32;
	if (ioctl(fd, IOC_CREATE_DUMB, &cd))
		FAIL("CREATE_DUMB");
	md.handle = cd.handle;
	if (ioctl(fd, IOC_MAP_DUMB, &md))
		FAIL("MAP_DUMB");
	px = mmap(NULL, cd.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		  (off_t)md.offset);
	if (px == MAP_FAILED)
		FAIL("mmap");
	for (unsigned y = 0; y < h; y++)
		for (unsigned x = 0; x < w; x++)
			px[(size_t)y * (cd.pitch / 4) + x] = 0x00336699;
	fb.width = w;
	fb.height = h;
	fb.pitch = cd.pitch;
	fb.bpp = 32;
	fb.depth = 24;
	fb.handle = cd.handle;
	if (ioctl(fd, IOC_ADDFB, &fb))
		FAIL("ADDFB");
	set.set_connectors_ptr = (uintptr_t)&conn_id;
	set.count_connectors = 1;
	set.crtc_id = crtc_id;
	set.fb_id = fb.fb_id;
	set.mode_valid = 1;
	set.mode = *mode;
	if (ioctl(fd, IOC_SETCRTC, &set))
		FAIL("SETCRTC %ux%u", w, h);
	dirty.fb_id = fb.fb_id;
	ioctl(fd, IOC_DIRTYFB, &dirty);		/* not every driver needs it */
	printf("GUEST-MODESET=ok %ux%u connector=%u crtc=%u\n", w, h, conn_id,
	       crtc_id);
	fflush(stdout);
	/* The mode lasts while the fd is open: hold it until killed. */
	pause();
	return 0;
}

/* ---- the SPICE agent's guest side ---------------------------------------- */

#define VDP_CLIENT_PORT		1
#define VD_AGENT_PROTOCOL	1
#define VD_AGENT_CLIPBOARD	4
#define VD_AGENT_ANNOUNCE_CAPABILITIES 6
#define VD_AGENT_CLIPBOARD_GRAB	7
#define VD_AGENT_CLIPBOARD_REQUEST 8
#define CAP_CLIPBOARD_BY_DEMAND	5
#define CAP_CLIPBOARD_SELECTION	6
#define UTF8_TEXT		1

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static int open_port(const char *name)
{
	DIR *d = opendir("/sys/class/virtio-ports");
	struct dirent *e;
	int fd = -1;

	if (!d)
		return -1;
	while (fd < 0 && (e = readdir(d))) {
		char path[600], got[128] = "";
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name",
			 e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(got, sizeof(got), f))
			got[strcspn(got, "\n")] = 0;
		fclose(f);
		if (!strcmp(got, name)) {
			snprintf(path, sizeof(path), "/dev/%s", e->d_name);
			fd = open(path, O_RDWR | O_CLOEXEC);
		}
	}
	closedir(d);
	return fd;
}

/* One message in one chunk, as spice-vdagentd sends them. */
static int agent_send(int fd, uint32_t type, const void *data, size_t len)
{
	uint8_t *b = calloc(1, 28 + len);
	int r;

	if (!b)
		return -1;
	put32(b, VDP_CLIENT_PORT);
	put32(b + 4, (uint32_t)(20 + len));
	put32(b + 8, VD_AGENT_PROTOCOL);
	put32(b + 12, type);
	put32(b + 24, (uint32_t)len);
	memcpy(b + 28, data, len);
	r = write(fd, b, 28 + len) == (ssize_t)(28 + len) ? 0 : -1;
	free(b);
	return r;
}

/* The next whole message (reassembled from chunks): its type, data in
 * *@data (malloc'd), length; -1 on timeout or a broken stream. */
static int agent_recv(int fd, long long end, uint32_t *type, uint8_t **data,
		      uint32_t *len)
{
	static uint8_t buf[1 << 16];
	static size_t have;
	uint8_t *msg = NULL;
	size_t want = 0, got = 0;

	for (;;) {
		/* Whole chunks in buf: take them. */
		while (have >= 8 && have >= 8 + get32(buf + 4)) {
			uint32_t n = get32(buf + 4);

			if (!msg) {
				if (n < 20)
					return -1;
				want = 20 + get32(buf + 8 + 16);
				if (want > (1u << 21))
					return -1;
				msg = malloc(want);
				if (!msg)
					return -1;
			}
			if (got + n > want)
				return -1;
			memcpy(msg + got, buf + 8, n);
			got += n;
			memmove(buf, buf + 8 + n, have - 8 - n);
			have -= 8 + n;
			if (got == want) {
				*type = get32(msg + 4);
				*len = (uint32_t)(want - 20);
				*data = malloc(want - 20 + 1);
				memcpy(*data, msg + 20, want - 20);
				(*data)[want - 20] = 0;
				free(msg);
				return 0;
			}
		}
		{
			struct pollfd p = { .fd = fd, .events = POLLIN };
			long long left = end - now_ms();
			ssize_t n;

			if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
				free(msg);
				return -1;
			}
			n = read(fd, buf + have, sizeof(buf) - have);
			if (n <= 0) {
				free(msg);
				return -1;
			}
			have += (size_t)n;
		}
	}
}

static int clip(const char *text, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	int fd = open_port("com.redhat.spice.0");
	uint8_t caps[8] = { 0 }, sel[8] = { 0 }, *data;
	uint32_t type, len;
	bool done = false;

	if (fd < 0) {
		printf("GUEST-CLIP=fail no com.redhat.spice.0 port (%s)\n",
		       strerror(errno));
		return 1;
	}
	put32(caps, 1);				/* request the host's */
	put32(caps + 4, 1u << CAP_CLIPBOARD_BY_DEMAND |
			1u << CAP_CLIPBOARD_SELECTION);
	agent_send(fd, VD_AGENT_ANNOUNCE_CAPABILITIES, caps, sizeof(caps));
	if (text) {
		put32(sel + 4, UTF8_TEXT);	/* selection 0: CLIPBOARD */
		agent_send(fd, VD_AGENT_CLIPBOARD_GRAB, sel, 8);
	}
	while (!done && agent_recv(fd, end, &type, &data, &len) == 0) {
		if (!text && type == VD_AGENT_CLIPBOARD_GRAB && len >= 8) {
			uint8_t req[8] = { 0 };

			put32(req + 4, UTF8_TEXT);
			agent_send(fd, VD_AGENT_CLIPBOARD_REQUEST, req, 8);
		} else if (!text && type == VD_AGENT_CLIPBOARD && len >= 8) {
			printf("GUEST-CLIP-TEXT=%.*s\n", (int)(len - 8), data + 8);
			done = true;
		} else if (text && type == VD_AGENT_CLIPBOARD_REQUEST) {
			size_t n = strlen(text);
			uint8_t *c = calloc(1, 8 + n);

			put32(c + 4, UTF8_TEXT);
			memcpy(c + 8, text, n);
			agent_send(fd, VD_AGENT_CLIPBOARD, c, 8 + n);
			free(c);
			printf("GUEST-CLIP-SENT\n");
			done = true;
		}
		free(data);
	}
	/* Keep the port open a moment: closing it drops what is queued. */
	if (done)
		usleep(500000);
	close(fd);
	printf("GUEST-CLIP=%s\n", done ? "ok" : "timeout");
	return done ? 0 : 1;
}

/* ---- tone ------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int tone(const char *file, unsigned rate, unsigned ch, const char *prefix)
{
	FILE *f = fopen(file, "rb");
	int16_t *s = NULL;
	size_t n = 0, cap = 0, blk, first = SIZE_MAX, last = 0, quiet = 0, runs = 0;
	size_t run = 0, run_at = 0, best = 0, best_at = 0, np = 0;
	double *per = NULL, prev = -1, sum2 = 0, hz = 0;
	char gapat[320] = "";
	bool was_quiet = false;

	if (!f || rate < 500 || ch < 1 || ch > 8) {
		printf("%s hz=0 error=%s\n", prefix, f ? "bad-args" : "no-file");
		if (f)
			fclose(f);
		return 1;
	}
	blk = rate / 500;		/* 2 ms */
	for (;;) {
		int16_t fr[8];

		if (fread(fr, 2, ch, f) != ch)
			break;
		if (n == cap) {
			int16_t *t = realloc(s, (cap ? cap * 2 : 65536) * sizeof(*s));

			if (!t) {
				free(s);
				fclose(f);
				return 1;
			}
			s = t;
			cap = cap ? cap * 2 : 65536;
		}
		s[n++] = fr[0];		/* little-endian host (x86) */
	}
	fclose(f);
	/* Blocks louder than RMS 1000 are sound: the first and last one are
	 * its span; the quiet ones inside it are gaps. */
	for (size_t b = 0; b + blk <= n; b += blk) {
		double e = 0;

		for (size_t i = b; i < b + blk; i++)
			e += (double)s[i] * s[i];
		if (e / blk > 1000.0 * 1000.0) {
			if (first == SIZE_MAX)
				first = b;
			last = b + blk;
		}
	}
	if (first == SIZE_MAX) {
		printf("%s hz=0 rms=0 frames=%zu start_s=0 end_s=0 span_s=0 sound_s=0 gap_ms=0 gaps=0 gapat=- longest_s=0 longest_at_s=0\n",
		       prefix, n);
		free(s);
		return 0;
	}
	for (size_t b = first; b + blk <= last; b += blk) {
		double e = 0;

		for (size_t i = b; i < b + blk; i++)
			e += (double)s[i] * s[i];
		if (e / blk <= 1000.0 * 1000.0) {
			if (!was_quiet) {	/* a gap starts */
				size_t l = strlen(gapat);

				if (runs++ < 16 && l + 16 < sizeof(gapat))
					snprintf(gapat + l, sizeof(gapat) - l, "%s%.2f",
						 l ? "," : "", (double)(b - first) / rate);
				run = 0;
			}
			was_quiet = true;
			quiet++;
		} else {
			if (was_quiet || b == first) {
				run = 0;
				run_at = b;
			}
			was_quiet = false;
			run += blk;
			if (run > best) {
				best = run;
				best_at = run_at;
			}
		}
	}
	per = calloc(last - first + 1, sizeof(*per));
	for (size_t i = first + 1; i < last && per; i++) {
		double a = s[i - 1], b = s[i];

		sum2 += b * b;
		if (a < 0 && b >= 0) {
			double x = (double)(i - 1) + (-a) / (b - a);

			if (prev >= 0)
				per[np++] = x - prev;
			prev = x;
		}
	}
	if (np >= 3) {
		qsort(per, np, sizeof(*per), cmp_double);
		hz = rate / per[np / 2];
	}
	printf("%s hz=%.1f rms=%.0f frames=%zu start_s=%.3f end_s=%.3f span_s=%.3f sound_s=%.3f"
	       " gap_ms=%.0f gaps=%zu gapat=%s longest_s=%.3f longest_at_s=%.3f\n",
	       prefix, hz, sqrt(sum2 / (double)(last - first)), n, (double)first / rate,
	       (double)last / rate, (double)(last - first) / rate,
	       (double)(last - first - quiet * blk) / rate, (double)quiet * blk * 1000 / rate,
	       runs, gapat[0] ? gapat : "-", (double)best / rate,
	       (double)(best_at - first) / rate);
	free(per);
	free(s);
	return 0;
}

/* ---- jitter ----------------------------------------------------------------- */

static double mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000.0 + t.tv_nsec / 1e6;
}

/* 10 ms sleeps for @secs seconds: how late each wakeup came. */
static int jitter(double secs, const char *prefix)
{
	double start = mono_ms(), worst = 0, *late;
	size_t n = 0, max = (size_t)(secs * 100) + 1, over20 = 0, over40 = 0;

	late = calloc(max, sizeof(*late));
	if (!late)
		return 1;
	while (n < max && mono_ms() - start < secs * 1000) {
		struct timespec ts = { 0, 10000000 };
		double t0 = mono_ms(), d;

		nanosleep(&ts, NULL);
		d = mono_ms() - t0 - 10;
		late[n++] = d;
		if (d > worst)
			worst = d;
		over20 += d > 20;
		over40 += d > 40;
	}
	qsort(late, n, sizeof(*late), cmp_double);
	printf("%s n=%zu max_ms=%.1f p99_ms=%.1f over20=%zu over40=%zu\n", prefix, n, worst,
	       n ? late[n * 99 / 100] : 0, over20, over40);
	free(late);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 2 && !strcmp(argv[1], "inputs")) {
		open_input(NULL, NULL, 0);
		return 0;
	}
	if (argc == 5 && !strcmp(argv[1], "evread"))
		return evread(argv[2], atoi(argv[3]), atoi(argv[4]));
	if (argc == 2 && !strcmp(argv[1], "modes"))
		return modes();
	if (argc == 4 && !strcmp(argv[1], "modeset"))
		return modeset((unsigned)atoi(argv[2]), (unsigned)atoi(argv[3]));
	if (argc == 3 && !strcmp(argv[1], "clip-get"))
		return clip(NULL, atoi(argv[2]));
	if (argc == 4 && !strcmp(argv[1], "clip-set"))
		return clip(argv[2], atoi(argv[3]));
	if ((argc == 3 || argc == 4) && !strcmp(argv[1], "jitter"))
		return jitter(atof(argv[2]), argc == 4 ? argv[3] : "JITTER");
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "tone"))
		return tone(argv[2], (unsigned)atoi(argv[3]), (unsigned)atoi(argv[4]),
			    argc == 6 ? argv[5] : "TONE");
	fprintf(stderr, "usage: vivguest inputs | evread NAME REPORTS TIMEOUT_MS | modeset W H\n"
		"       | clip-get TIMEOUT_MS | clip-set TEXT TIMEOUT_MS\n"
		"       | tone FILE.raw RATE CHANNELS [PREFIX] | jitter SECONDS [PREFIX]\n");
	return 2;
}
