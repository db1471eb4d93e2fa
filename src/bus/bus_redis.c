/* bus_redis.c - the bus on Redis pub/sub, through hiredis' asynchronous API on the loop
 * (redis_uv.c). "redis://host:port".
 *
 * Two connections: one in subscribe mode, one for PUBLISH. Each publication carries a 16-byte
 * random instance id in front of the caller's bytes, so an instance drops its own publications
 * whatever the channel (the app serves its local sockets directly).
 *
 * Publications wait in a FIFO until Redis answered them: a connection that drops with some in
 * flight sends them again after the reconnect (a receiver may see one twice; the app dedupes by
 * seq), and while Redis is away they queue up to PUB_QUEUE_MAX bytes, the oldest dropped past
 * that (the receivers' catch-up by seq covers it). When either connection drops the bus reports
 * down, retries with exponential backoff (RETRY_MIN_MS doubling to RETRY_MAX_MS), subscribes
 * again to every channel and reports each one with on_subscribed, so the app catches up from
 * the store for what it missed.
 *
 * Subscriptions are a small state machine per channel, for two reasons in hiredis 0.14: it
 * forgets a channel's callback when an UNSUBSCRIBE reply comes in, even if a SUBSCRIBE for the
 * same channel was sent after it; and it asserts when a subscribe reply arrives after the
 * subscription count dropped to zero. So a channel is subscribed again only once its
 * UNSUBSCRIBE was answered, and the subscribe connection always holds one channel of its own
 * ("parley:bus:<instance id>"), so its count never reaches zero.
 *
 * hiredis 0.14's libuv adapter ignores a poll error (a reset, a refused connect), which left
 * such a context waiting forever: redis_uv.c is the adapter with hiredis 1.0's fix, so those
 * disconnect at once. What no error reports (a connect that hangs, a Redis that stopped
 * answering) is found by timers: connects that take longer than CONNECT_TIMEOUT_MS are
 * abandoned and retried, and every BEAT_MS the instance publishes on its own channel; when
 * nothing came back for SILENT_MS both connections are dropped and made again.
 *
 * "redis://host:port/NAME" (NAME: letters first, then letters, digits, "_", "." or "-") puts
 * "NAME:" in front of every channel and key, so several
 * deployments (or test clusters) can share one Redis without hearing each other.
 *
 * Presence (bus.h) lives in keys, changed by Lua scripts so each change is atomic: a hash per
 * user ("pr:<id>": one field per instance, "<state> <lastSeen>", plus "_pub", the aggregate
 * last reported, and "_ls", the lastSeen of statements gone), a sorted set of every statement
 * by expiry ("pr:exp", members "<user id> <instance>") and a hash of the users not offline
 * ("pr:on"). The scripts name keys they compute (the per-user hashes), which a single Redis
 * server allows and Redis Cluster would not. Presence calls use the publish connection.
 */
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "bus/bus.h"
#include "bus/bus_redis_int.h"
#include "bus/redis_uv.h"
#include "common/error.h"
#include "common/log.h"

enum rch_state { RCH_NONE, RCH_SUBSCRIBING, RCH_ACTIVE, RCH_UNSUBSCRIBING };

struct rchan {
  int wanted;             /* the caller wants it subscribed */
  enum rch_state state;   /* what Redis has, or has been asked */
  UT_hash_handle hh;
  char name[];
};

struct rpub {
  struct rpub *next;
  int sent;               /* written to the current connection, reply pending */
  size_t clen, len;
  char *channel;          /* points into data, after the payload */
  char data[];            /* instance id + payload, then the channel name */
};


static void connect_missing(struct rbus *rb);
static void on_retry(uv_timer_t *t) { connect_missing(t->data); }

