/* bus_delay.h - a bus backend for tests that wraps another and holds every publication back for
 * a fixed time (in order), so that the tests can make other nodes' events overtake this node's
 * (PARLEY_TEST_BUS_DELAY_MS). Everything but publish goes straight to the wrapped bus.
 */
#ifndef PARLEY_BUS_BUS_DELAY_H
#define PARLEY_BUS_BUS_DELAY_H

#include <stdint.h>
#include <uv.h>

#include "bus/bus.h"

/* Replaces *b (an open bus, whose ownership is taken) with a wrapper on loop that delays its
 * publications by delay_ms; bus_close on the wrapper closes both. Returns 0, or
 * PARLEY_EINTERNAL (no memory: *b is left as it was). */
int bus_delay_wrap(struct bus **b, uv_loop_t *loop, uint64_t delay_ms);

#endif
