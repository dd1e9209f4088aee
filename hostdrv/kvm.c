/* SPDX-License-Identifier: MIT */
/*
 * hostdrv/kvm.c - the KVM system and VM: opening /dev/kvm and checking what
 * it offers, creating a VM in the split irqchip model, memory slots, MSIs,
 * GSI routes, ioeventfds and irqfds.  KVM API reference: Documentation/virt/kvm/api.rst.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvm_internal.h"

/* KVM's EPT identity map (1 page) then real-mode TSS (3 pages): the
 * HV_KVM_PAGES_* range of hv.h. */
#define HV_IDENTITY_MAP_GPA HV_KVM_PAGES_GPA
#define HV_TSS_GPA (HV_KVM_PAGES_GPA + 0x1000ull)

#define CAP(x) { #x, x }
const struct hv_cap hv_caps[] = {
	CAP(KVM_CAP_USER_MEMORY),
	CAP(KVM_CAP_SET_TSS_ADDR),
	CAP(KVM_CAP_SET_IDENTITY_MAP_ADDR),
	CAP(KVM_CAP_EXT_CPUID),
	CAP(KVM_CAP_MP_STATE),
	CAP(KVM_CAP_IRQ_ROUTING),
	CAP(KVM_CAP_SIGNAL_MSI),
	CAP(KVM_CAP_SPLIT_IRQCHIP),
	CAP(KVM_CAP_IMMEDIATE_EXIT),
	CAP(KVM_CAP_VCPU_EVENTS),
	CAP(KVM_CAP_DEBUGREGS),
	CAP(KVM_CAP_XSAVE),
	CAP(KVM_CAP_XCRS),
	/* Linux guests prefer the TSC-deadline LAPIC timer when CPUID says
	 * so; every KVM since 3.x has it. */
	CAP(KVM_CAP_TSC_DEADLINE_TIMER),
};
#undef CAP
const unsigned hv_ncaps = sizeof(hv_caps) / sizeof(hv_caps[0]);

