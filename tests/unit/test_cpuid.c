/* SPDX-License-Identifier: MIT */
/* tests/unit/test_cpuid.c - CPU models and the CPUID table builder on a
 * synthetic KVM_GET_SUPPORTED_CPUID table; then, where /dev/kvm opens, on
 * the host's real table for 1, 2 and 4 vCPUs of every model, each table
 * also set on real vCPUs (ioctls only, no guest code runs). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "check.h"
#include "cpuid_internal.h"
#include "kvm_internal.h"

#define IDX KVM_CPUID_FLAG_SIGNIFCANT_INDEX
#define CX16 (1u << 13)
#define XSAVE (1u << 26)
#define AVX (1u << 28)
#define AVX2 (1u << 5)

/* An Intel-like host: 12 threads, max basic leaf 0x1f. */
static const struct kvm_cpuid_entry2 host[] = {
	{ .function = 0, .eax = 0x1f, .ebx = 0x756e6547 },
	{ .function = 1, .eax = 0x906ea, .ebx = 0x0b100800,
	  .ecx = CX16 | XSAVE | AVX | CPUID_1_ECX_X2APIC | 1,
	  .edx = 0x178bfbff },
	{ .function = 4, .index = 0, .flags = IDX, .eax = 0x1c004121 },
	{ .function = 4, .index = 1, .flags = IDX, .eax = 0x1c004122 },
	{ .function = 4, .index = 2, .flags = IDX, .eax = 0x1c004143 },
	{ .function = 4, .index = 3, .flags = IDX, .eax = 0x1c03c163 },
	{ .function = 4, .index = 4, .flags = IDX, .eax = 0 },
	{ .function = 7, .index = 0, .flags = IDX, .eax = 1,
	  .ebx = AVX2 | 1, .ecx = 0, .edx = 0 },
	{ .function = 7, .index = 1, .flags = IDX, .eax = 0x30 },
	{ .function = 0xb, .index = 0, .flags = IDX, .eax = 1, .ebx = 2,
	  .ecx = 0x100, .edx = 7 },
	{ .function = 0xb, .index = 1, .flags = IDX, .eax = 4, .ebx = 12,
	  .ecx = 0x201, .edx = 7 },
	{ .function = 0xd, .index = 0, .flags = IDX, .eax = 7, .ebx = 0x340,
	  .ecx = 0x340 },
	{ .function = 0xd, .index = 1, .flags = IDX, .eax = 0xf },
	{ .function = 0xd, .index = 2, .flags = IDX, .eax = 0x100,
	  .ebx = 0x240 },
	{ .function = 0x1f, .index = 0, .flags = IDX, .eax = 1, .ebx = 2,
	  .ecx = 0x100, .edx = 7 },
	{ .function = 0x40000000, .eax = 0x40000001, .ebx = 0x4b4d564b,
	  .ecx = 0x564b4d56, .edx = 0x4d },
	{ .function = 0x40000001, .eax = 0x01007efb },
	{ .function = 0x80000000, .eax = 0x8000001e },
	{ .function = 0x80000001, .ecx = (1u << 11) | 1, .edx = 0x2c100800 },
	{ .function = 0x80000008, .eax = 0x3030, .ecx = 0x700b },
	{ .function = 0x8000001e, .eax = 7, .ebx = 0x103 },
};
#define NHOST (sizeof(host) / sizeof(host[0]))

static struct kvm_cpuid_entry2 out[NHOST + HV_CPUID_EXTRA];

static int build(const char *model, unsigned id, unsigned ncpus, bool tscd)
{
	return hv_cpuid_build(host, NHOST, hv_cpu_model_find(model), id, ncpus,
			      tscd, out, NHOST + HV_CPUID_EXTRA);
}

static struct kvm_cpuid_entry2 *find(int n, uint32_t leaf, uint32_t sub)
{
	return hv_cpuid_find(out, n > 0 ? (unsigned)n : 0, leaf, sub);
}

static unsigned count_leaf(int n, uint32_t leaf)
{
	unsigned c = 0;

	for (int i = 0; i < n; i++)
		c += out[i].function == leaf;
	return c;
}

