/* app.c - the top of src/app/: start-up, the net callbacks (a connection closing, the flush
 * hooks), the housekeeping tick, and graceful shutdown. It wires the layers below together,
 * including the table of events the cluster layer hands up (struct cluster_events), and is the
 * only file that knows them all.
 */
#include "app/app.h"

#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <utlist.h>

#include "app/app_api.h"
#include "app/app_http.h"
#include "app/churn.h"
#include "app/presence_batch.h"
#include "app/cluster.h"
#include "app/deliver.h"
#include "app/ops.h"
#include "app/presence.h"
#include "app/rooms.h"
#include "app/subs.h"
#include "app/webhook.h"
#include "app/ws_conn.h"
#include "auth/auth.h"
#include "bus/bus.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

#define LISTEN_BACKLOG 4096
#define TICK_MAX_MS 1000       /* the housekeeping tick runs at least this often */
#define LOOP_LAG_PROBE_MS 50   /* the loop-lag probe's period */
#define SHUTDOWN_POLL_MS 20    /* how often shutdown looks whether every socket is closed */
#define HEAP_TRIM_FREE_MIN (16u << 20) /* free heap bytes worth giving back to the system */
#define HEAP_TRIM_EVERY_MS 10000       /* at most one heap trim this often */

/* --- net callbacks ------------------------------------------------------------------------ */

static void on_close(void *ud, struct net_conn *c) {
  struct app *a = ud;
  struct client *cl = net_conn_get_data(c);
  if (cl == NULL)
    return;
  app__client_drop_subs(cl);
  app__client_drop_held(cl);
  app__user_detach(a, cl);
  cl->conn = NULL;
  app__client_unref(cl);
}

/* --- housekeeping ------------------------------------------------------------------------- */

#define SESSION_SWEEP_BATCH 500 /* expired sessions one sweep deletes; a full batch goes again */

static void session_sweep_submit(struct app *a);

static void on_session_sweep(struct store_req *req) {
  struct app *a = req->ctx;
  int more = req->status == 0 && req->out.has_more;
  a->session_sweeping = 0;
  if (req->status)
    log_warn("expired-session sweep failed: %s", parley_strerror(req->status));
  else if (req->out.n_deleted)
    log_info("deleted %lld expired sessions", (long long)req->out.n_deleted);
  store_req_free(req);
  if (more) /* a backlog is cleared in batches, so no transaction holds the table for long */
    session_sweep_submit(a);
}

static void session_sweep_submit(struct app *a) {
  struct store_req *req;
  if (a->session_sweeping || a->shutting_down)
    return;
  req = store_req_new(STORE_SESSION_SWEEP);
  if (req == NULL)
    return;
  req->in.limit = SESSION_SWEEP_BATCH;
  req->ctx = a;
  a->session_sweeping = 1;
  a->session_swept = uv_now(a->loop);
  if (app__submit(a, NULL, req, on_session_sweep) != 0)
    a->session_sweeping = 0;
}

/* Expired sessions are refused at lookup (STORE_SESSION_GET checks expires_at) and deleted here
 * every cfg.session_sweep_ms, so the table does not grow with every login ever made. */
static void session_sweep(struct app *a) {
  if (a->session_swept == 0 || uv_now(a->loop) - a->session_swept >= a->cfg.session_sweep_ms)
    session_sweep_submit(a);
}

/* How late the probe fired is how long the loop was busy (or blocked) before it could run
 * anything else: the lag every socket's next event waits behind. */
static void on_lag_probe(uv_timer_t *t) {
  struct app *a = t->data;
  uint64_t now = clock_mono_ns();
  hist_window_record(&a->metrics.loop_lag, now,
                     now > a->metrics.lag_expected_ns ? now - a->metrics.lag_expected_ns : 0);
  a->metrics.lag_expected_ns = now + LOOP_LAG_PROBE_MS * 1000000ull;
}

