/* clock.h - the clock that app/ injects into core/ and store requests.
 *
 * core/ never reads a clock itself: it takes `now` as an argument, so tests drive it with a fake
 * clock. These are the real ones.
 */
#ifndef PARLEY_COMMON_CLOCK_H
#define PARLEY_COMMON_CLOCK_H

#include <stdint.h>

/* Wall-clock time in Unix milliseconds (what the protocol calls a time). */
int64_t clock_wall_ms(void);

/* Monotonic time in nanoseconds, for latency measurement and timers. */
uint64_t clock_mono_ns(void);

#endif
