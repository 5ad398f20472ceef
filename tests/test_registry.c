/*
** test_registry.c: `yizhan registry import` and `registry export` as a
** county clerk runs them, on the files in tests/registry/ (written by
** tests/registry/make_fixtures.py): a table of broken files, each refused
** whole with its exact error lines and the database untouched; GBK and
** UTF-8-with-BOM CRLF files read alike; --skip-bad and --dry-run;
** re-imports that change nothing, and an updated file's exact counts and
** events; exports that import to no change and export again to the same
** bytes.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#define FIXTURES YZ_SOURCE_DIR "/tests/registry"

static const char *const CONFIG = "plugins = { registry = {} }\n";

/* A plugin that records the registry's events in a table of its own. */
static const char *const EVLOG =
    "return {\n"
    "  name = 'evlog', version = '1.0.0', requires = { 'registry' },\n"
    "  owns = { 'evlog' },\n"
    "  migrations = { 'CREATE TABLE evlog (id INTEGER PRIMARY KEY, topic "
    "TEXT, data TEXT)' },\n"
    "  setup = function(host)\n"
    "    host.on('registry.*', function(data, ev)\n"
    "      host.db.exec('INSERT INTO evlog(topic, data) VALUES (?, ?)', "
    "ev.topic, host.json.encode(data))\n"
    "    end)\n"
    "  end,\n"
    "}\n";

/* Every row of the registry's tables, in one string. */
static const char *const DATA_SQL =
    "SELECT coalesce((SELECT group_concat(x, ';') FROM (SELECT quote(id) || "
    "quote(name) || quote(town) || quote(enrolment) AS x FROM schools ORDER "
    "BY id)), '') || '/' || coalesce((SELECT group_concat(x, ';') FROM "
    "(SELECT quote(id) || quote(ukey) || quote(kind) || quote(name) || "
    "quote(phone) || quote(school_id) || quote(class) || quote(role) AS x "
    "FROM people ORDER BY id)), '') || '/' || coalesce((SELECT "
    "group_concat(x, ';') FROM (SELECT quote(id) || quote(name) || "
    "quote(gender) || quote(birth_date) || quote(school_id) || quote(class) "
    "|| quote(village) || quote(away) || quote(away_since) || quote(status) "
    "|| quote(performance) || quote(notes) || quote(confirmed_on) || "
    "quote(changed_at) AS x FROM children ORDER BY id)), '') || '/' || "
    "coalesce((SELECT group_concat(x, ';') FROM (SELECT quote(child_id) || "
    "quote(person_id) || quote(relation) || quote(is_primary) || "
    "quote(workplace) AS x FROM guardianships ORDER BY child_id, "
    "person_id)), '') || '/' || coalesce((SELECT group_concat(x, ';') FROM "
    "(SELECT quote(id) || quote(child_id) || quote(person_id) || "
    "quote(since) || quote(\"until\") AS x FROM pairings ORDER BY id)), '') "
    "|| '/' || (SELECT count(*) FROM registry_stage)";

/* The registry's rows and the number of audit entries: a refused import
** changes neither. */
static char *snapshot(const char *dir) {
  char *data = tu_db_text(dir, DATA_SQL);
  int64_t audit = tu_db_int(dir, "SELECT count(*) FROM yz_audit");
  size_t n = strlen(data) + 32;
  char *s = malloc(n);
  snprintf(s, n, "%s/%lld", data, (long long)audit);
  free(data);
  return s;
}

/* Runs yizhan -d dir registry WORDS... (NULL-terminated) in FIXTURES. */
static tu_run reg(const char *dir, const char *a1, const char *a2,
                  const char *a3, const char *a4, const char *a5,
                  const char *a6) {
  const char *args[] = {"-d", dir, "registry", a1, a2, a3, a4, a5, a6, NULL};
  return tu_yizhan(args);
}

