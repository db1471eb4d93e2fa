/* store_sqlite_ckpt.c - the checkpointer of the SQLite backend: a WAL bounded under any load.
 *
 * WAL frames are copied back into the database file by a thread of its own, on a connection of
 * its own, so that the fsyncs of a checkpoint never stall a commit. Left to itself SQLite
 * checkpoints inside the commit that crosses 1000 pages: on this machine that was three
 * fdatasyncs every second or so on the store thread, and a 16 ms p99 for sends. So the writer
 * runs with wal_autocheckpoint=0 and this thread does a PASSIVE checkpoint every
 * SQ_CHECKPOINT_MS.
 *
 * PASSIVE checkpoints alone never shrink the WAL under sustained writes: SQLite rewinds it only
 * when a writer starts while every frame is already copied back, and with a commit every few
 * hundred microseconds that moment never comes (measured: a 300 MB WAL after 8 s at 4,000
 * sends/s). So past half of the bound (PARLEY_WAL_MAX, 64 MiB by default) the thread asks
 * for a RESTART. It does so between two of the writer's transactions, which wait for it
 * (store__sqlite_ckpt_writer_enter() in sq_begin): left to SQLite's busy handlers the two polled
 * each other, the writer always won, and the WAL passed its bound with every RESTART reported
 * done (a writer already waiting with a snapshot does not start the WAL over). The RESTART has
 * little left to copy after its PASSIVE pass, so the writer waits briefly; its next commit then
 * writes the WAL from the start. The file is cut back (journal_size_limit) only past three
 * quarters of the bound, where the writer's own RESTART begins: a WAL that grew while a backup held
 * a snapshot does not keep its size, and the usual cycle overwrites the file in place. (Cutting it
 * to 16 MiB after every RESTART cost the writer a 6 ms ftruncate five times a second at 2,000
 * sends/s, and made every later fdatasync of the WAL commit a new size.) Before a RESTART the
 * thread catches up with PASSIVE passes, so that the RESTART, which the writer waits for, has only
 * a few frames to copy, and fdatasyncs the WAL and the database itself, so that the RESTART's own
 * syncs have only those few frames to flush (a PASSIVE syncs the database only when it reaches the
 * WAL's end, which under sustained writes it does not); that sync grows with the database, so what
 * came during it is copied and synced too, until the tail is a few dozen frames. The writer's WAL
 * hook, run after each commit with the WAL's frame count, wakes the thread at half the bound
 * instead of letting it sleep out its period; and should the thread still fall behind (a slow
 * fsync, a starved thread), the writer checkpoints the WAL itself right after the commit that
 * passes three quarters of the bound, so one more batch cannot carry the file past the bound.
 * That path costs that batch's latency and runs only under overload; it is counted (wal_forced).
 *
 * A connection that has never read the database has no WAL open, and sqlite3_wal_checkpoint_v2
 * on it returns SQLITE_OK with log = -1 and does nothing (SQLite 3.40). The thread therefore
 * reads once before its first checkpoint, and again whenever a checkpoint reports no WAL; a
 * checkpoint only counts as done when it saw one.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "store/store_sqlite_ckpt.h"

#define SQ_CHECKPOINT_MS 250
/* Before a RESTART holds the writer off, PASSIVE passes (at most this many) copy back what the
 * writer committed during the pass before, until a pass found at most this many new frames. */
#define SQ_CATCH_UP_PASSES 8
#define SQ_RESTART_TAIL_FRAMES 256
/* Then sync-and-copy rounds (at most this many) until a pass finds at most this many frames: what
 * the RESTART copies and syncs while the writer waits. */
#define SQ_PRESYNC_ROUNDS 2
#define SQ_HOLD_TAIL_FRAMES 64
/* Where the WAL (PARLEY_WAL_MAX = max bytes) gets a RESTART from this thread, one the writer runs
 * itself (this thread fell behind), and the size the file is cut back to after a RESTART. Every
 * RESTART holds commits off for its last copy and fdatasyncs (about 1 ms on average with the
 * sync rounds above, 4-6 ms before them), so the fewer the better: at half the bound there are
 * half as many as at a quarter (issue 15: 587 -> 312 in two minutes at 2,000 sends/s). A batch
 * is at most 256 requests, a few MB of WAL, so the writer's own RESTART at three quarters still
 * keeps the file under the bound. */
