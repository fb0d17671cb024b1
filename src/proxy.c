/*
 * proxy.c - the transparent TCP proxy: listener, workers, connections, the
 * relay and the one close path.  The TLS stage lives in proxy_tls.c, the
 * HTTP request judging in proxy_http.c.
 *
 * Threads.  One listener thread accepts and hands each socket, through a
 * pipe, to the worker with the fewest open connections (a single listening
 * socket is given to proxy_start, so SO_REUSEPORT per worker is not an
 * option; the pipe also carries the stop message).  Every worker runs its
 * own event_base and its own attrib_t; a connection lives and dies on the
 * worker that received it, so no connection state is ever locked.
 *
 * A connection is two symmetric halves, client and upstream, each a
 * bufferevent that owns its socket (BEV_OPT_CLOSE_ON_FREE; for MITM the
 * client's plain bufferevent hands its socket to a TLS one).  The upstream half exists
 * only after a decision allowed the connection.  States change only in
 * pc_set_state(); every end goes through pc_close(), which writes whatever
 * log line is still owed and frees everything.  The struct itself is freed
 * on the next loop turn (cn_closed guards callers on the way out), so a
 * callback never touches freed memory.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "procinfo.h"
#include "proxy_int.h"
#include "util.h"

#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80 /* <linux/netfilter_ipv4.h> */
#endif

/* Accepts per listener wake-up, and the EMFILE back-off bounds. */
#define ACCEPT_BURST 64
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 1000

struct worker {
	struct proxy *wk_p;
	unsigned wk_idx;
	pthread_t wk_thr;
	bool wk_started;
	struct event_base *wk_base;
	int wk_pipe[2]; /* accepted fds (int), -1 = stop */
	struct event *wk_ev_pipe;
	attrib_t *wk_attrib;
	struct pc_sesscache *wk_sess; /* upstream TLS sessions */
	struct pconn *wk_conns; /* open connections */
	struct pconn *wk_dead; /* closed, freed on the next turn */
	struct event *wk_ev_reap;
	atomic_uint wk_load;
	unsigned long wk_next_id;
};

struct proxy {
	struct proxy_shared *p_sh;
	int p_lfd;
	struct event_base *p_lbase;
	struct event *p_ev_accept, *p_ev_ctl, *p_ev_retry;
	int p_ctl[2];
	pthread_t p_lthr;
	bool p_lstarted;
	unsigned p_backoff_ms;
	struct worker *p_w;
	unsigned p_nw;
};

static bool proxy_debug;
static bool proxy_splice = true; /* EGRESS_PROXY_NO_SPLICE turns it off */

/* ---- small helpers ---------------------------------------------------- */

time_t pc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return ts.tv_sec;
}

