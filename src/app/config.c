/* config.c - every PARLEY_* setting in one table: its name, type, default, range, the field it
 * fills and what it means. The loader walks the table (defaults first, through the same parsers
 * as the environment, then the environment); `parley --print-config-table` prints the README's
 * settings table from it, and tests/unit/test_config.c checks that the README holds exactly
 * that table, so the documentation cannot drift from the code.
 */
#include "app/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/error.h"
#include "common/log.h"

enum cfg_type {
  CFG_STR,        /* a string field of the given size; `prefixes` lists the accepted schemes */
  CFG_LISTEN,     /* host:port into host and port */
  CFG_U64,        /* uint64_t, whole number in [min, max] */
  CFG_SIZE,       /* size_t, whole number in [min, max] */
  CFG_INT,        /* int, whole number in [min, max] */
  CFG_I64,        /* int64_t, whole number in [min, max] */
  CFG_SECONDS_MS, /* int64_t milliseconds, given in whole seconds in [min, max] */
  CFG_DOUBLE,     /* double, positive */
  CFG_BOOL,       /* int: "0" is off, anything else on */
  CFG_DURABILITY, /* enum store_durability: normal or fsync */
  CFG_LOG_LEVEL,  /* not a field: sets the log level */
};

struct cfg_entry {
  const char *name;
  enum cfg_type type;
  size_t off;           /* of the field in struct app_config */
  size_t size;          /* CFG_STR: the field's size */
  const char *def;      /* default, parsed like the environment's value (NULL: none) */
  uint64_t min, max;    /* whole-number types */
  const char *prefixes; /* CFG_STR: accepted prefixes, space-separated (NULL: any) */
  const char *shown;    /* the default as the README shows it (NULL: def, or "unset") */
  const char *doc;      /* the README's "Meaning"; NULL: not documented (test settings) */
  const char *must;     /* CFG_STR: what the error says a value must be (NULL: the prefixes) */
};

#define F(field) offsetof(struct app_config, field)
#define FS(field) F(field), sizeof(((struct app_config *)0)->field)
#define MS_HOUR UINT64_C(3600000)

