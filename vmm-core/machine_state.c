/* SPDX-License-Identifier: MIT */
/*
 * The machine's saved state: machine_save() writes the devices, the vCPUs
 * and the clocks to a state file (docs/machine-state.md) and guest memory
 * to a memory file (snapshot/ramfile.h); a restore builds the machine as
 * for a boot and overlays that state before any vCPU runs.
 *
 * Sections: one per device of the table (its ops name, ".N" appended from
 * the second device of the same name on), "cpu.N" per vCPU (the hostdrv
 * blob, "ay"), "machine" (the clocks), "net.N" for NIC N whose host
 * backend keeps state (net.h's NET_STATE_TYPE: NAT's libslirp state), and
 * "tpm" for the TPM's swtpm (host/swtpm.h's SWTPM_STATE_TYPE).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "block/block.h"
#include "devices/vga.h"
#include "hv.h"
#include "iothread.h"
#include "log.h"
#include "machine_internal.h"
#include "net/net.h"
#include "host/swtpm.h"
#include "snapshot/ramfile.h"
#include "snapshot/statefile.h"

#define MACHINE_SECTION		"machine"
#define MACHINE_SECTION_TYPE	"(tt)"	/* virtual clock ns, kvmclock ns */
#define MACHINE_SECTION_VERSION	1u

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The section id of device @i of the table. */
static void device_id(const struct device_table *t, unsigned i, char *out,
		      size_t len)
{
	const char *name = t->dev[i].ops->name;
	unsigned same = 0;

	for (unsigned j = 0; j < i; j++)
		same += !strcmp(t->dev[j].ops->name, name);
	if (same)
		snprintf(out, len, "%s.%u", name, same);
	else
		snprintf(out, len, "%s", name);
}

/* What a state depends on: RAM size, vCPUs, firmware, the device table. */
static uint64_t config_hash(const struct machine *m)
{
	uint64_t h = STATEFILE_HASH_INIT;
	uint64_t v[3] = { m->cfg.ram_size, m->cfg.ncpus, m->firmware };

	h = statefile_hash(h, v, sizeof(v));
	for (unsigned i = 0; i < m->devices.n; i++) {
		char id[STATEFILE_ID_MAX + 1];

		device_id(&m->devices, i, id, sizeof(id));
		h = statefile_hash(h, id, strlen(id) + 1);
	}
	return h;
}

/* Guest RAM (one block per host mapping) and the VGA's VRAM. */
static unsigned memory_blocks(struct machine *m, struct ramfile_block *b,
			      char ids[][RAMFILE_ID_MAX + 1])
{
	unsigned n = 0;

	for (unsigned i = 0; i < m->mem.nregions; i++) {
		if (!m->mem.region[i].map_size)
			continue;	/* inside the previous mapping */
		snprintf(ids[n], RAMFILE_ID_MAX + 1, "ram.%u", n);
		b[n] = (struct ramfile_block){
			ids[n], m->mem.region[i].hva, m->mem.region[i].map_size,
		};
		n++;
	}
	if (m->dev.vga) {
		snprintf(ids[n], RAMFILE_ID_MAX + 1, "vram");
		b[n] = (struct ramfile_block){
			ids[n], vga_vram(m->dev.vga), vga_vram_size(m->dev.vga),
		};
		n++;
	}
	return n;
}

void machine_state_vcpu_save(struct machine *m, struct vcpu_thread *t)
{
	free(t->state);
	t->state = NULL;
	t->state_len = 0;
	t->state_err = hv_vcpu_save(t->vcpu, &t->state, &t->state_len);
	t->save_gen = m->save_gen;
	m->saved++;
	pthread_cond_broadcast(&m->ctl_cond);
}

void machine_state_clear(struct machine *m)
{
	for (unsigned i = 0; i < MACHINE_MAX_DRIVES; i++) {
		g_free(m->swap_path[i]);
		m->swap_path[i] = NULL;
	}
	for (unsigned i = 0; i < MACHINE_MAX_CPUS; i++) {
		free(m->cpu[i].state);
		m->cpu[i].state = NULL;
		m->cpu[i].state_len = 0;
	}
	statefile_free(m->restore);
	m->restore = NULL;
	g_free(m->restore_ram);
	m->restore_ram = NULL;
}

