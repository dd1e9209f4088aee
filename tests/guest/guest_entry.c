/* SPDX-License-Identifier: MIT */
/*
 * tests/guest/guest_entry.c - entering guests: real mode and 64-bit long
 * mode code that computes and reports over port I/O; kicks; register, MSR,
 * MP-state and LAPIC access; whole-vCPU save/restore.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "guestlib.h"

#define OUT_PORT 0x510

/* 6*7+100, sum 1..100, a 32-bit rotate in 16-bit code. */
GUEST_CODE16(real_arith,
	"mov $6, %ax\n"
	"mov $7, %bx\n"
	"mul %bx\n"
	"add $100, %ax\n"
	"mov $0x510, %dx\n"
	"out %ax, %dx\n"
	"xor %ax, %ax\n"
	"mov $100, %cx\n"
	"1: add %cx, %ax\n"
	"loop 1b\n"
	"out %ax, %dx\n"
	"mov $0x12345678, %eax\n"
	"rol $8, %eax\n"
	"out %eax, %dx\n"
	"mov $0x42, %al\n"
	GUEST_EXIT_ASM);

/* x * 17 in r9 (REX.W: decodes as something else outside long mode), in
 * two halves, then its own address found RIP-relative. */
GUEST_CODE64(long_arith,
	"movabs $0x123456789abcdef0, %rax\n"
	"mov %rax, %r9\n"
	"shl $4, %r9\n"
	"add %rax, %r9\n"
	"mov %r9, %rax\n"
	"mov $0x510, %dx\n"
	"out %eax, %dx\n"
	"shr $32, %rax\n"
	"out %eax, %dx\n"
	"lea long_arith(%rip), %rbx\n"
	"mov %ebx, %eax\n"
	"out %eax, %dx\n"
	"mov $7, %al\n"
	GUEST_EXIT_ASM);

GUEST_CODE16(spin, "1: jmp 1b\n");

/* Counts 1, 2, 3 out of port 0x510, then exits with 0x55. */
GUEST_CODE16(counter,
	"mov $0x510, %dx\n"
	"xor %ax, %ax\n"
	"1: inc %ax\n"
	"out %ax, %dx\n"
	"cmp $3, %ax\n"
	"jne 1b\n"
	"mov $0x55, %al\n"
	GUEST_EXIT_ASM);

/* CPUID leaf 1 ECX and the KVM signature's first word, out of 0x510. */
GUEST_CODE16(cpuid_code,
	"mov $1, %eax\n"
	"cpuid\n"
	"mov %ecx, %eax\n"
	"mov $0x510, %dx\n"
	"out %eax, %dx\n"
	"mov $0x40000000, %eax\n"
	"cpuid\n"
	"mov %ebx, %eax\n"
	"mov $0x510, %dx\n"
	"out %eax, %dx\n"
	"mov $0x11, %al\n"
	GUEST_EXIT_ASM);

static struct guest g;
static struct guest_recorder rec;

static void open_with_recorder(void)
{
	CHECK_EQ(guest_open(&g, 2 << 20), 0);
	memset(&rec, 0, sizeof(rec));
	CHECK_EQ(bus_register(g.pio, OUT_PORT, 4, &guest_recorder_ops, &rec),
		 0);
}

static void report(const char *what, const struct guest_stop *st)
{
	char buf[160];

	printf("  %s: %s\n", what, guest_stop_str(st, buf, sizeof(buf)));
}

