/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/devices/pic.c - the cascaded 8259A pair (Intel 8259A datasheet,
 * "Programming the 8259A") with the PIIX edge/level control registers
 * (Intel 82371AB PIIX4 datasheet, ELCR1/ELCR2 at 0x4d0/0x4d1).
 *
 * Each chip keeps its input levels; IRR is derived from them: an edge input
 * latches a request on a low-to-high transition, a level input requests
 * while it is high.  The slave's INT output is the master's IR2 request:
 * a level, so a slave request withdrawn before INTA (a masked or dropped
 * level input) withdraws the master's too.
 */
#include "pic.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <glib.h>

#include "../bus.h"
#include "../log.h"

#define PIC_CASCADE_IRQ	2

/* ELCR bits that may be set: PIIX fixes IRQ 0, 1, 2, 8 and 13 to edge. */
#define ELCR_MASK_MASTER	0xf8
#define ELCR_MASK_SLAVE		0xde

enum pic_init_step { INIT_DONE, INIT_ICW2, INIT_ICW3, INIT_ICW4 };

struct pic_chip {
	uint8_t input;		/* IR pin levels */
	uint8_t irr;		/* interrupt request register */
	uint8_t isr;		/* in-service register */
	uint8_t imr;		/* interrupt mask register (OCW1) */
	uint8_t elcr;		/* 1 = level-triggered (PIIX ELCR) */
	uint8_t elcr_mask;	/* writable ELCR bits */
	uint8_t vector_base;	/* ICW2, T7-T3 */
	uint8_t lowest;		/* IR of lowest priority (rotation) */
	enum pic_init_step init_step;
	bool icw4_needed;	/* ICW1 IC4 */
	bool single;		/* ICW1 SNGL */
	bool auto_eoi;		/* ICW4 AEOI */
	bool sfnm;		/* ICW4 special fully nested mode */
	bool rotate_on_aeoi;	/* OCW2 R SL EOI = 100 */
	bool read_isr;		/* OCW3 RIS */
	bool poll;		/* OCW3 P: next read is a poll */
	bool special_mask;	/* OCW3 SMM */
};

struct pic {
	struct pic_chip chip[2];	/* [0] master, [1] slave */
	bool intr;			/* last INTR level reported */
	void (*intr_changed)(void *opaque, bool level);
	void *opaque;
};

/* ---- one chip ---------------------------------------------------------- */

/* Priority (0 = highest) of the highest-priority bit in @mask, 8 if none. */
static unsigned chip_priority(const struct pic_chip *c, uint8_t mask)
{
	for (unsigned p = 0; p < 8; p++)
		if (mask & (1u << ((c->lowest + 1 + p) & 7)))
			return p;
	return 8;
}

static unsigned priority_to_irq(const struct pic_chip *c, unsigned p)
{
	return (c->lowest + 1 + p) & 7;
}

/*
 * The IR the chip would present at INTA, or -1: the highest-priority
 * unmasked request above every level in service.  In special mask mode only
 * the levels in service themselves are excluded; with special fully nested
 * mode a master's cascade level in service does not block the cascade.
 */
static int chip_pending(const struct pic_chip *c, bool is_master)
{
	uint8_t req = c->irr & ~c->imr;
	uint8_t blocking = c->isr;
	unsigned p;

	if (c->special_mask) {
		req &= ~c->isr;
		blocking = 0;
	} else if (is_master && c->sfnm) {
		blocking &= ~(1u << PIC_CASCADE_IRQ);
	}
	p = chip_priority(c, req);
	if (p == 8 || p >= chip_priority(c, blocking))
		return -1;
	return (int)priority_to_irq(c, p);
}

static void chip_set_input(struct pic_chip *c, unsigned ir, int level)
{
	uint8_t bit = (uint8_t)(1u << ir);

	if (level) {
		if (!(c->input & bit) || (c->elcr & bit))
			c->irr |= bit;
		c->input |= bit;
	} else {
		c->input &= (uint8_t)~bit;
		if (c->elcr & bit)
			c->irr &= (uint8_t)~bit;
	}
}

/* INTA for @ir: in service unless auto-EOI; an edge request is consumed,
 * a level request stays while its input is high. */
static void chip_ack(struct pic_chip *c, unsigned ir)
{
	uint8_t bit = (uint8_t)(1u << ir);

	if (c->auto_eoi) {
		if (c->rotate_on_aeoi)
			c->lowest = (uint8_t)ir;
	} else {
		c->isr |= bit;
	}
	if (!(c->elcr & bit))
		c->irr &= (uint8_t)~bit;
}

/* Power-on / ICW1 state shared by both: masks, priorities, modes cleared;
 * edge requests forgotten (an edge input must rise again). */
