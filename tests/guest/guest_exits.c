/* SPDX-License-Identifier: MIT */
/*
 * tests/guest/guest_exits.c - port I/O and MMIO exits reach devices on the
 * vmm-core buses at the right offset, with the right size and data, string
 * I/O included; unclaimed reads return all-ones; a level-triggered MSI
 * reaches the guest and its EOI comes back as HV_EXIT_EOI.
 */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "guestlib.h"

#define DEV_PORT 0x600		/* recorder, 16 ports */
#define ECHO_PORT 0x620		/* the guest reports what it read here */
#define HOLE_PORT 0x700		/* nobody */
#define DEV_MMIO 0xd0000000ull	/* recorder, 4 KiB, in the PCI hole */
#define HOLE_MMIO 0xd1000000ull	/* nobody */

/* What the recorder returns: distinct per offset and size. */
static uint64_t reply(uint64_t offset, unsigned size)
{
	return 0x0706050403020100ull + offset * 0x1111111111111111ull + size;
}

static uint64_t mask(unsigned size)
{
	return size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
}

/* Real mode, DS = ES = CS: writes of 1/2/4 bytes, reads of 1/2/4 bytes
 * echoed back, rep outsb, rep insw into memory, reads of a hole. */
GUEST_CODE16(pio_code,
	"mov $0x600, %dx\n"
	"mov $0x11, %al\n"
	"out %al, %dx\n"
	"mov $0x602, %dx\n"
	"mov $0x2233, %ax\n"
	"out %ax, %dx\n"
	"mov $0x604, %dx\n"
	"mov $0x44556677, %eax\n"
	"out %eax, %dx\n"
	/* reads, each echoed to 0x620 */
	"mov $0x608, %dx\n"
	"in %dx, %al\n"
	"mov $0x620, %dx\n"
	"out %al, %dx\n"
	"mov $0x60a, %dx\n"
	"in %dx, %ax\n"
	"mov $0x620, %dx\n"
	"out %ax, %dx\n"
	"mov $0x60c, %dx\n"
	"in %dx, %eax\n"
	"mov $0x620, %dx\n"
	"out %eax, %dx\n"
	/* string I/O */
	"cld\n"
	"mov $(pio_msg - pio_code), %si\n"
	"mov $5, %cx\n"
	"mov $0x60e, %dx\n"
	"rep outsb\n"
	"mov $(pio_buf - pio_code), %di\n"
	"mov $3, %cx\n"
	"mov $0x606, %dx\n"
	"rep insw\n"
	/* unclaimed */
	"mov $0x700, %dx\n"
	"in %dx, %al\n"
	"mov $0x620, %dx\n"
	"out %al, %dx\n"
	"mov $0x700, %dx\n"
	"in %dx, %ax\n"
	"mov $0x620, %dx\n"
	"out %ax, %dx\n"
	"mov $0x700, %dx\n"
	"in %dx, %eax\n"
	"mov $0x620, %dx\n"
	"out %eax, %dx\n"
	"mov $0x99, %al\n"
	GUEST_EXIT_ASM
	"pio_msg: .ascii \"hello\"\n"
	".balign 2\n"
	"pio_buf: .fill 8, 1, 0xcc\n");

/* 64-bit: MMIO writes and reads of 1/2/4/8 bytes, echoed, and a hole. */
GUEST_CODE64(mmio_code,
	"movabs $0xd0000000, %rbx\n"
	"movb $0x5a, 0x10(%rbx)\n"
	"movw $0x1234, 0x20(%rbx)\n"
	"movl $0x89abcdef, 0x30(%rbx)\n"
	"movabs $0x1122334455667788, %rax\n"
	"mov %rax, 0x40(%rbx)\n"
	"mov $0x620, %dx\n"
	"movzbl 0x50(%rbx), %eax\n"
	"out %eax, %dx\n"
	"movzwl 0x60(%rbx), %eax\n"
	"out %eax, %dx\n"
	"movl 0x70(%rbx), %eax\n"
	"out %eax, %dx\n"
	"mov 0x80(%rbx), %rax\n"
	"out %eax, %dx\n"
	"shr $32, %rax\n"
	"out %eax, %dx\n"
	"movabs $0xd1000000, %rbx\n"
	"movl (%rbx), %eax\n"
	"out %eax, %dx\n"
	"mov $0x98, %al\n"
	GUEST_EXIT_ASM);

/*
 * 64-bit: enable the local APIC, say "ready" (the host then signals a
 * level-triggered MSI, vector 0x40), take it, EOI it.  The handler leaves
 * 0x42 in r12 for the waiting loop.
 */
