/* webhook.c - the webhook worker (see webhook.h).
 *
 * Why a thread rather than curl multi inside libuv (uv_poll + curl_multi_socket_action): the
 * deliveries share nothing with the loop but a queue, a worker needs no socket callbacks or
 * timer plumbing, and whatever libcurl does (name resolution, TLS handshakes, a slow endpoint)
 * cannot cost the loop a microsecond. The worker sleeps in curl_multi_poll(), which
 * webhook_submit() and webhook_stop() interrupt with curl_multi_wakeup().
 */
#include "app/webhook.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "core/webhook_retry.h"

struct delivery {
  struct delivery *next;
  char *url, *secret, *body;
  size_t len;
  char id[33]; /* X-Parley-Delivery: the same for every try */
  int tries;   /* tries made */
  int64_t due; /* Unix ms of the next try */
  CURL *easy;  /* in flight */
  struct curl_slist *headers;
};

struct webhook {
  struct webhook_config cfg;
  pthread_t thread;
  pthread_mutex_t mu;
  struct delivery *incoming;           /* submitted, not yet seen by the worker (under mu) */
  int stop;                            /* under mu */
  size_t held;                         /* under mu: incoming + waiting + in flight */
  uint64_t ok, retry, failed, dropped; /* under mu */
  CURLM *multi;
  struct delivery *waiting; /* the worker's: due for a (re)try, or in flight */
};

static void delivery_free(struct delivery *d) {
  if (d == NULL)
    return;
  if (d->secret)
    sodium_memzero(d->secret, strlen(d->secret));
  free(d->url);
  free(d->secret);
  free(d->body);
  curl_slist_free_all(d->headers);
  free(d);
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *ud) {
  (void)ptr;
  (void)ud;
  return size * nmemb;
}

/* Starts one try of d: fresh timestamp and signature. */
static int try_start(struct webhook *w, struct delivery *d, int64_t now) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  char hex[2 * EVP_MAX_MD_SIZE + 1], ts[32], h[256];
  snprintf(ts, sizeof ts, "%" PRId64, now);
  {
    /* The signed string is timestamp "." body: a replayed body with a new timestamp fails. */
    size_t tlen = strlen(ts);
    unsigned char *msg = malloc(tlen + 1 + d->len);
    if (msg == NULL)
      return -1;
    memcpy(msg, ts, tlen);
    msg[tlen] = '.';
    memcpy(msg + tlen + 1, d->body, d->len);
    if (HMAC(EVP_sha256(), d->secret, (int)strlen(d->secret), msg, tlen + 1 + d->len, mac,
             &mac_len) == NULL) {
      free(msg);
      return -1;
    }
    free(msg);
  }
  sodium_bin2hex(hex, sizeof hex, mac, mac_len);
  curl_slist_free_all(d->headers);
  d->headers = curl_slist_append(NULL, "Content-Type: application/json");
  snprintf(h, sizeof h, "X-Parley-Timestamp: %s", ts);
  d->headers = curl_slist_append(d->headers, h);
  snprintf(h, sizeof h, "X-Parley-Signature: sha256=%s", hex);
  d->headers = curl_slist_append(d->headers, h);
  snprintf(h, sizeof h, "X-Parley-Delivery: %s", d->id);
  d->headers = curl_slist_append(d->headers, h);
  d->headers = curl_slist_append(d->headers, "Expect:"); /* no 100-continue round trip */
  d->easy = curl_easy_init();
  if (d->easy == NULL || d->headers == NULL)
    return -1;
  curl_easy_setopt(d->easy, CURLOPT_URL, d->url);
  curl_easy_setopt(d->easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(d->easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(d->easy, CURLOPT_TIMEOUT_MS, (long)w->cfg.timeout_ms);
  curl_easy_setopt(d->easy, CURLOPT_HTTPHEADER, d->headers);
  curl_easy_setopt(d->easy, CURLOPT_POSTFIELDS, d->body);
  curl_easy_setopt(d->easy, CURLOPT_POSTFIELDSIZE, (long)d->len);
  curl_easy_setopt(d->easy, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(d->easy, CURLOPT_PRIVATE, d);
  curl_easy_setopt(d->easy, CURLOPT_USERAGENT, "Parley-Webhook/1");
  d->tries++;
  return curl_multi_add_handle(w->multi, d->easy) == CURLM_OK ? 0 : -1;
}

/* A try of d ended with `status` (0: no response). Returns 1 if d is finished (to be freed). */
static int try_done(struct webhook *w, struct delivery *d, long status, int64_t now) {
  int64_t next;
  curl_multi_remove_handle(w->multi, d->easy);
  curl_easy_cleanup(d->easy);
  d->easy = NULL;
  if (webhook_acknowledged(status)) {
    pthread_mutex_lock(&w->mu);
    w->ok++;
    pthread_mutex_unlock(&w->mu);
    return 1;
  }
  next = webhook_retry_at(d->tries, now, w->cfg.retry_ms);
  pthread_mutex_lock(&w->mu);
  if (next < 0)
    w->failed++;
  else
    w->retry++;
  pthread_mutex_unlock(&w->mu);
  if (next < 0) {
    log_warn("webhook %s: given up after %d tries (last status %ld)", d->id, d->tries, status);
    return 1;
  }
  d->due = next;
  return 0;
}

static void *worker(void *arg) {
  struct webhook *w = arg;
  for (;;) {
    struct delivery *in, **pp, *d;
    int64_t now = clock_wall_ms(), wait = 1000;
    int running = 0, left = 0;
    CURLMsg *msg;

    pthread_mutex_lock(&w->mu);
    in = w->incoming;
    w->incoming = NULL;
    if (w->stop) {
      pthread_mutex_unlock(&w->mu);
      while (in) {
        d = in->next;
        delivery_free(in);
        in = d;
      }
      break;
    }
    pthread_mutex_unlock(&w->mu);
    while (in) { /* new ones go first try now */
      d = in->next;
      in->due = now;
      in->next = w->waiting;
      w->waiting = in;
      in = d;
    }
    for (d = w->waiting; d; d = d->next)
      if (d->easy == NULL && d->due <= now && try_start(w, d, now) != 0) {
        if (d->easy) {
          curl_easy_cleanup(d->easy);
          d->easy = NULL;
        }
        d->due = now + w->cfg.retry_ms; /* out of memory: try later */
      }
    curl_multi_perform(w->multi, &running);
    now = clock_wall_ms();
    while ((msg = curl_multi_info_read(w->multi, &left)) != NULL) {
      long status = 0;
      struct delivery *done = NULL;
      if (msg->msg != CURLMSG_DONE)
        continue;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&done);
      if (msg->data.result == CURLE_OK)
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
      if (done && try_done(w, done, status, now)) {
        for (pp = &w->waiting; *pp; pp = &(*pp)->next)
          if (*pp == done) {
            *pp = done->next;
            break;
          }
        delivery_free(done);
        pthread_mutex_lock(&w->mu);
        w->held--;
        pthread_mutex_unlock(&w->mu);
      }
    }
    for (d = w->waiting; d; d = d->next)
      if (d->easy == NULL && d->due - now < wait)
        wait = d->due - now;
    if (wait < 0)
      wait = 0;
    curl_multi_poll(w->multi, NULL, 0, (int)wait, NULL);
  }
  while (w->waiting) {
    struct delivery *d = w->waiting;
    w->waiting = d->next;
    if (d->easy) {
      curl_multi_remove_handle(w->multi, d->easy);
      curl_easy_cleanup(d->easy);
      d->easy = NULL;
    }
    delivery_free(d);
  }
  return NULL;
}

int webhook_start(struct webhook **out, const struct webhook_config *cfg) {
  struct webhook *w = calloc(1, sizeof *w);
  if (w == NULL)
    return PARLEY_EINTERNAL;
  w->cfg = *cfg;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || (w->multi = curl_multi_init()) == NULL) {
    free(w);
    return PARLEY_EINTERNAL;
  }
  pthread_mutex_init(&w->mu, NULL);
  if (pthread_create(&w->thread, NULL, worker, w) != 0) {
    curl_multi_cleanup(w->multi);
    pthread_mutex_destroy(&w->mu);
    free(w);
    return PARLEY_EINTERNAL;
  }
  *out = w;
  return 0;
}