static void test_models(void)
{
	CHECK(hv_cpu_model_find("host") == &hv_cpu_model_host);
	CHECK_EQ(hv_cpu_model_host.nhide, 0);
	CHECK(hv_cpu_model_find("compat") != NULL);
	CHECK(hv_cpu_model_find("compat")->nhide > 0);
	CHECK(hv_cpu_model_find("nox2apic") != NULL);
	CHECK(hv_cpu_model_find("pentium9000") == NULL);
	CHECK(hv_cpu_model_find(NULL) == NULL);
}

static void test_host_topology(void)
{
	int n = build("host", 2, 4, true);
	struct kvm_cpuid_entry2 *e;

	CHECK(n > 0);
	e = find(n, 1, 0);
	CHECK(e != NULL);
	if (!e)
		return;
	CHECK_EQ(e->ebx >> 24, 2);		/* initial APIC ID */
	CHECK_EQ((e->ebx >> 16) & 0xff, 4);	/* logical processors */
	CHECK_EQ(e->ebx & 0xffff, 0x0800);	/* CLFLUSH size kept */
	CHECK(e->edx & CPUID_1_EDX_HTT);
	CHECK(e->ecx & CPUID_1_ECX_HYPERVISOR);
	CHECK(e->ecx & CPUID_1_ECX_TSC_DEADLINE);
	CHECK(e->ecx & CPUID_1_ECX_X2APIC);
	CHECK(e->ecx & CX16);
	CHECK_EQ(e->eax, 0x906ea);

	/* leaf 0xb rebuilt: SMT, core, end. */
	CHECK_EQ(count_leaf(n, 0xb), 3);
	e = find(n, 0xb, 0);
	CHECK(e && e->eax == 0 && e->ebx == 1 && e->ecx == 0x100 &&
	      e->edx == 2);
	e = find(n, 0xb, 1);
	CHECK(e && e->eax == 2 && e->ebx == 4 && e->ecx == 0x201 &&
	      e->edx == 2);
	e = find(n, 0xb, 2);
	CHECK(e && e->eax == 0 && e->ebx == 0 && ((e->ecx >> 8) & 0xff) == 0
	      && e->edx == 2);
	CHECK_EQ(count_leaf(n, 0x1f), 3);
	e = find(n, 0x1f, 1);
	CHECK(e && e->ebx == 4 && e->edx == 2);

	/* leaf 4: 4 cores per package, L3 shared by all, L1 by one. */
	e = find(n, 4, 0);
	CHECK(e && (e->eax >> 26) == 3 && ((e->eax >> 14) & 0xfff) == 0);
	CHECK(e && (e->eax & 0x3fff) == 0x0121);
	e = find(n, 4, 3);
	CHECK(e && (e->eax >> 26) == 3 && ((e->eax >> 14) & 0xfff) == 3);
	e = find(n, 4, 4);
	CHECK(e && e->eax == 0);

	e = find(n, 0x80000008, 0);
	CHECK(e && (e->ecx & 0xff) == 3 && ((e->ecx >> 12) & 0xf) == 2);
	CHECK(e && e->eax == 0x3030);
	e = find(n, 0x8000001e, 0);
	CHECK(e && e->eax == 2);
}

static void test_pv_leaves_kept(void)
{
	const char *models[] = { "host", "compat", "nox2apic" };

	for (unsigned m = 0; m < 3; m++) {
		int n = build(models[m], 0, 1, false);
		struct kvm_cpuid_entry2 *e = find(n, 0x40000000, 0);

		CHECK(e && e->eax == 0x40000001 && e->ebx == 0x4b4d564b &&
		      e->ecx == 0x564b4d56 && e->edx == 0x4d);
		e = find(n, 0x40000001, 0);
		CHECK(e && e->eax == 0x01007efb);
	}
}

