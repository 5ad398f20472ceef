/*
** sched.c: persistent jobs (see sched.h).
*/
#include "sched.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "yz.h"

#define MISSED_WALK_MAX 100000 /* occurrences walked to find the latest */

struct yz_sched {
  yz_store *store;    /* yz_jobs lives here */
  char *tz;           /* zone for specs */
  yz_job **jobs;      /* registered jobs */
  int njobs;          /* entries in jobs */
  int *index;         /* open-addressing hash of (plugin, name) -> jobs[i] */
  int nindex;         /* slots in index (a power of two), 0 when none */
  int64_t generation; /* marks rows registered since the last start */
};

static uint64_t key_hash(const char *plugin, const char *name) {
  uint64_t h = 1469598103934665603ULL;
  for (const char *p = plugin; *p; p++)
    h = (h ^ (unsigned char)*p) * 1099511628211ULL;
  h = (h ^ 0xff) * 1099511628211ULL;
  for (const char *p = name; *p; p++)
    h = (h ^ (unsigned char)*p) * 1099511628211ULL;
  return h;
}

/* Rebuilds the index for the current jobs, at most half full. */
static void reindex(yz_sched *s) {
  int want = 16;
  while (want < s->njobs * 2 + 2) want *= 2;
  if (want != s->nindex) {
    free(s->index);
    s->index = yz_xmalloc(sizeof *s->index * (size_t)want);
    s->nindex = want;
  }
  for (int i = 0; i < s->nindex; i++) s->index[i] = -1;
  for (int i = 0; i < s->njobs; i++) {
    size_t slot = key_hash(s->jobs[i]->plugin, s->jobs[i]->name) &
                  (size_t)(s->nindex - 1);
    while (s->index[slot] >= 0) slot = (slot + 1) & (size_t)(s->nindex - 1);
    s->index[slot] = i;
  }
}

yz_sched *yz_sched_new(yz_store *store, const char *tz) {
  yz_sched *s = yz_xcalloc(1, sizeof *s);
  s->store = store;
  s->tz = yz_strdup(tz);
  return s;
}

static void job_free(yz_job *j) {
  if (!j) return;
  free(j->plugin);
  free(j->name);
  yz_spec_free(j->spec);
  free(j);
}

void yz_sched_free(yz_sched *s) {
  if (!s) return;
  for (int i = 0; i < s->njobs; i++) job_free(s->jobs[i]);
  free(s->jobs);
  free(s->index);
  free(s->tz);
  free(s);
}

void yz_sched_set_tz(yz_sched *s, const char *tz) {
  free(s->tz);
  s->tz = yz_strdup(tz);
}

const char *yz_sched_tz(const yz_sched *s) {
  return s->tz;
}

static yz_value text(const char *t) {
  return (yz_value){.type = YZ_TEXT, .s = t, .n = strlen(t)};
}

static yz_value integer(int64_t i) {
  return (yz_value){.type = YZ_INT, .i = i};
}

static yz_value due_value(int64_t due) {
  return due == YZ_NEVER ? (yz_value){.type = YZ_NULL} : integer(due);
}

yz_job *yz_sched_find(yz_sched *s, const char *plugin, const char *name) {
  if (!s->nindex) return NULL;
  size_t slot = key_hash(plugin, name) & (size_t)(s->nindex - 1);
  for (; s->index[slot] >= 0; slot = (slot + 1) & (size_t)(s->nindex - 1)) {
    yz_job *j = s->jobs[s->index[slot]];
    if (strcmp(j->plugin, plugin) == 0 && strcmp(j->name, name) == 0) return j;
  }
  return NULL;
}

void yz_sched_new_generation(yz_sched *s, int64_t generation) {
  s->generation = generation;
}

static int64_t next_after(yz_sched *s, const yz_spec *spec, int64_t t) {
  int64_t next;
  return yz_spec_next(spec, s->tz, t, &next) == YZ_OK ? next : YZ_NEVER;
}

