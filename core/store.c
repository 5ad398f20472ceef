/*
** store.c: the SQLite connection (see store.h).
**
** Divided into: opening and pragmas; the authorizer that enforces plugin
** access; the statement cache; statements; transactions; migrations;
** key/value and audit; backup.
*/
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#define CACHE_SLOTS 256     /* cached prepared statements per connection */
#define PROGRESS_EVERY 1000 /* SQLite VM steps between CPU budget checks */

struct yz_stmt {
  yz_store *s;        /* the connection */
  sqlite3_stmt *st;   /* the prepared statement */
  const yz_acl *acl;  /* principal it was prepared for (NULL: core) */
  char *sql;          /* its text, the cache key with acl */
  uint64_t hash;      /* hash of (acl, sql) */
  unsigned long used; /* last use tick, for eviction */
};

struct yz_store {
  sqlite3 *db;                 /* the connection */
  char *path;                  /* database file */
  const yz_acl *acl;           /* principal of the current prepare/step */
  char denied[512];            /* why the authorizer last said no */
  yz_stmt *cache[CACHE_SLOTS]; /* idle prepared statements */
  unsigned long tick;          /* use counter for the cache */
  int hits, misses;            /* cache counters */
  int tx_depth;                /* nesting of yz_store_tx_begin */
  int lazy;                    /* a lazy BEGIN waits for the first statement */
  char err[YZ_ERRMSG_MAX];     /* last error */
};

static const char *const core_steps[] = {
    /* 1: the core tables */
    "CREATE TABLE yz_plugins("
    "  name TEXT PRIMARY KEY,"
    "  enabled INTEGER CHECK (enabled IN (0, 1)),"
    "  version TEXT,"
    "  state TEXT NOT NULL DEFAULT 'unknown'"
    "    CHECK (state IN ('unknown', 'ok', 'failed', 'quarantined')),"
    "  last_error TEXT,"
    "  failures INTEGER NOT NULL DEFAULT 0,"
    "  updated_at TEXT);"
    "CREATE TABLE yz_kv("
    "  plugin TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  updated_at TEXT NOT NULL,"
    "  PRIMARY KEY (plugin, key)) WITHOUT ROWID;"
    "CREATE TABLE yz_audit("
    "  id INTEGER PRIMARY KEY,"
    "  at TEXT NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  subject TEXT,"
    "  detail TEXT);"
    "CREATE INDEX yz_audit_at ON yz_audit(at);",
    /* 2: persistent jobs */
    "CREATE TABLE yz_jobs("
    "  plugin TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  spec TEXT NOT NULL,"
    "  next_due INTEGER,"
    "  grace INTEGER NOT NULL DEFAULT 86400,"
    "  last_fired INTEGER,"
    "  last_status TEXT"
    "    CHECK (last_status IN ('running', 'ok', 'failed', 'skipped')),"
    "  last_error TEXT,"
    "  failures INTEGER NOT NULL DEFAULT 0,"
    "  running_for INTEGER,"
    "  seen INTEGER NOT NULL DEFAULT 1,"
    "  updated_at TEXT,"
    "  PRIMARY KEY (plugin, name)) WITHOUT ROWID;",
    /* 3: the outbox (times in ms since the epoch) */
    "CREATE TABLE yz_outbox("
    "  id INTEGER PRIMARY KEY,"
    "  key TEXT NOT NULL UNIQUE,"
    "  channel TEXT NOT NULL,"
    "  recipient TEXT NOT NULL,"
    "  text TEXT NOT NULL,"
    "  ucs2 INTEGER NOT NULL CHECK (ucs2 IN (0, 1)),"
    "  parts INTEGER NOT NULL CHECK (parts >= 1),"
    "  meta TEXT,"
    "  plugin TEXT,"
    "  job TEXT,"
    "  state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', "
    "    'sending', 'sent', 'delivered', 'failed', 'dead')),"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  in_doubt INTEGER NOT NULL DEFAULT 0,"
    "  next_at INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  sent_at INTEGER,"
    "  delivered_at INTEGER,"
    "  gateway_id TEXT,"
    "  last_error TEXT,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE INDEX yz_outbox_due ON yz_outbox(channel, next_at)"
    "  WHERE state IN ('queued', 'failed');",
    /* 4: template messages, and receipts polled from the provider */
    "ALTER TABLE yz_outbox ADD COLUMN template TEXT;"
    "ALTER TABLE yz_outbox ADD COLUMN params TEXT;"
    "ALTER TABLE yz_outbox ADD COLUMN polled_at INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX yz_outbox_awaiting ON yz_outbox(channel, polled_at, id)"
    "  WHERE state = 'sent';"
    "CREATE INDEX yz_outbox_gateway ON yz_outbox(gateway_id)"
    "  WHERE gateway_id IS NOT NULL;",
};

static void set_err(yz_store *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_err(yz_store *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->err, sizeof s->err, fmt, ap);
  va_end(ap);
}

