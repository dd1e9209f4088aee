/* SPDX-License-Identifier: MIT */
/*
 * hostdrv/cpuid_internal.h - building a vCPU's CPUID table from what KVM
 * supports.  Pure, unit-tested with synthetic tables (test_cpuid.c).
 * Leaf layouts: Intel SDM vol. 2A "CPUID", AMD APM vol. 3 appendix E.
 */
#ifndef VIVARIUM_CPUID_INTERNAL_H
#define VIVARIUM_CPUID_INTERNAL_H

#include <linux/kvm.h>
#include <stdbool.h>

#include "hv.h"

/* Leaf 1 ECX / EDX bits the builder itself sets or tests. */
#define CPUID_1_ECX_X2APIC	(1u << 21)
#define CPUID_1_ECX_TSC_DEADLINE (1u << 24)
#define CPUID_1_ECX_HYPERVISOR	(1u << 31)
#define CPUID_1_EDX_HTT		(1u << 28)
#define CPUID_80000001_ECX_CMP_LEGACY (1u << 1)

/* Room the builder may need beyond the supported table: the leaf 0xb and
 * 0x1f topology subleaves it rewrites. */
#define HV_CPUID_EXTRA 8

/*
 * hv_cpuid_build - the CPUID table of vCPU @apic_id out of @ncpus: @in
 * (@n entries of KVM_GET_SUPPORTED_CPUID) less @model's hidden bits, with
 * the APIC ID and topology filled in (leaf 1 EBX, leaves 4, 0xb, 0x1f,
 * 0x80000008, 0x8000001d, 0x8000001e, AMD CmpLegacy: one package of
 * @ncpus cores, one thread each), the hypervisor bit set, TSC-deadline set
 * when @tsc_deadline, leaf 0xd made consistent with the visible features
 * (XCR0 components, sizes: SDM vol. 2A CPUID 0DH) and KVM's paravirtual
 * leaves 0x40000000 (signature "KVMKVMKVM", max leaf) and 0x40000001
 * (KVM_FEATURE_* such as CLOCKSOURCE2 and PV_EOI) kept as KVM reports them.
 * Writes at most @max entries to @out; returns the count or -ENOSPC.
 */
int hv_cpuid_build(const struct kvm_cpuid_entry2 *in, unsigned n,
		   const struct hv_cpu_model *model, unsigned apic_id,
		   unsigned ncpus, bool tsc_deadline,
		   struct kvm_cpuid_entry2 *out, unsigned max);

/* The entry for (@leaf, @subleaf) in @e[0..n), honouring
 * KVM_CPUID_FLAG_SIGNIFCANT_INDEX; NULL if absent. */
struct kvm_cpuid_entry2 *hv_cpuid_find(struct kvm_cpuid_entry2 *e,
				       unsigned n, uint32_t leaf,
				       uint32_t subleaf);

#endif
