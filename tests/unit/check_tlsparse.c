/*
 * check_tlsparse.c - the ClientHello parser: hellos written by OpenSSL's
 * own client (TLS 1.2 and 1.3, with and without SNI, ALPN lists, GREASE and
 * unknown extensions, hellos large enough to span several records) fed at
 * every split point; the same hellos re-framed into small records; a table
 * of hand-made malformed hellos; every internal truncation; plaintext and
 * random bytes; and a mutation loop that must never crash under ASan/UBSan
 * and must give the same answer to a prefix as to the whole.
 *
 * Inputs are always copied to a heap buffer of their exact length first, so
 * that ASan sees any read past the end.
 */
#include <check.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suites.h"
#include "tlsparse.h"

/* ---- helpers ------------------------------------------------------------ */

static uint64_t rng_next(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint8_t *dup_exact(const void *p, size_t n)
{
	uint8_t *b = malloc(n ? n : 1);

	ck_assert_ptr_nonnull(b);
	if (n)
		memcpy(b, p, n);
	return b;
}

/* Parses an exact-length heap copy of p[0..n). */
static enum tlsp_result parse(const void *p, size_t n, struct tls_hello *h)
{
	uint8_t *b = dup_exact(p, n);
	enum tlsp_result r = tlsparse_client_hello(b, n, h);

	free(b);
	return r;
}

/* Every proper prefix of a complete hello asks for more. */
static void check_prefixes(const uint8_t *p, size_t n, size_t step)
{
	struct tls_hello h;

	for (size_t k = 0; k < n; k += (k < 64 || n - k < 64) ? 1 : step) {
		enum tlsp_result r = parse(p, k, &h);

		ck_assert_msg(r == TLSP_NEED_MORE, "prefix %zu/%zu: %s", k, n,
			      tlsparse_result_str(r));
	}
}

/* The handshake stream carried by the records of p[0..n); heap buffer. */
static uint8_t *hs_extract(const uint8_t *p, size_t n, size_t *hlen)
{
	uint8_t *hs = malloc(n ? n : 1);
	size_t pos = 0;

	ck_assert_ptr_nonnull(hs);
	*hlen = 0;
	while (pos + 5 <= n) {
		size_t rlen = (size_t)p[pos + 3] << 8 | p[pos + 4];

		ck_assert_uint_le(pos + 5 + rlen, n);
		memcpy(hs + *hlen, p + pos + 5, rlen);
		*hlen += rlen;
		pos += 5 + rlen;
	}
	return hs;
}

/* Handshake bytes hs[0..hlen) in records of at most frag bytes (record
 * version 0x0301); heap buffer, length in *outlen. */
static uint8_t *frame(const uint8_t *hs, size_t hlen, size_t frag,
		      size_t *outlen)
{
	uint8_t *out = malloc(hlen + (hlen / frag + 1) * 5);
	size_t o = 0;

	ck_assert_ptr_nonnull(out);
	for (size_t off = 0; off < hlen; off += frag) {
		size_t k = hlen - off < frag ? hlen - off : frag;

		out[o++] = 22;
		out[o++] = 3;
		out[o++] = 1;
		out[o++] = (uint8_t)(k >> 8);
		out[o++] = (uint8_t)k;
		memcpy(out + o, hs + off, k);
		o += k;
	}
	*outlen = o;
	return out;
}

/* The records of p[0..n) cut again into records of at most frag bytes. */
static uint8_t *reframe(const uint8_t *p, size_t n, size_t frag, size_t *outlen)
{
	size_t hlen;
	uint8_t *hs = hs_extract(p, n, &hlen);
	uint8_t *out = frame(hs, hlen, frag, outlen);

	free(hs);
	return out;
}

/* A ClientHello body behind its handshake header, in records of 2^14. */
static uint8_t *wrap(const void *body, size_t len, size_t *outlen)
{
	uint8_t *hs = malloc(len + 4), *out;

	ck_assert_ptr_nonnull(hs);
	hs[0] = 1;
	hs[1] = (uint8_t)(len >> 16);
	hs[2] = (uint8_t)(len >> 8);
	hs[3] = (uint8_t)len;
	memcpy(hs + 4, body, len);
	out = frame(hs, len + 4, 16384, outlen);
	free(hs);
	return out;
}

/* ---- hellos from OpenSSL's client ---------------------------------------- */

struct xext {
	unsigned int type;
	size_t len; /* bytes of 0x5a */
};

struct ossl_case {
	const char *what;
	int min_v, max_v;
	const char *sni; /* NULL: none */
	const char *alpn;
	unsigned alpn_len; /* wire format */
	struct xext ext[2];
	bool padding;
	/* expected */
	bool http11, h2, other;
	int nrec; /* records carrying the hello */
};

#define ALPN(s) .alpn = s, .alpn_len = sizeof(s) - 1

static const char long_name[] =
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb."
	"ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc."
	"ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";

static const struct ossl_case ocases[] = {
	{ "tls13 sni alpn h2,http/1.1", TLS1_2_VERSION, TLS1_3_VERSION,
	  "www.Example.COM", ALPN("\x02h2\x08http/1.1"), .http11 = true,
	  .h2 = true, .nrec = 1 },
	{ "tls12 only, sni, no alpn", TLS1_2_VERSION, TLS1_2_VERSION,
	  "example.test", .nrec = 1 },
	{ "tls12, no sni, alpn http/1.1", TLS1_2_VERSION, TLS1_2_VERSION, NULL,
	  ALPN("\x08http/1.1"), .http11 = true, .nrec = 1 },
	{ "tls13 only, no sni, alpn h2", TLS1_3_VERSION, TLS1_3_VERSION, NULL,
	  ALPN("\x02h2"), .h2 = true, .nrec = 1 },
	{ "tls13 alpn other", TLS1_2_VERSION, TLS1_3_VERSION, "a.b",
	  ALPN("\x06spdy/3\x08http/1.1\x03"
	       "foo"),
	  .http11 = true, .other = true, .nrec = 1 },
	{ "grease and unknown extensions", TLS1_2_VERSION, TLS1_3_VERSION,
	  "grease.test", ALPN("\x02h2"),
	  .ext = { { 0x0a0a, 0 }, { 0x7777, 40 } }, .h2 = true, .nrec = 1 },
	{ "padding extension", TLS1_2_VERSION, TLS1_2_VERSION,
	  "pad.example.test", .padding = true, .nrec = 1 },
	{ "253-byte name", TLS1_2_VERSION, TLS1_3_VERSION, long_name,
	  .nrec = 1 },
	{ "hello over two records", TLS1_2_VERSION, TLS1_3_VERSION,
	  "big.example.test", ALPN("\x08http/1.1"),
	  .ext = { { 0x7777, 20000 } }, .http11 = true, .nrec = 2 },
	{ "hello over four records", TLS1_2_VERSION, TLS1_3_VERSION,
	  "huge.example.test", .ext = { { 0x7777, 60000 } }, .nrec = 4 },
};

static int xext_add_cb(SSL *s, unsigned int type, unsigned int context,
		       const unsigned char **out, size_t *outlen, X509 *x,
		       size_t chainidx, int *al, void *arg)
{
	const struct xext *e = arg;
	unsigned char *data = NULL;

	(void)s;
	(void)type;
	(void)context;
	(void)x;
	(void)chainidx;
	(void)al;
	if (e->len) {
		data = OPENSSL_malloc(e->len);
		if (!data)
			return -1;
		memset(data, 0x5a, e->len);
	}
	*out = data;
	*outlen = e->len;
	return 1;
}

static void xext_free_cb(SSL *s, unsigned int type, unsigned int context,
			 const unsigned char *out, void *arg)
{
	(void)s;
	(void)type;
	(void)context;
	(void)arg;
	OPENSSL_free((void *)(uintptr_t)out);
}

/*
 * The ClientHello OpenSSL's client writes for c: the first flight of a
 * handshake whose reads find nothing.  Returns a heap buffer.
 */
static uint8_t *ossl_hello(const struct ossl_case *c, size_t *len)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	SSL *ssl;
	char *data;
	long n;
	uint8_t *out;

	ck_assert_ptr_nonnull(ctx);
	ck_assert(rb && wb);
	ck_assert(SSL_CTX_set_min_proto_version(ctx, c->min_v));
	ck_assert(SSL_CTX_set_max_proto_version(ctx, c->max_v));
	if (c->padding)
		SSL_CTX_set_options(ctx, SSL_OP_TLSEXT_PADDING);
	for (size_t i = 0; i < ARRAY_SIZE(c->ext); i++) {
		const struct xext *e = &c->ext[i];

		if (e->type)
			ck_assert_int_eq(
				SSL_CTX_add_custom_ext(
					ctx, e->type, SSL_EXT_CLIENT_HELLO,
					xext_add_cb, xext_free_cb,
					(void *)(uintptr_t)e, NULL, NULL),
				1);
	}
	if (c->alpn)
		ck_assert_int_eq(SSL_CTX_set_alpn_protos(
					 ctx, (const unsigned char *)c->alpn,
					 c->alpn_len),
				 0);
	ssl = SSL_new(ctx);
	ck_assert_ptr_nonnull(ssl);
	if (c->sni) {
		/* the macro casts its argument to void *: hand it a copy */
		char host[256];

		snprintf(host, sizeof(host), "%s", c->sni);
		ck_assert_int_eq(SSL_set_tlsext_host_name(ssl, host), 1);
	}
	SSL_set_bio(ssl, rb, wb);
	SSL_set_connect_state(ssl);
	ck_assert_int_eq(SSL_do_handshake(ssl), -1);
	ck_assert_int_eq(SSL_get_error(ssl, -1), SSL_ERROR_WANT_READ);
	n = BIO_get_mem_data(wb, &data);
	ck_assert_int_gt(n, 0);
	out = dup_exact(data, (size_t)n);
	*len = (size_t)n;
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return out;
}

