/*
** cli.c: the 'yizhan' command line. Parses argv, runs one command, prints
** its results on stdout and problems on stderr, and returns the exit status:
** 0 success, 1 failure, 2 a usage error.
*/
#include "cli.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <lualib.h>

#include "buf.h"
#include "deliver.h"
#include "host.h"
#include "lapi.h"
#include "loop.h"
#include "phone.h"
#include "spec.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

typedef struct cmd {
  const char *name;                                   /* as typed */
  int (*run)(const char *dir, int argc, char **argv); /* argv[0] = name */
  const char *usage;                                  /* one line */
  const char *help;                                   /* the rest */
} cmd;

static const cmd commands[];

static int usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("yizhan: ", stderr);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs("\nTry 'yizhan --help'.\n", stderr);
  return EXIT_USAGE;
}

/* Opens the host of 'dir', printing the reason on failure. */
static yz_host *open_host(const char *dir) {
  yz_host *h = NULL;
  char err[YZ_ERRMSG_MAX];
  if (yz_host_open(dir, &h, err, sizeof err) != YZ_OK) {
    fprintf(stderr, "yizhan: %s\n", err);
    return NULL;
  }
  return h;
}

/* Writes s as a JSON string (null for NULL). */
static void put_json_str(FILE *f, const char *s) {
  yz_buf b;
  yz_buf_init(&b, (size_t)-1);
  yz_buf_add_json_str(&b, s);
  fputs(yz_buf_str(&b), f);
  yz_buf_free(&b);
}

static int wants_help(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
  return 0;
}

/* ------------------------------------------------------------------ init */

static int write_file(const char *path, const char *text, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return -1;
  size_t len = strlen(text), off = 0;
  while (off < len) {
    ssize_t w = write(fd, text + off, len - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      close(fd);
      return -1;
    }
    off += (size_t)w;
  }
  return close(fd);
}

static int cmd_init(const char *dir, int argc, char **argv) {
  (void)dir;
  if (argc != 2) return usage_error("init takes one argument, the directory");
  const char *target = argv[1];
  char conf[4096], db[4096], plugins[4096];
  yz_fmt(conf, sizeof conf, "%s/yizhan.conf.lua", target);
  yz_fmt(db, sizeof db, "%s/yizhan.db", target);
  yz_fmt(plugins, sizeof plugins, "%s/plugins", target);
  struct stat st;
  if (stat(conf, &st) == 0 || stat(db, &st) == 0) {
    fprintf(stderr,
            "yizhan: %s already holds a yizhan data directory; init "
            "refuses to overwrite it\n",
            target);
    return EXIT_FAIL;
  }
  /* The directory will hold records of minors: owner only. */
  if (mkdir(target, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "yizhan: cannot create %s: %s\n", target, strerror(errno));
    return EXIT_FAIL;
  }
  if (mkdir(plugins, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "yizhan: cannot create %s: %s\n", plugins, strerror(errno));
    return EXIT_FAIL;
  }
  if (write_file(conf, yz_config_template(), 0600) != 0) {
    fprintf(stderr, "yizhan: cannot write %s: %s\n", conf, strerror(errno));
    return EXIT_FAIL;
  }
  yz_host *h = open_host(target);
  if (!h) return EXIT_FAIL;
  yz_host_audit(h, "cli", "init", target, NULL);
  yz_host_close(h);
  printf("created %s\n  %s\n  %s\n  %s/\n", target, conf, db, plugins);
  printf("next: edit %s to enable plugins, then 'yizhan -d %s check'\n", conf,
         target);
  return EXIT_OK;
}

/* ----------------------------------------------------------------- check */

static void print_indented(FILE *f, const char *text) {
  fputs("    ", f);
  for (const char *p = text; *p; p++) {
    fputc(*p, f);
    if (*p == '\n' && p[1]) fputs("    ", f);
  }
  fputc('\n', f);
}

/* A channel's settings for 'check': plain values shown, secrets masked,
** the template map counted. */
static void print_channel(yz_host *h, const yz_chan_conf *cc) {
  lua_State *L = luaL_newstate();
  char err[256];
  yz_buf b;
  yz_buf_init(&b, 64 * 1024);
  yz_buf_addf(&b, "channel   %s (%s)", cc->rules.name, cc->rules.type);
  if (L &&
      yz_config_push_channel(h->cfg, cc->rules.name, L, err, sizeof err) == 0 &&
      lua_istable(L, -1)) {
    /* Keys sorted, for a stable listing. */
    lua_newtable(L);
    int keys = lua_gettop(L), n = 0;
    lua_pushnil(L);
    while (lua_next(L, -3)) {
      lua_pop(L, 1);
      if (lua_type(L, -1) != LUA_TSTRING) continue;
      lua_pushvalue(L, -1);
      lua_rawseti(L, keys, ++n);
    }
    for (int i = 1; i < n; i++)
      for (int j = i; j > 0; j--) {
        lua_rawgeti(L, keys, j);
        lua_rawgeti(L, keys, j + 1);
        int swap = strcmp(lua_tostring(L, -2), lua_tostring(L, -1)) > 0;
        if (swap) {
          lua_rawseti(L, keys, j);
          lua_rawseti(L, keys, j + 1);
        } else {
          lua_pop(L, 2);
          break;
        }
      }
    const char *sep = ": ";
    for (int i = 1; i <= n; i++) {
      lua_rawgeti(L, keys, i);
      const char *k = lua_tostring(L, -1);
      lua_pushvalue(L, -1);
      int ty = lua_rawget(L, keys - 1);
      if (strcmp(k, "type") == 0) {
        /* shown already */
      } else if (yz_config_key_is_secret(k)) {
        yz_buf_addf(&b, "%s%s=******", sep, k);
        sep = ", ";
      } else if (strcmp(k, "templates") == 0) {
        yz_buf_addf(&b, "%stemplates=%d mapped", sep, cc->ntpls);
        sep = ", ";
      } else if (ty == LUA_TSTRING || ty == LUA_TNUMBER) {
        yz_buf_addf(&b, "%s%s=%s", sep, k, lua_tostring(L, -1));
        sep = ", ";
      } else if (ty == LUA_TBOOLEAN) {
        yz_buf_addf(&b, "%s%s=%s", sep, k,
                    lua_toboolean(L, -1) ? "true" : "false");
        sep = ", ";
      }
      lua_pop(L, 2);
    }
  }
  printf("%s\n", yz_buf_str(&b));
  yz_buf_free(&b);
  if (L) lua_close(L);
}

static int cmd_check(const char *dir, int argc, char **argv) {
  (void)argv;
  if (argc != 1) return usage_error("check takes no arguments");
  yz_host *h = open_host(dir);
  if (!h) return EXIT_FAIL;
  printf("config    %s: ok\n", h->config_path);
  printf("database  %s: ok\n", yz_store_path(h->store));
  for (int i = 0; i < h->cfg->nchannels; i++)
    print_channel(h, &h->cfg->channels[i]);
  int rc = yz_host_start(h);
  int enabled = 0;
  for (int i = 0; i < h->nplugins; i++) {
    yz_plugin *p = h->plugins[i];
    if (!p->enabled) continue;
    enabled++;
    printf("plugin    %s %s: %s\n", p->name, p->version ? p->version : "?",
           yz_plugin_state_name(p->state));
    if (p->error) print_indented(stdout, p->error);
  }
  if (!enabled) printf("no plugins enabled ('yizhan plugins' lists them)\n");
  if (rc == YZ_EUSAGE && h->err[0]) printf("config    %s\n", h->err);
  yz_host_close(h);
  if (rc == YZ_OK) return EXIT_OK;
  fprintf(stderr, "yizhan: check failed: %s\n",
          rc == YZ_EUSAGE ? "the configuration has errors"
                          : "some plugins are not healthy");
  return EXIT_FAIL;
}

/* --------------------------------------------------------------- plugins */

/* The recorded state and last error of a plugin, from yz_plugins. */
static void recorded_state(yz_host *h, const char *name, char *state, size_t n,
                           char **error) {
  yz_stmt *st;
  yz_fmt(state, n, "-");
  *error = NULL;
  if (yz_store_prepare(h->store, NULL,
                       "SELECT state, last_error FROM yz_plugins WHERE name=?",
                       &st) != YZ_OK)
    return;
  yz_value v = {.type = YZ_TEXT, .s = name, .n = strlen(name)};
  yz_stmt_bind(st, 1, &v);
  if (yz_stmt_step(st) == YZ_ROW) {
    yz_stmt_column(st, 0, &v);
    if (v.type == YZ_TEXT) yz_fmt(state, n, "%s", v.s);
    yz_stmt_column(st, 1, &v);
    if (v.type == YZ_TEXT) *error = yz_strdup(v.s);
  }
  yz_stmt_release(st);
}

static int cmd_plugins(const char *dir, int argc, char **argv) {
  (void)argv;
  if (argc != 1) return usage_error("plugins takes no arguments");
  yz_host *h = open_host(dir);
  if (!h) return EXIT_FAIL;
  yz_plugins_discover(h);
  char **dirs;
  int nd = yz_host_plugin_dirs(h, &dirs);
  printf("plugin path:");
  for (int i = 0; i < nd; i++) {
    printf(" %s", dirs[i]);
    free(dirs[i]);
  }
  free(dirs);
  printf("\n%-20s %-9s %-8s %-12s %s\n", "NAME", "VERSION", "ENABLED", "STATE",
         "DESCRIPTION / LAST ERROR");
  for (int i = 0; i < h->nplugins; i++) {
    yz_plugin *p = h->plugins[i];
    char state[32];
    char *err = NULL;
    recorded_state(h, p->name, state, sizeof state, &err);
    static const char *const why[] = {"no", "config", "cli"};
    if (p->state == YZ_PS_FAILED) { /* its file or manifest is bad */
      yz_fmt(state, sizeof state, "failed");
      free(err);
      err = yz_strdup(p->error);
    } else if (strcmp(state, "unknown") == 0) {
      yz_fmt(state, sizeof state, "-");
    }
    printf("%-20s %-9s %-8s %-12s %s\n", p->name, p->version ? p->version : "?",
           why[p->enabled], state, p->description ? p->description : "");
    if (err && strcmp(state, "ok") != 0) print_indented(stdout, err);
    printf("%-20s %s\n", "", p->file);
    free(err);
  }
  if (!h->nplugins) printf("(no plugins found)\n");
  yz_host_close(h);
  return EXIT_OK;
}

