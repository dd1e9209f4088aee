/* SPDX-License-Identifier: MIT */
/*
 * The 8042 keyboard controller, enough for firmware and Linux's i8042 and
 * atkbd drivers to probe without waiting on timeouts:
 *  - controller commands on port 0x64: RAM read/write (0x20-0x3f, 0x60-0x7f;
 *    byte 0 is the configuration byte), 0xa7/0xa8 and 0xad/0xae port
 *    disable/enable, 0xa9/0xab interface tests (0x00 = no error), 0xaa
 *    self-test (0x55), 0xc0 input port, 0xd0/0xd1 output port (bit 0 low =
 *    reset, bit 1 = A20), 0xd2/0xd3 write the keyboard/aux output buffer
 *    (Linux's AUX loop and IRQ tests), 0xd4 write to the aux device, 0xdd/0xdf
 *    A20 off/on, 0xf0-0xff pulse output port bits (bit 0: reset);
 *  - a keyboard that answers commands minimally: 0xff reset -> 0xfa 0xaa,
 *    0xf2 identify -> 0xfa 0xab 0x83 (0x41 when the controller translates,
 *    as a real 8042 translates 0x83), 0xee echo -> 0xee, 0xf0 0x00 (get
 *    scancode set) -> 0xfa 0xfa 0x02, any other byte (and the parameter of
 *    0xed/0xf0/0xf3) -> 0xfa;
 *  - no mouse: bytes for the aux device come back as 0xfe with the status
 *    register's timeout bit set, as a controller with nothing plugged in
 *    reports it, which makes Linux's psmouse probe fail at once.
 * Scancodes and a real mouse are the console issue's.
 *
 * The output buffer is a small queue; the status register describes its
 * head.  IRQ 1 (keyboard byte, config bit 0) or IRQ 12 (aux byte, config
 * bit 1) is high while such a byte is in the output buffer; reading it
 * lowers the line, and the next byte raises it again (a fresh edge).
 */
#include "i8042.h"

#include <stdint.h>
#include <stdlib.h>

#include "../bus.h"

#define STS_OBF		0x01
#define STS_IBF		0x02
#define STS_SYS		0x04
#define STS_CMD		0x08	/* last write was to the command port */
#define STS_UNLOCKED	0x10	/* keyboard not inhibited by the keylock */
#define STS_AUXOBF	0x20
#define STS_TIMEOUT	0x40
#define STS_PARITY	0x80

#define CFG_KBDINT	0x01
#define CFG_AUXINT	0x02
#define CFG_SYS		0x04
#define CFG_KBDDIS	0x10
#define CFG_AUXDIS	0x20
#define CFG_XLATE	0x40

#define OUT_RESET	0x01	/* low: the CPU is held in reset */
#define OUT_A20		0x02

#define QUEUE_SIZE	16

enum src { SRC_KBD, SRC_AUX };

struct obyte {
	uint8_t data;
	uint8_t src;
	bool timeout;
};

struct i8042 {
	const struct i8042_ops *ops;
	void *opaque;
	struct irq_line kbd_irq, aux_irq;
	int kbd_level, aux_level;

	uint8_t ram[32];	/* ram[0] is the configuration byte */
	uint8_t outport;
	uint8_t status_cmd;	/* STS_CMD */
	uint8_t pending_cmd;	/* controller command awaiting its data byte */
	uint8_t kbd_pending;	/* keyboard command awaiting its parameter */
	uint8_t scancode_set;

	struct obyte q[QUEUE_SIZE];
	unsigned head, count;
};

/* ---- output buffer and IRQs ------------------------------------------- */

static void update_irq(struct i8042 *k)
{
	int kbd = 0, aux = 0;

	if (k->count) {
		const struct obyte *b = &k->q[k->head];

		if (b->src == SRC_AUX)
			aux = (k->ram[0] & CFG_AUXINT) != 0;
		else
			kbd = (k->ram[0] & CFG_KBDINT) != 0;
	}
	if (kbd != k->kbd_level) {
		k->kbd_level = kbd;
		irq_line_set(&k->kbd_irq, kbd);
	}
	if (aux != k->aux_level) {
		k->aux_level = aux;
		irq_line_set(&k->aux_irq, aux);
	}
}

static void queue_byte(struct i8042 *k, uint8_t data, enum src src,
		       bool timeout)
{
	if (k->count == QUEUE_SIZE)
		return;		/* overrun: dropped */
	k->q[(k->head + k->count) % QUEUE_SIZE] =
		(struct obyte){ data, (uint8_t)src, timeout };
	k->count++;
	update_irq(k);
}

