/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/host/chardev.h - host ends of character devices (a UART's
 * output and input): the terminal in raw mode, a file, or a buffer in tests.
 *
 * The stdio backend puts the terminal in raw mode while the VM runs and
 * restores it on chardev_free() (and at exit() or on a fatal signal, should
 * the process end without calling it).  Typing Ctrl-A then x asks the VM to
 * quit; Ctrl-A Ctrl-A sends a literal Ctrl-A; Ctrl-A followed by anything
 * else is dropped (as QEMU's mux does).  End of file on stdin stops input
 * and calls the sink's eof callback, if it has one.
 */
#ifndef VIVARIUM_CHARDEV_H
#define VIVARIUM_CHARDEV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct chardev;

struct chardev_sink {
	/* Bytes typed for the guest; called from the chardev's input thread
	 * with the device lock held.  Returns how many bytes were taken; the
	 * rest are offered again later (see chardev_input_wakeup()). */
	size_t (*receive)(void *opaque, const uint8_t *buf, size_t len);
	void *opaque;
	/* The user typed the quit escape (may be NULL).  Called from the
	 * input thread WITHOUT the device lock; must not free the chardev. */
	void (*quit)(void *opaque);
	void *quit_opaque;
	/* Input ended (stdin reached end of file) after every byte before it
	 * was taken (may be NULL).  Input thread, WITHOUT the device lock;
	 * gets quit_opaque. */
	void (*eof)(void *opaque);
};

/* Output to stdout, input from stdin (raw mode if it is a terminal). */
struct chardev *chardev_stdio_new(void);
/* Output appended to @path (created 0644); no input.  NULL + errno. */
struct chardev *chardev_file_new(const char *path);
/* Output to @out_fd, input from @in_fd (-1: none): two different fds,
 * both owned (closed by chardev_free()).  No
 * terminal handling and no Ctrl-A escape: bytes pass as they are.  Make
 * @out_fd non-blocking (output that cannot be written at once is then
 * dropped after a short wait, as for stdio).  For a VM process whose
 * serial console is served over its control socket. */
struct chardev *chardev_fd_new(int in_fd, int out_fd);
/* Output collected in memory (tests); no input. */
struct chardev *chardev_buffer_new(void);
/* Bytes collected by a buffer chardev (NUL-terminated), and their count. */
const char *chardev_buffer_data(struct chardev *chr, size_t *len);

/* Guest -> host bytes.  Never blocks the caller for long: output that cannot
 * be written is dropped.  Returns 0 or -errno. */
int chardev_write(struct chardev *chr, const uint8_t *buf, size_t len);

/* Start delivering host input to @sink, taking @lock around each call.
 * Backends without input (file, buffer) accept and ignore this.
 * Returns 0, -EBUSY if input already runs, or -errno. */
int chardev_start_input(struct chardev *chr, const struct chardev_sink *sink,
			pthread_mutex_t *lock);
/* The sink has room again (e.g. the guest emptied the UART's receive FIFO):
 * offer held-back input now rather than at the next retry (10 ms).  Cheap,
 * callable with the device lock held; @chr may be NULL. */
void chardev_input_wakeup(struct chardev *chr);
/* Stop the input thread: once this returns the sink is never called again
 * (call it before the sink's owner or @lock goes away, and not with @lock
 * held).  Idempotent. */
void chardev_stop_input(struct chardev *chr);
/* Stop the input thread, restore the terminal, free. */
void chardev_free(struct chardev *chr);

/*
 * The Ctrl-A escape state machine of the stdio backend, exposed for tests.
 * chardev_escape_filter() copies the bytes of @in meant for the guest to
 * @out (room for @len bytes) and returns how many; *@quit is set if the quit
 * sequence was seen (bytes after it are dropped).  The state carries a
 * pending Ctrl-A across calls.
 */
#define CHARDEV_ESCAPE_CHAR 0x01	/* Ctrl-A */
struct chardev_escape {
	bool pending;
};
size_t chardev_escape_filter(struct chardev_escape *esc, const uint8_t *in,
			     size_t len, uint8_t *out, bool *quit);

#endif