static int cmd_plugin(const char *dir, int argc, char **argv) {
  if (argc != 3 || (strcmp(argv[1], "enable") && strcmp(argv[1], "disable")))
    return usage_error("usage: yizhan plugin enable|disable NAME");
  int on = strcmp(argv[1], "enable") == 0;
  const char *name = argv[2];
  yz_host *h = open_host(dir);
  if (!h) return EXIT_FAIL;
  yz_plugins_discover(h);
  if (!yz_plugin_find(h, name)) {
    fprintf(stderr,
            "yizhan: no plugin '%s' on the plugin path ('yizhan "
            "plugins' lists them)\n",
            name);
    yz_host_close(h);
    return EXIT_FAIL;
  }
  int rc = yz_plugin_set_enabled(h->store, name, on);
  if (rc != YZ_OK) {
    fprintf(stderr, "yizhan: %s\n", yz_store_errmsg(h->store));
    yz_host_close(h);
    return EXIT_FAIL;
  }
  yz_host_audit(h, "cli", on ? "plugin.enable" : "plugin.disable", name, NULL);
  printf("%s %s; a running daemon picks this up on reload (SIGHUP)\n", name,
         on ? "enabled" : "disabled");
  yz_host_close(h);
  return EXIT_OK;
}

/* ------------------------------------------------------------------- run */

/* The data directory's lock is a POSIX record lock on DIR/yizhan.lock:
** another process can ask who holds it (F_GETLK) without taking it, so
** 'yizhan send' can nudge the daemon, and no pid file can be stale. */

/* Opens the lock file and tries to take the lock. Returns the descriptor
** (kept open while running), or -1 with *holder the pid holding it (0 when
** the file cannot be opened). */
static int lock_dir(const char *dir, pid_t *holder) {
  char path[4096];
  yz_fmt(path, sizeof path, "%s/yizhan.lock", dir);
  *holder = 0;
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
  if (fcntl(fd, F_SETLK, &fl) == 0) return fd;
  struct flock who = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
  if (fcntl(fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK)
    *holder = who.l_pid;
  close(fd);
  return -1;
}

/* Takes the data directory's lock so two daemons never share a database.
** Returns the descriptor (kept open while running) or -1, said. */
static int take_lock(const char *dir) {
  pid_t holder;
  int fd = lock_dir(dir, &holder);
  if (fd >= 0) return fd;
  if (holder)
    fprintf(stderr, "yizhan: another yizhan (pid %ld) is delivering from %s\n",
            (long)holder, dir);
  else
    fprintf(stderr, "yizhan: cannot open %s/yizhan.lock: %s\n", dir,
            strerror(errno));
  return -1;
}

/* The lock when no daemon holds it, else -1 without a word. */
static int take_lock_quiet(const char *dir) {
  pid_t holder;
  return lock_dir(dir, &holder);
}

static void report_unhealthy(yz_host *h) {
  if (h->err[0]) fprintf(stderr, "yizhan: %s\n", h->err);
  for (int i = 0; i < h->nplugins; i++) {
    yz_plugin *p = h->plugins[i];
    if (p->enabled && p->state != YZ_PS_OK && p->config_error)
      fprintf(stderr, "yizhan: %s\n", p->error ? p->error : p->name);
  }
}

/* Starts a delivering host on a locked data directory: plugins started,
** messages left in doubt by a crash queued again. NULL on failure (said). */
static yz_host *start_delivering(const char *dir) {
  yz_host *h = open_host(dir);
  if (!h) return NULL;
  int rc = yz_host_start(h);
  if (rc == YZ_EUSAGE) {
    report_unhealthy(h);
    fprintf(stderr, "yizhan: refusing to start: fix the configuration\n");
    yz_host_close(h);
    return NULL;
  }
  int doubt = yz_outbox_recover(h->outbox);
  if (doubt) {
    char n[16];
    yz_fmt(n, sizeof n, "%d", doubt);
    const char *kv[] = {"messages", n};
    yz_log_write(&h->log, YZ_LOG_WARN, NULL,
                 "messages left 'sending' by a crash are in doubt: sending "
                 "them again with the same key",
                 kv, 1);
  }
  h->deliver = 1;
  return h;
}

/* Before a delivering host closes: messages already handed to a gateway
** get a few seconds for their answers (no new ones are claimed); a signal
** cuts this short. What is still unanswered then is in doubt and goes
** again, with its key. */
static void drain(yz_host *h, yz_loop *lp) {
  h->deliver = 0;
  h->stopping = 1; /* and no job starts only to be cut off */
  int64_t end = yz_clock_mono_ms() + 5000;
  while ((yz_http_running(h->http) || yz_outbox_in_flight(h->outbox, NULL)) &&
         yz_clock_mono_ms() < end) {
    yz_host_tick(h);
    if (!yz_http_running(h->http) && !yz_outbox_in_flight(h->outbox, NULL))
      break;
    int sig = yz_loop_wait(lp, 100);
    if (sig == SIGINT || sig == SIGTERM) break;
  }
}

/* What waits after --until-idle: later retries, quiet hours, caps, held
** channels. Returns how many messages wait on a channel that cannot
** deliver them now (held, or no plugin delivers it). */
static long long report_waiting(yz_host *h) {
  yz_stmt *st;
  long long stuck = 0;
  if (yz_store_prepare(h->store, NULL,
                       "SELECT channel, count(*), sum(state = 'failed') FROM "
                       "yz_outbox WHERE state IN ('queued', 'failed') GROUP "
                       "BY channel ORDER BY channel",
                       &st) != YZ_OK)
    return 0;
  long long total = 0;
  while (yz_stmt_step(st) == YZ_ROW) {
    yz_value ch, n, failed;
    yz_stmt_column(st, 0, &ch);
    yz_stmt_column(st, 1, &n);
    yz_stmt_column(st, 2, &failed);
    const yz_chan_rules *r = yz_outbox_channel(h->outbox, ch.s);
    const char *held = yz_outbox_held(h->outbox, ch.s);
    yz_channel *c = yz_deliver_channel(h, ch.s);
    char heldwhy[700];
    if (held)
      yz_fmt(heldwhy, sizeof heldwhy, "the channel is paused: %s", held);
    const char *why = !r     ? "it is not configured"
                      : held ? heldwhy
                      : !c || c->p->state != YZ_PS_OK
                          ? "no healthy plugin delivers it"
                      : yz_outbox_quiet_now(h->outbox, ch.s) ? "quiet hours"
                      : failed.i ? "retries after failures, or daily caps"
                                 : "daily caps or a later send time";
    if (!r || held || !c || c->p->state != YZ_PS_OK) stuck += n.i;
    fprintf(stderr, "yizhan: %lld message(s) of channel '%s' wait: %s\n",
            (long long)n.i, ch.s, why);
    total += n.i;
  }
  yz_stmt_release(st);
  int64_t wake = yz_outbox_next_wake(h->outbox);
  if (total && wake >= 0) {
    char when[40];
    yz_clock_iso_local(h->cfg->timezone,
                       (yz_clock_now_ms(&h->clock) + wake) / 1000, when,
                       sizeof when);
    fprintf(stderr, "yizhan: idle; the next may go at %s\n", when);
  }
  return stuck;
}

static int cmd_run(const char *dir, int argc, char **argv) {
  int until_idle = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--until-idle") == 0)
      until_idle = 1;
    else
      return usage_error("run takes only --until-idle");
  }
  int lock = take_lock(dir);
  if (lock < 0) return EXIT_FAIL;
  char err[256];
  yz_host *h = start_delivering(dir);
  if (!h) {
    close(lock);
    return EXIT_FAIL;
  }
  yz_loop *lp = yz_loop_new(h->http, err, sizeof err);
  if (!lp) {
    fprintf(stderr, "yizhan: %s\n", err);
    yz_host_close(h);
    close(lock);
    return EXIT_FAIL;
  }
  int ok = 0, bad = 0;
  for (int i = 0; i < h->nplugins; i++)
    if (h->plugins[i]->enabled) {
      if (h->plugins[i]->state == YZ_PS_OK)
        ok++;
      else
        bad++;
    }
  char okn[16], badn[16], pid[16];
  yz_fmt(okn, sizeof okn, "%d", ok);
  yz_fmt(badn, sizeof badn, "%d", bad);
  yz_fmt(pid, sizeof pid, "%ld", (long)getpid());
  const char *kv[] = {"plugins_ok", okn, "plugins_failed", badn, "pid", pid};
  yz_log_write(&h->log, YZ_LOG_INFO, NULL, "ready", kv, 3);
  yz_host_audit(h, "core", "start", NULL, NULL);
  int status = EXIT_OK, polled = 0;
  for (;;) {
    /* Due jobs, events, messages and ready tasks first; then sleep until
    ** the next one (at most a minute, so a changed system clock is
    ** noticed), an HTTP transfer's progress or a signal. */
    int64_t wait = yz_host_tick(h);
    if (until_idle && wait != 0 && yz_host_idle(h)) {
      /* Receipts for what was sent, each message asked about once more
      ** before ending (40 polls of 50 at most: a cron run stays short). */
      if (polled < 40 && yz_deliver_poll_now(h) > 0) {
        polled++;
        continue;
      }
      if (report_waiting(h) > 0) {
        fprintf(stderr,
                "yizhan: messages wait on channels that cannot deliver them "
                "now (see above)\n");
        status = EXIT_FAIL;
      }
      /* A channel paused with nothing queued (its receipts were refused)
      ** is still the operator's to fix. */
      for (int i = 0; i < h->nchannels; i++) {
        const char *held = yz_outbox_held(h->outbox, h->channels[i].name);
        if (held && status == EXIT_OK) {
          fprintf(stderr, "yizhan: channel '%s' is paused: %s\n",
                  h->channels[i].name, held);
          status = EXIT_FAIL;
        }
      }
      break;
    }
    int timeout = wait < 0 || wait > 60000 ? 60000 : (int)wait;
    int sig = yz_loop_wait(lp, timeout);
    if (sig == 0 || sig == SIGUSR1) continue;
    if (sig == SIGHUP) {
      yz_logf(&h->log, YZ_LOG_INFO, NULL, "SIGHUP: reloading");
      yz_host_reload(h);
    } else if (sig > 0) {
      yz_logf(&h->log, YZ_LOG_INFO, NULL, "%s: shutting down",
              sig == SIGINT    ? "SIGINT"
              : sig == SIGTERM ? "SIGTERM"
                               : "signal");
      break;
    } else if (sig < 0) {
      yz_logf(&h->log, YZ_LOG_ERROR, NULL, "event loop failed: %s",
              strerror(errno));
      status = EXIT_FAIL;
      break;
    }
  }
  drain(h, lp);
  yz_host_audit(h, "core", "stop", NULL, NULL);
  yz_loop_free(lp);
  yz_host_close(h);
  close(lock);
  return status;
}