/* glibc keeps what a burst freed (10,000 sockets subscribing at once: their replies, queues and
 * wslay contexts) in its arenas, so the resident size stayed at the burst's peak: 8.6 KB per
 * idle socket at 10,000, 2.9 KB after a trim (issue 15, bench/run.sh --scenarios connections).
 * So when enough of the heap is free, it goes back to the system. malloc_trim() holds each arena
 * while it walks it (2-4 ms for a 100 MB heap here), hence at most every HEAP_TRIM_EVERY_MS and
 * only past HEAP_TRIM_FREE_MIN: a steady load reuses what it frees and rarely leaves that much. */
static void heap_trim(struct app *a, uint64_t loop_now) {
#ifdef __GLIBC__
  if (loop_now - a->metrics.heap_trimmed_ms < HEAP_TRIM_EVERY_MS)
    return;
  a->metrics.heap_trimmed_ms = loop_now;
  if (mallinfo2().fordblks < HEAP_TRIM_FREE_MIN)
    return;
  malloc_trim(0);
  a->metrics.heap_trims++;
#else
  (void)a;
  (void)loop_now;
#endif
}

static void on_tick(uv_timer_t *t) {
  struct app *a = t->data;
  uint64_t loop_now = uv_now(a->loop);
  int64_t now = app__now(a);
  struct app_user *au, *tmp;
  struct client *cl, *ctmp;

  DL_FOREACH_SAFE2(a->unauthed, cl, ctmp, unext) {
    if (cl->conn && loop_now - cl->opened_ms >= a->cfg.auth_timeout_ms)
      net_ws_close(cl->conn, NET_CLOSE_UNAUTHORIZED, "not authenticated in time");
  }

  /* Sessions expire on live sockets too, not only at the next connect. */
  HASH_ITER(hh, a->users, au, tmp) {
    DL_FOREACH_SAFE2(au->clients, cl, ctmp, unext) {
      if (cl->conn && cl->session_expires_at && cl->session_expires_at <= now)
        net_ws_close(cl->conn, NET_CLOSE_UNAUTHORIZED, "session expired");
    }
  }
  app__invite_sweep(a);
  app__stream_sweep(a);
  app__bus_tick(a);
  app__presence_tick(a);
  app__rooms_tick(a);
  app__throttles_sweep(a, now);
  app__api_rl_sweep(a, now);
  session_sweep(a);
  heap_trim(a, loop_now);
}

/* Typing and activeUsers events batched during the turn, sent just before net writes. */
static void on_before_flush(void *ud) {
  app__rooms_flush(ud);
  app__churn_flush(ud);
  app__presence_batch_flush(ud);
}

/* The loop thread's CPU time, ns: a turn's work is its growth from one flush to the next (the
 * wait for I/O costs none, and neither does time the thread was preempted on a busy machine). */