#define SQ_RESTART_AT(max) ((max) / 2)
#define SQ_FORCE_AT(max) ((max) / 4 * 3)
#define SQ_KEEP_AT(max) ((max) / 4 * 3)
#define SQ_CKPT_BUSY_MS 100 /* how long a RESTART waits for the writer or a reader */
/* The database file grows by this much at a time (SQLITE_FCNTL_CHUNK_SIZE on the checkpointer's
 * connection, the one that writes it): a checkpoint that appends pages then rarely changes the
 * file's size, and its fdatasync has no size to commit to the file system's journal. */
#define SQ_DB_CHUNK_BYTES (4 << 20)

struct sq_ckpt {
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  int stop;                 /* under lock */
  char *path;               /* what the store opened (a path or an SQLite URI) */
  char *wal_path;           /* the WAL file, for its size */
  sqlite3 *writer;          /* borrowed: the store thread's connection, used in its WAL hook */
  int writer_busy_ms;       /* its busy timeout, restored after a checkpoint of its own */
  int frame_bytes;          /* page size + 24: one WAL frame */
  _Atomic uint64_t wal_max; /* bytes */
  uint64_t keep;            /* the writer's journal_size_limit (its thread only) */
  atomic_int woken;         /* the hook asked for a RESTART that has not run yet */
  /* Who may checkpoint when (under lock, waited for on `turn`): a RESTART from this thread runs
   * only between two batches of the writer, which waits for it; a PASSIVE never waits for the
   * writer; a RESTART by the writer itself waits for a PASSIVE in progress. SQLite would make
   * them poll each other with busy handlers, and under sustained load the writer won every time
   * (measured: the WAL went past its bound with every RESTART reported done). */
  pthread_cond_t turn;
  int writer_in;  /* the writer is inside a transaction */
  int wants;      /* this thread waits to RESTART: the writer holds off its next batch */
  int restarting; /* this thread's RESTART is running */
  int passive;    /* this thread's PASSIVE is running */
  int forcing;    /* the writer's own RESTART is running */
  _Atomic uint64_t ok, busy, restarts, forced;
  _Atomic uint64_t frames_written; /* WAL frames the writer's commits appended, in all */
  _Atomic uint64_t holds, hold_ns; /* the writer's waits for a RESTART, and their time */
  int frames_last;                 /* the WAL's frame count after the last commit (writer's) */
};

static int ckpt__frames(struct sq_ckpt *k, uint64_t bytes) {
  uint64_t f = bytes / (uint64_t)k->frame_bytes;
  return f > 0x7fffffff ? 0x7fffffff : f < 1 ? 1 : (int)f;
}

/* A read transaction: it opens the WAL on this connection (see the file comment). */
static void ckpt__attach(sqlite3 *db) {
  int rc = sqlite3_exec(db, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL);
  if (rc != SQLITE_OK)
    log_warn("store: checkpointer cannot read the database: %s", sqlite3_errmsg(db));
}

/* fdatasyncs the WAL and the database file through this connection's own handles, outside any
 * lock: what they flush now, the RESTART that follows does not flush while the writer waits.
 * (SQLite's handles, not descriptors of our own: closing another descriptor of the database file
 * would drop the process's POSIX locks on it.) */
static void ckpt__presync(sqlite3 *db) {
  sqlite3_file *f = NULL;
  if (sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &f) == SQLITE_OK && f &&
      f->pMethods)
    f->pMethods->xSync(f, SQLITE_SYNC_NORMAL);
  f = NULL;
  if (sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &f) == SQLITE_OK && f &&
      f->pMethods)
    f->pMethods->xSync(f, SQLITE_SYNC_NORMAL);
}

/* One checkpoint in `mode` on `db`, counted: as the checkpointer's (ok, busy, restarts), or,
 * `forced`, as one the writer had to run. Returns the WAL's frame count (-1: no WAL). */
