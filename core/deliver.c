/*
** deliver.c: events, channels and HTTP answers in the loop's turn (see
** deliver.h).
*/
#include "deliver.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "lapi.h"
#include "phone.h"
#include "sandbox.h"

/* How long a channel's send may take, answers and retries inside it
** included (an HTTP request may take 120 s at most). */
#define SEND_DEADLINE_MS (300 * 1000LL)

/* A message's state change, durable now: published as message.<state>. */
static void on_outcome(void *ud, const yz_msg *m) {
  yz_host *h = ud;
  char topic[64];
  yz_fmt(topic, sizeof topic, "message.%s", m->state);
  int dead = strcmp(m->state, "dead") == 0;
  int wanted = yz_bus_wanted(h->bus, topic);
  if (!dead && !wanted) return; /* the common case: a sent message */
  char masked[32];
  yz_phone_mask(m->to, masked, sizeof masked);
  if (dead) {
    char subject[64];
    yz_fmt(subject, sizeof subject, "message %lld", (long long)m->id);
    const char *kv[] = {"id",   subject + 8, "key",      m->key,     "to",
                        masked, "channel",   m->channel, "attempts", NULL};
    char att[16];
    yz_fmt(att, sizeof att, "%d", m->attempts);
    kv[9] = att;
    yz_log_write(&h->log, YZ_LOG_WARN, m->plugin,
                 m->last_error ? m->last_error : "message is dead", kv, 5);
    yz_host_audit(h, "core", "message.dead", subject, m->last_error);
  }
  if (!wanted) return;
  yz_buf b;
  yz_buf_init(&b, 64 * 1024);
  yz_buf_addf(&b, "{\"id\":%lld,\"key\":", (long long)m->id);
  yz_buf_add_json_str(&b, m->key);
  yz_buf_adds(&b, ",\"channel\":");
  yz_buf_add_json_str(&b, m->channel);
  yz_buf_adds(&b, ",\"to\":");
  yz_buf_add_json_str(&b, masked);
  yz_buf_adds(&b, ",\"state\":");
  yz_buf_add_json_str(&b, m->state);
  yz_buf_addf(&b, ",\"attempts\":%d,\"parts\":%d", m->attempts, m->parts);
  yz_buf_adds(&b, ",\"plugin\":");
  yz_buf_add_json_str(&b, m->plugin);
  yz_buf_adds(&b, ",\"job\":");
  yz_buf_add_json_str(&b, m->job);
  yz_buf_adds(&b, ",\"error\":");
  yz_buf_add_json_str(&b, m->last_error);
  yz_buf_adds(&b, ",\"gateway_id\":");
  yz_buf_add_json_str(&b, m->gateway_id);
  yz_buf_adds(&b, "}");
  yz_bus_publish(h->bus, topic, yz_buf_str(&b), b.len, "core");
  yz_buf_free(&b);
}

static void free_allow(yz_host *h) {
  for (int i = 0; i < h->nallow; i++) free(h->allow[i]);
  free(h->allow);
  h->allow = NULL;
  h->nallow = 0;
}

static void add_allow(yz_host *h, const char *plugin, const char *hostport) {
  yz_buf b;
  yz_buf_init(&b, 1024);
  yz_buf_addf(&b, "%s\n%s", plugin, hostport);
  h->allow = yz_xrealloc(h->allow, sizeof *h->allow * (size_t)(h->nallow + 1));
  h->allow[h->nallow++] = yz_strdup(yz_buf_str(&b));
  yz_buf_free(&b);
}

/* Who may reach what: http_hosts, and each channel's plugin its URL's
** host (worked out once, not at every request). */
static void build_allow(yz_host *h) {
  const yz_config *c = h->cfg;
  free_allow(h);
  for (int i = 0; i < c->nhttp; i++)
    for (int j = 0; j < c->http[i].nhosts; j++)
      add_allow(h, c->http[i].plugin, c->http[i].hosts[j]);
  for (int i = 0; i < c->nchannels; i++) {
    char hp[300];
    if (c->channels[i].url &&
        yz_http_url_host(c->channels[i].url, hp, sizeof hp) == 0)
      add_allow(h, c->channels[i].rules.type, hp);
  }
}

int yz_deliver_open(yz_host *h, char *err, size_t errlen) {
  h->http = yz_http_new(err, (unsigned)errlen);
  if (!h->http) return YZ_ERR;
  h->bus = yz_bus_new();
  h->outbox = yz_outbox_new(h->store, &h->clock);
  yz_outbox_set_notify(h->outbox, on_outcome, h);
  return YZ_OK;
}

void yz_deliver_close(yz_host *h) {
  free_allow(h);
  if (h->outbox && yz_outbox_flush_final(h->outbox) != YZ_OK)
    yz_logf(&h->log, YZ_LOG_ERROR, NULL,
            "cannot record the last message outcomes (they are in doubt at "
            "the next start): %s",
            yz_store_errmsg(h->store));
  yz_outbox_free(h->outbox);
  yz_bus_free(h->bus);
  yz_http_free(h->http);
  for (int i = 0; i < h->nchannels; i++) {
    free(h->channels[i].name);
    for (int j = 0; j < YZ_CHANNEL_ALERTS; j++) free(h->channels[i].alert[j]);
  }
  free(h->channels);
  h->channels = NULL;
  h->nchannels = 0;
  h->outbox = NULL;
  h->bus = NULL;
  h->http = NULL;
}

static yz_channel *find_channel(yz_host *h, const char *name) {
  for (int i = 0; name && i < h->nchannels; i++)
    if (strcmp(h->channels[i].name, name) == 0) return &h->channels[i];
  return NULL;
}

yz_channel *yz_deliver_channel(yz_host *h, const char *name) {
  return find_channel(h, name);
}

static void unref_reg(lua_State *L, const yz_channel_reg *r) {
  luaL_unref(L, LUA_REGISTRYINDEX, r->send_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, r->batch_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, r->receipts_ref);
}

