/* SPDX-License-Identifier: MIT */
/* app/commands.h - the `vivarium` subcommands.  Each takes the arguments
 * after its name (argv[0] is the subcommand) and returns the exit status. */
#ifndef VIVARIUM_COMMANDS_H
#define VIVARIUM_COMMANDS_H

#include <json-glib/json-glib.h>

#include "share.h"

int cmd_run(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_img(int argc, char **argv);
/* The VM library (cmd_vm.c) and running VMs (cmd_ctl.c, vm_process.c). */
int cmd_create(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_edit(int argc, char **argv);
int cmd_delete(int argc, char **argv);
int cmd_clone(int argc, char **argv);	/* cmd_clone.c */
int cmd_start(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_pause(int argc, char **argv);
int cmd_resume(int argc, char **argv);
int cmd_reset(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_screenshot(int argc, char **argv);
int cmd_resize(int argc, char **argv);
int cmd_mute(int argc, char **argv);
int cmd_clipboard(int argc, char **argv);
int cmd_console(int argc, char **argv);
int cmd_save(int argc, char **argv);
int cmd_discard(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_additions(int argc, char **argv);	/* cmd_additions.c */
int cmd_share(int argc, char **argv);	/* cmd_share.c */
int cmd_usb(int argc, char **argv);	/* cmd_usb.c */
int cmd_vm_process(int argc, char **argv);

/* @n shares as `share list --json` and `show --json` print them: an array
 * of {tag, path, readonly, guest_path} (cmd_share.c). */
void share_list_json(JsonBuilder *b, const struct share_spec *s, unsigned n);

#endif
