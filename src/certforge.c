/*
 * certforge.c - the interception CA and the server SSL_CTXs forged from it.
 *
 * The CA lives in ca_dir: created on first use (P-256, ten years, key
 * written 0600 through a temporary file and rename(2) so that a crash never
 * leaves half a key), or loaded and checked (key matches certificate,
 * CA:TRUE, not expired).  A CA that cannot be read is an error naming the
 * file: replacing it would silently break every client that trusts it.
 *
 * Leaves share one P-256 key made at start: forging a leaf is then one
 * ECDSA signature, and the key never leaves memory.  Each leaf is wrapped in
 * its own server SSL_CTX (certificate, CA chain, ALPN http/1.1 only, session
 * cache and tickets) and kept in an LRU cache keyed by the lower-cased name,
 * so a warm handshake costs a hash lookup.  Signing happens outside the
 * cache lock: two threads missing the same name both forge, the first
 * insert wins and the other copy is dropped.
 *
 * Session tickets are sealed with one key per process (not OpenSSL's
 * per-SSL_CTX default), so a ticket survives its leaf being evicted and
 * forged again; each SSL_CTX's session id context is a hash of its name, so
 * a session made for one name is never resumed under another.
 */
#include "certforge.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hmap.h"
#include "util.h"

#define CF_CACHE_DEFAULT 4096
#define CF_NAME_MAX 253 /* RFC 1035 2.3.4, without the trailing dot */
#define CF_LABEL_MAX 63 /* ditto */
#define CF_CN_MAX 64 /* RFC 5280 ub-common-name */
#define CF_CA_DAYS 3650
#define CF_LEAF_DAYS 30
#define CF_BACKDATE 3600 /* seconds: tolerate clients whose clock is slow */
#define CF_SESS_CACHE 128 /* stateful sessions kept per leaf (TLS 1.2) */

/* A cached leaf: the cache's reference to its SSL_CTX, in LRU order. */
struct cf_leaf {
	struct cf_leaf *prev, *next; /* head: most recently used */
	SSL_CTX *ctx; /* owned: one reference */
	size_t klen;
	char key[]; /* lower-cased name, NUL-terminated */
};

struct certforge {
	X509 *ca; /* owned */
	EVP_PKEY *ca_key; /* owned */
	EVP_PKEY *leaf_key; /* owned; shared by every leaf */
	char *ca_pem; /* owned */
	size_t cache_max;

	pthread_mutex_t lock; /* guards everything below */
	struct hmap cache; /* key -> struct cf_leaf */
	struct cf_leaf *head, *tail;
	unsigned long hits, forged;
};

/* ---- errors -------------------------------------------------------------- */

/*
 * Formats an error for certforge_new's *err, followed by the reason at the
 * top of OpenSSL's error queue when there is one; empties the queue.
 * Returns a string the caller frees.
 */
static char *PRINTF(1, 2) cf_errf(const char *fmt, ...)
{
	struct strbuf sb = { 0 };
	unsigned long e = ERR_peek_last_error();
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	strbuf_adds(&sb, msg);
	if (e) {
		char reason[256];

		ERR_error_string_n(e, reason, sizeof(reason));
		strbuf_addf(&sb, " (%s)", reason);
	}
	ERR_clear_error();
	return strbuf_steal(&sb);
}

/* ---- files ---------------------------------------------------------------- */

static char *cf_path(const char *dir, const char *file)
{
	struct strbuf sb = { 0 };

	strbuf_addf(&sb, "%s/%s", dir, file);
	return strbuf_steal(&sb);
}

