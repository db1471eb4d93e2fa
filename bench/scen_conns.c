/* scen_conns.c - the `connections` and `storm` scenarios of the load generator.
 *
 * Both reuse loadgen.c's set-up phases (sign up, connect + auth, chat.create, chat.join, sub) and
 * its pacing; this file adds what is particular to them, called through a few hooks:
 *
 *   connections  N authenticated, subscribed sockets in chats of K that then sit idle. The server's
 *                VmRSS is sampled when connecting starts, once all are subscribed and at the end
 *                of the idle window: (RSS at the end - RSS at start) / N is the memory one idle
 *                connection costs. Meanwhile the first member of each of the first --probes
 *                chats sends (--rate msgs/s in total) and every member of those chats receives,
 *                so the latency figures are those of a message crossing a server that holds N
 *                idle sockets.
 *   storm        the chat population; each chat's first member is its sender and stays
 *                connected, sending --rate msgs/s in total for the whole run. At the start of the
 *                measured window every other socket is aborted at once (SO_LINGER 0: a RST, as a
 *                dying network would) and reconnects, authenticates and resumes with
 *                `sub {chat, since: <last seq it saw>}` (at most --storm-concurrency in flight, a
 *                failed attempt retried after a jittered backoff). Recovery time is from the drop
 *                to the last resume reply. No loss: replayed and live messages go through the
 *                same per-socket seq check as everything else (no gap, no duplicate, in order),
 *                and after the drain every socket must have seen its chat's newest acknowledged
 *                seq; a resume answered with `reset` (more than 200 missed) counts as loss.
 *
 * Above ~28k sockets one loopback source address runs out of ephemeral ports towards a single
 * server port, so with --src-addrs A (or by default above 25k sockets) the sockets are bound to
 * 127.0.0.2, 127.0.0.3, ... in turn, with IP_BIND_ADDRESS_NO_PORT so the port is chosen at connect.
 */
#include "loadgen.h"

#include <jansson.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NS 1000000000ull
#define SC_PER_SRC 25000   /* sockets per loopback source address by default */
#define SC_MAX_SRC 250     /* 127.0.0.2 .. 127.0.0.251 */
#define SC_RETRY_MIN_MS 50 /* first reconnect backoff; doubles up to SC_RETRY_MAX_MS */
#define SC_RETRY_MAX_MS 2000
#define SC_MAX_ATTEMPTS 20 /* reconnect attempts per socket before the run fails */

enum sc_state { SC_NONE = 0, SC_DOWN, SC_CONNECTING, SC_RESUMING, SC_LIVE };

struct sc_conn {
  uint8_t state; /* enum sc_state (storm) */
  uint8_t attempts;
  uint64_t retry_at; /* uv_hrtime() of the next attempt (SC_DOWN) */
};

struct scen_conns {
  struct sc_conn *per; /* one per connection */
  /* connections */
  uint64_t t_connect0, t_connected, t_subscribed;
  long rss0_kb, rss1_kb; /* VmRSS when connecting started, and once all subscribed */
  /* storm */
  int64_t *acked_seq; /* per group: the highest seq acknowledged to its sender */
  int dropped, live_again, inflight, attempts, failed;
  int storm_started, storm_done;
  uint64_t t_drop, t_all_live;
  uint64_t replayed, resets,
      behind;          /* replayed msgs; resumes answered with reset; sockets behind */
  struct hist recover; /* drop to resume reply, per socket */
  int *queue;          /* sockets waiting for an attempt (ring of n_users) */
  int q_head, q_n;
};

int scen_conns_active(const struct lg *lg) {
  return lg->scen == SCEN_CONNS || lg->scen == SCEN_STORM;
}

