/* SPDX-License-Identifier: MIT */
/*
 * The host side of the SPICE agent protocol (spice-protocol's
 * vd_agent.h).  See vdagent.h.
 */
#include "vdagent.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../log.h"

struct msg_asm {
	uint8_t hdr[VDAGENT_MSG_HDR];
	unsigned hdr_len;
	uint32_t type, size, pos;
	uint8_t *data;
};

struct vdagent {
	const struct vdagent_ops *ops;
	void *opaque;
	bool broken, connected;
	uint32_t caps[VDAGENT_CAP_WORDS];
	/* Chunk framing. */
	uint8_t chdr[VDAGENT_CHUNK_HDR];
	unsigned chdr_len;
	bool in_chunk;
	uint32_t chunk_port, chunk_left;
	struct msg_asm msg[VDP_END_PORT];
};

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

struct vdagent *vdagent_new(const struct vdagent_ops *ops, void *opaque)
{
	struct vdagent *va = calloc(1, sizeof(*va));

	if (!va)
		return NULL;
	va->ops = ops;
	va->opaque = opaque;
	return va;
}

static void clear_input(struct vdagent *va)
{
	for (unsigned i = 0; i < VDP_END_PORT; i++) {
		free(va->msg[i].data);
		memset(&va->msg[i], 0, sizeof(va->msg[i]));
	}
	va->chdr_len = 0;
	va->in_chunk = false;
	va->chunk_left = 0;
}

void vdagent_free(struct vdagent *va)
{
	if (!va)
		return;
	clear_input(va);
	free(va);
}

static void set_disconnected(struct vdagent *va)
{
	bool was = va->connected;

	va->connected = false;
	memset(va->caps, 0, sizeof(va->caps));
	if (was && va->ops->connected)
		va->ops->connected(va->opaque, false);
}

bool vdagent_connected(const struct vdagent *va)
{
	return va->connected;
}

bool vdagent_guest_has_cap(const struct vdagent *va, unsigned cap)
{
	return cap / 32 < VDAGENT_CAP_WORDS &&
	       (va->caps[cap / 32] >> (cap % 32)) & 1;
}

/* ---- output ---------------------------------------------------------------- */

long vdagent_frame(uint32_t port, uint32_t type, const void *data,
		   size_t len, uint8_t *out, size_t cap)
{
	size_t total = VDAGENT_MSG_HDR + len;
	size_t nchunks = (total + VD_AGENT_MAX_DATA_SIZE - 1) / VD_AGENT_MAX_DATA_SIZE;
	size_t need = total + nchunks * VDAGENT_CHUNK_HDR, o = 0, done = 0;
	uint8_t hdr[VDAGENT_MSG_HDR] = { 0 };

	if (len > VDAGENT_MSG_MAX || need > cap)
		return -ENOSPC;
	put32(hdr, VD_AGENT_PROTOCOL);
	put32(hdr + 4, type);
	/* opaque (8 bytes) stays 0 */
	put32(hdr + 16, (uint32_t)len);
	while (done < total) {
		size_t n = total - done < VD_AGENT_MAX_DATA_SIZE ?
			   total - done : VD_AGENT_MAX_DATA_SIZE;

		put32(out + o, port);
		put32(out + o + 4, (uint32_t)n);
		o += VDAGENT_CHUNK_HDR;
		for (size_t i = 0; i < n; i++, done++)
			out[o++] = done < VDAGENT_MSG_HDR ? hdr[done] :
				   ((const uint8_t *)data)[done - VDAGENT_MSG_HDR];
	}
	return (long)o;
}

static int send_msg(struct vdagent *va, uint32_t type, const void *data,
		    size_t len)
{
	size_t total = VDAGENT_MSG_HDR + len;
	size_t cap = total + (total / VD_AGENT_MAX_DATA_SIZE + 1) * VDAGENT_CHUNK_HDR;
	uint8_t *buf = malloc(cap);
	long n;

	if (!buf)
		return -ENOMEM;
	n = vdagent_frame(VDP_CLIENT_PORT, type, data, len, buf, cap);
	if (n > 0)
		va->ops->send(va->opaque, buf, (size_t)n);
	free(buf);
	return n < 0 ? (int)n : 0;
}