/* Records the SQLite error of the last call, preferring the authorizer's
** reason when the failure was a denial. Returns the matching YZ code. */
static int sql_err(yz_store *s, int rc, const char *what) {
  int prim = rc & 0xff;
  if (prim == SQLITE_AUTH && s->denied[0]) {
    set_err(s, "%s", s->denied);
    return YZ_EDENIED;
  }
  if (prim == SQLITE_INTERRUPT && s->denied[0]) {
    set_err(s, "%s", s->denied); /* the CPU budget ran out (see progress) */
    return YZ_ERR;
  }
  set_err(s, "%s: %s", what, sqlite3_errmsg(s->db));
  if (prim == SQLITE_NOMEM) return YZ_ENOMEM;
  if (prim == SQLITE_CONSTRAINT &&
      (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY))
    return YZ_EEXIST;
  return YZ_ERR;
}

const char *yz_store_errmsg(const yz_store *s) {
  return s ? s->err : "";
}
const char *yz_store_path(const yz_store *s) {
  return s->path;
}

/* ---------------------------------------------------------------- access */

static int in_list(char *const *list, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (strcasecmp(list[i], name) == 0) return 1;
  return 0;
}

static int is_schema_table(const char *t) {
  return strcasecmp(t, "sqlite_master") == 0 ||
         strcasecmp(t, "sqlite_schema") == 0 ||
         strcasecmp(t, "sqlite_temp_master") == 0 ||
         strcasecmp(t, "sqlite_temp_schema") == 0;
}

static int is_core_table(const char *t) {
  return strncasecmp(t, "yz_", 3) == 0 || strncasecmp(t, "sqlite_", 7) == 0;
}

static int may_read(const yz_acl *a, const char *t) {
  if (is_core_table(t)) return 0;
  return in_list(a->owns, a->nowns, t) || in_list(a->read, a->nread, t) ||
         in_list(a->write, a->nwrite, t);
}

static int may_write(const yz_acl *a, const char *t) {
  if (is_core_table(t)) return 0;
  return in_list(a->owns, a->nowns, t) || in_list(a->write, a->nwrite, t);
}

static int owns(const yz_acl *a, const char *t) {
  return !is_core_table(t) && in_list(a->owns, a->nowns, t);
}

