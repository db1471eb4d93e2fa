/* ws.c - WebSocket connections on wslay.
 *
 * Inbound, wslay's event API does the protocol work: unmasking, reassembling fragments, the
 * 64 KiB cap (close 1009), answering pings and the close handshake. We add what wslay leaves to
 * the application: text only (binary closes with 1003) and UTF-8 validation (close 1007).
 *
 * Outbound data frames bypass wslay's event queue, which would copy every message per
 * connection. net_ws_frame_text() encodes a frame once with wslay's frame API into a refcounted
 * chunk that any number of connections queue. Control frames that wslay itself produces (pong,
 * close) reach our queue through its send callback, so their order with data frames is kept.
 *
 * wslay's context is about 8.5 KB (a 4 KiB output buffer in the event context, a 4 KiB input
 * buffer in its frame context), most of what an idle connection would cost. So a socket keeps
 * one only while it is needed: after each read (and each ping we send) the context is freed if
 * wslay is at a frame boundary (no partial frame header buffered, no frame or fragmented message
 * half received, nothing queued, no close in progress), and the next byte, ping or close creates
 * a fresh one, which starts at a frame boundary too. Freeing at once rather than after a quiet
 * period keeps the contexts short-lived: the allocator hands the same memory to the next read,
 * whereas contexts freed late sit between long-lived structs and the heap cannot give their pages
 * back. We know where wslay is from its frame-start callback: each frame's header and payload
 * sizes are subtracted from the bytes handed to it (ws_unframed), so zero means every byte given
 * belongs to a frame it has started, and payload bytes still owed make it negative.
 */
#include <openssl/evp.h>
#include <openssl/sha.h> /* SHA_DIGEST_LENGTH */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>

#include "common/error.h"
#include "common/log.h"
#include "net/net_internal.h"

#define WS__GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* --- the shared encoder: frames into s->encode_target --------------------------------------- */

static ssize_t ws__encoder_send(const uint8_t *data, size_t len, int flags, void *user_data) {
  struct net_server *s = user_data;
  struct outq_chunk *t = s->encode_target;
  if (s->encode_pos + len > t->len)
    return -1;
  memcpy(t->data + s->encode_pos, data, len);
  s->encode_pos += len;
  return (ssize_t)len;
}

static struct net_server *ws__encoder_owner; /* the loop thread's server; see below */

int net__ws_encoder_init(struct net_server *s) {
  static const struct wslay_frame_callbacks cbs = {ws__encoder_send, NULL, NULL};
  if (wslay_frame_context_init(&s->encoder, &cbs, s) != 0)
    return PARLEY_EINTERNAL;
  /* net_ws_frame_text() has no server argument (frames do not depend on one), so it uses the
   * encoder of the one server that runs on the loop thread. */
  ws__encoder_owner = s;
  return 0;
}

void net__ws_encoder_free(struct net_server *s) {
  wslay_frame_context_free(s->encoder);
  if (ws__encoder_owner == s)
    ws__encoder_owner = NULL;
}

static struct outq_chunk *ws__frame(int opcode, const char *data, size_t len) {
  struct net_server *s = ws__encoder_owner;
  struct wslay_frame_iocb iocb;
  size_t header = len < 126 ? 2 : len < 65536 ? 4 : 10;
  struct outq_chunk *c;
  ssize_t r;

  if (s == NULL)
    return NULL;
  c = outq_chunk_new(header + len);
  if (c == NULL)
    return NULL;
  memset(&iocb, 0, sizeof iocb);
  iocb.fin = 1;
  iocb.opcode = (uint8_t)opcode;
  iocb.payload_length = len;
  iocb.data = (const uint8_t *)data;
  iocb.data_length = len;
  s->encode_target = c;
  s->encode_pos = 0;
  r = wslay_frame_send(s->encoder, &iocb);
  s->encode_target = NULL;
  if (r != (ssize_t)len || s->encode_pos != c->len) {
    outq_chunk_unref(c);
    return NULL;
  }
  return c;
}

struct outq_chunk *net_ws_frame_text(const char *data, size_t len) {
  return ws__frame(WSLAY_TEXT_FRAME, data, len);
}

/* --- per-connection wslay context ----------------------------------------------------------- */

