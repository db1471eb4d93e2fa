/* app.c - configuration, start-up, client lifetime, housekeeping and graceful shutdown. */
#include "app/app.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utlist.h>

#include "auth/auth.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

/* --- configuration ------------------------------------------------------------------------ */

static int env_u64(const char *name, uint64_t *out, uint64_t min, uint64_t max) {
  const char *v = getenv(name);
  char *end;
  unsigned long long n;
  if (v == NULL || *v == '\0')
    return 0;
  errno = 0;
  n = strtoull(v, &end, 10);
  if (errno || *end || n < min || n > max) {
    log_error("config: %s must be a whole number from %llu to %llu", name,
              (unsigned long long)min, (unsigned long long)max);
    return PARLEY_EBAD_REQUEST;
  }
  *out = n;
  return 0;
}

static int env_double(const char *name, double *out) {
  const char *v = getenv(name);
  char *end;
  double d;
  if (v == NULL || *v == '\0')
    return 0;
  d = strtod(v, &end);
  if (*end || d <= 0) {
    log_error("config: %s must be a positive number", name);
    return PARLEY_EBAD_REQUEST;
  }
  *out = d;
  return 0;
}

static int env_size(const char *name, size_t *out, uint64_t min, uint64_t max) {
  uint64_t v = *out;
  int err = env_u64(name, &v, min, max);
  *out = (size_t)v;
  return err;
}

