/* signup.c - creates the benchmark's accounts with POST /api/signup.
 *
 * Each signup costs the server an argon2id hash on its thread pool, so this keeps a fixed number
 * of requests in flight (--signup-concurrency) rather than opening a thousand at once. Every
 * request uses its own short HTTP/1.1 connection with `Connection: close` and a Content-Length
 * body; the reply is read to its Content-Length (or to EOF) and its JSON "token" kept. A 429 or
 * 503, or a connection failure, is retried a few times with backoff.
 */
#include "loadgen.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SU_PASSWORD "bench-password-1"
#define SU_MAX_ATTEMPTS 5
#define SU_RESP_LIMIT 65536

struct signup;

struct su_slot {
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_write_t wreq;
  uv_timer_t retry;
  struct signup *su;
  int idx;          /* user being signed up; -1 when idle */
  int attempts;
  int status;       /* HTTP status of the reply, 0 if none */
  char req[768];
  size_t req_len;
  struct buf resp;
  int tcp_open;
};

struct signup {
  struct lg *lg;
  const int *todo;
  int n, pos, done, conc, timers_open;
  struct su_slot *slots;
  void (*on_done)(struct lg *lg, int idx, int ok);
  void (*on_finished)(struct lg *lg);
  int errors_printed;
};

static void su_next(struct su_slot *s);
static void su_attempt(struct su_slot *s);

static void su_timer_closed(uv_handle_t *h) {
  struct su_slot *s = h->data;
  struct signup *su = s->su;
  if (--su->timers_open == 0) {
    void (*fin)(struct lg *) = su->on_finished;
    struct lg *lg = su->lg;
    for (int i = 0; i < su->conc; i++)
      buf_dispose(&su->slots[i].resp);
    free(su->slots);
    free(su);
    fin(lg);
  }
}

static void su_finish_all(struct signup *su) {
  for (int i = 0; i < su->conc; i++)
    uv_close((uv_handle_t *)&su->slots[i].retry, su_timer_closed);
}

/* Whether a header `name` (lower case, with the colon) in [h, end) contains `value`. */
static int su_header_has(const char *h, const char *end, const char *name, const char *value) {
  size_t nl = strlen(name), vl = strlen(value);
  for (const char *p = h; p < end;) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol)
      eol = end;
    if ((size_t)(eol - p) >= nl && strncasecmp(p, name, nl) == 0)
      for (const char *v = p + nl; v + vl <= eol; v++)
        if (strncasecmp(v, value, vl) == 0)
          return 1;
    p = eol + 1;
  }
  return 0;
}

/* Decodes a chunked body in place; returns its decoded length (what it could decode). */
static size_t su_dechunk(char *b, size_t n) {
  size_t in = 0, out = 0;
  while (in < n) {
    char *end;
    unsigned long sz = strtoul(b + in, &end, 16);
    char *nl = memchr(b + in, '\n', n - in);
    if (!nl || end == b + in || sz == 0)
      break;
    in = (size_t)(nl - b) + 1;
    if (sz > n - in)
      sz = n - in;
    memmove(b + out, b + in, sz);
    out += sz;
    in += sz + 2; /* the chunk's CRLF */
  }
  return out;
}

/* Looks at a complete reply; returns 1 (token stored), 0 (give up) or -1 (retry). */
static int su_judge(struct su_slot *s) {
  struct signup *su = s->su;
  struct buf *r = &s->resp;
  if (r->len < 12 || memcmp(r->base, "HTTP/1.", 7) != 0)
    return -1;
  s->status = atoi(r->base + 9);
  char *e = memmem(r->base, r->len, "\r\n\r\n", 4);
  const char *body = e ? e + 4 : r->base + r->len;
  size_t blen = (size_t)(r->base + r->len - body);
  if (s->status == 429 || s->status == 503)
    return -1;
  if (e && su_header_has(r->base, e, "transfer-encoding:", "chunked"))
    blen = su_dechunk((char *)body, blen);
  if (s->status == 200 || s->status == 201) {
    json_error_t err;
    json_t *root = json_loadb(body, blen, 0, &err);
    const char *tok = json_string_value(json_object_get(root, "token"));
    int ok = tok && *tok;
    if (ok) {
      free(su->lg->users[s->idx].token);
      su->lg->users[s->idx].token = strdup(tok);
    }
    json_decref(root);
    if (ok)
      return 1;
  }
  if (su->errors_printed++ < 5)
    fprintf(stderr, "signup %s: HTTP %d %.*s\n", su->lg->users[s->idx].name, s->status,
            (int)(blen > 300 ? 300 : blen), body);
  return 0;
}

/* Whether the reply in s->resp is complete (headers plus Content-Length bytes). */
static int su_complete(struct su_slot *s) {
  struct buf *r = &s->resp;
  char *e = memmem(r->base, r->len, "\r\n\r\n", 4);
  if (!e)
    return 0;
  size_t hlen = (size_t)(e + 4 - r->base);
  const char *p = r->base;
  while (p < e) {
    const char *eol = memchr(p, '\n', (size_t)(e - p) + 2);
    if (!eol)
      break;
    if (strncasecmp(p, "content-length:", 15) == 0) {
      long cl = strtol(p + 15, NULL, 10);
      return cl >= 0 && r->len >= hlen + (size_t)cl;
    }
    p = eol + 1;
  }
  return 0; /* no Content-Length: read to EOF */
}

