/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/machine.h - the PC machine: guest RAM, the buses, the devices of
 * the machine table (pc.c), and one thread per vCPU (vcpu.c).
 *
 * Life cycle: machine_create() checks the configuration and loads nothing
 * yet; machine_run() builds the VM (KVM VM, memory slots, devices, boot
 * image), runs the vCPUs until the guest powers off, a test guest writes the
 * exit port, an error occurs or machine_stop() is called, and returns the
 * exit status.  A guest reset (triple fault, 0xcf9, i8042 0xfe, KVM reset
 * event) or machine_reset() tears the VM down and builds it anew within
 * machine_run().
 *
 * vCPU states: RUNNING -> PAUSED -> RUNNING, any -> STOPPED.
 */
#ifndef VIVARIUM_MACHINE_H
#define VIVARIUM_MACHINE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bus;
struct chardev;
struct console;
struct device_table;
struct guest_mem;
struct hv_cpu_model;
struct hv_system;
struct hv_vcpu;
struct machine;
struct netdev;
struct swtpm;
struct vcon_port;

#define MACHINE_MAX_CPUS 64

/* Hooks for test guests (tests/guest/) that boot without a kernel. */
struct machine_boot_hooks {
	/* After RAM exists: write code/data into guest memory. */
	int (*load)(struct machine *m, struct guest_mem *mem, void *opaque);
	/* On the boot vCPU's thread, before its first run: set registers. */
	int (*setup_bsp)(struct machine *m, struct hv_vcpu *vcpu, void *opaque);
	/* After the standard devices exist: add test devices to the buses. */
	int (*add_devices)(struct machine *m, void *opaque);
	void *opaque;
};

enum machine_firmware {
	MACHINE_FW_AUTO = 0,	/* direct Linux boot with a kernel, else BIOS */
	MACHINE_FW_NONE,	/* direct Linux boot (needs kernel_path) */
	MACHINE_FW_BIOS,	/* SeaBIOS; with a kernel, through fw_cfg */
	MACHINE_FW_UEFI,	/* OVMF: code and variable store as CFI flash */
};

enum machine_boot {
	MACHINE_BOOT_DEFAULT = 0,	/* CD-ROM if one is attached, else disk */
	MACHINE_BOOT_DISK,
	MACHINE_BOOT_CDROM,
};

enum machine_drive_if {
	MACHINE_IF_VIRTIO = 0,	/* virtio-blk on PCI */
	MACHINE_IF_ATA,		/* PIIX IDE */
};

/* One disk or CD-ROM.  ATA disks take the free IDE positions in order
 * (primary master, primary slave, secondary slave); a CD-ROM goes to the
 * secondary master, as on most PCs. */
struct machine_drive {
	const char *path;
	int format;			/* enum blk_format; 0: probe */
	enum machine_drive_if bus;
	bool cdrom;			/* ATAPI CD-ROM: ATA, read-only */
	bool readonly;
};

#define MACHINE_MAX_DRIVES 8

enum machine_nic_model {
	MACHINE_NIC_VIRTIO = 0,	/* virtio-net on PCI */
	MACHINE_NIC_E1000,	/* Intel 82540EM */
};

/* One network card, on a host backend (net/net.h) that the caller made
 * and frees after the machine: it outlives the machine's resets. */
struct machine_nic {
	enum machine_nic_model model;
	uint8_t mac[6];
	struct netdev *backend;
};

#define MACHINE_MAX_NICS 4
/* Named ports of the virtio-serial device (virtio/virtio_console.h). */
#define MACHINE_MAX_SERIAL_PORTS 4

/* One shared folder: a virtio-9p device (PCI slots 0x14..) whose 9P
 * server is confined to @path (share/p9_server.h). */
struct machine_share {
	const char *path;		/* an existing folder */
	const char *tag;		/* mount tag, unique: virtio_9p_tag_ok() */
	bool readonly;
};

#define MACHINE_MAX_SHARES 4

struct audio_backend;

