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
void app__op_chat_join(struct client *cl, const struct proto_req *req);
void app__op_chat_list(struct client *cl, const struct proto_req *req);
void app__op_msg_send(struct client *cl, const struct proto_req *req);
void app__op_msg_history(struct client *cl, const struct proto_req *req);
void app__op_read(struct client *cl, const struct proto_req *req);

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

#endif
