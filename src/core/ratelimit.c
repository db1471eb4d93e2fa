/* ratelimit.c - token buckets (ratelimit.h). */
#include "core/ratelimit.h"

static void ratelimit__refill(struct ratelimit *rl, double rate, double burst, int64_t now_ms) {
  if (rl->last_ms == 0) {
    rl->tokens = burst;
    rl->last_ms = now_ms;
  } else if (now_ms > rl->last_ms) {
    rl->tokens += (double)(now_ms - rl->last_ms) * rate / 1000.0;
    if (rl->tokens > burst)
      rl->tokens = burst;
    rl->last_ms = now_ms;
  }
}

int64_t ratelimit_peek(struct ratelimit *rl, double rate, double burst, int64_t now_ms) {
  ratelimit__refill(rl, rate, burst, now_ms);
  if (rl->tokens >= 1.0)
    return 0;
  return (int64_t)((1.0 - rl->tokens) * 1000.0 / rate) + 1;
}

int64_t ratelimit_take(struct ratelimit *rl, double rate, double burst, int64_t now_ms) {
  ratelimit__refill(rl, rate, burst, now_ms);
  if (rl->tokens >= 1.0) {
    rl->tokens -= 1.0;
    return 0;
  }
  return (int64_t)((1.0 - rl->tokens) * 1000.0 / rate) + 1;
}

int64_t ratelimit_backoff_ms(int failures, int free_failures, int64_t max_ms) {
  int64_t ms = 1000;
  if (failures <= free_failures)
    return 0;
  for (int i = free_failures + 1; i < failures && ms < max_ms; i++)
    ms *= 2;
  return ms < max_ms ? ms : max_ms;
}
