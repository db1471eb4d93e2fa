/* acl.h - who may do what in a chat: the access-control rules as pure functions.
 *
 * No I/O and no clock: the caller (the store thread, inside the transaction that will act on the
 * answer) loads the chat's flags and the caller's role and asks here. Keeping the rules in one
 * table-like function lets the unit tests assert every op x role x visibility cell.
 */
#ifndef PARLEY_CORE_ACL_H
#define PARLEY_CORE_ACL_H

#include <stdint.h>

/* Every chat holds at most this many participants, the owner included, whatever its
 * maxParticipants says (a chat with no cap of its own has this one). Events of a chat go to all
 * its participants online, so the ceiling bounds what one event can cost. */
#define CHAT_PARTICIPANTS_CEILING 10000

enum chat_role {
  CHAT_ROLE_NONE = 0, /* not a participant */
  CHAT_ROLE_MEMBER = 1,
  CHAT_ROLE_ADMIN = 2,
  CHAT_ROLE_OWNER = 3
};

/* Who may invite to a chat. */
enum invite_policy {
  INVITE_POLICY_OWNER = 0,   /* the owner only */
  INVITE_POLICY_ADMINS = 1,  /* the owner and admins (the default) */
  INVITE_POLICY_MEMBERS = 2  /* every participant */
};

enum acl_op {
  ACL_CHAT_VIEW,   /* chat.get: metadata (public chats are visible to everyone signed in) */
  ACL_CHAT_READ,   /* msg.history, sub, read: message content */
  ACL_MSG_SEND,    /* msg.send, typing */
  ACL_CHAT_JOIN,   /* chat.join without an invitation */
  ACL_CHAT_UPDATE, /* chat.update: title, visibility, cap, invite policy */
  ACL_CHAT_LEAVE,  /* chat.leave */
  ACL_INVITES_MANAGE /* see a chat's outgoing invitations and revoke any of them */
};

/* Returns 0 if a user with role `role` may perform `op` on a chat with the given visibility,
 * else the refusal acl_refusal() gives. */
int acl_check(enum acl_op op, enum chat_role role, int is_public);

/* The code that refuses a user with role `role` anything on a chat: PARLEY_ENOT_FOUND to a
 * non-participant of a private chat (its existence is not revealed, so slugs cannot be probed),
 * PARLEY_EFORBIDDEN otherwise (a public chat is visible to all; a participant knows it). */
int acl_refusal(enum chat_role role, int is_public);

/* May `actor` invite to a chat with this policy? 0 or PARLEY_EFORBIDDEN. */
int acl_can_invite(enum chat_role actor, enum invite_policy policy);

/* May `actor` remove a participant whose role is `target`? The owner removes anyone but
 * themselves; an admin removes members only. 0 or PARLEY_EFORBIDDEN. */
int acl_can_remove(enum chat_role actor, enum chat_role target);

/* May `actor` change `target`'s role to `new_role`? Only the owner changes roles, never their
 * own; giving someone CHAT_ROLE_OWNER transfers ownership (the old owner becomes an admin).
 * 0, PARLEY_EFORBIDDEN, or PARLEY_EBAD_REQUEST for CHAT_ROLE_NONE. */
int acl_can_set_role(enum chat_role actor, enum chat_role target, enum chat_role new_role);

/* May `actor` revoke an invitation? Its inviter (while still a participant), owners and admins. */
int acl_can_revoke(enum chat_role actor, int is_inviter);

/* A participant as succession sees it. */
struct acl_member {
  int64_t user_id;
  enum chat_role role;
  int64_t joined_at;
};

/* When the owner leaves: the index in `m` (n entries, the owner excluded) of the new owner, the
 * longest-standing admin, else the longest-standing member (ties: lower user id); -1 if none. */
int acl_successor(const struct acl_member *m, int n);

/* Wire name of an invite policy ("owner", "admins", "members"). Static string. */
const char *invite_policy_name(enum invite_policy p);

/* Parses a policy name; returns 0 or PARLEY_EBAD_REQUEST. s is borrowed. */
int invite_policy_parse(const char *s, enum invite_policy *out);

/* Wire name of a role ("owner", "admin", "member"), or NULL for CHAT_ROLE_NONE. Static string. */
const char *chat_role_name(enum chat_role role);

/* Parses a wire role name; returns CHAT_ROLE_NONE for anything unknown. s is borrowed. */
enum chat_role chat_role_parse(const char *s);

#endif
