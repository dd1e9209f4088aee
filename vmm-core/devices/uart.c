/* SPDX-License-Identifier: MIT */
/*
 * A 16550A UART (National Semiconductor PC16550D datasheet).
 *
 * Transmission is instantaneous: a THR write goes straight to the chardev
 * (or, in loopback, into the receive FIFO), so THR and the transmitter are
 * always empty (LSR THRE and TEMT read 1) and the TX FIFO is never used.
 *
 * Interrupts (datasheet Table IV), highest priority first:
 *   line status   (IIR 0x06): OE/PE/FE/BI in LSR and IER.ELSI; cleared by
 *                              reading LSR;
 *   RX data       (IIR 0x04): receive FIFO at or above the trigger level
 *                              (any byte when FIFOs are off) and IER.ERBFI;
 *   char timeout  (IIR 0x0c): FIFO mode, bytes below the trigger level and
 *                              IER.ERBFI.  The real chip waits 4 character
 *                              times without FIFO activity; input arrives
 *                              here in bursts (uart_receive) and time does
 *                              not pass between them as far as the guest can
 *                              tell, so the timeout is deemed to have expired
 *                              as soon as a burst ends.  Reading RBR restarts
 *                              it, which with nothing more to come means it
 *                              indicates again while bytes remain;
 *   THR empty     (IIR 0x02): set when THR becomes empty (after each THR
 *                              write) and when IER.ETBEI goes 0->1 with THR
 *                              empty; cleared by an IIR read that reports it
 *                              or by a THR write;
 *   modem status  (IIR 0x00): a delta bit in MSR and IER.EDSSI; cleared by
 *                              reading MSR.
 * The IRQ output is gated by MCR.OUT2 as on PC serial cards (Linux's 8250
 * driver sets OUT2 to enable interrupts); in loopback the OUT2 pin is held
 * inactive (datasheet, MCR bit 4), so interrupts are identified in IIR but
 * do not reach the interrupt controller.
 *
 * Modem lines: the host side is always ready (CTS, DSR, DCD asserted, RI
 * not).  In loopback, DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD, which is
 * what Linux's autoconfig test expects (MCR 0x1a -> MSR high nibble 0x9).
 */
#include "uart.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <glib.h>

#include "../bus.h"
#include "../host/chardev.h"

#define FIFO_SIZE 16

/* Register offsets. */
#define R_RBR_THR	0
#define R_IER		1
#define R_IIR_FCR	2
#define R_LCR		3
#define R_MCR		4
#define R_LSR		5
#define R_MSR		6
#define R_SCR		7

#define IER_ERBFI	0x01
#define IER_ETBEI	0x02
#define IER_ELSI	0x04
#define IER_EDSSI	0x08

#define IIR_NONE	0x01
#define IIR_MSR		0x00
#define IIR_THRE	0x02
#define IIR_RDA		0x04
#define IIR_RLS		0x06
#define IIR_CTI		0x0c
#define IIR_FIFO	0xc0

#define FCR_ENABLE	0x01
#define FCR_RXRESET	0x02
#define FCR_TXRESET	0x04
#define FCR_DMA		0x08
#define FCR_TRIGGER	0xc0

#define LCR_DLAB	0x80

#define MCR_DTR		0x01
#define MCR_RTS		0x02
#define MCR_OUT1	0x04
#define MCR_OUT2	0x08
#define MCR_LOOP	0x10
#define MCR_MASK	0x1f

#define LSR_DR		0x01
#define LSR_OE		0x02
#define LSR_PE		0x04
#define LSR_FE		0x08
#define LSR_BI		0x10
#define LSR_THRE	0x20
#define LSR_TEMT	0x40
#define LSR_RXERR	0x80
#define LSR_ERRORS	(LSR_OE | LSR_PE | LSR_FE | LSR_BI)

#define MSR_DCTS	0x01
#define MSR_DDSR	0x02
#define MSR_TERI	0x04
#define MSR_DDCD	0x08
#define MSR_CTS		0x10
#define MSR_DSR		0x20
#define MSR_RI		0x40
#define MSR_DCD		0x80
#define MSR_DELTAS	0x0f

struct uart {
	struct irq_line irq;
	struct chardev *chr;
	int irq_level;

	uint16_t divisor;
	uint8_t ier, lcr, mcr, scr, fcr;
	uint8_t lsr_errors;	/* OE/PE/FE/BI latched until LSR is read */
	uint8_t msr;		/* line states and deltas */
	bool thr_ipending;

