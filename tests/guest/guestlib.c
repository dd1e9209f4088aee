/* SPDX-License-Identifier: MIT */
/* tests/guest/guestlib.c - see guestlib.h. */
#include "guestlib.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vcpu.h"
#include "sandboxed.h"

/* Every guest test runs the VMM's own threads (vCPUs, timers, the I/O
 * thread, block workers, chardev input) on the allow-lists they have in a
 * sandboxed VM process (tests/unit/sandboxed.h). */
__attribute__((constructor)) static void guest_sandboxed(void)
{
	sandbox_test_threads(false);
}

double guest_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int guest_open(struct guest *g, uint64_t ram_size)
{
	char err[256];
	int r;

	memset(g, 0, sizeof(*g));
	/* VIVARIUM_TEST_KVM: another device node (or a missing one, to see
	 * the tier skip). */
	r = hv_open(getenv("VIVARIUM_TEST_KVM"), &g->sys, err, sizeof(err));
	if (r == -ENOENT || r == -EACCES || r == -EPERM || r == -ENODEV ||
	    r == -ENXIO)
	{
		/* meson's "skipped" */
		printf("SKIP: %s\n", err);
		exit(77);
	}
	if (r < 0) {
		fprintf(stderr, "hv_open: %s\n", err);
		return r;
	}
	r = hv_vm_create(g->sys, &g->vm);
	if (r < 0) {
		fprintf(stderr, "hv_vm_create: %s\n", strerror(-r));
		goto fail;
	}
	r = guest_mem_init(&g->mem, ram_size);
	if (r < 0) {
		fprintf(stderr, "guest_mem_init: %s\n", strerror(-r));
		goto fail;
	}
	for (unsigned i = 0; i < g->mem.nregions; i++) {
		const struct mem_region *m = &g->mem.region[i];

		r = hv_vm_set_memory(g->vm, i, m->gpa, m->size, m->hva, 0);
		if (r < 0) {
			fprintf(stderr, "hv_vm_set_memory: %s\n",
				strerror(-r));
			goto fail;
		}
	}
	g->pio = bus_new("pio");
	g->mmio = bus_new("mmio");
	if (!g->pio || !g->mmio) {
		r = -ENOMEM;
		goto fail;
	}
	pthread_mutex_init(&g->lock, NULL);
	return 0;
fail:
	guest_close(g);
	return r;
}

void guest_close(struct guest *g)
{
	bus_free(g->pio);
	bus_free(g->mmio);
	hv_vm_destroy(g->vm);
	if (g->mem.nregions)
		guest_mem_free(&g->mem);
	hv_close(g->sys);
	memset(g, 0, sizeof(*g));
}

void *guest_ptr(struct guest *g, uint64_t gpa, size_t len)
{
	return gpa_to_hva(&g->mem, gpa, len);
}

void guest_load(struct guest *g, uint64_t gpa, const void *src, size_t len)
{
	if (guest_mem_write(&g->mem, gpa, src, len) < 0) {
		fprintf(stderr, "guest_load: [0x%llx, +%zu) is not RAM\n",
			(unsigned long long)gpa, len);
		abort();
	}
}

int guest_vcpu(struct guest *g, unsigned id, unsigned ncpus,
	       struct hv_vcpu **out)
{
	return hv_vcpu_create(g->vm, id, &hv_cpu_model_host, ncpus, out);
}

/* Load @s, then RIP = @rip, RSP = @rsp, RFLAGS = its reserved bit 1. */
static int set_entry(struct hv_vcpu *v, const struct hv_sregs *s,
		     uint64_t rip, uint64_t rsp)
{
	struct hv_regs r = { .rip = rip, .rsp = rsp, .rflags = 0x2 };
	int e = hv_vcpu_set_sregs(v, s);

	return e < 0 ? e : hv_vcpu_set_regs(v, &r);
}

static void real_seg(struct hv_segment *s, uint16_t sel, uint8_t type)
{
	*s = (struct hv_segment){
		.base = (uint64_t)sel << 4, .limit = 0xffff, .selector = sel,
		.type = type, .present = 1, .s = 1,
	};
}

int guest_setup_real_mode(struct hv_vcpu *v, uint16_t seg, uint16_t ip,
			  uint16_t sp)
{
	struct hv_sregs s;
	int e = hv_vcpu_get_sregs(v, &s);

	if (e < 0)
		return e;
	real_seg(&s.cs, seg, 0xb);	/* code, read, accessed */
	real_seg(&s.ds, seg, 0x3);	/* data, write, accessed */
	real_seg(&s.es, seg, 0x3);
	real_seg(&s.ss, seg, 0x3);
	return set_entry(v, &s, ip, sp);
}

