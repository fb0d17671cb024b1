/*
 * svc_tls.c - server certificates chosen by SNI.
 *
 * One SSL_CTX per certificate.  A connection starts on the first; the
 * servername callback switches it with SSL_set_SSL_CTX to the certificate
 * whose subjectAltName DNS names match, which also tells us afterwards
 * which certificate was used (by comparing contexts).
 */
#include <limits.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc_int.h"
#include "util.h"

struct svc_tls {
	SSL_CTX **ctx;
	size_t n;
};

static void print_ssl_error(const char *what, const char *detail)
{
	unsigned long e = ERR_peek_last_error();
	char buf[256] = "unknown error";

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	fprintf(stderr, "svc: %s: %s: %s\n", what, detail, buf);
}

/*
 * Index of the certificate for name, or -1.  Exact names win over
 * wildcards, so "*.a.test" in one cert does not shadow "x.a.test" in a
 * later one.  Only subjectAltName counts (as browsers do), never the CN.
 */
static int pick_cert(const struct svc_tls *t, const char *name)
{
	static const unsigned passes[] = {
		X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
			X509_CHECK_FLAG_NO_WILDCARDS,
		X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
			X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
	};

	for (size_t p = 0; p < ARRAY_SIZE(passes); p++) {
		for (size_t i = 0; i < t->n; i++) {
			X509 *x = SSL_CTX_get0_certificate(t->ctx[i]);
			if (x &&
			    X509_check_host(x, name, 0, passes[p], NULL) == 1)
				return (int)i;
		}
	}
	return -1;
}

static int servername_cb(SSL *ssl, int *alert, void *arg)
{
	struct svc_tls *t = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	int i;

	(void)alert;
	/* No or unknown SNI: stay on the first certificate. */
	if (!name)
		return SSL_TLSEXT_ERR_OK;
	i = pick_cert(t, name);
	if (i > 0)
		SSL_set_SSL_CTX(ssl, t->ctx[i]);
	return SSL_TLSEXT_ERR_OK;
}

static void path_in(char *out, size_t len, const char *basedir, const char *p)
{
	if (p[0] == '/')
		snprintf(out, len, "%s", p);
	else
		snprintf(out, len, "%s/%s", basedir, p);
}

static SSL_CTX *load_ctx(struct svc_tls *t, json_t *ent, const char *basedir,
			 const char *what)
{
	const char *cert, *key;
	char cp[PATH_MAX], kp[PATH_MAX];
	json_error_t jerr;
	SSL_CTX *ctx;

	if (json_unpack_ex(ent, &jerr, JSON_STRICT, "{s:s,s:s}", "cert", &cert,
			   "key", &key) < 0) {
		fprintf(stderr, "svc: %s: certs: %s\n", what, jerr.text);
		return NULL;
	}
	path_in(cp, sizeof(cp), basedir, cert);
	path_in(kp, sizeof(kp), basedir, key);
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		print_ssl_error(what, "SSL_CTX_new");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* Client-initiated renegotiation only costs us CPU. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb);
	SSL_CTX_set_tlsext_servername_arg(ctx, t);
	if (SSL_CTX_use_certificate_chain_file(ctx, cp) != 1) {
		print_ssl_error(what, cp);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, kp, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		print_ssl_error(what, kp);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

struct svc_tls *svc_tls_new(json_t *certs, const char *basedir,
			    const char *what)
{
	struct svc_tls *t;
	size_t n = json_array_size(certs);

	if (!json_is_array(certs) || n == 0) {
		fprintf(stderr, "svc: %s: certs must be a non-empty array\n",
			what);
		return NULL;
	}
	t = util_xcalloc(1, sizeof(*t));
	t->ctx = util_xcalloc(n, sizeof(*t->ctx));
	for (size_t i = 0; i < n; i++) {
		t->ctx[i] =
			load_ctx(t, json_array_get(certs, i), basedir, what);
		if (!t->ctx[i]) {
			svc_tls_free(t);
			return NULL;
		}
		t->n++;
	}
	return t;
}

void svc_tls_free(struct svc_tls *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		SSL_CTX_free(t->ctx[i]);
	free(t->ctx);
	free(t);
}

SSL *svc_tls_ssl_new(struct svc_tls *t)
{
	SSL *ssl = SSL_new(t->ctx[0]);

	if (!ssl)
		ERR_clear_error();
	return ssl;
}

int svc_tls_cert_index(const struct svc_tls *t, const SSL *ssl)
{
	const SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);

	for (size_t i = 0; i < t->n; i++) {
		if (t->ctx[i] == ctx)
			return (int)i;
	}
	return -1;
}
