/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/usb/xhci.h - an xHCI USB host controller (eXtensible Host
 * Controller Interface for USB, revision 1.2), PCI 1b36:000d (the ID of
 * QEMU's "qemu-xhci", which guests bind xhci_hcd/usbxhci to without
 * quirks), class 0x0c0330.
 *
 * BAR 0 (64-bit memory, 16 KiB): capability registers at 0 (§5.3),
 * operational at 0x40 (§5.4; port registers at 0x440), runtime at 0x1000
 * (§5.5; interrupter 0 only), doorbells at 0x2000 (§5.6), extended
 * capabilities at 0x3000: two Supported Protocol capabilities (§7.2),
 * USB 2.0 on ports 1-4 and USB 3.0 on ports 5-8.  BAR 2: the MSI-X table
 * (1 vector: interrupter 0); INTx pin A otherwise.
 *
 * 32 device slots, 32-byte contexts (HCCPARAMS1.CSZ 0), 64-bit addressing,
 * no scratchpad buffers, no streams, an event ring segment table of up to
 * 16 entries (HCSPARAMS2.ERST Max 4).  Commands (§4.6): No Op, Enable
 * Slot, Disable Slot, Address Device, Configure Endpoint, Evaluate Context,
 * Reset Endpoint, Stop Endpoint, Set TR Dequeue Pointer, Reset Device;
 * others complete with TRB Error.  Transfers (§4.11): control (Setup,
 * Data, Status stages), bulk and interrupt (Normal TRBs, Event Data TRBs,
 * immediate data); isochronous endpoints may be configured but their TRBs
 * complete with TRB Error (not implemented yet).  A TD carries at most
 * XHCI_TD_MAX_TRBS TRBs and XHCI_TD_MAX_BYTES bytes (XHCI_ASYNC_TD_MAX_BYTES
 * for a device with usb_device_ops.submit).
 *
 * Hostile guests: every TRB, ring segment, context and buffer is read
 * through guest_mem (a range outside RAM is never dereferenced).  A ring
 * pointer or the event ring outside RAM (or misaligned), or an ERST entry
 * of a bad size, raises Host Controller Error (USBSTS.HCE, halted until
 * HCRST); a bad TD completes with TRB Error; bad contexts complete their
 * command with Parameter Error / Context State Error.  A doorbell walks at
 * most XHCI_RING_BUDGET TRBs (Link TRBs included) and at most
 * XHCI_LINK_MAX Link TRBs in a row; a doorbell for a disabled slot or
 * endpoint is ignored with a rate-limited warning.  A full event ring
 * drops the event (counted in xhci_stats) rather than overwrite.
 *
 * Asynchronous transfers: a device with usb_device_ops.submit may answer
 * a TD later (USB_RET_ASYNC).  The endpoint then keeps that one TD in
 * flight (its dequeue pointer on it; no further TD is gathered) until
 * usb_xfer_complete() posts its Transfer Events, advances the dequeue
 * pointer and runs the endpoint's next TD, or until the controller
 * cancels it: Stop Endpoint (a Transfer Event with Stopped at the TD, the
 * dequeue pointer left on it), Reset Endpoint, Configure Endpoint
 * dropping or re-adding the endpoint, Reset Device, Disable Slot, a port
 * reset, HCRST, detach, free.  At most one TD per endpoint is in flight,
 * so at most 31 buffers of XHCI_ASYNC_TD_MAX_BYTES per device.  A completion
 * arriving while the controller or endpoint no longer runs is dropped and
 * the TD runs again at the next doorbell.  Save does not record TDs in
 * flight (their dequeue pointers point at them).
 *
 * Locking: every call with the device lock held.
 */
#ifndef VIVARIUM_XHCI_H
#define VIVARIUM_XHCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../device.h"

struct pci_host;
struct guest_mem;
struct usb_device;
struct xhci;

#define XHCI_PCI_VENDOR		0x1b36
#define XHCI_PCI_DEVICE		0x000d
#define XHCI_CLASS		0x0c0330
#define XHCI_BAR_SIZE		0x4000
#define XHCI_MSIX_BAR		2

