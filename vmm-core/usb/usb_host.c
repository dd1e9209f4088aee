// SPDX-License-Identifier: MIT
/* vmm-core/usb/usb_host.c - host USB devices through libusb (usb_host.h). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libusb.h>

#include "usb_host.h"
#include "../log.h"
#include "../sandbox/sandbox.h"

/* ---- naming a device ---------------------------------------------------------- */

static bool parse_hex16(const char *s, size_t n, uint16_t *out)
{
	unsigned v = 0;

	if (!n || n > 4)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!isxdigit((unsigned char)s[i]))
			return false;
		v = v * 16 + (unsigned)(isdigit((unsigned char)s[i]) ? s[i] - '0'
					: (tolower((unsigned char)s[i]) - 'a' + 10));
	}
	*out = (uint16_t)v;
	return true;
}

/* A decimal 1-255 at *s, advancing it. */
static bool parse_u8(const char **s, uint8_t *out)
{
	unsigned v = 0, n = 0;

	while (isdigit((unsigned char)**s) && n < 4) {
		v = v * 10 + (unsigned)(**s - '0');
		(*s)++;
		n++;
	}
	if (!n || v < 1 || v > 255 || isdigit((unsigned char)**s))
		return false;
	*out = (uint8_t)v;
	return true;
}

int usb_host_parse(const char *spec, struct usb_host_sel *out, char *err,
		   size_t errlen)
{
	const char *colon = spec ? strchr(spec, ':') : NULL;
	const char *p;

	memset(out, 0, sizeof(*out));
	if (!spec || !*spec)
		goto bad;
	if (colon) {
		out->by_id = true;
		if (!parse_hex16(spec, (size_t)(colon - spec), &out->vid) ||
		    !parse_hex16(colon + 1, strlen(colon + 1), &out->pid))
			goto bad;
		return 0;
	}
	p = spec;
	if (!parse_u8(&p, &out->bus) || *p != '-')
		goto bad;
	p++;
	for (;;) {
		if (out->nports == USB_HOST_PATH_MAX ||
		    !parse_u8(&p, &out->ports[out->nports]))
			goto bad;
		out->nports++;
		if (!*p)
			return 0;
		if (*p++ != '.')
			goto bad;
	}
bad:
	snprintf(err, errlen, "USB device '%s': give VID:PID (hexadecimal, e.g. 046d:c52b) or BUS-PORT[.PORT...] (e.g. 1-2.3, as `vivarium usb host` lists)",
		 spec ? spec : "");
	return -EINVAL;
}

void usb_host_sel_format(const struct usb_host_sel *sel, char *buf,
			 size_t len)
{
	size_t o;

	if (sel->by_id) {
		snprintf(buf, len, "%04x:%04x", sel->vid, sel->pid);
		return;
	}
	o = (size_t)snprintf(buf, len, "%u-", sel->bus);
	for (unsigned i = 0; i < sel->nports && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, i ? ".%u" : "%u",
				      sel->ports[i]);
}

/* ---- sysfs ------------------------------------------------------------------------ */

