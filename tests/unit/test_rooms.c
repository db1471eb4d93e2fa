/* test_rooms.c - the live layer of src/app without sockets, store or bus: rooms.c (typing and
 * activeUsers, here and other nodes', with their TTLs on a fake clock) and subs.c (the seq seam
 * of a subscription, gaps, duplicates, fences). The struct app is a bare one: no store, no bus
 * (a->bus NULL publishes nothing), clients without connections; what the layer decides shows in
 * its state (dirty marks, next_seq, what is held, the gap list). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <utlist.h>

#include "app/churn.h"
#include "app/clients.h"
#include "app/rooms.h"
#include "app/subs.h"
#include "net/net.h"

/* Everyone with room r open (new reference). */
static json_t *active_all(struct app *a, struct room *r) {
  size_t n = 0;
  json_t *users = app__room_active_json_max(a, r, 1000, &n);
  assert_int_equal(json_array_size(users), n);
  return users;
}

static int64_t fake_now = 1700000000000;
static int64_t fake_clock(void) { return fake_now; }

struct fixture {
  uv_loop_t loop;
  struct app a;
  struct net_server *net; /* only for net_ws_frame_text's encoder: it never listens */
};

static struct app_user *add_user(struct app *a, int64_t id, const char *name) {
  struct app_user *au = calloc(1, sizeof *au);
  assert_non_null(au);
  au->id = id;
  au->user.id = id;
  snprintf(au->user.username, sizeof au->user.username, "%s", name);
  HASH_ADD(hh, a->users, id, sizeof au->id, au);
  return au;
}

static struct client *add_client(struct app *a, struct app_user *au) {
  struct client *cl = calloc(1, sizeof *cl);
  assert_non_null(cl);
  cl->app = a;
  cl->refs = 1;
  cl->authed = 1;
  cl->user = &au->user;
  DL_APPEND2(au->clients, cl, uprev, unext);
  au->n_clients++;
  return cl;
}

static int setup(void **state) {
  struct fixture *f = calloc(1, sizeof *f);
  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  f->a.loop = &f->loop;
  f->a.clock = fake_clock;
  f->a.bus_solo = 1;
  f->a.cfg.typing_ttl_ms = 6000;
  uv_timer_init(&f->loop, &f->a.gap_timer);
  f->a.gap_timer.data = &f->a;
  {
    struct net_config ncfg = {0};
    struct net_callbacks ncb = {0};
    ncfg.host = "127.0.0.1";
    assert_int_equal(net_server_new(&f->net, &f->loop, &ncfg, &ncb), 0);
  }
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fixture *f = *state;
  struct app_user *au, *tmp;
  HASH_ITER(hh, f->a.users, au, tmp) {
    struct client *cl, *ctmp;
    DL_FOREACH_SAFE2(au->clients, cl, ctmp, unext) {
      app__client_drop_subs(cl);
      free(cl);
    }
    HASH_DEL(f->a.users, au);
    free(au);
  }
  app__rooms_free_all(&f->a);
  app__churn_dispose(&f->a);
  uv_close((uv_handle_t *)&f->a.gap_timer, NULL);
  net_server_free(f->net);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f);
  return 0;
}

static size_t names(json_t *users, const char *want) {
  size_t i, hits = 0;
  json_t *u;
  json_array_foreach(users, i, u) {
    hits += strcmp(json_string_value(json_object_get(u, "username")), want) == 0;
  }
  return hits;
}

static void test_active_users_count_sockets(void **state) {
  struct app *a = &((struct fixture *)*state)->a;
  struct room *r;
  json_t *act;
  add_user(a, 1, "ana");
  r = app__room_get(a, "room");
  assert_non_null(r);
  assert_ptr_equal(app__room_find(a, "room"), r);

  app__room_sub_added(a, r, 1);
  assert_int_equal(r->dirty, ROOM_DIRTY_ACTIVE); /* one node: nothing to publish */
  assert_ptr_equal(a->dirty_rooms, r);
  app__rooms_flush(a);
  assert_int_equal(r->dirty, 0);
  assert_null(a->dirty_rooms);

  app__room_sub_added(a, r, 1); /* a second tab: no news */
  assert_int_equal(r->dirty, 0);
  act = active_all(a, r);
  assert_int_equal(json_array_size(act), 1);
  assert_int_equal(names(act, "ana"), 1);
  json_decref(act);

  app__room_sub_removed(a, r, 1);
  assert_int_equal(r->dirty, 0); /* still open in the other tab */
  app__room_sub_removed(a, r, 1);
  assert_int_equal(r->dirty, ROOM_DIRTY_ACTIVE);
  act = active_all(a, r);
  assert_int_equal(json_array_size(act), 0);
  json_decref(act);
  app__rooms_flush(a);

  /* Several nodes: a change of this node's own state is news for the others. */
  a->bus_solo = 0;
  app__room_sub_added(a, r, 1);
  assert_int_equal(r->dirty, ROOM_DIRTY_ACTIVE | ROOM_DIRTY_PUBLISH);
  app__rooms_flush(a);
  a->bus_solo = 1;
}