static void test_single_cpu(void)
{
	int n = build("host", 0, 1, false);
	struct kvm_cpuid_entry2 *e = find(n, 1, 0);

	CHECK(e && (e->ebx >> 24) == 0 && ((e->ebx >> 16) & 0xff) == 1);
	CHECK(e && !(e->edx & CPUID_1_EDX_HTT));
	CHECK(e && !(e->ecx & CPUID_1_ECX_TSC_DEADLINE));
	e = find(n, 0xb, 1);
	CHECK(e && e->eax == 0 && e->ebx == 1);
	e = find(n, 0x80000008, 0);
	CHECK(e && (e->ecx & 0xf0ff) == 0);
}

static void test_compat_hides(void)
{
	int n = build("compat", 1, 2, true);
	struct kvm_cpuid_entry2 *e = find(n, 1, 0);

	CHECK(e && !(e->ecx & CX16) && !(e->ecx & XSAVE) && !(e->ecx & AVX));
	CHECK(e && (e->ecx & CPUID_1_ECX_X2APIC) && (e->ecx & 1));
	CHECK(e && (e->ebx >> 24) == 1);	/* topology still there */
	e = find(n, 7, 0);
	CHECK(e && !(e->ebx & AVX2) && (e->ebx & 1));
	CHECK(e && e->eax == 1);	/* 7.1's mask leaves 7.0 alone */
	e = find(n, 7, 1);
	CHECK(e && e->eax == 0);
	e = find(n, 0xd, 1);
	CHECK(e && e->eax == 0);
	/* XSAVE hidden: leaf 0xd reads zero (SDM: no XCR0 components). */
	e = find(n, 0xd, 0);
	CHECK(e && e->eax == 0 && e->ebx == 0 && e->ecx == 0);
	e = find(n, 0xd, 2);
	CHECK(e && e->eax == 0 && e->ebx == 0);
	e = find(n, 0x80000001, 0);
	CHECK(e && e->ecx == 1);
}

/* Leaf 0xd follows the visible features: an AVX-512 host whose table
 * offers x87, SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM, PKRU (0x2e7). */
static void test_xsave_leaf(void)
{
	struct kvm_cpuid_entry2 in[] = {
		{ .function = 0, .eax = 0xd, .ebx = 0x756e6547 },
		{ .function = 1, .ecx = XSAVE | AVX, .edx = 0x178bfbff },
		{ .function = 7, .index = 0, .flags = IDX,
		  .ebx = 1u << 16, .ecx = 1u << 3 },
		{ .function = 0xd, .index = 0, .flags = IDX, .eax = 0x2e7,
		  .ebx = 0xa88, .ecx = 0xa88 },
		{ .function = 0xd, .index = 1, .flags = IDX, .eax = 0xf },
		{ .function = 0xd, .index = 2, .flags = IDX, .eax = 0x100, .ebx = 0x240 },
		{ .function = 0xd, .index = 5, .flags = IDX, .eax = 0x40, .ebx = 0x440 },
		{ .function = 0xd, .index = 6, .flags = IDX, .eax = 0x200, .ebx = 0x480 },
		{ .function = 0xd, .index = 7, .flags = IDX, .eax = 0x400, .ebx = 0x680 },
		{ .function = 0xd, .index = 9, .flags = IDX, .eax = 0x8, .ebx = 0xa80 },
	};
	const unsigned nin = sizeof(in) / sizeof(in[0]);
	struct kvm_cpuid_entry2 o[sizeof(in) / sizeof(in[0]) + HV_CPUID_EXTRA];
	int n = hv_cpuid_build(in, nin, &hv_cpu_model_host, 0, 1, false, o,
			       nin + HV_CPUID_EXTRA);
	struct kvm_cpuid_entry2 *e;

	CHECK(n > 0);
	e = hv_cpuid_find(o, (unsigned)n, 0xd, 0);
	/* all offered: EBX for XCR0 = x87 (reset), ECX the whole area */
	CHECK(e && e->eax == 0x2e7 && e->edx == 0);
	CHECK(e && e->ebx == 576 && e->ecx == 0xa88);

	/* PKU hidden: PKRU goes, the area ends after Hi16_ZMM. */
	in[2].ecx = 0;
	n = hv_cpuid_build(in, nin, &hv_cpu_model_host, 0, 1, false, o,
			   nin + HV_CPUID_EXTRA);
	e = hv_cpuid_find(o, (unsigned)n, 0xd, 0);
	CHECK(e && e->eax == 0xe7 && e->ecx == 0xa80);
	e = hv_cpuid_find(o, (unsigned)n, 0xd, 9);
	CHECK(e && e->eax == 0 && e->ebx == 0);

	/* AVX-512F hidden: opmask/ZMM state go too. */
	in[2].ebx = 0;
	n = hv_cpuid_build(in, nin, &hv_cpu_model_host, 0, 1, false, o,
			   nin + HV_CPUID_EXTRA);
	e = hv_cpuid_find(o, (unsigned)n, 0xd, 0);
	CHECK(e && e->eax == 7 && e->ebx == 576 && e->ecx == 0x340);
	for (unsigned i = 5; i <= 7; i++) {
		e = hv_cpuid_find(o, (unsigned)n, 0xd, i);
		CHECK(e && e->eax == 0 && e->ebx == 0);
	}
	e = hv_cpuid_find(o, (unsigned)n, 0xd, 2);
	CHECK(e && e->eax == 0x100 && e->ebx == 0x240);

	/* AVX hidden but AVX-512F shown: ZMM state needs YMM, all go. */
	in[1].ecx = XSAVE;
	in[2].ebx = 1u << 16;
	n = hv_cpuid_build(in, nin, &hv_cpu_model_host, 0, 1, false, o,
			   nin + HV_CPUID_EXTRA);
	e = hv_cpuid_find(o, (unsigned)n, 0xd, 0);
	CHECK(e && e->eax == 3 && e->ecx == 576);

	/* A hostile size/offset pair that wraps is not taken as the max. */
	in[1].ecx = XSAVE | AVX;
	in[5].ebx = 0xffffff00;
	n = hv_cpuid_build(in, nin, &hv_cpu_model_host, 0, 1, false, o,
			   nin + HV_CPUID_EXTRA);
	e = hv_cpuid_find(o, (unsigned)n, 0xd, 0);
	CHECK(e && e->ecx == 0xa80);
}

