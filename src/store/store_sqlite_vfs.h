/* store_sqlite_vfs.h - the SQLite backend's VFS: the default one, with a commit's WAL frames
 * written in one system call (private to store_sqlite*.c).
 *
 * SQLite writes every WAL frame with two pwrite()s, its 24-byte header and its page: at 4,000
 * sends/s that was ~44,000 system calls a second on the store thread, a quarter of its CPU
 * (issue 15). Through this VFS the WAL's writes are gathered in memory while they follow each
 * other in the file and reach the kernel in one write, at the latest when the commit frame's page
 * has been written: before xWrite returns for it, so before SQLite publishes the commit to other
 * connections, and with any error returned to the commit. Every other file, and every other
 * method of the WAL, is the default VFS's. See store_sqlite_vfs.c.
 */
#ifndef PARLEY_STORE_SQLITE_VFS_H
#define PARLEY_STORE_SQLITE_VFS_H

#include <stdint.h>

/* The VFS's name for sqlite3_open_v2(), registered on first use (any thread; not the default
 * VFS). NULL if it could not be registered (no default VFS, no memory): open with the default
 * then. The string is static. */
const char *store__sqlite_vfs(void);

/* The WAL writes that reached the kernel through this VFS, and the writes SQLite asked for, since
 * the process started (any thread): their ratio is what the gathering saves. */
void store__sqlite_vfs_counts(uint64_t *kernel_writes, uint64_t *sqlite_writes);

#endif
