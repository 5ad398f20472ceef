/*
** lapi_msg.c: messaging for plugins.
**
**   host.emit(topic, data)            -- publish plain data to other plugins
**   host.on(topic, fn(data, ev))      -- subscribe ("a.b", "a.*" or "*")
**   host.send{to=, text=, key=, channel=, not_before=, meta=}
**   host.send{to=, template=, params={...}, ...}  -- an approved template
**       -> { id=, key=, state=, existing= }
**   host.channel{name=, send=fn(msg) [, send_batch=fn(msgs), batch_max=]
**                [, receipts=fn(awaiting), receipts_every=, receipts_window=]}
**                                     -- deliver a channel (see deliver.c)
**   host.channels                     -- configured channels this plugin
**                                        delivers: name -> their table
**   host.http.request{method=, url=, headers=, body=, timeout=, insecure=,
**                     max_size=} -> { status=, headers=, body= } | nil, err
**   host.phone.normalize(s) -> "+86..." | nil, err; host.phone.mask(s)
**   host.sms.count(text) -> { coding=, units=, parts= }
**   host.append(path, text)           -- a channel's own file
**   host.receipt(key, delivered [, detail])  -- a delivery receipt
**   host.receipt{key= | gateway_id=, delivered=, detail=}
*/
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deliver.h"
#include "host.h"
#include "lapi.h"
#include "phone.h"
#include "plugin.h"
#include "sandbox.h"

#define KEY_MAX 200

static yz_plugin *plugin_of(lua_State *L) {
  return yz_sandbox_of(L)->owner;
}

/* ------------------------------------------------------------------ bus */

static int h_emit(lua_State *L) {
  yz_plugin *p = plugin_of(L);
  const char *topic = luaL_checkstring(L, 1);
  if (!yz_bus_topic_ok(topic, 0))
    return luaL_error(L,
                      "host.emit: bad topic '%s' (expected words of letters, "
                      "digits, '_' and '-' joined by '.', like "
                      "\"registry.child_added\")",
                      topic);
  if (strncmp(topic, "message.", 8) == 0 || strncmp(topic, "core.", 5) == 0)
    return luaL_error(L,
                      "host.emit: topics under 'message.' and 'core.' are the "
                      "core's own");
  lua_settop(L, 2);
  yz_buf b;
  char err[512];
  yz_buf_init(&b, 1024 * 1024);
  if (yz_json_encode(L, 2, &b, err, sizeof err) != 0) {
    yz_buf_free(&b);
    return luaL_error(L,
                      "host.emit('%s'): the data must be plain (tables, "
                      "strings, numbers, booleans): %s",
                      topic, err);
  }
  yz_deliver_emit(p->host, topic, yz_buf_str(&b), b.len, p->name);
  yz_buf_free(&b);
  return 0;
}

static int h_on(lua_State *L) {
  yz_plugin *p = plugin_of(L);
  const char *topic = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (!yz_bus_topic_ok(topic, 1))
    return luaL_error(L,
                      "host.on: bad topic '%s' (expected \"a.b\", \"a.*\" or "
                      "\"*\")",
                      topic);
  lua_pushvalue(L, 2);
  int ref = luaL_ref(L, LUA_REGISTRYINDEX);
  yz_bus_subscribe(p->host->bus, topic, p, ref);
  return 0;
}

/* ---------------------------------------------------------------- send */

/* The string at idx (a field read raw, kept on the stack so it stays
** alive), NULL for nil; anything else is an error. */
static const char *field_str(lua_State *L, int idx, const char *what) {
  int ty = lua_type(L, idx);
  if (ty == LUA_TNIL) return NULL;
  if (ty != LUA_TSTRING)
    luaL_error(L, "host.send: %s must be a string, got %s", what,
               luaL_typename(L, idx));
  return lua_tostring(L, idx);
}

/* Fields of host.send, read raw into stack slots 2.. in this order. */
static const char *const send_fields[] = {"to",       "text",       "key",
                                          "channel",  "not_before", "meta",
                                          "template", "params",     NULL};

