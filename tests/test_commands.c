/*
** test_commands.c: what issue 5 adds to the core for policies and the
** command line: host.text (mask_name, date, render, width),
** host.outbox.stats, host.command and the 'cmd' table a command gets
** (print/out/err, ask, progress, csv, create), the CLI's dispatch of plugin
** commands and 'yizhan commands', and t.exec/t.one/t.command in plugin
** tests.
**
** The in-process tests run commands with yz_cmd_find/yz_cmd_run on a host
** opened here (their output in memory streams), so valgrind sees them; the
** rest run the yizhan binary.
*/
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "buf.h"
#include "lapi.h"
#include "plugin.h"
#include "testutil.h"

/* 2026-11-28T10:00:00.000Z in ms since the epoch (18:00 in Shanghai). */
#define SIM_MS 1795860000000LL

/* ------------------------------------------------------------- plugins */

static const char *const TOOL =
    "local kept -- a cmd table kept past its run (see 'tool keep')\n"
    "return {\n"
    "  name = 'tool', version = '1',\n"
    "  setup = function(host)\n"
    "    host.command('tool opts', { run = function(cmd)\n"
    "        local o, ops = cmd.options({ kind = 'value', ['dry-run'] = "
    "'flag', o = 'value', tag = 'values' })\n"
    "        if not o then cmd.err(ops) return 2 end\n"
    "        cmd.print(host.json.encode(o), host.json.encode(ops))\n"
    "      end })\n"
    "    host.command('tool echo', { usage = 'tool echo [ARG...]',\n"
    "      help = 'prints its arguments', run = function(cmd)\n"
    "        cmd.print(cmd.name, #cmd.args, table.concat(cmd.args, ','), "
    "cmd.tty)\n"
    "        cmd.out('raw')\n"
    "        cmd.err('to stderr')\n"
    "        local a = cmd.args[1]\n"
    "        if a == 'false' then return false end\n"
    "        if a == 'true' then return true end\n"
    "        if a == 'three' then return 3 end\n"
    "        if a == 'zero' then return 0 end\n"
    "        if a == 'float' then return 3.0 end\n"
    "        if a == 'minus' then return -1 end\n"
    "        if a == 'boom' then error('boom', 0) end\n"
    "        if a == 'where' then error('with a place') end\n"
    "      end })\n"
    "    host.command('tool read', { usage = 'tool read FILE [ENCODING]',\n"
    "      help = 'reads a CSV file', run = function(cmd)\n"
    "        local opts = cmd.args[2] and { encoding = cmd.args[2] } or nil\n"
    "        local r, err = cmd.csv(cmd.args[1], opts)\n"
    "        if not r then cmd.err('cannot: ' .. err) return 1 end\n"
    "        cmd.print('encoding', r.encoding, r:size())\n"
    "        while true do\n"
    "          local f, line, why = r:next()\n"
    "          if not f then\n"
    "            if line then cmd.print('error', line, why) r:close() return 1 "
    "end\n"
    "            break\n"
    "          end\n"
    "          cmd.print(line, #f, table.concat(f, '|'))\n"
    "        end\n"
    "        cmd.print('pos', r:pos())\n"
    "        r:close()\n"
    "        local ok, e = pcall(r.next)\n"
    "        cmd.print('after close', ok, e)\n"
    "      end })\n"
    "    host.command('tool sneak', { usage = 'tool sneak FILE', help = 'opens "
    "another file',\n"
    "      run = function(cmd)\n"
    "        local ok, e = pcall(cmd.csv, '/etc/passwd')\n"
    "        cmd.print(ok, e)\n"
    "        ok, e = pcall(cmd.create, 'other.csv')\n"
    "        cmd.print(ok, e)\n"
    "      end })\n"
    "    host.command('tool write', { usage = 'tool write FILE MODE [ENC] "
    "[bom]',\n"
    "      help = 'writes a file', run = function(cmd)\n"
    "        local path, mode = cmd.args[1], cmd.args[2]\n"
    "        local opts = {}\n"
    "        if cmd.args[3] and cmd.args[3] ~= '-' then opts.encoding = "
    "cmd.args[3] end\n"
    "        if cmd.args[4] == 'bom' then opts.bom = true end\n"
    "        local w = assert(cmd.create(path, opts))\n"
    "        w:write('姓名,备注\\r\\n')\n"
    "        w:row({ '张三', 'a,b', 'say \"hi\"', ' x', 'plain', 7 })\n"
    "        if mode == 'close' then\n"
    "          cmd.print('closed', w:close())\n"
    "          local ok, e = pcall(w.write, 'more')\n"
    "          cmd.print(ok, e)\n"
    "          ok, e = pcall(w.close)\n"
    "          cmd.print(ok, e)\n"
    "        elseif mode == 'abort' then w:abort()\n"
    "        elseif mode == 'error' then error('stopped', 0)\n"
    "        elseif mode == 'ask' then cmd.ask('go? ') w:close()\n"
    "        end -- 'open': left open\n"
    "      end })\n"
    "    host.command('tool gbkrow', { usage = 'tool gbkrow FILE', help = 'bad "
    "GBK',\n"
    "      run = function(cmd)\n"
    "        local w = assert(cmd.create(cmd.args[1], { encoding = 'gbk' }))\n"
    "        local ok, e = pcall(w.row, { 'ok', 'bad \\255 byte' })\n"
    "        cmd.print(ok, e)\n"
    "        ok, e = pcall(w.write, '\\255')\n"
    "        cmd.print(ok, e)\n"
    "        w:close()\n"
    "      end })\n"
    "    host.command('tool ask', { usage = 'tool ask', help = 'asks three "
    "times',\n"
    "      run = function(cmd)\n"
    "        local a = cmd.ask('name? ')\n"
    "        local b = cmd.ask('again? ')\n"
    "        local c = cmd.ask('more? ')\n"
    "        cmd.print(tostring(a), tostring(b), tostring(c))\n"
    "      end })\n"
    "    host.command('tool emit', { usage = 'tool emit N', help = 'emits an "
    "event',\n"
    "      run = function(cmd)\n"
    "        host.emit('tool.done', { n = tonumber(cmd.args[1]) })\n"
    "        cmd.print('emitted')\n"
    "      end })\n"
    "    host.command('tool bar', { usage = 'tool bar [end]', help = 'draws a "
    "bar',\n"
    "      run = function(cmd)\n"
    "        cmd.print(tostring(cmd.tty))\n"
    "        cmd.progress(1, 10, 'rows')\n"
    "        cmd.progress(2, 10, 'rows')\n"
    "        if cmd.args[1] == 'end' then cmd.progress(10, 10, 'rows') return "
    "end\n"
    "        error('broke', 0)\n"
    "      end })\n"
    "    host.command('tool keep', { usage = 'tool keep', help = 'keeps its "
    "cmd',\n"
    "      run = function(cmd) kept = cmd end })\n"
    "    host.command('tool reuse', { usage = 'tool reuse', help = 'uses a "
    "kept cmd',\n"
    "      run = function(cmd)\n"
    "        local ok, e = pcall(kept.print, 'late')\n"
    "        cmd.print('reuse', ok, e)\n"
    "      end })\n"
    "  end,\n"
    "}\n";

static const char *const LISTENER =
    "return {\n"
    "  name = 'listener', version = '1', owns = { 'heard', 'ticks' },\n"
    "  migrations = { 'CREATE TABLE heard (topic TEXT, from_ TEXT, n "
    "INTEGER)',\n"
    "    'CREATE TABLE ticks (at INTEGER)' },\n"
    "  setup = function(host)\n"
    "    host.on('tool.done', function(d, ev)\n"
    "      host.db.exec('INSERT INTO heard VALUES (?, ?, ?)', ev.topic, "
    "ev.from, d.n)\n"
    "    end)\n"
    "    host.every('tick', 60, function(run)\n"
    "      host.db.exec('INSERT INTO ticks VALUES (?)', run.scheduled)\n"
    "    end)\n"
    "  end,\n"
    "}\n";

static const char *const P =
    "return {\n"
    "  name = 'p', version = '1',\n"
    "  setup = function(host)\n"
    "    host.command('p', { usage = 'p [ARG...]', help = 'the plain one',\n"
    "      run = function(cmd) cmd.print('p alone', table.concat(cmd.args, "
    "',')) end })\n"
    "    host.command('p hello', { usage = 'p hello [false|3|boom|where]',\n"
    "      help = 'says hello', run = function(cmd)\n"
    "        cmd.print('hello', table.concat(cmd.args, ' '))\n"
    "        local a = cmd.args[1]\n"
    "        if a == 'false' then return false end\n"
    "        if a == '3' then return 3 end\n"
    "        if a == 'boom' then error('it broke', 0) end\n"
    "        if a == 'where' then error('it broke here') end\n"
    "      end })\n"
    "    host.command('p ask', { usage = 'p ask', help = 'asks twice',\n"
    "      run = function(cmd)\n"
    "        local a = cmd.ask('who? ')\n"
    "        local b = cmd.ask('and? ')\n"
    "        cmd.print(tostring(a), tostring(b))\n"
    "      end })\n"
    "    host.command('p emit', { usage = 'p emit N', help = 'emits p.done',\n"
    "      run = function(cmd) host.emit('p.done', { n = tonumber(cmd.args[1]) "
    "}) end })\n"
    "    host.command('p read', { usage = 'p read FILE', help = 'counts "
    "rows',\n"
    "      run = function(cmd)\n"
    "        local r = assert(cmd.csv(cmd.args[1]))\n"
    "        local n = 0\n"
    "        while r:next() do n = n + 1 end\n"
    "        cmd.print(r.encoding, n)\n"
    "      end })\n"
    "    host.command('p save', { usage = 'p save FILE', help = 'writes a "
    "file',\n"
    "      run = function(cmd)\n"
    "        local w = assert(cmd.create(cmd.args[1]))\n"
    "        w:row({ '名字', 'a b' })\n"
    "        assert(w:close())\n"
    "      end })\n"
    "    host.command('p slow', { usage = 'p slow FILE', help = 'asks "
    "mid-file',\n"
    "      run = function(cmd)\n"
    "        local w = assert(cmd.create(cmd.args[1]))\n"
    "        w:write('partial')\n"
    "        cmd.ask('go on? ')\n"
    "        assert(w:close())\n"
    "      end })\n"
    "  end,\n"
    "}\n";