static void chip_init(struct pic_chip *c)
{
	c->irr = c->input & c->elcr;
	c->isr = 0;
	c->imr = 0;
	c->lowest = 7;
	c->auto_eoi = false;
	c->sfnm = false;
	c->rotate_on_aeoi = false;
	c->read_isr = false;
	c->poll = false;
	c->special_mask = false;
}

static void chip_eoi(struct pic_chip *c, unsigned ir, bool rotate)
{
	c->isr &= (uint8_t)~(1u << ir);
	if (rotate)
		c->lowest = (uint8_t)ir;
}

/* OCW2: R SL EOI in bits 7-5, level in bits 2-0. */
static void chip_ocw2(struct pic_chip *c, uint8_t v)
{
	unsigned level = v & 7;
	unsigned p;

	switch (v >> 5) {
	case 1:	/* non-specific EOI */
	case 5:	/* rotate on non-specific EOI */
		p = chip_priority(c, c->isr);
		if (p < 8)
			chip_eoi(c, priority_to_irq(c, p), (v >> 5) == 5);
		break;
	case 3:	/* specific EOI */
	case 7:	/* rotate on specific EOI */
		chip_eoi(c, level, (v >> 5) == 7);
		break;
	case 4:	/* set rotate in auto-EOI mode */
	case 0:	/* clear it */
		c->rotate_on_aeoi = (v >> 5) == 4;
		break;
	case 6:	/* set priority: @level becomes the lowest */
		c->lowest = (uint8_t)level;
		break;
	case 2:	/* no operation */
		break;
	}
}

static void chip_ocw3(struct pic_chip *c, uint8_t v)
{
	if (v & 0x40)
		c->special_mask = v & 0x20;
	if (v & 0x04)
		c->poll = true;
	if (v & 0x02)
		c->read_isr = v & 0x01;
}

static void chip_icw1(struct pic_chip *c, uint8_t v, const char *name)
{
	chip_init(c);
	c->icw4_needed = v & 0x01;
	c->single = v & 0x02;
	c->init_step = INIT_ICW2;
	if (v & 0x08)
		vlog_ratelimited(LOG_INFO,
				 "pic %s: ICW1 LTIM ignored, ELCR selects level triggering",
				 name);
}

/* A write to data port (A0 = 1): ICW2-4 during initialisation, else OCW1. */
static void chip_write_data(struct pic_chip *c, uint8_t v, const char *name)
{
	switch (c->init_step) {
	case INIT_DONE:
		c->imr = v;
		break;
	case INIT_ICW2:
		c->vector_base = v & 0xf8;
		c->init_step = c->single ? (c->icw4_needed ? INIT_ICW4 : INIT_DONE)
					 : INIT_ICW3;
		break;
	case INIT_ICW3:
		/* The cascade wiring is fixed: slave on master IR2, ID 2. */
		c->init_step = c->icw4_needed ? INIT_ICW4 : INIT_DONE;
		break;
	case INIT_ICW4:
		if (!(v & 0x01))
			vlog_ratelimited(LOG_INFO, "pic %s: ICW4 8080 mode not supported",
					 name);
		c->auto_eoi = v & 0x02;
		c->sfnm = v & 0x10;
		c->init_step = INIT_DONE;
		break;
	}
}

/* ---- the pair ---------------------------------------------------------- */

static void pic_update(struct pic *pic)
{
	struct pic_chip *m = &pic->chip[0];
	uint8_t cascade = 1u << PIC_CASCADE_IRQ;
	bool intr;

	/* Master IR2 requests exactly while the slave's INT is high. */
	if (chip_pending(&pic->chip[1], false) >= 0)
		m->irr |= cascade;
	else
		m->irr &= (uint8_t)~cascade;
	intr = chip_pending(m, true) >= 0;
	if (intr != pic->intr) {
		pic->intr = intr;
		if (pic->intr_changed)
			pic->intr_changed(pic->opaque, intr);
	}
}

/* OCW3 poll: the read acts as INTA for the chip; 0x80 | IR, or 0. */
static uint8_t pic_poll_read(struct pic *pic, unsigned idx)
{
	struct pic_chip *c = &pic->chip[idx];
	int ir = chip_pending(c, idx == 0);

	c->poll = false;
	if (ir < 0)
		return 0;
	chip_ack(c, (unsigned)ir);
	pic_update(pic);
	return (uint8_t)(0x80 | ir);
}

static uint8_t pic_read_byte(struct pic *pic, unsigned idx, unsigned port)
{
	struct pic_chip *c = &pic->chip[idx];

	if (c->poll)
		return pic_poll_read(pic, idx);
	if (port == 1)
		return c->imr;
	return c->read_isr ? c->isr : c->irr;
}

