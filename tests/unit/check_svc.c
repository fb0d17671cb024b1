/*
 * check_svc.c - the simulated internet's services (sim/svc*.c), run for
 * real: each test writes a config for 127.0.0.1/127.0.0.2 on free high
 * ports, makes throwaway certificates, starts svc_main() in a child and
 * talks to it with ordinary clients (sockets, an OpenSSL client with SNI,
 * DNS over UDP and TCP), then checks the answers and the JSONL log.  The
 * child must exit 0 on SIGTERM (and free everything: LeakSanitizer runs at
 * its exit).
 *
 * Only loopback is used; nothing here touches the machine's network setup.
 */
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dnsmsg.h"
#include "suites.h"
#include "svc.h"
#include "util.h"

#define BANNER "220 sim ESMTP\r\n"
#define TTL 123

static struct {
	char base[64]; /* per test case, removed even when a test fails */
	char dir[96];
	char cfg[128], log[128], err[128];
	int http, https, dns, uecho, techo, banner; /* ports */
	pid_t pid;
} F;

/* ---- setup: certificates, ports, config, the child -------------------- */

static void write_cert(const char *base, const char *sans)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name = X509_get_subject_name(x);
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	char path[256];
	FILE *f;

	ck_assert_ptr_nonnull(key);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *)"svc test", -1, -1,
				   0);
	X509_set_issuer_name(x, name);
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, sans);
	ck_assert_ptr_nonnull(ext);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	ck_assert_int_gt(X509_sign(x, key, EVP_sha256()), 0);
	snprintf(path, sizeof(path), "%s/%s.pem", F.dir, base);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	PEM_write_X509(f, x);
	fclose(f);
	snprintf(path, sizeof(path), "%s/%s.key", F.dir, base);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(key);
}

static int bind_any(const char *addr, int type, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, type, 0);

	ck_assert_int_ge(fd, 0);
	inet_pton(AF_INET, addr, &sa.sin_addr);
	sa.sin_port = htons((uint16_t)port);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	getsockname(fd, (struct sockaddr *)&sa, &len);
	close(fd);
	return ntohs(sa.sin_port);
}

/*
 * A port free for both TCP and UDP on addr, and not one handed out before
 * in this setup: the probe sockets are closed again, so the kernel may
 * offer the same port twice (it did, and two services then met on it).
 * Still racy against other processes, but good enough.
 */
static int taken[8], ntaken;

static bool port_taken(int p)
{
	for (int i = 0; i < ntaken; i++)
		if (taken[i] == p)
			return true;
	return false;
}

static int free_port(const char *addr)
{
	for (int i = 0; i < 50; i++) {
		int p = bind_any(addr, SOCK_STREAM, 0);
		if (p > 0 && !port_taken(p) &&
		    bind_any(addr, SOCK_DGRAM, p) == p) {
			if (ntaken < (int)(sizeof(taken) / sizeof(taken[0])))
				taken[ntaken++] = p;
			return p;
		}
	}
	ck_abort_msg("no free port on %s", addr);
	return -1;
}

static void write_config(double idle)
{
	json_t *cfg = json_pack(
		"{s:s, s:f,"
		" s:[{s:s,s:i}],"
		" s:[{s:s,s:i,s:[{s:s,s:s},{s:s,s:s}]}],"
		" s:[{s:s,s:i,s:i,s:{s:[s,s],s:[s],s:[s],s:[s]}}],"
		" s:[{s:s,s:i}], s:[{s:s,s:i}], s:[{s:s,s:i,s:s}]}",
		"log", "services.jsonl", "idle_timeout", idle, "http", "addr",
		"127.0.0.1", "port", F.http, "https", "addr", "127.0.0.2",
		"port", F.https, "certs", "cert", "a.pem", "key", "a.key",
		"cert", "b.pem", "key", "b.key", "dns", "addr", "127.0.0.1",
		"port", F.dns, "ttl", TTL, "zone", "example.test",
		"198.51.100.10", "198.51.100.11", "*.sim.test", "203.0.113.5",
		"a.sim.test", "203.0.113.6", "Upper.TEST.", "198.51.100.12",
		"udp_echo", "addr", "127.0.0.2", "port", F.uecho, "tcp_echo",
		"addr", "127.0.0.2", "port", F.techo, "tcp_banner", "addr",
		"127.0.0.1", "port", F.banner, "banner", BANNER);

	ck_assert_ptr_nonnull(cfg);
	ck_assert_int_eq(json_dump_file(cfg, F.cfg, JSON_INDENT(1)), 0);
	json_decref(cfg);
}

static json_t *log_wait(const char *const *kv, double secs);
#define LOG_WAIT(...) log_wait((const char *const[]){ __VA_ARGS__, NULL }, 5)

static char *slurp(const char *path)
{
	char *s = util_read_file(path, NULL);

	return s ? s : util_xstrdup("");
}

static void start_svc(void)
{
	json_t *line;
	int status;

	fflush(NULL);
	F.pid = fork();
	ck_assert_int_ge(F.pid, 0);
	if (F.pid == 0) {
		int fd = open(F.err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0)
			dup2(fd, STDERR_FILENO);
		/* exit, not _exit: LeakSanitizer checks svc's shutdown */
		exit(svc_main(F.cfg) == 0 ? 0 : 1);
	}
	line = LOG_WAIT("event", "start");
	if (!line) {
		char *err = slurp(F.err);
		if (waitpid(F.pid, &status, WNOHANG) == F.pid)
			F.pid = 0;
		ck_abort_msg("services did not start: %s", err);
	}
	json_decref(line);
}

