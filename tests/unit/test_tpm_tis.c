/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_tpm_tis.c - the TPM's FIFO interface (devices/tpm_tis.c)
 * on a real swtpm (host/swtpm.c), driven the way Linux's tpm_tis_core.c
 * and SeaBIOS's tpm_drivers.c drive it: request locality 0, commandReady,
 * the command through TPM_DATA_FIFO in burstCount pieces, Expect checked,
 * tpmGo, dataAvail polled, the response read, commandReady.  TPM2_Startup,
 * TPM2_PCR_Extend of PCR 16 and TPM2_PCR_Read (the value checked against
 * SHA-256 computed here), TPM2_GetRandom; swtpm's CMD_INIT resetting the
 * PCRs; a killed or wedged swtpm answered with TPM_RC_FAILURE; its state
 * moved to a second swtpm.  Hostile sequences
 * (commands longer than the buffer or than their size field, FIFO reads
 * with nothing there, another locality's writes, tpmGo without a
 * command, odd widths) run on a canned backend first, so they run even
 * where swtpm is missing (then the rest skips: exit 77).
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "check.h"
#include "sandboxed.h"
#include "statetest.h"
#include "tpm2cmd.h"

#include "devices/tpm_tis.h"
#include "host/swtpm.h"

#define ACCESS(l)	(((l) << 12) + 0x000)
#define STS(l)		(((l) << 12) + 0x018)
#define FIFO(l)		(((l) << 12) + 0x024)
#define XFIFO(l)	(((l) << 12) + 0x080)
#define IFACE_ID(l)	(((l) << 12) + 0x030)
#define INTF_CAP(l)	(((l) << 12) + 0x014)
#define DID_VID(l)	(((l) << 12) + 0xf00)

#define A_REQUEST	0x02
#define A_PENDING	0x04
#define A_SEIZE		0x08
#define A_SEIZED	0x10
#define A_ACTIVE	0x20
#define A_VALID		0x80
#define S_EXPECT	0x08
#define S_AVAIL		0x10
#define S_GO		0x20
#define S_READY		0x40
#define S_VALID		0x80

static struct tpm_tis *t;

static uint32_t rd(uint64_t off, unsigned size)
{
	return (uint32_t)tpm_tis_read(t, off, size);
}

static void wr(uint64_t off, uint64_t v, unsigned size)
{
	tpm_tis_write(t, off, v, size);
}

/* Poll TPM_STS until (sts & mask) == want; false after ~30 s. */
static bool wait_sts(unsigned loc, uint32_t mask, uint32_t want)
{
	for (int i = 0; i < 30000; i++) {
		if ((rd(STS(loc), 4) & mask) == want)
			return true;
		usleep(1000);
	}
	return false;
}

static bool request_locality(unsigned loc)
{
	wr(ACCESS(loc), A_REQUEST, 1);
	return (rd(ACCESS(loc), 1) & (A_ACTIVE | A_VALID | A_REQUEST)) ==
	       (A_ACTIVE | A_VALID);
}

static void release_locality(unsigned loc)
{
	wr(ACCESS(loc), A_ACTIVE, 1);
}

/* tpm_tis_send_data()'s sequence.  Returns 0, or -1 where a check of the
 * driver's would have failed. */
static int send_cmd(unsigned loc, const uint8_t *cmd, size_t len)
{
	size_t n = 0;

	if (!(rd(STS(loc), 1) & S_READY)) {
		wr(STS(loc), S_READY, 1);
		if (!wait_sts(loc, S_READY, S_READY))
			return -1;
	}
	while (n < len - 1) {
		uint32_t burst = (rd(STS(loc), 4) >> 8) & 0xffff;

		if (!burst)
			return -1;
		for (; burst && n < len - 1; burst--)
			wr(FIFO(loc), cmd[n++], 1);
		if (!wait_sts(loc, S_VALID, S_VALID))
			return -1;
		if (!(rd(STS(loc), 1) & S_EXPECT))
			return -1;
	}
	wr(FIFO(loc), cmd[n], 1);
	if (!wait_sts(loc, S_VALID, S_VALID) || (rd(STS(loc), 1) & S_EXPECT))
		return -1;
	wr(STS(loc), S_GO, 1);
	return 0;
}

