/*
 * check_certforge.c - the interception CA and forged leaves: CA creation
 * (modes, atomic files, public copy), reload of the same CA, refusal of a
 * corrupt, mismatched, non-CA or exposed CA with the file named; leaves
 * that verify against the CA alone with the right SAN and extensions; real
 * in-memory TLS handshakes (BIO pair) from a client trusting only the CA,
 * with ALPN and session resumption; the cache (hits, LRU eviction, callers'
 * references outliving eviction, several threads) and hostile names.
 *
 * Every test works in a fresh directory under /tmp, removed at the end.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "certforge.h"
#include "suites.h"
#include "util.h"

/* ---- helpers ------------------------------------------------------------ */

static char tmpdir[64];

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/check-certforge-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static int rm_cb(const char *path, const struct stat *st, int flag,
		 struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void teardown(void)
{
	nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* tmpdir/rel in a static slot i. */
static const char *tpath(int i, const char *rel)
{
	static char buf[4][512];

	snprintf(buf[i], sizeof(buf[i]), "%s/%s", tmpdir, rel);
	return buf[i];
}

static certforge_t *cf_open(const char *dir, const char *pub, size_t max)
{
	struct certforge_opts o = { .ca_dir = dir,
				    .public_copy = pub,
				    .cache_max = max };
	char *err = NULL;
	certforge_t *cf = certforge_new(&o, &err);

	ck_assert_msg(cf != NULL, "certforge_new: %s", err ? err : "?");
	ck_assert_ptr_null(err);
	return cf;
}

/* certforge_new must fail; returns the error (caller frees). */
static char *cf_fail(const char *dir)
{
	struct certforge_opts o = { .ca_dir = dir };
	char *err = NULL;
	certforge_t *cf = certforge_new(&o, &err);

	ck_assert_ptr_null(cf);
	ck_assert_ptr_nonnull(err);
	return err;
}

static char *slurp(const char *path)
{
	char *s = util_read_file(path, NULL);

	ck_assert_msg(s != NULL, "%s: %s", path, strerror(errno));
	return s;
}

static void spit(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_ge(fputs(text, f), 0);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(chmod(path, mode), 0);
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_mode & 07777;
}

static X509 *pem_x509(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);

	BIO_free(b);
	ck_assert_ptr_nonnull(x);
	return x;
}

/* Verifies x against ca alone, for TLS server use if server. */
static int verify(X509 *x, X509 *ca, bool server)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *xc = X509_STORE_CTX_new();
	int ok;

	ck_assert(st && xc);
	ck_assert_int_eq(X509_STORE_add_cert(st, ca), 1);
	ck_assert_int_eq(X509_STORE_CTX_init(xc, st, x, NULL), 1);
	if (server)
		X509_STORE_CTX_set_purpose(xc, X509_PURPOSE_SSL_SERVER);
	ok = X509_verify_cert(xc);
	X509_STORE_CTX_free(xc);
	X509_STORE_free(st);
	return ok;
}

/* ---- the CA ----------------------------------------------------------------- */

START_TEST(test_ca_create_and_reload)
{
	const char *dir = tpath(0, "var/lib/egressd");
	const char *pub = tpath(1, "run/egressd/ca.pem");
	certforge_t *cf = cf_open(dir, pub, 0);
	char *pem1 = util_xstrdup(certforge_ca_pem(cf)), *file;
	struct dirent *de;
	X509 *ca;
	DIR *d;
	int n = 0;

	ck_assert_uint_eq(mode_of(tpath(2, "var/lib/egressd/ca.key")), 0600);
	ck_assert_uint_eq(mode_of(tpath(2, "var/lib/egressd/ca.pem")), 0644);
	ck_assert_uint_eq(mode_of(pub), 0644);
	ck_assert_uint_eq(mode_of(dir), 0700);
	file = slurp(tpath(2, "var/lib/egressd/ca.pem"));
	ck_assert_str_eq(file, pem1);
	free(file);
	file = slurp(pub);
	ck_assert_str_eq(file, pem1);
	free(file);
	/* no temporary file left behind */
	d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	ck_assert_int_eq(n, 2);

	ca = pem_x509(pem1);
	ck_assert_int_eq(X509_check_ca(ca), 1);
	ck_assert_int_eq(X509_check_issued(ca, ca), X509_V_OK);
	ck_assert_int_eq(verify(ca, ca, false), 1);
	X509_free(ca);
	certforge_free(cf);

	/* the second start loads the same CA */
	cf = cf_open(dir, NULL, 0);
	ck_assert_str_eq(certforge_ca_pem(cf), pem1);
	certforge_free(cf);
	free(pem1);
}
END_TEST

