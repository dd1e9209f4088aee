/* SPDX-License-Identifier: MIT */
/*
 * app/snaplib.h - a VM's snapshots: external qcow2 overlays (the model of
 * VirtualBox's and VMware's differencing images) and their index.
 *
 * Taking snapshot S freezes each writable disk's active image (it now
 * belongs to S and is never written again) and puts a new qcow2 overlay
 * on it, which becomes the disk's active image in vm.conf.  Reverting to
 * S throws the active overlays away and puts new ones on S's frozen
 * images.  Deleting S streams S's frozen image into every image that has
 * it as its backing file (blk_stream(): the child gets S's clusters and
 * S's backing file), then removes it.  Every image is an ordinary qcow2
 * backing chain (`qemu-img info --backing-chain`), named relative to its
 * overlay's folder so that the VM's folder can be moved.
 *
 * Files, in the VM's folder (docs/vm-conf.md):
 *   snapshots/index.json          the snapshots (format below)
 *   snapshots/<uuid>-diskN.qcow2  one overlay per writable disk, made by
 *                                 take or revert; <uuid> is the overlay's
 *                                 own, not a snapshot's
 * The original disk image (disk.qcow2) stays where it is and becomes the
 * first snapshot's frozen image.
 *
 * index.json (json-glib, written atomically with newfile.h):
 *   { "version": 1, "current": ID|null,
 *     "snapshots": [ { "id": UUID, "tag": TAG, "parent": ID|null,
 *                      "created": "YYYY-MM-DDTHH:MM:SSZ",
 *                      "description": TEXT|null, "has_memory": false,
 *                      "disks": [ { "disk": "disk0",
 *                                   "image": "disk.qcow2" } ] } ] }
 * in creation order; "image" is relative to the VM's folder (absolute for
 * an image outside it).  "current" is the snapshot the current state
 * descends from; the backing chains are the truth for it (an interrupted
 * revert may leave index.json behind them), so it is recomputed from the
 * active disk's chain on every load.
 *
 * Errors: negative errno with one line in @err (no newline).
 */
#ifndef VIVARIUM_SNAPLIB_H
#define VIVARIUM_SNAPLIB_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>

#include "vmlib.h"

#define SNAP_DIR		"snapshots"
#define SNAP_INDEX_FILE		"snapshots/index.json"
#define SNAP_INDEX_VERSION	1
/* A clone's vm.conf group saying what it was cloned from (docs/vm-conf.md,
 * "Clones"): source, source-uuid, snapshot, snapshot-id, linked. */
#define SNAP_CLONE_GROUP	"clone"

struct snap_disk {
	char *disk;		/* vm.conf group: "disk0".."disk3" */
	char *image;		/* frozen image, as stored (see above) */
};

struct snap {
	char *id;		/* RFC 4122 UUID */
	char *tag;		/* unique per VM; the rules of VM names */
	char *parent;		/* id, or NULL for a root */
	char *created;		/* ISO 8601, UTC, seconds */
	char *description;	/* may be NULL */
	bool has_memory;	/* a saved machine state goes with it */
	struct snap_disk disk[VM_MAX_DISKS];
	unsigned ndisks;
};

struct snap_index {
	GPtrArray *snaps;	/* struct snap *, creation order */
	char *current;		/* id, or NULL */
};

/* ---- the index: pure, no files ------------------------------------------ */

void snap_index_init(struct snap_index *ix);
void snap_index_clear(struct snap_index *ix);
/* Parse index.json's text.  Checks everything the format above says (ids
 * are UUIDs, tags valid and unique, parents and current known, no parent
 * loop, disk groups disk0-3 once each); -EINVAL + @err otherwise. */
int snap_index_parse(const char *text, size_t len, struct snap_index *ix,
		     char *err, size_t errlen);
/* The JSON text (g_free it). */
char *snap_index_to_json(const struct snap_index *ix);

/* Snapshot tags: the rules of VM names.  0 or -EINVAL + @err. */
int snap_tag_check(const char *tag, char *err, size_t errlen);
struct snap *snap_find_tag(const struct snap_index *ix, const char *tag);
struct snap *snap_find_id(const struct snap_index *ix, const char *id);
/* Children of @id (NULL: the roots), creation order (g_ptr_array_unref). */
GPtrArray *snap_children(const struct snap_index *ix, const char *id);
/* Every snapshot depth first, roots and siblings in creation order; each
 * one's depth in *@depths (guint) if not NULL. */
GPtrArray *snap_tree_order(const struct snap_index *ix, GArray **depths);
/* Append @s (the index owns it). */
void snap_index_add(struct snap_index *ix, struct snap *s);
/* Drop @s: its children get its parent; if it was current, its parent is. */
void snap_index_remove(struct snap_index *ix, struct snap *s);
void snap_free(struct snap *s);

/* ---- a VM's snapshots (library folder, block layer) ---------------------- */

/* Read VM @name's index (none yet: empty).  Takes no lock; for `list` and
 * `show`.  -ENOENT: no such VM. */
int snap_load(const char *name, struct snap_index *ix, char *err,
	      size_t errlen);
/* snap_load(), and "current" recomputed from the chains (vm.conf's disks),
 * as the operations see it. */
int snap_load_current(const char *name, struct snap_index *ix, char *err,
		      size_t errlen);
/* Absolute path of a stored image name (g_free). */
char *snap_image_path(const char *name, const char *image);

/*
 * The operations on a stopped VM.  Each refuses, with one line and
 * nothing changed on disk, a running VM, another snapshot command at work
 * on it, unknown tags, and what it cannot do; take and revert also refuse
 * a VM holding a saved state (its memory belongs to the current disks) and
 * take a raw writable disk.  Each writes in the order its comment gives,
 * so a crash at any point leaves every snapshot reading as before.
 */
