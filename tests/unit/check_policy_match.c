/*
 * check_policy_match.c - the matching helpers (glob, hostname, path) and
 * policy_match() over events (reference 1.7 - 1.12, 1.17), table-driven,
 * plus a randomized cross-check of the indexed lookup against a naive
 * linear scan over the flattened rules.
 *
 * Every table row is one test case (tcase_add_loop_test); a row's name or
 * its inputs appear in the failure message.  Policies are parsed without a
 * preset, so the first user rule has index 0.
 */
#include <check.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "suites.h"

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- policy_glob: Python fnmatch.fnmatchcase ------------------------------ */

struct glob_case {
	const char *pat;
	const char *str;
	bool want;
};

/* Every row was checked against CPython 3.11 fnmatch.fnmatchcase. */
static const struct glob_case glob_cases[] = {
	{ "", "", true },
	{ "", "a", false },
	{ "*", "", true },
	{ "*", "abc", true },
	{ "*", "a/b/c", true },
	{ "a*", "a", true },
	{ "a*", "ba", false },
	{ "*a", "ba", true },
	{ "*a", "ab", false },
	{ "a*c", "abbc", true },
	{ "a*c", "abcd", false },
	{ "a*b*c", "aXbYc", true },
	{ "a*b*c", "acb", false },
	{ "**", "x", true },
	{ "?", "a", true },
	{ "?", "", false },
	{ "?", "ab", false },
	{ "??", "ab", true },
	{ "a?c", "abc", true },
	{ "a?c", "ac", false },
	{ "?", "/", true },
	{ "/usr/bin/*", "/usr/bin/x/y", true },
	{ "/usr/*/curl", "/usr/local/bin/curl", true },
	{ "abc", "ABC", false },
	{ "ABC", "abc", false },
	{ "*.TXT", "a.txt", false },
	{ "abc", "abcd", false },
	{ "bc", "abc", false },
	{ "[abc]", "b", true },
	{ "[abc]", "d", false },
	{ "[abc]", "", false },
	{ "[a-c]", "b", true },
	{ "[a-c]", "d", false },
	{ "[!a-c]", "d", true },
	{ "[!a-c]", "b", false },
	{ "[!abc]", "", false },
	{ "[a-cx-z]", "y", true },
	{ "[a-cx-z]", "m", false },
	{ "[0-9][0-9]", "42", true },
	{ "[0-9]", "a", false },
	{ "[z-a]", "m", false },
	{ "[z-a]", "z", false },
	{ "[!z-a]", "m", true },
	{ "[a-]", "-", true },
	{ "[a-]", "a", true },
	{ "[a-]", "b", false },
	{ "[-a]", "-", true },
	{ "[-a]", "b", false },
	{ "[]]", "]", true },
	{ "[]a]", "a", true },
	{ "[]a]", "b", false },
	{ "[!]]", "]", false },
	{ "[!]]", "a", true },
	{ "[^a]", "^", true },
	{ "[^a]", "b", false },
	{ "[[]", "[", true },
	{ "[", "[", true },
	{ "[a", "[a", true },
	{ "[a", "a", false },
	{ "a[", "a[", true },
	{ "[!", "[!", true },
	{ "[]", "[]", true },
	{ "[!]", "[!]", true },
	{ "*[", "xx[", true },
	{ "[a-c", "[a-c", true },
	{ "[*", "[xyz", true },
	{ "[*", "xyz", false },
	{ "x[ab]*", "xbzz", true },
	{ "[*]", "*", true },
	{ "[*]", "a", false },
	{ "[?]", "?", true },
	{ "[?]", "a", false },
	{ "\\*", "\\abc", true },
	{ "\\*", "*", false },
	{ "\\?", "?", false },
	{ "\\?", "\\x", true },
	{ "[\\]", "\\", true },
	{ "a.c", "abc", false },
	{ "a+b", "a+b", true },
	{ "(a)", "(a)", true },
	{ "a|b", "a", false },
	{ "$", "$", true },
	{ "^a", "^a", true },
	{ "a{1}", "a{1}", true },
	{ "*", "a\nb", true },
	{ "?", "\n", true },
	{ "a*", "a\n", true },
	{ "?", "é", true },
	{ "??", "é", false },
	{ "?", "日", true },
	{ "a?c", "a日c", true },
	{ "[é]", "é", true },
	{ "[!é]", "é", false },
	{ "[!é]", "e", true },
	{ "[α-ω]", "β", true },
	{ "[α-ω]", "a", false },
	{ "*é", "café", true },
	{ "caf?", "café", true },
	{ "é*", "éa", true },
	{ "?", "😀", true },
	{ "??", "😀", false },
	{ "*a*a*a", "aaa", true },
	{ "*a*a*a", "aa", false },
	{ "a*a", "a", false },
	{ "*ab", "aab", true },
	{ "*?", "", false },
	{ "*?", "a", true },
	{ "?*?", "a", false },
	{ "*[0-9]", "abc1", true },
	{ "*[0-9]", "1abc", false },
	{ "*[ab]c", "xacbc", true },
	{ "[a-c-e]", "-", true },
	{ "[a-c-e]", "d", false },
	{ "[a-c-e]", "e", true },
	{ "[a-c-e]", "b", true },
	{ "*x*x*x*x*y", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", false },
	{ "/system.slice/*", "/system.slice/docker-1.scope", true },
	{ "[!]", "x", false },
	{ "[!]x]", "a", true },
	{ "[!]x]", "x", false },
	{ "[a-a]", "a", true },
	{ "[%-/]", ".", true },
	{ "[%-/]", "0", false },
};

START_TEST(test_glob)
{
	const struct glob_case *c = &glob_cases[_i];

	ck_assert_msg(policy_glob(c->pat, c->str) == c->want,
		      "policy_glob(\"%s\", \"%s\") should be %s", c->pat,
		      c->str, c->want ? "true" : "false");
}
END_TEST

/* ---- policy_host_match (1.7) ---------------------------------------------- */

struct host_case {
	const char *pat;
	bool wild;
	const char *host;
	bool want;
};

/* Rows checked against a direct transcription of 1.7's algorithm. */
static const struct host_case host_cases[] = {
	{ "github.com", false, "github.com", true },
	{ "github.com", false, "GitHub.COM", true },
	{ "GITHUB.com", false, "github.com", true },
	{ "github.com", false, "api.github.com", false },
	{ "github.com", false, "github.com.", false },
	{ "github.com", false, "ithub.com", false },
	{ "github.com", false, "github.co", false },
	{ "github.com", false, "", false },
	{ "github.com", false, "xgithub.com", false },
	{ "github.com", false, "github.comx", false },
	{ "*.example.com", true, "a.example.com", true },
	{ "*.example.com", true, "a.b.example.com", true },
	{ "*.example.com", true, "example.com", false },
	{ "*.example.com", true, ".example.com", true },
	{ "*.example.com", true, "A.Example.COM", true },
	{ "*.example.com", true, "a.example.com.", false },
	{ "*.example.com", true, "a.example.org", false },
	{ "*.example.com", true, "aexample.com", false },
	{ "*.example.com", true, "a.xexample.com", false },
	{ "*.example.com", true, "a.b.c.d.example.com", true },
	{ "*.example.com", true, "example.com.evil.org", false },
	{ "*.example.com", true, "a..example.com", true },
	{ "*.com", true, "a.com", true },
	{ "*.com", true, "a.b.com", true },
	{ "*.com", true, "com", false },
	{ "*.com", true, ".com", true },
	{ "*.com", true, "a.org", false },
	{ "*.com", true, "a.comx", false },
	{ "*.com", true, "a.com.", false },
	{ "*.com", true, "A.COM", true },
	{ "*.*.example.com", true, "a.b.example.com", true },
	{ "*.*.example.com", true, "a.example.com", false },
	{ "*.*.example.com", true, "a.b.c.example.com", true },
	{ "*.*.example.com", true, "example.com", false },
	{ "*.*.example.com", true, "..example.com", true },
	{ "*.derp*.example.com", true, "x.derp1.example.com", true },
	{ "*.derp*.example.com", true, "derp1.example.com", false },
	{ "*.derp*.example.com", true, "x.derp.example.com", true },
	{ "*.derp*.example.com", true, "x.y.derp1.example.com", true },
	{ "*.derp*.example.com", true, "x.der.example.com", false },
	{ "*.derp*.example.com", true, "x.aderp.example.com", false },
	{ "*.derp*.example.com", true, "x.DERP9.example.com", true },
	{ "*.derp*.example.com", true, "x.derp1.example.org", false },
	{ "*.derp*.example.com", true, "x.derp1.b.example.com", false },
	{ "derp*.example.com", true, "derp.example.com", true },
	{ "derp*.example.com", true, "derp1.example.com", true },
	{ "derp*.example.com", true, "x.derp1.example.com", false },
	{ "derp*.example.com", true, "DERP1.Example.COM", true },
	{ "derp*.example.com", true, "aderp.example.com", false },
	{ "derp*.example.com", true, "derp1.example.org", false },
	{ "derp*.example.com", true, "derp1.example.com.", false },
	{ "derp*.example.com", true, "derp1.sub.example.com", false },
	{ "**.example.com", true, "a.example.com", true },
	{ "**.example.com", true, "a.b.example.com", false },
	{ "**.example.com", true, "example.com", false },
	{ "**.example.com", true, ".example.com", true },
	{ "*-prod.example.com", true, "api-prod.example.com", true },
	{ "*-prod.example.com", true, "-prod.example.com", true },
	{ "*-prod.example.com", true, "api-prod2.example.com", false },
	{ "*-prod.example.com", true, "x.api-prod.example.com", false },
	{ "ex*mple.com", true, "example.com", true },
	{ "ex*mple.com", true, "exmple.com", true },
	{ "ex*mple.com", true, "exaaample.com", true },
	{ "ex*mple.com", true, "sub.example.com", false },
	{ "ex*mple.com", true, "examplx.com", false },
	{ "a*b*c.example.com", true, "abc.example.com", true },
	{ "a*b*c.example.com", true, "axxbyyc.example.com", true },
	{ "a*b*c.example.com", true, "acb.example.com", false },
	{ "a*b*c.example.com", true, "abcc.example.com", true },
	{ "-*.example.com", true, "-a.example.com", true },
	{ "-*.example.com", true, "a.example.com", false },
	{ "hosted-compute-watchdog-prod-*.githubapp.com", true,
	  "hosted-compute-watchdog-prod-eastus.githubapp.com", true },
	{ "hosted-compute-watchdog-prod-*.githubapp.com", true,
	  "x.hosted-compute-watchdog-prod-1.githubapp.com", false },
	{ "a*.example.com", true, "a.b.example.com", false },
	{ "*.a*.example.com", true, "x.a.b.example.com", false },
	{ "*.api.github.com", true, "x.api.github.com", true },
	{ "*.api.github.com", true, "api.github.com", false },
	{ "*.api.github.com", true, "x.api.github.com.", false },
	{ "*.api.github.com", true, "x.API.GitHub.com", true },
	{ "*.api.github.com", true, "x.apix.github.com", false },
	{ "*.api.github.com", true, "x.api.github.org", false },
	{ "*.EXAMPLE.com", true, "a.example.com", true },
	{ "DERP*.example.com", true, "derpy.example.com", true },
	{ "*.example.com", true, "", false },
	{ "derp*.example.com", true, "", false },
};

START_TEST(test_host)
{
	const struct host_case *c = &host_cases[_i];

	ck_assert_msg(policy_host_match(c->pat, c->wild, c->host) == c->want,
		      "policy_host_match(\"%s\", %s, \"%s\") should be %s",
		      c->pat, c->wild ? "wildcard" : "exact", c->host,
		      c->want ? "true" : "false");
}
END_TEST

/* ---- policy_path_match (1.9) ---------------------------------------------- */

struct path_case {
	const char *pat;
	const char *path;
	bool want;
};

static const struct path_case path_cases[] = {
	{ "/api/*", "/api", true },
	{ "/api/*", "/api/", true },
	{ "/api/*", "/api/x", true },
	{ "/api/*", "/api/x/y", true },
	{ "/api/*", "/apix", false },
	{ "/api/*", "/", false },
	{ "/api/*", "/ap", false },
	{ "/api/*", "/API/x", false },
	{ "/api/*", "/other/api/x", false },
	{ "/*", "/", true },
	{ "/*", "/x", true },
	{ "/*", "/a/b/c", true },
	{ "/*", "/a/b/", true },
	{ "/a/*/", "/a", true },
	{ "/a/*/", "/a/b", true },
	{ "/a/*/", "/a/b/c", true },
	{ "/a/*/", "/b", false },
	{ "/api/**", "/api/x", true },
	{ "/api/**", "/api/x/y", false },
	{ "/api/**", "/api", false },
	{ "/api/**", "/api/x/", true },
	{ "/v*.zip", "/V1.zip", false },
	{ "/v*.zip", "/v1.zip", true },
	{ "/v*.zip", "/v.zip", true },
	{ "/v*.zip", "/v1/x.zip", false },
	{ "/v*.zip", "/v1.zipx", false },
	{ "/a%40b", "/a@b", false },
	{ "/a%40b", "/a%40b", true },
	{ "/", "/", true },
	{ "/", "/a", false },
	{ "/a", "/", false },
	{ "/a", "/a/", true },
	{ "/a/", "/a", true },
	{ "/a///", "/a", true },
	{ "/a", "/a///", true },
	{ "/a//b", "/a/b", false },
	{ "/a//b", "/a//b", true },
	{ "/a/*/b", "/a//b", true },
	{ "/a/*/b", "/a/x/b", true },
	{ "/a/*/b", "/a/x/y/b", false },
	{ "/a/*/b", "/a/x/c", false },
	{ "/a/b", "/A/b", false },
	{ "/a/b", "/a/b/c", false },
	{ "/a/b/c", "/a/b", false },
	{ "/a/b*", "/a/bcd", true },
	{ "/a/b*", "/a/b", true },
	{ "/a/b*", "/a/b/c", false },
	{ "/a/*b", "/a/xb", true },
	{ "/a/*b", "/a/xbc", false },
	{ "/a/*/*", "/a/x", true },
	{ "/a/*/*", "/a", false },
	{ "/a/*/*", "/a/x/y/z", true },
	{ "/*/releases", "/x/releases", true },
	{ "/*/releases", "/releases", false },
	{ "/*/releases", "//releases", true },
	{ "/a/**/c", "/a/b/c", true },
	{ "/a*", "/a/b", false },
	{ "/a*", "/abc", true },
	{ "/a/b*c*d", "/a/bxxcyyd", true },
	{ "/*/*", "/a", true },
	{ "/*/*", "/", true },
	{ "/v1/repos/*/releases", "/v1/repos/x/releases", true },
	{ "/v1/repos/*/releases", "/v1/repos/x/y/releases", false },
	{ "/a/*", "/a//", true },
	{ "/a/*", "/a//x", true },
	{ "/x.tar.gz", "/x.tar.gz", true },
	{ "/x.tar.gz", "/xxtarxgz", false },
	{ "/a~b_c.d-e+f", "/a~b_c.d-e+f", true },
	{ "/A", "/a", false },
	{ "/*x", "/x", true },
	{ "/*x", "/", false },
};

START_TEST(test_path)
{
	const struct path_case *c = &path_cases[_i];

	ck_assert_msg(policy_path_match(c->pat, c->path) == c->want,
		      "policy_path_match(\"%s\", \"%s\") should be %s", c->pat,
		      c->path, c->want ? "true" : "false");
}
END_TEST

/* ---- policy_match() over events ------------------------------------------- */

/*
 * Event builders for the tables.  Extra designated initializers (PROC ...)
 * may follow the fixed arguments.
 */
#define EV_HTTPS(h, ip, port, ...)                                    \
	{                                                             \
		.type = POLICY_EV_HTTPS, .host = (h), .dst_ip = (ip), \
		.dst_port = (port), __VA_ARGS__                       \
	}
#define EV_HTTP(u, m, ip, port, ...)                               \
	{                                                          \
		.type = POLICY_EV_HTTP, .url = (u), .method = (m), \
		.dst_ip = (ip), .dst_port = (port), __VA_ARGS__    \
	}
#define EV_TCP(ip, port, ...)                                              \
	{                                                                  \
		.type = POLICY_EV_TCP, .dst_ip = (ip), .dst_port = (port), \
		__VA_ARGS__                                                \
	}
#define EV_UDP(ip, port, ...)                                              \
	{                                                                  \
		.type = POLICY_EV_UDP, .dst_ip = (ip), .dst_port = (port), \
		__VA_ARGS__                                                \
	}
#define EV_DNS(n, ip, port, ...)                                    \
	{                                                           \
		.type = POLICY_EV_DNS, .name = (n), .dst_ip = (ip), \
		.dst_port = (port), __VA_ARGS__                     \
	}
#define PROC(...) .proc = { __VA_ARGS__ }
#define ARGV(...)                                                  \
	.cmdline = (const char *const[]){ __VA_ARGS__ },           \
	.ncmdline = sizeof((const char *const[]){ __VA_ARGS__ }) / \
		    sizeof(const char *)

/* Shorthands: an https event for SNI h to 1.2.3.4:443, a GET request. */
#define SNI(h, ...) EV_HTTPS(h, "1.2.3.4", 443, __VA_ARGS__)
#define GET(u, port, ...) EV_HTTP(u, "GET", "1.2.3.4", port, __VA_ARGS__)
#define REQ(m, u, ...) EV_HTTP(u, m, "1.2.3.4", 443, __VA_ARGS__)

struct match_case {
	const char *name;
	const char *policy;
	struct policy_event ev;
	int want; /* first matching rule index, -1 for none */
};

static const struct match_case match_cases[] = {
	/* ip: exact string equality (1.8) */
	{ "ip exact", "1.2.3.4", EV_TCP("1.2.3.4", 443), 0 },
	{ "ip other address", "1.2.3.4", EV_TCP("1.2.3.5", 443), -1 },
	{ "ip is not a prefix match", "1.2.3.4", EV_TCP("1.2.3.40", 443), -1 },
	{ "ip rule ignores the SNI", "1.2.3.4",
	  EV_HTTPS("evil.com", "1.2.3.4", 443), 0 },
	{ "ip rule default port 443", "1.2.3.4", EV_TCP("1.2.3.4", 80), -1 },
	{ "ip rule port list", "1.2.3.4:22|80", EV_TCP("1.2.3.4", 80), 0 },
	{ "ip rule vs unknown dst", "1.2.3.4", EV_TCP("unknown", 443), -1 },
	{ "ip rule for a request", "1.2.3.4:80",
	  EV_HTTP("http://evil.com/", "GET", "1.2.3.4", 80), 0 },
	/* cidr: masked comparison (1.8) */
	{ "cidr /8 inside", "10.0.0.0/8", EV_TCP("10.255.1.2", 443), 0 },
	{ "cidr /8 outside", "10.0.0.0/8", EV_TCP("11.0.0.1", 443), -1 },
	{ "cidr host bits are masked", "10.1.2.3/8", EV_TCP("10.9.9.9", 443),
	  0 },
	{ "cidr host bits, outside", "10.1.2.3/8", EV_TCP("9.1.2.3", 443), -1 },
	{ "cidr /0 matches all", "0.0.0.0/0", EV_TCP("203.0.113.9", 443), 0 },
	{ "cidr /0 matches broadcast", "0.0.0.0/0",
	  EV_TCP("255.255.255.255", 443), 0 },
	{ "cidr /0 with host bits", "1.2.3.4/0", EV_TCP("9.9.9.9", 443), 0 },
	{ "cidr /32 same", "1.2.3.4/32", EV_TCP("1.2.3.4", 443), 0 },
	{ "cidr /32 neighbour", "1.2.3.4/32", EV_TCP("1.2.3.5", 443), -1 },
	{ "cidr /25 upper half", "192.168.1.128/25",
	  EV_TCP("192.168.1.200", 443), 0 },
	{ "cidr /25 lower half", "192.168.1.128/25",
	  EV_TCP("192.168.1.100", 443), -1 },
	{ "cidr /1 high", "128.0.0.0/1", EV_TCP("200.1.1.1", 443), 0 },
	{ "cidr /1 low", "128.0.0.0/1", EV_TCP("127.255.255.255", 443), -1 },
	{ "cidr /12 last", "172.16.0.0/12", EV_TCP("172.31.255.255", 443), 0 },
	{ "cidr /12 next", "172.16.0.0/12", EV_TCP("172.32.0.0", 443), -1 },
	{ "cidr /31 pair", "10.0.0.5/31", EV_TCP("10.0.0.4", 443), 0 },
	{ "cidr /31 outside", "10.0.0.5/31", EV_TCP("10.0.0.6", 443), -1 },
	{ "cidr ignores the SNI", "1.2.3.0/24",
	  EV_HTTPS("evil.com", "1.2.3.4", 443), 0 },
	{ "cidr with port", "10.0.0.0/8:22", EV_TCP("10.0.0.1", 22), 0 },
	{ "cidr with port mismatch", "10.0.0.0/8:22", EV_TCP("10.0.0.1", 443),
	  -1 },

	/* ports (1.4) and protocol classes (1.5) */
	{ "default port 443", "github.com", SNI("github.com"), 0 },
	{ "default port excludes 80", "github.com",
	  EV_HTTPS("github.com", "1.2.3.4", 80), -1 },
	{ "port list first", "github.com:80|443",
	  EV_HTTPS("github.com", "1.2.3.4", 80), 0 },
	{ "port list second", "github.com:80|443", SNI("github.com"), 0 },
	{ "port list miss", "github.com:80|443",
	  EV_HTTPS("github.com", "1.2.3.4", 8080), -1 },
	{ "port any", "github.com:*", EV_HTTPS("github.com", "1.2.3.4", 12345),
	  0 },
	{ "port * first means any", "github.com:*|80",
	  EV_HTTPS("github.com", "1.2.3.4", 9), 0 },
	{ "port * later ignored (miss)", "github.com:80|*", SNI("github.com"),
	  -1 },
	{ "port * later ignored (hit)", "github.com:80|*",
	  EV_HTTPS("github.com", "1.2.3.4", 80), 0 },
	{ "port leading zeros", "github.com:080",
	  EV_HTTPS("github.com", "1.2.3.4", 80), 0 },
	{ "port 0", "github.com:0", EV_HTTPS("github.com", "1.2.3.4", 0), 0 },
	{ "port 99999 is not 99999 mod 65536", "github.com:99999",
	  EV_HTTPS("github.com", "1.2.3.4", 34463), -1 },
	{ "header port", "[:8443]\ngithub.com",
	  EV_HTTPS("github.com", "1.2.3.4", 8443), 0 },
	{ "header port replaces 443", "[:8443]\ngithub.com", SNI("github.com"),
	  -1 },
	{ "rule port overrides header", "[:8443]\ngithub.com:443",
	  SNI("github.com"), 0 },
	{ "url-base header port leaks into host rules",
	  "[http://example.com]\nfoo.com", EV_HTTPS("foo.com", "1.2.3.4", 80),
	  0 },
	{ "url-base header port replaces 443", "[http://example.com]\nfoo.com",
	  SNI("foo.com"), -1 },
	{ "header reset restores 443", "[:8443]\n[]\ngithub.com",
	  SNI("github.com"), 0 },
	{ "udp rule, udp event", "8.8.8.8:53/udp", EV_UDP("8.8.8.8", 53), 0 },
	{ "udp rule, tcp event", "8.8.8.8:53/udp", EV_TCP("8.8.8.8", 53), -1 },
	{ "tcp rule, udp event", "8.8.8.8:53", EV_UDP("8.8.8.8", 53), -1 },
	{ "explicit tcp, tcp event", "8.8.8.8:53/tcp", EV_TCP("8.8.8.8", 53),
	  0 },
	{ "tcp rule, http event", "8.8.8.8:53",
	  EV_HTTP("http://8.8.8.8:53/", "GET", "8.8.8.8", 53), 0 },
	{ "tcp rule, https event", "8.8.8.8:53",
	  EV_HTTPS("dns.google", "8.8.8.8", 53), 0 },
	{ "udp rule, https event", "github.com:443/udp", SNI("github.com"),
	  -1 },
	{ "udp rule, http event", "1.2.3.4:80/udp",
	  EV_HTTP("http://x.com/", "GET", "1.2.3.4", 80), -1 },
	{ "protocol inherited from header", "[:53/udp]\n8.8.8.8:5353",
	  EV_UDP("8.8.8.8", 5353), 0 },
	{ "protocol inherited from header, tcp event",
	  "[:53/udp]\n8.8.8.8:5353", EV_TCP("8.8.8.8", 5353), -1 },
	{ "header without proto keeps tcp", "[:53]\n8.8.8.8",
	  EV_TCP("8.8.8.8", 53), 0 },
	{ "protocol reset by []", "[:53/udp]\n[]\n8.8.8.8:53",
	  EV_UDP("8.8.8.8", 53), -1 },
	{ "udp cidr any port", "10.0.0.0/8:*/udp", EV_UDP("10.1.1.1", 9999),
	  0 },

	/* hostnames through events (1.7, 1.14, 2.1) */
	{ "sni case-insensitive", "github.com", SNI("GitHub.Com"), 0 },
	{ "rule case-insensitive", "GitHub.COM", SNI("github.com"), 0 },
	{ "exact does not match subdomain", "github.com", SNI("api.github.com"),
	  -1 },
	{ "sni trailing dot", "github.com", SNI("github.com."), -1 },
	{ "wildcard subdomain", "*.github.com", SNI("api.github.com"), 0 },
	{ "wildcard not apex", "*.github.com", SNI("github.com"), -1 },
	{ "wildcard deep", "*.github.com", SNI("a.b.github.com"), 0 },
	{ "*.com", "*.com", SNI("a.com"), 0 },
	{ "** single level", "**.example.com", SNI("a.b.example.com"), -1 },
	{ "label wildcard", "derp*.example.com", SNI("derp7.example.com"), 0 },
	{ "label wildcard depth", "derp*.example.com",
	  SNI("x.derp7.example.com"), -1 },
	{ "sub+label wildcard", "*.derp*.example.com",
	  SNI("x.derp7.example.com"), 0 },
	{ "hostname from name", "github.com:22",
	  EV_TCP("1.2.3.4", 22, .name = "github.com"), 0 },
	{ "host wins over name", "github.com",
	  SNI("evil.com", .name = "github.com"), -1 },
	{ "empty host falls back to name", "github.com",
	  SNI("", .name = "github.com"), 0 },
	{ "no hostname, host rule", "github.com", EV_TCP("1.2.3.4", 443), -1 },
	{ "hostname from url", "github.com:80", GET("http://github.com/x", 80),
	  0 },
	{ "hostname from url, port and case", "github.com:80",
	  GET("http://GitHub.com:80/x", 80), 0 },
	{ "hostname from url with userinfo", "github.com:80",
	  GET("http://user:pw@github.com/", 80), 0 },
	{ "host rule, https request", "github.com",
	  GET("https://github.com/any/path", 443), 0 },
	{ "host rule, no implicit port 80", "github.com",
	  GET("http://github.com/", 80), -1 },
	{ "wildcard rule, request", "*.github.com",
	  GET("https://api.github.com/x", 443), 0 },

	/* URL rules (1.9) */
	{ "url match", "https://github.com/owner/*",
	  GET("https://github.com/owner/repo", 443), 0 },
	{ "url scheme http vs https rule", "https://github.com/owner/*",
	  GET("http://github.com/owner/repo", 443), -1 },
	{ "url scheme https vs http rule", "http://example.com/",
	  GET("https://example.com/", 80), -1 },
	{ "url http rule", "http://example.com/",
	  GET("http://example.com/", 80), 0 },
	{ "url http rule default port 80", "http://example.com/",
	  GET("http://example.com/", 443), -1 },
	{ "url default port 443", "https://example.com/",
	  GET("https://example.com:8443/", 8443), -1 },
	{ "url explicit port", "https://example.com:8443/",
	  GET("https://example.com:8443/", 8443), 0 },
	{ "url port is the dst port, not the URL's",
	  "https://example.com:8443/", GET("https://example.com/", 8443), 0 },
	{ "url port text in event ignored", "https://example.com:8443/",
	  GET("https://example.com:8443/", 443), -1 },
	{ "url port list", "https://example.com:443|8443/",
	  GET("https://example.com:8443/", 8443), 0 },
	{ "url host case", "https://github.com/x",
	  GET("https://GitHub.COM/x", 443), 0 },
	{ "url path case", "https://github.com/x",
	  GET("https://github.com/X", 443), -1 },
	{ "url query ignored", "https://e.com/a",
	  GET("https://e.com/a?x=1", 443), 0 },
	{ "url query with slashes ignored", "https://e.com/a",
	  GET("https://e.com/a?x=/b/c", 443), 0 },
	{ "url fragment ignored", "https://e.com/a",
	  GET("https://e.com/a#frag", 443), 0 },
	{ "url exact path", "https://e.com/a", GET("https://e.com/a/b", 443),
	  -1 },
	{ "url trailing wildcard", "https://e.com/a/*",
	  GET("https://e.com/a/b/c?q", 443), 0 },
	{ "url empty event path is /", "https://e.com/",
	  GET("https://e.com", 443), 0 },
	{ "url / vs /x", "https://e.com/", GET("https://e.com/x", 443), -1 },
	{ "url /* vs empty path", "https://e.com/*", GET("https://e.com", 443),
	  0 },
	{ "url /a vs empty path", "https://e.com/a", GET("https://e.com", 443),
	  -1 },
	{ "url rule path not collapsed", "https://e.com/a//b",
	  GET("https://e.com/a//b", 443), 0 },
	{ "url rule path not collapsed (miss)", "https://e.com/a//b",
	  GET("https://e.com/a/b", 443), -1 },
	{ "url exact host vs subdomain", "https://github.com/x",
	  GET("https://api.github.com/x", 443), -1 },
	{ "url wildcard host", "https://*.github.com/x",
	  GET("https://api.github.com/x", 443), 0 },
	{ "url wildcard host deep", "https://*.github.com/x",
	  GET("https://a.b.github.com/x", 443), 0 },
	{ "url wildcard host not apex", "https://*.github.com/x",
	  GET("https://github.com/x", 443), -1 },
	{ "url label wildcard host", "https://derp*.example.com/",
	  GET("https://derp1.example.com/", 443), 0 },
	{ "url ipv4 host", "https://1.2.3.4/x", GET("https://1.2.3.4/x", 443),
	  0 },
	{ "url event without hostname skips host check", "https://github.com/x",
	  GET("https:///x", 443), 0 },
	{ "url event without scheme", "https://github.com/x", GET("/x", 443),
	  -1 },
	{ "url rule vs https event (no url)", "https://github.com/x",
	  SNI("github.com"), -1 },
	{ "url rule vs tcp event (no url)", "https://github.com/",
	  EV_TCP("1.2.3.4", 443, .name = "github.com"), -1 },
	{ "url header port ignored", "[:8443]\nhttps://e.com/",
	  GET("https://e.com/", 443), 0 },
	{ "url header port ignored (miss)", "[:8443]\nhttps://e.com/",
	  GET("https://e.com:8443/", 8443), -1 },
	{ "url rule ignores url-base header",
	  "[https://other.com/base]\nhttps://e.com/x",
	  GET("https://e.com/x", 443), 0 },
	{ "url rule attrs", "https://e.com/ exe=/usr/bin/curl",
	  GET("https://e.com/", 443, PROC(.exe = "/usr/bin/curl")), 0 },
	{ "url rule attrs mismatch", "https://e.com/ exe=/usr/bin/curl",
	  GET("https://e.com/", 443, PROC(.exe = "/usr/bin/wget")), -1 },

	/* methods (1.9) */
	{ "default methods, missing = GET", "https://e.com/",
	  REQ(NULL, "https://e.com/"), 0 },
	{ "default methods, GET", "https://e.com/",
	  REQ("GET", "https://e.com/"), 0 },
	{ "default methods, get", "https://e.com/",
	  REQ("get", "https://e.com/"), 0 },
	{ "default methods, HEAD", "https://e.com/",
	  REQ("HEAD", "https://e.com/"), 0 },
	{ "default methods, head", "https://e.com/",
	  REQ("head", "https://e.com/"), 0 },
	{ "default methods, POST", "https://e.com/",
	  REQ("POST", "https://e.com/"), -1 },
	{ "default methods, OPTIONS", "https://e.com/",
	  REQ("OPTIONS", "https://e.com/"), -1 },
	{ "POST rule, post", "POST https://e.com/",
	  REQ("post", "https://e.com/"), 0 },
	{ "POST rule, GET", "POST https://e.com/", REQ("GET", "https://e.com/"),
	  -1 },
	{ "POST rule, missing method", "POST https://e.com/",
	  REQ(NULL, "https://e.com/"), -1 },
	{ "GET|POST rule, PUT", "GET|POST https://e.com/",
	  REQ("PUT", "https://e.com/"), -1 },
	{ "GET|POST rule, Post", "GET|POST https://e.com/",
	  REQ("Post", "https://e.com/"), 0 },
	{ "* rule, CONNECT", "* https://e.com/",
	  REQ("CONNECT", "https://e.com/"), 0 },
	{ "* rule, DELETE", "* https://e.com/", REQ("DELETE", "https://e.com/"),
	  0 },
	{ "* rule, missing", "* https://e.com/", REQ(NULL, "https://e.com/"),
	  0 },
	{ "* rule, unknown method", "* https://e.com/",
	  REQ("BREW", "https://e.com/"), 0 },
	{ "GET|* rule, PATCH", "GET|* https://e.com/",
	  REQ("PATCH", "https://e.com/"), 0 },
	{ "DELETE rule", "DELETE|PATCH|OPTIONS|PUT https://e.com/",
	  REQ("delete", "https://e.com/"), 0 },
	{ "PATCH rule", "DELETE|PATCH|OPTIONS|PUT https://e.com/",
	  REQ("PATCH", "https://e.com/"), 0 },
	{ "OPTIONS rule", "DELETE|PATCH|OPTIONS|PUT https://e.com/",
	  REQ("Options", "https://e.com/"), 0 },
	{ "PUT rule", "DELETE|PATCH|OPTIONS|PUT https://e.com/",
	  REQ("PUT", "https://e.com/"), 0 },
	{ "DELETE|PATCH|OPTIONS|PUT rule, GET",
	  "DELETE|PATCH|OPTIONS|PUT https://e.com/",
	  REQ("GET", "https://e.com/"), -1 },
	{ "repeated method tokens", "POST|POST https://e.com/",
	  REQ("POST", "https://e.com/"), 0 },
	{ "context methods", "[POST]\nhttps://e.com/",
	  REQ("POST", "https://e.com/"), 0 },
	{ "context methods replace default", "[POST]\nhttps://e.com/",
	  REQ("GET", "https://e.com/"), -1 },
	{ "rule methods override context", "[POST]\nGET https://e.com/",
	  REQ("GET", "https://e.com/"), 0 },
	{ "rule methods override context (miss)", "[POST]\nGET https://e.com/",
	  REQ("POST", "https://e.com/"), -1 },
	{ "context methods reset", "[POST]\n[]\nhttps://e.com/",
	  REQ("POST", "https://e.com/"), -1 },

	/* path rules built from url_base (1.9) */
	{ "path rule", "[https://api.github.com/v1/repos]\n/*/releases",
	  GET("https://api.github.com/v1/repos/x/releases", 443), 0 },
	{ "path rule, extra segment",
	  "[https://api.github.com/v1/repos]\n/*/releases",
	  GET("https://api.github.com/v1/repos/x/y/releases", 443), -1 },
	{ "path rule, other host",
	  "[https://api.github.com/v1/repos]\n/*/releases",
	  GET("https://github.com/v1/repos/x/releases", 443), -1 },
	{ "path rule, scheme", "[https://api.github.com/v1/repos]\n/*/releases",
	  GET("http://api.github.com/v1/repos/x/releases", 443), -1 },
	{ "path rule, port", "[https://api.github.com/v1/repos]\n/*/releases",
	  GET("https://api.github.com/v1/repos/x/releases", 8443), -1 },
	{ "path rule, base path not a prefix match",
	  "[https://api.github.com/v1/repos]\n/*/releases",
	  GET("https://api.github.com/x/releases", 443), -1 },
	{ "path rule, base trailing slash", "[https://h.com/base/]\n/x",
	  GET("https://h.com/base/x", 443), 0 },
	{ "path rule, base path required", "[https://h.com/base/]\n/x",
	  GET("https://h.com/x", 443), -1 },
	{ "path rule, base without path", "[https://h.com]\n/x",
	  GET("https://h.com/x", 443), 0 },
	{ "path rule, base /", "[https://h.com/]\n/x",
	  GET("https://h.com/x", 443), 0 },
	{ "path rule, // collapsed in pattern", "[https://h.com/a]\n/b//c",
	  GET("https://h.com/a/b/c", 443), 0 },
	{ "path rule, // not collapsed in event", "[https://h.com/a]\n/b//c",
	  GET("https://h.com/a/b//c", 443), -1 },
	{ "path rule, base // and rule //", "[https://h.com/a//]\n//b",
	  GET("https://h.com/a/b", 443), 0 },
	{ "path rule, base port", "[https://h.com:8443]\n/x",
	  GET("https://h.com:8443/x", 8443), 0 },
	{ "path rule, base port (miss)", "[https://h.com:8443]\n/x",
	  GET("https://h.com/x", 443), -1 },
	{ "path rule, base port list", "[https://h.com:443|8443/api]\n/x",
	  GET("https://h.com:8443/api/x", 8443), 0 },
	{ "path rule, http base", "[http://h.com]\n/x",
	  GET("http://h.com/x", 80), 0 },
	{ "path rule, http base, https request", "[http://h.com]\n/x",
	  GET("https://h.com/x", 80), -1 },
	{ "path rule, wildcard base host", "[https://*.h.com/api]\n/*",
	  GET("https://a.h.com/api/v", 443), 0 },
	{ "path rule, wildcard base host not apex", "[https://*.h.com/api]\n/*",
	  GET("https://h.com/api/v", 443), -1 },
	{ "path rule, method", "[https://h.com]\nPOST /x",
	  REQ("POST", "https://h.com/x"), 0 },
	{ "path rule, method (miss)", "[https://h.com]\nPOST /x",
	  REQ("GET", "https://h.com/x"), -1 },
	{ "path rule, header attrs", "[https://h.com exe=/bin/a]\n/x",
	  GET("https://h.com/x", 443, PROC(.exe = "/bin/a")), 0 },
	{ "path rule, header attrs (miss)", "[https://h.com exe=/bin/a]\n/x",
	  GET("https://h.com/x", 443, PROC(.exe = "/bin/b")), -1 },
	{ "path rule, second rule", "[https://h.com]\n/x\n/y",
	  GET("https://h.com/y", 443), 1 },
	{ "path rule, base alone", "[https://h.com/v1]\n/*",
	  GET("https://h.com/v1", 443), 0 },
	{ "path rule, sibling base", "[https://h.com/v1]\n/*",
	  GET("https://h.com/v2", 443), -1 },
	{ "path rule vs https event", "[https://h.com]\n/x", SNI("h.com"), -1 },

	{ "url no percent-decoding", "https://e.com/a%40b",
	  GET("https://e.com/a@b", 443), -1 },
	{ "url percent-encoded path", "https://e.com/a%40b",
	  GET("https://e.com/a%40b", 443), 0 },
	{ "url event host with trailing dot", "https://github.com/x",
	  GET("https://github.com./x", 443), -1 },
	{ "path rule, wildcard in base path", "[https://h.com/v*]\n/x",
	  GET("https://h.com/v1/x", 443), 0 },
	{ "path rule, upper-case base host", "[https://H.com]\n/x",
	  GET("https://h.com/x", 443), 0 },
	{ "url rule, upper-case host", "https://GitHub.com/x",
	  GET("https://github.com/x", 443), 0 },

	/* attributes (1.11) */
	{ "exe literal-ish bare", "github.com exe=/usr/bin/curl",
	  SNI("github.com", PROC(.exe = "/usr/bin/curl")), 0 },
	{ "exe mismatch", "github.com exe=/usr/bin/curl",
	  SNI("github.com", PROC(.exe = "/usr/bin/wget")), -1 },
	{ "exe missing", "github.com exe=/usr/bin/curl", SNI("github.com"),
	  -1 },
	{ "exe case-sensitive", "github.com exe=/usr/bin/Curl",
	  SNI("github.com", PROC(.exe = "/usr/bin/curl")), -1 },
	{ "exe bare glob crosses /", "github.com exe=/usr/bin/*",
	  SNI("github.com", PROC(.exe = "/usr/bin/x/y")), 0 },
	{ "exe bare glob anchored", "github.com exe=/usr/bin/*",
	  SNI("github.com", PROC(.exe = "/usr/local/bin/x")), -1 },
	{ "exe bare ?", "github.com exe=/usr/bin/?url",
	  SNI("github.com", PROC(.exe = "/usr/bin/curl")), 0 },
	{ "exe backtick class c", "github.com exe=`/usr/bin/[cw]url`",
	  SNI("github.com", PROC(.exe = "/usr/bin/curl")), 0 },
	{ "exe backtick class w", "github.com exe=`/usr/bin/[cw]url`",
	  SNI("github.com", PROC(.exe = "/usr/bin/wurl")), 0 },
	{ "exe backtick class miss", "github.com exe=`/usr/bin/[cw]url`",
	  SNI("github.com", PROC(.exe = "/usr/bin/xurl")), -1 },
	{ "exe backtick negated class", "github.com exe=`/usr/bin/[!c]url`",
	  SNI("github.com", PROC(.exe = "/usr/bin/wurl")), 0 },
	{ "exe quoted is literal", "github.com exe=\"/usr/bin/*\"",
	  SNI("github.com", PROC(.exe = "/usr/bin/curl")), -1 },
	{ "exe quoted equal", "github.com exe=\"/usr/bin/*\"",
	  SNI("github.com", PROC(.exe = "/usr/bin/*")), 0 },
	{ "arg any element", "github.com arg=--verbose",
	  SNI("github.com", PROC(ARGV("curl", "--verbose"))), 0 },
	{ "arg element 0 counts", "github.com arg=--verbose",
	  SNI("github.com", PROC(ARGV("--verbose"))), 0 },
	{ "arg no element", "github.com arg=--verbose",
	  SNI("github.com", PROC(ARGV("curl", "-v"))), -1 },
	{ "arg missing cmdline", "github.com arg=--verbose", SNI("github.com"),
	  -1 },
	{ "arg glob", "github.com arg=*.txt",
	  SNI("github.com", PROC(ARGV("cat", "a.txt"))), 0 },
	{ "arg glob miss", "github.com arg=*.txt",
	  SNI("github.com", PROC(ARGV("cat", "a.tx"))), -1 },
	{ "arg backtick with space", "github.com arg=`hello *.txt`",
	  SNI("github.com", PROC(ARGV("echo", "hello a.txt"))), 0 },
	{ "arg backtick with space (split)", "github.com arg=`hello *.txt`",
	  SNI("github.com", PROC(ARGV("hello", "a.txt"))), -1 },
	{ "arg backtick # and ]", "github.com arg=`a#b]c`",
	  SNI("github.com", PROC(ARGV("a#b]c"))), 0 },
	{ "arg quoted with space", "github.com arg=\"a b\"",
	  SNI("github.com", PROC(ARGV("x", "a b"))), 0 },
	{ "arg quoted with space (split)", "github.com arg=\"a b\"",
	  SNI("github.com", PROC(ARGV("a", "b"))), -1 },
	{ "arg value with =", "github.com arg=--x=1",
	  SNI("github.com", PROC(ARGV("--x=1"))), 0 },
	{ "unterminated quote is a bare value", "github.com arg=\"abc",
	  SNI("github.com", PROC(ARGV("\"abc"))), 0 },
	{ "unterminated quote, unquoted arg", "github.com arg=\"abc",
	  SNI("github.com", PROC(ARGV("abc"))), -1 },
	{ "unterminated quote globs", "github.com arg=\"a*",
	  SNI("github.com", PROC(ARGV("\"abc"))), 0 },
	{ "arg[1]", "github.com arg[1]=x",
	  SNI("github.com", PROC(ARGV("a", "x"))), 0 },
	{ "arg[1] wrong position", "github.com arg[1]=x",
	  SNI("github.com", PROC(ARGV("x", "a"))), -1 },
	{ "arg[1] too short", "github.com arg[1]=x",
	  SNI("github.com", PROC(ARGV("a"))), -1 },
	{ "arg[1] missing cmdline", "github.com arg[1]=x", SNI("github.com"),
	  -1 },
	{ "arg[01] is index 1", "github.com arg[01]=x",
	  SNI("github.com", PROC(ARGV("a", "x"))), 0 },
	{ "arg[0]", "github.com arg[0]=curl",
	  SNI("github.com", PROC(ARGV("curl"))), 0 },
	{ "arg[0] glob", "github.com arg[0]=*curl",
	  SNI("github.com", PROC(ARGV("/usr/bin/curl", "x"))), 0 },
	{ "arg[2] quoted literal", "github.com arg[2]=\"*\"",
	  SNI("github.com", PROC(ARGV("a", "b", "*"))), 0 },
	{ "arg[2] quoted literal (miss)", "github.com arg[2]=\"*\"",
	  SNI("github.com", PROC(ARGV("a", "b", "c"))), -1 },
	{ "arg[huge] never matches",
	  "github.com arg[99999999999999999999999]=*",
	  SNI("github.com", PROC(ARGV("x"))), -1 },
	{ "arg[1] and arg[01] both apply", "github.com arg[1]=x arg[01]=y",
	  SNI("github.com", PROC(ARGV("a", "x"))), -1 },
	{ "step", "github.com step=build",
	  SNI("github.com", PROC(.step = "build")), 0 },
	{ "step mismatch", "github.com step=build",
	  SNI("github.com", PROC(.step = "test")), -1 },
	{ "step missing", "github.com step=build", SNI("github.com"), -1 },
	{ "step glob", "github.com step=b*",
	  SNI("github.com", PROC(.step = "build")), 0 },
	{ "action", "github.com action=actions/checkout",
	  SNI("github.com", PROC(.action = "actions/checkout")), 0 },
	{ "action glob", "github.com action=actions/*",
	  SNI("github.com", PROC(.action = "actions/setup-node")), 0 },
	{ "action missing", "github.com action=actions/*", SNI("github.com"),
	  -1 },
	{ "action quoted literal", "github.com action=\"actions/*\"",
	  SNI("github.com", PROC(.action = "actions/checkout")), -1 },
	{ "image glob", "github.com image=node:*",
	  SNI("github.com", PROC(.image = "node:20")), 0 },
	{ "image glob miss", "github.com image=node:*",
	  SNI("github.com", PROC(.image = "python:3")), -1 },
	{ "image missing", "github.com image=node:*", SNI("github.com"), -1 },
	{ "image quoted literal", "github.com image=\"node:*\"",
	  SNI("github.com", PROC(.image = "node:20")), -1 },
	{ "cgroup @docker", "github.com cgroup=@docker",
	  SNI("github.com", PROC(.cgroup = "/system.slice/docker-abc.scope")),
	  0 },
	{ "cgroup @docker case-insensitive", "github.com cgroup=@docker",
	  SNI("github.com", PROC(.cgroup = "/DOCKER/x")), 0 },
	{ "cgroup @docker on host", "github.com cgroup=@docker",
	  SNI("github.com", PROC(.cgroup = "/system.slice/foo.service")), -1 },
	{ "cgroup @docker missing", "github.com cgroup=@docker",
	  SNI("github.com"), -1 },
	{ "cgroup @host", "github.com cgroup=@host",
	  SNI("github.com", PROC(.cgroup = "/system.slice/foo.service")), 0 },
	{ "cgroup @host in docker", "github.com cgroup=@host",
	  SNI("github.com", PROC(.cgroup = "/system.slice/docker-abc.scope")),
	  -1 },
	{ "cgroup @host case-insensitive", "github.com cgroup=@host",
	  SNI("github.com", PROC(.cgroup = "/Docker/x")), -1 },
	{ "cgroup @host missing", "github.com cgroup=@host", SNI("github.com"),
	  -1 },
	{ "cgroup exact",
	  "github.com cgroup=/system.slice/hosted-compute-agent.service",
	  SNI("github.com",
	      PROC(.cgroup = "/system.slice/hosted-compute-agent.service")),
	  0 },
	{ "cgroup exact mismatch",
	  "github.com cgroup=/system.slice/hosted-compute-agent.service",
	  SNI("github.com", PROC(.cgroup = "/system.slice/other.service")),
	  -1 },
	{ "cgroup bare glob", "github.com cgroup=/system.slice/*",
	  SNI("github.com", PROC(.cgroup = "/system.slice/x.service")), 0 },
	{ "cgroup quoted still globs", "github.com cgroup=\"/system.slice/*\"",
	  SNI("github.com", PROC(.cgroup = "/system.slice/x.service")), 0 },
	{ "cgroup quoted glob miss", "github.com cgroup=\"/system.slice/*\"",
	  SNI("github.com", PROC(.cgroup = "/user.slice/x")), -1 },
	{ "cgroup quoted @docker", "github.com cgroup=\"@docker\"",
	  SNI("github.com", PROC(.cgroup = "/system.slice/docker-1.scope")),
	  0 },
	{ "cgroup glob is case-sensitive", "github.com cgroup=/System.slice/*",
	  SNI("github.com", PROC(.cgroup = "/system.slice/x.service")), -1 },
	{ "attrs are ANDed", "github.com exe=/bin/a arg=x",
	  SNI("github.com", PROC(.exe = "/bin/a", ARGV("x"))), 0 },
	{ "attrs ANDed, arg fails", "github.com exe=/bin/a arg=x",
	  SNI("github.com", PROC(.exe = "/bin/a", ARGV("y"))), -1 },
	{ "attrs ANDed, exe fails", "github.com exe=/bin/a arg=x",
	  SNI("github.com", PROC(.exe = "/bin/b", ARGV("x"))), -1 },
	{ "header attrs merged", "[exe=/bin/a]\ngithub.com arg=x",
	  SNI("github.com", PROC(.exe = "/bin/a", ARGV("x"))), 0 },
	{ "header attrs merged, header key fails",
	  "[exe=/bin/a]\ngithub.com arg=x",
	  SNI("github.com", PROC(.exe = "/bin/b", ARGV("x"))), -1 },
	{ "rule attr overrides header", "[exe=/bin/a]\ngithub.com exe=/bin/b",
	  SNI("github.com", PROC(.exe = "/bin/b")), 0 },
	{ "rule attr overrides header (old value)",
	  "[exe=/bin/a]\ngithub.com exe=/bin/b",
	  SNI("github.com", PROC(.exe = "/bin/a")), -1 },
	{ "duplicate key, last wins", "github.com exe=/a exe=/b",
	  SNI("github.com", PROC(.exe = "/b")), 0 },
	{ "duplicate key, first dropped", "github.com exe=/a exe=/b",
	  SNI("github.com", PROC(.exe = "/a")), -1 },
	{ "header attrs reset", "[exe=/bin/a]\n[]\ngithub.com",
	  SNI("github.com", PROC(.exe = "/bin/b")), 0 },
	{ "port header attrs", "[:22 exe=/bin/ssh]\ngithub.com",
	  EV_HTTPS("github.com", "1.2.3.4", 22, PROC(.exe = "/bin/ssh")), 0 },
	{ "ip rule attrs", "1.2.3.4 exe=/bin/a",
	  EV_TCP("1.2.3.4", 443, PROC(.exe = "/bin/b")), -1 },
	{ "cidr rule attrs", "1.2.3.0/24 exe=/bin/a",
	  EV_TCP("1.2.3.4", 443, PROC(.exe = "/bin/a")), 0 },

	/* dns-only rules never match connections (1.12) */
	{ "dns_host vs sni", "dns:github.com", SNI("github.com"), -1 },
	{ "dns_host vs request", "dns:github.com",
	  GET("https://github.com/", 443), -1 },
	{ "dns_wildcard vs sni", "dns:*.github.com", SNI("api.github.com"),
	  -1 },
	{ "dns_host vs tcp with name", "dns:github.com",
	  EV_TCP("1.2.3.4", 443, .name = "github.com"), -1 },
	{ "dns_host udp vs udp with host", "dns:github.com:53/udp",
	  EV_UDP("1.2.3.4", 53, .host = "github.com"), -1 },
	{ "dns_host then host", "dns:github.com\ngithub.com", SNI("github.com"),
	  1 },
	/* the raw matcher does the DNS dual check for named dns events */
	{ "dns event, resolver and name", "8.8.8.8:53/udp\ngithub.com",
	  EV_DNS("github.com", "8.8.8.8", 53), 1 },
	{ "dns event, no resolver", "github.com",
	  EV_DNS("github.com", "8.8.8.8", 53), -1 },

	/* first matching index wins (1.17) */
	{ "first of four: host", "a.com\n*.com\n1.2.3.4\n0.0.0.0/0",
	  SNI("a.com"), 0 },
	{ "first of four: wildcard", "a.com\n*.com\n1.2.3.4\n0.0.0.0/0",
	  SNI("b.com"), 1 },
	{ "first of four: ip", "a.com\n*.com\n1.2.3.4\n0.0.0.0/0", SNI("c.org"),
	  2 },
	{ "first of four: cidr", "a.com\n*.com\n1.2.3.4\n0.0.0.0/0",
	  EV_HTTPS("c.org", "9.9.9.9", 443), 3 },
	{ "cidr before host", "0.0.0.0/0\na.com", SNI("a.com"), 0 },
	{ "wildcard before exact", "*.com\na.com", SNI("a.com"), 0 },
	{ "non-matching then wildcard then exact", "b.com\n*.com\na.com",
	  SNI("a.com"), 1 },
	{ "wide cidr first", "10.0.0.0/8\n10.1.0.0/16\n10.1.2.3",
	  EV_TCP("10.1.2.3", 443), 0 },
	{ "ip first", "10.1.2.3\n10.1.0.0/16\n10.0.0.0/8",
	  EV_TCP("10.1.2.3", 443), 0 },
	{ "ip wrong port then cidr", "10.1.2.3:22\n10.1.0.0/16\n10.0.0.0/8",
	  EV_TCP("10.1.2.3", 443), 1 },
	{ "cidr wrong port then narrower",
	  "10.0.0.0/8:22\n10.1.0.0/16\n10.0.0.0/8", EV_TCP("10.1.1.1", 443),
	  1 },
	{ "attrs fail then plain", "github.com exe=/x\ngithub.com",
	  SNI("github.com", PROC(.exe = "/y")), 1 },
	{ "url rule first", "https://github.com/x\ngithub.com",
	  GET("https://github.com/x", 443), 0 },
	{ "url rule misses, host rule", "https://github.com/x\ngithub.com",
	  GET("https://github.com/y", 443), 1 },
	{ "wildcard url before wildcard host", "https://*.com/\n*.com",
	  GET("https://a.com/", 443), 0 },
	{ "three wildcard forms",
	  "*.example.com\n**.example.com\na.example.com", SNI("a.example.com"),
	  0 },
	{ "label then sub+label", "derp*.example.com\n*.derp*.example.com",
	  SNI("x.derp1.example.com"), 1 },
	{ "deeper suffix first", "*.a.example.com\n*.example.com",
	  SNI("x.a.example.com"), 0 },
	{ "deeper suffix misses", "*.a.example.com\n*.example.com",
	  SNI("x.b.example.com"), 1 },
	{ "shorter suffix first", "*.com\n*.example.com", SNI("x.example.com"),
	  0 },
	{ "udp rules skipped for tcp",
	  "github.com:443/udp\n*.com:443/udp\ngithub.com", SNI("github.com"),
	  2 },
	{ "dns rules skipped", "dns:github.com\ndns:*.com\n*.com",
	  SNI("github.com"), 2 },
};

START_TEST(test_match)
{
	const struct match_case *c = &match_cases[_i];
	policy_t *p = NULL;
	struct policy_diags d = { 0 };
	int got;

	ck_assert_msg(policy_parse(c->policy, strlen(c->policy), NULL, &p,
				   &d) == 0,
		      "%s: policy does not parse", c->name);
	ck_assert_msg(policy_diags_count(&d, POLICY_DIAG_SYNTAX) == 0 &&
			      policy_diags_count(&d, POLICY_DIAG_RULE) == 0,
		      "%s: policy has errors: %s", c->name,
		      d.n ? d.v[0].msg : "");
	got = policy_match(p, &c->ev);
	ck_assert_msg(got == c->want, "%s: policy_match = %d, want %d", c->name,
		      got, c->want);
	policy_free(p);
	policy_diags_fini(&d);
}
END_TEST

/* ---- first match among many rules (1.17, and the index's merge) ------------ */

/*
 * A policy of MANY_N rules: the matching rule at index pos and again 37
 * later; at every third other index a "filler" that shares the index bucket
 * with the target (same name, address or network) but cannot match the
 * event; unrelated host and cidr rules elsewhere.
 */
#define MANY_N 400

struct many_case {
	const char *name;
	const char *target;
	const char *filler;
	size_t pos;
	struct policy_event ev;
};

static const struct many_case many_cases[] = {
	{ "host at 0", "github.com", "github.com:1", 0, SNI("github.com") },
	{ "host at 1", "github.com", "github.com:1", 1, SNI("github.com") },
	{ "host at 199", "github.com", "github.com:1", 199, SNI("github.com") },
	{ "host at 398", "github.com", "github.com:1", 398, SNI("github.com") },
	{ "host at 399", "github.com", "github.com:1", 399, SNI("github.com") },
	{ "wildcard at 150", "*.github.com", "*.github.com:1", 150,
	  SNI("api.github.com") },
	{ "label wildcard at 77", "derp*.github.com", "derp*.github.com:1", 77,
	  SNI("derp1.github.com") },
	{ "ip at 250", "1.2.3.4", "1.2.3.4:1", 250, EV_TCP("1.2.3.4", 443) },
	{ "cidr at 300", "1.2.0.0/16", "1.2.0.0/16:1", 300,
	  EV_TCP("1.2.3.4", 443) },
	{ "cidr /0 at 222", "0.0.0.0/0", "0.0.0.0/0:1", 222,
	  EV_TCP("1.2.3.4", 443) },
	{ "url at 333", "https://github.com/x/*", "https://github.com:1/x/*",
	  333, GET("https://github.com/x/y", 443) },
	{ "wildcard url at 123", "https://*.github.com/x",
	  "https://*.github.com:1/x", 123,
	  GET("https://api.github.com/x", 443) },
	{ "udp ip at 100", "8.8.8.8:53/udp", "8.8.8.8:53", 100,
	  EV_UDP("8.8.8.8", 53) },
	{ "attrs at 377", "github.com exe=/bin/a", "github.com exe=/bin/b", 377,
	  SNI("github.com", PROC(.exe = "/bin/a")) },
	{ "dns domain at 260", "8.8.8.8:53/udp\ndns:github.com",
	  "dns:github.com exe=/bin/b", 260,
	  EV_DNS("github.com", "8.8.8.8", 53) },
};

static void sb_addf(char *buf, size_t cap, size_t *len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void sb_addf(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf + *len, cap - *len, fmt, ap);
	va_end(ap);
	ck_assert_msg(n >= 0 && (size_t)n < cap - *len, "policy buffer full");
	*len += (size_t)n;
}

START_TEST(test_many)
{
	const struct many_case *c = &many_cases[_i];
	static char text[64 * 1024];
	size_t len = 0;
	policy_t *p = NULL;
	size_t want = c->pos;
	int got;

	text[0] = '\0';
	for (size_t i = 0; i < MANY_N; i++) {
		if (i == c->pos || i == c->pos + 37)
			sb_addf(text, sizeof(text), &len, "%s\n", c->target);
		else if (i % 3 == 0)
			sb_addf(text, sizeof(text), &len, "%s\n", c->filler);
		else if (i % 3 == 1)
			sb_addf(text, sizeof(text), &len, "f%zu.example.net\n",
				i);
		else
			sb_addf(text, sizeof(text), &len, "198.18.%zu.0/24\n",
				i % 256);
	}
	ck_assert_int_eq(policy_parse(text, len, NULL, &p, NULL), 0);
	/* a two-line target (dns: resolver + domain) shifts later indices */
	if (strchr(c->target, '\n'))
		want++;
	got = policy_match(p, &c->ev);
	ck_assert_msg(got == (int)want, "%s: policy_match = %d, want %zu",
		      c->name, got, want);
	policy_free(p);
}
END_TEST

/* ---- randomized cross-check: index vs. a naive linear scan ----------------- */

struct rng {
	uint64_t s;
};

static uint32_t rnd(struct rng *r, uint32_t n)
{
	/* xorshift64* */
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return (uint32_t)(((r->s * 0x2545F4914F6CDD1DULL) >> 32) % n);
}

#define PICK(r, a) ((a)[rnd((r), NELEMS(a))])

static const char *const r_hosts[] = {
	"github.com",	     "api.github.com",	 "example.com", "a.example.com",
	"derp1.example.com", "test.org",	 "a.test.org",	"foo.com",
	"Foo.COM",	     "x.api.github.com",
};
static const char *const r_wilds[] = {
	"*.example.com",     "*.github.com",	    "*.com",
	"derp*.example.com", "*.derp*.example.com", "**.example.com",
	"*.*.example.com",   "a*.test.org",	    "*.a.example.com",
	"*-x.foo.com",	     "*.foo.com",	    "*.api.github.com",
	"Derp*.Example.com",
};
static const char *const r_ips[] = {
	"10.0.0.1", "10.0.1.2", "10.1.2.3", "8.8.8.8", "1.2.3.4", "192.168.0.1",
};
static const char *const r_cidrs[] = {
	"10.0.0.0/8", "10.0.0.0/16",	"10.0.1.0/24",	"10.1.2.3/32",
	"0.0.0.0/0",  "192.168.0.0/16", "8.8.8.8/32",	"10.0.0.0/30",
	"1.2.3.4/31", "128.0.0.0/1",	"10.0.1.77/24",
};
static const char *const r_ports[] = {
	"",    "",    ":443",	 ":80|443", ":*",
	":22", ":53", ":8443|1", ":80",	    ":*|22",
};
static const char *const r_protos[] = { "", "", "/udp", "/tcp" };
static const char *const r_attrs[] = {
	"exe=/usr/bin/curl",
	"exe=/usr/bin/*",
	"exe=\"/bin/a\"",
	"arg=x",
	"arg[1]=y",
	"arg=`*x*`",
	"cgroup=@docker",
	"cgroup=@host",
	"cgroup=/system.slice/*",
	"step=build",
	"action=actions/*",
	"image=\"node\"",
	"arg[0]=`[ab]*`",
	"cgroup=\"/user.slice/*\"",
};
static const char *const r_methods[] = {
	"", "", "GET ", "POST ", "GET|POST ", "* ", "HEAD|DELETE ",
};
static const char *const r_paths[] = {
	"/",
	"/*",
	"/a",
	"/a/*",
	"/a/b",
	"/api/*",
	"/v1/repos/*/releases",
	"/*.zip",
	"/a/*/c",
	"/api/**",
};
static const char *const r_urlhosts[] = {
	"github.com",	     "api.github.com", "*.github.com", "example.com",
	"derp*.example.com", "a.test.org",     "1.2.3.4",      "*.com",
	"Example.COM",
};
static const char *const r_urlports[] = { "", "", ":8443", ":443|8443", ":80" };
static const char *const r_bases[] = { "", "/", "/a", "/api/", "/v1/repos" };

static void gen_attrs(struct rng *g, char *buf, size_t cap, size_t *len)
{
	uint32_t n = rnd(g, 20);

	n = n < 10 ? 0 : n < 17 ? 1 : 2;
	for (uint32_t i = 0; i < n; i++)
		sb_addf(buf, cap, len, " %s", PICK(g, r_attrs));
}

/* Appends one rule, a path rule with its URL-base header and a reset. */
static void gen_rule(struct rng *g, char *buf, size_t cap, size_t *len)
{
	const char *port;

	switch (rnd(g, 7)) {
	case 0:
	case 1: /* host or wildcard */
		port = PICK(g, r_ports);
		sb_addf(buf, cap, len, "%s%s%s%s",
			rnd(g, 2) ? PICK(g, r_hosts) : PICK(g, r_wilds), port,
			*port ? PICK(g, r_protos) : "",
			rnd(g, 10) ? "" : " passthrough");
		break;
	case 2: /* ip */
		port = PICK(g, r_ports);
		sb_addf(buf, cap, len, "%s%s%s", PICK(g, r_ips), port,
			*port ? PICK(g, r_protos) : "");
		break;
	case 3: /* cidr */
		port = PICK(g, r_ports);
		sb_addf(buf, cap, len, "%s%s%s", PICK(g, r_cidrs), port,
			*port ? PICK(g, r_protos) : "");
		break;
	case 4: /* url */
		sb_addf(buf, cap, len, "%s%s://%s%s%s%s", PICK(g, r_methods),
			rnd(g, 3) ? "https" : "http", PICK(g, r_urlhosts),
			PICK(g, r_urlports), PICK(g, r_paths),
			rnd(g, 10) ? "" : " insecure");
		break;
	case 5: /* path under a URL-base header */
		sb_addf(buf, cap, len, "[%s://%s%s%s",
			rnd(g, 3) ? "https" : "http", PICK(g, r_urlhosts),
			PICK(g, r_urlports), PICK(g, r_bases));
		gen_attrs(g, buf, cap, len);
		sb_addf(buf, cap, len, "]\n%s%s", PICK(g, r_methods),
			PICK(g, r_paths));
		gen_attrs(g, buf, cap, len);
		sb_addf(buf, cap, len, "\n[]\n");
		return;
	default: /* dns-only */
		sb_addf(buf, cap, len, "dns:%s",
			rnd(g, 2) ? PICK(g, r_hosts) : PICK(g, r_wilds));
		break;
	}
	gen_attrs(g, buf, cap, len);
	sb_addf(buf, cap, len, "\n");
}

/* Event pools: close to the rules so that many events match something. */
static const char *const e_hosts[] = {
	NULL,
	"",
	"github.com",
	"api.github.com",
	"x.api.github.com",
	"example.com",
	"a.example.com",
	"b.a.example.com",
	"derp.example.com",
	"derp1.example.com",
	"x.derp1.example.com",
	"test.org",
	"a.test.org",
	"ab.test.org",
	"A.Example.COM",
	"foo.com",
	"a-x.foo.com",
	"a.b.c.foo.com",
	"github.com.",
	".example.com",
	"x.y.example.com",
	"1.2.3.4",
	"a..example.com",
	"x.derp.example.com",
	"com",
};
static const char *const e_ips[] = {
	"10.0.0.1",    "10.0.0.2",  "10.0.1.2", "10.0.1.200", "10.1.2.3",
	"10.200.0.1",  "8.8.8.8",   "1.2.3.4",	"1.2.3.5",    "192.168.0.1",
	"192.168.9.9", "200.0.0.1", "unknown",
};
static const int64_t e_ports[] = { 22, 53, 80, 443, 8443, 1, 5353 };
static const char *const e_urlports[] = { "", "", ":8443", ":80" };
static const char *const e_paths[] = {
	"/",	    "",
	"/a",	    "/a/",
	"/a/b",	    "/a/b/c",
	"/a/x/c",   "/api/x",
	"/api/x/y", "/v1/repos/x/releases",
	"/x.zip",   "/a?q=1",
	"/api/x#f", "/v1/repos/a/b/releases",
	"/api",	    "/a/b?x=/y",
};
static const char *const e_methods[] = {
	NULL, "GET", "get", "POST", "HEAD", "DELETE", "BREW", "post",
};
static const char *const e_exes[] = {
	NULL, "/usr/bin/curl", "/bin/a", "/usr/bin/wget", "/usr/bin/x/y",
};
static const char *const e_cgroups[] = {
	NULL,
	"/system.slice/docker-1.scope",
	"/system.slice/hosted-compute-agent.service",
	"/user.slice/u",
};
static const char *const e_steps[] = { NULL, "build", "test" };
static const char *const e_actions[] = { NULL, "actions/checkout", "o/x" };
static const char *const e_images[] = { NULL, "node", "node:20" };
static const char *const e_argv0[] = { "curl", "y" };
static const char *const e_argv1[] = { "x" };
static const char *const e_argv2[] = { "a", "y", "x" };
static const char *const e_argv3[] = { "b1", "zzxzz" };

struct gen_event {
	struct policy_event ev;
	char url[256];
};

static void gen_event(struct rng *g, struct gen_event *ge)
{
	struct policy_event *ev = &ge->ev;
	const char *h;

	memset(ge, 0, sizeof(*ge));
	ev->type = (enum policy_ev_type)rnd(g, POLICY_EV_TYPE_MAX);
	ev->dst_ip = PICK(g, e_ips);
	ev->dst_port = PICK(g, e_ports);
	switch (ev->type) {
	case POLICY_EV_HTTP:
		do
			h = PICK(g, e_hosts);
		while (!h || !*h);
		snprintf(ge->url, sizeof(ge->url), "%s://%s%s%s",
			 rnd(g, 2) ? "https" : "http", h, PICK(g, e_urlports),
			 PICK(g, e_paths));
		ev->url = ge->url;
		ev->method = PICK(g, e_methods);
		if (!rnd(g, 4))
			ev->host = PICK(g, e_hosts);
		break;
	case POLICY_EV_DNS:
		do
			ev->name = PICK(g, e_hosts);
		while (!ev->name || !*ev->name);
		break;
	default:
		ev->host = PICK(g, e_hosts);
		if (!rnd(g, 4))
			ev->name = PICK(g, e_hosts);
		/* the raw matcher takes a URL on any event */
		if (!rnd(g, 5)) {
			do
				h = PICK(g, e_hosts);
			while (!h || !*h);
			snprintf(ge->url, sizeof(ge->url), "https://%s%s", h,
				 PICK(g, e_paths));
			ev->url = ge->url;
		}
		break;
	}
	ev->proc.exe = PICK(g, e_exes);
	ev->proc.cgroup = PICK(g, e_cgroups);
	ev->proc.step = PICK(g, e_steps);
	ev->proc.action = PICK(g, e_actions);
	ev->proc.image = PICK(g, e_images);
	switch (rnd(g, 5)) {
	case 0:
		break;
	case 1:
		ev->proc.cmdline = e_argv0;
		ev->proc.ncmdline = NELEMS(e_argv0);
		break;
	case 2:
		ev->proc.cmdline = e_argv1;
		ev->proc.ncmdline = NELEMS(e_argv1);
		break;
	case 3:
		ev->proc.cmdline = e_argv2;
		ev->proc.ncmdline = NELEMS(e_argv2);
		break;
	default:
		ev->proc.cmdline = e_argv3;
		ev->proc.ncmdline = NELEMS(e_argv3);
		break;
	}
}

/* The naive matcher: reference 1.4 - 1.12 over policy_rule fields. */

static char nv_lc(char c)
{
	return (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
}

static bool nv_quad(const char *s, uint32_t *out)
{
	unsigned a, b, c, d;
	char tail;

	if (sscanf(s, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) != 4 || a > 255 ||
	    b > 255 || c > 255 || d > 255)
		return false;
	*out = a << 24 | b << 16 | c << 8 | d;
	return true;
}

static bool nv_cidr(const char *target, const char *ip)
{
	char net[32];
	const char *sl = strchr(target, '/');
	uint32_t n, a, mask;
	unsigned bits = (unsigned)atoi(sl + 1);

	snprintf(net, sizeof(net), "%.*s", (int)(sl - target), target);
	if (!nv_quad(net, &n) || !nv_quad(ip, &a))
		return false;
	mask = bits ? 0xffffffffu << (32 - bits) : 0;
	return (n & mask) == (a & mask);
}

static bool nv_port(const struct policy_rule *r, int64_t port)
{
	if (r->port_any)
		return true;
	for (size_t i = 0; i < r->nports; i++)
		if (port >= 0 && r->ports[i] == (uint64_t)port)
			return true;
	return false;
}

static bool nv_has_docker(const char *s)
{
	for (; *s; s++) {
		size_t k = 0;
		while (k < 6 && s[k] && nv_lc(s[k]) == "docker"[k])
			k++;
		if (k == 6)
			return true;
	}
	return false;
}

static bool nv_val(const struct policy_attr *a, const char *v)
{
	return a->form == POLICY_VAL_QUOTED ? strcmp(a->value, v) == 0 :
					      policy_glob(a->value, v);
}

static bool nv_attrs(const struct policy_rule *r, const struct policy_proc *pr)
{
	for (size_t i = 0; i < r->nattrs; i++) {
		const struct policy_attr *a = &r->attrs[i];
		const char *v = NULL;
		bool ok = false;

		switch (a->kind) {
		case POLICY_ATTR_ARG:
			for (size_t k = 0; pr->cmdline && k < pr->ncmdline; k++)
				ok = ok || nv_val(a, pr->cmdline[k]);
			if (!ok)
				return false;
			continue;
		case POLICY_ATTR_ARG_N:
			if (!pr->cmdline || a->index >= pr->ncmdline ||
			    !nv_val(a, pr->cmdline[a->index]))
				return false;
			continue;
		case POLICY_ATTR_CGROUP:
			if (!pr->cgroup)
				return false;
			if (strcmp(a->value, "@docker") == 0)
				ok = nv_has_docker(pr->cgroup);
			else if (strcmp(a->value, "@host") == 0)
				ok = !nv_has_docker(pr->cgroup);
			else
				ok = policy_glob(a->value, pr->cgroup);
			if (!ok)
				return false;
			continue;
		case POLICY_ATTR_EXE:
			v = pr->exe;
			break;
		case POLICY_ATTR_STEP:
			v = pr->step;
			break;
		case POLICY_ATTR_ACTION:
			v = pr->action;
			break;
		case POLICY_ATTR_IMAGE:
			v = pr->image;
			break;
		default:
			return false;
		}
		if (!v || !nv_val(a, v))
			return false;
	}
	return true;
}

/* A URL as the generator writes it: scheme://host[:port]path[?q][#f]. */
struct nv_url {
	char scheme[16];
	char host[128]; /* lower-cased; empty: none */
	char path[128]; /* without query and fragment; "/" if empty */
};

static void nv_parse_url(const char *u, struct nv_url *o)
{
	const char *s = strstr(u, "://"), *h, *e;
	size_t n;

	n = (size_t)(s - u);
	for (size_t i = 0; i < n && i + 1 < sizeof(o->scheme); i++)
		o->scheme[i] = nv_lc(u[i]);
	o->scheme[n < sizeof(o->scheme) ? n : sizeof(o->scheme) - 1] = '\0';
	h = s + 3;
	e = h + strcspn(h, "/?#");
	n = strcspn(h, ":/?#");
	for (size_t i = 0; i < n; i++)
		o->host[i] = nv_lc(h[i]);
	o->host[n] = '\0';
	n = strcspn(e, "?#");
	snprintf(o->path, sizeof(o->path), "%.*s", (int)n, e);
	if (!*o->path)
		strcpy(o->path, "/");
}

static bool nv_method(const struct policy_rule *r, const char *method)
{
	char up[32];
	size_t i;

	if (!method)
		method = "GET";
	for (i = 0; method[i] && i + 1 < sizeof(up); i++)
		up[i] = (char)(method[i] >= 'a' && method[i] <= 'z' ?
				       method[i] - 'a' + 'A' :
				       method[i]);
	up[i] = '\0';
	for (size_t k = 0; k < r->nmethods; k++) {
		if (r->methods[k] == POLICY_M_ANY)
			return true;
		if (strcmp(policy_method_str(r->methods[k]), up) == 0)
			return true;
	}
	return false;
}

static bool nv_wild(const char *pat)
{
	return strchr(pat, '*') != NULL;
}

static bool nv_conn(const struct policy_rule *r, const struct policy_event *ev,
		    const char *hn, const struct nv_url *u)
{
	bool udp = ev->type == POLICY_EV_DNS || ev->type == POLICY_EV_UDP;

	if ((r->proto == POLICY_UDP) != udp || !nv_port(r, ev->dst_port))
		return false;
	switch (r->type) {
	case POLICY_IP:
		if (strcmp(r->target, ev->dst_ip) != 0)
			return false;
		break;
	case POLICY_CIDR:
		if (!nv_cidr(r->target, ev->dst_ip))
			return false;
		break;
	case POLICY_HOST:
	case POLICY_WILDCARD_HOST:
		if (!hn ||
		    !policy_host_match(r->target, nv_wild(r->target), hn))
			return false;
		break;
	case POLICY_URL:
	case POLICY_PATH:
		if (!u || strcmp(u->scheme, r->https ? "https" : "http") != 0)
			return false;
		if (*u->host &&
		    !policy_host_match(r->host, nv_wild(r->host), u->host))
			return false;
		if (!policy_path_match(r->path, u->path) ||
		    !nv_method(r, ev->method))
			return false;
		break;
	default:
		return false;
	}
	return nv_attrs(r, &ev->proc);
}

static int nv_match(const policy_t *p, const struct policy_event *ev)
{
	size_t n = policy_nrules(p);
	struct nv_url u, *up = NULL;
	const char *hn = NULL;

	if (ev->type == POLICY_EV_DNS && ev->name && *ev->name) {
		bool resolver = false;
		for (size_t i = 0; i < n && !resolver; i++) {
			const struct policy_rule *r = policy_rule(p, i);
			if ((r->type == POLICY_IP || r->type == POLICY_CIDR) &&
			    r->proto == POLICY_UDP)
				resolver = nv_conn(r, ev, NULL, NULL);
		}
		if (!resolver)
			return -1;
		for (size_t i = 0; i < n; i++) {
			const struct policy_rule *r = policy_rule(p, i);
			const char *pat;
			switch (r->type) {
			case POLICY_HOST:
			case POLICY_WILDCARD_HOST:
			case POLICY_DNS_HOST:
			case POLICY_DNS_WILDCARD_HOST:
				pat = r->target;
				break;
			case POLICY_URL:
			case POLICY_PATH:
				pat = r->host;
				break;
			default:
				continue;
			}
			if (policy_host_match(pat, nv_wild(pat), ev->name) &&
			    nv_attrs(r, &ev->proc))
				return (int)i;
		}
		return -1;
	}
	if (ev->url) {
		memset(&u, 0, sizeof(u));
		nv_parse_url(ev->url, &u);
		up = &u;
	}
	if (ev->host && *ev->host)
		hn = ev->host;
	else if (ev->name && *ev->name)
		hn = ev->name;
	else if (up && *up->host)
		hn = up->host;
	for (size_t i = 0; i < n; i++)
		if (nv_conn(policy_rule(p, i), ev, hn, up))
			return (int)i;
	return -1;
}

static const char *const ev_type_names[] = { "http", "https", "tcp", "udp",
					     "dns" };

#define RANDOM_RULES 200
#define RANDOM_EVENTS 4000

START_TEST(test_random_vs_linear)
{
	static char text[128 * 1024];
	struct rng g = { 0x9E3779B97F4A7C15ULL * (uint64_t)(_i + 1) };
	struct policy_diags d = { 0 };
	size_t len = 0, hits = 0;
	policy_t *p = NULL;

	text[0] = '\0';
	for (int i = 0; i < RANDOM_RULES; i++)
		gen_rule(&g, text, sizeof(text), &len);
	ck_assert_int_eq(policy_parse(text, len, NULL, &p, &d), 0);
	ck_assert_msg(policy_diags_count(&d, POLICY_DIAG_SYNTAX) == 0 &&
			      policy_diags_count(&d, POLICY_DIAG_RULE) == 0,
		      "seed %d: generated policy has errors: line %u: %s: %s",
		      _i, d.n ? d.v[0].line : 0, d.n ? d.v[0].text : "",
		      d.n ? d.v[0].msg : "");
	ck_assert_uint_eq(policy_nrules(p), RANDOM_RULES);
	for (int k = 0; k < RANDOM_EVENTS; k++) {
		struct gen_event ge;
		int got, want;

		gen_event(&g, &ge);
		got = policy_match(p, &ge.ev);
		want = nv_match(p, &ge.ev);
		hits += want >= 0;
		ck_assert_msg(got == want,
			      "seed %d event %d: %s ip=%s port=%lld host=%s "
			      "name=%s url=%s method=%s exe=%s cgroup=%s: "
			      "policy_match = %d, linear scan = %d",
			      _i, k, ev_type_names[ge.ev.type], ge.ev.dst_ip,
			      (long long)ge.ev.dst_port,
			      ge.ev.host ? ge.ev.host : "(null)",
			      ge.ev.name ? ge.ev.name : "(null)",
			      ge.ev.url ? ge.ev.url : "(null)",
			      ge.ev.method ? ge.ev.method : "(null)",
			      ge.ev.proc.exe ? ge.ev.proc.exe : "(null)",
			      ge.ev.proc.cgroup ? ge.ev.proc.cgroup : "(null)",
			      got, want);
	}
	/* the pools are meant to make matches common, not rare */
	ck_assert_msg(hits > RANDOM_EVENTS / 10, "seed %d: only %zu matches",
		      _i, hits);
	policy_free(p);
	policy_diags_fini(&d);
}
END_TEST

/* ---- the suite ------------------------------------------------------------ */

Suite *policy_match_suite(void)
{
	Suite *s = suite_create("policy_match");
	TCase *tc;

	tc = tcase_create("glob");
	tcase_add_loop_test(tc, test_glob, 0, (int)NELEMS(glob_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("host");
	tcase_add_loop_test(tc, test_host, 0, (int)NELEMS(host_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("path");
	tcase_add_loop_test(tc, test_path, 0, (int)NELEMS(path_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("match");
	tcase_add_loop_test(tc, test_match, 0, (int)NELEMS(match_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("many");
	tcase_add_loop_test(tc, test_many, 0, (int)NELEMS(many_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("random");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_random_vs_linear, 0, 6);
	suite_add_tcase(s, tc);
	return s;
}
