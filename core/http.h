/*
** http.h: the one libcurl multi handle of the process. The event loop waits
** in it (curl_multi_poll, with the loop's own descriptors beside curl's);
** requests are started here and complete through a callback while the
** loop drives the transfers. Connections are reused across requests (the
** multi handle's connection cache). It is the only module that includes
** curl.h.
*/
#ifndef YZ_HTTP_H
#define YZ_HTTP_H

#include <stddef.h>

typedef struct yz_http yz_http;

typedef struct yz_http_req {
  const char *method;         /* GET, POST, PUT, ... */
  const char *url;            /* http:// or https:// only */
  const char *const *headers; /* "Name: value" lines */
  int nheaders;
  const char *body; /* request body, or NULL */
  size_t bodylen;
  long timeout_ms;     /* whole request; 0: 30 s */
  size_t max_response; /* bytes of body kept at most; 0: 1 MiB */
  int insecure;        /* skip TLS verification (explicitly asked for) */
} yz_http_req;

typedef struct yz_http_resp {
  int ok;        /* an HTTP answer came (any status) */
  long status;   /* its status */
  char *headers; /* the raw header block of the last answer */
  size_t hlen;   /* its length */
  char *body;    /* the body (NUL-terminated) */
  size_t blen;   /* its length */
  int timed_out; /* !ok: the timeout fired */
  char err[256]; /* !ok: why ("connection refused", ...) */
} yz_http_resp;

/* Told once when a request ends; the response is freed after it returns. */
typedef void (*yz_http_done)(void *ud, const yz_http_resp *r);

/* Creates the multi handle (initialising libcurl once per process).
** Returns NULL with err set on failure. */
yz_http *yz_http_new(char *err, unsigned errlen);
/* Frees it, cancelling every request (their callbacks are not called);
** accepts NULL. */
void yz_http_free(yz_http *http);
/* Waits up to timeout_ms for transfers or for 'fd' to be readable; returns
** 1 when fd is readable, 0 otherwise, -1 on an error. */
int yz_http_wait(yz_http *http, int fd, int timeout_ms);
/* Makes a wait return early (safe from another thread). */
void yz_http_wakeup(yz_http *http);

/* Starts a request. Returns a handle (for yz_http_cancel), or NULL with
** err set when the request cannot start (bad URL, ...). */
void *yz_http_start(yz_http *http, const yz_http_req *req, yz_http_done done,
                    void *ud, char *err, size_t errlen);
/* Cancels a request whose callback has not run; it never runs. */
void yz_http_cancel(yz_http *http, void *handle);
/* Moves transfers along without waiting and calls the callbacks of those
** that ended. Returns how many are still running. */
int yz_http_perform(yz_http *http);
/* Requests started and not yet ended. */
int yz_http_running(const yz_http *http);

/* The host part of an http(s) URL, with ":port" when the URL names one,
** into dst. Returns 0, or -1 when url is not a valid http(s) URL. */
int yz_http_url_host(const char *url, char *dst, size_t n);
/* Percent-encodes s (RFC 3986 unreserved kept); malloc'd result. */
char *yz_http_escape(const char *s, size_t n);

#endif
