/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/usb/usb_host.h - passing a host USB device through to the
 * guest with libusb (usbfs on Linux): a struct usb_device (usb.h) whose
 * transfers are the real device's.
 *
 * Choosing a device: "VID:PID" (hexadecimal, the first match in sysfs
 * order) or "BUS-PORT[.PORT...]" (the sysfs name, e.g. "1-2.3"), looked up
 * under /sys/bus/usb/devices; the device node is /dev/bus/usb/BBB/DDD.
 *
 * Opening: the node's file descriptor is wrapped (libusb_wrap_sys_device;
 * libusb does no device discovery of its own), so whoever may open the
 * node can hand the fd over: the VM process before its sandbox, or the
 * `vivarium usb attach` client over the control socket (SCM_RIGHTS).  On
 * open every interface of the active configuration is claimed with
 * libusb's automatic kernel-driver detach, so the host's driver lets go at
 * once.
 *
 * Transfers (usb_device_ops.submit, all USB_RET_ASYNC): control requests
 * go to the device as they are, except SET_ADDRESS (answered here: the
 * host keeps its own address), SET_CONFIGURATION (interfaces released,
 * libusb_set_configuration, the new configuration's interfaces claimed),
 * SET_INTERFACE (libusb_set_interface_alt_setting) and CLEAR_FEATURE
 * (ENDPOINT_HALT) (libusb_clear_halt); bulk and interrupt transfers are
 * libusb asynchronous transfers.  Isochronous endpoints: not supported
 * (the xHCI completes their TRBs with TRB Error).  One event thread per
 * VM process (usb_host_ctx, sandbox thread kind "usb") runs libusb's
 * events and the blocking requests in order, and completes transfers
 * under the device lock.  A guest's port reset resets the host device
 * (libusb_reset_device) only once the guest had addressed it.
 *
 * Unplugged from the host: a transfer ending with LIBUSB_TRANSFER_NO_DEVICE
 * or the event thread's liveness probe (every 500 ms) unplugs it from its
 * root port (usb_device_unplug(): the guest sees a disconnect).
 *
 * Closing (the VM stops, `vivarium usb detach`): transfers are cancelled
 * and waited for, interfaces released, and libusb reattaches the host's
 * kernel drivers (auto-detach's release).  If the VM process dies instead,
 * the kernel releases the claims when the fd closes, but does not rebind
 * the drivers it disconnected: the keeper does (usb_host_keeper_set()).
 */
#ifndef VIVARIUM_USB_HOST_H
#define VIVARIUM_USB_HOST_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "usb.h"

#define USB_HOST_SYSFS	"/sys/bus/usb/devices"
#define USB_HOST_PATH_MAX	7	/* hub tiers below the root port */

/* A device as named by the user. */
struct usb_host_sel {
	bool by_id;			/* VID:PID, else BUS-PORT path */
	uint16_t vid, pid;
	uint8_t bus;
	uint8_t ports[USB_HOST_PATH_MAX];
	unsigned nports;
};

/*
 * usb_host_parse - @spec as "VID:PID" (1-4 hex digits each) or
 * "BUS-PORT[.PORT...]" (decimal, 1-255, at most 7 ports).  Returns 0, or
 * -EINVAL with one line in @err.
 */
int usb_host_parse(const char *spec, struct usb_host_sel *out, char *err,
		   size_t errlen);
/* @sel back as text ("046d:c52b", "1-2.3"). */
void usb_host_sel_format(const struct usb_host_sel *sel, char *buf,
			 size_t len);

/* A host device as sysfs shows it. */
struct usb_host_info {
	char name[32];			/* sysfs name: "1-2.3" */
	uint8_t bus, devnum;
	uint16_t vid, pid;
	enum usb_speed speed;		/* 0: unknown */
	unsigned mbps;			/* sysfs "speed": 1.5 -> 1, 480... */
	uint8_t dev_class;
	char manufacturer[64], product[64];	/* "" when absent */
	char node[32];			/* "/dev/bus/usb/001/004" */
};

/* A sysfs "speed" ("1.5", "12", "480", "5000"...) as a usb_speed; 0 for
 * anything else. */
enum usb_speed usb_host_speed(const char *mbps);

/*
 * usb_host_list - the devices under sysfs directory @root (NULL:
 * USB_HOST_SYSFS; root hubs and interfaces skipped), sorted by name, in a
 * new array (free()) of *@n.  Returns 0 (also with none: a host without
 * USB) or -errno with a line in @err.
 */
int usb_host_list(const char *root, struct usb_host_info **out, size_t *n,
		  char *err, size_t errlen);
/*
 * usb_host_find - the device @sel names under @root.  Returns 0, or
 * -ENOENT with "no USB device VID:PID on this host" in @err.
 */
int usb_host_find(const char *root, const struct usb_host_sel *sel,
		  struct usb_host_info *out, char *err, size_t errlen);
/*
 * usb_host_open_node - open @info's device node read-write, close-on-exec.
 * Returns the fd, or -errno with one line naming the node and, for
 * EACCES, the fix (a udev rule giving the user the device).
 */
int usb_host_open_node(const struct usb_host_info *info, char *err,
		       size_t errlen);

/*
 * usb_host_pick_port - the xHCI root port (xhci.h) for a device of @speed:
 * the first of USB 3 ports 5-8 for SuperSpeed, of USB 2 ports 3-4 for the
 * others (1 and 2 hold the HID tablet and keyboard), not set in @used (bit
 * N: port N taken).  Returns it or -ENOSPC.
 */
int usb_host_pick_port(unsigned used, enum usb_speed speed);

/* ---- the VM process's side --------------------------------------------------- */

struct usb_host_ctx;
struct usb_host_dev;

/*
 * usb_host_ctx_new - libusb without device discovery and its event thread
 * (sandbox_thread_enter(SANDBOX_THREAD_USB)).  @lock: the device lock,
 * taken by the thread around completions.  Call before the sandbox is
 * entered.  Returns NULL with a line in @err.
 */
struct usb_host_ctx *usb_host_ctx_new(pthread_mutex_t *lock, char *err,
				      size_t errlen);
/* Stop the thread and free; every device closed first.  NULL is fine. */
void usb_host_ctx_free(struct usb_host_ctx *ctx);

/*
 * usb_host_open - take over the device open at @fd (ownership passes: it
 * is closed on failure too), described by @info (speed, name; from
 * usb_host_find() in whoever opened it).  Claims the active
 * configuration's interfaces, detaching the host's drivers.  Without the
 * device lock.  Returns NULL with one line in @err (device gone, claimed
 * by another program: "busy").
 */
struct usb_host_dev *usb_host_open(struct usb_host_ctx *ctx, int fd,
				   const struct usb_host_info *info, char *err,
				   size_t errlen);
/* Its usb.h device, to xhci_attach(). */
struct usb_device *usb_host_usb(struct usb_host_dev *d);
const struct usb_host_info *usb_host_dev_info(const struct usb_host_dev *d);
/* Has it left the host (unplugged)?  Device lock held. */
bool usb_host_gone(const struct usb_host_dev *d);
/*
 * usb_host_keeper_set - the socket to the keeper process (app/usb_keeper.c,
 * `vivarium usb-keeper`), which outlives this one: a line "+NAME\n" (NAME
 * the sysfs name) is sent when a device is claimed, "-NAME\n" when it is
 * given back.  When the socket's other end sees EOF (this process ended,
 * however), the keeper reattaches the host's drivers to every device
 * still claimed.  -1: none.  Call before any usb_host_open().
 */
void usb_host_keeper_set(int fd);

/*
 * usb_host_close - give the device back: call after it was detached from
 * the controller (its transfers cancelled), without the device lock;
 * waits for libusb to finish the cancelled transfers, releases the
 * interfaces (the host's drivers reattach) and closes the fd.  NULL is
 * fine.
 */
void usb_host_close(struct usb_host_dev *d);

#endif