static void ok_run(const char *dir, const char *a1, const char *a2,
                   const char *a3, const char *a4) {
  tu_run r = reg(dir, a1, a2, a3, a4, NULL, NULL);
  if (r.status != 0) printf("stdout: %s\nstderr: %s\n", r.out, r.err);
  assert_int_equal(r.status, 0);
  tu_run_free(&r);
}

/* A data directory with the fixtures' schools, people and (when asked)
** children and pairings. */
static char *registry_dir(int children) {
  char *d = tu_datadir(CONFIG);
  ok_run(d, "import", "schools.csv", "--kind", "schools");
  ok_run(d, "import", "people.csv", "--kind", "people");
  if (children) {
    ok_run(d, "import", "children.csv", NULL, NULL);
    ok_run(d, "import", "pairings.csv", "--kind", "pairings");
  }
  return d;
}

static void done(char *d) {
  tu_rmrf(d);
  free(d);
}

static char *path_in(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  snprintf(p, n, "%s/%s", dir, name);
  return p;
}

/* ------------------------------------------------------------ refusals */

typedef struct bad_file {
  const char *file;
  const char *kind; /* NULL: children */
  const char *err;  /* the whole of stderr */
} bad_file;

static const bad_file BAD[] = {
    {"bad_phone.csv", NULL,
     "bad_phone.csv:2: 父亲电话: not a mobile number (got \"1380013800\", "
     "expected 11 digits starting with 1)\n"
     "bad_phone.csv:3: 父亲电话: not a mobile number (got \"23800138000\", "
     "expected 11 digits starting with 1)\n"
     "2 bad rows; nothing imported\n"},
    {"bad_date.csv", NULL,
     "bad_date.csv:3: 出生日期: no such date (got \"2015-02-30\", expected a "
     "date like 2015-03-07)\n"
     "bad_date.csv:4: 外出时间: not a date (got \"去年\", expected a date "
     "like 2015-03-07 or a month like 2015-03)\n"
     "2 bad rows; nothing imported\n"},
    {"bad_enum.csv", NULL,
     "bad_enum.csv:2: 性别: unknown value (got \"男孩\", expected 男 or 女)\n"
     "bad_enum.csv:2: 状态: unknown value (got \"在外\", expected 留守, 返乡, "
     "毕业 or 转学)\n"
     "bad_enum.csv:2: 监护人关系: unknown value (got \"邻居\", expected 父亲, "
     "母亲, 祖父母, 外祖父母, 其他亲属 or 其他)\n"
     "1 bad row; nothing imported\n"},
    {"bad_required.csv", NULL,
     "bad_required.csv:3: 姓名: required\n"
     "bad_required.csv:3: 监护人姓名: required\n"
     "bad_required.csv:3: 监护人电话: required\n"
     "1 bad row; nothing imported\n"},
    {"bad_duplicate.csv", NULL,
     "bad_duplicate.csv:4: 姓名: the same child as line 2 (same school, name "
     "and birth date)\n"
     "1 bad row; nothing imported\n"},
    {"bad_school.csv", NULL,
     "bad_school.csv:2: 学校: unknown school (got \"石门中心小学\", expected a "
     "school in the registry: did you mean 石门镇中心小学?)\n"
     "1 bad row; nothing imported\n"},
    {"bad_syntax.csv", NULL,
     "bad_syntax.csv:3: unterminated quoted field\n"
     "the file cannot be read past this error; nothing imported\n"},
    {"bad_gbk.csv", NULL,
     "bad_gbk.csv:3: 父亲电话: not a mobile number (got \"136001360\", "
     "expected 11 digits starting with 1)\n"
     "1 bad row; nothing imported\n"},
    /* BOM, CRLF and quoted notes over several lines: the line is the
    ** physical line the record starts on. */
    {"bad_bom_crlf.csv", NULL,
     "bad_bom_crlf.csv:8: 父亲电话: not a mobile number (got \"1550015500\", "
     "expected 11 digits starting with 1)\n"
     "1 bad row; nothing imported\n"},
    {"bad_header.csv", NULL,
     "bad_header.csv:1: unknown column \"性另\" (did you mean 性别?)\n"
     "bad_header.csv:1: unknown column \"电话号码\" (expected 姓名, 性别, "
     "出生日期, "
     "学校, 班级, 村, 外出, 外出时间, 状态, 学习表现, 父亲姓名, 父亲电话, "
     "父亲务工地, "
     "母亲姓名, 母亲电话, 母亲务工地, 监护人姓名, 监护人关系, 监护人电话, "
     "备注, or "
     "their English names)\n"
     "bad_header.csv:1: missing column 性别 (gender)\n"},
    {"bad_missing.csv", NULL,
     "bad_missing.csv:1: missing column 性别 (gender)\n"
     "bad_missing.csv:1: missing column 监护人关系 (guardian_relation)\n"},
    {"bad_fields.csv", NULL,
     "bad_fields.csv:3: 21 fields, but the header has 20 columns (a comma in "
     "a value that is not quoted?)\n"
     "1 bad row; nothing imported\n"},
    {"bad_guardian.csv", NULL,
     "bad_guardian.csv:2: 监护人姓名: the guardian is the mother, whose name "
     "is given as \"刘梅\" (got \"刘小梅\")\n"
     "bad_guardian.csv:3: 监护人电话: the guardian is the mother, whose phone "
     "is given as \"13200132000\" (got \"13200132001\")\n"
     "bad_guardian.csv:3: 父亲姓名: required when 父亲电话 or 父亲务工地 is "
     "given\n"
     "2 bad rows; nothing imported\n"},
    {"bad_pairings.csv", "pairings",
     "bad_pairings.csv:2: 结对人: a third active pairing (the child has 2 "
     "active in the registry and 0 earlier in this file, expected at most 2: "
     "give one an end date)\n"
     "bad_pairings.csv:3: 结束日期: before the start date (got \"2026-08-01\", "
     "expected 2026-09-01 or later)\n"
     "bad_pairings.csv:4: 学生姓名: no such child (got \"李四\" of "
     "石门镇中心小学 "
     "born 2016-05-01, expected a child in the registry: import the children "
     "first)\n"
     "bad_pairings.csv:5: 结对人: no such teacher or volunteer (got \"张大山\" "
     "with phone 13800138000, expected one in the registry: import the people "
     "first)\n"
     "4 bad rows; nothing imported\n"},
};

