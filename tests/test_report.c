/*
** test_report.c: `yizhan report` as a county office runs it, on the small
** county of tests/report/fixture.lua, whose table is written out by hand
** below: CSV and text figures for the county and for one school, -o files,
** and the HTML page printed to PDF by a real browser (headless Chromium),
** whose text (pdftotext) holds the Chinese title and the figures on A4 pages.
**
** The report is of today (real time), so the test builds a calendar term
** around today and gives the fixture its dates; the figures do not depend
** on the date.
*/
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

/* The dates of the test, in the county's zone (Asia/Shanghai). */
typedef struct dates {
  char today[16];  /* the report's date */
  char month1[16]; /* the 1st of this month */
  char prev[16];   /* the last day of the month before */
  char start[16];  /* the term around today: 60 days back */
  char mid[16];    /* 10 days back */
  char end[16];    /* 60 days on */
  char due1[16];   /* a visit due early in the term */
  char done1[16];  /* when one of those was done */
  char due2[16];   /* a visit due near the end, after today */
} dates;

static dates D;
static char *dir; /* the data directory */

/* The civil date `days` days after today, as YYYY-MM-DD. */
static void day_str(char *out, long days) {
  time_t t = time(NULL) + days * 86400L;
  struct tm tm;
  localtime_r(&t, &tm);
  strftime(out, 16, "%Y-%m-%d", &tm);
}

static void make_dates(void) {
  setenv("TZ", "Asia/Shanghai", 1);
  tzset();
  day_str(D.today, 0);
  day_str(D.start, -60);
  day_str(D.mid, -10);
  day_str(D.end, 60);
  day_str(D.due1, -51);
  day_str(D.done1, -53);
  day_str(D.due2, 55);
  snprintf(D.month1, sizeof D.month1, "%.8s01", D.today);
  int day = atoi(D.today + 8);
  day_str(D.prev, -day);
}

static tu_run report(const char *const *extra) {
  const char *args[16] = {"-d", dir, "report", "--date", D.today};
  int n = 5;
  for (int i = 0; extra[i]; i++) args[n++] = extra[i];
  args[n] = NULL;
  return tu_yizhan(args);
}

static int setup(void **state) {
  (void)state;
  make_dates();
  char config[2048];
  snprintf(config, sizeof config,
           "timezone = 'Asia/Shanghai'\n"
           "quiet_hours = false\n"
           "calendar = { terms = { { name = '测试学期', start = '%s', mid = "
           "'%s', ['end'] = '%s' } } }\n"
           "channels = { default = 'demo', demo = { type = 'file', path = "
           "'outbox.jsonl' } }\n"
           "plugins = { registry = {} }\n",
           D.start, D.mid, D.end);
  dir = tu_datadir(config);

  char path[4096];
  snprintf(path, sizeof path, "%s/tests/report/fixture.lua", YZ_SOURCE_DIR);
  char *fixture = tu_read(path);
  assert_non_null(fixture);
  size_t len = strlen(fixture) + 1024;
  char *code = malloc(len);
  snprintf(code, len,
           "local TODAY, MONTH1, PREV, DUE1, DONE1, DUE2 = '%s', '%s', '%s', "
           "'%s', '%s', '%s'\n%s",
           D.today, D.month1, D.prev, D.due1, D.done1, D.due2, fixture);
  tu_run r =
      tu_yizhan((const char *[]){"-d", dir, "eval", "registry", code, NULL});
  if (r.status != 0) fprintf(stderr, "fixture: %s\n%s", r.out, r.err);
  assert_int_equal(r.status, 0);
  tu_run_free(&r);
  free(code);
  free(fixture);

  /* Two messages of this term through the file channel: one SMS part and
  ** two (a Chinese text over 70 characters). */
  r = tu_yizhan((const char *[]){"-d", dir, "send", "--to", "13800138001",
                                 "--text", "本月请给孩子写一封信。", NULL});
  assert_int_equal(r.status, 0);
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", dir, "send", "--to", "13800138002",
                                 "--text",
                                 "各位家长：本学期家长会定于下周五下午在学校召"
                                 "开，请您准时参加。会上将介绍孩子"
                                 "在校学习和生活情况，并听取您的意见和建议。如"
                                 "不能到会，请提前与班主任联系。"
                                 "谢谢！",
                                 NULL});
  assert_int_equal(r.status, 0);
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", dir, "run", "--until-idle", NULL});
  if (r.status != 0) fprintf(stderr, "run: %s\n%s", r.out, r.err);
  assert_int_equal(r.status, 0);
  tu_run_free(&r);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  tu_rmrf(dir);
  free(dir);
  return 0;
}

