/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/net/slirp.c - the NAT backend over libslirp (net/slirp.h).
 *
 * libslirp is not thread-safe, and some of its state is global to the
 * library (its clock, the resolver cache): every call into it happens on
 * a backend's thread (or before the thread starts, or after it stopped,
 * or on the thread saving or loading the machine's state), under
 * slirp_lock, which serializes the backends of one process.  Its calls
 * never block: they cost microseconds.
 *
 * One turn of the backend's thread (net.c): poll_fill asks slirp which
 * sockets to poll (slirp_pollfds_fill) and for how long; poll_done hands
 * it what poll() saw (slirp_pollfds_poll) and fires the timers slirp
 * made (its IPv6 router advertisements); output() gives it the guest's
 * frames (slirp_input); what slirp sends the guest (send_packet) goes to
 * net_deliver().
 *
 * The core polls at most NET_POLL_MAX fds of a backend; past that, the
 * rest go into an epoll set whose fd takes the last place.
 */
#include "slirp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <slirp/libslirp.h>

#include "../log.h"

static pthread_mutex_t slirp_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t slirp_log_once = PTHREAD_ONCE_INIT;

/* libslirp reports through GLib's log (domain "Slirp"), some of it on a
 * guest's doing (g_critical for every IPv6 ping to the outside): into our
 * log, rate-limited. */
static void slirp_log(const gchar *domain, GLogLevelFlags level,
		      const gchar *msg, gpointer data)
{
	enum log_level l = (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL |
				     G_LOG_LEVEL_WARNING)) ? LOG_WARN :
			   (level & G_LOG_LEVEL_DEBUG) ? LOG_DEBUG : LOG_INFO;

	vlog_ratelimited(l, "net nat: libslirp: %s", msg);
}

static void slirp_log_init(void)
{
	g_log_set_handler("Slirp", G_LOG_LEVEL_MASK, slirp_log, NULL);
}

/* ---- hostfwd strings ----------------------------------------------------- */

/* "0".."65535" digits only, 1..65535. */
static bool parse_port(const char *s, size_t n, uint16_t *out)
{
	unsigned v = 0;

	if (n == 0 || n > 5)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
}

