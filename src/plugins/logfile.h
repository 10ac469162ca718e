/*
 * Append-only log files written by a background thread, for the access log
 * (and later usage export): workers hand over complete lines and never
 * touch the file themselves, so a slow disk cannot stall an event loop.
 *
 * One struct pt_logfile per file, shared by every configuration instance
 * that names it (found by device and inode, so "logs/a.log" and
 * "./logs/a.log" are one file), reference counted; the last close flushes
 * everything and joins the writer thread.
 *
 * Bounded memory: lines go into 64 KiB buffers (one being filled per
 * worker slot); at most PT_LOGFILE_MAX_BUFS exist per file.  When the writer
 * falls that far behind, new lines are dropped and counted, never waited
 * for.
 */
#ifndef PT_PLUGINS_LOGFILE_H
#define PT_PLUGINS_LOGFILE_H

#include <stddef.h>
#include <stdint.h>

#define PT_LOGFILE_BUF_SIZE (64u * 1024)
#define PT_LOGFILE_MAX_BUFS 64  /* per file: 4 MiB of lines in flight at most */
#define PT_LOGFILE_FLUSH_MS 100 /* a line waits at most about this long in memory */
#define PT_LOGFILE_SLOTS    64  /* buffers being filled: threads map onto these */

struct pt_logfile;

/**
 * Open path for appending (created 0644 if missing), or standard error when
 * path is NULL, and start its writer thread; or take another reference to
 * the one already open.  Returns NULL with errbuf filled ("cannot open:
 * Permission denied").  Thread-safe.
 */
struct pt_logfile *pt_logfile_open(const char *path, char *errbuf, size_t errlen);

/**
 * Drop a reference; after the last one the writer writes out every pending
 * line and stops.  On the main thread close waits for that and frees
 * everything; on any other thread it returns at once (the writer is joined
 * later, at the latest at exit).
 */
void pt_logfile_close(struct pt_logfile *f);

/**
 * Queue one line (n bytes, with its '\n') for writing.  Never blocks on
 * I/O: takes a per-slot lock (uncontended unless two threads share a slot)
 * and, once per buffer, the file's lock.  Lines longer than a buffer are
 * dropped.  Returns 0, or -1 when the line was dropped.
 */
int pt_logfile_write(struct pt_logfile *f, const char *line, size_t n);

/**
 * Reopen every open file by its path (log rotation, SIGUSR1): lines queued
 * before the call go to the old file, later ones to the new.  Returns at
 * once; the writers do the work.  Standard error is left alone.
 */
void pt_logfile_reopen_all(void);

/** Lines dropped so far, over every file, since the process started. */
uint64_t pt_logfile_dropped_total(void);

#endif
