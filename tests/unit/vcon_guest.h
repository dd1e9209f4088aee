/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/vcon_guest.h - a guest's virtio_console driver in a few calls,
 * for tests of what sits on the host side of the ports (app/agents.c):
 * the real virtio-serial device (vmm-core/virtio/virtio_console.c) on a
 * PCI host in synthetic guest RAM, brought up as Linux does it (features,
 * queues, DEVICE_READY, PORT_READY, PORT_OPEN), rings from vring_driver.h.
 * One device per process; header-only.
 */
#ifndef VIVARIUM_VCON_GUEST_H
#define VIVARIUM_VCON_GUEST_H

#include <endian.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bus.h"
#include "check.h"
#include "devices/pci.h"
#include "mem.h"
#include "testlib.h"
#include "virtio/virtio_console.h"
#include "virtio/virtio_pci.h"
#include "vring_driver.h"

#define VG_RAM		(64u << 20)
#define VG_DEVFN	(0x0f << 3)
#define VG_BAR		0xfe000000ull
#define VG_MSIX		0xfe100000ull
#define VG_QSIZE	64
#define VG_RXBUF	4096u
#define VG_QBASE(q)	(0x100000ull + (uint64_t)(q) * 0x300000ull)
#define VG_DATA		(2u << 20)

struct vcon_guest {
	struct guest_mem mem;
	pthread_mutex_t lock;		/* the device lock */
	struct bus *pio, *mmio;
	struct pci_host *host;
	struct virtio_console *vc;
	unsigned nports, nq;
	struct vdrv q[2 + 2 * (VCON_MAX_PORTS + 1)];
};

static inline void vg_set_pirq__(void *o, unsigned pirq, int level)
{
	(void)o; (void)pirq; (void)level;
}

static inline int vg_send_msi__(void *o, uint64_t addr, uint32_t data)
{
	(void)o; (void)addr; (void)data;
	return 0;
}

static const struct pci_host_ops vg_host_ops__ = {
	vg_set_pirq__, vg_send_msi__,
};

static inline uint64_t vg_rd(struct vcon_guest *g, uint64_t off, unsigned size)
{
	uint64_t v;

	pthread_mutex_lock(&g->lock);
	v = io_read(g->mmio, VG_BAR + off, size);
	pthread_mutex_unlock(&g->lock);
	return v;
}

static inline void vg_wr(struct vcon_guest *g, uint64_t off, uint64_t v,
			 unsigned size)
{
	pthread_mutex_lock(&g->lock);
	io_write(g->mmio, VG_BAR + off, v, size);
	pthread_mutex_unlock(&g->lock);
}

static inline void vg_kick(struct vcon_guest *g, unsigned qn)
{
	vg_wr(g, VIRTIO_PCI_NOTIFY_OFF + qn * VIRTIO_PCI_NOTIFY_MULT, qn, 2);
}

static inline uint64_t vg_desc_addr__(struct vcon_guest *g, unsigned qn,
				      uint32_t head)
{
	struct virtq_desc d;

	memcpy(&d, vdrv_hva(&g->q[qn], g->q[qn].desc + 16ull * head, 16), 16);
	return d.addr;
}

/* A device-readable buffer holding @p/@len on queue @qn, kicked.  The
 * device takes it during the kick, so buffer space is reused. */
static inline void vg_tx__(struct vcon_guest *g, unsigned qn, const void *p,
			   size_t len)
{
	struct vdrv *d = &g->q[qn];
	struct vbuf b;

	if (d->data_next + len + 8 > d->data_end)
		d->data_next = d->data_start;
	b.gpa = vdrv_alloc(d, len ? len : 1, 8);
	b.len = (uint32_t)len;
	b.write = false;
	memcpy(vdrv_hva(d, b.gpa, len ? len : 1), p, len);
	vdrv_add(d, &b, 1, false);
	vg_kick(g, qn);
}