static void set_state(struct rbus *rb) {
  int up = rb->sub_ready && rb->pub_ready;
  if (up == rb->up || rb->closing)
    return;
  rb->up = up;
  if (up) {
    rb->backoff_ms = 0;
    rb->last_heard = uv_now(rb->loop);
    log_info("bus: connected to redis %s:%d", rb->host, rb->port);
  } else {
    log_warn("bus: lost redis %s:%d, reconnecting", rb->host, rb->port);
  }
  if (rb->cb.on_state)
    rb->cb.on_state(rb->cb.ud, up);
}

static void schedule_retry(struct rbus *rb) {
  if (rb->closing || uv_is_active((uv_handle_t *)&rb->retry))
    return;
  rb->backoff_ms = rb->backoff_ms ? rb->backoff_ms * 2 : RETRY_MIN_MS;
  if (rb->backoff_ms > RETRY_MAX_MS)
    rb->backoff_ms = RETRY_MAX_MS;
  uv_timer_start(&rb->retry, on_retry, rb->backoff_ms, 0);
}

/* --- the subscribe connection ----------------------------------------------------------------- */

static void sub_reply(redisAsyncContext *ac, void *r, void *privdata);

static void send_sub(struct rbus *rb, struct rchan *c, const char *cmd) {
  const char *argv[2] = {cmd, c->name};
  size_t argvlen[2] = {strlen(cmd), strlen(c->name)};
  if (redisAsyncCommandArgv(rb->sub, sub_reply, rb, 2, argv, argvlen) != REDIS_OK)
    return; /* the connection is going away; the reconnect subscribes again */
  c->state = cmd[0] == 'S' ? RCH_SUBSCRIBING : RCH_UNSUBSCRIBING;
}

static void chan_free(struct rbus *rb, struct rchan *c) {
  HASH_DEL(rb->chans, c);
  free(c);
}

static void sub_reply(redisAsyncContext *ac, void *r, void *privdata) {
  struct rbus *rb = privdata;
  redisReply *reply = r;
  const char *kind;
  struct rchan *c;
  char name[FULL_MAX + 1];

  if (reply == NULL || rb->closing || ac != rb->sub)
    return; /* disconnecting: the disconnect callback takes it from here */
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
      reply->element[0]->type != REDIS_REPLY_STRING ||
      reply->element[1]->type != REDIS_REPLY_STRING)
    return;
  kind = reply->element[0]->str;
  if (reply->element[1]->len > FULL_MAX)
    return;
  memcpy(name, reply->element[1]->str, reply->element[1]->len);
  name[reply->element[1]->len] = '\0';

  if (strcmp(kind, "message") == 0) {
    const redisReply *d = reply->element[2];
    if (strcmp(name, rb->own_channel) == 0) {
      rb->last_heard = uv_now(rb->loop); /* our heartbeat made the round trip */
      return;
    }
    if (d->type != REDIS_REPLY_STRING || d->len < SELF_LEN ||
        memcmp(d->str, rb->self, SELF_LEN) == 0)
      return; /* not ours to read, or our own publication */
    HASH_FIND_STR(rb->chans, name, c);
    if (!(c && c->wanted && c->state == RCH_ACTIVE))
      log_debug("bus: message on %s dropped (state %d)", name, c ? (int)c->state : -1);
    if (c && c->wanted && c->state == RCH_ACTIVE)
      rb->cb.on_message(rb->cb.ud, name + rb->ns_len, d->str + SELF_LEN, d->len - SELF_LEN);
    return;
  }
  if (strcmp(name, rb->own_channel) == 0) {
    if (strcmp(kind, "subscribe") == 0) {
      rb->sub_ready = 1;
      set_state(rb);
    }
    return;
  }
  HASH_FIND_STR(rb->chans, name, c);
  if (c == NULL)
    return;
  if (strcmp(kind, "subscribe") == 0) {
    c->state = RCH_ACTIVE;
    if (!c->wanted)
      send_sub(rb, c, "UNSUBSCRIBE");
    else if (rb->cb.on_subscribed)
      rb->cb.on_subscribed(rb->cb.ud, name + rb->ns_len);
  } else if (strcmp(kind, "unsubscribe") == 0) {
    c->state = RCH_NONE;
    if (c->wanted)
      send_sub(rb, c, "SUBSCRIBE"); /* wanted again while the unsubscribe was in flight */
    else
      chan_free(rb, c);
  }
}

