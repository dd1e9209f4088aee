/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/virtio_pci_driver.h - the driver side of the virtio 1.x PCI
 * transport (virtio 1.2 §4.1), written from the spec for tests and fuzz
 * targets: config-space and BAR accesses, the BARs programmed, the status
 * and feature handshake (§3.1.1), a virtqueue's common-configuration set-up
 * (§4.1.4.3), MSI-X table entries (PCI MSI-X), notify (§4.1.4.4) and the
 * ISR (§4.1.4.5); with the machine around it (vpci_host_new: buses and a
 * PCI host) and a recorder of the interrupts the host delivers
 * (struct vpci_irqs).  The ring side is vring_driver.h.
 *
 * Order a test follows: vpci_host_new(), create the device,
 * vpci_map_bars(), vpci_driver_start() (or vpci_negotiate() +
 * vpci_interrupts()), vpci_queue_setup() per queue, vpci_driver_ok(),
 * then vring_driver.h's vdrv_add() and vpci_kick().
 *
 * It reports instead of asserting (fuzz targets have no CHECK): functions
 * that read back what they wrote return false on a mismatch.  An MMIO
 * access no device claims is counted in ->unclaimed and, where check.h is
 * included first (unit tests), CHECKed like testlib.h's io_read/io_write.
 * Header-only (static inline).
 */
#ifndef VIVARIUM_VIRTIO_PCI_DRIVER_H
#define VIVARIUM_VIRTIO_PCI_DRIVER_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bus.h"
#include "devices/pci.h"
#include "virtio/virtio_pci.h"
#include "vring_driver.h"

/* One virtio PCI function as the driver sees it. */
struct vpci {
	struct pci_host *host;
	struct bus *mmio;
	pthread_mutex_t *lock;	/* taken around each access; NULL: held */
	unsigned devfn;
	uint64_t bar;		/* GPA of BAR 4, the virtio structures */
	uint64_t msix;		/* GPA of BAR 1, the MSI-X table */
	unsigned unclaimed;	/* MMIO accesses no device claimed */
};

/* MSI-X messages go to the local APIC at this address. */
#define VPCI_MSI_ADDR	0xfee00000u

static inline void vpci_lock(const struct vpci *p)
{
	if (p->lock)
		pthread_mutex_lock(p->lock);
}

static inline void vpci_unlock(const struct vpci *p)
{
	if (p->lock)
		pthread_mutex_unlock(p->lock);
}

/*
 * The machine around the function: a port I/O bus (*@pio), an MMIO bus
 * and a PCI host on them whose interrupts go to @ops (@opaque), stored in
 * p->mmio and p->host.  Returns 0, or -ENOMEM / pci_host_attach()'s error.
 */
static inline int vpci_host_new(struct vpci *p, struct bus **pio,
				const struct pci_host_ops *ops, void *opaque)
{
	int r;

	*pio = bus_new("pio");
	p->mmio = bus_new("mmio");
	p->host = pci_host_new();
	if (!*pio || !p->mmio || !p->host)
		return -ENOMEM;
	r = pci_host_attach(p->host, *pio, p->mmio);
	if (r == 0)
		pci_host_set_ops(p->host, ops, opaque);
	return r;
}

/* PCI config space of the function: @size bytes at @off. */
static inline uint32_t vpci_cfg_rd(struct vpci *p, unsigned off,
				   unsigned size)
{
	uint32_t v;

	vpci_lock(p);
	v = pci_config_read(p->host, 0, p->devfn, off, size);
	vpci_unlock(p);
	return v;
}

static inline void vpci_cfg_wr(struct vpci *p, unsigned off,
			       unsigned size, uint32_t v)
{
	vpci_lock(p);
	pci_config_write(p->host, 0, p->devfn, off, size, v);
	vpci_unlock(p);
}

static inline void vpci_claimed(struct vpci *p, int claimed, bool write,
				uint64_t addr, unsigned size)
{
	if (claimed)
		return;
	p->unclaimed++;
#ifdef CHECK
	CHECK(claimed);
	fprintf(stderr, "  (unclaimed %u-byte %s at 0x%llx)\n", size,
		write ? "write" : "read", (unsigned long long)addr);
#else
	(void)write;
	(void)addr;
	(void)size;
#endif
}