static ssize_t ws__recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                           void *user_data) {
  struct net_conn *c = user_data;
  size_t n = c->rlen - c->rpos;
  if (n == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  if (n > len)
    n = len;
  memcpy(buf, c->rbuf + c->rpos, n);
  c->rpos += n;
  return (ssize_t)n;
}

static ssize_t ws__send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
                           int flags, void *user_data) {
  struct net_conn *c = user_data;
  /* Only control frames come this way (pong, close, ping): small, so a copy is fine. They
   * count against the caps like everything else: a client that pings and never reads would
   * otherwise grow its queue without bound. The 4008 close cannot be started from inside
   * wslay's send, so it is noted here and done by ws__pump once wslay returns. */
  if (net__conn_push_copy(c, data, len) != 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  if (net__conn_over_cap(c))
    c->ws_slow = 1;
  return (ssize_t)len;
}

static void ws__close_slow(struct net_conn *c);

static void ws__on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
                       void *user_data) {
  struct net_conn *c = user_data;

  if (c->ws_close_sent || c->closing)
    return; /* closing: late messages are not processed */
  switch (a->opcode) {
  case WSLAY_TEXT_FRAME:
    if (u8_check(a->msg, a->msg_length) != NULL) {
      net_ws_close(c, WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA, "invalid UTF-8");
      return;
    }
    /* wslay hands an empty message as NULL; the app gets a valid pointer either way. */
    c->srv->cb.on_ws_text(c->srv->cb.ud, c, a->msg ? (const char *)a->msg : "", a->msg_length);
    break;
  case WSLAY_BINARY_FRAME:
    net_ws_close(c, WSLAY_CODE_UNSUPPORTED_DATA, "binary messages are not accepted");
    break;
  default:
    break; /* ping, pong and close are handled by wslay */
  }
}

/* wslay reads a close frame with a one-byte payload as "no status code"; RFC 6455 5.5.1 makes
 * it a protocol error. Queuing our close first also stops wslay from echoing an empty one. */
static void ws__on_frame_start(wslay_event_context_ptr ctx,
                               const struct wslay_event_on_frame_recv_start_arg *a,
                               void *user_data) {
  struct net_conn *c = user_data;
  /* Clients mask every frame (4 bytes of key); a length over 125 takes 2 or 8 more bytes. A
   * client that encodes a length in more bytes than needed only keeps its context. */
  uint64_t header = 2 + 4 + (a->payload_length < 126 ? 0 : a->payload_length < 65536 ? 2 : 8);
  c->ws_unframed -= (int64_t)(header + a->payload_length);
  if (!(a->opcode & 0x8u)) /* data frames: a message is open until a frame with fin */
    c->ws_in_msg = !a->fin;
  if (a->opcode == WSLAY_CONNECTION_CLOSE && a->payload_length == 1)
    net_ws_close(c, WSLAY_CODE_PROTOCOL_ERROR, "close payload of one byte");
  if ((a->opcode == WSLAY_PING || a->opcode == WSLAY_PONG) && c->srv->cfg.ctrl_rate > 0 &&
      ratelimit_take(&c->ctrl_rl, c->srv->cfg.ctrl_rate, c->srv->cfg.ctrl_burst,
                     (int64_t)uv_now(c->srv->loop)) > 0) {
    /* Each ping costs a pong: a flood of them is refused like a flood of ops, but there is no
     * reply to say "slow down" in, so the connection is closed. Once our close is queued wslay
     * answers no more pings. */
    net_ws_close(c, WSLAY_CODE_POLICY_VIOLATION, "too many pings");
  }
}

static const struct wslay_event_callbacks ws__callbacks = {
    ws__recv_cb, ws__send_cb, NULL, ws__on_frame_start, NULL, NULL, ws__on_msg,
};

/* Creates wslay's context if the socket has none (see the top of the file). Returns 0, or
 * PARLEY_EINTERNAL with the connection closed. */
static int ws__ctx(struct net_conn *c) {
  if (c->ws)
    return 0;
  if (wslay_event_context_server_init(&c->ws, &ws__callbacks, c) != 0) {
    c->ws = NULL;
    net__conn_close(c);
    return PARLEY_EINTERNAL;
  }
  wslay_event_config_set_max_recv_msg_length(c->ws, c->srv->cfg.ws_max_msg);
  c->ws_unframed = 0;
  c->ws_in_msg = 0;
  return 0;
}

/* Frees wslay's context if it is at a frame boundary with nothing pending. */
static void ws__ctx_release(struct net_conn *c) {
  if (c->ws == NULL || c->ws_unframed != 0 || c->ws_in_msg || c->ws_close_sent ||
      c->close_after_flush || wslay_event_want_write(c->ws) ||
      !wslay_event_get_read_enabled(c->ws) || wslay_event_get_close_received(c->ws))
    return;
  wslay_event_context_free(c->ws);
  c->ws = NULL;
  c->srv->stats.ws_ctx_released++;
}

