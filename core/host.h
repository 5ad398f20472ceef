/*
** host.h: one yizhan data directory brought to life: its configuration, its
** database, its log and clock, and its plugins. The CLI commands and the
** daemon all start from a yz_host.
*/
#ifndef YZ_HOST_H
#define YZ_HOST_H

#include "bus.h"
#include "clock.h"
#include "config.h"
#include "http.h"
#include "outbox.h"
#include "log.h"
#include "plugin.h"
#include "sched.h"
#include "task.h"
#include "store.h"
#include "yz.h"

typedef struct yz_host {
  char *datadir;       /* the data directory */
  char *config_path;   /* DIR/yizhan.conf.lua */
  char *shipped_dir;   /* the shipped plugins folder */
  yz_config *cfg;      /* the configuration in force */
  yz_store *store;     /* the database */
  yz_log log;          /* logfmt on stderr */
  yz_clock clock;      /* real or simulated time */
  yz_plugin **plugins; /* discovered plugins, sorted by name */
  int nplugins;        /* entries in plugins */
  yz_sched *sched;     /* persistent jobs */
  yz_task *tasks;      /* running and waiting coroutines, oldest first */
  yz_task *tasks_tail; /* the newest */
  int ticking;         /* inside yz_host_tick */
  void (*on_run)(struct yz_host *h, const yz_job *job, int64_t scheduled,
                 void *ud);    /* told of each job run started, or NULL */
  void *on_run_ud;             /* its argument */
  yz_task *current;            /* the task being resumed, or NULL */
  yz_http *http;               /* the process's HTTP requests */
  yz_bus *bus;                 /* plugin events */
  yz_outbox *outbox;           /* durable messages */
  struct yz_channel *channels; /* channels registered by plugins */
  int nchannels;               /* entries in channels */
  char **allow;                /* "plugin\nhost[:port]" pairs http may reach */
  int nallow;                  /* entries in allow */
  /* When set (simulate, yizhan test), messages are handed here instead of
  ** to their channel and count as sent. */
  void (*capture)(struct yz_host *h, const yz_msg *m, void *ud);
  void *capture_ud; /* its argument */
  /* Told of every event a plugin emits (simulate, yizhan test), or NULL. */
  void (*on_event)(struct yz_host *h, const char *topic, const char *json,
                   size_t n, const char *origin, void *ud);
  void *on_event_ud;       /* its argument */
  int deliver;             /* hand messages to channels (yizhan run) */
  int stopping;            /* shutting down: no new job runs */
  char err[YZ_ERRMSG_MAX]; /* last error */
} yz_host;

/* Opens the data directory: reads the configuration and opens the database.
** A missing or bad configuration is an error (the message names file, line
** and key). On failure *out is NULL and err says why. */
int yz_host_open(const char *datadir, yz_host **out, char *err, size_t errlen);
/* The same with another database file in place of the configured one
** (simulate runs on a copy). */
int yz_host_open_db(const char *datadir, const char *dbpath, yz_host **out,
                    char *err, size_t errlen);
/* Discovers and starts plugins (yz_plugins_discover + yz_plugins_start). */
int yz_host_start(yz_host *h);
/* Re-reads the configuration and restarts every plugin. A bad new
** configuration (including an option a plugin does not accept) is reported
** in h->err, the old one stays in force and YZ_EUSAGE is returned. */
int yz_host_reload(yz_host *h);
/* Does what is due at the host clock's now: starts due jobs (a missed run
** past its grace window is skipped and logged) and resumes ready tasks once
** each. Returns the ms until there is more to do (0: right away), or -1 when
** nothing is scheduled. */
int64_t yz_host_tick(yz_host *h);
/* On a simulated clock: moves time forward to target_ms, ticking through
** every due time on the way, as the run loop would in real time. */
void yz_host_run_until(yz_host *h, int64_t target_ms);
/* Forgets what a plugin registered: tasks, jobs, event handlers and
** channels (it failed to start, or is being unloaded). */
void yz_host_forget_plugin(yz_host *h, yz_plugin *p);
/* Whether the host has nothing to do right now: no task ready or waiting
** for an answer, no event queued, no message that may go now or is in
** flight. */
int yz_host_idle(yz_host *h);
/* Stops plugins, closes the database; accepts NULL. */
void yz_host_close(yz_host *h);
/* Records an audit entry stamped with the host clock. */
void yz_host_audit(yz_host *h, const char *actor, const char *action,
                   const char *subject, const char *detail);
/* The plugin folders in search order (later entries win on a name clash):
** shipped, then config plugin_path, then DIR/plugins. Returns a count and a
** malloc'd array of malloc'd strings. */
int yz_host_plugin_dirs(const yz_host *h, char ***out);

#endif
