/* hist.c - log-bucket histogram; see hist.h for the bucket layout. */
#include "common/hist.h"

#include <string.h>

static unsigned hist_index(uint64_t v) {
  if (v < HIST_LINEAR)
    return (unsigned)v;
  unsigned e = 63u - (unsigned)__builtin_clzll(v); /* 2^e <= v < 2^(e+1), e >= 8 */
  if (e >= HIST_MAX_EXP)
    return HIST_N - 1;
  unsigned shift = e - 7u; /* keeps the top 8 bits: 128..255 */
  return HIST_LINEAR + (e - 8u) * HIST_SUB + (unsigned)((v >> shift) - HIST_SUB);
}

/* The largest value that lands in bucket `i`. */
static uint64_t hist_upper(unsigned i) {
  if (i < HIST_LINEAR)
    return i;
  unsigned o = (i - HIST_LINEAR) / HIST_SUB;
  uint64_t m = (i - HIST_LINEAR) % HIST_SUB + HIST_SUB;
  unsigned shift = o + 1u;
  return ((m + 1u) << shift) - 1u;
}

void hist_init(struct hist *h) {
  memset(h, 0, sizeof(*h));
  h->min = UINT64_MAX;
}

void hist_record(struct hist *h, uint64_t v) {
  h->buckets[hist_index(v)]++;
  h->count++;
  h->sum += v;
  if (v < h->min)
    h->min = v;
  if (v > h->max)
    h->max = v;
}

void hist_merge(struct hist *dst, const struct hist *src) {
  if (src->count == 0)
    return;
  for (unsigned i = 0; i < HIST_N; i++)
    dst->buckets[i] += src->buckets[i];
  dst->count += src->count;
  dst->sum += src->sum;
  if (src->min < dst->min)
    dst->min = src->min;
  if (src->max > dst->max)
    dst->max = src->max;
}

uint64_t hist_quantile(const struct hist *h, double q) {
  if (h->count == 0)
    return 0;
  if (q >= 1.0)
    return h->max;
  uint64_t rank = (uint64_t)(q * (double)h->count);
  if ((double)rank < q * (double)h->count)
    rank++; /* ceil: the smallest value with at least q of the samples at or below it */
  if (rank == 0)
    rank = 1;
  uint64_t seen = 0;
  for (unsigned i = 0; i < HIST_N; i++) {
    seen += h->buckets[i];
    if (seen >= rank) {
      if (i == HIST_N - 1)
        return h->max; /* the overflow bucket has no upper edge */
      uint64_t v = hist_upper(i);
      return v > h->max ? h->max : v;
    }
  }
  return h->max;
}

void hist_window_init(struct hist_window *w, uint64_t now, uint64_t period) {
  hist_init(&w->cur);
  hist_init(&w->prev);
  w->started = now;
  w->period = period;
  w->total_count = w->total_sum = 0;
}

static void hist_window_rotate(struct hist_window *w, uint64_t now) {
  if (now - w->started < w->period)
    return;
  if (now - w->started >= 2 * w->period)
    hist_init(&w->prev); /* idle for a whole period: what `cur` holds is too old as well */
  else
    w->prev = w->cur;
  hist_init(&w->cur);
  w->started = now;
}

void hist_window_record(struct hist_window *w, uint64_t now, uint64_t v) {
  hist_window_rotate(w, now);
  hist_record(&w->cur, v);
  w->total_count++;
  w->total_sum += v;
}

void hist_window_recent(const struct hist_window *w, uint64_t now, struct hist *out) {
  hist_init(out);
  if (now - w->started >= 2 * w->period)
    return; /* nothing recorded for two periods */
  if (now - w->started < w->period)
    hist_merge(out, &w->prev);
  hist_merge(out, &w->cur);
}