#define PARAMS_MAX 32

/* Reads the params table at idx (raw) into two lists of strings at the
** top of the stack (names, then values); returns their count. */
static int read_params(lua_State *L, int idx) {
  lua_newtable(L);
  lua_newtable(L);
  int names = lua_gettop(L) - 1, n = 0;
  if (lua_isnil(L, idx)) return 0;
  if (!lua_istable(L, idx))
    return luaL_error(L, "host.send: params must be a table, got %s",
                      luaL_typename(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      return luaL_error(L, "host.send: params keys must be names");
    int ty = lua_type(L, -1);
    if (ty != LUA_TSTRING && ty != LUA_TNUMBER)
      return luaL_error(
          L, "host.send: params.%s must be a string or a number, got %s",
          lua_tostring(L, -2), luaL_typename(L, -1));
    if (++n > PARAMS_MAX)
      return luaL_error(L, "host.send: more than %d params", PARAMS_MAX);
    lua_pushvalue(L, -2);
    lua_rawseti(L, names, n);
    lua_pushstring(L, lua_tostring(L, -1)); /* a number as text */
    lua_rawseti(L, names + 1, n);
    lua_pop(L, 1);
  }
  return n;
}

/* Of the 'all' parameters read_params listed (names at stack index lists,
** values at lists + 1), those template tpl uses, into names and values;
** returns how many. A policy passes what it knows and a county's template
** may use less of it: the rest is left out (one the template needs and
** lacks is still an error, from yz_deliver_render). The strings stay held
** by the lists. */
static int used_params(lua_State *L, yz_host *h, const char *tpl, int all,
                       int lists, const char **names, const char **values) {
  const yz_template *t = yz_config_template_named(h->cfg, tpl);
  int n = 0;
  for (int i = 0; i < all; i++) {
    lua_rawgeti(L, lists, i + 1);
    names[n] = lua_tostring(L, -1);
    lua_rawgeti(L, lists + 1, i + 1);
    values[n] = lua_tostring(L, -1);
    lua_pop(L, 2);
    int used = !t;
    for (int j = 0; t && j < t->nparams && !used; j++)
      used = strcmp(t->params[j], names[n]) == 0;
    if (used) n++;
  }
  return n;
}

static int h_send(lua_State *L) {
  yz_plugin *p = plugin_of(L);
  yz_host *h = p->host;
  char err[1024], to[32];
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  if (!p->send)
    return luaL_error(L,
                      "host.send: plugin '%s' may not send messages (add "
                      "access = { send = true } to its manifest)",
                      p->name);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    lua_pop(L, 1);
    int ok = 0;
    for (int i = 0; send_fields[i] && lua_type(L, -1) == LUA_TSTRING; i++)
      ok |= strcmp(lua_tostring(L, -1), send_fields[i]) == 0;
    if (!ok)
      return luaL_error(L,
                        "host.send: unknown field '%s' (expected to, text or "
                        "template and params, key, channel, not_before, "
                        "meta)",
                        luaL_tolstring(L, -1, NULL));
  }
  /* Raw reads: no metamethod runs, and the strings stay on the stack until
  ** the message is written. */
  for (int i = 0; send_fields[i]; i++) {
    lua_pushstring(L, send_fields[i]);
    lua_rawget(L, 1);
  }
  const char *raw_to = field_str(L, 2, "to");
  const char *text = field_str(L, 3, "text");
  const char *key = field_str(L, 4, "key");
  const char *channel = field_str(L, 5, "channel");
  const char *tpl = field_str(L, 8, "template");
  const char *params_json = NULL;
  if (tpl) {
    if (text)
      return luaL_error(L, "host.send: give text or template, not both");
    const char *names[PARAMS_MAX], *values[PARAMS_MAX];
    int n = used_params(L, h, tpl, read_params(L, 9), 10, names, values);
    yz_buf rendered, params;
    yz_buf_init(&rendered, 64 * 1024);
    yz_buf_init(&params, 64 * 1024);
    int rc = yz_deliver_render(h, tpl, names, values, n, &rendered, &params,
                               err, sizeof err);
    size_t l1 = rendered.len, l2 = params.len;
    char *t1 = yz_strdup(yz_buf_str(&rendered));
    char *t2 = yz_strdup(yz_buf_str(&params));
    yz_buf_free(&rendered);
    yz_buf_free(&params);
    if (rc != YZ_OK) {
      free(t1);
      free(t2);
      return luaL_error(L, "host.send: %s", err);
    }
    /* Kept on the stack (slots 12 and 13) while the message is written. */
    if (yz_lapi_push_free(L, t1, l1) != LUA_OK) {
      free(t2);
      return lua_error(L);
    }
    if (yz_lapi_push_free(L, t2, l2) != LUA_OK) return lua_error(L);
    text = lua_tostring(L, -2);
    params_json = lua_tostring(L, -1);
  } else if (!lua_isnil(L, 9)) {
    /* Free text with params: its {{name}} placeholders filled here (a
    ** policy's text option), as host.text.render does. */
    if (!lua_istable(L, 9))
      return luaL_error(L, "host.send: params must be a table, got %s",
                        luaL_typename(L, 9));
    if (!text) return luaL_error(L, "host.send: 'text' is missing or empty");
    lua_pushcfunction(L, yz_lapi_text_render);
    lua_pushvalue(L, 3);
    lua_pushvalue(L, 9);
    lua_call(L, 2, 1); /* stays on the stack while the message is written */
    text = lua_tostring(L, -1);
  }
  yz_msg_in in;
  if (yz_deliver_check(h, raw_to, text, tpl, channel, &in, to, sizeof to, err,
                       sizeof err) != YZ_OK)
    return luaL_error(L, "host.send: %s", err);
  in.params = params_json;
  if (key && (!*key || strlen(key) > KEY_MAX))
    return luaL_error(L, "host.send: 'key' must be 1 to %d bytes", KEY_MAX);
  int64_t not_before = 0, now = yz_clock_now_ms(&h->clock);
  int ty = lua_type(L, 6);
  if (ty == LUA_TNUMBER) {
    double v = lua_tonumber(L, 6);
    /* Seconds; a value in ms (host.now_ms()) would park it for millennia. */
    if (!(v >= 0 && v * 1000 < (double)now + 366.0 * 86400 * 1000))
      return luaL_error(L,
                        "host.send: not_before must be seconds since the "
                        "epoch within a year from now, got %f",
                        v);
    not_before = (int64_t)(v * 1000);
  } else if (ty == LUA_TSTRING) {
    int64_t t;
    if (yz_parse_local(lua_tostring(L, 6), h->cfg->timezone, &t) != 0)
      return luaL_error(L,
                        "host.send: not_before '%s' is not \"YYYY-MM-DD "
                        "HH:MM\" (local time) or seconds since the epoch",
                        lua_tostring(L, 6));
    not_before = t * 1000;
  } else if (ty != LUA_TNIL) {
    return luaL_error(L, "host.send: not_before must be a time, got %s",
                      luaL_typename(L, 6));
  }
  yz_buf meta;
  yz_buf_init(&meta, 64 * 1024);
  if (!lua_isnil(L, 7) && yz_json_encode(L, 7, &meta, err, sizeof err) != 0) {
    yz_buf_free(&meta);
    return luaL_error(L, "host.send: meta: %s", err);
  }
  in.key = key;
  in.meta = meta.len ? yz_buf_str(&meta) : NULL;
  in.plugin = p->name;
  in.job = h->current ? h->current->job_name : NULL;
  in.not_before_ms = not_before;
  int64_t id;
  int existed;
  int rc = yz_outbox_enqueue(h->outbox, &in, &id, &existed, err, sizeof err);
  yz_buf_free(&meta);
  if (rc != YZ_OK) return luaL_error(L, "host.send: %s", err);
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, id);
  lua_setfield(L, -2, "id");
  lua_pushboolean(L, existed);
  lua_setfield(L, -2, "existing");
  /* Copied out first: pushing may raise (the memory cap). */
  char mkey[KEY_MAX + 64] = "", mstate[16] = "";
  yz_msg *m = NULL;
  if (key && !existed) { /* just queued: no need to read it back */
    yz_fmt(mkey, sizeof mkey, "%s", key);
    yz_fmt(mstate, sizeof mstate, "queued");
  } else if (yz_outbox_get(h->outbox, id, &m) == YZ_OK) {
    yz_fmt(mkey, sizeof mkey, "%s", m->key);
    yz_fmt(mstate, sizeof mstate, "%s", m->state);
    yz_msg_free(m);
  }
  lua_pushstring(L, mkey);
  lua_setfield(L, -2, "key");
  lua_pushstring(L, mstate);
  lua_setfield(L, -2, "state");
  return 1;
}