/* The first line of @dir/@name into @buf ("" if absent). */
static void sysfs_read(const char *dir, const char *name, char *buf,
		       size_t len)
{
	char path[512];
	FILE *f;

	buf[0] = 0;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = 0;
	fclose(f);
	/* Strings from the device: printable ASCII only. */
	for (char *c = buf; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
			*c = '?';
}

static unsigned sysfs_uint(const char *dir, const char *name, int base)
{
	char b[32];
	char *end;
	unsigned long v;

	sysfs_read(dir, name, b, sizeof(b));
	v = strtoul(b, &end, base);
	return end == b || v > 0xffffffffu ? 0 : (unsigned)v;
}

enum usb_speed usb_host_speed(const char *mbps)
{
	if (!strcmp(mbps, "1.5"))
		return USB_SPEED_LOW;
	if (!strcmp(mbps, "12"))
		return USB_SPEED_FULL;
	if (!strcmp(mbps, "480"))
		return USB_SPEED_HIGH;
	if (atoi(mbps) >= 5000)
		return USB_SPEED_SUPER;
	return 0;
}

/* A device directory's name: BUS-PORT[.PORT...] (not "usbN", not an
 * interface "1-2:1.0"). */
static bool device_name(const char *n)
{
	struct usb_host_sel sel;
	char e[8];

	return strlen(n) < sizeof(((struct usb_host_info *)0)->name) &&
	       !strchr(n, ':') && usb_host_parse(n, &sel, e, sizeof(e)) == 0;
}

static int info_read(const char *root, const char *name,
		     struct usb_host_info *i)
{
	char dir[512], s[16];
	unsigned bus, dev;

	memset(i, 0, sizeof(*i));
	snprintf(dir, sizeof(dir), "%s/%s", root, name);
	snprintf(i->name, sizeof(i->name), "%s", name);
	bus = sysfs_uint(dir, "busnum", 10);
	dev = sysfs_uint(dir, "devnum", 10);
	if (!bus || bus > 255 || !dev || dev > 255)
		return -ENOENT;
	i->bus = (uint8_t)bus;
	i->devnum = (uint8_t)dev;
	i->vid = (uint16_t)sysfs_uint(dir, "idVendor", 16);
	i->pid = (uint16_t)sysfs_uint(dir, "idProduct", 16);
	i->dev_class = (uint8_t)sysfs_uint(dir, "bDeviceClass", 16);
	sysfs_read(dir, "speed", s, sizeof(s));
	i->speed = usb_host_speed(s);
	i->mbps = (unsigned)atoi(s);
	sysfs_read(dir, "manufacturer", i->manufacturer, sizeof(i->manufacturer));
	sysfs_read(dir, "product", i->product, sizeof(i->product));
	snprintf(i->node, sizeof(i->node), "/dev/bus/usb/%03u/%03u", bus, dev);
	return 0;
}

static int cmp_info(const void *a, const void *b)
{
	const struct usb_host_info *x = a, *y = b;

	return x->bus != y->bus ? x->bus - y->bus : strcmp(x->name, y->name);
}

int usb_host_list(const char *root, struct usb_host_info **out, size_t *n,
		  char *err, size_t errlen)
{
	struct usb_host_info *v = NULL;
	size_t cnt = 0, cap = 0;
	struct dirent *e;
	DIR *d;

	*out = NULL;
	*n = 0;
	if (!root)
		root = USB_HOST_SYSFS;
	d = opendir(root);
	if (!d) {
		if (errno == ENOENT)
			return 0;	/* no USB on this host */
		snprintf(err, errlen, "%s: %s", root, strerror(errno));
		return -errno;
	}
	while ((e = readdir(d))) {
		if (!device_name(e->d_name))
			continue;
		if (cnt == cap) {
			struct usb_host_info *nv;

			cap = cap ? 2 * cap : 16;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				free(v);
				closedir(d);
				snprintf(err, errlen, "out of memory");
				return -ENOMEM;
			}
			v = nv;
		}
		if (info_read(root, e->d_name, &v[cnt]) == 0)
			cnt++;
	}
	closedir(d);
	qsort(v, cnt, sizeof(*v), cmp_info);
	*out = v;
	*n = cnt;
	return 0;
}

int usb_host_find(const char *root, const struct usb_host_sel *sel,
		  struct usb_host_info *out, char *err, size_t errlen)
{
	struct usb_host_info *v;
	char name[64];
	size_t n;
	int r = usb_host_list(root, &v, &n, err, errlen);

	if (r < 0)
		return r;
	usb_host_sel_format(sel, name, sizeof(name));
	for (size_t i = 0; i < n; i++)
		if (sel->by_id ? v[i].vid == sel->vid && v[i].pid == sel->pid
			       : !strcmp(v[i].name, name)) {
			*out = v[i];
			free(v);
			return 0;
		}
	free(v);
	snprintf(err, errlen, "no USB device %s on this host (`vivarium usb host` lists them)",
		 name);
	return -ENOENT;
}

