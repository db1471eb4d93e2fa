/* test_webhook_retry.c - the webhook retry schedule (src/core/webhook_retry.c), on a fake clock:
 * a failed first try is retried after 1, 2, 4, 8 and 16 base intervals, then given up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/webhook_retry.h"

static void test_schedule_doubles_then_gives_up(void **state) {
  int64_t now = 1000000, base = 1000;
  static const int64_t want[] = {1000, 2000, 4000, 8000, 16000};
  for (int tries = 1; tries <= WEBHOOK_RETRIES; tries++) {
    int64_t at = webhook_retry_at(tries, now, base);
    assert_int_equal(at - now, want[tries - 1]);
    now = at; /* the retry runs then, and fails again */
  }
  assert_int_equal(webhook_retry_at(WEBHOOK_RETRIES + 1, now, base), -1);
  assert_int_equal(webhook_retry_at(0, now, base), -1);
  /* A shorter base (tests) scales the whole schedule. */
  assert_int_equal(webhook_retry_at(3, 0, 50), 200);
}

static void test_only_2xx_acknowledges(void **state) {
  assert_true(webhook_acknowledged(200));
  assert_true(webhook_acknowledged(204));
  assert_true(webhook_acknowledged(299));
  assert_false(webhook_acknowledged(0)); /* no answer: timeout or refused */
  assert_false(webhook_acknowledged(301));
  assert_false(webhook_acknowledged(404));
  assert_false(webhook_acknowledged(500));
  assert_false(webhook_acknowledged(199));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_schedule_doubles_then_gives_up),
      cmocka_unit_test(test_only_2xx_acknowledges),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
