/*
 * hmap.h - a string-keyed hash map with chaining.
 *
 * Keys are copied; values are opaque pointers owned by the caller.  Not
 * thread-safe: callers lock, or build once and then only read.
 */
#ifndef EGRESS_HMAP_H
#define EGRESS_HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cdefs.h"

struct hmap_entry {
	struct hmap_entry *next;
	uint64_t hash;
	void *value;
	size_t klen;
	char key[]; /* NUL-terminated */
};

struct hmap {
	struct hmap_entry **buckets;
	size_t nbuckets; /* a power of two, or 0 before the first insert */
	size_t count;
};

#define HMAP_HASH_INIT 0xcbf29ce484222325ULL

/* One step of hmap_hash, which consumes a key from its last byte to its
 * first; finish with hmap_hash_final. */
static inline uint64_t hmap_hash_step(uint64_t h, unsigned char c)
{
	return (h ^ c) * 0x100000001b3ULL;
}

static inline uint64_t hmap_hash_final(uint64_t h)
{
	/* fold the high bits down: bucket selection masks the low ones */
	return h ^ (h >> 29);
}

uint64_t hmap_hash(const void *key, size_t len) NONNULL(1);

/* Zero-initialised maps are valid and empty. */
void hmap_fini(struct hmap *m) NONNULL(1);

/* The value for key, or NULL. */
void *hmap_get(const struct hmap *m, const char *key, size_t klen)
	NONNULL(1, 2);
/* As hmap_get, with hash = hmap_hash(key, klen) computed by the caller. */
void *hmap_get_hashed(const struct hmap *m, const char *key, size_t klen,
		      uint64_t hash) NONNULL(1, 2);
/*
 * Returns the slot of key's value, inserting key with a NULL value when
 * absent (*created set to true).  The slot stays valid until the next insert
 * or delete.
 */
void **hmap_slot(struct hmap *m, const char *key, size_t klen, bool *created)
	NONNULL(1, 2);
/* Removes key; returns its value (NULL when absent). */
void *hmap_del(struct hmap *m, const char *key, size_t klen) NONNULL(1, 2);

/* Calls fn for every entry, in no particular order. */
void hmap_foreach(const struct hmap *m,
		  void (*fn)(const char *key, void *value, void *arg),
		  void *arg) NONNULL(1, 2);

#endif /* EGRESS_HMAP_H */
