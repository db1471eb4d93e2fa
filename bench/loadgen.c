/* loadgen.c - load generator for Parley: options, set-up, pacing, measurement and report.
 *
 * A run goes through fixed phases, each bounded in time: sign up the users (or reuse them from a
 * users file), open one WebSocket per user and authenticate it, create one public chat per group
 * (the group's first user), join it (everyone else), subscribe everyone, then send for
 * --warmup + --duration seconds, drain for at most --drain seconds, and close.
 *
 * Every message body starts with "lgt=<CLOCK_MONOTONIC ns>" taken just before the frame is
 * queued, so any receiver computes send-to-receive latency from its `msg` event. Only the
 * messages sent inside the measured window are sampled; deliveries/s counts `msg` events that
 * arrive inside it. `msg` events are recognised and read by a byte scan (the server's replies and
 * other events go through jansson); --strict parses every frame with jansson instead.
 *
 * Scenarios:
 *   chat       N users in chats of K; R msgs/s in total, spread evenly over the users.
 *   broadcast  one chat with all N users; user 0 sends, keeping --window sends unacknowledged
 *              (or at --rate msgs/s), and the others count deliveries.
 *   typing     the chat population; R typing starts/s in total, spread evenly: each start is a
 *              `typing` on:true, followed by on:false --typing-hold later. The latency is from
 *              the on:true to the `typing` event in which another member of the chat first sees
 *              the typer listed (typing events are byte-scanned too).
 */
#include "loadgen.h"
#include "wire.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NS 1000000000ull
#define RING_DEFAULT 64u       /* outstanding requests per connection */
#define MAX_PRINTED_ERRORS 10  /* error replies and closes echoed to stderr */

/* ------------------------------------------------------------------------------------------ */
/* small helpers */

int buf_append(struct buf *b, const void *p, size_t n, size_t limit) {
  if (b->len + n > limit)
    return -1;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n)
      cap *= 2;
    char *nb = realloc(b->base, cap);
    if (!nb)
      return -1;
    b->base = nb;
    b->cap = cap;
  }
  memcpy(b->base + b->len, p, n);
  b->len += n;
  return 0;
}

void buf_dispose(struct buf *b) {
  free(b->base);
  b->base = NULL;
  b->len = b->cap = 0;
}

static uint64_t rand_state = 0x9E3779B97F4A7C15ull;

uint64_t lg_rand(void) {
  uint64_t x = rand_state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rand_state = x;
  return x * 0x2545F4914F6CDD1Dull;
}

static double cpu_seconds_self(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* utime + stime of a process, in clock ticks; 0 if it cannot be read. */
static unsigned long long proc_cpu_ticks(int pid) {
  char path[64], buf[2048];
  snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return 0;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
  unsigned long long ut = 0, st = 0;
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
    return 0;
  return ut + st;
}

/* A "Vm...:" line of /proc/pid/status in kB, or -1. */
long proc_status_kb(int pid, const char *field) {
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  long v = -1;
  size_t fl = strlen(field);
  while (fgets(line, sizeof(line), f)) {
    if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
      v = strtol(line + fl + 1, NULL, 10);
      break;
    }
  }
  fclose(f);
  return v;
}

static const char *phase_name(enum phase ph) {
  static const char *names[] = {"signup", "connect+auth", "chat.create", "chat.join", "sub",
                                "run", "drain", "close", "done"};
  return names[ph];
}

void lg_log(struct lg *lg, const char *fmt, ...) {
  if (lg->quiet)
    return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
}

/* ------------------------------------------------------------------------------------------ */
/* requests */

/* Reserves a ring slot for a new request. Returns its id, or 0 if the ring is full. */
static uint64_t req_take(struct conn *c, enum req_kind kind, uint64_t t, int measured) {
  uint64_t id = ++c->next_id;
  struct pending *p = &c->ring[id & c->ring_mask];
  if (p->id != 0) {
    c->next_id--;
    return 0;
  }
  p->id = id;
  p->t_send = t;
  p->kind = (uint8_t)kind;
  p->measured = (uint8_t)measured;
  c->outstanding++;
  return id;
}

static void req_release(struct conn *c, uint64_t id) {
  struct pending *p = &c->ring[id & c->ring_mask];
  if (p->id == id) {
    p->id = 0;
    c->outstanding--;
  }
}

/* Sends {"id":<id>,"op":<op>,<rest>}. Returns 0 or -1 (ring full or connection down). */
static int req_send(struct conn *c, enum req_kind kind, const char *op, const char *rest) {
  uint64_t id = req_take(c, kind, uv_hrtime(), 0);
  if (!id)
    return -1;
  char msg[1024];
  int n = snprintf(msg, sizeof(msg), "{\"id\":%llu,\"op\":\"%s\"%s%s}", (unsigned long long)id, op,
                   rest[0] ? "," : "", rest);
  if (n <= 0 || (size_t)n >= sizeof(msg) || ws_conn_send_text(c, msg, (size_t)n) != 0) {
    req_release(c, id);
    return -1;
  }
  return 0;
}

int lg_req_send(struct conn *c, enum req_kind kind, const char *op, const char *rest) {
  return req_send(c, kind, op, rest);
}

uint64_t lg_req_take(struct conn *c, enum req_kind kind, uint64_t t, int measured) {
  return req_take(c, kind, t, measured);
}

void lg_req_release(struct conn *c, uint64_t id) { req_release(c, id); }

/* One msg.send from c, timestamped in its body. */
static void send_one(struct lg *lg, struct conn *c) {
  if (lg->wire) {
    wire_peer_send(lg, c);
    return;
  }
  if (c->state != CONN_OPEN) {
    lg->tot.skipped++;
    return;
  }
  uint64_t t = uv_hrtime();
  int measured = t >= lg->t_meas0 && t < lg->t_meas1;
  uint64_t id = req_take(c, REQ_SEND, t, measured);
  if (!id) {
    lg->tot.skipped++;
    if (measured)
      lg->win.skipped++;
    return;
  }
  char msg[1024 + 17000];
  int n = snprintf(msg, sizeof(msg),
                   "{\"id\":%llu,\"op\":\"msg.send\",\"chat\":\"%s\",\"body\":\"lgt=%llu u%d n%llu%s\","
                   "\"clientMsgId\":\"%s.%d.%llu\"}",
                   (unsigned long long)id, lg->groups[c->group].slug, (unsigned long long)t,
                   c->idx, (unsigned long long)(c->nsent + 1), lg->pad, lg->runid, c->idx,
                   (unsigned long long)(c->nsent + 1));
  c->nsent++;
  if (n <= 0 || (size_t)n >= sizeof(msg) || ws_conn_send_text(c, msg, (size_t)n) != 0) {
    req_release(c, id);
    lg->tot.skipped++;
    return;
  }
  lg->tot.sends++;
  if (measured)
    lg->win.sends++;
  lg->send_inflight++;
}

/* One `typing` request from c. An on:true is timestamped (c->typ_t0, taken just before the frame
 * is queued) and schedules c's on:false --typing-hold later. Returns 0, or -1 if not sent. */
static int typing_send(struct lg *lg, struct conn *c, int on) {
  uint64_t t = uv_hrtime();
  int measured = on && t >= lg->t_meas0 && t < lg->t_meas1;
  uint64_t id = 0;
  if (c->state == CONN_OPEN)
    id = req_take(c, on ? REQ_TYPING_ON : REQ_TYPING_OFF, t, measured);
  if (!id) {
    if (on) {
      lg->tot.skipped++;
      if (measured)
        lg->win.skipped++;
    }
    return -1;
  }
  char msg[256];
  int n = snprintf(msg, sizeof(msg), "{\"id\":%llu,\"op\":\"typing\",\"chat\":\"%s\",\"on\":%s}",
                   (unsigned long long)id, lg->groups[c->group].slug, on ? "true" : "false");
  if (on)
    c->typ_t0 = t;
  if (n <= 0 || (size_t)n >= sizeof(msg) || ws_conn_send_text(c, msg, (size_t)n) != 0) {
    req_release(c, id);
    if (on)
      lg->tot.skipped++;
    return -1;
  }
  lg->send_inflight++;
  if (!on) {
    lg->typ_stops_sent++;
    return 0;
  }
  lg->tot.sends++;
  if (measured)
    lg->win.sends++;
  c->typ_on = 1;
  struct typ_stop *st = &lg->stops[(lg->stops_head + lg->stops_n) % lg->n_users];
  st->idx = c->idx;
  st->due = t + (uint64_t)(lg->typing_hold * 1e9);
  lg->stops_n++; /* never more than n_users: a user is queued only while typ_on */
  return 0;
}

/* Sends the on:false requests that are due (all of them when `all`). */
static void typing_stops_due(struct lg *lg, uint64_t now, int all) {
  while (lg->stops_n > 0 && (all || lg->stops[lg->stops_head].due <= now)) {
    struct conn *c = &lg->conns[lg->stops[lg->stops_head].idx];
    lg->stops_head = (lg->stops_head + 1) % lg->n_users;
    lg->stops_n--;
    c->typ_on = 0;
    typing_send(lg, c, 0);
  }
}

static void typing_start(struct lg *lg, struct conn *c) {
  if (c->typ_on) { /* still typing from its previous turn: the hold is too long for the pacing */
    lg->tot.skipped++;
    return;
  }
  typing_send(lg, c, 1);
}

/* ------------------------------------------------------------------------------------------ */
/* phases */

static void phase_begin(struct lg *lg, enum phase ph);
static void run_finish(struct lg *lg);

static void lg_abort(struct lg *lg, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "loadgen: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  lg->exit_code = 1;
  /* Nothing is measured after a failed set-up: leave the loop now; the process exits and the
   * kernel closes the sockets. */
  uv_stop(lg->loop);
}

static int step_start(struct lg *lg, int idx) {
  struct conn *c = &lg->conns[idx];
  struct group *g = &lg->groups[c->group];
  char rest[512];
  c->busy = 1;
  if (lg->wire)
    return wire_peer_step(lg, c);
  switch (lg->phase) {
  case PH_CONNECT:
    ws_conn_start(c); /* completes in the auth reply or lg_on_ws_down */
    return c->state == CONN_CLOSED ? -1 : 0;
  case PH_CREATE:
    snprintf(rest, sizeof(rest), "\"title\":\"bench %s group %d\",\"isPublic\":true", lg->runid,
             c->group);
    return req_send(c, REQ_CREATE, "chat.create", rest);
  case PH_JOIN:
    snprintf(rest, sizeof(rest), "\"chat\":\"%s\"", g->slug);
    return req_send(c, REQ_JOIN, "chat.join", rest);
  case PH_SUB:
    snprintf(rest, sizeof(rest), "\"chat\":\"%s\"", g->slug);
    return req_send(c, REQ_SUB, "sub", rest);
  default:
    return -1;
  }
}