int yz_deliver_add_channel(yz_host *h, yz_plugin *p, const char *name,
                           const yz_channel_reg *reg, char *err,
                           size_t errlen) {
  const yz_chan_conf *cc = yz_config_channel(h->cfg, name);
  if (cc && strcmp(cc->rules.type, p->name) != 0) {
    yz_fmt(err, errlen,
           "channel '%s' is configured with type '%s': plugin '%s' cannot "
           "deliver it",
           name, cc->rules.type, p->name);
    return YZ_EUSAGE;
  }
  yz_channel *c = find_channel(h, name);
  if (c && c->p != p) {
    yz_fmt(err, errlen, "channel '%s' is already delivered by plugin '%s'",
           name, c->p->name);
    return YZ_EUSAGE;
  }
  if (!c) {
    h->channels = yz_xrealloc(h->channels,
                              sizeof *h->channels * (size_t)(h->nchannels + 1));
    c = &h->channels[h->nchannels++];
    memset(c, 0, sizeof *c);
    c->name = yz_strdup(name);
  } else {
    unref_reg(p->sb->L, &c->reg);
  }
  c->p = p;
  c->reg = *reg;
  c->next_poll = 0;
  c->polling = 0;
  c->proven = 0;
  c->awaiting = 1; /* sent before this start, maybe */
  return YZ_OK;
}

void yz_deliver_forget(yz_host *h, yz_plugin *p) {
  if (h->bus) yz_bus_forget(h->bus, p);
  int k = 0;
  for (int i = 0; i < h->nchannels; i++) {
    if (h->channels[i].p == p) {
      free(h->channels[i].name);
      for (int j = 0; j < YZ_CHANNEL_ALERTS; j++) free(h->channels[i].alert[j]);
    } else
      h->channels[k++] = h->channels[i];
  }
  h->nchannels = k;
}

void yz_deliver_started(yz_host *h, int started) {
  build_allow(h);
  int n = h->cfg->nchannels;
  yz_chan_rules *r =
      yz_xcalloc((size_t)n + (size_t)h->nchannels + 1, sizeof *r);
  for (int i = 0; i < n; i++) {
    r[i] = h->cfg->channels[i].rules;
    if (r[i].insecure && started)
      yz_logf(&h->log, YZ_LOG_WARN, NULL,
              "channel '%s' has insecure = true: TLS certificates of its "
              "gateway are NOT verified",
              r[i].name);
  }
  /* Channels a plugin registered without configuring them: defaults. */
  for (int i = 0; i < h->nchannels; i++) {
    if (yz_config_channel(h->cfg, h->channels[i].name)) continue;
    yz_chan_rules_default(&r[n], h->channels[i].name, h->channels[i].p->name);
    r[n].quiet = h->cfg->quiet;
    r[n].quiet_from = h->cfg->quiet_from;
    r[n].quiet_to = h->cfg->quiet_to;
    n++;
  }
  yz_outbox_set_channels(h->outbox, r, n, h->cfg->timezone);
  free(r);
}

/* ------------------------------------------------------------- events */

typedef struct event_args {
  const char *topic, *json, *origin;
  size_t n;
} event_args;

static int push_event(lua_State *L, void *ud) {
  event_args *a = ud;
  char err[256];
  if (yz_json_decode(L, a->json, a->n, err, sizeof err) != 0)
    return luaL_error(L, "event %s: %s", a->topic, err);
  lua_createtable(L, 0, 2);
  lua_pushstring(L, a->topic);
  lua_setfield(L, -2, "topic");
  lua_pushstring(L, a->origin);
  lua_setfield(L, -2, "from");
  return 2;
}

static void deliver_event(void *ud, const char *topic, const char *json,
                          size_t n, const char *origin, const yz_sub *sub) {
  yz_host *h = ud;
  yz_plugin *p = sub->owner;
  if (p->state != YZ_PS_OK) return;
  event_args a = {topic, json, origin, n};
  char what[160], err[1024];
  yz_fmt(what, sizeof what, "handler %s", topic);
  yz_task *t = yz_task_for_call(h, p, sub->fn_ref, push_event, &a, what, NULL,
                                err, sizeof err);
  if (!t) {
    yz_logf(&h->log, YZ_LOG_ERROR, p->name, "%s", err);
    return;
  }
  t->ud = NULL;
  t->drop = yz_deliver_task_drop;
}

void yz_deliver_emit(yz_host *h, const char *topic, const char *json, size_t n,
                     const char *origin) {
  if (h->on_event) h->on_event(h, topic, json, n, origin, h->on_event_ud);
  yz_bus_publish(h->bus, topic, json, n, origin);
}

/* ----------------------------------------------------------- channels */

/* What a send, batch or receipts task carries. */
typedef enum { JOB_SEND, JOB_BATCH, JOB_RECEIPTS } job_kind;

typedef struct send_job {
  job_kind kind;
  char *channel;
  int n;
  yz_msg **m; /* the messages (owned until their outcome is recorded) */
} send_job;

static send_job *job_new(job_kind kind, const char *channel, yz_msg **m,
                         int n) {
  send_job *j = yz_xcalloc(1, sizeof *j);
  j->kind = kind;
  j->channel = yz_strdup(channel);
  j->m = yz_xcalloc((size_t)n + 1, sizeof *j->m);
  memcpy(j->m, m, sizeof *m * (size_t)n);
  j->n = n;
  return j;
}

static void job_free(send_job *j) {
  if (!j) return;
  free(j->channel);
  free(j->m);
  free(j);
}

