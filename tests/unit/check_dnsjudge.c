/*
 * check_dnsjudge.c - what the UDP and TCP DNS paths share: which client
 * messages are judged, refused or dropped; which resolver replies count as
 * the answer to a query (and what they feed the cache); the dual-check
 * verdicts; and the `dns` / `dns_response` log lines, field by field.
 */
#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dnsjudge.h"
#include "suites.h"
#include "util.h"

/* www.Example.TEST A IN, id 0x1234, RD. */
static const uint8_t q_a[] = { 0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00,
			       0x00, 0x00, 0x00, 0x00, 0x00, 3,	   'w',
			       'w',  'w',  7,	 'E',  'x',  'a',  'm',
			       'p',  'l',  'e',	 4,    'T',  'E',  'S',
			       'T',  0,	   0x00, 0x01, 0x00, 0x01 };

static uint8_t *copy(const void *p, size_t n)
{
	uint8_t *c = util_xmalloc(n);

	memcpy(c, p, n);
	return c;
}

static enum dnsj_form form_of(const uint8_t *m, size_t n, struct dnsj_query *q)
{
	uint8_t *c = copy(m, n);
	enum dnsj_form f;

	memset(q, 0, sizeof(*q));
	f = dnsj_parse_query(q, c, n);
	free(c);
	return f;
}

START_TEST(test_forms)
{
	struct dnsj_query q;
	uint8_t m[sizeof(q_a)];

	ck_assert_int_eq(form_of(q_a, sizeof(q_a), &q), DNSJ_FORM_OK);
	ck_assert_str_eq(q.msg.q.name, "www.Example.TEST");
	ck_assert_ptr_null(q.error);

	/* A response is never a query. */
	memcpy(m, q_a, sizeof(m));
	m[2] |= 0x80;
	ck_assert_int_eq(form_of(m, sizeof(m), &q), DNSJ_FORM_DROP);
	/* Garbage and truncation. */
	ck_assert_int_eq(form_of((const uint8_t *)"hello", 5, &q),
			 DNSJ_FORM_DROP);
	ck_assert_int_eq(form_of(q_a, sizeof(q_a) - 1, &q), DNSJ_FORM_DROP);
	/* Opcode STATUS (2). */
	memcpy(m, q_a, sizeof(m));
	m[2] = (uint8_t)((m[2] & 0x87) | (2 << 3));
	ck_assert_int_eq(form_of(m, sizeof(m), &q), DNSJ_FORM_REFUSE);
	ck_assert_uint_eq(q.reply_rcode, DNSMSG_RCODE_NOTIMP);
	ck_assert_str_eq(q.error, "dns_opcode_not_query");
	/* No question: the header alone. */
	memcpy(m, q_a, DNSMSG_HDRLEN);
	m[5] = 0;
	ck_assert_int_eq(form_of(m, DNSMSG_HDRLEN, &q), DNSJ_FORM_REFUSE);
	ck_assert_uint_eq(q.reply_rcode, DNSMSG_RCODE_FORMERR);
	ck_assert_str_eq(q.error, "dns_no_question");
}
END_TEST

START_TEST(test_two_questions_refused)
{
	/* allowed.test A, then evil.test A: only the first would be
	 * judged, so neither goes anywhere. */
	static const uint8_t two[] = { 0,   1,	 1,   0,   0,	2,   0,	  0,
				       0,   0,	 0,   0,   7,	'a', 'l', 'l',
				       'o', 'w', 'e', 'd', 4,	't', 'e', 's',
				       't', 0,	 0,   1,   0,	1,   4,	  'e',
				       'v', 'i', 'l', 4,   't', 'e', 's', 't',
				       0,   0,	 1,   0,   1 };
	struct dnsj_query q;

	ck_assert_int_eq(form_of(two, sizeof(two), &q), DNSJ_FORM_REFUSE);
	ck_assert_uint_eq(q.reply_rcode, DNSMSG_RCODE_REFUSED);
	ck_assert_str_eq(q.error, "dns_several_questions");
}
END_TEST

static size_t answer(const uint8_t *query, size_t qlen, uint32_t ttl,
		     size_t naddrs, uint8_t *out, size_t cap)
{
	struct in_addr a[2];
	size_t n;

	inet_pton(AF_INET, "198.51.100.10", &a[0]);
	inet_pton(AF_INET, "198.51.100.11", &a[1]);
	ck_assert_int_eq(dnsmsg_build_answer(query, qlen, 0, a, naddrs, ttl,
					     out, cap, &n),
			 0);
	return n;
}

static int addrs_of(const struct dnsj_query *q, const uint8_t *r, size_t n,
		    size_t *nips, long *ttl, char ips[][INET6_ADDRSTRLEN])
{
	uint8_t *c = copy(r, n);
	int rc = dnsj_response_addrs(q, c, n, ips, nips, ttl);

	free(c);
	return rc;
}

