/* SPDX-License-Identifier: MIT */
/*
 * The vCPUs: exits turned into bus accesses (vcpu_dispatch_io/mmio), and
 * the loop of each vCPU thread of the machine: create the vCPU, set up the
 * boot vCPU, inject the PIC's interrupts, run, handle the exit.
 */
#include "vcpu.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "devices/ioapic.h"
#include "devices/pic.h"
#include "hv.h"
#include "log.h"
#include "machine_internal.h"
#include "sandbox/sandbox.h"

static uint64_t load_le(const uint8_t *p, unsigned size)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void store_le(uint8_t *p, unsigned size, uint64_t v)
{
	for (unsigned i = 0; i < size; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void vcpu_dispatch_io(struct bus *pio, struct hv_exit *exit)
{
	unsigned size = exit->io.size;
	uint8_t *p = exit->io.data;

	if (size != 1 && size != 2 && size != 4)
		return;
	for (uint32_t i = 0; i < exit->io.count; i++, p += size) {
		if (exit->io.is_write)
			bus_write(pio, exit->io.port, load_le(p, size), size, NULL);
		else
			store_le(p, size, bus_read(pio, exit->io.port, size, NULL));
	}
}

void vcpu_dispatch_mmio(struct bus *mmio, struct hv_exit *exit)
{
	unsigned size = exit->mmio.size;

	if (size > 8)
		return;
	if (exit->mmio.is_write)
		bus_write(mmio, exit->mmio.gpa, load_le(exit->mmio.data, size),
			  size, NULL);
	else
		store_le(exit->mmio.data, size,
			 bus_read(mmio, exit->mmio.gpa, size, NULL));
}

/* ---- the vCPU thread ---------------------------------------------------- */

/* 32-bit results zero-extend into the 64-bit register, 8- and 16-bit ones
 * merge, as the IN instruction does. */
static uint64_t merge_in(uint64_t rax, uint32_t v, unsigned size)
{
	if (size == 4)
		return v;
	if (size == 2)
		return (rax & ~0xffffull) | (v & 0xffff);
	return (rax & ~0xffull) | (v & 0xff);
}

/*
 * An access to the register port (vcpu.h).  KVM finishes an IN on the
 * next entry by loading RAX from the run page; the other registers come
 * from our KVM_SET_REGS (KVM's emulator reloads its register cache after
 * one, for this very backdoor).  RAX is set to the same result both ways.
 * Device lock held.
 */
static void dispatch_regs_port(struct machine *m, struct hv_vcpu *vcpu,
			       struct hv_exit *e)
{
	const struct vcpu_regs_port *rp = &m->regs_port;
	unsigned size = e->io.size;
	struct hv_regs hr;
	struct io_regs r, was;
	uint32_t v = 0;
	int err;

	if (e->io.count != 1 || (size != 1 && size != 2 && size != 4)) {
		vlog_ratelimited(LOG_INFO, "port 0x%x: %u-byte string I/O, count %u, ignored",
				 e->io.port, size, e->io.count);
		if (!e->io.is_write && size <= 4)
			memset(e->io.data, 0xff, (size_t)size * e->io.count);
		return;
	}
	err = hv_vcpu_get_regs(vcpu, &hr);
	if (err < 0) {
		vlog_ratelimited(LOG_WARN, "port 0x%x: cannot read vCPU %u's registers: %s",
				 e->io.port, hv_vcpu_id(vcpu), strerror(-err));
		if (!e->io.is_write)
			store_le(e->io.data, size, ~0ull);
		return;
	}
	r = (struct io_regs){ hr.rax, hr.rbx, hr.rcx, hr.rdx, hr.rsi, hr.rdi };
	was = r;
	if (e->io.is_write)
		v = (uint32_t)load_le(e->io.data, size);
	v = rp->access(rp->opaque, size, e->io.is_write, v, &r);
	if (!e->io.is_write) {
		store_le(e->io.data, size, v);
		r.rax = merge_in(hr.rax, v, size);
		was.rax = r.rax;	/* KVM writes it from the run page */
	}
	if (!memcmp(&r, &was, sizeof(r)))
		return;
	hr.rax = r.rax;
	hr.rbx = r.rbx;
	hr.rcx = r.rcx;
	hr.rdx = r.rdx;
	hr.rsi = r.rsi;
	hr.rdi = r.rdi;
	err = hv_vcpu_set_regs(vcpu, &hr);
	if (err < 0)
		vlog_ratelimited(LOG_WARN, "port 0x%x: cannot set vCPU %u's registers: %s",
				 e->io.port, hv_vcpu_id(vcpu), strerror(-err));
}

static int setup_bsp(struct machine *m, struct hv_vcpu *vcpu)
{
	struct hv_regs regs;
	struct hv_sregs sregs;
	int r;

	if (m->cfg.hooks)
		return m->cfg.hooks->setup_bsp
			       ? m->cfg.hooks->setup_bsp(m, vcpu, m->cfg.hooks->opaque)
			       : 0;
	if (m->firmware == MACHINE_FW_BIOS || m->firmware == MACHINE_FW_UEFI)
		return 0;	/* the reset state: F000:FFF0, the flash's vector */
	memset(&regs, 0, sizeof(regs));
	r = hv_vcpu_get_sregs(vcpu, &sregs);
	if (r < 0)
		return r;
	r = linux_setup_vcpu(&m->mem, &m->entry, &regs, &sregs);
	if (r < 0)
		return r;
	r = hv_vcpu_set_sregs(vcpu, &sregs);
	return r < 0 ? r : hv_vcpu_set_regs(vcpu, &regs);
}

/* ExtINT from the PIC, injected by the boot vCPU before entering. */
static void inject_pic(struct machine *m, struct hv_vcpu *vcpu)
{
	bool pending, inject = false;
	uint8_t vector = 0;

	if (!atomic_load(&m->pic_intr)) {
		hv_vcpu_request_interrupt_window(vcpu, false);
		return;
	}
	pthread_mutex_lock(&m->lock);
	pending = pic_intr(m->dev.pic);
	if (pending && hv_vcpu_ready_for_interrupt(vcpu)) {
		vector = pic_ack(m->dev.pic);
		inject = true;
	}
	pthread_mutex_unlock(&m->lock);
	if (inject) {
		int r = hv_vcpu_interrupt(vcpu, vector);

		if (r < 0)
			vlog_ratelimited(LOG_WARN, "PIC: vector 0x%x lost: %s",
					 vector, strerror(-r));
		pending = false;
	}
	hv_vcpu_request_interrupt_window(vcpu, pending);
}

static void report_internal_error(struct machine *m, struct hv_vcpu *vcpu,
				  const struct hv_exit *e)
{
	char bytes[3 * 15 + 1] = "";
	struct hv_regs regs = { 0 };

	hv_vcpu_get_regs(vcpu, &regs);
	for (unsigned i = 0; i < e->internal.insn_len && i < 15; i++)
		snprintf(bytes + 3 * i, 4, "%s%02x", i ? " " : "",
			 e->internal.insn[i]);
	machine_fail(m, -EIO,
		     "KVM internal error %u on vCPU %u at RIP 0x%" PRIx64
		     "%s%s%s (the host's KVM could not run this guest code)",
		     e->internal.suberror, hv_vcpu_id(vcpu), regs.rip,
		     bytes[0] ? " (instruction bytes " : "", bytes,
		     bytes[0] ? ")" : "");
}

/* Returns false when the thread should stop. */
static bool handle_exit(struct machine *m, struct hv_vcpu *vcpu,
			struct hv_exit *e)
{
	switch (e->kind) {
	case HV_EXIT_IO:
		pthread_mutex_lock(&m->lock);
		if (e->io.port == m->regs_port.port && m->regs_port.access)
			dispatch_regs_port(m, vcpu, e);
		else
			vcpu_dispatch_io(m->pio, e);
		pthread_mutex_unlock(&m->lock);
		return true;
	case HV_EXIT_MMIO:
		pthread_mutex_lock(&m->lock);
		vcpu_dispatch_mmio(m->mmio, e);
		pthread_mutex_unlock(&m->lock);
		return true;
	case HV_EXIT_EOI:
		pthread_mutex_lock(&m->lock);
		ioapic_eoi(m->dev.ioapic, e->eoi.vector);
		pthread_mutex_unlock(&m->lock);
		return true;
	case HV_EXIT_INTR:
	case HV_EXIT_IRQ_WINDOW:
	case HV_EXIT_NONE:
	case HV_EXIT_HLT:
	case HV_EXIT_DEBUG:
		return true;
	case HV_EXIT_SHUTDOWN:
		vlog_ratelimited(LOG_WARN, "vCPU %u: triple fault (the guest crashed); resetting the machine",
				 hv_vcpu_id(vcpu));
		machine_reset(m);
		return false;
	case HV_EXIT_SYSTEM_EVENT:
		if (e->system_event.type == HV_EVENT_RESET) {
			machine_reset(m);
		} else if (e->system_event.type == HV_EVENT_SHUTDOWN) {
			machine_stop(m, MACHINE_EXIT_POWEROFF);
		} else {
			machine_fail(m, -EIO, "guest crashed (system event %u)",
				     e->system_event.raw_type);
		}
		return false;
	case HV_EXIT_INTERNAL_ERROR:
		report_internal_error(m, vcpu, e);
		return false;
	case HV_EXIT_FAIL_ENTRY:
		machine_fail(m, -EIO, "VM entry failed on vCPU %u (hardware reason 0x%" PRIx64 ")",
			     hv_vcpu_id(vcpu), e->fail_entry.reason);
		return false;
	case HV_EXIT_UNKNOWN:
	default:
		machine_fail(m, -EIO, "unexpected KVM exit %u on vCPU %u",
			     e->unknown.reason, hv_vcpu_id(vcpu));
		return false;
	}
}

void *vcpu_main(void *arg)
{
	struct vcpu_thread *t = arg;
	struct machine *m = t->m;
	const struct hv_cpu_model *model =
		m->cfg.cpu_model ? m->cfg.cpu_model : &hv_cpu_model_host;
	struct hv_vcpu *vcpu = NULL;
	struct hv_exit e;
	char name[16];
	int r;

	r = hv_vcpu_create(m->vm, t->id, model, m->cfg.ncpus, &vcpu);
	if (r < 0)
		machine_fail(m, r, "cannot create vCPU %u: %s", t->id, strerror(-r));
	/* After the creation: the vCPU's filter has no KVM_CREATE_VCPU. */
	snprintf(name, sizeof(name), "vcpu%u", t->id);
	sandbox_thread_enter(SANDBOX_THREAD_VCPU, name);
	pthread_mutex_lock(&m->ctl);
	t->vcpu = vcpu;
	/* Every local APIC must exist before the boot vCPU sends INIT/SIPI. */
	m->arrived++;
	pthread_cond_broadcast(&m->ctl_cond);
	while (m->arrived < m->expected)
		pthread_cond_wait(&m->ctl_cond, &m->ctl);
	pthread_mutex_unlock(&m->ctl);
	if (!vcpu)
		return NULL;
	if (t->state) {
		/* A restore: the saved registers, not a boot's. */
		r = hv_vcpu_restore(vcpu, t->state, t->state_len);
		free(t->state);
		t->state = NULL;
		if (r < 0)
			machine_fail(m, r, "cannot restore vCPU %u: %s", t->id,
				     strerror(-r));
	} else if (t->id == 0) {
		r = setup_bsp(m, vcpu);
		if (r < 0)
			machine_fail(m, r, "cannot set up the boot vCPU: %s",
				     strerror(-r));
	}
	while (vcpu_may_run(m, t)) {
		if (t->id == 0)
			inject_pic(m, vcpu);
		r = hv_vcpu_run(vcpu, &e);
		if (r < 0) {
			machine_fail(m, r, "vCPU %u: KVM_RUN failed: %s", t->id,
				     strerror(-r));
			break;
		}
		if (!handle_exit(m, vcpu, &e))
			break;
	}
	pthread_mutex_lock(&m->ctl);
	t->vcpu = NULL;
	pthread_cond_broadcast(&m->ctl_cond);
	pthread_mutex_unlock(&m->ctl);
	hv_vcpu_destroy(vcpu);
	return NULL;
}
