/* SPDX-License-Identifier: MIT */
/* tests/unit/test_keymap.c - key code tables against the published
 * sequences (Microsoft Keyboard Scan Code Specification, IBM PS/2 set 3),
 * the 8042 translation, USB HID usages and X11 keysyms. */
#include "testlib.h"

#include <linux/input-event-codes.h>

#include "input/keymap.h"

/* CHECKs that @key in @set gives exactly @n bytes @want. */
static void expect(unsigned key, unsigned set, bool down, const uint8_t *want,
		   unsigned n)
{
	uint8_t out[KEYMAP_MAX_BYTES];
	unsigned got = keymap_scancodes(key, set, down, out);

	CHECK_EQ(got, n);
	if (got == n && memcmp(out, want, n)) {
		CHECK(!"bytes differ");
		fprintf(stderr, "  key %u set %u %s:", key, set,
			down ? "make" : "break");
		for (unsigned i = 0; i < n; i++)
			fprintf(stderr, " %02x", out[i]);
		fprintf(stderr, "\n");
	}
}

#define EXPECT(key, set, down, ...)                                          \
	do {                                                                 \
		static const uint8_t w__[] = { __VA_ARGS__ };                \
		expect(key, set, down, w__, sizeof(w__));                    \
	} while (0)

static void test_selected_keys(void)
{
	/* 'A': 1e/9e, 1c/f0 1c, set 3 1c/f0 1c. */
	EXPECT(KEY_A, 1, true, 0x1e);
	EXPECT(KEY_A, 1, false, 0x9e);
	EXPECT(KEY_A, 2, true, 0x1c);
	EXPECT(KEY_A, 2, false, 0xf0, 0x1c);
	EXPECT(KEY_A, 3, true, 0x1c);
	EXPECT(KEY_A, 3, false, 0xf0, 0x1c);
	/* Esc and F7 (the 0x83 code that makes the translated ID 0x41). */
	EXPECT(KEY_ESC, 1, true, 0x01);
	EXPECT(KEY_ESC, 2, true, 0x76);
	EXPECT(KEY_ESC, 3, true, 0x08);
	EXPECT(KEY_F7, 2, true, 0x83);
	EXPECT(KEY_F7, 1, false, 0xc1);
	EXPECT(KEY_F12, 2, false, 0xf0, 0x07);
	/* Right Alt (AltGr): e0 38 / e0 11. */
	EXPECT(KEY_RIGHTALT, 1, true, 0xe0, 0x38);
	EXPECT(KEY_RIGHTALT, 1, false, 0xe0, 0xb8);
	EXPECT(KEY_RIGHTALT, 2, true, 0xe0, 0x11);
	EXPECT(KEY_RIGHTALT, 2, false, 0xe0, 0xf0, 0x11);
	EXPECT(KEY_RIGHTALT, 3, true, 0x39);
	/* Keypad Enter and divide. */
	EXPECT(KEY_KPENTER, 1, true, 0xe0, 0x1c);
	EXPECT(KEY_KPENTER, 2, true, 0xe0, 0x5a);
	EXPECT(KEY_KPENTER, 2, false, 0xe0, 0xf0, 0x5a);
	EXPECT(KEY_KPENTER, 3, true, 0x79);
	EXPECT(KEY_KPSLASH, 1, true, 0xe0, 0x35);
	EXPECT(KEY_KPSLASH, 2, true, 0xe0, 0x4a);
	EXPECT(KEY_KPSLASH, 3, true, 0x77);
	/* Pause: one sequence on press, nothing on release. */
	EXPECT(KEY_PAUSE, 1, true, 0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5);
	EXPECT(KEY_PAUSE, 2, true, 0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0,
	       0x77);
	{
		uint8_t out[KEYMAP_MAX_BYTES];

		CHECK_EQ(keymap_scancodes(KEY_PAUSE, 1, false, out), 0);
		CHECK_EQ(keymap_scancodes(KEY_PAUSE, 2, false, out), 0);
	}
	EXPECT(KEY_PAUSE, 3, true, 0x62);
	EXPECT(KEY_PAUSE, 3, false, 0xf0, 0x62);
	/* Print Screen: fake shift + key, break reversed. */
	EXPECT(KEY_SYSRQ, 1, true, 0xe0, 0x2a, 0xe0, 0x37);
	EXPECT(KEY_SYSRQ, 1, false, 0xe0, 0xb7, 0xe0, 0xaa);
	EXPECT(KEY_SYSRQ, 2, true, 0xe0, 0x12, 0xe0, 0x7c);
	EXPECT(KEY_SYSRQ, 2, false, 0xe0, 0xf0, 0x7c, 0xe0, 0xf0, 0x12);
	EXPECT(KEY_SYSRQ, 3, true, 0x57);
	/* Windows, Menu, 102nd, ACPI, multimedia. */
	EXPECT(KEY_LEFTMETA, 2, true, 0xe0, 0x1f);
	EXPECT(KEY_RIGHTMETA, 1, true, 0xe0, 0x5c);
	EXPECT(KEY_COMPOSE, 2, false, 0xe0, 0xf0, 0x2f);
	EXPECT(KEY_COMPOSE, 3, true, 0x8d);
	EXPECT(KEY_102ND, 1, true, 0x56);
	EXPECT(KEY_102ND, 2, true, 0x61);
	EXPECT(KEY_102ND, 3, true, 0x13);
	EXPECT(KEY_POWER, 2, true, 0xe0, 0x37);
	EXPECT(KEY_SLEEP, 1, true, 0xe0, 0x5f);
	EXPECT(KEY_WAKEUP, 2, true, 0xe0, 0x5e);
	EXPECT(KEY_VOLUMEUP, 2, true, 0xe0, 0x32);
	EXPECT(KEY_MUTE, 1, false, 0xe0, 0xa0);
	/* Japanese and Korean. */
	EXPECT(KEY_RO, 2, true, 0x51);
	EXPECT(KEY_YEN, 2, true, 0x6a);
	EXPECT(KEY_HENKAN, 1, true, 0x79);
	EXPECT(KEY_MUHENKAN, 2, true, 0x67);
	EXPECT(KEY_KATAKANAHIRAGANA, 2, true, 0x13);
	EXPECT(KEY_HANGEUL, 2, true, 0xf2);
	EXPECT(KEY_HANJA, 1, true, 0xf1);
	{
		uint8_t out[KEYMAP_MAX_BYTES];

		CHECK_EQ(keymap_scancodes(KEY_HANGEUL, 2, false, out), 0);
		/* Unknown keys and sets. */
		CHECK_EQ(keymap_scancodes(0, 2, true, out), 0);
		CHECK_EQ(keymap_scancodes(KEY_A, 0, true, out), 0);
		CHECK_EQ(keymap_scancodes(KEY_A, 4, true, out), 0);
		CHECK_EQ(keymap_scancodes(100000, 2, true, out), 0);
		CHECK_EQ(keymap_scancodes(KEY_MUTE, 3, true, out), 0);
	}
}