/* fsync(2) on a directory, so that a rename in it is durable. */
static void cf_sync_dir(const char *path)
{
	char *copy = util_xstrdup(path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	free(copy);
}

/*
 * Replaces path with data[0..n) atomically: a temporary file beside it
 * (created 0600 by mkstemp, then given mode), written, fsync'd and renamed
 * over path.  A reader sees the old file or the new one, never a part.
 * Returns 0, or -1 with *err set (caller frees).
 */
static int cf_write_atomic(const char *path, const void *data, size_t n,
			   mode_t mode, char **err)
{
	struct strbuf sb = { 0 };
	const char *p = data;
	char *tmp;
	int fd, rc = -1;

	strbuf_addf(&sb, "%s.XXXXXX", path);
	tmp = strbuf_steal(&sb);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		*err = cf_errf("cannot create a temporary file for %s: %s",
			       path, strerror(errno));
		free(tmp); /* nothing of ours to unlink */
		return -1;
	}
	if (fchmod(fd, mode) < 0)
		goto io_error;
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w == 0)
			errno = EIO;
		if (w <= 0)
			goto io_error;
		p += w;
		n -= (size_t)w;
	}
	if (fsync(fd) < 0)
		goto io_error;
	if (close(fd) < 0) {
		fd = -1;
		goto io_error;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
		goto io_error;
	cf_sync_dir(path);
	rc = 0;
	goto cleanup;
io_error:
	*err = cf_errf("cannot write %s: %s", path, strerror(errno));
cleanup:
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		unlink(tmp);
	free(tmp);
	return rc;
}

/* ---- certificates ------------------------------------------------------- */

/* Adds one extension written in openssl.cnf syntax (constant strings only:
 * never a name from the network, which could smuggle in a second value). */
static int cf_add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, v3, nid, value);
	int ok;

	if (!e)
		return -1;
	ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok ? 0 : -1;
}

/* A random, positive, non-zero 64-bit serial (CA/B BR 7.1: >= 64 bits). */
static int cf_set_serial(X509 *x)
{
	uint64_t serial = 0;

	if (RAND_bytes((unsigned char *)&serial, sizeof(serial)) != 1)
		return -1;
	if (serial == 0)
		serial = 1;
	return ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial) ? 0 :
									   -1;
}

/* SHA-256, except for keys that sign without a separate digest (Ed25519:
 * EVP_PKEY_get_default_digest_nid says 2, "mandatory", with NID_undef). */
static const EVP_MD *cf_sign_md(EVP_PKEY *key)
{
	int nid = NID_undef;

	if (EVP_PKEY_get_default_digest_nid(key, &nid) == 2 && nid == NID_undef)
		return NULL;
	return EVP_sha256();
}

/* The self-signed CA certificate for key; caller frees, NULL on error. */
static X509 *cf_ca_make(EVP_PKEY *key)
{
	X509 *x = X509_new();
	X509_NAME *n;
	X509V3_CTX v3;
	char host[256], org[64];

	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(org, sizeof(org), "egressd on %.40s", host);
	if (!x || X509_set_version(x, X509_VERSION_3) != 1 ||
	    cf_set_serial(x) < 0 ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -86400) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), CF_CA_DAYS, 0, NULL) ||
	    !X509_set_pubkey(x, key))
		goto fail;
	n = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_NID(n, NID_organizationName, MBSTRING_ASC,
					(const unsigned char *)org, -1, -1,
					0) ||
	    !X509_NAME_add_entry_by_NID(
		    n, NID_commonName, MBSTRING_ASC,
		    (const unsigned char *)"egressd interception CA", -1, -1,
		    0) ||
	    !X509_set_issuer_name(x, n))
		goto fail;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	/* pathlen:0: this CA signs leaves only, never another CA */
	if (cf_add_ext(x, &v3, NID_basic_constraints,
		       "critical,CA:TRUE,pathlen:0") < 0 ||
	    cf_add_ext(x, &v3, NID_key_usage, "critical,keyCertSign,cRLSign") <
		    0 ||
	    cf_add_ext(x, &v3, NID_subject_key_identifier, "hash") < 0 ||
	    !X509_sign(x, key, cf_sign_md(key)))
		goto fail;
	return x;
fail:
	X509_free(x);
	return NULL;
}