static void check_ossl_fields(const struct ossl_case *c,
			      const struct tls_hello *h, size_t len)
{
	ck_assert_int_eq(h->has_sni, c->sni != NULL);
	ck_assert_str_eq(h->sni, c->sni ? c->sni : "");
	ck_assert_int_eq(h->alpn_http11, c->http11);
	ck_assert_int_eq(h->alpn_h2, c->h2);
	ck_assert_int_eq(h->alpn_other, c->other);
	ck_assert_uint_eq(h->legacy_version, 0x0303);
	ck_assert_uint_eq(h->consumed, len);
}

START_TEST(test_openssl_hello)
{
	const struct ossl_case *c = &ocases[_i];
	struct tls_hello h;
	size_t len, nrec = 0;
	uint8_t *b = ossl_hello(c, &len), *more;

	for (size_t pos = 0; pos + 5 <= len;
	     pos += 5 + ((size_t)b[pos + 3] << 8 | b[pos + 4]))
		nrec++;
	ck_assert_uint_eq(nrec, (size_t)c->nrec);
	ck_assert_int_eq(parse(b, len, &h), TLSP_OK);
	check_ossl_fields(c, &h, len);

	/* byte-by-byte feeding: every split point asks for more */
	check_prefixes(b, len, len > 4096 ? 61 : 1);

	/* what follows the hello (early data, say) is not consumed */
	more = malloc(len + 6);
	ck_assert_ptr_nonnull(more);
	memcpy(more, b, len);
	memcpy(more + len, "\x17\x03\x03\x00\x01\x00", 6);
	ck_assert_int_eq(tlsparse_client_hello(more, len + 6, &h), TLSP_OK);
	check_ossl_fields(c, &h, len);
	free(more);
	free(b);
}
END_TEST

