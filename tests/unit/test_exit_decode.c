/* SPDX-License-Identifier: MIT */
/* tests/unit/test_exit_decode.c - hv_exit_decode() on synthetic kvm_run
 * pages, hostile ones included.  No /dev/kvm. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "kvm_exit.h"

#define RUN_SIZE (3 * 4096)	/* what KVM_GET_VCPU_MMAP_SIZE says on x86 */

static union {
	struct kvm_run run;
	uint8_t bytes[RUN_SIZE];
} page __attribute__((aligned(4096)));

static struct kvm_run *fresh(uint32_t reason)
{
	memset(&page, 0, sizeof(page));
	page.run.exit_reason = reason;
	return &page.run;
}

static struct kvm_run *io(uint8_t dir, uint16_t port, uint8_t size,
			  uint32_t count, uint64_t off)
{
	struct kvm_run *run = fresh(KVM_EXIT_IO);

	run->io.direction = dir;
	run->io.port = port;
	run->io.size = size;
	run->io.count = count;
	run->io.data_offset = off;
	return run;
}

static void test_io_out(void)
{
	struct kvm_run *run = io(KVM_EXIT_IO_OUT, 0x3f8, 1, 1, 4096);
	struct hv_exit e;

	page.bytes[4096] = 'A';
	CHECK_EQ(hv_exit_decode(run, RUN_SIZE, &e), 0);
	CHECK_EQ(e.kind, HV_EXIT_IO);
	CHECK_EQ(e.io.port, 0x3f8);
	CHECK_EQ(e.io.size, 1);
	CHECK(e.io.is_write);
	CHECK_EQ(e.io.count, 1);
	CHECK(e.io.data == page.bytes + 4096);
	CHECK_EQ(e.io.data[0], 'A');
}

static void test_io_in_string(void)
{
	struct kvm_run *run = io(KVM_EXIT_IO_IN, 0x1f0, 2, 256, 4096);
	struct hv_exit e;

	CHECK_EQ(hv_exit_decode(run, RUN_SIZE, &e), 0);
	CHECK_EQ(e.kind, HV_EXIT_IO);
	CHECK(!e.io.is_write);
	CHECK_EQ(e.io.size, 2);
	CHECK_EQ(e.io.count, 256);
	/* Data reaching the very end of the mapping is still fine. */
	run = io(KVM_EXIT_IO_IN, 0x60, 4, 2, RUN_SIZE - 8);
	CHECK_EQ(hv_exit_decode(run, RUN_SIZE, &e), 0);
	CHECK(e.io.data == page.bytes + RUN_SIZE - 8);
	/* Data starting right after struct kvm_run. */
	run = io(KVM_EXIT_IO_OUT, 0x80, 1, 1, sizeof(struct kvm_run));
	CHECK_EQ(hv_exit_decode(run, RUN_SIZE, &e), 0);
}

/* Each of these would let a device read or write outside the run page. */
static void check_bad_io(uint8_t size, uint32_t count, uint64_t off)
{
	struct kvm_run *run = io(KVM_EXIT_IO_IN, 0x70, size, count, off);
	struct hv_exit e;

	CHECK_EQ(hv_exit_decode(run, RUN_SIZE, &e), -EFAULT);
	CHECK_EQ(e.kind, HV_EXIT_UNKNOWN);
	CHECK_EQ(e.unknown.reason, KVM_EXIT_IO);
}

static void test_io_hostile(void)
{
	check_bad_io(1, 1, RUN_SIZE);			/* just past the end */
	check_bad_io(4, 1, RUN_SIZE - 3);		/* straddles the end */
	check_bad_io(2, 2, RUN_SIZE - 2);
	check_bad_io(1, 1, UINT64_MAX);			/* wraps */
	check_bad_io(4, UINT32_MAX, 4096);		/* huge count */
	check_bad_io(4, 0x40000000, 4096);		/* size*count wraps 32 */
	check_bad_io(1, 1, 0);				/* inside kvm_run */
	check_bad_io(1, 1, sizeof(struct kvm_run) - 1);
	check_bad_io(1, 0, 4096);			/* zero count */
	check_bad_io(3, 1, 4096);			/* bad sizes */
	check_bad_io(8, 1, 4096);
	check_bad_io(0, 1, 4096);
}

