/* SPDX-License-Identifier: MIT */
/*
 * The virtio block device, virtio 1.2 §5.2.  See virtio_blk.h.
 *
 * §2.6.4 (message framing): the header, data and status byte may be split
 * over descriptors in any way, so they are located by byte offset in the
 * chain, never by descriptor: the header is the first 16 device-readable
 * bytes, the status the last device-writable byte.
 */
#include "virtio_blk.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "../block/block.h"
#include "../log.h"
#include "virtio_pci.h"

#define SECTOR		512u
#define MAX_QUEUES	16

struct virtio_blk {
	struct virtio_pci *vp;
	pthread_mutex_t *lock;
	struct blk *blk;
	uint64_t capacity;		/* sectors */
	bool readonly;
	unsigned num_queues;
	char serial[VIRTIO_BLK_ID_BYTES];	/* NUL padded */
	uint8_t config[VIRTIO_BLK_CFG_LEN];	/* little-endian */
};

struct vblk_req {
	struct virtio_blk *vb;
	unsigned q;
	struct virtq_elem elem;
	uint8_t *status;		/* HVA of the status byte */
	uint32_t written;		/* used len on success */
	struct iovec *data;		/* the data part of elem.iov */
	struct blk_req breq;
};

struct blk_req_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct blk_dwz_seg {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void req_free(struct vblk_req *req)
{
	virtq_elem_release(&req->elem);
	free(req->data);
	free(req);
}

/* Finish @req now (device lock held): status, used ring, interrupt. */
static void req_finish(struct vblk_req *req, uint8_t status)
{
	struct virtio_blk *vb = req->vb;
	struct virtq *vq = virtio_pci_queue(vb->vp, req->q);

	*req->status = status;
	virtq_push(vq, &req->elem, status == VIRTIO_BLK_S_OK ? req->written : 1);
	virtio_pci_notify_used(vb->vp, req->q);
	req_free(req);
}

/* Worker thread: the block layer is done with @breq. */
static void req_complete(struct blk_req *breq, int ret)
{
	struct vblk_req *req = breq->opaque;
	struct virtio_blk *vb = req->vb;

	if (ret < 0)
		vlog_ratelimited(LOG_WARN, "virtio-blk: %s: request failed: %s",
				 blk_path(vb->blk), strerror(-ret));
	pthread_mutex_lock(vb->lock);
	if (virtio_pci_req_end(vb->vp))
		req_finish(req, ret == 0 ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR);
	else
		req_free(req);		/* a reset dropped it */
	pthread_mutex_unlock(vb->lock);
}

static bool range_ok(const struct virtio_blk *vb, uint64_t sector,
		     uint64_t nsectors)
{
	return sector <= vb->capacity && nsectors <= vb->capacity - sector;
}

/* Point req->data at bytes [@off, @off + @len) of the chain. */
static int set_data(struct vblk_req *req, size_t off, size_t len)
{
	unsigned n = req->elem.out_num + req->elem.in_num;
	int cnt;

	req->data = calloc(n ? n : 1, sizeof(*req->data));
	if (!req->data)
		return -ENOMEM;
	cnt = iov_slice(req->elem.iov, n, off, len, req->data, n);
	if (cnt < 0)
		return -EINVAL;
	req->breq.iov = req->data;
	req->breq.iovcnt = cnt;
	return 0;
}

static uint8_t prepare_rw(struct vblk_req *req, const struct blk_req_hdr *h,
			  bool write)
{
	struct virtio_blk *vb = req->vb;
	const struct virtq_elem *e = &req->elem;
	/* READ: the writable bytes before the status; WRITE: the readable
	 * bytes after the header. */
	uint64_t len = write ? e->out_len - sizeof(*h) : e->in_len - 1;
	size_t off = write ? sizeof(*h) : e->out_len;

	if (write && vb->readonly)
		return VIRTIO_BLK_S_IOERR;	/* §5.2.6.2: and write nothing */
	if (len % SECTOR || !range_ok(vb, h->sector, len / SECTOR)) {
		vlog_ratelimited(LOG_WARN, "virtio-blk: %s of %llu bytes at sector %llu is outside the %llu-sector disk or not whole sectors",
				 write ? "write" : "read",
				 (unsigned long long)len,
				 (unsigned long long)h->sector,
				 (unsigned long long)vb->capacity);
		return VIRTIO_BLK_S_IOERR;
	}
	if (set_data(req, off, len) < 0)
		return VIRTIO_BLK_S_IOERR;
	req->breq.op = write ? BLK_OP_WRITE : BLK_OP_READ;
	req->breq.offset = h->sector * SECTOR;
	req->written = write ? 1 : (uint32_t)e->in_len;
	return VIRTIO_BLK_S_OK;
}

static uint8_t prepare_dwz(struct vblk_req *req, bool zeroes)
{
	struct virtio_blk *vb = req->vb;
	uint64_t feature = 1ull << (zeroes ? VIRTIO_BLK_F_WRITE_ZEROES
					   : VIRTIO_BLK_F_DISCARD);
	struct blk_dwz_seg seg;
	uint32_t flags;

	if (!(virtio_pci_features(vb->vp) & feature))
		return VIRTIO_BLK_S_UNSUPP;
	/* One segment (max_*_seg = 1), right after the header. */
	if (req->elem.out_len != sizeof(struct blk_req_hdr) + sizeof(seg))
		return VIRTIO_BLK_S_IOERR;
	iov_to_buf(req->elem.iov, req->elem.out_num,
		   sizeof(struct blk_req_hdr), &seg, sizeof(seg));
	seg.sector = le64toh(seg.sector);
	seg.num_sectors = le32toh(seg.num_sectors);
	flags = le32toh(seg.flags);
	/* §5.2.6.2: unknown flags, or unmap on a discard, are UNSUPP. */
	if ((flags & ~VIRTIO_BLK_DWZ_F_UNMAP) ||
	    (!zeroes && (flags & VIRTIO_BLK_DWZ_F_UNMAP)))
		return VIRTIO_BLK_S_UNSUPP;
	if (seg.num_sectors > VIRTIO_BLK_MAX_DWZ_SECTORS ||
	    !range_ok(vb, seg.sector, seg.num_sectors))
		return VIRTIO_BLK_S_IOERR;
	req->breq.op = zeroes ? BLK_OP_WRITE_ZEROES : BLK_OP_DISCARD;
	req->breq.offset = seg.sector * SECTOR;
	req->breq.len = (uint64_t)seg.num_sectors * SECTOR;
	req->breq.may_unmap = flags & VIRTIO_BLK_DWZ_F_UNMAP;
	req->written = 1;
	return VIRTIO_BLK_S_OK;
}

/* GET_ID: answered at once, no block I/O. */
static uint8_t do_get_id(struct vblk_req *req)
{
	size_t room = req->elem.in_len - 1;
	size_t n = room < VIRTIO_BLK_ID_BYTES ? room : VIRTIO_BLK_ID_BYTES;

	iov_from_buf(req->elem.iov + req->elem.out_num, req->elem.in_num, 0,
		     req->vb->serial, n);
	req->written = (uint32_t)n + 1;
	return VIRTIO_BLK_S_OK;
}

/* Take one popped chain: answer it now or hand it to the block layer. */
static void handle_request(struct virtio_blk *vb, unsigned q,
			   struct vblk_req *req)
{
	struct virtq_elem *e = &req->elem;
	struct blk_req_hdr h;
	const struct iovec *last;
	uint8_t status;
	bool async = false;

