/* presence.c - presence aggregation (presence.h). */
#include "core/presence.h"

static int presence__publish(struct presence_user *u, int64_t now) {
  enum presence_state s = u->active > 0 ? PRESENCE_ONLINE : PRESENCE_AWAY;
  if (u->conns == 0)
    return 0; /* in the grace: keep showing what was shown */
  u->last_seen = now;
  if (s == u->state)
    return 0;
  u->state = s;
  return 1;
}

int presence_connect(struct presence_user *u, int64_t now) {
  u->conns++;
  u->active++;
  u->gone_at = 0;
  return presence__publish(u, now);
}

int presence_disconnect(struct presence_user *u, int was_active, int64_t now) {
  if (u->conns <= 0)
    return 0;
  u->conns--;
  if (was_active && u->active > 0)
    u->active--;
  u->last_seen = now;
  if (u->conns == 0) {
    u->gone_at = now;
    return 0;
  }
  return presence__publish(u, now);
}

int presence_activity(struct presence_user *u, int was_active, int is_active, int64_t now) {
  if (u->conns <= 0 || was_active == is_active)
    return 0;
  u->active += is_active ? 1 : -1;
  return presence__publish(u, now);
}

int presence_tick(struct presence_user *u, int64_t now, int64_t grace_ms) {
  if (u->conns > 0 || u->gone_at == 0 || now - u->gone_at < grace_ms)
    return 0;
  u->last_seen = u->gone_at;
  u->gone_at = 0;
  if (u->state == PRESENCE_OFFLINE)
    return 0;
  u->state = PRESENCE_OFFLINE;
  return 1;
}

const char *presence_state_name(enum presence_state s) {
  switch (s) {
  case PRESENCE_ONLINE:
    return "online";
  case PRESENCE_AWAY:
    return "away";
  default:
    return "offline";
  }
}
