/*
 * bench_tlsload - HTTPS load client for bench/bench_proxy.sh.
 *
 *   bench_tlsload new  IP PORT SNI PATH [-c CONC] [-d SECS] [-k CAFILE]
 *       CONC threads, each in a loop: TCP connect, a new full TLS handshake
 *       (no session cache, no tickets offered back), one GET with
 *       "Connection: close", read to EOF.  Prints requests/s and the p50/p99
 *       of the whole exchange (connect to EOF).
 *   bench_tlsload idle IP PORT SNI PATH [-n N] [-t HOLD] [-k CAFILE]
 *       opens N TLS connections, one keep-alive request on each (so a proxy
 *       holds a full client/upstream pair), prints "ready N" and keeps them
 *       open, idle, for HOLD seconds (or until killed).
 *
 * With -k the server certificate is verified against CAFILE and SNI, as a
 * client trusting only that CA would.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in dst;
static const char *sni, *path;
static SSL_CTX *ctx;
static double deadline;
static atomic_long nerr;
static char req[1024];

struct thr {
	pthread_t t;
	double *lat;
	size_t n, cap;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int tcp_connect(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static SSL *tls_open(int fd)
{
	SSL *ssl = SSL_new(ctx);

	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, sni);
	SSL_set1_host(ssl, sni);
	if (SSL_connect(ssl) != 1) {
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

/* one "Connection: close" exchange; 0 when a 200 came back */
static int one_new(void)
{
	char buf[16384];
	int fd, n, ok = 0;
	size_t got = 0;
	SSL *ssl;

	if ((fd = tcp_connect()) < 0)
		return -1;
	if (!(ssl = tls_open(fd))) {
		close(fd);
		return -1;
	}
	if (SSL_write(ssl, req, strlen(req)) > 0) {
		while ((n = SSL_read(ssl, buf, sizeof(buf))) > 0) {
			if (got == 0 && n >= 12 && !memcmp(buf + 9, "200", 3))
				ok = 1;
			got += n;
		}
	}
	SSL_shutdown(ssl);
	SSL_free(ssl);
	close(fd);
	return ok ? 0 : -1;
}

static void *run_new(void *arg)
{
	struct thr *t = arg;
	double t0;

	while ((t0 = now()) < deadline) {
		if (one_new() < 0) {
			atomic_fetch_add(&nerr, 1);
			continue;
		}
		if (t->n == t->cap) {
			t->cap = t->cap ? t->cap * 2 : 4096;
			t->lat = realloc(t->lat, t->cap * sizeof(double));
		}
		t->lat[t->n++] = now() - t0;
	}
	return NULL;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* reads one response with a Content-Length body; 0 on a 200 */
static int read_response(SSL *ssl)
{
	char buf[65536], *h, *cl;
	size_t got = 0, need = 0;
	int n;

	for (;;) {
		n = SSL_read(ssl, buf + got, sizeof(buf) - 1 - got);
		if (n <= 0)
			return -1;
		got += n;
		buf[got] = 0;
		if ((h = strstr(buf, "\r\n\r\n"))) {
			cl = strcasestr(buf, "content-length:");
			need = (h - buf) + 4 +
			       (cl ? strtoul(cl + 15, NULL, 10) : 0);
			break;
		}
		if (got == sizeof(buf) - 1)
			return -1;
	}
	while (got < need) {
		n = SSL_read(ssl, buf, sizeof(buf));
		if (n <= 0)
			return -1;
		got += n;
	}
	return memcmp(buf + 9, "200", 3) ? -1 : 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: bench_tlsload new|idle IP PORT SNI PATH "
			"[-c CONC] [-d SECS] [-n N] [-t HOLD] [-k CAFILE]\n");
	return 2;
}

int main(int argc, char **argv)
{
	int conc = 8, nidle = 200, i, opt;
	double secs = 5, hold = 30;
	const char *mode, *cafile = NULL;

	if (argc < 6)
		return usage();
	mode = argv[1];
	memset(&dst, 0, sizeof(dst));
	dst.sin_family = AF_INET;
	dst.sin_port = htons(atoi(argv[3]));
	if (inet_pton(AF_INET, argv[2], &dst.sin_addr) != 1)
		return usage();
	sni = argv[4];
	path = argv[5];
	optind = 6;
	while ((opt = getopt(argc, argv, "c:d:n:t:k:")) != -1) {
		switch (opt) {
		case 'c':
			conc = atoi(optarg);
			break;
		case 'd':
			secs = atof(optarg);
			break;
		case 'n':
			nidle = atoi(optarg);
			break;
		case 't':
			hold = atof(optarg);
			break;
		case 'k':
			cafile = optarg;
			break;
		default:
			return usage();
		}
	}
	ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	if (cafile) {
		if (SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1) {
			fprintf(stderr, "bench_tlsload: cannot load %s\n",
				cafile);
			return 1;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}

	if (!strcmp(mode, "new")) {
		struct thr *t = calloc(conc, sizeof(*t));
		size_t total = 0, k = 0;
		double *all, t0, el;

		snprintf(
			req, sizeof(req),
			"GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
			path, sni);
		if (one_new() <
		    0) { /* fail fast: a broken path, not a slow one */
			ERR_print_errors_fp(stderr);
			fprintf(stderr,
				"bench_tlsload: first request failed\n");
			return 1;
		}
		t0 = now();
		deadline = t0 + secs;
		for (i = 0; i < conc; i++)
			pthread_create(&t[i].t, NULL, run_new, &t[i]);
		for (i = 0; i < conc; i++) {
			pthread_join(t[i].t, NULL);
			total += t[i].n;
		}
		el = now() - t0;
		all = malloc((total + 1) * sizeof(double));
		for (i = 0; i < conc; i++) {
			memcpy(all + k, t[i].lat, t[i].n * sizeof(double));
			k += t[i].n;
		}
		qsort(all, total, sizeof(double), cmp_d);
		printf("reqs=%zu errors=%ld secs=%.2f rps=%.1f p50_ms=%.2f p99_ms=%.2f\n",
		       total, atomic_load(&nerr), el, total / el,
		       total ? all[total / 2] * 1e3 : 0,
		       total ? all[(size_t)(total * 0.99)] * 1e3 : 0);
		return total ? 0 : 1;
	}
	if (!strcmp(mode, "idle")) {
		SSL **ssl = calloc(nidle, sizeof(*ssl));
		int open_ok = 0;

		snprintf(req, sizeof(req),
			 "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, sni);
		for (i = 0; i < nidle; i++) {
			int fd = tcp_connect();

			if (fd < 0 || !(ssl[i] = tls_open(fd)) ||
			    SSL_write(ssl[i], req, strlen(req)) <= 0 ||
			    read_response(ssl[i]) < 0) {
				fprintf(stderr,
					"bench_tlsload: idle connection %d failed\n",
					i);
				ERR_print_errors_fp(stderr);
				if (fd >= 0)
					close(fd);
				ssl[i] = NULL;
				continue;
			}
			open_ok++;
		}
		printf("ready %d\n", open_ok);
		fflush(stdout);
		usleep((useconds_t)(hold * 1e6));
		return open_ok == nidle ? 0 : 1;
	}
	return usage();
}
