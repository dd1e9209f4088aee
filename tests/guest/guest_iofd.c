/* SPDX-License-Identifier: MIT */
/*
 * tests/guest/guest_iofd.c - hostdrv's eventfd doorbells on /dev/kvm:
 *  - ioeventfd: a guest's MMIO writes (any width with
 *    HV_VM_IOEVENTFD_ANYLEN, else the registered one) and port writes at a
 *    registered address add to the eventfd's counter and never exit; after
 *    the deassign they exit again;
 *  - irqfd: an eventfd attached to a GSI beyond the IOAPIC's pins, routed
 *    to an edge-triggered MSI in the same table as an IOAPIC route,
 *    interrupts the guest when the host writes it; re-routing the GSI
 *    (the table replaced as a whole) changes the vector it raises.
 */
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "check.h"
#include "guestlib.h"

#define DOOR_MMIO	0xd0000000ull	/* recorder behind the doorbell */
#define DOOR_PORT	0x610		/* recorder, 16 ports */
#define READY_PORT	0x620
#define IDT_GPA		0x9000
#define VEC_A		0x45
#define VEC_B		0x46
#define MSI_ADDR	0xfee00000ull	/* APIC ID 0, physical, fixed */

/* 16-bit writes x3, a 32-bit and an 8-bit write to the MMIO doorbell; a
 * 16-bit port write x2; exit. */
GUEST_CODE64(door_code,
	"movabs $0xd0000000, %rbx\n"
	"movw $1, (%rbx)\n"
	"movw $2, (%rbx)\n"
	"movw $3, (%rbx)\n"
	"movl $4, (%rbx)\n"
	"movb $5, (%rbx)\n"
	"mov $0x610, %dx\n"
	"mov $6, %ax\n"
	"out %ax, %dx\n"
	"out %ax, %dx\n"
	"mov $0x91, %al\n"
	GUEST_EXIT_ASM);

/* 2000 16-bit writes to the MMIO doorbell, then exit: the vCPU's cost
 * of a notify, by exit or by ioeventfd. */
#define LOOP_WRITES 2000
GUEST_CODE64(loop_code,
	"movabs $0xd0000000, %rbx\n"
	"mov $2000, %ecx\n"
	"1: movw $1, (%rbx)\n"
	"dec %ecx\n"
	"jnz 1b\n"
	"mov $0x92, %al\n"
	GUEST_EXIT_ASM);

/* Enable the local APIC, say ready (port 0x620, value 1), wait for an
 * interrupt on either vector; the handler reports its vector (0x620
 * again) and EOIs. */
GUEST_CODE64(irq_code,
	"movabs $0xfee00000, %rbx\n"
	"movl $0x1ff, 0xf0(%rbx)\n"		/* SVR: enabled, vector 0xff */
	"xor %r12, %r12\n"
	"mov $0x620, %dx\n"
	"mov $1, %eax\n"
	"out %eax, %dx\n"
	"sti\n"
	"1: test %r12, %r12\n"
	"jz 1b\n"
	"cli\n"
	"mov %r12b, %al\n"
	GUEST_EXIT_ASM
	".globl irq_a\n"
	"irq_a:\n"
	"mov $0x45, %r12\n"
	"jmp 2f\n"
	".globl irq_b\n"
	"irq_b:\n"
	"mov $0x46, %r12\n"
	"2: mov $0x620, %dx\n"
	"mov %r12d, %eax\n"
	"out %eax, %dx\n"
	"movl $0, 0xb0(%rbx)\n"			/* EOI */
	"iretq\n");
extern const uint8_t irq_a[], irq_b[];

static struct guest g;
static struct guest_recorder mmio_rec, pio_rec;

static uint64_t counter(int fd)
{
	uint64_t c = 0;

	if (read(fd, &c, sizeof(c)) != sizeof(c))
		c = 0;
	return c;
}

/* Run the doorbell guest from its start on @v (KVM keeps a vCPU ID for
 * the VM's life: one vCPU, run again). */
static void run_doors(struct hv_vcpu *v)
{
	struct guest_stop st;
	char buf[160];

	memset(&mmio_rec, 0, sizeof(mmio_rec));
	memset(&pio_rec, 0, sizeof(pio_rec));
	CHECK_EQ(guest_setup_long_mode(&g, v, GUEST_CODE_GPA, 0x80000), 0);
	if (guest_run(&g, v, 60, &st) != GUEST_STOP_EXIT_PORT || st.value != 0x91)
		fprintf(stderr, "  %s\n", guest_stop_str(&st, buf, sizeof(buf)));
	CHECK_EQ(st.value, 0x91);
}