/* tpm_tis_recv()'s: the header, then the rest, in burstCount pieces.
 * Returns the length, or -1. */
static long recv_rsp(unsigned loc, uint8_t *buf, size_t max)
{
	size_t n = 0, want = 10;

	if (!wait_sts(loc, S_AVAIL | S_VALID, S_AVAIL | S_VALID))
		return -1;
	while (n < want) {
		uint32_t burst = (rd(STS(loc), 4) >> 8) & 0xffff;

		if (!burst)
			return -1;
		for (; burst && n < want; burst--)
			buf[n++] = (uint8_t)rd(FIFO(loc), 1);
		if (n == 10) {
			want = tpm2_be32(buf + 2);
			if (want < 10 || want > max)
				return -1;
		}
	}
	if (!wait_sts(loc, S_VALID, S_VALID) || (rd(STS(loc), 1) & S_AVAIL))
		return -1;	/* "left over data" */
	wr(STS(loc), S_READY, 1);
	return (long)n;
}

static long transact(unsigned loc, const uint8_t *cmd, size_t len,
		     uint8_t *rsp, size_t max)
{
	if (send_cmd(loc, cmd, len) < 0)
		return -1;
	return recv_rsp(loc, rsp, max);
}

/* ---- a canned backend: the register interface alone ------------------- */

static int canned_calls;
static unsigned canned_loc;

static long canned_transmit(void *opaque, unsigned locality,
			    const uint8_t *cmd, size_t len, uint8_t *rsp,
			    size_t rsp_max)
{
	static const uint8_t ok[12] = { 0x80, 0x01, 0, 0, 0, 12, 0, 0, 0, 0,
					0xab, 0xcd };

	(void)opaque, (void)cmd, (void)len;
	canned_calls++;
	canned_loc = locality;
	if (rsp_max < sizeof(ok))
		return -ENOSPC;
	memcpy(rsp, ok, sizeof(ok));
	return sizeof(ok);
}

static void canned_setup(bool threaded)
{
	struct tpm_backend be = { .transmit = canned_transmit };

	t = tpm_tis_new(&be, threaded);
	CHECK(t != NULL);
	canned_calls = 0;
}

static const uint8_t cmd_startup[12] = {
	0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0x00, 0x00,
};

static void test_identity(void)
{
	canned_setup(false);
	CHECK_EQ(rd(DID_VID(0), 4), 0x00011014);
	CHECK_EQ(tpm_tis_read(t, DID_VID(3), 8), 0x0100011014ull);
	CHECK_EQ(rd(IFACE_ID(0), 4) & 0xf, 0);		/* FIFO, TPM 2.0 */
	CHECK(rd(IFACE_ID(0), 4) & (1u << 13));		/* CapTIS */
	CHECK_EQ((rd(INTF_CAP(0), 4) >> 28) & 7, 3);	/* TPM 2.0 FIFO */
	CHECK_EQ(rd(INTF_CAP(0), 4) & 0xff, 0);		/* no interrupts */
	/* No locality yet: STS reads all-ones, ACCESS is valid. */
	CHECK_EQ(rd(STS(0), 4), 0xffffffffu);
	CHECK_EQ(rd(ACCESS(0), 1) & (A_VALID | A_ACTIVE), A_VALID);
	/* Widths and offsets of every kind: nothing past the range. */
	CHECK_EQ(tpm_tis_read(t, TPM_TIS_SIZE - 1, 2), ~0ull);
	CHECK_EQ(tpm_tis_read(t, TPM_TIS_SIZE, 1), ~0ull);
	tpm_tis_write(t, TPM_TIS_SIZE - 4, ~0ull, 8);
	CHECK_EQ(rd(0x0ffe, 4) & 0xffff, 0xffff);	/* reserved bytes */
	for (uint64_t off = 0; off < TPM_TIS_SIZE; off += 0x3f)
		(void)tpm_tis_read(t, off, 1u << (off % 4));
	tpm_tis_free(t);
}

