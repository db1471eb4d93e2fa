/* config.h - the server's settings: every one is a PARLEY_* environment variable, described
 * once, in config.c's table (name, type, default, range, field, doc). The loader, the README's
 * settings table (`parley --print-config-table`) and its test all come from that table.
 */
#ifndef PARLEY_APP_CONFIG_H
#define PARLEY_APP_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store/store.h"

struct app_config {
  char host[64];
  int port;
  char data_dir[1024];
  char store_url[512];         /* PARLEY_STORE: "" = SQLite under data_dir, else postgres://... */
  char web_dir[1024];
  char origins[2048];          /* comma-separated allowlist; "" = the server's own origin */
  enum store_durability durability;
  int store_conns;             /* PARLEY_STORE_CONNS: database connections (0: the backend's) */
  uint64_t wal_max;            /* PARLEY_WAL_MAX: bound on SQLite's WAL file, bytes */
  size_t store_queue_max;      /* PARLEY_STORE_QUEUE_MAX: client requests the store may hold */
  uint64_t store_queue_wait_ms; /* PARLEY_STORE_QUEUE_WAIT_MS: longest wait for a lane */
  size_t max_body, max_header, ws_max_msg, outq_max, outq_hard_max;
  uint64_t ping_interval_ms;
  uint64_t http_idle_ms;       /* keep-alive idle and header-read timeout (slowloris) */
  uint64_t auth_timeout_ms;
  int64_t session_ttl_ms;
  int rate_limits;             /* 0 disables the per-user and per-IP rate limits */
  double send_rate, send_burst;     /* msg.send per user */
  double op_rate, op_burst;         /* any op per connection */
  double login_rate, login_burst;   /* login attempts per client IP (every attempt counts) */
  double login_user_rate, login_user_burst; /* failed logins per username, from any address
                                               that never logged in as it (app_http.c) */
  double signup_rate, signup_burst; /* signups per client IP */
  int hash_max_running;        /* PARLEY_HASH_CONCURRENCY: argon2 runs at once (thread pool) */
  int hash_max_queued;         /* PARLEY_HASH_QUEUE: argon2 runs waiting for a slot; more: 503 */
  uint64_t session_sweep_ms;   /* PARLEY_SESSION_SWEEP_MS: expired sessions deleted this often */
  double search_rate, search_burst; /* users.search per user */
  double typing_rate, typing_burst; /* typing per user */
  double presence_rate, presence_burst; /* presence reports per user */
  int64_t presence_grace_ms;
  int64_t stream_idle_ms;       /* issue 19: an author-less stream idle this long is ended */
  int64_t presence_node_ttl_ms; /* several nodes: a node's presence statements last this long */
  int64_t typing_ttl_ms;
  int64_t bot_typing_ttl_ms;        /* issue 19: a bot's typing (thinking) lasts longer */
  double bot_send_rate, bot_send_burst; /* msg.send per bot */
  int64_t webhook_timeout_ms, webhook_retry_ms;
  int webhook_queue_max;
  int max_conns_per_user;
  int sub_presence_max;        /* PARLEY_SUB_PRESENCE_MAX: presences in a sub reply (issue 15) */
  int cookie_secure;
  char bus_url[256];           /* PARLEY_BUS: "" = single node, "redis://host:port" = cluster */
  uint64_t bus_test_delay_ms;  /* PARLEY_TEST_BUS_DELAY_MS: publications wait this long (tests) */
};

/* Fills cfg (caller's memory) with the table's defaults, then applies the PARLEY_* environment
 * variables. Returns 0, or PARLEY_EBAD_REQUEST with one line logged per malformed value. */
int app_config_load(struct app_config *cfg);

/* Writes the README's settings table (Markdown, one row per documented setting) to out
 * (borrowed). */
void app_config_print_table(FILE *out);

#endif
