/*
** outbox.c: durable messages and their delivery rules (see outbox.h).
*/
#include "outbox.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "yz.h"

#define DAY_MS (86400 * (int64_t)1000)

/* Per channel: its rules and what the rules need to remember. */
typedef struct chan {
  yz_chan_rules r;
  double tokens;  /* the token bucket */
  int64_t refill; /* when it was last filled (ms) */
  int in_flight;  /* claimed, outcome not yet recorded */
  int paused;     /* nothing delivers it now: no claims, no wake-ups */
  char *held;     /* why its plugin cannot deliver it now, or NULL */
} chan;

/* A daily count: messages to one recipient over one channel on one day. */
typedef struct count {
  char *who; /* "channel\nrecipient", or NULL for an empty slot */
  int n;     /* messages counted */
} count;

/* An outcome waiting for the next flush. */
typedef struct pending {
  yz_msg *m;            /* a copy of the message, updated to its new state */
  int delivered_change; /* a receipt, not an attempt's outcome */
} pending;

struct yz_outbox {
  yz_store *store;
  yz_clock *clock;
  char *tz;
  chan *chans;
  int nchans;
  count *counts; /* open addressing, for the day 'count_day' */
  size_t ncounts, count_cap;
  int64_t count_day; /* local day number the counts are for; -1: none */
  pending *pend;
  int npend, pend_cap;
  yz_outbox_notify notify;
  void *notify_ud;
  unsigned long serial; /* for generated keys */
  int64_t calm_until;   /* after a store error: no claims or flushes before */
  unsigned rng;         /* jitter */
};

void yz_chan_rules_default(yz_chan_rules *r, const char *name,
                           const char *type) {
  memset(r, 0, sizeof *r);
  r->name = (char *)name;
  r->type = (char *)type;
  r->tps = 0;
  r->max_in_flight = 32;
  r->quiet = 1;
  r->quiet_from = 21 * 60 + 30;
  r->quiet_to = 7 * 60 + 30;
  r->daily_cap = 10;
  r->max_attempts = 6;
  r->retry_base = 30;
  r->retry_cap = 3600;
  r->max_parts = 10;
}

void yz_msg_free(yz_msg *m) {
  if (!m) return;
  free(m->key);
  free(m->channel);
  free(m->to);
  free(m->text);
  free(m->meta);
  free(m->plugin);
  free(m->job);
  free(m->state);
  free(m->gateway_id);
  free(m->last_error);
  free(m->tpl);
  free(m->params);
  free(m);
}

yz_msg *yz_msg_copy(const yz_msg *m) {
  yz_msg *c = yz_xmalloc(sizeof *c);
  *c = *m;
  c->key = yz_strdup(m->key);
  c->channel = yz_strdup(m->channel);
  c->to = yz_strdup(m->to);
  c->text = yz_strdup(m->text);
  c->meta = yz_strdup(m->meta);
  c->plugin = yz_strdup(m->plugin);
  c->job = yz_strdup(m->job);
  c->state = yz_strdup(m->state);
  c->gateway_id = yz_strdup(m->gateway_id);
  c->last_error = yz_strdup(m->last_error);
  c->tpl = yz_strdup(m->tpl);
  c->params = yz_strdup(m->params);
  return c;
}

static void set_str(char **dst, const char *s) {
  free(*dst);
  *dst = yz_strdup(s);
}

yz_outbox *yz_outbox_new(yz_store *store, yz_clock *clock) {
  yz_outbox *ob = yz_xcalloc(1, sizeof *ob);
  ob->store = store;
  ob->clock = clock;
  ob->tz = yz_strdup("UTC");
  ob->count_day = -1;
  ob->rng = (unsigned)yz_clock_mono_ms() * 2654435761u + 1;
  return ob;
}

static void clear_counts(yz_outbox *ob) {
  for (size_t i = 0; i < ob->count_cap; i++) free(ob->counts[i].who);
  free(ob->counts);
  ob->counts = NULL;
  ob->ncounts = ob->count_cap = 0;
  ob->count_day = -1;
}

static void free_chans(yz_outbox *ob) {
  for (int i = 0; i < ob->nchans; i++) {
    free(ob->chans[i].r.name);
    free(ob->chans[i].r.type);
    free(ob->chans[i].held);
  }
  free(ob->chans);
  ob->chans = NULL;
  ob->nchans = 0;
}

void yz_outbox_free(yz_outbox *ob) {
  if (!ob) return;
  for (int i = 0; i < ob->npend; i++) yz_msg_free(ob->pend[i].m);
  free(ob->pend);
  clear_counts(ob);
  free_chans(ob);
  free(ob->tz);
  free(ob);
}

static chan *find_chan(const yz_outbox *ob, const char *name) {
  for (int i = 0; name && i < ob->nchans; i++)
    if (strcmp(ob->chans[i].r.name, name) == 0) return &ob->chans[i];
  return NULL;
}

