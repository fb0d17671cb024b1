/*
 * jlog.c - the connection log: records built on the caller's thread, lines
 * written by one writer thread, so that the event loop never waits on the
 * disk, only on a full queue (STYLE C.11, SPEC §7).
 *
 * The queue is a ring of queue_max line pointers.  Producers append at the
 * tail under jl_mu.  The writer copies up to JLOG_BATCH pointers from the
 * head, writes those lines with the mutex released, and frees their slots
 * only afterwards: at most queue_max lines are ever held, and producers
 * never touch a slot the writer is working on (they only store past
 * head + count).
 *
 * Waking a sleeping thread is a futex system call that costs the producer
 * (the event loop) several microseconds, against about 0.1 us for queueing
 * a line, so the writer is woken sparingly: after writing, it naps for
 * JLOG_NAP_MS, and producers wake it early only when jl_wake_at lines are
 * waiting (before they could fill the queue).  Only a writer that napped
 * and found nothing sleeps until the next line (jl_sleeping).  A line thus
 * reaches the file at most JLOG_NAP_MS late; jlog_flush and jlog_close
 * wake the writer at once.
 *
 * Progress is tracked with sequence numbers: jl_nqueued counts lines
 * accepted, jl_ndone lines the writer has finished with (written, or failed
 * and counted as errors) and jl_nsynced the jl_ndone at the start of the
 * last completed fdatasync.  jlog_flush waits for those to reach the
 * jl_nqueued it saw on entry.
 */
#include "jlog.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define JLOG_QUEUE_DEFAULT 4096
/* Lines the writer takes per lock round trip; small enough that producers
 * blocked on a full queue get slots back promptly. */
#define JLOG_BATCH 64
#define JLOG_NAP_MS 10
#define JLOG_MODE 0644
/* Most connection-log lines are 300 to 500 bytes long. */
#define JREC_INIT_CAP 512

struct jlog {
	pthread_mutex_t jl_mu;
	pthread_cond_t jl_wake; /* writer: lines, a sync request or close */
	pthread_cond_t jl_space; /* producers: slots were freed, or close */
	pthread_cond_t jl_progress; /* flushers, close: counters moved */

	/* Under jl_mu. */
	char **jl_q;
	size_t jl_qcap, jl_head, jl_count;
	uint64_t jl_nqueued, jl_ndone;
	uint64_t jl_sync_want, jl_nsynced;
	unsigned jl_nusers; /* threads inside jlog_write/jlog_flush */
	bool jl_closing; /* jlog_close started: no new lines */
	bool jl_stopped; /* the writer has drained the queue and left */
	bool jl_sleeping; /* the writer waits for the next line */
	size_t jl_wake_at; /* queued lines that end the writer's nap */

	/* Read without the lock. */
	_Atomic uint64_t jl_lines, jl_errors;

	/* Writer thread only, once it runs. */
	int jl_fd;
	bool jl_own_fd; /* false for stdout, which is not ours to close */
	bool jl_regular; /* a regular file: lines are written in batches */
	bool jl_rotate; /* a regular file with max_bytes set */
	uint64_t jl_size; /* bytes in the current file, as far as we know */
	uint64_t jl_max_bytes;
	unsigned jl_keep;
	char *jl_path;
	char *jl_from, *jl_to; /* rotation names, path.N */
	pthread_t jl_thread;
};

/* ---- writer thread ---- */

/*
 * Writes all n bytes, retrying on EINTR, short writes and (for a
 * non-blocking stdout) EAGAIN.  *donep receives the bytes written.  Returns
 * 0, or -1 with errno.
 */
static int jlog_write_all(int fd, const char *p, size_t n, size_t *donep)
{
	size_t done = 0;

	while (done < n) {
		ssize_t w = write(fd, p + done, n - done);

		if (w > 0) {
			done += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };

			if (poll(&pfd, 1, -1) >= 0 || errno == EINTR)
				continue;
		}
		if (w == 0)
			errno = ENOSPC;
		*donep = done;
		return -1;
	}
	*donep = done;
	return 0;
}

