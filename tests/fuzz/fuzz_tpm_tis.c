/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_tpm_tis.c - the TPM's FIFO interface
 * (vmm-core/devices/tpm_tis.c) under a hostile guest, on a null backend
 * that answers every command with a canned TPM_RC_FAILURE (or fails, or
 * returns a response whose size field lies, as the input picks).
 *
 * Input: operations until the input ends, each an opcode byte (modulo
 * OP_COUNT) and its arguments (bytes past the end read as 0):
 *   OP_READ   loc, reg, size              an MMIO read: locality loc % 6
 *             (5: past the range), register reg (an index into the
 *             registers, or any offset when >= 0xc0), size 1/2/4/8
 *   OP_WRITE  loc, reg, size, le64 value  an MMIO write, the same way
 *   OP_CMD    loc, le16 len, mode         a command the way drivers send
 *             it: request the locality, commandReady, len bytes (a header
 *             whose size field is len) through the FIFO, tpmGo; the
 *             backend answers as mode % 3 says
 *   OP_RESET                              the machine's reset of it
 *   OP_SAVE                               save, load into a fresh device
 * Checked (abort on failure): burstCount never above 64, STS of an
 * inactive locality all-ones, every response read is at most 4096 bytes,
 * every save loads and saves the same again.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "fuzz_input.h"

#include <glib.h>

#include "devices/tpm_tis.h"
#include "log.h"

enum { OP_READ, OP_WRITE, OP_CMD, OP_RESET, OP_SAVE, OP_COUNT };

const char fuzz_target[] = "fuzz_tpm_tis";

static const uint16_t regs[] = {
	0x000, 0x008, 0x00c, 0x010, 0x014, 0x018, 0x019, 0x01b, 0x024,
	0x025, 0x030, 0x080, 0x0bf, 0xf00, 0xf04, 0xffc,
};

static unsigned mode;

static long null_transmit(void *opaque, unsigned locality, const uint8_t *cmd,
			  size_t len, uint8_t *rsp, size_t rsp_max)
{
	static const uint8_t fail[10] = { 0x80, 0x01, 0, 0, 0, 10, 0, 0, 1, 1 };

	(void)opaque, (void)cmd;
	if (locality > 4 || len < 10 || len > TPM_TIS_BUFFER_SIZE)
		abort();	/* the device must not pass these on */
	if (mode == 1)
		return -5;
	memcpy(rsp, fail, sizeof(fail));
	if (mode == 2) {
		rsp[5] = 0xff;		/* says 255 bytes, gives 10 */
		return rsp_max < 12 ? 10 : 12;
	}
	return sizeof(fail);
}

static uint64_t offset_of(struct in *in)
{
	uint8_t loc = in_u8(in) % 6, r = in_u8(in);
	uint16_t reg = r < 0xc0 ? regs[r % (sizeof(regs) / sizeof(regs[0]))]
				: (uint16_t)(in_u16(in) & 0xfff);

	return (uint64_t)loc * 0x1000 + reg;
}

static void check_sts(struct tpm_tis *t)
{
	for (unsigned l = 0; l < TPM_TIS_LOCALITIES; l++) {
		uint32_t sts = (uint32_t)tpm_tis_read(t, l * 0x1000u + 0x18, 4);
		bool active = tpm_tis_read(t, l * 0x1000u, 1) & 0x20;

		if (!active && sts != 0xffffffffu)
			abort();
		if (active && ((sts >> 8) & 0xffff) > 64)
			abort();
	}
}