static void send_caps(struct vdagent *va, bool request)
{
	uint8_t p[8];

	put32(p, request);
	put32(p + 4, 1u << VD_AGENT_CAP_CLIPBOARD_BY_DEMAND |
		     1u << VD_AGENT_CAP_CLIPBOARD_SELECTION |
		     1u << VD_AGENT_CAP_MONITORS_CONFIG |
		     1u << VD_AGENT_CAP_REPLY |
		     1u << VD_AGENT_CAP_MAX_CLIPBOARD);
	send_msg(va, VD_AGENT_ANNOUNCE_CAPABILITIES, p, sizeof(p));
}

void vdagent_reset(struct vdagent *va, bool announce)
{
	clear_input(va);
	va->broken = false;
	set_disconnected(va);
	if (announce)
		send_caps(va, true);
}

static bool sel_header(const struct vdagent *va)
{
	return vdagent_guest_has_cap(va, VD_AGENT_CAP_CLIPBOARD_SELECTION);
}

/* Start a clipboard payload in @p: the selection header if in use.
 * Returns its length, or -EINVAL / -ENOTCONN. */
static int clip_start(struct vdagent *va, unsigned sel, uint8_t *p)
{
	if (!va->connected ||
	    !vdagent_guest_has_cap(va, VD_AGENT_CAP_CLIPBOARD_BY_DEMAND))
		return -ENOTCONN;
	if (sel > VD_AGENT_CLIPBOARD_SELECTION_SECONDARY ||
	    (sel != VD_AGENT_CLIPBOARD_SELECTION_CLIPBOARD && !sel_header(va)))
		return -EINVAL;
	if (!sel_header(va))
		return 0;
	memset(p, 0, 4);
	p[0] = (uint8_t)sel;
	return 4;
}

int vdagent_grab(struct vdagent *va, unsigned sel, const uint32_t *types,
		 unsigned n)
{
	uint8_t p[4 + 4 * VDAGENT_GRAB_TYPES_MAX];
	int o;

	if (n > VDAGENT_GRAB_TYPES_MAX)
		return -EINVAL;
	o = clip_start(va, sel, p);
	if (o < 0)
		return o;
	for (unsigned i = 0; i < n; i++, o += 4)
		put32(p + o, types[i]);
	return send_msg(va, VD_AGENT_CLIPBOARD_GRAB, p, (size_t)o);
}

int vdagent_request(struct vdagent *va, unsigned sel, uint32_t type)
{
	uint8_t p[8];
	int o = clip_start(va, sel, p);

	if (o < 0)
		return o;
	put32(p + o, type);
	return send_msg(va, VD_AGENT_CLIPBOARD_REQUEST, p, (size_t)o + 4);
}

int vdagent_clipboard(struct vdagent *va, unsigned sel, uint32_t type,
		      const void *data, size_t len)
{
	uint8_t *p;
	int o, r;

	if (len > VDAGENT_CLIPBOARD_MAX)
		return -EINVAL;
	p = malloc(8 + len);
	if (!p)
		return -ENOMEM;
	o = clip_start(va, sel, p);
	if (o < 0) {
		free(p);
		return o;
	}
	put32(p + o, type);
	if (len)
		memcpy(p + o + 4, data, len);
	r = send_msg(va, VD_AGENT_CLIPBOARD, p, (size_t)o + 4 + len);
	free(p);
	return r;
}

int vdagent_release(struct vdagent *va, unsigned sel)
{
	uint8_t p[4];
	int o = clip_start(va, sel, p);

	if (o < 0)
		return o;
	return send_msg(va, VD_AGENT_CLIPBOARD_RELEASE, p, (size_t)o);
}

int vdagent_monitors_config(struct vdagent *va, unsigned width,
			    unsigned height)
{
	uint8_t p[8 + 20] = { 0 };

	if (!va->connected)
		return -ENOTCONN;
	if (!width || !height)
		return -EINVAL;
	put32(p, 1);			/* num_of_monitors */
	put32(p + 4, 0);		/* flags */
	put32(p + 8, height);		/* VDAgentMonConfig: height first */
	put32(p + 12, width);
	put32(p + 16, 32);		/* depth */
	/* x, y: 0 */
	return send_msg(va, VD_AGENT_MONITORS_CONFIG, p, sizeof(p));
}

