/* ws.c - a minimal WebSocket client for the load generator.
 *
 * libuv TCP, an RFC 6455 handshake whose Sec-WebSocket-Accept is checked with OpenSSL (SHA-1,
 * base64), and wslay for framing and masking. Reads land in one shared buffer (the loop is single
 * threaded and libuv calls read_cb right after alloc_cb), are handed to wslay, and every complete
 * text message goes to lg_on_ws_text(). Writes are appended to a per-connection buffer and pushed
 * with uv_try_write; only what the kernel refuses is handed to uv_write, so the common case costs
 * one syscall and no copy beyond wslay's framing.
 */
#include "loadgen.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WS_OUT_LIMIT (8u << 20)  /* bytes queued per connection before wslay is told to wait */
#define WS_HS_LIMIT 16384        /* handshake response size cap */
#define WS_MAX_MSG (16u << 20)   /* largest message accepted from the server */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static char ws_rbuf[256 * 1024];

static void ws_flush(struct conn *c);

static void ws_fail(struct conn *c, const char *why) {
  if (c->state == CONN_CLOSED || c->state == CONN_IDLE)
    return;
  ws_conn_abort(c);
  lg_on_ws_down(c, why);
}

static void ws_on_close(uv_handle_t *h) {
  struct conn *c = h->data;
  if (c->ws) {
    wslay_event_context_free(c->ws);
    c->ws = NULL;
  }
  buf_dispose(&c->out);
  buf_dispose(&c->wbuf);
  buf_dispose(&c->hs);
}

void ws_conn_abort(struct conn *c) {
  if (c->state == CONN_CLOSED || c->state == CONN_IDLE)
    return;
  c->state = CONN_CLOSED;
  if (!uv_is_closing((uv_handle_t *)&c->tcp))
    uv_close((uv_handle_t *)&c->tcp, ws_on_close);
}

/* wslay pulls received bytes through this callback, from the read being processed. */
static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                          void *user_data) {
  struct conn *c = user_data;
  (void)flags;
  if (c->in_len == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  size_t n = len < c->in_len ? len : c->in_len;
  memcpy(buf, c->in, n);
  c->in += n;
  c->in_len -= n;
  return (ssize_t)n;
}

static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                          void *user_data) {
  struct conn *c = user_data;
  (void)flags;
  if (buf_append(&c->out, data, len, WS_OUT_LIMIT) != 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  return (ssize_t)len;
}

static int ws_genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user_data) {
  (void)ctx;
  (void)user_data;
  while (len > 0) {
    uint64_t r = lg_rand();
    size_t n = len < 8 ? len : 8;
    memcpy(buf, &r, n);
    buf += n;
    len -= n;
  }
  return 0;
}

static void ws_on_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                         void *user_data) {
  struct conn *c = user_data;
  (void)ctx;
  if (arg->opcode == WSLAY_TEXT_FRAME)
    lg_on_ws_text(c, arg->msg, arg->msg_length);
  else if (arg->opcode == WSLAY_CONNECTION_CLOSE)
    lg_on_ws_close_frame(c, arg->status_code);
  else if (arg->opcode == WSLAY_BINARY_FRAME)
    c->lg->proto_errs++; /* the protocol is text only */
}

static const struct wslay_event_callbacks ws_callbacks = {
    ws_recv_cb, ws_send_cb, ws_genmask_cb, NULL, NULL, NULL, ws_on_msg_cb};

/* Lets wslay frame whatever is queued, then writes it. */
static void ws_pump(struct conn *c) {
  if (c->state == CONN_CLOSED || !c->ws)
    return;
  if (wslay_event_want_write(c->ws) && wslay_event_send(c->ws) != 0) {
    ws_fail(c, "wslay send failed");
    return;
  }
  ws_flush(c);
}

static void ws_on_write(uv_write_t *req, int status) {
  struct conn *c = req->data;
  c->writing = 0;
  c->wbuf.len = 0;
  if (c->state == CONN_CLOSED)
    return;
  if (status < 0) {
    ws_fail(c, uv_strerror(status));
    return;
  }
  if (c->ws)
    ws_pump(c);
  else
    ws_flush(c);
}

static void ws_flush(struct conn *c) {
  if (c->writing || c->out.len == 0 || c->state == CONN_CLOSED)
    return;
  uv_buf_t b = uv_buf_init(c->out.base, (unsigned)c->out.len);
  int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (r >= 0 && (size_t)r == c->out.len) {
    c->out.len = 0;
    return;
  }
  if (r < 0 && r != UV_EAGAIN) {
    ws_fail(c, uv_strerror(r));
    return;
  }
  size_t done = r > 0 ? (size_t)r : 0;
  struct buf t = c->wbuf; /* the rest goes through uv_write from wbuf; out starts empty again */
  c->wbuf = c->out;
  c->out = t;
  c->out.len = 0;
  b = uv_buf_init(c->wbuf.base + done, (unsigned)(c->wbuf.len - done));
  c->wreq.data = c;
  r = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, ws_on_write);
  if (r != 0) {
    ws_fail(c, uv_strerror(r));
    return;
  }
  c->writing = 1;
}

static void ws_accept_for(const char *key, char out[29]) {
  unsigned char md[SHA_DIGEST_LENGTH];
  char in[64];
  int n = snprintf(in, sizeof(in), "%s%s", key, WS_GUID);
  SHA1((const unsigned char *)in, (size_t)n, md);
  EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH);
}

