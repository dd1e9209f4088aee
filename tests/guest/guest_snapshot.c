/* SPDX-License-Identifier: MIT */
/*
 * The whole machine saved and restored on /dev/kvm (snapshot issue, guest
 * tier): a test guest counts in RAM; the test programs the PIT and the
 * UART from outside (so that a fresh boot would show their reset values),
 * saves the running machine, changes the devices and the counter, and
 * reverts: right after the rebuild, before the guest ran a single
 * instruction more, the counter holds its saved value (a boot would show
 * 0), the device registers are back (the HDA sound card's, on the silent
 * backend, too), and the guest counts on from there.  The same
 * state also starts a new machine.  Corrupt and foreign state files are
 * refused with the VM untouched.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audio/audio.h"
#include "bus.h"
#include "check.h"
#include "guestlib.h"
#include "hv.h"
#include "log.h"
#include "machine.h"
#include "mem.h"

#define CODE_GPA	0x10000ull
#define COUNTER_GPA	0x600ull
#define HUGE_COUNT	0x70000000u

GUEST_CODE16(prog16,
	"xor %ax, %ax\n mov %ax, %ds\n"
	"1: incl 0x600\n jmp 1b\n");

static int load(struct machine *m, struct guest_mem *mem, void *opaque)
{
	(void)m, (void)opaque;
	return guest_mem_write(mem, CODE_GPA, prog16, (size_t)(prog16_end - prog16));
}

static int setup_bsp(struct machine *m, struct hv_vcpu *vcpu, void *opaque)
{
	(void)m, (void)opaque;
	return guest_setup_real_mode(vcpu, (uint16_t)(CODE_GPA >> 4), 0, 0x8000);
}

static const struct machine_boot_hooks hooks = { .load = load, .setup_bsp = setup_bsp };

/* The counter right after each build, before any vCPU ran (built hook). */
static volatile uint32_t built_counter[8];
static volatile unsigned built_boots;

static void built(void *opaque, unsigned boot)
{
	struct machine **m = opaque;
	volatile uint32_t *p = gpa_to_hva(machine_mem(*m), COUNTER_GPA, 4);

	if (boot < 8)
		built_counter[boot] = p ? *p : 0xffffffffu;
	__atomic_store_n(&built_boots, boot, __ATOMIC_RELEASE);
}

