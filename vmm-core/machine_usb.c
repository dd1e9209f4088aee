// SPDX-License-Identifier: MIT
/*
 * vmm-core/machine_usb.c - host USB devices passed through (machine.h,
 * usb/usb_host.h): the machine keeps them across rebuilds and plugs them
 * into each xHCI it builds.
 */
#include "machine_internal.h"

#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"
#include "usb/usb_host.h"
#include "usb/xhci.h"

int machine_usb_init(struct machine *m, char *err, size_t errlen)
{
	if (!m->cfg.usb || m->cfg.hooks)
		return 0;
	m->usb_ctx = usb_host_ctx_new(&m->lock, err, errlen);
	if (!m->usb_ctx)	/* the controller and HID devices work without */
		vlog(LOG_WARN, "%s: host USB devices cannot be passed through", err);
	return 0;
}

static unsigned used_ports(const struct machine *m)
{
	unsigned used = 1u << 1 | 1u << 2;	/* the HID devices */

	for (unsigned i = 0; i < MACHINE_USB_HOST_MAX; i++)
		if (m->usbh[i].d)
			used |= 1u << m->usbh[i].port;
	return used;
}

void machine_usb_plug_all(struct machine *m)
{
	/* The build runs without the device lock; a usb-attach from the
	 * control socket may come meanwhile (and plug its device itself). */
	pthread_mutex_lock(&m->lock);
	for (unsigned i = 0; i < MACHINE_USB_HOST_MAX; i++) {
		struct usb_host_dev *d = m->usbh[i].d;

		if (d && !usb_host_gone(d) && m->dev.xhci &&
		    !usb_host_usb(d)->host_ops &&
		    xhci_attach(m->dev.xhci, m->usbh[i].port, usb_host_usb(d)) < 0)
			vlog(LOG_WARN, "usb-host %s: cannot plug into port %u",
			     usb_host_dev_info(d)->name, m->usbh[i].port);
	}
	pthread_mutex_unlock(&m->lock);
}

int machine_usb_attach(struct machine *m, int fd,
		       const struct usb_host_info *info, unsigned *port,
		       char *err, size_t errlen)
{
	struct usb_host_dev *d;
	unsigned slot = MACHINE_USB_HOST_MAX;
	int p, r = 0;

	if (!m->usb_ctx) {
		close(fd);
		snprintf(err, errlen, "this VM has no USB controller (start it with --usb on, or vm.conf usb=on)");
		return -ENODEV;
	}
	pthread_mutex_lock(&m->lock);
	for (unsigned i = 0; i < MACHINE_USB_HOST_MAX; i++) {
		if (m->usbh[i].d &&
		    !strcmp(usb_host_dev_info(m->usbh[i].d)->name, info->name)) {
			snprintf(err, errlen, "USB %s is already passed through (port %u)",
				 info->name, m->usbh[i].port);
			r = -EBUSY;
		}
		if (!m->usbh[i].d && slot == MACHINE_USB_HOST_MAX)
			slot = i;
	}
	p = usb_host_pick_port(used_ports(m), info->speed);
	pthread_mutex_unlock(&m->lock);
	if (!r && p < 0) {
		snprintf(err, errlen, "USB %s: no free %s root port (%s)", info->name,
			 info->speed == USB_SPEED_SUPER ? "USB 3" : "USB 2",
			 info->speed == USB_SPEED_SUPER ? "5-8" : "3-4");
		r = -ENOSPC;
	}
	if (r < 0) {
		close(fd);
		return r;
	}
	d = usb_host_open(m->usb_ctx, fd, info, err, errlen);
	if (!d)
		return -EIO;
	pthread_mutex_lock(&m->lock);
	/* Taken meanwhile by another attach? */
	if (used_ports(m) & (1u << p) || m->usbh[slot].d) {
		pthread_mutex_unlock(&m->lock);
		usb_host_close(d);
		snprintf(err, errlen, "USB %s: another device took port %d meanwhile; try again",
			 info->name, p);
		return -EAGAIN;
	}
	m->usbh[slot].d = d;
	m->usbh[slot].port = (unsigned)p;
	if (m->dev.xhci)
		xhci_attach(m->dev.xhci, (unsigned)p, usb_host_usb(d));
	pthread_mutex_unlock(&m->lock);
	if (port)
		*port = (unsigned)p;
	vlog(LOG_INFO, "usb-host %s: on root port %d", info->name, p);
	return 0;
}

