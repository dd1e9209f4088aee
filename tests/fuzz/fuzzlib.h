/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzzlib.h - what the device fuzz targets share: how a target
 * reports a bug, the machine around a device (guest RAM, buses, a PCI
 * host, a clock the target moves), a guest memory image taken from the
 * input, save -> load round trips through struct device_ops, and a virtio
 * driver's queues at fixed places in guest RAM.  Each helper fuzz_fail()s
 * on what it cannot set up.  fuzzlib.c; linked into every target of the
 * map in meson.build.
 */
#ifndef VIVARIUM_FUZZLIB_H
#define VIVARIUM_FUZZLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "bus.h"
#include "clock.h"
#include "device.h"
#include "devices/pci.h"
#include "mem.h"
#include "timer.h"

struct vpci;
struct vdrv;

/* The target's name, the prefix of its messages: each target defines it
 * (const char fuzz_target[] = "fuzz_hda";). */
extern const char fuzz_target[];

/* "@fuzz_target: @what" on stderr, then abort(): a target found a bug (or
 * could not set itself up). */
__attribute__((noreturn)) void fuzz_fail(const char *what);

/* "@fuzz_target: @err" (a device's own message), then fuzz_fail(@what). */
__attribute__((noreturn)) void fuzz_fail_with(const char *err,
					      const char *what);

/* Little-endian values at @p (no alignment needed). */
static inline uint32_t fuzz_le16(const uint8_t *p)
{
	return (uint32_t)(p[0] | p[1] << 8);
}

static inline uint32_t fuzz_le32(const uint8_t *p)
{
	return fuzz_le16(p) | fuzz_le16(p + 2) << 16;
}

/* ---- the machine ---------------------------------------------------------- */

/* Guest RAM of @size bytes at GPA 0 ("cannot allocate guest RAM"). */
void fuzz_ram(struct guest_mem *mem, size_t size);

/* New port I/O (*@pio) and MMIO (*@mmio) buses and a PCI host on them
 * whose INTx and MSI go to @ops (@opaque); NULL @ops: none set (an MSI
 * then fails with -ENODEV).  Returns the host ("cannot build the PCI
 * host"). */
/* Host ops that drop INTx and take every MSI (returning 0). */
extern const struct pci_host_ops fuzz_no_irqs;

struct pci_host *fuzz_pci_host(struct bus **pio, struct bus **mmio,
			       const struct pci_host_ops *ops, void *opaque);

/* Time as the target says: fuzz_clock reads fuzz_now_ns (ns, monotonic
 * and realtime alike), which the target moves. */
extern uint64_t fuzz_now_ns;
extern const struct vclock fuzz_clock;

/* A timer queue on fuzz_clock without a thread: timers run only from the
 * target's vtimer_queue_run_due() ("cannot make the timer queue"). */
struct vtimer_queue *fuzz_timer_queue(void);

/* ---- the input ------------------------------------------------------------ */

/*
 * A guest memory image from the input: @max bytes of guest RAM at @gpa
 * cleared, then the @len bytes at @at of the input (@data, @size bytes;
 * fewer if the input or @max ends first; @at <= @size) copied there.
 * Returns what follows the image in the input, with its length in *@rest.
 */
const uint8_t *fuzz_image(struct guest_mem *mem, uint64_t gpa, size_t max,
			  const uint8_t *data, size_t size, size_t at,
			  size_t len, size_t *rest);

/* ---- save and load (struct device_ops) ------------------------------------ */

/* @ops->save(@dev) as a full reference (g_variant_unref it); @why is the
 * failure if the device refuses (e.g. "save failed"). */
GVariant *fuzz_save(const struct device_ops *ops, void *dev, const char *why);

/* @ops->load(@dev, state_version, @state): a refusal prints the device's
 * message and fails ("a saved state did not load").  @state is kept. */
void fuzz_load(const struct device_ops *ops, void *dev, GVariant *state);

/* The second half of a round trip: @state (saved from the device @dev
 * replaces, consumed) loads into @dev, which then saves the same again
 * ("the loaded state saves differently"; @why as for fuzz_save). */
void fuzz_load_same(const struct device_ops *ops, void *dev, GVariant *state,
		    const char *why);

/* ---- a virtio driver's queues (virtio 1.2 §2.7, §3.1.1) ------------------- */

#define FUZZ_VQS_MAX	4

/* Queue q's descriptor table at @rings + @stride * q, its available and
 * used rings right after it (vdrv_packed_layout); sizes from the input. */
struct fuzz_vqs {
	struct vpci *vp;
	struct guest_mem *mem;
	uint64_t rings, stride;
	unsigned n;			/* queues (at most FUZZ_VQS_MAX) */
	uint16_t size[FUZZ_VQS_MAX];
};

/* The GPAs of queue @q's rings were it @size entries long. */
void fuzz_vqs_layout(const struct fuzz_vqs *v, unsigned q, uint16_t size,
		     uint64_t *desc, uint64_t *avail, uint64_t *used);

/* Feature negotiation: VERSION_1, INDIRECT_DESC if @flags bit 0, EVENT_IDX
 * if bit 1, and the device's features 0-31 in @mask. */
void fuzz_vqs_negotiate(const struct fuzz_vqs *v, uint32_t mask, uint8_t flags);

/* MSI-X with @nvec vectors (@msix; else INTx), every queue configured
 * (vector q + 1) and enabled, then DRIVER_OK: buffers already in the rings
 * are looked at now. */
void fuzz_vqs_start(const struct fuzz_vqs *v, bool msix, unsigned nvec);

/* The "driver" publishes more (or garbage): every available ring's idx
 * moves by @delta. */
void fuzz_vqs_publish(const struct fuzz_vqs *v, uint8_t delta);

/* A seed's driver of queue @q (@size entries, rings where the target puts
 * them), its buffers from [@data, @data + @data_len). */
void fuzz_vqs_driver(const struct fuzz_vqs *v, struct vdrv *d, unsigned q,
		     uint16_t size, uint64_t data, uint64_t data_len);

#endif