int app_config_load(struct app_config *cfg) {
  const char *v;
  uint64_t u;
  int err = 0;

  memset(cfg, 0, sizeof *cfg);
  snprintf(cfg->host, sizeof cfg->host, "127.0.0.1");
  cfg->port = 8080;
  snprintf(cfg->data_dir, sizeof cfg->data_dir, "data");
  snprintf(cfg->web_dir, sizeof cfg->web_dir, "web/dist");
  cfg->durability = STORE_DURABILITY_NORMAL;
  cfg->wal_max = UINT64_C(64) << 20;
  cfg->max_body = 64 * 1024;
  cfg->max_header = 8 * 1024;
  cfg->ws_max_msg = 64 * 1024;
  cfg->outq_max = 1024 * 1024;
  cfg->outq_hard_max = 16 * 1024 * 1024;
  cfg->ping_interval_ms = 25000;
  cfg->http_idle_ms = 30000;
  cfg->auth_timeout_ms = 10000;
  cfg->session_ttl_ms = INT64_C(30) * 24 * 3600 * 1000;
  cfg->rate_limits = 1;
  cfg->send_rate = 10;
  cfg->send_burst = 30;
  cfg->op_rate = 50;
  cfg->op_burst = 200;
  cfg->login_rate = 1.0 / 6; /* ten a minute */
  cfg->login_burst = 10;
  /* Far above one address's budget: many addresses guessing one username hit it, the user's
   * own devices (addresses that logged in as them before) never do. */
  cfg->login_user_rate = 1.0 / 60; /* 60 failures an hour */
  cfg->login_user_burst = 100;
  cfg->signup_rate = 1.0 / 60; /* one a minute */
  cfg->signup_burst = 10;
  /* One hash per core, and no more than libuv's default thread pool (4 threads): more at once
   * would only share the cores, and a login's hash would take longer for it. */
  cfg->hash_max_running = uv_available_parallelism() < 4 ? (int)uv_available_parallelism() : 4;
  cfg->hash_max_queued = 256;
  cfg->session_sweep_ms = 3600000;
  cfg->max_conns_per_user = 20;
  cfg->search_rate = 5;
  cfg->search_burst = 20;
  cfg->typing_rate = 5;
  cfg->typing_burst = 10;
  cfg->presence_rate = 2;
  cfg->presence_burst = 10;
  cfg->presence_grace_ms = 10000;
  cfg->presence_node_ttl_ms = 15000;
  cfg->typing_ttl_ms = 6000;

  if ((v = getenv("PARLEY_LISTEN")) && *v) {
    const char *colon = strrchr(v, ':');
    char *end;
    long port;
    if (colon == NULL || (size_t)(colon - v) >= sizeof cfg->host) {
      log_error("config: PARLEY_LISTEN must be host:port");
      return PARLEY_EBAD_REQUEST;
    }
    port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535) {
      log_error("config: PARLEY_LISTEN has a bad port");
      return PARLEY_EBAD_REQUEST;
    }
    snprintf(cfg->host, sizeof cfg->host, "%.*s", (int)(colon - v), v);
    cfg->port = (int)port;
  }
  if ((v = getenv("PARLEY_DATA")) && *v)
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s", v);
  if ((v = getenv("PARLEY_WEB_DIR")) && *v)
    snprintf(cfg->web_dir, sizeof cfg->web_dir, "%s", v);
  if ((v = getenv("PARLEY_STORE")) && *v) {
    if (strlen(v) >= sizeof cfg->store_url ||
        (strncmp(v, "postgres://", 11) != 0 && strncmp(v, "postgresql://", 13) != 0)) {
      log_error("config: PARLEY_STORE must be a postgres:// or postgresql:// URI");
      return PARLEY_EBAD_REQUEST;
    }
    snprintf(cfg->store_url, sizeof cfg->store_url, "%s", v);
  }
  if ((v = getenv("PARLEY_ORIGINS")))
    snprintf(cfg->origins, sizeof cfg->origins, "%s", v);
  if ((v = getenv("PARLEY_DURABILITY")) && *v) {
    if (strcmp(v, "fsync") == 0)
      cfg->durability = STORE_DURABILITY_FSYNC;
    else if (strcmp(v, "normal") != 0) {
      log_error("config: PARLEY_DURABILITY must be normal or fsync");
      return PARLEY_EBAD_REQUEST;
    }
  }
  u = 0;
  err = env_u64("PARLEY_STORE_CONNS", &u, 1, 16);
  if (err)
    return err;
  cfg->store_conns = (int)u;
  err = env_u64("PARLEY_WAL_MAX", &cfg->wal_max, UINT64_C(1) << 20, UINT64_C(1) << 30);
  if (err)
    return err;
  if ((v = getenv("PARLEY_BUS")) && *v) {
    if (strlen(v) >= sizeof cfg->bus_url ||
        (strncmp(v, "redis://", 8) != 0 && strncmp(v, "local://", 8) != 0)) {
      log_error("config: PARLEY_BUS must be redis://host:port");
      return PARLEY_EBAD_REQUEST;
    }
    snprintf(cfg->bus_url, sizeof cfg->bus_url, "%s", v);
  }
  if ((v = getenv("PARLEY_RATE_LIMITS")) && *v)
    cfg->rate_limits = strcmp(v, "0") != 0;
  if ((v = getenv("PARLEY_COOKIE_SECURE")) && *v)
    cfg->cookie_secure = strcmp(v, "0") != 0;
  if ((v = getenv("PARLEY_LOG_LEVEL")) && *v) {
    int level = log_level_parse(v);
    if (level < 0) {
      log_error("config: PARLEY_LOG_LEVEL must be debug, info, warn or error");
      return PARLEY_EBAD_REQUEST;
    }
    log_set_level((enum log_level)level);
  }
  err |= env_size("PARLEY_MAX_BODY", &cfg->max_body, 1024, 16u << 20);
  err |= env_size("PARLEY_MAX_HEADER", &cfg->max_header, 1024, 1u << 20);
  err |= env_size("PARLEY_WS_MAX_MSG", &cfg->ws_max_msg, 1024, 16u << 20);
  err |= env_size("PARLEY_OUTQ_MAX", &cfg->outq_max, 4096, 1u << 30);
  err |= env_size("PARLEY_OUTQ_HARD_MAX", &cfg->outq_hard_max, 4096, 1u << 30);
  err |= env_u64("PARLEY_PING_INTERVAL_MS", &cfg->ping_interval_ms, 50, 3600000);
  err |= env_u64("PARLEY_HTTP_IDLE_MS", &cfg->http_idle_ms, 100, 3600000);
  err |= env_u64("PARLEY_AUTH_TIMEOUT_MS", &cfg->auth_timeout_ms, 50, 3600000);
  u = (uint64_t)cfg->session_ttl_ms / 1000;
  err |= env_u64("PARLEY_SESSION_TTL_S", &u, 1, UINT64_C(10) * 365 * 86400);
  cfg->session_ttl_ms = (int64_t)u * 1000;
  u = (uint64_t)cfg->max_conns_per_user;
  err |= env_u64("PARLEY_MAX_CONNS_PER_USER", &u, 1, 100000);
  cfg->max_conns_per_user = (int)u;
  err |= env_double("PARLEY_SEND_RATE", &cfg->send_rate);
  err |= env_double("PARLEY_SEND_BURST", &cfg->send_burst);
  err |= env_double("PARLEY_OP_RATE", &cfg->op_rate);
  err |= env_double("PARLEY_OP_BURST", &cfg->op_burst);
  err |= env_double("PARLEY_LOGIN_RATE", &cfg->login_rate);
  err |= env_double("PARLEY_LOGIN_BURST", &cfg->login_burst);
  err |= env_double("PARLEY_LOGIN_USER_RATE", &cfg->login_user_rate);
  err |= env_double("PARLEY_LOGIN_USER_BURST", &cfg->login_user_burst);
  err |= env_double("PARLEY_SIGNUP_RATE", &cfg->signup_rate);
  err |= env_double("PARLEY_SIGNUP_BURST", &cfg->signup_burst);
  u = (uint64_t)cfg->hash_max_running;
  err |= env_u64("PARLEY_HASH_CONCURRENCY", &u, 1, 1024);
  cfg->hash_max_running = (int)u;
  u = (uint64_t)cfg->hash_max_queued;
  err |= env_u64("PARLEY_HASH_QUEUE", &u, 0, 100000);
  cfg->hash_max_queued = (int)u;
  err |= env_u64("PARLEY_SESSION_SWEEP_MS", &cfg->session_sweep_ms, 100, UINT64_C(86400000));
  err |= env_double("PARLEY_SEARCH_RATE", &cfg->search_rate);
  err |= env_double("PARLEY_SEARCH_BURST", &cfg->search_burst);
  err |= env_double("PARLEY_TYPING_RATE", &cfg->typing_rate);
  err |= env_double("PARLEY_TYPING_BURST", &cfg->typing_burst);
  err |= env_double("PARLEY_PRESENCE_RATE", &cfg->presence_rate);
  err |= env_double("PARLEY_PRESENCE_BURST", &cfg->presence_burst);
  u = (uint64_t)cfg->presence_grace_ms;
  err |= env_u64("PARLEY_PRESENCE_GRACE_MS", &u, 0, 3600000);
  cfg->presence_grace_ms = (int64_t)u;
  err |= env_u64("PARLEY_TEST_BUS_DELAY_MS", &cfg->bus_test_delay_ms, 0, 60000);
  u = (uint64_t)cfg->presence_node_ttl_ms;
  err |= env_u64("PARLEY_PRESENCE_NODE_TTL_MS", &u, 1500, 3600000);
  cfg->presence_node_ttl_ms = (int64_t)u;
  u = (uint64_t)cfg->typing_ttl_ms;
  err |= env_u64("PARLEY_TYPING_TTL_MS", &u, 100, 600000);
  cfg->typing_ttl_ms = (int64_t)u;
  return err ? PARLEY_EBAD_REQUEST : 0;
}

