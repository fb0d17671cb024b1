/*
 * svc_net.c - listening sockets, accepted connections and their one close
 * path.
 *
 * Protocol handlers only change a connection's state (svc_conn_finish,
 * svc_conn_abort); conn_settle(), run at the end of every bufferevent
 * callback, is the only place that frees one.  That keeps a handler from
 * ever touching a freed connection, whatever the peer sends.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "svc_int.h"
#include "util.h"

/* How long accepting pauses when the process is out of descriptors. */
static const struct timeval backoff_tv = { 0, 250 * 1000 };

void svc_addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
			(const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(in6->sin6_port));
	} else {
		snprintf(buf, len, "?");
	}
}

static void set_reason(struct svc_conn *c, const char *reason)
{
	if (!c->reason)
		c->reason = reason;
}

void svc_conn_finish(struct svc_conn *c, const char *reason)
{
	if (c->state == SVC_CONN_OPEN)
		c->state = SVC_CONN_DRAINING;
	set_reason(c, reason);
}

void svc_conn_abort(struct svc_conn *c, const char *reason)
{
	c->state = SVC_CONN_DEAD;
	set_reason(c, reason);
}

void svc_conn_send(struct svc_conn *c, const void *p, size_t n)
{
	bufferevent_write(c->bev, p, n);
	c->bytes_out += n;
}

static void conn_free(struct svc_conn *c)
{
	struct svc *sv = c->l->sv;
	json_t *line = svc_log_conn(c, "close");

	json_object_set_new(line, "reason",
			    json_string(c->reason ? c->reason : "closed"));
	json_object_set_new(line, "bytes_in",
			    json_integer((json_int_t)c->bytes_in));
	json_object_set_new(line, "bytes_out",
			    json_integer((json_int_t)c->bytes_out));
	svc_log_write(sv, line);
	TAILQ_REMOVE(&sv->conns, c, entry);
	if (c->l->ops->fini)
		c->l->ops->fini(c);
	if (c->bev)
		bufferevent_free(c->bev);
	free(c->reason_buf);
	free(c);
}

void svc_conn_close_all(struct svc *sv, const char *reason)
{
	struct svc_conn *c;

	while ((c = TAILQ_FIRST(&sv->conns))) {
		set_reason(c, reason);
		conn_free(c);
	}
}

/* Hands the input to the protocol, counting the bytes it has not seen. */
static void conn_process(struct svc_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t n = evbuffer_get_length(in);

	if (n > c->in_seen)
		c->bytes_in += n - c->in_seen;
	if (c->state == SVC_CONN_LINGER)
		evbuffer_drain(in, n);
	else if (c->state == SVC_CONN_OPEN && !c->paused && n)
		c->l->ops->read(c);
	c->in_seen = evbuffer_get_length(in);
}

/* All output is out: say goodbye and wait for the peer's EOF. */
static void conn_linger(struct svc_conn *c)
{
	static const struct timeval tv = { SVC_LINGER_SECS, 0 };
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

	c->state = SVC_CONN_LINGER;
	/* close_notify goes straight to the socket BIO; the result does not
	 * matter, the socket is shut down next anyway. */
	if (ssl && SSL_shutdown(ssl) < 0)
		ERR_clear_error();
	shutdown(bufferevent_getfd(c->bev), SHUT_WR);
	bufferevent_set_timeouts(c->bev, &tv, NULL);
	bufferevent_enable(c->bev, EV_READ);
	conn_process(c);
}

/*
 * Acts on what the last callback decided: frees a dead connection, shuts
 * down a drained one, and stops reading from a peer that leaves its
 * responses unread (the write callback resumes it).  Every bufferevent
 * callback ends here; c may be freed, so nothing may use it afterwards.
 */
static void conn_settle(struct svc_conn *c)
{
	size_t out = evbuffer_get_length(bufferevent_get_output(c->bev));

	if (c->state == SVC_CONN_DEAD) {
		conn_free(c);
		return;
	}
	if (c->state == SVC_CONN_DRAINING && out == 0) {
		conn_linger(c);
	} else if (c->state == SVC_CONN_DRAINING) {
		/* Input is no longer parsed: let it wait in the kernel. */
		bufferevent_disable(c->bev, EV_READ);
	} else if (c->state == SVC_CONN_OPEN && out > SVC_OUT_MAX &&
		   !c->paused) {
		c->paused = true;
		bufferevent_disable(c->bev, EV_READ);
	}
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct svc_conn *c = arg;

	(void)bev;
	conn_process(c);
	conn_settle(c);
}

/* The output has drained: finish closing, or resume a paused reader. */
static void conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct svc_conn *c = arg;

	if (c->paused && c->state == SVC_CONN_OPEN) {
		c->paused = false;
		bufferevent_enable(bev, EV_READ);
		conn_process(c);
	}
	conn_settle(c);
}

static void conn_error_reason(struct svc_conn *c)
{
	unsigned long e = bufferevent_get_openssl_error(c->bev);
	int err = EVUTIL_SOCKET_ERROR();
	char buf[256];

	if (e) {
		ERR_error_string_n(e, buf, sizeof(buf));
		c->reason_buf = util_xstrdup(buf);
	} else {
		snprintf(buf, sizeof(buf), "error: %s",
			 err ? strerror(err) : "unknown");
		c->reason_buf = util_xstrdup(buf);
	}
	svc_conn_abort(c, c->reason_buf);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct svc_conn *c = arg;
	size_t out = evbuffer_get_length(bufferevent_get_output(bev));

	if (what & BEV_EVENT_CONNECTED) {
		if (c->l->ops->connected)
			c->l->ops->connected(c);
		conn_process(c);
	} else if (what & BEV_EVENT_TIMEOUT) {
		/* in LINGER a reason is set already and is kept */
		svc_conn_abort(c, "idle");
	} else if (what & BEV_EVENT_ERROR) {
		if (!c->reason)
			conn_error_reason(c);
		svc_conn_abort(c, "error");
	} else if (what & BEV_EVENT_EOF) {
		/* The peer has finished sending; deliver what is queued. */
		if (out)
			svc_conn_finish(c, "eof");
		else
			svc_conn_abort(c, "eof");
	}
	conn_settle(c);
}

