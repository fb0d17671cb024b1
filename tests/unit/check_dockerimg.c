/*
 * check_dockerimg.c - the Docker image cache: container ids in cgroup
 * paths, the HTTP/1.1 response reader on hostile input, and the cache
 * against a fake dockerd (tests/unit/fakedocker.c) on a unix socket in a
 * temporary directory: the initial list, create/destroy events, per-id
 * lookups on a miss, an absent or restarting dockerd, and a dockerd that
 * misbehaves.  Backoffs and timeouts are tens of milliseconds, so every
 * case ends within a second or two.
 */
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dockerimg.h"
#include "httpresp.h"
#include "fakedocker.h"
#include "suites.h"
#include "util.h"

#define HEX16 "0123456789abcdef"
#define ID_A HEX16 HEX16 HEX16 HEX16
#define ID_B "b" HEX16 HEX16 HEX16 "123456789abcdef"
#define ID_C "c" HEX16 HEX16 HEX16 "123456789abcdef"
#define ID_D "d" HEX16 HEX16 HEX16 "123456789abcdef"
#define ID_E "e" HEX16 HEX16 HEX16 "123456789abcdef"
#define ID_F "f" HEX16 HEX16 HEX16 "123456789abcdef"
#define ID_G "a" HEX16 HEX16 HEX16 "123456789abcdef"
#define ID_H "0" HEX16 HEX16 HEX16 "123456789abcdef"

/* ---- container ids in cgroup paths ------------------------------------------ */

static const struct {
	const char *path;
	const char *id; /* NULL: not a container */
} cid_cases[] = {
	{ "/docker/" ID_A, ID_A },
	{ "/egress-sim/w1/docker/" ID_A, ID_A },
	{ "/system.slice/docker-" ID_A ".scope", ID_A },
	{ "/docker-" ID_B ".scope", ID_B },
	{ "/a/b/c/docker/" ID_B, ID_B },
	{ "/docker/abc", NULL },
	{ "/docker/" ID_A "/extra", NULL },
	{ "/docker/" ID_A "/", NULL },
	{ "/docker/" ID_A "0", NULL },
	{ "/docker/" HEX16 HEX16 HEX16 "0123456789abcde", NULL },
	{ "/docker/0123456789ABCDEF" HEX16 HEX16 HEX16, NULL },
	{ "/docker/g123456789abcdef" HEX16 HEX16 HEX16, NULL },
	{ "/docker/ 123456789abcdef" HEX16 HEX16 HEX16, NULL },
	{ "/mydocker/" ID_A, NULL },
	{ "/docker-x/" ID_A, NULL },
	{ "/Docker/" ID_A, NULL },
	{ "docker/" ID_A, NULL },
	{ "/" ID_A, NULL },
	{ ID_A, NULL },
	{ "/system.slice/docker-" ID_A ".scope/init.scope", NULL },
	{ "/system.slice/docker-" ID_A ".scopex", NULL },
	{ "/system.slice/docker-" ID_A, NULL },
	{ "/system.slice/docker-" ID_A "0.scope", NULL },
	{ "/system.slice/containerd-" ID_A ".scope", NULL },
	{ "/system.slice/docker-" HEX16 HEX16 HEX16 "0123456789abcdeX.scope",
	  NULL },
	{ "/system.slice/docker.service", NULL },
	{ "/system.slice/hosted-compute-agent.service", NULL },
	{ "", NULL },
	{ "/", NULL },
	{ NULL, NULL },
};

START_TEST(test_container_id)
{
	char id[DOCKERIMG_ID_LEN + 1] = "untouched";
	bool ok = dockerimg_container_id(cid_cases[_i].path, id);

	if (cid_cases[_i].id) {
		ck_assert_msg(ok, "%s: not recognised", cid_cases[_i].path);
		ck_assert_str_eq(id, cid_cases[_i].id);
	} else {
		ck_assert_msg(!ok, "%s: recognised as %s",
			      cid_cases[_i].path ? cid_cases[_i].path : "NULL",
			      id);
		ck_assert_str_eq(id, "untouched");
	}
}
END_TEST

/* ---- the HTTP response reader ------------------------------------------------ */

#define OK200 "HTTP/1.1 200 OK\r\n"
#define TE "Transfer-Encoding: chunked\r\n"