static void test_real_mode(void)
{
	struct hv_vcpu *v;
	struct guest_stop st;
	struct hv_sregs s;

	open_with_recorder();
	guest_load(&g, GUEST_CODE_GPA, real_arith, real_arith_end - real_arith);
	CHECK_EQ(guest_vcpu(&g, 0, 1, &v), 0);
	CHECK_EQ(guest_setup_real_mode(v, GUEST_CODE_GPA >> 4, 0, 0xfff0), 0);
	CHECK_EQ(guest_run(&g, v, 60, &st), GUEST_STOP_EXIT_PORT);
	report("real mode", &st);
	CHECK_EQ(st.value, 0x42);
	CHECK_EQ(rec.n, 3);
	CHECK(rec.log[0].is_write && rec.log[0].size == 2);
	CHECK_EQ(rec.log[0].value, 142);
	CHECK_EQ(rec.log[1].value, 5050);
	CHECK_EQ(rec.log[2].size, 4);
	CHECK_EQ(rec.log[2].value, 0x34567812);
	CHECK_EQ(hv_vcpu_get_sregs(v, &s), 0);
	CHECK_EQ(s.cr0 & 1, 0);			/* still real mode */
	CHECK_EQ(s.cs.selector, GUEST_CODE_GPA >> 4);
	hv_vcpu_destroy(v);
	guest_close(&g);
}

static void test_long_mode(void)
{
	const uint64_t x = 0x123456789abcdef0ull, want = x * 17;
	struct hv_vcpu *v;
	struct guest_stop st;
	struct hv_sregs s;
	struct hv_regs r;

	open_with_recorder();
	guest_load(&g, GUEST_CODE_GPA, long_arith, long_arith_end - long_arith);
	CHECK_EQ(guest_vcpu(&g, 0, 1, &v), 0);
	CHECK_EQ(guest_setup_long_mode(&g, v, GUEST_CODE_GPA, 0x80000), 0);
	CHECK_EQ(guest_run(&g, v, 60, &st), GUEST_STOP_EXIT_PORT);
	report("long mode", &st);
	CHECK_EQ(st.value, 7);
	CHECK_EQ(rec.n, 3);
	CHECK_EQ(rec.log[0].value, (uint32_t)want);
	CHECK_EQ(rec.log[1].value, (uint32_t)(want >> 32));
	CHECK_EQ(rec.log[2].value, GUEST_CODE_GPA);
	CHECK_EQ(hv_vcpu_get_regs(v, &r), 0);
	CHECK_EQ(r.r9, want);
	CHECK_EQ(hv_vcpu_get_sregs(v, &s), 0);
	CHECK(s.efer & (1u << 10));		/* EFER.LMA */
	CHECK_EQ(s.cs.l, 1);
	CHECK(s.cr0 & 0x80000000u);
	hv_vcpu_destroy(v);
	guest_close(&g);
}

struct kicker {
	struct hv_vcpu *v;
	unsigned delay_ms;
};

static void *kick_later(void *p)
{
	struct kicker *k = p;

	usleep(k->delay_ms * 1000);
	hv_vcpu_kick(k->v);
	return NULL;
}

static void test_kick(void)
{
	struct hv_vcpu *v;
	struct hv_exit e;
	struct guest_stop st;
	struct kicker k;
	pthread_t t;
	double t0, dt;

	CHECK_EQ(guest_open(&g, 2 << 20), 0);
	guest_load(&g, GUEST_CODE_GPA, spin, spin_end - spin);
	CHECK_EQ(guest_vcpu(&g, 0, 1, &v), 0);
	CHECK_EQ(guest_setup_real_mode(v, GUEST_CODE_GPA >> 4, 0, 0xfff0), 0);

	/* A kick before the run: it returns at once. */
	hv_vcpu_kick(v);
	t0 = guest_now();
	CHECK_EQ(hv_vcpu_run(v, &e), 0);
	CHECK_EQ(e.kind, HV_EXIT_INTR);
	CHECK(guest_now() - t0 < 0.5);

	/* A kick from another thread stops a spinning guest. */
	k = (struct kicker){ v, 200 };
	pthread_create(&t, NULL, kick_later, &k);
	t0 = guest_now();
	CHECK_EQ(hv_vcpu_run(v, &e), 0);
	dt = guest_now() - t0;
	pthread_join(t, NULL);
	CHECK_EQ(e.kind, HV_EXIT_INTR);
	CHECK(dt > 0.15);	/* it really ran until the kick */
	printf("  kick from another thread: back after %.3f s\n", dt);

	/* guest_run's watchdog is a kick too. */
	CHECK_EQ(guest_run(&g, v, 0.3, &st), GUEST_STOP_TIMEOUT);
	report("spin with a 0.3 s limit", &st);
	hv_vcpu_destroy(v);
	guest_close(&g);
}