/* Starts set-up steps up to the phase's concurrency; moves on when all are done. */
static void work_pump(struct lg *lg) {
  enum phase ph = lg->phase;
  if (lg->exit_code != 0 || ph < PH_CONNECT || ph > PH_SUB)
    return; /* aborted: callbacks of this loop turn still arrive, and start nothing */
  int cap = ph == PH_CONNECT ? lg->connect_conc : lg->setup_conc;
  while (lg->work_inflight < cap && lg->work_pos < lg->work_n) {
    int idx = lg->work[lg->work_pos++];
    lg->work_inflight++;
    int r = step_start(lg, idx);
    if (lg->phase != ph)
      return; /* a synchronous failure finished the phase through step_done */
    if (r != 0) {
      if (lg->conns[idx].busy) { /* not yet counted by lg_on_ws_down */
        lg->conns[idx].busy = 0;
        lg->work_inflight--;
        lg->work_done++;
        lg->work_failed++;
      }
    }
  }
  if (lg->phase == ph && lg->work_done == lg->work_n) {
    if (lg->work_failed > 0) {
      lg_abort(lg, "%s: %d of %d failed (see messages above)%s", phase_name(ph), lg->work_failed,
               lg->work_n,
               ph == PH_CONNECT && lg->users_file
                   ? "; if auth said unauthorized, the tokens in --users-file may belong to "
                     "another server or data directory: delete the file"
                   : "");
      return;
    }
    lg_log(lg, "  %-13s %6d done in %.2f s\n", phase_name(ph), lg->work_n,
           (double)(uv_hrtime() - lg->t_phase) / 1e9);
    phase_begin(lg, (enum phase)(ph + 1));
  }
}

static void step_done(struct lg *lg, struct conn *c, int ok) {
  if (!c->busy)
    return;
  c->busy = 0;
  lg->work_inflight--;
  lg->work_done++;
  if (!ok)
    lg->work_failed++;
  work_pump(lg);
}

void lg_step_done(struct conn *c, int ok) { step_done(c->lg, c, ok); }

static void on_signup_done(struct lg *lg, int idx, int ok) {
  lg->work_done++;
  if (!ok) {
    lg->work_failed++;
    return;
  }
  if (lg->users_file) {
    FILE *f = fopen(lg->users_file, "a");
    if (f) {
      fprintf(f, "%s %s\n", lg->users[idx].name, lg->users[idx].token);
      fclose(f);
    }
  }
  if (!lg->quiet && lg->work_done % 100 == 0)
    fprintf(stderr, "  signup        %6d/%d\n", lg->work_done, lg->work_n);
}

static void on_signup_finished(struct lg *lg) {
  if (lg->work_failed > 0) {
    lg_abort(lg, "signup: %d of %d failed", lg->work_failed, lg->work_n);
    return;
  }
  lg_log(lg, "  %-13s %6d done in %.2f s\n", "signup", lg->work_n,
         (double)(uv_hrtime() - lg->t_phase) / 1e9);
  phase_begin(lg, PH_CONNECT);
}

static void on_deadline(uv_timer_t *t) {
  struct lg *lg = t->data;
  if (lg->phase == PH_CLOSE) {
    /* Connections that did not finish the close handshake in time are cut. */
    for (int i = 0; i < lg->n_users; i++)
      if (lg->conns[i].state != CONN_CLOSED && lg->conns[i].state != CONN_IDLE) {
        if (lg->wire)
          lg->wire->abort(&lg->conns[i]);
        else
          ws_conn_abort(&lg->conns[i]);
        lg_on_ws_down(&lg->conns[i], "close timeout");
      }
    run_finish(lg);
    return;
  }
  lg_abort(lg, "%s timed out after %.0f s: %d of %d done", phase_name(lg->phase),
           lg->setup_timeout, lg->work_done, lg->work_n);
}

static void sample_window_start(struct lg *lg) {
  if (lg->server_pid > 0)
    lg->srv_ticks0 = proc_cpu_ticks(lg->server_pid);
  lg->lg_cpu0 = cpu_seconds_self();
}

static void sample_window_end(struct lg *lg) {
  if (lg->server_pid > 0) {
    lg->srv_ticks1 = proc_cpu_ticks(lg->server_pid);
    lg->srv_rss_kb = proc_status_kb(lg->server_pid, "VmRSS");
    lg->srv_hwm_kb = proc_status_kb(lg->server_pid, "VmHWM");
  }
  lg->lg_cpu1 = cpu_seconds_self();
}

static void progress(struct lg *lg, uint64_t now) {
  if (lg->quiet || now - lg->t_last_progress < NS)
    return;
  static struct counters last;
  double dt = (double)(now - lg->t_last_progress) / 1e9;
  if (lg->t_last_progress == 0)
    dt = 0;
  lg->t_last_progress = now;
  const char *what = now < lg->t_meas0 ? "warmup" : lg->phase == PH_RUN ? "measure" : "drain";
  if (dt > 0)
    fprintf(stderr,
            "  %-7s %5.1fs  sends/s %7.0f  acks/s %7.0f  deliveries/s %8.0f  p99/max ms %7.2f %7.2f  "
            "errors %llu  closes %llu\n",
            what, (double)(now - lg->t_load) / 1e9, (double)(lg->tot.sends - last.sends) / dt,
            (double)(lg->tot.acks - last.acks) / dt,
            (double)(lg->tot.deliveries - last.deliveries) / dt,
            (double)hist_quantile(&lg->lat_sec, 0.99) / 1e6, (double)lg->lat_sec.max / 1e6,
            (unsigned long long)(lg->tot.err_replies + lg->tot.rate_limited),
            (unsigned long long)lg->closes);
  last = lg->tot;
  hist_init(&lg->lat_sec);
}

/* The offered rate at `now`: --rate, or with --schedule the step `now` falls in (the warm-up
 * runs at the first step's rate). */
static double rate_at(const struct lg *lg, uint64_t now) {
  if (lg->n_steps == 0)
    return lg->rate;
  if (now < lg->t_meas0)
    return lg->step_rate[0];
  double t = (double)(now - lg->t_meas0) / 1e9;
  for (int i = 0; i < lg->n_steps; i++) {
    if (t < lg->step_secs[i])
      return lg->step_rate[i];
    t -= lg->step_secs[i];
  }
  return 0;
}

/* Sends due from the start of the load to `now`: the integral of rate_at(). */
static uint64_t sends_due(const struct lg *lg, uint64_t now) {
  if (lg->n_steps == 0)
    return (uint64_t)((double)(now - lg->t_load) * lg->rate / 1e9);
  double due = 0;
  uint64_t edge = lg->t_meas0 < now ? lg->t_meas0 : now;
  due += (double)(edge - lg->t_load) / 1e9 * lg->step_rate[0];
  double t = now > lg->t_meas0 ? (double)(now - lg->t_meas0) / 1e9 : 0;
  for (int i = 0; i < lg->n_steps && t > 0; i++) {
    double d = t < lg->step_secs[i] ? t : lg->step_secs[i];
    due += d * lg->step_rate[i];
    t -= d;
  }
  return (uint64_t)due;
}

/* One --report-every row on stdout: what the interval offered, what came back, how fast, and
 * what the server held (RSS, and the WAL's size with --wal-file). A soak shows drift here; an
 * overload shows the refusals and the recovery. */
static void report_row(struct lg *lg, uint64_t now) {
  static int header;
  double dt = lg->report_every;
  if (!header++)
    printf("%8s %8s %8s %8s %8s %8s %9s %8s %8s %8s %9s %9s %8s %8s %7s\n", "t_s", "offered",
           "sends/s", "acks/s", "refused", "errors", "deliv/s", "p50ms", "p99ms", "maxms",
           "reply99ms", "replymaxms", "inflight", "rssMB", "walMB");
  long rss = lg->server_pid > 0 ? proc_status_kb(lg->server_pid, "VmRSS") : -1;
  double wal = -1;
  struct stat st;
  if (lg->wal_file)
    wal = stat(lg->wal_file, &st) == 0 ? (double)st.st_size / 1048576.0 : 0;
  uint64_t refused = lg->tot.rate_limited + lg->unavailable;
  printf("%8.0f %8.0f %8.0f %8.0f %8llu %8llu %9.0f %8.2f %8.2f %8.2f %9.2f %9.2f %8lld %8.1f "
         "%7.1f\n",
         (double)(now - lg->t_load) / 1e9, rate_at(lg, now - (uint64_t)(dt * 0.5e9)),
         (double)(lg->tot.sends - lg->rep_last.sends) / dt,
         (double)(lg->tot.acks - lg->rep_last.acks) / dt,
         (unsigned long long)(refused - lg->rep_refused_last),
         (unsigned long long)(lg->tot.err_replies - lg->rep_last.err_replies),
         (double)(lg->tot.deliveries - lg->rep_last.deliveries) / dt,
         (double)hist_quantile(&lg->rep_lat, 0.50) / 1e6,
         (double)hist_quantile(&lg->rep_lat, 0.99) / 1e6, (double)lg->rep_lat.max / 1e6,
         (double)hist_quantile(&lg->rep_reply, 0.99) / 1e6, (double)lg->rep_reply.max / 1e6,
         (long long)lg->send_inflight, rss >= 0 ? rss / 1024.0 : -1.0, wal);
  fflush(stdout);
  lg->rep_last = lg->tot;
  lg->rep_refused_last = refused;
  hist_init(&lg->rep_lat);
  hist_init(&lg->rep_reply);
}

static void on_tick(uv_timer_t *t) {
  struct lg *lg = t->data;
  uint64_t now = uv_hrtime();
  if (lg->phase == PH_RUN) {
    if (!lg->meas_started && now >= lg->t_meas0) {
      lg->meas_started = 1;
      sample_window_start(lg);
    }
    if (lg->sc)
      scen_conns_tick(lg, now);
    if (now >= lg->t_meas1) {
      sample_window_end(lg);
      lg->phase = PH_DRAIN;
      lg->t_drain_end = now + (uint64_t)(lg->drain * 1e9);
    } else if (lg->rate > 0 && lg->n_order > 0) {
      uint64_t due = sends_due(lg, now);
      /* If the loop stalled, do not fire the whole backlog at once: more than 100 ms of sends is
       * counted as skipped, so a stall shows in the report instead of as a burst. */
      uint64_t cap = (uint64_t)(rate_at(lg, now) / 10.0) + 1;
      if (due > lg->paced + cap) {
        lg->tot.skipped += due - lg->paced - cap;
        lg->paced = due - cap;
      }
      if (lg->scen == SCEN_TYPING)
        typing_stops_due(lg, now, 0); /* stops first: a chat's typers are then at their fewest */
      while (lg->paced < due) {
        lg->paced++;
        struct conn *c = &lg->conns[lg->order[lg->rr++ % (uint64_t)lg->n_order]];
        if (lg->scen == SCEN_TYPING)
          typing_start(lg, c);
        else
          send_one(lg, c);
      }
      if (lg->scen == SCEN_REACTIONS)
        scen_react_tick(lg, now);
    }
  }
  if (lg->phase == PH_DRAIN) {
    int settled;
    if (lg->scen == SCEN_TYPING) {
      /* Everyone stops typing (a typer's on:false still comes after its hold). */
      typing_stops_due(lg, now, 0);
      settled = lg->stops_n == 0 && lg->send_inflight == 0 && lg->typ_nonempty == 0 &&
                lg->typ_seen + lg->typ_hidden >= lg->typ_expected;
    } else {
      settled = lg->send_inflight == 0 && lg->tot.deliveries >= lg->expected;
    }
    if (lg->sc && !scen_conns_settled(lg))
      settled = 0;
    if (lg->sc && lg->phase == PH_DRAIN)
      scen_conns_tick(lg, now); /* storm reconnects still in progress */
    if (settled || now >= lg->t_drain_end) {
      if (lg->scen == SCEN_TYPING)
        typing_stops_due(lg, now, 1);
      phase_begin(lg, PH_CLOSE);
    }
  }
  if (lg->phase == PH_RUN || lg->phase == PH_DRAIN) {
    progress(lg, now);
    if (lg->report_every > 0 && now >= lg->t_next_report) {
      if (lg->t_next_report)
        report_row(lg, now);
      lg->t_next_report = now + (uint64_t)(lg->report_every * 1e9);
    }
  }
}

