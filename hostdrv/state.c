/* SPDX-License-Identifier: MIT */
/*
 * hostdrv/state.c - vCPU register state: hv_* <-> kvm_* conversion, MSRs,
 * MP state, the LAPIC page, and whole-vCPU save/restore.
 *
 * Saved vCPU blob, little-endian, version 1:
 *
 *   header   { u32 magic "VVCP"; u16 version; u16 nsections;
 *              u32 total_len (header included); u32 vcpu_id }
 *   sections { u32 type; u32 len; u8 data[len]; zero padding to 8 bytes }
 *
 * Section payloads are the KVM structures themselves (kvm_regs, kvm_sregs,
 * kvm_fpu or kvm_xsave, kvm_xcrs, kvm_lapic_state, kvm_mp_state,
 * kvm_vcpu_events, kvm_debugregs) and, for MSRs, an array of
 * { u32 index; u32 reserved (0); u64 value }.  A blob is meant to be
 * restored on the same host kernel; hv_vcpu_restore() checks every length
 * before touching the vCPU.
 *
 * Both first let KVM finish the vCPU's last I/O or MMIO exit, so a blob
 * never holds half an instruction; in the rare case that this raises a new
 * exit they return -EBUSY and the caller runs the vCPU once more.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvm_internal.h"

/* ---- registers ---------------------------------------------------------- */

int hv_vcpu_get_regs(struct hv_vcpu *v, struct hv_regs *o)
{
	struct kvm_regs k;
	int r = hv_ioctl(v->fd, KVM_GET_REGS, &k);

	if (r < 0)
		return r;
	*o = (struct hv_regs){
		k.rax, k.rbx, k.rcx, k.rdx, k.rsi, k.rdi, k.rsp, k.rbp,
		k.r8, k.r9, k.r10, k.r11, k.r12, k.r13, k.r14, k.r15,
		k.rip, k.rflags,
	};
	return 0;
}

int hv_vcpu_set_regs(struct hv_vcpu *v, const struct hv_regs *i)
{
	struct kvm_regs k = {
		.rax = i->rax, .rbx = i->rbx, .rcx = i->rcx, .rdx = i->rdx,
		.rsi = i->rsi, .rdi = i->rdi, .rsp = i->rsp, .rbp = i->rbp,
		.r8 = i->r8, .r9 = i->r9, .r10 = i->r10, .r11 = i->r11,
		.r12 = i->r12, .r13 = i->r13, .r14 = i->r14, .r15 = i->r15,
		.rip = i->rip, .rflags = i->rflags,
	};

	return hv_ioctl(v->fd, KVM_SET_REGS, &k);
}

static void seg_from_kvm(struct hv_segment *h, const struct kvm_segment *k)
{
	*h = (struct hv_segment){
		.base = k->base, .limit = k->limit, .selector = k->selector,
		.type = k->type, .present = k->present, .dpl = k->dpl,
		.db = k->db, .s = k->s, .l = k->l, .g = k->g, .avl = k->avl,
		.unusable = k->unusable,
	};
}

static void seg_to_kvm(struct kvm_segment *k, const struct hv_segment *h)
{
	*k = (struct kvm_segment){
		.base = h->base, .limit = h->limit, .selector = h->selector,
		.type = h->type, .present = h->present, .dpl = h->dpl,
		.db = h->db, .s = h->s, .l = h->l, .g = h->g, .avl = h->avl,
		.unusable = h->unusable,
	};
}

int hv_vcpu_get_sregs(struct hv_vcpu *v, struct hv_sregs *o)
{
	struct kvm_sregs k;
	int r = hv_ioctl(v->fd, KVM_GET_SREGS, &k);

	if (r < 0)
		return r;
	seg_from_kvm(&o->cs, &k.cs);
	seg_from_kvm(&o->ds, &k.ds);
	seg_from_kvm(&o->es, &k.es);
	seg_from_kvm(&o->fs, &k.fs);
	seg_from_kvm(&o->gs, &k.gs);
	seg_from_kvm(&o->ss, &k.ss);
	seg_from_kvm(&o->tr, &k.tr);
	seg_from_kvm(&o->ldt, &k.ldt);
	o->gdt = (struct hv_dtable){ k.gdt.base, k.gdt.limit };
	o->idt = (struct hv_dtable){ k.idt.base, k.idt.limit };
	o->cr0 = k.cr0;
	o->cr2 = k.cr2;
	o->cr3 = k.cr3;
	o->cr4 = k.cr4;
	o->cr8 = k.cr8;
	o->efer = k.efer;
	o->apic_base = k.apic_base;
	return 0;
}

