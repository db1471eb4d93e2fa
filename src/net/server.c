/* server.c - the listener, connection lifecycle, batched writes and the housekeeping tick.
 *
 * Output is never written where it is produced. net__conn_push() links the connection into the
 * server's dirty list; the uv_prepare handle, which runs just before the loop blocks for I/O,
 * writes each dirty connection's whole queue with one writev (uv_try_write), and only when the
 * socket is full falls back to uv_write for the rest. So a broadcast of N messages in one loop
 * turn costs one system call per recipient, not N.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "net/net_internal.h"

static void net__flush(struct net_conn *c);

static void net__on_closed(uv_handle_t *h) {
  struct net_conn *c = h->data;
  outq_dispose(&c->q);
  net__http_free(c);
  net__ws_free(c);
  free(c);
}

void net__conn_close(struct net_conn *c) {
  struct net_server *s = c->srv;
  if (c->closing)
    return;
  c->closing = 1;
  net__conn_unmark_dirty(c);
  net__conn_resume_cancel(c);
  DL_DELETE(s->conns, c);
  s->n_conns--;
  if (s->cb.on_close && !c->lingering) /* a lingering one was closed for the app already */
    s->cb.on_close(s->cb.ud, c);
  c->app_data = NULL;
  uv_close((uv_handle_t *)&c->tcp, net__on_closed);
}

static void net__on_shutdown(uv_shutdown_t *req, int status) {
  (void)status; /* the close that follows, whenever it comes, releases the rest */
  free(req);
}

/* An HTTP connection whose last answer is written: to the app it is closed now; the socket
 * sends FIN and discards what the client still sends, bounded in time and bytes, and closes at
 * its EOF. Closing with unread input would send RST, and the client could lose our answer (a
 * 413 to an upload still in flight). */
static void net__conn_linger(struct net_conn *c) {
  struct net_server *s = c->srv;
  uint64_t deadline = uv_now(s->loop) + NET__HTTP_LINGER_MS;
  /* Requests are allocated when needed, not embedded: 272 bytes an idle socket does not use. */
  uv_shutdown_t *req = malloc(sizeof *req);

  if (req == NULL || uv_shutdown(req, (uv_stream_t *)&c->tcp, net__on_shutdown) != 0) {
    free(req);
    net__conn_close(c);
    return;
  }
  c->lingering = 1;
  c->linger_left = NET__HTTP_LINGER_BYTES; /* close_after_flush stays: nothing more is parsed */
  if (c->close_deadline_ms == 0 || c->close_deadline_ms > deadline)
    c->close_deadline_ms = deadline;
  if (s->cb.on_close)
    s->cb.on_close(s->cb.ud, c);
  c->app_data = NULL;
  net__conn_read_start(c);
}

void net_conn_abort(struct net_conn *c) { net__conn_close(c); }

static void net__alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  struct net_conn *c = h->data;
  struct net_server *s = c->srv;
  /* Reads are consumed synchronously in net__on_read, so one buffer serves every connection;
   * the busy flag guards against a nested read, which libuv never does. */
  if (s->rbuf_busy) {
    buf->base = NULL;
    buf->len = 0;
    return;
  }
  s->rbuf_busy = 1;
  buf->base = s->rbuf;
  buf->len = sizeof s->rbuf;
}

static void net__on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf) {
  struct net_conn *c = stream->data;
  struct net_server *s = c->srv;

  if (buf->base == s->rbuf)
    s->rbuf_busy = 0;
  if (n < 0) {
    /* EOF or error: nothing more can arrive, and nobody is left to read our output. */
    net__conn_close(c);
    return;
  }
  if (n == 0 || c->closing)
    return;
  if (c->lingering) {
    if ((size_t)n >= c->linger_left)
      net__conn_close(c);
    else
      c->linger_left -= (uint32_t)n;
    return;
  }
  c->last_rx_ms = uv_now(s->loop);
  if (c->is_ws)
    net__ws_on_data(c, buf->base, (size_t)n);
  else if (c->http)
    net__http_on_data(c, buf->base, (size_t)n);
}

