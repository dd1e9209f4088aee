/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/agent/vdagent.h - the host ("client") side of the SPICE agent
 * protocol that spice-vdagentd speaks over the virtio-serial port
 * com.redhat.spice.0 (spice-protocol's vd_agent.h: every field
 * little-endian, structures packed).  No I/O here: bytes from the guest go
 * in with vdagent_input(), bytes for the guest come out through ops->send.
 *
 * Framing.  The stream is a sequence of chunks, each a VDIChunkHeader
 * (le32 port: VDP_CLIENT_PORT 1 or VDP_SERVER_PORT 2; le32 size) and
 * @size bytes.  The chunks of a port carry that port's messages back to
 * back: a VDAgentMessage header (le32 protocol = 1, le32 type, le64
 * opaque, le32 size; 20 bytes) and @size bytes of payload, split over
 * chunks anywhere (a chunk never holds the end of one message and the
 * start of the next).  What we send is split into chunks of at most
 * VD_AGENT_MAX_DATA_SIZE bytes (spice-vdagentd refuses bigger ones); what
 * the guest sends comes in chunks of any size up to a whole message.
 *
 * Bounds: a message's payload is at most VDAGENT_MSG_MAX bytes, a chunk
 * at most that plus the message header.  A bad chunk port, a chunk or
 * message over the bounds, a protocol other than 1, or a chunk running
 * past its message's end loses the framing: the codec refuses (-EPROTO),
 * logs once, and ignores the stream until vdagent_reset() (the port is
 * closed and opened again: spice-vdagentd reopens it on its own errors).
 * A message of a known type whose payload has the wrong size is dropped
 * alone (the framing still holds).
 *
 * Clipboard: both sides announce capabilities (ANNOUNCE_CAPABILITIES,
 * @request 1 asks the other side for its own).  We announce
 * CLIPBOARD_BY_DEMAND, CLIPBOARD_SELECTION, MONITORS_CONFIG, REPLY and
 * MAX_CLIPBOARD (not GRAB_SERIAL: grabs carry no serial).  When the
 * guest announced CLIPBOARD_SELECTION, every clipboard message starts with
 * a 4-byte selection header (u8 selection, 3 reserved).  GRAB lists the
 * types on offer (le32 each), REQUEST asks for one type, CLIPBOARD answers
 * with (type, bytes), RELEASE gives the selection up.
 *
 * Display: MONITORS_CONFIG (host -> guest) tells the guest's X session
 * which size to apply (spice-vdagent sets it with XRandR); the daemon
 * acknowledges with REPLY.
 *
 * Not thread-safe: one thread drives a struct vdagent.
 */
#ifndef VIVARIUM_VDAGENT_H
#define VIVARIUM_VDAGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* vd_agent.h's numbers. */
#define VDP_CLIENT_PORT			1
#define VDP_SERVER_PORT			2
#define VDP_END_PORT			3
#define VD_AGENT_PROTOCOL		1
#define VD_AGENT_MAX_DATA_SIZE		2048
#define VDAGENT_CHUNK_HDR		8
#define VDAGENT_MSG_HDR			20

#define VD_AGENT_MOUSE_STATE		1
#define VD_AGENT_MONITORS_CONFIG	2
#define VD_AGENT_REPLY			3
#define VD_AGENT_CLIPBOARD		4
#define VD_AGENT_DISPLAY_CONFIG		5
#define VD_AGENT_ANNOUNCE_CAPABILITIES	6
#define VD_AGENT_CLIPBOARD_GRAB		7
#define VD_AGENT_CLIPBOARD_REQUEST	8
#define VD_AGENT_CLIPBOARD_RELEASE	9
#define VD_AGENT_CLIENT_DISCONNECTED	13
#define VD_AGENT_MAX_CLIPBOARD		14

#define VD_AGENT_CAP_MOUSE_STATE	0
#define VD_AGENT_CAP_MONITORS_CONFIG	1
#define VD_AGENT_CAP_REPLY		2
#define VD_AGENT_CAP_CLIPBOARD		3
#define VD_AGENT_CAP_DISPLAY_CONFIG	4
#define VD_AGENT_CAP_CLIPBOARD_BY_DEMAND 5
#define VD_AGENT_CAP_CLIPBOARD_SELECTION 6
#define VD_AGENT_CAP_SPARSE_MONITORS_CONFIG 7
#define VD_AGENT_CAP_GUEST_LINEEND_LF	8
#define VD_AGENT_CAP_GUEST_LINEEND_CRLF	9
#define VD_AGENT_CAP_MAX_CLIPBOARD	10
#define VD_AGENT_CAP_CLIPBOARD_GRAB_SERIAL 17

#define VD_AGENT_CLIPBOARD_NONE		0
#define VD_AGENT_CLIPBOARD_UTF8_TEXT	1
#define VD_AGENT_CLIPBOARD_IMAGE_PNG	2
#define VD_AGENT_CLIPBOARD_IMAGE_BMP	3
#define VD_AGENT_CLIPBOARD_IMAGE_TIFF	4
#define VD_AGENT_CLIPBOARD_IMAGE_JPG	5

