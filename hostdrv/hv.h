/* SPDX-License-Identifier: MIT */
/*
 * hostdrv/hv.h - the hypervisor layer: a thin, hypervisor-neutral interface
 * over Linux KVM (/dev/kvm).  Nothing outside hostdrv/ includes <linux/kvm.h>;
 * callers see hv_* types only.
 *
 * Threading: hv_system and hv_vm calls may be made from any thread.  A vCPU's
 * calls (run, get/set state, interrupt injection) must come from the thread
 * that runs it, except hv_vcpu_kick(), which any thread may call.
 *
 * Errors are negative errno values; functions that can fail for a reason a
 * user must read also fill a message buffer.
 */
#ifndef VIVARIUM_HV_H
#define VIVARIUM_HV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hv_system;	/* an open /dev/kvm */
struct hv_vm;		/* one virtual machine */
struct hv_vcpu;		/* one virtual CPU of a VM */

/* Number of IOAPIC pins (GSIs 0..23) whose routes userspace owns in the
 * split irqchip model (KVM_CAP_SPLIT_IRQCHIP). */
#define HV_IOAPIC_PINS 24

/*
 * hv_open - open /dev/kvm (or @path when non-NULL), check KVM_GET_API_VERSION
 * is 12 and that every capability Vivarium relies on is present.
 * On failure returns a negative errno and writes one line naming the missing
 * device, permission or capability into @err (@errlen bytes).
 */
int hv_open(const char *path, struct hv_system **out, char *err, size_t errlen);
void hv_close(struct hv_system *sys);

/* Where KVM keeps its EPT identity map (1 page) and real-mode TSS (3
 * pages) on VMX: 16 KiB in the PCI hole, outside the PCI windows; the e820
 * maps mark it reserved, as QEMU's do. */
#define HV_KVM_PAGES_GPA	0xfeffc000ull
#define HV_KVM_PAGES_SIZE	0x4000ull

/*
 * hv_vm_create - create a VM in the split irqchip model: local APICs inside
 * KVM, PIC/IOAPIC/PIT emulated by the caller (HV_IOAPIC_PINS routes
 * reserved).  Also places KVM's TSS and identity map pages just below 4 GiB
 * (GPA 0xfeffc000, 16 KiB) where no RAM or device lives.
 */
int hv_vm_create(struct hv_system *sys, struct hv_vm **out);
void hv_vm_destroy(struct hv_vm *vm);

#define HV_MEM_READONLY  (1u << 0)	/* guest writes exit as MMIO */
#define HV_MEM_LOG_DIRTY (1u << 1)	/* track dirty pages */

/*
 * hv_vm_set_memory - map @size bytes of host memory at @hva to guest physical
 * address @gpa as memory slot @slot.  @gpa, @size and @hva must be 4 KiB
 * aligned.  @size 0 deletes the slot.  Returns 0 or -errno (-EINVAL for
 * misalignment, -EEXIST for an overlap KVM rejects).
 */
int hv_vm_set_memory(struct hv_vm *vm, uint32_t slot, uint64_t gpa,
		     uint64_t size, void *hva, unsigned flags);

/*
 * hv_vm_get_dirty_log - fetch and clear the dirty-page log of memory slot
 * @slot (mapped with HV_MEM_LOG_DIRTY): bit i of @bitmap set means the
 * guest wrote page i (4 KiB) of the slot since the last call.  @bitmap
 * holds one bit per page of the slot, rounded up to whole 64-bit words.
 * Returns 0 or -errno (-ENOENT: no such slot or logging off).
 */
int hv_vm_get_dirty_log(struct hv_vm *vm, uint32_t slot, uint64_t *bitmap);

/*
 * hv_vm_get_clock / hv_vm_set_clock - the guest's kvmclock (the clock its
 * paravirtual clocksource reads), in ns (KVM_GET_CLOCK/KVM_SET_CLOCK).  A
 * restored machine sets the value it saved, so guest time does not jump
 * forward by the time it spent saved nor run backwards.  0 or -errno.
 */
