/*
** deliver.c: events, channels and HTTP answers in the loop's turn (see
** deliver.h).
*/
#include "deliver.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

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
  for (int i = 0; i < h->nchannels; i++) free(h->channels[i].name);
  free(h->channels);
  h->channels = NULL;
  h->nchannels = 0;
  h->outbox = NULL;
  h->bus = NULL;
  h->http = NULL;
}

static yz_channel *find_channel(yz_host *h, const char *name) {
  for (int i = 0; i < h->nchannels; i++)
    if (strcmp(h->channels[i].name, name) == 0) return &h->channels[i];
  return NULL;
}

int yz_deliver_add_channel(yz_host *h, yz_plugin *p, const char *name,
                           int send_ref, char *err, size_t errlen) {
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
    c->name = yz_strdup(name);
  } else {
    luaL_unref(p->sb->L, LUA_REGISTRYINDEX, c->send_ref);
  }
  c->p = p;
  c->send_ref = send_ref;
  return YZ_OK;
}

void yz_deliver_forget(yz_host *h, yz_plugin *p) {
  if (h->bus) yz_bus_forget(h->bus, p);
  int k = 0;
  for (int i = 0; i < h->nchannels; i++) {
    if (h->channels[i].p == p)
      free(h->channels[i].name);
    else
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

static int push_msg(lua_State *L, void *ud) {
  const yz_msg *m = ud;
  lua_createtable(L, 0, 14);
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
  if (m->meta) {
    char err[256];
    if (yz_json_decode(L, m->meta, strlen(m->meta), err, sizeof err) == 0)
      lua_setfield(L, -2, "meta");
  }
  return 1;
}

/* The first line of an error, for last_error. */
static void first_line(const char *s, char *dst, size_t n) {
  yz_fmt(dst, n, "%s", s ? s : "failed");
  char *nl = strchr(dst, '\n');
  if (nl) *nl = 0;
}

/* A channel's send ended: its results tell the outcome.
**   return true [, gateway_id]                     sent
**   return nil, reason [, "permanent" | { permanent = true,
**                                        retry_after = seconds }]  failed
** An error raised is a transient failure. */
/* What a channel's send returned, read under protection (reading may
** allocate; the values are read raw, so no plugin code runs). */
typedef struct send_result {
  int sent, permanent;
  double retry_after;
  char gw[128], why[512];
} send_result;

static int read_result(lua_State *L) {
  send_result *r = lua_touserdata(L, 1);
  /* 2, 3, 4: the first three values send returned */
  if (lua_toboolean(L, 2)) {
    r->sent = 1;
    if (lua_type(L, 3) == LUA_TSTRING || lua_type(L, 3) == LUA_TNUMBER)
      yz_fmt(r->gw, sizeof r->gw, "%s", lua_tostring(L, 3));
    return 0;
  }
  if (lua_type(L, 3) == LUA_TSTRING)
    first_line(lua_tostring(L, 3), r->why, sizeof r->why);
  if (lua_type(L, 4) == LUA_TSTRING) {
    r->permanent = strcmp(lua_tostring(L, 4), "permanent") == 0;
  } else if (lua_type(L, 4) == LUA_TTABLE) {
    lua_pushliteral(L, "permanent");
    r->permanent = lua_rawget(L, 4) != LUA_TNIL && lua_toboolean(L, -1);
    lua_pushliteral(L, "retry_after");
    if (lua_rawget(L, 4) == LUA_TNUMBER) r->retry_after = lua_tonumber(L, -1);
  }
  return 0;
}

/* A channel's send ended: its results tell the outcome.
**   return true [, gateway_id]                     sent
**   return nil, reason [, "permanent" | { permanent = true,
**                                        retry_after = seconds }]  failed
** An error raised is a transient failure. */
static void send_done(yz_host *h, yz_task *t, int ok, const char *err) {
  yz_msg *m = t->ud;
  t->ud = NULL;
  if (!m) return;
  send_result r = {0};
  yz_fmt(r.why, sizeof r.why, "the channel reported a failure");
  if (!ok) {
    first_line(err, r.why, sizeof r.why);
    yz_outbox_result(h->outbox, m, YZ_SEND_TRANSIENT, r.why, 0, NULL);
    return;
  }
  lua_State *co = t->co;
  int n = lua_gettop(co);
  lua_pushcfunction(co, read_result);
  lua_pushlightuserdata(co, &r);
  for (int i = 1; i <= 3; i++) {
    if (i <= n)
      lua_pushvalue(co, i);
    else
      lua_pushnil(co);
  }
  if (lua_pcall(co, 4, 0, 0) != LUA_OK) {
    lua_pop(co, 1);
    memset(&r, 0, sizeof r);
    yz_fmt(r.why, sizeof r.why, "the channel's answer could not be read");
  }
  if (r.sent) {
    yz_outbox_result(h->outbox, m, YZ_SEND_SENT, NULL, 0,
                     r.gw[0] ? r.gw : NULL);
    return;
  }
  double ra = r.retry_after;
  if (!(ra > 0)) ra = 0; /* NaN too */
  if (ra > 7 * 86400.0) ra = 7 * 86400.0;
  yz_outbox_result(h->outbox, m,
                   r.permanent ? YZ_SEND_PERMANENT : YZ_SEND_TRANSIENT, r.why,
                   ra, NULL);
}

void yz_deliver_task_drop(yz_host *h, yz_task *t) {
  if (t->wait) {
    /* An HTTP request it waits for: its answer must not reach a freed
    ** task (lapi_msg.c owns the waiter). */
    yz_lapi_http_cancel(h, t);
  }
  yz_msg *m = t->ud;
  t->ud = NULL;
  if (m) {
    /* It may have reached the gateway: in doubt, not a failed attempt. */
    yz_outbox_result(h->outbox, m, YZ_SEND_IN_DOUBT,
                     "the send was cut short before an answer came (in doubt)",
                     0, NULL);
  }
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
  yz_msg **msgs;
  int n = yz_outbox_claim(h->outbox, r->name, 100000, &msgs);
  if (n < 0)
    yz_logf(&h->log, YZ_LOG_ERROR, NULL,
            "cannot claim messages of channel '%s' (trying again in a "
            "second): %s",
            r->name, yz_store_errmsg(h->store));
  for (int i = 0; i < n; i++) {
    yz_msg *m = msgs[i];
    if (h->capture) {
      h->capture(h, m, h->capture_ud);
      yz_outbox_result(h->outbox, m, YZ_SEND_SENT, NULL, 0, "captured");
      continue;
    }
    char what[160], err[1024];
    yz_fmt(what, sizeof what, "channel %s", r->name);
    yz_task *t = yz_task_for_call(h, c->p, c->send_ref, push_msg, m, what,
                                  send_done, err, sizeof err);
    if (!t) {
      yz_outbox_result(h->outbox, m, YZ_SEND_TRANSIENT, err, 0, NULL);
      continue;
    }
    t->drop = yz_deliver_task_drop;
    t->tolerant = 1; /* a gateway's trouble is not the plugin's fault */
    t->deadline_ms = yz_clock_mono_ms() + SEND_DEADLINE_MS;
  }
  free(msgs);
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
      yz_fmt(why, sizeof why,
             "the channel's send did not end within %d s (it may have reached "
             "the gateway)",
             (int)(SEND_DEADLINE_MS / 1000));
      yz_logf(&h->log, YZ_LOG_WARN, t->p->name, "%s: %s", t->what, why);
      yz_msg *m = t->ud;
      t->ud = NULL; /* the drop hook records nothing more */
      yz_outbox_result(h->outbox, m, YZ_SEND_TRANSIENT, why, 0, NULL);
      yz_task_abort(h, t);
    }
    t = next;
  }
}

void yz_deliver_turn(yz_host *h) {
  if (yz_http_running(h->http)) yz_http_perform(h->http);
  if (yz_outbox_in_flight(h->outbox, NULL)) expire_sends(h);
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
  return yz_outbox_next_wake(h->outbox);
}

/* ------------------------------------------------------------ enqueue */

int yz_deliver_check(yz_host *h, const char *raw_to, const char *text,
                     const char *channel, yz_msg_in *in, char *to, size_t tolen,
                     char *err, size_t errlen) {
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
  memset(in, 0, sizeof *in);
  in->channel = r->name;
  in->to = to;
  in->text = text;
  in->parts = cnt.parts;
  in->ucs2 = cnt.ucs2;
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
