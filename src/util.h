/*
 * util.h - allocation that cannot fail, a growable string buffer and a few
 * string helpers used across modules.
 */
#ifndef EGRESS_UTIL_H
#define EGRESS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "cdefs.h"

/*
 * Allocation failure is not recoverable for this program (the policy engine
 * and the daemon have no way to continue without memory), so these abort
 * with a message instead of returning NULL.
 */
void *util_xmalloc(size_t n) MALLOC WUNRES;
void *util_xcalloc(size_t nmemb, size_t size) MALLOC WUNRES;
void *util_xrealloc(void *p, size_t n) WUNRES;
char *util_xstrdup(const char *s) MALLOC WUNRES NONNULL(1);
char *util_xstrndup(const char *s, size_t n) MALLOC WUNRES NONNULL(1);

/* A NUL-terminated, growable byte buffer.  Zero-initialise, then append. */
struct strbuf {
	char *buf;
	size_t len;
	size_t cap;
};

void strbuf_add(struct strbuf *sb, const void *data, size_t n) NONNULL(1);
void strbuf_adds(struct strbuf *sb, const char *s) NONNULL(1, 2);
void strbuf_addc(struct strbuf *sb, char c) NONNULL(1);
void strbuf_addf(struct strbuf *sb, const char *fmt, ...) PRINTF(2, 3)
	NONNULL(1, 2);
void strbuf_reset(struct strbuf *sb) NONNULL(1);
/* Hands the buffer to the caller (free with free()); sb is left empty. */
char *strbuf_steal(struct strbuf *sb) NONNULL(1) WUNRES;
void strbuf_fini(struct strbuf *sb) NONNULL(1);
/* Current contents; never NULL (an empty buffer gives ""). */
const char *strbuf_str(const struct strbuf *sb) NONNULL(1);

/*
 * Reads a whole file into a NUL-terminated buffer.  Returns NULL with errno
 * set on failure.  *lenp (optional) receives the length without the NUL.
 */
char *util_read_file(const char *path, size_t *lenp) NONNULL(1) WUNRES;
char *util_read_stream(FILE *f, size_t *lenp) NONNULL(1) WUNRES;

/*
 * mkdir -p: missing parents are made 0755, path itself with mode; existing
 * directories are fine.  Returns 0, or -1 with errno set.
 */
int util_mkdir_p(const char *path, unsigned mode) NONNULL(1) WUNRES;

/* ASCII lower-casing into a fresh string. */
char *util_ascii_lower(const char *s, size_t n) NONNULL(1) WUNRES;

/* CLOCK_MONOTONIC in seconds: the clock of the DNS cache and every policy
 * decision, shared by the TCP proxy, the DNS proxy and the UDP queue. */
double util_mono_now(void);

/* The value of one hex digit, or -1 if c is not one. */
static inline int util_hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#endif /* EGRESS_UTIL_H */