int machine_usb_attach_spec(struct machine *m, const char *spec,
			    unsigned *port, char *err, size_t errlen)
{
	struct usb_host_sel sel;
	struct usb_host_info info;
	int r, fd;

	r = usb_host_parse(spec, &sel, err, errlen);
	if (r == 0)
		r = usb_host_find(NULL, &sel, &info, err, errlen);
	if (r < 0)
		return r;
	fd = usb_host_open_node(&info, err, errlen);
	if (fd < 0)
		return fd;
	return machine_usb_attach(m, fd, &info, port, err, errlen);
}

static bool matches(const struct usb_host_info *i, unsigned port,
		    const char *name)
{
	char id[16];
	char *end;
	unsigned long n = strtoul(name, &end, 10);

	snprintf(id, sizeof(id), "%04x:%04x", i->vid, i->pid);
	return !strcmp(i->name, name) || !strcasecmp(id, name) ||
	       (*name && !*end && n == port);
}

int machine_usb_detach(struct machine *m, const char *name, char *err,
		       size_t errlen)
{
	struct usb_host_dev *d = NULL;

	pthread_mutex_lock(&m->lock);
	for (unsigned i = 0; i < MACHINE_USB_HOST_MAX && !d; i++) {
		if (!m->usbh[i].d ||
		    !matches(usb_host_dev_info(m->usbh[i].d), m->usbh[i].port, name))
			continue;
		d = m->usbh[i].d;
		if (m->dev.xhci)
			xhci_detach(m->dev.xhci, m->usbh[i].port);
		m->usbh[i].d = NULL;
	}
	pthread_mutex_unlock(&m->lock);
	if (!d) {
		snprintf(err, errlen, "no USB device '%s' is passed through to this VM (`vivarium usb list NAME` shows them)",
			 name);
		return -ENOENT;
	}
	usb_host_close(d);
	return 0;
}

size_t machine_usb_list(struct machine *m, struct machine_usb_entry *out,
			size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&m->lock);
	for (unsigned port = 1; port <= XHCI_MAX_PORTS; port++)
		for (unsigned i = 0; i < MACHINE_USB_HOST_MAX && n < max; i++) {
			const struct usb_host_info *info;

			if (!m->usbh[i].d || m->usbh[i].port != port)
				continue;
			info = usb_host_dev_info(m->usbh[i].d);
			memset(&out[n], 0, sizeof(out[n]));
			out[n].port = port;
			snprintf(out[n].name, sizeof(out[n].name), "%s", info->name);
			out[n].vid = info->vid;
			out[n].pid = info->pid;
			snprintf(out[n].product, sizeof(out[n].product), "%s",
				 info->product);
			out[n].gone = usb_host_gone(m->usbh[i].d);
			n++;
		}
	pthread_mutex_unlock(&m->lock);
	return n;
}

int machine_usb_save_check(struct machine *m, const char *what, char *err,
			   size_t errlen)
{
	int r = 0;

	pthread_mutex_lock(&m->lock);
	for (unsigned i = 0; i < MACHINE_USB_HOST_MAX && !r; i++) {
		const struct usb_host_info *info;

		if (!m->usbh[i].d)
			continue;
		info = usb_host_dev_info(m->usbh[i].d);
		/* A real device's state (its configuration, data in flight,
		 * what it holds) cannot be saved or put back. */
		snprintf(err, errlen, "cannot %s: USB %s (%04x:%04x) is passed through from the host; detach it first (vivarium usb detach NAME %s)",
			 what, info->name, info->vid, info->pid, info->name);
		r = -ENOTSUP;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

void machine_usb_fini(struct machine *m)
{
	for (unsigned i = 0; i < MACHINE_USB_HOST_MAX; i++) {
		usb_host_close(m->usbh[i].d);
		m->usbh[i].d = NULL;
	}
	usb_host_ctx_free(m->usb_ctx);
	m->usb_ctx = NULL;
}
