/*
** cli.h: the command line of the 'yizhan' executable.
*/
#ifndef YZ_CLI_H
#define YZ_CLI_H

/* Runs the command in argv and returns the process exit status. */
int yz_cli_main(int argc, char **argv);

#endif