int hv_vm_get_clock(struct hv_vm *vm, uint64_t *ns);
int hv_vm_set_clock(struct hv_vm *vm, uint64_t ns);

/*
 * hv_vm_signal_msi - deliver an MSI (Intel SDM vol. 3 §11.11: address
 * 0xfeeXXXXX, data = vector | delivery mode | trigger) to the local APICs.
 * Returns >0 delivered, 0 blocked by the guest, -errno on error.
 */
int hv_vm_signal_msi(struct hv_vm *vm, uint64_t addr, uint32_t data);

/*
 * One GSI -> MSI route.  GSIs below HV_IOAPIC_PINS are the IOAPIC's pins:
 * KVM scans those routes to know which vectors are level-triggered IOAPIC
 * interrupts whose EOI must exit (HV_EXIT_EOI).  GSIs from HV_IOAPIC_PINS
 * up to hv_vm_gsi_count() are free for other MSI sources (an irqfd's).
 */
struct hv_msi_route {
	uint32_t gsi;		/* < hv_vm_gsi_count() */
	uint64_t addr;
	uint32_t data;
};
/*
 * hv_vm_set_msi_routes - replace the whole GSI routing table
 * (KVM_SET_GSI_ROUTING) with @n MSI routes, each GSI at most once.  KVM
 * keeps one table per VM: callers that route GSIs of their own must merge
 * them into one table (vmm-core/irqroute.h).  0 or -errno (-EINVAL: a GSI
 * out of range or repeated).
 */
int hv_vm_set_msi_routes(struct hv_vm *vm, const struct hv_msi_route *routes,
			 unsigned n);
/* GSIs the routing table can hold (KVM_CAP_IRQ_ROUTING: KVM_MAX_IRQ_ROUTES,
 * 1024 or 4096 depending on the kernel), at least HV_IOAPIC_PINS. */
unsigned hv_vm_gsi_count(const struct hv_vm *vm);

/* ---- eventfd doorbells -------------------------------------------------- */

/* What a VM offers beyond hv_open()'s required capabilities. */
#define HV_VM_IOEVENTFD		(1u << 0)	/* KVM_CAP_IOEVENTFD */
#define HV_VM_IOEVENTFD_ANYLEN	(1u << 1)	/* ...with @len 0: any width */
#define HV_VM_IRQFD		(1u << 2)	/* KVM_CAP_IRQFD */
#define HV_VM_READONLY_MEM	(1u << 3)	/* KVM_CAP_READONLY_MEM */
unsigned hv_vm_features(const struct hv_vm *vm);

/*
 * hv_vm_ioeventfd - with @assign, guest writes to MMIO address @addr (or
 * port @addr with @is_pio) signal the eventfd @fd (adds 1 to its counter)
 * inside KVM: the vCPU goes on at once instead of exiting to us, and the
 * value written is lost.  @len 1, 2, 4 or 8 matches writes of exactly that
 * width; @len 0 any width (needs HV_VM_IOEVENTFD_ANYLEN; MMIO only).
 * Writes that do not match exit as before (reads always do).  Without
 * @assign, removes the registration made with the same @addr, @len,
 * @is_pio and @fd (KVM_IOEVENTFD_FLAG_DEASSIGN).  No datamatch: callers
 * give each doorbell its own address (the virtio 1.x notify area, one
 * per queue).  Returns 0, -ENOTSUP (no ioeventfd, or @len 0 without
 * ANYLEN), -EEXIST (that address is taken), -ENOENT (no such
 * registration to remove) or -errno.
 */
int hv_vm_ioeventfd(struct hv_vm *vm, uint64_t addr, unsigned len,
		    bool is_pio, int fd, bool assign);

/*
 * hv_vm_irqfd - with @assign, attach eventfd @fd to @gsi (KVM_IRQFD):
 * each signal of @fd (a write of a non-zero count) raises what @gsi's
 * route says, in the kernel, from whatever thread wrote it.  For an MSI
 * route that is one edge-triggered message; no resampling (level
 * interrupts stay on the IOAPIC's path).  The route is read at delivery:
 * hv_vm_set_msi_routes() may change it while the irqfd stays attached.
 * Without @assign, detaches @fd from @gsi.  Returns 0, -ENOTSUP (no
 * irqfd), -EBUSY (@fd already attached) or -errno.
 */
