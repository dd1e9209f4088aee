/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/devices/uart.h - a 16550A UART (National Semiconductor PC16550D
 * datasheet): 8 registers, 16-byte FIFOs, DLAB, IER/IIR/LSR/MSR, loopback.
 * COM1 is base 0x3f8, IRQ 4.
 */
#ifndef VIVARIUM_UART_H
#define VIVARIUM_UART_H

#include <stddef.h>
#include <stdint.h>

#include "../irq.h"
#include "../device.h"

struct bus;
struct chardev;
struct uart;

/* @chr may be NULL (output discarded). */
struct uart *uart_new(struct irq_line irq, struct chardev *chr);
void uart_free(struct uart *uart);
/*
 * Its lifecycle in the machine's device table (device.h).
 * uart_device_ops: state UART_STATE_TYPE, version 1: (divisor latch, IER,
 * LCR, MCR, SCR, FCR, latched LSR errors, MSR (lines and deltas), THR-empty
 * interrupt pending, the receive FIFO's bytes oldest first (its level is
 * the length), IRQ output level).  Transmission is instantaneous, so THR,
 * the transmitter and the TX FIFO are always empty: nothing to save.  The
 * host chardev is not state.  Load re-drives the IRQ line to its level.
 */
#define UART_STATE_TYPE "(qyyyyyyybayb)"
extern const struct device_ops uart_device_ops;
int uart_attach(struct uart *uart, struct bus *pio, uint16_t base);
void uart_reset(struct uart *uart);

/* Host -> guest bytes into the receive FIFO (device lock held).  Returns
 * how many fit (16 minus the bytes waiting with FIFOs on, 1 with them off,
 * 0 in loopback); the UART calls chardev_input_wakeup() on its chardev when
 * the guest has emptied the FIFO, so a chardev sink can hold the rest. */
size_t uart_receive(struct uart *uart, const uint8_t *buf, size_t len);

#endif