static void test_canned_command(bool threaded)
{
	uint8_t rsp[64];

	canned_setup(threaded);
	CHECK(request_locality(0));
	CHECK_EQ(transact(0, cmd_startup, sizeof(cmd_startup), rsp,
			  sizeof(rsp)), 12);
	CHECK_EQ(rsp[10], 0xab);
	CHECK_EQ(canned_calls, 1);
	CHECK_EQ(canned_loc, 0);
	/* responseRetry: the same response again. */
	CHECK_EQ(send_cmd(0, cmd_startup, sizeof(cmd_startup)), 0);
	CHECK(wait_sts(0, S_AVAIL, S_AVAIL));
	CHECK_EQ(rd(FIFO(0), 4), 0x00000180);	/* 80 01 00 00 */
	wr(STS(0), 0x02, 1);
	CHECK_EQ(tpm_tis_read(t, XFIFO(0) + 5, 8), 0x00000c0000000180ull);
	wr(STS(0), S_READY, 1);
	release_locality(0);
	CHECK_EQ(rd(ACCESS(0), 1) & A_ACTIVE, 0);
	tpm_tis_free(t);
}

static void test_canned_sync(void)
{
	test_canned_command(false);
}

static void test_canned_threaded(void)
{
	test_canned_command(true);
}

static void test_hostile_sizes(void)
{
	uint8_t cmd[TPM_TIS_BUFFER_SIZE + 100], rsp[64];

	canned_setup(true);
	CHECK(request_locality(0));
	/* Longer than the buffer, the size field saying so: the FIFO takes
	 * 4096 bytes, burstCount falls to 0, Expect drops, the device answers
	 * TPM_RC_COMMAND_SIZE itself. */
	memset(cmd, 0x5a, sizeof(cmd));
	memcpy(cmd, cmd_startup, 10);
	tpm2_put32(cmd + 2, sizeof(cmd));
	wr(STS(0), S_READY, 1);
	for (size_t i = 0; i < sizeof(cmd); i++)
		wr(FIFO(0), cmd[i], 1);
	CHECK_EQ((rd(STS(0), 4) >> 8) & 0xffff, 0);
	CHECK_EQ(rd(STS(0), 1) & S_EXPECT, 0);
	wr(STS(0), S_GO, 1);
	CHECK_EQ(recv_rsp(0, rsp, sizeof(rsp)), 10);
	CHECK_EQ(tpm2_rc(rsp), TPM_RC_COMMAND_SIZE);
	CHECK_EQ(canned_calls, 0);

	/* More bytes than the size field says. */
	memcpy(cmd, cmd_startup, 12);
	tpm2_put32(cmd + 2, 10);
	wr(STS(0), S_READY, 1);
	for (size_t i = 0; i < 12; i++)
		wr(FIFO(0), cmd[i], 1);
	wr(STS(0), S_GO, 1);
	CHECK_EQ(recv_rsp(0, rsp, sizeof(rsp)), 10);
	CHECK_EQ(tpm2_rc(rsp), TPM_RC_COMMAND_SIZE);

	/* A size field below the header's 10 bytes. */
	tpm2_put32(cmd + 2, 4);
	wr(STS(0), S_READY, 1);
	for (size_t i = 0; i < 6; i++)
		wr(FIFO(0), cmd[i], 1);
	CHECK_EQ(rd(STS(0), 1) & S_EXPECT, 0);
	wr(STS(0), S_GO, 1);
	CHECK_EQ(recv_rsp(0, rsp, sizeof(rsp)), 10);
	CHECK_EQ(tpm2_rc(rsp), TPM_RC_COMMAND_SIZE);
	CHECK_EQ(canned_calls, 0);

	/* A good command still works afterwards, in one 8-byte and one
	 * 4-byte FIFO write. */
	wr(STS(0), S_READY, 1);
	tpm_tis_write(t, FIFO(0), 0x00000c0000000180ull, 8);
	tpm_tis_write(t, XFIFO(0) + 7, 0x00004401, 4);
	CHECK_EQ(rd(STS(0), 1) & S_EXPECT, 0);
	wr(STS(0), S_GO, 1);
	CHECK_EQ(recv_rsp(0, rsp, sizeof(rsp)), 12);
	CHECK_EQ(canned_calls, 1);
	tpm_tis_free(t);
}

