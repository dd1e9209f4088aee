/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/devices/vmmouse.h - the VMware "vmmouse" absolute pointer on
 * the PS/2 mouse, through the VMware backdoor port: what Linux's built-in
 * psmouse "VMMouse" protocol (drivers/input/mouse/vmmouse.c) and Xorg's
 * vmmouse driver speak, so a guest points absolutely with nothing to
 * install.
 *
 * The backdoor: a 32-bit IN from port 0x5658 ("VX") with EAX = 0x564d5868
 * ("VMXh") and the command in CX; arguments and results in EAX, EBX, ECX,
 * EDX, ESI, EDI (vcpu.h's register port).  Commands:
 *   10 GETVERSION: EAX = 6, EBX = the magic (how a guest detects us);
 *   40 ABSPOINTER_STATUS: EAX = words queued (low 16 bits), or 0xffff0000
 *      while the mouse is disabled (after DISABLE, a bad DATA, a reset);
 *   39 ABSPOINTER_DATA: EBX = n (1-6) words dequeued into EAX, EBX, ECX,
 *      EDX, ESI, EDI in that order; n = 0, more than 6 or more than queued
 *      is the protocol's error: the mouse disables itself (STATUS says so);
 *   41 ABSPOINTER_COMMAND, EBX: 0x45414552 ENABLE (clears the queue and
 *      queues the version word 0x3442554a "JUB4", relative mode),
 *      0x000000f5 DISABLE, 0x4c455252 REQUEST_RELATIVE, 0x53424152
 *      REQUEST_ABSOLUTE (both only while enabled);
 *   86 ABSPOINTER_RESTRICT: accepted; under KVM the CPU's own I/O
 *      permission checks already keep user code out.
 * A wrong magic or an unknown command reads EAX = 0xffffffff and changes
 * nothing; other registers are left as they were unless a command sets
 * them.  Other widths, string I/O and OUTs read all-ones.
 *
 * A packet is 4 words: flags (0x20 left, 0x10 right, 0x08 middle button,
 * 0x10000 relative packet), X, Y, Z (wheel, signed, + towards the user).
 * Absolute X/Y run 0..0xffff across the screen; relative packets carry
 * motion with +Y up.  While enabled and absolute, the console's absolute
 * pointer events queue packets (at most VMMOUSE_QUEUE_WORDS words; when
 * full, the newest packet is replaced, so the guest still ends with the
 * latest position and buttons); while enabled, the PS/2 mouse's host
 * (relative) input goes there too, as relative packets, in either mode:
 * the driver reads only the queue.  Each queued packet makes the
 * PS/2 mouse send a motionless stream packet (i8042_aux_notify), whose
 * IRQ 12 makes the guest's driver drain the queue.  A machine reset and
 * the guest's PS/2 mouse reset (0xff) disable it.
 */
#ifndef VIVARIUM_VMMOUSE_H
#define VIVARIUM_VMMOUSE_H

#include <stdbool.h>
#include <stdint.h>

#include "../device.h"
#include "../vcpu.h"

struct console_input_dev_ops;
struct i8042;
struct vmmouse;

#define VMPORT_PORT		0x5658		/* "VX" */
#define VMPORT_MAGIC		0x564d5868u	/* "VMXh" */
#define VMPORT_VERSION		6u		/* GETVERSION's EAX */

#define VMPORT_CMD_GETVERSION		10
#define VMPORT_CMD_ABSPOINTER_DATA	39
#define VMPORT_CMD_ABSPOINTER_STATUS	40
#define VMPORT_CMD_ABSPOINTER_COMMAND	41
#define VMPORT_CMD_ABSPOINTER_RESTRICT	86

#define VMMOUSE_CMD_ENABLE		0x45414552u	/* "READ_ID" */
#define VMMOUSE_CMD_DISABLE		0x000000f5u
#define VMMOUSE_CMD_REQUEST_RELATIVE	0x4c455252u
#define VMMOUSE_CMD_REQUEST_ABSOLUTE	0x53424152u

#define VMMOUSE_VERSION_ID	0x3442554au	/* "JUB4" */
#define VMMOUSE_ERROR		0xffff0000u	/* STATUS while disabled */
#define VMMOUSE_RELATIVE_PACKET	0x00010000u
#define VMMOUSE_LEFT_BUTTON	0x20u
#define VMMOUSE_RIGHT_BUTTON	0x10u
#define VMMOUSE_MIDDLE_BUTTON	0x08u
#define VMMOUSE_ABS_MAX		0xffffu		/* X and Y: 0..0xffff */

/* The queue, in 32-bit words: 64 packets. */
#define VMMOUSE_QUEUE_WORDS	256

/* Riding on @kbc's PS/2 mouse (installs its aux hook).  NULL: no memory. */
struct vmmouse *vmmouse_new(struct i8042 *kbc);
/* Removes the hook; NULL-safe. */
void vmmouse_free(struct vmmouse *v);
/* Disabled, relative, queue empty. */
void vmmouse_reset(struct vmmouse *v);

/*
 * vmmouse_backdoor - the access op of the register port VMPORT_PORT
 * (struct vcpu_regs_port, opaque: the struct vmmouse).  Returns what the
 * IN reads (EAX) and may change @regs' RBX..RDI (32-bit values,
 * zero-extended).  Device lock held.
 */
uint32_t vmmouse_backdoor(void *opaque, unsigned size, bool is_write,
			  uint32_t value, struct io_regs *regs);

/* Does the guest drive it as an absolute pointer (enabled, absolute)? */
bool vmmouse_active(struct vmmouse *v);

/* The console's absolute pointer (name "vmmouse", CONSOLE_INPUT_ABS,
 * prio 2: after the virtio and USB tablets, abs_max VMMOUSE_ABS_MAX); opaque: the
 * struct vmmouse. */
extern const struct console_input_dev_ops vmmouse_input_ops;

/* Its lifecycle in the machine's device table, with save and load
 * (state_version 1). */
extern const struct device_ops vmmouse_device_ops;

/*
 * The saved state: (b enabled, b absolute, au the queue, oldest word
 * first, at most VMMOUSE_QUEUE_WORDS).  Load refuses (-EINVAL) another
 * type or version, a longer queue, absolute or a non-empty queue while
 * disabled.
 */
#define VMMOUSE_STATE_TYPE "(bbau)"

#endif
