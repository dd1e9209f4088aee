/* SPDX-License-Identifier: MIT */
/*
 * The VM's VNC server on libvncserver.  We make the listening socket
 * ourselves (TCP or Unix: libvncserver 0.9.14 has no Unix socket listener
 * and reports bind errors only to its log) and accept on it from a thread
 * of our own, which hands each client to the library (rfbNewClient, then
 * rfbStartOnHoldClient: its input and output threads).  Accepting
 * ourselves bounds what a flood of connections can take: at most
 * max_clients clients (two threads, three fds each), no fd that the
 * library's select() calls cannot take, and a deadline for the handshake.
 *
 * The framebuffer is our own copy of the console surface, in libvncserver's
 * default 32-bit true-colour layout (red in the lowest byte on a
 * little-endian host), so rfbNewFramebuffer() on a resize keeps the server
 * format and the clients' translation as they are: the copy swaps red and
 * blue of the console's XRGB8888 pixels.
 */
#define _GNU_SOURCE		/* accept4, pipe2 */
#include "display_vnc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/input-event-codes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <rfb/rfb.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "display/console.h"
#include "input/keymap.h"
#include "log.h"
#include "options.h"
#include "sandbox/sandbox.h"

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

	/* libvncserver's client iterator takes its reference on a client
	 * only after it dropped the list lock, so a client freed in between
	 * (its connection gone) is used after free.  This lock makes the two
	 * exclusive: held across rfbNewClient() (which frees the client when
	 * the peer left early) and by the gone hook (which runs before the
	 * library frees its client), and around every walk of the client
	 * list.  The main thread only tries it: a frame it cannot mark now is
	 * kept in @pending and marked by the acceptor. */
	pthread_mutex_t clients_lock;
	pthread_mutex_t pend_lock;	/* guards pending */
	bool pending;
	unsigned px0, py0, px1, py1;	/* pending box (x1, y1 exclusive) */

	/* Our acceptor thread and the clients it made. */
	int listen_fd;
	int wake_fd;			/* eventfd: stop, or a client left */
	atomic_bool stopping;
	pthread_t acceptor;
	bool acceptor_running;
	unsigned max_clients;
	unsigned handshake_ms;

	/* Client threads: the library creates one per client and nobody
	 * joins them.  A client's gone hook (on its own thread) files it
	 * here; the acceptor joins it, and so does free, so that the screen
	 * outlives every thread that uses it.  A client's slot lives from
	 * the new-client hook to the gone hook, which runs before the
	 * library frees the client: under thr_lock a slot's client is
	 * never freed. */
	pthread_mutex_t thr_lock;
	unsigned live;			/* slots in use */
	struct vnc_slot *slots;		/* max_clients of them */
	pthread_t *gone;
	unsigned ngone, gone_cap;
};

/* One connection, from accept to the client's gone hook: @ctl is our
 * duplicate of its socket, so that we can end it with shutdown() from any
 * thread without touching the library's client (its threads see EOF and
 * free it themselves), and without racing the library's close() of the
 * socket fd. */
struct vnc_slot {
	struct vnc_display *d;
	bool used;
	rfbClientPtr cl;		/* NULL until rfbNewClient() made it */
	int fd;				/* the socket, for the handoff thread */
	int ctl;
	uint64_t deadline_ms;		/* handshake deadline; 0: done or ended */
};

/* The slot a handoff thread is handing to rfbNewClient(), for its hook. */
static __thread struct vnc_slot *handoff_slot;

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
		/* Waits for the clients' sends of the old buffer to end; walks
		 * the client list (see clients_lock). */
		pthread_mutex_lock(&d->clients_lock);
		pthread_mutex_lock(&d->pend_lock);
		d->pending = false;	/* the whole new frame goes out */
		pthread_mutex_unlock(&d->pend_lock);
		rfbNewFramebuffer(d->screen, (char *)fb, (int)s->width,
				  (int)s->height, 8, 3, 4);
		pthread_mutex_unlock(&d->clients_lock);
	} else {
		/* Registration, before the server runs. */
		d->screen->width = (int)s->width;
		d->screen->height = (int)s->height;
		d->screen->paddedWidthInBytes = (int)s->width * 4;
		d->screen->frameBuffer = (char *)fb;
	}
	free(old);
}