START_TEST(test_response_matching)
{
	char ips[DNSJ_ANSWERS_MAX][INET6_ADDRSTRLEN];
	struct dnsj_query q;
	uint8_t r[512], m[sizeof(q_a)];
	size_t n, nips;
	long ttl;

	ck_assert_int_eq(form_of(q_a, sizeof(q_a), &q), DNSJ_FORM_OK);
	n = answer(q_a, sizeof(q_a), 120, 2, r, sizeof(r));
	ck_assert_int_eq(addrs_of(&q, r, n, &nips, &ttl, ips), 0);
	ck_assert_uint_eq(nips, 2);
	ck_assert_str_eq(ips[0], "198.51.100.10");
	ck_assert_str_eq(ips[1], "198.51.100.11");
	ck_assert_int_eq(ttl, 120);

	/* TTL capped at 300; no answers: 300. */
	n = answer(q_a, sizeof(q_a), 86400, 1, r, sizeof(r));
	ck_assert_int_eq(addrs_of(&q, r, n, &nips, &ttl, ips), 0);
	ck_assert_int_eq(ttl, DNSJ_TTL_CAP);
	n = answer(q_a, sizeof(q_a), 5, 0, r, sizeof(r));
	ck_assert_int_eq(addrs_of(&q, r, n, &nips, &ttl, ips), 0);
	ck_assert_uint_eq(nips, 0);
	ck_assert_int_eq(ttl, DNSJ_TTL_CAP);

	/* The same name in other case still answers it (0x20 mixing). */
	memcpy(m, q_a, sizeof(m));
	m[13] = 'W';
	n = answer(m, sizeof(m), 60, 1, r, sizeof(r));
	ck_assert_int_eq(addrs_of(&q, r, n, &nips, &ttl, ips), 0);

	/* Another name, another type, or not a response: not the answer. */
	memcpy(m, q_a, sizeof(m));
	m[14] = 'x';
	n = answer(m, sizeof(m), 60, 1, r, sizeof(r));
	ck_assert_int_eq(addrs_of(&q, r, n, &nips, &ttl, ips), -1);
	memcpy(m, q_a, sizeof(m));
	m[sizeof(m) - 3] = 28; /* AAAA */
	n = answer(m, sizeof(m), 60, 0, r, sizeof(r));
	ck_assert_int_eq(addrs_of(&q, r, n, &nips, &ttl, ips), -1);
	n = answer(q_a, sizeof(q_a), 60, 1, r, sizeof(r));
	r[2] &= 0x7f;
	ck_assert_int_eq(addrs_of(&q, r, n, &nips, &ttl, ips), -1);
	/* Truncated. */
	n = answer(q_a, sizeof(q_a), 60, 2, r, sizeof(r));
	ck_assert_int_eq(addrs_of(&q, r, n - 1, &nips, &ttl, ips), -1);

	/* An error reply without the question, and without data. */
	memcpy(r, q_a, DNSMSG_HDRLEN);
	r[2] = 0x81;
	r[3] = 0x82; /* SERVFAIL */
	r[5] = 0;
	ck_assert_int_eq(addrs_of(&q, r, DNSMSG_HDRLEN, &nips, &ttl, ips), 0);
	ck_assert_uint_eq(nips, 0);
}
END_TEST

/* ---- judging and logging -------------------------------------------------- */

static const char policy_text[] = "198.51.100.53:53/udp\n"
				  "allowed.test\n"
				  "10.0.0.1:53\n";

struct env {
	struct dnsj_env e;
	char path[64];
};

