/* test_bus.c - the bus contract (src/bus/bus.h), one suite run against every backend: the
 * in-process hub (two instances on one "local://" url) and Redis (two instances on the server
 * PARLEY_TEST_REDIS names; `make unit` starts one with scripts/redis.sh). Each test runs a
 * private libuv loop until what it waits for happened, with a deadline instead of sleeps.
 *
 * Covered: a subscriber receives what another instance publishes and never its own
 * publications; one publisher's messages arrive in order; payloads are binary-safe (NUL bytes,
 * empty, 64 KiB); unsubscribe stops delivery, and subscribing again at once works; after the
 * Redis server restarts, the bus reports down and up, resubscribes (on_subscribed again) and
 * delivers; close releases every handle. Presence: the aggregate over instances, each change
 * reported once, expiry by sweep (lastSeen at the last refresh), the list of users not offline;
 * Redis namespaces ("redis://host:port/NAME") keep deployments apart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "bus/bus.h"
#include "common/error.h"
#include "run_until.h"

#define DEADLINE_MS 10000
#define MAX_RECV 4096

struct got {
  char channel[BUS_CHANNEL_MAX + 1];
  size_t len;
  unsigned char *data;
};

struct peer {
  struct bus *bus;
  struct got recv[MAX_RECV];
  size_t n_recv;
  char subscribed[16][BUS_CHANNEL_MAX + 1]; /* on_subscribed reports, in order */
  size_t n_subscribed;
  int ups, downs;
};

struct fixture {
  uv_loop_t loop;
  uv_timer_t deadline;
  int timed_out;
  const char *url;
  struct peer a, b;
  int closed;
};

static void on_message(void *ud, const char *channel, const void *data, size_t len) {
  struct peer *p = ud;
  struct got *g;
  assert_true(p->n_recv < MAX_RECV);
  g = &p->recv[p->n_recv++];
  snprintf(g->channel, sizeof g->channel, "%s", channel);
  g->len = len;
  g->data = malloc(len ? len : 1);
  memcpy(g->data, data, len);
}

static void on_subscribed(void *ud, const char *channel) {
  struct peer *p = ud;
  if (p->n_subscribed < 16)
    snprintf(p->subscribed[p->n_subscribed++], BUS_CHANNEL_MAX + 1, "%s", channel);
}

static void on_state(void *ud, int up) {
  struct peer *p = ud;
  if (up)
    p->ups++;
  else
    p->downs++;
}

static void open_peer(struct fixture *f, struct peer *p) {
  struct bus_callbacks cb = {p, on_message, on_subscribed, on_state};
  assert_int_equal(bus_open(&p->bus, &f->loop, f->url, &cb), 0);
}

/* Subscribes and waits until the subscription is effective. */
static void subscribe(struct fixture *f, struct peer *p, const char *channel) {
  size_t before = p->n_subscribed;
  int rc = bus_subscribe(p->bus, channel);
  assert_true(rc >= 0);
  if (rc == 0)
    RUN_UNTIL(f, p->n_subscribed > before, "on_subscribed");
  else
    assert_int_equal(p->n_subscribed, before); /* effective at once: no report follows */
}

/* Waits until the bus is connected both ways (Redis) or at once (local). */
static void wait_up(struct fixture *f, struct peer *p) {
  if (strncmp(f->url, "redis://", 8) == 0)
    RUN_UNTIL(f, p->ups > p->downs, "the bus to come up");
}

static int setup(void **state, const char *url) {
  struct fixture *f = calloc(1, sizeof *f);
  static int n;
  static char local_url[64];
  if (url == NULL) {
    snprintf(local_url, sizeof local_url, "local://contract-%d", n++);
    url = local_url;
  }
  f->url = url;
  uv_loop_init(&f->loop);
  uv_timer_init(&f->loop, &f->deadline);
  f->deadline.data = &f->timed_out;
  open_peer(f, &f->a);
  open_peer(f, &f->b);
  wait_up(f, &f->a);
  wait_up(f, &f->b);
  *state = f;
  return 0;
}

static int setup_local(void **state) { return setup(state, NULL); }
static int setup_redis(void **state) { return setup(state, getenv("PARLEY_TEST_REDIS")); }

static void on_closed(void *arg) { ((struct fixture *)arg)->closed++; }