static void test_state_access(void)
{
	uint8_t lapic[HV_LAPIC_SIZE];
	enum hv_mp_state mp;
	struct hv_vcpu *v, *ap;
	struct hv_regs r, r2;
	uint64_t val = 0;

	CHECK_EQ(guest_open(&g, 2 << 20), 0);
	CHECK_EQ(guest_vcpu(&g, 0, 2, &v), 0);
	CHECK_EQ(guest_vcpu(&g, 1, 2, &ap), 0);
	CHECK_EQ(hv_vcpu_id(ap), 1);

	CHECK_EQ(hv_vcpu_get_regs(v, &r), 0);
	CHECK_EQ(r.rip, 0xfff0);		/* the reset vector */
	r.rax = 0x1111222233334444ull;
	r.r15 = 0x5555;
	CHECK_EQ(hv_vcpu_set_regs(v, &r), 0);
	CHECK_EQ(hv_vcpu_get_regs(v, &r2), 0);
	CHECK(!memcmp(&r, &r2, sizeof(r)));

	CHECK_EQ(hv_vcpu_set_msr(v, 0xc0000102, 0xffff888012345678ull), 0);
	CHECK_EQ(hv_vcpu_get_msr(v, 0xc0000102, &val), 0); /* KERNEL_GS_BASE, canonical */
	CHECK_EQ(val, 0xffff888012345678ull);
	CHECK(hv_vcpu_get_msr(v, 0x10, &val) == 0 && val != 0);	/* TSC */
	CHECK(hv_vcpu_get_msr(v, 0xdeadbeef, &val) < 0);

	CHECK_EQ(hv_vcpu_get_mp_state(v, &mp), 0);
	CHECK_EQ(mp, HV_MP_RUNNABLE);
	CHECK_EQ(hv_vcpu_get_mp_state(ap, &mp), 0);
	CHECK_EQ(mp, HV_MP_UNINITIALIZED);	/* waits for INIT/SIPI */
	CHECK_EQ(hv_vcpu_set_mp_state(ap, (enum hv_mp_state)77), -EINVAL);

	CHECK_EQ(hv_vcpu_get_lapic(ap, lapic), 0);
	CHECK_EQ(lapic[0x23], 1);		/* APIC ID register, [31:24] */
	CHECK(lapic[0x30] != 0);		/* version */
	lapic[0x80] = 0x20;			/* TPR */
	CHECK_EQ(hv_vcpu_set_lapic(ap, lapic), 0);
	memset(lapic, 0, sizeof(lapic));
	CHECK_EQ(hv_vcpu_get_lapic(ap, lapic), 0);
	CHECK_EQ(lapic[0x80], 0x20);
	hv_vcpu_destroy(ap);
	hv_vcpu_destroy(v);
	guest_close(&g);
}

/* Run until the next write to OUT_PORT; returns its value or -1. */
static long next_out(struct hv_vcpu *v)
{
	struct hv_exit e;

	for (;;) {
		if (hv_vcpu_run(v, &e) < 0)
			return -1;
		if (e.kind == HV_EXIT_INTR)
			continue;
		if (e.kind != HV_EXIT_IO || !e.io.is_write)
			return -1;
		if (e.io.port == GUEST_EXIT_PORT)
			return 0x1000 | e.io.data[0];
		if (e.io.port == OUT_PORT)
			return e.io.data[0] | (e.io.data[1] << 8);
	}
}