#define XHCI_MAX_SLOTS		32
#define XHCI_PORTS_USB2		4	/* ports 1-4 */
#define XHCI_PORTS_USB3		4	/* ports 5-8 */
#define XHCI_MAX_PORTS		(XHCI_PORTS_USB2 + XHCI_PORTS_USB3)
#define XHCI_ERST_MAX		16
#define XHCI_RING_BUDGET	1024	/* TRBs walked per doorbell */
#define XHCI_LINK_MAX		16	/* Link TRBs in a row */
/* Linux's usb-storage sends 120 KiB (high speed) to 1 MiB (SuperSpeed)
 * per TD as a scatter list of pages: devices that answer later (host
 * passthrough) take that much; the built-in ones, answered from the
 * controller's own buffer, 64 KiB. */
#define XHCI_TD_MAX_TRBS	512
#define XHCI_TD_MAX_BYTES	65536
#define XHCI_ASYNC_TD_MAX_BYTES	(1u << 20)

/* Register offsets in BAR 0. */
#define XHCI_CAP_CAPLENGTH	0x00	/* byte; HCIVERSION at 0x02 */
#define XHCI_CAP_HCSPARAMS1	0x04
#define XHCI_CAP_HCSPARAMS2	0x08
#define XHCI_CAP_HCSPARAMS3	0x0c
#define XHCI_CAP_HCCPARAMS1	0x10
#define XHCI_CAP_DBOFF		0x14
#define XHCI_CAP_RTSOFF		0x18
#define XHCI_CAP_HCCPARAMS2	0x1c
#define XHCI_OP			0x40
#define XHCI_OP_USBCMD		(XHCI_OP + 0x00)
#define XHCI_OP_USBSTS		(XHCI_OP + 0x04)
#define XHCI_OP_PAGESIZE	(XHCI_OP + 0x08)
#define XHCI_OP_DNCTRL		(XHCI_OP + 0x14)
#define XHCI_OP_CRCR		(XHCI_OP + 0x18)
#define XHCI_OP_DCBAAP		(XHCI_OP + 0x30)
#define XHCI_OP_CONFIG		(XHCI_OP + 0x38)
#define XHCI_OP_PORTSC(n)	(XHCI_OP + 0x400 + 0x10 * ((n) - 1))	/* n 1-based */
#define XHCI_RT			0x1000
#define XHCI_RT_MFINDEX		XHCI_RT
#define XHCI_RT_IR0		(XHCI_RT + 0x20)
#define XHCI_IR_IMAN		0x00
#define XHCI_IR_IMOD		0x04
#define XHCI_IR_ERSTSZ		0x08
#define XHCI_IR_ERSTBA		0x10
#define XHCI_IR_ERDP		0x18
#define XHCI_DB			0x2000
#define XHCI_XECP		0x3000

#define XHCI_CMD_RS		(1u << 0)
#define XHCI_CMD_HCRST		(1u << 1)
#define XHCI_CMD_INTE		(1u << 2)
#define XHCI_CMD_HSEE		(1u << 3)
#define XHCI_STS_HCH		(1u << 0)
#define XHCI_STS_HSE		(1u << 2)
#define XHCI_STS_EINT		(1u << 3)
#define XHCI_STS_PCD		(1u << 4)
#define XHCI_STS_CNR		(1u << 11)
#define XHCI_STS_HCE		(1u << 12)
#define XHCI_CRCR_RCS		(1ull << 0)
#define XHCI_CRCR_CS		(1ull << 1)
#define XHCI_CRCR_CA		(1ull << 2)
#define XHCI_CRCR_CRR		(1ull << 3)
#define XHCI_IMAN_IP		(1u << 0)
#define XHCI_IMAN_IE		(1u << 1)
#define XHCI_ERDP_EHB		(1ull << 3)