/* The same hellos cut into records of every small size. */
START_TEST(test_reframed)
{
	static const size_t frags[] = { 1, 2, 3, 4, 5, 7, 64, 255, 1000 };
	const struct ossl_case *c = &ocases[_i];
	size_t len;
	uint8_t *b = ossl_hello(c, &len);

	for (size_t i = 0; i < ARRAY_SIZE(frags); i++) {
		struct tls_hello h;
		size_t rlen;
		uint8_t *r;

		/* 1-byte records of a 60 kB hello: enough with larger ones */
		if (len > 4096 && frags[i] < 64)
			continue;
		r = reframe(b, len, frags[i], &rlen);
		ck_assert_int_eq(parse(r, rlen, &h), TLSP_OK);
		check_ossl_fields(c, &h, rlen);
		if (len <= 4096)
			check_prefixes(r, rlen, 1);
		free(r);
	}
	free(b);
}
END_TEST

/*
 * Every truncation of the hello body, with the record and handshake
 * lengths made to agree: MALFORMED, except at the one place where a hello
 * may legally end early (after compression_methods, no extensions).
 */
START_TEST(test_truncated_body)
{
	const struct ossl_case *c = &ocases[_i];
	size_t len, hlen, body, sid, cs, cm, legal_end;
	uint8_t *b = ossl_hello(c, &len);
	uint8_t *hs = hs_extract(b, len, &hlen);
	const uint8_t *p = hs + 4;

	body = hlen - 4;
	sid = p[34];
	cs = (size_t)p[35 + sid] << 8 | p[36 + sid];
	cm = p[37 + sid + cs];
	legal_end = 2 + 32 + 1 + sid + 2 + cs + 1 + cm;
	for (size_t cut = 0; cut<body; cut += body> 4096 ? 97 : 1) {
		struct tls_hello h;
		enum tlsp_result res;
		size_t rlen;
		uint8_t *r = wrap(p, cut, &rlen);

		res = tlsparse_client_hello(r, rlen, &h);
		if (cut == legal_end) {
			ck_assert_int_eq(res, TLSP_OK);
			ck_assert(!h.has_sni);
		} else {
			ck_assert_msg(res == TLSP_MALFORMED, "cut %zu: %s", cut,
				      tlsparse_result_str(res));
		}
		free(r);
	}
	free(hs);
	free(b);
}
END_TEST

