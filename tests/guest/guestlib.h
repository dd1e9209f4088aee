/* SPDX-License-Identifier: MIT */
/*
 * tests/guest/guestlib.h - tiny guests on /dev/kvm for the guest test tier.
 *
 * A test makes a VM (hostdrv + vmm-core guest_mem, port-I/O and MMIO buses),
 * copies machine code into guest RAM, puts a vCPU in real mode or 64-bit
 * long mode (guestlib's own page tables and GDT) and runs it.  Port I/O and
 * MMIO exits go to the buses under the device lock; a write to
 * GUEST_EXIT_PORT ends the run with the value written.  Guests must finish
 * that way: with the in-kernel LAPIC, hlt blocks inside KVM.
 *
 * Guest code is assembled by gcc from the test's own source:
 *
 *   GUEST_CODE16(hello,
 *	"mov $0x510, %dx\n"
 *	"mov $42, %ax\n"
 *	"out %ax, %dx\n"
 *	GUEST_EXIT_ASM)
 *
 * defines `hello` and `hello_end` (const uint8_t[]); copy it with
 * guest_load(g, gpa, hello, hello_end - hello).  The code is position
 * dependent only through what it says: jumps are relative, and data is
 * best addressed as (label - name) from a known segment or base.
 * /dev/kvm here is an instruction emulator (~1-3 M instructions/s): keep
 * guests to hundreds of instructions.
 */
#ifndef VIVARIUM_GUESTLIB_H
#define VIVARIUM_GUESTLIB_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "hv.h"
#include "mem.h"

/* A write of 1, 2 or 4 bytes here ends guest_run() with that value. */
#define GUEST_EXIT_PORT 0x501
/* Ends the guest with value %al (the caller sets it); works in 16/64-bit. */
#define GUEST_EXIT_ASM "mov $0x501, %dx\n" "out %al, %dx\n"

/* Where guest_setup_long_mode() puts its tables; code goes above. */
#define GUEST_PT_GPA	0x1000	/* PML4; PDPT at +0x1000; 4 PDs after */
#define GUEST_GDT_GPA	0x7000
#define GUEST_CODE_GPA	0x10000	/* a conventional place for code */

#define GUEST_CODE_(name, mode, body)                                       \
	extern const uint8_t name[], name##_end[];                          \
	__asm__(".pushsection .rodata." #name ", \"a\"\n"                   \
		".globl " #name "\n" #name ":\n" mode "\n" body "\n"        \
		".globl " #name "_end\n" #name "_end:\n"                    \
		".code64\n.popsection\n")
/* 16-bit real-mode code. */
#define GUEST_CODE16(name, body) GUEST_CODE_(name, ".code16", body)
/* 64-bit long-mode code. */
#define GUEST_CODE64(name, body) GUEST_CODE_(name, ".code64", body)

struct guest {
	struct hv_system *sys;
	struct hv_vm *vm;
	struct guest_mem mem;
	struct bus *pio, *mmio;
	pthread_mutex_t lock;	/* the device lock around bus dispatch */
};

/*
 * guest_open - a VM with @ram_size bytes of RAM and empty buses.  Exits 77
 * (meson's "skipped") with the reason when /dev/kvm (or the device named by
 * $VIVARIUM_TEST_KVM) is missing or not accessible; returns 0 or a
 * negative errno for other failures.
 */
int guest_open(struct guest *g, uint64_t ram_size);
void guest_close(struct guest *g);

/* Copy @len bytes to guest RAM at @gpa; aborts the test if out of RAM. */
void guest_load(struct guest *g, uint64_t gpa, const void *src, size_t len);
/* A pointer to guest RAM [@gpa, @gpa + @len), or NULL. */
void *guest_ptr(struct guest *g, uint64_t gpa, size_t len);

/* hv_vcpu_create() with the host CPU model; call on the running thread. */
int guest_vcpu(struct guest *g, unsigned id, unsigned ncpus,
	       struct hv_vcpu **out);

/* Real mode at @seg:@ip (CS = DS = ES = SS = @seg), SP = @sp. */
int guest_setup_real_mode(struct hv_vcpu *v, uint16_t seg, uint16_t ip,
			  uint16_t sp);
/* 64-bit long mode, identity-mapped 4 GiB (2 MiB pages, writes the tables
 * at GUEST_PT_GPA and a GDT at GUEST_GDT_GPA), RIP = @rip, RSP = @rsp. */
int guest_setup_long_mode(struct guest *g, struct hv_vcpu *v, uint64_t rip,
			  uint64_t rsp);

enum guest_stop_how {
	GUEST_STOP_EXIT_PORT,	/* value = what was written */
	GUEST_STOP_TIMEOUT,
	GUEST_STOP_ERROR,	/* hv_vcpu_run() failed: err */
	GUEST_STOP_UNEXPECTED,	/* an exit guestlib does not handle: exit */
};

struct guest_stop {
	enum guest_stop_how how;
	uint32_t value;
	int err;
	struct hv_exit exit;
	unsigned nexits;	/* exits handled during the run */
	double seconds;		/* wall time of the run */
};

/*
 * guest_run - run @v until it writes GUEST_EXIT_PORT, an exit guestlib
 * does not handle, an error, or @timeout_s seconds (then a kick stops it).
 * HV_EXIT_INTR from other kicks is ignored.  Returns st->how.
 */
enum guest_stop_how guest_run(struct guest *g, struct hv_vcpu *v,
			      double timeout_s, struct guest_stop *st);
/* One line describing @st, for failure messages. */
const char *guest_stop_str(const struct guest_stop *st, char *buf,
			   size_t len);

/* ---- a recording test device ------------------------------------------ */

#define GUEST_LOG_MAX 256

struct guest_access {
	uint64_t offset;
	uint64_t value;
	uint8_t size;
	bool is_write;
};

/* Logs every access (up to GUEST_LOG_MAX); reads return reply() or 0. */
struct guest_recorder {
	struct guest_access log[GUEST_LOG_MAX];
	unsigned n;
	uint64_t (*reply)(uint64_t offset, unsigned size);
};
extern const struct bus_ops guest_recorder_ops;

/* Monotonic seconds, for timings. */
double guest_now(void);

#endif
