/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/devices/debugport.h - small ports for firmware and test guests:
 *  - POST code port 0x80: remembers the last byte written (reads return it);
 *  - debug console port 0x402 (SeaBIOS/Bochs convention): bytes go to a
 *    chardev;
 *  - test-exit port 0x501 (width 1-4): a write ends the VM with that value
 *    as its exit status (test guests; cf. QEMU's isa-debug-exit).
 */
#ifndef VIVARIUM_DEBUGPORT_H
#define VIVARIUM_DEBUGPORT_H

#include <stdint.h>

#include "../device.h"

#define POST_PORT	0x80
#define DEBUGCON_PORT	0x402
#define TEST_EXIT_PORT	0x501

struct bus;
struct chardev;
struct debugport;

struct debugport *debugport_new(struct chardev *con,
				void (*test_exit)(void *opaque, uint32_t code),
				void *opaque);
void debugport_free(struct debugport *d);
/*
 * Its lifecycle in the machine's device table (device.h).
 * debugport_device_ops: state DEBUGPORT_STATE_TYPE, version 1: (the last
 * POST code).  The debug console's chardev and the test-exit hook are
 * wiring, not state.
 */
#define DEBUGPORT_STATE_TYPE "(y)"
extern const struct device_ops debugport_device_ops;
int debugport_attach(struct debugport *d, struct bus *pio);
uint8_t debugport_post_code(const struct debugport *d);

#endif
