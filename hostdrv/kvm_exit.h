/* SPDX-License-Identifier: MIT */
/*
 * hostdrv/kvm_exit.h - decoding a vCPU's kvm_run page into a struct hv_exit.
 * Pure: no ioctl, no global state, so it is unit-tested with synthetic
 * kvm_run contents (tests/unit/test_exit_decode.c).
 */
#ifndef VIVARIUM_KVM_EXIT_H
#define VIVARIUM_KVM_EXIT_H

#include <linux/kvm.h>
#include <stddef.h>

#include "hv.h"

/*
 * hv_exit_decode - describe the exit recorded in @run, a mapping of
 * @run_size bytes (KVM_GET_VCPU_MMAP_SIZE).  io.data and mmio.data point
 * into @run.  Returns 0, or -EFAULT when the page is inconsistent (an I/O
 * exit whose data would lie outside the mapping, a size that is not
 * 1/2/4, a zero count); then *exit is HV_EXIT_UNKNOWN with the raw reason
 * and no pointer into @run.
 */
int hv_exit_decode(struct kvm_run *run, size_t run_size, struct hv_exit *exit);

#endif
