/*
** lapi_sched.c: scheduling for plugins.
**
**   host.cron(name, spec, fn [, {grace = seconds}])  -- any spec (spec.h)
**   host.every(name, interval, fn [, opts])  -- "15m", "2h" or seconds
**   host.at(name, "YYYY-MM-DD HH:MM", fn [, opts])   -- once
**   host.after(seconds, fn)      -- an in-memory timer, gone at restart
**   host.cancel(name) -> true if there was such a job
**   host.sleep(seconds)          -- inside a job or timer: wait, then go on
**   host.calendar.term(date) -> { name, start, mid, end } | nil
**   host.calendar.is_school_day(date), .next_school_day(date) -> date | nil,
**   host.calendar.holiday(date) -> name | nil  (dates "YYYY-MM-DD";
**   without one, today in the configured zone)
**
** Jobs persist in yz_jobs: registering the same name again (every start,
** every reload) updates it. A job's function gets a run table: job, plugin,
** spec, scheduled (seconds since the epoch) and period ("2026-10" for a
** monthly job), good for idempotency keys.
*/
#include <lauxlib.h>
#include <string.h>

#include "host.h"
#include "lapi.h"
#include "clock.h"
#include "plugin.h"
#include "sched.h"
#include "task.h"

#define DEFAULT_GRACE 86400 /* a missed run may be a day late */

static yz_plugin *plugin_of(lua_State *L) {
  return yz_sandbox_of(L)->owner;
}

static const char *check_name(lua_State *L, const char *fn) {
  size_t n;
  const char *name = luaL_checklstring(L, 1, &n);
  int ok = n > 0 && n <= 64;
  for (size_t i = 0; ok && i < n; i++) {
    char c = name[i];
    ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
  }
  if (!ok)
    luaL_error(L,
               "%s: a job name is 1 to 64 letters, digits, '_', '-' or "
               "'.', got '%s'",
               fn, name);
  return name;
}

/* Registers job 'name': arguments name, spec, fn, options at 1-4 (padded
** with nil) and the spec text to parse at 5. */
static int register_job(lua_State *L, const char *fn) {
  yz_plugin *p = plugin_of(L);
  yz_host *h = p->host;
  const char *name = check_name(L, fn);
  const char *text = lua_tostring(L, 5);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  lua_Integer grace = DEFAULT_GRACE;
  if (lua_istable(L, 4)) {
    lua_getfield(L, 4, "grace");
    if (!lua_isnil(L, -1)) {
      grace = lua_tointeger(L, -1);
      if (!lua_isinteger(L, -1) || grace < 0)
        return luaL_error(L, "%s('%s'): grace is a whole number of seconds", fn,
                          name);
    }
    lua_pop(L, 1);
  } else if (!lua_isnoneornil(L, 4)) {
    return luaL_error(L,
                      "%s('%s'): options are a table like { grace = "
                      "3600 }",
                      fn, name);
  }
  char err[1024];
  yz_spec *spec;
  if (yz_spec_parse(text, &h->cfg->calendar, &spec, err, sizeof err) != YZ_OK)
    return luaL_error(L, "%s('%s'): %s", fn, name, err);
  /* A job registered again under its name replaces the old function. */
  yz_job *old = yz_sched_find(h->sched, p->name, name);
  int old_ref = old ? old->fn_ref : LUA_NOREF;
  lua_pushvalue(L, 3);
  int ref = luaL_ref(L, LUA_REGISTRYINDEX);
  int64_t now = yz_clock_now_ms(&h->clock) / 1000;
  if (!yz_sched_register(h->sched, p, p->name, name, spec, grace, ref, now, err,
                         sizeof err)) {
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    return luaL_error(L, "%s('%s'): %s", fn, name, err);
  }
  luaL_unref(L, LUA_REGISTRYINDEX, old_ref);
  return 0;
}

static int h_cron(lua_State *L) {
  luaL_checkstring(L, 2);
  lua_settop(L, 4);
  lua_pushvalue(L, 2);
  return register_job(L, "host.cron");
}

static int h_every(lua_State *L) {
  lua_settop(L, 4);
  if (lua_type(L, 2) == LUA_TNUMBER) {
    lua_Integer secs = lua_tointeger(L, 2);
    if (!lua_isinteger(L, 2) || secs < 1)
      return luaL_error(L,
                        "host.every: the interval is a whole number of "
                        "seconds or a text like '15m'");
    lua_pushfstring(L, "every %Is", secs);
  } else {
    lua_pushfstring(L, "every %s", luaL_checkstring(L, 2));
  }
  return register_job(L, "host.every");
}

static int h_at(lua_State *L) {
  lua_settop(L, 4);
  lua_pushfstring(L, "at %s", luaL_checkstring(L, 2));
  return register_job(L, "host.at");
}