static const struct {
	const char *name;
	const char *in; /* NULL: built by the test (big inputs) */
	size_t len; /* 0: strlen */
	int rc; /* after feed and EOF */
	int status;
	const char *body;
} http_cases[] = {
	{ "Content-Length", OK200 "Content-Length: 5\r\n\r\nhello", 0,
	  HTTPRESP_DONE, 200, "hello" },
	{ "chunked with extensions and trailers",
	  OK200 TE "\r\n5\r\nhello\r\n6;x=y\r\n world\r\nA \r\n0123456789"
		   "\r\n0\r\nX-T: 1\r\n\r\n",
	  0, HTTPRESP_DONE, 200, "hello world0123456789" },
	{ "bytes after the end are ignored",
	  OK200 TE "\r\n1\r\nx\r\n0\r\n\r\nHTTP/1.1 500", 0, HTTPRESP_DONE, 200,
	  "x" },
	{ "until EOF", "HTTP/1.0 200 OK\r\nServer: x\r\n\r\nabc", 0,
	  HTTPRESP_DONE, 200, "abc" },
	{ "Transfer-Encoding wins over Content-Length",
	  OK200 "Content-Length: 99\r\ntransfer-encoding:  Chunked \r\n\r\n"
		"2\r\nok\r\n0\r\n\r\n",
	  0, HTTPRESP_DONE, 200, "ok" },
	{ "204 has no body", "HTTP/1.1 204 No Content\r\n\r\n", 0,
	  HTTPRESP_DONE, 204, "" },
	{ "empty Content-Length body",
	  "HTTP/1.1 404 NF\r\nContent-Length: 0"
	  "\r\n\r\n",
	  0, HTTPRESP_DONE, 404, "" },
	{ "status line without reason",
	  "HTTP/1.1 200\r\nContent-Length: 1"
	  "\r\n\r\nz",
	  0, HTTPRESP_DONE, 200, "z" },
	{ "not HTTP", "garbage\r\n\r\n", 0, HTTPRESP_ERROR, 0, NULL },
	{ "HTTP/2 status line", "HTTP/2 200 OK\r\n\r\n", 0, HTTPRESP_ERROR, 0,
	  NULL },
	{ "status not digits", "HTTP/1.1 2x0 OK\r\n\r\n", 0, HTTPRESP_ERROR, 0,
	  NULL },
	{ "status glued to reason", "HTTP/1.1 200OK\r\n\r\n", 0, HTTPRESP_ERROR,
	  0, NULL },
	{ "header without colon", OK200 "NoColon\r\n\r\n", 0, HTTPRESP_ERROR, 0,
	  NULL },
	{ "header with empty name", OK200 ": x\r\n\r\n", 0, HTTPRESP_ERROR, 0,
	  NULL },
	{ "Content-Length not a number", OK200 "Content-Length: 1a\r\n\r\n", 0,
	  HTTPRESP_ERROR, 0, NULL },
	{ "Content-Length empty", OK200 "Content-Length:\r\n\r\n", 0,
	  HTTPRESP_ERROR, 0, NULL },
	{ "Content-Length too large",
	  OK200 "Content-Length: 1234567890123456789\r\n\r\n", 0,
	  HTTPRESP_ERROR, 0, NULL },
	{ "conflicting Content-Length",
	  OK200 "Content-Length: 1\r\nContent-Length: 2\r\n\r\nab", 0,
	  HTTPRESP_ERROR, 0, NULL },
	{ "gzip transfer coding",
	  OK200 "Transfer-Encoding: gzip, chunked"
		"\r\n\r\n",
	  0, HTTPRESP_ERROR, 0, NULL },
	{ "chunk size not hex", OK200 TE "\r\nzz\r\n", 0, HTTPRESP_ERROR, 200,
	  NULL },
	{ "chunk size overflows", OK200 TE "\r\nfffffffffffffffff\r\n", 0,
	  HTTPRESP_ERROR, 200, NULL },
	{ "chunk size with junk", OK200 TE "\r\n5 x\r\nhello\r\n", 0,
	  HTTPRESP_ERROR, 200, NULL },
	{ "chunk size line without CR", OK200 TE "\r\n5\nhello\r\n", 0,
	  HTTPRESP_ERROR, 200, NULL },
	{ "chunk data longer than its size", OK200 TE "\r\n2\r\nabc\r\n", 0,
	  HTTPRESP_ERROR, 200, NULL },
	{ "EOF inside a chunk", OK200 TE "\r\n10\r\nshort", 0, HTTPRESP_ERROR,
	  200, NULL },
	{ "EOF before the last chunk", OK200 TE "\r\n1\r\nx\r\n", 0,
	  HTTPRESP_ERROR, 200, NULL },
	{ "EOF inside the head", OK200 "Content-Le", 0, HTTPRESP_ERROR, 0,
	  NULL },
	{ "EOF before anything", "", 0, HTTPRESP_ERROR, 0, NULL },
	{ "EOF before Content-Length is read",
	  OK200 "Content-Length: 10\r\n\r\nshort", 0, HTTPRESP_ERROR, 200,
	  NULL },
	{ "NUL in the head", OK200 "X: a\0b\r\n\r\n", sizeof(OK200) + 9,
	  HTTPRESP_ERROR, 0, NULL },
	{ "informational status", "HTTP/1.1 100 Continue\r\n\r\n", 0,
	  HTTPRESP_ERROR, 0, NULL },
	{ "huge head", NULL, 0, HTTPRESP_ERROR, 0, NULL },
	{ "huge chunk-size line", NULL, 0, HTTPRESP_ERROR, 200, NULL },
	{ "huge trailer", NULL, 0, HTTPRESP_ERROR, 200, NULL },
};

