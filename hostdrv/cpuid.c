/* SPDX-License-Identifier: MIT */
/*
 * hostdrv/cpuid.c - CPU models: what a vCPU's CPUID says, built from
 * KVM_GET_SUPPORTED_CPUID less each model's hidden features, plus the vCPU's
 * place in the topology.  Bit positions: Intel SDM vol. 2A, CPUID tables
 * 3-8 (leaf 1), 3-8 (leaf 7), and AMD APM vol. 3 appendix E.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "cpuid_internal.h"

enum { EAX, EBX, ECX, EDX };

/* ---- models ------------------------------------------------------------ */

const struct hv_cpu_model hv_cpu_model_host = { "host", NULL, 0 };

static const struct hv_cpuid_mask nox2apic_hide[] = {
	{ 1, 0, ECX, CPUID_1_ECX_X2APIC },
};

/*
 * "compat": what this project's CI /dev/kvm (kvm_pvm's instruction
 * emulator) can execute: no CMPXCHG16B and no XSAVE, and so nothing whose
 * state lives only in XSAVE areas (AVX and up).  Note: kvm_pvm rewrites
 * leaf 1 and leaf 7 on KVM_SET_CPUID2 to the features its guests run
 * natively, so there only cx16 (and x2apic) really disappear; xsave and
 * AVX come back.  On VT-x/AMD-V hosts the whole mask holds.
 */
static const struct hv_cpuid_mask compat_hide[] = {
	/* leaf 1 ECX: fma, cx16, xsave, osxsave, avx, f16c */
	{ 1, 0, ECX, (1u << 12) | (1u << 13) | (1u << 26) | (1u << 27) |
		     (1u << 28) | (1u << 29) },
	/* leaf 7.0 EBX: avx2, avx512f/dq/ifma/pf/er/cd/bw/vl */
	{ 7, 0, EBX, (1u << 5) | (1u << 16) | (1u << 17) | (1u << 21) |
		     (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) |
		     (1u << 31) },
	/* leaf 7.0 ECX: avx512vbmi, vbmi2, vaes, vpclmulqdq, vnni, bitalg,
	 * vpopcntdq */
	{ 7, 0, ECX, (1u << 1) | (1u << 6) | (1u << 9) | (1u << 10) |
		     (1u << 11) | (1u << 12) | (1u << 14) },
	/* leaf 7.0 EDX: avx512 4vnniw/4fmaps/vp2intersect/fp16, amx */
	{ 7, 0, EDX, (1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) |
		     (1u << 23) | (1u << 24) | (1u << 25) },
	/* leaf 7.1 EAX: avx-vnni, avx512_bf16 */
	{ 7, 1, EAX, (1u << 4) | (1u << 5) },
	/* leaf 0xd.1 EAX: xsaveopt, xsavec, xgetbv1, xsaves */
	{ 0xd, 1, EAX, 0xf },
	/* leaf 0x80000001 ECX: xop, fma4 */
	{ 0x80000001, 0, ECX, (1u << 11) | (1u << 16) },
};

static const struct hv_cpu_model models[] = {
	{ "nox2apic", nox2apic_hide,
	  sizeof(nox2apic_hide) / sizeof(nox2apic_hide[0]) },
	{ "compat", compat_hide, sizeof(compat_hide) / sizeof(compat_hide[0]) },
};

const struct hv_cpu_model *hv_cpu_model_find(const char *name)
{
	if (!name)
		return NULL;
	if (!strcmp(name, hv_cpu_model_host.name))
		return &hv_cpu_model_host;
	for (unsigned i = 0; i < sizeof(models) / sizeof(models[0]); i++)
		if (!strcmp(name, models[i].name))
			return &models[i];
	return NULL;
}

/* ---- table building ---------------------------------------------------- */

