// SPDX-License-Identifier: MIT
/* vmm-core/usb/xhci.c - the xHCI controller (xhci.h; xHCI 1.2). */
#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>

#include "xhci.h"
#include "usb.h"
#include "hid.h"
#include "../bus.h"
#include "../devices/pci.h"
#include "../log.h"
#include "../mem.h"

#define MSIX_CAP_OFF		0x40

struct xhci_ep {
	uint8_t state, type;
	uint64_t deq;			/* TR dequeue pointer */
	bool dcs;			/* its cycle state */
	uint16_t mps;
};

struct xhci_slot {
	bool enabled;
	uint8_t state, port, addr;
	uint64_t ctx;			/* output device context GPA */
	struct xhci_ep ep[32];		/* by DCI; [0] unused */
};

struct xhci_port {
	uint32_t portsc;
	struct usb_device *dev;
};

struct xhci {
	struct pci_device pci;
	const struct guest_mem *mem;
	uint32_t usbcmd, usbsts, dnctrl, config;
	uint64_t cmd_deq;
	bool crr, ccs;
	bool crcr_hi_skip;		/* the high half of a stop/abort write */
	uint64_t dcbaap;
	/* Interrupter 0. */
	uint32_t iman, imod, erstsz;
	uint64_t erstba, erdp;		/* erdp: pointer, DESI; EHB below */
	unsigned er_seg, er_idx;	/* the enqueue point */
	bool er_pcs;			/* producer cycle state */
	unsigned nsegs;			/* as read from the ERST; 0: none */
	uint64_t seg_base[XHCI_ERST_MAX];
	uint32_t seg_size[XHCI_ERST_MAX];
	struct xhci_port port[XHCI_MAX_PORTS + 1];	/* [0] unused */
	struct xhci_slot slot[XHCI_MAX_SLOTS + 1];	/* [0] unused */
	struct xhci_stats stats;
	bool busy;			/* walking rings: no re-entry */
	/* Not copied by load (xhci_load): */
	bool has_hid;
	struct usb_hid hid[2];		/* by enum usb_hid_kind */
	/* The TD in flight per slot and DCI (usb_device_ops.submit). */
	struct xhci_xfer *pend[XHCI_MAX_SLOTS + 1][32];
	uint8_t buf[XHCI_TD_MAX_BYTES];
};

struct td_trb {
	uint64_t addr, param;
	uint32_t status, ctl;
};

struct td {
	struct td_trb trb[XHCI_TD_MAX_TRBS];
	unsigned n;
	uint64_t end_deq;
	bool end_cycle;
	uint64_t bad;			/* the TRB that made it unusable */
};

/* A TD a device answers later: its TRBs, kept until it completes. */
struct xhci_xfer {
	struct usb_xfer u;
	struct xhci *x;
	unsigned sid, dci;
	uint32_t n;			/* the bytes the TD moves at most */
	struct td td;
	uint8_t data[];
};

enum td_result { TD_OK, TD_EMPTY, TD_INCOMPLETE, TD_FAULT, TD_HALT };

static bool running(const struct xhci *x)
{
	return (x->usbcmd & XHCI_CMD_RS) && !(x->usbsts & XHCI_STS_HCE);
}

static void hc_error(struct xhci *x, const char *why, uint64_t gpa)
{
	vlog_ratelimited(LOG_WARN,
			 "xhci: host controller error: %s (%#llx); the guest must reset the controller",
			 why, (unsigned long long)gpa);
	x->usbsts |= XHCI_STS_HCE | XHCI_STS_HCH;
	x->crr = false;
}

/* The transfers devices answer later (usb_device_ops.submit). */
static void xfer_cancel(struct xhci *x, unsigned sid, unsigned dci,
			bool stopped);
static void slot_cancel(struct xhci *x, unsigned sid, unsigned from);
static void port_cancel(struct xhci *x, unsigned port);
static void cancel_all(struct xhci *x);

/* ---- interrupter 0 and the event ring (§4.9.4, §4.17) ------------------- */

static bool ehb(const struct xhci *x)
{
	return x->erdp & XHCI_ERDP_EHB;
}

static void irq_update(struct xhci *x)
{
	bool level = (x->iman & XHCI_IMAN_IP) && (x->iman & XHCI_IMAN_IE) &&
		     (x->usbcmd & XHCI_CMD_INTE);

	pci_set_irq(&x->pci, pci_msix_enabled(&x->pci) ? 0 : level);
}

/* Events are waiting: interrupt unless the driver is still handling the
 * last interrupt (EHB set, §5.5.2.3.3). */
static void irq_raise(struct xhci *x)
{
	x->usbsts |= XHCI_STS_EINT;
	if (!(x->iman & XHCI_IMAN_IE) || ehb(x))
		return;
	x->erdp |= XHCI_ERDP_EHB;
	x->iman |= XHCI_IMAN_IP;
	if (!(x->usbcmd & XHCI_CMD_INTE))
		return;
	x->stats.interrupts++;
	if (pci_msix_enabled(&x->pci))
		pci_msix_notify(&x->pci, 0);
	else
		irq_update(x);
}

static uint64_t er_gpa(const struct xhci *x, unsigned seg, unsigned idx)
{
	return x->seg_base[seg] + 16ull * idx;
}

static bool er_empty(const struct xhci *x)
{
	return !x->nsegs ||
	       er_gpa(x, x->er_seg, x->er_idx) == (x->erdp & ~0xfull);
}

static void event(struct xhci *x, uint64_t param, uint32_t status,
		  uint32_t ctl)
{
	unsigned seg = x->er_seg, idx = x->er_idx + 1;
	bool pcs = x->er_pcs;
	uint64_t gpa;
	uint32_t w[3];

	if (!x->nsegs) {
		x->stats.events_dropped++;
		return;
	}
	if (idx == x->seg_size[seg]) {
		idx = 0;
		if (++seg == x->nsegs) {
			seg = 0;
			pcs = !pcs;
		}
	}
	if (er_gpa(x, seg, idx) == (x->erdp & ~0xfull)) {
		x->stats.events_dropped++;
		vlog_ratelimited(LOG_WARN, "xhci: event ring full: event dropped");
		irq_raise(x);
		return;
	}
	gpa = er_gpa(x, x->er_seg, x->er_idx);
	w[0] = htole32((uint32_t)param);
	w[1] = htole32((uint32_t)(param >> 32));
	w[2] = htole32(status);
	ctl = htole32((ctl & ~TRB_C) | (x->er_pcs ? TRB_C : 0));
	/* The segment was checked in RAM when the ERST was read; the cycle
	 * bit goes last, so the driver never sees half an event. */
	if (guest_mem_write(x->mem, gpa, w, sizeof(w)) < 0) {
		hc_error(x, "event ring outside RAM", gpa);
		return;
	}
	__atomic_thread_fence(__ATOMIC_RELEASE);
	guest_mem_write(x->mem, gpa + 12, &ctl, 4);
	x->er_seg = seg;
	x->er_idx = idx;
	x->er_pcs = pcs;
	x->stats.events++;
	irq_raise(x);
}

static void cmd_event(struct xhci *x, uint64_t trb, enum xhci_cc cc,
		      unsigned slot)
{
	event(x, trb, (uint32_t)cc << 24,
	      TRB_CMD_COMPLETION << 10 | (uint32_t)slot << 24);
}

static void xfer_event(struct xhci *x, uint64_t trb, enum xhci_cc cc,
		       uint32_t residual, unsigned slot, unsigned dci, bool ed)
{
	event(x, trb, (uint32_t)cc << 24 | (residual & 0xffffff),
	      TRB_TRANSFER_EVENT << 10 | (ed ? 1u << 2 : 0) | dci << 16 |
	      (uint32_t)slot << 24);
}

/* Read the ERST (§6.5) as ERSTBA is written: every segment must be in
 * RAM, 64-byte aligned, 16-4096 TRBs. */
static void er_setup(struct xhci *x)
{
	x->nsegs = 0;
	x->er_seg = x->er_idx = 0;
	x->er_pcs = true;
	if (!x->erstsz)
		return;
	if (x->erstsz > XHCI_ERST_MAX || (x->erstba & 0x3f)) {
		hc_error(x, "bad event ring segment table", x->erstba);
		return;
	}
	for (unsigned i = 0; i < x->erstsz; i++) {
		uint32_t e[4];
		uint64_t base;
		uint32_t size;

		if (guest_mem_read(x->mem, x->erstba + 16 * i, e, 16) < 0) {
			hc_error(x, "event ring segment table outside RAM",
				 x->erstba);
			return;
		}
		base = le32toh(e[0]) | (uint64_t)le32toh(e[1]) << 32;
		size = le32toh(e[2]) & 0xffff;
		if ((base & 0x3f) || size < 16 || size > 4096 ||
		    !gpa_to_hva(x->mem, base, 16ull * size)) {
			hc_error(x, "bad event ring segment", base);
			return;
		}
		x->seg_base[i] = base;
		x->seg_size[i] = size;
	}
	x->nsegs = x->erstsz;
}

/* ---- root hub ports (§4.19, §5.4.8) -------------------------------------- */

static bool port_usb3(unsigned n)
{
	return n > XHCI_PORTS_USB2;
}