	if (e->in_len < 1) {
		/* Nowhere to put a status: the driver broke the protocol. */
		vlog_ratelimited(LOG_WARN, "virtio-blk: request without a status byte");
		virtq_set_broken(virtio_pci_queue(vb->vp, q));
		req_free(req);
		return;
	}
	last = &e->iov[e->out_num + e->in_num - 1];
	req->status = (uint8_t *)last->iov_base + last->iov_len - 1;
	req->breq.complete = req_complete;
	req->breq.opaque = req;

	if (e->out_len < sizeof(h)) {
		req_finish(req, VIRTIO_BLK_S_IOERR);
		return;
	}
	iov_to_buf(e->iov, e->out_num, 0, &h, sizeof(h));
	h.type = le32toh(h.type);
	h.sector = le64toh(h.sector);

	switch (h.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		status = prepare_rw(req, &h, h.type == VIRTIO_BLK_T_OUT);
		async = status == VIRTIO_BLK_S_OK;
		break;
	case VIRTIO_BLK_T_FLUSH:
		req->breq.op = BLK_OP_FLUSH;
		req->written = 1;
		status = VIRTIO_BLK_S_OK;
		async = true;
		break;
	case VIRTIO_BLK_T_GET_ID:
		status = do_get_id(req);
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		status = prepare_dwz(req, h.type == VIRTIO_BLK_T_WRITE_ZEROES);
		async = status == VIRTIO_BLK_S_OK;
		break;
	default:
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	if (async) {
		int r;

		virtio_pci_req_start(vb->vp);
		r = blk_submit(vb->blk, &req->breq);
		if (r == 0)
			return;
		virtio_pci_req_end(vb->vp);
		status = VIRTIO_BLK_S_IOERR;
	}
	req_finish(req, status);
}

/* vCPU or I/O thread, device lock held: the driver kicked queue @q. */
static void queue_notify(void *opaque, unsigned q)
{
	struct virtio_blk *vb = opaque;
	struct virtq *vq = virtio_pci_queue(vb->vp, q);

	/* Bounded: a queue holds at most size requests in flight, and
	 * virtq_pop() breaks the queue rather than exceed that. */
	for (;;) {
		int r;

		virtq_disable_notify(vq);
		for (;;) {
			struct vblk_req *req = calloc(1, sizeof(*req));

			if (!req)
				return;
			req->vb = vb;
			req->q = q;
			r = virtq_pop(vq, &req->elem);
			if (r != 1) {
				free(req);
				break;
			}
			handle_request(vb, q, req);
		}
		if (r < 0 || !virtq_enable_notify(vq))
			return;
	}
}

static uint64_t config_read(void *opaque, unsigned offset, unsigned size)
{
	struct virtio_blk *vb = opaque;
	uint64_t v = 0;

	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)vb->config[offset + i] << (8 * i);
	return v;
}

static const struct virtio_pci_ops vblk_ops = {
	.config_read = config_read,
	.config_write = NULL,		/* no writable fields (no CONFIG_WCE) */
	.queue_notify = queue_notify,
	.features_ok = NULL,		/* every offered combination works */
	.reset = NULL,			/* no state beyond the queues */
};

static uint64_t build_config(struct virtio_blk *vb)
{
	uint8_t *c = vb->config;
	uint64_t f = (1ull << VIRTIO_BLK_F_SIZE_MAX) |
		     (1ull << VIRTIO_BLK_F_SEG_MAX) |
		     (1ull << VIRTIO_BLK_F_BLK_SIZE) |
		     (1ull << VIRTIO_BLK_F_FLUSH);

	memset(c, 0, sizeof(vb->config));
	put32(c + VIRTIO_BLK_CFG_CAPACITY, (uint32_t)vb->capacity);
	put32(c + VIRTIO_BLK_CFG_CAPACITY + 4, (uint32_t)(vb->capacity >> 32));
	put32(c + VIRTIO_BLK_CFG_SIZE_MAX, VIRTIO_BLK_SIZE_MAX);
	put32(c + VIRTIO_BLK_CFG_SEG_MAX, VIRTIO_BLK_SEG_MAX);
	put32(c + VIRTIO_BLK_CFG_BLK_SIZE, SECTOR);
	if (vb->num_queues > 1) {
		f |= 1ull << VIRTIO_BLK_F_MQ;
		put16(c + VIRTIO_BLK_CFG_NUM_QUEUES, (uint16_t)vb->num_queues);
	}
	if (vb->readonly) {
		f |= 1ull << VIRTIO_BLK_F_RO;
		return f;
	}
	f |= (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
	put32(c + VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS, VIRTIO_BLK_MAX_DWZ_SECTORS);
	put32(c + VIRTIO_BLK_CFG_MAX_DISCARD_SEG, 1);
	put32(c + VIRTIO_BLK_CFG_DISCARD_ALIGN, VIRTIO_BLK_DISCARD_ALIGN);
	put32(c + VIRTIO_BLK_CFG_MAX_WZ_SECTORS, VIRTIO_BLK_MAX_DWZ_SECTORS);
	put32(c + VIRTIO_BLK_CFG_MAX_WZ_SEG, 1);
	c[VIRTIO_BLK_CFG_WZ_MAY_UNMAP] = 1;
	return f;
}

struct virtio_blk *virtio_blk_new(const struct virtio_blk_config *cfg,
				  char *err, size_t errlen)
{
	struct virtio_pci_config pc;
	struct virtio_blk *vb;
	uint64_t len;
	int r;

	if (!cfg->pci || !cfg->mem || !cfg->lock || !cfg->blk) {
		snprintf(err, errlen, "virtio-blk: incomplete configuration");
		return NULL;
	}
	len = blk_length(cfg->blk);
	if (len % SECTOR) {
		snprintf(err, errlen, "virtio-blk: '%s' is %llu bytes, not a whole number of 512-byte sectors",
			 blk_path(cfg->blk), (unsigned long long)len);
		return NULL;
	}
	if (cfg->serial && strlen(cfg->serial) > VIRTIO_BLK_ID_BYTES) {
		snprintf(err, errlen, "virtio-blk: serial '%s' is longer than %d bytes",
			 cfg->serial, VIRTIO_BLK_ID_BYTES);
		return NULL;
	}
	if (cfg->num_queues > MAX_QUEUES) {
		snprintf(err, errlen, "virtio-blk: %u queues requested, at most %d",
			 cfg->num_queues, MAX_QUEUES);
		return NULL;
	}
	vb = calloc(1, sizeof(*vb));
	if (!vb) {
		snprintf(err, errlen, "virtio-blk: out of memory");
		return NULL;
	}
	vb->lock = cfg->lock;
	vb->blk = cfg->blk;
	vb->capacity = len / SECTOR;
	vb->readonly = blk_is_readonly(cfg->blk);
	vb->num_queues = cfg->num_queues ? cfg->num_queues : 1;
	if (cfg->serial)
		memcpy(vb->serial, cfg->serial, strlen(cfg->serial));

	pc = (struct virtio_pci_config){
		.pci = cfg->pci, .devfn = cfg->devfn, .mem = cfg->mem,
		.device_id = 2,			/* §5.2.1 */
		.class_code = 0x018000,		/* mass storage, other */
		.features = build_config(vb),
		.num_queues = vb->num_queues,
		.queue_size = VIRTIO_BLK_QUEUE_SIZE,
		.config_len = VIRTIO_BLK_CFG_LEN,
		.ops = &vblk_ops, .opaque = vb, .iofd = cfg->iofd,
	};
	vb->vp = virtio_pci_new(&pc, &r);
	if (!vb->vp) {
		snprintf(err, errlen, "virtio-blk: cannot add PCI device %02x.%u: %s",
			 cfg->devfn >> 3, cfg->devfn & 7,
			 r == -EEXIST ? "slot in use" : strerror(-r));
		free(vb);
		return NULL;
	}
	return vb;
}

void virtio_blk_drain(struct virtio_blk *vb)
{
	if (vb)
		blk_drain(vb->blk);
}

void virtio_blk_free(struct virtio_blk *vb)
{
	if (!vb)
		return;
	virtio_pci_free(vb->vp);
	free(vb);
}

struct virtio_pci *virtio_blk_transport(struct virtio_blk *vb)
{
	return vb->vp;
}

/* ---- the machine's device table ---------------------------------------- */

/* In-flight requests complete under the device lock: wait for them
 * before the machine takes it to free the device. */
static void virtio_blk_dev_quiesce(void *dev)
{
	virtio_blk_drain(dev);
}

static void virtio_blk_dev_free(void *dev)
{
	virtio_blk_free(dev);
}

/* The transport and the disk's size: the rest (config space, features,
 * serial) follows from the image and the machine's configuration.  There
 * is no runtime device state of its own (no writeback toggle: no
 * VIRTIO_BLK_F_CONFIG_WCE).  NULL while requests are in flight. */
static GVariant *virtio_blk_dev_save(void *dev)
{
	struct virtio_blk *vb = dev;
	GVariant *t = virtio_pci_save(vb->vp);

	if (!t) {
		vlog(LOG_ERROR, "virtio-blk: %s: requests in flight: not saved",
		     blk_path(vb->blk));
		return NULL;
	}
	return g_variant_new("(@" VIRTIO_PCI_STATE_TYPE "t)", t,
			     (guint64)vb->capacity);
}

static int virtio_blk_dev_load(void *dev, uint32_t version, GVariant *state,
			       char *err, size_t errlen)
{
	struct virtio_blk *vb = dev;
	GVariant *t;
	guint64 capacity;
	int r;

	r = device_state_check("virtio-blk", version, 1, state, VIRTIO_BLK_STATE_TYPE,
			       err, errlen);
	if (r < 0)
		return r;
	g_variant_get(state, "(@" VIRTIO_PCI_STATE_TYPE "t)", &t, &capacity);
	if (capacity != vb->capacity) {
		g_variant_unref(t);
		snprintf(err, errlen, "virtio-blk: saved with a disk of %llu sectors, '%s' has %llu",
			 (unsigned long long)capacity, blk_path(vb->blk),
			 (unsigned long long)vb->capacity);
		return -EINVAL;
	}
	r = virtio_pci_load(vb->vp, t, "virtio-blk", err, errlen);
	g_variant_unref(t);
	return r;
}

const struct device_ops virtio_blk_device_ops = {
	.name = "virtio-blk",
	.quiesce = virtio_blk_dev_quiesce,
	.save = virtio_blk_dev_save,
	.load = virtio_blk_dev_load,
	.state_version = 1,
	.free = virtio_blk_dev_free,
};