void pc_dbg(const struct pconn *pc, const char *fmt, ...)
{
	va_list ap;

	if (!proxy_debug)
		return;
	fprintf(stderr, "proxy: #%lu %s:%u -> %s:%u: ", pc->cn_id,
		inet_ntoa(pc->cn_src.sin_addr), pc->cn_src_port, pc->cn_dst_ip,
		pc->cn_dst_port);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

const char *pc_state_str(enum pc_state s)
{
	static const char *const names[PC_STATE_MAX] = {
		[PC_CLASSIFY] = "classify",
		[PC_TLS_HS] = "tls-handshake",
		[PC_TLS_CLASSIFY] = "tls-classify",
		[PC_HTTP] = "http",
		[PC_UPGRADE_WAIT] = "upgrade-wait",
		[PC_BLOCK_WAIT] = "block-wait",
		[PC_RELAY] = "relay",
		[PC_FINAL] = "final",
		[PC_DNS] = "dns",
	};

	return (unsigned)s < PC_STATE_MAX ? names[s] : "?";
}

void pc_set_state(struct pconn *pc, enum pc_state s)
{
	pc_dbg(pc, "%s -> %s", pc_state_str(pc->cn_state), pc_state_str(s));
	pc->cn_state = s;
}

void pc_count(struct pconn *pc, enum policy_ev_type t, bool allow)
{
	atomic_ulong *c = allow ? &pc->cn_sh->stats.allow[t] :
				  &pc->cn_sh->stats.deny[t];

	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static void stat_add(atomic_ulong *c, long d)
{
	if (d > 0)
		atomic_fetch_add_explicit(c, (unsigned long)d,
					  memory_order_relaxed);
	else
		atomic_fetch_sub_explicit(c, (unsigned long)-d,
					  memory_order_relaxed);
}

/* ---- decisions and log lines ------------------------------------------ */

void pc_decide_fill(struct pconn *pc, struct policy_event *ev)
{
	const struct attrib_proc *pr = pc->cn_proc;

	ev->dst_ip = pc->cn_dst_ip;
	ev->dst_port = pc->cn_dst_port;
	procinfo_to_policy(pr, &ev->proc);
}

void pc_decide(struct pconn *pc, struct policy_event *ev, bool mitm,
	       struct policy_decision *d)
{
	struct polhold *h = polref_get(pc->cn_sh->policy);

	pc_decide_fill(pc, ev);
	policy_decide(polhold_policy(h), pc->cn_sh->cache, pc->cn_sh->audit,
		      mitm, util_mono_now(), ev, d);
	polref_put(h);
}

static void pc_log_begin(struct pconn *pc, struct jrec *r, const char *type)
{
	jrec_begin(r, type, 0);
	jrec_str(r, "dst_ip", pc->cn_dst_ip);
	jrec_int(r, "dst_port", pc->cn_dst_port);
}

static void pc_log_end(struct pconn *pc, struct jrec *r)
{
	procinfo_log_end(pc->cn_sh->log, r, pc->cn_proc, pc->cn_src_port);
}

void pc_log_tcp(struct pconn *pc, const struct policy_decision *d)
{
	struct jrec r;

	pc_log_begin(pc, &r, "tcp");
	jrec_str(&r, "policy", policy_decision_label(d));
	pc_log_end(pc, &r);
}

void pc_log_tls(struct pconn *pc, const struct policy_decision *d,
		bool passthrough, const char *error)
{
	struct jrec r;

	pc_log_begin(pc, &r, "https");
	jrec_str(&r, "host", pc->cn_has_sni ? pc->cn_sni : NULL);
	jrec_str(&r, "policy", policy_decision_label(d));
	if (passthrough)
		jrec_bool(&r, "passthrough", true);
	if (error)
		jrec_str(&r, "error", error);
	pc_log_end(pc, &r);
}

void pc_log_request(struct pconn *pc, const struct pc_req *rq,
		    const char *error)
{
	struct jrec r;

	pc_log_begin(pc, &r,
		     strncmp(rq->url, "https://", 8) ? "http" : "https");
	jrec_str(&r, "url", rq->url);
	jrec_str(&r, "method", rq->method);
	jrec_str(&r, "policy", policy_decision_label(&rq->d));
	if (rq->insecure)
		jrec_bool(&r, "insecure", true);
	if (error)
		jrec_str(&r, "error", error);
	pc_log_end(pc, &r);
}

/* Writes the line of a request that waited for its upstream. */
static void pc_req_flush(struct pconn *pc, const char *error)
{
	struct pc_req *rq = &pc->cn_req;

	if (!rq->pending)
		return;
	pc_log_request(pc, rq, error);
	rq->pending = false;
	free(rq->url);
	free(rq->method);
	rq->url = rq->method = NULL;
}

/* The TLS-failure line (reference 2.9): policy without the URL fallback. */
static void pc_log_tls_failure(struct pconn *pc)
{
	struct policy_event ev = { .type = POLICY_EV_HTTPS };
	struct policy_decision d;

	ev.host = pc->cn_has_sni ? pc->cn_sni : NULL;
	pc_decide(pc, &ev, false, &d);
	atomic_fetch_add_explicit(&pc->cn_sh->stats.tls_client_errors, 1,
				  memory_order_relaxed);
	pc_log_tls(pc, &d, false, "tls_client_rejected_ca");
}

/* ---- the close path --------------------------------------------------- */

static void worker_reap_cb(evutil_socket_t fd, short what, void *arg);

/* Did h's peer end with a close_notify (or not end at all)? */
static bool pc_tls_clean_end(const struct pc_half *h)
{
	SSL *ssl;

	if (!h->tls || !h->rd_eof || !h->bev)
		return true;
	ssl = bufferevent_openssl_get_ssl(h->bev);
	return ssl && (SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN);
}

/*
 * Best effort: a close_notify to a TLS peer whose output is flushed, so that
 * it sees an orderly end; not when the other side ended without one, so a
 * truncation stays visible as one.
 */
static void pc_tls_goodbye(struct pc_half *h)
{
	SSL *ssl;

	if (!h->tls || !h->bev || !pc_tls_clean_end(h->peer) ||
	    evbuffer_get_length(bufferevent_get_output(h->bev)))
		return;
	ssl = bufferevent_openssl_get_ssl(h->bev);
	if (ssl && SSL_is_init_finished(ssl))
		SSL_shutdown(ssl);
	ERR_clear_error();
}

static void pc_splice_stop(struct pconn *pc);
static void pc_splice_try(struct pconn *pc);

static void pc_free(struct pconn *pc)
{
	free(pc->cn_splice);
	free(pc);
}

/* Sets SO_LINGER 0 so that close() sends a reset (abort, refusal). */
static void pc_abortive(struct bufferevent *bev)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;

	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

void pc_close(struct pconn *pc, const char *reason)
{
	struct worker *w = pc->cn_w;

	if (pc->cn_closed)
		return;
	pc_dbg(pc, "close in %s: %s", pc_state_str(pc->cn_state), reason);
	if (pc->cn_state == PC_TLS_HS)
		pc_log_tls_failure(pc);
	pc_req_flush(pc, NULL);
	pc->cn_closed = true;

	if (pc->cn_t_first)
		event_free(pc->cn_t_first);
	if (pc->cn_t_idle)
		event_free(pc->cn_t_idle);
	pc->cn_t_first = pc->cn_t_idle = NULL;
	if (pc->cn_state != PC_TLS_HS) {
		pc_tls_goodbye(&pc->cn_cl);
		pc_tls_goodbye(&pc->cn_upst);
	}
	pc_http_free(pc->cn_http);
	pc->cn_http = NULL;
	pc_dns_free(pc->cn_dns);
	pc->cn_dns = NULL;
	pc_splice_stop(pc);
	/* Each bufferevent owns its socket (and a TLS one its SSL), so these
	 * close everything. */
	if (pc->cn_cl.bev)
		bufferevent_free(pc->cn_cl.bev);
	if (pc->cn_upst.bev)
		bufferevent_free(pc->cn_upst.bev);
	pc->cn_cl.bev = pc->cn_upst.bev = NULL;
	attrib_proc_free(pc->cn_proc);
	pc->cn_proc = NULL;

	if (pc->cn_prev)
		pc->cn_prev->cn_next = pc->cn_next;
	else
		w->wk_conns = pc->cn_next;
	if (pc->cn_next)
		pc->cn_next->cn_prev = pc->cn_prev;
	atomic_fetch_sub(&w->wk_load, 1);
	stat_add(&pc->cn_sh->stats.active, -1);

	if (!w->wk_dead && w->wk_ev_reap) {
		struct timeval zero = { 0, 0 };

		evtimer_add(w->wk_ev_reap, &zero);
	}
	pc->cn_dead_next = w->wk_dead;
	w->wk_dead = pc;
}

static void worker_reap(struct worker *w)
{
	while (w->wk_dead) {
		struct pconn *pc = w->wk_dead;

		w->wk_dead = pc->cn_dead_next;
		pc_free(pc);
	}
}

static void worker_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	worker_reap(arg);
}

void pc_reply_close(struct pconn *pc, int status, const char *reason,
		    const char *body)
{
	struct evbuffer *out;

	if (pc->cn_closed)
		return;
	pc_req_flush(pc, NULL);
	if (pc->cn_upst.bev) {
		bufferevent_free(pc->cn_upst.bev);
		pc->cn_upst.bev = NULL;
		pc->cn_up = PC_UP_NONE;
	}
	if (!pc->cn_cl.bev) {
		pc_close(pc, reason);
		return;
	}
	pc_set_state(pc, PC_FINAL);
	bufferevent_disable(pc->cn_cl.bev, EV_READ);
	evbuffer_drain(
		bufferevent_get_input(pc->cn_cl.bev),
		evbuffer_get_length(bufferevent_get_input(pc->cn_cl.bev)));
	out = bufferevent_get_output(pc->cn_cl.bev);
	evbuffer_add_printf(out,
			    "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
			    "Content-Length: %zu\r\nConnection: close\r\n\r\n"
			    "%s",
			    status, reason, strlen(body), body);
	bufferevent_setwatermark(pc->cn_cl.bev, EV_WRITE, 0, 0);
	bufferevent_enable(pc->cn_cl.bev, EV_WRITE);
	/* A client that never reads its answer is cut off like a slow head. */
	pc_set_deadline(pc, true);
}

/* ---- timers ----------------------------------------------------------- */

static void pc_arm_idle(struct pconn *pc)
{
	time_t now = pc_now(), at = 0;
	unsigned idle = pc->cn_sh->idle_timeout_s;
	struct timeval tv;

	if (idle)
		at = pc->cn_last + (time_t)idle;
	if (pc->cn_deadline && (!at || pc->cn_deadline < at))
		at = pc->cn_deadline;
	if (!at || !pc->cn_t_idle)
		return;
	/* A pending timer that fires no later re-arms itself then: no
	 * timer update for each request of a keep-alive connection. */
	if (pc->cn_t_idle_at && pc->cn_t_idle_at <= at)
		return;
	tv.tv_sec = at > now ? at - now : 0;
	tv.tv_usec = 100 * 1000; /* the coarse clock lags by a tick */
	evtimer_add(pc->cn_t_idle, &tv);
	pc->cn_t_idle_at = at;
}

static void pc_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pconn *pc = arg;
	time_t now = pc_now();
	unsigned idle = pc->cn_sh->idle_timeout_s;

	(void)fd;
	(void)what;
	pc->cn_t_idle_at = 0;
	if (pc->cn_deadline && now >= pc->cn_deadline) {
		pc_close(pc, "deadline passed (slow head or handshake)");
		return;
	}
	if (idle && now - pc->cn_last >= (time_t)idle) {
		pc_close(pc, "idle timeout");
		return;
	}
	pc_arm_idle(pc);
}