/*
 * Forges the leaf for key (validated, lower-cased): CN=key when it fits in
 * a CN, SAN DNS:key or IP:key, valid from an hour ago for CF_LEAF_DAYS but
 * never past the CA, signed by the CA.  Reads only what certforge_new set,
 * so it runs without the cache lock.  Caller frees; NULL with the OpenSSL
 * error queue set.
 */
static X509 *cf_leaf_make(const certforge_t *cf, const char *key, size_t klen,
			  bool is_ip)
{
	const ASN1_TIME *ca_end = X509_get0_notAfter(cf->ca);
	bool has_cn = klen <= CF_CN_MAX;
	GENERAL_NAMES *gens = NULL;
	GENERAL_NAME *gn = NULL;
	time_t now = time(NULL);
	X509 *x = X509_new();
	X509V3_CTX v3;

	if (!x || X509_set_version(x, X509_VERSION_3) != 1 ||
	    cf_set_serial(x) < 0 ||
	    !X509_time_adj_ex(X509_getm_notBefore(x), 0, -CF_BACKDATE, &now) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), CF_LEAF_DAYS, 0, &now))
		goto fail;
	if (ASN1_TIME_compare(X509_get0_notAfter(x), ca_end) > 0 &&
	    !X509_set1_notAfter(x, ca_end))
		goto fail;
	if (!X509_set_issuer_name(x, X509_get_subject_name(cf->ca)) ||
	    !X509_set_pubkey(x, cf->leaf_key))
		goto fail;
	if (has_cn &&
	    !X509_NAME_add_entry_by_NID(X509_get_subject_name(x),
					NID_commonName, MBSTRING_ASC,
					(const unsigned char *)key, -1, -1, 0))
		goto fail;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, cf->ca, x, NULL, NULL, 0);
	/* "keyid,issuer": a loaded CA without an SKI still gets an AKI */
	if (cf_add_ext(x, &v3, NID_basic_constraints, "critical,CA:FALSE") <
		    0 ||
	    cf_add_ext(x, &v3, NID_key_usage, "critical,digitalSignature") <
		    0 ||
	    cf_add_ext(x, &v3, NID_ext_key_usage, "serverAuth") < 0 ||
	    cf_add_ext(x, &v3, NID_subject_key_identifier, "hash") < 0 ||
	    cf_add_ext(x, &v3, NID_authority_key_identifier, "keyid,issuer") <
		    0)
		goto fail;
	/* the SAN is built as a structure, not parsed from text */
	gn = a2i_GENERAL_NAME(NULL, NULL, NULL, is_ip ? GEN_IPADD : GEN_DNS,
			      key, 0);
	gens = sk_GENERAL_NAME_new_null();
	if (!gn || !gens || !sk_GENERAL_NAME_push(gens, gn))
		goto fail;
	gn = NULL; /* owned by gens */
	/* RFC 5280 4.2.1.6: with an empty subject the SAN is critical */
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, !has_cn,
			      X509V3_ADD_DEFAULT) != 1 ||
	    !X509_sign(x, cf->ca_key, cf_sign_md(cf->ca_key)))
		goto fail;
	GENERAL_NAMES_free(gens);
	return x;
fail:
	GENERAL_NAME_free(gn);
	GENERAL_NAMES_free(gens);
	X509_free(x);
	return NULL;
}

/* ---- server contexts ---------------------------------------------------- */

/* The session ticket key of this process (RFC 5077 4's recommended form:
 * 16-byte name, AES-256-CBC, HMAC-SHA256).  Set once, then read only. */
static struct {
	unsigned char name[16];
	unsigned char aes[32];
	unsigned char hmac[32];
	bool ok;
} cf_tk;
static pthread_once_t cf_tk_once = PTHREAD_ONCE_INIT;

static void cf_tk_init(void)
{
	cf_tk.ok = RAND_bytes(cf_tk.name, sizeof(cf_tk.name)) == 1 &&
		   RAND_priv_bytes(cf_tk.aes, sizeof(cf_tk.aes)) == 1 &&
		   RAND_priv_bytes(cf_tk.hmac, sizeof(cf_tk.hmac)) == 1;
}