/* An MMIO access of @size bytes at GPA @addr (unclaimed reads give
 * all-ones). */
static inline uint64_t vpci_mmio_rd(struct vpci *p, uint64_t addr,
				    unsigned size)
{
	int claimed = 0;
	uint64_t v;

	vpci_lock(p);
	v = bus_read(p->mmio, addr, size, &claimed);
	vpci_unlock(p);
	vpci_claimed(p, claimed, false, addr, size);
	return v;
}

static inline void vpci_mmio_wr(struct vpci *p, uint64_t addr, uint64_t v,
				unsigned size)
{
	int claimed = 0;

	vpci_lock(p);
	bus_write(p->mmio, addr, v, size, &claimed);
	vpci_unlock(p);
	vpci_claimed(p, claimed, true, addr, size);
}

/* @size bytes at offset @off of BAR 4 (VIRTIO_PCI_*_OFF + field). */
static inline uint64_t vpci_rd(struct vpci *p, uint64_t off,
			       unsigned size)
{
	return vpci_mmio_rd(p, p->bar + off, size);
}

static inline void vpci_wr(struct vpci *p, uint64_t off, uint64_t v,
			   unsigned size)
{
	vpci_mmio_wr(p, p->bar + off, v, size);
}

/* Program BAR 4 (64-bit) at p->bar and BAR 1 at p->msix, then enable
 * memory decoding and bus mastering. */