int hv_ioctl_val(int fd, unsigned long req, unsigned long arg)
{
	int r;

	do
		r = ioctl(fd, req, arg);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

int hv_ioctl(int fd, unsigned long req, void *arg)
{
	return hv_ioctl_val(fd, req, (unsigned long)arg);
}

const char *hv_missing_cap(int fd)
{
	for (unsigned i = 0; i < hv_ncaps; i++)
		if (hv_ioctl_val(fd, KVM_CHECK_EXTENSION, hv_caps[i].cap) <= 0)
			return hv_caps[i].name;
	return NULL;
}

static void open_error(const char *path, int err, char *buf, size_t len)
{
	if (!buf || !len)
		return;
	switch (err) {
	case ENOENT:
	case ENODEV:
	case ENXIO:
		snprintf(buf, len, "%s: no such device: load kvm_intel or "
			 "kvm_amd (and enable VT-x/AMD-V in the firmware)",
			 path);
		break;
	case EACCES:
	case EPERM:
		snprintf(buf, len, "%s: permission denied: add yourself to "
			 "the kvm group or fix the udev rule", path);
		break;
	default:
		snprintf(buf, len, "%s: %s", path, strerror(err));
	}
}

int hv_open(const char *path, struct hv_system **out, char *err,
	    size_t errlen)
{
	struct hv_system *sys;
	const char *missing;
	int fd, r;

	if (!path)
		path = "/dev/kvm";
	if (err && errlen)
		err[0] = '\0';
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		r = errno;
		open_error(path, r, err, errlen);
		return -r;
	}
	r = hv_ioctl_val(fd, KVM_GET_API_VERSION, 0);
	if (r != HV_KVM_API_VERSION) {
		if (err && errlen)
			snprintf(err, errlen, r < 0 ?
				 "%s: not a KVM device (KVM_GET_API_VERSION "
				 "failed: %d)" :
				 "%s: KVM API version %d, need 12", path, r);
		close(fd);
		return r < 0 ? -ENODEV : -ENOTSUP;
	}
	missing = hv_missing_cap(fd);
	if (missing) {
		if (err && errlen)
			snprintf(err, errlen, "%s: missing capability %s "
				 "(the host kernel's KVM is too old)", path,
				 missing);
		close(fd);
		return -ENOTSUP;
	}
	r = hv_ioctl_val(fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (r < (int)sizeof(struct kvm_run)) {
		if (err && errlen)
			snprintf(err, errlen, "%s: KVM_GET_VCPU_MMAP_SIZE "
				 "failed (%d)", path, r);
		close(fd);
		return r < 0 ? r : -EINVAL;
	}
	sys = calloc(1, sizeof(*sys));
	if (!sys) {
		close(fd);
		return -ENOMEM;
	}
	sys->fd = fd;
	sys->run_size = (size_t)r;
	sys->tsc_deadline =
		hv_ioctl_val(fd, KVM_CHECK_EXTENSION,
			     KVM_CAP_TSC_DEADLINE_TIMER) > 0;
	pthread_mutex_init(&sys->lock, NULL);
	*out = sys;
	return 0;
}

void hv_close(struct hv_system *sys)
{
	if (!sys)
		return;
	close(sys->fd);
	free(sys->supported);
	free(sys->msr_index);
	pthread_mutex_destroy(&sys->lock);
	free(sys);
}

int hv_sys_supported_cpuid(struct hv_system *sys,
			   const struct kvm_cpuid2 **out)
{
	int r = 0;

	pthread_mutex_lock(&sys->lock);
	for (unsigned n = 64; !sys->supported && n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) +
				n * sizeof(struct kvm_cpuid_entry2));

		if (!c) {
			r = -ENOMEM;
			break;
		}
		c->nent = n;
		r = hv_ioctl(sys->fd, KVM_GET_SUPPORTED_CPUID, c);
		if (r == 0) {
			sys->supported = c;
			break;
		}
		free(c);
		if (r != -E2BIG)
			break;
	}
	if (sys->supported)
		r = 0;
	*out = sys->supported;
	pthread_mutex_unlock(&sys->lock);
	return r;
}

int hv_sys_msr_index(struct hv_system *sys, const uint32_t **idx,
		     uint32_t *n)
{
	struct kvm_msr_list probe = { .nmsrs = 0 };
	struct kvm_msr_list *l;
	int r = 0;

	pthread_mutex_lock(&sys->lock);
	if (sys->msr_index)
		goto out;
	r = hv_ioctl(sys->fd, KVM_GET_MSR_INDEX_LIST, &probe);
	if (r < 0 && r != -E2BIG)
		goto out;
	l = calloc(1, sizeof(*l) + probe.nmsrs * sizeof(uint32_t));
	if (!l) {
		r = -ENOMEM;
		goto out;
	}
	l->nmsrs = probe.nmsrs;
	r = hv_ioctl(sys->fd, KVM_GET_MSR_INDEX_LIST, l);
	if (r < 0) {
		free(l);
		goto out;
	}
	sys->nmsr_index = l->nmsrs;
	sys->msr_index = malloc((l->nmsrs ? l->nmsrs : 1) * sizeof(uint32_t));
	if (sys->msr_index)
		memcpy(sys->msr_index, l->indices,
		       l->nmsrs * sizeof(uint32_t));
	else
		r = -ENOMEM;
	free(l);
out:
	if (sys->msr_index)
		r = 0;
	*idx = sys->msr_index;
	*n = sys->msr_index ? sys->nmsr_index : 0;
	pthread_mutex_unlock(&sys->lock);
	return r;
}

/* ---- VMs ---------------------------------------------------------------- */