static void port_notify(struct xhci *x, unsigned n)
{
	x->usbsts |= XHCI_STS_PCD;
	if (running(x))
		event(x, (uint64_t)n << 24, CC_SUCCESS << 24,
		      TRB_PORT_STATUS_CHANGE << 10);
}

static void port_set_pls(struct xhci_port *p, unsigned pls)
{
	p->portsc = (p->portsc & ~XHCI_PORT_PLS_MASK) |
		    pls << XHCI_PORT_PLS_SHIFT;
}

/* A port's status after a connect: USB 3 links train to U0 (enabled),
 * USB 2 ports wait for a reset (§4.19.1). */
static void port_connect(struct xhci *x, unsigned n)
{
	struct xhci_port *p = &x->port[n];

	p->portsc = XHCI_PORT_PP;
	if (!p->dev) {
		port_set_pls(p, XHCI_PLS_RXDETECT);
		return;
	}
	p->portsc |= XHCI_PORT_CCS | XHCI_PORT_CSC |
		     (uint32_t)p->dev->speed << XHCI_PORT_SPEED_SHIFT;
	if (port_usb3(n)) {
		p->portsc |= XHCI_PORT_PED;
		port_set_pls(p, XHCI_PLS_U0);
	} else {
		port_set_pls(p, XHCI_PLS_POLLING);
	}
}

static void port_reset(struct xhci *x, unsigned n, bool warm)
{
	struct xhci_port *p = &x->port[n];

	p->portsc &= ~XHCI_PORT_PR;
	port_cancel(x, n);
	if (p->dev) {
		p->dev->ops->reset(p->dev);
		p->portsc |= XHCI_PORT_PED;
		port_set_pls(p, XHCI_PLS_U0);
	}
	p->portsc |= XHCI_PORT_PRC | (warm ? XHCI_PORT_WRC : 0);
	port_notify(x, n);
}

static void port_write(struct xhci *x, unsigned n, uint32_t v)
{
	struct xhci_port *p = &x->port[n];
	uint32_t before = p->portsc;

	p->portsc &= ~(v & XHCI_PORT_CHANGES);
	if (v & XHCI_PORT_PED)		/* RW1CS: software disables */
		p->portsc &= ~XHCI_PORT_PED;
	p->portsc = (p->portsc & ~XHCI_PORT_WAKE_MASK) |
		    (v & XHCI_PORT_WAKE_MASK);
	if ((v & XHCI_PORT_LWS) && p->dev && (p->portsc & XHCI_PORT_PED)) {
		unsigned pls = (v & XHCI_PORT_PLS_MASK) >> XHCI_PORT_PLS_SHIFT;

		if (pls == XHCI_PLS_U0 || pls == XHCI_PLS_U3) {
			port_set_pls(p, pls);
		} else if (pls == XHCI_PLS_RESUME) {
			port_set_pls(p, XHCI_PLS_U0);
			p->portsc |= XHCI_PORT_PLC;
			port_notify(x, n);
		}
	}
	if ((v & XHCI_PORT_PR) || (port_usb3(n) && (v & XHCI_PORT_WPR)))
		port_reset(x, n, !(v & XHCI_PORT_PR));
	(void)before;
}

/* ---- contexts in guest memory (§6.2) ------------------------------------- */

static bool ctx_read(struct xhci *x, uint64_t gpa, uint32_t *w, size_t len)
{
	if (guest_mem_read(x->mem, gpa, w, len) < 0)
		return false;
	for (size_t i = 0; i < len / 4; i++)
		w[i] = le32toh(w[i]);
	return true;
}

static void ctx_write(struct xhci *x, uint64_t gpa, const uint32_t *w,
		      size_t len)
{
	uint32_t t[8];

	for (size_t i = 0; i < len / 4 && i < 8; i++)
		t[i] = htole32(w[i]);
	if (guest_mem_write(x->mem, gpa, t, len) < 0)
		vlog_ratelimited(LOG_WARN, "xhci: device context at %#llx left RAM",
				 (unsigned long long)gpa);
}

/* The output slot context's state and address from ours. */
static void out_slot_update(struct xhci *x, struct xhci_slot *s,
			    const uint32_t *in_slot)
{
	uint32_t w[8];

	if (in_slot)
		memcpy(w, in_slot, sizeof(w));
	else if (!ctx_read(x, s->ctx, w, sizeof(w)))
		return;
	w[3] = (uint32_t)s->state << 27 | s->addr;
	ctx_write(x, s->ctx, w, sizeof(w));
}

static void out_ep_update(struct xhci *x, struct xhci_slot *s, unsigned dci,
			  const uint32_t *in_ep)
{
	struct xhci_ep *ep = &s->ep[dci];
	uint64_t gpa = s->ctx + XHCI_CTX_SIZE * dci;
	uint32_t w[8];

	if (in_ep)
		memcpy(w, in_ep, sizeof(w));
	else if (!ctx_read(x, gpa, w, sizeof(w)))
		return;
	w[0] = (w[0] & ~7u) | ep->state;
	w[2] = (uint32_t)ep->deq | ep->dcs;
	w[3] = (uint32_t)(ep->deq >> 32);
	ctx_write(x, gpa, w, sizeof(w));
}

/* ---- commands (§4.6) ------------------------------------------------------ */


static unsigned max_slots_en(const struct xhci *x)
{
	unsigned m = x->config & 0xff;

	return m > XHCI_MAX_SLOTS ? XHCI_MAX_SLOTS : m;
}

static void slot_disable_eps(struct xhci_slot *s, unsigned from)
{
	for (unsigned i = from; i < 32; i++)
		memset(&s->ep[i], 0, sizeof(s->ep[i]));
}

/* Set an endpoint from an input endpoint context (@w, 8 dwords); checks
 * what the device model relies on.  Returns a completion code. */
static enum xhci_cc ep_from_ctx(struct xhci_ep *ep, unsigned dci,
				const uint32_t *w, bool apply)
{
	unsigned type = (w[1] >> 3) & 7, mps = w[1] >> 16;
	uint64_t deq = ((uint64_t)w[3] << 32 | w[2]) & ~0xfull;

	if (!type || !mps || !deq || ((w[0] >> 10) & 0x1f))	/* streams */
		return CC_PARAMETER;
	if (dci == 1 ? type != XHCI_EPT_CONTROL :
	    type == XHCI_EPT_CONTROL || (type > XHCI_EPT_CONTROL) != (dci & 1))
		return CC_PARAMETER;
	if (apply) {
		ep->state = XHCI_EP_RUNNING;
		ep->type = (uint8_t)type;
		ep->deq = deq;
		ep->dcs = w[2] & 1;
		ep->mps = (uint16_t)mps;
	}
	return CC_SUCCESS;
}

static enum xhci_cc cmd_address_device(struct xhci *x, unsigned sid,
				       uint64_t param, uint32_t ctl)
{
	struct xhci_slot *s = &x->slot[sid];
	bool bsr = ctl & TRB_BSR;
	uint32_t in[24];	/* input control, slot, EP0 contexts */
	uint64_t out;
	unsigned port;
	struct usb_device *dev;
	enum xhci_cc cc;

	if (s->state != XHCI_SLOT_ENABLED &&
	    !(s->state == XHCI_SLOT_DEFAULT && !bsr))
		return CC_CONTEXT_STATE;
	if ((param & 0xf) || !ctx_read(x, param, in, sizeof(in)))
		return CC_TRB_ERROR;
	if (in[0] || (in[1] & 3) != 3)
		return CC_TRB_ERROR;
	port = (in[8 + 1] >> 16) & 0xff;
	if (!port || port > XHCI_MAX_PORTS || (in[8] & 0xfffff))
		return CC_TRB_ERROR;	/* no hubs: the route string is 0 */
	for (unsigned i = 1; i <= XHCI_MAX_SLOTS; i++)
		if (i != sid && x->slot[i].enabled && x->slot[i].port == port &&
		    x->slot[i].state != XHCI_SLOT_ENABLED)
			return CC_CONTEXT_STATE;	/* already addressed */
	cc = ep_from_ctx(&s->ep[1], 1, in + 16, false);
	if (cc != CC_SUCCESS)
		return cc;
	if (guest_mem_read(x->mem, x->dcbaap + 8ull * sid, &out, 8) < 0)
		return CC_PARAMETER;
	out = le64toh(out);
	if ((out & 0x3f) || !gpa_to_hva(x->mem, out, XHCI_DEV_CTX_SIZE))
		return CC_PARAMETER;
	dev = x->port[port].dev;
	if (!dev || !(x->port[port].portsc & XHCI_PORT_PED))
		return CC_TRANSACTION;
	if (!bsr) {
		struct usb_setup sa = { 0, USB_REQ_SET_ADDRESS, (uint16_t)sid,
					0, 0 };

		if (dev->ops->control(dev, &sa, x->buf) < 0)
			return CC_TRANSACTION;
	}
	ep_from_ctx(&s->ep[1], 1, in + 16, true);
	s->port = (uint8_t)port;
	s->ctx = out;
	s->addr = bsr ? 0 : (uint8_t)sid;
	s->state = bsr ? XHCI_SLOT_DEFAULT : XHCI_SLOT_ADDRESSED;
	out_slot_update(x, s, in + 8);
	out_ep_update(x, s, 1, in + 16);
	return CC_SUCCESS;
}