static void test_typing_expires_by_ttl(void **state) {
  struct app *a = &((struct fixture *)*state)->a;
  struct room *r;
  json_t *others, *typing;
  add_user(a, 1, "ana");
  r = app__room_get(a, "room");
  assert_int_equal(typing_on(&r->typing, 1, fake_now, a->cfg.typing_ttl_ms), 1);
  typing = app__room_typing_json(a, r, &others);
  assert_int_equal(names(typing, "ana"), 1);
  assert_int_equal(json_integer_value(others), 0);
  json_decref(typing);
  json_decref(others);

  fake_now += a->cfg.typing_ttl_ms - 1;
  app__rooms_tick(a);
  assert_int_equal(r->dirty, 0); /* not yet */
  fake_now += 1;
  app__rooms_tick(a);
  assert_int_equal(r->dirty, ROOM_DIRTY_TYPING);
  typing = app__room_typing_json(a, r, &others);
  assert_int_equal(json_array_size(typing), 0);
  json_decref(typing);
  json_decref(others);
  app__rooms_flush(a);
}

static void test_other_nodes_share(void **state) {
  struct app *a = &((struct fixture *)*state)->a;
  struct room *r;
  json_t *state_json, *others, *typing, *act;
  add_user(a, 1, "ana");
  r = app__room_get(a, "room");
  app__room_sub_added(a, r, 1);
  app__rooms_flush(a);

  /* Node B: zed types (3 s left) and has the chat open; ana has it open there too. */
  state_json = json_pack("{s:[{s:{s:i, s:s}, s:i}], s:[{s:i, s:s}, {s:i, s:s}]}", "typing",
                         "user", "id", 9, "username", "zed", "ttl", 3000, "active", "id", 9,
                         "username", "zed", "id", 1, "username", "ana");
  app__rooms_remote_state(a, "room", "node-b", state_json);
  json_decref(state_json);
  /* Another node's news is not published again. */
  assert_int_equal(r->dirty, ROOM_DIRTY_TYPING | ROOM_DIRTY_ACTIVE);
  app__rooms_flush(a);
  act = active_all(a, r);
  assert_int_equal(json_array_size(act), 2); /* ana once, though open on both nodes */
  assert_int_equal(names(act, "zed"), 1);
  json_decref(act);
  typing = app__room_typing_json(a, r, &others);
  assert_int_equal(names(typing, "zed"), 1);
  json_decref(typing);
  json_decref(others);

  /* Its typer's TTL runs here from when the news came. */
  fake_now += 2999;
  app__rooms_tick(a);
  assert_int_equal(r->dirty, 0);
  fake_now += 1;
  app__rooms_tick(a);
  assert_int_equal(r->dirty, ROOM_DIRTY_TYPING);
  app__rooms_flush(a);

  /* The node goes: its openers stop counting. A chat not open here ignores news. */
  app__rooms_forget_node(a, "node-b");
  assert_int_equal(r->dirty, ROOM_DIRTY_ACTIVE);
  act = active_all(a, r);
  assert_int_equal(json_array_size(act), 1);
  json_decref(act);
  app__rooms_flush(a);
  app__rooms_remote_state(a, "elsewhere", "node-b", NULL);
  assert_null(app__room_find(a, "elsewhere"));
}

static struct outq_chunk *frame(void) {
  struct outq_chunk *c = net_ws_frame_text("{}", 2);
  assert_non_null(c);
  return c;
}

static void deliver(struct app *a, struct room *r, int64_t seq) {
  struct outq_chunk *c = frame();
  app__room_deliver_msg(a, r, seq, 0, c);
  outq_chunk_unref(c);
}

static void test_seam_gap_and_duplicates(void **state) {
  struct app *a = &((struct fixture *)*state)->a;
  struct client *cl = add_client(a, add_user(a, 1, "ana"));
  struct sub *s = app__sub_open(a, cl, "room");
  struct room *r;
  assert_non_null(s);
  r = s->room;
  assert_int_equal(s->live, 0);
  assert_ptr_equal(app__sub_find(cl, "room"), s);

  /* Committed while the replay is read: held. */
  deliver(a, r, 5);
  assert_int_equal(s->n_held, 1);
  /* The replay covered up to 4: 5 follows at once, and the sub is live. */
  app__sub_go_live(a, s, 4, 0);
  assert_int_equal(s->live, 1);
  assert_int_equal(s->next_seq, 6);
  assert_int_equal(s->n_held, 0);

  deliver(a, r, 6);
  assert_int_equal(s->next_seq, 7);
  deliver(a, r, 6); /* a duplicate (say, a retry announced again) */
  deliver(a, r, 3);
  assert_int_equal(s->next_seq, 7);
  assert_int_equal(s->n_held, 0);

  /* 7 and 8 overtaken by 9: 9 waits, and the gap waits for the bus before the store. */
  deliver(a, r, 9);
  assert_int_equal(s->next_seq, 7);
  assert_int_equal(s->n_held, 1);
  assert_int_equal(s->gap_listed, 1);
  assert_ptr_equal(a->gap_subs, s);
  assert_true(uv_is_active((uv_handle_t *)&a->gap_timer));
  deliver(a, r, 7);
  assert_int_equal(s->next_seq, 8);
  assert_int_equal(s->gap_listed, 1); /* 8 still missing */
  deliver(a, r, 8);
  assert_int_equal(s->next_seq, 10); /* 8, then the held 9 */
  assert_int_equal(s->n_held, 0);
  assert_int_equal(s->gap_listed, 0);
  assert_null(a->gap_subs);

  /* Subscribing again restarts the seam: a new generation, held until its replay. */
  {
    uint32_t gen = s->gen;
    assert_ptr_equal(app__sub_open(a, cl, "room"), s);
    assert_int_equal(s->gen, gen + 1);
    assert_int_equal(s->live, 0);
  }
}

