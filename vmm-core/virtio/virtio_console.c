/* SPDX-License-Identifier: MIT */
/*
 * The virtio console device with multiport (virtio-serial), virtio 1.2
 * §5.3.  See virtio_console.h.
 */
#include "virtio_console.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>

#include "../log.h"
#include "virtio_pci.h"

#define F(bit)		(1ull << (bit))

/* ---- bounded byte rings ---------------------------------------------------- */

struct ring {
	uint8_t *data;			/* VCON_PORT_BUF bytes */
	size_t head, len;
};

static size_t ring_room(const struct ring *r)
{
	return VCON_PORT_BUF - r->len;
}

/* Append up to @len bytes; returns how many fit. */
static size_t ring_put(struct ring *r, const uint8_t *p, size_t len)
{
	size_t n = len < ring_room(r) ? len : ring_room(r);

	for (size_t done = 0; done < n;) {
		size_t tail = (r->head + r->len) % VCON_PORT_BUF;
		size_t chunk = VCON_PORT_BUF - tail;

		if (chunk > n - done)
			chunk = n - done;
		memcpy(r->data + tail, p + done, chunk);
		r->len += chunk;
		done += chunk;
	}
	return n;
}

/* Copy up to @len bytes from offset @off of the ring without taking
 * them; returns how many. */
static size_t ring_peek(const struct ring *r, size_t off, uint8_t *p,
			size_t len)
{
	size_t n;

	if (off >= r->len)
		return 0;
	n = r->len - off < len ? r->len - off : len;
	for (size_t done = 0; done < n;) {
		size_t pos = (r->head + off + done) % VCON_PORT_BUF;
		size_t chunk = VCON_PORT_BUF - pos;

		if (chunk > n - done)
			chunk = n - done;
		memcpy(p + done, r->data + pos, chunk);
		done += chunk;
	}
	return n;
}

static void ring_drop(struct ring *r, size_t n)
{
	if (n > r->len)
		n = r->len;
	r->head = (r->head + n) % VCON_PORT_BUF;
	r->len -= n;
	if (!r->len)
		r->head = 0;
}

static size_t ring_get(struct ring *r, uint8_t *p, size_t len)
{
	size_t n = ring_peek(r, 0, p, len);

	ring_drop(r, n);
	return n;
}

/* ---- the host side of a port ----------------------------------------------- */

struct vcon_port {
	char name[VCON_PORT_NAME_MAX + 1];
	const struct vcon_port_ops *ops;
	void *opaque;
	pthread_mutex_t mu;		/* the fields below */
	pthread_cond_t cond;		/* bytes to read, open state changed */
	struct ring in;			/* host -> guest */
	struct ring out;		/* guest -> host */
	pthread_mutex_t *dev_lock;	/* of the device attaching; kept */
	struct virtio_console *dev;	/* attached device (also dev_lock) */
	unsigned id;			/* its port id */
	bool guest_open;
	bool tx_blocked;		/* the device stopped on a full @out */
	bool want_writable;		/* a write was short */
	unsigned gen;			/* bumped on open/close */
};

struct vcon_port *vcon_port_new(const char *name,
				const struct vcon_port_ops *ops, void *opaque)
{
	struct vcon_port *p;
	size_t n = name ? strlen(name) : 0;

	if (n < 1 || n > VCON_PORT_NAME_MAX)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (name[i] <= ' ' || name[i] > '~' || name[i] == '/')
			return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->in.data = malloc(VCON_PORT_BUF);
	p->out.data = malloc(VCON_PORT_BUF);
	if (!p->in.data || !p->out.data) {
		free(p->in.data);
		free(p->out.data);
		free(p);
		return NULL;
	}
	memcpy(p->name, name, n);
	p->ops = ops;
	p->opaque = opaque;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cond, NULL);
	return p;
}