/* ---------------------------------------------------------- send, outbox */

static const char *opt_value(int argc, char **argv, int *i, const char *name) {
  if (strcmp(argv[*i], name) != 0 || *i + 1 >= argc) return NULL;
  return argv[++*i];
}

static int final_state(const char *s) {
  return strcmp(s, "sent") == 0 || strcmp(s, "delivered") == 0 ||
         strcmp(s, "dead") == 0 || strcmp(s, "failed") == 0;
}

static void print_outcome(yz_host *h, const yz_msg *m) {
  char masked[32];
  yz_phone_mask(m->to, masked, sizeof masked);
  printf("message %lld (key %s) to %s via %s: %s", (long long)m->id, m->key,
         masked, m->channel, m->state);
  if (m->attempts)
    printf(" after %d attempt%s", m->attempts, m->attempts == 1 ? "" : "s");
  if (m->gateway_id) printf(", gateway id %s", m->gateway_id);
  if (m->last_error) printf(": %s", m->last_error);
  if (strcmp(m->state, "failed") == 0) {
    char when[40];
    yz_clock_iso_local(h->cfg->timezone, m->next_ms / 1000, when, sizeof when);
    printf(" (next try %s)", when);
  }
  printf("\n");
}

/* Tells a daemon running on dir (if one is) that a message was queued, so
** it does not sleep until its next due time. */
static void nudge_daemon(const char *dir) {
  char path[4096];
  yz_fmt(path, sizeof path, "%s/yizhan.lock", dir);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  struct flock who = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
  int held = fcntl(fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK;
  close(fd);
  /* The holder blocks SIGUSR1 from its first instruction (yz_cli_main). */
  if (held && who.l_pid > 1) kill(who.l_pid, SIGUSR1);
}

/* Waits for message id to leave the queue. Without a daemon it delivers
** itself, holding the lock as 'run' would. Returns the exit status. */
static int wait_outcome(const char *dir, yz_host *h, int64_t id, int timeout) {
  int lock = take_lock_quiet(dir);
  int64_t until = yz_clock_mono_ms() + (int64_t)timeout * 1000;
  yz_host *d = NULL;
  yz_loop *lp = NULL;
  char err[256];
  if (lock >= 0) {
    yz_host_close(h);
    h = d = start_delivering(dir);
    if (d) lp = yz_loop_new(d->http, err, sizeof err);
    if (!d || !lp) {
      if (lp == NULL && d) fprintf(stderr, "yizhan: %s\n", err);
      yz_host_close(d);
      close(lock);
      return EXIT_FAIL;
    }
  }
  int status = EXIT_FAIL;
  for (;;) {
    yz_msg *m = NULL;
    if (d) {
      int64_t wait = yz_host_tick(d);
      if (wait < 0 || wait > 200) wait = 200;
      yz_outbox_get(d->outbox, id, &m);
      if (!m || !final_state(m->state)) {
        int sig = yz_loop_wait(lp, (int)wait);
        if (sig == SIGINT || sig == SIGTERM) {
          yz_msg_free(m);
          fprintf(stderr, "yizhan: interrupted; the message stays queued\n");
          break;
        }
      }
    } else {
      yz_outbox_get(h->outbox, id, &m);
      if (!m || !final_state(m->state)) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
      }
    }
    const char *held = d && m ? yz_outbox_held(d->outbox, m->channel) : NULL;
    if (held) { /* it will not go this time: no point waiting */
      fprintf(stderr,
              "yizhan: channel '%s' is paused: %s\nyizhan: the message stays "
              "queued (see 'yizhan outbox show %lld')\n",
              m->channel, held, (long long)id);
      yz_msg_free(m);
      break;
    }
    if (m && final_state(m->state)) {
      print_outcome(h, m);
      status =
          strcmp(m->state, "sent") == 0 || strcmp(m->state, "delivered") == 0
              ? EXIT_OK
              : EXIT_FAIL;
      yz_msg_free(m);
      break;
    }
    yz_msg_free(m);
    if (yz_clock_mono_ms() > until) {
      fprintf(stderr,
              "yizhan: no outcome within %d s; the message stays queued "
              "(see 'yizhan outbox show %lld')\n",
              timeout, (long long)id);
      break;
    }
  }
  if (lp) {
    drain(h, lp); /* other messages it was delivering meanwhile */
    yz_loop_free(lp);
  }
  yz_host_close(h);
  if (lock >= 0) close(lock);
  return status;
}

#define CLI_PARAMS_MAX 32

typedef struct cli_params {
  char *names[CLI_PARAMS_MAX], *values[CLI_PARAMS_MAX];
  int n;
} cli_params;

static void cli_params_free(cli_params *cp) {
  for (int i = 0; i < cp->n; i++) {
    free(cp->names[i]);
    free(cp->values[i]);
  }
  cp->n = 0;
}

/* --params: a JSON object ('{"child":"张*明","month":"10"}') or
** name=value pairs joined by ','. Returns 0, or -1 with err set. */
static int parse_cli_params(const char *s, cli_params *cp, char *err,
                            size_t errlen) {
  cp->n = 0;
  while (*s == ' ') s++;
  if (*s == '{') {
    cJSON *j = cJSON_Parse(s);
    if (!j || !cJSON_IsObject(j)) {
      cJSON_Delete(j);
      yz_fmt(err, errlen, "--params is not a JSON object");
      return -1;
    }
    for (cJSON *it = j->child; it; it = it->next) {
      if (cp->n == CLI_PARAMS_MAX) break;
      char num[64];
      const char *val = NULL;
      if (cJSON_IsString(it)) {
        val = it->valuestring;
      } else if (cJSON_IsNumber(it)) {
        yz_fmt(num, sizeof num, "%.15g", it->valuedouble);
        val = num;
      } else {
        yz_fmt(err, errlen, "--params: '%s' must be a string or a number",
               it->string);
        cJSON_Delete(j);
        cli_params_free(cp);
        return -1;
      }
      cp->names[cp->n] = yz_strdup(it->string);
      cp->values[cp->n++] = yz_strdup(val);
    }
    cJSON_Delete(j);
    return 0;
  }
  char *copy = yz_strdup(s), *save = NULL;
  for (char *tok = strtok_r(copy, ",", &save); tok;
       tok = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(tok, '=');
    if (!eq || eq == tok || cp->n == CLI_PARAMS_MAX) {
      yz_fmt(err, errlen,
             "--params wants name=value[,name=value...] or a JSON object, "
             "got '%s'",
             tok);
      free(copy);
      cli_params_free(cp);
      return -1;
    }
    *eq = 0;
    cp->names[cp->n] = yz_strdup(tok);
    cp->values[cp->n++] = yz_strdup(eq + 1);
  }
  free(copy);
  return 0;
}