static void timers_closed(uv_handle_t *h) { (void)h; }

static void run_finish(struct lg *lg) {
  if (lg->phase == PH_DONE)
    return;
  lg->phase = PH_DONE;
  uv_close((uv_handle_t *)&lg->tick, timers_closed);
  uv_close((uv_handle_t *)&lg->deadline, timers_closed);
}

static int idmap_cmp(const void *a, const void *b) {
  const struct id_map *x = a, *y = b;
  return x->id < y->id ? -1 : x->id > y->id;
}

/* User id -> index, for the typers named in `typing` events. */
static void idmap_build(struct lg *lg) {
  lg->n_idmap = 0;
  for (int i = 0; i < lg->n_users; i++)
    if (lg->conns[i].user_id > 0)
      lg->idmap[lg->n_idmap++] = (struct id_map){lg->conns[i].user_id, i};
  qsort(lg->idmap, (size_t)lg->n_idmap, sizeof(*lg->idmap), idmap_cmp);
}

static int idmap_find(const struct lg *lg, int64_t id) {
  int lo = 0, hi = lg->n_idmap;
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2;
    if (lg->idmap[mid].id < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < lg->n_idmap && lg->idmap[lo].id == id ? lg->idmap[lo].idx : -1;
}

int lg_user_index(const struct lg *lg, int64_t id) { return idmap_find(lg, id); }

static void phase_begin(struct lg *lg, enum phase ph) {
  if (lg->wire && (ph == PH_SIGNUP || ph == PH_SUB))
    ph = (enum phase)(ph + 1); /* peers: no accounts to sign up, joining is subscribing */
  /* Memory per connection: the server's RSS before the first connection and with everyone in. */
  if (ph == PH_CONNECT && lg->server_pid > 0)
    lg->srv_rss_idle_kb = proc_status_kb(lg->server_pid, "VmRSS");
  if (ph == PH_CONNECT)
    lg->t_setup0 = uv_hrtime();
  if (ph == PH_RUN)
    lg->t_setup1 = uv_hrtime();
  if (ph == PH_RUN && lg->server_pid > 0)
    lg->srv_rss_joined_kb = proc_status_kb(lg->server_pid, "VmRSS");
  lg->phase = ph;
  lg->t_phase = uv_hrtime();
  if (lg->sc)
    scen_conns_phase(lg, ph);
  lg->work_n = lg->work_pos = lg->work_inflight = lg->work_done = lg->work_failed = 0;
  if (ph <= PH_SUB)
    uv_timer_start(&lg->deadline, on_deadline, (uint64_t)(lg->setup_timeout * 1000), 0);
  switch (ph) {
  case PH_SIGNUP:
    for (int i = 0; i < lg->n_accounts; i++)
      if (!lg->users[i].token)
        lg->work[lg->work_n++] = i;
    if (lg->work_n == 0) {
      phase_begin(lg, PH_CONNECT);
      return;
    }
    lg_log(lg, "  signing up %d users (%d in flight)\n", lg->work_n, lg->signup_conc);
    signup_run(lg, lg->work, lg->work_n, lg->signup_conc, on_signup_done, on_signup_finished);
    return;
  case PH_CONNECT:
  case PH_SUB:
    for (int i = 0; i < lg->n_users; i++)
      lg->work[lg->work_n++] = i;
    break;
  case PH_CREATE:
    for (int g = 0; g < lg->n_groups; g++) {
      if (lg->chat[0])
        snprintf(lg->groups[g].slug, sizeof(lg->groups[g].slug), "%s", lg->chat);
      else
        lg->work[lg->work_n++] = lg->groups[g].first;
    }
    break;
  case PH_JOIN:
    for (int g = 0; g < lg->n_groups; g++)
      for (int j = lg->chat[0] ? 0 : 1; j < lg->groups[g].size; j++)
        lg->work[lg->work_n++] = lg->groups[g].first + j;
    break;
  case PH_RUN: {
    uv_timer_stop(&lg->deadline);
    if (lg->scen == SCEN_TYPING || lg->scen == SCEN_REACTIONS)
      idmap_build(lg);
    uint64_t now = uv_hrtime();
    lg->t_load = now;
    lg->t_meas0 = now + (uint64_t)(lg->warmup * 1e9);
    lg->t_meas1 = lg->t_meas0 + (uint64_t)(lg->duration * 1e9);
    lg->t_last_progress = now;
    lg_log(lg, "  load: %.1f s warm-up, %.1f s measured\n", lg->warmup, lg->duration);
    /* Window mode (closed loop): in broadcast user 0, in chat every user, keeps `window` sends
     * unacknowledged; each reply releases the next send. */
    if (lg->rate <= 0)
      for (int u = 0; u < (lg->scen == SCEN_CHAT ? lg->n_users : 1); u++)
        for (int i = 0; i < lg->window; i++)
          send_one(lg, &lg->conns[u]);
    uv_timer_start(&lg->tick, on_tick, 1, 1);
    return;
  }
  case PH_CLOSE:
    uv_timer_stop(&lg->tick);
    uv_timer_start(&lg->deadline, on_deadline, 2000, 0);
    for (int i = 0; i < lg->n_users; i++)
      if (lg->wire)
        lg->wire->close(&lg->conns[i]);
      else
        ws_conn_close(&lg->conns[i]);
    if (lg->live_conns == 0)
      run_finish(lg);
    return;
  default:
    return;
  }
  work_pump(lg);
}

/* ------------------------------------------------------------------------------------------ */
/* receiving */

void lg_on_ws_open(struct conn *c) {
  struct lg *lg = c->lg;
  lg->live_conns++;
  c->was_open = 1;
  if (lg->wire) {
    lg->wire->ws_open(c);
    return;
  }
  char rest[400];
  snprintf(rest, sizeof(rest), "\"token\":\"%s\"", lg->users[c->idx].token);
  if (req_send(c, REQ_AUTH, "auth", rest) != 0) {
    ws_conn_abort(c);
    lg_on_ws_down(c, "could not send auth");
  }
}

void lg_on_ws_close_frame(struct conn *c, unsigned code) {
  struct lg *lg = c->lg;
  if (c->closed_by_us || c->down_counted)
    return;
  c->down_counted = 1;
  lg->closes++;
  if (lg->errors_printed++ < MAX_PRINTED_ERRORS)
    fprintf(stderr, "loadgen: server closed %s's WebSocket with code %u during %s\n",
            lg->users[c->idx].name, code, phase_name(lg->phase));
}

void lg_on_ws_down(struct conn *c, const char *why) {
  struct lg *lg = c->lg;
  if (c->was_open) {
    c->was_open = 0;
    lg->live_conns--;
  }
  /* Sends still waiting for a reply on this socket will never get one. */
  for (uint32_t i = 0; i <= c->ring_mask; i++) {
    struct pending *p = &c->ring[i];
    if (p->id != 0 && (p->kind == REQ_SEND || p->kind == REQ_TYPING_ON ||
                       p->kind == REQ_TYPING_OFF || p->kind == REQ_REACT)) {
      lg->send_inflight--;
      lg->unacked++;
    }
    p->id = 0;
  }
  c->outstanding = 0;
  if (lg->scen == SCEN_REACTIONS)
    scen_react_on_down(lg, c);
  if (lg->wire)
    wire_peer_down(lg, c);
  if (lg->sc && scen_conns_on_down(lg, c))
    return; /* a storm reconnect that failed: retried */
  if (!c->closed_by_us && !c->down_counted) {
    c->down_counted = 1;
    lg->closes++;
    if (lg->errors_printed++ < MAX_PRINTED_ERRORS)
      fprintf(stderr, "loadgen: %s's WebSocket went down during %s: %s\n", lg->users[c->idx].name,
              phase_name(lg->phase), why);
  }
  if (c->busy)
    step_done(lg, c, 0);
  if (lg->phase == PH_CLOSE && lg->live_conns == 0)
    run_finish(lg);
}

static void on_msg_event(struct lg *lg, struct conn *c, int64_t seq, uint64_t ts) {
  uint64_t now = lg->now_recv;
  lg->tot.deliveries++;
  if (now >= lg->t_meas0 && now < lg->t_meas1)
    lg->win.deliveries++;
  if (ts) {
    uint64_t d = now > ts ? now - ts : 0;
    if (seq > c->last_text_seq)
      c->last_text_seq = seq; /* a text message of the load: what reactions go on */
    if (ts >= lg->t_meas0 && ts < lg->t_meas1)
      hist_record(&lg->lat, d);
    if (!lg->quiet)
      hist_record(&lg->lat_sec, d);
    if (lg->report_every > 0)
      hist_record(&lg->rep_lat, d);
  }
  if (c->expect_seq >= 0 && seq >= 0) {
    if (seq == c->expect_seq) {
      c->expect_seq++;
    } else if (seq > c->expect_seq) {
      lg->seq_gaps += (uint64_t)(seq - c->expect_seq);
      c->expect_seq = seq + 1;
    } else {
      lg->seq_dups++;
    }
  }
}

void lg_count_delivery(struct conn *c, int64_t seq, uint64_t ts) {
  on_msg_event(c->lg, c, seq, ts);
}

static uint64_t parse_u64(const char *p, const char *end) {
  uint64_t v = 0;
  while (p < end && *p >= '0' && *p <= '9')
    v = v * 10 + (uint64_t)(*p++ - '0');
  return v;
}

/* First occurrence of the 4 bytes `k` in [p, end), or NULL. memchr on the first byte then one
 * compare: for haystacks of a few hundred bytes this is several times cheaper than glibc's
 * memmem, whose per-call set-up dominated the generator's profile at 2M deliveries/s. */
static const char *find4(const char *p, const char *end, const char k[4]) {
  while (end - p >= 4) {
    const char *q = memchr(p, k[0], (size_t)(end - p - 3));
    if (!q)
      return NULL;
    if (memcmp(q, k, 4) == 0)
      return q;
    p = q + 1;
  }
  return NULL;
}

/* The body's send timestamp, or 0. */
static uint64_t body_ts(const char *p, size_t n) {
  const char *m = find4(p, p + n, "lgt=");
  return m ? parse_u64(m + 4, p + n) : 0;
}

static const char *skip_ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
    p++;
  return p;
}

enum { EV_REPLY = -1, EV_OTHER = 0, EV_MSG = 1, EV_TYPING = 2 };

/* Byte scan of a frame. Returns EV_MSG for a msg event (seq and ts filled), EV_TYPING for a typing
 * event (read by scan_typing), EV_OTHER for another event, EV_REPLY for anything else. Sound for
 * this generator's traffic: the only strings we send are usernames, slugs and bodies without
 * quotes, so a quoted "ev" or "seq" can only be a key; a msg event has exactly one "seq" key
 * (msg.seq; the chat object's is "lastSeq"). */
