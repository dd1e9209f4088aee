/* SPDX-License-Identifier: MIT */
/*
 * app/img.h - what the `vivarium img` subcommands share (cmd_img.c: the
 * dispatcher, create, info, check; img_convert.c: convert; img_chain.c:
 * rebase, commit; img_copy() also serves `vivarium clone`).  Every helper
 * that reports prints one line on stderr, "vivarium img CMD: ...", where
 * CMD is the subcommand's name.
 */
#ifndef VIVARIUM_IMG_H
#define VIVARIUM_IMG_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "block/block.h"

#define EXIT_FAIL	1	/* the command failed; nothing was damaged */
#define EXIT_USAGE	2	/* bad arguments */

/* The usage text of every subcommand, to @f. */
void img_usage(FILE *f);
/* `vivarium img convert` (argv[0] is "convert"); returns the exit status. */
int img_convert(int argc, char **argv);
/* `vivarium img rebase` and `commit` (img_chain.c), likewise. */
int img_rebase(int argc, char **argv);
int img_commit(int argc, char **argv);

/*
 * img_copy - copy what @src's guest sees (its backing chain merged) into
 * @dst, open for writing, new (reading as zeroes) and at least as long:
 * runs that read as zero are not written, so @dst stays sparse; then
 * flush @dst.  @stop (may be NULL) is looked at between steps: once it is
 * non-zero the copy ends with -EINTR.  @progress (may be NULL) gets the
 * bytes done and the total after each step.  Returns 0 or -errno, with
 * *@failed_side "reading" or "writing" saying which image failed.
 */
int img_copy(struct blk *src, struct blk *dst,
	     const volatile sig_atomic_t *stop,
	     void (*progress)(void *opaque, uint64_t done, uint64_t total),
	     void *opaque, const char **failed_side);

/* A block-layer failure: @err if the layer wrote one (prefixed with @path
 * unless it names it), else @path and the negative errno @ret. */
void img_fail(const char *cmd, const char *path, int ret, const char *err);
/* getopt_long()'s '?' or ':' result @opt (optstring starting with ':',
 * opterr 0) as one line; returns EXIT_USAGE. */
int img_bad_option(const char *cmd, int opt, char **argv);
/* "raw"/"qcow2" -> *@out; else a line and -1. */
int img_parse_format(const char *cmd, const char *name, enum blk_format *out);
/* Between @min and @max arguments left after getopt (@what names them for
 * the "give ..." line); 0 or -1 after a line. */
int img_want_args(const char *cmd, int argc, char **argv, int min, int max,
		  const char *what);
/* Whether anything (even a dangling symlink) is at @path. */
bool img_path_exists(const char *path);
/* "'PATH' already exists; vivarium never overwrites an image ..." */
void img_refuse_existing(const char *cmd, const char *path);
/*
 * img_parse_create_options - qemu-img's -o list, "cluster_size=64k,
 * compat=1.1" (also backing_file=, backing_fmt= when @allow_backing), into
 * @co.  Modifies @opts (strtok).  0, or -1 after a line.
 */
int img_parse_create_options(const char *cmd, char *opts,
			     struct blk_create_opts *co, bool allow_backing);
/* Refuse qcow2-only settings (cluster size, compat, backing) for raw. */
int img_check_create_format(const char *cmd, const struct blk_create_opts *co);

#endif