static inline void vg_ctrl(struct vcon_guest *g, uint32_t id, uint16_t event,
			   uint16_t value)
{
	uint8_t b[8];
	uint32_t lid = htole32(id);
	uint16_t le = htole16(event), lv = htole16(value);

	memcpy(b, &lid, 4);
	memcpy(b + 4, &le, 2);
	memcpy(b + 6, &lv, 2);
	vg_tx__(g, VIRTIO_CONSOLE_CTRL_TXQ, b, 8);
}

/* Post @n device-writable buffers of VG_RXBUF bytes on @qn, kicked. */
static inline void vg_post_rx__(struct vcon_guest *g, unsigned qn, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct vbuf b = { vdrv_alloc(&g->q[qn], VG_RXBUF, 8), VG_RXBUF, true };

		vdrv_add(&g->q[qn], &b, 1, false);
	}
	vg_kick(g, qn);
}

/*
 * vg_init - the device with host ports @ports[0..@n) (ids 1..@n), driven
 * up to every port added and named, each with receive buffers posted;
 * the guest opens none yet.  Returns 0, or -1 (reported).
 */
static inline int vg_init(struct vcon_guest *g, struct vcon_port **ports,
			  unsigned n)
{
	struct virtio_console_config c = { 0 };
	char err[256] = "";
	uint64_t f;
	uint32_t head, len;

	memset(g, 0, sizeof(*g));
	pthread_mutex_init(&g->lock, NULL);
	if (guest_mem_init(&g->mem, VG_RAM) != 0)
		return -1;
	g->pio = bus_new("pio");
	g->mmio = bus_new("mmio");
	g->host = pci_host_new();
	CHECK_EQ(pci_host_attach(g->host, g->pio, g->mmio), 0);
	pci_host_set_ops(g->host, &vg_host_ops__, NULL);
	c.pci = g->host;
	c.devfn = VG_DEVFN;
	c.mem = &g->mem;
	c.lock = &g->lock;
	c.nports = n;
	for (unsigned i = 0; i < n; i++)
		c.port[i] = ports[i];
	pthread_mutex_lock(&g->lock);
	g->vc = virtio_console_new(&c, err, sizeof(err));
	pthread_mutex_unlock(&g->lock);
	if (!g->vc) {
		fprintf(stderr, "vcon_guest: %s\n", err);
		return -1;
	}
	g->nports = n;
	pci_config_write(g->host, 0, VG_DEVFN, PCI_BASE_ADDRESS_0 + 4 * VIRTIO_PCI_BAR,
			 4, (uint32_t)VG_BAR);
	pci_config_write(g->host, 0, VG_DEVFN, PCI_BASE_ADDRESS_0 + 4 * VIRTIO_PCI_BAR + 4,
			 4, (uint32_t)(VG_BAR >> 32));
	pci_config_write(g->host, 0, VG_DEVFN, PCI_BASE_ADDRESS_0 + 4 * VIRTIO_PCI_MSIX_BAR,
			 4, (uint32_t)VG_MSIX);
	pci_config_write(g->host, 0, VG_DEVFN, PCI_COMMAND, 2,
			 PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	/* §3.1.1 with MULTIPORT and VERSION_1. */
	vg_wr(g, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	vg_wr(g, VIRTIO_PCI_COMMON_STATUS, 3, 1);
	f = (1ull << VIRTIO_CONSOLE_F_MULTIPORT) | (1ull << VIRTIO_F_VERSION_1);
	vg_wr(g, VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
	vg_wr(g, VIRTIO_PCI_COMMON_GF, (uint32_t)f, 4);
	vg_wr(g, VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
	vg_wr(g, VIRTIO_PCI_COMMON_GF, f >> 32, 4);
	vg_wr(g, VIRTIO_PCI_COMMON_STATUS, 0x0b, 1);
	g->nq = (unsigned)vg_rd(g, VIRTIO_PCI_COMMON_NUMQ, 2);
	if (g->nq > sizeof(g->q) / sizeof(g->q[0]))
		g->nq = sizeof(g->q) / sizeof(g->q[0]);
	for (unsigned i = 0; i < g->nq; i++) {
		struct vdrv *d = &g->q[i];

		vdrv_init(d, &g->mem, VG_QSIZE, VG_QBASE(i), VG_DATA);
		vg_wr(g, VIRTIO_PCI_COMMON_Q_SELECT, i, 2);
		vg_wr(g, VIRTIO_PCI_COMMON_Q_SIZE, VG_QSIZE, 2);
		vg_wr(g, VIRTIO_PCI_COMMON_Q_DESCLO, d->desc, 8);
		vg_wr(g, VIRTIO_PCI_COMMON_Q_AVAILLO, d->avail, 8);
		vg_wr(g, VIRTIO_PCI_COMMON_Q_USEDLO, d->used, 8);
		vg_wr(g, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	}
	vg_wr(g, VIRTIO_PCI_COMMON_STATUS, 0x0f, 1);
	CHECK_EQ(vg_rd(g, VIRTIO_PCI_COMMON_STATUS, 1), 0x0f);
	vg_post_rx__(g, VIRTIO_CONSOLE_CTRL_RXQ, 32);
	vg_ctrl(g, 0xffffffffu, VIRTIO_CONSOLE_DEVICE_READY, 1);
	for (unsigned id = 1; id <= n; id++) {
		vg_post_rx__(g, VIRTIO_CONSOLE_RXQ(id), VG_QSIZE);
		vg_ctrl(g, id, VIRTIO_CONSOLE_PORT_READY, 1);
	}
	/* The control messages (PORT_ADD, PORT_NAME, host PORT_OPEN) are
	 * test_virtio_console's business: taken and dropped. */
	while (vdrv_get_used(&g->q[VIRTIO_CONSOLE_CTRL_RXQ], &head, &len)) {
	}
	return 0;
}

/* The guest opens (@open) or closes port @id, as a program opening
 * /dev/vport0pN does. */
static inline void vg_open(struct vcon_guest *g, unsigned id, bool open)
{
	vg_ctrl(g, id, VIRTIO_CONSOLE_PORT_OPEN, open);
}

/* The guest writes @len bytes (at most VG_DATA / 2) to port @id. */
static inline void vg_write(struct vcon_guest *g, unsigned id, const void *p,
			    size_t len)
{
	vg_tx__(g, VIRTIO_CONSOLE_TXQ(id), p, len);
}

/* What the device put in port @id's receive buffers since the last call,
 * appended to @out (@max bytes); the buffers go back to the device.
 * Returns the bytes read. */
static inline size_t vg_read(struct vcon_guest *g, unsigned id, uint8_t *out,
			     size_t max)
{
	unsigned qn = VIRTIO_CONSOLE_RXQ(id);
	struct vdrv *d = &g->q[qn];
	uint32_t head, len;
	size_t n = 0;
	bool reposted = false;

	while (vdrv_get_used(d, &head, &len)) {
		uint64_t gpa = vg_desc_addr__(g, qn, head);
		struct vbuf b = { gpa, VG_RXBUF, true };

		if (len > VG_RXBUF)
			len = VG_RXBUF;
		if (len > max - n)
			len = (uint32_t)(max - n);
		memcpy(out + n, vdrv_hva(d, gpa, VG_RXBUF), len);
		n += len;
		vdrv_add(d, &b, 1, false);
		reposted = true;
	}
	if (reposted)
		vg_kick(g, qn);
	return n;
}

static inline void vg_free(struct vcon_guest *g)
{
	pthread_mutex_lock(&g->lock);
	virtio_console_free(g->vc);
	pthread_mutex_unlock(&g->lock);
	pci_host_free(g->host);
	bus_free(g->mmio);
	bus_free(g->pio);
	guest_mem_free(&g->mem);
}

#endif