static void a_bad_file_is_refused_whole_with_each_error_and_no_change(
    void **state) {
  (void)state;
  char *d = registry_dir(1);
  char *before = snapshot(d);
  for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
    const bad_file *b = &BAD[i];
    tu_run r = b->kind
                   ? reg(d, "import", b->file, "--kind", b->kind, NULL, NULL)
                   : reg(d, "import", b->file, NULL, NULL, NULL, NULL);
    if (r.status != 1 || strcmp(r.err, b->err) != 0)
      printf("%s: status %d\n--- stderr:\n%s--- expected:\n%s", b->file,
             r.status, r.err, b->err);
    assert_int_equal(r.status, 1);
    assert_string_equal(r.err, b->err);
    assert_string_equal(r.out, "");
    tu_run_free(&r);
    char *after = snapshot(d);
    assert_string_equal(after, before);
    free(after);
  }
  free(before);
  done(d);
}

static void usage_errors_exit_two(void **state) {
  (void)state;
  char *d = registry_dir(0);
  tu_run r = reg(d, "import", NULL, NULL, NULL, NULL, NULL);
  assert_int_equal(r.status, 2);
  assert_true(tu_contains(r.err, "registry import: FILE missing"));
  tu_run_free(&r);
  r = reg(d, "import", "children.csv", "--kind", "kids", NULL, NULL);
  assert_int_equal(r.status, 2);
  assert_true(tu_contains(r.err, "--kind: expected children, schools"));
  tu_run_free(&r);
  r = reg(d, "export", "--encoding", "latin1", NULL, NULL, NULL);
  assert_int_equal(r.status, 2);
  tu_run_free(&r);
  r = reg(d, "export", "--school", "没有这个学校", NULL, NULL, NULL);
  assert_int_equal(r.status, 1);
  assert_true(tu_contains(r.err, "unknown school \"没有这个学校\""));
  tu_run_free(&r);
  done(d);
}