	uint8_t rx[FIFO_SIZE];
	unsigned rx_head, rx_count;
};

static unsigned rx_capacity(const struct uart *u)
{
	return (u->fcr & FCR_ENABLE) ? FIFO_SIZE : 1;
}

static unsigned rx_trigger(const struct uart *u)
{
	static const unsigned levels[4] = { 1, 4, 8, 14 };

	return (u->fcr & FCR_ENABLE) ? levels[u->fcr >> 6] : 1;
}

static uint8_t lsr_value(const struct uart *u)
{
	uint8_t lsr = LSR_THRE | LSR_TEMT | u->lsr_errors;

	if (u->rx_count)
		lsr |= LSR_DR;
	/* Bit 7: a PE/FE/BI byte in the FIFO.  Only overruns happen here,
	 * and OE is not a per-byte error. */
	return lsr;
}

/* The interrupt identification, by priority. */
static uint8_t iir_id(const struct uart *u)
{
	if ((u->ier & IER_ELSI) && (u->lsr_errors & LSR_ERRORS))
		return IIR_RLS;
	if ((u->ier & IER_ERBFI) && u->rx_count) {
		if (u->rx_count >= rx_trigger(u))
			return IIR_RDA;
		return IIR_CTI;
	}
	if ((u->ier & IER_ETBEI) && u->thr_ipending)
		return IIR_THRE;
	if ((u->ier & IER_EDSSI) && (u->msr & MSR_DELTAS))
		return IIR_MSR;
	return IIR_NONE;
}

static void update_irq(struct uart *u)
{
	/* The OUT2 pin enables the PC's IRQ driver; in loopback the modem
	 * control pins are forced inactive, so no IRQ reaches the PIC. */
	int level = iir_id(u) != IIR_NONE && (u->mcr & MCR_OUT2) &&
		    !(u->mcr & MCR_LOOP);

	if (level != u->irq_level) {
		u->irq_level = level;
		irq_line_set(&u->irq, level);
	}
}

/* The modem input lines as the UART sees them. */
static uint8_t msr_lines(const struct uart *u)
{
	uint8_t s = 0;

	if (!(u->mcr & MCR_LOOP))
		return MSR_CTS | MSR_DSR | MSR_DCD;
	if (u->mcr & MCR_DTR)
		s |= MSR_DSR;
	if (u->mcr & MCR_RTS)
		s |= MSR_CTS;
	if (u->mcr & MCR_OUT1)
		s |= MSR_RI;
	if (u->mcr & MCR_OUT2)
		s |= MSR_DCD;
	return s;
}

/* Latch new line states, setting the delta bits for those that changed
 * (TERI only on RI's trailing edge). */
static void msr_update(struct uart *u)
{
	uint8_t old = u->msr & 0xf0, now = msr_lines(u);
	uint8_t changed = old ^ now;

	if (changed & MSR_CTS)
		u->msr |= MSR_DCTS;
	if (changed & MSR_DSR)
		u->msr |= MSR_DDSR;
	if ((old & MSR_RI) && !(now & MSR_RI))
		u->msr |= MSR_TERI;
	if (changed & MSR_DCD)
		u->msr |= MSR_DDCD;
	u->msr = (uint8_t)((u->msr & MSR_DELTAS) | now);
}

static void rx_clear(struct uart *u)
{
	u->rx_head = 0;
	u->rx_count = 0;
}

static bool rx_push(struct uart *u, uint8_t b)
{
	if (u->rx_count >= rx_capacity(u))
		return false;
	u->rx[(u->rx_head + u->rx_count) % FIFO_SIZE] = b;
	u->rx_count++;
	return true;
}

static uint8_t rx_pop(struct uart *u)
{
	uint8_t b;

	if (!u->rx_count)
		return 0;
	b = u->rx[u->rx_head];
	u->rx_head = (u->rx_head + 1) % FIFO_SIZE;
	u->rx_count--;
	return b;
}

static void transmit(struct uart *u, uint8_t b)
{
	if (u->mcr & MCR_LOOP) {
		/* The transmitter output is looped back to the receiver; the
		 * serial output line is held marking (nothing goes out). */
		if (!rx_push(u, b))
			u->lsr_errors |= LSR_OE;
	} else if (u->chr) {
		chardev_write(u->chr, &b, 1);
	}
	/* The write clears a THRE interrupt, but the byte has already left
	 * THR: empty again, so it is pending anew. */
	u->thr_ipending = true;
}