/* Writes what wslay queued (pongs, close) and closes the socket once both sides said goodbye. */
static void ws__pump(struct net_conn *c) {
  if (c->closing)
    return;
  if (wslay_event_send(c->ws) != 0) {
    net__conn_close(c);
    return;
  }
  if (c->ws_slow) {
    ws__close_slow(c); /* pumps again, for the close frame */
    return;
  }
  if (!wslay_event_want_read(c->ws) && !wslay_event_want_write(c->ws)) {
    /* The close handshake is complete (or wslay gave up on a protocol error): the server
     * closes the TCP connection first, once the close frame is written (RFC 6455 7.1.1). */
    c->close_after_flush = 1;
    if (!c->close_deadline_ms)
      c->close_deadline_ms = uv_now(c->srv->loop) + NET__CLOSE_LINGER_MS;
    net__conn_mark_dirty(c);
  }
}

void net__ws_on_data(struct net_conn *c, const char *data, size_t len) {
  int r;
  if (ws__ctx(c) != 0)
    return;
  c->ws_unframed += (int64_t)len;
  c->rbuf = (const uint8_t *)data;
  c->rlen = len;
  c->rpos = 0;
  r = wslay_event_recv(c->ws);
  c->rbuf = NULL;
  c->rlen = c->rpos = 0;
  if (c->closing)
    return;
  if (r != 0) {
    /* wslay's frame parser gave up (an oversized or fragmented control frame, a length with the
     * top bit set, ...) without answering. RFC 6455 7.1.7: fail the connection with 1002 first.
     * The close frame is written by hand because wslay's context is no longer usable. */
    static const unsigned char close_1002[] = {0x88, 0x02, 0x03, 0xea};
    if (!c->ws_close_sent) {
      c->ws_close_sent = 1;
      net__conn_push_copy(c, close_1002, sizeof close_1002);
    }
    c->close_after_flush = 1;
    c->close_deadline_ms = uv_now(c->srv->loop) + NET__CLOSE_LINGER_MS;
    net__conn_read_stop(c);
    net__conn_mark_dirty(c);
    return;
  }
  ws__pump(c);
  if (!c->closing)
    ws__ctx_release(c);
}

void net__ws_tick(struct net_conn *c, uint64_t now) {
  uint64_t interval = c->srv->cfg.ping_interval_ms;
  if (now - c->last_rx_ms >= 2 * interval) {
    /* Two intervals without a byte, not even a pong: the peer is gone. No close frame, there
     * is nobody to read it. */
    c->srv->stats.dead_closes++;
    net__conn_close(c);
    return;
  }
  if (now - c->last_rx_ms >= interval && now - c->last_ping_ms >= interval &&
      !c->ws_close_sent) {
    struct wslay_event_msg ping = {WSLAY_PING, NULL, 0};
    c->last_ping_ms = now;
    if (ws__ctx(c) != 0)
      return;
    if (wslay_event_queue_msg(c->ws, &ping) == 0)
      ws__pump(c);
    if (!c->closing)
      ws__ctx_release(c);
  }
}

void net__ws_free(struct net_conn *c) {
  if (c->ws) {
    wslay_event_context_free(c->ws);
    c->ws = NULL;
  }
}

/* RFC 6455 4.2.1: the key is the base64 of 16 bytes, 24 characters ending in "==". */
static int ws__key_valid(const char *key) {
  unsigned char raw[24];
  if (key == NULL || strlen(key) != 24 || key[22] != '=' || key[23] != '=')
    return 0;
  for (int i = 0; i < 22; i++)
    if (!((key[i] >= 'A' && key[i] <= 'Z') || (key[i] >= 'a' && key[i] <= 'z') ||
          (key[i] >= '0' && key[i] <= '9') || key[i] == '+' || key[i] == '/'))
      return 0;
  /* EVP_DecodeBlock counts the padding as data: 18 = 16 bytes of key + 2. */
  return EVP_DecodeBlock(raw, (const unsigned char *)key, 24) == 18;
}

