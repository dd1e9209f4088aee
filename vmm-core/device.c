/* SPDX-License-Identifier: MIT */
#include "device.h"

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
