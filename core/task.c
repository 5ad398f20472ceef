/*
** task.c: coroutine tasks (see task.h).
*/
#include "task.h"

#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "sandbox.h"
#include "sched.h"

#define ERR_MAX 8192

typedef struct spawn_args {
  yz_task *t;         /* the task being made */
  int fn_ref;         /* the function */
  yz_task_args args;  /* pushes its arguments, or NULL */
  void *args_ud;      /* their data */
  const yz_job *job;  /* for a job: the run table's contents */
  const char *period; /* its period */
  const char *spec;   /* its spec */
} spawn_args;

/* Makes the coroutine with the function (and the run table) on it, in the
** plugin's main thread under protection: the state may be at its cap. */
static int spawn_protected(lua_State *L) {
  spawn_args *a = lua_touserdata(L, 1);
  lua_State *co = lua_newthread(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, a->fn_ref);
  if (!lua_isfunction(L, -1)) return luaL_error(L, "no function to run");
  if (a->job) {
    lua_createtable(L, 0, 5);
    lua_pushstring(L, a->job->name);
    lua_setfield(L, -2, "job");
    lua_pushstring(L, a->job->plugin);
    lua_setfield(L, -2, "plugin");
    lua_pushstring(L, a->spec);
    lua_setfield(L, -2, "spec");
    lua_pushinteger(L, a->t->scheduled);
    lua_setfield(L, -2, "scheduled");
    lua_pushstring(L, a->period);
    lua_setfield(L, -2, "period");
    a->t->nargs = 1;
  } else if (a->args) {
    a->t->nargs = a->args(L, a->args_ud);
  }
  lua_xmove(L, co, 1 + a->t->nargs); /* the function and its arguments */
  lua_pushvalue(L, -1);              /* the thread */
  a->t->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  a->t->co = co;
  return 0;
}

static yz_task *spawn(yz_host *h, yz_plugin *p, spawn_args *a, char *err,
                      size_t errlen) {
  if (!p->sb || p->state != YZ_PS_OK) {
    yz_fmt(err, errlen, "plugin '%s' is %s", p->name,
           yz_plugin_state_name(p->state));
    free(a->t->job_name);
    free(a->t);
    return NULL;
  }
  lua_State *L = p->sb->L;
  lua_pushcfunction(L, spawn_protected);
  lua_pushlightuserdata(L, a);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    yz_fmt(err, errlen, "cannot start %s: %s", a->t->what,
           lua_tostring(L, -1) ? lua_tostring(L, -1) : "out of memory");
    lua_pop(L, 1);
    free(a->t->job_name);
    free(a->t);
    return NULL;
  }
  yz_task *t = a->t;
  t->p = p;
  /* Oldest first: tasks started together (messages claimed in order)
  ** resume in that order. */
  t->prev = h->tasks_tail;
  t->next = NULL;
  if (h->tasks_tail)
    h->tasks_tail->next = t;
  else
    h->tasks = t;
  h->tasks_tail = t;
  return t;
}

yz_task *yz_task_for_job(yz_host *h, yz_job *job, int64_t scheduled,
                         yz_task_done done, char *err, size_t errlen) {
  yz_task *t = yz_xcalloc(1, sizeof *t);
  yz_fmt(t->what, sizeof t->what, "job %s", job->name);
  t->job = job;
  t->scheduled = scheduled;
  t->done = done;
  char period[40];
  yz_spec_period(job->spec, yz_sched_tz(h->sched), scheduled, period,
                 sizeof period);
  t->job_name = yz_strdup(job->name);
  spawn_args a = {
      t, job->fn_ref, NULL, NULL, job, period, yz_spec_text(job->spec)};
  return spawn(h, job->owner, &a, err, errlen);
}

yz_task *yz_task_for_ref(yz_host *h, yz_plugin *p, int fn_ref, int64_t wake_ms,
                         const char *what, char *err, size_t errlen) {
  yz_task *t = yz_xcalloc(1, sizeof *t);
  yz_fmt(t->what, sizeof t->what, "%s", what);
  t->wake_ms = wake_ms;
  t->job_name = h->current && h->current->job_name
                    ? yz_strdup(h->current->job_name)
                    : NULL;
  spawn_args a = {t, fn_ref, NULL, NULL, NULL, NULL, NULL};
  return spawn(h, p, &a, err, errlen);
}

yz_task *yz_task_for_call(yz_host *h, yz_plugin *p, int fn_ref,
                          yz_task_args args, void *ud, const char *what,
                          yz_task_done done, char *err, size_t errlen) {
  yz_task *t = yz_xcalloc(1, sizeof *t);
  yz_fmt(t->what, sizeof t->what, "%s", what);
  t->ud = ud;
  t->done = done;
  spawn_args a = {t, fn_ref, args, ud, NULL, NULL, NULL};
  return spawn(h, p, &a, err, errlen);
}

void yz_task_wake(yz_task *t, int64_t now_ms) {
  t->wait = NULL;
  t->wake_ms = now_ms;
}

static void unlink_task(yz_host *h, yz_task *t) {
  if (t->prev)
    t->prev->next = t->next;
  else
    h->tasks = t->next;
  if (t->next)
    t->next->prev = t->prev;
  else
    h->tasks_tail = t->prev;
  t->next = t->prev = NULL;
}