static void env_open(struct env *v, bool audit)
{
	struct jlog_opts jo = { 0 };
	policy_t *p = NULL;
	int fd;

	ck_assert_int_eq(policy_parse(policy_text, strlen(policy_text), NULL,
				      &p, NULL),
			 0);
	memset(v, 0, sizeof(*v));
	v->e.policy = polref_new(p);
	v->e.cache = dnscache_new(16);
	v->e.audit = audit;
	snprintf(v->path, sizeof(v->path), "/tmp/check-dnsjudge-XXXXXX");
	fd = mkstemp(v->path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	jo.path = v->path;
	v->e.log = jlog_open(&jo);
	ck_assert_ptr_nonnull(v->e.log);
}

/* Closes the log and returns its contents (caller frees). */
static char *env_close(struct env *v)
{
	char *text;

	jlog_close(v->e.log);
	text = util_read_file(v->path, NULL);
	ck_assert_ptr_nonnull(text);
	unlink(v->path);
	dnscache_free(v->e.cache);
	polref_free(v->e.policy);
	return text;
}

static bool judge(struct env *v, const uint8_t *msg, size_t n, const char *dst,
		  uint16_t port, struct dnsj_query *q)
{
	struct in_addr a;

	ck_assert_int_eq(form_of(msg, n, q), DNSJ_FORM_OK);
	inet_pton(AF_INET, dst, &a);
	dnsj_set_dst(q, &a, port);
	q->src_port = 40000;
	return dnsj_judge(&v->e, q, 100);
}

/* allowed.test A IN. */
static const uint8_t q_allowed[] = { 0xab, 0xcd, 0x01, 0,   0, 1,   0,	 0,
				     0,	   0,	 0,    0,   7, 'a', 'l', 'l',
				     'o',  'w',	 'e',  'd', 4, 't', 'e', 's',
				     't',  0,	 0,    1,   0, 1 };

/* Strips the leading "ts" field so lines compare exactly. */
static const char *after_ts(const char *line)
{
	const char *p = strstr(line, ",\"type\"");

	ck_assert_ptr_nonnull(p);
	return p + 1;
}

/* Splits text at newlines in place; returns the number of lines. */
static int split_lines(char *text, char **lines, int max)
{
	int n = 0;

	for (char *p = text; *p && n < max; n++) {
		char *nl = strchr(p, '\n');

		lines[n] = p;
		if (!nl)
			return n + 1;
		*nl = '\0';
		p = nl + 1;
	}
	return n;
}

START_TEST(test_judge_and_log)
{
	struct env v;
	struct dnsj_query q;
	uint8_t r[512];
	size_t n;
	char *text, *lines[8], *name;
	int nl;

	env_open(&v, false);
	/* Resolver allowed, name allowed. */
	ck_assert(judge(&v, q_allowed, sizeof(q_allowed), "198.51.100.53", 53,
			&q));
	ck_assert_int_eq(q.d.rule, 1);
	n = answer(q_allowed, sizeof(q_allowed), 90, 2, r, sizeof(r));
	ck_assert_int_eq(dnsj_answer(&v.e, &q, r, n, 100), 0);
	name = dnscache_lookup(v.e.cache, "198.51.100.11", 150);
	ck_assert_str_eq(name, "allowed.test");
	free(name);
	dnsj_query_clear(&q);
	/* Name allowed, resolver not (a tcp rule does not count). */
	ck_assert(!judge(&v, q_allowed, sizeof(q_allowed), "10.0.0.1", 53, &q));
	dnsj_query_clear(&q);
	/* Resolver allowed, name not. */
	ck_assert(!judge(&v, q_a, sizeof(q_a), "198.51.100.53", 53, &q));
	dnsj_query_clear(&q);
	/* Refused before judging: logged with its reason. */
	ck_assert_int_eq(form_of(q_allowed, DNSMSG_HDRLEN, &q), DNSJ_FORM_DROP);
	memset(&q, 0, sizeof(q));
	dnsj_set_dst(&q, NULL, 0);
	q.error = "direct_to_proxy";
	dnsj_log_refused(&v.e, &q);
	text = env_close(&v);

	nl = split_lines(text, lines, 8);
	ck_assert_int_eq(nl, 5);
	ck_assert_str_eq(after_ts(lines[0]),
			 "\"type\":\"dns\",\"dst_ip\":\"198.51.100.53\","
			 "\"dst_port\":53,\"name\":\"allowed.test\","
			 "\"policy\":\"allow\",\"src_port\":40000}");
	ck_assert_str_eq(after_ts(lines[1]),
			 "\"type\":\"dns_response\",\"answers\":"
			 "[\"198.51.100.10\",\"198.51.100.11\"],\"ttl\":90,"
			 "\"dst_ip\":\"198.51.100.53\",\"dst_port\":53,"
			 "\"name\":\"allowed.test\",\"policy\":\"allow\","
			 "\"src_port\":40000}");
	ck_assert_ptr_nonnull(strstr(lines[2], "\"dst_ip\":\"10.0.0.1\""));
	ck_assert_ptr_nonnull(strstr(lines[2], "\"policy\":\"deny\""));
	ck_assert_ptr_nonnull(
		strstr(lines[3], "\"name\":\"www.Example.TEST\""));
	ck_assert_ptr_nonnull(strstr(lines[3], "\"policy\":\"deny\""));
	ck_assert_str_eq(after_ts(lines[4]),
			 "\"type\":\"dns\",\"dst_ip\":\"unknown\","
			 "\"dst_port\":0,\"name\":null,\"policy\":\"deny\","
			 "\"error\":\"direct_to_proxy\",\"src_port\":0}");
	free(text);
}
END_TEST

START_TEST(test_audit_allows)
{
	struct env v;
	struct dnsj_query q;
	char *text;

	env_open(&v, true);
	ck_assert(judge(&v, q_a, sizeof(q_a), "203.0.113.53", 53, &q));
	ck_assert_int_eq(q.d.rule, -1);
	dnsj_query_clear(&q);
	text = env_close(&v);
	ck_assert_ptr_nonnull(strstr(text, "\"policy\":\"deny\""));
	free(text);
}
END_TEST

Suite *dnsjudge_suite(void)
{
	Suite *s = suite_create("dnsjudge");
	TCase *tc = tcase_create("dnsjudge");

	tcase_add_test(tc, test_forms);
	tcase_add_test(tc, test_two_questions_refused);
	tcase_add_test(tc, test_response_matching);
	tcase_add_test(tc, test_judge_and_log);
	tcase_add_test(tc, test_audit_allows);
	suite_add_tcase(s, tc);
	return s;
}
