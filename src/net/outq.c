/* outq.c - refcounted chunks and the ring queue declared in outq.h. */
#include "net/outq.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"

struct outq_chunk *outq_chunk_new(size_t len) {
  struct outq_chunk *c = malloc(sizeof *c + len);
  if (c == NULL)
    return NULL;
  c->refs = 1;
  c->len = (uint32_t)len;
  return c;
}

void outq_chunk_unref(struct outq_chunk *c) {
  if (c != NULL && --c->refs == 0)
    free(c);
}

void outq_init(struct outq *q) { memset(q, 0, sizeof *q); }

void outq_dispose(struct outq *q) {
  outq_truncate(q, 0);
  free(q->ents);
  memset(q, 0, sizeof *q);
}

int outq_push(struct outq *q, struct outq_chunk *c, int pull) {
  if (q->count == q->cap) {
    uint32_t ncap = q->cap ? q->cap * 2 : 8;
    struct outq_ent *n = malloc(ncap * sizeof *n);
    if (n == NULL)
      return PARLEY_EINTERNAL;
    /* Unroll the ring into the new array so head becomes 0. */
    for (uint32_t i = 0; i < q->count; i++)
      n[i] = *outq_at(q, i);
    free(q->ents);
    q->ents = n;
    q->cap = ncap;
    q->head = 0;
  }
  q->ents[(q->head + q->count) & (q->cap - 1)] =
      (struct outq_ent){outq_chunk_ref(c), 0, pull ? 1u : 0u};
  q->count++;
  q->bytes += c->len;
  if (pull)
    q->pull_bytes += c->len;
  return 0;
}

void outq_advance(struct outq *q, size_t n) {
  while (n > 0 && q->count > 0) {
    struct outq_ent *e = outq_at(q, 0);
    size_t left = e->chunk->len - e->off;
    if (n < left) {
      e->off += (uint32_t)n;
      q->bytes -= n;
      if (e->pull)
        q->pull_bytes -= n;
      return;
    }
    n -= left;
    q->bytes -= left;
    if (e->pull)
      q->pull_bytes -= left;
    outq_chunk_unref(e->chunk);
    q->head = (q->head + 1) & (q->cap - 1);
    q->count--;
  }
}

void outq_truncate(struct outq *q, uint32_t from) {
  while (q->count > from) {
    struct outq_ent *e = outq_at(q, q->count - 1);
    q->bytes -= e->chunk->len - e->off;
    if (e->pull)
      q->pull_bytes -= e->chunk->len - e->off;
    outq_chunk_unref(e->chunk);
    q->count--;
  }
  if (q->count == 0)
    q->head = 0;
}