/* --- helpers shared by the app files ------------------------------------------------------ */

int64_t app__now(const struct app *a) { return clock_wall_ms(); }

struct client *app__client_ref(struct client *cl) {
  cl->refs++;
  return cl;
}

void app__client_unref(struct client *cl) {
  if (--cl->refs == 0) {
    app__http_op_free(cl); /* a request still in progress when the connection went away */
    free(cl);
  }
}

static int origin_matches(const char *list, const char *origin) {
  size_t olen = strlen(origin);
  const char *p = list;
  while (*p) {
    size_t n = strcspn(p, ",");
    while (n && *p == ' ') {
      p++;
      n--;
    }
    if (n == olen && strncmp(p, origin, n) == 0)
      return 1;
    p += n;
    if (*p == ',')
      p++;
  }
  return 0;
}

int app__origin_allowed(const struct app *a, const char *origin) {
  char own[160];
  if (origin == NULL)
    return 1; /* not a browser: it has to authenticate with a token, so there is no CSRF */
  if (a->cfg.origins[0])
    return origin_matches(a->cfg.origins, origin);
  /* By default only the server's own origin, under the names a local user would type. */
  snprintf(own, sizeof own, "http://%s:%d", a->cfg.host, net_server_port(a->net));
  if (strcmp(origin, own) == 0)
    return 1;
  snprintf(own, sizeof own, "http://localhost:%d", net_server_port(a->net));
  if (strcmp(origin, own) == 0)
    return 1;
  snprintf(own, sizeof own, "http://127.0.0.1:%d", net_server_port(a->net));
  return strcmp(origin, own) == 0;
}