/*
 * Moves path.(k) to path.(k+1) for k = keep-1 .. 1, then path to path.1
 * (rename replaces path.keep, which drops it), and opens a fresh path.  With
 * keep 0 the current file is simply truncated.  On failure the writer goes
 * on appending to the old file and tries again after another max_bytes,
 * rather than renaming on every line.  Returns 0 or -1.
 */
static int jlog_rotate(jlog_t *l)
{
	struct stat st;
	unsigned n = 0;
	int fd, rc = 0;

	if (l->jl_keep > 0) {
		/* Only the run of backups that exists, path.1 .. path.n, has
		 * to move, so a large keep costs nothing until the files are
		 * there; a stray file past a gap is left alone. */
		while (n < l->jl_keep - 1) {
			sprintf(l->jl_from, "%s.%u", l->jl_path, n + 1);
			if (access(l->jl_from, F_OK) < 0)
				break;
			n++;
		}
		for (unsigned k = n; k >= 1; k--) {
			sprintf(l->jl_from, "%s.%u", l->jl_path, k);
			sprintf(l->jl_to, "%s.%u", l->jl_path, k + 1);
			if (rename(l->jl_from, l->jl_to) < 0 && errno != ENOENT)
				rc = -1;
		}
		sprintf(l->jl_to, "%s.1", l->jl_path);
		if (rename(l->jl_path, l->jl_to) < 0 && errno != ENOENT) {
			l->jl_size = 0;
			return -1;
		}
		fd = open(l->jl_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			  JLOG_MODE);
	} else {
		fd = open(l->jl_path,
			  O_WRONLY | O_CREAT | O_APPEND | O_TRUNC | O_CLOEXEC,
			  JLOG_MODE);
	}
	if (fd < 0) {
		l->jl_size = 0;
		return -1;
	}
	close(l->jl_fd);
	l->jl_fd = fd;
	/* Another process may have created path between rename and open. */
	l->jl_size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	return rc;
}

/*
 * Writes one line (rotating first if it would not fit) and frees it.  The
 * line's NUL becomes the newline, so "line\n" goes out in one write(2):
 * with O_APPEND the kernel appends it whole, never interleaved with other
 * writers.  Used where the log is not a regular file (a pipe takes only
 * PIPE_BUF bytes whole, so a batch could interleave with another writer).
 */
static void jlog_put(jlog_t *l, char *line)
{
	size_t len = strlen(line), done;

	line[len++] = '\n';
	if (l->jl_rotate && l->jl_size > 0 &&
	    l->jl_size + len > l->jl_max_bytes && jlog_rotate(l) < 0)
		atomic_fetch_add_explicit(&l->jl_errors, 1,
					  memory_order_relaxed);
	if (jlog_write_all(l->jl_fd, line, len, &done) == 0) {
		atomic_fetch_add_explicit(&l->jl_lines, 1,
					  memory_order_relaxed);
	} else {
		atomic_fetch_add_explicit(&l->jl_errors, 1,
					  memory_order_relaxed);
		/* End a torn fragment so that the next line starts clean. */
		if (done > 0 && write(l->jl_fd, "\n", 1) == 1)
			done++;
	}
	l->jl_size += done;
	free(line);
}

/*
 * writev(2) of v[0..n), retrying on EINTR and short writes; like
 * jlog_write_all.  *donep receives the bytes written.  v is consumed.
 */
static int jlog_writev_all(int fd, struct iovec *v, int n, size_t *donep)
{
	size_t done = 0;

	while (n > 0) {
		ssize_t w = writev(fd, v, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = ENOSPC;
			*donep = done;
			return -1;
		}
		done += (size_t)w;
		while (n > 0 && (size_t)w >= v->iov_len) {
			w -= (ssize_t)v->iov_len;
			v++;
			n--;
		}
		if (n > 0) {
			v->iov_base = (char *)v->iov_base + w;
			v->iov_len -= (size_t)w;
		}
	}
	*donep = done;
	return 0;
}

