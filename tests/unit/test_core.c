/* test_core.c - the pure rules of src/core: access control and rate limits (fake clock). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/error.h"
#include "core/acl.h"
#include "core/invite.h"
#include "core/ratelimit.h"
#include "core/stream.h"

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
        /* A private chat does not exist for outsiders (slugs cannot be probed). */
        int want = rows[i].allowed[pub][role] ? 0
                   : (role == CHAT_ROLE_NONE && !pub) ? PARLEY_ENOT_FOUND
                                                      : PARLEY_EFORBIDDEN;
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

/* Every op refused to an outsider of a private chat is not_found; a participant lacking the role
 * and anyone refused on a public chat get forbidden. */
static void test_acl_outsiders(void **state) {
  for (int op = ACL_CHAT_VIEW; op <= ACL_INVITES_MANAGE; op++) {
    assert_int_equal(acl_check((enum acl_op)op, CHAT_ROLE_NONE, 0), PARLEY_ENOT_FOUND);
    if (op == ACL_CHAT_UPDATE || op == ACL_INVITES_MANAGE) {
      assert_int_equal(acl_check((enum acl_op)op, CHAT_ROLE_MEMBER, 0), PARLEY_EFORBIDDEN);
      assert_int_equal(acl_check((enum acl_op)op, CHAT_ROLE_NONE, 1), PARLEY_EFORBIDDEN);
    }
  }
  assert_int_equal(acl_check(ACL_CHAT_READ, CHAT_ROLE_NONE, 1), PARLEY_EFORBIDDEN);
  assert_int_equal(acl_refusal(CHAT_ROLE_NONE, 0), PARLEY_ENOT_FOUND);
  assert_int_equal(acl_refusal(CHAT_ROLE_NONE, 1), PARLEY_EFORBIDDEN);
  assert_int_equal(acl_refusal(CHAT_ROLE_MEMBER, 0), PARLEY_EFORBIDDEN);
}

/* Peeking refills but takes nothing: a budget charged only by failures. */
static void test_ratelimit_peek(void **state) {
  struct ratelimit rl = {0, 0};
  int64_t now = 1000000;
  for (int i = 0; i < 10; i++)
    assert_int_equal(ratelimit_peek(&rl, 1.0, 2.0, now), 0);
  assert_int_equal(ratelimit_take(&rl, 1.0, 2.0, now), 0);
  assert_int_equal(ratelimit_take(&rl, 1.0, 2.0, now), 0);
  int64_t wait = ratelimit_peek(&rl, 1.0, 2.0, now);
  assert_true(wait > 0 && wait <= 1001);
  assert_true(ratelimit_peek(&rl, 1.0, 2.0, now + 999) > 0);
  assert_int_equal(ratelimit_peek(&rl, 1.0, 2.0, now + 1000), 0);
  assert_int_equal(ratelimit_take(&rl, 1.0, 2.0, now + 1000), 0);
}

/* Progressive login delay: free failures, then doubling from 1 s, capped. */
static void test_backoff(void **state) {
  assert_int_equal(ratelimit_backoff_ms(0, 3, 900000), 0);
  assert_int_equal(ratelimit_backoff_ms(3, 3, 900000), 0);
  assert_int_equal(ratelimit_backoff_ms(4, 3, 900000), 1000);
  assert_int_equal(ratelimit_backoff_ms(5, 3, 900000), 2000);
  assert_int_equal(ratelimit_backoff_ms(8, 3, 900000), 16000);
  assert_int_equal(ratelimit_backoff_ms(40, 3, 900000), 900000);
  assert_int_equal(ratelimit_backoff_ms(1000, 3, 900000), 900000);
}

