/* fake_server.h - a loop-less stand-in for src/net/server.c, shared by the net/ fuzz targets.
 *
 * The fuzz targets link the real src/net/http.c, ws.c and outq.c and replace only server.c, the
 * file that owns sockets and libuv handles. Bytes that the kernel would hand to net__on_read
 * are given to fake_conn_feed instead, and what the server would write is collected in the
 * connection's queue, then dropped. Everything else (parsing, pausing, pipelining, upgrade,
 * wslay, close handshakes, caps) is the production code with the production defaults of
 * app_config_load.
 */
#ifndef PARLEY_TESTS_FUZZ_FAKE_SERVER_H
#define PARLEY_TESTS_FUZZ_FAKE_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "net/net_internal.h"

/* The one server of the process, configured like the default app_config_load. */
struct net_server *fake_server_get(const struct net_callbacks *cb);

/* A new HTTP connection on the fake server. */
struct net_conn *fake_conn_new(struct net_server *s);

/* Delivers one read of `len` bytes (borrowed), as net__on_read does. Returns 0, or -1 without
 * delivering anything while c is not reading (the bytes stay "in the kernel"). */
int fake_conn_feed(struct net_conn *c, const uint8_t *data, size_t len);

/* Pretends the queued output was written (as net__flush, including the resume of an HTTP
 * connection that stopped on unwritten output); closes c if it was to close after the flush. */
void fake_conn_flush(struct net_conn *c);

/* Closes c if still open and frees it (what uv_close's callback does). */
void fake_conn_free(struct net_conn *c);

/* Called once per fake loop turn, after the flush: where a target completes work it deferred
 * (an answer computed on the thread pool in production). Returns nonzero if it did something
 * (so the loop goes on turning). NULL allowed. */
typedef int (*fake_turn_cb)(struct net_conn *c);

/* One turn of the fake loop after the reads: the resumes (server.c's idle handle), then the
 * flush (its prepare handle). */
void fake_loop_turn(struct net_conn *c);

/* Feeds `data` to c in reads whose size comes from the first byte of the input, so that split
 * frames, split headers and split UTF-8 sequences are exercised; between reads the loop turns
 * (resumes, flush, the target's deferred work). After the input it keeps turning while anything
 * is left to do. Stops when c closes, or stays paused with nothing left that would resume it. */
void fake_conn_feed_split(struct net_conn *c, const uint8_t *data, size_t len, fake_turn_cb turn);

#endif
