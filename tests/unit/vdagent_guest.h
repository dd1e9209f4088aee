/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/vdagent_guest.h - spice-vdagentd's side of the agent port,
 * over the real virtio-serial device (vcon_guest.h), for tests of the VM
 * process's agents hub (app/agents.c): the guest opens the port, answers
 * the host's capabilities, sends messages (vdagent_peer.h's framing) and
 * reads back what the host sent.  The hub runs on the default GLib main
 * context: vag_pump() turns it.  Header-only.
 */
#ifndef VIVARIUM_VDAGENT_GUEST_H
#define VIVARIUM_VDAGENT_GUEST_H

#include <glib.h>

#include "vcon_guest.h"
#include "vdagent_peer.h"

/* Run the default main context until it has nothing ready. */
static inline void vag_pump(void)
{
	for (int i = 0; i < 100 && g_main_context_iteration(NULL, FALSE); i++) {
	}
}

/* A message from the guest's agent on port @id (one chunk per 2 KiB). */
static inline void vag_send(struct vcon_guest *g, unsigned id, uint32_t type,
			    const void *data, size_t len)
{
	size_t n;
	uint8_t *b = vp_message(VDP_CLIENT_PORT, type, data, len,
				VD_AGENT_MAX_DATA_SIZE, &n);

	vg_write(g, id, b, n);
	free(b);
	vag_pump();
}

/* The messages the host sent on port @id since the last call, parsed
 * into @m (vp_free them); the count, or -1 on bad framing. */
static inline int vag_recv(struct vcon_guest *g, unsigned id,
			   struct vp_msg *m, int max)
{
	static uint8_t buf[1u << 16];
	size_t n;

	vag_pump();
	n = vg_read(g, id, buf, sizeof(buf));
	return vp_parse(buf, n, m, max);
}

/* Does @m[0..@n) hold a message of @type?  Its index, or -1. */
static inline int vag_find(const struct vp_msg *m, int n, uint32_t type)
{
	for (int i = 0; i < n; i++)
		if (m[i].type == type)
			return i;
	return -1;
}

/* The guest's spice-vdagentd opens port @id and announces clipboard by
 * demand, selections and monitors config, as the daemon does once the
 * host asked.  What the host sent after the announcement goes to
 * @out[0..@max) (the count is returned; NULL: dropped). */
static inline int vag_connect(struct vcon_guest *g, unsigned id,
			      struct vp_msg *out, int max)
{
	struct vp_msg m[16];
	uint8_t p[8];
	int n;

	vg_open(g, id, true);
	n = vag_recv(g, id, m, 16);
	CHECK(n >= 1 && vag_find(m, n, VD_AGENT_ANNOUNCE_CAPABILITIES) >= 0);
	if (n > 0)
		vp_free(m, n);
	vp_put32(p, 0);
	vp_put32(p + 4, 1u << VD_AGENT_CAP_CLIPBOARD_BY_DEMAND |
		 1u << VD_AGENT_CAP_CLIPBOARD_SELECTION |
		 1u << VD_AGENT_CAP_MONITORS_CONFIG | 1u << VD_AGENT_CAP_REPLY);
	vag_send(g, id, VD_AGENT_ANNOUNCE_CAPABILITIES, p, 8);
	if (out)
		return vag_recv(g, id, out, max);
	n = vag_recv(g, id, m, 16);
	if (n > 0)
		vp_free(m, n);
	return n;
}

#endif
