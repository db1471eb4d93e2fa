/* deliver.h - sending what happened to everyone concerned, on this node and (through the bus)
 * on every other: committed messages to the chat's subscriptions, events to users' sockets,
 * the end of a user's subscriptions, the close of a session.
 */
#ifndef PARLEY_APP_DELIVER_H
#define PARLEY_APP_DELIVER_H

#include <jansson.h>
#include <stdint.h>

#include "app/state.h"

/* Fans a committed message (borrowed) of chat `slug` out to the subscriptions here and to the
 * other nodes. `mgen`: the chat's member_gen read with it (see subs.c's sub_deliver). */
void app__deliver_msg(struct app *a, const char *slug, const struct store_msg *m, int64_t mgen);
/* As app__deliver_msg, for a message its caller has encoded already (proto_msg_enc: enc, len
 * bytes, borrowed) because its reply carries it too: one encoding for both. seq: the message's. */
void app__deliver_msg_enc(struct app *a, const char *slug, int64_t seq, int64_t mgen,
                          const char *enc, size_t len);
/* Encodes an event once and sends it to every socket of each user in ids (borrowed), on this
 * node and on every other. The event fields' reference is stolen. */
void app__notify_users(struct app *a, const int64_t *ids, size_t n, const char *ev,
                       json_t *fields);
/* As app__notify_users, for an event already encoded: json (len bytes, an object with "ev";
 * borrowed). */
void app__notify_users_json(struct app *a, const int64_t *ids, size_t n, const char *json,
                            size_t len);
/* Ends every subscription of user_id's sockets to the chat `slug`, on every node. */
void app__drop_user_subs(struct app *a, int64_t user_id, const char *slug);
/* Closes every socket of the session with that hash (logout), on every node. */
void app__close_session(struct app *a, const uint8_t *session_hash, uint16_t code,
                        const char *reason);
/* Sends participant.joined (with u's presence) to the members sreq's join returned (both
 * borrowed). */
void app__announce_join(struct app *a, const struct store_req *sreq, const struct store_user *u);

/* Fans out the notice entry (issue 17) a membership op appended, if any (sreq borrowed): after
 * the op's own events, so a removed user's subscriptions are gone first. Also called by
 * app__announce_join. */
void app__deliver_notice(struct app *a, const struct store_req *sreq);

/* Tells both sides of an invitation (borrowed) what happened to it (action: "received",
 * "accepted", ...), as an "invite" event. */
void app__invite_event(struct app *a, const struct store_invite *inv, const char *action);
/* The same for each of sreq->out.invites (invitations an op settled on its way: a join, a
 * removal), with its new status. */
void app__invite_events(struct app *a, const struct store_req *sreq);

#endif
