/*
** http.c: the libcurl multi handle and its requests (see http.h).
*/
#include "http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yz.h"

typedef struct xfer {
  CURL *easy;
  struct curl_slist *headers;
  char *body;  /* the request body (copied) */
  char *rbody; /* response body */
  size_t rlen, rcap, rmax;
  char *rhead; /* response header block */
  size_t hlen, hcap;
  int too_big; /* the body passed the cap */
  yz_http_done done;
  void *ud;
  struct xfer *prev, *next;
} xfer;

struct yz_http {
  CURLM *multi; /* every transfer of the process */
  xfer *xfers;  /* running */
  int running;
  CURL **idle; /* easy handles kept for reuse (their TLS sessions) */
  int nidle;
};

#define IDLE_MAX 64

yz_http *yz_http_new(char *err, unsigned errlen) {
  /* curl_global_init is reference counted: one call per handle is fine. */
  CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (rc != CURLE_OK) {
    snprintf(err, errlen, "libcurl: %s", curl_easy_strerror(rc));
    return NULL;
  }
  yz_http *http = calloc(1, sizeof *http);
  if (http) http->multi = curl_multi_init();
  if (!http || !http->multi) {
    snprintf(err, errlen, "libcurl: cannot create a multi handle");
    free(http);
    curl_global_cleanup();
    return NULL;
  }
  /* Keep idle connections to gateways open between bursts (a TLS handshake
  ** per message would cost more than the message): libcurl's default pool
  ** shrinks with the transfers in progress. */
  curl_multi_setopt(http->multi, CURLMOPT_MAXCONNECTS, 512L);
  return http;
}

static void xfer_free(yz_http *http, xfer *x) {
  curl_multi_remove_handle(http->multi, x->easy);
  if (http->nidle < IDLE_MAX) {
    if (!http->idle) http->idle = yz_xcalloc(IDLE_MAX, sizeof *http->idle);
    curl_easy_reset(x->easy);
    http->idle[http->nidle++] = x->easy;
  } else {
    curl_easy_cleanup(x->easy);
  }
  curl_slist_free_all(x->headers);
  free(x->body);
  free(x->rbody);
  free(x->rhead);
  if (x->prev)
    x->prev->next = x->next;
  else
    http->xfers = x->next;
  if (x->next) x->next->prev = x->prev;
  http->running--;
  free(x);
}

void yz_http_free(yz_http *http) {
  if (!http) return;
  while (http->xfers) xfer_free(http, http->xfers);
  for (int i = 0; i < http->nidle; i++) curl_easy_cleanup(http->idle[i]);
  free(http->idle);
  curl_multi_cleanup(http->multi);
  free(http);
  curl_global_cleanup();
}

int yz_http_wait(yz_http *http, int fd, int timeout_ms) {
  struct curl_waitfd extra = {.fd = fd, .events = CURL_WAIT_POLLIN};
  int n = 0;
  if (curl_multi_poll(http->multi, fd >= 0 ? &extra : NULL, fd >= 0 ? 1 : 0,
                      timeout_ms, &n) != CURLM_OK)
    return -1;
  return (fd >= 0 && (extra.revents & CURL_WAIT_POLLIN)) ? 1 : 0;
}

void yz_http_wakeup(yz_http *http) {
  curl_multi_wakeup(http->multi);
}

static int grow(char **p, size_t *cap, size_t need) {
  if (need <= *cap) return 0;
  size_t c = *cap ? *cap : 1024;
  while (c < need) c *= 2;
  char *q = realloc(*p, c);
  if (!q) return -1;
  *p = q;
  *cap = c;
  return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
  xfer *x = ud;
  size_t n = size * nmemb;
  if (x->rlen + n > x->rmax) {
    x->too_big = 1;
    return 0; /* aborts the transfer */
  }
  if (grow(&x->rbody, &x->rcap, x->rlen + n + 1)) return 0;
  memcpy(x->rbody + x->rlen, data, n);
  x->rlen += n;
  x->rbody[x->rlen] = 0;
  return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud) {
  xfer *x = ud;
  size_t n = size * nmemb;
  /* A new status line (after a 100 Continue, say) starts the block again. */
  if (n > 5 && memcmp(data, "HTTP/", 5) == 0) x->hlen = 0;
  if (x->hlen + n > 64 * 1024) return 0;
  if (grow(&x->rhead, &x->hcap, x->hlen + n + 1)) return 0;
  memcpy(x->rhead + x->hlen, data, n);
  x->hlen += n;
  x->rhead[x->hlen] = 0;
  return n;
}

