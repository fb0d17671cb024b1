/*
 * hmap.c - string-keyed hash map (FNV-1a, chained buckets, doubling).
 */
#include "hmap.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

/*
 * FNV-1a over the bytes from last to first.  Running backwards lets a caller
 * hash every suffix of a string in one pass (hostname suffix lookups).
 */
uint64_t hmap_hash(const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t h = HMAP_HASH_INIT;

	for (size_t i = len; i > 0; i--)
		h = hmap_hash_step(h, p[i - 1]);
	return hmap_hash_final(h);
}

void hmap_fini(struct hmap *m)
{
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct hmap_entry *e = m->buckets[i];
		while (e) {
			struct hmap_entry *next = e->next;
			free(e);
			e = next;
		}
	}
	free(m->buckets);
	m->buckets = NULL;
	m->nbuckets = m->count = 0;
}

static struct hmap_entry **hmap_find(const struct hmap *m, const char *key,
				     size_t klen, uint64_t h)
{
	struct hmap_entry **pp;

	if (!m->nbuckets)
		return NULL;
	pp = &m->buckets[h & (m->nbuckets - 1)];
	for (; *pp; pp = &(*pp)->next) {
		if ((*pp)->hash == h && (*pp)->klen == klen &&
		    memcmp((*pp)->key, key, klen) == 0)
			return pp;
	}
	return pp;
}

void *hmap_get(const struct hmap *m, const char *key, size_t klen)
{
	if (!m->count)
		return NULL;
	return hmap_get_hashed(m, key, klen, hmap_hash(key, klen));
}

void *hmap_get_hashed(const struct hmap *m, const char *key, size_t klen,
		      uint64_t hash)
{
	struct hmap_entry **pp = hmap_find(m, key, klen, hash);

	return pp && *pp ? (*pp)->value : NULL;
}

static void hmap_grow(struct hmap *m)
{
	size_t n = m->nbuckets ? m->nbuckets * 2 : 16;
	struct hmap_entry **b = util_xcalloc(n, sizeof(*b));

	for (size_t i = 0; i < m->nbuckets; i++) {
		struct hmap_entry *e = m->buckets[i];
		while (e) {
			struct hmap_entry *next = e->next;
			size_t j = e->hash & (n - 1);
			e->next = b[j];
			b[j] = e;
			e = next;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->nbuckets = n;
}

void **hmap_slot(struct hmap *m, const char *key, size_t klen, bool *created)
{
	uint64_t h = hmap_hash(key, klen);
	struct hmap_entry **pp, *e;

	pp = hmap_find(m, key, klen, h);
	if (pp && *pp) {
		if (created)
			*created = false;
		return &(*pp)->value;
	}
	if (m->count + 1 > m->nbuckets - m->nbuckets / 4 || !m->nbuckets)
		hmap_grow(m);
	e = util_xmalloc(sizeof(*e) + klen + 1);
	e->hash = h;
	e->value = NULL;
	e->klen = klen;
	memcpy(e->key, key, klen);
	e->key[klen] = '\0';
	pp = &m->buckets[h & (m->nbuckets - 1)];
	e->next = *pp;
	*pp = e;
	m->count++;
	if (created)
		*created = true;
	return &e->value;
}

void *hmap_del(struct hmap *m, const char *key, size_t klen)
{
	struct hmap_entry **pp = hmap_find(m, key, klen, hmap_hash(key, klen));
	struct hmap_entry *e;
	void *v;

	if (!pp || !*pp)
		return NULL;
	e = *pp;
	*pp = e->next;
	v = e->value;
	free(e);
	m->count--;
	return v;
}

void hmap_foreach(const struct hmap *m,
		  void (*fn)(const char *key, void *value, void *arg),
		  void *arg)
{
	for (size_t i = 0; i < m->nbuckets; i++)
		for (struct hmap_entry *e = m->buckets[i]; e; e = e->next)
			fn(e->key, e->value, arg);
}