/* The message table a channel's function gets. */
static void push_one(lua_State *L, yz_host *h, const yz_msg *m) {
  lua_createtable(L, 0, 18);
  lua_pushinteger(L, m->id);
  lua_setfield(L, -2, "id");
  lua_pushstring(L, m->key);
  lua_setfield(L, -2, "key");
  lua_pushstring(L, m->to);
  lua_setfield(L, -2, "to");
  lua_pushstring(L, m->text);
  lua_setfield(L, -2, "text");
  lua_pushstring(L, m->channel);
  lua_setfield(L, -2, "channel");
  lua_pushinteger(L, m->attempts);
  lua_setfield(L, -2, "attempt");
  lua_pushboolean(L, m->in_doubt > 0);
  lua_setfield(L, -2, "in_doubt");
  lua_pushinteger(L, m->parts);
  lua_setfield(L, -2, "parts");
  lua_pushstring(L, m->ucs2 ? "ucs2" : "gsm7");
  lua_setfield(L, -2, "coding");
  if (m->plugin) {
    lua_pushstring(L, m->plugin);
    lua_setfield(L, -2, "plugin");
  }
  if (m->job) {
    lua_pushstring(L, m->job);
    lua_setfield(L, -2, "job");
  }
  lua_pushinteger(L, m->created_ms / 1000);
  lua_setfield(L, -2, "created");
  if (m->sent_ms) {
    lua_pushinteger(L, m->sent_ms / 1000);
    lua_setfield(L, -2, "sent");
  }
  if (m->gateway_id) {
    lua_pushstring(L, m->gateway_id);
    lua_setfield(L, -2, "gateway_id");
  }
  char err[256];
  if (m->meta &&
      yz_json_decode(L, m->meta, strlen(m->meta), err, sizeof err) == 0)
    lua_setfield(L, -2, "meta");
  if (!m->tpl) return;
  lua_pushstring(L, m->tpl);
  lua_setfield(L, -2, "template");
  if (!m->params ||
      yz_json_decode(L, m->params, strlen(m->params), err, sizeof err) != 0)
    lua_newtable(L);
  int params = lua_gettop(L);
  /* The provider's code and its parameter order, from the channel's map
  ** (misfit() has kept out what the map cannot carry). */
  const yz_chan_conf *cc = yz_config_channel(h->cfg, m->channel);
  const yz_tpl_map *tm = cc ? yz_config_tpl_map(cc, m->tpl) : NULL;
  if (tm) {
    lua_pushstring(L, tm->code);
    lua_setfield(L, -3, "template_code");
    lua_createtable(L, tm->nparams, 0);
    for (int i = 0; i < tm->nparams; i++) {
      lua_pushstring(L, tm->params[i]);
      lua_rawget(L, params);
      lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -3, "param_list");
  }
  lua_setfield(L, -2, "params");
}

static int push_msg(lua_State *L, void *ud) {
  yz_plugin *p = yz_sandbox_of(L)->owner;
  push_one(L, p->host, ud);
  return 1;
}