/* A dotted quad (inet_pton's strict form), @n bytes of @s. */
static bool parse_addr(const char *s, size_t n, struct in_addr *out)
{
	char buf[INET_ADDRSTRLEN];

	if (n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return inet_pton(AF_INET, buf, out) == 1;
}

static int fwd_fail(char *err, size_t errlen, const char *s,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* "hostfwd 'S': what", one line. */
static int fwd_fail(char *err, size_t errlen, const char *s,
		    const char *fmt, ...)
{
	char what[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "hostfwd '%s': %s", s, what);
	return -EINVAL;
}

int net_hostfwd_parse(const char *s, struct net_hostfwd *out, char *err,
		      size_t errlen)
{
	static const char form[] =
		"expected [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT";
	const char *dash, *host, *c1, *c2, *gc;
	struct net_hostfwd f = { 0 };

	if (!s)
		s = "";
	dash = strchr(s, '-');
	if (!dash || strchr(dash + 1, '-'))
		return fwd_fail(err, errlen, s, "%s", form);
	/* Host side: [PROTO:]ADDR:PORT, i.e. two or three fields. */
	host = s;
	c1 = memchr(host, ':', (size_t)(dash - host));
	if (!c1)
		return fwd_fail(err, errlen, s, "%s", form);
	c2 = memchr(c1 + 1, ':', (size_t)(dash - c1 - 1));
	if (c2) {
		size_t n = (size_t)(c1 - host);

		if (memchr(c2 + 1, ':', (size_t)(dash - c2 - 1)))
			return fwd_fail(err, errlen, s, "%s", form);
		if (n == 3 && !strncmp(host, "udp", 3))
			f.udp = true;
		else if (n != 0 && !(n == 3 && !strncmp(host, "tcp", 3)))
			return fwd_fail(err, errlen, s,
					"unknown protocol '%.*s' (tcp or udp)",
					(int)n, host);
		host = c1 + 1;
		c1 = c2;
	}
	/* host .. c1: the address; c1 + 1 .. dash: the port */
	if (c1 == host)
		f.host_addr.s_addr = htonl(INADDR_LOOPBACK);
	else if (!parse_addr(host, (size_t)(c1 - host), &f.host_addr))
		return fwd_fail(err, errlen, s,
				"host address '%.*s' is not an IPv4 address",
				(int)(c1 - host), host);
	if (!parse_port(c1 + 1, (size_t)(dash - c1 - 1), &f.host_port))
		return fwd_fail(err, errlen, s,
				"host port '%.*s' is not a number from 1 to 65535",
				(int)(dash - c1 - 1), c1 + 1);
	/* Guest side: [ADDR]:PORT. */
	gc = strchr(dash + 1, ':');
	if (!gc || strchr(gc + 1, ':'))
		return fwd_fail(err, errlen, s, "%s", form);
	if (gc != dash + 1 &&
	    !parse_addr(dash + 1, (size_t)(gc - dash - 1), &f.guest_addr))
		return fwd_fail(err, errlen, s,
				"guest address '%.*s' is not an IPv4 address",
				(int)(gc - dash - 1), dash + 1);
	if (!parse_port(gc + 1, strlen(gc + 1), &f.guest_port))
		return fwd_fail(err, errlen, s,
				"guest port '%s' is not a number from 1 to 65535",
				gc + 1);
	*out = f;
	return 0;
}

/* "A.B.C.D/N" -> network and prefix length (8..27: DHCP's .15-.30 fit). */
static int parse_net(const char *s, struct in_addr *net, unsigned *prefix,
		     char *err, size_t errlen)
{
	const char *slash = strchr(s, '/');
	uint16_t len;
	uint32_t mask;

	if (!slash || !parse_addr(s, (size_t)(slash - s), net)) {
		snprintf(err, errlen, "nat network '%s': expected A.B.C.D/N, "
			 "e.g. 10.0.2.0/24", s);
		return -EINVAL;
	}
	if (!parse_port(slash + 1, strlen(slash + 1), &len) || len < 8 ||
	    len > 27) {
		snprintf(err, errlen, "nat network '%s': the prefix length "
			 "must be 8 to 27 (room for the DHCP addresses)", s);
		return -EINVAL;
	}
	mask = ~0u << (32 - len);
	if (ntohl(net->s_addr) & ~mask) {
		snprintf(err, errlen, "nat network '%s': host bits set (did "
			 "you mean %s/%u?)", s,
			 inet_ntoa((struct in_addr){ htonl(ntohl(net->s_addr) &
							     mask) }),
			 len);
		return -EINVAL;
	}
	*prefix = len;
	return 0;
}

/* ---- the backend ---------------------------------------------------------- */

struct slirp_timer {
	SlirpTimerCb cb;
	void *cb_opaque;
	int64_t expire_ms;		/* -1: not armed */
	struct slirp_timer *next;
};

struct slirp_be {
	Slirp *slirp;
	struct netdev *nd;
	struct slirp_timer *timers;
	unsigned max_conns;

	/* This turn's fds, in slirp's order (add_poll's index). */
	struct pollfd *fds;
	unsigned nfds, fds_cap;
	unsigned direct;		/* how many are in the core's array */
	int epfd;			/* the rest, when there is a rest; else -1 */
	struct epoll_event *evs;	/* room for the rest's events */
	unsigned evs_cap;
	bool rx_room;			/* this turn: read host sockets? */

	/* The forwards' listening sockets: not polled while over the cap. */
	int *listen_fds;
	unsigned nlisten;
	bool recording;			/* net_slirp_new fills listen_fds */

	/* Sockets slirp holds open (register/unregister_poll_fd). */
	uint64_t *open_map;
	unsigned open_words, nopen;
	uint64_t dropped_full;		/* guest frames refused over the cap */
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct slirp_be *s = opaque;

	if (s->nd)
		net_deliver(s->nd, buf, len);
	return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
	vlog_ratelimited(LOG_WARN, "net nat: guest: %s", msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
	return now_ns();
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct slirp_be *s = opaque;
	struct slirp_timer *t = calloc(1, sizeof(*t));

	if (!t)
		abort();	/* as libslirp's own g_malloc */
	t->cb = cb;
	t->cb_opaque = cb_opaque;
	t->expire_ms = -1;
	t->next = s->timers;
	s->timers = t;
	return t;
}

static void cb_timer_free(void *timer, void *opaque)
{
	struct slirp_be *s = opaque;

	for (struct slirp_timer **p = &s->timers; *p; p = &(*p)->next) {
		if (*p == timer) {
			*p = (*p)->next;
			free(timer);
			return;
		}
	}
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	((struct slirp_timer *)timer)->expire_ms = expire_ms;
}

static void cb_register_poll_fd(int fd, void *opaque)
{
	struct slirp_be *s = opaque;
	unsigned w = (unsigned)fd / 64;

	if (fd < 0)
		return;
	if (w >= s->open_words) {
		unsigned n = w + 16;
		uint64_t *m = realloc(s->open_map, n * sizeof(*m));

		if (!m)
			return;		/* only a count for the cap */
		memset(m + s->open_words, 0,
		       (n - s->open_words) * sizeof(*m));
		s->open_map = m;
		s->open_words = n;
	}
	if (!(s->open_map[w] & (1ull << (fd % 64)))) {
		s->open_map[w] |= 1ull << (fd % 64);
		s->nopen++;
	}
}

static void cb_unregister_poll_fd(int fd, void *opaque)
{
	struct slirp_be *s = opaque;
	unsigned w = (unsigned)fd / 64;

	if (fd < 0 || w >= s->open_words)
		return;
	if (s->open_map[w] & (1ull << (fd % 64))) {
		s->open_map[w] &= ~(1ull << (fd % 64));
		s->nopen--;
	}
}

/* A TCP buffer of slirp's has room again (sbdrop): it says so from its
 * own calls on this thread, and the loop fills the poll set again before
 * it sleeps, so there is nothing to wake. */
static void cb_notify(void *opaque)
{
}

static const SlirpCb slirp_callbacks = {
	.send_packet = cb_send_packet,
	.guest_error = cb_guest_error,
	.clock_get_ns = cb_clock_get_ns,
	.timer_new = cb_timer_new,
	.timer_free = cb_timer_free,
	.timer_mod = cb_timer_mod,
	.register_poll_fd = cb_register_poll_fd,
	.unregister_poll_fd = cb_unregister_poll_fd,
	.notify = cb_notify,
};

static bool over_cap(const struct slirp_be *s)
{
	return s->nopen >= s->max_conns;
}

static bool is_listener(const struct slirp_be *s, int fd)
{
	for (unsigned i = 0; i < s->nlisten; i++)
		if (s->listen_fds[i] == fd)
			return true;
	return false;
}

static short to_poll_events(int ev)
{
	return (short)(((ev & SLIRP_POLL_IN) ? POLLIN : 0) |
		       ((ev & SLIRP_POLL_OUT) ? POLLOUT : 0) |
		       ((ev & SLIRP_POLL_PRI) ? POLLPRI : 0) |
		       ((ev & SLIRP_POLL_ERR) ? POLLERR : 0) |
		       ((ev & SLIRP_POLL_HUP) ? POLLHUP : 0));
}

static int cb_add_poll(int fd, int events, void *opaque)
{
	struct slirp_be *s = opaque;
	short ev = to_poll_events(events);

	if (s->recording) {
		int *l = realloc(s->listen_fds,
				 (s->nlisten + 1) * sizeof(*l));

		if (l) {
			l[s->nlisten++] = fd;
			s->listen_fds = l;
		}
		return -1;
	}
	if (s->nlisten && over_cap(s) && is_listener(s, fd))
		return -1;	/* new host connections wait in the backlog */
	if (!s->rx_room)
		ev &= (short)~(POLLIN | POLLPRI);	/* data waits in the host */
	if (s->nfds == s->fds_cap) {
		unsigned n = s->fds_cap ? 2 * s->fds_cap : 64;
		struct pollfd *p = realloc(s->fds, n * sizeof(*p));

		if (!p)
			return -1;	/* not polled this turn */
		s->fds = p;
		s->fds_cap = n;
	}
	s->fds[s->nfds] = (struct pollfd){ .fd = fd, .events = ev };
	return (int)s->nfds++;
}

static int cb_get_revents(int idx, void *opaque)
{
	struct slirp_be *s = opaque;
	short r;

	if (idx < 0 || (unsigned)idx >= s->nfds)
		return 0;
	r = s->fds[idx].revents;
	return ((r & POLLIN) ? SLIRP_POLL_IN : 0) |
	       ((r & POLLOUT) ? SLIRP_POLL_OUT : 0) |
	       ((r & POLLPRI) ? SLIRP_POLL_PRI : 0) |
	       ((r & (POLLERR | POLLNVAL)) ? SLIRP_POLL_ERR : 0) |
	       ((r & POLLHUP) ? SLIRP_POLL_HUP : 0);
}

/* The fds past the core's room, into a fresh epoll set (fds slirp closed
 * since the last turn leave an epoll set by themselves, and a number can
 * come back as another socket: so a new set each turn). */
static int overflow_set(struct slirp_be *s)
{
	unsigned rest = s->nfds - s->direct;

	if (s->epfd >= 0)
		close(s->epfd);
	s->epfd = -1;
	if (rest > s->evs_cap) {
		struct epoll_event *e = realloc(s->evs, rest * sizeof(*e));

		if (!e)
			return -1;	/* those sockets wait for a turn */
		s->evs = e;
		s->evs_cap = rest;
	}
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0) {
		vlog_ratelimited(LOG_WARN, "net nat: epoll: %s",
				 strerror(errno));
		return -1;
	}
	for (unsigned i = s->direct; i < s->nfds; i++) {
		struct epoll_event ev = {
			.events = (uint32_t)s->fds[i].events,
			.data.u32 = i,
		};

		/* POLLIN etc. have the EPOLLIN etc. values.  A socket that
		 * cannot be added (no memory) waits for the next turn. */
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->fds[i].fd, &ev) < 0)
			vlog_ratelimited(LOG_WARN, "net nat: epoll_ctl: %s",
					 strerror(errno));
	}
	return s->epfd;
}