static inline void vpci_map_bars(struct vpci *p)
{
	vpci_cfg_wr(p, PCI_BASE_ADDRESS_0 + 4 * VIRTIO_PCI_BAR, 4,
		    (uint32_t)p->bar);
	vpci_cfg_wr(p, PCI_BASE_ADDRESS_0 + 4 * VIRTIO_PCI_BAR + 4, 4,
		    (uint32_t)(p->bar >> 32));
	vpci_cfg_wr(p, PCI_BASE_ADDRESS_0 + 4 * VIRTIO_PCI_MSIX_BAR, 4,
		    (uint32_t)p->msix);
	vpci_cfg_wr(p, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
}

/* device_status (§2.1). */
static inline uint8_t vpci_status(struct vpci *p)
{
	return (uint8_t)vpci_rd(p, VIRTIO_PCI_COMMON_STATUS, 1);
}

static inline void vpci_set_status(struct vpci *p, uint8_t s)
{
	vpci_wr(p, VIRTIO_PCI_COMMON_STATUS, s, 1);
}

/* The 64 feature bits the device offers (both select windows). */
static inline uint64_t vpci_device_features(struct vpci *p)
{
	uint64_t f;

	vpci_wr(p, VIRTIO_PCI_COMMON_DFSELECT, 0, 4);
	f = vpci_rd(p, VIRTIO_PCI_COMMON_DF, 4);
	vpci_wr(p, VIRTIO_PCI_COMMON_DFSELECT, 1, 4);
	return f | vpci_rd(p, VIRTIO_PCI_COMMON_DF, 4) << 32;
}

static inline void vpci_write_driver_features(struct vpci *p,
					      uint64_t f)
{
	vpci_wr(p, VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
	vpci_wr(p, VIRTIO_PCI_COMMON_GF, (uint32_t)f, 4);
	vpci_wr(p, VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
	vpci_wr(p, VIRTIO_PCI_COMMON_GF, f >> 32, 4);
}

/*
 * §3.1.1 steps 1-6: reset, ACKNOWLEDGE, DRIVER, accept @want & offered
 * (plus @force, set whether offered or not), FEATURES_OK.  The accepted
 * set goes to *@f.  Returns false if the reset did not read back 0 or the
 * device cleared FEATURES_OK.
 */
static inline bool vpci_negotiate(struct vpci *p, uint64_t want,
				  uint64_t force, uint64_t *f)
{
	bool ok;

	vpci_set_status(p, 0);
	ok = vpci_status(p) == 0;
	vpci_set_status(p, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	vpci_set_status(p, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	*f = (vpci_device_features(p) & want) | force;
	vpci_write_driver_features(p, *f);
	vpci_set_status(p, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			VIRTIO_CONFIG_S_FEATURES_OK);
	return ok && (vpci_status(p) & VIRTIO_CONFIG_S_FEATURES_OK);
}

/* §3.1.1 step 8: DRIVER_OK.  Returns the status read back (0x0f when the
 * device accepted it). */
static inline uint8_t vpci_driver_ok(struct vpci *p)
{
	vpci_set_status(p, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
	return vpci_status(p);
}

/* MSI-X table entry @v: message VPCI_MSI_ADDR / @data, unmasked. */
static inline void vpci_msix_program(struct vpci *p, unsigned v,
				     uint32_t data)
{
	vpci_mmio_wr(p, p->msix + 16 * v, VPCI_MSI_ADDR, 4);
	vpci_mmio_wr(p, p->msix + 16 * v + 4, 0, 4);
	vpci_mmio_wr(p, p->msix + 16 * v + 8, data, 4);
	vpci_mmio_wr(p, p->msix + 16 * v + 12, 0, 4);	/* unmask */
}

/* MSI-X Enable in the capability's Message Control. */
static inline void vpci_msix_enable(struct vpci *p, bool on)
{
	vpci_cfg_wr(p, VIRTIO_PCI_CAP_MSIX_OFF + 2, 2, on ? 0x8000 : 0);
}

/*
 * The interrupt mode: with @msix, table entries 0..@nvec-1 send data
 * @data_base + v, MSI-X is enabled and the configuration vector set to 0;
 * without, MSI-X is off (INTx).  Returns false if the configuration
 * vector did not read back.
 */
static inline bool vpci_interrupts(struct vpci *p, bool msix, unsigned nvec,
				   uint32_t data_base)
{
	if (!msix) {
		vpci_msix_enable(p, false);
		return true;
	}
	for (unsigned v = 0; v < nvec; v++)
		vpci_msix_program(p, v, data_base + v);
	vpci_msix_enable(p, true);
	vpci_wr(p, VIRTIO_PCI_COMMON_MSIX, 0, 2);
	return vpci_rd(p, VIRTIO_PCI_COMMON_MSIX, 2) == 0;
}

/*
 * vpci_negotiate() then vpci_interrupts(); queues are set up next
 * (vpci_queue_setup), then vpci_driver_ok().  Returns false if a step did
 * not read back.
 */
static inline bool vpci_driver_start(struct vpci *p, uint64_t want,
				     uint64_t force, bool msix, unsigned nvec,
				     uint32_t data_base, uint64_t *f)
{
	bool ok = vpci_negotiate(p, want, force, f);

	return vpci_interrupts(p, msix, nvec, data_base) && ok;
}

/*
 * §4.1.5.1.3 up to enabling: select queue @q, read its maximum size into
 * *@max (if not NULL), set @size, vector @vector (negative: leave the
 * vector alone) and the ring GPAs (desc as two 32-bit halves, avail as one
 * 64-bit access, used as two halves: every width a driver may use).
 * Returns false if the size, vector or avail address did not read back.
 */
static inline bool vpci_queue_config_at(struct vpci *p, unsigned q,
					uint16_t size, uint64_t desc,
					uint64_t avail, uint64_t used,
					int vector, uint16_t *max)
{
	bool ok = true;

	vpci_wr(p, VIRTIO_PCI_COMMON_Q_SELECT, q, 2);
	if (max)
		*max = (uint16_t)vpci_rd(p, VIRTIO_PCI_COMMON_Q_SIZE, 2);
	vpci_wr(p, VIRTIO_PCI_COMMON_Q_SIZE, size, 2);
	ok &= vpci_rd(p, VIRTIO_PCI_COMMON_Q_SIZE, 2) == size;
	if (vector >= 0) {
		vpci_wr(p, VIRTIO_PCI_COMMON_Q_MSIX, (uint16_t)vector, 2);
		ok &= vpci_rd(p, VIRTIO_PCI_COMMON_Q_MSIX, 2) ==
		      (uint16_t)vector;
	}
	vpci_wr(p, VIRTIO_PCI_COMMON_Q_DESCLO, (uint32_t)desc, 4);
	vpci_wr(p, VIRTIO_PCI_COMMON_Q_DESCHI, desc >> 32, 4);
	vpci_wr(p, VIRTIO_PCI_COMMON_Q_AVAILLO, avail, 8);
	vpci_wr(p, VIRTIO_PCI_COMMON_Q_USEDLO, (uint32_t)used, 4);
	vpci_wr(p, VIRTIO_PCI_COMMON_Q_USEDHI, used >> 32, 4);
	return ok && vpci_rd(p, VIRTIO_PCI_COMMON_Q_AVAILLO, 8) == avail;
}

/* vpci_queue_config_at() with the size and rings of @d. */
static inline bool vpci_queue_config(struct vpci *p, unsigned q,
				     const struct vdrv *d, int vector,
				     uint16_t *max)
{
	return vpci_queue_config_at(p, q, d->size, d->desc, d->avail, d->used,
				    vector, max);
}

/* queue_enable for the selected queue; false if it does not read back. */
static inline bool vpci_queue_enable(struct vpci *p)
{
	vpci_wr(p, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	return vpci_rd(p, VIRTIO_PCI_COMMON_Q_ENABLE, 2) == 1;
}

/* vpci_queue_config() then vpci_queue_enable(): false if either failed. */
static inline bool vpci_queue_setup(struct vpci *p, unsigned q,
				    const struct vdrv *d, int vector,
				    uint16_t *max)
{
	bool ok = vpci_queue_config(p, q, d, vector, max);

	return vpci_queue_enable(p) && ok;
}

/* §4.1.4.4: notify queue @q (our notify_off_multiplier layout). */
static inline void vpci_kick(struct vpci *p, unsigned q)
{
	vpci_wr(p, VIRTIO_PCI_NOTIFY_OFF + q * VIRTIO_PCI_NOTIFY_MULT, q, 2);
}

/* §4.1.4.5: read (and so clear) the ISR status byte. */
static inline uint8_t vpci_isr(struct vpci *p)
{
	return (uint8_t)vpci_rd(p, VIRTIO_PCI_ISR_OFF, 1);
}

/*
 * The host side of the function's interrupts, as struct pci_host_ops:
 * MSI-X messages counted per vector (data - msi_base, VPCI_NVEC of them),
 * messages to an address other than VPCI_MSI_ADDR counted as bad, INTx
 * (PIRQ A-D) levels and rising edges.  Counters are updated atomically:
 * devices send from their worker threads.  Pass the struct vpci_irqs as
 * the ops' opaque (vpci_host_new).
 */
#define VPCI_NVEC	8

struct vpci_irqs {
	uint32_t msi_base;		/* data of vector 0 */
	unsigned msi[VPCI_NVEC], msi_bad;
	unsigned pirq_level[4], pirq_rises[4];
};

static inline void vpci_irqs_set_pirq(void *opaque, unsigned pirq, int level)
{
	struct vpci_irqs *r = opaque;

	if (pirq < 4) {
		if (level && !r->pirq_level[pirq])
			__atomic_add_fetch(&r->pirq_rises[pirq], 1,
					   __ATOMIC_SEQ_CST);
		r->pirq_level[pirq] = level;
	}
}

static inline int vpci_irqs_send_msi(void *opaque, uint64_t addr,
				     uint32_t data)
{
	struct vpci_irqs *r = opaque;

	if (addr != VPCI_MSI_ADDR)
		__atomic_add_fetch(&r->msi_bad, 1, __ATOMIC_SEQ_CST);
	if (data >= r->msi_base && data - r->msi_base < VPCI_NVEC)
		__atomic_add_fetch(&r->msi[data - r->msi_base], 1,
				   __ATOMIC_SEQ_CST);
	return 0;
}

/* Zero the per-vector and INTx counters (msi_bad is kept: it is checked
 * once at the end). */
static inline void vpci_irqs_clear(struct vpci_irqs *r)
{
	memset(r->msi, 0, sizeof(r->msi));
	memset(r->pirq_level, 0, sizeof(r->pirq_level));
	memset(r->pirq_rises, 0, sizeof(r->pirq_rises));
}

static const struct pci_host_ops vpci_irqs_ops = {
	vpci_irqs_set_pirq, vpci_irqs_send_msi,
};

#endif
