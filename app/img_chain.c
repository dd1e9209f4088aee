/* SPDX-License-Identifier: MIT */
/*
 * app/img_chain.c - `vivarium img rebase [-f FMT] [-u] -b BACKING [-F FMT]
 * IMG` and `vivarium img commit [-f FMT] [-d] IMG`, with qemu-img's
 * arguments and meaning, over the block layer's chain calls (block.h,
 * "backing chains").
 *
 * rebase -u only rewrites IMG's header; without -u (safe mode) it first
 * copies into IMG every cluster where the old and new backing chains
 * read differently, so IMG reads the same afterwards; -b "" removes the
 * backing file (after copying everything in, unless -u).  As with
 * qemu-img 7.2, a backing file needs its format (-F).  commit writes IMG's
 * clusters into its backing file and then empties IMG (-d: leaves it).
 * Both open IMG for writing, so an image in use (image locks) is refused
 * with one line, and they write in an order that leaves every image
 * consistent if they fail or are killed (block.h).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "img.h"

static int open_rw(const char *cmd, const char *path,
		   const struct blk_open_opts *oo, struct blk **b)
{
	char err[512] = "";
	int ret = blk_open(path, oo, b, err, sizeof(err));

	if (ret < 0)
		img_fail(cmd, path, ret, err);
	return ret;
}

int img_rebase(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct blk_open_opts oo = { 0 };
	enum blk_format bfmt = BLK_FMT_AUTO;
	const char *backing = NULL;
	bool unsafe = false;
	char err[512] = "";
	struct blk *b;
	int opt, ret;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":f:b:F:uqh", opts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			if (img_parse_format("rebase", optarg, &oo.format) < 0)
				return EXIT_USAGE;
			break;
		case 'F':
			if (img_parse_format("rebase", optarg, &bfmt) < 0)
				return EXIT_USAGE;
			break;
		case 'b': backing = optarg; break;
		case 'u': unsafe = true; break;
		case 'q': break;	/* it prints nothing anyway */
		case 'h': img_usage(stdout); return 0;
		default: return img_bad_option("rebase", opt, argv);
		}
	}
	if (img_want_args("rebase", argc, argv, 1, 1, "the image's PATH") < 0)
		return EXIT_USAGE;
	if (!backing) {
		fprintf(stderr, "vivarium img rebase: give the new backing file "
			"with -b BACKING (-b \"\" for none)\n");
		return EXIT_USAGE;
	}
	if (backing[0] && bfmt == BLK_FMT_AUTO) {
		fprintf(stderr, "vivarium img rebase: give the backing file's "
			"format with -F raw|qcow2 (as qemu-img wants)\n");
		return EXIT_USAGE;
	}
	/* -u: IMG's old backing file may be gone; the new one need not be
	 * there yet (qemu-img opens neither). */
	oo.no_backing = unsafe;
	if (open_rw("rebase", argv[optind], &oo, &b) < 0)
		return EXIT_FAIL;
	if (unsafe)
		ret = blk_set_backing(b, backing, bfmt, err, sizeof(err));
	else
		ret = blk_rebase(b, backing, bfmt, err, sizeof(err));
	blk_close(b);
	if (ret < 0) {
		img_fail("rebase", argv[optind], ret, err);
		return EXIT_FAIL;
	}
	return 0;
}

int img_commit(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct blk_open_opts oo = { 0 };
	unsigned flags = 0;
	bool quiet = false;
	char err[512] = "";
	struct blk *b;
	int opt, ret;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":f:dqh", opts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			if (img_parse_format("commit", optarg, &oo.format) < 0)
				return EXIT_USAGE;
			break;
		case 'd': flags |= BLK_COMMIT_KEEP_TOP; break;
		case 'q': quiet = true; break;
		case 'h': img_usage(stdout); return 0;
		default: return img_bad_option("commit", opt, argv);
		}
	}
	if (img_want_args("commit", argc, argv, 1, 1, "the image's PATH") < 0)
		return EXIT_USAGE;
	if (open_rw("commit", argv[optind], &oo, &b) < 0)
		return EXIT_FAIL;
	ret = blk_commit(b, flags, err, sizeof(err));
	blk_close(b);
	if (ret < 0) {
		img_fail("commit", argv[optind], ret, err);
		return EXIT_FAIL;
	}
	if (!quiet)
		printf("Image committed.\n");
	return 0;
}
