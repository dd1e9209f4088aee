/* SPDX-License-Identifier: MIT */
/*
 * app/vmops.h - the changes to the VM library that `vivarium create`,
 * `edit`, `share add|remove` and `delete` make, as library calls: the CLI
 * and the manager (gui/) both go through these, so a VM made or edited in
 * the window is checked by the same rules, with the same one-line errors,
 * as one made on the command line.
 *
 * Every function fills @err (@errlen bytes, one line, no newline) on
 * failure and returns a negative errno; nothing in the library is changed
 * then (no half-made VM, no vm.conf half edited).
 */
#ifndef VIVARIUM_VMOPS_H
#define VIVARIUM_VMOPS_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "share.h"
#include "vmlib.h"

/* A new VM as the user gave it: text, as typed on the command line or in
 * the manager's assistant.  NULL (or "" for the sizes) takes the default. */
struct vm_create_spec {
	const char *name;
	const char *memory;		/* SIZE, e.g. "2G"; default 1G */
	const char *cpus;		/* 1..MACHINE_MAX_CPUS; default 1 */
	const char *disk_size;		/* SIZE; default: no disk */
	const char *iso;		/* an ISO image for the CD-ROM (boot from it) */
	const char *kernel, *initrd, *append;	/* direct kernel boot */
	const char *firmware;		/* auto (default), bios, uefi, none */
	const char *notes;
	const char *vga;		/* std, virtio (default), none */
	const char *usb;		/* on (default), off: the xHCI and its HID devices */
	const char *tpm;		/* on, off (default): a TPM 2.0 on swtpm */
	/* pa, none, off (docs/vm-conf.md audio=); default: pa when a
	 * PulseAudio server answers at create (within ~1 s), else none. */
	const char *audio;
	/* --nic SPECs (nic.h), at most VM_MAX_NICS, or the one "none"; with
	 * none given the VM gets one virtio-net card on NAT. */
	const char *const *nics;
	unsigned nnics;
	/* --share SPECs (share.h), at most MACHINE_MAX_SHARES. */
	const char *const *shares;
	unsigned nshares;
	/* Looked at between steps: non-zero ends the create (-ECANCELED),
	 * leaving nothing behind.  May be NULL. */
	const volatile sig_atomic_t *stop;
	/* Each step as it begins ("checking", "creating the disk image",
	 * "writing vm.conf"), with the fraction of the work done (0..1).
	 * Called on the caller's thread.  May be NULL. */
	void (*progress)(void *opaque, const char *step, double fraction);
	void *opaque;
};

/*
 * vm_create_check - every check vm_create() makes before it writes
 * anything: the name (valid, not taken), memory (MACHINE_RAM_RULE), vCPUs,
 * disk size (at least 1M, whole 512-byte sectors), firmware, vga, the
 * readable ISO/kernel/initrd files, NICs and shares.  Writes nothing.
 * Returns 0 or -EINVAL/-EEXIST/-errno with @err, e.g.
 * "memory '12Q' is not a whole number of MiB, at least 16M (e.g. 512M, 2G)".
 */
int vm_create_check(const struct vm_create_spec *s, char *err, size_t errlen);

/*
 * vm_create - add VM @s->name to the library: vm.conf (docs/vm-conf.md)
 * with a new UUID, the MAC addresses derived from it, and a qcow2 disk
 * image of @s->disk_size if given.  The folder is built under a hidden
 * temporary name and renamed into place when complete: a failure, a stop
 * or a crash leaves no VM behind.  Sets *@dir (may be NULL) to the VM's
 * folder (g_free).  Returns 0 or -errno with @err.
 */
int vm_create(const struct vm_create_spec *s, char **dir, char *err,
	      size_t errlen);

/*
 * vm_host_defaults - memory and vCPUs for a new VM on this host: a quarter
 * of the host's RAM rounded down to 256 MiB, within 512 MiB..4 GiB (and
 * never more than half of it), and half its online CPUs, 1..4.  For the
 * manager's assistant; `vivarium create` keeps 1G and 1 vCPU.
 */
void vm_host_defaults(uint64_t *memory, unsigned *cpus);

/*
 * vm_edit - `vivarium edit NAME KEY=VALUE...`: apply @n assignments
 * (vm_config_set() keys) to VM @name's vm.conf, check the result as the
 * next start will read it, and write it atomically.  A running VM sees the
 * change at its next start.  0 or -errno with @err.
 */
int vm_edit(const char *name, const char *const *assignments, unsigned n,
	    char *err, size_t errlen);

/* What an edit changed that the user should hear of. */
struct vm_edit_result {
	enum machine_firmware old_firmware, new_firmware;
	bool uefi_vars_made;	/* firmware=uefi made the folder's store */
};

