/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/ide_driver.h - a PIIX3 IDE controller on a PCI host, an I/O
 * bus and guest RAM, driven from the test the way a guest driver does:
 * port accesses under the device lock (block completions take it from
 * worker threads), BAR4 programmed through config space, and waits that
 * poll the alternate status register.  Header-only; includes testlib.h.
 */
#ifndef VIVARIUM_IDE_DRIVER_H
#define VIVARIUM_IDE_DRIVER_H

#define _GNU_SOURCE
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"

#include "block/block.h"
#include "bus.h"
#include "devices/ide.h"
#include "devices/pci.h"
#include "mem.h"

#define RIG_RAM		(64u << 20)
#define RIG_BM		0xc000u		/* BAR4 base the test programs */

/* ATA status bits, for the tests' expectations. */
#define S_ERR	0x01
#define S_DRQ	0x08
#define S_DSC	0x10
#define S_DRDY	0x40
#define S_BSY	0x80

struct ide_rig {
	struct guest_mem mem;
	pthread_mutex_t lock;
	struct bus *pio, *mmio;
	struct pci_host *host;
	struct piix_ide *ide;
	struct irq_recorder irq[2];
};

static inline uint16_t rig_cmd(unsigned ch)
{
	return ch ? 0x170 : 0x1f0;
}

static inline uint16_t rig_ctl(unsigned ch)
{
	return ch ? 0x376 : 0x3f6;
}

static inline uint64_t rig_in(struct ide_rig *r, uint16_t port, unsigned size)
{
	uint64_t v;

	pthread_mutex_lock(&r->lock);
	v = io_read(r->pio, port, size);
	pthread_mutex_unlock(&r->lock);
	return v;
}

static inline void rig_out(struct ide_rig *r, uint16_t port, uint64_t v,
			   unsigned size)
{
	pthread_mutex_lock(&r->lock);
	io_write(r->pio, port, v, size);
	pthread_mutex_unlock(&r->lock);
}

static inline uint8_t rig_inb(struct ide_rig *r, uint16_t port)
{
	return (uint8_t)rig_in(r, port, 1);
}

static inline void rig_outb(struct ide_rig *r, uint16_t port, uint8_t v)
{
	rig_out(r, port, v, 1);
}

static inline uint32_t rig_cfg_read(struct ide_rig *r, unsigned off,
				    unsigned size)
{
	uint32_t v;

	pthread_mutex_lock(&r->lock);
	v = pci_config_read(r->host, 0, PIIX_IDE_DEVFN, off, size);
	pthread_mutex_unlock(&r->lock);
	return v;
}

static inline void rig_cfg_write(struct ide_rig *r, unsigned off,
				 unsigned size, uint32_t v)
{
	pthread_mutex_lock(&r->lock);
	pci_config_write(r->host, 0, PIIX_IDE_DEVFN, off, size, v);
	pthread_mutex_unlock(&r->lock);
}

/* Rising edges seen on channel @ch's IRQ line so far. */
static inline unsigned rig_irq_rises(struct ide_rig *r, unsigned ch)
{
	unsigned v;

	pthread_mutex_lock(&r->lock);
	v = r->irq[ch].rises;
	pthread_mutex_unlock(&r->lock);
	return v;
}

static inline int rig_irq_level(struct ide_rig *r, unsigned ch)
{
	int v;

	pthread_mutex_lock(&r->lock);
	v = r->irq[ch].level;
	pthread_mutex_unlock(&r->lock);
	return v;
}

/* Poll the alternate status until BSY clears (10 s at most: CHECKed).
 * Returns the status. */
static inline uint8_t rig_wait(struct ide_rig *r, unsigned ch)
{
	for (unsigned i = 0; i < 200000; i++) {
		uint8_t st = rig_inb(r, rig_ctl(ch));

		if (!(st & S_BSY))
			return st;
		usleep(50);
	}
	CHECK(!"device stayed busy");
	return 0xff;
}

/* Poll the bus master status of @ch until its interrupt bit is set (or
 * the engine went inactive with an error).  Returns the BM status. */
static inline uint8_t rig_wait_bm(struct ide_rig *r, unsigned ch)
{
	for (unsigned i = 0; i < 200000; i++) {
		uint8_t st = rig_inb(r, (uint16_t)(RIG_BM + 8 * ch + 2));

		if (st & 0x06 || !(st & 0x01))
			return st;
		usleep(50);
	}
	CHECK(!"bus master never finished");
	return 0xff;
}