/* ------------------------------------------------------------- channel */

/* A function field of host.channel's table (raw), as a registry
** reference, or LUA_NOREF when absent. */
static int fn_field(lua_State *L, const char *name, int required) {
  lua_pushstring(L, name);
  int ty = lua_rawget(L, 1);
  if (ty == LUA_TNIL && !required) {
    lua_pop(L, 1);
    return LUA_NOREF;
  }
  if (ty != LUA_TFUNCTION)
    return luaL_error(L, "host.channel: '%s' must be a function", name);
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

static double num_field(lua_State *L, const char *name, double dflt, double lo,
                        double hi) {
  lua_pushstring(L, name);
  int ty = lua_rawget(L, 1);
  double v = dflt;
  if (ty == LUA_TNUMBER)
    v = lua_tonumber(L, -1);
  else if (ty != LUA_TNIL)
    return luaL_error(L, "host.channel: '%s' must be a number", name);
  lua_pop(L, 1);
  if (!(v >= lo && v <= hi))
    return luaL_error(L, "host.channel: '%s' must be from %g to %g, got %g",
                      name, lo, hi, v);
  return v;
}

static int h_channel(lua_State *L) {
  yz_plugin *p = plugin_of(L);
  char err[512];
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_pushliteral(L, "name");
  if (lua_rawget(L, 1) != LUA_TSTRING)
    return luaL_error(L, "host.channel: 'name' must be a string");
  const char *name = lua_tostring(L, 2);
  /* Numbers first: nothing to release when they are wrong. */
  yz_channel_reg reg;
  reg.batch_max = (int)num_field(L, "batch_max", 1, 1, 10000);
  reg.receipts_every = num_field(L, "receipts_every", 60, 1, 86400);
  reg.receipts_window =
      num_field(L, "receipts_window", 2 * 86400, 60, 31 * 86400);
  reg.send_ref = fn_field(L, "send", 1);
  reg.batch_ref = LUA_NOREF;
  reg.receipts_ref = LUA_NOREF;
  lua_pushliteral(L, "send_batch");
  int has_batch = lua_rawget(L, 1) != LUA_TNIL;
  lua_pushliteral(L, "receipts");
  int has_receipts = lua_rawget(L, 1) != LUA_TNIL;
  lua_pop(L, 2);
  if (has_batch || has_receipts) {
    /* Checked before taking references, so an error leaks none. */
    lua_pushliteral(L, "send_batch");
    int bt = lua_rawget(L, 1);
    lua_pushliteral(L, "receipts");
    int rt = lua_rawget(L, 1);
    lua_pop(L, 2);
    if ((bt != LUA_TNIL && bt != LUA_TFUNCTION) ||
        (rt != LUA_TNIL && rt != LUA_TFUNCTION)) {
      luaL_unref(L, LUA_REGISTRYINDEX, reg.send_ref);
      return luaL_error(L,
                        "host.channel: 'send_batch' and 'receipts' must be "
                        "functions");
    }
  }
  if (has_batch) reg.batch_ref = fn_field(L, "send_batch", 1);
  if (has_receipts) reg.receipts_ref = fn_field(L, "receipts", 1);
  if (yz_deliver_add_channel(p->host, p, name, &reg, err, sizeof err) !=
      YZ_OK) {
    luaL_unref(L, LUA_REGISTRYINDEX, reg.send_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, reg.batch_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, reg.receipts_ref);
    return luaL_error(L, "host.channel: %s", err);
  }
  return 0;
}

/* host.receipt(key, delivered [, detail]) or host.receipt{key= |
** gateway_id=, delivered=, detail=}: returns true when recorded, or
** false and why (an unknown message, one not sent). */
static int h_receipt(lua_State *L) {
  yz_plugin *p = plugin_of(L);
  yz_host *h = p->host;
  const char *key, *gw = NULL, *detail;
  int delivered;
  if (lua_istable(L, 1)) {
    lua_settop(L, 1);
    lua_pushliteral(L, "key");
    lua_rawget(L, 1); /* 2 */
    lua_pushliteral(L, "gateway_id");
    lua_rawget(L, 1); /* 3 */
    lua_pushliteral(L, "delivered");
    lua_rawget(L, 1); /* 4 */
    lua_pushliteral(L, "detail");
    lua_rawget(L, 1); /* 5 */
    key = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
    gw = lua_type(L, 3) == LUA_TSTRING ? lua_tostring(L, 3) : NULL;
    if (!key && !gw)
      return luaL_error(L, "host.receipt: give key or gateway_id");
    delivered = lua_toboolean(L, 4);
    detail = lua_type(L, 5) == LUA_TSTRING ? lua_tostring(L, 5) : NULL;
  } else {
    key = luaL_checkstring(L, 1);
    delivered = lua_toboolean(L, 2);
    detail = luaL_optstring(L, 3, NULL);
  }
  char found[256];
  if (!key) {
    /* Only among the channels this plugin delivers: another's gateway may
    ** use the same ids. */
    int rc = YZ_ENOTFOUND;
    for (int i = 0; i < h->nchannels && rc != YZ_OK; i++)
      if (h->channels[i].p == p)
        rc = yz_outbox_key_of(h->outbox, h->channels[i].name, gw, found,
                              sizeof found);
    if (rc != YZ_OK) {
      lua_pushboolean(L, 0);
      lua_pushfstring(L, "no message with gateway id '%s'", gw);
      return 2;
    }
    key = found;
  }
  yz_msg *m;
  if (yz_outbox_get_key(h->outbox, key, &m) != YZ_OK) {
    lua_pushboolean(L, 0);
    lua_pushfstring(L, "no message with key '%s'", key);
    return 2;
  }
  yz_channel *c = yz_deliver_channel(h, m->channel);
  yz_msg_free(m);
  if (!c || c->p != p)
    return luaL_error(L,
                      "host.receipt: message '%s' is not on a channel this "
                      "plugin delivers",
                      key);
  int rc = yz_outbox_receipt(h->outbox, key, delivered, detail);
  lua_pushboolean(L, rc == YZ_OK);
  if (rc == YZ_OK) return 1;
  lua_pushstring(L, "the message is not sent (no receipt applies)");
  return 2;
}

static int h_append(lua_State *L) {
  yz_plugin *p = plugin_of(L);
  const char *path = luaL_checkstring(L, 1);
  size_t n;
  const char *text = luaL_checklstring(L, 2, &n);
  char *file = yz_deliver_file_allowed(p->host, p, path);
  if (!file)
    return luaL_error(L,
                      "host.append: '%s' is not the path of a channel this "
                      "plugin delivers",
                      path);
  int fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", file, strerror(errno));
    free(file);
    return 2;
  }
  size_t off = 0;
  while (off < n) {
    ssize_t w = write(fd, text + off, n - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    off += (size_t)w;
  }
  int saved = errno;
  close(fd);
  if (off < n) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", file, strerror(saved));
    free(file);
    return 2;
  }
  free(file);
  lua_pushboolean(L, 1);
  return 1;
}