/* The county's table, worked by hand. Largest-remainder rounding in tenths
** of a percent: 3, 2, 2 of 7 are 42.857, 28.571, 28.571: rounded down
** 428 + 285 + 285 = 998, and the two tenths missing go to the largest
** remainders (.71, .71 over .57): 42.8, 28.6, 28.6 (plain rounding would sum
** to 100.1). 3, 2, 1, 1 of 7: 428 285 142 142 = 997, the three tenths to the
** remainders .86 .86 .71: 42.8 28.6 14.3 14.3. 4, 3 of 7: 57.1 42.9. Single
** ratios round half up: 7/200 = 3.5, 4/120 = 3.33 -> 3.3, 3/80 = 3.75 -> 3.8,
** visits 1 done of 3 due = 33.3, 2 of 7 children = 28.57 -> 28.6. */
static const char county_csv[] =
    "分类,项目,数量,百分比\r\n"
    "总体,在校学生,200,\r\n"
    "总体,留守儿童,7,3.5\r\n"
    "性别,男,4,57.1\r\n"
    "性别,女,3,42.9\r\n"
    "监护类型,祖父母,3,42.8\r\n"
    "监护类型,外祖父母,2,28.6\r\n"
    "监护类型,其他,2,28.6\r\n"
    "学习表现,好,3,42.8\r\n"
    "学习表现,中,2,28.6\r\n"
    "学习表现,差,1,14.3\r\n"
    "学习表现,未填,1,14.3\r\n"
    "家访,应访,3,\r\n"
    "家访,已访,1,33.3\r\n"
    "家访,逾期未访,1,\r\n"
    "本月联系,写信或通话,2,28.6\r\n"
    "本月联系,联系监护人,2,28.6\r\n"
    "短信,已发出,2,\r\n"
    "短信,已送达,0,\r\n"
    "短信,待重试,0,\r\n"
    "短信,发送失败,0,\r\n"
    "短信,排队中,0,\r\n"
    "短信,计费条数,3,\r\n"
    "各校在校学生,城关小学,120,\r\n"
    "各校在校学生,河口小学,80,\r\n"
    "各校留守儿童,城关小学,4,3.3\r\n"
    "各校留守儿童,河口小学,3,3.8\r\n";

/* 河口小学 alone: children 5 (M, paternal, good), 6 (F, maternal, medium),
** 7 (M, father, none). 2 and 1 of 3: 666 (.67) + 333 (.33) = 999, the tenth
** to 男: 66.7 33.3. 1, 1, 1 of 3: equal remainders, the first item gets the
** tenth: 33.4 33.3 33.3; performance 1, 1, 0, 1: 33.4 33.3 0.0 33.3. One
** visit due (5's, after today), a call for 5 and 6's guardian: 1 of 3 =
** 33.3. Messages are the county's. */
static const char school_csv[] =
    "分类,项目,数量,百分比\r\n"
    "总体,在校学生,80,\r\n"
    "总体,留守儿童,3,3.8\r\n"
    "性别,男,2,66.7\r\n"
    "性别,女,1,33.3\r\n"
    "监护类型,祖父母,1,33.4\r\n"
    "监护类型,外祖父母,1,33.3\r\n"
    "监护类型,其他,1,33.3\r\n"
    "学习表现,好,1,33.4\r\n"
    "学习表现,中,1,33.3\r\n"
    "学习表现,差,0,0.0\r\n"
    "学习表现,未填,1,33.3\r\n"
    "家访,应访,1,\r\n"
    "家访,已访,0,0.0\r\n"
    "家访,逾期未访,0,\r\n"
    "本月联系,写信或通话,1,33.3\r\n"
    "本月联系,联系监护人,1,33.3\r\n"
    "短信,已发出,2,\r\n"
    "短信,已送达,0,\r\n"
    "短信,待重试,0,\r\n"
    "短信,发送失败,0,\r\n"
    "短信,排队中,0,\r\n"
    "短信,计费条数,3,\r\n";

static void csv_holds_the_hand_worked_table(void **state) {
  (void)state;
  tu_run r = report((const char *[]){"--format", "csv", NULL});
  assert_string_equal(r.err, "");
  assert_int_equal(r.status, 0);
  assert_string_equal(r.out, county_csv);
  tu_run_free(&r);
  r = report((const char *[]){"--school", "河口小学", "--format", "csv", NULL});
  assert_int_equal(r.status, 0);
  assert_string_equal(r.out, school_csv);
  tu_run_free(&r);
}

