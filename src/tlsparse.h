/*
 * tlsparse.h - reading a TLS ClientHello (SNI, ALPN) from the first bytes
 * of a connection, without OpenSSL and without trusting a single length.
 *
 * The hello may span several TLS records and several TCP segments: call
 * again with more bytes while it says TLSP_NEED_MORE.  Hostile input is
 * expected: every length is checked against what is present, nothing is
 * read out of bounds, the hello is capped (TLSP_MAX_HELLO).
 */
#ifndef EGRESS_TLSPARSE_H
#define EGRESS_TLSPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cdefs.h"

#define TLSP_MAX_HELLO (64 * 1024)

enum tlsp_result {
	TLSP_NEED_MORE, /* a TLS handshake so far, incomplete */
	TLSP_OK, /* a complete ClientHello */
	TLSP_NOT_TLS, /* the bytes are not a TLS handshake record */
	TLSP_MALFORMED, /* TLS, but the hello is invalid or too large */
	TLSP_RESULT_MAX
};

struct tls_hello {
	bool has_sni;
	char sni[256]; /* host_name as sent (case kept), NUL-terminated */
	bool alpn_http11; /* offered "http/1.1" */
	bool alpn_h2; /* offered "h2" */
	bool alpn_other; /* offered something else */
	uint16_t legacy_version;
	size_t consumed; /* bytes of the records holding the hello */
};

/* Parses buf[0..len). */
enum tlsp_result tlsparse_client_hello(const uint8_t *buf, size_t len,
				       struct tls_hello *out) NONNULL(1, 3);
const char *tlsparse_result_str(enum tlsp_result r);

#endif /* EGRESS_TLSPARSE_H */