static int slirp_poll_fill(void *be, struct pollfd *pfd, int max,
			   int *timeout_ms, bool rx_room, bool tx_pending)
{
	struct slirp_be *s = be;
	uint32_t t = *timeout_ms < 0 ? UINT32_MAX : (uint32_t)*timeout_ms;
	int64_t now_ms = now_ns() / 1000000;
	int n;

	pthread_mutex_lock(&slirp_lock);
	s->nfds = 0;
	s->rx_room = rx_room;
	slirp_pollfds_fill(s->slirp, &t, cb_add_poll, s);
	for (struct slirp_timer *tm = s->timers; tm; tm = tm->next) {
		if (tm->expire_ms < 0)
			continue;
		if (tm->expire_ms <= now_ms)
			t = 0;
		else if ((uint64_t)(tm->expire_ms - now_ms) < t)
			t = (uint32_t)(tm->expire_ms - now_ms);
	}
	pthread_mutex_unlock(&slirp_lock);
	if (t != UINT32_MAX)
		*timeout_ms = t > INT_MAX ? INT_MAX : (int)t;

	if (s->nfds <= (unsigned)max) {
		s->direct = s->nfds;
		n = (int)s->nfds;
		if (s->epfd >= 0) {
			close(s->epfd);
			s->epfd = -1;
		}
	} else {
		int ep;

		s->direct = (unsigned)max - 1;
		for (unsigned i = s->direct; i < s->nfds; i++)
			s->fds[i].revents = 0;
		ep = overflow_set(s);
		n = max - 1;
		if (ep >= 0)
			pfd[n++] = (struct pollfd){ .fd = ep, .events = POLLIN };
	}
	for (unsigned i = 0; i < s->direct; i++) {
		pfd[i] = s->fds[i];
		pfd[i].revents = 0;
	}
	return n;
}

