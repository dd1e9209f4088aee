/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_vmmouse.c - the VMware vmmouse through its backdoor
 * handler with a register struct, as Linux's psmouse vmmouse protocol
 * (drivers/input/mouse/vmmouse.c) drives it, on a real i8042 whose PS/2
 * mouse announces the packets, and with the console routing absolute
 * pointer events to it.
 */
#include "testlib.h"

#include <errno.h>
#include <glib.h>
#include <limits.h>

#include "devices/i8042.h"
#include "devices/vmmouse.h"
#include "display/console.h"
#include "statetest.h"

#define DATA 0x60
#define CMD 0x64
#define STS_OBF 0x01
#define STS_AUXOBF 0x20

static struct bus *pio;
static struct i8042 *kbc;
static struct vmmouse *vm;
static struct irq_recorder kbd_irq, aux_irq;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void outb_(uint16_t port, uint8_t v)
{
	io_write(pio, port, v, 1);
}

static void setup(void)
{
	pio = bus_new("pio");
	kbc = i8042_new(NULL, NULL, irq_recorder_line(&kbd_irq, 1),
			irq_recorder_line(&aux_irq, 12), NULL);
	CHECK(kbc != NULL);
	CHECK_EQ(i8042_attach(kbc, pio), 0);
	vm = vmmouse_new(kbc);
	CHECK(vm != NULL);
}

static void teardown(void)
{
	vmmouse_free(vm);
	i8042_free(kbc);
	bus_free(pio);
}

/* One backdoor IN: EAX magic, ECX @cmd, EBX @arg, EDX the port, as
 * Linux's VMMOUSE_CMD does; *@r gets the registers after. */
static uint32_t backdoor(uint32_t cmd, uint32_t arg, struct io_regs *r)
{
	struct io_regs regs = {
		.rax = VMPORT_MAGIC, .rbx = arg, .rcx = cmd,
		.rdx = VMPORT_PORT, .rsi = 0x1111, .rdi = 0x2222,
	};
	uint32_t eax = vmmouse_backdoor(vm, 4, false, 0, &regs);

	if (r)
		*r = regs;
	return eax;
}

static uint32_t status(void)
{
	return backdoor(VMPORT_CMD_ABSPOINTER_STATUS, 0, NULL);
}

/* Linux's vmmouse_enable(). */
static void linux_enable(void)
{
	CHECK_EQ(backdoor(VMPORT_CMD_ABSPOINTER_COMMAND, VMMOUSE_CMD_ENABLE, NULL),
		 VMPORT_MAGIC);
	CHECK_EQ(status(), 1);
	CHECK_EQ(backdoor(VMPORT_CMD_ABSPOINTER_DATA, 1, NULL), VMMOUSE_VERSION_ID);
	CHECK_EQ(status(), 0);
	backdoor(VMPORT_CMD_ABSPOINTER_RESTRICT, 1, NULL);
	CHECK(!vmmouse_active(vm));
	backdoor(VMPORT_CMD_ABSPOINTER_COMMAND, VMMOUSE_CMD_REQUEST_ABSOLUTE, NULL);
	CHECK(vmmouse_active(vm));
}

/* psmouse's activation: stream reporting on (0xd4 0xf4), ACK read. */
static void ps2_enable_reporting(void)
{
	outb_(CMD, 0xd4);
	outb_(DATA, 0xf4);
	CHECK_EQ(io_read(pio, CMD, 1) & (STS_OBF | STS_AUXOBF), STS_OBF | STS_AUXOBF);
	CHECK_EQ(io_read(pio, DATA, 1), 0xfa);
}

/* Reads the next packet; CHECKs it is a PS/2 mouse packet of @n bytes. */
static void expect_ps2_packet(const uint8_t *want, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint8_t st = (uint8_t)io_read(pio, CMD, 1);

		CHECK_EQ(st & (STS_OBF | STS_AUXOBF), STS_OBF | STS_AUXOBF);
		CHECK_EQ(io_read(pio, DATA, 1), want[i]);
	}
}

