/* SPDX-License-Identifier: MIT */
/*
 * The machine's life: machine_create() and machine_destroy(), building and
 * tearing down one boot (the VM, guest RAM, the PC's devices from pc.c, the
 * boot image), and run control: the vCPU threads' run state, stop, reset,
 * pause, resume and the power button.  Locks: see machine_internal.h.
 */
#include "machine_internal.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#include "audio/audio.h"
#include "block/block.h"
#include "devices/acpi_pm.h"
#include "devices/i8042.h"
#include "devices/uart.h"
#include "devices/vga.h"
#include "devices/vmmouse.h"
#include "virtio/virtio_gpu.h"
#include "display/console.h"
#include "host/chardev.h"
#include "hv.h"
#include "log.h"
#include "virtio/virtio_input.h"
#include "usb/hid.h"
#include "usb/xhci.h"

#define ACPI_AREA_SIZE	0x20000		/* 0xe0000-0xfffff */

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
	if (m->end == END_NONE || (m->end != END_STOP && end == END_STOP)) {
		m->end = end;
		m->exit_status = status;
		if (err)
			snprintf(m->err, sizeof(m->err), "%s", err);
	}
	m->state = RUN_STOPPING;
	if (m->end == END_RESET || m->end == END_RESTORE)
		m->building = true;
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

void end_run_restore(struct machine *m)
{
	end_run(m, END_RESTORE, 0, NULL);
}

void machine_fail(struct machine *m, int err, const char *fmt, ...)
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
	bool paused;

	pthread_mutex_lock(&m->ctl);
	/* A reset or revert in progress: pause the machine it builds. */
	while (m->building)
		pthread_cond_wait(&m->ctl_cond, &m->ctl);
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
	paused = m->state == RUN_PAUSED;
	if (paused)
		vclock_pause(&m->clock);
	pthread_mutex_unlock(&m->ctl);
	/* The sound card's DMA stands with the clock: its streams too. */
	if (paused)
		audio_set_paused(m->cfg.audio, true);
}

