/*
 * certforge.h - the interception CA and the leaf certificates forged from
 * it for the client side of MITM'd TLS.
 *
 * The CA (ca.key 0600, ca.pem) is created on first use in ca_dir, or
 * loaded; a copy of ca.pem can be published (0644) for clients and the runc
 * wrapper.  Leaves are ECDSA P-256, signed with SHA-256, valid for a short
 * window around now, and carry one SAN: the SNI (DNS) or, without SNI, the
 * original destination address (IP).  They are cached (LRU) and handed out
 * as ready server SSL_CTXs (certificate, key, chain, ALPN http/1.1 only),
 * so a warm handshake costs no signing.  Thread-safe.
 */
#ifndef EGRESS_CERTFORGE_H
#define EGRESS_CERTFORGE_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "cdefs.h"

typedef struct certforge certforge_t;

struct certforge_opts {
	const char *ca_dir; /* ca.key and ca.pem, created if absent */
	const char *public_copy; /* NULL, or where to write ca.pem (0644) */
	size_t cache_max; /* leaves kept (0: 4096) */
};

/* Loads or creates the CA; NULL with *err (caller frees) on failure. */
certforge_t *certforge_new(const struct certforge_opts *o, char **err)
	NONNULL(1, 2) WUNRES;
void certforge_free(certforge_t *cf);

/*
 * A server SSL_CTX presenting a leaf for name (a hostname, or a dotted IPv4
 * address for an IP SAN).  The caller owns a reference (SSL_CTX_free).
 * NULL on failure (OpenSSL error queue set).
 */
SSL_CTX *certforge_ctx(certforge_t *cf, const char *name) NONNULL(1, 2) WUNRES;

/* The CA certificate in PEM (static for cf's lifetime). */
const char *certforge_ca_pem(const certforge_t *cf) NONNULL(1);
/* Cache statistics: hits, misses (forges). */
void certforge_stats(certforge_t *cf, unsigned long *hits,
		     unsigned long *forged) NONNULL(1, 2, 3);

#endif /* EGRESS_CERTFORGE_H */