static struct bufferevent *conn_bev(struct svc_conn *c, evutil_socket_t fd)
{
	struct event_base *base = c->l->sv->base;
	struct bufferevent *bev;
	SSL *ssl;

	/* The bufferevent owns fd (and ssl): freeing it closes both. */
	if (!c->l->tls)
		return bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	ssl = svc_tls_ssl_new(c->l->tls);
	if (!ssl)
		return NULL;
	bev = bufferevent_openssl_socket_new(base, fd, ssl,
					     BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE);
	/* Clients often close without close_notify; that is an EOF here. */
	if (bev)
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

static void accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
		      struct sockaddr *sa, int salen, void *arg)
{
	struct svc_listener *l = arg;
	struct svc_conn *c = util_xcalloc(1, sizeof(*c));
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);

	(void)lev;
	(void)salen;
	c->l = l;
	svc_addr_str(sa, c->peer, sizeof(c->peer));
	if (getsockname(fd, (struct sockaddr *)&local, &llen) == 0)
		svc_addr_str((struct sockaddr *)&local, c->local,
			     sizeof(c->local));
	else
		snprintf(c->local, sizeof(c->local), "%s", l->local);
	/* Logged first, so that tests can tell the server was reached. */
	svc_log_write(l->sv, svc_log_conn(c, "accept"));
	TAILQ_INSERT_TAIL(&l->sv->conns, c, entry);
	c->bev = conn_bev(c, fd);
	if (!c->bev) {
		/* Only on allocation failure.  Whether libevent freed the SSL
		 * then differs between versions: rather leak it than free it
		 * twice. */
		close(fd);
		svc_conn_abort(c, "cannot set up the connection");
		conn_free(c);
		return;
	}
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb,
			  c);
	bufferevent_set_timeouts(c->bev, &l->sv->idle, &l->sv->idle);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (l->ops->start)
		l->ops->start(c);
	conn_settle(c);
}

static void backoff_cb(evutil_socket_t fd, short what, void *arg)
{
	struct svc_listener *l = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(l->lev);
}

/*
 * Out of descriptors (or memory), the pending connection stays queued and
 * the socket stays readable: pause accepting instead of spinning on it.
 */
static void accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct svc_listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();

	fprintf(stderr, "svc: %s accept on %s: %s\n", svc_kind_str(l->kind),
		l->local, strerror(err));
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		evconnlistener_disable(lev);
		evtimer_add(l->backoff, &backoff_tv);
	}
}

static void udp_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct svc_listener *l = arg;
	struct svc *sv = l->sv;

	(void)what;
	/* A bounded batch, so one busy socket cannot starve the others. */
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		char ps[SVC_ADDRSTRLEN];
		ssize_t n = recvfrom(fd, sv->dgram, sizeof(sv->dgram), 0,
				     (struct sockaddr *)&peer, &plen);
		if (n < 0) {
			if (errno == EINTR || errno == ECONNREFUSED)
				continue;
			return;
		}
		svc_addr_str((struct sockaddr *)&peer, ps, sizeof(ps));
		l->dgram(l, sv->dgram, (size_t)n, (struct sockaddr *)&peer,
			 plen, ps);
	}
}

static int bind_socket(struct svc_listener *l)
{
	int one = 1;
	int type = (l->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK |
		   SOCK_CLOEXEC;
	int fd = socket(l->addr.ss_family, type, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (l->addr.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&l->addr, l->addrlen) < 0 ||
	    (!l->udp && listen(fd, 128) < 0)) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int svc_listen(struct svc_listener *l)
{
	struct event_base *base = l->sv->base;
	int fd = bind_socket(l);

	if (fd < 0) {
		fprintf(stderr, "svc: %s %s/%s: %s\n", svc_kind_str(l->kind),
			l->local, l->udp ? "udp" : "tcp", strerror(errno));
		return -1;
	}
	if (l->udp) {
		l->fd = fd;
		l->ev = event_new(base, fd, EV_READ | EV_PERSIST, udp_read_cb,
				  l);
		if (!l->ev || event_add(l->ev, NULL) < 0)
			goto fail;
		return 0;
	}
	/* Already listening: backlog 0.  The listener owns fd from here. */
	l->lev = evconnlistener_new(
		base, accept_cb, l,
		LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (!l->lev) {
		close(fd);
		goto fail;
	}
	evconnlistener_set_error_cb(l->lev, accept_error_cb);
	l->backoff = evtimer_new(base, backoff_cb, l);
	if (!l->backoff)
		goto fail;
	return 0;
fail:
	fprintf(stderr, "svc: %s %s: cannot register with the event loop\n",
		svc_kind_str(l->kind), l->local);
	return -1;
}

void svc_listener_free(struct svc_listener *l)
{
	if (!l)
		return;
	if (l->ev)
		event_free(l->ev);
	if (l->fd >= 0)
		close(l->fd);
	if (l->backoff)
		event_free(l->backoff);
	if (l->lev)
		evconnlistener_free(l->lev);
	svc_tls_free(l->tls);
	free(l->banner);
	free(l);
}
