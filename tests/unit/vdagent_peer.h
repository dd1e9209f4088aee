/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/vdagent_peer.h - the guest side of the SPICE agent stream,
 * written from vd_agent.h for tests: build what spice-vdagentd sends
 * (messages in chunks of any size) and take apart what the host sends,
 * checking its framing (chunk port VDP_CLIENT_PORT, chunks of at most
 * VD_AGENT_MAX_DATA_SIZE, a chunk never past its message).  Header-only.
 */
#ifndef VIVARIUM_VDAGENT_PEER_H
#define VIVARIUM_VDAGENT_PEER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/vdagent.h"

static inline void vp_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t vp_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* One message as the guest sends it, cut into chunks of @chunk bytes
 * (0: one chunk for all) on @port.  Returns a malloc'd buffer, *@outlen. */
static inline uint8_t *vp_message(uint32_t port, uint32_t type,
				  const void *data, size_t len, size_t chunk,
				  size_t *outlen)
{
	size_t total = 20 + len, o = 0, done = 0;
	uint8_t *msg = calloc(1, total), *out;

	vp_put32(msg, VD_AGENT_PROTOCOL);
	vp_put32(msg + 4, type);
	vp_put32(msg + 16, (uint32_t)len);
	if (len)
		memcpy(msg + 20, data, len);
	if (!chunk)
		chunk = total;
	out = malloc(total + (total / chunk + 1) * 8);
	while (done < total) {
		size_t n = total - done < chunk ? total - done : chunk;

		vp_put32(out + o, port);
		vp_put32(out + o + 4, (uint32_t)n);
		memcpy(out + o + 8, msg + done, n);
		o += 8 + n;
		done += n;
	}
	free(msg);
	*outlen = o;
	return out;
}

/* A message the host sent, reassembled. */
struct vp_msg {
	uint32_t type, size;
	uint8_t *data;			/* malloc'd */
};

/*
 * Parse everything in @buf/@len into @out (up to @max messages); returns
 * the count, or -1 when the framing is wrong (a chunk over 2048 bytes, a
 * port other than VDP_CLIENT_PORT, a chunk past its message, a partial
 * message at the end).
 */
static inline int vp_parse(const uint8_t *buf, size_t len, struct vp_msg *out,
			   int max)
{
	size_t o = 0;
	int n = 0;
	uint8_t hdr[20];
	unsigned hl = 0;
	uint32_t pos = 0;
	struct vp_msg cur = { 0 };

	while (o < len) {
		uint32_t port, size, used = 0;

		if (len - o < 8)
			return -1;
		port = vp_get32(buf + o);
		size = vp_get32(buf + o + 4);
		o += 8;
		if (port != VDP_CLIENT_PORT || size > VD_AGENT_MAX_DATA_SIZE ||
		    size > len - o)
			return -1;
		while (used < size) {
			if (hl < 20) {
				uint32_t k = 20 - hl < size - used ? 20 - hl : size - used;

				memcpy(hdr + hl, buf + o + used, k);
				hl += k;
				used += k;
				if (hl == 20) {
					if (vp_get32(hdr) != VD_AGENT_PROTOCOL)
						return -1;
					cur.type = vp_get32(hdr + 4);
					cur.size = vp_get32(hdr + 16);
					cur.data = malloc(cur.size + 1);
					pos = 0;
				}
			} else {
				uint32_t k = cur.size - pos < size - used ?
					     cur.size - pos : size - used;

				memcpy(cur.data + pos, buf + o + used, k);
				pos += k;
				used += k;
			}
			if (hl == 20 && pos == cur.size) {
				if (used != size || n >= max)
					return -1;
				out[n++] = cur;
				memset(&cur, 0, sizeof(cur));
				hl = 0;
			}
		}
		o += size;
	}
	return hl ? -1 : n;
}

static inline void vp_free(struct vp_msg *m, int n)
{
	for (int i = 0; i < n; i++)
		free(m[i].data);
}

#endif
