/*
 * fakedocker.c - the fake dockerd of the unit suites (see fakedocker.h).
 *
 * One thread accepts and serves each connection to the end of its answer;
 * an event stream stays open (its fd kept) until the test or the next
 * stream ends it.  Answers are written with blocking sends: the client
 * under test reads them, or closes and the send fails, which is ignored.
 */
#include "fakedocker.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cdefs.h"
#include "util.h"

#define FD_HELD_MAX 16

struct fakedocker {
	char path[108];
	int lfd;
	int stop_fd;
	pthread_t thread;
	pthread_mutex_t lock; /* guards everything below */
	enum fakedocker_mode mode;
	json_t *containers; /* [{Id, Image, listed}] */
	int counts[FAKEDOCKER_REQ_MAX];
	char *last_filter;
	int stream_fd;
	int held[FD_HELD_MAX]; /* SILENT connections, closed at stop */
	size_t nheld;
};

static void send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void send_str(int fd, const char *s)
{
	send_all(fd, s, strlen(s));
}

/* The request head, read until CRLF CRLF (1 s at most). */
static char *read_request(int fd)
{
	struct timeval tv = { .tv_sec = 1 };
	struct strbuf sb = { 0 };
	char c;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (sb.len < 65536 && read(fd, &c, 1) == 1) {
		strbuf_addc(&sb, c);
		if (sb.len >= 4 && strcmp(sb.buf + sb.len - 4, "\r\n\r\n") == 0)
			return strbuf_steal(&sb);
	}
	strbuf_fini(&sb);
	return NULL;
}

/* Percent-decodes s[0..n) (the query value is sent escaped). */
static char *unescape(const char *s, size_t n)
{
	struct strbuf sb = { 0 };

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && util_hex_val(s[i + 1]) >= 0 &&
		    util_hex_val(s[i + 2]) >= 0) {
			strbuf_addc(&sb, (char)(util_hex_val(s[i + 1]) << 4 |
						util_hex_val(s[i + 2])));
			i += 2;
		} else {
			strbuf_addc(&sb, s[i]);
		}
	}
	return strbuf_steal(&sb);
}

/* The "filters" query value of target, decoded, or NULL. */
static char *filter_of(const char *target)
{
	const char *q = strstr(target, "filters="), *end;

	if (!q)
		return NULL;
	q += 8;
	end = strchr(q, '&');
	return unescape(q, end ? (size_t)(end - q) : strlen(q));
}

static void answer_json(int fd, json_t *body, bool chunked)
{
	char *text = json_dumps(body, JSON_COMPACT);
	char head[256];
	size_t n = strlen(text), half = n / 2;

	if (chunked) {
		/* two chunks, the JSON split in the middle */
		send_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: "
			     "application/json\r\nTransfer-Encoding: "
			     "chunked\r\n\r\n");
		snprintf(head, sizeof(head), "%zx\r\n", half);
		send_str(fd, head);
		send_all(fd, text, half);
		snprintf(head, sizeof(head), "\r\n%zX;ext=1\r\n", n - half);
		send_str(fd, head);
		send_all(fd, text + half, n - half);
		send_str(fd, "\r\n0\r\nX-Trailer: 1\r\n\r\n");
	} else {
		snprintf(head, sizeof(head),
			 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\n\r\n",
			 n);
		send_str(fd, head);
		send_all(fd, text, n);
	}
	free(text);
}

/* A list answer: every listed container, or those the filter names. */
static json_t *list_body(struct fakedocker *f, const char *filter)
{
	json_t *out = json_array(), *want = NULL, *ids = NULL, *c;
	size_t i;

	if (filter) {
		want = json_loads(filter, 0, NULL);
		ids = json_object_get(want, "id");
	}
	json_array_foreach(f->containers, i, c)
	{
		const char *id = json_string_value(json_object_get(c, "Id"));
		bool take = json_is_true(json_object_get(c, "listed"));

		if (filter) {
			size_t k;
			json_t *v;
			take = false;
			json_array_foreach(ids, k, v)
			{
				if (json_is_string(v) &&
				    strcmp(json_string_value(v), id) == 0)
					take = true;
			}
		}
		if (take)
			json_array_append_new(
				out,
				json_pack("{s:s,s:O,s:[s]}", "Id", id, "Image",
					  json_object_get(c, "Image"), "Names",
					  "/fake"));
	}
	json_decref(want);
	return out;
}

