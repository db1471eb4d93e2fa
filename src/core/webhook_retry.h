/* webhook_retry.h - when a webhook delivery is tried again, and when it is given up. Pure: the
 * caller passes the clock.
 *
 * A delivery is tried at once; each failed try (no 2xx, or no answer in time) is followed by a
 * retry after base, 2 base, 4 base, 8 base and 16 base ms (base = 1 s by default: 1, 2, 4, 8,
 * 16 s), then it is given up: WEBHOOK_RETRIES retries after the first try.
 */
#ifndef PARLEY_CORE_WEBHOOK_RETRY_H
#define PARLEY_CORE_WEBHOOK_RETRY_H

#include <stdint.h>

#define WEBHOOK_RETRIES 5

/* 1 if an HTTP status (0: no response: connection failure or timeout) acknowledges the
 * delivery (2xx), else 0. */
int webhook_acknowledged(long status);

/* After try number `tries` (1 = the first) failed at `now` (Unix ms): the time of the next try
 * (now + base_ms * 2^(tries-1)), or -1 when no try is left. base_ms >= 1. */
int64_t webhook_retry_at(int tries, int64_t now, int64_t base_ms);

#endif