static const struct cfg_entry cfg_table[] = {
    {"PARLEY_LISTEN", CFG_LISTEN, 0, 0, "127.0.0.1:8080", 0, 0, NULL, NULL, "address and port", NULL},
    {"PARLEY_DATA", CFG_STR, FS(data_dir), "data", 0, 0, NULL, NULL,
     "folder of the SQLite database (`parley.db`)", NULL},
    {"PARLEY_STORE", CFG_STR, FS(store_url), NULL, 0, 0, "postgres:// postgresql://", NULL,
     "`postgres://user@host:port/db`: PostgreSQL instead of the SQLite file, shared by several "
     "nodes (docs/operations.md)", "a postgres:// or postgresql:// URI"},
    {"PARLEY_STORE_CONNS", CFG_INT, FS(store_conns), NULL, 1, 16, NULL, "1",
     "PostgreSQL connections per node (1-16)", NULL},
    {"PARLEY_WAL_MAX", CFG_U64, FS(wal_max), "67108864", UINT64_C(1) << 20, UINT64_C(1) << 30,
     NULL, NULL,
     "bytes the SQLite WAL file (`parley.db-wal`) may reach under any sustained load (1 MiB - "
     "1 GiB)", NULL},
    {"PARLEY_STORE_QUEUE_MAX", CFG_SIZE, FS(store_queue_max), "8192", 1, 1u << 20, NULL, NULL,
     "requests the store may hold; past it (or past `PARLEY_STORE_QUEUE_WAIT_MS`) a client's "
     "request is refused at once with `unavailable` and `retryAfter`", NULL},
    {"PARLEY_STORE_QUEUE_WAIT_MS", CFG_U64, FS(store_queue_wait_ms), "500", 1, 60000, NULL, NULL,
     "longest a request may wait for the store before new ones are refused (`unavailable`)",
     NULL},
    {"PARLEY_WEB_DIR", CFG_STR, FS(web_dir), "web/dist", 0, 0, NULL, NULL, "the built web app", NULL},
    {"PARLEY_ORIGINS", CFG_STR, FS(origins), NULL, 0, 0, NULL, "own origin",
     "comma-separated Origin allowlist for WebSocket upgrades and POSTs", NULL},
    {"PARLEY_DURABILITY", CFG_DURABILITY, F(durability), 0, "normal", 0, 0, NULL, NULL,
     "`normal` survives a killed process; `fsync` survives power loss", NULL},
    {"PARLEY_MAX_BODY", CFG_SIZE, FS(max_body), "65536", 1024, 16u << 20, NULL, NULL,
     "largest HTTP request body (413)", NULL},
    {"PARLEY_MAX_HEADER", CFG_SIZE, FS(max_header), "8192", 1024, 1u << 20, NULL, NULL,
     "largest HTTP request head (431)", NULL},
    {"PARLEY_WS_MAX_MSG", CFG_SIZE, FS(ws_max_msg), "65536", 1024, 16u << 20, NULL, NULL,
     "largest WebSocket message (close 1009)", NULL},
    {"PARLEY_OUTQ_MAX", CFG_SIZE, FS(outq_max), "1048576", 4096, 1u << 30, NULL, NULL,
     "unwritten bytes per socket before it is closed with 4008", NULL},
    {"PARLEY_OUTQ_HARD_MAX", CFG_SIZE, FS(outq_hard_max), "16777216", 4096, 1u << 30, NULL, NULL,
     "unwritten bytes of anything (replies included) per socket before 4008", NULL},
    {"PARLEY_PING_INTERVAL_MS", CFG_U64, FS(ping_interval_ms), "25000", 50, MS_HOUR, NULL, NULL,
     "heartbeat; a peer silent for two intervals is dropped", NULL},
    {"PARLEY_HTTP_IDLE_MS", CFG_U64, FS(http_idle_ms), "30000", 100, MS_HOUR, NULL, NULL,
     "an HTTP connection idle (or still sending its headers) this long is closed", NULL},
    {"PARLEY_AUTH_TIMEOUT_MS", CFG_U64, FS(auth_timeout_ms), "10000", 50, MS_HOUR, NULL, NULL,
     "time a WebSocket has to authenticate (close 4001)", NULL},
    {"PARLEY_SESSION_TTL_S", CFG_SECONDS_MS, FS(session_ttl_ms), "2592000", 1,
     UINT64_C(10) * 365 * 86400, NULL, NULL, "session lifetime (30 days)", NULL},
    {"PARLEY_RATE_LIMITS", CFG_BOOL, FS(rate_limits), "1", 0, 0, NULL, NULL,
     "`0` turns off per-user and per-IP rate limits (benchmarks), never size limits", NULL},
    {"PARLEY_SEND_RATE", CFG_DOUBLE, FS(send_rate), "10", 0, 0, NULL, NULL,
     "messages per second per user", NULL},
    {"PARLEY_SEND_BURST", CFG_DOUBLE, FS(send_burst), "30", 0, 0, NULL, NULL,
     "messages a user may send at once", NULL},
    {"PARLEY_OP_RATE", CFG_DOUBLE, FS(op_rate), "50", 0, 0, NULL, NULL,
     "requests per second per socket; also WebSocket pings per socket (own bucket, close 1008)",
     NULL},
    {"PARLEY_OP_BURST", CFG_DOUBLE, FS(op_burst), "200", 0, 0, NULL, NULL,
     "requests a socket may send at once", NULL},
    /* Ten a minute: the default is written out so that it parses to exactly 1.0 / 6. */
    {"PARLEY_LOGIN_RATE", CFG_DOUBLE, FS(login_rate), "0.16666666666666666", 0, 0, NULL, "0.167",
     "login attempts per second per client IP (429 + Retry-After); 3 failures in a row lock that "
     "(username, IP) pair out, 1 s doubling to 15 min", NULL},
    {"PARLEY_LOGIN_BURST", CFG_DOUBLE, FS(login_burst), "10", 0, 0, NULL, NULL,
     "login attempts at once per client IP", NULL},
    /* Far above one address's budget: many addresses guessing one username hit it, the user's
     * own devices (addresses that logged in as them before) never do. 60 failures an hour. */
    {"PARLEY_LOGIN_USER_RATE", CFG_DOUBLE, FS(login_user_rate), "0.016666666666666666", 0, 0,
     NULL, "0.0167", "failed logins per second per username from addresses that never logged in "
     "as it", NULL},
    {"PARLEY_LOGIN_USER_BURST", CFG_DOUBLE, FS(login_user_burst), "100", 0, 0, NULL, NULL,
     "failed logins at once per username from such addresses", NULL},
    {"PARLEY_SIGNUP_RATE", CFG_DOUBLE, FS(signup_rate), "0.016666666666666666", 0, 0, NULL,
     "0.0167", "signups per second per client IP (one a minute)", NULL},
    {"PARLEY_SIGNUP_BURST", CFG_DOUBLE, FS(signup_burst), "10", 0, 0, NULL, NULL,
     "signups at once per client IP", NULL},
    /* Default (def NULL): one hash per core, and no more than libuv's default thread pool (4
     * threads): more at once would only share the cores, and a login's hash would take longer. */
    {"PARLEY_HASH_CONCURRENCY", CFG_INT, FS(hash_max_running), NULL, 1, 1024, NULL,
     "CPUs (max 4)", "argon2 hashes running at once (logins first)", NULL},
    {"PARLEY_HASH_QUEUE", CFG_INT, FS(hash_max_queued), "256", 0, 100000, NULL, NULL,
     "argon2 hashes waiting for a slot; past it 503 + Retry-After", NULL},
    {"PARLEY_SESSION_SWEEP_MS", CFG_U64, FS(session_sweep_ms), "3600000", 100, 86400000, NULL,
     NULL, "how often expired sessions are deleted", NULL},
    {"PARLEY_SEARCH_RATE", CFG_DOUBLE, FS(search_rate), "5", 0, 0, NULL, NULL,
     "`users.search` and `msg.search` per second per user", NULL},
    {"PARLEY_SEARCH_BURST", CFG_DOUBLE, FS(search_burst), "20", 0, 0, NULL, NULL,
     "`users.search` and `msg.search` at once per user", NULL},
    {"PARLEY_TYPING_RATE", CFG_DOUBLE, FS(typing_rate), "5", 0, 0, NULL, NULL,
     "typing updates per second per user", NULL},
    {"PARLEY_TYPING_BURST", CFG_DOUBLE, FS(typing_burst), "10", 0, 0, NULL, NULL,
     "typing updates at once per user", NULL},
    {"PARLEY_PRESENCE_RATE", CFG_DOUBLE, FS(presence_rate), "2", 0, 0, NULL, NULL,
     "presence reports per second per user", NULL},
    {"PARLEY_PRESENCE_BURST", CFG_DOUBLE, FS(presence_burst), "10", 0, 0, NULL, NULL,
     "presence reports at once per user", NULL},
    {"PARLEY_SUB_PRESENCE_MAX", CFG_INT, FS(sub_presence_max), "100", 1, 10000, NULL, NULL,
     "presences and activeUsers in a `sub` reply (activeUsers in `chat.active` events and chat objects "
     "too): the first participants not offline (`chat.members` pages the rest)",
     NULL},
    {"PARLEY_MAX_CONNS_PER_USER", CFG_INT, FS(max_conns_per_user), "20", 1, 100000, NULL, NULL,
     "sockets per user (close 4029)", NULL},
    {"PARLEY_PRESENCE_GRACE_MS", CFG_I64, FS(presence_grace_ms), "10000", 0, MS_HOUR, NULL, NULL,
     "how long a user with no socket still shows as online/away", NULL},
    {"PARLEY_PRESENCE_NODE_TTL_MS", CFG_I64, FS(presence_node_ttl_ms), "15000", 1500, MS_HOUR,
     NULL, NULL, "several nodes: a node's presence statements last this long unless refreshed", NULL},
    {"PARLEY_STREAM_IDLE_MS", CFG_I64, FS(stream_idle_ms), "30000", 100, MS_HOUR, NULL, NULL,
     "a streamed message whose author has no socket and appended nothing for this long is "
     "ended as `interrupted`", NULL},
    {"PARLEY_TYPING_TTL_MS", CFG_I64, FS(typing_ttl_ms), "6000", 100, 600000, NULL, NULL,
     "how long a typer is shown without a refresh", NULL},
    {"PARLEY_BOT_TYPING_TTL_MS", CFG_I64, FS(bot_typing_ttl_ms), "60000", 100, 600000, NULL,
     NULL, "how long a bot is shown typing (thinking) without a refresh", NULL},
    {"PARLEY_BOT_MSG_RATE", CFG_DOUBLE, FS(bot_send_rate), "20", 0, 0, NULL, NULL,
     "messages per second per bot (instead of PARLEY_SEND_RATE)", NULL},
    {"PARLEY_BOT_MSG_BURST", CFG_DOUBLE, FS(bot_send_burst), "60", 0, 0, NULL, NULL,
     "messages at once per bot (instead of PARLEY_SEND_BURST)", NULL},
    {"PARLEY_WEBHOOK_TIMEOUT_MS", CFG_I64, FS(webhook_timeout_ms), "5000", 50, 600000, NULL,
     NULL, "time one webhook delivery attempt may take", NULL},
    {"PARLEY_WEBHOOK_RETRY_MS", CFG_I64, FS(webhook_retry_ms), "1000", 1, 600000, NULL, NULL,
     "first webhook retry delay; later ones double (5 tries in all)", NULL},
    {"PARLEY_WEBHOOK_QUEUE_MAX", CFG_INT, FS(webhook_queue_max), "1000", 1, 1000000, NULL, NULL,
     "webhook deliveries waiting or in flight; past it new ones are dropped (counted)", NULL},
    {"PARLEY_COOKIE_SECURE", CFG_BOOL, FS(cookie_secure), "0", 0, 0, NULL, NULL,
     "add `Secure` to the cookie (set it behind TLS)", NULL},
    {"PARLEY_LOG_LEVEL", CFG_LOG_LEVEL, 0, 0, NULL, 0, 0, NULL, "`info`",
     "`debug`, `info`, `warn`, `error`", NULL},
    {"PARLEY_BUS", CFG_STR, FS(bus_url), NULL, 0, 0, "redis:// local://", "unset (one node)",
     "`redis://host:port`: fan-out to the other nodes of a cluster through Redis pub/sub",
     "redis://host:port"},
    {"PARLEY_TEST_BUS_DELAY_MS", CFG_U64, FS(bus_test_delay_ms), NULL, 0, 60000, NULL, NULL,
     NULL, NULL},
};