static void test_hostile_sequences(void)
{
	uint8_t rsp[64];

	canned_setup(true);
	/* FIFO reads with nothing there; tpmGo without a command. */
	CHECK(request_locality(0));
	CHECK_EQ(rd(FIFO(0), 1), 0xff);
	CHECK_EQ(rd(FIFO(0), 4), 0xffffffffu);
	wr(STS(0), S_GO, 1);
	wr(STS(0), S_READY, 1);
	wr(STS(0), S_GO, 1);
	CHECK_EQ(rd(STS(0), 1) & (S_READY | S_AVAIL), S_READY);
	CHECK_EQ(canned_calls, 0);
	/* Half a command, then tpmGo: Expect is still set, nothing runs. */
	wr(FIFO(0), 0x80, 1);
	wr(FIFO(0), 0x01, 1);
	wr(STS(0), S_GO, 1);
	CHECK(rd(STS(0), 1) & S_EXPECT);
	CHECK_EQ(canned_calls, 0);
	wr(STS(0), S_READY, 1);		/* abort */

	/* Locality 1 while 0 is active: its FIFO and STS writes drop, its
	 * STS reads all-ones, its request is pending. */
	wr(FIFO(1), 0x80, 1);
	wr(STS(1), S_GO, 1);
	CHECK_EQ(rd(STS(1), 4), 0xffffffffu);
	CHECK_EQ(rd(FIFO(1), 1), 0xff);
	wr(ACCESS(1), A_REQUEST, 1);
	CHECK_EQ(rd(ACCESS(1), 1) & (A_REQUEST | A_ACTIVE), A_REQUEST);
	CHECK(rd(ACCESS(0), 1) & A_PENDING);
	CHECK_EQ(transact(0, cmd_startup, sizeof(cmd_startup), rsp,
			  sizeof(rsp)), 12);
	CHECK_EQ(canned_loc, 0);
	/* Relinquished: the pending request is granted. */
	release_locality(0);
	CHECK_EQ(rd(ACCESS(1), 1) & (A_REQUEST | A_ACTIVE), A_ACTIVE);
	CHECK_EQ(transact(1, cmd_startup, sizeof(cmd_startup), rsp,
			  sizeof(rsp)), 12);
	CHECK_EQ(canned_loc, 1);
	/* Seize: only a higher locality; the seized one learns it. */
	wr(ACCESS(0), A_SEIZE, 1);
	CHECK(rd(ACCESS(1), 1) & A_ACTIVE);
	wr(ACCESS(3), A_SEIZE, 1);
	CHECK(rd(ACCESS(3), 1) & A_ACTIVE);
	CHECK(rd(ACCESS(1), 1) & A_SEIZED);
	wr(ACCESS(1), A_SEIZED, 1);
	CHECK_EQ(rd(ACCESS(1), 1) & A_SEIZED, 0);
	/* A command in flight when the locality goes: bounded, and the
	 * interface is usable again. */
	CHECK_EQ(send_cmd(3, cmd_startup, sizeof(cmd_startup)), 0);
	release_locality(3);
	CHECK(request_locality(2));
	CHECK_EQ(transact(2, cmd_startup, sizeof(cmd_startup), rsp,
			  sizeof(rsp)), 12);
	tpm_tis_reset(t);
	CHECK_EQ(rd(ACCESS(2), 1) & A_ACTIVE, 0);
	tpm_tis_free(t);
}

/* Save mid-command and mid-response, load into a fresh device, go on
 * there; refused states leave the device as it was. */
