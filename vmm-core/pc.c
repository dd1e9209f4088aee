/* SPDX-License-Identifier: MIT */
/*
 * The PC: what an i440FX + PIIX machine has (the device table, built in
 * order and torn down in reverse), how its interrupts are routed (ISA IRQs
 * to the 8259A pair and the IOAPIC, PCI INTx through PIRQ[A-D], MSIs to
 * KVM's local APICs), and how the ACPI tables describe it.
 */
#include "machine_internal.h"

#include <inttypes.h>
#include <stdlib.h>

#include "bus.h"
#include "clock.h"
#include "devices/acpi_pm.h"
#include "devices/debugport.h"
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
#include "devices/vmmouse.h"
#include "hv.h"
#include "iothread.h"
#include "irqroute.h"
#include "log.h"
#include "timer.h"
#include "devices/e1000.h"
#include "virtio/virtio_9p.h"
#include "virtio/virtio_blk.h"
#include "virtio/virtio_gpu.h"
#include "virtio/virtio_console.h"
#include "virtio/virtio_input.h"
#include "usb/xhci.h"
#include "audio/audio.h"
#include "audio/hda.h"
#include "devices/tpm_tis.h"
#include "host/swtpm.h"
#include "virtio/virtio_net.h"

#define COM1_IRQ	4
#define RTC_IRQ		8
#define KBD_IRQ		1
#define AUX_IRQ		12
#define PIT_IRQ		0
#define VGA_DEVFN	(2 << 3)	/* 00:02.0, where PCs have it */
#define VIRTIO_GPU_DEVFN (3 << 3)	/* 00:03.0 (ARCHITECTURE.md) */
#define IDE_IRQ_PRIMARY	14
#define IDE_IRQ_SECONDARY 15
#define IDE_POS_CDROM	2		/* secondary master */

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
 * level-triggered vectors exit to us (HV_EXIT_EOI); the irqfds' routes
 * share the table (irqroute.h). */
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
	r = irq_routes_set_ioapic(m->routes, routes, n);
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

static int commit_routes(void *opaque, const struct hv_msi_route *routes,
			 unsigned n)
{
	struct machine *m = opaque;

	return hv_vm_set_msi_routes(m->vm, routes, n);
}

/*
 * The GSI routing table, the I/O thread and the doorbells virtio devices
 * get: ioeventfds and irqfds where KVM has them, as QEMU does by default.
 * VIVARIUM_IOFD=off turns both off (every notify an exit, every MSI a
 * KVM_SIGNAL_MSI: the path to compare with, bench/README.md), "ioeventfd"
 * or "irqfd" keeps that one only; unset or anything else, both.  They
 * were off by default until 2026-12-08, when the nested rig no longer
 * lost L1 with them any more than without (ARCHITECTURE.md, "Doorbells").
 */
static int build_iofd(struct machine *m, char *err, size_t errlen)
{
	const char *env = getenv("VIVARIUM_IOFD");
	bool off = env && !strcmp(env, "off");
	bool want_ioev = !off && !(env && !strcmp(env, "irqfd"));
	bool want_irqfd = !off && !(env && !strcmp(env, "ioeventfd"));
	unsigned f = hv_vm_features(m->vm);

	TRY_NEW(m->routes, irq_routes_new(hv_vm_gsi_count(m->vm), commit_routes, m),
		"GSI routes");
	m->iofd = (struct iofd_hv){
		.vm = m->vm, .routes = m->routes,
		.ioeventfd = want_ioev && (f & HV_VM_IOEVENTFD),
		.irqfd = want_irqfd && (f & HV_VM_IRQFD),
	};
	if (m->iofd.ioeventfd) {
		m->io = iothread_new(&m->lock);
		if (!m->io) {
			int e = errno;

			snprintf(err, errlen, "cannot start the I/O thread: %s",
				 strerror(e));
			return -e;
		}
		m->iofd.io = m->io;
	}
	if (m->boots <= 1)
		vlog(LOG_INFO, "virtio doorbells: ioeventfd %s, irqfd %s%s%s%s",
		     m->iofd.ioeventfd ? "on" : "off", m->iofd.irqfd ? "on" : "off",
		     env ? " (VIVARIUM_IOFD=" : "", env ? env : "", env ? ")" : "");
	return 0;
}

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