static int cmd_send(const char *dir, int argc, char **argv) {
  const char *to = NULL, *text = NULL, *channel = NULL, *key = NULL, *v;
  const char *tpl = NULL, *params = NULL;
  int wait = 0, timeout = 60;
  for (int i = 1; i < argc; i++) {
    if ((v = opt_value(argc, argv, &i, "--to")))
      to = v;
    else if ((v = opt_value(argc, argv, &i, "--text")))
      text = v;
    else if ((v = opt_value(argc, argv, &i, "--channel")))
      channel = v;
    else if ((v = opt_value(argc, argv, &i, "--key")))
      key = v;
    else if ((v = opt_value(argc, argv, &i, "--template")))
      tpl = v;
    else if ((v = opt_value(argc, argv, &i, "--params")))
      params = v;
    else if ((v = opt_value(argc, argv, &i, "--timeout")))
      timeout = atoi(v);
    else if (strcmp(argv[i], "--wait") == 0)
      wait = 1;
    else
      return usage_error(
          "usage: yizhan send --to NUMBER (--text TEXT | --template T "
          "[--params P]) [--channel C] [--key K] [--wait [--timeout S]]");
  }
  if (!to || (!text == !tpl))
    return usage_error(
        "send needs --to NUMBER and either --text TEXT or --template NAME");
  if (params && !tpl) return usage_error("--params goes with --template");
  if (timeout <= 0) return usage_error("--timeout wants seconds above 0");
  yz_host *h = open_host(dir);
  if (!h) return EXIT_FAIL;
  yz_deliver_started(h, 0);
  char err[1024], num[32];
  yz_msg_in in;
  yz_buf rendered, pjson;
  yz_buf_init(&rendered, 64 * 1024);
  yz_buf_init(&pjson, 64 * 1024);
  int rc = YZ_OK;
  if (tpl) {
    cli_params cp = {0};
    if (params && parse_cli_params(params, &cp, err, sizeof err) != 0) {
      rc = YZ_EUSAGE;
    } else {
      rc = yz_deliver_render(h, tpl, (const char *const *)cp.names,
                             (const char *const *)cp.values, cp.n, &rendered,
                             &pjson, err, sizeof err);
      cli_params_free(&cp);
    }
    text = yz_buf_str(&rendered);
  }
  if (rc == YZ_OK)
    rc = yz_deliver_check(h, to, text, tpl, channel, &in, num, sizeof num, err,
                          sizeof err);
  if (rc != YZ_OK) {
    fprintf(stderr, "yizhan: send: %s\n", err);
    yz_buf_free(&rendered);
    yz_buf_free(&pjson);
    yz_host_close(h);
    return EXIT_USAGE;
  }
  if (tpl) in.params = yz_buf_str(&pjson);
  if (key && (!*key || strlen(key) > 200)) {
    fprintf(stderr, "yizhan: send: --key must be 1 to 200 bytes\n");
    yz_buf_free(&rendered);
    yz_buf_free(&pjson);
    yz_host_close(h);
    return EXIT_USAGE;
  }
  in.key = key;
  in.plugin = "cli";
  int64_t id;
  int existed;
  rc = yz_outbox_enqueue(h->outbox, &in, &id, &existed, err, sizeof err);
  yz_buf_free(&rendered);
  yz_buf_free(&pjson);
  if (rc != YZ_OK) {
    fprintf(stderr, "yizhan: send: %s\n", err);
    yz_host_close(h);
    return EXIT_FAIL;
  }
  yz_msg *m = NULL;
  yz_outbox_get(h->outbox, id, &m);
  char subject[64], masked[32];
  yz_fmt(subject, sizeof subject, "message %lld", (long long)id);
  yz_phone_mask(num, masked, sizeof masked);
  if (existed) {
    printf("already queued with key %s: ", m ? m->key : key);
    if (m) print_outcome(h, m);
  } else {
    yz_host_audit(h, "cli", "message.queue", subject, masked);
    printf("queued message %lld (key %s) to %s via %s, %d SMS part%s\n",
           (long long)id, m ? m->key : "?", masked, in.channel, in.parts,
           in.parts == 1 ? "" : "s");
    nudge_daemon(dir);
  }
  yz_msg_free(m);
  if (!wait) {
    yz_host_close(h);
    return EXIT_OK;
  }
  return wait_outcome(dir, h, id, timeout);
}

/* Prints rows of a query over yz_outbox as a table or JSON lines. */
static int list_messages(yz_host *h, yz_stmt *st, int json) {
  int n = 0;
  while (yz_stmt_step(st) == YZ_ROW) {
    yz_value id, key, channel, to, state, attempts, parts, created, err;
    yz_stmt_column(st, 0, &id);
    yz_stmt_column(st, 1, &key);
    yz_stmt_column(st, 2, &channel);
    yz_stmt_column(st, 3, &to);
    yz_stmt_column(st, 4, &state);
    yz_stmt_column(st, 5, &attempts);
    yz_stmt_column(st, 6, &parts);
    yz_stmt_column(st, 7, &created);
    yz_stmt_column(st, 8, &err);
    char masked[32], when[40];
    yz_phone_mask(to.s, masked, sizeof masked);
    yz_clock_iso_local(h->cfg->timezone, created.i / 1000, when, sizeof when);
    if (json) {
      printf("{\"id\":%lld,\"key\":", (long long)id.i);
      put_json_str(stdout, key.s);
      printf(",\"channel\":");
      put_json_str(stdout, channel.s);
      printf(
          ",\"to\":\"%s\",\"state\":\"%s\",\"attempts\":%lld,\"parts\":%lld,"
          "\"created\":\"%s\",\"error\":",
          masked, state.s, (long long)attempts.i, (long long)parts.i, when);
      if (err.type == YZ_NULL)
        printf("null");
      else
        put_json_str(stdout, err.s);
      printf("}\n");
    } else {
      if (n == 0)
        printf("%-6s %-9s %-10s %-13s %-3s %-25s %s\n", "ID", "STATE",
               "CHANNEL", "TO", "TRY", "CREATED", "KEY");
      printf("%-6lld %-9s %-10s %-13s %-3lld %-25s %s%s%s\n", (long long)id.i,
             state.s, channel.s, masked, (long long)attempts.i, when, key.s,
             err.type == YZ_NULL ? "" : "  ", err.type == YZ_NULL ? "" : err.s);
    }
    n++;
  }
  return n;
}

static int outbox_show(yz_host *h, const char *arg) {
  char *end;
  long long id = strtoll(arg, &end, 10);
  yz_msg *m = NULL;
  if (*end || yz_outbox_get(h->outbox, id, &m) != YZ_OK) {
    fprintf(stderr, "yizhan: no message with id %s\n", arg);
    return EXIT_FAIL;
  }
  char masked[32], t[40];
  yz_phone_mask(m->to, masked, sizeof masked);
  const char *tz = h->cfg->timezone;
  printf(
      "id          %lld\nkey         %s\nchannel     %s\nto          %s\n"
      "state       %s\nattempts    %d%s\nparts       %d (%s)\n",
      (long long)m->id, m->key, m->channel, masked, m->state, m->attempts,
      m->in_doubt ? " (was in doubt after a crash)" : "", m->parts,
      m->ucs2 ? "UCS-2" : "GSM-7");
  printf("from        %s%s%s\n", m->plugin ? m->plugin : "?",
         m->job ? ", job " : "", m->job ? m->job : "");
  yz_clock_iso_local(tz, m->created_ms / 1000, t, sizeof t);
  printf("created     %s\n", t);
  if (strcmp(m->state, "queued") == 0 || strcmp(m->state, "failed") == 0) {
    yz_clock_iso_local(tz, m->next_ms / 1000, t, sizeof t);
    printf("next try    %s\n", t);
  }
  if (m->sent_ms) {
    yz_clock_iso_local(tz, m->sent_ms / 1000, t, sizeof t);
    printf("sent        %s\n", t);
  }
  if (m->delivered_ms) {
    yz_clock_iso_local(tz, m->delivered_ms / 1000, t, sizeof t);
    printf("delivered   %s\n", t);
  }
  if (m->gateway_id) printf("gateway id  %s\n", m->gateway_id);
  if (m->last_error) printf("last error  %s\n", m->last_error);
  if (m->meta) printf("meta        %s\n", m->meta);
  if (m->tpl) printf("template    %s %s\n", m->tpl, m->params ? m->params : "");
  printf("text        %s\n", m->text);
  yz_msg_free(m);
  return EXIT_OK;
}

static int outbox_stats(yz_host *h, int json) {
  yz_stmt *st;
  if (yz_store_prepare(h->store, NULL,
                       "SELECT channel, state, count(*), sum(parts) FROM "
                       "yz_outbox GROUP BY channel, state ORDER BY channel, "
                       "state",
                       &st) != YZ_OK) {
    fprintf(stderr, "yizhan: %s\n", yz_store_errmsg(h->store));
    return EXIT_FAIL;
  }
  long long total = 0, parts = 0;
  if (!json)
    printf("%-12s %-10s %10s %10s\n", "CHANNEL", "STATE", "MESSAGES", "PARTS");
  while (yz_stmt_step(st) == YZ_ROW) {
    yz_value ch, state, n, p;
    yz_stmt_column(st, 0, &ch);
    yz_stmt_column(st, 1, &state);
    yz_stmt_column(st, 2, &n);
    yz_stmt_column(st, 3, &p);
    if (json) {
      printf("{\"channel\":");
      put_json_str(stdout, ch.s);
      printf(",\"state\":\"%s\",\"messages\":%lld,\"parts\":%lld}\n", state.s,
             (long long)n.i, (long long)p.i);
    } else {
      printf("%-12s %-10s %10lld %10lld\n", ch.s, state.s, (long long)n.i,
             (long long)p.i);
    }
    total += n.i;
    parts += p.i;
  }
  yz_stmt_release(st);
  if (!json) printf("%-12s %-10s %10lld %10lld\n", "all", "", total, parts);
  return EXIT_OK;
}