/* Page tables: PML4[0] -> PDPT, PDPT[0..3] -> PD0..3, 2 MiB pages. */
static void write_page_tables(struct guest *g)
{
	uint64_t *pml4 = guest_ptr(g, GUEST_PT_GPA, 6 * 4096);
	uint64_t *pdpt = pml4 + 512, *pd = pml4 + 1024;

	if (!pml4) {
		fprintf(stderr, "guest RAM too small for page tables\n");
		abort();
	}
	memset(pml4, 0, 6 * 4096);
	pml4[0] = (GUEST_PT_GPA + 0x1000) | 0x3;	/* present, rw */
	for (unsigned i = 0; i < 4; i++)
		pdpt[i] = (GUEST_PT_GPA + 0x2000 + i * 0x1000ull) | 0x3;
	for (unsigned i = 0; i < 4 * 512; i++)
		pd[i] = ((uint64_t)i << 21) | 0x83;	/* present, rw, 2M */
}

int guest_setup_long_mode(struct guest *g, struct hv_vcpu *v, uint64_t rip,
			  uint64_t rsp)
{
	static const uint64_t gdt[] = {
		0,
		0x00af9b000000ffffull,	/* 0x08: 64-bit code, DPL 0 */
		0x00cf93000000ffffull,	/* 0x10: flat data */
	};
	struct hv_segment data = {
		.base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 0x3,
		.present = 1, .db = 1, .s = 1, .g = 1,
	};
	struct hv_sregs s;
	int e;

	write_page_tables(g);
	guest_load(g, GUEST_GDT_GPA, gdt, sizeof(gdt));
	e = hv_vcpu_get_sregs(v, &s);
	if (e < 0)
		return e;
	s.cs = (struct hv_segment){
		.base = 0, .limit = 0xffffffff, .selector = 0x08, .type = 0xb,
		.present = 1, .s = 1, .l = 1, .g = 1,
	};
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	/* A busy 64-bit TSS: VM entry insists on a usable TR. */
	s.tr = (struct hv_segment){
		.base = 0, .limit = 0x67, .selector = 0, .type = 0xb,
		.present = 1,
	};
	s.gdt = (struct hv_dtable){ GUEST_GDT_GPA, sizeof(gdt) - 1 };
	s.idt = (struct hv_dtable){ 0, 0 };
	s.cr3 = GUEST_PT_GPA;
	s.cr4 = 1u << 5;			/* PAE */
	s.cr0 = 0x80000031;			/* PG, NE, ET, PE */
	s.efer = (1u << 8) | (1u << 10);	/* LME, LMA */
	return set_entry(v, &s, rip, rsp);
}

/* ---- running ------------------------------------------------------------ */

struct watchdog {
	pthread_t thread;
	pthread_mutex_t m;
	pthread_cond_t c;
	bool done, fired;
	struct hv_vcpu *v;
	struct timespec deadline;
};

static void timespec_add_ns(struct timespec *t, long ns)
{
	t->tv_nsec += ns;
	if (t->tv_nsec >= 1000000000) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000;
	}
}

static void *watchdog_main(void *p)
{
	struct watchdog *w = p;

	pthread_mutex_lock(&w->m);
	while (!w->done) {
		if (pthread_cond_timedwait(&w->c, &w->m, &w->deadline) ==
		    ETIMEDOUT && !w->done) {
			w->fired = true;
			hv_vcpu_kick(w->v);
			/* Keep kicking until the run loop notices. */
			timespec_add_ns(&w->deadline, 100000000);
		}
	}
	pthread_mutex_unlock(&w->m);
	return NULL;
}

static void watchdog_start(struct watchdog *w, struct hv_vcpu *v,
			   double seconds)
{
	pthread_condattr_t a;

	memset(w, 0, sizeof(*w));
	w->v = v;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&w->c, &a);
	pthread_condattr_destroy(&a);
	pthread_mutex_init(&w->m, NULL);
	clock_gettime(CLOCK_MONOTONIC, &w->deadline);
	w->deadline.tv_sec += (time_t)seconds;
	timespec_add_ns(&w->deadline,
			(long)((seconds - (time_t)seconds) * 1e9));
	pthread_create(&w->thread, NULL, watchdog_main, w);
}

static bool watchdog_fired(struct watchdog *w)
{
	bool f;

	pthread_mutex_lock(&w->m);
	f = w->fired;
	pthread_mutex_unlock(&w->m);
	return f;
}

static void watchdog_stop(struct watchdog *w)
{
	pthread_mutex_lock(&w->m);
	w->done = true;
	pthread_cond_signal(&w->c);
	pthread_mutex_unlock(&w->m);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->c);
	pthread_mutex_destroy(&w->m);
}

static uint32_t io_value(const struct hv_exit *e)
{
	uint32_t v = 0;

	for (unsigned i = 0; i < e->io.size; i++)
		v |= (uint32_t)e->io.data[i] << (8 * i);
	return v;
}

