/* SPDX-License-Identifier: MIT */
/*
 * The PC machine: the device table, interrupt routing, and the vCPU threads.
 *
 * Locks: m->lock is the device lock, held around every device access (vCPU
 * exits, timer callbacks, chardev input).  m->ctl guards the run state and
 * the vCPU handles.  Order: m->lock, then m->ctl; nothing holding m->ctl
 * takes m->lock (stop/reset only set flags and kick vCPUs).
 */
#include "machine.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boot/acpi.h"
#include "boot/linux.h"
#include "block/block.h"
#include "bus.h"
#include "clock.h"
#include "devices/acpi_pm.h"
#include "devices/chardev.h"
#include "devices/debugport.h"
#include "devices/fw_cfg.h"
#include "devices/i8042.h"
#include "devices/ide.h"
#include "devices/ioapic.h"
#include "devices/pci.h"
#include "devices/pic.h"
#include "devices/piix.h"
#include "devices/pit.h"
#include "devices/rtc.h"
#include "devices/uart.h"
#include "devices/vga.h"
#include "display/console.h"
#include "hv.h"
#include "log.h"
#include "mem.h"
#include "timer.h"
#include "vcpu.h"
#include "virtio/virtio_blk.h"

#define COM1_BASE	0x3f8
#define COM1_IRQ	4
#define RTC_IRQ		8
#define KBD_IRQ		1
#define AUX_IRQ		12
#define PIT_IRQ		0
#define ACPI_AREA_SIZE	0x20000		/* 0xe0000-0xfffff */
#define DEFAULT_BIOS	"/usr/share/seabios/bios-256k.bin"
#define LINUXBOOT_ROM	"/usr/share/qemu/linuxboot_dma.bin"
#define LINUXBOOT_NAME	"genroms/linuxboot_dma.bin"
#define BIOS_MAX	(16u << 20)
#define ISA_BIOS_SIZE	0x20000		/* the BIOS's last 128 KiB at 0xe0000 */
#define MEM_SLOT_BIOS	8		/* after the RAM slots */
#define MEM_SLOT_VRAM	9		/* the VGA's BAR0 */
#define VGA_DEVFN	(2 << 3)	/* 00:02.0, where PCs have it */
#define VGA_ROM		"/usr/share/seabios/vgabios-stdvga.bin"
#define VIRTIO_BLK_SLOT	5		/* first PCI slot of virtio-blk disks */
#define IDE_IRQ_PRIMARY	14
#define IDE_IRQ_SECONDARY 15
#define IDE_POS_CDROM	2		/* secondary master */

enum run_state { RUN_RUNNING, RUN_PAUSED, RUN_STOPPING };
enum run_end { END_NONE, END_STOP, END_RESET };

struct vcpu_thread {
	struct machine *m;
	unsigned id;
	pthread_t thread;
	struct hv_vcpu *vcpu;	/* set/cleared under m->ctl; NULL: not running */
};

struct machine {
	struct machine_config cfg;
	struct hv_system *hv;
	uint8_t *kernel, *initrd;
	size_t kernel_len, initrd_len;
	enum machine_firmware firmware;	/* resolved: NONE or BIOS */
	uint8_t *bios;			/* the flash image, page-aligned mmap */
	size_t bios_len;
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
	struct {			/* the machine table's devices */
		struct pic *pic;
		struct ioapic *ioapic;
		struct pit *pit;
		struct uart *com1;
		struct rtc *rtc;
		struct i8042 *kbc;
		struct pci_host *pci;
		struct piix *piix;
		struct acpi_pm *pm;
		struct debugport *dbg;
		struct fw_cfg *fw_cfg;
		struct piix_ide *ide;
		struct virtio_blk *vblk[MACHINE_MAX_DRIVES];
		struct vga *vga;
	} dev;
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
	unsigned boots;
	char err[256];
	bool input_started;
};

/* ---- run control ------------------------------------------------------- */

static void kick_all_locked(struct machine *m)
{
	for (unsigned i = 0; i < m->cfg.ncpus; i++)
		if (m->cpu[i].vcpu)
			hv_vcpu_kick(m->cpu[i].vcpu);
}

static void end_run(struct machine *m, enum run_end end, int status,
		    const char *err)
{
	pthread_mutex_lock(&m->ctl);
	if (m->end == END_NONE || (m->end == END_RESET && end == END_STOP)) {
		m->end = end;
		m->exit_status = status;
		if (err)
			snprintf(m->err, sizeof(m->err), "%s", err);
	}
	m->state = RUN_STOPPING;
	kick_all_locked(m);
	pthread_cond_broadcast(&m->ctl_cond);
	pthread_mutex_unlock(&m->ctl);
}

void machine_stop(struct machine *m, int status)
{
	end_run(m, END_STOP, status, NULL);
}

void machine_reset(struct machine *m)
{
	end_run(m, END_RESET, 0, NULL);
}

