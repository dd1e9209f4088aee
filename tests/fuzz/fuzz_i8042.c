/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_i8042.c - the PS/2 controller (vmm-core/devices/i8042.c)
 * under a hostile guest: controller commands and their data bytes at
 * ports 0x64/0x60, keyboard and mouse commands (through 0xd4 for the
 * mouse), reads of both ports, interleaved with host keys and mouse
 * motion through the console, time passing for typematic repeat, and
 * save -> load round trips.
 *
 * Input: a mode byte (bit 0: the keyboard has a timer queue, so held keys
 * repeat), then operations until it ends, each an opcode byte (modulo
 * OP_COUNT) and its arguments (bytes past the end read as 0):
 *   OP_CMD    byte                 write port 0x64
 *   OP_DATA   byte                 write port 0x60
 *   OP_AUX    byte                 0xd4 then byte: a mouse command
 *   OP_READ   count                count x (status, then data if OBF)
 *   OP_RAW    port bit, size, le32 any access of 1/2/4 bytes (bit 7: read)
 *   OP_KEY    le16 keycode, down   console_key()
 *   OP_MOUSE  le16 dx, le16 dy, dz, buttons   console_mouse()
 *   OP_CLOCK  le16 t               time passes by t x 64 us; timers run
 *   OP_SAVE                        save, load into a fresh controller
 * Checked (abort on failure): every save loads into a fresh controller
 * (load checks the queues' bounds and that the IRQ levels match the
 * output buffer and the configuration byte), the IRQ lines the device
 * drives equal the levels it saves, and a reset pulse only follows
 * a pulse command (0xf0-0xff) or an output port write (then the
 * controller is reset, as the machine's reset does).
 */
#include <linux/input-event-codes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "fuzz.h"
#include "fuzz_input.h"
#include "fuzzlib.h"

#include "bus.h"
#include "clock.h"
#include "devices/i8042.h"
#include "display/console.h"
#include "log.h"
#include "timer.h"

enum { OP_CMD, OP_DATA, OP_AUX, OP_READ, OP_RAW, OP_KEY, OP_MOUSE, OP_CLOCK,
       OP_SAVE, OP_COUNT };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct bus *pio;
static struct console *con;
static struct vtimer_queue *timers;
static bool ready;
static int irq_level[2];
static bool reset_ok;		/* the last write may pulse reset */
static bool reset_seen;		/* the machine resets the controller */

const char fuzz_target[] = "fuzz_i8042";

static void set_irq(void *opaque, unsigned gsi, int level)
{
	irq_level[gsi == 12] = level;
}

static void on_reset(void *opaque)
{
	if (!reset_ok)
		fuzz_fail("reset pulsed without a command asking for it");
	reset_seen = true;
}

static void on_a20(void *opaque, bool on)
{
}

static const struct i8042_ops kbc_ops = { .reset = on_reset,
					  .set_a20 = on_a20 };

static void init_once(void)
{
	if (ready)
		return;
	log_set_level(LOG_ERROR);
	pio = bus_new("pio");
	con = console_new();
	timers = vtimer_queue_new_manual(&fuzz_clock);
	if (!pio || !con || !timers)
		fuzz_fail("cannot build the machine");
	ready = true;
}

static struct i8042 *kbc_new(bool with_timers)
{
	struct i8042 *k = i8042_new(&kbc_ops, NULL,
				    (struct irq_line){ set_irq, NULL, 1 },
				    (struct irq_line){ set_irq, NULL, 12 },
				    with_timers ? timers : NULL);

	if (!k || i8042_attach(k, pio) != 0)
		fuzz_fail("cannot build the controller");
	console_set_input(con, &i8042_input_ops, k, &lock);
	return k;
}

static void kbc_free(struct i8042 *k)
{
	console_set_input(con, NULL, NULL, NULL);
	bus_unregister(pio, 0x60);
	bus_unregister(pio, 0x64);
	i8042_free(k);
}

/* Save (checking the IRQ levels it records against the lines), load into
 * a fresh controller, free the old.  Device lock held. */
static struct i8042 *save_load(struct i8042 *k, bool with_timers)
{
	const struct device_ops *ops = &i8042_device_ops;
	GVariant *s = fuzz_save(ops, k, "save failed"), *ctrl;
	gboolean irq1, irq12;

	ctrl = g_variant_get_child_value(s, 0);
	g_variant_get_child(ctrl, 10, "b", &irq1);
	g_variant_get_child(ctrl, 11, "b", &irq12);
	g_variant_unref(ctrl);
	if (!irq1 != !irq_level[0] || !irq12 != !irq_level[1])
		fuzz_fail("the IRQ lines differ from the levels saved");
	pthread_mutex_unlock(&lock);
	kbc_free(k);
	k = kbc_new(with_timers);
	pthread_mutex_lock(&lock);
	fuzz_load(ops, k, s);
	g_variant_unref(s);
	return k;
}

static void outb(uint16_t port, uint8_t v)
{
	/* 0xdd/0xdf write the output port, whose reset bit 0xd1 may hold. */
	reset_ok = port == 0x64 ? (v & 0xf0) == 0xf0 || v == 0xdd || v == 0xdf :
				  true;
	bus_write(pio, port, v, 1, NULL);
	reset_ok = false;
}

static void one_op(struct i8042 **k, bool with_timers, struct in *in)
{
	static const unsigned sizes[4] = { 1, 2, 4, 1 };
	unsigned n, kc;
	uint8_t a, b;
	int dx, dy, dz;

	switch (in_u8(in) % OP_COUNT) {
	case OP_CMD:
		outb(0x64, in_u8(in));
		break;
	case OP_DATA:
		outb(0x60, in_u8(in));
		break;
	case OP_AUX:
		outb(0x64, 0xd4);
		outb(0x60, in_u8(in));
		break;
	case OP_READ:
		n = in_u8(in);
		for (unsigned i = 0; i < n; i++)
			if (bus_read(pio, 0x64, 1, NULL) & 1)
				bus_read(pio, 0x60, 1, NULL);
		break;
	case OP_RAW:
		a = in_u8(in);
		b = in_u8(in);
		if (a & 0x80) {
			bus_read(pio, (a & 1) ? 0x64 : 0x60, sizes[b % 4], NULL);
		} else {
			reset_ok = true;	/* any byte: 0xd1 data too */
			bus_write(pio, (a & 1) ? 0x64 : 0x60, in_u32(in),
				  sizes[b % 4], NULL);
			reset_ok = false;
		}
		break;
	case OP_KEY:
		kc = in_u16(in) % (KEY_MAX + 2);
		a = in_u8(in);
		pthread_mutex_unlock(&lock);	/* the console takes it */
		console_key(con, kc, a & 1);
		pthread_mutex_lock(&lock);
		break;
	case OP_MOUSE:
		dx = (int16_t)in_u16(in);
		dy = (int16_t)in_u16(in);
		dz = (int8_t)in_u8(in);
		a = in_u8(in);
		pthread_mutex_unlock(&lock);
		console_mouse(con, dx, dy, dz, a & 7);
		pthread_mutex_lock(&lock);
		break;
	case OP_CLOCK:
		fuzz_now_ns += (uint64_t)in_u16(in) * 64000;
		vtimer_queue_run_due(timers, fuzz_now_ns);
		break;
	case OP_SAVE:
		*k = save_load(*k, with_timers);
		break;
	}
	if (reset_seen) {		/* what the machine's reset does */
		reset_seen = false;
		i8042_reset(*k);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size, 0 };
	bool with_timers;
	struct i8042 *k;

	init_once();
	with_timers = in_u8(&in) & 1;
	fuzz_now_ns = 1000000000ull;
	irq_level[0] = irq_level[1] = 0;
	k = kbc_new(with_timers);
	pthread_mutex_lock(&lock);
	while (in_more(&in))
		one_op(&k, with_timers, &in);
	k = save_load(k, with_timers);
	pthread_mutex_unlock(&lock);
	kbc_free(k);
	return 0;
}

/* ---- seeds: Linux's i8042 + atkbd + psmouse probes, then input ---------- */

static void s_op(struct seed *s, uint8_t op, uint8_t v)
{
	put8(s, op);
	put8(s, v);
}

static void s_read(struct seed *s, uint8_t n)
{
	s_op(s, OP_READ, n);
}

static void s_key(struct seed *s, uint16_t kc, bool down)
{
	put8(s, OP_KEY);
	put16(s, kc);
	put8(s, down);
}

static void s_mouse(struct seed *s, int16_t dx, int16_t dy, int8_t dz,
		    uint8_t b)
{
	put8(s, OP_MOUSE);
	put16(s, (uint16_t)dx);
	put16(s, (uint16_t)dy);
	put8(s, (uint8_t)dz);
	put8(s, b);
}

static void s_clock(struct seed *s, uint16_t t)
{
	put8(s, OP_CLOCK);
	put16(s, t);
}

void fuzz_make_seeds(void (*add)(const void *, size_t))
{
	static struct seed s;

	/* The controller: self-test, CTR read/write, interface tests, the
	 * output port (A20), aux loopback, the keyboard probed and typing
	 * in set 2 translated, then set 3 untranslated with typematic. */
	s.n = 0;
	put8(&s, 1);
	s_op(&s, OP_CMD, 0xaa); s_read(&s, 2);
	s_op(&s, OP_CMD, 0x20); s_read(&s, 1);
	s_op(&s, OP_CMD, 0x60); s_op(&s, OP_DATA, 0x44);
	s_op(&s, OP_CMD, 0xab); s_read(&s, 1);
	s_op(&s, OP_CMD, 0xa9); s_read(&s, 1);
	s_op(&s, OP_CMD, 0xd0); s_read(&s, 1);
	s_op(&s, OP_CMD, 0xd1); s_op(&s, OP_DATA, 0xdd);
	s_op(&s, OP_CMD, 0xd3); s_op(&s, OP_DATA, 0x5a); s_read(&s, 1);
	s_op(&s, OP_CMD, 0xd2); s_op(&s, OP_DATA, 0xa5); s_read(&s, 1);
	s_op(&s, OP_CMD, 0x60); s_op(&s, OP_DATA, 0x47);
	s_op(&s, OP_DATA, 0xff); s_read(&s, 2);
	s_op(&s, OP_DATA, 0xf2); s_read(&s, 3);
	s_op(&s, OP_DATA, 0xed); s_op(&s, OP_DATA, 0x07); s_read(&s, 2);
	s_op(&s, OP_DATA, 0xf3); s_op(&s, OP_DATA, 0x00); s_read(&s, 2);
	s_op(&s, OP_DATA, 0xf4); s_read(&s, 1);
	s_key(&s, KEY_A, true); s_read(&s, 4);
	s_key(&s, KEY_A, false); s_read(&s, 4);
	s_key(&s, KEY_RIGHTCTRL, true); s_key(&s, KEY_PAUSE, true);
	s_key(&s, KEY_PAUSE, false); s_key(&s, KEY_RIGHTCTRL, false);
	s_key(&s, KEY_KPSLASH, true); s_clock(&s, 10000); s_read(&s, 20);
	put8(&s, OP_SAVE);
	s_clock(&s, 2000); s_read(&s, 10);
	s_op(&s, OP_DATA, 0xf0); s_op(&s, OP_DATA, 0x03); s_read(&s, 2);
	s_op(&s, OP_CMD, 0x60); s_op(&s, OP_DATA, 0x07);
	s_op(&s, OP_DATA, 0xfa); s_read(&s, 1);
	s_op(&s, OP_DATA, 0xfc); s_op(&s, OP_DATA, 0x1c);
	s_op(&s, OP_DATA, 0xf4);
	s_key(&s, KEY_LEFTSHIFT, true); s_key(&s, KEY_B, true);
	s_clock(&s, 20000);
	put8(&s, OP_SAVE);
	s_read(&s, 40);
	s_op(&s, OP_DATA, 0xf0); s_op(&s, OP_DATA, 0x00); s_read(&s, 2);
	s_op(&s, OP_DATA, 0xee); s_op(&s, OP_DATA, 0xfe); s_read(&s, 3);
	add(s.b, s.n);

	/* The mouse: reset, the IntelliMouse knock (200, 100, 80), ID,
	 * resolution, scaling, stream reporting with motion and the wheel,
	 * remote mode and read data, wrap mode, status. */
	s.n = 0;
	put8(&s, 0);
	s_op(&s, OP_CMD, 0xa8);
	s_op(&s, OP_AUX, 0xff); s_read(&s, 3);
	s_op(&s, OP_AUX, 0xf3); s_op(&s, OP_AUX, 200);
	s_op(&s, OP_AUX, 0xf3); s_op(&s, OP_AUX, 100);
	s_op(&s, OP_AUX, 0xf3); s_op(&s, OP_AUX, 80); s_read(&s, 6);
	s_op(&s, OP_AUX, 0xf2); s_read(&s, 2);
	s_op(&s, OP_AUX, 0xe8); s_op(&s, OP_AUX, 3);
	s_op(&s, OP_AUX, 0xe7);
	s_op(&s, OP_AUX, 0xf4); s_read(&s, 8);
	s_mouse(&s, 5, -3, 1, 1); s_mouse(&s, 300, 400, -2, 3);
	s_read(&s, 4);
	s_mouse(&s, -30000, 30000, 0, 0);
	put8(&s, OP_SAVE);
	s_read(&s, 16);
	s_op(&s, OP_AUX, 0xe9); s_read(&s, 4);
	s_op(&s, OP_AUX, 0xf0); s_mouse(&s, 7, 7, 0, 4);
	s_op(&s, OP_AUX, 0xeb); s_read(&s, 6);
	s_op(&s, OP_AUX, 0xee); s_op(&s, OP_AUX, 0x12); s_op(&s, OP_AUX, 0xec);
	s_read(&s, 4);
	s_op(&s, OP_CMD, 0xa7); s_mouse(&s, 1, 1, 0, 0);
	s_op(&s, OP_CMD, 0xa8); s_read(&s, 8);
	add(s.b, s.n);

	/* Hostile: floods without reads, commands cut by others, odd
	 * widths, the reset pulse. */
	s.n = 0;
	put8(&s, 1);
	s_op(&s, OP_DATA, 0xf4);
	s_op(&s, OP_AUX, 0xf4);
	for (int i = 0; i < 40; i++) {
		s_key(&s, (uint16_t)(KEY_Q + i % 20), i & 1);
		s_mouse(&s, (int16_t)(i * 100), (int16_t)-i, (int8_t)i, (uint8_t)i);
		s_op(&s, OP_DATA, 0xee);
	}
	s_op(&s, OP_DATA, 0xed); s_op(&s, OP_CMD, 0x20);
	s_op(&s, OP_DATA, 0xf3); s_op(&s, OP_DATA, 0xff);
	s_op(&s, OP_CMD, 0x60); s_op(&s, OP_CMD, 0xd4);
	put8(&s, OP_RAW); put8(&s, 0); put8(&s, 2); put32(&s, 0xf4ff00ed);
	put8(&s, OP_RAW); put8(&s, 0x80); put8(&s, 1);
	s_op(&s, OP_CMD, 0xf0);
	put8(&s, OP_SAVE);
	s_read(&s, 100);
	s_op(&s, OP_CMD, 0xfe);
	add(s.b, s.n);
}
