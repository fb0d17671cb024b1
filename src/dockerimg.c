/*
 * dockerimg.c - container id -> image cache, fed from dockerd's API (the
 * container list, the event stream and per-id lookups) by one background
 * thread with a small HTTP/1.1 client over AF_UNIX.
 *
 * Only the thread does I/O, and it never holds the cache lock while doing
 * it: dockerimg_get() waits at most for a hash-map update.
 */
#include "dockerimg.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "hmap.h"
#include "util.h"

/* A list of every container is a few KiB per container. */
#define DIMG_BODY_MAX (32u << 20)
/* One event is well under 4 KiB; a longer line is not dockerd talking. */
#define DIMG_EVENT_LINE_MAX (256u << 10)
#define DIMG_CHUNK_LINE_MAX 1024
#define DIMG_QUEUE_MAX 256
#define DIMG_READ_BUF 16384

/* ---- container ids -------------------------------------------------------- */

static bool is_id(const char *s, size_t n)
{
	if (n != DOCKERIMG_ID_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return true;
}

bool dockerimg_container_id(const char *cgroup_path,
			    char id[DOCKERIMG_ID_LEN + 1])
{
	static const char scope_pre[] = "docker-", scope_suf[] = ".scope";
	const size_t pre = sizeof(scope_pre) - 1, suf = sizeof(scope_suf) - 1;
	const char *last, *found = NULL;
	size_t n;

	if (!cgroup_path)
		return false;
	last = strrchr(cgroup_path, '/');
	if (!last)
		return false;
	last++;
	n = strlen(last);
	if (n == pre + DOCKERIMG_ID_LEN + suf &&
	    memcmp(last, scope_pre, pre) == 0 &&
	    memcmp(last + pre + DOCKERIMG_ID_LEN, scope_suf, suf) == 0 &&
	    is_id(last + pre, DOCKERIMG_ID_LEN))
		found = last + pre;
	else if (is_id(last, n) && last - cgroup_path >= 8 &&
		 memcmp(last - 8, "/docker/", 8) == 0)
		found = last;
	if (!found)
		return false;
	memcpy(id, found, DOCKERIMG_ID_LEN);
	id[DOCKERIMG_ID_LEN] = '\0';
	return true;
}

/* ---- HTTP/1.1 responses --------------------------------------------------- */

enum http_state {
	H_HEAD,
	H_SIZE, /* a chunk-size line */
	H_DATA, /* chunk data */
	H_DATA_END, /* the CRLF after chunk data */
	H_TRAILER,
	H_LENGTH, /* Content-Length framing */
	H_UNTIL_EOF,
	H_DONE,
	H_ERROR,
};

struct dockerimg_http {
	enum http_state st;
	int status;
	struct strbuf line; /* the head, then one chunk-size/trailer line */
	uint64_t left; /* of this chunk, or of the Content-Length body */
	size_t trailer_bytes;
	unsigned crlf; /* bytes of a chunk's closing CRLF seen */
	const char *err;
	int (*body)(void *arg, const char *p, size_t n);
	void *arg;
};

struct dockerimg_http *
dockerimg_http_new(int (*body)(void *, const char *, size_t), void *arg)
{
	struct dockerimg_http *h = util_xcalloc(1, sizeof(*h));

	h->body = body;
	h->arg = arg;
	return h;
}

void dockerimg_http_free(struct dockerimg_http *h)
{
	if (!h)
		return;
	strbuf_fini(&h->line);
	free(h);
}

static int http_rc(const struct dockerimg_http *h)
{
	if (h->st == H_ERROR)
		return DOCKERIMG_HTTP_ERROR;
	return h->st == H_DONE ? DOCKERIMG_HTTP_DONE : DOCKERIMG_HTTP_MORE;
}

static void http_fail(struct dockerimg_http *h, const char *why)
{
	h->st = H_ERROR;
	h->err = why;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int hex_val(char c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool name_is(const char *p, size_t n, const char *name)
{
	return n == strlen(name) && strncasecmp(p, name, n) == 0;
}

/* One header line [p, p+n) without its CRLF; only the framing matters. */
static void http_header(struct dockerimg_http *h, const char *p, size_t n,
			bool *chunked, bool *has_len, uint64_t *len)
{
	const char *colon = memchr(p, ':', n), *v, *end = p + n;
	uint64_t cl = 0;

	if (!colon || colon == p) {
		http_fail(h, "malformed header line");
		return;
	}
	for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (name_is(p, (size_t)(colon - p), "transfer-encoding")) {
		/* chunked alone: any other coding (gzip, ...) would have to be
		 * undone first, and dockerd never sends one */
		if (end - v == 7 && strncasecmp(v, "chunked", 7) == 0)
			*chunked = true;
		else
			http_fail(h, "unsupported transfer coding");
	} else if (name_is(p, (size_t)(colon - p), "content-length")) {
		if (v == end || end - v > 18) {
			http_fail(h, "bad Content-Length");
			return;
		}
		for (const char *q = v; q < end; q++) {
			if (!is_digit(*q)) {
				http_fail(h, "bad Content-Length");
				return;
			}
			cl = cl * 10 + (uint64_t)(*q - '0');
		}
		if (*has_len && *len != cl)
			http_fail(h, "conflicting Content-Length");
		*has_len = true;
		*len = cl;
	}
}

/* The head is in h->line, ending with CRLF CRLF, and holds no NUL. */
static void http_parse_head(struct dockerimg_http *h)
{
	const char *s = h->line.buf, *eol = strstr(s, "\r\n");
	bool chunked = false, has_len = false;
	uint64_t len = 0;
	int status;

	/* "HTTP/1.x NNN[ reason]" */
	if (eol - s < 12 || strncmp(s, "HTTP/1.", 7) != 0 || !is_digit(s[7]) ||
	    s[8] != ' ' || !is_digit(s[9]) || !is_digit(s[10]) ||
	    !is_digit(s[11]) || (eol - s > 12 && s[12] != ' ')) {
		http_fail(h, "not an HTTP/1 status line");
		return;
	}
	status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
	for (s = eol + 2; h->st != H_ERROR; s = eol + 2) {
		eol = strstr(s, "\r\n");
		if (eol == s)
			break; /* the empty line */
		http_header(h, s, (size_t)(eol - s), &chunked, &has_len, &len);
	}
	if (h->st == H_ERROR)
		return;
	strbuf_reset(&h->line);
	if (status < 200) {
		http_fail(h, "informational response");
		return;
	}
	h->status = status;
	if (status == 204 || status == 304) {
		h->st = H_DONE;
	} else if (chunked) {
		/* Transfer-Encoding overrides Content-Length (RFC 9112 §6.3) */
		h->st = H_SIZE;
	} else if (has_len) {
		h->left = len;
		h->st = len ? H_LENGTH : H_DONE;
	} else {
		h->st = H_UNTIL_EOF;
	}
}

static size_t http_head_feed(struct dockerimg_http *h, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (h->line.len >= DOCKERIMG_HTTP_HEAD_MAX) {
			http_fail(h, "response head too large");
			return n;
		}
		if (p[i] == '\0') {
			http_fail(h, "NUL in the response head");
			return n;
		}
		strbuf_addc(&h->line, p[i]);
		if (h->line.len >= 4 &&
		    memcmp(h->line.buf + h->line.len - 4, "\r\n\r\n", 4) == 0) {
			http_parse_head(h);
			return i + 1;
		}
	}
	return n;
}

/* "HEX[ ][;ext]" (the CRLF already removed). */
static void http_chunk_size(struct dockerimg_http *h, const char *s, size_t n)
{
	uint64_t v = 0;
	size_t i = 0;

	for (; i < n && hex_val(s[i]) >= 0; i++) {
		if (i == 15) {
			http_fail(h, "chunk size too large");
			return;
		}
		v = v << 4 | (uint64_t)hex_val(s[i]);
	}
	if (i == 0) {
		http_fail(h, "bad chunk size");
		return;
	}
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i < n && s[i] != ';') {
		http_fail(h, "bad chunk size");
		return;
	}
	if (v == 0) {
		h->st = H_TRAILER;
		h->trailer_bytes = 0;
	} else {
		h->left = v;
		h->st = H_DATA;
	}
}

/* Chunk-size and trailer lines, which may arrive in pieces. */
static size_t http_line_feed(struct dockerimg_http *h, const char *p, size_t n)
{
	const char *nl = memchr(p, '\n', n);
	size_t take = nl ? (size_t)(nl - p) + 1 : n;
	size_t limit = h->st == H_SIZE ?
			       DIMG_CHUNK_LINE_MAX :
			       DOCKERIMG_HTTP_HEAD_MAX - h->trailer_bytes;
	const char *s;
	size_t len;

	if (h->line.len + take > limit) {
		http_fail(h, h->st == H_SIZE ? "chunk-size line too long" :
					       "trailer too large");
		return n;
	}
	strbuf_add(&h->line, p, take);
	if (!nl)
		return take;
	s = h->line.buf;
	len = h->line.len;
	if (len < 2 || s[len - 2] != '\r') {
		http_fail(h, "line not ended by CRLF");
		return n;
	}
	len -= 2;
	if (h->st == H_SIZE)
		http_chunk_size(h, s, len);
	else if (len == 0)
		h->st = H_DONE;
	else
		h->trailer_bytes += len + 2;
	strbuf_reset(&h->line);
	return take;
}

static size_t http_data_feed(struct dockerimg_http *h, const char *p, size_t n)
{
	size_t take = n;

	if (h->st != H_UNTIL_EOF && h->left < take)
		take = (size_t)h->left;
	if (h->body(h->arg, p, take) < 0) {
		http_fail(h, "body refused");
		return n;
	}
	if (h->st == H_UNTIL_EOF)
		return take;
	h->left -= take;
	if (h->left == 0) {
		h->st = h->st == H_DATA ? H_DATA_END : H_DONE;
		h->crlf = 0;
	}
	return take;
}

int dockerimg_http_feed(struct dockerimg_http *h, const char *p, size_t n)
{
	while (n > 0 && h->st != H_DONE && h->st != H_ERROR) {
		size_t used;

		switch (h->st) {
		case H_HEAD:
			used = http_head_feed(h, p, n);
			break;
		case H_SIZE:
		case H_TRAILER:
			used = http_line_feed(h, p, n);
			break;
		case H_DATA_END:
			if (*p != "\r\n"[h->crlf]) {
				http_fail(h, "chunk data not followed by CRLF");
				return DOCKERIMG_HTTP_ERROR;
			}
			if (++h->crlf == 2)
				h->st = H_SIZE;
			used = 1;
			break;
		default:
			used = http_data_feed(h, p, n);
			break;
		}
		p += used;
		n -= used;
	}
	return http_rc(h);
}

int dockerimg_http_eof(struct dockerimg_http *h)
{
	if (h->st == H_UNTIL_EOF)
		h->st = H_DONE;
	else if (h->st != H_DONE && h->st != H_ERROR)
		http_fail(h, h->st == H_HEAD && h->line.len == 0 ?
				     "closed before a response" :
				     "closed in the middle of a response");
	return http_rc(h);
}

int dockerimg_http_status(const struct dockerimg_http *h)
{
	return h->status;
}

const char *dockerimg_http_error(const struct dockerimg_http *h)
{
	return h->st == H_ERROR ? h->err : NULL;
}

/* ---- the cache ------------------------------------------------------------ */

enum entry_state {
	E_PRESENT, /* image known */
	E_PENDING, /* queued for a lookup */
	E_ABSENT, /* dockerd does not know it (until expires_ms) */
};

struct entry {
	struct entry *prev, *next; /* recency: lru_head is the oldest */
	char id[DOCKERIMG_ID_LEN + 1];
	enum entry_state state;
	char *image; /* E_PRESENT */
	uint64_t gen; /* the session list that last named it */
	uint64_t expires_ms; /* E_ABSENT */
};

struct dockerimg {
	struct dockerimg_opts o;
	char *path;
	pthread_t thread;
	bool started;
	int wake_fd; /* eventfd: an id was queued */
	int stop_fd; /* eventfd: dockerimg_free was called */
	atomic_bool stopping;

	pthread_mutex_t lock; /* guards everything below, never across I/O */
	struct hmap map; /* id -> struct entry */
	struct entry *lru_head, *lru_tail;
	char queue[DIMG_QUEUE_MAX][DOCKERIMG_ID_LEN + 1];
	size_t qhead, qlen;
	uint64_t gen;
	struct dockerimg_stats st;

	/* the thread's own */
	struct strbuf evbuf; /* event stream bytes not yet a full line */
	bool said_down; /* "unreachable" was reported for this outage */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void dimg_log(const struct dockerimg *d, const char *fmt, ...)
	PRINTF(2, 3);

static void dimg_log(const struct dockerimg *d, const char *fmt, ...)
{
	va_list ap;

	if (d->o.quiet)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "dockerimg: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void lru_unlink(struct dockerimg *d, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		d->lru_head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		d->lru_tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_append(struct dockerimg *d, struct entry *e)
{
	e->prev = d->lru_tail;
	e->next = NULL;
	if (d->lru_tail)
		d->lru_tail->next = e;
	else
		d->lru_head = e;
	d->lru_tail = e;
}

static void cache_drop(struct dockerimg *d, struct entry *e)
{
	hmap_del(&d->map, e->id, DOCKERIMG_ID_LEN);
	lru_unlink(d, e);
	free(e->image);
	free(e);
}

/* The entry of id, created (evicting the least recently used) if absent,
 * and made the most recent. */
static struct entry *cache_slot(struct dockerimg *d, const char *id)
{
	struct entry *e = hmap_get(&d->map, id, DOCKERIMG_ID_LEN);
	bool created;

	if (e) {
		lru_unlink(d, e);
		lru_append(d, e);
		return e;
	}
	while (d->map.count >= d->o.max_entries && d->lru_head)
		cache_drop(d, d->lru_head);
	e = util_xcalloc(1, sizeof(*e));
	memcpy(e->id, id, DOCKERIMG_ID_LEN);
	*hmap_slot(&d->map, e->id, DOCKERIMG_ID_LEN, &created) = e;
	lru_append(d, e);
	return e;
}

static void cache_present(struct dockerimg *d, const char *id,
			  const char *image, size_t len)
{
	struct entry *e = cache_slot(d, id);

	free(e->image);
	e->image = util_xstrndup(image, len);
	e->state = E_PRESENT;
	e->gen = d->gen;
}

static void cache_absent(struct dockerimg *d, const char *id)
{
	struct entry *e = cache_slot(d, id);

	free(e->image);
	e->image = NULL;
	e->state = E_ABSENT;
	e->expires_ms = now_ms() + d->o.negative_ttl_ms;
}

static void cache_forget(struct dockerimg *d, const char *id)
{
	struct entry *e = hmap_get(&d->map, id, DOCKERIMG_ID_LEN);

	if (e)
		cache_drop(d, e);
}

/* After a full list: containers it did not name are gone. */
static void cache_sweep(struct dockerimg *d)
{
	struct entry *e = d->lru_head, *next;

	for (; e; e = next) {
		next = e->next;
		if (e->state == E_PRESENT && e->gen != d->gen)
			cache_drop(d, e);
	}
}

/* Queues id for a lookup (lock held).  Returns true if the thread must be
 * woken. */
static bool queue_push(struct dockerimg *d, const char *id)
{
	struct entry *e;

	if (d->qlen == DIMG_QUEUE_MAX)
		return false; /* a later get asks again */
	memcpy(d->queue[(d->qhead + d->qlen) % DIMG_QUEUE_MAX], id,
	       DOCKERIMG_ID_LEN + 1);
	d->qlen++;
	e = cache_slot(d, id);
	free(e->image);
	e->image = NULL;
	e->state = E_PENDING;
	return true;
}

char *dockerimg_get(struct dockerimg *d, const char *id)
{
	uint64_t one = 1;
	struct entry *e;
	char *res = NULL;
	bool wake = false;

	if (!is_id(id, strnlen(id, DOCKERIMG_ID_LEN + 1)))
		return NULL;
	pthread_mutex_lock(&d->lock);
	e = hmap_get(&d->map, id, DOCKERIMG_ID_LEN);
	if (e && e->state == E_PRESENT) {
		res = util_xstrdup(e->image);
		lru_unlink(d, e);
		lru_append(d, e);
		d->st.hits++;
	} else {
		d->st.misses++;
		if (!e || (e->state == E_ABSENT && now_ms() >= e->expires_ms))
			wake = queue_push(d, id);
	}
	pthread_mutex_unlock(&d->lock);
	/* an eventfd write never blocks: the counter cannot fill up here */
	if (wake && write(d->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		dimg_log(d, "wake: %s", strerror(errno));
	return res;
}

static void count_present(const char *key, void *value, void *arg)
{
	const struct entry *e = value;

	(void)key;
	if (e->state == E_PRESENT)
		(*(size_t *)arg)++;
}

void dockerimg_stats(struct dockerimg *d, struct dockerimg_stats *s)
{
	pthread_mutex_lock(&d->lock);
	*s = d->st;
	s->entries = 0;
	hmap_foreach(&d->map, count_present, &s->entries);
	pthread_mutex_unlock(&d->lock);
}

static void count_error(struct dockerimg *d)
{
	pthread_mutex_lock(&d->lock);
	d->st.errors++;
	pthread_mutex_unlock(&d->lock);
}

/* ---- JSON from dockerd ---------------------------------------------------- */

/* obj[key] as a string of *len bytes, or NULL. */
static const char *jstr(const json_t *obj, const char *key, size_t *len)
{
	const json_t *v = json_object_get(obj, key);

	if (!json_is_string(v))
		return NULL;
	*len = json_string_length(v);
	return json_string_value(v);
}

/* A name fit for a log line and a policy match: bounded, no controls. */
static bool image_ok(const char *s, size_t n)
{
	if (!s || n == 0 || n > DOCKERIMG_IMAGE_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	}
	return true;
}

/*
 * Applies a /containers/json answer (lock held): every element's Id ->
 * Image.  A full list (want NULL) starts a generation and drops what it
 * does not name; a lookup (want set) marks want absent if not named.
 * Returns the number of containers taken, or -1 if it is not a list.
 */
static int apply_list(struct dockerimg *d, const json_t *list, const char *want)
{
	bool seen = false;
	size_t i, idn = 0, imn = 0;
	const json_t *c;
	int n = 0;

	if (!json_is_array(list))
		return -1;
	if (!want)
		d->gen++;
	json_array_foreach(list, i, c)
	{
		const char *id = jstr(c, "Id", &idn);
		const char *image = jstr(c, "Image", &imn);

		if (!id || !is_id(id, idn) || !image_ok(image, imn) ||
		    (want && strcmp(id, want) != 0))
			continue;
		cache_present(d, id, image, imn);
		seen = true;
		n++;
	}
	if (!want)
		cache_sweep(d);
	else if (!seen)
		cache_absent(d, want);
	return n;
}

/*
 * One line of the event stream (thread).  Current dockerd sends Type,
 * Action and Actor{ID, Attributes{image}}; older ones status, id and from,
 * which are still sent and used as a fallback.
 */
static void apply_event(struct dockerimg *d, const char *line, size_t n)
{
	size_t tn = 0, an = 0, idn = 0, imn = 0;
	const char *type, *action, *id, *image;
	const json_t *actor, *attrs;
	json_t *ev;
	bool blank = true;

	for (size_t i = 0; i < n && blank; i++)
		blank = line[i] == ' ' || line[i] == '\t' || line[i] == '\r';
	if (blank)
		return;
	ev = json_loadb(line, n, 0, NULL);
	pthread_mutex_lock(&d->lock);
	if (!json_is_object(ev)) {
		d->st.errors++;
		goto out;
	}
	actor = json_object_get(ev, "Actor");
	attrs = json_object_get(actor, "Attributes");
	type = jstr(ev, "Type", &tn);
	if (!(action = jstr(ev, "Action", &an)))
		action = jstr(ev, "status", &an);
	if (!(id = jstr(actor, "ID", &idn)))
		id = jstr(ev, "id", &idn);
	if (!(image = jstr(attrs, "image", &imn)))
		image = jstr(ev, "from", &imn);
	if ((type && strcmp(type, "container") != 0) || !action)
		goto out; /* not asked for: ignored */
	if (!id || !is_id(id, idn)) {
		d->st.errors++;
	} else if (strcmp(action, "create") == 0) {
		if (image_ok(image, imn)) {
			cache_present(d, id, image, imn);
			d->st.events++;
		} else {
			d->st.errors++;
		}
	} else if (strcmp(action, "destroy") == 0) {
		cache_forget(d, id);
		d->st.events++;
	}
out:
	pthread_mutex_unlock(&d->lock);
	json_decref(ev);
}

/* Applies every complete line of d->evbuf; the rest stays.  -1: a line
 * longer than any event. */
static int apply_lines(struct dockerimg *d)
{
	char *buf = d->evbuf.buf;
	size_t len = d->evbuf.len, start = 0;
	const char *nl;

	if (!buf)
		return 0;
	while ((nl = memchr(buf + start, '\n', len - start))) {
		apply_event(d, buf + start, (size_t)(nl - (buf + start)));
		start = (size_t)(nl - buf) + 1;
	}
	memmove(buf, buf + start, len - start);
	d->evbuf.len = len - start;
	buf[d->evbuf.len] = '\0';
	return d->evbuf.len > DIMG_EVENT_LINE_MAX ? -1 : 0;
}

/* ---- I/O (thread) --------------------------------------------------------- */

static bool stopping(struct dockerimg *d)
{
	return atomic_load(&d->stopping);
}

/*
 * Waits until fd is ready for events, deadline (now_ms; 0: none) passes
 * or dockerimg_free is called.  Returns 0, or -1 with errno ETIMEDOUT or
 * ECANCELED.
 */
static int wait_fd(struct dockerimg *d, int fd, short events, uint64_t deadline)
{
	struct pollfd p[2] = { { .fd = fd, .events = events },
			       { .fd = d->stop_fd, .events = POLLIN } };

	for (;;) {
		uint64_t now = now_ms();
		int timeout = -1, n;

		if (deadline) {
			if (now >= deadline) {
				errno = ETIMEDOUT;
				return -1;
			}
			timeout = (int)(deadline - now);
		}
		n = poll(p, 2, timeout);
		if (n < 0 && errno != EINTR)
			return -1;
		if (stopping(d)) {
			errno = ECANCELED;
			return -1;
		}
		if (n > 0 && p[0].revents)
			return 0;
	}
}

static int dimg_connect(struct dockerimg *d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, e;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	memcpy(sa.sun_path, d->path, strlen(d->path) + 1);
	/* AF_UNIX connects at once or fails (EAGAIN: backlog full) */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int send_all(struct dockerimg *d, int fd, const char *p, size_t n,
		    uint64_t deadline)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (wait_fd(d, fd, POLLOUT, deadline) < 0)
				return -1;
			continue;
		}
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void url_escape(struct strbuf *sb, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    is_digit((char)c) || c == '-' || c == '_' || c == '.' ||
		    c == '~')
			strbuf_addc(sb, (char)c);
		else
			strbuf_addf(sb, "%%%02X", c);
	}
}

/* Connects and sends GET target; returns the fd or -1 with errno set. */
static int send_get(struct dockerimg *d, const char *target, uint64_t deadline)
{
	struct strbuf req = { 0 };
	int fd = dimg_connect(d), e;

	if (fd < 0)
		return -1;
	/* Go's server refuses HTTP/1.1 without Host; the name is unused */
	strbuf_addf(&req,
		    "GET %s HTTP/1.1\r\nHost: docker\r\n"
		    "User-Agent: egressd\r\nAccept: application/json\r\n"
		    "Connection: close\r\n\r\n",
		    target);
	if (send_all(d, fd, req.buf, req.len, deadline) < 0) {
		e = errno;
		close(fd);
		strbuf_fini(&req);
		errno = e;
		return -1;
	}
	strbuf_fini(&req);
	return fd;
}

/*
 * Reads from fd into h until rc is reached (DONE, or the head is read if
 * head_only), the deadline passes or the peer closes.  Returns the parser's
 * rc; *why says what failed.
 */
static int read_response(struct dockerimg *d, int fd, struct dockerimg_http *h,
			 bool head_only, uint64_t deadline, const char **why)
{
	char buf[DIMG_READ_BUF];
	int rc = DOCKERIMG_HTTP_MORE;

	while (rc == DOCKERIMG_HTTP_MORE &&
	       !(head_only && dockerimg_http_status(h))) {
		ssize_t n;

		if (wait_fd(d, fd, POLLIN, deadline) < 0) {
			*why = errno == ETIMEDOUT ? "timed out" : "stopped";
			return DOCKERIMG_HTTP_ERROR;
		}
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0) {
			*why = strerror(errno);
			return DOCKERIMG_HTTP_ERROR;
		}
		rc = n == 0 ? dockerimg_http_eof(h) :
			      dockerimg_http_feed(h, buf, (size_t)n);
	}
	if (rc == DOCKERIMG_HTTP_ERROR)
		*why = dockerimg_http_error(h);
	return rc;
}

static int body_to_buf(void *arg, const char *p, size_t n)
{
	struct strbuf *sb = arg;

	if (sb->len + n > DIMG_BODY_MAX)
		return -1;
	strbuf_add(sb, p, n);
	return 0;
}

/*
 * GET target on a connection of its own, within io_timeout_ms; the 200
 * answer's JSON into *out.  Returns 0, or -1 after saying why (errors are
 * counted by the caller).
 */
static int get_json(struct dockerimg *d, const char *target, json_t **out,
		    const char **why)
{
	uint64_t deadline = now_ms() + d->o.io_timeout_ms;
	struct strbuf body = { 0 };
	struct dockerimg_http *h;
	int fd, rc;

	*out = NULL;
	fd = send_get(d, target, deadline);
	if (fd < 0) {
		*why = strerror(errno);
		return -1;
	}
	h = dockerimg_http_new(body_to_buf, &body);
	rc = read_response(d, fd, h, false, deadline, why);
	close(fd);
	if (rc == DOCKERIMG_HTTP_DONE && dockerimg_http_status(h) != 200) {
		*why = "HTTP status other than 200";
		rc = DOCKERIMG_HTTP_ERROR;
	}
	if (rc == DOCKERIMG_HTTP_DONE) {
		*out = json_loadb(strbuf_str(&body), body.len, 0, NULL);
		if (!*out)
			*why = "malformed JSON";
	}
	dockerimg_http_free(h);
	strbuf_fini(&body);
	return *out ? 0 : -1;
}

static int body_to_events(void *arg, const char *p, size_t n)
{
	struct dockerimg *d = arg;

	strbuf_add(&d->evbuf, p, n);
	return 0;
}

/* ---- the thread ----------------------------------------------------------- */

/* Lists every container into the cache; returns how many, or -1. */
static int full_list(struct dockerimg *d, const char **why)
{
	json_t *list;
	int n;

	if (get_json(d, "/containers/json?all=1", &list, why) < 0)
		return -1;
	pthread_mutex_lock(&d->lock);
	n = apply_list(d, list, NULL);
	pthread_mutex_unlock(&d->lock);
	json_decref(list);
	if (n < 0)
		*why = "the container list is not a JSON array";
	return n;
}

static void lookup_one(struct dockerimg *d, const char *id)
{
	struct strbuf target = { 0 }, filter = { 0 };
	const char *why = NULL;
	json_t *list = NULL;
	int rc;

	strbuf_addf(&filter, "{\"id\":[\"%s\"]}", id);
	strbuf_adds(&target, "/containers/json?all=1&filters=");
	url_escape(&target, filter.buf);
	rc = get_json(d, target.buf, &list, &why);
	pthread_mutex_lock(&d->lock);
	d->st.lookups++;
	if (rc == 0)
		rc = apply_list(d, list, id);
	if (rc < 0) {
		struct entry *e = hmap_get(&d->map, id, DOCKERIMG_ID_LEN);
		d->st.errors++;
		/* unanswered: the next get asks again */
		if (e && e->state == E_PENDING)
			cache_drop(d, e);
	}
	pthread_mutex_unlock(&d->lock);
	json_decref(list);
	strbuf_fini(&target);
	strbuf_fini(&filter);
}

static void run_queue(struct dockerimg *d)
{
	while (!stopping(d)) {
		char id[DOCKERIMG_ID_LEN + 1];
		struct entry *e;
		bool have = false, ask = false;

		pthread_mutex_lock(&d->lock);
		if (d->qlen) {
			memcpy(id, d->queue[d->qhead], sizeof(id));
			d->qhead = (d->qhead + 1) % DIMG_QUEUE_MAX;
			d->qlen--;
			e = hmap_get(&d->map, id, DOCKERIMG_ID_LEN);
			/* the list or an event may have answered it */
			ask = !e || e->state == E_PENDING;
			have = true;
		}
		pthread_mutex_unlock(&d->lock);
		if (!have)
			return;
		if (ask)
			lookup_one(d, id);
	}
}

/* Resets the wake eventfd; the queue itself says what to do. */
static void drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		perror("dockerimg: wake");
}

/* Follows the event stream until it ends or the module stops. */
static void follow(struct dockerimg *d, int fd, struct dockerimg_http *h)
{
	struct pollfd p[3] = { { .fd = fd, .events = POLLIN },
			       { .fd = d->wake_fd, .events = POLLIN },
			       { .fd = d->stop_fd, .events = POLLIN } };
	char buf[DIMG_READ_BUF];
	const char *why = NULL;

	while (!why) {
		ssize_t n;
		int rc;

		run_queue(d);
		if (poll(p, 3, -1) < 0 && errno != EINTR) {
			why = strerror(errno);
			break;
		}
		if (stopping(d))
			return;
		if (p[1].revents)
			drain(d->wake_fd);
		if (!p[0].revents)
			continue;
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0) {
			why = strerror(errno);
			break;
		}
		rc = n == 0 ? dockerimg_http_eof(h) :
			      dockerimg_http_feed(h, buf, (size_t)n);
		if (apply_lines(d) < 0) {
			why = "an event line too long";
			count_error(d);
		} else if (rc == DOCKERIMG_HTTP_ERROR) {
			why = dockerimg_http_error(h);
			count_error(d);
		} else if (rc == DOCKERIMG_HTTP_DONE || n == 0) {
			why = "dockerd ended the event stream";
		}
	}
	dimg_log(d, "%s: %s; reconnecting", d->path, why);
}