GUEST_CODE64(msi_code,
	"movabs $0xfee00000, %rbx\n"
	"movl $0x1ff, 0xf0(%rbx)\n"		/* SVR: enabled, vector 0xff */
	"xor %r12, %r12\n"
	"mov $0x620, %dx\n"
	"mov $1, %eax\n"
	"out %eax, %dx\n"			/* ready */
	"sti\n"
	"1: cmp $0x42, %r12\n"
	"jne 1b\n"
	"cli\n"
	"mov $0x97, %al\n"
	GUEST_EXIT_ASM
	".globl msi_handler\n"
	"msi_handler:\n"
	"mov $0x620, %dx\n"
	"mov $2, %eax\n"
	"out %eax, %dx\n"			/* in the handler */
	"movl $0, 0xb0(%rbx)\n"		/* EOI */
	"mov $0x42, %r12\n"
	"iretq\n");
extern const uint8_t msi_handler[];

static struct guest g;
static struct guest_recorder dev, echo;

static void setup(void)
{
	CHECK_EQ(guest_open(&g, 2 << 20), 0);
	memset(&dev, 0, sizeof(dev));
	memset(&echo, 0, sizeof(echo));
	dev.reply = reply;
	CHECK_EQ(bus_register(g.pio, DEV_PORT, 16, &guest_recorder_ops, &dev),
		 0);
	CHECK_EQ(bus_register(g.pio, ECHO_PORT, 4, &guest_recorder_ops,
			      &echo), 0);
	CHECK_EQ(bus_register(g.mmio, DEV_MMIO, 4096, &guest_recorder_ops,
			      &dev), 0);
}

static void check_access(const struct guest_access *a, bool is_write,
			 uint64_t offset, unsigned size, uint64_t value)
{
	CHECK_EQ(a->is_write, is_write);
	CHECK_EQ(a->offset, offset);
	CHECK_EQ(a->size, size);
	CHECK_EQ(a->value, value);
}

static void test_port_io(void)
{
	struct hv_vcpu *v;
	struct guest_stop st;
	char why[160];
	const uint8_t *buf;
	unsigned i = 0;

	setup();
	guest_load(&g, GUEST_CODE_GPA, pio_code, pio_code_end - pio_code);
	CHECK_EQ(guest_vcpu(&g, 0, 1, &v), 0);
	CHECK_EQ(guest_setup_real_mode(v, GUEST_CODE_GPA >> 4, 0, 0xfff0), 0);
	CHECK_EQ(guest_run(&g, v, 60, &st), GUEST_STOP_EXIT_PORT);
	printf("  port I/O guest: %s\n", guest_stop_str(&st, why, sizeof(why)));
	CHECK_EQ(st.value, 0x99);

	/* 3 writes, 3 reads, 5 string writes, 3 string reads. */
	CHECK_EQ(dev.n, 14);
	check_access(&dev.log[i++], true, 0, 1, 0x11);
	check_access(&dev.log[i++], true, 2, 2, 0x2233);
	check_access(&dev.log[i++], true, 4, 4, 0x44556677);
	check_access(&dev.log[i++], false, 8, 1, reply(8, 1) & 0xff);
	check_access(&dev.log[i++], false, 0xa, 2, reply(0xa, 2) & 0xffff);
	check_access(&dev.log[i++], false, 0xc, 4,
		     reply(0xc, 4) & 0xffffffff);
	for (const char *c = "hello"; *c; c++)
		check_access(&dev.log[i++], true, 0xe, 1, (uint8_t)*c);
	for (unsigned k = 0; k < 3; k++)
		check_access(&dev.log[i++], false, 6, 2, reply(6, 2) & 0xffff);

	/* The guest saw what the device answered... */
	CHECK_EQ(echo.n, 6);
	check_access(&echo.log[0], true, 0, 1, reply(8, 1) & 0xff);
	check_access(&echo.log[1], true, 0, 2, reply(0xa, 2) & 0xffff);
	check_access(&echo.log[2], true, 0, 4, reply(0xc, 4) & 0xffffffff);
	/* ...and all-ones where nobody answers. */
	check_access(&echo.log[3], true, 0, 1, 0xff);
	check_access(&echo.log[4], true, 0, 2, 0xffff);
	check_access(&echo.log[5], true, 0, 4, 0xffffffff);

	/* rep insw stored the three words in guest memory (pio_buf: the
	 * code's last 8 bytes). */
	buf = guest_ptr(&g, GUEST_CODE_GPA + (pio_code_end - pio_code) - 8, 8);
	CHECK(buf != NULL);
	if (buf) {
		uint16_t w = (uint16_t)reply(6, 2);

		for (unsigned k = 0; k < 3; k++)
			CHECK_EQ(buf[2 * k] | (buf[2 * k + 1] << 8), w);
		CHECK_EQ(buf[6], 0xcc);		/* and no more */
	}
	hv_vcpu_destroy(v);
	guest_close(&g);
}

