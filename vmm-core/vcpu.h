/* SPDX-License-Identifier: MIT */
/* vmm-core/vcpu.h - turning port I/O and MMIO exits into bus accesses. */
#ifndef VIVARIUM_VCPU_H
#define VIVARIUM_VCPU_H

struct bus;
struct hv_exit;

/*
 * vcpu_dispatch_io - perform a HV_EXIT_IO exit on @pio: io.count accesses of
 * io.size bytes (string I/O), little-endian in io.data; reads store their
 * results there for the guest.  Caller holds the device lock.
 */
void vcpu_dispatch_io(struct bus *pio, struct hv_exit *exit);

/* vcpu_dispatch_mmio - likewise for a HV_EXIT_MMIO exit on @mmio.  Sizes
 * other than 1, 2, 4, 8 read all-ones and drop writes. */
void vcpu_dispatch_mmio(struct bus *mmio, struct hv_exit *exit);

#endif