/* Drains one 4-word packet as Linux's vmmouse_report_events() does. */
static void read_packet(uint32_t *flags, uint32_t *x, uint32_t *y, uint32_t *z)
{
	struct io_regs r;
	uint32_t st = status();

	CHECK(st != VMMOUSE_ERROR);
	CHECK((st & 0xffff) >= 4);
	CHECK_EQ((st & 0xffff) % 4, 0);
	*flags = backdoor(VMPORT_CMD_ABSPOINTER_DATA, 4, &r);
	*x = (uint32_t)r.rbx;
	*y = (uint32_t)r.rcx;
	*z = (uint32_t)r.rdx;
	/* Four words: ESI and EDI untouched. */
	CHECK_EQ(r.rsi, 0x1111);
	CHECK_EQ(r.rdi, 0x2222);
}

/* ---- the tests ------------------------------------------------------------ */

static void test_detect_and_hostile(void)
{
	struct io_regs r = { .rax = 0x12345678, .rbx = 5, .rcx = 10, .rdx = 0x5658 };
	struct io_regs was;

	setup();
	/* vmmouse_detect(): GETVERSION with EBX = ~magic. */
	CHECK_EQ(backdoor(VMPORT_CMD_GETVERSION, ~VMPORT_MAGIC, &was), VMPORT_VERSION);
	CHECK_EQ(was.rbx, VMPORT_MAGIC);
	CHECK_EQ(was.rcx, VMPORT_CMD_GETVERSION);
	CHECK_EQ(was.rdx, VMPORT_PORT);
	/* Wrong magic: all-ones, nothing else touched. */
	was = r;
	CHECK_EQ(vmmouse_backdoor(vm, 4, false, 0, &r), 0xffffffffu);
	CHECK(!memcmp(&r, &was, sizeof(r)));
	/* The magic in RAX's high half does not count. */
	r.rax = (uint64_t)VMPORT_MAGIC << 32;
	CHECK_EQ(vmmouse_backdoor(vm, 4, false, 0, &r), 0xffffffffu);
	/* Unknown commands, other widths, OUT. */
	CHECK_EQ(backdoor(11, 0, NULL), 0xffffffffu);
	CHECK_EQ(backdoor(0xffff, 0, NULL), 0xffffffffu);
	r = (struct io_regs){ .rax = VMPORT_MAGIC, .rcx = 10 };
	was = r;
	CHECK_EQ(vmmouse_backdoor(vm, 1, false, 0, &r), 0xffffffffu);
	CHECK_EQ(vmmouse_backdoor(vm, 2, false, 0, &r), 0xffffffffu);
	CHECK_EQ(vmmouse_backdoor(vm, 4, true, 0x1234, &r), 0xffffffffu);
	CHECK(!memcmp(&r, &was, sizeof(r)));
	/* ECX's high half is not the command: 0x1000a is GETVERSION. */
	CHECK_EQ(backdoor(0x1000a, 0, NULL), VMPORT_VERSION);
	/* Disabled: STATUS is the error; DATA of an empty queue too. */
	CHECK_EQ(status(), VMMOUSE_ERROR);
	CHECK_EQ(backdoor(VMPORT_CMD_ABSPOINTER_DATA, 4, &r), VMMOUSE_ERROR);
	CHECK_EQ(r.rbx, 4);
	CHECK_EQ(backdoor(VMPORT_CMD_ABSPOINTER_COMMAND, 0xdeadbeef, NULL), VMPORT_MAGIC);
	/* REQUEST_ABSOLUTE while disabled does nothing. */
	backdoor(VMPORT_CMD_ABSPOINTER_COMMAND, VMMOUSE_CMD_REQUEST_ABSOLUTE, NULL);
	CHECK(!vmmouse_active(vm));
	CHECK_EQ(status(), VMMOUSE_ERROR);
	teardown();
}

