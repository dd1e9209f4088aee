/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/devices/tpm_tis.h - a TPM 2.0 behind the FIFO interface (TCG PC
 * Client Platform TPM Profile (PTP) Specification for TPM 2.0, rev 1.05,
 * §6.3-6.5: the TIS 1.3 register layout), five localities of 4 KiB at
 * TPM_TIS_BASE.  The TPM itself is a backend (struct tpm_backend: swtpm in
 * the VMM, host/swtpm.h; a canned answer in the fuzz target).
 *
 * Registers of each locality (offset in its 4 KiB page):
 *   0x000 TPM_ACCESS       requestUse, relinquish (activeLocality written),
 *                          Seize (a higher locality only), beenSeized
 *                          (write 1 clears), pendingRequest,
 *                          tpmRegValidSts, tpmEstablishment (always 1: no
 *                          dynamic OS ever launched)
 *   0x008 TPM_INT_ENABLE   stored, no effect: no interrupt is offered
 *   0x00c TPM_INT_VECTOR   stored (the SIRQ number), no effect
 *   0x010 TPM_INT_STATUS   always 0
 *   0x014 TPM_INTF_CAPABILITY  no interrupts, dynamic burstCount, 64-byte
 *                          transfers, interface version "TPM 2.0 FIFO"
 *   0x018 TPM_STS          commandReady, tpmGo, responseRetry, dataAvail,
 *                          Expect, stsValid, burstCount, tpmFamily (TPM 2.0)
 *   0x024 TPM_DATA_FIFO    1-8 bytes an access
 *   0x030 TPM_INTERFACE_ID FIFO interface, 5 localities, TIS only (locked)
 *   0x080 TPM_XDATA_FIFO   the same FIFO, 64 bytes of addresses
 *   0xf00 TPM_DID_VID      0x00011014, 0xf04 TPM_RID 0x01
 * Drivers poll (ACPI lists no IRQ: PTP's "interrupts not supported").
 * STS, DATA_FIFO and XDATA_FIFO read as all-ones and drop writes from a
 * locality that is not the active one; ACCESS and the identification
 * registers answer every locality.  Any access width (1, 2, 4, 8) at any
 * offset: registers are assembled byte by byte.
 *
 * Commands: the FIFO takes up to TPM_TIS_BUFFER_SIZE bytes (more are
 * dropped, rate-limited warning); tpmGo with a whole command (the header's
 * commandSize bytes) hands it to the backend on the device's worker
 * thread, so the vCPU never waits for the TPM; the response comes back
 * into the FIFO and dataAvail rises when the guest next reads a register.
 * A command whose size field lies (below 10 bytes, above the buffer, or
 * more bytes written than it says) is answered by the device itself with
 * TPM_RC_COMMAND_SIZE; a backend that fails answers TPM_RC_FAILURE.
 * commandReady during execution discards the response when it comes.
 */
#ifndef VIVARIUM_TPM_TIS_H
#define VIVARIUM_TPM_TIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../device.h"

#define TPM_TIS_BASE		0xfed40000u
#define TPM_TIS_SIZE		0x5000u		/* 5 localities x 4 KiB */
#define TPM_TIS_LOCALITIES	5
#define TPM_TIS_BUFFER_SIZE	4096		/* bytes, command and response */

/* TPM 2.0 response codes the device makes itself (TPM 2.0 Part 2 §6.6). */
#define TPM_RC_FAILURE		0x101u
#define TPM_RC_COMMAND_SIZE	0x142u

struct bus;

/*
 * The TPM behind the interface.  Both called on the device's worker thread
 * (transmit) or with the device lock held (reset); never both at once.
 */
struct tpm_backend {
	/*
	 * transmit - run TPM command @cmd (@len bytes, 10..4096, its header's
	 * commandSize equal to @len) in @locality (0-4); write the response
	 * into @rsp (@rsp_max bytes).  Returns the response's length (>= 10)
	 * or -errno (the device then answers TPM_RC_FAILURE).  Must return in
	 * bounded time (a wedged TPM: a timeout).
	 */
	long (*transmit)(void *opaque, unsigned locality, const uint8_t *cmd,
			 size_t len, uint8_t *rsp, size_t rsp_max);
	void *opaque;
};

struct tpm_tis;

/*
 * tpm_tis_new - the interface in its power-on state on @backend (copied;
 * must outlive the device).  @threaded: commands run on a worker thread
 * of the device (named "tpm", sandbox kind SANDBOX_THREAD_TPM); false: on
 * the thread that writes tpmGo (tests, the fuzz target).  NULL on
 * failure (memory, thread).
 */
struct tpm_tis *tpm_tis_new(const struct tpm_backend *backend, bool threaded);
/* Waits for a command in flight, stops the worker; NULL-safe. */
void tpm_tis_free(struct tpm_tis *t);
/* Register [@base, @base + TPM_TIS_SIZE) on @mmio.  0 or bus_register()'s
 * -errno. */
int tpm_tis_attach(struct tpm_tis *t, struct bus *mmio, uint64_t base);
/* Power-on state of the registers (no active locality, Idle); a command
 * in flight is waited for and its response discarded.  The TPM's own
 * reset (TPM_Init) is the backend's business. */
void tpm_tis_reset(struct tpm_tis *t);
/* Wait until no command is in flight (bounded by the backend's timeout). */
void tpm_tis_quiesce(struct tpm_tis *t);

/*
 * tpm_tis_device_ops: name "tpm-tis", state TPM_TIS_STATE_TYPE, version 1:
 * (command state 0 Idle, 1 Ready, 2 Reception, 4 Completion (Execution is
 * never saved: save waits for the command); active locality (0xff: none);
 * requestUse pending x5; beenSeized x5; INT_ENABLE x5; INT_VECTOR x5; the
 * buffer's bytes (command received, or response); response bytes read;
 * whether bytes came past the command's size).  The TPM's own state is the
 * backend's: the machine saves swtpm's as its "tpm" section
 * (machine_state.c, host/swtpm.h).
 */
#define TPM_TIS_STATE_TYPE "(yyayayauayayub)"
extern const struct device_ops tpm_tis_device_ops;

/* For tests: MMIO accesses at @offset in the device's range. */
uint64_t tpm_tis_read(struct tpm_tis *t, uint64_t offset, unsigned size);
void tpm_tis_write(struct tpm_tis *t, uint64_t offset, uint64_t value,
		   unsigned size);

#endif
