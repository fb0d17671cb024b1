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
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "hmap.h"
#include "httpresp.h"
#include "util.h"

/* A list of every container is a few KiB per container. */
#define DIMG_BODY_MAX (32u << 20)
/* One event is well under 4 KiB; a longer line is not dockerd talking. */
#define DIMG_EVENT_LINE_MAX (256u << 10)
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
		    (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		    c == '.' || c == '~')
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
static int read_response(struct dockerimg *d, int fd, struct httpresp *h,
			 bool head_only, uint64_t deadline, const char **why)
{
	char buf[DIMG_READ_BUF];
	int rc = HTTPRESP_MORE;

	while (rc == HTTPRESP_MORE && !(head_only && httpresp_status(h))) {
		ssize_t n;

		if (wait_fd(d, fd, POLLIN, deadline) < 0) {
			*why = errno == ETIMEDOUT ? "timed out" : "stopped";
			return HTTPRESP_ERROR;
		}
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0) {
			*why = strerror(errno);
			return HTTPRESP_ERROR;
		}
		rc = n == 0 ? httpresp_eof(h) :
			      httpresp_feed(h, buf, (size_t)n);
	}
	if (rc == HTTPRESP_ERROR)
		*why = httpresp_error(h);
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
	struct httpresp *h;
	int fd, rc;

	*out = NULL;
	fd = send_get(d, target, deadline);
	if (fd < 0) {
		*why = strerror(errno);
		return -1;
	}
	h = httpresp_new(body_to_buf, &body);
	rc = read_response(d, fd, h, false, deadline, why);
	close(fd);
	if (rc == HTTPRESP_DONE && httpresp_status(h) != 200) {
		*why = "HTTP status other than 200";
		rc = HTTPRESP_ERROR;
	}
	if (rc == HTTPRESP_DONE) {
		*out = json_loadb(strbuf_str(&body), body.len, 0, NULL);
		if (!*out)
			*why = "malformed JSON";
	}
	httpresp_free(h);
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
static void follow(struct dockerimg *d, int fd, struct httpresp *h)
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
		rc = n == 0 ? httpresp_eof(h) :
			      httpresp_feed(h, buf, (size_t)n);
		if (apply_lines(d) < 0) {
			why = "an event line too long";
			count_error(d);
		} else if (rc == HTTPRESP_ERROR) {
			why = httpresp_error(h);
			count_error(d);
		} else if (rc == HTTPRESP_DONE || n == 0) {
			why = "dockerd ended the event stream";
		}
	}
	dimg_log(d, "%s: %s; reconnecting", d->path, why);
}

/*
 * Opens the event stream (create/destroy of containers) and reads its
 * head; bytes after the head wait in d->evbuf.  Returns the fd or -1.
 */
static int open_stream(struct dockerimg *d, struct httpresp *h,
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
	if (read_response(d, fd, h, true, deadline, why) == HTTPRESP_ERROR) {
		close(fd);
		return -1;
	}
	if (httpresp_status(h) != 200) {
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
	struct httpresp *h = httpresp_new(body_to_events, d);
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
		httpresp_free(h);
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
	httpresp_free(h);
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
