/* http.c - HTTP/1.1 requests on llhttp, one at a time per connection.
 *
 * llhttp is paused at the end of every request so the app can answer it asynchronously (a login
 * waits for password hashing on the thread pool). Reading stops until the answer is sent; bytes
 * already received after the request (pipelining) are kept and parsed once the answer is out.
 * An answer given later than the request's hand-over never parses the next request from inside
 * the answering call: the app may still be using its per-request state there (issue 14), so
 * the connection is put on the resume list and parsing goes on at the next loop turn. While
 * more than outq_max bytes of responses wait unwritten (a client pipelining requests and not
 * reading the answers), nothing further is parsed or read until the queue drains.
 * Headers and bodies are capped (431, 413); only the headers the server uses are kept.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/error.h"
#include "common/log.h"
#include "net/net_internal.h"

struct net__http {
  llhttp_t parser;
  struct http_request req;
  struct buf url;
  struct buf field;
  struct buf value;
  struct buf leftover;  /* received bytes not parsed yet (pipelined requests) */
  size_t lpos;          /* bytes of leftover already parsed */
  size_t header_bytes;  /* request line + headers so far */
  int in_value;
  int pending;          /* a request was handed to the app and is not answered yet */
  int dispatching;      /* inside net__http_process: answers do not recurse */
  int error_status;     /* status to answer a parse failure with */
  uint64_t started_ms;  /* loop time of the first byte of the request being read; 0 = none */
};

static void http__request_reset(struct http_request *r) {
  free(r->path);
  free(r->query);
  free(r->host);
  free(r->origin);
  free(r->cookie);
  free(r->authorization);
  free(r->content_type);
  free(r->upgrade);
  free(r->sec_ws_key);
  free(r->sec_ws_version);
  free(r->x_forwarded_for);
  if (r->body.data)
    explicit_bzero(r->body.data, r->body.len); /* a signup or login body holds a password */
  buf_dispose(&r->body);
  memset(r, 0, sizeof *r);
}

static struct net_conn *http__conn(llhttp_t *p) { return p->data; }

static int http__count(struct net_conn *c, size_t n) {
  c->http->header_bytes += n;
  if (c->http->header_bytes > c->srv->cfg.max_header) {
    c->http->error_status = 431;
    return -1;
  }
  return 0;
}

static int http__on_message_begin(llhttp_t *p) {
  struct net_conn *c = http__conn(p);
  struct net__http *h = c->http;
  http__request_reset(&h->req);
  buf_init(&h->req.body, c->srv->cfg.max_body);
  h->url.len = h->field.len = h->value.len = 0;
  h->header_bytes = 0;
  h->in_value = 0;
  return 0;
}

static int http__on_url(llhttp_t *p, const char *at, size_t n) {
  struct net_conn *c = http__conn(p);
  if (http__count(c, n) != 0 || buf_append(&c->http->url, at, n) != 0)
    return -1;
  return 0;
}

/* Keeps the value of a header the server uses; repeated Cookie headers are joined. */
static void http__header_done(struct net__http *h) {
  static const struct {
    const char *name;
    size_t off;
  } keep[] = {
      {"host", offsetof(struct http_request, host)},
      {"origin", offsetof(struct http_request, origin)},
      {"cookie", offsetof(struct http_request, cookie)},
      {"authorization", offsetof(struct http_request, authorization)},
      {"content-type", offsetof(struct http_request, content_type)},
      {"upgrade", offsetof(struct http_request, upgrade)},
      {"sec-websocket-key", offsetof(struct http_request, sec_ws_key)},
      {"sec-websocket-version", offsetof(struct http_request, sec_ws_version)},
      {"x-forwarded-for", offsetof(struct http_request, x_forwarded_for)},
  };
  const char *name = h->field.data ? h->field.data : "";
  const char *value = h->value.data ? h->value.data : "";

  for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
    char **slot;
    if (strcasecmp(name, keep[i].name) != 0)
      continue;
    slot = (char **)((char *)&h->req + keep[i].off);
    if (*slot != NULL && strcmp(keep[i].name, "cookie") == 0) {
      size_t a = strlen(*slot), b = strlen(value);
      char *joined = malloc(a + 2 + b + 1);
      if (joined) {
        memcpy(joined, *slot, a);
        memcpy(joined + a, "; ", 2);
        memcpy(joined + a + 2, value, b + 1);
        free(*slot);
        *slot = joined;
      }
    } else if (*slot == NULL) {
      *slot = strdup(value); /* the first of repeated headers wins */
    }
    break;
  }
  h->field.len = h->value.len = 0;
  if (h->field.data)
    h->field.data[0] = '\0';
  if (h->value.data)
    h->value.data[0] = '\0';
  h->in_value = 0;
}