/*
 * Writes lines[0..n) to a regular file and frees them: the lines that fit
 * before the next rotation go out in one writev(2), which O_APPEND appends
 * whole, so a line is never torn nor interleaved, with one system call
 * per batch instead of one per line (at thousands of lines a second the
 * writer's share of the machine is mostly those calls).  A failed write
 * counts the line it stopped in as an error (its fragment ended with a
 * newline, as jlog_put does) and the next lines are tried again.
 */
static void jlog_put_batch(jlog_t *l, char **lines, size_t n)
{
	struct iovec v[JLOG_BATCH];
	size_t len[JLOG_BATCH];
	size_t i = 0;

	for (size_t k = 0; k < n; k++) {
		len[k] = strlen(lines[k]);
		lines[k][len[k]++] = '\n';
	}
	while (i < n) {
		size_t k = i, total = 0, done;
		int rc;

		if (l->jl_rotate && l->jl_size > 0 &&
		    l->jl_size + len[i] > l->jl_max_bytes && jlog_rotate(l) < 0)
			atomic_fetch_add_explicit(&l->jl_errors, 1,
						  memory_order_relaxed);
		/* The first line always goes (a line larger than max_bytes
		 * fills a fresh file alone); the others while they fit. */
		do {
			v[k - i] = (struct iovec){ lines[k], len[k] };
			total += len[k++];
		} while (k < n &&
			 (!l->jl_rotate ||
			  l->jl_size + total + len[k] <= l->jl_max_bytes));
		rc = jlog_writev_all(l->jl_fd, v, (int)(k - i), &done);
		l->jl_size += done;
		if (rc == 0) {
			atomic_fetch_add_explicit(&l->jl_lines, k - i,
						  memory_order_relaxed);
			i = k;
			continue;
		}
		/* Whole lines written before the failure count as written. */
		for (; i < k && done >= len[i]; i++) {
			done -= len[i];
			atomic_fetch_add_explicit(&l->jl_lines, 1,
						  memory_order_relaxed);
		}
		atomic_fetch_add_explicit(&l->jl_errors, 1,
					  memory_order_relaxed);
		if (done > 0 && write(l->jl_fd, "\n", 1) == 1)
			l->jl_size++;
		i++;
	}
	for (size_t k = 0; k < n; k++)
		free(lines[k]);
}

static void jlog_sync(jlog_t *l)
{
	/* stdout may be a pipe or a terminal, which cannot be synced. */
	if (fdatasync(l->jl_fd) < 0 && errno != EINVAL && errno != EROFS)
		atomic_fetch_add_explicit(&l->jl_errors, 1,
					  memory_order_relaxed);
}

/* The writer thread: drains the queue until jlog_close, serving sync
 * requests once everything before them is written. */
static void *jlog_main(void *arg)
{
	jlog_t *l = arg;
	char *batch[JLOG_BATCH];
	bool busy = false; /* wrote since the last nap */
	struct timespec until;

	pthread_mutex_lock(&l->jl_mu);
	for (;;) {
		if (l->jl_sync_want > l->jl_nsynced &&
		    l->jl_ndone >= l->jl_sync_want) {
			uint64_t upto = l->jl_ndone;

			pthread_mutex_unlock(&l->jl_mu);
			jlog_sync(l);
			pthread_mutex_lock(&l->jl_mu);
			l->jl_nsynced = upto;
			pthread_cond_broadcast(&l->jl_progress);
		} else if (l->jl_count > 0) {
			size_t n = l->jl_count < JLOG_BATCH ? l->jl_count :
							      JLOG_BATCH;

			for (size_t i = 0; i < n; i++)
				batch[i] =
					l->jl_q[(l->jl_head + i) % l->jl_qcap];
			pthread_mutex_unlock(&l->jl_mu);
			if (l->jl_regular) {
				jlog_put_batch(l, batch, n);
			} else {
				for (size_t i = 0; i < n; i++)
					jlog_put(l, batch[i]);
			}
			pthread_mutex_lock(&l->jl_mu);
			l->jl_head = (l->jl_head + n) % l->jl_qcap;
			l->jl_count -= n;
			l->jl_ndone += n;
			pthread_cond_broadcast(&l->jl_space);
			pthread_cond_broadcast(&l->jl_progress);
			busy = true;
		} else if (l->jl_closing) {
			break;
		} else if (busy) {
			busy = false;
			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_nsec += JLOG_NAP_MS * 1000000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&l->jl_wake, &l->jl_mu, &until);
		} else {
			l->jl_sleeping = true;
			pthread_cond_wait(&l->jl_wake, &l->jl_mu);
			l->jl_sleeping = false;
		}
	}
	l->jl_stopped = true;
	pthread_cond_broadcast(&l->jl_progress);
	pthread_mutex_unlock(&l->jl_mu);
	return NULL;
}

