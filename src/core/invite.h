/* invite.h - the invitation life cycle as a pure state machine (time passed in).
 *
 *   pending --accept--> accepted      pending --decline--> declined
 *   pending --revoke--> revoked       pending --(expires_at passed)--> expired
 *
 * Every other move is refused. A pending invitation whose time is up behaves as expired even
 * before the sweep marks it, so an accept a second too late is `expired`, never a join.
 */
#ifndef PARLEY_CORE_INVITE_H
#define PARLEY_CORE_INVITE_H

#include <stdint.h>

#define INVITE_TTL_DEFAULT_S (7 * 24 * 3600)
#define INVITE_TTL_MAX_S (30 * 24 * 3600)

enum invite_status {
  INVITE_PENDING = 0,
  INVITE_ACCEPTED = 1,
  INVITE_DECLINED = 2,
  INVITE_REVOKED = 3,
  INVITE_EXPIRED = 4
};

enum invite_action { INVITE_ACCEPT, INVITE_DECLINE, INVITE_REVOKE, INVITE_EXPIRE };

/* Applies `action` at time `now` to an invitation in state `cur` expiring at `expires_at`.
 * Returns 0 and sets *next; PARLEY_EEXPIRED if it was pending but its time is up (*next is then
 * INVITE_EXPIRED, which the caller should store); PARLEY_ECONFLICT if it is no longer pending
 * (or, for INVITE_EXPIRE, not yet due). */
int invite_transition(enum invite_status cur, enum invite_action action, int64_t now,
                      int64_t expires_at, enum invite_status *next);

/* Expiry time for a requested ttl in seconds (0 = the default, 7 days). Returns 0 and sets
 * *expires_at, or PARLEY_EBAD_REQUEST when ttl is negative or over 30 days. */
int invite_expiry(int64_t now, int64_t ttl_s, int64_t *expires_at);

/* Wire name: "pending", "accepted", "declined", "revoked", "expired". Static string. */
const char *invite_status_name(enum invite_status s);

#endif