/* Enable as Linux does; DATA asking too much is the error: disabled. */
static void test_enable_disable_errors(void)
{
	static const uint32_t bad[] = { 0, 7, 0xffffffffu, 2 };

	setup();
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		linux_enable();
		CHECK_EQ(backdoor(VMPORT_CMD_ABSPOINTER_DATA, bad[i], NULL),
			 VMMOUSE_ERROR);
		CHECK_EQ(status(), VMMOUSE_ERROR);
		CHECK(!vmmouse_active(vm));
	}
	linux_enable();
	/* vmmouse_disable(): DISABLE, then STATUS must show the error. */
	backdoor(VMPORT_CMD_ABSPOINTER_COMMAND, VMMOUSE_CMD_DISABLE, NULL);
	CHECK_EQ(status(), VMMOUSE_ERROR);
	CHECK(!vmmouse_active(vm));
	/* ENABLE twice: the queue holds one version word, not two. */
	backdoor(VMPORT_CMD_ABSPOINTER_COMMAND, VMMOUSE_CMD_ENABLE, NULL);
	backdoor(VMPORT_CMD_ABSPOINTER_COMMAND, VMMOUSE_CMD_ENABLE, NULL);
	CHECK_EQ(status(), 1);
	/* REQUEST_RELATIVE leaves absolute mode. */
	linux_enable();
	backdoor(VMPORT_CMD_ABSPOINTER_COMMAND, VMMOUSE_CMD_REQUEST_RELATIVE, NULL);
	CHECK(!vmmouse_active(vm));
	CHECK_EQ(status(), 0);
	teardown();
}

/* The console's absolute events: a packet each, announced on IRQ 12 by a
 * motionless PS/2 packet, pixel -> 0..0xffff -> the same pixel. */
static void test_console_abs_events(void)
{
	struct console *con = console_new();	/* 640x480 */
	static const uint8_t notify_left[] = { 0x09, 0, 0 };
	static const uint8_t notify_none[] = { 0x08, 0, 0 };
	uint32_t f, x, y, z;
	unsigned rises;

	setup();
	CHECK_EQ(console_add_input(con, &vmmouse_input_ops, vm, &lock), 0);
	CHECK(console_pointer_abs(con) == NULL);
	CHECK(!console_mouse_abs(con, 1, 1, 0, 0));
	CHECK_EQ(status(), VMMOUSE_ERROR);
	ps2_enable_reporting();
	linux_enable();
	CHECK(!strcmp(console_pointer_abs(con), "vmmouse"));

	rises = aux_irq.rises;
	CHECK(console_mouse_abs(con, 320, 479, 1, CONSOLE_BTN_LEFT));
	CHECK_EQ(aux_irq.rises, rises + 1);
	CHECK_EQ(status(), 4);
	expect_ps2_packet(notify_left, 3);
	read_packet(&f, &x, &y, &z);
	CHECK_EQ(f, VMMOUSE_LEFT_BUTTON);
	CHECK_EQ(x, console_abs_scale(320, 640, 0xffff));
	CHECK_EQ(y, console_abs_scale(479, 480, 0xffff));
	CHECK_EQ(x, 32819);	/* (2*320+1) * 65536 / 1280 */
	CHECK_EQ(y, 65467);	/* (2*479+1) * 65536 / 960 */
	/* What the guest computes back (libinput: v * size / 65536). */
	CHECK_EQ(x * 640u / 0x10000, 320);
	CHECK_EQ(y * 480u / 0x10000, 479);
	CHECK_EQ(z, 1);		/* Linux: REL_WHEEL -1, scrolling down */
	CHECK_EQ(status(), 0);

	/* Every pixel of a row and a column comes back. */
	for (unsigned px = 0; px < 640; px += 1) {
		CHECK(console_mouse_abs(con, px, 0, 0, 0));
		read_packet(&f, &x, &y, &z);
		CHECK_EQ(x * 640u / 0x10000, px);
		CHECK_EQ(((uint64_t)x * 639 + 0x7fff) / 0xffff, px);
	}
	for (unsigned py = 0; py < 480; py++) {
		CHECK(console_mouse_abs(con, 0, py, 0, 0));
		read_packet(&f, &x, &y, &z);
		CHECK_EQ(y * 480u / 0x10000, py);
	}
	/* Drain the notifications the loop queued (one at a time: no new one
	 * while one is still queued). */
	while (io_read(pio, CMD, 1) & STS_OBF)
		io_read(pio, DATA, 1);

	/* Right + middle, wheel up. */
	CHECK(console_mouse_abs(con, 639, 0, -1,
				CONSOLE_BTN_RIGHT | CONSOLE_BTN_MIDDLE));
	read_packet(&f, &x, &y, &z);
	CHECK_EQ(f, VMMOUSE_RIGHT_BUTTON | VMMOUSE_MIDDLE_BUTTON);
	CHECK_EQ(x, console_abs_scale(639, 640, 0xffff));
	CHECK_EQ(z, 0xffffffffu);
	while (io_read(pio, CMD, 1) & STS_OBF)
		io_read(pio, DATA, 1);
	/* Two events before the guest reads: one notification (an IRQ per
	 * byte), 8 words. */
	rises = aux_irq.rises;
	console_mouse_abs(con, 10, 10, 0, CONSOLE_BTN_LEFT);
	console_mouse_abs(con, 20, 20, 0, 0);
	CHECK_EQ(status(), 8);
	expect_ps2_packet(notify_left, 3);
	CHECK_EQ(io_read(pio, CMD, 1) & STS_OBF, 0);
	CHECK_EQ(aux_irq.rises, rises + 3);
	read_packet(&f, &x, &y, &z);
	CHECK_EQ(f, VMMOUSE_LEFT_BUTTON);
	read_packet(&f, &x, &y, &z);
	CHECK_EQ(f, 0);
	CHECK_EQ(x * 640u / 0x10000, 20);
	/* The next event notifies again. */
	console_mouse_abs(con, 30, 30, 0, 0);
	expect_ps2_packet(notify_none, 3);

	/* The guest disables: the console falls back to relative. */
	backdoor(VMPORT_CMD_ABSPOINTER_COMMAND, VMMOUSE_CMD_DISABLE, NULL);
	CHECK(console_pointer_abs(con) == NULL);
	CHECK(!console_mouse_abs(con, 1, 1, 0, 0));
	console_remove_input(con, &vmmouse_input_ops, vm);
	console_free(con);
	teardown();
}

