/*
** outbox.h: durable messages (table yz_outbox) and the rules that decide
** when each may leave: idempotency keys, claiming, retries with capped
** exponential backoff and jitter, and per channel a token-bucket rate,
** a cap on messages in flight, quiet hours and a daily cap per recipient.
**
** The outbox knows nothing of Lua or HTTP. A message is committed when
** enqueued, before anything leaves the process. Claiming marks messages
** 'sending' and commits that before the caller hands them to a channel, so
** a crash between the claim and the outcome leaves them 'sending': at the
** next start they are in doubt and go out again with the same key, which
** channels pass to their gateway as the client message id. Outcomes are
** kept in memory and written in one transaction per flush (group commit).
**
** States: queued -> sending -> sent -> delivered; failed (waits for its
** retry); dead (the last attempt failed, or the failure was permanent).
*/
#ifndef YZ_OUTBOX_H
#define YZ_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "store.h"

typedef struct yz_outbox yz_outbox;

/* A channel's delivery rules (from the config's channels table). */
typedef struct yz_chan_rules {
  char *name;        /* channel name */
  char *type;        /* the plugin that implements it */
  double tps;        /* messages per second (token bucket); 0: no limit */
  int max_in_flight; /* messages handed to the channel at once */
  int quiet;         /* quiet hours apply */
  int quiet_from;    /* minutes after local midnight the quiet starts */
  int quiet_to;      /* ... and ends (may be earlier: across midnight) */
  int daily_cap;     /* messages per recipient per local day; 0: none */
  int max_attempts;  /* attempts before a message is dead */
  double retry_base; /* first retry delay, seconds */
  double retry_cap;  /* longest retry delay, seconds */
  int max_parts;     /* longest text, in SMS parts */
  int insecure;      /* TLS verification off (warned at each start) */
} yz_chan_rules;

/* Fills 'r' with the defaults for channel 'name'. */
void yz_chan_rules_default(yz_chan_rules *r, const char *name,
                           const char *type);

/* What a plugin (or the CLI) asks to send. */
typedef struct yz_msg_in {
  const char *key;       /* idempotency key (NULL: a fresh unique one) */
  const char *channel;   /* channel name */
  const char *to;        /* recipient, E.164 (already normalised) */
  const char *text;      /* UTF-8 text */
  const char *meta;      /* JSON text, or NULL */
  const char *plugin;    /* who asked ("cli" for the command line) */
  const char *job;       /* the job that ran, or NULL */
  int64_t not_before_ms; /* earliest send time (0: now) */
  int parts;             /* SMS parts */
  int ucs2;              /* coding: UCS-2 rather than GSM 7-bit */
  const char *tpl;       /* template name (text is its local rendering), or
                            NULL for free text */
  const char *params;    /* the template's parameters, a JSON object */
} yz_msg_in;

/* A message as the outbox hands it out or shows it. Strings are owned. */
typedef struct yz_msg {
  int64_t id;
  char *key, *channel, *to, *text, *meta, *plugin, *job, *state;
  char *gateway_id, *last_error;
  char *tpl, *params; /* template name and parameters (JSON), or NULL */
  int parts, ucs2, attempts, in_doubt;
  int64_t created_ms, next_ms, sent_ms, delivered_ms, updated_ms;
} yz_msg;

void yz_msg_free(yz_msg *m);
/* A deep copy. */
yz_msg *yz_msg_copy(const yz_msg *m);

/* How one attempt ended, as the channel says. */
typedef enum {
  YZ_SEND_SENT = 0,  /* the gateway accepted it */
  YZ_SEND_TRANSIENT, /* try again later (5xx, 429, timeout, ...) */
  YZ_SEND_PERMANENT, /* never (a bad number, a rejected template) */
  YZ_SEND_IN_DOUBT,  /* no answer (the send was cut short): it may have
                        reached the gateway; queued again, same key, not
                        counted as an attempt */
  YZ_SEND_HELD,      /* refused before it could go, for a reason that is not
                        the message's (the channel's credentials): queued
                        again, not counted as an attempt */
  YZ_SEND_RELEASED,  /* claimed but not handed out: back in the queue as it
                        was */
  YZ_SEND_DEFERRED   /* not sent, and not the message's fault (the account's
                        balance, the recipient's daily quota at the
                        provider): waits retry_after (or the backoff), the
                        attempt not counted, so it never dies of waiting */
} yz_send_outcome;

/* Told of every state change after it is durable (for the bus). */
typedef void (*yz_outbox_notify)(void *ud, const yz_msg *m);

yz_outbox *yz_outbox_new(yz_store *store, yz_clock *clock);
void yz_outbox_free(yz_outbox *ob);
/* Replaces the channels' rules (at start and reload); quiet hours are in
** local time of zone tz. The outbox copies what it needs. */
void yz_outbox_set_channels(yz_outbox *ob, const yz_chan_rules *rules, int n,
                            const char *tz);
/* The rules of a channel, or NULL when it is unknown. */
const yz_chan_rules *yz_outbox_channel(const yz_outbox *ob, const char *name);
void yz_outbox_set_notify(yz_outbox *ob, yz_outbox_notify fn, void *ud);