int webhook_submit(struct webhook *w, const char *url, const char *secret, const char *body,
                   size_t len) {
  unsigned char rnd[16];
  struct delivery *d;
  pthread_mutex_lock(&w->mu);
  if (w->held >= w->cfg.queue_max) {
    w->dropped++;
    pthread_mutex_unlock(&w->mu);
    return PARLEY_EUNAVAILABLE;
  }
  w->held++; /* reserved before the copies: a burst cannot overshoot the bound */
  pthread_mutex_unlock(&w->mu);
  d = calloc(1, sizeof *d);
  if (d == NULL || (d->url = strdup(url)) == NULL || (d->secret = strdup(secret)) == NULL ||
      (d->body = malloc(len + 1)) == NULL) {
    delivery_free(d);
    pthread_mutex_lock(&w->mu);
    w->held--;
    w->dropped++;
    pthread_mutex_unlock(&w->mu);
    return PARLEY_EUNAVAILABLE;
  }
  memcpy(d->body, body, len);
  d->body[len] = '\0';
  d->len = len;
  randombytes_buf(rnd, sizeof rnd);
  sodium_bin2hex(d->id, sizeof d->id, rnd, sizeof rnd);
  pthread_mutex_lock(&w->mu);
  d->next = w->incoming;
  w->incoming = d;
  pthread_mutex_unlock(&w->mu);
  curl_multi_wakeup(w->multi);
  return 0;
}

void webhook_get_stats(struct webhook *w, struct webhook_stats *out) {
  memset(out, 0, sizeof *out);
  if (w == NULL)
    return;
  pthread_mutex_lock(&w->mu);
  out->ok = w->ok;
  out->retry = w->retry;
  out->failed = w->failed;
  out->dropped = w->dropped;
  out->held = w->held;
  pthread_mutex_unlock(&w->mu);
}

void webhook_stop(struct webhook *w) {
  if (w == NULL)
    return;
  pthread_mutex_lock(&w->mu);
  w->stop = 1;
  pthread_mutex_unlock(&w->mu);
  curl_multi_wakeup(w->multi);
  pthread_join(w->thread, NULL);
  curl_multi_cleanup(w->multi);
  pthread_mutex_destroy(&w->mu);
  free(w);
}
