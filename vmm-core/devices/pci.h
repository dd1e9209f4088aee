/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/devices/pci.h - PCI bus 0 with configuration mechanism #1
 * (PCI Local Bus 3.0 §3.2.2.3.2: CONFIG_ADDRESS at 0xcf8, CONFIG_DATA at
 * 0xcfc-0xcff) and the i440FX host bridge at 00:00.0 (8086:1237).
 * Later devices add themselves with pci_add_device().
 */
#ifndef VIVARIUM_PCI_H
#define VIVARIUM_PCI_H

#include <stdint.h>

struct bus;
struct bus_ops;
struct pci_host;

#define PCI_CONFIG_SIZE 256

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
	void *opaque;
	uint8_t devfn;				/* device << 3 | function */
};

struct pci_host *pci_host_new(void);
void pci_host_free(struct pci_host *host);
/* Registers 0xcf8-0xcff. */
int pci_host_attach(struct pci_host *host, struct bus *pio);
/*
 * Port 0xcf9 lies inside CONFIG_ADDRESS, which only dword accesses reach; on
 * the PIIX a byte access there is the reset control register.  Such byte
 * accesses go to @ops (offset 0, size 1; see acpi_pm_reset_ops).  Without
 * a handler they read 0xff and are dropped.
 */
void pci_host_set_cf9_handler(struct pci_host *host,
			      const struct bus_ops *ops, void *opaque);
/* Put @dev at @devfn on bus 0.  Returns 0, -EEXIST or -EINVAL. */
int pci_add_device(struct pci_host *host, struct pci_device *dev,
		   uint8_t devfn);
/* Config space access as the guest sees it (unit tests, firmware setup):
 * an absent device reads all-ones. */
uint32_t pci_config_read(struct pci_host *host, uint8_t bus, uint8_t devfn,
			 unsigned offset, unsigned size);
void pci_config_write(struct pci_host *host, uint8_t bus, uint8_t devfn,
		      unsigned offset, unsigned size, uint32_t value);

#endif