static int scan_event(const char *p, size_t n, int64_t *seq, uint64_t *ts) {
  static const char msg_prefix[] = "{\"ev\":\"msg\"";
  static const char typing_prefix[] = "{\"ev\":\"typing\"";
  const char *end = p + n, *v;
  if (n > sizeof(msg_prefix) - 1 && memcmp(p, msg_prefix, sizeof(msg_prefix) - 1) == 0) {
    v = p + sizeof(msg_prefix) - 1; /* the server's own layout: no need to search */
  } else if (n > sizeof(typing_prefix) - 1 &&
             memcmp(p, typing_prefix, sizeof(typing_prefix) - 1) == 0) {
    return EV_TYPING;
  } else {
    const char *k = find4(p, end, "\"ev\"");
    if (!k)
      return EV_REPLY;
    v = skip_ws(k + 4, end);
    if (v >= end || *v != ':')
      return EV_REPLY;
    v = skip_ws(v + 1, end);
    if (end - v >= 8 && memcmp(v, "\"typing\"", 8) == 0)
      return EV_TYPING;
    if (end - v < 5 || memcmp(v, "\"msg\"", 5) != 0)
      return EV_OTHER;
    v = p; /* keys may come in any order: search everything */
  }
  *seq = -1;
  const char *s = find4(v, end, "seq\"");
  while (s && (s == p || s[-1] != '"'))
    s = find4(s + 1, end, "seq\"");
  if (s) {
    s = skip_ws(s + 4, end);
    if (s < end && *s == ':') {
      s = skip_ws(s + 1, end);
      if (s < end && *s >= '0' && *s <= '9')
        *seq = (int64_t)parse_u64(s, end);
    }
  }
  const char *t = find4(v, end, "lgt=");
  *ts = t ? parse_u64(t + 4, end) : 0;
  return EV_MSG;
}

/* A `typing` event: the chat, the ids of the typers it names, and whether it names them all. */
struct typ_ev {
  const char *chat;
  size_t chat_len;
  int n;
  int partial;           /* "others" > 0, or more typers named than TYP_TRACK */
  int64_t ids[TYP_TRACK];
};

/* Past the string whose opening quote is at p, or NULL. */
static const char *skip_str(const char *p, const char *end) {
  for (p++; p < end; p++) {
    if (*p == '\\')
      p++;
    else if (*p == '"')
      return p + 1;
  }
  return NULL;
}

/* Past a number, true, false or null. */
static const char *skip_scalar(const char *p, const char *end) {
  while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' &&
         *p != '\n' && *p != '\r')
    p++;
  return p;
}

/* Reads one object key at p (at its opening quote) and the colon after it; returns the value's
 * first byte, or NULL. */
static const char *scan_key(const char *p, const char *end, const char **k, size_t *kl) {
  const char *q = skip_str(p, end);
  if (!q)
    return NULL;
  *k = p + 1;
  *kl = (size_t)(q - 1 - (p + 1));
  q = skip_ws(q, end);
  if (q >= end || *q != ':')
    return NULL;
  return skip_ws(q + 1, end);
}

/* One user object of "users" at p ('{'): its "id" goes to t. Returns the byte after it, or NULL. */
static const char *scan_typer(const char *p, const char *end, struct typ_ev *t) {
  int64_t id = -1;
  for (p++;;) {
    p = skip_ws(p, end);
    if (p >= end)
      return NULL;
    if (*p == '}')
      break;
    if (*p == ',') {
      p++;
      continue;
    }
    const char *k;
    size_t kl;
    if (*p != '"' || !(p = scan_key(p, end, &k, &kl)) || p >= end)
      return NULL;
    if (kl == 2 && k[0] == 'i' && k[1] == 'd' && *p >= '0' && *p <= '9') {
      id = (int64_t)parse_u64(p, end);
      p = skip_scalar(p, end);
    } else if (*p == '"') {
      if (!(p = skip_str(p, end)))
        return NULL;
    } else if (*p == '{' || *p == '[') {
      return NULL; /* not the shape we know: jansson reads it */
    } else {
      p = skip_scalar(p, end);
    }
  }
  if (id < 0)
    return NULL;
  if (t->n < TYP_TRACK)
    t->ids[t->n++] = id;
  else
    t->partial = 1;
  return p + 1;
}

/* Byte scan of a typing event, {"ev":"typing","chat":S,"users":[{"id":N,...},...],"others":N}
 * with its keys in any order. Returns 0, or -1 if the frame has another shape (jansson then reads
 * it). Cheap: one pass over the bytes, no allocation. */
static int scan_typing(const char *p, size_t n, struct typ_ev *t) {
  const char *end = p + n;
  int have_users = 0;
  t->chat = NULL;
  t->chat_len = 0;
  t->n = 0;
  t->partial = 0;
  p = skip_ws(p, end);
  if (p >= end || *p != '{')
    return -1;
  for (p++;;) {
    p = skip_ws(p, end);
    if (p >= end)
      return -1;
    if (*p == '}')
      break;
    if (*p == ',') {
      p++;
      continue;
    }
    const char *k;
    size_t kl;
    if (*p != '"' || !(p = scan_key(p, end, &k, &kl)) || p >= end)
      return -1;
    if (kl == 4 && memcmp(k, "chat", 4) == 0 && *p == '"') {
      const char *q = skip_str(p, end);
      if (!q)
        return -1;
      t->chat = p + 1;
      t->chat_len = (size_t)(q - 1 - (p + 1));
      p = q;
    } else if (kl == 5 && memcmp(k, "users", 5) == 0 && *p == '[') {
      for (p++;;) {
        p = skip_ws(p, end);
        if (p >= end)
          return -1;
        if (*p == ']') {
          p++;
          break;
        }
        if (*p == ',') {
          p++;
          continue;
        }
        if (*p != '{' || !(p = scan_typer(p, end, t)))
          return -1;
      }
      have_users = 1;
    } else if (kl == 6 && memcmp(k, "others", 6) == 0 && *p >= '0' && *p <= '9') {
      if (parse_u64(p, end) > 0)
        t->partial = 1;
      p = skip_scalar(p, end);
    } else if (*p == '"') {
      if (!(p = skip_str(p, end)))
        return -1;
    } else if (*p == '{' || *p == '[') {
      return -1;
    } else {
      p = skip_scalar(p, end);
    }
  }
  return t->chat && have_users ? 0 : -1;
}

/* A typing event reached c. Every typer it names that the previous event on this socket did not
 * name has just started: sample now - the typer's on:true time, unless the typer is c's own user,
 * or the previous event left some typers unnamed ("others" > 0: the typer may have been one).
 *
 * Accounting: every subscriber of a chat gets the same events in the same order, so a start that
 * the typer's own socket sees listed is owed to each other member (chat size - 1 sightings or
 * hidden ones). A start that nobody sees is not a loss: the server merges changes within one loop
 * turn, and an on:true and on:false handled in the same turn (a server stall longer than the hold)
 * change nothing. */
static void on_typing_event(struct lg *lg, struct conn *c, const struct typ_ev *t) {
  uint64_t now = lg->now_recv;
  if (lg->scen != SCEN_TYPING)
    return; /* not measured (deliveries count msg events there) */
  lg->tot.deliveries++;
  if (now >= lg->t_meas0 && now < lg->t_meas1)
    lg->win.deliveries++;
  const struct group *g = &lg->groups[c->group];
  if (t->chat_len != strlen(g->slug) || memcmp(t->chat, g->slug, t->chat_len) != 0) {
    lg->typ_unexpected++; /* each socket subscribes to its own chat only */
    return;
  }
  if (t->partial)
    lg->typ_partial++;
  for (int i = 0; i < t->n; i++) {
    int64_t id = t->ids[i];
    int known = 0;
    for (int j = 0; j < c->typ_prev_n && !known; j++)
      known = c->typ_prev[j] == id;
    if (known)
      continue;
    int x = idmap_find(lg, id);
    if (x == c->idx) { /* the typer's own copy: the others are owed this start */
      lg->typ_listed++;
      lg->typ_expected += (uint64_t)(g->size - 1);
      continue;
    }
    if (x < 0 || lg->conns[x].group != c->group || lg->conns[x].typ_t0 == 0) {
      lg->typ_unexpected++;
      continue;
    }
    if (c->typ_prev_partial) {
      lg->typ_hidden++;
      continue;
    }
    lg->typ_seen++;
    uint64_t t0 = lg->conns[x].typ_t0;
    uint64_t d = now > t0 ? now - t0 : 0;
    if (t0 >= lg->t_meas0 && t0 < lg->t_meas1)
      hist_record(&lg->lat, d);
    if (!lg->quiet)
      hist_record(&lg->lat_sec, d);
  }
  memcpy(c->typ_prev, t->ids, (size_t)t->n * sizeof(t->ids[0]));
  lg->typ_nonempty += (t->n > 0 || t->partial) - (c->typ_prev_n > 0 || c->typ_prev_partial);
  c->typ_prev_n = (uint8_t)t->n;
  c->typ_prev_partial = (uint8_t)t->partial;
}

/* A bare success reply, {"id":N,"ok":true} (what `typing` gets). Returns its id, or 0. */
static uint64_t scan_bare_ok(const char *p, size_t n) {
  static const char pre[] = "{\"id\":", post[] = ",\"ok\":true}";
  const char *end = p + n;
  if (n < sizeof(pre) + sizeof(post) - 1 || memcmp(p, pre, sizeof(pre) - 1) != 0 ||
      memcmp(end - (sizeof(post) - 1), post, sizeof(post) - 1) != 0)
    return 0;
  const char *q = p + sizeof(pre) - 1, *e = end - (sizeof(post) - 1);
  if (q == e || (size_t)(e - q) > 19)
    return 0;
  for (const char *r = q; r < e; r++)
    if (*r < '0' || *r > '9')
      return 0;
  return parse_u64(q, e);
}

/* The reply to a typing request (its ring slot already released). */
static void typing_reply(struct lg *lg, struct conn *c, const struct pending *pe, int ok,
                         const char *code, const char *emsg) {
  lg->send_inflight--;
  if (pe->kind == REQ_TYPING_OFF) {
    if (!ok) {
      lg->typ_errors++;
      if (lg->errors_printed++ < MAX_PRINTED_ERRORS)
        fprintf(stderr, "loadgen: typing on:false by %s failed: %s: %s\n",
                lg->users[c->idx].name, code ? code : "?", emsg ? emsg : "");
    }
    return;
  }
  if (ok) {
    lg->tot.acks++;
    if (pe->measured) {
      lg->win.acks++;
      hist_record(&lg->ack, lg->now_recv - pe->t_send);
    }
  } else if (code && strcmp(code, "rate_limited") == 0) {
    lg->tot.rate_limited++;
    if (pe->measured)
      lg->win.rate_limited++;
  } else {
    lg->tot.err_replies++;
    if (pe->measured)
      lg->win.err_replies++;
    if (lg->errors_printed++ < MAX_PRINTED_ERRORS)
      fprintf(stderr, "loadgen: typing on:true by %s failed: %s: %s\n", lg->users[c->idx].name,
              code ? code : "?", emsg ? emsg : "");
  }
}

