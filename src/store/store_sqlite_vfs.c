/* store_sqlite_vfs.c - a VFS over the default one that gathers the WAL's writes (issue 15).
 *
 * SQLite writes a transaction's WAL frames one by one, a pwrite() for the frame's 24-byte header
 * and one for its page, and then, at a commit, makes them visible to other connections through
 * the shared-memory index. perf of the store thread in the chat scenario put a quarter of its CPU
 * in those pwrite()s: each is a system call, with the file system's per-call work, for a few KB.
 *
 * This VFS is the default VFS with one file wrapped: the WAL (SQLITE_OPEN_WAL). Its writes are
 * copied into a buffer while each one continues the last in the file, and the buffer goes to
 * the default VFS's xWrite in one call:
 *   - right after the page of a commit frame (a frame header whose "database size after commit"
 *     is not zero), inside the xWrite that SQLite called for it. SQLite publishes a commit to
 *     other connections only after its frames are written, so a reader (the checkpointer, a
 *     backup) never sees a frame that is still here, and a failed write fails the commit;
 *   - before any write elsewhere in the file (SQLite rewrites a frame of the running
 *     transaction in place), and when the buffer is full;
 *   - before every other method of the file (read, sync, truncate, size, file controls, close),
 *     so each sees the file as SQLite wrote it.
 * What reaches the kernel and when, relative to every sync and every publication, is therefore
 * what SQLite would have written without it: crash safety is the default VFS's.
 *
 * Every other file (the database, its shared memory, temporary files) is the default VFS's own
 * object in the same memory, with its own methods: nothing else is wrapped.
 */
#include "store/store_sqlite_vfs.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#define SQ_VFS_NAME "parley"
/* Bytes gathered at most: 29 frames of 4 KiB pages. The unix VFS writes less than 128 KiB per
 * call (its seekAndWrite() keeps the low 17 bits of the count), so a flush must stay under that. */
#define SQ_VFS_BUF (120u << 10)
#define SQ_WAL_FRAME_HDR 24   /* a WAL frame header's size (the WAL header itself is 32) */

struct wal_file {
  sqlite3_file base;    /* pMethods = &wal_methods */
  sqlite3_file *real;   /* the default VFS's file, in the memory right after this struct */
  unsigned char *buf;   /* owned; allocated at the first write */
  size_t len;           /* bytes in buf */
  sqlite3_int64 off;    /* where buf[0] goes in the file */
  int commit_page_next; /* the last write was a commit frame's header */
};

/* The wrapped file's size, rounded so that the default VFS's file after it is aligned. */
#define SQ_WAL_FILE_SIZE ((sizeof(struct wal_file) + 15) & ~(size_t)15)

static sqlite3_vfs vfs;
static pthread_once_t vfs_once = PTHREAD_ONCE_INIT;
static int vfs_ok;
static _Atomic uint64_t kernel_writes, sqlite_writes;

static sqlite3_vfs *real_vfs(sqlite3_vfs *v) {
  return v->pAppData;
}

/* ---- the WAL file ---- */

static int wal_flush(struct wal_file *w) {
  int rc;
  if (w->len == 0)
    return SQLITE_OK;
  rc = w->real->pMethods->xWrite(w->real, w->buf, (int)w->len, w->off);
  atomic_fetch_add_explicit(&kernel_writes, 1, memory_order_relaxed);
  w->len = 0; /* on failure SQLite fails the transaction that wrote it */
  return rc;
}

static int wal_write(sqlite3_file *f, const void *data, int amt, sqlite3_int64 off) {
  struct wal_file *w = (struct wal_file *)f;
  int rc, commit_page = w->commit_page_next;

  atomic_fetch_add_explicit(&sqlite_writes, 1, memory_order_relaxed);
  /* A frame header: bytes 4-7 are the database's size in pages after a commit, 0 otherwise. */
  w->commit_page_next = amt == SQ_WAL_FRAME_HDR && (((const unsigned char *)data)[4] |
                                                    ((const unsigned char *)data)[5] |
                                                    ((const unsigned char *)data)[6] |
                                                    ((const unsigned char *)data)[7]) != 0;
  if (w->len > 0 && (off != w->off + (sqlite3_int64)w->len || w->len + (size_t)amt > SQ_VFS_BUF)) {
    rc = wal_flush(w);
    if (rc != SQLITE_OK)
      return rc;
  }
  if (w->buf == NULL && (size_t)amt < SQ_VFS_BUF)
    w->buf = malloc(SQ_VFS_BUF); /* without it every write goes straight through */
  if (w->buf == NULL || (size_t)amt >= SQ_VFS_BUF) {
    atomic_fetch_add_explicit(&kernel_writes, 1, memory_order_relaxed);
    return w->real->pMethods->xWrite(w->real, data, amt, off);
  }
  if (w->len == 0)
    w->off = off;
  memcpy(w->buf + w->len, data, (size_t)amt);
  w->len += (size_t)amt;
  return commit_page ? wal_flush(w) : SQLITE_OK;
}

