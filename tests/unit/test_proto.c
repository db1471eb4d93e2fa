/* test_proto.c - decoding, validation and encoding of protocol v1 (src/proto). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/error.h"
#include "proto/proto.h"

static int decode(const char *text, struct proto_req *req, char *err) {
  return proto_decode(text, strlen(text), req, err, 160);
}

static void test_valid_send(void **state) {
  struct proto_req r;
  char err[160];
  assert_int_equal(decode("{\"id\":7,\"op\":\"msg.send\",\"chat\":\"design-review\","
                          "\"body\":\"hello\",\"clientMsgId\":\"c-1\",\"extra\":1}",
                          &r, err),
                   0);
  assert_int_equal(r.op, PROTO_OP_MSG_SEND);
  assert_int_equal(r.id, 7);
  assert_string_equal(r.chat, "design-review");
  assert_string_equal(r.body, "hello");
  assert_string_equal(r.client_msg_id, "c-1");
  assert_true(PROTO_HAS(&r, PROTO_F_CLIENT_MSG_ID));
  assert_false(PROTO_HAS(&r, PROTO_F_LIMIT));
  proto_req_dispose(&r);
}

static void test_errors_name_the_problem(void **state) {
  static const struct {
    const char *text;
    int code;
    int has_id;
    const char *needle;
  } cases[] = {
      {"not json", PARLEY_EBAD_REQUEST, 0, "invalid JSON"},
      {"[1,2]", PARLEY_EBAD_REQUEST, 0, "JSON object"},
      {"{\"op\":\"ping\"}", PARLEY_EBAD_REQUEST, 0, "id"},
      {"{\"id\":\"x\",\"op\":\"ping\"}", PARLEY_EBAD_REQUEST, 0, "id"},
      {"{\"id\":-1,\"op\":\"ping\"}", PARLEY_EBAD_REQUEST, 0, "id"},
      {"{\"id\":1}", PARLEY_EBAD_REQUEST, 1, "op"},
      {"{\"id\":1,\"op\":\"nope\"}", PARLEY_EBAD_REQUEST, 1, "unknown op \"nope\""},
      {"{\"id\":1,\"op\":\"msg.send\",\"chat\":\"a\"}", PARLEY_EBAD_REQUEST, 1, "body: required"},
      {"{\"id\":1,\"op\":\"msg.send\",\"chat\":\"a\",\"body\":5}", PARLEY_EBAD_REQUEST, 1,
       "body: must be a string"},
      {"{\"id\":1,\"op\":\"msg.send\",\"chat\":\"a\",\"body\":\"   \"}", PARLEY_EBAD_REQUEST, 1,
       "white space"},
      /* Invisible or non-ASCII white space only (core/text.c): U+200B U+3000, then U+FEFF. */
      {"{\"id\":1,\"op\":\"msg.send\",\"chat\":\"a\",\"body\":\"\\u200b\\u3000\"}",
       PARLEY_EBAD_REQUEST, 1, "body: must be a string of 1-16384 bytes with a visible"},
      {"{\"id\":1,\"op\":\"chat.create\",\"title\":\"\\ufeff\"}", PARLEY_EBAD_REQUEST, 1,
       "title: must be a string of 1-100 characters with a visible"},
      /* A bidi override in a title. */
      {"{\"id\":1,\"op\":\"chat.create\",\"title\":\"ab\\u202ecd\"}", PARLEY_EBAD_REQUEST, 1,
       "bidi"},
      {"{\"id\":1,\"op\":\"msg.send\",\"chat\":\"A B\",\"body\":\"x\"}", PARLEY_EBAD_REQUEST, 1,
       "chat:"},
      {"{\"id\":1,\"op\":\"msg.send\",\"chat\":\"a\",\"body\":\"x\",\"clientMsgId\":\"a b\"}",
       PARLEY_EBAD_REQUEST, 1, "clientMsgId"},
      {"{\"id\":1,\"op\":\"msg.history\",\"chat\":\"a\",\"limit\":201}", PARLEY_EBAD_REQUEST, 1,
       "limit"},
      {"{\"id\":1,\"op\":\"chat.create\",\"title\":\"t\",\"isPublic\":\"yes\"}",
       PARLEY_EBAD_REQUEST, 1, "isPublic"},
      {"{\"id\":1,\"op\":\"ping\",\"id\":2}", PARLEY_EBAD_REQUEST, 0, "duplicate"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct proto_req r;
    char err[160] = "";
    int rc = decode(cases[i].text, &r, err);
    if (rc != cases[i].code || r.has_id != cases[i].has_id || !strstr(err, cases[i].needle))
      fail_msg("case %zu (%s): rc=%d has_id=%d err=%s", i, cases[i].text, rc, r.has_id, err);
    proto_req_dispose(&r);
  }
}