static void machine_fail(struct machine *m, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void machine_fail(struct machine *m, int err, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	end_run(m, END_STOP, err, buf);
}

void machine_pause(struct machine *m)
{
	unsigned live = 0;

	pthread_mutex_lock(&m->ctl);
	if (m->state != RUN_RUNNING) {
		pthread_mutex_unlock(&m->ctl);
		return;
	}
	m->state = RUN_PAUSED;
	kick_all_locked(m);
	for (unsigned i = 0; i < m->cfg.ncpus; i++)
		live += m->cpu[i].vcpu != NULL;
	while (m->state == RUN_PAUSED && m->paused < live)
		pthread_cond_wait(&m->ctl_cond, &m->ctl);
	/* The vCPUs first: the guest never runs on a stopped clock. */
	if (m->state == RUN_PAUSED)
		vclock_pause(&m->clock);
	pthread_mutex_unlock(&m->ctl);
}

void machine_resume(struct machine *m)
{
	bool resume;

	pthread_mutex_lock(&m->ctl);
	resume = m->state == RUN_PAUSED;
	pthread_mutex_unlock(&m->ctl);
	/* The clock first: the guest never runs on a stopped clock.  Not
	 * under ctl: it wakes the timer thread, which takes the device lock. */
	if (resume)
		vclock_resume(&m->clock);
	pthread_mutex_lock(&m->ctl);
	if (m->state == RUN_PAUSED)
		m->state = RUN_RUNNING;
	pthread_cond_broadcast(&m->ctl_cond);
	pthread_mutex_unlock(&m->ctl);
}

int machine_power_button(struct machine *m)
{
	int r = -ENODEV;

	pthread_mutex_lock(&m->lock);
	if (m->dev.pm) {
		acpi_pm_power_button(m->dev.pm);
		r = 0;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

/* Blocks while paused.  Returns false once the VM is stopping. */
static bool vcpu_may_run(struct machine *m)
{
	bool ok;

	pthread_mutex_lock(&m->ctl);
	while (m->state == RUN_PAUSED) {
		m->paused++;
		pthread_cond_broadcast(&m->ctl_cond);
		pthread_cond_wait(&m->ctl_cond, &m->ctl);
		m->paused--;
	}
	ok = m->state == RUN_RUNNING;
	pthread_mutex_unlock(&m->ctl);
	return ok;
}

/* ---- interrupt routing ------------------------------------------------- */

void machine_set_gsi(struct machine *m, unsigned gsi, int level)
{
	if (gsi < 16)
		pic_set_irq(m->dev.pic, gsi, level);
	/* The PIT's IRQ 0 is IOAPIC pin 2 (the MADT's source override). */
	ioapic_set_irq(m->dev.ioapic, gsi == 0 ? 2 : gsi, level);
}

static void gsi_set(void *opaque, unsigned gsi, int level)
{
	machine_set_gsi(opaque, gsi, level);
}

static struct irq_line gsi_line(struct machine *m, unsigned gsi)
{
	return (struct irq_line){ .set = gsi_set, .opaque = m, .gsi = gsi };
}

/* The PIC's INTR reaches the boot vCPU as ExtINT: wake it to inject. */
static void pic_intr_changed(void *opaque, bool level)
{
	struct machine *m = opaque;

	atomic_store(&m->pic_intr, level);
	if (!level)
		return;
	/* Lock order: device lock, then ctl (never the reverse). */
	pthread_mutex_lock(&m->ctl);
	if (m->cpu[0].vcpu)
		hv_vcpu_kick(m->cpu[0].vcpu);
	pthread_mutex_unlock(&m->ctl);
}

static void ioapic_send_msi(void *opaque, uint64_t addr, uint32_t data)
{
	struct machine *m = opaque;
	int r = hv_vm_signal_msi(m->vm, addr, data);

	if (r < 0)
		vlog_ratelimited(LOG_WARN, "IOAPIC: MSI 0x%" PRIx64 "/0x%x not delivered: %s",
				 addr, data, strerror(-r));
}

/* Mirror the redirection table into KVM's routes so that EOIs of
 * level-triggered vectors exit to us (HV_EXIT_EOI). */
static void ioapic_routes_changed(void *opaque)
{
	struct machine *m = opaque;
	struct hv_msi_route routes[IOAPIC_PINS];
	unsigned n = 0;
	int r;

	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
		uint64_t addr;
		uint32_t data;

		if (ioapic_pin_msi(m->dev.ioapic, pin, &addr, &data))
			routes[n++] = (struct hv_msi_route){ pin, addr, data };
	}
	r = hv_vm_set_msi_routes(m->vm, routes, n);
	if (r < 0)
		vlog_ratelimited(LOG_WARN, "IOAPIC: cannot update KVM routes: %s",
				 strerror(-r));
}

static const struct ioapic_ops ioapic_ops = {
	.send_msi = ioapic_send_msi,
	.routes_changed = ioapic_routes_changed,
};

/* PCI INTx: PIRQ[A-D] reach IOAPIC inputs 16-19 (active low, as the _PRT
 * says) and, through the PIIX's PIRQRC, the 8259A. */
static void pci_set_pirq(void *opaque, unsigned pirq, int level)
{
	struct machine *m = opaque;

	ioapic_set_irq(m->dev.ioapic, ACPI_PCI_GSI_BASE + pirq, !level);
	piix_set_pirq(m->dev.piix, pirq, level);
}

static int pci_send_msi(void *opaque, uint64_t addr, uint32_t data)
{
	struct machine *m = opaque;

	return hv_vm_signal_msi(m->vm, addr, data);
}

static const struct pci_host_ops pci_ops = {
	.set_pirq = pci_set_pirq,
	.send_msi = pci_send_msi,
};

static void piix_isa_irq(void *opaque, unsigned irq, int level)
{
	struct machine *m = opaque;

	pic_set_irq(m->dev.pic, irq, level);
}

static const struct piix_ops piix_ops = { .set_isa_irq = piix_isa_irq };

/* ---- device callbacks --------------------------------------------------- */

static void on_guest_reset(void *opaque)
{
	vlog(LOG_INFO, "guest requested a reset");
	machine_reset(opaque);
}

static void on_poweroff(void *opaque)
{
	vlog(LOG_INFO, "guest powered off (ACPI S5)");
	machine_stop(opaque, MACHINE_EXIT_POWEROFF);
}

static void on_test_exit(void *opaque, uint32_t code)
{
	machine_stop(opaque, (int)(code & 0x7fffffff));
}

static const struct i8042_ops kbc_ops = { .reset = on_guest_reset };
static const struct acpi_pm_ops pm_ops = {
	.poweroff = on_poweroff,
	.reset = on_guest_reset,
};

static size_t serial_receive(void *opaque, const uint8_t *buf, size_t len)
{
	struct machine *m = opaque;

	return m->dev.com1 ? uart_receive(m->dev.com1, buf, len) : len;
}

static void serial_quit(void *opaque)
{
	vlog(LOG_INFO, "quit requested from the console");
	machine_stop(opaque, 0);
}

/* ---- building and tearing down ----------------------------------------- */

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

/* IDE position of each ATA drive: the CD-ROM at the secondary master,
 * disks at the other positions in order; -1 for virtio disks. */
static void ata_positions(const struct machine *m, int pos[MACHINE_MAX_DRIVES])
{
	static const int disk_pos[] = { 0, 1, 3 };
	unsigned next = 0;

	for (unsigned i = 0; i < m->cfg.ndrives; i++) {
		const struct machine_drive *d = &m->cfg.drive[i];

		if (d->cdrom)
			pos[i] = IDE_POS_CDROM;
		else if (d->bus == MACHINE_IF_ATA && next < 3)
			pos[i] = disk_pos[next++];
		else
			pos[i] = -1;
	}
}

/* The PIIX IDE function (always there, as on any PC of the era, with an
 * empty CD-ROM drive unless a disk needs the position) and one virtio-blk
 * function per virtio disk. */
static int add_drives(struct machine *m, char *err, size_t errlen)
{
	struct piix_ide_config ic = {
		.pci = m->dev.pci, .devfn = PIIX_IDE_DEVFN, .pio = m->pio,
		.mem = &m->mem, .lock = &m->lock,
		.irq = { gsi_line(m, IDE_IRQ_PRIMARY), gsi_line(m, IDE_IRQ_SECONDARY) },
	};
	int pos[MACHINE_MAX_DRIVES];
	unsigned nvirtio = 0;
	bool pos2_used = false;

	ata_positions(m, pos);
	for (unsigned i = 0; i < m->cfg.ndrives; i++) {
		if (pos[i] < 0)
			continue;
		ic.drive[pos[i]].blk = m->blk[i];
		ic.drive[pos[i]].cdrom = m->cfg.drive[i].cdrom;
		pos2_used |= pos[i] == IDE_POS_CDROM;
	}
	if (!pos2_used)
		ic.drive[IDE_POS_CDROM].cdrom = true;	/* empty drive */
	m->dev.ide = piix_ide_new(&ic, err, errlen);
	if (!m->dev.ide)
		return -EINVAL;
	for (unsigned i = 0; i < m->cfg.ndrives; i++) {
		struct virtio_blk_config vc = {
			.pci = m->dev.pci,
			.devfn = (uint8_t)((VIRTIO_BLK_SLOT + nvirtio) << 3),
			.mem = &m->mem, .lock = &m->lock, .blk = m->blk[i],
		};
		char serial[21];

		if (pos[i] >= 0)
			continue;
		snprintf(serial, sizeof(serial), "VIVARIUM-VD%u", nvirtio);
		vc.serial = serial;
		m->dev.vblk[nvirtio] = virtio_blk_new(&vc, err, errlen);
		if (!m->dev.vblk[nvirtio])
			return -EINVAL;
		nvirtio++;
	}
	return 0;
}

static int build_devices(struct machine *m, char *err, size_t errlen)
{
	int r;

	TRY_NEW(m->pio, bus_new("pio"), "port bus");
	TRY_NEW(m->mmio, bus_new("mmio"), "MMIO bus");
	/* A boot starts running, even if the last one ended paused. */
	vclock_resume(&m->clock);
	TRY_NEW(m->timers, vtimer_queue_new(&m->lock, &m->clock.clk), "timers");

	/* The machine table: what a PC of the i440FX era has. */
	TRY_NEW(m->dev.pic, pic_new(pic_intr_changed, m), "8259A PIC");
	TRY(pic_attach(m->dev.pic, m->pio), "8259A PIC");
	TRY_NEW(m->dev.ioapic, ioapic_new(0, &ioapic_ops, m), "IOAPIC");
	TRY(ioapic_attach(m->dev.ioapic, m->mmio, IOAPIC_DEFAULT_BASE), "IOAPIC");
	TRY_NEW(m->dev.pit, pit_new(m->timers, gsi_line(m, PIT_IRQ)), "8254 PIT");
	TRY(pit_attach(m->dev.pit, m->pio), "8254 PIT");
	TRY_NEW(m->dev.com1, uart_new(gsi_line(m, COM1_IRQ), m->cfg.serial), "COM1");
	TRY(uart_attach(m->dev.com1, m->pio, COM1_BASE), "COM1");
	TRY_NEW(m->dev.rtc, rtc_new(m->timers, gsi_line(m, RTC_IRQ)), "RTC");
	TRY(rtc_attach(m->dev.rtc, m->pio), "RTC");
	TRY_NEW(m->dev.kbc, i8042_new(&kbc_ops, m, gsi_line(m, KBD_IRQ),
				  gsi_line(m, AUX_IRQ), m->timers), "i8042");
	TRY(i8042_attach(m->dev.kbc, m->pio), "i8042");
	TRY_NEW(m->dev.pci, pci_host_new(), "PCI host bridge");
	TRY(pci_host_attach(m->dev.pci, m->pio, m->mmio), "PCI host bridge");
	pci_host_set_ops(m->dev.pci, &pci_ops, m);
	TRY_NEW(m->dev.piix, piix_new(m->dev.pci, &piix_ops, m), "PIIX");
	/* PCI interrupt lines idle high (active low). */
	for (unsigned i = 0; i < 4; i++)
		ioapic_set_irq(m->dev.ioapic, ACPI_PCI_GSI_BASE + i, 1);
	TRY_NEW(m->dev.pm, acpi_pm_new(m->timers, gsi_line(m, ACPI_SCI_IRQ),
				   &pm_ops, m), "ACPI PM");
	TRY(acpi_pm_attach(m->dev.pm, m->pio, ACPI_PM_BASE), "ACPI PM");
	if (!m->cfg.no_vga) {
		struct vga_config vc = {
			.vm = m->vm, .vram_slot = MEM_SLOT_VRAM,
			.vram_size = VGA_DEFAULT_VRAM,
			.rom = m->vga_rom, .rom_len = m->vga_rom_len,
		};

		TRY_NEW(m->dev.vga, vga_new(&vc), "VGA");
		TRY(vga_attach(m->dev.vga, m->pio, m->mmio, m->dev.pci,
			       VGA_DEVFN), "VGA");
	}
	r = add_drives(m, err, errlen);
	if (r < 0)
		return r;
	/* 0xcf9 shares CONFIG_ADDRESS's dword: the host bridge forwards it. */
	pci_host_set_cf9_handler(m->dev.pci, &acpi_pm_reset_ops, m->dev.pm);
	TRY_NEW(m->dev.dbg, debugport_new(m->cfg.debugcon, on_test_exit, m),
		"debug ports");
	TRY(debugport_attach(m->dev.dbg, m->pio), "debug ports");
	return 0;
}

/* The ACPI tables' view of this machine, for both boot paths. */
static struct acpi_config machine_acpi_config(const struct machine *m)
{
	return (struct acpi_config){
		.ncpus = m->cfg.ncpus,
		.ioapic_id = 0,
		.ioapic_addr = IOAPIC_DEFAULT_BASE,
		.pm_base = PIIX_PM_BASE,
		.sci_irq = ACPI_SCI_IRQ,
		.reset_port = ACPI_RESET_PORT,
		.reset_value = ACPI_RESET_VALUE,
		.pci_hole_start = guest_mem_low_end(&m->mem),
	};
}

static int load_linux(struct machine *m, char *err, size_t errlen)
{
	struct acpi_config acfg = machine_acpi_config(m);
	struct linux_boot b = {
		.kernel = m->kernel, .kernel_len = m->kernel_len,
		.initrd = m->initrd, .initrd_len = m->initrd_len,
		.cmdline = m->cfg.cmdline,
		.rsdp_gpa = MEM_BIOS_START,
	};
	uint8_t *area = gpa_to_hva(&m->mem, MEM_BIOS_START, ACPI_AREA_SIZE);
	long n;

	if (!area) {
		snprintf(err, errlen, "no RAM for the ACPI tables");
		return -ENOMEM;
	}
	n = acpi_build(area, ACPI_AREA_SIZE, MEM_BIOS_START, &acfg);
	if (n < 0) {
		snprintf(err, errlen, "cannot build ACPI tables: %s",
			 strerror((int)-n));
		return (int)n;
	}
	return linux_load(&m->mem, &b, &m->entry, err, errlen);
}

/* CMOS bytes SeaBIOS reads before fw_cfg (memory sizes, CPU count) and
 * the boot order (QEMU's convention: 0x3d/0x38 nibbles, 2 disk, 3 CD). */
static void bios_cmos(struct machine *m)
{
	uint64_t low = guest_mem_low_end(&m->mem), high = 0, ext, above16;
	struct rtc *rtc = m->dev.rtc;
	bool cd_first = m->cfg.boot == MACHINE_BOOT_CDROM;

	if (m->mem.nregions > 2)
		high = m->mem.region[2].size;
	if (m->cfg.boot == MACHINE_BOOT_DEFAULT)
		for (unsigned i = 0; i < m->cfg.ndrives; i++)
			cd_first |= m->cfg.drive[i].cdrom;
	ext = low > MEM_HIGH_START ? (low - MEM_HIGH_START) >> 10 : 0;
	above16 = low > (16u << 20) ? (low - (16u << 20)) >> 16 : 0;
	if (ext > 0xffff)
		ext = 0xffff;
	if (above16 > 0xffff)
		above16 = 0xffff;
	rtc_cmos_set(rtc, 0x15, 640 & 0xff);		/* base memory, KiB */
	rtc_cmos_set(rtc, 0x16, 640 >> 8);
	rtc_cmos_set(rtc, 0x17, (uint8_t)ext);		/* 1 MiB-, KiB */
	rtc_cmos_set(rtc, 0x18, (uint8_t)(ext >> 8));
	rtc_cmos_set(rtc, 0x30, (uint8_t)ext);
	rtc_cmos_set(rtc, 0x31, (uint8_t)(ext >> 8));
	rtc_cmos_set(rtc, 0x34, (uint8_t)above16);	/* 16 MiB-, 64 KiB */
	rtc_cmos_set(rtc, 0x35, (uint8_t)(above16 >> 8));
	rtc_cmos_set(rtc, 0x5b, (uint8_t)(high >> 16));	/* 4 GiB-, 64 KiB */
	rtc_cmos_set(rtc, 0x5c, (uint8_t)(high >> 24));
	rtc_cmos_set(rtc, 0x5d, (uint8_t)(high >> 32));
	rtc_cmos_set(rtc, 0x5f, (uint8_t)(m->cfg.ncpus - 1));
	rtc_cmos_set(rtc, 0x3d, cd_first ? 0x23 : 0x32);
	rtc_cmos_set(rtc, 0x38, 0x01);			/* no floppy signature check */
}

/* fw_cfg "bootorder": OpenFirmware paths as SeaBIOS builds them for its
 * drives, the kind --boot asks for first (CMOS carries the same order for
 * the legacy entries). */
static int bootorder(struct machine *m)
{
	char buf[MACHINE_MAX_DRIVES * 48] = "";
	size_t n = 0;
	int pos[MACHINE_MAX_DRIVES];
	bool cd_first = m->cfg.boot != MACHINE_BOOT_DISK;

	ata_positions(m, pos);
	for (int pass = 0; pass < 2; pass++) {
		unsigned nvirtio = 0;

		for (unsigned i = 0; i < m->cfg.ndrives; i++) {
			bool cd = m->cfg.drive[i].cdrom;

			if (pos[i] < 0)
				nvirtio++;
			if (cd != (cd_first == (pass == 0)))
				continue;
			if (pos[i] >= 0)
				n += (size_t)snprintf(buf + n, sizeof(buf) - n,
					"/pci@i0cf8/ide@1,1/drive@%d/disk@%d\n",
					pos[i] / 2, pos[i] % 2);
			else
				n += (size_t)snprintf(buf + n, sizeof(buf) - n,
					"/pci@i0cf8/scsi@%x/disk@0,0\n",
					VIRTIO_BLK_SLOT + nvirtio - 1);
		}
	}
	return n ? fw_cfg_add_file(m->dev.fw_cfg, "bootorder", buf, n + 1) : 0;
}

/* --kernel with --firmware bios: the linuxboot option ROM loads these. */
static int bios_kernel(struct machine *m, char *err, size_t errlen)
{
	struct linux_boot b = {
		.kernel = m->kernel, .kernel_len = m->kernel_len,
		.initrd = m->initrd, .initrd_len = m->initrd_len,
		.cmdline = m->cfg.cmdline,
	};
	struct fw_cfg *fc = m->dev.fw_cfg;
	struct linux_fw_boot fb;
	int r = linux_fw_boot_prepare(&b, guest_mem_low_end(&m->mem), &fb,
				      err, errlen);

	if (r < 0)
		return r;
	if ((r = fw_cfg_add_u32(fc, FW_CFG_SETUP_ADDR, fb.setup_gpa)) < 0 ||
	    (r = fw_cfg_add_u32(fc, FW_CFG_SETUP_SIZE, (uint32_t)fb.setup_len)) < 0 ||
	    (r = fw_cfg_add_bytes(fc, FW_CFG_SETUP_DATA, fb.setup, fb.setup_len)) < 0 ||
	    (r = fw_cfg_add_u32(fc, FW_CFG_KERNEL_ADDR, fb.kernel_gpa)) < 0 ||
	    (r = fw_cfg_add_u32(fc, FW_CFG_KERNEL_SIZE, (uint32_t)fb.kernel_len)) < 0 ||
	    (r = fw_cfg_add_bytes(fc, FW_CFG_KERNEL_DATA, fb.kernel, fb.kernel_len)) < 0 ||
	    (r = fw_cfg_add_u32(fc, FW_CFG_INITRD_ADDR, fb.initrd_gpa)) < 0 ||
	    (r = fw_cfg_add_u32(fc, FW_CFG_INITRD_SIZE, (uint32_t)fb.initrd_len)) < 0 ||
	    (r = fw_cfg_add_bytes(fc, FW_CFG_INITRD_DATA, fb.initrd, fb.initrd_len)) < 0 ||
	    (r = fw_cfg_add_u32(fc, FW_CFG_CMDLINE_ADDR, fb.cmdline_gpa)) < 0 ||
	    (r = fw_cfg_add_u32(fc, FW_CFG_CMDLINE_SIZE, (uint32_t)fb.cmdline_len)) < 0 ||
	    (r = fw_cfg_add_bytes(fc, FW_CFG_CMDLINE_DATA, fb.cmdline, fb.cmdline_len)) < 0 ||
	    (r = fw_cfg_add_file(fc, LINUXBOOT_NAME, m->linuxboot, m->linuxboot_len)) < 0)
		snprintf(err, errlen, "fw_cfg kernel items: %s", strerror(-r));
	linux_fw_boot_free(&fb);
	return r;
}

/* The fw_cfg items SeaBIOS reads (see docs in devices/fw_cfg.h). */
static int bios_fw_cfg(struct machine *m, char *err, size_t errlen)
{
	struct acpi_config acfg = machine_acpi_config(m);
	struct acpi_fw_cfg_blobs acpi;
	struct e820_entry e820[2];
	struct fw_cfg *fc;
	unsigned n = 0;
	uint8_t uuid[16] = { 0 };
	int r;

	TRY_NEW(m->dev.fw_cfg, fw_cfg_new(&m->mem), "fw_cfg");
	fc = m->dev.fw_cfg;
	TRY(fw_cfg_attach(fc, m->pio), "fw_cfg");
	/* RAM only: SeaBIOS reserves its own areas below 1 MiB and the flash. */
	e820[n++] = (struct e820_entry){ 0, guest_mem_low_end(&m->mem), E820_RAM };
	if (m->mem.nregions > 2)
		e820[n++] = (struct e820_entry){ m->mem.region[2].gpa,
						 m->mem.region[2].size, E820_RAM };
	TRY(fw_cfg_add_file(fc, "etc/e820", e820, n * sizeof(e820[0])), "fw_cfg e820");
	TRY(fw_cfg_add_u64(fc, FW_CFG_RAM_SIZE, m->cfg.ram_size), "fw_cfg");
	TRY(fw_cfg_add_u16(fc, FW_CFG_NB_CPUS, (uint16_t)m->cfg.ncpus), "fw_cfg");
	TRY(fw_cfg_add_u16(fc, FW_CFG_MAX_CPUS, (uint16_t)m->cfg.ncpus), "fw_cfg");
	TRY(fw_cfg_add_u64(fc, FW_CFG_NUMA, 0), "fw_cfg");
	TRY(fw_cfg_add_u16(fc, FW_CFG_BOOT_MENU, 0), "fw_cfg");
	TRY(fw_cfg_add_bytes(fc, FW_CFG_UUID, uuid, sizeof(uuid)), "fw_cfg");
	TRY(fw_cfg_add_u16(fc, FW_CFG_NOGRAPHIC, m->cfg.sercon), "fw_cfg");
	if (m->kernel) {
		static const char rom_first[] = "/rom@" LINUXBOOT_NAME "\n";

		r = bios_kernel(m, err, errlen);
		if (r < 0)
			return r;
		TRY(fw_cfg_add_file(fc, "bootorder", rom_first, sizeof(rom_first)),
		    "fw_cfg bootorder");
	} else {
		TRY(bootorder(m), "fw_cfg bootorder");
	}
	if (m->cfg.sercon) {
		uint16_t port = COM1_BASE;

		TRY(fw_cfg_add_file(fc, "etc/sercon-port", &port, 2), "fw_cfg");
	}
	r = acpi_build_fw_cfg(&acfg, &acpi);
	if (r < 0) {
		snprintf(err, errlen, "cannot build ACPI tables: %s", strerror(-r));
		return r;
	}
	r = fw_cfg_add_file(fc, "etc/acpi/rsdp", acpi.rsdp, acpi.rsdp_len);
	if (r == 0)
		r = fw_cfg_add_file(fc, "etc/acpi/tables", acpi.tables, acpi.tables_len);
	if (r == 0)
		r = fw_cfg_add_file(fc, "etc/table-loader", acpi.loader, acpi.loader_len);
	acpi_fw_cfg_blobs_free(&acpi);
	TRY(r, "fw_cfg ACPI tables");
	return 0;
}

/* The flash at the top of 4 GiB (read-only slot) and its last 128 KiB at
 * 0xe0000 in RAM, where the reset vector's far jump lands; SeaBIOS then
 * copies itself from the high alias (PAM registers are storage only). */
static int load_bios(struct machine *m, char *err, size_t errlen)
{
	size_t isa = m->bios_len < ISA_BIOS_SIZE ? m->bios_len : ISA_BIOS_SIZE;
	int r;

	r = hv_vm_set_memory(m->vm, MEM_SLOT_BIOS, MEM_4G - m->bios_len,
			     m->bios_len, m->bios, HV_MEM_READONLY);
	if (r == -ENOTSUP)	/* no read-only slots: guest writes stick until reset */
		r = hv_vm_set_memory(m->vm, MEM_SLOT_BIOS, MEM_4G - m->bios_len,
				     m->bios_len, m->bios, 0);
	TRY(r, "cannot map the BIOS");
	TRY(guest_mem_write(&m->mem, MEM_HIGH_START - isa,
			    m->bios + m->bios_len - isa, isa), "BIOS shadow");
	bios_cmos(m);
	return bios_fw_cfg(m, err, errlen);
}

static int build(struct machine *m, char *err, size_t errlen)
{
	int r;

	m->end = END_NONE;
	atomic_store(&m->pic_intr, false);	/* the new PIC starts quiet */
	m->state = RUN_RUNNING;
	m->paused = 0;
	m->err[0] = 0;

	TRY(hv_vm_create(m->hv, &m->vm), "cannot create the VM");
	r = guest_mem_init(&m->mem, m->cfg.ram_size);
	if (r < 0) {
		snprintf(err, errlen, "cannot allocate %" PRIu64 " MiB of guest RAM: %s",
			 m->cfg.ram_size >> 20, strerror(-r));
		return r;
	}
	for (unsigned i = 0; i < m->mem.nregions; i++)
		TRY(hv_vm_set_memory(m->vm, i, m->mem.region[i].gpa,
				     m->mem.region[i].size,
				     m->mem.region[i].hva, 0),
		    "cannot map guest RAM");
	r = build_devices(m, err, errlen);
	if (r < 0)
		return r;
	if (m->cfg.hooks) {
		if (m->cfg.hooks->add_devices)
			TRY(m->cfg.hooks->add_devices(m, m->cfg.hooks->opaque),
			    "test devices");
		if (m->cfg.hooks->load)
			TRY(m->cfg.hooks->load(m, &m->mem, m->cfg.hooks->opaque),
			    "test guest");
		return 0;
	}
	if (m->firmware == MACHINE_FW_BIOS)
		return load_bios(m, err, errlen);
	return load_linux(m, err, errlen);
}

/* Frontends see the new devices; called without the device lock. */
static void console_attach(struct machine *m)
{
	if (!m->cfg.console)
		return;
	if (m->dev.vga)
		console_set_hw(m->cfg.console, &vga_console_ops, m->dev.vga,
			       &m->lock);
	console_set_input(m->cfg.console, &i8042_input_ops, m->dev.kbc,
			  &m->lock);
}

static void console_detach(struct machine *m)
{
	if (!m->cfg.console)
		return;
	/* Refresh the last frame, so the window keeps the final screen. */
	console_refresh(m->cfg.console);
	console_set_hw(m->cfg.console, NULL, NULL, NULL);
	console_set_input(m->cfg.console, NULL, NULL, NULL);
}

static void teardown(struct machine *m)
{
	/* Frontends take the console lock, then the device lock: detach them
	 * before taking the latter. */
	console_detach(m);
	/* vCPU threads are gone; stop the timer thread before freeing what its
	 * callbacks touch.  Only chardev input may still look (at com1). */
	vtimer_queue_free(m->timers);
	m->timers = NULL;
	/* Disk requests in flight complete under the device lock: wait for
	 * them before taking it. */
	if (m->dev.ide)
		piix_ide_drain(m->dev.ide);
	for (unsigned i = 0; i < MACHINE_MAX_DRIVES; i++)
		if (m->dev.vblk[i])
			virtio_blk_drain(m->dev.vblk[i]);
	pthread_mutex_lock(&m->lock);
	for (unsigned i = 0; i < MACHINE_MAX_DRIVES; i++)
		virtio_blk_free(m->dev.vblk[i]);
	vga_free(m->dev.vga);
	if (m->dev.ide)
		piix_ide_free(m->dev.ide);
	fw_cfg_free(m->dev.fw_cfg);
	debugport_free(m->dev.dbg);
	acpi_pm_free(m->dev.pm);
	piix_free(m->dev.piix);		/* PCI functions before their host */
	pci_host_free(m->dev.pci);
	i8042_free(m->dev.kbc);
	rtc_free(m->dev.rtc);
	uart_free(m->dev.com1);
	pit_free(m->dev.pit);
	ioapic_free(m->dev.ioapic);
	pic_free(m->dev.pic);
	memset(&m->dev, 0, sizeof(m->dev));
	bus_free(m->pio);
	bus_free(m->mmio);
	m->pio = m->mmio = NULL;
	pthread_mutex_unlock(&m->lock);
	if (m->vm)
		hv_vm_destroy(m->vm);
	m->vm = NULL;
	guest_mem_free(&m->mem);
}

/* ---- the vCPU thread ---------------------------------------------------- */

static int setup_bsp(struct machine *m, struct hv_vcpu *vcpu)
{
	struct hv_regs regs;
	struct hv_sregs sregs;
	int r;

	if (m->cfg.hooks)
		return m->cfg.hooks->setup_bsp
			       ? m->cfg.hooks->setup_bsp(m, vcpu, m->cfg.hooks->opaque)
			       : 0;
	if (m->firmware == MACHINE_FW_BIOS)
		return 0;	/* the reset state: F000:FFF0, the flash's vector */
	memset(&regs, 0, sizeof(regs));
	r = hv_vcpu_get_sregs(vcpu, &sregs);
	if (r < 0)
		return r;
	r = linux_setup_vcpu(&m->mem, &m->entry, &regs, &sregs);
	if (r < 0)
		return r;
	r = hv_vcpu_set_sregs(vcpu, &sregs);
	return r < 0 ? r : hv_vcpu_set_regs(vcpu, &regs);
}

/* ExtINT from the PIC, injected by the boot vCPU before entering. */
static void inject_pic(struct machine *m, struct hv_vcpu *vcpu)
{
	bool pending, inject = false;
	uint8_t vector = 0;

	if (!atomic_load(&m->pic_intr)) {
		hv_vcpu_request_interrupt_window(vcpu, false);
		return;
	}
	pthread_mutex_lock(&m->lock);
	pending = pic_intr(m->dev.pic);
	if (pending && hv_vcpu_ready_for_interrupt(vcpu)) {
		vector = pic_ack(m->dev.pic);
		inject = true;
	}
	pthread_mutex_unlock(&m->lock);
	if (inject) {
		int r = hv_vcpu_interrupt(vcpu, vector);

		if (r < 0)
			vlog_ratelimited(LOG_WARN, "PIC: vector 0x%x lost: %s",
					 vector, strerror(-r));
		pending = false;
	}
	hv_vcpu_request_interrupt_window(vcpu, pending);
}

static void report_internal_error(struct machine *m, struct hv_vcpu *vcpu,
				  const struct hv_exit *e)
{
	char bytes[3 * 15 + 1] = "";
	struct hv_regs regs = { 0 };

	hv_vcpu_get_regs(vcpu, &regs);
	for (unsigned i = 0; i < e->internal.insn_len && i < 15; i++)
		snprintf(bytes + 3 * i, 4, "%s%02x", i ? " " : "",
			 e->internal.insn[i]);
	machine_fail(m, -EIO,
		     "KVM internal error %u on vCPU %u at RIP 0x%" PRIx64
		     "%s%s%s (the host's KVM could not run this guest code)",
		     e->internal.suberror, hv_vcpu_id(vcpu), regs.rip,
		     bytes[0] ? " (instruction bytes " : "", bytes,
		     bytes[0] ? ")" : "");
}

/* Returns false when the thread should stop. */
static bool handle_exit(struct machine *m, struct hv_vcpu *vcpu,
			struct hv_exit *e)
{
	switch (e->kind) {
	case HV_EXIT_IO:
		pthread_mutex_lock(&m->lock);
		vcpu_dispatch_io(m->pio, e);
		pthread_mutex_unlock(&m->lock);
		return true;
	case HV_EXIT_MMIO:
		pthread_mutex_lock(&m->lock);
		vcpu_dispatch_mmio(m->mmio, e);
		pthread_mutex_unlock(&m->lock);
		return true;
	case HV_EXIT_EOI:
		pthread_mutex_lock(&m->lock);
		ioapic_eoi(m->dev.ioapic, e->eoi.vector);
		pthread_mutex_unlock(&m->lock);
		return true;
	case HV_EXIT_INTR:
	case HV_EXIT_IRQ_WINDOW:
	case HV_EXIT_NONE:
	case HV_EXIT_HLT:
	case HV_EXIT_DEBUG:
		return true;
	case HV_EXIT_SHUTDOWN:
		vlog(LOG_INFO, "vCPU %u: triple fault, resetting", hv_vcpu_id(vcpu));
		machine_reset(m);
		return false;
	case HV_EXIT_SYSTEM_EVENT:
		if (e->system_event.type == HV_EVENT_RESET) {
			machine_reset(m);
		} else if (e->system_event.type == HV_EVENT_SHUTDOWN) {
			machine_stop(m, MACHINE_EXIT_POWEROFF);
		} else {
			machine_fail(m, -EIO, "guest crashed (system event %u)",
				     e->system_event.raw_type);
		}
		return false;
	case HV_EXIT_INTERNAL_ERROR:
		report_internal_error(m, vcpu, e);
		return false;
	case HV_EXIT_FAIL_ENTRY:
		machine_fail(m, -EIO, "VM entry failed on vCPU %u (hardware reason 0x%" PRIx64 ")",
			     hv_vcpu_id(vcpu), e->fail_entry.reason);
		return false;
	case HV_EXIT_UNKNOWN:
	default:
		machine_fail(m, -EIO, "unexpected KVM exit %u on vCPU %u",
			     e->unknown.reason, hv_vcpu_id(vcpu));
		return false;
	}
}

static void *vcpu_main(void *arg)
{
	struct vcpu_thread *t = arg;
	struct machine *m = t->m;
	const struct hv_cpu_model *model =
		m->cfg.cpu_model ? m->cfg.cpu_model : &hv_cpu_model_host;
	struct hv_vcpu *vcpu = NULL;
	struct hv_exit e;
	int r;

	r = hv_vcpu_create(m->vm, t->id, model, m->cfg.ncpus, &vcpu);
	if (r < 0)
		machine_fail(m, r, "cannot create vCPU %u: %s", t->id, strerror(-r));
	pthread_mutex_lock(&m->ctl);
	t->vcpu = vcpu;
	/* Every local APIC must exist before the boot vCPU sends INIT/SIPI. */
	m->arrived++;
	pthread_cond_broadcast(&m->ctl_cond);
	while (m->arrived < m->expected)
		pthread_cond_wait(&m->ctl_cond, &m->ctl);
	pthread_mutex_unlock(&m->ctl);
	if (!vcpu)
		return NULL;
	if (t->id == 0) {
		r = setup_bsp(m, vcpu);
		if (r < 0)
			machine_fail(m, r, "cannot set up the boot vCPU: %s",
				     strerror(-r));
	}
	while (vcpu_may_run(m)) {
		if (t->id == 0)
			inject_pic(m, vcpu);
		r = hv_vcpu_run(vcpu, &e);
		if (r < 0) {
			machine_fail(m, r, "vCPU %u: KVM_RUN failed: %s", t->id,
				     strerror(-r));
			break;
		}
		if (!handle_exit(m, vcpu, &e))
			break;
	}
	pthread_mutex_lock(&m->ctl);
	t->vcpu = NULL;
	pthread_cond_broadcast(&m->ctl_cond);
	pthread_mutex_unlock(&m->ctl);
	hv_vcpu_destroy(vcpu);
	return NULL;
}

/* ---- public ------------------------------------------------------------- */

static int read_file(const char *path, const char *what, uint8_t **data,
		     size_t *len, char *err, size_t errlen)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t done = 0;

	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s '%s': %s", what, path,
			 strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s '%s' is not a regular file", what, path);
		close(fd);
		return -EINVAL;
	}
	*data = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!*data) {
		close(fd);
		snprintf(err, errlen, "%s '%s': out of memory", what, path);
		return -ENOMEM;
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, *data + done, (size_t)st.st_size - done);

		if (n <= 0) {
			int e = n < 0 ? errno : EIO;

			snprintf(err, errlen, "cannot read %s '%s': %s", what,
				 path, strerror(e));
			close(fd);
			free(*data);
			*data = NULL;
			return -e;
		}
		done += (size_t)n;
	}
	close(fd);
	*len = done;
	return 0;
}

