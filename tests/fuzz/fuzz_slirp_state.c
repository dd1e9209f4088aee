/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_slirp_state.c - the NAT backend's saved state (section
 * net.N of a machine-state file: net/net.h net_state_load(), net/slirp.h)
 * on hostile input, loaded into one running NAT backend.  The first byte
 * picks what the rest is:
 *   0: libslirp's bytes, wrapped as this libslirp's state version writes
 *      them (so mutations reach our length check and libslirp's reader);
 *   1: a serialised GVariant of type "v", as a state file's payload (only
 *      normal form passes the state file's reader, so only that here).
 * A load must return 0 or -EINVAL with one line; a refused load leaves the
 * backend's state as it was (nothing half-loaded); a raw blob that loads
 * is what the backend then saves, byte for byte.  After each input the
 * backend goes back to its first state.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <slirp/libslirp.h>

#include "fuzz.h"
#include "log.h"
#include "net/slirp.h"

static struct netdev *nd;
static GVariant *baseline;	/* the backend's state when made */

static void setup(void)
{
	char err[256];

	if (nd)
		return;
	log_set_level(LOG_ERROR);	/* "not used" warnings, by the thousand */
	nd = net_slirp_new(NULL, err, sizeof(err));
	if (!nd) {
		fprintf(stderr, "fuzz_slirp_state: %s\n", err);
		abort();
	}
	baseline = g_variant_ref_sink(net_state_save(nd));
}

/* The libslirp bytes of a net_state_save() value (a new reference). */
static GBytes *blob_of(GVariant *st)
{
	GVariant *inner, *blob;
	const char *kind, *lib;
	guint32 ver;
	gint32 sv;
	GBytes *b;

	g_variant_get(st, "(&suv)", &kind, &ver, &inner);
	g_variant_get(inner, "(i&s@ay)", &sv, &lib, &blob);
	b = g_variant_get_data_as_bytes(blob);
	g_variant_unref(blob);
	g_variant_unref(inner);
	return b;
}

static GVariant *wrap(const uint8_t *data, size_t size)
{
	GVariant *inner = g_variant_new("(is@ay)", (gint32)slirp_state_version(),
					slirp_version_string(),
					g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE,
								  data, size, 1));

	return g_variant_ref_sink(g_variant_new("(suv)", "nat",
						(guint32)NET_SLIRP_STATE_VERSION,
						inner));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	GVariant *st = NULL, *now;
	GBytes *before, *after;
	char err[256] = "";
	int r;

	setup();
	if (size < 1 || size > 65536)
		return 0;
	if (data[0] == 0) {
		st = wrap(data + 1, size - 1);
	} else if (data[0] == 1) {
		GBytes *b = g_bytes_new(data + 1, size - 1);
		GVariant *v = g_variant_ref_sink(
			g_variant_new_from_bytes(G_VARIANT_TYPE_VARIANT, b, FALSE));

		g_bytes_unref(b);
		if (g_variant_is_normal_form(v))
			st = g_variant_get_variant(v);
		g_variant_unref(v);
		if (!st)
			return 0;
	} else {
		return 0;
	}
	now = g_variant_ref_sink(net_state_save(nd));
	before = blob_of(now);
	g_variant_unref(now);

	r = net_state_load(nd, st, err, sizeof(err));
	if (r != 0 && r != -EINVAL)
		abort();
	if (r < 0 && (!err[0] || strchr(err, '\n')))
		abort();		/* one line, always */

	now = g_variant_ref_sink(net_state_save(nd));
	after = blob_of(now);
	g_variant_unref(now);
	if (r < 0 && !g_bytes_equal(before, after))
		abort();		/* half-loaded */
	if (r == 0 && data[0] == 0 &&
	    (g_bytes_get_size(after) != size - 1 ||
	     memcmp(g_bytes_get_data(after, NULL), data + 1, size - 1)))
		abort();		/* loaded something else than given */
	g_bytes_unref(before);
	g_bytes_unref(after);
	g_variant_unref(st);

	if (net_state_load(nd, baseline, err, sizeof(err)) != 0)
		abort();
	return 0;
}

static void add_variant(void (*add)(const void *, size_t), GVariant *st)
{
	GVariant *v = g_variant_ref_sink(g_variant_new_variant(st));
	size_t n = g_variant_get_size(v);
	uint8_t *buf = malloc(n + 1);

	buf[0] = 1;
	memcpy(buf + 1, g_variant_get_data(v), n);
	add(buf, n + 1);
	free(buf);
	g_variant_unref(v);
}

void fuzz_make_seeds(void (*add)(const void *data, size_t len))
{
	GBytes *b;
	const uint8_t *p;
	uint8_t *raw;
	size_t n;

	setup();
	b = blob_of(baseline);
	p = g_bytes_get_data(b, &n);
	raw = malloc(n + 1);
	raw[0] = 0;
	memcpy(raw + 1, p, n);
	add(raw, n + 1);
	/* Two leases taken (the 16-bit "allocated" and the MAC of the first
	 * entries, after the end mark and the IP id), the IP id moved. */
	if (n >= 1 + 2 + 16) {
		static const uint8_t lease[8] = { 0, 1, 0x52, 0x54, 0, 0x12, 0x34, 0x56 };

		raw[1 + 1] = 0x12;
		memcpy(raw + 1 + 3, lease, 8);
		memcpy(raw + 1 + 11, lease, 8);
		raw[1 + 11 + 7] = 0x57;
		add(raw, n + 1);
	}
	free(raw);
	g_bytes_unref(b);
	add_variant(add, baseline);
	add_variant(add, g_variant_new("(suv)", "tap", 1u, g_variant_new_int32(0)));
	add_variant(add, g_variant_new("(suv)", "nat", 1u,
				       g_variant_new("(is@ay)", 99, "9.9",
						     g_variant_new_fixed_array(
							     G_VARIANT_TYPE_BYTE, "", 0, 1))));
}