/* The invitation state machine, every status x action, with the clock on both sides of expiry. */
static void test_invite_transitions(void **state) {
  const int64_t exp = 10000;
  enum invite_status next;
  /* Pending, in time. */
  assert_int_equal(invite_transition(INVITE_PENDING, INVITE_ACCEPT, exp - 1, exp, &next), 0);
  assert_int_equal(next, INVITE_ACCEPTED);
  assert_int_equal(invite_transition(INVITE_PENDING, INVITE_DECLINE, exp - 1, exp, &next), 0);
  assert_int_equal(next, INVITE_DECLINED);
  assert_int_equal(invite_transition(INVITE_PENDING, INVITE_REVOKE, exp - 1, exp, &next), 0);
  assert_int_equal(next, INVITE_REVOKED);
  assert_int_equal(invite_transition(INVITE_PENDING, INVITE_EXPIRE, exp - 1, exp, &next),
                   PARLEY_ECONFLICT); /* not due yet */
  /* Pending, time up: accept is refused as expired; the sweep expires it. */
  assert_int_equal(invite_transition(INVITE_PENDING, INVITE_ACCEPT, exp, exp, &next),
                   PARLEY_EEXPIRED);
  assert_int_equal(next, INVITE_EXPIRED);
  assert_int_equal(invite_transition(INVITE_PENDING, INVITE_EXPIRE, exp, exp, &next), 0);
  assert_int_equal(next, INVITE_EXPIRED);
  /* Settled ones move no more; accepting an expired one still says expired. */
  for (int s = INVITE_ACCEPTED; s <= INVITE_EXPIRED; s++)
    for (int act = INVITE_ACCEPT; act <= INVITE_EXPIRE; act++) {
      int want = (s == INVITE_EXPIRED && act == INVITE_ACCEPT) ? PARLEY_EEXPIRED : PARLEY_ECONFLICT;
      assert_int_equal(invite_transition((enum invite_status)s, (enum invite_action)act, 0, exp,
                                         &next),
                       want);
      assert_int_equal(next, s);
    }
  /* Expiry from a ttl: default 7 days, at most 30, never negative. */
  int64_t at;
  assert_int_equal(invite_expiry(1000, 0, &at), 0);
  assert_int_equal(at, 1000 + INVITE_TTL_DEFAULT_S * INT64_C(1000));
  assert_int_equal(invite_expiry(1000, 1, &at), 0);
  assert_int_equal(at, 2000);
  assert_int_equal(invite_expiry(1000, INVITE_TTL_MAX_S + 1, &at), PARLEY_EBAD_REQUEST);
  assert_int_equal(invite_expiry(1000, -1, &at), PARLEY_EBAD_REQUEST);
}

/* Who may invite, remove, change roles and revoke: every role pair. */
static void test_membership_rules(void **state) {
  enum chat_role N = CHAT_ROLE_NONE, M = CHAT_ROLE_MEMBER, A = CHAT_ROLE_ADMIN, O = CHAT_ROLE_OWNER;
  enum chat_role roles[] = {N, M, A, O};
  /* [policy][actor] */
  static const int invite[3][4] = {{0, 0, 0, 1}, {0, 0, 1, 1}, {0, 1, 1, 1}};
  /* [actor][target] */
  static const int remove[4][4] = {
      {0, 0, 0, 0}, {0, 0, 0, 0}, {0, 1, 0, 0}, {0, 1, 1, 0}};
  for (int p = 0; p < 3; p++)
    for (int r = 0; r < 4; r++)
      assert_int_equal(acl_can_invite(roles[r], (enum invite_policy)p) == 0, invite[p][r]);
  for (int a = 0; a < 4; a++)
    for (int t = 0; t < 4; t++) {
      assert_int_equal(acl_can_remove(roles[a], roles[t]) == 0, remove[a][t]);
      /* Only the owner changes roles, of anyone but themselves. */
      assert_int_equal(acl_can_set_role(roles[a], roles[t], A) == 0,
                       roles[a] == O && (roles[t] == M || roles[t] == A));
    }
  assert_int_equal(acl_can_set_role(O, M, N), PARLEY_EBAD_REQUEST);
  assert_int_equal(acl_can_revoke(M, 1), 0);
  assert_int_equal(acl_can_revoke(M, 0), PARLEY_EFORBIDDEN);
  assert_int_equal(acl_can_revoke(N, 1), PARLEY_EFORBIDDEN); /* an inviter who left */
  assert_int_equal(acl_can_revoke(A, 0), 0);
  for (int op = ACL_CHAT_UPDATE; op <= ACL_INVITES_MANAGE; op++)
    for (int r = 0; r < 4; r++) {
      int want = op == ACL_CHAT_LEAVE ? roles[r] != N : roles[r] >= A;
      assert_int_equal(acl_check((enum acl_op)op, roles[r], 1) == 0, want);
    }
}

/* Ownership passes to the longest-standing admin, else member. */
static void test_successor(void **state) {
  struct acl_member m[] = {
      {10, CHAT_ROLE_MEMBER, 100}, {11, CHAT_ROLE_ADMIN, 300}, {12, CHAT_ROLE_ADMIN, 200},
      {13, CHAT_ROLE_MEMBER, 50},
  };
  assert_int_equal(acl_successor(m, 4), 2); /* the older admin, though members are older still */
  m[1].role = m[2].role = CHAT_ROLE_MEMBER;
  assert_int_equal(acl_successor(m, 4), 3); /* no admin: the oldest member */
  assert_int_equal(acl_successor(m, 0), -1);
  struct acl_member tie[] = {{21, CHAT_ROLE_ADMIN, 5}, {20, CHAT_ROLE_ADMIN, 5}};
  assert_int_equal(acl_successor(tie, 2), 1); /* a tie goes to the lower id */
}

