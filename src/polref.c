/*
 * polref.c - reference-counted current policy.
 */
#include "polref.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "util.h"

struct polhold {
	policy_t *p;
	atomic_uint refs;
};

struct polref {
	pthread_mutex_t mu;
	struct polhold *cur;
};

static struct polhold *hold_new(policy_t *p)
{
	struct polhold *h = util_xmalloc(sizeof(*h));

	h->p = p;
	atomic_init(&h->refs, 1);
	return h;
}

polref_t *polref_new(policy_t *p)
{
	polref_t *r = util_xcalloc(1, sizeof(*r));

	pthread_mutex_init(&r->mu, NULL);
	r->cur = hold_new(p);
	return r;
}

void polref_put(struct polhold *h)
{
	if (h && atomic_fetch_sub(&h->refs, 1) == 1) {
		policy_free(h->p);
		free(h);
	}
}

void polref_free(polref_t *r)
{
	if (!r)
		return;
	polref_put(r->cur);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

struct polhold *polref_get(polref_t *r)
{
	struct polhold *h;

	pthread_mutex_lock(&r->mu);
	h = r->cur;
	atomic_fetch_add(&h->refs, 1);
	pthread_mutex_unlock(&r->mu);
	return h;
}

const policy_t *polhold_policy(const struct polhold *h)
{
	return h->p;
}

void polref_swap(polref_t *r, policy_t *p)
{
	struct polhold *old, *h = hold_new(p);

	pthread_mutex_lock(&r->mu);
	old = r->cur;
	r->cur = h;
	pthread_mutex_unlock(&r->mu);
	polref_put(old);
}
