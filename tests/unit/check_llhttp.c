/*
 * check_llhttp.c - the llhttp parser compiled from Debian's node-llhttp
 * sources parses requests (the proxy's HTTP judging builds on it).
 */
#include <check.h>
#include <llhttp.h>
#include <string.h>

#include "suites.h"

struct seen {
	char url[256];
	size_t url_len;
	int complete;
};

static int on_url(llhttp_t *p, const char *at, size_t len)
{
	struct seen *s = p->data;

	if (s->url_len + len >= sizeof(s->url))
		return -1;
	memcpy(s->url + s->url_len, at, len);
	s->url_len += len;
	s->url[s->url_len] = '\0';
	return 0;
}

static int on_complete(llhttp_t *p)
{
	((struct seen *)p->data)->complete++;
	return 0;
}

static llhttp_errno_t parse(const char *req, struct seen *s, llhttp_t *p,
			    llhttp_settings_t *st)
{
	llhttp_settings_init(st);
	st->on_url = on_url;
	st->on_message_complete = on_complete;
	llhttp_init(p, HTTP_REQUEST, st);
	memset(s, 0, sizeof(*s));
	p->data = s;
	return llhttp_execute(p, req, strlen(req));
}

START_TEST(test_request_parses)
{
	llhttp_t p;
	llhttp_settings_t st;
	struct seen s;
	const char *req = "POST /v1/x?y=1 HTTP/1.1\r\nHost: a.test\r\n"
			  "Content-Length: 2\r\n\r\nhi"
			  "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";

	ck_assert_int_eq(parse(req, &s, &p, &st), HPE_OK);
	ck_assert_int_eq(s.complete, 2);
	ck_assert_str_eq(s.url, "/v1/x?y=1/"); /* both URLs, concatenated */
	ck_assert_int_eq(llhttp_get_method(&p), HTTP_GET);
}
END_TEST

START_TEST(test_garbage_is_an_error)
{
	llhttp_t p;
	llhttp_settings_t st;
	struct seen s;

	ck_assert_int_ne(parse("\x16\x03\x01\x02\x00\x01", &s, &p, &st),
			 HPE_OK);
	ck_assert_int_eq(s.complete, 0);
}
END_TEST

Suite *llhttp_suite(void)
{
	Suite *s = suite_create("llhttp");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, test_request_parses);
	tcase_add_test(tc, test_garbage_is_an_error);
	suite_add_tcase(s, tc);
	return s;
}