void vcon_port_free(struct vcon_port *p)
{
	if (!p)
		return;
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cond);
	free(p->in.data);
	free(p->out.data);
	free(p);
}

const char *vcon_port_name(const struct vcon_port *p)
{
	return p->name;
}

/* ---- the device ------------------------------------------------------------ */

struct vcon_state {		/* per named port, driver-visible */
	bool added;		/* PORT_ADD sent (queued) */
	bool ready;		/* the guest's PORT_READY(1) */
	bool open;		/* the guest's PORT_OPEN */
	uint32_t tx_off;	/* bytes of the head transmit chain taken */
};

struct ctrl_msg {
	uint32_t id;
	uint16_t event, value;
};

struct virtio_console {
	struct virtio_pci *vp;
	pthread_mutex_t *lock;
	unsigned nports;
	struct vcon_port *port[VCON_MAX_PORTS + 1];	/* by id; [0] NULL */
	struct vcon_state st[VCON_MAX_PORTS + 1];
	bool device_ready;
	struct ctrl_msg pending[VCON_CTRL_PENDING_MAX];
	unsigned pend_head, pend_len;
};

static bool multiport(struct virtio_console *vc)
{
	return virtio_pci_features(vc->vp) & F(VIRTIO_CONSOLE_F_MULTIPORT);
}

static void queue_ctrl(struct virtio_console *vc, uint32_t id, uint16_t event,
		       uint16_t value)
{
	if (vc->pend_len == VCON_CTRL_PENDING_MAX) {
		vlog_ratelimited(LOG_WARN, "virtio-console: %u control messages wait for the guest: dropping event %u for port %u",
				 vc->pend_len, event, id);
		return;
	}
	vc->pending[(vc->pend_head + vc->pend_len++) % VCON_CTRL_PENDING_MAX] =
		(struct ctrl_msg){ id, event, value };
}

/* Hand waiting control messages to the guest's control receiveq. */
static void flush_ctrl(struct virtio_console *vc)
{
	struct virtq *vq = virtio_pci_queue(vc->vp, VIRTIO_CONSOLE_CTRL_RXQ);
	bool pushed = false;

	while (vc->pend_len) {
		const struct ctrl_msg *m = &vc->pending[vc->pend_head];
		uint8_t buf[VIRTIO_CONSOLE_CTRL_LEN + VCON_PORT_NAME_MAX];
		size_t len = VIRTIO_CONSOLE_CTRL_LEN;
		struct virtq_elem e;
		uint32_t id = htole32(m->id);
		uint16_t ev = htole16(m->event), val = htole16(m->value);

		if (virtq_pop(vq, &e) != 1)
			break;
		memcpy(buf, &id, 4);
		memcpy(buf + 4, &ev, 2);
		memcpy(buf + 6, &val, 2);
		if (m->event == VIRTIO_CONSOLE_PORT_NAME && m->id >= 1 &&
		    m->id <= vc->nports) {
			size_t n = strlen(vc->port[m->id]->name);

			memcpy(buf + len, vc->port[m->id]->name, n);
			len += n;
		}
		vc->pend_head = (vc->pend_head + 1) % VCON_CTRL_PENDING_MAX;
		vc->pend_len--;
		if (e.in_len < len) {
			vlog_ratelimited(LOG_WARN, "virtio-console: control receive buffer of %llu bytes, %zu needed: message dropped",
					 (unsigned long long)e.in_len, len);
			len = 0;
		} else {
			iov_from_buf(e.iov + e.out_num, e.in_num, 0, buf, len);
		}
		virtq_push(vq, &e, (uint32_t)len);
		virtq_elem_release(&e);
		pushed = true;
	}
	if (pushed)
		virtio_pci_notify_used(vc->vp, VIRTIO_CONSOLE_CTRL_RXQ);
}

/* Queued guest-bound bytes of port @id into its receive buffers, while
 * the guest has it open. */
