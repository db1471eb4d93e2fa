/* bus.c - picks the backend a bus url names and forwards the calls to its method table. */
#include "bus/bus.h"

#include <string.h>

#include "common/error.h"

int bus_open(struct bus **out, uv_loop_t *loop, const char *url, const struct bus_callbacks *cb) {
  *out = NULL;
  if (url == NULL || *url == '\0' || strncmp(url, "local://", 8) == 0)
    return bus_local_ops.open(out, loop, url ? url : "", cb);
  if (strncmp(url, "redis://", 8) == 0)
    return bus_redis_ops.open(out, loop, url, cb);
  return PARLEY_EBAD_REQUEST;
}

int bus_subscribe(struct bus *b, const char *channel) {
  size_t n = strlen(channel);
  if (n == 0 || n > BUS_CHANNEL_MAX)
    return PARLEY_EBAD_REQUEST;
  return b->ops->subscribe(b, channel);
}

int bus_unsubscribe(struct bus *b, const char *channel) { return b->ops->unsubscribe(b, channel); }

int bus_publish(struct bus *b, const char *channel, const void *data, size_t len) {
  size_t n = strlen(channel);
  if (n == 0 || n > BUS_CHANNEL_MAX)
    return PARLEY_EBAD_REQUEST;
  return b->ops->publish(b, channel, data, len);
}

void bus_close(struct bus *b, void (*done)(void *arg), void *arg) { b->ops->close(b, done, arg); }

int bus_presence_put(struct bus *b, const struct bus_presence *p, int64_t expires_at,
                     bus_presence_cb cb, void *arg) {
  if (p->user_id <= 0 || p->state < BUS_PRES_NONE || p->state > BUS_PRES_ONLINE || cb == NULL ||
      p->name[0] == '\0' || strchr(p->name, ' ') || strlen(p->name) > BUS_PRES_NAME_MAX)
    return PARLEY_EBAD_REQUEST;
  return b->ops->presence_put(b, p, expires_at, cb, arg);
}

int bus_presence_refresh(struct bus *b, const int64_t *ids, size_t n, int64_t expires_at) {
  if (n == 0)
    return 0;
  return b->ops->presence_refresh(b, ids, n, expires_at);
}

int bus_presence_sweep(struct bus *b, int64_t now, int64_t ttl_ms, bus_presence_cb cb, void *arg) {
  if (cb == NULL)
    return PARLEY_EBAD_REQUEST;
  return b->ops->presence_sweep(b, now, ttl_ms, cb, arg);
}

int bus_presence_list(struct bus *b, bus_presence_cb cb, void *arg) {
  if (cb == NULL)
    return PARLEY_EBAD_REQUEST;
  return b->ops->presence_list(b, cb, arg);
}
