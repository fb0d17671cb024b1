/*
 * policy_index.c - lookup structures over a policy's rules.
 *
 * A decision must not scan a thousand rules: the benchmark target is two
 * million decisions a second.  Rules are bucketed by what an event must
 * share with them to match at all: an exact hostname, a wildcard's fixed
 * suffix, an address, a CIDR network.  A lookup collects the few buckets an
 * event can hit and visits their rules in ascending index order, stopping at
 * the first that matches, which keeps the reference's "first matching index"
 * answer.
 */
#include "policy_match.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static void idxvec_push(struct idxvec *v, uint32_t i)
{
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 4;
		v->v = util_xrealloc(v->v, v->cap * sizeof(*v->v));
	}
	v->v[v->n++] = i;
}

static void bucket_add(struct hmap *m, const char *key, size_t klen, uint32_t i)
{
	void **slot = hmap_slot(m, key, klen, NULL);

	if (!*slot)
		*slot = util_xcalloc(1, sizeof(struct idxvec));
	idxvec_push(*slot, i);
}

/*
 * A wildcard pattern's fixed suffix: every name the pattern matches ends with
 * it at a label boundary.  "*.F.B" -> "F.B" when F has no '*', else "B";
 * "F.B" (label mode) -> "B".
 */
const char *policy_wild_key(const char *pattern)
{
	const char *rest = pattern, *dot;

	if (pattern[0] == '*' && pattern[1] == '.') {
		rest = pattern + 2;
		dot = strchr(rest, '.');
		size_t fl = dot ? (size_t)(dot - rest) : strlen(rest);
		if (!memchr(rest, '*', fl))
			return rest;
		return dot ? dot + 1 : "";
	}
	dot = strchr(rest, '.');
	return dot ? dot + 1 : "";
}

static void index_host(struct policy_index *ix, const struct policy_rule *r,
		       uint32_t i)
{
	if (r->host_wild) {
		const char *k = policy_wild_key(r->host);
		bucket_add(&ix->wild, k, strlen(k), i);
	} else {
		bucket_add(&ix->exact, r->host, strlen(r->host), i);
	}
}

void policy_index_build(struct policy *p)
{
	struct policy_index *ix = &p->idx;

	for (uint32_t i = 0; i < p->nrules; i++) {
		const struct policy_rule *r = &p->rules[i];
		switch (r->type) {
		case POLICY_HOST:
		case POLICY_DNS_HOST:
		case POLICY_WILDCARD_HOST:
		case POLICY_DNS_WILDCARD_HOST:
			index_host(ix, r, i);
			break;
		case POLICY_URL:
		case POLICY_PATH:
			index_host(ix, r, i);
			idxvec_push(&ix->urls, i);
			break;
		case POLICY_IP:
			bucket_add(&ix->ip, r->target, strlen(r->target), i);
			break;
		case POLICY_CIDR: {
			unsigned len = (unsigned)__builtin_popcount(r->mask);
			bucket_add(&ix->cidr[len], (const char *)&r->net,
				   sizeof(r->net), i);
			ix->cidr_lens |= 1ULL << len;
			break;
		}
		case POLICY_RULE_TYPE_MAX:
			break;
		}
		ix->any_passthrough |= r->passthrough;
		ix->any_insecure |= r->insecure;
	}
}

static void free_vec(const char *key UNUSED, void *value, void *arg UNUSED)
{
	struct idxvec *v = value;

	free(v->v);
	free(v);
}

void policy_index_fini(struct policy_index *ix)
{
	hmap_foreach(&ix->exact, free_vec, NULL);
	hmap_fini(&ix->exact);
	hmap_foreach(&ix->wild, free_vec, NULL);
	hmap_fini(&ix->wild);
	hmap_foreach(&ix->ip, free_vec, NULL);
	hmap_fini(&ix->ip);
	for (size_t i = 0; i < ARRAY_SIZE(ix->cidr); i++) {
		hmap_foreach(&ix->cidr[i], free_vec, NULL);
		hmap_fini(&ix->cidr[i]);
	}
	free(ix->urls.v);
}