static void flush_rx(struct virtio_console *vc, unsigned id)
{
	struct vcon_port *p = vc->port[id];
	struct virtq *vq;
	bool pushed = false, wake = false;

	if (!p || !vc->st[id].open || !multiport(vc))
		return;
	vq = virtio_pci_queue(vc->vp, VIRTIO_CONSOLE_RXQ(id));
	for (;;) {
		struct virtq_elem e;
		uint8_t tmp[4096];
		size_t done = 0;
		bool empty;

		pthread_mutex_lock(&p->mu);
		empty = p->in.len == 0;
		pthread_mutex_unlock(&p->mu);
		if (empty || virtq_pop(vq, &e) != 1)
			break;
		pthread_mutex_lock(&p->mu);
		while (done < e.in_len) {
			size_t want = e.in_len - done < sizeof(tmp) ?
				      e.in_len - done : sizeof(tmp);
			size_t n = ring_get(&p->in, tmp, want);

			if (!n)
				break;
			iov_from_buf(e.iov + e.out_num, e.in_num, done, tmp, n);
			done += n;
		}
		if (p->want_writable && done) {
			p->want_writable = false;
			wake = true;
		}
		pthread_mutex_unlock(&p->mu);
		if (!e.in_len)
			vlog_ratelimited(LOG_WARN, "virtio-console: port %u: receive chain without writable buffers",
					 id);
		virtq_push(vq, &e, (uint32_t)done);
		virtq_elem_release(&e);
		pushed = true;
		if (!e.in_len)
			break;		/* bounded: no loop on empty chains */
	}
	if (pushed)
		virtio_pci_notify_used(vc->vp, VIRTIO_CONSOLE_RXQ(id));
	if (wake && p->ops && p->ops->writable)
		p->ops->writable(p->opaque);
}

/* Take what the guest wrote to port @id (0: dropped) into the port's
 * host-bound buffer; stops, leaving the chain in the ring, when it is
 * full. */
static void process_tx(struct virtio_console *vc, unsigned id)
{
	struct vcon_port *p = vc->port[id];
	struct vcon_state *s = &vc->st[id];
	struct virtq *vq = virtio_pci_queue(vc->vp, VIRTIO_CONSOLE_TXQ(id));
	bool pushed = false, got = false;

	for (;;) {
		struct virtq_elem e;
		uint8_t tmp[4096];
		int r;

		virtq_disable_notify(vq);
		for (;;) {
			size_t room = SIZE_MAX;

			if (p) {
				pthread_mutex_lock(&p->mu);
				room = ring_room(&p->out);
				p->tx_blocked = room == 0;
				pthread_mutex_unlock(&p->mu);
				if (!room)
					break;
			}
			r = virtq_pop(vq, &e);
			if (r != 1)
				break;
			if (p && s->tx_off < e.out_len) {
				uint64_t left = e.out_len - s->tx_off;

				pthread_mutex_lock(&p->mu);
				while (left) {
					size_t want = left < sizeof(tmp) ? left : sizeof(tmp);
					size_t n;

					if (want > ring_room(&p->out))
						want = ring_room(&p->out);
					if (!want)
						break;
					n = iov_to_buf(e.iov, e.out_num, s->tx_off, tmp, want);
					ring_put(&p->out, tmp, n);
					s->tx_off += (uint32_t)n;
					left -= n;
					got = true;
					if (n < want)
						break;	/* cannot happen: out_len */
				}
				p->tx_blocked = left != 0;
				pthread_mutex_unlock(&p->mu);
				if (left) {
					virtq_unpop(vq, &e);
					virtq_elem_release(&e);
					goto out;
				}
			}
			s->tx_off = 0;
			virtq_push(vq, &e, 0);
			virtq_elem_release(&e);
			pushed = true;
		}
		if (r < 0 || (p && p->tx_blocked) || !virtq_enable_notify(vq))
			break;
	}
out:
	if (pushed)
		virtio_pci_notify_used(vc->vp, VIRTIO_CONSOLE_TXQ(id));
	if (got) {
		pthread_mutex_lock(&p->mu);
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->mu);
		if (p->ops && p->ops->readable)
			p->ops->readable(p->opaque);
	}
}