/* One broken file at a time: the error names it and the files stay. */
enum cmode { C_WRITE, C_REMOVE, C_CHMOD };

struct corrupt {
	const char *what;
	const char *file; /* the file at fault, named in the error */
	enum cmode how;
	const char *text; /* C_WRITE */
	mode_t mode; /* C_WRITE, C_CHMOD */
	const char *why; /* also in the error */
};

static const struct corrupt corrupts[] = {
	{ "garbage key", "ca/ca.key", C_WRITE, "not a key\n", 0600, "read" },
	{ "truncated key", "ca/ca.key", C_WRITE,
	  "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n"
	  "-----END PRIVATE KEY-----\n",
	  0600, "read" },
	{ "empty key", "ca/ca.key", C_WRITE, "", 0600, "read" },
	{ "garbage certificate", "ca/ca.pem", C_WRITE, "junk\n", 0644, "read" },
	{ "empty certificate", "ca/ca.pem", C_WRITE, "", 0644, "read" },
	{ "key missing", "ca/ca.key", C_REMOVE, NULL, 0, "does not" },
	{ "certificate missing", "ca/ca.pem", C_REMOVE, NULL, 0, "does not" },
	{ "key readable by others", "ca/ca.key", C_CHMOD, NULL, 0644,
	  "accessible to its owner" },
};

START_TEST(test_ca_corrupt)
{
	const struct corrupt *c = &corrupts[_i];
	const char *dir = tpath(0, "ca");
	const char *path = tpath(1, c->file);
	char *before = NULL, *after, *err;

	certforge_free(cf_open(dir, NULL, 0));
	if (c->how == C_REMOVE)
		ck_assert_int_eq(unlink(path), 0);
	else if (c->how == C_WRITE)
		spit(path, c->text, c->mode);
	else
		ck_assert_int_eq(chmod(path, c->mode), 0);
	if (c->how != C_REMOVE)
		before = slurp(path);
	err = cf_fail(dir);
	ck_assert_msg(strstr(err, path) != NULL && strstr(err, c->why),
		      "%s: %s", c->what, err);
	if (before) {
		/* never silently replaced */
		after = slurp(path);
		ck_assert_str_eq(before, after);
		free(after);
	} else {
		ck_assert_int_eq(access(path, F_OK), -1);
	}
	free(before);
	free(err);
}
END_TEST

/* A key from another CA: the pair does not match. */
START_TEST(test_ca_mismatch)
{
	certforge_t *a = cf_open(tpath(0, "a"), NULL, 0);
	certforge_t *b = cf_open(tpath(0, "b"), NULL, 0);
	char *key = slurp(tpath(1, "b/ca.key")), *err;

	certforge_free(a);
	certforge_free(b);
	spit(tpath(1, "a/ca.key"), key, 0600);
	err = cf_fail(tpath(0, "a"));
	ck_assert_msg(strstr(err, "does not match") &&
			      strstr(err, tpath(1, "a/ca.key")),
		      "%s", err);
	free(err);
	free(key);
}
END_TEST

/* ca.pem replaced by a certificate for the same key without CA:TRUE, or
 * one that has expired. */
static void replace_ca(bool is_ca, long days)
{
	BIO *b = BIO_new_file(tpath(1, "ca/ca.key"), "r");
	EVP_PKEY *key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	X509 *x = X509_new();
	X509V3_CTX v3;
	X509_EXTENSION *e;
	FILE *f;

	BIO_free(b);
	ck_assert(key && x);
	ck_assert(X509_set_version(x, X509_VERSION_3));
	ck_assert(ASN1_INTEGER_set(X509_get_serialNumber(x), 7));
	ck_assert(X509_gmtime_adj(X509_getm_notBefore(x), -2 * 86400));
	ck_assert(X509_gmtime_adj(X509_getm_notAfter(x), days * 86400));
	ck_assert(X509_set_pubkey(x, key));
	ck_assert(X509_NAME_add_entry_by_txt(
		X509_get_subject_name(x), "CN", MBSTRING_ASC,
		(const unsigned char *)"x", -1, -1, 0));
	ck_assert(X509_set_issuer_name(x, X509_get_subject_name(x)));
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
				is_ca ? "critical,CA:TRUE" : "CA:FALSE");
	ck_assert(e && X509_add_ext(x, e, -1));
	X509_EXTENSION_free(e);
	ck_assert(X509_sign(x, key, EVP_sha256()));
	f = fopen(tpath(1, "ca/ca.pem"), "w");
	ck_assert(f && PEM_write_X509(f, x));
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(key);
}