/* ---- public side ---- */

/*
 * Starts the writer with every asynchronous signal blocked, so that the
 * daemon's handlers run on its own threads and a write to a closed stdout
 * pipe fails with EPIPE instead of killing the process (SIGPIPE from
 * write(2) is sent to the writing thread).  Returns 0 or an errno value.
 */
static int jlog_start(jlog_t *l)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGABRT);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&l->jl_thread, NULL, jlog_main, l);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0)
		pthread_setname_np(l->jl_thread, "egress-jlog");
	return rc;
}

jlog_t *jlog_open(const struct jlog_opts *o)
{
	struct stat st;
	pthread_condattr_t ca;
	jlog_t *l;
	size_t plen;
	int rc;

	if (!o->path || !*o->path) {
		errno = EINVAL;
		return NULL;
	}
	l = util_xcalloc(1, sizeof(*l));
	if (strcmp(o->path, "-") == 0) {
		l->jl_fd = STDOUT_FILENO;
	} else {
		l->jl_fd = open(o->path,
				O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
				JLOG_MODE);
		if (l->jl_fd < 0)
			goto fail;
		l->jl_own_fd = true;
		if (fstat(l->jl_fd, &st) < 0)
			goto fail_fd;
		/* Renaming a device or a FIFO would make no sense. */
		l->jl_regular = S_ISREG(st.st_mode);
		l->jl_rotate = l->jl_regular && o->max_bytes > 0;
		l->jl_size = (uint64_t)st.st_size;
	}
	l->jl_max_bytes = o->max_bytes;
	l->jl_keep = o->keep;
	l->jl_path = util_xstrdup(o->path);
	plen = strlen(o->path) + sizeof(".4294967295");
	l->jl_from = util_xmalloc(plen);
	l->jl_to = util_xmalloc(plen);
	l->jl_qcap = o->queue_max ? o->queue_max : JLOG_QUEUE_DEFAULT;
	l->jl_q = util_xcalloc(l->jl_qcap, sizeof(*l->jl_q));
	/* Half the queue, so that producers never wait out a nap. */
	l->jl_wake_at = l->jl_qcap / 2 < JLOG_BATCH ? l->jl_qcap / 2 :
						      JLOG_BATCH;
	if (l->jl_wake_at == 0)
		l->jl_wake_at = 1;
	pthread_mutex_init(&l->jl_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->jl_wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&l->jl_space, NULL);
	pthread_cond_init(&l->jl_progress, NULL);
	rc = jlog_start(l);
	if (rc != 0) {
		errno = rc;
		goto fail_sync;
	}
	return l;

fail_sync:
	pthread_cond_destroy(&l->jl_progress);
	pthread_cond_destroy(&l->jl_space);
	pthread_cond_destroy(&l->jl_wake);
	pthread_mutex_destroy(&l->jl_mu);
	free(l->jl_q);
	free(l->jl_to);
	free(l->jl_from);
	free(l->jl_path);
fail_fd:
	if (l->jl_own_fd) {
		rc = errno;
		close(l->jl_fd);
		errno = rc;
	}
fail:
	free(l);
	return NULL;
}

/* Called under jl_mu by a thread leaving jlog_write/jlog_flush: the last
 * one out lets a waiting jlog_close free l. */
static void jlog_leave(jlog_t *l)
{
	if (--l->jl_nusers == 0 && l->jl_closing)
		pthread_cond_broadcast(&l->jl_progress);
}

