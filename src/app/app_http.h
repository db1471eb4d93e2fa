/* app_http.h - the REST endpoints, the WebSocket upgrade and the static web app. */
#ifndef PARLEY_APP_APP_HTTP_H
#define PARLEY_APP_APP_HTTP_H

#include <stdint.h>

#include "app/state.h"

/* net's on_request: ud is the struct app, req borrowed until the response is sent. */
void app__on_request(void *ud, struct net_conn *c, struct http_request *req);
/* Drops login throttle buckets that carry no information any more (now: Unix ms). */
void app__throttles_sweep(struct app *a, int64_t now);
/* Frees every throttle bucket (shutdown). */
void app__throttles_free(struct app *a);

struct client;
/* app_avatar.c (issue 18): POST and DELETE /api/avatar, and GET /avatars/<name> (name borrowed:
 * the path after the prefix). They answer the request themselves. */
void app__avatar_request(struct client *cl, struct http_request *req);
void app__avatar_serve(struct client *cl, struct http_request *req, const char *name);

#endif
