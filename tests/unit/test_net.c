/* test_net.c - the output queue of src/net: refcounts, partial writes, truncation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "net/outq.h"

static void test_shared_chunk_refcounts(void **state) {
  struct outq a, b;
  struct outq_chunk *c = outq_chunk_new(10);
  memcpy(c->data, "0123456789", 10);
  outq_init(&a);
  outq_init(&b);
  assert_int_equal(outq_push(&a, c, 0), 0);
  assert_int_equal(outq_push(&b, c, 1), 0);
  assert_int_equal(b.pull_bytes, 10);
  assert_int_equal(a.pull_bytes, 0);
  assert_int_equal(c->refs, 3);
  outq_chunk_unref(c); /* the producer lets go; both queues still hold it */
  assert_int_equal(c->refs, 2);
  outq_advance(&a, 10);
  assert_int_equal(a.count, 0);
  assert_int_equal(c->refs, 1);
  outq_dispose(&b); /* frees the chunk: ASan would flag a leak or double free */
  outq_dispose(&a);
}

static void test_partial_advance_and_growth(void **state) {
  struct outq q;
  outq_init(&q);
  for (int i = 0; i < 20; i++) { /* past the initial ring of 8, across a wrap */
    struct outq_chunk *c = outq_chunk_new(4);
    memset(c->data, 'a' + i, 4);
    assert_int_equal(outq_push(&q, c, i % 2), 0); /* odd chunks are replies */
    outq_chunk_unref(c);
    if (i == 5)
      outq_advance(&q, 4 * 5 + 2); /* five whole chunks and half of the sixth */
  }
  assert_int_equal(q.count, 15);
  assert_int_equal(q.bytes, 15 * 4 - 2);
  assert_int_equal(outq_at(&q, 0)->off, 2);
  /* Replies left: the rest of chunk 5 (2 bytes) and chunks 7, 9, ..., 19 (7 x 4 bytes). */
  assert_int_equal(q.pull_bytes, 2 + 7 * 4);
  assert_int_equal(outq_at(&q, 0)->chunk->data[0], 'f');
  assert_int_equal(outq_at(&q, 1)->chunk->data[0], 'g');
  outq_truncate(&q, 1); /* keep only the half-written head */
  assert_int_equal(q.count, 1);
  assert_int_equal(q.bytes, 2);
  assert_int_equal(q.pull_bytes, 2);
  outq_dispose(&q);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shared_chunk_refcounts),
      cmocka_unit_test(test_partial_advance_and_growth),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