static const char *const Q =
    "return {\n"
    "  name = 'q', version = '1',\n"
    "  setup = function(host)\n"
    "    host.command('q one', { usage = 'q one', help = 'the first',\n"
    "      run = function(cmd) cmd.print('one') end })\n"
    "    host.command('q two', { usage = 'q two N', help = 'the second',\n"
    "      run = function(cmd) cmd.print('two') end })\n"
    "  end,\n"
    "}\n";

static const char *const R =
    "return {\n"
    "  name = 'r', version = '1',\n"
    "  setup = function(host)\n"
    "    host.command('r go', { usage = 'r go', help = 'goes',\n"
    "      run = function(cmd) cmd.print('went') end })\n"
    "  end,\n"
    "}\n";

static const char *const F =
    "return {\n"
    "  name = 'f', version = '1',\n"
    "  setup = function(host)\n"
    "    host.command('f go', { usage = 'f go', help = 'goes',\n"
    "      run = function(cmd) cmd.print('went') end })\n"
    "    error('f cannot start', 0)\n"
    "  end,\n"
    "}\n";

static const char *const EARS =
    "return {\n"
    "  name = 'ears', version = '1', owns = { 'heard', 'ticks' },\n"
    "  migrations = { 'CREATE TABLE heard (topic TEXT, from_ TEXT, n "
    "INTEGER)',\n"
    "    'CREATE TABLE ticks (at INTEGER)' },\n"
    "  setup = function(host)\n"
    "    host.on('p.done', function(d, ev)\n"
    "      host.db.exec('INSERT INTO heard VALUES (?, ?, ?)', ev.topic, "
    "ev.from, d.n)\n"
    "    end)\n"
    "    host.cron('tick', '* * * * *', function(run)\n"
    "      host.db.exec('INSERT INTO ticks VALUES (?)', run.scheduled)\n"
    "    end)\n"
    "  end,\n"
    "}\n";

static const char *const STORE =
    "return {\n"
    "  name = 'store', version = '1', owns = { 'things' },\n"
    "  migrations = { 'CREATE TABLE things (id INTEGER PRIMARY KEY, name "
    "TEXT)' },\n"
    "  setup = function(host) end,\n"
    "}\n";

static const char *const TP =
    "return {\n"
    "  name = 'tp', version = '1', requires = { 'store' },\n"
    "  setup = function(host)\n"
    "    host.command('tp greet', { usage = 'tp greet NAME', help = 'greets',\n"
    "      run = function(cmd)\n"
    "        cmd.print('你好', cmd.args[1])\n"
    "        local a = cmd.ask('ok? ')\n"
    "        cmd.err('asked')\n"
    "        if a ~= 'y' then return 2 end\n"
    "      end })\n"
    "    host.command('tp count', { usage = 'tp count FILE', help = 'counts "
    "rows',\n"
    "      run = function(cmd)\n"
    "        local r, err = cmd.csv(cmd.args[1])\n"
    "        if not r then error(err, 0) end\n"
    "        local n = 0\n"
    "        while r:next() do n = n + 1 end\n"
    "        cmd.print(n)\n"
    "      end })\n"
    "    host.command('tp save', { usage = 'tp save FILE', help = 'saves',\n"
    "      run = function(cmd)\n"
    "        local w = assert(cmd.create(cmd.args[1]))\n"
    "        w:row({ 'x', 'y' })\n"
    "        assert(w:close())\n"
    "      end })\n"
    "  end,\n"
    "}\n";

static const char *const TP_TEST =
    "test('t.exec and t.one run as the host', function(t)\n"
    "  local changes, rowid = t.exec('INSERT INTO things(name) VALUES (?)', "
    "'张三')\n"
    "  t.eq(changes, 1)\n"
    "  t.eq(rowid, 1)\n"
    "  t.eq(t.one('SELECT name FROM things WHERE id = ?', rowid).name, "
    "'张三')\n"
    "  t.error(function() host.db.one('SELECT name FROM things') end, "
    "'things')\n"
    "end)\n"
    "test('t.command runs a command with its input', function(t)\n"
    "  local status, out, err = t.command('tp greet', { '李四' }, { input = "
    "'y\\n' })\n"
    "  t.eq(status, 0)\n"
    "  t.eq(out, '你好\\t李四\\n')\n"
    "  t.eq(err, 'ok? asked\\n')\n"
    "  status, out, err = t.command('tp greet', { '王五' })\n"
    "  t.eq(status, 2)\n"
    "  t.eq(out, '你好\\t王五\\n')\n"
    "  t.eq(err, 'ok? \\nasked\\n')\n"
    "end)\n"
    "test('t.command opens files in the test folder', function(t)\n"
    "  t.write('kids.csv', 'name\\n张三\\n李四\\n')\n"
    "  local status, out, err = t.command('tp count', { 'kids.csv' })\n"
    "  t.eq(status, 0)\n"
    "  t.eq(out, '3\\n')\n"
    "  t.eq(err, '')\n"
    "  status, out, err = t.command('tp count', { 'missing.csv' })\n"
    "  t.eq(status, 1)\n"
    "  t.contains(err, 'yizhan: tp count: cannot open')\n"
    "  status = t.command('tp save', { 'saved.csv' })\n"
    "  t.eq(status, 0)\n"
    "  t.eq(select(2, t.command('tp count', { 'saved.csv' })), '1\\n')\n"
    "  t.eq(t.read('saved.csv'), 'x,y\\r\\n')\n"
    "  t.eq(t.read('nothing.csv'), nil)\n"
    "  t.error(function() t.read('../x') end, 'without folders')\n"
    "end)\n"
    "test('t.command refuses a command no plugin has', function(t)\n"
    "  t.error(function() t.command('tp nope', {}) end,\n"
    "    \"no started plugin has a command 'tp nope'\")\n"
    "end)\n"
    "test('fixtures are rolled back after each test', function(t)\n"
    "  t.eq(t.one('SELECT count(*) AS n FROM things').n, 0)\n"
    "end)\n";

/* A channel that takes everything, so that host.send has somewhere to go. */
static const char *const FAKE =
    "return { name = 'fake', version = '1',\n"
    "  setup = function(host)\n"
    "    for name in pairs(host.channels) do\n"
    "      host.channel{ name = name, send = function(m) return true end }\n"
    "    end\n"
    "  end }\n";

static const char *const SENDER =
    "return { name = 'sender', version = '1', access = { send = true },\n"
    "  setup = function(host) end }\n";

#define CONFIG                                                  \
  "channels = { default = 'fake', fake = { type = 'fake' } }\n" \
  "plugins = { tool = {}, listener = {}, sender = {} }\n"

/* ------------------------------------------------------------- fixture */

typedef struct fixture {
  char *dir;  /* the data directory */
  yz_host *h; /* the running host, on a simulated clock */
  yz_buf out; /* output of the last eval */
  char *log;  /* the log file as last read */
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_datadir(CONFIG);
  tu_write(f->dir, "plugins/fake.lua", FAKE);
  tu_write(f->dir, "plugins/sender.lua", SENDER);
  tu_write(f->dir, "plugins/tool.lua", TOOL);
  tu_write(f->dir, "plugins/listener.lua", LISTENER);
  f->h = tu_host(f->dir);
  yz_clock_simulate(&f->h->clock, SIM_MS);
  assert_int_equal(yz_host_start(f->h), YZ_OK);
  const char *names[] = {"tool", "listener", "sender", "fake"};
  for (int i = 0; i < 4; i++) {
    yz_plugin *p = yz_plugin_find(f->h, names[i]);
    assert_non_null(p);
    if (p->state != YZ_PS_OK) fail_msg("%s: %s", names[i], p->error);
  }
  yz_buf_init(&f->out, 1u << 20);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  yz_buf_free(&f->out);
  yz_host_close(f->h);
  tu_rmrf(f->dir);
  free(f->log);
  free(f->dir);
  free(f);
  return 0;
}

/* Runs code in plugin 'name' and checks its rendering. */
static const char *eval_in(fixture *f, const char *name, const char *code,
                           int want) {
  yz_plugin *p = yz_plugin_find(f->h, name);
  assert_non_null(p);
  return tu_eval(p, code, &f->out, want);
}

#define EXPECT(f, code, want) \
  assert_string_equal(eval_in((f), "tool", (code), YZ_OK), (want))

/* The result of running a command in process. */
typedef struct ran {
  int status;
  char *out, *err; /* what it wrote (NUL-terminated) */
  size_t nout, nerr;
} ran;

static void ran_free(ran *r) {
  free(r->out);
  free(r->err);
  r->out = r->err = NULL;
}

/* Runs the command in args (NULL-terminated) as the CLI would, relative
** paths from base (NULL: the working directory), stdin from 'in' (may be
** NULL), stderr to 'err' when given (else captured). */
static ran run_with(fixture *f, const char *base, FILE *in, FILE *errf,
                    const char *const *args) {
  int argc = 0;
  while (args[argc]) argc++;
  char **argv = calloc((size_t)argc + 1, sizeof *argv);
  for (int i = 0; i < argc; i++) argv[i] = (char *)args[i];
  int words;
  yz_plugin *p = yz_cmd_find(f->h, argc, argv, &words);
  if (!p) fail_msg("no command for %s", args[0]);
  ran r = {0};
  FILE *o = open_memstream(&r.out, &r.nout);
  FILE *e = errf ? errf : open_memstream(&r.err, &r.nerr);
  r.status = yz_cmd_run(f->h, p, words, argc, argv, base, in, o, e);
  fclose(o);
  if (!errf) fclose(e);
  free(argv);
  return r;
}

/* The same with 'input' on stdin (NULL or "": at its end at once). */
static ran run_input(fixture *f, const char *input, const char *const *args) {
  FILE *in =
      input && *input ? fmemopen((void *)input, strlen(input), "r") : NULL;
  ran r = run_with(f, f->dir, in, NULL, args);
  if (in) fclose(in);
  return r;
}

#define RUN(f, ...) \
  run_input((f), NULL, (const char *const[]){__VA_ARGS__, NULL})

/* dir/name as a malloc'd path. */
static char *path_in(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  snprintf(p, n, "%s/%s", dir, name);
  return p;
}