static void finish(yz_host *h, yz_task *t, int ok, const char *err) {
  lua_State *L = t->p->sb->L;
  unlink_task(h, t);
  /* A wait left behind (it cannot normally be) must not outlive the task. */
  if (t->wait && t->unwait) t->unwait(h, t);
  if (t->p->state == YZ_PS_QUARANTINED) {
    /* Already out: its recorded error stays the one that put it there. */
  } else if (t->tolerant && !ok) {
    yz_logf(&h->log, YZ_LOG_WARN, t->p->name, "%s failed: %s", t->what, err);
  } else {
    yz_plugin_outcome(t->p, t->what, ok ? NULL : err);
  }
  if (t->done) t->done(h, t, ok, err); /* results still on t->co */
  lua_settop(t->co, 0);
  luaL_unref(L, LUA_REGISTRYINDEX, t->co_ref);
  free(t->job_name);
  free(t);
}

/* Resumes one task once. */
static void resume(yz_host *h, yz_task *t, int64_t now_ms) {
  lua_State *co = t->co;
  char err[ERR_MAX];
  int nres = 0;
  int nargs = t->started ? 0 : t->nargs;
  t->started = 1;
  if (t->p->state == YZ_PS_QUARANTINED) {
    if (t->drop) t->drop(h, t);
    t->done = NULL;
    finish(h, t, 0, "the plugin is quarantined");
    return;
  }
  if (t->push) {
    nargs = t->push(co, t);
    t->push = NULL;
  }
  /* Each slice is its own transaction: one commit for the slice's writes,
  ** and a statement that makes SQLite roll back everything (an interrupted
  ** write, OR ROLLBACK) undoes this plugin's slice, nobody else's. */
  yz_store *store = h->store;
  int tx = yz_store_tx_begin_lazy(store) == YZ_OK;
  yz_task *outer = h->current;
  h->current = t;
  int rc =
      yz_sandbox_resume(t->p->sb, co, nargs, &t->steps, &nres, err, sizeof err);
  h->current = outer;
  if (tx && yz_store_tx_lost(store)) {
    tx = 0;
    yz_logf(&h->log, YZ_LOG_WARN, t->p->name,
            "%s: a statement rolled back the transaction; this slice's "
            "writes are undone",
            t->what);
  }
  if (rc == LUA_OK) {
    finish(h, t, 1, NULL);
  } else if (rc == LUA_YIELD) {
    double secs = 0;
    if (nres == 2 && lua_touserdata(co, -2) == yz_task_sleep_mark())
      secs = lua_tonumber(co, -1);
    int waits = nres == 1 && lua_touserdata(co, -1) == yz_task_wait_mark();
    lua_pop(co, nres);
    if (waits) {
      /* Parked until yz_task_wake (which may have run already). */
      if (t->wait) t->wake_ms = INT64_MAX;
      goto commit;
    }
    if (!(secs < 1e9)) secs = 1e9; /* about 31 years: "for ever", safely */
    t->wake_ms = now_ms + (int64_t)(secs * 1000);
  } else {
    finish(h, t, 0, err);
  }
commit:
  if (tx && yz_store_tx_commit(store) != YZ_OK) {
    yz_logf(&h->log, YZ_LOG_ERROR, NULL, "cannot commit a slice: %s",
            yz_store_errmsg(store));
    yz_store_tx_rollback(store);
  }
}

int64_t yz_tasks_run(yz_host *h, int64_t now_ms) {
  /* Take the ready ones first: a task started meanwhile waits its turn. */
  int n = 0;
  for (yz_task *t = h->tasks; t; t = t->next) n += t->wake_ms <= now_ms;
  yz_task **ready = yz_xcalloc((size_t)n + 1, sizeof *ready);
  n = 0;
  for (yz_task *t = h->tasks; t; t = t->next)
    if (t->wake_ms <= now_ms) ready[n++] = t;
  /* Each ready task is resumed once; only its own resume can end it (a
  ** plugin is unloaded between turns, never during one). */
  for (int i = 0; i < n; i++) resume(h, ready[i], now_ms);
  free(ready);
  int64_t wait = -1;
  for (yz_task *t = h->tasks; t; t = t->next) {
    if (t->wake_ms == INT64_MAX) continue; /* waits for an outside event */
    int64_t w = t->wake_ms > now_ms ? t->wake_ms - now_ms : 0;
    if (wait < 0 || w < wait) wait = w;
  }
  return wait;
}

/* Frees a task that will not run again, telling its drop hook. */
static void discard(yz_host *h, yz_task *t) {
  unlink_task(h, t);
  if (t->job) {
    t->job->running = 0;
    yz_sched_release(t->job); /* if it was cancelled meanwhile */
  }
  if (t->drop) t->drop(h, t);
  if (t->wait && t->unwait) t->unwait(h, t);
  free(t->job_name);
  free(t);
}

void yz_task_abort(yz_host *h, yz_task *t) {
  if (t->p->sb) luaL_unref(t->p->sb->L, LUA_REGISTRYINDEX, t->co_ref);
  discard(h, t);
}

void yz_tasks_drop(yz_host *h, yz_plugin *p) {
  yz_task *t = h->tasks;
  while (t) {
    yz_task *next = t->next;
    if (t->p == p) discard(h, t);
    t = next;
  }
}

int yz_tasks_count(const yz_host *h) {
  int n = 0;
  for (const yz_task *t = h->tasks; t; t = t->next) n++;
  return n;
}

/* Their addresses mark a yield as host.sleep's, or as a wait. */
static const char sleep_mark = 0, wait_mark = 0;

const void *yz_task_sleep_mark(void) {
  return &sleep_mark;
}

const void *yz_task_wait_mark(void) {
  return &wait_mark;
}