struct machine_config {
	uint64_t ram_size;		/* bytes, multiple of 1 MiB */
	unsigned ncpus;			/* 1..MACHINE_MAX_CPUS */
	const char *kernel_path;	/* bzImage (direct boot) */
	const char *initrd_path;	/* may be NULL */
	const char *cmdline;		/* may be NULL */
	struct chardev *serial;		/* COM1's host side; NULL: discard */
	struct chardev *debugcon;	/* port 0x402; may be NULL */
	const struct hv_cpu_model *cpu_model;	/* NULL: host */
	const char *kvm_path;		/* NULL: /dev/kvm */
	const struct machine_boot_hooks *hooks;	/* NULL: Linux boot */
	enum machine_firmware firmware;
	/* The firmware image: NULL: Debian's SeaBIOS bios-256k.bin, or with
	 * MACHINE_FW_UEFI OVMF's code, /usr/share/OVMF/OVMF_CODE_4M.fd. */
	const char *bios_path;
	/* MACHINE_FW_UEFI: the VM's own variable store (a copy of
	 * OVMF_VARS_4M.fd), opened read-write and written back as the guest
	 * changes variables; NULL: a copy of Debian's template in memory
	 * (kept across guest resets, lost when the machine is destroyed). */
	const char *vars_path;
	struct machine_drive drive[MACHINE_MAX_DRIVES];
	unsigned ndrives;
	enum machine_boot boot;
	/* Network cards: PCI slots 0x10.. in this order (ARCHITECTURE.md). */
	struct machine_nic nic[MACHINE_MAX_NICS];
	unsigned nnics;
	/* virtio-serial (PCI slot 0x0f) with these named ports, in this
	 * order (ids 1..); the program's host sides, made before the machine
	 * and freed after it (they outlive resets).  0 ports: no device. */
	struct vcon_port *serial_port[MACHINE_MAX_SERIAL_PORTS];
	unsigned nserial_ports;
	/* Shared folders: PCI slots 0x14.. in this order. */
	struct machine_share share[MACHINE_MAX_SHARES];
	unsigned nshares;
	/* Mirror the firmware's screen output to COM1 (SeaBIOS etc/sercon-port). */
	bool sercon;
	/* The screen and keyboard/mouse the frontends use (must outlive the
	 * machine); NULL: the adapter still exists but nobody looks. */
	struct console *console;
	/* No display adapter at all (the "None" graphics controller). */
	bool no_vga;
	/* No VMware vmmouse on the PS/2 mouse (devices/vmmouse.h; on by
	 * default: the absolute pointer guests' built-in drivers speak). */
	bool no_vmmouse;
	/* Also virtio-gpu at 00:03.0 (--vga virtio): the console shows the
	 * VGA until the guest's virtio-gpu driver sets a scanout, then
	 * virtio-gpu, and the host's window size is offered to the guest
	 * (console_request_size()). */
	bool virtio_gpu;
	/* Leave out the virtio keyboard and tablet (PCI 00:0d.0, 00:0e.0):
	 * the guest has the PS/2 pair only.  With them (the default) the
	 * console routes keys and absolute pointing to them while the guest's
	 * driver runs them (console_add_input()). */
	bool no_virtio_input;
	/* An xHCI USB controller at 00:18.0 (usb/xhci.h) with a USB HID
	 * tablet and keyboard on its ports 1 and 2; the console routes to
	 * them while the guest's driver polls them.  Off by default. */
	bool usb;
	/* Sound: an Intel HDA controller at 00:1b.0 (audio/hda.h) with a
	 * duplex codec, on this host side (audio/audio.h), which the caller
	 * made and frees after the machine (it outlives resets).  NULL: no
	 * sound card. */
	struct audio_backend *audio;
	/* A TPM 2.0: the FIFO interface at 0xfed40000 (devices/tpm_tis.h,
	 * fixed MMIO, no PCI slot; ACPI \_SB.TPM_ and a TPM2 table) on this
	 * swtpm (host/swtpm.h), which the caller started and stops after the
	 * machine (it outlives resets; each build sends it CMD_INIT, the
	 * TPM's power-on; a restore then resumes it from the state's "tpm"
	 * section).  NULL: no TPM. */
	struct swtpm *tpm;
	/* Called on machine_run()'s thread each time the VM has been built
	 * (@boot: 1, then 2... after resets), before its vCPUs run; a failure
	 * to build the first time is machine_run()'s error instead.  May be
	 * NULL.  For "the VM is up" reports. */
	void (*built)(void *opaque, unsigned boot);
	/* Called on machine_run()'s thread before a VM that was built is
	 * torn down (a stop, a reset, a revert), its vCPUs stopped, no lock
	 * held: whatever reaches into the devices from threads of its own
	 * (a test's driver) stops there.  May be NULL. */
	void (*unbuilding)(void *opaque);
	void *built_opaque;	/* both hooks' */
};

/* Guest RAM is whole MiB (the memory map and the RAM file are laid out in
 * MiB) and at least this much (the firmware, the ACPI tables and the
 * in-memory boot structures must fit below 16 MiB). */
#define MACHINE_MIN_RAM		(16ull << 20)
/* The rule in words, for messages: "--memory '12Q' is not " RULE. */
#define MACHINE_RAM_RULE	"a whole number of MiB, at least 16M (e.g. 512M, 2G)"

/* machine_ram_ok - is @bytes a guest RAM size machine_create() accepts? */
bool machine_ram_ok(uint64_t bytes);

