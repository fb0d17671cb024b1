/*
 * policy_match.h - the policy engine's per-rule matchers, shared by the
 * index-driven lookups and the decision code.  Internal to the engine.
 */
#ifndef EGRESS_POLICY_MATCH_H
#define EGRESS_POLICY_MATCH_H

#include "policy_int.h"

/* An event prepared for matching: computed once, checked against many rules. */
struct mev {
	const struct policy_event *ev; /* for the process fields */
	bool udp; /* dns/udp (else http/https/tcp) */
	int64_t port;
	const char *dst_ip;
	bool ip_ok; /* dst_ip parsed (inet_aton) */
	uint32_t ip;
	uint32_t mbit; /* 1 << method, 0 for an unknown method */
	const char *hn; /* lower-cased event hostname, or NULL */
	bool has_url;
	struct policy_url url;
	char *urlbuf; /* heap copies, only when the inline ones are too small */
	char *hnbuf;
	char urlinline[512];
	char hninline[256];
};

/*
 * Prepares ev for matching with the given hostname sources (host, then name,
 * then the URL's host), URL and method; any may be NULL.  mev_fini frees.
 */
void mev_init(struct mev *m, const struct policy_event *ev, const char *host,
	      const char *name, const char *url, const char *method)
	NONNULL(1, 2);
void mev_fini(struct mev *m) NONNULL(1);

bool rule_match(const struct policy_rule *r, const struct mev *m) NONNULL(1, 2);
bool rule_match_url_host(const struct policy_rule *r, const struct mev *m)
	NONNULL(1, 2);
bool rule_match_dns_name(const struct policy_rule *r, const struct mev *m)
	NONNULL(1, 2);
bool rule_match_resolver(const struct policy_rule *r, const struct mev *m)
	NONNULL(1, 2);

/* Which candidate buckets a lookup consults. */
enum {
	CAND_HOSTS = 1 << 0, /* exact and wildcard hostname buckets for hn */
	CAND_URL = 1 << 1, /* hostname buckets for the URL's host */
	CAND_ADDR = 1 << 2, /* ip and cidr buckets for dst_ip */
};

/*
 * The lowest rule index whose rule satisfies pred, among the candidates the
 * index yields for m and the given buckets (CAND_*); -1 if none.  Candidates
 * are visited in ascending order, so the answer equals that of a linear scan
 * over all rules restricted to those that can match.
 */
int policy_index_first(const struct policy *p, const struct mev *m,
		       unsigned buckets,
		       bool (*pred)(const struct policy_rule *,
				    const struct mev *, const void *),
		       const void *arg) NONNULL(1, 2, 4);

#endif /* EGRESS_POLICY_MATCH_H */