int hv_vm_irqfd(struct hv_vm *vm, uint32_t gsi, int fd, bool assign);

/* ---- CPU model ---------------------------------------------------------- */

/* A CPUID feature bit to hide from the guest. */
struct hv_cpuid_mask {
	uint32_t leaf, subleaf;
	uint8_t reg;		/* 0 = EAX, 1 = EBX, 2 = ECX, 3 = EDX */
	uint32_t bits;		/* bits cleared */
};

struct hv_cpu_model {
	const char *name;			/* "host", ... */
	const struct hv_cpuid_mask *hide;	/* may be NULL */
	unsigned nhide;
};

/* The model that passes through everything KVM_GET_SUPPORTED_CPUID offers. */
extern const struct hv_cpu_model hv_cpu_model_host;
/* Look up a model by name; NULL if unknown. */
const struct hv_cpu_model *hv_cpu_model_find(const char *name);

/* ---- vCPUs -------------------------------------------------------------- */

/*
 * hv_vcpu_create - create vCPU @id (0 is the bootstrap processor; others
 * start in the wait-for-SIPI state) and program its CPUID from
 * KVM_GET_SUPPORTED_CPUID filtered through @model, with the topology of
 * @ncpus vCPUs (APIC ID = @id) and the KVM paravirtual leaves.
 * Must be called from the thread that will run the vCPU.
 */
int hv_vcpu_create(struct hv_vm *vm, unsigned id,
		   const struct hv_cpu_model *model, unsigned ncpus,
		   struct hv_vcpu **out);
void hv_vcpu_destroy(struct hv_vcpu *vcpu);
unsigned hv_vcpu_id(const struct hv_vcpu *vcpu);

enum hv_exit_kind {
	HV_EXIT_NONE = 0,
	HV_EXIT_IO,		/* port I/O: io */
	HV_EXIT_MMIO,		/* access to an unmapped GPA: mmio */
	HV_EXIT_HLT,		/* only without an in-kernel LAPIC */
	HV_EXIT_SHUTDOWN,	/* triple fault: the machine resets */
	HV_EXIT_SYSTEM_EVENT,	/* system_event */
	HV_EXIT_INTERNAL_ERROR,	/* internal: emulation failure etc. */
	HV_EXIT_FAIL_ENTRY,	/* hardware refused VM entry: fail_entry */
	HV_EXIT_INTR,		/* KVM_RUN interrupted (kick or signal) */
	HV_EXIT_IRQ_WINDOW,	/* guest can take an interrupt now */
	HV_EXIT_EOI,		/* EOI of a level-triggered IOAPIC vector: eoi */
	HV_EXIT_DEBUG,
	HV_EXIT_UNKNOWN,	/* unknown.reason holds the raw KVM exit code */
};

enum hv_system_event {
	HV_EVENT_SHUTDOWN = 1,
	HV_EVENT_RESET = 2,
	HV_EVENT_CRASH = 3,
	HV_EVENT_OTHER = 99,
};

/*
 * A decoded exit.  io.data / mmio.data point into the vCPU's shared run
 * page: for reads the caller stores the result there before the next
 * hv_vcpu_run().  Port string I/O (rep ins/outs) arrives as io.count
 * consecutive accesses of io.size bytes each.
 */
struct hv_exit {
	enum hv_exit_kind kind;
	union {
		struct {
			uint16_t port;
			uint8_t size;	/* 1, 2 or 4 bytes */
			bool is_write;
			uint32_t count;
			uint8_t *data;	/* count * size bytes */
		} io;
		struct {
			uint64_t gpa;
			uint8_t size;	/* 1..8 bytes */
			bool is_write;
			uint8_t *data;
		} mmio;
		struct {
			enum hv_system_event type;
			uint32_t raw_type;
		} system_event;
		struct {
			uint32_t suberror;
			uint8_t insn_len;	/* bytes valid in insn */
			uint8_t insn[15];	/* failing instruction, if known */
			uint32_t ndata;
			uint64_t data[16];
		} internal;
		struct {
			uint64_t reason;	/* hardware entry failure code */
		} fail_entry;
		struct {
			uint8_t vector;
		} eoi;
		struct {
			uint32_t reason;
		} unknown;
	};
};

