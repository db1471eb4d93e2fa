/* invite.c - the invitation state machine (invite.h). */
#include "core/invite.h"

#include "common/error.h"

int invite_transition(enum invite_status cur, enum invite_action action, int64_t now,
                      int64_t expires_at, enum invite_status *next) {
  int due = now >= expires_at;

  *next = cur;
  /* Accepting one that the sweep already marked is the same mistake as accepting one whose
   * time just ran out: say `expired`, not that something else happened to it. */
  if (cur == INVITE_EXPIRED && action == INVITE_ACCEPT)
    return PARLEY_EEXPIRED;
  if (cur != INVITE_PENDING)
    return PARLEY_ECONFLICT;
  if (action == INVITE_EXPIRE) {
    if (!due)
      return PARLEY_ECONFLICT;
    *next = INVITE_EXPIRED;
    return 0;
  }
  if (due && action == INVITE_ACCEPT) {
    *next = INVITE_EXPIRED;
    return PARLEY_EEXPIRED;
  }
  /* Declining or revoking a just-expired invitation is harmless and says what the user meant. */
  switch (action) {
  case INVITE_ACCEPT:
    *next = INVITE_ACCEPTED;
    break;
  case INVITE_DECLINE:
    *next = INVITE_DECLINED;
    break;
  case INVITE_REVOKE:
    *next = INVITE_REVOKED;
    break;
  default:
    break;
  }
  return 0;
}

int invite_expiry(int64_t now, int64_t ttl_s, int64_t *expires_at) {
  if (ttl_s < 0 || ttl_s > INVITE_TTL_MAX_S)
    return PARLEY_EBAD_REQUEST;
  *expires_at = now + (ttl_s ? ttl_s : INVITE_TTL_DEFAULT_S) * 1000;
  return 0;
}

const char *invite_status_name(enum invite_status s) {
  static const char *names[] = {"pending", "accepted", "declined", "revoked", "expired"};
  return (unsigned)s < 5 ? names[s] : "pending";
}