/* The names in dir, as " a b c " (sorted), malloc'd. */
static char *listing(const char *dir) {
  struct dirent **names;
  int n = scandir(dir, &names, NULL, alphasort);
  assert_true(n >= 0);
  yz_buf b;
  yz_buf_init(&b, 1u << 20);
  yz_buf_adds(&b, " ");
  for (int i = 0; i < n; i++) {
    if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, ".."))
      yz_buf_addf(&b, "%s ", names[i]->d_name);
    free(names[i]);
  }
  free(names);
  char *s = yz_strdup(yz_buf_str(&b));
  yz_buf_free(&b);
  return s;
}

/* Reads a file's bytes: *n of them, malloc'd. */
static char *read_bytes(const char *path, size_t *n) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return NULL;
  yz_buf b;
  yz_buf_init(&b, 16u << 20);
  char chunk[4096];
  size_t k;
  while ((k = fread(chunk, 1, sizeof chunk, fp)) > 0) yz_buf_add(&b, chunk, k);
  fclose(fp);
  *n = b.len;
  char *s = malloc(b.len + 1);
  if (b.len) memcpy(s, b.data, b.len);
  s[b.len] = 0;
  yz_buf_free(&b);
  return s;
}

/* ----------------------------------------------------------- host.text */

static void mask_name_keeps_the_first_and_last_character(void **state) {
  fixture *f = *state;
  EXPECT(f, "host.text.mask_name('张小明')", "\"张*明\"");
  EXPECT(f, "host.text.mask_name('李四')", "\"李*\"");
  EXPECT(f, "host.text.mask_name('王')", "\"王\"");
  EXPECT(f, "host.text.mask_name('欧阳娜娜')", "\"欧**娜\"");
  EXPECT(f, "host.text.mask_name('  张小明 ')", "\"张*明\"");
  EXPECT(f, "host.text.mask_name('\\t李四  ')", "\"李*\"");
  EXPECT(f, "host.text.mask_name('')", "\"\"");
  EXPECT(f, "host.text.mask_name('   ')", "\"\"");
  EXPECT(f, "host.text.mask_name('Tom')", "\"T*m\"");
  EXPECT(f, "host.text.mask_name('买买提·艾力')", "\"买****力\"");
  /* Mixed scripts count characters, not bytes. */
  EXPECT(f, "host.text.mask_name('张A明')", "\"张*明\"");
  assert_true(tu_contains(eval_in(f, "tool", "host.text.mask_name()", YZ_ERR),
                          "mask_name"));
}

static void date_accepts_the_spreadsheet_forms(void **state) {
  fixture *f = *state;
  const char *forms[] = {"2015-03-07",     "2015-3-7",    "2015/3/7",
                         "2015.3.7",       "20150307",    "2015年3月7日",
                         "2015年03月07日", "  2015-3-7 ", "\\t2015/03/07\\t",
                         "2015年3月7号",   NULL};
  for (int i = 0; forms[i]; i++) {
    char code[256];
    snprintf(code, sizeof code, "host.text.date('%s')", forms[i]);
    EXPECT(f, code, "\"2015-03-07\"");
  }
  EXPECT(f, "host.text.date('2015-12-31')", "\"2015-12-31\"");
  EXPECT(f, "host.text.date('2015-1-1')", "\"2015-01-01\"");
}

static void date_checks_the_calendar(void **state) {
  fixture *f = *state;
  EXPECT(f, "host.text.date('2016-02-29')", "\"2016-02-29\"");
  EXPECT(f, "host.text.date('2000-02-29')", "\"2000-02-29\"");
  EXPECT(f, "host.text.date('2015-02-29')", "nil\t\"no such date\"");
  EXPECT(f, "host.text.date('1900-02-29')", "nil\t\"no such date\"");
  EXPECT(f, "host.text.date('2015-04-31')", "nil\t\"no such date\"");
  EXPECT(f, "host.text.date('2015-13-01')", "nil\t\"no such date\"");
  EXPECT(f, "host.text.date('2015-00-10')", "nil\t\"no such date\"");
  EXPECT(f, "host.text.date('2015-01-00')", "nil\t\"no such date\"");
  EXPECT(f, "host.text.date('20150230')", "nil\t\"no such date\"");
  EXPECT(f, "host.text.date('2015年2月30日')", "nil\t\"no such date\"");
}

static void date_refuses_what_is_not_a_date(void **state) {
  fixture *f = *state;
  const char *bad[] = {
      "abc",         "",          "   ",        "2015-3",      "2015/3",
      "2015年3月",   "15-3-7",    "2015-3/7",   "2015-03-07x", "2015--03-07",
      "2015-003-07", "201503071", "2015-3-7-1", "3/7/2015",    NULL};
  for (int i = 0; bad[i]; i++) {
    char code[256];
    snprintf(code, sizeof code, "host.text.date('%s')", bad[i]);
    EXPECT(f, code, "nil\t\"not a date\"");
  }
}

static void date_with_month_accepts_a_month_alone(void **state) {
  fixture *f = *state;
  EXPECT(f, "host.text.date('2015-03', {month = true})", "\"2015-03-01\"");
  EXPECT(f, "host.text.date('2015-3', {month = true})", "\"2015-03-01\"");
  EXPECT(f, "host.text.date('2015/3', {month = true})", "\"2015-03-01\"");
  EXPECT(f, "host.text.date('2015年3月', {month = true})", "\"2015-03-01\"");
  EXPECT(f, "host.text.date(' 2015.12 ', {month = true})", "\"2015-12-01\"");
  /* A full date still reads as itself, and is still checked. */
  EXPECT(f, "host.text.date('2015-3-7', {month = true})", "\"2015-03-07\"");
  EXPECT(f, "host.text.date('2015-2-29', {month = true})",
         "nil\t\"no such date\"");
  EXPECT(f, "host.text.date('2015-13', {month = true})",
         "nil\t\"no such date\"");
  EXPECT(f, "host.text.date('2015', {month = true})", "nil\t\"not a date\"");
  EXPECT(f, "host.text.date('2015-3', {month = false})", "nil\t\"not a date\"");
}

static void render_fills_placeholders(void **state) {
  fixture *f = *state;
  EXPECT(f,
         "host.text.render('{{name}}家长您好：{{child}}本月有{{n}}封信。', "
         "{ name = '张三', child = '张*明', n = 3 })",
         "\"张三家长您好：张*明本月有3封信。\"");
  EXPECT(f, "host.text.render('{{a}}{{a}}-{{b}}', { a = 'x', b = 2.5 })",
         "\"xx-2.5\"");
  EXPECT(f, "host.text.render('no placeholders', {})", "\"no placeholders\"");
  EXPECT(f, "host.text.render('', { a = 1 })", "\"\"");
  /* A value is not expanded again. */
  EXPECT(f, "host.text.render('{{a}}', { a = '{{b}}', b = 'no' })",
         "\"{{b}}\"");
  /* An unclosed brace is text. */
  EXPECT(f, "host.text.render('a {{b', { b = 1 })", "\"a {{b\"");
  EXPECT(f,
         "select(2, pcall(host.text.render, '您好{{name}}，{{missing}}', "
         "{ name = '张三' }))",
         "\"template: no value for {{missing}}\"");
  EXPECT(f, "select(2, pcall(host.text.render, '{{flag}}', { flag = true }))",
         "\"template: no value for {{flag}}\"");
  assert_true(tu_contains(
      eval_in(f, "tool", "host.text.render('{{a}}')", YZ_ERR), "table"));
}

static void width_counts_display_columns(void **state) {
  fixture *f = *state;
  EXPECT(f, "host.text.width('abc')", "3");
  EXPECT(f, "host.text.width('')", "0");
  EXPECT(f, "host.text.width('张三')", "4");
  EXPECT(f, "host.text.width('3年级2班')", "8");
  EXPECT(f, "host.text.width('ＡＢ１')", "6"); /* full-width forms */
  EXPECT(f, "host.text.width('，。')", "4");   /* CJK punctuation */
  EXPECT(f, "host.text.width('a　b')", "4");   /* ideographic space */
  EXPECT(f, "host.text.width('한글')", "4");   /* Hangul */
  EXPECT(f, "host.text.width('é')", "1");
  EXPECT(f, "host.text.width('tab\\tx')", "4"); /* controls: no column */
}

/* ---------------------------------------------------- host.outbox.stats */

#define STATS                                                            \
  "local s = host.outbox.stats(%s)\n"                                    \
  "return string.format('queued=%%d sending=%%d sent=%%d delivered=%%d " \
  "failed=%%d dead=%%d parts=%%d', s.queued, s.sending, s.sent, "        \
  "s.delivered, s.failed, s.dead, s.parts)"

static const char *stats(fixture *f, const char *plugin, const char *args) {
  char code[1024];
  snprintf(code, sizeof code, STATS, args);
  return eval_in(f, plugin, code, YZ_OK);
}

/* 2026-09-21 ... in seconds: the first message's creation time. */
#define T0 1790000000LL