/* The candidate lists one lookup merges. */
struct cands {
	const struct idxvec *stack[48];
	const struct idxvec **v;
	size_t n;
	size_t cap;
};

static void cands_add(struct cands *c, const struct idxvec *v)
{
	if (!v || !v->n)
		return;
	if (c->n == c->cap) {
		size_t cap = c->cap * 2;
		const struct idxvec **nv = util_xmalloc(cap * sizeof(*nv));
		memcpy(nv, c->v, c->n * sizeof(*nv));
		if (c->v != c->stack)
			free(c->v);
		c->v = nv;
		c->cap = cap;
	}
	c->v[c->n++] = v;
}

static void cands_host(struct cands *c, const struct policy_index *ix,
		       const char *h)
{
	size_t len = strlen(h);
	uint64_t hash = HMAP_HASH_INIT;

	/* every suffix that starts at a label boundary, the whole name too;
	 * the hash runs backwards, so each suffix extends the previous one
	 * and the last is the whole name's, for the exact bucket */
	for (size_t i = len + 1; i-- > 0;) {
		if (i < len)
			hash = hmap_hash_step(hash, (unsigned char)h[i]);
		if ((i == 0 || h[i - 1] == '.') && ix->wild.count)
			cands_add(c, hmap_get_hashed(&ix->wild, h + i, len - i,
						     hmap_hash_final(hash)));
	}
	if (ix->exact.count)
		cands_add(c, hmap_get_hashed(&ix->exact, h, len,
					     hmap_hash_final(hash)));
}

int policy_index_first(const struct policy *p, const struct mev *m,
		       unsigned buckets,
		       bool (*pred)(const struct policy_rule *,
				    const struct mev *, const void *),
		       const void *arg)
{
	const struct policy_index *ix = &p->idx;
	struct cands c;
	size_t cur[64], *curp = cur;
	int64_t last = -1;
	int found = -1;

	c.v = c.stack;
	c.n = 0;
	c.cap = ARRAY_SIZE(c.stack);
	if ((buckets & CAND_HOSTS) && m->hn)
		cands_host(&c, ix, m->hn);
	if ((buckets & CAND_URL) && m->has_url) {
		if (m->url.host)
			cands_host(&c, ix, m->url.host);
		else
			cands_add(&c, &ix->urls);
	}
	if (buckets & CAND_ADDR) {
		cands_add(&c, hmap_get(&ix->ip, m->dst_ip, strlen(m->dst_ip)));
		for (unsigned len = 0; m->ip_ok && len <= 32; len++) {
			if (!(ix->cidr_lens & (1ULL << len)))
				continue;
			uint32_t mask = len ? 0xffffffffu << (32 - len) : 0;
			uint32_t net = m->ip & mask;
			cands_add(&c,
				  hmap_get(&ix->cidr[len], (const char *)&net,
					   sizeof(net)));
		}
	}
	if (c.n > ARRAY_SIZE(cur))
		curp = util_xmalloc(c.n * sizeof(*curp));
	memset(curp, 0, c.n * sizeof(*curp));
	for (;;) {
		uint32_t best = UINT32_MAX;
		for (size_t j = 0; j < c.n; j++) {
			const struct idxvec *v = c.v[j];
			while (curp[j] < v->n && (int64_t)v->v[curp[j]] <= last)
				curp[j]++;
			if (curp[j] < v->n && v->v[curp[j]] < best)
				best = v->v[curp[j]];
		}
		if (best == UINT32_MAX)
			break;
		if (pred(&p->rules[best], m, arg)) {
			found = (int)best;
			break;
		}
		last = best;
	}
	if (curp != cur)
		free(curp);
	if (c.v != c.stack)
		free(c.v);
	return found;
}