/* AMD CmpLegacy follows the vCPU count. */
static void test_cmp_legacy(void)
{
	struct kvm_cpuid_entry2 in[] = {
		{ .function = 0, .eax = 1, .ebx = 0x68747541 },
		{ .function = 1, .edx = 0x178bfbff },
		{ .function = 0x80000001, .ecx = CPUID_80000001_ECX_CMP_LEGACY | 1 },
	};
	struct kvm_cpuid_entry2 o[3 + HV_CPUID_EXTRA];
	int n = hv_cpuid_build(in, 3, &hv_cpu_model_host, 0, 1, false, o,
			       3 + HV_CPUID_EXTRA);
	struct kvm_cpuid_entry2 *e = hv_cpuid_find(o, (unsigned)n, 0x80000001, 0);

	CHECK(e && e->ecx == 1);
	in[2].ecx = 1;
	n = hv_cpuid_build(in, 3, &hv_cpu_model_host, 1, 2, false, o,
			   3 + HV_CPUID_EXTRA);
	e = hv_cpuid_find(o, (unsigned)n, 0x80000001, 0);
	CHECK(e && e->ecx == (CPUID_80000001_ECX_CMP_LEGACY | 1));
	/* not on Intel, where the bit is reserved */
	in[0].ebx = 0x756e6547;
	n = hv_cpuid_build(in, 3, &hv_cpu_model_host, 1, 2, false, o,
			   3 + HV_CPUID_EXTRA);
	e = hv_cpuid_find(o, (unsigned)n, 0x80000001, 0);
	CHECK(e && e->ecx == 1);
}

static void test_nox2apic(void)
{
	int n = build("nox2apic", 0, 2, false);
	struct kvm_cpuid_entry2 *e = find(n, 1, 0);

	CHECK(e && !(e->ecx & CPUID_1_ECX_X2APIC));
	CHECK(e && (e->ecx & CX16) && (e->ecx & XSAVE));
}