static void test_body_too_large(void **state) {
  size_t n = PROTO_BODY_MAX + 1;
  char *text = malloc(n + 100);
  struct proto_req r;
  char err[160];
  int len = sprintf(text, "{\"id\":1,\"op\":\"msg.send\",\"chat\":\"a\",\"body\":\"");
  memset(text + len, 'x', n);
  strcpy(text + len + n, "\"}");
  assert_int_equal(decode(text, &r, err), PARLEY_ETOO_LARGE);
  proto_req_dispose(&r);
  free(text);
}

/* Issue 19: msg.stream.append takes a delta of 1-16384 bytes (any text, white space too) and a
 * byte offset; a longer delta is too_large. */
static void test_stream_append_args(void **state) {
  struct proto_req r;
  char err[160];
  char *text = malloc(STREAM_DELTA_MAX + 200);
  int len;
  assert_int_equal(decode("{\"id\":1,\"op\":\"msg.stream.append\",\"chat\":\"a\",\"seq\":3,"
                          "\"delta\":\" \\n\",\"offset\":7}",
                          &r, err),
                   0);
  assert_int_equal(r.op, PROTO_OP_STREAM_APPEND);
  assert_string_equal(r.delta, " \n");
  assert_int_equal(r.offset, 7);
  proto_req_dispose(&r);
  assert_int_equal(decode("{\"id\":1,\"op\":\"msg.stream.append\",\"chat\":\"a\",\"seq\":3,"
                          "\"delta\":\"x\"}",
                          &r, err),
                   PARLEY_EBAD_REQUEST); /* offset is required */
  proto_req_dispose(&r);
  len = sprintf(text, "{\"id\":1,\"op\":\"msg.stream.append\",\"chat\":\"a\",\"seq\":3,"
                      "\"offset\":0,\"delta\":\"");
  memset(text + len, 'x', STREAM_DELTA_MAX + 1);
  strcpy(text + len + STREAM_DELTA_MAX + 1, "\"}");
  assert_int_equal(decode(text, &r, err), PARLEY_ETOO_LARGE);
  proto_req_dispose(&r);
  free(text);
  assert_int_equal(decode("{\"id\":1,\"op\":\"msg.stream.end\",\"chat\":\"a\",\"seq\":3}", &r, err),
                   0);
  assert_false(PROTO_HAS(&r, PROTO_F_STATE));
  proto_req_dispose(&r);
  /* Control characters but tab, line feed and carriage return are refused. */
  assert_int_equal(decode("{\"id\":1,\"op\":\"msg.stream.append\",\"chat\":\"a\",\"seq\":3,"
                          "\"offset\":0,\"delta\":\"a\\u0001\"}",
                          &r, err),
                   PARLEY_EBAD_REQUEST);
  proto_req_dispose(&r);
  assert_int_equal(decode("{\"id\":1,\"op\":\"msg.stream.append\",\"chat\":\"a\",\"seq\":3,"
                          "\"offset\":0,\"delta\":\"a\\t\\r\\n\"}",
                          &r, err),
                   0);
  proto_req_dispose(&r);
}