/* The guest's side of port @id opened or closed. */
static void set_open(struct virtio_console *vc, unsigned id, bool open)
{
	struct vcon_port *p = vc->port[id];

	if (vc->st[id].open == open)
		return;
	vc->st[id].open = open;
	pthread_mutex_lock(&p->mu);
	p->guest_open = open;
	p->gen++;
	if (!open) {
		/* The guest's driver drops data for a closed port. */
		p->in.len = p->in.head = 0;
		p->want_writable = false;
	}
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->mu);
	if (p->ops && p->ops->guest_open)
		p->ops->guest_open(p->opaque, open);
	if (open)
		flush_rx(vc, id);
}

static void handle_ctrl(struct virtio_console *vc, const uint8_t *b)
{
	uint32_t id;
	uint16_t event, value;

	memcpy(&id, b, 4);
	memcpy(&event, b + 4, 2);
	memcpy(&value, b + 6, 2);
	id = le32toh(id);
	event = le16toh(event);
	value = le16toh(value);

	if (event == VIRTIO_CONSOLE_DEVICE_READY) {
		if (!value) {
			vlog_ratelimited(LOG_WARN, "virtio-console: the guest's driver failed to initialise");
			return;
		}
		vc->device_ready = true;
		for (unsigned i = 1; i <= vc->nports; i++) {
			vc->st[i].added = true;
			queue_ctrl(vc, i, VIRTIO_CONSOLE_DEVICE_ADD, 0);
		}
		return;
	}
	if (id < 1 || id > vc->nports || !vc->st[id].added) {
		vlog_ratelimited(LOG_WARN, "virtio-console: control event %u for unknown port %u",
				 event, id);
		return;
	}
	switch (event) {
	case VIRTIO_CONSOLE_PORT_READY:
		if (!value) {
			vlog_ratelimited(LOG_WARN, "virtio-console: the guest could not add port %u (%s)",
					 id, vc->port[id]->name);
			return;
		}
		if (vc->st[id].ready)
			return;
		vc->st[id].ready = true;
		queue_ctrl(vc, id, VIRTIO_CONSOLE_PORT_NAME, 1);
		queue_ctrl(vc, id, VIRTIO_CONSOLE_PORT_OPEN, 1);
		return;
	case VIRTIO_CONSOLE_PORT_OPEN:
		if (!vc->st[id].ready) {
			vlog_ratelimited(LOG_WARN, "virtio-console: PORT_OPEN for port %u before PORT_READY",
					 id);
			return;
		}
		set_open(vc, id, value != 0);
		return;
	default:
		vlog_ratelimited(LOG_WARN, "virtio-console: unknown control event %u from the guest",
				 event);
		return;
	}
}

static void process_ctrl_tx(struct virtio_console *vc)
{
	struct virtq *vq = virtio_pci_queue(vc->vp, VIRTIO_CONSOLE_CTRL_TXQ);
	bool pushed = false;

	/* Bounded: each pop takes a ring entry the driver made available,
	 * and virtq_pop() breaks the queue on an index that runs ahead. */
	for (;;) {
		struct virtq_elem e;
		int r;

		virtq_disable_notify(vq);
		while ((r = virtq_pop(vq, &e)) == 1) {
			uint8_t b[VIRTIO_CONSOLE_CTRL_LEN];

			if (iov_to_buf(e.iov, e.out_num, 0, b, sizeof(b)) ==
			    sizeof(b))
				handle_ctrl(vc, b);
			else
				vlog_ratelimited(LOG_WARN, "virtio-console: control message of %llu bytes",
						 (unsigned long long)e.out_len);
			virtq_push(vq, &e, 0);
			virtq_elem_release(&e);
			pushed = true;
		}
		if (r < 0 || !virtq_enable_notify(vq))
			break;
	}
	if (pushed)
		virtio_pci_notify_used(vc->vp, VIRTIO_CONSOLE_CTRL_TXQ);
	flush_ctrl(vc);
}