static void text_is_aligned_with_a_chinese_title(void **state) {
  (void)state;
  tu_run r = report((const char *[]){NULL});
  assert_int_equal(r.status, 0);
  char want[256];
  snprintf(want, sizeof want, "留守儿童统计表 (全县) %s\n", D.today);
  assert_true(strncmp(r.out, want, strlen(want)) == 0);
  snprintf(want, sizeof want, "学期 测试学期 (%s 至 %s)，本月 %.7s\n", D.start,
           D.end, D.today);
  assert_true(tu_contains(r.out, want));
  /* Labels padded by display width (a CJK character is two columns), so
  ** the figures line up: 21 columns of label, 4 of count, 7 of percent. */
  const char *lines[] = {
      "\n项目                   数量  占比(%)\n",
      "\n  留守儿童                7      3.5\n",
      "\n  男                      4     57.1\n",
      "\n  祖父母                  3     42.8\n",
      "\n  外祖父母                2     28.6\n",
      "\n  其他                    2     28.6\n",
      "\n  未填                    1     14.3\n",
      "\n  已访                    1     33.3\n",
      "\n  写信或通话              2     28.6\n",
      "\n  计费条数                3\n",
      "\n学校      在校学生  留守儿童  占比(%)\n"
      "城关小学       120         4      3.3\n"
      "河口小学        80         3      3.8\n"
      "合计           200         7      3.5\n",
  };
  for (size_t i = 0; i < sizeof lines / sizeof *lines; i++)
    assert_true(tu_contains(r.out, lines[i]));
  tu_run_free(&r);

  r = report((const char *[]){"--school", "河口小学", NULL});
  assert_int_equal(r.status, 0);
  snprintf(want, sizeof want, "留守儿童统计表 (河口小学) %s\n", D.today);
  assert_true(tu_contains(r.out, want));
  assert_true(tu_contains(r.out, "\n  祖父母                  1     33.4\n"));
  assert_true(tu_contains(r.out, "\n短信 (测试学期，全县)\n"));
  assert_null(strstr(r.out, "各校情况"));
  tu_run_free(&r);

  r = report((const char *[]){"--school", "没有这个学校", NULL});
  assert_int_equal(r.status, 1);
  assert_true(tu_contains(r.err, "no school named '没有这个学校'"));
  tu_run_free(&r);
  r = report((const char *[]){"--format", "pdf", NULL});
  assert_int_equal(r.status, 2);
  assert_true(tu_contains(r.err, "usage: yizhan report"));
  tu_run_free(&r);
}

static void o_writes_a_private_file_and_nothing_to_stdout(void **state) {
  (void)state;
  char *tmp = tu_tmpdir();
  char csv[4200], html[4200];
  snprintf(csv, sizeof csv, "%s/县报表.csv", tmp);
  snprintf(html, sizeof html, "%s/report.html", tmp);
  tu_run r = report((const char *[]){"-o", csv, NULL});
  assert_int_equal(r.status, 0);
  assert_string_equal(r.out, "");
  tu_run_free(&r);
  /* the format follows the name; a BOM so that spreadsheets read UTF-8 */
  char *got = tu_read(csv);
  assert_non_null(got);
  assert_memory_equal(got, "\xEF\xBB\xBF", 3);
  assert_string_equal(got + 3, county_csv);
  free(got);
  struct stat st;
  assert_int_equal(stat(csv, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);

  r = report((const char *[]){"--school", "城关小学", "-o", html, NULL});
  assert_int_equal(r.status, 0);
  assert_string_equal(r.out, "");
  tu_run_free(&r);
  got = tu_read(html);
  assert_non_null(got);
  assert_true(tu_contains(got, "<title>留守儿童统计表 (城关小学) "));
  assert_true(tu_contains(
      got, "<td>外祖父母</td><td class=\"n\">1</td><td class=\"n\">25.0</td>"));
  free(got);
  tu_rmrf(tmp);
  free(tmp);
}

/* ------------------------------------------------------------ the browser */

/* Runs argv with stdout to 'out' (NULL: /dev/null), stderr to /dev/null,
** HOME set to 'home' (unless NULL), in a process group of its own; waits up
** to 'timeout' seconds, then kills the group (a browser starts helpers) by
** the pid it started. Returns the exit status, or -1 on timeout. */
static int run_for(const char *const *argv, const char *out, int timeout,
                   const char *home) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    setpgid(0, 0);
    if (home) setenv("HOME", home, 1);
    FILE *o = freopen(out ? out : "/dev/null", "w", stdout);
    FILE *e = freopen("/dev/null", "w", stderr);
    FILE *i = freopen("/dev/null", "r", stdin);
    (void)o, (void)e, (void)i;
    execvp(argv[0], (char *const *)argv);
    _exit(127);
  }
  setpgid(pid, pid);
  double until = tu_now_s() + timeout;
  int st;
  for (;;) {
    pid_t w = waitpid(pid, &st, WNOHANG);
    if (w == pid) break;
    if (tu_now_s() > until) {
      fprintf(stderr, "%s: no answer in %d s, killed\n", argv[0], timeout);
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      return -1;
    }
    tu_sleep_ms(50);
  }
  kill(-pid, SIGKILL); /* helpers the browser left behind, if any */
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* True when one line of 'text' holds both a and b, in that order. */
static int line_has(const char *text, const char *a, const char *b) {
  for (const char *l = text; l && *l;) {
    const char *nl = strchr(l, '\n');
    size_t n = nl ? (size_t)(nl - l) : strlen(l);
    char *line = strndup(l, n);
    char *pa = strstr(line, a);
    int ok = pa && strstr(pa + strlen(a), b);
    free(line);
    if (ok) return 1;
    l = nl ? nl + 1 : NULL;
  }
  fprintf(stderr, "no line with '%s' then '%s' in:\n%s\n", a, b, text);
  return 0;
}

