/* SPDX-License-Identifier: MIT */
/* Command-line value parsing: sizes and counts; subcommand dispatch. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "options.h"
#include "block/block.h"
#include "machine.h"

static void test_sizes(void)
{
	uint64_t v = 0;

	CHECK_EQ(parse_size("512M", &v), 0);
	CHECK_EQ(v, 512ull << 20);
	CHECK_EQ(parse_size("2G", &v), 0);
	CHECK_EQ(v, 2ull << 30);
	CHECK_EQ(parse_size("2g", &v), 0);
	CHECK_EQ(v, 2ull << 30);
	CHECK_EQ(parse_size("1GiB", &v), 0);
	CHECK_EQ(v, 1ull << 30);
	CHECK_EQ(parse_size("64K", &v), 0);
	CHECK_EQ(v, 64ull << 10);
	CHECK_EQ(parse_size("4096", &v), 0);
	CHECK_EQ(v, 4096);
	CHECK_EQ(parse_size("12Q", &v), -EINVAL);
	CHECK_EQ(parse_size("", &v), -EINVAL);
	CHECK_EQ(parse_size("-1G", &v), -EINVAL);
	CHECK_EQ(parse_size("G", &v), -EINVAL);
	CHECK_EQ(parse_size("1G2", &v), -EINVAL);
	CHECK_EQ(parse_size("99999999999999999999", &v), -ERANGE);
	CHECK_EQ(parse_size("99999999999T", &v), -ERANGE);
}

static void test_uints(void)
{
	unsigned v = 0;

	CHECK_EQ(parse_uint("2", 1, 64, &v), 0);
	CHECK_EQ(v, 2);
	CHECK_EQ(parse_uint("0", 1, 64, &v), -ERANGE);
	CHECK_EQ(parse_uint("65", 1, 64, &v), -ERANGE);
	CHECK_EQ(parse_uint("2x", 1, 64, &v), -EINVAL);
	CHECK_EQ(parse_uint("", 1, 64, &v), -EINVAL);
	CHECK_EQ(parse_uint(" 2", 1, 64, &v), -EINVAL);
}

static void test_vga(void)
{
	struct machine_config c = { 0 };

	CHECK_EQ(parse_vga("virtio", &c), 0);
	CHECK(!c.no_vga && c.virtio_gpu);
	CHECK_EQ(parse_vga("none", &c), 0);
	CHECK(c.no_vga && !c.virtio_gpu);
	CHECK_EQ(parse_vga("std", &c), 0);
	CHECK(!c.no_vga && !c.virtio_gpu);
	CHECK_EQ(parse_vga("virtio-vga", &c), -EINVAL);
	CHECK_EQ(parse_vga("", &c), -EINVAL);
	CHECK(!c.no_vga && !c.virtio_gpu);
}

static void test_drive_specs(void)
{
	struct machine_drive d;
	char err[256];

	CHECK_EQ(parse_drive_spec("disk.img", &d, err, sizeof(err)), 0);
	CHECK(!strcmp(d.path, "disk.img"));
	CHECK_EQ(d.format, BLK_FMT_AUTO);
	CHECK_EQ(d.bus, MACHINE_IF_VIRTIO);
	CHECK(!d.readonly);
	CHECK_EQ(parse_drive_spec("/a,,b.qcow2,format=qcow2,if=ata,readonly", &d,
				  err, sizeof(err)), 0);
	CHECK(!strcmp(d.path, "/a,b.qcow2"));
	CHECK_EQ(d.format, BLK_FMT_QCOW2);
	CHECK_EQ(d.bus, MACHINE_IF_ATA);
	CHECK(d.readonly);
	CHECK_EQ(parse_drive_spec("x,format=vmdk", &d, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "vmdk") != NULL);
	CHECK_EQ(parse_drive_spec("x,if=scsi", &d, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "if=scsi") != NULL);
	CHECK_EQ(parse_drive_spec(",format=raw", &d, err, sizeof(err)), -EINVAL);
	CHECK_EQ(parse_drive_spec("x,", &d, err, sizeof(err)), -EINVAL);
}

/* subcommand_run: what a command with subcommands does with its argv. */
static int sub_argc, usage_out, usage_err;
static char *sub_arg0;

static int sub_fn(int argc, char **argv)
{
	sub_argc = argc;
	sub_arg0 = argv[0];
	return 7;
}

static void sub_usage(FILE *f)
{
	if (f == stdout)
		usage_out++;
	else
		usage_err++;
}

static void test_subcommands(void)
{
	static const struct subcommand subs[] = { { "one", sub_fn }, { "two", sub_fn } };
	char *run[] = { "cmd", "two", "x", NULL }, *help[] = { "cmd", "help", NULL };
	char *h[] = { "cmd", "-h", NULL }, *other[] = { "cmd", "three", NULL };
	int st = -1;

	CHECK(subcommand_run(subs, 2, sub_usage, 3, run, &st));
	CHECK_EQ(st, 7);
	CHECK_EQ(sub_argc, 2);
	CHECK(sub_arg0 == run[1]);
	CHECK(subcommand_run(subs, 2, sub_usage, 1, run, &st));
	CHECK_EQ(st, 2);
	CHECK_EQ(usage_err, 1);
	CHECK(subcommand_run(subs, 2, sub_usage, 2, help, &st));
	CHECK(subcommand_run(subs, 2, sub_usage, 2, h, &st));
	CHECK_EQ(st, 0);
	CHECK_EQ(usage_out, 2);
	st = -1;
	CHECK(!subcommand_run(subs, 2, sub_usage, 2, other, &st));
	CHECK_EQ(st, -1);
	CHECK_EQ(usage_out + usage_err, 3);
}

int main(void)
{
	RUN_TEST(test_sizes);
	RUN_TEST(test_uints);
	RUN_TEST(test_drive_specs);
	RUN_TEST(test_vga);
	RUN_TEST(test_subcommands);
	return check_finish();
}
