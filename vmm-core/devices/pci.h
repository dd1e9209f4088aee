/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/devices/pci.h - PCI bus 0 with configuration mechanism #1
 * (PCI Local Bus 3.0 §3.2.2.3.2: CONFIG_ADDRESS at 0xcf8, CONFIG_DATA at
 * 0xcfc-0xcff) and the i440FX host bridge at 00:00.0 (8086:1237).
 * Later devices add themselves with pci_add_device().
 */
#ifndef VIVARIUM_PCI_H
#define VIVARIUM_PCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../device.h"

struct bus;
struct bus_ops;
struct pci_host;
struct pci_device;

#define PCI_CONFIG_SIZE 256

/* Standard header registers (PCI Local Bus 3.0 §6.1). */
#define PCI_VENDOR_ID		0x00
#define PCI_DEVICE_ID		0x02
#define PCI_COMMAND		0x04
#define  PCI_COMMAND_IO		0x0001
#define  PCI_COMMAND_MEMORY	0x0002
#define  PCI_COMMAND_MASTER	0x0004
#define  PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS		0x06
#define  PCI_STATUS_INTERRUPT	0x0008
#define  PCI_STATUS_CAP_LIST	0x0010
#define PCI_REVISION_ID		0x08
#define PCI_CLASS_PROG		0x09
#define PCI_CLASS_DEVICE	0x0a
#define PCI_LATENCY_TIMER	0x0d
#define PCI_HEADER_TYPE		0x0e
#define PCI_BASE_ADDRESS_0	0x10
#define PCI_SUBSYSTEM_VENDOR_ID	0x2c
#define PCI_SUBSYSTEM_ID	0x2e
#define PCI_ROM_ADDRESS		0x30
#define PCI_CAPABILITY_LIST	0x34
#define PCI_INTERRUPT_LINE	0x3c
#define PCI_INTERRUPT_PIN	0x3d

#define PCI_CAP_ID_MSI		0x05
#define PCI_CAP_ID_MSIX		0x11
#define PCI_CAP_ID_VNDR		0x09

#define PCI_NUM_BARS		6
#define PCI_ROM_SLOT		6	/* bar[6] is the expansion ROM */
#define PCI_BAR_UNMAPPED	UINT64_MAX

enum pci_bar_kind {
	PCI_BAR_NONE = 0,
	PCI_BAR_IO,		/* I/O space, size >= 4 bytes */
	PCI_BAR_MEM32,		/* memory below 4 GiB, size >= 16 bytes */
	PCI_BAR_MEM64,		/* 64-bit memory: uses this BAR and the next */
	PCI_BAR_ROM,		/* expansion ROM (bar[6] only), read-only */
};

/* One base address register (PCI 3.0 §6.2.5.1).  The host keeps config
 * space, sizing and mapping; the device only supplies the ops. */
struct pci_bar {
	enum pci_bar_kind kind;
	uint64_t size;			/* bytes, a power of two */
	bool prefetchable;
	/* Accesses arrive as offsets into the BAR, under the device lock. */
	const struct bus_ops *ops;
	void *opaque;
	/* Optional: called on every mapping change instead of registering
	 * @ops on a bus (e.g. a RAM-backed BAR mapped as a memory slot);
	 * @addr is the new GPA or PCI_BAR_UNMAPPED. */
	void (*map)(struct pci_device *dev, unsigned bar, uint64_t addr);
	uint64_t addr;			/* current GPA, or PCI_BAR_UNMAPPED */
};

struct pci_msix;

struct pci_device {
	uint8_t config[PCI_CONFIG_SIZE];	/* standard header + caps */
	/* Bits of each config byte the guest may write (1 = writable). */
	uint8_t wmask[PCI_CONFIG_SIZE];
	/* Bits the guest clears by writing 1 (status register errors). */
	uint8_t w1cmask[PCI_CONFIG_SIZE];
	/* Optional hooks after the default behaviour; offset in bytes,
	 * size 1, 2 or 4, the access never crosses a dword. */
	uint32_t (*config_read)(struct pci_device *dev, unsigned offset,
				unsigned size, uint32_t value);
	void (*config_write)(struct pci_device *dev, unsigned offset,
			     unsigned size, uint32_t value);
	/* Optional: BAR @bar now decodes at @addr (PCI_BAR_UNMAPPED: no
	 * longer decodes), after the host changed its mapping (a guest's
	 * write, a state load, the function's removal).  A move is an unmap
	 * then a map.  Device lock held. */
	void (*bar_mapped)(struct pci_device *dev, unsigned bar, uint64_t addr);
	/* Optional: the MSI-X table or message control may have changed (a
	 * guest's write, a state load): messages, masks, enable.  Called
	 * before pending vectors are sent.  Device lock held. */
	void (*msix_changed)(struct pci_device *dev);
	void *opaque;
	uint8_t devfn;				/* device << 3 | function */
	struct pci_host *host;			/* set by pci_add_device() */
	struct pci_bar bar[PCI_NUM_BARS + 1];	/* [6]: expansion ROM */
	bool intx_level;			/* INTx as the device drives it */
	bool intx_driven;			/* ...as propagated to its PIRQ */
	struct pci_msix *msix;			/* NULL without MSI-X */
	uint8_t msi_cap;			/* config offset of MSI; 0: none */
};