/* ---- hand-made hellos ------------------------------------------------------ */

/* legacy_version, random, empty session id, one suite, null compression */
#define HELLO_HEAD                         \
	"\x03\x03"                         \
	"RRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRR" \
	"\x00"                             \
	"\x00\x02\x13\x01"                 \
	"\x01\x00"

/* server_name for "a.test" */
#define SNI_A                                  \
	"\x00\x00\x00\x0b\x00\x09\x00\x00\x06" \
	"a.test"
#define ALPN_H11                       \
	"\x00\x10\x00\x0b\x00\x09\x08" \
	"http/1.1"

struct mcase {
	const char *what;
	const char *body; /* ClientHello body (after the handshake header) */
	size_t len;
	enum tlsp_result rc;
	const char *sni; /* expected when rc is TLSP_OK; NULL: no SNI */
};

#define B(s) .body = s, .len = sizeof(s) - 1
static const struct mcase mcases[] = {
	{ "no extensions", B(HELLO_HEAD), TLSP_OK, NULL },
	{ "empty extensions", B(HELLO_HEAD "\x00\x00"), TLSP_OK, NULL },
	{ "sni", B(HELLO_HEAD "\x00\x0f" SNI_A), TLSP_OK, "a.test" },
	{ "sni and alpn", B(HELLO_HEAD "\x00\x1e" SNI_A ALPN_H11), TLSP_OK,
	  "a.test" },
	{ "grease, empty and unknown extensions first",
	  B(HELLO_HEAD "\x00\x1d"
		       "\x0a\x0a\x00\x00"
		       "\xfe\x0d\x00\x06zzzzzz" SNI_A),
	  TLSP_OK, "a.test" },
	{ "extensions shorter than said", B(HELLO_HEAD "\x00\x10" SNI_A),
	  TLSP_MALFORMED },
	{ "extensions longer than said", B(HELLO_HEAD "\x00\x0e" SNI_A),
	  TLSP_MALFORMED },
	{ "byte after the extensions", B(HELLO_HEAD "\x00\x0f" SNI_A "\x00"),
	  TLSP_MALFORMED },
	{ "one byte where extensions go", B(HELLO_HEAD "\x00"),
	  TLSP_MALFORMED },
	{ "extension data overruns", B(HELLO_HEAD "\x00\x06\x77\x77\x00\x05zz"),
	  TLSP_MALFORMED },
	{ "extension header cut", B(HELLO_HEAD "\x00\x03\x77\x77\x00"),
	  TLSP_MALFORMED },
	{ "legacy_version 2.0", B("\x02\x00" HELLO_HEAD), TLSP_MALFORMED },
	{ "session id 33 bytes",
	  B("\x03\x03"
	    "RRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRR"
	    "\x21"
	    "SSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSS"
	    "\x00\x02\x13\x01\x01\x00"),
	  TLSP_MALFORMED },
	{ "session id 32 bytes",
	  B("\x03\x03"
	    "RRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRR"
	    "\x20"
	    "SSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSS"
	    "\x00\x02\x13\x01\x01\x00"),
	  TLSP_OK },
	{ "odd cipher suites",
	  B("\x03\x03"
	    "RRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRR"
	    "\x00\x00\x03\x13\x01\x13\x01\x00"),
	  TLSP_MALFORMED },
	{ "no cipher suites",
	  B("\x03\x03"
	    "RRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRR"
	    "\x00\x00\x00\x01\x00"),
	  TLSP_MALFORMED },
	{ "no compression methods",
	  B("\x03\x03"
	    "RRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRR"
	    "\x00\x00\x02\x13\x01\x00"),
	  TLSP_MALFORMED },
	{ "random cut", B("\x03\x03RRRR"), TLSP_MALFORMED },
	{ "empty body", B(""), TLSP_MALFORMED },
	{ "sni: empty extension", B(HELLO_HEAD "\x00\x04\x00\x00\x00\x00"),
	  TLSP_MALFORMED },
	{ "sni: empty list", B(HELLO_HEAD "\x00\x06\x00\x00\x00\x02\x00\x00"),
	  TLSP_MALFORMED },
	{ "sni: empty name",
	  B(HELLO_HEAD "\x00\x09\x00\x00\x00\x05\x00\x03\x00\x00\x00"),
	  TLSP_MALFORMED },
	{ "sni: NUL in the name",
	  B(HELLO_HEAD "\x00\x0d\x00\x00\x00\x09\x00\x07\x00\x00\x04"
		       "a\0.b"),
	  TLSP_MALFORMED },
	{ "sni: name overruns the list",
	  B(HELLO_HEAD "\x00\x0d\x00\x00\x00\x09\x00\x07\x00\x00\x05"
		       "a.bc"),
	  TLSP_MALFORMED },
	{ "sni: list shorter than the extension",
	  B(HELLO_HEAD "\x00\x0e\x00\x00\x00\x0a\x00\x07\x00\x00\x04"
		       "a.bc"
		       "\x00"),
	  TLSP_MALFORMED },
	{ "sni: other name type only",
	  B(HELLO_HEAD "\x00\x0d\x00\x00\x00\x09\x00\x07\x01\x00\x04"
		       "a.bc"),
	  TLSP_OK, NULL },
	{ "sni: host_name after another type",
	  B(HELLO_HEAD "\x00\x14\x00\x00\x00\x10\x00\x0e"
		       "\x01\x00\x04"
		       "x.yz"
		       "\x00\x00\x04"
		       "a.bc"),
	  TLSP_OK, "a.bc" },
	{ "sni: first host_name wins",
	  B(HELLO_HEAD "\x00\x14\x00\x00\x00\x10\x00\x0e"
		       "\x00\x00\x04"
		       "a.bc"
		       "\x00\x00\x04"
		       "x.yz"),
	  TLSP_OK, "a.bc" },
	{ "sni: second entry cut",
	  B(HELLO_HEAD "\x00\x10\x00\x00\x00\x0c\x00\x0a"
		       "\x00\x00\x04"
		       "a.bc"
		       "\x00\x00\x04"),
	  TLSP_MALFORMED },
	{ "sni: twice", B(HELLO_HEAD "\x00\x1e" SNI_A SNI_A), TLSP_MALFORMED },
	{ "alpn: twice", B(HELLO_HEAD "\x00\x1e" ALPN_H11 ALPN_H11),
	  TLSP_MALFORMED },
	{ "alpn: empty list", B(HELLO_HEAD "\x00\x06\x00\x10\x00\x02\x00\x00"),
	  TLSP_MALFORMED },
	{ "alpn: empty protocol",
	  B(HELLO_HEAD "\x00\x07\x00\x10\x00\x03\x00\x01\x00"),
	  TLSP_MALFORMED },
	{ "alpn: protocol overruns",
	  B(HELLO_HEAD "\x00\x09\x00\x10\x00\x05\x00\x03\x05h2"),
	  TLSP_MALFORMED },
};