int scen_conns_init(struct lg *lg) {
  int n = lg->n_users;
  struct scen_conns *sc = calloc(1, sizeof(*sc));
  if (!sc)
    return -1;
  lg->sc = sc;
  sc->per = calloc((size_t)n, sizeof(*sc->per));
  sc->acked_seq = calloc((size_t)lg->n_groups, sizeof(*sc->acked_seq));
  sc->queue = calloc((size_t)n, sizeof(int));
  if (!sc->per || !sc->acked_seq || !sc->queue)
    return -1;
  hist_init(&sc->recover);
  for (int g = 0; g < lg->n_groups; g++)
    sc->acked_seq[g] = -1;
  /* Senders: the first member of every chat (storm) or of the first --probes chats. */
  int senders = lg->scen == SCEN_STORM ? lg->n_groups
                                       : (lg->probes < lg->n_groups ? lg->probes : lg->n_groups);
  lg->n_order = 0;
  for (int g = 0; g < senders; g++)
    lg->order[lg->n_order++] = lg->groups[g].first;
  /* Source addresses: by default one per SC_PER_SRC sockets once one is not enough. */
  const struct sockaddr_in *dst = (const struct sockaddr_in *)&lg->addr;
  int n_src = lg->src_addrs;
  if (n_src < 0)
    n_src = n > SC_PER_SRC ? (n + SC_PER_SRC - 1) / SC_PER_SRC : 0;
  if (n_src > 0 && dst->sin_family != AF_INET) {
    fprintf(stderr, "loadgen: --src-addrs needs an IPv4 server address; ignored\n");
    n_src = 0;
  }
  if (n_src > SC_MAX_SRC)
    n_src = SC_MAX_SRC;
  if (n_src > 0) {
    lg->src = calloc((size_t)n_src, sizeof(*lg->src));
    if (!lg->src)
      return -1;
    for (int i = 0; i < n_src; i++) {
      lg->src[i].sin_family = AF_INET;
      lg->src[i].sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)i);
    }
    lg->n_src = n_src;
  }
  return 0;
}

int lg_bind_source(struct conn *c) {
  struct lg *lg = c->lg;
  const struct sockaddr_in *src = &lg->src[c->idx % lg->n_src];
  int one = 1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  /* Without this, bind() picks the port alone and every source address is again limited to the
   * ephemeral range as a whole; with it, the port is chosen at connect, per destination. */
  setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
  if (bind(fd, (const struct sockaddr *)src, sizeof(*src)) != 0 || uv_tcp_open(&c->tcp, fd) != 0) {
    close(fd);
    return -1;
  }
  return 0;
}

/* Accounts: with --conns-per-user M, socket i uses account i % U (U = ceil(N / M)); consecutive
 * sockets of a chat are then different users. */
void scen_conns_fill_users(struct lg *lg) {
  int u = lg->n_accounts;
  for (int i = u; i < lg->n_users; i++)
    if (!lg->users[i].token) {
      memcpy(lg->users[i].name, lg->users[i % u].name, sizeof(lg->users[i].name));
      lg->users[i].token = strdup(lg->users[i % u].token);
    }
}

void scen_conns_phase(struct lg *lg, enum phase ph) {
  struct scen_conns *sc = lg->sc;
  uint64_t now = uv_hrtime();
  if (ph == PH_CONNECT) {
    scen_conns_fill_users(lg);
    sc->t_connect0 = now;
    if (lg->server_pid > 0)
      sc->rss0_kb = proc_status_kb(lg->server_pid, "VmRSS");
  } else if (ph == PH_CREATE) {
    sc->t_connected = now;
  } else if (ph == PH_RUN) {
    sc->t_subscribed = now;
    if (lg->server_pid > 0)
      sc->rss1_kb = proc_status_kb(lg->server_pid, "VmRSS");
    lg_log(lg, "  %d sockets connected, authenticated and subscribed in %.2f s\n", lg->n_users,
           (double)(now - sc->t_connect0) / 1e9);
  }
}

void scen_conns_on_ack(struct lg *lg, struct conn *c, json_t *root) {
  json_t *seq = json_object_get(json_object_get(root, "msg"), "seq");
  int64_t *a = &lg->sc->acked_seq[c->group];
  if (json_is_integer(seq) && json_integer_value(seq) > *a)
    *a = json_integer_value(seq);
}