static uint64_t uart_read(void *opaque, uint64_t offset, unsigned size)
{
	struct uart *u = opaque;
	uint8_t v = 0xff;

	(void)size;
	switch (offset) {
	case R_RBR_THR:
		if (u->lcr & LCR_DLAB) {
			v = (uint8_t)u->divisor;
			break;
		}
		v = rx_pop(u);
		if (!u->rx_count)
			chardev_input_wakeup(u->chr);
		update_irq(u);
		break;
	case R_IER:
		v = (u->lcr & LCR_DLAB) ? (uint8_t)(u->divisor >> 8) : u->ier;
		break;
	case R_IIR_FCR:
		v = iir_id(u);
		if (v == IIR_THRE)
			u->thr_ipending = false;
		if (u->fcr & FCR_ENABLE)
			v |= IIR_FIFO;
		update_irq(u);
		break;
	case R_LCR:
		v = u->lcr;
		break;
	case R_MCR:
		v = u->mcr;
		break;
	case R_LSR:
		v = lsr_value(u);
		u->lsr_errors = 0;
		update_irq(u);
		break;
	case R_MSR:
		v = u->msr;
		u->msr &= (uint8_t)~MSR_DELTAS;
		update_irq(u);
		break;
	case R_SCR:
		v = u->scr;
		break;
	}
	return v;
}

static void write_fcr(struct uart *u, uint8_t v)
{
	uint8_t old = u->fcr;

	if (!(v & FCR_ENABLE)) {
		/* FIFOs off: the other bits cannot be programmed. */
		u->fcr = 0;
	} else {
		u->fcr = v & (FCR_ENABLE | FCR_DMA | FCR_TRIGGER);
		if (v & FCR_RXRESET)
			rx_clear(u);
		/* FCR_TXRESET: the TX FIFO is always empty. */
	}
	/* Switching FIFO mode clears the FIFOs. */
	if ((old ^ u->fcr) & FCR_ENABLE)
		rx_clear(u);
	if (!u->rx_count)
		chardev_input_wakeup(u->chr);
}

static void uart_write(void *opaque, uint64_t offset, uint64_t value,
		       unsigned size)
{
	struct uart *u = opaque;
	uint8_t v = (uint8_t)value;

	(void)size;
	switch (offset) {
	case R_RBR_THR:
		if (u->lcr & LCR_DLAB)
			u->divisor = (uint16_t)((u->divisor & 0xff00) | v);
		else
			transmit(u, v);
		break;
	case R_IER:
		if (u->lcr & LCR_DLAB) {
			u->divisor = (uint16_t)((u->divisor & 0x00ff) | v << 8);
		} else {
			uint8_t old = u->ier;

			u->ier = v & 0x0f;
			/* ETBEI 0->1 with THR empty: THRE interrupt at once
			 * (Linux's 8250 startup tests exactly this). */
			if (!(old & IER_ETBEI) && (u->ier & IER_ETBEI))
				u->thr_ipending = true;
		}
		break;
	case R_IIR_FCR:
		write_fcr(u, v);
		break;
	case R_LCR:
		u->lcr = v;
		break;
	case R_MCR:
		u->mcr = v & MCR_MASK;
		msr_update(u);
		break;
	case R_LSR:
	case R_MSR:
		/* Factory test registers: writes ignored. */
		break;
	case R_SCR:
		u->scr = v;
		break;
	}
	update_irq(u);
}

static const struct bus_ops uart_ops = {
	.name = "uart16550a",
	.read = uart_read,
	.write = uart_write,
};

size_t uart_receive(struct uart *u, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	/* In loopback the receiver hears only the transmitter. */
	if (u->mcr & MCR_LOOP)
		return 0;
	while (n < len && rx_push(u, buf[n]))
		n++;
	if (n)
		update_irq(u);
	return n;
}

void uart_reset(struct uart *u)
{
	/* Master reset (datasheet Table III); the divisor latch is not
	 * affected by it, so it keeps whatever was set (12 = 9600 bps at
	 * power-on here). */
	u->ier = 0;
	u->lcr = 0;
	u->mcr = 0;
	u->fcr = 0;
	u->scr = 0;
	u->lsr_errors = 0;
	u->thr_ipending = false;
	rx_clear(u);
	u->msr = msr_lines(u);
	if (u->irq_level) {
		u->irq_level = 0;
		irq_line_set(&u->irq, 0);
	}
}