START_TEST(test_ca_not_ca)
{
	char *err;

	certforge_free(cf_open(tpath(0, "ca"), NULL, 0));
	replace_ca(false, 30);
	err = cf_fail(tpath(0, "ca"));
	ck_assert_msg(strstr(err, "not a CA") &&
			      strstr(err, tpath(1, "ca/ca.pem")),
		      "%s", err);
	free(err);
	replace_ca(true, -1);
	err = cf_fail(tpath(0, "ca"));
	ck_assert_msg(strstr(err, "expired"), "%s", err);
	free(err);
	/* a valid replacement (same key) is accepted */
	replace_ca(true, 30);
	certforge_free(cf_open(tpath(0, "ca"), NULL, 0));
}
END_TEST

START_TEST(test_ca_dir_unusable)
{
	char *err;

	spit(tpath(0, "file"), "x", 0644);
	err = cf_fail(tpath(0, "file/ca"));
	ck_assert_msg(strstr(err, tpath(0, "file")), "%s", err);
	free(err);
	err = cf_fail("");
	free(err);
}
END_TEST

/* ---- leaves ----------------------------------------------------------------- */

struct lcase {
	const char *name;
	const char *host; /* what the leaf is checked for */
	bool ip;
	bool cn; /* subject CN present */
};

static const char name253[] =
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb."
	"ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc."
	"ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";

static const struct lcase lcases[] = {
	{ "www.Example.COM", "www.example.com", false, true },
	{ "example.test", "example.test", false, true },
	{ "198.51.100.7", "198.51.100.7", true, true },
	{ "under_score-dash.test", "under_score-dash.test", false, true },
	{ name253, name253, false, false },
	{ "localhost", "localhost", false, true },
};

START_TEST(test_leaf)
{
	const struct lcase *c = &lcases[_i];
	certforge_t *cf = cf_open(tpath(0, "ca"), NULL, 0);
	SSL_CTX *ctx = certforge_ctx(cf, c->name);
	X509 *ca = pem_x509(certforge_ca_pem(cf)), *leaf;
	const ASN1_INTEGER *serial;
	const ASN1_OCTET_STRING *aki;
	STACK_OF(X509) *chain = NULL;
	EVP_PKEY *pk;
	time_t now = time(NULL), t;
	char cn[256];

	ck_assert_ptr_nonnull(ctx);
	leaf = SSL_CTX_get0_certificate(ctx);
	ck_assert_ptr_nonnull(leaf);
	ck_assert_int_eq(verify(leaf, ca, true), 1);
	if (c->ip) {
		ck_assert_int_eq(X509_check_ip_asc(leaf, c->host, 0), 1);
		ck_assert_int_ne(X509_check_ip_asc(leaf, "198.51.100.8", 0), 1);
	} else {
		ck_assert_int_eq(X509_check_host(leaf, c->host, 0, 0, NULL), 1);
		ck_assert_int_ne(
			X509_check_host(leaf, "other.test", 0, 0, NULL), 1);
		ck_assert_int_ne(X509_check_ip_asc(leaf, "198.51.100.7", 0), 1);
	}
	/* subject CN = the lower-cased name, when it fits in a CN */
	ck_assert_int_eq(X509_NAME_get_text_by_NID(X509_get_subject_name(leaf),
						   NID_commonName, cn,
						   sizeof(cn)) > 0,
			 c->cn);
	if (c->cn)
		ck_assert_str_eq(cn, c->host);
	ck_assert_int_eq(X509_NAME_cmp(X509_get_issuer_name(leaf),
				       X509_get_subject_name(ca)),
			 0);
	/* extensions */
	ck_assert_int_eq(X509_check_ca(leaf), 0);
	ck_assert_uint_eq(X509_get_key_usage(leaf), KU_DIGITAL_SIGNATURE);
	ck_assert_uint_eq(X509_get_extended_key_usage(leaf), XKU_SSL_SERVER);
	ck_assert_ptr_nonnull(X509_get0_subject_key_id(leaf));
	aki = X509_get0_authority_key_id(leaf);
	ck_assert_ptr_nonnull(aki);
	ck_assert_int_eq(
		ASN1_OCTET_STRING_cmp(aki, X509_get0_subject_key_id(ca)), 0);
	/* random positive 64-bit serial */
	serial = X509_get0_serialNumber(leaf);
	ck_assert_int_eq(ASN1_STRING_type(serial), V_ASN1_INTEGER);
	ck_assert_int_le(ASN1_STRING_length(serial), 9);
	/* validity: an hour back, thirty days on */
	t = now - 3600 + 5;
	ck_assert_int_lt(X509_cmp_time(X509_get0_notBefore(leaf), &t), 0);
	t = now - 3600 - 5;
	ck_assert_int_gt(X509_cmp_time(X509_get0_notBefore(leaf), &t), 0);
	t = now + 30 * 86400 - 5;
	ck_assert_int_gt(X509_cmp_time(X509_get0_notAfter(leaf), &t), 0);
	t = now + 30 * 86400 + 5;
	ck_assert_int_lt(X509_cmp_time(X509_get0_notAfter(leaf), &t), 0);
	/* P-256 key; the CA as the chain */
	pk = X509_get0_pubkey(leaf);
	ck_assert_ptr_nonnull(pk);
	ck_assert(EVP_PKEY_is_a(pk, "EC"));
	ck_assert_int_eq(EVP_PKEY_get_bits(pk), 256);
	ck_assert_int_eq(SSL_CTX_get0_chain_certs(ctx, &chain), 1);
	ck_assert_int_eq(sk_X509_num(chain), 1);
	ck_assert_int_eq(X509_cmp(sk_X509_value(chain, 0), ca), 0);
	SSL_CTX_free(ctx);
	X509_free(ca);
	certforge_free(cf);
}
END_TEST