/* Every key of a 105-key keyboard has codes in all three sets. */
static void test_105_keys_complete(void)
{
	static const uint16_t keys[] = {
		KEY_ESC, KEY_F1, KEY_F2, KEY_F3, KEY_F4, KEY_F5, KEY_F6,
		KEY_F7, KEY_F8, KEY_F9, KEY_F10, KEY_F11, KEY_F12, KEY_SYSRQ,
		KEY_SCROLLLOCK, KEY_PAUSE, KEY_GRAVE, KEY_1, KEY_2, KEY_3,
		KEY_4, KEY_5, KEY_6, KEY_7, KEY_8, KEY_9, KEY_0, KEY_MINUS,
		KEY_EQUAL, KEY_BACKSPACE, KEY_INSERT, KEY_HOME, KEY_PAGEUP,
		KEY_NUMLOCK, KEY_KPSLASH, KEY_KPASTERISK, KEY_KPMINUS,
		KEY_TAB, KEY_Q, KEY_W, KEY_E, KEY_R, KEY_T, KEY_Y, KEY_U,
		KEY_I, KEY_O, KEY_P, KEY_LEFTBRACE, KEY_RIGHTBRACE,
		KEY_ENTER, KEY_DELETE, KEY_END, KEY_PAGEDOWN, KEY_KP7,
		KEY_KP8, KEY_KP9, KEY_KPPLUS, KEY_CAPSLOCK, KEY_A, KEY_S,
		KEY_D, KEY_F, KEY_G, KEY_H, KEY_J, KEY_K, KEY_L,
		KEY_SEMICOLON, KEY_APOSTROPHE, KEY_BACKSLASH, KEY_KP4,
		KEY_KP5, KEY_KP6, KEY_LEFTSHIFT, KEY_102ND, KEY_Z, KEY_X,
		KEY_C, KEY_V, KEY_B, KEY_N, KEY_M, KEY_COMMA, KEY_DOT,
		KEY_SLASH, KEY_RIGHTSHIFT, KEY_UP, KEY_KP1, KEY_KP2, KEY_KP3,
		KEY_KPENTER, KEY_LEFTCTRL, KEY_LEFTMETA, KEY_LEFTALT,
		KEY_SPACE, KEY_RIGHTALT, KEY_RIGHTMETA, KEY_COMPOSE,
		KEY_RIGHTCTRL, KEY_LEFT, KEY_DOWN, KEY_RIGHT, KEY_KP0,
		KEY_KPDOT,
	};
	uint8_t a[KEYMAP_MAX_BYTES], b[KEYMAP_MAX_BYTES];

	CHECK_EQ(sizeof(keys) / sizeof(keys[0]), 105);
	for (unsigned i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		for (unsigned set = 1; set <= 3; set++) {
			unsigned n = keymap_scancodes(keys[i], set, true, a);

			CHECK(n > 0);
			if (!n)
				fprintf(stderr, "  key %u set %u: no code\n",
					keys[i], set);
		}
		/* Distinct keys, distinct set-2 make codes. */
		for (unsigned j = 0; j < i; j++) {
			unsigned na = keymap_scancodes(keys[i], 2, true, a);
			unsigned nb = keymap_scancodes(keys[j], 2, true, b);

			CHECK(na != nb || memcmp(a, b, na));
		}
	}
}

