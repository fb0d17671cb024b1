/*
 * dnscache.h - the DNS IP -> hostname cache (reference 2.8).
 *
 * Allowed DNS answers feed it; raw TCP decisions, and HTTPS without SNI, use
 * it to give an address a name.  Entries expire after the answer's TTL,
 * clamped to [60, 3600] s; the latest answer for an address wins.  When full,
 * expired entries go first, then those closest to expiry.  Thread-safe.
 * Time is passed in (monotonic seconds) so that the cache does no I/O and
 * tests control the clock.
 */
#ifndef EGRESS_DNSCACHE_H
#define EGRESS_DNSCACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "cdefs.h"

#define DNSCACHE_CAPACITY 10000
#define DNSCACHE_TTL_MIN 60
#define DNSCACHE_TTL_MAX 3600

struct dnscache;

struct dnscache *dnscache_new(size_t capacity) WUNRES;
void dnscache_free(struct dnscache *c);

/*
 * Replaces the TTL clamp [DNSCACHE_TTL_MIN, DNSCACHE_TTL_MAX] for later
 * additions (egressd --dns-ttl-min/--dns-ttl-max: tests that watch an entry
 * expire do not wait a minute).  -1 if min < 0 or max < min.
 */
int dnscache_set_ttl_bounds(struct dnscache *c, long min, long max) NONNULL(1);

/* Maps each of ips to name (lower-cased) for ttl seconds (clamped). */
void dnscache_add(struct dnscache *c, const char *const *ips, size_t nips,
		  const char *name, long ttl, double now) NONNULL(1, 4);

/*
 * The name cached for ip, as a new string (caller frees), or NULL on a miss.
 * An expired entry is removed and is a miss.
 */
char *dnscache_lookup(struct dnscache *c, const char *ip, double now)
	NONNULL(1, 2) WUNRES;

size_t dnscache_size(struct dnscache *c) NONNULL(1);

#endif /* EGRESS_DNSCACHE_H */