static int deny(yz_store *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int deny(yz_store *s, const char *fmt, ...) {
  int n = snprintf(s->denied, sizeof s->denied,
                   "plugin '%s': ", s->acl->who ? s->acl->who : "?");
  va_list ap;
  va_start(ap, fmt);
  if (n > 0 && (size_t)n < sizeof s->denied)
    vsnprintf(s->denied + n, sizeof s->denied - (size_t)n, fmt, ap);
  va_end(ap);
  return SQLITE_DENY;
}

static int authorizer(void *ud, int action, const char *a1, const char *a2,
                      const char *dbname, const char *trigger) {
  yz_store *s = ud;
  const yz_acl *a = s->acl;
  (void)dbname;
  (void)trigger;
  if (!a) return SQLITE_OK; /* the core */
  a1 = a1 ? a1 : "";
  a2 = a2 ? a2 : "";
  switch (action) {
    case SQLITE_SELECT:
    case SQLITE_RECURSIVE:
    case SQLITE_FUNCTION: return SQLITE_OK;
    case SQLITE_READ:
      if (may_read(a, a1)) return SQLITE_OK;
      if (a->migrating && is_schema_table(a1)) return SQLITE_OK;
      return deny(s,
                  "reading table '%s' is not allowed (not in owns, "
                  "access.read or access.write)",
                  a1);
    case SQLITE_INSERT:
    case SQLITE_UPDATE:
    case SQLITE_DELETE:
      if (a->migrating && is_schema_table(a1)) return SQLITE_OK;
      if (may_write(a, a1)) return SQLITE_OK;
      return deny(s,
                  "writing table '%s' is not allowed (not in owns or "
                  "access.write)",
                  a1);
    case SQLITE_CREATE_TABLE:
    case SQLITE_DROP_TABLE:
    case SQLITE_CREATE_VIEW:
    case SQLITE_DROP_VIEW:
      if (!a->migrating)
        return deny(s, "schema changes are allowed only in migrations");
      if (owns(a, a1)) return SQLITE_OK;
      /* SQLite creates sqlite_sequence itself for the first AUTOINCREMENT
      ** table; a statement naming it is refused by SQLite anyway. */
      if (action == SQLITE_CREATE_TABLE &&
          strcasecmp(a1, "sqlite_sequence") == 0)
        return SQLITE_OK;
      return deny(s, "table or view '%s' is not in the plugin's owns list", a1);
    case SQLITE_CREATE_INDEX:
    case SQLITE_DROP_INDEX:
    case SQLITE_CREATE_TRIGGER:
    case SQLITE_DROP_TRIGGER:
      if (!a->migrating)
        return deny(s, "schema changes are allowed only in migrations");
      if (owns(a, a2)) return SQLITE_OK;
      return deny(s, "'%s' is on table '%s', which the plugin does not own", a1,
                  a2);
    case SQLITE_REINDEX: /* CREATE INDEX builds its index through this */
    case SQLITE_ANALYZE:
      if (a->migrating) return SQLITE_OK;
      return deny(s, "%s is allowed only in migrations",
                  action == SQLITE_REINDEX ? "REINDEX" : "ANALYZE");
    case SQLITE_ALTER_TABLE:
      if (a->migrating && owns(a, a2)) return SQLITE_OK;
      return deny(s,
                  "altering table '%s' is allowed only in migrations of "
                  "its owner",
                  a2);
    case SQLITE_PRAGMA:
      /* Read-only introspection of tables the plugin may read. */
      if ((strcasecmp(a1, "table_info") == 0 ||
           strcasecmp(a1, "table_xinfo") == 0 ||
           strcasecmp(a1, "index_list") == 0 ||
           strcasecmp(a1, "foreign_key_list") == 0) &&
          may_read(a, a2))
        return SQLITE_OK;
      return deny(s, "PRAGMA %s is not allowed in plugins", a1);
    case SQLITE_ATTACH: return deny(s, "ATTACH is not allowed in plugins");
    case SQLITE_DETACH: return deny(s, "DETACH is not allowed in plugins");
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT:
      return deny(s, "transactions are managed by the host: use host.db.tx");
    default:
      return deny(s,
                  "this kind of statement (authorizer action %d) is not "
                  "allowed in plugins",
                  action);
  }
}

/* Charges a plugin's running statement to its CPU budget, the same one its
** Lua code spends, and interrupts the statement once the budget is gone: a
** query that never ends (a recursive CTE, a huge join) cannot stall the host.
** The core (no principal) is not limited. */
static int progress(void *ud) {
  yz_store *s = ud;
  const yz_acl *a = s->acl;
  if (!a || !a->steps) return 0;
  *a->steps += PROGRESS_EVERY;
  if (!a->step_limit || *a->steps <= a->step_limit) return 0;
  snprintf(s->denied, sizeof s->denied,
           "plugin '%s': CPU budget exceeded "
           "in SQL (more than %lld instructions)",
           a->who ? a->who : "?", a->step_limit);
  return 1;
}

/* ----------------------------------------------------------------- open */

static int apply_pragmas(yz_store *s) {
  static const char *const pragmas =
      "PRAGMA journal_mode=WAL;"
      "PRAGMA synchronous=NORMAL;"
      "PRAGMA foreign_keys=ON;"
      "PRAGMA trusted_schema=OFF;";
  char *msg = NULL;
  int rc = sqlite3_exec(s->db, pragmas, NULL, NULL, &msg);
  if (rc != SQLITE_OK) {
    set_err(s, "%s: setting pragmas: %s", s->path, msg ? msg : "?");
    sqlite3_free(msg);
    return YZ_ERR;
  }
  return YZ_OK;
}

static int ensure_file(const char *path, char *err, size_t errlen) {
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    yz_fmt(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return YZ_ERR;
  }
  /* The file holds records of minors: nobody but its owner reads it. */
  if (fchmod(fd, 0600) != 0) {
    yz_fmt(err, errlen, "%s: cannot set mode 0600: %s", path, strerror(errno));
    close(fd);
    return YZ_ERR;
  }
  close(fd);
  return YZ_OK;
}

int yz_store_open(yz_store **out, const char *path, char *err, size_t errlen) {
  *out = NULL;
  if (ensure_file(path, err, errlen) != YZ_OK) return YZ_ERR;
  yz_store *s = yz_xcalloc(1, sizeof *s);
  s->path = yz_strdup(path);
  int rc = sqlite3_open_v2(
      path, &s->db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
      NULL);
  if (rc != SQLITE_OK) {
    yz_fmt(err, errlen, "%s: %s", path,
           s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
    yz_store_close(s);
    return YZ_ERR;
  }
  sqlite3_busy_timeout(s->db, 5000);
  sqlite3_extended_result_codes(s->db, 1);
  sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
  sqlite3_db_config(s->db, SQLITE_DBCONFIG_DQS_DML, 0, NULL);
  sqlite3_db_config(s->db, SQLITE_DBCONFIG_DQS_DDL, 0, NULL);
  sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
  sqlite3_set_authorizer(s->db, authorizer, s);
  sqlite3_progress_handler(s->db, PROGRESS_EVERY, progress, s);
  if (apply_pragmas(s) != YZ_OK ||
      yz_store_migrate(s, "core", core_steps,
                       (int)(sizeof core_steps / sizeof core_steps[0]), NULL,
                       NULL) != YZ_OK) {
    yz_fmt(err, errlen, "%s", s->err);
    yz_store_close(s);
    return YZ_ERR;
  }
  *out = s;
  return YZ_OK;
}

static void stmt_free(yz_stmt *st) {
  if (!st) return;
  sqlite3_finalize(st->st);
  free(st->sql);
  free(st);
}

void yz_store_close(yz_store *s) {
  if (!s) return;
  for (int i = 0; i < CACHE_SLOTS; i++) stmt_free(s->cache[i]);
  if (s->db) sqlite3_close(s->db);
  free(s->path);
  free(s);
}

/* ---------------------------------------------------------------- cache */

static uint64_t key_hash(const yz_acl *acl, const char *sql) {
  uint64_t h = 1469598103934665603ULL ^ (uint64_t)(uintptr_t)acl;
  for (const unsigned char *p = (const unsigned char *)sql; *p; p++) {
    h ^= *p;
    h *= 1099511628211ULL;
  }
  return h;
}

/* Takes a matching idle statement out of the cache, or returns NULL. */
static yz_stmt *cache_take(yz_store *s, const yz_acl *acl, const char *sql,
                           uint64_t h) {
  int slot = (int)(h % CACHE_SLOTS);
  for (int i = 0; i < CACHE_SLOTS; i++) {
    int j = (slot + i) % CACHE_SLOTS;
    yz_stmt *st = s->cache[j];
    if (!st) return NULL;
    if (st->hash == h && st->acl == acl && strcmp(st->sql, sql) == 0) {
      /* Remove it, then re-insert the entries that followed it in its
      ** probe run so lookups keep finding them. */
      s->cache[j] = NULL;
      for (int k = (j + 1) % CACHE_SLOTS; s->cache[k];
           k = (k + 1) % CACHE_SLOTS) {
        yz_stmt *moved = s->cache[k];
        s->cache[k] = NULL;
        int p = (int)(moved->hash % CACHE_SLOTS);
        while (s->cache[p]) p = (p + 1) % CACHE_SLOTS;
        s->cache[p] = moved;
      }
      return st;
    }
  }
  return NULL;
}

static int cache_count(const yz_store *s) {
  int n = 0;
  for (int i = 0; i < CACHE_SLOTS; i++) n += s->cache[i] != NULL;
  return n;
}

/* Evicts the least recently used idle statement. */
static void cache_evict(yz_store *s) {
  int victim = -1;
  for (int i = 0; i < CACHE_SLOTS; i++)
    if (s->cache[i] &&
        (victim < 0 || s->cache[i]->used < s->cache[victim]->used))
      victim = i;
  if (victim < 0) return;
  yz_stmt *st = s->cache[victim];
  yz_stmt *taken = cache_take(s, st->acl, st->sql, st->hash);
  stmt_free(taken);
}

static void cache_put(yz_store *s, yz_stmt *st) {
  /* Keep the table at most three quarters full so probe runs stay short. */
  if (cache_count(s) >= CACHE_SLOTS * 3 / 4) cache_evict(s);
  int p = (int)(st->hash % CACHE_SLOTS);
  while (s->cache[p]) {
    yz_stmt *o = s->cache[p];
    if (o->hash == st->hash && o->acl == st->acl &&
        strcmp(o->sql, st->sql) == 0) {
      stmt_free(st); /* an identical one is already idle */
      return;
    }
    p = (p + 1) % CACHE_SLOTS;
  }
  s->cache[p] = st;
}

void yz_store_forget(yz_store *s, const yz_acl *acl) {
  if (!s) return;
  int again = 1;
  while (again) {
    again = 0;
    for (int i = 0; i < CACHE_SLOTS; i++) {
      yz_stmt *st = s->cache[i];
      if (st && st->acl == acl) {
        stmt_free(cache_take(s, st->acl, st->sql, st->hash));
        again = 1;
        break;
      }
    }
  }
}

void yz_store_cache_stats(const yz_store *s, int *hits, int *misses) {
  if (hits) *hits = s->hits;
  if (misses) *misses = s->misses;
}

/* ----------------------------------------------------------- statements */

/* True when 'tail' holds nothing but white space, comments and ';'. */
static int only_trivia(const char *p) {
  for (;;) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ';')
      p++;
    if (p[0] == '-' && p[1] == '-') {
      while (*p && *p != '\n') p++;
    } else if (p[0] == '/' && p[1] == '*') {
      const char *end = strstr(p + 2, "*/");
      if (!end) return 1;
      p = end + 2;
    } else {
      return *p == '\0';
    }
  }
}