int app__submit(struct app *a, struct client *cl, struct store_req *req, store_cb cb) {
  int err;
  if (cl)
    app__client_ref(cl);
  /* The time the op was asked for: kept when the caller set it already, since other inputs may
   * have been computed from it (an invitation's expires_at is in.now + ttl: taking the clock
   * again here made a 1 s ttl 999 ms when the millisecond turned in between). */
  if (req->in.now == 0)
    req->in.now = app__now(a);
  req->order = cl; /* one socket's ops take effect in the order it sent them */
  err = store_submit(a->store, req, cb, cl);
  if (err) {
    if (cl)
      app__client_unref(cl);
    store_req_free(req);
  }
  return err;
}

int app__user_attach(struct app *a, struct client *cl, const struct store_user *u,
                     const uint8_t *session_hash, int64_t expires_at) {
  struct app_user *au;
  HASH_FIND(hh, a->users, &u->id, sizeof u->id, au);
  if (au && au->n_clients >= a->cfg.max_conns_per_user)
    return PARLEY_ERATE_LIMITED;
  if (au == NULL) {
    au = calloc(1, sizeof *au);
    if (au == NULL)
      return PARLEY_EINTERNAL;
    au->id = u->id;
    HASH_ADD(hh, a->users, id, sizeof au->id, au);
  }
  au->user = *u;
  if (cl->is_ws && !cl->authed)
    DL_DELETE2(a->unauthed, cl, uprev, unext);
  DL_APPEND2(au->clients, cl, uprev, unext);
  au->n_clients++;
  cl->authed = 1;
  cl->user = *u;
  memcpy(cl->session_hash, session_hash, STORE_TOKEN_HASH_LEN);
  cl->session_expires_at = expires_at;
  cl->active = 1;
  app__presence_attached(a, au);
  return 0;
}

static void user_detach(struct app *a, struct client *cl) {
  struct app_user *au;
  if (!cl->authed) {
    if (cl->is_ws)
      DL_DELETE2(a->unauthed, cl, uprev, unext);
    return;
  }
  HASH_FIND(hh, a->users, &cl->user.id, sizeof cl->user.id, au);
  if (au == NULL)
    return;
  DL_DELETE2(au->clients, cl, uprev, unext);
  au->n_clients--;
  /* The entry outlives its last socket for the presence grace (app__presence_tick frees it),
   * which also keeps its rate-limit buckets across a quick reconnect. */
  app__presence_detached(a, au, cl);
  cl->authed = 0;
}

/* --- net callbacks ------------------------------------------------------------------------ */

static void on_close(void *ud, struct net_conn *c) {
  struct app *a = ud;
  struct client *cl = net_conn_get_data(c);
  if (cl == NULL)
    return;
  app__client_drop_subs(cl);
  app__client_drop_held(cl);
  user_detach(a, cl);
  cl->conn = NULL;
  app__client_unref(cl);
}

/* --- housekeeping ------------------------------------------------------------------------- */

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
  req->in.limit = 500;
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

static void on_tick(uv_timer_t *t) {
  struct app *a = t->data;
  uint64_t loop_now = uv_now(a->loop);
  int64_t now = app__now(a);
  struct app_user *au, *tmp;
  struct app_throttle *th, *ttmp;
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
  app__bus_tick(a);
  app__presence_tick(a);
  app__rooms_tick(a);
  /* A throttle entry that carries no more information is dropped: its bucket has refilled,
   * its lockout is over, its failures are a day old, and (a "p:" entry) its address last
   * logged in as the user longer ago than a session lasts. */
  HASH_ITER(hh, a->throttles, th, ttmp) {
    double rate = a->cfg.login_rate, burst = a->cfg.login_burst;
    if (th->key[0] == 'u')
      rate = a->cfg.login_user_rate, burst = a->cfg.login_user_burst;
    else if (th->key[0] == 's')
      rate = a->cfg.signup_rate, burst = a->cfg.signup_burst;
    if ((th->rl.last_ms == 0 || (double)(now - th->rl.last_ms) * rate / 1000.0 >= burst) &&
        th->locked_until <= now && (th->last_failure == 0 || now - th->last_failure > 86400000) &&
        (th->last_success == 0 || now - th->last_success > a->cfg.session_ttl_ms)) {
      HASH_DEL(a->throttles, th);
      free(th);
    }
  }
  session_sweep(a);
}

