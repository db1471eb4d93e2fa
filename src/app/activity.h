/* activity.h - the live chat list (issue 18): the per-user `chat.activity` event that tells every
 * participant of a chat, subscribed to it or not, what its row in their chat list shows now
 * (newest message, unread and mention counts), after each new message and after a reader's
 * marker moved; and events for one user's other sockets.
 */
#ifndef PARLEY_APP_ACTIVITY_H
#define PARLEY_APP_ACTIVITY_H

#include <jansson.h>
#include <stdint.h>

#include "app/clients.h"

/* Message m of chat c (both borrowed) was committed: reads the participants' read markers (one
 * store request for all of them) and sends each their chat.activity, on every node, but not to
 * the sockets here subscribed to the chat (they count on from the msg event: docs/protocol.md);
 * nothing at all when every participant has the chat open on every socket, on a single node.
 * A stream's start goes to every socket. */
void app__activity_msg(struct app *a, const struct store_chat *c, const struct store_msg *m);
/* The same with m shown as the newest message while the chat's newest entry is `seq`, at
 * `last_activity` (issue 19: a stream that ended is still the list's message, its end entry the
 * newest seq). */
void app__activity_msg_at(struct app *a, const char *slug, const struct store_msg *m, int64_t seq,
                          int64_t last_activity);
/* user_id's read marker of chat `slug` moved: their sockets get the new counts. */
void app__activity_read(struct app *a, int64_t user_id, const char *slug);
/* Sends the event (fields' reference stolen) to every socket of cl's user but cl, on every
 * node. */
void app__notify_others(struct client *cl, const char *ev, json_t *fields);

#endif