/* ---- the device table --------------------------------------------------- */

/* IDE position of each ATA drive: the CD-ROM at the secondary master,
 * disks at the other positions in order; -1 for virtio disks. */
void pc_ata_positions(const struct machine *m, int pos[MACHINE_MAX_DRIVES])
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

	pc_ata_positions(m, pos);
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
	TRY(device_table_add(&m->devices, &piix_ide_device_ops, m->dev.ide),
	    "PIIX IDE");
	for (unsigned i = 0; i < m->cfg.ndrives; i++) {
		struct virtio_blk_config vc = {
			.pci = m->dev.pci,
			.devfn = (uint8_t)((VIRTIO_BLK_SLOT + nvirtio) << 3),
			.mem = &m->mem, .lock = &m->lock, .blk = m->blk[i],
			.iofd = iofd_hv(&m->iofd),
		};
		char serial[21];

		if (pos[i] >= 0)
			continue;
		snprintf(serial, sizeof(serial), "VIVARIUM-VD%u", nvirtio);
		vc.serial = serial;
		m->dev.vblk[nvirtio] = virtio_blk_new(&vc, err, errlen);
		if (!m->dev.vblk[nvirtio])
			return -EINVAL;
		TRY(device_table_add(&m->devices, &virtio_blk_device_ops,
				     m->dev.vblk[nvirtio]), "virtio-blk");
		nvirtio++;
	}
	return 0;
}

/* One PCI function per NIC, at slots NIC_SLOT.., on its backend. */
static int add_nics(struct machine *m, char *err, size_t errlen)
{
	for (unsigned i = 0; i < m->cfg.nnics; i++) {
		const struct machine_nic *n = &m->cfg.nic[i];
		uint8_t devfn = (uint8_t)((NIC_SLOT + i) << 3);

		if (n->model == MACHINE_NIC_E1000) {
			struct e1000_config ec = {
				.pci = m->dev.pci, .devfn = devfn, .mem = &m->mem,
				.lock = &m->lock, .timers = m->timers,
				.backend = n->backend,
			};
			struct e1000 *e;

			memcpy(ec.mac, n->mac, 6);
			e = e1000_new(&ec, err, errlen);
			if (!e)
				return -EINVAL;
			TRY(device_table_add(&m->devices, &e1000_device_ops, e),
			    "e1000");
		} else {
			struct virtio_net_config vc = {
				.pci = m->dev.pci, .devfn = devfn, .mem = &m->mem,
				.lock = &m->lock, .backend = n->backend,
				.iofd = iofd_hv(&m->iofd), .timers = m->timers,
			};
			struct virtio_net *vn;

			memcpy(vc.mac, n->mac, 6);
			vn = virtio_net_new(&vc, err, errlen);
			if (!vn)
				return -EINVAL;
			TRY(device_table_add(&m->devices, &virtio_net_device_ops, vn),
			    "virtio-net");
		}
	}
	return 0;
}

/* virtio-serial with the program's named ports (the agents' channels). */
static int add_serial_ports(struct machine *m, char *err, size_t errlen)
{
	struct virtio_console_config vc = {
		.pci = m->dev.pci, .devfn = VIRTIO_SERIAL_SLOT << 3,
		.mem = &m->mem, .lock = &m->lock, .iofd = iofd_hv(&m->iofd),
		.nports = m->cfg.nserial_ports,
	};
	struct virtio_console *dev;

	if (!m->cfg.nserial_ports)
		return 0;
	if (m->cfg.nserial_ports > MACHINE_MAX_SERIAL_PORTS ||
	    MACHINE_MAX_SERIAL_PORTS > VCON_MAX_PORTS) {
		snprintf(err, errlen, "virtio-serial: %u ports, at most %d",
			 m->cfg.nserial_ports, MACHINE_MAX_SERIAL_PORTS);
		return -EINVAL;
	}
	for (unsigned i = 0; i < m->cfg.nserial_ports; i++)
		vc.port[i] = m->cfg.serial_port[i];
	dev = virtio_console_new(&vc, err, errlen);
	if (!dev)
		return -EINVAL;
	TRY(device_table_add(&m->devices, &virtio_console_device_ops, dev),
	    "virtio-serial");
	return 0;
}

/* One virtio-9p function per shared folder, at slots VIRTIO_9P_SLOT..;
 * a folder that has gone since the configuration was checked fails the
 * build with its line. */