START_TEST(test_handmade)
{
	const struct mcase *c = &mcases[_i];
	struct tls_hello h;
	size_t len;
	uint8_t *b = wrap(c->body, c->len, &len);
	enum tlsp_result r = tlsparse_client_hello(b, len, &h);

	ck_assert_msg(r == c->rc, "%s: %s", c->what, tlsparse_result_str(r));
	if (r == TLSP_OK) {
		ck_assert_int_eq(h.has_sni, c->sni != NULL);
		ck_assert_str_eq(h.sni, c->sni ? c->sni : "");
		ck_assert_uint_eq(h.consumed, len);
	} else {
		/* nothing half-parsed is left behind */
		ck_assert(!h.has_sni && !h.sni[0] && !h.consumed);
	}
	check_prefixes(b, len, 1);
	free(b);
}
END_TEST

/* SNI of every length around the limit, NUL-free. */
START_TEST(test_sni_lengths)
{
	static const size_t lens[] = { 1, 63, 254, 255, 256, 300, 65000 };
	size_t n = lens[_i];
	size_t elen = 9 + n, blen = sizeof(HELLO_HEAD) - 1 + 2 + elen;
	char *body = malloc(blen);
	struct tls_hello h;
	size_t len, o = sizeof(HELLO_HEAD) - 1;
	uint8_t *b;

	ck_assert_ptr_nonnull(body);
	memcpy(body, HELLO_HEAD, o);
	body[o++] = (char)(elen >> 8);
	body[o++] = (char)elen;
	body[o++] = 0;
	body[o++] = 0;
	body[o++] = (char)((n + 5) >> 8);
	body[o++] = (char)(n + 5);
	body[o++] = (char)((n + 3) >> 8);
	body[o++] = (char)(n + 3);
	body[o++] = 0;
	body[o++] = (char)(n >> 8);
	body[o++] = (char)n;
	memset(body + o, 'x', n);
	b = wrap(body, blen, &len);
	if (n <= 255) {
		ck_assert_int_eq(tlsparse_client_hello(b, len, &h), TLSP_OK);
		ck_assert_uint_eq(strlen(h.sni), n);
	} else {
		ck_assert_int_eq(tlsparse_client_hello(b, len, &h),
				 TLSP_MALFORMED);
	}
	free(body);
	free(b);
}
END_TEST