/* Sets (or with 0 clears) the deadline for the current head/handshake. */
void pc_set_deadline(struct pconn *pc, bool on)
{
	pc->cn_deadline = on ? pc_now() + PROXY_HEAD_TIMEOUT_S : 0;
	if (on)
		pc_arm_idle(pc);
}

static void pc_kick(struct pconn *pc);

static void pc_first_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pconn *pc = arg;

	(void)fd;
	(void)what;
	pc_dbg(pc, "no client bytes decided within %u ms",
	       pc->cn_sh->first_bytes_ms);
	if (pc->cn_state == PC_CLASSIFY || pc->cn_state == PC_TLS_CLASSIFY)
		pc_classify(pc, true);
	pc_kick(pc);
}

static void pc_arm_first(struct pconn *pc)
{
	struct timeval tv = {
		.tv_sec = pc->cn_sh->first_bytes_ms / 1000,
		.tv_usec = (pc->cn_sh->first_bytes_ms % 1000) * 1000,
	};

	evtimer_add(pc->cn_t_first, &tv);
}

static void pc_stop_first(struct pconn *pc)
{
	if (pc->cn_t_first)
		evtimer_del(pc->cn_t_first);
}

/* ---- relay ------------------------------------------------------------ */

void pc_out_move(struct pc_half *dst, struct evbuffer *src, size_t n)
{
	struct evbuffer *out = bufferevent_get_output(dst->bev);
	SSL *ssl = dst->tls ? bufferevent_openssl_get_ssl(dst->bev) : NULL;

	if (n > evbuffer_get_length(src))
		n = evbuffer_get_length(src);
	if (ssl && evbuffer_get_length(out) == 0 && SSL_is_init_finished(ssl)) {
		while (n) {
			struct evbuffer_iovec v;
			int r;

			if (evbuffer_peek(src, (ev_ssize_t)n, NULL, &v, 1) < 1)
				break;
			if (v.iov_len > n)
				v.iov_len = n;
			if (v.iov_len > PROXY_READ_MAX)
				v.iov_len = PROXY_READ_MAX;
			ERR_clear_error();
			r = SSL_write(ssl, v.iov_base, (int)v.iov_len);
			if (r <= 0) {
				/* Queued below: libevent retries it (same
				 * bytes first) or reports the error. */
				ERR_clear_error();
				break;
			}
			evbuffer_drain(src, (size_t)r);
			n -= (size_t)r;
		}
	}
	if (n)
		evbuffer_remove_buffer(src, out, n);
}

void pc_relay_move(struct pc_half *h)
{
	struct pc_half *peer = h->peer;
	struct evbuffer *out;

	if (!h->bev || !peer->bev)
		return;
	out = bufferevent_get_output(peer->bev);
	pc_out_move(peer, bufferevent_get_input(h->bev), SIZE_MAX);
	if (evbuffer_get_length(out) >= PROXY_RELAY_HIGH && !h->throttled) {
		/* Back-pressure: stop reading h until its peer drains. */
		h->throttled = true;
		bufferevent_disable(h->bev, EV_READ);
		bufferevent_setwatermark(peer->bev, EV_WRITE, PROXY_RELAY_LOW,
					 0);
	}
}

static bool pc_half_is_tls(const struct pc_half *h)
{
	return h->tls;
}

/* Both directions are done and flushed: the connection ends. */
static void pc_maybe_done(struct pconn *pc)
{
	if (pc->cn_cl.rd_eof && pc->cn_upst.rd_eof && pc->cn_cl.wr_shut &&
	    pc->cn_upst.wr_shut)
		pc_close(pc, "both directions closed");
}

/*
 * No more bytes will be written towards x (its peer reached EOF and x's
 * output is drained).  A plain socket gets shutdown(SHUT_WR), keeping the
 * other direction open; with TLS on either side the whole connection ends.
 */
static void pc_shut(struct pc_half *x)
{
	struct pconn *pc = x->pc;

	if (x->wr_shut)
		return;
	if (pc_half_is_tls(x) || pc_half_is_tls(x->peer) || !x->bev) {
		pc_close(pc, "end of stream");
		return;
	}
	shutdown(bufferevent_getfd(x->bev), SHUT_WR);
	x->wr_shut = true;
	pc_dbg(pc, "half-close towards %s", x->name);
	pc_maybe_done(pc);
}

/* h has read EOF: pass it on once its peer's output is flushed. */
static void pc_pass_eof(struct pc_half *h)
{
	struct pc_half *peer = h->peer;

	if (!peer->bev) {
		pc_close(h->pc, "end of stream before the upstream opened");
		return;
	}
	if (evbuffer_get_length(bufferevent_get_output(peer->bev)) == 0)
		pc_shut(peer);
	else
		bufferevent_setwatermark(peer->bev, EV_WRITE, 0, 0);
}

void pc_start_relay(struct pconn *pc)
{
	pc_stop_first(pc);
	pc_set_state(pc, PC_RELAY);
	pc_set_deadline(pc, false);
	bufferevent_setwatermark(pc->cn_cl.bev, EV_READ, 0, 0);
	pc_relay_move(&pc->cn_cl);
	pc_relay_move(&pc->cn_upst);
	if (!pc->cn_cl.rd_eof && !pc->cn_cl.throttled)
		bufferevent_enable(pc->cn_cl.bev, EV_READ);
	if (pc->cn_cl.rd_eof)
		pc_pass_eof(&pc->cn_cl);
	else
		pc_splice_try(pc);
}

/* ---- zero-copy relay -------------------------------------------------- */

/*
 * Once a relay has two plain halves, an open upstream and nothing buffered
 * anywhere, each direction moves through a pipe with splice(2): socket ->
 * pipe -> socket, no copy through user space.  The bufferevents stay (they
 * own the sockets) but are disabled; each direction has its own read event
 * on its source and write event on its destination.  Back-pressure: a
 * direction reads only while its pipe is empty, so at most one pipe's worth
 * is in flight, and it waits for its destination to turn writable.  A
 * source's EOF becomes shutdown(SHUT_WR) towards the destination once the
 * pipe is drained; both directions done closes the connection.
 */
struct pc_pipe {
	struct pconn *pp_pc;
	struct pc_half *pp_src; /* read from; pp_src->peer is written to */
	int pp_fd[2];
	size_t pp_len; /* bytes in the pipe */
	struct event *pp_rd, *pp_wr;
	bool pp_done; /* EOF passed on */
};