static void test_save_load(void)
{
	const struct device_ops *ops = &tpm_tis_device_ops;
	struct tpm_backend be = { .transmit = canned_transmit };
	struct tpm_tis *t2;
	GVariant *s1, *s2;
	char err[256] = "";

	canned_setup(true);
	CHECK(request_locality(0));
	wr(ACCESS(2), A_REQUEST, 1);
	wr(0x008, 0x80000001u, 4);			/* INT_ENABLE(0) */
	wr(STS(0), S_READY, 1);
	for (int i = 0; i < 7; i++)			/* half a command */
		wr(FIFO(0), cmd_startup[i], 1);
	s1 = g_variant_ref_sink(ops->save(t));
	CHECK(g_variant_is_of_type(s1, G_VARIANT_TYPE(TPM_TIS_STATE_TYPE)));
	t2 = tpm_tis_new(&be, true);
	CHECK_EQ(ops->load(t2, 1, s1, err, sizeof(err)), 0);
	s2 = g_variant_ref_sink(ops->save(t2));
	CHECK(g_variant_equal(s1, s2));
	g_variant_unref(s2);
	tpm_tis_free(t);
	t = t2;
	/* The rest of the command on the loaded device. */
	CHECK(rd(STS(0), 1) & S_EXPECT);
	CHECK(rd(ACCESS(0), 1) & A_PENDING);
	CHECK_EQ(rd(0x008, 4), 0x80000001u);
	for (int i = 7; i < 12; i++)
		wr(FIFO(0), cmd_startup[i], 1);
	CHECK_EQ(rd(STS(0), 1) & S_EXPECT, 0);
	wr(STS(0), S_GO, 1);
	CHECK(wait_sts(0, S_AVAIL, S_AVAIL));
	(void)rd(FIFO(0), 4);				/* 4 of 12 read */

	/* Mid-response. */
	g_variant_unref(s1);
	s1 = g_variant_ref_sink(ops->save(t));
	t2 = tpm_tis_new(&be, false);
	CHECK_EQ(ops->load(t2, 1, s1, err, sizeof(err)), 0);
	CHECK_EQ(tpm_tis_read(t2, FIFO(0), 8), 0xcdab000000000c00ull);
	CHECK_EQ(tpm_tis_read(t2, STS(0), 1) & S_AVAIL, 0);

	/* Hostile states: refused in one line, nothing changed. */
	state_refused(ops, t2, 2, g_variant_ref(s1), "tpm-tis: state version 2");
	state_refused(ops, t2, 1, g_variant_new("(u)", 1), "tpm-tis: state is of type");
	state_refused(ops, t2, 1, state_with(s1, g_variant_new_byte(3), 1, 0),
		      "tpm-tis: state 3");
	state_refused(ops, t2, 1, state_with(s1, g_variant_new_byte(5), 1, 1),
		      "tpm-tis: active locality 5");
	state_refused(ops, t2, 1, state_with(s1, g_variant_new_uint32(13), 1, 7),
		      "tpm-tis: 12 bytes, offset 13");
	state_refused(ops, t2, 1, state_with(s1, g_variant_new_byte(2), 2, 2, 1),
		      "tpm-tis: locality 1's registers");
	state_refused(ops, t2, 1, state_with(s1, g_variant_new_byte(1), 2, 2, 0),
		      "tpm-tis: locality 0's registers");	/* active + request */
	state_refused(ops, t2, 1, state_with(s1, g_variant_new_uint32(0x100), 2, 4, 3),
		      "tpm-tis: locality 3's registers");
	{
		uint8_t big[TPM_TIS_BUFFER_SIZE + 1] = { 0 };

		state_refused(ops, t2, 1,
			      state_with(s1, g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE,
					 big, sizeof(big), 1), 1, 6),
			      "tpm-tis: buffer of 4097 bytes");
		state_refused(ops, t2, 1,
			      state_with(s1, g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE,
					 big, 4, 1), 1, 5),
			      "tpm-tis: per-locality arrays");
	}
	g_variant_unref(s1);
	tpm_tis_free(t2);
	tpm_tis_free(t);
}

/* ---- on swtpm ----------------------------------------------------------- */

static char *state_dir;
static struct swtpm *sw;

static void swtpm_setup(void)
{
	struct tpm_backend be;
	char err[256] = "";
	int r;

	r = swtpm_start(state_dir, &sw, err, sizeof(err));
	if (r < 0)
		fprintf(stderr, "swtpm_start: %s\n", err);
	CHECK_EQ(r, 0);
	swtpm_backend(sw, &be);
	t = tpm_tis_new(&be, true);
	CHECK(t != NULL);
}

static void swtpm_teardown(void)
{
	tpm_tis_free(t);
	swtpm_stop(sw);
	t = NULL;
	sw = NULL;
}

static uint32_t startup(void)
{
	uint8_t rsp[64];

	if (transact(0, cmd_startup, sizeof(cmd_startup), rsp, sizeof(rsp)) != 10)
		return 0xffffffffu;
	return tpm2_rc(rsp);
}