/* The flash image: a multiple of 64 KiB up to 16 MiB, kept in its own
 * page-aligned mapping because it becomes a memory slot. */
static int read_bios(struct machine *m, const char *path, char *err,
		     size_t errlen)
{
	uint8_t *data;
	size_t len;
	int r = read_file(path, "firmware", &data, &len, err, errlen);

	if (r < 0) {
		if (r == -ENOENT)
			snprintf(err + strlen(err), errlen - strlen(err),
				 " (install Debian's seabios package)");
		return r;
	}
	if (!len || len % 0x10000 || len > BIOS_MAX) {
		snprintf(err, errlen, "firmware '%s' is %zu bytes; a BIOS image is a multiple of 64 KiB up to 16 MiB",
			 path, len);
		free(data);
		return -EINVAL;
	}
	m->bios = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m->bios == MAP_FAILED) {
		m->bios = NULL;
		free(data);
		snprintf(err, errlen, "firmware: out of memory");
		return -ENOMEM;
	}
	memcpy(m->bios, data, len);
	m->bios_len = len;
	free(data);
	return 0;
}

/* Open every disk image now, so that a wrong path, a corrupt image or an
 * image another VM is using fails before anything runs. */
static int open_drives(struct machine *m, char *err, size_t errlen)
{
	unsigned ata = 0, cdroms = 0;

	if (m->cfg.ndrives > MACHINE_MAX_DRIVES) {
		snprintf(err, errlen, "at most %u disks and CD-ROMs", MACHINE_MAX_DRIVES);
		return -EINVAL;
	}
	for (unsigned i = 0; i < m->cfg.ndrives; i++) {
		const struct machine_drive *d = &m->cfg.drive[i];
		struct blk_open_opts o = {
			.format = (enum blk_format)d->format,
			.readonly = d->readonly || d->cdrom,
		};
		char e[400];
		int r;

		if (d->cdrom)
			cdroms++;
		else if (d->bus == MACHINE_IF_ATA)
			ata++;
		if (cdroms > 1 || ata > 3 || (ata > 2 && cdroms)) {
			snprintf(err, errlen, "too many ATA drives: the IDE controller has four positions (one CD-ROM and up to three disks; put more disks on if=virtio)");
			return -EINVAL;
		}
		if (!d->path) {
			snprintf(err, errlen, "drive %u has no path", i);
			return -EINVAL;
		}
		r = blk_open(d->path, &o, &m->blk[i], e, sizeof(e));
		if (r < 0) {
			snprintf(err, errlen, "%s %s", d->cdrom ? "CD-ROM:" : "disk:", e);
			return r;
		}
	}
	return 0;
}

