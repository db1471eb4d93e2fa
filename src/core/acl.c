/* acl.c - the access-control rules declared in acl.h. */
#include "core/acl.h"

#include <string.h>

#include "common/error.h"

static int acl__check(enum acl_op op, enum chat_role role, int is_public);

int acl_refusal(enum chat_role role, int is_public) {
  /* A private chat's slug must not be probed: to someone outside it, it does not exist. */
  return role == CHAT_ROLE_NONE && !is_public ? PARLEY_ENOT_FOUND : PARLEY_EFORBIDDEN;
}

int acl_check(enum acl_op op, enum chat_role role, int is_public) {
  int err = acl__check(op, role, is_public);
  return err ? acl_refusal(role, is_public) : 0;
}

static int acl__check(enum acl_op op, enum chat_role role, int is_public) {
  int participant = role != CHAT_ROLE_NONE;
  switch (op) {
  case ACL_CHAT_VIEW:
    /* A public chat can be looked at before joining it, as in Slack's channel browser. */
    return participant || is_public ? 0 : PARLEY_EFORBIDDEN;
  case ACL_CHAT_READ:
  case ACL_MSG_SEND:
    return participant ? 0 : PARLEY_EFORBIDDEN;
  case ACL_CHAT_JOIN:
    /* Joining twice is harmless; private chats are entered only through an invitation. */
    return participant || is_public ? 0 : PARLEY_EFORBIDDEN;
  case ACL_CHAT_UPDATE:
  case ACL_INVITES_MANAGE:
    return role >= CHAT_ROLE_ADMIN ? 0 : PARLEY_EFORBIDDEN;
  case ACL_CHAT_LEAVE:
    return participant ? 0 : PARLEY_EFORBIDDEN;
  }
  return PARLEY_EFORBIDDEN;
}

int acl_can_invite(enum chat_role actor, enum invite_policy policy) {
  switch (policy) {
  case INVITE_POLICY_OWNER:
    return actor == CHAT_ROLE_OWNER ? 0 : PARLEY_EFORBIDDEN;
  case INVITE_POLICY_ADMINS:
    return actor >= CHAT_ROLE_ADMIN ? 0 : PARLEY_EFORBIDDEN;
  case INVITE_POLICY_MEMBERS:
    return actor != CHAT_ROLE_NONE ? 0 : PARLEY_EFORBIDDEN;
  }
  return PARLEY_EFORBIDDEN;
}

int acl_can_remove(enum chat_role actor, enum chat_role target) {
  if (target == CHAT_ROLE_NONE || target == CHAT_ROLE_OWNER)
    return PARLEY_EFORBIDDEN; /* the owner leaves, or hands over ownership first */
  if (actor == CHAT_ROLE_OWNER)
    return 0;
  if (actor == CHAT_ROLE_ADMIN && target == CHAT_ROLE_MEMBER)
    return 0;
  return PARLEY_EFORBIDDEN;
}

int acl_can_set_role(enum chat_role actor, enum chat_role target, enum chat_role new_role) {
  if (new_role == CHAT_ROLE_NONE)
    return PARLEY_EBAD_REQUEST;
  if (actor != CHAT_ROLE_OWNER || target == CHAT_ROLE_NONE || target == CHAT_ROLE_OWNER)
    return PARLEY_EFORBIDDEN;
  return 0;
}

int acl_can_revoke(enum chat_role actor, int is_inviter) {
  if (actor >= CHAT_ROLE_ADMIN)
    return 0;
  return is_inviter && actor != CHAT_ROLE_NONE ? 0 : PARLEY_EFORBIDDEN;
}

int acl_successor(const struct acl_member *m, int n) {
  int best = -1;
  for (int i = 0; i < n; i++) {
    if (m[i].role == CHAT_ROLE_NONE || m[i].role == CHAT_ROLE_OWNER)
      continue;
    if (best < 0 || m[i].role > m[best].role ||
        (m[i].role == m[best].role &&
         (m[i].joined_at < m[best].joined_at ||
          (m[i].joined_at == m[best].joined_at && m[i].user_id < m[best].user_id))))
      best = i;
  }
  return best;
}

const char *invite_policy_name(enum invite_policy p) {
  switch (p) {
  case INVITE_POLICY_OWNER:
    return "owner";
  case INVITE_POLICY_MEMBERS:
    return "members";
  default:
    return "admins";
  }
}

int invite_policy_parse(const char *s, enum invite_policy *out) {
  if (s && strcmp(s, "owner") == 0)
    *out = INVITE_POLICY_OWNER;
  else if (s && strcmp(s, "admins") == 0)
    *out = INVITE_POLICY_ADMINS;
  else if (s && strcmp(s, "members") == 0)
    *out = INVITE_POLICY_MEMBERS;
  else
    return PARLEY_EBAD_REQUEST;
  return 0;
}

const char *chat_role_name(enum chat_role role) {
  switch (role) {
  case CHAT_ROLE_MEMBER:
    return "member";
  case CHAT_ROLE_ADMIN:
    return "admin";
  case CHAT_ROLE_OWNER:
    return "owner";
  default:
    return NULL;
  }
}

enum chat_role chat_role_parse(const char *s) {
  if (s == NULL)
    return CHAT_ROLE_NONE;
  if (strcmp(s, "member") == 0)
    return CHAT_ROLE_MEMBER;
  if (strcmp(s, "admin") == 0)
    return CHAT_ROLE_ADMIN;
  if (strcmp(s, "owner") == 0)
    return CHAT_ROLE_OWNER;
  return CHAT_ROLE_NONE;
}
