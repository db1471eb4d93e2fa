/* net.h - the transport: TCP listener, HTTP/1.1 (llhttp), WebSocket (wslay), output queues.
 *
 * net/ knows bytes, requests and frames, nothing of chats or users. app/ gets complete HTTP
 * requests and complete WebSocket text messages through `struct net_callbacks`, answers with
 * net_http_respond() or upgrades with net_ws_accept(), and sends frames that may be shared by
 * many connections (net_ws_frame_text + net_ws_send_frame). All output is queued per connection
 * and written in one batch per connection before the loop sleeps (uv_prepare), as Redis does in
 * beforeSleep. Everything here runs on the loop thread.
 */
#ifndef PARLEY_NET_NET_H
#define PARLEY_NET_NET_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "net/outq.h"

struct net_server;
struct net_conn;

/* WebSocket close codes of our own (4000-4999 is the application range of RFC 6455). */
#define NET_CLOSE_UNAUTHORIZED 4001 /* no auth in time, or the session ended */
#define NET_CLOSE_SLOW 4008         /* outbound queue over its cap: reconnect and resume */
#define NET_CLOSE_TOO_MANY 4029     /* per-user connection cap */

struct http_request {
  int method;            /* llhttp_method_t: HTTP_GET, HTTP_POST, ... */
  char *path;            /* URL path without the query, as sent (owned) */
  char *query;           /* query string without '?', or NULL (owned) */
  char *host, *origin, *cookie, *authorization, *content_type, *upgrade, *sec_ws_key,
      *sec_ws_version, *x_forwarded_for; /* header values or NULL (owned) */
  struct buf body;
  int keep_alive;
  int wants_upgrade;     /* Connection: Upgrade + Upgrade: websocket */
  int http_major, http_minor;
};

/* A route whose requests may carry a larger (or smaller) body than max_body. */
struct net_body_limit {
  const char *path;        /* the exact URL path, or a prefix ending in '*' (static storage) */
  size_t max_body;
};

struct net_config {
  const char *host;        /* address to listen on (borrowed for the call) */
  int port;
  int backlog;
  size_t max_header;       /* bytes of request line + headers; over it: 431 */
  size_t max_body;         /* bytes of request body; over it: 413 */
  const struct net_body_limit *body_limits; /* per-route exceptions (borrowed for the server's
                                               life), n_body_limits of them */
  size_t n_body_limits;
  size_t ws_max_msg;       /* bytes of one reassembled message; over it: close 1009 */
  size_t outq_max;         /* unwritten bytes of pushed events per connection; over: 4008 */
  size_t outq_hard_max;    /* unwritten bytes of anything per connection; over: 4008 */
  uint64_t ping_interval_ms;
  uint64_t http_idle_ms;   /* keep-alive idle and header-read timeout */
  double ctrl_rate;        /* pings and pongs a socket may send per second; 0 = no limit */
  double ctrl_burst;       /* ... and in a burst; over it: close 1008 */
};

struct net_callbacks {
  void *ud; /* passed back to every callback */
  /* A complete request. `req` is valid until the response is sent or the connection closes;
   * the app must eventually call net_http_respond() or net_ws_accept() (or close). Reading from
   * the connection pauses until then. */
  void (*on_request)(void *ud, struct net_conn *c, struct http_request *req);
  /* A complete, UTF-8-valid WebSocket text message; `data` is valid during the call only and
   * never NULL, even for an empty message. */
  void (*on_ws_text)(void *ud, struct net_conn *c, const char *data, size_t len);
  /* The connection is going away; the app must drop every pointer to it now. */
  void (*on_close)(void *ud, struct net_conn *c);
  /* Called once per loop turn just before the queued output is written (NULL allowed): the
   * place to send what was batched during the turn, so it goes out in the same turn. */
  void (*on_before_flush)(void *ud);
  /* Called once per loop turn just after the queued output was handed to the kernel (NULL
   * allowed): the place to measure how long what arrived this turn took to go out. */
  void (*on_after_flush)(void *ud);
};

