/*
 * jlog.h - the connection log: JSON Lines written off the event loop.
 *
 * Records are built on the calling thread (jrec_*), in the reference's
 * fixed key order (SEED_BEHAVIOUR §7.1/§7.3): ts first, then the event's
 * fields, then the process fields (exe, cmdline, cgroup, image, step,
 * action), then src_port and pid.  Output is compact and ASCII-only
 * (non-ASCII escaped as \uXXXX, as Python's json.dumps does).  ts is RFC
 * 3339 UTC with milliseconds and a Z suffix.
 *
 * jlog_write hands a finished line to a writer thread through a bounded
 * queue.  When the queue is full the caller waits (back-pressure): no line
 * is ever dropped.  Lines reach a regular file in batches, one writev(2)
 * appended whole per batch, and anything else (a pipe, a terminal) with one
 * write(2) per line: never torn.  The file is rotated by size: path.1 ...
 * path.N.
 */
#ifndef EGRESS_JLOG_H
#define EGRESS_JLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cdefs.h"

struct jlog_opts {
	const char *path; /* "-" for stdout */
	uint64_t max_bytes; /* rotate when a write would pass this; 0: never */
	unsigned keep; /* rotated files kept (path.1 .. path.keep) */
	size_t queue_max; /* lines queued before writers wait (0: 4096) */
};

typedef struct jlog jlog_t;

/* Opens (appends to) the log and starts the writer thread; NULL + errno. */
jlog_t *jlog_open(const struct jlog_opts *o) NONNULL(1) WUNRES;
/* Queues line (a NUL-terminated JSON object without newline); takes
 * ownership (freed with free()).  Blocks while the queue is full.  Safe from
 * any thread.  Returns 0, or -1 after jlog_close started. */
int jlog_write(jlog_t *l, char *line) NONNULL(1, 2);
/* Waits until everything queued so far is written (and fsync'ed if sync). */
void jlog_flush(jlog_t *l, bool sync) NONNULL(1);
/* Flushes, stops the writer, closes the file, frees l. */
void jlog_close(jlog_t *l);
size_t jlog_queue_depth(jlog_t *l) NONNULL(1);
/* Lines written and write errors since open. */
uint64_t jlog_lines_written(jlog_t *l) NONNULL(1);
uint64_t jlog_write_errors(jlog_t *l) NONNULL(1);

/* ---- records ---- */

struct jrec {
	char *buf;
	size_t len, cap;
	bool first;
};

/* Starts a record with "ts" (now, or ts_ms since the epoch if non-zero)
 * and "type". */
void jrec_begin(struct jrec *r, const char *type, int64_t ts_ms) NONNULL(1, 2);
void jrec_str(struct jrec *r, const char *key, const char *val)
	NONNULL(1, 2); /* NULL val: JSON null */
void jrec_int(struct jrec *r, const char *key, int64_t val) NONNULL(1, 2);
void jrec_bool(struct jrec *r, const char *key, bool val) NONNULL(1, 2);
void jrec_strv(struct jrec *r, const char *key, const char *const *v, size_t n)
	NONNULL(1, 2);
/* Process fields, in the reference's order; NULL/empty ones are left out. */
void jrec_proc(struct jrec *r, const char *exe, const char *const *cmdline,
	       size_t ncmdline, const char *cgroup, const char *image,
	       const char *step, const char *action) NONNULL(1);
/* Closes the object; returns the line (caller frees, or passes to
 * jlog_write).  src_port and pid are appended when >= 0. */
char *jrec_end(struct jrec *r, int src_port, int pid) NONNULL(1) WUNRES;

#endif /* EGRESS_JLOG_H */