/* With the machine paused: every vCPU's blob into m->cpu[].state. */
static int save_vcpus(struct machine *m, char *err, size_t errlen)
{
	unsigned live = 0;
	int r = 0;

	pthread_mutex_lock(&m->ctl);
	for (unsigned i = 0; i < m->cfg.ncpus; i++)
		live += m->cpu[i].vcpu != NULL;
	if (live != m->cfg.ncpus || m->state != RUN_PAUSED) {
		pthread_mutex_unlock(&m->ctl);
		snprintf(err, errlen, "the machine is not running");
		return -EAGAIN;
	}
	m->save_gen++;
	m->saved = 0;
	pthread_cond_broadcast(&m->ctl_cond);
	while (m->saved < live && m->state == RUN_PAUSED)
		pthread_cond_wait(&m->ctl_cond, &m->ctl);
	if (m->saved < live) {
		r = -EAGAIN;
		snprintf(err, errlen, "the machine stopped while it was being saved");
	}
	for (unsigned i = 0; r == 0 && i < m->cfg.ncpus; i++) {
		if (m->cpu[i].state_err < 0 || !m->cpu[i].state) {
			r = m->cpu[i].state_err < 0 ? m->cpu[i].state_err : -EIO;
			snprintf(err, errlen, "cannot save vCPU %u: %s", i, strerror(-r));
		}
	}
	pthread_mutex_unlock(&m->ctl);
	return r;
}

/* NIC @i's backend section: "net.N". */
static void backend_id(unsigned i, char *out, size_t len)
{
	snprintf(out, len, "net.%u", i);
}

/* The NICs' backends that keep state of their own (NAT: libslirp's),
 * each in a section beside the device sections: a backend is no device
 * (the program makes it, and it outlives the machine's builds), and so
 * any NIC model's backend is saved the same way. */
static int save_backends(struct machine *m, struct statefile *sf, char *err,
			 size_t errlen)
{
	for (unsigned i = 0; i < m->cfg.nnics; i++) {
		char id[STATEFILE_ID_MAX + 1];
		GVariant *v;
		int r;

		if (!m->cfg.nic[i].backend)
			continue;
		v = net_state_save(m->cfg.nic[i].backend);
		if (!v)
			continue;	/* keeps none */
		backend_id(i, id, sizeof(id));
		r = statefile_put(sf, id, NET_STATE_VERSION, v);
		if (r < 0) {
			snprintf(err, errlen, "%s: cannot save the NIC's backend: %s", id, strerror(-r));
			return r;
		}
	}
	return 0;
}

/* Each NIC backend's section, when the state has one; a state without
 * (saved before backends had sections, or by a NIC on another backend)
 * leaves the backend as it is. */
static int load_backends(struct machine *m, struct statefile *sf, char *err,
			 size_t errlen)
{
	for (unsigned i = 0; i < m->cfg.nnics; i++) {
		struct netdev *nd = m->cfg.nic[i].backend;
		char id[STATEFILE_ID_MAX + 1];
		uint32_t version = 0;
		GVariant *v;
		int r;

		if (!nd)
			continue;
		backend_id(i, id, sizeof(id));
		err[0] = 0;
		v = statefile_get(sf, id, G_VARIANT_TYPE(NET_STATE_TYPE),
				  &version, err, errlen);
		if (!v) {
			if (err[0])
				return -EINVAL;	/* of another type */
			vlog(LOG_INFO, "%s: no saved state for the NIC's %s backend: it goes on as it is",
			     id, net_kind(nd));
			continue;
		}
		if (version != NET_STATE_VERSION) {
			g_variant_unref(v);
			snprintf(err, errlen, "%s: state version %u not supported",
				 id, version);
			return -EINVAL;
		}
		r = net_state_load(nd, v, err, errlen);
		g_variant_unref(v);
		if (r < 0) {
			char *why = g_strdup(err);

			snprintf(err, errlen, "%s: %s", id, why);
			g_free(why);
			return r;
		}
	}
	return 0;
}

#define TPM_SECTION		"tpm"
#define TPM_SECTION_VERSION	1u

/* The TPM's own state (swtpm's blobs), beside the TIS's registers: like
 * a NIC's backend, swtpm outlives the machine's builds. */
