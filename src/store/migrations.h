/* migrations.h - the versioned SQLite schema of Parley, shared inside the store module only.
 *
 * The schema lives in the repository as an ordered array of migrations. A database records what it
 * has applied in its `schema_version` table; opening it applies the missing migrations, all in one
 * transaction, so a crash mid-upgrade leaves the previous schema intact. A migration, once
 * released, is never edited: a later change is a new entry with the next version.
 *
 * PostgreSQL will get its own array in the same shape (its DDL differs), not a translation of this
 * one.
 */
#ifndef PARLEY_STORE_MIGRATIONS_H
#define PARLEY_STORE_MIGRATIONS_H

#include <stddef.h>

#include <sqlite3.h>

struct store__migration {
  int version;             /* 1, 2, 3 ... strictly increasing, no gaps */
  const char *description; /* one line, recorded in schema_version */
  const char *sql;         /* one or more statements; run inside the upgrade transaction */
};

/* The SQLite migrations, oldest first. Static storage. */
extern const struct store__migration store__sqlite_migrations[];
extern const size_t store__sqlite_migrations_count;

/* Brings the database `db` (borrowed; no transaction may be open) up to the newest version:
 * creates schema_version if needed and applies every missing migration in one IMMEDIATE
 * transaction stamped with `now_ms`. Returns 0, PARLEY_EUNAVAILABLE if the file cannot be
 * written (locked, read-only, disk full), or PARLEY_EINTERNAL if the database is newer than this
 * binary or a migration fails. On failure nothing is applied. On success sets *version (may be
 * NULL) to the schema version the database is now at. */
int store__sqlite_migrate(sqlite3 *db, long long now_ms, int *version);

#endif
