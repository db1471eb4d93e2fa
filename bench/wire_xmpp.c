/* wire_xmpp.c - the XMPP wire (RFC 6120 client stream over plain TCP, XEP-0045 multi-user chat),
 * for the ejabberd peer (bench/peers/ejabberd).
 *
 * The exchange (PEERS.md): stream header -> features; SASL ANONYMOUS -> success; stream restart
 * -> features; resource bind iq -> result (logged in); join with
 * <presence to='room@conference.DOMAIN/nick'><x xmlns='http://jabber.org/protocol/muc'/> and wait
 * for the self-presence (status 110); then groupchat messages, which every occupant, the sender
 * included, receives from room@conference.DOMAIN/nick.
 *
 * Servers put several stanzas, or half of one, in a TCP segment, so the input goes through
 * libexpat, one streaming parser per connection, with the element depth tracked: depth 1 is the
 * stream, 2 a stanza (handled at its end tag), 3 and 4 its children (<body>, the MUC <x> and its
 * <status/>). Names are compared without their namespace prefix ("stream:features").
 * Writes are buffered per connection and pushed once per read, as in ws.c.
 */
#include "loadgen.h"
#include "wire.h"

#include <expat.h>
#include <stdlib.h>
#include <string.h>

#define XMPP_OUT_LIMIT (8u << 20) /* bytes queued per connection */
#define XMPP_BODY_LIMIT (64u << 10)

enum { XS_FEATURES = 0, XS_AUTH, XS_FEATURES2, XS_BIND, XS_READY, XS_JOINING, XS_JOINED };
enum { ST_OTHER = 0, ST_MESSAGE, ST_PRESENCE, ST_IQ, ST_FEATURES, ST_SUCCESS, ST_FAILURE,
       ST_STREAM_ERROR };

struct xmpp {
  struct conn *c;
  XML_Parser xp;
  int depth;       /* open elements, the stream's included */
  int restart;     /* SASL succeeded: a new stream (and parser) after this read */
  int stopped;     /* the parser was stopped from a handler */
  /* the stanza being read (depth 2) */
  int st;          /* ST_* */
  int st_type_ok;  /* type='groupchat' (message), type='result' (iq) */
  int st_type_err; /* type='error' */
  int st_110;      /* presence: <status code='110'/> (self-presence) */
  int in_body;
  char from[192];  /* the stanza's from attribute */
  struct buf body;
};

static char xmpp_rbuf[256 * 1024];

/* Element name without its prefix. */
static const char *local(const char *name) {
  const char *p = strrchr(name, ':');
  return p ? p + 1 : name;
}

static const char *attr(const char **atts, const char *name) {
  for (int i = 0; atts[i]; i += 2)
    if (strcmp(atts[i], name) == 0)
      return atts[i + 1];
  return NULL;
}

static void xmpp_on_close(uv_handle_t *h) {
  struct conn *c = h->data;
  struct xmpp *x = c->peer;
  if (x) {
    if (x->xp)
      XML_ParserFree(x->xp);
    buf_dispose(&x->body);
    free(x);
    c->peer = NULL;
  }
  buf_dispose(&c->out);
  buf_dispose(&c->wbuf);
}

static void xmpp_abort(struct conn *c) {
  if (c->state == CONN_CLOSED || c->state == CONN_IDLE)
    return;
  c->state = CONN_CLOSED;
  if (!uv_is_closing((uv_handle_t *)&c->tcp))
    uv_close((uv_handle_t *)&c->tcp, xmpp_on_close);
}

static void xmpp_fail(struct conn *c, const char *why) {
  if (c->state == CONN_CLOSED || c->state == CONN_IDLE)
    return;
  xmpp_abort(c);
  lg_on_ws_down(c, why);
}

/* Queues p[0..n); written at the end of the current read, or now outside one. 0 or -1. */
static int xmpp_write(struct conn *c, const char *p, size_t n) {
  if (c->state == CONN_CLOSED || c->state == CONN_IDLE ||
      buf_append(&c->out, p, n, XMPP_OUT_LIMIT) != 0)
    return -1;
  if (!c->in_recv)
    conn_flush(c);
  return 0;
}

static int xmpp_stream_header(struct conn *c) {
  char h[256];
  int n = snprintf(h, sizeof(h),
                   "<?xml version='1.0'?><stream:stream to='%s' xmlns='jabber:client' "
                   "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>",
                   c->lg->xmpp_domain);
  return xmpp_write(c, h, (size_t)n);
}