static int teardown(void **state) {
  struct fixture *f = *state;
  bus_close(f->a.bus, on_closed, f);
  bus_close(f->b.bus, on_closed, f);
  RUN_UNTIL(f, f->closed == 2, "both buses to close");
  uv_close((uv_handle_t *)&f->deadline, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  /* Every handle of both instances is closed: the loop closes cleanly. */
  assert_int_equal(uv_loop_close(&f->loop), 0);
  for (struct peer *p = &f->a; p <= &f->b; p++)
    for (size_t i = 0; i < p->n_recv; i++)
      free(p->recv[i].data);
  free(f);
  return 0;
}

static void publish_str(struct peer *p, const char *channel, const char *s) {
  assert_int_equal(bus_publish(p->bus, channel, s, strlen(s)), 0);
}

static int got_is(const struct got *g, const char *channel, const char *s) {
  return strcmp(g->channel, channel) == 0 && g->len == strlen(s) && memcmp(g->data, s, g->len) == 0;
}

/* --- the contract ------------------------------------------------------------------------------ */

static void test_publish_reaches_others_not_self(void **state) {
  struct fixture *f = *state;
  subscribe(f, &f->a, "chat:x");
  subscribe(f, &f->b, "chat:x");
  publish_str(&f->a, "chat:x", "from-a");
  publish_str(&f->b, "chat:x", "from-b");
  RUN_UNTIL(f, f->a.n_recv >= 1 && f->b.n_recv >= 1, "each to get the other's message");
  /* A marker after: if an instance got its own message it would be there before the marker. */
  publish_str(&f->a, "chat:x", "marker-a");
  publish_str(&f->b, "chat:x", "marker-b");
  RUN_UNTIL(f, f->a.n_recv >= 2 && f->b.n_recv >= 2, "the markers");
  assert_int_equal(f->a.n_recv, 2);
  assert_true(got_is(&f->a.recv[0], "chat:x", "from-b"));
  assert_true(got_is(&f->a.recv[1], "chat:x", "marker-b"));
  assert_int_equal(f->b.n_recv, 2);
  assert_true(got_is(&f->b.recv[0], "chat:x", "from-a"));
  assert_true(got_is(&f->b.recv[1], "chat:x", "marker-a"));
}

static void test_unsubscribed_channel_not_delivered(void **state) {
  struct fixture *f = *state;
  subscribe(f, &f->a, "chat:y");
  publish_str(&f->b, "chat:other", "nobody listens");
  publish_str(&f->b, "chat:y", "marker");
  RUN_UNTIL(f, f->a.n_recv >= 1, "the marker");
  assert_int_equal(f->a.n_recv, 1);
  assert_true(got_is(&f->a.recv[0], "chat:y", "marker"));
}

static void test_order_per_channel(void **state) {
  struct fixture *f = *state;
  enum { N = 2000 };
  char buf[32];
  subscribe(f, &f->a, "chat:ord");
  subscribe(f, &f->a, "user:1");
  for (int i = 0; i < N; i++) {
    snprintf(buf, sizeof buf, "%d", i);
    publish_str(&f->b, i % 3 ? "chat:ord" : "user:1", buf);
  }
  RUN_UNTIL(f, f->a.n_recv >= N, "every message");
  assert_int_equal(f->a.n_recv, N);
  /* One publisher: its order holds on each channel, and here across both. */
  for (int i = 0; i < N; i++) {
    snprintf(buf, sizeof buf, "%d", i);
    assert_true(got_is(&f->a.recv[i], i % 3 ? "chat:ord" : "user:1", buf));
  }
}

static void test_binary_payloads(void **state) {
  struct fixture *f = *state;
  static const unsigned char nuls[] = {0, 1, 0, 255, 0, '\r', '\n', 0};
  size_t big_len = 64 * 1024;
  unsigned char *big = malloc(big_len);
  for (size_t i = 0; i < big_len; i++)
    big[i] = (unsigned char)(i * 131 + 7);
  subscribe(f, &f->a, "bin");
  assert_int_equal(bus_publish(f->b.bus, "bin", nuls, sizeof nuls), 0);
  assert_int_equal(bus_publish(f->b.bus, "bin", "", 0), 0);
  assert_int_equal(bus_publish(f->b.bus, "bin", big, big_len), 0);
  RUN_UNTIL(f, f->a.n_recv >= 3, "three binary messages");
  assert_int_equal(f->a.recv[0].len, sizeof nuls);
  assert_memory_equal(f->a.recv[0].data, nuls, sizeof nuls);
  assert_int_equal(f->a.recv[1].len, 0);
  assert_int_equal(f->a.recv[2].len, big_len);
  assert_memory_equal(f->a.recv[2].data, big, big_len);
  free(big);
}

static void test_unsubscribe_and_again(void **state) {
  struct fixture *f = *state;
  subscribe(f, &f->a, "chat:u");
  subscribe(f, &f->a, "chat:marker");
  assert_int_equal(bus_unsubscribe(f->a.bus, "chat:u"), 0);
  /* Let the unsubscribe take effect (it is answered before the marker's publication is). */
  publish_str(&f->a, "chat:marker", "sync");
  publish_str(&f->b, "chat:marker", "m1");
  RUN_UNTIL(f, f->a.n_recv >= 1, "the first marker");
  publish_str(&f->b, "chat:u", "after unsubscribe");
  publish_str(&f->b, "chat:marker", "m2");
  RUN_UNTIL(f, f->a.n_recv >= 2, "the second marker");
  assert_int_equal(f->a.n_recv, 2);
  assert_true(got_is(&f->a.recv[1], "chat:marker", "m2"));
  /* Unsubscribe and subscribe again in the same turn (the unsubscribe still in flight). */
  subscribe(f, &f->a, "chat:u");
  assert_int_equal(bus_unsubscribe(f->a.bus, "chat:u"), 0);
  subscribe(f, &f->a, "chat:u");
  publish_str(&f->b, "chat:u", "back");
  RUN_UNTIL(f, f->a.n_recv >= 3, "the message after subscribing again");
  assert_true(got_is(&f->a.recv[2], "chat:u", "back"));
  /* Unsubscribing a channel never subscribed is fine. */
  assert_int_equal(bus_unsubscribe(f->a.bus, "never"), 0);
}

static void test_bad_arguments(void **state) {
  struct fixture *f = *state;
  char longname[BUS_CHANNEL_MAX + 2];
  struct bus *b = NULL;
  struct bus_callbacks cb = {NULL, on_message, NULL, NULL};
  memset(longname, 'x', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  assert_int_equal(bus_subscribe(f->a.bus, ""), PARLEY_EBAD_REQUEST);
  assert_int_equal(bus_subscribe(f->a.bus, longname), PARLEY_EBAD_REQUEST);
  assert_int_equal(bus_publish(f->a.bus, longname, "x", 1), PARLEY_EBAD_REQUEST);
  assert_int_equal(bus_open(&b, &f->loop, "nats://x", &cb), PARLEY_EBAD_REQUEST);
  assert_null(b);
  assert_int_equal(bus_open(&b, &f->loop, "redis://:notaport", &cb), PARLEY_EBAD_REQUEST);
  assert_int_equal(bus_open(&b, &f->loop, "redis://host:6379/0", &cb), PARLEY_EBAD_REQUEST);
}

/* Redis only: the server restarts under a subscribed instance. */
static void test_redis_restart(void **state) {
  struct fixture *f = *state;
  const char *colon = strrchr(f->url, ':');
  char cmd[256];
  size_t subs_before;
  int downs_a, downs_b;

  subscribe(f, &f->a, "chat:r");
  publish_str(&f->b, "chat:r", "before");
  RUN_UNTIL(f, f->a.n_recv >= 1, "the message before the restart");
  subs_before = f->a.n_subscribed;
  downs_a = f->a.downs;
  downs_b = f->b.downs;
  snprintf(cmd, sizeof cmd, "PARLEY_REDIS_PORT=%s scripts/redis.sh restart", colon + 1);
  assert_int_equal(system(cmd), 0);
  RUN_UNTIL(f, f->a.downs > downs_a && f->b.downs > downs_b, "both to report the bus down");
  RUN_UNTIL(f, f->a.ups > f->a.downs - 0 && f->a.ups == f->a.downs + 1 && f->b.ups == f->b.downs + 1,
            "both to report the bus up again");
  /* Resubscribed, and the app is told the channel may have missed messages. */
  RUN_UNTIL(f, f->a.n_subscribed > subs_before, "on_subscribed after the reconnect");
  assert_string_equal(f->a.subscribed[f->a.n_subscribed - 1], "chat:r");
  publish_str(&f->b, "chat:r", "after");
  RUN_UNTIL(f, f->a.n_recv >= 2, "the message after the restart");
  assert_true(got_is(&f->a.recv[1], "chat:r", "after"));
}

/* Redis only: publications made while Redis is away wait and go out after the reconnect. */
static void test_redis_publish_while_down(void **state) {
  struct fixture *f = *state;
  const char *colon = strrchr(f->url, ':');
  char cmd[256];
  size_t subs_before;
  subscribe(f, &f->a, "chat:q");
  snprintf(cmd, sizeof cmd, "PARLEY_REDIS_PORT=%s scripts/redis.sh stop", colon + 1);
  assert_int_equal(system(cmd), 0);
  RUN_UNTIL(f, f->a.downs > 0 && f->b.downs > 0, "both to report the bus down");
  subs_before = f->a.n_subscribed;
  publish_str(&f->b, "chat:q", "queued");
  snprintf(cmd, sizeof cmd, "PARLEY_REDIS_PORT=%s scripts/redis.sh start", colon + 1);
  assert_int_equal(system(cmd), 0);
  /* B may flush before A resubscribed; what the contract promises is that the queued
   * publication reaches Redis (B's queue empties) and A is told to catch up. */
  RUN_UNTIL(f, f->a.n_subscribed > subs_before && f->b.ups == f->b.downs + 1, "reconnect");
  publish_str(&f->b, "chat:q", "after");
  RUN_UNTIL(f, f->a.n_recv >= 1 && got_is(&f->a.recv[f->a.n_recv - 1], "chat:q", "after"),
            "the message after the reconnect");
  /* Whatever A got is in publication order: "queued" (if it raced in) before "after". */
  assert_true(f->a.n_recv == 1 || (f->a.n_recv == 2 && got_is(&f->a.recv[0], "chat:q", "queued")));
}

/* --- presence ------------------------------------------------------------------------------- */

struct pres_result {
  int calls, status;
  struct bus_presence changed[8];
  size_t n;
};

static void on_pres(void *arg, int status, const struct bus_presence *changed, size_t n) {
  struct pres_result *r = arg;
  r->calls++;
  r->status = status;
  r->n = n < 8 ? n : 8;
  if (r->n)
    memcpy(r->changed, changed, r->n * sizeof *changed);
}

/* A user id no earlier run used on the same Redis (keys outlive a test). */
static int64_t fresh_user(void) {
  static int64_t n;
  return (int64_t)getpid() * 100000 + (int64_t)time(NULL) % 100000 * 1000000000LL + ++n;
}

static void put(struct fixture *f, struct peer *p, int64_t uid, int state, int64_t last,
                int64_t expires, struct pres_result *r) {
  struct bus_presence bp = {uid, state, last, ""};
  snprintf(bp.name, sizeof bp.name, "user%lld", (long long)uid);
  memset(r, 0, sizeof *r);
  assert_int_equal(bus_presence_put(p->bus, &bp, expires, on_pres, r), 0);
  assert_int_equal(r->calls, 0); /* never synchronously */
  RUN_UNTIL(f, r->calls == 1, "the presence answer");
  assert_int_equal(r->status, 0);
}

static void assert_change(const struct pres_result *r, int64_t uid, int state, int64_t last) {
  assert_int_equal(r->n, 1);
  assert_int_equal(r->changed[0].user_id, uid);
  assert_int_equal(r->changed[0].state, state);
  if (last >= 0)
    assert_int_equal(r->changed[0].last_seen, last);
  {
    char name[BUS_PRES_NAME_MAX + 1];
    snprintf(name, sizeof name, "user%lld", (long long)uid);
    assert_string_equal(r->changed[0].name, name);
  }
}

/* The aggregate is the best state any instance states; each change is reported once, to the
 * instance whose call made it. */
static void test_presence_aggregate(void **state) {
  struct fixture *f = *state;
  struct pres_result r;
  int64_t uid = fresh_user(), far = INT64_C(1) << 50;
  put(f, &f->a, uid, BUS_PRES_ONLINE, 1000, far, &r);
  assert_change(&r, uid, BUS_PRES_ONLINE, 1000);
  put(f, &f->b, uid, BUS_PRES_AWAY, 2000, far, &r);
  assert_int_equal(r.n, 0); /* still online: a's statement wins */
  put(f, &f->a, uid, BUS_PRES_NONE, 3000, far, &r);
  assert_change(&r, uid, BUS_PRES_AWAY, 3000);
  put(f, &f->b, uid, BUS_PRES_NONE, 2500, far, &r);
  assert_change(&r, uid, BUS_PRES_NONE, 3000); /* lastSeen: the latest stated */
  put(f, &f->b, uid, BUS_PRES_NONE, 2600, far, &r);
  assert_int_equal(r.n, 0);
}

/* A statement not refreshed expires: the sweep of any instance ends it, once. */
static void test_presence_expiry(void **state) {
  struct fixture *f = *state;
  struct pres_result r;
  int64_t u1 = fresh_user(), u2 = fresh_user();
  int64_t t0 = INT64_C(1) << 45; /* a clock of our own: the calls take `now` */
  put(f, &f->a, u1, BUS_PRES_ONLINE, t0, t0 + 1000, &r);
  put(f, &f->a, u2, BUS_PRES_ONLINE, t0, t0 + 1000, &r);
  assert_int_equal(bus_presence_refresh(f->a.bus, &u2, 1, t0 + 5000), 0);
  memset(&r, 0, sizeof r);
  assert_int_equal(bus_presence_sweep(f->b.bus, t0 + 500, 1000, on_pres, &r), 0);
  RUN_UNTIL(f, r.calls == 1, "the sweep");
  for (size_t i = 0; i < r.n; i++) /* other tests' users may be swept too: not ours */
    assert_true(r.changed[i].user_id != u1 && r.changed[i].user_id != u2);
  memset(&r, 0, sizeof r);
  assert_int_equal(bus_presence_sweep(f->b.bus, t0 + 2000, 1000, on_pres, &r), 0);
  RUN_UNTIL(f, r.calls == 1, "the sweep");
  {
    int found = 0;
    for (size_t i = 0; i < r.n; i++) {
      assert_true(r.changed[i].user_id != u2); /* refreshed */
      if (r.changed[i].user_id == u1) {
        found = 1;
        assert_int_equal(r.changed[i].state, BUS_PRES_NONE);
        assert_int_equal(r.changed[i].last_seen, t0); /* last refreshed at expiry - ttl */
      }
    }
    assert_true(found);
  }
  memset(&r, 0, sizeof r);
  assert_int_equal(bus_presence_sweep(f->a.bus, t0 + 3000, 1000, on_pres, &r), 0);
  RUN_UNTIL(f, r.calls == 1, "the sweep");
  for (size_t i = 0; i < r.n; i++)
    assert_true(r.changed[i].user_id != u1);              /* reported once */
  put(f, &f->a, u2, BUS_PRES_NONE, t0 + 10, t0 + 10, &r); /* leave nothing behind */
}

static void on_pres_list(void *arg, int status, const struct bus_presence *list, size_t n) {
  struct {
    int calls;
    int found;
    int64_t uid;
  } *seen = arg;
  seen->calls++;
  assert_int_equal(status, 0);
  for (size_t i = 0; i < n; i++) {
    if (list[i].user_id == seen->uid) {
      seen->found = 1;
      assert_int_equal(list[i].state, BUS_PRES_AWAY);
      assert_int_equal(list[i].last_seen, 4242);
      assert_true(strncmp(list[i].name, "user", 4) == 0);
    }
  }
}

/* Every user not offline, for a node that starts (or comes back). */
static void test_presence_list(void **state) {
  struct fixture *f = *state;
  struct pres_result r;
  int64_t uid = fresh_user(), far = INT64_C(1) << 50;
  struct {
    int calls;
    int found;
    int64_t uid;
  } seen = {0, 0, uid};
  put(f, &f->a, uid, BUS_PRES_AWAY, 4242, far, &r);
  memset(&r, 0, sizeof r);
  assert_int_equal(bus_presence_list(f->b.bus, on_pres_list, &seen), 0);
  RUN_UNTIL(f, seen.calls == 1, "the list");
  assert_int_equal(seen.found, 1);
  put(f, &f->a, uid, BUS_PRES_NONE, 5000, far, &r);
  seen.calls = seen.found = 0;
  assert_int_equal(bus_presence_list(f->b.bus, on_pres_list, &seen), 0);
  RUN_UNTIL(f, seen.calls == 1, "the list");
  assert_int_equal(seen.found, 0);
}

/* Redis only: "redis://host:port/NAME" keeps deployments apart on one server. */
static void test_redis_namespace(void **state) {
  struct fixture *f = *state;
  struct peer *x = calloc(1, sizeof *x), *y = calloc(1, sizeof *y);
  char url_x[300], url_y[300];
  const char *saved = f->url;
  snprintf(url_x, sizeof url_x, "%s/ns-x-%d", f->url, (int)getpid());
  snprintf(url_y, sizeof url_y, "%s/ns-y-%d", f->url, (int)getpid());
  f->url = url_x;
  open_peer(f, x);
  f->url = url_y;
  open_peer(f, y);
  f->url = saved;
  wait_up(f, x);
  wait_up(f, y);
  subscribe(f, x, "chat:n");
  subscribe(f, y, "chat:n");
  subscribe(f, &f->a, "chat:n");
  publish_str(&f->b, "chat:n", "plain");
  publish_str(x, "chat:n", "from x");
  RUN_UNTIL(f, f->a.n_recv >= 1, "the plain message");
  publish_str(&f->b, "chat:n", "marker");
  RUN_UNTIL(f, f->a.n_recv >= 2, "the marker");
  assert_true(got_is(&f->a.recv[0], "chat:n", "plain"));
  assert_true(got_is(&f->a.recv[1], "chat:n", "marker"));
  assert_int_equal(x->n_recv, 0);
  assert_int_equal(y->n_recv, 0); /* another namespace: nothing of x's */
  bus_close(x->bus, on_closed, f);
  bus_close(y->bus, on_closed, f);
  RUN_UNTIL(f, f->closed == 2, "the extra buses to close");
  f->closed = 0;
  free(x);
  free(y);
}

#define CONTRACT(setup_fn)                                                                         \
  cmocka_unit_test_setup_teardown(test_publish_reaches_others_not_self, setup_fn, teardown),       \
      cmocka_unit_test_setup_teardown(test_unsubscribed_channel_not_delivered, setup_fn,           \
                                      teardown),                                                   \
      cmocka_unit_test_setup_teardown(test_order_per_channel, setup_fn, teardown),                 \
      cmocka_unit_test_setup_teardown(test_binary_payloads, setup_fn, teardown),                   \
      cmocka_unit_test_setup_teardown(test_unsubscribe_and_again, setup_fn, teardown),             \
      cmocka_unit_test_setup_teardown(test_bad_arguments, setup_fn, teardown),                     \
      cmocka_unit_test_setup_teardown(test_presence_aggregate, setup_fn, teardown),                \
      cmocka_unit_test_setup_teardown(test_presence_expiry, setup_fn, teardown),                   \
      cmocka_unit_test_setup_teardown(test_presence_list, setup_fn, teardown)

int main(void) {
  const struct CMUnitTest local_tests[] = {CONTRACT(setup_local)};
  const struct CMUnitTest redis_tests[] = {
      CONTRACT(setup_redis),
      cmocka_unit_test_setup_teardown(test_redis_restart, setup_redis, teardown),
      cmocka_unit_test_setup_teardown(test_redis_publish_while_down, setup_redis, teardown),
      cmocka_unit_test_setup_teardown(test_redis_namespace, setup_redis, teardown),
  };
  int failed = cmocka_run_group_tests_name("bus_local", local_tests, NULL, NULL);
  const char *url = getenv("PARLEY_TEST_REDIS");
  if (url == NULL || strncmp(url, "redis://", 8) != 0) {
    /* Not a skip: the Redis half of the contract is required (make unit starts a server). */
    fprintf(stderr, "test_bus: PARLEY_TEST_REDIS=redis://127.0.0.1:PORT is not set "
                    "(scripts/redis.sh start; make unit sets it)\n");
    return 1;
  }
  failed += cmocka_run_group_tests_name("bus_redis", redis_tests, NULL, NULL);
  return failed;
}