static int http__on_header_field(llhttp_t *p, const char *at, size_t n) {
  struct net_conn *c = http__conn(p);
  struct net__http *h = c->http;
  if (h->in_value)
    http__header_done(h);
  if (http__count(c, n) != 0 || buf_append(&h->field, at, n) != 0)
    return -1;
  return 0;
}

static int http__on_header_value(llhttp_t *p, const char *at, size_t n) {
  struct net_conn *c = http__conn(p);
  struct net__http *h = c->http;
  h->in_value = 1;
  if (http__count(c, n) != 0 || buf_append(&h->value, at, n) != 0)
    return -1;
  return 0;
}

/* An exact path, or a prefix when the pattern ends in '*'. */
static int net__path_matches(const char *pattern, const char *path) {
  size_t n = strlen(pattern);
  if (n && pattern[n - 1] == '*')
    return strncmp(pattern, path, n - 1) == 0;
  return strcmp(pattern, path) == 0;
}

static int http__on_headers_complete(llhttp_t *p) {
  struct net_conn *c = http__conn(p);
  struct net__http *h = c->http;
  struct http_request *r = &h->req;
  char *q;

  if (h->in_value || h->field.len)
    http__header_done(h);
  r->method = llhttp_get_method(p);
  r->keep_alive = llhttp_should_keep_alive(p);
  r->http_major = llhttp_get_http_major(p);
  r->http_minor = llhttp_get_http_minor(p);
  r->path = strdup(h->url.data ? h->url.data : "/");
  if (r->path == NULL)
    return -1;
  q = strchr(r->path, '?');
  if (q) {
    *q = '\0';
    r->query = strdup(q + 1);
  }
  r->wants_upgrade = p->upgrade && r->upgrade && strcasecmp(r->upgrade, "websocket") == 0;
  /* The body cap is the route's: known now, before any byte of the body is kept. */
  r->body.max = c->srv->cfg.max_body;
  for (size_t i = 0; i < c->srv->cfg.n_body_limits; i++)
    if (net__path_matches(c->srv->cfg.body_limits[i].path, r->path))
      r->body.max = c->srv->cfg.body_limits[i].max_body;
  if ((p->flags & F_CONTENT_LENGTH) && p->content_length > r->body.max) {
    h->error_status = 413;
    return -1;
  }
  return 0;
}

static int http__on_body(llhttp_t *p, const char *at, size_t n) {
  struct net_conn *c = http__conn(p);
  if (buf_append(&c->http->req.body, at, n) != 0) {
    c->http->error_status = 413;
    return -1;
  }
  return 0;
}

static int http__on_message_complete(llhttp_t *p) {
  /* Stop after each request: the app answers it before the next one is parsed. */
  return HPE_PAUSED;
}

static const llhttp_settings_t http__settings = {
    .on_message_begin = http__on_message_begin,
    .on_url = http__on_url,
    .on_header_field = http__on_header_field,
    .on_header_value = http__on_header_value,
    .on_headers_complete = http__on_headers_complete,
    .on_body = http__on_body,
    .on_message_complete = http__on_message_complete,
};

int net__http_new(struct net_conn *c) {
  struct net__http *h = calloc(1, sizeof *h);
  if (h == NULL)
    return PARLEY_EINTERNAL;
  llhttp_init(&h->parser, HTTP_REQUEST, &http__settings);
  h->parser.data = c;
  buf_init(&h->url, c->srv->cfg.max_header);
  buf_init(&h->field, c->srv->cfg.max_header);
  buf_init(&h->value, c->srv->cfg.max_header);
  buf_init(&h->leftover, c->srv->cfg.max_header + c->srv->cfg.max_body);
  buf_init(&h->req.body, c->srv->cfg.max_body);
  c->http = h;
  return 0;
}

