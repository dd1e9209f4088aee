/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/machine_internal.h - struct machine, shared by the files that
 * make up the machine (not for devices, frontends or tests):
 *
 *   machine.c    create/destroy, building and tearing down a boot, run
 *                control (run, stop, reset, pause, resume, power button)
 *   pc.c         the PC's device table and interrupt routing
 *   boot/bios.c  SeaBIOS: the flash, CMOS, fw_cfg items, bootorder
 *   vcpu.c       the vCPU threads' loop
 *
 * Locks: m->lock is the device lock, held around every device access (vCPU
 * exits, timer callbacks, chardev input).  m->ctl guards the run state and
 * the vCPU handles.  Order: m->lock, then m->ctl; nothing holding m->ctl
 * takes m->lock (stop/reset only set flags and kick vCPUs).
 */
#ifndef VIVARIUM_MACHINE_INTERNAL_H
#define VIVARIUM_MACHINE_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "boot/acpi.h"
#include "boot/linux.h"
#include "device.h"
#include "iofd.h"
#include "machine.h"
#include "clock.h"
#include "mem.h"
#include "memslot.h"
#include "vcpu.h"

struct blk;

#define COM1_BASE	0x3f8
#define MEM_SLOT_BIOS	8		/* after the RAM slots */
#define MEM_SLOT_VRAM	9		/* the VGA's BAR0 */
#define MEM_SLOT_VARS	10		/* OVMF's variable store (pflash) */
#define VIRTIO_BLK_SLOT	5		/* first PCI slot of virtio-blk disks */
#define VIRTIO_KBD_SLOT	0x0d		/* the virtio keyboard */
#define VIRTIO_TABLET_SLOT 0x0e		/* the virtio tablet */
#define NIC_SLOT	0x10		/* first PCI slot of the NICs */
#define VIRTIO_SERIAL_SLOT 0x0f		/* virtio-serial (virtio-console) */
#define VIRTIO_9P_SLOT	0x14		/* first PCI slot of the shared folders */
#define XHCI_SLOT	0x18		/* the xHCI USB controller */
#define HDA_SLOT	0x1b		/* the Intel HDA sound card (ICH6's slot) */

enum run_state { RUN_RUNNING, RUN_PAUSED, RUN_STOPPING };
enum run_end { END_NONE, END_STOP, END_RESET, END_RESTORE };

struct vcpu_thread {
	struct machine *m;
	unsigned id;
	pthread_t thread;
	struct hv_vcpu *vcpu;	/* set/cleared under m->ctl; NULL: not running */
	unsigned save_gen;	/* the last save request it answered (ctl) */
	/* Its state (hv_vcpu_save blob): written on a save request while
	 * paused; read at start on a restore.  malloc'ed. */
	void *state;
	size_t state_len;
	int state_err;		/* of the last save, -errno */
};

struct statefile;

struct machine {
	struct machine_config cfg;
	struct hv_system *hv;
	uint8_t *kernel, *initrd;
	size_t kernel_len, initrd_len;
	enum machine_firmware firmware;	/* resolved: NONE, BIOS or UEFI */
	uint8_t *bios;			/* the flash image, page-aligned mmap */
	size_t bios_len;
	/* UEFI: the variable store's file (read-write, open for the machine's
	 * life): cfg->vars_path, or a memfd holding Debian's template. */
	int vars_fd;
	size_t vars_len;
	struct mem_slot_hv code_slot, vars_slot;	/* the two flashes */
	uint8_t *linuxboot;		/* option ROM for --kernel via the BIOS */
	size_t linuxboot_len;
	uint8_t *vga_rom;		/* the VGA BIOS (with firmware only) */
	size_t vga_rom_len;
	/* Disk images stay open across resets; devices come and go. */
	struct blk *blk[MACHINE_MAX_DRIVES];

	/* The device lock, alive as long as the machine (chardev input uses
	 * it across resets). */
	pthread_mutex_t lock;
	/* Guest time: stands still while the machine is paused. */
	struct vclock_virt clock;

