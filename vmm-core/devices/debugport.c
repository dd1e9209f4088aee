/* SPDX-License-Identifier: MIT */
/*
 * Ports for firmware and test guests: POST codes (0x80), the Bochs/SeaBIOS
 * debug console (0x402; reads return 0xe9, the "port present" answer Bochs
 * gives), and the test-exit port (0x501, any width 1-4).
 */
#include "debugport.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <glib.h>

#include "../bus.h"
#include "../host/chardev.h"

#define TEST_EXIT_LEN 4

struct debugport {
	struct chardev *con;
	void (*test_exit)(void *opaque, uint32_t code);
	void *opaque;
	uint8_t post;
};

static uint64_t post_read(void *opaque, uint64_t offset, unsigned size)
{
	struct debugport *d = opaque;

	(void)offset, (void)size;
	return d->post;
}

static void post_write(void *opaque, uint64_t offset, uint64_t value,
		       unsigned size)
{
	struct debugport *d = opaque;

	(void)offset, (void)size;
	d->post = (uint8_t)value;
}

static const struct bus_ops post_ops = {
	.name = "post",
	.read = post_read,
	.write = post_write,
};

static uint64_t con_read(void *opaque, uint64_t offset, unsigned size)
{
	(void)opaque, (void)offset, (void)size;
	return 0xe9;
}

static void con_write(void *opaque, uint64_t offset, uint64_t value,
		      unsigned size)
{
	struct debugport *d = opaque;
	uint8_t b = (uint8_t)value;

	(void)offset, (void)size;
	if (d->con)
		chardev_write(d->con, &b, 1);
}

static const struct bus_ops con_ops = {
	.name = "debugcon",
	.read = con_read,
	.write = con_write,
};

static uint64_t exit_read(void *opaque, uint64_t offset, unsigned size)
{
	(void)opaque, (void)offset, (void)size;
	return 0;
}

static void exit_write(void *opaque, uint64_t offset, uint64_t value,
		       unsigned size)
{
	struct debugport *d = opaque;

	/* Only accesses that start at the port itself. */
	if (offset == 0 && size >= 1 && size <= 4 && d->test_exit)
		d->test_exit(d->opaque, (uint32_t)value);
}

static const struct bus_ops exit_ops = {
	.name = "test-exit",
	.read = exit_read,
	.write = exit_write,
};

struct debugport *debugport_new(struct chardev *con,
				void (*test_exit)(void *opaque, uint32_t code),
				void *opaque)
{
	struct debugport *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->con = con;
	d->test_exit = test_exit;
	d->opaque = opaque;
	return d;
}

void debugport_free(struct debugport *d)
{
	free(d);
}

int debugport_attach(struct debugport *d, struct bus *pio)
{
	int r;

	r = bus_register(pio, POST_PORT, 1, &post_ops, d);
	if (r < 0)
		return r;
	r = bus_register(pio, DEBUGCON_PORT, 1, &con_ops, d);
	if (r < 0)
		goto err_post;
	r = bus_register(pio, TEST_EXIT_PORT, TEST_EXIT_LEN, &exit_ops, d);
	if (r < 0)
		goto err_con;
	return 0;
err_con:
	bus_unregister(pio, DEBUGCON_PORT);
err_post:
	bus_unregister(pio, POST_PORT);
	return r;
}

uint8_t debugport_post_code(const struct debugport *d)
{
	return d->post;
}

/* ---- the machine's device table ---------------------------------------- */

static void debugport_dev_free(void *dev)
{
	debugport_free(dev);
}

static GVariant *debugport_dev_save(void *dev)
{
	struct debugport *d = dev;

	return g_variant_new("(y)", d->post);
}

static int debugport_dev_load(void *dev, uint32_t version, GVariant *state,
			      char *err, size_t errlen)
{
	struct debugport *d = dev;
	int r;

	r = device_state_check("debugport", version, 1, state, DEBUGPORT_STATE_TYPE, err, errlen);
	if (r < 0)
		return r;
	g_variant_get(state, "(y)", &d->post);
	return 0;
}

const struct device_ops debugport_device_ops = {
	.name = "debugport",
	.save = debugport_dev_save,
	.load = debugport_dev_load,
	.state_version = 1,
	.free = debugport_dev_free,
};