static int cmd_outbox(const char *dir, int argc, char **argv) {
  const char *status = NULL, *channel = NULL, *since = NULL, *v;
  int json = 0, limit = 100;
  if (argc >= 2 && strcmp(argv[1], "show") == 0) {
    if (argc != 3) return usage_error("usage: yizhan outbox show ID");
    yz_host *h = open_host(dir);
    if (!h) return EXIT_FAIL;
    int rc = outbox_show(h, argv[2]);
    yz_host_close(h);
    return rc;
  }
  if (argc >= 2 && strcmp(argv[1], "stats") == 0) {
    if (argc > 3 || (argc == 3 && strcmp(argv[2], "--json") != 0))
      return usage_error("usage: yizhan outbox stats [--json]");
    yz_host *h = open_host(dir);
    if (!h) return EXIT_FAIL;
    int rc = outbox_stats(h, argc == 3);
    yz_host_close(h);
    return rc;
  }
  if (argc >= 2 && strcmp(argv[1], "retry") == 0) {
    if (argc != 3) return usage_error("usage: yizhan outbox retry ID | --dead");
    yz_host *h = open_host(dir);
    if (!h) return EXIT_FAIL;
    int rc = EXIT_OK;
    if (strcmp(argv[2], "--dead") == 0) {
      int n = yz_outbox_requeue_dead(h->outbox);
      if (n < 0) {
        fprintf(stderr, "yizhan: %s\n", yz_store_errmsg(h->store));
        rc = EXIT_FAIL;
      } else {
        char detail[32];
        yz_fmt(detail, sizeof detail, "%d", n);
        yz_host_audit(h, "cli", "message.retry_dead", NULL, detail);
        printf("queued %d dead message%s again\n", n, n == 1 ? "" : "s");
      }
    } else {
      char *end, err[256];
      long long id = strtoll(argv[2], &end, 10);
      if (*end || end == argv[2]) {
        yz_host_close(h);
        return usage_error("outbox retry wants a message id or --dead");
      }
      if (yz_outbox_requeue(h->outbox, id, err, sizeof err) != YZ_OK) {
        fprintf(stderr, "yizhan: %s\n", err);
        rc = EXIT_FAIL;
      } else {
        yz_host_audit(h, "cli", "message.retry", argv[2], NULL);
        printf("message %lld queued again\n", id);
      }
    }
    yz_host_close(h);
    return rc;
  }
  for (int i = 1; i < argc; i++) {
    if ((v = opt_value(argc, argv, &i, "--status")))
      status = v;
    else if ((v = opt_value(argc, argv, &i, "--channel")))
      channel = v;
    else if ((v = opt_value(argc, argv, &i, "--since")))
      since = v;
    else if ((v = opt_value(argc, argv, &i, "--limit")))
      limit = atoi(v);
    else if (strcmp(argv[i], "--json") == 0)
      json = 1;
    else
      return usage_error(
          "usage: yizhan outbox [--status S] [--channel C] [--since "
          "'YYYY-MM-DD[ HH:MM]'] [--limit N] [--json] | show ID | retry "
          "ID|--dead | stats");
  }
  static const char *const states[] = {"queued", "sending", "sent", "delivered",
                                       "failed", "dead",    NULL};
  if (status) {
    int ok = 0;
    for (int i = 0; states[i]; i++) ok |= strcmp(status, states[i]) == 0;
    if (!ok)
      return usage_error(
          "--status is one of queued, sending, sent, delivered, failed, "
          "dead");
  }
  if (limit <= 0) return usage_error("--limit wants a number above 0");
  yz_host *h = open_host(dir);
  if (!h) return EXIT_FAIL;
  int64_t since_ms = 0;
  if (since) {
    int64_t t, days;
    if (yz_parse_local(since, h->cfg->timezone, &t) == 0)
      since_ms = t * 1000;
    else if (yz_parse_date(since, &days) == 0)
      since_ms = yz_clock_from_local(h->cfg->timezone, days, 0, 0, 0) * 1000;
    else {
      yz_host_close(h);
      return usage_error("--since wants 'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM'");
    }
  }
  yz_stmt *st;
  if (yz_store_prepare(h->store, NULL,
                       "SELECT id, key, channel, recipient, state, attempts, "
                       "parts, created_at, last_error FROM yz_outbox WHERE "
                       "(?1 IS NULL OR state = ?1) AND (?2 IS NULL OR "
                       "channel = ?2) AND created_at >= ?3 ORDER BY id DESC "
                       "LIMIT ?4",
                       &st) != YZ_OK) {
    fprintf(stderr, "yizhan: %s\n", yz_store_errmsg(h->store));
    yz_host_close(h);
    return EXIT_FAIL;
  }
  yz_value v1 = {.type = status ? YZ_TEXT : YZ_NULL,
                 .s = status,
                 .n = status ? strlen(status) : 0};
  yz_value v2 = {.type = channel ? YZ_TEXT : YZ_NULL,
                 .s = channel,
                 .n = channel ? strlen(channel) : 0};
  yz_value v3 = {.type = YZ_INT, .i = since_ms};
  yz_value v4 = {.type = YZ_INT, .i = limit};
  yz_stmt_bind(st, 1, &v1);
  yz_stmt_bind(st, 2, &v2);
  yz_stmt_bind(st, 3, &v3);
  yz_stmt_bind(st, 4, &v4);
  int n = list_messages(h, st, json);
  yz_stmt_release(st);
  if (!json && n == 0) printf("no messages\n");
  yz_host_close(h);
  return EXIT_OK;
}

/* ---------------------------------------------------------------- backup */

static int cmd_backup(const char *dir, int argc, char **argv) {
  if (argc != 2) return usage_error("backup takes one argument, the file");
  yz_host *h = open_host(dir);
  if (!h) return EXIT_FAIL;
  if (yz_store_backup(h->store, argv[1]) != YZ_OK) {
    fprintf(stderr, "yizhan: %s\n", yz_store_errmsg(h->store));
    yz_host_close(h);
    return EXIT_FAIL;
  }
  yz_host_audit(h, "cli", "backup", argv[1], NULL);
  struct stat st;
  long long size = stat(argv[1], &st) == 0 ? (long long)st.st_size : -1;
  printf("backed up %s to %s (%lld bytes, mode 0600, checked)\n",
         yz_store_path(h->store), argv[1], size);
  yz_host_close(h);
  return EXIT_OK;
}

/* ------------------------------------------------------------------ eval */

static int cmd_eval(const char *dir, int argc, char **argv) {
  if (argc != 3) return usage_error("usage: yizhan eval PLUGIN 'lua code'");
  yz_host *h = open_host(dir);
  if (!h) return EXIT_FAIL;
  yz_host_start(h);
  yz_plugin *p = yz_plugin_find(h, argv[1]);
  if (!p) {
    fprintf(stderr, "yizhan: no plugin '%s' on the plugin path\n", argv[1]);
    yz_host_close(h);
    return EXIT_FAIL;
  }
  yz_buf out;
  yz_buf_init(&out, 16u << 20);
  /* All or nothing, and one commit: a snippet that queues a month's
  ** messages writes them at once, or not at all if it fails. */
  int tx = yz_store_tx_begin(h->store) == YZ_OK;
  int rc = yz_plugin_eval(p, argv[2], &out);
  if (tx && rc == YZ_OK && yz_store_tx_commit(h->store) != YZ_OK) {
    yz_buf_reset(&out);
    yz_buf_addf(&out, "cannot commit: %s", yz_store_errmsg(h->store));
    rc = YZ_ERR;
  }
  if (rc != YZ_OK)
    while (yz_store_tx_depth(h->store) > 0) yz_store_tx_rollback(h->store);
  if (rc == YZ_OK) {
    if (out.len) printf("%s\n", yz_buf_str(&out));
  } else {
    fprintf(stderr, "yizhan: eval in %s: %s\n", argv[1], yz_buf_str(&out));
  }
  yz_buf_free(&out);
  yz_host_close(h);
  return rc == YZ_OK ? EXIT_OK : EXIT_FAIL;
}

/* ------------------------------------------------------------------ jobs */

static void print_time(const char *tz, const yz_value *v, char *dst, size_t n) {
  if (v->type == YZ_INT)
    yz_clock_iso_local(tz, v->i, dst, (unsigned)n);
  else
    yz_fmt(dst, n, "-");
}

static int cmd_jobs(const char *dir, int argc, char **argv) {
  (void)argv;
  if (argc != 1) return usage_error("jobs takes no arguments");
  yz_host *h = open_host(dir);
  if (!h) return EXIT_FAIL;
  yz_stmt *st;
  if (yz_store_prepare(h->store, NULL,
                       "SELECT plugin, name, spec, next_due, last_fired, "
                       "last_status, failures, last_error FROM yz_jobs "
                       "ORDER BY plugin, name",
                       &st) != YZ_OK) {
    fprintf(stderr, "yizhan: %s\n", yz_store_errmsg(h->store));
    yz_host_close(h);
    return EXIT_FAIL;
  }
  const char *tz = h->cfg->timezone;
  int rows = 0;
  printf("%-16s %-22s %-30s %-25s %-25s %s\n", "PLUGIN", "JOB", "SPEC", "NEXT",
         "LAST RUN", "RESULT");
  while (yz_stmt_step(st) == YZ_ROW) {
    yz_value v[8];
    for (int i = 0; i < 8; i++) yz_stmt_column(st, i, &v[i]);
    char next[40], last[40], result[64];
    print_time(tz, &v[3], next, sizeof next);
    if (v[3].type != YZ_INT) yz_fmt(next, sizeof next, "never");
    print_time(tz, &v[4], last, sizeof last);
    yz_fmt(result, sizeof result, "%s", v[5].type == YZ_TEXT ? v[5].s : "-");
    if (v[6].type == YZ_INT && v[6].i > 0) {
      size_t l = strlen(result);
      yz_fmt(result + l, sizeof result - l, " (%lld failure%s in a row)",
             (long long)v[6].i, v[6].i == 1 ? "" : "s");
    }
    printf("%-16s %-22s %-30s %-25s %-25s %s\n", v[0].s, v[1].s, v[2].s, next,
           last, result);
    if (v[7].type == YZ_TEXT && v[5].type == YZ_TEXT &&
        strcmp(v[5].s, "ok") != 0)
      print_indented(stdout, v[7].s);
    rows++;
  }
  yz_stmt_release(st);
  if (!rows)
    printf(
        "(no jobs: plugins register them with host.cron and "
        "friends when they start)\n");
  yz_host_close(h);
  return EXIT_OK;
}