/* PORTSC (§5.4.8). */
#define XHCI_PORT_CCS		(1u << 0)
#define XHCI_PORT_PED		(1u << 1)
#define XHCI_PORT_PR		(1u << 4)
#define XHCI_PORT_PLS_SHIFT	5
#define XHCI_PORT_PLS_MASK	(0xfu << 5)
#define XHCI_PORT_PP		(1u << 9)
#define XHCI_PORT_SPEED_SHIFT	10
#define XHCI_PORT_LWS		(1u << 16)
#define XHCI_PORT_CSC		(1u << 17)
#define XHCI_PORT_PEC		(1u << 18)
#define XHCI_PORT_WRC		(1u << 19)
#define XHCI_PORT_OCC		(1u << 20)
#define XHCI_PORT_PRC		(1u << 21)
#define XHCI_PORT_PLC		(1u << 22)
#define XHCI_PORT_CEC		(1u << 23)
#define XHCI_PORT_CHANGES	(0x7fu << 17)
#define XHCI_PORT_WAKE_MASK	(7u << 25)	/* WCE, WDE, WOE */
#define XHCI_PORT_WPR		(1u << 31)
#define XHCI_PLS_U0		0
#define XHCI_PLS_U3		3
#define XHCI_PLS_RXDETECT	5
#define XHCI_PLS_POLLING	7
#define XHCI_PLS_RESUME		15

/* TRB types (§6.4.6, table 6-91). */
enum xhci_trb_type {
	TRB_NORMAL = 1, TRB_SETUP = 2, TRB_DATA = 3, TRB_STATUS = 4,
	TRB_ISOCH = 5, TRB_LINK = 6, TRB_EVENT_DATA = 7, TRB_NOOP = 8,
	TRB_ENABLE_SLOT = 9, TRB_DISABLE_SLOT = 10, TRB_ADDRESS_DEVICE = 11,
	TRB_CONFIGURE_EP = 12, TRB_EVALUATE_CTX = 13, TRB_RESET_EP = 14,
	TRB_STOP_EP = 15, TRB_SET_TR_DEQ = 16, TRB_RESET_DEVICE = 17,
	TRB_NOOP_CMD = 23,
	TRB_TRANSFER_EVENT = 32, TRB_CMD_COMPLETION = 33,
	TRB_PORT_STATUS_CHANGE = 34, TRB_HC_EVENT = 37,
};

/* TRB control bits. */
#define TRB_C			(1u << 0)
#define TRB_TC			(1u << 1)	/* Link: toggle cycle */
#define TRB_ENT			(1u << 1)
#define TRB_ISP			(1u << 2)
#define TRB_CH			(1u << 4)
#define TRB_IOC			(1u << 5)
#define TRB_IDT			(1u << 6)
#define TRB_BSR			(1u << 9)	/* Address Device */
#define TRB_DC			(1u << 9)	/* Configure Endpoint */
#define TRB_DIR_IN		(1u << 16)	/* Data stage */
#define TRB_TYPE(ctl)		(((ctl) >> 10) & 0x3f)

/* Completion codes (§6.4.5). */
enum xhci_cc {
	CC_SUCCESS = 1, CC_DATA_BUFFER = 2, CC_BABBLE = 3, CC_TRANSACTION = 4,
	CC_TRB_ERROR = 5, CC_STALL = 6, CC_RESOURCE = 7, CC_BANDWIDTH = 8,
	CC_NO_SLOTS = 9, CC_SLOT_NOT_ENABLED = 11, CC_EP_NOT_ENABLED = 12,
	CC_SHORT_PACKET = 13, CC_PARAMETER = 17, CC_CONTEXT_STATE = 19,
	CC_EVENT_RING_FULL = 21, CC_COMMAND_ABORTED = 25, CC_STOPPED = 26,
};