void machine_resume(struct machine *m)
{
	bool resume;

	pthread_mutex_lock(&m->ctl);
	resume = m->state == RUN_PAUSED;
	pthread_mutex_unlock(&m->ctl);
	/* The clock first: the guest never runs on a stopped clock.  Not
	 * under ctl: it wakes the timer thread, which takes the device lock. */
	if (resume) {
		audio_set_paused(m->cfg.audio, false);
		vclock_resume(&m->clock);
	}
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
bool vcpu_may_run(struct machine *m, struct vcpu_thread *t)
{
	bool ok;

	pthread_mutex_lock(&m->ctl);
	while (m->state == RUN_PAUSED) {
		m->paused++;
		pthread_cond_broadcast(&m->ctl_cond);
		pthread_cond_wait(&m->ctl_cond, &m->ctl);
		if (t->save_gen != m->save_gen)
			machine_state_vcpu_save(m, t);
		m->paused--;
	}
	ok = m->state == RUN_RUNNING;
	pthread_mutex_unlock(&m->ctl);
	return ok;
}

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

/* Direct Linux boot: ACPI tables at 0xe0000, the kernel per the boot
 * protocol. */
static int load_linux(struct machine *m, char *err, size_t errlen)
{
	struct acpi_config acfg = pc_acpi_config(m);
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

static int build(struct machine *m, char *err, size_t errlen)
{
	int r;

	atomic_store(&m->pic_intr, false);	/* the new PIC starts quiet */

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
	r = pc_build_devices(m, err, errlen);
	if (r < 0)
		return r;
	r = 0;
	if (m->cfg.hooks) {
		if (m->cfg.hooks->add_devices)
			TRY(m->cfg.hooks->add_devices(m, m->cfg.hooks->opaque),
			    "test devices");
		if (m->cfg.hooks->load && !m->restore)
			TRY(m->cfg.hooks->load(m, &m->mem, m->cfg.hooks->opaque),
			    "test guest");
	} else if (m->firmware == MACHINE_FW_BIOS) {
		r = bios_load(m, err, errlen);
	} else if (m->firmware == MACHINE_FW_UEFI) {
		r = uefi_load(m, err, errlen);
	} else if (!m->restore) {	/* its RAM would be replaced at once */
		r = load_linux(m, err, errlen);
	}
	if (r == 0 && m->restore)
		r = machine_state_apply(m, err, errlen);
	return r;
}

/*
 * With virtio-gpu (--vga virtio) the console's adapter is this switch:
 * the standard VGA (what SeaBIOS, boot loaders and text mode draw on)
 * until the guest's virtio-gpu driver sets a scanout, then virtio-gpu,
 * and the VGA again once the scanout is off or the device reset: QEMU's
 * virtio-vga in effect, with two PCI functions.  Called with the device
 * lock held.
 */
static void screen_update(void *opaque, struct console *con, bool full)
{
	struct machine *m = opaque;
	bool gpu = m->dev.vgpu && virtio_gpu_scanout_active(m->dev.vgpu);

	if (gpu != m->screen_gpu) {
		m->screen_gpu = gpu;
		full = true;		/* the other adapter's picture */
	}
	if (gpu || !m->dev.vga)
		virtio_gpu_console_ops.update(m->dev.vgpu, con, full);
	else
		vga_console_ops.update(m->dev.vga, con, full);
}

static int screen_text(void *opaque, char *buf, size_t len)
{
	struct machine *m = opaque;

	if (m->screen_gpu || !m->dev.vga)
		return -ENOTSUP;
	return vga_console_ops.text(m->dev.vga, buf, len);
}

/* Kept in the machine too: a rebuilt virtio-gpu (a guest reset) starts
 * with the window's size, not the default. */
static int screen_request_size(void *opaque, unsigned width, unsigned height)
{
	struct machine *m = opaque;

	m->gpu_w = width;
	m->gpu_h = height;
	return virtio_gpu_request_size(m->dev.vgpu, width, height);
}

static const struct console_hw_ops screen_ops = {
	.update = screen_update,
	.text = screen_text,
	.request_size = screen_request_size,
};

/* Frontends see the new devices; called without the device lock. */
static void console_attach(struct machine *m)
{
	if (!m->cfg.console)
		return;
	if (m->dev.vgpu) {
		pthread_mutex_lock(&m->lock);
		m->screen_gpu = false;
		pthread_mutex_unlock(&m->lock);
		console_set_hw(m->cfg.console, &screen_ops, m, &m->lock);
	} else if (m->dev.vga) {
		console_set_hw(m->cfg.console, &vga_console_ops, m->dev.vga,
			       &m->lock);
	}
	console_set_input(m->cfg.console, &i8042_input_ops, m->dev.kbc,
			  &m->lock);
	if (m->dev.vmmouse &&
	    console_add_input(m->cfg.console, &vmmouse_input_ops,
			      m->dev.vmmouse, &m->lock) < 0)
		vlog(LOG_WARN, "vmmouse: the console has no room for it: pointing stays relative");
	/* Beside PS/2: the console routes to them while the guest's driver
	 * runs them (at most 8 inputs: two here cannot fail). */
	if (m->dev.vkbd)
		console_add_input(m->cfg.console, &virtio_keyboard_input_ops,
				  m->dev.vkbd, &m->lock);
	if (m->dev.vtablet)
		console_add_input(m->cfg.console, &virtio_tablet_input_ops,
				  m->dev.vtablet, &m->lock);
	/* Keys go to the first active keyboard added: the virtio one. */
	if (m->dev.xhci &&
	    (console_add_input(m->cfg.console, &usb_tablet_input_ops,
			       xhci_hid(m->dev.xhci, USB_HID_TABLET), &m->lock) < 0 ||
	     console_add_input(m->cfg.console, &usb_keyboard_input_ops,
			       xhci_hid(m->dev.xhci, USB_HID_KEYBOARD), &m->lock) < 0))
		vlog(LOG_WARN, "usb: the console has no room for the USB tablet and keyboard");
}

static void console_detach(struct machine *m)
{
	if (!m->cfg.console)
		return;
	/* Refresh the last frame, so the window keeps the final screen. */
	console_refresh(m->cfg.console);
	console_set_hw(m->cfg.console, NULL, NULL, NULL);
	console_set_input(m->cfg.console, NULL, NULL, NULL);
	if (m->dev.vmmouse)
		console_remove_input(m->cfg.console, &vmmouse_input_ops,
				     m->dev.vmmouse);
	if (m->dev.vkbd)
		console_remove_input(m->cfg.console, &virtio_keyboard_input_ops,
				     m->dev.vkbd);
	if (m->dev.vtablet)
		console_remove_input(m->cfg.console, &virtio_tablet_input_ops,
				     m->dev.vtablet);
	if (m->dev.xhci) {
		console_remove_input(m->cfg.console, &usb_tablet_input_ops,
				     xhci_hid(m->dev.xhci, USB_HID_TABLET));
		console_remove_input(m->cfg.console, &usb_keyboard_input_ops,
				     xhci_hid(m->dev.xhci, USB_HID_KEYBOARD));
	}
}

static void teardown(struct machine *m)
{
	/* Frontends take the console lock, then the device lock: detach them
	 * before taking the latter. */
	console_detach(m);
	pc_free_devices(m);
	if (m->vm)
		hv_vm_destroy(m->vm);
	m->vm = NULL;
	guest_mem_free(&m->mem);
}

/* ---- public ------------------------------------------------------------- */

int machine_read_file(const char *path, const char *what, uint8_t **data,
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

/* Open every disk image now, so that a wrong path, a corrupt image or an
 * image another VM is using fails before anything runs. */
static int open_drives(struct machine *m, char *err, size_t errlen)
{
	unsigned ata = 0, cdroms = 0;

	if (m->cfg.nnics > MACHINE_MAX_NICS) {
		snprintf(err, errlen, "at most %u network cards", MACHINE_MAX_NICS);
		return -EINVAL;
	}
	for (unsigned i = 0; i < m->cfg.nnics; i++) {
		if (!m->cfg.nic[i].backend) {
			snprintf(err, errlen, "NIC %u has no backend", i);
			return -EINVAL;
		}
	}
	if (m->cfg.nserial_ports > MACHINE_MAX_SERIAL_PORTS) {
		snprintf(err, errlen, "at most %u virtio-serial ports",
			 MACHINE_MAX_SERIAL_PORTS);
		return -EINVAL;
	}
	for (unsigned i = 0; i < m->cfg.nserial_ports; i++) {
		if (!m->cfg.serial_port[i]) {
			snprintf(err, errlen, "virtio-serial port %u has no host side", i + 1);
			return -EINVAL;
		}
	}
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
		/* Here, not on the vCPU thread of the first request: a
		 * sandboxed vCPU thread may start no threads. */
		r = blk_start_workers(m->blk[i]);
		if (r < 0) {
			snprintf(err, errlen, "%s '%s': cannot start its I/O threads",
				 d->cdrom ? "CD-ROM:" : "disk:", d->path);
			return r;
		}
	}
	return 0;
}

bool machine_ram_ok(uint64_t bytes)
{
	return bytes >= MACHINE_MIN_RAM && !(bytes & 0xfffff);
}

int machine_config_check(const struct machine_config *cfg, char *err,
			 size_t errlen)
{
	if (cfg->ncpus < 1 || cfg->ncpus > MACHINE_MAX_CPUS) {
		snprintf(err, errlen, "vCPU count %u out of range 1-%u",
			 cfg->ncpus, MACHINE_MAX_CPUS);
		return -EINVAL;
	}
	if (!machine_ram_ok(cfg->ram_size)) {
		snprintf(err, errlen, "memory size is not " MACHINE_RAM_RULE);
		return -EINVAL;
	}
	if (!cfg->hooks && cfg->firmware == MACHINE_FW_NONE && !cfg->kernel_path) {
		snprintf(err, errlen, "nothing to boot: direct boot needs --kernel PATH");
		return -EINVAL;
	}
	if (cfg->firmware == MACHINE_FW_UEFI && cfg->kernel_path) {
		snprintf(err, errlen, "UEFI does not boot --kernel yet: boot a disk or CD-ROM, or use --firmware bios");
		return -EINVAL;
	}
	if (cfg->vars_path && cfg->firmware != MACHINE_FW_UEFI) {
		snprintf(err, errlen, "a UEFI variable store goes with --firmware uefi");
		return -EINVAL;
	}
	return 0;
}

int machine_create(const struct machine_config *cfg, struct machine **out,
		   char *err, size_t errlen)
{
	struct machine *m;
	int r;

	*out = NULL;
	r = machine_config_check(cfg, err, errlen);
	if (r < 0)
		return r;
	m = calloc(1, sizeof(*m));
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	m->cfg = *cfg;
	m->vars_fd = -1;
	m->firmware = cfg->firmware;
	if (m->firmware == MACHINE_FW_AUTO)
		m->firmware = cfg->kernel_path ? MACHINE_FW_NONE : MACHINE_FW_BIOS;
	pthread_mutex_init(&m->lock, NULL);
	pthread_mutex_init(&m->ctl, NULL);
	pthread_cond_init(&m->ctl_cond, NULL);
	vclock_virt_init(&m->clock, &vclock_host);
	if (cfg->kernel_path) {
		r = machine_read_file(cfg->kernel_path, "kernel", &m->kernel,
				      &m->kernel_len, err, errlen);
		if (r < 0)
			goto fail;
	}
	if (cfg->initrd_path) {
		r = machine_read_file(cfg->initrd_path, "initrd", &m->initrd,
				      &m->initrd_len, err, errlen);
		if (r < 0)
			goto fail;
	}
	if (m->firmware == MACHINE_FW_BIOS && !cfg->hooks) {
		r = bios_read_images(m, err, errlen);
		if (r < 0)
			goto fail;
	}
	if (m->firmware == MACHINE_FW_UEFI && !cfg->hooks) {
		r = uefi_read_images(m, err, errlen);
		if (r < 0)
			goto fail;
	}
	r = open_drives(m, err, errlen);
	if (r < 0)
		goto fail;
	r = hv_open(cfg->kvm_path, &m->hv, err, errlen);
	if (r < 0)
		goto fail;
	r = machine_usb_init(m, err, errlen);
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
	machine_usb_fini(m);	/* the host's drivers get their devices back */
	if (m->hv)
		hv_close(m->hv);
	free(m->kernel);
	free(m->initrd);
	free(m->linuxboot);
	free(m->vga_rom);
	if (m->bios)
		munmap(m->bios, m->bios_len);
	if (m->vars_fd >= 0)
		close(m->vars_fd);
	for (unsigned i = 0; i < MACHINE_MAX_DRIVES; i++)
		blk_close(m->blk[i]);
	pthread_cond_destroy(&m->ctl_cond);
	pthread_mutex_destroy(&m->ctl);
	pthread_mutex_destroy(&m->lock);
	vclock_virt_destroy(&m->clock);
	machine_state_clear(m);
	for (unsigned i = 0; i < MACHINE_MAX_DRIVES; i++)
		g_free(m->drive_path[i]);
	free(m);
}

static int run_once(struct machine *m, char *err, size_t errlen,
		    enum run_end *end)
{
	unsigned n = m->cfg.ncpus;
	int r;

	pthread_mutex_lock(&m->ctl);
	if (m->end == END_STOP) {
		/* Stopped between the last run's end and this build. */
		m->building = false;
		pthread_cond_broadcast(&m->ctl_cond);
		pthread_mutex_unlock(&m->ctl);
		*end = END_STOP;
		return m->exit_status;
	}
	m->building = true;
	m->end = END_NONE;
	m->state = RUN_RUNNING;
	m->paused = 0;
	m->err[0] = 0;
	pthread_mutex_unlock(&m->ctl);
	m->boots++;
	r = build(m, err, errlen);
	pthread_mutex_lock(&m->ctl);
	m->building = false;
	pthread_cond_broadcast(&m->ctl_cond);
	pthread_mutex_unlock(&m->ctl);
	if (r < 0) {
		machine_state_clear(m);	/* a failed restore is not retried */
		teardown(m);
		*end = END_STOP;
		return r;
	}
	console_attach(m);
	if (m->cfg.built)
		m->cfg.built(m->cfg.built_opaque, m->boots);
	if (m->cfg.serial && !m->input_started) {
		struct chardev_sink sink = {
			.receive = serial_receive, .opaque = m,
			.quit = serial_quit, .quit_opaque = m,
		};

		/* Input thread lives across resets; no input is fine. */
		if (chardev_start_input(m->cfg.serial, &sink, &m->lock) == 0)
			m->input_started = true;
	}
	if (m->restore_kvmclock) {
		/* Now, not when the state was read: the time the restore
		 * took (the window, the sockets, the built hook) is not the
		 * guest's, as QEMU sets it when the VM goes on running. */
		hv_vm_set_clock(m->vm, m->restore_kvmclock);
		m->restore_kvmclock = 0;
	}
	pthread_mutex_lock(&m->ctl);
	m->arrived = 0;
	m->expected = n;
	pthread_mutex_unlock(&m->ctl);
	for (unsigned i = 0; i < n; i++) {
		/* A restore's vCPU states stay: the threads load them. */
		m->cpu[i].m = m;
		m->cpu[i].id = i;
		m->cpu[i].vcpu = NULL;
		m->cpu[i].save_gen = m->save_gen;
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
	if (m->cfg.unbuilding)
		m->cfg.unbuilding(m->cfg.built_opaque);
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
		else if (end == END_RESTORE)
			vlog(LOG_INFO, "reverting the VM to a saved state");
		if (end == END_RESTORE && machine_swap_drives(m, err, errlen) < 0) {
			machine_state_clear(m);
			return -EIO;
		}
	} while (end == END_RESET || end == END_RESTORE);
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

const struct device_table *machine_devices(struct machine *m)
{
	return &m->devices;
}

unsigned machine_boot_count(const struct machine *m)
{
	return m->boots;
}
