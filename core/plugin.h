/*
** plugin.h: finding, checking, ordering, starting and stopping plugins.
**
** A plugin is NAME.lua or NAME/init.lua on the plugin path; running it in its
** own sandbox returns the manifest table (see README.md, "Writing a
** plugin"). Enabled plugins start in dependency order: migrations under
** their own access rules, then setup(host, options). Failures are caught,
** recorded in yz_plugins and counted; a plugin that keeps failing is
** quarantined while the host and every other plugin go on.
*/
#ifndef YZ_PLUGIN_H
#define YZ_PLUGIN_H

#include "config.h"
#include "sandbox.h"
#include "store.h"

struct yz_host;
struct yz_buf;

enum {
  YZ_PS_FOUND = 0,  /* on the plugin path, not started */
  YZ_PS_OK,         /* started and healthy */
  YZ_PS_FAILED,     /* could not start, or its last call failed */
  YZ_PS_QUARANTINED /* failed too often in a row: no longer called */
};

enum { YZ_EN_NO = 0, YZ_EN_CONFIG, YZ_EN_CLI }; /* why a plugin is enabled */

typedef struct yz_plugin {
  char *name;           /* unique name, equal to its file or folder name */
  char *version;        /* manifest version */
  char *description;    /* manifest description, or NULL */
  char *file;           /* the Lua file that returns the manifest */
  char *dir;            /* the plugin's folder, or NULL for a single file */
  char **requires;      /* names of plugins it needs */
  int nrequires;        /* entries in requires */
  yz_acl acl;           /* owns and access, for the SQL authorizer */
  int send;             /* access.send: may queue messages */
  int enabled;          /* YZ_EN_*: NO, or why it is enabled */
  int state;            /* YZ_PS_* */
  int failures;         /* consecutive failed calls */
  int config_error;     /* the error is in the configuration: refuse to run */
  char *error;          /* last error, with traceback, or NULL */
  yz_limits limits;     /* memory, instructions, quarantine threshold */
  yz_sandbox *sb;       /* its Lua state, while loaded */
  int manifest_ref;     /* registry reference to the manifest table */
  int host_ref;         /* registry reference to its host table */
  int options_ref;      /* registry reference to its merged options */
  int mark;             /* scratch for dependency ordering */
  int in_setup;         /* its setup is running (host.command) */
  int origin;           /* index of the plugin folder it was found in */
  struct yz_host *host; /* the host it belongs to */
} yz_plugin;

/* Finds every plugin on the path and reads its manifest, replacing the
** host's list. Returns YZ_OK; problems are recorded per plugin. */
int yz_plugins_discover(struct yz_host *h);
/* Starts the enabled plugins in dependency order. Returns YZ_OK when all are
** healthy, YZ_EUSAGE when a configuration error must stop the host (the
** plugin's error says which), YZ_ERR when some plugin failed. */
int yz_plugins_start(struct yz_host *h);
/* Closes every plugin state and forgets the list; accepts an empty host. */
void yz_plugins_unload(struct yz_host *h);
/* Persists 'plugin enable/disable NAME' (it wins over the configuration).
** Returns YZ_OK or the store's error. */
int yz_plugin_set_enabled(yz_store *store, const char *name, int on);
/* Finds a discovered plugin by name, or NULL. */
yz_plugin *yz_plugin_find(struct yz_host *h, const char *name);

/* Calls the function below nargs arguments on p's stack in its sandbox and
** does the accounting: a failure is logged with its traceback, counted and
** recorded; past the plugin's threshold it is quarantined. 'what' says what
** was called ("setup", "job monthly"). Returns YZ_OK or YZ_ERR. */
int yz_plugin_call(yz_plugin *p, int nargs, int nresults, const char *what);
/* Accounts for the outcome of a call into p: err NULL is a success (the
** failure count resets); otherwise the failure is logged with 'what',
** counted and recorded, and past the threshold p is quarantined. */
void yz_plugin_outcome(yz_plugin *p, const char *what, const char *err);
/* Pushes an environment for code run inside p from outside (eval, tests):
** 'host' and 'options', with the plugin's globals behind them. */
void yz_plugin_push_env(yz_plugin *p);
/* Runs a snippet in p's sandbox with 'host' and 'options' in scope and
** appends a readable rendering of its results (or the error) to out.
** Returns YZ_OK or YZ_ERR. Failures here are not counted. */
int yz_plugin_eval(yz_plugin *p, const char *code, struct yz_buf *out);
const char *yz_plugin_state_name(int state);

#endif
