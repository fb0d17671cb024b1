/*
 * check_proxy.c - the proxy's pure helpers: first-bytes classification,
 * Host checking, the URL a request is judged with, the status sniffing of
 * an Upgrade answer, and the llhttp pause points the request judging
 * relies on to split a stream into heads and bodies.
 */
#include <check.h>
#include <llhttp.h>
#include <string.h>

#include "proxy_int.h"
#include "suites.h"

/* ---- classification --------------------------------------------------- */

static const struct cls_case {
	const char *in;
	size_t len; /* 0: strlen */
	bool final;
	enum proxy_cls want;
} cls_cases[] = {
	{ "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, false, PROXY_CLS_HTTP },
	{ "POST /x HTTP/1.0\n", 0, false, PROXY_CLS_HTTP },
	{ "\x16\x03\x01\x02\x00", 5, false, PROXY_CLS_TLS },
	{ "\x16", 1, false, PROXY_CLS_TLS },
	{ "SSH-2.0-OpenSSH_9.2\r\n", 0, false, PROXY_CLS_OTHER },
	{ "ping-tcp\n", 0, false, PROXY_CLS_OTHER }, /* no space in line 1 */
	{ "GE", 0, false, PROXY_CLS_NEED_MORE },
	{ "GE", 0, true, PROXY_CLS_OTHER },
	{ "G", 0, false, PROXY_CLS_NEED_MORE },
	{ "GET /long-line-without-end", 0, false, PROXY_CLS_NEED_MORE },
	{ "GET /long-line-without-end", 0, true, PROXY_CLS_OTHER },
	{ "12 GET\r\n", 0, false, PROXY_CLS_OTHER }, /* not letters */
	{ "G3T / HTTP/1.1\r\n", 0, false, PROXY_CLS_OTHER },
	{ "\x00\x01\x02", 3, false, PROXY_CLS_OTHER },
	{ "HELO mail.test\r\n", 0, false, PROXY_CLS_HTTP }, /* as the ref. */
	{ "QUIT\r\n", 0, false, PROXY_CLS_OTHER },
	{ "", 0, true, PROXY_CLS_OTHER },
	{ "", 0, false, PROXY_CLS_NEED_MORE },
};

START_TEST(test_classify)
{
	const struct cls_case *c = &cls_cases[_i];
	size_t len = c->len ? c->len : strlen(c->in);

	ck_assert_msg(proxy_classify((const uint8_t *)c->in, len, c->final) ==
			      c->want,
		      "case %d: got %s, want %s", _i,
		      proxy_cls_str(proxy_classify((const uint8_t *)c->in, len,
						   c->final)),
		      proxy_cls_str(c->want));
}
END_TEST

START_TEST(test_classify_line_cap)
{
	static uint8_t buf[PROXY_LINE_MAX + 10];

	memset(buf, 'A', sizeof(buf));
	/* A "line" longer than the cap is not an HTTP request line. */
	ck_assert_int_eq(proxy_classify(buf, sizeof(buf), false),
			 PROXY_CLS_OTHER);
	ck_assert_int_eq(proxy_classify(buf, PROXY_LINE_MAX - 1, false),
			 PROXY_CLS_NEED_MORE);
}
END_TEST

/* ---- Host values ------------------------------------------------------ */

static const struct host_case {
	const char *h;
	bool ok;
} host_cases[] = {
	{ "example.test", true },
	{ "Example.TEST:8080", true },
	{ "a_b-c.d", true },
	{ "198.51.100.10", true },
	{ "198.51.100.10:443", true },
	{ "[::1]", true },
	{ "[2001:db8::1]:8443", true },
	{ "host:", true }, /* empty port: no port */
	{ "", false },
	{ ":80", false },
	{ "a/b", false },
	{ "a@b", false },
	{ "a b", false },
	{ "a?b", false },
	{ "a#b", false },
	{ "a%2fb", false },
	{ "a\tb", false },
	{ "host:99999", false },
	{ "host:8x", false },
	{ "host:1:2", false },
	{ "[::1", false },
	{ "[::1]x", false },
	{ "[zz::1]", false },
	{ "[]", false },
};

START_TEST(test_host_valid)
{
	const struct host_case *c = &host_cases[_i];

	ck_assert_msg(proxy_host_valid(c->h, strlen(c->h)) == c->ok,
		      "Host [%s]: want %s", c->h, c->ok ? "valid" : "invalid");
}
END_TEST

/* ---- URLs -------------------------------------------------------------- */

static const struct url_case {
	bool https;
	const char *host_hdr;
	const char *dst_ip;
	uint16_t dst_port;
	const char *target;
	bool connect;
	const char *want_url; /* NULL: refused */
	const char *want_host;
} url_cases[] = {
	{ false, "example.test", "198.51.100.10", 80, "/x?y=1", false,
	  "http://example.test/x?y=1", "example.test" },
	{ true, "Example.Test", "198.51.100.10", 443, "/a/b", false,
	  "https://Example.Test/a/b", "Example.Test" },
	/* the default port is omitted, another kept, from the header */
	{ true, "example.test:443", "198.51.100.10", 443, "/", false,
	  "https://example.test/", "example.test" },
	{ false, "example.test:80", "198.51.100.10", 80, "/", false,
	  "http://example.test/", "example.test" },
	{ false, "example.test:8080", "198.51.100.10", 8080, "/p", false,
	  "http://example.test:8080/p", "example.test" },
	{ true, "example.test:80", "198.51.100.10", 443, "/", false,
	  "https://example.test:80/", "example.test" },
	/* the header's port counts, not the destination's */
	{ false, "example.test", "198.51.100.10", 8080, "/", false,
	  "http://example.test/", "example.test" },
	/* no Host: the destination address, its port unless default */
	{ false, NULL, "198.51.100.10", 80, "/x", false,
	  "http://198.51.100.10/x", "198.51.100.10" },
	{ true, NULL, "198.51.100.14", 8443, "/", false,
	  "https://198.51.100.14:8443/", "198.51.100.14" },
	/* absolute form: its authority wins, the scheme stays ours */
	{ false, "ignored.test", "198.51.100.10", 80, "http://abs.test:81/q?x",
	  false, "http://abs.test:81/q?x", "abs.test" },
	{ false, NULL, "198.51.100.10", 80, "https://abs.test/", false,
	  "http://abs.test/", "abs.test" },
	{ false, NULL, "198.51.100.10", 80, "http://abs.test", false,
	  "http://abs.test", "abs.test" },
	{ false, NULL, "198.51.100.10", 80, "http://abs.test?q", false,
	  "http://abs.test/?q", "abs.test" },
	/* IPv6 literal */
	{ true, "[2001:db8::1]:443", "198.51.100.10", 443, "/", false,
	  "https://[2001:db8::1]/", "2001:db8::1" },
	/* CONNECT: authority form */
	{ false, "x", "198.51.100.10", 80, "tunnel.test:443", true,
	  "http://tunnel.test:443", "tunnel.test" },
	/* OPTIONS * */
	{ false, "example.test", "198.51.100.10", 80, "*", false,
	  "http://example.test", "example.test" },
	/* refused: a Host that would move the URL's host elsewhere */
	{ false, "allowed.test@evil.test", "198.51.100.10", 80, "/", false,
	  NULL, NULL },
	{ false, "allowed.test/evil", "198.51.100.10", 80, "/", false, NULL,
	  NULL },
	{ false, "a b", "198.51.100.10", 80, "/", false, NULL, NULL },
	{ false, "example.test", "198.51.100.10", 80, "relative", false, NULL,
	  NULL },
	{ false, "example.test", "198.51.100.10", 80, "ftp://x/", false, NULL,
	  NULL },
};

START_TEST(test_build_url)
{
	const struct url_case *c = &url_cases[_i];
	char url[256], host[64];
	int r = proxy_build_url(url, sizeof(url), host, sizeof(host), c->https,
				c->host_hdr, c->dst_ip, c->dst_port, c->target,
				c->connect);

	if (!c->want_url) {
		ck_assert_msg(r < 0, "case %d: want refusal, got %s", _i, url);
		return;
	}
	ck_assert_msg(r == 0, "case %d: refused", _i);
	ck_assert_str_eq(url, c->want_url);
	ck_assert_str_eq(host, c->want_host);
}
END_TEST

START_TEST(test_build_url_too_long)
{
	char url[32], host[64];

	ck_assert_int_lt(proxy_build_url(url, sizeof(url), host, sizeof(host),
					 false, "example.test", "1.2.3.4", 80,
					 "/a-path-that-does-not-fit-in-32",
					 false),
			 0);
}
END_TEST

/* ---- Upgrade answers -------------------------------------------------- */

START_TEST(test_status_is)
{
	const uint8_t *s101 = (const uint8_t *)"HTTP/1.1 101 Switching";
	const uint8_t *s200 = (const uint8_t *)"HTTP/1.0 200 OK\r\n";

	ck_assert_int_eq(proxy_status_is(s101, 22, 101, 101), 1);
	ck_assert_int_eq(proxy_status_is(s101, 22, 200, 299), 0);
	ck_assert_int_eq(proxy_status_is(s200, 17, 200, 299), 1);
	ck_assert_int_eq(proxy_status_is(s101, 5, 101, 101), -1);
	ck_assert_int_eq(proxy_status_is((const uint8_t *)"SSH-2", 5, 101, 101),
			 0);
	ck_assert_int_eq(proxy_status_is((const uint8_t *)"HTTP/1.1 1x1 ", 13,
					 101, 101),
			 0);
}
END_TEST

/* ---- llhttp pause points ---------------------------------------------- */

static int pause_cb(llhttp_t *p)
{
	(void)p;
	return HPE_PAUSED;
}

/*
 * The request judging feeds a stream and expects: a pause right after each
 * head's blank line (nothing of the body consumed), a pause right after each
 * message, and llhttp_get_error_pos() at those points.
 */
START_TEST(test_llhttp_pauses)
{
	const char *s = "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
			"\r\nabc"
			"GET /b HTTP/1.1\r\nHost: a\r\n\r\n";
	size_t head1 = strlen("POST /a HTTP/1.1\r\nHost: a\r\n"
			      "Content-Length: 3\r\n\r\n");
	size_t len = strlen(s), off = 0;
	llhttp_settings_t st;
	llhttp_t p;
	size_t stops[8];
	int n = 0;

	llhttp_settings_init(&st);
	st.on_headers_complete = pause_cb;
	st.on_message_complete = pause_cb;
	llhttp_init(&p, HTTP_REQUEST, &st);
	while (n < 8) {
		/* An empty chunk runs what is owed without a byte. */
		llhttp_errno_t e = llhttp_execute(&p, s + off, len - off);

		if (e == HPE_OK)
			break;
		ck_assert_int_eq(e, HPE_PAUSED);
		off = (size_t)(llhttp_get_error_pos(&p) - s);
		stops[n++] = off;
		llhttp_resume(&p);
	}
	ck_assert_int_eq(n, 4);
	ck_assert_uint_eq(stops[0], head1); /* end of head 1 */
	ck_assert_uint_eq(stops[1], head1 + 3); /* end of body 1 */
	ck_assert_uint_eq(stops[2], len); /* end of head 2 */
	ck_assert_uint_eq(stops[3], len); /* message 2, no byte */
}
END_TEST

/* A bodiless Upgrade request: the message ends on an empty chunk, then
 * llhttp says upgrade. */
START_TEST(test_llhttp_upgrade)
{
	const char *s = "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
			"Upgrade: websocket\r\n\r\n";
	size_t len = strlen(s);
	llhttp_settings_t st;
	llhttp_t p;

	llhttp_settings_init(&st);
	st.on_headers_complete = pause_cb;
	st.on_message_complete = pause_cb;
	llhttp_init(&p, HTTP_REQUEST, &st);
	ck_assert_int_eq(llhttp_execute(&p, s, len), HPE_PAUSED);
	ck_assert_int_eq(llhttp_get_error_pos(&p) - s, (long)len);
	llhttp_resume(&p);
	ck_assert_int_eq(llhttp_execute(&p, s + len, 0), HPE_PAUSED);
	ck_assert_int_eq(llhttp_get_upgrade(&p), 1);
}
END_TEST

Suite *proxy_suite(void)
{
	Suite *s = suite_create("proxy");
	TCase *tc = tcase_create("helpers");

	tcase_add_loop_test(tc, test_classify, 0, (int)ARRAY_SIZE(cls_cases));
	tcase_add_test(tc, test_classify_line_cap);
	tcase_add_loop_test(tc, test_host_valid, 0,
			    (int)ARRAY_SIZE(host_cases));
	tcase_add_loop_test(tc, test_build_url, 0, (int)ARRAY_SIZE(url_cases));
	tcase_add_test(tc, test_build_url_too_long);
	tcase_add_test(tc, test_status_is);
	tcase_add_test(tc, test_llhttp_pauses);
	tcase_add_test(tc, test_llhttp_upgrade);
	suite_add_tcase(s, tc);
	return s;
}
