/* acl.h - who may do what in a chat: the access-control rules as pure functions.
 *
 * No I/O and no clock: the caller (the store thread, inside the transaction that will act on the
 * answer) loads the chat's flags and the caller's role and asks here. Keeping the rules in one
 * table-like function lets the unit tests assert every op x role x visibility cell.
 */
#ifndef PARLEY_CORE_ACL_H
#define PARLEY_CORE_ACL_H

enum chat_role {
  CHAT_ROLE_NONE = 0, /* not a participant */
  CHAT_ROLE_MEMBER = 1,
  CHAT_ROLE_ADMIN = 2,
  CHAT_ROLE_OWNER = 3
};

enum acl_op {
  ACL_CHAT_VIEW,  /* chat.get: metadata (public chats are visible to everyone signed in) */
  ACL_CHAT_READ,  /* msg.history, sub: message content */
  ACL_MSG_SEND,   /* msg.send */
  ACL_CHAT_JOIN   /* chat.join without an invitation */
};

/* Returns 0 if a user with role `role` may perform `op` on a chat with the given visibility,
 * else PARLEY_EFORBIDDEN. */
int acl_check(enum acl_op op, enum chat_role role, int is_public);

/* Wire name of a role ("owner", "admin", "member"), or NULL for CHAT_ROLE_NONE. Static string. */
const char *chat_role_name(enum chat_role role);

/* Parses a wire role name; returns CHAT_ROLE_NONE for anything unknown. s is borrowed. */
enum chat_role chat_role_parse(const char *s);

#endif