void yz_outbox_set_channels(yz_outbox *ob, const yz_chan_rules *rules, int n,
                            const char *tz) {
  /* Messages in flight stay counted against a channel kept by name. */
  chan *old = ob->chans;
  int nold = ob->nchans;
  chan *fresh = yz_xcalloc((size_t)n + 1, sizeof *fresh);
  int64_t now = yz_clock_now_ms(ob->clock);
  for (int i = 0; i < n; i++) {
    fresh[i].r = rules[i];
    fresh[i].r.name = yz_strdup(rules[i].name);
    fresh[i].r.type = yz_strdup(rules[i].type);
    fresh[i].tokens =
        rules[i].tps > 0 ? (rules[i].tps < 1 ? 1 : rules[i].tps) : 0;
    fresh[i].refill = now;
    for (int j = 0; j < nold; j++)
      if (strcmp(old[j].r.name, rules[i].name) == 0) {
        fresh[i].in_flight = old[j].in_flight;
        if (old[j].r.tps == rules[i].tps) {
          fresh[i].tokens = old[j].tokens;
          fresh[i].refill = old[j].refill;
        }
      }
  }
  free_chans(ob);
  ob->chans = fresh;
  ob->nchans = n;
  set_str(&ob->tz, tz ? tz : "UTC");
  clear_counts(ob); /* caps may have changed: count again from the table */
}

const yz_chan_rules *yz_outbox_channel(const yz_outbox *ob, const char *name) {
  chan *c = find_chan(ob, name);
  return c ? &c->r : NULL;
}

void yz_outbox_set_notify(yz_outbox *ob, yz_outbox_notify fn, void *ud) {
  ob->notify = fn;
  ob->notify_ud = ud;
}

/* ------------------------------------------------------------ daily caps */

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static count *count_slot(yz_outbox *ob, const char *who, int create) {
  if (create && (ob->ncounts + 1) * 2 > ob->count_cap) {
    size_t cap = ob->count_cap ? ob->count_cap * 2 : 1024;
    count *nc = yz_xcalloc(cap, sizeof *nc);
    for (size_t i = 0; i < ob->count_cap; i++) {
      if (!ob->counts[i].who) continue;
      size_t j = hash_str(ob->counts[i].who) & (cap - 1);
      while (nc[j].who) j = (j + 1) & (cap - 1);
      nc[j] = ob->counts[i];
    }
    free(ob->counts);
    ob->counts = nc;
    ob->count_cap = cap;
  }
  if (!ob->count_cap) return NULL;
  size_t j = hash_str(who) & (ob->count_cap - 1);
  while (ob->counts[j].who) {
    if (strcmp(ob->counts[j].who, who) == 0) return &ob->counts[j];
    j = (j + 1) & (ob->count_cap - 1);
  }
  if (!create) return NULL;
  ob->counts[j].who = yz_strdup(who);
  ob->counts[j].n = 0;
  ob->ncounts++;
  return &ob->counts[j];
}

static int64_t local_day(yz_outbox *ob, int64_t ms) {
  int64_t t = ms / 1000;
  return (t + yz_clock_utcoff(ob->tz, t)) / 86400;
}

/* Makes the counts those of today, reading today's sends from the table
** when the day changed (or at the first use). */
static void counts_for_today(yz_outbox *ob) {
  int64_t now = yz_clock_now_ms(ob->clock);
  int64_t day = local_day(ob, now);
  if (day == ob->count_day) return;
  clear_counts(ob);
  ob->count_day = day;
  int64_t start = yz_clock_from_local(ob->tz, day, 0, 0, 0) * 1000;
  yz_stmt *st;
  if (yz_store_prepare(ob->store, NULL,
                       "SELECT channel || char(10) || recipient, count(*) "
                       "FROM yz_outbox WHERE sent_at >= ? AND state IN "
                       "('sent', 'delivered') GROUP BY 1",
                       &st) != YZ_OK)
    return;
  yz_value v = {.type = YZ_INT, .i = start};
  yz_stmt_bind(st, 1, &v);
  while (yz_stmt_step(st) == YZ_ROW) {
    yz_value who, n;
    yz_stmt_column(st, 0, &who);
    yz_stmt_column(st, 1, &n);
    count *c = count_slot(ob, who.s, 1);
    c->n = (int)n.i;
  }
  yz_stmt_release(st);
}

static void count_key(char *dst, size_t n, const char *ch, const char *to) {
  yz_fmt(dst, n, "%s\n%s", ch, to);
}

/* ---------------------------------------------------------------- enqueue */

