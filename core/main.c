/*
** main.c: the 'yizhan' executable; everything happens in cli.c.
*/
#include "cli.h"

int main(int argc, char **argv) {
  return yz_cli_main(argc, argv);
}