/* An option's value is never the next option, and the rejects never
** overwrite the file read: each a usage error, nothing changed, no file. */
static void an_option_is_no_value_and_the_rejects_are_not_the_input(
    void **state) {
  (void)state;
  char *d = registry_dir(0);
  char *before = snapshot(d);
  tu_run r =
      reg(d, "import", "--skip-bad", "--dry-run", "some_bad.csv", NULL, NULL);
  assert_int_equal(r.status, 2);
  assert_true(tu_contains(r.err,
                          "registry import: --skip-bad needs a value "
                          "(got the option \"--dry-run\")\n"));
  assert_string_equal(r.out, "");
  tu_run_free(&r);
  assert_int_equal(access("--dry-run", F_OK), -1);
  /* The same file, however it is written. */
  char *in = tu_read("some_bad.csv");
  tu_write(d, "p2.csv", in);
  char *p2 = path_in(d, "p2.csv");
  char *p2b = path_in(d, ".//./p2.csv");
  r = reg(d, "import", p2, "--skip-bad", p2b, NULL, NULL);
  assert_int_equal(r.status, 2);
  assert_true(tu_contains(r.err,
                          "--skip-bad: the rejects need a file of "
                          "their own"));
  tu_run_free(&r);
  char *after_in = tu_read(p2);
  assert_string_equal(after_in, in);
  r = reg(d, "export", "-o", "--school", NULL, NULL, NULL);
  assert_int_equal(r.status, 2);
  assert_true(tu_contains(r.err,
                          "registry export: -o needs a value (got "
                          "the option \"--school\")\n"));
  tu_run_free(&r);
  assert_int_equal(access("--school", F_OK), -1);
  char *after = snapshot(d);
  assert_string_equal(after, before);
  free(after), free(after_in), free(p2b), free(p2), free(in), free(before);
  done(d);
}

/* --------------------------------------------------------- encodings */

static const char *const NAMES_SQL =
    "SELECT group_concat(x, ',') FROM (SELECT name || ':' || "
    "coalesce(notes, '') AS x FROM children ORDER BY school_id, name, "
    "birth_date)";

static void gbk_and_bom_crlf_files_read_back_alike(void **state) {
  (void)state;
  const char *files[] = {"children_gbk.csv", "children_bom_crlf.csv",
                         "children.csv"};
  char *want = NULL;
  char *want_data = NULL;
  for (size_t i = 0; i < 3; i++) {
    char *d = registry_dir(0);
    tu_run r = reg(d, "import", files[i], NULL, NULL, NULL, NULL);
    assert_int_equal(r.status, 0);
    assert_string_equal(
        r.out,
        "children: 8 rows: 8 added, 0 changed, 0 unchanged; 0 in the registry "
        "not in this file (same schools; left as they are)\n");
    tu_run_free(&r);
    char *names = tu_db_text(d, NAMES_SQL);
    if (i == 0)
      assert_string_equal(
          names,
          "张小明:,张小红:,李娜:母亲已返乡,王芳:有哮喘,注意天气变化,"
          "赵磊:性格内向\n需要多关心,刘洋:,吴婷:,陈浩:");
    char *data = tu_db_text(d, DATA_SQL);
    if (!want) {
      want = names;
      want_data = data;
    } else {
      assert_string_equal(names, want);
      free(names);
      /* the same rows but for changed_at, the clock at import */
      assert_int_equal(strlen(data), strlen(want_data));
      free(data);
    }
    /* What export writes is the canonical file, byte for byte. */
    char *out = path_in(d, "export.csv");
    ok_run(d, "export", "-o", out, NULL);
    char *got = tu_read(out);
    char *canon = tu_read(FIXTURES "/children.csv");
    assert_string_equal(got, canon);
    free(got);
    free(canon);
    free(out);
    done(d);
  }
  free(want);
  free(want_data);
}