/* What a translating 8042 makes of a set-2 byte sequence. */
static unsigned translate(const uint8_t *in, unsigned n, uint8_t *out)
{
	unsigned m = 0;
	bool brk = false;

	for (unsigned i = 0; i < n; i++) {
		if (in[i] == 0xf0) {
			brk = true;
			continue;
		}
		out[m++] = (uint8_t)(keymap_xlate(in[i]) | (brk ? 0x80 : 0));
		brk = false;
	}
	return m;
}

static void test_xlate_round_trip(void)
{
	unsigned keys_checked = 0;

	/* The published table: spot checks. */
	CHECK_EQ(keymap_xlate(0x00), 0xff);	/* overrun */
	CHECK_EQ(keymap_xlate(0x01), 0x43);
	CHECK_EQ(keymap_xlate(0x02), 0x41);	/* scancode set 2 reply */
	CHECK_EQ(keymap_xlate(0x76), 0x01);
	CHECK_EQ(keymap_xlate(0x83), 0x41);	/* F7 */
	CHECK_EQ(keymap_xlate(0xfa), 0xfa);	/* ACK passes */
	CHECK_EQ(keymap_xlate(0xaa), 0xaa);
	CHECK_EQ(keymap_xlate(0xe0), 0xe0);
	CHECK_EQ(keymap_xlate(0xe1), 0xe1);
	/* Bytes 0x01-0x7f map one-to-one. */
	for (unsigned i = 1; i < 0x80; i++)
		for (unsigned j = 1; j < i; j++)
			CHECK(keymap_xlate((uint8_t)i) !=
			      keymap_xlate((uint8_t)j));

	/* For every key: translated set 2 == set 1, make and break. */
	for (unsigned key = 0; key < 768; key++) {
		for (int down = 0; down <= 1; down++) {
			uint8_t s1[KEYMAP_MAX_BYTES], s2[KEYMAP_MAX_BYTES];
			uint8_t x[KEYMAP_MAX_BYTES];
			unsigned n1 = keymap_scancodes(key, 1, down, s1);
			unsigned n2 = keymap_scancodes(key, 2, down, s2);
			unsigned nx = translate(s2, n2, x);

			CHECK_EQ(n1 == 0, n2 == 0);
			if (!n2)
				continue;
			CHECK_EQ(nx, n1);
			CHECK(nx == n1 && !memcmp(x, s1, n1));
			if (nx != n1 || memcmp(x, s1, n1))
				fprintf(stderr, "  key %u %s: xlate mismatch\n",
					key, down ? "make" : "break");
			keys_checked += down;
		}
	}
	CHECK(keys_checked >= 140);
}

