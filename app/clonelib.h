/* SPDX-License-Identifier: MIT */
/*
 * app/clonelib.h - `vivarium clone`: a new VM of the library made from
 * another one's current state or from one of its snapshots, as a full copy
 * or as a linked clone (VirtualBox's "Clone": full / linked, "current
 * machine state" / a snapshot).  docs/vm-conf.md, "Clones", says what
 * goes into the clone; the choices in brief:
 *
 *  - full: every writable disk becomes a standalone image in the clone's
 *    folder (qcow2 with its backing chain merged; raw stays raw); so does
 *    every file vm.conf names inside the source's folder (a read-only
 *    disk, a kernel...), while files outside it (ISO images, a shared
 *    read-only disk, kernels) are named where they are;
 *  - linked (needs a snapshot): each of the snapshot's disks becomes a new
 *    qcow2 overlay whose backing file is the snapshot's frozen image, by
 *    its absolute path (it is in the source's folder); the source's
 *    snapshot and the source itself cannot be deleted while the clone
 *    uses them (snaplib.h, snap_users());
 *  - from a snapshot with memory (taken while the VM ran), the clone is
 *    "saved" at it (hard links to the snapshot's memory files, as a revert
 *    makes them): its first start resumes there; unless the VM has NICs,
 *    whose MAC addresses the saved guest would keep: then it boots;
 *  - the UEFI variable store and the TPM's state (tpm/, not swtpm's lock)
 *    as they are now, also for a clone of a snapshot;
 *  - never: the source's snapshots, its saved state (a saved source is
 *    refused for a clone of its current state: its disks belong to that
 *    memory), its logs;
 *  - the clone: its own name, a new UUID, `created` now, new MAC addresses
 *    ([nicN] mac, vm_mac_from_uuid()), and [clone] saying where it came
 *    from.
 *
 * The clone is built as the hidden folder .NEW.new-XXXXXX and renamed into
 * place when complete: a failure or a signal (the caller's @stop) leaves
 * nothing behind (a kill -9 leaves the hidden folder, which is never
 * listed).  The source's folder lock (snap_lock()) is held throughout, so
 * no snapshot command changes what is copied and no delete removes a
 * snapshot a new linked clone is about to use.  The source is only read.
 */
#ifndef VIVARIUM_CLONELIB_H
#define VIVARIUM_CLONELIB_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct clone_opts {
	const char *snapshot;	/* its tag; NULL: the current state */
	bool linked;		/* overlays on the snapshot's images */
	/* Looked at during copies: non-zero ends the clone (-EINTR). */
	const volatile sig_atomic_t *stop;
	/* Bytes copied so far and in all (of every disk copy), may be NULL. */
	void (*progress)(void *opaque, uint64_t done, uint64_t total);
	void *opaque;
};

struct clone_result {
	unsigned copied;	/* disks copied (flattened) */
	unsigned overlays;	/* disks made overlays on the source's images */
	unsigned shared;	/* read-only disks named where they are */
	bool saved;		/* it resumes the snapshot's memory */
	bool memory_dropped;	/* the snapshot had memory, left out (NICs) */
	/* ... or left out because vm.conf's shared folders are not those the
	 * memory was saved with (share_state_check()). */
	bool memory_dropped_shares;
};

/*
 * vm_clone - make VM @dst from VM @src.  Refuses, with one line in @err
 * and nothing changed on disk: bad names, @dst existing, an unknown @src
 * or snapshot tag, --linked without a snapshot, a running, paused or saved
 * @src for a clone of its current state, a snapshot and vm.conf that no
 * longer agree about disks, another snapshot or clone command at work on
 * @src, and images that cannot be read.  Returns 0, or -errno.
 */
int vm_clone(const char *src, const char *dst, const struct clone_opts *o,
	     struct clone_result *res, char *err, size_t errlen);

#endif