yz_job *yz_sched_register(yz_sched *s, void *owner, const char *plugin,
                          const char *name, yz_spec *spec, int64_t grace,
                          int fn_ref, int64_t now, char *err, size_t errlen) {
  /* What the database remembers of this job. */
  yz_stmt *st;
  int known = 0, same = 0, failures = 0;
  int64_t due = YZ_NEVER;
  if (yz_store_prepare(s->store, NULL,
                       "SELECT spec, next_due, failures FROM yz_jobs WHERE "
                       "plugin = ? AND name = ?",
                       &st) != YZ_OK) {
    yz_fmt(err, errlen, "%s", yz_store_errmsg(s->store));
    yz_spec_free(spec);
    return NULL;
  }
  yz_value k[2] = {text(plugin), text(name)};
  yz_stmt_bind(st, 1, &k[0]);
  yz_stmt_bind(st, 2, &k[1]);
  if (yz_stmt_step(st) == YZ_ROW) {
    yz_value v;
    known = 1;
    yz_stmt_column(st, 0, &v);
    same = v.type == YZ_TEXT && strcmp(v.s, yz_spec_text(spec)) == 0;
    yz_stmt_column(st, 1, &v);
    due = v.type == YZ_INT ? v.i : YZ_NEVER;
    yz_stmt_column(st, 2, &v);
    failures = v.type == YZ_INT ? (int)v.i : 0;
  }
  yz_stmt_release(st);
  /* A stored due time in the past is a run still owed (missed, or cut
  ** short by a crash): keep it. Otherwise recompute, for the calendar or
  ** the time zone may have changed though the spec's text did not. */
  if (!known || !same || due == YZ_NEVER || due > now)
    due = next_after(s, spec, now);
  char at[40];
  yz_clock_iso_utc(now * 1000, at, sizeof at);
  yz_value row[7] = {
      text(plugin),   text(name), text(yz_spec_text(spec)), due_value(due),
      integer(grace), text(at),   integer(s->generation)};
  if (yz_store_exec(s->store, NULL,
                    "INSERT INTO yz_jobs(plugin, name, spec, next_due, grace, "
                    "updated_at, seen) VALUES (?, ?, ?, ?, ?, ?, ?) ON "
                    "CONFLICT(plugin, name) DO UPDATE SET spec = excluded.spec,"
                    " next_due = excluded.next_due, grace = excluded.grace, "
                    "updated_at = excluded.updated_at, seen = excluded.seen",
                    row, 7) != YZ_OK) {
    yz_fmt(err, errlen, "%s", yz_store_errmsg(s->store));
    yz_spec_free(spec);
    return NULL;
  }
  yz_job *j = yz_sched_find(s, plugin, name);
  if (j) { /* registered twice in one start: the later one wins */
    yz_spec_free(j->spec);
  } else {
    j = yz_xcalloc(1, sizeof *j);
    j->plugin = yz_strdup(plugin);
    j->name = yz_strdup(name);
    s->jobs = yz_xrealloc(s->jobs, sizeof *s->jobs * (size_t)(s->njobs + 1));
    s->jobs[s->njobs++] = j;
    if (s->njobs * 2 + 2 > s->nindex) {
      reindex(s);
    } else {
      size_t slot = key_hash(plugin, name) & (size_t)(s->nindex - 1);
      while (s->index[slot] >= 0) slot = (slot + 1) & (size_t)(s->nindex - 1);
      s->index[slot] = s->njobs - 1;
    }
  }
  j->spec = spec;
  j->next_due = due;
  j->grace = grace;
  j->fn_ref = fn_ref;
  j->owner = owner;
  j->failures = failures;
  return j;
}

static void remove_at(yz_sched *s, int i) {
  job_free(s->jobs[i]);
  s->jobs[i] = s->jobs[--s->njobs];
  reindex(s);
}

int yz_sched_cancel(yz_sched *s, const char *plugin, const char *name) {
  yz_value k[2] = {text(plugin), text(name)};
  yz_store_exec(s->store, NULL,
                "DELETE FROM yz_jobs WHERE plugin = ? AND name = ?", k, 2);
  for (int i = 0; i < s->njobs; i++)
    if (strcmp(s->jobs[i]->plugin, plugin) == 0 &&
        strcmp(s->jobs[i]->name, name) == 0) {
      yz_job *j = s->jobs[i];
      int ref = j->fn_ref;
      if (j->running) {
        /* Its task still points at it: take it out of the schedule now and
        ** free it when the run ends (yz_sched_release). */
        j->cancelled = 1;
        s->jobs[i] = s->jobs[--s->njobs];
        reindex(s);
      } else {
        remove_at(s, i);
      }
      return ref;
    }
  return -1;
}

