/* SPDX-License-Identifier: MIT */
/*
 * hostdrv/kvm_internal.h - the private side of hv.h: the structures behind
 * hv_system / hv_vm / hv_vcpu and the helpers hostdrv's files share.  Only
 * hostdrv's sources and its own unit tests include this (it pulls in
 * <linux/kvm.h>).
 */
#ifndef VIVARIUM_KVM_INTERNAL_H
#define VIVARIUM_KVM_INTERNAL_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "hv.h"

struct hv_system {
	int fd;				/* /dev/kvm */
	size_t run_size;		/* KVM_GET_VCPU_MMAP_SIZE */
	bool tsc_deadline;		/* KVM_CAP_TSC_DEADLINE_TIMER */

	pthread_mutex_t lock;		/* guards the lazily filled caches */
	struct kvm_cpuid2 *supported;	/* KVM_GET_SUPPORTED_CPUID */
	uint32_t *msr_index;		/* KVM_GET_MSR_INDEX_LIST */
	uint32_t nmsr_index;
};

struct hv_vm {
	struct hv_system *sys;
	int fd;
	int xsave_size;			/* KVM_CAP_XSAVE2 on the VM, bytes;
					 * at least sizeof(struct kvm_xsave) */
	unsigned features;		/* HV_VM_* */
	unsigned gsi_count;		/* KVM_CAP_IRQ_ROUTING */
};

struct hv_vcpu {
	struct hv_vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;		/* shared page(s), run_size bytes */
	size_t run_size;
	pthread_t thread;		/* the thread that created and runs it */
	bool pending_io;		/* last exit was I/O or MMIO: KVM
					 * finishes it on the next KVM_RUN */
};

/* Let KVM finish an I/O or MMIO exit (api.rst: KVM_RUN with
 * immediate_exit) so the register state is whole; vCPU thread only.
 * Leaves immediate_exit set: the next hv_vcpu_run() may return
 * HV_EXIT_INTR, but no kick is lost.  -EBUSY if finishing it raised a
 * new exit (rare: string I/O past one page), which the caller must
 * handle (run the vCPU) before trying again. */
int hv_vcpu_complete_pending(struct hv_vcpu *v);

/* The KVM_GET_API_VERSION Vivarium speaks (hv_open(), doctor.c). */
#define HV_KVM_API_VERSION 12

/* One capability Vivarium requires, by name (doctor.c prints them). */
struct hv_cap {
	const char *name;
	int cap;
};
extern const struct hv_cap hv_caps[];
extern const unsigned hv_ncaps;
/* The name of the first of hv_caps that /dev/kvm @fd lacks, or NULL. */
const char *hv_missing_cap(int fd);

/* The backend a probed host offers (doctor.c; see hv_host_probe()), from
 * r->kvm_accessible, r->kvm_module and r->cpu_vmx / cpu_svm. */
enum hv_backend hv_backend_decide(const struct hv_host_report *r);

/* ioctl() retried on EINTR; returns its result or -errno. */
int hv_ioctl(int fd, unsigned long req, void *arg);
/* The same with an integer argument. */
int hv_ioctl_val(int fd, unsigned long req, unsigned long arg);

/* Cached KVM_GET_SUPPORTED_CPUID of @sys (never freed before hv_close). */
int hv_sys_supported_cpuid(struct hv_system *sys,
			   const struct kvm_cpuid2 **out);
/* Cached KVM_GET_MSR_INDEX_LIST of @sys. */
int hv_sys_msr_index(struct hv_system *sys, const uint32_t **idx,
		     uint32_t *n);

#endif
