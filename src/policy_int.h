/*
 * policy_int.h - internals shared by the policy engine's source files
 * (parser, index, matcher).  Not for other modules.
 */
#ifndef EGRESS_POLICY_INT_H
#define EGRESS_POLICY_INT_H

#include "policy.h"
#include "hmap.h"

/* A bump allocator: everything a policy owns is freed at once. */
struct arena_blk;
struct arena {
	struct arena_blk *head;
};

void *arena_alloc(struct arena *a, size_t n) NONNULL(1) WUNRES;
char *arena_strndup(struct arena *a, const char *s, size_t n)
	NONNULL(1, 2) WUNRES;
void arena_fini(struct arena *a) NONNULL(1);

/* Rule indices kept in ascending order. */
struct idxvec {
	uint32_t *v;
	size_t n;
	size_t cap;
};

/*
 * Lookup structures that let a decision touch only the rules that can match
 * an event, instead of scanning every rule.  Each bucket lists rule indices
 * in ascending order; the matcher merges the candidates and verifies them in
 * rule order, so the first matching index is the same as a linear scan's.
 */
struct policy_index {
	struct hmap exact; /* lower-case name -> idxvec: host, dns_host, and
			      URL/path rules with an exact host */
	struct hmap wild; /* fixed suffix -> idxvec: wildcard, dns_wildcard
			      and URL/path rules with a wildcard host */
	struct hmap ip; /* dotted quad (as written) -> idxvec: ip rules */
	struct hmap cidr[33]; /* per prefix length: network -> idxvec */
	struct idxvec urls; /* every URL/path rule */
	uint64_t cidr_lens; /* bit n set: some cidr rule has prefix n */
	bool any_passthrough; /* some rule is passthrough */
	bool any_insecure; /* some rule is insecure */
};

struct policy {
	struct arena arena;
	struct policy_rule *rules;
	size_t nrules;
	struct policy_index idx;
};

void policy_index_build(struct policy *p) NONNULL(1);
void policy_index_fini(struct policy_index *ix) NONNULL(1);
/* The suffix under which a wildcard pattern is indexed (see policy_index). */
const char *policy_wild_key(const char *pattern) NONNULL(1);

/* Unicode helpers (UTF-8). */
bool policy_utf8_valid(const char *s, size_t n) NONNULL(1);
/* Decodes one code point at s[*i] (input known valid), advancing *i. */
uint32_t policy_utf8_next(const char *s, size_t n, size_t *i) NONNULL(1, 3);
/* Python's str.isspace(). */
bool policy_uc_isspace(uint32_t c);

/*
 * Minimal urllib.parse.urlparse: splits a URL into lower-cased scheme,
 * lower-cased hostname (NULL-able) and path (query, fragment and ;params
 * removed).  Pointers refer to buf, which the caller provides (at least
 * strlen(url) + 2 bytes).
 */
struct policy_url {
	const char *scheme;
	const char *host; /* NULL when the URL has none */
	const char *path;
};
void policy_url_parse(const char *url, char *buf, struct policy_url *out)
	NONNULL(1, 2, 3);

#endif /* EGRESS_POLICY_INT_H */