static int materialize(yz_store *s);

int yz_store_prepare(yz_store *s, const yz_acl *acl, const char *sql,
                     yz_stmt **out) {
  *out = NULL;
  if (s->lazy) {
    int rc = materialize(s);
    if (rc != YZ_OK) return rc;
  }
  uint64_t h = key_hash(acl, sql);
  yz_stmt *st = cache_take(s, acl, sql, h);
  if (st) {
    s->hits++;
    st->used = ++s->tick;
    *out = st;
    return YZ_OK;
  }
  s->misses++;
  const yz_acl *saved = s->acl;
  s->acl = acl;
  s->denied[0] = '\0';
  sqlite3_stmt *raw = NULL;
  const char *tail = NULL;
  int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &raw,
                              &tail);
  s->acl = saved;
  if (rc != SQLITE_OK) return sql_err(s, rc, "SQL error");
  if (!raw) {
    set_err(s, "SQL error: no statement in \"%.60s\"", sql);
    return YZ_EUSAGE;
  }
  if (tail && !only_trivia(tail)) {
    sqlite3_finalize(raw);
    set_err(s,
            "SQL error: one statement per call; found more after "
            "\"%.*s\"",
            (int)(tail - sql > 60 ? 60 : tail - sql), sql);
    return YZ_EUSAGE;
  }
  st = yz_xcalloc(1, sizeof *st);
  st->s = s;
  st->st = raw;
  st->acl = acl;
  st->sql = yz_strdup(sql);
  st->hash = h;
  st->used = ++s->tick;
  *out = st;
  return YZ_OK;
}

