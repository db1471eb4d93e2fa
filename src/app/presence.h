/* presence.h - users' presence (online/away/offline, lastSeen) here and across nodes, who may
 * see it, and the users' lifetime on this node (attach at auth, detach at close, freed after
 * the grace). Typing and activeUsers are rooms.c's.
 */
#ifndef PARLEY_APP_PRESENCE_H
#define PARLEY_APP_PRESENCE_H

#include <jansson.h>
#include <stdint.h>

#include "app/clients.h"

/* Registers an authenticated socket (u and session_hash copied). Returns 0, or
 * PARLEY_ERATE_LIMITED at the per-user connection cap. */
int app__user_attach(struct app *a, struct client *cl, const struct store_user *u,
                     const uint8_t *session_hash, int64_t expires_at);
/* A socket is closing: it stops counting for its user (or leaves the unauthenticated list). */
void app__user_detach(struct app *a, struct client *cl);
/* A socket reported active (1) or idle/hidden (0); the event goes out if the user's state
 * changed. */
void app__presence_report(struct app *a, struct app_user *au, struct client *cl, int active);
/* {user, state, lastSeen} for these (username borrowed; state: enum presence_state; last_seen
 * 0: null): a new reference. */
json_t *app__presence_pack(int64_t id, const char *username, int state, int64_t last_seen);
/* {user, state, lastSeen} of u (borrowed) as this node knows it: a new reference. */
json_t *app__presence_json(struct app *a, const struct store_user *u);
/* The presence state (enum presence_state) of user id as this node knows it: what
 * app__presence_json says, without encoding anything. */
int app__presence_state(struct app *a, int64_t id);
/* The same, and in *last (in: the stored lastSeen) the lastSeen app__presence_json says. */
int app__presence_of(struct app *a, int64_t id, int64_t *last);
/* au (borrowed) found `watched` with users.search: it sees their presence from now on. */
void app__presence_watch(struct app *a, struct app_user *au, int64_t watched);
/* Grace expiry and, with several nodes, the bus statements' refresh; from the tick. */
void app__presence_tick(struct app *a);
/* Writes everyone's lastSeen (shutdown). */
void app__presence_persist_all(struct app *a);
/* Frees every user and the presence caches (shutdown). */
void app__presence_dispose(struct app *a);
/* Cluster events: the bus is (back) up, so this node states its users' presence again and reads
 * everyone's; another node announced user_id's presence (json: the encoded event, borrowed) to
 * the users in ids (borrowed), and this node's watchers of the user get it too (json NULL: only
 * the new state, nobody is told). */
void app__presence_bus_up(struct app *a);
void app__presence_remote(struct app *a, int64_t user_id, int state, int64_t last_seen,
                          const int64_t *ids, size_t n, const char *json, size_t len);

#endif