void *yz_http_start(yz_http *http, const yz_http_req *req, yz_http_done done,
                    void *ud, char *err, size_t errlen) {
  char host[256];
  if (yz_http_url_host(req->url, host, sizeof host) != 0) {
    yz_fmt(err, errlen, "not an http(s) URL: %s", req->url);
    return NULL;
  }
  xfer *x = yz_xcalloc(1, sizeof *x);
  x->easy = http->nidle ? http->idle[--http->nidle] : curl_easy_init();
  if (!x->easy) {
    yz_fmt(err, errlen, "libcurl: cannot create a handle");
    free(x);
    return NULL;
  }
  CURL *e = x->easy;
  x->rmax = req->max_response ? req->max_response : 1024 * 1024;
  x->done = done;
  x->ud = ud;
  curl_easy_setopt(e, CURLOPT_URL, req->url);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                   req->timeout_ms > 0 ? req->timeout_ms : 30000L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
  curl_easy_setopt(e, CURLOPT_PRIVATE, x);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "yizhan/" YZ_VERSION);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, req->insecure ? 0L : 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, req->insecure ? 0L : 2L);
  const char *method = req->method ? req->method : "GET";
  if (strcmp(method, "GET") == 0) {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else if (strcmp(method, "HEAD") == 0) {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else {
    if (strcmp(method, "POST") != 0)
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    x->body = yz_xmalloc(req->bodylen + 1);
    if (req->bodylen) memcpy(x->body, req->body, req->bodylen);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->bodylen);
  }
  /* No "Expect: 100-continue" round trip for small bodies. */
  x->headers = curl_slist_append(NULL, "Expect:");
  for (int i = 0; i < req->nheaders; i++)
    x->headers = curl_slist_append(x->headers, req->headers[i]);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
  x->next = http->xfers;
  if (x->next) x->next->prev = x;
  http->xfers = x;
  http->running++;
  if (curl_multi_add_handle(http->multi, e) != CURLM_OK) {
    yz_fmt(err, errlen, "libcurl: cannot start the request");
    xfer_free(http, x);
    return NULL;
  }
  return x;
}

void yz_http_cancel(yz_http *http, void *handle) {
  for (xfer *x = http->xfers; x; x = x->next)
    if (x == handle) {
      xfer_free(http, x);
      return;
    }
}

static void complete(yz_http *http, xfer *x, CURLcode code) {
  yz_http_resp r;
  memset(&r, 0, sizeof r);
  if (code == CURLE_OK) {
    r.ok = 1;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &r.status);
  } else if (x->too_big) {
    yz_fmt(r.err, sizeof r.err, "the answer is larger than %zu bytes", x->rmax);
  } else {
    r.timed_out = code == CURLE_OPERATION_TIMEDOUT;
    yz_fmt(r.err, sizeof r.err, "%s", curl_easy_strerror(code));
  }
  r.body = x->rbody ? x->rbody : "";
  r.blen = x->rlen;
  r.headers = x->rhead ? x->rhead : "";
  r.hlen = x->hlen;
  yz_http_done done = x->done;
  void *ud = x->ud;
  /* The transfer is gone before the callback runs: it may start another. */
  char *body = x->rbody, *head = x->rhead;
  x->rbody = x->rhead = NULL;
  xfer_free(http, x);
  if (done) done(ud, &r);
  free(body);
  free(head);
}

int yz_http_perform(yz_http *http) {
  int still = 0;
  curl_multi_perform(http->multi, &still);
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(http->multi, &left))) {
    if (m->msg != CURLMSG_DONE) continue;
    xfer *x = NULL;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
    if (x) complete(http, x, m->data.result);
  }
  return http->running;
}

int yz_http_running(const yz_http *http) {
  return http->running;
}

int yz_http_url_host(const char *url, char *dst, size_t n) {
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL, *port = NULL;
  int rc = -1;
  if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
      (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
    if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK && port)
      yz_fmt(dst, n, "%s:%s", host, port);
    else
      yz_fmt(dst, n, "%s", host);
    rc = 0;
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return rc;
}

char *yz_http_escape(const char *s, size_t n) {
  char *e = curl_easy_escape(NULL, s, (int)n);
  char *r = yz_strdup(e ? e : "");
  curl_free(e);
  return r;
}