int yz_outbox_enqueue(yz_outbox *ob, const yz_msg_in *in, int64_t *id,
                      int *existed, char *err, size_t errlen) {
  char auto_key[96];
  const char *key = in->key;
  int64_t now = yz_clock_now_ms(ob->clock);
  *existed = 0;
  *id = 0;
  if (!key) {
    /* Unique across processes and restarts: time, pid, a counter and
    ** random bits. */
    unsigned r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
      r = (unsigned)(now * 2654435761u) ^ (unsigned)getpid();
    yz_fmt(auto_key, sizeof auto_key, "auto-%lld-%ld-%lu-%08x", (long long)now,
           (long)getpid(), ++ob->serial, r);
    key = auto_key;
  }
  yz_value v[13] = {
      {.type = YZ_TEXT, .s = key, .n = strlen(key)},
      {.type = YZ_TEXT, .s = in->channel, .n = strlen(in->channel)},
      {.type = YZ_TEXT, .s = in->to, .n = strlen(in->to)},
      {.type = YZ_TEXT, .s = in->text, .n = strlen(in->text)},
      {.type = YZ_INT, .i = in->ucs2},
      {.type = YZ_INT, .i = in->parts},
      {.type = in->meta ? YZ_TEXT : YZ_NULL,
       .s = in->meta,
       .n = in->meta ? strlen(in->meta) : 0},
      {.type = in->plugin ? YZ_TEXT : YZ_NULL,
       .s = in->plugin,
       .n = in->plugin ? strlen(in->plugin) : 0},
      {.type = in->job ? YZ_TEXT : YZ_NULL,
       .s = in->job,
       .n = in->job ? strlen(in->job) : 0},
      {.type = YZ_INT, .i = in->not_before_ms > now ? in->not_before_ms : now},
      {.type = YZ_INT, .i = now},
      {.type = in->tpl ? YZ_TEXT : YZ_NULL,
       .s = in->tpl,
       .n = in->tpl ? strlen(in->tpl) : 0},
      {.type = in->params ? YZ_TEXT : YZ_NULL,
       .s = in->params,
       .n = in->params ? strlen(in->params) : 0},
  };
  int rc = yz_store_exec(
      ob->store, NULL,
      "INSERT INTO yz_outbox(key, channel, recipient, text, ucs2, parts, "
      "meta, plugin, job, next_at, created_at, updated_at, template, params) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12, ?13) "
      "ON CONFLICT(key) DO NOTHING",
      v, 13);
  if (rc != YZ_OK) {
    yz_fmt(err, errlen, "cannot queue the message: %s",
           yz_store_errmsg(ob->store));
    return rc;
  }
  if (yz_store_changes(ob->store) == 1) {
    *id = yz_store_last_rowid(ob->store);
    return YZ_OK;
  }
  *existed = 1;
  yz_stmt *st;
  rc = yz_store_prepare(ob->store, NULL,
                        "SELECT id FROM yz_outbox WHERE key = ?", &st);
  if (rc != YZ_OK) {
    yz_fmt(err, errlen, "%s", yz_store_errmsg(ob->store));
    return rc;
  }
  yz_stmt_bind(st, 1, &v[0]);
  if (yz_stmt_step(st) == YZ_ROW) {
    yz_value r;
    yz_stmt_column(st, 0, &r);
    *id = r.i;
  }
  yz_stmt_release(st);
  return YZ_OK;
}

int yz_outbox_recover(yz_outbox *ob) {
  yz_value v = {.type = YZ_INT, .i = yz_clock_now_ms(ob->clock)};
  if (yz_store_exec(ob->store, NULL,
                    "UPDATE yz_outbox SET state = 'queued', in_doubt = "
                    "in_doubt + 1, next_at = min(next_at, ?1), updated_at = "
                    "?1 WHERE state = 'sending'",
                    &v, 1) != YZ_OK)
    return 0;
  return yz_store_changes(ob->store);
}

/* ------------------------------------------------------------ the rules */

/* Minutes after local midnight of instant ms. */
static int local_minutes(yz_outbox *ob, int64_t ms, int64_t *day) {
  int64_t t = ms / 1000;
  int64_t local = t + yz_clock_utcoff(ob->tz, t);
  int64_t d = local >= 0 ? local / 86400 : (local - 86399) / 86400;
  if (day) *day = d;
  return (int)((local - d * 86400) / 60);
}

static int in_window(int m, int from, int to) {
  if (from == to) return 0;
  return from < to ? (m >= from && m < to) : (m >= from || m < to);
}

/* When the quiet hours that hold channel c at ms end (ms), or 0 when c is
** not in quiet hours at ms. */
static int64_t quiet_until(yz_outbox *ob, const chan *c, int64_t ms) {
  if (!c->r.quiet) return 0;
  int64_t day;
  int m = local_minutes(ob, ms, &day);
  if (!in_window(m, c->r.quiet_from, c->r.quiet_to)) return 0;
  if (m >= c->r.quiet_to) day++; /* the window ends tomorrow */
  int64_t end = yz_clock_from_local(ob->tz, day, c->r.quiet_to / 60,
                                    c->r.quiet_to % 60, 0) *
                1000;
  return end > ms ? end : ms + 60000;
}

int yz_outbox_quiet_now(yz_outbox *ob, const char *ch) {
  chan *c = find_chan(ob, ch);
  return c && quiet_until(ob, c, yz_clock_now_ms(ob->clock)) != 0;
}

static void refill(chan *c, int64_t now) {
  if (c->r.tps <= 0) return;
  double cap = c->r.tps < 1 ? 1 : c->r.tps;
  if (now > c->refill) {
    c->tokens += (double)(now - c->refill) / 1000.0 * c->r.tps;
    if (c->tokens > cap) c->tokens = cap;
  }
  c->refill = now;
}