static void queue_notify(void *opaque, unsigned q)
{
	struct virtio_console *vc = opaque;
	unsigned id;

	if (q == VIRTIO_CONSOLE_CTRL_RXQ) {
		flush_ctrl(vc);
		return;
	}
	if (q == VIRTIO_CONSOLE_CTRL_TXQ) {
		process_ctrl_tx(vc);
		return;
	}
	id = q < 2 ? 0 : q / 2 - 1;
	if (id > vc->nports)
		return;			/* the transport checks q already */
	if (q == VIRTIO_CONSOLE_TXQ(id))
		process_tx(vc, id);
	else
		flush_rx(vc, id);
}

static uint64_t config_read(void *opaque, unsigned offset, unsigned size)
{
	struct virtio_console *vc = opaque;
	uint8_t cfg[VIRTIO_CONSOLE_CFG_LEN] = { 0 };
	uint32_t max = htole32(vc->nports + 1);
	uint64_t v = 0;

	memcpy(cfg + VIRTIO_CONSOLE_CFG_MAX_NR_PORTS, &max, 4);
	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)cfg[offset + i] << (8 * i);
	return v;
}

/* Driver reset: nothing added, every port closed. */
static void vcon_reset(void *opaque)
{
	struct virtio_console *vc = opaque;

	vc->device_ready = false;
	vc->pend_head = vc->pend_len = 0;
	for (unsigned i = 1; i <= vc->nports; i++) {
		set_open(vc, i, false);
		vc->st[i] = (struct vcon_state){ 0 };
	}
}

static const struct virtio_pci_ops vcon_pci_ops = {
	.config_read = config_read,
	.config_write = NULL,		/* emerg_wr: EMERG_WRITE not offered */
	.queue_notify = queue_notify,
	.features_ok = NULL,
	.reset = vcon_reset,
};

struct virtio_console *virtio_console_new(const struct virtio_console_config *cfg,
					  char *err, size_t errlen)
{
	struct virtio_pci_config pc;
	struct virtio_console *vc;
	int r;

	if (!cfg->pci || !cfg->mem || !cfg->lock || cfg->nports < 1 ||
	    cfg->nports > VCON_MAX_PORTS) {
		snprintf(err, errlen, "virtio-console: incomplete configuration");
		return NULL;
	}
	for (unsigned i = 0; i < cfg->nports; i++) {
		if (!cfg->port[i]) {
			snprintf(err, errlen, "virtio-console: port %u missing", i + 1);
			return NULL;
		}
		for (unsigned j = 0; j < i; j++)
			if (!strcmp(cfg->port[i]->name, cfg->port[j]->name)) {
				snprintf(err, errlen, "virtio-console: two ports named '%s'",
					 cfg->port[i]->name);
				return NULL;
			}
		if (cfg->port[i]->dev) {
			snprintf(err, errlen, "virtio-console: port '%s' is attached to another device",
				 cfg->port[i]->name);
			return NULL;
		}
	}
	vc = calloc(1, sizeof(*vc));
	if (!vc) {
		snprintf(err, errlen, "virtio-console: out of memory");
		return NULL;
	}
	vc->lock = cfg->lock;
	vc->nports = cfg->nports;
	pc = (struct virtio_pci_config){
		.pci = cfg->pci, .devfn = cfg->devfn, .mem = cfg->mem,
		.device_id = 3,			/* §5.3.1 */
		.class_code = 0x078000,		/* communication, other */
		.features = F(VIRTIO_CONSOLE_F_MULTIPORT),
		.num_queues = 2u * (cfg->nports + 2),
		.queue_size = VIRTIO_CONSOLE_QUEUE_SIZE,
		.config_len = VIRTIO_CONSOLE_CFG_LEN,
		.ops = &vcon_pci_ops, .opaque = vc, .iofd = cfg->iofd,
	};
	vc->vp = virtio_pci_new(&pc, &r);
	if (!vc->vp) {
		snprintf(err, errlen, "virtio-console: cannot add PCI device %02x.%u: %s",
			 cfg->devfn >> 3, cfg->devfn & 7,
			 r == -EEXIST ? "slot in use" : strerror(-r));
		free(vc);
		return NULL;
	}
	for (unsigned i = 0; i < cfg->nports; i++) {
		struct vcon_port *p = cfg->port[i];

		vc->port[i + 1] = p;
		pthread_mutex_lock(&p->mu);
		p->dev = vc;
		p->id = i + 1;
		p->dev_lock = cfg->lock;
		p->guest_open = false;
		p->tx_blocked = false;
		pthread_mutex_unlock(&p->mu);
	}
	return vc;
}