static void html_prints_on_a4_in_a_real_browser(void **state) {
  (void)state;
  const char *browser = "/usr/bin/chromium";
  if (access(browser, X_OK) != 0) skip(); /* scripts/setup.sh installs it */
  char *tmp = tu_tmpdir();
  char html[4200], pdf[4200], txt[4200], info[4200], url[4300], pdfarg[4300],
      home[4200], profile[4300];
  snprintf(html, sizeof html, "%s/report.html", tmp);
  snprintf(pdf, sizeof pdf, "%s/report.pdf", tmp);
  snprintf(txt, sizeof txt, "%s/report.txt", tmp);
  snprintf(info, sizeof info, "%s/info.txt", tmp);
  snprintf(url, sizeof url, "file://%s", html);
  snprintf(pdfarg, sizeof pdfarg, "--print-to-pdf=%s", pdf);
  snprintf(home, sizeof home, "%s/home", tmp);
  snprintf(profile, sizeof profile, "--user-data-dir=%s/profile", tmp);
  mkdir(home, 0700);

  tu_run r = report((const char *[]){"--format", "html", "-o", html, NULL});
  assert_int_equal(r.status, 0);
  tu_run_free(&r);

  /* Chromium refuses to run as root without --no-sandbox, and wants a
  ** writable home and profile. */
  int rc = run_for(
      (const char *[]){browser, "--headless", "--no-sandbox", "--disable-gpu",
                       "--disable-dev-shm-usage", "--no-first-run",
                       "--no-pdf-header-footer", profile, pdfarg, url, NULL},
      NULL, 120, home);
  assert_int_equal(rc, 0);
  assert_int_equal(
      run_for((const char *[]){"pdfinfo", pdf, NULL}, info, 60, NULL), 0);
  assert_int_equal(run_for((const char *[]){"pdftotext", "-layout", "-enc",
                                            "UTF-8", pdf, txt, NULL},
                           NULL, 60, NULL),
                   0);

  /* A4 is 595 x 842 points; the page fits on two sheets at most. */
  char *meta = tu_read(info);
  assert_non_null(meta);
  const char *size = strstr(meta, "Page size:");
  assert_non_null(size);
  double w = 0, h = 0;
  assert_int_equal(sscanf(size, "Page size: %lf x %lf pts", &w, &h), 2);
  assert_true(w > 594 && w < 596);
  assert_true(h > 841 && h < 843);
  const char *pages = strstr(meta, "Pages:");
  assert_non_null(pages);
  int npages = atoi(pages + 6);
  assert_true(npages >= 1 && npages <= 2);

  char *text = tu_read(txt);
  assert_non_null(text);
  assert_true(tu_contains(text, "留守儿童统计表 (全县)"));
  assert_true(tu_contains(text, D.today));
  assert_true(line_has(text, "留守儿童", "3.5"));
  assert_true(line_has(text, "男", "57.1"));
  assert_true(line_has(text, "女", "42.9"));
  assert_true(line_has(text, "祖父母", "42.8"));
  assert_true(line_has(text, "外祖父母", "28.6"));
  assert_true(line_has(text, "差", "14.3"));
  assert_true(line_has(text, "未填", "14.3"));
  assert_true(line_has(text, "已访", "33.3"));
  assert_true(line_has(text, "计费条数", "3"));
  assert_true(line_has(text, "城关小学", "3.3"));
  assert_true(line_has(text, "河口小学", "3.8"));
  assert_true(tu_contains(text, "3 (42.8%)")); /* a bar's label in a chart */
  free(text);
  free(meta);
  tu_rmrf(tmp);
  free(tmp);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(csv_holds_the_hand_worked_table),
      cmocka_unit_test(text_is_aligned_with_a_chinese_title),
      cmocka_unit_test(o_writes_a_private_file_and_nothing_to_stdout),
      cmocka_unit_test(html_prints_on_a4_in_a_real_browser),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
