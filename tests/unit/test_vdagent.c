/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_vdagent.c - the SPICE agent codec (vmm-core/agent/
 * vdagent.c) against a guest side written from vd_agent.h
 * (vdagent_peer.h): capability exchange, clipboard both ways with and
 * without the selection header, messages fragmented over chunks and fed a
 * byte at a time, whole messages in one big chunk as spice-vdagentd sends
 * them, MONITORS_CONFIG's layout, and the refusals (bad chunk port, chunk
 * or message over the bounds, wrong protocol, a chunk past its message)
 * with recovery after a reset.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "vdagent_peer.h"

#include "agent/vdagent.h"
#include "log.h"

/* What the codec did. */
static uint8_t *sent;
static size_t sent_len, sent_cap;
static int conn_up, conn_down, grabs, requests, datas, releases, replies;
static unsigned last_sel;
static uint32_t last_types[VDAGENT_GRAB_TYPES_MAX], last_type;
static unsigned last_ntypes;
static uint8_t *last_data;
static size_t last_len;

static void on_send(void *o, const void *buf, size_t len)
{
	(void)o;
	if (sent_len + len > sent_cap) {
		sent_cap = (sent_len + len) * 2;
		sent = realloc(sent, sent_cap);
	}
	memcpy(sent + sent_len, buf, len);
	sent_len += len;
}

static void on_connected(void *o, bool up)
{
	(void)o;
	if (up)
		conn_up++;
	else
		conn_down++;
}

static void on_grab(void *o, unsigned sel, const uint32_t *t, unsigned n)
{
	(void)o;
	grabs++;
	last_sel = sel;
	last_ntypes = n;
	memcpy(last_types, t, n * 4);
}

static void on_request(void *o, unsigned sel, uint32_t type)
{
	(void)o;
	requests++;
	last_sel = sel;
	last_type = type;
}

static void on_data(void *o, unsigned sel, uint32_t type, const uint8_t *d,
		    size_t len)
{
	(void)o;
	datas++;
	last_sel = sel;
	last_type = type;
	free(last_data);
	last_data = malloc(len + 1);
	memcpy(last_data, d, len);
	last_len = len;
}

static void on_release(void *o, unsigned sel)
{
	(void)o;
	releases++;
	last_sel = sel;
}

static void on_reply(void *o, uint32_t type, uint32_t error)
{
	(void)o;
	replies++;
	last_type = type;
	CHECK_EQ(error, VD_AGENT_SUCCESS);
}

static const struct vdagent_ops ops = {
	on_send, on_connected, on_grab, on_request, on_data, on_release, on_reply,
};

static void reset_counts(void)
{
	sent_len = 0;
	conn_up = conn_down = grabs = requests = datas = releases = replies = 0;
}

/* Feed a message from the guest, @chunk-byte chunks, @step bytes a call. */
static int feed(struct vdagent *va, uint32_t type, const void *d, size_t len,
		size_t chunk, size_t step)
{
	size_t n;
	uint8_t *b = vp_message(VDP_CLIENT_PORT, type, d, len, chunk, &n);
	int r = 0;

	for (size_t o = 0; o < n && r == 0; o += step)
		r = vdagent_input(va, b + o, n - o < step ? n - o : step);
	free(b);
	return r;
}

/* The guest's capabilities; @sel: with CLIPBOARD_SELECTION. */
static void guest_caps(struct vdagent *va, bool request, bool sel)
{
	uint8_t p[8];

	vp_put32(p, request);
	vp_put32(p + 4, 1u << VD_AGENT_CAP_CLIPBOARD_BY_DEMAND |
		 (sel ? 1u << VD_AGENT_CAP_CLIPBOARD_SELECTION : 0) |
		 1u << VD_AGENT_CAP_MAX_CLIPBOARD |
		 1u << VD_AGENT_CAP_CLIPBOARD_GRAB_SERIAL);
	CHECK_EQ(feed(va, VD_AGENT_ANNOUNCE_CAPABILITIES, p, 8, 0, 8), 0);
}