int usb_host_open_node(const struct usb_host_info *info, char *err,
		       size_t errlen)
{
	int fd = open(info->node, O_RDWR | O_CLOEXEC);

	if (fd >= 0)
		return fd;
	fd = -errno;
	if (fd == -EACCES || fd == -EPERM)
		snprintf(err, errlen, "%s (USB %s, %04x:%04x): permission denied; give your user the device with a udev rule, e.g. SUBSYSTEM==\"usb\", ATTRS{idVendor}==\"%04x\", ATTRS{idProduct}==\"%04x\", MODE=\"0660\", TAG+=\"uaccess\" in /etc/udev/rules.d/70-vivarium-usb.rules (`vivarium doctor` lists which USB devices you may open)",
			 info->node, info->name, info->vid, info->pid,
			 info->vid, info->pid);
	else
		snprintf(err, errlen, "%s (USB %s): %s", info->node, info->name,
			 strerror(-fd));
	return fd;
}

int usb_host_pick_port(unsigned used, enum usb_speed speed)
{
	unsigned from = speed == USB_SPEED_SUPER ? 5 : 3;
	unsigned to = speed == USB_SPEED_SUPER ? 8 : 4;

	for (unsigned p = from; p <= to; p++)
		if (!(used & (1u << p)))
			return (int)p;
	return -ENOSPC;
}

/* ---- the event thread and its queue of blocking requests -------------------- */

enum job_kind { JOB_CONTROL, JOB_SET_CONFIG, JOB_SET_ALT, JOB_CLEAR_HALT,
		JOB_RESET };

/* What usb_xfer.dev_priv points at: a job or a libusb transfer. */
struct job {
	bool is_job;			/* true */
	struct job *next;
	struct usb_host_dev *d;
	enum job_kind kind;
	struct usb_xfer *xfer;		/* NULL: cancelled, or none (reset) */
	unsigned a, b;			/* config; interface, alt; endpoint */
};

struct usb_host_ctx {
	libusb_context *lu;
	pthread_mutex_t *lock;		/* the device lock */
	pthread_mutex_t qlock;		/* jobs, inflight counts, devs */
	pthread_cond_t qcond;
	struct job *head, *tail;
	pthread_t thread;
	bool stop;
	struct usb_host_dev *devs;	/* open ones, for the liveness probe */
};

/* A libusb transfer for one usb_xfer. */
struct hx {
	bool is_job;			/* false */
	struct usb_host_dev *d;
	struct libusb_transfer *t;
	struct usb_xfer *xfer;		/* NULL: cancelled */
};

struct usb_host_dev {
	struct usb_device dev;
	struct usb_host_ctx *ctx;
	struct usb_host_dev *next;
	libusb_device_handle *h;
	int fd;				/* wrapped; libusb_close keeps it */
	struct usb_host_info info;
	uint32_t claimed;		/* interface numbers < 32 */
	uint8_t alt[32];
	uint8_t ep_type[32];		/* by ep + 16 * in; LIBUSB_TRANSFER_TYPE_* + 1 */
	unsigned inflight;		/* libusb transfers and jobs, qlock */
	bool gone;			/* device lock */
	bool closing;
};

static void job_push(struct usb_host_ctx *c, struct job *j)
{
	j->is_job = true;
	pthread_mutex_lock(&c->qlock);
	j->d->inflight++;
	if (c->tail)
		c->tail->next = j;
	else
		c->head = j;
	c->tail = j;
	pthread_mutex_unlock(&c->qlock);
	libusb_interrupt_event_handler(c->lu);
}

static void inflight_done(struct usb_host_dev *d)
{
	pthread_mutex_lock(&d->ctx->qlock);
	d->inflight--;
	pthread_cond_broadcast(&d->ctx->qcond);
	pthread_mutex_unlock(&d->ctx->qlock);
}

/* The endpoint types of the active configuration's current alternates. */
static void ep_types_update(struct usb_host_dev *d)
{
	struct libusb_config_descriptor *cfg;

	memset(d->ep_type, 0, sizeof(d->ep_type));
	if (libusb_get_active_config_descriptor(libusb_get_device(d->h), &cfg))
		return;
	for (unsigned i = 0; i < cfg->bNumInterfaces; i++) {
		const struct libusb_interface *itf = &cfg->interface[i];

		for (int a = 0; a < itf->num_altsetting; a++) {
			const struct libusb_interface_descriptor *id =
				&itf->altsetting[a];

			if (id->bInterfaceNumber >= 32 ||
			    id->bAlternateSetting != d->alt[id->bInterfaceNumber])
				continue;
			for (unsigned e = 0; e < id->bNumEndpoints; e++) {
				uint8_t addr = id->endpoint[e].bEndpointAddress;

				d->ep_type[(addr & 0xf) + (addr & 0x80 ? 16 : 0)] =
					(uint8_t)((id->endpoint[e].bmAttributes & 3) + 1);
			}
		}
	}
	libusb_free_config_descriptor(cfg);
}