/* TPM2_PCR_Extend(PCR @pcr, SHA-256 @digest).  Returns the TPM rc. */
static uint32_t pcr_extend(unsigned pcr, const uint8_t digest[32])
{
	uint8_t cmd[TPM2_PCR_EXTEND_LEN], rsp[128];
	size_t n = tpm2_cmd_pcr_extend(cmd, pcr, digest);

	if (transact(0, cmd, n, rsp, sizeof(rsp)) < 10)
		return 0xffffffffu;
	return tpm2_rc(rsp);
}

/* TPM2_PCR_Read of SHA-256 PCR @pcr into @out.  Returns the TPM rc. */
static uint32_t pcr_read(unsigned pcr, uint8_t out[32])
{
	uint8_t cmd[TPM2_PCR_READ_LEN], rsp[128];
	long n = transact(0, cmd, tpm2_cmd_pcr_read(cmd, 1u << pcr), rsp, sizeof(rsp));

	if (n < 10)
		return 0xffffffffu;
	if (tpm2_rc(rsp))
		return tpm2_rc(rsp);
	/* counter, TPML_PCR_SELECTION (10), TPML_DIGEST count, TPM2B size */
	if (n != 62 || tpm2_be32(rsp + 24) != 1 || rsp[28] != 0 || rsp[29] != 32)
		return 0xfffffffeu;
	memcpy(out, rsp + 30, 32);
	return 0;
}

static void test_swtpm_pcrs(void)
{
	static const uint8_t zero[32];
	uint8_t digest[32], pcr[32], want[32], old[64], rsp[64];
	GChecksum *ck;
	gsize wlen = sizeof(want);
	long n;

	swtpm_setup();
	CHECK(request_locality(0));
	CHECK_EQ(startup(), 0);
	CHECK_EQ(pcr_read(16, pcr), 0);
	CHECK(memcmp(pcr, zero, 32) == 0);
	for (int i = 0; i < 32; i++)
		digest[i] = (uint8_t)(i * 7 + 1);
	CHECK_EQ(pcr_extend(16, digest), 0);
	/* PCR16 = SHA-256(0^32 || digest) */
	memset(old, 0, 32);
	memcpy(old + 32, digest, 32);
	ck = g_checksum_new(G_CHECKSUM_SHA256);
	g_checksum_update(ck, old, 64);
	g_checksum_get_digest(ck, want, &wlen);
	g_checksum_free(ck);
	CHECK_EQ(pcr_read(16, pcr), 0);
	CHECK(memcmp(pcr, want, 32) == 0);

	/* TPM2_GetRandom(16) */
	n = transact(0, (const uint8_t[]){ 0x80, 0x01, 0, 0, 0, 12, 0, 0,
					  0x01, 0x7b, 0, 16 }, 12,
		     rsp, sizeof(rsp));
	CHECK_EQ(n, 28);
	CHECK_EQ(tpm2_rc(rsp), 0);
	CHECK_EQ(rsp[10] << 8 | rsp[11], 16);
	CHECK(memcmp(rsp + 12, zero, 16) != 0);

	/* A machine reset: CMD_INIT, a new TPM2_Startup, PCR16 back to 0. */
	tpm_tis_reset(t);
	CHECK_EQ(swtpm_init(sw), 0);
	CHECK(request_locality(0));
	CHECK_EQ(startup(), 0);
	CHECK_EQ(pcr_read(16, pcr), 0);
	CHECK(memcmp(pcr, zero, 32) == 0);
	/* A second Startup is refused by the TPM itself (TPM_RC_INITIALIZE). */
	CHECK_EQ(startup(), 0x100);
	swtpm_teardown();
}

/* Another locality's commands reach swtpm in that locality: TPM2_PCR_Reset
 * of PCR 20 is allowed in locality 2 only (PC Client PCR attributes;
 * TPM_RC_LOCALITY in 0). */
