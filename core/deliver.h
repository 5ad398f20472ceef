/*
** deliver.h: the messaging half of the event loop's turn. It binds the bus,
** the outbox and HTTP to the plugins: queued events become handler tasks,
** messages the outbox lets go become send tasks in their channel's plugin
** (or are captured, in simulate and tests), HTTP answers wake the tasks
** waiting for them, and outcomes are written in one transaction per turn.
*/
#ifndef YZ_DELIVER_H
#define YZ_DELIVER_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "host.h"

/* What host.channel{} registers: p's registry references (LUA_NOREF when
** not given) and their settings. */
typedef struct yz_channel_reg {
  int send_ref;           /* send(msg) */
  int batch_ref;          /* send_batch(msgs): one request for many */
  int batch_max;          /* messages per send_batch call */
  int receipts_ref;       /* receipts(awaiting): polls the provider */
  double receipts_every;  /* seconds between polls */
  double receipts_window; /* seconds after sending a receipt is asked for */
} yz_channel_reg;

/* A channel a plugin registered with host.channel{name=, send=}. */
typedef struct yz_channel {
  char *name;         /* the channel */
  yz_plugin *p;       /* the plugin that delivers it */
  yz_channel_reg reg; /* its functions */
  int64_t next_poll;  /* clock ms of the next receipts poll */
  int polling;        /* a receipts task runs */
  int awaiting;       /* sent messages may wait for a receipt */
  int proven;         /* an answer other than "pause" came since it was
                         registered: until then one message at a time, so
                         refused credentials cost one request, not one per
                         message */
  int64_t sweep_from; /* a last sweep asks about each message once: those
                         asked about before then (0: no sweep) */
#define YZ_CHANNEL_ALERTS 8
  char *alert[YZ_CHANNEL_ALERTS];      /* alerts raised for it lately */
  int64_t alert_ms[YZ_CHANNEL_ALERTS]; /* ... and when */
} yz_channel;

/* Creates the bus, outbox and HTTP handle of a host being opened. */
int yz_deliver_open(yz_host *h, char *err, size_t errlen);
void yz_deliver_close(yz_host *h);
/* Gives the outbox every channel's rules: the configured ones and those
** only registered by plugins. Called before plugins start (started 0) and
** after (started 1: also warns of channels with TLS verification off). */
void yz_deliver_started(yz_host *h, int started);
/* One turn: HTTP completions, events to handlers, messages to channels
** (only when h->deliver is set, or a capture is), outcomes written. */
void yz_deliver_turn(yz_host *h);
/* Ms until the messaging side has work (0: now), or -1. */
int64_t yz_deliver_wake(yz_host *h);
/* Publishes an event with JSON data from the core or a plugin. */
void yz_deliver_emit(yz_host *h, const char *topic, const char *json, size_t n,
                     const char *origin);
#define YZ_TEXT_MAX 4000 /* bytes of text a message may have */

/* Checks and normalises what is to be sent: the recipient (into 'to'),
** the text (non-empty UTF-8, within the channel's parts) and the channel
** (NULL: the default). Fills in's channel, to, text, parts and coding.
** Returns YZ_OK, or YZ_EUSAGE with err naming what is wrong (a number only
** masked). */
int yz_deliver_check(yz_host *h, const char *raw_to, const char *text,
                     const char *tpl, const char *channel, yz_msg_in *in,
                     char *to, size_t tolen, char *err, size_t errlen);
/* Renders template 'name' with n parameters (names[i] = values[i]) into
** text (its local rendering) and json (the parameters as a JSON object,
** keys sorted). Every parameter the template has must be given, and no
** other. Returns YZ_OK, or YZ_EUSAGE with err naming what is wrong. */
int yz_deliver_render(yz_host *h, const char *name, const char *const *names,
                      const char *const *values, int n, yz_buf *text,
                      yz_buf *json, char *err, size_t errlen);
/* Registers a channel for plugin p (taking the references); returns YZ_OK
** or YZ_EUSAGE (err). */
int yz_deliver_add_channel(yz_host *h, yz_plugin *p, const char *name,
                           const yz_channel_reg *reg, char *err, size_t errlen);
/* Makes every channel that polls for receipts and may have messages
** waiting for one poll now, and go on until it has asked about each of
** them once (run --until-idle, before it ends). Returns how many
** channels are not done. */
int yz_deliver_poll_now(yz_host *h);
/* The channel a plugin registered under that name, or NULL. */
yz_channel *yz_deliver_channel(yz_host *h, const char *name);
/* Forgets p's channels and event handlers. */
void yz_deliver_forget(yz_host *h, yz_plugin *p);
/* The task drop hook for tasks that wait or carry a message. */
void yz_deliver_task_drop(yz_host *h, yz_task *t);
/* Whether plugin p may reach host 'hostport' (from http_hosts or the URL
** of a channel p delivers). */
int yz_deliver_host_allowed(yz_host *h, yz_plugin *p, const char *hostport);
/* Whether p delivers a channel configured with insecure = true. */
int yz_deliver_insecure_allowed(yz_host *h, yz_plugin *p);
/* Resolves a file a channel of p writes (the channel's 'path', against
** the data directory); NULL when 'path' is none of them. Malloc'd. */
char *yz_deliver_file_allowed(yz_host *h, yz_plugin *p, const char *path);

#endif