static void reply(struct i8042 *k, uint8_t data)
{
	queue_byte(k, data, SRC_KBD, false);
}

static uint8_t status(const struct i8042 *k)
{
	uint8_t s = STS_UNLOCKED | k->status_cmd;

	if (k->ram[0] & CFG_SYS)
		s |= STS_SYS;
	if (k->count) {
		const struct obyte *b = &k->q[k->head];

		s |= STS_OBF;
		if (b->src == SRC_AUX)
			s |= STS_AUXOBF;
		if (b->timeout)
			s |= STS_TIMEOUT;
	}
	return s;
}

static uint8_t read_data(struct i8042 *k)
{
	uint8_t v;

	if (!k->count)
		return k->q[(k->head + QUEUE_SIZE - 1) % QUEUE_SIZE].data;
	v = k->q[k->head].data;
	k->head = (k->head + 1) % QUEUE_SIZE;
	k->count--;
	/* The line drops when the buffer is read; a following byte raises
	 * it again, so the PIC sees an edge per byte. */
	if (k->kbd_level) {
		k->kbd_level = 0;
		irq_line_set(&k->kbd_irq, 0);
	}
	if (k->aux_level) {
		k->aux_level = 0;
		irq_line_set(&k->aux_irq, 0);
	}
	update_irq(k);
	return v;
}

/* ---- output port ------------------------------------------------------ */

static void set_outport(struct i8042 *k, uint8_t v)
{
	uint8_t old = k->outport;

	k->outport = v;
	if ((old ^ v) & OUT_A20 && k->ops && k->ops->set_a20)
		k->ops->set_a20(k->opaque, v & OUT_A20);
	if (!(v & OUT_RESET) && k->ops && k->ops->reset)
		k->ops->reset(k->opaque);
}

static uint8_t outport_value(const struct i8042 *k)
{
	uint8_t v = k->outport & (uint8_t)~0x30;

	/* Bits 4/5: keyboard / aux output buffer full. */
	if (k->count)
		v |= k->q[k->head].src == SRC_AUX ? 0x20 : 0x10;
	return v;
}

/* ---- the keyboard ----------------------------------------------------- */

static void kbd_command(struct i8042 *k, uint8_t b)
{
	if (k->kbd_pending) {
		uint8_t cmd = k->kbd_pending;

		k->kbd_pending = 0;
		reply(k, 0xfa);
		if (cmd == 0xf0) {
			if (b == 0)
				reply(k, k->scancode_set);
			else if (b <= 3)
				k->scancode_set = b;
		}
		return;
	}
	switch (b) {
	case 0xff:		/* reset and self-test */
		k->scancode_set = 2;
		reply(k, 0xfa);
		reply(k, 0xaa);
		break;
	case 0xf2:		/* identify: MF2 keyboard */
		reply(k, 0xfa);
		reply(k, 0xab);
		reply(k, (k->ram[0] & CFG_XLATE) ? 0x41 : 0x83);
		break;
	case 0xee:		/* echo */
		reply(k, 0xee);
		break;
	case 0xed:		/* set LEDs */
	case 0xf0:		/* get/set scancode set */
	case 0xf3:		/* set typematic rate */
		k->kbd_pending = b;
		reply(k, 0xfa);
		break;
	default:
		reply(k, 0xfa);
		break;
	}
}

/* ---- controller commands ---------------------------------------------- */

static void controller_command(struct i8042 *k, uint8_t cmd)
{
	if (cmd >= 0x20 && cmd <= 0x3f) {
		reply(k, k->ram[cmd & 0x1f]);
		return;
	}
	if ((cmd >= 0x60 && cmd <= 0x7f) || cmd == 0xd1 || cmd == 0xd2 ||
	    cmd == 0xd3 || cmd == 0xd4) {
		k->pending_cmd = cmd;
		return;
	}
	if (cmd >= 0xf0) {
		/* Pulse the output port bits whose command bit is 0; only
		 * bit 0 (reset) has an effect. */
		if (!(cmd & 1) && k->ops && k->ops->reset)
			k->ops->reset(k->opaque);
		return;
	}
	switch (cmd) {
	case 0xa4:		/* password installed? no */
		reply(k, 0xf1);
		break;
	case 0xa7:
		k->ram[0] |= CFG_AUXDIS;
		break;
	case 0xa8:
		k->ram[0] &= (uint8_t)~CFG_AUXDIS;
		break;
	case 0xa9:		/* aux interface test */
	case 0xab:		/* keyboard interface test */
		reply(k, 0x00);
		break;
	case 0xaa:		/* controller self-test */
		k->ram[0] |= CFG_SYS;
		reply(k, 0x55);
		break;
	case 0xad:
		k->ram[0] |= CFG_KBDDIS;
		break;
	case 0xae:
		k->ram[0] &= (uint8_t)~CFG_KBDDIS;
		break;
	case 0xc0:		/* input port: keyboard not inhibited */
		reply(k, 0x80);
		break;
	case 0xd0:
		reply(k, outport_value(k));
		break;
	case 0xdd:
		set_outport(k, k->outport & (uint8_t)~OUT_A20);
		break;
	case 0xdf:
		set_outport(k, k->outport | OUT_A20);
		break;
	case 0xe0:		/* test inputs */
		reply(k, 0x00);
		break;
	default:
		break;		/* unknown: ignored */
	}
}