int machine_create(const struct machine_config *cfg, struct machine **out,
		   char *err, size_t errlen)
{
	struct machine *m;
	int r;

	*out = NULL;
	if (cfg->ncpus < 1 || cfg->ncpus > MACHINE_MAX_CPUS) {
		snprintf(err, errlen, "vCPU count %u out of range 1-%u",
			 cfg->ncpus, MACHINE_MAX_CPUS);
		return -EINVAL;
	}
	if (cfg->ram_size < (16ull << 20) || (cfg->ram_size & 0xfffff)) {
		snprintf(err, errlen, "memory size must be a whole number of MiB, at least 16 MiB");
		return -EINVAL;
	}
	if (!cfg->hooks && cfg->firmware == MACHINE_FW_NONE && !cfg->kernel_path) {
		snprintf(err, errlen, "nothing to boot: direct boot needs --kernel PATH");
		return -EINVAL;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	m->cfg = *cfg;
	m->firmware = cfg->firmware;
	if (m->firmware == MACHINE_FW_AUTO)
		m->firmware = cfg->kernel_path ? MACHINE_FW_NONE : MACHINE_FW_BIOS;
	pthread_mutex_init(&m->lock, NULL);
	pthread_mutex_init(&m->ctl, NULL);
	pthread_cond_init(&m->ctl_cond, NULL);
	vclock_virt_init(&m->clock, &vclock_host);
	if (cfg->kernel_path) {
		r = read_file(cfg->kernel_path, "kernel", &m->kernel,
			      &m->kernel_len, err, errlen);
		if (r < 0)
			goto fail;
	}
	if (cfg->initrd_path) {
		r = read_file(cfg->initrd_path, "initrd", &m->initrd,
			      &m->initrd_len, err, errlen);
		if (r < 0)
			goto fail;
	}
	if (m->firmware == MACHINE_FW_BIOS && !cfg->hooks) {
		r = read_bios(m, cfg->bios_path ? cfg->bios_path : DEFAULT_BIOS,
			      err, errlen);
		if (r < 0)
			goto fail;
		if (cfg->kernel_path) {
			r = read_file(LINUXBOOT_ROM, "Linux boot option ROM",
				      &m->linuxboot, &m->linuxboot_len, err, errlen);
			if (r < 0) {
				snprintf(err + strlen(err), errlen - strlen(err),
					 " (install Debian's qemu-system-data package, or leave out --firmware bios)");
				goto fail;
			}
		}
		if (!cfg->no_vga) {
			r = read_file(VGA_ROM, "VGA BIOS", &m->vga_rom,
				      &m->vga_rom_len, err, errlen);
			if (r < 0) {
				snprintf(err + strlen(err), errlen - strlen(err),
					 " (install Debian's seabios package)");
				goto fail;
			}
		}
	}
	r = open_drives(m, err, errlen);
	if (r < 0)
		goto fail;
	r = hv_open(cfg->kvm_path, &m->hv, err, errlen);
	if (r < 0)
		goto fail;
	*out = m;
	return 0;
fail:
	machine_destroy(m);
	return r;
}

void machine_destroy(struct machine *m)
{
	if (!m)
		return;
	/* The input thread calls into the machine under its lock. */
	if (m->input_started)
		chardev_stop_input(m->cfg.serial);
	if (m->hv)
		hv_close(m->hv);
	free(m->kernel);
	free(m->initrd);
	free(m->linuxboot);
	free(m->vga_rom);
	if (m->bios)
		munmap(m->bios, m->bios_len);
	for (unsigned i = 0; i < MACHINE_MAX_DRIVES; i++)
		blk_close(m->blk[i]);
	pthread_cond_destroy(&m->ctl_cond);
	pthread_mutex_destroy(&m->ctl);
	pthread_mutex_destroy(&m->lock);
	vclock_virt_destroy(&m->clock);
	free(m);
}

static int run_once(struct machine *m, char *err, size_t errlen,
		    enum run_end *end)
{
	unsigned n = m->cfg.ncpus;
	int r;

	m->boots++;
	r = build(m, err, errlen);
	if (r < 0) {
		teardown(m);
		*end = END_STOP;
		return r;
	}
	console_attach(m);
	if (m->cfg.serial && !m->input_started) {
		struct chardev_sink sink = {
			.receive = serial_receive, .opaque = m,
			.quit = serial_quit, .quit_opaque = m,
		};

		/* Input thread lives across resets; no input is fine. */
		if (chardev_start_input(m->cfg.serial, &sink, &m->lock) == 0)
			m->input_started = true;
	}
	pthread_mutex_lock(&m->ctl);
	m->arrived = 0;
	m->expected = n;
	pthread_mutex_unlock(&m->ctl);
	for (unsigned i = 0; i < n; i++) {
		m->cpu[i] = (struct vcpu_thread){ .m = m, .id = i };
		if (pthread_create(&m->cpu[i].thread, NULL, vcpu_main, &m->cpu[i])) {
			pthread_mutex_lock(&m->ctl);
			m->expected = i;	/* release those that started */
			pthread_cond_broadcast(&m->ctl_cond);
			pthread_mutex_unlock(&m->ctl);
			machine_fail(m, -EAGAIN, "cannot start vCPU thread %u", i);
			n = i;
			break;
		}
	}
	for (unsigned i = 0; i < n; i++)
		pthread_join(m->cpu[i].thread, NULL);
	teardown(m);
	*end = m->end;
	if (m->end == END_STOP && m->exit_status < 0)
		snprintf(err, errlen, "%s", m->err[0] ? m->err : "VM failed");
	return m->exit_status;
}

int machine_run(struct machine *m, char *err, size_t errlen)
{
	enum run_end end;
	int status;

	do {
		status = run_once(m, err, errlen, &end);
		if (end == END_RESET)
			vlog(LOG_INFO, "resetting the VM");
	} while (end == END_RESET);
	return status;
}

struct bus *machine_pio(struct machine *m)
{
	return m->pio;
}

struct bus *machine_mmio(struct machine *m)
{
	return m->mmio;
}

struct guest_mem *machine_mem(struct machine *m)
{
	return &m->mem;
}

pthread_mutex_t *machine_lock(struct machine *m)
{
	return &m->lock;
}

unsigned machine_boot_count(const struct machine *m)
{
	return m->boots;
}
