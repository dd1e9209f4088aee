/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/device.h - one lifecycle for every device of the machine, and
 * the table the machine keeps them in.
 *
 * A device is a state struct plus a const struct device_ops, exported by
 * the device's header (e.g. pic_device_ops in devices/pic.h).  The
 * machine creates and wires each device itself (the constructors take
 * different arguments), then records it with device_table_add() in
 * creation order; teardown walks the table backwards, so whatever a device
 * was attached to (a PCI function's host bridge, a bus) outlives it.
 *
 * Teardown is two passes, both in reverse creation order:
 *  1. quiesce, without the device lock: wait for work the device started
 *     on other threads (IDE's and virtio-blk's in-flight disk requests,
 *     whose completions take the device lock);
 *  2. free, with the device lock held.
 */
#ifndef VIVARIUM_DEVICE_H
#define VIVARIUM_DEVICE_H

#include <stddef.h>
#include <stdint.h>

/* GLib's serialised value (glib/gvariant.h); only pointers pass here. */
typedef struct _GVariant GVariant;

struct device_ops {
	const char *name;	/* short and stable: a snapshot's section name */
	/* Back to the power-on state, as the device's own *_reset();
	 * NULL: the device has no state worth resetting in place. */
	void (*reset)(void *dev);
	/* Wait for the device's work on other threads to finish; called
	 * without the device lock, after the vCPUs and the timer thread
	 * stopped.  NULL: nothing to wait for. */
	void (*quiesce)(void *dev);
	/*
	 * save - the device's state as one GVariant of the type its header
	 * documents (a new floating reference), or NULL on failure.  Called
	 * with the device lock held, after quiesce, the vCPUs stopped.
	 *
	 * load - restore what save returned (written with @version ==
	 * state_version, or an older version the device still reads) into a
	 * freshly built and attached device, with the device lock held,
	 * before any vCPU runs.  The state file is outside input: check every
	 * index, length and enum before use, and refuse (-EINVAL, one line
	 * in @err naming the device) rather than clamp.  Afterwards the
	 * device re-derives what is not state (bus mappings of BARs, armed
	 * timers, host pointers from GPAs) and drives its output lines to
	 * the levels they had; receivers keep their own edge-detect state,
	 * so an unchanged level is no event.  Returns 0 or -errno.
	 *
	 * Both NULL: a machine with such a device refuses to take a snapshot
	 * (it could not be restored faithfully).
	 */
	GVariant *(*save)(void *dev);
	int (*load)(void *dev, uint32_t version, GVariant *state, char *err,
		    size_t errlen);
	uint32_t state_version;	/* of what save writes; 1 to start */
	/* Detach from the buses and free; NULL-safe; never NULL. */
	void (*free)(void *dev);
};

struct device {
	const struct device_ops *ops;
	void *opaque;		/* the device's state struct */
};

/* A PC's fixed devices plus a virtio-blk per drive, a NIC per card and a
 * virtio-9p per shared folder, with room to spare. */
#define DEVICE_TABLE_MAX 44

struct device_table {
	struct device dev[DEVICE_TABLE_MAX];
	unsigned n;		/* in creation order */
};

/* Record @opaque, just created, with @ops (ops->name and ops->free set).
 * Returns 0, -EINVAL for a NULL device or incomplete ops, -ENOSPC when
 * the table is full. */
int device_table_add(struct device_table *t, const struct device_ops *ops,
		     void *opaque);

/* ---- for the devices' load ops ------------------------------------------- */

/* One line in @err (may be NULL) from @fmt; returns -EINVAL. */
int device_load_fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * device_state_check - the start of every load: @version must be
 * @state_version (a device that reads older versions checks itself) and
 * @state of GVariant type @type.  0, or -EINVAL with "NAME: state version N
 * not supported" / "NAME: state is of type X, not Y" in @err.
 */
int device_state_check(const char *name, uint32_t version,
		       uint32_t state_version, GVariant *state,
		       const char *type, char *err, size_t errlen);

/* Teardown pass 1: quiesce every device, last created first. */
void device_table_quiesce(struct device_table *t);

/* Teardown pass 2: free every device, last created first, and empty the
 * table. */
void device_table_free(struct device_table *t);

#endif