struct kvm_cpuid_entry2 *hv_cpuid_find(struct kvm_cpuid_entry2 *e,
				       unsigned n, uint32_t leaf,
				       uint32_t subleaf)
{
	for (unsigned i = 0; i < n; i++) {
		if (e[i].function != leaf)
			continue;
		if ((e[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) &&
		    e[i].index != subleaf)
			continue;
		return &e[i];
	}
	return NULL;
}

static uint32_t *reg_of(struct kvm_cpuid_entry2 *e, unsigned reg)
{
	switch (reg) {
	case EAX: return &e->eax;
	case EBX: return &e->ebx;
	case ECX: return &e->ecx;
	default: return &e->edx;
	}
}

/* Bits of APIC ID that number @ncpus cores: ceil(log2(ncpus)). */
static unsigned id_shift(unsigned ncpus)
{
	unsigned s = 0;

	while ((1u << s) < ncpus && s < 31)
		s++;
	return s;
}

static unsigned clamp(unsigned v, unsigned max)
{
	return v > max ? max : v;
}

/* Leaf 0xb / 0x1f: one thread per core, @ncpus cores in one package. */
static int add_topology_leaf(struct kvm_cpuid_entry2 *out, unsigned *n,
			     unsigned max, uint32_t leaf, unsigned apic_id,
			     unsigned ncpus)
{
	static const struct { uint32_t type; } levels[] = {
		{ 1 },	/* SMT */
		{ 2 },	/* core */
		{ 0 },	/* invalid: ends the enumeration */
	};

	for (unsigned i = 0; i < 3; i++) {
		struct kvm_cpuid_entry2 *e;

		if (*n >= max)
			return -ENOSPC;
		e = &out[(*n)++];
		memset(e, 0, sizeof(*e));
		e->function = leaf;
		e->index = i;
		e->flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
		e->ecx = (levels[i].type << 8) | i;
		e->edx = apic_id;
		if (levels[i].type == 1) {
			e->eax = 0;
			e->ebx = 1;
		} else if (levels[i].type == 2) {
			e->eax = id_shift(ncpus);
			e->ebx = clamp(ncpus, 0xffff);
		}
	}
	return 0;
}

static void set_topology(struct kvm_cpuid_entry2 *out, unsigned n,
			 unsigned apic_id, unsigned ncpus)
{
	unsigned shift = id_shift(ncpus);
	struct kvm_cpuid_entry2 *e;

	e = hv_cpuid_find(out, n, 1, 0);
	if (e) {
		e->ebx &= 0x0000ffff;
		e->ebx |= (apic_id & 0xff) << 24;
		e->ebx |= clamp(ncpus, 255) << 16;
		if (ncpus > 1)
			e->edx |= CPUID_1_EDX_HTT;
		else
			e->edx &= ~CPUID_1_EDX_HTT;
	}
	for (unsigned i = 0; i < n; i++) {
		e = &out[i];
		/* Intel deterministic cache parameters. */
		if (e->function == 4 && (e->eax & 0x1f)) {
			unsigned level = (e->eax >> 5) & 7;

			e->eax &= 0x3fff;
			e->eax |= clamp(ncpus - 1, 63) << 26;
			if (level >= 3)
				e->eax |= clamp(ncpus - 1, 0xfff) << 14;
		}
		/* AMD cache topology: threads sharing this cache - 1. */
		if (e->function == 0x8000001d && (e->eax & 0x1f)) {
			unsigned level = (e->eax >> 5) & 7;

			e->eax &= ~(0xfffu << 14);
			if (level >= 3)
				e->eax |= clamp(ncpus - 1, 0xfff) << 14;
		}
	}
	e = hv_cpuid_find(out, n, 0x80000008, 0);
	if (e) {
		e->ecx &= ~0xf0ffu;
		e->ecx |= clamp(ncpus - 1, 255);
		e->ecx |= (ncpus > 1 ? shift : 0) << 12;
	}
	e = hv_cpuid_find(out, n, 0x8000001e, 0);
	if (e) {
		e->eax = apic_id;
		e->ebx = apic_id & 0xff;	/* core id; 1 thread per core */
		e->ecx = 0;			/* node 0, 1 node */
	}
}

/* XSAVE state components (SDM vol. 1 13.1, "XSAVE-Supported Features"),
 * the CPUID feature each needs, and the legacy area + header every
 * standard-format XSAVE area starts with. */
#define XSAVE_LEGACY_HDR	576u	/* 512-byte legacy area + 64-byte header */

struct xfeature_need {
	unsigned bit;			/* state component */
	uint32_t leaf, subleaf;
	unsigned reg;
	uint32_t feature;		/* CPUID bit that must be visible */
};

static const struct xfeature_need xfeature_needs[] = {
	{ 2, 1, 0, ECX, 1u << 28 },	/* YMM_Hi128: AVX */
	{ 3, 7, 0, EBX, 1u << 14 },	/* BNDREGS: MPX */
	{ 4, 7, 0, EBX, 1u << 14 },	/* BNDCSR: MPX */
	{ 5, 7, 0, EBX, 1u << 16 },	/* opmask: AVX-512F */
	{ 6, 7, 0, EBX, 1u << 16 },	/* ZMM_Hi256: AVX-512F */
	{ 7, 7, 0, EBX, 1u << 16 },	/* Hi16_ZMM: AVX-512F */
	{ 9, 7, 0, ECX, 1u << 3 },	/* PKRU: PKU */
	{ 17, 7, 0, EDX, 1u << 24 },	/* XTILECFG: AMX-TILE */
	{ 18, 7, 0, EDX, 1u << 24 },	/* XTILEDATA: AMX-TILE */
};

#define CPUID_1_ECX_XSAVE	(1u << 26)
#define XCR0_AVX_MASK		(1ull << 2)
#define XCR0_AVX512_MASK	(7ull << 5)

/*
 * Leaf 0xd after the model's masks (SDM vol. 2A CPUID leaf 0DH, vol. 1
 * 13.2): the XCR0 components in 0xd.0 EDX:EAX only where the features
 * that use them are visible (AVX-512 state also needs AVX); sub-leaves of
 * the others zeroed; EBX the size for XCR0's reset value (x87 only: 576,
 * what KVM also computes and keeps updating as the guest sets XCR0); ECX
 * the size for every component offered, from the sub-leaves' offsets
 * and sizes.  Without XSAVE in leaf 1 the whole leaf reads zero.
 */
static void fix_xsave_leaf(struct kvm_cpuid_entry2 *out, unsigned n)
{
	struct kvm_cpuid_entry2 *l1 = hv_cpuid_find(out, n, 1, 0);
	struct kvm_cpuid_entry2 *d0 = hv_cpuid_find(out, n, 0xd, 0);
	uint64_t xcr0;
	uint32_t max_size = XSAVE_LEGACY_HDR;

	if (!d0)
		return;
	if (!l1 || !(l1->ecx & CPUID_1_ECX_XSAVE)) {
		for (unsigned i = 0; i < n; i++)
			if (out[i].function == 0xd)
				out[i].eax = out[i].ebx = out[i].ecx =
					out[i].edx = 0;
		return;
	}
	xcr0 = (uint64_t)d0->edx << 32 | d0->eax;
	for (unsigned i = 0; i < sizeof(xfeature_needs) / sizeof(xfeature_needs[0]); i++) {
		const struct xfeature_need *x = &xfeature_needs[i];
		struct kvm_cpuid_entry2 *f = hv_cpuid_find(out, n, x->leaf,
							   x->subleaf);

		if (!f || !(*reg_of(f, x->reg) & x->feature))
			xcr0 &= ~(1ull << x->bit);
	}
	if (!(xcr0 & XCR0_AVX_MASK))
		xcr0 &= ~XCR0_AVX512_MASK;
	d0->eax = (uint32_t)xcr0;
	d0->edx = (uint32_t)(xcr0 >> 32);
	for (unsigned i = 0; i < n; i++) {
		struct kvm_cpuid_entry2 *e = &out[i];

		if (e->function != 0xd || e->index < 2 || e->index > 63)
			continue;
		/* Sub-leaves 2-62 of user components (ECX bit 0 clear). */
		if (!(e->ecx & 1)) {
			if (!(xcr0 & (1ull << e->index))) {
				e->eax = e->ebx = e->ecx = e->edx = 0;
				continue;
			}
			/* EAX size, EBX offset: both bounded by
			 * the 32-bit size fields they add up to. */
			if ((uint64_t)e->ebx + e->eax > max_size &&
			    (uint64_t)e->ebx + e->eax <= UINT32_MAX)
				max_size = e->ebx + e->eax;
		}
	}
	d0->ebx = XSAVE_LEGACY_HDR;
	d0->ecx = max_size;
}

/* AMD's CmpLegacy (0x80000001 ECX bit 1, APM vol. 3 E.4.2): with HTT, the
 * logical processors of leaf 1 are cores.  Only meaningful with more than
 * one vCPU. */
static void fix_cmp_legacy(struct kvm_cpuid_entry2 *out, unsigned n,
			   unsigned ncpus)
{
	struct kvm_cpuid_entry2 *l0 = hv_cpuid_find(out, n, 0, 0);
	struct kvm_cpuid_entry2 *e = hv_cpuid_find(out, n, 0x80000001, 0);

	if (!e)
		return;
	if (ncpus <= 1)
		e->ecx &= ~CPUID_80000001_ECX_CMP_LEGACY;
	else if (l0 && l0->ebx == 0x68747541)	/* "Auth"enticAMD */
		e->ecx |= CPUID_80000001_ECX_CMP_LEGACY;
}

static void apply_masks(struct kvm_cpuid_entry2 *out, unsigned n,
			const struct hv_cpu_model *model)
{
	for (unsigned m = 0; model && m < model->nhide; m++) {
		const struct hv_cpuid_mask *h = &model->hide[m];

		for (unsigned i = 0; i < n; i++) {
			struct kvm_cpuid_entry2 *e = &out[i];
			bool indexed =
				e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX;

			if (e->function != h->leaf)
				continue;
			if (indexed ? e->index != h->subleaf : h->subleaf != 0)
				continue;
			*reg_of(e, h->reg) &= ~h->bits;
		}
	}
}

int hv_cpuid_build(const struct kvm_cpuid_entry2 *in, unsigned n,
		   const struct hv_cpu_model *model, unsigned apic_id,
		   unsigned ncpus, bool tsc_deadline,
		   struct kvm_cpuid_entry2 *out, unsigned max)
{
	uint32_t max_basic = 0;
	bool had_1f = false;
	unsigned k = 0;

	if (ncpus == 0)
		ncpus = 1;
	for (unsigned i = 0; i < n; i++) {
		if (in[i].function == 0)
			max_basic = in[i].eax;
		if (in[i].function == 0x1f)
			had_1f = true;
		/* The topology leaves are rebuilt below. */
		if (in[i].function == 0xb || in[i].function == 0x1f)
			continue;
		if (k >= max)
			return -ENOSPC;
		out[k++] = in[i];
	}
	if (max_basic >= 0xb &&
	    add_topology_leaf(out, &k, max, 0xb, apic_id, ncpus) < 0)
		return -ENOSPC;
	if (had_1f && max_basic >= 0x1f &&
	    add_topology_leaf(out, &k, max, 0x1f, apic_id, ncpus) < 0)
		return -ENOSPC;

	set_topology(out, k, apic_id, ncpus);
	struct kvm_cpuid_entry2 *l1 = hv_cpuid_find(out, k, 1, 0);
	if (l1) {
		l1->ecx |= CPUID_1_ECX_HYPERVISOR;
		if (tsc_deadline)
			l1->ecx |= CPUID_1_ECX_TSC_DEADLINE;
	}
	apply_masks(out, k, model);
	fix_xsave_leaf(out, k);
	fix_cmp_legacy(out, k, ncpus);
	return (int)k;
}
