/*
 * dnsjudge.h - what the two DNS paths share: the UDP DNS proxy (udpd.c) and
 * DNS over TCP in the transparent proxy (proxy_dns.c).
 *
 * A query is parsed (dnsmsg), judged with the dual check of reference 2.7
 * (resolver allowed by an IP/CIDR udp rule, name allowed), logged as one
 * `dns` line, and only then may be forwarded to the resolver the client
 * asked.  A response counts only if it answers that query (QR set, same
 * question); its A/AAAA answers feed the DNS cache under the query name and
 * it is logged as one `dns_response` line.  The id rewriting, sockets and
 * timeouts belong to the callers.
 *
 * Hardening beyond the reference: a query without a question, with more
 * than one question (only the first would be judged), with QR set or an
 * opcode other than QUERY is never forwarded; it is answered (FORMERR,
 * REFUSED or NOTIMP) and logged as denied with an `error`.
 */
#ifndef EGRESS_DNSJUDGE_H
#define EGRESS_DNSJUDGE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attrib.h"
#include "cdefs.h"
#include "dnscache.h"
#include "dnsmsg.h"
#include "jlog.h"
#include "policy.h"
#include "polref.h"

/* `ttl` of a dns_response line: the smallest answer TTL, at most this
 * (reference 2.7), this when there are no A/AAAA answers. */
#define DNSJ_TTL_CAP 300
/* Addresses of one response that are logged and cached. */
#define DNSJ_ANSWERS_MAX 64

struct dnsj_env {
	polref_t *policy;
	struct dnscache *cache; /* NULL: nothing is cached */
	bool audit;
	jlog_t *log; /* NULL: nothing is logged (tests) */
};

struct dnsj_query {
	struct dnsmsg msg; /* header and first question */
	/* The resolver the client asked: dotted quad, or "unknown" with
	 * port 0 when it could not be found out. */
	char dst_ip[INET_ADDRSTRLEN + 8];
	uint16_t dst_port;
	uint16_t src_port; /* the client's port, 0 if unknown */
	struct attrib_proc *proc; /* owned; NULL: unattributed */
	struct policy_decision d;
	/* Why a query is refused without a policy decision, for the log
	 * (NULL when it was judged): see enum dnsj_form below. */
	const char *error;
	unsigned reply_rcode; /* the rcode of our own answer when refused */
};

enum dnsj_form {
	DNSJ_FORM_OK, /* one question, opcode QUERY: judge it */
	DNSJ_FORM_REFUSE, /* answer it ourselves (reply_rcode), log denied */
	DNSJ_FORM_DROP, /* not a DNS query at all: no answer, no line */
};

/*
 * Parses a client's message into q (which must be zeroed or cleared) and
 * says what to do with it.  DROP for bytes that are not a well-formed DNS
 * message (or are a response): nothing can be answered.
 */
enum dnsj_form dnsj_parse_query(struct dnsj_query *q, const void *msg,
				size_t len) NONNULL(1, 2) WUNRES;

/* Sets the resolver fields; ip NULL: "unknown", port 0. */
void dnsj_set_dst(struct dnsj_query *q, const struct in_addr *ip, uint16_t port)
	NONNULL(1);

/*
 * Judges a DNSJ_FORM_OK query (dual check, audit mode allows) into q->d
 * and writes its `dns` line.  Returns true if it may be forwarded.
 */
bool dnsj_judge(const struct dnsj_env *e, struct dnsj_query *q, double now)
	NONNULL(1, 2);

/* Writes the `dns` line of a query refused before judging (q->error). */
void dnsj_log_refused(const struct dnsj_env *e, struct dnsj_query *q)
	NONNULL(1, 2);

/*
 * A response from the resolver for q (its id already compared by the
 * caller).  Returns 0 if it is a well-formed response to q's question (the
 * cache is fed and the `dns_response` line written), -1 if it is not (the
 * caller ignores it and keeps waiting).
 */
int dnsj_answer(const struct dnsj_env *e, const struct dnsj_query *q,
		const void *resp, size_t len, double now) NONNULL(1, 2, 3);

/*
 * The pure part of dnsj_answer, for tests: does resp answer q's question?
 * If so, fills ips (at most DNSJ_ANSWERS_MAX strings, each of
 * INET6_ADDRSTRLEN bytes) and *nips, and *ttl (reference 2.7).
 */
int dnsj_response_addrs(const struct dnsj_query *q, const void *resp,
			size_t len, char ips[][INET6_ADDRSTRLEN], size_t *nips,
			long *ttl) NONNULL(1, 2, 4, 5, 6) WUNRES;

/* Frees what q owns and zeroes it. */
void dnsj_query_clear(struct dnsj_query *q) NONNULL(1);

#endif /* EGRESS_DNSJUDGE_H */
