/* metrics.h - the text of the /metrics endpoint. */
#ifndef PARLEY_APP_METRICS_H
#define PARLEY_APP_METRICS_H

#include "app/state.h"
#include "common/buf.h"

/* Fills *out (caller's; initialised here, buf_dispose it) with every metric of the server a. */
void app__metrics_text(struct app *a, struct buf *out);

#endif