/* ---------------------------------------------------------------- phone */

static int phone_normalize(lua_State *L) {
  char out[32], err[512];
  const char *s = luaL_checkstring(L, 1);
  if (yz_phone_normalize(s, out, sizeof out, err, sizeof err) != YZ_OK) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushstring(L, out);
  return 1;
}

static int phone_mask(lua_State *L) {
  char out[64];
  yz_phone_mask(luaL_checkstring(L, 1), out, sizeof out);
  lua_pushstring(L, out);
  return 1;
}

static int sms_count(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  yz_sms_count c;
  if (yz_sms_count_text(s, n, &c) != YZ_OK)
    return luaL_error(L, "host.sms.count: not valid UTF-8");
  lua_createtable(L, 0, 3);
  lua_pushstring(L, c.ucs2 ? "ucs2" : "gsm7");
  lua_setfield(L, -2, "coding");
  lua_pushinteger(L, c.units);
  lua_setfield(L, -2, "units");
  lua_pushinteger(L, c.parts);
  lua_setfield(L, -2, "parts");
  return 1;
}

/* host.sms.render(template, params) -> text | nil, err: the local text of
** a configured template, as host.send would queue it (previews). */
static int sms_render(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  lua_settop(L, 2);
  const char *names[PARAMS_MAX], *values[PARAMS_MAX];
  int n = used_params(L, plugin_of(L)->host, name, read_params(L, 2), 3, names,
                      values);
  yz_buf text, json;
  yz_buf_init(&text, 64 * 1024);
  yz_buf_init(&json, 64 * 1024);
  char err[1024];
  int rc = yz_deliver_render(plugin_of(L)->host, name, names, values, n, &text,
                             &json, err, sizeof err);
  yz_buf_free(&json);
  if (rc != YZ_OK) {
    yz_buf_free(&text);
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  size_t len = text.len;
  char *s = yz_strdup(yz_buf_str(&text));
  yz_buf_free(&text);
  if (yz_lapi_push_free(L, s, len) != LUA_OK) return lua_error(L);
  return 1;
}

/* ----------------------------------------------------------------- http */

typedef struct http_wait {
  yz_host *h;
  yz_task *t;
  void *handle; /* the request, until it ends */
  int ok, timed_out;
  long status;
  char *headers, *body;
  size_t hlen, blen;
  char err[256];
} http_wait;

static void http_wait_free(http_wait *w) {
  free(w->headers);
  free(w->body);
  free(w);
}

static int push_answer(lua_State *co, yz_task *t);

static void http_done(void *ud, const yz_http_resp *r) {
  http_wait *w = ud;
  w->handle = NULL;
  w->ok = r->ok;
  w->timed_out = r->timed_out;
  w->status = r->status;
  yz_fmt(w->err, sizeof w->err, "%s", r->err);
  w->headers = yz_xmalloc(r->hlen + 1);
  memcpy(w->headers, r->headers, r->hlen);
  w->headers[r->hlen] = 0;
  w->hlen = r->hlen;
  w->body = yz_xmalloc(r->blen + 1);
  memcpy(w->body, r->body, r->blen);
  w->body[r->blen] = 0;
  w->blen = r->blen;
  yz_task_wake(w->t, 0); /* ready in this very turn */
  w->t->wait = w;        /* kept for the push; yz_task_wake cleared it */
  w->t->push = push_answer;
}

void yz_lapi_http_cancel(yz_host *h, yz_task *t) {
  http_wait *w = t->wait;
  if (!w) return;
  if (w->handle) yz_http_cancel(h->http, w->handle);
  http_wait_free(w);
  t->wait = NULL;
}

static void push_headers(lua_State *L, const char *hd, size_t n) {
  lua_newtable(L);
  const char *p = hd, *end = hd + n;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol) eol = end;
    const char *colon = memchr(p, ':', (size_t)(eol - p));
    if (colon && strncmp(p, "HTTP/", 5) != 0) {
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      for (const char *q = p; q < colon; q++) {
        char c = *q;
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        luaL_addchar(&b, c);
      }
      luaL_pushresult(&b);
      const char *v = colon + 1, *ve = eol;
      while (v < ve && (*v == ' ' || *v == '\t')) v++;
      while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ')) ve--;
      lua_pushlstring(L, v, (size_t)(ve - v));
      lua_settable(L, -3);
    }
    p = eol + 1;
  }
}

