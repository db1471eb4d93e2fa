/* subs.h - subscriptions: the seq seam of `sub` (replay, then live, no gap and no duplicate),
 * the gap wait, catch-up reads from the store, member_gen checks and removal fences. The ops
 * (ops_live.c) open and close them; deliver.c and the cluster's events feed them messages.
 */
#ifndef PARLEY_APP_SUBS_H
#define PARLEY_APP_SUBS_H

#include <stdint.h>

#include "app/rooms.h"

struct client;

/* cl's subscription to chat `slug`, or NULL. Borrowed. */
struct sub *app__sub_find(struct client *cl, const char *slug);
/* cl's subscription to `slug`, created (not live, fenced if a removal is under way) if there was
 * none, and (re)started: a new generation that holds live messages until app__sub_go_live.
 * NULL without memory. Borrowed. */
struct sub *app__sub_open(struct app *a, struct client *cl, const char *slug);
/* The replay of s is sent (it covered everything up to last_seq, access confirmed as of
 * member_gen): what was held follows, and s is live. */
void app__sub_go_live(struct app *a, struct sub *s, int64_t last_seq, int64_t member_gen);
/* Ends a subscription (its room too, if it was the last). */
void app__sub_free(struct app *a, struct sub *s);
/* Ends every subscription of a socket. */
void app__client_drop_subs(struct client *cl);
/* Delivers message `seq` (frame borrowed; every sub takes its own reference) to the room's
 * subscriptions in seq order, catching up from the store on a gap, and on a member_gen `mgen`
 * newer than a subscription's (its access is checked again first). */
void app__room_deliver_msg(struct app *a, struct room *r, int64_t seq, int64_t mgen,
                           struct outq_chunk *frame);
/* Delivers a msg.delta of stream `seq` at `offset` (frame borrowed) to the room's subscriptions:
 * after the stream's own message, held where messages are held (a replay, a catch-up, a fence,
 * a gap), and, like a message, only to a subscription confirmed as of member_gen `mgen`. */
void app__room_deliver_delta(struct app *a, struct room *r, int64_t seq, int64_t offset,
                             int64_t mgen, struct outq_chunk *frame);
/* A leave or removal this node committed moved chat `slug`'s member_gen to `gen`, and the
 * leaver's subscriptions here are gone. The others here that were confirmed just before it are
 * confirmed as of `gen` too (nobody else lost access by it), so they need not ask the store. */
void app__room_members_left(struct app *a, const char *slug, int64_t gen);
/* Cluster events (struct cluster_events, every pointer borrowed): a message from another node,
 * a chat's channel effective (again), the end of a user's subscriptions to a chat, and the
 * fences of (username, slug) applied to that user's subscriptions here. */
void app__subs_bus_msg(struct app *a, const char *slug, int64_t seq, int64_t mgen,
                       struct outq_chunk *frame);
void app__subs_bus_delta(struct app *a, const char *slug, int64_t seq, int64_t offset,
                         int64_t mgen, struct outq_chunk *frame);
void app__subs_room_ready(struct app *a, const char *slug);
void app__drop_user_subs_here(struct app *a, int64_t user_id, const char *slug);
void app__subs_fence(struct app *a, const char *username, const char *slug, int fenced,
                     int verify);

#endif