static void controller_data(struct i8042 *k, uint8_t cmd, uint8_t v)
{
	if (cmd >= 0x60 && cmd <= 0x7f) {
		if (cmd == 0x60)
			v &= 0x7f;	/* bit 7 of the config byte is 0 */
		k->ram[cmd & 0x1f] = v;
		update_irq(k);
		return;
	}
	switch (cmd) {
	case 0xd1:
		set_outport(k, v);
		break;
	case 0xd2:
		queue_byte(k, v, SRC_KBD, false);
		break;
	case 0xd3:
		queue_byte(k, v, SRC_AUX, false);
		break;
	case 0xd4:
		/* No mouse: the transmission times out. */
		queue_byte(k, 0xfe, SRC_AUX, true);
		break;
	}
}

static uint64_t data_port_read(void *opaque, uint64_t offset, unsigned size)
{
	(void)offset, (void)size;
	return read_data(opaque);
}

static void data_port_write(void *opaque, uint64_t offset, uint64_t value,
			    unsigned size)
{
	struct i8042 *k = opaque;
	uint8_t cmd = k->pending_cmd;

	(void)offset, (void)size;
	k->status_cmd = 0;
	k->pending_cmd = 0;
	if (cmd)
		controller_data(k, cmd, (uint8_t)value);
	else
		kbd_command(k, (uint8_t)value);
}

static const struct bus_ops i8042_ops_data = {
	.name = "i8042-data",
	.read = data_port_read,
	.write = data_port_write,
};

static uint64_t cmd_port_read(void *opaque, uint64_t offset, unsigned size)
{
	(void)offset, (void)size;
	return status(opaque);
}

static void cmd_port_write(void *opaque, uint64_t offset, uint64_t value,
			   unsigned size)
{
	struct i8042 *k = opaque;

	(void)offset, (void)size;
	k->status_cmd = STS_CMD;
	k->pending_cmd = 0;
	controller_command(k, (uint8_t)value);
}

static const struct bus_ops i8042_ops_cmd = {
	.name = "i8042-cmd",
	.read = cmd_port_read,
	.write = cmd_port_write,
};

/* ---- life cycle ------------------------------------------------------- */

void i8042_reset(struct i8042 *k)
{
	/* The state a PC BIOS leaves (the direct boot path has no BIOS):
	 * translation on, system flag set, both interrupts enabled. */
	k->ram[0] = CFG_XLATE | CFG_SYS | CFG_AUXINT | CFG_KBDINT;
	k->outport = 0xcc | OUT_A20 | OUT_RESET;
	k->status_cmd = 0;
	k->pending_cmd = 0;
	k->kbd_pending = 0;
	k->scancode_set = 2;
	k->head = k->count = 0;
	update_irq(k);
}

struct i8042 *i8042_new(const struct i8042_ops *ops, void *opaque,
			struct irq_line kbd_irq, struct irq_line aux_irq,
			struct vtimer_queue *timers)
{
	(void)timers;	/* typematic repeat: to come */
	struct i8042 *k = calloc(1, sizeof(*k));

	if (!k)
		return NULL;
	k->ops = ops;
	k->opaque = opaque;
	k->kbd_irq = kbd_irq;
	k->aux_irq = aux_irq;
	i8042_reset(k);
	return k;
}

void i8042_free(struct i8042 *k)
{
	free(k);
}

int i8042_attach(struct i8042 *k, struct bus *pio)
{
	int r = bus_register(pio, 0x60, 1, &i8042_ops_data, k);

	if (r < 0)
		return r;
	r = bus_register(pio, 0x64, 1, &i8042_ops_cmd, k);
	if (r < 0)
		bus_unregister(pio, 0x60);
	return r;
}
