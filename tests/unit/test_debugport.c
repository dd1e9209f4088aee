/* SPDX-License-Identifier: MIT */
/* tests/unit/test_debugport.c - POST code port 0x80, the debug console at
 * 0x402 and the test-exit port 0x501. */
#include <errno.h>
#include <string.h>

#include <glib.h>

#include "testlib.h"

#include "host/chardev.h"
#include "devices/debugport.h"

static struct bus *pio;
static struct chardev *con;
static struct debugport *dbg;
static int exits;
static uint32_t exit_code;
static void *exit_opaque;

static void on_exit_port(void *opaque, uint32_t code)
{
	exits++;
	exit_code = code;
	exit_opaque = opaque;
}

static void setup(bool with_con)
{
	exits = 0;
	exit_code = 0;
	pio = bus_new("pio");
	con = with_con ? chardev_buffer_new() : NULL;
	dbg = debugport_new(con, on_exit_port, &exits);
	CHECK(dbg != NULL);
	CHECK_EQ(debugport_attach(dbg, pio), 0);
}

static void teardown(void)
{
	debugport_free(dbg);
	chardev_free(con);
	bus_free(pio);
}

static void test_post_code(void)
{
	setup(true);
	CHECK_EQ(debugport_post_code(dbg), 0);
	io_write(pio, POST_PORT, 0x55, 1);
	CHECK_EQ(debugport_post_code(dbg), 0x55);
	CHECK_EQ(io_read(pio, POST_PORT, 1), 0x55);
	/* Linux's io_delay writes garbage there; it just sticks. */
	io_write(pio, POST_PORT, 0x00, 1);
	CHECK_EQ(io_read(pio, POST_PORT, 1), 0x00);
	CHECK_EQ(exits, 0);
	teardown();
}

static void test_debugcon(void)
{
	const char *msg = "SeaBIOS (version 1.16)\n", *got;
	size_t len;

	setup(true);
	CHECK_EQ(io_read(pio, DEBUGCON_PORT, 1), 0xe9);
	for (const char *p = msg; *p; p++)
		io_write(pio, DEBUGCON_PORT, (uint8_t)*p, 1);
	got = chardev_buffer_data(con, &len);
	CHECK_EQ(len, strlen(msg));
	CHECK(got && !strcmp(got, msg));
	teardown();

	/* Without a console the bytes are dropped. */
	setup(false);
	io_write(pio, DEBUGCON_PORT, 'x', 1);
	CHECK_EQ(io_read(pio, DEBUGCON_PORT, 1), 0xe9);
	teardown();
}

static void test_exit_port(void)
{
	setup(true);
	io_write(pio, TEST_EXIT_PORT, 0x2a, 1);
	CHECK_EQ(exits, 1);
	CHECK_EQ(exit_code, 0x2a);
	CHECK(exit_opaque == &exits);
	io_write(pio, TEST_EXIT_PORT, 0x1234, 2);
	CHECK_EQ(exit_code, 0x1234);
	io_write(pio, TEST_EXIT_PORT, 0xdeadbeef, 4);
	CHECK_EQ(exits, 3);
	CHECK_EQ(exit_code, 0xdeadbeef);
	io_write(pio, TEST_EXIT_PORT, 0, 1);
	CHECK_EQ(exits, 4);
	CHECK_EQ(exit_code, 0);
	/* Not at the port itself: ignored. */
	io_write(pio, TEST_EXIT_PORT + 1, 7, 1);
	CHECK_EQ(exits, 4);
	teardown();
}

static void test_save_load(void)
{
	struct bus *pio2 = bus_new("pio2");
	struct debugport *d2 = debugport_new(NULL, on_exit_port, NULL);
	GVariant *a, *b;
	char err[128] = "";

	setup(false);
	CHECK_EQ(debugport_attach(d2, pio2), 0);
	io_write(pio, POST_PORT, 0x3c, 1);
	a = g_variant_ref_sink(debugport_device_ops.save(dbg));
	CHECK(g_variant_is_of_type(a, G_VARIANT_TYPE(DEBUGPORT_STATE_TYPE)));
	CHECK_EQ(debugport_device_ops.load(d2, 1, a, err, sizeof(err)), 0);
	b = g_variant_ref_sink(debugport_device_ops.save(d2));
	CHECK(g_variant_equal(a, b));
	CHECK_EQ(io_read(pio2, POST_PORT, 1), 0x3c);
	g_variant_unref(b);

	io_write(pio2, POST_PORT, 0x11, 1);
	CHECK_EQ(debugport_device_ops.load(d2, 2, a, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "debugport: state version 2 not supported") != NULL);
	b = g_variant_ref_sink(g_variant_new("(q)", 0x3c));
	CHECK_EQ(debugport_device_ops.load(d2, 1, b, err, sizeof(err)), -EINVAL);
	CHECK(strncmp(err, "debugport:", 10) == 0);
	CHECK_EQ(io_read(pio2, POST_PORT, 1), 0x11);
	g_variant_unref(b);
	g_variant_unref(a);
	debugport_free(d2);
	bus_free(pio2);
	teardown();
}

int main(void)
{
	RUN_TEST(test_post_code);
	RUN_TEST(test_debugcon);
	RUN_TEST(test_exit_port);
	RUN_TEST(test_save_load);
	return check_finish();
}