static void misbehave(int fd, enum fakedocker_mode m)
{
	char buf[4096];

	switch (m) {
	case FAKEDOCKER_GARBAGE:
		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = (char)(rand() & 0xff);
		send_all(fd, buf, sizeof(buf));
		break;
	case FAKEDOCKER_HUGE_HEADERS:
		send_str(fd, "HTTP/1.1 200 OK\r\n");
		memset(buf, 'a', sizeof(buf));
		memcpy(buf, "X-Pad: ", 7);
		memcpy(buf + sizeof(buf) - 2, "\r\n", 2);
		for (int i = 0; i < 25; i++)
			send_all(fd, buf, sizeof(buf));
		send_str(fd, "Content-Length: 2\r\n\r\n[]");
		break;
	case FAKEDOCKER_STATUS_500:
		send_str(fd, "HTTP/1.1 500 Internal Server Error\r\n"
			     "Content-Length: 2\r\n\r\n{}");
		break;
	default:
		break;
	}
}

static void serve(struct fakedocker *f, int fd)
{
	char *req = read_request(fd), *filter = NULL;
	enum fakedocker_req kind = FAKEDOCKER_REQ_OTHER;
	enum fakedocker_mode mode;
	char *target, *sp;
	json_t *body = NULL;
	bool keep = false;

	if (!req || strncmp(req, "GET ", 4) != 0 ||
	    !strstr(req, "\r\nHost: ")) {
		send_str(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: "
			     "0\r\n\r\n");
		goto out;
	}
	target = req + 4;
	if (strncmp(target, "/events?", 8) == 0)
		kind = FAKEDOCKER_REQ_EVENTS;
	else if (strncmp(target, "/containers/json?all=1&filters=", 31) == 0)
		kind = FAKEDOCKER_REQ_LOOKUP;
	else if (strncmp(target, "/containers/json?all=1 ", 23) == 0)
		kind = FAKEDOCKER_REQ_LIST;
	sp = strchr(target, ' ');
	if (sp)
		*sp = '\0';
	filter = filter_of(target);

	pthread_mutex_lock(&f->lock);
	f->counts[kind]++;
	mode = f->mode;
	if (kind == FAKEDOCKER_REQ_LOOKUP) {
		free(f->last_filter);
		f->last_filter = util_xstrdup(filter ? filter : "");
	}
	if (kind == FAKEDOCKER_REQ_LIST || kind == FAKEDOCKER_REQ_LOOKUP)
		body = list_body(f,
				 kind == FAKEDOCKER_REQ_LOOKUP ? filter : NULL);
	if (mode == FAKEDOCKER_SILENT && f->nheld < FD_HELD_MAX) {
		f->held[f->nheld++] = fd;
		keep = true;
	}
	pthread_mutex_unlock(&f->lock);

	if (mode == FAKEDOCKER_SILENT || mode == FAKEDOCKER_CLOSE)
		goto out;
	if (mode == FAKEDOCKER_GARBAGE || mode == FAKEDOCKER_HUGE_HEADERS ||
	    mode == FAKEDOCKER_STATUS_500) {
		misbehave(fd, mode);
		goto out;
	}
	switch (kind) {
	case FAKEDOCKER_REQ_LIST:
	case FAKEDOCKER_REQ_LOOKUP:
		if (mode == FAKEDOCKER_BAD_JSON)
			send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n"
				     "\r\n[{\"Id\":\"");
		else
			answer_json(fd, body, kind == FAKEDOCKER_REQ_LOOKUP);
		break;
	case FAKEDOCKER_REQ_EVENTS:
		send_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: "
			     "application/json\r\nTransfer-Encoding: "
			     "chunked\r\n\r\n");
		if (mode == FAKEDOCKER_BAD_CHUNK)
			send_str(fd, "fffffffffffffffffffff\r\n");
		pthread_mutex_lock(&f->lock);
		if (f->stream_fd >= 0)
			close(f->stream_fd);
		f->stream_fd = fd;
		pthread_mutex_unlock(&f->lock);
		keep = true;
		break;
	default:
		send_str(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: "
			     "0\r\n\r\n");
		break;
	}
