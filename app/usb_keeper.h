/* SPDX-License-Identifier: MIT */
/*
 * app/usb_keeper.h - the USB keeper: a small process, `vivarium
 * usb-keeper`, that outlives the VM process and gives the host's drivers
 * back the USB devices it passed through when it dies holding them (a
 * crash, kill -9): the kernel releases usbfs's claims as the fds close but
 * does not bind the drivers that were disconnected (usb_host.h).  The VM
 * process tells it over a socket which devices it holds ("+NAME", "-NAME";
 * usb_host_keeper_set()); at EOF the keeper binds the drivers of those
 * still held with usbfs's USBDEVFS_CONNECT, says so in one line on its
 * stderr (the VM's log) and exits.  A clean stop or detach gives the
 * devices back itself, and the keeper then has nothing to do.
 */
#ifndef VIVARIUM_USB_KEEPER_H
#define VIVARIUM_USB_KEEPER_H

#include <stddef.h>

/*
 * usb_keeper_start - fork and exec the keeper (its own session, deaf to
 * SIGINT, SIGHUP and SIGTERM; fd 3 the socket) and hand the socket's other
 * end to usb_host_keeper_set().  Call before the sandbox (it forks and
 * execs) and before any device is passed through.  Returns 0, or -errno
 * with one line in @err.
 */
int usb_keeper_start(char *err, size_t errlen);

/* `vivarium usb-keeper`, started by usb_keeper_start() only: reads fd 3
 * until EOF, then rebinds what is still held.  Returns 0, or 2 without the
 * socket. */
int cmd_usb_keeper(int argc, char **argv);

#endif