static int sink(void *arg, const char *p, size_t n)
{
	strbuf_add(arg, p, n);
	return 0;
}

static char *big_input(size_t i, size_t *len)
{
	struct strbuf sb = { 0 };

	switch (i) {
	case 0: /* the head never ends */
		strbuf_adds(&sb, OK200);
		while (sb.len < HTTPRESP_HEAD_MAX + 100)
			strbuf_adds(&sb, "X-Pad: aaaaaaaaaaaaaaaaaaaaaaaa\r\n");
		strbuf_adds(&sb, "\r\n");
		break;
	case 1:
		strbuf_adds(&sb, OK200 TE "\r\n1");
		for (int k = 0; k < 2000; k++)
			strbuf_addc(&sb, ' ');
		strbuf_adds(&sb, "\r\nx\r\n0\r\n\r\n");
		break;
	default:
		strbuf_adds(&sb, OK200 TE "\r\n0\r\n");
		for (int k = 0; k < 3000; k++)
			strbuf_adds(&sb, "X-T: 1\r\n");
		strbuf_adds(&sb, "\r\n");
		break;
	}
	*len = sb.len;
	return strbuf_steal(&sb);
}

/* Feeds in pieces of `step` bytes (0: all at once), then EOF if needed. */
static int run_http(const char *in, size_t len, size_t step, int *status,
		    struct strbuf *body)
{
	struct httpresp *h = httpresp_new(sink, body);
	int rc = HTTPRESP_MORE;

	for (size_t off = 0; off < len && rc == HTTPRESP_MORE;) {
		size_t n = step && step < len - off ? step : len - off;
		rc = httpresp_feed(h, in + off, n);
		off += n;
	}
	if (rc == HTTPRESP_MORE)
		rc = httpresp_eof(h);
	if (rc == HTTPRESP_ERROR)
		ck_assert_ptr_nonnull(httpresp_error(h));
	else
		ck_assert_ptr_null(httpresp_error(h));
	*status = httpresp_status(h);
	/* calls after the end change nothing */
	ck_assert_int_eq(httpresp_feed(h, "zz", 2), rc);
	httpresp_free(h);
	return rc;
}

START_TEST(test_http)
{
	static const size_t steps[] = { 0, 1, 2, 3, 7, 64 };
	const char *name = http_cases[_i].name;
	size_t len = http_cases[_i].len, nbig = 0;
	char *big = NULL;
	const char *in = http_cases[_i].in;

	if (!in) {
		for (size_t k = 0; k < (size_t)_i; k++)
			nbig += http_cases[k].in == NULL;
		in = big = big_input(nbig, &len);
	} else if (!len) {
		len = strlen(in);
	}
	for (size_t s = 0; s < ARRAY_SIZE(steps); s++) {
		struct strbuf body = { 0 };
		int status, rc = run_http(in, len, steps[s], &status, &body);

		ck_assert_msg(rc == http_cases[_i].rc, "%s (step %zu): rc %d",
			      name, steps[s], rc);
		ck_assert_msg(status == http_cases[_i].status,
			      "%s (step %zu): status %d", name, steps[s],
			      status);
		if (http_cases[_i].body)
			ck_assert_str_eq(strbuf_str(&body),
					 http_cases[_i].body);
		strbuf_fini(&body);
	}
	free(big);
}
END_TEST

