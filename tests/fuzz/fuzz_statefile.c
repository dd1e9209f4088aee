/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_statefile.c - the machine-state file reader on hostile
 * input.  A libFuzzer target, also run by fuzz_runner.c as the unit test
 * fuzz_statefile.  Each input is parsed as it is, and again "resealed"
 * (its end magic and SHA-256 trailer rewritten) so that mutations reach
 * the section parser behind the checksum.  What parses must serialise
 * back to the same bytes and give every payload back in normal form.
 */
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "fuzz.h"
#include "snapshot/statefile.h"

static void check_parsed(struct statefile *sf, const uint8_t *data, size_t size)
{
	char err[256];
	GBytes *again;
	int r;

	for (unsigned i = 0; i < statefile_count(sf); i++) {
		GVariant *v = statefile_get(sf, statefile_id(sf, i), NULL, NULL,
					    err, sizeof(err));

		if (!v || !g_variant_is_normal_form(v))
			__builtin_trap();
		g_free(g_variant_print(v, TRUE));
		g_variant_unref(v);
	}
	again = statefile_serialise(sf, &r);
	if (!again || g_bytes_get_size(again) != size ||
	    memcmp(g_bytes_get_data(again, NULL), data, size))
		__builtin_trap();
	g_bytes_unref(again);
}

static void one(const uint8_t *data, size_t size)
{
	struct statefile *sf = NULL;
	char err[256];

	if (statefile_parse(data, size, 0, &sf, err, sizeof(err)) == 0) {
		check_parsed(sf, data, size);
		statefile_free(sf);
	} else if (sf) {
		__builtin_trap();	/* failure leaves nothing behind */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;
	GChecksum *sum;
	gsize dlen = 32;

	if (size > (1u << 20))
		return 0;
	one(data, size);
	if (size < 8 + 40)
		return 0;
	copy = malloc(size);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	memcpy(copy, STATEFILE_MAGIC, 8);
	memcpy(copy + size - 40, STATEFILE_END_MAGIC, 8);
	sum = g_checksum_new(G_CHECKSUM_SHA256);
	g_checksum_update(sum, copy, size - 32);
	g_checksum_get_digest(sum, copy + size - 32, &dlen);
	g_checksum_free(sum);
	one(copy, size);
	free(copy);
	return 0;
}

void fuzz_make_seeds(void (*add)(const void *data, size_t len))
{
	struct statefile *sf = statefile_new(42);
	uint8_t bytes[40];
	GBytes *b;
	int r;

	for (unsigned i = 0; i < sizeof(bytes); i++)
		bytes[i] = (uint8_t)i;
	statefile_put(sf, "pic", 1, g_variant_new("(yyyy)", 1, 2, 3, 4));
	statefile_put(sf, "uart.0", 1,
		      g_variant_new("(s@ayas)", "x",
				    g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, bytes,
							      sizeof(bytes), 1),
				    NULL));
	statefile_put(sf, "cpu.0", 7, g_variant_new("a{sv}", NULL));
	/* A NIC backend's section: a variant inside the payload's
	 * (fuzz_slirp_state loads its contents). */
	statefile_put(sf, "net.0", 1,
		      g_variant_new("(suv)", "nat", 1u,
				    g_variant_new("(is@ay)", 4, "4.7.0",
						  g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE,
									    bytes, 19, 1))));
	b = statefile_serialise(sf, &r);
	if (b) {
		add(g_bytes_get_data(b, NULL), g_bytes_get_size(b));
		g_bytes_unref(b);
	}
	statefile_free(sf);
	sf = statefile_new(0);
	b = statefile_serialise(sf, &r);
	if (b) {
		add(g_bytes_get_data(b, NULL), g_bytes_get_size(b));
		g_bytes_unref(b);
	}
	statefile_free(sf);
}