/* Moves messages left 'sending' by a crash back to the queue, marked in
** doubt. Returns how many. */
int yz_outbox_recover(yz_outbox *ob);

/* Writes the message (in the caller's transaction, if any). When the key
** exists already nothing changes and *existed is 1. *id receives the
** message's id either way. Returns YZ_OK, or an error with err set. */
int yz_outbox_enqueue(yz_outbox *ob, const yz_msg_in *in, int64_t *id,
                      int *existed, char *err, size_t errlen);

/* Claims up to 'max' messages of channel 'ch' that may go now, as the
** channel's rate, in-flight cap, quiet hours and daily cap allow, marks
** them 'sending' and commits. Returns the count; *out is a malloc'd array
** of messages (free each with yz_msg_free, then the array). Returns -1
** when the store failed (see yz_store_errmsg): claims and flushes then
** pause for a second rather than spin. */
int yz_outbox_claim(yz_outbox *ob, const char *ch, int max, yz_msg ***out);
/* Records an attempt's outcome (kept until the next flush), taking m (the
** message claimed). retry_after is the gateway's Retry-After in seconds
** (0: none). */
void yz_outbox_result(yz_outbox *ob, yz_msg *m, yz_send_outcome how,
                      const char *detail, double retry_after,
                      const char *gateway_id);
/* A delivery receipt for the message with this key (delivered or not).
** A receipt that it was not delivered makes a sent message dead, with the
** detail (the provider's code) as its reason. Returns YZ_OK, YZ_ENOTFOUND,
** or YZ_EUSAGE when the message is not sent. */
int yz_outbox_receipt(yz_outbox *ob, const char *key, int delivered,
                      const char *detail);
/* Sent messages of channel ch that still wait for a receipt, sent within
** the last window_ms, those asked about least recently first; up to max.
** Marks them asked about now. Returns the count (*out as for claim), or -1
** when the store failed. */
int yz_outbox_awaiting(yz_outbox *ob, const char *ch, int max,
                       int64_t window_ms, yz_msg ***out);
/* The same, only among messages last asked about before asked_before_ms
** (a sweep that asks about each message once). */
int yz_outbox_awaiting_before(yz_outbox *ob, const char *ch, int max,
                              int64_t window_ms, int64_t asked_before_ms,
                              yz_msg ***out);
/* The key of the message of channel ch (NULL: any) the gateway knows as
** gateway_id, into key; YZ_OK or YZ_ENOTFOUND. */
int yz_outbox_key_of(yz_outbox *ob, const char *ch, const char *gateway_id,
                     char *key, size_t keylen);
/* Writes the outcomes recorded since the last flush in one transaction
** and tells the notify callback. Returns YZ_OK or the store's error (the
** outcomes stay pending and are tried again at the next flush). */
int yz_outbox_flush(yz_outbox *ob);
/* The last flush before closing: no pause after an error, a few tries.
** What still fails stays 'sending' in the table: in doubt at the next
** start. */
int yz_outbox_flush_final(yz_outbox *ob);

/* Ms until something may be claimed (0: now), or -1 when nothing waits. */
int64_t yz_outbox_next_wake(yz_outbox *ob);
/* Messages handed out and not yet resolved, for channel ch (NULL: all). */
int yz_outbox_in_flight(const yz_outbox *ob, const char *ch);
/* True while a channel is inside its quiet hours right now. */
int yz_outbox_quiet_now(yz_outbox *ob, const char *ch);

/* Moves a failed or dead message back to the queue (yizhan outbox retry).
** Returns YZ_OK, YZ_ENOTFOUND, or YZ_EUSAGE when its state does not allow. */
int yz_outbox_requeue(yz_outbox *ob, int64_t id, char *err, size_t errlen);
/* Moves every dead message back; returns how many, or -1. */
int yz_outbox_requeue_dead(yz_outbox *ob);
/* Loads one message by id; YZ_OK or YZ_ENOTFOUND. */
int yz_outbox_get(yz_outbox *ob, int64_t id, yz_msg **out);
int yz_outbox_get_key(yz_outbox *ob, const char *key, yz_msg **out);

/* Whether a message may go now but for its channel's rate or in-flight
** cap (not held by quiet hours, a later retry or a daily cap). */
int yz_outbox_due_now(yz_outbox *ob);
/* Pauses a channel (nothing delivers it: its plugin is missing or not
** healthy) or resumes it. A paused channel's messages wait, and do not
** count for yz_outbox_next_wake. Returns whether it was paused before
** (new rules, at start and reload, begin unpaused). */
int yz_outbox_pause(yz_outbox *ob, const char *ch, int paused);
/* Holds a channel: its plugin said it cannot deliver anything now (the
** credentials are refused). Its messages wait, as when paused, until
** yz_outbox_hold(ob, ch, NULL) or new rules (a reload). Returns whether it
** was held before. */
int yz_outbox_hold(yz_outbox *ob, const char *ch, const char *why);
/* Why channel ch is held, or NULL. */
const char *yz_outbox_held(const yz_outbox *ob, const char *ch);
/* Forgets the daily counts (they are read again from the table): after a
** rollback took sends away. */
void yz_outbox_forget_counts(yz_outbox *ob);

#endif
