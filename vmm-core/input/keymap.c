/* SPDX-License-Identifier: MIT */
/*
 * Key code tables: KEY_* to PC scancode sets 1-3, the 8042's set-2 to set-1
 * translation, USB HID usages and X11 keysyms to KEY_*.
 *
 * Sets 1 and 2 follow Microsoft's "Keyboard Scan Code Specification"
 * (rev. 1.3a, appendix: 104-key, Japanese/Korean, ACPI and multimedia
 * keys); set 3 follows the IBM PS/2 keyboard technical reference (only the
 * keys of the 101/102-key layout and the Windows keys have set-3 codes).
 */
#include "keymap.h"

#include <linux/input-event-codes.h>
#include <stddef.h>

#define E0		0x100	/* the code is preceded by an e0 prefix */
#define NO_BREAK	0x01	/* LANG1/LANG2: make code only */

struct key_codes {
	uint16_t set1;		/* E0 | code; 0: no such key */
	uint16_t set2;
	uint8_t set3;		/* 0: none */
	uint8_t flags;
};

/* Pause and Print Screen are sequences, handled in keymap_scancodes(). */
static const struct key_codes key_table[256] = {
	[KEY_ESC]		= { 0x01, 0x76, 0x08, 0 },
	[KEY_1]			= { 0x02, 0x16, 0x16, 0 },
	[KEY_2]			= { 0x03, 0x1e, 0x1e, 0 },
	[KEY_3]			= { 0x04, 0x26, 0x26, 0 },
	[KEY_4]			= { 0x05, 0x25, 0x25, 0 },
	[KEY_5]			= { 0x06, 0x2e, 0x2e, 0 },
	[KEY_6]			= { 0x07, 0x36, 0x36, 0 },
	[KEY_7]			= { 0x08, 0x3d, 0x3d, 0 },
	[KEY_8]			= { 0x09, 0x3e, 0x3e, 0 },
	[KEY_9]			= { 0x0a, 0x46, 0x46, 0 },
	[KEY_0]			= { 0x0b, 0x45, 0x45, 0 },
	[KEY_MINUS]		= { 0x0c, 0x4e, 0x4e, 0 },
	[KEY_EQUAL]		= { 0x0d, 0x55, 0x55, 0 },
	[KEY_BACKSPACE]		= { 0x0e, 0x66, 0x66, 0 },
	[KEY_TAB]		= { 0x0f, 0x0d, 0x0d, 0 },
	[KEY_Q]			= { 0x10, 0x15, 0x15, 0 },
	[KEY_W]			= { 0x11, 0x1d, 0x1d, 0 },
	[KEY_E]			= { 0x12, 0x24, 0x24, 0 },
	[KEY_R]			= { 0x13, 0x2d, 0x2d, 0 },
	[KEY_T]			= { 0x14, 0x2c, 0x2c, 0 },
	[KEY_Y]			= { 0x15, 0x35, 0x35, 0 },
	[KEY_U]			= { 0x16, 0x3c, 0x3c, 0 },
	[KEY_I]			= { 0x17, 0x43, 0x43, 0 },
	[KEY_O]			= { 0x18, 0x44, 0x44, 0 },
	[KEY_P]			= { 0x19, 0x4d, 0x4d, 0 },
	[KEY_LEFTBRACE]		= { 0x1a, 0x54, 0x54, 0 },
	[KEY_RIGHTBRACE]	= { 0x1b, 0x5b, 0x5b, 0 },
	[KEY_ENTER]		= { 0x1c, 0x5a, 0x5a, 0 },
	[KEY_LEFTCTRL]		= { 0x1d, 0x14, 0x11, 0 },
	[KEY_A]			= { 0x1e, 0x1c, 0x1c, 0 },
	[KEY_S]			= { 0x1f, 0x1b, 0x1b, 0 },
	[KEY_D]			= { 0x20, 0x23, 0x23, 0 },
	[KEY_F]			= { 0x21, 0x2b, 0x2b, 0 },
	[KEY_G]			= { 0x22, 0x34, 0x34, 0 },
	[KEY_H]			= { 0x23, 0x33, 0x33, 0 },
	[KEY_J]			= { 0x24, 0x3b, 0x3b, 0 },
	[KEY_K]			= { 0x25, 0x42, 0x42, 0 },
	[KEY_L]			= { 0x26, 0x4b, 0x4b, 0 },
	[KEY_SEMICOLON]		= { 0x27, 0x4c, 0x4c, 0 },
	[KEY_APOSTROPHE]	= { 0x28, 0x52, 0x52, 0 },
	[KEY_GRAVE]		= { 0x29, 0x0e, 0x0e, 0 },
	[KEY_LEFTSHIFT]		= { 0x2a, 0x12, 0x12, 0 },
	[KEY_BACKSLASH]		= { 0x2b, 0x5d, 0x5c, 0 },
	[KEY_Z]			= { 0x2c, 0x1a, 0x1a, 0 },
	[KEY_X]			= { 0x2d, 0x22, 0x22, 0 },
	[KEY_C]			= { 0x2e, 0x21, 0x21, 0 },
	[KEY_V]			= { 0x2f, 0x2a, 0x2a, 0 },
	[KEY_B]			= { 0x30, 0x32, 0x32, 0 },
	[KEY_N]			= { 0x31, 0x31, 0x31, 0 },
	[KEY_M]			= { 0x32, 0x3a, 0x3a, 0 },
	[KEY_COMMA]		= { 0x33, 0x41, 0x41, 0 },
	[KEY_DOT]		= { 0x34, 0x49, 0x49, 0 },
	[KEY_SLASH]		= { 0x35, 0x4a, 0x4a, 0 },
	[KEY_RIGHTSHIFT]	= { 0x36, 0x59, 0x59, 0 },
	[KEY_KPASTERISK]	= { 0x37, 0x7c, 0x7e, 0 },
	[KEY_LEFTALT]		= { 0x38, 0x11, 0x19, 0 },
	[KEY_SPACE]		= { 0x39, 0x29, 0x29, 0 },
	[KEY_CAPSLOCK]		= { 0x3a, 0x58, 0x14, 0 },
	[KEY_F1]		= { 0x3b, 0x05, 0x07, 0 },
	[KEY_F2]		= { 0x3c, 0x06, 0x0f, 0 },
	[KEY_F3]		= { 0x3d, 0x04, 0x17, 0 },
	[KEY_F4]		= { 0x3e, 0x0c, 0x1f, 0 },
	[KEY_F5]		= { 0x3f, 0x03, 0x27, 0 },
	[KEY_F6]		= { 0x40, 0x0b, 0x2f, 0 },
	[KEY_F7]		= { 0x41, 0x83, 0x37, 0 },
	[KEY_F8]		= { 0x42, 0x0a, 0x3f, 0 },
	[KEY_F9]		= { 0x43, 0x01, 0x47, 0 },
	[KEY_F10]		= { 0x44, 0x09, 0x4f, 0 },
	[KEY_NUMLOCK]		= { 0x45, 0x77, 0x76, 0 },
	[KEY_SCROLLLOCK]	= { 0x46, 0x7e, 0x5f, 0 },
	[KEY_KP7]		= { 0x47, 0x6c, 0x6c, 0 },
	[KEY_KP8]		= { 0x48, 0x75, 0x75, 0 },
	[KEY_KP9]		= { 0x49, 0x7d, 0x7d, 0 },
	[KEY_KPMINUS]		= { 0x4a, 0x7b, 0x84, 0 },
	[KEY_KP4]		= { 0x4b, 0x6b, 0x6b, 0 },
	[KEY_KP5]		= { 0x4c, 0x73, 0x73, 0 },
	[KEY_KP6]		= { 0x4d, 0x74, 0x74, 0 },
	[KEY_KPPLUS]		= { 0x4e, 0x79, 0x7c, 0 },
	[KEY_KP1]		= { 0x4f, 0x69, 0x69, 0 },
	[KEY_KP2]		= { 0x50, 0x72, 0x72, 0 },
	[KEY_KP3]		= { 0x51, 0x7a, 0x7a, 0 },
	[KEY_KP0]		= { 0x52, 0x70, 0x70, 0 },
	[KEY_KPDOT]		= { 0x53, 0x71, 0x71, 0 },
	[KEY_102ND]		= { 0x56, 0x61, 0x13, 0 },
	[KEY_F11]		= { 0x57, 0x78, 0x56, 0 },
	[KEY_F12]		= { 0x58, 0x07, 0x5e, 0 },
	[KEY_KPEQUAL]		= { 0x59, 0x0f, 0, 0 },
	[KEY_F13]		= { 0x64, 0x08, 0, 0 },
	[KEY_F14]		= { 0x65, 0x10, 0, 0 },
	[KEY_F15]		= { 0x66, 0x18, 0, 0 },
	[KEY_F16]		= { 0x67, 0x20, 0, 0 },
	[KEY_F17]		= { 0x68, 0x28, 0, 0 },
	[KEY_F18]		= { 0x69, 0x30, 0, 0 },
	[KEY_F19]		= { 0x6a, 0x38, 0, 0 },
	[KEY_F20]		= { 0x6b, 0x40, 0, 0 },
	[KEY_F21]		= { 0x6c, 0x48, 0, 0 },
	[KEY_F22]		= { 0x6d, 0x50, 0, 0 },
	[KEY_F23]		= { 0x6e, 0x57, 0, 0 },
	[KEY_F24]		= { 0x76, 0x5f, 0, 0 },
	/* Japanese 106/109-key and Brazilian keys. */
	[KEY_KATAKANAHIRAGANA]	= { 0x70, 0x13, 0x87, 0 },
	[KEY_RO]		= { 0x73, 0x51, 0x51, 0 },
	[KEY_HENKAN]		= { 0x79, 0x64, 0x86, 0 },
	[KEY_MUHENKAN]		= { 0x7b, 0x67, 0x85, 0 },
	[KEY_YEN]		= { 0x7d, 0x6a, 0x5d, 0 },
	[KEY_KPCOMMA]		= { 0x7e, 0x6d, 0, 0 },
	/* Korean: make only. */
	[KEY_HANGEUL]		= { 0xf2, 0xf2, 0, NO_BREAK },
	[KEY_HANJA]		= { 0xf1, 0xf1, 0, NO_BREAK },
	/* Extended (e0) keys of the 101-key layout. */
	[KEY_KPENTER]		= { E0 | 0x1c, E0 | 0x5a, 0x79, 0 },
	[KEY_RIGHTCTRL]		= { E0 | 0x1d, E0 | 0x14, 0x58, 0 },
	[KEY_KPSLASH]		= { E0 | 0x35, E0 | 0x4a, 0x77, 0 },
	[KEY_RIGHTALT]		= { E0 | 0x38, E0 | 0x11, 0x39, 0 },
	[KEY_HOME]		= { E0 | 0x47, E0 | 0x6c, 0x6e, 0 },
	[KEY_UP]		= { E0 | 0x48, E0 | 0x75, 0x63, 0 },
	[KEY_PAGEUP]		= { E0 | 0x49, E0 | 0x7d, 0x6f, 0 },
	[KEY_LEFT]		= { E0 | 0x4b, E0 | 0x6b, 0x61, 0 },
	[KEY_RIGHT]		= { E0 | 0x4d, E0 | 0x74, 0x6a, 0 },
	[KEY_END]		= { E0 | 0x4f, E0 | 0x69, 0x65, 0 },
	[KEY_DOWN]		= { E0 | 0x50, E0 | 0x72, 0x60, 0 },
	[KEY_PAGEDOWN]		= { E0 | 0x51, E0 | 0x7a, 0x6d, 0 },
	[KEY_INSERT]		= { E0 | 0x52, E0 | 0x70, 0x67, 0 },
	[KEY_DELETE]		= { E0 | 0x53, E0 | 0x71, 0x64, 0 },
	/* Windows keys. */
	[KEY_LEFTMETA]		= { E0 | 0x5b, E0 | 0x1f, 0x8b, 0 },
	[KEY_RIGHTMETA]		= { E0 | 0x5c, E0 | 0x27, 0x8c, 0 },
	[KEY_COMPOSE]		= { E0 | 0x5d, E0 | 0x2f, 0x8d, 0 },
	/* ACPI. */
	[KEY_POWER]		= { E0 | 0x5e, E0 | 0x37, 0, 0 },
	[KEY_SLEEP]		= { E0 | 0x5f, E0 | 0x3f, 0, 0 },
	[KEY_WAKEUP]		= { E0 | 0x63, E0 | 0x5e, 0, 0 },
	/* Multimedia and browser keys. */
	[KEY_MUTE]		= { E0 | 0x20, E0 | 0x23, 0, 0 },
	[KEY_VOLUMEDOWN]	= { E0 | 0x2e, E0 | 0x21, 0, 0 },
	[KEY_VOLUMEUP]		= { E0 | 0x30, E0 | 0x32, 0, 0 },
	[KEY_PLAYPAUSE]		= { E0 | 0x22, E0 | 0x34, 0, 0 },
	[KEY_STOPCD]		= { E0 | 0x24, E0 | 0x3b, 0, 0 },
	[KEY_PREVIOUSSONG]	= { E0 | 0x10, E0 | 0x15, 0, 0 },
	[KEY_NEXTSONG]		= { E0 | 0x19, E0 | 0x4d, 0, 0 },
	[KEY_MEDIA]		= { E0 | 0x6d, E0 | 0x50, 0, 0 },
	[KEY_MAIL]		= { E0 | 0x6c, E0 | 0x48, 0, 0 },
	[KEY_CALC]		= { E0 | 0x21, E0 | 0x2b, 0, 0 },
	[KEY_COMPUTER]		= { E0 | 0x6b, E0 | 0x40, 0, 0 },
	[KEY_SEARCH]		= { E0 | 0x65, E0 | 0x10, 0, 0 },
	[KEY_HOMEPAGE]		= { E0 | 0x32, E0 | 0x3a, 0, 0 },
	[KEY_BACK]		= { E0 | 0x6a, E0 | 0x38, 0, 0 },
	[KEY_FORWARD]		= { E0 | 0x69, E0 | 0x30, 0, 0 },
	[KEY_STOP]		= { E0 | 0x68, E0 | 0x28, 0, 0 },
	[KEY_REFRESH]		= { E0 | 0x67, E0 | 0x20, 0, 0 },
	[KEY_BOOKMARKS]		= { E0 | 0x66, E0 | 0x18, 0, 0 },
};

