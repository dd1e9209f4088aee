/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for vmm-core/display/console.c's input routing: keys to the
 * active keyboard or PS/2, absolute pointing to the active pointer by
 * priority, console_abs_scale() landing back on the pixel, and size
 * requests reaching the adapter.
 */
#include <errno.h>
#include <linux/input-event-codes.h>
#include <string.h>

#include "check.h"
#include "display/console.h"

struct rec {
	pthread_mutex_t lock;
	bool active;
	unsigned nkeys, last_key, nabs, x, y, buttons;
	int dz;
	unsigned leds;
};

static void rec_key(void *o, unsigned k, bool down)
{
	struct rec *r = o;

	(void)down;
	r->nkeys++;
	r->last_key = k;
}

static void rec_mouse(void *o, int dx, int dy, int dz, unsigned b)
{
	(void)o; (void)dx; (void)dy; (void)dz; (void)b;
}

static unsigned rec_leds(void *o)
{
	return ((struct rec *)o)->leds;
}

static bool rec_active(void *o)
{
	return ((struct rec *)o)->active;
}

static void rec_abs(void *o, unsigned x, unsigned y, int dz, unsigned b)
{
	struct rec *r = o;

	r->nabs++;
	r->x = x;
	r->y = y;
	r->dz = dz;
	r->buttons = b;
}

static const struct console_input_ops ps2_ops = {
	.key = rec_key, .mouse = rec_mouse, .leds = rec_leds,
};
static const struct console_input_dev_ops kbd_ops = {
	.name = "virtio-keyboard", .caps = CONSOLE_INPUT_KEY,
	.active = rec_active, .key = rec_key, .leds = rec_leds,
};
static const struct console_input_dev_ops tablet_ops = {
	.name = "virtio-tablet", .caps = CONSOLE_INPUT_ABS, .prio = 0,
	.active = rec_active, .abs = rec_abs,
};
static const struct console_input_dev_ops vmmouse_ops = {
	.name = "vmmouse", .caps = CONSOLE_INPUT_ABS, .prio = 1,
	.active = rec_active, .abs = rec_abs,
};

static const struct console_input_dev_ops wide_ops = {
	.name = "wide", .caps = CONSOLE_INPUT_ABS, .abs_max = 0xffff,
	.active = rec_active, .abs = rec_abs,
};

static void rec_init(struct rec *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
}

static void test_keys_follow_active_keyboard(void)
{
	struct console *con = console_new();
	struct rec ps2, kbd;

	rec_init(&ps2);
	rec_init(&kbd);
	ps2.leds = CONSOLE_LED_NUM;
	kbd.leds = CONSOLE_LED_CAPS;
	console_set_input(con, &ps2_ops, &ps2, &ps2.lock);
	CHECK_EQ(console_add_input(con, &kbd_ops, &kbd, &kbd.lock), 0);
	console_key(con, KEY_A, true);
	CHECK_EQ(ps2.nkeys, 1);
	CHECK_EQ(kbd.nkeys, 0);
	CHECK(!strcmp(console_keyboard(con), "ps2"));
	CHECK_EQ(console_leds(con), CONSOLE_LED_NUM);
	kbd.active = true;
	console_key(con, KEY_B, true);
	CHECK_EQ(ps2.nkeys, 1);
	CHECK_EQ(kbd.nkeys, 1);
	CHECK_EQ(kbd.last_key, KEY_B);
	CHECK(!strcmp(console_keyboard(con), "virtio-keyboard"));
	CHECK_EQ(console_leds(con), CONSOLE_LED_CAPS);
	console_remove_input(con, &kbd_ops, &kbd);
	console_key(con, KEY_C, true);
	CHECK_EQ(ps2.nkeys, 2);
	console_set_input(con, NULL, NULL, NULL);
	console_free(con);
}

/* A key held on PS/2 when the guest's keyboard driver takes over is let
 * go on PS/2 (whose i8042 would repeat it otherwise); the next press of
 * it goes to the new keyboard, and so does its release. */
static void test_ps2_release_follows_press(void)
{
	struct console *con = console_new();
	struct rec ps2, kbd;

	rec_init(&ps2);
	rec_init(&kbd);
	console_set_input(con, &ps2_ops, &ps2, &ps2.lock);
	CHECK_EQ(console_add_input(con, &kbd_ops, &kbd, &kbd.lock), 0);
	console_key(con, KEY_LEFTSHIFT, true);
	kbd.active = true;
	console_key(con, KEY_LEFTSHIFT, false);
	CHECK_EQ(ps2.nkeys, 2);
	CHECK_EQ(ps2.last_key, KEY_LEFTSHIFT);
	CHECK_EQ(kbd.nkeys, 0);
	console_key(con, KEY_LEFTSHIFT, true);
	console_key(con, KEY_LEFTSHIFT, false);
	CHECK_EQ(ps2.nkeys, 2);
	CHECK_EQ(kbd.nkeys, 2);
	/* A new PS/2 device (a rebuilt machine) starts with nothing held. */
	kbd.active = false;
	console_key(con, KEY_Z, true);
	console_set_input(con, &ps2_ops, &ps2, &ps2.lock);
	kbd.active = true;
	console_key(con, KEY_Z, false);
	CHECK_EQ(ps2.nkeys, 3);
	CHECK_EQ(kbd.nkeys, 3);
	console_remove_input(con, &kbd_ops, &kbd);
	console_set_input(con, NULL, NULL, NULL);
	console_free(con);
}