/* ---- the record layer ---------------------------------------------------- */

struct rcase {
	const char *what;
	const char *in;
	size_t len;
	enum tlsp_result rc;
};

#define IN(s) .in = s, .len = sizeof(s) - 1

static const struct rcase rcases[] = {
	{ "nothing yet", IN(""), TLSP_NEED_MORE },
	{ "content type only", IN("\x16"), TLSP_NEED_MORE },
	{ "type and major", IN("\x16\x03"), TLSP_NEED_MORE },
	{ "record header", IN("\x16\x03\x01\x00\x40"), TLSP_NEED_MORE },
	{ "record version 0x0300", IN("\x16\x03\x00\x00\x40\x01"),
	  TLSP_NEED_MORE },
	{ "record version 0x0304", IN("\x16\x03\x04\x00\x40\x01"),
	  TLSP_NEED_MORE },
	{ "HTTP, first byte", IN("G"), TLSP_NOT_TLS },
	{ "HTTP request", IN("GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
	  TLSP_NOT_TLS },
	{ "SSH banner", IN("SSH-2.0-OpenSSH_9.2\r\n"), TLSP_NOT_TLS },
	{ "SSLv2 hello",
	  IN("\x80\x2e\x01\x03\x01\x00\x15\x00\x00\x00\x10"
	     "\x07\x00\xc0\x05\x00\x80\x03\x00\x80"),
	  TLSP_NOT_TLS },
	{ "alert record", IN("\x15\x03\x03\x00\x02\x02\x28"), TLSP_NOT_TLS },
	{ "application data", IN("\x17\x03\x03\x00\x01\x00"), TLSP_NOT_TLS },
	{ "major version 2", IN("\x16\x02"), TLSP_NOT_TLS },
	{ "record version 0x0305", IN("\x16\x03\x05"), TLSP_NOT_TLS },
	{ "empty record", IN("\x16\x03\x01\x00\x00"), TLSP_MALFORMED },
	{ "record over 2^14", IN("\x16\x03\x01\x40\x01"), TLSP_MALFORMED },
	{ "record of 2^14", IN("\x16\x03\x01\x40\x00\x01"), TLSP_NEED_MORE },
	{ "server hello", IN("\x16\x03\x03\x00\x40\x02\x00\x00\x3c"),
	  TLSP_MALFORMED },
	{ "hello over 64 KiB", IN("\x16\x03\x01\x40\x00\x01\x00\xff\xfd"),
	  TLSP_MALFORMED },
	{ "hello of 64 KiB", IN("\x16\x03\x01\x40\x00\x01\x00\xff\xfc"),
	  TLSP_NEED_MORE },
	{ "handshake header over two records",
	  IN("\x16\x03\x01\x00\x02\x01\x00\x16\x03\x01\x00\x02\x00\x04"),
	  TLSP_NEED_MORE },
	{ "handshake header over two records, type wrong",
	  IN("\x16\x03\x01\x00\x01\x0b\x16\x03\x01\x00\x03\x00\x00\x04"),
	  TLSP_MALFORMED },
	{ "second record not a handshake",
	  IN("\x16\x03\x01\x00\x04\x01\x00\x00\x40\x17\x03\x03"),
	  TLSP_MALFORMED },
	{ "second record bad version",
	  IN("\x16\x03\x01\x00\x04\x01\x00\x00\x40\x16\x02"), TLSP_MALFORMED },
	{ "second record empty",
	  IN("\x16\x03\x01\x00\x04\x01\x00\x00\x40\x16\x03\x01\x00\x00"),
	  TLSP_MALFORMED },
	{ "hello followed by more handshake in its record",
	  IN("\x16\x03\x01\x00\x32\x01\x00\x00\x29"
	     "\x03\x03"
	     "RRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRR"
	     "\x00\x00\x02\x13\x01\x01\x00"
	     "\x14\x00\x00\x01\x00"),
	  TLSP_MALFORMED },
	{ "hello split over two records",
	  IN("\x16\x03\x01\x00\x10\x01\x00\x00\x29"
	     "\x03\x03"
	     "RRRRRRRRRR"
	     "\x16\x03\x03\x00\x1d"
	     "RRRRRRRRRRRRRRRRRRRRRR"
	     "\x00\x00\x02\x13\x01\x01\x00"),
	  TLSP_OK },
};

START_TEST(test_records)
{
	const struct rcase *c = &rcases[_i];
	struct tls_hello h;
	enum tlsp_result r = parse(c->in, c->len, &h);

	ck_assert_msg(r == c->rc, "%s: %s", c->what, tlsparse_result_str(r));
}
END_TEST

START_TEST(test_result_str)
{
	ck_assert_str_eq(tlsparse_result_str(TLSP_NEED_MORE), "need-more");
	ck_assert_str_eq(tlsparse_result_str(TLSP_OK), "ok");
	ck_assert_str_eq(tlsparse_result_str(TLSP_NOT_TLS), "not-tls");
	ck_assert_str_eq(tlsparse_result_str(TLSP_MALFORMED), "malformed");
	ck_assert_str_eq(tlsparse_result_str(TLSP_RESULT_MAX), "unknown");
}
END_TEST

/* ---- fuzzing --------------------------------------------------------------- */

/*
 * Parses b[0..n) and a random prefix of it and checks what any result
 * must satisfy: a valid code; an OK hello with a terminated, NUL-free SNI
 * and consumed within n; and a prefix that, unless it asks for more, gives
 * the very answer the whole does (so re-calling with more bytes is sound).
 */
static void exercise(const uint8_t *b, size_t n, uint64_t *seed)
{
	struct tls_hello h, hp;
	enum tlsp_result r = tlsparse_client_hello(b, n, &h), rp;
	size_t k = n ? rng_next(seed) % (n + 1) : 0;

	ck_assert_int_ge(r, TLSP_NEED_MORE);
	ck_assert_int_lt(r, TLSP_RESULT_MAX);
	if (r == TLSP_OK) {
		size_t sl = strnlen(h.sni, sizeof(h.sni));

		ck_assert_uint_lt(sl, sizeof(h.sni));
		ck_assert_int_eq(h.has_sni, sl > 0);
		ck_assert_uint_gt(h.consumed, 9);
		ck_assert_uint_le(h.consumed, n);
		ck_assert_uint_eq(h.legacy_version >> 8, 3);
		if (k >= h.consumed)
			k = h.consumed - 1;
	}
	rp = tlsparse_client_hello(b, k, &hp);
	if (rp != TLSP_NEED_MORE) {
		ck_assert_int_eq(rp, r);
		if (r == TLSP_OK)
			ck_assert_uint_eq(hp.consumed, h.consumed);
	}
}

/* Seeds: OpenSSL's hellos, single-record and re-framed small. */
START_TEST(test_mutations)
{
	const struct ossl_case *c = &ocases[_i];
	uint64_t seed = 0x243f6a8885a308d3ull ^ (uint64_t)_i;
	size_t len, flen;
	uint8_t *orig = ossl_hello(c, &len), *framed;
	int iters = len > 4096 ? 500 : 8000;

	framed = reframe(orig, len, 50, &flen);
	for (int it = 0; it < iters; it++) {
		uint64_t r = rng_next(&seed);
		const uint8_t *src = it % 4 == 3 ? framed : orig;
		size_t slen = it % 4 == 3 ? flen : len;
		size_t n = slen;
		uint8_t *b;

		/* now and then cut or extend the input too */
		if (r % 8 == 0)
			n = r / 8 % (slen + 16);
		b = malloc(n ? n : 1);
		ck_assert_ptr_nonnull(b);
		for (size_t i = 0; i < n; i++)
			b[i] = i < slen ? src[i] : (uint8_t)rng_next(&seed);
		for (unsigned f = 0; n && f < 1 + r % 4; f++) {
			uint64_t x = rng_next(&seed);
			size_t at = x / 8 % n;

			switch (x % 4) {
			case 0:
				b[at] ^= (uint8_t)(1u << (x >> 40) % 8);
				break;
			case 1:
				b[at] = (uint8_t)(x >> 32);
				break;
			case 2: /* length-like extremes */
				b[at] = x >> 32 & 1 ? 0xff : 0x00;
				break;
			default: /* off-by-one on a byte */
				b[at] = (uint8_t)(b[at] +
						  (x >> 32 & 1 ? 1 : -1));
				break;
			}
		}
		exercise(b, n, &seed);
		free(b);
	}
	free(framed);
	free(orig);
}
END_TEST

/* Random bytes: mostly NOT_TLS; behind a plausible record header, never a
 * crash. */
START_TEST(test_random_bytes)
{
	uint64_t seed = 0x13198a2e03707344ull;

	for (int it = 0; it < 40000; it++) {
		size_t n = rng_next(&seed) % 200;
		uint8_t *b = malloc(n ? n : 1);
		struct tls_hello h;

		ck_assert_ptr_nonnull(b);
		for (size_t i = 0; i < n; i++)
			b[i] = (uint8_t)rng_next(&seed);
		if (n && b[0] != 0x16)
			ck_assert_int_eq(tlsparse_client_hello(b, n, &h),
					 TLSP_NOT_TLS);
		if (it % 2 && n >= 9) {
			b[0] = 0x16;
			b[1] = 3;
			b[2] &= 3;
			b[3] = 0;
			b[5] = 1;
			b[6] = 0;
			b[7] = 0;
		}
		exercise(b, n, &seed);
		free(b);
	}
}
END_TEST

Suite *tlsparse_suite(void)
{
	Suite *s = suite_create("tlsparse");
	TCase *ossl = tcase_create("openssl");
	TCase *parse_tc = tcase_create("parse");
	TCase *fuzz = tcase_create("fuzz");

	tcase_add_loop_test(ossl, test_openssl_hello, 0, ARRAY_SIZE(ocases));
	tcase_add_loop_test(ossl, test_reframed, 0, ARRAY_SIZE(ocases));
	tcase_add_loop_test(ossl, test_truncated_body, 0, ARRAY_SIZE(ocases));
	tcase_set_timeout(ossl, 60);
	suite_add_tcase(s, ossl);

	tcase_add_loop_test(parse_tc, test_handmade, 0, ARRAY_SIZE(mcases));
	tcase_add_loop_test(parse_tc, test_sni_lengths, 0, 7);
	tcase_add_loop_test(parse_tc, test_records, 0, ARRAY_SIZE(rcases));
	tcase_add_test(parse_tc, test_result_str);
	suite_add_tcase(s, parse_tc);

	tcase_add_loop_test(fuzz, test_mutations, 0, ARRAY_SIZE(ocases));
	tcase_add_test(fuzz, test_random_bytes);
	tcase_set_timeout(fuzz, 120);
	suite_add_tcase(s, fuzz);
	return s;
}