/* Creates a server on `loop`; cb is copied. Returns 0 and sets *out, or a PARLEY_E* code. */
int net_server_new(struct net_server **out, uv_loop_t *loop, const struct net_config *cfg,
                   const struct net_callbacks *cb);

/* Binds and listens. Returns 0 or PARLEY_EUNAVAILABLE (address in use, ...). */
int net_server_listen(struct net_server *s);

/* Port actually bound (useful with port 0). */
int net_server_port(const struct net_server *s);

/* Stops accepting new connections. */
void net_server_stop_accepting(struct net_server *s);

/* Closes every connection: WebSockets with a close frame (code, reason borrowed), HTTP after the
 * response in progress. */
void net_server_close_all(struct net_server *s, uint16_t code, const char *reason);

/* Number of open connections. */
size_t net_server_conn_count(const struct net_server *s);

/* Closes the listener and timers, frees `s` once libuv released its handles; every connection
 * must be closed first. */
void net_server_free(struct net_server *s);

/* Sends a complete HTTP response to the current request of c. `extra_headers` is zero or more
 * "Name: value\r\n" lines (borrowed); body is copied (for a HEAD request only its length is
 * sent, as RFC 9110 9.3.2 asks). Finishes the request. The next pipelined request, if any, is
 * never parsed inside this call: it is handed over on a later loop turn, from a clean stack,
 * so the caller may still use its per-request state after the call returns. While more than
 * outq_max bytes of responses wait unwritten, no further request is parsed or read. */
void net_http_respond(struct net_conn *c, int status, const char *content_type,
                      const char *extra_headers, const void *body, size_t len);

/* Sends a JSON error body {"error":{"code","message"}} for a PARLEY_E* code. msg may be NULL. */
void net_http_error(struct net_conn *c, int err, const char *msg);

/* Completes the WebSocket handshake of the current request (which must have wants_upgrade and a
 * valid key; else answers 400 and returns PARLEY_EBAD_REQUEST). */
int net_ws_accept(struct net_conn *c);

/* Encodes `data` (borrowed) as one unmasked text frame in a new chunk with one reference, to be
 * shared by any number of net_ws_send_frame calls. Returns NULL on OOM. */
struct outq_chunk *net_ws_frame_text(const char *data, size_t len);

/* Queues a pre-encoded event frame that the server pushes (the queue takes its own reference).
 * A client that does not keep up with what is pushed to it is closed with 4008 once more than
 * outq_max bytes of events wait unwritten. Returns 0, or PARLEY_EUNAVAILABLE if c is closing
 * (or was just closed for being slow). */
int net_ws_send_frame(struct net_conn *c, struct outq_chunk *frame);

/* Frames and queues one reply (data borrowed). Replies are what the client asked for: their
 * size is bounded by the request and their number by the op rate limit, so they do not count
 * against outq_max (a client reading a 3 MB history page as fast as it can is not slow); only
 * outq_hard_max bounds them. Returns as net_ws_send_frame. */
int net_ws_send_text(struct net_conn *c, const char *data, size_t len);

/* Starts the close handshake with `code` and `reason` (borrowed, <= 123 bytes). Idempotent. */
void net_ws_close(struct net_conn *c, uint16_t code, const char *reason);

/* Drops the connection at once, without a close handshake. */
void net_conn_abort(struct net_conn *c);

/* The app's pointer for c (NULL until set). */
void *net_conn_get_data(const struct net_conn *c);
void net_conn_set_data(struct net_conn *c, void *data);

/* The peer's address as text into buf (at least 46 bytes). */
void net_conn_peer(const struct net_conn *c, char *buf, size_t len);

struct net_stats {
  uint64_t accepted;
  uint64_t frames_out;
  uint64_t bytes_out;
  uint64_t slow_closes;
  uint64_t dead_closes;
  uint64_t ws_ctx_released; /* times an idle WebSocket gave back wslay's context (ws.c) */
};
void net_server_get_stats(const struct net_server *s, struct net_stats *out);

#endif
