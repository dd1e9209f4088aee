/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/usb/usb.h - what a USB device model offers a host controller
 * (USB 2.0 §9 "USB Device Framework"): its speed, standard and class
 * control requests on the default control pipe, and data on its other
 * endpoints.  A controller (usb/xhci.h) attaches devices to root ports
 * and moves transfers between guest memory and these calls.
 *
 * Every call is made with the device lock held.  Buffers are the
 * controller's (bounded: a control transfer's data stage is at most
 * 65535 bytes, a bulk/interrupt TD at most XHCI_TD_MAX_BYTES, or
 * XHCI_ASYNC_TD_MAX_BYTES through submit).
 */
#ifndef VIVARIUM_USB_H
#define VIVARIUM_USB_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Speeds as the xHCI's default Protocol Speed IDs (xHCI 1.2 §7.2.2.1.1). */
enum usb_speed {
	USB_SPEED_FULL = 1,
	USB_SPEED_LOW = 2,
	USB_SPEED_HIGH = 3,
	USB_SPEED_SUPER = 4,
};

/* A SETUP packet (USB 2.0 §9.3), fields in host order. */
struct usb_setup {
	uint8_t bmRequestType;	/* bit 7: device-to-host (IN) */
	uint8_t bRequest;
	uint16_t wValue;
	uint16_t wIndex;
	uint16_t wLength;
};

#define USB_DIR_IN		0x80
#define USB_TYPE_MASK		0x60
#define USB_TYPE_STANDARD	0x00
#define USB_TYPE_CLASS		0x20
#define USB_RECIP_MASK		0x1f
#define USB_RECIP_DEVICE	0x00
#define USB_RECIP_INTERFACE	0x01
#define USB_RECIP_ENDPOINT	0x02

/* Standard requests (§9.4, table 9-4). */
#define USB_REQ_GET_STATUS		0
#define USB_REQ_CLEAR_FEATURE		1
#define USB_REQ_SET_FEATURE		3
#define USB_REQ_SET_ADDRESS		5
#define USB_REQ_GET_DESCRIPTOR		6
#define USB_REQ_SET_DESCRIPTOR		7
#define USB_REQ_GET_CONFIGURATION	8
#define USB_REQ_SET_CONFIGURATION	9
#define USB_REQ_GET_INTERFACE		10
#define USB_REQ_SET_INTERFACE		11

/* Descriptor types (§9.4, table 9-5). */
#define USB_DT_DEVICE		1
#define USB_DT_CONFIG		2
#define USB_DT_STRING		3
#define USB_DT_INTERFACE	4
#define USB_DT_ENDPOINT		5

/* What a device call returns besides a byte count. */
#define USB_RET_STALL		(-EPIPE)	/* STALL handshake */
#define USB_RET_NAK		(-EAGAIN)	/* nothing to send now */
#define USB_RET_ASYNC		(-EINPROGRESS)	/* submit: completes later */
/* What an asynchronous transfer may complete with besides a byte count
 * and USB_RET_STALL (the controller reports Babble / Transaction Error). */
#define USB_RET_BABBLE		(-EOVERFLOW)	/* more data than asked */
#define USB_RET_IOERROR		(-EIO)		/* CRC, timeout, cancelled */
#define USB_RET_NODEV		(-ENODEV)	/* the device is gone */

struct usb_device;

/*
 * A transfer a device may finish later (usb_device_ops.submit).  The
 * controller owns it and @buf; the device may keep a pointer to it from
 * a submit that returned USB_RET_ASYNC until it calls usb_xfer_complete()
 * or the controller calls usb_device_ops.cancel on it.
 */
struct usb_xfer {
	struct usb_device *dev;
	unsigned ep;			/* 0: the default control pipe, 1-15 */
	bool in;			/* direction of the data (stage) */
	struct usb_setup setup;		/* ep 0 only */
	uint8_t *buf;			/* OUT data, or room for IN data */
	size_t len;			/* at most 65535 (control) or
					 * XHCI_ASYNC_TD_MAX_BYTES */
	void *dev_priv;			/* the device's own */
};