int hv_vcpu_set_sregs(struct hv_vcpu *v, const struct hv_sregs *i)
{
	struct kvm_sregs k;
	/* Read first so a pending interrupt in interrupt_bitmap survives. */
	int r = hv_ioctl(v->fd, KVM_GET_SREGS, &k);

	if (r < 0)
		return r;
	seg_to_kvm(&k.cs, &i->cs);
	seg_to_kvm(&k.ds, &i->ds);
	seg_to_kvm(&k.es, &i->es);
	seg_to_kvm(&k.fs, &i->fs);
	seg_to_kvm(&k.gs, &i->gs);
	seg_to_kvm(&k.ss, &i->ss);
	seg_to_kvm(&k.tr, &i->tr);
	seg_to_kvm(&k.ldt, &i->ldt);
	k.gdt.base = i->gdt.base;
	k.gdt.limit = i->gdt.limit;
	k.idt.base = i->idt.base;
	k.idt.limit = i->idt.limit;
	k.cr0 = i->cr0;
	k.cr2 = i->cr2;
	k.cr3 = i->cr3;
	k.cr4 = i->cr4;
	k.cr8 = i->cr8;
	k.efer = i->efer;
	k.apic_base = i->apic_base;
	return hv_ioctl(v->fd, KVM_SET_SREGS, &k);
}

/* ---- MSRs --------------------------------------------------------------- */

struct msrs_buf {
	struct kvm_msrs hdr;
	struct kvm_msr_entry e[1];
};

int hv_vcpu_get_msr(struct hv_vcpu *v, uint32_t index, uint64_t *value)
{
	struct msrs_buf b = { .hdr.nmsrs = 1, .e[0].index = index };
	int r = hv_ioctl(v->fd, KVM_GET_MSRS, &b);

	if (r < 0)
		return r;
	if (r != 1)
		return -EINVAL;	/* not an MSR this vCPU has */
	*value = b.e[0].data;
	return 0;
}

int hv_vcpu_set_msr(struct hv_vcpu *v, uint32_t index, uint64_t value)
{
	struct msrs_buf b = {
		.hdr.nmsrs = 1, .e[0].index = index, .e[0].data = value,
	};
	int r = hv_ioctl(v->fd, KVM_SET_MSRS, &b);

	if (r < 0)
		return r;
	return r == 1 ? 0 : -EINVAL;
}

/* ---- MP state, LAPIC ---------------------------------------------------- */

int hv_vcpu_get_mp_state(struct hv_vcpu *v, enum hv_mp_state *state)
{
	struct kvm_mp_state mp;
	int r = hv_ioctl(v->fd, KVM_GET_MP_STATE, &mp);

	if (r < 0)
		return r;
	switch (mp.mp_state) {
	case KVM_MP_STATE_RUNNABLE:
		*state = HV_MP_RUNNABLE;
		break;
	case KVM_MP_STATE_UNINITIALIZED:
		*state = HV_MP_UNINITIALIZED;
		break;
	case KVM_MP_STATE_INIT_RECEIVED:
		*state = HV_MP_INIT_RECEIVED;
		break;
	case KVM_MP_STATE_HALTED:
		*state = HV_MP_HALTED;
		break;
	case KVM_MP_STATE_SIPI_RECEIVED:
		*state = HV_MP_SIPI_RECEIVED;
		break;
	default:
		*state = HV_MP_OTHER;
	}
	return 0;
}

int hv_vcpu_set_mp_state(struct hv_vcpu *v, enum hv_mp_state state)
{
	static const uint32_t to_kvm[] = {
		[HV_MP_RUNNABLE] = KVM_MP_STATE_RUNNABLE,
		[HV_MP_UNINITIALIZED] = KVM_MP_STATE_UNINITIALIZED,
		[HV_MP_INIT_RECEIVED] = KVM_MP_STATE_INIT_RECEIVED,
		[HV_MP_HALTED] = KVM_MP_STATE_HALTED,
		[HV_MP_SIPI_RECEIVED] = KVM_MP_STATE_SIPI_RECEIVED,
	};
	struct kvm_mp_state mp;

	if ((unsigned)state >= sizeof(to_kvm) / sizeof(to_kvm[0]))
		return -EINVAL;
	mp.mp_state = to_kvm[state];
	return hv_ioctl(v->fd, KVM_SET_MP_STATE, &mp);
}

