/*
 * bench_jlog.c - connection-log lines per second through jlog, end to end:
 * each producer builds a realistic record with jrec_* and queues it, and
 * the clock stops when jlog_flush says the last line is in the file.  Runs
 * with 1 and 4 producer threads, then with 4 and a small queue to show the
 * cost of back-pressure.  Also shown: the cost of building one record, and
 * the mean time a producer (the event loop, in the daemon) spends inside
 * jlog_write, waits for a full queue included.
 *
 * The log goes to a fresh directory under $TMPDIR (default /tmp), rotated
 * at 64 MiB with one backup so that the disk use stays bounded, and is
 * removed at exit.  Run with `make bench`.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jlog.h"
#include "util.h"

#define NLINES 2000000
#define MAX_BYTES (64ull << 20)
#define NPACED 200000
#define PACE_S 10e-6

struct producer {
	pthread_t th;
	jlog_t *l;
	int n;
	int id;
	double in_write; /* seconds spent inside jlog_write */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* An HTTPS request line as the daemon writes most (about 400 bytes). */
static char *make_line(int id, int i)
{
	static const char *const cmd[] = { "/usr/bin/curl", "-sSfL",
					   "https://api.github.com/repos/o/r" };
	struct jrec r;

	jrec_begin(&r, "https", 0);
	jrec_str(&r, "dst_ip", "140.82.112.6");
	jrec_int(&r, "dst_port", 443);
	jrec_str(&r, "url",
		 "https://api.github.com/repos/octo/hello-world/releases?"
		 "per_page=100");
	jrec_str(&r, "method", "GET");
	jrec_str(&r, "policy", i % 10 ? "allow" : "deny");
	jrec_proc(&r, "/usr/bin/curl", cmd, 3,
		  "/system.slice/actions.runner.service", NULL, "build",
		  "actions/checkout");
	return jrec_end(&r, 32768 + i % 28000, 1000 + id);
}

static void *producer_main(void *arg)
{
	struct producer *p = arg;

	for (int i = 0; i < p->n; i++) {
		char *line = make_line(p->id, i);
		double t0 = now_s();

		if (jlog_write(p->l, line) < 0)
			abort();
		p->in_write += now_s() - t0;
	}
	return NULL;
}

static void bench_build(void)
{
	size_t bytes = 0;
	double t0 = now_s(), el;

	for (int i = 0; i < NLINES; i++) {
		char *line = make_line(0, i);

		bytes += strlen(line) + 1;
		free(line);
	}
	el = now_s() - t0;
	printf("jlog: building records: %.0f ns/record (%.0f/s, %zu B)\n",
	       el / NLINES * 1e9, NLINES / el, bytes / NLINES);
}

/*
 * The event loop's view when the writer keeps up (the daemon's normal
 * case): one producer paced at one line every 10 us, well below the
 * writer's rate; the cost is mostly waking the writer.
 */
static void run_paced(const char *dir)
{
	char path[512];
	struct jlog_opts o = { .path = path };
	double in_write = 0, worst = 0, next;
	jlog_t *l;

	snprintf(path, sizeof(path), "%s/paced.jsonl", dir);
	l = jlog_open(&o);
	if (!l) {
		fprintf(stderr, "bench_jlog: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	next = now_s();
	for (int i = 0; i < NPACED; i++) {
		char *line = make_line(0, i);
		double t0, dt;

		while ((t0 = now_s()) < next)
			;
		next += PACE_S;
		if (jlog_write(l, line) < 0)
			abort();
		dt = now_s() - t0;
		in_write += dt;
		if (dt > worst)
			worst = dt;
	}
	jlog_close(l);
	printf("jlog: paced, 1 line per %.0f us: %.0f ns in jlog_write "
	       "(worst %.0f us)\n",
	       PACE_S * 1e6, in_write / NPACED * 1e9, worst * 1e6);
	unlink(path);
}

static void run(const char *dir, int nthreads, size_t queue_max)
{
	char path[512], old[520];
	struct jlog_opts o = { .path = path,
			       .max_bytes = MAX_BYTES,
			       .keep = 1,
			       .queue_max = queue_max };
	struct producer *prod = util_xcalloc((size_t)nthreads, sizeof(*prod));
	char *sample = make_line(0, 1);
	double bytes = (double)NLINES * (double)(strlen(sample) + 1);
	double t0, el, in_write = 0;
	jlog_t *l;

	snprintf(path, sizeof(path), "%s/bench.jsonl", dir);
	snprintf(old, sizeof(old), "%s.1", path);
	l = jlog_open(&o);
	if (!l) {
		fprintf(stderr, "bench_jlog: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	t0 = now_s();
	for (int t = 0; t < nthreads; t++) {
		prod[t] = (struct producer){ .l = l,
					     .n = NLINES / nthreads,
					     .id = t };
		if (pthread_create(&prod[t].th, NULL, producer_main, &prod[t]))
			abort();
	}
	for (int t = 0; t < nthreads; t++) {
		pthread_join(prod[t].th, NULL);
		in_write += prod[t].in_write;
	}
	jlog_flush(l, false);
	el = now_s() - t0;
	if (jlog_lines_written(l) != NLINES || jlog_write_errors(l))
		fprintf(stderr, "bench_jlog: %llu lines, %llu errors\n",
			(unsigned long long)jlog_lines_written(l),
			(unsigned long long)jlog_write_errors(l));
	jlog_close(l);
	printf("jlog: %d producer%s, queue %4zu: %7.0f lines/s, %5.1f MB/s, "
	       "%5.0f ns in jlog_write (%d lines in %.2f s)\n",
	       nthreads, nthreads > 1 ? "s" : " ", queue_max ? queue_max : 4096,
	       NLINES / el, bytes / el / 1e6, in_write / NLINES * 1e9, NLINES,
	       el);
	unlink(old);
	unlink(path);
	free(sample);
	free(prod);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	char dir[256];

	snprintf(dir, sizeof(dir), "%s/egress-bench-jlog-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		fprintf(stderr, "bench_jlog: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	bench_build();
	run_paced(dir);
	run(dir, 1, 0);
	run(dir, 4, 0);
	run(dir, 4, 64);
	rmdir(dir);
	return 0;
}
