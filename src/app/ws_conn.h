/* ws_conn.h - a WebSocket's text messages: held while its auth is in flight, decoded, limited,
 * authorized, and handed to the op's handler (ops.h) through one table. */
#ifndef PARLEY_APP_WS_CONN_H
#define PARLEY_APP_WS_CONN_H

#include <stddef.h>

#include "app/clients.h"

/* net's on_ws_text: ud is the struct app, data (borrowed) one whole message. */
void app__on_ws_text(void *ud, struct net_conn *c, const char *data, size_t len);
/* Runs a decoded op (borrowed) of an authenticated client through the op table, as a socket's
 * op would run once decoded, limited and authorized (app_api.c runs HTTP requests so). The auth
 * op is refused: the client is authenticated already. */
struct client;
struct proto_req;
void app__op_dispatch(struct client *cl, const struct proto_req *req);
/* Frees what a closing socket sent while its auth was in flight. */
void app__client_drop_held(struct client *cl);

#endif
