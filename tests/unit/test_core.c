/* test_core.c - the pure rules of src/core: access control and rate limits (fake clock). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/error.h"
#include "core/acl.h"
#include "core/ratelimit.h"

/* Every op x role x visibility cell, spelled out: 1 = allowed. */
static void test_acl_matrix(void **state) {
  static const struct {
    enum acl_op op;
    int allowed[2][4]; /* [is_public][role NONE, MEMBER, ADMIN, OWNER] */
  } rows[] = {
      {ACL_CHAT_VIEW, {{0, 1, 1, 1}, {1, 1, 1, 1}}},
      {ACL_CHAT_READ, {{0, 1, 1, 1}, {0, 1, 1, 1}}},
      {ACL_MSG_SEND, {{0, 1, 1, 1}, {0, 1, 1, 1}}},
      {ACL_CHAT_JOIN, {{0, 1, 1, 1}, {1, 1, 1, 1}}},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
    for (int pub = 0; pub < 2; pub++)
      for (int role = 0; role < 4; role++) {
        int rc = acl_check(rows[i].op, (enum chat_role)role, pub);
        int want = rows[i].allowed[pub][role] ? 0 : PARLEY_EFORBIDDEN;
        if (rc != want)
          fail_msg("op %d public %d role %d: got %d want %d", rows[i].op, pub, role, rc, want);
      }
}

static void test_roles_round_trip(void **state) {
  for (int r = CHAT_ROLE_MEMBER; r <= CHAT_ROLE_OWNER; r++)
    assert_int_equal(chat_role_parse(chat_role_name((enum chat_role)r)), r);
  assert_null(chat_role_name(CHAT_ROLE_NONE));
  assert_int_equal(chat_role_parse("root"), CHAT_ROLE_NONE);
  assert_int_equal(chat_role_parse(NULL), CHAT_ROLE_NONE);
}

static void test_ratelimit_burst_then_refill(void **state) {
  struct ratelimit rl = {0, 0};
  int64_t now = 1000000;
  for (int i = 0; i < 5; i++)
    assert_int_equal(ratelimit_take(&rl, 2.0, 5.0, now), 0);
  /* Empty: the next token comes after 1/rate = 500 ms. */
  int64_t wait = ratelimit_take(&rl, 2.0, 5.0, now);
  assert_true(wait > 0 && wait <= 501);
  assert_true(ratelimit_take(&rl, 2.0, 5.0, now + 499) > 0);
  assert_int_equal(ratelimit_take(&rl, 2.0, 5.0, now + 500), 0);
  /* A long pause refills to the burst, never beyond it. */
  now += 3600 * 1000;
  for (int i = 0; i < 5; i++)
    assert_int_equal(ratelimit_take(&rl, 2.0, 5.0, now), 0);
  assert_true(ratelimit_take(&rl, 2.0, 5.0, now) > 0);
}

static void test_ratelimit_clock_backwards(void **state) {
  struct ratelimit rl = {0, 0};
  assert_int_equal(ratelimit_take(&rl, 1.0, 1.0, 5000), 0);
  /* A clock that steps back must not mint tokens. */
  assert_true(ratelimit_take(&rl, 1.0, 1.0, 1000) > 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_acl_matrix),
      cmocka_unit_test(test_roles_round_trip),
      cmocka_unit_test(test_ratelimit_burst_then_refill),
      cmocka_unit_test(test_ratelimit_clock_backwards),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