static void handle_reply(struct lg *lg, struct conn *c, json_t *root) {
  json_t *jid = json_object_get(root, "id");
  json_t *jerr = json_object_get(root, "error");
  int ok = json_is_true(json_object_get(root, "ok"));
  const char *code = json_string_value(json_object_get(jerr, "code"));
  const char *emsg = json_string_value(json_object_get(jerr, "message"));
  if (!json_is_integer(jid)) {
    lg->null_id++;
    if (lg->errors_printed++ < MAX_PRINTED_ERRORS)
      fprintf(stderr, "loadgen: reply without id on %s: %s: %s\n", lg->users[c->idx].name,
              code ? code : "?", emsg ? emsg : "");
    return;
  }
  uint64_t id = (uint64_t)json_integer_value(jid);
  struct pending *slot = &c->ring[id & c->ring_mask];
  if (slot->id != id) {
    lg->proto_errs++; /* a reply to nothing we are waiting for */
    return;
  }
  struct pending pe = *slot;
  req_release(c, id);
  if (!ok && pe.kind != REQ_SEND && pe.kind != REQ_REACT &&
      lg->errors_printed++ < MAX_PRINTED_ERRORS)
    fprintf(stderr, "loadgen: %s for %s failed: %s: %s\n", phase_name(lg->phase),
            lg->users[c->idx].name, code ? code : "?", emsg ? emsg : "");
  if (lg->sc && scen_conns_on_reply(lg, c, pe.kind, root, ok))
    return;
  if (lg->sc && ok && pe.kind == REQ_SEND)
    scen_conns_on_ack(lg, c, root);
  switch ((enum req_kind)pe.kind) {
  case REQ_AUTH: {
    json_t *uid = json_object_get(json_object_get(root, "user"), "id");
    if (ok && json_is_integer(uid))
      c->user_id = (int64_t)json_integer_value(uid);
    step_done(lg, c, ok);
    break;
  }
  case REQ_TYPING_ON:
  case REQ_TYPING_OFF:
    typing_reply(lg, c, &pe, ok, code, emsg);
    break;
  case REQ_REACT:
    scen_react_on_reply(lg, c, &pe, ok, code);
    break;
  case REQ_CREATE: {
    const char *slug = json_string_value(json_object_get(json_object_get(root, "chat"), "slug"));
    int good = ok && slug && strlen(slug) < sizeof(lg->groups[0].slug) &&
               strpbrk(slug, "\"\\") == NULL;
    if (good)
      strcpy(lg->groups[c->group].slug, slug);
    else if (ok && lg->errors_printed++ < MAX_PRINTED_ERRORS)
      fprintf(stderr, "loadgen: chat.create reply has no usable chat.slug\n");
    step_done(lg, c, good);
    break;
  }
  case REQ_JOIN:
    step_done(lg, c, ok);
    break;
  case REQ_SUB: {
    json_t *ls = json_object_get(root, "lastSeq");
    if (ok && json_is_integer(ls))
      c->expect_seq = (int64_t)json_integer_value(ls) + 1;
    step_done(lg, c, ok);
    break;
  }
  case REQ_SEND:
    lg->send_inflight--;
    hist_record(&lg->reply_all, lg->now_recv - pe.t_send);
    if (lg->report_every > 0)
      hist_record(&lg->rep_reply, lg->now_recv - pe.t_send);
    if (ok) {
      lg->tot.acks++;
      lg->expected += (uint64_t)lg->groups[c->group].size;
      if (pe.measured) {
        lg->win.acks++;
        hist_record(&lg->ack, lg->now_recv - pe.t_send);
      }
    } else if (code && strcmp(code, "rate_limited") == 0) {
      lg->tot.rate_limited++;
      if (pe.measured)
        lg->win.rate_limited++;
    } else if (code && strcmp(code, "unavailable") == 0) {
      lg->unavailable++; /* refused by the server's overload guard: counted, not printed */
    } else {
      lg->tot.err_replies++;
      if (pe.measured)
        lg->win.err_replies++;
      if (lg->errors_printed++ < MAX_PRINTED_ERRORS)
        fprintf(stderr, "loadgen: msg.send by %s failed: %s: %s\n", lg->users[c->idx].name,
                code ? code : "?", emsg ? emsg : "");
    }
    if (lg->rate <= 0 && lg->phase == PH_RUN && uv_hrtime() < lg->t_meas1)
      send_one(lg, c); /* window mode: one reply, one new send */
    break;
  default:
    break;
  }
}

void lg_on_ws_text(struct conn *c, const uint8_t *data, size_t n) {
  struct lg *lg = c->lg;
  const char *p = (const char *)data;
  int64_t seq;
  uint64_t ts;
  if (lg->phase < PH_RUN) {
    lg->setup_frames++;
    lg->setup_bytes += n;
  } else {
    lg->run_frames++;
  }
  if (lg->wire) {
    lg->wire->ws_text(c, data, n);
    return;
  }
  if (!lg->strict) {
    int r = scan_event(p, n, &seq, &ts);
    if (r == EV_MSG) {
      on_msg_event(lg, c, seq, ts);
      if (ts == 0 && lg->scen == SCEN_REACTIONS)
        scen_react_on_event(lg, c, p, n);
      return;
    }
    if (r == EV_TYPING) {
      struct typ_ev t;
      if (scan_typing(p, n, &t) == 0) {
        on_typing_event(lg, c, &t);
        return;
      }
      lg->slow_parse++; /* another layout: jansson below */
    } else if (r == EV_OTHER) {
      return; /* hello, presence, chat.active...: not measured */
    } else {
      uint64_t id = scan_bare_ok(p, n);
      struct pending *slot = &c->ring[id & c->ring_mask];
      if (id && slot->id == id &&
          (slot->kind == REQ_TYPING_ON || slot->kind == REQ_TYPING_OFF)) {
        struct pending pe = *slot;
        req_release(c, id);
        typing_reply(lg, c, &pe, 1, NULL, NULL);
        return;
      }
    }
  }
  json_error_t err;
  json_t *root = json_loadb(p, n, 0, &err);
  if (!json_is_object(root)) {
    lg->proto_errs++;
    if (lg->errors_printed++ < MAX_PRINTED_ERRORS)
      fprintf(stderr, "loadgen: unparsable frame from server (%s): %.*s\n", err.text,
              (int)(n > 200 ? 200 : n), p);
    json_decref(root);
    return;
  }
  json_t *ev = json_object_get(root, "ev");
  if (ev) {
    if (json_is_string(ev) && strcmp(json_string_value(ev), "msg") == 0) {
      json_t *msg = json_object_get(root, "msg");
      json_t *jseq = json_object_get(msg, "seq");
      const char *body = json_string_value(json_object_get(msg, "body"));
      seq = json_is_integer(jseq) ? (int64_t)json_integer_value(jseq) : -1;
      ts = body && strncmp(body, "lgt=", 4) == 0 ? body_ts(body, strlen(body)) : 0;
      on_msg_event(lg, c, seq, ts);
    } else if (json_is_string(ev) && strcmp(json_string_value(ev), "typing") == 0) {
      struct typ_ev t = {0};
      json_t *users = json_object_get(root, "users"), *u;
      json_t *others = json_object_get(root, "others");
      size_t i;
      t.chat = json_string_value(json_object_get(root, "chat"));
      t.chat_len = t.chat ? strlen(t.chat) : 0;
      t.partial = json_is_integer(others) && json_integer_value(others) > 0;
      json_array_foreach(users, i, u) {
        json_t *id = json_object_get(u, "id");
        if (!json_is_integer(id))
          continue;
        if (t.n < TYP_TRACK)
          t.ids[t.n++] = (int64_t)json_integer_value(id);
        else
          t.partial = 1;
      }
      if (t.chat && json_is_array(users))
        on_typing_event(lg, c, &t);
      else
        lg->proto_errs++;
    }
  } else {
    handle_reply(lg, c, root);
  }
  json_decref(root);
}

/* ------------------------------------------------------------------------------------------ */
/* report */

static double ms(uint64_t ns) { return (double)ns / 1e6; }