static void setup_idle(double idle)
{
	snprintf(F.dir, sizeof(F.dir), "%s/test-XXXXXX", F.base);
	ck_assert_ptr_nonnull(mkdtemp(F.dir));
	snprintf(F.cfg, sizeof(F.cfg), "%s/services.json", F.dir);
	snprintf(F.log, sizeof(F.log), "%s/services.jsonl", F.dir);
	snprintf(F.err, sizeof(F.err), "%s/services.err", F.dir);
	write_cert("a", "DNS:a.test");
	write_cert("b", "DNS:b.test,DNS:*.w.test");
	ntaken = 0;
	F.http = free_port("127.0.0.1");
	F.https = free_port("127.0.0.2");
	F.dns = free_port("127.0.0.1");
	F.uecho = free_port("127.0.0.2");
	F.techo = free_port("127.0.0.2");
	F.banner = free_port("127.0.0.1");
	write_config(idle);
	start_svc();
}

static void setup(void)
{
	setup_idle(30);
}

static void setup_short_idle(void)
{
	setup_idle(1);
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * A failed ck_assert ends the test process at once, skipping the checked
 * teardown (Check kills the test's process group, the services included).
 * The files go with the base directory, which this unchecked fixture makes
 * and removes in the runner process.
 */
static void base_setup(void)
{
	strcpy(F.base, "/tmp/egress-svc-XXXXXX");
	if (!mkdtemp(F.base))
		ck_abort_msg("mkdtemp: %s", strerror(errno));
}

static void base_teardown(void)
{
	rm_tree(F.base);
}

/* Stops the child with sig; it must exit 0 after logging "stop". */
static void stop_svc(int sig)
{
	int status = 0;
	json_t *line;

	if (F.pid <= 0)
		return;
	kill(F.pid, sig);
	ck_assert_int_eq(waitpid(F.pid, &status, 0), F.pid);
	F.pid = 0;
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "services exited with status %#x: %s", status,
		      slurp(F.err));
	line = LOG_WAIT("event", "stop");
	ck_assert_ptr_nonnull(line);
	json_decref(line);
}

static void teardown(void)
{
	if (F.pid > 0)
		stop_svc(SIGTERM);
	rm_tree(F.dir);
}

/* ---- the log ------------------------------------------------------------ */

/* Does field value v match want ("x*" matches any value starting with x)? */
static bool value_matches(const json_t *v, const char *want)
{
	char buf[64];
	const char *s = buf;
	size_t wl = strlen(want);

	if (json_is_string(v))
		s = json_string_value(v);
	else if (json_is_integer(v))
		snprintf(buf, sizeof(buf), "%lld",
			 (long long)json_integer_value(v));
	else if (json_is_null(v))
		s = "null";
	else
		return false;
	if (wl && want[wl - 1] == '*')
		return strncmp(s, want, wl - 1) == 0;
	return strcmp(s, want) == 0;
}

static bool line_matches(const json_t *o, const char *const *kv)
{
	for (; kv[0]; kv += 2) {
		const json_t *v = json_object_get(o, kv[0]);
		if (!v || !value_matches(v, kv[1]))
			return false;
	}
	return true;
}

/* Every line of the log, each checked to be a JSON object. */
static json_t *log_lines(void)
{
	char *text = slurp(F.log), *save = NULL;
	json_t *arr = json_array();

	for (char *ln = strtok_r(text, "\n", &save); ln;
	     ln = strtok_r(NULL, "\n", &save)) {
		json_error_t err;
		json_t *o = json_loads(ln, 0, &err);
		ck_assert_msg(json_is_object(o), "log line is not JSON: %s",
			      ln);
		json_array_append_new(arr, o);
	}
	free(text);
	return arr;
}

static int log_count(const char *const *kv)
{
	json_t *arr = log_lines(), *o;
	size_t i;
	int n = 0;

	json_array_foreach(arr, i, o)
	{
		n += line_matches(o, kv);
	}
	json_decref(arr);
	return n;
}
#define LOG_COUNT(...) log_count((const char *const[]){ __VA_ARGS__, NULL })

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* The first line matching every key/value pair, waiting up to secs. */
static json_t *log_wait(const char *const *kv, double secs)
{
	for (int waited = 0; waited <= secs * 1000; waited += 20) {
		json_t *arr = log_lines(), *o, *found = NULL;
		size_t i;

		json_array_foreach(arr, i, o)
		{
			if (!found && line_matches(o, kv))
				found = json_incref(o);
		}
		json_decref(arr);
		if (found)
			return found;
		sleep_ms(20);
	}
	return NULL;
}

/* Asserts that a matching line appears (the message shows the log). */
#define ck_log(...)                                                          \
	do {                                                                 \
		json_t *l_ = LOG_WAIT(__VA_ARGS__);                          \
		ck_assert_msg(l_ != NULL, "no log line like that; log:\n%s", \
			      slurp(F.log));                                 \
		json_decref(l_);                                             \
	} while (0)

/* ---- clients -------------------------------------------------------------- */

struct cl {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	char peer[32]; /* our address as the server logs it */
	size_t len;
	char buf[1 << 16];
};

static int tcp_connect(const char *addr, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct timeval tv = { 5, 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	inet_pton(AF_INET, addr, &sa.sin_addr);
	sa.sin_port = htons((uint16_t)port);
	ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
		      "connect %s:%d: %s", addr, port, strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

static struct cl *cl_open(const char *addr, int port)
{
	struct cl *c = util_xcalloc(1, sizeof(*c));
	struct sockaddr_in me;
	socklen_t len = sizeof(me);

	c->fd = tcp_connect(addr, port);
	getsockname(c->fd, (struct sockaddr *)&me, &len);
	snprintf(c->peer, sizeof(c->peer), "%s:%u", inet_ntoa(me.sin_addr),
		 ntohs(me.sin_port));
	return c;
}

static void cl_tls(struct cl *c, const char *sni)
{
	c->ctx = SSL_CTX_new(TLS_client_method());
	ck_assert_ptr_nonnull(c->ctx);
	c->ssl = SSL_new(c->ctx);
	if (sni)
		SSL_set_tlsext_host_name(c->ssl, sni);
	SSL_set_fd(c->ssl, c->fd);
	ck_assert_msg(SSL_connect(c->ssl) == 1, "TLS handshake failed");
}

static void cl_close(struct cl *c)
{
	if (c->ssl)
		SSL_free(c->ssl);
	SSL_CTX_free(c->ctx);
	close(c->fd);
	free(c);
}

static void cl_send(struct cl *c, const void *p, size_t n)
{
	if (c->ssl) {
		ck_assert_int_eq(SSL_write(c->ssl, p, (int)n), (int)n);
		return;
	}
	while (n) {
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
		ck_assert_msg(w > 0, "send: %s", strerror(errno));
		p = (const char *)p + w;
		n -= (size_t)w;
	}
}

static void cl_sends(struct cl *c, const char *s)
{
	cl_send(c, s, strlen(s));
}

/* Reads more into the buffer: bytes read, 0 at EOF, -1 on error/timeout. */
static ssize_t cl_fill(struct cl *c)
{
	size_t room = sizeof(c->buf) - c->len - 1;
	ssize_t n;

	ck_assert_uint_gt(room, 0);
	if (c->ssl) {
		n = SSL_read(c->ssl, c->buf + c->len, (int)room);
		if (n <= 0)
			return SSL_get_error(c->ssl, (int)n) ==
					       SSL_ERROR_ZERO_RETURN ?
				       0 :
				       -1;
	} else {
		n = recv(c->fd, c->buf + c->len, room, 0);
		if (n < 0)
			return -1;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	return n;
}

static void cl_consume(struct cl *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
	c->buf[c->len] = '\0';
}

/* Waits for n bytes; returns them as a fresh string. */
static char *cl_read_n(struct cl *c, size_t n)
{
	char *s;

	while (c->len < n)
		ck_assert_msg(cl_fill(c) > 0, "short read: %zu of %zu", c->len,
			      n);
	s = util_xstrndup(c->buf, n);
	cl_consume(c, n);
	return s;
}

/*
 * True when the server closes (EOF or reset) with nothing more to read.
 * Then our side is shut down too, so a lingering server closes at once.
 */
static bool cl_closed(struct cl *c)
{
	bool closed = c->len == 0 && cl_fill(c) <= 0 && c->len == 0;

	if (closed)
		shutdown(c->fd, SHUT_WR);
	return closed;
}

struct resp {
	int status;
	char head[2048];
	char *body;
};

/* Reads one response; a HEAD response has no body whatever it says. */
static void cl_response(struct cl *c, bool head, struct resp *r)
{
	char *end, *cl;
	size_t hl, blen = 0;

	while (!(end = strstr(c->buf, "\r\n\r\n")))
		ck_assert_msg(cl_fill(c) > 0, "no response head: %s", c->buf);
	hl = (size_t)(end + 4 - c->buf);
	ck_assert_uint_lt(hl, sizeof(r->head));
	memcpy(r->head, c->buf, hl);
	r->head[hl] = '\0';
	ck_assert_int_eq(sscanf(r->head, "HTTP/1.1 %d", &r->status), 1);
	cl = strcasestr(r->head, "\r\nContent-Length:");
	if (cl && !head)
		blen = strtoul(cl + 17, NULL, 10);
	cl_consume(c, hl);
	r->body = cl_read_n(c, blen);
}

static void ck_response(struct cl *c, bool head, int status, const char *body)
{
	struct resp r;

	cl_response(c, head, &r);
	ck_assert_int_eq(r.status, status);
	ck_assert_str_eq(r.body, body);
	free(r.body);
}

/* ---- HTTP ----------------------------------------------------------------- */

START_TEST(test_http_keepalive_pipelined)
{
	struct cl *c = cl_open("127.0.0.1", F.http);
	const char *req = "GET /a HTTP/1.1\r\nHost: a.test\r\n\r\n"
			  "POST /b?x=1 HTTP/1.1\r\nHost: B.test:8080\r\n"
			  "Content-Length: 5\r\n\r\nhello"
			  "HEAD /c HTTP/1.1\r\nhost: c.test\r\n\r\n";
	const char *last = "GET /d HTTP/1.1\r\nHost: d.test\r\n"
			   "Connection: close\r\n\r\n";
	struct resp r;
	char in[16];

	cl_sends(c, req);
	ck_response(c, false, 200, "hello from a.test GET /a\n");
	ck_response(c, false, 200, "hello from B.test:8080 POST /b?x=1\n");
	cl_response(c, true, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strstr(r.head, "Content-Type: text/plain\r\n"));
	ck_assert_ptr_nonnull(strstr(r.head, "Content-Length: 26\r\n"));
	free(r.body);
	/* still open: one more, asking to close */
	cl_sends(c, last);
	cl_response(c, false, &r);
	ck_assert_str_eq(r.body, "hello from d.test GET /d\n");
	ck_assert_ptr_nonnull(strstr(r.head, "Connection: close\r\n"));
	free(r.body);
	ck_assert(cl_closed(c));
	ck_log("event", "request", "svc", "http", "proto", "tcp", "peer",
	       c->peer, "method", "POST", "host", "B.test:8080", "path",
	       "/b?x=1", "status", "200");
	ck_log("event", "request", "method", "HEAD", "path", "/c");
	snprintf(in, sizeof(in), "%zu", strlen(req) + strlen(last));
	ck_log("event", "close", "peer", c->peer, "reason", "connection: close",
	       "bytes_in", in);
	ck_assert_int_eq(LOG_COUNT("event", "request", "peer", c->peer), 4);
	cl_close(c);
}
END_TEST

/* The accept line is there before the client sends a single byte. */
START_TEST(test_accept_logged_before_data)
{
	struct cl *c = cl_open("127.0.0.1", F.http);
	char local[32];

	snprintf(local, sizeof(local), "127.0.0.1:%d", F.http);
	ck_log("event", "accept", "svc", "http", "proto", "tcp", "local", local,
	       "peer", c->peer);
	ck_assert_int_eq(LOG_COUNT("event", "request"), 0);
	cl_close(c);
	ck_log("event", "close", "reason", "eof", "bytes_in", "0", "bytes_out",
	       "0");
}
END_TEST

START_TEST(test_http_no_host_and_continue)
{
	struct cl *c = cl_open("127.0.0.1", F.http);
	struct resp r;

	/* HTTP/1.0 without Host, no keep-alive: answered, then closed */
	cl_sends(c, "GET /old HTTP/1.0\r\n\r\n");
	ck_response(c, false, 200, "hello from  GET /old\n");
	ck_assert(cl_closed(c));
	ck_log("event", "request", "path", "/old", "host", "null");
	cl_close(c);
	/* Expect: 100-continue gets its interim response before the body */
	c = cl_open("127.0.0.1", F.http);
	cl_sends(c, "PUT /up HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
		    "Expect: 100-continue\r\n\r\n");
	cl_response(c, false, &r);
	ck_assert_int_eq(r.status, 100);
	free(r.body);
	cl_sends(c, "abc");
	ck_response(c, false, 200, "hello from h PUT /up\n");
	cl_close(c);
}
END_TEST

START_TEST(test_http_malformed)
{
	struct cl *c = cl_open("127.0.0.1", F.http);

	cl_sends(c, "GARBAGE\x01\r\n\r\nGET / HTTP/1.1\r\n\r\n");
	ck_response(c, false, 400, "bad request\n");
	ck_assert(cl_closed(c));
	ck_log("event", "close", "peer", c->peer, "reason", "bad request*");
	cl_close(c);
}
END_TEST

/* Headers past the cap: 431, and the close is clean (no reset). */
START_TEST(test_http_header_cap)
{
	struct cl *c = cl_open("127.0.0.1", F.http);
	size_t n = 40000;
	char *big = util_xmalloc(n + 64);

	memcpy(big, "GET / HTTP/1.1\r\nX-Big: ", 23);
	memset(big + 23, 'a', n - 23);
	cl_send(c, big, n);
	ck_response(c, false, 431, "headers too large\n");
	ck_assert(cl_closed(c));
	ck_log("event", "close", "peer", c->peer, "reason",
	       "headers too large");
	free(big);
	cl_close(c);
}
END_TEST

/*
 * Rejected while the client is still uploading: the server must keep
 * reading (and discarding) after its response, or closing with unread
 * input resets the connection under the client's feet.
 */
START_TEST(test_http_reject_during_upload)
{
	struct cl *c = cl_open("127.0.0.1", F.http);
	size_t n = 4 * 1024 * 1024;
	char *big = util_xmalloc(n);

	memcpy(big, "GET / HTTP/1.1\r\nX-Big: ", 23);
	memset(big + 23, 'a', n - 23);
	cl_send(c, big, n);
	ck_response(c, false, 431, "headers too large\n");
	ck_assert(cl_closed(c));
	ck_log("event", "close", "peer", c->peer, "reason",
	       "headers too large");
	free(big);
	cl_close(c);
}
END_TEST

/* ---- HTTPS ---------------------------------------------------------------- */

struct sni_case {
	const char *sni;
	int cert;
	const char *cert_name; /* a name the presented cert must cover */
};

static const struct sni_case sni_cases[] = {
	{ "b.test", 1, "b.test" },	 { "x.w.test", 1, "x.w.test" },
	{ "A.TEST", 0, "a.test" },	 { NULL, 0, "a.test" },
	{ "unknown.test", 0, "a.test" }, { "w.test", 0, "a.test" },
};

START_TEST(test_https_sni)
{
	const struct sni_case *k = &sni_cases[_i];
	struct cl *c = cl_open("127.0.0.2", F.https);
	X509 *peer;
	char req[256], body[256], cert[8];

	cl_tls(c, k->sni);
	peer = SSL_get1_peer_certificate(c->ssl);
	ck_assert_ptr_nonnull(peer);
	ck_assert_msg(X509_check_host(peer, k->cert_name, 0, 0, NULL) == 1,
		      "SNI %s: wrong certificate", k->sni);
	X509_free(peer);
	snprintf(req, sizeof(req), "GET /tls HTTP/1.1\r\nHost: %s\r\n\r\n",
		 k->sni ? k->sni : "none");
	snprintf(body, sizeof(body), "hello from %s GET /tls\n",
		 k->sni ? k->sni : "none");
	cl_sends(c, req);
	ck_response(c, false, 200, body);
	snprintf(cert, sizeof(cert), "%d", k->cert);
	ck_log("event", "tls", "svc", "https", "peer", c->peer, "sni",
	       k->sni ? k->sni : "null", "cert", cert);
	ck_log("event", "request", "svc", "https", "peer", c->peer, "path",
	       "/tls");
	cl_close(c);
}
END_TEST

/* Not TLS at all: the handshake fails, the connection is closed. */
START_TEST(test_https_garbage)
{
	struct cl *c = cl_open("127.0.0.2", F.https);

	cl_sends(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert(cl_closed(c));
	ck_log("event", "close", "svc", "https", "peer", c->peer);
	ck_assert_int_eq(LOG_COUNT("event", "tls", "peer", c->peer), 0);
	cl_close(c);
}
END_TEST

/* ---- DNS ------------------------------------------------------------------ */

static size_t mkquery(uint8_t *b, uint16_t id, uint16_t flags, const char *name,
		      uint16_t qtype, uint16_t qdcount)
{
	size_t n = 12;
	const char *p = name;

	memset(b, 0, 12);
	b[0] = (uint8_t)(id >> 8);
	b[1] = (uint8_t)id;
	b[2] = (uint8_t)(flags >> 8);
	b[3] = (uint8_t)flags;
	b[5] = (uint8_t)qdcount;
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		b[n++] = (uint8_t)l;
		memcpy(b + n, p, l);
		n += l;
		p += l + (dot ? 1 : 0);
	}
	b[n++] = 0;
	b[n++] = (uint8_t)(qtype >> 8);
	b[n++] = (uint8_t)qtype;
	b[n++] = 0;
	b[n++] = 1;
	return n;
}

/* Sends q over UDP; the reply's length, or -1 after timeout_ms. */
static ssize_t udp_xchg(const char *addr, int port, const void *q, size_t n,
			void *out, size_t cap, int timeout_ms, char *peer)
{
	struct sockaddr_in sa = { .sin_family = AF_INET }, me;
	socklen_t len = sizeof(me);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t r = -1;

	ck_assert_int_ge(fd, 0);
	inet_pton(AF_INET, addr, &sa.sin_addr);
	sa.sin_port = htons((uint16_t)port);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	getsockname(fd, (struct sockaddr *)&me, &len);
	if (peer)
		sprintf(peer, "%s:%u", inet_ntoa(me.sin_addr),
			ntohs(me.sin_port));
	ck_assert_int_eq(send(fd, q, n, 0), (ssize_t)n);
	if (poll(&pfd, 1, timeout_ms) == 1)
		r = recv(fd, out, cap, 0);
	close(fd);
	return r;
}

struct dns_case {
	const char *name;
	uint16_t qtype;
	unsigned rcode;
	size_t nans;
	const char *ans[2];
};

static const struct dns_case dns_cases[] = {
	{ "example.test", 1, 0, 2, { "198.51.100.10", "198.51.100.11" } },
	{ "EXAMPLE.Test", 1, 0, 2, { "198.51.100.10", "198.51.100.11" } },
	{ "foo.bar.sim.test", 1, 0, 1, { "203.0.113.5" } },
	{ "a.sim.test", 1, 0, 1, { "203.0.113.6" } }, /* exact beats * */
	{ "x.a.sim.test", 1, 0, 1, { "203.0.113.5" } },
	{ "sim.test", 1, 3, 0, { NULL } }, /* * is not the apex */
	{ "upper.test", 1, 0, 1, { "198.51.100.12" } },
	{ "example.test", 28, 0, 0, { NULL } }, /* NODATA */
	{ "example.test", 255, 0, 2, { "198.51.100.10", "198.51.100.11" } },
	{ "nope.test", 1, 3, 0, { NULL } },
	{ "nope.test", 28, 3, 0, { NULL } },
};

struct seen {
	size_t n;
	char a[4][INET6_ADDRSTRLEN];
	uint32_t ttl;
};

static int collect(const struct dnsmsg_addr *a, void *arg)
{
	struct seen *s = arg;

	if (s->n < 4)
		strcpy(s->a[s->n], a->addr);
	s->n++;
	s->ttl = a->ttl;
	return 0;
}

static void ck_dns_reply(const uint8_t *r, size_t n, uint16_t id,
			 const struct dns_case *k)
{
	struct dnsmsg m;
	struct seen s = { 0 };

	ck_assert_int_eq(dnsmsg_parse(&m, r, n), 0);
	ck_assert_uint_eq(m.hdr.id, id);
	ck_assert(m.hdr.qr && m.hdr.aa && m.hdr.rd && !m.hdr.tc);
	ck_assert_uint_eq(m.hdr.rcode, k->rcode);
	ck_assert_str_eq(m.q.name, k->name);
	ck_assert_int_eq(dnsmsg_walk_addrs(r, n, collect, &s), 0);
	ck_assert_uint_eq(s.n, k->nans);
	for (size_t i = 0; i < k->nans; i++)
		ck_assert_str_eq(s.a[i], k->ans[i]);
	if (k->nans)
		ck_assert_uint_eq(s.ttl, TTL);
}

START_TEST(test_dns_udp)
{
	const struct dns_case *k = &dns_cases[_i];
	uint8_t q[512], r[512];
	size_t qn = mkquery(q, (uint16_t)(0x100 + _i), 0x0100, k->name,
			    k->qtype, 1);
	char peer[32];
	ssize_t n =
		udp_xchg("127.0.0.1", F.dns, q, qn, r, sizeof(r), 3000, peer);
	const char *qtype = dnsmsg_type_str(k->qtype);

	ck_assert_msg(n > 0, "%s: no answer", k->name);
	ck_dns_reply(r, (size_t)n, (uint16_t)(0x100 + _i), k);
	ck_log("event", "query", "svc", "dns", "proto", "udp", "peer", peer,
	       "name", k->name, "qtype", qtype, "rcode",
	       k->rcode ? "NXDOMAIN" : "NOERROR");
}
END_TEST

/* Query problems: answered with an error rcode, not authoritative data. */
START_TEST(test_dns_udp_errors)
{
	uint8_t q[512], r[512];
	struct dnsmsg m;
	size_t qn;
	ssize_t n;

	qn = mkquery(q, 1, 0x1000, "example.test", 1, 1); /* opcode 2 */
	n = udp_xchg("127.0.0.1", F.dns, q, qn, r, sizeof(r), 3000, NULL);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(dnsmsg_parse(&m, r, (size_t)n), 0);
	ck_assert(m.hdr.rcode == 4 && !m.hdr.aa && m.hdr.opcode == 2);
	mkquery(q, 2, 0, "", 1, 0); /* header only: no question */
	n = udp_xchg("127.0.0.1", F.dns, q, 12, r, sizeof(r), 3000, NULL);
	ck_assert_int_eq(n, 12);
	ck_assert_int_eq(dnsmsg_parse(&m, r, (size_t)n), 0);
	ck_assert_uint_eq(m.hdr.rcode, 1);
	ck_log("event", "query", "rcode", "FORMERR");
	ck_log("event", "query", "rcode", "NOTIMP");
}
END_TEST

/* Malformed queries and stray responses get no answer at all. */
START_TEST(test_dns_udp_ignored)
{
	uint8_t q[512], r[512];
	size_t qn = mkquery(q, 7, 0x0100, "example.test", 1, 1);
	uint64_t seed = 88172645463325252ull;
	char peer[32], bytes[16];

	ck_assert_int_eq(udp_xchg("127.0.0.1", F.dns, q, qn - 1, r, sizeof(r),
				  300, peer),
			 -1);
	snprintf(bytes, sizeof(bytes), "%zu", qn - 1);
	ck_log("event", "query", "peer", peer, "error", "malformed", "bytes",
	       bytes);
	q[2] |= 0x80; /* QR: a response */
	ck_assert_int_eq(udp_xchg("127.0.0.1", F.dns, q, qn, r, sizeof(r), 300,
				  peer),
			 -1);
	ck_log("event", "query", "peer", peer, "error", "not a query");
	/* random garbage, then a good query is still answered */
	for (int i = 0; i < 200; i++) {
		int fd = socket(AF_INET, SOCK_DGRAM, 0);
		struct sockaddr_in sa = { .sin_family = AF_INET,
					  .sin_port = htons((uint16_t)F.dns) };
		size_t len;

		inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		len = seed % 300;
		for (size_t j = 0; j < len; j++)
			r[j] = (uint8_t)(seed >> (j % 8 * 8)) ^ (uint8_t)j;
		sendto(fd, r, len, 0, (struct sockaddr *)&sa, sizeof(sa));
		close(fd);
	}
	q[2] &= 0x7f;
	ck_assert_int_gt(udp_xchg("127.0.0.1", F.dns, q, qn, r, sizeof(r), 3000,
				  NULL),
			 0);
}
END_TEST

static void tcp_frame(uint8_t *out, const uint8_t *q, size_t n)
{
	ck_assert_int_eq(dnsmsg_tcp_prefix(out, n), 0);
	memcpy(out + 2, q, n);
}

static uint8_t *cl_read_frame(struct cl *c, size_t *n)
{
	char *len = cl_read_n(c, 2);

	ck_assert_int_eq(dnsmsg_tcp_len(len, 2, n), 0);
	free(len);
	return (uint8_t *)cl_read_n(c, *n);
}

START_TEST(test_dns_tcp)
{
	struct cl *c = cl_open("127.0.0.1", F.dns);
	uint8_t q1[256], q2[256], q3[256], wire[1024];
	size_t n1 = mkquery(q1, 11, 0x0100, dns_cases[0].name, 1, 1);
	size_t n2 = mkquery(q2, 12, 0x0100, dns_cases[5].name, 1, 1);
	size_t n3 = mkquery(q3, 13, 0x0100, dns_cases[2].name, 1, 1), n;
	uint8_t *r;

	/* two frames in one write, a third split inside its length */
	tcp_frame(wire, q1, n1);
	tcp_frame(wire + 2 + n1, q2, n2);
	tcp_frame(wire + 4 + n1 + n2, q3, n3);
	cl_send(c, wire, 4 + n1 + n2 + 1);
	sleep_ms(50);
	cl_send(c, wire + 4 + n1 + n2 + 1, n3 + 1);
	r = cl_read_frame(c, &n);
	ck_dns_reply(r, n, 11, &dns_cases[0]);
	free(r);
	r = cl_read_frame(c, &n);
	ck_dns_reply(r, n, 12, &dns_cases[5]);
	free(r);
	r = cl_read_frame(c, &n);
	ck_dns_reply(r, n, 13, &dns_cases[2]);
	free(r);
	ck_log("event", "query", "proto", "tcp", "peer", c->peer, "name",
	       "sim.test", "rcode", "NXDOMAIN");
	/* a malformed frame closes the connection */
	cl_send(c, "\x00\x05garba", 7);
	ck_assert(cl_closed(c));
	ck_log("event", "close", "svc", "dns", "peer", c->peer, "reason",
	       "malformed query");
	cl_close(c);
}
END_TEST

/* ---- echo and banner -------------------------------------------------------- */

START_TEST(test_udp_echo)
{
	size_t big = 60000;
	char *p = util_xmalloc(big), *r = util_xmalloc(big), peer[32];

	ck_assert_int_eq(udp_xchg("127.0.0.2", F.uecho, "ping", 4, r, big, 3000,
				  peer),
			 4);
	ck_assert_int_eq(memcmp(r, "ping", 4), 0);
	ck_log("event", "datagram", "svc", "udp_echo", "proto", "udp", "peer",
	       peer, "bytes", "4");
	for (size_t i = 0; i < big; i++)
		p[i] = (char)(i * 7);
	ck_assert_int_eq(udp_xchg("127.0.0.2", F.uecho, p, big, r, big, 3000,
				  NULL),
			 (ssize_t)big);
	ck_assert_int_eq(memcmp(p, r, big), 0);
	free(p);
	free(r);
}
END_TEST

/*
 * Two megabytes through the echo service while reading at the same time:
 * exercises the server's back-pressure (it stops reading while a megabyte
 * of echo is unsent) without deadlocking.
 */
START_TEST(test_tcp_echo_bulk)
{
	struct cl *c = cl_open("127.0.0.2", F.techo);
	size_t total = 2 * 1024 * 1024, sent = 0, got = 0;
	char buf[16384], peer[32];

	fcntl(c->fd, F_SETFL, O_NONBLOCK);
	while (got < total) {
		struct pollfd p = { .fd = c->fd,
				    .events = POLLIN |
					      (sent < total ? POLLOUT : 0) };
		ck_assert_int_eq(poll(&p, 1, 5000), 1);
		if (p.revents & POLLOUT) {
			size_t n = total - sent < sizeof(buf) ? total - sent :
								sizeof(buf);
			for (size_t i = 0; i < n; i++)
				buf[i] = (char)((sent + i) % 251);
			ssize_t w = send(c->fd, buf, n, MSG_NOSIGNAL);
			if (w > 0)
				sent += (size_t)w;
		}
		if (p.revents & POLLIN) {
			ssize_t r = recv(c->fd, buf, sizeof(buf), 0);
			bool same = true;

			ck_assert_int_gt(r, 0);
			/* one assertion per chunk: Check records each one */
			for (ssize_t i = 0; i < r; i++)
				same &= buf[i] ==
					(char)((got + (size_t)i) % 251);
			ck_assert_msg(same, "echo differs after byte %zu", got);
			got += (size_t)r;
		}
	}
	strcpy(peer, c->peer);
	cl_close(c);
	ck_log("event", "close", "svc", "tcp_echo", "peer", peer, "reason",
	       "eof", "bytes_in", "2097152", "bytes_out", "2097152");
}
END_TEST

START_TEST(test_banner)
{
	struct cl *c = cl_open("127.0.0.1", F.banner);
	char *s = cl_read_n(c, strlen(BANNER));

	ck_assert_str_eq(s, BANNER);
	free(s);
	cl_sends(c, "EHLO x\r\n");
	s = cl_read_n(c, 8);
	ck_assert_str_eq(s, "EHLO x\r\n");
	free(s);
	ck_log("event", "accept", "svc", "tcp_banner", "peer", c->peer);
	cl_close(c);
}
END_TEST

/* ---- robustness ------------------------------------------------------------- */

START_TEST(test_idle_timeout)
{
	struct cl *c = cl_open("127.0.0.2", F.techo);
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert(cl_closed(c));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_int_ge(t1.tv_sec - t0.tv_sec, 0);
	ck_assert_int_le(t1.tv_sec - t0.tv_sec, 3);
	ck_log("event", "close", "peer", c->peer, "reason", "idle");
	cl_close(c);
}
END_TEST

/* Random bytes at every TCP service; everything must still work after. */
START_TEST(test_hostile_tcp)
{
	const int ports[] = { F.http, F.dns, F.techo, F.banner };
	const char *addrs[] = { "127.0.0.1", "127.0.0.1", "127.0.0.2",
				"127.0.0.1" };
	uint64_t seed = 0x853c49e6748fea9bull;
	char junk[4096];

	for (int round = 0; round < 5; round++) {
		for (size_t i = 0; i < ARRAY_SIZE(ports); i++) {
			struct cl *c = cl_open(addrs[i], ports[i]);
			for (size_t j = 0; j < sizeof(junk); j++) {
				seed = seed * 6364136223846793005ull + 1;
				junk[j] = (char)(seed >> 56);
			}
			send(c->fd, junk, sizeof(junk), MSG_NOSIGNAL);
			cl_close(c);
		}
		/* and TLS with garbage after a valid ClientHello start */
		struct cl *t = cl_open("127.0.0.2", F.https);
		send(t->fd, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11,
		     MSG_NOSIGNAL);
		send(t->fd, junk, sizeof(junk), MSG_NOSIGNAL);
		cl_close(t);
	}
	struct cl *c = cl_open("127.0.0.1", F.http);
	cl_sends(c, "GET /ok HTTP/1.1\r\nHost: h\r\n\r\n");
	ck_response(c, false, 200, "hello from h GET /ok\n");
	cl_close(c);
}
END_TEST

static long cpu_ticks(pid_t pid)
{
	char path[64], *s, *p;
	unsigned long ut = 0, st = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	s = slurp(path);
	p = strrchr(s, ')');
	ck_assert_ptr_nonnull(p);
	/* after ")": state and 10 more fields, then utime and stime */
	ck_assert_int_eq(sscanf(p + 2,
				"%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
				"%lu %lu",
				&ut, &st),
			 2);
	free(s);
	return (long)(ut + st);
}

static int count_fds(pid_t pid)
{
	char path[64];
	DIR *d;
	struct dirent *e;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/*
 * Out of descriptors, the server must pause accepting rather than spin on
 * the ready listener, and serve the waiting clients once it can again.
 */
START_TEST(test_emfile_no_spin)
{
	struct rlimit old, low;
	struct cl *c[8];
	long t0;
	char *err;

	ck_assert_int_eq(prlimit(F.pid, RLIMIT_NOFILE, NULL, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)count_fds(F.pid) + 2;
	ck_assert_int_eq(prlimit(F.pid, RLIMIT_NOFILE, &low, NULL), 0);
	for (size_t i = 0; i < ARRAY_SIZE(c); i++)
		c[i] = cl_open("127.0.0.2", F.techo);
	sleep_ms(200);
	t0 = cpu_ticks(F.pid);
	sleep_ms(1000);
	ck_assert_int_lt(cpu_ticks(F.pid) - t0, 30);
	err = slurp(F.err);
	ck_assert_msg(strstr(err, "Too many open files"), "stderr: %s", err);
	free(err);
	ck_assert_int_eq(prlimit(F.pid, RLIMIT_NOFILE, &old, NULL), 0);
	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		char *s;
		cl_sends(c[i], "x");
		s = cl_read_n(c[i], 1);
		ck_assert_str_eq(s, "x");
		free(s);
		ck_log("event", "accept", "peer", c[i]->peer);
		cl_close(c[i]);
	}
}
END_TEST

START_TEST(test_sigint_exits_zero)
{
	stop_svc(SIGINT);
}
END_TEST

/* ---- startup errors (in-process: svc_main returns) ---------------------- */

struct err_case {
	const char *name;
	const char *config; /* %d: a port in use; NULL: no such file */
	const char *want; /* on stderr */
};

static const struct err_case err_cases[] = {
	{ "missing file", NULL, "svc: config" },
	{ "not JSON", "{", "svc: config" },
	{ "not an object", "[]", "not a JSON object" },
	{ "unknown key", "{\"htp\": []}", "unknown key" },
	{ "unknown field",
	  "{\"http\": [{\"addr\": \"127.0.0.1\", \"port\": 1, \"x\": 1}]}",
	  "http[0]" },
	{ "bad address", "{\"http\": [{\"addr\": \"1.2.3\", \"port\": 80}]}",
	  "bad address" },
	{ "bad port",
	  "{\"tcp_echo\": [{\"addr\": \"127.0.0.1\", \"port\": 0}]}",
	  "bad address" },
	{ "port in use",
	  "{\"tcp_echo\": [{\"addr\": \"127.0.0.1\", \"port\": %d}]}",
	  "Address already in use" },
	{ "missing cert",
	  "{\"https\": [{\"addr\": \"127.0.0.1\", \"port\": 1, \"certs\": "
	  "[{\"cert\": \"/nonexistent/c.pem\", \"key\": \"/x\"}]}]}",
	  "/nonexistent/c.pem" },
	{ "no certs",
	  "{\"https\": [{\"addr\": \"127.0.0.1\", \"port\": 1, \"certs\": []}]}",
	  "non-empty" },
	{ "bad zone address",
	  "{\"dns\": [{\"addr\": \"127.0.0.1\", \"port\": 1, \"zone\": "
	  "{\"a.test\": [\"1.2.3.4\", \"nope\"]}}]}",
	  "not an IPv4 address" },
	{ "bad idle", "{\"idle_timeout\": -1}", "idle_timeout" },
	{ "bad log", "{\"log\": \"/nonexistent/dir/x.jsonl\"}",
	  "/nonexistent/dir/x.jsonl" },
};

START_TEST(test_startup_errors)
{
	const struct err_case *k = &err_cases[_i];
	char dir[96], cfg[128], errp[128], *err;
	int busy = socket(AF_INET, SOCK_STREAM, 0), saved, fd, port;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/start-XXXXXX", F.base);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(cfg, sizeof(cfg), "%s/c.json", dir);
	snprintf(errp, sizeof(errp), "%s/err", dir);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	ck_assert_int_eq(bind(busy, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(busy, 1), 0);
	getsockname(busy, (struct sockaddr *)&sa, &len);
	port = ntohs(sa.sin_port);
	if (k->config) {
		f = fopen(cfg, "w");
		ck_assert_ptr_nonnull(f);
		fprintf(f, k->config, port);
		fclose(f);
	}
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	fd = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	dup2(fd, STDERR_FILENO);
	close(fd);
	ck_assert_int_eq(svc_main(cfg), -1);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(busy);
	err = slurp(errp);
	ck_assert_msg(strstr(err, k->want), "%s: stderr: %s", k->name, err);
	free(err);
	rm_tree(dir);
}
END_TEST

Suite *svc_suite(void)
{
	Suite *s = suite_create("svc");
	TCase *run = tcase_create("run");
	TCase *idle = tcase_create("idle");
	TCase *start = tcase_create("start");

	tcase_add_unchecked_fixture(run, base_setup, base_teardown);
	tcase_add_checked_fixture(run, setup, teardown);
	tcase_set_timeout(run, 60);
	tcase_add_test(run, test_http_keepalive_pipelined);
	tcase_add_test(run, test_accept_logged_before_data);
	tcase_add_test(run, test_http_no_host_and_continue);
	tcase_add_test(run, test_http_malformed);
	tcase_add_test(run, test_http_header_cap);
	tcase_add_test(run, test_http_reject_during_upload);
	tcase_add_loop_test(run, test_https_sni, 0, ARRAY_SIZE(sni_cases));
	tcase_add_test(run, test_https_garbage);
	tcase_add_loop_test(run, test_dns_udp, 0, ARRAY_SIZE(dns_cases));
	tcase_add_test(run, test_dns_udp_errors);
	tcase_add_test(run, test_dns_udp_ignored);
	tcase_add_test(run, test_dns_tcp);
	tcase_add_test(run, test_udp_echo);
	tcase_add_test(run, test_tcp_echo_bulk);
	tcase_add_test(run, test_banner);
	tcase_add_test(run, test_hostile_tcp);
	tcase_add_test(run, test_emfile_no_spin);
	tcase_add_test(run, test_sigint_exits_zero);
	suite_add_tcase(s, run);

	tcase_add_unchecked_fixture(idle, base_setup, base_teardown);
	tcase_add_checked_fixture(idle, setup_short_idle, teardown);
	tcase_set_timeout(idle, 30);
	tcase_add_test(idle, test_idle_timeout);
	suite_add_tcase(s, idle);

	tcase_add_unchecked_fixture(start, base_setup, base_teardown);
	tcase_add_loop_test(start, test_startup_errors, 0,
			    ARRAY_SIZE(err_cases));
	suite_add_tcase(s, start);
	return s;
}