/* Without reporting on (stream mode), nothing is announced; the queue
 * still fills, up to its bound, keeping the newest state. */
static void test_queue_bound(void)
{
	struct console *con = console_new();
	uint32_t f, x, y, z, st;

	setup();
	CHECK_EQ(console_add_input(con, &vmmouse_input_ops, vm, &lock), 0);
	linux_enable();
	for (unsigned i = 0; i < 1000; i++)
		console_mouse_abs(con, i % 640, 5, 1,
				  i & 1 ? CONSOLE_BTN_LEFT : 0);
	CHECK_EQ(aux_irq.rises, 0);
	CHECK_EQ(io_read(pio, CMD, 1) & STS_OBF, 0);
	st = status();
	CHECK_EQ(st, VMMOUSE_QUEUE_WORDS);
	for (unsigned i = 0; i < VMMOUSE_QUEUE_WORDS / 4 - 1; i++)
		read_packet(&f, &x, &y, &z);
	/* The last packet: the last event, the wheel of the merged ones
	 * (saturated). */
	read_packet(&f, &x, &y, &z);
	CHECK_EQ(f, VMMOUSE_LEFT_BUTTON);
	CHECK_EQ(x * 640u / 0x10000, 999 % 640);
	CHECK_EQ(z, 127);
	CHECK_EQ(status(), 0);
	/* Relative packets merge into a full queue's last relative one. */
	for (unsigned i = 0; i < VMMOUSE_QUEUE_WORDS / 4 + 2; i++)
		i8042_mouse_event(kbc, 3, -1, 0, 0);
	for (unsigned i = 0; i < VMMOUSE_QUEUE_WORDS / 4 - 1; i++) {
		read_packet(&f, &x, &y, &z);
		CHECK_EQ((int32_t)x, 3);
	}
	read_packet(&f, &x, &y, &z);
	CHECK_EQ(f, VMMOUSE_RELATIVE_PACKET);
	CHECK_EQ((int32_t)x, 9);
	CHECK_EQ((int32_t)y, 3);
	/* An empty queue: DATA is the error. */
	CHECK_EQ(backdoor(VMPORT_CMD_ABSPOINTER_DATA, 1, NULL), VMMOUSE_ERROR);
	CHECK_EQ(status(), VMMOUSE_ERROR);
	console_remove_input(con, &vmmouse_input_ops, vm);
	console_free(con);
	teardown();
}