/* How many messages channel c may take now. */
static int allowance(yz_outbox *ob, chan *c, int64_t now) {
  if (quiet_until(ob, c, now)) return 0;
  int n = c->r.max_in_flight - c->in_flight;
  if (n <= 0) return 0;
  if (c->r.tps > 0) {
    refill(c, now);
    int t = (int)floor(c->tokens);
    if (t < n) n = t;
  }
  return n;
}

/* ---------------------------------------------------------------- claim */

static char *col_str(yz_stmt *st, int i) {
  yz_value v;
  yz_stmt_column(st, i, &v);
  if (v.type == YZ_NULL) return NULL;
  char *s = yz_xmalloc(v.n + 1);
  memcpy(s, v.s, v.n);
  s[v.n] = 0;
  return s;
}

static int64_t col_int(yz_stmt *st, int i) {
  yz_value v;
  yz_stmt_column(st, i, &v);
  return v.type == YZ_NULL ? 0 : v.i;
}

#define MSG_COLUMNS                                                       \
  "id, key, channel, recipient, text, meta, plugin, job, state, "         \
  "gateway_id, last_error, parts, ucs2, attempts, in_doubt, created_at, " \
  "next_at, sent_at, delivered_at, updated_at, template, params"

static yz_msg *read_msg(yz_stmt *st) {
  yz_msg *m = yz_xcalloc(1, sizeof *m);
  m->id = col_int(st, 0);
  m->key = col_str(st, 1);
  m->channel = col_str(st, 2);
  m->to = col_str(st, 3);
  m->text = col_str(st, 4);
  m->meta = col_str(st, 5);
  m->plugin = col_str(st, 6);
  m->job = col_str(st, 7);
  m->state = col_str(st, 8);
  m->gateway_id = col_str(st, 9);
  m->last_error = col_str(st, 10);
  m->parts = (int)col_int(st, 11);
  m->ucs2 = (int)col_int(st, 12);
  m->attempts = (int)col_int(st, 13);
  m->in_doubt = (int)col_int(st, 14);
  m->created_ms = col_int(st, 15);
  m->next_ms = col_int(st, 16);
  m->sent_ms = col_int(st, 17);
  m->delivered_ms = col_int(st, 18);
  m->updated_ms = col_int(st, 19);
  m->tpl = col_str(st, 20);
  m->params = col_str(st, 21);
  return m;
}

/* Holds message m until the next local day (its recipient's daily cap is
** reached); not an attempt. */
static void hold_for_cap(yz_outbox *ob, yz_msg *m, int cap) {
  int64_t now = yz_clock_now_ms(ob->clock);
  int64_t day = local_day(ob, now) + 1;
  char why[160];
  yz_fmt(why, sizeof why,
         "the daily cap of %d message(s) to this recipient on this channel "
         "is reached; held until the next day",
         cap);
  yz_value v[4] = {
      {.type = YZ_INT, .i = yz_clock_from_local(ob->tz, day, 0, 0, 0) * 1000},
      {.type = YZ_TEXT, .s = why, .n = strlen(why)},
      {.type = YZ_INT, .i = now},
      {.type = YZ_INT, .i = m->id}};
  yz_store_exec(ob->store, NULL,
                "UPDATE yz_outbox SET next_at = ?1, last_error = ?2, "
                "updated_at = ?3 WHERE id = ?4",
                v, 4);
}