/* A body callback that refuses fails the response. */
static int refuse(void *arg, const char *p, size_t n)
{
	(void)arg, (void)p, (void)n;
	return -1;
}

START_TEST(test_http_refused_body)
{
	static const char in[] = OK200 "Content-Length: 3\r\n\r\nabc";
	struct httpresp *h = httpresp_new(refuse, NULL);

	ck_assert_int_eq(httpresp_feed(h, in, sizeof(in) - 1), HTTPRESP_ERROR);
	ck_assert_int_eq(httpresp_eof(h), HTTPRESP_ERROR);
	httpresp_free(h);
}
END_TEST

/*
 * Random bytes, and valid responses with random bytes changed, in random
 * pieces: whatever the verdict, the reader must stay inside its buffers
 * (ASan) and the body it passes on stays bounded by the input.
 */
START_TEST(test_http_random)
{
	static const char *const seeds[] = {
		OK200 TE
		"\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nT: 1\r\n\r\n",
		OK200 "Content-Length: 5\r\n\r\nhello",
		"HTTP/1.0 200 OK\r\n\r\nabc",
	};
	char buf[512];
	unsigned seed = 12345;

	for (int iter = 0; iter < 4000; iter++) {
		struct strbuf body = { 0 };
		size_t len, step = (size_t)(rand_r(&seed) % 9);
		int status, rc;

		if (iter % 4 == 0) {
			len = (size_t)(rand_r(&seed) % sizeof(buf));
			for (size_t i = 0; i < len; i++)
				buf[i] = (char)rand_r(&seed);
		} else {
			const char *s = seeds[iter % ARRAY_SIZE(seeds)];
			len = strlen(s);
			memcpy(buf, s, len);
			for (int k = 0; k < 1 + iter % 3; k++)
				buf[rand_r(&seed) % len] = (char)rand_r(&seed);
			len -= (size_t)(rand_r(&seed) % 4);
		}
		rc = run_http(buf, len, step, &status, &body);
		ck_assert(rc == HTTPRESP_DONE || rc == HTTPRESP_ERROR);
		ck_assert_uint_le(body.len, len);
		strbuf_fini(&body);
	}
}
END_TEST

/* ---- the cache against a fake dockerd ---------------------------------------- */

static char dir[64], sock[128];

static void dir_setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/egress-unit-docker-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/docker.sock", dir);
}

static void dir_teardown(void)
{
	unlink(sock);
	rmdir(dir);
}

static struct dockerimg *new_cache(unsigned negative_ttl_ms,
				   unsigned io_timeout_ms, size_t max)
{
	struct dockerimg_opts o = { .socket_path = sock,
				    .max_entries = max,
				    .backoff_min_ms = 10,
				    .backoff_max_ms = 40,
				    .io_timeout_ms =
					    io_timeout_ms ? io_timeout_ms : 300,
				    .stable_ms = 50,
				    .negative_ttl_ms = negative_ttl_ms,
				    .quiet = true };
	struct dockerimg *d = dockerimg_new_opts(&o);

	ck_assert_msg(d != NULL, "dockerimg_new: %s", strerror(errno));
	return d;
}

static struct dockerimg_stats stats(struct dockerimg *d)
{
	struct dockerimg_stats s;

	dockerimg_stats(d, &s);
	return s;
}

/* Re-evaluates cond every 5 ms for at most 2 s. */
#define WAIT_FOR(cond)                                      \
	do {                                                \
		for (int w_ = 0; w_ < 400 && !(cond); w_++) \
			usleep(5000);                       \
	} while (0)

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* get(id) until it answers (at most 2 s); NULL if it never does. */
static char *get_wait(struct dockerimg *d, const char *id)
{
	char *img = NULL;

	WAIT_FOR((img = dockerimg_get(d, id)) != NULL);
	return img;
}

static void assert_image(struct dockerimg *d, const char *id, const char *want)
{
	char *img = dockerimg_get(d, id);

	if (want) {
		ck_assert_msg(img != NULL, "%.8s: no image", id);
		ck_assert_str_eq(img, want);
	} else {
		ck_assert_msg(img == NULL, "%.8s: image %s", id, img);
	}
	free(img);
}