int net_ws_accept(struct net_conn *c) {
  static const char magic[] = WS__GUID;
  struct http_request *r;
  unsigned char digest[SHA_DIGEST_LENGTH];
  unsigned char accept[64];
  char headers[200];
  struct buf leftover;

  if (c->closing || c->http == NULL)
    return PARLEY_EBAD_REQUEST;
  r = net__http_request(c);
  if (r->sec_ws_version == NULL || strcmp(r->sec_ws_version, "13") != 0) {
    /* RFC 6455 4.4: the refusal names the version we speak. */
    static const char body[] =
        "{\"error\":{\"code\":\"bad_request\",\"message\":\"WebSocket version 13 only\"}}";
    net_http_respond(c, 400, "application/json", "Sec-WebSocket-Version: 13\r\n", body,
                     sizeof body - 1);
    return PARLEY_EBAD_REQUEST;
  }
  if (!r->wants_upgrade || !ws__key_valid(r->sec_ws_key) || r->http_major < 1 ||
      (r->http_major == 1 && r->http_minor < 1)) {
    net_http_error(c, PARLEY_EBAD_REQUEST, "not a valid WebSocket upgrade (RFC 6455 4.1)");
    return PARLEY_EBAD_REQUEST;
  }
  {
    char keyed[64 + sizeof magic];
    size_t klen = strlen(r->sec_ws_key);
    memcpy(keyed, r->sec_ws_key, klen);
    memcpy(keyed + klen, magic, sizeof magic - 1);
    if (EVP_Digest(keyed, klen + sizeof magic - 1, digest, NULL, EVP_sha1(), NULL) != 1) {
      net_http_error(c, PARLEY_EINTERNAL, NULL);
      return PARLEY_EINTERNAL;
    }
  }
  EVP_EncodeBlock(accept, digest, SHA_DIGEST_LENGTH);
  snprintf(headers, sizeof headers,
           "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
           accept);
  if (wslay_event_context_server_init(&c->ws, &ws__callbacks, c) != 0) {
    c->ws = NULL;
    net_http_error(c, PARLEY_EINTERNAL, NULL);
    return PARLEY_EINTERNAL;
  }
  wslay_event_config_set_max_recv_msg_length(c->ws, c->srv->cfg.ws_max_msg);
  c->is_ws = 1;
  c->ws_unframed = 0;
  net__conn_push_copy(c, headers, strlen(headers));
  /* Frames the client sent right behind its upgrade request belong to the WebSocket now. */
  net__http_take_leftover(c, &leftover);
  net__http_free(c);
  c->last_rx_ms = c->last_ping_ms = uv_now(c->srv->loop);
  if (leftover.len)
    net__ws_on_data(c, leftover.data, leftover.len);
  else
    ws__ctx_release(c); /* nothing to parse yet: the first read makes a new one */
  buf_dispose(&leftover);
  net__conn_read_start(c);
  return 0;
}

/* A client that does not read must not make the server hold unbounded memory or slow anyone
 * else: drop what it has not started receiving and tell it to resume later (4008). */
static void ws__close_slow(struct net_conn *c) {
  uint32_t keep = c->inflight;
  c->ws_slow = 0;
  if (c->ws_close_sent)
    return;
  c->srv->stats.slow_closes++;
  if (keep == 0 && c->q.count > 0 && outq_at(&c->q, 0)->off > 0)
    keep = 1; /* a frame half written must be finished, or the stream is corrupt */
  outq_truncate(&c->q, keep);
  net_ws_close(c, NET_CLOSE_SLOW, "too slow: reconnect and resume");
}

/* Queues a frame; closes c with 4008 if it is too far behind. */
static int ws__send(struct net_conn *c, struct outq_chunk *frame, int pull) {
  struct net_server *s = c->srv;
  int err;
  if (c->closing || !c->is_ws || c->ws_close_sent)
    return PARLEY_EUNAVAILABLE;
  err = net__conn_push(c, frame, pull);
  if (err)
    return err;
  s->stats.frames_out++;
  if (net__conn_over_cap(c)) {
    ws__close_slow(c);
    return PARLEY_EUNAVAILABLE;
  }
  return 0;
}

int net_ws_send_frame(struct net_conn *c, struct outq_chunk *frame) {
  return ws__send(c, frame, 0);
}

int net_ws_send_text(struct net_conn *c, const char *data, size_t len) {
  struct outq_chunk *f = net_ws_frame_text(data, len);
  int err;
  if (f == NULL)
    return PARLEY_EINTERNAL;
  err = ws__send(c, f, 1);
  outq_chunk_unref(f);
  return err;
}

void net_ws_close(struct net_conn *c, uint16_t code, const char *reason) {
  if (c->closing || !c->is_ws || c->ws_close_sent)
    return;
  if (ws__ctx(c) != 0)
    return;
  c->ws_close_sent = 1;
  /* wslay puts a close ahead of the control frames it has queued and sends nothing after it:
   * hand it the pongs that are due first, so that pings received before the close are
   * answered. */
  if (wslay_event_want_write(c->ws))
    wslay_event_send(c->ws);
  wslay_event_queue_close(c->ws, code, (const uint8_t *)reason, reason ? strlen(reason) : 0);
  c->close_deadline_ms = uv_now(c->srv->loop) + NET__CLOSE_LINGER_MS;
  ws__pump(c);
}
