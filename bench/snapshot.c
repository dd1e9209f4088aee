/* SPDX-License-Identifier: MIT */
/*
 * bench/snapshot.c - vivarium's side of bench/snapshot.sh: save and revert
 * a running machine whose guest has touched a given amount of its RAM.
 *
 *   snapshot [--memory MIB] [--touched MIB] [--reverts N] DIR
 *
 * A test guest counts in RAM on this host's /dev/kvm (no firmware); the
 * benchmark fills the first --touched MiB of guest RAM with non-zero data
 * (as a guest that touched them would have), then:
 *   save    machine_save() of the running machine: the guest's pause and
 *           the whole call, the memory and state files' sizes on disk;
 *   revert  machine_revert() to that state, timed from the call until the
 *           guest's counter moves again (the guest runs), N times (median,
 *           min, max).
 * Prints one "key value" line per figure for bench/snapshot.sh.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "guestlib.h"
#include "hv.h"
#include "log.h"
#include "machine.h"
#include "mem.h"

#define CODE_GPA	0x10000ull
#define COUNTER_GPA	0x600ull
#define SENTINEL	0xdead0000u

GUEST_CODE16(count16,
	"xor %ax, %ax\n mov %ax, %ds\n"
	"1: incl 0x600\n jmp 1b\n");

static int load(struct machine *m, struct guest_mem *mem, void *opaque)
{
	(void)m, (void)opaque;
	return guest_mem_write(mem, CODE_GPA, count16, (size_t)(count16_end - count16));
}

static int setup_bsp(struct machine *m, struct hv_vcpu *vcpu, void *opaque)
{
	(void)m, (void)opaque;
	return guest_setup_real_mode(vcpu, (uint16_t)(CODE_GPA >> 4), 0, 0x8000);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct machine *mach;
static char run_err[256];
static volatile unsigned built_boots;	/* the last boot whose build ended */

static void built(void *opaque, unsigned boot)
{
	(void)opaque;
	__atomic_store_n(&built_boots, boot, __ATOMIC_RELEASE);
}

static void *run_main(void *opaque)
{
	(void)opaque;
	machine_run(mach, run_err, sizeof(run_err));
	return NULL;
}

static volatile uint32_t *counter(void)
{
	return gpa_to_hva(machine_mem(mach), COUNTER_GPA, 4);
}

/* Wait (spinning) until the counter leaves @from; ns waited, or 0. */
static uint64_t wait_moves(uint32_t from, uint64_t limit_ns)
{
	uint64_t t0 = now_ns();

	while (now_ns() - t0 < limit_ns) {
		volatile uint32_t *c = counter();

		if (c && *c != from && *c != SENTINEL)
			return now_ns() - t0;
	}
	return 0;
}

/* @bytes of RAM from 1 MiB on, every page filled with a non-zero value of
 * its own (bench/snapshot.sh writes the same into QEMU's memory file). */
static void touch(uint64_t bytes)
{
	struct guest_mem *mem = machine_mem(mach);
	uint64_t gpa = 1 << 20, end = gpa + bytes;

	for (; gpa < end; gpa += 4096) {
		uint64_t *p = gpa_to_hva(mem, gpa, 4096);

		if (!p)
			break;
		for (unsigned i = 0; i < 512; i++)
			p[i] = (gpa * 0x9e3779b97f4a7c15ull) | 1;
	}
}

static uint64_t disk_bytes(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "memory", required_argument, NULL, 'm' },
		{ "touched", required_argument, NULL, 't' },
		{ "reverts", required_argument, NULL, 'r' },
		{ 0 },
	};
	static const struct machine_boot_hooks hooks = { .load = load, .setup_bsp = setup_bsp };
	unsigned memory = 2048, touched = 1024, reverts = 5;
	struct machine_save_stats st;
	char state[512], ram[512], err[512];
	uint64_t t0, save_ns, times[64];
	pthread_t thread;
	int opt;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 'm')
			memory = (unsigned)atoi(optarg);
		else if (opt == 't')
			touched = (unsigned)atoi(optarg);
		else if (opt == 'r')
			reverts = (unsigned)atoi(optarg);
		else
			return 2;
	}
	if (optind + 1 != argc || reverts < 1 || reverts > 64 || touched + 2 > memory) {
		fprintf(stderr, "usage: snapshot [--memory MIB] [--touched MIB] [--reverts 1-64] DIR\n");
		return 2;
	}
	snprintf(state, sizeof(state), "%s/bench.state", argv[optind]);
	snprintf(ram, sizeof(ram), "%s/bench.ram", argv[optind]);
	log_init();
	{
		struct machine_config cfg = {
			.ram_size = (uint64_t)memory << 20, .ncpus = 1, .hooks = &hooks,
			.built = built,
		};

		if (machine_create(&cfg, &mach, err, sizeof(err)) < 0) {
			fprintf(stderr, "snapshot: %s\n", err);
			return 1;
		}
	}
	pthread_create(&thread, NULL, run_main, NULL);
	if (!wait_moves(0, 10000000000ull)) {
		fprintf(stderr, "snapshot: the guest does not run: %s\n", run_err);
		return 1;
	}
	machine_pause(mach);
	touch((uint64_t)touched << 20);
	machine_resume(mach);

	t0 = now_ns();
	if (machine_save(mach, state, ram, &st, err, sizeof(err)) < 0) {
		fprintf(stderr, "snapshot: save: %s\n", err);
		return 1;
	}
	save_ns = now_ns() - t0;
	printf("memory_mib %u\ntouched_mib %u\n", memory, touched);
	printf("save_ms %.1f\nsave_pause_ms %.1f\nsave_memory_copy_ms %.1f\n", save_ns / 1e6,
	       st.pause_ns / 1e6, st.ram_ns / 1e6);
	printf("save_gb_per_s %.2f\n", st.ram_data_bytes / (double)st.pause_ns);
	printf("ram_file_disk_mib %.1f\nstate_file_kib %.1f\n",
	       disk_bytes(ram) / 1048576.0, disk_bytes(state) / 1024.0);
	for (unsigned i = 0; i < reverts; i++) {
		uint64_t waited;

		*counter() = SENTINEL;
		t0 = now_ns();
		if (machine_revert(mach, state, ram, err, sizeof(err)) < 0) {
			fprintf(stderr, "snapshot: revert: %s\n", err);
			return 1;
		}
		/* The old VM's RAM is gone once the rebuild starts: poll the new
		 * one until its counter runs again from the saved value. */
		waited = 0;
		while (!waited && now_ns() - t0 < 10000000000ull) {
			volatile uint32_t *c;
			uint32_t v;

			/* The new RAM exists once the rebuild is done. */
			if (__atomic_load_n(&built_boots, __ATOMIC_ACQUIRE) != i + 2)
				continue;
			c = counter();
			v = c ? *c : SENTINEL;
			if (v != SENTINEL && wait_moves(v, 1000000000ull))
				waited = now_ns() - t0;
		}
		if (!waited) {
			fprintf(stderr, "snapshot: the guest did not run after revert %u: %s\n", i, run_err);
			return 1;
		}
		times[i] = waited;
	}
	qsort(times, reverts, sizeof(times[0]), cmp_u64);
	printf("revert_ms_median %.1f\nrevert_ms_min %.1f\nrevert_ms_max %.1f\n",
	       times[reverts / 2] / 1e6, times[0] / 1e6, times[reverts - 1] / 1e6);
	machine_stop(mach, 0);
	pthread_join(thread, NULL);
	machine_destroy(mach);
	unlink(state);
	unlink(ram);
	return 0;
}
