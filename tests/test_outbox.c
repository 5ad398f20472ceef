/*
** test_outbox.c: the outbox and the bus in one process on a simulated
** clock, with a channel plugin ('fake') whose answers the text chooses:
** idempotent keys, refused input that writes nothing, the states and the
** backoff of transient and permanent failures, Retry-After, messages in
** doubt after a crash, quiet hours, daily caps, the rate limit, and events
** between plugins (including the core's message events). A second channel
** plugin ('tpl') covers template messages, batches, held channels and
** alerts, and receipt polling.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver.h"
#include "testutil.h"

/* 2026-11-02 12:00 in Shanghai, in ms: outside quiet hours. */
#define NOON_MS 1793592000000LL
/* 2026-11-02 22:00 in Shanghai: inside them. */
#define NIGHT_MS (NOON_MS + 10LL * 3600 * 1000)
#define SEC 1000LL

/* The channel: records what it is given; the text picks the answer. */
#define FAKE                                                                 \
  "return { name = 'fake', version = '1', owns = { 'got' },\n"               \
  "  migrations = { 'CREATE TABLE got (id INTEGER, key TEXT, to_ TEXT, "     \
  "text TEXT, attempt INTEGER, in_doubt INTEGER, coding TEXT, job TEXT, "    \
  "plugin TEXT, at INTEGER)' },\n"                                           \
  "  setup = function(host)\n"                                               \
  "    for name in pairs(host.channels) do\n"                                \
  "      host.channel{ name = name, send = function(m)\n"                    \
  "        host.db.exec('INSERT INTO got VALUES (?,?,?,?,?,?,?,?,?,?)', "    \
  "m.id, m.key, m.to, m.text, m.attempt, m.in_doubt and 1 or 0, m.coding, "  \
  "m.job, m.plugin, host.now_ms())\n"                                        \
  "        if m.text == 'TRANSIENT' then return nil, 'boom' end\n"           \
  "        if m.text == 'PERMANENT' then return nil, 'no such number', "     \
  "'permanent' end\n"                                                        \
  "        if m.text == 'LATER' then return nil, 'busy', { retry_after = "   \
  "100 } end\n"                                                              \
  "        if m.text == 'RAISE' then error('the gateway library broke') "    \
  "end\n"                                                                    \
  "        if m.text == 'TRICKY' then return nil, 'busy', setmetatable({}, " \
  "{ __index = function() error('gotcha') end }) end\n"                      \
  "        return true, 'gw-' .. m.id\n"                                     \
  "      end }\n"                                                            \
  "    end\n"                                                                \
  "  end }\n"

/* A plugin that may send, with a job that sends, and a listener. */
#define SENDER                                                            \
  "return { name = 'sender', version = '1', access = { send = true },\n"  \
  "  owns = { 'heard' },\n"                                               \
  "  migrations = { 'CREATE TABLE heard (topic TEXT, from_ TEXT, body "   \
  "TEXT)' },\n"                                                           \
  "  setup = function(host)\n"                                            \
  "    host.on('message.*', function(d, ev)\n"                            \
  "      host.db.exec('INSERT INTO heard VALUES (?, ?, ?)', ev.topic, "   \
  "ev.from, host.json.encode(d))\n"                                       \
  "    end)\n"                                                            \
  "    host.cron('monthly', '0 9 1 * *', function(run)\n"                 \
  "      host.send{ to = '13800138000', text = 'letter ' .. run.period, " \
  "key = 'letter:' .. run.period }\n"                                     \
  "    end)\n"                                                            \
  "  end }\n"

#define CHANNELS(extra)                                                      \
  "channels = { default = 'fake', fake = { type = 'fake', retry_base = 10, " \
  "retry_cap = 40, max_attempts = 3" extra                                   \
  " } }\n"                                                                   \
  "plugins = { sender = {} }\n"

typedef struct fixture {
  char *dir;
  yz_host *h;
  yz_buf out;
} fixture;

static void start(fixture *f, const char *config, int64_t ms) {
  if (!f->dir) {
    f->dir = tu_datadir(config);
    tu_write(f->dir, "plugins/fake.lua", FAKE);
    tu_write(f->dir, "plugins/sender.lua", SENDER);
  }
  yz_host_close(f->h);
  f->h = tu_host(f->dir);
  yz_clock_simulate(&f->h->clock, ms);
  int rc = yz_host_start(f->h);
  for (int i = 0; rc != YZ_OK && i < f->h->nplugins; i++)
    if (f->h->plugins[i]->error)
      fprintf(stderr, "%s: %s\n", f->h->plugins[i]->name,
              f->h->plugins[i]->error);
  assert_int_equal(rc, YZ_OK);
  f->h->deliver = 1;
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  yz_buf_init(&f->out, 1 << 20);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  yz_host_close(f->h);
  if (f->dir) tu_rmrf(f->dir);
  free(f->dir);
  yz_buf_free(&f->out);
  free(f);
  return 0;
}

static const char *eval(fixture *f, const char *code, int want) {
  return tu_eval(yz_plugin_find(f->h, "sender"), code, &f->out, want);
}

static int64_t q(fixture *f, const char *sql) {
  return tu_int(f->h->store, sql);
}

static char *qs(fixture *f, const char *sql) {
  return tu_query(f->h->store, sql);
}

static void run_until(fixture *f, int64_t ms) {
  yz_host_run_until(f->h, ms);
}

/* ------------------------------------------------------------- the tests */

static void a_key_sends_once(void **state) {
  fixture *f = *state;
  start(f, CHANNELS(", quiet_hours = false"), NOON_MS);
  const char *r = eval(f,
                       "local a = host.send{ to = '138 0013 8000', text = "
                       "'本月请给父母写一封信', key = 'k1' }\n"
                       "local b = host.send{ to = '+86 138-0013-8000', text "
                       "= 'other', key = 'k1' }\n"
                       "return a.id == b.id, a.existing, b.existing, b.state",
                       YZ_OK);
  assert_true(tu_contains(r, "true\tfalse\ttrue\t\"queued\""));
  assert_int_equal(q(f, "SELECT count(*) FROM yz_outbox"), 1);
  run_until(f, NOON_MS + SEC);
  char *s = qs(f,
               "SELECT state || ' ' || recipient || ' ' || gateway_id || ' ' "
               "|| parts || ' ' || ucs2 FROM yz_outbox");
  assert_string_equal(s, "sent +8613800138000 gw-1 1 1");
  free(s);
  s = qs(f,
         "SELECT key || ' ' || to_ || ' ' || coding || ' ' || in_doubt "
         "|| ' ' || plugin FROM got");
  assert_string_equal(s, "k1 +8613800138000 ucs2 0 sender");
  free(s);
  /* Sent once: a later send with the key changes nothing. */
  eval(f, "return host.send{ to = '13800138000', text = 'x', key = 'k1' }",
       YZ_OK);
  run_until(f, NOON_MS + 60 * SEC);
  assert_int_equal(q(f, "SELECT count(*) FROM got"), 1);
}

