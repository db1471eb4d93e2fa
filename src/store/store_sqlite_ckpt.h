/* store_sqlite_ckpt.h - the SQLite backend's checkpointer (private to store_sqlite*.c).
 *
 * Keeps the WAL of a database bounded: a thread of its own copies committed frames back into the
 * database file, and the writer's connection, through its WAL hook, wakes it early or, past the
 * hard bound, checkpoints itself. See store_sqlite_ckpt.c for why it is built this way.
 */
#ifndef PARLEY_STORE_SQLITE_CKPT_H
#define PARLEY_STORE_SQLITE_CKPT_H

#include <stdint.h>

#include <sqlite3.h>

#include "store/store.h"

#define SQ_WAL_MAX_DEFAULT (UINT64_C(64) << 20) /* bytes; PARLEY_WAL_MAX */

struct sq_ckpt;

/* Starts the checkpointer of the database at `path` (borrowed, copied) whose writer connection
 * is `writer` (borrowed; it must outlive the checkpointer, its WAL hook becomes ours, and its
 * journal_size_limit is set). `writer_busy_ms` is the writer's busy timeout, restored after the
 * writer checkpointed. Call on the writer's thread. Returns 0 and sets *out (owned by the
 * caller, freed by store__sqlite_ckpt_stop()), or PARLEY_EUNAVAILABLE. */
int store__sqlite_ckpt_start(struct sq_ckpt **out, sqlite3 *writer, int writer_busy_ms,
                             const char *path);

/* Stops the thread and frees `k` (NULL is fine). Call before closing the writer. */
void store__sqlite_ckpt_stop(struct sq_ckpt *k);

/* The writer's transaction begins / ended (store thread; NULL is fine): a RESTART of the
 * checkpointer runs only between the two, and the writer waits for one that is running. Leave
 * may be called when no transaction began. */
void store__sqlite_ckpt_writer_enter(struct sq_ckpt *k);
void store__sqlite_ckpt_writer_leave(struct sq_ckpt *k);

/* Sets the hard bound on the WAL, in bytes (any thread). The checkpointer restarts the WAL from
 * a quarter of it on; the writer checkpoints itself past half of it, so that even a large batch
 * leaves the file under the bound. */
void store__sqlite_ckpt_set_wal_max(struct sq_ckpt *k, uint64_t bytes);

/* Fills the wal_* and checkpoints_* fields of `out` (any thread). */
void store__sqlite_ckpt_stats(struct sq_ckpt *k, struct store_stats *out);

#endif
