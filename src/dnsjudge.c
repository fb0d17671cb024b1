/*
 * dnsjudge.c - judging DNS queries and taking in their answers, shared by
 * the UDP DNS proxy and DNS over TCP (see dnsjudge.h).
 */
#include "dnsjudge.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "procinfo.h"
#include "util.h"

enum dnsj_form dnsj_parse_query(struct dnsj_query *q, const void *msg,
				size_t len)
{
	if (dnsmsg_parse(&q->msg, msg, len) < 0 || q->msg.hdr.qr)
		return DNSJ_FORM_DROP;
	if (q->msg.hdr.opcode != DNSMSG_OPCODE_QUERY) {
		q->error = "dns_opcode_not_query";
		q->reply_rcode = DNSMSG_RCODE_NOTIMP;
		return DNSJ_FORM_REFUSE;
	}
	if (q->msg.hdr.qdcount == 0) {
		q->error = "dns_no_question";
		q->reply_rcode = DNSMSG_RCODE_FORMERR;
		return DNSJ_FORM_REFUSE;
	}
	/* Only the first question would be judged: never let a second one
	 * ride along to the resolver. */
	if (q->msg.hdr.qdcount > 1) {
		q->error = "dns_several_questions";
		q->reply_rcode = DNSMSG_RCODE_REFUSED;
		return DNSJ_FORM_REFUSE;
	}
	return DNSJ_FORM_OK;
}

void dnsj_set_dst(struct dnsj_query *q, const struct in_addr *ip, uint16_t port)
{
	if (!ip) {
		snprintf(q->dst_ip, sizeof(q->dst_ip), "unknown");
		q->dst_port = 0;
		return;
	}
	inet_ntop(AF_INET, ip, q->dst_ip, sizeof(q->dst_ip));
	q->dst_port = port;
}

static void dnsj_fill_event(const struct dnsj_query *q, struct policy_event *ev)
{
	const struct attrib_proc *pr = q->proc;

	memset(ev, 0, sizeof(*ev));
	ev->type = POLICY_EV_DNS;
	ev->dst_ip = q->dst_ip[0] ? q->dst_ip : "unknown";
	ev->dst_port = q->dst_port;
	ev->name = q->msg.q.name;
	procinfo_to_policy(pr, &ev->proc);
}

static void dnsj_log_dst(struct jrec *r, const struct dnsj_query *q)
{
	jrec_str(r, "dst_ip", q->dst_ip[0] ? q->dst_ip : "unknown");
	jrec_int(r, "dst_port", q->dst_port);
	jrec_str(r, "name", q->msg.has_question ? q->msg.q.name : NULL);
}

static void dnsj_log_tail(const struct dnsj_env *e, struct jrec *r,
			  const struct dnsj_query *q)
{
	procinfo_log_end(e->log, r, q->proc, q->src_port);
}

static void dnsj_log_query(const struct dnsj_env *e, const struct dnsj_query *q)
{
	struct jrec r;

	jrec_begin(&r, "dns", 0);
	dnsj_log_dst(&r, q);
	jrec_str(&r, "policy", policy_decision_label(&q->d));
	if (q->error)
		jrec_str(&r, "error", q->error);
	dnsj_log_tail(e, &r, q);
}

bool dnsj_judge(const struct dnsj_env *e, struct dnsj_query *q, double now)
{
	struct policy_event ev;
	struct polhold *h = polref_get(e->policy);

	dnsj_fill_event(q, &ev);
	policy_decide(polhold_policy(h), e->cache, e->audit, false, now, &ev,
		      &q->d);
	polref_put(h);
	dnsj_log_query(e, q);
	return q->d.allow;
}

void dnsj_log_refused(const struct dnsj_env *e, struct dnsj_query *q)
{
	q->d = (struct policy_decision){ .allow = false, .rule = -1 };
	dnsj_log_query(e, q);
}

/* ---- answers ----------------------------------------------------------- */

struct dnsj_collect {
	char (*ips)[INET6_ADDRSTRLEN];
	size_t n;
	long ttl;
};

static int dnsj_collect_cb(const struct dnsmsg_addr *a, void *arg)
{
	struct dnsj_collect *c = arg;

	if ((long)a->ttl < c->ttl)
		c->ttl = (long)a->ttl;
	if (c->n < DNSJ_ANSWERS_MAX)
		snprintf(c->ips[c->n++], INET6_ADDRSTRLEN, "%s", a->addr);
	return 0;
}

int dnsj_response_addrs(const struct dnsj_query *q, const void *resp,
			size_t len, char ips[][INET6_ADDRSTRLEN], size_t *nips,
			long *ttl)
{
	struct dnsj_collect c = { .ips = ips, .ttl = DNSJ_TTL_CAP };
	struct dnsmsg m;

	if (dnsmsg_parse(&m, resp, len) < 0 || !m.hdr.qr ||
	    m.hdr.opcode != q->msg.hdr.opcode)
		return -1;
	if (!m.has_question) {
		/* Some servers drop the question from error replies; such a
		 * reply may carry no data. */
		if (m.hdr.ancount || !q->msg.has_question)
			return -1;
	} else if (!q->msg.has_question || m.q.qtype != q->msg.q.qtype ||
		   m.q.qclass != q->msg.q.qclass ||
		   strcasecmp(m.q.name, q->msg.q.name) != 0 ||
		   m.hdr.qdcount != 1) {
		return -1;
	}
	if (dnsmsg_walk_addrs(resp, len, dnsj_collect_cb, &c) < 0)
		return -1;
	*nips = c.n;
	*ttl = c.ttl;
	return 0;
}

int dnsj_answer(const struct dnsj_env *e, const struct dnsj_query *q,
		const void *resp, size_t len, double now)
{
	char ips[DNSJ_ANSWERS_MAX][INET6_ADDRSTRLEN];
	const char *ipv[DNSJ_ANSWERS_MAX];
	size_t n = 0;
	long ttl = DNSJ_TTL_CAP;
	struct jrec r;

	if (dnsj_response_addrs(q, resp, len, ips, &n, &ttl) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		ipv[i] = ips[i];
	if (n && e->cache && q->msg.has_question)
		dnscache_add(e->cache, ipv, n, q->msg.q.name, ttl, now);
	jrec_begin(&r, "dns_response", 0);
	jrec_strv(&r, "answers", ipv, n);
	jrec_int(&r, "ttl", ttl);
	dnsj_log_dst(&r, q);
	jrec_str(&r, "policy", policy_decision_label(&q->d));
	dnsj_log_tail(e, &r, q);
	return 0;
}

void dnsj_query_clear(struct dnsj_query *q)
{
	attrib_proc_free(q->proc);
	memset(q, 0, sizeof(*q));
}