static int add_shares(struct machine *m, char *err, size_t errlen)
{
	if (m->cfg.nshares > MACHINE_MAX_SHARES) {
		snprintf(err, errlen, "at most %u shared folders", MACHINE_MAX_SHARES);
		return -EINVAL;
	}
	for (unsigned i = 0; i < m->cfg.nshares; i++) {
		const struct machine_share *s = &m->cfg.share[i];
		struct virtio_9p_config vc = {
			.pci = m->dev.pci,
			.devfn = (uint8_t)((VIRTIO_9P_SLOT + i) << 3),
			.mem = &m->mem, .lock = &m->lock,
			.iofd = iofd_hv(&m->iofd),
			.path = s->path, .tag = s->tag, .readonly = s->readonly,
		};
		struct virtio_9p *v = virtio_9p_new(&vc, err, errlen);

		if (!v)
			return -EINVAL;
		TRY(device_table_add(&m->devices, &virtio_9p_device_ops, v),
		    "virtio-9p");
	}
	return 0;
}

/* The virtio keyboard and tablet, unless the configuration leaves them
 * out; the console gets them in machine.c. */
static int add_virtio_input(struct machine *m, char *err, size_t errlen)
{
	static const struct {
		enum virtio_input_kind kind;
		unsigned slot;
		const struct device_ops *ops;
	} inputs[] = {
		{ VIRTIO_INPUT_KEYBOARD, VIRTIO_KBD_SLOT, &virtio_keyboard_device_ops },
		{ VIRTIO_INPUT_TABLET, VIRTIO_TABLET_SLOT, &virtio_tablet_device_ops },
	};

	if (m->cfg.no_virtio_input)
		return 0;
	for (unsigned i = 0; i < 2; i++) {
		struct virtio_input_config vc = {
			.pci = m->dev.pci, .devfn = (uint8_t)(inputs[i].slot << 3),
			.mem = &m->mem, .iofd = iofd_hv(&m->iofd),
			.kind = inputs[i].kind,
		};
		struct virtio_input *vi = virtio_input_new(&vc, err, errlen);

		if (!vi)
			return -EINVAL;
		TRY(device_table_add(&m->devices, inputs[i].ops, vi),
		    inputs[i].ops->name);
		*(i ? &m->dev.vtablet : &m->dev.vkbd) = vi;
	}
	return 0;
}

/* The xHCI controller with its HID tablet and keyboard (--usb on); the
 * console gets them in machine.c. */
static int add_usb(struct machine *m, char *err, size_t errlen)
{
	struct xhci_config xc = {
		.pci = m->dev.pci, .devfn = XHCI_SLOT << 3, .mem = &m->mem,
		.hid = true,
	};

	if (!m->cfg.usb)
		return 0;
	m->dev.xhci = xhci_new(&xc, err, errlen);
	if (!m->dev.xhci)
		return -EINVAL;
	TRY(device_table_add(&m->devices, &xhci_device_ops, m->dev.xhci),
	    "xhci");
	machine_usb_plug_all(m);	/* passed-through host devices */
	return 0;
}

/* The HDA sound card on the program's audio backend (--audio). */
static int add_audio(struct machine *m, char *err, size_t errlen)
{
	struct hda_config hc = {
		.pci = m->dev.pci, .devfn = HDA_SLOT << 3, .mem = &m->mem,
		.timers = m->timers, .backend = m->cfg.audio,
	};

	if (!m->cfg.audio)
		return 0;
	m->dev.hda = hda_new(&hc, err, errlen);
	if (!m->dev.hda)
		return -EINVAL;
	TRY(device_table_add(&m->devices, &hda_device_ops, m->dev.hda), "hda");
	return 0;
}

/* The TPM (--tpm) on the program's swtpm: the TPM is powered on again
 * (CMD_INIT: PCRs to their reset values) at every build, as a reset
 * rebuilds the machine; the firmware then sends TPM2_Startup. */