/* What the machine does with the bus's interrupts. */
struct pci_host_ops {
	/* PIRQ[A-D] (@pirq 0-3) of the PIIX changed level (wired-OR of every
	 * INTx routed to it).  Called with the device lock held. */
	void (*set_pirq)(void *opaque, unsigned pirq, int level);
	/* Deliver a message-signalled interrupt.  Returns 0 or -errno. */
	int (*send_msi)(void *opaque, uint64_t addr, uint32_t data);
};

struct pci_host *pci_host_new(void);
/* Frees the host, not the devices (whose BAR ranges go with the buses). */
void pci_host_free(struct pci_host *host);
/*
 * Its lifecycle in the machine's device table (device.h).
 * pci_host_device_ops: state PCI_HOST_STATE_TYPE, version 1:
 * (CONFIG_ADDRESS, one entry per function on the bus, host bridge
 * included, in devfn order: (devfn, the 256 config bytes, INTx level as
 * the device drives it, the address each of the 7 BARs (6 + ROM) is
 * mapped at on its bus or PCI_BAR_UNMAPPED, the MSI-X table as
 * (addr lo, addr hi, data, vector control) per vector and the PBA as 2
 * words; both empty without MSI-X)).  The host saves every function's
 * config space, so the functions' own devices (PIIX, IDE, VGA, virtio)
 * need not.  Load wants the same functions at the same devfns, IDs, BAR
 * types and alignment as this machine's, re-maps the BARs where they
 * were (as a guest's decode-enable write would; an overlapped BAR that
 * was dark stays dark) and re-drives the PIRQs from the INTx levels.
 * Config-write hooks are not called (the functions restore their own);
 * bar_mapped and msix_changed are, for what the host re-maps and restores.
 */
#define PCI_HOST_STATE_TYPE "(ua(yaybata(uuuu)at))"
extern const struct device_ops pci_host_device_ops;
/* Registers 0xcf8-0xcff on @pio; BARs are later mapped on @pio (I/O) and
 * @mmio (memory). */
int pci_host_attach(struct pci_host *host, struct bus *pio, struct bus *mmio);
void pci_host_set_ops(struct pci_host *host, const struct pci_host_ops *ops,
		      void *opaque);
/*
 * Port 0xcf9 lies inside CONFIG_ADDRESS, which only dword accesses reach; on
 * the PIIX a byte access there is the reset control register.  Such byte
 * accesses go to @ops (offset 0, size 1; see acpi_pm_reset_ops).  Without
 * a handler they read 0xff and are dropped.
 */
void pci_host_set_cf9_handler(struct pci_host *host,
			      const struct bus_ops *ops, void *opaque);
/* Put @dev at @devfn on bus 0.  Returns 0, -EEXIST or -EINVAL.  Set up
 * the BARs (pci_device_set_bar) before adding the device. */
int pci_add_device(struct pci_host *host, struct pci_device *dev,
		   uint8_t devfn);
/* Take @dev off the bus, unmapping its BARs. */
void pci_remove_device(struct pci_host *host, struct pci_device *dev);
/* Config space access as the guest sees it (unit tests, firmware setup):
 * an absent device reads all-ones. */
uint32_t pci_config_read(struct pci_host *host, uint8_t bus, uint8_t devfn,
			 unsigned offset, unsigned size);
void pci_config_write(struct pci_host *host, uint8_t bus, uint8_t devfn,
		      unsigned offset, unsigned size, uint32_t value);

/* ---- device helpers ---------------------------------------------------- */

/* Fill vendor, device, revision, class (@class_code = base << 16 |
 * sub << 8 | prog-if), subsystem IDs, and the writable command bits
 * (I/O, memory, bus master, INTx disable).  @int_pin 0 (none) or 1-4
 * (INTA#-INTD#); the interrupt line register is writable. */