void virtio_console_free(struct virtio_console *vc)
{
	if (!vc)
		return;
	for (unsigned i = 1; i <= vc->nports; i++) {
		struct vcon_port *p = vc->port[i];

		set_open(vc, i, false);
		pthread_mutex_lock(&p->mu);
		p->dev = NULL;
		p->tx_blocked = false;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->mu);
	}
	virtio_pci_free(vc->vp);
	free(vc);
}

struct virtio_pci *virtio_console_transport(struct virtio_console *vc)
{
	return vc->vp;
}

/* ---- the host side's calls ------------------------------------------------- */

/* Run @fn on the device @p is attached to, under the device lock. */
static void with_device(struct vcon_port *p,
			void (*fn)(struct virtio_console *, unsigned))
{
	pthread_mutex_t *dl;

	pthread_mutex_lock(&p->mu);
	dl = p->dev_lock;
	pthread_mutex_unlock(&p->mu);
	if (!dl)
		return;
	pthread_mutex_lock(dl);
	pthread_mutex_lock(&p->mu);
	struct virtio_console *vc = p->dev;
	unsigned id = p->id;
	pthread_mutex_unlock(&p->mu);
	if (vc)
		fn(vc, id);
	pthread_mutex_unlock(dl);
}

ssize_t vcon_port_write(struct vcon_port *p, const void *buf, size_t len)
{
	size_t n;

	pthread_mutex_lock(&p->mu);
	if (!p->guest_open) {
		pthread_mutex_unlock(&p->mu);
		return -EPIPE;
	}
	n = ring_put(&p->in, buf, len);
	if (n < len)
		p->want_writable = true;
	pthread_mutex_unlock(&p->mu);
	if (n)
		with_device(p, flush_rx);
	return (ssize_t)n;
}

size_t vcon_port_read(struct vcon_port *p, void *buf, size_t len)
{
	size_t n;
	bool kick;

	pthread_mutex_lock(&p->mu);
	n = ring_get(&p->out, buf, len);
	kick = p->tx_blocked && n;
	pthread_mutex_unlock(&p->mu);
	if (kick)
		with_device(p, process_tx);
	return n;
}

size_t vcon_port_pending(struct vcon_port *p)
{
	size_t n;

	pthread_mutex_lock(&p->mu);
	n = p->out.len;
	pthread_mutex_unlock(&p->mu);
	return n;
}

int vcon_port_wait(struct vcon_port *p, int timeout_ms)
{
	struct timespec dl;
	unsigned gen;
	int r;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += timeout_ms / 1000;
	dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&p->mu);
	gen = p->gen;
	while (!p->out.len && p->gen == gen)
		if (pthread_cond_timedwait(&p->cond, &p->mu, &dl) != 0)
			break;
	r = p->out.len != 0;
	pthread_mutex_unlock(&p->mu);
	return r;
}