int yz_outbox_claim(yz_outbox *ob, const char *ch, int max, yz_msg ***out) {
  *out = NULL;
  chan *c = find_chan(ob, ch);
  if (!c || c->held) return 0;
  int64_t now = yz_clock_now_ms(ob->clock);
  if (now < ob->calm_until) return 0;
  int n = allowance(ob, c, now);
  if (max < n) n = max;
  if (n <= 0) return 0;
  if (c->r.daily_cap > 0) counts_for_today(ob);
  if (yz_store_tx_begin(ob->store) != YZ_OK) {
    ob->calm_until = now + 1000;
    return -1;
  }
  yz_stmt *st;
  if (yz_store_prepare(ob->store, NULL,
                       "SELECT " MSG_COLUMNS
                       " FROM yz_outbox WHERE channel = ? AND state IN "
                       "('queued', 'failed') AND next_at <= ? ORDER BY "
                       "next_at, id LIMIT ?",
                       &st) != YZ_OK) {
    yz_store_tx_rollback(ob->store);
    ob->calm_until = now + 1000;
    return -1;
  }
  yz_value v[3] = {{.type = YZ_TEXT, .s = ch, .n = strlen(ch)},
                   {.type = YZ_INT, .i = now},
                   {.type = YZ_INT, .i = n}};
  for (int i = 0; i < 3; i++) yz_stmt_bind(st, i + 1, &v[i]);
  yz_msg **got = yz_xcalloc((size_t)n, sizeof *got);
  int k = 0;
  while (k < n && yz_stmt_step(st) == YZ_ROW) got[k++] = read_msg(st);
  yz_stmt_release(st);
  int taken = 0, failed = 0;
  for (int i = 0; i < k; i++) {
    yz_msg *m = got[i];
    if (c->r.daily_cap > 0) {
      char who[256];
      count_key(who, sizeof who, ch, m->to);
      count *cn = count_slot(ob, who, 1);
      if (cn->n >= c->r.daily_cap) {
        hold_for_cap(ob, m, c->r.daily_cap);
        yz_msg_free(m);
        continue;
      }
      cn->n++;
    }
    yz_value u[2] = {{.type = YZ_INT, .i = now}, {.type = YZ_INT, .i = m->id}};
    if (yz_store_exec(ob->store, NULL,
                      "UPDATE yz_outbox SET state = 'sending', attempts = "
                      "attempts + 1, updated_at = ?1 WHERE id = ?2",
                      u, 2) != YZ_OK) {
      /* Give nothing out: the commit below would not hold either. */
      for (int j = i; j < k; j++) yz_msg_free(got[j]);
      k = i;
      failed = 1;
      break;
    }
    m->attempts++;
    set_str(&m->state, "sending");
    got[taken++] = m;
  }
  if (failed || yz_store_tx_commit(ob->store) != YZ_OK) {
    /* Nothing may leave unless its claim is durable. */
    yz_store_tx_rollback(ob->store);
    for (int i = 0; i < taken; i++) yz_msg_free(got[i]);
    free(got);
    clear_counts(ob);
    ob->calm_until = now + 1000;
    return -1;
  }
  c->in_flight += taken;
  if (c->r.tps > 0) c->tokens -= taken;
  if (!taken) {
    free(got);
    return 0;
  }
  *out = got;
  return taken;
}

/* ------------------------------------------------------------- outcomes */

static void push_pending(yz_outbox *ob, yz_msg *m, int receipt) {
  if (ob->npend == ob->pend_cap) {
    ob->pend_cap = ob->pend_cap ? ob->pend_cap * 2 : 64;
    ob->pend = yz_xrealloc(ob->pend, (size_t)ob->pend_cap * sizeof *ob->pend);
  }
  ob->pend[ob->npend].m = m;
  ob->pend[ob->npend].delivered_change = receipt;
  ob->npend++;
}

static double backoff(yz_outbox *ob, const chan *c, int attempts) {
  double d = c ? c->r.retry_base : 30;
  double cap = c ? c->r.retry_cap : 3600;
  for (int i = 1; i < attempts && d < cap; i++) d *= 2;
  if (d > cap) d = cap;
  /* jitter: 80% to 120% */
  ob->rng = ob->rng * 1103515245u + 12345u;
  double j = 0.8 + 0.4 * (double)((ob->rng >> 8) & 0xffff) / 65535.0;
  return d * j;
}

void yz_outbox_result(yz_outbox *ob, yz_msg *m, yz_send_outcome how,
                      const char *detail, double retry_after,
                      const char *gateway_id) {
  chan *c = find_chan(ob, m->channel);
  if (c && c->in_flight > 0) c->in_flight--;
  int64_t now = yz_clock_now_ms(ob->clock);
  yz_msg *r = m; /* taken: it becomes the pending outcome */
  r->updated_ms = now;
  if (how == YZ_SEND_RELEASED) {
    set_str(&r->state, "queued");
    if (r->attempts > 0) r->attempts--;
    if (c && c->r.tps > 0) c->tokens += 1; /* its token, unused */
  } else if (how == YZ_SEND_IN_DOUBT || how == YZ_SEND_HELD) {
    set_str(&r->state, "queued");
    if (r->attempts > 0) r->attempts--;
    if (how == YZ_SEND_IN_DOUBT) r->in_doubt++;
    r->next_ms = now;
    char *why = yz_strdup(detail ? detail : "in doubt");
    free(r->last_error);
    r->last_error = why;
  } else if (how == YZ_SEND_DEFERRED) {
    if (r->attempts > 0) r->attempts--;
    set_str(&r->state, "failed");
    char *why = yz_strdup(detail ? detail : "deferred");
    free(r->last_error);
    r->last_error = why;
    double delay =
        retry_after > 0 ? retry_after : backoff(ob, c, r->attempts + 1);
    if (delay > 7 * 86400.0) delay = 7 * 86400.0;
    r->next_ms = now + (int64_t)(delay * 1000);
  } else if (how == YZ_SEND_SENT) {
    set_str(&r->state, "sent");
    r->sent_ms = now;
    set_str(&r->gateway_id, gateway_id);
    set_str(&r->last_error, NULL);
  } else {
    int max = c ? c->r.max_attempts : 1;
    char *why = yz_strdup(detail ? detail : "failed"); /* detail may be ours */
    free(r->last_error);
    r->last_error = why;
    if (how == YZ_SEND_PERMANENT || m->attempts >= max) {
      set_str(&r->state, "dead");
    } else {
      set_str(&r->state, "failed");
      double delay =
          retry_after > 0 ? retry_after : backoff(ob, c, m->attempts);
      if (delay > 7 * 86400.0) delay = 7 * 86400.0;
      r->next_ms = now + (int64_t)(delay * 1000);
    }
  }
  /* Only a sent message counts against the recipient's cap. */
  if (how != YZ_SEND_SENT && c && c->r.daily_cap > 0 && ob->count_day >= 0) {
    char who[256];
    count_key(who, sizeof who, m->channel, m->to);
    count *cn = count_slot(ob, who, 0);
    if (cn && cn->n > 0) cn->n--;
  }
  push_pending(ob, r, 0);
}