static uint64_t loop_cpu_ns(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
    return 0;
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Every message fanned out this turn has now been handed to the kernel for its local
 * subscribers (or queued behind a full socket): that is its delivery latency. */
static void on_after_flush(void *ud) {
  struct app *a = ud;
  struct app_metrics *m = &a->metrics;
  uint64_t now = clock_mono_ns();
  uint64_t cpu = loop_cpu_ns();
  if (m->turn_mark_ns) {
    uint64_t busy = cpu - m->turn_mark_ns;
    hist_window_record(&m->loop_turn, now, busy);
    if (busy > m->turn_max_ns)
      m->turn_max_ns = busy;
  }
  m->turn_mark_ns = cpu;
  if (m->turn_n == 0)
    return;
  for (size_t i = 0; i < m->turn_n; i++)
    hist_window_record(&m->delivery_lat, now, now - m->turn_recv[i]);
  m->turn_n = 0;
}

/* --- the cluster's events ------------------------------------------------------------------ */

static void on_bus_state(struct app *a, int up) {
  if (up)
    app__presence_bus_up(a);
  else
    app__rooms_bus_down(a);
}

static const struct cluster_events cluster_events = {
    .msg = app__subs_bus_msg,
    .delta = app__subs_bus_delta,
    .room_state = app__rooms_remote_state,
    .room_query = app__rooms_query,
    .room_ready = app__subs_room_ready,
    .bus_state = on_bus_state,
    .node_gone = app__rooms_forget_node,
    .notify = app__notify_here,
    .drop_subs = app__drop_user_subs_here,
    .close_session = app__close_session_here,
    .fence = app__subs_fence,
    .presence = app__presence_remote,
};

/* --- start and stop ----------------------------------------------------------------------- */

/* Routes whose bodies may be larger than PARLEY_MAX_BODY: an avatar is a picture (issue 18). */
static const struct net_body_limit app__body_limits[] = {
    {"/api/avatar", 1024 * 1024},
    /* The bot HTTP API (app_api.c): a streamed message may grow to 256 KiB; with its JSON. */
    {"/api/chats/*", 256 * 1024 + 16 * 1024},
};

static void on_signal(uv_signal_t *h, int signum) {
  struct app *a = h->data;
  log_info("signal %d: shutting down", signum);
  app_shutdown(a);
}

int app_start(struct app **out, uv_loop_t *loop, const struct app_config *cfg) {
  struct net_config ncfg;
  struct net_callbacks ncb;
  char dbpath[1100];
  int err;
  struct app *a = calloc(1, sizeof *a);

  if (a == NULL)
    return PARLEY_EINTERNAL;
  *out = a; /* freed by app_free, also after a failed start */
  a->loop = loop;
  a->clock = clock_wall_ms;
  a->cfg = *cfg;
  if (auth_init() != 0) {
    log_error("libsodium failed to initialize");
    return PARLEY_EINTERNAL;
  }
  if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
    log_error("cannot create data folder %s: %s", cfg->data_dir, strerror(errno));
    return PARLEY_EUNAVAILABLE;
  }
  snprintf(dbpath, sizeof dbpath, "%s/parley.db", cfg->data_dir);
  /* PARLEY_STORE (PostgreSQL) replaces the SQLite file; the URI may hold a password, so it is
   * not logged. */
  err = store_open(&a->store, loop, cfg->store_url[0] ? cfg->store_url : dbpath,
                   cfg->durability, cfg->store_conns);
  if (err) {
    log_error("cannot open the store at %s: %s", cfg->store_url[0] ? "PARLEY_STORE" : dbpath,
              parley_strerror(err));
    return err;
  }
  store_set_wal_max(a->store, cfg->wal_max);
  store_set_admission(a->store, cfg->store_queue_max, cfg->store_queue_wait_ms);
  err = app__bus_start(a, &cluster_events);
  if (err)
    return err;
  {
    struct webhook_config wcfg = {cfg->webhook_timeout_ms, cfg->webhook_retry_ms,
                                  (size_t)cfg->webhook_queue_max};
    if (webhook_start(&a->webhooks, &wcfg) != 0) {
      log_error("cannot start the webhook worker");
      return PARLEY_EINTERNAL;
    }
  }

  memset(&ncfg, 0, sizeof ncfg);
  ncfg.host = cfg->host;
  ncfg.port = cfg->port;
  ncfg.backlog = LISTEN_BACKLOG;
  ncfg.max_header = cfg->max_header;
  ncfg.max_body = cfg->max_body;
  ncfg.body_limits = app__body_limits;
  ncfg.n_body_limits = sizeof app__body_limits / sizeof app__body_limits[0];
  ncfg.ws_max_msg = cfg->ws_max_msg;
  ncfg.outq_max = cfg->outq_max;
  ncfg.outq_hard_max = cfg->outq_hard_max > cfg->outq_max ? cfg->outq_hard_max : cfg->outq_max;
  ncfg.ping_interval_ms = cfg->ping_interval_ms;
  ncfg.http_idle_ms = cfg->http_idle_ms;
  /* Pings and pongs get the per-socket op budget (a bucket of their own), docs/operations.md. */
  ncfg.ctrl_rate = cfg->rate_limits ? cfg->op_rate : 0;
  ncfg.ctrl_burst = cfg->op_burst;
  ncb.ud = a;
  ncb.on_request = app__on_request;
  ncb.on_ws_text = app__on_ws_text;
  ncb.on_close = on_close;
  ncb.on_before_flush = on_before_flush;
  ncb.on_after_flush = on_after_flush;
  hist_window_init(&a->metrics.delivery_lat, clock_mono_ns(), APP_LAT_PERIOD_NS);
  err = net_server_new(&a->net, loop, &ncfg, &ncb);
  if (err == 0)
    err = net_server_listen(a->net);
  if (err)
    return err;

  uv_timer_init(loop, &a->ticker);
  a->ticker.data = a;
  uv_timer_init(loop, &a->gap_timer);
  a->gap_timer.data = a;
  hist_window_init(&a->metrics.loop_lag, clock_mono_ns(), APP_LAT_PERIOD_NS);
  hist_window_init(&a->metrics.loop_turn, clock_mono_ns(), APP_LAT_PERIOD_NS);
  uv_timer_init(loop, &a->lag_probe);
  a->lag_probe.data = a;
  a->metrics.lag_expected_ns = clock_mono_ns() + LOOP_LAG_PROBE_MS * 1000000ull;
  uv_timer_start(&a->lag_probe, on_lag_probe, LOOP_LAG_PROBE_MS, LOOP_LAG_PROBE_MS);
  {
    uint64_t tick = cfg->auth_timeout_ms / 4 < TICK_MAX_MS ? cfg->auth_timeout_ms / 4 : TICK_MAX_MS;
    uv_timer_start(&a->ticker, on_tick, tick, tick);
  }
  uv_signal_init(loop, &a->sigterm);
  a->sigterm.data = a;
  uv_signal_start(&a->sigterm, on_signal, SIGTERM);
  uv_signal_init(loop, &a->sigint);
  a->sigint.data = a;
  uv_signal_start(&a->sigint, on_signal, SIGINT);
  log_info("listening on %s:%d (data %s, web %s)", cfg->host, net_server_port(a->net),
           cfg->data_dir, cfg->web_dir);
  return 0;
}