/* --- storm ----------------------------------------------------------------------------------- */

static int is_sender(const struct lg *lg, const struct conn *c) {
  return c->idx == lg->groups[c->group].first;
}

static void storm_enqueue(struct scen_conns *sc, struct lg *lg, int idx) {
  sc->queue[(sc->q_head + sc->q_n) % lg->n_users] = idx;
  sc->q_n++;
}

static void storm_drop(struct lg *lg, uint64_t now) {
  struct scen_conns *sc = lg->sc;
  sc->storm_started = 1;
  sc->t_drop = now;
  for (int i = 0; i < lg->n_users; i++) {
    struct conn *c = &lg->conns[i];
    if (is_sender(lg, c) || c->state != CONN_OPEN)
      continue;
    /* A RST rather than a FIN: the server learns of it as of a dead network, and neither side
     * keeps the port in TIME_WAIT. */
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) {
      struct linger lin = {1, 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
    }
    c->closed_by_us = 1;
    ws_conn_abort(c);
    lg_on_ws_down(c, "storm");
    sc->per[i].state = SC_DOWN;
    sc->per[i].retry_at = 0; /* at once: the handle is closed by the next tick */
    storm_enqueue(sc, lg, i);
    sc->dropped++;
  }
  lg_log(lg, "  storm: dropped %d sockets at once; %d senders keep sending\n", sc->dropped,
         lg->n_order);
}

/* Starts a new connection on c, whose previous handle closed in an earlier loop turn. */
static void storm_attempt(struct lg *lg, struct conn *c) {
  struct scen_conns *sc = lg->sc;
  c->closed_by_us = c->down_counted = c->in_recv = c->was_open = 0;
  c->busy = c->writing = c->close_sent = 0;
  c->in = NULL;
  c->in_len = 0;
  c->frame_off = 0;
  c->msg_op = 0;
  c->ctl_len = 0;
  c->outstanding = 0;
  sc->per[c->idx].state = SC_CONNECTING;
  sc->per[c->idx].attempts++;
  sc->attempts++;
  sc->inflight++;
  ws_conn_start(c); /* lg_on_ws_open sends auth; its reply comes to scen_conns_on_reply */
}

static void storm_pump(struct lg *lg, uint64_t now) {
  struct scen_conns *sc = lg->sc;
  int n = sc->q_n;
  for (int k = 0; k < n && sc->inflight < lg->storm_conc; k++) {
    int idx = sc->queue[sc->q_head];
    sc->q_head = (sc->q_head + 1) % lg->n_users;
    sc->q_n--;
    if (sc->per[idx].retry_at > now) {
      storm_enqueue(sc, lg, idx); /* not yet: to the back */
      continue;
    }
    storm_attempt(lg, &lg->conns[idx]);
  }
}

void scen_conns_tick(struct lg *lg, uint64_t now) {
  struct scen_conns *sc = lg->sc;
  if (lg->scen != SCEN_STORM || sc->storm_done)
    return;
  if (!sc->storm_started) {
    if (now >= lg->t_meas0)
      storm_drop(lg, now);
    return;
  }
  storm_pump(lg, now);
}

/* A socket in the storm went down before it was live again: try again later. Returns 1 if c was
 * one (loadgen.c then does not count it as a close). */