/*
 * machine_config_check - the checks of @cfg machine_create() makes before
 * it opens anything: vCPU count in 1..MACHINE_MAX_CPUS, machine_ram_ok(),
 * something to boot.  The CLI, the VM library and the manager call it (or
 * machine_ram_ok() for a memory size alone) so that a value is refused
 * with the same rule wherever it is typed.  Returns 0, or -EINVAL with one
 * line in @err (@errlen bytes).
 */
int machine_config_check(const struct machine_config *cfg, char *err,
			 size_t errlen);

/* Exit status of machine_run() for a guest that powered off. */
#define MACHINE_EXIT_POWEROFF 0

/*
 * machine_create - validate @cfg, open the hypervisor and read the kernel
 * and initrd files (so that a wrong path or a corrupt image fails here,
 * with one line in @err).  Returns 0 or -errno.
 */
int machine_create(const struct machine_config *cfg, struct machine **out,
		   char *err, size_t errlen);
void machine_destroy(struct machine *m);

/*
 * machine_run - run until the VM ends.  Returns its exit status: 0 after an
 * ACPI power-off, the value a test guest wrote to the test-exit port, or a
 * negative errno for a failure (@err, @errlen: one line saying what, e.g.
 * "KVM internal error: emulation failure at RIP 0x... (bytes 0f c7 ...)").
 */
int machine_run(struct machine *m, char *err, size_t errlen);

/* From any thread: end machine_run() with @status / reset the VM /
 * pause and resume every vCPU and the machine's clock, so device timers
 * (PIT, RTC, PM timer) stand still too (machine_pause returns once all
 * vCPUs are paused).  Call without the device lock held. */
void machine_stop(struct machine *m, int status);
void machine_reset(struct machine *m);
void machine_pause(struct machine *m);
void machine_resume(struct machine *m);
/* From any thread: press the ACPI fixed power button (ACPI 6.4 §4.8.3.1:
 * PWRBTN_STS, and the SCI if the guest set PWRBTN_EN); an ACPI guest then
 * shuts down and powers off through S5.  Takes the device lock.  Returns 0,
 * or -ENODEV while the VM is not built (before machine_run, between a reset's
 * teardown and rebuild). */
int machine_power_button(struct machine *m);

/* ---- saved state (vmm-core/machine_state.c) ------------------------------ */

struct machine_save_stats {
	uint64_t pause_ns;		/* the vCPUs stood still this long */
	uint64_t ram_bytes;		/* guest memory in all (RAM + VRAM) */
	uint64_t ram_data_bytes;	/* of which written (not zero pages) */
	uint64_t ram_ns;		/* time spent writing memory */
};

/*
 * machine_save - write the machine's state (devices, vCPUs, clocks) to
 * @state_path (docs/machine-state.md) and its memory to @ram_path
 * (snapshot/ramfile.h).  From any thread while machine_run() runs; the
 * vCPUs are paused meanwhile and the machine is left running or paused as
 * it was.  Both files appear complete or not at all; the memory file is
 * written first.  @stats may be NULL.  Returns 0, or -errno with one line
 * in @err: -ENOTSUP when a device cannot save its state (named),
 * -EAGAIN when the machine is not running, -ENOSPC on a full disk.
 */
int machine_save(struct machine *m, const char *state_path,
		 const char *ram_path, struct machine_save_stats *stats,
		 char *err, size_t errlen);

/*
 * machine_save_then - machine_save() that calls @paused(@opaque, @err,
 * @errlen) once the state is captured and a copy-on-write view of the
 * memory exists, with the vCPUs still paused and the devices quiesced,
 * before the machine runs on (if it was running) while the memory is
 * written: what must happen at the very state point (a snapshot moves the
 * disks to new overlays there, machine_with_drives_closed()).  @paused may
 * resume the machine itself.  Its failure (-errno + @err) fails the save,
 * with nothing written.
 */
int machine_save_then(struct machine *m, const char *state_path,
		      const char *ram_path,
		      int (*paused)(void *opaque, char *err, size_t errlen),
		      void *opaque, struct machine_save_stats *stats,
		      char *err, size_t errlen);

/*
 * machine_restore_on_start - before machine_run(): its first build loads
 * the state at @state_path/@ram_path instead of booting.  The state file is
 * checked now (format, checksum, vCPUs); what depends on the built machine
 * (its configuration hash, each device's section) is checked by the
 * build, whose failure is then machine_run()'s error.  0 or -errno + @err.
 */
int machine_restore_on_start(struct machine *m, const char *state_path,
			     const char *ram_path, char *err, size_t errlen);

/*
 * machine_revert - from any thread while machine_run() runs: check the
 * state as machine_restore_on_start() does, then tear the VM down and
 * rebuild it from the state (a paused VM runs again).  A state refused by
 * the rebuild ends machine_run() with that error.  0 or -errno + @err (the
 * VM untouched).
 */
