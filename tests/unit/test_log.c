/* SPDX-License-Identifier: MIT */
/* Rate limiting of guest-triggerable log messages. */
#include "check.h"
#include "log.h"

static void test_ratelimit(void)
{
	struct ratelimit rl = RATELIMIT_INIT;
	unsigned ok = 0;

	for (int i = 0; i < 10000; i++)
		ok += ratelimit_ok(&rl);
	CHECK(ok >= 10 && ok <= 11);
	CHECK(rl.suppressed > 9000);
}

static void test_levels(void)
{
	log_set_level(LOG_ERROR);
	CHECK_EQ(log_get_level(), LOG_ERROR);
	vlog(LOG_DEBUG, "must not appear %d", 1);
	log_set_level(LOG_WARN);
}

int main(void)
{
	RUN_TEST(test_ratelimit);
	RUN_TEST(test_levels);
	return check_finish();
}