static void fire_timers(struct slirp_be *s)
{
	int64_t now_ms = now_ns() / 1000000;
	bool again = true;

	/* A callback may arm, free or make timers: look again after each. */
	while (again) {
		again = false;
		for (struct slirp_timer *tm = s->timers; tm; tm = tm->next) {
			if (tm->expire_ms >= 0 && tm->expire_ms <= now_ms) {
				tm->expire_ms = -1;
				tm->cb(tm->cb_opaque);
				again = true;
				break;
			}
		}
	}
}

static void slirp_poll_done(void *be, struct pollfd *pfd, int n)
{
	struct slirp_be *s = be;

	for (unsigned i = 0; i < s->direct; i++)
		s->fds[i].revents = (int)i < n ? pfd[i].revents : 0;
	if (s->direct < s->nfds && s->epfd >= 0) {
		/* One call with room for all: level-triggered entries come
		 * back round, so a second call could repeat the first. */
		int k = epoll_wait(s->epfd, s->evs, (int)(s->nfds - s->direct),
				   0);

		for (int i = 0; i < k; i++)
			if (s->evs[i].data.u32 < s->nfds)
				s->fds[s->evs[i].data.u32].revents =
					(short)s->evs[i].events;
	}
	pthread_mutex_lock(&slirp_lock);
	fire_timers(s);
	slirp_pollfds_poll(s->slirp, 0, cb_get_revents, s);
	pthread_mutex_unlock(&slirp_lock);
}

