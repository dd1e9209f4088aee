/* SPDX-License-Identifier: MIT */
/*
 * hostdrv/ioctls.c - every KVM ioctl hostdrv issues, by the descriptor it
 * goes to, for the sandbox's allow-lists (hv.h: hv_ioctl_list).  A new
 * ioctl in hostdrv goes on one of these lists too, or a sandboxed VM
 * process dies on its first use; tests/unit/check_hv_ioctls.sh compares
 * the lists with the KVM_* requests the sources name.
 */
#include <linux/kvm.h>

#include "hv.h"

static const unsigned long system_ioctls[] = {
	KVM_GET_API_VERSION, KVM_CHECK_EXTENSION, KVM_GET_VCPU_MMAP_SIZE,
	KVM_GET_SUPPORTED_CPUID, KVM_GET_MSR_INDEX_LIST, KVM_CREATE_VM,
};

static const unsigned long vm_setup_ioctls[] = {
	KVM_CHECK_EXTENSION, KVM_SET_IDENTITY_MAP_ADDR, KVM_SET_TSS_ADDR,
	KVM_ENABLE_CAP, KVM_CREATE_VCPU, KVM_GET_CLOCK, KVM_SET_CLOCK,
};

static const unsigned long vm_device_ioctls[] = {
	KVM_SIGNAL_MSI, KVM_SET_GSI_ROUTING, KVM_IOEVENTFD, KVM_IRQFD,
	KVM_SET_USER_MEMORY_REGION, KVM_GET_DIRTY_LOG,
};

static const unsigned long vcpu_ioctls[] = {
	KVM_RUN, KVM_INTERRUPT, KVM_NMI, KVM_SET_CPUID2,
	KVM_GET_REGS, KVM_SET_REGS, KVM_GET_SREGS, KVM_SET_SREGS,
	KVM_GET_MSRS, KVM_SET_MSRS, KVM_GET_MP_STATE, KVM_SET_MP_STATE,
	KVM_GET_LAPIC, KVM_SET_LAPIC, KVM_GET_XSAVE, KVM_GET_XSAVE2,
	KVM_SET_XSAVE, KVM_SET_FPU, KVM_GET_XCRS, KVM_SET_XCRS,
	KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS,
	KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS,
	/* On /dev/kvm, but from the vCPU's thread: its first save reads the
	 * host's MSR list (hv_sys_msr_index). */
	KVM_GET_MSR_INDEX_LIST,
};

#define LIST(a) do { *list = (a); return sizeof(a) / sizeof((a)[0]); } while (0)

size_t hv_ioctl_list(enum hv_ioctl_scope scope, const unsigned long **list)
{
	switch (scope) {
	case HV_IOCTLS_SYSTEM: LIST(system_ioctls);
	case HV_IOCTLS_VM_SETUP: LIST(vm_setup_ioctls);
	case HV_IOCTLS_VM_DEVICE: LIST(vm_device_ioctls);
	case HV_IOCTLS_VCPU: LIST(vcpu_ioctls);
	}
	*list = NULL;
	return 0;
}
