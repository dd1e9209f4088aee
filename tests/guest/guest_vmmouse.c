/* SPDX-License-Identifier: MIT */
/*
 * The vmmouse backdoor end to end through KVM: a tiny real-mode guest on
 * the whole machine does what Linux's psmouse vmmouse protocol does —
 * `in %dx, %eax` on port 0x5658 with the magic in EAX and the command in
 * ECX: GETVERSION (EBX must come back as the magic), PS/2 reporting on,
 * ENABLE, STATUS, DATA 1 (the version word), REQUEST_ABSOLUTE — then waits
 * for the PS/2 mouse's interrupt-driving packet that a host pointer event
 * queues through the console, and reads the packet with STATUS and DATA 4
 * (results in EAX, EBX, ECX, EDX: the register port's KVM_SET_REGS reaching
 * the guest).  A wrong magic must leave the registers alone.  With the
 * vmmouse off, GETVERSION reads all-ones and EBX stays.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "devices/vmmouse.h"
#include "display/console.h"
#include "guestlib.h"
#include "hv.h"
#include "log.h"
#include "machine.h"
#include "mem.h"

#define CODE_GPA	0x10000ull
#define RES_GPA		0x600ull	/* results, DS = 0 */

/* Offsets of what the guest stores at RES_GPA. */
enum {
	R_VER_EAX = 0x00, R_VER_EBX = 0x04, R_VER_ECX = 0x08, R_VER_EDX = 0x0c,
	R_ACK = 0x10, R_ST1 = 0x14, R_VERSION_ID = 0x18, R_READY = 0x1c,
	R_PS2 = 0x20,			/* 3 bytes */
	R_ST4 = 0x24, R_D_EAX = 0x28, R_D_EBX = 0x2c, R_D_ECX = 0x30,
	R_D_EDX = 0x34, R_D_ESI = 0x38, R_D_EDI = 0x3c,
	R_BAD_EAX = 0x40, R_BAD_EBX = 0x44, R_BAD_ECX = 0x48,
	R_ST_END = 0x4c, R_DONE = 0x50, R_SIZE = 0x54,
};

/* The results, copied while the guest's memory exists (teardown frees
 * it): the guest sets R_DONE and spins; the host copies, then stops it. */
static uint8_t got[R_SIZE];

#define MAGIC "$0x564d5868"
#define BACKDOOR(cmd) \
	"mov " MAGIC ", %eax\n mov $" #cmd ", %ecx\n mov $0x5658, %dx\n" \
	"in %dx, %eax\n"

GUEST_CODE16(vmmouse16,
	"xor %ax, %ax\n mov %ax, %ds\n"
	/* vmmouse_detect(): GETVERSION with EBX = ~magic. */
	"mov $0xa9b297a7, %ebx\n"
	BACKDOOR(10)
	"mov %eax, 0x600\n mov %ebx, 0x604\n mov %ecx, 0x608\n mov %edx, 0x60c\n"
	/* psmouse_activate(): 0xd4 0xf4, read the ACK. */
	"mov $0xd4, %al\n out %al, $0x64\n mov $0xf4, %al\n out %al, $0x60\n"
	"1: in $0x64, %al\n test $1, %al\n jz 1b\n"
	"in $0x60, %al\n mov %al, 0x610\n"
	/* vmmouse_enable(). */
	"mov $0x45414552, %ebx\n" BACKDOOR(41)
	BACKDOOR(40) "mov %eax, 0x614\n"
	"mov $1, %ebx\n" BACKDOOR(39) "mov %eax, 0x618\n"
	"mov $1, %ebx\n" BACKDOOR(86)
	"mov $0x53424152, %ebx\n" BACKDOOR(41)
	"movl $1, 0x61c\n"
	/* The PS/2 mouse's packet (OBF and AUXOBF), three bytes. */
	"mov $0x620, %si\n mov $3, %cx\n"
	"2: in $0x64, %al\n and $0x21, %al\n cmp $0x21, %al\n jne 2b\n"
	"in $0x60, %al\n mov %al, (%si)\n inc %si\n loop 2b\n"
	/* vmmouse_report_events(): STATUS, DATA 4. */
	BACKDOOR(40) "mov %eax, 0x624\n"
	"mov $4, %ebx\n mov $0x51515151, %esi\n mov $0xd1d1d1d1, %edi\n"
	BACKDOOR(39)
	"mov %eax, 0x628\n mov %ebx, 0x62c\n mov %ecx, 0x630\n mov %edx, 0x634\n"
	"mov %esi, 0x638\n mov %edi, 0x63c\n"
	/* A wrong magic: all-ones, the rest untouched. */
	"mov $0x12345678, %eax\n mov $0x77, %ebx\n mov $10, %ecx\n"
	"mov $0x5658, %dx\n in %dx, %eax\n"
	"mov %eax, 0x640\n mov %ebx, 0x644\n mov %ecx, 0x648\n"
	BACKDOOR(40) "mov %eax, 0x64c\n"
	"movl $1, 0x650\n"
	"3: jmp 3b\n");