int yz_stmt_param_count(yz_stmt *st) {
  return sqlite3_bind_parameter_count(st->st);
}

int yz_stmt_param_index(yz_stmt *st, const char *name) {
  static const char prefixes[] = ":@$";
  char buf[256];
  for (int i = 0; prefixes[i]; i++) {
    yz_fmt(buf, sizeof buf, "%c%s", prefixes[i], name);
    int idx = sqlite3_bind_parameter_index(st->st, buf);
    if (idx) return idx;
  }
  return 0;
}

const char *yz_stmt_param_name(yz_stmt *st, int i) {
  return sqlite3_bind_parameter_name(st->st, i);
}

int yz_stmt_bind(yz_stmt *st, int i, const yz_value *v) {
  int rc;
  switch (v->type) {
    case YZ_INT: rc = sqlite3_bind_int64(st->st, i, v->i); break;
    case YZ_REAL: rc = sqlite3_bind_double(st->st, i, v->d); break;
    case YZ_TEXT:
      rc = sqlite3_bind_text64(st->st, i, v->s, v->n, SQLITE_TRANSIENT,
                               SQLITE_UTF8);
      break;
    case YZ_BLOB:
      rc = sqlite3_bind_blob64(st->st, i, v->s, v->n, SQLITE_TRANSIENT);
      break;
    default: rc = sqlite3_bind_null(st->st, i); break;
  }
  if (rc != SQLITE_OK) return sql_err(st->s, rc, "binding parameter");
  return YZ_OK;
}

int yz_stmt_step(yz_stmt *st) {
  yz_store *s = st->s;
  /* A step may re-prepare after a schema change, which consults the
  ** authorizer again: it must see the statement's own principal. */
  const yz_acl *saved = s->acl;
  s->acl = st->acl;
  s->denied[0] = '\0';
  int rc = sqlite3_step(st->st);
  s->acl = saved;
  if (rc == SQLITE_ROW) return YZ_ROW;
  if (rc == SQLITE_DONE) return YZ_DONE;
  int code = sql_err(s, rc, "SQL error");
  sqlite3_reset(st->st);
  return code;
}

int yz_stmt_column_count(yz_stmt *st) {
  return sqlite3_column_count(st->st);
}

const char *yz_stmt_column_name(yz_stmt *st, int i) {
  return sqlite3_column_name(st->st, i);
}

void yz_stmt_column(yz_stmt *st, int i, yz_value *out) {
  memset(out, 0, sizeof *out);
  switch (sqlite3_column_type(st->st, i)) {
    case SQLITE_INTEGER:
      out->type = YZ_INT;
      out->i = sqlite3_column_int64(st->st, i);
      break;
    case SQLITE_FLOAT:
      out->type = YZ_REAL;
      out->d = sqlite3_column_double(st->st, i);
      break;
    case SQLITE_TEXT:
      out->type = YZ_TEXT;
      out->s = (const char *)sqlite3_column_text(st->st, i);
      out->n = (size_t)sqlite3_column_bytes(st->st, i);
      break;
    case SQLITE_BLOB:
      out->type = YZ_BLOB;
      out->s = sqlite3_column_blob(st->st, i);
      out->n = (size_t)sqlite3_column_bytes(st->st, i);
      if (!out->s) out->s = "";
      break;
    default: out->type = YZ_NULL; break;
  }
}

void yz_stmt_release(yz_stmt *st) {
  if (!st) return;
  sqlite3_reset(st->st);
  sqlite3_clear_bindings(st->st);
  cache_put(st->s, st);
}

