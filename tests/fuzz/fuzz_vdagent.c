/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_vdagent.c - the SPICE agent codec (vmm-core/agent/
 * vdagent.c) on hostile guest bytes.  The input's first byte picks how the
 * stream is cut into vdagent_input() calls (fragmented chunks across
 * calls); the rest is the stream.  Whatever the codec answers is parsed
 * back and checked for its framing (chunks of at most 2048 bytes on
 * VDP_CLIENT_PORT), and the host-side calls are made in every state.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "vdagent_peer.h"

#include "agent/vdagent.h"
#include "log.h"

static uint8_t out[1 << 16];
static size_t out_len;
static struct vdagent *va_cur;

static void on_send(void *o, const void *buf, size_t len)
{
	(void)o;
	if (len > sizeof(out) - out_len) {
		out_len = 0;		/* only the framing matters: start over */
		if (len > sizeof(out))
			return;
	}
	memcpy(out + out_len, buf, len);
	out_len += len;
}

static void on_request(void *o, unsigned sel, uint32_t type)
{
	(void)o;
	/* Answer at once, as the clipboard hub does. */
	vdagent_clipboard(va_cur, sel, type, "answer", 6);
}

static void on_data(void *o, unsigned sel, uint32_t type, const uint8_t *d,
		    size_t len)
{
	volatile uint8_t x = 0;

	(void)o; (void)sel; (void)type;
	for (size_t i = 0; i < len; i++)	/* touch every byte (ASan) */
		x ^= d[i];
}

static const struct vdagent_ops ops = {
	.send = on_send, .request = on_request, .data = on_data,
};

static void check_output(void)
{
	/* Room for every message @out can hold (28 bytes at the least): a
	 * guest announcing again and again gets as many answers. */
	static struct vp_msg m[sizeof(out) / 28 + 1];
	int n = vp_parse(out, out_len, m, (int)(sizeof(m) / sizeof(m[0])));

	if (out_len && n < 0 && out_len < sizeof(out) / 2)
		abort();		/* our own framing is wrong */
	if (n > 0)
		vp_free(m, n);
	out_len = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vdagent *va;
	size_t step, o = 1;

	if (size < 1)
		return 0;
	log_set_level(LOG_ERROR);
	step = (size_t)data[0] % 37 + 1;
	va = vdagent_new(&ops, NULL);
	va_cur = va;
	vdagent_reset(va, true);
	while (o < size) {
		size_t n = size - o < step ? size - o : step;

		if (vdagent_input(va, data + o, n) < 0 && (data[0] & 0x80))
			vdagent_reset(va, true);	/* as a reopen does */
		o += n;
		step = step * 5 % 41 + 1;
	}
	vdagent_grab(va, 0, (const uint32_t[]){ VD_AGENT_CLIPBOARD_UTF8_TEXT }, 1);
	vdagent_request(va, 1, VD_AGENT_CLIPBOARD_UTF8_TEXT);
	vdagent_monitors_config(va, 1024, 768);
	check_output();
	vdagent_free(va);
	return 0;
}

static void seed(void (*add)(const void *, size_t), uint8_t mode,
		 const uint8_t *stream, size_t len)
{
	uint8_t *b = malloc(len + 1);

	b[0] = mode;
	memcpy(b + 1, stream, len);
	add(b, len + 1);
	free(b);
}

void fuzz_make_seeds(void (*add)(const void *, size_t))
{
	uint8_t caps[8], grab[8], clip[4 + 4 + 300];
	uint8_t all[4096];
	size_t n, len = 0;
	uint8_t *m;

	vp_put32(caps, 1);
	vp_put32(caps + 4, 0xffffffffu);
	memset(grab, 0, 8);
	vp_put32(grab + 4, VD_AGENT_CLIPBOARD_UTF8_TEXT);
	memset(clip, 'x', sizeof(clip));
	memset(clip, 0, 4);
	vp_put32(clip + 4, VD_AGENT_CLIPBOARD_UTF8_TEXT);

	m = vp_message(1, VD_AGENT_ANNOUNCE_CAPABILITIES, caps, 8, 0, &n);
	memcpy(all + len, m, n), len += n, free(m);
	m = vp_message(1, VD_AGENT_CLIPBOARD_GRAB, grab, 8, 5, &n);
	memcpy(all + len, m, n), len += n, free(m);
	m = vp_message(2, VD_AGENT_CLIPBOARD_REQUEST, grab, 8, 0, &n);
	memcpy(all + len, m, n), len += n, free(m);
	m = vp_message(1, VD_AGENT_CLIPBOARD, clip, sizeof(clip), 64, &n);
	memcpy(all + len, m, n), len += n, free(m);
	m = vp_message(1, VD_AGENT_CLIPBOARD_RELEASE, grab, 4, 0, &n);
	memcpy(all + len, m, n), len += n, free(m);
	seed(add, 3, all, len);
	seed(add, 0x80 | 17, all, len);
	seed(add, 0, all, 40);
}
