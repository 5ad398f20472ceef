/*
** loop.h: the single-threaded event loop's wait: in libcurl's multi poll
** (http.c), for the next due time, a signal (SIGINT/SIGTERM stop, SIGHUP
** reload, SIGUSR1 "look at the outbox now": 'yizhan send' queued a
** message) or an HTTP transfer's progress.
**
** Signals arrive through a signalfd, so no handler and no global state is
** involved: they are blocked for normal delivery while the loop exists.
*/
#ifndef YZ_LOOP_H
#define YZ_LOOP_H

#include "http.h"

typedef struct yz_loop yz_loop;

/* Creates the loop waiting in 'http' (the host's, which must outlive it)
** and starts catching SIGINT, SIGTERM and SIGHUP. Returns NULL with err set
** on failure. */
yz_loop *yz_loop_new(yz_http *http, char *err, unsigned errlen);
/* Restores normal signal delivery and frees the loop; accepts NULL. */
void yz_loop_free(yz_loop *lp);
/* Waits up to timeout_ms (-1: forever) for a signal. Returns the signal
** number, 0 on timeout, or -1 on an error. */
int yz_loop_wait(yz_loop *lp, int timeout_ms);

#endif