/*
 * SSL_CTX_set_tlsext_ticket_key_evp_cb: seals tickets with the process
 * key (enc), or opens one sealed with it.  A ticket from another process
 * (key name differs) returns 0: a full handshake, not an error.  Runs in
 * whichever thread drives the handshake; reads only cf_tk.
 */
static int cf_ticket_cb(SSL *s, unsigned char key_name[16], unsigned char *iv,
			EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	static char digest[] = "SHA256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_octet_string(
			OSSL_MAC_PARAM_KEY, cf_tk.hmac, sizeof(cf_tk.hmac)),
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest,
						 0),
		OSSL_PARAM_construct_end(),
	};
	const EVP_CIPHER *cipher = EVP_aes_256_cbc();

	(void)s;
	if (enc) {
		if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(cipher)) != 1)
			return -1;
		memcpy(key_name, cf_tk.name, sizeof(cf_tk.name));
		if (!EVP_EncryptInit_ex(cctx, cipher, NULL, cf_tk.aes, iv) ||
		    !EVP_MAC_CTX_set_params(hctx, params))
			return -1;
		return 1;
	}
	if (memcmp(key_name, cf_tk.name, sizeof(cf_tk.name)) != 0)
		return 0;
	if (!EVP_MAC_CTX_set_params(hctx, params) ||
	    !EVP_DecryptInit_ex(cctx, cipher, NULL, cf_tk.aes, iv))
		return -1;
	return 1;
}

/*
 * ALPN (RFC 7301): http/1.1 when offered, otherwise no ALPN at all (NOACK)
 * rather than a fatal no_application_protocol alert, so a client offering
 * only h2 still gets a connection and falls back to HTTP/1.1 - the proxy
 * speaks nothing else to the client (SPEC 6).  OpenSSL has checked the
 * list's framing before calling; *out points into in, as it requires.
 */
static int cf_alpn_cb(SSL *s, const unsigned char **out, unsigned char *outlen,
		      const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)s;
	(void)arg;
	for (unsigned int i = 0; i < inlen;) {
		unsigned int n = in[i];

		if (n > inlen - i - 1)
			break;
		if (n == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0) {
			*out = in + i + 1;
			*outlen = 8;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + n;
	}
	return SSL_TLSEXT_ERR_NOACK;
}

/*
 * A server SSL_CTX presenting leaf (with the CA as its chain) and the
 * shared leaf key.  Caller owns the returned reference; NULL with the
 * OpenSSL error queue set.  Does not take over leaf (the context keeps a
 * reference of its own).
 */