static int save_tpm(struct machine *m, struct statefile *sf, char *err,
		    size_t errlen)
{
	GVariant *v;
	int r;

	if (!m->cfg.tpm)
		return 0;
	v = swtpm_state_save(m->cfg.tpm, err, errlen);
	if (!v)
		return -EIO;
	r = statefile_put(sf, TPM_SECTION, TPM_SECTION_VERSION, v);
	if (r < 0)
		snprintf(err, errlen, "cannot save the TPM: %s", strerror(-r));
	return r;
}

/* A machine with a TPM needs the section (the TIS's says it had one:
 * the configuration hash holds the device table). */
static int load_tpm(struct machine *m, struct statefile *sf, char *err,
		    size_t errlen)
{
	uint32_t version = 0;
	GVariant *v;
	int r;

	if (!m->cfg.tpm)
		return 0;
	err[0] = 0;
	v = statefile_get(sf, TPM_SECTION, G_VARIANT_TYPE(SWTPM_STATE_TYPE),
			  &version, err, errlen);
	if (!v) {
		if (!err[0])
			snprintf(err, errlen, "the state has no TPM section");
		return -EINVAL;
	}
	if (version != TPM_SECTION_VERSION) {
		g_variant_unref(v);
		snprintf(err, errlen, "tpm: state version %u not supported", version);
		return -EINVAL;
	}
	r = swtpm_state_load(m->cfg.tpm, v, err, errlen);
	g_variant_unref(v);
	return r;
}

/* Under the device lock: the sections of every device. */
static int save_devices(struct machine *m, struct statefile *sf, char *err,
			size_t errlen)
{
	for (unsigned i = 0; i < m->devices.n; i++) {
		const struct device_ops *ops = m->devices.dev[i].ops;
		char id[STATEFILE_ID_MAX + 1];
		GVariant *v;
		int r;

		device_id(&m->devices, i, id, sizeof(id));
		if (!ops->save) {
			snprintf(err, errlen, "the %s device cannot save its state yet", ops->name);
			return -ENOTSUP;
		}
		v = ops->save(m->devices.dev[i].opaque);
		if (!v) {
			snprintf(err, errlen, "%s: cannot save its state", id);
			return -EIO;
		}
		r = statefile_put(sf, id, ops->state_version, v);
		if (r < 0) {
			snprintf(err, errlen, "%s: cannot save its state: %s", id, strerror(-r));
			return r;
		}
	}
	return 0;
}

int machine_save(struct machine *m, const char *state_path,
		 const char *ram_path, struct machine_save_stats *stats,
		 char *err, size_t errlen)
{
	return machine_save_then(m, state_path, ram_path, NULL, NULL, stats,
				 err, errlen);
}