/*
 * Opens the event stream (create/destroy of containers) and reads its
 * head; bytes after the head wait in d->evbuf.  Returns the fd or -1.
 */
static int open_stream(struct dockerimg *d, struct dockerimg_http *h,
		       const char **why)
{
	static const char filter[] =
		"{\"type\":[\"container\"],\"event\":[\"create\",\"destroy\"]}";
	uint64_t deadline = now_ms() + d->o.io_timeout_ms;
	struct strbuf target = { 0 };
	int fd;

	strbuf_reset(&d->evbuf);
	strbuf_adds(&target, "/events?filters=");
	url_escape(&target, filter);
	fd = send_get(d, target.buf, deadline);
	strbuf_fini(&target);
	if (fd < 0) {
		*why = strerror(errno);
		return -1;
	}
	if (read_response(d, fd, h, true, deadline, why) ==
	    DOCKERIMG_HTTP_ERROR) {
		close(fd);
		return -1;
	}
	if (dockerimg_http_status(h) != 200) {
		*why = "the event stream was refused";
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * One session: open the event stream, list every container, then follow
 * the stream.  Returns true if it got as far as following.
 */
static bool session(struct dockerimg *d)
{
	struct dockerimg_http *h = dockerimg_http_new(body_to_events, d);
	const char *why = "?";
	int fd, n = -1;

	fd = open_stream(d, h, &why);
	if (fd >= 0)
		n = full_list(d, &why);
	if (n < 0) {
		if (!stopping(d)) {
			count_error(d);
			if (!d->said_down)
				dimg_log(d, "%s: %s; retrying", d->path, why);
			d->said_down = true;
		}
		if (fd >= 0)
			close(fd);
		dockerimg_http_free(h);
		return false;
	}
	pthread_mutex_lock(&d->lock);
	d->st.connects++;
	d->st.connected = true;
	pthread_mutex_unlock(&d->lock);
	d->said_down = false;
	dimg_log(d, "%s: following dockerd (%d containers)", d->path, n);
	/* events that came with the stream's head, applied after the list */
	if (apply_lines(d) == 0)
		follow(d, fd, h);
	else
		count_error(d);
	pthread_mutex_lock(&d->lock);
	d->st.connected = false;
	pthread_mutex_unlock(&d->lock);
	close(fd);
	dockerimg_http_free(h);
	return true;
}

/* Sleeps ms, unless dockerimg_free is called; -1 then. */
static int pause_ms(struct dockerimg *d, unsigned ms)
{
	struct pollfd p = { .fd = d->stop_fd, .events = POLLIN };
	uint64_t end = now_ms() + ms, now;

	while (!stopping(d) && (now = now_ms()) < end) {
		if (poll(&p, 1, (int)(end - now)) < 0 && errno != EINTR)
			break;
	}
	return stopping(d) ? -1 : 0;
}

static void *dimg_main(void *arg)
{
	struct dockerimg *d = arg;
	unsigned backoff = d->o.backoff_min_ms;
	bool first = true;

	while (!stopping(d)) {
		uint64_t began = now_ms();

		if (!first) {
			pthread_mutex_lock(&d->lock);
			d->st.reconnects++;
			pthread_mutex_unlock(&d->lock);
		}
		first = false;
		if (session(d) && now_ms() - began >= d->o.stable_ms)
			backoff = d->o.backoff_min_ms;
		if (pause_ms(d, backoff) < 0)
			break;
		backoff = backoff > d->o.backoff_max_ms / 2 ?
				  d->o.backoff_max_ms :
				  backoff * 2;
	}
	return NULL;
}

/* ---- life cycle ----------------------------------------------------------- */

struct dockerimg *dockerimg_new(const char *socket_path)
{
	struct dockerimg_opts o = { .socket_path = socket_path };

	return dockerimg_new_opts(&o);
}

struct dockerimg *dockerimg_new_opts(const struct dockerimg_opts *o)
{
	const char *path = o->socket_path ? o->socket_path :
					    DOCKERIMG_SOCKET_DEFAULT;
	struct sockaddr_un sa;
	struct dockerimg *d;
	int err;

	if (strlen(path) >= sizeof(sa.sun_path) || !*path) {
		errno = EINVAL;
		return NULL;
	}
	d = util_xcalloc(1, sizeof(*d));
	d->o = *o;
	d->path = util_xstrdup(path);
	d->o.socket_path = d->path;
	if (!d->o.max_entries)
		d->o.max_entries = 4096;
	if (!d->o.backoff_min_ms)
		d->o.backoff_min_ms = 250;
	if (!d->o.backoff_max_ms)
		d->o.backoff_max_ms = 5000;
	if (d->o.backoff_max_ms < d->o.backoff_min_ms)
		d->o.backoff_max_ms = d->o.backoff_min_ms;
	if (!d->o.io_timeout_ms)
		d->o.io_timeout_ms = 2000;
	if (!d->o.stable_ms)
		d->o.stable_ms = 10000;
	if (!d->o.negative_ttl_ms)
		d->o.negative_ttl_ms = 60000;
	pthread_mutex_init(&d->lock, NULL);
	d->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	d->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->wake_fd < 0 || d->stop_fd < 0)
		goto fail;
	errno = pthread_create(&d->thread, NULL, dimg_main, d);
	if (errno)
		goto fail;
	d->started = true;
	return d;
fail:
	err = errno;
	dockerimg_free(d);
	errno = err;
	return NULL;
}

void dockerimg_free(struct dockerimg *d)
{
	uint64_t one = 1;

	if (!d)
		return;
	if (d->started) {
		atomic_store(&d->stopping, true);
		if (write(d->stop_fd, &one, sizeof(one)) < 0)
			perror("dockerimg: stop");
		pthread_join(d->thread, NULL);
	}
	while (d->lru_head)
		cache_drop(d, d->lru_head);
	hmap_fini(&d->map);
	if (d->wake_fd >= 0)
		close(d->wake_fd);
	if (d->stop_fd >= 0)
		close(d->stop_fd);
	pthread_mutex_destroy(&d->lock);
	strbuf_fini(&d->evbuf);
	free(d->path);
	free(d);
}
