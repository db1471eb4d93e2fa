/* migrations.h - the versioned schema of Parley, shared inside the store module only.
 *
 * The schema lives in the repository as one ordered array of migrations, each with its text for
 * SQLite and for PostgreSQL. A database records what it has applied in its `schema_version`
 * table; opening it applies the missing migrations, all in one transaction, so a crash mid-upgrade
 * leaves the previous schema intact. A migration, once released, is never edited: a later change
 * is a new entry with the next version, written in both dialects.
 */
#ifndef PARLEY_STORE_MIGRATIONS_H
#define PARLEY_STORE_MIGRATIONS_H

#include <stddef.h>

#include <libpq-fe.h>
#include <sqlite3.h>

struct store__migration {
  int version;             /* 1, 2, 3 ... strictly increasing, no gaps */
  const char *description; /* one line, recorded in schema_version */
  const char *sqlite;      /* SQLite statements; run inside the upgrade transaction */
  const char *postgres;    /* the same change for PostgreSQL */
};

/* The migrations, oldest first. Static storage. */
extern const struct store__migration store__migrations[];
extern const size_t store__migrations_count;

/* Brings the SQLite database `db` (borrowed; no transaction may be open) up to the newest
 * version: creates schema_version if needed and applies every missing migration in one IMMEDIATE
 * transaction stamped with `now_ms`. Returns 0, PARLEY_EUNAVAILABLE if the file cannot be
 * written (locked, read-only, disk full), or PARLEY_EINTERNAL if the database is newer than this
 * binary or a migration fails. On failure nothing is applied. On success sets *version (may be
 * NULL) to the schema version the database is now at. */
int store__sqlite_migrate(sqlite3 *db, long long now_ms, int *version);

/* The same for PostgreSQL on `conn` (borrowed, connected, idle), in the schema its search_path
 * names. The transaction first takes an advisory lock, so nodes starting together against one
 * fresh database apply each migration once. Returns 0, PARLEY_EUNAVAILABLE (connection lost,
 * server refusing work) or PARLEY_EINTERNAL, as above. */
int store__pg_migrate(PGconn *conn, long long now_ms, int *version);

#endif