static int add_tpm(struct machine *m, char *err, size_t errlen)
{
	struct tpm_backend be;

	if (!m->cfg.tpm)
		return 0;
	/* A failed swtpm leaves a TPM answering TPM_RC_FAILURE: the VM
	 * runs on (swtpm.c has logged why). */
	swtpm_init(m->cfg.tpm);
	swtpm_backend(m->cfg.tpm, &be);
	TRY_DEV(m->dev.tpm, tpm_tis_new(&be, true), tpm_tis_device_ops, "TPM");
	TRY(tpm_tis_attach(m->dev.tpm, m->mmio, TPM_TIS_BASE), "TPM");
	return 0;
}

/* The fixed devices (vmmouse, virtio-gpu included), fw_cfg, a virtio-blk
 * per drive, the NICs, the virtio keyboard and tablet, virtio-serial and
 * the shares, the xHCI, the HDA and the TPM at the most. */
_Static_assert(DEVICE_TABLE_MAX >= 17 + MACHINE_MAX_DRIVES + MACHINE_MAX_NICS +
	       2 + MACHINE_MAX_SHARES + 3,
	       "the device table holds every device of the PC");

int pc_build_devices(struct machine *m, char *err, size_t errlen)
{
	int r;

	TRY_NEW(m->pio, bus_new("pio"), "port bus");
	TRY_NEW(m->mmio, bus_new("mmio"), "MMIO bus");
	/* A boot starts running, even if the last one ended paused. */
	vclock_resume(&m->clock);
	audio_set_paused(m->cfg.audio, false);
	TRY_NEW(m->timers, vtimer_queue_new(&m->lock, &m->clock.clk), "timers");
	r = build_iofd(m, err, errlen);
	if (r < 0)
		return r;

	/* The machine table: what a PC of the i440FX era has. */
	TRY_DEV(m->dev.pic, pic_new(pic_intr_changed, m), pic_device_ops,
		"8259A PIC");
	TRY(pic_attach(m->dev.pic, m->pio), "8259A PIC");
	TRY_DEV(m->dev.ioapic, ioapic_new(0, &ioapic_ops, m), ioapic_device_ops,
		"IOAPIC");
	TRY(ioapic_attach(m->dev.ioapic, m->mmio, IOAPIC_DEFAULT_BASE), "IOAPIC");
	TRY_DEV(m->dev.pit, pit_new(m->timers, gsi_line(m, PIT_IRQ)),
		pit_device_ops, "8254 PIT");
	TRY(pit_attach(m->dev.pit, m->pio), "8254 PIT");
	TRY_DEV(m->dev.com1, uart_new(gsi_line(m, COM1_IRQ), m->cfg.serial),
		uart_device_ops, "COM1");
	TRY(uart_attach(m->dev.com1, m->pio, COM1_BASE), "COM1");
	TRY_DEV(m->dev.rtc, rtc_new(m->timers, gsi_line(m, RTC_IRQ)),
		rtc_device_ops, "RTC");
	TRY(rtc_attach(m->dev.rtc, m->pio), "RTC");
	TRY_DEV(m->dev.kbc, i8042_new(&kbc_ops, m, gsi_line(m, KBD_IRQ),
				  gsi_line(m, AUX_IRQ), m->timers),
		i8042_device_ops, "i8042");
	TRY(i8042_attach(m->dev.kbc, m->pio), "i8042");
	if (!m->cfg.no_vmmouse) {
		/* On the PS/2 mouse; the backdoor port sees the registers. */
		TRY_DEV(m->dev.vmmouse, vmmouse_new(m->dev.kbc),
			vmmouse_device_ops, "vmmouse");
		m->regs_port = (struct vcpu_regs_port){
			.port = VMPORT_PORT, .access = vmmouse_backdoor,
			.opaque = m->dev.vmmouse,
		};
	}
	TRY_DEV(m->dev.pci, pci_host_new(), pci_host_device_ops,
		"PCI host bridge");
	TRY(pci_host_attach(m->dev.pci, m->pio, m->mmio), "PCI host bridge");
	pci_host_set_ops(m->dev.pci, &pci_ops, m);
	TRY_DEV(m->dev.piix, piix_new(m->dev.pci, &piix_ops, m), piix_device_ops,
		"PIIX");
	/* PCI interrupt lines idle high (active low). */
	for (unsigned i = 0; i < 4; i++)
		ioapic_set_irq(m->dev.ioapic, ACPI_PCI_GSI_BASE + i, 1);
	TRY_DEV(m->dev.pm, acpi_pm_new(m->timers, gsi_line(m, ACPI_SCI_IRQ),
				   &pm_ops, m), acpi_pm_device_ops, "ACPI PM");
	TRY(acpi_pm_attach(m->dev.pm, m->pio, ACPI_PM_BASE), "ACPI PM");
	if (!m->cfg.no_vga) {
		struct vga_config vc = {
			.vram_slot = mem_slot_hv(&m->vram_slot),
			.vram_size = VGA_DEFAULT_VRAM,
			.rom = m->vga_rom, .rom_len = m->vga_rom_len,
		};

		/* BAR0's VRAM: memory slot MEM_SLOT_VRAM of this boot's VM. */
		m->vram_slot = (struct mem_slot_hv){ m->vm, MEM_SLOT_VRAM };
		TRY_DEV(m->dev.vga, vga_new(&vc), vga_device_ops, "VGA");
		TRY(vga_attach(m->dev.vga, m->pio, m->mmio, m->dev.pci,
			       VGA_DEVFN), "VGA");
	}
	if (m->cfg.virtio_gpu) {
		struct virtio_gpu_config gc = {
			.pci = m->dev.pci, .devfn = VIRTIO_GPU_DEVFN,
			.mem = &m->mem, .iofd = iofd_hv(&m->iofd),
			.width = m->gpu_w, .height = m->gpu_h,
		};

		m->dev.vgpu = virtio_gpu_new(&gc, err, errlen);
		if (!m->dev.vgpu)
			return -EINVAL;
		TRY(device_table_add(&m->devices, &virtio_gpu_device_ops,
				     m->dev.vgpu), "virtio-gpu");
	}
	r = add_drives(m, err, errlen);
	if (r == 0)
		r = add_virtio_input(m, err, errlen);
	if (r == 0)
		r = add_usb(m, err, errlen);
	if (r == 0)
		r = add_audio(m, err, errlen);
	if (r == 0)
		r = add_tpm(m, err, errlen);
	if (r < 0)
		return r;
	/* Under the device lock: a backend's thread (alive across resets)
	 * may be offering a frame to the NIC being attached. */
	pthread_mutex_lock(&m->lock);
	r = add_nics(m, err, errlen);
	/* Likewise: the ports' host side may be writing. */
	if (r == 0)
		r = add_serial_ports(m, err, errlen);
	pthread_mutex_unlock(&m->lock);
	if (r < 0)
		return r;
	r = add_shares(m, err, errlen);
	if (r < 0)
		return r;
	/* 0xcf9 shares CONFIG_ADDRESS's dword: the host bridge forwards it. */
	pci_host_set_cf9_handler(m->dev.pci, &acpi_pm_reset_ops, m->dev.pm);
	TRY_DEV(m->dev.dbg, debugport_new(m->cfg.debugcon, on_test_exit, m),
		debugport_device_ops, "debug ports");
	TRY(debugport_attach(m->dev.dbg, m->pio), "debug ports");
	return 0;
}

