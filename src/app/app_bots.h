/* app_bots.h - bot accounts over HTTP (/api/bots) (issue 19). */
#ifndef PARLEY_APP_APP_BOTS_H
#define PARLEY_APP_APP_BOTS_H

#include "app/clients.h"

struct http_request;

/* Answers `req` (borrowed until answered) on hc's connection if its path is /api/bots or below:
 * returns 1, else 0. */
int app__bots_request(struct client *hc, struct http_request *req);

#endif
