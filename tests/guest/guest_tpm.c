/* SPDX-License-Identifier: MIT */
/*
 * tests/guest/guest_tpm.c - SeaBIOS (Debian's bios-256k.bin) with the TPM
 * (devices/tpm_tis.c on a real swtpm, host/swtpm.c): it finds the TPM2
 * ACPI table and its log area, probes the TIS, sends TPM2_Startup and
 * measures the boot into PCRs 0-7 (read here through swtpm while the
 * guest waits at "No bootable device": no longer all zero).  A machine
 * reset powers the TPM on again (CMD_INIT): the test extends PCR 0 itself
 * after the first boot, and the second boot's PCRs are the first's again
 * (without TPM_Init, SeaBIOS's TPM2_Startup fails and PCR 0 keeps the
 * test's extension).  The TPM is in the machine's saved state: a revert
 * and a restore into another swtpm put its PCRs back.  The VMM's threads, the TPM's worker included, run on
 * their allow-lists (guestlib.c).  Skips without /dev/kvm,
 * SeaBIOS or swtpm.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "check.h"
#include "host/chardev.h"
#include "host/swtpm.h"
#include "machine.h"
#include "tpm2cmd.h"

#define BIOS_PATH "/usr/share/seabios/bios-256k.bin"
#define WANT "No bootable device"

struct run {
	struct machine *m;
	struct swtpm *sw;
	struct chardev *com1;
	uint8_t pcr[2][8][32];		/* PCRs 0-7 after each boot */
	int got[2];			/* 0: read them */
	bool marked;			/* PCR 0 extended by the test */
	unsigned boots_seen;
	double seconds[2];
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned count(struct run *r, const char *s)
{
	const char *p;
	size_t len;
	unsigned n = 0;

	pthread_mutex_lock(machine_lock(r->m));
	p = chardev_buffer_data(r->com1, &len);
	while (p && (p = strstr(p, s))) {
		n++;
		p += strlen(s);
	}
	pthread_mutex_unlock(machine_lock(r->m));
	return n;
}

/* TPM2_PCR_Read of SHA-256 PCRs 0-7 through swtpm itself.  0, or -1. */
static int read_pcrs(struct swtpm *sw, uint8_t out[8][32])
{
	uint8_t cmd[TPM2_PCR_READ_LEN], rsp[512];
	long n = swtpm_transmit(sw, 0, cmd, tpm2_cmd_pcr_read(cmd, 0xff),
				rsp, sizeof(rsp), 10000);

	if (n != 10 + 4 + 10 + 4 + 8 * 34 || tpm2_be32(rsp + 6) != 0 ||
	    tpm2_be32(rsp + 24) != 8) {
		fprintf(stderr, "PCR_Read: %ld bytes, rc 0x%x\n", n,
			n >= 10 ? tpm2_be32(rsp + 6) : 0);
		return -1;
	}
	for (int i = 0; i < 8; i++) {
		const uint8_t *d = rsp + 28 + 34 * i;

		if (d[0] != 0 || d[1] != 32)
			return -1;
		memcpy(out[i], d + 2, 32);
	}
	return 0;
}

/* TPM2_PCR_Extend(PCR 0, SHA-256 of 0x5a...) with a password session. */
static int mark_pcr0(struct swtpm *sw)
{
	uint8_t cmd[TPM2_PCR_EXTEND_LEN], rsp[64], digest[32];
	long n;

	memset(digest, 0x5a, sizeof(digest));
	n = swtpm_transmit(sw, 0, cmd, tpm2_cmd_pcr_extend(cmd, 0, digest),
			   rsp, sizeof(rsp), 10000);
	return n >= 10 && tpm2_rc(rsp) == 0 ? 0 : -1;
}

static void *watch(void *opaque)
{
	struct run *r = opaque;
	double t0 = now();

	for (unsigned boot = 0; boot < 2; boot++) {
		while (now() - t0 < 120 && count(r, WANT) <= boot)
			usleep(100 * 1000);
		if (count(r, WANT) <= boot)
			break;
		r->seconds[boot] = now() - t0;
		r->boots_seen++;
		r->got[boot] = read_pcrs(r->sw, r->pcr[boot]);
		if (boot == 0) {
			uint8_t marked[8][32];

			r->marked = mark_pcr0(r->sw) == 0 &&
				    read_pcrs(r->sw, marked) == 0 &&
				    memcmp(marked[0], r->pcr[0][0], 32) != 0;
			machine_reset(r->m);
		}
	}
	machine_stop(r->m, 0);
	return NULL;
}

