/* ws.c - a minimal WebSocket client for the load generator.
 *
 * libuv TCP, an RFC 6455 handshake whose Sec-WebSocket-Accept is checked with OpenSSL (SHA-1,
 * base64), and wslay's frame layer (wslay_frame_*) for framing and client masking. Reads land in
 * one shared buffer (the loop is single threaded and libuv calls read_cb right after alloc_cb)
 * and are handed to wslay; a message that arrives whole in one chunk is given to lg_on_ws_text()
 * straight from wslay's buffer, others are reassembled first. Writes are appended to a
 * per-connection buffer and pushed with uv_try_write once per read (or per send outside a read);
 * only what the kernel refuses goes to uv_write.
 *
 * Why not wslay's event API: it validates UTF-8 byte by byte on every text frame it receives,
 * which at 800k deliveries/s was 60% of this process's CPU and made the generator, not the
 * server, the bottleneck. jansson still validates UTF-8 on every reply it parses, and --strict
 * parses every frame.
 */
#include "loadgen.h"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WS_OUT_LIMIT (8u << 20)  /* bytes queued per connection; beyond it a send is refused */
#define WS_HS_LIMIT 16384        /* handshake response size cap */
#define WS_MAX_MSG (16u << 20)   /* largest message accepted from the server */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static char ws_rbuf[256 * 1024];


static void ws_fail(struct conn *c, const char *why) {
  if (c->state == CONN_CLOSED || c->state == CONN_IDLE)
    return;
  ws_conn_abort(c);
  lg_on_ws_down(c, why);
}

static void ws_on_close(uv_handle_t *h) {
  struct conn *c = h->data;
  if (c->fr) {
    wslay_frame_context_free(c->fr);
    c->fr = NULL;
  }
  buf_dispose(&c->out);
  buf_dispose(&c->wbuf);
  buf_dispose(&c->hs);
  buf_dispose(&c->msg);
}

void ws_conn_abort(struct conn *c) {
  if (c->state == CONN_CLOSED || c->state == CONN_IDLE)
    return;
  c->state = CONN_CLOSED;
  if (!uv_is_closing((uv_handle_t *)&c->tcp))
    uv_close((uv_handle_t *)&c->tcp, ws_on_close);
}

/* wslay pulls received bytes through this callback, from the read being processed. */
static ssize_t ws_recv_cb(uint8_t *buf, size_t len, int flags, void *user_data) {
  struct conn *c = user_data;
  (void)flags;
  if (c->in_len == 0)
    return 0; /* wslay: WSLAY_ERR_WANT_READ */
  size_t n = len < c->in_len ? len : c->in_len;
  memcpy(buf, c->in, n);
  c->in += n;
  c->in_len -= n;
  return (ssize_t)n;
}

/* ws_send_frame() checked the room beforehand, so this always takes everything. */
static ssize_t ws_send_cb(const uint8_t *data, size_t len, int flags, void *user_data) {
  struct conn *c = user_data;
  (void)flags;
  if (buf_append(&c->out, data, len, WS_OUT_LIMIT + 256) != 0)
    return -1;
  return (ssize_t)len;
}

