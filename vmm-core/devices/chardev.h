/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/devices/chardev.h - host ends of character devices (a UART's
 * output and input): the terminal in raw mode, a file, or a buffer in tests.
 *
 * The stdio backend puts the terminal in raw mode while the VM runs and
 * restores it on chardev_free().  Typing Ctrl-A then x asks the VM to quit;
 * Ctrl-A Ctrl-A sends a literal Ctrl-A.
 */
#ifndef VIVARIUM_CHARDEV_H
#define VIVARIUM_CHARDEV_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct chardev;

struct chardev_sink {
	/* Bytes typed for the guest; called from the chardev's input thread
	 * with the device lock held.  Returns how many bytes were taken. */
	size_t (*receive)(void *opaque, const uint8_t *buf, size_t len);
	void *opaque;
	/* The user typed the quit escape (may be NULL). */
	void (*quit)(void *opaque);
	void *quit_opaque;
};

/* Output to stdout, input from stdin (raw mode if it is a terminal). */
struct chardev *chardev_stdio_new(void);
/* Output appended to @path (created 0644); no input.  NULL + errno. */
struct chardev *chardev_file_new(const char *path);
/* Output collected in memory (tests); no input. */
struct chardev *chardev_buffer_new(void);
/* Bytes collected by a buffer chardev (NUL-terminated), and their count. */
const char *chardev_buffer_data(struct chardev *chr, size_t *len);

/* Guest -> host bytes.  Never blocks the caller for long: output that cannot
 * be written is dropped.  Returns 0 or -errno. */
int chardev_write(struct chardev *chr, const uint8_t *buf, size_t len);

/* Start delivering host input to @sink, taking @lock around each call. */
int chardev_start_input(struct chardev *chr, const struct chardev_sink *sink,
			pthread_mutex_t *lock);
/* Stop the input thread, restore the terminal, free. */
void chardev_free(struct chardev *chr);

#endif
