/*
** http.h: the one libcurl multi handle of the process. For now it is what
** the event loop waits in (curl_multi_poll, with the loop's own descriptors
** beside curl's); requests arrive with the messaging issue. It is the only
** module that includes curl.h.
*/
#ifndef YZ_HTTP_H
#define YZ_HTTP_H

typedef struct yz_http yz_http;

/* Creates the multi handle (initialising libcurl once per process).
** Returns NULL with err set on failure. */
yz_http *yz_http_new(char *err, unsigned errlen);
/* Frees it; accepts NULL. */
void yz_http_free(yz_http *http);
/* Waits up to timeout_ms for transfers or for 'fd' to be readable; returns
** 1 when fd is readable, 0 otherwise, -1 on an error. */
int yz_http_wait(yz_http *http, int fd, int timeout_ms);
/* Makes a wait return early (safe from another thread). */
void yz_http_wakeup(yz_http *http);

#endif
