/* acl.c - the access-control rules declared in acl.h. */
#include "core/acl.h"

#include <string.h>

#include "common/error.h"

int acl_check(enum acl_op op, enum chat_role role, int is_public) {
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
  }
  return PARLEY_EFORBIDDEN;
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
