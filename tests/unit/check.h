/* SPDX-License-Identifier: MIT */
/* tests/unit/check.h - the assertions of the unit and guest tiers.  A failed
 * CHECK prints file:line and the expression and the test goes on; main()
 * returns check_finish(). */
#ifndef VIVARIUM_CHECK_H
#define VIVARIUM_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static int check_failures__, check_count__;

#define CHECK(expr)                                                          \
	do {                                                                 \
		check_count__++;                                             \
		if (!(expr)) {                                               \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, \
				__LINE__, #expr);                            \
			check_failures__++;                                  \
		}                                                            \
	} while (0)

#define CHECK_EQ(a, b)                                                       \
	do {                                                                 \
		unsigned long long a__ = (unsigned long long)(a);            \
		unsigned long long b__ = (unsigned long long)(b);            \
		check_count__++;                                             \
		if (a__ != b__) {                                            \
			fprintf(stderr,                                      \
				"%s:%d: CHECK_EQ failed: %s == %s "          \
				"(0x%llx != 0x%llx)\n",                      \
				__FILE__, __LINE__, #a, #b, a__, b__);       \
			check_failures__++;                                  \
		}                                                            \
	} while (0)

#define RUN_TEST(fn)                                                         \
	do {                                                                 \
		int before__ = check_failures__;                             \
		fn();                                                        \
		printf("%s %s\n", check_failures__ == before__ ? "ok  " : "FAIL", #fn); \
	} while (0)

/* Meson's exit status for a skipped test; say why first. */
#define SKIP(...)                                                            \
	do {                                                                 \
		printf("SKIP: ");                                            \
		printf(__VA_ARGS__);                                         \
		printf("\n");                                                \
		exit(77);                                                    \
	} while (0)

static inline int check_finish(void)
{
	printf("%d checks, %d failed\n", check_count__, check_failures__);
	return check_failures__ ? 1 : 0;
}

#endif