struct pc_splice {
	struct pc_pipe sp_dir[2]; /* client -> upstream, upstream -> client */
};

/* Rounds of reading per wake-up, so one busy direction cannot starve the
 * worker's other connections. */
#define SPLICE_ROUNDS 8

static void pp_pump(struct pc_pipe *pp)
{
	struct pconn *pc = pp->pp_pc;
	struct pc_half *dsth = pp->pp_src->peer;
	int src = bufferevent_getfd(pp->pp_src->bev);
	int dst = bufferevent_getfd(dsth->bev);
	unsigned rounds = 0;
	ssize_t n;

	pc->cn_last = pc_now();
	while (!pp->pp_done) {
		if (pp->pp_len) {
			n = splice(pp->pp_fd[0], NULL, dst, NULL, pp->pp_len,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN) {
				/* Destination full: wait, and read no more. */
				event_del(pp->pp_rd);
				event_add(pp->pp_wr, NULL);
				return;
			}
			if (n <= 0) {
				pc_dbg(pc, "splice to %s: %s", dsth->name,
				       n ? strerror(errno) : "closed");
				pc_close(pc, "relay write error");
				return;
			}
			pp->pp_len -= (size_t)n;
			continue;
		}
		if (pp->pp_src->rd_eof) {
			/* Drained: pass the EOF on, keep the other way. */
			pp->pp_done = true;
			event_del(pp->pp_rd);
			event_del(pp->pp_wr);
			shutdown(dst, SHUT_WR);
			dsth->wr_shut = true;
			pc_dbg(pc, "half-close towards %s", dsth->name);
			pc_maybe_done(pc);
			return;
		}
		if (++rounds > SPLICE_ROUNDS)
			break;
		n = splice(src, NULL, pp->pp_fd[1], NULL, PROXY_PIPE_SIZE,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break; /* the pipe is empty, so the source is */
		if (n < 0) {
			pc_dbg(pc, "splice from %s: %s", pp->pp_src->name,
			       strerror(errno));
			pc_close(pc, pp->pp_src == &pc->cn_cl ?
					     "client error" :
					     "upstream error");
			return;
		}
		if (n == 0) {
			pp->pp_src->rd_eof = true;
			pc_dbg(pc, "EOF from %s in relay", pp->pp_src->name);
			continue;
		}
		pp->pp_len = (size_t)n;
	}
	if (!pp->pp_done) {
		event_del(pp->pp_wr);
		event_add(pp->pp_rd, NULL);
	}
}

static void pp_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pp_pump(arg);
}

static void pc_splice_stop(struct pconn *pc)
{
	struct pc_splice *sp = pc->cn_splice;

	if (!sp)
		return;
	for (int i = 0; i < 2; i++) {
		struct pc_pipe *pp = &sp->sp_dir[i];

		if (pp->pp_rd)
			event_free(pp->pp_rd);
		if (pp->pp_wr)
			event_free(pp->pp_wr);
		pp->pp_rd = pp->pp_wr = NULL;
		for (int k = 0; k < 2; k++)
			if (pp->pp_fd[k] >= 0)
				close(pp->pp_fd[k]);
		pp->pp_fd[0] = pp->pp_fd[1] = -1;
	}
}

static bool pc_half_idle(const struct pc_half *h)
{
	return h->bev && !h->tls && !h->rd_eof && !h->wr_shut &&
	       !h->throttled &&
	       evbuffer_get_length(bufferevent_get_input(h->bev)) == 0 &&
	       evbuffer_get_length(bufferevent_get_output(h->bev)) == 0;
}

/*
 * Switches a plain relay to splice(2) once nothing is buffered (called
 * whenever that may have become true); stays buffered if it cannot.
 */
static void pc_splice_try(struct pconn *pc)
{
	struct event_base *base = pc->cn_w->wk_base;
	struct pc_splice *sp;

	if (!proxy_splice || pc->cn_splice || pc->cn_closed ||
	    pc->cn_state != PC_RELAY || pc->cn_up != PC_UP_OPEN ||
	    !pc_half_idle(&pc->cn_cl) || !pc_half_idle(&pc->cn_upst))
		return;
	sp = util_xcalloc(1, sizeof(*sp));
	for (int i = 0; i < 2; i++) {
		struct pc_pipe *pp = &sp->sp_dir[i];
		struct pc_half *src = i ? &pc->cn_upst : &pc->cn_cl;

		pp->pp_pc = pc;
		pp->pp_src = src;
		pp->pp_fd[0] = pp->pp_fd[1] = -1;
		if (pipe2(pp->pp_fd, O_NONBLOCK | O_CLOEXEC) < 0)
			goto fail;
		/* Best effort: a larger pipe means fewer rounds in bulk. */
		fcntl(pp->pp_fd[1], F_SETPIPE_SZ, PROXY_PIPE_SIZE);
		pp->pp_rd = event_new(base, bufferevent_getfd(src->bev),
				      EV_READ | EV_PERSIST, pp_cb, pp);
		pp->pp_wr = event_new(base, bufferevent_getfd(src->peer->bev),
				      EV_WRITE | EV_PERSIST, pp_cb, pp);
		if (!pp->pp_rd || !pp->pp_wr)
			goto fail;
	}
	pc->cn_splice = sp;
	bufferevent_disable(pc->cn_cl.bev, EV_READ | EV_WRITE);
	bufferevent_disable(pc->cn_upst.bev, EV_READ | EV_WRITE);
	for (int i = 0; i < 2; i++)
		event_add(sp->sp_dir[i].pp_rd, NULL);
	pc_dbg(pc, "relay by splice(2)");
	return;
fail:
	/* Out of fds or memory: the buffered relay goes on. */
	pc->cn_splice = sp;
	pc_splice_stop(pc);
	pc->cn_splice = NULL;
	free(sp);
}

/* ---- the halves' callbacks -------------------------------------------- */

/*
 * TLS halves read ahead (proxy_tls.c): one read(2) takes a record's header
 * and body, and whatever follows, instead of one read for each.  OpenSSL
 * may then hold whole records that the socket no longer signals, and
 * libevent's TLS bufferevent reads one record per readable event and, when
 * reading is enabled again, only waits for the socket.  So after every
 * callback, a TLS half that may read and whose SSL holds bytes gets its
 * read event made active by hand: libevent reads them through its usual
 * path on the next turn of the loop.
 */
static void pc_half_kick(struct pc_half *h)
{
	SSL *ssl;

	if (!h->tls || !h->bev || !(bufferevent_get_enabled(h->bev) & EV_READ))
		return;
	ssl = bufferevent_openssl_get_ssl(h->bev);
	if (ssl && SSL_has_pending(ssl))
		event_active(&h->bev->ev_read, EV_READ, 1);
}

static void pc_kick(struct pconn *pc)
{
	if (pc->cn_closed)
		return;
	pc_half_kick(&pc->cn_cl);
	pc_half_kick(&pc->cn_upst);
}