static void test_caps_exchange(void)
{
	struct vdagent *va = vdagent_new(&ops, NULL);
	struct vp_msg m[8];
	int n;

	reset_counts();
	vdagent_reset(va, true);
	n = vp_parse(sent, sent_len, m, 8);
	CHECK_EQ(n, 1);
	CHECK_EQ(m[0].type, VD_AGENT_ANNOUNCE_CAPABILITIES);
	CHECK_EQ(m[0].size, 8);
	CHECK_EQ(vp_get32(m[0].data), 1);		/* request */
	CHECK(vp_get32(m[0].data + 4) & (1u << VD_AGENT_CAP_CLIPBOARD_BY_DEMAND));
	CHECK(vp_get32(m[0].data + 4) & (1u << VD_AGENT_CAP_CLIPBOARD_SELECTION));
	CHECK(!(vp_get32(m[0].data + 4) & (1u << VD_AGENT_CAP_CLIPBOARD_GRAB_SERIAL)));
	vp_free(m, n);
	CHECK(!vdagent_connected(va));
	CHECK_EQ(vdagent_grab(va, 0, (uint32_t[]){ 1 }, 1), -ENOTCONN);

	/* The daemon announces with request 1: we answer (request 0) and
	 * cap its clipboard size. */
	sent_len = 0;
	guest_caps(va, true, true);
	CHECK(vdagent_connected(va));
	CHECK_EQ(conn_up, 1);
	n = vp_parse(sent, sent_len, m, 8);
	CHECK_EQ(n, 2);
	CHECK_EQ(m[0].type, VD_AGENT_ANNOUNCE_CAPABILITIES);
	CHECK_EQ(vp_get32(m[0].data), 0);
	CHECK_EQ(m[1].type, VD_AGENT_MAX_CLIPBOARD);
	CHECK_EQ(m[1].size, 4);
	CHECK_EQ(vp_get32(m[1].data), VDAGENT_CLIPBOARD_MAX);
	vp_free(m, n);
	CHECK(vdagent_guest_has_cap(va, VD_AGENT_CAP_CLIPBOARD_SELECTION));
	/* A second announcement is no new connection. */
	guest_caps(va, false, true);
	CHECK_EQ(conn_up, 1);
	vdagent_reset(va, false);
	CHECK_EQ(conn_down, 1);
	CHECK(!vdagent_connected(va));
	vdagent_free(va);
}

static void test_clipboard_guest_to_host(void)
{
	struct vdagent *va = vdagent_new(&ops, NULL);
	static uint8_t p[8 + 5000];
	const char *text = "Grüße aus dem Gast";

	reset_counts();
	vdagent_reset(va, false);
	guest_caps(va, true, true);
	/* GRAB of CLIPBOARD with two types. */
	memset(p, 0, 4);
	vp_put32(p + 4, VD_AGENT_CLIPBOARD_UTF8_TEXT);
	vp_put32(p + 8, VD_AGENT_CLIPBOARD_IMAGE_PNG);
	CHECK_EQ(feed(va, VD_AGENT_CLIPBOARD_GRAB, p, 12, 0, 1), 0);
	CHECK_EQ(grabs, 1);
	CHECK_EQ(last_sel, 0);
	CHECK_EQ(last_ntypes, 2);
	CHECK_EQ(last_types[0], VD_AGENT_CLIPBOARD_UTF8_TEXT);
	CHECK_EQ(last_types[1], VD_AGENT_CLIPBOARD_IMAGE_PNG);
	/* Our request carries the selection header. */
	sent_len = 0;
	CHECK_EQ(vdagent_request(va, 0, VD_AGENT_CLIPBOARD_UTF8_TEXT), 0);
	{
		struct vp_msg m[2];
		int n = vp_parse(sent, sent_len, m, 2);

		CHECK_EQ(n, 1);
		CHECK_EQ(m[0].type, VD_AGENT_CLIPBOARD_REQUEST);
		CHECK_EQ(m[0].size, 8);
		CHECK_EQ(m[0].data[0], 0);
		CHECK_EQ(vp_get32(m[0].data + 4), VD_AGENT_CLIPBOARD_UTF8_TEXT);
		vp_free(m, n);
	}
	/* The data, 5000 bytes in 100-byte chunks fed 7 bytes at a time. */
	vp_put32(p + 4, VD_AGENT_CLIPBOARD_UTF8_TEXT);
	for (unsigned i = 0; i < 5000; i++)
		p[8 + i] = (uint8_t)('a' + i % 26);
	memcpy(p + 8, text, strlen(text));
	CHECK_EQ(feed(va, VD_AGENT_CLIPBOARD, p, 8 + 5000, 100, 7), 0);
	CHECK_EQ(datas, 1);
	CHECK_EQ(last_type, VD_AGENT_CLIPBOARD_UTF8_TEXT);
	CHECK_EQ(last_len, 5000);
	CHECK(last_data && memcmp(last_data, p + 8, 5000) == 0);
	/* The same as one chunk of 5028 bytes (spice-vdagentd's way). */
	CHECK_EQ(feed(va, VD_AGENT_CLIPBOARD, p, 8 + 5000, 0, 4096), 0);
	CHECK_EQ(datas, 2);
	CHECK(last_len == 5000 && memcmp(last_data, p + 8, 5000) == 0);
	/* PRIMARY request and release. */
	p[0] = VD_AGENT_CLIPBOARD_SELECTION_PRIMARY;
	vp_put32(p + 4, VD_AGENT_CLIPBOARD_UTF8_TEXT);
	CHECK_EQ(feed(va, VD_AGENT_CLIPBOARD_REQUEST, p, 8, 0, 100), 0);
	CHECK(requests == 1 && last_sel == 1 && last_type == 1);
	CHECK_EQ(feed(va, VD_AGENT_CLIPBOARD_RELEASE, p, 4, 0, 100), 0);
	CHECK(releases == 1 && last_sel == 1);
	/* Wrong sizes drop the message alone. */
	CHECK_EQ(feed(va, VD_AGENT_CLIPBOARD_REQUEST, p, 7, 0, 100), 0);
	CHECK_EQ(feed(va, VD_AGENT_CLIPBOARD_RELEASE, p, 8, 0, 100), 0);
	CHECK_EQ(feed(va, VD_AGENT_CLIPBOARD_GRAB, p, 6, 0, 100), 0);
	p[0] = 9;				/* no such selection */
	CHECK_EQ(feed(va, VD_AGENT_CLIPBOARD_RELEASE, p, 4, 0, 100), 0);
	CHECK_EQ(requests + releases + grabs, 3);
	/* REPLY to a MONITORS_CONFIG; unknown types ignored. */
	vp_put32(p, VD_AGENT_MONITORS_CONFIG);
	vp_put32(p + 4, VD_AGENT_SUCCESS);
	CHECK_EQ(feed(va, VD_AGENT_REPLY, p, 8, 0, 3), 0);
	CHECK(replies == 1 && last_type == VD_AGENT_MONITORS_CONFIG);
	CHECK_EQ(feed(va, 999, p, 8, 0, 3), 0);
	CHECK(vdagent_connected(va));
	vdagent_free(va);
	free(last_data);
	last_data = NULL;
}