int machine_save_then(struct machine *m, const char *state_path,
		      const char *ram_path,
		      int (*paused)(void *opaque, char *err, size_t errlen),
		      void *opaque, struct machine_save_stats *stats,
		      char *err, size_t errlen)
{
	struct ramfile_block blocks[MEM_MAX_REGIONS + 1];
	char ids[MEM_MAX_REGIONS + 1][RAMFILE_ID_MAX + 1];
	struct ramfile_stats rs = { 0 };
	struct ramfile_writer rw;
	struct statefile *sf = NULL;
	uint64_t t0, kvmclock = 0, pause_ns = 0;
	bool was_running;
	unsigned n;
	int r;

	r = machine_usb_save_check(m, "save", err, errlen);
	if (r < 0)
		return r;
	pthread_mutex_lock(&m->ctl);
	was_running = m->state == RUN_RUNNING;
	r = m->state == RUN_RUNNING || m->state == RUN_PAUSED ? 0 : -EAGAIN;
	pthread_mutex_unlock(&m->ctl);
	if (r < 0) {
		snprintf(err, errlen, "the machine is not running");
		return r;
	}
	machine_pause(m);
	t0 = now_ns();
	/* Doorbells the guest rang before it stopped reach their devices now,
	 * as their exits would have: no kick is saved unseen. */
	if (m->io) {
		pthread_mutex_lock(&m->lock);
		iothread_run_pending(m->io);
		pthread_mutex_unlock(&m->lock);
	}
	/* Disk requests in flight finish first (their completions take the
	 * device lock). */
	device_table_quiesce(&m->devices);
	r = save_vcpus(m, err, errlen);
	if (r < 0)
		goto out;
	sf = statefile_new(config_hash(m));
	for (unsigned i = 0; r == 0 && i < m->cfg.ncpus; i++) {
		char id[16];

		snprintf(id, sizeof(id), "cpu.%u", i);
		r = statefile_put(sf, id, 1,
				  g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE,
							    m->cpu[i].state,
							    m->cpu[i].state_len, 1));
		if (r < 0)
			snprintf(err, errlen, "cannot save vCPU %u: %s", i, strerror(-r));
	}
	if (r < 0)
		goto out;
	if (hv_vm_get_clock(m->vm, &kvmclock) < 0)
		kvmclock = 0;	/* no kvmclock: nothing to restore */
	r = statefile_put(sf, MACHINE_SECTION, MACHINE_SECTION_VERSION,
			  g_variant_new(MACHINE_SECTION_TYPE,
					(guint64)vclock_now(&m->clock.clk),
					(guint64)kvmclock));
	if (r < 0) {
		snprintf(err, errlen, "cannot save the machine: %s", strerror(-r));
		goto out;
	}
	pthread_mutex_lock(&m->lock);
	r = save_devices(m, sf, err, errlen);
	if (r == 0)
		r = save_backends(m, sf, err, errlen);
	if (r == 0)
		r = save_tpm(m, sf, err, errlen);
	n = memory_blocks(m, blocks, ids);
	pthread_mutex_unlock(&m->lock);
	if (r < 0)
		goto out;
	/* The guest stands still only until a child process holds a
	 * copy-on-write view of its memory, which it writes while the guest
	 * runs again; without fork, until the memory is in the page cache.
	 * Either way the disk catches up (fsync) while the guest runs. */
	r = ramfile_write_cow(ram_path, blocks, n, &rw, &rs, err, errlen);
	if (r < 0) {
		vlog(LOG_WARN, "saving memory without a copy-on-write child: %s", err);
		r = ramfile_write(ram_path, blocks, n, &rw, &rs, err, errlen);
	}
	if (r < 0)
		goto out;
	/* Still paused: what must happen at the state point (disks moved
	 * to new overlays) happens now. */
	if (paused) {
		r = paused(opaque, err, errlen);
		if (r < 0) {
			ramfile_abort(&rw);
			goto out;
		}
	}
	pause_ns = now_ns() - t0;
	if (was_running)
		machine_resume(m);
	was_running = false;
	/* Memory first, the state file last: a state file names a complete
	 * memory file. */
	r = ramfile_commit(&rw, err, errlen);
	if (r == 0)
		r = statefile_save(sf, state_path, err, errlen);
out:
	for (unsigned i = 0; i < MACHINE_MAX_CPUS; i++) {
		free(m->cpu[i].state);
		m->cpu[i].state = NULL;
	}
	statefile_free(sf);
	if (stats) {
		stats->pause_ns = pause_ns ? pause_ns : now_ns() - t0;
		stats->ram_bytes = rs.bytes;
		stats->ram_data_bytes = rs.data_bytes;
		stats->ram_ns = rs.ns;
	}
	if (was_running)
		machine_resume(m);
	return r;
}

/* The files of a state, checked against this machine before any is used. */
static int open_state(struct machine *m, const char *state_path,
		      const char *ram_path, struct statefile **out, char *err,
		      size_t errlen)
{
	struct statefile *sf;
	int r;

	/* The device table exists only while the machine is built; its names
	 * are part of the configuration hash, so check that at apply time. */
	r = statefile_load(state_path, 0, &sf, err, errlen);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < m->cfg.ncpus; i++) {
		char id[16];
		GVariant *v;

		snprintf(id, sizeof(id), "cpu.%u", i);
		v = statefile_get(sf, id, G_VARIANT_TYPE_BYTESTRING, NULL, err, errlen);
		if (!v) {
			if (!err[0] || !strstr(err, id))
				snprintf(err, errlen, "'%s' holds no state for vCPU %u (saved with other vCPUs?)",
					 state_path, i);
			statefile_free(sf);
			return -ESTALE;
		}
		g_variant_unref(v);
	}
	if (access(ram_path, R_OK) < 0) {
		r = -errno;
		snprintf(err, errlen, "'%s': %s", ram_path, strerror(errno));
		statefile_free(sf);
		return r;
	}
	*out = sf;
	return 0;
}