/* Typing and activeUsers events batched during the turn, sent just before net writes. */
static void on_before_flush(void *ud) { app__rooms_flush(ud); }

/* Every message fanned out this turn has now been handed to the kernel for its local
 * subscribers (or queued behind a full socket): that is its delivery latency. */
static void on_after_flush(void *ud) {
  struct app *a = ud;
  struct app_metrics *m = &a->metrics;
  uint64_t now;
  if (m->turn_n == 0)
    return;
  now = clock_mono_ns();
  for (size_t i = 0; i < m->turn_n; i++)
    hist_window_record(&m->delivery_lat, now, now - m->turn_recv[i]);
  m->turn_n = 0;
}

void app__metrics_fanned_out(struct app *a, uint64_t recv_ns) {
  struct app_metrics *m = &a->metrics;
  if (m->turn_n == m->turn_cap) {
    size_t cap = m->turn_cap ? m->turn_cap * 2 : 256;
    uint64_t *p = realloc(m->turn_recv, cap * sizeof *p);
    if (p == NULL)
      return; /* a sample less; the message itself is unaffected */
    m->turn_recv = p;
    m->turn_cap = cap;
  }
  m->turn_recv[m->turn_n++] = recv_ns;
}

/* --- start and stop ----------------------------------------------------------------------- */

static void on_signal(uv_signal_t *h, int signum) {
  struct app *a = h->data;
  log_info("signal %d: shutting down", signum);
  app_shutdown(a);
}

int app_start(struct app *a, uv_loop_t *loop, const struct app_config *cfg) {
  struct net_config ncfg;
  struct net_callbacks ncb;
  char dbpath[1100];
  int err;

  memset(a, 0, sizeof *a);
  a->loop = loop;
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
  err = app__bus_start(a);
  if (err)
    return err;

  memset(&ncfg, 0, sizeof ncfg);
  ncfg.host = cfg->host;
  ncfg.port = cfg->port;
  ncfg.backlog = 4096;
  ncfg.max_header = cfg->max_header;
  ncfg.max_body = cfg->max_body;
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
  {
    uint64_t tick = cfg->auth_timeout_ms / 4 < 1000 ? cfg->auth_timeout_ms / 4 : 1000;
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
  struct app_user *au, *tmp;
  struct app_throttle *th, *ttmp;
  struct room *r, *rtmp;

  a->store = NULL;
  HASH_ITER(hh, a->users, au, tmp) {
    HASH_DEL(a->users, au);
    free(au);
  }
  HASH_ITER(hh, a->throttles, th, ttmp) {
    HASH_DEL(a->throttles, th);
    free(th);
  }
  HASH_ITER(hh, a->rooms, r, rtmp) {
    HASH_DEL(a->rooms, r);
    app__room_free(r);
  }
  {
    struct app_watch *w, *wtmp;
    HASH_ITER(hh, a->watches, w, wtmp) {
      HASH_DEL(a->watches, w);
      free(w->watchers);
      free(w);
    }
  }
  a->dirty_rooms = NULL;
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
  app__presence_persist_all(a); /* everyone's lastSeen is now */
  store_close(a->store, on_store_closed, a);
}

void app_shutdown(struct app *a) {
  if (a->shutting_down)
    return;
  a->shutting_down = 1;
  uv_close((uv_handle_t *)&a->sigterm, NULL);
  uv_close((uv_handle_t *)&a->sigint, NULL);
  net_server_stop_accepting(a->net);
  net_server_close_all(a->net, 1001, "server shutting down");
  uv_timer_stop(&a->ticker);
  uv_timer_start(&a->ticker, shutdown_wait, 0, 20);
}
