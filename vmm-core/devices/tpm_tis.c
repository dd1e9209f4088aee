/* SPDX-License-Identifier: MIT */
/*
 * The TPM's FIFO interface (TCG PTP for TPM 2.0 §6.5, TIS 1.3 layout).
 * States of the command path (PTP §6.5.2.4, Table 22): Idle -> Ready
 * (commandReady) -> Reception (first FIFO byte) -> Execution (tpmGo on a
 * whole command) -> Completion (the response in the FIFO) -> Ready
 * (commandReady) or Idle (the locality relinquished).
 *
 * Locking: the registers are the vCPU's, under the machine's device lock.
 * The worker thread sees only the job (command in, response out), under
 * t->mu; the vCPU collects a finished job when it next reads a register.
 */
#include "tpm_tis.h"

#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "../bus.h"
#include "../log.h"
#include "../sandbox/sandbox.h"

/* Register offsets in a locality's page (PTP Table 19). */
#define R_ACCESS	0x000
#define R_INT_ENABLE	0x008
#define R_INT_VECTOR	0x00c
#define R_INT_STATUS	0x010
#define R_INTF_CAP	0x014
#define R_STS		0x018
#define R_DATA_FIFO	0x024
#define R_INTERFACE_ID	0x030
#define R_XDATA_FIFO	0x080
#define R_XDATA_END	0x0c0
#define R_DID_VID	0xf00
#define R_RID		0xf04

/* TPM_ACCESS bits (PTP Table 20) */
#define ACC_ESTABLISHMENT	0x01
#define ACC_REQUEST_USE		0x02
#define ACC_PENDING_REQUEST	0x04
#define ACC_SEIZE		0x08
#define ACC_BEEN_SEIZED		0x10
#define ACC_ACTIVE_LOCALITY	0x20
#define ACC_REG_VALID		0x80

/* TPM_STS bits (PTP Table 21) */
#define STS_RESPONSE_RETRY	0x02
#define STS_SELFTEST_DONE	0x04
#define STS_EXPECT		0x08
#define STS_DATA_AVAIL		0x10
#define STS_GO			0x20
#define STS_COMMAND_READY	0x40
#define STS_VALID		0x80
#define STS_FAMILY_TPM20	(1u << 26)

/* TPM_INTF_CAPABILITY: no interrupt bits, transfers up to 64 bytes
 * (bits 10:9 = 11b), interface version 011b: TPM 2.0 FIFO (bits 30:28). */
#define INTF_CAP_VALUE		((3u << 9) | (3u << 28))
/* TPM_INTERFACE_ID: InterfaceType 0 (FIFO for TPM 2.0), version 0,
 * CapLocality (5 localities), CapTIS, InterfaceSelector 0 (TIS), IntfSelLock. */
#define INTERFACE_ID_VALUE	((1u << 8) | (1u << 13) | (1u << 19))
/* TPM_INT_ENABLE's writable bits: globalIntEnable, typePolarity, the four
 * interrupt enables. */
#define INT_ENABLE_MASK		0x8000009fu
#define DID_VID_VALUE		0x00011014u
#define RID_VALUE		0x01

#define NO_LOCALITY		0xff
#define HDR_SIZE		10	/* tag, commandSize, commandCode */
#define BURST_MAX		64	/* burstCount we offer at most */

enum tis_state { ST_IDLE, ST_READY, ST_RECEPTION, ST_EXECUTION, ST_COMPLETION };

struct tpm_tis {
	struct tpm_backend be;
	/* Registers: vCPU side, device lock. */
	enum tis_state state;
	uint8_t active;				/* locality, or NO_LOCALITY */
	bool request[TPM_TIS_LOCALITIES];	/* requestUse pending */
	bool seized[TPM_TIS_LOCALITIES];	/* beenSeized */
	uint32_t int_enable[TPM_TIS_LOCALITIES];
	uint8_t int_vector[TPM_TIS_LOCALITIES];
	bool overrun;		/* bytes came after the whole command */
	bool discard;		/* commandReady or a locality change during
				 * Execution: the response is dropped */
	enum tis_state after_discard;	/* and the state is then this */
	uint8_t buf[TPM_TIS_BUFFER_SIZE];	/* command, then response */
	uint32_t len;		/* bytes in buf */
	uint32_t off;		/* next response byte to read */
	/* The job: worker side, t->mu. */
	pthread_mutex_t mu;
	pthread_cond_t cond;
	pthread_t thread;
	bool threaded, quit, job_pending, job_done;
	uint8_t job_loc;
	uint8_t job_buf[TPM_TIS_BUFFER_SIZE];
	uint32_t job_len;
};

