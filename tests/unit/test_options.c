/* SPDX-License-Identifier: MIT */
/* Command-line value parsing: sizes and counts. */
#include <errno.h>

#include "check.h"
#include "options.h"

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

int main(void)
{
	RUN_TEST(test_sizes);
	RUN_TEST(test_uints);
	return check_finish();
}
