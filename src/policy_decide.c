/*
 * policy_decide.c - decisions per protocol (reference section 2), on top of
 * the matchers and the index.
 */
#include "policy_match.h"

#include <stdlib.h>
#include <string.h>

#include "dnscache.h"

static bool pred_match(const struct policy_rule *r, const struct mev *m,
		       const void *arg UNUSED)
{
	return rule_match(r, m);
}

static bool pred_url_host(const struct policy_rule *r, const struct mev *m,
			  const void *arg UNUSED)
{
	return rule_match_url_host(r, m);
}

static bool pred_passthrough(const struct policy_rule *r, const struct mev *m,
			     const void *arg UNUSED)
{
	return r->passthrough && rule_match(r, m);
}

/* URL/path insecure rules are judged on their host part only (1.10). */
static bool pred_insecure(const struct policy_rule *r, const struct mev *m,
			  const void *arg UNUSED)
{
	if (!r->insecure)
		return false;
	if (r->type == POLICY_URL || r->type == POLICY_PATH)
		return rule_match_url_host(r, m);
	return rule_match(r, m);
}

static bool pred_dns_name(const struct policy_rule *r, const struct mev *m,
			  const void *arg UNUSED)
{
	return rule_match_dns_name(r, m);
}

static bool pred_resolver(const struct policy_rule *r, const struct mev *m,
			  const void *arg UNUSED)
{
	return rule_match_resolver(r, m);
}

#define CAND_ALL (CAND_HOSTS | CAND_URL | CAND_ADDR)

static int match_conn(const policy_t *p, const struct mev *m)
{
	return policy_index_first(p, m, CAND_ALL, pred_match, NULL);
}

/* The DNS dual check: an allowed resolver and an allowed name. */
static int match_dns(const policy_t *p, const struct policy_event *ev)
{
	struct mev m;
	int r = -1;

	mev_init(&m, ev, NULL, ev->name, NULL, NULL);
	if (policy_index_first(p, &m, CAND_ADDR, pred_resolver, NULL) >= 0)
		r = policy_index_first(p, &m, CAND_HOSTS, pred_dns_name, NULL);
	mev_fini(&m);
	return r;
}

int policy_match(const policy_t *p, const struct policy_event *ev)
{
	struct mev m;
	int r;

	if (ev->type == POLICY_EV_DNS && ev->name && *ev->name)
		return match_dns(p, ev);
	mev_init(&m, ev, ev->host, ev->name, ev->url, ev->method);
	r = match_conn(p, &m);
	mev_fini(&m);
	return r;
}

/* Matching with a given hostname only (NULL: address rules only). */
static int match_host(const policy_t *p, const struct policy_event *ev,
		      const char *host)
{
	struct mev m;
	int r;

	mev_init(&m, ev, host, NULL, NULL, NULL);
	r = match_conn(p, &m);
	mev_fini(&m);
	return r;
}

/* tcp, and https without SNI offline: DNS-cache name, then addresses. */
static int match_cached_then_ip(const policy_t *p, struct dnscache *cache,
				double now, const struct policy_event *ev)
{
	char *name = cache && ev->dst_ip ?
			     dnscache_lookup(cache, ev->dst_ip, now) :
			     NULL;
	int r = -1;

	if (name)
		r = match_host(p, ev, name);
	if (r < 0)
		r = match_host(p, ev, NULL);
	free(name);
	return r;
}

/*
 * The daemon's TLS stage for one hostname (SNI or cached name, or NULL):
 * plain matching, then, with a name, the URL/path hostname fallback; then
 * the passthrough (SNI only) and insecure selections.
 */
static int tls_stage(const policy_t *p, const struct policy_event *ev,
		     const char *host, bool sni, struct policy_decision *out)
{
	struct mev m;
	int r;

	mev_init(&m, ev, host, NULL, NULL, NULL);
	r = match_conn(p, &m);
	if (r < 0 && host)
		r = policy_index_first(p, &m, CAND_HOSTS, pred_url_host, NULL);
	if (r >= 0) {
		if (sni && p->idx.any_passthrough)
			out->passthrough = policy_index_first(p, &m, CAND_ALL,
							      pred_passthrough,
							      NULL) >= 0;
		if (!out->passthrough && p->idx.any_insecure)
			out->insecure = policy_index_first(p, &m, CAND_ALL,
							   pred_insecure,
							   NULL) >= 0;
	}
	mev_fini(&m);
	return r;
}

static int decide_tls(const policy_t *p, struct dnscache *cache, bool mitm,
		      double now, const struct policy_event *ev,
		      struct policy_decision *out)
{
	bool sni = ev->host && *ev->host;
	char *name;
	int r = -1;

	if (!mitm)
		return sni ? match_host(p, ev, ev->host) :
			     match_cached_then_ip(p, cache, now, ev);
	if (sni)
		return tls_stage(p, ev, ev->host, true, out);
	/* Without SNI the TLS stage never blocks: the requests are judged
	 * later.  Only the insecure flag is decided here. */
	name = cache && ev->dst_ip ? dnscache_lookup(cache, ev->dst_ip, now) :
				     NULL;
	if (name)
		r = tls_stage(p, ev, name, false, out);
	if (r < 0)
		r = tls_stage(p, ev, NULL, false, out);
	free(name);
	out->allow = true;
	return r;
}

void policy_decide(const policy_t *p, struct dnscache *cache, bool audit,
		   bool mitm, double now, const struct policy_event *ev,
		   struct policy_decision *out)
{
	struct mev m;
	int r = -1;

	memset(out, 0, sizeof(*out));
	switch (ev->type) {
	case POLICY_EV_HTTPS:
		r = decide_tls(p, cache, mitm, now, ev, out);
		break;
	case POLICY_EV_HTTP:
		mev_init(&m, ev, NULL, NULL, ev->url, ev->method);
		r = match_conn(p, &m);
		mev_fini(&m);
		break;
	case POLICY_EV_TCP:
		r = match_cached_then_ip(p, cache, now, ev);
		break;
	case POLICY_EV_UDP:
		r = match_host(p, ev, NULL);
		break;
	case POLICY_EV_DNS:
		if (ev->name && *ev->name)
			r = match_dns(p, ev);
		else
			r = match_host(p, ev, NULL);
		break;
	case POLICY_EV_TYPE_MAX:
		break;
	}
	out->rule = r;
	out->allow = out->allow || r >= 0 || audit;
}
