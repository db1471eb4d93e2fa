/* test_cluster_wire.c - the bus lines between nodes (src/app/cluster_wire.c): every kind
 * survives an encode/decode round trip, and malformed lines from another node are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "app/cluster_wire.h"
#include "common/error.h"

#define NODE_A "0123456789abcdef"
#define NODE_B "fedcba9876543210"

static int decode_str(int chat, const char *s, struct cluster_wire_msg *m) {
  return cluster_wire_decode(chat, s, strlen(s), m);
}

/* The last encoded line: the decoded message points into it until the next round trip. */
static char *last;

/* Encodes m, decodes the result into *out and checks the kind and the bytes. */
static void round_trip(int chat, const struct cluster_wire_msg *m, const int64_t *ids, size_t n,
                       const char *expect, struct cluster_wire_msg *out) {
  size_t len;
  char *s = cluster_wire_encode(m, ids, n, &len);
  assert_non_null(s);
  assert_int_equal(len, strlen(expect));
  assert_memory_equal(s, expect, len);
  assert_int_equal(cluster_wire_decode(chat, s, len, out), 0);
  assert_int_equal(out->kind, m->kind);
  free(last);
  last = s;
}

static void test_msg(void **state) {
  struct cluster_wire_msg m = {0}, d;
  m.kind = CLUSTER_MSG;
  m.seq = 42;
  m.member_gen = 7;
  m.body = "{\"ev\":\"msg\"}";
  m.body_len = strlen(m.body);
  round_trip(1, &m, NULL, 0, "m42 7\n{\"ev\":\"msg\"}", &d);
  assert_int_equal(d.seq, 42);
  assert_int_equal(d.member_gen, 7);
  assert_int_equal(d.body_len, m.body_len);
  assert_memory_equal(d.body, m.body, m.body_len);
}

/* Issue 19: a stream's delta carries its stream's seq and its offset. */
static void test_delta(void **state) {
  struct cluster_wire_msg m = {0}, d;
  m.kind = CLUSTER_DELTA;
  m.seq = 42;
  m.offset = 16384;
  m.member_gen = 7;
  m.body = "{\"ev\":\"msg.delta\"}";
  m.body_len = strlen(m.body);
  round_trip(1, &m, NULL, 0, "D42 16384 7\n{\"ev\":\"msg.delta\"}", &d);
  assert_int_equal(d.seq, 42);
  assert_int_equal(d.offset, 16384);
  assert_int_equal(d.member_gen, 7);
  assert_memory_equal(d.body, m.body, m.body_len);
  /* Only on a chat's channel. */
  assert_int_equal(decode_str(0, "D42 0 7\n{}", &d), PARLEY_EBAD_REQUEST);
}

static void test_room_lines(void **state) {
  struct cluster_wire_msg m = {0}, d;
  m.kind = CLUSTER_ROOM_STATE;
  strcpy(m.node, NODE_A);
  m.body = "{}";
  m.body_len = 2;
  round_trip(1, &m, NULL, 0, "s" NODE_A "\n{}", &d);
  assert_string_equal(d.node, NODE_A);
  assert_int_equal(d.body_len, 2);
  m.kind = CLUSTER_ROOM_QUERY;
  round_trip(1, &m, NULL, 0, "q" NODE_A "\n", &d);
  assert_string_equal(d.node, NODE_A);
}

