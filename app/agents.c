/* SPDX-License-Identifier: MIT */
/*
 * The VM process's guest agents and clipboard hub.  See agents.h.
 */
#define _GNU_SOURCE
#include "agents.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <glib-unix.h>
#include <glib.h>

#include "additions_host.h"
#include "agent/vdagent.h"
#include "log.h"
#include "qga.h"
#include "virtio/virtio_console.h"

struct agent_port {
	struct vm_agents *a;
	struct vcon_port *port;
	atomic_uint opens;		/* guest open events seen (vCPU side) */
	unsigned opens_done;		/* ... handled (main loop) */
	bool open;			/* as last handled */
};

struct vm_agents {
	int efd;			/* the ports' callbacks wake the loop */
	void (*info_fn)(void *opaque);	/* vm_agents_on_guest_info() */
	void *info_opaque;
	guint watch;
	struct agent_port va_port, qga_port;
	bool has_va, has_qga;
	struct vdagent *va;
	struct qga *qga;
	/* Clipboard (CLIPBOARD selection, UTF-8 text). */
	char *host_text;		/* what the host offers; NULL: none */
	char *guest_text;		/* the guest's, once received */
	bool guest_owns;		/* the guest grabbed last */
	struct {
		void (*fn)(void *opaque, const char *text);
		void *opaque;
	} guest_text_cb[VM_AGENTS_TEXT_LISTENERS];
	/* Session size (MONITORS_CONFIG): requests from any thread. */
	atomic_bool va_up;		/* the guest's vdagent is connected */
	_Atomic uint64_t size_pending;	/* width << 32 | height; 0: none */
	_Atomic uint64_t add_size_pending;	/* the same, for the additions */
	uint64_t size_last;		/* the last one sent, for a reconnect */
	guint set_time_timer;
	bool thaw_pending;
	/* Our own guest additions (additions_host.h); see its block below. */
	struct agent_port add_port;
	bool has_add;
	struct additions_host *add;
	guint add_time_timer;
};

static void additions_on_wake(struct vm_agents *a);

/* ---- the ports' callbacks (device lock held, any thread) ----------------- */