static void test_ioeventfd(void)
{
	int mfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int pfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct hv_vcpu *v;
	unsigned f, mlen;
	bool anylen;

	CHECK_EQ(guest_open(&g, 2 << 20), 0);
	f = hv_vm_features(g.vm);
	if (!(f & HV_VM_IOEVENTFD)) {
		guest_close(&g);
		SKIP("KVM has no ioeventfd (KVM_CAP_IOEVENTFD)");
	}
	anylen = f & HV_VM_IOEVENTFD_ANYLEN;
	mlen = anylen ? 0 : 2;
	printf("  ioeventfd, any width: %s; irqfd: %s\n", anylen ? "yes" : "no",
	       (f & HV_VM_IRQFD) ? "yes" : "no");
	CHECK_EQ(bus_register(g.mmio, DOOR_MMIO, 0x1000, &guest_recorder_ops,
			      &mmio_rec), 0);
	CHECK_EQ(bus_register(g.pio, DOOR_PORT, 16, &guest_recorder_ops,
			      &pio_rec), 0);
	guest_load(&g, GUEST_CODE_GPA, door_code, door_code_end - door_code);

	CHECK_EQ(hv_vm_ioeventfd(g.vm, DOOR_MMIO, mlen, false, mfd, true), 0);
	CHECK_EQ(hv_vm_ioeventfd(g.vm, DOOR_PORT, 2, true, pfd, true), 0);
	/* One doorbell per address. */
	CHECK_EQ(hv_vm_ioeventfd(g.vm, DOOR_PORT, 2, true, pfd, true), -EEXIST);
	CHECK_EQ(hv_vm_ioeventfd(g.vm, DOOR_PORT, 0, true, pfd, true), -EINVAL);
	CHECK_EQ(hv_vm_ioeventfd(g.vm, DOOR_PORT, 3, true, pfd, true), -EINVAL);
	CHECK_EQ(guest_vcpu(&g, 0, 1, &v), 0);
	run_doors(v);
	if (anylen) {
		/* Every width signals; nothing exits. */
		CHECK_EQ(counter(mfd), 5);
		CHECK_EQ(mmio_rec.n, 0);
	} else {
		/* The 16-bit ones signal; the others exit as before. */
		CHECK_EQ(counter(mfd), 3);
		CHECK_EQ(mmio_rec.n, 2);
	}
	CHECK_EQ(counter(pfd), 2);
	CHECK_EQ(pio_rec.n, 0);

	/* Deassigned: exits again, each with its value. */
	CHECK_EQ(hv_vm_ioeventfd(g.vm, DOOR_MMIO, mlen, false, mfd, false), 0);
	CHECK_EQ(hv_vm_ioeventfd(g.vm, DOOR_PORT, 2, true, pfd, false), 0);
	CHECK(hv_vm_ioeventfd(g.vm, DOOR_PORT, 2, true, pfd, false) < 0);
	run_doors(v);
	CHECK_EQ(counter(mfd), 0);
	CHECK_EQ(counter(pfd), 0);
	CHECK_EQ(mmio_rec.n, 5);
	CHECK_EQ(mmio_rec.log[0].value, 1);
	CHECK_EQ(mmio_rec.log[3].size, 4);
	CHECK_EQ(pio_rec.n, 2);
	CHECK_EQ(pio_rec.log[0].value, 6);
	hv_vcpu_destroy(v);
	guest_close(&g);
	close(mfd);
	close(pfd);
}

/* Seconds per doorbell write on @v: the loop guest, run to its end. */
static double loop_cost(struct hv_vcpu *v)
{
	struct guest_stop st;

	CHECK_EQ(guest_setup_long_mode(&g, v, GUEST_CODE_GPA, 0x80000), 0);
	CHECK_EQ(guest_run(&g, v, 120, &st), GUEST_STOP_EXIT_PORT);
	CHECK_EQ(st.value, 0x92);
	return st.seconds / LOOP_WRITES;
}

/* Not a check: what a notify costs the vCPU here, printed for the record
 * (bench/README.md).  On this host's /dev/kvm every MMIO write is
 * emulated either way; what differs is the trip out to us and back. */
static void test_doorbell_cost(void)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	double by_exit, by_fd;
	struct hv_vcpu *v;

	CHECK_EQ(guest_open(&g, 2 << 20), 0);
	memset(&mmio_rec, 0, sizeof(mmio_rec));
	CHECK_EQ(bus_register(g.mmio, DOOR_MMIO, 0x1000, &guest_recorder_ops,
			      &mmio_rec), 0);
	guest_load(&g, GUEST_CODE_GPA, loop_code, loop_code_end - loop_code);
	CHECK_EQ(guest_vcpu(&g, 0, 1, &v), 0);
	by_exit = loop_cost(v);
	CHECK_EQ(hv_vm_ioeventfd(g.vm, DOOR_MMIO, 2, false, fd, true), 0);
	by_fd = loop_cost(v);
	CHECK_EQ(counter(fd), LOOP_WRITES);
	printf("  a 16-bit doorbell write costs the vCPU %.1f us by exit, %.1f us by ioeventfd (%d writes each)\n",
	       by_exit * 1e6, by_fd * 1e6, LOOP_WRITES);
	hv_vcpu_destroy(v);
	guest_close(&g);
	close(fd);
}