/*
 * vm_edit_report - vm_edit(), and what it changed in @res (may be NULL).
 * A switch to firmware=uefi first gives the VM its variable store
 * (vm_uefi_vars_create(): a copy of OVMF_VARS_4M.fd, or the one it kept),
 * so vm.conf never names UEFI without one.
 */
int vm_edit_report(const char *name, const char *const *assignments,
		   unsigned n, struct vm_edit_result *res, char *err,
		   size_t errlen);

/*
 * vm_edit_firmware_note - what a firmware switch in @res means for VM
 * @name, in a few lines for the user (a BIOS-installed OS will not boot
 * through UEFI, the disk needs an EFI system partition, where the store
 * is), or NULL when the edit did not switch to or from UEFI.  g_free it.
 */
char *vm_edit_firmware_note(const char *name, const struct vm_edit_result *res);

/*
 * vm_share_add - `vivarium share add`: add shared folder @s to VM @name
 * ([shareN], share_keyfile_add()), with the VM's folder locked
 * (snap_lock()) and refused while it holds a saved state (whose virtio-9p
 * devices must stay as saved).  Returns N (the group's number) or -errno
 * with @err (-EEXIST: a tag or folder shared already).
 */
int vm_share_add(const char *name, const struct share_spec *s, char *err,
		 size_t errlen);
/* vm_share_remove - `vivarium share remove`: drop the share of tag @tag.
 * N or -errno with @err, as vm_share_add(). */
int vm_share_remove(const char *name, const char *tag, char *err,
		    size_t errlen);

/*
 * vm_delete - `vivarium delete`: remove VM @name and its folder, disk
 * images included.  Refused (nothing changed) for a bad or unknown name, a
 * folder that is a symbolic link, a running VM, another snapshot or clone
 * command at work on it, and a VM that linked clones are based on.  With
 * the VM's folder locked and those checks passed, @confirm (may be NULL:
 * confirmed) is asked with the folder's path; false: -ECANCELED, nothing
 * changed.  The folder leaves the list at once (renamed), then is removed;
 * -EIO with @err if some of it could not be.
 */
int vm_delete(const char *name, bool (*confirm)(void *opaque, const char *dir),
	      void *opaque, char *err, size_t errlen);
/*
 * vm_delete_check - vm_delete()'s refusals without the lock and without
 * changing anything: for a front end that asks its question first (a
 * dialog that must not block) and then calls vm_delete(), which checks
 * all again under the lock.  0 or -errno with @err.
 */
int vm_delete_check(const char *name, char *err, size_t errlen);

/* ---- snapshots, running or not --------------------------------------------- */

/* A running VM saves its memory for a take: as long as its disk needs. */
#define VM_SNAP_CTL_TIMEOUT_MS	600000

/*
 * vm_snapshot_take - `vivarium snapshot take NAME TAG [--description D]`:
 * a running (or paused) VM's own process takes it over the control socket
 * ("snapshot-take", memory and devices included, docs/control-protocol.md);
 * a stopped VM's disks get it through snap_take().  @description: one line
 * or NULL.  0 or -errno with @err.
 */
int vm_snapshot_take(const char *name, const char *tag, const char *description,
		     char *err, size_t errlen);
/*
 * vm_snapshot_revert - `vivarium snapshot revert NAME TAG`: over the control
 * socket for a running VM ("snapshot-revert"); for a stopped one the disks
 * go back (snap_revert_running() with @self false) after the shared
 * folders are checked against the snapshot's memory (snap_shares_check()),
 * and a snapshot with memory becomes the VM's saved state (hard links), so
 * that its next start resumes there: *@resumes (may be NULL) says so.
 */
int vm_snapshot_revert(const char *name, const char *tag, bool *resumes,
		       char *err, size_t errlen);
/*
 * vm_snapshot_delete - `vivarium snapshot delete NAME TAG`: for a running
 * VM the linked clones are checked here (snap_check_users(): its sandboxed
 * process cannot see them) and its process merges ("snapshot-delete");
 * else snap_delete().  *@freed (may be NULL): bytes of images removed.
 */
int vm_snapshot_delete(const char *name, const char *tag,
		       unsigned long long *freed, char *err, size_t errlen);

/*
 * vm_disk_sizes - the virtual size of the disk image at @path (bytes, its
 * header's) and the bytes its file occupies on the host (st_blocks; its
 * backing files not counted).  Opens it read-only without locks, so a
 * running VM's disk can be measured.  0 or -errno with @err.
 */
int vm_disk_sizes(const char *path, uint64_t *virtual_size,
		  uint64_t *on_disk, char *err, size_t errlen);

#endif
