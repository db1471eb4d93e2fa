/* presence_batch.h - presence events to the users of this node, coalesced per recipient so that a
 * connect storm costs O(N) events (issue 15: 1,000 users connecting into one chat sent one event
 * per member per arrival, ~500k frames). A recipient gets a change at once when its window is
 * quiet; changes arriving within its window (~1 ms per member of the change's audience, at most
 * 2 s: churn.c's window) wait and leave as one `presence` event: the last change in the event's
 * own fields, and every change of the batch (the last of each user, in order) in `users`.
 */
#ifndef PARLEY_APP_PRESENCE_BATCH_H
#define PARLEY_APP_PRESENCE_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "app/clients.h"

/* A presence event (json: the encoded `presence` event, borrowed) about user_id for the users in
 * ids (borrowed; duplicates and users without sockets here are skipped). `audience` sizes the
 * recipients' window: how many users the change goes to in all. */
void app__presence_batch_deliver(struct app *a, int64_t user_id, const int64_t *ids, size_t n,
                                 const char *json, size_t len, size_t audience);
/* Sends the batches whose window is over (net's on_before_flush). */
void app__presence_batch_flush(struct app *a);
/* au is being freed: its batch is dropped (it has no socket left to send it to). */
void app__presence_batch_forget(struct app *a, struct app_user *au);

#endif