static void XMLCALL xmpp_start(void *ud, const char *name, const char **atts) {
  struct xmpp *x = ud;
  const char *ln = local(name);
  int level = ++x->depth;
  if (level == 2) {
    const char *type = attr(atts, "type");
    const char *from = attr(atts, "from");
    x->st = strcmp(ln, "message") == 0    ? ST_MESSAGE
            : strcmp(ln, "presence") == 0 ? ST_PRESENCE
            : strcmp(ln, "iq") == 0       ? ST_IQ
            : strcmp(ln, "features") == 0 ? ST_FEATURES
            : strcmp(ln, "success") == 0  ? ST_SUCCESS
            : strcmp(ln, "failure") == 0  ? ST_FAILURE
            : strcmp(ln, "error") == 0    ? ST_STREAM_ERROR
                                          : ST_OTHER;
    x->st_type_err = type && strcmp(type, "error") == 0;
    x->st_type_ok = type && ((x->st == ST_MESSAGE && strcmp(type, "groupchat") == 0) ||
                             (x->st == ST_IQ && strcmp(type, "result") == 0));
    x->st_110 = 0;
    x->in_body = 0;
    x->body.len = 0;
    snprintf(x->from, sizeof(x->from), "%s", from ? from : "");
  } else if (level == 3 && x->st == ST_MESSAGE && strcmp(ln, "body") == 0) {
    x->in_body = 1;
  } else if (level == 4 && x->st == ST_PRESENCE && strcmp(ln, "status") == 0) {
    const char *code = attr(atts, "code");
    if (code && strcmp(code, "110") == 0)
      x->st_110 = 1;
  }
}

static void XMLCALL xmpp_text(void *ud, const char *s, int len) {
  struct xmpp *x = ud;
  if (x->in_body && x->depth == 3 &&
      buf_append(&x->body, s, (size_t)len, XMPP_BODY_LIMIT) != 0)
    x->in_body = 0; /* too long: not one of ours, reported as a bad body */
}

/* The room part of the from JID "room@service/nick": [from, '@'). */
static size_t room_len(const char *from) {
  const char *at = strchr(from, '@');
  return at ? (size_t)(at - from) : 0;
}

static void xmpp_stanza(struct xmpp *x) {
  struct conn *c = x->c;
  char out[512];
  int n;
  switch (x->st) {
  case ST_MESSAGE:
    if (x->st_type_err) {
      wire_peer_bad(c, "message error", x->from, strlen(x->from));
    } else if (x->st_type_ok && x->body.len > 0) {
      wire_peer_msg(c, x->from, room_len(x->from), x->body.base, x->body.len);
    }
    /* Messages without a body (the room subject after a join) carry nothing to count. */
    return;
  case ST_PRESENCE: {
    const char *slug = c->lg->groups[c->group].slug;
    size_t rl = room_len(x->from);
    int ours = rl == strlen(slug) && memcmp(x->from, slug, rl) == 0;
    if (c->peer_stage != XS_JOINING || !ours)
      return; /* other occupants' comings and goings */
    if (x->st_type_err) {
      c->peer_stage = XS_READY;
      wire_peer_bad(c, "join refused", x->from, strlen(x->from));
      lg_step_done(c, 0);
    } else if (x->st_110) {
      c->peer_stage = XS_JOINED;
      lg_step_done(c, 1);
    }
    return;
  }
  case ST_FEATURES:
    if (c->peer_stage == XS_FEATURES) {
      static const char auth[] = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                                 "mechanism='ANONYMOUS'/>";
      c->peer_stage = XS_AUTH;
      if (xmpp_write(c, auth, sizeof(auth) - 1) != 0)
        xmpp_fail(c, "could not send auth");
    } else if (c->peer_stage == XS_FEATURES2) {
      n = snprintf(out, sizeof(out), "<iq type='set' id='bind1'><bind "
                                     "xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
      c->peer_stage = XS_BIND;
      if (xmpp_write(c, out, (size_t)n) != 0)
        xmpp_fail(c, "could not send bind");
    }
    return;
  case ST_SUCCESS:
    if (c->peer_stage == XS_AUTH) {
      /* The stream restarts: a fresh parser for the server's new stream header. */
      x->restart = 1;
      x->stopped = 1;
      XML_StopParser(x->xp, XML_FALSE);
    }
    return;
  case ST_FAILURE:
    xmpp_fail(c, "SASL ANONYMOUS refused (is anonymous login on?)");
    return;
  case ST_STREAM_ERROR:
    xmpp_fail(c, "stream error from the server");
    return;
  case ST_IQ:
    if (c->peer_stage == XS_BIND) {
      if (!x->st_type_ok) {
        xmpp_fail(c, "resource bind refused");
        return;
      }
      c->peer_stage = XS_READY;
      c->state = CONN_OPEN;
      lg_step_done(c, 1);
    }
    return;
  default:
    return;
  }
}

static void XMLCALL xmpp_end(void *ud, const char *name) {
  struct xmpp *x = ud;
  (void)name;
  int level = x->depth--;
  if (level == 3 && x->in_body)
    x->in_body = 0;
  else if (level == 2)
    xmpp_stanza(x);
  else if (level == 1)
    xmpp_fail(x->c, "the server closed the stream");
}

static int xmpp_parser_new(struct xmpp *x) {
  if (x->xp)
    XML_ParserReset(x->xp, NULL);
  else
    x->xp = XML_ParserCreate(NULL);
  if (!x->xp)
    return -1;
  XML_SetUserData(x->xp, x);
  XML_SetElementHandler(x->xp, xmpp_start, xmpp_end);
  XML_SetCharacterDataHandler(x->xp, xmpp_text);
  x->depth = 0;
  x->stopped = 0;
  x->restart = 0;
  return 0;
}

static void xmpp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  (void)h;
  (void)suggested;
  *b = uv_buf_init(xmpp_rbuf, sizeof(xmpp_rbuf));
}