static void half_read(struct bufferevent *bev, struct pc_half *h)
{
	struct pconn *pc = h->pc;
	bool client = h == &pc->cn_cl;

	pc->cn_last = pc_now();
	switch (pc->cn_state) {
	case PC_CLASSIFY:
	case PC_TLS_CLASSIFY:
		if (client)
			pc_classify(pc, false);
		break;
	case PC_HTTP:
		if (client)
			pc_http_feed(pc);
		else
			pc_http_upstream(pc);
		break;
	case PC_BLOCK_WAIT:
		if (!client)
			pc_http_upstream(pc);
		break;
	case PC_UPGRADE_WAIT:
		if (!client)
			pc_http_upgrade_answer(pc);
		break;
	case PC_RELAY:
		pc_relay_move(h);
		break;
	case PC_DNS:
		if (client)
			pc_dns_feed(pc);
		else
			pc_dns_upstream(pc);
		break;
	case PC_TLS_HS:
		/* Bytes decrypted right behind the client's Finished: kept
		 * for the CONNECTED event, which comes next. */
		break;
	case PC_FINAL:
	default:
		evbuffer_drain(bufferevent_get_input(bev),
			       evbuffer_get_length(bufferevent_get_input(bev)));
		break;
	}
}

static void half_read_cb(struct bufferevent *bev, void *arg)
{
	struct pc_half *h = arg;
	struct pconn *pc = h->pc;

	half_read(bev, h);
	pc_kick(pc);
}

static void half_write(struct bufferevent *bev, struct pc_half *h)
{
	struct pconn *pc = h->pc;
	struct pc_half *src = h->peer;
	size_t left = evbuffer_get_length(bufferevent_get_output(bev));

	pc->cn_last = pc_now();
	if (pc->cn_state == PC_FINAL) {
		if (h == &pc->cn_cl && left == 0)
			pc_close(pc, "final reply sent");
		return;
	}
	if (pc->cn_state == PC_DNS) {
		if (h == &pc->cn_cl && left <= PROXY_RELAY_LOW)
			pc_dns_client_drained(pc);
		return;
	}
	if (src->throttled && left <= PROXY_RELAY_LOW) {
		src->throttled = false;
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		if (src->bev && !src->rd_eof)
			bufferevent_enable(src->bev, EV_READ);
		/* The client's HTTP input may still hold unjudged bytes. */
		if (src == &pc->cn_cl && pc->cn_state == PC_HTTP) {
			pc_http_feed(pc);
			return;
		}
		if (src->bev && src == &pc->cn_upst &&
		    (pc->cn_state == PC_HTTP ||
		     pc->cn_state == PC_BLOCK_WAIT)) {
			pc_http_upstream(pc);
			return;
		}
		if (src->bev)
			pc_relay_move(src);
	}
	if (pc->cn_state == PC_RELAY && left == 0 && !src->rd_eof) {
		pc_splice_try(pc);
		return;
	}
	if (!src->rd_eof || left != 0 || pc->cn_closed)
		return;
	if (pc->cn_state == PC_RELAY || src == &pc->cn_upst)
		pc_shut(h);
	else if (pc->cn_state == PC_HTTP)
		pc_http_feed(pc); /* passes the client's EOF on when done */
}

static void half_write_cb(struct bufferevent *bev, void *arg)
{
	struct pc_half *h = arg;
	struct pconn *pc = h->pc;

	half_write(bev, h);
	pc_kick(pc);
}

static void pc_up_connected(struct pconn *pc)
{
	pc->cn_up = PC_UP_OPEN;
	if (pc->cn_upst.tls) {
		SSL *ssl = bufferevent_openssl_get_ssl(pc->cn_upst.bev);

		pc_dbg(pc, "upstream open (%s%s)", SSL_get_version(ssl),
		       SSL_session_reused(ssl) ? ", resumed" : "");
	} else {
		pc_dbg(pc, "upstream open");
	}
	pc_req_flush(pc, NULL);
	pc_splice_try(pc);
}

static void pc_up_failed(struct pconn *pc)
{
	char why[160];
	bool verify;
	const char *err;

	atomic_fetch_add_explicit(&pc->cn_sh->stats.upstream_errors, 1,
				  memory_order_relaxed);
	verify = pc->cn_upst.tls && pc_tls_verify_failed(pc, why, sizeof(why));
	if (!verify)
		snprintf(why, sizeof(why), "cannot reach %s:%u%s",
			 pc->cn_dst_ip, pc->cn_dst_port,
			 pc->cn_upst.tls ? " over TLS" : "");
	err = verify ? "tls_upstream_verify_failed" : "upstream_connect_failed";
	pc_dbg(pc, "upstream failed: %s", why);
	if (pc->cn_state == PC_DNS) {
		pc_dns_upstream_gone(pc);
		return;
	}
	pc_req_flush(pc, err);
	if (pc->cn_state == PC_HTTP || pc->cn_state == PC_UPGRADE_WAIT) {
		char body[256];

		snprintf(body, sizeof(body), "egressd: upstream %s: %s\n",
			 verify ? "certificate verification failed" :
				  "connection failed",
			 why);
		pc_reply_close(pc, 502, "Bad Gateway", body);
		return;
	}
	pc_close(pc, "upstream failed");
}

static void pc_half_eof(struct pc_half *h)
{
	struct pconn *pc = h->pc;

	h->rd_eof = true;
	pc_dbg(pc, "EOF from %s in %s", h->name, pc_state_str(pc->cn_state));
	if (h->bev)
		bufferevent_disable(h->bev, EV_READ);
	switch (pc->cn_state) {
	case PC_CLASSIFY:
	case PC_TLS_CLASSIFY:
		/* Judge what arrived; a connect without data says nothing. */
		if (evbuffer_get_length(bufferevent_get_input(h->bev)) == 0) {
			pc_close(pc, "client closed before sending");
			return;
		}
		pc_classify(pc, true);
		if (!pc->cn_closed && pc->cn_state == PC_CLASSIFY)
			pc_close(pc, "client closed inside its first bytes");
		return;
	case PC_TLS_HS:
		pc_close(pc, "client closed during the handshake");
		return;
	case PC_HTTP:
		if (h == &pc->cn_cl) {
			pc_http_feed(pc); /* passes the EOF on when done */
			return;
		}
		pc_relay_move(h);
		pc_pass_eof(h);
		return;
	case PC_BLOCK_WAIT:
		if (h == &pc->cn_upst) {
			pc_relay_move(h);
			pc_reply_close(pc, 403, "Forbidden",
				       "Blocked by egress policy");
		}
		return;
	case PC_UPGRADE_WAIT:
		if (h == &pc->cn_upst) {
			pc_relay_move(h);
			pc_pass_eof(h);
		}
		return;
	case PC_RELAY:
		pc_relay_move(h);
		pc_pass_eof(h);
		return;
	case PC_DNS:
		if (h == &pc->cn_cl)
			pc_dns_feed(pc); /* ends the connection when done */
		else
			pc_dns_upstream_gone(pc);
		return;
	case PC_FINAL:
	default:
		return;
	}
}