static void report(struct lg *lg) {
  double secs = lg->duration;
  double srv_cpu = -1, srv_rss = -1, srv_hwm = -1;
  if (lg->server_pid > 0 && lg->srv_ticks1 >= lg->srv_ticks0 && lg->srv_ticks1 > 0) {
    srv_cpu = (double)(lg->srv_ticks1 - lg->srv_ticks0) / (double)sysconf(_SC_CLK_TCK) / secs * 100;
    srv_rss = lg->srv_rss_kb / 1024.0;
    srv_hwm = lg->srv_hwm_kb / 1024.0;
  }
  double lg_cpu = (lg->lg_cpu1 - lg->lg_cpu0) / secs * 100;
  uint64_t missing = lg->expected > lg->tot.deliveries ? lg->expected - lg->tot.deliveries : 0;
  char offered[32];
  if (lg->rate > 0)
    snprintf(offered, sizeof(offered), "%.0f/s", lg->rate);
  else
    snprintf(offered, sizeof(offered), "win%d", lg->window);
  const char *scen = lg->scen == SCEN_CHAT     ? "chat"
                     : lg->scen == SCEN_TYPING ? "typing"
                     : lg->scen == SCEN_REACTIONS ? "reactions"
                     : lg->scen == SCEN_CONNS  ? "conns"
                     : lg->scen == SCEN_STORM  ? "storm"
                                               : "broadcast";
  int csize = lg->scen != SCEN_BROADCAST && lg->chat_size < lg->n_users ? lg->chat_size : lg->n_users;
  int typing = lg->scen == SCEN_TYPING;
  /* Typing: sightings owed (a start the typer's own socket saw listed) that never came. */
  uint64_t typ_missing = lg->typ_expected > lg->typ_seen + lg->typ_hidden
                             ? lg->typ_expected - lg->typ_seen - lg->typ_hidden
                             : 0;
  if (typing)
    missing = typ_missing;
  uint64_t errors = lg->win.err_replies + lg->win.rate_limited;
  char cpu_s[16] = "-", rss_s[16] = "-";
  if (srv_cpu >= 0) {
    snprintf(cpu_s, sizeof(cpu_s), "%.1f", srv_cpu);
    snprintf(rss_s, sizeof(rss_s), "%.1f", srv_rss);
  }

  printf("\n%-9s %6s %5s %9s %9s %10s %8s %8s %8s %8s %6s %6s %7s %7s %6s\n", "scenario", "users",
         "chat", "offered", "sends/s", "deliv/s", "p50ms", "p99ms", "p999ms", "maxms", "errors",
         "closes", "srvCPU%", "srvRSSMB", "lgCPU%");
  printf("%-9s %6d %5d %9s %9.1f %10.1f %8.3f %8.3f %8.3f %8.3f %6llu %6llu %7s %8s %6.1f\n",
         scen, lg->n_users, csize, offered, (double)lg->win.sends / secs,
         (double)lg->win.deliveries / secs, ms(hist_quantile(&lg->lat, 0.50)),
         ms(hist_quantile(&lg->lat, 0.99)), ms(hist_quantile(&lg->lat, 0.999)),
         ms(lg->lat.max), (unsigned long long)errors, (unsigned long long)lg->closes, cpu_s,
         rss_s, lg_cpu);
  if (typing)
    printf("  typing: sends/s = on:true requests, deliv/s = typing events received (the typer's "
           "own and the stops' included); latency = on:true to another member seeing the typer "
           "listed; hold %.0f ms\n",
           lg->typing_hold * 1e3);
  printf("  window %.1f s (after %.1f s warm-up); latency samples %llu; acks/s %.1f, ack "
         "p50/p99/max %.3f/%.3f/%.3f ms\n",
         secs, lg->warmup, (unsigned long long)lg->lat.count, (double)lg->win.acks / secs,
         ms(hist_quantile(&lg->ack, 0.5)), ms(hist_quantile(&lg->ack, 0.99)), ms(lg->ack.max));
  if (lg->t_setup1 > lg->t_setup0 && lg->t_setup0 > 0)
    printf("  set-up: %d users connected, joined and subscribed in %.2f s; frames received "
           "during set-up %llu (%.1f per user, %.1f KB per user); frames during the run %llu\n",
           lg->n_users, (double)(lg->t_setup1 - lg->t_setup0) / 1e9,
           (unsigned long long)lg->setup_frames, (double)lg->setup_frames / lg->n_users,
           (double)lg->setup_bytes / 1024.0 / lg->n_users, (unsigned long long)lg->run_frames);
  printf("  replies (whole run, acknowledged or refused): %llu, p50/p99/max %.3f/%.3f/%.3f ms; "
         "refused: unavailable %llu, rate_limited %llu; unanswered at the end %lld\n",
         (unsigned long long)lg->reply_all.count, ms(hist_quantile(&lg->reply_all, 0.5)),
         ms(hist_quantile(&lg->reply_all, 0.99)), ms(lg->reply_all.max),
         (unsigned long long)lg->unavailable, (unsigned long long)lg->tot.rate_limited,
         (long long)lg->send_inflight);
  printf("  errors: error replies %llu, rate_limited %llu, closes %llu, replies without id %llu, "
         "bad frames %llu; skipped sends %llu\n",
         (unsigned long long)lg->tot.err_replies, (unsigned long long)lg->tot.rate_limited,
         (unsigned long long)lg->closes, (unsigned long long)lg->null_id,
         (unsigned long long)lg->proto_errs, (unsigned long long)lg->tot.skipped);
  if (typing)
    printf("  integrity (whole run): on:true %llu, acked %llu, on:false %llu (errors %llu), "
           "unacked %llu; typing events %llu; starts listed %llu (%llu never listed: on and off "
           "merged in one server turn); sightings by the other members %llu + hidden behind "
           "\"others\" %llu of %llu owed (missing %llu); events with \"others\" > 0 %llu; "
           "unexpected %llu; sockets still showing typers after the drain %d; parsed by jansson "
           "%llu\n",
           (unsigned long long)lg->tot.sends, (unsigned long long)lg->tot.acks,
           (unsigned long long)lg->typ_stops_sent, (unsigned long long)lg->typ_errors,
           (unsigned long long)(lg->unacked + lg->send_inflight),
           (unsigned long long)lg->tot.deliveries, (unsigned long long)lg->typ_listed,
           (unsigned long long)(lg->tot.acks > lg->typ_listed ? lg->tot.acks - lg->typ_listed : 0),
           (unsigned long long)lg->typ_seen, (unsigned long long)lg->typ_hidden,
           (unsigned long long)lg->typ_expected, (unsigned long long)typ_missing,
           (unsigned long long)lg->typ_partial, (unsigned long long)lg->typ_unexpected,
           lg->typ_nonempty, (unsigned long long)lg->slow_parse);
  else
    printf("  integrity (whole run): sends %llu, acked %llu, unacked %llu, deliveries %llu of %llu "
           "owed (missing %llu), seq gaps %llu, seq duplicates %llu\n",
           (unsigned long long)lg->tot.sends, (unsigned long long)lg->tot.acks,
           (unsigned long long)(lg->unacked + lg->send_inflight),
           (unsigned long long)lg->tot.deliveries, (unsigned long long)lg->expected,
           (unsigned long long)missing, (unsigned long long)lg->seq_gaps,
           (unsigned long long)lg->seq_dups);
  if (srv_cpu >= 0)
    printf("  server pid %d: CPU %.1f%% of one core over the window, RSS %.1f MB (peak %.1f MB)\n",
           lg->server_pid, srv_cpu, srv_rss, srv_hwm);
  printf("  loadgen: CPU %.1f%% of one core over the window%s\n", lg_cpu,
         lg_cpu > 85 ? " -- WARNING: the load generator may be the bottleneck" : "");
  /* Memory per connection: (RSS with everyone connected and in its chat - RSS before the first
   * connection) / users; -1 when the server was not sampled. */
  const char *server = lg->wire ? lg->wire->name : "parley";
  double rss_idle = lg->srv_rss_idle_kb > 0 ? lg->srv_rss_idle_kb / 1024.0 : -1;
  double rss_joined = lg->srv_rss_joined_kb > 0 ? lg->srv_rss_joined_kb / 1024.0 : -1;
  double kb_per_conn = rss_idle >= 0 && rss_joined >= 0
                           ? (double)(lg->srv_rss_joined_kb - lg->srv_rss_idle_kb) / lg->n_users
                           : -1;
  if (kb_per_conn >= 0 || lg->wire)
    printf("  server %s: RSS %.1f MB before connecting, %.1f MB with %d users connected and "
           "joined: %.1f KB per connection\n",
           server, rss_idle, rss_joined, lg->n_users, kb_per_conn);
  fflush(stdout);

  if (lg->csv) {
    struct stat st;
    int fresh = stat(lg->csv, &st) != 0 || st.st_size == 0;
    FILE *f = fopen(lg->csv, "a");
    if (!f) {
      fprintf(stderr, "loadgen: cannot append to %s: %s\n", lg->csv, strerror(errno));
      return;
    }
    if (fresh)
      fprintf(f, "time,label,scenario,users,chat_size,offered,duration_s,sends_per_s,acks_per_s,"
                 "deliveries_per_s,p50_ms,p99_ms,p999_ms,max_ms,ack_p50_ms,ack_p99_ms,errors,"
                 "rate_limited,closes,seq_gaps,missing,server_cpu_pct,server_rss_mb,"
                 "server_peak_rss_mb,loadgen_cpu_pct,server,server_rss_idle_mb,"
                 "server_rss_joined_mb,server_kb_per_conn\n");
    char when[32];
    time_t now = time(NULL);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", localtime(&now));
    fprintf(f,
            "%s,%s,%s,%d,%d,%s,%.1f,%.1f,%.1f,%.1f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%llu,%llu,%llu,"
            "%llu,%llu,%.1f,%.1f,%.1f,%.1f,%s,%.1f,%.1f,%.2f\n",
            when, lg->label ? lg->label : "", scen, lg->n_users, csize, offered, secs,
            (double)lg->win.sends / secs, (double)lg->win.acks / secs,
            (double)lg->win.deliveries / secs, ms(hist_quantile(&lg->lat, 0.50)),
            ms(hist_quantile(&lg->lat, 0.99)), ms(hist_quantile(&lg->lat, 0.999)),
            ms(lg->lat.max), ms(hist_quantile(&lg->ack, 0.5)), ms(hist_quantile(&lg->ack, 0.99)),
            (unsigned long long)lg->tot.err_replies, (unsigned long long)lg->tot.rate_limited,
            (unsigned long long)lg->closes, (unsigned long long)lg->seq_gaps,
            (unsigned long long)missing, srv_cpu, srv_rss, srv_hwm, lg_cpu, server, rss_idle,
            rss_joined, kb_per_conn);
    fclose(f);
  }
}

/* ------------------------------------------------------------------------------------------ */
/* options and start-up */

static void usage(FILE *f) {
  fprintf(f,
          "usage: loadgen [options]\n"
          "  --url ws://127.0.0.1:8080[/ws]  server (loopback only)\n"
          "  --nodes P2,P3,...               a cluster: more nodes on --url's host at these ports;\n"
          "                                  user i connects to node i %% (1 + count)\n"
          "  --scenario chat|broadcast|typing|reactions|connections|storm (chat)\n"
          "  --react-rate R                  reactions: react toggles/s in total, beside --rate\n"
          "                                  messages (2000)\n"
          "  --users N                       users, one WebSocket each (1000)\n"
          "  --chat-size K                   users per chat, chat and typing scenarios (10)\n"
          "  --rate R                        msgs/s over all users (chat: 2000; broadcast: 0 =\n"
          "                                  window mode, also for chat: every user keeps --window\n"
          "                                  sends unacknowledged, which measures acked sends/s);\n"
          "                                  typing: starts/s over all users (2000)\n"
          "  --typing-hold MS                typing: on:true to on:false (a fifth of a user's\n"
          "                                  period N/R: 100 ms by default)\n"
          "  --window W                      window mode: unacknowledged sends in flight per\n"
          "                                  sender (64)\n"
          "  --duration T                    measured seconds (20)\n"
          "  --warmup S                      seconds of load before measuring (3)\n"
          "  --drain S                       max seconds to wait for stragglers (3)\n"
          "  --body-size B                   message body bytes (64)\n"
          "  --server-pid PID                sample server CPU and RSS from /proc\n"
          "  --csv FILE                      append a result row\n"
          "  --label TEXT                    label column for the CSV\n"
          "  --users-file FILE               reuse \"username token\" lines; new signups appended\n"
          "  --signup-concurrency N          signups in flight (8)\n"
          "  --connect-concurrency N         handshakes+auths in flight (100)\n"
          "  --setup-concurrency N           create/join/sub requests in flight (256)\n"
          "  --setup-timeout S               limit for each set-up phase (600)\n"
          "  --runid ID                      username prefix part (default: from time and pid)\n"
          "  --chat SLUG                     chat: every user joins this existing chat (one group\n"
          "                                  of --users; e.g. a big chat filled beforehand)\n"
          "  --server parley|socketio|xmpp   the server's protocol (parley); the peers run the\n"
          "                                  chat scenario only (see bench/README.md, Peers)\n"
          "  --xmpp-domain D                 xmpp: host name; rooms on conference.D (localhost)\n"
          "  --probes P                      connections: chats whose first member sends (10)\n"
          "  --conns-per-user M              connections, storm: sockets per account (1); the\n"
          "                                  server's PARLEY_MAX_CONNS_PER_USER must allow M\n"
          "  --storm-concurrency C           storm: reconnects in flight (1000)\n"
          "  --src-addrs A                   bind sockets to 127.0.0.2.. (A addresses; default\n"
          "                                  one per 25,000 sockets above 25,000)\n"
          "  --schedule R:S[,R:S...]         chat: offer R msgs/s for S seconds, step after step\n"
          "                                  (the warm-up runs at the first R); replaces --rate\n"
          "                                  and --duration (soak and overload scenarios)\n"
          "  --report-every S                one stdout row every S seconds: rates, refusals,\n"
          "                                  delivery and reply p50/p99/max, server RSS, WAL\n"
          "  --wal-file PATH                 report this file's size in each row (parley.db-wal)\n"
          "  --strict                        parse every frame with jansson\n"
          "  --quiet                         no progress on stderr\n");
}