static enum xhci_cc cmd_configure_ep(struct xhci *x, unsigned sid,
				     uint64_t param, uint32_t ctl)
{
	struct xhci_slot *s = &x->slot[sid];
	uint32_t in[33 * 8];
	uint32_t drop, add;
	bool any = false;
	enum xhci_cc cc;

	if (s->state != XHCI_SLOT_ADDRESSED &&
	    s->state != XHCI_SLOT_CONFIGURED)
		return CC_CONTEXT_STATE;
	if (ctl & TRB_DC) {
		slot_cancel(x, sid, 2);
		slot_disable_eps(s, 2);
		s->state = XHCI_SLOT_ADDRESSED;
		out_slot_update(x, s, NULL);
		return CC_SUCCESS;
	}
	if ((param & 0xf) || !ctx_read(x, param, in, sizeof(in)))
		return CC_TRB_ERROR;
	drop = in[0];
	add = in[1];
	if ((drop & 3) || (add & 2))
		return CC_TRB_ERROR;
	for (unsigned dci = 2; dci < 32; dci++)	/* check all, then apply */
		if (add & (1u << dci)) {
			cc = ep_from_ctx(&s->ep[dci], dci, in + 8 * (dci + 1),
					 false);
			if (cc != CC_SUCCESS)
				return cc;
		}
	for (unsigned dci = 2; dci < 32; dci++) {
		if (drop & (1u << dci) || add & (1u << dci))
			xfer_cancel(x, sid, dci, false);
		if (drop & (1u << dci))
			memset(&s->ep[dci], 0, sizeof(s->ep[dci]));
		if (add & (1u << dci)) {
			ep_from_ctx(&s->ep[dci], dci, in + 8 * (dci + 1), true);
			out_ep_update(x, s, dci, in + 8 * (dci + 1));
		}
		if (s->ep[dci].state != XHCI_EP_DISABLED)
			any = true;
	}
	s->state = any ? XHCI_SLOT_CONFIGURED : XHCI_SLOT_ADDRESSED;
	if (add & 1) {
		uint32_t w[8];

		if (ctx_read(x, s->ctx, w, sizeof(w))) {
			w[0] = (w[0] & ~(0x1fu << 27)) | (in[8] & (0x1fu << 27));
			out_slot_update(x, s, w);
		}
	} else {
		out_slot_update(x, s, NULL);
	}
	return CC_SUCCESS;
}

static enum xhci_cc cmd_evaluate_ctx(struct xhci *x, unsigned sid,
				     uint64_t param)
{
	struct xhci_slot *s = &x->slot[sid];
	uint32_t in[24], w[8];

	if (s->state == XHCI_SLOT_ENABLED)
		return CC_CONTEXT_STATE;
	if ((param & 0xf) || !ctx_read(x, param, in, sizeof(in)))
		return CC_TRB_ERROR;
	if ((in[1] & 2) && !(in[16 + 1] >> 16))
		return CC_PARAMETER;
	if ((in[1] & 1) && ctx_read(x, s->ctx, w, sizeof(w))) {
		/* Max exit latency, interrupter target. */
		w[1] = (w[1] & ~0xffffu) | (in[8 + 1] & 0xffff);
		w[2] = (w[2] & 0x3fffff) | (in[8 + 2] & ~0x3fffffu);
		out_slot_update(x, s, w);
	}
	if ((in[1] & 2) && ctx_read(x, s->ctx + XHCI_CTX_SIZE, w, sizeof(w))) {
		s->ep[1].mps = (uint16_t)(in[16 + 1] >> 16);
		w[1] = (w[1] & 0xffff) | (in[16 + 1] & 0xffff0000u);
		out_ep_update(x, s, 1, w);
	}
	return CC_SUCCESS;
}

static void run_command(struct xhci *x, uint64_t addr, uint64_t param,
			uint32_t ctl)
{
	unsigned type = TRB_TYPE(ctl), sid = ctl >> 24, dci = (ctl >> 16) & 0x1f;
	struct xhci_slot *s = NULL;
	enum xhci_cc cc;

	if (type != TRB_ENABLE_SLOT && type != TRB_NOOP_CMD) {
		if (!sid || sid > max_slots_en(x)) {
			cmd_event(x, addr, CC_TRB_ERROR, sid);
			return;
		}
		s = &x->slot[sid];
		if (!s->enabled) {
			cmd_event(x, addr, CC_SLOT_NOT_ENABLED, sid);
			return;
		}
	}
	switch (type) {
	case TRB_NOOP_CMD:
		cc = CC_SUCCESS;
		sid = 0;
		break;
	case TRB_ENABLE_SLOT:
		cc = CC_NO_SLOTS;
		for (sid = 1; sid <= max_slots_en(x); sid++)
			if (!x->slot[sid].enabled)
				break;
		if (sid > max_slots_en(x)) {
			sid = 0;
			break;
		}
		memset(&x->slot[sid], 0, sizeof(x->slot[sid]));
		x->slot[sid].enabled = true;
		x->slot[sid].state = XHCI_SLOT_ENABLED;
		cc = CC_SUCCESS;
		break;
	case TRB_DISABLE_SLOT:
		slot_cancel(x, sid, 1);
		memset(s, 0, sizeof(*s));
		cc = CC_SUCCESS;
		break;
	case TRB_ADDRESS_DEVICE:
		cc = cmd_address_device(x, sid, param, ctl);
		break;
	case TRB_CONFIGURE_EP:
		cc = cmd_configure_ep(x, sid, param, ctl);
		break;
	case TRB_EVALUATE_CTX:
		cc = cmd_evaluate_ctx(x, sid, param);
		break;
	case TRB_RESET_EP:
	case TRB_STOP_EP:
	case TRB_SET_TR_DEQ: {
		struct xhci_ep *ep = &s->ep[dci];

		if (!dci) {
			cc = CC_TRB_ERROR;
			break;
		}
		if (ep->state == XHCI_EP_DISABLED) {
			cc = CC_EP_NOT_ENABLED;
			break;
		}
		cc = CC_SUCCESS;
		if (type == TRB_RESET_EP) {
			if (ep->state != XHCI_EP_HALTED) {
				cc = CC_CONTEXT_STATE;
			} else {
				xfer_cancel(x, sid, dci, false);
				ep->state = XHCI_EP_STOPPED;
			}
		} else if (type == TRB_STOP_EP) {
			if (ep->state != XHCI_EP_RUNNING) {
				cc = CC_CONTEXT_STATE;
			} else {
				/* The TD in flight ends Stopped; the
				 * dequeue pointer stays on it. */
				xfer_cancel(x, sid, dci, true);
				ep->state = XHCI_EP_STOPPED;
			}
		} else if (ep->state != XHCI_EP_STOPPED &&
			   ep->state != XHCI_EP_ERROR) {
			cc = CC_CONTEXT_STATE;
		} else if (!(param & ~0xfull)) {
			cc = CC_TRB_ERROR;
		} else {
			ep->deq = param & ~0xfull;
			ep->dcs = param & 1;
		}
		if (cc == CC_SUCCESS)
			out_ep_update(x, s, dci, NULL);
		break;
	}
	case TRB_RESET_DEVICE:
		if (s->state == XHCI_SLOT_ENABLED) {
			cc = CC_CONTEXT_STATE;
			break;
		}
		slot_cancel(x, sid, 1);
		slot_disable_eps(s, 2);
		s->state = XHCI_SLOT_DEFAULT;
		s->addr = 0;
		out_slot_update(x, s, NULL);
		cc = CC_SUCCESS;
		break;
	default:
		cc = CC_TRB_ERROR;
		break;
	}
	cmd_event(x, addr, cc, sid);
}

static bool read_trb(struct xhci *x, uint64_t gpa, struct td_trb *t)
{
	uint32_t w[4];

	if ((gpa & 0xf) || guest_mem_read(x->mem, gpa, w, 16) < 0)
		return false;
	t->addr = gpa;
	t->param = le32toh(w[0]) | (uint64_t)le32toh(w[1]) << 32;
	t->status = le32toh(w[2]);
	t->ctl = le32toh(w[3]);
	return true;
}

static void cmd_ring_run(struct xhci *x)
{
	unsigned links = 0;

	if (!running(x))
		return;
	x->crr = true;
	for (unsigned budget = XHCI_RING_BUDGET; budget; budget--) {
		struct td_trb t;

		if (!read_trb(x, x->cmd_deq, &t)) {
			hc_error(x, "command ring outside RAM", x->cmd_deq);
			return;
		}
		if (!(t.ctl & TRB_C) != !x->ccs)
			return;		/* caught up with the driver */
		if (TRB_TYPE(t.ctl) == TRB_LINK) {
			if (++links > XHCI_LINK_MAX) {
				hc_error(x, "command ring: a loop of Link TRBs",
					 t.addr);
				return;
			}
			x->cmd_deq = t.param & ~0xfull;
			if (t.ctl & TRB_TC)
				x->ccs = !x->ccs;
			continue;
		}
		links = 0;
		x->cmd_deq += 16;
		run_command(x, t.addr, t.param, t.ctl);
		if (!running(x))
			return;
	}
	/* The budget is spent: the rest waits for the next doorbell. */
}

