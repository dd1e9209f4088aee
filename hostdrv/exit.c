/* SPDX-License-Identifier: MIT */
/*
 * hostdrv/exit.c - struct kvm_run -> struct hv_exit (see kvm_exit.h).
 * The kvm_run layout and each exit's fields: Documentation/virt/kvm/api.rst
 * §5 "The kvm_run structure".
 */
#include <errno.h>
#include <string.h>

#include "kvm_exit.h"

static int bad_exit(struct kvm_run *run, struct hv_exit *e)
{
	memset(e, 0, sizeof(*e));
	e->kind = HV_EXIT_UNKNOWN;
	e->unknown.reason = run->exit_reason;
	return -EFAULT;
}

static int decode_io(struct kvm_run *run, size_t run_size, struct hv_exit *e)
{
	uint64_t size = run->io.size, count = run->io.count;
	uint64_t off = run->io.data_offset;

	if (size != 1 && size != 2 && size != 4)
		return bad_exit(run, e);
	if (count == 0)
		return bad_exit(run, e);
	/* All 64-bit: off < 2^64, size * count < 2^35: no overflow. */
	if (off < sizeof(struct kvm_run) || off > run_size ||
	    size * count > run_size - off)
		return bad_exit(run, e);
	e->kind = HV_EXIT_IO;
	e->io.port = run->io.port;
	e->io.size = (uint8_t)size;
	e->io.is_write = run->io.direction == KVM_EXIT_IO_OUT;
	e->io.count = (uint32_t)count;
	e->io.data = (uint8_t *)run + off;
	return 0;
}

static int decode_mmio(struct kvm_run *run, struct hv_exit *e)
{
	if (run->mmio.len < 1 || run->mmio.len > sizeof(run->mmio.data))
		return bad_exit(run, e);
	e->kind = HV_EXIT_MMIO;
	e->mmio.gpa = run->mmio.phys_addr;
	e->mmio.size = (uint8_t)run->mmio.len;
	e->mmio.is_write = run->mmio.is_write != 0;
	e->mmio.data = run->mmio.data;
	return 0;
}

static void decode_internal(const struct kvm_run *run, struct hv_exit *e)
{
	uint32_t n = run->internal.ndata;

	e->kind = HV_EXIT_INTERNAL_ERROR;
	e->internal.suberror = run->internal.suberror;
	if (n > 16)
		n = 16;
	e->internal.ndata = n;
	memcpy(e->internal.data, run->internal.data, n * sizeof(uint64_t));
	/* emulation_failure overlays internal: data[0] = flags, then
	 * insn_size and 15 instruction bytes in data[1..2]. */
	if (run->emulation_failure.suberror == KVM_INTERNAL_ERROR_EMULATION &&
	    run->emulation_failure.ndata >= 3 &&
	    (run->emulation_failure.flags &
	     KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
		uint8_t len = run->emulation_failure.insn_size;

		if (len > sizeof(e->internal.insn))
			len = sizeof(e->internal.insn);
		e->internal.insn_len = len;
		memcpy(e->internal.insn, run->emulation_failure.insn_bytes,
		       len);
	}
}

static enum hv_system_event event_type(uint32_t t)
{
	switch (t) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		return HV_EVENT_SHUTDOWN;
	case KVM_SYSTEM_EVENT_RESET:
		return HV_EVENT_RESET;
	case KVM_SYSTEM_EVENT_CRASH:
		return HV_EVENT_CRASH;
	default:
		return HV_EVENT_OTHER;
	}
}

int hv_exit_decode(struct kvm_run *run, size_t run_size, struct hv_exit *e)
{
	memset(e, 0, sizeof(*e));
	if (run_size < sizeof(struct kvm_run))
		return bad_exit(run, e);
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		return decode_io(run, run_size, e);
	case KVM_EXIT_MMIO:
		return decode_mmio(run, e);
	case KVM_EXIT_HLT:
		e->kind = HV_EXIT_HLT;
		break;
	case KVM_EXIT_SHUTDOWN:
		e->kind = HV_EXIT_SHUTDOWN;
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		e->kind = HV_EXIT_SYSTEM_EVENT;
		e->system_event.raw_type = run->system_event.type;
		e->system_event.type = event_type(run->system_event.type);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		decode_internal(run, e);
		break;
	case KVM_EXIT_FAIL_ENTRY:
		e->kind = HV_EXIT_FAIL_ENTRY;
		e->fail_entry.reason =
			run->fail_entry.hardware_entry_failure_reason;
		break;
	case KVM_EXIT_INTR:
		e->kind = HV_EXIT_INTR;
		break;
	case KVM_EXIT_IRQ_WINDOW_OPEN:
		e->kind = HV_EXIT_IRQ_WINDOW;
		break;
	case KVM_EXIT_IOAPIC_EOI:
		e->kind = HV_EXIT_EOI;
		e->eoi.vector = run->eoi.vector;
		break;
	case KVM_EXIT_DEBUG:
		e->kind = HV_EXIT_DEBUG;
		break;
	default:
		e->kind = HV_EXIT_UNKNOWN;
		e->unknown.reason = run->exit_reason;
		break;
	}
	return 0;
}
