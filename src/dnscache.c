/*
 * dnscache.c - IP -> hostname cache: a hash map for lookups and a binary
 * min-heap on expiry for eviction, both under one mutex.
 */
#include "dnscache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "util.h"

struct dc_ent {
	char *ip;
	char *name;
	double expiry;
	size_t hi; /* position in the heap */
};

struct dnscache {
	pthread_mutex_t mu;
	struct hmap map; /* ip -> struct dc_ent */
	struct dc_ent **heap;
	size_t n;
	size_t capacity;
	long ttl_min, ttl_max;
};

struct dnscache *dnscache_new(size_t capacity)
{
	struct dnscache *c = util_xcalloc(1, sizeof(*c));

	pthread_mutex_init(&c->mu, NULL);
	c->capacity = capacity ? capacity : 1;
	c->ttl_min = DNSCACHE_TTL_MIN;
	c->ttl_max = DNSCACHE_TTL_MAX;
	c->heap = util_xcalloc(c->capacity, sizeof(*c->heap));
	return c;
}

int dnscache_set_ttl_bounds(struct dnscache *c, long min, long max)
{
	if (min < 0 || max < min)
		return -1;
	pthread_mutex_lock(&c->mu);
	c->ttl_min = min;
	c->ttl_max = max;
	pthread_mutex_unlock(&c->mu);
	return 0;
}

static void ent_free(struct dc_ent *e)
{
	free(e->ip);
	free(e->name);
	free(e);
}

void dnscache_free(struct dnscache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		ent_free(c->heap[i]);
	hmap_fini(&c->map);
	free(c->heap);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static void heap_swap(struct dnscache *c, size_t a, size_t b)
{
	struct dc_ent *t = c->heap[a];

	c->heap[a] = c->heap[b];
	c->heap[b] = t;
	c->heap[a]->hi = a;
	c->heap[b]->hi = b;
}

static void heap_up(struct dnscache *c, size_t i)
{
	while (i > 0 && c->heap[(i - 1) / 2]->expiry > c->heap[i]->expiry) {
		heap_swap(c, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void heap_down(struct dnscache *c, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < c->n && c->heap[l]->expiry < c->heap[m]->expiry)
			m = l;
		if (r < c->n && c->heap[r]->expiry < c->heap[m]->expiry)
			m = r;
		if (m == i)
			return;
		heap_swap(c, i, m);
		i = m;
	}
}

/* Removes e from heap and map and frees it. */
static void ent_remove(struct dnscache *c, struct dc_ent *e)
{
	size_t i = e->hi;

	hmap_del(&c->map, e->ip, strlen(e->ip));
	c->n--;
	if (i != c->n) {
		heap_swap(c, i, c->n);
		heap_down(c, i);
		heap_up(c, i);
	}
	ent_free(e);
}

static void make_room(struct dnscache *c, double now)
{
	while (c->n && c->heap[0]->expiry < now)
		ent_remove(c, c->heap[0]);
	while (c->n >= c->capacity)
		ent_remove(c, c->heap[0]);
}

void dnscache_add(struct dnscache *c, const char *const *ips, size_t nips,
		  const char *name, long ttl, double now)
{
	char *lname = util_ascii_lower(name, strlen(name));

	pthread_mutex_lock(&c->mu);
	if (ttl < c->ttl_min)
		ttl = c->ttl_min;
	if (ttl > c->ttl_max)
		ttl = c->ttl_max;
	for (size_t i = 0; i < nips; i++) {
		size_t len = strlen(ips[i]);
		struct dc_ent *e = hmap_get(&c->map, ips[i], len);
		if (!e) {
			if (c->n >= c->capacity)
				make_room(c, now);
			e = util_xcalloc(1, sizeof(*e));
			e->ip = util_xstrdup(ips[i]);
			*hmap_slot(&c->map, ips[i], len, NULL) = e;
			e->hi = c->n;
			c->heap[c->n++] = e;
		} else {
			free(e->name);
		}
		e->name = util_xstrdup(lname);
		e->expiry = now + (double)ttl;
		heap_down(c, e->hi);
		heap_up(c, e->hi);
	}
	pthread_mutex_unlock(&c->mu);
	free(lname);
}

char *dnscache_lookup(struct dnscache *c, const char *ip, double now)
{
	struct dc_ent *e;
	char *r = NULL;

	pthread_mutex_lock(&c->mu);
	e = hmap_get(&c->map, ip, strlen(ip));
	if (e && now > e->expiry)
		ent_remove(c, e);
	else if (e)
		r = util_xstrdup(e->name);
	pthread_mutex_unlock(&c->mu);
	return r;
}

size_t dnscache_size(struct dnscache *c)
{
	size_t n;

	pthread_mutex_lock(&c->mu);
	n = c->n;
	pthread_mutex_unlock(&c->mu);
	return n;
}
