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