int snap_take(const char *name, const char *tag, const char *description,
	      char *err, size_t errlen);
int snap_revert(const char *name, const char *tag, char *err, size_t errlen);
/*
 * The same from VM @name's own running process, paused (the machine's
 * state and disks stand still).  snap_take_running() with @run saves the
 * machine's state first, through @run->save, to snap_memory_path(name, id,
 * "state"/"ram") (the snapshot then has_memory), and with @run NULL is
 * snap_take().  snap_revert_running() with @self sets *@memory_id to the
 * snapshot's id when it has memory (g_free), else NULL: the caller then
 * rebuilds the machine from those files, or boots, on vm.conf's new disks.
 */
struct snap_running {
	/*
	 * save - save the machine's state and memory to @state_path and
	 * @ram_path and, at the state point itself (the vCPUs stopped), move
	 * each of the @n disks of vm.conf group @groups[i] to the new overlay
	 * @overlays[i] (complete files on the image the VM runs on), so that
	 * the frozen images hold exactly the disks of the saved state; the VM
	 * may run on while the memory is written.  0, or -errno + @err with
	 * the disks where they were.
	 */
	int (*save)(void *opaque, const char *state_path, const char *ram_path,
		    const char *const *groups, const char *const *overlays,
		    unsigned n, char *err, size_t errlen);
	void *opaque;
};
int snap_take_running(const char *name, const char *tag,
		      const char *description, const struct snap_running *run,
		      char *err, size_t errlen);
int snap_revert_running(const char *name, const char *tag, bool self,
			char **memory_id, char *err, size_t errlen);
/*
 * snap_shares_check - may VM @name, whose machine has the shared folders
 * @s[0..@n) (vm.conf's for a stopped VM, those it started with for a
 * running one), go back to snapshot @tag's memory?  Shares are the VM's
 * configuration, not snapshot state, and virtio-9p's load refuses a
 * device of another tag: a revert checks first, and refuses before it
 * changes anything.  0 when they match, when the snapshot has no memory
 * (the VM boots and mounts what it has now), or when the snapshot or its
 * state cannot be read (the revert itself says so); else -ESTALE with
 * "cannot revert VM 'N' to snapshot 'T': the state was saved with the
 * shared folders ..., and the VM now has ..." in @err.
 */
int snap_shares_check(const char *name, const char *tag,
		      const struct share_spec *s, unsigned n, char *err,
		      size_t errlen);
/* A snapshot's memory files: snapshots/ID.state and snapshots/ID.ram. */
char *snap_memory_path(const char *name, const char *id, const char *ext);

/* *@freed: bytes of frozen images removed (their st_blocks).  Also
 * refuses a snapshot that linked clones are based on (snap_users()). */
int snap_delete(const char *name, const char *tag, unsigned long long *freed,
		char *err, size_t errlen);
/* snap_delete() from VM @name's own process (@self), with every writable
 * disk image of the VM closed meanwhile (machine_rebuild_drives()): the
 * images it merges may be ones the VM runs on.  @users_checked: the caller
 * has run snap_check_users() (a sandboxed VM process cannot see the other
 * VMs of the library; the client that asks for the delete does it), so
 * the delete does not look again. */
int snap_delete_running(const char *name, const char *tag, bool self,
			bool users_checked,
			unsigned long long *freed, char *err, size_t errlen);

/* ---- what clones need ------------------------------------------------------ */

/*
 * snap_lock - take VM @name's folder flock: one snapshot or clone command
 * at a time works on a VM (take, revert, delete, a clone reading it, a
 * delete of the VM).  Does not wait.  Returns the fd holding it (close()
 * drops it), or -errno with @err ("another snapshot or clone command is
 * at work on VM ...").
 */
int snap_lock(const char *name, char *err, size_t errlen);

/*
 * snap_users - the other VMs of the library whose disks and snapshots
 * need images of VM @name, from their backing chains (the truth: a linked
 * clone deleted, or made standalone with `img rebase`, no longer counts):
 * with @s, one of snapshot @s's frozen images as a disk of theirs or as
 * the backing file of an image of theirs (what a delete of @s would
 * break; reaching it through a later snapshot's image of @name does not
 * count: the delete merges into that one); with @s NULL, any image in
 * @name's folder anywhere in their chains.  A VM whose chains
 * cannot be read to the end counts if its vm.conf's [clone] group says it
 * is a linked clone of @name (of @s).  Takes no lock of theirs.  Sets
 * *@users to their names, sorted (g_strfreev), NULL if none; returns how
 * many.
 */
int snap_users(const char *name, const struct snap *s, char ***users);

/*
 * snap_check_users - what snap_delete() refuses first: -EBUSY + @err
 * ("snapshot 'TAG' of VM 'NAME' is the base of linked clone(s) B: delete
 * them first") when snap_users() finds any; 0 otherwise, and for a tag or
 * VM it cannot find (the delete itself says so).
 */
int snap_check_users(const char *name, const char *tag, char *err,
		     size_t errlen);

/*
 * snap_vm_images - every image VM @name's disks and snapshots read: the
 * backing chains of vm.conf's disks and of each snapshot's frozen images,
 * absolute paths, each once, into @out (g_free'd strings).  Images a
 * chain names but that cannot be opened are listed too.  For the VM
 * process's sandbox: what it may have to open.  0, or -errno when vm.conf,
 * the index or a chain could not be read to the end (@out then holds what
 * was found).
 */
int snap_vm_images(const char *name, GPtrArray *out);

/* snap_image_chain - @path and its backing files, top first, absolute, into
 * @out (g_free'd strings); one that cannot be opened ends the list (it is
 * listed).  0 or -errno (that image's error). */
int snap_image_chain(const char *path, GPtrArray *out);

#endif
