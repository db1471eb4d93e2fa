/* ops.h - the protocol's op handlers, one per op, in three files by concern: ops_chat.c (chats,
 * messages, read markers), ops_live.c (subscriptions, typing, presence) and ops_members.c
 * (membership, search, invitations). ws_conn.c calls them through its op table once the op is
 * decoded, authorized and within its limits. Each takes the socket and the decoded request
 * (both borrowed for the call) and replies, now or from a store callback.
 */
#ifndef PARLEY_APP_OPS_H
#define PARLEY_APP_OPS_H

#include "app/clients.h"
#include "proto/proto.h"

typedef void (*app_op_fn)(struct client *cl, const struct proto_req *req);

/* ops_chat.c */
void app__op_chat_create(struct client *cl, const struct proto_req *req);
void app__op_chat_get(struct client *cl, const struct proto_req *req);
void app__op_chat_members(struct client *cl, const struct proto_req *req); /* issue 15 */
void app__op_chat_join(struct client *cl, const struct proto_req *req);
void app__op_chat_list(struct client *cl, const struct proto_req *req);
void app__op_msg_send(struct client *cl, const struct proto_req *req);
void app__op_msg_history(struct client *cl, const struct proto_req *req);
void app__op_read(struct client *cl, const struct proto_req *req);

/* ops_msg.c (issue 17) */
void app__op_dm_open(struct client *cl, const struct proto_req *req);
void app__op_msg_edit(struct client *cl, const struct proto_req *req);
void app__op_msg_delete(struct client *cl, const struct proto_req *req);
void app__op_react(struct client *cl, const struct proto_req *req);
/* Sends the `mention` event for message m (borrowed) of chat slug to the users it mentions
 * (never its author), on the sockets not subscribed to the chat. */
void app__mention_event(struct app *a, const char *slug, const struct store_msg *m);

/* ops_live.c */
void app__op_sub(struct client *cl, const struct proto_req *req);
void app__op_unsub(struct client *cl, const struct proto_req *req);
void app__op_typing(struct client *cl, const struct proto_req *req);
void app__op_presence(struct client *cl, const struct proto_req *req);

/* ops_members.c */
void app__op_chat_update(struct client *cl, const struct proto_req *req);
void app__op_membership(struct client *cl, const struct proto_req *req); /* leave, remove, setRole */
void app__op_users_search(struct client *cl, const struct proto_req *req);

/* ops_search.c */
void app__op_msg_search(struct client *cl, const struct proto_req *req);
void app__op_invite_create(struct client *cl, const struct proto_req *req);
void app__op_invite_accept(struct client *cl, const struct proto_req *req);
void app__op_invite_decline(struct client *cl, const struct proto_req *req);
void app__op_invite_revoke(struct client *cl, const struct proto_req *req);
void app__op_invite_list(struct client *cl, const struct proto_req *req);
/* Starts the invitation expiry sweep unless one is in flight (from the tick). */
void app__invite_sweep(struct app *a);

/* ops_profile.c (issue 18) */
void app__op_chat_notify(struct client *cl, const struct proto_req *req);
void app__op_chat_browse(struct client *cl, const struct proto_req *req);
void app__op_me_update(struct client *cl, const struct proto_req *req);
/* A user's names or avatar changed (sreq: out.user after, out.member_ids who shows them, both
 * borrowed): this node's copies follow, and user.updated goes to the user's sockets and to
 * everyone who shares a chat with them. Also for app_http.c's avatar routes. */
void app__user_announce(struct app *a, const struct store_req *sreq);
void app__user_renamed(struct app *a, const struct store_user *u);

/* ops_stream.c (issue 19) */
void app__op_stream_start(struct client *cl, const struct proto_req *req);
void app__op_stream_append(struct client *cl, const struct proto_req *req);
void app__op_stream_end(struct client *cl, const struct proto_req *req);
/* Sends the msg.delta of stream `seq` of chat `slug` (delta borrowed, appended at `offset`,
 * committed with member_gen `mgen`) to the chat's subscriptions here and on the other nodes. */
void app__deliver_delta(struct app *a, const char *slug, int64_t seq, int64_t offset,
                        const char *delta, int64_t mgen);
/* Ends, as interrupted, the streams whose authors are gone and idle for cfg.stream_idle_ms
 * (unless a sweep is in flight); from the tick. */
void app__stream_sweep(struct app *a);

#endif
