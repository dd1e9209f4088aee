/* SPDX-License-Identifier: MIT */
/* tests/fuzz/fuzz.h - what a fuzz target defines (see fuzz_runner.c). */
#ifndef VIVARIUM_FUZZ_H
#define VIVARIUM_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* libFuzzer's entry point: run one input; crash or abort() on a bug. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Optional: hand the runner starting inputs, one add() call each. */
void fuzz_make_seeds(void (*add)(const void *data, size_t len));

#endif
