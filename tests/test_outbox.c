/*
** test_outbox.c: the outbox and the bus in one process on a simulated
** clock, with a channel plugin ('fake') whose answers the text chooses:
** idempotent keys, refused input that writes nothing, the states and the
** backoff of transient and permanent failures, Retry-After, messages in
** doubt after a crash, quiet hours, daily caps, the rate limit, and events
** between plugins (including the core's message events).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
  /* The first retry in 10 s +-20%, the second in 20 s +-20%. */
  int64_t next = q(f, "SELECT next_at FROM yz_outbox") - (NOON_MS + 1);
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
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