static void test_no_topology_leaves_when_absent(void)
{
	/* An old table: max basic leaf 0xa, so no 0xb, and no 0x1f. */
	struct kvm_cpuid_entry2 in[] = {
		{ .function = 0, .eax = 0xa },
		{ .function = 1, .ebx = 0x01020800 },
	};
	struct kvm_cpuid_entry2 o[2 + HV_CPUID_EXTRA];
	int n = hv_cpuid_build(in, 2, &hv_cpu_model_host, 3, 4, false, o,
			       2 + HV_CPUID_EXTRA);

	CHECK_EQ(n, 2);
	CHECK_EQ(hv_cpuid_build(in, 2, &hv_cpu_model_host, 3, 4, false, o, 1),
		 -ENOSPC);
	in[0].eax = 0xb;
	n = hv_cpuid_build(in, 2, &hv_cpu_model_host, 3, 4, false, o,
			   2 + HV_CPUID_EXTRA);
	CHECK_EQ(n, 5);
	CHECK(hv_cpuid_find(o, 5, 0xb, 1) != NULL);
	CHECK(hv_cpuid_find(o, 5, 0x1f, 0) == NULL);
	CHECK_EQ(o[1].ebx >> 24, 3);
}

static void test_enospc(void)
{
	CHECK_EQ(hv_cpuid_build(host, NHOST, &hv_cpu_model_host, 0, 1, false,
				out, NHOST), -ENOSPC);
}

/* ---- the host's real table ------------------------------------------- */

static unsigned log2_up(unsigned n)
{
	unsigned s = 0;

	while ((1u << s) < n)
		s++;
	return s;
}

/* What the SDM/APM demand of vCPU @id's table @o[0..n) out of @ncpus,
 * built from the supported table @sup[0..nsup). */
