/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/devices/ioapic.h - an 82093AA I/O APIC with 24 pins (Intel 82093AA
 * datasheet; IOREGSEL at +0x00, IOWIN at +0x10, EOI at +0x40 for version
 * 0x20), usually at MMIO 0xfec00000.  Interrupts leave it as MSI messages
 * (Intel SDM vol. 3 §11.11 address/data format) to the local APICs in KVM.
 */
#ifndef VIVARIUM_IOAPIC_H
#define VIVARIUM_IOAPIC_H

#include <stdbool.h>
#include <stdint.h>

#include "../device.h"

#define IOAPIC_PINS		24
#define IOAPIC_DEFAULT_BASE	0xfec00000ull
#define IOAPIC_MMIO_SIZE	0x1000

struct bus;
struct ioapic;

struct ioapic_ops {
	/* Deliver one interrupt message (device lock held). */
	void (*send_msi)(void *opaque, uint64_t addr, uint32_t data);
	/* The redirection table changed: re-read it with ioapic_pin_msi()
	 * (the machine mirrors it into KVM's routes for EOI exits). */
	void (*routes_changed)(void *opaque);
};

struct ioapic *ioapic_new(uint8_t id, const struct ioapic_ops *ops,
			  void *opaque);
void ioapic_free(struct ioapic *ioapic);
/*
 * Its lifecycle in the machine's device table (device.h).
 * ioapic_device_ops: state IOAPIC_STATE_TYPE, version 1: (ID, IOREGSEL,
 * pin input levels (bit per pin, before polarity), the 24 redirection
 * entries as 64-bit values, Remote IRR included).  Delivery status is
 * always 0 (messages leave at once) and there is no other pending state.
 * Load re-pushes the table to the machine through routes_changed.
 */
#define IOAPIC_STATE_TYPE "(yyuat)"
extern const struct device_ops ioapic_device_ops;
int ioapic_attach(struct ioapic *ioapic, struct bus *mmio, uint64_t base);
void ioapic_reset(struct ioapic *ioapic);

/* Drive pin @pin (0-23) to @level; out-of-range pins are ignored. */
void ioapic_set_irq(struct ioapic *ioapic, unsigned pin, int level);
/* A local APIC's EOI of @vector: clears Remote IRR of level-triggered pins
 * with that vector and re-delivers any still asserted. */
void ioapic_eoi(struct ioapic *ioapic, uint8_t vector);
/* The MSI message pin @pin sends.  Returns false if the pin is masked. */
bool ioapic_pin_msi(const struct ioapic *ioapic, unsigned pin,
		    uint64_t *addr, uint32_t *data);

#endif
