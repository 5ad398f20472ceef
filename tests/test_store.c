/*
** test_store.c: the SQLite store: file mode, migrations, the statement
** cache, nested transactions, key/value, audit, backup and the authorizer.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store.h"
#include "testutil.h"

typedef struct fixture {
  char *dir;       /* scratch directory */
  char path[4096]; /* database file */
  yz_store *s;     /* open store */
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_tmpdir();
  snprintf(f->path, sizeof f->path, "%s/t.db", f->dir);
  char err[512];
  assert_int_equal(yz_store_open(&f->s, f->path, err, sizeof err), YZ_OK);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  yz_store_close(f->s);
  tu_rmrf(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

static void database_file_is_private_and_in_wal_mode(void **state) {
  fixture *f = *state;
  struct stat st;
  assert_int_equal(stat(f->path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  yz_stmt *q;
  assert_int_equal(yz_store_prepare(f->s, NULL, "PRAGMA journal_mode", &q),
                   YZ_OK);
  assert_int_equal(yz_stmt_step(q), YZ_ROW);
  yz_value v;
  yz_stmt_column(q, 0, &v);
  assert_string_equal(v.s, "wal");
  yz_stmt_release(q);
  assert_int_equal(tu_int(f->s, "PRAGMA foreign_keys"), 1);
}

static void a_loose_file_mode_is_tightened_on_open(void **state) {
  fixture *f = *state;
  yz_store_close(f->s);
  chmod(f->path, 0644);
  char err[512];
  assert_int_equal(yz_store_open(&f->s, f->path, err, sizeof err), YZ_OK);
  struct stat st;
  stat(f->path, &st);
  assert_int_equal(st.st_mode & 0777, 0600);
}

static void migrations_apply_once_and_are_recorded(void **state) {
  fixture *f = *state;
  const char *steps[] = {"CREATE TABLE a(x INTEGER)",
                         "INSERT INTO a VALUES (1); INSERT INTO a VALUES (2)"};
  int applied = -1;
  assert_int_equal(yz_store_migrate(f->s, "p", steps, 2, NULL, &applied),
                   YZ_OK);
  assert_int_equal(applied, 2);
  assert_int_equal(yz_store_migrate(f->s, "p", steps, 2, NULL, &applied),
                   YZ_OK);
  assert_int_equal(applied, 0);
  assert_int_equal(tu_int(f->s, "SELECT count(*) FROM a"), 2);
  assert_int_equal(
      tu_int(f->s, "SELECT count(*) FROM yz_migrations WHERE owner='p'"), 2);
  /* A third step added later is applied alone. */
  const char *more[] = {steps[0], steps[1], "INSERT INTO a VALUES (3)"};
  assert_int_equal(yz_store_migrate(f->s, "p", more, 3, NULL, &applied), YZ_OK);
  assert_int_equal(applied, 1);
  assert_int_equal(tu_int(f->s, "SELECT count(*) FROM a"), 3);
}

static void an_edited_applied_migration_is_an_error(void **state) {
  fixture *f = *state;
  const char *v1[] = {"CREATE TABLE b(x)"};
  const char *v2[] = {"CREATE TABLE b(x, y)"};
  assert_int_equal(yz_store_migrate(f->s, "q", v1, 1, NULL, NULL), YZ_OK);
  assert_int_not_equal(yz_store_migrate(f->s, "q", v2, 1, NULL, NULL), YZ_OK);
  assert_true(tu_contains(yz_store_errmsg(f->s), "migration 1 was changed"));
}

static void a_failing_migration_leaves_nothing_behind(void **state) {
  fixture *f = *state;
  const char *steps[] = {"CREATE TABLE c(x); INSERT INTO nope VALUES (1)"};
  assert_int_not_equal(yz_store_migrate(f->s, "r", steps, 1, NULL, NULL),
                       YZ_OK);
  assert_true(tu_contains(yz_store_errmsg(f->s), "r: migration 1 failed"));
  assert_int_equal(
      tu_int(f->s, "SELECT count(*) FROM sqlite_master WHERE name='c'"), 0);
  assert_int_equal(
      tu_int(f->s, "SELECT count(*) FROM yz_migrations WHERE owner='r'"), 0);
  assert_int_equal(yz_store_tx_depth(f->s), 0);
}

static void prepared_statements_are_reused_from_the_cache(void **state) {
  fixture *f = *state;
  int h0, m0, h1, m1;
  yz_store_cache_stats(f->s, &h0, &m0);
  for (int i = 0; i < 10; i++) tu_int(f->s, "SELECT 42");
  yz_store_cache_stats(f->s, &h1, &m1);
  assert_int_equal(m1 - m0, 1);
  assert_int_equal(h1 - h0, 9);
  /* The same text for another principal is a different statement. */
  yz_acl acl = {.who = "x"};
  yz_stmt *st;
  assert_int_equal(yz_store_prepare(f->s, &acl, "SELECT 42", &st), YZ_OK);
  yz_stmt_release(st);
  yz_store_cache_stats(f->s, &h1, &m1);
  assert_int_equal(m1 - m0, 2);
  yz_store_forget(f->s, &acl);
}

static void many_distinct_statements_evict_without_losing_any(void **state) {
  fixture *f = *state;
  char sql[64];
  for (int round = 0; round < 2; round++)
    for (int i = 0; i < 600; i++) {
      snprintf(sql, sizeof sql, "SELECT %d", i);
      assert_int_equal(tu_int(f->s, sql), i);
    }
}

static void more_than_one_statement_per_call_is_refused(void **state) {
  fixture *f = *state;
  yz_stmt *st;
  assert_int_equal(yz_store_prepare(f->s, NULL, "SELECT 1; SELECT 2", &st),
                   YZ_EUSAGE);
  assert_true(tu_contains(yz_store_errmsg(f->s), "one statement per call"));
  assert_int_equal(yz_store_prepare(f->s, NULL, "SELECT 1; -- done\n", &st),
                   YZ_OK);
  yz_stmt_release(st);
}

static void a_rolled_back_transaction_changes_nothing(void **state) {
  fixture *f = *state;
  assert_int_equal(yz_store_exec_script(f->s, NULL, "CREATE TABLE t(x)"),
                   YZ_OK);
  assert_int_equal(yz_store_tx_begin(f->s), YZ_OK);
  assert_int_equal(yz_store_exec_script(f->s, NULL, "INSERT INTO t VALUES (1)"),
                   YZ_OK);
  /* nested: the inner level rolls back alone */
  assert_int_equal(yz_store_tx_begin(f->s), YZ_OK);
  assert_int_equal(yz_store_exec_script(f->s, NULL, "INSERT INTO t VALUES (2)"),
                   YZ_OK);
  assert_int_equal(yz_store_tx_rollback(f->s), YZ_OK);
  assert_int_equal(tu_int(f->s, "SELECT count(*) FROM t"), 1);
  assert_int_equal(yz_store_tx_commit(f->s), YZ_OK);
  assert_int_equal(tu_int(f->s, "SELECT count(*) FROM t"), 1);
  assert_int_equal(yz_store_tx_begin(f->s), YZ_OK);
  assert_int_equal(yz_store_exec_script(f->s, NULL, "INSERT INTO t VALUES (3)"),
                   YZ_OK);
  assert_int_equal(yz_store_tx_rollback(f->s), YZ_OK);
  assert_int_equal(tu_int(f->s, "SELECT count(*) FROM t"), 1);
  assert_int_equal(yz_store_tx_depth(f->s), 0);
}

/* A lazy transaction begins at its first statement; when it cannot begin
** (another connection holds the write lock), statements fail rather than
** run outside it. */
static void a_lazy_transaction_never_runs_statements_outside_it(void **state) {
  fixture *f = *state;
  assert_int_equal(yz_store_exec_script(f->s, NULL, "CREATE TABLE t(x)"),
                   YZ_OK);
  /* One that runs nothing costs nothing and commits as a no-op. */
  assert_int_equal(yz_store_tx_begin_lazy(f->s), YZ_OK);
  assert_int_equal(yz_store_tx_depth(f->s), 1);
  assert_int_equal(yz_store_tx_commit(f->s), YZ_OK);
  assert_int_equal(yz_store_tx_depth(f->s), 0);
  /* Another writer holds the lock: the first statement fails (after the
  ** busy timeout), and so does the next; nothing is written. */
  yz_store *other;
  char err[512];
  assert_int_equal(yz_store_open(&other, f->path, err, sizeof err), YZ_OK);
  assert_int_equal(yz_store_tx_begin(other), YZ_OK);
  assert_int_equal(yz_store_tx_begin_lazy(f->s), YZ_OK);
  yz_value one = {.type = YZ_INT, .i = 1};
  assert_int_not_equal(
      yz_store_exec(f->s, NULL, "INSERT INTO t VALUES (?)", &one, 1), YZ_OK);
  assert_int_equal(yz_store_tx_rollback(other), YZ_OK);
  yz_store_close(other);
  /* Free again: the statement runs inside the transaction it was owed, and
  ** a rollback undoes it. */
  assert_int_equal(
      yz_store_exec(f->s, NULL, "INSERT INTO t VALUES (?)", &one, 1), YZ_OK);
  assert_int_equal(yz_store_tx_rollback(f->s), YZ_OK);
  assert_int_equal(tu_int(f->s, "SELECT count(*) FROM t"), 0);
}

static void key_values_round_trip_per_plugin(void **state) {
  fixture *f = *state;
  char *v = NULL;
  size_t n;
  assert_int_equal(yz_store_kv_get(f->s, "a", "k", &v, &n), YZ_ENOTFOUND);
  assert_int_equal(yz_store_kv_put(f->s, "a", "k", "{\"x\":1}", 7), YZ_OK);
  assert_int_equal(yz_store_kv_put(f->s, "b", "k", "2", 1), YZ_OK);
  assert_int_equal(yz_store_kv_get(f->s, "a", "k", &v, &n), YZ_OK);
  assert_string_equal(v, "{\"x\":1}");
  free(v);
  assert_int_equal(yz_store_kv_put(f->s, "a", "k", NULL, 0), YZ_OK);
  assert_int_equal(yz_store_kv_get(f->s, "a", "k", &v, &n), YZ_ENOTFOUND);
  assert_int_equal(yz_store_kv_get(f->s, "b", "k", &v, &n), YZ_OK);
  assert_string_equal(v, "2");
  free(v);
}

static void audit_entries_are_appended(void **state) {
  fixture *f = *state;
  int64_t before = tu_int(f->s, "SELECT count(*) FROM yz_audit");
  assert_int_equal(
      yz_store_audit(f->s, 1795000000000, "cli", "backup", "x.db", NULL),
      YZ_OK);
  assert_int_equal(tu_int(f->s, "SELECT count(*) FROM yz_audit"), before + 1);
  assert_int_equal(tu_int(f->s,
                          "SELECT count(*) FROM yz_audit WHERE action='backup' "
                          "AND at='2026-11-18T11:06:40.000Z'"),
                   1);
}

static void a_backup_is_a_private_consistent_copy(void **state) {
  fixture *f = *state;
  assert_int_equal(
      yz_store_exec_script(
          f->s, NULL,
          "CREATE TABLE k(x); INSERT INTO k VALUES ('留守儿童'), ('b')"),
      YZ_OK);
  /* an open write transaction is not part of the copy */
  assert_int_equal(yz_store_tx_begin(f->s), YZ_OK);
  char dest[4200];
  snprintf(dest, sizeof dest, "%s/backup.db", f->dir);
  yz_store *other;
  char err[512];
  assert_int_equal(yz_store_open(&other, f->path, err, sizeof err), YZ_OK);
  assert_int_equal(
      yz_store_exec_script(f->s, NULL, "INSERT INTO k VALUES ('c')"), YZ_OK);
  assert_int_equal(yz_store_backup(other, dest), YZ_OK);
  yz_store_close(other);
  assert_int_equal(yz_store_tx_commit(f->s), YZ_OK);
  struct stat st;
  assert_int_equal(stat(dest, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  yz_store *copy;
  assert_int_equal(yz_store_open(&copy, dest, err, sizeof err), YZ_OK);
  assert_int_equal(tu_int(copy, "SELECT count(*) FROM k"), 2);
  assert_int_equal(tu_int(copy, "SELECT count(*) FROM k WHERE x='留守儿童'"),
                   1);
  yz_store_close(copy);
}

static void the_authorizer_confines_a_plugin(void **state) {
  fixture *f = *state;
  assert_int_equal(yz_store_exec_script(f->s, NULL,
                                        "CREATE TABLE mine(x); CREATE TABLE "
                                        "theirs(y); CREATE TABLE shared(z)"),
                   YZ_OK);
  char *owns[] = {"mine"}, *read[] = {"shared"};
  yz_acl acl = {.who = "p", .owns = owns, .nowns = 1, .read = read, .nread = 1};
  assert_int_equal(
      yz_store_exec(f->s, &acl, "INSERT INTO mine VALUES (1)", NULL, 0), YZ_OK);
  assert_int_equal(yz_store_exec(f->s, &acl, "SELECT z FROM shared", NULL, 0),
                   YZ_OK);
  assert_int_equal(
      yz_store_exec(f->s, &acl, "SELECT count(*) FROM shared", NULL, 0), YZ_OK);
  assert_int_equal(
      yz_store_exec(f->s, &acl, "INSERT INTO shared VALUES (1)", NULL, 0),
      YZ_EDENIED);
  assert_true(
      tu_contains(yz_store_errmsg(f->s), "plugin 'p': writing table 'shared'"));
  assert_int_equal(yz_store_exec(f->s, &acl, "SELECT * FROM theirs", NULL, 0),
                   YZ_EDENIED);
  assert_int_equal(
      yz_store_exec(f->s, &acl, "SELECT count(*) FROM theirs", NULL, 0),
      YZ_EDENIED);
  assert_int_equal(yz_store_exec(f->s, &acl, "SELECT * FROM yz_kv", NULL, 0),
                   YZ_EDENIED);
  assert_int_equal(
      yz_store_exec(f->s, &acl, "SELECT * FROM sqlite_master", NULL, 0),
      YZ_EDENIED);
  assert_int_equal(yz_store_exec(f->s, &acl, "CREATE TABLE mine2(x)", NULL, 0),
                   YZ_EDENIED);
  assert_int_equal(yz_store_exec(f->s, &acl, "DROP TABLE mine", NULL, 0),
                   YZ_EDENIED);
  assert_int_equal(yz_store_exec(f->s, &acl, "BEGIN", NULL, 0), YZ_EDENIED);
  assert_true(tu_contains(yz_store_errmsg(f->s), "use host.db.tx"));
  /* In migrations the plugin shapes its own tables, and only those. */
  const char *ok_steps[] = {
      "CREATE TABLE mine_log(x); CREATE INDEX mine_x ON mine(x)"};
  char *owns2[] = {"mine", "mine_log"};
  acl.owns = owns2;
  acl.nowns = 2;
  assert_int_equal(yz_store_migrate(f->s, "p", ok_steps, 1, &acl, NULL), YZ_OK);
  assert_int_equal(acl.migrating, 0);
  const char *bad_steps[] = {"CREATE INDEX theirs_y ON theirs(y)"};
  assert_int_equal(yz_store_migrate(f->s, "p2", bad_steps, 1, &acl, NULL),
                   YZ_EDENIED);
  assert_true(
      tu_contains(yz_store_errmsg(f->s), "which the plugin does not own"));
  /* Nothing of that reached the other tables. */
  assert_int_equal(tu_int(f->s, "SELECT count(*) FROM shared"), 0);
  assert_int_equal(tu_int(f->s, "SELECT count(*) FROM mine"), 1);
  yz_store_forget(f->s, &acl);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(database_file_is_private_and_in_wal_mode,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(a_loose_file_mode_is_tightened_on_open,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(migrations_apply_once_and_are_recorded,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(an_edited_applied_migration_is_an_error,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(a_failing_migration_leaves_nothing_behind,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(
          prepared_statements_are_reused_from_the_cache, setup, teardown),
      cmocka_unit_test_setup_teardown(
          many_distinct_statements_evict_without_losing_any, setup, teardown),
      cmocka_unit_test_setup_teardown(
          more_than_one_statement_per_call_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(a_rolled_back_transaction_changes_nothing,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(key_values_round_trip_per_plugin, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(audit_entries_are_appended, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(a_backup_is_a_private_consistent_copy,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(
          a_lazy_transaction_never_runs_statements_outside_it, setup, teardown),
      cmocka_unit_test_setup_teardown(the_authorizer_confines_a_plugin, setup,
                                      teardown),
  };
  return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