static void check_real_table(struct kvm_cpuid_entry2 *o, unsigned n,
			     struct kvm_cpuid_entry2 *sup, unsigned nsup,
			     unsigned id, unsigned ncpus)
{
	struct kvm_cpuid_entry2 *e, *s, *l1 = hv_cpuid_find(o, n, 1, 0);
	struct kvm_cpuid_entry2 *l0 = hv_cpuid_find(o, n, 0, 0);
	bool amd = l0 && l0->ebx == 0x68747541;
	unsigned shift = log2_up(ncpus);

	CHECK(l0 && l1);
	if (!l0 || !l1)
		return;
	/* leaf 1: initial APIC ID, logical processors, HTT, hypervisor */
	CHECK_EQ(l1->ebx >> 24, id);
	CHECK_EQ((l1->ebx >> 16) & 0xff, ncpus);
	CHECK_EQ(!!(l1->edx & CPUID_1_EDX_HTT), ncpus > 1);
	CHECK(l1->ecx & CPUID_1_ECX_HYPERVISOR);

	/* leaf 0xb: SMT (1 thread), core (ncpus, shift), then invalid */
	if (l0->eax >= 0xb) {
		e = hv_cpuid_find(o, n, 0xb, 0);
		CHECK(e && e->eax == 0 && e->ebx == 1 && e->ecx == 0x100 &&
		      e->edx == id);
		e = hv_cpuid_find(o, n, 0xb, 1);
		CHECK(e && e->eax == shift && e->ebx == ncpus &&
		      e->ecx == 0x201 && e->edx == id);
		e = hv_cpuid_find(o, n, 0xb, 2);
		CHECK(e && e->eax == 0 && e->ebx == 0 && e->ecx == 2 &&
		      e->edx == id);
	}
	/* leaf 4 (Intel caches): cores per package, sharing */
	for (unsigned i = 0; i < n; i++) {
		e = &o[i];
		if (e->function != 4 || !(e->eax & 0x1f))
			continue;
		CHECK_EQ(e->eax >> 26, ncpus - 1);
		CHECK_EQ((e->eax >> 14) & 0xfff,
			 ((e->eax >> 5) & 7) >= 3 ? ncpus - 1 : 0);
	}

	/* leaf 0xd: components only where supported, sizes consistent */
	e = hv_cpuid_find(o, n, 0xd, 0);
	s = hv_cpuid_find(sup, nsup, 0xd, 0);
	if (e && s) {
		uint64_t xcr0 = (uint64_t)e->edx << 32 | e->eax;
		uint64_t xsup = (uint64_t)s->edx << 32 | s->eax;
		uint32_t max = 576;

		CHECK_EQ(xcr0 & ~xsup, 0);
		if (!(l1->ecx & (1u << 26))) {
			CHECK(xcr0 == 0 && e->ebx == 0 && e->ecx == 0);
		} else {
			CHECK_EQ(xcr0 & 3, 3);		/* x87, SSE */
			CHECK_EQ(e->ebx, 576);		/* XCR0 = x87 at reset */
			for (unsigned c = 2; c < 63; c++) {
				struct kvm_cpuid_entry2 *d =
					hv_cpuid_find(o, n, 0xd, c);

				if (!(xcr0 & (1ull << c))) {
					CHECK(!d || (d->ecx & 1) ||
					      (d->eax == 0 && d->ebx == 0));
					continue;
				}
				CHECK(d && d->eax && d->ebx >= 576);
				if (d && d->ebx + d->eax > max)
					max = d->ebx + d->eax;
			}
			CHECK_EQ(e->ecx, max);
			/* AVX state only with AVX, AVX-512 only with both */
			if (xcr0 & 4)
				CHECK(l1->ecx & (1u << 28));
		}
	}

	/* hypervisor leaves: KVM's, unchanged */
	e = hv_cpuid_find(o, n, 0x40000000, 0);
	s = hv_cpuid_find(sup, nsup, 0x40000000, 0);
	CHECK(e != NULL);
	if (e) {
		char sig[13];

		memcpy(sig, &e->ebx, 4);
		memcpy(sig + 4, &e->ecx, 4);
		memcpy(sig + 8, &e->edx, 4);
		sig[12] = 0;
		CHECK(!strcmp(sig, "KVMKVMKVM"));
		CHECK(e->eax >= 0x40000001);
		CHECK(hv_cpuid_find(o, n, 0x40000001, 0) != NULL);
	}
	e = hv_cpuid_find(o, n, 0x40000001, 0);
	s = hv_cpuid_find(sup, nsup, 0x40000001, 0);
	CHECK(e && s && e->eax == s->eax && e->edx == s->edx);

	/* AMD: 0x80000008 NC and ApicIdSize, 0x8000001e, 0x8000001d */
	e = hv_cpuid_find(o, n, 0x80000008, 0);
	if (e) {
		CHECK_EQ(e->ecx & 0xff, ncpus - 1);
		CHECK_EQ((e->ecx >> 12) & 0xf, ncpus > 1 ? shift : 0);
	}
	if (amd) {
		e = hv_cpuid_find(o, n, 0x8000001e, 0);
		if (e) {
			CHECK_EQ(e->eax, id);
			CHECK_EQ((e->ebx >> 8) & 0xff, 0);	/* 1 thread/core */
			CHECK_EQ(e->ebx & 0xff, id);
		}
		for (unsigned i = 0; i < n; i++) {
			e = &o[i];
			if (e->function != 0x8000001d || !(e->eax & 0x1f))
				continue;
			CHECK_EQ((e->eax >> 14) & 0xfff,
				 ((e->eax >> 5) & 7) >= 3 ? ncpus - 1 : 0);
		}
		e = hv_cpuid_find(o, n, 0x80000001, 0);
		if (e && ncpus == 1)
			CHECK(!(e->ecx & CPUID_80000001_ECX_CMP_LEGACY));
		if (e && ncpus > 1)
			CHECK(e->ecx & CPUID_80000001_ECX_CMP_LEGACY);
	}
}

/* Leaves KVM must hold as set (it rewrites only feature bits it cannot
 * give, and 0xd's sizes): topology and hypervisor leaves. */