enum guest_stop_how guest_run(struct guest *g, struct hv_vcpu *v,
			      double timeout_s, struct guest_stop *st)
{
	struct watchdog w;
	double t0 = guest_now();

	memset(st, 0, sizeof(*st));
	watchdog_start(&w, v, timeout_s);
	for (;;) {
		struct hv_exit *e = &st->exit;
		int r = hv_vcpu_run(v, e);

		if (r < 0) {
			st->how = GUEST_STOP_ERROR;
			st->err = r;
			break;
		}
		if (e->kind == HV_EXIT_INTR) {
			if (watchdog_fired(&w)) {
				st->how = GUEST_STOP_TIMEOUT;
				break;
			}
			continue;
		}
		st->nexits++;
		if (e->kind == HV_EXIT_IO && e->io.is_write &&
		    e->io.port == GUEST_EXIT_PORT) {
			st->how = GUEST_STOP_EXIT_PORT;
			st->value = io_value(e);
			break;
		}
		if (e->kind == HV_EXIT_IO) {
			pthread_mutex_lock(&g->lock);
			vcpu_dispatch_io(g->pio, e);
			pthread_mutex_unlock(&g->lock);
		} else if (e->kind == HV_EXIT_MMIO) {
			pthread_mutex_lock(&g->lock);
			vcpu_dispatch_mmio(g->mmio, e);
			pthread_mutex_unlock(&g->lock);
		} else {
			st->how = GUEST_STOP_UNEXPECTED;
			break;
		}
	}
	watchdog_stop(&w);
	st->seconds = guest_now() - t0;
	return st->how;
}

static const char *const kind_names[] = {
	[HV_EXIT_NONE] = "none", [HV_EXIT_IO] = "io", [HV_EXIT_MMIO] = "mmio",
	[HV_EXIT_HLT] = "hlt", [HV_EXIT_SHUTDOWN] = "shutdown (triple fault)",
	[HV_EXIT_SYSTEM_EVENT] = "system event",
	[HV_EXIT_INTERNAL_ERROR] = "internal error",
	[HV_EXIT_FAIL_ENTRY] = "entry failure", [HV_EXIT_INTR] = "intr",
	[HV_EXIT_IRQ_WINDOW] = "irq window", [HV_EXIT_EOI] = "eoi",
	[HV_EXIT_DEBUG] = "debug", [HV_EXIT_UNKNOWN] = "unknown",
};

const char *guest_stop_str(const struct guest_stop *st, char *buf,
			   size_t len)
{
	const struct hv_exit *e = &st->exit;

	switch (st->how) {
	case GUEST_STOP_EXIT_PORT:
		snprintf(buf, len, "exit port, value 0x%x, %u exits, %.3f s",
			 st->value, st->nexits, st->seconds);
		break;
	case GUEST_STOP_TIMEOUT:
		snprintf(buf, len, "timed out after %.1f s (%u exits)",
			 st->seconds, st->nexits);
		break;
	case GUEST_STOP_ERROR:
		snprintf(buf, len, "KVM_RUN failed: %s", strerror(-st->err));
		break;
	default:
		if (e->kind == HV_EXIT_INTERNAL_ERROR) {
			int n = snprintf(buf, len, "internal error %u, insn",
					 e->internal.suberror);

			for (unsigned i = 0; i < e->internal.insn_len &&
			     n > 0 && (size_t)n < len; i++)
				n += snprintf(buf + n, len - n, " %02x",
					      e->internal.insn[i]);
		} else {
			snprintf(buf, len, "unexpected exit: %s",
				 (unsigned)e->kind < sizeof(kind_names) /
				 sizeof(kind_names[0]) ? kind_names[e->kind] :
				 "?");
		}
	}
	return buf;
}

/* ---- the recorder --------------------------------------------------------- */

static uint64_t rec_read(void *opaque, uint64_t offset, unsigned size)
{
	struct guest_recorder *r = opaque;
	uint64_t v = r->reply ? r->reply(offset, size) : 0;

	if (size < 8)
		v &= (1ull << (8 * size)) - 1;
	if (r->n < GUEST_LOG_MAX)
		r->log[r->n++] = (struct guest_access){ offset, v,
							(uint8_t)size, false };
	return v;
}

static void rec_write(void *opaque, uint64_t offset, uint64_t value,
		      unsigned size)
{
	struct guest_recorder *r = opaque;

	if (r->n < GUEST_LOG_MAX)
		r->log[r->n++] = (struct guest_access){ offset, value,
							(uint8_t)size, true };
}

const struct bus_ops guest_recorder_ops = {
	.name = "test-recorder",
	.read = rec_read,
	.write = rec_write,
};
