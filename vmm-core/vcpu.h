/* SPDX-License-Identifier: MIT */
/* vmm-core/vcpu.h - turning port I/O and MMIO exits into bus accesses. */
#ifndef VIVARIUM_VCPU_H
#define VIVARIUM_VCPU_H

#include <stdbool.h>
#include <stdint.h>

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

/* ---- a port that speaks through the general registers -------------------- */

/* The general registers a register port's handler reads and may change
 * (the VMware backdoor passes arguments and results in all six). */
struct io_regs {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi;
};

/*
 * One port whose accesses see the vCPU's registers (the VMware backdoor,
 * devices/vmmouse.h).  For a single access (not string I/O) of 1, 2 or 4
 * bytes to @port, the vCPU loop fetches the registers (KVM_GET_REGS),
 * calls @access with the device lock held, and stores them back
 * (KVM_SET_REGS) when it changed any; other accesses to @port read
 * all-ones.  Other ports cost one comparison.
 *
 * @access: @value is what an OUT wrote (0 for an IN); it returns what an
 * IN reads (the low @size bytes reach AL/AX/EAX, a 32-bit read
 * zero-extends into RAX as the instruction does).  @regs->rax on return
 * is ignored for an IN; for an OUT it is stored like the others.
 */
struct vcpu_regs_port {
	uint16_t port;
	uint32_t (*access)(void *opaque, unsigned size, bool is_write,
			   uint32_t value, struct io_regs *regs);
	void *opaque;			/* NULL access: no such port */
};

#endif