int machine_restore_on_start(struct machine *m, const char *state_path,
			     const char *ram_path, char *err, size_t errlen)
{
	struct statefile *sf;
	int r;

	err[0] = 0;
	r = open_state(m, state_path, ram_path, &sf, err, errlen);
	if (r < 0)
		return r;
	machine_state_clear(m);
	m->restore = sf;
	m->restore_ram = g_strdup(ram_path);
	return 0;
}

int machine_revert_drives(struct machine *m, const char *state_path,
			  const char *ram_path, const char *const *paths,
			  char *err, size_t errlen)
{

	struct statefile *sf = NULL;
	int r;

	err[0] = 0;
	/* The saved controller had no host device on its ports (a save
	 * refuses them): its state would not load with one plugged in. */
	if (state_path && (r = machine_usb_save_check(m, "revert", err, errlen)) < 0)
		return r;
	if (state_path) {
		r = open_state(m, state_path, ram_path, &sf, err, errlen);
		if (r < 0)
			return r;
	}
	pthread_mutex_lock(&m->ctl);
	if (m->state == RUN_STOPPING || m->end != END_NONE) {
		pthread_mutex_unlock(&m->ctl);
		statefile_free(sf);
		snprintf(err, errlen, "the machine is stopping");
		return -EAGAIN;
	}
	statefile_free(m->restore);
	g_free(m->restore_ram);
	m->restore = sf;
	m->restore_ram = sf ? g_strdup(ram_path) : NULL;
	for (unsigned i = 0; paths && i < m->cfg.ndrives; i++) {
		g_free(m->swap_path[i]);
		m->swap_path[i] = g_strdup(paths[i]);
	}
	pthread_mutex_unlock(&m->ctl);
	/* Paused vCPUs must see the end too. */
	end_run_restore(m);
	return 0;
}

int machine_revert(struct machine *m, const char *state_path,
		   const char *ram_path, char *err, size_t errlen)
{
	return machine_revert_drives(m, state_path, ram_path, NULL, err, errlen);
}

int machine_swap_drives(struct machine *m, char *err, size_t errlen)
{
	int r = 0;

	/* Close first: a new overlay's backing file is the image it
	 * replaces, which our own lock would refuse to open twice. */
	for (unsigned i = 0; i < m->cfg.ndrives; i++) {
		if (m->swap_path[i]) {
			blk_close(m->blk[i]);
			m->blk[i] = NULL;
		}
	}
	for (unsigned i = 0; i < m->cfg.ndrives; i++) {
		struct machine_drive *d = &m->cfg.drive[i];
		struct blk_open_opts o = {
			.format = BLK_FMT_AUTO,	/* an overlay is qcow2 */
			.readonly = d->readonly || d->cdrom,
		};
		char e[400];
		int rr;

		if (!m->swap_path[i])
			continue;
		g_free(m->drive_path[i]);
		m->drive_path[i] = m->swap_path[i];
		m->swap_path[i] = NULL;
		d->path = m->drive_path[i];
		d->format = 0;
		rr = blk_open(d->path, &o, &m->blk[i], e, sizeof(e));
		if (rr == 0 && (rr = blk_start_workers(m->blk[i])) < 0)
			snprintf(e, sizeof(e), "'%s': cannot start its I/O threads", d->path);
		if (rr < 0 && r == 0) {
			r = rr;
			snprintf(err, errlen, "disk: %s", e);
		}
	}
	return r;
}

int machine_with_drives_closed(struct machine *m, const char *const *paths,
			       void (*fn)(void *opaque), void *opaque,
			       char *err, size_t errlen)
{
	bool closed[MACHINE_MAX_DRIVES] = { false };
	int r = 0;

	pthread_mutex_lock(&m->ctl);
	if (m->state != RUN_PAUSED)
		r = -EAGAIN;
	pthread_mutex_unlock(&m->ctl);
	if (r) {
		snprintf(err, errlen, "the machine is not paused");
		return r;
	}
	/* Doorbells rung before the pause reach their devices first (their
	 * requests then drain): none may submit to a closed image. */
	if (m->io) {
		pthread_mutex_lock(&m->lock);
		iothread_run_pending(m->io);
		pthread_mutex_unlock(&m->lock);
	}
	/* Requests in flight complete under the device lock: not held. */
	device_table_quiesce(&m->devices);
	for (unsigned i = 0; i < m->cfg.ndrives; i++) {
		const struct machine_drive *d = &m->cfg.drive[i];

		if (d->readonly || d->cdrom || !m->blk[i])
			continue;
		if (blk_suspend(m->blk[i]) < 0)
			vlog(LOG_WARN, "disk %u: flush failed before closing it", i);
		closed[i] = true;
	}
	if (fn)
		fn(opaque);
	for (unsigned i = 0; i < m->cfg.ndrives; i++) {
		struct machine_drive *d = &m->cfg.drive[i];
		const char *p = paths ? paths[i] : NULL;
		struct blk_open_opts o = { .format = BLK_FMT_AUTO };
		char e[400];
		int rr;

		if (!closed[i])
			continue;
		rr = blk_resume(m->blk[i], p, &o, e, sizeof(e));
		if (rr == 0 && p) {
			g_free(m->drive_path[i]);
			m->drive_path[i] = g_strdup(p);
			d->path = m->drive_path[i];
			d->format = 0;
		}
		if (rr < 0 && r == 0) {
			r = rr;
			snprintf(err, errlen, "disk: %s", e);
		}
		if (rr < 0 && blk_suspended(m->blk[i]))
			machine_fail(m, -EIO, "disk %u has no image any more: %s", i, err);
	}
	return r;
}