void net__conn_read_start(struct net_conn *c) {
  if (c->reading || c->closing)
    return;
  if (uv_read_start((uv_stream_t *)&c->tcp, net__alloc, net__on_read) == 0)
    c->reading = 1;
}

void net__conn_read_stop(struct net_conn *c) {
  if (!c->reading)
    return;
  uv_read_stop((uv_stream_t *)&c->tcp);
  c->reading = 0;
}

static void net__on_write(uv_write_t *req, int status) {
  struct net_conn *c = req->data;
  uint32_t n = c->inflight;
  size_t bytes = 0;

  for (uint32_t i = 0; i < n; i++) {
    struct outq_ent *e = outq_at(&c->q, i);
    bytes += e->chunk->len - e->off;
  }
  c->inflight = 0;
  free(req);
  outq_advance(&c->q, bytes);
  if (c->closing)
    return;
  if (status < 0) {
    net__conn_close(c);
    return;
  }
  net__conn_wrote(c);
  if (c->q.count > 0 || c->close_after_flush)
    net__conn_mark_dirty(c);
}

/* Fills iov from the head of c's queue; returns the number of buffers and their total size. */
static uint32_t net__fill_iov(struct net_conn *c, uv_buf_t *iov, size_t *total) {
  uint32_t n = c->q.count < NET__MAX_IOV ? c->q.count : NET__MAX_IOV;
  *total = 0;
  for (uint32_t i = 0; i < n; i++) {
    struct outq_ent *e = outq_at(&c->q, i);
    iov[i] = uv_buf_init(e->chunk->data + e->off, e->chunk->len - e->off);
    *total += iov[i].len;
  }
  return n;
}

/* Writes as much of c's queue as the socket takes now; hands the rest to uv_write. */
static void net__flush(struct net_conn *c) {
  uv_buf_t iov[NET__MAX_IOV];
  uv_write_t *wreq;
  uint32_t n;
  size_t total;
  int r;

  while (c->q.count > 0 && c->inflight == 0 && !c->closing) {
    n = net__fill_iov(c, iov, &total);
    r = uv_try_write((uv_stream_t *)&c->tcp, iov, n);
    if (r == UV_EAGAIN)
      r = 0;
    if (r < 0) {
      net__conn_close(c);
      return;
    }
    outq_advance(&c->q, (size_t)r);
    if (r > 0)
      net__conn_wrote(c);
    if ((size_t)r == total)
      continue; /* the whole batch went out: go on with the rest of the queue */
    /* The kernel buffer is full: libuv writes the rest when the socket is writable again.
     * The request is allocated only then (net__on_write frees it): most writes never need it. */
    n = net__fill_iov(c, iov, &total);
    wreq = malloc(sizeof *wreq);
    if (wreq == NULL) {
      net__conn_close(c);
      return;
    }
    wreq->data = c;
    if (uv_write(wreq, (uv_stream_t *)&c->tcp, iov, n, net__on_write) != 0) {
      free(wreq);
      net__conn_close(c);
      return;
    }
    c->inflight = n;
    return;
  }
  if (c->q.count == 0 && c->inflight == 0 && c->close_after_flush && !c->closing &&
      !c->lingering) {
    if (!c->is_ws && c->http != NULL)
      net__conn_linger(c);
    else
      net__conn_close(c);
  }
}

static void net__on_prepare(uv_prepare_t *h) {
  struct net_server *s = h->data;
  if (s->cb.on_before_flush)
    s->cb.on_before_flush(s->cb.ud);
  while (s->dirty) {
    struct net_conn *c = s->dirty;
    net__conn_unmark_dirty(c);
    net__flush(c);
  }
  if (s->cb.on_after_flush)
    s->cb.on_after_flush(s->cb.ud);
}