static struct fakedocker *start_fake(void)
{
	struct fakedocker *f = fakedocker_start(sock);

	ck_assert_ptr_nonnull(f);
	return f;
}

START_TEST(test_list_fills)
{
	struct fakedocker *f = start_fake();
	struct dockerimg *d;

	fakedocker_add(f, ID_A, "busybox:latest", true);
	fakedocker_add(f, ID_B, "registry.test/tools:1", true);
	fakedocker_add(f, ID_C, "hidden:1", false);
	d = new_cache(0, 0, 0);
	WAIT_FOR(stats(d).connected);
	ck_assert(stats(d).connected);
	assert_image(d, ID_A, "busybox:latest");
	assert_image(d, ID_B, "registry.test/tools:1");
	ck_assert_uint_eq(stats(d).hits, 2);
	ck_assert_uint_eq(stats(d).entries, 2);
	ck_assert_uint_eq(stats(d).lookups, 0);
	ck_assert_uint_eq(stats(d).connects, 1);
	ck_assert_int_eq(fakedocker_count(f, FAKEDOCKER_REQ_LIST), 1);
	ck_assert_int_eq(fakedocker_count(f, FAKEDOCKER_REQ_EVENTS), 1);
	ck_assert_int_eq(fakedocker_count(f, FAKEDOCKER_REQ_LOOKUP), 0);
	/* not ids: no answer, no lookup, not counted */
	ck_assert_ptr_null(dockerimg_get(d, "abc"));
	ck_assert_ptr_null(dockerimg_get(d, ID_A "0"));
	ck_assert_ptr_null(
		dockerimg_get(d, "0123456789ABCDEF" HEX16 HEX16 HEX16));
	ck_assert_uint_eq(stats(d).misses, 0);
	dockerimg_free(d);
	fakedocker_stop(f);
}
END_TEST

#define EV_CREATE(id, image)                                                   \
	"{\"status\":\"create\",\"id\":\"" id "\",\"from\":\"" image "\","     \
	"\"Type\":\"container\",\"Action\":\"create\",\"Actor\":{\"ID\":\"" id \
	"\",\"Attributes\":{\"image\":\"" image "\",\"name\":\"x\"}},"         \
	"\"scope\":\"local\",\"time\":1700000000}"
#define EV_DESTROY(id)                                                           \
	"{\"Type\":\"container\",\"Action\":\"destroy\",\"Actor\":{\"ID\":\"" id \
	"\",\"Attributes\":{\"image\":\"x\"}}}"

