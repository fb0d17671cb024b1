/*
 * svc_dns.c - the authoritative DNS server of the simulated internet, over
 * UDP and TCP, on top of dnsmsg (which validates every query in full before
 * anything here looks at it).
 */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsmsg.h"
#include "svc_int.h"
#include "util.h"

struct zent {
	char *name; /* lower case, no trailing dot; for "*.x", x */
	bool wild;
	struct in_addr *a;
	size_t na;
};

struct svc_zone {
	struct zent *e;
	size_t n;
};

/* Lower-cased, with one trailing dot removed (zone keys may be FQDNs). */
static char *zone_key(const char *k)
{
	size_t n = strlen(k);

	if (n && k[n - 1] == '.')
		n--;
	return util_ascii_lower(k, n);
}

static int zent_init(struct zent *e, const char *key, json_t *addrs,
		     const char *what)
{
	char *name = zone_key(key);

	e->wild = strncmp(name, "*.", 2) == 0;
	e->name = util_xstrdup(e->wild ? name + 2 : name);
	free(name);
	if (!json_is_array(addrs) || (e->wild && !e->name[0])) {
		fprintf(stderr,
			"svc: %s: zone entry \"%s\" is not a name "
			"with an array of addresses\n",
			what, key);
		return -1;
	}
	e->na = json_array_size(addrs);
	e->a = util_xcalloc(e->na ? e->na : 1, sizeof(*e->a));
	for (size_t i = 0; i < e->na; i++) {
		const char *s = json_string_value(json_array_get(addrs, i));
		if (!s || inet_pton(AF_INET, s, &e->a[i]) != 1) {
			fprintf(stderr,
				"svc: %s: zone entry \"%s\": address "
				"%zu is not an IPv4 address\n",
				what, key, i);
			return -1;
		}
	}
	return 0;
}

struct svc_zone *svc_zone_new(json_t *zone, const char *what)
{
	struct svc_zone *z;
	const char *key;
	json_t *val;

	if (!json_is_object(zone)) {
		fprintf(stderr, "svc: %s: zone must be an object\n", what);
		return NULL;
	}
	z = util_xcalloc(1, sizeof(*z));
	z->e = util_xcalloc(json_object_size(zone) + 1, sizeof(*z->e));
	json_object_foreach(zone, key, val)
	{
		/* counted first, so that a failed entry is freed too */
		if (zent_init(&z->e[z->n++], key, val, what) < 0) {
			svc_zone_free(z);
			return NULL;
		}
	}
	return z;
}

void svc_zone_free(struct svc_zone *z)
{
	if (!z)
		return;
	for (size_t i = 0; i < z->n; i++) {
		free(z->e[i].name);
		free(z->e[i].a);
	}
	free(z->e);
	free(z);
}

/*
 * The entry for name: an exact one, else the wildcard with the longest
 * suffix that name lies strictly below.
 */
static const struct zent *zone_find(const struct svc_zone *z, const char *name)
{
	char *lc = util_ascii_lower(name, strlen(name));
	size_t n = strlen(lc), best_len = 0;
	const struct zent *best = NULL;

	for (size_t i = 0; i < z->n; i++) {
		const struct zent *e = &z->e[i];
		size_t el = strlen(e->name);

		if (!e->wild) {
			if (strcmp(lc, e->name) == 0) {
				best = e;
				break;
			}
			continue;
		}
		if (n > el + 1 && lc[n - el - 1] == '.' &&
		    strcmp(lc + n - el, e->name) == 0 &&
		    (!best || el + 1 > best_len)) {
			best = e;
			best_len = el + 1;
		}
	}
	free(lc);
	return best;
}

static json_t *qtype_json(unsigned t)
{
	const char *s = dnsmsg_type_str(t);

	return s ? json_string(s) : json_sprintf("TYPE%u", t);
}

static void log_answer(json_t *line, const struct dnsmsg *m, unsigned rcode,
		       const struct in_addr *a, size_t na)
{
	json_t *ans = json_array();
	char buf[INET_ADDRSTRLEN];

	for (size_t i = 0; i < na; i++) {
		inet_ntop(AF_INET, &a[i], buf, sizeof(buf));
		json_array_append_new(ans, json_string(buf));
	}
	json_object_set_new(line, "name",
			    svc_json_bytes(m->q.name, strlen(m->q.name)));
	json_object_set_new(line, "qtype", qtype_json(m->q.qtype));
	json_object_set_new(line, "rcode",
			    json_string(dnsmsg_rcode_str(rcode)));
	json_object_set_new(line, "answers", ans);
}

