/* presence.h - one user's presence, aggregated over all of their sockets. Pure: time is passed
 * in, and the caller publishes what the functions report as changed.
 *
 * Online while any socket is active, away while every socket reports idle or hidden, offline only
 * after `grace` with no socket at all: a reload or a reconnect inside the grace changes nothing
 * that anyone can see, so presence never flickers.
 */
#ifndef PARLEY_CORE_PRESENCE_H
#define PARLEY_CORE_PRESENCE_H

#include <stdint.h>

enum presence_state { PRESENCE_OFFLINE = 0, PRESENCE_AWAY = 1, PRESENCE_ONLINE = 2 };

struct presence_user {
  int conns;                 /* open authenticated sockets */
  int active;                /* of which report active */
  int64_t gone_at;           /* when the last socket closed; 0 while connected or offline */
  enum presence_state state; /* the state last published */
  int64_t last_seen;         /* when the user was last connected (Unix ms), 0 = never */
};

/* Each returns 1 if the published state changed (state and last_seen say to what), else 0. */

/* A socket authenticated; it starts active. */
int presence_connect(struct presence_user *u, int64_t now);

/* A socket closed; was_active says what it last reported. Going to zero sockets starts the
 * grace and publishes nothing: offline comes from presence_tick. */
int presence_disconnect(struct presence_user *u, int was_active, int64_t now);

/* A socket's activity changed from was_active to is_active. */
int presence_activity(struct presence_user *u, int was_active, int is_active, int64_t now);

/* Publishes offline once the grace has passed with no socket. */
int presence_tick(struct presence_user *u, int64_t now, int64_t grace_ms);

/* Wire name: "online", "away", "offline". Static string. */
const char *presence_state_name(enum presence_state s);

#endif
