/* SPDX-License-Identifier: MIT */
/*
 * tests/guest/guest_uefi.c - OVMF (Debian's OVMF_CODE_4M.fd) on the whole
 * machine with its variable store as a CFI flash (boot/uefi.c,
 * devices/pflash.h).
 *
 * Where the host's KVM runs OVMF, it must reach its boot manager (BdsDxe's
 * lines on COM1) and leave the store a valid firmware volume.  On an
 * instruction-emulating KVM (this project's build hosts, see
 * shared/notes/environment.md) OVMF cannot run: KVM stops at SEC's first
 * x87 instruction (fwait, 9b, of `finit` in InitializeFloatingPointUnits),
 * as it does under QEMU.  Then the test checks what got that far — the
 * reset vector and SEC ran out of the read-only code flash, the store was
 * not written — and skips, saying where it stopped.  Bad images are
 * refused with one line in any case.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "check.h"
#include "host/chardev.h"
#include "guestlib.h"
#include "machine.h"

#define OVMF_CODE "/usr/share/OVMF/OVMF_CODE_4M.fd"
#define OVMF_VARS "/usr/share/OVMF/OVMF_VARS_4M.fd"

struct run {
	struct machine *m;
	struct chardev *com1;
	const char *want;
	unsigned timeout_s;
	bool found;
	atomic_bool ended;		/* machine_run() returned */
	double seconds;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool com1_has(struct run *r, const char *s)
{
	size_t len;
	bool yes;

	pthread_mutex_lock(machine_lock(r->m));
	yes = strstr(chardev_buffer_data(r->com1, &len), s) != NULL;
	pthread_mutex_unlock(machine_lock(r->m));
	return yes;
}

static void *watch(void *opaque)
{
	struct run *r = opaque;
	double t0 = now();

	while (now() - t0 < r->timeout_s && !atomic_load(&r->ended)) {
		if (com1_has(r, r->want)) {
			r->found = true;
			break;
		}
		usleep(200 * 1000);
	}
	r->seconds = now() - t0;
	machine_stop(r->m, 0);
	return NULL;
}

static char *copy_vars(void)
{
	char *path = g_strdup("/tmp/vivarium-uefi-vars-XXXXXX");
	g_autofree char *data = NULL;
	gsize len;
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	CHECK(g_file_get_contents(OVMF_VARS, &data, &len, NULL));
	CHECK_EQ(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

static bool same_file(const char *a, const char *b)
{
	g_autofree char *da = NULL, *db = NULL;
	gsize la = 0, lb = 0;

	return g_file_get_contents(a, &da, &la, NULL) &&
	       g_file_get_contents(b, &db, &lb, NULL) && la == lb &&
	       !memcmp(da, db, la);
}

/* Bad input: one line, nothing runs. */
static void test_bad_images(void)
{
	struct machine_config cfg = {
		.ram_size = 128ull << 20, .ncpus = 1,
		.firmware = MACHINE_FW_UEFI, .bios_path = "/nonexistent/code.fd",
	};
	struct machine *m = NULL;
	char err[512] = "";
	char path[] = "/tmp/vivarium-uefi-bad-XXXXXX";
	int fd;

	CHECK_EQ(machine_create(&cfg, &m, err, sizeof(err)), -ENOENT);
	CHECK(m == NULL);
	CHECK(strstr(err, "/nonexistent/code.fd") != NULL);
	CHECK(strstr(err, "ovmf") != NULL);
	/* A store that is no whole number of 4 KiB blocks. */
	fd = mkstemp(path);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, "not a store", 11), 11);
	close(fd);
	cfg.bios_path = NULL;
	cfg.vars_path = path;
	CHECK_EQ(machine_create(&cfg, &m, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "multiple of 4 KiB") != NULL);
	unlink(path);
	cfg.vars_path = "/nonexistent/vars.fd";
	CHECK_EQ(machine_create(&cfg, &m, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "/nonexistent/vars.fd") != NULL);
	/* A store without UEFI; UEFI with --kernel. */
	cfg.firmware = MACHINE_FW_BIOS;
	CHECK_EQ(machine_config_check(&cfg, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "--firmware uefi") != NULL);
	cfg.firmware = MACHINE_FW_UEFI;
	cfg.vars_path = NULL;
	cfg.kernel_path = "/boot/vmlinuz";
	CHECK_EQ(machine_config_check(&cfg, err, sizeof(err)), -EINVAL);
	CHECK(m == NULL);
}