/* ----------------------------------------------------- skip, dry run */

static void skip_bad_writes_the_rejects_and_imports_the_rest(void **state) {
  (void)state;
  char *d = registry_dir(0);
  char *rej = path_in(d, "rejects.csv");
  tu_run r = reg(d, "import", "some_bad.csv", "--skip-bad", rej, NULL, NULL);
  assert_int_equal(r.status, 0);
  assert_string_equal(
      r.err,
      "some_bad.csv:3: 出生日期: no such date (got \"2016-02-30\", expected a "
      "date like 2015-03-07)\n"
      "some_bad.csv:5: 监护人电话: not a mobile number (got \"1560015600\", "
      "expected 11 digits starting with 1)\n");
  char want_out[1024];
  snprintf(want_out, sizeof want_out,
           "children: 4 rows: 2 added, 0 changed, 0 unchanged, 2 bad "
           "(skipped, written to %s); 0 in the registry not in this file "
           "(same schools; left as they are)\n",
           rej);
  assert_string_equal(r.out, want_out);
  tu_run_free(&r);
  char *got = tu_read(rej);
  assert_non_null(got);
  assert_string_equal(
      got,
      "姓名,性别,出生日期,学校,班级,村,外出,外出时间,状态,学习表现,父亲姓名,"
      "父亲电话,"
      "父亲务工地,母亲姓名,母亲电话,母亲务工地,监护人姓名,监护人关系,"
      "监护人电话,备注,错误"
      "\r\n"
      "王芳,女,2016-02-30,石门镇中心小学,3年级1班,,父亲,,留守,,王强,"
      "13600136000,"
      "浙江宁波,刘梅,13500135000,,刘梅,母亲,13500135000,\"有哮喘,注意\","
      "\"出生日期"
      ": no such date (got \"\"2016-02-30\"\", expected a date like "
      "2015-03-07)\"\r\n"
      "陈浩,男,2015-01-10,青山镇小学,2年级1班,青山村,父亲,2021-09-01,留守,好,"
      "陈志,"
      "15500155000,福建晋江,黄梅,15600156000,,黄梅,母亲,1560015600,,"
      "\"监护人电话: "
      "not a mobile number (got \"\"1560015600\"\", expected 11 digits "
      "starting with 1)\"\r\n");
  free(got);
  char *names = tu_db_text(
      d,
      "SELECT group_concat(name, ',') FROM (SELECT name FROM children "
      "ORDER BY id)");
  assert_string_equal(names, "张小明,刘洋");
  free(names);
  free(rej);
  done(d);
}

static void dry_run_counts_and_changes_nothing(void **state) {
  (void)state;
  char *d = registry_dir(0);
  char *before = snapshot(d);
  tu_run r = reg(d, "import", "children.csv", "--dry-run", NULL, NULL, NULL);
  assert_int_equal(r.status, 0);
  assert_string_equal(
      r.out,
      "dry run: children: 8 rows: 8 added, 0 changed, 0 unchanged; 0 in the "
      "registry not in this file (same schools; left as they are); nothing "
      "changed\n");
  tu_run_free(&r);
  char *after = snapshot(d);
  assert_string_equal(after, before);
  free(after);
  /* With bad rows to skip, still nothing, and no rejects file. */
  char *rej = path_in(d, "rejects.csv");
  r = reg(d, "import", "some_bad.csv", "--skip-bad", rej, "--dry-run", NULL);
  assert_int_equal(r.status, 0);
  assert_true(tu_contains(r.out, "2 bad (would be skipped)"));
  tu_run_free(&r);
  assert_int_equal(access(rej, F_OK), -1);
  after = snapshot(d);
  assert_string_equal(after, before);
  free(after);
  free(rej);
  free(before);
  done(d);
}