static unsigned put_seq(uint8_t *out, const uint8_t *seq, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		out[i] = seq[i];
	return n;
}

/* Pause (no break code) and Print Screen; set 3 treats both as ordinary
 * keys. */
static unsigned special_key(unsigned keycode, unsigned set, bool down,
			    uint8_t *out)
{
	static const uint8_t pause1[] = { 0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5 };
	static const uint8_t pause2[] = { 0xe1, 0x14, 0x77, 0xe1,
					  0xf0, 0x14, 0xf0, 0x77 };
	static const uint8_t prt1_make[] = { 0xe0, 0x2a, 0xe0, 0x37 };
	static const uint8_t prt1_break[] = { 0xe0, 0xb7, 0xe0, 0xaa };
	static const uint8_t prt2_make[] = { 0xe0, 0x12, 0xe0, 0x7c };
	static const uint8_t prt2_break[] = { 0xe0, 0xf0, 0x7c,
					      0xe0, 0xf0, 0x12 };

	if (keycode == KEY_PAUSE) {
		if (!down)
			return 0;
		return set == 1 ? put_seq(out, pause1, sizeof(pause1))
				: put_seq(out, pause2, sizeof(pause2));
	}
	/* KEY_SYSRQ is the Print Screen / SysRq key. */
	if (set == 1)
		return down ? put_seq(out, prt1_make, sizeof(prt1_make))
			    : put_seq(out, prt1_break, sizeof(prt1_break));
	return down ? put_seq(out, prt2_make, sizeof(prt2_make))
		    : put_seq(out, prt2_break, sizeof(prt2_break));
}

