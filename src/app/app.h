/* app.h - the server: wires net (connections), proto (wire format), core (rules), store
 * (durability), bus (other nodes) and auth together. This is the whole of src/app/ that main.c
 * sees; the layers inside are drawn in docs/architecture.md.
 *
 * All of it runs on the loop thread. Store requests carry a reference to the client that made
 * them, so a client that disconnects while its request is in flight is freed only after the
 * request's callback ran (and found it gone).
 */
#ifndef PARLEY_APP_APP_H
#define PARLEY_APP_APP_H

#include <uv.h>

#include "app/config.h"

struct app;

/* Opens the store and the bus, binds the listener and starts serving on loop (borrowed for the
 * server's life); cfg is copied. Returns 0 with *out set (freed by app_free once uv_run
 * returned), or a PARLEY_E* code. */
int app_start(struct app **out, uv_loop_t *loop, const struct app_config *cfg);

/* The port the server listens on (the one asked for, or the one the kernel chose for 0). */
int app_port(const struct app *a);

/* Graceful shutdown: stop accepting, close WebSockets with 1001, let the store finish its queue,
 * then release everything so uv_run returns. */
void app_shutdown(struct app *a);

/* Frees what app_start allocated, after uv_run returned (NULL allowed). */
void app_free(struct app *a);

#endif