static void check_readback(struct hv_vcpu *v, struct kvm_cpuid_entry2 *o,
			   unsigned n)
{
	static const uint32_t leaves[] = { 0xb, 0x40000000, 0x40000001,
					   0x8000001e };
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 256 * sizeof(*o));

	c->nent = 256;
	CHECK_EQ(ioctl(v->fd, KVM_GET_CPUID2, c), 0);
	for (unsigned i = 0; i < n; i++) {
		for (unsigned l = 0; l < sizeof(leaves) / sizeof(leaves[0]); l++) {
			struct kvm_cpuid_entry2 *g;

			if (o[i].function != leaves[l])
				continue;
			g = hv_cpuid_find(c->entries, c->nent, o[i].function,
					  o[i].index);
			CHECK(g && g->eax == o[i].eax && g->ebx == o[i].ebx &&
			      g->ecx == o[i].ecx && g->edx == o[i].edx);
		}
		if (o[i].function == 1) {
			struct kvm_cpuid_entry2 *g =
				hv_cpuid_find(c->entries, c->nent, 1, 0);

			CHECK(g && (g->ebx >> 16) == (o[i].ebx >> 16));
		}
	}
	free(c);
}

static void test_real_kvm(void)
{
	static const char *models[] = { "host", "compat", "nox2apic" };
	static const unsigned counts[] = { 1, 2, 4 };
	struct hv_system *sys;
	const struct kvm_cpuid2 *sup;
	char err[256];
	int r = hv_open(NULL, &sys, err, sizeof(err));

	if (r < 0) {
		printf("SKIP part: %s\n", err);
		return;
	}
	CHECK_EQ(hv_sys_supported_cpuid(sys, &sup), 0);
	for (unsigned m = 0; m < 3; m++) {
		for (unsigned c = 0; c < 3; c++) {
			unsigned ncpus = counts[c], max = sup->nent + HV_CPUID_EXTRA;
			struct kvm_cpuid_entry2 *o = calloc(max, sizeof(*o));
			struct hv_vm *vm = NULL;
			struct hv_vcpu *v[4] = { NULL };

			CHECK_EQ(hv_vm_create(sys, &vm), 0);
			for (unsigned id = 0; id < ncpus; id++) {
				int k = hv_cpuid_build(sup->entries, sup->nent,
						       hv_cpu_model_find(models[m]),
						       id, ncpus, sys->tsc_deadline,
						       o, max);

				CHECK(k > 0);
				if (k <= 0)
					break;
				check_real_table(o, (unsigned)k,
						 (struct kvm_cpuid_entry2 *)sup->entries,
						 sup->nent, id, ncpus);
				/* KVM accepts it (hv_vcpu_create sets the
				 * same table) and keeps the topology. */
				CHECK_EQ(hv_vcpu_create(vm, id, hv_cpu_model_find(models[m]),
							ncpus, &v[id]), 0);
				if (v[id])
					check_readback(v[id], o, (unsigned)k);
				if (m == 0 && c == 2 && id == 1) {
					struct kvm_cpuid_entry2 *d =
						hv_cpuid_find(o, (unsigned)k, 0xd, 0);
					struct kvm_cpuid_entry2 *p =
						hv_cpuid_find(o, (unsigned)k, 0x40000001, 0);

					printf("  host model, vCPU 1 of 4: 0xd.0 %08x/%x/%x, "
					       "0x40000001 eax %08x (kvm-clock %s, PV EOI %s)\n",
					       d ? d->eax : 0, d ? d->ebx : 0,
					       d ? d->ecx : 0, p ? p->eax : 0,
					       p && (p->eax & (1u << 3)) ? "yes" : "no",
					       p && (p->eax & (1u << 6)) ? "yes" : "no");
				}
			}
			for (unsigned id = 0; id < ncpus; id++)
				hv_vcpu_destroy(v[id]);
			hv_vm_destroy(vm);
			free(o);
		}
	}
	hv_close(sys);
}

int main(void)
{
	RUN_TEST(test_models);
	RUN_TEST(test_host_topology);
	RUN_TEST(test_pv_leaves_kept);
	RUN_TEST(test_single_cpu);
	RUN_TEST(test_compat_hides);
	RUN_TEST(test_nox2apic);
	RUN_TEST(test_xsave_leaf);
	RUN_TEST(test_cmp_legacy);
	RUN_TEST(test_no_topology_leaves_when_absent);
	RUN_TEST(test_enospc);
	RUN_TEST(test_real_kvm);
	return check_finish();
}