static SSL_CTX *cf_server_ctx(const certforge_t *cf, X509 *leaf,
			      const char *key, size_t klen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	unsigned char sid[EVP_MAX_MD_SIZE];
	unsigned int sidlen = 0;

	if (!ctx)
		return NULL;
	/* the session id context may hold at most 32 bytes: SHA-256 fits */
	if (!EVP_Digest(key, klen, sid, &sidlen, EVP_sha256(), NULL) ||
	    sidlen > SSL_MAX_SID_CTX_LENGTH ||
	    !SSL_CTX_set_session_id_context(ctx, sid, sidlen) ||
	    !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    SSL_CTX_use_certificate(ctx, leaf) != 1 ||
	    !SSL_CTX_add1_chain_cert(ctx, cf->ca) ||
	    SSL_CTX_use_PrivateKey(ctx, cf->leaf_key) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1 ||
	    !SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, cf_ticket_cb))
		goto fail;
	/* client-initiated renegotiation only costs the proxy CPU */
	SSL_CTX_set_options(ctx,
			    SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_alpn_select_cb(ctx, cf_alpn_cb, NULL);
	/* One TLS 1.3 ticket per handshake, not OpenSSL's two: each costs a
	 * serialised session, a MAC and a record, and a client resuming
	 * uses one (a client resuming in parallel gets a full handshake). */
	SSL_CTX_set_num_tickets(ctx, 1);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_sess_set_cache_size(ctx, CF_SESS_CACHE);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* Forges key's certificate and context; see cf_leaf_make. */
static SSL_CTX *cf_forge(const certforge_t *cf, const char *key, size_t klen,
			 bool is_ip)
{
	X509 *leaf = cf_leaf_make(cf, key, klen, is_ip);
	SSL_CTX *ctx;

	if (!leaf)
		return NULL;
	ctx = cf_server_ctx(cf, leaf, key, klen);
	X509_free(leaf);
	return ctx;
}

/*
 * Checks that name is something to forge for: a host name of letters,
 * digits, '-' and '_' in dot-separated labels of 1..63 bytes, at most 253
 * bytes, no trailing dot (RFC 6066 3 forbids one in SNI); or a dotted-quad
 * IPv4 address.  The name comes from the network (SNI): anything else -
 * wildcards, NULs, spaces, commas, non-ASCII - is refused.  Writes the
 * lower-cased name to key[CF_NAME_MAX + 1] and sets *is_ip; returns its
 * length, or -1.
 */
static int cf_name_norm(const char *name, char *key, bool *is_ip)
{
	struct in_addr a;
	size_t n, label = 0;

	for (n = 0; name[n]; n++) {
		unsigned char c = (unsigned char)name[n];

		if (n >= CF_NAME_MAX)
			return -1;
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			   c == '-' || c == '_') {
			if (++label > CF_LABEL_MAX)
				return -1;
		} else {
			return -1;
		}
		key[n] = (char)c;
	}
	if (n == 0 || label == 0)
		return -1;
	key[n] = '\0';
	*is_ip = inet_pton(AF_INET, key, &a) == 1;
	return (int)n;
}

/* ---- the CA -------------------------------------------------------------- */

/* pem_password_cb: an encrypted CA key is refused, never prompted for. */
static int cf_no_passphrase(char *buf, int size, int rw, void *u)
{
	(void)buf;
	(void)size;
	(void)rw;
	(void)u;
	return -1;
}

/* PEM text of x; caller frees.  NULL on error. */
static char *cf_x509_pem(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *pem = NULL;
	long n;

	if (b && PEM_write_bio_X509(b, x)) {
		n = BIO_get_mem_data(b, &data);
		if (n > 0)
			pem = util_xstrndup(data, (size_t)n);
	}
	BIO_free(b);
	return pem;
}

/* Whether path exists: 1, 0 (ENOENT) or -1 with *err set. */
static int cf_exists(const char *path, char **err)
{
	struct stat st;

	if (stat(path, &st) == 0)
		return 1;
	if (errno == ENOENT)
		return 0;
	*err = cf_errf("cannot access %s: %s", path, strerror(errno));
	return -1;
}

/*
 * Creates a CA in dir: key and certificate made in memory, then ca.key
 * (0600) and ca.pem (0644) each written atomically, key first.  The key's
 * PEM goes through OpenSSL's secure heap, which is wiped when freed.
 */
static int cf_ca_create(certforge_t *cf, const char *dir, const char *kpath,
			const char *cpath, char **err)
{
	BIO *kb = NULL;
	char *kdata;
	long klen;
	int rc = -1;

	if (util_mkdir_p(dir, 0700) < 0) {
		*err = cf_errf("cannot create %s: %s", dir, strerror(errno));
		goto cleanup;
	}
	cf->ca_key = EVP_EC_gen("P-256");
	cf->ca = cf->ca_key ? cf_ca_make(cf->ca_key) : NULL;
	cf->ca_pem = cf->ca ? cf_x509_pem(cf->ca) : NULL;
	if (!cf->ca_pem) {
		*err = cf_errf("cannot make a CA");
		goto cleanup;
	}
	kb = BIO_new(BIO_s_secmem());
	if (!kb || !PEM_write_bio_PrivateKey(kb, cf->ca_key, NULL, NULL, 0,
					     NULL, NULL)) {
		*err = cf_errf("cannot encode the CA key");
		goto cleanup;
	}
	klen = BIO_get_mem_data(kb, &kdata);
	if (klen <= 0) {
		*err = cf_errf("cannot encode the CA key");
		goto cleanup;
	}
	if (cf_write_atomic(kpath, kdata, (size_t)klen, 0600, err) < 0 ||
	    cf_write_atomic(cpath, cf->ca_pem, strlen(cf->ca_pem), 0644, err) <
		    0)
		goto cleanup;
	rc = 0;
cleanup:
	BIO_free(kb);
	return rc;
}