/* ---- transfers (§4.11) ----------------------------------------------------- */

static enum td_result td_gather(struct xhci *x, const struct xhci_ep *ep,
				bool control, struct td *td, unsigned *budget)
{
	uint64_t deq = ep->deq;
	bool cyc = ep->dcs;
	unsigned links = 0;

	td->n = 0;
	for (;;) {
		struct td_trb t;
		unsigned type;

		if (!*budget)
			return TD_INCOMPLETE;
		(*budget)--;
		if (!read_trb(x, deq, &t)) {
			td->bad = deq;
			return TD_FAULT;
		}
		if (!(t.ctl & TRB_C) != !cyc)
			return td->n ? TD_INCOMPLETE : TD_EMPTY;
		type = TRB_TYPE(t.ctl);
		if (type == TRB_LINK) {
			if (++links > XHCI_LINK_MAX) {
				td->bad = deq;
				return TD_HALT;
			}
			deq = t.param & ~0xfull;
			if (t.ctl & TRB_TC)
				cyc = !cyc;
			continue;
		}
		links = 0;
		if (td->n == XHCI_TD_MAX_TRBS) {
			td->bad = deq;
			return TD_HALT;
		}
		td->trb[td->n++] = t;
		deq += 16;
		if (control ? type == TRB_STATUS ||
			      (td->n == 1 && type != TRB_SETUP)
			    : !(t.ctl & TRB_CH))
			break;
	}
	td->end_deq = deq;
	td->end_cycle = cyc;
	return TD_OK;
}

static bool is_data(unsigned type)
{
	return type == TRB_NORMAL || type == TRB_DATA;
}

static uint32_t trb_len(const struct td_trb *t)
{
	return t->status & 0x1ffff;
}

/* Guest buffers <-> @buf for the data TRBs of @td; @len bytes.
 * Returns the index of a TRB whose buffer is not RAM, or -1. */
static int td_copy(struct xhci *x, const struct td *td, uint8_t *buf,
		   bool to_guest, uint32_t len)
{
	uint32_t off = 0;

	for (unsigned i = 0; i < td->n && off < len; i++) {
		const struct td_trb *t = &td->trb[i];
		uint32_t n = trb_len(t);
		int r;

		if (!is_data(TRB_TYPE(t->ctl)))
			continue;
		if (n > len - off)
			n = len - off;
		if (t->ctl & TRB_IDT) {
			uint64_t imm = htole64(t->param);

			if (to_guest || n > 8)
				return (int)i;
			memcpy(buf + off, &imm, n);
			r = 0;
		} else if (to_guest) {
			r = guest_mem_write(x->mem, t->param, buf + off, n);
		} else {
			r = guest_mem_read(x->mem, t->param, buf + off, n);
		}
		if (r < 0)
			return (int)i;
		off += n;
	}
	return -1;
}

/* Transfer events for a TD whose data TRBs moved @done bytes (§4.10.1.1):
 * a TRB with IOC, the TRB where a short packet ended the data (if ISP or
 * IOC), Event Data TRBs with IOC (the bytes since the last one). */
static void td_report(struct xhci *x, const struct td *td, uint32_t done,
		      unsigned sid, unsigned dci)
{
	uint32_t edtla = 0;
	bool shorted = false;

	for (unsigned i = 0; i < td->n; i++) {
		const struct td_trb *t = &td->trb[i];
		unsigned type = TRB_TYPE(t->ctl);

		if (is_data(type)) {
			uint32_t len = trb_len(t), got = done < len ? done : len;

			done -= got;
			edtla += got;
			if (shorted)
				continue;
			if (got < len) {
				shorted = true;
				if (t->ctl & (TRB_ISP | TRB_IOC))
					xfer_event(x, t->addr, CC_SHORT_PACKET,
						   len - got, sid, dci, false);
			} else if (t->ctl & TRB_IOC) {
				xfer_event(x, t->addr, CC_SUCCESS, 0, sid, dci,
					   false);
			}
		} else if (type == TRB_EVENT_DATA) {
			if (t->ctl & TRB_IOC)
				xfer_event(x, t->param,
					   shorted ? CC_SHORT_PACKET : CC_SUCCESS,
					   edtla, sid, dci, true);
			edtla = 0;
		} else if (t->ctl & TRB_IOC) {	/* Setup, Status, No Op */
			xfer_event(x, t->addr, CC_SUCCESS, 0, sid, dci, false);
		}
	}
}

enum run_result { RUN_DONE, RUN_NAK, RUN_HALT, RUN_ASYNC };

/* A stall or a vanished device: report at @t, halt the endpoint. */
static enum run_result td_halt(struct xhci *x, const struct td_trb *t,
			       enum xhci_cc cc, unsigned sid, unsigned dci)
{
	xfer_event(x, t->addr, cc, trb_len(t), sid, dci, false);
	x->slot[sid].ep[dci].state = XHCI_EP_HALTED;
	return RUN_HALT;
}

/* The completion code of a device's error answer. */
static enum xhci_cc err_cc(int r)
{
	switch (r) {
	case USB_RET_STALL:
		return CC_STALL;
	case USB_RET_BABBLE:
		return CC_BABBLE;
	default:			/* gone, I/O error, a bogus code */
		return CC_TRANSACTION;
	}
}

static const struct td_trb *first_data(const struct td *td)
{
	for (unsigned i = 0; i < td->n; i++)
		if (is_data(TRB_TYPE(td->trb[i].ctl)))
			return &td->trb[i];
	return NULL;
}

/* A new asynchronous transfer of @len bytes for slot @sid's @dci. */
static struct xhci_xfer *xfer_new(struct xhci *x, struct usb_device *dev,
				  const struct td *td, unsigned sid,
				  unsigned dci, size_t len)
{
	struct xhci_xfer *p = calloc(1, sizeof(*p) + (len ? len : 1));

	if (!p)
		return NULL;
	p->x = x;
	p->sid = sid;
	p->dci = dci;
	p->td = *td;
	p->u.dev = dev;
	p->u.ep = dci / 2;
	p->u.in = dci == 1 ? false : dci & 1;
	p->u.buf = p->data;
	p->u.len = len;
	return p;
}

/* After the device answered a control TD: its events.  @r: IN bytes,
 * 0 or an error; @n: the data stage's length. */
static enum run_result control_finish(struct xhci *x, const struct td *td,
				      unsigned sid, bool in, uint32_t n,
				      const uint8_t *buf, int r)
{
	const struct td_trb *fd = first_data(td);
	int bad;

	if (r < 0)
		return td_halt(x, fd ? fd : &td->trb[td->n - 1], err_cc(r),
			       sid, 1);
	if (in) {
		n = (uint32_t)r < n ? (uint32_t)r : n;
		if ((bad = td_copy(x, td, (uint8_t *)buf, true, n)) >= 0) {
			xfer_event(x, td->trb[bad].addr, CC_DATA_BUFFER, 0,
				   sid, 1, false);
			return RUN_DONE;
		}
	}
	td_report(x, td, n, sid, 1);
	return RUN_DONE;
}

static enum run_result run_control(struct xhci *x, struct usb_device *dev,
				   const struct td *td, unsigned sid)
{
	const struct td_trb *t0 = &td->trb[0];
	struct usb_setup s;
	uint32_t datalen = 0, n;
	bool in;
	int r, bad;

	if (TRB_TYPE(t0->ctl) != TRB_SETUP || !(t0->ctl & TRB_IDT) ||
	    trb_len(t0) != 8 || td->n < 2 ||
	    TRB_TYPE(td->trb[td->n - 1].ctl) != TRB_STATUS) {
		xfer_event(x, t0->addr, CC_TRB_ERROR, 0, sid, 1, false);
		return RUN_DONE;
	}
	for (unsigned i = 1; i + 1 < td->n; i++) {
		unsigned type = TRB_TYPE(td->trb[i].ctl);

		if ((i == 1 ? type != TRB_DATA : type == TRB_DATA) &&
		    type != TRB_EVENT_DATA && (i == 1 || type != TRB_NORMAL)) {
			xfer_event(x, td->trb[i].addr, CC_TRB_ERROR, 0, sid, 1,
				   false);
			return RUN_DONE;
		}
		if (is_data(type))
			datalen += trb_len(&td->trb[i]);
	}
	s.bmRequestType = (uint8_t)t0->param;
	s.bRequest = (uint8_t)(t0->param >> 8);
	s.wValue = (uint16_t)(t0->param >> 16);
	s.wIndex = (uint16_t)(t0->param >> 32);
	s.wLength = (uint16_t)(t0->param >> 48);
	in = s.bmRequestType & USB_DIR_IN;
	n = s.wLength < datalen ? s.wLength : datalen;
	if (!dev)
		return td_halt(x, &td->trb[td->n - 1], CC_TRANSACTION, sid, 1);
	if (dev->ops->submit) {
		struct xhci_xfer *p = xfer_new(x, dev, td, sid, 1, s.wLength);

		if (!p) {
			xfer_event(x, t0->addr, CC_RESOURCE, 0, sid, 1, false);
			return RUN_DONE;
		}
		p->u.setup = s;
		p->u.in = in;
		p->n = n;
		if (!in && (bad = td_copy(x, td, p->data, false, n)) >= 0) {
			free(p);
			xfer_event(x, td->trb[bad].addr, CC_DATA_BUFFER, 0,
				   sid, 1, false);
			return RUN_DONE;
		}
		r = dev->ops->submit(dev, &p->u);
		if (r == USB_RET_ASYNC) {
			x->pend[sid][1] = p;
			x->stats.xfers_async++;
			return RUN_ASYNC;
		}
		if (r == USB_RET_NAK)		/* not for control: stall */
			r = USB_RET_STALL;
		r = control_finish(x, td, sid, in, n, p->data, r);
		free(p);
		return (enum run_result)r;
	}
	memset(x->buf, 0, s.wLength);
	if (!in && (bad = td_copy(x, td, x->buf, false, n)) >= 0) {
		xfer_event(x, td->trb[bad].addr, CC_DATA_BUFFER, 0, sid, 1,
			   false);
		return RUN_DONE;
	}
	r = dev->ops->control(dev, &s, x->buf);
	return control_finish(x, td, sid, in, n, x->buf, r);
}