/* Issue 19: an append at an offset extends, repeats (idempotent) or conflicts. */
static void test_stream_append(void **state) {
  const char *stored = "Hello world";
  assert_int_equal(stream_append_check(STREAM_STREAMING, NULL, 11, 11, "!", 1, 100), STREAM_APPEND);
  assert_int_equal(stream_append_check(STREAM_STREAMING, NULL, 0, 0, "x", 1, 100), STREAM_APPEND);
  assert_int_equal(stream_append_check(STREAM_STREAMING, stored, 11, 6, "world", 5, 100),
                   STREAM_RETRY);
  assert_int_equal(stream_append_check(STREAM_STREAMING, stored, 11, 0, "Hel", 3, 100),
                   STREAM_RETRY);
  assert_int_equal(stream_append_check(STREAM_STREAMING, stored, 11, 0, "Jel", 3, 100),
                   STREAM_CONFLICT); /* other bytes */
  assert_int_equal(stream_append_check(STREAM_STREAMING, stored, 11, 6, "world!", 6, 100),
                   STREAM_CONFLICT); /* past the end from inside */
  assert_int_equal(stream_append_check(STREAM_STREAMING, stored, 11, 12, "x", 1, 100),
                   STREAM_CONFLICT); /* a gap */
  assert_int_equal(stream_append_check(STREAM_STREAMING, NULL, 11, 3, "lo", 2, 100),
                   STREAM_CONFLICT); /* nothing to compare with */
  assert_int_equal(stream_append_check(STREAM_DONE, stored, 11, 11, "!", 1, 100), STREAM_CONFLICT);
  assert_int_equal(stream_append_check(STREAM_INTERRUPTED, stored, 11, 0, "Hel", 3, 100),
                   STREAM_CONFLICT); /* ended: even a retry is refused */
  assert_int_equal(stream_append_check(STREAM_STREAMING, NULL, 99, 99, "x", 1, 100), STREAM_APPEND);
  assert_int_equal(stream_append_check(STREAM_STREAMING, NULL, 100, 100, "x", 1, 100),
                   STREAM_TOO_LARGE);
  assert_int_equal(stream_append_check(STREAM_STREAMING, NULL, 98, 98, "xyz", 3, 100),
                   STREAM_TOO_LARGE);
  for (int st = STREAM_STREAMING; st <= STREAM_INTERRUPTED; st++)
    assert_int_equal(stream_state_parse(stream_state_name((enum stream_state)st)), st);
  assert_null(stream_state_name(STREAM_NONE));
  assert_int_equal(stream_state_parse("paused"), STREAM_NONE);
  assert_int_equal(stream_state_parse(NULL), STREAM_NONE);
}

/* The idle sweep's decision, on a fake clock: the author gone and nothing for idle_ms. */
static void test_stream_idle(void **state) {
  const int64_t idle = 30000;
  /* Connected authors are never swept, however long the silence. */
  assert_int_equal(stream_idle_due(1000000, 0, 1, 0, idle), 0);
  /* Gone, last append 30 s ago: due; 1 ms earlier: not yet. */
  assert_int_equal(stream_idle_due(130000, 100000, 0, 0, idle), 1);
  assert_int_equal(stream_idle_due(129999, 100000, 0, 0, idle), 0);
  /* Idle for long while connected, then gone 5 s ago: the 30 s count from the disconnect. */
  assert_int_equal(stream_idle_due(200000, 100000, 0, 195000, idle), 0);
  assert_int_equal(stream_idle_due(225000, 100000, 0, 195000, idle), 1);
  /* An old lastSeen does not shorten the wait after a recent append. */
  assert_int_equal(stream_idle_due(120000, 100000, 0, 50000, idle), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_acl_matrix),
      cmocka_unit_test(test_roles_round_trip),
      cmocka_unit_test(test_ratelimit_burst_then_refill),
      cmocka_unit_test(test_ratelimit_clock_backwards),
      cmocka_unit_test(test_invite_transitions),
      cmocka_unit_test(test_backoff),
      cmocka_unit_test(test_acl_outsiders),
      cmocka_unit_test(test_ratelimit_peek),
      cmocka_unit_test(test_membership_rules),
      cmocka_unit_test(test_successor),
      cmocka_unit_test(test_stream_append),
      cmocka_unit_test(test_stream_idle),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