static uint32_t be32_at(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* A response of the device's own: header only, TPM_ST_NO_SESSIONS. */
static uint32_t error_response(uint8_t *rsp, uint32_t rc)
{
	static const uint8_t hdr[6] = { 0x80, 0x01, 0, 0, 0, HDR_SIZE };

	memcpy(rsp, hdr, 6);
	rsp[6] = (uint8_t)(rc >> 24);
	rsp[7] = (uint8_t)(rc >> 16);
	rsp[8] = (uint8_t)(rc >> 8);
	rsp[9] = (uint8_t)rc;
	return HDR_SIZE;
}

/* Run the job in job_buf; the response replaces it.  t->mu not held. */
static void run_job(struct tpm_tis *t, uint8_t *buf, uint32_t *len,
		    uint8_t loc)
{
	uint8_t *rsp = malloc(TPM_TIS_BUFFER_SIZE);
	long n = -ENOMEM;

	if (rsp)
		n = t->be.transmit(t->be.opaque, loc, buf, *len, rsp,
				   TPM_TIS_BUFFER_SIZE);
	if (n < HDR_SIZE || n > TPM_TIS_BUFFER_SIZE ||
	    be32_at(rsp + 2) != (uint32_t)n) {
		if (n >= 0)
			vlog_ratelimited(LOG_WARN, "tpm: the TPM answered a "
					 "malformed response (%ld bytes)", n);
		*len = error_response(buf, TPM_RC_FAILURE);
	} else {
		memcpy(buf, rsp, (size_t)n);
		*len = (uint32_t)n;
	}
	free(rsp);
}

static void *worker_main(void *opaque)
{
	struct tpm_tis *t = opaque;

	sandbox_thread_enter(SANDBOX_THREAD_TPM, "tpm");
	pthread_mutex_lock(&t->mu);
	for (;;) {
		while (!t->quit && !t->job_pending)
			pthread_cond_wait(&t->cond, &t->mu);
		if (t->quit)
			break;
		pthread_mutex_unlock(&t->mu);
		/* job_buf is the worker's alone while job_pending. */
		run_job(t, t->job_buf, &t->job_len, t->job_loc);
		pthread_mutex_lock(&t->mu);
		t->job_pending = false;
		t->job_done = true;
		pthread_cond_broadcast(&t->cond);
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

/* Execution -> Completion once the job is done (or Ready when discarded). */
static void collect(struct tpm_tis *t)
{
	if (t->state != ST_EXECUTION)
		return;
	pthread_mutex_lock(&t->mu);
	if (t->job_done) {
		t->job_done = false;
		memcpy(t->buf, t->job_buf, t->job_len);
		t->len = t->job_len;
		t->off = 0;
		t->state = t->discard ? t->after_discard : ST_COMPLETION;
		if (t->discard)
			t->len = 0;
		t->discard = false;
	}
	pthread_mutex_unlock(&t->mu);
}

static void wait_job(struct tpm_tis *t)
{
	pthread_mutex_lock(&t->mu);
	while (t->job_pending)
		pthread_cond_wait(&t->cond, &t->mu);
	pthread_mutex_unlock(&t->mu);
}

static void start_job(struct tpm_tis *t)
{
	uint32_t size = t->len >= 6 ? be32_at(t->buf + 2) : 0;

	t->state = ST_EXECUTION;
	t->discard = false;
	pthread_mutex_lock(&t->mu);
	t->job_done = false;
	if (t->len < HDR_SIZE || size != t->len || t->overrun) {
		vlog_ratelimited(LOG_WARN, "tpm: command of %u bytes whose size "
				 "field says %u: answered TPM_RC_COMMAND_SIZE",
				 t->len, size);
		t->job_len = error_response(t->job_buf, TPM_RC_COMMAND_SIZE);
		t->job_done = true;
	} else {
		memcpy(t->job_buf, t->buf, t->len);
		t->job_len = t->len;
		t->job_loc = t->active;
		if (t->threaded) {
			t->job_pending = true;
			pthread_cond_broadcast(&t->cond);
		} else {
			pthread_mutex_unlock(&t->mu);
			run_job(t, t->job_buf, &t->job_len, t->job_loc);
			pthread_mutex_lock(&t->mu);
			t->job_done = true;
		}
	}
	pthread_mutex_unlock(&t->mu);
	t->overrun = false;
	collect(t);
}

/* The command path back to Idle or Ready; a job in flight is discarded. */
static void to_state(struct tpm_tis *t, enum tis_state s)
{
	if (t->state == ST_EXECUTION) {
		t->discard = true;
		t->after_discard = s;
		collect(t);
		if (t->state == ST_EXECUTION) {
			/* Still running: Ready (or Idle) when it ends. */
			return;
		}
	}
	t->state = s;
	t->len = t->off = 0;
	t->overrun = false;
}

/* How many command bytes the FIFO still expects. */
static bool expecting(const struct tpm_tis *t)
{
	uint32_t want;

	if (t->len < 6)
		return true;
	want = be32_at(t->buf + 2);
	if (want > TPM_TIS_BUFFER_SIZE)
		want = TPM_TIS_BUFFER_SIZE;
	return t->len < want && !t->overrun;
}

static uint32_t sts_value(struct tpm_tis *t)
{
	uint32_t v = STS_FAMILY_TPM20, burst = 0;

	collect(t);
	switch (t->state) {
	case ST_IDLE:
		v |= STS_VALID;
		break;
	case ST_READY:
		v |= STS_VALID | STS_COMMAND_READY;
		burst = BURST_MAX;
		break;
	case ST_RECEPTION:
		v |= STS_VALID;
		if (expecting(t))
			v |= STS_EXPECT;
		burst = TPM_TIS_BUFFER_SIZE - t->len;
		break;
	case ST_EXECUTION:
		break;		/* stsValid low: Expect, dataAvail not valid */
	case ST_COMPLETION:
		v |= STS_VALID | STS_SELFTEST_DONE;
		if (t->off < t->len) {
			v |= STS_DATA_AVAIL;
			burst = t->len - t->off;
		}
		break;
	}
	if (burst > BURST_MAX)
		burst = BURST_MAX;
	return v | burst << 8;
}

static uint8_t access_value(const struct tpm_tis *t, unsigned loc)
{
	uint8_t v = ACC_REG_VALID | ACC_ESTABLISHMENT;

	if (t->active == loc)
		v |= ACC_ACTIVE_LOCALITY;
	if (t->seized[loc])
		v |= ACC_BEEN_SEIZED;
	if (t->request[loc])
		v |= ACC_REQUEST_USE;
	for (unsigned l = 0; l < TPM_TIS_LOCALITIES; l++)
		if (l != loc && t->request[l])
			v |= ACC_PENDING_REQUEST;
	return v;
}

static uint8_t fifo_read_byte(struct tpm_tis *t)
{
	collect(t);
	if (t->state != ST_COMPLETION || t->off >= t->len) {
		vlog_ratelimited(LOG_DEBUG, "tpm: FIFO read with no data");
		return 0xff;
	}
	return t->buf[t->off++];
}

static void fifo_write_byte(struct tpm_tis *t, uint8_t b)
{
	collect(t);
	if (t->state == ST_READY) {
		t->state = ST_RECEPTION;
		t->len = 0;
		t->overrun = false;
	}
	if (t->state != ST_RECEPTION) {
		vlog_ratelimited(LOG_WARN, "tpm: FIFO write while not receiving "
				 "a command: dropped");
		return;
	}
	if (t->len >= 6 && !expecting(t)) {
		/* Past the size the header gave (or the buffer's end). */
		if (!t->overrun)
			vlog_ratelimited(LOG_WARN, "tpm: command longer than "
					 "its size field or %u bytes: dropped",
					 TPM_TIS_BUFFER_SIZE);
		t->overrun = true;
		return;
	}
	t->buf[t->len++] = b;
}

/* The highest locality with a pending request gets the TPM. */
static void grant_next(struct tpm_tis *t)
{
	for (int l = TPM_TIS_LOCALITIES - 1; l >= 0; l--) {
		if (t->request[l]) {
			t->request[l] = false;
			t->active = (uint8_t)l;
			return;
		}
	}
}

static void set_active(struct tpm_tis *t, uint8_t loc)
{
	if (t->active != loc)
		to_state(t, ST_IDLE);	/* the new locality starts afresh */
	t->active = loc;
}

static void access_write(struct tpm_tis *t, unsigned loc, uint8_t v)
{
	if (v & ACC_BEEN_SEIZED)
		t->seized[loc] = false;
	if (v & ACC_SEIZE) {
		/* PTP §6.5.2.3: only a locality above the active one. */
		if (t->active == NO_LOCALITY || loc > t->active) {
			if (t->active != NO_LOCALITY)
				t->seized[t->active] = true;
			t->request[loc] = false;
			set_active(t, (uint8_t)loc);
		}
		return;
	}
	if (v & ACC_ACTIVE_LOCALITY) {
		/* Relinquish: the locality, or its pending request. */
		if (t->active == loc) {
			set_active(t, NO_LOCALITY);
			grant_next(t);
			if (t->active != NO_LOCALITY) {
				uint8_t l = t->active;

				t->active = NO_LOCALITY;
				set_active(t, l);
			}
		} else {
			t->request[loc] = false;
		}
		return;
	}
	if (v & ACC_REQUEST_USE) {
		if (t->active == NO_LOCALITY)
			set_active(t, (uint8_t)loc);
		else if (t->active != loc)
			t->request[loc] = true;
	}
}

static void sts_write(struct tpm_tis *t, uint32_t v, uint32_t mask)
{
	v &= mask;
	if (v & STS_COMMAND_READY) {
		switch (t->state) {
		case ST_IDLE:
		case ST_READY:
		case ST_RECEPTION:
		case ST_COMPLETION:
			to_state(t, ST_READY);
			break;
		case ST_EXECUTION:
			to_state(t, ST_READY);	/* discard when it ends */
			break;
		}
		return;
	}
	if (v & STS_GO) {
		collect(t);
		if (t->state == ST_RECEPTION && (!expecting(t) || t->overrun))
			start_job(t);
		else
			vlog_ratelimited(LOG_WARN, "tpm: tpmGo without a whole "
					 "command: ignored");
		return;
	}
	if (v & STS_RESPONSE_RETRY) {
		collect(t);
		if (t->state == ST_COMPLETION)
			t->off = 0;
	}
	/* commandCancel (bit 24), resetEstablishmentBit (25): nothing to do
	 * (commands are not cancelled; no dynamic launch). */
}

/* One byte of a register other than the FIFOs. */
static uint8_t reg_byte(struct tpm_tis *t, unsigned loc, unsigned reg)
{
	unsigned base = reg & ~3u, sh = (reg & 3) * 8;
	bool active = t->active == loc;
	uint32_t v = 0;

	switch (base) {
	case R_ACCESS:
		v = access_value(t, loc);
		break;
	case R_INT_ENABLE:
		v = t->int_enable[loc];
		break;
	case R_INT_VECTOR:
		v = t->int_vector[loc];
		break;
	case R_INT_STATUS:
		v = 0;
		break;
	case R_INTF_CAP:
		v = INTF_CAP_VALUE;
		break;
	case R_STS:
		v = active ? sts_value(t) : 0xffffffffu;
		break;
	case R_INTERFACE_ID:
		v = INTERFACE_ID_VALUE;
		break;
	case R_DID_VID:
		v = DID_VID_VALUE;
		break;
	case R_RID:
		v = RID_VALUE;
		break;
	default:
		return 0xff;	/* reserved */
	}
	if ((base == R_ACCESS || base == R_INT_VECTOR || base == R_RID) && sh)
		return 0;	/* 1-byte registers */
	return (uint8_t)(v >> sh);
}

static bool is_fifo(unsigned reg)
{
	return (reg >= R_DATA_FIFO && reg < R_DATA_FIFO + 4) ||
	       (reg >= R_XDATA_FIFO && reg < R_XDATA_END);
}

uint64_t tpm_tis_read(struct tpm_tis *t, uint64_t offset, unsigned size)
{
	unsigned loc = (unsigned)(offset >> 12), reg = offset & 0xfff;
	uint64_t v = 0;

	if (size < 1 || size > 8 || offset >= TPM_TIS_SIZE ||
	    offset + size > TPM_TIS_SIZE)
		return ~0ull;
	if (is_fifo(reg)) {
		if (t->active != loc)
			return ~0ull >> (64 - 8 * size);
		for (unsigned i = 0; i < size; i++)
			v |= (uint64_t)fifo_read_byte(t) << (8 * i);
		return v;
	}
	for (unsigned i = 0; i < size; i++) {
		unsigned r = reg + i;

		/* An access that runs into the next page stays in this one:
		 * reserved bytes. */
		v |= (uint64_t)(r < 0x1000 ? reg_byte(t, loc, r) : 0xff) << (8 * i);
	}
	return v;
}

/* The bytes of @value, an access at @reg, that fall in the 4-byte register
 * at @base: shifted to its bit positions, with their mask. */
static bool reg_part(unsigned reg, unsigned size, uint64_t value,
		     unsigned base, uint32_t *v, uint32_t *mask)
{
	*v = 0;
	*mask = 0;
	for (unsigned i = 0; i < size; i++) {
		unsigned r = reg + i;

		if (r >= base && r < base + 4) {
			*v |= (uint32_t)((value >> (8 * i)) & 0xff) << (8 * (r - base));
			*mask |= 0xffu << (8 * (r - base));
		}
	}
	return *mask != 0;
}

void tpm_tis_write(struct tpm_tis *t, uint64_t offset, uint64_t value,
		   unsigned size)
{
	unsigned loc = (unsigned)(offset >> 12), reg = offset & 0xfff;
	uint32_t v, mask;

	if (size < 1 || size > 8 || offset >= TPM_TIS_SIZE ||
	    offset + size > TPM_TIS_SIZE)
		return;
	if (is_fifo(reg)) {
		if (t->active != loc) {
			vlog_ratelimited(LOG_WARN, "tpm: FIFO write from "
					 "locality %u, not the active one", loc);
			return;
		}
		for (unsigned i = 0; i < size; i++)
			fifo_write_byte(t, (uint8_t)(value >> (8 * i)));
		return;
	}
	if (reg_part(reg, size, value, R_ACCESS, &v, &mask) && (mask & 0xff))
		access_write(t, loc, (uint8_t)v);
	if (reg_part(reg, size, value, R_INT_ENABLE, &v, &mask))
		t->int_enable[loc] = (t->int_enable[loc] & ~mask) |
				     (v & mask & INT_ENABLE_MASK);
	if (reg_part(reg, size, value, R_INT_VECTOR, &v, &mask) && (mask & 0xff))
		t->int_vector[loc] = (uint8_t)(v & 0x0f);
	if (reg_part(reg, size, value, R_STS, &v, &mask)) {
		if (t->active == loc)
			sts_write(t, v, mask);
		else
			vlog_ratelimited(LOG_WARN, "tpm: TPM_STS write from "
					 "locality %u, not the active one", loc);
	}
	/* INT_STATUS (nothing raised), INTERFACE_ID (TIS, locked), the
	 * identification registers: read-only. */
}

static uint64_t mmio_read(void *opaque, uint64_t offset, unsigned size)
{
	return tpm_tis_read(opaque, offset, size);
}

static void mmio_write(void *opaque, uint64_t offset, uint64_t value,
		       unsigned size)
{
	tpm_tis_write(opaque, offset, value, size);
}

static const struct bus_ops tis_ops = {
	.name = "tpm-tis",
	.read = mmio_read,
	.write = mmio_write,
};

void tpm_tis_quiesce(struct tpm_tis *t)
{
	if (t)
		wait_job(t);
}

void tpm_tis_reset(struct tpm_tis *t)
{
	wait_job(t);
	pthread_mutex_lock(&t->mu);
	t->job_done = false;
	pthread_mutex_unlock(&t->mu);
	t->state = ST_IDLE;
	t->active = NO_LOCALITY;
	memset(t->request, 0, sizeof(t->request));
	memset(t->seized, 0, sizeof(t->seized));
	memset(t->int_enable, 0, sizeof(t->int_enable));
	memset(t->int_vector, 0, sizeof(t->int_vector));
	t->overrun = t->discard = false;
	t->len = t->off = 0;
}

struct tpm_tis *tpm_tis_new(const struct tpm_backend *backend, bool threaded)
{
	struct tpm_tis *t;

	if (!backend || !backend->transmit)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->be = *backend;
	t->threaded = threaded;
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cond, NULL);
	tpm_tis_reset(t);
	if (threaded && pthread_create(&t->thread, NULL, worker_main, t)) {
		pthread_mutex_destroy(&t->mu);
		pthread_cond_destroy(&t->cond);
		free(t);
		return NULL;
	}
	return t;
}

void tpm_tis_free(struct tpm_tis *t)
{
	if (!t)
		return;
	if (t->threaded) {
		pthread_mutex_lock(&t->mu);
		while (t->job_pending)
			pthread_cond_wait(&t->cond, &t->mu);
		t->quit = true;
		pthread_cond_broadcast(&t->cond);
		pthread_mutex_unlock(&t->mu);
		pthread_join(t->thread, NULL);
	}
	pthread_mutex_destroy(&t->mu);
	pthread_cond_destroy(&t->cond);
	free(t);
}

int tpm_tis_attach(struct tpm_tis *t, struct bus *mmio, uint64_t base)
{
	return bus_register(mmio, base, TPM_TIS_SIZE, &tis_ops, t);
}

/* ---- the machine's device table ---------------------------------------- */

static void dev_reset(void *dev)
{
	tpm_tis_reset(dev);
}

static void dev_quiesce(void *dev)
{
	tpm_tis_quiesce(dev);
}

static void dev_free(void *dev)
{
	tpm_tis_free(dev);
}

static GVariant *dev_save(void *dev)
{
	struct tpm_tis *t = dev;
	uint8_t req[TPM_TIS_LOCALITIES], seized[TPM_TIS_LOCALITIES];

	/* After quiesce no job runs: Execution ends here. */
	wait_job(t);
	collect(t);
	for (unsigned l = 0; l < TPM_TIS_LOCALITIES; l++) {
		req[l] = t->request[l];
		seized[l] = t->seized[l];
	}
	return g_variant_new("(yy@ay@ay@au@ay@ayub)", (uint8_t)t->state, t->active,
		g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, req, TPM_TIS_LOCALITIES, 1),
		g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, seized, TPM_TIS_LOCALITIES, 1),
		g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32, t->int_enable,
					  TPM_TIS_LOCALITIES, 4),
		g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, t->int_vector,
					  TPM_TIS_LOCALITIES, 1),
		g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, t->buf, t->len, 1),
		t->off, t->overrun);
}