START_TEST(test_events)
{
	static const char split[] = EV_CREATE(ID_F, "split:1") "\n";
	struct fakedocker *f = start_fake();
	struct dockerimg *d;
	struct strbuf sb = { 0 };
	size_t half = sizeof(split) / 2;

	fakedocker_add(f, ID_A, "busybox:latest", true);
	d = new_cache(0, 0, 0);
	WAIT_FOR(stats(d).connected);
	ck_assert(fakedocker_wait_stream(f, 1000));

	ck_assert_int_eq(fakedocker_event(f, EV_CREATE(ID_D, "alpine:3")), 0);
	WAIT_FOR(stats(d).events == 1);
	assert_image(d, ID_D, "alpine:3");

	/* the fields of older dockerd only */
	ck_assert_int_eq(
		fakedocker_event(f, "{\"status\":\"create\",\"id\":\"" ID_E
				    "\",\"from\":\"legacy:1\"}"),
		0);
	WAIT_FOR(stats(d).events == 2);
	assert_image(d, ID_E, "legacy:1");

	/* one event in two chunks, then two events in one chunk */
	strbuf_addf(&sb, "%zx\r\n", half);
	strbuf_add(&sb, split, half);
	strbuf_addf(&sb, "\r\n%zx\r\n", sizeof(split) - 1 - half);
	strbuf_adds(&sb, split + half);
	strbuf_adds(&sb, "\r\n");
	ck_assert_int_eq(fakedocker_raw(f, sb.buf, sb.len), 0);
	strbuf_reset(&sb);
	ck_assert_int_eq(
		fakedocker_event(f,
				 EV_CREATE(ID_G, "g:1") "\n" EV_DESTROY(ID_A)),
		0);
	WAIT_FOR(stats(d).events == 5);
	assert_image(d, ID_F, "split:1");
	assert_image(d, ID_G, "g:1");
	assert_image(d, ID_A, NULL);

	/* malformed lines are counted and skipped; other types ignored */
	ck_assert_int_eq(fakedocker_event(f, "{not json"), 0);
	ck_assert_int_eq(fakedocker_event(f, "[1,2]"), 0);
	ck_assert_int_eq(fakedocker_event(f, EV_CREATE("abc", "bad-id:1")), 0);
	ck_assert_int_eq(fakedocker_event(f, "{\"Type\":\"container\","
					     "\"Action\":\"create\",\"Actor\":"
					     "{\"ID\":\"" ID_H "\"}}"),
			 0);
	ck_assert_int_eq(fakedocker_event(f, EV_CREATE(ID_C, "ctl\\u0001:1")),
			 0);
	ck_assert_int_eq(fakedocker_event(f,
					  "{\"Type\":\"network\","
					  "\"Action\":\"create\",\"Actor\":"
					  "{\"ID\":\"" ID_B "\",\"Attributes\":"
					  "{\"image\":\"net\"}}}"),
			 0);
	ck_assert_int_eq(fakedocker_event(f, "   \r"), 0);
	ck_assert_int_eq(fakedocker_event(f, EV_DESTROY(ID_D)), 0);
	WAIT_FOR(stats(d).events == 6);
	ck_assert_uint_eq(stats(d).events, 6);
	ck_assert_uint_eq(stats(d).errors, 5);
	assert_image(d, ID_D, NULL);
	ck_assert(stats(d).connected);
	ck_assert_uint_eq(stats(d).connects, 1);
	/* the network event named no container */
	assert_image(d, ID_B, NULL);
	strbuf_fini(&sb);
	dockerimg_free(d);
	fakedocker_stop(f);
}
END_TEST

START_TEST(test_miss_lookup)
{
	struct fakedocker *f = start_fake();
	struct dockerimg *d;
	json_t *filter;
	char *text, *img;
	int asked;

	fakedocker_add(f, ID_G, "late:2", false);
	d = new_cache(300, 0, 0);
	WAIT_FOR(stats(d).connected);
	assert_image(d, ID_G, NULL);
	ck_assert_uint_eq(stats(d).misses, 1);
	WAIT_FOR(fakedocker_count(f, FAKEDOCKER_REQ_LOOKUP) == 1);
	text = fakedocker_last_filter(f);
	filter = json_loads(text, 0, NULL);
	ck_assert_msg(filter != NULL, "filter %s", text);
	ck_assert_uint_eq(json_object_size(filter), 1);
	ck_assert_uint_eq(json_array_size(json_object_get(filter, "id")), 1);
	ck_assert_str_eq(json_string_value(json_array_get(
				 json_object_get(filter, "id"), 0)),
			 ID_G);
	json_decref(filter);
	free(text);
	img = get_wait(d, ID_G);
	ck_assert_ptr_nonnull(img);
	ck_assert_str_eq(img, "late:2");
	free(img);
	ck_assert_uint_eq(stats(d).lookups, 1);
	ck_assert_uint_ge(stats(d).hits, 1);

	/* unknown to dockerd: asked once, then remembered for the TTL */
	assert_image(d, ID_H, NULL);
	WAIT_FOR(stats(d).lookups == 2);
	for (int i = 0; i < 20; i++)
		assert_image(d, ID_H, NULL);
	ck_assert_int_eq(fakedocker_count(f, FAKEDOCKER_REQ_LOOKUP), 2);
	asked = 2;
	usleep(350 * 1000);
	assert_image(d, ID_H, NULL);
	WAIT_FOR(fakedocker_count(f, FAKEDOCKER_REQ_LOOKUP) == asked + 1);
	ck_assert_int_eq(fakedocker_count(f, FAKEDOCKER_REQ_LOOKUP), asked + 1);
	/* a create event overrides the negative answer */
	ck_assert_int_eq(fakedocker_event(f, EV_CREATE(ID_H, "now:1")), 0);
	WAIT_FOR(stats(d).events == 1);
	assert_image(d, ID_H, "now:1");
	ck_assert_uint_eq(stats(d).errors, 0);
	dockerimg_free(d);
	fakedocker_stop(f);
}
END_TEST

