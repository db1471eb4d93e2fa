/* bot_hooks.h - the webhook deliveries a new message triggers (issue 19). */
#ifndef PARLEY_APP_BOT_HOOKS_H
#define PARLEY_APP_BOT_HOOKS_H

#include "app/clients.h"

/* A text message was stored and fanned out (chat and m borrowed): queues the webhook deliveries
 * it triggers (mentioned bots, the bot of a DM; never the author itself). */
void app__bots_msg_sent(struct app *a, const struct store_chat *chat, const struct store_msg *m);

#endif