/* Every leaf shares the one leaf key; serials differ. */
START_TEST(test_leaf_key_shared)
{
	certforge_t *cf = cf_open(tpath(0, "ca"), NULL, 0);
	SSL_CTX *a = certforge_ctx(cf, "a.test"),
		*b = certforge_ctx(cf, "b.test");
	X509 *xa, *xb;

	ck_assert(a && b);
	xa = SSL_CTX_get0_certificate(a);
	xb = SSL_CTX_get0_certificate(b);
	ck_assert_int_eq(
		EVP_PKEY_eq(X509_get0_pubkey(xa), X509_get0_pubkey(xb)), 1);
	ck_assert_int_ne(ASN1_INTEGER_cmp(X509_get0_serialNumber(xa),
					  X509_get0_serialNumber(xb)),
			 0);
	SSL_CTX_free(a);
	SSL_CTX_free(b);
	certforge_free(cf);
}
END_TEST

/* A leaf never outlives its CA. */
START_TEST(test_leaf_capped_by_ca)
{
	certforge_t *cf;
	SSL_CTX *ctx;
	X509 *ca;

	certforge_free(cf_open(tpath(0, "ca"), NULL, 0));
	replace_ca(true, 3);
	cf = cf_open(tpath(0, "ca"), NULL, 0);
	ctx = certforge_ctx(cf, "short.test");
	ck_assert_ptr_nonnull(ctx);
	ca = pem_x509(certforge_ca_pem(cf));
	ck_assert_int_eq(
		ASN1_TIME_compare(
			X509_get0_notAfter(SSL_CTX_get0_certificate(ctx)),
			X509_get0_notAfter(ca)),
		0);
	X509_free(ca);
	SSL_CTX_free(ctx);
	certforge_free(cf);
}
END_TEST

/* ---- handshakes ------------------------------------------------------------- */

/* A client trusting only the CA, checking the host name. */
static SSL *client_new(const char *ca_pem, int version, const char *sni,
		       const char *alpn, unsigned alpn_len)
{
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());
	X509 *ca = pem_x509(ca_pem);
	char host[256];
	SSL *ssl;

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(X509_STORE_add_cert(SSL_CTX_get_cert_store(c), ca), 1);
	X509_free(ca);
	SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
	ck_assert(SSL_CTX_set_min_proto_version(c, version));
	ck_assert(SSL_CTX_set_max_proto_version(c, version));
	ssl = SSL_new(c);
	SSL_CTX_free(c); /* the SSL keeps its own reference */
	ck_assert_ptr_nonnull(ssl);
	/* the macro casts its argument to void *: hand it a copy */
	snprintf(host, sizeof(host), "%s", sni);
	ck_assert_int_eq(SSL_set_tlsext_host_name(ssl, host), 1);
	ck_assert_int_eq(SSL_set1_host(ssl, sni), 1);
	if (alpn)
		ck_assert_int_eq(
			SSL_set_alpn_protos(ssl, (const unsigned char *)alpn,
					    alpn_len),
			0);
	return ssl;
}

/*
 * Drives both ends over an in-memory BIO pair until both finish or one
 * fails; returns whether both finished.  Then lets the client read what
 * followed (TLS 1.3 session tickets).
 */