/* Over the cap: is this guest frame one that would make a new socket (a
 * TCP SYN, UDP but DHCP, an echo request)?  Ethernet II, IPv4 or IPv6
 * without extension headers; anything else passes. */
static bool opens_socket(const uint8_t *f, size_t len)
{
	unsigned type, proto, l4;

	if (len < 14)
		return false;
	type = (unsigned)f[12] << 8 | f[13];
	if (type == 0x0800 && len >= 34) {
		unsigned ihl = (f[14] & 0xf) * 4u;

		if ((((unsigned)f[20] << 8 | f[21]) & 0x1fff) != 0)
			return false;	/* a later fragment */
		proto = f[23];
		l4 = 14 + ihl;
	} else if (type == 0x86dd && len >= 54) {
		proto = f[20];
		l4 = 54;
	} else {
		return false;
	}
	if (len < l4 + 4)
		return false;
	switch (proto) {
	case 6:		/* TCP: SYN without ACK */
		return len >= l4 + 14 && (f[l4 + 13] & 0x12) == 0x02;
	case 17: {	/* UDP: all but DHCP and DHCPv6 */
		unsigned dport = (unsigned)f[l4 + 2] << 8 | f[l4 + 3];

		return dport != 67 && dport != 547;
	}
	case 1:		/* ICMP echo */
		return f[l4] == 8;
	case 58:	/* ICMPv6 echo */
		return f[l4] == 128;
	default:
		return false;
	}
}