	/* Built anew on every boot. */
	struct hv_vm *vm;
	struct guest_mem mem;
	struct bus *pio, *mmio;
	struct vtimer_queue *timers;	/* on @clock */
	struct mem_slot_hv vram_slot;	/* the VGA's BAR0 */
	/* KVM's GSI routes: the IOAPIC's pins and the irqfds' MSIs. */
	struct irq_routes *routes;
	/* The I/O thread: devices' ioeventfd doorbells (iothread.h). */
	struct iothread *io;
	struct iofd_hv iofd;		/* what virtio devices are handed */
	/* The port whose handler sees the vCPU's registers (vcpu.h): the
	 * VMware backdoor when vmmouse is on.  Set before the vCPUs start,
	 * cleared after they end. */
	struct vcpu_regs_port regs_port;
	/* Every device, in creation order: what teardown (and later save and
	 * load) walk. */
	struct device_table devices;
	struct {			/* typed views of the table, for wiring */
		struct pic *pic;
		struct ioapic *ioapic;
		struct pit *pit;
		struct uart *com1;
		struct rtc *rtc;
		struct i8042 *kbc;
		struct vmmouse *vmmouse;	/* NULL: off */
		struct pci_host *pci;
		struct piix *piix;
		struct acpi_pm *pm;
		struct debugport *dbg;
		struct fw_cfg *fw_cfg;
		struct pflash *code, *vars;		/* UEFI only */
		struct piix_ide *ide;
		struct virtio_blk *vblk[MACHINE_MAX_DRIVES];
		struct vga *vga;
		struct virtio_gpu *vgpu;
		struct virtio_input *vkbd, *vtablet;	/* NULL: left out */
		struct xhci *xhci;			/* NULL: no USB */
		struct hda *hda;			/* NULL: no sound */
		struct tpm_tis *tpm;			/* NULL: no TPM */
	} dev;
	/* The console's adapter switch (machine.c), under the device lock:
	 * virtio-gpu shows now (else the VGA), and the size the host last
	 * asked for, which a rebuilt virtio-gpu starts with (0: default). */
	bool screen_gpu;
	unsigned gpu_w, gpu_h;
	struct linux_entry entry;
	struct vcpu_thread cpu[MACHINE_MAX_CPUS];
	unsigned arrived, expected;	/* vCPU creation rendezvous (ctl) */
	/* The PIC's INTR output, mirrored so the boot vCPU's loop need not
	 * take the device lock on every exit to look at it. */
	atomic_bool pic_intr;

	/* Run control. */
	pthread_mutex_t ctl;
	pthread_cond_t ctl_cond;
	enum run_state state;
	enum run_end end;
	int exit_status;
	unsigned paused;
	/* From a reset's or revert's end_run() until the next build is done:
	 * machine_pause() waits, so that the rebuild cannot run over it. */
	bool building;
	unsigned boots;
	char err[256];
	bool input_started;

	/* Snapshots (machine_state.c). */
	unsigned save_gen, saved;	/* vCPU save requests and answers (ctl) */
	struct statefile *restore;	/* the next build loads it; then freed */
	char *restore_ram;		/* its memory file */
	/* The saved kvmclock (ns; 0: none), set just before the vCPUs run:
	 * the guest's clock must not count the restore's own time. */
	uint64_t restore_kvmclock;
	/* Drive images the next rebuild opens instead (NULL: unchanged);
	 * g_malloc'ed, and then kept as the drives' paths. */
	char *swap_path[MACHINE_MAX_DRIVES];
	char *drive_path[MACHINE_MAX_DRIVES];	/* owned copies of swapped paths */

	/* Host USB devices passed through (machine_usb.c), kept across
	 * rebuilds; the list under the device lock. */
	struct usb_host_ctx *usb_ctx;		/* with cfg.usb */
	struct {
		struct usb_host_dev *d;		/* NULL: free entry */
		unsigned port;
	} usbh[MACHINE_USB_HOST_MAX];
};

/* Error paths of functions taking (char *err, size_t errlen): @expr's
 * negative errno becomes "what: strerror" and is returned. */
#define TRY(expr, what)                                                      \
	do {                                                                 \
		int r__ = (expr);                                            \
		if (r__ < 0) {                                               \
			snprintf(err, errlen, "%s: %s", what, strerror(-r__)); \
			return r__;                                          \
		}                                                            \
	} while (0)
#define TRY_NEW(ptr, expr, what)                                             \
	do {                                                                 \
		if (!((ptr) = (expr))) {                                     \
			snprintf(err, errlen, "%s: out of memory", what);    \
			return -ENOMEM;                                      \
		}                                                            \
	} while (0)

/* Create a device of the table: @ptr = @expr, recorded with @ops. */
#define TRY_DEV(ptr, expr, ops, what)                                        \
	do {                                                                 \
		TRY_NEW(ptr, expr, what);                                    \
		TRY(device_table_add(&m->devices, &(ops), (ptr)), what);     \
	} while (0)

/* ---- machine.c --------------------------------------------------------- */

