/* redis_uv.c - hiredis' asynchronous API on a libuv loop (why it is not hiredis' own adapter:
 * redis_uv.h). One uv_poll_t per context, started for the events hiredis asks for. */
#include <stdlib.h>

#include "bus/redis_uv.h"

struct redis_uv {
  redisAsyncContext *ac; /* NULL once hiredis cleaned up: the poll is closing */
  uv_poll_t poll;
  int events; /* UV_READABLE | UV_WRITABLE, what hiredis waits for */
};

static void on_poll(uv_poll_t *h, int status, int events) {
  struct redis_uv *p = h->data;
  /* An error (a reset, a refused connect) is handed to hiredis as the events it waited for:
   * its read or write then fails and it disconnects, running the disconnect callback. */
  int ev = status < 0 ? p->events : events;
  if (p->ac && (ev & UV_READABLE))
    redisAsyncHandleRead(p->ac);
  if (p->ac && (ev & UV_WRITABLE))
    redisAsyncHandleWrite(p->ac);
}

static void set_events(struct redis_uv *p, int events) {
  p->events = events;
  if (events)
    uv_poll_start(&p->poll, events, on_poll);
  else
    uv_poll_stop(&p->poll);
}

static void add_read(void *arg) {
  struct redis_uv *p = arg;
  set_events(p, p->events | UV_READABLE);
}

static void del_read(void *arg) {
  struct redis_uv *p = arg;
  set_events(p, p->events & ~UV_READABLE);
}

static void add_write(void *arg) {
  struct redis_uv *p = arg;
  set_events(p, p->events | UV_WRITABLE);
}

static void del_write(void *arg) {
  struct redis_uv *p = arg;
  set_events(p, p->events & ~UV_WRITABLE);
}

static void on_closed(uv_handle_t *h) {
  free(h->data);
}

static void cleanup(void *arg) {
  struct redis_uv *p = arg;
  p->ac = NULL; /* a poll callback already queued in this turn must not touch the context */
  uv_close((uv_handle_t *)&p->poll, on_closed);
}

int redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop) {
  struct redis_uv *p;
  if (ac->ev.data != NULL)
    return REDIS_ERR;
  p = calloc(1, sizeof *p);
  if (p == NULL)
    return REDIS_ERR;
  if (uv_poll_init(loop, &p->poll, ac->c.fd) != 0) {
    free(p);
    return REDIS_ERR;
  }
  p->ac = ac;
  p->poll.data = p;
  ac->ev.addRead = add_read;
  ac->ev.delRead = del_read;
  ac->ev.addWrite = add_write;
  ac->ev.delWrite = del_write;
  ac->ev.cleanup = cleanup;
  ac->ev.data = p;
  return REDIS_OK;
}