static void test_run_size_too_small(void)
{
	struct hv_exit e;

	CHECK_EQ(hv_exit_decode(fresh(KVM_EXIT_HLT), sizeof(struct kvm_run) - 1,
				&e), -EFAULT);
}

static void test_mmio(void)
{
	struct kvm_run *run = fresh(KVM_EXIT_MMIO);
	struct hv_exit e;

	run->mmio.phys_addr = 0xfed00010;
	run->mmio.len = 4;
	run->mmio.is_write = 1;
	memcpy(run->mmio.data, "\x78\x56\x34\x12", 4);
	CHECK_EQ(hv_exit_decode(run, RUN_SIZE, &e), 0);
	CHECK_EQ(e.kind, HV_EXIT_MMIO);
	CHECK_EQ(e.mmio.gpa, 0xfed00010);
	CHECK_EQ(e.mmio.size, 4);
	CHECK(e.mmio.is_write);
	CHECK(e.mmio.data == run->mmio.data);

	run->mmio.is_write = 0;
	run->mmio.len = 8;
	CHECK_EQ(hv_exit_decode(run, RUN_SIZE, &e), 0);
	CHECK(!e.mmio.is_write);
	CHECK_EQ(e.mmio.size, 8);

	run->mmio.len = 0;
	CHECK_EQ(hv_exit_decode(run, RUN_SIZE, &e), -EFAULT);
	run->mmio.len = 9;
	CHECK_EQ(hv_exit_decode(run, RUN_SIZE, &e), -EFAULT);
	CHECK_EQ(e.kind, HV_EXIT_UNKNOWN);
	run->mmio.len = 0xffffffff;
	CHECK_EQ(hv_exit_decode(run, RUN_SIZE, &e), -EFAULT);
}

static void test_simple_kinds(void)
{
	static const struct { uint32_t reason; enum hv_exit_kind kind; } t[] = {
		{ KVM_EXIT_HLT, HV_EXIT_HLT },
		{ KVM_EXIT_SHUTDOWN, HV_EXIT_SHUTDOWN },
		{ KVM_EXIT_INTR, HV_EXIT_INTR },
		{ KVM_EXIT_IRQ_WINDOW_OPEN, HV_EXIT_IRQ_WINDOW },
		{ KVM_EXIT_DEBUG, HV_EXIT_DEBUG },
	};
	struct hv_exit e;

	for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		CHECK_EQ(hv_exit_decode(fresh(t[i].reason), RUN_SIZE, &e), 0);
		CHECK_EQ(e.kind, t[i].kind);
	}
}

static void test_system_event(void)
{
	static const struct { uint32_t raw; enum hv_system_event t; } t[] = {
		{ KVM_SYSTEM_EVENT_SHUTDOWN, HV_EVENT_SHUTDOWN },
		{ KVM_SYSTEM_EVENT_RESET, HV_EVENT_RESET },
		{ KVM_SYSTEM_EVENT_CRASH, HV_EVENT_CRASH },
		{ KVM_SYSTEM_EVENT_WAKEUP, HV_EVENT_OTHER },
		{ 12345, HV_EVENT_OTHER },
	};
	struct hv_exit e;

	for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct kvm_run *run = fresh(KVM_EXIT_SYSTEM_EVENT);

		run->system_event.type = t[i].raw;
		CHECK_EQ(hv_exit_decode(run, RUN_SIZE, &e), 0);
		CHECK_EQ(e.kind, HV_EXIT_SYSTEM_EVENT);
		CHECK_EQ(e.system_event.type, t[i].t);
		CHECK_EQ(e.system_event.raw_type, t[i].raw);
	}
}