struct uart *uart_new(struct irq_line irq, struct chardev *chr)
{
	struct uart *u = calloc(1, sizeof(*u));

	if (!u)
		return NULL;
	u->irq = irq;
	u->chr = chr;
	u->divisor = 12;
	uart_reset(u);
	return u;
}

void uart_free(struct uart *u)
{
	free(u);
}

int uart_attach(struct uart *u, struct bus *pio, uint16_t base)
{
	return bus_register(pio, base, 8, &uart_ops, u);
}

/* ---- the machine's device table ---------------------------------------- */

static void uart_dev_reset(void *dev)
{
	uart_reset(dev);
}

static void uart_dev_free(void *dev)
{
	uart_free(dev);
}

static GVariant *uart_dev_save(void *dev)
{
	struct uart *u = dev;
	uint8_t rx[FIFO_SIZE];

	for (unsigned i = 0; i < u->rx_count; i++)
		rx[i] = u->rx[(u->rx_head + i) % FIFO_SIZE];
	return g_variant_new("(qyyyyyyyb@ayb)", u->divisor, u->ier, u->lcr,
			     u->mcr, u->scr, u->fcr, u->lsr_errors, u->msr,
			     u->thr_ipending,
			     g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, rx,
						       u->rx_count, 1),
			     u->irq_level != 0);
}

/* Every register is checked on a copy as the UART's own code could have
 * left it; then the IRQ output is driven to its saved level. */
static int uart_dev_load(void *dev, uint32_t version, GVariant *state,
			 char *err, size_t errlen)
{
	struct uart *u = dev, t = *u;
	const uint8_t *rx;
	GVariant *fifo;
	gboolean thr, irq_level;
	gsize n;
	int r = 0;

	r = device_state_check("uart", version, 1, state, UART_STATE_TYPE, err, errlen);
	if (r < 0)
		return r;
	g_variant_get(state, "(qyyyyyyyb@ayb)", &t.divisor, &t.ier, &t.lcr,
		      &t.mcr, &t.scr, &t.fcr, &t.lsr_errors, &t.msr, &thr,
		      &fifo, &irq_level);
	rx = g_variant_get_fixed_array(fifo, &n, 1);
	t.thr_ipending = thr;
	if (t.ier & ~0x0f || t.mcr & ~MCR_MASK || t.lsr_errors & ~LSR_ERRORS)
		r = device_load_fail(err, errlen, "uart: IER 0x%02x, MCR 0x%02x or LSR errors 0x%02x set reserved bits",
			      t.ier, t.mcr, t.lsr_errors);
	else if (t.fcr & ~(FCR_ENABLE | FCR_DMA | FCR_TRIGGER) ||
		 (!(t.fcr & FCR_ENABLE) && t.fcr))
		r = device_load_fail(err, errlen, "uart: FCR 0x%02x cannot be programmed",
			      t.fcr);
	else if ((t.msr & 0xf0) != msr_lines(&t))
		r = device_load_fail(err, errlen, "uart: MSR 0x%02x does not match MCR 0x%02x",
			      t.msr, t.mcr);
	else if (n > rx_capacity(&t))
		r = device_load_fail(err, errlen, "uart: %zu bytes in a %u-byte receive FIFO",
			      (size_t)n, rx_capacity(&t));
	if (!r) {
		for (gsize i = 0; i < n; i++)
			t.rx[i] = rx[i];
		t.rx_head = 0;
		t.rx_count = (unsigned)n;
		if ((iir_id(&t) != IIR_NONE && (t.mcr & MCR_OUT2) &&
		     !(t.mcr & MCR_LOOP)) != !!irq_level)
			r = device_load_fail(err, errlen, "uart: IRQ level %d inconsistent with the registers",
				      irq_level ? 1 : 0);
	}
	g_variant_unref(fifo);
	if (r < 0)
		return r;
	t.irq_level = u->irq_level;	/* what the line carries now */
	*u = t;
	update_irq(u);
	return 0;
}

const struct device_ops uart_device_ops = {
	.name = "uart",
	.reset = uart_dev_reset,
	.save = uart_dev_save,
	.load = uart_dev_load,
	.state_version = 1,
	.free = uart_dev_free,
};