/* Claim the active configuration's interfaces (auto-detach: the host's
 * drivers let go).  Returns a libusb error of the first that fails. */
static int claim_all(struct usb_host_dev *d)
{
	struct libusb_config_descriptor *cfg;
	int r = 0;

	memset(d->alt, 0, sizeof(d->alt));
	if (libusb_get_active_config_descriptor(libusb_get_device(d->h), &cfg)) {
		ep_types_update(d);
		return 0;		/* unconfigured: nothing to claim */
	}
	for (unsigned i = 0; i < cfg->bNumInterfaces; i++) {
		unsigned n;

		if (!cfg->interface[i].num_altsetting)
			continue;
		n = cfg->interface[i].altsetting[0].bInterfaceNumber;
		if (n >= 32 || (d->claimed & (1u << n)))
			continue;
		r = libusb_claim_interface(d->h, (int)n);
		if (r) {
			vlog(LOG_WARN, "usb-host %s: interface %u: %s", d->info.name,
			     n, libusb_strerror(r));
			break;
		}
		d->claimed |= 1u << n;
	}
	libusb_free_config_descriptor(cfg);
	ep_types_update(d);
	return r;
}

/* Release every interface; @reattach: let libusb give them back to the
 * host's drivers. */
static void release_all(struct usb_host_dev *d, bool reattach)
{
	libusb_set_auto_detach_kernel_driver(d->h, reattach);
	for (unsigned n = 0; n < 32; n++)
		if (d->claimed & (1u << n))
			libusb_release_interface(d->h, (int)n);
	d->claimed = 0;
	libusb_set_auto_detach_kernel_driver(d->h, 1);
}

static int lu_err(int r)
{
	switch (r) {
	case LIBUSB_ERROR_NO_DEVICE:
		return USB_RET_NODEV;
	case LIBUSB_ERROR_PIPE:
	case LIBUSB_ERROR_NOT_FOUND:
	case LIBUSB_ERROR_INVALID_PARAM:
		return USB_RET_STALL;
	default:
		return USB_RET_IOERROR;
	}
}

static void unplug_locked(struct usb_host_dev *d)
{
	if (d->gone)
		return;
	d->gone = true;
	vlog(LOG_INFO, "usb-host %s (%04x:%04x): left the host: unplugged from the guest",
	     d->info.name, d->info.vid, d->info.pid);
	usb_device_unplug(&d->dev);
}

static void LIBUSB_CALL xfer_done(struct libusb_transfer *t)
{
	struct hx *x = t->user_data;
	struct usb_host_dev *d = x->d;
	int r;

	switch (t->status) {
	case LIBUSB_TRANSFER_COMPLETED:
		r = t->actual_length;
		break;
	case LIBUSB_TRANSFER_STALL:
		r = USB_RET_STALL;
		break;
	case LIBUSB_TRANSFER_OVERFLOW:
		r = USB_RET_BABBLE;
		break;
	case LIBUSB_TRANSFER_NO_DEVICE:
		r = USB_RET_NODEV;
		break;
	default:
		r = USB_RET_IOERROR;
		break;
	}
	pthread_mutex_lock(d->ctx->lock);
	if (x->xfer) {
		struct usb_xfer *u = x->xfer;

		x->xfer = NULL;
		if (r > 0 && u->in) {
			size_t off = t->type == LIBUSB_TRANSFER_TYPE_CONTROL
				     ? LIBUSB_CONTROL_SETUP_SIZE : 0;

			if ((size_t)r > u->len)
				r = (int)u->len;
			memcpy(u->buf, t->buffer + off, (size_t)r);
		}
		if (r == USB_RET_NODEV)
			unplug_locked(d);	/* cancels u */
		else
			usb_xfer_complete(u, r);
	}
	pthread_mutex_unlock(d->ctx->lock);
	free(t->buffer);
	libusb_free_transfer(t);
	free(x);
	inflight_done(d);
}