static void xmpp_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
  struct conn *c = s->data;
  struct xmpp *x = c->peer;
  if (nread == 0 || c->state == CONN_CLOSED)
    return;
  if (nread < 0) {
    xmpp_fail(c, nread == UV_EOF ? "closed by server (EOF)" : uv_strerror((int)nread));
    return;
  }
  c->lg->now_recv = uv_hrtime();
  c->in_recv = 1;
  enum XML_Status st = XML_Parse(x->xp, b->base, (int)nread, 0);
  c->in_recv = 0;
  if (c->state == CONN_CLOSED)
    return; /* failed inside a handler */
  if (x->restart) {
    /* Nothing follows <success/> before our new stream header, so no input is dropped. */
    if (xmpp_parser_new(x) != 0 || xmpp_stream_header(c) != 0) {
      xmpp_fail(c, "stream restart failed");
      return;
    }
    c->peer_stage = XS_FEATURES2;
  } else if (st != XML_STATUS_OK) {
    char what[160];
    snprintf(what, sizeof(what), "XML error: %s", XML_ErrorString(XML_GetErrorCode(x->xp)));
    wire_peer_bad(c, what, b->base, (size_t)nread);
    xmpp_fail(c, "XML error");
    return;
  }
  conn_flush(c);
}

static void xmpp_on_connect(uv_connect_t *req, int status) {
  struct conn *c = req->data;
  if (c->state == CONN_CLOSED)
    return;
  if (status < 0) {
    xmpp_fail(c, uv_strerror(status));
    return;
  }
  c->state = CONN_HANDSHAKE;
  c->was_open = 1;
  c->lg->live_conns++;
  if (uv_read_start((uv_stream_t *)&c->tcp, xmpp_alloc, xmpp_on_read) != 0 ||
      xmpp_stream_header(c) != 0)
    xmpp_fail(c, "read_start failed");
}

static int xmpp_open(struct conn *c) {
  struct xmpp *x = calloc(1, sizeof(*x));
  if (!x || (x->c = c, xmpp_parser_new(x) != 0)) {
    free(x);
    return -1; /* nothing started: work_pump counts the failure */
  }
  c->peer = x;
  c->peer_stage = XS_FEATURES;
  uv_tcp_init(c->lg->loop, &c->tcp);
  c->tcp.data = c;
  c->creq.data = c;
  c->state = CONN_CONNECTING;
  c->fail = xmpp_fail;
  uv_tcp_nodelay(&c->tcp, 1);
  int r = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&c->lg->addr, xmpp_on_connect);
  if (r != 0) {
    xmpp_fail(c, uv_strerror(r));
    return -1;
  }
  return 0;
}

static int xmpp_join(struct conn *c) {
  char out[512];
  int n = snprintf(out, sizeof(out),
                   "<presence to='%s@conference.%s/%s'><x "
                   "xmlns='http://jabber.org/protocol/muc'/></presence>",
                   c->lg->groups[c->group].slug, c->lg->xmpp_domain, c->lg->users[c->idx].name);
  if (c->peer_stage != XS_READY || xmpp_write(c, out, (size_t)n) != 0)
    return -1;
  c->peer_stage = XS_JOINING;
  return 0;
}

static int xmpp_send(struct conn *c, const char *p, size_t n) {
  char out[17400];
  if (c->peer_stage != XS_JOINED)
    return -1;
  int m = snprintf(out, sizeof(out),
                   "<message to='%s@conference.%s' type='groupchat'><body>%.*s</body></message>",
                   c->lg->groups[c->group].slug, c->lg->xmpp_domain, (int)n, p);
  if (m <= 0 || (size_t)m >= sizeof(out))
    return -1;
  return xmpp_write(c, out, (size_t)m);
}

/* Ends the stream; the server answers with its own end tag and closes the TCP connection,
 * which xmpp_end or the EOF turns into lg_on_ws_down (not counted: closed_by_us). */
static void xmpp_close(struct conn *c) {
  c->closed_by_us = 1;
  if (c->state == CONN_CLOSED || c->state == CONN_IDLE)
    return;
  if (c->state == CONN_CONNECTING) {
    xmpp_fail(c, "closed during set-up");
    return;
  }
  static const char end[] = "</stream:stream>";
  c->state = CONN_CLOSING;
  if (buf_append(&c->out, end, sizeof(end) - 1, XMPP_OUT_LIMIT + 64) != 0) {
    xmpp_fail(c, "could not send the stream end");
    return;
  }
  if (!c->in_recv)
    conn_flush(c);
}

const struct wire_ops wire_xmpp = {
    .name = "xmpp",
    .open = xmpp_open,
    .join = xmpp_join,
    .send = xmpp_send,
    .close = xmpp_close,
    .abort = xmpp_abort,
};
