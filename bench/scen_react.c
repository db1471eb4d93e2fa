/* scen_react.c - the reactions scenario (issue 17): the chat scenario's messages, and at the same
 * time `react` toggles at --react-rate in total, so that the delivery latency of reactions and of
 * messages is measured in one run on one server.
 *
 * Each user's reactions alternate on and off (the same emoji on the newest text message its
 * socket has seen, then off again), so every react changes something and is appended as a
 * `reaction` entry of the chat's sequence that every member's subscription receives as a `msg`
 * event. Reaction entries carry no body to timestamp, so their latency is matched by order: a
 * user has at most one react in flight, and the server appends one user's reactions in the order
 * they were sent, so the k-th reaction entry by author A that a socket receives is the k-th
 * reaction A sent (its send time is kept in A's ring). A react refused with an error appends
 * nothing, and the author's count steps back before its next react, so the order still holds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"

#define REACT_EMOJI "\xf0\x9f\x91\x8d" /* U+1F44D thumbs up */

static double ms(uint64_t ns) {
  return (double)ns / 1e6;
}

int scen_react_init(struct lg *lg) {
  for (int i = 0; i < lg->n_users; i++) {
    struct conn *c = &lg->conns[i];
    c->react_seen = calloc((size_t)lg->groups[c->group].size, sizeof *c->react_seen);
    if (c->react_seen == NULL)
      return -1;
  }
  if (lg->react_rate <= 0)
    lg->react_rate = 2000;
  hist_init(&lg->react_lat);
  hist_init(&lg->react_ack);
  return 0;
}

/* One toggle from c: on (on the newest text message c has seen) or off again. */
static void react_one(struct lg *lg, struct conn *c) {
  uint64_t t = uv_hrtime();
  int measured = t >= lg->t_meas0 && t < lg->t_meas1;
  int64_t target = c->react_on ? c->react_target : c->last_text_seq;
  uint64_t id;
  char msg[256];
  int n;
  if (c->state != CONN_OPEN || c->react_busy || target <= 0 ||
      !(id = lg_req_take(c, REQ_REACT, t, measured))) {
    lg->react_skipped++;
    return;
  }
  n = snprintf(msg, sizeof msg,
               "{\"id\":%llu,\"op\":\"react\",\"chat\":\"%s\",\"seq\":%lld,\"emoji\":\"" REACT_EMOJI
               "\",\"on\":%s}",
               (unsigned long long)id, lg->groups[c->group].slug, (long long)target,
               c->react_on ? "false" : "true");
  c->react_ts[c->react_sent % REACT_RING] = t;
  if (n <= 0 || (size_t)n >= sizeof msg || ws_conn_send_text(c, msg, (size_t)n) != 0) {
    lg_req_release(c, id);
    lg->react_skipped++;
    return;
  }
  c->react_sent++;
  c->react_busy = 1;
  c->react_target = target;
  c->react_on = !c->react_on;
  lg->react_sends++;
  if (measured)
    lg->react_win_sends++;
  lg->send_inflight++;
}

void scen_react_tick(struct lg *lg, uint64_t now) {
  uint64_t due = (uint64_t)((double)(now - lg->t_load) * lg->react_rate / 1e9);
  uint64_t cap = (uint64_t)(lg->react_rate / 10.0) + 1; /* a stall skips, as msg sends do */
  if (lg->n_order == 0)
    return;
  if (due > lg->react_paced + cap) {
    lg->react_skipped += due - lg->react_paced - cap;
    lg->react_paced = due - cap;
  }
  while (lg->react_paced < due) {
    lg->react_paced++;
    /* From the far end of the send order, so a user's message and reaction rarely coincide. */
    uint64_t k = (lg->react_rr++ + (uint64_t)lg->n_order / 2) % (uint64_t)lg->n_order;
    react_one(lg, &lg->conns[lg->order[k]]);
  }
}