void net__http_free(struct net_conn *c) {
  struct net__http *h = c->http;
  if (h == NULL)
    return;
  http__request_reset(&h->req);
  buf_dispose(&h->url);
  buf_dispose(&h->field);
  buf_dispose(&h->value);
  buf_dispose(&h->leftover);
  free(h);
  c->http = NULL;
}

struct http_request *net__http_request(struct net_conn *c) { return &c->http->req; }

void net__http_take_leftover(struct net_conn *c, struct buf *out) {
  struct net__http *h = c->http;
  if (h->lpos) {
    /* Drop what was parsed already: the rest belongs to the next protocol. */
    memmove(h->leftover.data, h->leftover.data + h->lpos, h->leftover.len - h->lpos);
    h->leftover.len -= h->lpos;
    h->lpos = 0;
  }
  *out = h->leftover;
  buf_init(&h->leftover, 0);
}

static const char *http__reason(int status) {
  switch (status) {
  case 101: return "Switching Protocols";
  case 200: return "OK";
  case 201: return "Created";
  case 204: return "No Content";
  case 304: return "Not Modified";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 409: return "Conflict";
  case 410: return "Gone";
  case 413: return "Payload Too Large";
  case 426: return "Upgrade Required";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 503: return "Service Unavailable";
  default: return status >= 500 ? "Internal Server Error" : "Error";
  }
}

size_t net__http_out_bound(const struct net_server *s) { return s->cfg.outq_max; }

static void http__leftover_clear(struct net__http *h) {
  h->leftover.len = 0;
  h->lpos = 0;
}

/* Parses `data` (a fresh read, or NULL for the kept bytes) until a request is handed to the app
 * and not answered at once, the bytes run out, or too much output waits unwritten. Reads go on
 * only once every kept byte was parsed and no request is pending. */
static void http__process(struct net_conn *c, const char *data, size_t len) {
  struct net__http *h = c->http;
  llhttp_errno_t err;

  h->dispatching = 1;
  for (;;) {
    const char *at;
    size_t n, used;
    int from_leftover;

    if (c->closing || c->http == NULL || h->pending || c->close_after_flush)
      break; /* nothing after a "Connection: close" request is parsed */
    if (net__conn_held(c) > net__http_out_bound(c->srv)) {
      /* The client sends requests faster than it reads the answers: stop until it catches up
       * (net__conn_wrote resumes). A fresh read is kept for then. */
      if (data && buf_append(&h->leftover, data, len) != 0) {
        net__conn_close(c);
        return;
      }
      c->http_blocked = 1;
      c->last_tx_ms = uv_now(c->srv->loop); /* the stall timeout runs from now */
      break;
    }
    c->http_blocked = 0;
    if (data) {
      at = data;
      n = len;
      from_leftover = 0;
      data = NULL;
    } else if (h->lpos < h->leftover.len) {
      at = h->leftover.data + h->lpos;
      n = h->leftover.len - h->lpos;
      from_leftover = 1;
    } else {
      break;
    }
    err = llhttp_execute(&h->parser, at, n);
    used = n;
    if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
      const char *pos = llhttp_get_error_pos(&h->parser);
      used = pos ? (size_t)(pos - at) : n;
    }
    if (from_leftover) {
      h->lpos += used;
      if (h->lpos == h->leftover.len)
        http__leftover_clear(h);
    } else if (used < n && buf_append(&h->leftover, at + used, n - used) != 0) {
      h->error_status = 413;
      err = HPE_USER;
    }
    if (err == HPE_OK)
      continue; /* all of it parsed without a complete request: on with what is kept */
    if (err != HPE_PAUSED && err != HPE_PAUSED_UPGRADE) {
      int status = h->error_status ? h->error_status : 400;
      h->pending = 1;
      h->req.keep_alive = 0;
      http__leftover_clear(h);
      net__conn_read_stop(c);
      net_http_error(c, status == 431   ? PARLEY_ETOO_LARGE
                        : status == 413 ? PARLEY_ETOO_LARGE
                                        : PARLEY_EBAD_REQUEST,
                     status == 431 ? "request headers too large"
                     : status == 413 ? "request body too large"
                                     : "malformed HTTP request");
      break;
    }
    if (h->req.path == NULL) {
      /* llhttp paused without a complete request (a state no valid input reaches now that
       * refused upgrades close the connection); never hand the app an empty one. */
      net__conn_close(c);
      return;
    }
    h->pending = 1;
    net__conn_read_stop(c);
    c->srv->cb.on_request(c->srv->cb.ud, c, &h->req);
    if (c->closing || c->http == NULL)
      return; /* closed or upgraded by the app */
  }
  h->dispatching = 0;
  if (c->closing || c->http == NULL)
    return;
  if (!h->pending && !c->http_blocked && !c->close_after_flush && h->lpos >= h->leftover.len)
    net__conn_read_start(c);
  else
    net__conn_read_stop(c);
}