static void test_mmio(void)
{
	struct hv_vcpu *v;
	struct guest_stop st;
	char why[160];
	unsigned i = 0;

	setup();
	guest_load(&g, GUEST_CODE_GPA, mmio_code, mmio_code_end - mmio_code);
	CHECK_EQ(guest_vcpu(&g, 0, 1, &v), 0);
	CHECK_EQ(guest_setup_long_mode(&g, v, GUEST_CODE_GPA, 0x80000), 0);
	CHECK_EQ(guest_run(&g, v, 60, &st), GUEST_STOP_EXIT_PORT);
	printf("  MMIO guest: %s\n", guest_stop_str(&st, why, sizeof(why)));
	CHECK_EQ(st.value, 0x98);

	CHECK_EQ(dev.n, 8);
	check_access(&dev.log[i++], true, 0x10, 1, 0x5a);
	check_access(&dev.log[i++], true, 0x20, 2, 0x1234);
	check_access(&dev.log[i++], true, 0x30, 4, 0x89abcdef);
	check_access(&dev.log[i++], true, 0x40, 8, 0x1122334455667788ull);
	check_access(&dev.log[i++], false, 0x50, 1, reply(0x50, 1) & mask(1));
	check_access(&dev.log[i++], false, 0x60, 2, reply(0x60, 2) & mask(2));
	check_access(&dev.log[i++], false, 0x70, 4, reply(0x70, 4) & mask(4));
	check_access(&dev.log[i++], false, 0x80, 8, reply(0x80, 8));

	CHECK_EQ(echo.n, 6);
	CHECK_EQ(echo.log[0].value, reply(0x50, 1) & mask(1));
	CHECK_EQ(echo.log[1].value, reply(0x60, 2) & mask(2));
	CHECK_EQ(echo.log[2].value, reply(0x70, 4) & mask(4));
	CHECK_EQ(echo.log[3].value, reply(0x80, 8) & mask(4));
	CHECK_EQ(echo.log[4].value, reply(0x80, 8) >> 32);
	CHECK_EQ(echo.log[5].value, 0xffffffff);	/* the MMIO hole */
	hv_vcpu_destroy(v);
	guest_close(&g);
}

#define MSI_VECTOR 0x40
#define MSI_ADDR 0xfee00000ull			/* APIC ID 0, physical */
#define MSI_DATA (0xc000 | MSI_VECTOR)		/* level, assert, fixed */
#define IDT_GPA 0x9000

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

static void test_msi_and_eoi_exit(void)
{
	const struct hv_msi_route route = { 5, MSI_ADDR, MSI_DATA };
	struct hv_vcpu *v;
	struct hv_sregs s;
	struct hv_exit e;
	int delivered = -1, eois = 0, eoi_vector = -1, exit_value = -1;
	unsigned markers = 0;
	double t0;

	setup();
	guest_load(&g, GUEST_CODE_GPA, msi_code, msi_code_end - msi_code);
	set_gate(MSI_VECTOR, GUEST_CODE_GPA + (msi_handler - msi_code));
	CHECK_EQ(guest_vcpu(&g, 0, 1, &v), 0);
	CHECK_EQ(guest_setup_long_mode(&g, v, GUEST_CODE_GPA, 0x80000), 0);
	CHECK_EQ(hv_vcpu_get_sregs(v, &s), 0);
	s.idt = (struct hv_dtable){ IDT_GPA, MSI_VECTOR * 16 + 15 };
	CHECK_EQ(hv_vcpu_set_sregs(v, &s), 0);
	/* A level-triggered route is what makes KVM exit on its EOI. */
	CHECK_EQ(hv_vm_set_msi_routes(g.vm, &route, 1), 0);
	CHECK_EQ(hv_vm_set_msi_routes(g.vm, &(struct hv_msi_route){
			hv_vm_gsi_count(g.vm), MSI_ADDR, MSI_DATA }, 1), -EINVAL);

	t0 = guest_now();
	while (exit_value < 0 && guest_now() - t0 < 60) {
		if (hv_vcpu_run(v, &e) < 0)
			break;
		if (e.kind == HV_EXIT_IO && e.io.port == GUEST_EXIT_PORT) {
			exit_value = e.io.data[0];
		} else if (e.kind == HV_EXIT_IO && e.io.port == ECHO_PORT) {
			markers = markers * 10 + e.io.data[0];
			if (e.io.data[0] == 1)
				delivered = hv_vm_signal_msi(g.vm, MSI_ADDR,
							     MSI_DATA);
		} else if (e.kind == HV_EXIT_EOI) {
			eois++;
			eoi_vector = e.eoi.vector;
		} else if (e.kind != HV_EXIT_INTR) {
			break;
		}
	}
	printf("  MSI guest: %.3f s\n", guest_now() - t0);
	CHECK_EQ(exit_value, 0x97);
	CHECK_EQ(delivered, 1);
	CHECK_EQ(markers, 12);		/* ready, then the handler */
	CHECK_EQ(eois, 1);
	CHECK_EQ(eoi_vector, MSI_VECTOR);
	hv_vcpu_destroy(v);
	guest_close(&g);
}

int main(void)
{
	double t0 = guest_now();

	RUN_TEST(test_port_io);
	RUN_TEST(test_mmio);
	RUN_TEST(test_msi_and_eoi_exit);
	printf("guest_exits: %.3f s in all\n", guest_now() - t0);
	return check_finish();
}