static void bad_input_is_refused_and_writes_nothing(void **state) {
  fixture *f = *state;
  start(f, CHANNELS(", max_parts = 3"), NOON_MS);
  struct {
    const char *code, *want;
  } cases[] = {
      {"host.send{ to = '12345678', text = 'hi' }", "bad phone number '123"},
      {"host.send{ to = '021-6234 5678', text = 'hi' }", "bad phone number"},
      {"host.send{ text = 'hi' }", "'to' is missing"},
      {"host.send{ to = '13800138000', text = '' }", "'text' is missing"},
      {"host.send{ to = '13800138000', text = ('本'):rep(250) }",
       "the text is 4 SMS parts"},
      {"host.send{ to = '13800138000', text = 'hi', channel = 'nope' }",
       "unknown channel 'nope' (configured: fake)"},
      {"host.send{ to = '13800138000', text = 'hi', colour = 'red' }",
       "unknown field 'colour'"},
      {"host.send{ to = '13800138000', text = 'hi', meta = { f = print } }",
       "meta"},
      {"host.send{ to = '13800138000', text = 'hi', not_before = 'soon' }",
       "not_before 'soon'"},
      {"host.send{ to = '13800138000', text = '\\xff\\xfe' }",
       "not valid UTF-8"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *r = eval(f, cases[i].code, YZ_ERR);
    if (!tu_contains(r, cases[i].want)) fail_msg("case %zu", i);
  }
  /* The refused number is shown masked, never whole. */
  const char *r = eval(f, "host.send{ to = '12345678', text = 'hi' }", YZ_ERR);
  assert_null(strstr(r, "12345678"));
  assert_int_equal(q(f, "SELECT count(*) FROM yz_outbox"), 0);
  /* A plugin without access.send may not send. */
  yz_buf out;
  yz_buf_init(&out, 4096);
  r = tu_eval(yz_plugin_find(f->h, "fake"),
              "host.send{ to = '13800138000', text = 'hi' }", &out, YZ_ERR);
  assert_true(tu_contains(r, "may not send messages"));
  yz_buf_free(&out);
  assert_int_equal(q(f, "SELECT count(*) FROM yz_outbox"), 0);
}

static void transient_failures_back_off_then_die(void **state) {
  fixture *f = *state;
  start(f, CHANNELS(", quiet_hours = false"), NOON_MS);
  eval(f, "host.send{ to = '13800138000', text = 'TRANSIENT', key = 't' }",
       YZ_OK);
  run_until(f, NOON_MS + 1);
  assert_int_equal(q(f, "SELECT attempts FROM yz_outbox"), 1);
  char *s = qs(f, "SELECT state || ': ' || last_error FROM yz_outbox");
  assert_string_equal(s, "failed: boom");
  free(s);
  /* The first retry in 10 s +-20%, the second in 20 s +-20%, measured from
  ** the attempt: the first turn makes it at noon itself (counted from noon
  ** + 1 ms, the lowest jitter gave 7999). */
  int64_t next = q(f,
                   "SELECT next_at - (SELECT max(at) FROM got) FROM "
                   "yz_outbox");
  assert_in_range(next, 8000, 12000);
  run_until(f, NOON_MS + 13 * SEC);
  assert_int_equal(q(f, "SELECT attempts FROM yz_outbox"), 2);
  int64_t at2 = q(f, "SELECT max(at) FROM got");
  next = q(f, "SELECT next_at FROM yz_outbox") - at2;
  assert_in_range(next, 16000, 24000);
  run_until(f, NOON_MS + 120 * SEC);
  s = qs(f,
         "SELECT state || ' ' || attempts || ': ' || last_error FROM "
         "yz_outbox");
  assert_string_equal(s, "dead 3: boom");
  free(s);
  assert_int_equal(q(f, "SELECT count(*) FROM got"), 3);
  /* Every attempt carried the same key; the dead one is audited and the
  ** listener heard message.failed twice and message.dead once. */
  assert_int_equal(q(f, "SELECT count(DISTINCT key) FROM got"), 1);
  assert_int_equal(
      q(f, "SELECT count(*) FROM yz_audit WHERE action = 'message.dead'"), 1);
  assert_int_equal(
      q(f, "SELECT count(*) FROM heard WHERE topic = 'message.failed'"), 2);
  assert_int_equal(
      q(f, "SELECT count(*) FROM heard WHERE topic = 'message.dead'"), 1);
}

static void permanent_failures_die_at_once(void **state) {
  fixture *f = *state;
  start(f, CHANNELS(", quiet_hours = false"), NOON_MS);
  eval(f,
       "host.send{ to = '13800138000', text = 'PERMANENT' }\n"
       "host.send{ to = '13800138001', text = 'LATER' }\n"
       "host.send{ to = '13800138002', text = 'RAISE' }",
       YZ_OK);
  run_until(f, NOON_MS + 1);
  char *s = qs(f,
               "SELECT group_concat(state || ' ' || attempts || ' ' || "
               "coalesce(last_error, ''), ' | ') FROM (SELECT * FROM "
               "yz_outbox ORDER BY id)");
  assert_true(tu_contains(s,
                          "dead 1 no such number | failed 1 busy | "
                          "failed 1 "));
  assert_true(tu_contains(s, "the gateway library broke"));
  free(s);
  /* Retry-After: exactly 100 s later, no backoff or jitter. */
  assert_int_equal(q(f,
                     "SELECT next_at - (SELECT at FROM got WHERE text = "
                     "'LATER') FROM yz_outbox WHERE id = 2"),
                   100 * SEC);
}

static void messages_in_doubt_go_again_with_their_key(void **state) {
  fixture *f = *state;
  start(f, CHANNELS(", quiet_hours = false"), NOON_MS);
  eval(f, "host.send{ to = '13800138000', text = 'hi', key = 'doubt' }", YZ_OK);
  /* As a crash between the claim and the answer leaves it. */
  yz_store_exec(f->h->store, NULL,
                "UPDATE yz_outbox SET state = 'sending', attempts = 1", NULL,
                0);
  start(f, NULL, NOON_MS + SEC);
  assert_int_equal(yz_outbox_recover(f->h->outbox), 1);
  run_until(f, NOON_MS + 2 * SEC);
  char *s = qs(f, "SELECT key || ' ' || in_doubt || ' ' || attempt FROM got");
  assert_string_equal(s, "doubt 1 2");
  free(s);
  assert_int_equal(q(f, "SELECT in_doubt FROM yz_outbox"), 1);
  s = qs(f, "SELECT state FROM yz_outbox");
  assert_string_equal(s, "sent");
  free(s);
}

static void quiet_hours_hold_messages_until_morning(void **state) {
  fixture *f = *state;
  start(f, CHANNELS(""), NIGHT_MS);
  eval(f, "host.send{ to = '13800138000', text = 'hi' }", YZ_OK);
  /* The turn says when to come back: 07:30, 9.5 hours on. */
  int64_t wait = yz_host_tick(f->h);
  assert_int_equal(wait, 9 * 3600 * SEC + 30 * 60 * SEC);
  run_until(f, NIGHT_MS + 9 * 3600 * SEC + 29 * 60 * SEC); /* 07:29 */
  assert_int_equal(q(f, "SELECT count(*) FROM got"), 0);
  run_until(f, NIGHT_MS + 10 * 3600 * SEC); /* 08:00 */
  assert_int_equal(q(f, "SELECT count(*) FROM got"), 1);
  assert_int_equal(q(f, "SELECT sent_at FROM yz_outbox"),
                   NIGHT_MS + 9 * 3600 * SEC + 30 * 60 * SEC);
}

static void quiet_hours_can_be_set_per_channel(void **state) {
  fixture *f = *state;
  start(f, CHANNELS(", quiet_hours = { from = '20:00', to = '23:00' }"),
        NIGHT_MS);
  eval(f, "host.send{ to = '13800138000', text = 'hi' }", YZ_OK);
  run_until(f, NIGHT_MS + 59 * 60 * SEC); /* 22:59 */
  assert_int_equal(q(f, "SELECT count(*) FROM got"), 0);
  run_until(f, NIGHT_MS + 61 * 60 * SEC);
  assert_int_equal(q(f, "SELECT sent_at FROM yz_outbox"),
                   NIGHT_MS + 3600 * SEC);
}

static void a_daily_cap_holds_the_rest_until_tomorrow(void **state) {
  fixture *f = *state;
  start(f, CHANNELS(", quiet_hours = false, daily_cap = 2"), NOON_MS);
  eval(f,
       "for i = 1, 3 do host.send{ to = '13800138000', text = 'm' .. i } "
       "end\n"
       "host.send{ to = '13800138001', text = 'other' }",
       YZ_OK);
  run_until(f, NOON_MS + 60 * SEC);
  assert_int_equal(q(f, "SELECT count(*) FROM got"), 3);
  char *s = qs(f, "SELECT last_error FROM yz_outbox WHERE state = 'queued'");
  assert_true(tu_contains(s, "daily cap of 2"));
  free(s);
  /* Midnight is 12 hours on; the held one goes then. */
  assert_int_equal(q(f,
                     "SELECT next_at FROM yz_outbox WHERE state = "
                     "'queued'"),
                   NOON_MS + 12 * 3600 * SEC);
  run_until(f, NOON_MS + 12 * 3600 * SEC + SEC);
  assert_int_equal(q(f, "SELECT count(*) FROM got"), 4);
}

static void the_rate_limit_spaces_messages(void **state) {
  fixture *f = *state;
  start(f, CHANNELS(", quiet_hours = false, tps = 2"), NOON_MS);
  eval(f,
       "for i = 1, 10 do host.send{ to = '1380013800' .. (i % 10), text = "
       "'m' .. i } end",
       YZ_OK);
  run_until(f, NOON_MS + 30 * SEC);
  assert_int_equal(q(f, "SELECT count(*) FROM got"), 10);
  /* A burst of 2, then one every half second: the last at 4 s. */
  assert_int_equal(q(f,
                     "SELECT count(*) FROM got WHERE at < "
                     "1793592001000"),
                   3);
  assert_int_equal(q(f, "SELECT max(at) - min(at) FROM got"), 4 * SEC);
  /* No second has more than tps after the first. */
  assert_true(q(f,
                "SELECT max(n) FROM (SELECT count(*) AS n FROM got "
                "WHERE at >= 1793592001000 GROUP BY at / 1000)") <= 2);
}

static void jobs_send_and_the_message_knows_its_job(void **state) {
  fixture *f = *state;
  start(f, CHANNELS(", quiet_hours = false"), NOON_MS);
  /* To 2027-01-01 10:00: two monthly runs, two letters, keyed by month. */
  run_until(f, NOON_MS + 60LL * 86400 * SEC - 2 * 3600 * SEC);
  char *s = qs(f, "SELECT group_concat(key || '/' || job, ' ') FROM got");
  assert_string_equal(s, "letter:2026-12/monthly letter:2027-01/monthly");
  free(s);
  s = qs(f, "SELECT group_concat(job, ' ') FROM yz_outbox");
  assert_string_equal(s, "monthly monthly");
  free(s);
}

static void events_reach_every_listener_as_copies(void **state) {
  fixture *f = *state;
  f->dir = tu_datadir(CHANNELS(", quiet_hours = false")
                      "plugins = { sender = {}, pub = {}, bad = {} }\n");
  tu_write(f->dir, "plugins/fake.lua", FAKE);
  tu_write(f->dir, "plugins/sender.lua",
           "return { name = 'sender', version = '1', owns = { 'heard' },\n"
           "  migrations = { 'CREATE TABLE heard (topic TEXT, from_ TEXT, "
           "body TEXT)' },\n"
           "  setup = function(host)\n"
           "    host.on('registry.*', function(d, ev)\n"
           "      d.n = d.n + 100\n"
           "      host.db.exec('INSERT INTO heard VALUES (?, ?, ?)', "
           "ev.topic, ev.from, host.json.encode(d))\n"
           "    end)\n"
           "  end }\n");
  tu_write(f->dir, "plugins/bad.lua",
           "return { name = 'bad', version = '1', setup = function(host)\n"
           "  host.on('registry.child_added', function() error('oops') end)\n"
           "end }\n");
  tu_write(f->dir, "plugins/pub.lua",
           "return { name = 'pub', version = '1', setup = function(host) end "
           "}\n");
  start(f, NULL, NOON_MS);
  yz_buf out;
  yz_buf_init(&out, 1 << 16);
  yz_plugin *pub = yz_plugin_find(f->h, "pub");
  tu_eval(pub,
          "local d = { n = 1, names = { '小明', '小红' }, ok = true }\n"
          "host.emit('registry.child_added', d)\n"
          "host.emit('registry.child_added', d)\n"
          "host.emit('other.topic', d)\n"
          "return d.n",
          &out, YZ_OK);
  const char *r =
      tu_eval(pub, "host.emit('registry.x', { f = print })", &out, YZ_ERR);
  assert_true(tu_contains(r, "must be plain"));
  r = tu_eval(pub, "local t = {} t.self = t host.emit('registry.x', t)", &out,
              YZ_ERR);
  assert_true(tu_contains(r, "cycle"));
  r = tu_eval(pub, "host.emit('message.sent', {})", &out, YZ_ERR);
  assert_true(tu_contains(r, "core's own"));
  r = tu_eval(pub, "host.emit('bad topic!', {})", &out, YZ_ERR);
  assert_true(tu_contains(r, "bad topic"));
  yz_buf_free(&out);
  run_until(f, NOON_MS + SEC);
  /* Both events reached 'sender' (the handler that raised in 'bad' did not
  ** stop them), each a fresh copy: the emitter's table is untouched and
  ** each handler's change is its own. */
  assert_int_equal(q(f, "SELECT count(*) FROM heard"), 2);
  char *s = qs(f,
               "SELECT topic || ' ' || from_ || ' ' || body FROM heard "
               "LIMIT 1");
  assert_string_equal(s,
                      "registry.child_added pub "
                      "{\"n\":101,\"names\":[\"小明\",\"小红\"],"
                      "\"ok\":true}");
  free(s);
  assert_true(yz_plugin_find(f->h, "bad")->failures >= 1);
  assert_int_equal(yz_plugin_find(f->h, "sender")->state, YZ_PS_OK);
}

static void the_core_announces_sent_messages(void **state) {
  fixture *f = *state;
  start(f, CHANNELS(", quiet_hours = false"), NOON_MS);
  eval(f, "host.send{ to = '13800138000', text = 'hi', key = 'e1' }", YZ_OK);
  run_until(f, NOON_MS + SEC);
  char *s = qs(f, "SELECT topic || ' ' || from_ || ' ' || body FROM heard");
  assert_true(tu_contains(s, "message.sent core "));
  assert_true(tu_contains(s, "\"to\":\"138****8000\""));
  assert_true(tu_contains(s, "\"key\":\"e1\""));
  assert_null(strstr(s, "13800138000"));
  free(s);
}

static void a_reload_with_a_broken_channel_keeps_the_old_config(void **state) {
  fixture *f = *state;
  start(f, CHANNELS(", quiet_hours = false"), NOON_MS);
  tu_write(f->dir, "yizhan.conf.lua",
           "channels = { fake = { type = 'faek' } }\n"
           "plugins = { sender = {} }\n");
  assert_int_equal(yz_host_reload(f->h), YZ_EUSAGE);
  assert_true(tu_contains(f->h->err,
                          "channels.fake: type 'faek' names no "
                          "plugin"));
  /* The channel in force still delivers. */
  eval(f, "host.send{ to = '13800138000', text = 'hi' }", YZ_OK);
  run_until(f, NOON_MS + SEC);
  assert_int_equal(q(f, "SELECT count(*) FROM got"), 1);
}

static void http_requests_are_checked_before_they_start(void **state) {
  fixture *f = *state;
  start(f, CHANNELS(", quiet_hours = false"), NOON_MS);
  const char *r = eval(
      f, "return host.http.request{ url = 'http://127.0.0.1:1/' }", YZ_ERR);
  assert_true(tu_contains(r, "waits for the answer"));
  /* Not from a coroutine of the plugin's own either: its yield would go to
  ** the plugin, not the loop. */
  eval(f,
       "host.after(0, function()\n"
       "  local ok, err = pcall(coroutine.wrap(function()\n"
       "    return host.http.request{ url = 'http://127.0.0.1:1/' } end))\n"
       "  host.kv.put('err', tostring(err))\n"
       "end)",
       YZ_OK);
  run_until(f, NOON_MS + SEC);
  char *s = qs(f, "SELECT value FROM yz_kv WHERE key = 'err'");
  assert_true(tu_contains(s, "a coroutine of the plugin's own"));
  free(s);
}

static void what_plugins_hand_over_is_read_raw(void **state) {
  fixture *f = *state;
  start(f, CHANNELS(", quiet_hours = false"), NOON_MS);
  /* host.send reads its fields raw: a metatable cannot make them up. */
  const char *r = eval(f,
                       "host.send(setmetatable({ to = '13800138000' }, { "
                       "__index = function() return 'made up' end }))",
                       YZ_ERR);
  assert_true(tu_contains(r, "'text' is missing"));
  /* A channel's answer is read raw too: a raising __index in it is no
  ** crash, just the failure it says. */
  eval(f, "host.send{ to = '13800138000', text = 'TRICKY' }", YZ_OK);
  run_until(f, NOON_MS + SEC);
  char *s = qs(f, "SELECT state || ': ' || last_error FROM yz_outbox");
  assert_string_equal(s, "failed: busy");
  free(s);
}

/* ------------------------------------------------- over real HTTP, in-process
 */

/* A host on the real clock with the shipped http channel at the gateway. */
static void start_http(fixture *f, const tu_gateway *g, const char *extra) {
  char config[2048];
  snprintf(config, sizeof config,
           "quiet_hours = false\n"
           "channels = { gw = { type = 'http', url = "
           "'http://127.0.0.1:%d/send', body = { to = '{{to}}', text = "
           "'{{text}}', key = '{{key}}' }, ok_when = { status = 200, json = { "
           "code = 0 } }, id_field = 'msgid', timeout = 1, retry_base = 0.05, "
           "retry_cap = 0.2, max_attempts = 20, daily_cap = false%s } }\n"
           "plugins = { sender = {} }\n",
           g->port, extra);
  f->dir = tu_datadir(config);
  tu_write(f->dir, "plugins/sender.lua",
           "return { name = 'sender', version = '1', access = { send = true "
           "} }\n");
  f->h = tu_host(f->dir);
  assert_int_equal(yz_host_start(f->h), YZ_OK);
  f->h->deliver = 1;
}

/* Runs the loop on the real clock until 'sql' counts 'want' (or 30 s). */
static void loop_until(fixture *f, const char *sql, int64_t want) {
  int64_t end = yz_clock_mono_ms() + 30000;
  while (yz_clock_mono_ms() < end) {
    int64_t wait = yz_host_tick(f->h);
    if (q(f, sql) == want) return;
    yz_http_wait(f->h->http, -1, wait < 0 || wait > 50 ? 50 : (int)wait);
  }
  fail_msg("'%s' did not reach %lld in 30 s", sql, (long long)want);
}

static void the_http_channel_delivers_once_through_faults(void **state) {
  fixture *f = *state;
  const char *args[] = {"--faults",
                        "500=0.2,reset=0.1,garbage=0.1,slow=0.1",
                        "--slow-ms",
                        "100",
                        "--seed",
                        "11",
                        "--fault-limit-per-key",
                        "3",
                        "--reject-prefix",
                        "+8613999",
                        NULL};
  tu_gateway g = tu_gateway_start(args);
  start_http(f, &g, "");
  eval(f,
       "for i = 1, 40 do host.send{ to = tostring(13800000000 + i), text = "
       "'本月请给父母写一封信 ' .. i, key = 'k' .. i } end\n"
       "host.send{ to = '13999000001', text = 'x', key = 'bad' }",
       YZ_OK);
  loop_until(f,
             "SELECT count(*) FROM yz_outbox WHERE state IN ('sent', "
             "'dead')",
             41);
  assert_int_equal(q(f,
                     "SELECT count(*) FROM yz_outbox WHERE state = "
                     "'sent'"),
                   40);
  char *s = qs(f,
               "SELECT state || ' ' || attempts || ' ' || last_error FROM "
               "yz_outbox WHERE key = 'bad'");
  assert_true(tu_contains(s, "dead 1 http: HTTP 400"));
  free(s);
  /* Each key accepted by the gateway exactly once. */
  for (int i = 1; i <= 40; i++) {
    char needle[64];
    snprintf(needle, sizeof needle, "\"key\":\"k%d\"", i);
    int ok = 0;
    char *text = tu_read(g.log);
    for (char *line = text; line && *line;) {
      char *nl = strchr(line, '\n');
      if (nl) *nl = 0;
      if (strstr(line, needle) && (strstr(line, "\"outcome\":\"ok\"") ||
                                   strstr(line, "\"outcome\":\"slow\"")))
        ok++;
      line = nl ? nl + 1 : NULL;
    }
    free(text);
    if (ok != 1) fail_msg("key k%d accepted %d times", i, ok);
  }
  assert_int_equal(tu_gateway_count(&g, "\"key\":\"bad\""), 1);
  /* The gateway's id was kept. */
  s = qs(f, "SELECT gateway_id FROM yz_outbox WHERE key = 'k1'");
  assert_true(tu_contains(s, "gw-"));
  free(s);
  tu_gateway_stop(&g);
}

static void a_reload_mid_request_keeps_the_message(void **state) {
  fixture *f = *state;
  const char *args[] = {"--faults", "timeout=1", "--hang-s", "5", NULL};
  tu_gateway g = tu_gateway_start(args);
  start_http(f, &g, ", retry_base = 60");
  eval(f, "host.send{ to = '13800138000', text = 'hi', key = 'r1' }", YZ_OK);
  loop_until(f, "SELECT count(*) FROM yz_outbox WHERE state = 'sending'", 1);
  while (!yz_http_running(f->h->http)) {
    yz_host_tick(f->h);
    yz_http_wait(f->h->http, -1, 10);
  }
  /* The channel's plugin goes away while its request waits. */
  assert_int_equal(yz_host_reload(f->h), YZ_OK);
  assert_int_equal(yz_http_running(f->h->http), 0);
  yz_host_tick(f->h);
  /* In doubt, not a failed attempt: queued again at once, same key. */
  char *s = qs(f,
               "SELECT state || ' ' || attempts || ' ' || in_doubt || ' ' || "
               "last_error FROM yz_outbox");
  assert_string_equal(s,
                      "queued 0 1 the send was cut short before an answer "
                      "came (in doubt)");
  free(s);
  tu_gateway_stop(&g);
}

static void an_answer_past_the_memory_cap_is_an_error_not_a_crash(
    void **state) {
  fixture *f = *state;
  const char *args[] = {"--pad", "3000000", NULL};
  tu_gateway g = tu_gateway_start(args);
  char config[1024];
  snprintf(config, sizeof config,
           "http_hosts = { sender = { '127.0.0.1:%d' } }\n"
           "plugin_limits = { sender = { memory_mb = 2 } }\n"
           "plugins = { sender = {} }\n",
           g.port);
  f->dir = tu_datadir(config);
  tu_write(f->dir, "plugins/sender.lua",
           "return { name = 'sender', version = '1' }\n");
  f->h = tu_host(f->dir);
  assert_int_equal(yz_host_start(f->h), YZ_OK);
  char code[512];
  snprintf(code, sizeof code,
           "host.after(0, function()\n"
           "  local r, err = host.http.request{ url = "
           "'http://127.0.0.1:%d/send', max_size = 8000000 }\n"
           "  host.kv.put('got', tostring(r) .. ' ' .. tostring(err))\n"
           "end)",
           g.port);
  eval(f, code, YZ_OK);
  int64_t end = yz_clock_mono_ms() + 20000;
  char *s = NULL;
  while (yz_clock_mono_ms() < end) {
    int64_t wait = yz_host_tick(f->h);
    if (tu_int(f->h->store, "SELECT count(*) FROM yz_kv WHERE key = 'got'") ==
        1)
      break;
    yz_http_wait(f->h->http, -1, wait < 0 || wait > 50 ? 50 : (int)wait);
  }
  s = qs(f, "SELECT value FROM yz_kv WHERE key = 'got'");
  assert_true(tu_contains(s, "nil not enough memory"));
  free(s);
  tu_gateway_stop(&g);
}

/* ------------------------------------------ templates, batches, receipts */

/* A channel plugin for template channels. Every call is recorded in
** 'calls' (kind send, batch or receipts; the keys; what it was given). The
** answer follows kv 'force' when set, else the 'note' parameter or the
** text: PAUSE, ALERT, ALERT2, PERMANENT, and for a batch DOWN and RAISE; in a
** batch a key with 'bad' fails for good and one with 'skip' gets no
** result. A channel's table sets the rest: fake_batch (batch_max),
** fake_receipts (receipts_every), fake_window (receipts_window). */
#define TPLCHAN                                                              \
  "return { name = 'tpl', version = '1', owns = { 'calls' },\n"              \
  "  migrations = { 'CREATE TABLE calls (n INTEGER PRIMARY KEY, chan "       \
  "TEXT, kind TEXT, keys TEXT, body TEXT, at INTEGER)' },\n"                 \
  "  setup = function(host)\n"                                               \
  "    local function log(chan, kind, keys, body)\n"                         \
  "      host.db.exec('INSERT INTO calls(chan, kind, keys, body, at) "       \
  "VALUES (?, ?, ?, ?, ?)', chan, kind, keys, host.json.encode(body), "      \
  "host.now_ms())\n"                                                         \
  "    end\n"                                                                \
  "    local function summary(m)\n"                                          \
  "      return { key = m.key, to = m.to, text = m.text, template = "        \
  "m.template, params = m.params, code = m.template_code, list = "           \
  "m.param_list, gateway_id = m.gateway_id, sent = m.sent, in_doubt = "      \
  "m.in_doubt }\n"                                                           \
  "    end\n"                                                                \
  "    local function list(ms)\n"                                            \
  "      local keys, bodies = {}, {}\n"                                      \
  "      for i, m in ipairs(ms) do keys[i] = m.key; bodies[i] = summary(m) " \
  "end\n"                                                                    \
  "      return table.concat(keys, ','), bodies\n"                           \
  "    end\n"                                                                \
  "    local function mode(m)\n"                                             \
  "      local forced = host.kv.get('force')\n"                              \
  "      if forced then return forced end\n"                                 \
  "      return m.params and m.params.note or m.text\n"                      \
  "    end\n"                                                                \
  "    local function one(m)\n"                                              \
  "      local md = mode(m)\n"                                               \
  "      if md == 'PAUSE' then return nil, 'bad key', 'pause' end\n"         \
  "      if md == 'ALERT' then return nil, 'low', { retry_after = 5, alert " \
  "= 'balance low' } end\n"                                                  \
  "      if md == 'ALERT2' then return nil, 'suspended', { alert = "         \
  "'template suspended' } end\n"                                             \
  "      if md == 'PERMANENT' then return nil, 'bad', 'permanent' end\n"     \
  "      return true, 'gw-' .. m.id\n"                                       \
  "    end\n"                                                                \
  "    for name, conf in pairs(host.channels) do\n"                          \
  "      local spec = { name = name, send = function(m)\n"                   \
  "        log(name, 'send', m.key, summary(m))\n"                           \
  "        return one(m)\n"                                                  \
  "      end }\n"                                                            \
  "      if conf.fake_batch then\n"                                          \
  "        spec.batch_max = conf.fake_batch\n"                               \
  "        spec.send_batch = function(ms)\n"                                 \
  "          log(name, 'batch', list(ms))\n"                                 \
  "          local md = mode(ms[1])\n"                                       \
  "          if md == 'DOWN' then return nil, 'down' end\n"                  \
  "          if md == 'RAISE' then error('the batch library broke') end\n"   \
  "          local r = {}\n"                                                 \
  "          for i, m in ipairs(ms) do\n"                                    \
  "            if m.key:find('bad') then r[i] = { nil, 'bad', 'permanent' "  \
  "}\n"                                                                      \
  "            elseif not m.key:find('skip') then r[i] = { true, 'id' .. "   \
  "m.key } end\n"                                                            \
  "          end\n"                                                          \
  "          return r\n"                                                     \
  "        end\n"                                                            \
  "      end\n"                                                              \
  "      if conf.fake_receipts then\n"                                       \
  "        spec.receipts_every = conf.fake_receipts\n"                       \
  "        spec.receipts_window = conf.fake_window\n"                        \
  "        spec.receipts = function(ms) log(name, 'receipts', list(ms)) "    \
  "end\n"                                                                    \
  "      end\n"                                                              \
  "      host.channel(spec)\n"                                               \
  "    end\n"                                                                \
  "  end }\n"

/* Records the core's alerts. */
#define WATCH                                                             \
  "return { name = 'watch', version = '1', owns = { 'alerts' },\n"        \
  "  migrations = { 'CREATE TABLE alerts (kind TEXT, channel TEXT, "      \
  "reason TEXT, from_ TEXT)' },\n"                                        \
  "  setup = function(host)\n"                                            \
  "    host.on('core.alert', function(d, ev)\n"                           \
  "      host.db.exec('INSERT INTO alerts VALUES (?, ?, ?, ?)', d.kind, " \
  "d.channel, d.reason, ev.from)\n"                                       \
  "    end)\n"                                                            \
  "  end }\n"

/* 'ali' sends only templates (letter's parameters in the provider's own
** order); 'plain' takes free text. */
#define TPL_CONFIG(ali, plain)                                               \
  "quiet_hours = false\n"                                                    \
  "templates = {\n"                                                          \
  "  letter = '{{child}}同学本月还没有给父母写信。{{note}}',\n" \
  "  notice = '{{month}}月{{day}}日起放假',\n"                          \
  "}\n"                                                                      \
  "channels = { default = 'ali',\n"                                          \
  "  ali = { type = 'tpl', retry_base = 10, retry_cap = 40, max_attempts = " \
  "3, daily_cap = false, templates = {\n"                                    \
  "    letter = { code = 'SMS_1', params = { 'note', 'child' } }, notice = " \
  "'SMS_2' }" ali                                                            \
  " },\n"                                                                    \
  "  plain = { type = 'tpl', retry_base = 10, retry_cap = 40, "              \
  "max_attempts = 3, daily_cap = false" plain                                \
  " },\n"                                                                    \
  "}\n"                                                                      \
  "plugins = { sender = {}, tpl = {}, watch = {} }\n"

static void start_tpl(fixture *f, const char *config) {
  f->dir = tu_datadir(config);
  tu_write(f->dir, "plugins/tpl.lua", TPLCHAN);
  tu_write(f->dir, "plugins/sender.lua", SENDER);
  tu_write(f->dir, "plugins/watch.lua", WATCH);
  start(f, NULL, NOON_MS);
}

/* Runs code in plugin 'name' (the channel's, for host.receipt). */
static const char *eval_in(fixture *f, const char *name, const char *code,
                           int want) {
  return tu_eval(yz_plugin_find(f->h, name), code, &f->out, want);
}

/* The log lines written so far at level 'level' that contain 'needle'. */
static int log_lines(fixture *f, const char *level, const char *needle) {
  fflush(f->h->log.out);
  char path[4096], lv[32];
  snprintf(path, sizeof path, "%s/log.txt", f->dir);
  snprintf(lv, sizeof lv, "level=%s ", level);
  char *text = tu_read(path);
  int n = 0;
  for (char *line = text; line && *line;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    if (strstr(line, lv) && strstr(line, needle)) n++;
    line = nl ? nl + 1 : NULL;
  }
  free(text);
  return n;
}

static void a_template_message_stores_its_text_template_and_params(
    void **state) {
  fixture *f = *state;
  start_tpl(f, TPL_CONFIG("", ""));
  const char *r = eval(f,
                       "local m = host.send{ to = '13800138000', template = "
                       "'letter', params = { note = '请写信', child = '小明' "
                       "}, key = 't1' }\n"
                       "return m.key, m.state",
                       YZ_OK);
  assert_string_equal(r, "\"t1\"\t\"queued\"");
  char *s = qs(f,
               "SELECT text || '|' || template || '|' || params || '|' || "
               "parts || '|' || channel FROM yz_outbox WHERE key = 't1'");
  assert_string_equal(s,
                      "小明同学本月还没有给父母写信。请写信|letter|"
                      "{\"child\":\"小明\",\"note\":\"请写信\"}|1|ali");
  free(s);
  /* A number is a parameter as text. */
  eval(f,
       "host.send{ to = '13800138000', template = 'notice', params = { "
       "month = 11, day = 2 }, key = 't2' }",
       YZ_OK);
  s = qs(f, "SELECT text || '|' || params FROM yz_outbox WHERE key = 't2'");
  assert_string_equal(s, "11月2日起放假|{\"day\":\"2\",\"month\":\"11\"}");
  free(s);
  /* Parts are counted from the rendered text, not the template's. */
  eval(f,
       "host.send{ to = '13800138000', template = 'letter', params = { "
       "child = ('小'):rep(60), note = '' }, key = 't3' }",
       YZ_OK);
  assert_int_equal(q(f, "SELECT parts FROM yz_outbox WHERE key = 't3'"), 2);
  assert_int_equal(q(f, "SELECT ucs2 FROM yz_outbox WHERE key = 't3'"), 1);
  /* Free text has neither. */
  eval(f, "host.send{ to = '13800138000', text = 'hi', channel = 'plain' }",
       YZ_OK);
  s = qs(f,
         "SELECT coalesce(template, 'none') || coalesce(params, 'none') "
         "FROM yz_outbox WHERE channel = 'plain'");
  assert_string_equal(s, "nonenone");
  free(s);
}

/* Free text with params: the placeholders filled in the core. */
static void free_text_with_params_is_filled_in(void **state) {
  fixture *f = *state;
  start_tpl(f, TPL_CONFIG("", ""));
  eval(f,
       "host.send{ to = '13800138000', text = '{{child}}同学{{n}}次', key "
       "= 'y', channel = 'plain', params = { child = '小明', n = 2 } }",
       YZ_OK);
  char *s = qs(f,
               "SELECT text || '|' || coalesce(params, 'none') FROM yz_outbox "
               "WHERE key = 'y'");
  assert_string_equal(s, "小明同学2次|none");
  free(s);
}

/* A policy passes what it knows; the template takes what it uses. */
static void parameters_a_template_does_not_use_are_left_out(void **state) {
  fixture *f = *state;
  start_tpl(f, TPL_CONFIG("", ""));
  eval(f,
       "host.send{ to = '13800138000', template = 'letter', key = 'x', "
       "params = { child = '小明', note = '好', school = '一小' } }",
       YZ_OK);
  char *s = qs(f, "SELECT params FROM yz_outbox WHERE key = 'x'");
  assert_string_equal(s, "{\"child\":\"小明\",\"note\":\"好\"}");
  free(s);
}

static void a_bad_template_send_is_refused_and_writes_nothing(void **state) {
  fixture *f = *state;
  start_tpl(f, TPL_CONFIG("", ""));
  struct {
    const char *code, *want;
  } cases[] = {
      {"host.send{ to = '13800138000', template = 'letter', params = { "
       "child = '小明' } }",
       "host.send: template 'letter' needs parameter 'note' (its text: "
       "{{child}}同学"},
      {"host.send{ to = '13800138000', template = 'letter', text = 'hi', "
       "params = { child = '小明', note = '' } }",
       "host.send: give text or template, not both"},
      {"host.send{ to = '13800138000', text = '{{kid}}好', channel = "
       "'plain', params = { child = '小明' } }",
       "template: no value for {{kid}}"},
      {"host.send{ to = '13800138000', template = 'letter', params = "
       "'child=小明' }",
       "host.send: params must be a table, got string"},
      {"host.send{ to = '13800138000', template = 'lettre', params = { "
       "child = '小明', note = '' } }",
       "host.send: unknown template 'lettre' (the config's templates: "
       "letter, notice)"},
      {"host.send{ to = '13800138000', template = 'letter', params = { "
       "child = {}, note = '' } }",
       "host.send: params.child must be a string or a number, got table"},
      {"host.send{ to = '13800138000', template = 'letter' }",
       "host.send: template 'letter' needs parameter 'child'"},
      {"host.send{ to = '13800138000', template = 'letter', params = { "
       "child = '{{note}}', note = '' } }",
       "parameter 'child' must be UTF-8 text without '{{'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *r = eval(f, cases[i].code, YZ_ERR);
    if (!tu_contains(r, cases[i].want)) fail_msg("case %zu", i);
  }
  assert_int_equal(q(f, "SELECT count(*) FROM yz_outbox"), 0);
}

static void free_text_to_a_template_channel_is_refused(void **state) {
  fixture *f = *state;
  start_tpl(f, TPL_CONFIG("", ""));
  const char *r =
      eval(f, "host.send{ to = '13800138000', text = 'hi' }", YZ_ERR);
  assert_true(tu_contains(r,
                          "host.send: channel 'ali' sends only templates its "
                          "provider approved: give template = and params = "
                          "instead of text (templates: "));
  /* The map's names, in no particular order. */
  assert_true(strstr(r, "(templates: letter, notice)") ||
              strstr(r, "(templates: notice, letter)"));
  assert_int_equal(q(f, "SELECT count(*) FROM yz_outbox"), 0);
  /* A template to a channel without a map goes as its rendered text. */
  eval(f,
       "host.send{ to = '13800138000', template = 'letter', params = { "
       "child = '小明', note = '' }, channel = 'plain', key = 'p1' }",
       YZ_OK);
  run_until(f, NOON_MS + SEC);
  char *s = qs(f, "SELECT chan || ' ' || kind || ' ' || body FROM calls");
  assert_string_equal(s,
                      "plain send {\"in_doubt\":false,\"key\":\"p1\","
                      "\"params\":{\"child\":\"小明\",\"note\":\"\"},"
                      "\"template\":\"letter\",\"text\":"
                      "\"小明同学本月还没有给父母写信。\",\"to\":"
                      "\"+8613800138000\"}");
  free(s);
  s = qs(f, "SELECT state FROM yz_outbox WHERE key = 'p1'");
  assert_string_equal(s, "sent");
  free(s);
}

static void a_mapped_channel_gets_the_code_and_params_in_its_order(
    void **state) {
  fixture *f = *state;
  start_tpl(f, TPL_CONFIG("", ""));
  eval(f,
       "host.send{ to = '13800138000', template = 'letter', params = { "
       "child = '小明', note = '好' }, key = 'm1' }\n"
       "host.send{ to = '13800138000', template = 'notice', params = { "
       "day = 2, month = 11 }, key = 'm2' }",
       YZ_OK);
  run_until(f, NOON_MS + SEC);
  char *s = qs(f, "SELECT body FROM calls WHERE keys = 'm1'");
  assert_true(tu_contains(s,
                          "\"code\":\"SMS_1\",\"in_doubt\":false,\"key\":"
                          "\"m1\",\"list\":[\"好\",\"小明\"],\"params\":{"
                          "\"child\":\"小明\",\"note\":\"好\"},"
                          "\"template\":\"letter\""));
  free(s);
  /* A map entry given as a string: the local text's order. */
  s = qs(f, "SELECT body FROM calls WHERE keys = 'm2'");
  assert_true(tu_contains(s,
                          "\"code\":\"SMS_2\",\"in_doubt\":false,\"key\":"
                          "\"m2\",\"list\":[\"11\",\"2\"],\"params\":{"
                          "\"day\":\"2\",\"month\":\"11\"}"));
  free(s);
  assert_int_equal(q(f, "SELECT count(*) FROM yz_outbox WHERE state = 'sent'"),
                   2);
}

static char *calls(fixture *f, const char *kind);

/* Queued messages that no longer fit the channel's map (the config changed
** since): the core makes them dead with why, and no channel sees them. */
static void messages_that_no_longer_fit_the_map_are_refused(void **state) {
  fixture *f = *state;
  start_tpl(f, TPL_CONFIG("", ""));
  eval(f,
       "for i, k in ipairs({ 'x1', 'x2', 'x3', 'x4' }) do host.send{ to = "
       "'1380013800' .. i, template = 'letter', params = { child = '小明', "
       "note = '好' }, key = k } end",
       YZ_OK);
  /* As if the config had changed after they were queued. */
  yz_store_exec(f->h->store, NULL,
                "UPDATE yz_outbox SET params = '{\"child\":\"小明\"}' "
                "WHERE key = 'x1'",
                NULL, 0);
  yz_store_exec(f->h->store, NULL,
                "UPDATE yz_outbox SET template = 'gone' WHERE key = 'x2'", NULL,
                0);
  yz_store_exec(f->h->store, NULL,
                "UPDATE yz_outbox SET template = NULL, params = NULL WHERE "
                "key = 'x3'",
                NULL, 0);
  run_until(f, NOON_MS + SEC);
  char *s = qs(f,
               "SELECT group_concat(key || ' ' || state || ' ' || attempts || "
               "' ' || coalesce(last_error, '-'), ' | ') FROM (SELECT * FROM "
               "yz_outbox ORDER BY id)");
  assert_string_equal(
      s,
      "x1 dead 1 the message has no parameter 'note', which channel 'ali' "
      "now sends for template 'letter' (the config changed after it was "
      "queued) | x2 dead 1 template 'gone' is no longer among the templates "
      "of channel 'ali' (the config changed after the message was queued) | "
      "x3 dead 1 channel 'ali' now sends only templates, and this message is "
      "free text (the config changed after it was queued) | x4 sent 1 -");
  free(s);
  s = calls(f, "%");
  assert_string_equal(s, "send x4");
  free(s);
}

/* n letters to channel ali with keys prefix1..prefixn and one note. */
static void send_letters(fixture *f, const char *prefix, int n,
                         const char *note) {
  char code[512];
  snprintf(code, sizeof code,
           "for i = 1, %d do host.send{ to = '1380013' .. (8000 + i), "
           "template = 'letter', params = { child = '小明', note = '%s' }, "
           "key = '%s' .. i } end",
           n, note, prefix);
  eval(f, code, YZ_OK);
}

/* The calls' kinds and keys in order: "batch b1,b2,b3 | send b7". */
static char *calls(fixture *f, const char *kind) {
  char sql[512];
  snprintf(sql, sizeof sql,
           "SELECT coalesce(group_concat(kind || ' ' || keys, ' | '), '') "
           "FROM (SELECT * FROM calls WHERE kind LIKE '%s' ORDER BY n)",
           kind);
  return qs(f, sql);
}

static void batches_share_a_template_and_params_up_to_batch_max(void **state) {
  fixture *f = *state;
  start_tpl(f, TPL_CONFIG(", fake_batch = 3", ""));
  send_letters(f, "b", 7, "好");
  run_until(f, NOON_MS + SEC);
  /* 3, 3, and the one left over through send, not send_batch. */
  char *s = calls(f, "%");
  assert_string_equal(s, "batch b1,b2,b3 | batch b4,b5,b6 | send b7");
  free(s);
  s = qs(f,
         "SELECT group_concat(key || '=' || state || ':' || gateway_id || "
         "':' || attempts, ' ') FROM (SELECT * FROM yz_outbox ORDER BY id)");
  assert_string_equal(s,
                      "b1=sent:idb1:1 b2=sent:idb2:1 b3=sent:idb3:1 "
                      "b4=sent:idb4:1 b5=sent:idb5:1 b6=sent:idb6:1 "
                      "b7=sent:gw-7:1");
  free(s);
  /* What send_batch got: each message with the code and list. */
  s = qs(f, "SELECT body FROM calls WHERE keys = 'b1,b2,b3'");
  assert_true(tu_contains(s, "\"code\":\"SMS_1\""));
  assert_true(tu_contains(s, "\"key\":\"b3\",\"list\":[\"好\",\"小明\"]"));
  assert_true(tu_contains(s, "\"to\":\"+8613800138002\""));
  free(s);
}

static void different_params_and_messages_in_doubt_are_not_batched(
    void **state) {
  fixture *f = *state;
  start_tpl(f, TPL_CONFIG(", fake_batch = 3", ""));
  eval(f,
       "for i = 1, 4 do host.send{ to = '1380013800' .. i, template = "
       "'letter', params = { child = '小明', note = i % 2 == 1 and 'x' or "
       "'y' }, key = 'a' .. i } end\n"
       "host.send{ to = '13800138000', template = 'notice', params = { "
       "month = 1, day = 2 }, key = 'n1' }\n"
       "for i = 1, 3 do host.send{ to = '1380013801' .. i, template = "
       "'letter', params = { child = '小红', note = 'z' }, key = 'd' .. i } "
       "end",
       YZ_OK);
  /* d2 was claimed before a crash: in doubt, it goes alone. */
  yz_store_exec(f->h->store, NULL,
                "UPDATE yz_outbox SET in_doubt = 1 WHERE key = 'd2'", NULL, 0);
  run_until(f, NOON_MS + SEC);
  char *s = calls(f, "%");
  assert_string_equal(s,
                      "batch a1,a3 | batch a2,a4 | send n1 | batch d1,d3 | "
                      "send d2");
  free(s);
  s = qs(f, "SELECT body FROM calls WHERE keys = 'd2'");
  assert_true(tu_contains(s, "\"in_doubt\":true"));
  free(s);
  assert_int_equal(q(f, "SELECT count(*) FROM yz_outbox WHERE state = 'sent'"),
                   8);
}

static void each_result_of_a_batch_lands_on_its_message(void **state) {
  fixture *f = *state;
  start_tpl(f, TPL_CONFIG(", fake_batch = 5", ""));
  eval(f,
       "for i, k in ipairs({ 'p1', 'p2bad', 'p3', 'p4skip' }) do host.send{ "
       "to = '1380013800' .. i, template = 'letter', params = { child = "
       "'小明', note = '' }, key = k } end",
       YZ_OK);
  run_until(f, NOON_MS + 1);
  char *s = calls(f, "%");
  assert_string_equal(s, "batch p1,p2bad,p3,p4skip");
  free(s);
  s = qs(f,
         "SELECT group_concat(key || '=' || state || ':' || attempts || ':' "
         "|| coalesce(gateway_id, '-') || ':' || coalesce(last_error, '-'), "
         "' | ') FROM (SELECT * FROM yz_outbox ORDER BY id)");
  assert_string_equal(s,
                      "p1=sent:1:idp1:- | p2bad=dead:1:-:bad | "
                      "p3=sent:1:idp3:- | p4skip=failed:1:-:the channel's "
                      "batch gave no result for this message");
  free(s);
}

static void a_failed_batch_fails_each_message_for_now(void **state) {
  fixture *f = *state;
  start_tpl(f, TPL_CONFIG(", fake_batch = 5", ""));
  send_letters(f, "down", 3, "DOWN");
  send_letters(f, "raise", 2, "RAISE");
  run_until(f, NOON_MS + 1);
  char *s = calls(f, "%");
  assert_string_equal(s, "batch down1,down2,down3 | batch raise1,raise2");
  free(s);
  s = qs(f,
         "SELECT group_concat(state || ':' || attempts || ':' || last_error, "
         "' | ') FROM (SELECT * FROM yz_outbox WHERE key LIKE 'down%' ORDER "
         "BY id)");
  assert_string_equal(s, "failed:1:down | failed:1:down | failed:1:down");
  free(s);
  assert_int_equal(q(f,
                     "SELECT count(*) FROM yz_outbox WHERE key LIKE 'raise%' "
                     "AND state = 'failed' AND attempts = 1 AND last_error "
                     "LIKE '%the batch library broke%'"),
                   2);
  /* Transient: each waits its backoff (10 s +-20%). */
  assert_int_equal(q(f,
                     "SELECT count(*) FROM yz_outbox WHERE next_at BETWEEN "
                     "1793592008000 AND 1793592012001"),
                   5);
  /* A gateway's trouble is not the plugin's fault. */
  assert_int_equal(yz_plugin_find(f->h, "tpl")->state, YZ_PS_OK);
  /* Retried, each goes alone, even when due together: an earlier attempt
  ** may have reached the provider unanswered. */
  yz_store_exec(f->h->store, NULL,
                "UPDATE yz_outbox SET next_at = 1793592010000", NULL, 0);
  run_until(f, NOON_MS + 10 * SEC + 1);
  s = calls(f, "send");
  assert_string_equal(s,
                      "send down1 | send down2 | send down3 | send raise1 | "
                      "send raise2");
  free(s);
  assert_int_equal(q(f,
                     "SELECT count(*) FROM yz_outbox WHERE state = 'sent' "
                     "AND attempts = 2"),
                   5);
}

static void a_paused_channel_holds_its_messages_until_new_rules(void **state) {
  fixture *f = *state;
  start_tpl(f, TPL_CONFIG("", ""));
  /* A first answer: the channel works, messages go several at a time. */
  eval(f,
       "host.send{ to = '13800138009', text = 'hi', channel = 'plain', key = "
       "'k0' }",
       YZ_OK);
  run_until(f, NOON_MS);
  assert_int_equal(q(f, "SELECT count(*) FROM calls"), 1);
  yz_store_exec(f->h->store, NULL, "DELETE FROM yz_outbox", NULL, 0);
  /* Then the credentials are refused: two claimed in one turn, both
  ** answer 'pause'. */
  eval_in(f, "tpl", "host.kv.put('force', 'PAUSE')", YZ_OK);
  eval(f,
       "host.send{ to = '13800138000', text = 'hi', channel = 'plain', key = "
       "'h1' }\n"
       "host.send{ to = '13800138001', text = 'hi', channel = 'plain', key = "
       "'h2' }",
       YZ_OK);
  run_until(f, NOON_MS + 1);
  assert_int_equal(q(f, "SELECT count(*) FROM calls"), 3);
  /* Queued again, not counted as an attempt, not in doubt. */
  char *s = qs(f,
               "SELECT group_concat(state || ' ' || attempts || ' ' || "
               "in_doubt || ' ' || last_error, ', ') FROM yz_outbox");
  assert_string_equal(s, "queued 0 0 bad key, queued 0 0 bad key");
  free(s);
  const char *why = yz_outbox_held(f->h->outbox, "plain");
  assert_non_null(why);
  assert_true(tu_contains(why, "bad key"));
  assert_null(yz_outbox_held(f->h->outbox, "ali"));
  /* Nothing more is claimed for it, however long it waits. */
  eval(f,
       "host.send{ to = '13800138002', text = 'hi', channel = 'plain', key = "
       "'h3' }",
       YZ_OK);
  assert_int_equal(yz_outbox_next_wake(f->h->outbox), -1);
  run_until(f, NOON_MS + 2 * 3600 * SEC);
  assert_int_equal(q(f, "SELECT count(*) FROM calls"), 3);
  assert_int_equal(q(f,
                     "SELECT count(*) FROM yz_outbox WHERE state = 'queued' "
                     "AND attempts = 0"),
                   3);
  /* Said once: one core.alert, one audit entry, one ERROR line. */
  s = qs(f,
         "SELECT group_concat(kind || ' ' || channel || ' ' || from_, ' | ') "
         "FROM alerts");
  assert_string_equal(s, "channel.paused plain core");
  free(s);
  s = qs(f, "SELECT reason FROM alerts");
  assert_true(tu_contains(s, "paused: bad key"));
  free(s);
  assert_int_equal(q(f,
                     "SELECT count(*) FROM yz_audit WHERE action = "
                     "'channel.paused'"),
                   1);
  assert_int_equal(log_lines(f, "error", ""), 1);
  assert_int_equal(log_lines(f, "error", "channel 'plain'"), 1);
  /* The other channel still delivers. */
  eval_in(f, "tpl", "host.kv.put('force', nil)", YZ_OK);
  eval(f,
       "host.send{ to = '13800138000', template = 'notice', params = { "
       "month = 1, day = 2 }, key = 'a1' }",
       YZ_OK);
  run_until(f, NOON_MS + 2 * 3600 * SEC + SEC);
  s = qs(f, "SELECT state FROM yz_outbox WHERE key = 'a1'");
  assert_string_equal(s, "sent");
  free(s);
  assert_int_equal(q(f, "SELECT count(*) FROM calls WHERE chan = 'plain'"), 3);
  /* New rules (a reload) release it: both go, each one attempt. */
  yz_deliver_started(f->h, 1);
  assert_null(yz_outbox_held(f->h->outbox, "plain"));
  assert_true(yz_outbox_next_wake(f->h->outbox) >= 0);
  run_until(f, NOON_MS + 2 * 3600 * SEC + 2 * SEC);
  s = qs(f,
         "SELECT group_concat(key || ' ' || state || ' ' || attempts, ', ') "
         "FROM (SELECT * FROM yz_outbox WHERE channel = 'plain' ORDER BY "
         "id)");
  assert_string_equal(s, "h1 sent 1, h2 sent 1, h3 sent 1");
  free(s);
  assert_int_equal(log_lines(f, "error", ""), 1);
}

static void an_alert_is_raised_once_an_hour(void **state) {
  fixture *f = *state;
  start_tpl(f, TPL_CONFIG("", ""));
  eval(f,
       "for i = 1, 5 do host.send{ to = '1380013800' .. i, text = 'ALERT', "
       "channel = 'plain', key = 'al' .. i } end",
       YZ_OK);
  run_until(f, NOON_MS + 1);
  /* Failed as it says: Retry-After 5 s exactly. */
  assert_int_equal(q(f,
                     "SELECT count(*) FROM yz_outbox WHERE state = 'failed' "
                     "AND attempts = 1 AND last_error = 'low' AND next_at = "
                     "1793592005000"),
                   5);
  char *s = qs(f,
               "SELECT group_concat(kind || ' ' || channel || ' ' || reason, "
               "' | ') FROM alerts");
  assert_string_equal(s, "channel.alert plain balance low");
  free(s);
  /* Two retries each within the hour: still one alert. */
  run_until(f, NOON_MS + 60 * SEC);
  assert_int_equal(q(f, "SELECT count(*) FROM calls"), 15);
  assert_int_equal(q(f, "SELECT count(*) FROM alerts"), 1);
  assert_int_equal(log_lines(f, "error", "balance low"), 1);
  /* An hour on, it is said again. */
  run_until(f, NOON_MS + 3601 * SEC);
  eval(f,
       "host.send{ to = '13800138000', text = 'ALERT', channel = 'plain', "
       "key = 'al6' }",
       YZ_OK);
  run_until(f, NOON_MS + 3602 * SEC);
  assert_int_equal(q(f, "SELECT count(*) FROM alerts"), 2);
  assert_int_equal(
      q(f, "SELECT count(*) FROM yz_audit WHERE action = 'channel.alert'"), 2);
}

/* n free-text messages to 'plain' keyed prefix01.., to distinct numbers. */
static void send_plain(fixture *f, const char *prefix, int n) {
  char code[512];
  snprintf(code, sizeof code,
           "for i = 1, %d do host.send{ to = '1380013' .. (8000 + i), text = "
           "'hi', channel = 'plain', key = string.format('%s%%02d', i) } end",
           n, prefix);
  eval(f, code, YZ_OK);
}

static void receipts_are_asked_for_and_recorded(void **state) {
  fixture *f = *state;
  start_tpl(f, TPL_CONFIG("", ", fake_receipts = 10"));
  send_plain(f, "r", 3);
  run_until(f, NOON_MS + 10 * SEC - 1);
  assert_int_equal(q(f, "SELECT count(*) FROM calls WHERE kind = 'send'"), 3);
  /* Not before receipts_every has passed. */
  assert_int_equal(q(f, "SELECT count(*) FROM calls WHERE kind = 'receipts'"),
                   0);
  run_until(f, NOON_MS + 10 * SEC + 1);
  char *s = calls(f, "receipts");
  assert_string_equal(s, "receipts r01,r02,r03");
  free(s);
  s = qs(f, "SELECT body FROM calls WHERE kind = 'receipts'");
  assert_true(tu_contains(s,
                          "{\"gateway_id\":\"gw-1\",\"in_doubt\":false,"
                          "\"key\":\"r01\",\"sent\":1793592000,\"text\":"
                          "\"hi\",\"to\":\"+8613800138001\"}"));
  free(s);
  assert_int_equal(q(f, "SELECT at FROM calls WHERE kind = 'receipts'"),
                   NOON_MS + 10 * SEC);
  run_until(f, NOON_MS + 20 * SEC - 1);
  assert_int_equal(q(f, "SELECT count(*) FROM calls WHERE kind = 'receipts'"),
                   1);
  run_until(f, NOON_MS + 20 * SEC + 1);
  assert_int_equal(q(f, "SELECT count(*) FROM calls WHERE kind = 'receipts'"),
                   2);
  /* The channel's plugin reports what the provider said. */
  const char *r = eval_in(f, "tpl",
                          "return host.receipt('r01', true), "
                          "host.receipt('r02', false, 'UNDELIV'), "
                          "host.receipt{ gateway_id = 'gw-3', delivered = "
                          "true }",
                          YZ_OK);
  assert_string_equal(r, "true\ttrue\ttrue");
  r = eval_in(f, "tpl", "return host.receipt('nope', true)", YZ_OK);
  assert_string_equal(r, "false\t\"no message with key 'nope'\"");
  r = eval_in(f, "tpl",
              "return host.receipt{ gateway_id = 'gw-99', delivered = true }",
              YZ_OK);
  assert_string_equal(r, "false\t\"no message with gateway id 'gw-99'\"");
  run_until(f, NOON_MS + 21 * SEC);
  s = qs(f,
         "SELECT group_concat(key || ' ' || state || ' ' || "
         "coalesce(last_error, '-'), ', ') FROM (SELECT * FROM yz_outbox "
         "ORDER BY id)");
  assert_string_equal(s, "r01 delivered -, r02 dead UNDELIV, r03 delivered -");
  free(s);
  assert_int_equal(q(f,
                     "SELECT count(*) FROM yz_outbox WHERE state = "
                     "'delivered' AND delivered_at = 1793592020001"),
                   2);
  /* A receipt applies to a sent message only. */
  r = eval_in(f, "tpl", "return host.receipt('r02', true)", YZ_OK);
  assert_string_equal(r,
                      "false\t\"the message is not sent (no receipt "
                      "applies)\"");
  /* Nothing waits for a receipt now: no more polls. */
  run_until(f, NOON_MS + 120 * SEC);
  assert_int_equal(q(f, "SELECT count(*) FROM calls WHERE kind = 'receipts'"),
                   2);
}

static void receipts_are_asked_fifty_at_a_time_least_recent_first(
    void **state) {
  fixture *f = *state;
  start_tpl(f, TPL_CONFIG("", ", fake_receipts = 10"));
  send_plain(f, "k", 60);
  run_until(f, NOON_MS + 10 * SEC + 1);
  assert_int_equal(q(f, "SELECT count(*) FROM yz_outbox WHERE state = 'sent'"),
                   60);
  char want[1024];
  size_t o = 0;
  for (int i = 1; i <= 50; i++)
    o += (size_t)snprintf(want + o, sizeof want - o, "%sk%02d",
                          i > 1 ? "," : "", i);
  char *s = qs(f, "SELECT keys FROM calls WHERE kind = 'receipts'");
  assert_string_equal(s, want);
  free(s);
  /* The ten not yet asked about first, then the oldest asked. */
  run_until(f, NOON_MS + 20 * SEC + 1);
  o = 0;
  for (int i = 51; i <= 60; i++)
    o += (size_t)snprintf(want + o, sizeof want - o, "k%02d,", i);
  for (int i = 1; i <= 40; i++)
    o += (size_t)snprintf(want + o, sizeof want - o, "%sk%02d",
                          i > 1 ? "," : "", i);
  s = qs(f,
         "SELECT keys FROM calls WHERE kind = 'receipts' ORDER BY n DESC "
         "LIMIT 1");
  assert_string_equal(s, want);
  free(s);
}

static void receipts_are_not_asked_for_past_the_window(void **state) {
  fixture *f = *state;
  start_tpl(f, TPL_CONFIG("", ", fake_receipts = 10, fake_window = 60"));
  send_plain(f, "o", 1);
  run_until(f, NOON_MS + 65 * SEC);
  /* At 10, 20, ..., 60 s: within the window. */
  assert_int_equal(q(f, "SELECT count(*) FROM calls WHERE kind = 'receipts'"),
                   6);
  send_plain(f, "n", 1);
  run_until(f, NOON_MS + 300 * SEC);
  assert_int_equal(q(f,
                     "SELECT count(*) FROM calls WHERE kind = 'receipts' "
                     "AND keys LIKE '%o01%' AND at > 1793592060000"),
                   0);
  /* The newer one is asked about, alone. */
  char *s = qs(f,
               "SELECT keys FROM calls WHERE kind = 'receipts' AND at > "
               "1793592060000 ORDER BY n LIMIT 1");
  assert_string_equal(s, "n01");
  free(s);
}

static void poll_now_asks_for_receipts_at_once(void **state) {
  fixture *f = *state;
  start_tpl(f, TPL_CONFIG("", ", fake_receipts = 600"));
  send_plain(f, "q", 2);
  run_until(f, NOON_MS + 30 * SEC);
  /* The first poll, at the first turn, found nothing sent yet. */
  assert_int_equal(q(f, "SELECT count(*) FROM calls WHERE kind = 'receipts'"),
                   0);
  assert_int_equal(yz_deliver_poll_now(f->h), 1);
  yz_host_tick(f->h); /* no time passes */
  assert_int_equal(q(f, "SELECT count(*) FROM calls WHERE kind = 'receipts'"),
                   1);
  char *s = qs(f,
               "SELECT keys || ' ' || at FROM calls WHERE kind = "
               "'receipts'");
  assert_string_equal(s, "q01,q02 1793592030000");
  free(s);
}

/* Until a channel has answered, one request at a time: refused
** credentials cost one request, and the rest wait untouched. */
static void refused_credentials_cost_one_request(void **state) {
  fixture *f = *state;
  start_tpl(f, TPL_CONFIG("", ""));
  eval_in(f, "tpl", "host.kv.put('force', 'PAUSE')", YZ_OK);
  send_plain(f, "c", 3);
  run_until(f, NOON_MS + 60 * SEC);
  assert_int_equal(q(f, "SELECT count(*) FROM calls"), 1);
  char *s = qs(f,
               "SELECT group_concat(key || ' ' || state || ' ' || attempts || "
               "' ' || coalesce(last_error, '-'), ', ') FROM (SELECT * FROM "
               "yz_outbox ORDER BY id)");
  assert_string_equal(s,
                      "c01 queued 0 bad key, c02 queued 0 -, c03 queued 0 -");
  free(s);
  assert_non_null(yz_outbox_held(f->h->outbox, "plain"));
  assert_int_equal(q(f, "SELECT count(*) FROM alerts"), 1);
}

/* "Once an hour per text": two alerts that take turns are each said once,
** not at every message. */
static void alerts_that_take_turns_are_each_said_once_an_hour(void **state) {
  fixture *f = *state;
  start_tpl(f, TPL_CONFIG("", ""));
  eval(f,
       "for i = 1, 6 do host.send{ to = '1380013800' .. i, text = i % 2 == 1 "
       "and 'ALERT' or 'ALERT2', channel = 'plain', key = 'al' .. i } end",
       YZ_OK);
  run_until(f, NOON_MS + 1);
  assert_int_equal(q(f, "SELECT count(*) FROM calls"), 6);
  char *s = qs(f,
               "SELECT group_concat(reason, ' | ') FROM (SELECT DISTINCT "
               "reason FROM alerts ORDER BY reason)");
  assert_string_equal(s, "balance low | template suspended");
  free(s);
  assert_int_equal(q(f, "SELECT count(*) FROM alerts"), 2);
}

/* A gateway id is the provider's: two providers may use the same one. A
** receipt by gateway id finds the message of a channel its plugin
** delivers. */
static void a_receipt_by_gateway_id_finds_its_own_channels_message(
    void **state) {
  fixture *f = *state;
  f->dir = tu_datadir(
      "quiet_hours = false\n"
      "channels = { default = 'plain', plain = { type = 'tpl' }, fake = { "
      "type = 'fake' } }\n"
      "plugins = { sender = {}, tpl = {}, fake = {}, watch = {} }\n");
  tu_write(f->dir, "plugins/tpl.lua", TPLCHAN);
  tu_write(f->dir, "plugins/fake.lua", FAKE);
  tu_write(f->dir, "plugins/sender.lua", SENDER);
  tu_write(f->dir, "plugins/watch.lua", WATCH);
  start(f, NULL, NOON_MS);
  eval(f,
       "host.send{ to = '13800138000', text = 'hi', channel = 'plain', key = "
       "'mine' }\n"
       "host.send{ to = '13800138000', text = 'hi', channel = 'fake', key = "
       "'theirs' }",
       YZ_OK);
  run_until(f, NOON_MS + SEC);
  assert_int_equal(q(f, "SELECT count(*) FROM yz_outbox WHERE state = 'sent'"),
                   2);
  yz_store_exec(f->h->store, NULL, "UPDATE yz_outbox SET gateway_id = 'G1'",
                NULL, 0);
  const char *r = eval_in(
      f, "tpl", "return host.receipt{ gateway_id = 'G1', delivered = true }",
      YZ_OK);
  assert_string_equal(r, "true");
  run_until(f, NOON_MS + 2 * SEC);
  char *s = qs(f,
               "SELECT group_concat(key || ' ' || state, ', ') FROM (SELECT * "
               "FROM yz_outbox ORDER BY id)");
  assert_string_equal(s, "mine delivered, theirs sent");
  free(s);
}

static void awaiting_and_key_of_find_sent_messages(void **state) {
  fixture *f = *state;
  start_tpl(f, TPL_CONFIG("", ""));
  send_plain(f, "p", 3);
  eval(f,
       "host.send{ to = '13800138000', text = 'PERMANENT', channel = "
       "'plain', key = 'dead' }\n"
       "host.send{ to = '13800138000', template = 'notice', params = { "
       "month = 1, day = 2 }, key = 'other' }",
       YZ_OK);
  run_until(f, NOON_MS + SEC);
  yz_outbox *ob = f->h->outbox;
  yz_msg **m = NULL;
  int n = yz_outbox_awaiting(ob, "plain", 2, 3600 * SEC, &m);
  assert_int_equal(n, 2);
  assert_string_equal(m[0]->key, "p01");
  assert_string_equal(m[1]->key, "p02");
  assert_string_equal(m[0]->state, "sent");
  assert_string_equal(m[1]->gateway_id, "gw-2");
  for (int i = 0; i < n; i++) yz_msg_free(m[i]);
  free(m);
  /* Marked asked about: the one not yet asked comes first next time. */
  assert_int_equal(q(f, "SELECT polled_at FROM yz_outbox WHERE key = 'p01'"),
                   NOON_MS + SEC);
  yz_clock_advance(&f->h->clock, SEC);
  n = yz_outbox_awaiting(ob, "plain", 10, 3600 * SEC, &m);
  assert_int_equal(n, 3);
  assert_string_equal(m[0]->key, "p03");
  assert_string_equal(m[1]->key, "p01");
  assert_string_equal(m[2]->key, "p02");
  for (int i = 0; i < n; i++) yz_msg_free(m[i]);
  free(m);
  /* None for max 0, another channel's name, or past the window. */
  yz_msg *sentinel = NULL;
  m = &sentinel; /* must be overwritten with NULL */
  assert_int_equal(yz_outbox_awaiting(ob, "plain", 0, 3600 * SEC, &m), 0);
  assert_null(m);
  assert_int_equal(yz_outbox_awaiting(ob, "nope", 10, 3600 * SEC, &m), 0);
  assert_null(m);
  yz_clock_advance(&f->h->clock, 2 * 3600 * SEC);
  assert_int_equal(yz_outbox_awaiting(ob, "plain", 10, 3600 * SEC, &m), 0);
  assert_null(m);
  n = yz_outbox_awaiting(ob, "ali", 10, 3 * 3600 * SEC, &m);
  assert_int_equal(n, 1);
  assert_string_equal(m[0]->key, "other");
  yz_msg_free(m[0]);
  free(m);
  /* A gateway id names the key, within a channel or any. */
  char key[64] = "";
  assert_int_equal(yz_outbox_key_of(ob, "plain", "gw-2", key, sizeof key),
                   YZ_OK);
  assert_string_equal(key, "p02");
  key[0] = 0;
  assert_int_equal(yz_outbox_key_of(ob, NULL, "gw-5", key, sizeof key), YZ_OK);
  assert_string_equal(key, "other");
  assert_int_equal(yz_outbox_key_of(ob, "plain", "gw-5", key, sizeof key),
                   YZ_ENOTFOUND);
  assert_int_equal(yz_outbox_key_of(ob, NULL, "gw-99", key, sizeof key),
                   YZ_ENOTFOUND);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(a_key_sends_once, setup, teardown),
      cmocka_unit_test_setup_teardown(bad_input_is_refused_and_writes_nothing,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(transient_failures_back_off_then_die,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(permanent_failures_die_at_once, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(messages_in_doubt_go_again_with_their_key,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(quiet_hours_hold_messages_until_morning,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(quiet_hours_can_be_set_per_channel, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(a_daily_cap_holds_the_rest_until_tomorrow,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(the_rate_limit_spaces_messages, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(jobs_send_and_the_message_knows_its_job,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(events_reach_every_listener_as_copies,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(the_core_announces_sent_messages, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(
          http_requests_are_checked_before_they_start, setup, teardown),
      cmocka_unit_test_setup_teardown(
          a_reload_with_a_broken_channel_keeps_the_old_config, setup, teardown),
      cmocka_unit_test_setup_teardown(what_plugins_hand_over_is_read_raw, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(
          the_http_channel_delivers_once_through_faults, setup, teardown),
      cmocka_unit_test_setup_teardown(
          an_answer_past_the_memory_cap_is_an_error_not_a_crash, setup,
          teardown),
      cmocka_unit_test_setup_teardown(a_reload_mid_request_keeps_the_message,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(
          a_template_message_stores_its_text_template_and_params, setup,
          teardown),
      cmocka_unit_test_setup_teardown(
          a_bad_template_send_is_refused_and_writes_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(
          parameters_a_template_does_not_use_are_left_out, setup, teardown),
      cmocka_unit_test_setup_teardown(free_text_with_params_is_filled_in, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(
          free_text_to_a_template_channel_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(
          a_mapped_channel_gets_the_code_and_params_in_its_order, setup,
          teardown),
      cmocka_unit_test_setup_teardown(
          messages_that_no_longer_fit_the_map_are_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(
          batches_share_a_template_and_params_up_to_batch_max, setup, teardown),
      cmocka_unit_test_setup_teardown(
          different_params_and_messages_in_doubt_are_not_batched, setup,
          teardown),
      cmocka_unit_test_setup_teardown(
          each_result_of_a_batch_lands_on_its_message, setup, teardown),
      cmocka_unit_test_setup_teardown(a_failed_batch_fails_each_message_for_now,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(
          a_paused_channel_holds_its_messages_until_new_rules, setup, teardown),
      cmocka_unit_test_setup_teardown(an_alert_is_raised_once_an_hour, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(receipts_are_asked_for_and_recorded,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(
          receipts_are_asked_fifty_at_a_time_least_recent_first, setup,
          teardown),
      cmocka_unit_test_setup_teardown(
          receipts_are_not_asked_for_past_the_window, setup, teardown),
      cmocka_unit_test_setup_teardown(poll_now_asks_for_receipts_at_once, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(refused_credentials_cost_one_request,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(
          alerts_that_take_turns_are_each_said_once_an_hour, setup, teardown),
      cmocka_unit_test_setup_teardown(
          a_receipt_by_gateway_id_finds_its_own_channels_message, setup,
          teardown),
      cmocka_unit_test_setup_teardown(awaiting_and_key_of_find_sent_messages,
                                      setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