static void on_sub_connect(const redisAsyncContext *ac, int status) {
  struct rbus *rb = ac->data;
  struct rchan *c, *tmp;
  if (status != REDIS_OK) {
    /* hiredis frees the context after this callback. */
    log_debug("bus: redis subscribe connection failed: %s", ac->errstr);
    rb->sub = NULL;
    schedule_retry(rb);
    return;
  }
  {
    const char *argv[2] = {"SUBSCRIBE", rb->own_channel};
    size_t argvlen[2] = {9, strlen(rb->own_channel)};
    redisAsyncCommandArgv(rb->sub, sub_reply, rb, 2, argv, argvlen);
  }
  HASH_ITER(hh, rb->chans, c, tmp) {
    if (c->wanted)
      send_sub(rb, c, "SUBSCRIBE");
    else
      chan_free(rb, c);
  }
}

static void on_sub_disconnect(const redisAsyncContext *ac, int status) {
  struct rbus *rb = ac->data;
  struct rchan *c, *tmp;
  rb->sub = NULL;
  rb->sub_ready = 0;
  HASH_ITER(hh, rb->chans, c, tmp) {
    if (c->wanted)
      c->state = RCH_NONE;
    else
      chan_free(rb, c);
  }
  if (rb->closing) {
    connect_missing(rb); /* finishes the close once both are gone */
    return;
  }
  set_state(rb);
  schedule_retry(rb);
}

/* --- the publish connection ------------------------------------------------------------------- */

static void pub_reply(redisAsyncContext *ac, void *r, void *privdata);

static void pub_send(struct rbus *rb, struct rpub *p) {
  const char *argv[3] = {"PUBLISH", p->channel, p->data};
  size_t argvlen[3] = {7, p->clen, p->len};
  if (redisAsyncCommandArgv(rb->pub, pub_reply, rb, 3, argv, argvlen) == REDIS_OK)
    p->sent = 1;
  else
    log_debug("bus: PUBLISH not written: %s", rb->pub->errstr);
}

static void pub_pop(struct rbus *rb) {
  struct rpub *p = rb->q_head;
  rb->q_head = p->next;
  if (rb->q_head == NULL)
    rb->q_tail = NULL;
  rb->q_bytes -= p->len;
  free(p);
}

static void pub_reply(redisAsyncContext *ac, void *r, void *privdata) {
  struct rbus *rb = privdata;
  if (r == NULL || rb->closing) {
    /* The connection dropped: what was written but not answered is sent again later. */
    for (struct rpub *p = rb->q_head; p; p = p->next)
      p->sent = 0;
    return;
  }
  /* Replies come in the order the commands were written: this one is the oldest sent. */
  if (rb->q_head && rb->q_head->sent)
    pub_pop(rb);
}

static void on_pub_connect(const redisAsyncContext *ac, int status) {
  struct rbus *rb = ac->data;
  if (status != REDIS_OK) {
    log_debug("bus: redis publish connection failed: %s", ac->errstr);
    rb->pub = NULL;
    schedule_retry(rb);
    return;
  }
  rb->pub_ready = 1;
  log_debug("bus: publish connection up, %zu bytes queued", rb->q_bytes);
  for (struct rpub *p = rb->q_head; p; p = p->next)
    if (!p->sent)
      pub_send(rb, p);
  set_state(rb);
}

static void on_pub_disconnect(const redisAsyncContext *ac, int status) {
  struct rbus *rb = ac->data;
  rb->pub = NULL;
  rb->pub_ready = 0;
  for (struct rpub *p = rb->q_head; p; p = p->next)
    p->sent = 0;
  if (rb->closing) {
    connect_missing(rb);
    return;
  }
  set_state(rb);
  schedule_retry(rb);
}