static int ckpt__run(struct sq_ckpt *k, sqlite3 *db, int mode, int forced) {
  int log = -1, copied = -1;
  int rc = sqlite3_wal_checkpoint_v2(db, NULL, mode, &log, &copied);
  if (rc == SQLITE_OK && log < 0) {
    ckpt__attach(db);
    rc = sqlite3_wal_checkpoint_v2(db, NULL, mode, &log, &copied);
  }
  if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) {
    if (!forced)
      atomic_fetch_add(&k->busy, 1);
  } else if (rc != SQLITE_OK) {
    log_warn("store: checkpoint: %s (%d)", sqlite3_errmsg(db), rc);
  } else if (log >= 0) {
    atomic_fetch_add(forced ? &k->forced : &k->ok, 1);
    if (mode != SQLITE_CHECKPOINT_PASSIVE && !forced)
      atomic_fetch_add(&k->restarts, 1);
  }
  return log;
}

/* The writer's WAL hook: after every commit, on the store thread, with the WAL's frame count. */
static int ckpt__on_commit(void *arg, sqlite3 *db, const char *name, int frames) {
  struct sq_ckpt *k = arg;
  uint64_t max = atomic_load(&k->wal_max);
  (void)name;
  /* (a smaller count than last time: the WAL started over after a RESTART) */
  atomic_fetch_add(&k->frames_written,
                   (uint64_t)(frames >= k->frames_last ? frames - k->frames_last : frames));
  k->frames_last = frames;
  if (frames > ckpt__frames(k, SQ_FORCE_AT(max))) {
    /* The checkpointer fell behind: the bound is kept here, at the price of this batch's
     * latency. A short busy timeout, so an outside reader holding a snapshot (a backup) costs
     * a commit at most SQ_CKPT_BUSY_MS; the WAL then grows past the bound until it lets go. */
    pthread_mutex_lock(&k->lock);
    while (k->passive)
      pthread_cond_wait(&k->turn, &k->lock);
    k->forcing = 1;
    pthread_mutex_unlock(&k->lock);
    sqlite3_busy_timeout(db, SQ_CKPT_BUSY_MS);
    ckpt__run(k, db, SQLITE_CHECKPOINT_RESTART, 1);
    sqlite3_busy_timeout(db, k->writer_busy_ms);
    pthread_mutex_lock(&k->lock);
    k->forcing = 0;
    pthread_cond_broadcast(&k->turn);
    pthread_mutex_unlock(&k->lock);
  } else if (frames > ckpt__frames(k, SQ_RESTART_AT(max)) && !atomic_exchange(&k->woken, 1)) {
    pthread_mutex_lock(&k->lock);
    pthread_cond_signal(&k->wake);
    pthread_mutex_unlock(&k->lock);
  }
  return SQLITE_OK;
}

/* PASSIVE passes, at most `passes`, each copying what the writer committed during the one before
 * (`frames`: the WAL's frame count after the last pass), until a pass finds at most `tail_max`
 * new frames (or the WAL started over). With `sync`, both files are synced after each pass that
 * found more. Returns the WAL's frame count after the last pass. */
static int ckpt__catch_up(struct sq_ckpt *k, sqlite3 *db, int frames, int passes, int tail_max,
                          int sync) {
  for (int i = 0; i < passes; i++) {
    int again = ckpt__run(k, db, SQLITE_CHECKPOINT_PASSIVE, 0);
    int tail = again - frames;
    frames = again;
    if (tail <= tail_max)
      break;
    if (sync)
      ckpt__presync(db);
  }
  return frames;
}

