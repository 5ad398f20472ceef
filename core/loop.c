/*
** loop.c: waiting for signals and timeouts (see loop.h).
*/
#define _GNU_SOURCE
#include "loop.h"

#include "http.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

struct yz_loop {
  yz_http *http;     /* the wait happens in libcurl's multi poll (the
                        host's handle, not owned) */
  int sfd;           /* signalfd for the caught signals */
  sigset_t caught;   /* SIGINT, SIGTERM, SIGHUP, SIGUSR1 */
  sigset_t previous; /* the mask before the loop, restored on free */
};

yz_loop *yz_loop_new(yz_http *http, char *err, unsigned errlen) {
  yz_loop *lp = calloc(1, sizeof *lp);
  if (!lp) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  sigemptyset(&lp->caught);
  sigaddset(&lp->caught, SIGINT);
  sigaddset(&lp->caught, SIGTERM);
  sigaddset(&lp->caught, SIGHUP);
  sigaddset(&lp->caught, SIGUSR1);
  if (sigprocmask(SIG_BLOCK, &lp->caught, &lp->previous) != 0) {
    snprintf(err, errlen, "cannot block signals: %s", strerror(errno));
    free(lp);
    return NULL;
  }
  lp->http = http;
  lp->sfd = signalfd(-1, &lp->caught, SFD_CLOEXEC | SFD_NONBLOCK);
  if (lp->sfd < 0) {
    snprintf(err, errlen, "signalfd: %s", strerror(errno));
    sigprocmask(SIG_SETMASK, &lp->previous, NULL);
    free(lp);
    return NULL;
  }
  return lp;
}

void yz_loop_free(yz_loop *lp) {
  if (!lp) return;
  close(lp->sfd);
  sigprocmask(SIG_SETMASK, &lp->previous, NULL);
  free(lp);
}

int yz_loop_wait(yz_loop *lp, int timeout_ms) {
  for (;;) {
    int n = yz_http_wait(lp->http, lp->sfd, timeout_ms);
    if (n < 0) return -1;
    if (n == 0) return 0;
    struct signalfd_siginfo si;
    ssize_t got = read(lp->sfd, &si, sizeof si);
    if (got == (ssize_t)sizeof si) return (int)si.ssi_signo;
    if (got < 0 && errno == EAGAIN) continue;
    return -1;
  }
}