static void test_abs_priority_and_fallback(void)
{
	struct console *con = console_new();	/* 640x480 */
	struct rec tab, vmm;

	rec_init(&tab);
	rec_init(&vmm);
	/* Added in the "wrong" order: prio decides. */
	CHECK_EQ(console_add_input(con, &vmmouse_ops, &vmm, &vmm.lock), 0);
	CHECK_EQ(console_add_input(con, &tablet_ops, &tab, &tab.lock), 0);
	CHECK(console_pointer_abs(con) == NULL);
	CHECK(!console_mouse_abs(con, 10, 10, 0, 0));
	CHECK_EQ(tab.nabs + vmm.nabs, 0);

	vmm.active = true;
	CHECK(!strcmp(console_pointer_abs(con), "vmmouse"));
	CHECK(console_mouse_abs(con, 0, 0, 1, CONSOLE_BTN_LEFT));
	CHECK_EQ(vmm.nabs, 1);
	CHECK_EQ(vmm.dz, 1);
	CHECK_EQ(vmm.buttons, CONSOLE_BTN_LEFT);

	tab.active = true;
	CHECK(!strcmp(console_pointer_abs(con), "virtio-tablet"));
	CHECK(console_mouse_abs(con, 639, 479, 0, 0));
	CHECK_EQ(tab.nabs, 1);
	CHECK_EQ(vmm.nabs, 1);
	CHECK(tab.x <= CONSOLE_ABS_MAX && tab.y <= CONSOLE_ABS_MAX);
	CHECK_EQ(tab.x * 640 / (CONSOLE_ABS_MAX + 1), 639);
	CHECK_EQ(tab.y * 480 / (CONSOLE_ABS_MAX + 1), 479);

	console_remove_input(con, &tablet_ops, &tab);
	console_remove_input(con, &vmmouse_ops, &vmm);
	CHECK(console_pointer_abs(con) == NULL);
	console_free(con);
}

/* Every pixel of common widths comes back under both ways guests scale. */
static void test_abs_scale_round_trips(void)
{
	static const unsigned sizes[] = { 1, 2, 3, 480, 640, 720, 768, 800,
					  1024, 1080, 1280, 1366, 1920, 2560 };
	static const unsigned maxes[] = { 0x7fff, 0xffff, 4095 };

	for (unsigned m = 0; m < 3; m++) {
		unsigned max = maxes[m];

		for (unsigned s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			unsigned size = sizes[s], bad = 0;

			for (unsigned p = 0; p < size; p++) {
				unsigned v = console_abs_scale(p, size, max);

				if (v > max ||
				    (unsigned long long)v * size / (max + 1ull) != p ||
				    (size > 1 && ((unsigned long long)v * (size - 1) + max / 2) / max != p))
					bad++;
			}
			if (bad)
				fprintf(stderr, "size %u max %u: %u pixels off\n",
					size, max, bad);
			CHECK_EQ(bad, 0);
		}
	}
	CHECK_EQ(console_abs_scale(5000, 640, 0x7fff),
		 console_abs_scale(639, 640, 0x7fff));
	CHECK_EQ(console_abs_scale(0, 0, 0x7fff), 0);
}

/* A device with its own range gets the pixel scaled once to that range
 * (vmmouse: 0..0xffff), not CONSOLE_ABS_MAX's value stretched. */
static void test_abs_device_range(void)
{
	struct console *con = console_new();
	struct rec wide;

	rec_init(&wide);
	wide.active = true;
	CHECK_EQ(console_add_input(con, &wide_ops, &wide, &wide.lock), 0);
	/* The surface starts at 640x480. */
	CHECK(console_mouse_abs(con, 0, 479, 0, 0));
	CHECK_EQ(wide.x, console_abs_scale(0, 640, 0xffff));
	CHECK_EQ(wide.y, console_abs_scale(479, 480, 0xffff));
	CHECK(console_mouse_abs(con, 639, 240, 0, 0));
	CHECK_EQ(wide.x, console_abs_scale(639, 640, 0xffff));
	CHECK(wide.x > CONSOLE_ABS_MAX);
	CHECK_EQ(wide.y * 480ull / 0x10000, 240);
	console_remove_input(con, &wide_ops, &wide);
	console_free(con);
}

static unsigned req_w, req_h;

static void hw_update(void *o, struct console *con, bool full)
{
	(void)o; (void)con; (void)full;
}

static int hw_request(void *o, unsigned w, unsigned h)
{
	(void)o;
	req_w = w;
	req_h = h;
	return 0;
}

static void test_request_size(void)
{
	struct console *con = console_new();
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static const struct console_hw_ops vga = { .update = hw_update };
	static const struct console_hw_ops gpu = { .update = hw_update,
						   .request_size = hw_request };

	CHECK_EQ(console_request_size(con, 800, 600), -ENOTSUP);
	console_set_hw(con, &vga, NULL, &lock);
	CHECK_EQ(console_request_size(con, 800, 600), -ENOTSUP);
	console_set_hw(con, &gpu, NULL, &lock);
	CHECK_EQ(console_request_size(con, 0, 600), -EINVAL);
	CHECK_EQ(console_request_size(con, CONSOLE_MAX_WIDTH + 1, 600), -EINVAL);
	CHECK_EQ(console_request_size(con, 1366, 768), 0);
	CHECK_EQ(req_w, 1366);
	CHECK_EQ(req_h, 768);
	console_set_hw(con, NULL, NULL, NULL);
	console_free(con);
}

int main(void)
{
	RUN_TEST(test_keys_follow_active_keyboard);
	RUN_TEST(test_ps2_release_follows_press);
	RUN_TEST(test_abs_priority_and_fallback);
	RUN_TEST(test_abs_scale_round_trips);
	RUN_TEST(test_abs_device_range);
	RUN_TEST(test_request_size);
	return check_finish();
}
