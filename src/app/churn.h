/* churn.h - membership churn events of big chats, throttled in proportion to their size:
 * `chat.active` (rooms.c) and `participant.joined` (batched here) of one chat go out at most once
 * per window of ~1 ms per recipient (at most 2 s), the first one after a quiet spell at once. A
 * burst of N joins into one chat then costs O(N) frames in total instead of one frame per member
 * per join (issue 15: 300 users joining one chat got 157 frames each).
 */
#ifndef PARLEY_APP_CHURN_H
#define PARLEY_APP_CHURN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "app/state.h"

/* Loop ms between two churn events of a chat with `recipients` sockets or members. */
uint64_t app__churn_window(size_t recipients);
/* Makes the loop wake at loop time `due` (so on_before_flush sends what waited until then). */
void app__churn_wake(struct app *a, uint64_t due);
/* Announces a join of chat `slug`: joiner ({user, role, presence}; the reference is stolen),
 * participantCount after it, and the members to tell (ids, borrowed): at once when the chat's
 * window allows, else batched with the other joins of the window. */
void app__churn_join(struct app *a, const char *slug, json_t *joiner, json_int_t count,
                     const int64_t *ids, size_t n);
/* Sends the batches whose window is over (net's on_before_flush); forgets idle ones. */
void app__churn_flush(struct app *a);
/* Frees every batch and closes the timer (shutdown). */
void app__churn_dispose(struct app *a);

#endif
