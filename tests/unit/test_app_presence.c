/* test_app_presence.c - src/app/presence.c on a fake clock: a user's presence as the server
 * shows it (app__presence_json) through connect, idle, disconnect and the grace, on the single
 * pipeline every node uses (the bus aggregates: bus_local.c here; the store answers audience and
 * lastSeen: a temp SQLite file). Sockets have no connection, so the events go nowhere; what is
 * checked is the state the server serves in its snapshots (sub, chat.get, users.search). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <utlist.h>

#include "app/presence.h"
#include "bus/bus.h"

#define GRACE_MS 10000

static int64_t fake_now = 1700000000000;
static int64_t fake_clock(void) { return fake_now; }

struct fixture {
  char dir[64];
  uv_loop_t loop;
  struct app a;
  int closed;
};

static void on_closed(void *arg) { ++*(int *)arg; }

static int setup(void **state) {
  struct fixture *f = calloc(1, sizeof *f);
  struct bus_callbacks cb = {0};
  char path[128];
  assert_non_null(f);
  snprintf(f->dir, sizeof f->dir, "/tmp/parley-presence-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(path, sizeof path, "%s/parley.db", f->dir);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  f->a.loop = &f->loop;
  f->a.clock = fake_clock;
  f->a.bus_solo = 1;
  f->a.cfg.presence_grace_ms = GRACE_MS;
  f->a.cfg.presence_node_ttl_ms = 15000;
  f->a.cfg.max_conns_per_user = 20;
  assert_int_equal(store_open(&f->a.store, &f->loop, path, STORE_DURABILITY_NORMAL, 0), 0);
  cb.ud = &f->a;
  assert_int_equal(bus_open(&f->a.bus, &f->loop, "", &cb), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fixture *f = *state;
  char path[128];
  app__presence_dispose(&f->a);
  bus_close(f->a.bus, on_closed, &f->closed);
  store_close(f->a.store, on_closed, &f->closed);
  while (f->closed < 2)
    uv_run(&f->loop, UV_RUN_ONCE);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  snprintf(path, sizeof path, "%s/parley.db", f->dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/parley.db-wal", f->dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/parley.db-shm", f->dir);
  unlink(path);
  rmdir(f->dir);
  free(f);
  return 0;
}

static struct store_user ana(void) {
  struct store_user u;
  memset(&u, 0, sizeof u);
  u.id = 1;
  snprintf(u.username, sizeof u.username, "ana");
  return u;
}

/* The state the server shows for ana, and her lastSeen (0: null). */
static const char *shown(struct app *a, int64_t *last_seen) {
  static char state[16];
  struct store_user u = ana();
  json_t *p = app__presence_json(a, &u);
  json_t *ls = json_object_get(p, "lastSeen");
  snprintf(state, sizeof state, "%s", json_string_value(json_object_get(p, "state")));
  if (last_seen)
    *last_seen = json_is_integer(ls) ? json_integer_value(ls) : 0;
  json_decref(p);
  return state;
}

/* Runs the loop until ana is shown in `want` (the bus and the store answer asynchronously). */
static void await_state(struct fixture *f, const char *want) {
  uint64_t deadline = uv_hrtime() + UINT64_C(10000000000);
  while (strcmp(shown(&f->a, NULL), want) != 0) {
    uv_run(&f->loop, UV_RUN_NOWAIT);
    if (uv_hrtime() > deadline)
      fail_msg("ana is still %s, not %s", shown(&f->a, NULL), want);
    usleep(1000);
  }
}

static struct client *socket_of(struct app *a) {
  struct client *cl = calloc(1, sizeof *cl);
  struct store_user u = ana();
  uint8_t hash[STORE_TOKEN_HASH_LEN] = {0};
  assert_non_null(cl);
  cl->app = a;
  cl->refs = 1;
  assert_int_equal(app__user_attach(a, cl, &u, hash, 0), 0);
  return cl;
}

static void test_online_grace_then_offline(void **state) {
  struct fixture *f = *state;
  struct client *one, *two;
  int64_t last;
  assert_string_equal(shown(&f->a, &last), "offline");
  assert_int_equal(last, 0);

  one = socket_of(&f->a);
  await_state(f, "online");
  two = socket_of(&f->a);

  /* Both tabs idle: away; one active again: online. */
  app__presence_report(&f->a, app__user_find(&f->a, 1), one, 0);
  app__presence_report(&f->a, app__user_find(&f->a, 1), two, 0);
  await_state(f, "away");
  app__presence_report(&f->a, app__user_find(&f->a, 1), two, 1);
  await_state(f, "online");

  /* The last socket closes: still online through the grace, then offline with the time of
   * the close as lastSeen. */
  app__user_detach(&f->a, one);
  app__client_unref(one);
  fake_now += 1000;
  app__user_detach(&f->a, two);
  app__client_unref(two);
  {
    int64_t closed_at = fake_now;
    fake_now += GRACE_MS - 1;
    app__presence_tick(&f->a);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_string_equal(shown(&f->a, NULL), "online");
    fake_now += 1;
    app__presence_tick(&f->a);
    await_state(f, "offline");
    assert_string_equal(shown(&f->a, &last), "offline");
    assert_int_equal(last, closed_at);
  }
  /* Offline and announced: the user's entry here is gone. */
  assert_null(app__user_find(&f->a, 1));
}

static void test_reconnect_within_grace_is_invisible(void **state) {
  struct fixture *f = *state;
  struct client *cl = socket_of(&f->a);
  await_state(f, "online");
  app__user_detach(&f->a, cl);
  app__client_unref(cl);
  fake_now += GRACE_MS / 2;
  app__presence_tick(&f->a);
  cl = socket_of(&f->a); /* a reload */
  fake_now += GRACE_MS;
  app__presence_tick(&f->a);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  assert_string_equal(shown(&f->a, NULL), "online");
  assert_non_null(app__user_find(&f->a, 1));
  app__user_detach(&f->a, cl);
  app__client_unref(cl);
}

/* A socket's names outlive it while a request of its is in flight (the reply may still read
 * them): the user's entry stays, offline, until the socket's last reference goes. */
static void test_user_kept_while_a_closed_socket_is_referenced(void **state) {
  struct fixture *f = *state;
  struct client *cl = socket_of(&f->a);
  await_state(f, "online");
  app__client_ref(cl); /* a request in flight */
  app__user_detach(&f->a, cl);
  app__client_unref(cl); /* the connection's reference */
  fake_now += GRACE_MS;
  app__presence_tick(&f->a);
  await_state(f, "offline");
  app__presence_tick(&f->a);
  assert_non_null(app__user_find(&f->a, 1));
  assert_string_equal(cl->user->username, "ana"); /* ASan: no use after free */
  app__client_unref(cl); /* the request's reply */
  app__presence_tick(&f->a);
  assert_null(app__user_find(&f->a, 1));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_online_grace_then_offline, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reconnect_within_grace_is_invisible, setup, teardown),
      cmocka_unit_test_setup_teardown(test_user_kept_while_a_closed_socket_is_referenced, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