/* A libusb transfer for @u: control on ep 0, else the endpoint's type. */
static int submit_lu(struct usb_host_dev *d, struct usb_xfer *u)
{
	struct libusb_transfer *t = libusb_alloc_transfer(0);
	struct hx *x = calloc(1, sizeof(*x));
	unsigned char *buf;
	int r;

	buf = malloc(LIBUSB_CONTROL_SETUP_SIZE + u->len + 1);
	if (!t || !x || !buf) {
		libusb_free_transfer(t);
		free(x);
		free(buf);
		return USB_RET_IOERROR;
	}
	x->is_job = false;
	x->d = d;
	x->t = t;
	x->xfer = u;
	if (u->ep == 0) {
		libusb_fill_control_setup(buf, u->setup.bmRequestType,
					  u->setup.bRequest, u->setup.wValue,
					  u->setup.wIndex, u->setup.wLength);
		if (!u->in)
			memcpy(buf + LIBUSB_CONTROL_SETUP_SIZE, u->buf, u->len);
		libusb_fill_control_transfer(t, d->h, buf, xfer_done, x, 0);
	} else {
		unsigned type = d->ep_type[u->ep + (u->in ? 16 : 0)];
		unsigned char addr = (unsigned char)(u->ep | (u->in ? 0x80 : 0));

		if (!u->in)
			memcpy(buf, u->buf, u->len);
		if (type == LIBUSB_TRANSFER_TYPE_BULK + 1)
			libusb_fill_bulk_transfer(t, d->h, addr, buf,
						  (int)u->len, xfer_done, x, 0);
		else if (type == LIBUSB_TRANSFER_TYPE_INTERRUPT + 1)
			libusb_fill_interrupt_transfer(t, d->h, addr, buf,
						       (int)u->len, xfer_done,
						       x, 0);
		else {
			/* Not an endpoint of the current settings, or
			 * isochronous (not supported). */
			vlog_ratelimited(LOG_WARN, "usb-host %s: endpoint %#x: not a bulk or interrupt endpoint of the current configuration",
					 d->info.name, addr);
			libusb_free_transfer(t);
			free(x);
			free(buf);
			return USB_RET_STALL;
		}
	}
	u->dev_priv = x;
	pthread_mutex_lock(&d->ctx->qlock);
	d->inflight++;
	pthread_mutex_unlock(&d->ctx->qlock);
	r = libusb_submit_transfer(t);
	if (r) {
		u->dev_priv = NULL;
		libusb_free_transfer(t);
		free(x);
		free(buf);
		inflight_done(d);
		return lu_err(r);
	}
	return USB_RET_ASYNC;
}

/* On the event thread, without the device lock: a blocking request. */
static void job_run(struct job *j)
{
	struct usb_host_dev *d = j->d;
	int r = 0;

	switch (j->kind) {
	case JOB_CONTROL:
		pthread_mutex_lock(d->ctx->lock);
		if (j->xfer) {
			struct usb_xfer *u = j->xfer;

			j->xfer = NULL;
			r = submit_lu(d, u);
			if (r != USB_RET_ASYNC)
				usb_xfer_complete(u, r);
		}
		pthread_mutex_unlock(d->ctx->lock);
		return;
	case JOB_SET_CONFIG: {
		int cur = -1;

		libusb_get_configuration(d->h, &cur);
		release_all(d, false);
		if ((unsigned)cur != j->a)
			r = libusb_set_configuration(d->h, j->a ? (int)j->a : -1);
		if (!r && j->a)
			r = claim_all(d);
		else
			ep_types_update(d);
		break;
	}
	case JOB_SET_ALT:
		r = libusb_set_interface_alt_setting(d->h, (int)j->a, (int)j->b);
		if (!r) {
			d->alt[j->a] = (uint8_t)j->b;
			ep_types_update(d);
		}
		break;
	case JOB_CLEAR_HALT:
		r = libusb_clear_halt(d->h, (unsigned char)j->a);
		break;
	case JOB_RESET:
		r = libusb_reset_device(d->h);
		if (r == LIBUSB_ERROR_NOT_FOUND)	/* re-enumerated */
			r = LIBUSB_ERROR_NO_DEVICE;
		break;
	}
	pthread_mutex_lock(d->ctx->lock);
	if (r == LIBUSB_ERROR_NO_DEVICE)
		unplug_locked(d);
	if (j->xfer) {
		if (!r && j->kind == JOB_SET_CONFIG)
			d->dev.config = (uint8_t)j->a;
		usb_xfer_complete(j->xfer, r ? lu_err(r) : 0);
	}
	pthread_mutex_unlock(d->ctx->lock);
}