static void *ckpt__main(void *arg) {
  struct sq_ckpt *k = arg;
  sqlite3 *db = NULL;
  struct timespec until;

  if (sqlite3_open_v2(k->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI,
                      NULL) != SQLITE_OK) {
    log_error("store: checkpointer cannot open the database: %s",
              db ? sqlite3_errmsg(db) : "no memory");
    sqlite3_close(db);
    return NULL;
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, SQ_CKPT_BUSY_MS);
  {
    int chunk = SQ_DB_CHUNK_BYTES;
    sqlite3_file_control(db, "main", SQLITE_FCNTL_CHUNK_SIZE, &chunk);
  }
  ckpt__attach(db);
  pthread_mutex_lock(&k->lock);
  while (!k->stop) {
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += (long)(SQ_CHECKPOINT_MS % 1000) * 1000000L;
    until.tv_sec += SQ_CHECKPOINT_MS / 1000 + until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    if (!atomic_load(&k->woken))
      pthread_cond_timedwait(&k->wake, &k->lock, &until);
    if (k->stop)
      break;
    while (k->forcing)
      pthread_cond_wait(&k->turn, &k->lock);
    k->passive = 1;
    pthread_mutex_unlock(&k->lock);
    /* PASSIVE never waits for the writer: it copies what it can and tries again next time. */
    int frames = ckpt__run(k, db, SQLITE_CHECKPOINT_PASSIVE, 0);
    if (frames > ckpt__frames(k, SQ_RESTART_AT(atomic_load(&k->wal_max)))) {
      /* The writer will wait for the RESTART, and the RESTART first copies the frames the
       * writer committed since this pass began, with an fdatasync of the WAL and of the
       * database; on this kind of disk each costs 5-10 ms once megabytes are dirty, and every
       * send waited for them (p99 = the RESTART, 2-18 ms, 5 times a second at 2,000 sends/s).
       * So catch up first, while the writer runs: each pass copies what came during the one
       * before, and is shorter, until the tail left for the RESTART is a few frames. */
      frames = ckpt__catch_up(k, db, frames, SQ_CATCH_UP_PASSES, SQ_RESTART_TAIL_FRAMES, 0);
      /* And sync both files now, so the RESTART's own fdatasyncs flush only that tail: theirs
       * had grown with what the passes left dirty (issue 15: the hold went from ~1 ms to ~7 ms
       * within a minute at 2,000 sends/s; with this, p99 16-19 ms -> 7.5-12 ms). */
      ckpt__presync(db);
      /* That sync itself grows with the database (5 ms at first, 20-40 ms after three minutes
       * at 2,000 sends/s), and what the writer committed meanwhile was again the RESTART's to
       * copy and sync: the writer's hold grew from 1.3 to 6.4 ms on average. So copy that too,
       * and sync again, until a pass finds only a few frames new. */
      frames = ckpt__catch_up(k, db, frames, SQ_PRESYNC_ROUNDS, SQ_HOLD_TAIL_FRAMES, 1);
    }
    pthread_mutex_lock(&k->lock);
    k->passive = 0;
    pthread_cond_broadcast(&k->turn);
    if (frames > ckpt__frames(k, SQ_RESTART_AT(atomic_load(&k->wal_max)))) {
      /* The RESTART has little left to copy, so the writer is held off only briefly; the
       * writer's next transaction then starts the WAL over. */
      k->wants = 1;
      while (k->writer_in || k->forcing)
        pthread_cond_wait(&k->turn, &k->lock);
      k->wants = 0;
      k->restarting = 1;
      pthread_mutex_unlock(&k->lock);
      ckpt__run(k, db, SQLITE_CHECKPOINT_RESTART, 0);
      pthread_mutex_lock(&k->lock);
      k->restarting = 0;
      pthread_cond_broadcast(&k->turn);
    }
    atomic_store(&k->woken, 0);
  }
  pthread_mutex_unlock(&k->lock);
  sqlite3_close(db);
  return NULL;
}

/* On the writer's thread: its journal_size_limit follows the bound, at three quarters of it. */
static void ckpt__keep(struct sq_ckpt *k) {
  uint64_t keep = SQ_KEEP_AT(atomic_load(&k->wal_max));
  char limit[64];
  if (keep == k->keep)
    return;
  snprintf(limit, sizeof limit, "PRAGMA journal_size_limit=%llu", (unsigned long long)keep);
  if (sqlite3_exec(k->writer, limit, NULL, NULL, NULL) == SQLITE_OK)
    k->keep = keep;
}

static int ckpt__page_size(void *out, int n, char **vals, char **cols) {
  (void)n;
  (void)cols;
  *(int *)out = vals[0] ? atoi(vals[0]) : 0;
  return 0;
}