static void su_retry_cb(uv_timer_t *t) { su_attempt(t->data); }

static void su_tcp_closed(uv_handle_t *h) {
  struct su_slot *s = h->data;
  struct signup *su = s->su;
  s->tcp_open = 0;
  int verdict = su_judge(s);
  if (verdict < 0 && s->attempts < SU_MAX_ATTEMPTS) {
    uv_timer_start(&s->retry, su_retry_cb, 100u << s->attempts, 0);
    return;
  }
  if (verdict < 0 && su->errors_printed++ < 5)
    fprintf(stderr, "signup %s: gave up after %d attempts (last HTTP status %d)\n",
            su->lg->users[s->idx].name, s->attempts, s->status);
  su->done++;
  su->on_done(su->lg, s->idx, verdict == 1);
  s->idx = -1;
  su_next(s);
}

static void su_close(struct su_slot *s) {
  if (s->tcp_open && !uv_is_closing((uv_handle_t *)&s->tcp))
    uv_close((uv_handle_t *)&s->tcp, su_tcp_closed);
}

static void su_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  static char rbuf[16384];
  (void)h;
  (void)suggested;
  *b = uv_buf_init(rbuf, sizeof(rbuf));
}

static void su_on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b) {
  struct su_slot *s = st->data;
  if (nread == 0)
    return;
  if (nread < 0) {
    su_close(s);
    return;
  }
  if (buf_append(&s->resp, b->base, (size_t)nread, SU_RESP_LIMIT) != 0 || su_complete(s))
    su_close(s);
}

static void su_on_write(uv_write_t *req, int status) {
  struct su_slot *s = req->data;
  if (status < 0)
    su_close(s);
}

static void su_on_connect(uv_connect_t *req, int status) {
  struct su_slot *s = req->data;
  if (status < 0) {
    su_close(s);
    return;
  }
  uv_buf_t b = uv_buf_init(s->req, (unsigned)s->req_len);
  s->wreq.data = s;
  if (uv_read_start((uv_stream_t *)&s->tcp, su_alloc, su_on_read) != 0 ||
      uv_write(&s->wreq, (uv_stream_t *)&s->tcp, &b, 1, su_on_write) != 0)
    su_close(s);
}

static void su_attempt(struct su_slot *s) {
  struct lg *lg = s->su->lg;
  s->attempts++;
  s->status = 0;
  s->resp.len = 0;
  uv_tcp_init(lg->loop, &s->tcp);
  s->tcp.data = s;
  s->creq.data = s;
  s->tcp_open = 1;
  if (uv_tcp_connect(&s->creq, &s->tcp, (const struct sockaddr *)&lg->addr, su_on_connect) != 0)
    su_close(s);
}

static void su_next(struct su_slot *s) {
  struct signup *su = s->su;
  if (su->pos >= su->n) {
    if (su->done == su->n)
      su_finish_all(su);
    return;
  }
  s->idx = su->todo[su->pos++];
  s->attempts = 0;
  struct lg *lg = su->lg;
  const char *name = lg->users[s->idx].name;
  char body[256];
  int bl = snprintf(body, sizeof(body), "{\"username\":\"%s\",\"password\":\"%s\",\"displayName\":\"%s\"}",
                    name, SU_PASSWORD, name);
  s->req_len = (size_t)snprintf(s->req, sizeof(s->req),
                                "POST /api/signup HTTP/1.1\r\nHost: %s:%d\r\n"
                                "Content-Type: application/json\r\nContent-Length: %d\r\n"
                                "Connection: close\r\nUser-Agent: parley-loadgen\r\n\r\n%s",
                                lg->host, lg->port, bl, body);
  su_attempt(s);
}

void signup_run(struct lg *lg, const int *todo, int n, int conc,
                void (*done)(struct lg *lg, int idx, int ok), void (*finished)(struct lg *lg)) {
  struct signup *su = calloc(1, sizeof(*su));
  if (conc < 1)
    conc = 1;
  if (conc > n)
    conc = n > 0 ? n : 1;
  su->lg = lg;
  su->todo = todo;
  su->n = n;
  su->conc = conc;
  su->on_done = done;
  su->on_finished = finished;
  su->slots = calloc((size_t)conc, sizeof(*su->slots));
  if (!su->slots) {
    fprintf(stderr, "signup: out of memory\n");
    exit(1);
  }
  for (int i = 0; i < conc; i++) {
    struct su_slot *s = &su->slots[i];
    s->su = su;
    s->idx = -1;
    uv_timer_init(lg->loop, &s->retry);
    s->retry.data = s;
    su->timers_open++;
  }
  if (n == 0) {
    su_finish_all(su);
    return;
  }
  for (int i = 0; i < conc; i++)
    su_next(&su->slots[i]);
}
