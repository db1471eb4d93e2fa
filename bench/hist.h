/* hist.h - a fixed-size log-bucket latency histogram (HdrHistogram-like).
 *
 * Values below 256 are counted exactly; above, each power of two is split into 128 buckets, so a
 * reported percentile is within 0.8% of the true value. The whole range (0 .. 2^44 ns, almost
 * five hours) fits in a fixed array: recording is one index computation and one increment, cheap
 * enough to do for every delivery of a broadcast at hundreds of thousands per second.
 */
#ifndef BENCH_HIST_H
#define BENCH_HIST_H

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

/* Returns the value at quantile q (0..1): the upper edge of the bucket holding it, capped at the
 * largest recorded value. Returns 0 when `h` is empty. */
uint64_t hist_quantile(const struct hist *h, double q);

#endif