/* Every 500 ms: a device with nothing in flight that left the host. */
static void probe_gone(struct usb_host_ctx *c)
{
	pthread_mutex_lock(c->lock);
	pthread_mutex_lock(&c->qlock);
	for (struct usb_host_dev *d = c->devs; d; d = d->next) {
		if (d->gone || d->closing)
			continue;
		/* USBDEVFS_GETDRIVER: ENODEV once unplugged (a plain ioctl;
		 * a synchronous transfer here would run libusb's events,
		 * whose callbacks take the device lock). */
		if (libusb_kernel_driver_active(d->h, 0) ==
		    LIBUSB_ERROR_NO_DEVICE)
			unplug_locked(d);
	}
	pthread_mutex_unlock(&c->qlock);
	pthread_mutex_unlock(c->lock);
}

static void *event_thread(void *opaque)
{
	struct usb_host_ctx *c = opaque;
	struct timespec last = { 0 }, now;

	sandbox_thread_enter(SANDBOX_THREAD_USB, "usb");
	for (;;) {
		struct timeval tv = { 10, 0 };	/* woken for jobs and stop */
		struct job *j;

		pthread_mutex_lock(&c->qlock);
		if (c->devs)
			tv = (struct timeval){ 0, 100000 };	/* the probe */
		if (c->stop) {
			pthread_mutex_unlock(&c->qlock);
			break;
		}
		j = c->head;
		if (j && !(c->head = j->next))
			c->tail = NULL;
		pthread_mutex_unlock(&c->qlock);
		if (j) {
			job_run(j);
			inflight_done(j->d);
			free(j);
			continue;
		}
		libusb_handle_events_timeout_completed(c->lu, &tv, NULL);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - last.tv_sec >= 1 ||
		    (now.tv_sec - last.tv_sec) * 1000000000L +
		    (now.tv_nsec - last.tv_nsec) >= 500000000L) {
			last = now;
			probe_gone(c);
		}
	}
	return NULL;
}

struct usb_host_ctx *usb_host_ctx_new(pthread_mutex_t *lock, char *err,
				      size_t errlen)
{
	struct usb_host_ctx *c = calloc(1, sizeof(*c));
	int r;

	if (!c) {
		snprintf(err, errlen, "usb-host: out of memory");
		return NULL;
	}
	c->lock = lock;
	pthread_mutex_init(&c->qlock, NULL);
	pthread_cond_init(&c->qcond, NULL);
	/* No device discovery: devices come as fds (usb_host_open). */
	libusb_set_option(NULL, LIBUSB_OPTION_NO_DEVICE_DISCOVERY);
	r = libusb_init(&c->lu);
	if (r) {
		snprintf(err, errlen, "usb-host: libusb: %s", libusb_strerror(r));
		free(c);
		return NULL;
	}
	if (pthread_create(&c->thread, NULL, event_thread, c)) {
		snprintf(err, errlen, "usb-host: cannot start its thread");
		libusb_exit(c->lu);
		free(c);
		return NULL;
	}
	return c;
}

void usb_host_ctx_free(struct usb_host_ctx *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->qlock);
	c->stop = true;
	pthread_mutex_unlock(&c->qlock);
	libusb_interrupt_event_handler(c->lu);
	pthread_join(c->thread, NULL);
	libusb_exit(c->lu);
	pthread_cond_destroy(&c->qcond);
	pthread_mutex_destroy(&c->qlock);
	free(c);
}