/* Pushes the answer as { status=, headers= { lower-case name = value },
** body= } or nil, error. */
/* Builds the answer in the plugin's main state, under protection: a body
** past the plugin's memory cap is an error there, not an abort. */
static int build_answer(lua_State *L) {
  http_wait *w = lua_touserdata(L, 1);
  if (!w->ok) {
    lua_pushnil(L);
    lua_pushstring(L, w->timed_out ? "timeout" : w->err);
    return 2;
  }
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, w->status);
  lua_setfield(L, -2, "status");
  push_headers(L, w->headers, w->hlen);
  lua_setfield(L, -2, "headers");
  lua_pushlstring(L, w->body, w->blen);
  lua_setfield(L, -2, "body");
  return 1;
}

static int push_answer(lua_State *co, yz_task *t) {
  http_wait *w = t->wait;
  t->wait = NULL;
  if (!w) return 0;
  lua_State *L = t->p->sb->L;
  int top = lua_gettop(L);
  lua_pushcfunction(L, build_answer);
  lua_pushlightuserdata(L, w);
  int n;
  if (lua_pcall(L, 1, LUA_MULTRET, 0) == LUA_OK) {
    n = lua_gettop(L) - top;
  } else { /* nil and the error (Lua's own "not enough memory") */
    lua_pushnil(L);
    lua_insert(L, -2);
    n = 2;
  }
  http_wait_free(w);
  /* Moving values between threads of one state allocates nothing. */
  if (!lua_checkstack(co, n)) n = 0;
  if (n) lua_xmove(L, co, n);
  lua_settop(L, top);
  return n;
}

