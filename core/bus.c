/*
** bus.c: publish/subscribe between plugins (see bus.h).
*/
#include "bus.h"

#include <stdlib.h>
#include <string.h>

#include "yz.h"

typedef struct event {
  char *topic, *json, *origin;
  size_t n;
  struct event *next;
} event;

struct yz_bus {
  yz_sub *subs;
  int nsubs, cap;
  event *head, *tail;
  int pending;
};

yz_bus *yz_bus_new(void) {
  return yz_xcalloc(1, sizeof(yz_bus));
}

static void event_free(event *e) {
  free(e->topic);
  free(e->json);
  free(e->origin);
  free(e);
}

void yz_bus_free(yz_bus *b) {
  if (!b) return;
  for (int i = 0; i < b->nsubs; i++) free(b->subs[i].topic);
  free(b->subs);
  while (b->head) {
    event *e = b->head;
    b->head = e->next;
    event_free(e);
  }
  free(b);
}

void yz_bus_subscribe(yz_bus *b, const char *topic, void *owner, int fn_ref) {
  if (b->nsubs == b->cap) {
    b->cap = b->cap ? b->cap * 2 : 16;
    b->subs = yz_xrealloc(b->subs, (size_t)b->cap * sizeof *b->subs);
  }
  b->subs[b->nsubs].topic = yz_strdup(topic);
  b->subs[b->nsubs].owner = owner;
  b->subs[b->nsubs].fn_ref = fn_ref;
  b->nsubs++;
}

void yz_bus_forget(yz_bus *b, void *owner) {
  int k = 0;
  for (int i = 0; i < b->nsubs; i++) {
    if (b->subs[i].owner == owner)
      free(b->subs[i].topic);
    else
      b->subs[k++] = b->subs[i];
  }
  b->nsubs = k;
}

static int matches(const char *pattern, const char *topic) {
  if (strcmp(pattern, "*") == 0) return 1;
  size_t n = strlen(pattern);
  if (n >= 2 && pattern[n - 1] == '*' && pattern[n - 2] == '.')
    return strncmp(pattern, topic, n - 1) == 0;
  return strcmp(pattern, topic) == 0;
}

int yz_bus_wanted(const yz_bus *b, const char *topic) {
  for (int i = 0; i < b->nsubs; i++)
    if (matches(b->subs[i].topic, topic)) return 1;
  return 0;
}

int yz_bus_publish(yz_bus *b, const char *topic, const char *json, size_t n,
                   const char *origin) {
  if (!yz_bus_wanted(b, topic)) return 0;
  event *e = yz_xcalloc(1, sizeof *e);
  e->topic = yz_strdup(topic);
  e->json = yz_xmalloc(n + 1);
  memcpy(e->json, json, n);
  e->json[n] = 0;
  e->n = n;
  e->origin = yz_strdup(origin ? origin : "core");
  if (b->tail)
    b->tail->next = e;
  else
    b->head = e;
  b->tail = e;
  b->pending++;
  return 1;
}

int yz_bus_dispatch(yz_bus *b, yz_bus_deliver deliver, void *ud) {
  event *e = b->head;
  int n = 0;
  b->head = b->tail = NULL;
  b->pending = 0;
  while (e) {
    event *next = e->next;
    /* A handler registered or forgotten meanwhile changes subs: index. */
    for (int i = 0; i < b->nsubs; i++)
      if (matches(b->subs[i].topic, e->topic)) {
        yz_sub s = b->subs[i];
        deliver(ud, e->topic, e->json, e->n, e->origin, &s);
      }
    event_free(e);
    e = next;
    n++;
  }
  return n;
}

int yz_bus_pending(const yz_bus *b) {
  return b->pending;
}

static int word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '-';
}

int yz_bus_topic_ok(const char *topic, int pattern) {
  size_t n = topic ? strlen(topic) : 0;
  if (n == 0 || n > 128) return 0;
  if (pattern && strcmp(topic, "*") == 0) return 1;
  if (pattern && n >= 3 && topic[n - 1] == '*' && topic[n - 2] == '.') n -= 2;
  if (topic[0] == '.' || topic[n - 1] == '.') return 0;
  for (size_t i = 0; i < n; i++) {
    if (topic[i] == '.' && topic[i + 1] == '.') return 0;
    if (topic[i] != '.' && !word_char(topic[i])) return 0;
  }
  return 1;
}
