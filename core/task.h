/*
** task.h: every entry into a plugin that may wait (a job, a timer) runs as
** its own coroutine, a task. The event loop resumes ready tasks one slice
** at a time: host.sleep(seconds) parks a task until then, and a task that
** runs past its slice is pre-empted and resumed on the next turn, so one
** busy plugin does not hold up another's work. A task's CPU budget spans
** all of its slices.
*/
#ifndef YZ_TASK_H
#define YZ_TASK_H

#include <stddef.h>
#include <stdint.h>

struct yz_host;
struct yz_plugin;
struct yz_job;
struct lua_State;

typedef struct yz_task yz_task;

/* Called when a task ends: ok, or the error with its traceback. */
typedef void (*yz_task_done)(struct yz_host *h, yz_task *t, int ok,
                             const char *err);

struct yz_task {
  struct yz_plugin *p; /* whose state it runs in */
  void *co;            /* its coroutine (a lua_State) */
  int co_ref;          /* registry reference keeping the coroutine */
  int nargs;           /* arguments waiting for the first resume */
  int started;         /* resumed at least once */
  int64_t wake_ms;     /* not before this clock time (ms) */
  long long steps;     /* CPU budget spent so far */
  char what[160];      /* for messages: "job monthly", "timer" */
  yz_task_done done;   /* outcome callback, or NULL */
  struct yz_job *job;  /* the job it runs, or NULL */
  int64_t scheduled;   /* the job's scheduled time (s) */
  char *job_name;      /* the job it serves (for messages it sends), or NULL */
  void *ud;            /* the starter's data (a channel's message, ...) */
  /* Pushes the values the next resume passes in (a completed wait's
  ** results); returns their count. Cleared once used. */
  int (*push)(struct lua_State *co, yz_task *t);
  void *wait; /* what a waiting task waits for, or NULL */
  /* Called when the task is dropped without finishing (its plugin is
  ** unloaded): frees ud and cancels 'wait'. */
  void (*drop)(struct yz_host *h, yz_task *t);
  /* Cancels what it waits for, if anything (set with 'wait'). */
  void (*unwait)(struct yz_host *h, yz_task *t);
  int tolerant;        /* its errors are logged, not counted toward
                          quarantine (a channel's send) */
  int64_t deadline_ms; /* dropped if still running then (0: none) */
  yz_task *next;       /* the host's list, in order of creation */
  yz_task *prev;
};

/* Pushes a new task's arguments onto L (the plugin's main state, under
** protection); returns their count. */
typedef int (*yz_task_args)(struct lua_State *L, void *ud);

/* Starts a job's run: its function gets a run table (job, plugin, spec,
** scheduled, period). Returns the task, or NULL with err set. */
yz_task *yz_task_for_job(struct yz_host *h, struct yz_job *job,
                         int64_t scheduled, yz_task_done done, char *err,
                         size_t errlen);
/* Starts the function under registry reference fn_ref of p (no
** arguments) at wake_ms. Returns the task, or NULL with err set. */
yz_task *yz_task_for_ref(struct yz_host *h, struct yz_plugin *p, int fn_ref,
                         int64_t wake_ms, const char *what, char *err,
                         size_t errlen);
/* Starts the function under registry reference fn_ref of p with the
** arguments 'args' pushes, now. 'ud' is kept in the task; 'done' is told
** of the outcome with the function's results still on the coroutine
** (t->co). Returns the task, or NULL with err set (ud untouched). */
yz_task *yz_task_for_call(struct yz_host *h, struct yz_plugin *p, int fn_ref,
                          yz_task_args args, void *ud, const char *what,
                          yz_task_done done, char *err, size_t errlen);
/* Makes a waiting task ready: its next resume passes what push pushes. */
void yz_task_wake(yz_task *t, int64_t now_ms);
/* Resumes every task whose time has come, once. Returns the ms until the
** next task wants to run (0: one is ready now), or -1 when none waits. */
int64_t yz_tasks_run(struct yz_host *h, int64_t now_ms);
/* Ends a task now without running it further (its deadline passed):
** its drop hook runs, as for a plugin being unloaded. */
void yz_task_abort(struct yz_host *h, yz_task *t);
/* Drops the tasks of a plugin being unloaded (without running them). */
void yz_tasks_drop(struct yz_host *h, struct yz_plugin *p);
/* What host.sleep yields first (a light userdata), then the seconds. */
const void *yz_task_sleep_mark(void);
/* What a function yields when it waits for an outside event (an HTTP
** answer): the task sleeps until yz_task_wake. */
const void *yz_task_wait_mark(void);
/* How many tasks exist. */
int yz_tasks_count(const struct yz_host *h);

#endif
