/* webhook.h - outgoing webhook deliveries of bots (issue 19), off the event loop.
 *
 * The loop hands a delivery (url, secret, JSON body) to webhook_submit(), which only queues it
 * under a mutex and wakes the worker: a thread of its own running one curl multi handle, so no
 * DNS lookup, connect or slow endpoint ever holds the loop. The worker signs each try
 * (X-Parley-Signature: sha256=HMAC-SHA256(secret, timestamp + "." + body)), waits at most the
 * timeout for a 2xx, and retries on core/webhook_retry.h's schedule. Everything queued, waiting
 * for a retry or in flight counts against queue_max; past it a new delivery is dropped.
 */
#ifndef PARLEY_APP_WEBHOOK_H
#define PARLEY_APP_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

struct webhook;

struct webhook_config {
  int64_t timeout_ms; /* one try */
  int64_t retry_ms;   /* the first retry's delay (later ones double) */
  size_t queue_max;   /* deliveries held at once */
};

/* Counters since start, for /metrics. */
struct webhook_stats {
  uint64_t ok, retry, failed, dropped;
  uint64_t held; /* deliveries held now */
};

/* Starts the worker thread. Returns 0 and sets *out, or PARLEY_EINTERNAL. Call once, from the
 * loop thread (it initializes libcurl). */
int webhook_start(struct webhook **out, const struct webhook_config *cfg);

/* Queues one delivery of `body` (len bytes) to `url` signed with `secret` (all borrowed: copied).
 * Returns 0, or PARLEY_EUNAVAILABLE when queue_max deliveries are held (dropped, counted). */
int webhook_submit(struct webhook *w, const char *url, const char *secret, const char *body,
                   size_t len);

void webhook_get_stats(struct webhook *w, struct webhook_stats *out);

/* Stops the worker (deliveries still held are abandoned) and frees w. NULL is fine. */
void webhook_stop(struct webhook *w);

#endif
