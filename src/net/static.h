/* static.h - serving the built web app from a folder. */
#ifndef PARLEY_NET_STATIC_H
#define PARLEY_NET_STATIC_H

#include "net/net.h"

/* Answers the current request of c with the file at `path` under `root` (both borrowed).
 * Paths with "..", backslashes, NUL or percent-escapes of them are refused (404); a path without
 * a dot in its last segment that names no file gets index.html, so client-side routes load.
 * `head` sends the headers only. */
void static_serve(struct net_conn *c, const char *root, const char *path, int head);

#endif
