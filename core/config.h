/*
** config.h: the host configuration, a Lua file evaluated as data.
**
** The file runs in a sandbox without libraries; its only function is
** env("NAME" [, default]) for secrets. The resulting globals are checked
** against a schema: an unknown key, a wrong type or a bad value is an error
** that names the file, the line, the key's path, what was expected and, for
** a near miss, the key that was probably meant.
*/
#ifndef YZ_CONFIG_H
#define YZ_CONFIG_H

#include <stddef.h>

#include "calendar.h"
#include "outbox.h"

struct lua_State;

typedef struct yz_limits {
  size_t memory;          /* bytes a plugin's Lua state may allocate */
  long long instructions; /* VM instructions per entry into a plugin */
  int quarantine_after;   /* consecutive failures before quarantine */
} yz_limits;

typedef struct yz_plugin_conf {
  char *name;       /* plugin name, a key of 'plugins' */
  int enabled;      /* false when written as name = false */
  int has_limits;   /* plugin_limits has an entry for it */
  yz_limits limits; /* effective limits (global ones merged in) */
} yz_plugin_conf;

/* A message template (config 'templates'): its local rendering, with
** {{name}} placeholders, used for previews, simulate, the file channel and
** counting parts; the provider's own copy is what it approved. */
typedef struct yz_template {
  char *name;
  char *text;    /* "{{child}}本月还没有给父母写信" */
  char **params; /* the placeholders, in order of first appearance */
  int nparams;
} yz_template;

/* How a channel that sends only approved templates names one: the
** provider's template code and the parameters in the provider's order. */
typedef struct yz_tpl_map {
  char *name;    /* the template (a key of 'templates') */
  char *code;    /* "SMS_1234" (Aliyun), "1234567" (Tencent) */
  char **params; /* parameter names, in the provider's order */
  int nparams;
} yz_tpl_map;

/* A configured delivery channel: the outbox's rules plus what the host
** grants the plugin that implements it (its gateway's host, its file). */
typedef struct yz_chan_conf {
  yz_chan_rules rules; /* name, type (= the plugin), limits */
  char *url;           /* the gateway's URL, or NULL */
  char *path;          /* the file it writes, or NULL */
  yz_tpl_map *tpls;    /* its 'templates' map: it sends only these */
  int ntpls;           /* entries in tpls (0 with no map: free text) */
  int templates_only;  /* the channel has a 'templates' map */
} yz_chan_conf;

/* Hosts a plugin may reach with host.http.request (config http_hosts). */
typedef struct yz_http_allow {
  char *plugin;
  char **hosts; /* "name" or "name:port" */
  int nhosts;
} yz_http_allow;

typedef struct yz_config {
  char *path;              /* the file it came from */
  char *timezone;          /* IANA zone, default Asia/Shanghai */
  char *database;          /* database file, relative to the data directory */
  char *log_level;         /* debug, info, warn or error */
  char **plugin_path;      /* extra plugin folders, searched before shipped */
  int nplugin_path;        /* entries in plugin_path */
  yz_limits limits;        /* defaults for every plugin */
  yz_plugin_conf *plugins; /* the 'plugins' table, in file order */
  int nplugins;            /* entries in plugins */
  yz_calendar calendar;    /* the school calendar (empty when not given) */
  int quiet;               /* quiet hours on by default (quiet_hours) */
  int quiet_from;          /* minutes after midnight they start */
  int quiet_to;            /* ... and end */
  yz_chan_conf *channels;  /* the 'channels' table, sorted by name */
  int nchannels;           /* entries in channels */
  char *default_channel;   /* channels.default, or the only channel */
  yz_template *templates;  /* the 'templates' table, sorted by name */
  int ntemplates;          /* entries in templates */
  yz_http_allow *http;     /* the 'http_hosts' table */
  int nhttp;               /* entries in http */
  struct yz_sandbox *sb;   /* the evaluated file, kept for option tables */
  char *source;            /* the file's text, for locating keys */
} yz_config;

/* Loads and validates 'path'. On error returns nonzero, *out is NULL and err
** holds "file:line: key.path: what is wrong". */
int yz_config_load(const char *path, yz_config **out, char *err, size_t errlen);
/* A configuration with every default, as if from an empty file. */
yz_config *yz_config_defaults(void);
void yz_config_free(yz_config *c);
/* The entry for a plugin, or NULL when 'plugins' does not name it. */
const yz_plugin_conf *yz_config_plugin(const yz_config *c, const char *name);
/* The effective limits for a plugin. */
yz_limits yz_config_limits_for(const yz_config *c, const char *name);
/* Copies plugins[name] (a table of option overrides) onto the top of 'to', or
** pushes nil when there is none. Returns nonzero with err set on failure. */
int yz_config_push_options(const yz_config *c, const char *name,
                           struct lua_State *to, char *err, size_t errlen);
/* The configured channel of that name, or NULL. */
const yz_chan_conf *yz_config_channel(const yz_config *c, const char *name);
/* Pushes a copy of the configured table of channel 'name' onto 'to' (nil
** when there is none). Returns nonzero with err set on failure. */
int yz_config_push_channel(const yz_config *c, const char *name,
                           struct lua_State *to, char *err, size_t errlen);
/* The template of that name, or NULL. */
const yz_template *yz_config_template_named(const yz_config *c,
                                            const char *name);
/* channel's entry for template 'name', or NULL. */
const yz_tpl_map *yz_config_tpl_map(const yz_chan_conf *cc, const char *name);
/* Whether a value of a channel's table is secret (its key names a secret:
** "secret" but not "..._id", "password", "token"); such values are masked
** when shown. Values under a "secret" key must come from env(). */
int yz_config_key_is_secret(const char *key);
/* Best-effort line of a dotted key path in the file (0 when unknown). */
int yz_config_line_of(const yz_config *c, const char *keypath);
/* The text 'yizhan init' writes: every option, commented, with its default. */
const char *yz_config_template(void);

#endif