int yz_outbox_receipt(yz_outbox *ob, const char *key, int delivered,
                      const char *detail) {
  yz_msg *m;
  int rc = yz_outbox_get_key(ob, key, &m);
  if (rc != YZ_OK) return rc;
  if (strcmp(m->state, "sent") != 0 && strcmp(m->state, "delivered") != 0) {
    yz_msg_free(m);
    return YZ_EUSAGE;
  }
  int64_t now = yz_clock_now_ms(ob->clock);
  m->updated_ms = now;
  if (delivered) {
    set_str(&m->state, "delivered");
    m->delivered_ms = now;
  } else {
    set_str(&m->state, "dead");
    set_str(&m->last_error, detail ? detail : "not delivered (receipt)");
  }
  push_pending(ob, m, 1);
  return YZ_OK;
}

static int write_outcome(yz_outbox *ob, const yz_msg *m) {
  yz_value v[10] = {
      {.type = YZ_TEXT, .s = m->state, .n = strlen(m->state)},
      {.type = m->gateway_id ? YZ_TEXT : YZ_NULL,
       .s = m->gateway_id,
       .n = m->gateway_id ? strlen(m->gateway_id) : 0},
      {.type = m->last_error ? YZ_TEXT : YZ_NULL,
       .s = m->last_error,
       .n = m->last_error ? strlen(m->last_error) : 0},
      {.type = YZ_INT, .i = m->next_ms},
      {.type = m->sent_ms ? YZ_INT : YZ_NULL, .i = m->sent_ms},
      {.type = m->delivered_ms ? YZ_INT : YZ_NULL, .i = m->delivered_ms},
      {.type = YZ_INT, .i = m->updated_ms},
      {.type = YZ_INT, .i = m->id},
      {.type = YZ_INT, .i = m->attempts},
      {.type = YZ_INT, .i = m->in_doubt}};
  return yz_store_exec(ob->store, NULL,
                       "UPDATE yz_outbox SET state = ?1, gateway_id = "
                       "coalesce(?2, gateway_id), last_error = ?3, next_at "
                       "= ?4, sent_at = ?5, delivered_at = ?6, updated_at = "
                       "?7, attempts = ?9, in_doubt = ?10 WHERE id = ?8",
                       v, 10);
}

int yz_outbox_flush_final(yz_outbox *ob) {
  int rc = YZ_OK;
  for (int i = 0; i < 3 && ob->npend; i++) {
    ob->calm_until = 0; /* no pause now: nothing comes after */
    rc = yz_outbox_flush(ob);
  }
  return rc;
}

int yz_outbox_flush(yz_outbox *ob) {
  if (!ob->npend) return YZ_OK;
  int64_t now = yz_clock_now_ms(ob->clock);
  if (now < ob->calm_until) return YZ_OK; /* tried again after a pause */
  int rc = yz_store_tx_begin(ob->store);
  for (int i = 0; i < ob->npend && rc == YZ_OK; i++)
    rc = write_outcome(ob, ob->pend[i].m);
  if (rc == YZ_OK) rc = yz_store_tx_commit(ob->store);
  if (rc != YZ_OK) {
    if (yz_store_tx_depth(ob->store) > 0) yz_store_tx_rollback(ob->store);
    ob->calm_until = now + 1000;
    return rc;
  }
  /* Durable now: tell, then forget. The list is detached first, since a
  ** listener may record new outcomes. */
  pending *p = ob->pend;
  int n = ob->npend;
  ob->pend = NULL;
  ob->npend = ob->pend_cap = 0;
  for (int i = 0; i < n; i++) {
    if (ob->notify) ob->notify(ob->notify_ud, p[i].m);
    yz_msg_free(p[i].m);
  }
  free(p);
  return YZ_OK;
}

/* ------------------------------------------------------------ next wake */