unsigned keymap_scancodes(unsigned keycode, unsigned set, bool down,
			  uint8_t out[KEYMAP_MAX_BYTES])
{
	const struct key_codes *k;
	unsigned n = 0, code;

	if (set < 1 || set > 3)
		return 0;
	if (set == 3) {
		uint8_t c3 = 0;

		if (keycode == KEY_PAUSE)
			c3 = 0x62;
		else if (keycode == KEY_SYSRQ)
			c3 = 0x57;
		else if (keycode < sizeof(key_table) / sizeof(key_table[0]))
			c3 = key_table[keycode].set3;
		if (!c3)
			return 0;
		if (!down)
			out[n++] = 0xf0;
		out[n++] = c3;
		return n;
	}
	if (keycode == KEY_PAUSE || keycode == KEY_SYSRQ)
		return special_key(keycode, set, down, out);
	if (keycode >= sizeof(key_table) / sizeof(key_table[0]))
		return 0;
	k = &key_table[keycode];
	code = set == 1 ? k->set1 : k->set2;
	if (!code)
		return 0;
	if (!down && (k->flags & NO_BREAK))
		return 0;
	if (code & E0)
		out[n++] = 0xe0;
	if (set == 1) {
		out[n++] = (uint8_t)(code | (down ? 0 : 0x80));
	} else {
		if (!down)
			out[n++] = 0xf0;
		out[n++] = (uint8_t)code;
	}
	return n;
}