static int slirp_output(void *be, const uint8_t *frame, size_t len)
{
	struct slirp_be *s = be;

	pthread_mutex_lock(&slirp_lock);
	if (over_cap(s) && opens_socket(frame, len)) {
		if (s->dropped_full++ == 0)
			vlog(LOG_WARN, "net nat: %u sockets open: new "
			     "connections are dropped until some close",
			     s->nopen);
	} else {
		slirp_input(s->slirp, frame, (int)len);
	}
	pthread_mutex_unlock(&slirp_lock);
	return 0;
}

static void slirp_be_free(void *be)
{
	struct slirp_be *s = be;

	pthread_mutex_lock(&slirp_lock);
	if (s->slirp)
		slirp_cleanup(s->slirp);
	pthread_mutex_unlock(&slirp_lock);
	while (s->timers)
		cb_timer_free(s->timers, s);
	if (s->epfd >= 0)
		close(s->epfd);
	free(s->fds);
	free(s->evs);
	free(s->listen_fds);
	free(s->open_map);
	free(s);
}

/* ---- saved state (slirp.h) ------------------------------------------------ */

static ssize_t state_write(const void *buf, size_t len, void *opaque)
{
	g_byte_array_append(opaque, buf, (guint)len);
	return (ssize_t)len;
}

struct state_reader {
	const uint8_t *data;
	size_t len, pos;
};

/* Short reads past the end: libslirp's stream then reads zeros, so the
 * length is checked before it reads at all. */
static ssize_t state_read(void *buf, size_t len, void *opaque)
{
	struct state_reader *r = opaque;
	size_t n = len < r->len - r->pos ? len : r->len - r->pos;

	memcpy(buf, r->data + r->pos, n);
	r->pos += n;
	return (ssize_t)n;
}

/* libslirp's state of @s as bytes; slirp_lock held. */
static GByteArray *slirp_bytes(struct slirp_be *s)
{
	GByteArray *b = g_byte_array_new();

	slirp_state_save(s->slirp, state_write, b);
	return b;
}

static GVariant *slirp_save_state(void *be, uint32_t *version)
{
	struct slirp_be *s = be;
	GByteArray *b;
	GVariant *v;

	pthread_mutex_lock(&slirp_lock);
	b = slirp_bytes(s);
	pthread_mutex_unlock(&slirp_lock);
	v = g_variant_new("(is@ay)", (gint32)slirp_state_version(),
			  slirp_version_string(),
			  g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, b->data,
						    b->len, 1));
	g_byte_array_unref(b);
	*version = NET_SLIRP_STATE_VERSION;
	return v;
}

/* @s from a file: printable and short, for the log. */
static const char *lib_text(const char *s)
{
	for (size_t i = 0; s[i]; i++)
		if (i >= 32 || s[i] < 0x20 || s[i] > 0x7e)
			return "unknown";
	return s;
}