static void test_seabios_measures(void)
{
	static const uint8_t zero[32];
	struct run r = { .got = { -1, -1 } };
	struct machine_config cfg = {
		.ram_size = 128ull << 20, .ncpus = 1,
		.firmware = MACHINE_FW_BIOS, .sercon = true,
	};
	char *dir = g_dir_make_tmp("guest-tpm-XXXXXX", NULL);
	char err[512] = "";
	pthread_t t;
	size_t len;
	int status, nonzero = 0;

	CHECK(dir != NULL);
	if (swtpm_start(dir, &r.sw, err, sizeof(err)) < 0) {
		fprintf(stderr, "swtpm_start: %s\n", err);
		CHECK(!"swtpm starts");
		tpm2_test_rmdir(dir);
		g_free(dir);
		return;
	}
	cfg.tpm = r.sw;
	r.com1 = cfg.serial = chardev_buffer_new();
	CHECK_EQ(machine_create(&cfg, &r.m, err, sizeof(err)), 0);
	if (!r.m) {
		fprintf(stderr, "machine_create: %s\n", err);
		goto out;
	}
	pthread_create(&t, NULL, watch, &r);
	status = machine_run(r.m, err, sizeof(err));
	pthread_join(t, NULL);
	if (status < 0)
		fprintf(stderr, "machine_run: %s\n", err);
	CHECK_EQ(status, 0);
	CHECK_EQ(r.boots_seen, 2);
	printf("# \"%s\" after %.1f s, after the reset at %.1f s\n", WANT,
	       r.seconds[0], r.seconds[1]);
	CHECK_EQ(r.got[0], 0);
	CHECK_EQ(r.got[1], 0);
	for (int i = 0; i < 8; i++)
		nonzero += memcmp(r.pcr[0][i], zero, 32) != 0;
	printf("# PCRs 0-7 not zero after SeaBIOS: %d of 8\n", nonzero);
	/* SeaBIOS extends at least PCR 1 (SMBIOS), 2 (option ROMs), 4
	 * (INT 19h) and the separators of 0-7. */
	CHECK_EQ(nonzero, 8);
	/* Reset: measured afresh, not on top of the first boot and the
	 * test's mark. */
	CHECK(r.marked);
	CHECK(memcmp(r.pcr[0], r.pcr[1], sizeof(r.pcr[0])) == 0);
	CHECK(!swtpm_failed(r.sw));
	if (check_failures__)
		fprintf(stderr, "--- COM1:\n%s\n", chardev_buffer_data(r.com1, &len));
	machine_destroy(r.m);
out:
	swtpm_stop(r.sw);
	chardev_free(r.com1);
	tpm2_test_rmdir(dir);
	g_free(dir);
}

static void *run_thread(void *opaque)
{
	struct run *r = opaque;
	char err[512];

	if (machine_run(r->m, err, sizeof(err)) < 0)
		fprintf(stderr, "machine_run: %s\n", err);
	return NULL;
}

/* Poll swtpm's PCRs 0-7 until they equal @want (a revert or restore is
 * rebuilding the machine meanwhile); true if they did within @secs. */
static bool pcrs_become(struct swtpm *sw, uint8_t want[8][32], double secs)
{
	uint8_t now_pcr[8][32];
	double t0 = now();

	while (now() - t0 < secs) {
		if (read_pcrs(sw, now_pcr) == 0 &&
		    memcmp(now_pcr, want, sizeof(now_pcr)) == 0)
			return true;
		usleep(100 * 1000);
	}
	return false;
}

/* The TPM in the machine's state: saved beside the devices ("tpm"
 * section), put back by a revert (the test's own mark on PCR 0 after the
 * save is gone) and by a restore on start into another swtpm. */