static void pic_write_byte(struct pic *pic, unsigned idx, unsigned port,
			   uint8_t v)
{
	struct pic_chip *c = &pic->chip[idx];
	const char *name = idx ? "slave" : "master";

	if (port == 1)
		chip_write_data(c, v, name);
	else if (v & 0x10)
		chip_icw1(c, v, name);
	else if (v & 0x08)
		chip_ocw3(c, v);
	else
		chip_ocw2(c, v);
	pic_update(pic);
}

/* Port handlers: a 2-byte access covers both registers, one byte each. */
#define PIC_PORT_HANDLERS(idx, sfx)                                          \
	static uint64_t pic_read_##sfx(void *opaque, uint64_t off, unsigned size) \
	{                                                                    \
		uint64_t v = 0;                                              \
		for (unsigned i = 0; i < size && off + i < 2; i++)           \
			v |= (uint64_t)pic_read_byte(opaque, idx, (unsigned)(off + i)) \
			     << (8 * i);                                     \
		return v;                                                    \
	}                                                                    \
	static void pic_write_##sfx(void *opaque, uint64_t off, uint64_t v,  \
				    unsigned size)                           \
	{                                                                    \
		for (unsigned i = 0; i < size && off + i < 2; i++)           \
			pic_write_byte(opaque, idx, (unsigned)(off + i),     \
				       (uint8_t)(v >> (8 * i)));             \
	}

PIC_PORT_HANDLERS(0, master)
PIC_PORT_HANDLERS(1, slave)

static uint64_t elcr_read(void *opaque, uint64_t off, unsigned size)
{
	struct pic *pic = opaque;
	uint64_t v = 0;

	for (unsigned i = 0; i < size && off + i < 2; i++)
		v |= (uint64_t)pic->chip[off + i].elcr << (8 * i);
	return v;
}

static void elcr_write(void *opaque, uint64_t off, uint64_t v, unsigned size)
{
	struct pic *pic = opaque;

	for (unsigned i = 0; i < size && off + i < 2; i++) {
		struct pic_chip *c = &pic->chip[off + i];

		c->elcr = (uint8_t)(v >> (8 * i)) & c->elcr_mask;
		/* Level inputs request exactly while high. */
		c->irr = (uint8_t)((c->irr & ~c->elcr) | (c->input & c->elcr));
	}
	pic_update(pic);
}

static const struct bus_ops pic_master_ops = {
	.name = "pic-master", .read = pic_read_master, .write = pic_write_master,
};
static const struct bus_ops pic_slave_ops = {
	.name = "pic-slave", .read = pic_read_slave, .write = pic_write_slave,
};
static const struct bus_ops pic_elcr_ops = {
	.name = "pic-elcr", .read = elcr_read, .write = elcr_write,
};

/* ---- public ------------------------------------------------------------ */

struct pic *pic_new(void (*intr_changed)(void *opaque, bool level),
		    void *opaque)
{
	struct pic *pic = calloc(1, sizeof(*pic));

	if (!pic)
		return NULL;
	pic->intr_changed = intr_changed;
	pic->opaque = opaque;
	pic->chip[0].elcr_mask = ELCR_MASK_MASTER;
	pic->chip[1].elcr_mask = ELCR_MASK_SLAVE;
	pic_reset(pic);
	return pic;
}

void pic_free(struct pic *pic)
{
	free(pic);
}

int pic_attach(struct pic *pic, struct bus *pio)
{
	int r = bus_register(pio, 0x20, 2, &pic_master_ops, pic);

	if (!r)
		r = bus_register(pio, 0xa0, 2, &pic_slave_ops, pic);
	if (!r)
		r = bus_register(pio, 0x4d0, 2, &pic_elcr_ops, pic);
	return r;
}

void pic_reset(struct pic *pic)
{
	for (unsigned i = 0; i < 2; i++) {
		struct pic_chip *c = &pic->chip[i];

		c->elcr = 0;
		c->vector_base = 0;
		c->init_step = INIT_DONE;
		c->icw4_needed = false;
		c->single = false;
		chip_init(c);
	}
	pic_update(pic);
}

void pic_set_irq(struct pic *pic, unsigned irq, int level)
{
	if (irq >= 16 || irq == PIC_CASCADE_IRQ)
		return;		/* IR2 is wired to the slave */
	chip_set_input(&pic->chip[irq >> 3], irq & 7, level != 0);
	pic_update(pic);
}

bool pic_intr(const struct pic *pic)
{
	return pic->intr;
}

uint8_t pic_ack(struct pic *pic)
{
	struct pic_chip *m = &pic->chip[0], *s = &pic->chip[1];
	int ir = chip_pending(m, true);
	uint8_t vector;

	if (ir < 0) {
		vector = m->vector_base | 7;		/* spurious IRQ 7 */
	} else {
		chip_ack(m, (unsigned)ir);
		if (ir == PIC_CASCADE_IRQ) {
			int sir = chip_pending(s, false);

			if (sir < 0) {
				vector = s->vector_base | 7;	/* spurious IRQ 15 */
			} else {
				chip_ack(s, (unsigned)sir);
				vector = (uint8_t)(s->vector_base | sir);
			}
		} else {
			vector = (uint8_t)(m->vector_base | ir);
		}
	}
	pic_update(pic);
	return vector;
}