START_TEST(test_absent_then_appears)
{
	struct dockerimg *d = new_cache(0, 0, 0);
	struct fakedocker *f;
	uint64_t t0 = mono_ms(), took;
	char *img;

	for (int i = 0; i < 2000; i++)
		ck_assert_ptr_null(dockerimg_get(d, i % 2 ? ID_A : ID_H));
	took = mono_ms() - t0;
	ck_assert_msg(took < 200, "2000 gets took %llu ms",
		      (unsigned long long)took);
	WAIT_FOR(stats(d).reconnects >= 2);
	ck_assert_uint_ge(stats(d).reconnects, 2);
	ck_assert_uint_ge(stats(d).errors, 2);
	ck_assert(!stats(d).connected);
	ck_assert_uint_eq(stats(d).connects, 0);

	f = start_fake();
	fakedocker_add(f, ID_A, "busybox:latest", true);
	WAIT_FOR(stats(d).connected);
	ck_assert(stats(d).connected);
	img = get_wait(d, ID_A);
	ck_assert_ptr_nonnull(img);
	ck_assert_str_eq(img, "busybox:latest");
	free(img);
	/* ID_A came with the list; only ID_H, queued meanwhile, is asked */
	WAIT_FOR(stats(d).lookups == 1);
	ck_assert_int_eq(fakedocker_count(f, FAKEDOCKER_REQ_LOOKUP), 1);
	img = fakedocker_last_filter(f);
	ck_assert_ptr_nonnull(strstr(img, ID_H));
	free(img);
	dockerimg_free(d);
	fakedocker_stop(f);
}
END_TEST

START_TEST(test_restart)
{
	struct fakedocker *f = start_fake();
	struct dockerimg *d;
	char *img;

	fakedocker_add(f, ID_A, "busybox:latest", true);
	d = new_cache(0, 0, 0);
	WAIT_FOR(stats(d).connected);
	assert_image(d, ID_A, "busybox:latest");
	fakedocker_stop(f);
	WAIT_FOR(!stats(d).connected);
	ck_assert(!stats(d).connected);
	/* still answers from the cache while dockerd is away */
	assert_image(d, ID_A, "busybox:latest");

	f = start_fake();
	fakedocker_add(f, ID_B, "tools:1", true);
	WAIT_FOR(stats(d).connects == 2);
	ck_assert_uint_eq(stats(d).connects, 2);
	img = get_wait(d, ID_B);
	ck_assert_ptr_nonnull(img);
	ck_assert_str_eq(img, "tools:1");
	free(img);
	/* the new list no longer names ID_A */
	assert_image(d, ID_A, NULL);
	dockerimg_free(d);
	fakedocker_stop(f);
}
END_TEST

static const enum fakedocker_mode bad_modes[] = {
	FAKEDOCKER_GARBAGE,   FAKEDOCKER_HUGE_HEADERS, FAKEDOCKER_BAD_JSON,
	FAKEDOCKER_BAD_CHUNK, FAKEDOCKER_STATUS_500,   FAKEDOCKER_SILENT,
	FAKEDOCKER_CLOSE,
};

/* A dockerd that misbehaves costs errors, never the cache: once it
 * behaves, the cache fills. */
START_TEST(test_hostile)
{
	struct fakedocker *f = start_fake();
	struct dockerimg *d;
	char *img;

	fakedocker_add(f, ID_A, "busybox:latest", true);
	fakedocker_set_mode(f, bad_modes[_i]);
	d = new_cache(0, 150, 0);
	WAIT_FOR(stats(d).errors >= 2);
	ck_assert_uint_ge(stats(d).errors, 2);
	ck_assert_ptr_null(dockerimg_get(d, ID_B));
	if (bad_modes[_i] != FAKEDOCKER_BAD_CHUNK)
		ck_assert_uint_eq(stats(d).connects, 0);
	fakedocker_set_mode(f, FAKEDOCKER_NORMAL);
	img = get_wait(d, ID_A);
	ck_assert_msg(img != NULL, "mode %d: no recovery", (int)bad_modes[_i]);
	ck_assert_str_eq(img, "busybox:latest");
	free(img);
	dockerimg_free(d);
	fakedocker_stop(f);
}
END_TEST

/* An endless line on the event stream ends the session; the next one
 * works. */
