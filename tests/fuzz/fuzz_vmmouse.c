/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_vmmouse.c - the vmmouse (vmm-core/devices/vmmouse.c) and
 * the PS/2 mouse it rides on (devices/i8042.c) under a hostile guest:
 * backdoor accesses with any register values, host pointer events, the
 * guest's own i8042 traffic (mouse resets included), device resets and
 * save -> load round trips.
 *
 * Input: operations until the input ends, each an opcode byte (modulo
 * OP_COUNT) and its arguments (bytes past the end read as 0):
 *   OP_DOOR   sel, cmd, le32 ebx, le32 esi   a backdoor access: sel bits
 *             0-1 size (1, 2, 4, 4), bit 2 an OUT, bit 3 a wrong magic;
 *             cmd bits 0-2 pick GETVERSION, DATA, STATUS, COMMAND,
 *             RESTRICT or any 16-bit command (then le16 follows); ebx bit
 *             31 clear with bits 0-2 < 4 picks a COMMAND subcommand
 *   OP_ABS    le16 x, le16 y, dz, buttons    the console's absolute event
 *   OP_REL    le16 dx, le16 dy, dz, buttons  the PS/2 mouse's host motion
 *   OP_KBC    which, byte                    port 0x64 / 0x60 write, 0x60 read
 *   OP_SAVE                                  save, load into a fresh vmmouse
 *   OP_RESET                                 the machine's reset of it
 * Checked (abort on failure): a wrong magic, another width or an OUT
 * changes no register and reads all-ones; STATUS is the error or a length
 * within the bound; only DATA changes EBX-EDI, GETVERSION EBX; every save
 * loads and saves the same again.
 */
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
#include "devices/i8042.h"
#include "devices/vmmouse.h"
#include "display/console.h"
#include "log.h"

enum { OP_DOOR, OP_ABS, OP_REL, OP_KBC, OP_SAVE, OP_RESET, OP_COUNT };

static struct bus *pio;

const char fuzz_target[] = "fuzz_vmmouse";

static void irq_set(void *opaque, unsigned gsi, int level)
{
	(void)opaque, (void)gsi, (void)level;
}

static void door(struct vmmouse *v, struct in *in)
{
	static const unsigned sizes[] = { 1, 2, 4, 4 };
	static const uint16_t cmds[] = {
		VMPORT_CMD_GETVERSION, VMPORT_CMD_ABSPOINTER_DATA,
		VMPORT_CMD_ABSPOINTER_STATUS, VMPORT_CMD_ABSPOINTER_COMMAND,
		VMPORT_CMD_ABSPOINTER_RESTRICT,
	};
	static const uint32_t subs[] = {
		VMMOUSE_CMD_ENABLE, VMMOUSE_CMD_DISABLE,
		VMMOUSE_CMD_REQUEST_RELATIVE, VMMOUSE_CMD_REQUEST_ABSOLUTE,
	};
	uint8_t sel = in_u8(in), c = in_u8(in);
	unsigned size = sizes[sel & 3];
	bool wr = sel & 4, bad = sel & 8;
	struct io_regs r, was;
	uint16_t cmd = (c & 7) < 5 ? cmds[c & 7] : in_u16(in);
	uint32_t ebx = in_u32(in), eax;

	if (cmd == VMPORT_CMD_ABSPOINTER_COMMAND && !(ebx >> 31) && (ebx & 7) < 4)
		ebx = subs[ebx & 7];
	r = (struct io_regs){
		.rax = bad ? 0xffffffff00000000ull | (ebx ^ 0x5a5a5a5a)
			   : 0xabcd000000000000ull | VMPORT_MAGIC,
		.rbx = 0x1234567800000000ull | ebx,
		.rcx = 0xffff0000ull | cmd, .rdx = VMPORT_PORT,
		.rsi = 0x5151000000000000ull | in_u32(in), .rdi = 0xd1d1d1d1,
	};
	was = r;
	eax = vmmouse_backdoor(v, size, wr, ebx, &r);
	if (bad || wr || size != 4) {
		if (eax != 0xffffffffu || memcmp(&r, &was, sizeof(r)))
			fuzz_fail("a rejected access changed something");
		return;
	}
	if (r.rax != was.rax ||
	    (r.rcx != was.rcx && cmd != VMPORT_CMD_ABSPOINTER_DATA))
		fuzz_fail("EAX or ECX changed outside DATA");
	if (cmd != VMPORT_CMD_ABSPOINTER_DATA && cmd != VMPORT_CMD_GETVERSION &&
	    memcmp(&r, &was, sizeof(r)))
		fuzz_fail("a register changed");
	if (cmd == VMPORT_CMD_GETVERSION &&
	    (eax != VMPORT_VERSION || r.rbx != VMPORT_MAGIC))
		fuzz_fail("GETVERSION");
	if (cmd == VMPORT_CMD_ABSPOINTER_STATUS) {
		if (eax != VMMOUSE_ERROR && eax > VMMOUSE_QUEUE_WORDS)
			fuzz_fail("STATUS past the bound");
		if (eax == VMMOUSE_ERROR && vmmouse_active(v))
			fuzz_fail("active while STATUS says disabled");
	}
	if (cmd == VMPORT_CMD_ABSPOINTER_DATA) {
		uint32_t n = ebx;

		/* Registers past the words asked for stay. */
		if ((n < 2 && r.rbx != was.rbx) || (n < 3 && r.rcx != was.rcx) ||
		    (n < 4 && r.rdx != was.rdx) || (n < 5 && r.rsi != was.rsi) ||
		    (n < 6 && r.rdi != was.rdi))
			fuzz_fail("DATA wrote past the words asked for");
		if (eax == VMMOUSE_ERROR && memcmp(&r, &was, sizeof(r)))
			fuzz_fail("a failed DATA changed registers");
	}
}