/* ---- the machine's device table ---------------------------------------- */

static void pic_dev_reset(void *dev)
{
	pic_reset(dev);
}

static void pic_dev_free(void *dev)
{
	pic_free(dev);
}

/* One chip: see PIC_STATE_TYPE in pic.h for the field order. */
#define CHIP_TYPE "(yyyyyyyybbbbbbbb)"

static GVariant *chip_save(const struct pic_chip *c)
{
	return g_variant_new(CHIP_TYPE, c->input, c->irr, c->isr, c->imr,
			     c->elcr, c->vector_base, c->lowest,
			     (guint8)c->init_step, c->icw4_needed, c->single,
			     c->auto_eoi, c->sfnm, c->rotate_on_aeoi,
			     c->read_isr, c->poll, c->special_mask);
}

static GVariant *pic_dev_save(void *dev)
{
	struct pic *pic = dev;

	return g_variant_new("(@" CHIP_TYPE "@" CHIP_TYPE "b)",
			     chip_save(&pic->chip[0]), chip_save(&pic->chip[1]),
			     pic->intr);
}

/* Read chip @idx of @v into @c (which holds the chip's fixed fields) and
 * check it as the chip's own code could have left it. */
static int chip_load(GVariant *v, struct pic_chip *c, unsigned idx,
		     char *err, size_t errlen)
{
	const char *name = idx ? "slave" : "master";
	guint8 step;
	gboolean b[8];

	g_variant_get(v, CHIP_TYPE, &c->input, &c->irr, &c->isr, &c->imr,
		      &c->elcr, &c->vector_base, &c->lowest, &step,
		      &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &b[6], &b[7]);
	if (step > INIT_ICW4)
		return device_load_fail(err, errlen, "pic: %s initialisation step %u out of range",
				 name, step);
	if (c->lowest > 7 || (c->vector_base & 7))
		return device_load_fail(err, errlen, "pic: %s priority %u or vector base 0x%x out of range",
				 name, c->lowest, c->vector_base);
	if (c->elcr & ~c->elcr_mask)
		return device_load_fail(err, errlen, "pic: %s ELCR 0x%02x sets fixed edge inputs",
				 name, c->elcr);
	/* Level inputs request exactly while high; nothing drives master IR2. */
	if ((c->irr & c->elcr) != (c->input & c->elcr) ||
	    (!idx && (c->input & (1u << PIC_CASCADE_IRQ))))
		return device_load_fail(err, errlen, "pic: %s IRR 0x%02x does not match its inputs 0x%02x",
				 name, c->irr, c->input);
	c->init_step = (enum pic_init_step)step;
	c->icw4_needed = b[0];
	c->single = b[1];
	c->auto_eoi = b[2];
	c->sfnm = b[3];
	c->rotate_on_aeoi = b[4];
	c->read_isr = b[5];
	c->poll = b[6];
	c->special_mask = b[7];
	return 0;
}

/* Everything is checked on a copy first; the INTR output is then driven
 * to its saved level (intr_changed only if that differs from now). */
static int pic_dev_load(void *dev, uint32_t version, GVariant *state,
			char *err, size_t errlen)
{
	struct pic *pic = dev, tmp = *pic;
	GVariant *chip[2];
	gboolean intr;
	int r = 0;

	r = device_state_check("pic", version, 1, state, PIC_STATE_TYPE, err, errlen);
	if (r < 0)
		return r;
	g_variant_get(state, "(@" CHIP_TYPE "@" CHIP_TYPE "b)", &chip[0],
		      &chip[1], &intr);
	for (unsigned i = 0; i < 2 && !r; i++)
		r = chip_load(chip[i], &tmp.chip[i], i, err, errlen);
	g_variant_unref(chip[0]);
	g_variant_unref(chip[1]);
	if (r < 0)
		return r;
	/* IRR bit 2 of the master and INTR follow from the rest. */
	{
		struct pic check = tmp;

		check.intr_changed = NULL;
		pic_update(&check);
		if (check.chip[0].irr != tmp.chip[0].irr || check.intr != !!intr)
			return device_load_fail(err, errlen, "pic: cascade request or INTR level inconsistent with the registers");
	}
	pic->chip[0] = tmp.chip[0];
	pic->chip[1] = tmp.chip[1];
	pic_update(pic);
	return 0;
}

const struct device_ops pic_device_ops = {
	.name = "pic",
	.reset = pic_dev_reset,
	.save = pic_dev_save,
	.load = pic_dev_load,
	.state_version = 1,
	.free = pic_dev_free,
};