#define CFG_N (sizeof cfg_table / sizeof cfg_table[0])

static int parse_whole(const struct cfg_entry *e, const char *v, uint64_t *out) {
  char *end;
  unsigned long long n;
  errno = 0;
  n = strtoull(v, &end, 10);
  if (errno || *end || *v == '-' || n < e->min || n > e->max) {
    log_error("config: %s must be a whole number from %llu to %llu", e->name,
              (unsigned long long)e->min, (unsigned long long)e->max);
    return PARLEY_EBAD_REQUEST;
  }
  *out = n;
  return 0;
}

static int prefix_ok(const char *prefixes, const char *v) {
  const char *p = prefixes;
  if (p == NULL)
    return 1;
  while (*p) {
    size_t n = strcspn(p, " ");
    if (strncmp(v, p, n) == 0)
      return 1;
    p += n;
    p += *p == ' ';
  }
  return 0;
}

static int parse_listen(struct app_config *cfg, const char *v) {
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
  return 0;
}

/* Applies one value (from the table's default or the environment) to its field. */
static int cfg_apply(struct app_config *cfg, const struct cfg_entry *e, const char *v) {
  char *field = (char *)cfg + e->off;
  uint64_t u;
  int err;
  switch (e->type) {
  case CFG_STR:
    if (strlen(v) >= e->size || !prefix_ok(e->prefixes, v)) {
      if (e->must)
        log_error("config: %s must be %s (at most %zu bytes)", e->name, e->must, e->size - 1);
      else
        log_error("config: %s must start with one of: %s (at most %zu bytes)", e->name,
                  e->prefixes ? e->prefixes : "anything", e->size - 1);
      return PARLEY_EBAD_REQUEST;
    }
    snprintf(field, e->size, "%s", v);
    return 0;
  case CFG_LISTEN:
    return parse_listen(cfg, v);
  case CFG_U64:
  case CFG_SIZE:
  case CFG_INT:
  case CFG_I64:
  case CFG_SECONDS_MS:
    if ((err = parse_whole(e, v, &u)) != 0)
      return err;
    if (e->type == CFG_U64)
      *(uint64_t *)(void *)field = u;
    else if (e->type == CFG_SIZE)
      *(size_t *)(void *)field = (size_t)u;
    else if (e->type == CFG_INT)
      *(int *)(void *)field = (int)u;
    else if (e->type == CFG_I64)
      *(int64_t *)(void *)field = (int64_t)u;
    else
      *(int64_t *)(void *)field = (int64_t)u * 1000;
    return 0;
  case CFG_DOUBLE: {
    char *end;
    double d = strtod(v, &end);
    if (*end || !(d > 0)) {
      log_error("config: %s must be a positive number", e->name);
      return PARLEY_EBAD_REQUEST;
    }
    *(double *)(void *)field = d;
    return 0;
  }
  case CFG_BOOL:
    *(int *)(void *)field = strcmp(v, "0") != 0;
    return 0;
  case CFG_DURABILITY:
    if (strcmp(v, "fsync") == 0)
      *(enum store_durability *)(void *)field = STORE_DURABILITY_FSYNC;
    else if (strcmp(v, "normal") == 0)
      *(enum store_durability *)(void *)field = STORE_DURABILITY_NORMAL;
    else {
      log_error("config: %s must be normal or fsync", e->name);
      return PARLEY_EBAD_REQUEST;
    }
    return 0;
  case CFG_LOG_LEVEL: {
    int level = log_level_parse(v);
    if (level < 0) {
      log_error("config: %s must be debug, info, warn or error", e->name);
      return PARLEY_EBAD_REQUEST;
    }
    log_set_level((enum log_level)level);
    return 0;
  }
  }
  return PARLEY_EINTERNAL;
}