static bool handshake(SSL *c, SSL *s)
{
	bool cdone = false, sdone = false;
	BIO *cb, *sb;
	char byte;

	ck_assert_int_eq(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
	SSL_set_bio(c, cb, cb);
	SSL_set_bio(s, sb, sb);
	SSL_set_connect_state(c);
	SSL_set_accept_state(s);
	for (int i = 0; i < 64 && !(cdone && sdone); i++) {
		int r;

		if (!cdone) {
			r = SSL_do_handshake(c);
			if (r == 1)
				cdone = true;
			else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ)
				break;
		}
		if (!sdone) {
			r = SSL_do_handshake(s);
			if (r == 1)
				sdone = true;
			else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
				break;
		}
	}
	if (cdone && sdone)
		ck_assert_int_le(SSL_read(c, &byte, 1), 0);
	ERR_clear_error();
	return cdone && sdone;
}

#define ALPN(s) s, sizeof(s) - 1

struct hcase {
	int version;
	const char *alpn;
	unsigned alpn_len;
	const char *selected; /* NULL: no ALPN */
};

static const struct hcase hcases[] = {
	{ TLS1_3_VERSION, ALPN("\x02h2\x08http/1.1"), "http/1.1" },
	{ TLS1_2_VERSION, ALPN("\x02h2\x08http/1.1"), "http/1.1" },
	{ TLS1_3_VERSION, ALPN("\x08http/1.1"), "http/1.1" },
	{ TLS1_3_VERSION, ALPN("\x02h2"), NULL },
	{ TLS1_2_VERSION, ALPN("\x02h2"), NULL },
	{ TLS1_3_VERSION, NULL, 0, NULL },
};

START_TEST(test_handshake)
{
	const struct hcase *h = &hcases[_i];
	certforge_t *cf = cf_open(tpath(0, "ca"), NULL, 0);
	SSL_CTX *ctx = certforge_ctx(cf, "api.example.test");
	SSL *c = client_new(certforge_ca_pem(cf), h->version,
			    "api.example.test", h->alpn, h->alpn_len);
	SSL *s = SSL_new(ctx);
	const unsigned char *sel;
	unsigned int sel_len;

	ck_assert_ptr_nonnull(s);
	ck_assert(handshake(c, s));
	ck_assert_int_eq(SSL_get_verify_result(c), X509_V_OK);
	ck_assert_int_eq(SSL_version(c), h->version);
	SSL_get0_alpn_selected(c, &sel, &sel_len);
	if (h->selected) {
		ck_assert_uint_eq(sel_len, strlen(h->selected));
		ck_assert(!memcmp(sel, h->selected, sel_len));
	} else {
		ck_assert_uint_eq(sel_len, 0);
	}
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(ctx);
	certforge_free(cf);
}
END_TEST

/* An IP leaf for a client that connected without SNI (it checks the IP). */
START_TEST(test_handshake_ip)
{
	certforge_t *cf = cf_open(tpath(0, "ca"), NULL, 0);
	SSL_CTX *ctx = certforge_ctx(cf, "203.0.113.9");
	SSL_CTX *cc = SSL_CTX_new(TLS_client_method());
	X509 *ca = pem_x509(certforge_ca_pem(cf));
	SSL *c, *s = SSL_new(ctx);

	ck_assert(ctx && cc && s);
	X509_STORE_add_cert(SSL_CTX_get_cert_store(cc), ca);
	SSL_CTX_set_verify(cc, SSL_VERIFY_PEER, NULL);
	c = SSL_new(cc);
	ck_assert_int_eq(X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c),
						       "203.0.113.9"),
			 1);
	ck_assert(handshake(c, s));
	ck_assert_int_eq(SSL_get_verify_result(c), X509_V_OK);
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(cc);
	SSL_CTX_free(ctx);
	X509_free(ca);
	certforge_free(cf);
}
END_TEST

/* A client checking another name refuses the leaf. */
START_TEST(test_handshake_wrong_name)
{
	certforge_t *cf = cf_open(tpath(0, "ca"), NULL, 0);
	SSL_CTX *ctx = certforge_ctx(cf, "a.example.test");
	SSL *c = client_new(certforge_ca_pem(cf), TLS1_3_VERSION,
			    "b.example.test", NULL, 0);
	SSL *s = SSL_new(ctx);

	ck_assert(!handshake(c, s));
	ck_assert_int_eq(SSL_get_verify_result(c),
			 X509_V_ERR_HOSTNAME_MISMATCH);
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(ctx);
	certforge_free(cf);
}
END_TEST

/* One full handshake with a fresh server SSL from ctx; returns the
 * client's session (caller frees) and whether it was resumed. */