int yz_store_exec(yz_store *s, const yz_acl *acl, const char *sql,
                  const yz_value *params, int n) {
  yz_stmt *st;
  int rc = yz_store_prepare(s, acl, sql, &st);
  if (rc != YZ_OK) return rc;
  if (n != yz_stmt_param_count(st)) {
    set_err(s, "SQL error: statement has %d parameters, %d given",
            yz_stmt_param_count(st), n);
    yz_stmt_release(st);
    return YZ_EUSAGE;
  }
  for (int i = 0; i < n; i++)
    if ((rc = yz_stmt_bind(st, i + 1, &params[i])) != YZ_OK) {
      yz_stmt_release(st);
      return rc;
    }
  while ((rc = yz_stmt_step(st)) == YZ_ROW) {
  }
  yz_stmt_release(st);
  return rc == YZ_DONE ? YZ_OK : rc;
}

int yz_store_exec_script(yz_store *s, const yz_acl *acl, const char *sql) {
  if (s->lazy) {
    int rc = materialize(s);
    if (rc != YZ_OK) return rc;
  }
  const char *p = sql;
  const yz_acl *saved = s->acl;
  int code = YZ_OK;
  s->acl = acl;
  while (p && *p) {
    sqlite3_stmt *raw = NULL;
    const char *tail = NULL;
    s->denied[0] = '\0';
    int rc = sqlite3_prepare_v2(s->db, p, -1, &raw, &tail);
    if (rc != SQLITE_OK) {
      code = sql_err(s, rc, "SQL error");
      break;
    }
    if (!raw) break; /* only trivia left */
    while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) {
      code = sql_err(s, rc, "SQL error");
      sqlite3_finalize(raw);
      break;
    }
    sqlite3_finalize(raw);
    p = tail;
  }
  s->acl = saved;
  return code;
}

int yz_store_changes(yz_store *s) {
  return sqlite3_changes(s->db);
}
int64_t yz_store_last_rowid(yz_store *s) {
  return sqlite3_last_insert_rowid(s->db);
}

/* --------------------------------------------------------- transactions */

/* Starts the transaction a lazy begin promised. */
static int materialize(yz_store *s) {
  s->lazy = 0;
  int rc = yz_store_exec(s, NULL, "BEGIN IMMEDIATE", NULL, 0);
  if (rc == YZ_OK)
    s->tx_depth = 1;
  else
    s->lazy = 1; /* still owed: no statement runs outside it */
  return rc;
}

int yz_store_tx_begin_lazy(yz_store *s) {
  if (s->tx_depth > 0 || s->lazy) return yz_store_tx_begin(s);
  s->lazy = 1;
  return YZ_OK;
}

int yz_store_tx_begin(yz_store *s) {
  char sql[64];
  if (s->lazy) {
    int rc = materialize(s);
    if (rc != YZ_OK) return rc;
  }
  if (s->tx_depth == 0)
    yz_fmt(sql, sizeof sql, "BEGIN IMMEDIATE");
  else
    yz_fmt(sql, sizeof sql, "SAVEPOINT yz_sp%d", s->tx_depth);
  int rc = yz_store_exec(s, NULL, sql, NULL, 0);
  if (rc == YZ_OK) s->tx_depth++;
  return rc;
}

int yz_store_tx_lost(yz_store *s) {
  if (s->lazy) return 0;
  if (s->tx_depth > 0 && sqlite3_get_autocommit(s->db)) {
    s->tx_depth = 0;
    return 1;
  }
  return 0;
}

int yz_store_tx_commit(yz_store *s) {
  char sql[64];
  if (s->lazy) { /* nothing was run: nothing to commit */
    s->lazy = 0;
    return YZ_OK;
  }
  if (yz_store_tx_lost(s)) {
    set_err(s,
            "the transaction was rolled back by an error inside it (an "
            "interrupted statement, OR ROLLBACK or RAISE(ROLLBACK))");
    return YZ_ERR;
  }
  if (s->tx_depth <= 0) {
    set_err(s, "commit without a transaction");
    return YZ_EUSAGE;
  }
  if (s->tx_depth == 1)
    yz_fmt(sql, sizeof sql, "COMMIT");
  else
    yz_fmt(sql, sizeof sql, "RELEASE yz_sp%d", s->tx_depth - 1);
  int rc = yz_store_exec(s, NULL, sql, NULL, 0);
  if (rc == YZ_OK) s->tx_depth--;
  return rc;
}

int yz_store_tx_rollback(yz_store *s) {
  char sql[96];
  if (s->lazy) {
    s->lazy = 0;
    return YZ_OK;
  }
  if (yz_store_tx_lost(s)) return YZ_OK; /* nothing left to undo */
  if (s->tx_depth <= 0) {
    set_err(s, "rollback without a transaction");
    return YZ_EUSAGE;
  }
  if (s->tx_depth == 1) {
    yz_fmt(sql, sizeof sql, "ROLLBACK");
    /* A failed statement may already have ended the transaction. */
    if (sqlite3_get_autocommit(s->db)) {
      s->tx_depth = 0;
      return YZ_OK;
    }
  } else {
    yz_fmt(sql, sizeof sql, "ROLLBACK TO yz_sp%d; RELEASE yz_sp%d",
           s->tx_depth - 1, s->tx_depth - 1);
  }
  int rc = yz_store_exec_script(s, NULL, sql);
  s->tx_depth--;
  return rc;
}

