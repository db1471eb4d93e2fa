/* outq.h - refcounted output chunks and the bounded per-connection queue that holds them.
 *
 * An outbound event is encoded (JSON, then a WebSocket frame) once into a chunk; every
 * recipient's queue takes a reference to that same chunk instead of a copy, the shape of h2o's
 * shared chunks and mosquitto's refcounted message store. The loop thread is the only user, so
 * the counts are plain integers.
 */
#ifndef PARLEY_NET_OUTQ_H
#define PARLEY_NET_OUTQ_H

#include <stddef.h>
#include <stdint.h>

struct outq_chunk {
  uint32_t refs;
  uint32_t len;  /* bytes of data */
  char data[];
};

/* Allocates a chunk of `len` bytes with one reference (the caller's). Returns NULL on OOM. */
struct outq_chunk *outq_chunk_new(size_t len);

/* Takes another reference. Returns c. */
static inline struct outq_chunk *outq_chunk_ref(struct outq_chunk *c) {
  c->refs++;
  return c;
}

/* Drops a reference; frees the chunk with the last one. NULL is fine. */
void outq_chunk_unref(struct outq_chunk *c);

struct outq_ent {
  struct outq_chunk *chunk; /* one reference held by the queue */
  uint32_t off : 31;        /* bytes of the chunk already written */
  uint32_t pull : 1;        /* a reply the client asked for (1), or a pushed event (0) */
};

/* A FIFO ring of chunk references. `bytes` counts what is still unwritten, `pull_bytes` the
 * part of it that belongs to replies (see net_ws_send_frame for why the two are told apart). */
struct outq {
  struct outq_ent *ents; /* owned; allocated on first push */
  uint32_t head;
  uint32_t count;
  uint32_t cap;          /* power of two, 0 before the first push */
  size_t bytes;
  size_t pull_bytes;
};

void outq_init(struct outq *q);

/* Drops every reference and frees the ring. */
void outq_dispose(struct outq *q);

/* Appends a reference to c (the queue takes its own reference; the caller keeps theirs);
 * `pull` marks a reply. Returns 0 or PARLEY_EINTERNAL on OOM. */
int outq_push(struct outq *q, struct outq_chunk *c, int pull);

/* The i-th entry from the head (i < count). */
static inline struct outq_ent *outq_at(struct outq *q, uint32_t i) {
  return &q->ents[(q->head + i) & (q->cap - 1)];
}

/* Marks `n` bytes from the head as written, dropping chunks that are complete. */
void outq_advance(struct outq *q, size_t n);

/* Drops every entry from index `from` on (entries before it are kept, e.g. those in flight). */
void outq_truncate(struct outq *q, uint32_t from);

#endif