/*
 * Opens the CA key for reading and stats the file opened (not its name,
 * which could be swapped in between).  Returns a BIO (caller frees) or
 * NULL with *err set.
 */
static BIO *cf_open_key(const char *path, struct stat *st, char **err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), e;
	FILE *f;
	BIO *b;

	if (fd < 0 || fstat(fd, st) < 0)
		goto sys_error;
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		*err = cf_errf("CA key %s is not a regular file", path);
		return NULL;
	}
	f = fdopen(fd, "r");
	if (!f)
		goto sys_error;
	fd = -1; /* owned by f */
	b = BIO_new_fp(f, BIO_CLOSE);
	if (!b) {
		fclose(f);
		*err = cf_errf("cannot read CA key %s", path);
	}
	return b;
sys_error:
	e = errno;
	if (fd >= 0)
		close(fd);
	ERR_clear_error();
	*err = cf_errf("cannot open CA key %s: %s", path, strerror(e));
	return NULL;
}

/*
 * Loads ca.key and ca.pem and checks them: a readable PEM each, the key
 * only readable by its owner, key and certificate a pair, the certificate
 * a CA (basicConstraints CA:TRUE; keyCertSign if keyUsage is present) and
 * not expired.  Errors name the file at fault.
 */
static int cf_ca_load(certforge_t *cf, const char *kpath, const char *cpath,
		      char **err)
{
	struct stat st;
	BIO *b = cf_open_key(kpath, &st, err);

	if (!b)
		return -1;
	cf->ca_key = PEM_read_bio_PrivateKey(b, NULL, cf_no_passphrase, NULL);
	BIO_free(b);
	if (!cf->ca_key) {
		*err = cf_errf("cannot read CA key %s: not an unencrypted "
			       "PEM private key",
			       kpath);
		return -1;
	}
	if (st.st_mode & 077) {
		*err = cf_errf("CA key %s has mode %04o: it must be "
			       "accessible to its owner only (chmod 600 it)",
			       kpath, (unsigned)(st.st_mode & 07777));
		return -1;
	}
	b = BIO_new_file(cpath, "r");
	if (!b) {
		int e = errno;

		ERR_clear_error();
		*err = cf_errf("cannot open CA certificate %s: %s", cpath,
			       strerror(e));
		return -1;
	}
	cf->ca = PEM_read_bio_X509(b, NULL, cf_no_passphrase, NULL);
	BIO_free(b);
	if (!cf->ca) {
		*err = cf_errf("cannot read CA certificate %s: not a PEM "
			       "certificate",
			       cpath);
		return -1;
	}
	if (X509_check_private_key(cf->ca, cf->ca_key) != 1) {
		*err = cf_errf("CA key %s does not match CA certificate %s",
			       kpath, cpath);
		return -1;
	}
	if (X509_check_ca(cf->ca) != 1) {
		*err = cf_errf("%s is not a CA certificate (needs "
			       "basicConstraints CA:TRUE)",
			       cpath);
		return -1;
	}
	if (X509_cmp_current_time(X509_get0_notAfter(cf->ca)) <= 0) {
		*err = cf_errf("CA certificate %s has expired", cpath);
		return -1;
	}
	cf->ca_pem = cf_x509_pem(cf->ca);
	if (!cf->ca_pem) {
		*err = cf_errf("cannot encode CA certificate %s", cpath);
		return -1;
	}
	return 0;
}

