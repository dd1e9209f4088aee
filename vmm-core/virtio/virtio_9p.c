/* SPDX-License-Identifier: MIT */
/*
 * The virtio 9P transport, virtio 1.2 §5.19.  See virtio_9p.h.
 */
#include "virtio_9p.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "../iov.h"
#include "../log.h"
#include "../sandbox/sandbox.h"
#include "../share/p9_server.h"
#include "virtio_pci.h"

struct v9p_req {
	struct virtq_elem elem;
	struct v9p_req *next;
};

struct virtio_9p {
	struct virtio_pci *vp;
	pthread_mutex_t *lock;		/* the device lock */
	char tag[VIRTIO_9P_TAG_MAX + 1];
	bool readonly;
	uint8_t config[2 + VIRTIO_9P_TAG_MAX];
	unsigned config_len;

	/* The server: only the worker uses it between requests' start and
	 * end; reset, save and load (nothing in flight) take srv_lock too. */
	struct p9_server *srv;
	pthread_mutex_t srv_lock;
	uint8_t *reqbuf, *respbuf;	/* max_msize each, the worker's */
	uint32_t bufsize;

	/* Requests handed to the worker: a FIFO under wlock (taken after
	 * the device lock, never before it). */
	pthread_mutex_t wlock;
	pthread_cond_t wcond;		/* work, or stop */
	pthread_cond_t idle;		/* queue empty and worker idle */
	struct v9p_req *head, *tail;
	bool busy, stop;
	pthread_t worker;
	bool worker_started;
};