/* The response code for m, and the addresses for a positive answer. */
static unsigned resolve(const struct svc_listener *l, const struct dnsmsg *m,
			const struct in_addr **a, size_t *na)
{
	const struct zent *e;

	*a = NULL;
	*na = 0;
	if (m->hdr.opcode != DNSMSG_OPCODE_QUERY)
		return DNSMSG_RCODE_NOTIMP;
	if (m->hdr.qdcount != 1)
		return DNSMSG_RCODE_FORMERR;
	if (m->q.qclass != DNSMSG_CLASS_IN && m->q.qclass != DNSMSG_CLASS_ANY)
		return DNSMSG_RCODE_REFUSED;
	e = zone_find(l->zone, m->q.name);
	if (!e)
		return DNSMSG_RCODE_NXDOMAIN;
	if (m->q.qtype == DNSMSG_TYPE_A || m->q.qtype == DNSMSG_TYPE_ANY) {
		*a = e->a;
		*na = e->na;
	}
	return DNSMSG_RCODE_NOERROR;
}

/*
 * Builds the answer to query q into out and completes the log line.
 * Returns -1 when q gets no answer at all (malformed, or not a query).
 */
static int dns_answer(const struct svc_listener *l, const uint8_t *q, size_t n,
		      uint8_t *out, size_t cap, size_t *olen, json_t *line)
{
	const struct in_addr *a;
	struct dnsmsg m;
	unsigned rcode;
	size_t na;
	int rc;

	rc = dnsmsg_parse(&m, q, n);
	if (rc < 0 || m.hdr.qr) {
		json_object_set_new(line, "error",
				    json_string(rc < 0 ? "malformed" :
							 "not a query"));
		json_object_set_new(line, "bytes", json_integer((json_int_t)n));
		return -1;
	}
	rcode = resolve(l, &m, &a, &na);
	/* Errors about the query itself are not authoritative data. */
	if (rcode == DNSMSG_RCODE_NOERROR || rcode == DNSMSG_RCODE_NXDOMAIN)
		rc = dnsmsg_build_answer(q, n, rcode, a, na, l->ttl, out, cap,
					 olen);
	else
		rc = dnsmsg_build_reply(q, n, rcode, out, cap, olen);
	log_answer(line, &m, rcode, a, na);
	return rc;
}

void svc_dns_dgram(struct svc_listener *l, const uint8_t *buf, size_t n,
		   const struct sockaddr *peer, socklen_t peerlen,
		   const char *peerstr)
{
	json_t *line = svc_log_new("dns", "udp", l->local, peerstr, "query");
	uint8_t out[DNSMSG_UDP_MAX];
	size_t olen;

	/* Malformed: no answer, as a real server would drop it. */
	if (dns_answer(l, buf, n, out, sizeof(out), &olen, line) == 0)
		sendto(l->fd, out, olen, 0, peer, peerlen);
	svc_log_write(l->sv, line);
}

/* Answers every complete length-prefixed query in the input. */
static void dns_tcp_read(struct svc_conn *c)
{
	/* One loop thread: a static buffer is safe and keeps 64 KiB off the
	 * stack. */
	static uint8_t out[2 + DNSMSG_TCP_MAX];
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer *ob = bufferevent_get_output(c->bev);

	while (c->state == SVC_CONN_OPEN &&
	       evbuffer_get_length(ob) <= SVC_OUT_MAX) {
		size_t avail = evbuffer_get_length(in), mlen, olen;
		const uint8_t *p;
		json_t *line;

		if (avail < 2)
			return;
		p = evbuffer_pullup(in, 2);
		if (!p || dnsmsg_tcp_len(p, avail, &mlen) < 0 ||
		    avail - 2 < mlen)
			return;
		p = evbuffer_pullup(in, (ev_ssize_t)(2 + mlen));
		line = svc_log_conn(c, "query");
		if (dns_answer(c->l, p + 2, mlen, out + 2, DNSMSG_TCP_MAX,
			       &olen, line) < 0) {
			svc_log_write(c->l->sv, line);
			svc_conn_finish(c, "malformed query");
			return;
		}
		svc_log_write(c->l->sv, line);
		if (dnsmsg_tcp_prefix(out, olen) == 0)
			svc_conn_send(c, out, 2 + olen);
		evbuffer_drain(in, 2 + mlen);
	}
}

const struct svc_conn_ops svc_dns_tcp_ops = {
	.read = dns_tcp_read,
};
