/*
** host.c: a data directory brought to life (see host.h).
*/
#include "host.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "deliver.h"

#ifndef YZ_SHIPPED_PLUGIN_DIR
#define YZ_SHIPPED_PLUGIN_DIR "plugins"
#endif

/* Resolves 'p' against the data directory unless it is absolute. */
static char *resolve(const char *datadir, const char *p) {
  if (p[0] == '/') return yz_strdup(p);
  yz_buf b;
  yz_buf_init(&b, 8192);
  yz_buf_addf(&b, "%s/%s", datadir, p);
  char *s = yz_strdup(yz_buf_str(&b));
  yz_buf_free(&b);
  return s;
}

static int open_config(const char *path, yz_config **out, char *err,
                       size_t errlen) {
  struct stat st;
  if (stat(path, &st) != 0) {
    yz_fmt(err, errlen,
           "%s: no configuration here (%s); create one with "
           "'yizhan init DIR' or choose the directory with -d DIR",
           path, strerror(errno));
    return YZ_ENOTFOUND;
  }
  return yz_config_load(path, out, err, errlen);
}

int yz_host_open(const char *datadir, yz_host **out, char *err, size_t errlen) {
  return yz_host_open_db(datadir, NULL, out, err, errlen);
}

int yz_host_open_db(const char *datadir, const char *dbpath, yz_host **out,
                    char *err, size_t errlen) {
  *out = NULL;
  yz_host *h = yz_xcalloc(1, sizeof *h);
  h->datadir = yz_strdup(datadir);
  h->config_path = resolve(datadir, "yizhan.conf.lua");
  const char *shipped = getenv("YIZHAN_SHIPPED_PLUGINS");
  h->shipped_dir =
      yz_strdup(shipped && *shipped ? shipped : YZ_SHIPPED_PLUGIN_DIR);
  yz_clock_init(&h->clock);
  int rc = open_config(h->config_path, &h->cfg, err, errlen);
  if (rc != YZ_OK) {
    yz_host_close(h);
    return rc;
  }
  yz_log_init(&h->log, stderr, yz_log_level_parse(h->cfg->log_level),
              &h->clock);
  char *db = dbpath ? yz_strdup(dbpath) : resolve(datadir, h->cfg->database);
  rc = yz_store_open(&h->store, db, err, errlen);
  free(db);
  if (rc != YZ_OK) {
    yz_host_close(h);
    return rc;
  }
  h->sched = yz_sched_new(h->store, h->cfg->timezone);
  rc = yz_deliver_open(h, err, errlen);
  if (rc != YZ_OK) {
    yz_host_close(h);
    return rc;
  }
  *out = h;
  return YZ_OK;
}

int yz_host_start(yz_host *h) {
  yz_sched_new_generation(h->sched, yz_clock_mono_ms());
  yz_plugins_discover(h);
  yz_deliver_started(h, 0); /* the configured channels, for setup's sends */
  int rc = yz_plugins_start(h);
  /* Jobs a healthy plugin no longer registers are gone for good. */
  for (int i = 0; i < h->nplugins; i++) {
    yz_plugin *p = h->plugins[i];
    if (p->enabled && p->state == YZ_PS_OK) {
      int n = yz_sched_prune(h->sched, p->name);
      if (n)
        yz_logf(&h->log, YZ_LOG_INFO, p->name,
                "dropped %d job(s) no longer registered", n);
    }
  }
  /* Every configured channel needs a healthy plugin of its type: one that
  ** is missing, disabled or failed is a configuration error (a start is
  ** refused, a reload keeps the configuration in force). Not when messages
  ** are captured (simulate, tests): then no channel plugin is called. */
  h->err[0] = 0;
  for (int i = 0; !h->capture && i < h->cfg->nchannels; i++) {
    const yz_chan_rules *r = &h->cfg->channels[i].rules;
    yz_plugin *p = yz_plugin_find(h, r->type);
    char why[YZ_ERRMSG_MAX] = "";
    if (!p) {
      yz_fmt(why, sizeof why,
             "channels.%s: type '%s' names no plugin on the plugin path (the "
             "shipped channels are file, http and kannel)",
             r->name, r->type);
    } else if (!p->enabled) {
      yz_fmt(why, sizeof why,
             "channels.%s: plugin '%s', which delivers it, is disabled",
             r->name, r->type);
    } else if (p->state != YZ_PS_OK) {
      char first[512];
      yz_fmt(first, sizeof first, "%s", p->error ? p->error : "not healthy");
      first[strcspn(first, "\n")] = 0;
      yz_fmt(why, sizeof why, "channels.%s: plugin '%s' cannot deliver it: %s",
             r->name, r->type, first);
      p->config_error = 1;
    }
    if (why[0]) {
      yz_logf(&h->log, YZ_LOG_ERROR, NULL, "%s", why);
      if (!h->err[0]) yz_fmt(h->err, sizeof h->err, "%s", why);
      rc = YZ_EUSAGE;
    }
  }
  yz_deliver_started(h, 1);
  return rc;
}