static void test_usb(void)
{
	CHECK_EQ(keymap_from_usb(0x04), KEY_A);
	CHECK_EQ(keymap_from_usb(0x1d), KEY_Z);
	CHECK_EQ(keymap_from_usb(0x1e), KEY_1);
	CHECK_EQ(keymap_from_usb(0x27), KEY_0);
	CHECK_EQ(keymap_from_usb(0x28), KEY_ENTER);
	CHECK_EQ(keymap_from_usb(0x35), KEY_GRAVE);
	CHECK_EQ(keymap_from_usb(0x39), KEY_CAPSLOCK);
	CHECK_EQ(keymap_from_usb(0x3a), KEY_F1);
	CHECK_EQ(keymap_from_usb(0x45), KEY_F12);
	CHECK_EQ(keymap_from_usb(0x46), KEY_SYSRQ);
	CHECK_EQ(keymap_from_usb(0x48), KEY_PAUSE);
	CHECK_EQ(keymap_from_usb(0x52), KEY_UP);
	CHECK_EQ(keymap_from_usb(0x54), KEY_KPSLASH);
	CHECK_EQ(keymap_from_usb(0x58), KEY_KPENTER);
	CHECK_EQ(keymap_from_usb(0x62), KEY_KP0);
	CHECK_EQ(keymap_from_usb(0x64), KEY_102ND);
	CHECK_EQ(keymap_from_usb(0x65), KEY_COMPOSE);
	CHECK_EQ(keymap_from_usb(0x73), KEY_F24);
	CHECK_EQ(keymap_from_usb(0x87), KEY_RO);
	CHECK_EQ(keymap_from_usb(0x89), KEY_YEN);
	CHECK_EQ(keymap_from_usb(0x90), KEY_HANGEUL);
	CHECK_EQ(keymap_from_usb(0xe0), KEY_LEFTCTRL);
	CHECK_EQ(keymap_from_usb(0xe6), KEY_RIGHTALT);
	CHECK_EQ(keymap_from_usb(0xe7), KEY_RIGHTMETA);
	/* SDL's consumer scancodes. */
	CHECK_EQ(keymap_from_usb(262), KEY_MUTE);
	CHECK_EQ(keymap_from_usb(282), KEY_SLEEP);
	/* Reserved / error codes and out of range. */
	CHECK_EQ(keymap_from_usb(0x00), 0);
	CHECK_EQ(keymap_from_usb(0x01), 0);
	CHECK_EQ(keymap_from_usb(0xe8), 0);
	CHECK_EQ(keymap_from_usb(283), 0);
	CHECK_EQ(keymap_from_usb(~0u), 0);
	/* Every mapped usage on a 105-key board has scancodes. */
	for (unsigned u = 0x04; u <= 0x65; u++) {
		uint8_t out[KEYMAP_MAX_BYTES];
		unsigned key = keymap_from_usb(u);

		CHECK(key != 0);
		CHECK(keymap_scancodes(key, 2, true, out) > 0);
	}
}

