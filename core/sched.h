/*
** sched.h: persistent jobs. A job is (plugin, name, spec); its next due
** time, last run and failure count live in yz_jobs, so a schedule survives
** restarts. The scheduler decides what is due and records outcomes; running
** the job's function is the caller's business (task.c).
**
** Misfires: a job found overdue (the host was down) fires once for its
** latest missed occurrence if that is within the job's grace window,
** otherwise that run is skipped and logged; never a burst of every missed
** run. A run is recorded as 'running' when it starts and its next due time
** moves only when it ends, so a crash mid-run repeats it (at least once;
** sends are idempotent by key) instead of losing it.
*/
#ifndef YZ_SCHED_H
#define YZ_SCHED_H

#include <stdint.h>

#include "spec.h"
#include "store.h"

#define YZ_NEVER INT64_MAX /* next_due of a job that will not fire again */

typedef struct yz_job {
  char *plugin;     /* owner plugin name */
  char *name;       /* unique within the plugin */
  yz_spec *spec;    /* when it fires (owned) */
  int64_t next_due; /* seconds since the epoch, or YZ_NEVER */
  int64_t grace;    /* how late a missed run may still fire, seconds */
  int fn_ref;       /* the owner's registry reference to the function */
  void *owner;      /* the plugin */
  int running;      /* a run is in progress */
  int cancelled;    /* cancelled while running: freed when the run ends */
  int failures;     /* consecutive failed runs */
} yz_job;

typedef struct yz_sched yz_sched;

yz_sched *yz_sched_new(yz_store *store, const char *tz);
/* Frees the scheduler and its jobs (not the rows); accepts NULL. */
void yz_sched_free(yz_sched *s);
/* The zone specs are evaluated in (after a reload). */
void yz_sched_set_tz(yz_sched *s, const char *tz);
const char *yz_sched_tz(const yz_sched *s);

/* Registers a job, or updates one registered before under the same name:
** the persisted next due time is kept when the spec is unchanged, else
** computed afresh from 'now'. Takes ownership of 'spec'. Returns the job,
** or NULL with err set. */
yz_job *yz_sched_register(yz_sched *s, void *owner, const char *plugin,
                          const char *name, yz_spec *spec, int64_t grace,
                          int fn_ref, int64_t now, char *err, size_t errlen);
/* The registered job (plugin, name), or NULL. */
yz_job *yz_sched_find(yz_sched *s, const char *plugin, const char *name);
/* Starts a generation (at every host start): jobs registered from now on
** are marked with it, and yz_sched_prune drops the rows without the mark. */
void yz_sched_new_generation(yz_sched *s, int64_t generation);
/* Removes a job from memory and the database; returns its function
** reference (for the caller to release) or -1 when there was none. */
int yz_sched_cancel(yz_sched *s, const char *plugin, const char *name);
/* Frees a job cancelled while it ran, once its run is over or dropped. */
void yz_sched_release(yz_job *job);
/* Forgets the in-memory jobs of an owner being unloaded (rows stay). */
void yz_sched_forget(yz_sched *s, void *owner);
/* Deletes the rows of 'plugin' whose jobs were not registered again;
** returns how many. */
int yz_sched_prune(yz_sched *s, const char *plugin);

enum { YZ_DUE_NONE = 0, YZ_DUE_RUN, YZ_DUE_SKIP };
/* Finds the next job due at 'now' that is not running, scanning from
** *cursor (start at 0; it advances, so one pass over the jobs serves a
** whole turn). YZ_DUE_RUN: run it for *scheduled (its latest occurrence not
** after now). YZ_DUE_SKIP: that occurrence is past the grace window; the
** caller logs it and calls yz_sched_skipped. */
int yz_sched_due(yz_sched *s, int64_t now, int *cursor, yz_job **job,
                 int64_t *scheduled);
void yz_sched_started(yz_sched *s, yz_job *job, int64_t scheduled);
/* Records the outcome; the next due time is the first occurrence after both
** the scheduled time and 'now' (a run that overran skips, not bursts). */
void yz_sched_finished(yz_sched *s, yz_job *job, int64_t scheduled, int ok,
                       const char *err, int64_t now);
void yz_sched_skipped(yz_sched *s, yz_job *job, int64_t scheduled, int64_t now);
/* The earliest next due time of the jobs not running, or YZ_NEVER. */
int64_t yz_sched_next_wake(const yz_sched *s);
/* The jobs, for listing. */
int yz_sched_jobs(const yz_sched *s, yz_job ***out);

#endif