/* ---- input ----------------------------------------------------------------- */

static int lose_sync(struct vdagent *va, const char *why, unsigned long v)
{
	vlog_ratelimited(LOG_WARN, "vdagent: %s (%lu): ignoring the agent until its port is reopened",
			 why, v);
	va->broken = true;
	clear_input(va);
	set_disconnected(va);
	return -EPROTO;
}

static void bad_size(uint32_t type, uint32_t size)
{
	vlog_ratelimited(LOG_WARN, "vdagent: message type %u of %u bytes dropped: bad size",
			 type, size);
}

static void handle_caps(struct vdagent *va, const uint8_t *d, uint32_t size)
{
	uint32_t request;
	unsigned words;

	if (size < 4) {
		bad_size(VD_AGENT_ANNOUNCE_CAPABILITIES, size);
		return;
	}
	request = get32(d);
	memset(va->caps, 0, sizeof(va->caps));
	words = (size - 4) / 4;
	for (unsigned i = 0; i < words && i < VDAGENT_CAP_WORDS; i++)
		va->caps[i] = get32(d + 4 + 4 * i);
	if (request)
		send_caps(va, false);
	if (vdagent_guest_has_cap(va, VD_AGENT_CAP_MAX_CLIPBOARD)) {
		uint8_t m[4];

		put32(m, VDAGENT_CLIPBOARD_MAX);
		send_msg(va, VD_AGENT_MAX_CLIPBOARD, m, sizeof(m));
	}
	if (!va->connected) {
		va->connected = true;
		if (va->ops->connected)
			va->ops->connected(va->opaque, true);
	}
}

static void handle_clipboard(struct vdagent *va, uint32_t type,
			     const uint8_t *d, uint32_t size)
{
	unsigned sel = VD_AGENT_CLIPBOARD_SELECTION_CLIPBOARD;

	if (!va->connected) {
		vlog_ratelimited(LOG_WARN, "vdagent: clipboard message before the capabilities");
		return;
	}
	if (sel_header(va)) {
		if (size < 4) {
			bad_size(type, size);
			return;
		}
		sel = d[0];
		d += 4;
		size -= 4;
		if (sel > VD_AGENT_CLIPBOARD_SELECTION_SECONDARY) {
			vlog_ratelimited(LOG_WARN, "vdagent: selection %u out of range", sel);
			return;
		}
	}
	switch (type) {
	case VD_AGENT_CLIPBOARD_GRAB: {
		uint32_t types[VDAGENT_GRAB_TYPES_MAX];
		unsigned n = 0;

		if (size % 4) {
			bad_size(type, size);
			return;
		}
		for (uint32_t o = 0; o < size && n < VDAGENT_GRAB_TYPES_MAX; o += 4)
			types[n++] = get32(d + o);
		if (va->ops->grab)
			va->ops->grab(va->opaque, sel, types, n);
		return;
	}
	case VD_AGENT_CLIPBOARD_REQUEST:
		if (size != 4) {
			bad_size(type, size);
			return;
		}
		if (va->ops->request)
			va->ops->request(va->opaque, sel, get32(d));
		return;
	case VD_AGENT_CLIPBOARD:
		if (size < 4) {
			bad_size(type, size);
			return;
		}
		if (va->ops->data)
			va->ops->data(va->opaque, sel, get32(d), d + 4, size - 4);
		return;
	case VD_AGENT_CLIPBOARD_RELEASE:
		if (size != 0) {
			bad_size(type, size);
			return;
		}
		if (va->ops->release)
			va->ops->release(va->opaque, sel);
		return;
	}
}

