/* SPDX-License-Identifier: MIT */
/*
 * tests/guest/guest_smp.c - bringing up 4 vCPUs the way firmware does: the
 * BSP, in real mode, sends INIT-SIPI-SIPI to each AP through its local
 * APIC's ICR (MMIO 0xfee00300/0xfee00310, handled by KVM's in-kernel LAPIC;
 * Intel SDM vol. 3 §8.4.4 "MP Initialization Example", §11.6.1 ICR).
 * Each AP starts at the trampoline page the SIPI vector names and reports
 * its APIC ID (from CPUID leaf 1, which hostdrv programs) and its CS.
 * Every vCPU runs on its own thread and ends by writing the exit port.
 */
#include <string.h>

#include "check.h"
#include "guestlib.h"

#define NCPUS 4
#define REPORT_PORT 0x510	/* +0: APIC ID, +2: CS */
#define TRAMPOLINE_GPA 0x8000	/* SIPI vector 0x08 */
#define LAPIC_GPA 0xfee00000ull

/*
 * BSP, real mode.  FS's hidden base is set to the LAPIC page by the host,
 * so %fs:0x300 is the ICR in 16-bit code.
 */
GUEST_CODE16(bsp_code,
	"mov %fs:0x20, %eax\n"		/* LAPIC ID register */
	"shr $24, %eax\n"
	"mov $0x510, %dx\n"
	"out %ax, %dx\n"
	"mov $1, %ecx\n"
	"1: mov %ecx, %eax\n"
	"shl $24, %eax\n"			/* destination APIC ID */
	"mov %eax, %fs:0x310\n"
	"movl $0x00004500, %fs:0x300\n"	/* INIT, level assert */
	"mov %eax, %fs:0x310\n"
	"movl $0x00004608, %fs:0x300\n"	/* SIPI, vector 0x08 */
	"mov %eax, %fs:0x310\n"
	"movl $0x00004608, %fs:0x300\n"	/* and the second SIPI */
	"inc %ecx\n"
	"cmp $4, %ecx\n"
	"jne 1b\n"
	"xor %al, %al\n"
	GUEST_EXIT_ASM);

/* AP, real mode at 0800:0000. */
GUEST_CODE16(ap_code,
	"mov $1, %eax\n"
	"cpuid\n"
	"shr $24, %ebx\n"
	"mov %bx, %ax\n"
	"mov $0x510, %dx\n"
	"out %ax, %dx\n"
	"mov %cs, %ax\n"
	"mov $0x512, %dx\n"
	"out %ax, %dx\n"
	"mov $0xa0, %al\n"
	GUEST_EXIT_ASM);

static struct guest g;
static struct guest_recorder rec;
static pthread_barrier_t created, finished;

struct cpu {
	unsigned id;
	pthread_t thread;
	int err;
	struct guest_stop st;
	uint8_t lapic_id;
	enum hv_mp_state mp;	/* after the run, for failure reports */
	struct hv_regs regs;
};

static int setup_bsp(struct hv_vcpu *v)
{
	struct hv_sregs s;
	int r = guest_setup_real_mode(v, GUEST_CODE_GPA >> 4, 0, 0xfff0);

	if (r < 0)
		return r;
	r = hv_vcpu_get_sregs(v, &s);
	if (r < 0)
		return r;
	/* Real mode with a hidden FS base: what firmware gets with
	 * "unreal mode", without its ceremony. */
	s.fs.base = LAPIC_GPA;
	s.fs.limit = 0xffff;
	return hv_vcpu_set_sregs(v, &s);
}

static void *cpu_main(void *p)
{
	struct cpu *c = p;
	struct hv_vcpu *v = NULL;
	uint8_t lapic[HV_LAPIC_SIZE];

	c->err = guest_vcpu(&g, c->id, NCPUS, &v);
	/* No INIT may be sent before every AP exists. */
	pthread_barrier_wait(&created);
	if (c->err < 0)
		return NULL;
	if (c->id == 0)
		c->err = setup_bsp(v);
	if (c->err == 0)
		guest_run(&g, v, 60, &c->st);
	if (hv_vcpu_get_lapic(v, lapic) == 0)
		c->lapic_id = lapic[0x23];
	hv_vcpu_get_mp_state(v, &c->mp);
	hv_vcpu_get_regs(v, &c->regs);
	pthread_barrier_wait(&finished);
	hv_vcpu_destroy(v);
	return NULL;
}

static void test_init_sipi_sipi(void)
{
	struct cpu cpus[NCPUS];
	unsigned seen[NCPUS] = { 0 }, ids = 0, css = 0;
	double t0;

	CHECK_EQ(guest_open(&g, 2 << 20), 0);
	memset(&rec, 0, sizeof(rec));
	CHECK_EQ(bus_register(g.pio, REPORT_PORT, 4, &guest_recorder_ops,
			      &rec), 0);
	guest_load(&g, GUEST_CODE_GPA, bsp_code, bsp_code_end - bsp_code);
	guest_load(&g, TRAMPOLINE_GPA, ap_code, ap_code_end - ap_code);
	pthread_barrier_init(&created, NULL, NCPUS);
	pthread_barrier_init(&finished, NULL, NCPUS);

	t0 = guest_now();
	for (unsigned i = 0; i < NCPUS; i++) {
		cpus[i] = (struct cpu){ .id = i };
		pthread_create(&cpus[i].thread, NULL, cpu_main, &cpus[i]);
	}
	for (unsigned i = 0; i < NCPUS; i++)
		pthread_join(cpus[i].thread, NULL);
	printf("  %d vCPUs up and reported in %.3f s\n", NCPUS,
	       guest_now() - t0);

	for (unsigned i = 0; i < NCPUS; i++) {
		char why[160];

		printf("  vCPU %u: %s\n", i,
		       guest_stop_str(&cpus[i].st, why, sizeof(why)));
		if (cpus[i].st.how != GUEST_STOP_EXIT_PORT)
			printf("    mp_state %d, rip 0x%llx\n", cpus[i].mp,
			       (unsigned long long)cpus[i].regs.rip);
		CHECK_EQ(cpus[i].err, 0);
		CHECK_EQ(cpus[i].st.how, GUEST_STOP_EXIT_PORT);
		CHECK_EQ(cpus[i].st.value, i == 0 ? 0 : 0xa0);
		CHECK_EQ(cpus[i].lapic_id, i);
	}
	for (unsigned i = 0; i < rec.n; i++) {
		const struct guest_access *a = &rec.log[i];

		CHECK(a->is_write && a->size == 2);
		if (a->offset == 0) {
			ids++;
			if (a->value < NCPUS)
				seen[a->value]++;
		} else if (a->offset == 2) {
			css++;
			CHECK_EQ(a->value, TRAMPOLINE_GPA >> 4);
		}
	}
	CHECK_EQ(ids, NCPUS);
	CHECK_EQ(css, NCPUS - 1);
	for (unsigned i = 0; i < NCPUS; i++)
		CHECK_EQ(seen[i], 1);
	pthread_barrier_destroy(&created);
	pthread_barrier_destroy(&finished);
	guest_close(&g);
}

int main(void)
{
	RUN_TEST(test_init_sipi_sipi);
	return check_finish();
}