int machine_revert(struct machine *m, const char *state_path,
		   const char *ram_path, char *err, size_t errlen);

/*
 * machine_revert_drives - machine_revert() that also replaces drive images:
 * @paths[i] (for each of the configuration's drives; NULL: unchanged) is
 * opened instead of drive i's image when the VM is rebuilt (disk
 * snapshots: the new overlay on a frozen image).  With @state_path NULL,
 * the rebuild boots afresh (a reset with other disks).  The old images are
 * closed first (an overlay's backing file is the image it replaces); if a
 * new one cannot be opened, the run ends with that error.
 */
int machine_revert_drives(struct machine *m, const char *state_path,
			  const char *ram_path, const char *const *paths,
			  char *err, size_t errlen);

/*
 * machine_with_drives_closed - from any thread while the machine is paused
 * (machine_pause()): wait for the disks' requests in flight, close every
 * writable disk's image (blk_suspend(): flushed, unlocked), call
 * @fn(@opaque) (may be NULL) on the caller's thread, then open each again:
 * @paths[i] (when @paths and @paths[i] are not NULL) instead of drive i's
 * old image, e.g. a snapshot's new overlay on it.  Nothing is rebuilt: the
 * devices keep their state and the guest notices nothing.  The machine
 * stays paused.  Returns 0, -EAGAIN if it is not paused, or -errno with
 * one line in @err when an image cannot be opened: that drive keeps its
 * old image if it still opens, else the run ends with the error.
 */
int machine_with_drives_closed(struct machine *m, const char *const *paths,
			       void (*fn)(void *opaque), void *opaque,
			       char *err, size_t errlen);

/* ---- host USB devices passed through (machine_usb.c, usb/usb_host.h) ---- */

/* USB 2 root ports 3-4 (low/full/high speed) and USB 3 ports 5-8
 * (SuperSpeed); the HID tablet and keyboard keep ports 1 and 2. */
#define MACHINE_USB_HOST_MAX	6

struct usb_host_info;

/*
 * machine_usb_attach - pass the host device open at @fd (ownership
 * passes, closed on failure) and described by @info through, on the first
 * free root port of its speed (written to *@port).  Before machine_run()
 * (`--usb-device`, vm.conf) or while it runs (the control protocol's
 * usb-attach); the machine must have been created with cfg.usb.  Without
 * the device lock.  Returns 0, -ENODEV (no USB controller), -EBUSY (the
 * device is already attached), -ENOSPC (no free port of its speed) or
 * -errno from opening it, with one line in @err.
 */
int machine_usb_attach(struct machine *m, int fd,
		       const struct usb_host_info *info, unsigned *port,
		       char *err, size_t errlen);
/*
 * machine_usb_attach_spec - find host device @spec ("VID:PID" or
 * "BUS-PORT[.PORT...]", usb/usb_host.h) in sysfs, open its node and
 * machine_usb_attach() it: in the VM process before its sandbox (whose
 * Landlock rules leave /dev/bus/usb out).  Returns as machine_usb_attach(),
 * or -EINVAL / -ENOENT / -EACCES with one line (the permission line names
 * the node and the udev rule that fixes it).
 */
int machine_usb_attach_spec(struct machine *m, const char *spec,
			    unsigned *port, char *err, size_t errlen);
/*
 * machine_usb_detach - unplug the passed-through device @name (its sysfs
 * name "1-2.3", its VID:PID, or its root port number) and give it back to
 * the host (its drivers reattach).  Without the device lock.  Returns 0
 * or -ENOENT with one line in @err.
 */
int machine_usb_detach(struct machine *m, const char *name, char *err,
		       size_t errlen);
struct machine_usb_entry {
	unsigned port;
	char name[32];			/* sysfs name */
	uint16_t vid, pid;
	char product[64];
	bool gone;			/* unplugged from the host */
};
/* The passed-through devices, at most @max, by port; returns the count. */
size_t machine_usb_list(struct machine *m, struct machine_usb_entry *out,
			size_t max);

/* For hooks and tests, valid while the VM is built. */
struct bus *machine_pio(struct machine *m);
struct bus *machine_mmio(struct machine *m);
struct guest_mem *machine_mem(struct machine *m);
pthread_mutex_t *machine_lock(struct machine *m);
/* The built VM's devices, in creation order (device.h); empty between a
 * reset's teardown and rebuild. */
const struct device_table *machine_devices(struct machine *m);
/* Drive GSI @gsi (ISA IRQs 0-15 reach the PIC and the IOAPIC, 16-23 the
 * IOAPIC only) to @level.  Call with machine_lock() held. */
void machine_set_gsi(struct machine *m, unsigned gsi, int level);
/* Times the VM was (re)built by machine_run(): 1 + resets. */
unsigned machine_boot_count(const struct machine *m);

#endif
