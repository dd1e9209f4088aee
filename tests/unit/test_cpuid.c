/* SPDX-License-Identifier: MIT */
/* tests/unit/test_cpuid.c - CPU models and the CPUID table builder on a
 * synthetic KVM_GET_SUPPORTED_CPUID table.  No /dev/kvm. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "cpuid_internal.h"

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
	{ .function = 0xd, .index = 0, .flags = IDX, .eax = 7 },
	{ .function = 0xd, .index = 1, .flags = IDX, .eax = 0xf },
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
	e = find(n, 0xd, 0);
	CHECK(e && e->eax == 7);
	e = find(n, 0x80000001, 0);
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

int main(void)
{
	RUN_TEST(test_models);
	RUN_TEST(test_host_topology);
	RUN_TEST(test_pv_leaves_kept);
	RUN_TEST(test_single_cpu);
	RUN_TEST(test_compat_hides);
	RUN_TEST(test_nox2apic);
	RUN_TEST(test_no_topology_leaves_when_absent);
	RUN_TEST(test_enospc);
	return check_finish();
}