static int slirp_load_state(void *be, uint32_t version, GVariant *state,
			    char *err, size_t errlen)
{
	struct slirp_be *s = be;
	struct state_reader rd = { 0 };
	const char *lib;
	GByteArray *own;
	GVariant *blob;
	gint32 sv;
	gsize len;
	int r = 0;

	if (version != NET_SLIRP_STATE_VERSION) {
		snprintf(err, errlen, "nat: state version %u not supported (this vivarium reads %u)",
			 version, NET_SLIRP_STATE_VERSION);
		return -EINVAL;
	}
	if (!g_variant_is_of_type(state, G_VARIANT_TYPE(NET_SLIRP_STATE_TYPE))) {
		snprintf(err, errlen, "nat: state is of type %s, not %s",
			 g_variant_get_type_string(state), NET_SLIRP_STATE_TYPE);
		return -EINVAL;
	}
	g_variant_get(state, "(i&s@ay)", &sv, &lib, &blob);
	rd.data = g_variant_get_fixed_array(blob, &len, 1);
	rd.len = len;
	if (sv != slirp_state_version()) {
		/* Another libslirp's format: as if nothing had been saved. */
		vlog(LOG_WARN, "net nat: the saved NAT state is libslirp state version %d (libslirp %s), this libslirp %s reads %d: the NAT goes on without it (DHCP leases and connections not restored)",
		     (int)sv, lib_text(lib), slirp_version_string(),
		     slirp_state_version());
		g_variant_unref(blob);
		return 0;
	}
	pthread_mutex_lock(&slirp_lock);
	/* What this libslirp writes for a backend like this one (no guest
	 * forwards, so no connections in it): exactly its length, and the
	 * end-of-connections mark first.  libslirp itself would read a
	 * short state as zeros and size a connection's buffers from the
	 * state (sbreserve: up to 4 GiB). */
	own = slirp_bytes(s);
	if (len != own->len) {
		snprintf(err, errlen, "nat: libslirp state of %zu bytes, not the %u bytes this libslirp %s writes: corrupt",
			 (size_t)len, own->len, slirp_version_string());
		r = -EINVAL;
	} else if (!len || rd.data[0] != 0) {
		snprintf(err, errlen, "nat: libslirp state with connections in it (this backend makes none): corrupt");
		r = -EINVAL;
	} else if (slirp_state_load(s->slirp, sv, state_read, &rd) < 0 ||
		   rd.pos != rd.len) {
		/* Back to what it had: nothing half-loaded. */
		rd = (struct state_reader){ own->data, own->len, 0 };
		slirp_state_load(s->slirp, sv, state_read, &rd);
		snprintf(err, errlen, "nat: libslirp %s refused its state",
			 slirp_version_string());
		r = -EINVAL;
	}
	pthread_mutex_unlock(&slirp_lock);
	g_byte_array_unref(own);
	g_variant_unref(blob);
	return r;
}

static const struct net_backend_ops slirp_ops = {
	.kind = "nat",
	.poll_fill = slirp_poll_fill,
	.poll_done = slirp_poll_done,
	.output = slirp_output,
	.free = slirp_be_free,
	.save_state = slirp_save_state,
	.load_state = slirp_load_state,
};

static const char *errno_text(int e)
{
	switch (e) {
	case EADDRINUSE:
		return "address already in use";
	case EADDRNOTAVAIL:
		return "no such address on this host";
	case EACCES:
		return "permission denied (ports below 1024 need "
		       "CAP_NET_BIND_SERVICE)";
	default:
		return strerror(e);
	}
}

static bool in_net(struct in_addr a, struct in_addr net, unsigned prefix)
{
	uint32_t mask = ~0u << (32 - prefix);

	return (ntohl(a.s_addr) & mask) == ntohl(net.s_addr);
}

static struct in_addr net_plus(struct in_addr net, uint32_t n)
{
	return (struct in_addr){ htonl(ntohl(net.s_addr) + n) };
}

/* Listen for each forward (before the thread starts: errors come back
 * here), then note the listening fds. */
static int add_forwards(struct slirp_be *s, const struct net_slirp_config *c,
			struct in_addr net, unsigned prefix, char *err,
			size_t errlen)
{
	uint32_t t = UINT32_MAX;

	for (unsigned i = 0; i < c->nfwd; i++) {
		const struct net_hostfwd *f = &c->fwd[i];
		struct in_addr guest = f->guest_addr;
		char host[INET_ADDRSTRLEN];
		uint32_t hostbits = ~(~0u << (32 - prefix));

		inet_ntop(AF_INET, &f->host_addr, host, sizeof(host));
		if (!guest.s_addr)
			guest = net_plus(net, 15);
		if (!in_net(guest, net, prefix) ||
		    (ntohl(guest.s_addr) & hostbits) == 0 ||
		    (ntohl(guest.s_addr) & hostbits) == hostbits) {
			char g[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, &guest, g, sizeof(g));
			snprintf(err, errlen, "hostfwd %s:%s:%u: guest address "
				 "%s is not a host of the guest's network",
				 f->udp ? "udp" : "tcp", host, f->host_port, g);
			return -EINVAL;
		}
		if (!f->host_port || !f->guest_port) {
			snprintf(err, errlen, "hostfwd %s:%s:%u: port 0",
				 f->udp ? "udp" : "tcp", host, f->host_port);
			return -EINVAL;
		}
		errno = 0;
		if (slirp_add_hostfwd(s->slirp, f->udp, f->host_addr,
				      f->host_port, guest, f->guest_port) < 0) {
			int e = errno ? errno : EINVAL;

			snprintf(err, errlen, "hostfwd %s:%s:%u: %s",
				 f->udp ? "udp" : "tcp", host, f->host_port,
				 errno_text(e));
			return -e;
		}
	}
	s->recording = true;
	slirp_pollfds_fill(s->slirp, &t, cb_add_poll, s);
	s->recording = false;
	return 0;
}

