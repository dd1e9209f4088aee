/* SPDX-License-Identifier: MIT */
/*
 * The VM's VNC server on libvncserver.  We make the listening socket
 * ourselves (TCP or Unix: libvncserver 0.9.14 has no Unix socket listener
 * and reports bind errors only to its log) and hand it to the library's
 * listener thread as screen->listenSock; each client then gets its own
 * input and output threads from the library (rfbRunEventLoop background).
 *
 * The framebuffer is our own copy of the console surface, in libvncserver's
 * default 32-bit true-colour layout (red in the lowest byte on a
 * little-endian host), so rfbNewFramebuffer() on a resize keeps the server
 * format and the clients' translation as they are: the copy swaps red and
 * blue of the console's XRGB8888 pixels.
 */
#include "display_vnc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/input-event-codes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <rfb/rfb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "display/console.h"
#include "input/keymap.h"
#include "log.h"

struct vnc_display {
	struct console *con;
	rfbScreenInfoPtr screen;
	uint32_t *fb;			/* screen->frameBuffer */
	unsigned width, height;
	char *name;			/* screen->desktopName */
	char *passwords[2];		/* screen->authPasswdData */
	char *unix_path;		/* to unlink at free, or NULL */
	bool listening;			/* a listener is registered */

	/* Input state shared by the clients' input threads. */
	pthread_mutex_t in_lock;
	unsigned long keys_down[(KEY_MAX + 1) / (8 * sizeof(long))];
	bool have_pos;
	int last_x, last_y;
	unsigned buttons;		/* CONSOLE_BTN_* last sent */

	/* Client threads: the library creates one per client and, since we
	 * do not use rfbShutdownServer's client loop, nobody joins them.
	 * A client's gone hook (on its own thread) files it here; we join
	 * it when the next client comes and at free, so that the screen
	 * outlives every thread that uses it. */
	pthread_mutex_t thr_lock;
	unsigned live;			/* accepted, gone hook not yet run */
	pthread_t *gone;
	unsigned ngone, gone_cap;
};

/* libvncserver's log goes to ours at debug level: what matters to the user
 * (bind errors) we report ourselves. */
static void vnc_log(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	size_t n;

	if (log_get_level() < LOG_DEBUG)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	n = strlen(buf);
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	vlog(LOG_DEBUG, "vnc: %s", buf);
}

/* ---- framebuffer ---------------------------------------------------- */

/* XRGB8888 (0x00RRGGBB) to the server format: red, green, blue at the
 * serverFormat shifts (8 bits each, as rfbGetScreen(.., 8, 3, 4) sets). */
static void copy_rect(struct vnc_display *d, const struct console_surface *s,
		      unsigned x, unsigned y, unsigned w, unsigned h)
{
	const rfbPixelFormat *f = &d->screen->serverFormat;
	unsigned rs = f->redShift, gs = f->greenShift, bs = f->blueShift;

	for (unsigned row = y; row < y + h; row++) {
		const uint32_t *src = (const uint32_t *)
			((const uint8_t *)s->pixels + (size_t)row * s->stride) + x;
		uint32_t *dst = d->fb + (size_t)row * d->width + x;

		for (unsigned i = 0; i < w; i++) {
			uint32_t p = src[i];

			dst[i] = ((p >> 16) & 0xff) << rs |
				 ((p >> 8) & 0xff) << gs | (p & 0xff) << bs;
		}
	}
}

static void vnc_resize(void *opaque, const struct console_surface *s)
{
	struct vnc_display *d = opaque;
	uint32_t *fb = calloc((size_t)s->width * s->height, 4), *old = d->fb;

	if (!fb) {
		vlog(LOG_ERROR, "vnc: out of memory for a %ux%u framebuffer",
		     s->width, s->height);
		return;
	}
	d->fb = fb;
	d->width = s->width;
	d->height = s->height;
	copy_rect(d, s, 0, 0, s->width, s->height);
	if (d->screen->frameBuffer) {
		/* Waits for the clients' sends of the old buffer to end. */
		rfbNewFramebuffer(d->screen, (char *)fb, (int)s->width,
				  (int)s->height, 8, 3, 4);
	} else {
		/* Registration, before the server runs. */
		d->screen->width = (int)s->width;
		d->screen->height = (int)s->height;
		d->screen->paddedWidthInBytes = (int)s->width * 4;
		d->screen->frameBuffer = (char *)fb;
	}
	free(old);
}