int hv_vcpu_get_lapic(struct hv_vcpu *v, uint8_t regs[HV_LAPIC_SIZE])
{
	struct kvm_lapic_state l;
	int r = hv_ioctl(v->fd, KVM_GET_LAPIC, &l);

	if (r == 0)
		memcpy(regs, l.regs, HV_LAPIC_SIZE);
	return r;
}

int hv_vcpu_set_lapic(struct hv_vcpu *v, const uint8_t regs[HV_LAPIC_SIZE])
{
	struct kvm_lapic_state l;

	memcpy(l.regs, regs, HV_LAPIC_SIZE);
	return hv_ioctl(v->fd, KVM_SET_LAPIC, &l);
}

/* ---- save / restore ----------------------------------------------------- */

#define BLOB_MAGIC 0x50435656u	/* "VVCP" */
#define BLOB_VERSION 1
#define BLOB_MAX_MSRS 4096
#define MSR_IA32_TSC_DEADLINE 0x6e0

enum blob_sect {
	SECT_REGS = 1, SECT_SREGS, SECT_FPU, SECT_XSAVE, SECT_XCRS,
	SECT_LAPIC, SECT_MP_STATE, SECT_EVENTS, SECT_DEBUGREGS, SECT_MSRS,
	SECT_COUNT
};

struct blob_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t nsections;
	uint32_t total_len;
	uint32_t vcpu_id;
};

struct blob_sect_hdr {
	uint32_t type;
	uint32_t len;
};

struct blob_msr {
	uint32_t index;
	uint32_t reserved;
	uint64_t value;
};

/* Exact payload size of each fixed-size section; 0 = variable. */
static const uint32_t sect_size[SECT_COUNT] = {
	[SECT_REGS] = sizeof(struct kvm_regs),
	[SECT_SREGS] = sizeof(struct kvm_sregs),
	[SECT_FPU] = sizeof(struct kvm_fpu),
	[SECT_XCRS] = sizeof(struct kvm_xcrs),
	[SECT_LAPIC] = sizeof(struct kvm_lapic_state),
	[SECT_MP_STATE] = sizeof(struct kvm_mp_state),
	[SECT_EVENTS] = sizeof(struct kvm_vcpu_events),
	[SECT_DEBUGREGS] = sizeof(struct kvm_debugregs),
};

static size_t pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* A growing blob being written. */
struct blob_out {
	uint8_t *buf;
	size_t len, cap;
	unsigned nsect;
	int err;
};

static void *blob_add(struct blob_out *b, uint32_t type, uint32_t len)
{
	size_t need = b->len + sizeof(struct blob_sect_hdr) + pad8(len);
	struct blob_sect_hdr h = { type, len };
	uint8_t *p;

	if (b->err)
		return NULL;
	if (need > b->cap) {
		size_t cap = b->cap ? b->cap : 8192;

		while (cap < need)
			cap *= 2;
		p = realloc(b->buf, cap);
		if (!p) {
			b->err = -ENOMEM;
			return NULL;
		}
		b->buf = p;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, &h, sizeof(h));
	p = b->buf + b->len + sizeof(h);
	memset(p, 0, pad8(len));
	b->len = need;
	b->nsect++;
	return p;
}

/* KVM_GET_* of a @len-byte structure straight into a new section. */
static void save_sect(struct blob_out *b, struct hv_vcpu *v, uint32_t type,
		      unsigned long req, uint32_t len)
{
	void *p = blob_add(b, type, len);
	int r;

	if (!p)
		return;
	r = hv_ioctl(v->fd, req, p);
	if (r < 0)
		b->err = r;
}

/* The same for a fixed-size section. */
static void save_ioctl(struct blob_out *b, struct hv_vcpu *v, uint32_t type,
		       unsigned long req)
{
	save_sect(b, v, type, req, sect_size[type]);
}

/* Read every MSR in the host's index list that this vCPU has; KVM_GET_MSRS
 * stops at the first one it cannot read, which is skipped. */
