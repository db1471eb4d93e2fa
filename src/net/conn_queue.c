/* conn_queue.c - putting output on a connection's queue and marking it for the next flush.
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