/* Removes a scratch database (with its WAL and shared-memory files) and
** the folder made for it. */
static void remove_scratch(const char *db, const char *dir) {
  static const char *const suffix[] = {"", "-wal", "-shm"};
  for (int i = 0; i < 3; i++) {
    char side[4300];
    yz_fmt(side, sizeof side, "%s%s", db, suffix[i]);
    unlink(side);
  }
  rmdir(dir);
}

/* -------------------------------------------------------------- simulate */

/* Prints the captured log lines of one tick under the runs it made, then
** empties the capture. */
static void flush_capture(FILE *cap, char **buf, size_t *len, int json,
                          const char *only) {
  fflush(cap);
  if (!*len) return;
  /* Only the first *len bytes are this tick's: a memory stream keeps older,
  ** longer contents past its position after a rewind. */
  char *text = yz_xmalloc(*len + 1);
  memcpy(text, *buf, *len);
  text[*len] = '\0';
  for (char *line = text; line && *line;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = '\0';
    char plugin[128] = "";
    const char *p = strstr(line, " plugin=");
    if (p) sscanf(p + 8, "%127[^ ]", plugin);
    if (!only || strcmp(plugin, only) == 0) {
      if (json) {
        fputs("{\"log\":", stdout);
        put_json_str(stdout, line);
        fputs("}\n", stdout);
      } else {
        printf("    %s\n", line);
      }
    }
    line = nl ? nl + 1 : NULL;
  }
  free(text);
  rewind(cap);
}

typedef struct timeline {
  const char *tz;   /* zone for the times shown */
  const char *only; /* the plugin to show, or NULL for all */
  int json;         /* JSON lines instead of text */
  long runs;        /* runs shown */
  long sends;       /* messages shown */
  long events;      /* events shown */
  long parts;       /* their SMS parts */
} timeline;

/* A plugin emitted an event: one line of the timeline (its data is not
** shown: it may name children). */
static void print_event(yz_host *h, const char *topic, const char *json,
                        size_t n, const char *origin, void *ud) {
  timeline *v = ud;
  (void)json;
  if (v->only && strcmp(origin, v->only) != 0) return;
  char when[40];
  yz_clock_iso_local(v->tz, yz_clock_now_ms(&h->clock) / 1000, when,
                     sizeof when);
  if (v->json) {
    printf("{\"at\":\"%s\",\"event\":{\"topic\":", when);
    put_json_str(stdout, topic);
    printf(",\"from\":");
    put_json_str(stdout, origin);
    printf(",\"bytes\":%zu}}\n", n);
  } else {
    printf("%s  EVENT %s from %s (%zu bytes of data)\n", when, topic, origin,
           n);
  }
  v->events++;
}

/* A message would leave now: one line of the timeline (recipient masked). */
static void print_send(yz_host *h, const yz_msg *m, void *ud) {
  timeline *v = ud;
  if (v->only && (!m->plugin || strcmp(m->plugin, v->only) != 0)) return;
  char when[40], masked[32];
  yz_clock_iso_local(v->tz, yz_clock_now_ms(&h->clock) / 1000, when,
                     sizeof when);
  yz_phone_mask(m->to, masked, sizeof masked);
  if (v->json) {
    printf("{\"at\":\"%s\",\"send\":{\"to\":\"%s\",\"channel\":", when, masked);
    put_json_str(stdout, m->channel);
    printf(",\"plugin\":");
    put_json_str(stdout, m->plugin);
    printf(",\"job\":");
    put_json_str(stdout, m->job);
    printf(",\"key\":");
    put_json_str(stdout, m->key);
    printf(",\"parts\":%d,\"text\":", m->parts);
    put_json_str(stdout, m->text);
    if (m->tpl) {
      printf(",\"template\":");
      put_json_str(stdout, m->tpl);
      printf(",\"params\":%s", m->params ? m->params : "{}");
    }
    printf("}}\n");
  } else {
    printf("%s  SEND %s -> %s via %s (%d part%s, %s%s%s%s): %s\n", when,
           m->plugin ? m->plugin : "?", masked, m->channel, m->parts,
           m->parts == 1 ? "" : "s", m->job ? "job " : "key ",
           m->job ? m->job : m->key, m->tpl ? ", template " : "",
           m->tpl ? m->tpl : "", m->text);
  }
  v->sends++;
  v->parts += m->parts;
}

/* The scheduler starts a run: one line of the timeline. */
static void print_run(yz_host *h, const yz_job *j, int64_t scheduled,
                      void *ud) {
  timeline *v = ud;
  (void)h;
  if (v->only && strcmp(j->plugin, v->only) != 0) return;
  char when[40];
  yz_clock_iso_local(v->tz, scheduled, when, sizeof when);
  if (v->json)
    printf(
        "{\"at\":\"%s\",\"plugin\":\"%s\",\"job\":\"%s\",\"spec\":"
        "\"%s\"}\n",
        when, j->plugin, j->name, yz_spec_text(j->spec));
  else
    printf("%s  %s/%s  (%s)\n", when, j->plugin, j->name,
           yz_spec_text(j->spec));
  v->runs++;
}

static int cmd_simulate(const char *dir, int argc, char **argv) {
  const char *from = NULL, *to = NULL, *only = NULL;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--from") == 0 && i + 1 < argc)
      from = argv[++i];
    else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
      to = argv[++i];
    else if (strcmp(argv[i], "--plugin") == 0 && i + 1 < argc)
      only = argv[++i];
    else if (strcmp(argv[i], "--json") == 0)
      json = 1;
    else
      return usage_error(
          "usage: yizhan simulate --from YYYY-MM-DD --to "
          "YYYY-MM-DD [--plugin P] [--json]");
  }
  int64_t d0, d1;
  if (!from || !to || yz_parse_date(from, &d0) || yz_parse_date(to, &d1) ||
      d1 < d0)
    return usage_error(
        "simulate wants --from and --to as YYYY-MM-DD, "
        "--from not after --to");
  /* The copy: an online backup of the database into a private folder. */
  yz_host *orig = open_host(dir);
  if (!orig) return EXIT_FAIL;
  char tmpl[] = "/tmp/yizhan-simulate-XXXXXX";
  if (!mkdtemp(tmpl)) {
    fprintf(stderr, "yizhan: cannot make a scratch folder: %s\n",
            strerror(errno));
    yz_host_close(orig);
    return EXIT_FAIL;
  }
  char copy[4200];
  yz_fmt(copy, sizeof copy, "%s/copy.db", tmpl);
  int rc = yz_store_backup(orig->store, copy);
  if (rc != YZ_OK)
    fprintf(stderr, "yizhan: %s\n", yz_store_errmsg(orig->store));
  yz_host_close(orig);
  yz_host *h = NULL;
  char err[YZ_ERRMSG_MAX];
  if (rc == YZ_OK && yz_host_open_db(dir, copy, &h, err, sizeof err) != YZ_OK) {
    fprintf(stderr, "yizhan: %s\n", err);
    rc = YZ_ERR;
  }
  if (rc != YZ_OK) {
    remove_scratch(copy, tmpl);
    return EXIT_FAIL;
  }
  /* The copy's schedule starts afresh at --from: due times persisted by the
  ** real daemon belong to the real clock. */
  yz_store_exec(h->store, NULL, "DELETE FROM yz_jobs", NULL, 0);
  const char *tz = h->cfg->timezone;
  char *capbuf = NULL;
  size_t caplen = 0;
  FILE *cap = open_memstream(&capbuf, &caplen);
  h->log.out = cap;
  int64_t end_ms = yz_clock_from_local(tz, d1 + 1, 0, 0, 0) * 1000;
  yz_clock_simulate(&h->clock, yz_clock_from_local(tz, d0, 0, 0, 0) * 1000);
  timeline view = {tz, only, json, 0, 0, 0, 0};
  h->capture = print_send;
  h->capture_ud = &view;
  h->on_event = print_event;
  h->on_event_ud = &view;
  yz_host_start(h);
  if (!json)
    printf("simulating %s to %s in %s on a copy of the data\n", from, to, tz);
  flush_capture(cap, &capbuf, &caplen, json, only);
  h->on_run = print_run;
  h->on_run_ud = &view;
  for (long guard = 0; guard < 10000000; guard++) {
    int64_t wait = yz_host_tick(h);
    flush_capture(cap, &capbuf, &caplen, json, only);
    int64_t now = yz_clock_now_ms(&h->clock);
    if (wait < 0 || now + wait >= end_ms) break;
    yz_clock_advance(&h->clock, wait);
  }
  if (!json)
    printf(
        "%ld run%s, %ld event%s, %ld message%s (%ld SMS part%s); the "
        "original data was not touched and nothing was sent\n",
        view.runs, view.runs == 1 ? "" : "s", view.events,
        view.events == 1 ? "" : "s", view.sends, view.sends == 1 ? "" : "s",
        view.parts, view.parts == 1 ? "" : "s");
  yz_host_close(h);
  fclose(cap);
  free(capbuf);
  remove_scratch(copy, tmpl);
  return EXIT_OK;
}

/* ------------------------------------------------------------------ test */

