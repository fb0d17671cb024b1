/*
 * proxy_tls.c - the ClientHello stage (SPEC §6, reference 2.3): the policy
 * decides on the SNI before any upstream connection; a block aborts the
 * handshake before a single server byte, passthrough relays the raw bytes
 * (the buffered hello first), and everything else is intercepted: the
 * client gets a leaf forged for its SNI (or the original destination IP)
 * from a TLS bufferevent on its socket (the hello replayed through a BIO),
 * and the upstream, opened only when
 * a request or stream on the decrypted side is allowed, is verified against
 * the daemon's trust store with the client's SNI sent.
 *
 * Runs on the connection's worker thread.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy_int.h"
#include "util.h"

/*
 * The client's socket BIO with the bytes already read (the ClientHello)
 * served first.  The hello had to be read to be judged; this hands it to
 * OpenSSL without a filter bufferevent in between, so that an empty output
 * buffer means bytes handed to the kernel and a close never cuts a reply.
 */
struct pbio {
	int fd;
	unsigned char *pre;
	size_t len, off;
};

static int pbio_read(BIO *b, char *out, int n)
{
	struct pbio *p = BIO_get_data(b);
	ssize_t r;

	BIO_clear_retry_flags(b);
	if (n <= 0)
		return 0;
	if (p->off < p->len) {
		size_t k = p->len - p->off < (size_t)n ? p->len - p->off :
							 (size_t)n;

		memcpy(out, p->pre + p->off, k);
		p->off += k;
		return (int)k;
	}
	r = read(p->fd, out, (size_t)n);
	if (r < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		BIO_set_retry_read(b);
	return (int)r;
}

static int pbio_write(BIO *b, const char *in, int n)
{
	struct pbio *p = BIO_get_data(b);
	ssize_t r;

	BIO_clear_retry_flags(b);
	r = send(p->fd, in, (size_t)n, MSG_NOSIGNAL);
	if (r < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		BIO_set_retry_write(b);
	return (int)r;
}

static long pbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct pbio *p = BIO_get_data(b);

	(void)num;
	switch (cmd) {
	case BIO_C_GET_FD:
		if (ptr)
			*(int *)ptr = p->fd;
		return p->fd;
	case BIO_CTRL_PENDING:
		return (long)(p->len - p->off);
	case BIO_CTRL_FLUSH:
		return 1;
	default:
		return 0;
	}
}

static int pbio_destroy(BIO *b)
{
	struct pbio *p = BIO_get_data(b);

	if (p) {
		free(p->pre);
		free(p);
	}
	BIO_set_data(b, NULL);
	return 1; /* the fd belongs to the bufferevent */
}

static BIO_METHOD *pbio_method;
static pthread_once_t pbio_once = PTHREAD_ONCE_INIT;

static void pbio_method_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
				     "egressd prefixed socket");

	if (m && (!BIO_meth_set_read(m, pbio_read) ||
		  !BIO_meth_set_write(m, pbio_write) ||
		  !BIO_meth_set_ctrl(m, pbio_ctrl) ||
		  !BIO_meth_set_destroy(m, pbio_destroy))) {
		BIO_meth_free(m);
		m = NULL;
	}
	pbio_method = m;
}

/* A read BIO on fd that first yields pre[0..len) (taken over). */
static BIO *pbio_new(int fd, unsigned char *pre, size_t len)
{
	struct pbio *p;
	BIO *b;

	pthread_once(&pbio_once, pbio_method_init);
	if (!pbio_method || !(b = BIO_new(pbio_method))) {
		free(pre);
		return NULL;
	}
	p = util_xcalloc(1, sizeof(*p));
	p->fd = fd;
	p->pre = pre;
	p->len = len;
	BIO_set_data(b, p);
	BIO_set_init(b, 1);
	return b;
}

/* A server SSL for the client: leaf for name, reading the hello first. */
static SSL *pc_tls_client_ssl(struct pconn *pc, const char *name, int fd,
			      unsigned char *pre, size_t len)
{
	SSL_CTX *ctx = certforge_ctx(pc->cn_sh->cf, name);
	SSL *ssl;
	BIO *rb, *wb;

	if (!ctx) {
		fprintf(stderr, "proxy: cannot forge a certificate for %s\n",
			name);
		ERR_clear_error();
		free(pre);
		return NULL;
	}
	ssl = SSL_new(ctx);
	SSL_CTX_free(ctx); /* the SSL keeps its own reference */
	rb = pbio_new(fd, pre, len);
	wb = BIO_new_socket(fd, BIO_NOCLOSE);
	if (!ssl || !rb || !wb) {
		SSL_free(ssl);
		BIO_free(rb);
		BIO_free(wb);
		return NULL;
	}
	SSL_set_bio(ssl, rb, wb); /* ssl owns both BIOs */
	/* OpenSSL 3 reports a peer closing without close_notify as an error;
	 * libevent's dirty-shutdown handling expects an EOF. */
	SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* Idle connections give their record buffers back. */
	SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
	/* One read(2) per record, not two (header, then body); proxy.c
	 * drains what this leaves buffered (pc_half_kick). */
	SSL_set_read_ahead(ssl, 1);
	return ssl;
}