static void dispatch(struct vdagent *va, uint32_t type, const uint8_t *d,
		     uint32_t size)
{
	switch (type) {
	case VD_AGENT_ANNOUNCE_CAPABILITIES:
		handle_caps(va, d, size);
		return;
	case VD_AGENT_CLIPBOARD_GRAB:
	case VD_AGENT_CLIPBOARD_REQUEST:
	case VD_AGENT_CLIPBOARD:
	case VD_AGENT_CLIPBOARD_RELEASE:
		handle_clipboard(va, type, d, size);
		return;
	case VD_AGENT_REPLY:
		if (size != 8) {
			bad_size(type, size);
			return;
		}
		if (va->ops->reply)
			va->ops->reply(va->opaque, get32(d), get32(d + 4));
		return;
	default:
		/* Messages a client does not take (file transfer status,
		 * graphics device info...) or does not know. */
		vlog_ratelimited(LOG_INFO, "vdagent: message type %u ignored", type);
		return;
	}
}

/* Bytes @p[0..@n) of the current chunk (port @port), @n <= chunk_left.
 * Returns the bytes used (all of them), or -EPROTO. */
static int feed_chunk(struct vdagent *va, const uint8_t *p, size_t n)
{
	struct msg_asm *m = &va->msg[va->chunk_port];
	size_t used = 0;

	while (used < n) {
		if (m->hdr_len < VDAGENT_MSG_HDR) {
			size_t k = VDAGENT_MSG_HDR - m->hdr_len;

			if (k > n - used)
				k = n - used;
			memcpy(m->hdr + m->hdr_len, p + used, k);
			m->hdr_len += (unsigned)k;
			used += k;
			if (m->hdr_len < VDAGENT_MSG_HDR)
				break;
			if (get32(m->hdr) != VD_AGENT_PROTOCOL)
				return lose_sync(va, "protocol", get32(m->hdr));
			m->type = get32(m->hdr + 4);
			m->size = get32(m->hdr + 16);
			m->pos = 0;
			if (m->size > VDAGENT_MSG_MAX)
				return lose_sync(va, "message too big", m->size);
			if (m->size) {
				m->data = malloc(m->size);
				if (!m->data)
					return lose_sync(va, "out of memory", m->size);
			}
		} else {
			size_t k = m->size - m->pos;

			if (k > n - used)
				k = n - used;
			memcpy(m->data + m->pos, p + used, k);
			m->pos += (uint32_t)k;
			used += k;
		}
		if (m->hdr_len == VDAGENT_MSG_HDR && m->pos == m->size) {
			uint8_t *data = m->data;
			uint32_t type = m->type, size = m->size;

			/* A chunk ends with its message. */
			if (va->chunk_left - used)
				return lose_sync(va, "chunk runs past its message",
						 va->chunk_left - used);
			memset(m, 0, sizeof(*m));
			dispatch(va, type, data, size);
			free(data);
			if (va->broken)
				return -EPROTO;
		}
	}
	return (int)used;
}

int vdagent_input(struct vdagent *va, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	if (va->broken)
		return -EPROTO;
	while (len) {
		if (!va->in_chunk) {
			size_t k = VDAGENT_CHUNK_HDR - va->chdr_len;

			if (k > len)
				k = len;
			memcpy(va->chdr + va->chdr_len, p, k);
			va->chdr_len += (unsigned)k;
			p += k;
			len -= k;
			if (va->chdr_len < VDAGENT_CHUNK_HDR)
				break;
			va->chdr_len = 0;
			va->chunk_port = get32(va->chdr);
			va->chunk_left = get32(va->chdr + 4);
			if (va->chunk_port != VDP_CLIENT_PORT &&
			    va->chunk_port != VDP_SERVER_PORT)
				return lose_sync(va, "chunk port", va->chunk_port);
			if (va->chunk_left > VDAGENT_MSG_MAX + VDAGENT_MSG_HDR)
				return lose_sync(va, "chunk too big", va->chunk_left);
			va->in_chunk = va->chunk_left != 0;
		} else {
			size_t n = len < va->chunk_left ? len : va->chunk_left;
			int r = feed_chunk(va, p, n);

			if (r < 0)
				return r;
			p += n;
			len -= n;
			va->chunk_left -= (uint32_t)n;
			if (!va->chunk_left)
				va->in_chunk = false;
		}
	}
	return 0;
}
