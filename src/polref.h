/*
 * polref.h - the daemon's current policy, swappable at run time.
 *
 * Workers take a reference for the duration of one decision (or one
 * connection) and drop it after; `reload` installs a new policy atomically
 * and the old one is freed when its last user drops it.  So a decision
 * never sees half of a reload.
 */
#ifndef EGRESS_POLREF_H
#define EGRESS_POLREF_H

#include "cdefs.h"
#include "policy.h"

typedef struct polref polref_t;
struct polhold; /* one policy and its reference count */

/* Takes ownership of p. */
polref_t *polref_new(policy_t *p) NONNULL(1) WUNRES;
void polref_free(polref_t *r);
/* The current policy, referenced (release with polref_put). */
struct polhold *polref_get(polref_t *r) NONNULL(1) WUNRES;
const policy_t *polhold_policy(const struct polhold *h) NONNULL(1);
void polref_put(struct polhold *h);
/* Makes p (owned) current; users of the old one keep it until they put. */
void polref_swap(polref_t *r, policy_t *p) NONNULL(1, 2);

#endif /* EGRESS_POLREF_H */