/* Appends to *files the *_test.lua files of p. */
static void test_files(yz_plugin *p, char ***files, int *n) {
  if (!p->dir) {
    char path[4200];
    size_t len = strlen(p->file);
    yz_fmt(path, sizeof path, "%.*s_test.lua", (int)(len - 4), p->file);
    struct stat st;
    if (stat(path, &st) == 0) {
      *files = yz_xrealloc(*files, sizeof **files * (size_t)(*n + 1));
      (*files)[(*n)++] = yz_strdup(path);
    }
    return;
  }
  for (int pass = 0; pass < 2; pass++) {
    char folder[4200];
    yz_fmt(folder, sizeof folder, "%s%s", p->dir, pass ? "/tests" : "");
    DIR *d = opendir(folder);
    if (!d) continue;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      size_t len = strlen(e->d_name);
      if (len > 9 && strcmp(e->d_name + len - 9, "_test.lua") == 0) {
        char path[4600];
        yz_fmt(path, sizeof path, "%s/%s", folder, e->d_name);
        *files = yz_xrealloc(*files, sizeof **files * (size_t)(*n + 1));
        (*files)[(*n)++] = yz_strdup(path);
      }
    }
    closedir(d);
  }
}

/* Marks p and everything it requires, recursively, as enabled. */
static void enable_closure(yz_host *h, yz_plugin *p, char *mark) {
  for (int i = 0; i < h->nplugins; i++)
    if (h->plugins[i] == p) {
      if (mark[i]) return;
      mark[i] = 1;
    }
  for (int r = 0; r < p->nrequires; r++) {
    yz_plugin *d = yz_plugin_find(h, p->requires[r]);
    if (d) enable_closure(h, d, mark);
  }
}

/* Stands in for the test runner's capture while plugins start. */
static void drop_message(yz_host *h, const yz_msg *m, void *ud) {
  (void)h;
  (void)m;
  (void)ud;
}

/* Runs one test file of plugin 'name' on a fresh database. */
static void run_test_file(const char *dir, const char *name, const char *file,
                          int *passed, int *failed) {
  char tmpl[] = "/tmp/yizhan-test-XXXXXX", db[4200], err[YZ_ERRMSG_MAX];
  if (!mkdtemp(tmpl)) {
    printf("not ok - %s\n    cannot make a scratch folder\n", file);
    (*failed)++;
    return;
  }
  yz_fmt(db, sizeof db, "%s/test.db", tmpl);
  yz_host *h = NULL;
  if (yz_host_open_db(dir, db, &h, err, sizeof err) != YZ_OK) {
    printf("not ok - %s\n    %s\n", file, err);
    (*failed)++;
    rmdir(tmpl);
    return;
  }
  char *capbuf = NULL;
  size_t caplen = 0;
  FILE *cap = open_memstream(&capbuf, &caplen);
  h->log.out = cap;
  /* Only the plugin and what it requires run. */
  yz_plugins_discover(h);
  char *mark = yz_xcalloc((size_t)h->nplugins + 1, 1);
  enable_closure(h, yz_plugin_find(h, name), mark);
  for (int i = 0; i < h->nplugins; i++)
    yz_plugin_set_enabled(h->store, h->plugins[i]->name, mark[i]);
  free(mark);
  yz_clock_simulate(
      &h->clock, yz_clock_from_local(h->cfg->timezone,
                                     yz_days_from_civil(2026, 9, 1), 8, 0, 0) *
                     1000);
  /* Messages are captured (the test runner's t.sent): no channel plugin
  ** needs to run. */
  h->capture = drop_message;
  yz_host_start(h);
  yz_plugin *p = yz_plugin_find(h, name);
  if (!p || p->state != YZ_PS_OK) {
    printf("not ok - %s\n    the plugin did not start: %s\n", file,
           p && p->error ? p->error : "?");
    (*failed)++;
  } else {
    printf("# %s\n", file);
    yz_lapi_run_tests(h, p, file, cap, &capbuf, &caplen, stdout, passed,
                      failed);
  }
  yz_host_close(h);
  fclose(cap);
  free(capbuf);
  remove_scratch(db, tmpl);
}

static int cmd_test(const char *dir, int argc, char **argv) {
  /* Finding the plugins needs a host, not the real database: tests never
  ** touch it (and a checkout of examples/ gains no file). */
  char tmpl[] = "/tmp/yizhan-test-XXXXXX", probe_db[4200], err[YZ_ERRMSG_MAX];
  if (!mkdtemp(tmpl)) {
    fprintf(stderr, "yizhan: cannot make a scratch folder: %s\n",
            strerror(errno));
    return EXIT_FAIL;
  }
  yz_fmt(probe_db, sizeof probe_db, "%s/probe.db", tmpl);
  yz_host *probe = NULL;
  if (yz_host_open_db(dir, probe_db, &probe, err, sizeof err) != YZ_OK) {
    fprintf(stderr, "yizhan: %s\n", err);
    rmdir(tmpl);
    return EXIT_FAIL;
  }
  yz_plugins_discover(probe);
  int passed = 0, failed = 0, files_run = 0;
  for (int i = 0; i < probe->nplugins; i++) {
    yz_plugin *p = probe->plugins[i];
    int wanted = argc == 1;
    for (int a = 1; a < argc; a++) wanted |= strcmp(argv[a], p->name) == 0;
    if (!wanted) continue;
    char **files = NULL;
    int n = 0;
    test_files(p, &files, &n);
    for (int f = 0; f < n; f++) {
      run_test_file(dir, p->name, files[f], &passed, &failed);
      files_run++;
      free(files[f]);
    }
    free(files);
    if (!n && argc > 1) {
      printf("not ok - %s\n    no *_test.lua files next to %s\n", p->name,
             p->file);
      failed++;
    }
  }
  for (int a = 1; a < argc; a++)
    if (!yz_plugin_find(probe, argv[a])) {
      printf("not ok - %s\n    no such plugin on the plugin path\n", argv[a]);
      failed++;
    }
  yz_host_close(probe);
  remove_scratch(probe_db, tmpl);
  printf("%d passed, %d failed\n", passed, failed);
  if (!files_run && !failed) {
    fprintf(stderr, "yizhan: no plugin tests found\n");
    return EXIT_FAIL;
  }
  return failed ? EXIT_FAIL : EXIT_OK;
}

/* ------------------------------------------------------------------ spec */

static int cmd_spec(const char *dir, int argc, char **argv) {
  const char *text = NULL, *from = NULL, *tz = NULL;
  long count = 5;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--from") == 0 && i + 1 < argc) {
      from = argv[++i];
    } else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
      char *end;
      count = strtol(argv[++i], &end, 10);
      if (*end || count < 1 || count > 100000)
        return usage_error("--count wants a number from 1 to 100000");
    } else if (strcmp(argv[i], "--tz") == 0 && i + 1 < argc) {
      tz = argv[++i];
    } else if (!text && argv[i][0] != '-') {
      text = argv[i];
    } else {
      return usage_error(
          "usage: yizhan spec 'SPEC' [--from 'YYYY-MM-DD "
          "HH:MM'] [--count N] [--tz ZONE]");
    }
  }
  if (!text) return usage_error("spec needs a schedule to check");
  /* The data directory's config supplies the zone and the calendar when
  ** there is one; without it the defaults do, so anyone can check a spec. */
  char path[4096], err[YZ_ERRMSG_MAX];
  yz_fmt(path, sizeof path, "%s/yizhan.conf.lua", dir);
  yz_config *cfg = NULL;
  struct stat st;
  if (stat(path, &st) == 0) {
    if (yz_config_load(path, &cfg, err, sizeof err) != YZ_OK) {
      fprintf(stderr, "yizhan: %s\n", err);
      return EXIT_FAIL;
    }
  } else {
    cfg = yz_config_defaults();
  }
  if (!tz) tz = cfg->timezone;
  int rc = EXIT_OK;
  yz_spec *spec = NULL;
  int64_t t;
  if (!yz_clock_zone_exists(tz)) {
    fprintf(stderr, "yizhan: unknown time zone '%s'\n", tz);
    rc = EXIT_USAGE;
  } else if (from && yz_parse_local(from, tz, &t) != 0) {
    fprintf(stderr, "yizhan: --from '%s': expected 'YYYY-MM-DD HH:MM'\n", from);
    rc = EXIT_USAGE;
  } else if (yz_spec_parse(text, &cfg->calendar, &spec, err, sizeof err) !=
             YZ_OK) {
    fprintf(stderr, "yizhan: %s\n", err);
    rc = EXIT_FAIL;
  } else {
    if (!from) {
      yz_clock clock;
      yz_clock_init(&clock);
      t = yz_clock_now_ms(&clock) / 1000;
    }
    for (long i = 0; i < count; i++) {
      if (yz_spec_next(spec, tz, t, &t) != YZ_OK) {
        fprintf(stderr, "yizhan: \"%s\" fires no more%s\n", text,
                i ? " after that" : "");
        break;
      }
      char iso[40];
      yz_clock_iso_local(tz, t, iso, sizeof iso);
      printf("%s\n", iso);
    }
  }
  yz_spec_free(spec);
  yz_config_free(cfg);
  return rc;
}

/* ------------------------------------------------------------------ help */

static int cmd_commands(const char *dir, int argc, char **argv);

