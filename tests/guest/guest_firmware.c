/* SPDX-License-Identifier: MIT */
/*
 * tests/guest/guest_firmware.c - SeaBIOS (Debian's bios-256k.bin) on the
 * whole machine: it finds the i440FX/PIIX chipset and fw_cfg, takes its
 * memory map from etc/e820, installs our ACPI tables through
 * etc/table-loader, mirrors its screen to COM1 (etc/sercon-port), and with
 * nothing to boot says so.  Its debug log (port 0x402) tells what it saw.
 */
#include <errno.h>
#include <stdlib.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "host/chardev.h"
#include "guestlib.h"
#include "machine.h"

#define BIOS_PATH "/usr/share/seabios/bios-256k.bin"

struct run {
	struct machine *m;
	struct chardev *com1, *dbg;
	const char *want;		/* stop once COM1 shows this */
	unsigned timeout_s;
	bool found;
	double seconds;
};

static bool buffer_has(struct run *r, struct chardev *c, const char *s)
{
	size_t len;
	bool yes;

	pthread_mutex_lock(machine_lock(r->m));
	yes = strstr(chardev_buffer_data(c, &len), s) != NULL;
	pthread_mutex_unlock(machine_lock(r->m));
	return yes;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *watch(void *opaque)
{
	struct run *r = opaque;
	double t0 = now();

	while (now() - t0 < r->timeout_s) {
		if (buffer_has(r, r->com1, r->want)) {
			r->found = true;
			break;
		}
		usleep(100 * 1000);
	}
	r->seconds = now() - t0;
	machine_stop(r->m, 0);
	return NULL;
}

static void test_post_without_disks(void)
{
	struct run r = { .want = "No bootable device", .timeout_s = 90 };
	struct machine_config cfg = {
		.ram_size = 256ull << 20, .ncpus = 2,
		.firmware = MACHINE_FW_BIOS, .sercon = true,
	};
	char err[512];
	pthread_t t;
	size_t len;
	int status;

	r.com1 = cfg.serial = chardev_buffer_new();
	r.dbg = cfg.debugcon = chardev_buffer_new();
	CHECK_EQ(machine_create(&cfg, &r.m, err, sizeof(err)), 0);
	if (!r.m) {
		fprintf(stderr, "machine_create: %s\n", err);
		return;
	}
	pthread_create(&t, NULL, watch, &r);
	status = machine_run(r.m, err, sizeof(err));
	pthread_join(t, NULL);
	if (status < 0)
		fprintf(stderr, "machine_run: %s\n", err);
	CHECK_EQ(status, 0);
	CHECK(r.found);
	printf("# COM1 said \"%s\" after %.1f s\n", r.want, r.seconds);
	CHECK(buffer_has(&r, r.com1, "SeaBIOS (version"));
	/* What SeaBIOS's debug log says it found. */
	CHECK(buffer_has(&r, r.dbg, "Running on KVM"));
	CHECK(buffer_has(&r, r.dbg, "Moving pm_base to 0x600"));
	CHECK(buffer_has(&r, r.dbg, "qemu/e820: addr 0x0000000000000000 len 0x0000000010000000 [RAM]"));
	/* KVM's pages reserved in the map SeaBIOS hands the OS */
	CHECK(buffer_has(&r, r.dbg, "00000000feffc000 - 00000000ff000000 = 2 RESERVED"));
	CHECK(buffer_has(&r, r.dbg, "PIIX3/PIIX4 init: elcr=00 0c"));
	CHECK(buffer_has(&r, r.dbg, "Found 2 cpu(s)"));
	/* Our tables, placed by etc/table-loader, parsed by SeaBIOS: it
	 * finds the FADT through the XSDT and the keyboard in the DSDT. */
	CHECK(buffer_has(&r, r.dbg, "(via xsdt)"));
	CHECK(buffer_has(&r, r.dbg, "ACPI: parse DSDT"));
	CHECK(!buffer_has(&r, r.dbg, "ACPI: no PS/2 keyboard present"));
	CHECK(buffer_has(&r, r.dbg, "PS2 keyboard initialized"));
	if (check_failures__) {
		fprintf(stderr, "--- COM1:\n%s\n", chardev_buffer_data(r.com1, &len));
		fprintf(stderr, "--- debug log:\n%s\n", chardev_buffer_data(r.dbg, &len));
	}
	machine_destroy(r.m);
	chardev_free(r.com1);
	chardev_free(r.dbg);
}

/* Bad input: one line, nothing runs. */
static void test_bad_firmware(void)
{
	struct machine_config cfg = {
		.ram_size = 64ull << 20, .ncpus = 1,
		.firmware = MACHINE_FW_BIOS, .bios_path = "/nonexistent/bios.bin",
	};
	struct machine *m = NULL;
	char err[512] = "";

	CHECK_EQ(machine_create(&cfg, &m, err, sizeof(err)), -ENOENT);
	CHECK(m == NULL);
	CHECK(strstr(err, "/nonexistent/bios.bin") != NULL);
	{
		char path[] = "/tmp/vivarium-bios-XXXXXX";
		int fd = mkstemp(path);

		CHECK(fd >= 0);
		CHECK_EQ(write(fd, "not a BIOS image", 16), 16);
		close(fd);
		cfg.bios_path = path;
		CHECK_EQ(machine_create(&cfg, &m, err, sizeof(err)), -EINVAL);
		CHECK(strstr(err, "multiple of 64 KiB") != NULL);
		unlink(path);
	}
}

int main(void)
{
	if (access("/dev/kvm", R_OK | W_OK) != 0)
		SKIP("/dev/kvm is not accessible: %s", strerror(errno));
	if (access(BIOS_PATH, R_OK) != 0)
		SKIP("%s is missing (Debian package seabios)", BIOS_PATH);
	RUN_TEST(test_bad_firmware);
	RUN_TEST(test_post_without_disks);
	return check_finish();
}