/* The PS/2 mouse's own host input while the vmmouse is on. */
static void test_relative_path(void)
{
	static const uint8_t notify_left[] = { 0x09, 0, 0 };
	uint32_t f, x, y, z;

	setup();
	ps2_enable_reporting();
	/* Disabled: plain PS/2 motion (+y down becomes +y up, 0x28 sign). */
	i8042_mouse_event(kbc, 5, 3, 0, 0);
	{
		static const uint8_t want[] = { 0x28, 5, 0xfd };

		expect_ps2_packet(want, 3);
	}
	/* Enabled, relative mode: through the queue, y up, the PS/2 packet
	 * only the notification. */
	backdoor(VMPORT_CMD_ABSPOINTER_COMMAND, VMMOUSE_CMD_ENABLE, NULL);
	backdoor(VMPORT_CMD_ABSPOINTER_DATA, 1, NULL);
	i8042_mouse_event(kbc, 5, 3, -2, CONSOLE_BTN_LEFT);
	expect_ps2_packet(notify_left, 3);
	read_packet(&f, &x, &y, &z);
	CHECK_EQ(f, VMMOUSE_RELATIVE_PACKET | VMMOUSE_LEFT_BUTTON);
	CHECK_EQ((int32_t)x, 5);
	CHECK_EQ((int32_t)y, -3);
	CHECK_EQ((int32_t)z, -2);
	/* Absolute mode: a frontend's relative motion still goes through,
	 * as relative packets (the PS/2 packet's content is ignored). */
	backdoor(VMPORT_CMD_ABSPOINTER_COMMAND, VMMOUSE_CMD_REQUEST_ABSOLUTE, NULL);
	i8042_mouse_event(kbc, -7, -9, 0, CONSOLE_BTN_MIDDLE);
	read_packet(&f, &x, &y, &z);
	CHECK_EQ(f, VMMOUSE_RELATIVE_PACKET | VMMOUSE_MIDDLE_BUTTON);
	CHECK_EQ((int32_t)x, -7);
	CHECK_EQ((int32_t)y, 9);
	/* Extreme motion saturates instead of wrapping. */
	i8042_mouse_event(kbc, 0, INT_MIN, 1000, 0);
	read_packet(&f, &x, &y, &z);
	CHECK_EQ((int32_t)y, INT32_MAX);
	CHECK_EQ((int32_t)z, 127);
	/* Out-of-range absolute values are clamped. */
	vmmouse_input_ops.abs(vm, 0x12345, 0xffffffffu, 0, 0);
	read_packet(&f, &x, &y, &z);
	CHECK_EQ(x, 0xffff);
	CHECK_EQ(y, 0xffff);
	teardown();
}

/* The guest's PS/2 mouse reset and a machine reset both disable it. */
static void test_resets(void)
{
	setup();
	linux_enable();
	vmmouse_input_ops.abs(vm, 1, 2, 0, 0);
	outb_(CMD, 0xd4);
	outb_(DATA, 0xff);		/* psmouse_reset() */
	CHECK(!vmmouse_active(vm));
	CHECK_EQ(status(), VMMOUSE_ERROR);
	CHECK_EQ(io_read(pio, DATA, 1), 0xfa);
	CHECK_EQ(io_read(pio, DATA, 1), 0xaa);
	CHECK_EQ(io_read(pio, DATA, 1), 0x00);
	/* Linux's reconnect: reset, disable, enable. */
	linux_enable();
	vmmouse_device_ops.reset(vm);
	CHECK(!vmmouse_active(vm));
	CHECK_EQ(status(), VMMOUSE_ERROR);
	/* Other mouse commands leave it alone. */
	linux_enable();
	outb_(CMD, 0xd4);
	outb_(DATA, 0xf6);
	CHECK(vmmouse_active(vm));
	teardown();
}