static struct vmmouse *save_load(struct i8042 *kbc, struct vmmouse *v)
{
	const struct device_ops *ops = &vmmouse_device_ops;
	GVariant *s = fuzz_save(ops, v, "save failed");
	struct vmmouse *n;

	if (!g_variant_is_of_type(s, G_VARIANT_TYPE(VMMOUSE_STATE_TYPE)))
		fuzz_fail("save: wrong type");
	vmmouse_free(v);
	n = vmmouse_new(kbc);
	if (!n)
		fuzz_fail("out of memory");
	fuzz_load_same(ops, n, s, "save failed");
	return n;
}

static void one_op(struct i8042 *kbc, struct vmmouse **v, struct in *in)
{
	uint8_t op = in_u8(in) % OP_COUNT;
	int claimed;

	switch (op) {
	case OP_DOOR:
		door(*v, in);
		break;
	case OP_ABS: {
		uint16_t x = in_u16(in), y = in_u16(in);
		int8_t dz = (int8_t)in_u8(in);

		vmmouse_input_ops.abs(*v, x, y, dz, in_u8(in));
		break;
	}
	case OP_REL: {
		int16_t dx = (int16_t)in_u16(in), dy = (int16_t)in_u16(in);
		int8_t dz = (int8_t)in_u8(in);

		i8042_mouse_event(kbc, dx, dy, dz, in_u8(in));
		break;
	}
	case OP_KBC: {
		uint8_t which = in_u8(in), b = in_u8(in);

		if (which % 3 == 0)
			bus_write(pio, 0x64, b, 1, &claimed);
		else if (which % 3 == 1)
			bus_write(pio, 0x60, b, 1, &claimed);
		else
			bus_read(pio, 0x60, 1, &claimed);
		break;
	}
	case OP_SAVE:
		*v = save_load(kbc, *v);
		break;
	case OP_RESET:
		vmmouse_device_ops.reset(*v);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size, 0 };
	struct irq_line line = { irq_set, NULL, 12 };
	struct i8042 *kbc;
	struct vmmouse *v;

	if (!pio) {
		log_init();
		pio = bus_new("pio");
		if (!pio)
			fuzz_fail("out of memory");
	}
	kbc = i8042_new(NULL, NULL, line, line, NULL);
	v = vmmouse_new(kbc);
	if (!kbc || !v || i8042_attach(kbc, pio) < 0)
		fuzz_fail("setup");
	while (in.at < in.n)
		one_op(kbc, &v, &in);
	v = save_load(kbc, v);
	vmmouse_free(v);
	bus_unregister(pio, 0x60);
	bus_unregister(pio, 0x64);
	i8042_free(kbc);
	return 0;
}

static void seed(void (*add)(const void *, size_t), const uint8_t *b, size_t n)
{
	add(b, n);
}

void fuzz_make_seeds(void (*add)(const void *data, size_t len))
{
	/* Linux's sequence: PS/2 reporting on, enable, status, version,
	 * restrict, absolute, an event, status, data 4. */
	static const uint8_t linux_seq[] = {
		OP_KBC, 0, 0xd4, OP_KBC, 1, 0xf4, OP_KBC, 2, 0,
		OP_DOOR, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0,		/* GETVERSION */
		OP_DOOR, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0,		/* ENABLE */
		OP_DOOR, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0,		/* STATUS */
		OP_DOOR, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0,		/* DATA 1 */
		OP_DOOR, 2, 4, 1, 0, 0, 0, 0, 0, 0, 0,		/* RESTRICT */
		OP_DOOR, 2, 3, 3, 0, 0, 0, 0, 0, 0, 0,		/* ABSOLUTE */
		OP_ABS, 0x34, 0x12, 0x78, 0x56, 0xff, 1,
		OP_KBC, 2, 0, OP_KBC, 2, 0, OP_KBC, 2, 0,
		OP_DOOR, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0,		/* STATUS */
		OP_DOOR, 2, 1, 4, 0, 0, 0, 0, 0, 0, 0,		/* DATA 4 */
		OP_SAVE,
	};
	/* Relative mode, a mouse reset, DATA past the queue. */
	static const uint8_t rel_seq[] = {
		OP_DOOR, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0,
		OP_REL, 5, 0, 0xfb, 0xff, 1, 4,
		OP_DOOR, 2, 1, 6, 0, 0, 0, 0, 0, 0, 0,
		OP_SAVE,
		OP_KBC, 0, 0xd4, OP_KBC, 1, 0xff,
		OP_DOOR, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0,
		OP_RESET,
	};

	seed(add, linux_seq, sizeof(linux_seq));
	seed(add, rel_seq, sizeof(rel_seq));
}