static void test_fence_holds_then_releases(void **state) {
  struct app *a = &((struct fixture *)*state)->a;
  struct client *cl = add_client(a, add_user(a, 1, "ana"));
  struct client *other = add_client(a, add_user(a, 2, "bob"));
  struct sub *s = app__sub_open(a, cl, "room");
  struct sub *t = app__sub_open(a, other, "room");
  app__sub_go_live(a, s, 0, 0);
  app__sub_go_live(a, t, 0, 0);

  app__subs_fence(a, "ana", "room", 1, 0);
  assert_int_equal(s->fenced, 1);
  assert_int_equal(t->fenced, 0); /* only ana's subscriptions hold */
  deliver(a, s->room, 1);
  deliver(a, s->room, 2);
  assert_int_equal(s->next_seq, 1);
  assert_int_equal(s->n_held, 2);
  assert_int_equal(t->next_seq, 3);

  /* A refused removal lifts the fence: what was held follows, in order. */
  app__subs_fence(a, "ana", "room", 0, 0);
  assert_int_equal(s->fenced, 0);
  assert_int_equal(s->next_seq, 3);
  assert_int_equal(s->n_held, 0);

  /* The removal's end of the subscriptions: ana's go, the room stays for bob. */
  app__drop_user_subs_here(a, 1, "room");
  assert_null(app__sub_find(cl, "room"));
  assert_non_null(app__room_find(a, "room"));
  app__client_drop_subs(other);
  assert_null(app__room_find(a, "room")); /* the last one out frees the room */
}

/* A gap the bus does not fill within GAP_WAIT_MS (25 ms) is read from the store (a temp SQLite
 * file): not sooner, and once. (The socket has no connection here, so the read's answer is
 * dropped as for a socket that closed meanwhile; 06-resume and 50-cluster check what a live one
 * receives.) */
static void on_store_closed(void *arg) { *(int *)arg = 1; }

static void test_gap_left_open_is_read_from_the_store(void **state) {
  struct fixture *f = *state;
  struct app *a = &f->a;
  struct client *cl = add_client(a, add_user(a, 1, "ana"));
  struct sub *s;
  char dir[64], path[128];
  int closed = 0;
  uint64_t deadline, started;
  snprintf(dir, sizeof dir, "/tmp/parley-rooms-XXXXXX");
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/parley.db", dir);
  assert_int_equal(store_open(&a->store, &f->loop, path, STORE_DURABILITY_NORMAL, 0), 0);

  s = app__sub_open(a, cl, "room");
  app__sub_go_live(a, s, 0, 0);
  uv_update_time(&f->loop);
  started = uv_now(&f->loop);
  deliver(a, s->room, 2); /* 1 never comes */
  assert_int_equal(s->gap_listed, 1);
  deadline = uv_hrtime() + UINT64_C(10000000000);
  while (a->metrics.catch_ups == 0) {
    uv_run(&f->loop, UV_RUN_ONCE);
    assert_true(uv_hrtime() < deadline);
  }
  assert_true(uv_now(&f->loop) - started >= 25);
  assert_int_equal(a->metrics.catch_ups, 1);
  assert_int_equal(s->catching_up, 1);
  assert_int_equal(s->gap_listed, 0);
  assert_int_equal(s->n_held, 1); /* 2 waits behind the read */
  deliver(a, s->room, 3);           /* more while the read is in flight: held, no second read */
  assert_int_equal(s->n_held, 2);
  assert_int_equal(a->metrics.catch_ups, 1);
  while (cl->refs > 1) { /* the read's callback releases its reference */
    uv_run(&f->loop, UV_RUN_ONCE);
    assert_true(uv_hrtime() < deadline);
  }

  store_close(a->store, on_store_closed, &closed);
  while (!closed)
    uv_run(&f->loop, UV_RUN_ONCE);
  a->store = NULL;
  unlink(path);
  snprintf(path, sizeof path, "%s/parley.db-wal", dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/parley.db-shm", dir);
  unlink(path);
  rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_active_users_count_sockets, setup, teardown),
      cmocka_unit_test_setup_teardown(test_typing_expires_by_ttl, setup, teardown),
      cmocka_unit_test_setup_teardown(test_other_nodes_share, setup, teardown),
      cmocka_unit_test_setup_teardown(test_seam_gap_and_duplicates, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fence_holds_then_releases, setup, teardown),
      cmocka_unit_test_setup_teardown(test_gap_left_open_is_read_from_the_store, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