/* Only GETVERSION, for a machine without the vmmouse. */
GUEST_CODE16(detect16,
	"xor %ax, %ax\n mov %ax, %ds\n"
	"mov $0xa9b297a7, %ebx\n"
	BACKDOOR(10)
	"mov %eax, 0x600\n mov %ebx, 0x604\n"
	"movl $1, 0x650\n"
	"3: jmp 3b\n");

struct prog {
	const uint8_t *start, *end;
	int has_vmmouse;	/* seen in the device table at build: 1/0 */
};

static int load(struct machine *m, struct guest_mem *mem, void *opaque)
{
	const struct prog *p = opaque;

	(void)m;
	return guest_mem_write(mem, CODE_GPA, p->start,
			       (size_t)(p->end - p->start));
}

static int add_devices(struct machine *m, void *opaque)
{
	struct prog *p = opaque;
	const struct device_table *t = machine_devices(m);

	p->has_vmmouse = 0;
	for (unsigned i = 0; i < t->n; i++)
		if (!strcmp(t->dev[i].ops->name, "vmmouse"))
			p->has_vmmouse = 1;
	return 0;
}

static int setup_bsp(struct machine *m, struct hv_vcpu *vcpu, void *opaque)
{
	(void)m, (void)opaque;
	return guest_setup_real_mode(vcpu, (uint16_t)(CODE_GPA >> 4), 0, 0x8000);
}

struct runner {
	struct machine *m;
	int status;
	char err[256];
	volatile int done;
};