/* One writer per store (QEMU's image locks): a second VM is refused. */
static void test_store_locked(void)
{
	g_autofree char *vars = copy_vars();
	struct machine_config cfg = {
		.ram_size = 64ull << 20, .ncpus = 1,
		.firmware = MACHINE_FW_UEFI, .vars_path = vars,
	};
	struct machine *m1 = NULL, *m2 = NULL;
	char err[512] = "";

	CHECK_EQ(machine_create(&cfg, &m1, err, sizeof(err)), 0);
	CHECK_EQ(machine_create(&cfg, &m2, err, sizeof(err)), -EBUSY);
	CHECK(m2 == NULL);
	CHECK(strstr(err, "in use by another process") != NULL);
	machine_destroy(m1);
	CHECK_EQ(machine_create(&cfg, &m2, err, sizeof(err)), 0);
	machine_destroy(m2);
	unlink(vars);
}

static void test_ovmf_boot_manager(void)
{
	struct run r = { .want = "BdsDxe", .timeout_s = 240 };
	g_autofree char *vars = copy_vars();
	struct machine_config cfg = {
		.ram_size = 256ull << 20, .ncpus = 1,
		.firmware = MACHINE_FW_UEFI, .vars_path = vars,
	};
	char err[512] = "";
	unsigned long long rip = 0;
	const char *at;
	pthread_t t;
	size_t len;
	int status;

	r.com1 = cfg.serial = chardev_buffer_new();
	CHECK_EQ(machine_create(&cfg, &r.m, err, sizeof(err)), 0);
	if (!r.m) {
		fprintf(stderr, "machine_create: %s\n", err);
		return;
	}
	pthread_create(&t, NULL, watch, &r);
	status = machine_run(r.m, err, sizeof(err));
	atomic_store(&r.ended, true);
	pthread_join(t, NULL);
	if (status < 0 && (at = strstr(err, "KVM internal error"))) {
		/* Where did it stop?  In the code flash, which ends at 4 GiB. */
		const char *p = strstr(at, "RIP 0x");

		if (p)
			rip = strtoull(p + 6, NULL, 16);
		printf("# OVMF stopped after %.1f s: %s\n", r.seconds, err);
		CHECK(rip >= 0x100000000ull - 0x37c000 && rip < 0x100000000ull);
		CHECK(strstr(err, "instruction bytes 9b") != NULL);
		/* It wrote nothing to the store. */
		CHECK(same_file(vars, OVMF_VARS));
		machine_destroy(r.m);
		chardev_free(r.com1);
		unlink(vars);
		if (!check_failures__)
			SKIP("this host's KVM cannot run OVMF (%s); it ran the reset vector and SEC out of the code flash up to there",
			     at);
		return;
	}
	if (status < 0)
		fprintf(stderr, "machine_run: %s\n", err);
	CHECK_EQ(status, 0);
	CHECK(r.found);
	printf("# COM1 said \"%s\" after %.1f s\n", r.want, r.seconds);
	if (check_failures__)
		fprintf(stderr, "--- COM1:\n%s\n", chardev_buffer_data(r.com1, &len));
	machine_destroy(r.m);
	chardev_free(r.com1);
	unlink(vars);
}

int main(void)
{
	if (access("/dev/kvm", R_OK | W_OK) != 0)
		SKIP("/dev/kvm is not accessible: %s", strerror(errno));
	if (access(OVMF_CODE, R_OK) != 0 || access(OVMF_VARS, R_OK) != 0)
		SKIP("%s is missing (Debian package ovmf)", OVMF_CODE);
	RUN_TEST(test_bad_images);
	RUN_TEST(test_store_locked);
	RUN_TEST(test_ovmf_boot_manager);
	return check_finish();
}