static const cmd commands[] = {
    {"init", cmd_init, "init DIR",
     "Creates DIR/yizhan.conf.lua (every option, commented, with its "
     "default),\n"
     "DIR/yizhan.db and DIR/plugins/. Refuses to overwrite an existing one."},
    {"check", cmd_check, "check",
     "Loads the configuration and every enabled plugin, applies migrations,\n"
     "runs each setup and prints each plugin's state. Exits 0 only if all\n"
     "are healthy."},
    {"plugins", cmd_plugins, "plugins",
     "Lists the plugins on the plugin path (shipped, plugin_path, "
     "DIR/plugins)\n"
     "with version, whether and why enabled, last recorded state and error."},
    {"plugin", cmd_plugin, "plugin enable|disable NAME",
     "Enables or disables a plugin in the database; this overrides the\n"
     "configuration's 'plugins' table until changed again."},
    {"run", cmd_run, "run [--until-idle]",
     "Runs the daemon in the foreground: jobs, events and message delivery.\n"
     "SIGINT/SIGTERM stop it cleanly, SIGHUP reloads the configuration and\n"
     "plugins without a restart. Messages a crash left 'sending' are in\n"
     "doubt and sent again with the same key. --until-idle does what is due\n"
     "now, delivers until nothing may go or is in flight, then exits (for\n"
     "cron-style deployments); what waits (retries, quiet hours) is said."},
    {"backup", cmd_backup, "backup FILE",
     "Writes a consistent copy of the database to FILE (mode 0600) while the\n"
     "daemon keeps running, checks it, then moves it into place."},
    {"eval", cmd_eval, "eval PLUGIN 'lua code'",
     "Runs a snippet inside PLUGIN's sandbox, with 'host' and 'options' in\n"
     "scope, and prints the result. An expression shows its value."},
    {"jobs", cmd_jobs, "jobs",
     "Lists every persistent job: plugin, name, spec, next fire and last\n"
     "run in local time, and the last result (with the error when it\n"
     "failed or was skipped)."},
    {"send", cmd_send,
     "send --to NUMBER --text TEXT [--channel C] [--key K] [--wait "
     "[--timeout S]]",
     "Queues one message (the number is checked and normalised; the key,\n"
     "when given, makes a second send with it a no-op). With --wait it waits\n"
     "for the outcome and prints it; when no 'yizhan run' is running it\n"
     "delivers the message itself. Exits 0 when sent."},
    {"outbox", cmd_outbox,
     "outbox [--status S] [--channel C] [--since T] [--limit N] [--json]\n"
     "       outbox show ID | retry ID | retry --dead | stats [--json]",
     "Lists messages, newest first, with recipients masked; 'show' prints\n"
     "one message in full (with its last error); 'retry' queues a failed or\n"
     "dead message again (--dead: all dead ones); 'stats' counts messages\n"
     "and SMS parts per channel and state."},
    {"simulate", cmd_simulate,
     "simulate --from YYYY-MM-DD --to YYYY-MM-DD [--plugin P] [--json]",
     "Runs the enabled plugins on a copy of the database (the original is\n"
     "never touched) with a simulated clock that jumps from due time to due\n"
     "time, and prints the timeline: when, which plugin and job, and what\n"
     "it logged. --plugin shows one plugin's part; --json prints JSON\n"
     "lines."},
    {"test", cmd_test, "test [PLUGIN...]",
     "Runs the *_test.lua files next to each plugin (all plugins with tests,\n"
     "or the ones named), each file on a fresh database with a fake clock\n"
     "starting 2026-09-01 08:00. Prints ok / not ok per test with the file\n"
     "and line of a failed assertion; exits 0 only if all pass."},
    {"spec", cmd_spec,
     "spec 'SPEC' [--from 'YYYY-MM-DD HH:MM'] [--count N] [--tz ZONE]",
     "Prints the next N (default 5) times a schedule fires, one a line as\n"
     "YYYY-MM-DDTHH:MM:SS+hh:mm in local time, or why the spec is wrong.\n"
     "The zone and the school calendar come from DIR's configuration when\n"
     "there is one. Specs: 5-field cron ('0 9 1 * *', names, ranges, steps,\n"
     "L), @daily and the like, 'every 15m', 'at 2026-12-01 09:00', and\n"
     "calendar dates: 'on term.start 08:00', '3 days before term.end 09:00',\n"
     "'on spring_festival -7 days 09:00'."},
    {"commands", cmd_commands, "commands",
     "Lists the commands the enabled plugins add (yizhan registry import,\n"
     "yizhan report, ...), with their usage and the plugin of each."},
    {NULL, NULL, NULL, NULL}};

/* yizhan commands: what the enabled plugins add. */
static int cmd_commands(const char *dir, int argc, char **argv) {
  (void)argv;
  if (argc != 1) return usage_error("commands takes no arguments");
  yz_host *h = open_host(dir);
  if (!h) return EXIT_FAIL;
  yz_host_start(h);
  yz_cmd_list(h, NULL, stdout);
  yz_host_close(h);
  return EXIT_OK;
}

/* A command some plugin adds ('yizhan registry import kids.csv'). */
static int plugin_command(const char *dir, int argc, char **argv) {
  yz_host *h = NULL;
  char err[YZ_ERRMSG_MAX];
  if (yz_host_open(dir, &h, err, sizeof err) != YZ_OK) {
    fprintf(stderr,
            "yizhan: unknown command '%s' (and no data directory to look "
            "for plugins' commands in: %s)\n",
            argv[0], err);
    return EXIT_USAGE;
  }
  yz_host_start(h);
  int words;
  yz_plugin *p = yz_cmd_find(h, argc, argv, &words);
  int rc;
  if (!p) {
    yz_plugin *named = yz_plugin_find(h, argv[0]);
    if (named && !named->enabled)
      fprintf(stderr,
              "yizhan: '%s' is a command of plugin '%s', which is not "
              "enabled (add it to 'plugins' in yizhan.conf.lua, or run "
              "'yizhan plugin enable %s')\n",
              argv[0], argv[0], argv[0]);
    else if (named && named->state != YZ_PS_OK)
      fprintf(stderr, "yizhan: plugin '%s' is not running (%s)%s%s\n", argv[0],
              yz_plugin_state_name(named->state), named->error ? ": " : "",
              named->error ? named->error : "");
    else {
      fprintf(stderr, "yizhan: unknown command '%s%s%s'\n", argv[0],
              argc > 1 ? " " : "", argc > 1 ? argv[1] : "");
      if (named) {
        fprintf(stderr, "the commands of plugin '%s':\n", argv[0]);
        yz_cmd_list(h, argv[0], stderr);
      } else {
        fputs(
            "see 'yizhan --help', and 'yizhan commands' for the commands "
            "plugins add\n",
            stderr);
      }
    }
    rc = named && (!named->enabled || named->state != YZ_PS_OK) ? EXIT_FAIL
                                                                : EXIT_USAGE;
  } else if (wants_help(argc - words + 1, argv + words - 1)) {
    yz_cmd_list(h, p->name, stdout); /* the commands of its plugin */
    rc = EXIT_OK;
  } else {
    rc = yz_cmd_run(h, p, words, argc, argv, NULL, stdin, stdout, stderr);
    if (rc < 0 || rc > 255) rc = EXIT_FAIL; /* what a process can say */
  }
  yz_host_close(h);
  return rc;
}

static void print_help(FILE *f) {
  fputs("yizhan " YZ_VERSION
        " - a scripting host for the care of left-behind "
        "children\n\n"
        "usage: yizhan [-d DIR] COMMAND [ARGS]\n\n"
        "  -d DIR      the data directory (default: $YIZHAN_HOME, else .)\n"
        "  --help      this text; 'yizhan COMMAND --help' for one command\n"
        "  --version   the version\n\ncommands:\n",
        f);
  for (const cmd *c = commands; c->name; c++) fprintf(f, "  %s\n", c->usage);
  fputs(
      "\nPlugins add commands of their own: 'yizhan commands' lists "
      "them.\nExit status: 0 success, 1 failure, 2 usage error.\n",
      f);
}

int yz_cli_main(int argc, char **argv) {
  /* SIGUSR1 only ever means "look at the outbox" (see nudge_daemon): it is
  ** blocked for good, and the event loop reads it from its signalfd. */
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigprocmask(SIG_BLOCK, &usr1, NULL);
  const char *dir = getenv("YIZHAN_HOME");
  if (!dir || !*dir) dir = ".";
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    if (strcmp(argv[i], "-d") == 0) {
      if (i + 1 >= argc) return usage_error("-d needs a directory");
      dir = argv[++i];
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      print_help(stdout);
      return EXIT_OK;
    } else if (strcmp(argv[i], "--version") == 0) {
      printf("yizhan %s\n", YZ_VERSION);
      return EXIT_OK;
    } else {
      return usage_error("unknown option '%s'", argv[i]);
    }
  }
  if (i >= argc) {
    print_help(stderr);
    return EXIT_USAGE;
  }
  const char *name = argv[i];
  if (strcmp(name, "help") == 0) {
    if (i + 1 < argc)
      name = argv[i + 1];
    else {
      print_help(stdout);
      return EXIT_OK;
    }
    for (const cmd *c = commands; c->name; c++)
      if (strcmp(c->name, name) == 0) {
        printf("usage: yizhan [-d DIR] %s\n\n%s\n", c->usage, c->help);
        return EXIT_OK;
      }
    return usage_error("unknown command '%s'", name);
  }
  for (const cmd *c = commands; c->name; c++) {
    if (strcmp(c->name, name) != 0) continue;
    if (wants_help(argc - i, argv + i)) {
      printf("usage: yizhan [-d DIR] %s\n\n%s\n", c->usage, c->help);
      return EXIT_OK;
    }
    return c->run(dir, argc - i, argv + i);
  }
  return plugin_command(dir, argc - i, argv + i);
}

int yz_cli_is_builtin(const char *word) {
  if (strcmp(word, "help") == 0) return 1;
  for (const cmd *c = commands; c->name; c++)
    if (strcmp(c->name, word) == 0) return 1;
  return 0;
}