int64_t yz_outbox_next_wake(yz_outbox *ob) {
  int64_t now = yz_clock_now_ms(ob->clock), best = -1;
  if (now < ob->calm_until) return ob->calm_until - now;
  if (ob->npend) return 0;
  for (int i = 0; i < ob->nchans; i++) {
    chan *c = &ob->chans[i];
    if (c->paused || c->held || c->in_flight >= c->r.max_in_flight)
      continue; /* a completion (or its plugin's return) wakes */
    yz_stmt *st;
    if (yz_store_prepare(ob->store, NULL,
                         "SELECT min(next_at) FROM yz_outbox WHERE channel = "
                         "? AND state IN ('queued', 'failed')",
                         &st) != YZ_OK)
      continue;
    yz_value v = {.type = YZ_TEXT, .s = c->r.name, .n = strlen(c->r.name)};
    yz_stmt_bind(st, 1, &v);
    int64_t due = -1;
    if (yz_stmt_step(st) == YZ_ROW) {
      yz_value r;
      yz_stmt_column(st, 0, &r);
      if (r.type == YZ_INT) due = r.i;
    }
    yz_stmt_release(st);
    if (due < 0) continue;
    if (due < now) due = now;
    int64_t q = quiet_until(ob, c, due);
    if (q) due = q;
    if (c->r.tps > 0 && due <= now) {
      refill(c, now);
      if (c->tokens < 1)
        due = now + (int64_t)ceil((1 - c->tokens) / c->r.tps * 1000);
    }
    int64_t w = due - now;
    if (best < 0 || w < best) best = w;
  }
  return best;
}

int yz_outbox_in_flight(const yz_outbox *ob, const char *ch) {
  int n = 0;
  for (int i = 0; i < ob->nchans; i++)
    if (!ch || strcmp(ob->chans[i].r.name, ch) == 0)
      n += ob->chans[i].in_flight;
  return n;
}

/* ------------------------------------------------------------- the CLI */

/* The message whose column 'col' (id or key) is v. */
static int load_msg(yz_outbox *ob, const char *sql, const yz_value *v,
                    yz_msg **out) {
  *out = NULL;
  yz_stmt *st;
  int rc = yz_store_prepare(ob->store, NULL, sql, &st);
  if (rc != YZ_OK) return rc;
  yz_stmt_bind(st, 1, v);
  if (yz_stmt_step(st) == YZ_ROW) *out = read_msg(st);
  yz_stmt_release(st);
  return *out ? YZ_OK : YZ_ENOTFOUND;
}

int yz_outbox_get(yz_outbox *ob, int64_t id, yz_msg **out) {
  yz_value v = {.type = YZ_INT, .i = id};
  return load_msg(ob, "SELECT " MSG_COLUMNS " FROM yz_outbox WHERE id = ?", &v,
                  out);
}

int yz_outbox_get_key(yz_outbox *ob, const char *key, yz_msg **out) {
  yz_value v = {.type = YZ_TEXT, .s = key, .n = strlen(key)};
  return load_msg(ob, "SELECT " MSG_COLUMNS " FROM yz_outbox WHERE key = ?", &v,
                  out);
}

int yz_outbox_requeue(yz_outbox *ob, int64_t id, char *err, size_t errlen) {
  yz_msg *m;
  if (yz_outbox_get(ob, id, &m) != YZ_OK) {
    yz_fmt(err, errlen, "no message with id %lld", (long long)id);
    return YZ_ENOTFOUND;
  }
  int ok = strcmp(m->state, "dead") == 0 || strcmp(m->state, "failed") == 0;
  if (!ok) {
    yz_fmt(err, errlen,
           "message %lld is %s; only failed or dead messages can be retried",
           (long long)id, m->state);
    yz_msg_free(m);
    return YZ_EUSAGE;
  }
  yz_msg_free(m);
  yz_value v[2] = {{.type = YZ_INT, .i = yz_clock_now_ms(ob->clock)},
                   {.type = YZ_INT, .i = id}};
  /* The state is checked again in the UPDATE: the daemon may have claimed
  ** the message meanwhile. */
  int rc = yz_store_exec(ob->store, NULL,
                         "UPDATE yz_outbox SET state = 'queued', attempts = "
                         "0, next_at = ?1, updated_at = ?1 WHERE id = ?2 AND "
                         "state IN ('failed', 'dead')",
                         v, 2);
  if (rc != YZ_OK) {
    yz_fmt(err, errlen, "%s", yz_store_errmsg(ob->store));
    return rc;
  }
  if (yz_store_changes(ob->store) != 1) {
    yz_fmt(err, errlen, "message %lld changed state meanwhile; look again",
           (long long)id);
    return YZ_EUSAGE;
  }
  return YZ_OK;
}

int yz_outbox_requeue_dead(yz_outbox *ob) {
  yz_value v = {.type = YZ_INT, .i = yz_clock_now_ms(ob->clock)};
  if (yz_store_exec(ob->store, NULL,
                    "UPDATE yz_outbox SET state = 'queued', attempts = 0, "
                    "next_at = ?1, updated_at = ?1 WHERE state = 'dead'",
                    &v, 1) != YZ_OK)
    return -1;
  return yz_store_changes(ob->store);
}