/* Publishes a heartbeat, or drops both connections when the last ones did not come back. */
static void on_beat(uv_timer_t *t) {
  struct rbus *rb = t->data;
  const char *argv[3] = {"PUBLISH", rb->own_channel, (const char *)rb->self};
  size_t argvlen[3] = {7, strlen(rb->own_channel), SELF_LEN};
  if (!rb->up || rb->closing)
    return;
  if (uv_now(rb->loop) - rb->last_heard > SILENT_MS) {
    log_warn("bus: redis %s:%d stopped answering, reconnecting", rb->host, rb->port);
    /* Freeing a connected context runs its disconnect callback, which schedules the retry. */
    if (rb->sub)
      redisAsyncFree(rb->sub);
    if (rb->pub)
      redisAsyncFree(rb->pub);
    return;
  }
  redisAsyncCommandArgv(rb->pub, NULL, NULL, 3, argv, argvlen);
}

/* --- connecting and closing ------------------------------------------------------------------- */

static redisAsyncContext *connect_one(struct rbus *rb, redisConnectCallback *on_connect,
                                      redisDisconnectCallback *on_disconnect) {
  redisAsyncContext *ac = redisAsyncConnect(rb->host, rb->port);
  if (ac == NULL)
    return NULL;
  if (ac->err || redis_uv_attach(ac, rb->loop) != REDIS_OK) {
    log_debug("bus: cannot connect to redis: %s", ac->errstr);
    redisAsyncFree(ac);
    return NULL;
  }
  ac->data = rb;
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  return ac;
}

static void on_retry_closed(uv_handle_t *h) {
  struct rbus *rb = h->data;
  struct rchan *c, *tmp;
  while (rb->q_head)
    pub_pop(rb);
  HASH_ITER(hh, rb->chans, c, tmp) chan_free(rb, c);
  if (rb->done)
    rb->done(rb->done_arg);
  free(rb);
}

/* Connects whichever connection is missing; while closing, finishes the close instead. */
static void connect_missing(struct rbus *rb) {
  if (rb->closing) {
    if (rb->sub == NULL && rb->pub == NULL && !uv_is_closing((uv_handle_t *)&rb->retry)) {
      uv_close((uv_handle_t *)&rb->beat, NULL);
      uv_close((uv_handle_t *)&rb->retry, on_retry_closed); /* runs after beat's close */
    }
    return;
  }
  {
    uint64_t now = uv_now(rb->loop);
    if (rb->sub && !(rb->sub->c.flags & REDIS_CONNECTED) &&
        now - rb->sub_started >= CONNECT_TIMEOUT_MS) {
      redisAsyncFree(rb->sub);
      rb->sub = NULL;
    }
    if (rb->pub && !(rb->pub->c.flags & REDIS_CONNECTED) &&
        now - rb->pub_started >= CONNECT_TIMEOUT_MS) {
      redisAsyncFree(rb->pub);
      rb->pub = NULL;
    }
    if (rb->sub == NULL) {
      rb->sub = connect_one(rb, on_sub_connect, on_sub_disconnect);
      rb->sub_started = now;
    }
    if (rb->pub == NULL) {
      rb->pub = connect_one(rb, on_pub_connect, on_pub_disconnect);
      rb->pub_started = now;
    }
  }
  /* Come back to retry what failed, or to abandon a connect that hangs. */
  if (rb->sub == NULL || rb->pub == NULL || !(rb->sub->c.flags & REDIS_CONNECTED) ||
      !(rb->pub->c.flags & REDIS_CONNECTED))
    schedule_retry(rb);
}

