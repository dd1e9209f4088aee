/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/devices/e1000.h - the Intel 82540EM gigabit Ethernet controller
 * ("e1000"), PCI 8086:100e, class 0x020000, subsystem 8086:001e: the NIC
 * Windows, the BSDs and every Linux ship a driver for.  References are to
 * Intel's "PCI/PCI-X Family of Gigabit Ethernet Controllers Software
 * Developer's Manual" (8254x SDM, rev. 4.0).
 *
 * PCI: BAR0 the 128 KiB register space (MEM32), BAR1 the I/O window
 * (8 bytes: IOADDR at 0, IODATA at 4, the SDM's I/O-mapped register
 * access: Linux resets the chip through it), INTA#.  Registers take aligned 32-bit accesses (a 64-bit
 * one is two, low first); narrower writes are dropped, narrower reads see
 * the bytes of a full read.  Unknown registers read 0 and ignore writes.
 *
 * What is implemented (SDM §13 for the registers):
 *  - CTRL (RST resets the MAC, PHY_RST the PHY), STATUS (LU from the
 *    backend's cable and the PHY's power-down bit, full duplex, 1000 Mb/s),
 *    EECD (the 64-word Microwire EEPROM bit-banged, SDM §5: MAC in words
 *    0-2, IDs, checksum word 0x3f making the sum 0xbaba; READ only, writes
 *    are ignored as on a write-protected part) and EERD (82540 layout:
 *    START bit 0, DONE bit 4, ADDR 15:8, DATA 31:16; completes at once).
 *  - MDIC: a Marvell 88E1011 PHY at MDIO address 1 (ID 0x0141/0x0c20):
 *    control (soft reset and autonegotiation restart self-clear; power
 *    down takes the link down), status (link, autonegotiation complete),
 *    advertisement, link partner ability, 1000BASE-T control/status,
 *    extended status, the M88 specific control/status; completes at once
 *    (READY, ERROR for another PHY address, MDAC if asked).
 *  - Interrupts (ICR read-to-clear, ICS, IMS, IMC): INTA# is ICR & IMS.
 *    Causes: TXDW, TXQE, LSC, RXDMT0, RXT0, MDAC (others only via ICS).
 *    ITR is honoured on the machine's virtual clock: an assertion comes at
 *    least ITR x 256 ns after the previous one (a timer on @timers; without
 *    timers no throttling).  The delay timers RDTR/RADV/TIDV/TADV are kept
 *    but not run: their interrupts come at once, ITR moderates them (what
 *    SDM §13.4.30-31 itself recommends).
 *  - Receive (SDM §3.2): legacy descriptors, buffers of RCTL.BSIZE/BSEX,
 *    a frame over several descriptors (EOP on the last), status DD/EOP/
 *    IXSM (no receive checksum offload: the driver is told to ignore it),
 *    the FCS appended unless RCTL.SECRC (Linux strips 4 bytes), short
 *    frames padded to 60 bytes as a wire delivers them, long frames
 *    dropped without RCTL.LPE (> 1522 bytes with FCS), VLAN tags stripped
 *    into the descriptor when CTRL.VME (status VP).  Filters: RAL/RAH[16]
 *    (AV, destination address), MTA hash (RCTL.MO), broadcast (BAM),
 *    promiscuous (UPE/MPE), VLAN filter table (RCTL.VFE + VFTA).
 *  - Transmit (SDM §3.3, §3.4): legacy descriptors (with the IC/CSO/CSS
 *    checksum), context descriptors (§3.3.6) and data descriptors (§3.3.7): IP and TCP/UDP
 *    checksums (IPCSS/IPCSO/IPCSE, TUCSS/TUCSO/TUCSE; POPTS.IXSM/TXSM)
 *    computed in software, since backends take complete frames; TCP
 *    segmentation (TSE, SDM §3.5: IPv4 and IPv6, TCP, and UDP by the same
 *    rules) in software too: Linux's e1000 turns NETIF_F_TSO on for the
 *    82540, so 64 KiB TCP packets come down the ring and leave as MSS-sized
 *    frames.  VLAN insertion (VLE with CTRL.VME), short-packet padding
 *    (TCTL.PSP).  Status DD on descriptors with RS, causes TXDW and TXQE.
 *    A context descriptor between a packet's data descriptors drops that
 *    packet (its descriptors complete unsent).
 *  - Statistics (SDM §13.7, read to clear; a 64-bit pair clears when its
 *    high half is read; counters stick at their maximum): GPRC, BPRC,
 *    MPRC, GORC, TOR, TPR, PRC64-PRC1522, RNBC, ROC, GPTC, BPTC, MPTC,
 *    GOTC, TOT, TPT, PTC64-PTC1522, TSCTC; the others read 0.
 *  - Storage only: CTRL_EXT, FCAL/FCAH/FCT/FCTTV/FCRTL/FCRTH, VET, TXCW,
 *    TIPG, AIT, LEDCTL, PBA (the transmit share reads back as 64 KiB
 *    minus the receive one), RXDCTL/TXDCTL, TSPMT, RSRPD, RXCSUM, WUC,
 *    WUFC, WUS, MANC.
 *
 * Threads and locks: register accesses run on vCPU threads with the device
 * lock held; the backend (net.h) calls receive, tx_ready and link_changed
 * with it held; the ITR and transmit-continuation timers run on the timer
 * thread with it held.  Frames go to the backend with net_send(): when it
 * answers -EAGAIN the transmit ring stops where it is (mid-TSO-packet
 * included) and goes on from tx_ready.  A guest with no receive buffers
 * leaves frames in the backend's queue (receive answers 0) until it
 * advances RDT, which calls net_rx_ready().
 *
 * A hostile driver: ring bases and lengths are checked against guest RAM
 * before use (a ring outside RAM, of length 0 or with RDH/RDT/TDH/TDT
 * beyond its end does nothing, with a rate-limited warning); buffers
 * outside RAM are not read (the packet is dropped) or written (the data is
 * lost, the descriptor still completes); every loop is bounded: one pass
 * over the ring per transmit run and at most E1000_TX_BUDGET frames, the
 * rest continuing from a timer (or the next TDT write without timers).
 */