static int http_request(lua_State *L) {
  yz_plugin *p = plugin_of(L);
  yz_host *h = p->host;
  luaL_checktype(L, 1, LUA_TTABLE);
  yz_task *t = h->current;
  /* Only the task's own coroutine may wait: a yield from a coroutine the
  ** plugin made itself would return to the plugin, not to the loop. */
  if (!t || t->p != p || t->co != (void *)L || t->wait || !lua_isyieldable(L))
    return luaL_error(L,
                      "host.http.request waits for the answer: call it from a "
                      "job, an event handler or a channel's send (not from "
                      "setup, a coroutine of the plugin's own or a protected "
                      "C call)");
  lua_getfield(L, 1, "url");
  const char *url = lua_tostring(L, -1);
  if (!url) return luaL_error(L, "host.http.request: 'url' is missing");
  char hostport[300];
  if (yz_http_url_host(url, hostport, sizeof hostport) != 0)
    return luaL_error(L, "host.http.request: not an http(s) URL: %s", url);
  if (!yz_deliver_host_allowed(h, p, hostport))
    return luaL_error(L,
                      "host.http.request: plugin '%s' may not reach '%s' (add "
                      "it to http_hosts.%s in the config)",
                      p->name, hostport, p->name);
  lua_getfield(L, 1, "method");
  const char *method = luaL_optstring(L, -1, "GET");
  if (!*method ||
      strspn(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(method))
    return luaL_error(L,
                      "host.http.request: method must be upper-case letters "
                      "(GET, POST, ...)");
  lua_getfield(L, 1, "body");
  size_t blen = 0;
  const char *body = lua_isnil(L, -1) ? NULL : luaL_checklstring(L, -1, &blen);
  lua_getfield(L, 1, "timeout");
  double timeout = luaL_optnumber(L, -1, 30);
  if (!(timeout > 0 && timeout <= 120))
    return luaL_error(L,
                      "host.http.request: timeout must be above 0 and at most "
                      "120 seconds");
  lua_getfield(L, 1, "insecure");
  int insecure = lua_toboolean(L, -1);
  if (insecure && !yz_deliver_insecure_allowed(h, p))
    return luaL_error(L,
                      "host.http.request: insecure = true needs a channel of "
                      "this plugin configured with insecure = true");
  lua_getfield(L, 1, "max_size");
  lua_Integer max_size = luaL_optinteger(L, -1, 1024 * 1024);
  if (max_size < 1 || max_size > 16 * 1024 * 1024)
    return luaL_error(L, "host.http.request: max_size must be 1 to 16777216");
  /* Headers: a table name = string, read with nothing that allocates
  ** (an error here must not leak the buffer). */
  const char *hdrs[64];
  int nh = 0;
  size_t offs[64];
  int ht = lua_getfield(L, 1, "headers");
  if (ht != LUA_TNIL && ht != LUA_TTABLE)
    return luaL_error(L, "host.http.request: headers must be a table");
  if (ht == LUA_TTABLE) {
    int hidx = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, hidx)) {
      if (nh == 64 || lua_type(L, -2) != LUA_TSTRING ||
          lua_type(L, -1) != LUA_TSTRING)
        return luaL_error(L,
                          "host.http.request: headers must be a table of "
                          "name = string (at most 64)");
      const char *k = lua_tostring(L, -2), *v = lua_tostring(L, -1);
      if (strpbrk(k, "\r\n:") || strpbrk(v, "\r\n"))
        return luaL_error(L, "host.http.request: a header has a line break");
      nh++;
      lua_pop(L, 1);
    }
  }
  yz_buf hb;
  yz_buf_init(&hb, 64 * 1024);
  nh = 0;
  if (ht == LUA_TTABLE) {
    int hidx = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, hidx)) {
      offs[nh++] = hb.len;
      yz_buf_addf(&hb, "%s: %s", lua_tostring(L, -2), lua_tostring(L, -1));
      yz_buf_addc(&hb, 0);
      lua_pop(L, 1);
    }
  }
  for (int i = 0; i < nh; i++) hdrs[i] = hb.data + offs[i];
  yz_http_req req = {.method = method,
                     .url = url,
                     .headers = hdrs,
                     .nheaders = nh,
                     .body = body,
                     .bodylen = blen,
                     .timeout_ms = (long)(timeout * 1000),
                     .max_response = (size_t)(max_size > 0 ? max_size : 1),
                     .insecure = insecure};
  http_wait *w = yz_xcalloc(1, sizeof *w);
  w->h = h;
  w->t = t;
  char err[512];
  w->handle = yz_http_start(h->http, &req, http_done, w, err, sizeof err);
  yz_buf_free(&hb);
  if (!w->handle) {
    free(w);
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  t->wait = w;
  t->unwait = yz_lapi_http_cancel;
  lua_pushlightuserdata(L, (void *)yz_task_wait_mark());
  return lua_yield(L, 1);
}

