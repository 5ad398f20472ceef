/*
** lapi.h: the 'host' table plugins see, assembled from one binding file per
** area: lapi_host.c (now, log, audit, options, describe), lapi_db.c (db, kv),
** lapi_json.c (json) and lapi_crypto.c (crypto).
*/
#ifndef YZ_LAPI_H
#define YZ_LAPI_H

#include <lua.h>
#include <stdio.h>

#include "buf.h"

struct yz_plugin;
struct yz_host;

/* Pushes p's read-only host table; the merged options must be on top of the
** stack and are consumed (they become host.options). */
void yz_lapi_push_host(lua_State *L, struct yz_plugin *p);

/* Area tables, each pushed as a new table of functions. */
int luaopen_yz_db(lua_State *L);
int luaopen_yz_kv(lua_State *L);
/* Sets exec and one in the table on top: host.db's, run as the host with no
** table rules (the test API's fixtures: t.exec, t.one). */
void yz_lapi_db_as_host(lua_State *L);
int luaopen_yz_json(lua_State *L);
/* host.crypto: SHA-256, HMAC-SHA1/SHA256, hex, base64, percent-encoding,
** uuid and nonce, for signing requests to SMS providers (OpenSSL). */
int luaopen_yz_crypto(lua_State *L);
int luaopen_yz_log(lua_State *L);
/* host.text: mask_name, date, render, width (lapi_text.c). */
int luaopen_yz_text(lua_State *L);
/* host.text.render(text, params): fills {{name}} placeholders. */
int yz_lapi_text_render(lua_State *L);
/* host.calendar: term, is_school_day, next_school_day, holiday. */
int luaopen_yz_calendar(lua_State *L);
/* Sets cron, every, at, after, cancel and sleep in the table on top. */
void yz_lapi_open_sched(lua_State *L);

/* Sets the messaging functions (emit, on, send, channel, receipt, append,
** http, phone, sms, channels) in the host table on top (lapi_msg.c). */
void yz_lapi_open_msg(lua_State *L, struct yz_plugin *p);
/* Sets host.command in the table on top (lapi_cmd.c). */
void yz_lapi_open_cmd(lua_State *L);
/* The plugin whose command is the longest match of argv's leading words
** (*words of them), or NULL. */
struct yz_plugin *yz_cmd_find(struct yz_host *h, int argc, char **argv,
                              int *words);
/* Lists the plugins' commands (those starting with prefix, or all). */
void yz_cmd_list(struct yz_host *h, const char *prefix, FILE *out);
/* Runs p's command named by argv's first 'words' words with the rest as its
** arguments; relative file paths are taken from 'base' (NULL: the working
** directory). Returns the exit status; events it emitted are handled. */
int yz_cmd_run(struct yz_host *h, struct yz_plugin *p, int words, int argc,
               char **argv, const char *base, FILE *in, FILE *out, FILE *err);
/* Cancels the HTTP request task t waits for, if any. */
struct yz_task;
void yz_lapi_http_cancel(struct yz_host *h, struct yz_task *t);

/* Encodes the value at idx as compact JSON into out (object keys sorted).
** Returns 0, or nonzero with a message naming the path in err. Never raises:
** it runs protected, and runs no plugin code (tables are read raw). */
int yz_json_encode(lua_State *L, int idx, yz_buf *out, char *err,
                   size_t errlen);
/* Decodes JSON text and pushes the value (null as host.json.null). Returns 0,
** or nonzero with "invalid JSON at byte N" in err (nothing pushed). */
int yz_json_decode(lua_State *L, const char *s, size_t n, char *err,
                   size_t errlen);

/* Pushes n bytes of the malloc'd string s and frees s, also when pushing
** fails because the state is at its memory cap. Returns LUA_OK, or an error
** status with the error object pushed instead. */
int yz_lapi_push_free(lua_State *L, char *s, size_t n);

/* Runs the tests in 'file' inside p (lapi_test.c), writing "ok - name" or
** "not ok - name" and the reason to out, and adding to the counts. The log
** capture lets tests read what was logged. */
struct yz_host;
int yz_lapi_run_tests(struct yz_host *h, struct yz_plugin *p, const char *file,
                      FILE *cap, char **capbuf, size_t *caplen, FILE *out,
                      int *passed, int *failed);

/* Appends a readable Lua-like rendering of the value at idx (tables with
** sorted keys, nested at most a few levels) for 'eval' and tests. */
void yz_lapi_describe(lua_State *L, int idx, yz_buf *out);

#endif