#ifndef VIVARIUM_E1000_H
#define VIVARIUM_E1000_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "../device.h"

struct pci_host;
struct pci_device;
struct guest_mem;
struct vtimer_queue;
struct netdev;
struct e1000;

#define E1000_VENDOR_ID		0x8086
#define E1000_DEVICE_ID		0x100e	/* 82540EM (desktop) */
#define E1000_SUBSYS_ID		0x001e	/* PRO/1000 MT Desktop Adapter */
#define E1000_MMIO_SIZE		0x20000	/* BAR0, bytes */
#define E1000_IO_SIZE		8	/* BAR1, bytes */
#define E1000_EEPROM_WORDS	64
#define E1000_PHY_REGS		32
/* Frames sent (or dropped) per transmit run before it yields. */
#define E1000_TX_BUDGET		256

struct e1000_config {
	struct pci_host *pci;
	uint8_t devfn;			/* slot << 3 | function */
	const struct guest_mem *mem;	/* where rings and buffers live */
	pthread_mutex_t *lock;		/* the machine's device lock */
	/* The machine's timer queue (virtual clock): ITR throttling and
	 * transmit continuation.  NULL: interrupts are not throttled and a
	 * transmit run that used its budget goes on at the next TDT write
	 * or tx_ready (tests, fuzzing). */
	struct vtimer_queue *timers;
	/* The host side; NULL: no cable (link down, frames dropped). */
	struct netdev *backend;
	uint8_t mac[6];			/* the EEPROM's address; not multicast */
};

/*
 * e1000_new - create the controller, put it on @cfg->pci at @cfg->devfn
 * and attach it to @cfg->backend (net_attach()).  Call with the device
 * lock held (net_attach's rule), before the vCPUs run.  Returns the device,
 * or NULL with one line in @err: a devfn already taken, a backend that has
 * a NIC already or another lock, a multicast MAC, out of memory.
 */