static void test_title_counts_characters(void **state) {
  /* 100 two-byte characters are a valid title even though they are 200 bytes. */
  char text[600];
  int len = sprintf(text, "{\"id\":1,\"op\":\"chat.create\",\"title\":\"");
  struct proto_req r;
  char err[160];
  for (int i = 0; i < 100; i++) {
    text[len++] = (char)0xc3;
    text[len++] = (char)0xa9;
  }
  strcpy(text + len, "\"}");
  assert_int_equal(decode(text, &r, err), 0);
  proto_req_dispose(&r);
}

static void test_public_ops(void **state) {
  assert_true(proto_op_is_public(PROTO_OP_AUTH));
  assert_true(proto_op_is_public(PROTO_OP_PING));
  assert_false(proto_op_is_public(PROTO_OP_MSG_SEND));
  assert_string_equal(proto_op_name(PROTO_OP_MSG_HISTORY), "msg.history");
}

static void test_encode_reply_and_msg(void **state) {
  struct proto_req r;
  char err[160];
  struct store_msg m;
  size_t len;
  char *s;

  assert_int_equal(decode("{\"id\":42,\"op\":\"ping\"}", &r, err), 0);
  memset(&m, 0, sizeof m);
  m.seq = 3;
  m.author.id = 9;
  strcpy(m.author.username, "ana");
  strcpy(m.author.display_name, "Ana \"A\"");
  m.body = "hi";
  m.created_at = 1000;
  s = proto_reply_ok(&r, json_pack("{s:o}", "msg", proto_msg_json(&m, "room")), &len);
  assert_string_equal(s, "{\"id\":42,\"ok\":true,\"msg\":{\"seq\":3,\"chat\":\"room\",\"author\":"
                         "{\"id\":9,\"username\":\"ana\",\"displayName\":\"Ana \\\"A\\\"\","
                         "\"avatar\":null,\"bot\":false},"
                         "\"body\":\"hi\",\"clientMsgId\":null,\"createdAt\":1000,"
                         "\"kind\":\"text\",\"ref\":null,\"mentions\":[],\"replyTo\":null,"
                         "\"editedAt\":null,\"deleted\":false,\"reactions\":[],"
                         "\"streaming\":false,\"stream\":null}}");
  assert_int_equal(len, strlen(s));
  free(s);
  /* Issue 19: a streamed message says its state and length; its end entry the final state. */
  m.stream_state = STREAM_STREAMING;
  m.stream_len = 2;
  s = proto_reply_ok(&r, json_pack("{s:o}", "msg", proto_msg_json(&m, "room")), &len);
  assert_non_null(strstr(s, "\"streaming\":true,\"stream\":{\"state\":\"streaming\",\"length\":2}}"));
  free(s);
  m.kind = STORE_KIND_STREAM_END;
  m.ref = 3;
  m.stream_state = STREAM_INTERRUPTED;
  s = proto_reply_ok(&r, json_pack("{s:o}", "msg", proto_msg_json(&m, "room")), &len);
  assert_non_null(strstr(s, "\"kind\":\"stream.end\",\"ref\":3,"));
  assert_non_null(strstr(s, "\"state\":\"interrupted\",\"length\":2}"));
  assert_null(strstr(s, "streaming"));
  free(s);
  memset(&m, 0, sizeof m);
  s = proto_reply_err(&r, PARLEY_EFORBIDDEN, NULL, &len);
  assert_string_equal(s, "{\"id\":42,\"ok\":false,\"error\":{\"code\":\"forbidden\",\"message\":"
                         "\"not allowed\"}}");
  free(s);
  proto_req_dispose(&r);
  r.has_id = 0;
  s = proto_reply_err(&r, PARLEY_EBAD_REQUEST, "x", &len);
  assert_non_null(strstr(s, "\"id\":null"));
  free(s);
}