static void wake(struct vnc_display *d);

static void vnc_update(void *opaque, const struct console_surface *s,
		       unsigned x, unsigned y, unsigned w, unsigned h)
{
	struct vnc_display *d = opaque;

	if (s->width != d->width || s->height != d->height ||
	    x + w > d->width || y + h > d->height)
		return;		/* the resize failed for lack of memory */
	copy_rect(d, s, x, y, w, h);
	pthread_mutex_lock(&d->pend_lock);
	if (d->pending) {
		x = x < d->px0 ? x : d->px0;
		y = y < d->py0 ? y : d->py0;
		w = (x + w > d->px1 ? x + w : d->px1) - x;
		h = (y + h > d->py1 ? y + h : d->py1) - y;
	}
	if (pthread_mutex_trylock(&d->clients_lock) == 0) {
		d->pending = false;
		pthread_mutex_unlock(&d->pend_lock);
		rfbMarkRectAsModified(d->screen, (int)x, (int)y, (int)(x + w),
				      (int)(y + h));
		pthread_mutex_unlock(&d->clients_lock);
		return;
	}
	/* A connection is being set up: the acceptor marks it after. */
	d->pending = true;
	d->px0 = x, d->py0 = y, d->px1 = x + w, d->py1 = y + h;
	pthread_mutex_unlock(&d->pend_lock);
	wake(d);
}

/* The acceptor: mark what vnc_update() could not.  Never waits (the
 * acceptor must go on refusing excess connections): returns true if a box
 * is still pending, to be tried again shortly. */