int app_config_load(struct app_config *cfg) {
  int rc = 0;
  memset(cfg, 0, sizeof *cfg);
  for (size_t i = 0; i < CFG_N; i++) {
    const struct cfg_entry *e = &cfg_table[i];
    const char *v = getenv(e->name);
    int set = v && *v; /* empty means unset */
    if (e->def && cfg_apply(cfg, e, e->def) != 0)
      return PARLEY_EINTERNAL; /* a default the table itself rejects */
    /* Every malformed value is reported, not only the first. */
    if (set && cfg_apply(cfg, e, v) != 0)
      rc = PARLEY_EBAD_REQUEST;
  }
  if (cfg->hash_max_running == 0) { /* the table's NULL default (it depends on the machine) */
    unsigned cpus = uv_available_parallelism();
    cfg->hash_max_running = cpus < 4 ? (int)cpus : 4;
  }
  return rc;
}

void app_config_print_table(FILE *out) {
  fprintf(out, "| Variable | Default | Meaning |\n| --- | --- | --- |\n");
  for (size_t i = 0; i < CFG_N; i++) {
    const struct cfg_entry *e = &cfg_table[i];
    const char *shown = e->shown ? e->shown : e->def ? e->def : "unset";
    /* Words and paths in code style, numbers plain. */
    int code = e->shown == NULL && e->def != NULL && e->def[strspn(e->def, "0123456789.")];
    if (e->doc == NULL)
      continue;
    fprintf(out, "| `%s` | %s%s%s | %s |\n", e->name, code ? "`" : "", shown, code ? "`" : "",
            e->doc);
  }
}