int yz_store_tx_depth(const yz_store *s) {
  return s->tx_depth + s->lazy;
}

/* ----------------------------------------------------------- migrations */

static void checksum(const char *text, char out[17]) {
  uint64_t h = 1469598103934665603ULL;
  for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
    h ^= *p;
    h *= 1099511628211ULL;
  }
  snprintf(out, 17, "%016llx", (unsigned long long)h);
}

static void now_iso(char *dst, unsigned n) {
  yz_clock_iso_utc(yz_clock_now_ms(NULL), dst, n);
}

/* Sets *yes to whether step 'step' of 'owner' is applied. Returns YZ_OK, or
** an error code (the applied text changed, or the query failed). */
static int step_applied(yz_store *s, const char *owner, int step,
                        const char *sum, int *yes) {
  *yes = 0;
  yz_value key[2] = {{.type = YZ_TEXT, .s = owner, .n = strlen(owner)},
                     {.type = YZ_INT, .i = step}};
  yz_stmt *st;
  int rc = yz_store_prepare(
      s, NULL, "SELECT checksum FROM yz_migrations WHERE owner=? AND step=?",
      &st);
  if (rc != YZ_OK) return rc;
  yz_stmt_bind(st, 1, &key[0]);
  yz_stmt_bind(st, 2, &key[1]);
  rc = yz_stmt_step(st);
  if (rc == YZ_ROW) {
    yz_value v;
    yz_stmt_column(st, 0, &v);
    int same = v.type == YZ_TEXT && strcmp(v.s, sum) == 0;
    yz_stmt_release(st);
    if (same) {
      *yes = 1;
      return YZ_OK;
    }
    set_err(s,
            "%s: migration %d was changed after it was applied; add a new "
            "migration instead of editing an old one",
            owner, step);
    return YZ_ERR;
  }
  yz_stmt_release(st);
  return rc == YZ_DONE ? YZ_OK : rc;
}

int yz_store_migrate(yz_store *s, const char *owner, const char *const *steps,
                     int n, yz_acl *acl, int *applied) {
  int count = 0;
  if (applied) *applied = 0;
  int rc = yz_store_exec_script(
      s, NULL,
      "CREATE TABLE IF NOT EXISTS yz_migrations("
      "  owner TEXT NOT NULL, step INTEGER NOT NULL, checksum TEXT NOT NULL,"
      "  applied_at TEXT NOT NULL, PRIMARY KEY (owner, step)) WITHOUT ROWID");
  if (rc != YZ_OK) return rc;
  for (int i = 0; i < n; i++) {
    char sum[17];
    checksum(steps[i], sum);
    /* A read first: at most opens everything is applied already. */
    int yes;
    rc = step_applied(s, owner, i + 1, sum, &yes);
    if (rc != YZ_OK) return rc;
    if (yes) continue;
    if ((rc = yz_store_tx_begin(s)) != YZ_OK) return rc;
    /* Again under the write lock: another process opening the same file
    ** (a backup, the CLI beside the daemon) may have applied it meanwhile. */
    rc = step_applied(s, owner, i + 1, sum, &yes);
    if (rc != YZ_OK || yes) {
      yz_store_tx_rollback(s);
      if (rc != YZ_OK) return rc;
      continue;
    }
    if (acl) acl->migrating = 1;
    rc = yz_store_exec_script(s, acl, steps[i]);
    if (acl) acl->migrating = 0;
    if (rc != YZ_OK) {
      char why[YZ_ERRMSG_MAX];
      yz_fmt(why, sizeof why, "%s", s->err);
      yz_store_tx_rollback(s);
      set_err(s, "%s: migration %d failed: %s", owner, i + 1, why);
      return rc;
    }
    char at[40];
    now_iso(at, sizeof at);
    yz_value ins[4] = {{.type = YZ_TEXT, .s = owner, .n = strlen(owner)},
                       {.type = YZ_INT, .i = i + 1},
                       {.type = YZ_TEXT, .s = sum, .n = strlen(sum)},
                       {.type = YZ_TEXT, .s = at, .n = strlen(at)}};
    rc = yz_store_exec(s, NULL,
                       "INSERT INTO yz_migrations(owner, step, checksum, "
                       "applied_at) VALUES (?, ?, ?, ?)",
                       ins, 4);
    if (rc == YZ_OK) rc = yz_store_tx_commit(s);
    if (rc != YZ_OK) {
      yz_store_tx_rollback(s);
      return rc;
    }
    count++;
  }
  if (applied) *applied = count;
  return YZ_OK;
}

/* ----------------------------------------------------- key/value, audit */