static void test_save_restore(void)
{
	struct hv_vcpu *v;
	struct hv_regs r;
	void *blob = NULL;
	size_t len = 0;
	double t0;

	CHECK_EQ(guest_open(&g, 2 << 20), 0);
	guest_load(&g, GUEST_CODE_GPA, counter, counter_end - counter);
	CHECK_EQ(guest_vcpu(&g, 0, 1, &v), 0);
	CHECK_EQ(guest_setup_real_mode(v, GUEST_CODE_GPA >> 4, 0, 0xfff0), 0);
	CHECK_EQ(next_out(v), 1);
	t0 = guest_now();
	CHECK_EQ(hv_vcpu_save(v, &blob, &len), 0);
	printf("  saved vCPU: %zu bytes in %.3f ms\n", len,
	       (guest_now() - t0) * 1e3);
	CHECK_EQ(next_out(v), 2);
	CHECK_EQ(next_out(v), 3);
	CHECK_EQ(hv_vcpu_restore(v, blob, len), 0);
	CHECK_EQ(hv_vcpu_get_regs(v, &r), 0);
	CHECK_EQ(r.rax & 0xffff, 1);
	/* Back in time: 2 and 3 again, then the exit. */
	CHECK_EQ(next_out(v), 2);
	CHECK_EQ(next_out(v), 3);
	CHECK_EQ(next_out(v), 0x1055);
	free(blob);
	hv_vcpu_destroy(v);
	guest_close(&g);
}

static void test_malformed_blobs(void)
{
	struct hv_vcpu *v;
	struct hv_regs before, after;
	uint8_t *blob = NULL, *bad;
	size_t len = 0;
	uint32_t u32;
	unsigned rejected = 0, tries = 0;

	CHECK_EQ(guest_open(&g, 2 << 20), 0);
	CHECK_EQ(guest_vcpu(&g, 0, 1, &v), 0);
	CHECK_EQ(hv_vcpu_save(v, (void **)&blob, &len), 0);
	CHECK(len > 4096);
	bad = malloc(len + 64);
	CHECK_EQ(hv_vcpu_get_regs(v, &before), 0);
	before.rax = 0xabcdef;
	CHECK_EQ(hv_vcpu_set_regs(v, &before), 0);

	CHECK_EQ(hv_vcpu_restore(v, NULL, 0), -EINVAL);
	CHECK_EQ(hv_vcpu_restore(v, blob, 8), -EINVAL);
	CHECK_EQ(hv_vcpu_restore(v, blob, len - 1), -EINVAL);
	memcpy(bad, blob, len);
	memset(bad + len, 0, 64);
	CHECK_EQ(hv_vcpu_restore(v, bad, len + 8), -EINVAL);
	bad[0] ^= 1;					/* magic */
	CHECK_EQ(hv_vcpu_restore(v, bad, len), -EINVAL);
	memcpy(bad, blob, len);
	bad[4] = 2;					/* version */
	CHECK_EQ(hv_vcpu_restore(v, bad, len), -EINVAL);
	memcpy(bad, blob, len);
	bad[6]++;					/* nsections */
	CHECK_EQ(hv_vcpu_restore(v, bad, len), -EINVAL);
	memcpy(bad, blob, len);
	u32 = 0xffffffff;				/* section 1 len */
	memcpy(bad + 16 + 4, &u32, 4);
	CHECK_EQ(hv_vcpu_restore(v, bad, len), -EINVAL);
	memcpy(bad, blob, len);
	u32 = 99;					/* section type */
	memcpy(bad + 16, &u32, 4);
	CHECK_EQ(hv_vcpu_restore(v, bad, len), -EINVAL);
	memcpy(bad, blob, len);
	u32 = 0;
	memcpy(bad + 16, &u32, 4);
	CHECK_EQ(hv_vcpu_restore(v, bad, len), -EINVAL);

	/* Every truncation, with total_len patched to agree, is refused. */
	for (size_t k = 16; k < len; k += 8) {
		memcpy(bad, blob, k);
		u32 = (uint32_t)k;
		memcpy(bad + 8, &u32, 4);
		tries++;
		rejected += hv_vcpu_restore(v, bad, k) == -EINVAL;
	}
	CHECK_EQ(rejected, tries);

	/* Nothing reached the vCPU. */
	CHECK_EQ(hv_vcpu_get_regs(v, &after), 0);
	CHECK_EQ(after.rax, 0xabcdef);
	/* And the intact blob still loads. */
	CHECK_EQ(hv_vcpu_restore(v, blob, len), 0);
	CHECK_EQ(hv_vcpu_get_regs(v, &after), 0);
	CHECK(after.rax != 0xabcdef);
	free(bad);
	free(blob);
	hv_vcpu_destroy(v);
	guest_close(&g);
}