/*
 * The CA of dir: created when neither file exists, loaded when both do.
 * One without the other is an error - a crash between the two renames of
 * a first start, or a file deleted by hand - which an operator resolves;
 * making a new CA would orphan whatever trusts the old one.
 */
static int cf_ca_setup(certforge_t *cf, const char *dir, char **err)
{
	char *kpath = cf_path(dir, "ca.key"), *cpath = cf_path(dir, "ca.pem");
	int khave, chave, rc = -1;

	khave = cf_exists(kpath, err);
	chave = khave < 0 ? -1 : cf_exists(cpath, err);
	if (chave < 0)
		goto cleanup;
	if (!khave && !chave)
		rc = cf_ca_create(cf, dir, kpath, cpath, err);
	else if (khave && chave)
		rc = cf_ca_load(cf, kpath, cpath, err);
	else
		*err = cf_errf("%s exists but %s does not: restore it, or "
			       "remove both to make a new CA",
			       khave ? kpath : cpath, khave ? cpath : kpath);
cleanup:
	free(kpath);
	free(cpath);
	return rc;
}

/* Writes the CA certificate to path (0644), creating its directory. */
static int cf_publish(const certforge_t *cf, const char *path, char **err)
{
	char *copy = util_xstrdup(path);
	int rc = util_mkdir_p(dirname(copy), 0755);

	if (rc < 0)
		*err = cf_errf("cannot create the directory of %s: %s", path,
			       strerror(errno));
	free(copy);
	if (rc < 0)
		return -1;
	return cf_write_atomic(path, cf->ca_pem, strlen(cf->ca_pem), 0644, err);
}

/* ---- the cache ------------------------------------------------------------ */

/* LRU list helpers; the lock is held. */
static void cf_lru_unlink(certforge_t *cf, struct cf_leaf *l)
{
	if (l->prev)
		l->prev->next = l->next;
	else
		cf->head = l->next;
	if (l->next)
		l->next->prev = l->prev;
	else
		cf->tail = l->prev;
	l->prev = l->next = NULL;
}

static void cf_lru_push(certforge_t *cf, struct cf_leaf *l)
{
	l->prev = NULL;
	l->next = cf->head;
	if (cf->head)
		cf->head->prev = l;
	else
		cf->tail = l;
	cf->head = l;
}

/*
 * The cached context for key, made most recently used, with a new
 * reference for the caller (SSL_CTX_free); NULL when absent.  Lock held.
 */
static SSL_CTX *cf_cache_get(certforge_t *cf, const char *key, size_t klen)
{
	struct cf_leaf *l = hmap_get(&cf->cache, key, klen);

	if (!l || SSL_CTX_up_ref(l->ctx) != 1)
		return NULL;
	cf_lru_unlink(cf, l);
	cf_lru_push(cf, l);
	return l->ctx;
}

/* Drops the cache's reference to l; callers' references stay valid. */
static void cf_cache_evict(certforge_t *cf, struct cf_leaf *l)
{
	cf_lru_unlink(cf, l);
	hmap_del(&cf->cache, l->key, l->klen);
	SSL_CTX_free(l->ctx);
	free(l);
}

/*
 * Caches ctx under key (absent), taking a reference of its own - the
 * caller keeps its one - and evicting the least recently used leaves to
 * stay within cache_max.  Lock held.
 */
static void cf_cache_put(certforge_t *cf, const char *key, size_t klen,
			 SSL_CTX *ctx)
{
	struct cf_leaf *l;
	bool created;

	if (SSL_CTX_up_ref(ctx) != 1)
		return; /* uncached: the caller's reference still works */
	while (cf->cache.count >= cf->cache_max && cf->tail)
		cf_cache_evict(cf, cf->tail);
	l = util_xmalloc(sizeof(*l) + klen + 1);
	l->ctx = ctx;
	l->klen = klen;
	memcpy(l->key, key, klen + 1);
	*hmap_slot(&cf->cache, key, klen, &created) = l;
	cf_lru_push(cf, l);
}