/* ---- the usb.h device --------------------------------------------------------- */

static struct usb_host_dev *of(struct usb_device *dev)
{
	return (struct usb_host_dev *)dev;
}

static void hd_reset(struct usb_device *dev)
{
	struct usb_host_dev *d = of(dev);
	bool addressed = dev->addr != 0;

	dev->addr = 0;
	dev->config = 0;
	/* The enumeration's resets are the host's business; a reset of a
	 * device the guest had addressed (error recovery) goes through. */
	if (addressed && !d->gone) {
		struct job *j = calloc(1, sizeof(*j));

		if (j) {
			j->d = d;
			j->kind = JOB_RESET;
			job_push(d->ctx, j);
		}
	}
}

/* Only SET_ADDRESS comes here (the rest through submit). */
static int hd_control(struct usb_device *dev, const struct usb_setup *s,
		      uint8_t *data)
{
	(void)data;
	if (s->bmRequestType == 0 && s->bRequest == USB_REQ_SET_ADDRESS &&
	    s->wValue <= 127) {
		dev->addr = (uint8_t)s->wValue;
		return 0;
	}
	return USB_RET_STALL;
}

static int hd_data(struct usb_device *dev, unsigned ep, bool in, uint8_t *buf,
		   size_t len)
{
	(void)dev; (void)ep; (void)in; (void)buf; (void)len;
	return USB_RET_STALL;		/* everything goes through submit */
}

static int hd_submit(struct usb_device *dev, struct usb_xfer *u)
{
	struct usb_host_dev *d = of(dev);
	const struct usb_setup *s = &u->setup;
	struct job *j;

	if (d->gone || d->closing)
		return USB_RET_NODEV;
	if (u->ep)
		return submit_lu(d, u);
	if (s->bmRequestType == 0 && s->bRequest == USB_REQ_SET_ADDRESS)
		return hd_control(dev, s, u->buf);
	j = calloc(1, sizeof(*j));
	if (!j)
		return USB_RET_IOERROR;
	j->d = d;
	j->xfer = u;
	j->kind = JOB_CONTROL;
	if (s->bmRequestType == 0 && s->bRequest == USB_REQ_SET_CONFIGURATION) {
		j->kind = JOB_SET_CONFIG;
		j->a = s->wValue & 0xff;
	} else if (s->bmRequestType == USB_RECIP_INTERFACE &&
		   s->bRequest == USB_REQ_SET_INTERFACE) {
		if (s->wIndex >= 32 || s->wValue > 255 ||
		    !(d->claimed & (1u << s->wIndex))) {
			free(j);
			return USB_RET_STALL;
		}
		j->kind = JOB_SET_ALT;
		j->a = s->wIndex;
		j->b = s->wValue;
	} else if (s->bmRequestType == USB_RECIP_ENDPOINT &&
		   s->bRequest == USB_REQ_CLEAR_FEATURE && s->wValue == 0) {
		j->kind = JOB_CLEAR_HALT;	/* ENDPOINT_HALT */
		j->a = s->wIndex & 0x8f;
	}
	u->dev_priv = j;
	job_push(d->ctx, j);
	return USB_RET_ASYNC;
}

static void hd_cancel(struct usb_device *dev, struct usb_xfer *u)
{
	(void)dev;
	if (!u->dev_priv)
		return;
	if (*(bool *)u->dev_priv) {
		/* Still queued, or a blocking request running: it finishes
		 * without completing. */
		((struct job *)u->dev_priv)->xfer = NULL;
		return;
	}
	{
		struct hx *x = u->dev_priv;

		x->xfer = NULL;
		libusb_cancel_transfer(x->t);
	}
}

static const struct usb_device_ops host_dev_ops = {
	.name = "usb-host",
	.reset = hd_reset,
	.control = hd_control,
	.data = hd_data,
	.submit = hd_submit,
	.cancel = hd_cancel,
};

/* The keeper's socket (usb_host_keeper_set()), -1: none. */
static int keeper_fd = -1;

void usb_host_keeper_set(int fd)
{
	keeper_fd = fd;
}