static void half_event(struct pc_half *h, short what)
{
	struct pconn *pc = h->pc;
	bool client = h == &pc->cn_cl;

	pc->cn_last = pc_now();
	if (what & BEV_EVENT_CONNECTED) {
		if (client)
			pc_tls_client_ready(pc);
		else
			pc_up_connected(pc);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		if (!client && pc->cn_up == PC_UP_CONNECTING)
			pc_up_failed(pc);
		else
			pc_half_eof(h);
		return;
	}
	/* BEV_EVENT_ERROR (or a timeout, unused): one close path. */
	if (!client && pc->cn_up == PC_UP_CONNECTING) {
		pc_up_failed(pc);
		return;
	}
	pc_dbg(pc, "%s error: %s", h->name,
	       evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	pc_close(pc, client ? "client error" : "upstream error");
}

static void half_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct pc_half *h = arg;
	struct pconn *pc = h->pc;

	(void)bev;
	half_event(h, what);
	pc_kick(pc);
}

struct pc_sesscache *pc_sesscache_of(const struct pconn *pc)
{
	return pc->cn_w->wk_sess;
}

struct event_base *pc_base(const struct pconn *pc)
{
	return pc->cn_w->wk_base;
}

void pc_tls_classify_start(struct pconn *pc)
{
	pc_set_deadline(pc, false);
	pc_arm_first(pc);
	if (evbuffer_get_length(bufferevent_get_input(pc->cn_cl.bev)))
		pc_classify(pc, false);
}

void pc_half_setcb(struct pc_half *h)
{
	bufferevent_setcb(h->bev, half_read_cb, half_write_cb, half_event_cb,
			  h);
	/* libevent's 16 KiB default costs a syscall per 16 KiB in bulk. */
	bufferevent_set_max_single_read(h->bev, PROXY_READ_MAX);
	bufferevent_set_max_single_write(h->bev, PROXY_READ_MAX);
}

/* ---- upstream --------------------------------------------------------- */

int pc_upstream_open(struct pconn *pc)
{
	struct event_base *base = pc->cn_w->wk_base;
	struct bufferevent *bev;
	uint32_t mark = pc->cn_sh->mark;
	int one = 1;
	int fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "proxy: upstream socket: %s\n",
			strerror(errno));
		return -1;
	}
	/* The mark makes our own connections skip the REDIRECT rules. */
	if (mark &&
	    setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0) {
		fprintf(stderr, "proxy: SO_MARK: %s\n", strerror(errno));
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (pc->cn_mitm) {
		SSL *ssl = pc_tls_upstream_ssl(pc);

		/* libevent's TLS bufferevent cannot connect a socket that
		 * has no address yet, so connect first; the handshake starts
		 * when the socket turns writable. */
		if (!ssl || (connect(fd, (struct sockaddr *)&pc->cn_dst,
				     sizeof(pc->cn_dst)) < 0 &&
			     errno != EINPROGRESS)) {
			SSL_free(ssl);
			close(fd);
			return -1;
		}
		/* Owns fd and ssl from here. */
		bev = bufferevent_openssl_socket_new(base, fd, ssl,
						     BUFFEREVENT_SSL_CONNECTING,
						     BEV_OPT_CLOSE_ON_FREE);
		if (!bev) {
			SSL_free(ssl);
			close(fd);
			return -1;
		}
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
		pc->cn_upst.tls = true;
	} else {
		bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
		if (!bev) {
			close(fd);
			return -1;
		}
		/* Owns fd now. */
		if (bufferevent_socket_connect(bev,
					       (struct sockaddr *)&pc->cn_dst,
					       sizeof(pc->cn_dst)) < 0) {
			bufferevent_free(bev);
			return -1;
		}
	}
	pc->cn_upst.bev = bev;
	pc->cn_up = PC_UP_CONNECTING;
	pc_half_setcb(&pc->cn_upst);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	pc_dbg(pc, "upstream connecting (mark %#x)", mark);
	return 0;
}

/* ---- classification and raw TCP -------------------------------------- */

void pc_judge_tcp(struct pconn *pc)
{
	struct policy_event ev = { .type = POLICY_EV_TCP };
	struct policy_decision d;

	pc_stop_first(pc);
	pc_decide(pc, &ev, false, &d);
	pc_count(pc, POLICY_EV_TCP, d.allow);
	pc_log_tcp(pc, &d);
	if (!d.allow) {
		pc_close(pc, "tcp blocked");
		return;
	}
	if (pc->cn_up == PC_UP_NONE && pc_upstream_open(pc) < 0) {
		pc_close(pc, "upstream open failed");
		return;
	}
	pc_start_relay(pc);
}

void pc_classify(struct pconn *pc, bool final)
{
	struct evbuffer *in = bufferevent_get_input(pc->cn_cl.bev);
	size_t len = evbuffer_get_length(in);
	const uint8_t *data;
	struct tls_hello hello;
	enum proxy_cls cls;
	bool inside_tls = pc->cn_state == PC_TLS_CLASSIFY;

	if (len == 0) {
		if (final) /* server-first protocol: destination alone */
			pc_judge_tcp(pc);
		return;
	}
	if (len > PROXY_CLASSIFY_MAX)
		len = PROXY_CLASSIFY_MAX;
	data = evbuffer_pullup(in, (ev_ssize_t)len);
	if (!data) {
		pc_close(pc, "out of memory");
		return;
	}
	cls = proxy_classify(data, len, final || len >= PROXY_CLASSIFY_MAX);
	if (inside_tls && cls == PROXY_CLS_TLS)
		cls = PROXY_CLS_OTHER; /* TLS inside TLS is just bytes */
	switch (cls) {
	case PROXY_CLS_NEED_MORE:
		return;
	case PROXY_CLS_TLS:
		switch (tlsparse_client_hello(data, len, &hello)) {
		case TLSP_NEED_MORE:
			if (len < PROXY_CLASSIFY_MAX) {
				/* A slow client: its deadline bounds it. */
				pc_stop_first(pc);
				return;
			}
			break;
		case TLSP_OK:
			pc_stop_first(pc);
			pc_tls_stage(pc, &hello);
			return;
		case TLSP_NOT_TLS:
		case TLSP_MALFORMED:
		default:
			break;
		}
		pc_dbg(pc, "not a usable ClientHello: judged as tcp");
		pc_judge_tcp(pc);
		return;
	case PROXY_CLS_HTTP:
		pc_stop_first(pc);
		if (pc_http_start(pc) < 0) {
			pc_close(pc, "out of memory");
			return;
		}
		pc_http_feed(pc);
		return;
	case PROXY_CLS_OTHER:
	default:
		pc_judge_tcp(pc);
		return;
	}
}

/* ---- accepting -------------------------------------------------------- */

/* Is a an address of this network namespace (so dst:listen_port is us)? */
static bool addr_is_local(struct in_addr a)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr = a };
	uint32_t h = ntohl(a.s_addr);
	bool local;
	int fd;

	if (h == INADDR_ANY || (h >> 24) == 127)
		return true;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return true; /* cannot tell: refuse rather than loop */
	local = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ||
		errno != EADDRNOTAVAIL;
	close(fd);
	return local;
}