static void save_msrs(struct blob_out *b, struct hv_vcpu *v)
{
	const uint32_t *idx;
	struct kvm_msrs *m, *q;
	struct blob_msr *out;
	uint32_t n, start = 0, got = 0;
	int r = hv_sys_msr_index(v->vm->sys, &idx, &n);

	if (b->err)
		return;
	if (r < 0) {
		b->err = r;
		return;
	}
	if (n > BLOB_MAX_MSRS)
		n = BLOB_MAX_MSRS;
	/* m collects what was read; q is each KVM_GET_MSRS from @start. */
	m = calloc(1, sizeof(*m) + n * sizeof(struct kvm_msr_entry));
	q = calloc(1, sizeof(*q) + n * sizeof(struct kvm_msr_entry));
	if (!m || !q) {
		b->err = -ENOMEM;
		goto out;
	}
	while (start < n) {
		uint32_t left = n - start;

		q->nmsrs = left;
		for (uint32_t i = 0; i < left; i++)
			q->entries[i].index = idx[start + i];
		r = hv_ioctl(v->fd, KVM_GET_MSRS, q);
		if (r < 0) {
			b->err = r;
			goto out;
		}
		memcpy(&m->entries[got], q->entries,
		       (size_t)r * sizeof(struct kvm_msr_entry));
		got += (uint32_t)r;
		start += (uint32_t)r + 1;	/* skip the unreadable one */
	}
	out = blob_add(b, SECT_MSRS, got * (uint32_t)sizeof(struct blob_msr));
	for (uint32_t i = 0; out && i < got; i++)
		out[i] = (struct blob_msr){ m->entries[i].index, 0,
					    m->entries[i].data };
out:
	free(q);
	free(m);
}

int hv_vcpu_save(struct hv_vcpu *v, void **blob, size_t *len)
{
	struct blob_out b = { 0 };
	struct blob_hdr h;
	int r = hv_vcpu_complete_pending(v);

	if (r < 0)
		return r;
	b.len = sizeof(h);	/* the header, written last */
	save_ioctl(&b, v, SECT_REGS, KVM_GET_REGS);
	save_ioctl(&b, v, SECT_SREGS, KVM_GET_SREGS);
	save_sect(&b, v, SECT_XSAVE,
		  v->vm->xsave_size > (int)sizeof(struct kvm_xsave) ?
		  KVM_GET_XSAVE2 : KVM_GET_XSAVE, (uint32_t)v->vm->xsave_size);
	save_ioctl(&b, v, SECT_XCRS, KVM_GET_XCRS);
	save_ioctl(&b, v, SECT_LAPIC, KVM_GET_LAPIC);
	save_ioctl(&b, v, SECT_MP_STATE, KVM_GET_MP_STATE);
	save_ioctl(&b, v, SECT_EVENTS, KVM_GET_VCPU_EVENTS);
	save_ioctl(&b, v, SECT_DEBUGREGS, KVM_GET_DEBUGREGS);
	save_msrs(&b, v);
	if (b.err) {
		free(b.buf);
		return b.err;
	}
	h = (struct blob_hdr){ BLOB_MAGIC, BLOB_VERSION, (uint16_t)b.nsect,
			       (uint32_t)b.len, v->id };
	memcpy(b.buf, &h, sizeof(h));
	*blob = b.buf;
	*len = b.len;
	return 0;
}

/* A parsed blob: where each section's payload starts, and its length. */
struct blob_view {
	const uint8_t *data[SECT_COUNT];
	uint32_t len[SECT_COUNT];
};

static int blob_parse(const void *blob, size_t len, int max_xsave,
		      struct blob_view *bv)
{
	const uint8_t *p = blob;
	struct blob_hdr h;
	size_t off = sizeof(h);

	memset(bv, 0, sizeof(*bv));
	if (!blob || len < sizeof(h))
		return -EINVAL;
	memcpy(&h, p, sizeof(h));
	if (h.magic != BLOB_MAGIC || h.version != BLOB_VERSION ||
	    h.total_len != len)
		return -EINVAL;
	for (unsigned i = 0; i < h.nsections; i++) {
		struct blob_sect_hdr s;

		if (len - off < sizeof(s))
			return -EINVAL;
		memcpy(&s, p + off, sizeof(s));
		off += sizeof(s);
		if (s.type == 0 || s.type >= SECT_COUNT || bv->data[s.type])
			return -EINVAL;
		if (pad8(s.len) > len - off)
			return -EINVAL;
		if (sect_size[s.type] && s.len != sect_size[s.type])
			return -EINVAL;
		if (s.type == SECT_XSAVE &&
		    (s.len < sizeof(struct kvm_xsave) ||
		     s.len > (uint32_t)max_xsave))
			return -EINVAL;
		if (s.type == SECT_MSRS &&
		    (s.len % sizeof(struct blob_msr) ||
		     s.len / sizeof(struct blob_msr) > BLOB_MAX_MSRS))
			return -EINVAL;
		bv->data[s.type] = p + off;
		bv->len[s.type] = s.len;
		off += pad8(s.len);
	}
	if (off != len)
		return -EINVAL;
	if (!bv->data[SECT_REGS] || !bv->data[SECT_SREGS] ||
	    !bv->data[SECT_LAPIC] || !bv->data[SECT_MP_STATE] ||
	    (!bv->data[SECT_FPU] && !bv->data[SECT_XSAVE]))
		return -EINVAL;
	if (bv->data[SECT_MSRS]) {
		const uint8_t *m = bv->data[SECT_MSRS];

		for (uint32_t i = 0; i < bv->len[SECT_MSRS]; i +=
		     sizeof(struct blob_msr)) {
			struct blob_msr e;

			memcpy(&e, m + i, sizeof(e));
			if (e.reserved)
				return -EINVAL;
		}
	}
	return 0;
}