/* ------------------------------------------------------------ the table */

void yz_lapi_open_msg(lua_State *L, yz_plugin *p) {
  static const luaL_Reg fns[] = {{"emit", h_emit},
                                 {"on", h_on},
                                 {"send", h_send},
                                 {"channel", h_channel},
                                 {"receipt", h_receipt},
                                 {"append", h_append},
                                 {NULL, NULL}};
  static const luaL_Reg http_fns[] = {{"request", http_request}, {NULL, NULL}};
  static const luaL_Reg phone_fns[] = {
      {"normalize", phone_normalize}, {"mask", phone_mask}, {NULL, NULL}};
  static const luaL_Reg sms_fns[] = {
      {"count", sms_count}, {"render", sms_render}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
  luaL_newlib(L, http_fns);
  lua_setfield(L, -2, "http");
  luaL_newlib(L, phone_fns);
  lua_setfield(L, -2, "phone");
  luaL_newlib(L, sms_fns);
  lua_setfield(L, -2, "sms");
  /* The configured channels this plugin delivers. */
  lua_newtable(L);
  yz_host *h = p->host;
  for (int i = 0; h && h->cfg && i < h->cfg->nchannels; i++) {
    const yz_chan_conf *cc = &h->cfg->channels[i];
    if (strcmp(cc->rules.type, p->name) != 0) continue;
    char err[256];
    if (yz_config_push_channel(h->cfg, cc->rules.name, L, err, sizeof err) == 0)
      lua_setfield(L, -2, cc->rules.name);
  }
  lua_setfield(L, -2, "channels");
}
