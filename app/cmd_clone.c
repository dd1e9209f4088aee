/* SPDX-License-Identifier: MIT */
/*
 * app/cmd_clone.c - `vivarium clone NAME NEW [--snapshot TAG] [--linked]`
 * (app/clonelib.h).  Every refusal is one line and changes nothing; Ctrl-C
 * during the copies ends the clone and leaves nothing behind.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "clonelib.h"
#include "commands.h"
#include "vmlib.h"

#define ERR(...) (fprintf(stderr, "vivarium: " __VA_ARGS__), fputc('\n', stderr))

static volatile sig_atomic_t clone_stop;

static void on_signal(int signo)
{
	clone_stop = signo;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vivarium clone NAME NEW [--snapshot TAG] [--linked]\n\n"
		"Makes VM NEW from VM NAME: the same settings, a new UUID and new MAC\n"
		"addresses, no snapshots.\n"
		"  (default)       a full copy of NAME's current state (NAME stopped):\n"
		"                  every disk copied as a standalone image\n"
		"  --snapshot TAG  a full copy of NAME's snapshot TAG (NAME may run); a\n"
		"                  snapshot with memory: NEW resumes it at its first start\n"
		"  --linked        with --snapshot: NEW's disks are overlays on the\n"
		"                  snapshot's images, which stay NAME's (its snapshot TAG\n"
		"                  and NAME itself cannot be deleted while NEW uses them)\n"
		"Files vm.conf names outside NAME's folder (ISO images, kernels, shared\n"
		"read-only disks) are named where they are.\n");
}

/* "    (42.00/100%)" on a terminal, as `img convert -p` prints it. */
static void show_progress(void *opaque, uint64_t done, uint64_t total)
{
	double *last = opaque, pct = total ? 100.0 * (double)done / (double)total : 100.0;

	if (pct - *last < 1.0 && pct < 100.0)
		return;
	printf("    (%3.2f/100%%)\r", pct);
	fflush(stdout);
	*last = pct;
}

int cmd_clone(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "snapshot", required_argument, NULL, 's' },
		{ "linked", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct sigaction sa = { .sa_handler = on_signal };
	struct clone_opts o = { .stop = &clone_stop };
	struct clone_result res;
	g_autofree char *dir = NULL;
	double last = -1.0;
	const char *src, *dst;
	char err[1024];
	int opt, r;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 's': o.snapshot = optarg; break;
		case 'l': o.linked = true; break;
		case 'h': usage(stdout); return 0;
		default:
			ERR("clone: unknown option or missing value '%s' (see 'vivarium clone --help')",
			    argv[optind - 1]);
			return 2;
		}
	}
	if (argc - optind != 2) {
		ERR("clone takes a VM's NAME and the NEW one's (see 'vivarium clone --help')");
		return 2;
	}
	src = argv[optind];
	dst = argv[optind + 1];
	if (isatty(STDOUT_FILENO)) {
		o.progress = show_progress;
		o.opaque = &last;
	}
	/* A signal ends the copies cleanly: the half-made clone goes too. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	r = vm_clone(src, dst, &o, &res, err, sizeof(err));
	if (last >= 0)
		printf("\n");		/* ends the progress line */
	if (r < 0) {
		ERR("%s", err);
		return clone_stop ? 128 + clone_stop : 1;
	}
	dir = vmlib_vm_dir(dst);
	if (!o.snapshot)
		printf("cloned VM '%s' as '%s' (a full copy of its current state) in %s\n",
		       src, dst, dir);
	else
		printf("cloned snapshot '%s' of VM '%s' as '%s' (%s) in %s%s\n", o.snapshot, src,
		       dst, o.linked ? "linked: its disks are overlays on the snapshot's images"
		       : "a full copy", dir,
		       res.saved ? "; it resumes the snapshot at its first start" : "");
	if (res.memory_dropped_shares)
		printf("snapshot '%s' holds the memory of a running VM with other shared folders than "
		       "'%s' has now (see 'vivarium share list %s'): it boots from the snapshot's disks\n",
		       o.snapshot, dst, dst);
	else if (res.memory_dropped)
		printf("snapshot '%s' holds the memory of a running VM, which '%s' does not get "
		       "(its network cards have new MAC addresses): it boots from the snapshot's disks\n",
		       o.snapshot, dst);
	return 0;
}