static void test_swtpm_locality(void)
{
	uint8_t cmd[27], rsp[64];
	size_t n = 0;

	swtpm_setup();
	CHECK(request_locality(0));
	CHECK_EQ(startup(), 0);
	cmd[n++] = 0x80, cmd[n++] = 0x02;
	tpm2_put32(cmd + n, 27), n += 4;
	tpm2_put32(cmd + n, 0x13d), n += 4;			/* TPM_CC_PCR_Reset */
	tpm2_put32(cmd + n, 20), n += 4;
	tpm2_put32(cmd + n, 9), n += 4;
	tpm2_put32(cmd + n, 0x40000009), n += 4;
	memset(cmd + n, 0, 5), n += 5;
	CHECK_EQ(n, 27);
	CHECK_EQ(transact(0, cmd, n, rsp, sizeof(rsp)) >= 10, 1);
	CHECK_EQ(tpm2_rc(rsp) & 0xfff, 0x907);		/* TPM_RC_LOCALITY */
	release_locality(0);
	CHECK(request_locality(2));
	CHECK_EQ(transact(2, cmd, n, rsp, sizeof(rsp)) >= 10, 1);
	CHECK_EQ(tpm2_rc(rsp), 0);
	swtpm_teardown();
}

/* swtpm killed: the device answers TPM_RC_FAILURE, at once afterwards. */
static void test_swtpm_dies(void)
{
	uint8_t rsp[64];
	struct timespec a, b;

	swtpm_setup();
	CHECK(request_locality(0));
	CHECK_EQ(startup(), 0);
	kill(swtpm_pid(sw), SIGKILL);
	usleep(100000);
	CHECK_EQ(transact(0, cmd_startup, sizeof(cmd_startup), rsp,
			  sizeof(rsp)), 10);
	CHECK_EQ(tpm2_rc(rsp), TPM_RC_FAILURE);
	CHECK(swtpm_failed(sw));
	clock_gettime(CLOCK_MONOTONIC, &a);
	CHECK_EQ(transact(0, cmd_startup, sizeof(cmd_startup), rsp,
			  sizeof(rsp)), 10);
	clock_gettime(CLOCK_MONOTONIC, &b);
	CHECK_EQ(tpm2_rc(rsp), TPM_RC_FAILURE);
	CHECK(b.tv_sec - a.tv_sec < 2);
	CHECK(swtpm_init(sw) < 0);
	swtpm_teardown();
}

/* swtpm wedged (stopped): the exchange times out, the TPM is failed with
 * one log line, and the TIS answers TPM_RC_FAILURE at once from then on. */
static void test_swtpm_wedged(void)
{
	uint8_t rsp[64];
	struct timespec a, b;
	long n;

	swtpm_setup();
	CHECK(request_locality(0));
	CHECK_EQ(startup(), 0);
	kill(swtpm_pid(sw), SIGSTOP);
	clock_gettime(CLOCK_MONOTONIC, &a);
	n = swtpm_transmit(sw, 0, cmd_startup, sizeof(cmd_startup), rsp,
			   sizeof(rsp), 500);
	clock_gettime(CLOCK_MONOTONIC, &b);
	CHECK_EQ(n, -EIO);
	CHECK(b.tv_sec - a.tv_sec < 3);
	CHECK(swtpm_failed(sw));
	CHECK_EQ(transact(0, cmd_startup, sizeof(cmd_startup), rsp,
			  sizeof(rsp)), 10);
	CHECK_EQ(tpm2_rc(rsp), TPM_RC_FAILURE);
	kill(swtpm_pid(sw), SIGCONT);
	swtpm_teardown();
}

/* The TPM's state moves to another swtpm (another state folder): PCR 16
 * as extended, the TPM already started; bad states are refused. */
