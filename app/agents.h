/* SPDX-License-Identifier: MIT */
/*
 * app/agents.h - the VM process's side of the guest agents, on the
 * virtio-serial ports it hands the machine (machine_config.serial_port):
 *  - com.redhat.spice.0: spice-vdagentd (vmm-core/agent/vdagent.h), for
 *    the shared clipboard (text: VD_AGENT_CLIPBOARD_UTF8_TEXT on the
 *    CLIPBOARD selection) and the X session's size (MONITORS_CONFIG);
 *  - org.qemu.guest_agent.0: qemu-guest-agent (app/qga.h), for a clean
 *    shutdown, freezing file systems around a snapshot's state point and
 *    setting the guest's clock after a revert or a resume.
 *
 * The clipboard hub: the host side's text (from the console window's
 * clipboard or the control protocol's clipboard-set) is offered to the
 * guest with a GRAB and sent when the guest asks; when the guest grabs,
 * its text is requested at once and kept (at most 1 MiB), so that
 * clipboard-get can answer and the window's clipboard follows.  Images
 * are not carried: a grab offering only images leaves the host's text
 * as it is.
 *
 * Threads: everything runs on the thread of the default GLib main
 * context (the VM process's main thread); the ports' callbacks (vCPU
 * threads) only write an eventfd that a main-loop watch reads.
 */
#ifndef VIVARIUM_AGENTS_H
#define VIVARIUM_AGENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vcon_port;
struct vm_agents;

#define AGENT_VDAGENT_PORT	"com.redhat.spice.0"
#define AGENT_QGA_PORT		"org.qemu.guest_agent.0"

/* Make the ports (@vdagent, @qga: which); NULL on failure (one line in
 * @err).  Both false: an object without ports (nothing connects). */
struct vm_agents *vm_agents_new(bool vdagent, bool qga, char *err,
				size_t errlen);
/* Stop watching; free after the machine is destroyed.  NULL ok. */
void vm_agents_free(struct vm_agents *a);
/* The ports for machine_config.serial_port[]; returns their count. */
unsigned vm_agents_ports(struct vm_agents *a, struct vcon_port **ports,
			 unsigned max);

/* The connected agents' names ("vdagent", "qga", "additions") into
 * @names; the count. */
unsigned vm_agents_connected(struct vm_agents *a, const char **names,
			     unsigned max);

/* ---- clipboard ----------------------------------------------------------- */

/* The host's clipboard is now @text (UTF-8; NULL or "": nothing): offer
 * it to the guest.  @from_window: it came from the window's clipboard
 * (ignored when it is the guest's own text coming back).  0, -EINVAL
 * (over 1 MiB or not UTF-8). */
int vm_agents_clipboard_set(struct vm_agents *a, const char *text,
			    bool from_window);
/* The text on the guest's clipboard as the host knows it (NULL: none or
 * not known yet); *@owner "guest", "host" or "none". */
const char *vm_agents_clipboard_get(struct vm_agents *a, const char **owner);
/* Listeners of the guest's clipboard: @fn is called (main loop) with
 * each new text the guest copied, once received.  At most
 * VM_AGENTS_TEXT_LISTENERS: 0 or -ENOSPC. */
#define VM_AGENTS_TEXT_LISTENERS	4
int vm_agents_on_guest_text(struct vm_agents *a,
			    void (*fn)(void *opaque, const char *text),
			    void *opaque);
/* Remove a listener (@fn and @opaque as added).  NULL @a ok. */
void vm_agents_off_guest_text(struct vm_agents *a,
			      void (*fn)(void *opaque, const char *text),
			      void *opaque);

/* ---- display --------------------------------------------------------------- */

/*
 * vm_agents_request_size - ask the guest's session, through spice-vdagent,
 * for one monitor of @width x @height pixels (VD_AGENT_MONITORS_CONFIG;
 * the agent applies it with XRandR).  Any thread: the message goes out
 * from the main loop, and of several requests before it runs only the
 * last.  The last size sent is sent again when the agent reconnects (a
 * new session).  The guest additions get it too (now, or when they
 * connect).  Returns 0, -ENOTCONN while neither the guest's vdagent is
 * connected nor the additions' port exists (nothing is kept), -EINVAL
 * for a zero or absurd size.
 */
int vm_agents_request_size(struct vm_agents *a, unsigned width,
			   unsigned height);
/* vm_agents_request_size() with @opaque the struct vm_agents: the shape
 * of console_set_size_agent()'s callback. */
int vm_agents_size_hook(void *opaque, unsigned width, unsigned height);

/* ---- guest agent ----------------------------------------------------------- */

bool vm_agents_qga_connected(struct vm_agents *a);
/* guest-shutdown (powerdown); 0, or -errno with one line in @err. */
int vm_agents_shutdown(struct vm_agents *a, char *err, size_t errlen);
/* guest-fsfreeze-freeze / -thaw; 0 (also: no agent connected: nothing to
 * do, *@done false) or -errno with @err.  *@done: the agent did it. */
int vm_agents_fsfreeze(struct vm_agents *a, bool freeze, bool *done,
		       char *err, size_t errlen);
/* guest-set-time with the host's clock, 300 ms from now (after a revert
 * or a resume), if the guest has the agent's port open; with @thaw (after
 * a revert to a snapshot taken with frozen file systems) a
 * guest-fsfreeze-thaw first.  The outcome is logged. */
void vm_agents_set_time(struct vm_agents *a, bool thaw);

/* ---- guest additions (app/additions_host.h, docs/guest-additions.md) ---- */

struct additions_share;
struct additions_info;

/* Add the port org.vivarium.additions.0 (before vm_agents_ports()), whose
 * guest side is told @shares (copied).  vm_agents_set_time() also sends
 * it a time-sync.  0 or -ENOMEM with @err. */
int vm_agents_enable_additions(struct vm_agents *a,
			       const struct additions_share *shares,
			       unsigned nshares, char *err, size_t errlen);
/* The guest's last info (OS, addresses...); NULL: none (yet). */
const struct additions_info *vm_agents_guest_info(struct vm_agents *a);
/* Call @fn (main loop) each time a new valid info arrives; one listener,
 * @fn NULL removes it.  The VM process turns it into a "guest" event. */
void vm_agents_on_guest_info(struct vm_agents *a, void (*fn)(void *opaque),
			     void *opaque);
/* The host's requested screen size for the additions to apply
 * (additions_host_display_size()): 0, -EINVAL, -ENOTCONN. */
int vm_agents_additions_display_size(struct vm_agents *a, unsigned width,
				     unsigned height);

#endif