/* The 8042's set-2 to set-1 table for bytes 0x00-0x7f (IBM PS/2 hardware
 * interface technical reference; byte 0x00, the set-2 overrun code,
 * becomes set 1's 0xff). */
static const uint8_t xlate_low[128] = {
	0xff, 0x43, 0x41, 0x3f, 0x3d, 0x3b, 0x3c, 0x58,
	0x64, 0x44, 0x42, 0x40, 0x3e, 0x0f, 0x29, 0x59,
	0x65, 0x38, 0x2a, 0x70, 0x1d, 0x10, 0x02, 0x5a,
	0x66, 0x71, 0x2c, 0x1f, 0x1e, 0x11, 0x03, 0x5b,
	0x67, 0x2e, 0x2d, 0x20, 0x12, 0x05, 0x04, 0x5c,
	0x68, 0x39, 0x2f, 0x21, 0x14, 0x13, 0x06, 0x5d,
	0x69, 0x31, 0x30, 0x23, 0x22, 0x15, 0x07, 0x5e,
	0x6a, 0x72, 0x32, 0x24, 0x16, 0x08, 0x09, 0x5f,
	0x6b, 0x33, 0x25, 0x17, 0x18, 0x0b, 0x0a, 0x60,
	0x6c, 0x34, 0x35, 0x26, 0x27, 0x19, 0x0c, 0x61,
	0x6d, 0x73, 0x28, 0x74, 0x1a, 0x0d, 0x62, 0x6e,
	0x3a, 0x36, 0x1c, 0x1b, 0x75, 0x2b, 0x63, 0x76,
	0x55, 0x56, 0x77, 0x78, 0x79, 0x7a, 0x0e, 0x7b,
	0x7c, 0x4f, 0x7d, 0x4b, 0x47, 0x7e, 0x7f, 0x6f,
	0x52, 0x53, 0x50, 0x4c, 0x4d, 0x48, 0x01, 0x45,
	0x57, 0x4e, 0x51, 0x4a, 0x37, 0x49, 0x46, 0x54,
};

