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
/* Its lifecycle in the machine's device table (device.h), with save and
 * load (state_version 1) of the registers below. */
extern const struct device_ops vga_device_ops;

/*
 * The saved state: a GVariant of this type.  Registers only; the VRAM
 * is not in it (see vga_vram()), nor is BAR0/BAR2's PCI configuration
 * (the PCI host's), nor anything the renderer derives.
 *
 *  (u VRAM size in bytes (must equal this adapter's);
 *   (y misc output, y feature control (bits 0-1), y video subsystem
 *    enable (bit 0), y input status 1 retrace toggle (0 or 0x09));
 *   (y sequencer index 0-7, ay SR00-SR07, 8 bytes);
 *   (y graphics index 0-15, ay GR00-GR0F, 16 bytes);
 *   (y CRTC index 0-0x3f, ay CR00-CR1F, 32 bytes);
 *   (y attribute index 0-0x3f (bit 5: palette address source), b
 *    flip-flop (next 0x3c0 write is data), ay AR00-AR14, 21 bytes);
 *   (y PEL mask, ay the palette, 256 x (r, g, b) as written, y DAC read
 *    index, y write index, y sub-index 0-2, ay the 3 bytes of the entry
 *    being written, b last index write was 0x3c7);
 *   u the latches (plane 0 in bits 0-7);
 *   (q DISPI index, aq the 11 DISPI registers: ID 0xb0c0-0xb0c5, XRES
 *    <= 2560, YRES <= 1600, BPP 0 or 4/8/15/16/24/32, ENABLE, BANK
 *    within the VRAM, VIRT_WIDTH, VIRT_HEIGHT 0 (derived), X/Y_OFFSET,
 *    VIDEO_MEMORY_64K 0 (derived); when enabled the mode must fit)).
 *
 * Every register byte must be one the adapter could hold (bits it does
 * not keep are refused, not masked).  After load the next refresh
 * recomputes the mode and redraws the whole screen from VRAM; the BAR0
 * memory slot is not touched: it follows the BAR, which the PCI host
 * maps (vram_bar_map through update_mappings) when its configuration is
 * restored, before or after this load.
 */
#define VGA_STATE_TYPE \
	"(u(yyyy)(yay)(yay)(yay)(ybay)(yayyyyayb)u(qaq))"
/* Claim the legacy ports and window on @pio/@mmio and add the PCI
 * function at @devfn.  Returns 0 or -errno. */
int vga_attach(struct vga *vga, struct bus *pio, struct bus *mmio,
	       struct pci_host *pci, uint8_t devfn);
/* Back to power-on state (text mode 80x25 as after reset: no mode set). */
void vga_reset(struct vga *vga);

/* The console side: update() renders into the console's surface; text()
 * dumps text modes.  Opaque argument: the struct vga. */
extern const struct console_hw_ops vga_console_ops;

/*
 * The VRAM as the adapter sees it (planes interleaved, see vga.c), and
 * its size in bytes (the configured vram_size).  This is what a snapshot
 * stores in the RAM file next to guest RAM, since the saved state above
 * leaves it out.  The buffer is a page-aligned anonymous mapping, fixed
 * for the adapter's life (BAR0's memory slot maps this host address), so
 * the machine may fill it or map a file's pages over it (MAP_FIXED, same
 * size) while the vCPUs are stopped; restore it before vga load or call
 * console_invalidate() after, so the redraw sees it.  Note vga_reset()
 * drops the pages with MADV_DONTNEED, which zeroes anonymous memory but
 * brings a MAP_PRIVATE file mapping back to the file's contents.
 */
uint8_t *vga_vram(struct vga *vga);
size_t vga_vram_size(const struct vga *vga);

#endif