/* ---- API ------------------------------------------------------------------ */

/*
 * Runs at start-up, before the event loop: it reads and writes files,
 * fsyncs and generates keys.  certforge_free drops the cache's references
 * only; SSL_CTXs that callers still hold stay valid (the ticket key they
 * use is process-wide, not cf's).
 */
certforge_t *certforge_new(const struct certforge_opts *o, char **err)
{
	certforge_t *cf = util_xcalloc(1, sizeof(*cf));

	*err = NULL;
	ERR_clear_error(); /* errors reported are this call's own */
	pthread_mutex_init(&cf->lock, NULL);
	cf->cache_max = o->cache_max ? o->cache_max : CF_CACHE_DEFAULT;
	if (!o->ca_dir || !*o->ca_dir) {
		*err = util_xstrdup("no CA directory given");
		goto fail;
	}
	if (pthread_once(&cf_tk_once, cf_tk_init) != 0 || !cf_tk.ok) {
		*err = cf_errf("cannot make a session ticket key");
		goto fail;
	}
	if (cf_ca_setup(cf, o->ca_dir, err) < 0)
		goto fail;
	cf->leaf_key = EVP_EC_gen("P-256");
	if (!cf->leaf_key) {
		*err = cf_errf("cannot make the leaf key");
		goto fail;
	}
	if (o->public_copy && cf_publish(cf, o->public_copy, err) < 0)
		goto fail;
	return cf;
fail:
	certforge_free(cf);
	return NULL;
}

void certforge_free(certforge_t *cf)
{
	if (!cf)
		return;
	while (cf->head)
		cf_cache_evict(cf, cf->head);
	hmap_fini(&cf->cache);
	X509_free(cf->ca);
	EVP_PKEY_free(cf->ca_key);
	EVP_PKEY_free(cf->leaf_key);
	free(cf->ca_pem);
	pthread_mutex_destroy(&cf->lock);
	free(cf);
}

/*
 * Thread-safe.  A hit costs a lookup under the lock; a miss forges
 * outside it (so other names are served meanwhile), then inserts - or, if
 * another thread inserted the same name first, returns that one and drops
 * its own copy.
 */
SSL_CTX *certforge_ctx(certforge_t *cf, const char *name)
{
	char key[CF_NAME_MAX + 1];
	SSL_CTX *ctx, *fresh;
	bool is_ip = false;
	int n = cf_name_norm(name, key, &is_ip);

	if (n < 0) {
		ERR_raise_data(ERR_LIB_USER, ERR_R_PASSED_INVALID_ARGUMENT,
			       "certforge: not a host name or IPv4 address");
		return NULL;
	}
	pthread_mutex_lock(&cf->lock);
	ctx = cf_cache_get(cf, key, (size_t)n);
	if (ctx)
		cf->hits++;
	pthread_mutex_unlock(&cf->lock);
	if (ctx)
		return ctx;

	fresh = cf_forge(cf, key, (size_t)n, is_ip);
	if (!fresh)
		return NULL;
	pthread_mutex_lock(&cf->lock);
	cf->forged++;
	ctx = cf_cache_get(cf, key, (size_t)n);
	if (!ctx)
		cf_cache_put(cf, key, (size_t)n, fresh);
	pthread_mutex_unlock(&cf->lock);
	if (!ctx)
		return fresh;
	SSL_CTX_free(fresh); /* lost the race: the cached copy wins */
	return ctx;
}

const char *certforge_ca_pem(const certforge_t *cf)
{
	return cf->ca_pem;
}

void certforge_stats(certforge_t *cf, unsigned long *hits,
		     unsigned long *forged)
{
	pthread_mutex_lock(&cf->lock);
	*hits = cf->hits;
	*forged = cf->forged;
	pthread_mutex_unlock(&cf->lock);
}