void pci_device_init(struct pci_device *dev, uint16_t vendor, uint16_t device,
		     uint8_t revision, uint32_t class_code,
		     uint16_t subsys_vendor, uint16_t subsys_id,
		     uint8_t int_pin);

/*
 * pci_device_set_bar - declare BAR @idx (0-5, or PCI_ROM_SLOT with
 * PCI_BAR_ROM) of @size bytes (a power of two; I/O >= 4, memory >= 16,
 * ROM >= 2 KiB).  A MEM64 BAR takes @idx and @idx + 1.  The BAR decodes
 * once the guest programs an address and enables I/O or memory decoding
 * in the command register (and, for the ROM, its enable bit).
 * Returns 0 or -EINVAL.
 */
int pci_device_set_bar(struct pci_device *dev, unsigned idx,
		       enum pci_bar_kind kind, uint64_t size, bool prefetchable,
		       const struct bus_ops *ops, void *opaque);
/* An expansion ROM BAR (PCI 3.0 §6.3.1) serving a copy of @image
 * (@len bytes, rounded up to a power of two >= 2 KiB).  Returns 0,
 * -EINVAL or -ENOMEM; the copy is freed by pci_device_cleanup(). */
int pci_device_set_rom(struct pci_device *dev, const void *image, size_t len);
/* Take the device off its bus (if on one) and free what the helpers
 * allocated (ROM copy, MSI-X state). */
void pci_device_cleanup(struct pci_device *dev);

/*
 * pci_add_capability - link a capability of @len bytes with ID @id at
 * config offset @offset (dword aligned, >= 0x40) into the list and set
 * the status register's capability bit.  The caller fills the body.
 * Returns 0 or -EINVAL (overlap, out of range).
 */
int pci_add_capability(struct pci_device *dev, uint8_t id, uint8_t offset,
		       uint8_t len);

/* Drive the device's INTx# pin (config 0x3d) to @level; ignored while the
 * command register's INTx disable bit is set.  Keeps the status register's
 * interrupt bit.  Call with the device lock held. */
void pci_set_irq(struct pci_device *dev, int level);

/*
 * pci_msix_init - an MSI-X capability (PCI 3.0 §6.8.2) at config @cap_off
 * with @nvectors (1-128) table entries.  The table and the PBA live in
 * BAR @bar_idx, a 4 KiB MEM32 BAR this call declares: table at offset 0,
 * PBA at offset 2048.  Returns 0, -EINVAL or -ENOMEM.
 */
int pci_msix_init(struct pci_device *dev, uint8_t cap_off, unsigned nvectors,
		  unsigned bar_idx);
/* MSI-X enabled in the message control register (and not INTx mode). */
bool pci_msix_enabled(const struct pci_device *dev);
/*
 * pci_msix_notify - signal @vector: sent now, or left pending in the PBA
 * while the vector or the function is masked (sent on unmask).  A vector
 * out of range (the guest's choice: 0xffff = VIRTIO_MSI_NO_VECTOR) is
 * ignored.  Returns 0 or -errno from delivery.  Call with the device lock.
 */
int pci_msix_notify(struct pci_device *dev, unsigned vector);
/* pci_msix_notify() of @vector would send it now: MSI-X enabled, the
 * vector in range and masked neither by its entry, the function mask nor
 * a cleared bus master bit. */
bool pci_msix_deliverable(const struct pci_device *dev, unsigned vector);
/* @vector's message as the table holds it (false: no MSI-X, or out of
 * range). */
bool pci_msix_message(const struct pci_device *dev, unsigned vector,
		      uint64_t *addr, uint32_t *data);

/*
 * pci_msi_init - an MSI capability (PCI 3.0 §6.8.1) at config @cap_off:
 * one message, 64-bit address, no per-vector masking (message control
 * 0x0080; the guest writes the address, data and enable bit).  Its state
 * lives in config space, which the host saves.  Returns 0 or -EINVAL.
 */
int pci_msi_init(struct pci_device *dev, uint8_t cap_off);
/* MSI enabled in the message control register. */
bool pci_msi_enabled(const struct pci_device *dev);
/* Send the MSI message as config space holds it (a bus master only; a
 * function without bus mastering drops it: MSI has no pending bit here).
 * Returns 0, -ENODEV (MSI off, no host) or -errno from delivery.  Call
 * with the device lock. */
int pci_msi_notify(struct pci_device *dev);

/* PIIX/i440FX INTx swizzle: PIRQ (0-3 = A-D) of @pin (1-4) in @slot. */
static inline unsigned pci_intx_to_pirq(unsigned slot, unsigned pin)
{
	return (slot + pin - 1) & 3;
}

#endif