static int parse_url(struct rbus *rb, const char *url) {
  const char *hp = url + strlen("redis://");
  const char *colon = strrchr(hp, ':');
  const char *end = hp + strcspn(hp, "/?");
  char *pend;
  long port = 6379;
  size_t hlen;
  if (colon && colon < end) {
    port = strtol(colon + 1, &pend, 10);
    if (pend != end || port <= 0 || port > 65535)
      return PARLEY_EBAD_REQUEST;
    hlen = (size_t)(colon - hp);
  } else {
    hlen = (size_t)(end - hp);
  }
  if (hlen == 0 || hlen >= sizeof rb->host)
    return PARLEY_EBAD_REQUEST;
  if (*end == '/' && end[1]) {
    /* A namespace; no database numbers or options (pub/sub ignores databases). */
    size_t nlen = strlen(end + 1);
    /* A name starts with a letter: "/0" would look like a database number, which it is not. */
    if (nlen > NS_MAX || !((end[1] | 0x20) >= 'a' && (end[1] | 0x20) <= 'z') ||
        strspn(end + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        "0123456789_.-") != nlen)
      return PARLEY_EBAD_REQUEST;
    snprintf(rb->ns, sizeof rb->ns, "%s:", end + 1);
    rb->ns_len = nlen + 1;
  } else if (*end && strcmp(end, "/") != 0) {
    return PARLEY_EBAD_REQUEST;
  }
  memcpy(rb->host, hp, hlen);
  rb->host[hlen] = '\0';
  rb->port = (int)port;
  return 0;
}

static int redis_open(struct bus **out, uv_loop_t *loop, const char *url,
                      const struct bus_callbacks *cb) {
  struct rbus *rb = calloc(1, sizeof *rb);
  static const char hex[] = "0123456789abcdef";
  int err;
  if (rb == NULL)
    return PARLEY_EINTERNAL;
  rb->base.ops = &bus_redis_ops;
  rb->loop = loop;
  rb->cb = *cb;
  err = parse_url(rb, url);
  if (err) {
    free(rb);
    return err;
  }
  if (sodium_init() < 0) {
    free(rb);
    return PARLEY_EINTERNAL;
  }
  randombytes_buf(rb->self, sizeof rb->self);
  memcpy(rb->own_channel, "parley:bus:", 11);
  for (int i = 0; i < SELF_LEN; i++) {
    rb->own_channel[11 + 2 * i] = hex[rb->self[i] >> 4];
    rb->own_channel[12 + 2 * i] = hex[rb->self[i] & 15];
  }
  memcpy(rb->self_hex, rb->own_channel + 11, 2 * SELF_LEN);
  uv_timer_init(loop, &rb->retry);
  rb->retry.data = rb;
  uv_timer_init(loop, &rb->beat);
  rb->beat.data = rb;
  uv_timer_start(&rb->beat, on_beat, BEAT_MS, BEAT_MS);
  /* Redis being away at start-up is not an error: publications queue and it is retried. */
  connect_missing(rb);
  *out = &rb->base;
  return 0;
}

static void full_name(const struct rbus *rb, const char *channel, char *out) {
  memcpy(out, rb->ns, rb->ns_len);
  strcpy(out + rb->ns_len, channel);
}

static int redis_subscribe(struct bus *b, const char *bare) {
  struct rbus *rb = (struct rbus *)b;
  struct rchan *c;
  char channel[FULL_MAX + 1];
  full_name(rb, bare, channel);
  HASH_FIND_STR(rb->chans, channel, c);
  if (c == NULL) {
    c = calloc(1, sizeof *c + strlen(channel) + 1);
    if (c == NULL)
      return PARLEY_EINTERNAL;
    strcpy(c->name, channel);
    HASH_ADD_STR(rb->chans, name, c);
  }
  c->wanted = 1;
  if (c->state == RCH_ACTIVE)
    return 1;
  if (c->state == RCH_NONE && rb->sub && (rb->sub->c.flags & REDIS_CONNECTED))
    send_sub(rb, c, "SUBSCRIBE");
  /* SUBSCRIBING: its reply reports it. UNSUBSCRIBING: subscribed again when that is answered.
   * Disconnected: the reconnect subscribes. */
  return 0;
}