/* Leaf 1 ECX and leaf 0x40000000 EBX as the guest sees them under
 * @model. */
static void guest_cpuid(const char *model, uint32_t *ecx, uint32_t *kvm)
{
	struct hv_vcpu *v;
	struct guest_stop st;

	open_with_recorder();
	guest_load(&g, GUEST_CODE_GPA, cpuid_code, cpuid_code_end - cpuid_code);
	CHECK_EQ(hv_vcpu_create(g.vm, 0, hv_cpu_model_find(model), 1, &v), 0);
	CHECK_EQ(guest_setup_real_mode(v, GUEST_CODE_GPA >> 4, 0, 0xfff0), 0);
	CHECK_EQ(guest_run(&g, v, 60, &st), GUEST_STOP_EXIT_PORT);
	CHECK_EQ(rec.n, 2);
	*ecx = (uint32_t)rec.log[0].value;
	*kvm = (uint32_t)rec.log[1].value;
	hv_vcpu_destroy(v);
	guest_close(&g);
}

static void test_cpu_models(void)
{
	const uint32_t cx16 = 1u << 13, x2apic = 1u << 21, hv = 1u << 31;
	const uint32_t xsave = 1u << 26;
	uint32_t host, compat, nox2apic, sig;
	struct hv_host_report hr;

	guest_cpuid("host", &host, &sig);
	CHECK_EQ(sig, 0x4b4d564b);		/* "KVMK": paravirt leaves */
	CHECK(host & hv);
	guest_cpuid("compat", &compat, &sig);
	CHECK_EQ(sig, 0x4b4d564b);
	CHECK_EQ(compat & cx16, 0);
	/* kvm_pvm rewrites leaf 1 ECX/EDX and leaf 7 on KVM_SET_CPUID2 to
	 * the host features its guests can execute natively (xsave, avx
	 * ...), whatever the table said; it honours cx16 and x2apic. */
	hv_host_probe("", NULL, &hr);
	if (hr.backend == HV_BACKEND_EMULATED && (compat & xsave))
		printf("  note: %s keeps xsave visible despite the model\n",
		       hr.kvm_module);
	else
		CHECK_EQ(compat & xsave, 0);
	CHECK_EQ(compat & ~host, 0);		/* hides, never adds */
	guest_cpuid("nox2apic", &nox2apic, &sig);
	CHECK_EQ(nox2apic & x2apic, 0);
	CHECK_EQ(nox2apic | x2apic, host | x2apic);
	printf("  leaf 1 ECX: host %08x, compat %08x, nox2apic %08x\n",
	       host, compat, nox2apic);
}

int main(void)
{
	double t0 = guest_now();

	RUN_TEST(test_real_mode);
	RUN_TEST(test_long_mode);
	RUN_TEST(test_cpu_models);
	RUN_TEST(test_kick);
	RUN_TEST(test_state_access);
	RUN_TEST(test_save_restore);
	RUN_TEST(test_malformed_blobs);
	printf("guest_entry: %.3f s in all\n", guest_now() - t0);
	return check_finish();
}