static void pc_attribute(struct pconn *pc)
{
	struct attrib_tuple t = {
		.saddr = pc->cn_src.sin_addr.s_addr,
		.daddr = pc->cn_dst.sin_addr.s_addr,
		.sport = pc->cn_src_port,
		.dport = pc->cn_dst_port,
		.proto = IPPROTO_TCP,
	};
	int r;

	if (!pc->cn_w->wk_attrib)
		return;
	r = attrib_lookup(pc->cn_w->wk_attrib, &t, &pc->cn_proc, NULL);
	if (r < 0) {
		pc->cn_proc = NULL;
		atomic_fetch_add_explicit(&pc->cn_sh->stats.attrib_misses, 1,
					  memory_order_relaxed);
		pc_dbg(pc, "no attribution: %s", attrib_strerror(r));
	}
}

/* A connection aimed at the proxy's own port: refused and logged. */
static void pc_refuse_self(struct pconn *pc)
{
	struct policy_decision d = { .allow = false, .rule = -1 };

	atomic_fetch_add_explicit(&pc->cn_sh->stats.refused_self, 1,
				  memory_order_relaxed);
	pc_count(pc, POLICY_EV_TCP, false);
	pc_log_tcp(pc, &d);
	pc_abortive(pc->cn_cl.bev);
	pc_close(pc, "aimed at the proxy itself");
}

static void pconn_new(struct worker *w, int fd)
{
	struct proxy_shared *sh = w->wk_p->p_sh;
	struct pconn *pc = util_xcalloc(1, sizeof(*pc));
	socklen_t sl = sizeof(pc->cn_src);
	int one = 1;

	pc->cn_id = ++w->wk_next_id;
	pc->cn_w = w;
	pc->cn_sh = sh;
	pc->cn_cl = (struct pc_half){ .pc = pc,
				      .name = "client",
				      .peer = &pc->cn_upst };
	pc->cn_upst = (struct pc_half){ .pc = pc,
					.name = "upstream",
					.peer = &pc->cn_cl };
	pc->cn_req.d.rule = -1;
	if (getpeername(fd, (struct sockaddr *)&pc->cn_src, &sl) < 0)
		pc->cn_src.sin_family = AF_INET;
	sl = sizeof(pc->cn_dst);
	if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &pc->cn_dst, &sl) < 0) {
		sl = sizeof(pc->cn_dst);
		getsockname(fd, (struct sockaddr *)&pc->cn_dst, &sl);
	}
	inet_ntop(AF_INET, &pc->cn_dst.sin_addr, pc->cn_dst_ip,
		  sizeof(pc->cn_dst_ip));
	pc->cn_dst_port = ntohs(pc->cn_dst.sin_port);
	pc->cn_src_port = ntohs(pc->cn_src.sin_port);
	pc->cn_last = pc_now();
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	pc->cn_next = w->wk_conns;
	if (w->wk_conns)
		w->wk_conns->cn_prev = pc;
	w->wk_conns = pc;
	stat_add(&sh->stats.active, 1);

	/* Owns fd from here. */
	pc->cn_cl.bev =
		bufferevent_socket_new(w->wk_base, fd, BEV_OPT_CLOSE_ON_FREE);
	pc->cn_t_first = evtimer_new(w->wk_base, pc_first_cb, pc);
	pc->cn_t_idle = evtimer_new(w->wk_base, pc_idle_cb, pc);
	if (!pc->cn_cl.bev || !pc->cn_t_first || !pc->cn_t_idle) {
		if (!pc->cn_cl.bev)
			close(fd);
		pc_close(pc, "out of memory");
		return;
	}
	pc_dbg(pc, "accepted");
	pc_attribute(pc);
	if (pc->cn_dst_port == sh->listen_port &&
	    addr_is_local(pc->cn_dst.sin_addr)) {
		pc_refuse_self(pc);
		return;
	}
	pc_half_setcb(&pc->cn_cl);
	if (pc->cn_dst_port == PROXY_DNS_PORT) {
		/* SPEC §9.3: TCP to port 53 is DNS, judged query by query. */
		bufferevent_setwatermark(pc->cn_cl.bev, EV_READ, 0,
					 PROXY_READ_MAX);
		bufferevent_enable(pc->cn_cl.bev, EV_READ | EV_WRITE);
		pc_dns_start(pc);
		return;
	}
	bufferevent_setwatermark(pc->cn_cl.bev, EV_READ, 0, PROXY_CLASSIFY_MAX);
	bufferevent_enable(pc->cn_cl.bev, EV_READ | EV_WRITE);
	pc_arm_first(pc);
	pc_set_deadline(pc, true);
}

/* ---- workers ---------------------------------------------------------- */