uint8_t keymap_xlate(uint8_t b)
{
	if (b < 0x80)
		return xlate_low[b];
	/* Bytes from 0x80 pass through, except F7 (0x83, which is why a
	 * translated MF2 ID reads ab 41) and Alt+SysRq (0x84). */
	if (b == 0x83)
		return 0x41;
	if (b == 0x84)
		return 0x54;
	return b;
}

/* HID Usage Tables 1.4 §10, Keyboard/Keypad page (0x07). */
static const uint8_t usb_table[0xe8] = {
	[0x04] = KEY_A, [0x05] = KEY_B, [0x06] = KEY_C, [0x07] = KEY_D,
	[0x08] = KEY_E, [0x09] = KEY_F, [0x0a] = KEY_G, [0x0b] = KEY_H,
	[0x0c] = KEY_I, [0x0d] = KEY_J, [0x0e] = KEY_K, [0x0f] = KEY_L,
	[0x10] = KEY_M, [0x11] = KEY_N, [0x12] = KEY_O, [0x13] = KEY_P,
	[0x14] = KEY_Q, [0x15] = KEY_R, [0x16] = KEY_S, [0x17] = KEY_T,
	[0x18] = KEY_U, [0x19] = KEY_V, [0x1a] = KEY_W, [0x1b] = KEY_X,
	[0x1c] = KEY_Y, [0x1d] = KEY_Z,
	[0x1e] = KEY_1, [0x1f] = KEY_2, [0x20] = KEY_3, [0x21] = KEY_4,
	[0x22] = KEY_5, [0x23] = KEY_6, [0x24] = KEY_7, [0x25] = KEY_8,
	[0x26] = KEY_9, [0x27] = KEY_0,
	[0x28] = KEY_ENTER, [0x29] = KEY_ESC, [0x2a] = KEY_BACKSPACE,
	[0x2b] = KEY_TAB, [0x2c] = KEY_SPACE, [0x2d] = KEY_MINUS,
	[0x2e] = KEY_EQUAL, [0x2f] = KEY_LEFTBRACE, [0x30] = KEY_RIGHTBRACE,
	[0x31] = KEY_BACKSLASH,
	[0x32] = KEY_BACKSLASH,		/* non-US # and ~: same scancode */
	[0x33] = KEY_SEMICOLON, [0x34] = KEY_APOSTROPHE, [0x35] = KEY_GRAVE,
	[0x36] = KEY_COMMA, [0x37] = KEY_DOT, [0x38] = KEY_SLASH,
	[0x39] = KEY_CAPSLOCK,
	[0x3a] = KEY_F1, [0x3b] = KEY_F2, [0x3c] = KEY_F3, [0x3d] = KEY_F4,
	[0x3e] = KEY_F5, [0x3f] = KEY_F6, [0x40] = KEY_F7, [0x41] = KEY_F8,
	[0x42] = KEY_F9, [0x43] = KEY_F10, [0x44] = KEY_F11, [0x45] = KEY_F12,
	[0x46] = KEY_SYSRQ,		/* Print Screen */
	[0x47] = KEY_SCROLLLOCK, [0x48] = KEY_PAUSE, [0x49] = KEY_INSERT,
	[0x4a] = KEY_HOME, [0x4b] = KEY_PAGEUP, [0x4c] = KEY_DELETE,
	[0x4d] = KEY_END, [0x4e] = KEY_PAGEDOWN, [0x4f] = KEY_RIGHT,
	[0x50] = KEY_LEFT, [0x51] = KEY_DOWN, [0x52] = KEY_UP,
	[0x53] = KEY_NUMLOCK, [0x54] = KEY_KPSLASH, [0x55] = KEY_KPASTERISK,
	[0x56] = KEY_KPMINUS, [0x57] = KEY_KPPLUS, [0x58] = KEY_KPENTER,
	[0x59] = KEY_KP1, [0x5a] = KEY_KP2, [0x5b] = KEY_KP3, [0x5c] = KEY_KP4,
	[0x5d] = KEY_KP5, [0x5e] = KEY_KP6, [0x5f] = KEY_KP7, [0x60] = KEY_KP8,
	[0x61] = KEY_KP9, [0x62] = KEY_KP0, [0x63] = KEY_KPDOT,
	[0x64] = KEY_102ND,		/* non-US \ and | */
	[0x65] = KEY_COMPOSE,		/* Application (Menu) */
	[0x66] = KEY_POWER, [0x67] = KEY_KPEQUAL,
	[0x68] = KEY_F13, [0x69] = KEY_F14, [0x6a] = KEY_F15, [0x6b] = KEY_F16,
	[0x6c] = KEY_F17, [0x6d] = KEY_F18, [0x6e] = KEY_F19, [0x6f] = KEY_F20,
	[0x70] = KEY_F21, [0x71] = KEY_F22, [0x72] = KEY_F23, [0x73] = KEY_F24,
	[0x74] = KEY_OPEN, [0x75] = KEY_HELP, [0x76] = KEY_PROPS,
	[0x77] = KEY_FRONT, [0x78] = KEY_STOP, [0x79] = KEY_AGAIN,
	[0x7a] = KEY_UNDO, [0x7b] = KEY_CUT, [0x7c] = KEY_COPY,
	[0x7d] = KEY_PASTE, [0x7e] = KEY_FIND, [0x7f] = KEY_MUTE,
	[0x80] = KEY_VOLUMEUP, [0x81] = KEY_VOLUMEDOWN,
	[0x85] = KEY_KPCOMMA,
	[0x87] = KEY_RO,		/* International1 */
	[0x88] = KEY_KATAKANAHIRAGANA,	/* International2 */
	[0x89] = KEY_YEN,		/* International3 */
	[0x8a] = KEY_HENKAN,		/* International4 */
	[0x8b] = KEY_MUHENKAN,		/* International5 */
	[0x8c] = KEY_KPJPCOMMA,		/* International6 */
	[0x90] = KEY_HANGEUL,		/* LANG1 */
	[0x91] = KEY_HANJA,		/* LANG2 */
	[0x92] = KEY_KATAKANA, [0x93] = KEY_HIRAGANA,
	[0x94] = KEY_ZENKAKUHANKAKU,
	[0xe0] = KEY_LEFTCTRL, [0xe1] = KEY_LEFTSHIFT, [0xe2] = KEY_LEFTALT,
	[0xe3] = KEY_LEFTMETA, [0xe4] = KEY_RIGHTCTRL, [0xe5] = KEY_RIGHTSHIFT,
	[0xe6] = KEY_RIGHTALT, [0xe7] = KEY_RIGHTMETA,
};