static inline void rig_select(struct ide_rig *r, unsigned ch, unsigned unit,
			      uint8_t extra)
{
	rig_outb(r, rig_cmd(ch) + 6, (uint8_t)(0xa0 | (unit << 4) | extra));
}

/* Build the machine around @drives (positions 0-3). */
static inline void rig_setup(struct ide_rig *r,
			     const struct ide_drive_config drives[4])
{
	struct piix_ide_config cfg;
	char err[256] = "";

	memset(r, 0, sizeof(*r));
	CHECK_EQ(guest_mem_init(&r->mem, RIG_RAM), 0);
	pthread_mutex_init(&r->lock, NULL);
	r->pio = bus_new("pio");
	r->mmio = bus_new("mmio");
	r->host = pci_host_new();
	CHECK(r->host != NULL);
	CHECK_EQ(pci_host_attach(r->host, r->pio, r->mmio), 0);
	memset(&cfg, 0, sizeof(cfg));
	cfg.pci = r->host;
	cfg.devfn = PIIX_IDE_DEVFN;
	cfg.pio = r->pio;
	cfg.mem = &r->mem;
	cfg.lock = &r->lock;
	cfg.irq[0] = irq_recorder_line(&r->irq[0], 14);
	cfg.irq[1] = irq_recorder_line(&r->irq[1], 15);
	for (unsigned i = 0; i < 4; i++)
		cfg.drive[i] = drives[i];
	pthread_mutex_lock(&r->lock);
	r->ide = piix_ide_new(&cfg, err, sizeof(err));
	pthread_mutex_unlock(&r->lock);
	if (!r->ide)
		fprintf(stderr, "piix_ide_new: %s\n", err);
	CHECK(r->ide != NULL);
	/* What firmware does: BAR4, I/O decode and bus mastering. */
	rig_cfg_write(r, PCI_BASE_ADDRESS_0 + 16, 4, RIG_BM);
	rig_cfg_write(r, PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MASTER);
}

static inline void rig_teardown(struct ide_rig *r)
{
	if (r->ide) {
		piix_ide_drain(r->ide);
		pthread_mutex_lock(&r->lock);
		piix_ide_free(r->ide);
		pthread_mutex_unlock(&r->lock);
	}
	pci_host_free(r->host);
	bus_free(r->pio);
	bus_free(r->mmio);
	guest_mem_free(&r->mem);
	pthread_mutex_destroy(&r->lock);
}

/* One PRD entry at @table index @i. */
static inline void rig_prd(struct ide_rig *r, uint64_t table, unsigned i,
			   uint32_t addr, uint32_t count, bool eot)
{
	uint8_t e[8];

	e[0] = (uint8_t)addr;
	e[1] = (uint8_t)(addr >> 8);
	e[2] = (uint8_t)(addr >> 16);
	e[3] = (uint8_t)(addr >> 24);
	e[4] = (uint8_t)count;
	e[5] = (uint8_t)(count >> 8);
	e[6] = 0;
	e[7] = eot ? 0x80 : 0;
	CHECK_EQ(guest_mem_write(&r->mem, table + 8ull * i, e, 8), 0);
}

/* Program the bus master of @ch: PRD table, direction (@to_memory: a
 * device read), status bits cleared.  Does not start it. */
static inline void rig_bm_setup(struct ide_rig *r, unsigned ch, uint32_t table,
				bool to_memory)
{
	uint16_t bm = (uint16_t)(RIG_BM + 8 * ch);

	rig_out(r, bm + 4, table, 4);
	rig_outb(r, bm, to_memory ? 0x08 : 0x00);
	rig_outb(r, bm + 2, 0x06);
}

static inline void rig_bm_start(struct ide_rig *r, unsigned ch, bool to_memory)
{
	rig_outb(r, (uint16_t)(RIG_BM + 8 * ch), to_memory ? 0x09 : 0x01);
}

static inline void rig_bm_stop(struct ide_rig *r, unsigned ch)
{
	uint16_t bm = (uint16_t)(RIG_BM + 8 * ch);

	rig_outb(r, bm, rig_inb(r, bm) & (uint8_t)~1);
}

/* Make a temporary directory (mkdtemp of @tmpl); SKIP if impossible. */
static inline void rig_tmpdir(char *tmpl)
{
	if (!mkdtemp(tmpl))
		SKIP("cannot create a temporary directory");
}

#endif