static void worker_pipe_cb(evutil_socket_t pfd, short what, void *arg)
{
	struct worker *w = arg;
	int fds[64];
	ssize_t n;

	(void)what;
	while ((n = read(pfd, fds, sizeof(fds))) > 0) {
		for (size_t i = 0; i < (size_t)n / sizeof(int); i++) {
			if (fds[i] < 0)
				event_base_loopbreak(w->wk_base);
			else
				pconn_new(w, fds[i]);
		}
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	int fds[64];
	ssize_t n;

	event_base_dispatch(w->wk_base);
	/* Stopping: every connection ends through the close path. */
	while (w->wk_conns)
		pc_close(w->wk_conns, "proxy stopping");
	worker_reap(w);
	while ((n = read(w->wk_pipe[0], fds, sizeof(fds))) > 0)
		for (size_t i = 0; i < (size_t)n / sizeof(int); i++)
			if (fds[i] >= 0)
				close(fds[i]);
	return NULL;
}

static void worker_fini(struct worker *w)
{
	if (w->wk_ev_pipe)
		event_free(w->wk_ev_pipe);
	if (w->wk_ev_reap)
		event_free(w->wk_ev_reap);
	if (w->wk_base)
		event_base_free(w->wk_base);
	attrib_free(w->wk_attrib);
	pc_sess_free(w->wk_sess);
	for (int i = 0; i < 2; i++)
		if (w->wk_pipe[i] >= 0)
			close(w->wk_pipe[i]);
}

static bool attrib_configured(const struct attrib_opts *o)
{
	return o->pin_dir || o->conn_map_fd >= 0 || o->cookie_map_fd >= 0;
}

static int worker_init(struct proxy *p, struct worker *w, unsigned idx)
{
	w->wk_p = p;
	w->wk_idx = idx;
	w->wk_pipe[0] = w->wk_pipe[1] = -1;
	atomic_init(&w->wk_load, 0);
	if (pipe2(w->wk_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	w->wk_base = event_base_new();
	if (!w->wk_base)
		return -1;
	w->wk_ev_pipe = event_new(w->wk_base, w->wk_pipe[0],
				  EV_READ | EV_PERSIST, worker_pipe_cb, w);
	w->wk_ev_reap = evtimer_new(w->wk_base, worker_reap_cb, w);
	w->wk_sess = pc_sess_new();
	if (!w->wk_ev_pipe || !w->wk_ev_reap ||
	    event_add(w->wk_ev_pipe, NULL) < 0)
		return -1;
	if (attrib_configured(&p->p_sh->attrib)) {
		w->wk_attrib = attrib_new(&p->p_sh->attrib);
		if (!w->wk_attrib) {
			fprintf(stderr, "proxy: attribution: %s\n",
				strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* ---- the listener ----------------------------------------------------- */

static void listener_dispatch(struct proxy *p, int fd)
{
	struct worker *best = &p->p_w[0];

	for (unsigned i = 1; i < p->p_nw; i++)
		if (atomic_load(&p->p_w[i].wk_load) <
		    atomic_load(&best->wk_load))
			best = &p->p_w[i];
	atomic_fetch_add(&best->wk_load, 1);
	if (write(best->wk_pipe[1], &fd, sizeof(fd)) != sizeof(fd)) {
		/* The worker is hopelessly behind: shed this one. */
		atomic_fetch_sub(&best->wk_load, 1);
		close(fd);
	}
}

static void listener_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *p = arg;

	(void)fd;
	(void)what;
	event_add(p->p_ev_accept, NULL);
}

static void listener_backoff(struct proxy *p, int err)
{
	struct timeval tv;

	p->p_backoff_ms = p->p_backoff_ms ? p->p_backoff_ms * 2 :
					    BACKOFF_MIN_MS;
	if (p->p_backoff_ms > BACKOFF_MAX_MS)
		p->p_backoff_ms = BACKOFF_MAX_MS;
	fprintf(stderr, "proxy: accept: %s; pausing accepts for %u ms\n",
		strerror(err), p->p_backoff_ms);
	/* Never spin on a listening socket that stays readable. */
	event_del(p->p_ev_accept);
	tv.tv_sec = p->p_backoff_ms / 1000;
	tv.tv_usec = (p->p_backoff_ms % 1000) * 1000;
	evtimer_add(p->p_ev_retry, &tv);
}

static void listener_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct proxy *p = arg;

	(void)what;
	for (int i = 0; i < ACCEPT_BURST; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			switch (errno) {
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
				continue;
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				listener_backoff(p, errno);
				return;
			default:
				return; /* EAGAIN and the rest */
			}
		}
		p->p_backoff_ms = 0;
		atomic_fetch_add_explicit(&p->p_sh->stats.accepted, 1,
					  memory_order_relaxed);
		listener_dispatch(p, fd);
	}
}

static void listener_ctl_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *p = arg;

	(void)fd;
	(void)what;
	event_base_loopbreak(p->p_lbase);
}

static void *listener_main(void *arg)
{
	struct proxy *p = arg;

	event_base_dispatch(p->p_lbase);
	return NULL;
}

static void *worker_thread(void *arg)
{
	return worker_main(arg);
}

/* ---- start and stop --------------------------------------------------- */

static int proxy_listener_init(struct proxy *p)
{
	if (pipe2(p->p_ctl, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	p->p_lbase = event_base_new();
	if (!p->p_lbase)
		return -1;
	p->p_ev_accept = event_new(p->p_lbase, p->p_lfd, EV_READ | EV_PERSIST,
				   listener_accept_cb, p);
	p->p_ev_ctl =
		event_new(p->p_lbase, p->p_ctl[0], EV_READ, listener_ctl_cb, p);
	p->p_ev_retry = evtimer_new(p->p_lbase, listener_retry_cb, p);
	if (!p->p_ev_accept || !p->p_ev_ctl || !p->p_ev_retry ||
	    event_add(p->p_ev_accept, NULL) < 0 ||
	    event_add(p->p_ev_ctl, NULL) < 0)
		return -1;
	return 0;
}

int proxy_start(struct proxy_shared *sh, int listen_fd, unsigned nworkers,
		struct proxy **out)
{
	struct proxy *p = util_xcalloc(1, sizeof(*p));

	proxy_debug = getenv("EGRESS_PROXY_DEBUG") != NULL;
	proxy_splice = getenv("EGRESS_PROXY_NO_SPLICE") == NULL;
	pc_tls_prepare(sh);
	*out = NULL;
	if (nworkers == 0)
		nworkers = 1;
	p->p_sh = sh;
	p->p_lfd = listen_fd;
	p->p_ctl[0] = p->p_ctl[1] = -1;
	p->p_nw = nworkers;
	p->p_w = util_xcalloc(nworkers, sizeof(*p->p_w));
	for (unsigned i = 0; i < nworkers; i++) {
		if (worker_init(p, &p->p_w[i], i) < 0) {
			fprintf(stderr, "proxy: worker %u: cannot start\n", i);
			p->p_nw = i + 1;
			proxy_stop(p);
			return -1;
		}
	}
	if (proxy_listener_init(p) < 0) {
		fprintf(stderr, "proxy: listener: cannot start\n");
		proxy_stop(p);
		return -1;
	}
	for (unsigned i = 0; i < nworkers; i++) {
		if (pthread_create(&p->p_w[i].wk_thr, NULL, worker_thread,
				   &p->p_w[i]) != 0) {
			fprintf(stderr, "proxy: worker thread failed\n");
			proxy_stop(p);
			return -1;
		}
		p->p_w[i].wk_started = true;
	}
	if (pthread_create(&p->p_lthr, NULL, listener_main, p) != 0) {
		fprintf(stderr, "proxy: listener thread failed\n");
		proxy_stop(p);
		return -1;
	}
	p->p_lstarted = true;
	*out = p;
	return 0;
}

void proxy_stop(struct proxy *p)
{
	int stop = -1;

	if (!p)
		return;
	/* First no more accepts, then each worker closes its connections. */
	if (p->p_lstarted) {
		if (write(p->p_ctl[1], "x", 1) != 1)
			fprintf(stderr, "proxy: cannot stop the listener\n");
		pthread_join(p->p_lthr, NULL);
	}
	for (unsigned i = 0; i < p->p_nw; i++) {
		struct worker *w = &p->p_w[i];

		if (!w->wk_started)
			continue;
		if (write(w->wk_pipe[1], &stop, sizeof(stop)) != sizeof(stop))
			fprintf(stderr, "proxy: cannot stop worker %u\n", i);
		pthread_join(w->wk_thr, NULL);
	}
	for (unsigned i = 0; i < p->p_nw; i++)
		worker_fini(&p->p_w[i]);
	if (p->p_ev_accept)
		event_free(p->p_ev_accept);
	if (p->p_ev_ctl)
		event_free(p->p_ev_ctl);
	if (p->p_ev_retry)
		event_free(p->p_ev_retry);
	if (p->p_lbase)
		event_base_free(p->p_lbase);
	for (int i = 0; i < 2; i++)
		if (p->p_ctl[i] >= 0)
			close(p->p_ctl[i]);
	if (p->p_lfd >= 0)
		close(p->p_lfd);
	free(p->p_w);
	free(p);
}