static int parse_url(struct lg *lg, const char *url) {
  const char *p = url;
  if (strncmp(p, "ws://", 5) == 0)
    p += 5;
  else if (strncmp(p, "xmpp://", 7) == 0) /* --server xmpp: plain TCP, the path is unused */
    p += 7;
  else if (strstr(p, "://")) {
    fprintf(stderr, "loadgen: only ws:// (or xmpp://) URLs (TLS belongs to the proxy)\n");
    return -1;
  }
  const char *hs = p, *he;
  if (*p == '[') {
    hs = p + 1;
    he = strchr(hs, ']');
    if (!he)
      return -1;
    p = he + 1;
  } else {
    he = p + strcspn(p, ":/");
    p = he;
  }
  if ((size_t)(he - hs) >= sizeof(lg->host))
    return -1;
  memcpy(lg->host, hs, (size_t)(he - hs));
  lg->host[he - hs] = 0;
  lg->port = 80;
  if (*p == ':') {
    lg->port = atoi(p + 1);
    p += 1 + strspn(p + 1, "0123456789");
  }
  snprintf(lg->path, sizeof(lg->path), "%s", *p == '/' ? p : "/ws");
  if (strcmp(lg->path, "/") == 0)
    strcpy(lg->path, "/ws");
  if (strcmp(lg->host, "localhost") == 0)
    strcpy(lg->host, "127.0.0.1");
  struct sockaddr_in *a4 = (struct sockaddr_in *)&lg->addr;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&lg->addr;
  if (uv_ip4_addr(lg->host, lg->port, a4) == 0) {
    if ((ntohl(a4->sin_addr.s_addr) >> 24) != 127) {
      fprintf(stderr, "loadgen: %s is not a loopback address; refusing\n", lg->host);
      return -1;
    }
  } else if (uv_ip6_addr(lg->host, lg->port, a6) == 0) {
    if (!IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr)) {
      fprintf(stderr, "loadgen: %s is not a loopback address; refusing\n", lg->host);
      return -1;
    }
  } else {
    fprintf(stderr, "loadgen: host must be a loopback IP address or localhost\n");
    return -1;
  }
  if (lg->port <= 0 || lg->port > 65535)
    return -1;
  return 0;
}

static void load_users_file(struct lg *lg) {
  FILE *f = fopen(lg->users_file, "r");
  if (!f)
    return;
  char line[600], name[64], tok[512];
  int i = 0;
  while (i < lg->n_users && fgets(line, sizeof(line), f)) {
    if (sscanf(line, "%63s %511s", name, tok) != 2 || strlen(name) > 32)
      continue;
    snprintf(lg->users[i].name, sizeof(lg->users[i].name), "%s", name);
    lg->users[i].token = strdup(tok);
    i++;
  }
  fclose(f);
  lg_log(lg, "  reusing %d users from %s\n", i, lg->users_file);
}

static void make_runid(struct lg *lg) {
  static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  uint64_t v = ((uint64_t)time(NULL) * 1000u + (uint64_t)getpid() % 1000u) % 78364164096ull;
  char tmp[16];
  int n = 0;
  do {
    tmp[n++] = digits[v % 36];
    v /= 36;
  } while (v && n < 7);
  for (int i = 0; i < n; i++)
    lg->runid[i] = tmp[n - 1 - i];
  lg->runid[n] = 0;
}

enum {
  OPT_URL = 256, OPT_SCEN, OPT_USERS, OPT_CHATSIZE, OPT_RATE, OPT_WINDOW, OPT_DURATION,
  OPT_WARMUP, OPT_DRAIN, OPT_BODY, OPT_PID, OPT_CSV, OPT_LABEL, OPT_USERSFILE, OPT_SIGNUPC,
  OPT_CONNC, OPT_SETUPC, OPT_SETUPT, OPT_RUNID, OPT_CHAT, OPT_STRICT, OPT_QUIET, OPT_HELP, OPT_HOLD,
  OPT_PROBES, OPT_CPU, OPT_STORMC, OPT_SRCADDRS, OPT_SERVER, OPT_XDOMAIN, OPT_NODES,
  OPT_SCHEDULE, OPT_REPORT, OPT_WALFILE, OPT_REACTRATE
};

const struct sockaddr *lg_node_addr(const struct lg *lg, int idx) {
  return (const struct sockaddr *)&lg->node_addr[lg->n_nodes > 1 ? idx % lg->n_nodes : 0];
}

int lg_node_port(const struct lg *lg, int idx) {
  return lg->node_port[lg->n_nodes > 1 ? idx % lg->n_nodes : 0];
}

/* --nodes "P2,P3,...": more nodes of the cluster, on --url's host at these ports. */
static int parse_nodes(struct lg *lg, const char *list) {
  lg->node_addr[0] = lg->addr;
  lg->node_port[0] = lg->port;
  lg->n_nodes = 1;
  for (const char *p = list; p && *p;) {
    char *end;
    long port = strtol(p, &end, 10);
    if (end == p || port <= 0 || port > 65535 || lg->n_nodes == LG_MAX_NODES)
      return -1;
    lg->node_addr[lg->n_nodes] = lg->addr;
    if (lg->addr.ss_family == AF_INET)
      ((struct sockaddr_in *)&lg->node_addr[lg->n_nodes])->sin_port = htons((uint16_t)port);
    else
      ((struct sockaddr_in6 *)&lg->node_addr[lg->n_nodes])->sin6_port = htons((uint16_t)port);
    lg->node_port[lg->n_nodes++] = (int)port;
    p = *end == ',' ? end + 1 : end;
    if (*end && *end != ',')
      return -1;
  }
  return 0;
}

/* "R:S,R:S,...": rate steps. lg->rate becomes the highest step (what sizes the rings). */
static int parse_schedule(struct lg *lg, const char *spec) {
  const char *p = spec;
  lg->n_steps = 0;
  double total = 0, top = 0;
  while (*p) {
    char *end;
    double r = strtod(p, &end);
    if (end == p || *end != ':' || lg->n_steps == LG_MAX_STEPS)
      goto bad;
    p = end + 1;
    double secs = strtod(p, &end);
    if (end == p || (*end && *end != ',') || r < 0 || r > 1e7 || secs <= 0)
      goto bad;
    lg->step_rate[lg->n_steps] = r;
    lg->step_secs[lg->n_steps++] = secs;
    total += secs;
    top = r > top ? r : top;
    p = *end ? end + 1 : end;
  }
  if (lg->n_steps == 0 || top <= 0)
    goto bad;
  lg->duration = total;
  lg->rate = top;
  return 0;
bad:
  fprintf(stderr, "loadgen: --schedule wants R:S[,R:S...] (at most %d steps), not %s\n",
          LG_MAX_STEPS, spec);
  return -1;
}

static int parse_args(struct lg *lg, int argc, char **argv) {
  static const struct option opts[] = {
      {"url", 1, 0, OPT_URL}, {"scenario", 1, 0, OPT_SCEN}, {"users", 1, 0, OPT_USERS},
      {"chat-size", 1, 0, OPT_CHATSIZE}, {"rate", 1, 0, OPT_RATE}, {"window", 1, 0, OPT_WINDOW},
      {"duration", 1, 0, OPT_DURATION}, {"warmup", 1, 0, OPT_WARMUP}, {"drain", 1, 0, OPT_DRAIN},
      {"body-size", 1, 0, OPT_BODY}, {"server-pid", 1, 0, OPT_PID}, {"csv", 1, 0, OPT_CSV},
      {"label", 1, 0, OPT_LABEL}, {"users-file", 1, 0, OPT_USERSFILE},
      {"signup-concurrency", 1, 0, OPT_SIGNUPC}, {"connect-concurrency", 1, 0, OPT_CONNC},
      {"setup-concurrency", 1, 0, OPT_SETUPC}, {"setup-timeout", 1, 0, OPT_SETUPT},
      {"runid", 1, 0, OPT_RUNID}, {"chat", 1, 0, OPT_CHAT}, {"strict", 0, 0, OPT_STRICT}, {"quiet", 0, 0, OPT_QUIET},
      {"typing-hold", 1, 0, OPT_HOLD}, {"help", 0, 0, OPT_HELP},
      {"probes", 1, 0, OPT_PROBES}, {"conns-per-user", 1, 0, OPT_CPU},
      {"storm-concurrency", 1, 0, OPT_STORMC}, {"src-addrs", 1, 0, OPT_SRCADDRS},
      {"server", 1, 0, OPT_SERVER}, {"xmpp-domain", 1, 0, OPT_XDOMAIN},
      {"nodes", 1, 0, OPT_NODES}, {"schedule", 1, 0, OPT_SCHEDULE},
      {"report-every", 1, 0, OPT_REPORT}, {"wal-file", 1, 0, OPT_WALFILE},
      {"react-rate", 1, 0, OPT_REACTRATE}, {0, 0, 0, 0}};
  const char *url = "ws://127.0.0.1:8080", *nodes = NULL;
  int rate_set = 0, per_user = 1;
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
    case OPT_URL: url = optarg; break;
    case OPT_SCEN:
      if (strcmp(optarg, "chat") == 0)
        lg->scen = SCEN_CHAT;
      else if (strcmp(optarg, "broadcast") == 0)
        lg->scen = SCEN_BROADCAST;
      else if (strcmp(optarg, "typing") == 0)
        lg->scen = SCEN_TYPING;
      else if (strcmp(optarg, "reactions") == 0)
        lg->scen = SCEN_REACTIONS;
      else if (strcmp(optarg, "connections") == 0 || strcmp(optarg, "conns") == 0)
        lg->scen = SCEN_CONNS;
      else if (strcmp(optarg, "storm") == 0)
        lg->scen = SCEN_STORM;
      else {
        fprintf(stderr, "loadgen: unknown scenario %s\n", optarg);
        return -1;
      }
      break;
    case OPT_USERS: lg->n_users = atoi(optarg); break;
    case OPT_CHATSIZE: lg->chat_size = atoi(optarg); break;
    case OPT_RATE: lg->rate = atof(optarg); rate_set = 1; break;
    case OPT_WINDOW: lg->window = atoi(optarg); break;
    case OPT_HOLD: lg->typing_hold = atof(optarg) / 1e3; break;
    case OPT_DURATION: lg->duration = atof(optarg); break;
    case OPT_WARMUP: lg->warmup = atof(optarg); break;
    case OPT_DRAIN: lg->drain = atof(optarg); break;
    case OPT_BODY: lg->body_size = atoi(optarg); break;
    case OPT_PID: lg->server_pid = atoi(optarg); break;
    case OPT_CSV: lg->csv = optarg; break;
    case OPT_LABEL: lg->label = optarg; break;
    case OPT_USERSFILE: lg->users_file = optarg; break;
    case OPT_SIGNUPC: lg->signup_conc = atoi(optarg); break;
    case OPT_CONNC: lg->connect_conc = atoi(optarg); break;
    case OPT_SETUPC: lg->setup_conc = atoi(optarg); break;
    case OPT_SETUPT: lg->setup_timeout = atof(optarg); break;
    case OPT_RUNID: snprintf(lg->runid, sizeof(lg->runid), "%s", optarg); break;
    case OPT_CHAT: snprintf(lg->chat, sizeof(lg->chat), "%s", optarg); break;
    case OPT_STRICT: lg->strict = 1; break;
    case OPT_QUIET: lg->quiet = 1; break;
    case OPT_PROBES: lg->probes = atoi(optarg); break;
    case OPT_CPU: per_user = atoi(optarg); break;
    case OPT_STORMC: lg->storm_conc = atoi(optarg); break;
    case OPT_SRCADDRS: lg->src_addrs = atoi(optarg); break;
    case OPT_SERVER:
      if (wire_lookup(optarg, &lg->wire) != 0) {
        fprintf(stderr, "loadgen: unknown --server %s (parley, socketio or xmpp)\n", optarg);
        return -1;
      }
      break;
    case OPT_XDOMAIN:
      if (strlen(optarg) >= sizeof(lg->xmpp_domain) || strpbrk(optarg, "'\"<>&/@ ")) {
        fprintf(stderr, "loadgen: bad --xmpp-domain\n");
        return -1;
      }
      strcpy(lg->xmpp_domain, optarg);
      break;
    case OPT_NODES: nodes = optarg; break;
    case OPT_SCHEDULE:
      if (parse_schedule(lg, optarg) != 0)
        return -1;
      rate_set = 1;
      break;
    case OPT_REPORT: lg->report_every = atof(optarg); break;
    case OPT_WALFILE: lg->wal_file = optarg; break;
    case OPT_REACTRATE: lg->react_rate = atof(optarg); break;
    case OPT_HELP: usage(stdout); exit(0);
    default: usage(stderr); return -1;
    }
  }
  if (optind < argc) {
    usage(stderr);
    return -1;
  }
  if (lg->n_steps > 0) { /* the schedule decides the window, whatever --duration said */
    lg->duration = 0;
    for (int i = 0; i < lg->n_steps; i++)
      lg->duration += lg->step_secs[i];
  }
  if (!rate_set)
    lg->rate = lg->scen == SCEN_BROADCAST ? 0 : lg->scen == SCEN_CONNS ? 100
               : lg->scen == SCEN_STORM ? 1000 : 2000;
  if (per_user < 1 || lg->probes < 1 || lg->storm_conc < 1 || lg->src_addrs < -1 ||
      (per_user > 1 && !scen_conns_active(lg))) {
    fprintf(stderr, "loadgen: bad --conns-per-user, --probes, --storm-concurrency or "
                    "--src-addrs (--conns-per-user is for connections and storm only)\n");
    return -1;
  }
  lg->n_accounts = (lg->n_users + per_user - 1) / per_user;
  if (per_user > 1 && lg->n_accounts < lg->chat_size) {
    fprintf(stderr, "loadgen: --conns-per-user leaves fewer accounts than --chat-size: a chat "
                    "would hold one user twice\n");
    return -1;
  }
  if (parse_url(lg, url) != 0) {
    fprintf(stderr, "loadgen: bad --url %s\n", url);
    return -1;
  }
  if (parse_nodes(lg, nodes) != 0) {
    fprintf(stderr, "loadgen: bad --nodes %s (comma-separated ports, at most %d nodes)\n", nodes,
            LG_MAX_NODES);
    return -1;
  }
  if (lg->n_nodes > 1 && lg->wire) {
    fprintf(stderr, "loadgen: --nodes is for Parley clusters\n");
    return -1;
  }
  if (lg->wire) {
    /* The peers have no typing, no acknowledged sends to keep a window of, and no accounts. */
    if (lg->scen != SCEN_CHAT || lg->users_file || lg->strict) {
      fprintf(stderr, "loadgen: --server %s runs the chat scenario only (no --users-file, no "
                      "--strict)\n", lg->wire->name);
      return -1;
    }
    if (lg->wire == &wire_sio && strcmp(lg->path, "/ws") == 0)
      strcpy(lg->path, "/socket.io/?EIO=4&transport=websocket");
  }
  /* Bounds keep every run finite and every buffer sized. */
  if (lg->n_users < 1 || lg->n_users > 100000 || lg->chat_size < 1 || lg->rate < 0 ||
      lg->rate > 1e7 || lg->window < 1 || lg->window > 4096 || lg->duration <= 0 ||
      lg->duration > 3600 || lg->warmup < 0 || lg->warmup > 600 || lg->drain < 0 ||
      lg->drain > 60 || lg->body_size < 0 || lg->body_size > 16000 || lg->signup_conc < 1 ||
      lg->connect_conc < 1 || lg->setup_conc < 1 || lg->setup_timeout <= 0 ||
      lg->setup_timeout > 3600 || strspn(lg->runid, "abcdefghijklmnopqrstuvwxyz0123456789") !=
                                      strlen(lg->runid) || strlen(lg->runid) > 12 ||
      strspn(lg->chat, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(lg->chat)) {
    fprintf(stderr, "loadgen: an option is out of range (see --help)\n");
    return -1;
  }
  if (lg->scen != SCEN_BROADCAST && lg->rate <= 0 && (lg->scen != SCEN_CHAT || lg->wire)) {
    fprintf(stderr, "loadgen: the %s scenario needs --rate > 0\n",
            lg->scen == SCEN_CHAT         ? "chat"
            : lg->scen == SCEN_TYPING    ? "typing"
            : lg->scen == SCEN_REACTIONS ? "reactions"
                                         : "connections/storm");
    return -1;
  }
  if (lg->scen == SCEN_TYPING) {
    /* Each user starts typing once per period N/R; it must have stopped before its next turn. */
    double period = lg->n_users / lg->rate;
    if (lg->typing_hold == 0)
      lg->typing_hold = period / 5;
    if (lg->typing_hold < 0.001 || lg->typing_hold > 0.9 * period) {
      fprintf(stderr, "loadgen: --typing-hold must be 1 ms to 90%% of a user's period (%.0f ms "
                      "at %d users and %.0f starts/s)\n",
              period * 1e3, lg->n_users, lg->rate);
      return -1;
    }
  }
  return 0;
}

