/* SPDX-License-Identifier: MIT */
/*
 * app/vmlist.h - the VM library as a live model, for the manager (and any
 * front end on a GLib main loop): every VM in the library with its vm.conf
 * and its state, kept current without polling:
 *  - the library folder and each VM's folder are watched (GFileMonitor,
 *    inotify): a VM created, deleted, renamed or edited by the CLI is
 *    added, removed or reloaded;
 *  - the runtime folder is watched for control sockets (NAME.sock): a VM
 *    that starts is connected to and subscribed ("subscribe",
 *    docs/control-protocol.md), and its state, paused/running/stopping and
 *    the guest additions' report, follows the events; the end of the
 *    connection (the "stopped" event, or end of file for a VM that was
 *    killed) makes it stopped or saved.
 * Everything runs on the thread-default main context of the thread that
 * called vm_list_new(); callbacks come from there.
 */
#ifndef VIVARIUM_VMLIST_H
#define VIVARIUM_VMLIST_H

#include <stdbool.h>
#include <sys/types.h>

#include <json-glib/json-glib.h>

#include "vmlib.h"

enum vm_state {
	VM_STATE_STOPPED,
	VM_STATE_SAVED,		/* stopped with a saved state (next start resumes) */
	VM_STATE_STARTING,	/* its process runs; not subscribed yet */
	VM_STATE_RUNNING,
	VM_STATE_PAUSED,
	VM_STATE_STOPPING,
	VM_STATE_BROKEN,	/* vm.conf unreadable: vm_item.error says why */
};

/* "stopped", "saved", "starting", "running", "paused", "stopping", "broken". */
const char *vm_state_name(enum vm_state st);

/* One VM as the model knows it.  Read-only for callers; valid until the
 * next return to the main loop that reports it removed. */
struct vm_item {
	char *name;
	enum vm_state state;
	pid_t pid;			/* running: the VM's process; else 0 */
	struct vm_config cfg;		/* parsed vm.conf (not BROKEN) */
	char *error;			/* BROKEN: one line; else NULL */
	char *guest_os;			/* the guest additions' "os"; NULL: unknown */
	char *last_error;		/* last "stopped" event's "error", or NULL */
};

enum vm_list_change {
	VM_LIST_ADDED,
	VM_LIST_CHANGED,	/* state, vm.conf or guest report */
	VM_LIST_REMOVED,	/* @item is freed after the callback returns */
};

struct vm_list;

typedef void (*vm_list_fn)(struct vm_list *l, const struct vm_item *item,
			   enum vm_list_change what, void *opaque);

/*
 * vm_list_new - read the library ($XDG_DATA_HOME/vivarium/vms, made if
 * missing), connect to the VMs that run, and start watching.  @fn (may
 * be NULL) hears every change from then on (not the initial items).
 * Returns NULL with @err (one line) if the folders cannot be watched.
 */
struct vm_list *vm_list_new(vm_list_fn fn, void *opaque, char *err,
			    size_t errlen);
void vm_list_free(struct vm_list *l);		/* NULL ok */

/* The VMs, sorted by name: vm_list_count() of them, vm_list_nth(0..). */
unsigned vm_list_count(const struct vm_list *l);
const struct vm_item *vm_list_nth(const struct vm_list *l, unsigned i);
/* VM @name, or NULL. */
const struct vm_item *vm_list_find(const struct vm_list *l, const char *name);

/*
 * vm_list_request - send command @cmd (with @args, may be NULL) to
 * running VM @name on a connection of its own and wait at most
 * @timeout_ms for the reply ("pause", "resume", "stop", "reset"...).
 * The model hears the state change as an event, as for the CLI's.
 * Blocks; touches nothing of @l, so it may run on a worker thread.
 * Returns 0 or a negative errno with @err (as ctl_simple()).
 */
int vm_list_request(struct vm_list *l, const char *name, const char *cmd,
		    JsonObject *args, int timeout_ms, char *err, size_t errlen);

#endif