int store__sqlite_ckpt_start(struct sq_ckpt **out, sqlite3 *writer, int writer_busy_ms,
                             const char *path) {
  struct sq_ckpt *k = calloc(1, sizeof *k);
  const char *db_file = sqlite3_db_filename(writer, "main");
  int page = 0;

  *out = NULL;
  if (k == NULL)
    return PARLEY_EUNAVAILABLE;
  k->path = strdup(path);
  /* The file's own name, not the URI the store was given ("file:...?mode=rwc"). */
  k->wal_path = db_file && *db_file ? strdup(sqlite3_filename_wal(db_file)) : NULL;
  if (k->path == NULL || k->wal_path == NULL) {
    free(k->path);
    free(k->wal_path);
    free(k);
    return PARLEY_EUNAVAILABLE;
  }
  k->writer = writer;
  k->writer_busy_ms = writer_busy_ms;
  sqlite3_exec(writer, "PRAGMA page_size", ckpt__page_size, &page, NULL);
  k->frame_bytes = (page > 0 ? page : 4096) + 24;
  atomic_init(&k->wal_max, SQ_WAL_MAX_DEFAULT);
  ckpt__keep(k);
  pthread_mutex_init(&k->lock, NULL);
  pthread_cond_init(&k->wake, NULL);
  pthread_cond_init(&k->turn, NULL);
  if (pthread_create(&k->thread, NULL, ckpt__main, k) != 0) {
    pthread_mutex_destroy(&k->lock);
    pthread_cond_destroy(&k->wake);
    pthread_cond_destroy(&k->turn);
    free(k->path);
    free(k->wal_path);
    free(k);
    return PARLEY_EUNAVAILABLE;
  }
  sqlite3_wal_hook(writer, ckpt__on_commit, k);
  *out = k;
  return 0;
}

void store__sqlite_ckpt_stop(struct sq_ckpt *k) {
  if (k == NULL)
    return;
  sqlite3_wal_hook(k->writer, NULL, NULL);
  pthread_mutex_lock(&k->lock);
  k->stop = 1;
  pthread_cond_signal(&k->wake);
  pthread_mutex_unlock(&k->lock);
  pthread_join(k->thread, NULL);
  pthread_mutex_destroy(&k->lock);
  pthread_cond_destroy(&k->wake);
  pthread_cond_destroy(&k->turn);
  free(k->path);
  free(k->wal_path);
  free(k);
}

void store__sqlite_ckpt_writer_enter(struct sq_ckpt *k) {
  if (k == NULL)
    return;
  ckpt__keep(k);
  pthread_mutex_lock(&k->lock);
  if (k->wants || k->restarting) {
    uint64_t t0 = clock_mono_ns();
    while (k->wants || k->restarting)
      pthread_cond_wait(&k->turn, &k->lock);
    atomic_fetch_add(&k->holds, 1);
    atomic_fetch_add(&k->hold_ns, clock_mono_ns() - t0);
  }
  k->writer_in = 1;
  pthread_mutex_unlock(&k->lock);
}

void store__sqlite_ckpt_writer_leave(struct sq_ckpt *k) {
  if (k == NULL)
    return;
  pthread_mutex_lock(&k->lock);
  k->writer_in = 0;
  pthread_cond_broadcast(&k->turn);
  pthread_mutex_unlock(&k->lock);
}

void store__sqlite_ckpt_set_wal_max(struct sq_ckpt *k, uint64_t bytes) {
  if (k)
    atomic_store(&k->wal_max, bytes);
}

void store__sqlite_ckpt_stats(struct sq_ckpt *k, struct store_stats *out) {
  struct stat sb;
  if (k == NULL)
    return;
  out->wal_bytes = stat(k->wal_path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
  out->wal_max = atomic_load(&k->wal_max);
  out->checkpoints_ok = atomic_load(&k->ok);
  out->checkpoints_busy = atomic_load(&k->busy);
  out->wal_restarts = atomic_load(&k->restarts);
  out->wal_forced = atomic_load(&k->forced);
  out->wal_frames = atomic_load(&k->frames_written);
  out->ckpt_holds = atomic_load(&k->holds);
  out->ckpt_hold_ns = atomic_load(&k->hold_ns);
}