static void test_keysyms(void)
{
	CHECK_EQ(keymap_from_keysym('a'), KEY_A);
	CHECK_EQ(keymap_from_keysym('A'), KEY_A);
	CHECK_EQ(keymap_from_keysym('z'), KEY_Z);
	CHECK_EQ(keymap_from_keysym('Z'), KEY_Z);
	CHECK_EQ(keymap_from_keysym('1'), KEY_1);
	CHECK_EQ(keymap_from_keysym('!'), KEY_1);
	CHECK_EQ(keymap_from_keysym('@'), KEY_2);
	CHECK_EQ(keymap_from_keysym('('), KEY_9);
	CHECK_EQ(keymap_from_keysym(')'), KEY_0);
	CHECK_EQ(keymap_from_keysym('_'), KEY_MINUS);
	CHECK_EQ(keymap_from_keysym('+'), KEY_EQUAL);
	CHECK_EQ(keymap_from_keysym('{'), KEY_LEFTBRACE);
	CHECK_EQ(keymap_from_keysym('|'), KEY_BACKSLASH);
	CHECK_EQ(keymap_from_keysym(':'), KEY_SEMICOLON);
	CHECK_EQ(keymap_from_keysym('"'), KEY_APOSTROPHE);
	CHECK_EQ(keymap_from_keysym('~'), KEY_GRAVE);
	CHECK_EQ(keymap_from_keysym('<'), KEY_COMMA);
	CHECK_EQ(keymap_from_keysym('?'), KEY_SLASH);
	CHECK_EQ(keymap_from_keysym(' '), KEY_SPACE);
	CHECK_EQ(keymap_from_keysym(0xff0d), KEY_ENTER);	/* Return */
	CHECK_EQ(keymap_from_keysym(0xff1b), KEY_ESC);
	CHECK_EQ(keymap_from_keysym(0xff08), KEY_BACKSPACE);
	CHECK_EQ(keymap_from_keysym(0xfe20), KEY_TAB);	/* ISO_Left_Tab */
	CHECK_EQ(keymap_from_keysym(0xffbe), KEY_F1);
	CHECK_EQ(keymap_from_keysym(0xffc9), KEY_F12);
	CHECK_EQ(keymap_from_keysym(0xffca), KEY_F13);
	CHECK_EQ(keymap_from_keysym(0xffd5), KEY_F24);
	CHECK_EQ(keymap_from_keysym(0xffd6), 0);		/* F25 */
	CHECK_EQ(keymap_from_keysym(0xfe03), KEY_RIGHTALT);
	CHECK_EQ(keymap_from_keysym(0xffea), KEY_RIGHTALT);	/* Alt_R */
	CHECK_EQ(keymap_from_keysym(0xffe9), KEY_LEFTALT);
	CHECK_EQ(keymap_from_keysym(0xffe1), KEY_LEFTSHIFT);
	CHECK_EQ(keymap_from_keysym(0xffe4), KEY_RIGHTCTRL);
	CHECK_EQ(keymap_from_keysym(0xffeb), KEY_LEFTMETA);	/* Super_L */
	CHECK_EQ(keymap_from_keysym(0xff67), KEY_COMPOSE);	/* Menu */
	CHECK_EQ(keymap_from_keysym(0xff61), KEY_SYSRQ);	/* Print */
	CHECK_EQ(keymap_from_keysym(0xff13), KEY_PAUSE);
	CHECK_EQ(keymap_from_keysym(0xff51), KEY_LEFT);
	CHECK_EQ(keymap_from_keysym(0xff56), KEY_PAGEDOWN);	/* Next */
	CHECK_EQ(keymap_from_keysym(0xffff), KEY_DELETE);
	CHECK_EQ(keymap_from_keysym(0xff8d), KEY_KPENTER);
	CHECK_EQ(keymap_from_keysym(0xffaf), KEY_KPSLASH);
	CHECK_EQ(keymap_from_keysym(0xffb7), KEY_KP7);
	CHECK_EQ(keymap_from_keysym(0xff95), KEY_KP7);	/* KP_Home */
	CHECK_EQ(keymap_from_keysym(0xff9f), KEY_KPDOT);	/* KP_Delete */
	CHECK_EQ(keymap_from_keysym(0xff23), KEY_HENKAN);
	CHECK_EQ(keymap_from_keysym(0xff31), KEY_HANGEUL);
	CHECK_EQ(keymap_from_keysym(0x1008ff13), KEY_VOLUMEUP);
	CHECK_EQ(keymap_from_keysym(0x1008ff2f), KEY_SLEEP);
	/* Unknown. */
	CHECK_EQ(keymap_from_keysym(0), 0);
	CHECK_EQ(keymap_from_keysym(0x7f), 0);
	CHECK_EQ(keymap_from_keysym(0x12345678), 0);
	/* Every printable ASCII character is typeable on a US layout. */
	for (uint32_t c = 0x20; c < 0x7f; c++)
		CHECK(keymap_from_keysym(c) != 0);
}

/* keymap_keys() is exactly what the two mappings can return. */
static void test_keys_bitmap(void)
{
	uint8_t map[KEYMAP_KEYS_BYTES], seen[KEYMAP_KEYS_BYTES] = { 0 };
	unsigned missing = 0;

	keymap_keys(map);
	for (uint32_t i = 0; i < 0x30000; i++) {
		uint32_t keysym = i < 0x20000 ? i : 0x1008ff00 + (i & 0xff);
		unsigned k[2] = { i < 1024 ? keymap_from_usb(i) : 0,
				  keymap_from_keysym(keysym) };

		for (unsigned j = 0; j < 2; j++) {
			if (!k[j])
				continue;
			if (k[j] >= 8 * KEYMAP_KEYS_BYTES ||
			    !(map[k[j] / 8] >> (k[j] % 8) & 1)) {
				missing++;
				continue;
			}
			seen[k[j] / 8] |= (uint8_t)(1 << k[j] % 8);
		}
	}
	CHECK_EQ(missing, 0);
	CHECK(!memcmp(map, seen, sizeof(map)));
	CHECK(!(map[0] & 1));		/* KEY_RESERVED */
}

int main(void)
{
	RUN_TEST(test_selected_keys);
	RUN_TEST(test_105_keys_complete);
	RUN_TEST(test_xlate_round_trip);
	RUN_TEST(test_usb);
	RUN_TEST(test_keysyms);
	RUN_TEST(test_keys_bitmap);
	return check_finish();
}