static int redis_unsubscribe(struct bus *b, const char *bare) {
  struct rbus *rb = (struct rbus *)b;
  struct rchan *c;
  char channel[FULL_MAX + 1];
  full_name(rb, bare, channel);
  HASH_FIND_STR(rb->chans, channel, c);
  if (c == NULL)
    return 0;
  c->wanted = 0;
  if (c->state == RCH_ACTIVE)
    send_sub(rb, c, "UNSUBSCRIBE");
  else if (c->state == RCH_NONE)
    chan_free(rb, c);
  return 0;
}

static int redis_publish(struct bus *b, const char *bare, const void *data, size_t len) {
  struct rbus *rb = (struct rbus *)b;
  char channel[FULL_MAX + 1];
  size_t clen;
  full_name(rb, bare, channel);
  clen = strlen(channel);
  struct rpub *p = malloc(sizeof *p + SELF_LEN + len + clen + 1);
  if (p == NULL)
    return PARLEY_EINTERNAL;
  p->next = NULL;
  p->sent = 0;
  p->len = SELF_LEN + len;
  p->clen = clen;
  memcpy(p->data, rb->self, SELF_LEN);
  memcpy(p->data + SELF_LEN, data, len);
  p->channel = p->data + p->len;
  memcpy(p->channel, channel, clen + 1);
  /* Past the bound, drop the oldest not yet written: the receivers catch up by seq. */
  while (rb->q_head && !rb->q_head->sent && rb->q_bytes + p->len > PUB_QUEUE_MAX) {
    log_warn("bus: redis publish queue full, dropping the oldest publication");
    pub_pop(rb);
  }
  if (rb->q_tail)
    rb->q_tail->next = p;
  else
    rb->q_head = p;
  rb->q_tail = p;
  rb->q_bytes += p->len;
  if (rb->pub_ready)
    pub_send(rb, p);
  return 0;
}

static void redis_close(struct bus *b, void (*done)(void *arg), void *arg) {
  struct rbus *rb = (struct rbus *)b;
  rb->closing = 1;
  rb->done = done;
  rb->done_arg = arg;
  /* Presence calls in flight are answered now: nothing may be called after close returns. */
  while (rb->calls) {
    struct rpcall *pc = rb->calls;
    bus_presence_cb cb = pc->cb;
    rb->calls = pc->next;
    pc->cb = NULL;
    pc->next = pc->prev = NULL;
    cb(pc->arg, PARLEY_EUNAVAILABLE, NULL, 0);
  }
  uv_timer_stop(&rb->retry);
  uv_timer_stop(&rb->beat);
  /* A connected context disconnects through its callback; one still connecting has no callback
   * to come, so it is freed here. */
  if (rb->sub && !(rb->sub->c.flags & REDIS_CONNECTED)) {
    redisAsyncFree(rb->sub);
    rb->sub = NULL;
  }
  if (rb->pub && !(rb->pub->c.flags & REDIS_CONNECTED)) {
    redisAsyncFree(rb->pub);
    rb->pub = NULL;
  }
  if (rb->sub)
    redisAsyncDisconnect(rb->sub);
  if (rb->pub)
    redisAsyncDisconnect(rb->pub);
  connect_missing(rb);
}

const struct bus_ops bus_redis_ops = {
    .name = "redis",
    .open = redis_open,
    .subscribe = redis_subscribe,
    .unsubscribe = redis_unsubscribe,
    .publish = redis_publish,
    .close = redis_close,
    .presence_put = redis__presence_put,
    .presence_refresh = redis__presence_refresh,
    .presence_sweep = redis__presence_sweep,
    .presence_list = redis__presence_list,
};
