/* redis_uv.h - hiredis' asynchronous API on a libuv loop.
 *
 * hiredis 0.14 (Debian 12's) ships a libuv adapter that drops a poll error: libuv reports a
 * reset connection, or a refused connect, as an error status and stops the poll, the adapter
 * returns without telling hiredis, and the context then waits forever with its
 * REDIS_CONNECTED flag still set. hiredis 1.0 fixed it by handling the events it was waiting
 * for, so the read or write meets the error and hiredis disconnects. This is that adapter, with
 * that fix.
 */
#ifndef PARLEY_BUS_REDIS_UV_H
#define PARLEY_BUS_REDIS_UV_H

#include <hiredis/async.h>
#include <uv.h>

/* Attaches `ac` to `loop`; from then on hiredis owns the glue and frees it with the context.
 * Returns REDIS_OK, or REDIS_ERR (already attached, or out of memory: `ac` stays the caller's). */
int redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop);

#endif
