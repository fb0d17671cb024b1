/*
 * proxy_dns.c - DNS over TCP (SPEC §9.3): a connection whose original
 * destination port is 53 is spoken to as DNS (RFC 1035 4.2.2 length
 * framing; RFC 7766 pipelining), never relayed blindly.
 *
 * Each query is judged like a UDP one (dnsjudge: the resolver must be
 * allowed by an IP/CIDR udp rule, the name by a name rule) before anything
 * is sent; the upstream connection to the original resolver opens with the
 * first allowed query.  Forwarded queries get fresh random ids, unique
 * among the connection's pending ones, so answers are matched whatever
 * their order; an answer that matches no pending query, or not its
 * question, is dropped.  Blocked -> REFUSED, bytes that are not DNS ->
 * the connection is closed (logged), upstream gone or too many queries
 * pending -> SERVFAIL.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "dnsjudge.h"
#include "proxy_int.h"
#include "util.h"

/* Queries of one connection waiting for the resolver. */
#define PC_DNS_PENDING_MAX 32

struct pc_dnsq {
	struct pc_dnsq *next;
	uint16_t client_id, up_id;
	uint8_t *query; /* as the client sent it, for a SERVFAIL */
	size_t qlen;
	struct dnsj_query q;
};

struct pc_dns {
	struct pc_dnsq *pending;
	size_t npending;
};

static void pc_dns_env(const struct pconn *pc, struct dnsj_env *e)
{
	e->policy = pc->cn_sh->policy;
	e->cache = pc->cn_sh->cache;
	e->audit = pc->cn_sh->audit;
	e->log = pc->cn_sh->log;
}

/* The query borrows the connection's process record while it logs. */
static void pc_dns_lend(struct pconn *pc, struct dnsj_query *q)
{
	q->proc = pc->cn_proc;
	q->src_port = pc->cn_src_port;
	dnsj_set_dst(q, &pc->cn_dst.sin_addr, pc->cn_dst_port);
}

static void pc_dns_unlend(struct dnsj_query *q)
{
	q->proc = NULL;
}

static void pc_dnsq_free(struct pc_dnsq *dq)
{
	free(dq->query);
	pc_dns_unlend(&dq->q);
	dnsj_query_clear(&dq->q);
	free(dq);
}

void pc_dns_free(struct pc_dns *d)
{
	if (!d)
		return;
	while (d->pending) {
		struct pc_dnsq *dq = d->pending;

		d->pending = dq->next;
		pc_dnsq_free(dq);
	}
	free(d);
}

static void pc_dns_send_client(struct pconn *pc, const void *msg, size_t len)
{
	uint8_t pfx[2];
	struct evbuffer *out = bufferevent_get_output(pc->cn_cl.bev);

	if (dnsmsg_tcp_prefix(pfx, len) < 0)
		return;
	evbuffer_add(out, pfx, sizeof(pfx));
	evbuffer_add(out, msg, len);
}

static void pc_dns_reply_rcode(struct pconn *pc, const void *query, size_t qlen,
			       unsigned rcode)
{
	uint8_t out[DNSMSG_UDP_MAX];
	size_t n;

	if (dnsmsg_build_reply(query, qlen, rcode, out, sizeof(out), &n) == 0)
		pc_dns_send_client(pc, out, n);
}

/*
 * A partial query must complete, and a forwarded one be answered, within
 * PROXY_HEAD_TIMEOUT_S: counted from the first byte or the first pending
 * query, restarted by each answer (progress); off when nothing waits.
 */
static void pc_dns_deadline(struct pconn *pc, bool partial, bool progress)
{
	bool waiting = partial || pc->cn_dns->npending;

	if (!waiting)
		pc_set_deadline(pc, false);
	else if (!pc->cn_deadline || progress)
		pc_set_deadline(pc, true);
}

/* Nothing pending and the client is done: the connection ends once its
 * answers are out. */
static void pc_dns_maybe_done(struct pconn *pc)
{
	if (pc->cn_closed || !pc->cn_cl.rd_eof || pc->cn_dns->npending)
		return;
	if (evbuffer_get_length(bufferevent_get_output(pc->cn_cl.bev)) == 0) {
		pc_close(pc, "dns: client done");
		return;
	}
	pc_set_state(pc, PC_FINAL);
}

static bool pc_dns_id_used(const struct pc_dns *d, uint16_t id)
{
	for (const struct pc_dnsq *dq = d->pending; dq; dq = dq->next)
		if (dq->up_id == id)
			return true;
	return false;
}