int hv_vm_create(struct hv_system *sys, struct hv_vm **out)
{
	struct kvm_enable_cap split = {
		.cap = KVM_CAP_SPLIT_IRQCHIP,
		.args = { HV_IOAPIC_PINS },
	};
	uint64_t ident = HV_IDENTITY_MAP_GPA;
	struct hv_vm *vm;
	int fd, r;

	fd = hv_ioctl_val(sys->fd, KVM_CREATE_VM, 0);
	if (fd < 0)
		return fd;
	/* Both before any vCPU exists (api.rst). */
	r = hv_ioctl(fd, KVM_SET_IDENTITY_MAP_ADDR, &ident);
	if (r == 0)
		r = hv_ioctl_val(fd, KVM_SET_TSS_ADDR, HV_TSS_GPA);
	if (r == 0)
		r = hv_ioctl(fd, KVM_ENABLE_CAP, &split);
	if (r < 0) {
		close(fd);
		return r;
	}
	vm = calloc(1, sizeof(*vm));
	if (!vm) {
		close(fd);
		return -ENOMEM;
	}
	vm->sys = sys;
	vm->fd = fd;
	r = hv_ioctl_val(fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	vm->xsave_size = r > (int)sizeof(struct kvm_xsave) ?
			 r : (int)sizeof(struct kvm_xsave);
	/* Optional: without them devices keep the exit path. */
	if (hv_ioctl_val(fd, KVM_CHECK_EXTENSION, KVM_CAP_IOEVENTFD) > 0)
		vm->features |= HV_VM_IOEVENTFD;
	if ((vm->features & HV_VM_IOEVENTFD) &&
	    hv_ioctl_val(fd, KVM_CHECK_EXTENSION, KVM_CAP_IOEVENTFD_ANY_LENGTH) > 0)
		vm->features |= HV_VM_IOEVENTFD_ANYLEN;
	if (hv_ioctl_val(fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD) > 0)
		vm->features |= HV_VM_IRQFD;
	/* Asked here, once: flash devices remap their slots from vCPU threads,
	 * whose sandbox has no KVM_CHECK_EXTENSION. */
	if (hv_ioctl_val(fd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) > 0)
		vm->features |= HV_VM_READONLY_MEM;
	/* KVM_CAP_IRQ_ROUTING (required) answers KVM_MAX_IRQ_ROUTES. */
	r = hv_ioctl_val(fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQ_ROUTING);
	vm->gsi_count = r > HV_IOAPIC_PINS ? (unsigned)r : HV_IOAPIC_PINS;
	*out = vm;
	return 0;
}

void hv_vm_destroy(struct hv_vm *vm)
{
	if (!vm)
		return;
	close(vm->fd);
	free(vm);
}

int hv_vm_set_memory(struct hv_vm *vm, uint32_t slot, uint64_t gpa,
		     uint64_t size, void *hva, unsigned flags)
{
	struct kvm_userspace_memory_region m = {
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)hva,
	};

	if ((gpa | size | (uintptr_t)hva) & 0xfff)
		return -EINVAL;
	if (flags & ~(HV_MEM_READONLY | HV_MEM_LOG_DIRTY))
		return -EINVAL;
	if (size && gpa + size < gpa)
		return -EINVAL;
	if (flags & HV_MEM_READONLY) {
		if (!(vm->features & HV_VM_READONLY_MEM))
			return -ENOTSUP;
		m.flags |= KVM_MEM_READONLY;
	}
	if (flags & HV_MEM_LOG_DIRTY)
		m.flags |= KVM_MEM_LOG_DIRTY_PAGES;
	if (!size)
		m.userspace_addr = 0;
	return hv_ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &m);
}

int hv_vm_get_dirty_log(struct hv_vm *vm, uint32_t slot, uint64_t *bitmap)
{
	struct kvm_dirty_log log = { .slot = slot, .dirty_bitmap = bitmap };

	return hv_ioctl(vm->fd, KVM_GET_DIRTY_LOG, &log);
}