static int h_after(lua_State *L) {
  lua_Number secs = luaL_checknumber(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  luaL_argcheck(L, secs >= 0 && secs < 1e9, 1,
                "a delay in seconds, from 0 to under 31 years");
  yz_plugin *p = plugin_of(L);
  lua_pushvalue(L, 2);
  int ref = luaL_ref(L, LUA_REGISTRYINDEX);
  char err[512];
  int64_t wake = yz_clock_now_ms(&p->host->clock) + (int64_t)(secs * 1000);
  yz_task *t = yz_task_for_ref(p->host, p, ref, wake, "timer", err, sizeof err);
  luaL_unref(L, LUA_REGISTRYINDEX, ref); /* the task's coroutine holds it */
  if (!t) return luaL_error(L, "host.after: %s", err);
  return 0;
}

static int h_cancel(lua_State *L) {
  const char *name = check_name(L, "host.cancel");
  yz_plugin *p = plugin_of(L);
  int ref = yz_sched_cancel(p->host->sched, p->name, name);
  if (ref >= 0) luaL_unref(L, LUA_REGISTRYINDEX, ref);
  lua_pushboolean(L, ref >= 0);
  return 1;
}

static int h_sleep(lua_State *L) {
  lua_Number secs = luaL_checknumber(L, 1);
  luaL_argcheck(L, secs >= 0 && secs < 1e9, 1,
                "seconds, from 0 to under 31 years");
  if (yz_sandbox_of(L)->task != L || !lua_isyieldable(L))
    return luaL_error(L,
                      "host.sleep: only a job or timer can sleep, from "
                      "its own function (not setup, not inside "
                      "host.db.tx or a coroutine of the plugin's)");
  lua_pushlightuserdata(L, (void *)yz_task_sleep_mark());
  lua_pushnumber(L, secs);
  return lua_yield(L, 2);
}

void yz_lapi_open_sched(lua_State *L) {
  static const luaL_Reg funcs[] = {{"cron", h_cron},     {"every", h_every},
                                   {"at", h_at},         {"after", h_after},
                                   {"cancel", h_cancel}, {"sleep", h_sleep},
                                   {NULL, NULL}};
  luaL_setfuncs(L, funcs, 0);
}

/* ------------------------------------------------------------ calendar */

/* host.calendar.*(date): a date is "YYYY-MM-DD"; omitted, today (local). */
static int64_t check_day(lua_State *L, int idx) {
  yz_plugin *p = plugin_of(L);
  if (lua_isnoneornil(L, idx)) {
    yz_tm tm;
    yz_clock_local(p->host->cfg->timezone,
                   yz_clock_now_ms(&p->host->clock) / 1000, &tm);
    return yz_days_from_civil(tm.year, tm.mon, tm.day);
  }
  const char *s = luaL_checkstring(L, idx);
  int64_t day;
  if (yz_parse_date(s, &day) != 0)
    luaL_error(L, "'%s' is not a date (expected YYYY-MM-DD)", s);
  return day;
}

static void push_day(lua_State *L, int64_t day) {
  int y, m, d;
  yz_civil_from_days(day, &y, &m, &d);
  lua_pushfstring(L, "%d-%s%d-%s%d", y, m < 10 ? "0" : "", m, d < 10 ? "0" : "",
                  d);
}

static int cal_term(lua_State *L) {
  int64_t day = check_day(L, 1);
  const yz_term *t = yz_calendar_term(&plugin_of(L)->host->cfg->calendar, day);
  if (!t) {
    lua_pushnil(L);
    return 1;
  }
  lua_createtable(L, 0, 4);
  lua_pushstring(L, t->name);
  lua_setfield(L, -2, "name");
  push_day(L, t->start);
  lua_setfield(L, -2, "start");
  push_day(L, t->mid);
  lua_setfield(L, -2, "mid");
  push_day(L, t->end);
  lua_setfield(L, -2, "end");
  return 1;
}

static int cal_is_school_day(lua_State *L) {
  int64_t day = check_day(L, 1);
  lua_pushboolean(
      L, yz_calendar_is_school_day(&plugin_of(L)->host->cfg->calendar, day));
  return 1;
}

static int cal_next_school_day(lua_State *L) {
  int64_t day = check_day(L, 1), next;
  if (yz_calendar_next_school_day(&plugin_of(L)->host->cfg->calendar, day,
                                  &next) != 0) {
    lua_pushnil(L);
    return 1;
  }
  push_day(L, next);
  return 1;
}

static int cal_holiday(lua_State *L) {
  int64_t day = check_day(L, 1);
  const yz_holiday *h =
      yz_calendar_holiday(&plugin_of(L)->host->cfg->calendar, day);
  if (h)
    lua_pushstring(L, h->name);
  else
    lua_pushnil(L);
  return 1;
}

int luaopen_yz_calendar(lua_State *L) {
  static const luaL_Reg funcs[] = {{"term", cal_term},
                                   {"is_school_day", cal_is_school_day},
                                   {"next_school_day", cal_next_school_day},
                                   {"holiday", cal_holiday},
                                   {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