/* SDL_Scancode values past the HID page (SDL_SCANCODE_AUDIONEXT = 258
 * ... SDL_SCANCODE_SLEEP = 282), consumer keys SDL numbers itself. */
static const uint8_t sdl_extra[] = {
	[258 - 258] = KEY_NEXTSONG, [259 - 258] = KEY_PREVIOUSSONG,
	[260 - 258] = KEY_STOPCD, [261 - 258] = KEY_PLAYPAUSE,
	[262 - 258] = KEY_MUTE, [263 - 258] = KEY_MEDIA,
	[264 - 258] = KEY_WWW, [265 - 258] = KEY_MAIL,
	[266 - 258] = KEY_CALC, [267 - 258] = KEY_COMPUTER,
	[268 - 258] = KEY_SEARCH, [269 - 258] = KEY_HOMEPAGE,
	[270 - 258] = KEY_BACK, [271 - 258] = KEY_FORWARD,
	[272 - 258] = KEY_STOP, [273 - 258] = KEY_REFRESH,
	[274 - 258] = KEY_BOOKMARKS,
	[282 - 258] = KEY_SLEEP,
};

unsigned keymap_from_usb(unsigned usage)
{
	if (usage < sizeof(usb_table))
		return usb_table[usage];
	if (usage >= 258 && usage - 258 < sizeof(sdl_extra))
		return sdl_extra[usage - 258];
	return 0;
}

/* Printable ASCII keysyms (0x20-0x7e equal their characters) on a US
 * layout: both cases and the shifted symbols map to the key. */