static void raise_fd_limit(int need) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur < (rlim_t)need)
    fprintf(stderr, "loadgen: warning: open-file limit %llu is below the %d sockets needed\n",
            (unsigned long long)rl.rlim_cur, need);
}

int main(int argc, char **argv) {
  struct lg *lg = calloc(1, sizeof(*lg));
  if (!lg)
    return 1;
  lg->n_users = 1000;
  lg->chat_size = 10;
  lg->window = 64;
  lg->duration = 20;
  lg->warmup = 3;
  lg->drain = 3;
  lg->body_size = 64;
  lg->signup_conc = 8;
  lg->connect_conc = 100;
  lg->setup_conc = 256;
  lg->setup_timeout = 600;
  lg->probes = 10;
  lg->storm_conc = 1000;
  lg->src_addrs = -1;
  strcpy(lg->xmpp_domain, "localhost");
  lg->srv_rss_idle_kb = lg->srv_rss_joined_kb = -1;
  lg->t_meas0 = lg->t_meas1 = UINT64_MAX;
  if (parse_args(lg, argc, argv) != 0)
    return 2;
  if (!lg->runid[0])
    make_runid(lg);
  rand_state ^= uv_hrtime() ^ ((uint64_t)getpid() << 32);
  if (rand_state == 0)
    rand_state = 1;
  raise_fd_limit(lg->n_users + 64);
  signal(SIGPIPE, SIG_IGN);

  int n = lg->n_users;
  int k = lg->scen != SCEN_BROADCAST && !lg->chat[0] ? (lg->chat_size < n ? lg->chat_size : n) : n;
  lg->n_groups = (n + k - 1) / k;
  lg->users = calloc((size_t)n, sizeof(*lg->users));
  lg->conns = calloc((size_t)n, sizeof(*lg->conns));
  lg->groups = calloc((size_t)lg->n_groups, sizeof(*lg->groups));
  lg->order = calloc((size_t)n, sizeof(int));
  lg->work = calloc((size_t)n, sizeof(int));
  lg->pad = calloc((size_t)lg->body_size + 2, 1);
  lg->stops = calloc((size_t)n, sizeof(*lg->stops));
  lg->idmap = calloc((size_t)n, sizeof(*lg->idmap));
  if (!lg->users || !lg->conns || !lg->groups || !lg->order || !lg->work || !lg->pad ||
      !lg->stops || !lg->idmap)
    return 1;
  /* "lgt=" + up to 20 digits + " u" + index + " n" + counter make about 40 bytes; the rest is
   * padding. */
  if (lg->body_size > 40) {
    lg->pad[0] = ' ';
    memset(lg->pad + 1, 'x', (size_t)lg->body_size - 40);
  }
  for (int g = 0; g < lg->n_groups; g++) {
    lg->groups[g].first = g * k;
    lg->groups[g].size = (g + 1) * k <= n ? k : n - g * k;
  }
  /* Round-robin order that visits chat 0, 1, 2... before a chat's second member, so the total
   * rate reaches every chat evenly instead of in bursts. */
  if (lg->scen != SCEN_BROADCAST) {
    for (int j = 0; j < k; j++)
      for (int g = 0; g < lg->n_groups; g++)
        if (j < lg->groups[g].size)
          lg->order[lg->n_order++] = lg->groups[g].first + j;
  } else {
    lg->order[lg->n_order++] = 0;
  }
  for (int i = 0; i < n; i++) {
    struct conn *c = &lg->conns[i];
    c->lg = lg;
    c->idx = i;
    c->group = lg->scen != SCEN_BROADCAST ? i / k : 0;
    c->expect_seq = -1;
    uint32_t ring = RING_DEFAULT;
    if (i == 0 && lg->scen == SCEN_BROADCAST)
      while (ring < (uint32_t)lg->window * 2)
        ring *= 2;
    c->ring = calloc(ring, sizeof(struct pending));
    c->ring_mask = ring - 1;
    if (!c->ring)
      return 1;
  }
  if (scen_conns_active(lg) && scen_conns_init(lg) != 0)
    return 1;
  if (lg->scen == SCEN_REACTIONS && scen_react_init(lg) != 0)
    return 1;
  if (lg->users_file)
    load_users_file(lg);
  for (int i = 0; i < n; i++)
    if (!lg->users[i].token)
      snprintf(lg->users[i].name, sizeof(lg->users[i].name), "b%su%d", lg->runid, i);
  if (lg->wire && wire_peer_init(lg) != 0)
    return 1;
  hist_init(&lg->lat);
  hist_init(&lg->ack);
  hist_init(&lg->lat_sec);
  hist_init(&lg->reply_all);
  hist_init(&lg->rep_lat);
  hist_init(&lg->rep_reply);

  lg->loop = uv_default_loop();
  uv_timer_init(lg->loop, &lg->tick);
  uv_timer_init(lg->loop, &lg->deadline);
  lg->tick.data = lg->deadline.data = lg;
  fprintf(stderr, "loadgen: %s scenario, %d users, %s, run id %s, server %s:%d%s\n",
          lg->scen == SCEN_CHAT     ? "chat"
          : lg->scen == SCEN_TYPING ? "typing"
          : lg->scen == SCEN_CONNS  ? "connections"
          : lg->scen == SCEN_STORM  ? "storm"
                                    : "broadcast",
          n,
          lg->scen != SCEN_BROADCAST ? "chats of K" : "one chat", lg->runid, lg->host, lg->port,
          lg->path);
  phase_begin(lg, PH_SIGNUP);
  uv_run(lg->loop, UV_RUN_DEFAULT);
  if (lg->exit_code != 0)
    return lg->exit_code;
  report(lg);
  int scen_bad = lg->sc ? scen_conns_report(lg) : 0;
  if (lg->scen == SCEN_REACTIONS)
    scen_bad |= scen_react_report(lg);
  /* A run that lost, duplicated or reordered messages, or was cut off, is not a result. */
  uint64_t missing = lg->expected > lg->tot.deliveries ? lg->expected - lg->tot.deliveries : 0;
  /* Typing: a start the typer's own socket saw listed but another member did not is lost (they
   * get the same events), and a socket still showing typers after everyone stopped is stuck. */
  if (lg->scen == SCEN_TYPING && lg->typ_expected > lg->typ_seen + lg->typ_hidden)
    missing = lg->typ_expected - lg->typ_seen - lg->typ_hidden;
  if (missing || scen_bad || lg->seq_gaps || lg->seq_dups || lg->closes || lg->proto_errs || lg->null_id ||
      lg->typ_unexpected || (lg->scen == SCEN_TYPING && lg->typ_nonempty)) {
    fprintf(stderr, "loadgen: integrity problems (see the report above)\n");
    return 3;
  }
  return 0;
}