static const char *find(const char *p, const char *end, const char *k) {
  size_t kn = strlen(k);
  while ((size_t)(end - p) >= kn) {
    const char *q = memchr(p, k[0], (size_t)(end - p) - kn + 1);
    if (!q)
      return NULL;
    if (memcmp(q, k, kn) == 0)
      return q;
    p = q + 1;
  }
  return NULL;
}

void scen_react_on_event(struct lg *lg, struct conn *c, const char *p, size_t n) {
  const char *end = p + n, *a;
  int64_t author = 0;
  int idx, pos;
  struct conn *ac;
  uint64_t ts, now = lg->now_recv;
  if (!find(p, end, "\"kind\":\"reaction\""))
    return; /* a notice, or an edit: not ours */
  a = find(p, end, "\"author\":{\"id\":");
  if (a)
    for (a += 15; a < end && *a >= '0' && *a <= '9'; a++)
      author = author * 10 + (*a - '0');
  idx = lg_user_index(lg, author);
  pos = idx - lg->groups[c->group].first;
  if (idx < 0 || pos < 0 || pos >= lg->groups[c->group].size) {
    lg->react_unmatched++;
    return;
  }
  ac = &lg->conns[idx];
  lg->react_deliveries++;
  if (c->react_seen[pos] >= ac->react_sent) {
    lg->react_unmatched++; /* more entries by this author than it sent: the order broke */
    return;
  }
  if (ac->react_sent - c->react_seen[pos] > REACT_RING) {
    lg->react_unmatched++; /* this socket lags too far behind: the send time is gone */
    c->react_seen[pos]++;
    return;
  }
  ts = ac->react_ts[c->react_seen[pos]++ % REACT_RING];
  if (ts >= lg->t_meas0 && ts < lg->t_meas1)
    hist_record(&lg->react_lat, now > ts ? now - ts : 0);
}

void scen_react_on_reply(struct lg *lg, struct conn *c, const struct pending *pe, int ok,
                         const char *code) {
  lg->send_inflight--;
  c->react_busy = 0;
  if (ok) {
    lg->react_acks++;
    lg->expected += (uint64_t)lg->groups[c->group].size;
    if (pe->measured) {
      lg->react_win_acks++;
      hist_record(&lg->react_ack, lg->now_recv - pe->t_send);
    }
    return;
  }
  /* Nothing was appended: the next react takes this one's place in the order, and the toggle
   * goes back to what it was. */
  c->react_sent--;
  c->react_on = !c->react_on;
  if (lg->react_errors++ < 5)
    fprintf(stderr, "loadgen: react by %s failed: %s\n", lg->users[c->idx].name, code ? code : "?");
}

void scen_react_on_down(struct lg *lg, struct conn *c) {
  (void)lg;
  c->react_busy = 0;
}

int scen_react_report(struct lg *lg) {
  double secs = (double)(lg->t_meas1 - lg->t_meas0) / 1e9;
  printf("  reactions: offered %.0f/s, sent/s %.1f, acks/s %.1f; delivery p50/p99/p999/max "
         "%.3f/%.3f/%.3f/%.3f ms (samples %llu); ack p50/p99 %.3f/%.3f ms; errors %llu, skipped "
         "%llu (no message seen yet, or the previous react unanswered), unmatched %llu\n",
         lg->react_rate, (double)lg->react_win_sends / secs, (double)lg->react_win_acks / secs,
         ms(hist_quantile(&lg->react_lat, 0.50)), ms(hist_quantile(&lg->react_lat, 0.99)),
         ms(hist_quantile(&lg->react_lat, 0.999)), ms(lg->react_lat.max),
         (unsigned long long)lg->react_lat.count, ms(hist_quantile(&lg->react_ack, 0.5)),
         ms(hist_quantile(&lg->react_ack, 0.99)), (unsigned long long)lg->react_errors,
         (unsigned long long)lg->react_skipped, (unsigned long long)lg->react_unmatched);
  printf("  (the row above is the messages': sends/s and p50..max are msg.send's; deliv/s counts "
         "message and reaction entries)\n");
  return lg->react_errors > 0 || lg->react_unmatched > 0;
}
