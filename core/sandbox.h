/*
** sandbox.h: one Lua state per plugin, built from an allow-list.
**
** A sandbox has no io, os, debug or package libraries, no dofile/loadfile,
** 'load' in text mode only, a 'require' limited to Lua files in the plugin's
** own folder, a read-only string library and string metatable, a memory cap
** enforced by the allocator and a CPU budget enforced by a count hook.
**
** The sandbox is reachable from any of its threads through the state's extra
** space, so bindings find their plugin without a registry lookup.
*/
#ifndef YZ_SANDBOX_H
#define YZ_SANDBOX_H

#include <lauxlib.h>
#include <lua.h>
#include <stddef.h>

typedef struct yz_sandbox {
  lua_State *L;          /* the main thread */
  char *name;            /* owner name, for messages ("config", a plugin) */
  char *dir;             /* folder 'require' may load from, or NULL */
  size_t mem_used;       /* bytes allocated by this state */
  size_t mem_limit;      /* cap on mem_used; 0 while unlimited */
  size_t mem_peak;       /* highest mem_used seen */
  long long steps;       /* VM instructions run in the current entry */
  long long step_limit;  /* budget per entry; 0: unlimited */
  int exceeded;          /* set once the current entry ran out of budget */
  int handling;          /* inside the error handler: no budget errors */
  void *owner;           /* the plugin (or NULL), for the host bindings */
  lua_State *task;       /* the coroutine being resumed, or NULL */
  long long slice_start; /* steps when the current slice began */
} yz_sandbox;

/* Creates a sandbox. 'data_only' gives a state with no libraries at all (for
** evaluating the config); otherwise the allow-listed libraries are opened.
** Never returns NULL (aborts when the process has no memory at all). */
yz_sandbox *yz_sandbox_new(const char *name, const char *dir, size_t mem_limit,
                           long long step_limit, int data_only);
/* Closes the state and frees the sandbox; accepts NULL. */
void yz_sandbox_free(yz_sandbox *sb);
/* The sandbox a state (or any of its threads) belongs to. */
yz_sandbox *yz_sandbox_of(lua_State *L);

/* Loads a Lua source file (text only) as a function on top of the stack,
** with the chunk name "@path". On error returns nonzero and writes the
** message (with file and line) into err. */
int yz_sandbox_loadfile(yz_sandbox *sb, const char *path, char *err,
                        size_t errlen);
/* Calls the function below nargs arguments on the stack in protected mode,
** with a fresh CPU budget and a traceback on error. Returns LUA_OK or the
** error status with the message and traceback in err (when err != NULL);
** on error nothing is left on the stack. */
int yz_sandbox_call(yz_sandbox *sb, int nargs, int nresults, char *err,
                    size_t errlen);

/* Resumes the coroutine co (a thread of sb) with nargs arguments on its
** stack, charging it the budget kept in *steps across resumes. A task that
** runs longer than a slice is pre-empted: it yields with no values and is
** resumed later. Returns LUA_OK (finished; *nres results on co), LUA_YIELD
** (*nres values yielded), or an error status with the message and
** traceback in err. */
int yz_sandbox_resume(yz_sandbox *sb, lua_State *co, int nargs,
                      long long *steps, int *nres, char *err, size_t errlen);

/* Charges 'steps' units of work done in C on the plugin's behalf to its CPU
** budget, raising "CPU budget exceeded" (a Lua error in L) once it is spent.
** For C code that loops where the count hook cannot see it. */
void yz_sandbox_charge(lua_State *L, long long steps);
/* Sets find, match, gmatch and gsub in the table on top of the stack:
** Lua 5.4's pattern functions with the matcher's work charged to the budget
** (sandbox_match.c). */
void yz_sandbox_open_match(lua_State *L);

/* Replaces the table at the top of the stack with a read-only view of it
** (modification raises, rawset is refused, pairs and # still work). Nested
** tables are frozen too. 'what' names the table in error messages. */
void yz_sandbox_freeze(lua_State *L, const char *what);

/* Copies the plain value at 'idx' of 'from' onto the top of 'to': nil,
** booleans, numbers, strings and tables of those (no functions, userdata,
** threads or cycles; at most 64 levels). Returns 0 and pushes the copy, or
** nonzero with a message naming the offending path in err (nothing pushed).
** Runs protected in 'to', so a memory cap there is an error, not a crash. */
int yz_sandbox_copy(lua_State *from, int idx, lua_State *to, char *err,
                    size_t errlen);

/* Puts the budget's count hook back after a call made without a budget
** (step_limit 0, a plugin's command), so coroutines created later carry it
** again. */
void yz_sandbox_rearm(yz_sandbox *sb);

#endif
