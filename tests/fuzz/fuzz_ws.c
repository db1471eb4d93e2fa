/* fuzz_ws.c - libFuzzer target: an arbitrary byte stream as a client's WebSocket frames.
 *
 * Each input runs on a fresh connection that first completes a valid upgrade through the real
 * src/net/http.c and net_ws_accept, so the wslay server context is the production one (the
 * callbacks of src/net/ws.c, max message 64 KiB, text only, u8_check). The fuzz bytes then
 * arrive through wslay's recv callback in reads of fuzzer-chosen size. Checked: no crash, leak
 * or UB; every message handed to the app is a complete text message of at most ws_max_msg
 * bytes of valid UTF-8; nothing is handed over after the server sent its close frame. At the
 * end the housekeeping tick runs (ping, then dead-peer close).
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>

#include "fake_server.h"

static const char upgrade[] =
    "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n";

static void on_request(void *ud, struct net_conn *c, struct http_request *req) {
  int rc = net_ws_accept(c);
  assert(rc == 0);
}

static void on_ws_text(void *ud, struct net_conn *c, const char *data, size_t len) {
  assert(!c->ws_close_sent && !c->closing);
  assert(len <= c->srv->cfg.ws_max_msg);
  assert(u8_check((const uint8_t *)data, len) == NULL);
  /* Answer as the app does: a reply frame, and for some messages an application close. */
  if (len > 0 && data[0] == 'q')
    net_ws_close(c, NET_CLOSE_UNAUTHORIZED, "session ended");
  else
    net_ws_send_text(c, data, len);
}

static void on_close(void *ud, struct net_conn *c) {}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const struct net_callbacks cb = {NULL, on_request, on_ws_text, on_close, NULL};
  struct net_server *s = fake_server_get(&cb);
  struct net_conn *c = fake_conn_new(s);

  fake_conn_feed(c, (const uint8_t *)upgrade, sizeof upgrade - 1);
  fake_conn_flush(c);
  assert(c->is_ws && c->http == NULL);
  fake_conn_feed_split(c, data, size, NULL);
  if (!c->closing && c->is_ws) {
    uint64_t t = c->last_rx_ms + s->cfg.ping_interval_ms;
    net__ws_tick(c, t); /* a ping */
    fake_conn_flush(c);
    if (!c->closing)
      net__ws_tick(c, t + s->cfg.ping_interval_ms); /* no pong: dead */
    assert(c->closing);
  }
  fake_conn_free(c);
  assert(s->n_conns == 0 && s->conns == NULL && s->dirty == NULL);
  return 0;
}