bool virtio_9p_tag_ok(const char *tag)
{
	size_t n = tag ? strlen(tag) : 0;

	if (!n || n > VIRTIO_9P_TAG_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = tag[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

/* ---- the worker ---------------------------------------------------------- */

/* Serve one chain (no lock held but srv_lock): returns the bytes written
 * into its device-writable part. */
static uint32_t serve(struct virtio_9p *v, const struct virtq_elem *e)
{
	size_t n, room, out;

	n = e->out_len < v->bufsize ? (size_t)e->out_len : v->bufsize;
	n = iov_to_buf(e->iov, e->out_num, 0, v->reqbuf, n);
	room = e->in_len < v->bufsize ? (size_t)e->in_len : v->bufsize;
	pthread_mutex_lock(&v->srv_lock);
	out = p9_server_handle(v->srv, v->reqbuf, n, v->respbuf, room);
	pthread_mutex_unlock(&v->srv_lock);
	if (!out)
		return 0;
	return (uint32_t)iov_from_buf(e->iov + e->out_num, e->in_num, 0,
				      v->respbuf, out);
}

static void *worker_main(void *opaque)
{
	struct virtio_9p *v = opaque;
	char name[16];

	snprintf(name, sizeof(name), "9p-%.11s", v->tag);
	sandbox_thread_enter(SANDBOX_THREAD_SHARE, name);
	pthread_mutex_lock(&v->wlock);
	for (;;) {
		struct v9p_req *r;
		uint32_t written;

		while (!v->head && !v->stop)
			pthread_cond_wait(&v->wcond, &v->wlock);
		if (!v->head)
			break;		/* stop, and nothing left */
		r = v->head;
		v->head = r->next;
		if (!v->head)
			v->tail = NULL;
		v->busy = true;
		pthread_mutex_unlock(&v->wlock);

		written = serve(v, &r->elem);
		pthread_mutex_lock(v->lock);
		if (virtio_pci_req_end(v->vp)) {
			virtq_push(virtio_pci_queue(v->vp, 0), &r->elem, written);
			virtio_pci_notify_used(v->vp, 0);
		}
		pthread_mutex_unlock(v->lock);
		virtq_elem_release(&r->elem);
		free(r);

		pthread_mutex_lock(&v->wlock);
		v->busy = false;
		if (!v->head)
			pthread_cond_broadcast(&v->idle);
	}
	pthread_mutex_unlock(&v->wlock);
	return NULL;
}

/* ---- virtio ops (device lock held) -------------------------------------- */

static void queue_notify(void *opaque, unsigned q)
{
	struct virtio_9p *v = opaque;
	struct virtq *vq = virtio_pci_queue(v->vp, q);

	/* Bounded: at most the queue's size in flight (virtq_pop breaks
	 * the queue rather than exceed it). */
	for (;;) {
		int r;

		virtq_disable_notify(vq);
		for (;;) {
			struct v9p_req *req = calloc(1, sizeof(*req));

			if (!req)
				return;
			r = virtq_pop(vq, &req->elem);
			if (r != 1) {
				free(req);
				break;
			}
			if (req->elem.in_len < 1) {
				/* Nowhere to put a reply. */
				vlog_ratelimited(LOG_WARN, "virtio-9p %s: request without device-writable room",
						 v->tag);
				virtq_set_broken(vq);
				virtq_elem_release(&req->elem);
				free(req);
				return;
			}
			virtio_pci_req_start(v->vp);
			pthread_mutex_lock(&v->wlock);
			if (v->tail)
				v->tail->next = req;
			else
				v->head = req;
			v->tail = req;
			pthread_cond_signal(&v->wcond);
			pthread_mutex_unlock(&v->wlock);
		}
		if (r < 0 || !virtq_enable_notify(vq))
			return;
	}
}

static uint64_t config_read(void *opaque, unsigned offset, unsigned size)
{
	struct virtio_9p *v = opaque;
	uint64_t val = 0;

	for (unsigned i = 0; i < size; i++)
		if (offset + i < v->config_len)
			val |= (uint64_t)v->config[offset + i] << (8 * i);
	return val;
}

/* A driver reset, nothing in flight: a new session, no fids. */
static void dev_reset(void *opaque)
{
	struct virtio_9p *v = opaque;

	pthread_mutex_lock(&v->srv_lock);
	p9_server_reset(v->srv);
	pthread_mutex_unlock(&v->srv_lock);
}

static const struct virtio_pci_ops v9p_ops = {
	.config_read = config_read,
	.config_write = NULL,		/* the tag is read-only */
	.queue_notify = queue_notify,
	.features_ok = NULL,
	.reset = dev_reset,
};

/* ---- life cycle ----------------------------------------------------------- */

static void destroy(struct virtio_9p *v)
{
	if (v->worker_started) {
		pthread_mutex_lock(&v->wlock);
		v->stop = true;
		pthread_cond_signal(&v->wcond);
		pthread_mutex_unlock(&v->wlock);
		pthread_join(v->worker, NULL);
	}
	p9_server_free(v->srv);
	free(v->reqbuf);
	free(v->respbuf);
	pthread_mutex_destroy(&v->srv_lock);
	pthread_mutex_destroy(&v->wlock);
	pthread_cond_destroy(&v->wcond);
	pthread_cond_destroy(&v->idle);
	free(v);
}

struct virtio_9p *virtio_9p_new(const struct virtio_9p_config *cfg, char *err,
				size_t errlen)
{
	struct p9_server_config sc = {
		.root = cfg->path, .readonly = cfg->readonly,
		.max_fids = cfg->max_fids, .max_msize = cfg->max_msize,
	};
	struct virtio_pci_config pc;
	struct virtio_9p *v;
	size_t taglen;
	int r;

	if (!cfg->pci || !cfg->mem || !cfg->lock || !cfg->path) {
		snprintf(err, errlen, "virtio-9p: incomplete configuration");
		return NULL;
	}
	if (!virtio_9p_tag_ok(cfg->tag)) {
		snprintf(err, errlen, "virtio-9p: mount tag '%s' is not 1-%d characters of A-Z a-z 0-9 _ . -",
			 cfg->tag ? cfg->tag : "", VIRTIO_9P_TAG_MAX);
		return NULL;
	}
	v = calloc(1, sizeof(*v));
	if (!v) {
		snprintf(err, errlen, "virtio-9p: out of memory");
		return NULL;
	}
	pthread_mutex_init(&v->srv_lock, NULL);
	pthread_mutex_init(&v->wlock, NULL);
	pthread_cond_init(&v->wcond, NULL);
	pthread_cond_init(&v->idle, NULL);
	v->lock = cfg->lock;
	v->readonly = cfg->readonly;
	taglen = strlen(cfg->tag);
	memcpy(v->tag, cfg->tag, taglen + 1);
	v->config[0] = (uint8_t)taglen;
	v->config[1] = 0;
	memcpy(v->config + 2, cfg->tag, taglen);
	v->config_len = (unsigned)(2 + taglen);
	v->srv = p9_server_new(&sc, err, errlen);
	if (!v->srv) {
		destroy(v);
		return NULL;
	}
	v->bufsize = p9_server_max_msize(v->srv);
	v->reqbuf = malloc(v->bufsize);
	v->respbuf = malloc(v->bufsize);
	if (!v->reqbuf || !v->respbuf) {
		snprintf(err, errlen, "virtio-9p: out of memory");
		destroy(v);
		return NULL;
	}
	r = pthread_create(&v->worker, NULL, worker_main, v);
	if (r) {
		snprintf(err, errlen, "virtio-9p: cannot start its worker: %s",
			 strerror(r));
		destroy(v);
		return NULL;
	}
	v->worker_started = true;
	pc = (struct virtio_pci_config){
		.pci = cfg->pci, .devfn = cfg->devfn, .mem = cfg->mem,
		.device_id = VIRTIO_9P_DEVICE_ID,
		.class_code = 0x018000,		/* mass storage, other */
		.features = 1ull << VIRTIO_9P_MOUNT_TAG,
		.num_queues = 1,
		.queue_size = VIRTIO_9P_QUEUE_SIZE,
		.config_len = v->config_len,
		.ops = &v9p_ops, .opaque = v, .iofd = cfg->iofd,
	};
	v->vp = virtio_pci_new(&pc, &r);
	if (!v->vp) {
		snprintf(err, errlen, "virtio-9p: cannot add PCI device %02x.%u: %s",
			 cfg->devfn >> 3, cfg->devfn & 7,
			 r == -EEXIST ? "slot in use" : strerror(-r));
		destroy(v);
		return NULL;
	}
	return v;
}

void virtio_9p_drain(struct virtio_9p *v)
{
	if (!v)
		return;
	pthread_mutex_lock(&v->wlock);
	while (v->head || v->busy)
		pthread_cond_wait(&v->idle, &v->wlock);
	pthread_mutex_unlock(&v->wlock);
}

void virtio_9p_free(struct virtio_9p *v)
{
	if (!v)
		return;
	virtio_pci_free(v->vp);
	v->vp = NULL;
	destroy(v);
}

struct virtio_pci *virtio_9p_transport(struct virtio_9p *v)
{
	return v->vp;
}

unsigned virtio_9p_nfids(struct virtio_9p *v)
{
	unsigned n;

	pthread_mutex_lock(&v->srv_lock);
	n = p9_server_nfids(v->srv);
	pthread_mutex_unlock(&v->srv_lock);
	return n;
}

/* ---- the machine's device table ---------------------------------------- */

static void dev_quiesce(void *dev)
{
	virtio_9p_drain(dev);
}

static void dev_free(void *dev)
{
	virtio_9p_free(dev);
}

/*
 * The fids are saved by their paths in the share and opened again at
 * load, confined as walks are (p9_server.h): a snapshot of a guest with
 * the share mounted restores with the mount working, which is what users
 * of snapshots expect (QEMU instead refuses to migrate while mounted).
 */
static GVariant *dev_save(void *dev)
{
	struct virtio_9p *v = dev;
	GVariant *t = virtio_pci_save(v->vp), *s;

	if (!t) {
		vlog(LOG_ERROR, "virtio-9p %s: requests in flight: not saved", v->tag);
		return NULL;
	}
	pthread_mutex_lock(&v->srv_lock);
	s = p9_server_save(v->srv);
	pthread_mutex_unlock(&v->srv_lock);
	return g_variant_new("(@" VIRTIO_PCI_STATE_TYPE "sb@" P9_SERVER_STATE_TYPE ")",
			     t, v->tag, (gboolean)v->readonly, s);
}

static int dev_load(void *dev, uint32_t version, GVariant *state, char *err,
		    size_t errlen)
{
	struct virtio_9p *v = dev;
	GVariant *t, *s;
	const char *tag;
	gboolean ro;
	int r;

	r = device_state_check("virtio-9p", version, 1, state, VIRTIO_9P_STATE_TYPE,
			       err, errlen);
	if (r < 0)
		return r;
	g_variant_get(state, "(@" VIRTIO_PCI_STATE_TYPE "&sb@" P9_SERVER_STATE_TYPE ")",
		      &t, &tag, &ro, &s);
	if (strcmp(tag, v->tag) || (bool)ro != v->readonly) {
		snprintf(err, errlen, "virtio-9p: saved for share '%s'%s, this one is '%s'%s",
			 tag, ro ? " (readonly)" : "", v->tag,
			 v->readonly ? " (readonly)" : "");
		r = -EINVAL;
		goto out;
	}
	/* Each checks everything before changing anything; the server goes
	 * first and is put back if the transport then refuses. */
	pthread_mutex_lock(&v->srv_lock);
	{
		GVariant *before = g_variant_ref_sink(p9_server_save(v->srv));

		r = p9_server_load(v->srv, s, err, errlen);
		if (r == 0) {
			r = virtio_pci_load(v->vp, t, "virtio-9p", err, errlen);
			if (r < 0)
				p9_server_load(v->srv, before, NULL, 0);
		}
		g_variant_unref(before);
	}
	pthread_mutex_unlock(&v->srv_lock);
out:
	g_variant_unref(t);
	g_variant_unref(s);
	return r;
}

const struct device_ops virtio_9p_device_ops = {
	.name = "virtio-9p",
	.quiesce = dev_quiesce,
	.save = dev_save,
	.load = dev_load,
	.state_version = 1,
	.free = dev_free,
};
