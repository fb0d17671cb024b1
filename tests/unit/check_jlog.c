/*
 * check_jlog.c - the connection log: JSON encoding (escaping as Python's
 * json.dumps(ensure_ascii=True) gives it, ts, key order), the writer thread
 * under concurrent producers, size rotation, flush and close.
 *
 * The expected strings of the escaping table were produced once with
 * json.dumps(s.decode("utf-8", "replace"), ensure_ascii=True,
 * separators=(",", ":")); the test itself needs no Python.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jlog.h"
#include "suites.h"
#include "util.h"

/* ---- helpers ---- */

static char tmpdir[64];

static void tmpdir_setup(void)
{
	strcpy(tmpdir, "/tmp/egress-jlog-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void tmpdir_teardown(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char p[512];

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(tmpdir);
}

/* Path of name in the test's directory (static slot i). */
static const char *tpath(int i, const char *name)
{
	static char buf[4][512];

	snprintf(buf[i], sizeof(buf[i]), "%s/%s", tmpdir, name);
	return buf[i];
}

/* Contents of path, or NULL if it does not exist. */
static char *slurp(const char *path)
{
	return util_read_file(path, NULL);
}

/* Every line of a file must be newline-terminated JSON; returns how many. */
static int check_lines(const char *s)
{
	int n = 0;

	while (*s) {
		const char *nl = strchr(s, '\n');
		json_error_t err;
		json_t *o;

		ck_assert_msg(nl != NULL, "unterminated line: %s", s);
		o = json_loadb(s, (size_t)(nl - s), 0, &err);
		ck_assert_msg(o != NULL, "bad JSON (%s): %.*s", err.text,
			      (int)(nl - s), s);
		json_decref(o);
		n++;
		s = nl + 1;
	}
	return n;
}

/* Integer field key of the JSON line at s. */
static long long line_int(const char *s, size_t len, const char *key)
{
	json_t *o = json_loadb(s, len, 0, NULL);
	long long v;

	ck_assert_ptr_nonnull(o);
	ck_assert(json_is_integer(json_object_get(o, key)));
	v = json_integer_value(json_object_get(o, key));
	json_decref(o);
	return v;
}

/* A line of exactly len bytes (newline excluded) with "i":i, 1000 <= i <
 * 10000 so that every such line has the same length. */
static char *fixed_line(int i, size_t len)
{
	struct jrec r;
	char pad[1024];
	size_t base;
	char *line;

	jrec_begin(&r, "t", 1);
	jrec_int(&r, "i", i);
	jrec_str(&r, "p", "");
	line = jrec_end(&r, -1, -1);
	base = strlen(line);
	free(line);
	ck_assert_uint_ge(len, base);
	ck_assert_uint_lt(len - base, sizeof(pad));
	memset(pad, 'x', len - base);
	pad[len - base] = '\0';
	jrec_begin(&r, "t", 1);
	jrec_int(&r, "i", i);
	jrec_str(&r, "p", pad);
	line = jrec_end(&r, -1, -1);
	ck_assert_uint_eq(strlen(line), len);
	return line;
}

/* The "i" of every line of file path, in order, into v; returns count. */
static int file_is(const char *path, int *v, int max)
{
	char *s = slurp(path), *p;
	int n = 0;

	ck_assert_msg(s != NULL, "%s missing", path);
	check_lines(s);
	for (p = s; *p; n++) {
		char *nl = strchr(p, '\n');

		ck_assert_int_lt(n, max);
		v[n] = (int)line_int(p, (size_t)(nl - p), "i");
		p = nl + 1;
	}
	free(s);
	return n;
}

static off_t file_size(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -1;
	return st.st_size;
}

/* ---- encoding ---- */

static const struct {
	const char *in, *out;
} esc_cases[] = {
	{ "plain", "\"plain\"" },
	{ "", "\"\"" },
	{ "a\"b", "\"a\\\"b\"" },
	{ "back\\slash", "\"back\\\\slash\"" },
	{ "\x08\x0c\x0a\x0d\x09", "\"\\b\\f\\n\\r\\t\"" },
	{ "\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"" },
	{ "\x1b[0m", "\"\\u001b[0m\"" },
	{ "/ <>&'", "\"/ <>&'\"" },
	{ "caf\xc3\xa9", "\"caf\\u00e9\"" },
	{ "\xe2\x82\xac", "\"\\u20ac\"" },
	{ "\xe2\x80\xa8", "\"\\u2028\"" },
	{ "\xef\xbf\xbf", "\"\\uffff\"" },
	{ "\xf0\x9f\x98\x80", "\"\\ud83d\\ude00\"" },
	{ "\xf4\x8f\xbf\xbf", "\"\\udbff\\udfff\"" },
	/* Ill-formed UTF-8: one U+FFFD per maximal subpart. */
	{ "\xe2\x82", "\"\\ufffd\"" },
	{ "\xc0\x80", "\"\\ufffd\\ufffd\"" },
	{ "\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"" },
	{ "\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" },
	{ "\xf0\x9f\x98", "\"\\ufffd\"" },
	{ "a\xff"
	  "b",
	  "\"a\\ufffdb\"" },
	{ "\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\"" },
	{ "\xc3", "\"\\ufffd\"" },
	{ "\xc3(", "\"\\ufffd(\"" },
	{ "\x80\xbf", "\"\\ufffd\\ufffd\"" },
	{ "\xf5\x80", "\"\\ufffd\\ufffd\"" },
};

START_TEST(test_escape)
{
	static const char head[] =
		"{\"ts\":\"1970-01-01T00:00:00.001Z\",\"type\":\"t\",\"k\":";
	struct jrec r;
	char want[256];
	char *line;
	json_t *o;

	jrec_begin(&r, "t", 1);
	jrec_str(&r, "k", esc_cases[_i].in);
	line = jrec_end(&r, -1, -1);
	snprintf(want, sizeof(want), "%s%s}", head, esc_cases[_i].out);
	ck_assert_str_eq(line, want);
	o = json_loads(line, 0, NULL);
	ck_assert_ptr_nonnull(o);
	json_decref(o);
	free(line);
}
END_TEST

/* The string value of key k in a jrec line, decoded by jansson. */
static char *decode_k(const char *line)
{
	json_t *o = json_loads(line, 0, NULL);
	char *v;

	ck_assert_msg(o != NULL, "bad JSON: %.200s", line);
	ck_assert(json_is_string(json_object_get(o, "k")));
	v = util_xstrdup(json_string_value(json_object_get(o, "k")));
	json_decref(o);
	return v;
}

static int ascii_only(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

START_TEST(test_escape_roundtrip)
{
	/* Long runs of every escape class, so the buffer grows inside one
	 * string; valid UTF-8 must come back unchanged through a decoder. */
	static const char *const units[] = { "a",
					     "\"",
					     "\x01",
					     "\n",
					     "\xc3\xa9",
					     "\xe2\x82\xac",
					     "\xf0\x9f\x98\x80",
					     "\x7f" };
	struct strbuf sb = { 0 };
	uint32_t x = 2463534242u;
	struct jrec r;
	char *line, *back;

	for (int i = 0; i < 20000; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		strbuf_adds(&sb, units[x % ARRAY_SIZE(units)]);
	}
	jrec_begin(&r, "t", 1);
	jrec_str(&r, "k", sb.buf);
	line = jrec_end(&r, -1, -1);
	ck_assert(ascii_only(line));
	back = decode_k(line);
	ck_assert_str_eq(back, sb.buf);
	free(back);
	free(line);

	/* Random bytes: always ASCII-only, valid JSON. */
	for (int round = 0; round < 200; round++) {
		char raw[257];
		int n = (int)(x % 256);

		for (int i = 0; i < n; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			raw[i] = (char)(x % 255 + 1);
		}
		raw[n] = '\0';
		jrec_begin(&r, "t", 1);
		jrec_str(&r, "k", raw);
		line = jrec_end(&r, -1, -1);
		ck_assert(ascii_only(line));
		free(decode_k(line));
		free(line);
	}
	strbuf_fini(&sb);
}
END_TEST

START_TEST(test_escape_keys_and_lists)
{
	static const char *const v[] = { "sh", "-c", "echo \"\xc3\xa9\"",
					 NULL };
	struct jrec r;
	char *line;

	jrec_begin(&r, "a\"\xc3\xa9", 1);
	jrec_str(&r, "k\n", "v");
	jrec_strv(&r, "cmdline", v, 4);
	jrec_strv(&r, "answers", NULL, 0);
	line = jrec_end(&r, -1, -1);
	ck_assert_str_eq(line, "{\"ts\":\"1970-01-01T00:00:00.001Z\","
			       "\"type\":\"a\\\"\\u00e9\",\"k\\n\":\"v\","
			       "\"cmdline\":[\"sh\",\"-c\","
			       "\"echo \\\"\\u00e9\\\"\",null],"
			       "\"answers\":[]}");
	free(line);
}
END_TEST

START_TEST(test_values)
{
	struct jrec r;
	char *line;

	jrec_begin(&r, "t", 1);
	jrec_int(&r, "min", INT64_MIN);
	jrec_int(&r, "max", INT64_MAX);
	jrec_int(&r, "zero", 0);
	jrec_bool(&r, "yes", true);
	jrec_bool(&r, "no", false);
	jrec_str(&r, "nil", NULL);
	line = jrec_end(&r, 0, 0);
	ck_assert_str_eq(line, "{\"ts\":\"1970-01-01T00:00:00.001Z\","
			       "\"type\":\"t\","
			       "\"min\":-9223372036854775808,"
			       "\"max\":9223372036854775807,\"zero\":0,"
			       "\"yes\":true,\"no\":false,\"nil\":null,"
			       "\"src_port\":0,\"pid\":0}");
	free(line);
}
END_TEST

static const struct {
	int64_t ms;
	const char *ts;
} ts_cases[] = {
	{ 1, "1970-01-01T00:00:00.001Z" },
	{ 1000, "1970-01-01T00:00:01.000Z" },
	{ 1714564800042, "2024-05-01T12:00:00.042Z" },
	{ 951782400999, "2000-02-29T00:00:00.999Z" },
	{ 253402300799999, "9999-12-31T23:59:59.999Z" },
	{ -1, "1969-12-31T23:59:59.999Z" },
};

START_TEST(test_ts)
{
	struct jrec r;
	char want[128];
	char *line;

	jrec_begin(&r, "t", ts_cases[_i].ms);
	line = jrec_end(&r, -1, -1);
	snprintf(want, sizeof(want), "{\"ts\":\"%s\",\"type\":\"t\"}",
		 ts_cases[_i].ts);
	ck_assert_str_eq(line, want);
	free(line);
}
END_TEST

START_TEST(test_ts_now)
{
	struct jrec r;
	struct tm tm = { 0 };
	char *line, *end;
	time_t before = time(NULL), t;
	int ms = -1;

	jrec_begin(&r, "t", 0);
	line = jrec_end(&r, -1, -1);
	/* {"ts":"YYYY-MM-DDTHH:MM:SS.mmmZ", */
	ck_assert_int_eq(line[31], '"');
	ck_assert_int_eq(line[30], 'Z');
	end = strptime(line + 7, "%Y-%m-%dT%H:%M:%S", &tm);
	ck_assert_ptr_nonnull(end);
	ck_assert_int_eq(end[0], '.');
	ck_assert_int_eq(sscanf(end + 1, "%3d", &ms), 1);
	ck_assert_int_ge(ms, 0);
	ck_assert_int_le(ms, 999);
	t = timegm(&tm);
	ck_assert_int_ge(t, before);
	ck_assert_int_le(t, time(NULL));
	free(line);
}
END_TEST

START_TEST(test_key_order)
{
	static const char *const cmd[] = { "curl", "-s", "https://x" };
	struct jrec r;
	char *line;

	jrec_begin(&r, "https", 1714564800042);
	jrec_str(&r, "dst_ip", "93.184.216.34");
	jrec_int(&r, "dst_port", 443);
	jrec_str(&r, "host", NULL);
	jrec_str(&r, "policy", "deny");
	jrec_str(&r, "error", "tls_client_rejected_ca");
	jrec_proc(&r, "/usr/bin/curl", cmd, 3, "/system.slice/x.service", NULL,
		  "", "build");
	line = jrec_end(&r, 40000, 1234);
	ck_assert_str_eq(line,
			 "{\"ts\":\"2024-05-01T12:00:00.042Z\","
			 "\"type\":\"https\",\"dst_ip\":\"93.184.216.34\","
			 "\"dst_port\":443,\"host\":null,"
			 "\"policy\":\"deny\","
			 "\"error\":\"tls_client_rejected_ca\","
			 "\"exe\":\"/usr/bin/curl\","
			 "\"cmdline\":[\"curl\",\"-s\",\"https://x\"],"
			 "\"cgroup\":\"/system.slice/x.service\","
			 "\"action\":\"build\",\"src_port\":40000,"
			 "\"pid\":1234}");
	free(line);

	/* All six process fields, in the reference's order. */
	jrec_begin(&r, "tcp", 1);
	jrec_proc(&r, "e", cmd, 1, "c", "i", "s", "a");
	line = jrec_end(&r, -1, 7);
	ck_assert_str_eq(line,
			 "{\"ts\":\"1970-01-01T00:00:00.001Z\","
			 "\"type\":\"tcp\",\"exe\":\"e\","
			 "\"cmdline\":[\"curl\"],\"cgroup\":\"c\","
			 "\"image\":\"i\",\"step\":\"s\",\"action\":\"a\","
			 "\"pid\":7}");
	free(line);
}
END_TEST

START_TEST(test_proc_empty)
{
	static const char *const cmd[] = { "x" };
	struct jrec r;
	char *line;

	jrec_begin(&r, "udp", 1);
	jrec_proc(&r, "", cmd, 0, NULL, "", NULL, "");
	jrec_proc(&r, NULL, NULL, 0, NULL, NULL, NULL, NULL);
	line = jrec_end(&r, -1, -1);
	ck_assert_str_eq(line, "{\"ts\":\"1970-01-01T00:00:00.001Z\","
			       "\"type\":\"udp\"}");
	free(line);
}
END_TEST

START_TEST(test_long_record)
{
	struct jrec r;
	char *big = util_xmalloc(100001), *line;
	json_t *o;

	memset(big, 'a', 100000);
	big[100000] = '\0';
	big[5] = '\n';
	jrec_begin(&r, "http", 1);
	jrec_str(&r, "url", big);
	line = jrec_end(&r, 1, 2);
	ck_assert_ptr_null(strchr(line, '\n'));
	o = json_loads(line, 0, NULL);
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(json_string_value(json_object_get(o, "url")), big);
	json_decref(o);
	free(line);
	free(big);
}
END_TEST

/* ---- the writer ---- */

#define NTHREADS 8
#define NPERTHREAD 20000
#define SMALLQ 16

struct producer {
	pthread_t th;
	jlog_t *l;
	int t;
	int failures; /* no ck_assert outside the test's own thread */
};

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	static const char *const cmd[] = { "python3", "-c",
					   "print('\xc3\xa9')" };
	static const char alpha[] = "abcdefghijklmnopqrstuvwxyz";

	for (int i = 0; i < NPERTHREAD; i++) {
		struct jrec r;

		jrec_begin(&r, "tcp", 0);
		jrec_int(&r, "t", p->t);
		jrec_int(&r, "i", i);
		/* Lines of varying length. */
		jrec_str(&r, "pad", &alpha[i % 27]);
		jrec_proc(&r, "/usr/bin/python3", cmd, 3, NULL, NULL, NULL,
			  NULL);
		if (jlog_write(p->l, jrec_end(&r, i % 65536, p->t)) < 0)
			p->failures++;
		if (i % 1000 == 0 && jlog_queue_depth(p->l) > SMALLQ)
			p->failures++;
	}
	return NULL;
}

START_TEST(test_concurrent)
{
	struct jlog_opts o = { .path = tpath(0, "c.jsonl"),
			       .queue_max = SMALLQ };
	struct producer prod[NTHREADS];
	unsigned char *seen = util_xcalloc(NTHREADS, NPERTHREAD);
	int last[NTHREADS];
	char *s, *p;
	jlog_t *l = jlog_open(&o);
	size_t n = 0;

	ck_assert_ptr_nonnull(l);
	for (int t = 0; t < NTHREADS; t++) {
		prod[t] = (struct producer){ .l = l, .t = t };
		last[t] = -1;
		ck_assert_int_eq(pthread_create(&prod[t].th, NULL,
						producer_main, &prod[t]),
				 0);
	}
	for (int t = 0; t < NTHREADS; t++) {
		pthread_join(prod[t].th, NULL);
		ck_assert_int_eq(prod[t].failures, 0);
	}
	jlog_flush(l, false);
	ck_assert_uint_eq(jlog_lines_written(l), NTHREADS * NPERTHREAD);
	ck_assert_uint_eq(jlog_write_errors(l), 0);
	ck_assert_uint_eq(jlog_queue_depth(l), 0);
	jlog_close(l);

	s = slurp(o.path);
	ck_assert_ptr_nonnull(s);
	for (p = s; *p; n++) {
		char *nl = strchr(p, '\n');
		json_t *obj;
		int t, i;

		ck_assert_ptr_nonnull(nl);
		obj = json_loadb(p, (size_t)(nl - p), 0, NULL);
		ck_assert_msg(obj != NULL, "bad line %.*s", (int)(nl - p), p);
		t = (int)json_integer_value(json_object_get(obj, "t"));
		i = (int)json_integer_value(json_object_get(obj, "i"));
		ck_assert_int_eq(
			json_integer_value(json_object_get(obj, "pid")), t);
		json_decref(obj);
		ck_assert(t >= 0 && t < NTHREADS && i >= 0 && i < NPERTHREAD);
		ck_assert_msg(!seen[t * NPERTHREAD + i], "dup %d/%d", t, i);
		seen[t * NPERTHREAD + i] = 1;
		/* The queue is FIFO: each producer's lines stay in order. */
		ck_assert_int_eq(i, last[t] + 1);
		last[t] = i;
		p = nl + 1;
	}
	ck_assert_uint_eq(n, NTHREADS * NPERTHREAD);
	free(s);
	free(seen);
}
END_TEST

START_TEST(test_flush_sync)
{
	struct jlog_opts o = { .path = tpath(0, "f.jsonl") };
	jlog_t *l = jlog_open(&o);
	char *s;

	ck_assert_ptr_nonnull(l);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(jlog_write(l, fixed_line(1000 + i, 60)), 0);
	jlog_flush(l, true);
	ck_assert_uint_eq(jlog_lines_written(l), 100);
	ck_assert_uint_eq(jlog_queue_depth(l), 0);
	ck_assert_int_eq(file_size(o.path), 100 * 61);
	s = slurp(o.path);
	ck_assert_int_eq(check_lines(s), 100);
	free(s);
	jlog_flush(l, true); /* nothing new: returns at once */
	jlog_close(l);
}
END_TEST

START_TEST(test_lines_without_flush)
{
	/* The writer naps after writing and sleeps when idle: a line must
	 * reach the file on its own either way, never waiting for more. */
	static const int pause_ms[] = { 0, 1, 3, 30, 0, 50, 2 };
	struct jlog_opts o = { .path = tpath(0, "n.jsonl") };
	jlog_t *l = jlog_open(&o);

	ck_assert_ptr_nonnull(l);
	for (int k = 0; k < (int)ARRAY_SIZE(pause_ms); k++) {
		struct timespec ts = { 0, pause_ms[k] * 1000000L };
		off_t want = (off_t)(k + 1) * 71;
		int waited = 0;

		nanosleep(&ts, NULL);
		ck_assert_int_eq(jlog_write(l, fixed_line(1000 + k, 70)), 0);
		while (file_size(o.path) < want && waited++ < 2000) {
			ts.tv_nsec = 1000000;
			nanosleep(&ts, NULL);
		}
		ck_assert_int_eq(file_size(o.path), want);
	}
	jlog_close(l);
}
END_TEST

START_TEST(test_close_flushes)
{
	struct jlog_opts o = { .path = tpath(0, "cl.jsonl"), .queue_max = 0 };
	jlog_t *l = jlog_open(&o);
	char *s;

	ck_assert_ptr_nonnull(l);
	for (int i = 0; i < 10000; i++)
		ck_assert_int_eq(jlog_write(l, fixed_line(1000 + i % 9000, 80)),
				 0);
	jlog_close(l);
	ck_assert_int_eq(file_size(o.path), 10000 * 81);
	s = slurp(o.path);
	ck_assert_int_eq(check_lines(s), 10000);
	free(s);
	jlog_close(NULL);
}
END_TEST

START_TEST(test_appends)
{
	struct jlog_opts o = { .path = tpath(0, "a.jsonl") };
	jlog_t *l;
	int v[8];

	for (int round = 0; round < 2; round++) {
		l = jlog_open(&o);
		ck_assert_ptr_nonnull(l);
		ck_assert_int_eq(jlog_write(l, fixed_line(1000 + round, 70)),
				 0);
		jlog_close(l);
	}
	ck_assert_int_eq(file_is(o.path, v, 8), 2);
	ck_assert_int_eq(v[0], 1000);
	ck_assert_int_eq(v[1], 1001);
}
END_TEST

START_TEST(test_missing_dir)
{
	struct jlog_opts o = { .path = tpath(0, "missing/log.jsonl") };

	errno = 0;
	ck_assert_ptr_null(jlog_open(&o));
	ck_assert_int_eq(errno, ENOENT);
	o.path = "";
	errno = 0;
	ck_assert_ptr_null(jlog_open(&o));
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(test_stdout)
{
	struct jlog_opts o = { .path = "-", .max_bytes = 10, .keep = 1 };
	int fd = open(tpath(0, "stdout"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int saved = dup(STDOUT_FILENO);
	jlog_t *l;
	int v[8];

	ck_assert_int_ge(fd, 0);
	ck_assert_int_ge(saved, 0);
	fflush(stdout);
	ck_assert_int_eq(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
	l = jlog_open(&o);
	ck_assert_ptr_nonnull(l);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(jlog_write(l, fixed_line(1000 + i, 70)), 0);
	jlog_flush(l, true); /* fdatasync of stdout: harmless */
	jlog_close(l);
	/* stdout stays open (and is never rotated). */
	ck_assert_int_eq(write(STDOUT_FILENO, "", 0), 0);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	close(fd);
	ck_assert_int_eq(file_is(tpath(0, "stdout"), v, 8), 3);
	ck_assert_int_eq(v[2], 1002);
	ck_assert_int_eq(file_size(tpath(1, "stdout.1")), -1);
}
END_TEST

START_TEST(test_stdout_epipe)
{
	struct jlog_opts o = { .path = "-" };
	int p[2], saved = dup(STDOUT_FILENO);
	jlog_t *l;

	/* A reader that went away: the writer thread must get EPIPE rather
	 * than the process being killed by SIGPIPE. */
	ck_assert_int_ge(saved, 0);
	ck_assert_int_eq(pipe(p), 0);
	close(p[0]);
	fflush(stdout);
	ck_assert_int_eq(dup2(p[1], STDOUT_FILENO), STDOUT_FILENO);
	l = jlog_open(&o);
	ck_assert_ptr_nonnull(l);
	ck_assert_int_eq(jlog_write(l, fixed_line(1000, 70)), 0);
	jlog_flush(l, false);
	ck_assert_uint_eq(jlog_write_errors(l), 1);
	ck_assert_uint_eq(jlog_lines_written(l), 0);
	jlog_close(l);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	close(p[1]);
}
END_TEST

/* The child of test_write_errors: 0, or which expectation failed.  Check
 * itself writes to files, so the size limit must stay out of its process. */
static int write_errors_child(const char *path, char **lines)
{
	struct jlog_opts o = { .path = path };
	struct rlimit lim;
	jlog_t *l;
	int rc = 0;

	if (getrlimit(RLIMIT_FSIZE, &lim) < 0)
		return 1;
	lim.rlim_cur = 1050;
	if (setrlimit(RLIMIT_FSIZE, &lim) < 0)
		return 2;
	l = jlog_open(&o);
	if (!l)
		return 3;
	for (int i = 0; i < 15; i++)
		if (jlog_write(l, lines[i]) != 0)
			rc = 4;
	jlog_flush(l, false);
	if (jlog_lines_written(l) != 10)
		rc = 5;
	if (jlog_write_errors(l) != 5)
		rc = 6;
	jlog_close(l);
	return rc;
}

START_TEST(test_write_errors)
{
	const char *path = tpath(0, "f.jsonl");
	int status, v[16];
	char *lines[15];
	pid_t pid;

	/* A file that cannot grow past 1050 bytes: one batch of 15 lines of
	 * 100 bytes stops inside the 11th.  The 10 before it are written
	 * whole, the 11th and every later one counted as errors, and none
	 * is lost silently. */
	for (int i = 0; i < 15; i++)
		lines[i] = fixed_line(1000 + i, 99);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(write_errors_child(path, lines));
	for (int i = 0; i < 15; i++)
		free(lines[i]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "child status %#x", status);
	ck_assert_int_eq(file_size(path), 1050);
	/* The fragment of the 11th (no room was left for its newline) is
	 * not a line; the 10 before it are. */
	ck_assert_int_eq(truncate(path, 1000), 0);
	ck_assert_int_eq(file_is(path, v, 16), 10);
	ck_assert_int_eq(v[9], 1009);
}
END_TEST

/* ---- rotation ---- */

/* Writes lines i = first .. first+n-1 of 99 bytes (100 with the newline). */
static void write_fixed(jlog_t *l, int first, int n)
{
	for (int i = first; i < first + n; i++)
		ck_assert_int_eq(jlog_write(l, fixed_line(i, 99)), 0);
	jlog_flush(l, false);
}

/* File path holds exactly the lines i = first .. first+n-1. */
static void expect_range(const char *path, int first, int n)
{
	int v[64], got = file_is(path, v, 64);

	ck_assert_msg(got == n, "%s: %d lines, want %d", path, got, n);
	for (int k = 0; k < n; k++)
		ck_assert_int_eq(v[k], first + k);
}

START_TEST(test_rotate_keep)
{
	struct jlog_opts o = { .path = tpath(0, "r.jsonl"),
			       .max_bytes = 1000,
			       .keep = 3 };
	jlog_t *l = jlog_open(&o);

	ck_assert_ptr_nonnull(l);
	/* 10 lines of 100 bytes fill a file exactly; the 11th rotates. */
	write_fixed(l, 1000, 35);
	expect_range(tpath(0, "r.jsonl"), 1030, 5);
	expect_range(tpath(0, "r.jsonl.1"), 1020, 10);
	expect_range(tpath(0, "r.jsonl.2"), 1010, 10);
	expect_range(tpath(0, "r.jsonl.3"), 1000, 10);
	write_fixed(l, 1035, 10);
	/* Lines 1000..1009 went with the old r.jsonl.3. */
	expect_range(tpath(0, "r.jsonl"), 1040, 5);
	expect_range(tpath(0, "r.jsonl.1"), 1030, 10);
	expect_range(tpath(0, "r.jsonl.2"), 1020, 10);
	expect_range(tpath(0, "r.jsonl.3"), 1010, 10);
	ck_assert_int_eq(file_size(tpath(0, "r.jsonl.4")), -1);
	for (int k = 1; k <= 3; k++) {
		char name[32];

		snprintf(name, sizeof(name), "r.jsonl.%d", k);
		ck_assert_int_eq(file_size(tpath(1, name)), 1000);
	}
	ck_assert_uint_eq(jlog_lines_written(l), 45);
	ck_assert_uint_eq(jlog_write_errors(l), 0);
	jlog_close(l);
}
END_TEST

START_TEST(test_rotate_keep0)
{
	struct jlog_opts o = { .path = tpath(0, "t.jsonl"),
			       .max_bytes = 1000,
			       .keep = 0 };
	jlog_t *l = jlog_open(&o);

	ck_assert_ptr_nonnull(l);
	write_fixed(l, 1000, 25);
	expect_range(tpath(0, "t.jsonl"), 1020, 5);
	ck_assert_int_eq(file_size(tpath(0, "t.jsonl.1")), -1);
	jlog_close(l);
}
END_TEST

START_TEST(test_rotate_keep1)
{
	struct jlog_opts o = { .path = tpath(0, "k.jsonl"),
			       .max_bytes = 1000,
			       .keep = 1 };
	jlog_t *l = jlog_open(&o);

	ck_assert_ptr_nonnull(l);
	write_fixed(l, 1000, 25);
	expect_range(tpath(0, "k.jsonl"), 1020, 5);
	expect_range(tpath(0, "k.jsonl.1"), 1010, 10);
	ck_assert_int_eq(file_size(tpath(0, "k.jsonl.2")), -1);
	jlog_close(l);
}
END_TEST

START_TEST(test_rotate_big_line)
{
	struct jlog_opts o = { .path = tpath(0, "b.jsonl"),
			       .max_bytes = 200,
			       .keep = 5 };
	jlog_t *l = jlog_open(&o);

	ck_assert_ptr_nonnull(l);
	/* An empty file takes a line larger than max_bytes whole. */
	ck_assert_int_eq(jlog_write(l, fixed_line(1000, 299)), 0);
	ck_assert_int_eq(jlog_write(l, fixed_line(1001, 79)), 0);
	ck_assert_int_eq(jlog_write(l, fixed_line(1002, 79)), 0);
	ck_assert_int_eq(jlog_write(l, fixed_line(1003, 399)), 0);
	ck_assert_int_eq(jlog_write(l, fixed_line(1004, 79)), 0);
	jlog_close(l);
	expect_range(tpath(0, "b.jsonl.3"), 1000, 1);
	ck_assert_int_eq(file_size(tpath(0, "b.jsonl.3")), 300);
	expect_range(tpath(0, "b.jsonl.2"), 1001, 2);
	expect_range(tpath(0, "b.jsonl.1"), 1003, 1);
	ck_assert_int_eq(file_size(tpath(0, "b.jsonl.1")), 400);
	expect_range(tpath(0, "b.jsonl"), 1004, 1);
	ck_assert_int_eq(file_size(tpath(0, "b.jsonl.4")), -1);
}
END_TEST

START_TEST(test_rotate_existing)
{
	struct jlog_opts o = { .path = tpath(0, "e.jsonl"),
			       .max_bytes = 1000,
			       .keep = 1 };
	FILE *f = fopen(o.path, "w");
	jlog_t *l;

	/* A previous run left 950 bytes: the first new line rotates. */
	ck_assert_ptr_nonnull(f);
	for (int i = 0; i < 10; i++) {
		char *line = fixed_line(900 + i, 94);

		fprintf(f, "%s\n", line);
		free(line);
	}
	fclose(f);
	l = jlog_open(&o);
	ck_assert_ptr_nonnull(l);
	write_fixed(l, 1000, 1);
	expect_range(tpath(0, "e.jsonl.1"), 900, 10);
	expect_range(tpath(0, "e.jsonl"), 1000, 1);
	jlog_close(l);
}
END_TEST

START_TEST(test_rotate_concurrent)
{
	struct jlog_opts o = { .path = tpath(0, "rc.jsonl"),
			       .max_bytes = 256 * 1024,
			       .keep = 100,
			       .queue_max = SMALLQ };
	struct producer prod[4];
	jlog_t *l = jlog_open(&o);
	int total = 0;

	ck_assert_ptr_nonnull(l);
	for (int t = 0; t < 4; t++) {
		prod[t] = (struct producer){ .l = l, .t = t };
		ck_assert_int_eq(pthread_create(&prod[t].th, NULL,
						producer_main, &prod[t]),
				 0);
	}
	for (int t = 0; t < 4; t++)
		pthread_join(prod[t].th, NULL);
	jlog_close(l);
	/* No line split across files, none lost while keep is not hit. */
	for (int k = 0; k <= 100; k++) {
		char name[32], *s;
		off_t sz;

		if (k)
			snprintf(name, sizeof(name), "rc.jsonl.%d", k);
		else
			snprintf(name, sizeof(name), "rc.jsonl");
		sz = file_size(tpath(1, name));
		if (sz < 0)
			break;
		ck_assert_int_le(sz, 256 * 1024);
		s = slurp(tpath(1, name));
		total += check_lines(s);
		free(s);
	}
	ck_assert_int_eq(total, 4 * NPERTHREAD);
}
END_TEST

Suite *jlog_suite(void)
{
	Suite *s = suite_create("jlog");
	TCase *tc = tcase_create("record");

	tcase_add_loop_test(tc, test_escape, 0, (int)ARRAY_SIZE(esc_cases));
	tcase_add_test(tc, test_escape_roundtrip);
	tcase_add_test(tc, test_escape_keys_and_lists);
	tcase_add_test(tc, test_values);
	tcase_add_loop_test(tc, test_ts, 0, (int)ARRAY_SIZE(ts_cases));
	tcase_add_test(tc, test_ts_now);
	tcase_add_test(tc, test_key_order);
	tcase_add_test(tc, test_proc_empty);
	tcase_add_test(tc, test_long_record);
	suite_add_tcase(s, tc);

	tc = tcase_create("writer");
	tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_concurrent);
	tcase_add_test(tc, test_flush_sync);
	tcase_add_test(tc, test_lines_without_flush);
	tcase_add_test(tc, test_close_flushes);
	tcase_add_test(tc, test_appends);
	tcase_add_test(tc, test_missing_dir);
	tcase_add_test(tc, test_stdout);
	tcase_add_test(tc, test_stdout_epipe);
	tcase_add_test(tc, test_write_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("rotate");
	tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_rotate_keep);
	tcase_add_test(tc, test_rotate_keep0);
	tcase_add_test(tc, test_rotate_keep1);
	tcase_add_test(tc, test_rotate_big_line);
	tcase_add_test(tc, test_rotate_existing);
	tcase_add_test(tc, test_rotate_concurrent);
	suite_add_tcase(s, tc);
	return s;
}