static int wal_close(sqlite3_file *f) {
  struct wal_file *w = (struct wal_file *)f;
  int rc = wal_flush(w), rc2 = w->real->pMethods->xClose(w->real);
  free(w->buf);
  w->buf = NULL;
  return rc != SQLITE_OK ? rc : rc2;
}

static int wal_read(sqlite3_file *f, void *out, int amt, sqlite3_int64 off) {
  struct wal_file *w = (struct wal_file *)f;
  int rc = wal_flush(w);
  return rc != SQLITE_OK ? rc : w->real->pMethods->xRead(w->real, out, amt, off);
}

static int wal_truncate(sqlite3_file *f, sqlite3_int64 size) {
  struct wal_file *w = (struct wal_file *)f;
  int rc = wal_flush(w);
  return rc != SQLITE_OK ? rc : w->real->pMethods->xTruncate(w->real, size);
}

static int wal_sync(sqlite3_file *f, int flags) {
  struct wal_file *w = (struct wal_file *)f;
  int rc = wal_flush(w);
  return rc != SQLITE_OK ? rc : w->real->pMethods->xSync(w->real, flags);
}

static int wal_file_size(sqlite3_file *f, sqlite3_int64 *size) {
  struct wal_file *w = (struct wal_file *)f;
  int rc = wal_flush(w);
  return rc != SQLITE_OK ? rc : w->real->pMethods->xFileSize(w->real, size);
}

static int wal_file_control(sqlite3_file *f, int op, void *arg) {
  struct wal_file *w = (struct wal_file *)f;
  int rc = wal_flush(w);
  return rc != SQLITE_OK ? rc : w->real->pMethods->xFileControl(w->real, op, arg);
}

static int wal_lock(sqlite3_file *f, int level) {
  struct wal_file *w = (struct wal_file *)f;
  return w->real->pMethods->xLock(w->real, level);
}

static int wal_unlock(sqlite3_file *f, int level) {
  struct wal_file *w = (struct wal_file *)f;
  return w->real->pMethods->xUnlock(w->real, level);
}

static int wal_check_reserved(sqlite3_file *f, int *out) {
  struct wal_file *w = (struct wal_file *)f;
  return w->real->pMethods->xCheckReservedLock(w->real, out);
}

static int wal_sector_size(sqlite3_file *f) {
  struct wal_file *w = (struct wal_file *)f;
  return w->real->pMethods->xSectorSize(w->real);
}

static int wal_device_characteristics(sqlite3_file *f) {
  struct wal_file *w = (struct wal_file *)f;
  return w->real->pMethods->xDeviceCharacteristics(w->real);
}

/* Version 1: SQLite maps no WAL file into memory and keeps no shared memory on it. */
static const sqlite3_io_methods wal_methods = {
    .iVersion = 1,
    .xClose = wal_close,
    .xRead = wal_read,
    .xWrite = wal_write,
    .xTruncate = wal_truncate,
    .xSync = wal_sync,
    .xFileSize = wal_file_size,
    .xLock = wal_lock,
    .xUnlock = wal_unlock,
    .xCheckReservedLock = wal_check_reserved,
    .xFileControl = wal_file_control,
    .xSectorSize = wal_sector_size,
    .xDeviceCharacteristics = wal_device_characteristics,
};

/* ---- the VFS: xOpen wraps the WAL, everything else is the default VFS's ---- */

static int vfs_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags, int *out_flags) {
  sqlite3_vfs *real = real_vfs(v);
  struct wal_file *w = (struct wal_file *)f;
  int rc;

  if (!(flags & SQLITE_OPEN_WAL))
    return real->xOpen(real, name, f, flags, out_flags); /* the default VFS's object, in place */
  memset(w, 0, sizeof *w);
  w->real = (sqlite3_file *)((unsigned char *)f + SQ_WAL_FILE_SIZE);
  rc = real->xOpen(real, name, w->real, flags, out_flags);
  if (rc != SQLITE_OK) {
    if (w->real->pMethods) /* SQLite closes nothing whose pMethods is NULL */
      w->real->pMethods->xClose(w->real);
    w->base.pMethods = NULL;
    return rc;
  }
  w->base.pMethods = &wal_methods;
  return SQLITE_OK;
}