/* After the device answered a bulk/interrupt TD of @total bytes. */
static enum run_result normal_finish(struct xhci *x, const struct td *td,
				     unsigned sid, unsigned dci,
				     uint32_t total, const uint8_t *buf, int r)
{
	bool in = dci & 1;
	int bad;

	if (r < 0)
		return td_halt(x, &td->trb[0], err_cc(r), sid, dci);
	if ((uint32_t)r > total)
		r = (int)total;
	if (in && (bad = td_copy(x, td, (uint8_t *)buf, true, (uint32_t)r)) >= 0) {
		xfer_event(x, td->trb[bad].addr, CC_DATA_BUFFER, 0, sid, dci,
			   false);
		return RUN_DONE;
	}
	td_report(x, td, (uint32_t)r, sid, dci);
	return RUN_DONE;
}

static enum run_result run_normal(struct xhci *x, struct usb_device *dev,
				  const struct td *td, unsigned sid,
				  unsigned dci)
{
	const struct xhci_ep *ep = &x->slot[sid].ep[dci];
	bool in = dci & 1;
	uint32_t total = 0;
	int r, bad;

	for (unsigned i = 0; i < td->n; i++) {
		const struct td_trb *t = &td->trb[i];
		unsigned type = TRB_TYPE(t->ctl);

		if (type == TRB_ISOCH || ep->type == XHCI_EPT_ISOCH_IN ||
		    ep->type == XHCI_EPT_ISOCH_OUT) {
			vlog_ratelimited(LOG_WARN, "xhci: isochronous transfers are not implemented");
			xfer_event(x, t->addr, CC_TRB_ERROR, 0, sid, dci, false);
			return RUN_DONE;
		}
		if ((type != TRB_NORMAL && type != TRB_EVENT_DATA &&
		     type != TRB_NOOP) ||
		    (type == TRB_NORMAL && (t->ctl & TRB_IDT) &&
		     (in || trb_len(t) > 8))) {
			xfer_event(x, t->addr, CC_TRB_ERROR, 0, sid, dci, false);
			return RUN_DONE;
		}
		if (type == TRB_NORMAL)
			total += trb_len(t);
	}
	if (total > (dev && dev->ops->submit ? XHCI_ASYNC_TD_MAX_BYTES
					     : XHCI_TD_MAX_BYTES)) {
		vlog_ratelimited(LOG_WARN, "xhci: a TD of %u bytes (at most %u)",
				 total, dev && dev->ops->submit
					? XHCI_ASYNC_TD_MAX_BYTES : XHCI_TD_MAX_BYTES);
		xfer_event(x, td->trb[0].addr, CC_TRB_ERROR, 0, sid, dci, false);
		return RUN_DONE;
	}
	if (!dev)
		return td_halt(x, &td->trb[0], CC_TRANSACTION, sid, dci);
	if (!total && !dev->ops->submit) {	/* a real device gets the ZLP */
		td_report(x, td, 0, sid, dci);
		return RUN_DONE;
	}
	if (dev->ops->submit) {
		struct xhci_xfer *p = xfer_new(x, dev, td, sid, dci, total);
		enum run_result rr;

		if (!p) {
			xfer_event(x, td->trb[0].addr, CC_RESOURCE, 0, sid, dci,
				   false);
			return RUN_DONE;
		}
		p->n = total;
		if (!in && (bad = td_copy(x, td, p->data, false, total)) >= 0) {
			free(p);
			xfer_event(x, td->trb[bad].addr, CC_DATA_BUFFER, 0,
				   sid, dci, false);
			return RUN_DONE;
		}
		r = dev->ops->submit(dev, &p->u);
		if (r == USB_RET_ASYNC) {
			x->pend[sid][dci] = p;
			x->stats.xfers_async++;
			return RUN_ASYNC;
		}
		rr = r == USB_RET_NAK ? RUN_NAK
				      : normal_finish(x, td, sid, dci, total,
						      p->data, r);
		free(p);
		return rr;
	}
	if (!in && (bad = td_copy(x, td, x->buf, false, total)) >= 0) {
		xfer_event(x, td->trb[bad].addr, CC_DATA_BUFFER, 0, sid, dci,
			   false);
		return RUN_DONE;
	}
	r = dev->ops->data(dev, dci / 2, in, x->buf, total);
	if (r == USB_RET_NAK)
		return RUN_NAK;
	return normal_finish(x, td, sid, dci, total, x->buf, r);
}

static struct td *td_scratch(void)
{
	static __thread struct td td;	/* 12 KiB: off the stack */

	return &td;
}

static void ep_run(struct xhci *x, unsigned sid, unsigned dci)
{
	struct xhci_slot *s = &x->slot[sid];
	struct xhci_ep *ep = &s->ep[dci];
	struct usb_device *dev = s->port ? x->port[s->port].dev : NULL;
	struct td *td = td_scratch();
	unsigned budget = XHCI_RING_BUDGET;

	if (x->busy)
		return;
	x->busy = true;
	/* One TD in flight per endpoint: its completion runs the rest. */
	while (running(x) && ep->state == XHCI_EP_RUNNING &&
	       !x->pend[sid][dci]) {
		enum td_result g = td_gather(x, ep, dci == 1, td, &budget);
		enum run_result r;

		if (g == TD_EMPTY || g == TD_INCOMPLETE)
			break;
		if (g == TD_FAULT) {
			hc_error(x, "transfer ring outside RAM", td->bad);
			break;
		}
		if (g == TD_HALT) {
			vlog_ratelimited(LOG_WARN, "xhci: slot %u endpoint %u: a loop of Link TRBs or an overlong TD",
					 sid, dci);
			xfer_event(x, td->bad, CC_TRB_ERROR, 0, sid, dci, false);
			ep->state = XHCI_EP_HALTED;
			out_ep_update(x, s, dci, NULL);
			break;
		}
		if (s->port && !(x->port[s->port].portsc & XHCI_PORT_PED))
			dev = NULL;	/* unplugged or disabled */
		r = dci == 1 ? run_control(x, dev, td, sid)
			     : run_normal(x, dev, td, sid, dci);
		if (r == RUN_NAK || r == RUN_ASYNC)
			break;	/* the dequeue pointer stays on the TD */
		ep->deq = td->end_deq;
		ep->dcs = td->end_cycle;
		if (r == RUN_HALT) {
			out_ep_update(x, s, dci, NULL);
			break;
		}
	}
	x->busy = false;
}

/* ---- asynchronous transfers (usb_device_ops.submit) ----------------------- */

/* Abandon the TD in flight on slot @sid's @dci, if any: the device lets
 * go of it, the dequeue pointer stays on the TD (it runs again when the
 * endpoint restarts).  @stopped: report it as Stopped (§4.6.9). */
static void xfer_cancel(struct xhci *x, unsigned sid, unsigned dci,
			bool stopped)
{
	struct xhci_xfer *p = x->pend[sid][dci];

	if (!p)
		return;
	x->pend[sid][dci] = NULL;
	if (p->u.dev->ops->cancel)
		p->u.dev->ops->cancel(p->u.dev, &p->u);
	x->stats.xfers_cancelled++;
	if (stopped) {
		const struct td_trb *t = first_data(&p->td);

		if (!t)
			t = &p->td.trb[0];
		xfer_event(x, t->addr, CC_STOPPED, trb_len(t), sid, dci,
			   false);
	}
	free(p);
}

static void slot_cancel(struct xhci *x, unsigned sid, unsigned from)
{
	for (unsigned dci = from; dci < 32; dci++)
		xfer_cancel(x, sid, dci, false);
}

static void cancel_all(struct xhci *x)
{
	for (unsigned sid = 1; sid <= XHCI_MAX_SLOTS; sid++)
		slot_cancel(x, sid, 1);
}

static void port_cancel(struct xhci *x, unsigned port)
{
	for (unsigned sid = 1; sid <= XHCI_MAX_SLOTS; sid++)
		if (x->slot[sid].enabled && x->slot[sid].port == port)
			slot_cancel(x, sid, 1);
}