/* ------------------------------------------------------ re-importing */

static const char *const COUNTS_SQL =
    "SELECT (SELECT count(*) FROM children) || ' ' || (SELECT count(*) FROM "
    "people) || ' ' || (SELECT count(*) FROM guardianships) || ' ' || "
    "(SELECT count(*) FROM pairings)";

static void a_second_import_changes_nothing(void **state) {
  (void)state;
  char *d = registry_dir(1);
  char *counts = tu_db_text(d, COUNTS_SQL);
  /* 8 children; 6 staff and 18 parents and guardians (siblings share
  ** theirs); 21 links: 8 fathers, 8 mothers, 5 guardians not a parent */
  assert_string_equal(counts, "8 24 21 3");
  char *before = tu_db_text(d, DATA_SQL);
  const char *kinds[][2] = {{"children.csv", "children"},
                            {"schools.csv", "schools"},
                            {"people.csv", "people"},
                            {"pairings.csv", "pairings"}};
  const char *want[] = {
      "children: 8 rows: 0 added, 0 changed, 8 unchanged; 0 in the registry "
      "not in this file (same schools; left as they are)\n",
      "schools: 2 rows: 0 added, 0 changed, 2 unchanged; 0 in the registry "
      "not in this file (left as they are)\n",
      "people: 6 rows: 0 added, 0 changed, 6 unchanged; 0 in the registry not "
      "in this file (left as they are)\n",
      "pairings: 3 rows: 0 added, 0 changed, 3 unchanged; 0 active pairings "
      "in the registry not in this file (left as they are)\n"};
  for (int i = 0; i < 4; i++) {
    tu_run r = reg(d, "import", kinds[i][0], "--kind", kinds[i][1], NULL, NULL);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, want[i]);
    tu_run_free(&r);
  }
  char *after = tu_db_text(d, DATA_SQL);
  assert_string_equal(after, before);
  char *counts2 = tu_db_text(d, COUNTS_SQL);
  assert_string_equal(counts2, counts);
  /* one audit entry per import, with counts and no names */
  char *audit = tu_db_text(d,
                           "SELECT subject || ' ' || detail FROM yz_audit "
                           "WHERE action = 'registry.import' ORDER BY id "
                           "DESC LIMIT 1");
  assert_string_equal(audit,
                      "pairings rows=3 added=0 changed=0 unchanged=3 left=0 "
                      "bad=0 encoding=utf-8");
  free(audit);
  free(counts);
  free(counts2);
  free(before);
  free(after);
  done(d);
}

