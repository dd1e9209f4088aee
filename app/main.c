/* SPDX-License-Identifier: MIT */
/* app/main.c - the `vivarium` command: dispatch to subcommands. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "log.h"

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} commands[] = {
	{ "run", cmd_run, "boot a VM from a kernel (and initrd) now, in this terminal" },
	{ "doctor", cmd_doctor, "check that this host can run VMs, and how fast" },
	{ "img", cmd_img, "create, inspect, check and convert disk images (raw, qcow2)" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: vivarium COMMAND [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\n'vivarium COMMAND --help' describes a command.\n");
}

int main(int argc, char **argv)
{
	log_init();
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("vivarium 0.1.0\n");
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "vivarium: unknown command '%s' (try 'vivarium --help')\n",
		argv[1]);
	return 2;
}