static const uint8_t ascii_table[0x7f] = {
	[' '] = KEY_SPACE, ['!'] = KEY_1, ['"'] = KEY_APOSTROPHE,
	['#'] = KEY_3, ['$'] = KEY_4, ['%'] = KEY_5, ['&'] = KEY_7,
	['\''] = KEY_APOSTROPHE, ['('] = KEY_9, [')'] = KEY_0,
	['*'] = KEY_8, ['+'] = KEY_EQUAL, [','] = KEY_COMMA,
	['-'] = KEY_MINUS, ['.'] = KEY_DOT, ['/'] = KEY_SLASH,
	['0'] = KEY_0, ['1'] = KEY_1, ['2'] = KEY_2, ['3'] = KEY_3,
	['4'] = KEY_4, ['5'] = KEY_5, ['6'] = KEY_6, ['7'] = KEY_7,
	['8'] = KEY_8, ['9'] = KEY_9,
	[':'] = KEY_SEMICOLON, [';'] = KEY_SEMICOLON, ['<'] = KEY_COMMA,
	['='] = KEY_EQUAL, ['>'] = KEY_DOT, ['?'] = KEY_SLASH,
	['@'] = KEY_2,
	['A'] = KEY_A, ['B'] = KEY_B, ['C'] = KEY_C, ['D'] = KEY_D,
	['E'] = KEY_E, ['F'] = KEY_F, ['G'] = KEY_G, ['H'] = KEY_H,
	['I'] = KEY_I, ['J'] = KEY_J, ['K'] = KEY_K, ['L'] = KEY_L,
	['M'] = KEY_M, ['N'] = KEY_N, ['O'] = KEY_O, ['P'] = KEY_P,
	['Q'] = KEY_Q, ['R'] = KEY_R, ['S'] = KEY_S, ['T'] = KEY_T,
	['U'] = KEY_U, ['V'] = KEY_V, ['W'] = KEY_W, ['X'] = KEY_X,
	['Y'] = KEY_Y, ['Z'] = KEY_Z,
	['['] = KEY_LEFTBRACE, ['\\'] = KEY_BACKSLASH,
	[']'] = KEY_RIGHTBRACE, ['^'] = KEY_6, ['_'] = KEY_MINUS,
	['`'] = KEY_GRAVE,
	['{'] = KEY_LEFTBRACE, ['|'] = KEY_BACKSLASH,
	['}'] = KEY_RIGHTBRACE, ['~'] = KEY_GRAVE,
};

struct keysym_key {
	uint32_t keysym;
	uint16_t key;
};

/* X11 keysymdef.h and XF86keysym.h values. */
static const struct keysym_key keysym_table[] = {
	{ 0xff08, KEY_BACKSPACE },	{ 0xff09, KEY_TAB },
	{ 0xfe20, KEY_TAB },		/* ISO_Left_Tab (Shift+Tab) */
	{ 0xff0d, KEY_ENTER },		{ 0xff13, KEY_PAUSE },
	{ 0xff6b, KEY_PAUSE },		/* Break */
	{ 0xff14, KEY_SCROLLLOCK },	{ 0xff15, KEY_SYSRQ },
	{ 0xff61, KEY_SYSRQ },		/* Print */
	{ 0xff1b, KEY_ESC },		{ 0xffff, KEY_DELETE },
	{ 0xff50, KEY_HOME },		{ 0xff51, KEY_LEFT },
	{ 0xff52, KEY_UP },		{ 0xff53, KEY_RIGHT },
	{ 0xff54, KEY_DOWN },		{ 0xff55, KEY_PAGEUP },
	{ 0xff56, KEY_PAGEDOWN },	{ 0xff57, KEY_END },
	{ 0xff63, KEY_INSERT },		{ 0xff67, KEY_COMPOSE },  /* Menu */
	{ 0xff7f, KEY_NUMLOCK },
	{ 0xff8d, KEY_KPENTER },	{ 0xffaa, KEY_KPASTERISK },
	{ 0xffab, KEY_KPPLUS },		{ 0xffac, KEY_KPCOMMA },
	{ 0xffad, KEY_KPMINUS },	{ 0xffae, KEY_KPDOT },
	{ 0xffaf, KEY_KPSLASH },	{ 0xffbd, KEY_KPEQUAL },
	{ 0xffb0, KEY_KP0 },		{ 0xffb1, KEY_KP1 },
	{ 0xffb2, KEY_KP2 },		{ 0xffb3, KEY_KP3 },
	{ 0xffb4, KEY_KP4 },		{ 0xffb5, KEY_KP5 },
	{ 0xffb6, KEY_KP6 },		{ 0xffb7, KEY_KP7 },
	{ 0xffb8, KEY_KP8 },		{ 0xffb9, KEY_KP9 },
	/* Keypad with Num Lock off. */
	{ 0xff95, KEY_KP7 },		{ 0xff96, KEY_KP4 },
	{ 0xff97, KEY_KP8 },		{ 0xff98, KEY_KP6 },
	{ 0xff99, KEY_KP2 },		{ 0xff9a, KEY_KP9 },
	{ 0xff9b, KEY_KP3 },		{ 0xff9c, KEY_KP1 },
	{ 0xff9d, KEY_KP5 },		{ 0xff9e, KEY_KP0 },
	{ 0xff9f, KEY_KPDOT },
	/* Modifiers. */
	{ 0xffe1, KEY_LEFTSHIFT },	{ 0xffe2, KEY_RIGHTSHIFT },
	{ 0xffe3, KEY_LEFTCTRL },	{ 0xffe4, KEY_RIGHTCTRL },
	{ 0xffe5, KEY_CAPSLOCK },	{ 0xffe7, KEY_LEFTMETA },
	{ 0xffe8, KEY_RIGHTMETA },	{ 0xffe9, KEY_LEFTALT },
	{ 0xffea, KEY_RIGHTALT },	{ 0xffeb, KEY_LEFTMETA },
	{ 0xffec, KEY_RIGHTMETA },
	{ 0xfe03, KEY_RIGHTALT },	/* ISO_Level3_Shift (AltGr) */
	{ 0xff7e, KEY_RIGHTALT },	/* Mode_switch */
	/* Japanese and Korean input keys. */
	{ 0xff22, KEY_MUHENKAN },	{ 0xff23, KEY_HENKAN },
	{ 0xff25, KEY_HIRAGANA },	{ 0xff26, KEY_KATAKANA },
	{ 0xff27, KEY_KATAKANAHIRAGANA }, { 0xff2a, KEY_ZENKAKUHANKAKU },
	{ 0x00a5, KEY_YEN },
	{ 0xff31, KEY_HANGEUL },	{ 0xff34, KEY_HANJA },
	/* XF86 multimedia and ACPI keys. */
	{ 0x1008ff11, KEY_VOLUMEDOWN },	{ 0x1008ff12, KEY_MUTE },
	{ 0x1008ff13, KEY_VOLUMEUP },	{ 0x1008ff14, KEY_PLAYPAUSE },
	{ 0x1008ff31, KEY_PLAYPAUSE },	/* AudioPause */
	{ 0x1008ff15, KEY_STOPCD },	{ 0x1008ff16, KEY_PREVIOUSSONG },
	{ 0x1008ff17, KEY_NEXTSONG },	{ 0x1008ff18, KEY_HOMEPAGE },
	{ 0x1008ff19, KEY_MAIL },	{ 0x1008ff1b, KEY_SEARCH },
	{ 0x1008ff1d, KEY_CALC },	{ 0x1008ff26, KEY_BACK },
	{ 0x1008ff27, KEY_FORWARD },	{ 0x1008ff28, KEY_STOP },
	{ 0x1008ff29, KEY_REFRESH },	{ 0x1008ff2a, KEY_POWER },
	{ 0x1008ff2b, KEY_WAKEUP },	{ 0x1008ff2f, KEY_SLEEP },
	{ 0x1008ff30, KEY_BOOKMARKS },	{ 0x1008ff32, KEY_MEDIA },
	{ 0x1008ff33, KEY_COMPUTER },
};