static void test_clipboard_host_to_guest(void)
{
	struct vdagent *va = vdagent_new(&ops, NULL);
	static uint8_t big[10000];
	struct vp_msg m[4];
	int n;

	reset_counts();
	vdagent_reset(va, false);
	guest_caps(va, false, true);
	sent_len = 0;
	CHECK_EQ(vdagent_grab(va, 0, (uint32_t[]){ VD_AGENT_CLIPBOARD_UTF8_TEXT }, 1), 0);
	for (unsigned i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 13);
	CHECK_EQ(vdagent_clipboard(va, 0, VD_AGENT_CLIPBOARD_UTF8_TEXT, big, sizeof(big)), 0);
	CHECK_EQ(vdagent_release(va, 0), 0);
	n = vp_parse(sent, sent_len, m, 4);		/* chunks <= 2048 */
	CHECK_EQ(n, 3);
	CHECK_EQ(m[0].type, VD_AGENT_CLIPBOARD_GRAB);
	CHECK_EQ(m[0].size, 8);
	CHECK_EQ(vp_get32(m[0].data + 4), VD_AGENT_CLIPBOARD_UTF8_TEXT);
	CHECK_EQ(m[1].type, VD_AGENT_CLIPBOARD);
	CHECK_EQ(m[1].size, 8 + sizeof(big));
	CHECK(memcmp(m[1].data + 8, big, sizeof(big)) == 0);
	CHECK_EQ(m[2].type, VD_AGENT_CLIPBOARD_RELEASE);
	CHECK_EQ(m[2].size, 4);
	vp_free(m, n);
	CHECK_EQ(vdagent_grab(va, 3, (uint32_t[]){ 1 }, 1), -EINVAL);
	CHECK_EQ(vdagent_clipboard(va, 0, 1, big, VDAGENT_CLIPBOARD_MAX + 1), -EINVAL);

	/* Without CLIPBOARD_SELECTION: no header, CLIPBOARD only. */
	vdagent_reset(va, false);
	guest_caps(va, false, false);
	sent_len = 0;
	CHECK_EQ(vdagent_grab(va, 1, (uint32_t[]){ 1 }, 1), -EINVAL);
	CHECK_EQ(vdagent_request(va, 0, VD_AGENT_CLIPBOARD_UTF8_TEXT), 0);
	n = vp_parse(sent, sent_len, m, 4);
	CHECK_EQ(n, 1);
	CHECK_EQ(m[0].size, 4);
	CHECK_EQ(vp_get32(m[0].data), VD_AGENT_CLIPBOARD_UTF8_TEXT);
	vp_free(m, n);
	{
		uint8_t p[4];

		vp_put32(p, VD_AGENT_CLIPBOARD_UTF8_TEXT);
		CHECK_EQ(feed(va, VD_AGENT_CLIPBOARD_REQUEST, p, 4, 0, 4), 0);
		CHECK(requests == 1 && last_sel == 0);
	}

	/* MONITORS_CONFIG: one monitor, height before width. */
	sent_len = 0;
	CHECK_EQ(vdagent_monitors_config(va, 1280, 800), 0);
	CHECK_EQ(vdagent_monitors_config(va, 0, 800), -EINVAL);
	n = vp_parse(sent, sent_len, m, 4);
	CHECK_EQ(n, 1);
	CHECK_EQ(m[0].type, VD_AGENT_MONITORS_CONFIG);
	CHECK_EQ(m[0].size, 28);
	CHECK_EQ(vp_get32(m[0].data), 1);
	CHECK_EQ(vp_get32(m[0].data + 8), 800);
	CHECK_EQ(vp_get32(m[0].data + 12), 1280);
	CHECK_EQ(vp_get32(m[0].data + 16), 32);
	vp_free(m, n);
	vdagent_free(va);
}