static int vfs_delete(sqlite3_vfs *v, const char *name, int sync_dir) {
  return real_vfs(v)->xDelete(real_vfs(v), name, sync_dir);
}

static int vfs_access(sqlite3_vfs *v, const char *name, int flags, int *out) {
  return real_vfs(v)->xAccess(real_vfs(v), name, flags, out);
}

static int vfs_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out) {
  return real_vfs(v)->xFullPathname(real_vfs(v), name, n, out);
}

static void *vfs_dlopen(sqlite3_vfs *v, const char *name) {
  return real_vfs(v)->xDlOpen(real_vfs(v), name);
}

static void vfs_dlerror(sqlite3_vfs *v, int n, char *out) {
  real_vfs(v)->xDlError(real_vfs(v), n, out);
}

static void (*vfs_dlsym(sqlite3_vfs *v, void *lib, const char *sym))(void) {
  return real_vfs(v)->xDlSym(real_vfs(v), lib, sym);
}

static void vfs_dlclose(sqlite3_vfs *v, void *lib) {
  real_vfs(v)->xDlClose(real_vfs(v), lib);
}

static int vfs_randomness(sqlite3_vfs *v, int n, char *out) {
  return real_vfs(v)->xRandomness(real_vfs(v), n, out);
}

static int vfs_sleep(sqlite3_vfs *v, int us) {
  return real_vfs(v)->xSleep(real_vfs(v), us);
}

static int vfs_current_time(sqlite3_vfs *v, double *out) {
  return real_vfs(v)->xCurrentTime(real_vfs(v), out);
}

static int vfs_last_error(sqlite3_vfs *v, int n, char *out) {
  return real_vfs(v)->xGetLastError(real_vfs(v), n, out);
}

static int vfs_current_time64(sqlite3_vfs *v, sqlite3_int64 *out) {
  return real_vfs(v)->xCurrentTimeInt64(real_vfs(v), out);
}

static int vfs_set_syscall(sqlite3_vfs *v, const char *name, sqlite3_syscall_ptr p) {
  return real_vfs(v)->xSetSystemCall(real_vfs(v), name, p);
}

static sqlite3_syscall_ptr vfs_get_syscall(sqlite3_vfs *v, const char *name) {
  return real_vfs(v)->xGetSystemCall(real_vfs(v), name);
}

static const char *vfs_next_syscall(sqlite3_vfs *v, const char *name) {
  return real_vfs(v)->xNextSystemCall(real_vfs(v), name);
}

static void vfs_register(void) {
  sqlite3_vfs *real = sqlite3_vfs_find(NULL);
  if (real == NULL)
    return;
  vfs = (sqlite3_vfs){
      .iVersion = real->iVersion < 3 ? real->iVersion : 3,
      .szOsFile = (int)SQ_WAL_FILE_SIZE + real->szOsFile,
      .mxPathname = real->mxPathname,
      .zName = SQ_VFS_NAME,
      .pAppData = real,
      .xOpen = vfs_open,
      .xDelete = vfs_delete,
      .xAccess = vfs_access,
      .xFullPathname = vfs_full_pathname,
      .xDlOpen = vfs_dlopen,
      .xDlError = vfs_dlerror,
      .xDlSym = vfs_dlsym,
      .xDlClose = vfs_dlclose,
      .xRandomness = vfs_randomness,
      .xSleep = vfs_sleep,
      .xCurrentTime = vfs_current_time,
      .xGetLastError = vfs_last_error,
  };
  if (vfs.iVersion >= 2)
    vfs.xCurrentTimeInt64 = vfs_current_time64;
  if (vfs.iVersion >= 3) {
    vfs.xSetSystemCall = vfs_set_syscall;
    vfs.xGetSystemCall = vfs_get_syscall;
    vfs.xNextSystemCall = vfs_next_syscall;
  }
  vfs_ok = sqlite3_vfs_register(&vfs, 0) == SQLITE_OK;
}

const char *store__sqlite_vfs(void) {
  pthread_once(&vfs_once, vfs_register);
  return vfs_ok ? SQ_VFS_NAME : NULL;
}

void store__sqlite_vfs_counts(uint64_t *kernel, uint64_t *sqlite) {
  *kernel = atomic_load_explicit(&kernel_writes, memory_order_relaxed);
  *sqlite = atomic_load_explicit(&sqlite_writes, memory_order_relaxed);
}
