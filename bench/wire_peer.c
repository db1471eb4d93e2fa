/* wire_peer.c - what the peer wires share: set-up steps, the paced send, and the accounting of
 * received chat messages (see wire.h for how loss, duplicates and acks are defined for servers
 * that have neither sequence numbers nor acknowledgements).
 */
#include "loadgen.h"
#include "wire.h"

#include <stdlib.h>
#include <string.h>

#define MAX_PRINTED 10

int wire_lookup(const char *name, const struct wire_ops **out) {
  if (strcmp(name, "parley") == 0)
    *out = NULL;
  else if (strcmp(name, "socketio") == 0 || strcmp(name, "socket.io") == 0)
    *out = &wire_sio;
  else if (strcmp(name, "xmpp") == 0 || strcmp(name, "ejabberd") == 0)
    *out = &wire_xmpp;
  else
    return -1;
  return 0;
}

int wire_peer_init(struct lg *lg) {
  for (int g = 0; g < lg->n_groups; g++)
    snprintf(lg->groups[g].slug, sizeof(lg->groups[g].slug), "b%sg%d", lg->runid, g);
  for (int i = 0; i < lg->n_users; i++) {
    struct conn *c = &lg->conns[i];
    c->from_next = calloc((size_t)lg->groups[c->group].size, sizeof(uint64_t));
    if (!c->from_next)
      return -1;
    for (int j = 0; j < lg->groups[c->group].size; j++)
      c->from_next[j] = 1; /* counters start at 1 */
  }
  return 0;
}

int wire_peer_step(struct lg *lg, struct conn *c) {
  switch (lg->phase) {
  case PH_CONNECT:
    return lg->wire->open(c);
  case PH_CREATE: /* the room's first member makes it exist, then the others join */
  case PH_JOIN:
    return lg->wire->join(c);
  default:
    return -1;
  }
}

void wire_peer_send(struct lg *lg, struct conn *c) {
  if (c->state != CONN_OPEN) {
    lg->tot.skipped++;
    return;
  }
  uint64_t t = uv_hrtime();
  int measured = t >= lg->t_meas0 && t < lg->t_meas1;
  char body[17100];
  int n = snprintf(body, sizeof(body), "lgt=%llu u%d n%llu%s", (unsigned long long)t, c->idx,
                   (unsigned long long)(c->nsent + 1), lg->pad);
  if (n <= 0 || (size_t)n >= sizeof(body) || lg->wire->send(c, body, (size_t)n) != 0) {
    lg->tot.skipped++;
    if (measured)
      lg->win.skipped++;
    return;
  }
  c->nsent++;
  lg->tot.sends++;
  if (measured)
    lg->win.sends++;
  lg->send_inflight++;
  lg->expected += (uint64_t)lg->groups[c->group].size;
}

void wire_peer_down(struct lg *lg, struct conn *c) {
  uint64_t lost = c->nsent - c->echoed;
  lg->send_inflight -= (int64_t)lost;
  lg->unacked += lost;
  c->echoed = c->nsent;
}

void wire_peer_bad(struct conn *c, const char *what, const char *p, size_t n) {
  struct lg *lg = c->lg;
  lg->proto_errs++;
  if (lg->errors_printed++ < MAX_PRINTED)
    fprintf(stderr, "loadgen: %s: %s on user %d: %.*s\n", lg->wire->name, what, c->idx,
            (int)(n > 200 ? 200 : n), p);
}

/* Reads "<tag><digits>" at *p; advances past it. Returns 0 or -1. */
static int take_num(const char **p, const char *end, const char *tag, uint64_t *v) {
  size_t tl = strlen(tag);
  if ((size_t)(end - *p) <= tl || memcmp(*p, tag, tl) != 0)
    return -1;
  const char *q = *p + tl;
  if (q >= end || *q < '0' || *q > '9')
    return -1;
  uint64_t x = 0;
  while (q < end && *q >= '0' && *q <= '9')
    x = x * 10 + (uint64_t)(*q++ - '0');
  *v = x;
  *p = q;
  return 0;
}

void wire_peer_msg(struct conn *c, const char *room, size_t room_len, const char *body, size_t n) {
  struct lg *lg = c->lg;
  struct group *g = &lg->groups[c->group];
  if (room_len != strlen(g->slug) || memcmp(room, g->slug, room_len) != 0) {
    wire_peer_bad(c, "message from another room", room, room_len);
    return;
  }
  const char *p = body, *end = body + n;
  uint64_t ts, from, cnt;
  if (take_num(&p, end, "lgt=", &ts) != 0 || take_num(&p, end, " u", &from) != 0 ||
      take_num(&p, end, " n", &cnt) != 0 || from < (uint64_t)g->first ||
      from >= (uint64_t)(g->first + g->size)) {
    wire_peer_bad(c, "message body not ours", body, n);
    return;
  }
  uint64_t *next = &c->from_next[from - (uint64_t)g->first];
  int fresh = cnt >= *next;
  if (cnt == *next) {
    (*next)++;
  } else if (cnt > *next) {
    lg->seq_gaps += cnt - *next;
    *next = cnt + 1;
  } else {
    lg->seq_dups++;
  }
  if (fresh && (int)from == c->idx) { /* the sender's own copy is its ack */
    c->echoed++;
    lg->send_inflight--;
    lg->tot.acks++;
    if (ts >= lg->t_meas0 && ts < lg->t_meas1) {
      lg->win.acks++;
      hist_record(&lg->ack, lg->now_recv > ts ? lg->now_recv - ts : 0);
    }
  }
  lg_count_delivery(c, -1, ts);
}