static void pc_dns_forward(struct pconn *pc, struct pc_dnsq *dq)
{
	struct pc_dns *d = pc->cn_dns;
	uint8_t pfx[2];
	uint8_t *msg;

	do
		arc4random_buf(&dq->up_id, sizeof(dq->up_id));
	while (pc_dns_id_used(d, dq->up_id));
	if (pc->cn_up == PC_UP_NONE && pc_upstream_open(pc) < 0) {
		pc_dns_reply_rcode(pc, dq->query, dq->qlen,
				   DNSMSG_RCODE_SERVFAIL);
		pc_dnsq_free(dq);
		return;
	}
	msg = util_xmalloc(dq->qlen);
	memcpy(msg, dq->query, dq->qlen);
	msg[0] = (uint8_t)(dq->up_id >> 8);
	msg[1] = (uint8_t)dq->up_id;
	if (dnsmsg_tcp_prefix(pfx, dq->qlen) == 0) {
		struct evbuffer *out = bufferevent_get_output(pc->cn_upst.bev);

		evbuffer_add(out, pfx, sizeof(pfx));
		evbuffer_add(out, msg, dq->qlen);
	}
	free(msg);
	dq->next = d->pending;
	d->pending = dq;
	d->npending++;
}

/* One whole message from the client. */
static void pc_dns_query(struct pconn *pc, const uint8_t *msg, size_t len)
{
	struct dnsj_env e;
	struct pc_dnsq *dq = util_xcalloc(1, sizeof(*dq));
	enum dnsj_form form;

	pc_dns_env(pc, &e);
	form = dnsj_parse_query(&dq->q, msg, len);
	pc_dns_lend(pc, &dq->q);
	if (form == DNSJ_FORM_DROP) {
		/* TCP to port 53 that is not DNS: nothing else is relayed
		 * there (it would be a tunnel past the DNS policy). */
		memset(&dq->q.msg, 0, sizeof(dq->q.msg));
		dq->q.error = "not_dns";
		dnsj_log_refused(&e, &dq->q);
		pc_count(pc, POLICY_EV_DNS, false);
		pc_dnsq_free(dq);
		pc_close(pc, "dns: not a DNS message");
		return;
	}
	dq->query = util_xmalloc(len);
	memcpy(dq->query, msg, len);
	dq->qlen = len;
	dq->client_id = dq->q.msg.hdr.id;
	if (form == DNSJ_FORM_REFUSE) {
		dnsj_log_refused(&e, &dq->q);
		pc_count(pc, POLICY_EV_DNS, false);
		pc_dns_reply_rcode(pc, msg, len, dq->q.reply_rcode);
		pc_dnsq_free(dq);
		return;
	}
	if (!dnsj_judge(&e, &dq->q, util_mono_now())) {
		pc_count(pc, POLICY_EV_DNS, false);
		pc_dns_reply_rcode(pc, msg, len, DNSMSG_RCODE_REFUSED);
		pc_dnsq_free(dq);
		return;
	}
	pc_count(pc, POLICY_EV_DNS, true);
	if (pc->cn_dns->npending >= PC_DNS_PENDING_MAX) {
		pc_dns_reply_rcode(pc, msg, len, DNSMSG_RCODE_SERVFAIL);
		pc_dnsq_free(dq);
		return;
	}
	pc_dns_unlend(&dq->q);
	pc_dns_forward(pc, dq);
}

void pc_dns_feed(struct pconn *pc)
{
	struct evbuffer *in = bufferevent_get_input(pc->cn_cl.bev);
	struct evbuffer *out = bufferevent_get_output(pc->cn_cl.bev);

	while (!pc->cn_closed && pc->cn_state == PC_DNS) {
		size_t avail = evbuffer_get_length(in), mlen;
		uint8_t *p;

		/* A client that does not read its answers is not read. */
		if (evbuffer_get_length(out) > PROXY_RELAY_HIGH) {
			pc->cn_cl.throttled = true;
			bufferevent_disable(pc->cn_cl.bev, EV_READ);
			return;
		}
		p = evbuffer_pullup(in, avail < 2 ? (ssize_t)avail : 2);
		if (!p || dnsmsg_tcp_len(p, avail, &mlen) < 0 ||
		    avail < 2 + mlen) {
			pc_dns_deadline(pc, avail != 0, false);
			break;
		}
		if (mlen < DNSMSG_HDRLEN) {
			struct dnsj_env e;
			struct dnsj_query q = { 0 };

			pc_dns_env(pc, &e);
			pc_dns_lend(pc, &q);
			q.error = "not_dns";
			dnsj_log_refused(&e, &q);
			pc_dns_unlend(&q);
			pc_count(pc, POLICY_EV_DNS, false);
			pc_close(pc, "dns: message shorter than a header");
			return;
		}
		p = evbuffer_pullup(in, (ssize_t)(2 + mlen));
		if (!p) {
			pc_close(pc, "dns: out of memory");
			return;
		}
		pc_dns_query(pc, p + 2, mlen);
		if (pc->cn_closed)
			return;
		evbuffer_drain(in, 2 + mlen);
	}
	if (!pc->cn_closed && pc->cn_cl.rd_eof)
		pc_dns_maybe_done(pc);
}