static void vnc_update(void *opaque, const struct console_surface *s,
		       unsigned x, unsigned y, unsigned w, unsigned h)
{
	struct vnc_display *d = opaque;

	if (s->width != d->width || s->height != d->height ||
	    x + w > d->width || y + h > d->height)
		return;		/* the resize failed for lack of memory */
	copy_rect(d, s, x, y, w, h);
	rfbMarkRectAsModified(d->screen, (int)x, (int)y, (int)(x + w),
			      (int)(y + h));
}

static const struct console_listener_ops vnc_listener_ops = {
	.resize = vnc_resize,
	.update = vnc_update,
};

/* ---- input ---------------------------------------------------------- */

static bool key_test(struct vnc_display *d, unsigned k)
{
	return d->keys_down[k / (8 * sizeof(long))] >> (k % (8 * sizeof(long))) & 1;
}

static void key_set(struct vnc_display *d, unsigned k, bool down)
{
	unsigned long bit = 1UL << (k % (8 * sizeof(long)));

	if (down)
		d->keys_down[k / (8 * sizeof(long))] |= bit;
	else
		d->keys_down[k / (8 * sizeof(long))] &= ~bit;
}

static void vnc_key(rfbBool down, rfbKeySym keysym, rfbClientPtr cl)
{
	struct vnc_display *d = cl->screen->screenData;
	unsigned k = keymap_from_keysym((uint32_t)keysym);

	if (!k || k > KEY_MAX)
		return;
	pthread_mutex_lock(&d->in_lock);
	/* A release of a key we never pressed (held while connecting) is
	 * dropped, so the guest sees balanced pairs. */
	if (down || key_test(d, k)) {
		key_set(d, k, down);
		console_key(d->con, k, down);
	}
	pthread_mutex_unlock(&d->in_lock);
}

/* RFB buttons: 1 left, 2 middle, 4 right, 8 wheel up, 16 wheel down. */
static void vnc_pointer(int mask, int x, int y, rfbClientPtr cl)
{
	struct vnc_display *d = cl->screen->screenData;
	unsigned buttons = 0;
	int dx = 0, dy = 0, dz = 0;

	if (mask & 1)
		buttons |= CONSOLE_BTN_LEFT;
	if (mask & 2)
		buttons |= CONSOLE_BTN_MIDDLE;
	if (mask & 4)
		buttons |= CONSOLE_BTN_RIGHT;
	if (mask & 8)
		dz = -1;
	else if (mask & 16)
		dz = 1;
	pthread_mutex_lock(&d->in_lock);
	if (d->have_pos) {
		dx = x - d->last_x;
		dy = y - d->last_y;
	}
	d->have_pos = true;
	d->last_x = x;
	d->last_y = y;
	if (dx || dy || dz || buttons != d->buttons) {
		d->buttons = buttons;
		console_mouse(d->con, dx, dy, dz, buttons);
	}
	pthread_mutex_unlock(&d->in_lock);
}

/* A client left: release what it may have held, so no key sticks down in
 * the guest. */
static void vnc_client_gone(rfbClientPtr cl)
{
	struct vnc_display *d = cl->screen->screenData;

	pthread_mutex_lock(&d->in_lock);
	for (unsigned k = 0; k <= KEY_MAX; k++) {
		if (key_test(d, k)) {
			key_set(d, k, false);
			console_key(d->con, k, false);
		}
	}
	if (d->buttons) {
		d->buttons = 0;
		console_mouse(d->con, 0, 0, 0, 0);
	}
	d->have_pos = false;
	pthread_mutex_unlock(&d->in_lock);

	/* The library calls this on the client's input thread, which then
	 * still frees the client (touching the screen) and returns. */
	pthread_mutex_lock(&d->thr_lock);
	if (pthread_equal(pthread_self(), cl->client_thread)) {
		if (d->ngone == d->gone_cap) {
			unsigned cap = d->gone_cap ? 2 * d->gone_cap : 8;
			pthread_t *g = realloc(d->gone, cap * sizeof(*g));

			if (g) {
				d->gone = g;
				d->gone_cap = cap;
			}
		}
		if (d->ngone < d->gone_cap)
			d->gone[d->ngone++] = pthread_self();
		else
			pthread_detach(pthread_self());	/* no memory */
	}
	d->live--;
	pthread_mutex_unlock(&d->thr_lock);
}

/* Join the threads of clients that left (each is past its gone hook and
 * ends within moments). */