struct runner {
	struct machine *m;
	pthread_t thread;
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

static volatile uint32_t *counter_ptr(struct machine *m)
{
	return gpa_to_hva(machine_mem(m), COUNTER_GPA, 4);
}

static uint32_t counter(struct machine *m)
{
	volatile uint32_t *p = counter_ptr(m);

	return p ? *p : 0;
}

/* Wait until the guest counted past @min (it runs in KVM's emulator here:
 * ~1 M increments a second). */
static bool wait_count(struct machine *m, uint32_t min, uint32_t below)
{
	for (int i = 0; i < 1000; i++) {
		uint32_t c = counter(m);

		if (c > min && c < below)
			return true;
		sleep_ms(10);
	}
	return false;
}

static uint8_t port_in(struct machine *m, uint16_t port)
{
	int claimed;
	uint8_t v;

	pthread_mutex_lock(machine_lock(m));
	v = (uint8_t)bus_read(machine_pio(m), port, 1, &claimed);
	pthread_mutex_unlock(machine_lock(m));
	return v;
}

static void port_out(struct machine *m, uint16_t port, uint8_t v)
{
	int claimed;

	pthread_mutex_lock(machine_lock(m));
	bus_write(machine_pio(m), port, v, 1, &claimed);
	pthread_mutex_unlock(machine_lock(m));
}

/* The HDA at 00:1b.0 (audio/hda.h): config space through 0xcf8/0xcfc,
 * its BAR 0 mapped at HDA_BAR, registers through the machine's MMIO. */
#define HDA_BAR		0xfebf0000u
#define HDA_CFG(reg)	(0x80000000u | 0x1bu << 11 | (reg))

static uint32_t cfg_in(struct machine *m, uint32_t addr)
{
	int claimed;
	uint32_t v;

	pthread_mutex_lock(machine_lock(m));
	bus_write(machine_pio(m), 0xcf8, addr, 4, &claimed);
	v = (uint32_t)bus_read(machine_pio(m), 0xcfc, 4, &claimed);
	pthread_mutex_unlock(machine_lock(m));
	return v;
}

static void cfg_out(struct machine *m, uint32_t addr, uint32_t v)
{
	int claimed;

	pthread_mutex_lock(machine_lock(m));
	bus_write(machine_pio(m), 0xcf8, addr, 4, &claimed);
	bus_write(machine_pio(m), 0xcfc, v, 4, &claimed);
	pthread_mutex_unlock(machine_lock(m));
}

static uint32_t hda_in(struct machine *m, unsigned off)
{
	int claimed;
	uint32_t v;

	pthread_mutex_lock(machine_lock(m));
	v = (uint32_t)bus_read(machine_mmio(m), HDA_BAR + off, 4, &claimed);
	pthread_mutex_unlock(machine_lock(m));
	return v;
}

static void hda_out(struct machine *m, unsigned off, uint32_t v)
{
	int claimed;

	pthread_mutex_lock(machine_lock(m));
	bus_write(machine_mmio(m), HDA_BAR + off, v, 4, &claimed);
	pthread_mutex_unlock(machine_lock(m));
}

/* PIT read-back of counter 0's status: mode, access mode, BCD (bits 0-5). */
static uint8_t pit0_status(struct machine *m)
{
	port_out(m, 0x43, 0xe2);
	return port_in(m, 0x40) & 0x3f;
}

/* The sound card too (on the silent backend), so that its state goes
 * through the machine's save, revert and restore. */
static struct audio_backend *null_audio;

static int start(struct runner *r, uint64_t ram, const char *state,
		 const char *mem)
{
	struct machine_config cfg = {
		.ram_size = ram, .ncpus = 1, .hooks = &hooks,
		.built = built, .built_opaque = &r->m,
	};

	if (!null_audio)
		null_audio = audio_null_new();
	cfg.audio = null_audio;

	memset(r, 0, sizeof(*r));
	memset((void *)built_counter, 0, sizeof(built_counter));
	built_boots = 0;
	if (machine_create(&cfg, &r->m, r->err, sizeof(r->err)) < 0) {
		fprintf(stderr, "machine_create: %s\n", r->err);
		return -1;
	}
	if (state && machine_restore_on_start(r->m, state, mem, r->err, sizeof(r->err)) < 0) {
		fprintf(stderr, "restore: %s\n", r->err);
		machine_destroy(r->m);
		return -1;
	}
	pthread_create(&r->thread, NULL, run_main, r);
	return 0;
}

static void finish(struct runner *r)
{
	machine_stop(r->m, 0);
	pthread_join(r->thread, NULL);
	machine_destroy(r->m);
}

/* The saved counter: the memory file holds RAM from GPA 0 after its 4 KiB
 * header. */
static uint32_t saved_counter(const char *mem)
{
	uint32_t v = 0;
	int fd = open(mem, O_RDONLY);

	if (fd >= 0) {
		if (pread(fd, &v, 4, 4096 + COUNTER_GPA) != 4)
			v = 0;
		close(fd);
	}
	return v;
}

static char dir[] = "/tmp/vivarium-snap.XXXXXX";
static char state[128], mem[128];

static void test_save_revert(void)
{
	struct machine_save_stats st;
	struct runner r;
	uint32_t saved, c;
	char err[256];

	if (start(&r, 16ull << 20, NULL, NULL) < 0) {
		CHECK(0);
		return;
	}
	/* Counted well past what a fresh boot would show at once. */
	CHECK(wait_count(r.m, 200000, HUGE_COUNT));
	/* PIT counter 0: mode 2, lo/hi, 0x1234; UART scratch 0x5a. */
	port_out(r.m, 0x43, 0x34);
	port_out(r.m, 0x40, 0x34);
	port_out(r.m, 0x40, 0x12);
	port_out(r.m, 0x3ff, 0x5a);
	CHECK_EQ(pit0_status(r.m), 0x34);
	CHECK_EQ(port_in(r.m, 0x3ff), 0x5a);
	/* The sound card: out of reset, interrupts enabled, a CORB base. */
	CHECK_EQ(cfg_in(r.m, HDA_CFG(0)), 0x26688086);
	cfg_out(r.m, HDA_CFG(0x10), HDA_BAR);
	cfg_out(r.m, HDA_CFG(0x14), 0);
	cfg_out(r.m, HDA_CFG(0x04), 0x6);	/* memory, bus master */
	hda_out(r.m, 0x08, 1);			/* GCTL.CRST */
	hda_out(r.m, 0x20, 0xc0000003);		/* INTCTL */
	hda_out(r.m, 0x40, 0x123400);		/* CORBLBASE */
	CHECK_EQ(hda_in(r.m, 0x00) & 0xffff, 0x1101);	/* GCAP */
	CHECK_EQ(hda_in(r.m, 0x20), 0xc0000003);
	CHECK_EQ(machine_save(r.m, state, mem, &st, err, sizeof(err)), 0);
	printf("    saved: pause %.1f ms, memory %.1f MiB of which %.1f KiB written in %.1f ms\n",
	       st.pause_ns / 1e6, st.ram_bytes / 1048576.0, st.ram_data_bytes / 1024.0,
	       st.ram_ns / 1e6);
	saved = saved_counter(mem);
	CHECK(saved > 200000);
	/* It runs on after the save. */
	CHECK(wait_count(r.m, saved + 1000, HUGE_COUNT));
	/* Change what the snapshot holds, from outside. */
	port_out(r.m, 0x3ff, 0xa5);
	port_out(r.m, 0x43, 0x30);	/* counter 0: mode 0 */
	CHECK_EQ(pit0_status(r.m), 0x30);
	hda_out(r.m, 0x20, 0);
	hda_out(r.m, 0x40, 0);
	*counter_ptr(r.m) = HUGE_COUNT;
	CHECK_EQ(machine_revert(r.m, state, mem, err, sizeof(err)), 0);
	for (int i = 0; i < 1000 && built_boots < 2; i++)
		sleep_ms(10);
	/* Rebuilt with the saved memory, not booted. */
	CHECK_EQ(built_boots, 2);
	CHECK_EQ(built_counter[2], saved);
	/* And counting on from there. */
	CHECK(wait_count(r.m, saved, HUGE_COUNT));
	c = counter(r.m);
	CHECK(c >= saved && c < HUGE_COUNT);
	CHECK_EQ(port_in(r.m, 0x3ff), 0x5a);
	CHECK_EQ(pit0_status(r.m), 0x34);
	CHECK_EQ(hda_in(r.m, 0x20), 0xc0000003);	/* the HDA's registers too */
	CHECK_EQ(hda_in(r.m, 0x40), 0x123400);
	CHECK_EQ(hda_in(r.m, 0x08) & 1, 1);
	CHECK(wait_count(r.m, c + 1000, HUGE_COUNT));
	CHECK_EQ(machine_boot_count(r.m), 2);
	CHECK(!r.done);
	finish(&r);
	CHECK_EQ(r.status, 0);
}

static void test_start_from_state(void)
{
	uint32_t saved = saved_counter(mem);
	struct runner r;

	if (start(&r, 16ull << 20, state, mem) < 0) {
		CHECK(0);
		return;
	}
	/* No boot: the loaded guest counts on from the saved value. */
	for (int i = 0; i < 1000 && built_boots < 1; i++)
		sleep_ms(10);
	CHECK_EQ(built_counter[1], saved);
	CHECK(wait_count(r.m, saved, HUGE_COUNT));
	CHECK_EQ(port_in(r.m, 0x3ff), 0x5a);
	CHECK_EQ(pit0_status(r.m), 0x34);
	CHECK(!r.done);
	finish(&r);
}

static void test_refusals(void)
{
	char bad[160], err[256];
	struct runner r;
	uint32_t c;
	int fd;

	/* A corrupt state file: refused, the VM runs on untouched. */
	snprintf(bad, sizeof(bad), "%s/bad.state", dir);
	fd = open(bad, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && write(fd, "VIVSTATE garbage", 16) == 16);
	close(fd);
	if (start(&r, 16ull << 20, NULL, NULL) < 0) {
		CHECK(0);
		return;
	}
	CHECK(wait_count(r.m, 1000, HUGE_COUNT));
	CHECK(machine_revert(r.m, bad, mem, err, sizeof(err)) < 0);
	CHECK(strstr(err, "not a vivarium machine-state file") != NULL);
	printf("    corrupt: %s\n", err);
	c = counter(r.m);
	CHECK(wait_count(r.m, c + 1000, HUGE_COUNT));
	CHECK_EQ(machine_boot_count(r.m), 1);
	finish(&r);
	/* Another machine (32 MiB): the build refuses it, machine_run says why. */
	if (start(&r, 32ull << 20, state, mem) < 0) {
		CHECK(0);
		return;
	}
	pthread_join(r.thread, NULL);
	CHECK(r.status < 0);
	CHECK(strstr(r.err, "another machine configuration") != NULL);
	printf("    foreign: %s\n", r.err);
	machine_destroy(r.m);
}

int main(void)
{
	char cmd[160];

	log_init();
	if (access("/dev/kvm", R_OK | W_OK) != 0)
		SKIP("/dev/kvm is not accessible: %s", strerror(errno));
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(state, sizeof(state), "%s/m.state", dir);
	snprintf(mem, sizeof(mem), "%s/m.ram", dir);
	RUN_TEST(test_save_revert);
	RUN_TEST(test_start_from_state);
	RUN_TEST(test_refusals);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	return check_finish();
}
