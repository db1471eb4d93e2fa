/* app_api.h - the bot HTTP API (issue 19): the WebSocket ops over plain HTTP with a bearer token,
 * and running an op on a user's behalf without a socket. */
#ifndef PARLEY_APP_APP_API_H
#define PARLEY_APP_APP_API_H

#include <stddef.h>
#include <stdint.h>

#include "app/clients.h"

struct http_request;

/* Answers `req` (borrowed until answered) on the HTTP connection of hc if its path is one of the
 * API's (/api/chats/...): returns 1, else 0 (not ours: hc untouched). */
int app__api_request(struct client *hc, struct http_request *req);

/* Called with the op's reply (JSON text, borrowed), or reply NULL if the op ended without one. */
typedef void (*app_api_done)(struct app *a, void *data, const char *reply, size_t len);

/* Runs the op `json` (borrowed) as user u (borrowed; authenticated by the caller) with the same
 * handlers as a WebSocket op, and calls done(a, data, reply) once. chat_ok (borrowed, may be
 * NULL): a chat whose membership the caller checked (typing needs it, see ops_live.c). Returns
 * 0, or an error when the op could not be run (done is then never called). */
int app__api_run(struct app *a, const struct store_user *u, const char *chat_ok, const char *json,
                 size_t len, app_api_done done, void *data);

#endif