struct usb_device_ops {
	const char *name;		/* "usb-tablet": logs */
	/* Bus reset (a port reset, the controller's reset): back to the
	 * Default state, address 0, unconfigured. */
	void (*reset)(struct usb_device *dev);
	/*
	 * control - a request on the default control pipe.  @data holds
	 * @setup->wLength bytes: the OUT data stage to read, or room for the
	 * IN data stage.  Returns the bytes of IN data written (at most
	 * wLength; 0 for an OUT request that succeeded) or USB_RET_STALL.
	 */
	int (*control)(struct usb_device *dev, const struct usb_setup *setup,
		       uint8_t *data);
	/*
	 * data - a bulk or interrupt transfer on endpoint @ep (1-15) in
	 * direction @in of @len bytes: IN fills @buf and returns the count
	 * (a short packet if < @len), OUT consumes @buf and returns @len.
	 * USB_RET_NAK: no data now (IN) or no room (OUT) - the controller
	 * keeps the transfer and retries after usb_device_wakeup();
	 * USB_RET_STALL: the endpoint halted.
	 */
	int (*data)(struct usb_device *dev, unsigned ep, bool in, uint8_t *buf,
		    size_t len);
	/*
	 * Optional, for devices that answer later (passthrough of a host
	 * device, usb/usb_host.h).  With submit set the controller sends
	 * every transfer except SET_ADDRESS (still through control) here:
	 * submit returns what control/data would, or USB_RET_ASYNC and
	 * later calls usb_xfer_complete(@xfer) exactly once, from any thread,
	 * with the device lock held, never from inside submit.  The
	 * controller keeps at most one transfer outstanding per endpoint.
	 * cancel: the controller abandons @xfer (Stop Endpoint, Reset
	 * Endpoint, Configure Endpoint dropping it, Reset Device, Disable
	 * Slot, port or controller reset, unplug); after cancel returns the
	 * device must neither complete @xfer nor touch its buffer.
	 */
	int (*submit)(struct usb_device *dev, struct usb_xfer *xfer);
	void (*cancel)(struct usb_device *dev, struct usb_xfer *xfer);
	/* Optional: the device's own state for save/load, at most
	 * USB_STATE_MAX bytes; load returns 0 or -EINVAL for bytes it did
	 * not write. */
	size_t (*save)(struct usb_device *dev, uint8_t *out);
	int (*load)(struct usb_device *dev, const uint8_t *in, size_t len);
};

#define USB_STATE_MAX	256

/* What the device asks of the controller it is attached to. */
struct usb_host_ops {
	/* IN endpoint @ep has data now: retry the transfer it NAKed. */
	void (*wakeup)(void *host, struct usb_device *dev, unsigned ep);
	/* Is the guest's driver polling IN endpoint @ep (controller running,
	 * endpoint configured and running)? */
	bool (*ep_running)(void *host, struct usb_device *dev, unsigned ep);
	/* @xfer (submitted, USB_RET_ASYNC) is done: @result is the bytes
	 * moved (IN data written to xfer->buf, OUT bytes sent; at most
	 * xfer->len; 0 for a control OUT request) or a USB_RET_* error. */
	void (*complete)(void *host, struct usb_xfer *xfer, int result);
	/* The device left (a host device unplugged): disconnect its port. */
	void (*unplug)(void *host, struct usb_device *dev);
};

struct usb_device {
	const struct usb_device_ops *ops;
	enum usb_speed speed;
	uint8_t addr;			/* 0 until addressed */
	uint8_t config;			/* bConfigurationValue, 0: unconfigured */
	/* Set by the controller on attach, cleared on detach. */
	const struct usb_host_ops *host_ops;
	void *host;
};

/* Ask the controller to retry @ep (no-op while detached). */
static inline void usb_device_wakeup(struct usb_device *dev, unsigned ep)
{
	if (dev->host_ops)
		dev->host_ops->wakeup(dev->host, dev, ep);
}

/*
 * usb_xfer_complete - finish a transfer whose submit returned
 * USB_RET_ASYNC (see usb_device_ops.submit); the device lock held.  The
 * controller posts its Transfer Events and may submit the endpoint's next
 * transfer from inside this call.
 */
static inline void usb_xfer_complete(struct usb_xfer *xfer, int result)
{
	struct usb_device *dev = xfer->dev;

	if (dev->host_ops)
		dev->host_ops->complete(dev->host, xfer, result);
}

/* The device is gone for good (unplugged from the host): its root port
 * reports a disconnect (a Port Status Change Event); the controller
 * cancels its transfers and forgets it.  Device lock held. */
static inline void usb_device_unplug(struct usb_device *dev)
{
	if (dev->host_ops)
		dev->host_ops->unplug(dev->host, dev);
}

static inline bool usb_device_ep_running(struct usb_device *dev, unsigned ep)
{
	return dev->host_ops && dev->host_ops->ep_running(dev->host, dev, ep);
}

/* A device's descriptors, for usb_std_control(). */
struct usb_desc {
	const uint8_t *device;		/* 18 bytes */
	const uint8_t *config;		/* the whole configuration: wTotalLength */
	const char *const *strings;	/* index 1..nstrings, ASCII */
	unsigned nstrings;
};

/*
 * usb_std_control - the standard requests (§9.4) every device answers
 * alike: GET_DESCRIPTOR (device, configuration, string; language 0x0409),
 * GET/SET_CONFIGURATION (1 configuration), GET_STATUS, SET_ADDRESS,
 * GET/SET_INTERFACE (alternate 0 only), CLEAR/SET_FEATURE.  Returns the IN
 * bytes written to @data (at most wLength), 0, USB_RET_STALL for a bad
 * request, or -ENOENT when @setup is not a standard request (the device's
 * class handles it).
 */
int usb_std_control(struct usb_device *dev, const struct usb_desc *desc,
		    const struct usb_setup *setup, uint8_t *data);

#endif
