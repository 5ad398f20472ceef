/*
** http.c: the libcurl multi handle (see http.h).
*/
#include "http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>

struct yz_http {
  CURLM *multi; /* every transfer of the process */
};

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
  return http;
}

void yz_http_free(yz_http *http) {
  if (!http) return;
  curl_multi_cleanup(http->multi);
  free(http);
  curl_global_cleanup();
}

int yz_http_wait(yz_http *http, int fd, int timeout_ms) {
  struct curl_waitfd extra = {.fd = fd, .events = CURL_WAIT_POLLIN};
  int n = 0;
  if (curl_multi_poll(http->multi, &extra, 1, timeout_ms, &n) != CURLM_OK)
    return -1;
  return (extra.revents & CURL_WAIT_POLLIN) ? 1 : 0;
}

void yz_http_wakeup(yz_http *http) {
  curl_multi_wakeup(http->multi);
}
