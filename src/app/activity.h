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

/* Message m (borrowed) of chat `slug` was committed: reads the participants' read markers (one
 * store request for all of them) and sends each their chat.activity, on every node. */
void app__activity_msg(struct app *a, const char *slug, const struct store_msg *m);
/* user_id's read marker of chat `slug` moved: their sockets get the new counts. */
void app__activity_read(struct app *a, int64_t user_id, const char *slug);
/* Sends the event (fields' reference stolen) to every socket of cl's user but cl, on every
 * node. */
void app__notify_others(struct client *cl, const char *ev, json_t *fields);

#endif
