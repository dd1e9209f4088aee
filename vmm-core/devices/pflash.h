/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/devices/pflash.h - a CFI parallel NOR flash with the Intel/Sharp
 * command set (CFI primary vendor command set 0x0001; Intel's 28F/P30
 * datasheets, JEDEC JESD68 for the query table), an x8 device on an 8-bit
 * bank, as OVMF expects its code and variable store to be mapped below
 * 4 GiB (OVMF's QemuFlashFvbServicesRuntimeDxe).
 *
 * Commands (one bus write each, the low byte of the value):
 *   0xff read array     0x70 read status     0x50 clear status
 *   0x90 read ID        0x98 CFI query
 *   0x10/0x40 + data    program (a write of 1-8 bytes programs that many)
 *   0x20 + 0xd0         erase the block holding the address
 *   0xe8 + N + N+1 data bytes (in one 64-byte aligned window) + 0xd0
 *                       write to buffer
 *   0x60 + 0x01/0xd0/0x2f  block lock bits: accepted, no block ever locks
 * Programming only clears bits (new = old & data), as on NOR flash; erase
 * sets a block to 0xff.  Operations finish at once: the status register's
 * SR.7 (ready) is set after each.  Wrong sequences set SR.4|SR.5 (command
 * sequence error) and leave the device in read-status mode; a program or
 * erase on a read-only device sets SR.1 (protected) and SR.4 or SR.5.
 * Clear status reads back 0x00 afterwards, not 0x80: OVMF's probe
 * (QemuFlashDetected) takes a status of 0x00 after 0x50, 0x70 as the sign
 * of a flash rather than ROM or RAM.
 *
 * In read-array mode the contents are a read-only memory slot (reads run
 * at memory speed, writes exit as MMIO and reach the command decoder); any
 * other mode unmaps it, so reads exit and return status, ID or query data.
 *
 * Write-back to the backing file: every program and erase is pwrite()n to
 * the file as it happens (the page cache keeps the guest's order, so a
 * crash of this process loses nothing), and fdatasync()ed after each erase
 * and when the guest returns to read-array mode after programming: one
 * batch of OVMF's QemuFlashWrite().  A host crash can therefore lose at
 * most the batch in flight, which is what a power cut mid-write does to a
 * real flash; OVMF's variable store and fault-tolerant-write areas are
 * built to recover from exactly that (a variable whose header is not
 * marked VAR_ADDED is ignored; FTW replays or drops the interrupted
 * reclaim).  No journal: it would only move the same window elsewhere.
 */
#ifndef VIVARIUM_PFLASH_H
#define VIVARIUM_PFLASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../device.h"
#include "../memslot.h"

struct bus;
struct pflash;

#define PFLASH_MANUFACTURER	0x89	/* Intel */
#define PFLASH_DEVICE_ID	0x18
#define PFLASH_WBUF_SIZE	64	/* write-to-buffer window, bytes */

/* Status register bits (Intel datasheets, "Status Register"). */
#define PFLASH_SR_READY		0x80	/* SR.7: write state machine ready */
#define PFLASH_SR_ERASE_ERR	0x20	/* SR.5 */
#define PFLASH_SR_PROG_ERR	0x10	/* SR.4 */
#define PFLASH_SR_PROTECT	0x02	/* SR.1: block locked / read-only */

struct pflash_config {
	const char *name;	/* for logs: "pflash.code", "pflash.vars" */
	uint64_t gpa;		/* base address, 4 KiB aligned */
	uint64_t size;		/* bytes: a multiple of block_size */
	uint32_t block_size;	/* erase block, a power of two, >= 4 KiB */
	bool readonly;		/* program and erase fail (the code image) */
	/* The contents: @fd's first @size bytes, written back as the guest
	 * programs and erases (the variable store); or, with @fd < 0, a copy
	 * of @image (@size bytes), kept in memory only. */
	int fd;
	const uint8_t *image;
	/* The read-only memory slot for read-array mode (ops NULL: reads
	 * always exit, as in the unit tests). */
	struct mem_slot slot;
};

/*
 * pflash_new - a flash in read-array mode, status 0x80, holding @cfg's
 * contents (read from @cfg->fd with pread).  Returns NULL with one line in
 * @err on a bad geometry, a short file or no memory.
 */
struct pflash *pflash_new(const struct pflash_config *cfg, char *err,
			  size_t errlen);
/* Register [gpa, gpa + size) on @mmio and map the memory slot.  Returns 0
 * or -errno. */
int pflash_attach(struct pflash *f, struct bus *mmio);
/* Flush pending writes (fdatasync), unmap, unregister and free; NULL-safe. */
void pflash_free(struct pflash *f);

/* The current contents (@size bytes) and status register, for tests. */
const uint8_t *pflash_data(const struct pflash *f);
uint8_t pflash_status(const struct pflash *f);
/* Whether the memory slot is mapped (read-array mode), for tests. */
bool pflash_romd(const struct pflash *f);

/*
 * Its lifecycle in the machine's device table (device.h).
 * pflash_device_ops: state PFLASH_STATE_TYPE, version 1: (the device's size
 * in bytes, which load requires to match; mode (0 read array, 1 status,
 * 2 ID, 3 query, 4 program set up, 5 erase set up, 6 buffer count,
 * 7 buffer data, 8 buffer confirm, 9 lock set up); the status register;
 * buffer bytes still expected; the buffer window's offset; the mask of
 * buffer bytes written; the 64 buffer bytes).  The contents are not state:
 * they live in the backing file (or the firmware image) and are read at
 * each build.  Load maps or unmaps the memory slot for the mode.
 */
#define PFLASH_STATE_TYPE "(tyyyttay)"
extern const struct device_ops pflash_device_ops;

#endif
