/* SPDX-License-Identifier: MIT */
/*
 * hostdrv/vcpu.c - vCPU creation, KVM_RUN, kicks and interrupt injection.
 *
 * Kicks: hv_vcpu_kick() sets kvm_run->immediate_exit (KVM_CAP_IMMEDIATE_EXIT)
 * and sends SIGUSR1 to the vCPU's thread.  A vCPU inside KVM_RUN leaves it
 * with EINTR because of the signal; one about to enter sees immediate_exit
 * and returns EINTR at once, so no kick is lost between the two.  The
 * SIGUSR1 handler does nothing and is installed without SA_RESTART.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cpuid_internal.h"
#include "kvm_exit.h"
#include "kvm_internal.h"

#define HV_KICK_SIGNAL SIGUSR1

static void kick_handler(int sig)
{
	(void)sig;
}

static pthread_once_t kick_once = PTHREAD_ONCE_INIT;

static void install_kick_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;	/* no SA_RESTART: KVM_RUN must see EINTR */
	sigaction(HV_KICK_SIGNAL, &sa, NULL);
}

static int set_cpuid(struct hv_vcpu *v, const struct hv_cpu_model *model,
		     unsigned ncpus)
{
	const struct kvm_cpuid2 *sup;
	struct kvm_cpuid2 *c;
	unsigned max;
	int r;

	r = hv_sys_supported_cpuid(v->vm->sys, &sup);
	if (r < 0)
		return r;
	max = sup->nent + HV_CPUID_EXTRA;
	c = calloc(1, sizeof(*c) + max * sizeof(struct kvm_cpuid_entry2));
	if (!c)
		return -ENOMEM;
	r = hv_cpuid_build(sup->entries, sup->nent, model, v->id, ncpus,
			   v->vm->sys->tsc_deadline, c->entries, max);
	if (r >= 0) {
		c->nent = (uint32_t)r;
		r = hv_ioctl(v->fd, KVM_SET_CPUID2, c);
	}
	free(c);
	return r;
}

/*
 * KVM routes IPIs through a per-VM APIC ID map that it recomputes while a
 * vCPU is being created, before the vCPU is online: a vCPU created last
 * can be missing from the map, and INIT/SIPI sent to it are silently
 * dropped (seen here with 4 vCPUs created on 4 threads: one AP in ~3 never
 * started under load).  KVM_SET_LAPIC marks the map dirty and recomputes
 * it with this vCPU online; QEMU does the same at every vCPU reset.
 */
static int refresh_apic_map(struct hv_vcpu *v)
{
	struct kvm_lapic_state l;
	int r = hv_ioctl(v->fd, KVM_GET_LAPIC, &l);

	return r < 0 ? r : hv_ioctl(v->fd, KVM_SET_LAPIC, &l);
}

int hv_vcpu_create(struct hv_vm *vm, unsigned id,
		   const struct hv_cpu_model *model, unsigned ncpus,
		   struct hv_vcpu **out)
{
	struct hv_vcpu *v;
	sigset_t kick;
	void *run;
	int r;

	if (!model)
		model = &hv_cpu_model_host;
	if (ncpus == 0 || id >= ncpus)
		return -EINVAL;
	pthread_once(&kick_once, install_kick_handler);
	/* The running thread must be able to receive kicks. */
	sigemptyset(&kick);
	sigaddset(&kick, HV_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);

	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->vm = vm;
	v->id = id;
	v->thread = pthread_self();
	v->run_size = vm->sys->run_size;
	v->fd = hv_ioctl_val(vm->fd, KVM_CREATE_VCPU, id);
	if (v->fd < 0) {
		r = v->fd;
		free(v);
		return r;
	}
	run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		   v->fd, 0);
	if (run == MAP_FAILED) {
		r = -errno;
		close(v->fd);
		free(v);
		return r;
	}
	v->run = run;
	r = set_cpuid(v, model, ncpus);
	if (r == 0)
		r = refresh_apic_map(v);
	if (r < 0) {
		hv_vcpu_destroy(v);
		return r;
	}
	*out = v;
	return 0;
}

void hv_vcpu_destroy(struct hv_vcpu *v)
{
	if (!v)
		return;
	munmap(v->run, v->run_size);
	close(v->fd);
	free(v);
}

unsigned hv_vcpu_id(const struct hv_vcpu *v)
{
	return v->id;
}

int hv_vcpu_complete_pending(struct hv_vcpu *v)
{
	if (!v->pending_io)
		return 0;
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	v->pending_io = false;
	if (ioctl(v->fd, KVM_RUN, 0) < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -errno;
	/* Finishing it produced another exit (long string I/O): that one
	 * must reach the devices first. */
	v->pending_io = true;
	return -EBUSY;
}

int hv_vcpu_run(struct hv_vcpu *v, struct hv_exit *exit)
{
	int r;

	v->pending_io = false;
	if (ioctl(v->fd, KVM_RUN, 0) < 0) {
		int err = errno;

		memset(exit, 0, sizeof(*exit));
		if (err != EINTR && err != EAGAIN)
			return -err;
		/* A kick (or another signal) ended this run; a kick landing
		 * after this line stays pending. */
		__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
		exit->kind = HV_EXIT_INTR;
		return 0;
	}
	r = hv_exit_decode(v->run, v->run_size, exit);
	v->pending_io = r == 0 && (exit->kind == HV_EXIT_IO ||
				   exit->kind == HV_EXIT_MMIO);
	return r;
}

void hv_vcpu_kick(struct hv_vcpu *v)
{
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_kill(v->thread, HV_KICK_SIGNAL);
}

bool hv_vcpu_ready_for_interrupt(const struct hv_vcpu *v)
{
	return v->run->ready_for_interrupt_injection != 0;
}

void hv_vcpu_request_interrupt_window(struct hv_vcpu *v, bool on)
{
	v->run->request_interrupt_window = on ? 1 : 0;
}

int hv_vcpu_interrupt(struct hv_vcpu *v, uint8_t vector)
{
	struct kvm_interrupt irq = { .irq = vector };

	return hv_ioctl(v->fd, KVM_INTERRUPT, &irq);
}

int hv_vcpu_nmi(struct hv_vcpu *v)
{
	return hv_ioctl_val(v->fd, KVM_NMI, 0);
}