static SSL_SESSION *connect_once(certforge_t *cf, SSL_CTX *ctx, int version,
				 const char *sni, SSL_SESSION *resume,
				 bool *reused)
{
	SSL *c = client_new(certforge_ca_pem(cf), version, sni, NULL, 0);
	SSL *s = SSL_new(ctx);
	SSL_SESSION *sess;

	ck_assert_ptr_nonnull(s);
	if (resume)
		ck_assert_int_eq(SSL_set_session(c, resume), 1);
	ck_assert(handshake(c, s));
	*reused = SSL_session_reused(c);
	ck_assert_int_eq(SSL_session_reused(s), *reused);
	sess = SSL_get1_session(c);
	ck_assert_ptr_nonnull(sess);
	ck_assert(SSL_SESSION_is_resumable(sess));
	/* freed without a shutdown, the session would be marked bad */
	SSL_shutdown(c);
	SSL_shutdown(s);
	SSL_free(c);
	SSL_free(s);
	ck_assert(SSL_SESSION_is_resumable(sess));
	return sess;
}

/*
 * Resumption with tickets, TLS 1.2 and 1.3; also after the leaf was
 * evicted and forged again (the ticket key belongs to the process); never
 * across names (TLS 1.2, where the client offers it anyway).
 */
START_TEST(test_resumption)
{
	int version = _i ? TLS1_2_VERSION : TLS1_3_VERSION;
	certforge_t *cf = cf_open(tpath(0, "ca"), NULL, 1);
	SSL_CTX *a = certforge_ctx(cf, "a.test"), *b;
	SSL_SESSION *s1, *s2, *s3;
	bool reused;

	ck_assert_ptr_nonnull(a);
	s1 = connect_once(cf, a, version, "a.test", NULL, &reused);
	ck_assert(!reused);
	s2 = connect_once(cf, a, version, "a.test", s1, &reused);
	ck_assert(reused);
	SSL_SESSION_free(s2);
	SSL_CTX_free(a);

	/* evict a.test, forge it again */
	b = certforge_ctx(cf, "b.test");
	ck_assert_ptr_nonnull(b);
	a = certforge_ctx(cf, "a.test");
	ck_assert_ptr_nonnull(a);
	s2 = connect_once(cf, a, version, "a.test", s1, &reused);
	ck_assert(reused);
	SSL_SESSION_free(s2);

	if (version == TLS1_2_VERSION) {
		s3 = connect_once(cf, b, version, "b.test", s1, &reused);
		ck_assert(!reused);
		SSL_SESSION_free(s3);
	}
	SSL_SESSION_free(s1);
	SSL_CTX_free(a);
	SSL_CTX_free(b);
	certforge_free(cf);
}
END_TEST

static int tickets_seen;

static int count_ticket_cb(SSL *ssl, SSL_SESSION *sess)
{
	(void)ssl;
	(void)sess;
	tickets_seen++;
	return 0; /* not kept: OpenSSL frees it */
}

/* One TLS 1.3 ticket per handshake (each costs the server a serialised
 * session, a MAC and a record). */
