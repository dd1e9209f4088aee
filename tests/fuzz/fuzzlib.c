/* SPDX-License-Identifier: MIT */
/* tests/fuzz/fuzzlib.c - what the device fuzz targets share (fuzzlib.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzzlib.h"
#include "virtio_pci_driver.h"
#include "vring_driver.h"

void fuzz_fail(const char *what)
{
	fprintf(stderr, "%s: %s\n", fuzz_target, what);
	abort();
}

void fuzz_fail_with(const char *err, const char *what)
{
	fprintf(stderr, "%s: %s\n", fuzz_target, err);
	fuzz_fail(what);
}

void fuzz_ram(struct guest_mem *mem, size_t size)
{
	if (guest_mem_init(mem, size) != 0)
		fuzz_fail("cannot allocate guest RAM");
}

static void no_pirq(void *o, unsigned p, int l)
{
	(void)o, (void)p, (void)l;
}

static int no_msi(void *o, uint64_t a, uint32_t d)
{
	(void)o, (void)a, (void)d;
	return 0;
}

const struct pci_host_ops fuzz_no_irqs = { no_pirq, no_msi };

struct pci_host *fuzz_pci_host(struct bus **pio, struct bus **mmio,
			       const struct pci_host_ops *ops, void *opaque)
{
	struct pci_host *host;

	*pio = bus_new("pio");
	*mmio = bus_new("mmio");
	host = pci_host_new();
	if (!*pio || !*mmio || !host || pci_host_attach(host, *pio, *mmio) != 0)
		fuzz_fail("cannot build the PCI host");
	if (ops)
		pci_host_set_ops(host, ops, opaque);
	return host;
}

uint64_t fuzz_now_ns;

static uint64_t now_mono(const struct vclock *c)
{
	(void)c;
	return fuzz_now_ns;
}

static int64_t now_real(const struct vclock *c)
{
	(void)c;
	return (int64_t)fuzz_now_ns;
}

const struct vclock fuzz_clock = { now_mono, now_real, NULL };

struct vtimer_queue *fuzz_timer_queue(void)
{
	struct vtimer_queue *q = vtimer_queue_new_manual(&fuzz_clock);

	if (!q)
		fuzz_fail("cannot make the timer queue");
	return q;
}

const uint8_t *fuzz_image(struct guest_mem *mem, uint64_t gpa, size_t max,
			  const uint8_t *data, size_t size, size_t at,
			  size_t len, size_t *rest)
{
	if (len > max)
		len = max;
	if (len > size - at)
		len = size - at;
	memset(gpa_to_hva(mem, gpa, max), 0, max);
	if (len)
		memcpy(gpa_to_hva(mem, gpa, len), data + at, len);
	*rest = size - at - len;
	return data + at + len;
}

GVariant *fuzz_save(const struct device_ops *ops, void *dev, const char *why)
{
	GVariant *s = ops->save(dev);

	if (!s)
		fuzz_fail(why);
	return g_variant_ref_sink(s);
}

void fuzz_load(const struct device_ops *ops, void *dev, GVariant *state)
{
	char err[256] = "";

	if (ops->load(dev, ops->state_version, state, err, sizeof(err)) != 0)
		fuzz_fail_with(err, "a saved state did not load");
}

void fuzz_load_same(const struct device_ops *ops, void *dev, GVariant *state,
		    const char *why)
{
	GVariant *again;

	fuzz_load(ops, dev, state);
	again = fuzz_save(ops, dev, why);
	if (!g_variant_equal(state, again))
		fuzz_fail("the loaded state saves differently");
	g_variant_unref(state);
	g_variant_unref(again);
}

void fuzz_vqs_layout(const struct fuzz_vqs *v, unsigned q, uint16_t size,
		     uint64_t *desc, uint64_t *avail, uint64_t *used)
{
	*desc = v->rings + v->stride * q;
	vdrv_packed_layout(*desc, size, avail, used);
}

void fuzz_vqs_negotiate(const struct fuzz_vqs *v, uint32_t mask, uint8_t flags)
{
	uint64_t f = 1ull << VIRTIO_F_VERSION_1;

	if (flags & 1)
		f |= 1ull << VIRTIO_F_INDIRECT_DESC;
	if (flags & 2)
		f |= 1ull << VIRTIO_F_EVENT_IDX;
	vpci_negotiate(v->vp, mask, f, &f);
}

void fuzz_vqs_start(const struct fuzz_vqs *v, bool msix, unsigned nvec)
{
	if (msix)
		vpci_interrupts(v->vp, true, nvec, 0x40);
	for (unsigned q = 0; q < v->n; q++) {
		uint64_t d, a, u;

		fuzz_vqs_layout(v, q, v->size[q], &d, &a, &u);
		vpci_queue_config_at(v->vp, q, v->size[q], d, a, u, (int)q + 1,
				     NULL);
		vpci_queue_enable(v->vp);
	}
	vpci_set_status(v->vp, 0x0f);
}

void fuzz_vqs_publish(const struct fuzz_vqs *v, uint8_t delta)
{
	for (unsigned q = 0; q < v->n; q++) {
		uint64_t d, a, u;
		uint16_t *idx;

		fuzz_vqs_layout(v, q, v->size[q], &d, &a, &u);
		idx = gpa_to_hva(v->mem, a + 2, 2);
		*idx = (uint16_t)(*idx + delta);
	}
}

void fuzz_vqs_driver(const struct fuzz_vqs *v, struct vdrv *d, unsigned q,
		     uint16_t size, uint64_t data, uint64_t data_len)
{
	d->mem = v->mem;
	d->size = size;
	fuzz_vqs_layout(v, q, size, &d->desc, &d->avail, &d->used);
	d->data_start = data;
	d->data_end = data + data_len;
	d->next_desc = d->avail_idx = d->used_seen = 0;
	d->data_next = d->data_start;
}