bool vcon_port_guest_open(struct vcon_port *p)
{
	bool o;

	pthread_mutex_lock(&p->mu);
	o = p->guest_open;
	pthread_mutex_unlock(&p->mu);
	return o;
}

/* ---- the machine's device table ------------------------------------------ */

static void vcon_dev_reset(void *dev)
{
	struct virtio_console *vc = dev;

	virtio_pci_reset(vc->vp);
}

static void vcon_dev_free(void *dev)
{
	virtio_console_free(dev);
}

static GVariant *ring_bytes(const struct ring *r)
{
	uint8_t *tmp = g_malloc(r->len ? r->len : 1);
	GVariant *v;

	ring_peek(r, 0, tmp, r->len);
	v = g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, tmp, r->len, 1);
	g_free(tmp);
	return v;
}

static GVariant *vcon_dev_save(void *dev)
{
	struct virtio_console *vc = dev;
	GVariant *t = virtio_pci_save(vc->vp);
	GVariantBuilder ports, pend;

	if (!t) {
		vlog(LOG_ERROR, "virtio-console: buffers in flight: not saved");
		return NULL;
	}
	g_variant_builder_init(&ports, G_VARIANT_TYPE("a(sbbbuayay)"));
	for (unsigned i = 1; i <= vc->nports; i++) {
		struct vcon_port *p = vc->port[i];
		const struct vcon_state *s = &vc->st[i];

		pthread_mutex_lock(&p->mu);
		g_variant_builder_add(&ports, "(sbbbu@ay@ay)", p->name,
				      (gboolean)s->added, (gboolean)s->ready,
				      (gboolean)s->open, (guint32)s->tx_off,
				      ring_bytes(&p->in), ring_bytes(&p->out));
		pthread_mutex_unlock(&p->mu);
	}
	g_variant_builder_init(&pend, G_VARIANT_TYPE("a(uqq)"));
	for (unsigned i = 0; i < vc->pend_len; i++) {
		const struct ctrl_msg *m =
			&vc->pending[(vc->pend_head + i) % VCON_CTRL_PENDING_MAX];

		g_variant_builder_add(&pend, "(uqq)", m->id, m->event, m->value);
	}
	return g_variant_new("(@" VIRTIO_PCI_STATE_TYPE "ba(sbbbuayay)a(uqq))",
			     t, (gboolean)vc->device_ready, &ports, &pend);
}

