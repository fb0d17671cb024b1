/*
 * sim_certs.c - the world's test PKI, made with OpenSSL's X.509 API.
 *
 *   ca.pem/.key          the world's test CA (what `egress-sim ca` prints)
 *   main.pem/.key        CA-signed: example.test, www.example.test, sim.test,
 *                        *.sim.test, other.test
 *   self-signed.pem/.key self-signed: self-signed.sim.test
 *   expired.pem/.key     CA-signed, expired a year ago: expired.sim.test
 *   wrong-host.pem/.key  CA-signed for wrong-name.invalid (served as
 *                        wrong-host.sim.test)
 *   ip-only.pem/.key     CA-signed, IP SAN 198.51.100.14 and no name
 *
 * Keys are P-256: quick to make, so every world gets fresh ones.
 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "sim.h"

#define DAY (24L * 3600L)

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok;

	if (!e)
		return -1;
	ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok ? 0 : -1;
}

struct spec {
	const char *file;
	const char *cn;
	const char *san; /* NULL: none */
	long not_before, not_after; /* seconds from now */
	bool self_signed;
};

/* Builds and signs one certificate; returns it (caller frees) or NULL. */
static X509 *make_cert(const struct spec *s, EVP_PKEY *key, X509 *ca,
		       EVP_PKEY *ca_key, bool is_ca)
{
	X509 *x = X509_new();
	X509_NAME *n;
	X509V3_CTX ctx;
	uint64_t serial;

	if (!x || RAND_bytes((unsigned char *)&serial, sizeof(serial)) != 1)
		goto fail;
	serial >>= 1; /* positive */
	if (!X509_set_version(x, 2) ||
	    !ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), s->not_before) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), s->not_after) ||
	    !X509_set_pubkey(x, key))
		goto fail;
	n = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC,
					(const unsigned char *)"egress-sim", -1,
					-1, 0) ||
	    !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
					(const unsigned char *)s->cn, -1, -1,
					0) ||
	    !X509_set_issuer_name(x, ca ? X509_get_subject_name(ca) : n))
		goto fail;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, ca ? ca : x, x, NULL, NULL, 0);
	if (add_ext(x, &ctx, NID_basic_constraints,
		    is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE") ||
	    add_ext(x, &ctx, NID_key_usage,
		    is_ca ? "critical,keyCertSign,cRLSign" :
			    "critical,digitalSignature,keyEncipherment") ||
	    add_ext(x, &ctx, NID_subject_key_identifier, "hash") ||
	    (!is_ca && add_ext(x, &ctx, NID_ext_key_usage, "serverAuth")) ||
	    (ca &&
	     add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always")) ||
	    (s->san && add_ext(x, &ctx, NID_subject_alt_name, s->san)))
		goto fail;
	if (!X509_sign(x, ca_key ? ca_key : key, EVP_sha256()))
		goto fail;
	return x;
fail:
	X509_free(x);
	return NULL;
}

static int write_pair(const char *dir, const char *file, X509 *x, EVP_PKEY *key)
{
	char path[512];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s.pem", dir, file);
	f = fopen(path, "w");
	if (!f)
		return -1;
	ok = PEM_write_X509(f, x);
	if (fclose(f) != 0 || !ok)
		return -1;
	snprintf(path, sizeof(path), "%s/%s.key", dir, file);
	mode_t old = umask(077);
	f = fopen(path, "w");
	umask(old);
	if (!f)
		return -1;
	ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	return fclose(f) == 0 && ok ? 0 : -1;
}

int sim_certs_create(const char *dir, const char *world)
{
	char cn[128];
	const struct spec ca_spec = { "ca", cn, NULL, -DAY, 3650 * DAY, true };
	const struct spec leaves[] = {
		{ "main", "example.test",
		  "DNS:example.test,DNS:www.example.test,DNS:sim.test,"
		  "DNS:*.sim.test,DNS:other.test",
		  -DAY, 365 * DAY, false },
		{ "self-signed", "self-signed.sim.test",
		  "DNS:self-signed.sim.test", -DAY, 365 * DAY, true },
		{ "expired", "expired.sim.test", "DNS:expired.sim.test",
		  -730 * DAY, -365 * DAY, false },
		{ "wrong-host", "wrong-name.invalid", "DNS:wrong-name.invalid",
		  -DAY, 365 * DAY, false },
		{ "ip-only", "198.51.100.14", "IP:198.51.100.14", -DAY,
		  365 * DAY, false },
	};
	EVP_PKEY *ca_key = EVP_EC_gen("P-256");
	X509 *ca = NULL;
	int rc = -1;

	snprintf(cn, sizeof(cn), "egress-sim test CA (%s)", world);
	if (!ca_key)
		goto out;
	ca = make_cert(&ca_spec, ca_key, NULL, NULL, true);
	if (!ca || write_pair(dir, "ca", ca, ca_key) < 0)
		goto out;
	for (size_t i = 0; i < ARRAY_SIZE(leaves); i++) {
		EVP_PKEY *k = EVP_EC_gen("P-256");
		X509 *x = k ? make_cert(&leaves[i], k,
					leaves[i].self_signed ? NULL : ca,
					leaves[i].self_signed ? NULL : ca_key,
					false) :
			      NULL;
		int r = x ? write_pair(dir, leaves[i].file, x, k) : -1;
		X509_free(x);
		EVP_PKEY_free(k);
		if (r < 0)
			goto out;
	}
	rc = 0;
out:
	if (rc < 0)
		fprintf(stderr,
			"egress-sim: cannot create the test PKI in %s\n", dir);
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	return rc;
}