void pc_free_devices(struct machine *m)
{
	/* vCPU threads are gone; stop the timer thread before freeing what its
	 * callbacks touch.  Only chardev input may still look (at com1). */
	vtimer_queue_free(m->timers);
	m->timers = NULL;
	/* The same for the I/O thread's handlers; the devices remove their
	 * registrations as they are freed. */
	iothread_stop(m->io);
	/* Disk requests in flight complete under the device lock: wait for
	 * them (IDE's and virtio-blk's quiesce) before taking it. */
	device_table_quiesce(&m->devices);
	pthread_mutex_lock(&m->lock);
	/* Last created first: PCI functions before their host. */
	device_table_free(&m->devices);
	memset(&m->dev, 0, sizeof(m->dev));
	memset(&m->regs_port, 0, sizeof(m->regs_port));
	iothread_free(m->io);
	m->io = NULL;
	irq_routes_free(m->routes);
	m->routes = NULL;
	memset(&m->iofd, 0, sizeof(m->iofd));
	bus_free(m->pio);
	bus_free(m->mmio);
	m->pio = m->mmio = NULL;
	pthread_mutex_unlock(&m->lock);
}

struct acpi_config pc_acpi_config(const struct machine *m)
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
		.ram_top = m->mem.nregions > 2 ? m->mem.region[2].gpa +
						 m->mem.region[2].size : 0,
		.tpm = m->cfg.tpm != NULL,
	};
}
