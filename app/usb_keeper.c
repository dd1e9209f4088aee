/* SPDX-License-Identifier: MIT */
/*
 * The USB keeper: gives passed-through host USB devices back to the host's
 * drivers when the VM process dies holding them.  See usb_keeper.h.
 */
#define _GNU_SOURCE
#include "usb_keeper.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/usbdevice_fs.h>

#include <glib.h>

#include "usb/usb_host.h"
#include "vmproc.h"

#define KEEPER_MAX	16	/* devices it tracks (6 can be passed through) */

int usb_keeper_start(char *err, size_t errlen)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, errlen, "usb keeper: socketpair: %s", strerror(errno));
		return -errno;
	}
	pid = survivor_fork(sv[1]);
	if (pid < 0) {
		snprintf(err, errlen, "usb keeper: fork: %s", strerror((int)-pid));
		close(sv[0]);
		close(sv[1]);
		return (int)pid;
	}
	if (pid == 0) {
		execl("/proc/self/exe", "vivarium", "usb-keeper", (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	usb_host_keeper_set(sv[0]);	/* held until this process ends */
	return 0;
}

/* A sysfs device name as usb_host.h makes them ("1-2", "3-1.4.2"): what
 * may come from the VM process, which a hostile guest may have taken. */
static bool name_ok(const char *s)
{
	const char *dash = strchr(s, '-');

	if (!dash || dash == s || strlen(s) >= 32 || !dash[1])
		return false;
	for (const char *p = s; *p; p++)
		if (!g_ascii_isdigit(*p) && !(p == dash) && !(p > dash && *p == '.'))
			return false;
	return true;
}

static unsigned long sysfs_num(const char *dir, const char *file, int base)
{
	g_autofree char *path = g_build_filename(dir, file, NULL);
	g_autofree char *txt = NULL;

	if (!g_file_get_contents(path, &txt, NULL, NULL))
		return ~0ul;
	return strtoul(txt, NULL, base);
}

/* Bind the host's drivers to @name's interfaces again (usbfs's
 * USBDEVFS_CONNECT, what libusb_attach_kernel_driver() does).  The dying
 * process may still hold its claims for a moment: EBUSY is retried for
 * 3 s.  Returns the number of interfaces bound, or -errno. */
static int reattach(const char *name)
{
	g_autofree char *dir = g_build_filename(USB_HOST_SYSFS, name, NULL);
	unsigned long bus = sysfs_num(dir, "busnum", 10), dev = sysfs_num(dir, "devnum", 10);
	g_autofree char *node = NULL;
	g_autoptr(GDir) d = NULL;
	const char *e;
	int fd, bound = 0, r = 0;

	if (bus > 255 || dev > 255)
		return -ENODEV;		/* unplugged meanwhile */
	node = g_strdup_printf("/dev/bus/usb/%03lu/%03lu", bus, dev);
	fd = open(node, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = g_dir_open(dir, 0, NULL);
	while (d && (e = g_dir_read_name(d))) {
		g_autofree char *idir = NULL, *link = NULL, *drv = NULL;
		g_autofree char *prefix = g_strdup_printf("%s:", name);
		unsigned long ifno;
		struct usbdevfs_ioctl c = { .ioctl_code = USBDEVFS_CONNECT };

		if (!g_str_has_prefix(e, prefix))
			continue;
		idir = g_build_filename(dir, e, NULL);
		ifno = sysfs_num(idir, "bInterfaceNumber", 16);
		if (ifno > 255)
			continue;
		/* A driver other than usbfs already has it: leave it. */
		link = g_build_filename(idir, "driver", NULL);
		drv = g_file_read_link(link, NULL);
		if (drv && !g_str_has_suffix(drv, "/usbfs"))
			continue;
		c.ifno = (int)ifno;
		for (int tries = 0; tries < 60; tries++) {
			if (ioctl(fd, USBDEVFS_IOCTL, &c) >= 0) {
				bound++;
				break;
			}
			r = -errno;
			if (errno != EBUSY)
				break;
			nanosleep(&(struct timespec){ 0, 50 * 1000 * 1000 }, NULL);
		}
	}
	close(fd);
	return bound ? bound : r;
}

int cmd_usb_keeper(int argc, char **argv)
{
	char *held[KEEPER_MAX] = { 0 };
	FILE *in;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	(void)argc;
	(void)argv;
	in = fdopen(SURVIVOR_FD, "r");
	if (!in) {
		fprintf(stderr, "vivarium usb-keeper: no socket on fd %d (it is started by the VM process)\n",
			SURVIVOR_FD);
		return 2;
	}
	while ((n = getline(&line, &cap, in)) > 0) {
		if (line[n - 1] == '\n')
			line[--n] = 0;
		if (n < 2 || (line[0] != '+' && line[0] != '-') || !name_ok(line + 1))
			continue;
		for (unsigned i = 0; i < KEEPER_MAX; i++)
			if (held[i] && !strcmp(held[i], line + 1))
				g_clear_pointer(&held[i], g_free);
		if (line[0] == '+')
			for (unsigned i = 0; i < KEEPER_MAX; i++)
				if (!held[i]) {
					held[i] = g_strdup(line + 1);
					break;
				}
	}
	free(line);
	fclose(in);
	/* The VM process has ended: whatever it still held goes back. */
	for (unsigned i = 0; i < KEEPER_MAX; i++) {
		int r;

		if (!held[i])
			continue;
		r = reattach(held[i]);
		if (r > 0)
			fprintf(stderr, "vivarium: USB %s: the VM process ended holding it; "
				"the host's drivers have it again\n", held[i]);
		else
			fprintf(stderr, "vivarium: USB %s: the VM process ended holding it, "
				"and its drivers could not be bound again (%s): replug it or run "
				"'udevadm trigger'\n", held[i], strerror(-r));
		g_free(held[i]);
	}
	return 0;
}
