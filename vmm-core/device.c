/* SPDX-License-Identifier: MIT */
#include "device.h"

#include <stdarg.h>
#include <stdio.h>

#include <glib.h>

#include <errno.h>

int device_table_add(struct device_table *t, const struct device_ops *ops,
		     void *opaque)
{
	if (!opaque || !ops || !ops->name || !ops->free)
		return -EINVAL;
	if (t->n >= DEVICE_TABLE_MAX)
		return -ENOSPC;
	t->dev[t->n++] = (struct device){ .ops = ops, .opaque = opaque };
	return 0;
}

void device_table_quiesce(struct device_table *t)
{
	for (unsigned i = t->n; i-- > 0;)
		if (t->dev[i].ops->quiesce)
			t->dev[i].ops->quiesce(t->dev[i].opaque);
}

void device_table_free(struct device_table *t)
{
	for (unsigned i = t->n; i-- > 0;)
		t->dev[i].ops->free(t->dev[i].opaque);
	t->n = 0;
}

int device_load_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

int device_state_check(const char *name, uint32_t version,
		       uint32_t state_version, GVariant *state,
		       const char *type, char *err, size_t errlen)
{
	if (version != state_version)
		return device_load_fail(err, errlen, "%s: state version %u not supported",
					name, version);
	if (!state || !g_variant_is_of_type(state, G_VARIANT_TYPE(type)))
		return device_load_fail(err, errlen, "%s: state is of type %s, not %s", name,
					state ? g_variant_get_type_string(state) : "none",
					type);
	return 0;
}