static void on_store_closed(void *arg) {
  struct app *a = arg;
  a->store = NULL;
  app__throttles_free(a);
  app__api_rl_free(a);
  webhook_stop(a->webhooks);
  a->webhooks = NULL;
  app__rooms_free_all(a);
  app__presence_dispose(a);
  app__bus_stop(a, NULL, NULL); /* its handles close on the next turns; uv_run waits for them */
  net_server_free(a->net);
  a->net = NULL;
  free(a->metrics.turn_recv);
  a->metrics.turn_recv = NULL;
  a->metrics.turn_n = a->metrics.turn_cap = 0;
  log_info("shutdown complete");
}

static void shutdown_wait(uv_timer_t *t) {
  struct app *a = t->data;
  /* Wait until every socket has finished its close handshake (or was cut after the linger
   * time), so acknowledged replies are on the wire before the process exits. */
  if (net_server_conn_count(a->net) > 0)
    return;
  uv_close((uv_handle_t *)&a->ticker, NULL);
  uv_close((uv_handle_t *)&a->gap_timer, NULL);
  uv_close((uv_handle_t *)&a->lag_probe, NULL);
  app__churn_dispose(a);
  app__presence_persist_all(a); /* everyone's lastSeen is now */
  store_close(a->store, on_store_closed, a);
}

int app_port(const struct app *a) {
  return net_server_port(a->net);
}

void app_shutdown(struct app *a) {
  if (a->shutting_down)
    return;
  a->shutting_down = 1;
  uv_close((uv_handle_t *)&a->sigterm, NULL);
  uv_close((uv_handle_t *)&a->sigint, NULL);
  net_server_stop_accepting(a->net);
  net_server_close_all(a->net, APP_CLOSE_GOING_AWAY, "server shutting down");
  uv_timer_stop(&a->ticker);
  uv_timer_start(&a->ticker, shutdown_wait, 0, SHUTDOWN_POLL_MS);
}

void app_free(struct app *a) {
  free(a);
}