START_TEST(test_one_ticket)
{
	certforge_t *cf = cf_open(tpath(0, "ca"), NULL, 0);
	SSL_CTX *ctx = certforge_ctx(cf, "t.example.test");
	SSL *c = client_new(certforge_ca_pem(cf), TLS1_3_VERSION,
			    "t.example.test", NULL, 0);
	SSL *s = SSL_new(ctx);
	SSL_CTX *cc = SSL_get_SSL_CTX(c);

	ck_assert_ptr_nonnull(s);
	SSL_CTX_set_session_cache_mode(
		cc, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(cc, count_ticket_cb);
	tickets_seen = 0;
	ck_assert(handshake(c, s));
	ck_assert_int_eq(tickets_seen, 1);
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(ctx);
	certforge_free(cf);
}
END_TEST

/* ---- the cache ------------------------------------------------------------- */

START_TEST(test_cache_hit)
{
	certforge_t *cf = cf_open(tpath(0, "ca"), NULL, 0);
	SSL_CTX *a = certforge_ctx(cf, "Mixed.Case.test");
	SSL_CTX *b = certforge_ctx(cf, "mixed.case.TEST");
	unsigned long hits, forged;

	ck_assert(a && b);
	ck_assert_ptr_eq(a, b);
	ck_assert_ptr_eq(SSL_CTX_get0_certificate(a),
			 SSL_CTX_get0_certificate(b));
	certforge_stats(cf, &hits, &forged);
	ck_assert_uint_eq(hits, 1);
	ck_assert_uint_eq(forged, 1);
	SSL_CTX_free(a);
	SSL_CTX_free(b);
	certforge_free(cf);
}
END_TEST

static const ASN1_INTEGER *serial_of(SSL_CTX *ctx)
{
	return X509_get0_serialNumber(SSL_CTX_get0_certificate(ctx));
}

/*
 * cache_max 3: a b c, touch a, d evicts b (the least recently used), a is
 * still a hit, b is forged anew - while the caller's old reference to b
 * stays usable.
 */
START_TEST(test_lru_eviction)
{
	static const char *const names[] = { "a.test", "b.test", "c.test",
					     "d.test" };
	certforge_t *cf = cf_open(tpath(0, "ca"), NULL, 3);
	SSL_CTX *ctx[4], *again, *b2;
	unsigned long hits, forged;
	SSL *ssl;

	for (int i = 0; i < 3; i++) {
		ctx[i] = certforge_ctx(cf, names[i]);
		ck_assert_ptr_nonnull(ctx[i]);
	}
	again = certforge_ctx(cf, "a.test");
	ck_assert_ptr_eq(again, ctx[0]);
	SSL_CTX_free(again);
	ctx[3] = certforge_ctx(cf, names[3]);
	ck_assert_ptr_nonnull(ctx[3]);
	certforge_stats(cf, &hits, &forged);
	ck_assert_uint_eq(hits, 1);
	ck_assert_uint_eq(forged, 4);

	again = certforge_ctx(cf, "a.test");
	ck_assert_ptr_eq(again, ctx[0]);
	SSL_CTX_free(again);
	again = certforge_ctx(cf, "c.test");
	ck_assert_ptr_eq(again, ctx[2]);
	SSL_CTX_free(again);
	b2 = certforge_ctx(cf, "b.test");
	ck_assert_ptr_nonnull(b2);
	ck_assert_ptr_ne(b2, ctx[1]);
	ck_assert_int_ne(ASN1_INTEGER_cmp(serial_of(b2), serial_of(ctx[1])), 0);
	certforge_stats(cf, &hits, &forged);
	ck_assert_uint_eq(hits, 3);
	ck_assert_uint_eq(forged, 5);

	/* the evicted context still works for whoever holds it */
	ssl = SSL_new(ctx[1]);
	ck_assert_ptr_nonnull(ssl);
	ck_assert_ptr_nonnull(SSL_get_certificate(ssl));
	SSL_free(ssl);
	/* and outlives the cache itself */
	certforge_free(cf);
	ssl = SSL_new(b2);
	ck_assert_ptr_nonnull(ssl);
	SSL_free(ssl);
	for (int i = 0; i < 4; i++)
		SSL_CTX_free(ctx[i]);
	SSL_CTX_free(b2);
}
END_TEST

#define T_THREADS 4
#define T_CALLS 400
#define T_NAMES 40

struct tharg {
	certforge_t *cf;
	unsigned seed;
	int bad;
};

static void *thread_main(void *p)
{
	struct tharg *a = p;

	for (int i = 0; i < T_CALLS; i++) {
		char name[32];
		SSL_CTX *ctx;

		snprintf(name, sizeof(name), "h%u.example.test",
			 (unsigned)rand_r(&a->seed) % T_NAMES);
		ctx = certforge_ctx(a->cf, name);
		if (!ctx || X509_check_host(SSL_CTX_get0_certificate(ctx), name,
					    0, 0, NULL) != 1)
			a->bad++;
		SSL_CTX_free(ctx);
	}
	return NULL;
}

/* Several threads, a cache smaller than the working set: every answer is
 * right, and every call was either a hit or a forge. */
START_TEST(test_threads)
{
	certforge_t *cf = cf_open(tpath(0, "ca"), NULL, T_NAMES * 3 / 4);
	pthread_t th[T_THREADS];
	struct tharg args[T_THREADS];
	unsigned long hits, forged;

	for (int i = 0; i < T_THREADS; i++) {
		args[i] = (struct tharg){ cf, (unsigned)i * 7919u + 1, 0 };
		ck_assert_int_eq(
			pthread_create(&th[i], NULL, thread_main, &args[i]), 0);
	}
	for (int i = 0; i < T_THREADS; i++) {
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
		ck_assert_int_eq(args[i].bad, 0);
	}
	certforge_stats(cf, &hits, &forged);
	ck_assert_uint_eq(hits + forged, T_THREADS * T_CALLS);
	ck_assert_uint_ge(forged, T_NAMES);
	ck_assert_uint_gt(hits, 0);
	certforge_free(cf);
}
END_TEST

/* Names from hostile SNI: refused, with the OpenSSL error queue set. */
static const char *const hostile[] = {
	"",
	".",
	"..",
	".a.test",
	"a..test",
	"a.test.",
	"*.example.com",
	"a b.test",
	"a,DNS:evil.test",
	"evil.test\n",
	"a/b.test",
	"a.test:443",
	"::1",
	"[::1]",
	"caf\xc3\xa9.test",
	"a\tb",
	"a%00.test",
	"a\\.test",
	"a\"b",
	"IP:1.2.3.4",
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test",
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb."
	"ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc."
	"dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd",
};

START_TEST(test_hostile_names)
{
	certforge_t *cf = cf_open(tpath(0, "ca"), NULL, 0);
	unsigned long hits, forged;

	for (size_t i = 0; i < ARRAY_SIZE(hostile); i++) {
		ERR_clear_error();
		ck_assert_msg(certforge_ctx(cf, hostile[i]) == NULL,
			      "accepted \"%s\"", hostile[i]);
		ck_assert_uint_ne(ERR_peek_error(), 0);
	}
	ERR_clear_error();
	certforge_stats(cf, &hits, &forged);
	ck_assert_uint_eq(hits + forged, 0);
	certforge_free(cf);
}
END_TEST

/* Every byte value in the middle of a name: only letters, digits, '-',
 * '_' and '.' get through (upper case folded). */
START_TEST(test_name_bytes)
{
	certforge_t *cf = cf_open(tpath(0, "ca"), NULL, 0);

	for (int c = 1; c < 256; c++) {
		bool valid = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9') || c == '-' || c == '_' ||
			     c == '.';
		char name[16];
		SSL_CTX *ctx;

		snprintf(name, sizeof(name), "x%cy.test", c);
		ctx = certforge_ctx(cf, name);
		ck_assert_msg((ctx != NULL) == valid, "byte 0x%02x: %s", c,
			      ctx ? "accepted" : "refused");
		SSL_CTX_free(ctx);
	}
	ERR_clear_error();
	certforge_free(cf);
}
END_TEST

/* Edge names that are fine: 63-byte label, 253 bytes, single label,
 * digits, an all-numeric name that is not an IPv4 address (DNS SAN). */
START_TEST(test_edge_names)
{
	static const char *const ok[] = {
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
		"test",
		name253,
		"x",
		"0123.test",
		"1.2.3",
		"xn--caf-dma.test",
	};
	certforge_t *cf = cf_open(tpath(0, "ca"), NULL, 0);

	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		SSL_CTX *ctx = certforge_ctx(cf, ok[i]);

		ck_assert_msg(ctx != NULL, "refused %s", ok[i]);
		ck_assert_int_eq(X509_check_host(SSL_CTX_get0_certificate(ctx),
						 ok[i], 0, 0, NULL),
				 1);
		SSL_CTX_free(ctx);
	}
	certforge_free(cf);
}
END_TEST

