/* SPDX-License-Identifier: MIT */
/*
 * app/img_convert.c - `vivarium img convert [-f FMT] [-O FMT] [-o OPTIONS]
 * [-p] [-q] [-U] SRC DST`: copy what SRC's guest sees (its backing chain
 * merged) into a new standalone image.  Runs that read as zero are not
 * written, so the result stays sparse; the copy is a nameless file in
 * DST's folder (vmm-core/newfile.h), linked in as DST without
 * overwriting only when complete: a kill -9 half-way leaves nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "block/block.h"
#include "img.h"
#include "newfile.h"

#define PROGRESS_AUTO_NS (2ull * 1000000000ull) /* TTY progress after 2 s */

static volatile sig_atomic_t convert_stop;

static void convert_on_signal(int signo)
{
	convert_stop = signo;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* "    (42.00/100%)\r" as qemu-img -p prints it, on stdout. */
struct progress {
	bool forced;		/* -p */
	bool auto_tty;		/* no -p/-q, stdout a terminal: show once slow */
	bool shown;
	uint64_t start_ns;
	double last_pct;
};

static void progress_update(struct progress *p, uint64_t done, uint64_t total)
{
	double pct = total ? 100.0 * (double)done / (double)total : 100.0;

	if (!p->forced && !p->auto_tty)
		return;
	if (!p->forced && !p->shown && now_ns() - p->start_ns < PROGRESS_AUTO_NS)
		return;
	/* Every whole per cent; progress_end() prints the 100. */
	if ((p->shown && pct - p->last_pct < 1.0) || pct >= 100.0)
		return;
	printf("    (%3.2f/100%%)\r", pct);
	fflush(stdout);
	p->shown = true;
	p->last_pct = pct;
}

static void progress_end(struct progress *p)
{
	if (p->shown || p->forced) {
		printf("    (100.00/100%%)\n");
		fflush(stdout);
	}
}

static void convert_progress(void *opaque, uint64_t done, uint64_t total)
{
	progress_update(opaque, done, total);
}

static int convert_into(struct blk *src, const char *dst,
			struct blk_create_opts *co, struct progress *p)
{
	struct blk_open_opts oo = { .format = co->format };
	const char *side = "writing";
	struct blk *out = NULL;
	struct newfile nf;
	char err[512] = "";
	int ret;

	co->size = blk_length(src);
	ret = newfile_open(&nf, dst, 0666, err, sizeof(err));
	if (ret < 0) {
		img_fail("convert", dst, ret, err);
		return EXIT_FAIL;
	}
	ret = blk_create_fd(nf.fd, dst, co, err, sizeof(err));
	if (ret == 0)
		ret = blk_open_fd(nf.fd, dst, &oo, &out, err, sizeof(err));
	if (ret < 0) {
		img_fail("convert", dst, ret, err);
		goto fail;
	}
	ret = img_copy(src, out, &convert_stop, convert_progress, p, &side);
	blk_close(out);
	if (ret < 0 && p->shown)	/* end the progress line */
		printf("\n");
	if (ret == -EINTR) {
		fprintf(stderr, "vivarium img convert: interrupted; '%s' was not "
			"created\n", dst);
		goto fail;
	}
	if (ret < 0) {
		fprintf(stderr, "vivarium img convert: %s '%s': %s; '%s' was not "
			"created\n", side,
			!strcmp(side, "reading") ? blk_path(src) : dst,
			strerror(-ret), dst);
		goto fail;
	}
	ret = newfile_commit(&nf, false, err, sizeof(err));
	if (ret == -EEXIST) {
		img_refuse_existing("convert", dst);
		return EXIT_FAIL;
	}
	if (ret < 0) {
		fprintf(stderr, "vivarium img convert: cannot name the result '%s': %s\n",
			dst, strerror(-ret));
		return EXIT_FAIL;
	}
	progress_end(p);
	return 0;
fail:
	newfile_abort(&nf);
	return convert_stop ? 128 + convert_stop : EXIT_FAIL;
}

int img_convert(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "force-share", no_argument, NULL, 'U' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct blk_open_opts so = { .readonly = true };
	struct blk_create_opts co = { .format = BLK_FMT_RAW };
	struct progress prog = { 0 };
	struct sigaction sa = { .sa_handler = convert_on_signal };
	const char *dst;
	struct blk *src;
	char err[512] = "";
	bool quiet = false;
	int opt, ret;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":f:O:o:cpqUh", opts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			if (img_parse_format("convert", optarg, &so.format) < 0)
				return EXIT_USAGE;
			break;
		case 'O':
			if (img_parse_format("convert", optarg, &co.format) < 0)
				return EXIT_USAGE;
			break;
		case 'o':
			if (img_parse_create_options("convert", optarg, &co, false) < 0)
				return EXIT_USAGE;
			break;
		case 'c':
			fprintf(stderr, "vivarium img convert: -c: compressed output is "
				"not supported; convert without -c\n");
			return EXIT_USAGE;
		case 'p': prog.forced = true; break;
		case 'q': quiet = true; break;
		case 'U': so.no_lock = true; break;
		case 'h': img_usage(stdout); return 0;
		default: return img_bad_option("convert", opt, argv);
		}
	}
	if (img_want_args("convert", argc, argv, 2, 2, "SRC and DST") < 0)
		return EXIT_USAGE;
	if (img_check_create_format("convert", &co) < 0)
		return EXIT_USAGE;
	if (co.format == BLK_FMT_AUTO) {
		fprintf(stderr, "vivarium img convert: -O: name the output format "
			"(raw or qcow2)\n");
		return EXIT_USAGE;
	}
	if (quiet)
		prog.forced = false;
	prog.auto_tty = !quiet && !prog.forced && isatty(STDOUT_FILENO);
	prog.start_ns = now_ns();
	dst = argv[optind + 1];
	if (img_path_exists(dst)) {
		img_refuse_existing("convert", dst);
		return EXIT_FAIL;
	}

	ret = blk_open(argv[optind], &so, &src, err, sizeof(err));
	if (ret < 0) {
		img_fail("convert", argv[optind], ret, err);
		return EXIT_FAIL;
	}
	/* Ctrl-C ends the copy cleanly so the temporary file goes too. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	ret = convert_into(src, dst, &co, &prog);
	blk_close(src);
	return ret;
}