static struct pc_dnsq *pc_dns_take(struct pc_dns *d, uint16_t id)
{
	for (struct pc_dnsq **pp = &d->pending; *pp; pp = &(*pp)->next) {
		struct pc_dnsq *dq = *pp;

		if (dq->up_id == id) {
			*pp = dq->next;
			d->npending--;
			return dq;
		}
	}
	return NULL;
}

void pc_dns_upstream(struct pconn *pc)
{
	struct evbuffer *in = bufferevent_get_input(pc->cn_upst.bev);
	struct dnsj_env e;

	pc_dns_env(pc, &e);
	while (!pc->cn_closed) {
		size_t avail = evbuffer_get_length(in), mlen;
		struct pc_dnsq *dq;
		uint8_t *p;

		p = evbuffer_pullup(in, avail < 2 ? (ssize_t)avail : 2);
		if (!p || dnsmsg_tcp_len(p, avail, &mlen) < 0 ||
		    avail < 2 + mlen)
			break;
		p = evbuffer_pullup(in, (ssize_t)(2 + mlen));
		if (!p) {
			pc_close(pc, "dns: out of memory");
			return;
		}
		dq = mlen >= DNSMSG_HDRLEN ?
			     pc_dns_take(pc->cn_dns,
					 (uint16_t)((p[2] << 8) | p[3])) :
			     NULL;
		if (dq) {
			p[2] = (uint8_t)(dq->client_id >> 8);
			p[3] = (uint8_t)dq->client_id;
			pc_dns_lend(pc, &dq->q);
			if (dnsj_answer(&e, &dq->q, p + 2, mlen,
					util_mono_now()) == 0) {
				pc_dns_send_client(pc, p + 2, mlen);
			} else {
				/* Not an answer to that question: the
				 * client gets SERVFAIL rather than a wait. */
				pc_dns_reply_rcode(pc, dq->query, dq->qlen,
						   DNSMSG_RCODE_SERVFAIL);
			}
			pc_dnsq_free(dq);
		}
		evbuffer_drain(in, 2 + mlen);
	}
	if (pc->cn_closed)
		return;
	pc_dns_deadline(
		pc,
		evbuffer_get_length(bufferevent_get_input(pc->cn_cl.bev)) != 0,
		true);
	pc_dns_maybe_done(pc);
}

/* The resolver closed or could not be reached: every pending query gets
 * SERVFAIL, then the connection ends. */
void pc_dns_upstream_gone(struct pconn *pc)
{
	struct pc_dns *d = pc->cn_dns;

	while (d->pending) {
		struct pc_dnsq *dq = d->pending;

		d->pending = dq->next;
		d->npending--;
		pc_dns_reply_rcode(pc, dq->query, dq->qlen,
				   DNSMSG_RCODE_SERVFAIL);
		pc_dnsq_free(dq);
	}
	if (evbuffer_get_length(bufferevent_get_output(pc->cn_cl.bev)) == 0) {
		pc_close(pc, "dns: resolver gone");
		return;
	}
	pc_set_state(pc, PC_FINAL);
}

/* The client's output drained below the low mark: read it again. */
void pc_dns_client_drained(struct pconn *pc)
{
	if (pc->cn_cl.throttled) {
		pc->cn_cl.throttled = false;
		if (!pc->cn_cl.rd_eof)
			bufferevent_enable(pc->cn_cl.bev, EV_READ);
		pc_dns_feed(pc);
		return;
	}
	pc_dns_maybe_done(pc);
}

void pc_dns_start(struct pconn *pc)
{
	pc->cn_dns = util_xcalloc(1, sizeof(*pc->cn_dns));
	pc_set_state(pc, PC_DNS);
	pc_set_deadline(pc, true);
}