static void test_save_revert_restore(void)
{
	struct run r = { 0 };
	struct machine_config cfg = {
		.ram_size = 128ull << 20, .ncpus = 1,
		.firmware = MACHINE_FW_BIOS, .sercon = true,
	};
	char *dir = g_dir_make_tmp("guest-tpm-XXXXXX", NULL);
	char *dir_b = g_strconcat(dir, "/b", NULL), *dir_a = g_strconcat(dir, "/a", NULL);
	char *state = g_strconcat(dir, "/state", NULL), *mem = g_strconcat(dir, "/mem", NULL);
	uint8_t pcr[8][32], marked[8][32];
	struct swtpm *b = NULL;
	char err[512] = "";
	pthread_t t;
	double t0;

	CHECK_EQ(swtpm_start(dir_a, &r.sw, err, sizeof(err)), 0);
	if (!r.sw)
		goto out;
	cfg.tpm = r.sw;
	r.com1 = cfg.serial = chardev_buffer_new();
	CHECK_EQ(machine_create(&cfg, &r.m, err, sizeof(err)), 0);
	if (!r.m)
		goto out;
	pthread_create(&t, NULL, run_thread, &r);
	t0 = now();
	while (now() - t0 < 120 && !count(&r, WANT))
		usleep(100 * 1000);
	CHECK(count(&r, WANT) >= 1);
	CHECK_EQ(read_pcrs(r.sw, pcr), 0);
	CHECK_EQ(machine_save(r.m, state, mem, NULL, err, sizeof(err)), 0);
	if (err[0])
		fprintf(stderr, "save: %s\n", err);
	CHECK_EQ(mark_pcr0(r.sw), 0);
	CHECK_EQ(read_pcrs(r.sw, marked), 0);
	CHECK(memcmp(marked[0], pcr[0], 32) != 0);
	CHECK_EQ(machine_revert(r.m, state, mem, err, sizeof(err)), 0);
	CHECK(pcrs_become(r.sw, pcr, 30));
	CHECK(!swtpm_failed(r.sw));
	machine_stop(r.m, 0);
	pthread_join(t, NULL);
	machine_destroy(r.m);
	r.m = NULL;
	swtpm_stop(r.sw);
	r.sw = NULL;
	chardev_free(r.com1);

	/* Another swtpm, another state folder: the restore hands it the
	 * TPM (its permanent state included). */
	CHECK_EQ(swtpm_start(dir_b, &b, err, sizeof(err)), 0);
	if (!b)
		goto out;
	r.sw = b;
	cfg.tpm = b;
	r.com1 = cfg.serial = chardev_buffer_new();
	CHECK_EQ(machine_create(&cfg, &r.m, err, sizeof(err)), 0);
	if (!r.m)
		goto out;
	CHECK_EQ(machine_restore_on_start(r.m, state, mem, err, sizeof(err)), 0);
	pthread_create(&t, NULL, run_thread, &r);
	CHECK(pcrs_become(b, pcr, 30));
	machine_stop(r.m, 0);
	pthread_join(t, NULL);
	machine_destroy(r.m);
	r.m = NULL;
out:
	if (err[0] && check_failures__)
		fprintf(stderr, "last error: %s\n", err);
	swtpm_stop(r.sw);
	chardev_free(r.com1);
	unlink(state);
	unlink(mem);
	tpm2_test_rmdir(dir_a);
	tpm2_test_rmdir(dir_b);
	rmdir(dir);
	g_free(state);
	g_free(mem);
	g_free(dir_a);
	g_free(dir_b);
	g_free(dir);
}

int main(void)
{
	char *sw;

	if (access("/dev/kvm", R_OK | W_OK) != 0)
		SKIP("/dev/kvm is not accessible: %s", strerror(errno));
	if (access(BIOS_PATH, R_OK) != 0)
		SKIP("%s is missing (Debian package seabios)", BIOS_PATH);
	sw = swtpm_find();
	if (!sw)
		SKIP("swtpm is not installed (Debian package swtpm)");
	g_free(sw);
	RUN_TEST(test_seabios_measures);
	RUN_TEST(test_save_revert_restore);
	return check_finish();
}