int jlog_write(jlog_t *l, char *line)
{
	pthread_mutex_lock(&l->jl_mu);
	l->jl_nusers++;
	while (l->jl_count == l->jl_qcap && !l->jl_closing)
		pthread_cond_wait(&l->jl_space, &l->jl_mu);
	if (l->jl_closing) {
		jlog_leave(l);
		pthread_mutex_unlock(&l->jl_mu);
		free(line);
		return -1;
	}
	l->jl_q[(l->jl_head + l->jl_count) % l->jl_qcap] = line;
	if (++l->jl_count == l->jl_wake_at || l->jl_sleeping)
		pthread_cond_signal(&l->jl_wake);
	l->jl_nqueued++;
	jlog_leave(l);
	pthread_mutex_unlock(&l->jl_mu);
	return 0;
}

void jlog_flush(jlog_t *l, bool sync)
{
	uint64_t target;

	pthread_mutex_lock(&l->jl_mu);
	l->jl_nusers++;
	target = l->jl_nqueued;
	if (sync && l->jl_sync_want < target)
		l->jl_sync_want = target;
	pthread_cond_signal(&l->jl_wake); /* end a nap */
	/* Once the writer has stopped, everything queued is written; a sync
	 * asked for after that point is not served. */
	while (!l->jl_stopped &&
	       (l->jl_ndone < target || (sync && l->jl_nsynced < target)))
		pthread_cond_wait(&l->jl_progress, &l->jl_mu);
	jlog_leave(l);
	pthread_mutex_unlock(&l->jl_mu);
}

void jlog_close(jlog_t *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->jl_mu);
	l->jl_closing = true;
	pthread_cond_signal(&l->jl_wake);
	pthread_cond_broadcast(&l->jl_space);
	pthread_mutex_unlock(&l->jl_mu);
	pthread_join(l->jl_thread, NULL);

	/* Threads still inside jlog_write/jlog_flush hold pointers into l. */
	pthread_mutex_lock(&l->jl_mu);
	while (l->jl_nusers > 0)
		pthread_cond_wait(&l->jl_progress, &l->jl_mu);
	pthread_mutex_unlock(&l->jl_mu);

	if (l->jl_own_fd)
		close(l->jl_fd);
	pthread_cond_destroy(&l->jl_progress);
	pthread_cond_destroy(&l->jl_space);
	pthread_cond_destroy(&l->jl_wake);
	pthread_mutex_destroy(&l->jl_mu);
	free(l->jl_q);
	free(l->jl_to);
	free(l->jl_from);
	free(l->jl_path);
	free(l);
}

size_t jlog_queue_depth(jlog_t *l)
{
	size_t n;

	pthread_mutex_lock(&l->jl_mu);
	n = l->jl_count;
	pthread_mutex_unlock(&l->jl_mu);
	return n;
}

uint64_t jlog_lines_written(jlog_t *l)
{
	return atomic_load_explicit(&l->jl_lines, memory_order_relaxed);
}

uint64_t jlog_write_errors(jlog_t *l)
{
	return atomic_load_explicit(&l->jl_errors, memory_order_relaxed);
}

/* ---- records ---- */

static void jrec_reserve(struct jrec *r, size_t n)
{
	size_t need = r->len + n + 1; /* room for the final NUL */
	size_t cap;

	if (need <= r->cap)
		return;
	cap = r->cap ? r->cap : JREC_INIT_CAP;
	while (cap < need)
		cap *= 2;
	r->buf = util_xrealloc(r->buf, cap);
	r->cap = cap;
}

static void jrec_put(struct jrec *r, const void *p, size_t n)
{
	jrec_reserve(r, n);
	memcpy(r->buf + r->len, p, n);
	r->len += n;
}

static void jrec_putc(struct jrec *r, char c)
{
	jrec_reserve(r, 1);
	r->buf[r->len++] = c;
}

/* Writes \uXXXX (lower-case hex, as Python writes it) at o; cp <= 0xffff.
 * Returns the end. */
static char *jrec_u(char *o, unsigned cp)
{
	static const char hex[] = "0123456789abcdef";

	o[0] = '\\';
	o[1] = 'u';
	o[2] = hex[(cp >> 12) & 15];
	o[3] = hex[(cp >> 8) & 15];
	o[4] = hex[(cp >> 4) & 15];
	o[5] = hex[cp & 15];
	return o + 6;
}