/* KVM_SET_* from an aligned private copy of a section. */
static int restore_ioctl(struct hv_vcpu *v, const struct blob_view *bv,
			 unsigned type, unsigned long req, size_t room)
{
	void *buf;
	int r;

	if (!bv->data[type])
		return 0;
	buf = calloc(1, room > bv->len[type] ? room : bv->len[type]);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, bv->data[type], bv->len[type]);
	if (type == SECT_EVENTS) {
		struct kvm_vcpu_events *ev = buf;

		ev->flags |= KVM_VCPUEVENT_VALID_NMI_PENDING |
			     KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	}
	r = hv_ioctl(v->fd, req, buf);
	free(buf);
	return r;
}

/* Set the MSRs whose index is (@deadline ? == : !=) TSC_DEADLINE. */
static int restore_msrs(struct hv_vcpu *v, const struct blob_view *bv,
			bool deadline)
{
	uint32_t n = bv->len[SECT_MSRS] / sizeof(struct blob_msr), k = 0;
	struct kvm_msrs *m;
	int r;

	if (!n)
		return 0;
	m = calloc(1, sizeof(*m) + n * sizeof(struct kvm_msr_entry));
	if (!m)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		struct blob_msr e;

		memcpy(&e, bv->data[SECT_MSRS] + i * sizeof(e), sizeof(e));
		if ((e.index == MSR_IA32_TSC_DEADLINE) != deadline)
			continue;
		m->entries[k].index = e.index;
		m->entries[k].data = e.value;
		k++;
	}
	m->nmsrs = k;
	r = k ? hv_ioctl(v->fd, KVM_SET_MSRS, m) : 0;
	free(m);
	if (r < 0)
		return r;
	return (uint32_t)r == k ? 0 : -EIO;
}

int hv_vcpu_restore(struct hv_vcpu *v, const void *blob, size_t len)
{
	struct blob_view bv;
	int r = blob_parse(blob, len, v->vm->xsave_size, &bv);

	if (r < 0)
		return r;
	/* A half-done I/O exit would otherwise land on the new state. */
	r = hv_vcpu_complete_pending(v);
	if (r < 0)
		return r;
	/* Order after QEMU's kvm_arch_put_registers(): sregs (APIC base,
	 * control registers) before MSRs, the LAPIC before the TSC
	 * deadline MSR, events last. */
	r = restore_ioctl(v, &bv, SECT_SREGS, KVM_SET_SREGS, 0);
	if (!r)
		r = restore_ioctl(v, &bv, SECT_REGS, KVM_SET_REGS, 0);
	if (!r && bv.data[SECT_XSAVE])
		r = restore_ioctl(v, &bv, SECT_XSAVE, KVM_SET_XSAVE,
				  (size_t)v->vm->xsave_size);
	else if (!r)
		r = restore_ioctl(v, &bv, SECT_FPU, KVM_SET_FPU, 0);
	if (!r)
		r = restore_ioctl(v, &bv, SECT_XCRS, KVM_SET_XCRS, 0);
	if (!r)
		r = restore_msrs(v, &bv, false);
	if (!r)
		r = restore_ioctl(v, &bv, SECT_MP_STATE, KVM_SET_MP_STATE, 0);
	if (!r)
		r = restore_ioctl(v, &bv, SECT_LAPIC, KVM_SET_LAPIC, 0);
	if (!r)
		r = restore_msrs(v, &bv, true);
	if (!r)
		r = restore_ioctl(v, &bv, SECT_EVENTS, KVM_SET_VCPU_EVENTS, 0);
	if (!r)
		r = restore_ioctl(v, &bv, SECT_DEBUGREGS, KVM_SET_DEBUGREGS, 0);
	return r;
}