Suite *certforge_suite(void)
{
	Suite *s = suite_create("certforge");
	TCase *ca = tcase_create("ca");
	TCase *leaf = tcase_create("leaf");
	TCase *tls = tcase_create("handshake");
	TCase *cache = tcase_create("cache");

	tcase_add_checked_fixture(ca, setup, teardown);
	tcase_add_test(ca, test_ca_create_and_reload);
	tcase_add_loop_test(ca, test_ca_corrupt, 0, ARRAY_SIZE(corrupts));
	tcase_add_test(ca, test_ca_mismatch);
	tcase_add_test(ca, test_ca_not_ca);
	tcase_add_test(ca, test_ca_dir_unusable);
	suite_add_tcase(s, ca);

	tcase_add_checked_fixture(leaf, setup, teardown);
	tcase_add_loop_test(leaf, test_leaf, 0, ARRAY_SIZE(lcases));
	tcase_add_test(leaf, test_leaf_key_shared);
	tcase_add_test(leaf, test_leaf_capped_by_ca);
	tcase_add_test(leaf, test_hostile_names);
	tcase_add_test(leaf, test_name_bytes);
	tcase_add_test(leaf, test_edge_names);
	suite_add_tcase(s, leaf);

	tcase_add_checked_fixture(tls, setup, teardown);
	tcase_add_loop_test(tls, test_handshake, 0, ARRAY_SIZE(hcases));
	tcase_add_test(tls, test_handshake_ip);
	tcase_add_test(tls, test_handshake_wrong_name);
	tcase_add_test(tls, test_one_ticket);
	tcase_add_loop_test(tls, test_resumption, 0, 2);
	suite_add_tcase(s, tls);

	tcase_add_checked_fixture(cache, setup, teardown);
	tcase_add_test(cache, test_cache_hit);
	tcase_add_test(cache, test_lru_eviction);
	tcase_add_test(cache, test_threads);
	tcase_set_timeout(cache, 120);
	suite_add_tcase(s, cache);
	return s;
}