static void wake(struct agent_port *p)
{
	uint64_t one = 1;

	if (write(p->a->efd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is full, a wakeup is pending anyway */
	}
}

static void port_readable(void *opaque)
{
	wake(opaque);
}

static void port_open(void *opaque, bool open)
{
	struct agent_port *p = opaque;

	if (open)
		atomic_fetch_add(&p->opens, 1);
	wake(p);
}

static const struct vcon_port_ops port_ops = {
	.readable = port_readable, .guest_open = port_open,
};

/* ---- vdagent ---------------------------------------------------------------- */

static void va_send(void *opaque, const void *buf, size_t len)
{
	struct vm_agents *a = opaque;
	ssize_t n = vcon_port_write(a->va_port.port, buf, len);

	if (n != (ssize_t)len)
		vlog_ratelimited(LOG_WARN, "vdagent: %zu of %zu bytes for the guest dropped (its port is %s)",
				 len - (n > 0 ? (size_t)n : 0), len,
				 n < 0 ? "closed" : "full");
}

static void offer_host_text(struct vm_agents *a)
{
	static const uint32_t text = VD_AGENT_CLIPBOARD_UTF8_TEXT;

	if (!vdagent_connected(a->va))
		return;
	if (a->host_text)
		vdagent_grab(a->va, VD_AGENT_CLIPBOARD_SELECTION_CLIPBOARD, &text, 1);
}

static void va_connected(void *opaque, bool up)
{
	struct vm_agents *a = opaque;

	vlog(LOG_INFO, "vdagent: the guest's spice-vdagentd %s",
	     up ? "connected" : "went away");
	atomic_store(&a->va_up, up);
	if (up && !a->guest_owns)
		offer_host_text(a);
	/* A session (re)starting gets the size last asked for, as a SPICE
	 * client sends its window's size when the agent connects. */
	if (up && a->size_last)
		atomic_store(&a->size_pending, a->size_last);
}

static void va_grab(void *opaque, unsigned sel, const uint32_t *types,
		    unsigned n)
{
	struct vm_agents *a = opaque;

	if (sel != VD_AGENT_CLIPBOARD_SELECTION_CLIPBOARD)
		return;
	for (unsigned i = 0; i < n; i++)
		if (types[i] == VD_AGENT_CLIPBOARD_UTF8_TEXT) {
			a->guest_owns = true;
			vdagent_request(a->va, sel, VD_AGENT_CLIPBOARD_UTF8_TEXT);
			return;
		}
}

static void va_request(void *opaque, unsigned sel, uint32_t type)
{
	struct vm_agents *a = opaque;

	if (sel == VD_AGENT_CLIPBOARD_SELECTION_CLIPBOARD &&
	    type == VD_AGENT_CLIPBOARD_UTF8_TEXT && a->host_text && !a->guest_owns)
		vdagent_clipboard(a->va, sel, type, a->host_text,
				  strlen(a->host_text));
	else
		vdagent_clipboard(a->va, sel, VD_AGENT_CLIPBOARD_NONE, NULL, 0);
}

static void va_data(void *opaque, unsigned sel, uint32_t type,
		    const uint8_t *data, size_t len)
{
	struct vm_agents *a = opaque;

	if (sel != VD_AGENT_CLIPBOARD_SELECTION_CLIPBOARD ||
	    type != VD_AGENT_CLIPBOARD_UTF8_TEXT || !a->guest_owns)
		return;
	if (!g_utf8_validate((const char *)data, (gssize)len, NULL)) {
		vlog_ratelimited(LOG_WARN, "vdagent: the guest's clipboard text is not UTF-8: ignored");
		return;
	}
	g_free(a->guest_text);
	a->guest_text = g_strndup((const char *)data, len);
	for (unsigned i = 0; i < VM_AGENTS_TEXT_LISTENERS; i++)
		if (a->guest_text_cb[i].fn)
			a->guest_text_cb[i].fn(a->guest_text_cb[i].opaque,
					       a->guest_text);
}

static void va_release(void *opaque, unsigned sel)
{
	struct vm_agents *a = opaque;

	if (sel != VD_AGENT_CLIPBOARD_SELECTION_CLIPBOARD)
		return;
	a->guest_owns = false;
	g_clear_pointer(&a->guest_text, g_free);
}

static const struct vdagent_ops va_ops = {
	.send = va_send, .connected = va_connected, .grab = va_grab,
	.request = va_request, .data = va_data, .release = va_release,
};

/* The latest size asked for, if any, to the connected agent. */
static void send_size(struct vm_agents *a)
{
	uint64_t v = atomic_exchange(&a->size_pending, 0);

	if (!v || !vdagent_connected(a->va))
		return;
	if (vdagent_monitors_config(a->va, (unsigned)(v >> 32),
				    (unsigned)(v & 0xffffffffu)) == 0)
		a->size_last = v;
}

/* ---- qga transport ------------------------------------------------------------ */

static ssize_t qga_write(void *opaque, const void *buf, size_t len)
{
	return vcon_port_write(opaque, buf, len);
}

static size_t qga_read(void *opaque, void *buf, size_t len)
{
	return vcon_port_read(opaque, buf, len);
}

static int qga_wait(void *opaque, int ms)
{
	return vcon_port_wait(opaque, ms);
}

static const struct qga_transport qga_transport = {
	qga_write, qga_read, qga_wait,
};

/* ---- the main loop's side ----------------------------------------------------- */

/* Returns true if the guest (re)opened the port since the last call. */
static bool port_events(struct agent_port *p, bool *closed)
{
	unsigned opens = atomic_load(&p->opens);
	bool now = vcon_port_guest_open(p->port);
	bool reopened = opens != p->opens_done && now;

	*closed = p->open && (!now || opens != p->opens_done);
	p->opens_done = opens;
	p->open = now;
	return reopened;
}

static gboolean on_wake(gint fd, GIOCondition cond, gpointer opaque)
{
	struct vm_agents *a = opaque;
	uint64_t v;
	uint8_t buf[4096];
	size_t n;
	bool closed;

	(void)cond;
	if (read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing */
	}
	if (a->has_va) {
		if (port_events(&a->va_port, &closed) || closed)
			vdagent_reset(a->va, a->va_port.open);
		/* Bounded: what waits now (64 KiB at most, then the port's
		 * device goes on and wakes us again). */
		for (unsigned i = 0; i < 64 &&
		     (n = vcon_port_read(a->va_port.port, buf, sizeof(buf))); i++)
			vdagent_input(a->va, buf, n);
		send_size(a);
	}
	if (a->has_qga) {
		bool reopened = port_events(&a->qga_port, &closed);

		if (closed)
			qga_reset(a->qga);
		if (reopened)
			qga_sync_start(a->qga);
		qga_poll(a->qga);
	}
	if (a->has_add) {
		uint64_t sz = atomic_exchange(&a->add_size_pending, 0);

		if (sz)
			additions_host_display_size(a->add, (unsigned)(sz >> 32),
						    (unsigned)(sz & 0xffffffffu));
		additions_on_wake(a);
	}
	return G_SOURCE_CONTINUE;
}

struct vm_agents *vm_agents_new(bool vdagent, bool qga, char *err,
				size_t errlen)
{
	struct vm_agents *a = g_new0(struct vm_agents, 1);

	a->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (a->efd < 0) {
		snprintf(err, errlen, "guest agents: eventfd: %s", strerror(errno));
		g_free(a);
		return NULL;
	}
	a->va_port.a = a->qga_port.a = a;
	if (vdagent) {
		a->va_port.port = vcon_port_new(AGENT_VDAGENT_PORT, &port_ops,
						&a->va_port);
		a->va = vdagent_new(&va_ops, a);
		a->has_va = true;
	}
	if (qga) {
		a->qga_port.port = vcon_port_new(AGENT_QGA_PORT, &port_ops,
						 &a->qga_port);
		a->qga = a->qga_port.port ?
			 qga_new(&qga_transport, a->qga_port.port) : NULL;
		a->has_qga = true;
	}
	if ((vdagent && (!a->va_port.port || !a->va)) ||
	    (qga && (!a->qga_port.port || !a->qga))) {
		snprintf(err, errlen, "guest agents: out of memory");
		vm_agents_free(a);
		return NULL;
	}
	a->watch = g_unix_fd_add(a->efd, G_IO_IN, on_wake, a);
	return a;
}

void vm_agents_free(struct vm_agents *a)
{
	if (!a)
		return;
	if (a->watch)
		g_source_remove(a->watch);
	if (a->set_time_timer)
		g_source_remove(a->set_time_timer);
	if (a->add_time_timer)
		g_source_remove(a->add_time_timer);
	close(a->efd);
	vdagent_free(a->va);
	qga_free(a->qga);
	additions_host_free(a->add);
	vcon_port_free(a->add_port.port);
	vcon_port_free(a->va_port.port);
	vcon_port_free(a->qga_port.port);
	g_free(a->host_text);
	g_free(a->guest_text);
	g_free(a);
}

unsigned vm_agents_ports(struct vm_agents *a, struct vcon_port **ports,
			 unsigned max)
{
	unsigned n = 0;

	if (a && a->has_va && n < max)
		ports[n++] = a->va_port.port;
	if (a && a->has_qga && n < max)
		ports[n++] = a->qga_port.port;
	if (a && a->has_add && n < max)
		ports[n++] = a->add_port.port;
	return n;
}

unsigned vm_agents_connected(struct vm_agents *a, const char **names,
			     unsigned max)
{
	unsigned n = 0;

	if (a && a->has_va && vdagent_connected(a->va) && n < max)
		names[n++] = "vdagent";
	if (a && a->has_qga && qga_connected(a->qga) && n < max)
		names[n++] = "qga";
	if (a && a->has_add && additions_host_connected(a->add) && n < max)
		names[n++] = "additions";
	return n;
}

int vm_agents_clipboard_set(struct vm_agents *a, const char *text,
			    bool from_window)
{
	if (text && (strlen(text) > VDAGENT_CLIPBOARD_MAX ||
		     !g_utf8_validate(text, -1, NULL)))
		return -EINVAL;
	if (text && !*text)
		text = NULL;
	/* The window's clipboard changing to what the guest put there. */
	if (from_window && a->guest_owns &&
	    g_strcmp0(text, a->guest_text) == 0)
		return 0;
	g_free(a->host_text);
	a->host_text = g_strdup(text);
	if (!a->has_va)
		return 0;
	if (a->guest_owns) {
		a->guest_owns = false;
		g_clear_pointer(&a->guest_text, g_free);
	}
	if (!vdagent_connected(a->va))
		return 0;
	if (a->host_text)
		offer_host_text(a);
	else
		vdagent_release(a->va, VD_AGENT_CLIPBOARD_SELECTION_CLIPBOARD);
	return 0;
}

const char *vm_agents_clipboard_get(struct vm_agents *a, const char **owner)
{
	if (a->guest_owns) {
		*owner = "guest";
		return a->guest_text;
	}
	if (a->host_text) {
		*owner = "host";
		return a->host_text;
	}
	*owner = "none";
	return NULL;
}

int vm_agents_on_guest_text(struct vm_agents *a,
			    void (*fn)(void *opaque, const char *text),
			    void *opaque)
{
	for (unsigned i = 0; i < VM_AGENTS_TEXT_LISTENERS; i++)
		if (!a->guest_text_cb[i].fn) {
			a->guest_text_cb[i].fn = fn;
			a->guest_text_cb[i].opaque = opaque;
			return 0;
		}
	return -ENOSPC;
}

void vm_agents_off_guest_text(struct vm_agents *a,
			      void (*fn)(void *opaque, const char *text),
			      void *opaque)
{
	for (unsigned i = 0; a && i < VM_AGENTS_TEXT_LISTENERS; i++)
		if (a->guest_text_cb[i].fn == fn &&
		    a->guest_text_cb[i].opaque == opaque)
			a->guest_text_cb[i].fn = NULL;
}

int vm_agents_request_size(struct vm_agents *a, unsigned width,
			   unsigned height)
{
	uint64_t one = 1;
	bool add;

	if (!width || !height || width > 0xffff || height > 0xffff)
		return -EINVAL;
	/* The guest additions take it too, now or when they connect; passed
	 * on from the main loop, as the vdagent's (their host side is the
	 * main loop's). */
	add = a && a->has_add;
	if (add)
		atomic_store(&a->add_size_pending, (uint64_t)width << 32 | height);
	if (!a || ((!a->has_va || !atomic_load(&a->va_up)) && !add))
		return -ENOTCONN;
	/* Sent from the main loop (the codec is one thread's); a burst of
	 * requests sends the last. */
	atomic_store(&a->size_pending, (uint64_t)width << 32 | height);
	if (write(a->efd, &one, sizeof(one)) < 0) {
		/* EAGAIN: a wakeup is pending anyway */
	}
	return 0;
}

int vm_agents_size_hook(void *opaque, unsigned width, unsigned height)
{
	return vm_agents_request_size(opaque, width, height);
}

bool vm_agents_qga_connected(struct vm_agents *a)
{
	return a && a->has_qga && qga_connected(a->qga);
}

int vm_agents_shutdown(struct vm_agents *a, char *err, size_t errlen)
{
	if (!vm_agents_qga_connected(a)) {
		snprintf(err, errlen, "the guest agent is not connected");
		return -ENOTCONN;
	}
	return qga_shutdown(a->qga, QGA_CMD_TIMEOUT_MS, err, errlen);
}

int vm_agents_fsfreeze(struct vm_agents *a, bool freeze, bool *done,
		       char *err, size_t errlen)
{
	int count = 0, r;

	*done = false;
	if (!vm_agents_qga_connected(a))
		return 0;
	r = qga_fsfreeze(a->qga, freeze, freeze ? QGA_FREEZE_TIMEOUT_MS :
			 QGA_CMD_TIMEOUT_MS, &count, err, errlen);
	if (r == 0) {
		*done = true;
		vlog(LOG_INFO, "guest agent: %s %d file systems",
		     freeze ? "froze" : "thawed", count);
	}
	return r;
}

static gboolean set_time_now(gpointer opaque)
{
	struct vm_agents *a = opaque;
	char err[256];

	a->set_time_timer = 0;
	/* Connected, or the port open (a revert's rebuild reopened it):
	 * the call synchronises first, within its timeout. */
	if (!vcon_port_guest_open(a->qga_port.port))
		return G_SOURCE_REMOVE;
	/* A snapshot's state was captured with the file systems frozen. */
	if (a->thaw_pending) {
		int count = 0;

		a->thaw_pending = false;
		if (qga_fsfreeze(a->qga, false, QGA_CMD_TIMEOUT_MS, &count, err,
				 sizeof(err)) < 0)
			vlog(LOG_WARN, "guest agent: guest-fsfreeze-thaw: %s", err);
	}
	if (qga_set_time(a->qga, g_get_real_time() * 1000, QGA_CMD_TIMEOUT_MS,
			 err, sizeof(err)) < 0)
		vlog(LOG_WARN, "guest agent: guest-set-time: %s", err);
	else
		vlog(LOG_INFO, "guest agent: guest clock set");
	return G_SOURCE_REMOVE;
}

static void additions_set_time(struct vm_agents *a);

void vm_agents_set_time(struct vm_agents *a, bool thaw)
{
	if (a && a->has_add)
		additions_set_time(a);
	if (!a || !a->has_qga)
		return;
	a->thaw_pending |= thaw;
	if (a->set_time_timer)
		return;
	/* Soon, not now: after a revert the machine is being rebuilt. */
	a->set_time_timer = g_timeout_add(300, set_time_now, a);
}

/* ---- guest additions: org.vivarium.additions.0 (additions_host.h) -------- */

static void add_send(void *opaque, const void *buf, size_t len)
{
	struct vm_agents *a = opaque;
	ssize_t n = vcon_port_write(a->add_port.port, buf, len);

	/* Whole lines or nothing would be nicer; the buffer (64 KiB) holds
	 * many of ours, so a short write means a guest that stopped reading. */
	if (n != (ssize_t)len)
		vlog_ratelimited(LOG_WARN, "additions: %zu of %zu bytes for the guest dropped (its port is %s)",
				 len - (n > 0 ? (size_t)n : 0), len,
				 n < 0 ? "closed" : "full");
}

static void add_info(void *opaque)
{
	struct vm_agents *a = opaque;
	const struct additions_info *in = additions_host_info(a->add);

	vlog(LOG_INFO, "additions: the guest runs %s (kernel %s), %u address%s%s%s",
	     in->os[0] ? in->os : "an unnamed OS", in->kernel[0] ? in->kernel : "?",
	     in->naddr, in->naddr == 1 ? "" : "es", in->naddr ? ", first " : "",
	     in->naddr ? in->addr[0] : "");
	if (a->info_fn)
		a->info_fn(a->info_opaque);
}

static const struct additions_host_ops add_ops = {
	.send = add_send, .info = add_info,
};

static void additions_on_wake(struct vm_agents *a)
{
	uint8_t buf[4096];
	size_t n;
	bool closed, reopened = port_events(&a->add_port, &closed);

	if (closed)
		additions_host_reset(a->add, false);
	if (reopened)
		additions_host_reset(a->add, true);
	/* Bounded as the vdagent's port: 64 KiB per wake. */
	for (unsigned i = 0; i < 16 &&
	     (n = vcon_port_read(a->add_port.port, buf, sizeof(buf))); i++)
		additions_host_input(a->add, buf, n);
}

int vm_agents_enable_additions(struct vm_agents *a,
			       const struct additions_share *shares,
			       unsigned nshares, char *err, size_t errlen)
{
	if (a->has_add)
		return 0;
	a->add_port.a = a;
	a->add_port.port = vcon_port_new(ADDITIONS_PORT, &port_ops, &a->add_port);
	a->add = additions_host_new(&add_ops, a);
	if (!a->add_port.port || !a->add) {
		additions_host_free(a->add);
		vcon_port_free(a->add_port.port);
		a->add = NULL;
		a->add_port.port = NULL;
		snprintf(err, errlen, "guest additions: out of memory");
		return -ENOMEM;
	}
	additions_host_set_shares(a->add, shares, nshares);
	a->has_add = true;
	return 0;
}

void vm_agents_on_guest_info(struct vm_agents *a, void (*fn)(void *opaque),
			     void *opaque)
{
	a->info_fn = fn;
	a->info_opaque = opaque;
}

const struct additions_info *vm_agents_guest_info(struct vm_agents *a)
{
	return a && a->has_add ? additions_host_info(a->add) : NULL;
}

int vm_agents_additions_display_size(struct vm_agents *a, unsigned width,
				     unsigned height)
{
	if (!a || !a->has_add)
		return -ENOTCONN;
	return additions_host_display_size(a->add, width, height);
}

static gboolean additions_time_now(gpointer opaque)
{
	struct vm_agents *a = opaque;

	a->add_time_timer = 0;
	if (additions_host_time_sync(a->add, g_get_real_time()) == 0)
		vlog(LOG_INFO, "additions: guest clock sync sent");
	return G_SOURCE_REMOVE;
}

/* As for qga: soon, once a revert's rebuild has reopened the port. */
static void additions_set_time(struct vm_agents *a)
{
	if (!a->add_time_timer)
		a->add_time_timer = g_timeout_add(300, additions_time_now, a);
}