static bool flush_pending(struct vnc_display *d)
{
	unsigned x0, y0, x1, y1;
	bool pending;

	if (pthread_mutex_trylock(&d->clients_lock) != 0) {
		pthread_mutex_lock(&d->pend_lock);
		pending = d->pending;
		pthread_mutex_unlock(&d->pend_lock);
		return pending;
	}
	pthread_mutex_lock(&d->pend_lock);
	if (!d->pending || d->px1 > d->width || d->py1 > d->height) {
		d->pending = false;
		pthread_mutex_unlock(&d->pend_lock);
		pthread_mutex_unlock(&d->clients_lock);
		return false;
	}
	x0 = d->px0, y0 = d->py0, x1 = d->px1, y1 = d->py1;
	d->pending = false;
	pthread_mutex_unlock(&d->pend_lock);
	rfbMarkRectAsModified(d->screen, (int)x0, (int)y0, (int)x1, (int)y1);
	pthread_mutex_unlock(&d->clients_lock);
	return false;
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

/*
 * A client's SetDesktopSize (the ExtendedDesktopSize extension: a viewer
 * whose window was resized): offer the size to the guest
 * (console_request_size(); one screen, the layout is not used).  Runs on
 * the client's input thread with no lock of ours or the library's held.
 * The answer is the status the library sends back; the new size itself
 * reaches every client as a framebuffer resize once the guest takes it.
 */
static int vnc_set_desktop_size(int width, int height, int nscreens,
				struct rfbExtDesktopScreen *screens,
				rfbClientPtr cl)
{
	struct vnc_display *d = cl->screen->screenData;
	int r;

	(void)nscreens;
	(void)screens;
	if (width <= 0 || height <= 0)
		return rfbExtDesktopSize_InvalidScreenLayout;
	r = console_request_size(d->con, (unsigned)width, (unsigned)height);
	if (r == 0)
		return rfbExtDesktopSize_Success;
	return r == -EINVAL ? rfbExtDesktopSize_InvalidScreenLayout
			    : rfbExtDesktopSize_ResizeProhibited;
}

/* RFB buttons: 1 left, 2 middle, 4 right, 8 wheel up, 16 wheel down.
 * The position is a framebuffer pixel, which is the console's: it goes to
 * the absolute pointer the guest drives, if any (console_mouse_abs());
 * else its change since the last event is relative motion. */
static void vnc_pointer(int mask, int x, int y, rfbClientPtr cl)
{
	struct vnc_display *d = cl->screen->screenData;
	unsigned buttons = 0;
	int dx = 0, dy = 0, dz = 0;
	bool first, changed;

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
	first = !d->have_pos;
	if (!first) {
		dx = x - d->last_x;
		dy = y - d->last_y;
	}
	d->have_pos = true;
	d->last_x = x;
	d->last_y = y;
	changed = dx || dy || dz || buttons != d->buttons;
	d->buttons = buttons;
	/* The first position is news to an absolute pointer only. */
	if ((first || changed) &&
	    !console_mouse_abs(d->con, x < 0 ? 0 : (unsigned)x,
			       y < 0 ? 0 : (unsigned)y, dz, buttons) &&
	    changed)
		console_mouse(d->con, dx, dy, dz, buttons);
	pthread_mutex_unlock(&d->in_lock);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void wake(struct vnc_display *d)
{
	uint64_t one = 1;

	if (write(d->wake_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is full, the acceptor wakes anyway. */
	}
}

/* File the calling thread, which is about to end, to be joined.  Under
 * thr_lock. */
static void file_thread(struct vnc_display *d)
{
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

/* Under thr_lock. */
static void release_slot(struct vnc_display *d, struct vnc_slot *s)
{
	close(s->ctl);
	s->used = false;
	s->cl = NULL;
	d->live--;
}

/* A client left: release what it may have held, so no key sticks down in
 * the guest. */
static void vnc_client_gone(rfbClientPtr cl)
{
	struct vnc_display *d = cl->screen->screenData;

	/* Held until the hook returns: no walk of the client list is under
	 * way when the library then frees @cl (see clients_lock). */
	pthread_mutex_lock(&d->clients_lock);
	pthread_mutex_lock(&d->in_lock);
	for (unsigned k = 0; k <= KEY_MAX; k++) {
		if (key_test(d, k)) {
			key_set(d, k, false);
			console_key(d->con, k, false);
		}
	}
	if (d->buttons) {
		d->buttons = 0;
		if (!console_mouse_abs(d->con, (unsigned)d->last_x,
				       (unsigned)d->last_y, 0, 0))
			console_mouse(d->con, 0, 0, 0, 0);
	}
	d->have_pos = false;
	pthread_mutex_unlock(&d->in_lock);

	/* The library calls this on the client's input thread, which then
	 * still frees the client (touching the screen) and returns. */
	pthread_mutex_lock(&d->thr_lock);
	if (pthread_equal(pthread_self(), cl->client_thread))
		file_thread(d);
	for (unsigned i = 0; i < d->max_clients; i++)
		if (d->slots[i].used && d->slots[i].cl == cl)
			release_slot(d, &d->slots[i]);
	pthread_mutex_unlock(&d->thr_lock);
	pthread_mutex_unlock(&d->clients_lock);
	wake(d);	/* the acceptor joins this thread */
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

/* Inside rfbNewClient(), on a handoff thread. */
static enum rfbNewClientAction vnc_new_client(rfbClientPtr cl)
{
	struct vnc_display *d = cl->screen->screenData;

	if (!handoff_slot)
		return RFB_CLIENT_REFUSE;	/* not from us */
	pthread_mutex_lock(&d->thr_lock);
	handoff_slot->cl = cl;
	cl->clientGoneHook = vnc_client_gone;
	pthread_mutex_unlock(&d->thr_lock);
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

/* ---- accepting ------------------------------------------------------- */

/* Will libvncserver's select() calls take @fd and the two fds of the pipe
 * rfbStartOnHoldClient() makes next?  The pipe takes the lowest free fds:
 * probe them with a pipe of our own (another thread may take them first,
 * so this narrows the window rather than closing it). */
static bool fits_select(int fd)
{
	int p[2];
	bool ok;

	if (fd >= FD_SETSIZE)
		return false;
	if (pipe2(p, O_CLOEXEC) < 0)
		return false;
	ok = p[0] < FD_SETSIZE && p[1] < FD_SETSIZE;
	close(p[0]);
	close(p[1]);
	return ok;
}

/* A control duplicate of @fd, above the fds select() can take where the
 * limit allows, to leave those to the library. */
static int dup_ctl(int fd)
{
	int c = fcntl(fd, F_DUPFD_CLOEXEC, FD_SETSIZE);

	return c >= 0 ? c : fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

/* rfbNewClient() can block for long on a peer (it waits 100 ms for a
 * WebSockets request, then reads one a byte at a time), so it runs here,
 * on a thread of the connection's own, where the handshake deadline
 * (shutdown() of the socket) ends it. */
static void *handoff_main(void *opaque)
{
	struct vnc_slot *s = opaque;
	struct vnc_display *d = s->d;
	rfbClientPtr cl;

	sandbox_thread_enter(SANDBOX_THREAD_VNC, "vnc-client");
	handoff_slot = s;
	/* Sends the protocol version and calls vnc_new_client(); on failure
	 * it has closed the socket and freed its client (see clients_lock;
	 * the handshake deadline's shutdown() bounds how long it holds it). */
	pthread_mutex_lock(&d->clients_lock);
	cl = rfbNewClient(d->screen, s->fd);
	pthread_mutex_unlock(&d->clients_lock);
	pthread_mutex_lock(&d->thr_lock);
	/* Filed while the slot is still used, so free() joins this thread. */
	file_thread(d);
	if (!cl)
		release_slot(d, s);
	pthread_mutex_unlock(&d->thr_lock);
	if (cl)
		rfbStartOnHoldClient(cl);	/* its input and output threads */
	else
		wake(d);
	return NULL;
}

/* Accept one connection and hand it to the library, or close it.  Returns
 * false when accept() failed for lack of fds or memory (the caller backs
 * off: the connection stays queued and poll() would spin). */
static bool accept_one(struct vnc_display *d)
{
	struct vnc_slot *s = NULL;
	pthread_t t;
	int fd, ctl;

	fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			vlog_ratelimited(LOG_WARN, "vnc: cannot accept a connection: %s",
					 strerror(errno));
			return false;
		}
		return true;	/* EAGAIN, ECONNABORTED...: the peer left */
	}
	if (!fits_select(fd)) {
		vlog_ratelimited(LOG_WARN, "vnc: refused a connection: fd %d or the next ones are at or above FD_SETSIZE (%d), which libvncserver cannot take",
				 fd, FD_SETSIZE);
		close(fd);
		return true;
	}
	ctl = dup_ctl(fd);
	if (ctl < 0) {
		close(fd);
		return true;
	}
	pthread_mutex_lock(&d->thr_lock);
	for (unsigned i = 0; i < d->max_clients && !s; i++)
		if (!d->slots[i].used)
			s = &d->slots[i];
	if (s) {
		*s = (struct vnc_slot){
			.d = d, .used = true, .fd = fd, .ctl = ctl,
			.deadline_ms = now_ms() + d->handshake_ms,
		};
		d->live++;
	}
	pthread_mutex_unlock(&d->thr_lock);
	if (!s) {
		vlog_ratelimited(LOG_WARN, "vnc: refused a connection: %u clients already (the limit)",
				 d->max_clients);
		close(ctl);
		close(fd);
		return true;
	}
	if (pthread_create(&t, NULL, handoff_main, s)) {
		pthread_mutex_lock(&d->thr_lock);
		release_slot(d, s);
		pthread_mutex_unlock(&d->thr_lock);
		close(fd);
	}
	return true;
}

/* End the clients whose handshake (version, security, ClientInit) is past
 * its deadline.  Returns the time to the next deadline in ms, or -1. */
static int check_handshakes(struct vnc_display *d)
{
	uint64_t now = now_ms(), next = 0;

	pthread_mutex_lock(&d->thr_lock);
	for (unsigned i = 0; i < d->max_clients; i++) {
		struct vnc_slot *s = &d->slots[i];

		if (!s->used || !s->deadline_ms)
			continue;
		/* The client's input thread writes state; it only moves
		 * forward, and RFB_NORMAL means the handshake is done. */
		if (s->cl && __atomic_load_n(&s->cl->state, __ATOMIC_RELAXED) == RFB_NORMAL) {
			s->deadline_ms = 0;
		} else if (now >= s->deadline_ms) {
			vlog_ratelimited(LOG_WARN, "vnc: closed a connection that did not finish the handshake in %u ms",
					 d->handshake_ms);
			shutdown(s->ctl, SHUT_RDWR);
			s->deadline_ms = 0;
		} else if (!next || s->deadline_ms < next) {
			next = s->deadline_ms;
		}
	}
	pthread_mutex_unlock(&d->thr_lock);
	return next ? (int)(next - now) : -1;
}

static void *acceptor_main(void *opaque)
{
	struct vnc_display *d = opaque;
	bool backoff = false;

	sandbox_thread_enter(SANDBOX_THREAD_VNC, "vnc-accept");
	while (!atomic_load(&d->stopping)) {
		struct pollfd p[2] = {
			{ .fd = d->wake_fd, .events = POLLIN },
			{ .fd = backoff ? -1 : d->listen_fd, .events = POLLIN },
		};
		int timeout = check_handshakes(d);
		uint64_t n;

		if (backoff && (timeout < 0 || timeout > 100))
			timeout = 100;
		if (flush_pending(d) && (timeout < 0 || timeout > 20))
			timeout = 20;	/* a frame waits for a handoff to end */
		backoff = false;
		if (poll(p, 2, timeout) < 0 && errno != EINTR)
			break;
		if (p[0].revents & POLLIN) {
			if (read(d->wake_fd, &n, sizeof(n)) < 0) {
				/* EAGAIN: someone else read it */
			}
		}
		reap_client_threads(d);
		if ((p[1].revents & POLLIN) && !atomic_load(&d->stopping))
			backoff = !accept_one(d);
	}
	return NULL;
}

/* ---- listening sockets ---------------------------------------------- */

static int listen_unix(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	/* parse_vnc_addr() checked that it fits. */
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
		/* A socket file someone still listens on is in use; only one
		 * that refuses connections is stale (its server died). */
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			snprintf(err, errlen, "vnc: %s is in use by another server", path);
			goto fail;
		}
		if (errno != ECONNREFUSED) {
			snprintf(err, errlen, "vnc: %s exists and cannot be checked (%s); choose another path",
				 path, strerror(errno));
			goto fail;
		}
		unlink(path);
		/* connect() on a socket that failed leaves it unusable for
		 * bind() on some kernels: a fresh one. */
		close(fd);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			snprintf(err, errlen, "vnc: socket: %s", strerror(errno));
			return -1;
		}
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

static int listen_tcp(const struct vnc_addr *a, char *err, size_t errlen)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
	};
	struct addrinfo *ai;
	char port[8];
	int fd, one = 1;

	snprintf(port, sizeof(port), "%u", a->port);
	if (getaddrinfo(a->host, port, &hints, &ai)) {
		snprintf(err, errlen, "vnc: '%s' is not a numeric address (use e.g. 127.0.0.1:5900)",
			 a->host);
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
			snprintf(err, errlen, "vnc: address %s:%u is in use (another VNC server?); choose another port",
				 a->host, a->port);
		else
			snprintf(err, errlen, "vnc: cannot listen on %s:%u: %s",
				 a->host, a->port, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

/* ---- the socket file's removal -------------------------------------- */

/*
 * Landlock lets the sandboxed VM process remove files only in its runtime
 * folder, so a unix: socket elsewhere cannot be unlinked at exit.  Granting
 * LANDLOCK_ACCESS_FS_REMOVE_FILE on its folder would let a compromised VM
 * process delete every file beneath it (say, the user's home); an O_PATH fd
 * of the folder does not help (Landlock checks unlinkat() on the path).  So
 * a small process forked before the sandbox, holding nothing but the read
 * end of a pipe, waits for the VM process to end (EOF, however it ends:
 * kill -9 too) and then unlinks the file, if it is still the socket we
 * bound (same device and inode) and nobody listens on it (ECONNREFUSED).
 * A socket left anyway (the watcher killed) is replaced at the next start
 * under the same checks (listen_unix()).
 */
static bool unlink_if_stale(const char *path, dev_t dev, ino_t ino)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	bool again = false;
	int fd;

	if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode) ||
	    st.st_dev != dev || st.st_ino != ino)
		return false;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
	    errno == ECONNREFUSED)
		unlink(path);
	else
		again = true;
	close(fd);
	return again;
}

/* Only async-signal-safe calls in the child: the parent has threads. */
static void start_unlink_watcher(const char *path)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	struct stat st;
	sigset_t all;
	int p[2];
	pid_t pid;
	char c;

	if (sandbox_active() || lstat(path, &st) < 0 ||
	    pipe2(p, O_CLOEXEC) < 0)
		return;
	pid = fork();
	if (pid < 0) {
		vlog(LOG_WARN, "vnc: cannot fork the watcher that removes %s at exit: %s",
		     path, strerror(errno));
		close(p[0]);
		close(p[1]);
		return;
	}
	if (pid > 0) {
		/* The write end stays open (close-on-exec) until we end. */
		close(p[0]);
		return;
	}
	/* Nothing of the VM's: no KVM or disk fds, not the listening
	 * socket (which would keep the file answering), no stdio. */
	if (p[0] != 0 && dup2(p[0], 0) < 0)
		_exit(1);
	syscall(SYS_close_range, 1, ~0U, 0);
	prctl(PR_SET_NAME, "vnc-unlink", 0, 0, 0);
	sigaction(SIGTERM, &dfl, NULL);
	sigaction(SIGINT, &dfl, NULL);
	sigaction(SIGHUP, &dfl, NULL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	/* Not a member of the VM's process group: a signal to the group
	 * (a terminal's ^C) ends the VM, and this one then cleans up. */
	setpgid(0, 0);
	while (read(0, &c, 1) < 0 && errno == EINTR)
		;
	/* A killed process's pipe can close before its listening socket
	 * does: try for up to 5 s. */
	for (int i = 0; i < 50 && unlink_if_stale(path, st.st_dev, st.st_ino); i++) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	_exit(0);
}

/* ---- lifetime ------------------------------------------------------- */

static void free_parts(struct vnc_display *d)
{
	if (d->listen_fd >= 0)
		close(d->listen_fd);
	if (d->unix_path)
		unlink(d->unix_path);
	if (d->wake_fd >= 0)
		close(d->wake_fd);
	free(d->fb);
	free(d->name);
	free(d->passwords[0]);
	free(d->unix_path);
	pthread_mutex_destroy(&d->in_lock);
	pthread_mutex_destroy(&d->thr_lock);
	pthread_mutex_destroy(&d->clients_lock);
	pthread_mutex_destroy(&d->pend_lock);
	free(d->slots);
	free(d->gone);
	free(d);
}

struct vnc_display *vnc_display_new(struct console *con, const char *spec,
				    const struct vnc_display_opts *o,
				    char *err, size_t errlen)
{
	struct vnc_display *d = calloc(1, sizeof(*d));
	struct vnc_addr addr;
	rfbScreenInfoPtr screen;
	int r;

	if (!d) {
		snprintf(err, errlen, "vnc: out of memory");
		return NULL;
	}
	pthread_mutex_init(&d->in_lock, NULL);
	pthread_mutex_init(&d->thr_lock, NULL);
	pthread_mutex_init(&d->clients_lock, NULL);
	pthread_mutex_init(&d->pend_lock, NULL);
	d->con = con;
	d->listen_fd = d->wake_fd = -1;
	d->max_clients = o && o->max_clients ? o->max_clients : VNC_MAX_CLIENTS;
	d->handshake_ms = o && o->handshake_ms ? o->handshake_ms : VNC_HANDSHAKE_MS;
	d->slots = calloc(d->max_clients, sizeof(*d->slots));
	d->name = strdup(o && o->name ? o->name : "vivarium");
	if (o && o->password) {
		/* VNC authentication uses the first 8 characters (RFB 3.8
		 * §7.2.2: the password is a DES key). */
		d->passwords[0] = strndup(o->password, 8);
	}
	if (!d->slots || !d->name || (o && o->password && !d->passwords[0])) {
		snprintf(err, errlen, "vnc: out of memory");
		free_parts(d);
		return NULL;
	}
	if (parse_vnc_addr(spec, &addr, err, errlen) < 0) {
		free_parts(d);
		return NULL;
	}
	if (addr.is_unix) {
		d->listen_fd = listen_unix(addr.path, err, errlen);
		if (d->listen_fd >= 0 && !(d->unix_path = strdup(addr.path))) {
			snprintf(err, errlen, "vnc: out of memory");
			unlink(addr.path);
		}
		if (d->unix_path)
			start_unlink_watcher(d->unix_path);
	} else {
		d->listen_fd = listen_tcp(&addr, err, errlen);
	}
	d->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->listen_fd < 0 || (addr.is_unix && !d->unix_path) ||
	    d->wake_fd < 0) {
		if (d->wake_fd < 0)
			snprintf(err, errlen, "vnc: eventfd: %s", strerror(errno));
		free_parts(d);
		return NULL;
	}

	rfbLog = vnc_log;
	rfbErr = vnc_log;
	screen = rfbGetScreen(NULL, NULL, 640, 480, 8, 3, 4);
	if (!screen) {
		snprintf(err, errlen, "vnc: out of memory");
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
	/* Our frames already come in 16 ms batches (console_refresh), so no
	 * deferral to batch them; but not 0: a client's output thread sleeps
	 * this long in a loop until the handshake is done, and with 0 every
	 * connecting client spins a core. */
	screen->deferUpdateTime = 1;
	screen->cursor = NULL;		/* the guest draws its own pointer */
	screen->kbdAddEvent = vnc_key;
	screen->ptrAddEvent = vnc_pointer;
	screen->newClientHook = vnc_new_client;
	screen->setDesktopSizeHook = vnc_set_desktop_size;
	if (d->passwords[0]) {
		screen->authPasswdData = d->passwords;
		screen->passwordCheck = rfbCheckPasswordByList;
	}

	/* The first resize() sets the real size and buffer. */
	if (console_add_listener(con, &vnc_listener_ops, d) < 0) {
		snprintf(err, errlen, "vnc: too many displays on this console");
		rfbScreenCleanup(screen);
		free_parts(d);
		return NULL;
	}
	d->listening = true;

	rfbInitServer(screen);		/* no sockets of its own; ignores SIGPIPE */
	/* Client threads without the library's listener thread (see the top). */
	screen->backgroundLoop = TRUE;
	r = pthread_create(&d->acceptor, NULL, acceptor_main, d);
	if (r) {
		snprintf(err, errlen, "vnc: cannot start a thread: %s", strerror(r));
		console_remove_listener(con, &vnc_listener_ops, d);
		rfbScreenCleanup(screen);
		free_parts(d);
		return NULL;
	}
	d->acceptor_running = true;
	if (!d->passwords[0] && !d->unix_path)
		vlog(LOG_WARN, "vnc: %s has no password: anyone who can connect to it sees the screen and types into the VM (set a password file, or use unix:PATH)",
		     spec);
	return d;
}

unsigned vnc_display_clients(struct vnc_display *d)
{
	rfbClientIteratorPtr it;
	rfbClientPtr cl;
	unsigned n = 0;

	pthread_mutex_lock(&d->clients_lock);
	it = rfbGetClientIterator(d->screen);
	while ((cl = rfbClientIteratorNext(it)))
		if (cl->state == RFB_NORMAL && cl->sock != RFB_INVALID_SOCKET)
			n++;
	rfbReleaseClientIterator(it);
	pthread_mutex_unlock(&d->clients_lock);
	return n;
}

void vnc_display_free(struct vnc_display *d)
{
	if (!d)
		return;
	if (d->listening)
		console_remove_listener(d->con, &vnc_listener_ops, d);
	if (d->acceptor_running) {
		atomic_store(&d->stopping, true);
		wake(d);
		pthread_join(d->acceptor, NULL);
	}
	/* No new clients now.  End every client through its socket: its
	 * threads see EOF, and unlink and free it on their own (the library's
	 * rfbShutdownServer(.., TRUE) would race with them); then join them. */
	pthread_mutex_lock(&d->thr_lock);
	for (unsigned i = 0; i < d->max_clients; i++)
		if (d->slots[i].used)
			shutdown(d->slots[i].ctl, SHUT_RDWR);
	pthread_mutex_unlock(&d->thr_lock);
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
	free_parts(d);
}