int yz_outbox_due_now(yz_outbox *ob) {
  int64_t now = yz_clock_now_ms(ob->clock);
  for (int i = 0; i < ob->nchans; i++) {
    chan *c = &ob->chans[i];
    if (c->paused || c->held || quiet_until(ob, c, now)) continue;
    yz_stmt *st;
    if (yz_store_prepare(ob->store, NULL,
                         "SELECT 1 FROM yz_outbox WHERE channel = ? AND state "
                         "IN ('queued', 'failed') AND next_at <= ? LIMIT 1",
                         &st) != YZ_OK)
      continue;
    yz_value v[2] = {{.type = YZ_TEXT, .s = c->r.name, .n = strlen(c->r.name)},
                     {.type = YZ_INT, .i = now}};
    yz_stmt_bind(st, 1, &v[0]);
    yz_stmt_bind(st, 2, &v[1]);
    int due = yz_stmt_step(st) == YZ_ROW;
    yz_stmt_release(st);
    if (due) return 1;
  }
  return 0;
}

int yz_outbox_pause(yz_outbox *ob, const char *ch, int paused) {
  chan *c = find_chan(ob, ch);
  if (!c) return 0;
  int was = c->paused;
  c->paused = paused;
  return was;
}

int yz_outbox_hold(yz_outbox *ob, const char *ch, const char *why) {
  chan *c = find_chan(ob, ch);
  if (!c) return 0;
  int was = c->held != NULL;
  set_str(&c->held, why);
  return was;
}

const char *yz_outbox_held(const yz_outbox *ob, const char *ch) {
  chan *c = find_chan(ob, ch);
  return c ? c->held : NULL;
}

/* ------------------------------------------------------------- receipts */

int yz_outbox_awaiting(yz_outbox *ob, const char *ch, int max,
                       int64_t window_ms, yz_msg ***out) {
  return yz_outbox_awaiting_before(ob, ch, max, window_ms, INT64_MAX, out);
}

int yz_outbox_awaiting_before(yz_outbox *ob, const char *ch, int max,
                              int64_t window_ms, int64_t asked_before_ms,
                              yz_msg ***out) {
  *out = NULL;
  int64_t now = yz_clock_now_ms(ob->clock);
  if (max <= 0) return 0;
  if (yz_store_tx_begin(ob->store) != YZ_OK) return -1;
  yz_stmt *st;
  if (yz_store_prepare(ob->store, NULL,
                       "SELECT " MSG_COLUMNS
                       " FROM yz_outbox WHERE channel = ? AND state = 'sent' "
                       "AND sent_at >= ? AND polled_at < ? ORDER BY "
                       "polled_at, id LIMIT ?",
                       &st) != YZ_OK) {
    yz_store_tx_rollback(ob->store);
    return -1;
  }
  yz_value v[4] = {{.type = YZ_TEXT, .s = ch, .n = strlen(ch)},
                   {.type = YZ_INT, .i = now - window_ms},
                   {.type = YZ_INT, .i = asked_before_ms},
                   {.type = YZ_INT, .i = max}};
  for (int i = 0; i < 4; i++) yz_stmt_bind(st, i + 1, &v[i]);
  yz_msg **got = yz_xcalloc((size_t)max, sizeof *got);
  int k = 0, rc = YZ_OK;
  while (k < max && yz_stmt_step(st) == YZ_ROW) got[k++] = read_msg(st);
  yz_stmt_release(st);
  for (int i = 0; i < k && rc == YZ_OK; i++) {
    yz_value u[2] = {{.type = YZ_INT, .i = now},
                     {.type = YZ_INT, .i = got[i]->id}};
    rc = yz_store_exec(ob->store, NULL,
                       "UPDATE yz_outbox SET polled_at = ?1 WHERE id = ?2", u,
                       2);
  }
  if (rc == YZ_OK) rc = yz_store_tx_commit(ob->store);
  if (rc != YZ_OK) {
    if (yz_store_tx_depth(ob->store) > 0) yz_store_tx_rollback(ob->store);
    for (int i = 0; i < k; i++) yz_msg_free(got[i]);
    free(got);
    return -1;
  }
  if (!k) {
    free(got);
    return 0;
  }
  *out = got;
  return k;
}

int yz_outbox_key_of(yz_outbox *ob, const char *ch, const char *gateway_id,
                     char *key, size_t keylen) {
  yz_stmt *st;
  int rc = yz_store_prepare(ob->store, NULL,
                            "SELECT key FROM yz_outbox WHERE gateway_id = ?1 "
                            "AND (?2 IS NULL OR channel = ?2) ORDER BY id "
                            "DESC LIMIT 1",
                            &st);
  if (rc != YZ_OK) return rc;
  yz_value v[2] = {
      {.type = YZ_TEXT, .s = gateway_id, .n = strlen(gateway_id)},
      {.type = ch ? YZ_TEXT : YZ_NULL, .s = ch, .n = ch ? strlen(ch) : 0}};
  yz_stmt_bind(st, 1, &v[0]);
  yz_stmt_bind(st, 2, &v[1]);
  rc = YZ_ENOTFOUND;
  if (yz_stmt_step(st) == YZ_ROW) {
    yz_value r;
    yz_stmt_column(st, 0, &r);
    yz_fmt(key, keylen, "%.*s", (int)r.n, r.s);
    rc = YZ_OK;
  }
  yz_stmt_release(st);
  return rc;
}

void yz_outbox_forget_counts(yz_outbox *ob) {
  clear_counts(ob);
}
