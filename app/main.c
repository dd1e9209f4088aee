/* SPDX-License-Identifier: MIT */
/* app/main.c - the `vivarium` command: dispatch to subcommands. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <glib.h>

#include "commands.h"
#include "log.h"
#include "usb_keeper.h"
#include "vmproc.h"

static int cmd_manager(int argc, char **argv);

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} commands[] = {
	{ "run", cmd_run, "boot a VM from a kernel (and initrd) now, in this terminal" },
	{ "doctor", cmd_doctor, "check that this host can run VMs, and how fast" },
	{ "img", cmd_img, "create, inspect, check and convert disk images (raw, qcow2)" },
	{ "create", cmd_create, "add a VM to the library" },
	{ "list", cmd_list, "list the library's VMs and their state" },
	{ "show", cmd_show, "show a VM's settings and state" },
	{ "edit", cmd_edit, "change a VM's settings (KEY=VALUE...)" },
	{ "delete", cmd_delete, "remove a VM and its disk images" },
	{ "clone", cmd_clone, "copy a VM, or one of its snapshots (--linked: sharing its images)" },
	{ "start", cmd_start, "start a VM in the background" },
	{ "stop", cmd_stop, "shut a VM down (ACPI power button; --force pulls the plug)" },
	{ "pause", cmd_pause, "pause a running VM" },
	{ "resume", cmd_resume, "resume a paused VM" },
	{ "reset", cmd_reset, "reset a running VM" },
	{ "status", cmd_status, "a VM's run state" },
	{ "console", cmd_console, "attach this terminal to a VM's serial console" },
	{ "screenshot", cmd_screenshot, "save a VM's screen as PNG" },
	{ "resize", cmd_resize, "offer a running VM's guest a screen size (vga=virtio)" },
	{ "mute", cmd_mute, "mute or unmute a running VM's sound card (audio=pa or none)" },
	{ "clipboard", cmd_clipboard, "read or set a running VM's clipboard (guest agent)" },
	{ "save", cmd_save, "save a running VM's state and stop it; start resumes it" },
	{ "discard", cmd_discard, "drop a VM's saved state" },
	{ "snapshot", cmd_snapshot, "take, list, revert and delete a VM's snapshots" },
	{ "additions", cmd_additions, "insert the guest additions CD into a VM's drive" },
	{ "share", cmd_share, "add, list and remove a VM's shared folders (host folders over 9p)" },
	{ "usb", cmd_usb, "list the host's USB devices; attach, detach and list a running VM's" },
	{ "manager", cmd_manager, "open the VM manager window (vivarium-manager)" },
};

/* `vivarium manager [ARGS...]`: the GTK manager, from beside this program
 * (installed, or gui/ in the build tree), else from $PATH. */
static int cmd_manager(int argc, char **argv)
{
	g_autofree char *exe = vm_exe_beside("vivarium-manager", "gui");

	argv[0] = (char *)"vivarium-manager";
	if (exe)
		execv(exe, argv);
	else
		execvp("vivarium-manager", argv);
	fprintf(stderr, "vivarium: cannot run vivarium-manager: %s\n", strerror(errno));
	return 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: vivarium COMMAND [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\n'vivarium COMMAND --help' describes a command.\n");
}

/*
 * Open files up to the hard limit (at most 65536): a VM's shared folders
 * hold an fd per guest fid (up to 4096 each), beside its disks, sockets and
 * eventfds, and 1024 (the usual soft limit) would let a guest's fids
 * starve the VMM's own opens.  Code that select()s keeps higher fds out
 * (display_vnc.c).
 */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max < 65536 ? rl.rlim_max : 65536;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	log_init();
	raise_nofile();
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
		printf("vivarium " VIVARIUM_VERSION "\n");
		return 0;
	}
	/* Hidden: the process of one running VM, started by `start`. */
	if (!strcmp(argv[1], "vm-process"))
		return cmd_vm_process(argc - 1, argv + 1);
	/* Hidden: a VM process's USB keeper (usb_keeper.h). */
	if (!strcmp(argv[1], "usb-keeper"))
		return cmd_usb_keeper(argc - 1, argv + 1);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "vivarium: unknown command '%s' (try 'vivarium --help')\n",
		argv[1]);
	return 2;
}
