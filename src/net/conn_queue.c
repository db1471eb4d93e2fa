/* conn_queue.c - putting output on a connection's queue, marking it for the next flush, its caps,
 * and the list of HTTP connections that go on parsing on the next loop turn.
 *
 * Kept apart from server.c (sockets, libuv) so that the fuzz harness, which replaces server.c
 * with a fake transport, links this exact code instead of a copy of it.
 */
#include <string.h>

#include "common/error.h"
#include "net/net_internal.h"

void net__conn_mark_dirty(struct net_conn *c) {
  if (c->dirty || c->closing)
    return;
  c->dirty = 1;
  DL_APPEND2(c->srv->dirty, c, dprev, dnext);
}

void net__conn_unmark_dirty(struct net_conn *c) {
  if (!c->dirty)
    return;
  c->dirty = 0;
  DL_DELETE2(c->srv->dirty, c, dprev, dnext);
}

int net__conn_push(struct net_conn *c, struct outq_chunk *chunk, int pull) {
  if (c->closing)
    return PARLEY_EUNAVAILABLE;
  if (outq_push(&c->q, chunk, pull) != 0)
    return PARLEY_EINTERNAL;
  c->srv->stats.bytes_out += chunk->len;
  net__conn_mark_dirty(c);
  return 0;
}

int net__conn_push_copy(struct net_conn *c, const void *data, size_t len) {
  struct outq_chunk *chunk = outq_chunk_new(len);
  int err;
  if (chunk == NULL)
    return PARLEY_EINTERNAL;
  memcpy(chunk->data, data, len);
  err = net__conn_push(c, chunk, 1); /* HTTP responses and control frames */
  outq_chunk_unref(chunk);
  return err;
}


size_t net__conn_held(const struct net_conn *c) {
  return c->q.bytes + (size_t)c->q.count * NET__ENTRY_COST;
}

int net__conn_over_cap(const struct net_conn *c) {
  const struct net_config *cfg = &c->srv->cfg;
  return c->q.bytes - c->q.pull_bytes > cfg->outq_max || net__conn_held(c) > cfg->outq_hard_max;
}

void net__conn_resume_later(struct net_conn *c) {
  if (c->resume_linked || c->closing)
    return;
  c->resume_linked = 1;
  DL_APPEND2(c->srv->resumes, c, rprev, rnext);
  net__server_wake(c->srv);
}

void net__conn_resume_cancel(struct net_conn *c) {
  if (!c->resume_linked)
    return;
  c->resume_linked = 0;
  DL_DELETE2(c->srv->resumes, c, rprev, rnext);
}

void net__run_resumes(struct net_server *s) {
  /* Only as many as are listed now: one that answers its next request at once and so asks
   * again goes round on the next turn, after its output was flushed. (Counting rather than
   * remembering the last entry: that entry may close, and unlink itself, meanwhile.) */
  size_t n = 0;
  struct net_conn *c;
  DL_COUNT2(s->resumes, c, n, rnext);
  while (n-- > 0 && s->resumes) {
    c = s->resumes;
    net__conn_resume_cancel(c);
    if (!c->closing && c->http)
      net__http_resume(c);
  }
}

void net__conn_wrote(struct net_conn *c) {
  c->last_tx_ms = uv_now(c->srv->loop);
  if (c->http_blocked && c->http && net__conn_held(c) <= net__http_out_bound(c->srv))
    net__conn_resume_later(c);
}