/*
 * Decodes one UTF-8 sequence at s (a non-ASCII byte) into *cp and returns
 * its length.  An ill-formed sequence gives U+FFFD for each maximal subpart
 * (Unicode §3.9, "U+FFFD substitution of maximal subparts"), which is what
 * Python's bytes.decode("utf-8", "replace") does: overlong forms, surrogates
 * and values past U+10FFFF are caught by the second byte's range.  The NUL
 * terminator is outside every continuation range, so this never reads past
 * the end of the string.
 */
static size_t jrec_utf8(const unsigned char *s, unsigned *cp)
{
	unsigned c = s[0], lo = 0x80, hi = 0xbf;
	size_t need, i;

	if (c >= 0xc2 && c <= 0xdf) {
		need = 1;
		c &= 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		c &= 0x0f;
		if (c == 0x0)
			lo = 0xa0;
		else if (c == 0xd)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		c &= 0x07;
		if (c == 0)
			lo = 0x90;
		else if (c == 4)
			hi = 0x8f;
	} else {
		*cp = 0xfffd;
		return 1;
	}
	for (i = 1; i <= need; i++) {
		if (s[i] < lo || s[i] > hi) {
			*cp = 0xfffd;
			return i;
		}
		lo = 0x80;
		hi = 0xbf;
		c = c << 6 | (s[i] & 0x3f);
	}
	*cp = c;
	return i;
}