out:
	if (!keep)
		close(fd);
	json_decref(body);
	free(filter);
	free(req);
}

static void *fake_main(void *arg)
{
	struct fakedocker *f = arg;
	struct pollfd p[2] = { { .fd = f->lfd, .events = POLLIN },
			       { .fd = f->stop_fd, .events = POLLIN } };

	for (;;) {
		int fd;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!p[0].revents)
			continue;
		fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			serve(f, fd);
	}
	return NULL;
}

struct fakedocker *fakedocker_start(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct fakedocker *f = util_xcalloc(1, sizeof(*f));

	snprintf(f->path, sizeof(f->path), "%s", path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	pthread_mutex_init(&f->lock, NULL);
	f->containers = json_array();
	f->stream_fd = -1;
	f->stop_fd = eventfd(0, EFD_CLOEXEC);
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (f->lfd < 0 || f->stop_fd < 0 ||
	    bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(f->lfd, 16) < 0 ||
	    pthread_create(&f->thread, NULL, fake_main, f) != 0) {
		perror("fakedocker_start");
		close(f->lfd);
		close(f->stop_fd);
		json_decref(f->containers);
		free(f);
		return NULL;
	}
	return f;
}

void fakedocker_stop(struct fakedocker *f)
{
	uint64_t one = 1;

	if (!f)
		return;
	if (write(f->stop_fd, &one, sizeof(one)) < 0)
		perror("fakedocker_stop");
	pthread_join(f->thread, NULL);
	close(f->lfd);
	close(f->stop_fd);
	unlink(f->path);
	if (f->stream_fd >= 0)
		close(f->stream_fd);
	for (size_t i = 0; i < f->nheld; i++)
		close(f->held[i]);
	json_decref(f->containers);
	free(f->last_filter);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

void fakedocker_add(struct fakedocker *f, const char *id, const char *image,
		    bool listed)
{
	pthread_mutex_lock(&f->lock);
	json_array_append_new(f->containers,
			      json_pack("{s:s,s:s,s:b}", "Id", id, "Image",
					image, "listed", listed));
	pthread_mutex_unlock(&f->lock);
}

void fakedocker_set_mode(struct fakedocker *f, enum fakedocker_mode m)
{
	pthread_mutex_lock(&f->lock);
	f->mode = m;
	pthread_mutex_unlock(&f->lock);
}

int fakedocker_count(struct fakedocker *f, enum fakedocker_req r)
{
	int n;

	pthread_mutex_lock(&f->lock);
	n = f->counts[r];
	pthread_mutex_unlock(&f->lock);
	return n;
}

char *fakedocker_last_filter(struct fakedocker *f)
{
	char *s;

	pthread_mutex_lock(&f->lock);
	s = util_xstrdup(f->last_filter ? f->last_filter : "");
	pthread_mutex_unlock(&f->lock);
	return s;
}

bool fakedocker_wait_stream(struct fakedocker *f, int ms)
{
	for (int i = 0; i <= ms; i += 5) {
		bool open;

		pthread_mutex_lock(&f->lock);
		open = f->stream_fd >= 0;
		pthread_mutex_unlock(&f->lock);
		if (open)
			return true;
		usleep(5000);
	}
	return false;
}

int fakedocker_raw(struct fakedocker *f, const char *p, size_t n)
{
	int rc = -1;

	pthread_mutex_lock(&f->lock);
	if (f->stream_fd >= 0) {
		send_all(f->stream_fd, p, n);
		rc = 0;
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int fakedocker_event(struct fakedocker *f, const char *json)
{
	struct strbuf sb = { 0 };
	int rc;

	strbuf_addf(&sb, "%zx\r\n%s\n\r\n", strlen(json) + 1, json);
	rc = fakedocker_raw(f, sb.buf, sb.len);
	strbuf_fini(&sb);
	return rc;
}

void fakedocker_close_stream(struct fakedocker *f)
{
	pthread_mutex_lock(&f->lock);
	if (f->stream_fd >= 0)
		close(f->stream_fd);
	f->stream_fd = -1;
	pthread_mutex_unlock(&f->lock);
}