/* A list of message tables (send_batch, receipts). */
static int push_list(lua_State *L, void *ud) {
  send_job *j = ud;
  yz_plugin *p = yz_sandbox_of(L)->owner;
  lua_createtable(L, j->n, 0);
  for (int i = 0; i < j->n; i++) {
    push_one(L, p->host, j->m[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* The first line of an error, for last_error. */
static void first_line(const char *s, char *dst, size_t n) {
  yz_fmt(dst, n, "%s", s ? s : "failed");
  char *nl = strchr(dst, '\n');
  if (nl) *nl = 0;
}

/* What a channel's send returned for one message, read under protection
** (reading may allocate; the values are read raw, so no plugin code runs).
**   true [, gateway_id]                                     sent
**   nil, reason [, "permanent" | "pause" | { permanent = true,
**      retry_after = seconds, pause = true, alert = "...", defer = true }]
**                                                          not sent
** 'pause': the channel cannot deliver anything now (refused credentials):
** the message waits, the channel is held until a reload. 'alert': an
** administrator should know (core.alert), the outcome as it says.
** 'defer': not the message's fault either (the balance, a daily quota):
** it waits retry_after without using an attempt. */
typedef struct send_result {
  int sent, permanent, pause, defer;
  double retry_after;
  char gw[128], why[512], alert[256];
} send_result;

/* Reads (ok, a, b) at stack slots i, i+1, i+2 into r. */
static void read_values(lua_State *L, int i, send_result *r) {
  if (lua_toboolean(L, i)) {
    r->sent = 1;
    if (lua_type(L, i + 1) == LUA_TSTRING || lua_type(L, i + 1) == LUA_TNUMBER)
      yz_fmt(r->gw, sizeof r->gw, "%s", lua_tostring(L, i + 1));
    return;
  }
  if (lua_type(L, i + 1) == LUA_TSTRING)
    first_line(lua_tostring(L, i + 1), r->why, sizeof r->why);
  int o = i + 2;
  if (lua_type(L, o) == LUA_TSTRING) {
    r->permanent = strcmp(lua_tostring(L, o), "permanent") == 0;
    r->pause = strcmp(lua_tostring(L, o), "pause") == 0;
  } else if (lua_type(L, o) == LUA_TTABLE) {
    lua_pushliteral(L, "permanent");
    r->permanent = lua_rawget(L, o) != LUA_TNIL && lua_toboolean(L, -1);
    lua_pushliteral(L, "pause");
    r->pause = lua_rawget(L, o) != LUA_TNIL && lua_toboolean(L, -1);
    lua_pushliteral(L, "retry_after");
    if (lua_rawget(L, o) == LUA_TNUMBER) r->retry_after = lua_tonumber(L, -1);
    lua_pushliteral(L, "alert");
    if (lua_rawget(L, o) == LUA_TSTRING)
      first_line(lua_tostring(L, -1), r->alert, sizeof r->alert);
    lua_pushliteral(L, "defer");
    r->defer = lua_rawget(L, o) != LUA_TNIL && lua_toboolean(L, -1);
    lua_pop(L, 5);
  }
}

typedef struct read_ctx {
  send_result *r;
  int n; /* messages */
} read_ctx;

/* Slot 1: the read_ctx; 2, 3, 4: the first three values returned. A
** batch returns a list of { ok, reason_or_id, options } (or true), one
** per message, or the three values for all. */
static int read_results(lua_State *L) {
  read_ctx *x = lua_touserdata(L, 1);
  if (x->n == 1 || lua_type(L, 2) != LUA_TTABLE) {
    for (int i = 0; i < x->n; i++) read_values(L, 2, &x->r[i]);
    return 0;
  }
  for (int i = 0; i < x->n; i++) {
    int ty = lua_rawgeti(L, 2, i + 1);
    int top = lua_gettop(L);
    if (ty == LUA_TTABLE) {
      lua_rawgeti(L, top, 1);
      lua_rawgeti(L, top, 2);
      lua_rawgeti(L, top, 3);
      read_values(L, top + 1, &x->r[i]);
    } else if (ty == LUA_TBOOLEAN && lua_toboolean(L, top)) {
      x->r[i].sent = 1;
    } else {
      yz_fmt(x->r[i].why, sizeof x->r[i].why,
             "the channel's batch gave no result for this message");
    }
    lua_settop(L, 4);
  }
  return 0;
}

/* Tells administrators (log and core.alert), once an hour for the same
** text on the same channel. */
static void raise_alert(yz_host *h, const char *channel, const char *kind,
                        const char *text) {
  yz_channel *c = find_channel(h, channel);
  int64_t now = yz_clock_now_ms(&h->clock);
  if (c) {
    /* The same text said within the hour: once is enough. Otherwise its
    ** slot, or the oldest. */
    int slot = -1;
    for (int i = 0; i < YZ_CHANNEL_ALERTS && slot < 0; i++)
      if (c->alert[i] && strcmp(c->alert[i], text) == 0) {
        if (now - c->alert_ms[i] < 3600 * 1000LL) return;
        slot = i;
      }
    for (int i = 0; i < YZ_CHANNEL_ALERTS && slot < 0; i++)
      if (!c->alert[i]) slot = i;
    if (slot < 0) {
      slot = 0;
      for (int i = 1; i < YZ_CHANNEL_ALERTS; i++)
        if (c->alert_ms[i] < c->alert_ms[slot]) slot = i;
    }
    free(c->alert[slot]);
    c->alert[slot] = yz_strdup(text);
    c->alert_ms[slot] = now;
  }
  yz_logf(&h->log, YZ_LOG_ERROR, c ? c->p->name : NULL, "channel '%s': %s",
          channel, text);
  yz_host_audit(h, "core", kind, channel, text);
  yz_buf b;
  yz_buf_init(&b, 8192);
  yz_buf_adds(&b, "{\"kind\":");
  yz_buf_add_json_str(&b, kind);
  yz_buf_adds(&b, ",\"channel\":");
  yz_buf_add_json_str(&b, channel);
  yz_buf_adds(&b, ",\"reason\":");
  yz_buf_add_json_str(&b, text);
  yz_buf_adds(&b, "}");
  yz_deliver_emit(h, "core.alert", yz_buf_str(&b), b.len, "core");
  yz_buf_free(&b);
}

/* Holds a channel whose plugin says nothing can go (refused credentials):
** said loudly once; its messages wait until a reload or a restart. */
static void hold_channel(yz_host *h, const char *channel, const char *why) {
  if (yz_outbox_held(h->outbox, channel)) return;
  yz_outbox_hold(h->outbox, channel, why);
  char text[700];
  yz_fmt(text, sizeof text,
         "paused: %s. Its messages stay queued (none is lost or counted as "
         "failed). Fix the channel's settings, then reload (kill -HUP) for "
         "a change in the file, or restart yizhan for a secret in its "
         "environment",
         why);
  raise_alert(h, channel, "channel.paused", text);
}

static void record(yz_host *h, yz_msg *m, const send_result *r) {
  if (r->alert[0]) raise_alert(h, m->channel, "channel.alert", r->alert);
  yz_channel *ch = find_channel(h, m->channel);
  if (ch && !r->pause) ch->proven = 1;
  if (r->sent) {
    if (ch) ch->awaiting = 1;
    yz_outbox_result(h->outbox, m, YZ_SEND_SENT, NULL, 0,
                     r->gw[0] ? r->gw : NULL);
    return;
  }
  if (r->pause) {
    hold_channel(h, m->channel, r->why);
    yz_outbox_result(h->outbox, m, YZ_SEND_HELD, r->why, 0, NULL);
    return;
  }
  double ra = r->retry_after;
  if (!(ra > 0)) ra = 0; /* NaN too */
  if (ra > 7 * 86400.0) ra = 7 * 86400.0;
  yz_outbox_result(h->outbox, m,
                   r->permanent ? YZ_SEND_PERMANENT
                   : r->defer   ? YZ_SEND_DEFERRED
                                : YZ_SEND_TRANSIENT,
                   r->why, ra, NULL);
}

/* A send or send_batch ended: its results tell each message's outcome.
** An error raised is a transient failure of them all. */
/* Reads what a finished task's function returned (the values on its
** coroutine) into r[0..n-1], under protection. */
static void read_returned(lua_State *co, send_result *r, int n) {
  int top = lua_gettop(co);
  read_ctx x = {r, n};
  lua_pushcfunction(co, read_results);
  lua_pushlightuserdata(co, &x);
  for (int i = 1; i <= 3; i++) {
    if (i <= top)
      lua_pushvalue(co, i);
    else
      lua_pushnil(co);
  }
  if (lua_pcall(co, 4, 0, 0) != LUA_OK) {
    lua_pop(co, 1);
    memset(r, 0, sizeof *r * (size_t)n);
    for (int i = 0; i < n; i++)
      yz_fmt(r[i].why, sizeof r[i].why,
             "the channel's answer could not be read");
  }
}

static void send_done(yz_host *h, yz_task *t, int ok, const char *err) {
  send_job *j = t->ud;
  t->ud = NULL;
  if (!j) return;
  send_result *r = yz_xcalloc((size_t)j->n, sizeof *r);
  for (int i = 0; i < j->n; i++)
    yz_fmt(r[i].why, sizeof r[i].why, "the channel reported a failure");
  if (!ok) {
    for (int i = 0; i < j->n; i++) first_line(err, r[i].why, sizeof r[i].why);
  } else {
    read_returned(t->co, r, j->n);
  }
  for (int i = 0; i < j->n; i++) record(h, j->m[i], &r[i]);
  free(r);
  job_free(j);
}

/* A receipts poll ended. */
static void receipts_done(yz_host *h, yz_task *t, int ok, const char *err) {
  send_job *j = t->ud;
  t->ud = NULL;
  if (!j) return;
  yz_channel *c = find_channel(h, j->channel);
  if (c) c->polling = 0;
  /* It may return what a send does: nil, reason [, "pause" | {...}]. */
  send_result r = {0};
  if (ok) {
    r.sent = 1;
    lua_State *co = t->co;
    if (lua_gettop(co) >= 1 && !lua_toboolean(co, 1)) {
      r.sent = 0;
      read_returned(co, &r, 1);
      if (!r.why[0]) yz_fmt(r.why, sizeof r.why, "the provider said no");
    }
  } else {
    first_line(err, r.why, sizeof r.why);
  }
  if (r.sent) {
    if (c) c->proven = 1;
  } else if (r.pause) {
    hold_channel(h, j->channel, r.why);
  } else {
    yz_logf(&h->log, YZ_LOG_WARN, t->p->name,
            "channel '%s': asking for receipts failed: %s", j->channel, r.why);
    if (c && c->sweep_from) c->awaiting = 0; /* the last sweep ends here */
  }
  if (r.alert[0]) raise_alert(h, j->channel, "channel.alert", r.alert);
  for (int i = 0; i < j->n; i++) yz_msg_free(j->m[i]);
  job_free(j);
}

void yz_deliver_task_drop(yz_host *h, yz_task *t) {
  if (t->wait) {
    /* An HTTP request it waits for: its answer must not reach a freed
    ** task (lapi_msg.c owns the waiter). */
    yz_lapi_http_cancel(h, t);
  }
  send_job *j = t->ud;
  t->ud = NULL;
  if (!j) return;
  if (j->kind == JOB_RECEIPTS) {
    yz_channel *c = find_channel(h, j->channel);
    if (c) c->polling = 0;
    for (int i = 0; i < j->n; i++) yz_msg_free(j->m[i]);
  } else {
    /* They may have reached the gateway: in doubt, not a failed attempt. */
    for (int i = 0; i < j->n; i++)
      yz_outbox_result(
          h->outbox, j->m[i], YZ_SEND_IN_DOUBT,
          "the send was cut short before an answer came (in doubt)", 0, NULL);
  }
  job_free(j);
}

static void start_send(yz_host *h, yz_channel *c, yz_msg **m, int n,
                       int batch) {
  send_job *j = job_new(batch ? JOB_BATCH : JOB_SEND, c->name, m, n);
  char what[160], err[1024];
  yz_fmt(what, sizeof what, "channel %s", c->name);
  yz_task *t = yz_task_for_call(
      h, c->p, batch ? c->reg.batch_ref : c->reg.send_ref,
      batch ? push_list : push_msg, batch ? (void *)j : (void *)m[0], what,
      send_done, err, sizeof err);
  if (!t) {
    for (int i = 0; i < n; i++)
      yz_outbox_result(h->outbox, m[i], YZ_SEND_TRANSIENT, err, 0, NULL);
    job_free(j);
    return;
  }
  t->ud = j;
  t->drop = yz_deliver_task_drop;
  t->tolerant = 1; /* a gateway's trouble is not the plugin's fault */
  t->deadline_ms = yz_clock_mono_ms() + SEND_DEADLINE_MS;
}

/* Whether a message may share one request with others of the same
** template and parameters: not when it is in doubt or retried (an earlier
** attempt may have reached the provider unanswered), so that it goes
** alone and its channel can check first whether it went. */
static int batchable(const yz_msg *m) {
  return m->tpl && m->in_doubt == 0 && m->attempts <= 1;
}

static int same_batch(const yz_msg *a, const yz_msg *b) {
  return strcmp(a->tpl, b->tpl) == 0 &&
         strcmp(a->params ? a->params : "", b->params ? b->params : "") == 0;
}

/* Hands claimed messages to channel c: one send each, or send_batch for
** messages that share a template and its parameters. Takes msgs. A probe
** hands out the first request only and gives the rest back: the channel
** has not answered yet, and refused credentials should cost one request. */
static void hand_out(yz_host *h, yz_channel *c, yz_msg **msgs, int n,
                     int probe) {
  if (c->reg.batch_ref == LUA_NOREF || c->reg.batch_max < 2) {
    for (int i = 0; i < n; i++) {
      if (probe && i > 0)
        yz_outbox_result(h->outbox, msgs[i], YZ_SEND_RELEASED, NULL, 0, NULL);
      else
        start_send(h, c, &msgs[i], 1, 0);
    }
    return;
  }
  int handed = 0;
  yz_msg **group = yz_xcalloc((size_t)c->reg.batch_max, sizeof *group);
  for (int i = 0; i < n; i++) {
    if (!msgs[i]) continue;
    yz_msg *m = msgs[i];
    msgs[i] = NULL;
    if (probe && handed++) {
      yz_outbox_result(h->outbox, m, YZ_SEND_RELEASED, NULL, 0, NULL);
      continue;
    }
    if (!batchable(m)) {
      start_send(h, c, &m, 1, 0);
      continue;
    }
    int k = 0;
    group[k++] = m;
    for (int j = i + 1; j < n && k < c->reg.batch_max; j++) {
      if (!msgs[j] || !batchable(msgs[j]) || !same_batch(m, msgs[j])) continue;
      /* A recipient once per request: a provider answers per number. */
      int dup = 0;
      for (int g = 0; g < k && !dup; g++)
        dup = strcmp(group[g]->to, msgs[j]->to) == 0;
      if (dup) continue;
      group[k++] = msgs[j];
      msgs[j] = NULL;
    }
    start_send(h, c, group, k, k > 1);
  }
  free(group);
}

/* Whether a claimed message no longer fits its channel, the config having
** changed since it was queued: free text or an unmapped template on a
** channel that sends only templates, or a parameter the map now sends and
** the message lacks. Such a message would fail every attempt (or go with
** a blank parameter), so it is refused here, with why, for every channel
** alike. */
static int misfit(yz_host *h, const yz_msg *m, char *why, size_t n) {
  const yz_chan_conf *cc = yz_config_channel(h->cfg, m->channel);
  if (!cc || !cc->templates_only) return 0;
  if (!m->tpl) {
    yz_fmt(why, n,
           "channel '%s' now sends only templates, and this message is free "
           "text (the config changed after it was queued)",
           m->channel);
    return 1;
  }
  const yz_tpl_map *tm = yz_config_tpl_map(cc, m->tpl);
  if (!tm) {
    yz_fmt(why, n,
           "template '%s' is no longer among the templates of channel '%s' "
           "(the config changed after the message was queued)",
           m->tpl, m->channel);
    return 1;
  }
  cJSON *p = cJSON_Parse(m->params ? m->params : "{}");
  const char *missing = NULL;
  for (int i = 0; i < tm->nparams && !missing; i++)
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(p, tm->params[i])))
      missing = tm->params[i];
  if (missing)
    yz_fmt(why, n,
           "the message has no parameter '%s', which channel '%s' now sends "
           "for template '%s' (the config changed after it was queued)",
           missing, m->channel, m->tpl);
  cJSON_Delete(p);
  return missing != NULL;
}

static void dispatch_channel(yz_host *h, const yz_chan_rules *r) {
  yz_channel *c = find_channel(h, r->name);
  int served = h->capture || (c && c->p->state == YZ_PS_OK);
  int was_paused = yz_outbox_pause(h->outbox, r->name, !served);
  if (!served) {
    if (!was_paused) /* said once each time it stops being delivered */
      yz_logf(&h->log, YZ_LOG_WARN, NULL,
              "no healthy plugin delivers channel '%s' (is plugin '%s' "
              "enabled and started?); its messages wait",
              r->name, r->type);
    return;
  }
  /* Until the channel has had an answer, one request at a time. */
  int probe = !h->capture && !c->proven;
  if (probe && (yz_outbox_in_flight(h->outbox, r->name) || c->polling)) return;
  yz_msg **msgs;
  int n = yz_outbox_claim(h->outbox, r->name, 100000, &msgs);
  if (n < 0)
    yz_logf(&h->log, YZ_LOG_ERROR, NULL,
            "cannot claim messages of channel '%s' (trying again in a "
            "second): %s",
            r->name, yz_store_errmsg(h->store));
  if (n > 0 && h->capture) {
    for (int i = 0; i < n; i++) {
      h->capture(h, msgs[i], h->capture_ud);
      yz_outbox_result(h->outbox, msgs[i], YZ_SEND_SENT, NULL, 0, "captured");
    }
  } else if (n > 0) {
    int k = 0;
    for (int i = 0; i < n; i++) {
      char why[512];
      if (misfit(h, msgs[i], why, sizeof why))
        yz_outbox_result(h->outbox, msgs[i], YZ_SEND_PERMANENT, why, 0, NULL);
      else
        msgs[k++] = msgs[i];
    }
    if (k) hand_out(h, c, msgs, k, probe);
  }
  free(msgs);
}

/* Asks channel c's plugin for receipts of messages still waiting for one,
** when it is time. */
static void poll_channel(yz_host *h, yz_channel *c) {
  if (c->reg.receipts_ref == LUA_NOREF || c->polling || !c->awaiting ||
      c->p->state != YZ_PS_OK || yz_outbox_held(h->outbox, c->name))
    return;
  int64_t now = yz_clock_now_ms(&h->clock);
  if (now < c->next_poll) return;
  c->next_poll = now + (int64_t)(c->reg.receipts_every * 1000);
  /* Until the channel has answered, one request at a time: this poll is
  ** skipped. */
  if (!c->proven && yz_outbox_in_flight(h->outbox, c->name)) return;
  yz_msg **msgs;
  int n = yz_outbox_awaiting_before(
      h->outbox, c->name, 50, (int64_t)(c->reg.receipts_window * 1000),
      c->sweep_from ? c->sweep_from : INT64_MAX, &msgs);
  if (n < 0) {
    yz_logf(&h->log, YZ_LOG_ERROR, NULL,
            "cannot read messages waiting for receipts: %s",
            yz_store_errmsg(h->store));
    return;
  }
  if (n == 0) {
    c->awaiting = 0; /* until the next message is sent */
    return;
  }
  send_job *j = job_new(JOB_RECEIPTS, c->name, msgs, n);
  free(msgs);
  char what[160], err[1024];
  yz_fmt(what, sizeof what, "receipts %s", c->name);
  yz_task *t = yz_task_for_call(h, c->p, c->reg.receipts_ref, push_list, j,
                                what, receipts_done, err, sizeof err);
  if (!t) {
    yz_logf(&h->log, YZ_LOG_ERROR, c->p->name, "%s", err);
    for (int i = 0; i < j->n; i++) yz_msg_free(j->m[i]);
    job_free(j);
    c->awaiting = 0; /* until the next message is sent */
    return;
  }
  c->polling = 1;
  t->ud = j;
  t->drop = yz_deliver_task_drop;
  t->tolerant = 1;
  t->deadline_ms = yz_clock_mono_ms() + SEND_DEADLINE_MS;
}

int yz_deliver_poll_now(yz_host *h) {
  int n = 0;
  for (int i = 0; i < h->nchannels; i++) {
    yz_channel *c = &h->channels[i];
    if (c->reg.receipts_ref == LUA_NOREF || !c->awaiting || c->polling ||
        c->p->state != YZ_PS_OK || yz_outbox_held(h->outbox, c->name))
      continue;
    if (!c->sweep_from) { /* those asked about from now on are done */
      int64_t now = yz_clock_now_ms(&h->clock);
      c->sweep_from = now > 0 ? now : 1;
    }
    c->next_poll = 0;
    n++;
  }
  return n;
}

/* Sends that ran past their deadline (a send that never returns would hold
** its message and a slot of the channel for ever) end as a failed
** attempt: it may have reached the gateway, but counting it keeps a send
** that always hangs from going again for ever. */
static void expire_sends(yz_host *h) {
  int64_t now = yz_clock_mono_ms();
  yz_task *t = h->tasks;
  while (t) {
    yz_task *next = t->next;
    if (t->deadline_ms && now > t->deadline_ms && !t->push && t->ud) {
      char why[160];
      send_job *j = t->ud;
      yz_fmt(
          why, sizeof why, "the channel's %s did not end within %d s%s",
          j->kind == JOB_RECEIPTS ? "receipts poll" : "send",
          (int)(SEND_DEADLINE_MS / 1000),
          j->kind == JOB_RECEIPTS ? "" : " (it may have reached the gateway)");
      yz_logf(&h->log, YZ_LOG_WARN, t->p->name, "%s: %s", t->what, why);
      if (j->kind != JOB_RECEIPTS) {
        t->ud = NULL; /* the drop hook records nothing more */
        for (int i = 0; i < j->n; i++)
          yz_outbox_result(h->outbox, j->m[i], YZ_SEND_TRANSIENT, why, 0, NULL);
        job_free(j);
      }
      yz_task_abort(h, t);
    }
    t = next;
  }
}

void yz_deliver_turn(yz_host *h) {
  if (yz_http_running(h->http)) yz_http_perform(h->http);
  /* Only sends and receipt polls have deadlines: no walk over every task
  ** (jobs, handlers) when neither is out. */
  int polling = 0;
  for (int i = 0; i < h->nchannels && !polling; i++)
    polling = h->channels[i].polling;
  if (polling || yz_outbox_in_flight(h->outbox, NULL)) expire_sends(h);
  if (yz_bus_pending(h->bus)) yz_bus_dispatch(h->bus, deliver_event, h);
  if (h->deliver || h->capture) {
    /* Claims commit on their own: never inside a caller's transaction
    ** (a test's, which rolls back) unless capturing. */
    if (yz_store_tx_depth(h->store) == 0 || h->capture) {
      for (int i = 0; i < h->cfg->nchannels + h->nchannels; i++) {
        const yz_chan_rules *r = NULL;
        if (i < h->cfg->nchannels) {
          r = &h->cfg->channels[i].rules;
        } else {
          const char *nm = h->channels[i - h->cfg->nchannels].name;
          if (yz_config_channel(h->cfg, nm)) continue;
          r = yz_outbox_channel(h->outbox, nm);
        }
        if (r) dispatch_channel(h, r);
      }
      if (!h->capture)
        for (int i = 0; i < h->nchannels; i++) poll_channel(h, &h->channels[i]);
    }
  }
  if (yz_outbox_flush(h->outbox) != YZ_OK)
    yz_logf(&h->log, YZ_LOG_ERROR, NULL,
            "cannot record message outcomes (kept, tried again): %s",
            yz_store_errmsg(h->store));
}

int64_t yz_deliver_wake(yz_host *h) {
  if (yz_bus_pending(h->bus)) return 0;
  if (!h->deliver && !h->capture) return -1;
  int64_t w = yz_outbox_next_wake(h->outbox);
  if (h->capture) return w;
  int64_t now = yz_clock_now_ms(&h->clock);
  for (int i = 0; i < h->nchannels; i++) {
    yz_channel *c = &h->channels[i];
    if (c->reg.receipts_ref == LUA_NOREF || c->polling || !c->awaiting ||
        c->p->state != YZ_PS_OK || yz_outbox_held(h->outbox, c->name))
      continue;
    int64_t d = c->next_poll > now ? c->next_poll - now : 0;
    if (w < 0 || d < w) w = d;
  }
  return w;
}

/* ------------------------------------------------------------ enqueue */

int yz_deliver_check(yz_host *h, const char *raw_to, const char *text,
                     const char *tpl, const char *channel, yz_msg_in *in,
                     char *to, size_t tolen, char *err, size_t errlen) {
  if (!raw_to || !*raw_to) {
    yz_fmt(err, errlen, "'to' is missing (a phone number)");
    return YZ_EUSAGE;
  }
  if (yz_phone_normalize(raw_to, to, tolen, err, errlen) != YZ_OK)
    return YZ_EUSAGE;
  if (!text || !*text) {
    yz_fmt(err, errlen, "'text' is missing or empty");
    return YZ_EUSAGE;
  }
  size_t tlen = strlen(text);
  yz_sms_count cnt;
  if (yz_sms_count_text(text, tlen, &cnt) != YZ_OK) {
    yz_fmt(err, errlen, "'text' is not valid UTF-8");
    return YZ_EUSAGE;
  }
  if (!channel) channel = h->cfg->default_channel;
  if (!channel) {
    yz_fmt(err, errlen,
           "no channel given and no default channel (set channels.default "
           "in the config)");
    return YZ_EUSAGE;
  }
  const yz_chan_rules *r = yz_outbox_channel(h->outbox, channel);
  if (!r) {
    yz_buf b;
    yz_buf_init(&b, 2048);
    for (int i = 0; i < h->cfg->nchannels; i++)
      yz_buf_addf(&b, "%s%s", i ? ", " : "", h->cfg->channels[i].rules.name);
    yz_fmt(err, errlen, "unknown channel '%s' (configured: %s)", channel,
           b.len ? yz_buf_str(&b) : "none");
    yz_buf_free(&b);
    return YZ_EUSAGE;
  }
  if (cnt.parts > r->max_parts || tlen > YZ_TEXT_MAX) {
    yz_fmt(err, errlen,
           "the text is %d SMS parts (%d %s units, %zu bytes); channel '%s' "
           "takes at most %d parts and %d bytes",
           cnt.parts, cnt.units, cnt.ucs2 ? "UCS-2" : "GSM-7", tlen, channel,
           r->max_parts, YZ_TEXT_MAX);
    return YZ_EUSAGE;
  }
  const yz_chan_conf *cc = yz_config_channel(h->cfg, r->name);
  if (cc && cc->templates_only && !tpl) {
    yz_buf b;
    yz_buf_init(&b, 2048);
    for (int i = 0; i < cc->ntpls; i++)
      yz_buf_addf(&b, "%s%s", i ? ", " : "", cc->tpls[i].name);
    yz_fmt(err, errlen,
           "channel '%s' sends only templates its provider approved: give "
           "template = and params = instead of text (templates: %s)",
           r->name, b.len ? yz_buf_str(&b) : "none");
    yz_buf_free(&b);
    return YZ_EUSAGE;
  }
  memset(in, 0, sizeof *in);
  in->tpl = tpl;
  in->channel = r->name;
  in->to = to;
  in->text = text;
  in->parts = cnt.parts;
  in->ucs2 = cnt.ucs2;
  return YZ_OK;
}

int yz_deliver_render(yz_host *h, const char *name, const char *const *names,
                      const char *const *values, int n, yz_buf *text,
                      yz_buf *json, char *err, size_t errlen) {
  const yz_template *t = yz_config_template_named(h->cfg, name);
  if (!t) {
    yz_buf b;
    yz_buf_init(&b, 4096);
    for (int i = 0; i < h->cfg->ntemplates; i++)
      yz_buf_addf(&b, "%s%s", i ? ", " : "", h->cfg->templates[i].name);
    yz_fmt(err, errlen, "unknown template '%s' (the config's templates: %s)",
           name, b.len ? yz_buf_str(&b) : "none");
    yz_buf_free(&b);
    return YZ_EUSAGE;
  }
  for (int i = 0; i < n; i++) {
    int known = 0;
    for (int j = 0; j < t->nparams && !known; j++)
      known = strcmp(t->params[j], names[i]) == 0;
    if (!known) {
      yz_fmt(err, errlen, "template '%s' has no parameter '%s' (its text: %s)",
             name, names[i], t->text);
      return YZ_EUSAGE;
    }
    for (int j = 0; j < i; j++)
      if (strcmp(names[j], names[i]) == 0) {
        yz_fmt(err, errlen, "parameter '%s' is given twice", names[i]);
        return YZ_EUSAGE;
      }
    yz_sms_count cnt;
    if (yz_sms_count_text(values[i], strlen(values[i]), &cnt) != YZ_OK ||
        strstr(values[i], "{{")) {
      yz_fmt(err, errlen, "parameter '%s' must be UTF-8 text without '{{'",
             names[i]);
      return YZ_EUSAGE;
    }
  }
  for (int j = 0; j < t->nparams; j++) {
    int given = 0;
    for (int i = 0; i < n && !given; i++)
      given = strcmp(t->params[j], names[i]) == 0;
    if (!given) {
      yz_fmt(err, errlen, "template '%s' needs parameter '%s' (its text: %s)",
             name, t->params[j], t->text);
      return YZ_EUSAGE;
    }
  }
  /* The text: each {{p}} replaced (the config checked the placeholders). */
  const char *s = t->text, *open;
  int rc = YZ_OK;
  while ((open = strstr(s, "{{")) != NULL) {
    rc |= yz_buf_add(text, s, (size_t)(open - s));
    const char *close = strstr(open, "}}");
    size_t len = (size_t)(close - open - 2);
    for (int i = 0; i < n; i++)
      if (strlen(names[i]) == len && memcmp(names[i], open + 2, len) == 0)
        rc |= yz_buf_adds(text, values[i]);
    s = close + 2;
  }
  rc |= yz_buf_adds(text, s);
  /* The parameters, keys sorted (the same message, the same JSON). */
  int *idx = yz_xcalloc((size_t)n + 1, sizeof *idx);
  for (int i = 0; i < n; i++) idx[i] = i;
  for (int i = 1; i < n; i++) /* a template has a handful of parameters */
    for (int j = i; j > 0 && strcmp(names[idx[j - 1]], names[idx[j]]) > 0;
         j--) {
      int x = idx[j];
      idx[j] = idx[j - 1];
      idx[j - 1] = x;
    }
  rc |= yz_buf_adds(json, "{");
  for (int i = 0; i < n; i++) {
    if (i) rc |= yz_buf_adds(json, ",");
    rc |= yz_buf_add_json_str(json, names[idx[i]]);
    rc |= yz_buf_adds(json, ":");
    rc |= yz_buf_add_json_str(json, values[idx[i]]);
  }
  rc |= yz_buf_adds(json, "}");
  free(idx);
  if (rc != YZ_OK) {
    yz_fmt(err, errlen, "template '%s': the parameters are too long", name);
    return YZ_EUSAGE;
  }
  return YZ_OK;
}

/* --------------------------------------------------------- permissions */

int yz_deliver_host_allowed(yz_host *h, yz_plugin *p, const char *hostport) {
  size_t n = strlen(p->name);
  for (int i = 0; i < h->nallow; i++)
    if (strncmp(h->allow[i], p->name, n) == 0 && h->allow[i][n] == '\n' &&
        strcmp(h->allow[i] + n + 1, hostport) == 0)
      return 1;
  return 0;
}

int yz_deliver_insecure_allowed(yz_host *h, yz_plugin *p) {
  for (int i = 0; i < h->cfg->nchannels; i++)
    if (strcmp(h->cfg->channels[i].rules.type, p->name) == 0 &&
        h->cfg->channels[i].rules.insecure)
      return 1;
  return 0;
}

char *yz_deliver_file_allowed(yz_host *h, yz_plugin *p, const char *path) {
  for (int i = 0; i < h->cfg->nchannels; i++) {
    const yz_chan_conf *cc = &h->cfg->channels[i];
    if (strcmp(cc->rules.type, p->name) != 0 || !cc->path ||
        strcmp(cc->path, path) != 0)
      continue;
    if (path[0] == '/') return yz_strdup(path);
    yz_buf b;
    yz_buf_init(&b, 8192);
    yz_buf_addf(&b, "%s/%s", h->datadir, path);
    char *s = yz_strdup(yz_buf_str(&b));
    yz_buf_free(&b);
    return s;
  }
  return NULL;
}