/* Checks the 101 response in h[0..n) (headers only). Returns NULL or what is wrong. */
static const char *ws_check_handshake(struct conn *c, const char *h, size_t n) {
  if (n < 12 || memcmp(h, "HTTP/1.1 101", 12) != 0)
    return "handshake: not 101";
  char want[29];
  ws_accept_for(c->key, want);
  const char *p = memchr(h, '\n', n);
  const char *end = h + n;
  while (p && p + 1 < end) {
    const char *line = p + 1;
    const char *eol = memchr(line, '\n', (size_t)(end - line));
    if (!eol)
      break;
    static const char name[] = "sec-websocket-accept:";
    if ((size_t)(eol - line) > sizeof(name) - 1 && strncasecmp(line, name, sizeof(name) - 1) == 0) {
      const char *v = line + sizeof(name) - 1;
      while (v < eol && (*v == ' ' || *v == '\t'))
        v++;
      const char *ve = eol;
      while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
      if ((size_t)(ve - v) == 28 && memcmp(v, want, 28) == 0)
        return NULL;
      return "handshake: wrong Sec-WebSocket-Accept";
    }
    p = eol;
  }
  return "handshake: no Sec-WebSocket-Accept";
}

static void ws_feed(struct conn *c, const uint8_t *p, size_t n) {
  c->in = p;
  c->in_len = n;
  c->in_recv = 1;
  int r = wslay_event_recv(c->ws);
  c->in_recv = 0;
  c->in_len = 0;
  if (c->state == CONN_CLOSED)
    return;
  if (r != 0) {
    ws_fail(c, "wslay recv failed (protocol error)");
    return;
  }
  ws_pump(c);
}

static void ws_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  (void)h;
  (void)suggested;
  *b = uv_buf_init(ws_rbuf, sizeof(ws_rbuf));
}

static void ws_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
  struct conn *c = s->data;
  if (nread == 0 || c->state == CONN_CLOSED)
    return;
  if (nread < 0) {
    ws_fail(c, nread == UV_EOF ? "closed by server (EOF)" : uv_strerror((int)nread));
    return;
  }
  c->lg->now_recv = uv_hrtime();
  if (c->state != CONN_HANDSHAKE) {
    ws_feed(c, (const uint8_t *)b->base, (size_t)nread);
    return;
  }
  if (buf_append(&c->hs, b->base, (size_t)nread, WS_HS_LIMIT) != 0) {
    ws_fail(c, "handshake: response too long");
    return;
  }
  char *e = memmem(c->hs.base, c->hs.len, "\r\n\r\n", 4);
  if (!e)
    return;
  size_t hlen = (size_t)(e + 4 - c->hs.base);
  const char *bad = ws_check_handshake(c, c->hs.base, hlen);
  if (bad) {
    ws_fail(c, bad);
    return;
  }
  if (wslay_event_context_client_init(&c->ws, &ws_callbacks, c) != 0) {
    ws_fail(c, "wslay init failed");
    return;
  }
  wslay_event_config_set_max_recv_msg_length(c->ws, WS_MAX_MSG);
  c->state = CONN_OPEN;
  lg_on_ws_open(c);
  /* Frames may have arrived in the same read as the 101. */
  if (c->state == CONN_OPEN && c->hs.len > hlen)
    ws_feed(c, (const uint8_t *)c->hs.base + hlen, c->hs.len - hlen);
  if (c->state != CONN_CLOSED)
    buf_dispose(&c->hs);
}

static void ws_on_connect(uv_connect_t *req, int status) {
  struct conn *c = req->data;
  if (c->state == CONN_CLOSED)
    return;
  if (status < 0) {
    ws_fail(c, uv_strerror(status));
    return;
  }
  unsigned char raw[16];
  uint64_t r1 = lg_rand(), r2 = lg_rand();
  memcpy(raw, &r1, 8);
  memcpy(raw + 8, &r2, 8);
  EVP_EncodeBlock((unsigned char *)c->key, raw, 16);
  char req_txt[512];
  int n = snprintf(req_txt, sizeof(req_txt),
                   "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                   "User-Agent: parley-loadgen\r\n\r\n",
                   c->lg->path, c->lg->host, c->lg->port, c->key);
  c->state = CONN_HANDSHAKE;
  int rc = uv_read_start((uv_stream_t *)&c->tcp, ws_alloc, ws_on_read);
  if (rc != 0 || buf_append(&c->out, req_txt, (size_t)n, WS_OUT_LIMIT) != 0) {
    ws_fail(c, "read_start failed");
    return;
  }
  ws_flush(c);
}

void ws_conn_start(struct conn *c) {
  uv_tcp_init(c->lg->loop, &c->tcp);
  c->tcp.data = c;
  c->creq.data = c;
  c->state = CONN_CONNECTING;
  uv_tcp_nodelay(&c->tcp, 1);
  int r = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&c->lg->addr, ws_on_connect);
  if (r != 0)
    ws_fail(c, uv_strerror(r));
}

int ws_conn_send_text(struct conn *c, const char *p, size_t n) {
  if (c->state != CONN_OPEN || !c->ws)
    return -1;
  struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)p, n};
  if (wslay_event_queue_msg(c->ws, &m) != 0)
    return -1;
  /* Inside wslay_event_recv (a reply that triggers a send) the frame is only queued; ws_feed
   * pushes it when wslay returns. */
  if (!c->in_recv)
    ws_pump(c);
  return 0;
}

void ws_conn_close(struct conn *c) {
  c->closed_by_us = 1;
  if (c->state == CONN_OPEN && c->ws) {
    c->state = CONN_CLOSING;
    wslay_event_queue_close(c->ws, 1000, NULL, 0);
    if (!c->in_recv)
      ws_pump(c);
    return;
  }
  if (c->state == CONN_CONNECTING || c->state == CONN_HANDSHAKE)
    ws_fail(c, "closed during set-up");
}
