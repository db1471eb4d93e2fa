/* test_redis_uv.c - hiredis on the libuv loop (src/bus/redis_uv.c), against a TCP peer in the
 * test's own loop that misbehaves the way a restarting Redis can.
 *
 * What it must do that hiredis 0.14's own adapter does not: a connection the peer resets
 * (RST, as a Redis that exits with unread input sends) disconnects at once, with the pending
 * command's callback and the disconnect callback run; and a refused connect is reported by the
 * connect callback. With the old adapter both waited forever, and the bus only noticed a dead
 * connection by its heartbeat, seconds later (the cluster test that lost a node's bus for 2.5 s
 * after a Redis restart). The normal path, against a real Redis, is test_bus.c's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <uv.h>

#include "bus/redis_uv.h"
#include "run_until.h"

#define DEADLINE_MS 5000

struct fx {
  uv_loop_t loop;
  uv_timer_t deadline;
  int timed_out;
  uv_tcp_t server;
  uv_tcp_t peer; /* the accepted connection */
  int peer_open;
  int port;
  /* what the client saw */
  int connect_status; /* REDIS_OK / REDIS_ERR once called, else 1 */
  int disconnect_status;
  int disconnected;
  int replies_null; /* command callbacks run with no reply (the connection went away) */
};

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  (void)h;
  buf->base = malloc(size);
  buf->len = size;
}

/* The first bytes of a command: answer them with a reset. */
static void on_peer_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  struct fx *f = s->data;
  free(buf->base);
  if (n > 0 && f->peer_open) {
    f->peer_open = 0;
    assert_int_equal(uv_tcp_close_reset(&f->peer, NULL), 0);
  }
}

static void on_conn(uv_stream_t *server, int status) {
  struct fx *f = server->data;
  assert_int_equal(status, 0);
  uv_tcp_init(&f->loop, &f->peer);
  f->peer.data = f;
  assert_int_equal(uv_accept(server, (uv_stream_t *)&f->peer), 0);
  f->peer_open = 1;
  uv_read_start((uv_stream_t *)&f->peer, on_alloc, on_peer_read);
}

static int setup(void **state) {
  struct fx *f = calloc(1, sizeof *f);
  struct sockaddr_in addr;
  struct sockaddr_storage bound;
  int len = sizeof bound;
  uv_loop_init(&f->loop);
  uv_timer_init(&f->loop, &f->deadline);
  f->deadline.data = &f->timed_out;
  uv_tcp_init(&f->loop, &f->server);
  f->server.data = f;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  assert_int_equal(uv_tcp_bind(&f->server, (const struct sockaddr *)&addr, 0), 0);
  assert_int_equal(uv_tcp_getsockname(&f->server, (struct sockaddr *)&bound, &len), 0);
  f->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
  f->connect_status = 1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;
  uv_close((uv_handle_t *)&f->deadline, NULL);
  if (!uv_is_closing((uv_handle_t *)&f->server))
    uv_close((uv_handle_t *)&f->server, NULL);
  if (f->peer_open)
    uv_close((uv_handle_t *)&f->peer, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  /* The adapter's poll handle was closed with its context: nothing is left on the loop. */
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f);
  return 0;
}

static void on_connect(const redisAsyncContext *ac, int status) {
  ((struct fx *)ac->data)->connect_status = status;
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  struct fx *f = ac->data;
  f->disconnected = 1;
  f->disconnect_status = status;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *arg) {
  (void)ac;
  if (reply == NULL)
    ((struct fx *)arg)->replies_null++;
}

static redisAsyncContext *client(struct fx *f) {
  redisAsyncContext *ac = redisAsyncConnect("127.0.0.1", f->port);
  assert_non_null(ac);
  assert_int_equal(ac->err, 0);
  assert_int_equal(redis_uv_attach(ac, &f->loop), REDIS_OK);
  assert_int_equal(redis_uv_attach(ac, &f->loop), REDIS_ERR); /* once per context */
  ac->data = f;
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  return ac;
}

/* A command sent on a connection the peer then resets: the command's callback and the
 * disconnect callback run, with an error, without waiting for any timer. */
static void test_reset_disconnects(void **state) {
  struct fx *f = *state;
  redisAsyncContext *ac;
  assert_int_equal(uv_listen((uv_stream_t *)&f->server, 8, on_conn), 0);
  ac = client(f);
  RUN_UNTIL(f, f->connect_status != 1, "the connect");
  assert_int_equal(f->connect_status, REDIS_OK);
  assert_int_equal(redisAsyncCommand(ac, on_reply, f, "PING"), REDIS_OK);
  RUN_UNTIL(f, f->disconnected, "the disconnect after the reset");
  assert_int_equal(f->disconnect_status, REDIS_ERR);
  assert_int_equal(f->replies_null, 1);
}

/* A connect to a port where nothing listens is refused, and the connect callback says so. */
static void test_refused_connect_reported(void **state) {
  struct fx *f = *state;
  uv_close((uv_handle_t *)&f->server, NULL); /* bound, never listening: the port is free */
  uv_run(&f->loop, UV_RUN_NOWAIT);
  client(f);
  RUN_UNTIL(f, f->connect_status != 1, "the refused connect to be reported");
  assert_int_equal(f->connect_status, REDIS_ERR);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_reset_disconnects, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refused_connect_reported, setup, teardown),
  };
  return cmocka_run_group_tests_name("redis_uv", tests, NULL, NULL);
}