static void test_swtpm_state(void)
{
	char *dir2 = g_strconcat(state_dir, "-b", NULL);
	uint8_t digest[32], pcr[32], pcr_b[32];
	struct swtpm *b = NULL;
	GVariant *st, *bad;
	char err[256] = "";

	swtpm_setup();
	CHECK(request_locality(0));
	CHECK_EQ(startup(), 0);
	memset(digest, 0x77, sizeof(digest));
	CHECK_EQ(pcr_extend(16, digest), 0);
	CHECK_EQ(pcr_read(16, pcr), 0);
	st = swtpm_state_save(sw, err, sizeof(err));
	CHECK(st != NULL);
	if (!st) {
		swtpm_teardown();
		g_free(dir2);
		return;
	}
	g_variant_ref_sink(st);
	CHECK(g_variant_is_of_type(st, G_VARIANT_TYPE(SWTPM_STATE_TYPE)));
	/* Again: the control channel stayed in step (the savestate blob's
	 * "none" answer is a whole header).  Not byte-equal: the TPM's clock,
	 * in its state, may have moved on between the two. */
	bad = swtpm_state_save(sw, err, sizeof(err));
	CHECK(bad != NULL);
	if (bad) {
		g_variant_ref_sink(bad);
		CHECK(g_variant_is_of_type(bad, G_VARIANT_TYPE(SWTPM_STATE_TYPE)));
		g_variant_unref(bad);
	}
	/* The TPM goes on: PCR 16 still reads the same. */
	CHECK_EQ(pcr_read(16, pcr_b), 0);
	CHECK(memcmp(pcr, pcr_b, 32) == 0);
	swtpm_teardown();

	CHECK_EQ(swtpm_start(dir2, &b, err, sizeof(err)), 0);
	if (!b) {
		g_variant_unref(st);
		g_free(dir2);
		return;
	}
	/* Refused: wrong type, an empty volatile blob, garbage swtpm
	 * rejects. */
	CHECK_EQ(swtpm_state_load(b, g_variant_new("(u)", 1), err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "tpm: state is of type") == err);
	bad = g_variant_ref_sink(g_variant_new("(@ay@ay@ay)",
		g_variant_get_child_value(st, 0),
		g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, "", 0, 1),
		g_variant_get_child_value(st, 2)));
	CHECK_EQ(swtpm_state_load(b, bad, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "tpm: state blob 2 of 0 bytes") == err);
	g_variant_unref(bad);
	{
		static const uint8_t junk[64] = { 1, 2, 3, 4 };

		bad = g_variant_ref_sink(g_variant_new("(@ay@ay@ay)",
			g_variant_get_child_value(st, 0),
			g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, junk, sizeof(junk), 1),
			g_variant_get_child_value(st, 2)));
		CHECK(swtpm_state_load(b, bad, err, sizeof(err)) < 0);
		printf("# junk volatile blob: %s\n", err);
		g_variant_unref(bad);
	}
	err[0] = 0;
	CHECK_EQ(swtpm_state_load(b, st, err, sizeof(err)), 0);
	if (err[0])
		printf("# %s\n", err);
	/* Through a fresh TIS on the second swtpm. */
	{
		struct tpm_backend be;

		swtpm_backend(b, &be);
		t = tpm_tis_new(&be, true);
	}
	CHECK(request_locality(0));
	CHECK_EQ(pcr_read(16, pcr_b), 0);
	CHECK(memcmp(pcr, pcr_b, 32) == 0);
	CHECK_EQ(startup(), 0x100);		/* TPM_RC_INITIALIZE: started */
	tpm_tis_free(t);
	t = NULL;
	swtpm_stop(b);
	g_variant_unref(st);
	tpm2_test_rmdir(dir2);
	g_free(dir2);
}

/* swtpm stopped (CMD_SHUTDOWN) is reaped: no child left. */
static void test_swtpm_reaped(void)
{
	pid_t pid;

	swtpm_setup();
	pid = swtpm_pid(sw);
	swtpm_teardown();
	CHECK(waitpid(pid, NULL, WNOHANG) < 0 && errno == ECHILD);
	CHECK(kill(pid, 0) < 0);
}

int main(void)
{
	char *path;

	/* The device's worker thread (and the vCPUs) on their allow-lists. */
	sandbox_test_threads(false);
	RUN_TEST(test_identity);
	RUN_TEST(test_canned_sync);
	RUN_TEST(test_canned_threaded);
	RUN_TEST(test_hostile_sizes);
	RUN_TEST(test_hostile_sequences);
	RUN_TEST(test_save_load);
	path = swtpm_find();
	if (!path) {
		if (check_finish())
			return 1;
		SKIP("swtpm is not installed (apt-get install swtpm): the "
		     "tests on a real TPM did not run");
	}
	g_free(path);
	state_dir = g_dir_make_tmp("test-tpm-XXXXXX", NULL);
	CHECK(state_dir != NULL);
	RUN_TEST(test_swtpm_pcrs);
	RUN_TEST(test_swtpm_locality);
	RUN_TEST(test_swtpm_dies);
	RUN_TEST(test_swtpm_wedged);
	RUN_TEST(test_swtpm_state);
	RUN_TEST(test_swtpm_reaped);
	tpm2_test_rmdir(state_dir);
	g_free(state_dir);
	return check_finish();
}
