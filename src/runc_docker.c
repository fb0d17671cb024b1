/*
 * runc_docker.c - asking dockerd for a container's image, for the warning
 * about CA variables the container already sets.
 *
 * A tiny HTTP/1.0 client over the unix socket: one request, the answer read
 * to the end, everything bounded by one deadline.  HTTP/1.0 makes the
 * server close the connection after the answer (Go's net/http then sends
 * no chunked encoding, but the parser accepts it anyway).  The lookup runs
 * while dockerd waits for `runc create`, so it must never wait long: the
 * caller's timeout covers connect, send and receive together.
 */
#include "runc.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "httpresp.h"

#define RESPONSE_MAX (1024 * 1024)

bool runc_is_container_id(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!((s[n] >= '0' && s[n] <= '9') ||
		      (s[n] >= 'a' && s[n] <= 'f')))
			return false;
	return n == 64;
}

/* Collects the body, refusing more than RESPONSE_MAX bytes. */
static int collect_body(void *arg, const char *p, size_t n)
{
	struct strbuf *body = arg;

	if (body->len + n > RESPONSE_MAX)
		return -1;
	strbuf_add(body, p, n);
	return 0;
}

/* A whole response: the shared reader (httpresp.c), then the end of the
 * connection. */
int runc_http_parse(const char *resp, size_t len, int *status,
		    struct strbuf *body, struct strbuf *err)
{
	struct httpresp *h = httpresp_new(collect_body, body);
	int rc = httpresp_feed(h, resp, len);

	if (rc == HTTPRESP_MORE)
		rc = httpresp_eof(h);
	if (rc == HTTPRESP_DONE) {
		*status = httpresp_status(h);
		rc = 0;
	} else {
		strbuf_adds(err, httpresp_error(h));
		rc = -1;
	}
	httpresp_free(h);
	return rc;
}

char *runc_docker_image_from_list(const char *json, size_t len, const char *id)
{
	json_t *list = json_loadb(json, len, 0, NULL);
	char *image = NULL;
	size_t i;
	json_t *c;

	json_array_foreach(list, i, c)
	{
		const char *cid = json_string_value(json_object_get(c, "Id"));
		const char *img =
			json_string_value(json_object_get(c, "Image"));

		if (cid && img && img[0] && strcmp(cid, id) == 0) {
			image = util_xstrdup(img);
			break;
		}
	}
	json_decref(list);
	return image;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until the deadline; 0 when ready, -1 otherwise. */
static int wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = events };
		long long left = deadline - now_ms();
		int n;

		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		n = poll(&pfd, 1, (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

static int connect_unix(const char *path, long long deadline)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/*
	 * A non-blocking connect to a unix socket either succeeds or fails
	 * at once; EAGAIN means the listener's backlog is full, so retry
	 * briefly until the deadline.
	 */
	while (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int e = errno;

		if ((e != EAGAIN && e != EINTR) || now_ms() >= deadline) {
			close(fd);
			errno = e == EAGAIN ? ETIMEDOUT : e;
			return -1;
		}
		(void)poll(NULL, 0, 10);
	}
	return fd;
}

static int send_all(int fd, const char *s, size_t len, long long deadline)
{
	while (len) {
		ssize_t n = send(fd, s, len, MSG_NOSIGNAL);

		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		if (n < 0) {
			if (wait_fd(fd, POLLOUT, deadline) < 0)
				return -1;
			continue;
		}
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

static int recv_all(int fd, struct strbuf *out, long long deadline)
{
	for (;;) {
		char buf[16384];
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n == 0)
			return 0;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		if (n < 0) {
			if (wait_fd(fd, POLLIN, deadline) < 0)
				return -1;
			continue;
		}
		if (out->len + (size_t)n > RESPONSE_MAX) {
			errno = EFBIG;
			return -1;
		}
		strbuf_add(out, buf, (size_t)n);
	}
}

char *runc_docker_image(const char *socket_path, int timeout_ms, const char *id,
			struct strbuf *err)
{
	long long deadline = now_ms() + timeout_ms;
	struct strbuf req = { 0 }, resp = { 0 }, body = { 0 };
	char *image = NULL;
	int fd, status = 0;

	if (!runc_is_container_id(id)) {
		strbuf_adds(err, "not a Docker container id");
		return NULL;
	}
	/* filters={"id":["ID"]}, percent-encoded */
	strbuf_addf(&req,
		    "GET /containers/json?all=1&filters=%%7B%%22id%%22%%3A%%5B"
		    "%%22%s%%22%%5D%%7D HTTP/1.0\r\nHost: docker\r\n"
		    "User-Agent: egress-runc\r\n\r\n",
		    id);
	fd = connect_unix(socket_path, deadline);
	if (fd < 0) {
		strbuf_addf(err, "%s: %s", socket_path, strerror(errno));
		goto out;
	}
	if (send_all(fd, req.buf, req.len, deadline) < 0 ||
	    recv_all(fd, &resp, deadline) < 0) {
		strbuf_addf(err, "%s: %s", socket_path, strerror(errno));
		close(fd);
		goto out;
	}
	close(fd);
	if (runc_http_parse(resp.buf ? resp.buf : "", resp.len, &status, &body,
			    err) < 0)
		goto out;
	if (status != 200) {
		strbuf_addf(err, "Docker API answered HTTP %d", status);
		goto out;
	}
	image = runc_docker_image_from_list(strbuf_str(&body), body.len, id);
	if (!image)
		strbuf_adds(err, "container not in the Docker API's list");
out:
	strbuf_fini(&req);
	strbuf_fini(&resp);
	strbuf_fini(&body);
	return image;
}