static void test_emulation_failure(void)
{
	/* lock cmpxchg16b (%rdi): what this machine's emulator rejects. */
	static const uint8_t insn[] = { 0xf0, 0x48, 0x0f, 0xc7, 0x0f };
	struct kvm_run *run = fresh(KVM_EXIT_INTERNAL_ERROR);
	struct hv_exit e;

	run->emulation_failure.suberror = KVM_INTERNAL_ERROR_EMULATION;
	run->emulation_failure.ndata = 3;
	run->emulation_failure.flags =
		KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES;
	run->emulation_failure.insn_size = sizeof(insn);
	memcpy(run->emulation_failure.insn_bytes, insn, sizeof(insn));
	CHECK_EQ(hv_exit_decode(run, RUN_SIZE, &e), 0);
	CHECK_EQ(e.kind, HV_EXIT_INTERNAL_ERROR);
	CHECK_EQ(e.internal.suberror, KVM_INTERNAL_ERROR_EMULATION);
	CHECK_EQ(e.internal.insn_len, sizeof(insn));
	CHECK(!memcmp(e.internal.insn, insn, sizeof(insn)));
	CHECK_EQ(e.internal.ndata, 3);
	CHECK_EQ(e.internal.data[0],
		 KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES);

	/* An insn_size beyond 15 is clamped. */
	run->emulation_failure.insn_size = 200;
	CHECK_EQ(hv_exit_decode(run, RUN_SIZE, &e), 0);
	CHECK_EQ(e.internal.insn_len, 15);

	/* Without the flag, the bytes are not trusted. */
	run->emulation_failure.flags = 0;
	CHECK_EQ(hv_exit_decode(run, RUN_SIZE, &e), 0);
	CHECK_EQ(e.internal.insn_len, 0);

	/* An ndata beyond the array is clamped. */
	run->emulation_failure.ndata = 1000;
	CHECK_EQ(hv_exit_decode(run, RUN_SIZE, &e), 0);
	CHECK_EQ(e.internal.ndata, 16);
}

static void test_other_internal_error(void)
{
	struct kvm_run *run = fresh(KVM_EXIT_INTERNAL_ERROR);
	struct hv_exit e;

	run->internal.suberror = KVM_INTERNAL_ERROR_DELIVERY_EV;
	run->internal.ndata = 2;
	run->internal.data[0] = 0x80000b0e;
	run->internal.data[1] = 0x31;
	CHECK_EQ(hv_exit_decode(run, RUN_SIZE, &e), 0);
	CHECK_EQ(e.internal.suberror, KVM_INTERNAL_ERROR_DELIVERY_EV);
	CHECK_EQ(e.internal.ndata, 2);
	CHECK_EQ(e.internal.data[0], 0x80000b0e);
	CHECK_EQ(e.internal.data[1], 0x31);
	CHECK_EQ(e.internal.insn_len, 0);
}

static void test_fail_entry_eoi_unknown(void)
{
	struct kvm_run *run = fresh(KVM_EXIT_FAIL_ENTRY);
	struct hv_exit e;

	run->fail_entry.hardware_entry_failure_reason = 0x80000021;
	CHECK_EQ(hv_exit_decode(run, RUN_SIZE, &e), 0);
	CHECK_EQ(e.kind, HV_EXIT_FAIL_ENTRY);
	CHECK_EQ(e.fail_entry.reason, 0x80000021);

	run = fresh(KVM_EXIT_IOAPIC_EOI);
	run->eoi.vector = 0x31;
	CHECK_EQ(hv_exit_decode(run, RUN_SIZE, &e), 0);
	CHECK_EQ(e.kind, HV_EXIT_EOI);
	CHECK_EQ(e.eoi.vector, 0x31);

	CHECK_EQ(hv_exit_decode(fresh(999), RUN_SIZE, &e), 0);
	CHECK_EQ(e.kind, HV_EXIT_UNKNOWN);
	CHECK_EQ(e.unknown.reason, 999);
	CHECK_EQ(hv_exit_decode(fresh(KVM_EXIT_X86_BUS_LOCK), RUN_SIZE, &e), 0);
	CHECK_EQ(e.kind, HV_EXIT_UNKNOWN);
}

int main(void)
{
	RUN_TEST(test_io_out);
	RUN_TEST(test_io_in_string);
	RUN_TEST(test_io_hostile);
	RUN_TEST(test_run_size_too_small);
	RUN_TEST(test_mmio);
	RUN_TEST(test_simple_kinds);
	RUN_TEST(test_system_event);
	RUN_TEST(test_emulation_failure);
	RUN_TEST(test_other_internal_error);
	RUN_TEST(test_fail_entry_eoi_unknown);
	return check_finish();
}