static void host_complete(void *host, struct usb_xfer *xfer, int result)
{
	struct xhci *x = host;
	struct xhci_xfer *p = (struct xhci_xfer *)((char *)xfer -
						   offsetof(struct xhci_xfer, u));
	unsigned sid = p->sid, dci = p->dci;
	struct xhci_slot *s;
	struct xhci_ep *ep;
	enum run_result r;

	if (p->x != x || sid < 1 || sid > XHCI_MAX_SLOTS || dci < 1 ||
	    dci > 31 || x->pend[sid][dci] != p) {
		vlog_ratelimited(LOG_WARN, "xhci: a completion for a transfer not in flight (device bug)");
		return;
	}
	x->pend[sid][dci] = NULL;
	s = &x->slot[sid];
	ep = &s->ep[dci];
	if (!running(x) || ep->state != XHCI_EP_RUNNING) {
		/* Halted or stopped meanwhile without a cancel: the TD stays
		 * and runs again on the endpoint's next doorbell. */
		free(p);
		return;
	}
	if (result >= 0 && (size_t)result > p->u.len)
		result = (int)p->u.len;
	r = dci == 1 ? control_finish(x, &p->td, sid, p->u.in, p->n, p->data,
				      result)
		     : normal_finish(x, &p->td, sid, dci, p->n, p->data,
				     result);
	ep->deq = p->td.end_deq;
	ep->dcs = p->td.end_cycle;
	free(p);
	if (r == RUN_HALT) {
		out_ep_update(x, s, dci, NULL);
		return;
	}
	ep_run(x, sid, dci);
}

static void doorbell(struct xhci *x, unsigned n, uint32_t val)
{
	unsigned target = val & 0xff;
	struct xhci_slot *s;

	if (!running(x))
		return;
	if (!n) {
		if (!target)
			cmd_ring_run(x);
		return;
	}
	s = &x->slot[n];
	if (n > max_slots_en(x) || !s->enabled || !target || target > 31 ||
	    s->ep[target].state == XHCI_EP_DISABLED) {
		vlog_ratelimited(LOG_WARN, "xhci: doorbell %u target %u: no such enabled endpoint",
				 n, target);
		return;
	}
	if (s->ep[target].state == XHCI_EP_STOPPED)
		s->ep[target].state = XHCI_EP_RUNNING;
	ep_run(x, n, target);
}

/* ---- the devices' side ----------------------------------------------------- */

static unsigned slot_of(struct xhci *x, struct usb_device *dev)
{
	for (unsigned p = 1; p <= XHCI_MAX_PORTS; p++) {
		if (x->port[p].dev != dev)
			continue;
		for (unsigned i = 1; i <= XHCI_MAX_SLOTS; i++)
			if (x->slot[i].enabled && x->slot[i].port == p &&
			    x->slot[i].state != XHCI_SLOT_ENABLED)
				return i;
	}
	return 0;
}

static void host_wakeup(void *host, struct usb_device *dev, unsigned ep)
{
	struct xhci *x = host;
	unsigned sid = slot_of(x, dev), dci = 2 * ep + 1;

	if (sid && ep >= 1 && ep <= 15 &&
	    x->slot[sid].ep[dci].state == XHCI_EP_RUNNING)
		ep_run(x, sid, dci);
}

static bool host_ep_running(void *host, struct usb_device *dev, unsigned ep)
{
	struct xhci *x = host;
	unsigned sid = slot_of(x, dev);

	return running(x) && sid && ep >= 1 && ep <= 15 &&
	       x->slot[sid].state == XHCI_SLOT_CONFIGURED &&
	       x->slot[sid].ep[2 * ep + 1].state == XHCI_EP_RUNNING;
}

static unsigned port_of(struct xhci *x, struct usb_device *dev)
{
	for (unsigned p = 1; p <= XHCI_MAX_PORTS; p++)
		if (x->port[p].dev == dev)
			return p;
	return 0;
}

static void host_unplug(void *host, struct usb_device *dev)
{
	struct xhci *x = host;
	unsigned p = port_of(x, dev);

	if (p)
		xhci_detach(x, p);
}

static const struct usb_host_ops host_ops = {
	.wakeup = host_wakeup,
	.ep_running = host_ep_running,
	.complete = host_complete,
	.unplug = host_unplug,
};

int xhci_attach(struct xhci *x, unsigned port, struct usb_device *dev)
{
	if (!port || port > XHCI_MAX_PORTS || !dev ||
	    port_usb3(port) != (dev->speed == USB_SPEED_SUPER))
		return -EINVAL;
	if (x->port[port].dev)
		return -EBUSY;
	x->port[port].dev = dev;
	dev->host_ops = &host_ops;
	dev->host = x;
	dev->ops->reset(dev);
	port_connect(x, port);
	port_notify(x, port);
	return 0;
}

void xhci_detach(struct xhci *x, unsigned port)
{
	struct usb_device *dev;

	if (!port || port > XHCI_MAX_PORTS || !(dev = x->port[port].dev))
		return;
	port_cancel(x, port);
	dev->host_ops = NULL;
	dev->host = NULL;
	x->port[port].dev = NULL;
	port_connect(x, port);
	x->port[port].portsc |= XHCI_PORT_CSC;
	port_notify(x, port);
}

/* ---- registers ------------------------------------------------------------- */

static uint32_t ext_caps_read(uint64_t off)
{
	/* Two Supported Protocol capabilities (§7.2), 16 bytes each. */
	static const uint32_t caps[8] = {
		0x02000402,		/* USB 2.0, next +4 dwords */
		0x20425355,		/* "USB " */
		XHCI_PORTS_USB2 << 8 | 1,
		0,
		0x03000002,		/* USB 3.0, last */
		0x20425355,
		XHCI_PORTS_USB3 << 8 | (XHCI_PORTS_USB2 + 1),
		0,
	};

	off -= XHCI_XECP;
	return off / 4 < 8 ? caps[off / 4] : 0;
}

static uint32_t reg_read(struct xhci *x, uint64_t off)
{
	switch (off) {
	case XHCI_CAP_CAPLENGTH:
		return 0x01000000 | XHCI_OP;	/* HCIVERSION 1.0.0 */
	case XHCI_CAP_HCSPARAMS1:
		return (uint32_t)XHCI_MAX_PORTS << 24 | 1u << 8 | XHCI_MAX_SLOTS;
	case XHCI_CAP_HCSPARAMS2:
		return 4u << 4;			/* ERST Max 2^4, IST 0 */
	case XHCI_CAP_HCSPARAMS3:
		return 0;
	case XHCI_CAP_HCCPARAMS1:
		/* AC64, xECP; no contexts of 64 bytes, no streams. */
		return (XHCI_XECP / 4) << 16 | 1;
	case XHCI_CAP_DBOFF:
		return XHCI_DB;
	case XHCI_CAP_RTSOFF:
		return XHCI_RT;
	case XHCI_CAP_HCCPARAMS2:
		return 0;
	case XHCI_OP_USBCMD:
		return x->usbcmd;
	case XHCI_OP_USBSTS:
		return x->usbsts;
	case XHCI_OP_PAGESIZE:
		return 1;			/* 4 KiB */
	case XHCI_OP_DNCTRL:
		return x->dnctrl;
	case XHCI_OP_CRCR:
		return x->crr ? (uint32_t)XHCI_CRCR_CRR : 0;
	case XHCI_OP_CRCR + 4:
		return 0;
	case XHCI_OP_DCBAAP:
		return (uint32_t)x->dcbaap;
	case XHCI_OP_DCBAAP + 4:
		return (uint32_t)(x->dcbaap >> 32);
	case XHCI_OP_CONFIG:
		return x->config;
	case XHCI_RT_MFINDEX: {
		struct timespec ts;

		if (!running(x))
			return 0;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		return (uint32_t)(((uint64_t)ts.tv_sec * 8000 +
				   (uint64_t)ts.tv_nsec / 125000) & 0x3fff);
	}
	case XHCI_RT_IR0 + XHCI_IR_IMAN:
		return x->iman;
	case XHCI_RT_IR0 + XHCI_IR_IMOD:
		return x->imod;
	case XHCI_RT_IR0 + XHCI_IR_ERSTSZ:
		return x->erstsz;
	case XHCI_RT_IR0 + XHCI_IR_ERSTBA:
		return (uint32_t)x->erstba;
	case XHCI_RT_IR0 + XHCI_IR_ERSTBA + 4:
		return (uint32_t)(x->erstba >> 32);
	case XHCI_RT_IR0 + XHCI_IR_ERDP:
		return (uint32_t)x->erdp;
	case XHCI_RT_IR0 + XHCI_IR_ERDP + 4:
		return (uint32_t)(x->erdp >> 32);
	}
	if (off >= XHCI_OP_PORTSC(1) && off < XHCI_OP_PORTSC(XHCI_MAX_PORTS + 1))
		return (off & 0xf) ? 0 : x->port[(off - XHCI_OP_PORTSC(1)) / 16 + 1].portsc;
	if (off >= XHCI_XECP)
		return ext_caps_read(off);
	return 0;	/* doorbells and reserved space read 0 */
}

static void usbcmd_write(struct xhci *x, uint32_t v)
{
	uint32_t old = x->usbcmd;

	if (v & XHCI_CMD_HCRST) {
		xhci_reset(x);
		return;
	}
	x->usbcmd = v & 0x3f0d;		/* RS, INTE, HSEE, EWE...CME */
	if ((v & XHCI_CMD_RS) && !(old & XHCI_CMD_RS) &&
	    !(x->usbsts & XHCI_STS_HCE)) {
		x->usbsts &= ~XHCI_STS_HCH;
	} else if (!(v & XHCI_CMD_RS) && (old & XHCI_CMD_RS)) {
		x->usbsts |= XHCI_STS_HCH;
		x->crr = false;
	}
	irq_update(x);
}

