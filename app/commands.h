/* SPDX-License-Identifier: MIT */
/* app/commands.h - the `vivarium` subcommands.  Each takes the arguments
 * after its name (argv[0] is the subcommand) and returns the exit status. */
#ifndef VIVARIUM_COMMANDS_H
#define VIVARIUM_COMMANDS_H

int cmd_run(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_img(int argc, char **argv);

#endif