/* "+NAME" once a device is ours, "-NAME" once it is given back. */
static void keeper_say(char op, const char *name)
{
	char line[48];
	int n = snprintf(line, sizeof(line), "%c%s\n", op, name);

	if (keeper_fd >= 0 && n > 0 && (size_t)n < sizeof(line) &&
	    send(keeper_fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n)
		vlog_ratelimited(LOG_WARN, "usb-host %s: cannot tell the keeper (%s): "
				 "if this process dies, rebind the device's drivers by hand",
				 name, strerror(errno));
}

struct usb_host_dev *usb_host_open(struct usb_host_ctx *ctx, int fd,
				   const struct usb_host_info *info, char *err,
				   size_t errlen)
{
	struct usb_host_dev *d = calloc(1, sizeof(*d));
	int r;

	if (!d) {
		close(fd);
		snprintf(err, errlen, "usb-host: out of memory");
		return NULL;
	}
	d->ctx = ctx;
	d->fd = fd;
	d->info = *info;
	r = libusb_wrap_sys_device(ctx->lu, (intptr_t)fd, &d->h);
	if (r) {
		snprintf(err, errlen, "USB %s (%s): %s", info->name, info->node,
			 libusb_strerror(r));
		close(fd);
		free(d);
		return NULL;
	}
	libusb_set_auto_detach_kernel_driver(d->h, 1);
	r = claim_all(d);
	if (r) {
		snprintf(err, errlen, "USB %s (%04x:%04x): %s%s", info->name,
			 info->vid, info->pid, libusb_strerror(r),
			 r == LIBUSB_ERROR_BUSY ? " (another program or VM has claimed it)" : "");
		release_all(d, true);
		libusb_close(d->h);
		close(fd);
		free(d);
		return NULL;
	}
	d->dev.ops = &host_dev_ops;
	d->dev.speed = info->speed;
	if (!d->dev.speed) {
		switch (libusb_get_device_speed(libusb_get_device(d->h))) {
		case LIBUSB_SPEED_LOW: d->dev.speed = USB_SPEED_LOW; break;
		case LIBUSB_SPEED_FULL: d->dev.speed = USB_SPEED_FULL; break;
		case LIBUSB_SPEED_SUPER:
		case LIBUSB_SPEED_SUPER_PLUS: d->dev.speed = USB_SPEED_SUPER; break;
		default: d->dev.speed = USB_SPEED_HIGH; break;
		}
	}
	pthread_mutex_lock(&ctx->qlock);
	d->next = ctx->devs;
	ctx->devs = d;
	pthread_mutex_unlock(&ctx->qlock);
	keeper_say('+', info->name);
	vlog(LOG_INFO, "usb-host %s (%04x:%04x %s): claimed", info->name,
	     info->vid, info->pid, info->product);
	return d;
}

struct usb_device *usb_host_usb(struct usb_host_dev *d)
{
	return &d->dev;
}

const struct usb_host_info *usb_host_dev_info(const struct usb_host_dev *d)
{
	return &d->info;
}

bool usb_host_gone(const struct usb_host_dev *d)
{
	return d->gone;
}

void usb_host_close(struct usb_host_dev *d)
{
	struct usb_host_ctx *c;

	if (!d)
		return;
	c = d->ctx;
	pthread_mutex_lock(&c->qlock);
	d->closing = true;
	/* The event thread finishes the cancelled transfers and jobs. */
	while (d->inflight) {
		pthread_mutex_unlock(&c->qlock);
		libusb_interrupt_event_handler(c->lu);
		pthread_mutex_lock(&c->qlock);
		if (d->inflight) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 50000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&c->qcond, &c->qlock, &ts);
		}
	}
	for (struct usb_host_dev **p = &c->devs; *p; p = &(*p)->next)
		if (*p == d) {
			*p = d->next;
			break;
		}
	pthread_mutex_unlock(&c->qlock);
	if (!d->gone)
		release_all(d, true);	/* the host's drivers come back */
	libusb_close(d->h);		/* a wrapped fd stays open */
	close(d->fd);
	keeper_say('-', d->info.name);
	vlog(LOG_INFO, "usb-host %s: released%s", d->info.name,
	     d->gone ? "" : " (host drivers reattached)");
	free(d);
}