/* Starts the interception: our TLS server on the client's socket. */
static void pc_tls_intercept(struct pconn *pc)
{
	const char *name = pc->cn_has_sni ? pc->cn_sni : pc->cn_dst_ip;
	struct bufferevent *raw = pc->cn_cl.bev, *bev;
	struct evbuffer *in = bufferevent_get_input(raw);
	size_t len = evbuffer_get_length(in);
	unsigned char *pre = util_xmalloc(len ? len : 1);
	int fd = (int)bufferevent_getfd(raw);
	SSL *ssl;

	/* Take the socket back from the plain bufferevent. */
	evbuffer_remove(in, pre, len);
	bufferevent_setfd(raw, -1);
	bufferevent_free(raw);
	pc->cn_cl.bev = NULL;
	ssl = pc_tls_client_ssl(pc, name, fd, pre, len);
	if (!ssl) {
		close(fd);
		pc_close(pc, "cannot set up the client TLS");
		return;
	}
	/* Owns fd and ssl from here; the handshake starts as soon as the
	 * socket is writable, reading the hello from the BIO. */
	bev = bufferevent_openssl_socket_new(pc_base(pc), fd, ssl,
					     BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		SSL_free(ssl);
		close(fd);
		pc_close(pc, "out of memory");
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	pc->cn_cl.bev = bev;
	pc->cn_cl.tls = true;
	pc->cn_mitm = true;
	pc_set_state(pc, PC_TLS_HS);
	pc_half_setcb(&pc->cn_cl);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

void pc_tls_stage(struct pconn *pc, const struct tls_hello *hello)
{
	struct policy_event ev = { .type = POLICY_EV_HTTPS };
	struct policy_decision d;

	pc->cn_has_sni = hello->has_sni;
	if (hello->has_sni)
		snprintf(pc->cn_sni, sizeof(pc->cn_sni), "%s", hello->sni);
	pc->cn_alpn_http = hello->alpn_http11 || hello->alpn_h2;
	ev.host = pc->cn_has_sni ? pc->cn_sni : NULL;
	pc_decide(pc, &ev, true, &d);
	if (d.allow && pc->cn_has_sni && pc->cn_sh->strict_host &&
	    !pc_strict_host_ok(pc, pc->cn_sni)) {
		d.allow = pc->cn_sh->audit;
		d.rule = -1;
		d.passthrough = d.insecure = false;
	}
	pc_dbg(pc, "ClientHello sni=%s: %s%s%s", ev.host ? ev.host : "-",
	       d.allow ? "allow" : "block", d.passthrough ? " passthrough" : "",
	       d.insecure ? " insecure" : "");
	if (!d.allow) {
		/* Abort: not one byte of ours reaches the client. */
		pc_count(pc, POLICY_EV_HTTPS, false);
		pc_log_tls(pc, &d, false, NULL);
		pc_close(pc, "blocked at the ClientHello");
		return;
	}
	if (d.passthrough) {
		pc_count(pc, POLICY_EV_HTTPS, true);
		pc_log_tls(pc, &d, true, NULL);
		if (pc_upstream_open(pc) < 0) {
			pc_close(pc, "upstream open failed");
			return;
		}
		pc_start_relay(pc);
		return;
	}
	/* Allowed at this stage: nothing is logged until requests come. */
	pc->cn_insecure = pc->cn_insecure_mark = d.insecure;
	pc_tls_intercept(pc);
}

void pc_tls_client_ready(struct pconn *pc)
{
	SSL *ssl = bufferevent_openssl_get_ssl(pc->cn_cl.bev);

	if (pc->cn_state != PC_TLS_HS)
		return;
	pc_dbg(pc, "client handshake done (%s)",
	       ssl ? SSL_get_version(ssl) : "?");
	pc_set_state(pc, PC_TLS_CLASSIFY);
	pc_tls_classify_start(pc);
}

/* ---- upstream session resumption -------------------------------------- */

#define SESS_SLOTS 256
/*
 * Sessions kept per upstream.  A TLS 1.3 ticket is used once (RFC 8446
 * C.4: clients should not reuse one, and servers may refuse one they have
 * seen: nginx on OpenSSL 3 refused about a third of the reused tickets
 * under concurrent handshakes), so each new connection takes its own; a
 * full handshake brings two tickets (OpenSSL's default), a resumed one
 * one more.  A TLS 1.2 session stays for the next connection too.
 */
#define SESS_PER_KEY 4

struct pc_sessslot {
	char *key;
	unsigned n;
	SSL_SESSION *sess[SESS_PER_KEY]; /* oldest first */
};

struct pc_sesscache {
	struct pc_sessslot slot[SESS_SLOTS];
};

static void pc_sessslot_clear(struct pc_sessslot *s)
{
	free(s->key);
	s->key = NULL;
	while (s->n)
		SSL_SESSION_free(s->sess[--s->n]);
}

static int pc_ssl_idx = -1;
static pthread_once_t pc_ssl_idx_once = PTHREAD_ONCE_INIT;

static void pc_ssl_idx_init(void)
{
	pc_ssl_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

struct pc_sesscache *pc_sess_new(void)
{
	return util_xcalloc(1, sizeof(struct pc_sesscache));
}

void pc_sess_free(struct pc_sesscache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < SESS_SLOTS; i++)
		pc_sessslot_clear(&c->slot[i]);
	free(c);
}

/* "v|sni|ip:port": a session is only offered where it was made, with the
 * same verification (an insecure one never resumes a verified name). */
static unsigned pc_sess_key(const struct pconn *pc, char *key, size_t n)
{
	uint32_t h = 2166136261u;

	snprintf(key, n, "%c|%s|%s:%u", pc->cn_insecure ? 'i' : 'v',
		 pc->cn_has_sni ? pc->cn_sni : "", pc->cn_dst_ip,
		 pc->cn_dst_port);
	for (const char *c = key; *c; c++)
		h = (h ^ (uint8_t)*c) * 16777619u;
	return h % SESS_SLOTS;
}

/* Called by OpenSSL on the worker thread when the upstream hands out a
 * session (TLS 1.3: a ticket after the handshake).  Keeps it, dropping the
 * oldest of a full slot (or another upstream's sessions in the slot). */
static int pc_up_new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct pconn *pc = pc_ssl_idx >= 0 ? SSL_get_ex_data(ssl, pc_ssl_idx) :
					     NULL;
	struct pc_sesscache *c;
	struct pc_sessslot *s;
	char key[300];

	if (!pc || pc->cn_closed || !SSL_SESSION_is_resumable(sess))
		return 0;
	c = pc_sesscache_of(pc);
	if (!c)
		return 0;
	s = &c->slot[pc_sess_key(pc, key, sizeof(key))];
	if (!s->key || strcmp(s->key, key)) {
		pc_sessslot_clear(s);
		s->key = util_xstrdup(key);
	}
	if (s->n == SESS_PER_KEY) {
		SSL_SESSION_free(s->sess[0]);
		memmove(s->sess, s->sess + 1, --s->n * sizeof(s->sess[0]));
	}
	s->sess[s->n++] = sess; /* the reference OpenSSL gave us */
	return 1;
}

void pc_tls_prepare(struct proxy_shared *sh)
{
	pthread_once(&pc_ssl_idx_once, pc_ssl_idx_init);
	/* The contexts are the daemon's; only the callback is ours. */
	if (sh->up_verify)
		SSL_CTX_sess_set_new_cb(sh->up_verify, pc_up_new_session_cb);
	if (sh->up_insecure)
		SSL_CTX_sess_set_new_cb(sh->up_insecure, pc_up_new_session_cb);
}

static void pc_sess_offer(struct pconn *pc, SSL *ssl)
{
	struct pc_sesscache *c = pc_sesscache_of(pc);
	struct pc_sessslot *s;
	SSL_SESSION *sess;
	char key[300];

	if (pc_ssl_idx >= 0)
		SSL_set_ex_data(ssl, pc_ssl_idx, pc);
	if (!c)
		return;
	s = &c->slot[pc_sess_key(pc, key, sizeof(key))];
	if (!s->n || strcmp(s->key, key))
		return;
	/* The newest; SSL_set_session takes a reference of its own. */
	sess = s->sess[s->n - 1];
	SSL_set_session(ssl, sess);
	if (SSL_SESSION_get_protocol_version(sess) == TLS1_3_VERSION)
		SSL_SESSION_free(s->sess[--s->n]);
}

SSL *pc_tls_upstream_ssl(struct pconn *pc)
{
	struct proxy_shared *sh = pc->cn_sh;
	SSL *ssl = SSL_new(pc->cn_insecure ? sh->up_insecure : sh->up_verify);
	static const unsigned char alpn[] = "\x08http/1.1";

	if (!ssl)
		return NULL;
	SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* Idle connections give their record buffers back. */
	SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
	SSL_set_read_ahead(ssl, 1); /* as pc_tls_client_ssl */
	if (pc->cn_has_sni && !SSL_set_tlsext_host_name(ssl, pc->cn_sni))
		goto fail;
	if (pc->cn_alpn_http && SSL_set_alpn_protos(ssl, alpn, 9) != 0)
		goto fail;
	pc_sess_offer(pc, ssl);
	if (pc->cn_insecure) {
		SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
		return ssl;
	}
	SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
	/* The name checked is the one the client asked for: its SNI, or,
	 * without one, the address it connected to. */
	if (pc->cn_has_sni ? SSL_set1_host(ssl, pc->cn_sni) != 1 :
			     X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
							   pc->cn_dst_ip) != 1)
		goto fail;
	return ssl;
fail:
	SSL_free(ssl);
	return NULL;
}

bool pc_tls_verify_failed(struct pconn *pc, char *why, size_t n)
{
	SSL *ssl = pc->cn_upst.bev ?
			   bufferevent_openssl_get_ssl(pc->cn_upst.bev) :
			   NULL;
	long v;

	if (!ssl || pc->cn_insecure)
		return false;
	v = SSL_get_verify_result(ssl);
	if (v == X509_V_OK)
		return false;
	snprintf(why, n, "%s", X509_verify_cert_error_string(v));
	return true;
}