void yz_host_forget_plugin(yz_host *h, yz_plugin *p) {
  yz_tasks_drop(h, p);
  yz_sched_forget(h->sched, p);
  yz_deliver_forget(h, p);
}

int yz_host_idle(yz_host *h) {
  int64_t now = yz_clock_now_ms(&h->clock);
  for (yz_task *t = h->tasks; t; t = t->next)
    if (t->wake_ms <= now || t->wait) return 0;
  if (yz_bus_pending(h->bus) || yz_http_running(h->http)) return 0;
  if (yz_outbox_in_flight(h->outbox, NULL)) return 0;
  if (yz_deliver_wake(h) == 0) return 0;
  /* Due now but waiting for the rate's next token: not idle. */
  return !(h->deliver && yz_outbox_due_now(h->outbox));
}

/* A job's run ended: record it. */
static void job_done(yz_host *h, yz_task *t, int ok, const char *err) {
  int64_t now = yz_clock_now_ms(&h->clock) / 1000;
  yz_sched_finished(h->sched, t->job, t->scheduled, ok, err, now);
}

int64_t yz_host_tick(yz_host *h) {
  int64_t now_ms = yz_clock_now_ms(&h->clock), now = now_ms / 1000;
  yz_job *job;
  int64_t scheduled;
  int kind, cursor = 0;
  /* A turn never starts inside another (a test moving the clock from a
  ** job, say). */
  if (h->ticking) return -1;
  h->ticking = 1;
  /* The turn's bookkeeping in one transaction: one commit, not one per
  ** job. The plugins' own code runs afterwards, a transaction per slice. */
  int tx = yz_store_tx_begin(h->store) == YZ_OK;
  while (!h->stopping && (kind = yz_sched_due(h->sched, now, &cursor, &job,
                                              &scheduled)) != YZ_DUE_NONE) {
    char when[40];
    yz_clock_iso_local(h->cfg->timezone, scheduled, when, sizeof when);
    if (kind == YZ_DUE_SKIP) {
      const char *kv[] = {"job", job->name, "scheduled", when};
      yz_log_write(&h->log, YZ_LOG_WARN, job->plugin,
                   "skipped a run missed while the host was down (past its "
                   "grace window)",
                   kv, 2);
      yz_sched_skipped(h->sched, job, scheduled, now);
      continue;
    }
    char err[1024];
    yz_sched_started(h->sched, job, scheduled);
    if (h->on_run) h->on_run(h, job, scheduled, h->on_run_ud);
    if (!yz_task_for_job(h, job, scheduled, job_done, err, sizeof err)) {
      const char *kv[] = {"job", job->name, "scheduled", when};
      yz_log_write(&h->log, YZ_LOG_ERROR, job->plugin, err, kv, 2);
      yz_sched_finished(h->sched, job, scheduled, 0, err, now);
    }
  }
  if (tx && yz_store_tx_commit(h->store) != YZ_OK) {
    yz_logf(&h->log, YZ_LOG_ERROR, NULL, "cannot commit the turn: %s",
            yz_store_errmsg(h->store));
    yz_store_tx_rollback(h->store);
  }
  yz_deliver_turn(h);
  int64_t wait = yz_tasks_run(h, now_ms);
  if (yz_outbox_flush(h->outbox) != YZ_OK)
    yz_logf(&h->log, YZ_LOG_ERROR, NULL,
            "cannot record message outcomes (kept, tried again): %s",
            yz_store_errmsg(h->store));
  h->ticking = 0;
  int64_t more = yz_deliver_wake(h);
  if (more >= 0 && (wait < 0 || more < wait)) wait = more;
  if (wait == 0) return 0;
  int64_t due = yz_sched_next_wake(h->sched);
  if (due != YZ_NEVER) {
    int64_t until = due * 1000 - yz_clock_now_ms(&h->clock);
    if (until < 0) until = 0;
    if (wait < 0 || until < wait) wait = until;
  }
  return wait;
}