int scen_conns_on_down(struct lg *lg, struct conn *c) {
  struct scen_conns *sc = lg->sc;
  if (!sc || lg->scen != SCEN_STORM)
    return 0;
  struct sc_conn *p = &sc->per[c->idx];
  if (p->state != SC_CONNECTING && p->state != SC_RESUMING)
    return 0;
  sc->inflight--;
  if (p->attempts >= SC_MAX_ATTEMPTS) {
    sc->failed++;
    p->state = SC_NONE;
    fprintf(stderr, "loadgen: storm: %s gave up after %d attempts\n", lg->users[c->idx].name,
            p->attempts);
    return 0;
  }
  uint64_t backoff = SC_RETRY_MIN_MS << (p->attempts < 6 ? p->attempts - 1 : 5);
  if (backoff > SC_RETRY_MAX_MS)
    backoff = SC_RETRY_MAX_MS;
  p->state = SC_DOWN;
  p->retry_at = uv_hrtime() + (backoff / 2 + lg_rand() % (backoff / 2 + 1)) * 1000000ull;
  storm_enqueue(sc, lg, c->idx);
  return 1;
}

/* The resume reply: replayed messages go through the same seq check as live ones. */
static void storm_resumed(struct lg *lg, struct conn *c, json_t *root, int ok) {
  struct scen_conns *sc = lg->sc;
  struct sc_conn *p = &sc->per[c->idx];
  uint64_t now = lg->now_recv;
  if (!ok) {
    sc->failed++;
    p->state = SC_NONE;
    sc->inflight--;
    return;
  }
  if (json_is_true(json_object_get(root, "reset")))
    sc->resets++; /* the server could not replay everything: messages were lost to this socket */
  json_t *msgs = json_object_get(root, "msgs"), *m;
  size_t i;
  json_array_foreach(msgs, i, m) {
    json_t *js = json_object_get(m, "seq");
    int64_t seq = json_is_integer(js) ? (int64_t)json_integer_value(js) : -1;
    sc->replayed++;
    lg->tot.deliveries++;
    if (now >= lg->t_meas0 && now < lg->t_meas1)
      lg->win.deliveries++;
    if (c->expect_seq < 0 || seq < 0)
      continue;
    if (seq == c->expect_seq)
      c->expect_seq++;
    else if (seq > c->expect_seq) {
      lg->seq_gaps += (uint64_t)(seq - c->expect_seq);
      c->expect_seq = seq + 1;
    } else {
      lg->seq_dups++;
    }
  }
  json_t *ls = json_object_get(root, "lastSeq");
  if (json_is_integer(ls) && c->expect_seq >= 0 && json_integer_value(ls) + 1 != c->expect_seq) {
    /* The replay must end at lastSeq: live events continue from lastSeq + 1. */
    int64_t want = (int64_t)json_integer_value(ls) + 1;
    if (want > c->expect_seq)
      lg->seq_gaps += (uint64_t)(want - c->expect_seq);
    c->expect_seq = want;
  }
  p->state = SC_LIVE;
  sc->inflight--;
  sc->live_again++;
  hist_record(&sc->recover, now - sc->t_drop);
  if (sc->live_again + sc->failed == sc->dropped) {
    sc->storm_done = 1;
    sc->t_all_live = now;
    lg_log(lg, "  storm: all %d sockets live again %.3f s after the drop (%d attempts)\n",
           sc->live_again, (double)(now - sc->t_drop) / 1e9, sc->attempts);
  }
}

int scen_conns_on_reply(struct lg *lg, struct conn *c, int kind, json_t *root, int ok) {
  struct scen_conns *sc = lg->sc;
  if (!sc || lg->scen != SCEN_STORM)
    return 0;
  struct sc_conn *p = &sc->per[c->idx];
  if (kind == REQ_AUTH && p->state == SC_CONNECTING) {
    char rest[160];
    if (!ok) {
      sc->failed++;
      p->state = SC_NONE;
      sc->inflight--;
      return 1;
    }
    p->state = SC_RESUMING;
    snprintf(rest, sizeof(rest), "\"chat\":\"%s\",\"since\":%lld", lg->groups[c->group].slug,
             (long long)(c->expect_seq > 0 ? c->expect_seq - 1 : 0));
    if (lg_req_send(c, REQ_SUB, "sub", rest) != 0) {
      ws_conn_abort(c);
      lg_on_ws_down(c, "could not send sub");
    }
    return 1;
  }
  if (kind == REQ_SUB && p->state == SC_RESUMING) {
    storm_resumed(lg, c, root, ok);
    return 1;
  }
  return 0;
}

