/* fake_server.c - see fake_server.h. Only the functions of server.c that http.c and ws.c call
 * are replaced; their contracts (push marks dirty, close calls on_close once, read start/stop
 * only flip a flag) are kept so that the code under test sees what it sees in production. */
#include "fake_server.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

static struct net_server fake_srv;
static uv_loop_t fake_loop;
static int fake_ready;

struct net_server *fake_server_get(const struct net_callbacks *cb) {
  if (!fake_ready) {
    uv_loop_init(&fake_loop);
    fake_srv.loop = &fake_loop;
    /* The defaults of app_config_load (src/app/config.c) and app_start's net_config. */
    fake_srv.cfg.max_header = 8 * 1024;
    fake_srv.cfg.max_body = 64 * 1024;
    fake_srv.cfg.ws_max_msg = 64 * 1024;
    fake_srv.cfg.outq_max = 1024 * 1024;
    fake_srv.cfg.outq_hard_max = 16 * 1024 * 1024;
    fake_srv.cfg.ping_interval_ms = 25000;
    fake_srv.cfg.http_idle_ms = 60000;
    if (net__ws_encoder_init(&fake_srv) != 0)
      abort();
    fake_ready = 1;
  }
  fake_srv.cb = *cb;
  return &fake_srv;
}

struct net_conn *fake_conn_new(struct net_server *s) {
  struct net_conn *c = calloc(1, sizeof *c);
  if (c == NULL)
    abort();
  c->srv = s;
  outq_init(&c->q);
  if (net__http_new(c) != 0)
    abort();
  DL_APPEND(s->conns, c);
  s->n_conns++;
  c->reading = 1;
  return c;
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
  if (s->cb.on_close)
    s->cb.on_close(s->cb.ud, c);
  c->app_data = NULL;
}

void net_conn_abort(struct net_conn *c) {
  net__conn_close(c);
}

void net__conn_read_start(struct net_conn *c) {
  if (!c->closing)
    c->reading = 1;
}

void net__conn_read_stop(struct net_conn *c) {
  c->reading = 0;
}

void net__server_wake(struct net_server *s) {
  (void)s; /* the fake loop runs the resumes on every turn */
}

void *net_conn_get_data(const struct net_conn *c) {
  return c->app_data;
}
void net_conn_set_data(struct net_conn *c, void *data) {
  c->app_data = data;
}

int fake_conn_feed(struct net_conn *c, const uint8_t *data, size_t len) {
  /* libuv delivers reads only while reading is on. */
  if (c->closing || !c->reading)
    return -1;
  if (len == 0)
    return 0;
  c->last_rx_ms = uv_now(c->srv->loop);
  if (c->is_ws)
    net__ws_on_data(c, (const char *)data, len);
  else if (c->http)
    net__http_on_data(c, (const char *)data, len);
  return 0;
}

void fake_conn_flush(struct net_conn *c) {
  net__conn_unmark_dirty(c);
  if (c->closing)
    return;
  if (c->q.bytes) {
    outq_advance(&c->q, c->q.bytes);
    net__conn_wrote(c);
  }
  assert(c->q.bytes == 0 && c->q.pull_bytes == 0);
  if (c->close_after_flush)
    net__conn_close(c);
}

void fake_loop_turn(struct net_conn *c) {
  net__run_resumes(c->srv);
  if (!c->closing)
    fake_conn_flush(c);
}

void fake_conn_free(struct net_conn *c) {
  net__conn_close(c);
  outq_dispose(&c->q);
  net__http_free(c);
  net__ws_free(c);
  free(c);
}

void fake_conn_feed_split(struct net_conn *c, const uint8_t *data, size_t len, fake_turn_cb turn) {
  /* The first byte chooses the read size (1..255, 0 meaning all at once), as if the kernel
   * cut the stream there; the flush between reads is the loop's prepare phase. */
  size_t step;
  int idle_turns = 0;
  if (len == 0)
    return;
  step = data[0] == 0 ? len : data[0];
  data++;
  len--;
  while (!c->closing) {
    int worked = 0;
    if (len > 0) {
      size_t n = len < step ? len : step;
      if (fake_conn_feed(c, data, n) == 0) {
        data += n;
        len -= n;
        worked = 1;
      }
    }
    fake_conn_flush(c);
    if (turn && !c->closing)
      worked |= turn(c);
    if (c->closing)
      break;
    worked |= c->resume_linked;
    fake_loop_turn(c);
    if (len == 0 && !worked)
      break; /* the input is used up and nothing is left to do */
    if (!worked && !c->reading && !c->resume_linked && ++idle_turns > 2)
      break; /* paused and nothing will resume it: the peer would wait for an answer */
    if (worked)
      idle_turns = 0;
  }
  if (!c->closing)
    fake_conn_flush(c);
}