/*
 * hv_vcpu_run - enter the guest until the next exit that userspace handles.
 * Returns 0 with *exit filled, or -errno if KVM_RUN itself failed.
 * A pending hv_vcpu_kick() makes it return HV_EXIT_INTR without entering.
 */
int hv_vcpu_run(struct hv_vcpu *vcpu, struct hv_exit *exit);

/* Make the vCPU's current or next hv_vcpu_run() return HV_EXIT_INTR.
 * Safe from any thread and from signal handlers. */
void hv_vcpu_kick(struct hv_vcpu *vcpu);

/* Interrupt injection for a PIC outside KVM (ExtINT through LINT0). */
bool hv_vcpu_ready_for_interrupt(const struct hv_vcpu *vcpu);
void hv_vcpu_request_interrupt_window(struct hv_vcpu *vcpu, bool on);
/* Inject @vector now (KVM_INTERRUPT); only when ready_for_interrupt. */
int hv_vcpu_interrupt(struct hv_vcpu *vcpu, uint8_t vector);
int hv_vcpu_nmi(struct hv_vcpu *vcpu);

/* ---- vCPU state --------------------------------------------------------- */

struct hv_regs {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rip, rflags;
};

struct hv_segment {
	uint64_t base;
	uint32_t limit;
	uint16_t selector;
	uint8_t type, present, dpl, db, s, l, g, avl, unusable;
};

struct hv_dtable {
	uint64_t base;
	uint16_t limit;
};

struct hv_sregs {
	struct hv_segment cs, ds, es, fs, gs, ss, tr, ldt;
	struct hv_dtable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, cr8, efer, apic_base;
};

int hv_vcpu_get_regs(struct hv_vcpu *vcpu, struct hv_regs *regs);
int hv_vcpu_set_regs(struct hv_vcpu *vcpu, const struct hv_regs *regs);
int hv_vcpu_get_sregs(struct hv_vcpu *vcpu, struct hv_sregs *sregs);
int hv_vcpu_set_sregs(struct hv_vcpu *vcpu, const struct hv_sregs *sregs);

/* Model-specific registers, by index (Intel SDM vol. 4). */
int hv_vcpu_get_msr(struct hv_vcpu *vcpu, uint32_t index, uint64_t *value);
int hv_vcpu_set_msr(struct hv_vcpu *vcpu, uint32_t index, uint64_t value);

enum hv_mp_state {
	HV_MP_RUNNABLE = 0,
	HV_MP_UNINITIALIZED = 1,	/* waiting for INIT */
	HV_MP_INIT_RECEIVED = 2,	/* waiting for SIPI */
	HV_MP_HALTED = 3,
	HV_MP_SIPI_RECEIVED = 4,
	HV_MP_OTHER = 99,
};
int hv_vcpu_get_mp_state(struct hv_vcpu *vcpu, enum hv_mp_state *state);
int hv_vcpu_set_mp_state(struct hv_vcpu *vcpu, enum hv_mp_state state);

/* The local APIC's 1 KiB register page (Intel SDM vol. 3 §11.4.1 layout). */
#define HV_LAPIC_SIZE 1024
int hv_vcpu_get_lapic(struct hv_vcpu *vcpu, uint8_t regs[HV_LAPIC_SIZE]);
int hv_vcpu_set_lapic(struct hv_vcpu *vcpu, const uint8_t regs[HV_LAPIC_SIZE]);

/*
 * Whole-vCPU state for save/restore (snapshots): regs, sregs, FPU/XSAVE,
 * XCRs, LAPIC, MP state, pending events, debug registers and the MSRs KVM
 * reports as saveable.  hv_vcpu_save() allocates *blob (free() it) of
 * *len bytes; hv_vcpu_restore() loads such a blob (-EINVAL if malformed).
 */