static int ws_genmask_cb(uint8_t *buf, size_t len, void *user_data) {
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

static const struct wslay_frame_callbacks ws_callbacks = {ws_send_cb, ws_recv_cb, ws_genmask_cb};

/* Frames one whole message (masked, as a client must) into c->out. Returns 0 or -1. */
static int ws_send_frame(struct conn *c, uint8_t opcode, const uint8_t *p, size_t n) {
  if (!c->fr || c->close_sent || c->out.len + n + 14 > WS_OUT_LIMIT)
    return -1;
  struct wslay_frame_iocb io;
  memset(&io, 0, sizeof(io));
  io.fin = 1;
  io.opcode = opcode;
  io.mask = 1;
  io.payload_length = n;
  io.data = p;
  io.data_length = n;
  ssize_t r = wslay_frame_send(c->fr, &io);
  if (r < 0 || (size_t)r != n)
    return -1;
  if (opcode == WSLAY_CONNECTION_CLOSE)
    c->close_sent = 1;
  return 0;
}

static void conn_on_write(uv_write_t *req, int status) {
  struct conn *c = req->data;
  c->writing = 0;
  c->wbuf.len = 0;
  if (c->state == CONN_CLOSED)
    return;
  if (status < 0) {
    c->fail(c, uv_strerror(status));
    return;
  }
  conn_flush(c);
}

void conn_flush(struct conn *c) {
  if (c->writing || c->out.len == 0 || c->state == CONN_CLOSED)
    return;
  uv_buf_t b = uv_buf_init(c->out.base, (unsigned)c->out.len);
  int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (r >= 0 && (size_t)r == c->out.len) {
    c->out.len = 0;
    return;
  }
  if (r < 0 && r != UV_EAGAIN) {
    c->fail(c, uv_strerror(r));
    return;
  }
  size_t done = r > 0 ? (size_t)r : 0;
  struct buf t = c->wbuf; /* the rest goes through uv_write from wbuf; out starts empty again */
  c->wbuf = c->out;
  c->out = t;
  c->out.len = 0;
  b = uv_buf_init(c->wbuf.base + done, (unsigned)(c->wbuf.len - done));
  c->wreq.data = c;
  r = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, conn_on_write);
  if (r != 0) {
    c->fail(c, uv_strerror(r));
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

/* A complete control frame. */
static void ws_on_control(struct conn *c, uint8_t opcode) {
  if (opcode == WSLAY_PING) {
    ws_send_frame(c, WSLAY_PONG, c->ctl, c->ctl_len);
  } else if (opcode == WSLAY_CONNECTION_CLOSE) {
    unsigned code = 1005; /* no status received */
    if (c->ctl_len >= 2)
      code = (unsigned)(c->ctl[0] << 8 | c->ctl[1]);
    lg_on_ws_close_frame(c, code);
    if (!c->close_sent) { /* echo the close; the server then ends the TCP connection */
      uint8_t echo[2] = {(uint8_t)(code >> 8), (uint8_t)code};
      ws_send_frame(c, WSLAY_CONNECTION_CLOSE, echo, code == 1005 ? 0 : 2);
    }
    if (c->state == CONN_OPEN)
      c->state = CONN_CLOSING;
  }
}

/* Runs wslay's frame parser over p[0..n): reassembles messages, answers pings and closes. */
static void ws_feed(struct conn *c, const uint8_t *p, size_t n) {
  const char *bad = NULL;
  c->in = p;
  c->in_len = n;
  c->in_recv = 1;
  while (c->state == CONN_OPEN || c->state == CONN_CLOSING) {
    struct wslay_frame_iocb io;
    memset(&io, 0, sizeof(io));
    ssize_t r = wslay_frame_recv(c->fr, &io);
    if (r == WSLAY_ERR_WANT_READ)
      break;
    if (r < 0) {
      bad = "WebSocket protocol error (bad frame header)";
      break;
    }
    if (io.mask || io.rsv) {
      bad = "WebSocket protocol error (masked frame or reserved bits from the server)";
      break;
    }
    int ctrl = (io.opcode & 0x8u) != 0;
    if (c->frame_off == 0 && !ctrl) { /* first chunk of a data frame */
      if (io.opcode == WSLAY_CONTINUATION_FRAME ? c->msg_op == 0 : c->msg_op != 0) {
        bad = "WebSocket protocol error (bad fragmentation)";
        break;
      }
      if (io.opcode != WSLAY_CONTINUATION_FRAME) {
        c->msg_op = io.opcode;
        c->msg.len = 0;
      }
    }
    c->frame_off += io.data_length;
    int frame_done = c->frame_off == io.payload_length;
    if (ctrl) {
      if (c->ctl_len + io.data_length > sizeof(c->ctl)) {
        bad = "WebSocket protocol error (control frame too long)";
        break;
      }
      memcpy(c->ctl + c->ctl_len, io.data, io.data_length);
      c->ctl_len = (uint8_t)(c->ctl_len + io.data_length);
      if (frame_done) {
        ws_on_control(c, io.opcode);
        c->ctl_len = 0;
      }
    } else {
      int msg_done = frame_done && io.fin;
      const uint8_t *m = io.data;
      size_t mlen = io.data_length;
      if (!(msg_done && c->msg.len == 0)) { /* not whole in this chunk: collect it */
        if (buf_append(&c->msg, io.data, io.data_length, WS_MAX_MSG) != 0) {
          bad = "message from the server too large";
          break;
        }
        m = (const uint8_t *)c->msg.base;
        mlen = c->msg.len;
      }
      if (msg_done) {
        if (c->msg_op == WSLAY_TEXT_FRAME)
          lg_on_ws_text(c, m, mlen);
        else
          c->lg->proto_errs++; /* the protocol is text only */
        c->msg_op = 0;
        c->msg.len = 0;
      }
    }
    if (frame_done)
      c->frame_off = 0;
  }
  c->in_recv = 0;
  c->in_len = 0;
  if (bad) {
    c->lg->proto_errs++;
    ws_fail(c, bad);
    return;
  }
  conn_flush(c);
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
  if (wslay_frame_context_init(&c->fr, &ws_callbacks, c) != 0) {
    ws_fail(c, "wslay init failed");
    return;
  }
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
                   c->lg->path, c->lg->host, lg_node_port(c->lg, c->idx), c->key);
  c->state = CONN_HANDSHAKE;
  int rc = uv_read_start((uv_stream_t *)&c->tcp, ws_alloc, ws_on_read);
  if (rc != 0 || buf_append(&c->out, req_txt, (size_t)n, WS_OUT_LIMIT) != 0) {
    ws_fail(c, "read_start failed");
    return;
  }
  conn_flush(c);
}

void ws_conn_start(struct conn *c) {
  uv_tcp_init(c->lg->loop, &c->tcp);
  c->tcp.data = c;
  c->creq.data = c;
  c->state = CONN_CONNECTING;
  c->fail = ws_fail;
  if (c->lg->n_src > 0 && lg_bind_source(c) != 0) { /* many sockets: see scen_conns.c */
    ws_fail(c, "bind to a loopback source address failed");
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  int r = uv_tcp_connect(&c->creq, &c->tcp, lg_node_addr(c->lg, c->idx), ws_on_connect);
  if (r != 0)
    ws_fail(c, uv_strerror(r));
}

int ws_conn_send_text(struct conn *c, const char *p, size_t n) {
  if (c->state != CONN_OPEN || ws_send_frame(c, WSLAY_TEXT_FRAME, (const uint8_t *)p, n) != 0)
    return -1;
  /* Inside the frame loop (a reply that triggers a send) the write waits for the loop's end,
   * so one read costs at most one write. */
  if (!c->in_recv)
    conn_flush(c);
  return 0;
}

void ws_conn_close(struct conn *c) {
  c->closed_by_us = 1;
  if (c->state == CONN_OPEN && c->fr) {
    static const uint8_t normal[2] = {1000 >> 8, 1000 & 0xff};
    c->state = CONN_CLOSING;
    if (ws_send_frame(c, WSLAY_CONNECTION_CLOSE, normal, 2) != 0) {
      ws_fail(c, "could not send close");
      return;
    }
    if (!c->in_recv)
      conn_flush(c);
    return;
  }
  if (c->state == CONN_CONNECTING || c->state == CONN_HANDSHAKE)
    ws_fail(c, "closed during set-up");
}
