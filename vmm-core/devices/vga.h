/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/devices/vga.h - the standard VGA with the Bochs VBE ("DISPI")
 * extensions, as a PCI function (1234:1111, class 0x030000): the adapter
 * SeaBIOS's vgabios-stdvga.bin and Linux's bochs-drm drive.
 *
 *  - Legacy VGA: I/O ports 0x3b0-0x3df (sequencer, graphics controller,
 *    attribute controller, CRTC, DAC, misc output), the memory window
 *    0xa0000-0xbffff with the VGA's read/write modes, planes, latches and
 *    chain-4/odd-even addressing, emulated through the MMIO bus.
 *  - Bochs VBE: index/data ports 0x1ce/0x1cf (DISPI ID 0xb0c0-0xb0c5):
 *    XRES, YRES, BPP (4 planar, as SeaBIOS's modes 0x102-0x106 use, and
 *    8/15/16/24/32 packed), ENABLE (+LFB, NOCLEARMEM, GETCAPS),
 *    BANK, VIRT_WIDTH/HEIGHT, X/Y_OFFSET, VIDEO_MEMORY_64K.
 *  - PCI: BAR0 the VRAM (prefetchable MEM32, @vram_size), mapped as a
 *    memory slot with dirty logging; BAR2 a 4 KiB MMIO window holding the
 *    VGA ports at 0x400-0x41f (port 0x3c0 + n) and the DISPI registers at
 *    0x500-0x515 (16-bit, index n at 0x500 + 2n), as bochs-drm uses them;
 *    the option ROM, if given.
 *
 * Rendering (through struct console_hw_ops): text modes (font from plane 2,
 * 8/9-dot cells, attributes, blink, cursor), planar 16-colour and CGA
 * modes, 256-colour (chain-4 and unchained), and VBE linear modes up to
 * 2560x1600.  Only what changed is redrawn: KVM's dirty log of the VRAM
 * slot plus the pages the emulated window wrote.
 */
#ifndef VIVARIUM_VGA_H
#define VIVARIUM_VGA_H

#include <stddef.h>
#include <stdint.h>

#include "../device.h"
#include "../memslot.h"

struct bus;
struct vclock;
struct pci_host;
struct vga;
struct console_hw_ops;

#define VGA_PCI_VENDOR		0x1234
#define VGA_PCI_DEVICE		0x1111
#define VGA_DEFAULT_VRAM	(16u << 20)

struct vga_config {
	/* The memory slot BAR0's VRAM is mapped through, dirty-logged (the
	 * machine's, over the hypervisor); ops NULL: BAR0 is served by MMIO
	 * bus accesses instead. */
	struct mem_slot vram_slot;
	size_t vram_size;		/* bytes: a power of two, 1-256 MiB */
	const void *rom;		/* option ROM image, may be NULL */
	size_t rom_len;			/* bytes */
	/* Time base of the text-mode blink (characters and cursor, ~2 Hz);
	 * NULL: the host's monotonic clock (tests pass a fake one). */
	const struct vclock *clock;
};

/* Allocates the VRAM (anonymous mmap, zeroed).  Returns NULL on bad
 * configuration or allocation failure. */
struct vga *vga_new(const struct vga_config *cfg);
/* Unmaps the VRAM slot, takes the device off the PCI bus, frees all. */
void vga_free(struct vga *vga);
/* Its lifecycle in the machine's device table (device.h). */
extern const struct device_ops vga_device_ops;
/* Claim the legacy ports and window on @pio/@mmio and add the PCI
 * function at @devfn.  Returns 0 or -errno. */
int vga_attach(struct vga *vga, struct bus *pio, struct bus *mmio,
	       struct pci_host *pci, uint8_t devfn);
/* Back to power-on state (text mode 80x25 as after reset: no mode set). */
void vga_reset(struct vga *vga);

/* The console side: update() renders into the console's surface; text()
 * dumps text modes.  Opaque argument: the struct vga. */
extern const struct console_hw_ops vga_console_ops;

/* For tests and benchmarks: the VRAM as the adapter sees it. */
uint8_t *vga_vram(struct vga *vga);
size_t vga_vram_size(const struct vga *vga);

#endif