struct e1000 *e1000_new(const struct e1000_config *cfg, char *err,
			size_t errlen);
/* Detach from the backend (no callback runs for the device afterwards),
 * take the function off the PCI bus (INTA# released), free.  Device lock
 * held.  NULL is fine. */
void e1000_free(struct e1000 *e);
/* Power-on state: registers, PHY, EEPROM port, transmit context, INTA#
 * low; the link as the backend's cable says.  Device lock held. */
void e1000_reset(struct e1000 *e);
/* The PCI function (for the machine's interrupt wiring, and tests). */
struct pci_device *e1000_pci_device(struct e1000 *e);

/*
 * e1000_receive_frame - a frame from the network (@len bytes, destination
 * MAC first, no FCS), as the backend's receive callback delivers it: for
 * tests and fuzzing.  Device lock held.  Returns @len once the frame is in
 * the guest's buffers or dropped (filters, receiver off, link down, too
 * long), 0 if it must wait for receive buffers (as net.h's receive).
 */
size_t e1000_receive_frame(struct e1000 *e, const void *frame, size_t len);

/*
 * Its lifecycle in the machine's device table (device.h): name "e1000",
 * reset, save, load, free; no quiesce (the backend's callbacks take the
 * device lock, and free detaches first).  state_version 1:
 *
 *  (au  the registers, E1000_STATE_NREGS words in this order: CTRL, EECD
 *       (the bits software drives), EERD, CTRL_EXT, MDIC, FCAL, FCAH, FCT,
 *       VET, ICR, ITR, IMS, RCTL, FCTTV, TXCW, TCTL, TIPG, AIT, LEDCTL, PBA
 *       (receive share), FCRTL, FCRTH, RDBAL, RDBAH, RDLEN, RDH, RDT,
 *       RDTR, RXDCTL, RADV, RSRPD, TDBAL, TDBAH, TDLEN, TDH, TDT, TIDV,
 *       TXDCTL, TADV, TSPMT, the 64 statistics words 0x4000-0x40fc,
 *       RXCSUM, MTA[128], RAL/RAH[16] (32 words), VFTA[128], WUC, WUFC,
 *       WUS, MANC; each refused if it sets bits the register does not
 *       keep;
 *   aq  the 32 PHY registers as kept (computed ones are 0);
 *   aq  the 64 EEPROM words;
 *   (bbyqqyb) the EEPROM's serial port: reading data out, ignoring
 *       until chip select drops (a command other than READ), command bits
 *       shifted in (0-9, start bit first), the command shift register,
 *       the word address (0-63), the next data bit (0-15), the DO level;
 *   (yyqyyquyyq) the transmit context: IPCSS, IPCSO, IPCSE, TUCSS, TUCSO,
 *       TUCSE, PAYLEN (20 bits), TUCMD, HDRLEN, MSS;
 *   u   TCP segments of the packet at TDH already sent (0-65536);
 *   b   INTA# level (refused if set while ICR & IMS is 0);
 *   b   link up as the guest last saw it (STATUS.LU): a load that finds
 *       the backend's cable otherwise raises LSC;
 *   t   virtual-clock time of the last interrupt assertion (ns; all ones
 *       for never): ITR's reference;
 *   u   IOADDR (bits 16:2)).
 *
 * Load drives INTA# to the saved level, re-arms the ITR timer if an
 * assertion was being held back, and restarts transmission if the ring
 * has work (a run held by -EAGAIN would never hear tx_ready from the new
 * backend); frames the backend held for the old receive ring are gone
 * (net_detach drops them).  The PCI config space belongs to the PCI host's
 * section.
 */
#define E1000_STATE_TYPE "(auaqaq(bbyqqyb)(yyqyyquyyq)ubbtu)"
#define E1000_STATE_NREGS 397
extern const struct device_ops e1000_device_ops;

#endif