START_TEST(test_long_event_line)
{
	struct fakedocker *f = start_fake();
	struct dockerimg *d;
	char *chunk = util_xmalloc(65536 + 16);
	int n;

	fakedocker_add(f, ID_A, "busybox:latest", true);
	d = new_cache(0, 0, 0);
	WAIT_FOR(stats(d).connected);
	ck_assert(fakedocker_wait_stream(f, 1000));
	n = snprintf(chunk, 16, "%x\r\n", 65536);
	memset(chunk + n, 'x', 65536);
	memcpy(chunk + n + 65536, "\r\n", 2);
	for (int i = 0; i < 5; i++)
		fakedocker_raw(f, chunk, (size_t)n + 65536 + 2);
	WAIT_FOR(stats(d).connects == 2 && stats(d).connected);
	ck_assert_uint_eq(stats(d).connects, 2);
	ck_assert_uint_ge(stats(d).errors, 1);
	assert_image(d, ID_A, "busybox:latest");
	free(chunk);
	dockerimg_free(d);
	fakedocker_stop(f);
}
END_TEST

/* Stopping does not wait for dockerd's answer (5 s timeout here). */
START_TEST(test_free_prompt)
{
	struct fakedocker *f = start_fake();
	struct dockerimg *d;
	uint64_t t0;

	fakedocker_set_mode(f, FAKEDOCKER_SILENT);
	d = new_cache(0, 5000, 0);
	WAIT_FOR(fakedocker_count(f, FAKEDOCKER_REQ_EVENTS) == 1);
	ck_assert_int_eq(fakedocker_count(f, FAKEDOCKER_REQ_EVENTS), 1);
	t0 = mono_ms();
	dockerimg_free(d);
	ck_assert_uint_lt(mono_ms() - t0, 500);
	fakedocker_stop(f);
}
END_TEST

/* The bound holds: the least recently used go first. */
START_TEST(test_bound)
{
	static const char *const ids[] = { ID_A, ID_B, ID_C, ID_D, ID_E, ID_F };
	struct fakedocker *f = start_fake();
	struct dockerimg *d;
	char *img;

	for (size_t i = 0; i < ARRAY_SIZE(ids); i++)
		fakedocker_add(f, ids[i], "img:1", true);
	d = new_cache(0, 0, 4);
	WAIT_FOR(stats(d).connected);
	ck_assert_uint_eq(stats(d).entries, 4);
	assert_image(d, ID_F, "img:1");
	assert_image(d, ID_C, "img:1");
	/* evicted by the list; asking queues it, which evicts the least
	 * recently used: D */
	assert_image(d, ID_A, NULL);
	img = get_wait(d, ID_A);
	ck_assert_ptr_nonnull(img);
	ck_assert_str_eq(img, "img:1");
	free(img);
	ck_assert_uint_eq(stats(d).lookups, 1);
	ck_assert_uint_eq(stats(d).entries, 4);
	assert_image(d, ID_D, NULL);
	dockerimg_free(d);
	fakedocker_stop(f);
}
END_TEST

START_TEST(test_bad_socket_path)
{
	char longpath[200];

	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	errno = 0;
	ck_assert_ptr_null(dockerimg_new(longpath));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(dockerimg_new(""));
}
END_TEST

Suite *dockerimg_suite(void)
{
	Suite *s = suite_create("dockerimg");
	TCase *tc = tcase_create("ids");

	tcase_add_loop_test(tc, test_container_id, 0, ARRAY_SIZE(cid_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("http");
	tcase_add_loop_test(tc, test_http, 0, ARRAY_SIZE(http_cases));
	tcase_add_test(tc, test_http_refused_body);
	tcase_add_test(tc, test_http_random);
	suite_add_tcase(s, tc);

	tc = tcase_create("cache");
	tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_list_fills);
	tcase_add_test(tc, test_events);
	tcase_add_test(tc, test_miss_lookup);
	tcase_add_test(tc, test_absent_then_appears);
	tcase_add_test(tc, test_restart);
	tcase_add_loop_test(tc, test_hostile, 0, ARRAY_SIZE(bad_modes));
	tcase_add_test(tc, test_long_event_line);
	tcase_add_test(tc, test_free_prompt);
	tcase_add_test(tc, test_bound);
	tcase_add_test(tc, test_bad_socket_path);
	suite_add_tcase(s, tc);
	return s;
}