/* A 64-bit interrupt gate for @vector -> @handler (SDM vol. 3 §6.14.1). */
static void set_gate(uint8_t vector, uint64_t handler)
{
	uint32_t gate[4] = {
		(uint32_t)(handler & 0xffff) | (0x08u << 16),
		(uint32_t)(handler & 0xffff0000u) | 0x8e00u,
		(uint32_t)(handler >> 32),
		0,
	};

	guest_load(&g, IDT_GPA + vector * 16ull, gate, sizeof(gate));
}

/* Run the interrupt guest from its start on @v; write @fd when it is
 * ready.  Returns the vector its handler saw (0 on failure). */
static unsigned run_irq(struct hv_vcpu *v, int fd)
{
	struct hv_sregs s;
	struct hv_exit e;
	unsigned seen = 0, exit_value = 0;
	double t0;

	CHECK_EQ(guest_setup_long_mode(&g, v, GUEST_CODE_GPA, 0x80000), 0);
	CHECK_EQ(hv_vcpu_get_sregs(v, &s), 0);
	s.idt = (struct hv_dtable){ IDT_GPA, VEC_B * 16 + 15 };
	CHECK_EQ(hv_vcpu_set_sregs(v, &s), 0);
	t0 = guest_now();
	while (!exit_value && guest_now() - t0 < 60) {
		if (hv_vcpu_run(v, &e) < 0)
			break;
		if (e.kind == HV_EXIT_IO && e.io.port == GUEST_EXIT_PORT) {
			exit_value = e.io.data[0];
		} else if (e.kind == HV_EXIT_IO && e.io.port == READY_PORT) {
			uint64_t one = 1;

			if (e.io.data[0] == 1)	/* ready: ring it */
				CHECK_EQ(write(fd, &one, sizeof(one)), sizeof(one));
			else
				seen = e.io.data[0];
		} else if (e.kind != HV_EXIT_INTR) {
			break;
		}
	}
	CHECK_EQ(exit_value, seen);
	return seen;
}

static void test_irqfd(void)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	const uint32_t gsi = HV_IOAPIC_PINS + 5;
	struct hv_msi_route routes[2] = {
		{ 3, MSI_ADDR, 0x30 },		/* an IOAPIC pin's */
		{ gsi, MSI_ADDR, VEC_A },	/* edge, fixed */
	};
	struct hv_vcpu *v;

	CHECK_EQ(guest_open(&g, 2 << 20), 0);
	if (!(hv_vm_features(g.vm) & HV_VM_IRQFD)) {
		guest_close(&g);
		SKIP("KVM has no irqfd (KVM_CAP_IRQFD)");
	}
	CHECK(hv_vm_gsi_count(g.vm) > gsi);
	guest_load(&g, GUEST_CODE_GPA, irq_code, irq_code_end - irq_code);
	set_gate(VEC_A, GUEST_CODE_GPA + (irq_a - irq_code));
	set_gate(VEC_B, GUEST_CODE_GPA + (irq_b - irq_code));

	/* The table: one GSI once, below hv_vm_gsi_count(). */
	routes[0].gsi = gsi;
	CHECK_EQ(hv_vm_set_msi_routes(g.vm, routes, 2), -EINVAL);
	routes[0].gsi = hv_vm_gsi_count(g.vm);
	CHECK_EQ(hv_vm_set_msi_routes(g.vm, routes, 2), -EINVAL);
	routes[0].gsi = 3;
	CHECK_EQ(hv_vm_set_msi_routes(g.vm, routes, 2), 0);
	CHECK_EQ(hv_vm_irqfd(g.vm, gsi, fd, true), 0);
	CHECK_EQ(hv_vm_irqfd(g.vm, gsi, fd, true), -EBUSY);

	CHECK_EQ(guest_vcpu(&g, 0, 1, &v), 0);
	CHECK_EQ(run_irq(v, fd), VEC_A);
	/* Re-routed with the fd attached: the next signal raises VEC_B. */
	routes[1].data = VEC_B;
	CHECK_EQ(hv_vm_set_msi_routes(g.vm, routes, 2), 0);
	CHECK_EQ(run_irq(v, fd), VEC_B);

	CHECK_EQ(hv_vm_irqfd(g.vm, gsi, fd, false), 0);
	hv_vcpu_destroy(v);
	guest_close(&g);
	close(fd);
}

int main(void)
{
	double t0 = guest_now();

	RUN_TEST(test_ioeventfd);
	RUN_TEST(test_irqfd);
	RUN_TEST(test_doorbell_cost);
	printf("guest_iofd: %.3f s in all\n", guest_now() - t0);
	return check_finish();
}