static int vcon_dev_load(void *dev, uint32_t version, GVariant *state,
			 char *err, size_t errlen)
{
	struct virtio_console *vc = dev;
	GVariant *t, *ports, *pend;
	gboolean device_ready;
	int r;

	r = device_state_check("virtio-console", version, 1, state,
			       VIRTIO_CONSOLE_STATE_TYPE, err, errlen);
	if (r < 0)
		return r;
	g_variant_get(state, "(@" VIRTIO_PCI_STATE_TYPE "b@a(sbbbuayay)@a(uqq))",
		      &t, &device_ready, &ports, &pend);
	r = -EINVAL;
	if (g_variant_n_children(ports) != vc->nports) {
		snprintf(err, errlen, "virtio-console: saved with %zu ports, configured with %u",
			 (size_t)g_variant_n_children(ports), vc->nports);
		goto out;
	}
	for (unsigned i = 0; i < vc->nports; i++) {
		const char *name;
		gboolean added, ready, open;
		guint32 tx_off;
		GVariant *in, *outb;
		bool bad;

		g_variant_get_child(ports, i, "(&sbbbu@ay@ay)", &name, &added,
				    &ready, &open, &tx_off, &in, &outb);
		bad = true;
		if (strcmp(name, vc->port[i + 1]->name))
			snprintf(err, errlen, "virtio-console: port %u is '%s' in the state, '%s' here",
				 i + 1, name, vc->port[i + 1]->name);
		else if ((added && !device_ready) || (ready && !added) ||
			 (open && !ready))
			snprintf(err, errlen, "virtio-console: port %u: flags out of order",
				 i + 1);
		else if (g_variant_get_size(in) > VCON_PORT_BUF ||
			 g_variant_get_size(outb) > VCON_PORT_BUF)
			snprintf(err, errlen, "virtio-console: port %u: buffer over %u bytes",
				 i + 1, VCON_PORT_BUF);
		else if (g_variant_get_size(in) && !open)
			snprintf(err, errlen, "virtio-console: port %u: guest-bound bytes for a closed port",
				 i + 1);
		else
			bad = false;
		g_variant_unref(in);
		g_variant_unref(outb);
		if (bad)
			goto out;
	}
	if (g_variant_n_children(pend) > VCON_CTRL_PENDING_MAX) {
		snprintf(err, errlen, "virtio-console: %zu control messages pending, at most %d",
			 (size_t)g_variant_n_children(pend), VCON_CTRL_PENDING_MAX);
		goto out;
	}
	for (gsize i = 0; i < g_variant_n_children(pend); i++) {
		guint32 id;
		guint16 ev, val;

		g_variant_get_child(pend, i, "(uqq)", &id, &ev, &val);
		if (id < 1 || id > vc->nports || val > 1 ||
		    (ev != VIRTIO_CONSOLE_DEVICE_ADD &&
		     ev != VIRTIO_CONSOLE_PORT_NAME &&
		     ev != VIRTIO_CONSOLE_PORT_OPEN)) {
			snprintf(err, errlen, "virtio-console: pending control message %u/%u/%u out of range",
				 id, ev, val);
			goto out;
		}
	}
	r = virtio_pci_load(vc->vp, t, "virtio-console", err, errlen);
	if (r < 0)
		goto out;

	vc->device_ready = device_ready;
	vc->pend_head = 0;
	vc->pend_len = (unsigned)g_variant_n_children(pend);
	for (unsigned i = 0; i < vc->pend_len; i++) {
		guint32 id;
		guint16 ev, val;

		g_variant_get_child(pend, i, "(uqq)", &id, &ev, &val);
		vc->pending[i] = (struct ctrl_msg){ id, ev, val };
	}
	for (unsigned i = 1; i <= vc->nports; i++) {
		struct vcon_port *p = vc->port[i];
		gboolean added, ready, open;
		guint32 tx_off;
		GVariant *in, *outb;
		bool was_open = vc->st[i].open, readable;

		g_variant_get_child(ports, i - 1, "(&sbbbu@ay@ay)", NULL, &added,
				    &ready, &open, &tx_off, &in, &outb);
		vc->st[i] = (struct vcon_state){ added, ready, open, tx_off };
		pthread_mutex_lock(&p->mu);
		p->in.head = p->in.len = 0;
		p->out.head = p->out.len = 0;
		ring_put(&p->in, g_variant_get_data(in), g_variant_get_size(in));
		ring_put(&p->out, g_variant_get_data(outb),
			 g_variant_get_size(outb));
		p->guest_open = open;
		/* The next read goes on with the transmit queue. */
		p->tx_blocked = p->out.len != 0 || tx_off;
		readable = p->out.len != 0;
		p->gen++;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->mu);
		g_variant_unref(in);
		g_variant_unref(outb);
		if (p->ops && p->ops->guest_open && (open || was_open))
			p->ops->guest_open(p->opaque, open);
		if (readable && p->ops && p->ops->readable)
			p->ops->readable(p->opaque);
	}
out:
	g_variant_unref(t);
	g_variant_unref(ports);
	g_variant_unref(pend);
	return r;
}

const struct device_ops virtio_console_device_ops = {
	.name = "virtio-console",
	.reset = vcon_dev_reset,
	.save = vcon_dev_save,
	.load = vcon_dev_load,
	.state_version = 1,
	.free = vcon_dev_free,
};