static void crcr_write(struct xhci *x, bool hi, uint32_t v)
{
	/* A 64-bit stop or abort (lo then hi, as Linux's xhci_write_64)
	 * carries the read-back pointer (0): its high half must not land
	 * on the pointer of the ring that has just stopped. */
	if (hi && x->crcr_hi_skip) {
		x->crcr_hi_skip = false;
		return;
	}
	x->crcr_hi_skip = false;
	if (x->crr) {
		/* Running: only Command Stop / Abort act (§5.4.5). */
		if (!hi && (v & (XHCI_CRCR_CS | XHCI_CRCR_CA))) {
			x->crr = false;
			x->crcr_hi_skip = true;
			cmd_event(x, x->cmd_deq, 24 /* Command Ring Stopped */, 0);
		}
		return;
	}
	if (hi) {
		x->cmd_deq = (x->cmd_deq & 0xffffffffull) | (uint64_t)v << 32;
	} else {
		x->cmd_deq = (x->cmd_deq & ~0xffffffffull) | (v & ~0x3fu);
		x->ccs = v & XHCI_CRCR_RCS;
	}
}

static void reg_write(struct xhci *x, uint64_t off, uint32_t v)
{
	switch (off) {
	case XHCI_OP_USBCMD:
		usbcmd_write(x, v);
		return;
	case XHCI_OP_USBSTS:
		x->usbsts &= ~(v & (XHCI_STS_HSE | XHCI_STS_EINT |
				    XHCI_STS_PCD | (1u << 10)));
		return;
	case XHCI_OP_DNCTRL:
		x->dnctrl = v & 0xffff;
		return;
	case XHCI_OP_CRCR:
	case XHCI_OP_CRCR + 4:
		crcr_write(x, off != XHCI_OP_CRCR, v);
		return;
	case XHCI_OP_DCBAAP:
		x->dcbaap = (x->dcbaap & ~0xffffffffull) | (v & ~0x3fu);
		return;
	case XHCI_OP_DCBAAP + 4:
		x->dcbaap = (x->dcbaap & 0xffffffffull) | (uint64_t)v << 32;
		return;
	case XHCI_OP_CONFIG:
		x->config = v & 0x3ff;
		return;
	case XHCI_RT_IR0 + XHCI_IR_IMAN:
		x->iman = (x->iman & ~(v & XHCI_IMAN_IP) & ~XHCI_IMAN_IE) |
			  (v & XHCI_IMAN_IE);
		irq_update(x);
		return;
	case XHCI_RT_IR0 + XHCI_IR_IMOD:
		x->imod = v;
		return;
	case XHCI_RT_IR0 + XHCI_IR_ERSTSZ:
		x->erstsz = v & 0xffff;
		return;
	case XHCI_RT_IR0 + XHCI_IR_ERSTBA:
		x->erstba = (x->erstba & ~0xffffffffull) | (v & ~0x3fu);
		return;
	case XHCI_RT_IR0 + XHCI_IR_ERSTBA + 4:
		/* The high half completes the address: read the table. */
		x->erstba = (x->erstba & 0xffffffffull) | (uint64_t)v << 32;
		er_setup(x);
		return;
	case XHCI_RT_IR0 + XHCI_IR_ERDP: {
		bool clear_ehb = v & XHCI_ERDP_EHB;

		x->erdp = (x->erdp & ~0xffffffffull) | (v & ~0xfu & ~7u) |
			  (v & 7) | (x->erdp & XHCI_ERDP_EHB);
		if (clear_ehb) {
			x->erdp &= ~XHCI_ERDP_EHB;
			if (!er_empty(x))	/* events came meanwhile */
				irq_raise(x);
		}
		return;
	}
	case XHCI_RT_IR0 + XHCI_IR_ERDP + 4:
		x->erdp = (x->erdp & 0xffffffffull) | (uint64_t)v << 32;
		return;
	}
	if (off >= XHCI_OP_PORTSC(1) &&
	    off < XHCI_OP_PORTSC(XHCI_MAX_PORTS + 1)) {
		if (!(off & 0xf))
			port_write(x, (unsigned)(off - XHCI_OP_PORTSC(1)) / 16 + 1, v);
		return;
	}
	if (off >= XHCI_DB && off < XHCI_DB + 4 * (XHCI_MAX_SLOTS + 1))
		doorbell(x, (unsigned)(off - XHCI_DB) / 4, v);
}

uint64_t xhci_mmio_read(struct xhci *x, uint64_t off, unsigned size)
{
	uint64_t v;

	if (off >= XHCI_BAR_SIZE || size > 8 || off + size > XHCI_BAR_SIZE)
		return ~0ull;
	if (size == 8 && !(off & 7))
		return reg_read(x, off) | (uint64_t)reg_read(x, off + 4) << 32;
	if ((off & 3) + size > 4)
		return ~0ull >> (64 - 8 * size);
	v = reg_read(x, off & ~3ull) >> (8 * (off & 3));
	return size == 4 ? v : v & ((1ull << (8 * size)) - 1);
}

void xhci_mmio_write(struct xhci *x, uint64_t off, uint64_t val,
		     unsigned size)
{
	if (off >= XHCI_BAR_SIZE || off + size > XHCI_BAR_SIZE)
		return;
	if (size == 8 && !(off & 7)) {	/* low half first, as lo_hi_writeq */
		reg_write(x, off, (uint32_t)val);
		reg_write(x, off + 4, (uint32_t)(val >> 32));
	} else if (size == 4 && !(off & 3)) {
		reg_write(x, off, (uint32_t)val);
	} else {
		vlog_ratelimited(LOG_WARN, "xhci: %u-byte write at %#llx ignored (registers are dwords)",
				 size, (unsigned long long)off);
	}
}

static uint64_t bar_read(void *opaque, uint64_t off, unsigned size)
{
	return xhci_mmio_read(opaque, off, size);
}

static void bar_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
	xhci_mmio_write(opaque, off, val, size);
}

static const struct bus_ops bar_ops = {
	.name = "xhci",
	.read = bar_read,
	.write = bar_write,
};

/* ---- lifecycle --------------------------------------------------------------- */

void xhci_reset(struct xhci *x)
{
	x->usbcmd = 0;
	x->usbsts = XHCI_STS_HCH;
	x->dnctrl = x->config = 0;
	x->cmd_deq = 0;
	x->crr = x->ccs = x->crcr_hi_skip = false;
	x->dcbaap = 0;
	x->iman = 0;
	x->imod = 4000;			/* 1 ms, the reset value */
	x->erstsz = 0;
	x->erstba = x->erdp = 0;
	x->nsegs = x->er_seg = x->er_idx = 0;
	x->er_pcs = true;
	cancel_all(x);
	memset(x->slot, 0, sizeof(x->slot));
	for (unsigned p = 1; p <= XHCI_MAX_PORTS; p++) {
		if (x->port[p].dev)
			x->port[p].dev->ops->reset(x->port[p].dev);
		port_connect(x, p);
	}
	pci_set_irq(&x->pci, 0);
}

static void msix_changed(struct pci_device *dev)
{
	irq_update(dev->opaque);
}

struct xhci *xhci_new(const struct xhci_config *cfg, char *err,
		      size_t errlen)
{
	struct xhci *x = calloc(1, sizeof(*x));
	int r;

	if (!x) {
		snprintf(err, errlen, "xhci: out of memory");
		return NULL;
	}
	x->mem = cfg->mem;
	pci_device_init(&x->pci, XHCI_PCI_VENDOR, XHCI_PCI_DEVICE, 1,
			XHCI_CLASS, 0x1af4, 0x1100, 1);
	x->pci.opaque = x;
	x->pci.msix_changed = msix_changed;
	x->pci.config[0x60] = 0x30;	/* SBRN: USB 3.0 (§5.2.3) */
	x->pci.config[0x61] = 0x20;	/* FLADJ default */
	if (pci_device_set_bar(&x->pci, 0, PCI_BAR_MEM64, XHCI_BAR_SIZE,
			       false, &bar_ops, x) < 0 ||
	    pci_msix_init(&x->pci, MSIX_CAP_OFF, 1, XHCI_MSIX_BAR) < 0) {
		snprintf(err, errlen, "xhci: cannot set up BARs");
		pci_device_cleanup(&x->pci);
		free(x);
		return NULL;
	}
	if (cfg->hid) {
		x->has_hid = true;
		usb_hid_init(&x->hid[USB_HID_TABLET], USB_HID_TABLET);
		usb_hid_init(&x->hid[USB_HID_KEYBOARD], USB_HID_KEYBOARD);
		xhci_attach(x, 1, &x->hid[USB_HID_TABLET].dev);
		xhci_attach(x, 2, &x->hid[USB_HID_KEYBOARD].dev);
	}
	xhci_reset(x);
	r = pci_add_device(cfg->pci, &x->pci, cfg->devfn);
	if (r < 0) {
		snprintf(err, errlen, "xhci: PCI %02x.%x: %s", cfg->devfn >> 3,
			 cfg->devfn & 7,
			 r == -EEXIST ? "slot in use" : "cannot add");
		pci_device_cleanup(&x->pci);
		free(x);
		return NULL;
	}
	return x;
}