int machine_state_apply(struct machine *m, char *err, size_t errlen)
{
	struct ramfile_block blocks[MEM_MAX_REGIONS + 1];
	char ids[MEM_MAX_REGIONS + 1][RAMFILE_ID_MAX + 1];
	struct statefile *sf = m->restore;
	guint64 vclock_ns, kvmclock;
	GVariant *v;
	unsigned n;
	int r;

	if (statefile_config_hash(sf) != config_hash(m)) {
		snprintf(err, errlen, "the state was saved for another machine configuration (memory, vCPUs or devices changed)");
		return -ESTALE;
	}
	v = statefile_get(sf, MACHINE_SECTION, G_VARIANT_TYPE(MACHINE_SECTION_TYPE),
			  NULL, err, errlen);
	if (!v) {
		if (!err[0])
			snprintf(err, errlen, "the state has no machine section");
		return -EINVAL;
	}
	g_variant_get(v, MACHINE_SECTION_TYPE, &vclock_ns, &kvmclock);
	g_variant_unref(v);
	n = memory_blocks(m, blocks, ids);
	r = ramfile_map(m->restore_ram, blocks, n, err, errlen);
	if (r < 0)
		return r;
	/* Device deadlines are in the saved clock's time. */
	vclock_set(&m->clock, vclock_ns);
	m->restore_kvmclock = kvmclock;	/* run_once() sets it */
	pthread_mutex_lock(&m->lock);
	for (unsigned i = 0; i < m->devices.n; i++) {
		const struct device_ops *ops = m->devices.dev[i].ops;
		char id[STATEFILE_ID_MAX + 1];
		uint32_t version = 0;

		device_id(&m->devices, i, id, sizeof(id));
		err[0] = 0;
		v = statefile_get(sf, id, NULL, &version, err, errlen);
		if (!v || !ops->load) {
			if (v)
				g_variant_unref(v);
			snprintf(err, errlen, "the state has no section for the %s device", id);
			r = -EINVAL;
			break;
		}
		r = ops->load(m->devices.dev[i].opaque, version, v, err, errlen);
		g_variant_unref(v);
		if (r < 0)
			break;
	}
	pthread_mutex_unlock(&m->lock);
	if (r == 0)
		r = load_backends(m, sf, err, errlen);
	if (r == 0)
		r = load_tpm(m, sf, err, errlen);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < m->cfg.ncpus; i++) {
		char id[16];
		const void *data;
		gsize len;

		snprintf(id, sizeof(id), "cpu.%u", i);
		v = statefile_get(sf, id, G_VARIANT_TYPE_BYTESTRING, NULL, err, errlen);
		if (!v) {
			snprintf(err, errlen, "the state holds no vCPU %u", i);
			return -EINVAL;
		}
		data = g_variant_get_fixed_array(v, &len, 1);
		free(m->cpu[i].state);
		m->cpu[i].state = malloc(len ? len : 1);
		if (!m->cpu[i].state) {
			g_variant_unref(v);
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		memcpy(m->cpu[i].state, data, len);
		m->cpu[i].state_len = len;
		g_variant_unref(v);
	}
	statefile_free(m->restore);
	m->restore = NULL;
	g_free(m->restore_ram);
	m->restore_ram = NULL;
	return 0;
}