static void outbox_stats_counts_states_and_parts_in_a_window(void **state) {
  fixture *f = *state;
  assert_string_equal(stats(f, "tool", ""),
                      "\"queued=0 sending=0 sent=0 delivered=0 failed=0 "
                      "dead=0 parts=0\"");
  /* Seven messages; the fourth is two SMS parts (80 Chinese characters). */
  eval_in(f, "sender",
          "for i = 1, 7 do\n"
          "  host.send{ to = '1380013800' .. i, key = 'k' .. i,\n"
          "    text = i == 4 and string.rep('长', 80) or ('m' .. i) }\n"
          "end",
          YZ_OK);
  assert_int_equal(
      tu_int(f->h->store, "SELECT parts FROM yz_outbox WHERE key = 'k4'"), 2);
  /* States and creation times as the core would have them. */
  char sql[1024];
  snprintf(sql, sizeof sql,
           "UPDATE yz_outbox SET state = CASE key WHEN 'k1' THEN 'queued' "
           "WHEN 'k2' THEN 'sending' WHEN 'k3' THEN 'sent' WHEN 'k4' THEN "
           "'delivered' WHEN 'k5' THEN 'failed' WHEN 'k6' THEN 'dead' ELSE "
           "'sent' END, created_at = (%lld + CAST(substr(key, 2) AS "
           "INTEGER)) * 1000",
           T0);
  assert_int_equal(yz_store_exec_script(f->h->store, NULL, sql), YZ_OK);
  /* Everything, from a plugin that may not send. */
  assert_string_equal(stats(f, "tool", ""),
                      "\"queued=1 sending=1 sent=2 delivered=1 failed=1 "
                      "dead=1 parts=4\"");
  assert_string_equal(stats(f, "tool", "{}"),
                      "\"queued=1 sending=1 sent=2 delivered=1 failed=1 "
                      "dead=1 parts=4\"");
  /* since is inclusive, until exclusive: k2, k3, k4. */
  char args[256];
  snprintf(args, sizeof args, "{ since = %lld, ['until'] = %lld }", T0 + 2,
           T0 + 5);
  assert_string_equal(stats(f, "tool", args),
                      "\"queued=0 sending=1 sent=1 delivered=1 failed=0 "
                      "dead=0 parts=3\"");
  snprintf(args, sizeof args, "{ since = %lld }", T0 + 6);
  assert_string_equal(stats(f, "sender", args),
                      "\"queued=0 sending=0 sent=1 delivered=0 failed=0 "
                      "dead=1 parts=1\"");
  snprintf(args, sizeof args, "{ ['until'] = %lld }", T0 + 2);
  assert_string_equal(stats(f, "listener", args),
                      "\"queued=1 sending=0 sent=0 delivered=0 failed=0 "
                      "dead=0 parts=0\"");
  snprintf(args, sizeof args, "{ since = %lld }", T0 + 100);
  assert_string_equal(stats(f, "tool", args),
                      "\"queued=0 sending=0 sent=0 delivered=0 failed=0 "
                      "dead=0 parts=0\"");
  /* Counts only: no recipient or text in the answer. */
  EXPECT(f,
         "local n = 0 for k in pairs(host.outbox.stats()) do n = n + 1 end "
         "return n",
         "7");
  eval_in(f, "tool", "host.outbox.stats('today')", YZ_ERR);
  eval_in(f, "tool", "host.outbox.stats({ since = 'x' })", YZ_ERR);
}

/* --------------------------------------------- host.command: registering */

/* Starts a data directory holding the plugins in files (name, source
** pairs, NULL-ended) with all of them enabled; plugin 'bad' must fail to
** start with 'want' in its error, and 'good' (if any) must start. */
static void expect_refused(const char *const *files, const char *want) {
  yz_buf conf;
  yz_buf_init(&conf, 1u << 16);
  yz_buf_adds(&conf, "plugins = { ");
  for (int i = 0; files[i]; i += 2) yz_buf_addf(&conf, "%s = {}, ", files[i]);
  yz_buf_adds(&conf, "}\n");
  char *dir = tu_datadir(yz_buf_str(&conf));
  yz_buf_free(&conf);
  for (int i = 0; files[i]; i += 2) {
    char name[256];
    snprintf(name, sizeof name, "plugins/%s.lua", files[i]);
    tu_write(dir, name, files[i + 1]);
  }
  yz_host *h = tu_host(dir);
  yz_host_start(h);
  yz_plugin *bad = yz_plugin_find(h, "bad");
  assert_non_null(bad);
  assert_int_equal(bad->state, YZ_PS_FAILED);
  assert_non_null(bad->error);
  assert_true(tu_contains(bad->error, want));
  yz_plugin *good = yz_plugin_find(h, "good");
  if (good) {
    if (good->state != YZ_PS_OK) fail_msg("good: %s", good->error);
    /* The refused plugin's commands are not found; good's are. */
    char *argv[] = {"shared", "cmd", NULL};
    int words;
    assert_ptr_equal(yz_cmd_find(h, 2, argv, &words), good);
    assert_int_equal(words, 2);
  }
  yz_host_close(h);
  tu_rmrf(dir);
  free(dir);
}

#define BAD(call)                           \
  "return { name = 'bad', version = '1',\n" \
  "  setup = function(host)\n    " call "\n  end }\n"

static void command_refuses_bad_names(void **state) {
  (void)state;
  const char *names[] = {"Bad", "a  b", "a ", " a", "", "a.b", "导入", NULL};
  for (int i = 0; names[i]; i++) {
    char src[512], want[256];
    snprintf(src, sizeof src,
             BAD("host.command('%s', { run = function() end })"), names[i]);
    snprintf(want, sizeof want, "host.command: bad name '%s'", names[i]);
    expect_refused((const char *const[]){"bad", src, NULL}, want);
  }
}

static void command_refuses_a_built_in_first_word(void **state) {
  (void)state;
  expect_refused(
      (const char *const[]){
          "bad", BAD("host.command('run x', { run = function() end })"), NULL},
      "host.command: 'run' is a built-in command");
  expect_refused(
      (const char *const[]){
          "bad", BAD("host.command('commands', { run = function() end })"),
          NULL},
      "host.command: 'commands' is a built-in command");
  expect_refused(
      (const char *const[]){
          "bad", BAD("host.command('help me', { run = function() end })"),
          NULL},
      "host.command: 'help' is a built-in command");
  expect_refused(
      (const char *const[]){
          "bad", BAD("host.command('test', { run = function() end })"), NULL},
      "host.command: 'test' is a built-in command");
}

static void command_refuses_a_bad_spec(void **state) {
  (void)state;
  expect_refused(
      (const char *const[]){"bad", BAD("host.command('x y', { run = 1 })"),
                            NULL},
      "host.command('x y'): run must be a function");
  expect_refused(
      (const char *const[]){"bad", BAD("host.command('x y', {})"), NULL},
      "host.command('x y'): run must be a function");
  expect_refused(
      (const char *const[]){
          "bad",
          BAD("host.command('x y', { usage = {}, run = function() end })"),
          NULL},
      "host.command('x y'): usage must be a string");
  expect_refused(
      (const char *const[]){
          "bad", BAD("host.command('x y', { help = 5, run = function() end })"),
          NULL},
      "host.command('x y'): help must be a string");
  expect_refused((const char *const[]){"bad", BAD("host.command('x y')"), NULL},
                 "table expected");
}

static void command_refuses_a_name_another_plugin_added(void **state) {
  (void)state;
  const char *good =
      "return { name = 'good', version = '1',\n"
      "  setup = function(host)\n"
      "    host.command('shared cmd', { run = function() end })\n"
      "  end }\n";
  const char *bad =
      "return { name = 'bad', version = '1', requires = { 'good' },\n"
      "  setup = function(host)\n"
      "    host.command('shared', { run = function() end })\n"
      "    host.command('shared cmd', { run = function() end })\n"
      "  end }\n";
  expect_refused((const char *const[]){"good", good, "bad", bad, NULL},
                 "host.command: 'shared cmd' is already added by plugin "
                 "'good'");
}

/* --------------------------------------------- commands in process */

static void a_command_gets_its_name_and_arguments(void **state) {
  fixture *f = *state;
  ran r = RUN(f, "tool", "echo", "a", "b");
  assert_int_equal(r.status, 0);
  assert_string_equal(r.out, "tool echo\t2\ta,b\tfalse\nraw");
  assert_string_equal(r.err, "to stderr\n");
  ran_free(&r);
  r = RUN(f, "tool", "echo");
  assert_string_equal(r.out, "tool echo\t0\t\tfalse\nraw");
  ran_free(&r);
}