static void command(struct tpm_tis *t, struct in *in)
{
	uint64_t base = (uint64_t)(in_u8(in) % 5) * 0x1000;
	uint16_t len = in_u16(in) % (TPM_TIS_BUFFER_SIZE + 64);
	unsigned got = 0;

	mode = in_u8(in) % 3;
	tpm_tis_write(t, base, 0x02, 1);		/* requestUse */
	tpm_tis_write(t, base + 0x18, 0x40, 1);		/* commandReady */
	for (unsigned i = 0; i < len; i++) {
		uint8_t b = i == 0 ? 0x80 : i == 1 ? 0x01 :
			    (i >= 2 && i < 6) ? (uint8_t)(len >> (8 * (5 - i))) :
			    in_u8(in);

		tpm_tis_write(t, base + 0x24, b, 1);
	}
	tpm_tis_write(t, base + 0x18, 0x20, 1);		/* tpmGo */
	/* Another locality may hold the TPM: its STS reads all-ones. */
	for (;;) {
		uint32_t sts = (uint32_t)tpm_tis_read(t, base + 0x18, 4);

		if (sts == 0xffffffffu || !(sts & 0x10) || got > 4096)
			break;
		(void)tpm_tis_read(t, base + 0x24, 1);
		got++;
	}
	if (got > 4096)
		abort();
	tpm_tis_write(t, base + 0x18, 0x40, 1);
}

static struct tpm_tis *round_trip(struct tpm_tis *t,
				  const struct tpm_backend *be)
{
	const struct device_ops *ops = &tpm_tis_device_ops;
	GVariant *a = g_variant_ref_sink(ops->save(t)), *b;
	struct tpm_tis *t2 = tpm_tis_new(be, false);
	char err[256];

	if (!t2 || ops->load(t2, ops->state_version, a, err, sizeof(err)) < 0) {
		fprintf(stderr, "a saved state did not load: %s\n", err);
		abort();
	}
	b = g_variant_ref_sink(ops->save(t2));
	if (!g_variant_equal(a, b))
		abort();
	g_variant_unref(a);
	g_variant_unref(b);
	tpm_tis_free(t);
	return t2;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tpm_backend be = { .transmit = null_transmit };
	struct in in = { data, size, 0 };
	struct tpm_tis *t;
	unsigned ops = 0;

	log_set_level(LOG_ERROR);
	mode = 0;
	t = tpm_tis_new(&be, false);
	if (!t)
		abort();
	while (in_more(&in) && ops++ < 4096) {
		uint8_t op = in_u8(&in) % OP_COUNT;
		uint64_t off;
		unsigned sz;

		switch (op) {
		case OP_READ:
			off = offset_of(&in);
			sz = 1u << (in_u8(&in) & 3);
			(void)tpm_tis_read(t, off, sz);
			break;
		case OP_WRITE:
			off = offset_of(&in);
			sz = 1u << (in_u8(&in) & 3);
			tpm_tis_write(t, off, (uint64_t)in_u32(&in) |
					      (uint64_t)in_u32(&in) << 32, sz);
			break;
		case OP_CMD:
			command(t, &in);
			break;
		case OP_RESET:
			tpm_tis_reset(t);
			break;
		case OP_SAVE:
			t = round_trip(t, &be);
			break;
		}
		check_sts(t);
	}
	tpm_tis_free(t);
	return 0;
}

void fuzz_make_seeds(void (*add)(const void *, size_t))
{
	static struct seed s;

	/* A command in locality 0, another in 2 with a lying backend, reads
	 * of every register, a reset. */
	s.n = 0;
	put8(&s, OP_CMD); put8(&s, 0); put16(&s, 12); put8(&s, 0);
	put16(&s, 0x4401); put16(&s, 0);
	put8(&s, OP_CMD); put8(&s, 2); put16(&s, 10); put8(&s, 2);
	put16(&s, 0x7b01);
	for (uint8_t r = 0; r < 16; r++) {
		put8(&s, OP_READ); put8(&s, 2); put8(&s, r); put8(&s, 2);
	}
	put8(&s, OP_WRITE); put8(&s, 0); put8(&s, 0); put8(&s, 0);
	put32(&s, 0x08); put32(&s, 0);
	put8(&s, OP_SAVE);
	put8(&s, OP_RESET);
	add(s.b, s.n);
}
