/*
 * bench_certforge.c - what a forged certificate costs.
 *
 *   1. cold: certforge_ctx for names never seen (sign a leaf, build its
 *      server SSL_CTX), per second, with the share of that spent in
 *      SSL_CTX_new alone, and the memory each cached leaf holds;
 *   2. warm: certforge_ctx for cached names (lookup + reference), per
 *      second, on one thread and on several.
 *
 * Works in a temporary CA directory under /tmp, removed at exit.  Run with
 * `make bench`.
 */
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "certforge.h"

#define N_COLD 2000
#define N_WARM_NAMES 1000
#define N_WARM 2000000
#define N_THREADS 4

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Resident set size in bytes, from /proc/self/statm. */
static long rss_bytes(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * sysconf(_SC_PAGESIZE);
}

static int rm_cb(const char *path, const struct stat *st, int flag,
		 struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

struct warm_arg {
	certforge_t *cf;
	long n;
	unsigned seed;
	long bad;
};

static void *warm_thread(void *p)
{
	struct warm_arg *a = p;
	char name[64];

	for (long i = 0; i < a->n; i++) {
		SSL_CTX *ctx;

		snprintf(name, sizeof(name), "h%u.bench.example.test",
			 (unsigned)rand_r(&a->seed) % N_WARM_NAMES);
		ctx = certforge_ctx(a->cf, name);
		if (!ctx)
			a->bad++;
		SSL_CTX_free(ctx);
	}
	return NULL;
}

/* Lookups per second over n calls spread on nthreads threads. */
static double warm(certforge_t *cf, int nthreads, long n)
{
	pthread_t th[N_THREADS];
	struct warm_arg args[N_THREADS];
	double t0 = now_s();
	long bad = 0;

	for (int i = 0; i < nthreads; i++) {
		args[i] = (struct warm_arg){ cf, n / nthreads,
					     (unsigned)i * 2654435761u + 1, 0 };
		if (pthread_create(&th[i], NULL, warm_thread, &args[i]) != 0) {
			perror("pthread_create");
			exit(1);
		}
	}
	for (int i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		bad += args[i].bad;
	}
	if (bad) {
		fprintf(stderr, "bench_certforge: %ld lookups failed\n", bad);
		exit(1);
	}
	return (double)n / (now_s() - t0);
}

int main(void)
{
	char dir[] = "/tmp/bench-certforge-XXXXXX";
	struct certforge_opts o = { .cache_max = 100000 };
	unsigned long hits, forged;
	double t0, cold, ctxnew;
	long rss0, rss1;
	certforge_t *cf;
	char *err = NULL, name[64];

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	o.ca_dir = dir;
	t0 = now_s();
	cf = certforge_new(&o, &err);
	if (!cf) {
		fprintf(stderr, "bench_certforge: %s\n", err);
		free(err);
		nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
		return 1;
	}
	printf("certforge: CA created in %.1f ms\n", (now_s() - t0) * 1e3);

	/* SSL_CTX_new alone: the part of a forge that is not ours */
	t0 = now_s();
	for (int i = 0; i < N_COLD; i++)
		SSL_CTX_free(SSL_CTX_new(TLS_server_method()));
	ctxnew = (now_s() - t0) / N_COLD;

	rss0 = rss_bytes();
	t0 = now_s();
	for (int i = 0; i < N_COLD; i++) {
		SSL_CTX *ctx;

		snprintf(name, sizeof(name), "cold%d.bench.example.test", i);
		ctx = certforge_ctx(cf, name);
		if (!ctx) {
			fprintf(stderr, "bench_certforge: forge failed\n");
			return 1;
		}
		SSL_CTX_free(ctx);
	}
	cold = (now_s() - t0) / N_COLD;
	rss1 = rss_bytes();
	printf("certforge: cold forge       %8.0f /s  (%.0f us each, of "
	       "which SSL_CTX_new %.0f us)\n",
	       1.0 / cold, cold * 1e6, ctxnew * 1e6);
	printf("certforge: cached leaf      %8.1f KiB resident each\n",
	       (double)(rss1 - rss0) / N_COLD / 1024.0);

	for (int i = 0; i < N_WARM_NAMES; i++) {
		SSL_CTX *ctx;

		snprintf(name, sizeof(name), "h%d.bench.example.test", i);
		ctx = certforge_ctx(cf, name);
		if (!ctx)
			return 1;
		SSL_CTX_free(ctx);
	}
	printf("certforge: warm lookup      %8.0f /s  (1 thread, %d names)\n",
	       warm(cf, 1, N_WARM), N_WARM_NAMES);
	printf("certforge: warm lookup      %8.0f /s  (%d threads, %ld "
	       "CPUs)\n",
	       warm(cf, N_THREADS, N_WARM), N_THREADS,
	       sysconf(_SC_NPROCESSORS_ONLN));
	certforge_stats(cf, &hits, &forged);
	printf("certforge: %lu hits, %lu forged\n", hits, forged);
	certforge_free(cf);
	nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}