static void test_notify_and_presence_ids(void **state) {
  struct cluster_wire_msg m = {0}, d;
  int64_t ids[3] = {5, 9007199254740991LL, 12}, got[3];
  m.kind = CLUSTER_NOTIFY;
  m.body = "{}";
  m.body_len = 2;
  round_trip(0, &m, ids, 3, "n5,9007199254740991,12\n{}", &d);
  assert_int_equal(d.n_ids, 3);
  assert_int_equal(cluster_wire_ids(&d, got), 3);
  assert_memory_equal(got, ids, sizeof ids);

  m.kind = CLUSTER_PRESENCE;
  m.user_id = 5;
  m.state = 2;
  m.last_seen = 1700000000000LL;
  round_trip(0, &m, ids, 2, "p5 2 1700000000000\n5,9007199254740991\n{}", &d);
  assert_int_equal(d.user_id, 5);
  assert_int_equal(d.state, 2);
  assert_int_equal(d.last_seen, 1700000000000LL);
  assert_int_equal(d.n_ids, 2);
  /* An announcement to nobody is still a state change. */
  round_trip(0, &m, NULL, 0, "p5 2 1700000000000\n\n{}", &d);
  assert_int_equal(d.n_ids, 0);

  m.kind = CLUSTER_PRESENCE_STATE;
  round_trip(0, &m, NULL, 0, "P5 2 1700000000000\n", &d);
  assert_int_equal(d.user_id, 5);
  assert_int_equal(d.last_seen, 1700000000000LL);
}

static void test_drop_close_and_node_lines(void **state) {
  struct cluster_wire_msg m = {0}, d;
  m.kind = CLUSTER_DROP;
  m.user_id = 77;
  strcpy(m.slug, "design-review");
  round_trip(0, &m, NULL, 0, "d77 design-review\n", &d);
  assert_int_equal(d.user_id, 77);
  assert_string_equal(d.slug, "design-review");

  memset(&m, 0, sizeof m);
  m.kind = CLUSTER_CLOSE;
  for (size_t i = 0; i < sizeof m.session_hash; i++)
    m.session_hash[i] = (uint8_t)(i * 7);
  m.code = 4001;
  strcpy(m.reason, "logged out");
  {
    size_t len;
    char *s = cluster_wire_encode(&m, NULL, 0, &len);
    assert_non_null(s);
    assert_int_equal(cluster_wire_decode(0, s, len, &d), 0);
    free(s);
  }
  assert_memory_equal(d.session_hash, m.session_hash, sizeof m.session_hash);
  assert_int_equal(d.code, 4001);
  assert_string_equal(d.reason, "logged out");

  memset(&m, 0, sizeof m);
  m.kind = CLUSTER_FENCE;
  strcpy(m.node, NODE_A);
  m.fid = 3;
  strcpy(m.slug, "room");
  strcpy(m.username, "ana");
  round_trip(0, &m, NULL, 0, "F" NODE_A " 3 room ana\n", &d);
  assert_int_equal(d.fid, 3);
  assert_string_equal(d.slug, "room");
  assert_string_equal(d.username, "ana");

  m.kind = CLUSTER_ACK;
  strcpy(m.acker, NODE_B);
  round_trip(0, &m, NULL, 0, "a" NODE_A " 3 " NODE_B "\n", &d);
  assert_string_equal(d.node, NODE_A);
  assert_string_equal(d.acker, NODE_B);

  m.kind = CLUSTER_UNFENCE;
  round_trip(0, &m, NULL, 0, "f" NODE_A " 3\n", &d);
  assert_int_equal(d.fid, 3);

  m.kind = CLUSTER_HEARTBEAT;
  round_trip(0, &m, NULL, 0, "h" NODE_A "\n", &d);
  assert_string_equal(d.node, NODE_A);
}