int scen_conns_settled(const struct lg *lg) {
  const struct scen_conns *sc = lg->sc;
  if (!sc || lg->scen != SCEN_STORM)
    return 1;
  return !sc->storm_started || sc->storm_done;
}

/* Storm: every socket must hold its chat's newest acknowledged message. */
static void storm_check(struct lg *lg) {
  struct scen_conns *sc = lg->sc;
  sc->behind = 0;
  for (int i = 0; i < lg->n_users; i++) {
    struct conn *c = &lg->conns[i];
    int64_t a = sc->acked_seq[c->group];
    if (a >= 0 && c->expect_seq <= a)
      sc->behind++;
  }
}

static double ms(uint64_t ns) {
  return (double)ns / 1e6;
}

int scen_conns_report(struct lg *lg) {
  struct scen_conns *sc = lg->sc;
  int n = lg->n_users, bad = 0;
  if (lg->scen == SCEN_CONNS) {
    long rss2 = lg->srv_rss_kb;
    printf("  connections: %d sockets (%d accounts, chats of %d): connect+auth %.2f s, then "
           "create/join/sub %.2f s, %.2f s in all\n",
           n, lg->n_accounts, lg->chat_size < n ? lg->chat_size : n,
           (double)(sc->t_connected - sc->t_connect0) / 1e9,
           (double)(sc->t_subscribed - sc->t_connected) / 1e9,
           (double)(sc->t_subscribed - sc->t_connect0) / 1e9);
    if (lg->server_pid > 0 && sc->rss0_kb > 0 && rss2 > 0)
      printf("  server VmRSS: %.1f MB before connecting, %.1f MB all subscribed, %.1f MB after "
             "%.0f s idle; per connection %.2f KB ((end - start) / N), %.2f KB (VmRSS / N)\n",
             sc->rss0_kb / 1024.0, sc->rss1_kb / 1024.0, rss2 / 1024.0, lg->duration,
             (double)(rss2 - sc->rss0_kb) / n, (double)rss2 / n);
    printf("  probes: %d senders at %.0f msgs/s in total, their chats' %d members receiving, "
           "while the other sockets idle: p50/p99/max %.3f/%.3f/%.3f ms over %llu deliveries\n",
           lg->n_order, lg->rate, lg->n_order * (lg->chat_size < n ? lg->chat_size : n),
           ms(hist_quantile(&lg->lat, 0.5)), ms(hist_quantile(&lg->lat, 0.99)), ms(lg->lat.max),
           (unsigned long long)lg->lat.count);
    if (lg->lat.count == 0)
      bad++;
  } else if (lg->scen == SCEN_STORM) {
    storm_check(lg);
    printf("  storm: %d sockets dropped at once (RST), %d live again, %d failed; all live %.3f s "
           "after the drop; per socket p50/p99/max %.3f/%.3f/%.3f ms; %d connection attempts\n",
           sc->dropped, sc->live_again, sc->failed,
           sc->storm_done ? (double)(sc->t_all_live - sc->t_drop) / 1e9 : -1.0,
           ms(hist_quantile(&sc->recover, 0.5)), ms(hist_quantile(&sc->recover, 0.99)),
           ms(sc->recover.max), sc->attempts);
    printf("  storm loss check: %llu messages replayed by resumes, resets %llu, sockets missing "
           "their chat's newest acknowledged message %llu, seq gaps %llu, seq duplicates %llu\n",
           (unsigned long long)sc->replayed, (unsigned long long)sc->resets,
           (unsigned long long)sc->behind, (unsigned long long)lg->seq_gaps,
           (unsigned long long)lg->seq_dups);
    if (!sc->storm_started || !sc->storm_done || sc->failed || sc->resets || sc->behind)
      bad++;
  }
  fflush(stdout);
  return bad;
}