/* Issue 18: a user's avatar is a path under /avatars/; notify levels by name, DEFAULT by kind. */
static void test_avatar_and_notify(void **state) {
  struct store_user u;
  json_t *o;
  (void)state;
  memset(&u, 0, sizeof u);
  strcpy(u.username, "ana");
  strcpy(u.avatar, "ab12.png");
  o = proto_user_json(&u);
  assert_string_equal(json_string_value(json_object_get(o, "avatar")), "/avatars/ab12.png");
  json_decref(o);
  assert_string_equal(proto_notify_name(STORE_NOTIFY_DEFAULT, 0), "mentions");
  assert_string_equal(proto_notify_name(STORE_NOTIFY_DEFAULT, 1), "all");
  assert_string_equal(proto_notify_name(STORE_NOTIFY_NONE, 1), "none");
  assert_int_equal(proto_notify_parse("all"), STORE_NOTIFY_ALL);
  assert_int_equal(proto_notify_parse("mentions"), STORE_NOTIFY_MENTIONS);
  assert_int_equal(proto_notify_parse("loud"), STORE_NOTIFY_DEFAULT);
}

/* Regression (found by fuzz_proto): an error message quoting client text cut inside a UTF-8
 * character must still produce a reply, cut at the last whole character. */
static void test_error_reply_with_split_utf8(void **state) {
  struct proto_req r;
  char err[160];
  char text[128];
  size_t len;
  char *s;
  /* 39 x then a 2-byte character: "%.40s" in the unknown-op message cuts it in half. */
  snprintf(text, sizeof text, "{\"id\":42,\"op\":\"%s\xc3\xa9\"}",
           "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
  assert_int_equal(decode(text, &r, err), PARLEY_EBAD_REQUEST);
  s = proto_reply_err(&r, PARLEY_EBAD_REQUEST, err, &len);
  assert_non_null(s);
  assert_non_null(strstr(s, "\"id\":42"));
  assert_non_null(strstr(s, "unknown op"));
  free(s);
  proto_req_dispose(&r);
}

/* Encoded fields added to an encoded object parse back as the same values, in an empty object
 * too; something that is not an object is refused. */
static void test_splice(void **state) {
  struct proto_raw raw[] = {{"list", "[1,{\"a\":\"\\u00e9\"}]", 18}, {"n", "7", 1}};
  size_t len = 0;
  char *s = proto_reply_ok(NULL, json_pack("{s:i}", "x", 1), &len);
  json_t *o;
  (void)state;
  s = proto_splice(s, &len, raw, 2);
  assert_non_null(s);
  assert_int_equal(len, strlen(s));
  o = json_loads(s, 0, NULL);
  assert_non_null(o);
  assert_int_equal(json_integer_value(json_object_get(o, "x")), 1);
  assert_int_equal(json_integer_value(json_object_get(o, "n")), 7);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(json_object_get(o, "list"), 1), "a")),
      "\xc3\xa9");
  assert_int_equal(json_object_size(o), 5); /* id, ok, x, list, n */
  json_decref(o);
  free(s);

  s = strdup("{}");
  len = 2;
  s = proto_splice(s, &len, raw + 1, 1);
  assert_string_equal(s, "{\"n\":7}");
  free(s);

  s = strdup("[]");
  len = 2;
  assert_null(proto_splice(s, &len, raw, 1));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_send),
      cmocka_unit_test(test_errors_name_the_problem),
      cmocka_unit_test(test_body_too_large),
      cmocka_unit_test(test_stream_append_args),
      cmocka_unit_test(test_title_counts_characters),
      cmocka_unit_test(test_public_ops),
      cmocka_unit_test(test_encode_reply_and_msg),
      cmocka_unit_test(test_avatar_and_notify),
      cmocka_unit_test(test_error_reply_with_split_utf8),
      cmocka_unit_test(test_splice),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