static int dev_load(void *dev, uint32_t version, GVariant *state, char *err,
		    size_t errlen)
{
	struct tpm_tis *t = dev;
	GVariant *vreq, *vseized, *venable, *vvector, *vbuf;
	const uint8_t *req, *seized, *vector, *buf;
	const uint32_t *enable;
	gsize nreq, nseized, nenable, nvector, nbuf;
	uint8_t st, active;
	uint32_t off;
	gboolean overrun;
	int r;

	r = device_state_check(tpm_tis_device_ops.name, version,
			       tpm_tis_device_ops.state_version, state,
			       TPM_TIS_STATE_TYPE, err, errlen);
	if (r < 0)
		return r;
	g_variant_get(state, "(yy@ay@ay@au@ay@ayub)", &st, &active, &vreq,
		      &vseized, &venable, &vvector, &vbuf, &off, &overrun);
	req = g_variant_get_fixed_array(vreq, &nreq, 1);
	seized = g_variant_get_fixed_array(vseized, &nseized, 1);
	enable = g_variant_get_fixed_array(venable, &nenable, 4);
	vector = g_variant_get_fixed_array(vvector, &nvector, 1);
	buf = g_variant_get_fixed_array(vbuf, &nbuf, 1);
	r = -EINVAL;
	if (st > ST_COMPLETION || st == ST_EXECUTION)
		device_load_fail(err, errlen, "tpm-tis: state %u", st);
	else if (active >= TPM_TIS_LOCALITIES && active != NO_LOCALITY)
		device_load_fail(err, errlen, "tpm-tis: active locality %u", active);
	else if (active == NO_LOCALITY && st != ST_IDLE)
		device_load_fail(err, errlen, "tpm-tis: no active locality in state %u", st);
	else if (nreq != TPM_TIS_LOCALITIES || nseized != TPM_TIS_LOCALITIES ||
		 nenable != TPM_TIS_LOCALITIES || nvector != TPM_TIS_LOCALITIES)
		device_load_fail(err, errlen, "tpm-tis: per-locality arrays of %zu, %zu, %zu, %zu entries, not %u",
				 (size_t)nreq, (size_t)nseized, (size_t)nenable,
				 (size_t)nvector, TPM_TIS_LOCALITIES);
	else if (nbuf > TPM_TIS_BUFFER_SIZE)
		device_load_fail(err, errlen, "tpm-tis: buffer of %zu bytes", (size_t)nbuf);
	else if (off > nbuf || (st != ST_COMPLETION && off) ||
		 ((st == ST_IDLE || st == ST_READY) && nbuf))
		device_load_fail(err, errlen, "tpm-tis: %zu bytes, offset %u in state %u",
				 (size_t)nbuf, off, st);
	else if (overrun && st != ST_RECEPTION)
		device_load_fail(err, errlen, "tpm-tis: overrun outside reception");
	else
		r = 0;
	for (unsigned l = 0; r == 0 && l < TPM_TIS_LOCALITIES; l++) {
		if (req[l] > 1 || seized[l] > 1 || (req[l] && l == active) ||
		    (enable[l] & ~INT_ENABLE_MASK) || vector[l] > 15) {
			device_load_fail(err, errlen, "tpm-tis: locality %u's registers", l);
			r = -EINVAL;
		}
	}
	if (r == 0) {
		wait_job(t);
		pthread_mutex_lock(&t->mu);
		t->job_done = false;
		pthread_mutex_unlock(&t->mu);
		t->state = st;
		t->active = active;
		for (unsigned l = 0; l < TPM_TIS_LOCALITIES; l++) {
			t->request[l] = req[l];
			t->seized[l] = seized[l];
			t->int_enable[l] = enable[l];
			t->int_vector[l] = vector[l];
		}
		if (nbuf)	/* an empty array's data is NULL */
			memcpy(t->buf, buf, nbuf);
		t->len = (uint32_t)nbuf;
		t->off = off;
		t->overrun = overrun;
		t->discard = false;
	}
	g_variant_unref(vreq);
	g_variant_unref(vseized);
	g_variant_unref(venable);
	g_variant_unref(vvector);
	g_variant_unref(vbuf);
	return r;
}

const struct device_ops tpm_tis_device_ops = {
	.name = "tpm-tis",
	.reset = dev_reset,
	.quiesce = dev_quiesce,
	.save = dev_save,
	.load = dev_load,
	.state_version = 1,
	.free = dev_free,
};
