/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/tpm2cmd.h - the TPM 2.0 commands the TPM tests send (TCG TPM
 * 2.0 Library, Part 3: TPM2_PCR_Extend 22.2, TPM2_PCR_Read 22.4), built
 * byte by byte in the big-endian wire format, and the swtpm state folder's
 * removal.  Shared by test_tpm_tis (through the TIS FIFO) and guest_tpm
 * (straight to swtpm).  Header-only: every function is static inline.
 */
#ifndef VIVARIUM_TESTS_TPM2CMD_H
#define VIVARIUM_TESTS_TPM2CMD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#define TPM2_ALG_SHA256		0x000b
/* TPM2_PCR_Extend with one SHA-256 digest: the buffer tpm2_cmd_pcr_extend
 * needs, in bytes. */
#define TPM2_PCR_EXTEND_LEN	65
/* TPM2_PCR_Read with one selection of three bytes (PCRs 0-23). */
#define TPM2_PCR_READ_LEN	20

static inline uint32_t tpm2_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static inline void tpm2_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* The response code of a response of at least 10 bytes (0: success). */
static inline uint32_t tpm2_rc(const uint8_t *rsp)
{
	return tpm2_be32(rsp + 6);
}

/*
 * tpm2_cmd_pcr_extend - TPM2_PCR_Extend(@pcr, one SHA-256 @digest) with a
 * password session of empty auth (TPM_RS_PW), written to @cmd, which holds
 * TPM2_PCR_EXTEND_LEN bytes.  Returns the command's length in bytes.
 */
static inline size_t tpm2_cmd_pcr_extend(uint8_t *cmd, unsigned pcr,
					 const uint8_t digest[32])
{
	size_t n = 0;

	cmd[n++] = 0x80, cmd[n++] = 0x02;		/* TPM_ST_SESSIONS */
	n += 4;						/* size, below */
	tpm2_put32(cmd + n, 0x182), n += 4;		/* TPM_CC_PCR_Extend */
	tpm2_put32(cmd + n, pcr), n += 4;		/* pcrHandle */
	tpm2_put32(cmd + n, 9), n += 4;			/* authorizationSize */
	tpm2_put32(cmd + n, 0x40000009), n += 4;	/* TPM_RS_PW */
	cmd[n++] = 0, cmd[n++] = 0;			/* nonce: empty */
	cmd[n++] = 0;					/* session attributes */
	cmd[n++] = 0, cmd[n++] = 0;			/* hmac: empty auth */
	tpm2_put32(cmd + n, 1), n += 4;			/* TPML_DIGEST_VALUES */
	cmd[n++] = 0x00, cmd[n++] = TPM2_ALG_SHA256;
	memcpy(cmd + n, digest, 32), n += 32;
	tpm2_put32(cmd + 2, (uint32_t)n);
	return n;
}

/*
 * tpm2_cmd_pcr_read - TPM2_PCR_Read of the SHA-256 PCRs whose bits are set
 * in @mask (bit n: PCR n, 0-23), written to @cmd (TPM2_PCR_READ_LEN
 * bytes).  The response: header (10), pcrUpdateCounter (4), the selection
 * read (10), TPML_DIGEST count (4), then per PCR, lowest first, a TPM2B:
 * size (2) and 32 bytes.  Returns the command's length.
 */
static inline size_t tpm2_cmd_pcr_read(uint8_t *cmd, uint32_t mask)
{
	static const uint8_t head[10] = {
		0x80, 0x01, 0, 0, 0, TPM2_PCR_READ_LEN,	/* TPM_ST_NO_SESSIONS */
		0, 0, 0x01, 0x7e,			/* TPM_CC_PCR_Read */
	};

	memcpy(cmd, head, sizeof(head));
	tpm2_put32(cmd + 10, 1);			/* one selection */
	cmd[14] = 0x00, cmd[15] = TPM2_ALG_SHA256;
	cmd[16] = 3;					/* sizeofSelect */
	cmd[17] = (uint8_t)mask;
	cmd[18] = (uint8_t)(mask >> 8);
	cmd[19] = (uint8_t)(mask >> 16);
	return TPM2_PCR_READ_LEN;
}

/* Remove swtpm's state folder @dir and the files in it (it has no
 * subfolders).  Errors are ignored: a test's clean-up. */
static inline void tpm2_test_rmdir(const char *dir)
{
	GDir *d = g_dir_open(dir, 0, NULL);
	const char *name;

	if (!d)
		return;
	while ((name = g_dir_read_name(d))) {
		char *p = g_build_filename(dir, name, NULL);

		g_unlink(p);
		g_free(p);
	}
	g_dir_close(d);
	g_rmdir(dir);
}

#endif
