/* SPDX-License-Identifier: MIT */
/*
 * Serial interrupts through the whole machine (machine.c's device table and
 * routing) on /dev/kvm:
 *  - real mode: UART THR-empty -> IRQ 4 -> 8259A -> ExtINT injected by the
 *    boot vCPU through KVM_INTERRUPT -> the IVT handler;
 *  - long mode: the same IRQ 4 -> IOAPIC pin 4 -> MSI -> KVM's local APIC ->
 *    the IDT handler, which EOIs the local APIC.
 * Each handler reads the UART's IIR and writes it to the test-exit port, so
 * the VM's exit status proves which interrupt arrived.  Both guests also
 * transmit a byte, which must reach the COM1 chardev.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "boot/linux.h"
#include "check.h"
#include "host/chardev.h"
#include "guestlib.h"
#include "hv.h"
#include "machine.h"
#include "mem.h"

#define CODE_GPA	0x10000ull
#define IDT_GPA		0x3000ull
#define STACK_TOP	0x8000ull
#define VEC_IOAPIC	0x34

GUEST_CODE16(serial16,
	"cli\n"
	/* 8259A init as a BIOS does: vectors 0x20-0x27, slave 0x28. */
	"mov $0x11, %al\n out %al, $0x20\n out %al, $0xa0\n"
	"mov $0x20, %al\n out %al, $0x21\n"
	"mov $0x28, %al\n out %al, $0xa1\n"
	"mov $0x04, %al\n out %al, $0x21\n"
	"mov $0x02, %al\n out %al, $0xa1\n"
	"mov $0x01, %al\n out %al, $0x21\n out %al, $0xa1\n"
	"mov $0xef, %al\n out %al, $0x21\n"		/* only IRQ 4 */
	"mov $0xff, %al\n out %al, $0xa1\n"
	"mov $0x3fc, %dx\n mov $0x08, %al\n out %al, %dx\n"	/* MCR OUT2 */
	"mov $0x3f8, %dx\n mov $'R', %al\n out %al, %dx\n"	/* THR */
	"mov $0x3f9, %dx\n mov $0x02, %al\n out %al, %dx\n"	/* IER THRE */
	"sti\n"
	"1: jmp 1b\n"
	".globl serial16_isr\n serial16_isr:\n"
	"mov $0x3fa, %dx\n in %dx, %al\n"		/* IIR */
	"and $0x0f, %al\n or $0x40, %al\n"
	GUEST_EXIT_ASM
	"2: jmp 2b\n");
extern const uint8_t serial16_isr[];

GUEST_CODE64(serial64,
	"cli\n"
	"mov $0xff, %al\n out %al, $0x21\n out %al, $0xa1\n"	/* PIC off */
	/* IOAPIC pin 4: vector 0x34, fixed, physical, edge, high, unmasked. */
	"mov $0xfec00000, %ebx\n"
	"movl $0x18, (%rbx)\n movl $0x34, 0x10(%rbx)\n"
	"movl $0x19, (%rbx)\n movl $0x0, 0x10(%rbx)\n"
	/* Local APIC software enable (SVR), spurious vector 0xff. */
	"mov $0xfee00000, %ebx\n movl $0x1ff, 0xf0(%rbx)\n"
	"mov $0x3fc, %dx\n mov $0x08, %al\n out %al, %dx\n"
	"mov $0x3f8, %dx\n mov $'L', %al\n out %al, %dx\n"
	"mov $0x3f9, %dx\n mov $0x02, %al\n out %al, %dx\n"
	"sti\n"
	"1: jmp 1b\n"
	".globl serial64_isr\n serial64_isr:\n"
	"mov $0x3fa, %dx\n in %dx, %al\n"
	"and $0x0f, %al\n or $0x60, %al\n"
	"mov $0xfee000b0, %ebx\n movl $0, (%rbx)\n"	/* local APIC EOI */
	GUEST_EXIT_ASM
	"2: jmp 2b\n");
extern const uint8_t serial64_isr[];

struct guest_prog {
	bool long_mode;
};

static int load(struct machine *m, struct guest_mem *mem, void *opaque)
{
	struct guest_prog *p = opaque;

	(void)m;
	if (!p->long_mode) {
		/* IVT entry 0x24 (IRQ 4 at base 0x20) -> 1000:isr. */
		uint16_t ivt[2] = {
			(uint16_t)(serial16_isr - serial16),
			(uint16_t)(CODE_GPA >> 4)
		};

		guest_mem_write(mem, 0x24 * 4, ivt, sizeof(ivt));
		return guest_mem_write(mem, CODE_GPA, serial16,
				       (size_t)(serial16_end - serial16));
	} else {
		uint64_t isr = CODE_GPA + (uint64_t)(serial64_isr - serial64);
		uint8_t gate[16] = { 0 };

		/* 64-bit interrupt gate (Intel SDM vol. 3 §6.14.1), selector
		 * 0x10 = the code segment linux_setup_vcpu() sets up. */
		gate[0] = (uint8_t)isr;
		gate[1] = (uint8_t)(isr >> 8);
		gate[2] = 0x10;
		gate[5] = 0x8e;
		gate[6] = (uint8_t)(isr >> 16);
		gate[7] = (uint8_t)(isr >> 24);
		guest_mem_write(mem, IDT_GPA + VEC_IOAPIC * 16, gate, sizeof(gate));
		return guest_mem_write(mem, CODE_GPA, serial64,
				       (size_t)(serial64_end - serial64));
	}
}