/* End the run with @err (negative errno) and a message for machine_run(). */
void machine_fail(struct machine *m, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* End the run so that machine_run() rebuilds the VM from m->restore. */
void end_run_restore(struct machine *m);
/* On vCPU thread @t: blocks while paused (answering save requests);
 * false once the VM is stopping. */
bool vcpu_may_run(struct machine *m, struct vcpu_thread *t);
/* Read the whole regular file @path (@what names it in errors) into a new
 * malloc'ed buffer.  Returns 0 or -errno with one line in @err. */
int machine_read_file(const char *path, const char *what, uint8_t **data,
		      size_t *len, char *err, size_t errlen);

/* ---- machine_state.c --------------------------------------------------- */

/* In build(), after the devices and the boot images: overlay the state of
 * m->restore (memory, devices, clocks; the vCPUs load theirs as they
 * start).  0 or -errno with @err. */
int machine_state_apply(struct machine *m, char *err, size_t errlen);
/* On vCPU thread @t, in the pause loop (ctl held): answer a save request. */
void machine_state_vcpu_save(struct machine *m, struct vcpu_thread *t);
/* Drop m->restore, pending drive swaps and the vCPUs' saved blobs. */
void machine_state_clear(struct machine *m);
/* Between two builds: open the drive images machine_revert_drives() asked
 * for instead of the current ones.  0 or -errno + @err. */
int machine_swap_drives(struct machine *m, char *err, size_t errlen);

/* ---- pc.c -------------------------------------------------------------- */

/* The buses, the timer queue and the device table of one boot. */
int pc_build_devices(struct machine *m, char *err, size_t errlen);
/* After the vCPU threads ended: stop the timers, quiesce and free the
 * devices (last created first), free the buses. */
void pc_free_devices(struct machine *m);
/* IDE position of each drive (0-3), -1 for a virtio disk. */
void pc_ata_positions(const struct machine *m, int pos[MACHINE_MAX_DRIVES]);
/* The ACPI tables' view of this machine, for both boot paths. */
struct acpi_config pc_acpi_config(const struct machine *m);

/* ---- boot/bios.c ------------------------------------------------------- */

/* In machine_create(): read the flash image, and the option ROMs it needs
 * (linuxboot with a kernel, the VGA BIOS with an adapter). */
int bios_read_images(struct machine *m, char *err, size_t errlen);
/* After the devices exist: map the flash, fill CMOS and fw_cfg. */
int bios_load(struct machine *m, char *err, size_t errlen);
/* The CMOS bytes and fw_cfg items SeaBIOS and OVMF both read. */
void bios_cmos(struct machine *m);
int bios_fw_cfg(struct machine *m, char *err, size_t errlen);
/*
 * A firmware flash image (SeaBIOS, OVMF's code) from @path into m->bios,
 * its own page-aligned mapping (it becomes a memory slot): a multiple of
 * @block bytes, at most @max.  Errors name it @what; a missing file points
 * to Debian's @package, a bad size says @rule.  Returns 0, -ENOENT/-errno
 * from reading, -EINVAL (size) or -ENOMEM.
 */
int firmware_image_read(struct machine *m, const char *path, const char *what,
			const char *package, size_t block, size_t max,
			const char *rule, char *err, size_t errlen);

/* ---- boot/uefi.c ------------------------------------------------------- */

/* In machine_create(): read OVMF's code image and open the variable store
 * (cfg->vars_path, or read Debian's template). */
int uefi_read_images(struct machine *m, char *err, size_t errlen);
/* After the devices exist: the two flashes below 4 GiB, CMOS, fw_cfg. */
int uefi_load(struct machine *m, char *err, size_t errlen);

/* ---- machine_usb.c --------------------------------------------------- */

/* machine_create(): the libusb context and thread with cfg.usb. */
int machine_usb_init(struct machine *m, char *err, size_t errlen);
/* pc.c, the controller just built: plug the passed-through devices in. */
void machine_usb_plug_all(struct machine *m);
/* machine_destroy(): give every device back, stop the thread. */
void machine_usb_fini(struct machine *m);
/* machine_save_then() (@what "save"), machine_revert_drives() ("revert"):
 * -ENOTSUP with one line while a host device is passed through. */
int machine_usb_save_check(struct machine *m, const char *what, char *err,
			   size_t errlen);

/* ---- vcpu.c ------------------------------------------------------------ */

/* A vCPU thread (arg: its struct vcpu_thread). */
void *vcpu_main(void *arg);

#endif
