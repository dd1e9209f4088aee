/* SPDX-License-Identifier: MIT */
/* tests/unit/statetest.h - helpers for the device save/load tests: edit one
 * value deep inside a saved state (to make it invalid), and check that a
 * refused load left the device as it was.  Header-only; GLib. */
#ifndef VIVARIUM_STATETEST_H
#define VIVARIUM_STATETEST_H

#include <stdarg.h>
#include <string.h>

#include <glib.h>

#include "check.h"
#include "device.h"

static GVariant *state_with_path__(GVariant *v, const unsigned *path,
				   unsigned depth, GVariant *val)
{
	gsize n;
	GVariant **kids;
	GVariant *out;

	if (!depth)
		return val;
	n = g_variant_n_children(v);
	kids = g_new(GVariant *, n ? n : 1);
	for (gsize i = 0; i < n; i++) {
		GVariant *c = g_variant_get_child_value(v, i);

		if (i == path[0]) {
			kids[i] = state_with_path__(c, path + 1, depth - 1, val);
			g_variant_unref(c);
		} else {
			kids[i] = c;
		}
	}
	if (g_variant_is_of_type(v, G_VARIANT_TYPE_TUPLE))
		out = g_variant_new_tuple(kids, n);
	else
		out = g_variant_new_array(g_variant_type_element(g_variant_get_type(v)),
					  kids, n);
	/* The new container took references of its own to the children
	 * g_variant_get_child_value() gave us (the replaced one was
	 * floating and is consumed). */
	for (gsize i = 0; i < n; i++)
		if (i != path[0])
			g_variant_unref(kids[i]);
	g_free(kids);
	return out;
}

/* A copy of @v (tuples and arrays) with the value at the @depth indices
 * that follow replaced by @val (a floating reference, consumed).  Returns
 * a new reference (g_variant_unref it). */
static inline GVariant *state_with(GVariant *v, GVariant *val, unsigned depth,
				   ...)
{
	unsigned path[16];
	va_list ap;
	GVariant *r;

	va_start(ap, depth);
	for (unsigned i = 0; i < depth && i < 16; i++)
		path[i] = va_arg(ap, unsigned);
	va_end(ap);
	r = state_with_path__(v, path, depth, val);
	return g_variant_ref_sink(r);
}

/* Load @bad into @dev through @ops: CHECK that it is refused with -EINVAL
 * and a line starting with @prefix, and that the device saves the same
 * state as before.  Consumes @bad: a floating reference (g_variant_new)
 * or a full one (state_with, g_variant_ref). */
static inline void state_refused(const struct device_ops *ops, void *dev,
				 uint32_t version, GVariant *bad,
				 const char *prefix)
{
	GVariant *before = g_variant_ref_sink(ops->save(dev));
	GVariant *after;
	char err[256] = "";

	if (g_variant_is_floating(bad))
		g_variant_ref_sink(bad);
	CHECK_EQ(ops->load(dev, version, bad, err, sizeof(err)), -EINVAL);
	if (!err[0])
		fprintf(stderr, "  (accepted; wanted: %s)\n", prefix);
	CHECK(strncmp(err, prefix, strlen(prefix)) == 0);
	if (strncmp(err, prefix, strlen(prefix)))
		fprintf(stderr, "  (error line: '%s')\n", err);
	after = g_variant_ref_sink(ops->save(dev));
	CHECK(g_variant_equal(before, after));
	g_variant_unref(after);
	g_variant_unref(before);
	g_variant_unref(bad);
}

#endif