static int setup_bsp(struct machine *m, struct hv_vcpu *vcpu, void *opaque)
{
	struct guest_prog *p = opaque;
	struct hv_regs regs = { 0 };
	struct hv_sregs sregs;
	int r = hv_vcpu_get_sregs(vcpu, &sregs);

	if (r < 0)
		return r;
	if (!p->long_mode) {
		struct hv_segment *segs[] = { &sregs.cs, &sregs.ds, &sregs.es,
					      &sregs.ss, &sregs.fs, &sregs.gs };

		/* CS = 0x1000, IP = 0; data and stack in segment 0. */
		for (unsigned i = 0; i < 6; i++) {
			segs[i]->selector = 0;
			segs[i]->base = 0;
		}
		sregs.cs.selector = (uint16_t)(CODE_GPA >> 4);
		sregs.cs.base = CODE_GPA;
		regs.rip = 0;
		regs.rsp = STACK_TOP;
		regs.rflags = 2;
	} else {
		struct linux_entry e = { .rip = CODE_GPA };

		r = linux_setup_vcpu(machine_mem(m), &e, &regs, &sregs);
		if (r < 0)
			return r;
		sregs.idt.base = IDT_GPA;
		sregs.idt.limit = 256 * 16 - 1;
		regs.rsp = STACK_TOP;
	}
	r = hv_vcpu_set_sregs(vcpu, &sregs);
	return r < 0 ? r : hv_vcpu_set_regs(vcpu, &regs);
}

struct watchdog {
	struct machine *m;
	unsigned seconds;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};

static void *watchdog_main(void *opaque)
{
	struct watchdog *w = opaque;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += w->seconds;
	pthread_mutex_lock(&w->lock);
	while (!w->done)
		if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) == ETIMEDOUT)
			break;
	if (!w->done)
		machine_stop(w->m, 0x7fff);	/* "timed out" */
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Runs one guest; returns its exit status, output in @out. */
static int run_guest(bool long_mode, char *out, size_t outlen)
{
	struct guest_prog prog = { .long_mode = long_mode };
	struct machine_boot_hooks hooks = {
		.load = load, .setup_bsp = setup_bsp, .opaque = &prog,
	};
	struct chardev *com1 = chardev_buffer_new();
	struct machine_config cfg = {
		.ram_size = 32ull << 20, .ncpus = 1, .serial = com1,
		.hooks = &hooks,
	};
	struct watchdog w = { .seconds = 60 };
	struct machine *m;
	pthread_t wd;
	char err[256];
	size_t len;
	int status;

	if (machine_create(&cfg, &m, err, sizeof(err)) < 0) {
		fprintf(stderr, "machine_create: %s\n", err);
		chardev_free(com1);
		return -1;
	}
	w.m = m;
	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.cond, NULL);
	pthread_create(&wd, NULL, watchdog_main, &w);
	status = machine_run(m, err, sizeof(err));
	pthread_mutex_lock(&w.lock);
	w.done = true;
	pthread_cond_signal(&w.cond);
	pthread_mutex_unlock(&w.lock);
	pthread_join(wd, NULL);
	if (status < 0)
		fprintf(stderr, "machine_run: %s\n", err);
	snprintf(out, outlen, "%s", chardev_buffer_data(com1, &len));
	machine_destroy(m);
	chardev_free(com1);
	return status;
}

static void test_pic_real_mode(void)
{
	char out[64];
	int status = run_guest(false, out, sizeof(out));

	/* 0x40 | IIR 0x2 (THR empty, no FIFOs). */
	CHECK_EQ(status, 0x42);
	CHECK(strcmp(out, "R") == 0);
}

static void test_ioapic_long_mode(void)
{
	char out[64];
	int status = run_guest(true, out, sizeof(out));

	CHECK_EQ(status, 0x62);
	CHECK(strcmp(out, "L") == 0);
}

int main(void)
{
	if (access("/dev/kvm", R_OK | W_OK) != 0)
		SKIP("/dev/kvm is not accessible: %s", strerror(errno));
	RUN_TEST(test_pic_real_mode);
	RUN_TEST(test_ioapic_long_mode);
	return check_finish();
}