static void *run_main(void *opaque)
{
	struct runner *r = opaque;

	r->status = machine_run(r->m, r->err, sizeof(r->err));
	r->done = 1;
	return NULL;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static uint32_t live(struct machine *m, unsigned off)
{
	volatile uint32_t *p = gpa_to_hva(machine_mem(m), RES_GPA + off, 4);

	return p ? *p : 0xdeadbeef;
}

static uint32_t res(struct machine *m, unsigned off)
{
	uint32_t v;

	(void)m;
	memcpy(&v, got + off, 4);
	return v;
}

static uint8_t res8(struct machine *m, unsigned off)
{
	(void)m;
	return got[off];
}

/* Wait for R_DONE, copy the results, stop the machine with @status. */
static void finish(struct runner *r, pthread_t t, unsigned wait_ms, int status)
{
	unsigned i;

	memset(got, 0xee, sizeof(got));
	for (i = 0; i < wait_ms / 10 && !r->done && live(r->m, R_DONE) != 1; i++)
		sleep_ms(10);
	if (!r->done && live(r->m, R_DONE) == 1) {
		pthread_mutex_lock(machine_lock(r->m));
		memcpy(got, gpa_to_hva(machine_mem(r->m), RES_GPA, R_SIZE), R_SIZE);
		pthread_mutex_unlock(machine_lock(r->m));
		machine_stop(r->m, status);
	} else {
		fprintf(stderr, "guest did not finish\n");
		machine_stop(r->m, -ETIMEDOUT);
	}
	pthread_join(t, NULL);
	if (r->status < 0)
		fprintf(stderr, "machine_run: %s\n", r->err);
}

static void test_backdoor_through_kvm(void)
{
	struct prog p = { vmmouse16, vmmouse16_end, -1 };
	struct machine_boot_hooks hooks = {
		.load = load, .setup_bsp = setup_bsp, .add_devices = add_devices,
		.opaque = &p,
	};
	struct console *con = console_new();
	struct machine_config cfg = {
		.ram_size = 16ull << 20, .ncpus = 1, .hooks = &hooks,
		.console = con, .no_vga = true,
	};
	struct console_surface s;
	struct runner r = { 0 };
	uint32_t want_x, want_y;
	pthread_t t;
	char err[256];
	unsigned i;

	CHECK(con != NULL);
	if (machine_create(&cfg, &r.m, err, sizeof(err)) < 0) {
		fprintf(stderr, "machine_create: %s\n", err);
		CHECK(0);
		return;
	}
	pthread_create(&t, NULL, run_main, &r);
	/* The guest enabled absolute mode: the console now points with it. */
	for (i = 0; i < 3000 && live(r.m, R_READY) != 1 && !r.done; i++)
		sleep_ms(10);
	CHECK_EQ(live(r.m, R_READY), 1);
	CHECK(console_pointer_abs(con) && !strcmp(console_pointer_abs(con), "vmmouse"));
	CHECK_EQ(console_snapshot(con, &s), 0);
	free(s.pixels);
	CHECK(console_mouse_abs(con, s.width / 4, s.height - 1, -1,
				CONSOLE_BTN_LEFT | CONSOLE_BTN_RIGHT));
	want_x = console_abs_scale(s.width / 4, s.width, VMMOUSE_ABS_MAX);
	want_y = console_abs_scale(s.height - 1, s.height, VMMOUSE_ABS_MAX);
	finish(&r, t, 30000, 0x42);
	CHECK_EQ(r.status, 0x42);
	CHECK_EQ(p.has_vmmouse, 1);

	/* GETVERSION: version in EAX, the magic in EBX, ECX/EDX kept. */
	CHECK_EQ(res(r.m, R_VER_EAX), VMPORT_VERSION);
	CHECK_EQ(res(r.m, R_VER_EBX), VMPORT_MAGIC);
	CHECK_EQ(res(r.m, R_VER_ECX), 10);
	CHECK_EQ(res(r.m, R_VER_EDX), VMPORT_PORT);
	CHECK_EQ(res(r.m, R_ACK) & 0xff, 0xfa);
	CHECK_EQ(res(r.m, R_ST1), 1);
	CHECK_EQ(res(r.m, R_VERSION_ID), VMMOUSE_VERSION_ID);
	/* The motionless PS/2 packet with the buttons held. */
	CHECK_EQ(res8(r.m, R_PS2), 0x0b);
	CHECK_EQ(res8(r.m, R_PS2 + 1), 0);
	CHECK_EQ(res8(r.m, R_PS2 + 2), 0);
	/* The packet: buttons, X, Y, Z in EAX..EDX; ESI, EDI untouched. */
	CHECK_EQ(res(r.m, R_ST4), 4);
	CHECK_EQ(res(r.m, R_D_EAX), VMMOUSE_LEFT_BUTTON | VMMOUSE_RIGHT_BUTTON);
	CHECK_EQ(res(r.m, R_D_EBX), want_x);
	CHECK_EQ(res(r.m, R_D_ECX), want_y);
	CHECK_EQ(res(r.m, R_D_EDX), 0xffffffffu);	/* wheel -1 */
	CHECK_EQ(res(r.m, R_D_ESI), 0x51515151);
	CHECK_EQ(res(r.m, R_D_EDI), 0xd1d1d1d1);
	/* The pixel comes back. */
	CHECK_EQ(res(r.m, R_D_EBX) * (uint64_t)s.width / 0x10000, s.width / 4);
	CHECK_EQ(res(r.m, R_D_ECX) * (uint64_t)s.height / 0x10000, s.height - 1);
	/* Wrong magic: EAX all-ones, EBX and ECX as they were; still on. */
	CHECK_EQ(res(r.m, R_BAD_EAX), 0xffffffffu);
	CHECK_EQ(res(r.m, R_BAD_EBX), 0x77);
	CHECK_EQ(res(r.m, R_BAD_ECX), 10);
	CHECK_EQ(res(r.m, R_ST_END), 0);
	printf("  packet: buttons 0x%x, x %u, y %u (pixel %u,%u of %ux%u)\n",
	       res(r.m, R_D_EAX), res(r.m, R_D_EBX), res(r.m, R_D_ECX),
	       s.width / 4, s.height - 1, s.width, s.height);
	machine_destroy(r.m);
	/* The machine is gone: the console has no absolute pointer left. */
	CHECK(console_pointer_abs(con) == NULL);
	console_free(con);
}

static void test_off(void)
{
	struct prog p = { detect16, detect16_end, -1 };
	struct machine_boot_hooks hooks = {
		.load = load, .setup_bsp = setup_bsp, .add_devices = add_devices,
		.opaque = &p,
	};
	struct machine_config cfg = {
		.ram_size = 16ull << 20, .ncpus = 1, .hooks = &hooks,
		.no_vga = true, .no_vmmouse = true,
	};
	struct runner r = { 0 };
	pthread_t t;
	char err[256];

	if (machine_create(&cfg, &r.m, err, sizeof(err)) < 0) {
		fprintf(stderr, "machine_create: %s\n", err);
		CHECK(0);
		return;
	}
	pthread_create(&t, NULL, run_main, &r);
	finish(&r, t, 30000, 0x43);
	CHECK_EQ(r.status, 0x43);
	CHECK_EQ(res(r.m, R_VER_EAX), 0xffffffffu);
	CHECK_EQ(res(r.m, R_VER_EBX), 0xa9b297a7u);
	CHECK_EQ(p.has_vmmouse, 0);
	machine_destroy(r.m);
}

int main(void)
{
	log_init();
	if (access("/dev/kvm", R_OK | W_OK) != 0)
		SKIP("/dev/kvm is not accessible: %s", strerror(errno));
	RUN_TEST(test_backdoor_through_kvm);
	RUN_TEST(test_off);
	return check_finish();
}
