/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/devices/ide.h - the PIIX3 IDE controller (Intel 82371SB, PCI
 * 8086:7010, class 0x010180: both channels in legacy mode, bus-master
 * capable) with ATA hard disks (ATA/ATAPI-6) and ATAPI CD/DVD-ROM drives
 * (MMC-5 subset).
 *
 * Legacy ports: primary 0x1f0-0x1f7 + 0x3f6 on IRQ 14, secondary
 * 0x170-0x177 + 0x376 on IRQ 15 (ISA edge: the line follows the selected
 * device's INTRQ).  They decode while the channel's IDETIM (config
 * 0x40/0x42) IDE decode enable bit is set, which it is at power-on, as a
 * BIOS leaves it (the datasheet's default is off; a directly booted kernel
 * runs no BIOS to turn it on).  Bus-master IDE (SFF-8038i) in BAR4: 16 I/O
 * ports, command/status/PRD table address per channel.
 *
 * Disk and disc I/O runs on block-layer worker threads (blk_submit); their
 * completions take the device lock.  PIO data-port accesses and register
 * accesses run under the device lock on the vCPU thread.
 */
#ifndef VIVARIUM_IDE_H
#define VIVARIUM_IDE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../irq.h"
#include "../device.h"

struct blk;
struct bus;
struct guest_mem;
struct pci_host;
struct piix_ide;

#define PIIX_IDE_DEVFN		0x09	/* 00:01.1 */
#define PIIX_IDE_DRIVES		4

/* Positions: 0 primary master, 1 primary slave, 2 secondary master,
 * 3 secondary slave. */
struct ide_drive_config {
	/* The image, opened by the caller, who closes it after
	 * piix_ide_free().  NULL: no drive, or, with @cdrom, a CD-ROM drive
	 * with no disc.  A disk's length should be a multiple of 512 bytes
	 * (a partial last sector is not reachable); a disc's is read in
	 * 2048-byte sectors. */
	struct blk *blk;
	bool cdrom;
};

struct piix_ide_config {
	struct pci_host *pci;
	uint8_t devfn;			/* normally PIIX_IDE_DEVFN */
	struct bus *pio;		/* legacy ports are registered here */
	struct guest_mem *mem;		/* bus-master DMA target */
	pthread_mutex_t *lock;		/* the device lock */
	struct irq_line irq[2];		/* primary (GSI 14), secondary (15) */
	struct ide_drive_config drive[PIIX_IDE_DRIVES];
};

/*
 * piix_ide_new - build the controller and its drives, register the legacy
 * ports on @cfg->pio and add the PCI function at @cfg->devfn.  Returns the
 * controller, or NULL with one line in @err (-EEXIST-like clashes: a port
 * or the devfn already taken; out of memory).
 */
struct piix_ide *piix_ide_new(const struct piix_ide_config *cfg, char *err,
			      size_t errlen);

/* Wait until no block request of the controller is in flight (including
 * DMA segments a completion queued).  Call with the device lock NOT held.
 * This is the controller's quiesce, what a snapshot calls before saving,
 * with the vCPUs paused (only a guest's register write starts a request):
 * afterwards every drive's state is plain data, the command's next step an
 * enum (end_block, req_done IDE_REQ_NONE), no request or host pointer in
 * flight.  Teardown calls it before piix_ide_free(). */
void piix_ide_drain(struct piix_ide *ide);

/* Take the function off the PCI bus and the ports off the I/O bus, then
 * free.  Call after piix_ide_drain(), with the device lock held, before
 * pci_host_free()/bus_free().  Does not close the drives' blks. */
void piix_ide_free(struct piix_ide *ide);
/*
 * Its lifecycle in the machine's device table (device.h).
 * piix_ide_device_ops: state PIIX_IDE_STATE_TYPE, version 1: (primary,
 * secondary).  A channel: device register, device control, IRQ level, bus
 * master command, status, PRD table address, PRD bytes used, then its two
 * drives.  A drive: (present, CD-ROM, medium in, medium sectors: checked
 * against this machine's drive), (task file: features, sector count, LBA
 * low/mid/high and their previous-content copies, status, error, INTRQ),
 * (current heads and sectors, READ/WRITE MULTIPLE block, transfer mode,
 * write cache), (PIO buffer bytes [0, max(block end, fill)), position,
 * block end, fill, data-out, the block end's next step (enum
 * ide_end_block), medium offset and bytes left (bytes; a CD-ROM's may
 * lie past the disc in the drive, after a change), bytes per DRQ
 * block, medium write), (DMA waiting for the bus master, DMA running,
 * ATAPI buffer DMA, segment ends the PRD list, PRD list short, request
 * completion step (enum ide_req_done)), (ATAPI: DMA, data from the disc,
 * byte count limit, the 12-byte packet, sense key, ASC, ASCQ, unit
 * attention, tray open, tray locked, media event).
 * The state lies between block requests: save fails (NULL) while one is in
 * flight (quiesce drains them), and load refuses a running DMA or a
 * pending completion.  The PCI function's config space and BAR4 belong to
 * the PCI host's section.
 */
#define PIIX_IDE_STATE_TYPE \
	"((yybyyut((bbbt)(yyyyyyyyyyyyb)(qquyb)(ayuuubyttub)(bbbbby)" \
	"(bbuayyyybbby))((bbbt)(yyyyyyyyyyyyb)(qquyb)(ayuuubyttub)(bbbbby)" \
	"(bbuayyyybbby)))(yybyyut((bbbt)(yyyyyyyyyyyyb)(qquyb)(ayuuubyttub)" \
	"(bbbbby)(bbuayyyybbby))((bbbt)(yyyyyyyyyyyyb)(qquyb)(ayuuubyttub)" \
	"(bbbbby)(bbuayyyybbby))))"
extern const struct device_ops piix_ide_device_ops;

/*
 * piix_ide_change_media - the host inserts (@blk) or removes (@blk NULL)
 * the disc of the CD-ROM drive at @pos (0-3).  An insertion raises UNIT
 * ATTENTION / MEDIUM MAY HAVE CHANGED for the guest's next command and a
 * NEW MEDIA event for GET EVENT STATUS NOTIFICATION; a removal a MEDIA
 * REMOVAL event.  *@old (may be NULL) receives the blk that was in the
 * drive: the caller closes it after dropping the device lock (a request
 * still in flight on it completes, and its completion takes the lock).
 * Returns 0, -EINVAL (@pos is not a CD-ROM drive), or -EBUSY if the guest
 * has locked the tray (PREVENT ALLOW MEDIUM REMOVAL) with a disc in it: the
 * guest then sees an EJECT REQUEST event and may unlock and eject.
 * Device lock held.
 */
int piix_ide_change_media(struct piix_ide *ide, unsigned pos, struct blk *blk,
			  struct blk **old);

/* Whether the guest has locked the tray of the drive at @pos, and whether
 * the tray is open (guest eject).  Device lock held. */
bool piix_ide_tray_locked(struct piix_ide *ide, unsigned pos);
bool piix_ide_tray_open(struct piix_ide *ide, unsigned pos);

#endif
