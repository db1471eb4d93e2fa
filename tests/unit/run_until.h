/* run_until.h - for unit tests that drive a private libuv loop: run it until a condition holds,
 * with a deadline instead of sleeps. The fixture `f` has `uv_loop_t loop`, `uv_timer_t deadline`
 * (initialised on loop, its data pointing at `timed_out`) and `int timed_out`; the file defines
 * DEADLINE_MS. */
#ifndef PARLEY_TESTS_RUN_UNTIL_H
#define PARLEY_TESTS_RUN_UNTIL_H

#include <uv.h>

static void run_until_deadline(uv_timer_t *t) { *(int *)t->data = 1; }

/* Runs the loop until `cond` (re-read after every turn) holds; fails the test at the deadline. */
#define RUN_UNTIL(f, cond, what)                                                                   \
  do {                                                                                             \
    (f)->timed_out = 0;                                                                            \
    uv_timer_start(&(f)->deadline, run_until_deadline, DEADLINE_MS, 0);                            \
    while (!(cond) && !(f)->timed_out)                                                             \
      uv_run(&(f)->loop, UV_RUN_ONCE);                                                             \
    uv_timer_stop(&(f)->deadline);                                                                 \
    if (!(cond))                                                                                   \
      fail_msg("timed out waiting for %s", what);                                                  \
  } while (0)

#endif
