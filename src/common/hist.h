/* hist.h - a fixed-size log-bucket latency histogram (HdrHistogram-like), and a sliding window of
 * two of them for "the last minute or two" figures on /metrics.
 *
 * Values below 256 are counted exactly; above, each power of two is split into 128 buckets, so a
 * reported percentile is within 0.8% of the true value. The whole range (0 .. 2^44, almost five
 * hours in nanoseconds) fits in a fixed array: recording is one index computation and one
 * increment, cheap enough to do for every message. No locks: the owner serialises access. The
 * load generator in bench/ uses the same code, so server-side and client-side figures are
 * computed the same way.
 */
#ifndef PARLEY_COMMON_HIST_H
#define PARLEY_COMMON_HIST_H

#include <stdint.h>

#define HIST_LINEAR 256u  /* values below this are exact */
#define HIST_SUB 128u     /* buckets per power of two above it */
#define HIST_MAX_EXP 44u  /* values at or above 2^44 fall in the last bucket */
#define HIST_N (HIST_LINEAR + (HIST_MAX_EXP - 8u) * HIST_SUB)

struct hist {
  uint64_t count;
  uint64_t sum;
  uint64_t min;
  uint64_t max;
  uint64_t buckets[HIST_N];
};

/* Empties `h` (caller's memory). */
void hist_init(struct hist *h);

/* Counts one value. */
void hist_record(struct hist *h, uint64_t v);

/* Adds every value counted in `src` to `dst` (both caller's). */
void hist_merge(struct hist *dst, const struct hist *src);

/* Returns the value at quantile q (0..1): the upper edge of the bucket holding it, capped at the
 * largest recorded value. Returns 0 when `h` is empty. */
uint64_t hist_quantile(const struct hist *h, double q);

/* The recent past: values go into `cur`; every `period` (same unit as `now` in
 * hist_window_record) `cur` becomes `prev` and a new `cur` starts, so prev + cur always covers
 * between one and two periods. `total_count`/`total_sum` count every value since init. */
struct hist_window {
  struct hist cur, prev;
  uint64_t started;    /* when `cur` began */
  uint64_t period;
  uint64_t total_count, total_sum;
};

/* Empties `w` (caller's memory); `now` is the current time, `period` the rotation interval. */
void hist_window_init(struct hist_window *w, uint64_t now, uint64_t period);

/* Rotates if a period passed since `cur` began, then counts v. */
void hist_window_record(struct hist_window *w, uint64_t now, uint64_t v);

/* Fills `out` (caller's) with the values of the last one to two periods as of `now`. */
void hist_window_recent(const struct hist_window *w, uint64_t now, struct hist *out);

#endif
