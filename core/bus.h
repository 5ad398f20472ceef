/*
** bus.h: publish/subscribe between plugins. A subscription is a topic
** ("registry.child_added"), a prefix pattern ending in ".*" ("message.*")
** or "*", with its owner and the owner's reference to its handler. Events
** are queued as JSON text (plain data, already copied out of the emitter's
** state) and handed out in order by yz_bus_dispatch; running the handlers
** is the caller's business (deliver.c). The bus knows nothing of SQL or
** HTTP, nor of Lua.
*/
#ifndef YZ_BUS_H
#define YZ_BUS_H

#include <stddef.h>

typedef struct yz_bus yz_bus;

typedef struct yz_sub {
  char *topic; /* exact topic, "prefix.*" or "*" */
  void *owner; /* the subscribing plugin */
  int fn_ref;  /* its registry reference to the handler */
} yz_sub;

/* Called for each (event, matching subscription) pair. */
typedef void (*yz_bus_deliver)(void *ud, const char *topic, const char *json,
                               size_t n, const char *origin, const yz_sub *sub);

yz_bus *yz_bus_new(void);
void yz_bus_free(yz_bus *b);
void yz_bus_subscribe(yz_bus *b, const char *topic, void *owner, int fn_ref);
/* Drops the subscriptions of an owner (a plugin being unloaded). */
void yz_bus_forget(yz_bus *b, void *owner);
/* Whether any subscription matches topic. */
int yz_bus_wanted(const yz_bus *b, const char *topic);
/* Queues an event (copied) when someone wants it; 'origin' names who
** emitted it ("core" or a plugin). Returns 1 when queued, 0 when no one
** listens. */
int yz_bus_publish(yz_bus *b, const char *topic, const char *json, size_t n,
                   const char *origin);
/* Hands every queued event to 'deliver', once per matching subscription,
** in order (events queued meanwhile wait for the next call). Returns the
** number of events handed out. */
int yz_bus_dispatch(yz_bus *b, yz_bus_deliver deliver, void *ud);
/* Events waiting. */
int yz_bus_pending(const yz_bus *b);
/* Whether a topic is well formed: 1-128 bytes of letters, digits, '_',
** '-' and '.', not starting or ending with '.'; a subscription may also
** be "*" or end in ".*". */
int yz_bus_topic_ok(const char *topic, int pattern);

#endif