/* Slot and endpoint context states (§6.2.2, §6.2.3). */
#define XHCI_SLOT_ENABLED	0
#define XHCI_SLOT_DEFAULT	1
#define XHCI_SLOT_ADDRESSED	2
#define XHCI_SLOT_CONFIGURED	3
#define XHCI_EP_DISABLED	0
#define XHCI_EP_RUNNING		1
#define XHCI_EP_HALTED		2
#define XHCI_EP_STOPPED		3
#define XHCI_EP_ERROR		4
/* Endpoint types (§6.2.3, table 6-9). */
#define XHCI_EPT_ISOCH_OUT	1
#define XHCI_EPT_BULK_OUT	2
#define XHCI_EPT_INT_OUT	3
#define XHCI_EPT_CONTROL	4
#define XHCI_EPT_ISOCH_IN	5
#define XHCI_EPT_BULK_IN	6
#define XHCI_EPT_INT_IN		7

#define XHCI_CTX_SIZE		32
#define XHCI_DEV_CTX_SIZE	(32 * XHCI_CTX_SIZE)
#define XHCI_IN_CTX_SIZE	(33 * XHCI_CTX_SIZE)

struct xhci_config {
	struct pci_host *pci;
	uint8_t devfn;
	const struct guest_mem *mem;
	/* The machine's devices, owned by the controller: the USB HID
	 * tablet on port 1 and keyboard on port 2 (usb/hid.h). */
	bool hid;
};

/*
 * xhci_new - create the controller and put it on @cfg->pci at @cfg->devfn.
 * Returns it, or NULL with a one-line reason in @err (devfn taken, out of
 * memory).
 */
struct xhci *xhci_new(const struct xhci_config *cfg, char *err,
		      size_t errlen);
/* The built-in HID device of @kind (an enum usb_hid_kind), or NULL
 * without xhci_config.hid: for console_add_input(). */
struct usb_hid *xhci_hid(struct xhci *x, int kind);
/* Take it off the bus and free it (attached devices other than the
 * built-in ones are the caller's).
 * NULL is fine. */
void xhci_free(struct xhci *x);
/* The controller's reset (HCRST's effect; a machine reset). */
void xhci_reset(struct xhci *x);

/*
 * xhci_attach - plug @dev into root port @port (1-based; a USB 2 port
 * 1-4 for low/full/high speed, a USB 3 port 5-8 for super speed).  The
 * port reports a connect change (and a Port Status Change event while
 * running).  Returns 0, -EINVAL (port out of range, speed not the port's
 * protocol) or -EBUSY (port taken).
 */
int xhci_attach(struct xhci *x, unsigned port, struct usb_device *dev);
/* Unplug whatever is in @port (its slot's transfers stop). */
void xhci_detach(struct xhci *x, unsigned port);

/*
 * xhci_device_ops: state XHCI_STATE_TYPE, version 1: (USBCMD, USBSTS,
 * DNCTRL, CONFIG, command ring dequeue pointer, CRR, command ring cycle,
 * DCBAAP, IMAN, IMOD, ERSTSZ, ERSTBA, ERDP, event ring segment index,
 * enqueue index in it, producer cycle, the segments read from the ERST as
 * (base, TRB count), per port (PORTSC, the attached device's own state
 * bytes: empty without a device), per slot 1-32 (enabled, slot state,
 * root port, USB address, output device context GPA, per endpoint 1-31
 * (state, type, TR dequeue pointer, dequeue cycle, max packet size))).
 * Load wants the same devices on the same ports.
 */
#define XHCI_STATE_TYPE "(uuuutbbtuuuttuuba(tu)a(uay)a(byyyta(yytbq)))"
extern const struct device_ops xhci_device_ops;

/* Counters for tests and logs. */
struct xhci_stats {
	uint64_t events;		/* written to the event ring */
	uint64_t events_dropped;	/* the ring was full */
	uint64_t interrupts;		/* MSI-X messages or INTx assertions */
	uint64_t xfers_async;		/* TDs a device answered later */
	uint64_t xfers_cancelled;	/* ... and the controller abandoned */
};
void xhci_get_stats(const struct xhci *x, struct xhci_stats *out);

/* For the fuzz target: the MMIO registers as the BAR sees them. */
uint64_t xhci_mmio_read(struct xhci *x, uint64_t off, unsigned size);
void xhci_mmio_write(struct xhci *x, uint64_t off, uint64_t val,
		     unsigned size);

#endif