/* Raw chunk header + bytes. */
static int raw(struct vdagent *va, uint32_t port, uint32_t size,
	       const void *body, size_t len)
{
	uint8_t h[8];
	int r;

	vp_put32(h, port);
	vp_put32(h + 4, size);
	r = vdagent_input(va, h, 8);
	return r ? r : vdagent_input(va, body, len);
}

static void test_bad_framing(void)
{
	struct vdagent *va = vdagent_new(&ops, NULL);
	uint8_t hdr[24] = { 0 };
	uint8_t p[8] = { 0 };

	reset_counts();
	vdagent_reset(va, false);
	guest_caps(va, false, true);
	/* A bad chunk port: refused, and everything after it too. */
	CHECK_EQ(raw(va, 7, 4, p, 4), -EPROTO);
	CHECK_EQ(conn_down, 1);
	CHECK(!vdagent_connected(va));
	CHECK_EQ(feed(va, VD_AGENT_CLIPBOARD_RELEASE, p, 4, 0, 4), -EPROTO);
	/* A reset recovers. */
	vdagent_reset(va, false);
	guest_caps(va, false, true);
	CHECK_EQ(feed(va, VD_AGENT_CLIPBOARD_RELEASE, p, 4, 0, 4), 0);
	CHECK_EQ(releases, 1);
	/* A chunk over the bound. */
	CHECK_EQ(raw(va, 1, VDAGENT_MSG_MAX + 21, p, 0), -EPROTO);
	vdagent_reset(va, false);
	/* A message over the bound (no allocation of it). */
	vp_put32(hdr, VD_AGENT_PROTOCOL);
	vp_put32(hdr + 4, VD_AGENT_CLIPBOARD);
	vp_put32(hdr + 16, 0xffffffffu);
	CHECK_EQ(raw(va, 1, 20, hdr, 20), -EPROTO);
	vdagent_reset(va, false);
	/* Protocol 2. */
	vp_put32(hdr, 2);
	vp_put32(hdr + 16, 0);
	CHECK_EQ(raw(va, 1, 20, hdr, 20), -EPROTO);
	vdagent_reset(va, false);
	/* A chunk running past its message's end. */
	vp_put32(hdr, VD_AGENT_PROTOCOL);
	vp_put32(hdr + 4, VD_AGENT_CLIPBOARD_RELEASE);
	vp_put32(hdr + 16, 0);
	CHECK_EQ(raw(va, 1, 24, hdr, 24), -EPROTO);
	vdagent_reset(va, false);
	/* Empty chunks and a message split over both chunk ports work. */
	CHECK_EQ(raw(va, 1, 0, p, 0), 0);
	CHECK_EQ(raw(va, 2, 0, p, 0), 0);
	guest_caps(va, false, true);
	CHECK(vdagent_connected(va));
	vdagent_free(va);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	RUN_TEST(test_caps_exchange);
	RUN_TEST(test_clipboard_guest_to_host);
	RUN_TEST(test_clipboard_host_to_guest);
	RUN_TEST(test_bad_framing);
	free(sent);
	return check_finish();
}