static void reap_client_threads(struct vnc_display *d)
{
	pthread_mutex_lock(&d->thr_lock);
	while (d->ngone) {
		pthread_t t = d->gone[--d->ngone];

		pthread_mutex_unlock(&d->thr_lock);
		pthread_join(t, NULL);
		pthread_mutex_lock(&d->thr_lock);
	}
	pthread_mutex_unlock(&d->thr_lock);
}

/* On the library's listener thread. */
static enum rfbNewClientAction vnc_new_client(rfbClientPtr cl)
{
	struct vnc_display *d = cl->screen->screenData;

	reap_client_threads(d);
	pthread_mutex_lock(&d->thr_lock);
	d->live++;
	pthread_mutex_unlock(&d->thr_lock);
	cl->clientGoneHook = vnc_client_gone;
	return RFB_CLIENT_ACCEPT;
}

static unsigned live_clients(struct vnc_display *d)
{
	unsigned n;

	pthread_mutex_lock(&d->thr_lock);
	n = d->live;
	pthread_mutex_unlock(&d->thr_lock);
	return n;
}

/* ---- listening sockets ---------------------------------------------- */

static int listen_unix(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (!*path || strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "vnc: unix socket path '%s' is empty or longer than %zu bytes",
			 path, sizeof(sa.sun_path) - 1);
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "vnc: socket: %s", strerror(errno));
		return -1;
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "vnc: %s exists and is not a socket; choose another path",
				 path);
			goto fail;
		}
		/* A socket file someone still listens on is in use; one that
		 * refuses connections is stale (its server died). */
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			snprintf(err, errlen, "vnc: %s is in use by another server", path);
			goto fail;
		}
		unlink(path);
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		snprintf(err, errlen, "vnc: cannot create socket %s: %s", path,
			 strerror(errno));
		goto fail;
	}
	/* Before listen(): nobody can connect while the mode is wider. */
	if (chmod(path, 0600) < 0 || listen(fd, 8) < 0) {
		snprintf(err, errlen, "vnc: %s: %s", path, strerror(errno));
		unlink(path);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

/* "ADDR:PORT", ADDR numeric IPv4, "[IPv6]", "localhost" or empty. */
static int listen_tcp(const char *spec, char *err, size_t errlen)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
	};
	struct addrinfo *ai;
	const char *colon = strrchr(spec, ':');
	char host[128], *end;
	unsigned long port;
	int fd, one = 1, r;
	size_t hl;

	if (!colon) {
		snprintf(err, errlen, "vnc: '%s' is not ADDR:PORT or unix:PATH", spec);
		return -1;
	}
	hl = (size_t)(colon - spec);
	if (hl >= sizeof(host)) {
		snprintf(err, errlen, "vnc: address in '%s' is too long", spec);
		return -1;
	}
	memcpy(host, spec, hl);
	host[hl] = '\0';
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	if (!*host || !strcmp(host, "localhost"))
		strcpy(host, "127.0.0.1");
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || port < 1 || port > 65535) {
		snprintf(err, errlen, "vnc: port '%s' in '%s' is not a number from 1 to 65535",
			 colon + 1, spec);
		return -1;
	}
	r = getaddrinfo(host, colon + 1, &hints, &ai);
	if (r) {
		snprintf(err, errlen, "vnc: '%s' is not a numeric address (use e.g. 127.0.0.1:5900)",
			 host);
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "vnc: socket: %s", strerror(errno));
		freeaddrinfo(ai);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 8) < 0) {
		if (errno == EADDRINUSE)
			snprintf(err, errlen, "vnc: address %s:%lu is in use (another VNC server?); choose another port",
				 host, port);
		else
			snprintf(err, errlen, "vnc: cannot listen on %s:%lu: %s",
				 host, port, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

/* ---- lifetime ------------------------------------------------------- */

static void free_parts(struct vnc_display *d)
{
	free(d->fb);
	free(d->name);
	free(d->passwords[0]);
	free(d->unix_path);
	pthread_mutex_destroy(&d->in_lock);
	pthread_mutex_destroy(&d->thr_lock);
	free(d->gone);
	free(d);
}

struct vnc_display *vnc_display_new(struct console *con, const char *spec,
				    const char *password, const char *name,
				    char *err, size_t errlen)
{
	struct vnc_display *d = calloc(1, sizeof(*d));
	rfbScreenInfoPtr screen;
	int fd;

	if (!d) {
		snprintf(err, errlen, "vnc: out of memory");
		return NULL;
	}
	pthread_mutex_init(&d->in_lock, NULL);
	pthread_mutex_init(&d->thr_lock, NULL);
	d->con = con;
	d->name = strdup(name ? name : "vivarium");
	if (password) {
		/* VNC authentication uses the first 8 characters (RFB 3.8
		 * §7.2.2: the password is a DES key). */
		d->passwords[0] = strndup(password, 8);
	}
	if (!d->name || (password && !d->passwords[0])) {
		snprintf(err, errlen, "vnc: out of memory");
		free_parts(d);
		return NULL;
	}
	if (!strncmp(spec, "unix:", 5)) {
		fd = listen_unix(spec + 5, err, errlen);
		if (fd >= 0 && !(d->unix_path = strdup(spec + 5))) {
			snprintf(err, errlen, "vnc: out of memory");
			unlink(spec + 5);
			close(fd);
			fd = -1;
		}
	} else {
		fd = listen_tcp(spec, err, errlen);
	}
	if (fd < 0) {
		free_parts(d);
		return NULL;
	}

	rfbLog = vnc_log;
	rfbErr = vnc_log;
	screen = rfbGetScreen(NULL, NULL, 640, 480, 8, 3, 4);
	if (!screen) {
		snprintf(err, errlen, "vnc: out of memory");
		close(fd);
		if (d->unix_path)
			unlink(d->unix_path);
		free_parts(d);
		return NULL;
	}
	d->screen = screen;
	screen->screenData = d;
	screen->desktopName = d->name;
	screen->frameBuffer = NULL;
	screen->port = 0;		/* no listener of the library's own */
	screen->ipv6port = 0;
	screen->httpPort = 0;
	screen->alwaysShared = TRUE;	/* a second viewer joins, not evicts */
	/* Our frames already come in 16 ms batches (console_refresh); the
	 * library's default 5 ms deferral only adds latency. */
	screen->deferUpdateTime = 0;
	screen->cursor = NULL;		/* the guest draws its own pointer */
	screen->kbdAddEvent = vnc_key;
	screen->ptrAddEvent = vnc_pointer;
	screen->newClientHook = vnc_new_client;
	if (d->passwords[0]) {
		screen->authPasswdData = d->passwords;
		screen->passwordCheck = rfbCheckPasswordByList;
	}

	/* The first resize() sets the real size and buffer. */
	if (console_add_listener(con, &vnc_listener_ops, d) < 0) {
		snprintf(err, errlen, "vnc: too many displays on this console");
		close(fd);
		if (d->unix_path)
			unlink(d->unix_path);
		rfbScreenCleanup(screen);
		free_parts(d);
		return NULL;
	}
	d->listening = true;

	rfbInitServer(screen);
	screen->listenSock = fd;
	FD_SET(fd, &screen->allFds);
	screen->maxFd = fd > screen->maxFd ? fd : screen->maxFd;
	rfbRunEventLoop(screen, -1, TRUE);
	return d;
}

unsigned vnc_display_clients(struct vnc_display *d)
{
	rfbClientIteratorPtr it = rfbGetClientIterator(d->screen);
	rfbClientPtr cl;
	unsigned n = 0;

	while ((cl = rfbClientIteratorNext(it)))
		if (cl->state == RFB_NORMAL && cl->sock != RFB_INVALID_SOCKET)
			n++;
	rfbReleaseClientIterator(it);
	return n;
}

void vnc_display_free(struct vnc_display *d)
{
	rfbClientIteratorPtr it;
	rfbClientPtr cl;

	if (!d)
		return;
	if (d->listening)
		console_remove_listener(d->con, &vnc_listener_ops, d);
	/* Not rfbShutdownServer(.., TRUE): its client loop drops its
	 * reference to a client before using it, which races with a client
	 * thread that is freeing itself (a failed authentication, a viewer
	 * quitting).  Stop the listener first, then close every client
	 * while the iterator holds a reference, and let each client's
	 * threads end, unlink and free it on their own; then join them. */
	rfbShutdownServer(d->screen, FALSE);
	it = rfbGetClientIterator(d->screen);
	while ((cl = rfbClientIteratorNext(it)))
		rfbCloseClient(cl);
	rfbReleaseClientIterator(it);
	for (int i = 0; i < 5000 && live_clients(d); i++)
		usleep(1000);
	if (live_clients(d)) {
		/* A client thread still runs: leak the server rather than
		 * free memory it uses. */
		vlog(LOG_WARN, "vnc: a client thread did not end; server state leaked");
		if (d->unix_path)
			unlink(d->unix_path);
		return;
	}
	reap_client_threads(d);
	rfbScreenCleanup(d->screen);
	if (d->unix_path)
		unlink(d->unix_path);
	free_parts(d);
}