int yz_host_reload(yz_host *h) {
  yz_config *fresh = NULL;
  char err[YZ_ERRMSG_MAX];
  if (open_config(h->config_path, &fresh, err, sizeof err) != YZ_OK) {
    yz_logf(&h->log, YZ_LOG_ERROR, NULL,
            "reload refused, the configuration in force stays: %s", err);
    yz_fmt(h->err, sizeof h->err, "%s", err);
    return YZ_EUSAGE;
  }
  yz_config *old = h->cfg;
  yz_plugins_unload(h);
  h->cfg = fresh;
  yz_sched_set_tz(h->sched, h->cfg->timezone);
  h->log.level = yz_log_level_parse(h->cfg->log_level);
  int rc = yz_host_start(h);
  if (rc == YZ_EUSAGE) {
    /* A plugin option the plugin does not accept is a configuration error
    ** too (a fresh start refuses it): go back to the configuration in force
    ** and restart the plugins under it. */
    char why[YZ_ERRMSG_MAX];
    yz_fmt(why, sizeof why, "%s",
           h->err[0] ? h->err : "a plugin's options are invalid");
    for (int i = 0; !h->err[0] && i < h->nplugins; i++)
      if (h->plugins[i]->config_error && h->plugins[i]->error) {
        yz_fmt(why, sizeof why, "%s", h->plugins[i]->error);
        break;
      }
    yz_fmt(h->err, sizeof h->err, "%s", why);
    yz_logf(&h->log, YZ_LOG_ERROR, NULL,
            "reload refused, the configuration in force stays: %s", h->err);
    yz_plugins_unload(h);
    yz_config_free(fresh);
    h->cfg = old;
    yz_sched_set_tz(h->sched, h->cfg->timezone);
    h->log.level = yz_log_level_parse(h->cfg->log_level);
    yz_host_start(h);
    yz_fmt(h->err, sizeof h->err, "%s", why); /* the start cleared it */
    yz_host_audit(h, "core", "reload", NULL, "refused");
    return YZ_EUSAGE;
  }
  if (strcmp(fresh->database, old->database) != 0)
    yz_logf(&h->log, YZ_LOG_WARN, NULL,
            "the database setting changed; it takes effect at restart");
  yz_config_free(old);
  yz_host_audit(h, "core", "reload", NULL, rc == YZ_OK ? "ok" : "with errors");
  yz_logf(&h->log, rc == YZ_OK ? YZ_LOG_INFO : YZ_LOG_WARN, NULL,
          "reloaded configuration and plugins%s",
          rc == YZ_OK ? "" : " (some plugins are not healthy)");
  return rc;
}

void yz_host_close(yz_host *h) {
  if (!h) return;
  yz_plugins_unload(h);
  if (h->bus) yz_deliver_close(h);
  yz_sched_free(h->sched);
  yz_store_close(h->store);
  yz_config_free(h->cfg);
  free(h->datadir);
  free(h->config_path);
  free(h->shipped_dir);
  free(h);
}

void yz_host_audit(yz_host *h, const char *actor, const char *action,
                   const char *subject, const char *detail) {
  if (yz_store_audit(h->store, yz_clock_now_ms(&h->clock), actor, action,
                     subject, detail) != YZ_OK)
    yz_logf(&h->log, YZ_LOG_ERROR, NULL, "cannot write the audit log: %s",
            yz_store_errmsg(h->store));
}

int yz_host_plugin_dirs(const yz_host *h, char ***out) {
  int n = 0;
  char **dirs = yz_xcalloc((size_t)h->cfg->nplugin_path + 3, sizeof *dirs);
  dirs[n++] = yz_strdup(h->shipped_dir);
  for (int i = 0; i < h->cfg->nplugin_path; i++)
    dirs[n++] = resolve(h->datadir, h->cfg->plugin_path[i]);
  dirs[n++] = resolve(h->datadir, "plugins");
  *out = dirs;
  return n;
}

void yz_host_run_until(yz_host *h, int64_t target_ms) {
  for (long guard = 0; guard < 10000000; guard++) {
    int64_t wait = yz_host_tick(h);
    int64_t now = yz_clock_now_ms(&h->clock);
    if (wait != 0 && now >= target_ms) break;
    if (wait < 0 || now + wait > target_ms)
      wait = target_ms > now ? target_ms - now : 0;
    yz_clock_advance(&h->clock, wait);
  }
}