int hv_vcpu_save(struct hv_vcpu *vcpu, void **blob, size_t *len);
int hv_vcpu_restore(struct hv_vcpu *vcpu, const void *blob, size_t len);

/* ---- for the sandbox (vmm-core/sandbox) ---------------------------------- */

/* Which file descriptor an ioctl goes to, and who issues it. */
enum hv_ioctl_scope {
	HV_IOCTLS_SYSTEM,	/* /dev/kvm: capabilities, CPUID, KVM_CREATE_VM */
	HV_IOCTLS_VM_SETUP,	/* a VM's build: TSS, split irqchip, vCPU
				 * creation, the kvmclock of a save/restore */
	HV_IOCTLS_VM_DEVICE,	/* what device code does to the VM from any
				 * thread: MSIs, GSI routes, ioeventfds,
				 * irqfds, memory slots, dirty logs */
	HV_IOCTLS_VCPU,		/* a vCPU's own: KVM_RUN, registers, state */
};

/*
 * hv_ioctl_list - the ioctl request numbers hostdrv issues in @scope (each
 * once), for a sandbox's allow-lists: *@list gets a static array.  Returns
 * its length.  Kept beside the calls (hostdrv/ioctls.c); the unit test
 * hv_ioctl_list checks that every KVM ioctl hostdrv names is on a list.
 */
size_t hv_ioctl_list(enum hv_ioctl_scope scope, const unsigned long **list);

/* ---- host diagnostics (vivarium doctor) --------------------------------- */

enum hv_backend {
	HV_BACKEND_NONE,	/* no usable /dev/kvm */
	HV_BACKEND_HARDWARE,	/* kvm_intel / kvm_amd: VT-x or AMD-V */
	HV_BACKEND_EMULATED,	/* e.g. kvm_pvm: guests run in an emulator */
	HV_BACKEND_UNKNOWN,
};

struct hv_host_report {
	bool kvm_exists, kvm_accessible;
	char kvm_error[160];		/* why not, when !kvm_accessible */
	bool cpu_vmx, cpu_svm;		/* flags in /proc/cpuinfo */
	char kvm_module[32];		/* "kvm_intel", "kvm_amd", "kvm_pvm", "" */
	enum hv_backend backend;
	int nested;			/* 1 on, 0 off, -1 unknown */
	int api_version;		/* -1 if not opened */
	bool caps_ok;			/* opened, API 12, every capability:
					 * /dev/kvm is usable */
	char missing_cap[64];		/* first missing capability */
};

/* Inspect the host; never fails (unknowns are marked as such).
 * @root: prefix for /proc and /sys paths ("" for the real host), for tests. */
void hv_host_probe(const char *root, const char *kvm_path,
		   struct hv_host_report *r);

/* TAP networking: what the TAP backend (vmm-core/net/tap.h) needs.  NAT
 * networking needs nothing of the host. */
struct hv_net_report {
	bool tun_exists;		/* the node is there */
	bool tun_accessible;		/* opens read-write, answers TUNGETFEATURES */
	char tun_error[256];		/* why not, when !tun_accessible */
	int tun_mode;			/* st_mode & 07777; -1 if absent */
	unsigned tun_uid, tun_gid;
	int net_admin;			/* CAP_NET_ADMIN in effect (may make
					 * and open any tap): 1, 0, -1 unknown */
	bool bridge_helper;		/* QEMU's bridge helper installed */
	bool bridge_helper_setuid;	/* ... setuid root: usable without
					 * CAP_NET_ADMIN */
};

#define HV_BRIDGE_HELPER	"/usr/lib/qemu/qemu-bridge-helper"

/* Inspect @tun_path (NULL: /dev/net/tun), ROOT/proc/self/status's CapEff
 * and ROOT/usr/lib/qemu/qemu-bridge-helper; never fails. */
void hv_net_probe(const char *root, const char *tun_path,
		  struct hv_net_report *r);

#endif