static yz_value text(const char *s) {
  if (!s) return (yz_value){.type = YZ_NULL};
  return (yz_value){.type = YZ_TEXT, .s = s, .n = strlen(s)};
}

int yz_store_kv_get(yz_store *s, const char *plugin, const char *key,
                    char **val, size_t *n) {
  *val = NULL;
  if (n) *n = 0;
  yz_stmt *st;
  int rc = yz_store_prepare(
      s, NULL, "SELECT value FROM yz_kv WHERE plugin=? AND key=?", &st);
  if (rc != YZ_OK) return rc;
  yz_value p1 = text(plugin), p2 = text(key);
  yz_stmt_bind(st, 1, &p1);
  yz_stmt_bind(st, 2, &p2);
  rc = yz_stmt_step(st);
  if (rc == YZ_ROW) {
    yz_value v;
    yz_stmt_column(st, 0, &v);
    *val = yz_xmalloc(v.n + 1);
    memcpy(*val, v.s ? v.s : "", v.n);
    (*val)[v.n] = '\0';
    if (n) *n = v.n;
    rc = YZ_OK;
  } else if (rc == YZ_DONE) {
    rc = YZ_ENOTFOUND;
  }
  yz_stmt_release(st);
  return rc;
}

int yz_store_kv_put(yz_store *s, const char *plugin, const char *key,
                    const char *val, size_t n) {
  if (!val) {
    yz_value p[2] = {text(plugin), text(key)};
    return yz_store_exec(s, NULL, "DELETE FROM yz_kv WHERE plugin=? AND key=?",
                         p, 2);
  }
  char at[40];
  now_iso(at, sizeof at);
  yz_value p[4] = {
      text(plugin), text(key), {.type = YZ_TEXT, .s = val, .n = n}, text(at)};
  return yz_store_exec(s, NULL,
                       "INSERT INTO yz_kv(plugin, key, value, updated_at) "
                       "VALUES (?, ?, ?, ?) ON CONFLICT(plugin, key) DO "
                       "UPDATE SET value=excluded.value, "
                       "updated_at=excluded.updated_at",
                       p, 4);
}

int yz_store_audit(yz_store *s, int64_t at_ms, const char *actor,
                   const char *action, const char *subject,
                   const char *detail) {
  char at[40];
  yz_clock_iso_utc(at_ms, at, sizeof at);
  yz_value p[5] = {text(at), text(actor), text(action), text(subject),
                   text(detail)};
  return yz_store_exec(s, NULL,
                       "INSERT INTO yz_audit(at, actor, action, subject, "
                       "detail) VALUES (?, ?, ?, ?, ?)",
                       p, 5);
}

/* --------------------------------------------------------------- backup */

int yz_store_backup(yz_store *s, const char *dest) {
  char tmp[4096];
  yz_fmt(tmp, sizeof tmp, "%s.tmp-%ld", dest, (long)getpid());
  unlink(tmp);
  int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    set_err(s, "%s: cannot create: %s", tmp, strerror(errno));
    return YZ_ERR;
  }
  close(fd);
  sqlite3 *dst = NULL;
  int code = YZ_ERR;
  int rc = sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE, NULL);
  if (rc != SQLITE_OK) {
    set_err(s, "%s: %s", tmp, dst ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
    goto done;
  }
  sqlite3_backup *b = sqlite3_backup_init(dst, "main", s->db, "main");
  if (!b) {
    set_err(s, "backup to %s: %s", dest, sqlite3_errmsg(dst));
    goto done;
  }
  /* Copy in slices so a busy daemon's writers are not held off for long. */
  do {
    rc = sqlite3_backup_step(b, 256);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
      struct timespec ts = {0, 20 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
  sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE) {
    set_err(s, "backup to %s: %s", dest, sqlite3_errstr(rc));
    goto done;
  }
  {
    sqlite3_stmt *chk = NULL;
    rc = sqlite3_prepare_v2(dst, "PRAGMA quick_check", -1, &chk, NULL);
    const char *res = NULL;
    if (rc == SQLITE_OK && sqlite3_step(chk) == SQLITE_ROW)
      res = (const char *)sqlite3_column_text(chk, 0);
    if (!res || strcmp(res, "ok") != 0) {
      set_err(s, "backup to %s: check of the copy failed: %s", dest,
              res ? res : sqlite3_errmsg(dst));
      sqlite3_finalize(chk);
      goto done;
    }
    sqlite3_finalize(chk);
  }
  if (sqlite3_close(dst) != SQLITE_OK) {
    set_err(s, "backup to %s: closing the copy failed", dest);
    dst = NULL;
    goto done;
  }
  dst = NULL;
  fd = open(tmp, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  if (rename(tmp, dest) != 0) {
    set_err(s, "%s: cannot rename the copy into place: %s", dest,
            strerror(errno));
    goto done;
  }
  code = YZ_OK;
done:
  if (dst) sqlite3_close(dst);
  if (code != YZ_OK) unlink(tmp);
  return code;
}