struct netdev *net_slirp_new(const struct net_slirp_config *cfg, char *err,
			     size_t errlen)
{
	static const struct net_slirp_config defaults;
	const struct net_slirp_config *c = cfg ? cfg : &defaults;
	SlirpConfig sc = { .version = 4 };
	struct in_addr net;
	unsigned prefix;
	struct slirp_be *s;
	int e;

	pthread_once(&slirp_log_once, slirp_log_init);
	if (parse_net(c->net ? c->net : "10.0.2.0/24", &net, &prefix, err,
		      errlen))
		return NULL;
	if (c->hostname && (!c->hostname[0] || strlen(c->hostname) > 32)) {
		snprintf(err, errlen, "nat hostname '%s': 1 to 32 characters",
			 c->hostname);
		return NULL;
	}
	for (const char *const *d = c->dns_search; d && *d; d++) {
		if (!**d || strlen(*d) > 253) {
			snprintf(err, errlen, "nat DNS search domain '%s': 1 to "
				 "253 characters", *d);
			return NULL;
		}
	}
	if (c->nfwd && !c->fwd) {
		snprintf(err, errlen, "nat: %u forwards but no table", c->nfwd);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "nat: out of memory");
		return NULL;
	}
	s->epfd = -1;
	s->max_conns = c->max_conns ? c->max_conns : NET_SLIRP_MAX_CONNS;

	sc.restricted = c->restrict_;
	sc.in_enabled = true;
	sc.vnetwork = net;
	sc.vnetmask.s_addr = htonl(~0u << (32 - prefix));
	sc.vhost = net_plus(net, 2);
	sc.vnameserver = net_plus(net, 3);
	sc.vdhcp_start = net_plus(net, 15);
	sc.in6_enabled = !c->ipv6_off;
	inet_pton(AF_INET6, "fec0::", &sc.vprefix_addr6);
	sc.vprefix_len = 64;
	inet_pton(AF_INET6, "fec0::2", &sc.vhost6);
	inet_pton(AF_INET6, "fec0::3", &sc.vnameserver6);
	sc.vhostname = c->hostname;
	sc.vdnssearch = (const char **)c->dns_search;

	pthread_mutex_lock(&slirp_lock);
	s->slirp = slirp_new(&sc, &slirp_callbacks, s);
	if (!s->slirp) {
		pthread_mutex_unlock(&slirp_lock);
		snprintf(err, errlen, "nat: libslirp refused the configuration");
		slirp_be_free(s);
		return NULL;
	}
	e = add_forwards(s, c, net, prefix, err, errlen);
	pthread_mutex_unlock(&slirp_lock);
	if (e) {
		slirp_be_free(s);
		return NULL;
	}
	s->nd = net_new(&slirp_ops, s, &e);
	if (!s->nd) {
		snprintf(err, errlen, "nat: %s", strerror(-e));
		slirp_be_free(s);
		return NULL;
	}
	e = net_start(s->nd);
	if (e) {
		snprintf(err, errlen, "nat: cannot start its thread: %s",
			 strerror(-e));
		net_free(s->nd);	/* frees s */
		return NULL;
	}
	return s->nd;
}