static void test_malformed_lines_are_refused(void **state) {
  static const struct {
    int chat;
    const char *line;
  } bad[] = {
      {1, ""},
      {1, "m"},
      {1, "m42 7"},                /* no newline */
      {1, "m0 7\n{}"},             /* seq starts at 1 */
      {1, "m-3 7\n{}"},
      {1, "m42 -1\n{}"},
      {1, "m42\n{}"},
      {1, "m42 7x\n{}"},
      {1, "D42 7\n{}"},             /* a delta without its offset */
      {1, "D42 -1 7\n{}"},
      {1, "D0 0 7\n{}"},
      {1, "D42 0 7"},
      {1, "s0123\n{}"},            /* node id of the wrong length */
      {1, "zfoo\n"},               /* unknown kind */
      {0, "n\n{}"},                /* nobody */
      {0, "n1,,2\n{}"},
      {0, "n1,-2\n{}"},
      {0, "n1;2\n{}"},
      {0, "n1,2"},
      {0, "d0 room\n"},
      {0, "d5room\n"},
      {0, "d5 \n"},
      {0, "x00 4001\nr"},          /* hash too short */
      {0, "h" NODE_A "x\n"},       /* node id too long */
      {0, "F" NODE_A " 0 room ana\n"}, /* fence 0 is "none" */
      {0, "F" NODE_A " 3 room\n"},
      {0, "a" NODE_A " 3\n"},
      {0, "f" NODE_A "\n"},
      {0, "P0 1 5\n"},
      {0, "P5 1\n"},
      {0, "p5 1 5\n1,2"},          /* no newline after the ids */
      {0, "p5 1 5\nx\n{}"},
      {0, "?\n"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct cluster_wire_msg m;
    int rc = decode_str(bad[i].chat, bad[i].line, &m);
    if (rc != PARLEY_EBAD_REQUEST)
      fail_msg("accepted: \"%s\"", bad[i].line);
  }
}

/* Regression (found by fuzz_cluster_wire): a line is not NUL-terminated, and the decoder's
 * number parsing (strtoll) skipped the newline as white space and read past the end of "d\n".
 * Each line is decoded from a heap block of exactly its length, so ASan sees any over-read. */
static void test_no_read_past_the_end(void **state) {
  static const char *lines[] = {"d\n", "d5\n", "n1,\n", "n\n", "m1 \n", "m\n", "P1 2 \n",
                                "p1 2 3\n1,\n", "x\n", "F0123456789abcdef \n"};
  for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
    size_t len = strlen(lines[i]);
    char *copy = malloc(len);
    struct cluster_wire_msg m;
    assert_non_null(copy);
    memcpy(copy, lines[i], len);
    assert_int_equal(cluster_wire_decode(lines[i][0] == 'm', copy, len, &m), PARLEY_EBAD_REQUEST);
    free(copy);
  }
}

static void test_close_code_range_and_reason_cap(void **state) {
  char line[512];
  char hash[2 * STORE_TOKEN_HASH_LEN + 1];
  struct cluster_wire_msg m;
  memset(hash, 'a', sizeof hash - 1);
  hash[sizeof hash - 1] = '\0';
  snprintf(line, sizeof line, "x%s 999\nr", hash);
  assert_int_equal(decode_str(0, line, &m), PARLEY_EBAD_REQUEST);
  snprintf(line, sizeof line, "x%s 5000\nr", hash);
  assert_int_equal(decode_str(0, line, &m), PARLEY_EBAD_REQUEST);
  snprintf(line, sizeof line, "x%s 1000\n%0300d", hash, 0);
  assert_int_equal(decode_str(0, line, &m), 0);
  assert_int_equal(strlen(m.reason), CLUSTER_REASON_MAX);
}

static void test_too_many_ids(void **state) {
  size_t n = CLUSTER_IDS_MAX + 1, len = 0;
  char *line = malloc(3 * n + 8);
  struct cluster_wire_msg m;
  assert_non_null(line);
  line[len++] = 'n';
  for (size_t i = 0; i < n; i++)
    len += (size_t)sprintf(line + len, i ? ",1" : "1");
  line[len++] = '\n';
  assert_int_equal(cluster_wire_decode(0, line, len, &m), PARLEY_EBAD_REQUEST);
  /* One fewer is the largest audience a line may name. */
  line[1 + 2 * (n - 1) - 1] = '\n';
  assert_int_equal(cluster_wire_decode(0, line, 1 + 2 * (n - 1), &m), 0);
  assert_int_equal(m.n_ids, CLUSTER_IDS_MAX);
  free(line);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_msg),
      cmocka_unit_test(test_delta),
      cmocka_unit_test(test_room_lines),
      cmocka_unit_test(test_notify_and_presence_ids),
      cmocka_unit_test(test_drop_close_and_node_lines),
      cmocka_unit_test(test_malformed_lines_are_refused),
      cmocka_unit_test(test_no_read_past_the_end),
      cmocka_unit_test(test_close_code_range_and_reason_cap),
      cmocka_unit_test(test_too_many_ids),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  free(last);
  return rc;
}