static void test_save_load(void)
{
	const struct device_ops *ops = &vmmouse_device_ops;
	struct vmmouse *copy, *orig;
	GVariant *s, *s2;
	uint32_t f, x, y, z;
	char err[256] = "";
	uint32_t big[VMMOUSE_QUEUE_WORDS + 1] = { 0 };

	setup();
	CHECK(g_variant_is_of_type(s = g_variant_ref_sink(ops->save(vm)),
				   G_VARIANT_TYPE(VMMOUSE_STATE_TYPE)));
	g_variant_unref(s);
	linux_enable();
	vmmouse_input_ops.abs(vm, 100, 200, 3, CONSOLE_BTN_RIGHT);
	vmmouse_input_ops.abs(vm, 300, 400, 0, 0);
	s = g_variant_ref_sink(ops->save(vm));

	copy = vmmouse_new(NULL);
	CHECK_EQ(ops->load(copy, ops->state_version, s, err, sizeof(err)), 0);
	s2 = g_variant_ref_sink(ops->save(copy));
	CHECK(g_variant_equal(s, s2));
	g_variant_unref(s2);
	orig = vm;
	{
		vm = copy;
		CHECK(vmmouse_active(vm));
		CHECK_EQ(status(), 8);
		read_packet(&f, &x, &y, &z);
		CHECK_EQ(f, VMMOUSE_RIGHT_BUTTON);
		CHECK_EQ(x, 100);
		CHECK_EQ(y, 200);
		CHECK_EQ(z, 3);
		read_packet(&f, &x, &y, &z);
		CHECK_EQ(x, 300);
		vm = orig;
	}

	/* Refusals leave the device as it was. */
	state_refused(ops, copy, 2, g_variant_ref(s), "vmmouse: state version 2");
	state_refused(ops, copy, 1, g_variant_new("(bb)", TRUE, TRUE),
		      "vmmouse: state is of type");
	state_refused(ops, copy, 1,
		      state_with(s, g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32,
				 big, VMMOUSE_QUEUE_WORDS + 1, 4), 1, 2),
		      "vmmouse: 257 words queued");
	state_refused(ops, copy, 1,
		      state_with(s, g_variant_new_boolean(FALSE), 1, 0),
		      "vmmouse: disabled, yet absolute");
	{
		GVariant *t = state_with(s, g_variant_new_boolean(FALSE), 1, 0);

		state_refused(ops, copy, 1,
			      state_with(t, g_variant_new_boolean(FALSE), 1, 1),
			      "vmmouse: disabled, yet words queued");
		g_variant_unref(t);
	}
	/* A full queue loads. */
	{
		GVariant *full = state_with(s, g_variant_new_fixed_array(
			G_VARIANT_TYPE_UINT32, big, VMMOUSE_QUEUE_WORDS, 4), 1, 2);

		CHECK_EQ(ops->load(copy, 1, full, err, sizeof(err)), 0);
		vm = copy;
		CHECK_EQ(status(), VMMOUSE_QUEUE_WORDS);
		vm = orig;
		g_variant_unref(full);
	}
	g_variant_unref(s);
	ops->free(copy);
	teardown();
}

int main(void)
{
	RUN_TEST(test_detect_and_hostile);
	RUN_TEST(test_enable_disable_errors);
	RUN_TEST(test_console_abs_events);
	RUN_TEST(test_queue_bound);
	RUN_TEST(test_relative_path);
	RUN_TEST(test_resets);
	RUN_TEST(test_save_load);
	return check_finish();
}
