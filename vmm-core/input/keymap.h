/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/input/keymap.h - key code tables.  Keys are named by Linux input
 * event codes (KEY_* of <linux/input-event-codes.h>), which say which
 * physical key, not which character: the guest's own layout applies.
 *
 * PC keyboard scancodes: IBM PS/2 Technical Reference (sets 1-3) and
 * Microsoft's "Keyboard Scan Code Specification" (extended keys, Pause,
 * Print Screen).  USB HID usages: HID Usage Tables §10 (Keyboard/Keypad
 * page 0x07), which are also SDL2's SDL_Scancode values.  X11 keysyms:
 * X Window System Protocol, Appendix A, as RFB key events carry them.
 */
#ifndef VIVARIUM_KEYMAP_H
#define VIVARIUM_KEYMAP_H

#include <stdbool.h>
#include <stdint.h>

#define KEYMAP_MAX_BYTES 8	/* Pause in set 2: e1 14 77 e1 f0 14 f0 77 */

/*
 * keymap_scancodes - the bytes a PS/2 keyboard sends for @keycode going
 * down (@down) or up, in scancode @set (1, 2 or 3).  Pause has no break
 * code (0 bytes when released).  Returns the number of bytes written to
 * @out, 0 for a key a PC keyboard does not have or a bad @set.
 */
unsigned keymap_scancodes(unsigned keycode, unsigned set, bool down,
			  uint8_t out[KEYMAP_MAX_BYTES]);

/* The 8042's translation of one set-2 byte to set 1 (the controller ORs
 * 0x80 into the byte after an 0xf0 break prefix, which it swallows). */
uint8_t keymap_xlate(uint8_t set2_byte);

/* USB HID keyboard usage (= SDL_Scancode) to KEY_*; 0 if unknown. */
unsigned keymap_from_usb(unsigned usage);

/* X11 keysym to the KEY_* that types it on a US layout (letters of either
 * case, digits and their shifted symbols, function and editing keys,
 * modifiers, keypad); 0 if unknown. */
unsigned keymap_from_keysym(uint32_t keysym);

/*
 * keymap_keys - every KEY_* that keymap_from_usb() and keymap_from_keysym()
 * can return (what the console's frontends send: a keyboard device
 * declares these), as a bitmap: bit k is bit k % 8 of byte k / 8.  Every
 * such code is below 8 * KEYMAP_KEYS_BYTES.
 */
#define KEYMAP_KEYS_BYTES 32
void keymap_keys(uint8_t bitmap[KEYMAP_KEYS_BYTES]);

#endif