/* cmd.options: one reading of options for every command. */
static void options_are_read_against_a_spec(void **state) {
  fixture *f = *state;
  ran r = RUN(f, "tool", "opts", "a.csv", "--kind", "people", "--dry-run", "-o",
              "-", "--tag", "x", "--tag=y", "b");
  assert_int_equal(r.status, 0);
  assert_string_equal(r.out,
                      "{\"dry-run\":true,\"kind\":\"people\",\"o\":\"-\","
                      "\"tag\":[\"x\",\"y\"]}\t[\"a.csv\",\"b\"]\n");
  ran_free(&r);
  r = RUN(f, "tool", "opts", "--kind=schools", "--", "--odd");
  assert_string_equal(r.out, "{\"kind\":\"schools\"}\t[\"--odd\"]\n");
  ran_free(&r);
  struct {
    const char *a, *b, *want;
  } bad[] = {
      {"--skip", NULL, "unknown option --skip\n"},
      {"--kind", "--dry-run",
       "--kind needs a value (got the option \"--dry-run\")\n"},
      {"--dry-run=1", NULL, "--dry-run takes no value\n"},
      {"--kind", NULL, "--kind needs a value\n"},
      {"-kind", "x", "unknown option -kind\n"},
      {"--o", "x", "unknown option --o\n"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    r = bad[i].b ? RUN(f, "tool", "opts", bad[i].a, bad[i].b)
                 : RUN(f, "tool", "opts", bad[i].a);
    assert_int_equal(r.status, 2);
    assert_string_equal(r.err, bad[i].want);
    ran_free(&r);
  }
}

static void the_return_value_is_the_exit_status(void **state) {
  fixture *f = *state;
  struct {
    const char *arg;
    int status;
  } cases[] = {
      {"nil", 0}, {"true", 0}, {"zero", 0}, {"false", 1}, {"three", 3}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    ran r = RUN(f, "tool", "echo", cases[i].arg);
    assert_int_equal(r.status, cases[i].status);
    ran_free(&r);
  }
}

static void an_error_is_one_line_and_status_one(void **state) {
  fixture *f = *state;
  ran r = RUN(f, "tool", "echo", "boom");
  assert_int_equal(r.status, 1);
  assert_string_equal(r.out, "tool echo\t1\tboom\tfalse\nraw");
  assert_string_equal(r.err, "to stderr\nyizhan: tool echo: boom\n");
  ran_free(&r);
  /* With the place it was raised, without the traceback. */
  r = RUN(f, "tool", "echo", "where");
  assert_int_equal(r.status, 1);
  assert_true(tu_contains(r.err, "to stderr\nyizhan: tool echo: "));
  assert_true(tu_contains(r.err, "tool.lua:"));
  assert_true(tu_contains(r.err, ": with a place\n"));
  assert_null(strstr(r.err, "traceback"));
  assert_int_equal(strchr(r.err + strlen("to stderr\n"), '\n') - r.err + 1,
                   (long)r.nerr);
  ran_free(&r);
  /* The plugin stays healthy: a command's error is the person's. */
  assert_int_equal(yz_plugin_find(f->h, "tool")->state, YZ_PS_OK);
  r = RUN(f, "tool", "echo", "true");
  assert_int_equal(r.status, 0);
  ran_free(&r);
}

static void the_longest_name_wins(void **state) {
  (void)state;
  char *dir = tu_datadir("plugins = { p = {} }\n");
  tu_write(dir, "plugins/p.lua", P);
  yz_host *h = tu_host(dir);
  assert_int_equal(yz_host_start(h), YZ_OK);
  yz_plugin *p = yz_plugin_find(h, "p");
  int words = -1;
  char *a1[] = {"p", "hello", "x"};
  assert_ptr_equal(yz_cmd_find(h, 3, a1, &words), p);
  assert_int_equal(words, 2);
  char *a2[] = {"p", "hellox"};
  assert_ptr_equal(yz_cmd_find(h, 2, a2, &words), p);
  assert_int_equal(words, 1);
  char *a3[] = {"p"};
  assert_ptr_equal(yz_cmd_find(h, 1, a3, &words), p);
  assert_int_equal(words, 1);
  char *a4[] = {"hello", "p"};
  assert_null(yz_cmd_find(h, 2, a4, &words));
  assert_int_equal(words, 0);
  char *a5[] = {"pp"};
  assert_null(yz_cmd_find(h, 1, a5, &words));
  yz_host_close(h);
  tu_rmrf(dir);
  free(dir);
}

static void ask_reads_lines_from_stdin(void **state) {
  fixture *f = *state;
  ran r =
      run_input(f, "张三\r\nyes\n", (const char *const[]){"tool", "ask", NULL});
  assert_int_equal(r.status, 0);
  assert_string_equal(r.out, "张三\tyes\tnil\n");
  assert_string_equal(r.err, "name? again? more? \n");
  ran_free(&r);
  /* The last line without its newline still counts. */
  r = run_input(f, "a\nb", (const char *const[]){"tool", "ask", NULL});
  assert_string_equal(r.out, "a\tb\tnil\n");
  ran_free(&r);
  /* No stdin at all: every answer is nil, each prompt ended. */
  r = run_input(f, NULL, (const char *const[]){"tool", "ask", NULL});
  assert_string_equal(r.out, "nil\tnil\tnil\n");
  assert_string_equal(r.err, "name? \nagain? \nmore? \n");
  ran_free(&r);
}

/* ------------------------------------------------------------- cmd.csv */

#define GBK_CSV                                                        \
  "\xd0\xd5\xc3\xfb,\xd0\xd4\xb1\xf0\r\n\xd5\xc5\xc8\xfd,\xc4\xd0\r\n" \
  "\xc0\xee\xcb\xc4,\xc5\xae\r\n"

static void csv_reads_utf8_and_gbk_files(void **state) {
  fixture *f = *state;
  tu_write(f->dir, "utf8.csv",
           "姓名,性别\n张三,男\n\n\"李,四\",\"说\"\"好\"\"\"\n");
  ran r = RUN(f, "tool", "read", "utf8.csv");
  assert_int_equal(r.status, 0);
  assert_string_equal(r.out,
                      "encoding\tutf-8\t49\n"
                      "1\t2\t姓名|性别\n"
                      "2\t2\t张三|男\n"
                      "4\t2\t李,四|说\"好\"\n"
                      "pos\t49\n"
                      "after close\tfalse\tthe CSV reader is closed\n");
  ran_free(&r);
  tu_write(f->dir, "bom.csv", "\xEF\xBB\xBFname,age\r\nTom,9\r\n");
  r = RUN(f, "tool", "read", "bom.csv");
  assert_int_equal(r.status, 0);
  assert_true(tu_contains(r.out, "encoding\tutf-8 with BOM\t"));
  assert_true(tu_contains(r.out, "1\t2\tname|age\n2\t2\tTom|9\n"));
  ran_free(&r);
  tu_write(f->dir, "gbk.csv", GBK_CSV);
  r = RUN(f, "tool", "read", "gbk.csv");
  assert_int_equal(r.status, 0);
  assert_string_equal(r.out,
                      "encoding\tgb18030\t29\n"
                      "1\t2\t姓名|性别\n"
                      "2\t2\t张三|男\n"
                      "3\t2\t李四|女\n"
                      "pos\t29\n"
                      "after close\tfalse\tthe CSV reader is closed\n");
  ran_free(&r);
  /* Told the encoding, it is not guessed. */
  r = RUN(f, "tool", "read", "gbk.csv", "gbk");
  assert_true(tu_contains(r.out, "encoding\tgb18030\t29\n"));
  assert_true(tu_contains(r.out, "2\t2\t张三|男\n"));
  ran_free(&r);
  r = RUN(f, "tool", "read", "gbk.csv", "utf-8");
  assert_int_equal(r.status, 1);
  assert_true(tu_contains(r.out, "error\t1\tinvalid UTF-8"));
  ran_free(&r);
}

static void csv_reports_a_malformed_file_and_its_line(void **state) {
  fixture *f = *state;
  tu_write(f->dir, "bad.csv", "name,age\n张三,9\n\"李四,8\n王五,7\n");
  ran r = RUN(f, "tool", "read", "bad.csv");
  assert_int_equal(r.status, 1);
  assert_string_equal(r.out,
                      "encoding\tutf-8\t37\n"
                      "1\t2\tname|age\n"
                      "2\t2\t张三|9\n"
                      "error\t3\tunterminated quoted field\n");
  ran_free(&r);
  r = RUN(f, "tool", "read", "missing.csv");
  assert_int_equal(r.status, 1);
  assert_true(tu_contains(r.err, "cannot: cannot open"));
  assert_true(tu_contains(r.err, "missing.csv"));
  ran_free(&r);
  r = RUN(f, "tool", "read", "bad.csv", "latin1");
  assert_int_equal(r.status, 1);
  assert_true(tu_contains(r.err, "unknown encoding 'latin1'"));
  ran_free(&r);
}

static void files_not_on_the_command_line_are_refused(void **state) {
  fixture *f = *state;
  tu_write(f->dir, "other.csv", "a\n");
  ran r = RUN(f, "tool", "sneak", "x.csv");
  assert_int_equal(r.status, 0);
  assert_string_equal(
      r.out,
      "false\tcmd.csv: '/etc/passwd' is not named on the command line (a "
      "command may open only the files it is given)\n"
      "false\tcmd.create: 'other.csv' is not named on the command line (a "
      "command may open only the files it is given)\n");
  ran_free(&r);
  char *other = path_in(f->dir, "other.csv");
  char *text = tu_read(other);
  assert_string_equal(text, "a\n");
  free(text);
  free(other);
}

/* ---------------------------------------------------------- cmd.create */

#define WRITTEN \
  "姓名,备注\r\n张三,\"a,b\",\"say \"\"hi\"\"\",\" x\",plain,7\r\n"

/* The bytes of WRITTEN in GBK. */
#define WRITTEN_GBK                                                      \
  "\xd0\xd5\xc3\xfb,\xb1\xb8\xd7\xa2\r\n\xd5\xc5\xc8\xfd,\"a,b\",\"say " \
  "\"\"hi\"\"\",\" x\",plain,7\r\n"

/* What cmd.ask sees on a spy stdin: the data directory's listing when the
** command asks, and the temporary file's mode. */
static const char *spy_dir;
static char *spy_listing;
static int spy_mode;

static ssize_t spy_read(void *cookie, char *buf, size_t size) {
  (void)cookie;
  if (spy_listing || size < 2) return 0;
  spy_listing = listing(spy_dir);
  struct dirent **names;
  int n = scandir(spy_dir, &names, NULL, alphasort);
  for (int i = 0; i < n; i++) {
    if (strstr(names[i]->d_name, ".tmp")) {
      char *p = path_in(spy_dir, names[i]->d_name);
      struct stat st;
      if (stat(p, &st) == 0) spy_mode = (int)(st.st_mode & 0777);
      free(p);
    }
    free(names[i]);
  }
  free(names);
  memcpy(buf, "y\n", 2);
  return 2;
}

/* A file that cannot be put in place is an error, not a success: a
** command that forgot to look would say it wrote what is not there. */
static void a_failed_close_is_an_error(void **state) {
  fixture *f = *state;
  char *sub = path_in(f->dir, "adir");
  assert_int_equal(mkdir(sub, 0700), 0);
  ran r = RUN(f, "tool", "write", sub, "close");
  assert_int_equal(r.status, 1);
  assert_true(tu_contains(r.err, "cannot write "));
  assert_true(tu_contains(r.err, "adir: Is a directory"));
  assert_null(strstr(r.out, "closed"));
  ran_free(&r);
  char *list = listing(f->dir);
  assert_null(strstr(list, ".tmp")); /* the temporary went too */
  free(list);
  free(sub);
}

static void create_writes_through_a_temporary_file(void **state) {
  fixture *f = *state;
  spy_dir = f->dir;
  spy_listing = NULL;
  spy_mode = -1;
  cookie_io_functions_t io = {spy_read, NULL, NULL, NULL};
  FILE *in = fopencookie(NULL, "r", io);
  ran r =
      run_with(f, f->dir, in, NULL,
               (const char *const[]){"tool", "write", "out.csv", "ask", NULL});
  fclose(in);
  assert_int_equal(r.status, 0);
  ran_free(&r);
  /* While it was open: a temporary file beside it, mode 0600, no out.csv. */
  assert_non_null(spy_listing);
  assert_true(tu_contains(spy_listing, " out.csv.tmp"));
  assert_null(strstr(spy_listing, " out.csv "));
  assert_int_equal(spy_mode, 0600);
  free(spy_listing);
  spy_listing = NULL;
  /* Closed: renamed into place, mode 0600, nothing else left. */
  char *list = listing(f->dir);
  assert_true(tu_contains(list, " out.csv "));
  assert_null(strstr(list, ".tmp"));
  free(list);
  char *path = path_in(f->dir, "out.csv");
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  size_t n;
  char *bytes = read_bytes(path, &n);
  assert_string_equal(bytes, WRITTEN);
  free(bytes);
  free(path);
}

static void create_replaces_a_file_and_refuses_a_closed_writer(void **state) {
  fixture *f = *state;
  tu_write(f->dir, "old.csv", "old\n");
  char *path = path_in(f->dir, "old.csv");
  chmod(path, 0644);
  ran r = RUN(f, "tool", "write", "old.csv", "close");
  assert_int_equal(r.status, 0);
  assert_string_equal(r.out,
                      "closed\ttrue\n"
                      "false\tthe file is closed\n"
                      "false\tthe file is already closed\n");
  ran_free(&r);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  size_t n;
  char *bytes = read_bytes(path, &n);
  assert_string_equal(bytes, WRITTEN);
  free(bytes);
  free(path);
}

static void an_aborted_or_unclosed_writer_leaves_nothing(void **state) {
  fixture *f = *state;
  char *before = listing(f->dir);
  const char *modes[] = {"abort", "open", "error", NULL};
  for (int i = 0; modes[i]; i++) {
    ran r = RUN(f, "tool", "write", "gone.csv", modes[i]);
    assert_int_equal(r.status, strcmp(modes[i], "error") == 0 ? 1 : 0);
    ran_free(&r);
    char *after = listing(f->dir);
    assert_string_equal(after, before);
    free(after);
  }
  /* An aborted replacement keeps the old file as it was. */
  tu_write(f->dir, "keep.csv", "keep\n");
  ran r = RUN(f, "tool", "write", "keep.csv", "abort");
  ran_free(&r);
  char *path = path_in(f->dir, "keep.csv");
  char *text = tu_read(path);
  assert_string_equal(text, "keep\n");
  free(text);
  free(path);
  char *after = listing(f->dir);
  assert_null(strstr(after, ".tmp"));
  free(after);
  free(before);
}

static void create_dash_writes_to_stdout(void **state) {
  fixture *f = *state;
  char *before = listing(f->dir);
  ran r = RUN(f, "tool", "write", "-", "close");
  assert_int_equal(r.status, 0);
  assert_string_equal(r.out, WRITTEN
                      "closed\ttrue\n"
                      "false\tthe file is closed\n"
                      "false\tthe file is already closed\n");
  ran_free(&r);
  char *after = listing(f->dir);
  assert_string_equal(after, before);
  free(after);
  free(before);
}

static void create_writes_gbk_bytes_and_a_bom(void **state) {
  fixture *f = *state;
  ran r = RUN(f, "tool", "write", "gbk.csv", "close", "gbk");
  assert_int_equal(r.status, 0);
  ran_free(&r);
  char *path = path_in(f->dir, "gbk.csv");
  size_t n;
  char *bytes = read_bytes(path, &n);
  assert_int_equal(n, sizeof WRITTEN_GBK - 1);
  assert_memory_equal(bytes, WRITTEN_GBK, n);
  free(bytes);
  free(path);
  r = RUN(f, "tool", "write", "bom.csv", "close", "-", "bom");
  assert_int_equal(r.status, 0);
  ran_free(&r);
  path = path_in(f->dir, "bom.csv");
  bytes = read_bytes(path, &n);
  assert_string_equal(bytes, "\xEF\xBB\xBF" WRITTEN);
  free(bytes);
  free(path);
  /* What was written reads back. */
  r = RUN(f, "tool", "read", "gbk.csv");
  assert_true(tu_contains(r.out, "encoding\tgb18030\t"));
  assert_true(tu_contains(r.out, "2\t6\t张三|a,b|say \"hi\"| x|plain|7\n"));
  ran_free(&r);
  r = RUN(f, "tool", "read", "bom.csv");
  assert_true(tu_contains(r.out, "encoding\tutf-8 with BOM\t"));
  assert_true(tu_contains(r.out, "1\t2\t姓名|备注\n"));
  ran_free(&r);
  /* An unknown encoding is refused, no file made. */
  r = RUN(f, "tool", "write", "x.csv", "close", "latin1");
  assert_int_equal(r.status, 1);
  assert_true(tu_contains(r.err, "unknown encoding 'latin1'"));
  ran_free(&r);
  char *list = listing(f->dir);
  assert_null(strstr(list, "x.csv"));
  free(list);
}

static void text_that_is_not_utf8_is_refused_in_gbk(void **state) {
  fixture *f = *state;
  ran r = RUN(f, "tool", "gbkrow", "g.csv");
  assert_int_equal(r.status, 0);
  assert_string_equal(r.out,
                      "false\tcannot write as GBK: invalid UTF-8 at byte 7\n"
                      "false\tcannot write as GBK: invalid UTF-8 at byte 0\n");
  ran_free(&r);
  char *path = path_in(f->dir, "g.csv");
  char *text = tu_read(path);
  assert_string_equal(text, "");
  free(text);
  free(path);
}

/* --------------------------------------------------------- progress bar */

/* Opens a pseudo-terminal in raw mode: *master to read, the slave as a
** stream (a terminal for isatty). */
static FILE *open_pty(int *master) {
  *master = posix_openpt(O_RDWR | O_NOCTTY);
  assert_true(*master >= 0);
  assert_int_equal(grantpt(*master), 0);
  assert_int_equal(unlockpt(*master), 0);
  int slave = open(ptsname(*master), O_RDWR | O_NOCTTY);
  assert_true(slave >= 0);
  struct termios tio;
  tcgetattr(slave, &tio);
  cfmakeraw(&tio);
  tcsetattr(slave, TCSANOW, &tio);
  FILE *fp = fdopen(slave, "w");
  assert_non_null(fp);
  return fp;
}

static char *drain_pty(int master) {
  yz_buf b;
  yz_buf_init(&b, 1u << 20);
  struct pollfd pfd = {master, POLLIN, 0};
  char chunk[4096];
  while (poll(&pfd, 1, 200) > 0) {
    ssize_t n = read(master, chunk, sizeof chunk);
    if (n <= 0) break;
    yz_buf_add(&b, chunk, (size_t)n);
  }
  char *s = yz_strdup(yz_buf_str(&b));
  yz_buf_free(&b);
  return s;
}

#define BAR_1 "\rrows [###...........................]  10% 1/10"
#define BAR_10 "\rrows [##############################] 100% 10/10"

static void progress_draws_on_a_terminal_and_ends_before_an_error(
    void **state) {
  fixture *f = *state;
  int master;
  FILE *tty = open_pty(&master);
  ran r = run_with(f, f->dir, NULL, tty,
                   (const char *const[]){"tool", "bar", NULL});
  fflush(tty);
  char *seen = drain_pty(master);
  assert_int_equal(r.status, 1);
  assert_string_equal(r.out, "true\n");
  /* The second call came within 100 ms: not drawn. The error starts on a
  ** line of its own. */
  assert_string_equal(seen, BAR_1 "\nyizhan: tool bar: broke\n");
  free(seen);
  ran_free(&r);
  r = run_with(f, f->dir, NULL, tty,
               (const char *const[]){"tool", "bar", "end", NULL});
  fflush(tty);
  seen = drain_pty(master);
  assert_int_equal(r.status, 0);
  /* The last step is always drawn, and ends the line once. */
  assert_string_equal(seen, BAR_1 BAR_10 "\n");
  free(seen);
  ran_free(&r);
  fclose(tty);
  close(master);
  /* Not a terminal: no bar at all. */
  r = RUN(f, "tool", "bar");
  assert_int_equal(r.status, 1);
  assert_string_equal(r.out, "false\n");
  assert_string_equal(r.err, "yizhan: tool bar: broke\n");
  ran_free(&r);
}

/* --------------------------------------------------- events and jobs */

static void events_are_handled_and_no_job_runs_during_a_command(void **state) {
  fixture *f = *state;
  /* The listener's 'tick' job (every minute) is due once the clock has
  ** moved two minutes on. */
  yz_clock_advance(&f->h->clock, 120 * 1000);
  ran r = RUN(f, "tool", "emit", "7");
  assert_int_equal(r.status, 0);
  assert_string_equal(r.out, "emitted\n");
  ran_free(&r);
  /* The handler ran before the command returned... */
  char *row = tu_query(f->h->store,
                       "SELECT topic || '/' || from_ || '/' || n FROM heard");
  assert_string_equal(row, "tool.done/tool/7");
  free(row);
  /* ...and the due job did not. */
  assert_int_equal(tu_int(f->h->store, "SELECT count(*) FROM ticks"), 0);
  /* The loop runs it (it was really due). */
  yz_host_tick(f->h);
  assert_int_equal(tu_int(f->h->store, "SELECT count(*) FROM ticks"), 1);
  assert_int_equal(f->h->stopping, 0);
}

/* ------------------------------------------ known bugs (see the report) */

/* A float that is a whole number is an exit status too. */
static void bug_a_float_return_is_an_exit_status(void **state) {
  fixture *f = *state;
  ran r = RUN(f, "tool", "echo", "float");
  int status = r.status;
  ran_free(&r);
  assert_int_equal(status, 3);
}

/* A cmd table kept past its run must not reach the run's (gone) state: its
** functions raise instead. */
static void bug_a_kept_cmd_is_dead_after_its_run(void **state) {
  fixture *f = *state;
  ran r = RUN(f, "tool", "keep");
  assert_int_equal(r.status, 0);
  ran_free(&r);
  r = RUN(f, "tool", "reuse");
  int printed = strstr(r.out, "late") != NULL;
  int raised = strstr(r.out, "reuse\tfalse\t") != NULL;
  ran_free(&r);
  assert_false(printed);
  assert_true(raised);
}

/* Every character but the first and last is starred, however long. */
static void bug_mask_name_stars_a_long_name_whole(void **state) {
  fixture *f = *state;
  EXPECT(f,
         "host.text.mask_name('张' .. string.rep('小', 68) .. '明') == "
         "'张' .. string.rep('*', 68) .. '明'",
         "true");
}

/* A line longer than 1023 bytes is one answer, not two. */
static void bug_ask_reads_a_long_line_whole(void **state) {
  fixture *f = *state;
  char input[2100];
  memset(input, 'x', 1500);
  strcpy(input + 1500, "\nyes\n");
  ran r = run_input(f, input, (const char *const[]){"tool", "ask", NULL});
  char want[2100];
  memset(want, 'x', 1500);
  strcpy(want + 1500, "\tyes\tnil\n");
  int same = strcmp(r.out, want) == 0;
  ran_free(&r);
  assert_true(same);
}

/* ----------------------------------------------------- the command line */

/* A data directory with plugins p, q and ears enabled, and r on the path
** but not enabled; started once, so that later runs log nothing (the
** migrations are done). */
static char *cli_dir(void) {
  char *d = tu_datadir("plugins = { p = {}, q = {}, ears = {} }\n");
  tu_write(d, "plugins/p.lua", P);
  tu_write(d, "plugins/q.lua", Q);
  tu_write(d, "plugins/r.lua", R);
  tu_write(d, "plugins/ears.lua", EARS);
  tu_run r = tu_yizhan((const char *[]){"-d", d, "check", NULL});
  assert_int_equal(r.status, 0);
  tu_run_free(&r);
  return d;
}

/* The line 'yizhan commands' prints for a command. */
static const char *listed(const char *usage, const char *help,
                          const char *plugin) {
  static char line[512];
  snprintf(line, sizeof line, "  %-44s %s (%s)\n", usage, help, plugin);
  return line;
}

static void cli_runs_a_plugin_command(void **state) {
  (void)state;
  char *d = cli_dir();
  tu_run r = tu_yizhan((const char *[]){"-d", d, "p", "hello", "a", "b", NULL});
  assert_int_equal(r.status, 0);
  assert_string_equal(r.out, "hello\ta b\n");
  assert_string_equal(r.err, "");
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", d, "p", "hello", "false", NULL});
  assert_int_equal(r.status, 1);
  assert_string_equal(r.out, "hello\tfalse\n");
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", d, "p", "hello", "3", NULL});
  assert_int_equal(r.status, 3);
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", d, "p", "hello", "boom", NULL});
  assert_int_equal(r.status, 1);
  assert_string_equal(r.out, "hello\tboom\n");
  assert_string_equal(r.err, "yizhan: p hello: it broke\n");
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", d, "p", "hello", "where", NULL});
  assert_int_equal(r.status, 1);
  assert_true(tu_contains(r.err, "yizhan: p hello: "));
  assert_true(tu_contains(r.err, "p.lua:"));
  assert_true(tu_contains(r.err, ": it broke here\n"));
  assert_null(strstr(r.err, "traceback"));
  tu_run_free(&r);
  /* The longest name wins; the shorter one takes the rest. */
  r = tu_yizhan((const char *[]){"-d", d, "p", "x", "hello", NULL});
  assert_int_equal(r.status, 0);
  assert_string_equal(r.out, "p alone\tx,hello\n");
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", d, "p", NULL});
  assert_int_equal(r.status, 0);
  assert_string_equal(r.out, "p alone\t\n");
  tu_run_free(&r);
  tu_rmrf(d);
  free(d);
}

static void cli_explains_unknown_disabled_and_failed_commands(void **state) {
  (void)state;
  char *d = cli_dir();
  tu_run r = tu_yizhan((const char *[]){"-d", d, "q", "three", NULL});
  assert_int_equal(r.status, 2);
  assert_string_equal(r.out, "");
  assert_true(tu_contains(r.err, "yizhan: unknown command 'q three'\n"));
  assert_true(tu_contains(r.err, "the commands of plugin 'q':\n"));
  assert_true(tu_contains(r.err, listed("q one", "the first", "q")));
  assert_true(tu_contains(r.err, listed("q two N", "the second", "q")));
  assert_null(strstr(r.err, "(p)"));
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", d, "q", NULL});
  assert_int_equal(r.status, 2);
  assert_true(tu_contains(r.err, "yizhan: unknown command 'q'\n"));
  assert_true(tu_contains(r.err, listed("q one", "the first", "q")));
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", d, "r", "go", NULL});
  assert_int_equal(r.status, 1);
  assert_string_equal(r.out, "");
  assert_true(tu_contains(r.err, "plugin 'r', which is not enabled"));
  assert_true(tu_contains(r.err, "yizhan plugin enable r"));
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", d, "nothing", "here", NULL});
  assert_int_equal(r.status, 2);
  assert_true(tu_contains(r.err, "yizhan: unknown command 'nothing here'\n"));
  assert_true(tu_contains(r.err, "yizhan commands"));
  tu_run_free(&r);
  tu_rmrf(d);
  free(d);
  /* A plugin that failed to start: its commands are not there. */
  d = tu_datadir("plugins = { f = {} }\n");
  tu_write(d, "plugins/f.lua", F);
  r = tu_yizhan((const char *[]){"-d", d, "f", "go", NULL});
  assert_int_equal(r.status, 1);
  assert_string_equal(r.out, "");
  assert_true(tu_contains(r.err, "yizhan: plugin 'f' is not running (failed"));
  assert_true(tu_contains(r.err, "f cannot start"));
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", d, "commands", NULL});
  assert_int_equal(r.status, 0);
  assert_null(strstr(r.out, "f go"));
  tu_run_free(&r);
  tu_rmrf(d);
  free(d);
}

static void cli_lists_commands(void **state) {
  (void)state;
  char *d = cli_dir();
  tu_run r = tu_yizhan((const char *[]){"-d", d, "commands", NULL});
  assert_int_equal(r.status, 0);
  assert_true(tu_contains(r.out, listed("p [ARG...]", "the plain one", "p")));
  assert_true(tu_contains(
      r.out, listed("p hello [false|3|boom|where]", "says hello", "p")));
  assert_true(tu_contains(r.out, listed("p ask", "asks twice", "p")));
  assert_true(tu_contains(r.out, listed("q one", "the first", "q")));
  assert_true(tu_contains(r.out, listed("q two N", "the second", "q")));
  /* Sorted by name within a plugin. */
  assert_true(strstr(r.out, "p ask") < strstr(r.out, "p emit"));
  assert_true(strstr(r.out, "p emit") < strstr(r.out, "p hello"));
  /* Not the disabled plugin's. */
  assert_null(strstr(r.out, "r go"));
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", d, "commands", "extra", NULL});
  assert_int_equal(r.status, 2);
  tu_run_free(&r);
  /* --help after a plugin command lists instead of running it. */
  r = tu_yizhan((const char *[]){"-d", d, "p", "hello", "--help", NULL});
  assert_int_equal(r.status, 0);
  assert_true(tu_contains(
      r.out, listed("p hello [false|3|boom|where]", "says hello", "p")));
  assert_null(strstr(r.out, "hello\t"));
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", d, "q", "one", "x", "-h", NULL});
  assert_int_equal(r.status, 0);
  assert_true(tu_contains(r.out, listed("q one", "the first", "q")));
  assert_null(strstr(r.out, "one\n"));
  tu_run_free(&r);
  /* The built-in help points at the plugins' commands. */
  r = tu_yizhan((const char *[]){"--help", NULL});
  assert_int_equal(r.status, 0);
  assert_true(tu_contains(r.out, "yizhan commands"));
  tu_run_free(&r);
  tu_rmrf(d);
  free(d);
}

static void cli_ask_reads_stdin(void **state) {
  (void)state;
  char *d = cli_dir();
  tu_run r =
      tu_yizhan_input((const char *[]){"-d", d, "p", "ask", NULL}, "李四\n");
  assert_int_equal(r.status, 0);
  assert_string_equal(r.out, "李四\tnil\n");
  assert_string_equal(r.err, "who? and? \n");
  tu_run_free(&r);
  r = tu_yizhan_input((const char *[]){"-d", d, "p", "ask", NULL},
                      "y\r\nn\r\n");
  assert_string_equal(r.out, "y\tn\n");
  assert_string_equal(r.err, "who? and? ");
  tu_run_free(&r);
  tu_rmrf(d);
  free(d);
}

static void cli_files_are_relative_to_the_working_directory(void **state) {
  (void)state;
  char *d = cli_dir();
  char *work = tu_tmpdir();
  tu_write(work, "kids.csv", GBK_CSV);
  char old[4096];
  assert_non_null(getcwd(old, sizeof old));
  assert_int_equal(chdir(work), 0);
  tu_run r =
      tu_yizhan((const char *[]){"-d", d, "p", "read", "kids.csv", NULL});
  tu_run r2 =
      tu_yizhan((const char *[]){"-d", d, "p", "save", "new.csv", NULL});
  tu_run r3 =
      tu_yizhan((const char *[]){"-d", d, "p", "read", "nope.csv", NULL});
  assert_int_equal(chdir(old), 0);
  assert_int_equal(r.status, 0);
  assert_string_equal(r.out, "gb18030\t3\n");
  assert_int_equal(r2.status, 0);
  char *path = path_in(work, "new.csv");
  char *text = tu_read(path);
  assert_string_equal(text, "名字,a b\r\n");
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  free(text);
  free(path);
  assert_int_equal(r3.status, 1);
  assert_true(tu_contains(r3.err, "yizhan: p read: "));
  assert_true(tu_contains(r3.err, "nope.csv"));
  tu_run_free(&r);
  tu_run_free(&r2);
  tu_run_free(&r3);
  char *list = listing(work);
  assert_string_equal(list, " kids.csv new.csv ");
  free(list);
  tu_rmrf(work);
  free(work);
  tu_rmrf(d);
  free(d);
}

static void cli_delivers_events_but_runs_no_job(void **state) {
  (void)state;
  char *d = cli_dir();
  /* A first start registers the 'tick' job; then it is made due. */
  tu_run r = tu_yizhan((const char *[]){"-d", d, "p", NULL});
  assert_int_equal(r.status, 0);
  tu_run_free(&r);
  yz_store *s = tu_db_open(d);
  assert_int_equal(
      yz_store_exec_script(s, NULL,
                           "UPDATE yz_jobs SET next_due = "
                           "CAST(strftime('%s', 'now') AS INTEGER) - 30 "
                           "WHERE plugin = 'ears' AND name = 'tick'"),
      YZ_OK);
  assert_int_equal(
      tu_int(s, "SELECT count(*) FROM yz_jobs WHERE name = 'tick'"), 1);
  yz_store_close(s);
  r = tu_yizhan((const char *[]){"-d", d, "p", "emit", "5", NULL});
  assert_int_equal(r.status, 0);
  tu_run_free(&r);
  char *row =
      tu_db_text(d, "SELECT topic || '/' || from_ || '/' || n FROM heard");
  assert_string_equal(row, "p.done/p/5");
  free(row);
  assert_int_equal(tu_db_int(d, "SELECT count(*) FROM ticks"), 0);
  /* The daemon would have run it. */
  r = tu_yizhan((const char *[]){"-d", d, "run", "--until-idle", NULL});
  tu_run_free(&r);
  assert_int_equal(tu_db_int(d, "SELECT count(*) FROM ticks"), 1);
  tu_rmrf(d);
  free(d);
}

/* ------------------------------------------------------- yizhan test */

static void plugin_tests_use_exec_one_and_command(void **state) {
  (void)state;
  char *d = tu_datadir("plugins = { tp = {} }\n");
  tu_write(d, "plugins/store.lua", STORE);
  tu_write(d, "plugins/tp.lua", TP);
  tu_write(d, "plugins/tp_test.lua", TP_TEST);
  tu_run r = tu_yizhan((const char *[]){"-d", d, "test", "tp", NULL});
  if (r.status != 0) fprintf(stderr, "%s\n%s\n", r.out, r.err);
  assert_int_equal(r.status, 0);
  assert_true(tu_contains(r.out, "ok - t.exec and t.one run as the host\n"));
  assert_true(
      tu_contains(r.out, "ok - t.command runs a command with its input\n"));
  assert_true(
      tu_contains(r.out, "ok - t.command opens files in the test folder\n"));
  assert_true(
      tu_contains(r.out, "ok - t.command refuses a command no plugin has\n"));
  assert_true(
      tu_contains(r.out, "ok - fixtures are rolled back after each test\n"));
  assert_true(tu_contains(r.out, "5 passed, 0 failed\n"));
  tu_run_free(&r);
  /* The files the test wrote went with its scratch folder: nothing in the
  ** data directory. */
  char *saved = path_in(d, "saved.csv");
  assert_null(tu_read(saved));
  free(saved);
  /* A failing t.command check fails the run with its line. */
  tu_write(d, "plugins/tp_test.lua",
           "test('wrong', function(t)\n"
           "  local status, out = t.command('tp greet', { 'x' }, { input = "
           "'y\\n' })\n"
           "  t.eq(out, 'nope')\n"
           "end)\n");
  r = tu_yizhan((const char *[]){"-d", d, "test", "tp", NULL});
  assert_int_equal(r.status, 1);
  assert_true(tu_contains(r.out, "not ok - wrong\n"));
  assert_true(tu_contains(r.out,
                          "tp_test.lua:3: assertion failed: expected "
                          "\"nope\", got \"你好\\9x\\n\""));
  assert_true(tu_contains(r.out, "0 passed, 1 failed\n"));
  tu_run_free(&r);
  tu_rmrf(d);
  free(d);
}

/* ------------------------------- known bugs of the command line (report) */

/* 'the commands of plugin q' are q's: not those of plugin qq. */
static void bug_a_plugins_listing_is_its_own(void **state) {
  (void)state;
  char *d = tu_datadir("plugins = { q = {}, qq = {} }\n");
  tu_write(d, "plugins/q.lua", Q);
  tu_write(d, "plugins/qq.lua",
           "return { name = 'qq', version = '1',\n"
           "  setup = function(host)\n"
           "    host.command('qq x', { usage = 'qq x', help = 'not q', run "
           "= function(cmd) end })\n"
           "  end }\n");
  tu_run r = tu_yizhan((const char *[]){"-d", d, "q", "three", NULL});
  assert_int_equal(r.status, 2);
  assert_true(tu_contains(r.err, listed("q one", "the first", "q")));
  int leaked = strstr(r.err, "(qq)") != NULL;
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", d, "q", "one", "--help", NULL});
  leaked |= strstr(r.out, "(qq)") != NULL;
  tu_run_free(&r);
  tu_rmrf(d);
  free(d);
  assert_false(leaked);
}

/* Whatever a plugin registers, running or listing it never aborts the
** process (a long name; a spec whose fields come from a metamethod). */
static void bug_odd_specs_do_not_crash_the_command_line(void **state) {
  (void)state;
  char *d = tu_datadir("plugins = { odd = {} }\n");
  char a[101], b[101], c[101];
  memset(a, 'a', 100);
  memset(b, 'b', 100);
  memset(c, 'c', 100);
  a[100] = b[100] = c[100] = 0;
  char src[2048];
  snprintf(src, sizeof src,
           "return { name = 'odd', version = '1',\n"
           "  setup = function(host)\n"
           "    host.command('%s %s %s', { run = function(cmd) "
           "cmd.print('long') end })\n"
           "    local n = 0\n"
           "    host.command('odd meta', setmetatable({}, { __index = "
           "function(t, k)\n"
           "      if k ~= 'run' then return nil end\n"
           "      n = n + 1\n"
           "      if n > 1 then error('gotcha') end\n"
           "      return function() end\n"
           "    end }))\n"
           "  end }\n",
           a, b, c);
  tu_write(d, "plugins/odd.lua", src);
  tu_run r1 = tu_yizhan((const char *[]){"-d", d, a, b, c, NULL});
  tu_run r2 = tu_yizhan((const char *[]){"-d", d, "odd", "meta", NULL});
  tu_run r3 = tu_yizhan((const char *[]){"-d", d, "commands", NULL});
  int s1 = r1.status, s2 = r2.status, s3 = r3.status;
  tu_run_free(&r1);
  tu_run_free(&r2);
  tu_run_free(&r3);
  tu_rmrf(d);
  free(d);
  assert_true(s1 < 128);
  assert_true(s2 < 128);
  assert_true(s3 < 128);
}

/* Interrupted (Ctrl-C) while a file is being written, a command leaves no
** temporary file behind. */
static void bug_an_interrupted_command_leaves_no_temporary_file(void **state) {
  (void)state;
  char *d = cli_dir();
  char *work = tu_tmpdir();
  int in[2];
  assert_int_equal(pipe(in), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    signal(SIGINT, SIG_DFL);
    if (chdir(work) != 0) _exit(127);
    int null = open("/dev/null", O_WRONLY);
    dup2(in[0], 0);
    dup2(null, 1);
    dup2(null, 2);
    close(in[1]);
    execl(YZ_TEST_BINARY, YZ_TEST_BINARY, "-d", d, "p", "slow", "out.csv",
          (char *)NULL);
    _exit(127);
  }
  close(in[0]);
  /* Wait until it writes (its temporary file is there), then interrupt. */
  char *list = NULL;
  for (int i = 0; i < 500; i++) {
    free(list);
    list = listing(work);
    if (strstr(list, ".tmp")) break;
    tu_sleep_ms(10);
  }
  assert_true(tu_contains(list, " out.csv.tmp"));
  free(list);
  kill(pid, SIGINT);
  int st;
  waitpid(pid, &st, 0);
  close(in[1]);
  list = listing(work);
  int left = strstr(list, ".tmp") != NULL;
  free(list);
  tu_rmrf(work);
  free(work);
  tu_rmrf(d);
  free(d);
  assert_false(left);
}

/* t.command hands back any status, and passes every argument. */
static void bug_t_command_passes_any_status_and_many_arguments(void **state) {
  (void)state;
  char *d = tu_datadir("plugins = { many = {} }\n");
  tu_write(d, "plugins/many.lua",
           "return { name = 'many', version = '1',\n"
           "  setup = function(host)\n"
           "    host.command('many count', { run = function(cmd) "
           "cmd.print(#cmd.args, cmd.args[#cmd.args]) end })\n"
           "    host.command('many minus', { run = function(cmd) return -1 "
           "end })\n"
           "  end }\n");
  tu_write(d, "plugins/many_test.lua",
           "test('a negative status', function(t)\n"
           "  local ok, status = pcall(t.command, 'many minus', {})\n"
           "  t.ok(ok, status)\n"
           "  t.ok(status ~= 0, 'not a success')\n"
           "end)\n"
           "test('100 arguments', function(t)\n"
           "  local args = {}\n"
           "  for i = 1, 100 do args[i] = 'a' .. i end\n"
           "  local status, out = t.command('many count', args)\n"
           "  t.eq(out, '100\\ta100\\n')\n"
           "end)\n");
  tu_run r = tu_yizhan((const char *[]){"-d", d, "test", "many", NULL});
  int status = r.status;
  if (status != 0) fprintf(stderr, "%s%s", r.out, r.err);
  tu_run_free(&r);
  tu_rmrf(d);
  free(d);
  assert_int_equal(status, 0);
}

int main(int argc, char **argv) {
  if (argc > 1) cmocka_set_test_filter(argv[1]);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(mask_name_keeps_the_first_and_last_character),
      T(date_accepts_the_spreadsheet_forms),
      T(date_checks_the_calendar),
      T(date_refuses_what_is_not_a_date),
      T(date_with_month_accepts_a_month_alone),
      T(render_fills_placeholders),
      T(width_counts_display_columns),
      T(outbox_stats_counts_states_and_parts_in_a_window),
      cmocka_unit_test(command_refuses_bad_names),
      cmocka_unit_test(command_refuses_a_built_in_first_word),
      cmocka_unit_test(command_refuses_a_bad_spec),
      cmocka_unit_test(command_refuses_a_name_another_plugin_added),
      T(a_command_gets_its_name_and_arguments),
      T(the_return_value_is_the_exit_status),
      T(options_are_read_against_a_spec),
      T(a_failed_close_is_an_error),
      T(an_error_is_one_line_and_status_one),
      cmocka_unit_test(the_longest_name_wins),
      T(ask_reads_lines_from_stdin),
      T(csv_reads_utf8_and_gbk_files),
      T(csv_reports_a_malformed_file_and_its_line),
      T(files_not_on_the_command_line_are_refused),
      T(create_writes_through_a_temporary_file),
      T(create_replaces_a_file_and_refuses_a_closed_writer),
      T(an_aborted_or_unclosed_writer_leaves_nothing),
      T(create_dash_writes_to_stdout),
      T(create_writes_gbk_bytes_and_a_bom),
      T(text_that_is_not_utf8_is_refused_in_gbk),
      T(progress_draws_on_a_terminal_and_ends_before_an_error),
      T(events_are_handled_and_no_job_runs_during_a_command),
      T(bug_a_float_return_is_an_exit_status),
      T(bug_a_kept_cmd_is_dead_after_its_run),
      T(bug_mask_name_stars_a_long_name_whole),
      T(bug_ask_reads_a_long_line_whole),
      cmocka_unit_test(cli_runs_a_plugin_command),
      cmocka_unit_test(cli_explains_unknown_disabled_and_failed_commands),
      cmocka_unit_test(cli_lists_commands),
      cmocka_unit_test(cli_ask_reads_stdin),
      cmocka_unit_test(cli_files_are_relative_to_the_working_directory),
      cmocka_unit_test(cli_delivers_events_but_runs_no_job),
      cmocka_unit_test(plugin_tests_use_exec_one_and_command),
      cmocka_unit_test(bug_a_plugins_listing_is_its_own),
      cmocka_unit_test(bug_odd_specs_do_not_crash_the_command_line),
      cmocka_unit_test(bug_an_interrupted_command_leaves_no_temporary_file),
      cmocka_unit_test(bug_t_command_passes_any_status_and_many_arguments),
  };
#undef T
  return cmocka_run_group_tests_name("commands", tests, NULL, NULL);
}
