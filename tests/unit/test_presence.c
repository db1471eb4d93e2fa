/* test_presence.c - presence aggregation and typing TTLs of src/core with a fake clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/presence.h"
#include "core/typing.h"

#define GRACE 10000

static void test_two_tabs_and_grace(void **state) {
  struct presence_user u = {0};
  int64_t t = 1000000;
  assert_int_equal(presence_connect(&u, t), 1); /* offline -> online */
  assert_int_equal(u.state, PRESENCE_ONLINE);
  assert_int_equal(presence_connect(&u, t + 1), 0); /* second tab: no change */
  assert_int_equal(presence_disconnect(&u, 1, t + 2), 0); /* one tab closed: still online */
  assert_int_equal(u.state, PRESENCE_ONLINE);
  assert_int_equal(presence_disconnect(&u, 1, t + 3), 0); /* last tab: grace, no event yet */
  assert_int_equal(u.state, PRESENCE_ONLINE);
  assert_int_equal(presence_tick(&u, t + 3 + GRACE - 1, GRACE), 0);
  assert_int_equal(presence_tick(&u, t + 3 + GRACE, GRACE), 1);
  assert_int_equal(u.state, PRESENCE_OFFLINE);
  assert_int_equal(u.last_seen, t + 3); /* when they were last there, not when we noticed */
  assert_int_equal(presence_tick(&u, t + 3 * GRACE, GRACE), 0); /* published once */
}

static void test_reconnect_within_grace_is_invisible(void **state) {
  struct presence_user u = {0};
  int64_t t = 5000;
  presence_connect(&u, t);
  assert_int_equal(presence_disconnect(&u, 1, t + 100), 0);
  assert_int_equal(presence_connect(&u, t + 100 + GRACE - 1), 0); /* reload: nothing to publish */
  assert_int_equal(presence_tick(&u, t + 10 * GRACE, GRACE), 0);
  assert_int_equal(u.state, PRESENCE_ONLINE);
}

static void test_away_when_every_socket_inactive(void **state) {
  struct presence_user u = {0};
  int64_t t = 1;
  presence_connect(&u, t);
  presence_connect(&u, t);
  assert_int_equal(presence_activity(&u, 1, 0, t), 0); /* one hidden tab: still online */
  assert_int_equal(presence_activity(&u, 1, 0, t), 1); /* both: away */
  assert_int_equal(u.state, PRESENCE_AWAY);
  assert_int_equal(presence_activity(&u, 0, 0, t), 0); /* repeated report: nothing */
  assert_int_equal(presence_activity(&u, 0, 1, t), 1); /* back: online */
  assert_int_equal(u.state, PRESENCE_ONLINE);
  /* The active tab closes, the hidden one stays: away. */
  assert_int_equal(presence_disconnect(&u, 1, t), 1);
  assert_int_equal(u.state, PRESENCE_AWAY);
  /* The last one closes while away; offline after the grace. */
  assert_int_equal(presence_disconnect(&u, 0, t + 5), 0);
  assert_int_equal(presence_tick(&u, t + 5 + GRACE, GRACE), 1);
  assert_int_equal(u.state, PRESENCE_OFFLINE);
  assert_int_equal(presence_state_name(u.state)[1], 'f');
}

static void test_typing_ttl_and_order(void **state) {
  struct typing_set t = {0};
  assert_int_equal(typing_on(&t, 7, 0, 6000), 1);
  assert_int_equal(typing_on(&t, 8, 1000, 6000), 1);
  assert_int_equal(typing_on(&t, 7, 3000, 6000), 0); /* refresh: no change, 7 stays first */
  assert_int_equal(t.e[0].user_id, 7);
  /* 8 expires at 1000 + 6000; 7 was refreshed to 3000 + 6000. */
  assert_int_equal(typing_expire(&t, 6999), 0);
  assert_int_equal(t.n, 2);
  assert_int_equal(typing_expire(&t, 7000), 1);
  assert_int_equal(t.n, 1);
  assert_int_equal(t.e[0].user_id, 7);
  assert_int_equal(typing_expire(&t, 8999), 0);
  assert_int_equal(typing_expire(&t, 9000), 1);
  assert_int_equal(t.n, 0);
  typing_dispose(&t);
}

static void test_typing_off_and_expiry(void **state) {
  struct typing_set t = {0};
  typing_on(&t, 1, 0, 6000);
  typing_on(&t, 2, 0, 6000);
  typing_on(&t, 3, 0, 6000);
  assert_int_equal(typing_off(&t, 2), 1);
  assert_int_equal(typing_off(&t, 2), 0);
  assert_int_equal(t.n, 2);
  assert_int_equal(t.e[0].user_id, 1);
  assert_int_equal(t.e[1].user_id, 3);
  assert_int_equal(typing_expire(&t, 5999), 0);
  assert_int_equal(typing_expire(&t, 6000), 1);
  assert_int_equal(t.n, 0);
  typing_dispose(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_two_tabs_and_grace),
      cmocka_unit_test(test_reconnect_within_grace_is_invisible),
      cmocka_unit_test(test_away_when_every_socket_inactive),
      cmocka_unit_test(test_typing_ttl_and_order),
      cmocka_unit_test(test_typing_off_and_expiry),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