/* Active only while some HTTP connection waits to go on parsing: an active idle handle makes
 * the loop poll without blocking, so the resumes run on the very next turn. */
static void net__on_idle(uv_idle_t *h) {
  struct net_server *s = h->data;
  net__run_resumes(s);
  if (s->resumes == NULL)
    uv_idle_stop(&s->resumer);
}

void net__server_wake(struct net_server *s) {
  if (!s->closing_handles)
    uv_idle_start(&s->resumer, net__on_idle);
}

static void net__on_tick(uv_timer_t *t) {
  struct net_server *s = t->data;
  uint64_t now = uv_now(s->loop);
  struct net_conn *c, *tmp;

  DL_FOREACH_SAFE(s->conns, c, tmp) {
    if (c->close_deadline_ms && now >= c->close_deadline_ms) {
      net__conn_close(c);
      continue;
    }
    if (c->lingering)
      continue; /* only its deadline, its EOF or its byte budget ends it */
    if (c->is_ws) {
      net__ws_tick(c, now);
    } else if (c->http && c->reading) {
      uint64_t started = net__http_started_ms(c);
      /* Idle keep-alive, or a request not complete within the timeout of its first byte
       * (slowloris: trickling a byte now and then does not buy more time). */
      if (now - c->last_rx_ms >= s->cfg.http_idle_ms ||
          (started && now - started >= s->cfg.http_idle_ms))
        net__conn_close(c);
    } else if (c->http && c->http_blocked && now - c->last_tx_ms >= s->cfg.http_idle_ms) {
      /* Pipelined answers that the client has not read for the idle timeout: it is gone or
       * holding our memory on purpose. */
      net__conn_close(c);
    }
  }
}

static void net__on_connection(uv_stream_t *server, int status) {
  struct net_server *s = server->data;
  struct net_conn *c;

  if (status < 0)
    return;
  c = calloc(1, sizeof *c);
  if (c == NULL)
    return;
  c->srv = s;
  outq_init(&c->q);
  uv_tcp_init(s->loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || net__http_new(c) != 0) {
    uv_close((uv_handle_t *)&c->tcp, net__on_closed);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  c->last_rx_ms = uv_now(s->loop);
  DL_APPEND(s->conns, c);
  s->n_conns++;
  s->stats.accepted++;
  net__conn_read_start(c);
}

int net_server_new(struct net_server **out, uv_loop_t *loop, const struct net_config *cfg,
                   const struct net_callbacks *cb) {
  struct net_server *s = calloc(1, sizeof *s);
  uint64_t tick;

  if (s == NULL)
    return PARLEY_EINTERNAL;
  s->loop = loop;
  s->cfg = *cfg;
  s->cfg.host = NULL;
  snprintf(s->host, sizeof s->host, "%s", cfg->host ? cfg->host : "127.0.0.1");
  s->cb = *cb;
  if (net__ws_encoder_init(s) != 0) {
    free(s);
    return PARLEY_EINTERNAL;
  }
  uv_tcp_init(loop, &s->listener);
  s->listener.data = s;
  uv_prepare_init(loop, &s->flusher);
  s->flusher.data = s;
  uv_prepare_start(&s->flusher, net__on_prepare);
  uv_idle_init(loop, &s->resumer);
  s->resumer.data = s;
  uv_timer_init(loop, &s->ticker);
  s->ticker.data = s;
  /* Tick often enough to notice a missed pong within a fraction of the ping interval. */
  tick = cfg->ping_interval_ms / 4;
  if (cfg->http_idle_ms / 4 < tick)
    tick = cfg->http_idle_ms / 4; /* and to close slow HTTP clients close to their deadline */
  if (tick > 1000)
    tick = 1000;
  if (tick < 10)
    tick = 10;
  uv_timer_start(&s->ticker, net__on_tick, tick, tick);
  uv_unref((uv_handle_t *)&s->ticker);
  s->port = cfg->port;
  *out = s;
  return 0;
}

int net_server_listen(struct net_server *s) {
  struct sockaddr_storage addr;
  int r;

  r = uv_ip4_addr(s->host, s->cfg.port, (struct sockaddr_in *)&addr);
  if (r != 0)
    r = uv_ip6_addr(s->host, s->cfg.port, (struct sockaddr_in6 *)&addr);
  if (r != 0) {
    log_error("listen: bad address %s", s->host);
    return PARLEY_EBAD_REQUEST;
  }
  r = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
  if (r == 0)
    r = uv_listen((uv_stream_t *)&s->listener, s->cfg.backlog, net__on_connection);
  if (r != 0) {
    log_error("listen on %s:%d: %s", s->host, s->cfg.port, uv_strerror(r));
    return PARLEY_EUNAVAILABLE;
  }
  {
    struct sockaddr_storage bound;
    int len = sizeof bound;
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len);
    s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
  }
  s->listening = 1;
  return 0;
}