static void an_updated_file_counts_and_announces_its_changes(void **state) {
  (void)state;
  char *d = registry_dir(1);
  tu_write(d, "yizhan.conf.lua", "plugins = { registry = {}, evlog = {} }\n");
  tu_write(d, "plugins/evlog.lua", EVLOG);
  tu_run r = reg(d, "import", "children_updated.csv", NULL, NULL, NULL, NULL);
  assert_int_equal(r.status, 0);
  assert_string_equal(
      r.out,
      "children: 8 rows: 1 added, 2 changed (1 of them left: status no "
      "longer active), 5 unchanged; 1 in the registry not in this file (same "
      "schools; left as they are)\n");
  tu_run_free(&r);
  char *ev = tu_db_text(
      d,
      "SELECT group_concat(topic || ' ' || data, '\n') FROM (SELECT * "
      "FROM evlog ORDER BY id)");
  assert_string_equal(
      ev,
      "registry.child_changed {\"child\":1,\"class\":\"4年级1班\",\"fields\":["
      "\"class\"],\"school\":1}\n"
      "registry.child_changed {\"child\":6,\"class\":\"2年级1班\",\"fields\":["
      "\"status\",\"father_workplace\",\"guardian_name\",\"guardian_"
      "relation\",\"guardian_phone\"],\"school\":2}\n"
      "registry.child_left {\"child\":6,\"class\":\"2年级1班\",\"old_status\":"
      "\"active\",\"school\":2,\"status\":\"returned\"}\n"
      "registry.child_added {\"child\":9,\"class\":\"2年级1班\",\"school\":1}\n"
      "registry.imported {\"added\":1,\"changed\":2,\"each\":true,\"kind\":"
      "\"children\",\"left\":1}");
  free(ev);
  /* 刘洋's guardian is now his father; his uncle is on no card any more. */
  char *g = tu_db_text(
      d,
      "SELECT group_concat(x, ',') FROM (SELECT p.name || ':' || "
      "g.relation || ':' || g.is_primary AS x FROM guardianships g JOIN "
      "people p ON p.id = g.person_id WHERE g.child_id = 6 ORDER BY "
      "g.relation)");
  assert_string_equal(g, "刘建国:father:1,周燕:mother:0");
  free(g);
  assert_int_equal(
      tu_db_int(d, "SELECT count(*) FROM people WHERE name = '刘叔'"), 0);
  /* The same file again: nothing more than its summary. */
  r = reg(d, "import", "children_updated.csv", NULL, NULL, NULL, NULL);
  assert_true(tu_contains(r.out, "0 added, 0 changed, 8 unchanged"));
  tu_run_free(&r);
  assert_int_equal(tu_db_int(d, "SELECT count(*) FROM evlog"), 6);
  assert_int_equal(
      tu_db_int(d,
                "SELECT count(*) FROM evlog WHERE topic = 'registry.imported' "
                "AND data LIKE '{\"added\":0,\"changed\":0,%'"),
      1);
  done(d);
}

/* The guardianships of the registry, one string. */
static const char *const CARDS_SQL =
    "SELECT group_concat(x, ';') FROM (SELECT c.name || ':' || p.name || "
    "':' || coalesce(p.phone, '') || ':' || g.relation || ':' || "
    "g.is_primary || ':' || coalesce(g.workplace, '') AS x FROM "
    "guardianships g JOIN children c ON c.id = g.child_id JOIN people p ON "
    "p.id = g.person_id ORDER BY c.id, g.relation, p.name)";

/* A school's form without the mother's columns and the father's workplace
** (children_partial.csv): every card stays as it is, and the one child who
** moved up a class changed in that only. */
static void columns_left_out_keep_the_parents_on_the_cards(void **state) {
  (void)state;
  char *d = registry_dir(1);
  tu_write(d, "yizhan.conf.lua", "plugins = { registry = {}, evlog = {} }\n");
  tu_write(d, "plugins/evlog.lua", EVLOG);
  char *cards = tu_db_text(d, CARDS_SQL);
  char *counts = tu_db_text(d, COUNTS_SQL);
  tu_run r = reg(d, "import", "children_partial.csv", NULL, NULL, NULL, NULL);
  assert_int_equal(r.status, 0);
  assert_string_equal(
      r.out,
      "children: 8 rows: 0 added, 1 changed, 7 unchanged; 0 in the registry "
      "not in this file (same schools; left as they are)\n");
  tu_run_free(&r);
  char *cards2 = tu_db_text(d, CARDS_SQL);
  assert_string_equal(cards2, cards);
  assert_true(tu_contains(cards,
                          "张小明:李秀英:+8613900139000:mother:0:"
                          "广东东莞"));
  char *counts2 = tu_db_text(d, COUNTS_SQL);
  assert_string_equal(counts2, counts);
  char *ev = tu_db_text(
      d,
      "SELECT group_concat(topic || ' ' || data, '\n') FROM (SELECT * "
      "FROM evlog ORDER BY id)");
  assert_string_equal(
      ev,
      "registry.child_changed {\"child\":1,\"class\":\"4年级1班\",\"fields\":["
      "\"class\"],\"school\":1}\n"
      "registry.imported {\"added\":0,\"changed\":1,\"each\":true,\"kind\":"
      "\"children\",\"left\":0}");
  free(ev), free(counts2), free(cards2), free(counts), free(cards);
  done(d);
}