void yz_sched_forget(yz_sched *s, void *owner) {
  int kept = 0;
  for (int i = 0; i < s->njobs; i++)
    if (s->jobs[i]->owner == owner)
      job_free(s->jobs[i]);
    else
      s->jobs[kept++] = s->jobs[i];
  if (kept != s->njobs) {
    s->njobs = kept;
    reindex(s);
  }
}

int yz_sched_prune(yz_sched *s, const char *plugin) {
  /* Rows registered in this generation were marked by the upsert. */
  yz_value v[2] = {text(plugin), integer(s->generation)};
  if (yz_store_exec(s->store, NULL,
                    "DELETE FROM yz_jobs WHERE plugin = ? AND seen IS NOT ?", v,
                    2) != YZ_OK)
    return 0;
  return yz_store_changes(s->store);
}

int yz_sched_due(yz_sched *s, int64_t now, int *cursor, yz_job **job,
                 int64_t *scheduled) {
  for (int i = *cursor; i < s->njobs; i++) {
    *cursor = i + 1;
    yz_job *j = s->jobs[i];
    if (j->running || j->next_due == YZ_NEVER || j->next_due > now) continue;
    /* The latest occurrence not after now: one run stands for all missed. */
    int64_t t = j->next_due, n;
    for (int k = 0; k < MISSED_WALK_MAX; k++) {
      if (yz_spec_next(j->spec, s->tz, t, &n) != YZ_OK || n > now) break;
      t = n;
    }
    *job = j;
    *scheduled = t;
    return now - t > j->grace ? YZ_DUE_SKIP : YZ_DUE_RUN;
  }
  return YZ_DUE_NONE;
}

void yz_sched_started(yz_sched *s, yz_job *job, int64_t scheduled) {
  job->running = 1;
  yz_value v[3] = {integer(scheduled), text(job->plugin), text(job->name)};
  yz_store_exec(s->store, NULL,
                "UPDATE yz_jobs SET last_status = 'running', running_for = ? "
                "WHERE plugin = ? AND name = ?",
                v, 3);
}

static void record(yz_sched *s, yz_job *job, int64_t scheduled,
                   const char *status, const char *err, int64_t now) {
  int64_t from = scheduled > now ? scheduled : now;
  job->next_due = next_after(s, job->spec, from);
  char at[40];
  yz_clock_iso_utc(now * 1000, at, sizeof at);
  yz_value v[8] = {integer(scheduled),
                   text(status),
                   err ? text(err) : (yz_value){.type = YZ_NULL},
                   integer(job->failures),
                   due_value(job->next_due),
                   text(at),
                   text(job->plugin),
                   text(job->name)};
  yz_store_exec(s->store, NULL,
                "UPDATE yz_jobs SET last_fired = ?, last_status = ?, "
                "last_error = ?, failures = ?, next_due = ?, updated_at = ?, "
                "running_for = NULL WHERE plugin = ? AND name = ?",
                v, 8);
}

void yz_sched_release(yz_job *job) {
  if (job && job->cancelled) job_free(job);
}

void yz_sched_finished(yz_sched *s, yz_job *job, int64_t scheduled, int ok,
                       const char *err, int64_t now) {
  if (job->cancelled) { /* its row is gone already */
    job_free(job);
    return;
  }
  job->running = 0;
  job->failures = ok ? 0 : job->failures + 1;
  record(s, job, scheduled, ok ? "ok" : "failed", ok ? NULL : err, now);
}

void yz_sched_skipped(yz_sched *s, yz_job *job, int64_t scheduled,
                      int64_t now) {
  record(s, job, scheduled, "skipped",
         "missed while the host was down, past its grace window", now);
}

int64_t yz_sched_next_wake(const yz_sched *s) {
  int64_t w = YZ_NEVER;
  for (int i = 0; i < s->njobs; i++)
    if (!s->jobs[i]->running && s->jobs[i]->next_due < w)
      w = s->jobs[i]->next_due;
  return w;
}

int yz_sched_jobs(const yz_sched *s, yz_job ***out) {
  *out = s->jobs;
  return s->njobs;
}