unsigned keymap_from_keysym(uint32_t keysym)
{
	/* F1-F10, F11-F12, F13-F24: XK_F1 = 0xffbe ... XK_F24 = 0xffd5. */
	static const uint8_t fkeys[24] = {
		KEY_F1, KEY_F2, KEY_F3, KEY_F4, KEY_F5, KEY_F6, KEY_F7,
		KEY_F8, KEY_F9, KEY_F10, KEY_F11, KEY_F12, KEY_F13, KEY_F14,
		KEY_F15, KEY_F16, KEY_F17, KEY_F18, KEY_F19, KEY_F20,
		KEY_F21, KEY_F22, KEY_F23, KEY_F24,
	};

	if (keysym < sizeof(ascii_table) && ascii_table[keysym])
		return ascii_table[keysym];
	if (keysym >= 'a' && keysym <= 'z')
		return ascii_table[keysym - 'a' + 'A'];
	if (keysym >= 0xffbe && keysym <= 0xffd5)
		return fkeys[keysym - 0xffbe];
	for (size_t i = 0; i < sizeof(keysym_table) / sizeof(keysym_table[0]);
	     i++)
		if (keysym_table[i].keysym == keysym)
			return keysym_table[i].key;
	return 0;
}

static void set_key(uint8_t *bitmap, unsigned k)
{
	if (k && k < 8 * KEYMAP_KEYS_BYTES)
		bitmap[k / 8] |= (uint8_t)(1u << (k % 8));
}

/* The F-keys of keymap_from_keysym() are on the USB page too. */
void keymap_keys(uint8_t bitmap[KEYMAP_KEYS_BYTES])
{
	for (unsigned i = 0; i < KEYMAP_KEYS_BYTES; i++)
		bitmap[i] = 0;
	for (size_t i = 0; i < sizeof(usb_table); i++)
		set_key(bitmap, usb_table[i]);
	for (size_t i = 0; i < sizeof(sdl_extra); i++)
		set_key(bitmap, sdl_extra[i]);
	for (size_t i = 0; i < sizeof(ascii_table); i++)
		set_key(bitmap, ascii_table[i]);
	for (size_t i = 0; i < sizeof(keysym_table) / sizeof(keysym_table[0]); i++)
		set_key(bitmap, keysym_table[i].key);
}