/* ------------------------------------------------------------- export */

static void export_imports_to_no_change_and_exports_the_same_bytes(
    void **state) {
  (void)state;
  char *d = registry_dir(1);
  const char *kinds[] = {"children", "schools", "people", "pairings"};
  const char *fixtures[] = {"children.csv", "schools.csv", "people.csv",
                            "pairings.csv"};
  for (int i = 0; i < 4; i++) {
    char *one = path_in(d, "one.csv");
    char *two = path_in(d, "two.csv");
    tu_run r = reg(d, "export", "--kind", kinds[i], "-o", one, NULL);
    assert_int_equal(r.status, 0);
    tu_run_free(&r);
    char *before = tu_db_text(d, DATA_SQL);
    r = reg(d, "import", one, "--kind", kinds[i], NULL, NULL);
    assert_int_equal(r.status, 0);
    assert_true(tu_contains(r.out, " 0 added, 0 changed, "));
    tu_run_free(&r);
    char *after = tu_db_text(d, DATA_SQL);
    assert_string_equal(after, before);
    r = reg(d, "export", "--kind", kinds[i], "-o", two, NULL);
    assert_int_equal(r.status, 0);
    tu_run_free(&r);
    char *a = tu_read(one), *b = tu_read(two);
    char fx[4096];
    snprintf(fx, sizeof fx, "%s/%s", FIXTURES, fixtures[i]);
    char *c = tu_read(fx);
    assert_string_equal(a, b);
    assert_string_equal(a, c); /* the fixtures are in canonical form */
    free(a), free(b), free(c), free(before), free(after), free(one), free(two);
  }
  /* Standard output, and one school. */
  tu_run r = reg(d, "export", "--school", "青山镇小学", NULL, NULL, NULL);
  assert_int_equal(r.status, 0);
  assert_true(tu_contains(r.out, "姓名,性别,出生日期,学校,"));
  assert_true(tu_contains(r.out, "\r\n刘洋,男,2016-09-09,青山镇小学,"));
  assert_null(strstr(r.out, "石门镇中心小学"));
  tu_run_free(&r);
  /* GBK, as spreadsheets in China read it, imports back unchanged. */
  char *gbk = path_in(d, "gbk.csv");
  r = reg(d, "export", "--encoding", "gbk", "-o", gbk, NULL);
  assert_int_equal(r.status, 0);
  tu_run_free(&r);
  r = reg(d, "import", gbk, NULL, NULL, NULL, NULL);
  assert_int_equal(r.status, 0);
  assert_true(tu_contains(r.out, "0 added, 0 changed, 8 unchanged"));
  tu_run_free(&r);
  free(gbk);
  done(d);
}

int main(void) {
  /* The fixtures are named as a clerk types them: relative paths. */
  if (chdir(FIXTURES) != 0) {
    perror(FIXTURES);
    return 1;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(
          a_bad_file_is_refused_whole_with_each_error_and_no_change),
      cmocka_unit_test(usage_errors_exit_two),
      cmocka_unit_test(an_option_is_no_value_and_the_rejects_are_not_the_input),
      cmocka_unit_test(gbk_and_bom_crlf_files_read_back_alike),
      cmocka_unit_test(skip_bad_writes_the_rejects_and_imports_the_rest),
      cmocka_unit_test(dry_run_counts_and_changes_nothing),
      cmocka_unit_test(a_second_import_changes_nothing),
      cmocka_unit_test(an_updated_file_counts_and_announces_its_changes),
      cmocka_unit_test(columns_left_out_keep_the_parents_on_the_cards),
      cmocka_unit_test(export_imports_to_no_change_and_exports_the_same_bytes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