#define VD_AGENT_CLIPBOARD_SELECTION_CLIPBOARD	0
#define VD_AGENT_CLIPBOARD_SELECTION_PRIMARY	1
#define VD_AGENT_CLIPBOARD_SELECTION_SECONDARY	2

#define VD_AGENT_SUCCESS		1
#define VD_AGENT_ERROR			2

/* Largest message payload we take or send: clipboard data of 1 MiB and
 * its type and selection words. */
#define VDAGENT_CLIPBOARD_MAX		(1u << 20)
#define VDAGENT_MSG_MAX			(VDAGENT_CLIPBOARD_MAX + 8)
/* Capability words kept from an announcement (the rest ignored). */
#define VDAGENT_CAP_WORDS		4
/* Types kept from a grab. */
#define VDAGENT_GRAB_TYPES_MAX		16

struct vdagent;

/* What the owner supplies.  Every callback is optional (NULL: ignored)
 * except send. */
struct vdagent_ops {
	/* Bytes for the guest, framed; the owner queues them all. */
	void (*send)(void *opaque, const void *buf, size_t len);
	/* The guest's agent announced itself (@up), or the stream was reset
	 * or lost its framing (!@up). */
	void (*connected)(void *opaque, bool up);
	/* The guest took selection @sel, offering @types[0..@n). */
	void (*grab)(void *opaque, unsigned sel, const uint32_t *types,
		     unsigned n);
	/* The guest wants our data of @type for @sel: answer with
	 * vdagent_clipboard() (an empty VD_AGENT_CLIPBOARD_NONE if none). */
	void (*request)(void *opaque, unsigned sel, uint32_t type);
	/* The guest's data of @type for @sel (answer to vdagent_request()). */
	void (*data)(void *opaque, unsigned sel, uint32_t type,
		     const uint8_t *data, size_t len);
	/* The guest gave @sel up. */
	void (*release)(void *opaque, unsigned sel);
	/* The guest acknowledged a message of @type (REPLY), @error
	 * VD_AGENT_SUCCESS or VD_AGENT_ERROR. */
	void (*reply)(void *opaque, uint32_t type, uint32_t error);
};

/* NULL on allocation failure. */
struct vdagent *vdagent_new(const struct vdagent_ops *ops, void *opaque);
void vdagent_free(struct vdagent *va);

/*
 * vdagent_reset - start afresh (the guest opened the port, or it was
 * closed): forget partial input and the guest's capabilities; with
 * @announce, send our capabilities asking for the guest's (@request 1).
 * Calls ops->connected(false) if the guest's agent was connected.
 */
void vdagent_reset(struct vdagent *va, bool announce);

/*
 * vdagent_input - @len bytes from the guest.  Complete messages are
 * handled (callbacks) before it returns.  Returns 0, or -EPROTO once the
 * framing is lost (then the stream is ignored until vdagent_reset()).
 */
int vdagent_input(struct vdagent *va, const void *buf, size_t len);

/* Has the guest's agent announced its capabilities (since the reset)? */
bool vdagent_connected(const struct vdagent *va);
/* Did the guest announce capability @cap (VD_AGENT_CAP_*)? */
bool vdagent_guest_has_cap(const struct vdagent *va, unsigned cap);

/*
 * Host -> guest clipboard messages, for selection @sel.  Each returns 0,
 * -ENOTCONN before the guest's agent announced CLIPBOARD_BY_DEMAND,
 * -EINVAL for a bad selection (PRIMARY/SECONDARY need the guest's
 * CLIPBOARD_SELECTION), more than VDAGENT_GRAB_TYPES_MAX types, or data
 * over VDAGENT_CLIPBOARD_MAX bytes.
 */
int vdagent_grab(struct vdagent *va, unsigned sel, const uint32_t *types,
		 unsigned n);
int vdagent_request(struct vdagent *va, unsigned sel, uint32_t type);
int vdagent_clipboard(struct vdagent *va, unsigned sel, uint32_t type,
		      const void *data, size_t len);
int vdagent_release(struct vdagent *va, unsigned sel);

/*
 * vdagent_monitors_config - ask the guest's session for one monitor of
 * @width x @height pixels (depth 32, at 0,0).  0, -ENOTCONN before the
 * guest's agent connected, -EINVAL for a zero size.
 */
int vdagent_monitors_config(struct vdagent *va, unsigned width,
			    unsigned height);

/*
 * vdagent_frame - for tests and the fuzz target: frame one message of
 * @type with payload @data/@len as we send it (chunks of at most
 * VD_AGENT_MAX_DATA_SIZE on @port) into @out (@cap bytes).  Returns the
 * bytes written, or -ENOSPC.
 */
long vdagent_frame(uint32_t port, uint32_t type, const void *data,
		   size_t len, uint8_t *out, size_t cap);

#endif
