/* wire_sio.c - the Socket.IO v4 wire (Engine.IO v4 text packets over ws.c's WebSocket client),
 * for bench/peers/socketio/server.js.
 *
 * The exchange, one Engine.IO packet per WebSocket text frame (GET /socket.io/?EIO=4&
 * transport=websocket, so no long-polling upgrade):
 *   server 0{"sid":...,"pingInterval":...}   Engine.IO open
 *   client 40                                Socket.IO connect to the main namespace
 *   server 40{"sid":...}                     connected: logged in
 *   client 421["join","room"]                emit with ack id 1
 *   server 431[{"ok":true,...}]              the ack: in the room
 *   client 42["msg","room","body"]           a chat message
 *   server 42["msg","room","body"]           to every member of the room, the sender included
 *   server 2 / client 3                      Engine.IO ping / pong (the server pings)
 * Incoming messages are recognised by a byte scan of the layout JSON.stringify produces (our
 * bodies hold no quotes or backslashes); any other layout goes through jansson.
 */
#include "loadgen.h"
#include "wire.h"

#include <jansson.h>
#include <string.h>

enum { SIO_OPENING = 0, SIO_CONNECTING, SIO_READY, SIO_JOINING, SIO_JOINED };

static void sio_fail(struct conn *c, const char *why) {
  ws_conn_abort(c);
  lg_on_ws_down(c, why);
}

static int sio_open(struct conn *c) {
  c->peer_stage = SIO_OPENING;
  ws_conn_start(c);
  return c->state == CONN_CLOSED ? -1 : 0;
}

static void sio_ws_open(struct conn *c) { c->peer_stage = SIO_OPENING; }

static int sio_join(struct conn *c) {
  char f[160];
  int n = snprintf(f, sizeof(f), "421[\"join\",\"%s\"]", c->lg->groups[c->group].slug);
  if (c->peer_stage != SIO_READY || ws_conn_send_text(c, f, (size_t)n) != 0)
    return -1;
  c->peer_stage = SIO_JOINING;
  return 0;
}

static int sio_send(struct conn *c, const char *p, size_t n) {
  char f[17400];
  int m = snprintf(f, sizeof(f), "42[\"msg\",\"%s\",\"%.*s\"]", c->lg->groups[c->group].slug,
                   (int)n, p);
  if (m <= 0 || (size_t)m >= sizeof(f))
    return -1;
  return ws_conn_send_text(c, f, (size_t)m);
}

/* 42["msg",room,text] read with jansson. */
static void sio_event_slow(struct conn *c, const char *p, size_t n) {
  json_t *a = json_loadb(p, n, 0, NULL);
  const char *ev = json_string_value(json_array_get(a, 0));
  json_t *room = json_array_get(a, 1), *text = json_array_get(a, 2);
  if (ev && strcmp(ev, "msg") == 0 && json_is_string(room) && json_is_string(text))
    wire_peer_msg(c, json_string_value(room), json_string_length(room), json_string_value(text),
                  json_string_length(text));
  else
    wire_peer_bad(c, "unexpected event", p, n);
  json_decref(a);
}

static void sio_ws_text(struct conn *c, const uint8_t *data, size_t n) {
  const char *p = (const char *)data, *end = p + n;
  static const char pre[] = "42[\"msg\",\"";
  if (n > sizeof(pre) - 1 && memcmp(p, pre, sizeof(pre) - 1) == 0) { /* the hot path */
    const char *room = p + sizeof(pre) - 1;
    const char *re = memchr(room, '"', (size_t)(end - room));
    if (re && end - re > 5 && re[1] == ',' && re[2] == '"' && end[-2] == '"' && end[-1] == ']' &&
        !memchr(room, '\\', (size_t)(end - room))) {
      wire_peer_msg(c, room, (size_t)(re - room), re + 3, (size_t)(end - 2 - (re + 3)));
      return;
    }
    sio_event_slow(c, p + 2, n - 2);
    return;
  }
  if (n == 1 && p[0] == '2') { /* Engine.IO ping */
    ws_conn_send_text(c, "3", 1);
    return;
  }
  if (n >= 1 && p[0] == '0' && c->peer_stage == SIO_OPENING) {
    if (ws_conn_send_text(c, "40", 2) != 0) {
      sio_fail(c, "could not send the Socket.IO connect");
      return;
    }
    c->peer_stage = SIO_CONNECTING;
    return;
  }
  if (n >= 2 && p[0] == '4' && p[1] == '0' && c->peer_stage == SIO_CONNECTING) {
    c->peer_stage = SIO_READY;
    lg_step_done(c, 1);
    return;
  }
  if (n >= 4 && memcmp(p, "431[", 4) == 0 && c->peer_stage == SIO_JOINING) {
    int ok = memmem(p, n, "\"ok\":true", 9) != NULL;
    c->peer_stage = ok ? SIO_JOINED : SIO_READY;
    if (!ok)
      wire_peer_bad(c, "join refused", p, n);
    lg_step_done(c, ok);
    return;
  }
  if (n >= 2 && p[0] == '4' && p[1] == '2') {
    sio_event_slow(c, p + 2, n - 2);
    return;
  }
  if (n >= 2 && p[0] == '4' && p[1] == '4') {
    wire_peer_bad(c, "connect error", p, n);
    sio_fail(c, "Socket.IO connect error");
    return;
  }
  if (n >= 1 && p[0] == '1') {
    sio_fail(c, "Engine.IO close from the server");
    return;
  }
  wire_peer_bad(c, "unexpected packet", p, n);
}

const struct wire_ops wire_sio = {
    .name = "socketio",
    .open = sio_open,
    .join = sio_join,
    .send = sio_send,
    .close = ws_conn_close,
    .abort = ws_conn_abort,
    .ws_open = sio_ws_open,
    .ws_text = sio_ws_text,
};
