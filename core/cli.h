/*
** cli.h: the command line of the 'yizhan' executable.
*/
#ifndef YZ_CLI_H
#define YZ_CLI_H

/* Runs the command in argv and returns the process exit status. */
int yz_cli_main(int argc, char **argv);
/* Whether word is a built-in command (plugins may not add one by that
** name). */
int yz_cli_is_builtin(const char *word);

#endif