int net_server_port(const struct net_server *s) { return s->port; }

void net_server_stop_accepting(struct net_server *s) {
  /* The listener is closed ahead of the other handles, so its close completes before theirs
   * and before net_server_free releases the memory that holds it. */
  s->listening = 0;
  if (s->listener_closed)
    return;
  s->listener_closed = 1;
  uv_close((uv_handle_t *)&s->listener, NULL);
}

void net_server_close_all(struct net_server *s, uint16_t code, const char *reason) {
  struct net_conn *c, *tmp;
  uint64_t deadline = uv_now(s->loop) + NET__CLOSE_LINGER_MS;
  DL_FOREACH_SAFE(s->conns, c, tmp) {
    if (c->is_ws) {
      net_ws_close(c, code, reason);
    } else if (c->reading) {
      net__conn_close(c); /* idle HTTP: nothing in progress */
      continue;
    } else {
      /* A response is being prepared or written: close once it is out (at once if the app is
       * not preparing one: the flush finds nothing to write). */
      c->close_after_flush = 1;
      if (!net__http_in_app(c))
        net__conn_mark_dirty(c);
    }
    /* Every connection is gone by the linger time, however it behaves: an answer the app never
     * gives, a peer that never reads, a close handshake never completed (the tick enforces). */
    if (!c->closing && (c->close_deadline_ms == 0 || c->close_deadline_ms > deadline))
      c->close_deadline_ms = deadline;
  }
}

size_t net_server_conn_count(const struct net_server *s) { return s->n_conns; }

static void net__on_server_handle_closed(uv_handle_t *h) {
  struct net_server *s = h->data;
  if (--s->handles_open == 0) {
    net__ws_encoder_free(s);
    free(s);
  }
}

void net_server_free(struct net_server *s) {
  net_server_stop_accepting(s);
  s->closing_handles = 1;
  s->handles_open = 3;
  uv_close((uv_handle_t *)&s->flusher, net__on_server_handle_closed);
  uv_close((uv_handle_t *)&s->ticker, net__on_server_handle_closed);
  uv_close((uv_handle_t *)&s->resumer, net__on_server_handle_closed);
}

void net_server_get_stats(const struct net_server *s, struct net_stats *out) { *out = s->stats; }

void *net_conn_get_data(const struct net_conn *c) { return c->app_data; }

void net_conn_set_data(struct net_conn *c, void *data) { c->app_data = data; }

void net_conn_peer(const struct net_conn *c, char *buf, size_t len) {
  struct sockaddr_storage sa;
  int n = sizeof sa;
  buf[0] = '\0';
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &n) != 0)
    return;
  if (sa.ss_family == AF_INET6)
    uv_ip6_name((struct sockaddr_in6 *)&sa, buf, len);
  else
    uv_ip4_name((struct sockaddr_in *)&sa, buf, len);
}

