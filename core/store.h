/*
** store.h: the one SQLite connection of a yizhan process.
**
** It owns the database file (mode 0600, WAL, foreign keys, busy timeout), the
** core 'yz_' tables and their migrations, plugin migrations, a cache of
** prepared statements, nested transactions, the key/value store, the audit
** log and online backup. It is the only module that includes sqlite3.h.
**
** Access control: every statement is prepared and stepped on behalf of a
** principal. NULL is the core, which may do anything. A plugin's principal
** is a yz_acl; an SQLite authorizer lets it read and write only the tables it
** owns or is granted, never 'yz_' tables, never ATTACH, transactions of its
** own or PRAGMAs that change anything. Its statements also spend its CPU
** budget: SQLite VM steps are added to *steps, and a statement that takes
** it past step_limit is interrupted.
*/
#ifndef YZ_STORE_H
#define YZ_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "yz.h"

typedef struct yz_store yz_store;
typedef struct yz_stmt yz_stmt;

/* What a plugin may touch. The store keeps a pointer, not a copy: the acl
** must outlive every statement prepared for it (see yz_store_forget). */
typedef struct yz_acl {
  const char *who;      /* plugin name, for messages */
  char **owns;          /* tables the plugin creates and fully controls */
  int nowns;            /* entries in owns */
  char **read;          /* tables it may read (access.read) */
  int nread;            /* entries in read */
  char **write;         /* tables it may read and write (access.write) */
  int nwrite;           /* entries in write */
  int migrating;        /* nonzero while its migrations run: DDL on owns */
  long long *steps;     /* CPU budget counter its SQL is charged to, or NULL */
  long long step_limit; /* its SQL is interrupted past this; 0: no limit */
} yz_acl;

typedef enum { YZ_NULL, YZ_INT, YZ_REAL, YZ_TEXT, YZ_BLOB } yz_vtype;

/* A value bound to or read from a statement. Text and blobs are borrowed:
** a column's bytes stay valid until the next step or release. */
typedef struct yz_value {
  yz_vtype type; /* which member below is meaningful */
  int64_t i;     /* YZ_INT */
  double d;      /* YZ_REAL */
  const char *s; /* YZ_TEXT / YZ_BLOB bytes */
  size_t n;      /* their length */
} yz_value;

/* Opens (creating with mode 0600 if needed) the database at 'path' and
** applies the core migrations. On failure returns an error code, writes the
** reason into err and *out is NULL. */
int yz_store_open(yz_store **out, const char *path, char *err, size_t errlen);
/* Closes the connection; accepts NULL. Every statement must be released. */
void yz_store_close(yz_store *s);
/* The message of the last failed call on this handle. */
const char *yz_store_errmsg(const yz_store *s);
const char *yz_store_path(const yz_store *s);

/* Prepares exactly one statement for 'acl' (NULL: the core), from the cache
** when possible. More than one statement in 'sql' is an error. The caller
** must yz_stmt_release the result. */
int yz_store_prepare(yz_store *s, const yz_acl *acl, const char *sql,
                     yz_stmt **out);
int yz_stmt_param_count(yz_stmt *st);
/* 1-based index of a named parameter (":name", "@name", "$name"), or 0. */
int yz_stmt_param_index(yz_stmt *st, const char *name);
const char *yz_stmt_param_name(yz_stmt *st, int i);
/* Binds 'v' (copied) to parameter i (1-based). */
int yz_stmt_bind(yz_stmt *st, int i, const yz_value *v);
/* Returns YZ_ROW, YZ_DONE, or an error code with the store's message set. */
int yz_stmt_step(yz_stmt *st);
int yz_stmt_column_count(yz_stmt *st);
const char *yz_stmt_column_name(yz_stmt *st, int i);
void yz_stmt_column(yz_stmt *st, int i, yz_value *out);
/* Resets the statement and gives it back to the cache; accepts NULL. */
void yz_stmt_release(yz_stmt *st);
/* Drops cached statements prepared for 'acl' (before the acl is freed). */
void yz_store_forget(yz_store *s, const yz_acl *acl);
/* Statement cache counters, for tests and benchmarks. */
void yz_store_cache_stats(const yz_store *s, int *hits, int *misses);

/* Runs one statement with n bound values, ignoring any rows. */
int yz_store_exec(yz_store *s, const yz_acl *acl, const char *sql,
                  const yz_value *params, int n);
/* Runs a script of several statements without parameters. */
int yz_store_exec_script(yz_store *s, const yz_acl *acl, const char *sql);
int yz_store_changes(yz_store *s);
int64_t yz_store_last_rowid(yz_store *s);

/* Nested transactions: the outermost is BEGIN IMMEDIATE/COMMIT, inner
** levels are savepoints. Rollback undoes only the innermost level. */
int yz_store_tx_begin(yz_store *s);
int yz_store_tx_commit(yz_store *s);
/* A transaction that begins only when the next statement is prepared (at
** the outermost level; nested, it is yz_store_tx_begin). Committing or
** rolling back one that never began costs nothing: no file locks for a
** slice of plugin code that touches no data. */
int yz_store_tx_begin_lazy(yz_store *s);
int yz_store_tx_rollback(yz_store *s);
int yz_store_tx_depth(const yz_store *s);
/* True (and the nesting reset to none) when SQLite itself rolled back the
** open transaction: an interrupted write, OR ROLLBACK, RAISE(ROLLBACK). */
int yz_store_tx_lost(yz_store *s);

/* Applies the steps of 'owner' not yet applied, each in its own transaction
** and recorded in yz_migrations with a checksum. A step already applied whose
** text changed is an error. 'applied' (may be NULL) receives the count. */
int yz_store_migrate(yz_store *s, const char *owner, const char *const *steps,
                     int n, yz_acl *acl, int *applied);

/* Key/value per plugin; values are opaque strings (the Lua side stores JSON).
** get: YZ_OK with a malloc'd *val the caller frees, or YZ_ENOTFOUND. */
int yz_store_kv_get(yz_store *s, const char *plugin, const char *key,
                    char **val, size_t *n);
/* put with val NULL deletes the key. */
int yz_store_kv_put(yz_store *s, const char *plugin, const char *key,
                    const char *val, size_t n);

/* Appends to the audit log. 'subject' and 'detail' may be NULL. */
int yz_store_audit(yz_store *s, int64_t at_ms, const char *actor,
                   const char *action, const char *subject, const char *detail);

/* Writes a consistent copy of the database to 'dest' (mode 0600) while
** other connections keep working, checks it, and renames it into place. */
int yz_store_backup(yz_store *s, const char *dest);

#endif
