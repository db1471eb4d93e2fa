/* ratelimit.h - token buckets, pure: the caller passes the time. */
#ifndef PARLEY_CORE_RATELIMIT_H
#define PARLEY_CORE_RATELIMIT_H

#include <stdint.h>

struct ratelimit {
  double tokens;
  int64_t last_ms; /* 0 = never used: the bucket starts full */
};

/* Takes one token from a bucket that refills at `rate` tokens a second up to `burst`.
 * Returns 0 if a token was taken, else the milliseconds until one will be available. */
int64_t ratelimit_take(struct ratelimit *rl, double rate, double burst, int64_t now_ms);

/* As ratelimit_take, but only looks: refills the bucket to now and returns 0 if a token is
 * there, else the milliseconds until one will be; takes nothing. For budgets charged only by
 * some outcomes (failed logins), checked before the outcome is known. */
int64_t ratelimit_peek(struct ratelimit *rl, double rate, double burst, int64_t now_ms);

/* Lockout after repeated failures (logins): none for the first `free_failures`, then 1 s,
 * doubling with each further failure, capped at max_ms. Returns milliseconds. */
int64_t ratelimit_backoff_ms(int failures, int free_failures, int64_t max_ms);

#endif