void xhci_free(struct xhci *x)
{
	if (!x)
		return;
	cancel_all(x);
	for (unsigned p = 1; p <= XHCI_MAX_PORTS; p++)
		if (x->port[p].dev) {
			x->port[p].dev->host_ops = NULL;
			x->port[p].dev->host = NULL;
		}
	pci_device_cleanup(&x->pci);
	free(x);
}

struct usb_hid *xhci_hid(struct xhci *x, int kind)
{
	return x->has_hid && (kind == USB_HID_TABLET || kind == USB_HID_KEYBOARD)
	       ? &x->hid[kind] : NULL;
}

void xhci_get_stats(const struct xhci *x, struct xhci_stats *out)
{
	*out = x->stats;
}

/* ---- save/load ----------------------------------------------------------------- */

static GVariant *xhci_save(void *opaque)
{
	struct xhci *x = opaque;
	GVariantBuilder segs, ports, slots;

	g_variant_builder_init(&segs, G_VARIANT_TYPE("a(tu)"));
	for (unsigned i = 0; i < x->nsegs; i++)
		g_variant_builder_add(&segs, "(tu)", x->seg_base[i],
				      x->seg_size[i]);
	g_variant_builder_init(&ports, G_VARIANT_TYPE("a(uay)"));
	for (unsigned p = 1; p <= XHCI_MAX_PORTS; p++) {
		struct usb_device *d = x->port[p].dev;
		uint8_t st[USB_STATE_MAX];
		size_t n = d && d->ops->save ? d->ops->save(d, st) : 0;

		g_variant_builder_add(&ports, "(u@ay)", x->port[p].portsc,
				      g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE,
								st, n, 1));
	}
	g_variant_builder_init(&slots, G_VARIANT_TYPE("a(byyyta(yytbq))"));
	for (unsigned i = 1; i <= XHCI_MAX_SLOTS; i++) {
		struct xhci_slot *s = &x->slot[i];
		GVariantBuilder eps;

		g_variant_builder_init(&eps, G_VARIANT_TYPE("a(yytbq)"));
		for (unsigned e = 1; e < 32; e++)
			g_variant_builder_add(&eps, "(yytbq)", s->ep[e].state,
					      s->ep[e].type, s->ep[e].deq,
					      (gboolean)s->ep[e].dcs,
					      s->ep[e].mps);
		g_variant_builder_add(&slots, "(byyyta(yytbq))",
				      (gboolean)s->enabled, s->state, s->port,
				      s->addr, s->ctx, &eps);
	}
	return g_variant_new(XHCI_STATE_TYPE, x->usbcmd, x->usbsts, x->dnctrl,
			     x->config, x->cmd_deq, (gboolean)x->crr,
			     (gboolean)x->ccs, x->dcbaap, x->iman, x->imod,
			     x->erstsz, x->erstba, x->erdp, x->er_seg,
			     x->er_idx, (gboolean)x->er_pcs, &segs, &ports,
			     &slots);
}

#define FAIL(...) device_load_fail(err, errlen, "xhci: " __VA_ARGS__)

static int xhci_load(void *opaque, uint32_t version, GVariant *state,
		     char *err, size_t errlen)
{
	struct xhci *x = opaque;
	struct xhci *t;
	GVariant *segs, *ports, *slots;
	gboolean crr, ccs, pcs;
	int r = 0;

	r = device_state_check("xhci", version, xhci_device_ops.state_version,
			       state, XHCI_STATE_TYPE, err, errlen);
	if (r < 0)
		return r;
	t = malloc(sizeof(*t));
	if (!t)
		return FAIL("out of memory");
	memcpy(t, x, offsetof(struct xhci, has_hid));
	g_variant_get(state, "(uuuutbbtuuuttuub@a(tu)@a(uay)@a(byyyta(yytbq)))",
		      &t->usbcmd, &t->usbsts,
		      &t->dnctrl, &t->config, &t->cmd_deq, &crr, &ccs,
		      &t->dcbaap, &t->iman, &t->imod, &t->erstsz, &t->erstba,
		      &t->erdp, &t->er_seg, &t->er_idx, &pcs, &segs, &ports,
		      &slots);
	t->crr = crr;
	t->ccs = ccs;
	t->er_pcs = pcs;
	t->nsegs = (unsigned)g_variant_n_children(segs);
	if (t->nsegs > XHCI_ERST_MAX || t->erstsz > 0xffff) {
		r = FAIL("%u event ring segments (at most %u)", t->nsegs,
			 XHCI_ERST_MAX);
		goto out;
	}
	for (unsigned i = 0; i < t->nsegs; i++) {
		g_variant_get_child(segs, i, "(tu)", &t->seg_base[i],
				    &t->seg_size[i]);
		if (t->seg_size[i] < 16 || t->seg_size[i] > 4096 ||
		    (t->seg_base[i] & 0x3f)) {
			r = FAIL("event ring segment %u of %u TRBs", i,
				 t->seg_size[i]);
			goto out;
		}
	}
	if (t->nsegs ? t->er_seg >= t->nsegs ||
		       t->er_idx >= t->seg_size[t->er_seg]
		     : t->er_seg || t->er_idx) {
		r = FAIL("event ring enqueue point %u/%u out of range",
			 t->er_seg, t->er_idx);
		goto out;
	}
	if (g_variant_n_children(ports) != XHCI_MAX_PORTS ||
	    g_variant_n_children(slots) != XHCI_MAX_SLOTS) {
		r = FAIL("%zu ports and %zu slots, not %u and %u",
			 (size_t)g_variant_n_children(ports),
			 (size_t)g_variant_n_children(slots), XHCI_MAX_PORTS,
			 XHCI_MAX_SLOTS);
		goto out;
	}
	for (unsigned p = 1; p <= XHCI_MAX_PORTS; p++) {
		GVariant *st;

		g_variant_get_child(ports, p - 1, "(u@ay)", &t->port[p].portsc,
				    &st);
		if (!!(t->port[p].portsc & XHCI_PORT_CCS) != !!x->port[p].dev) {
			g_variant_unref(st);
			r = FAIL("port %u: a device %s, this machine %s", p,
				 t->port[p].portsc & XHCI_PORT_CCS ? "connected" : "absent",
				 x->port[p].dev ? "has one" : "has none");
			goto out;
		}
		g_variant_unref(st);
	}
	for (unsigned i = 1; i <= XHCI_MAX_SLOTS; i++) {
		struct xhci_slot *s = &t->slot[i];
		gboolean en;
		GVariant *eps;

		g_variant_get_child(slots, i - 1, "(byyyt@a(yytbq))", &en,
				    &s->state, &s->port, &s->addr, &s->ctx, &eps);
		s->enabled = en;
		if (g_variant_n_children(eps) != 31 ||
		    s->state > XHCI_SLOT_CONFIGURED ||
		    s->port > XHCI_MAX_PORTS || (!en && s->state)) {
			g_variant_unref(eps);
			r = FAIL("slot %u: bad state", i);
			goto out;
		}
		for (unsigned e = 1; e < 32; e++) {
			struct xhci_ep *ep = &s->ep[e];
			gboolean dcs;

			g_variant_get_child(eps, e - 1, "(yytbq)", &ep->state,
					    &ep->type, &ep->deq, &dcs,
					    &ep->mps);
			ep->dcs = dcs;
			if (ep->state > XHCI_EP_ERROR || ep->type > 7 ||
			    (ep->deq & 0xf)) {
				g_variant_unref(eps);
				r = FAIL("slot %u endpoint %u: bad state", i, e);
				goto out;
			}
		}
		g_variant_unref(eps);
	}
	/* The devices' own state last: nothing of ours is left to refuse. */
	for (unsigned p = 1; p <= XHCI_MAX_PORTS; p++) {
		struct usb_device *d = x->port[p].dev;
		GVariant *st;
		const uint8_t *b;
		gsize n;

		if (!d)
			continue;
		g_variant_get_child(ports, p - 1, "(u@ay)", NULL, &st);
		b = g_variant_get_fixed_array(st, &n, 1);
		if (d->ops->load && (n > USB_STATE_MAX ||
				     d->ops->load(d, b, n) < 0)) {
			g_variant_unref(st);
			r = FAIL("port %u: the %s's state is not valid", p,
				 d->ops->name);
			goto out;
		}
		g_variant_unref(st);
	}
	cancel_all(x);
	memcpy(x, t, offsetof(struct xhci, has_hid));
	x->busy = false;
	irq_update(x);
out:
	g_variant_unref(segs);
	g_variant_unref(ports);
	g_variant_unref(slots);
	free(t);
	return r;
}

static void dev_reset(void *opaque)
{
	xhci_reset(opaque);
}

static void dev_free(void *opaque)
{
	xhci_free(opaque);
}

const struct device_ops xhci_device_ops = {
	.name = "xhci",
	.reset = dev_reset,
	.save = xhci_save,
	.load = xhci_load,
	.state_version = 1,
	.free = dev_free,
};