void net__http_resume(struct net_conn *c) {
  if (c->closing || c->http == NULL || c->http->pending || c->http->dispatching)
    return;
  http__process(c, NULL, 0);
}

int net__http_in_app(const struct net_conn *c) { return c->http && c->http->pending; }

uint64_t net__http_started_ms(const struct net_conn *c) {
  return c->http ? c->http->started_ms : 0;
}

void net__http_on_data(struct net_conn *c, const char *data, size_t len) {
  struct net__http *h = c->http;
  /* The deadline for a request runs from its first byte: trickling bytes (slowloris) does not
   * extend it. */
  if (h->started_ms == 0)
    h->started_ms = uv_now(c->srv->loop);
  if (h->pending || h->dispatching || h->lpos < h->leftover.len) {
    /* Not expected (reading stops while a request is answered or bytes are kept), but never
     * lose bytes or parse them out of order. */
    if (buf_append(&h->leftover, data, len) != 0)
      net__conn_close(c);
    else if (!h->pending && !h->dispatching)
      http__process(c, NULL, 0);
    return;
  }
  http__process(c, data, len);
}

/* Builds and queues the status line, headers and body, and moves on to the next request. */
static void http__send(struct net_conn *c, int status, const char *content_type,
                       const char *extra_headers, const void *body, size_t len, int close,
                       int head) {
  struct buf out;
  buf_init(&out, (size_t)-1 / 2);
  buf_printf(&out,
             "HTTP/1.1 %d %s\r\n"
             "Content-Length: %zu\r\n"
             /* On every response (JSON, errors, files): a browser must never sniff a reply
              * into a type that could run, whatever Content-Type says. */
             "X-Content-Type-Options: nosniff\r\n"
             "%s%s%s"
             "%s"
             "Connection: %s\r\n\r\n",
             status, http__reason(status), len, content_type ? "Content-Type: " : "",
             content_type ? content_type : "", content_type ? "\r\n" : "",
             extra_headers ? extra_headers : "", close ? "close" : "keep-alive");
  if (len && !head)
    buf_append(&out, body, len);
  net__conn_push_copy(c, out.data, out.len);
  buf_dispose(&out);
}

void net_http_respond(struct net_conn *c, int status, const char *content_type,
                      const char *extra_headers, const void *body, size_t len) {
  struct net__http *h = c->http;
  int close;

  if (c->closing || h == NULL || !h->pending)
    return;
  /* A request that asked to switch protocols and is answered here instead (refused upgrade)
   * leaves llhttp in its upgrade state: nothing after it can be parsed as HTTP, so close. */
  close = !h->req.keep_alive || c->close_after_flush || h->error_status != 0 ||
          h->parser.upgrade;
  http__send(c, status, content_type, extra_headers, body, len, close,
             h->req.method == HTTP_HEAD);
  h->pending = 0;
  h->started_ms = h->lpos < h->leftover.len ? uv_now(c->srv->loop) : 0;
  if (close) {
    c->close_after_flush = 1;
    return;
  }
  llhttp_resume(&h->parser);
  http__request_reset(&h->req);
  /* Inside http__process (an answer given during on_request) its loop goes on by itself;
   * otherwise the next request waits for the next loop turn, never parsed from in here. */
  if (!h->dispatching)
    net__conn_resume_later(c);
}

void net_http_error(struct net_conn *c, int err, const char *msg) {
  struct buf body;
  int status = parley_err_http_status(err);

  if (c->http && c->http->error_status)
    status = c->http->error_status;
  buf_init(&body, 4096);
  /* Messages are fixed strings from the server, never client input, so no escaping is needed
   * beyond the guarantee that they hold no quotes. */
  buf_printf(&body, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", parley_err_name(err),
             msg ? msg : parley_strerror(err));
  net_http_respond(c, status, "application/json", NULL, body.data, body.len);
  buf_dispose(&body);
}