/* The two-character escapes json.dumps uses; 0 for \u00XX. */
static const char jrec_short_esc[0x20] = {
	['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't',
};

/*
 * Appends str as a JSON string, escaped as json.dumps(ensure_ascii=True).
 * Room is reserved for the string as plain ASCII, and grown at an escape
 * by the most one input unit can become (a four-byte sequence gives a
 * twelve-byte surrogate pair): reserving six bytes per input byte up front
 * would be simpler, but the record keeps its capacity while it waits in
 * the queue.
 */
static void jrec_put_str(struct jrec *r, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	const unsigned char *end = s + strlen(str);
	unsigned cp;
	char *o;

	jrec_reserve(r, (size_t)(end - s) + 2);
	o = r->buf + r->len;
	*o++ = '"';
	while (*s) {
		const unsigned char *run = s;

		while (*s >= 0x20 && *s < 0x7f && *s != '"' && *s != '\\')
			s++;
		if (s > run) {
			memcpy(o, run, (size_t)(s - run));
			o += s - run;
		}
		if (!*s)
			break;
		r->len = (size_t)(o - r->buf);
		jrec_reserve(r, 12 + (size_t)(end - s) + 1);
		o = r->buf + r->len;
		if (*s == '"' || *s == '\\') {
			*o++ = '\\';
			*o++ = (char)*s++;
		} else if (*s < 0x20 && jrec_short_esc[*s]) {
			*o++ = '\\';
			*o++ = jrec_short_esc[*s++];
		} else if (*s < 0x80) { /* other controls and DEL */
			o = jrec_u(o, *s++);
		} else {
			s += jrec_utf8(s, &cp);
			if (cp >= 0x10000) { /* UTF-16 surrogate pair */
				cp -= 0x10000;
				o = jrec_u(o, 0xd800 + (cp >> 10));
				o = jrec_u(o, 0xdc00 + (cp & 0x3ff));
			} else {
				o = jrec_u(o, cp);
			}
		}
	}
	*o++ = '"';
	r->len = (size_t)(o - r->buf);
}

static void jrec_key(struct jrec *r, const char *key)
{
	if (!r->first)
		jrec_putc(r, ',');
	r->first = false;
	jrec_put_str(r, key);
	jrec_putc(r, ':');
}

/*
 * "ts": RFC 3339 UTC with milliseconds, e.g. "2024-05-01T12:00:00.042Z".
 * Each thread keeps the last second it formatted: consecutive records
 * mostly fall in the same second, and gmtime_r plus snprintf would
 * otherwise be a good part of the cost of a record.
 */
static void jrec_ts(struct jrec *r, int64_t ts_ms)
{
	static __thread int64_t cached_sec = INT64_MIN;
	static __thread char cached[48]; /* "YYYY-MM-DDTHH:MM:SS. */
	static __thread size_t cached_len;
	struct timespec now;
	struct tm tm;
	int64_t sec, ms;
	time_t t;
	char *o;

	if (ts_ms == 0) {
		clock_gettime(CLOCK_REALTIME, &now);
		ts_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	}
	sec = ts_ms / 1000;
	ms = ts_ms % 1000;
	if (ms < 0) { /* before the epoch: floor, not truncation */
		ms += 1000;
		sec--;
	}
	if (sec != cached_sec) {
		t = (time_t)sec;
		if (!gmtime_r(&t, &tm)) /* year out of range */
			tm = (struct tm){ .tm_year = 70, .tm_mday = 1 };
		cached_len = (size_t)snprintf(
			cached, sizeof(cached),
			"\"%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
			tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			tm.tm_sec);
		cached_sec = sec;
	}
	jrec_key(r, "ts");
	jrec_reserve(r, cached_len + 5);
	o = r->buf + r->len;
	memcpy(o, cached, cached_len);
	o += cached_len;
	*o++ = (char)('0' + ms / 100);
	*o++ = (char)('0' + ms / 10 % 10);
	*o++ = (char)('0' + ms % 10);
	*o++ = 'Z';
	*o++ = '"';
	r->len = (size_t)(o - r->buf);
}

void jrec_begin(struct jrec *r, const char *type, int64_t ts_ms)
{
	r->buf = NULL;
	r->len = 0;
	r->cap = 0;
	r->first = true;
	jrec_reserve(r, JREC_INIT_CAP - 1);
	jrec_putc(r, '{');
	jrec_ts(r, ts_ms);
	jrec_str(r, "type", type);
}

void jrec_str(struct jrec *r, const char *key, const char *val)
{
	jrec_key(r, key);
	if (val)
		jrec_put_str(r, val);
	else
		jrec_put(r, "null", 4);
}

void jrec_int(struct jrec *r, const char *key, int64_t val)
{
	/* Unsigned, so that INT64_MIN negates without overflow. */
	uint64_t u = val < 0 ? -(uint64_t)val : (uint64_t)val;
	char b[24], *p = b + sizeof(b);

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (val < 0)
		*--p = '-';
	jrec_key(r, key);
	jrec_put(r, p, (size_t)(b + sizeof(b) - p));
}

void jrec_bool(struct jrec *r, const char *key, bool val)
{
	jrec_key(r, key);
	if (val)
		jrec_put(r, "true", 4);
	else
		jrec_put(r, "false", 5);
}

void jrec_strv(struct jrec *r, const char *key, const char *const *v, size_t n)
{
	jrec_key(r, key);
	jrec_putc(r, '[');
	for (size_t i = 0; i < n; i++) {
		if (i)
			jrec_putc(r, ',');
		if (v[i])
			jrec_put_str(r, v[i]);
		else
			jrec_put(r, "null", 4);
	}
	jrec_putc(r, ']');
}

void jrec_proc(struct jrec *r, const char *exe, const char *const *cmdline,
	       size_t ncmdline, const char *cgroup, const char *image,
	       const char *step, const char *action)
{
	if (exe && *exe)
		jrec_str(r, "exe", exe);
	if (cmdline && ncmdline > 0)
		jrec_strv(r, "cmdline", cmdline, ncmdline);
	if (cgroup && *cgroup)
		jrec_str(r, "cgroup", cgroup);
	if (image && *image)
		jrec_str(r, "image", image);
	if (step && *step)
		jrec_str(r, "step", step);
	if (action && *action)
		jrec_str(r, "action", action);
}

char *jrec_end(struct jrec *r, int src_port, int pid)
{
	char *line;

	if (src_port >= 0)
		jrec_int(r, "src_port", src_port);
	if (pid >= 0)
		jrec_int(r, "pid", pid);
	jrec_putc(r, '}');
	r->buf[r->len] = '\0';
	line = r->buf;
	r->buf = NULL;
	r->len = 0;
	r->cap = 0;
	return line;
}