int hv_vm_get_clock(struct hv_vm *vm, uint64_t *ns)
{
	struct kvm_clock_data c = { 0 };
	int r = hv_ioctl(vm->fd, KVM_GET_CLOCK, &c);

	if (r == 0)
		*ns = c.clock;
	return r;
}

int hv_vm_set_clock(struct hv_vm *vm, uint64_t ns)
{
	struct kvm_clock_data c = { .clock = ns };

	return hv_ioctl(vm->fd, KVM_SET_CLOCK, &c);
}

int hv_vm_signal_msi(struct hv_vm *vm, uint64_t addr, uint32_t data)
{
	struct kvm_msi msi = {
		.address_lo = (uint32_t)addr,
		.address_hi = (uint32_t)(addr >> 32),
		.data = data,
	};

	return hv_ioctl(vm->fd, KVM_SIGNAL_MSI, &msi);
}

int hv_vm_set_msi_routes(struct hv_vm *vm, const struct hv_msi_route *routes,
			 unsigned n)
{
	struct kvm_irq_routing *t;
	int r;

	if (n > vm->gsi_count)
		return -EINVAL;
	t = calloc(1, sizeof(*t) + n * sizeof(struct kvm_irq_routing_entry));
	if (!t)
		return -ENOMEM;
	t->nr = n;
	for (unsigned i = 0; i < n; i++) {
		bool repeated = false;

		/* KVM would take two routes for one GSI (it fans out);
		 * nothing of ours means that. */
		for (unsigned j = 0; j < i; j++)
			repeated |= routes[j].gsi == routes[i].gsi;
		if (routes[i].gsi >= vm->gsi_count || repeated) {
			free(t);
			return -EINVAL;
		}
		t->entries[i].gsi = routes[i].gsi;
		t->entries[i].type = KVM_IRQ_ROUTING_MSI;
		t->entries[i].u.msi.address_lo = (uint32_t)routes[i].addr;
		t->entries[i].u.msi.address_hi =
			(uint32_t)(routes[i].addr >> 32);
		t->entries[i].u.msi.data = routes[i].data;
	}
	r = hv_ioctl(vm->fd, KVM_SET_GSI_ROUTING, t);
	free(t);
	return r;
}

unsigned hv_vm_gsi_count(const struct hv_vm *vm)
{
	return vm->gsi_count;
}

unsigned hv_vm_features(const struct hv_vm *vm)
{
	return vm->features;
}

int hv_vm_ioeventfd(struct hv_vm *vm, uint64_t addr, unsigned len,
		    bool is_pio, int fd, bool assign)
{
	struct kvm_ioeventfd e = {
		.addr = addr,
		.len = len,
		.fd = fd,
	};

	if (!(vm->features & HV_VM_IOEVENTFD))
		return -ENOTSUP;
	if (len != 0 && len != 1 && len != 2 && len != 4 && len != 8)
		return -EINVAL;
	if (len == 0 && (is_pio || !(vm->features & HV_VM_IOEVENTFD_ANYLEN)))
		return is_pio ? -EINVAL : -ENOTSUP;
	if (fd < 0 || (is_pio && addr + (len ? len : 1) > 0x10000))
		return -EINVAL;
	if (is_pio)
		e.flags |= KVM_IOEVENTFD_FLAG_PIO;
	if (!assign)
		e.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
	return hv_ioctl(vm->fd, KVM_IOEVENTFD, &e);
}

int hv_vm_irqfd(struct hv_vm *vm, uint32_t gsi, int fd, bool assign)
{
	struct kvm_irqfd i = {
		.fd = (uint32_t)fd,
		.gsi = gsi,
		.flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};

	if (!(vm->features & HV_VM_IRQFD))
		return -ENOTSUP;
	if (fd < 0 || gsi >= vm->gsi_count)
		return -EINVAL;
	return hv_ioctl(vm->fd, KVM_IRQFD, &i);
}
