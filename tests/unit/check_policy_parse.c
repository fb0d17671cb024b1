/*
 * check_policy_parse.c - the policy grammar, header context, flattening,
 * rule rejection and validation diagnostics (reference section 1).
 *
 * Table-driven: every case is one row of a static table, run through
 * tcase_add_loop_test.  A row gives the policy text (and options), the
 * expected number of flattened rules, the expected fields of some of those
 * rules, and the expected diagnostics, rendered compactly:
 *
 *   ports    "443", "80,32526" or "*" (any); "?" skips the check
 *   methods  "GET|HEAD" in order, NULL for null (network rules)
 *   attrs    "k=v, k=`v`, k=\"v\"" (bare, backtick, double-quoted) in
 *            order; NULL for none; "?" skips the check
 *   diags    "S3 R5 W0": kind (Syntax, Rule, Warning) and line, sorted by
 *            line with the line-0 warnings last
 */
#include <check.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "suites.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define T_HOST POLICY_HOST
#define T_WILD POLICY_WILDCARD_HOST
#define T_IP POLICY_IP
#define T_CIDR POLICY_CIDR
#define T_URL POLICY_URL
#define T_PATH POLICY_PATH
#define T_DNSH POLICY_DNS_HOST
#define T_DNSW POLICY_DNS_WILDCARD_HOST
#define TCP POLICY_TCP
#define UDP POLICY_UDP

/* flags */
#define PT 1u
#define INS 2u

#define GH "GET|HEAD"
#define RUNNER_CG "cgroup=/system.slice/hosted-compute-agent.service"
#define AZURE_CG "cgroup=/azure.slice/walinuxagent.service"

struct xrule {
	int idx; /* rule index in the flattened list */
	enum policy_rule_type type;
	const char *target; /* NULL ends the list */
	const char *ports;
	enum policy_proto proto;
	const char *methods;
	const char *url_base;
	const char *attrs;
	unsigned flags;
	int line; /* 0: not checked; -1: expect 0 (preset rule) */
};

#define MAX_XRULES 7

struct pcase {
	const char *name;
	const char *text;
	const char *preset;
	const char *repo;
	bool validate;
	int rc;
	int nrules;
	const char *diags; /* NULL: none */
	const char *dtext; /* text of the first diagnostic, if set */
	struct xrule rules[MAX_XRULES];
};

/* One expected rule: index, type, target, ports, proto, then any of
 * .methods, .url_base, .attrs, .flags, .line. */
#define R(i, ty, tg, po, pr, ...)                                        \
	{                                                                \
		.idx = (i), .type = (ty), .target = (tg), .ports = (po), \
		.proto = (pr), __VA_ARGS__                               \
	}

/* A case with exactly one rule and no diagnostics. */
#define ONE(nm, tx, ...)                                            \
	{                                                           \
		.name = (nm), .text = (tx), .nrules = 1, .rules = { \
			R(0, __VA_ARGS__)                           \
		}                                                   \
	}

/* A single line that is a syntax error and yields no rule. */
#define BAD(nm, tx)                                                    \
	{                                                              \
		.name = (nm), .text = (tx), .nrules = 0, .diags = "S1" \
	}

/* ---- rendering ----------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static void cat(char *buf, size_t n,
						      const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;

	if (len + 1 >= n)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, n - len, fmt, ap);
	va_end(ap);
}

static void render_ports(const struct policy_rule *r, char *buf, size_t n)
{
	buf[0] = '\0';
	if (r->port_any) {
		cat(buf, n, "*");
		return;
	}
	for (size_t i = 0; i < r->nports; i++)
		cat(buf, n, "%s%" PRIu64, i ? "," : "", r->ports[i]);
}

static void render_methods(const struct policy_rule *r, char *buf, size_t n)
{
	buf[0] = '\0';
	for (size_t i = 0; i < r->nmethods; i++)
		cat(buf, n, "%s%s", i ? "|" : "",
		    policy_method_str((enum policy_method)r->methods[i]));
}

static void render_attrs(const struct policy_rule *r, char *buf, size_t n)
{
	buf[0] = '\0';
	for (size_t i = 0; i < r->nattrs; i++) {
		const struct policy_attr *a = &r->attrs[i];
		const char *q = a->form == POLICY_VAL_BACKTICK ? "`" :
				a->form == POLICY_VAL_QUOTED   ? "\"" :
								 "";
		cat(buf, n, "%s%s=%s%s%s", i ? ", " : "", a->key, q, a->value,
		    q);
	}
}

static unsigned diag_order(const struct policy_diag *d)
{
	return d->line ? d->line : UINT32_MAX;
}

static int diag_cmp(const void *a, const void *b)
{
	const struct policy_diag *x = *(const struct policy_diag *const *)a;
	const struct policy_diag *y = *(const struct policy_diag *const *)b;

	if (diag_order(x) != diag_order(y))
		return diag_order(x) < diag_order(y) ? -1 : 1;
	return (int)x->kind - (int)y->kind;
}

static void render_diags(const struct policy_diags *d, char *buf, size_t n)
{
	static const char kinds[] = "SRW";
	const struct policy_diag **v;

	buf[0] = '\0';
	if (!d->n)
		return;
	v = calloc(d->n, sizeof(*v));
	ck_assert_ptr_nonnull(v);
	for (size_t i = 0; i < d->n; i++)
		v[i] = &d->v[i];
	qsort(v, d->n, sizeof(*v), diag_cmp);
	for (size_t i = 0; i < d->n; i++)
		cat(buf, n, "%s%c%u", i ? " " : "",
		    v[i]->kind < POLICY_DIAG_KIND_MAX ? kinds[v[i]->kind] : '?',
		    v[i]->line);
	free(v);
}

static bool str_same(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static const char *nz(const char *s)
{
	return s ? s : "(null)";
}

/* ---- the generic case runner --------------------------------------------- */

static void check_rule(const char *name, const policy_t *p,
		       const struct xrule *x)
{
	const struct policy_rule *r = policy_rule(p, (size_t)x->idx);
	char buf[2048];

	ck_assert_msg(r != NULL, "%s: rule %d missing", name, x->idx);
	ck_assert_msg(r->type == x->type, "%s: rule %d type: got %s, want %s",
		      name, x->idx, policy_rule_type_str(r->type),
		      policy_rule_type_str(x->type));
	ck_assert_msg(str_same(r->target, x->target),
		      "%s: rule %d target: got '%s', want '%s'", name, x->idx,
		      nz(r->target), x->target);
	if (!str_same(x->ports, "?")) {
		render_ports(r, buf, sizeof(buf));
		ck_assert_msg(strcmp(buf, x->ports) == 0,
			      "%s: rule %d ports: got '%s', want '%s'", name,
			      x->idx, buf, x->ports);
	}
	ck_assert_msg(r->proto == x->proto,
		      "%s: rule %d protocol: got %s, want %s", name, x->idx,
		      policy_proto_str(r->proto), policy_proto_str(x->proto));
	if (x->methods) {
		ck_assert_msg(r->methods != NULL,
			      "%s: rule %d methods: got null, want '%s'", name,
			      x->idx, x->methods);
		render_methods(r, buf, sizeof(buf));
		ck_assert_msg(strcmp(buf, x->methods) == 0,
			      "%s: rule %d methods: got '%s', want '%s'", name,
			      x->idx, buf, x->methods);
	} else {
		render_methods(r, buf, sizeof(buf));
		ck_assert_msg(r->methods == NULL,
			      "%s: rule %d methods: got '%s', want null", name,
			      x->idx, buf);
	}
	ck_assert_msg(str_same(r->url_base, x->url_base),
		      "%s: rule %d url_base: got '%s', want '%s'", name, x->idx,
		      nz(r->url_base), nz(x->url_base));
	if (!str_same(x->attrs, "?")) {
		render_attrs(r, buf, sizeof(buf));
		ck_assert_msg(strcmp(buf, x->attrs ? x->attrs : "") == 0,
			      "%s: rule %d attrs: got '%s', want '%s'", name,
			      x->idx, buf, x->attrs ? x->attrs : "");
	}
	ck_assert_msg(r->passthrough == !!(x->flags & PT),
		      "%s: rule %d passthrough: got %d, want %d", name, x->idx,
		      r->passthrough, !!(x->flags & PT));
	ck_assert_msg(r->insecure == !!(x->flags & INS),
		      "%s: rule %d insecure: got %d, want %d", name, x->idx,
		      r->insecure, !!(x->flags & INS));
	if (x->line)
		ck_assert_msg(r->line == (x->line < 0 ? 0u : (unsigned)x->line),
			      "%s: rule %d line: got %u, want %d", name, x->idx,
			      r->line, x->line < 0 ? 0 : x->line);
}

static void run_case(const struct pcase *c)
{
	static int sentinel;
	struct policy_opts o = { .preset = c->preset,
				 .repo = c->repo,
				 .validate = c->validate };
	policy_t *p = (policy_t *)(void *)&sentinel;
	struct policy_diags d = { 0 };
	char buf[2048];
	int rc;

	rc = policy_parse(c->text, strlen(c->text), &o, &p, &d);
	ck_assert_msg(rc == c->rc, "%s: policy_parse returned %d, want %d",
		      c->name, rc, c->rc);
	if (c->rc < 0) {
		ck_assert_msg(p == NULL, "%s: *out not NULL on failure",
			      c->name);
		ck_assert_msg(d.n >= 1, "%s: no diagnostic on failure",
			      c->name);
		policy_diags_fini(&d);
		return;
	}
	ck_assert_msg(p != NULL, "%s: no policy", c->name);
	render_diags(&d, buf, sizeof(buf));
	ck_assert_msg(strcmp(buf, c->diags ? c->diags : "") == 0,
		      "%s: diagnostics: got '%s', want '%s'", c->name, buf,
		      c->diags ? c->diags : "");
	if (c->dtext) {
		ck_assert_msg(d.n > 0 && strcmp(d.v[0].text, c->dtext) == 0,
			      "%s: diagnostic text: got '%s', want '%s'",
			      c->name, d.n ? d.v[0].text : "(none)", c->dtext);
	}
	ck_assert_msg(policy_nrules(p) == (size_t)c->nrules,
		      "%s: rule count: got %zu, want %d", c->name,
		      policy_nrules(p), c->nrules);
	for (size_t i = 0; i < MAX_XRULES && c->rules[i].target; i++)
		check_rule(c->name, p, &c->rules[i]);
	policy_free(p);
	policy_diags_fini(&d);
}

/* ---- 1.1 lexical structure ----------------------------------------------- */

static const struct pcase lexical_cases[] = {
	{ .name = "empty policy", .text = "", .nrules = 0 },
	{ .name = "blank lines", .text = " \n\t\n  \t ", .nrules = 0 },
	{ .name = "comment line", .text = "# comment", .nrules = 0 },
	{ .name = "indented comment", .text = " \t# comment", .nrules = 0 },
	{ .name = "bare hash", .text = "#", .nrules = 0 },
	{ .name = "comment holding bad syntax",
	  .text = "# bad_host [x github.com#",
	  .nrules = 0 },
	{ .name = "non-ASCII in a comment",
	  .text = "# caf\xc3\xa9 \xe2\x9c\x93\ngithub.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "github.com", "443", TCP) } },
	ONE("plain host", "github.com", T_HOST, "github.com", "443", TCP),
	ONE("inline comment after space", "github.com # note", T_HOST,
	    "github.com", "443", TCP),
	ONE("inline comment after tab", "github.com\t#note", T_HOST,
	    "github.com", "443", TCP),
	ONE("empty inline comment", "github.com #", T_HOST, "github.com", "443",
	    TCP),
	ONE("non-ASCII in an inline comment", "github.com # \xc3\xbc", T_HOST,
	    "github.com", "443", TCP),
	ONE("leading and trailing ws", " \t github.com \t ", T_HOST,
	    "github.com", "443", TCP),
	ONE("ws after an inline comment", "github.com  # c  ", T_HOST,
	    "github.com", "443", TCP),
	BAD("hash glued to host", "github.com#x"),
	BAD("hash glued to port", "github.com:443#x"),
	BAD("hash glued to attribute", "github.com exe=/x#y"),
	BAD("hash glued to flag", "github.com passthrough#x"),
	{ .name = "header inline comment",
	  .text = "[:80] # web\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "80", TCP) } },
	{ .name = "header glued comment is an error",
	  .text = "[:80]#web\nfoo.com",
	  .nrules = 1,
	  .diags = "S1",
	  .rules = { R(0, T_HOST, "foo.com", "443", TCP) } },
	{ .name = "two rules in order",
	  .text = "a.com\nb.com",
	  .nrules = 2,
	  .rules = { R(0, T_HOST, "a.com", "443", TCP, .line = 1),
		     R(1, T_HOST, "b.com", "443", TCP, .line = 2) } },
	{ .name = "bad rule keeps the context",
	  .text = "[:80]\nbad_.com\nfoo.com",
	  .nrules = 1,
	  .diags = "S2",
	  .rules = { R(0, T_HOST, "foo.com", "80", TCP, .line = 3) } },
	{ .name = "bad header keeps the context",
	  .text = "[:80]\n[:8080 passthrough]\nfoo.com",
	  .nrules = 1,
	  .diags = "S2",
	  .rules = { R(0, T_HOST, "foo.com", "80", TCP) } },
	{ .name = "unterminated header keeps the context",
	  .text = "[:80/udp]\n[:8080\nfoo.com",
	  .nrules = 1,
	  .diags = "S2",
	  .rules = { R(0, T_HOST, "foo.com", "80", UDP) } },
	{ .name = "bad attrs header keeps the context",
	  .text = "[exe=/a]\n[exe=/b user=x]\nfoo.com",
	  .nrules = 1,
	  .diags = "S2",
	  .rules = { R(0, T_HOST, "foo.com", "443", TCP, .attrs = "exe=/a") } },
	{ .name = "syntax diagnostic text is trimmed",
	  .text = "  bad_host.com  ",
	  .nrules = 0,
	  .diags = "S1",
	  .dtext = "bad_host.com" },
	{ .name = "syntax diagnostic text keeps inner text",
	  .text = "\tbad_host.com\t# c\t",
	  .nrules = 0,
	  .diags = "S1",
	  .dtext = "bad_host.com\t# c" },
	{ .name = "line numbers count blanks and comments",
	  .text = "# c\n\n   \ngood.com\nbad_.com",
	  .nrules = 1,
	  .diags = "S5",
	  .rules = { R(0, T_HOST, "good.com", "443", TCP, .line = 4) } },
	{ .name = "several syntax errors",
	  .text = "bad_1.com\ngood.com\nbad_2.com\n[x\n",
	  .nrules = 1,
	  .diags = "S1 S3 S4" },
	BAD("NBSP before inline comment", "github.com\xc2\xa0# c"),
	BAD("NBSP between host and attribute", "github.com\xc2\xa0"
					       "exe=/x"),
	BAD("NBSP between flag and host", "github.com\xc2\xa0"
					  "passthrough"),
	BAD("NBSP after method", "GET\xc2\xa0"
				 "https://a.com/"),
	BAD("NBSP between attributes", "github.com exe=/x\xc2\xa0"
				       "arg=y"),
	BAD("NBSP inside header", "[:80\xc2\xa0"
				  "exe=/x]"),
	BAD("ideographic space between tokens", "github.com\xe3\x80\x80"
						"exe=/x"),
	BAD("em space before inline comment", "github.com\xe2\x80\x83# c"),
	BAD("BOM before a rule", "\xef\xbb\xbf"
				 "github.com"),
	BAD("BOM before a comment", "\xef\xbb\xbf# comment"),
	BAD("BOM before a header", "\xef\xbb\xbf[]"),
	{ .name = "BOM on the second line",
	  .text = "a.com\n\xef\xbb\xbf"
		  "b.com",
	  .nrules = 1,
	  .diags = "S2",
	  .rules = { R(0, T_HOST, "a.com", "443", TCP) } },
	ONE("tabs as separators", "GET\thttps://a.com/\t#c", T_URL,
	    "https://a.com/", "443", TCP, .methods = "GET"),
};

/* ---- 1.1 line breaks ----------------------------------------------------- */

#define BREAK_CASE(nm, br)                                                \
	{                                                                 \
		.name = (nm), .text = "a.com" br "bad_.com", .nrules = 1, \
		.diags = "S2", .rules = {                                 \
			R(0, T_HOST, "a.com", "443", TCP)                 \
		}                                                         \
	}

static const struct pcase linebreak_cases[] = {
	BREAK_CASE("LF", "\n"),
	BREAK_CASE("CRLF", "\r\n"),
	BREAK_CASE("CR", "\r"),
	BREAK_CASE("VT", "\v"),
	BREAK_CASE("FF", "\f"),
	BREAK_CASE("FS", "\x1c"),
	BREAK_CASE("GS", "\x1d"),
	BREAK_CASE("RS", "\x1e"),
	BREAK_CASE("NEL", "\xc2\x85"),
	BREAK_CASE("LS U+2028", "\xe2\x80\xa8"),
	BREAK_CASE("PS U+2029", "\xe2\x80\xa9"),
	{ .name = "CRLF CRLF is two breaks",
	  .text = "a.com\r\n\r\nbad_",
	  .nrules = 1,
	  .diags = "S3" },
	{ .name = "LF CR is two breaks",
	  .text = "a.com\n\rbad_",
	  .nrules = 1,
	  .diags = "S3" },
	{ .name = "CR CR is two breaks",
	  .text = "a.com\r\rbad_",
	  .nrules = 1,
	  .diags = "S3" },
	{ .name = "LS LS is two breaks",
	  .text = "a.com\xe2\x80\xa8\xe2\x80\xa8"
		  "bad_",
	  .nrules = 1,
	  .diags = "S3" },
	{ .name = "trailing newline",
	  .text = "a.com\n",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "a.com", "443", TCP) } },
	{ .name = "every break between rules",
	  .text = "a.com\rb.com\vc.com\fd.com\x1c"
		  "e.com\x1d"
		  "f.com\x1e"
		  "g.com\xc2\x85"
		  "h.com\xe2\x80\xa8"
		  "i.com\xe2\x80\xa9"
		  "j.com\r\nk.com\nl.com",
	  .nrules = 12,
	  .rules = { R(0, T_HOST, "a.com", "443", TCP, .line = 1),
		     R(5, T_HOST, "f.com", "443", TCP, .line = 6),
		     R(6, T_HOST, "g.com", "443", TCP, .line = 7),
		     R(8, T_HOST, "i.com", "443", TCP, .line = 9),
		     R(9, T_HOST, "j.com", "443", TCP, .line = 10),
		     R(11, T_HOST, "l.com", "443", TCP, .line = 12) } },
	{ .name = "U+0105 (byte 0x85) is not a break",
	  .text = "a.com # \xc4\x85\nbad_",
	  .nrules = 1,
	  .diags = "S2" },
	{ .name = "U+2018 (e2 80 98) is not a break",
	  .text = "a.com # \xe2\x80\x98\nbad_",
	  .nrules = 1,
	  .diags = "S2" },
	{ .name = "VT splits a backtick value",
	  .text = "foo.com arg=`a\vb`",
	  .nrules = 1,
	  .diags = "S2",
	  .rules = { R(0, T_HOST, "foo.com", "443", TCP, .attrs = "arg=`a") } },
	{ .name = "NEL splits a header",
	  .text = "[:80\xc2\x85]\nfoo.com",
	  .nrules = 1,
	  .diags = "S1 S2",
	  .rules = { R(0, T_HOST, "foo.com", "443", TCP, .line = 3) } },
	{ .name = "CR header context carries",
	  .text = "[:53/udp]\r8.8.8.8\r\n[]\r\nfoo.com",
	  .nrules = 2,
	  .rules = { R(0, T_IP, "8.8.8.8", "53", UDP, .line = 2),
		     R(1, T_HOST, "foo.com", "443", TCP, .line = 4) } },
};

/* ---- 1.2 / 1.6 headers and the header context ---------------------------- */

static const struct pcase header_cases[] = {
	{ .name = "[] resets",
	  .text = "[:80]\n[]\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "443", TCP) } },
	{ .name = "[] with comment and ws",
	  .text = "[:80]\n  [] # reset \nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "443", TCP) } },
	{ .name = "[ ] is an error and does not reset",
	  .text = "[:80]\n[ ]\nfoo.com",
	  .nrules = 1,
	  .diags = "S2",
	  .rules = { R(0, T_HOST, "foo.com", "80", TCP) } },
	BAD("[passthrough:443]", "[passthrough:443]"),
	BAD("[:443 passthrough]", "[:443 passthrough]"),
	BAD("[insecure passthrough]", "[insecure passthrough]"),
	BAD("[passthrough insecure]", "[passthrough insecure]"),
	BAD("[github.com]", "[github.com]"),
	BAD("[passthrough.com]", "[passthrough.com]"),
	BAD("[passthroughexe=/x]", "[passthroughexe=/x]"),
	BAD("[ :80] (ws after [)", "[ :80]"),
	BAD("[:80 ] (ws before ])", "[:80 ]"),
	BAD("[exe=/x :80]", "[exe=/x :80]"),
	BAD("[exe=/x passthrough]", "[exe=/x passthrough]"),
	BAD("[user=x] unknown key", "[user=x]"),
	BAD("[POST https://a.com]", "[POST https://a.com]"),
	BAD("[https://a.com POST]", "[https://a.com POST]"),
	BAD("[:] no port", "[:]"),
	BAD("unterminated header", "[:80"),
	BAD("[:80]] extra bracket", "[:80]]"),
	BAD("[:80] trailing text", "[:80] x"),
	BAD("[/udp] proto without port", "[/udp]"),
	BAD("[:53/UDP]", "[:53/UDP]"),
	BAD("[get] lower-case method", "[get]"),
	BAD("[GET POST] ws between methods", "[GET POST]"),
	BAD("[PASSTHROUGH]", "[PASSTHROUGH]"),
	BAD("[80] port without colon", "[80]"),
	BAD("[[:80]]", "[[:80]]"),
	BAD("[]#x glued comment", "[]#x"),
	BAD("[] followed by attrs", "[] exe=/x"),
	BAD("[exe=/x ] (ws before ])", "[exe=/x ]"),
	BAD("[GET ] (ws before ])", "[GET ]"),
	BAD("[insecure insecure]", "[insecure insecure]"),
	BAD("[arg[0]=x unterminated", "[arg[0]=x"),
	{ .name = "[insecure exe=/x]",
	  .text = "[insecure exe=/x]\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "443", TCP, .attrs = "exe=/x",
		       .flags = INS) } },
	{ .name = "[arg[0]=x] key with brackets in a header",
	  .text = "[arg[0]=x]\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "443", TCP,
		       .attrs = "arg[0]=x") } },
	{ .name = "[exe=/a[b] bare value with [",
	  .text = "[exe=/a[b]\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "443", TCP,
		       .attrs = "exe=/a[b") } },
	{ .name = "[passthrough exe=/x]",
	  .text = "[passthrough exe=/x]\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "443", TCP, .attrs = "exe=/x",
		       .flags = PT) } },
	{ .name = "[passthrough]",
	  .text = "[passthrough]\n*.foo.com",
	  .nrules = 1,
	  .rules = { R(0, T_WILD, "*.foo.com", "443", TCP, .flags = PT) } },
	{ .name = "[insecure]",
	  .text = "[insecure]\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "443", TCP, .flags = INS) } },
	{ .name = "[insecure arg=y] on a URL rule",
	  .text = "[insecure arg=y]\nhttps://a.com/",
	  .nrules = 1,
	  .rules = { R(0, T_URL, "https://a.com/", "443", TCP, .methods = GH,
		       .attrs = "arg=y", .flags = INS) } },
	{ .name = "[GET|HEAD exe=/x]",
	  .text = "[GET|HEAD exe=/x]\nhttps://a.com/",
	  .nrules = 1,
	  .rules = { R(0, T_URL, "https://a.com/", "443", TCP, .methods = GH,
		       .attrs = "exe=/x") } },
	{ .name = "[POST|PUT exe=/x]",
	  .text = "[POST|PUT exe=/x]\nhttps://a.com/",
	  .nrules = 1,
	  .rules = { R(0, T_URL, "https://a.com/", "443", TCP,
		       .methods = "POST|PUT", .attrs = "exe=/x") } },
	{ .name = "[:53/udp exe=/x]",
	  .text = "[:53/udp exe=/x]\n8.8.8.8",
	  .nrules = 1,
	  .rules = { R(0, T_IP, "8.8.8.8", "53", UDP, .attrs = "exe=/x") } },
	{ .name = "[https://h.com/p exe=/x]",
	  .text = "[https://h.com/p exe=/x]\n/q",
	  .nrules = 1,
	  .rules = { R(0, T_PATH, "/q", "443", TCP, .methods = GH,
		       .url_base = "https://h.com/p", .attrs = "exe=/x") } },
	{ .name = "attrs-only header",
	  .text = "[exe=/x arg=y]\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "443", TCP,
		       .attrs = "exe=/x, arg=y") } },
	{ .name = "attrs-only header, tabs and spaces",
	  .text = "[exe=/x \t arg=y]\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "443", TCP,
		       .attrs = "exe=/x, arg=y") } },
	{ .name = "header with leading and trailing ws",
	  .text = " \t[:80] \t\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "80", TCP) } },
	{ .name = "headers are not cumulative: attrs",
	  .text = "[exe=/a]\n[:80]\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "80", TCP) } },
	{ .name = "headers are not cumulative: port",
	  .text = "[:80]\n[exe=/a]\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "443", TCP, .attrs = "exe=/a") } },
	{ .name = "headers are not cumulative: flags",
	  .text = "[passthrough]\n[]\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "443", TCP) } },
	{ .name = "headers are not cumulative: insecure then port",
	  .text = "[insecure]\n[:8443]\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "8443", TCP) } },
	{ .name = "header context applies to all following rules",
	  .text = "[:80]\na.com\n# c\n\nb.com",
	  .nrules = 2,
	  .rules = { R(0, T_HOST, "a.com", "80", TCP),
		     R(1, T_HOST, "b.com", "80", TCP) } },
	{ .name = "rules before a header use the defaults",
	  .text = "a.com\n[:80]\nb.com",
	  .nrules = 2,
	  .rules = { R(0, T_HOST, "a.com", "443", TCP),
		     R(1, T_HOST, "b.com", "80", TCP) } },
	{ .name = "[*] method header",
	  .text = "[*]\nhttps://a.com/",
	  .nrules = 1,
	  .rules = { R(0, T_URL, "https://a.com/", "443", TCP,
		       .methods = "*") } },
	{ .name = "[GET|GET] repeated methods",
	  .text = "[GET|GET]\nhttps://a.com/",
	  .nrules = 1,
	  .rules = { R(0, T_URL, "https://a.com/", "443", TCP,
		       .methods = "GET|GET") } },
	{ .name = "method header ignored by network rules",
	  .text = "[POST]\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "443", TCP) } },
	{ .name = "method header reset by []",
	  .text = "[POST]\n[]\nhttps://a.com/",
	  .nrules = 1,
	  .rules = { R(0, T_URL, "https://a.com/", "443", TCP,
		       .methods = GH) } },
	{ .name = "[:*]",
	  .text = "[:*]\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "*", TCP) } },
	{ .name = "[:*|80] is any",
	  .text = "[:*|80]\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "*", TCP) } },
	{ .name = "[:80|*] is [80]",
	  .text = "[:80|*]\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "80", TCP) } },
	{ .name = "[:80|8080]",
	  .text = "[:80|8080]\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "80,8080", TCP) } },
	{ .name = "[:080] leading zero",
	  .text = "[:080]\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "80", TCP) } },
	{ .name = "[:53] leaves the protocol at tcp",
	  .text = "[:53]\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "53", TCP) } },
	{ .name = "[:53/tcp]",
	  .text = "[:53/tcp]\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "53", TCP) } },
	{ .name = "[:53/udp] then [:80] resets the protocol",
	  .text = "[:53/udp]\n[:80]\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "80", TCP) } },
	{ .name = "[:53/udp] rule with own port inherits udp",
	  .text = "[:53/udp]\n8.8.8.8:5353",
	  .nrules = 1,
	  .rules = { R(0, T_IP, "8.8.8.8", "5353", UDP) } },
	{ .name = "[:53/udp] rule without port",
	  .text = "[:53/udp]\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "53", UDP) } },
	{ .name = "[:53/udp] rule protocol overrides",
	  .text = "[:53/udp]\n8.8.8.8:5353/tcp",
	  .nrules = 1,
	  .rules = { R(0, T_IP, "8.8.8.8", "5353", TCP) } },
	{ .name = "[:53/udp] cidr and wildcard inherit",
	  .text = "[:53/udp]\n10.0.0.0/8\n*.a.com:5353",
	  .nrules = 2,
	  .rules = { R(0, T_CIDR, "10.0.0.0/8", "53", UDP),
		     R(1, T_WILD, "*.a.com", "5353", UDP) } },
	{ .name = "[:53/udp] URL rule stays tcp 443",
	  .text = "[:53/udp]\nhttps://a.com/",
	  .nrules = 1,
	  .rules = { R(0, T_URL, "https://a.com/", "443", TCP,
		       .methods = GH) } },
	{ .name = "[:53/udp] dns rule gets port and protocol",
	  .text = "[:53/udp]\ndns:a.com",
	  .nrules = 1,
	  .rules = { R(0, T_DNSH, "a.com", "53", UDP) } },
	{ .name = "[http://example.com] port leaks into host rule",
	  .text = "[http://example.com]\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "80", TCP) } },
	{ .name = "[https://example.com] port leaks into host rule",
	  .text = "[https://example.com]\nfoo.com:*\n1.2.3.4",
	  .nrules = 2,
	  .rules = { R(0, T_HOST, "foo.com", "*", TCP),
		     R(1, T_IP, "1.2.3.4", "443", TCP) } },
	{ .name = "URL-base explicit port leaks into host rule",
	  .text = "[https://example.com:8443/api]\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "8443", TCP) } },
	{ .name = "URL base resets a udp context",
	  .text = "[:53/udp]\n[http://a.com]\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "80", TCP) } },
	{ .name = "URL base stored exactly as written",
	  .text = "[https://Example.com:8443/api/v1/]\n/x",
	  .nrules = 1,
	  .rules = { R(0, T_PATH, "/x", "8443", TCP, .methods = GH,
		       .url_base = "https://Example.com:8443/api/v1/") } },
	{ .name = "http URL base with path gives port 80",
	  .text = "[http://a.com/api]\n/x",
	  .nrules = 1,
	  .rules = { R(0, T_PATH, "/x", "80", TCP, .methods = GH,
		       .url_base = "http://a.com/api") } },
	{ .name = "URL base with IPv4 host and port",
	  .text = "[http://10.0.0.1:8080]\n/x",
	  .nrules = 1,
	  .rules = { R(0, T_PATH, "/x", "8080", TCP, .methods = GH,
		       .url_base = "http://10.0.0.1:8080") } },
	{ .name = "URL base with wildcard host",
	  .text = "[https://*.github.com/api]\n/x",
	  .nrules = 1,
	  .rules = { R(0, T_PATH, "/x", "443", TCP, .methods = GH,
		       .url_base = "https://*.github.com/api") } },
	{ .name = "URL base with IPv4-prefixed hostname",
	  .text = "[https://10.0.0.1.nip.io]\n/x",
	  .nrules = 1,
	  .rules = { R(0, T_PATH, "/x", "443", TCP, .methods = GH,
		       .url_base = "https://10.0.0.1.nip.io") } },
	{ .name = "URL base with trailing slash only",
	  .text = "[https://a.com/]\n/x",
	  .nrules = 1,
	  .rules = { R(0, T_PATH, "/x", "443", TCP, .methods = GH,
		       .url_base = "https://a.com/") } },
	BAD("URL base localhost", "[https://localhost]"),
	BAD("URL base github.*", "[https://github.*]"),
	BAD("URL base query", "[https://a.com/x?y]"),
	BAD("URL base fragment", "[https://a.com/x#y]"),
	BAD("URL base empty port", "[https://a.com:]"),
	BAD("URL base upper-case scheme", "[HTTPS://a.com]"),
	BAD("URL base trailing dot", "[https://a.com.]"),
	BAD("URL base underscore", "[https://a_b.com]"),
	BAD("URL base ftp", "[ftp://a.com]"),
	BAD("URL base without host", "[https://]"),
	BAD("URL base passthrough", "[https://a.com passthrough]"),
	{ .name = "URL base leaves methods unset",
	  .text = "[POST]\n[https://a.com]\n/x",
	  .nrules = 1,
	  .rules = { R(0, T_PATH, "/x", "443", TCP, .methods = GH,
		       .url_base = "https://a.com") } },
	{ .name = "method header clears the URL base",
	  .text = "[https://a.com]\n[POST]\n/x",
	  .nrules = 0,
	  .diags = "R3" },
	{ .name = "URL rule ignores the URL base",
	  .text = "[https://a.com/base]\nhttps://b.com/x",
	  .nrules = 1,
	  .rules = { R(0, T_URL, "https://b.com/x", "443", TCP,
		       .methods = GH) } },
	{ .name = "URL rule ignores the URL-base port",
	  .text = "[https://a.com:8443]\nhttps://b.com/x",
	  .nrules = 1,
	  .rules = { R(0, T_URL, "https://b.com/x", "443", TCP,
		       .methods = GH) } },
	{ .name = "URL rule ignores the header port (https)",
	  .text = "[:8080]\nhttps://a.com/x",
	  .nrules = 1,
	  .rules = { R(0, T_URL, "https://a.com/x", "443", TCP,
		       .methods = GH) } },
	{ .name = "URL rule ignores the header port (http)",
	  .text = "[:8080]\nhttp://a.com/x",
	  .nrules = 1,
	  .rules = { R(0, T_URL, "http://a.com/x", "80", TCP, .methods = GH) } },
	{ .name = "URL rule gets header attrs",
	  .text = "[exe=/x]\nhttps://a.com/x",
	  .nrules = 1,
	  .rules = { R(0, T_URL, "https://a.com/x", "443", TCP, .methods = GH,
		       .attrs = "exe=/x") } },
	{ .name = "header passthrough ORed with rule flag",
	  .text = "[passthrough]\nfoo.com passthrough",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "443", TCP, .flags = PT) } },
	{ .name = "header insecure ORed with rule flag",
	  .text = "[insecure]\nfoo.com insecure\nbar.com",
	  .nrules = 2,
	  .rules = { R(0, T_HOST, "foo.com", "443", TCP, .flags = INS),
		     R(1, T_HOST, "bar.com", "443", TCP, .flags = INS) } },
};

/* ---- 1.4 / 1.5 ports and protocols --------------------------------------- */

static const struct pcase port_cases[] = {
	ONE("single port", "foo.com:80", T_HOST, "foo.com", "80", TCP),
	ONE("port list", "foo.com:80|443|8080", T_HOST, "foo.com",
	    "80,443,8080", TCP),
	ONE(":* is any", "foo.com:*", T_HOST, "foo.com", "*", TCP),
	ONE(":*|80 is any", "foo.com:*|80", T_HOST, "foo.com", "*", TCP),
	ONE(":80|* is [80]", "foo.com:80|*", T_HOST, "foo.com", "80", TCP),
	ONE(":80|*|443 drops the later *", "foo.com:80|*|443", T_HOST,
	    "foo.com", "80,443", TCP),
	ONE(":0080 leading zeros", "foo.com:0080", T_HOST, "foo.com", "80",
	    TCP),
	ONE(":0 accepted", "foo.com:0", T_HOST, "foo.com", "0", TCP),
	ONE(":99999 accepted", "foo.com:99999", T_HOST, "foo.com", "99999",
	    TCP),
	ONE(":80|80 duplicates kept", "foo.com:80|80", T_HOST, "foo.com",
	    "80,80", TCP),
	ONE("huge port accepted", "foo.com:99999999999999999999999", T_HOST,
	    "foo.com", "?", TCP),
	BAD(": alone", "foo.com:"),
	BAD(": alone with proto", "foo.com:/udp"),
	BAD(":80| trailing bar", "foo.com:80|"),
	BAD(":|80 leading bar", "foo.com:|80"),
	BAD(":-1", "foo.com:-1"),
	BAD(":80a", "foo.com:80a"),
	BAD("::80", "foo.com::80"),
	BAD("space before port", "foo.com :80"),
	BAD(":80-90 range", "foo.com:80-90"),
	BAD(":80,443 comma", "foo.com:80,443"),
	BAD(":** ", "foo.com:**"),
	ONE("/udp", "foo.com:53/udp", T_HOST, "foo.com", "53", UDP),
	ONE("/tcp", "foo.com:53/tcp", T_HOST, "foo.com", "53", TCP),
	ONE(":*/udp", "foo.com:*/udp", T_HOST, "foo.com", "*", UDP),
	ONE("port list /udp", "foo.com:53|5353/udp", T_HOST, "foo.com",
	    "53,5353", UDP),
	BAD("/UDP upper case", "foo.com:53/UDP"),
	BAD("/Tcp mixed case", "foo.com:53/Tcp"),
	BAD("host/udp without port", "foo.com/udp"),
	BAD("/icmp", "foo.com:53/icmp"),
	BAD("/ alone", "foo.com:53/"),
	BAD("/udp/tcp", "foo.com:53/udp/tcp"),
	ONE("ip port proto", "1.2.3.4:53/udp", T_IP, "1.2.3.4", "53", UDP),
	ONE("cidr port proto", "10.0.0.0/8:53/udp", T_CIDR, "10.0.0.0/8", "53",
	    UDP),
	ONE("wildcard port proto", "*.a.com:8443/udp", T_WILD, "*.a.com",
	    "8443", UDP),
	ONE("port, passthrough and attrs", "foo.com:443/tcp passthrough exe=/x",
	    T_HOST, "foo.com", "443", TCP, .attrs = "exe=/x", .flags = PT),
};

/* ---- 1.7 hostnames ------------------------------------------------------- */

#define A10 "aaaaaaaaaa"

static const struct pcase host_cases[] = {
	ONE("two labels", "github.com", T_HOST, "github.com", "443", TCP),
	ONE("single-letter labels", "a.b", T_HOST, "a.b", "443", TCP),
	ONE("many labels", "a.b.c.d.example.com", T_HOST, "a.b.c.d.example.com",
	    "443", TCP),
	ONE("case is kept", "GitHub.COM", T_HOST, "GitHub.COM", "443", TCP),
	ONE("label starting with a digit", "1password.com", T_HOST,
	    "1password.com", "443", TCP),
	ONE("all-digit labels, letter TLD", "123.456.com", T_HOST,
	    "123.456.com", "443", TCP),
	ONE("three numeric groups then TLD", "1.2.3.com", T_HOST, "1.2.3.com",
	    "443", TCP),
	ONE("TLD with digits after a letter", "example.c0m", T_HOST,
	    "example.c0m", "443", TCP),
	ONE("inner hyphens", "my--host.example.com", T_HOST,
	    "my--host.example.com", "443", TCP),
	ONE("punycode label", "xn--bcher-kva.example", T_HOST,
	    "xn--bcher-kva.example", "443", TCP),
	ONE("very long label", A10 A10 A10 A10 A10 A10 A10 A10 ".com", T_HOST,
	    A10 A10 A10 A10 A10 A10 A10 A10 ".com", "443", TCP),
	ONE("https.com is a host", "https.com", T_HOST, "https.com", "443",
	    TCP),
	ONE("http.example.com is a host", "http.example.com", T_HOST,
	    "http.example.com", "443", TCP),
	ONE("dns.example.com is a host", "dns.example.com", T_HOST,
	    "dns.example.com", "443", TCP),
	ONE("GET.example.com is a host", "GET.example.com", T_HOST,
	    "GET.example.com", "443", TCP),
	ONE("insecure.example.com insecure", "insecure.example.com insecure",
	    T_HOST, "insecure.example.com", "443", TCP, .flags = INS),
	ONE("foo.compassthrough is a host", "foo.compassthrough", T_HOST,
	    "foo.compassthrough", "443", TCP),
	BAD("localhost", "localhost"),
	BAD("passthrough alone", "passthrough"),
	BAD("insecure alone", "insecure"),
	BAD("US (0x1f) is not a line break", "a.com\x1f"
					     "b.com"),
	BAD("URL IPv4 prefix commits (PEG)", "https://1.2.3.4a.com/"),
	BAD("URL five numeric groups", "https://1.2.3.4.5/"),
	BAD("single label", "github"),
	BAD("numeric TLD 1.2.3", "1.2.3"),
	BAD("numeric TLD", "example.123"),
	BAD("TLD starting with a digit", "example.1com"),
	BAD("punycode TLD", "example.xn--p1ai"),
	BAD("hyphen in TLD", "example.co-m"),
	BAD("Unicode IDN label", "b\xc3\xbc"
				 "cher.example"),
	BAD("Unicode TLD", "example.\xd1\x80\xd1\x84"),
	BAD("underscore in label", "foo_bar.example.com"),
	BAD("underscore in TLD", "example.co_m"),
	BAD("leading hyphen", "-foo.example.com"),
	BAD("trailing hyphen", "foo-.example.com"),
	BAD("trailing dot", "github.com."),
	BAD("trailing dot with port", "github.com.:443"),
	BAD("leading dot", ".github.com"),
	BAD("empty label", "github..com"),
	BAD("IPv4-prefixed host", "1.2.3.4.example.com"),
	BAD("IPv4-prefixed nip.io host", "10.0.0.1.nip.io"),
	BAD("digit groups beyond octet range", "999.1.1.1.example.com"),
	BAD("host followed by :/", "example.com:/x"),
	BAD("host with path", "example.com/x"),
	BAD("host with port and path", "example.com:80/x"),
	BAD("host with scheme-like prefix", "example.com://x"),
	BAD("host with @", "user@example.com"),
	ONE("IPv4-prefixed host valid in a URL", "https://10.0.0.1.nip.io/",
	    T_URL, "https://10.0.0.1.nip.io/", "443", TCP, .methods = GH),
	ONE("IPv4-prefixed host valid in a URL (2)",
	    "https://1.2.3.4.example.com/x", T_URL,
	    "https://1.2.3.4.example.com/x", "443", TCP, .methods = GH),
	ONE("punycode in a URL", "https://xn--bcher-kva.example/", T_URL,
	    "https://xn--bcher-kva.example/", "443", TCP, .methods = GH),
	BAD("URL localhost", "https://localhost/"),
	BAD("URL underscore", "https://a_b.example.com/"),
	BAD("URL trailing dot", "https://github.com./"),
	BAD("URL Unicode host", "https://b\xc3\xbc"
				"cher.example/"),
	BAD("URL numeric TLD", "https://256.1.1.1/"),
	BAD("URL punycode TLD", "https://example.xn--p1ai/"),
};

/* ---- 1.7 wildcards ------------------------------------------------------- */

#define WILD_OK(pat) ONE("valid wildcard " pat, pat, T_WILD, pat, "443", TCP)

static const struct pcase wildcard_cases[] = {
	WILD_OK("*.example.com"),
	WILD_OK("*.com"),
	WILD_OK("derp*.example.com"),
	WILD_OK("*-prod.example.com"),
	WILD_OK("ex*mple.com"),
	WILD_OK("a*b*c.example.com"),
	WILD_OK("**.example.com"),
	WILD_OK("*.derp*.example.com"),
	WILD_OK("*.*.example.com"),
	WILD_OK("-*.example.com"),
	WILD_OK("*-.example.com"),
	WILD_OK("*.GitHub.COM"),
	WILD_OK("hosted-compute-watchdog-prod-*.githubapp.com"),
	BAD("wildcard *", "*"),
	BAD("wildcard *.", "*."),
	BAD("wildcard github.*", "github.*"),
	BAD("wildcard github.com*", "github.com*"),
	BAD("wildcard api.derp*.example.com", "api.derp*.example.com"),
	BAD("wildcard a*.b*.example.com", "a*.b*.example.com"),
	BAD("wildcard foo?.example.com", "foo?.example.com"),
	BAD("wildcard f[o].example.com", "f[o].example.com"),
	BAD("wildcard trailing dot", "*.github.com."),
	BAD("wildcard *github without dot", "*github"),
	BAD("wildcard *.*", "*.*"),
	BAD("wildcard *..com", "*..com"),
	BAD("wildcard *.-foo.com", "*.-foo.com"),
	BAD("wildcard with underscore", "*.a_b.com"),
	BAD("wildcard Unicode", "*.b\xc3\xbc"
				"cher.example"),
	ONE("wildcard with port and proto", "*.example.com:8443/udp", T_WILD,
	    "*.example.com", "8443", UDP),
	ONE("wildcard passthrough", "*.example.com passthrough", T_WILD,
	    "*.example.com", "443", TCP, .flags = PT),
	ONE("dns subdomain wildcard", "dns:*.example.com", T_DNSW,
	    "*.example.com", "443", TCP),
	ONE("dns label wildcard", "dns:sub*.example.com", T_DNSW,
	    "sub*.example.com", "443", TCP),
	BAD("dns bare *", "dns:*"),
	BAD("dns wildcard not first label", "dns:api.derp*.example.com"),
	BAD("dns github.*", "dns:github.*"),
	ONE("URL subdomain wildcard host", "https://*.github.com/x", T_URL,
	    "https://*.github.com/x", "443", TCP, .methods = GH),
	ONE("URL label wildcard host", "https://derp*.github.com/x", T_URL,
	    "https://derp*.github.com/x", "443", TCP, .methods = GH),
	BAD("URL host github.*", "https://github.*/x"),
	BAD("URL wildcard not first label", "https://api.*.github.com/x"),
	BAD("URL host *", "https://*/x"),
};

/* ---- 1.8 IPv4 and CIDR --------------------------------------------------- */

static const struct pcase ip_cases[] = {
	ONE("ip", "1.2.3.4", T_IP, "1.2.3.4", "443", TCP),
	ONE("ip zeros", "0.0.0.0", T_IP, "0.0.0.0", "443", TCP),
	ONE("ip all 255", "255.255.255.255", T_IP, "255.255.255.255", "443",
	    TCP),
	ONE("ip mixed octet widths", "192.168.1.254", T_IP, "192.168.1.254",
	    "443", TCP),
	ONE("ip 249 and 199", "249.199.100.10", T_IP, "249.199.100.10", "443",
	    TCP),
	ONE("ip with port", "1.2.3.4:22", T_IP, "1.2.3.4", "22", TCP),
	ONE("ip with comment", "1.2.3.4 # dns", T_IP, "1.2.3.4", "443", TCP),
	ONE("ip insecure accepted", "1.2.3.4 insecure", T_IP, "1.2.3.4", "443",
	    TCP, .flags = INS),
	ONE("ip attrs", "1.2.3.4 exe=/x", T_IP, "1.2.3.4", "443", TCP,
	    .attrs = "exe=/x"),
	BAD("octet 256", "1.2.3.256"),
	BAD("octet 300 first", "300.2.3.4"),
	BAD("octet leading zero last", "1.2.3.04"),
	BAD("octet leading zero first", "01.2.3.4"),
	BAD("octet 00", "1.2.00.4"),
	BAD("three octets", "1.2.3"),
	BAD("five octets", "1.2.3.4.5"),
	BAD("ip trailing dot", "1.2.3.4."),
	BAD("ip with letters", "1.2.3.4a"),
	BAD("IPv4 prefix commits (PEG)", "1.2.3.4a.com"),
	BAD("dns:ip", "dns:1.2.3.4"),
	ONE("cidr", "10.0.0.0/8", T_CIDR, "10.0.0.0/8", "443", TCP),
	ONE("cidr host bits kept", "10.1.2.3/8", T_CIDR, "10.1.2.3/8", "443",
	    TCP),
	ONE("cidr /0", "0.0.0.0/0", T_CIDR, "0.0.0.0/0", "443", TCP),
	ONE("cidr /32", "1.2.3.4/32", T_CIDR, "1.2.3.4/32", "443", TCP),
	ONE("cidr /30", "1.2.3.4/30", T_CIDR, "1.2.3.4/30", "443", TCP),
	ONE("cidr /19", "1.2.3.4/19", T_CIDR, "1.2.3.4/19", "443", TCP),
	ONE("cidr /9", "1.2.3.4/9", T_CIDR, "1.2.3.4/9", "443", TCP),
	ONE("cidr attrs", "10.0.0.0/8 exe=/x", T_CIDR, "10.0.0.0/8", "443", TCP,
	    .attrs = "exe=/x"),
	ONE("cidr insecure accepted", "10.0.0.0/8 insecure", T_CIDR,
	    "10.0.0.0/8", "443", TCP, .flags = INS),
	BAD("cidr /33", "1.2.3.4/33"),
	BAD("cidr /08 leading zero", "1.2.3.4/08"),
	BAD("cidr /00", "1.2.3.4/00"),
	BAD("cidr /100", "1.2.3.4/100"),
	BAD("cidr /-1", "1.2.3.4/-1"),
	BAD("cidr empty mask", "1.2.3.4/"),
	BAD("cidr letter mask", "1.2.3.4/x"),
	BAD("cidr proto without port", "10.0.0.0/8/udp"),
	BAD("cidr bad octet", "10.0.0.256/8"),
	BAD("cidr leading-zero octet", "10.0.0.01/8"),
	BAD("cidr two masks", "10.0.0.0/8/8"),
	{ .name = "ip passthrough rejected",
	  .text = "1.2.3.4 passthrough",
	  .nrules = 0,
	  .diags = "R1",
	  .dtext = "1.2.3.4 passthrough" },
	{ .name = "cidr passthrough rejected",
	  .text = "10.0.0.0/8 passthrough",
	  .nrules = 0,
	  .diags = "R1" },
};

/* ---- 1.3 / 1.9 URL rules ------------------------------------------------- */

static const struct pcase url_cases[] = {
	ONE("URL root", "https://github.com/", T_URL, "https://github.com/",
	    "443", TCP, .methods = GH),
	BAD("URL without path", "https://github.com"),
	BAD("URL without path, with port", "https://github.com:8443"),
	BAD("URL without path, with comment", "https://github.com # c"),
	ONE("http URL", "http://github.com/x", T_URL, "http://github.com/x",
	    "80", TCP, .methods = GH),
	ONE("URL explicit port", "https://a.com:8443/x", T_URL,
	    "https://a.com:8443/x", "8443", TCP, .methods = GH),
	ONE("URL port list kept in target", "https://e.com:80|443/x", T_URL,
	    "https://e.com:80|443/x", "80,443", TCP, .methods = GH),
	ONE("URL any port", "https://e.com:*/x", T_URL, "https://e.com:*/x",
	    "*", TCP, .methods = GH),
	ONE("URL :*|80 is any", "http://e.com:*|80/x", T_URL,
	    "http://e.com:*|80/x", "*", TCP, .methods = GH),
	ONE("URL :80|* is [80]", "http://e.com:80|*/x", T_URL,
	    "http://e.com:80|*/x", "80", TCP, .methods = GH),
	ONE("URL leading-zero port", "https://e.com:0443/x", T_URL,
	    "https://e.com:0443/x", "443", TCP, .methods = GH),
	BAD("URL empty port", "https://e.com:/x"),
	ONE("URL port 0", "https://e.com:0/x", T_URL, "https://e.com:0/x", "0",
	    TCP, .methods = GH),
	ONE("URL IPv4 host", "https://1.2.3.4/x", T_URL, "https://1.2.3.4/x",
	    "443", TCP, .methods = GH),
	ONE("URL IPv4 host and port", "http://1.2.3.4:8080/x", T_URL,
	    "http://1.2.3.4:8080/x", "8080", TCP, .methods = GH),
	ONE("URL /udp is a path", "https://a.com:53/udp", T_URL,
	    "https://a.com:53/udp", "53", TCP, .methods = GH),
	ONE("URL case kept", "https://GitHub.com/Foo/BAR", T_URL,
	    "https://GitHub.com/Foo/BAR", "443", TCP, .methods = GH),
	ONE("URL every path character", "https://a.com/Az_09.~*/%2F+-x/", T_URL,
	    "https://a.com/Az_09.~*/%2F+-x/", "443", TCP, .methods = GH),
	ONE("URL double slash path", "https://a.com//x//", T_URL,
	    "https://a.com//x//", "443", TCP, .methods = GH),
	ONE("URL comment after path", "https://github.com/a # frag", T_URL,
	    "https://github.com/a", "443", TCP, .methods = GH),
	ONE("URL insecure", "https://a.com/ insecure", T_URL, "https://a.com/",
	    "443", TCP, .methods = GH, .flags = INS),
	ONE("URL insecure then attrs", "https://a.com/ insecure exe=/x", T_URL,
	    "https://a.com/", "443", TCP, .methods = GH, .attrs = "exe=/x",
	    .flags = INS),
	ONE("URL attrs", "https://a.com/x exe=/x arg=y", T_URL,
	    "https://a.com/x", "443", TCP, .methods = GH,
	    .attrs = "exe=/x, arg=y"),
	BAD("URL upper-case scheme", "HTTPS://github.com/"),
	BAD("URL mixed-case scheme", "Https://github.com/"),
	BAD("URL ftp scheme", "ftp://github.com/"),
	BAD("URL ws scheme", "wss://github.com/"),
	BAD("URL single slash", "https:/github.com/"),
	BAD("URL query", "https://github.com/a?b=c"),
	BAD("URL bare ?", "https://github.com/?"),
	BAD("URL fragment", "https://github.com/a#frag"),
	BAD("URL @ in path", "https://a.com/@scope/x"),
	BAD("URL : in path", "https://a.com/a:b"),
	BAD("URL = in path", "https://a.com/a=b"),
	BAD("URL ; in path", "https://a.com/a;b"),
	BAD("URL ! in path", "https://a.com/a!b"),
	BAD("URL $ in path", "https://a.com/a$b"),
	BAD("URL & in path", "https://a.com/a&b"),
	BAD("URL ' in path", "https://a.com/a'b"),
	BAD("URL ( in path", "https://a.com/a(b)"),
	BAD("URL , in path", "https://a.com/a,b"),
	BAD("URL non-ASCII in path", "https://a.com/caf\xc3\xa9"),
	BAD("URL space in path", "https://a.com/a b"),
	BAD("URL userinfo", "https://u@a.com/"),
	BAD("URL attrs then insecure", "https://a.com/ exe=/x insecure"),
	BAD("URL passthrough", "https://a.com/ passthrough"),
	BAD("URL insecure passthrough", "https://a.com/ insecure passthrough"),
	BAD("URL passthrough insecure", "https://a.com/ passthrough insecure"),
	BAD("URL insecure twice", "https://a.com/ insecure insecure"),
	BAD("URL junk after insecure", "https://a.com:443/tcp/x insecure/"),
};

/* ---- 1.9 path rules ------------------------------------------------------ */

static const struct pcase path_cases[] = {
	{ .name = "path rule under a URL base",
	  .text = "[https://api.github.com/v1/repos]\n/*/releases",
	  .nrules = 1,
	  .rules = { R(0, T_PATH, "/*/releases", "443", TCP, .methods = GH,
		       .url_base = "https://api.github.com/v1/repos",
		       .line = 2) } },
	{ .name = "path rule without a URL base is rejected",
	  .text = "/x",
	  .nrules = 0,
	  .diags = "R1" },
	{ .name = "rejected path rule diagnostic text",
	  .text = "\n  /x exe=/y  ",
	  .nrules = 0,
	  .diags = "R2",
	  .dtext = "/x exe=/y" },
	{ .name = "path rule under a port header is rejected",
	  .text = "[:8080]\n/x",
	  .nrules = 0,
	  .diags = "R2" },
	{ .name = "path rule under [insecure] is rejected",
	  .text = "[insecure]\n/x",
	  .nrules = 0,
	  .diags = "R2" },
	{ .name = "path rule after [] is rejected",
	  .text = "[https://a.com]\n[]\n/x",
	  .nrules = 0,
	  .diags = "R3" },
	{ .name = "path rule with a method, no base",
	  .text = "POST /x",
	  .nrules = 0,
	  .diags = "R1" },
	{ .name = "path root",
	  .text = "[https://a.com]\n/",
	  .nrules = 1,
	  .rules = { R(0, T_PATH, "/", "443", TCP, .methods = GH,
		       .url_base = "https://a.com") } },
	{ .name = "path rule methods",
	  .text = "[https://a.com]\nPOST|PUT /upload",
	  .nrules = 1,
	  .rules = { R(0, T_PATH, "/upload", "443", TCP, .methods = "POST|PUT",
		       .url_base = "https://a.com") } },
	{ .name = "path rule tab after method",
	  .text = "[https://a.com]\n*\t/upload",
	  .nrules = 1,
	  .rules = { R(0, T_PATH, "/upload", "443", TCP, .methods = "*",
		       .url_base = "https://a.com") } },
	{ .name = "path rule insecure",
	  .text = "[https://a.com]\n/a insecure",
	  .nrules = 1,
	  .rules = { R(0, T_PATH, "/a", "443", TCP, .methods = GH,
		       .url_base = "https://a.com", .flags = INS) } },
	{ .name = "path rule insecure and attrs",
	  .text = "[https://a.com]\n/a insecure exe=/x",
	  .nrules = 1,
	  .rules = { R(0, T_PATH, "/a", "443", TCP, .methods = GH,
		       .url_base = "https://a.com", .attrs = "exe=/x",
		       .flags = INS) } },
	{ .name = "path attrs merged over URL-base attrs",
	  .text = "[https://a.com exe=/x]\n/p arg=y",
	  .nrules = 1,
	  .rules = { R(0, T_PATH, "/p", "443", TCP, .methods = GH,
		       .url_base = "https://a.com",
		       .attrs = "exe=/x, arg=y") } },
	{ .name = "path port from URL base",
	  .text = "[http://a.com:8080/api]\n/v1",
	  .nrules = 1,
	  .rules = { R(0, T_PATH, "/v1", "8080", TCP, .methods = GH,
		       .url_base = "http://a.com:8080/api") } },
	{ .name = "URL base persists over several path rules",
	  .text = "[https://a.com]\n/a\n\n# c\nGET /b",
	  .nrules = 2,
	  .rules = { R(0, T_PATH, "/a", "443", TCP, .methods = GH,
		       .url_base = "https://a.com"),
		     R(1, T_PATH, "/b", "443", TCP, .methods = "GET",
		       .url_base = "https://a.com", .line = 5) } },
	{ .name = "bad URL-base header keeps the previous base",
	  .text = "[https://a.com]\n[https://b_c.com]\n/x",
	  .nrules = 1,
	  .diags = "S2",
	  .rules = { R(0, T_PATH, "/x", "443", TCP, .methods = GH,
		       .url_base = "https://a.com") } },
	{ .name = "path query rejected",
	  .text = "[https://a.com]\n/a?b",
	  .nrules = 0,
	  .diags = "S2" },
	{ .name = "path fragment rejected",
	  .text = "[https://a.com]\n/a#b",
	  .nrules = 0,
	  .diags = "S2" },
	{ .name = "path passthrough rejected by the grammar",
	  .text = "[https://a.com]\n/a passthrough",
	  .nrules = 0,
	  .diags = "S2" },
	{ .name = "path attrs then insecure",
	  .text = "[https://a.com]\n/a exe=/x insecure",
	  .nrules = 0,
	  .diags = "S2" },
	{ .name = "path lower-case method",
	  .text = "[https://a.com]\nget /x",
	  .nrules = 0,
	  .diags = "S2" },
	{ .name = "path without leading slash",
	  .text = "[https://a.com]\nx/y",
	  .nrules = 0,
	  .diags = "S2" },
	{ .name = "path with method glued",
	  .text = "[https://a.com]\nGET/x",
	  .nrules = 0,
	  .diags = "S2" },
	{ .name = "path with @",
	  .text = "[https://a.com]\n/@scope/x",
	  .nrules = 0,
	  .diags = "S2" },
	{ .name = "URL and host rules under a URL base",
	  .text = "[https://a.com/base]\n/p\nhttps://b.com/q\nc.com",
	  .nrules = 3,
	  .rules = { R(0, T_PATH, "/p", "443", TCP, .methods = GH,
		       .url_base = "https://a.com/base"),
		     R(1, T_URL, "https://b.com/q", "443", TCP, .methods = GH),
		     R(2, T_HOST, "c.com", "443", TCP) } },
};

/* ---- 1.9 methods --------------------------------------------------------- */

static const struct pcase method_cases[] = {
	ONE("method prefix", "GET https://a.com/", T_URL, "https://a.com/",
	    "443", TCP, .methods = "GET"),
	ONE("method list", "GET|POST https://a.com/", T_URL, "https://a.com/",
	    "443", TCP, .methods = "GET|POST"),
	ONE("method order kept", "POST|GET https://a.com/", T_URL,
	    "https://a.com/", "443", TCP, .methods = "POST|GET"),
	ONE("every method token",
	    "GET|HEAD|POST|PUT|DELETE|PATCH|OPTIONS "
	    "https://a.com/",
	    T_URL, "https://a.com/", "443", TCP,
	    .methods = "GET|HEAD|POST|PUT|DELETE|PATCH|OPTIONS"),
	ONE("OPTIONS alone", "OPTIONS https://a.com/", T_URL, "https://a.com/",
	    "443", TCP, .methods = "OPTIONS"),
	ONE("DELETE alone", "DELETE http://a.com/x", T_URL, "http://a.com/x",
	    "80", TCP, .methods = "DELETE"),
	ONE("star method", "* https://a.com/", T_URL, "https://a.com/", "443",
	    TCP, .methods = "*"),
	ONE("star in a list", "GET|* https://a.com/", T_URL, "https://a.com/",
	    "443", TCP, .methods = "GET|*"),
	ONE("repeated tokens", "GET|GET|HEAD https://a.com/", T_URL,
	    "https://a.com/", "443", TCP, .methods = "GET|GET|HEAD"),
	ONE("tab after method", "POST\thttps://a.com/", T_URL, "https://a.com/",
	    "443", TCP, .methods = "POST"),
	ONE("several ws after method", "POST  \t https://a.com/", T_URL,
	    "https://a.com/", "443", TCP, .methods = "POST"),
	ONE("leading ws before method", "  PUT https://a.com/", T_URL,
	    "https://a.com/", "443", TCP, .methods = "PUT"),
	ONE("method prefix not stored in target", "PATCH https://a.com/x",
	    T_URL, "https://a.com/x", "443", TCP, .methods = "PATCH"),
	BAD("method glued to URL", "GEThttps://a.com/"),
	BAD("lower-case method", "get https://a.com/"),
	BAD("mixed-case method", "Get https://a.com/"),
	BAD("lower-case method in a list", "GET|post https://a.com/"),
	BAD("CONNECT", "CONNECT https://a.com/"),
	BAD("TRACE", "TRACE https://a.com/"),
	BAD("ws around bar", "GET | POST https://a.com/"),
	BAD("trailing bar", "GET| https://a.com/"),
	BAD("leading bar", "|GET https://a.com/"),
	BAD("comma list", "GET,POST https://a.com/"),
	BAD("method on a host rule", "GET github.com"),
	BAD("method on an IP rule", "GET 1.2.3.4"),
	BAD("method on a dns rule", "GET dns:a.com"),
	BAD("method after URL", "https://a.com/ GET"),
	{ .name = "method header inherited by URL rule",
	  .text = "[GET|POST]\nhttps://a.com/x",
	  .nrules = 1,
	  .rules = { R(0, T_URL, "https://a.com/x", "443", TCP,
		       .methods = "GET|POST") } },
	{ .name = "rule methods override the header",
	  .text = "[GET|POST]\nPUT https://a.com/x",
	  .nrules = 1,
	  .rules = { R(0, T_URL, "https://a.com/x", "443", TCP,
		       .methods = "PUT") } },
};

/* ---- 1.11 attributes ----------------------------------------------------- */

#define ATTR(nm, tx, at) ONE(nm, tx, T_HOST, "foo.com", "443", TCP, .attrs = at)

#define ARGS10(d)                                                      \
	" arg[" #d "0]=x arg[" #d "1]=x arg[" #d "2]=x arg[" #d "3]=x" \
	" arg[" #d "4]=x arg[" #d "5]=x arg[" #d "6]=x arg[" #d "7]=x" \
	" arg[" #d "8]=x arg[" #d "9]=x"
#define EXE5 " exe=/a exe=/a exe=/a exe=/a exe=/a"

static const struct pcase attr_cases[] = {
	ATTR("bare value", "foo.com exe=/usr/bin/curl", "exe=/usr/bin/curl"),
	ATTR("bare glob value", "foo.com exe=/usr/bin/*", "exe=/usr/bin/*"),
	ATTR("backtick value with space", "foo.com arg=`hello *.txt`",
	     "arg=`hello *.txt`"),
	ATTR("quoted value with space", "foo.com arg=\"a b\"", "arg=\"a b\""),
	ATTR("backtick with # and ]", "foo.com arg=`a #b]c`", "arg=`a #b]c`"),
	ATTR("quoted with # and ]", "foo.com arg=\"a #b]c\"", "arg=\"a #b]c\""),
	ATTR("backtick with character class", "foo.com arg=`[ab]*`",
	     "arg=`[ab]*`"),
	ATTR("quoted with backtick inside", "foo.com arg=\"a`b\"",
	     "arg=\"a`b\""),
	ATTR("backtick with quote inside", "foo.com arg=`a\"b`", "arg=`a\"b`"),
	ATTR("empty quoted value", "foo.com exe=\"\"", "exe=\"\""),
	ATTR("empty backtick value", "foo.com exe=``", "exe=``"),
	ATTR("unterminated quote is bare", "foo.com arg=\"abc", "arg=\"abc"),
	ATTR("unterminated backtick is bare", "foo.com arg=`abc", "arg=`abc"),
	ATTR("unterminated quote then comment", "foo.com arg=\"abc # x",
	     "arg=\"abc"),
	ATTR("quote inside a bare value", "foo.com exe=/a\"b", "exe=/a\"b"),
	ATTR("[ inside a bare value", "foo.com exe=/a[b", "exe=/a[b"),
	ATTR("= inside a bare value", "foo.com arg=--x=y", "arg=--x=y"),
	ATTR(": inside a bare value", "foo.com image=node:20", "image=node:20"),
	ATTR("non-ASCII bare value", "foo.com exe=/tmp/\xc3\xbc",
	     "exe=/tmp/\xc3\xbc"),
	ATTR("bare then comment", "foo.com exe=/a #b", "exe=/a"),
	ATTR("backtick then comment", "foo.com exe=`/a b` # c", "exe=`/a b`"),
	BAD("backtick value glued to next text", "foo.com arg=`a`b"),
	ATTR("all keys in order",
	     "foo.com exe=/e arg=a arg[0]=z step=s action=o/r cgroup=@docker "
	     "image=i",
	     "exe=/e, arg=a, arg[0]=z, step=s, action=o/r, cgroup=@docker, "
	     "image=i"),
	ATTR("arg[1]", "foo.com arg[1]=x", "arg[1]=x"),
	ATTR("arg[01] and arg[1] are distinct keys",
	     "foo.com arg[01]=x arg[1]=y", "arg[01]=x, arg[1]=y"),
	ATTR("huge arg index", "foo.com arg[99999999999999999999]=x",
	     "arg[99999999999999999999]=x"),
	ATTR("tabs between attributes", "foo.com\texe=/x\t\targ=y",
	     "exe=/x, arg=y"),
	ATTR("cgroup quoted keeps its form", "foo.com cgroup=\"/x/*\"",
	     "cgroup=\"/x/*\""),
	ATTR("duplicate key: last wins", "foo.com exe=/a exe=/b", "exe=/b"),
	ATTR("duplicate key: last form wins", "foo.com exe=`/a` exe=\"/b\"",
	     "exe=\"/b\""),
	ATTR("duplicate key keeps its first position",
	     "foo.com exe=/a arg=x exe=/b", "exe=/b, arg=x"),
	ATTR("40 duplicate keys",
	     "foo.com" EXE5 EXE5 EXE5 EXE5 EXE5 EXE5 EXE5 EXE5 " exe=/b",
	     "exe=/b"),
	ATTR("40 distinct keys",
	     "foo.com" ARGS10(1) ARGS10(2) ARGS10(3) ARGS10(4), "?"),
	ATTR("non-ASCII backtick value", "foo.com arg=`\xc3\xbc x`",
	     "arg=`\xc3\xbc x`"),
	ATTR("NBSP inside a quoted value",
	     "foo.com arg=\"a\xc2\xa0"
	     "b\"",
	     "arg=\"a\xc2\xa0"
	     "b\""),
	ATTR("tab inside a backtick value", "foo.com arg=`a\tb`", "arg=`a\tb`"),
	BAD("US (0x1f) ends a bare value", "foo.com exe=/a\x1f"
					   "b"),
	BAD("empty bare value", "foo.com exe="),
	BAD("empty bare value before comment", "foo.com exe= # c"),
	BAD("unterminated quote with space", "foo.com arg=\"a b"),
	BAD("] in a bare value", "foo.com exe=/a]b"),
	BAD("# glued in a bare value", "foo.com exe=/a#b"),
	BAD("NBSP ends a bare value", "foo.com exe=/a\xc2\xa0"
				      "b"),
	BAD("arg[] empty index", "foo.com arg[]=x"),
	BAD("arg[x]", "foo.com arg[x]=y"),
	BAD("arg[-1]", "foo.com arg[-1]=y"),
	BAD("arg[1 unclosed", "foo.com arg[1=y"),
	BAD("arg [1] with space", "foo.com arg [1]=y"),
	BAD("upper-case key", "foo.com EXE=/x"),
	BAD("unknown key", "foo.com user=root"),
	BAD("key with known prefix", "foo.com exec=/x"),
	BAD("key without value or =", "foo.com exe"),
	BAD("space before =", "foo.com exe =/x"),
	BAD("space after =", "foo.com exe= /x"),
	BAD("attribute glued to port", "foo.com:80exe=/x"),
	BAD("attribute glued to quoted value", "foo.com arg=\"a\"exe=/x"),
	BAD("attribute then passthrough", "foo.com exe=/x passthrough"),
	BAD("attribute then insecure", "foo.com exe=/x insecure"),
	BAD("attribute then port", "foo.com exe=/x :80"),
	ONE("attrs on a dns rule", "dns:a.com exe=/x", T_DNSH, "a.com", "443",
	    TCP, .attrs = "exe=/x"),
	ONE("attrs after passthrough", "foo.com passthrough exe=/x", T_HOST,
	    "foo.com", "443", TCP, .attrs = "exe=/x", .flags = PT),
	ONE("attrs after insecure", "foo.com insecure exe=/x", T_HOST,
	    "foo.com", "443", TCP, .attrs = "exe=/x", .flags = INS),
	{ .name = "header duplicate key: last wins",
	  .text = "[exe=/a exe=/b]\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "443", TCP, .attrs = "exe=/b") } },
	{ .name = "rule overrides header key in place",
	  .text = "[exe=/a arg=b]\nfoo.com exe=/c",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "443", TCP,
		       .attrs = "exe=/c, arg=b") } },
	{ .name = "rule appends new keys after header keys",
	  .text = "[exe=/a]\nfoo.com step=s",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "443", TCP,
		       .attrs = "exe=/a, step=s") } },
	{ .name = "rule override changes the form",
	  .text = "[exe=`/a*`]\nfoo.com exe=\"/b\"",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "443", TCP,
		       .attrs = "exe=\"/b\"") } },
	{ .name = "header attrs do not change for a later rule",
	  .text = "[exe=/a]\nfoo.com exe=/b\nbar.com",
	  .nrules = 2,
	  .rules = { R(0, T_HOST, "foo.com", "443", TCP, .attrs = "exe=/b"),
		     R(1, T_HOST, "bar.com", "443", TCP, .attrs = "exe=/a") } },
	{ .name = "header backtick value with ]",
	  .text = "[arg=`a]b`]\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "443", TCP,
		       .attrs = "arg=`a]b`") } },
	{ .name = "header quoted value with ]",
	  .text = "[arg=\"a]b\"]\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "443", TCP,
		       .attrs = "arg=\"a]b\"") } },
	{ .name = "header unterminated quote is bare up to ]",
	  .text = "[arg=\"x]\nfoo.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "443", TCP, .attrs = "arg=\"x") } },
	BAD("header bare value with ]", "[exe=/a]b]"),
	BAD("header empty value", "[exe=]"),
};

/* ---- 1.10 passthrough and insecure --------------------------------------- */

static const struct pcase flag_cases[] = {
	ONE("passthrough", "foo.com passthrough", T_HOST, "foo.com", "443", TCP,
	    .flags = PT),
	ONE("insecure", "foo.com insecure", T_HOST, "foo.com", "443", TCP,
	    .flags = INS),
	ONE("passthrough after port", "foo.com:443 passthrough", T_HOST,
	    "foo.com", "443", TCP, .flags = PT),
	ONE("insecure after port and proto", "foo.com:8443/tcp insecure",
	    T_HOST, "foo.com", "8443", TCP, .flags = INS),
	ONE("wildcard passthrough tab", "*.foo.com\tpassthrough", T_WILD,
	    "*.foo.com", "443", TCP, .flags = PT),
	ONE("wildcard insecure", "*.foo.com insecure", T_WILD, "*.foo.com",
	    "443", TCP, .flags = INS),
	ONE("passthrough with udp port", "foo.com:53/udp passthrough", T_HOST,
	    "foo.com", "53", UDP, .flags = PT),
	ONE("passthrough then comment", "foo.com passthrough # c", T_HOST,
	    "foo.com", "443", TCP, .flags = PT),
	ONE("insecure URL then comment", "https://a.com/ insecure # c", T_URL,
	    "https://a.com/", "443", TCP, .methods = GH, .flags = INS),
	BAD("insecure before passthrough", "foo.com insecure passthrough"),
	BAD("flag glued to port", "foo.com:443passthrough"),
	BAD("misspelt flag", "foo.com passthru"),
	BAD("flag with suffix", "foo.com passthroughx"),
	BAD("insecure with suffix", "foo.com insecurex"),
	BAD("upper-case flag", "foo.com PASSTHROUGH"),
	BAD("upper-case insecure", "foo.com Insecure"),
	BAD("passthrough twice", "foo.com passthrough passthrough"),
	BAD("insecure twice", "foo.com insecure insecure"),
	BAD("flag before port", "foo.com passthrough:443"),
	{ .name = "passthrough and insecure on one rule",
	  .text = "foo.com passthrough insecure",
	  .nrules = 0,
	  .diags = "R1",
	  .dtext = "foo.com passthrough insecure" },
	{ .name = "[passthrough] on a URL rule",
	  .text = "[passthrough]\nhttps://a.com/",
	  .nrules = 0,
	  .diags = "R2" },
	{ .name = "[passthrough] on an IP rule",
	  .text = "[passthrough]\n1.2.3.4",
	  .nrules = 0,
	  .diags = "R2" },
	{ .name = "[passthrough] on a CIDR rule",
	  .text = "[passthrough]\n10.0.0.0/8",
	  .nrules = 0,
	  .diags = "R2" },
	{ .name = "[passthrough] on a dns rule",
	  .text = "[passthrough]\ndns:a.com",
	  .nrules = 0,
	  .diags = "R2" },
	{ .name = "[passthrough] on a dns wildcard rule",
	  .text = "[passthrough]\ndns:*.a.com",
	  .nrules = 0,
	  .diags = "R2" },
	{ .name = "[passthrough] on hosts and wildcards",
	  .text = "[passthrough exe=/x]\na.com\n*.b.com:8443",
	  .nrules = 2,
	  .rules = { R(0, T_HOST, "a.com", "443", TCP, .attrs = "exe=/x",
		       .flags = PT),
		     R(1, T_WILD, "*.b.com", "8443", TCP, .attrs = "exe=/x",
		       .flags = PT) } },
	{ .name = "passthrough on a dns rule",
	  .text = "dns:a.com passthrough",
	  .nrules = 0,
	  .diags = "R1" },
	{ .name = "insecure on a dns rule",
	  .text = "dns:a.com insecure",
	  .nrules = 0,
	  .diags = "R1" },
	{ .name = "insecure on a dns wildcard rule",
	  .text = "dns:*.a.com:53/udp insecure exe=/x",
	  .nrules = 0,
	  .diags = "R1" },
	{ .name = "[insecure] on a dns rule",
	  .text = "[insecure]\ndns:a.com",
	  .nrules = 0,
	  .diags = "R2" },
	{ .name = "[insecure] on IP, CIDR, URL and host rules",
	  .text = "[insecure]\n1.2.3.4\n10.0.0.0/8\nhttps://a.com/\nb.com",
	  .nrules = 4,
	  .rules = { R(0, T_IP, "1.2.3.4", "443", TCP, .flags = INS),
		     R(1, T_CIDR, "10.0.0.0/8", "443", TCP, .flags = INS),
		     R(2, T_URL, "https://a.com/", "443", TCP, .methods = GH,
		       .flags = INS),
		     R(3, T_HOST, "b.com", "443", TCP, .flags = INS) } },
	{ .name = "[passthrough] plus rule insecure",
	  .text = "[passthrough]\nfoo.com insecure",
	  .nrules = 0,
	  .diags = "R2" },
	{ .name = "[insecure] plus rule passthrough",
	  .text = "[insecure]\nfoo.com passthrough",
	  .nrules = 0,
	  .diags = "R2" },
	{ .name = "rejected rule keeps the context",
	  .text = "[passthrough]\n1.2.3.4\nfoo.com",
	  .nrules = 1,
	  .diags = "R2",
	  .rules = { R(0, T_HOST, "foo.com", "443", TCP, .flags = PT,
		       .line = 3) } },
	{ .name = "rejected rule diagnostic text",
	  .text = "  dns:a.com insecure  # c",
	  .nrules = 0,
	  .diags = "R1",
	  .dtext = "dns:a.com insecure  # c" },
};

/* ---- 1.12 dns rules ------------------------------------------------------ */

static const struct pcase dns_cases[] = {
	ONE("dns host", "dns:example.com", T_DNSH, "example.com", "443", TCP),
	ONE("dns host case kept", "dns:Example.COM", T_DNSH, "Example.COM",
	    "443", TCP),
	ONE("dns host port and proto", "dns:example.com:53/udp", T_DNSH,
	    "example.com", "53", UDP),
	ONE("dns host with comment", "dns:example.com # c", T_DNSH,
	    "example.com", "443", TCP),
	BAD("DNS: upper case", "DNS:example.com"),
	BAD("dns: then space", "dns: example.com"),
	BAD("dns: empty", "dns:"),
	BAD("dns:localhost", "dns:localhost"),
	BAD("dns trailing dot", "dns:example.com."),
	BAD("dns URL", "dns:https://a.com/"),
	BAD("dns IPv4-prefixed host", "dns:10.0.0.1.nip.io"),
	BAD("dns cidr", "dns:10.0.0.0/8"),
	BAD("dns twice", "dns:dns:a.com"),
	{ .name = "dns rule under a URL base gets its port",
	  .text = "[http://a.com]\ndns:b.com",
	  .nrules = 1,
	  .rules = { R(0, T_DNSH, "b.com", "80", TCP) } },
};

/* ---- 1.13 placeholders --------------------------------------------------- */

static const struct pcase placeholder_cases[] = {
	{ .name = "{owner}/{repo} in a URL",
	  .text = "https://github.com/{owner}/{repo}/",
	  .repo = "acme/widgets",
	  .nrules = 1,
	  .rules = { R(0, T_URL, "https://github.com/acme/widgets/", "443", TCP,
		       .methods = GH) } },
	{ .name = "{owner} in a hostname",
	  .text = "{owner}.github.io",
	  .repo = "acme/widgets",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "acme.github.io", "443", TCP) } },
	{ .name = "every occurrence is replaced",
	  .text = "{repo}.{owner}.{owner}.com",
	  .repo = "acme/widgets",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "widgets.acme.acme.com", "443", TCP) } },
	{ .name = "repository part may contain /",
	  .text = "https://github.com/{owner}/{repo}/x",
	  .repo = "acme/a/b",
	  .nrules = 1,
	  .rules = { R(0, T_URL, "https://github.com/acme/a/b/x", "443", TCP,
		       .methods = GH) } },
	{ .name = "placeholders in attributes",
	  .text = "foo.com action={owner}/{repo} arg=`{repo} x`",
	  .repo = "acme/widgets",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "443", TCP,
		       .attrs = "action=acme/widgets, arg=`widgets x`") } },
	{ .name = "placeholders in a URL-base header",
	  .text = "[https://api.github.com/repos/{owner}/{repo}]\n/releases",
	  .repo = "acme/widgets",
	  .nrules = 1,
	  .rules = { R(0, T_PATH, "/releases", "443", TCP, .methods = GH,
		       .url_base = "https://api.github.com/repos/acme/"
				   "widgets") } },
	{ .name = "placeholders do not move line numbers",
	  .text = "a.com\n{owner}.github.io\nbad_",
	  .repo = "acme/widgets",
	  .nrules = 2,
	  .diags = "S3",
	  .rules = { R(1, T_HOST, "acme.github.io", "443", TCP, .line = 2) } },
	{ .name = "no repo: placeholder line fails",
	  .text = "https://github.com/{owner}/x\nok.com",
	  .nrules = 1,
	  .diags = "S1",
	  .rules = { R(0, T_HOST, "ok.com", "443", TCP) } },
	{ .name = "repo without / substitutes nothing",
	  .text = "https://github.com/{owner}/x",
	  .repo = "acme",
	  .nrules = 0,
	  .diags = "S1" },
	{ .name = "unknown placeholder",
	  .text = "{user}.github.io",
	  .repo = "acme/widgets",
	  .nrules = 0,
	  .diags = "S1" },
	{ .name = "upper-case placeholder",
	  .text = "{OWNER}.github.io",
	  .repo = "acme/widgets",
	  .nrules = 0,
	  .diags = "S1" },
	{ .name = "repo value with _ makes the host invalid",
	  .text = "{owner}.github.io",
	  .repo = "my_org/widgets",
	  .nrules = 0,
	  .diags = "S1" },
	{ .name = "validate mode uses _owner/_repo",
	  .text = "https://github.com/{owner}/{repo}/",
	  .validate = true,
	  .nrules = 1,
	  .rules = { R(0, T_URL, "https://github.com/_owner/_repo/", "443", TCP,
		       .methods = GH) } },
	{ .name = "validate mode ignores opts.repo",
	  .text = "https://github.com/{owner}/{repo}/",
	  .repo = "acme/widgets",
	  .validate = true,
	  .nrules = 1,
	  .rules = { R(0, T_URL, "https://github.com/_owner/_repo/", "443", TCP,
		       .methods = GH) } },
	{ .name = "validate mode: _owner makes a hostname invalid",
	  .text = "{owner}.github.io",
	  .repo = "acme/widgets",
	  .validate = true,
	  .nrules = 0,
	  .diags = "S1" },
	{ .name = "validate mode: placeholders in attributes",
	  .text = "foo.com action={owner}/{repo}",
	  .validate = true,
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "foo.com", "443", TCP,
		       .attrs = "action=_owner/_repo") } },
	{ .name = "validate mode: _repo in a path is fine",
	  .text = "[https://api.github.com/repos/{owner}]\n/{repo}/*",
	  .validate = true,
	  .nrules = 1,
	  .rules = { R(0, T_PATH, "/_repo/*", "443", TCP, .methods = GH,
		       .url_base = "https://api.github.com/repos/_owner") } },
};

/* ---- 1.15 the github-hosted preset --------------------------------------- */

#define PRESET5                                                                \
	R(0, T_IP, "127.0.0.53", "53", UDP, .attrs = RUNNER_CG, .line = -1),   \
		R(1, T_IP, "168.63.129.16", "80,32526", TCP,                   \
		  .attrs = AZURE_CG, .line = -1),                              \
		R(2, T_IP, "169.254.169.254", "80", TCP, .attrs = AZURE_CG,    \
		  .line = -1),                                                 \
		R(3, T_HOST, "results-receiver.actions.githubusercontent.com", \
		  "443", TCP, .attrs = RUNNER_CG, .line = -1),                 \
		R(4, T_WILD, "hosted-compute-watchdog-prod-*.githubapp.com",   \
		  "443", TCP, .attrs = RUNNER_CG ", exe=/tmp/provjobd*",       \
		  .line = -1)

#define GHH "github-hosted"

static const struct pcase preset_cases[] = {
	{ .name = "preset alone: exactly the 5 default rules",
	  .text = "",
	  .preset = GHH,
	  .nrules = 5,
	  .rules = { PRESET5 } },
	{ .name = "preset: user rules start at index 5",
	  .text = "github.com",
	  .preset = GHH,
	  .nrules = 6,
	  .rules = { PRESET5, R(5, T_HOST, "github.com", "443", TCP,
				.attrs = RUNNER_CG, .line = 1) } },
	{ .name = "preset: rule cgroup overrides the runner cgroup",
	  .text = "github.com cgroup=@docker",
	  .preset = GHH,
	  .nrules = 6,
	  .rules = { R(5, T_HOST, "github.com", "443", TCP,
		       .attrs = "cgroup=@docker") } },
	{ .name = "preset: header attrs merge after the runner cgroup",
	  .text = "[exe=/x]\ngithub.com",
	  .preset = GHH,
	  .nrules = 6,
	  .rules = { R(5, T_HOST, "github.com", "443", TCP,
		       .attrs = RUNNER_CG ", exe=/x", .line = 2) } },
	{ .name = "preset: header cgroup overrides in place",
	  .text = "[exe=/x cgroup=@host]\ngithub.com",
	  .preset = GHH,
	  .nrules = 6,
	  .rules = { R(5, T_HOST, "github.com", "443", TCP,
		       .attrs = "cgroup=@host, exe=/x") } },
	{ .name = "preset: [] keeps the runner cgroup",
	  .text = "[:80]\n[]\nfoo.com",
	  .preset = GHH,
	  .nrules = 6,
	  .rules = { R(5, T_HOST, "foo.com", "443", TCP, .attrs = RUNNER_CG) } },
	{ .name = "preset: port header keeps the runner cgroup",
	  .text = "[:53/udp]\n8.8.8.8",
	  .preset = GHH,
	  .nrules = 6,
	  .rules = { R(5, T_IP, "8.8.8.8", "53", UDP, .attrs = RUNNER_CG) } },
	{ .name = "preset: user text starts from a clean context",
	  .text = "github.com\n1.2.3.4",
	  .preset = GHH,
	  .nrules = 7,
	  .rules = { R(5, T_HOST, "github.com", "443", TCP, .attrs = RUNNER_CG),
		     R(6, T_IP, "1.2.3.4", "443", TCP, .attrs = RUNNER_CG,
		       .line = 2) } },
	{ .name = "preset: URL rule",
	  .text = "https://a.com/",
	  .preset = GHH,
	  .nrules = 6,
	  .rules = { R(5, T_URL, "https://a.com/", "443", TCP, .methods = GH,
		       .attrs = RUNNER_CG) } },
	{ .name = "preset: diagnostics use user line numbers",
	  .text = "a.com\nbad_",
	  .preset = GHH,
	  .nrules = 6,
	  .diags = "S2" },
	{ .name = "preset: path rule without base rejected on line 1",
	  .text = "/x",
	  .preset = GHH,
	  .nrules = 5,
	  .diags = "R1" },
	{ .name = "preset: [passthrough] URL rule rejected",
	  .text = "[passthrough]\nhttps://a.com/",
	  .preset = GHH,
	  .nrules = 5,
	  .diags = "R2" },
	{ .name = "preset: validate mode",
	  .text = "{owner}.github.io",
	  .preset = GHH,
	  .validate = true,
	  .nrules = 5,
	  .diags = "S1" },
	{ .name = "preset: placeholders",
	  .text = "https://github.com/{owner}/",
	  .preset = GHH,
	  .repo = "acme/widgets",
	  .nrules = 6,
	  .rules = { R(5, T_URL, "https://github.com/acme/", "443", TCP,
		       .methods = GH, .attrs = RUNNER_CG) } },
	{ .name = "preset: warnings come from user rules only",
	  .text = "https://a.com/x insecure\nhttps://a.com/y",
	  .preset = GHH,
	  .nrules = 7,
	  .diags = "W0" },
	{ .name = "no preset: no runner cgroup",
	  .text = "[:80]\ngithub.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "github.com", "80", TCP, .line = 2) } },
	{ .name = "unknown preset",
	  .text = "github.com",
	  .preset = "nope",
	  .rc = -1 },
	{ .name = "empty preset name",
	  .text = "github.com",
	  .preset = "",
	  .rc = -1 },
	{ .name = "preset with invalid UTF-8",
	  .text = "\xff",
	  .preset = GHH,
	  .rc = -1 },
};

/* ---- 1.16 cross-rule warnings -------------------------------------------- */

static const struct pcase warning_cases[] = {
	{ .name = "(a) passthrough host covers a URL rule",
	  .text = "github.com passthrough\nhttps://github.com/x",
	  .nrules = 2,
	  .diags = "W0" },
	{ .name = "(a) URL rule first",
	  .text = "https://github.com/x\ngithub.com passthrough",
	  .nrules = 2,
	  .diags = "W0" },
	{ .name = "(a) passthrough wildcard covers a URL rule",
	  .text = "*.github.com passthrough\nhttps://api.github.com/x",
	  .nrules = 2,
	  .diags = "W0" },
	{ .name = "(a) passthrough wildcard covers a path rule",
	  .text = "*.github.com passthrough\n[https://api.github.com]\n/x",
	  .nrules = 2,
	  .diags = "W0" },
	{ .name = "(a) wildcard URL host covers a passthrough host",
	  .text = "api.github.com passthrough\nhttps://*.github.com/x",
	  .nrules = 2,
	  .diags = "W0" },
	{ .name = "(a) passthrough header",
	  .text = "https://github.com/x\n[passthrough]\ngithub.com",
	  .nrules = 2,
	  .diags = "W0" },
	{ .name = "(a) hostnames compared case-insensitively",
	  .text = "GitHub.com passthrough\nhttps://github.COM/x",
	  .nrules = 2,
	  .diags = "W0" },
	{ .name = "(a) ports are not considered",
	  .text = "github.com:8443 passthrough\nhttps://github.com/x",
	  .nrules = 2,
	  .diags = "W0" },
	{ .name = "(a) attributes are not considered",
	  .text = "github.com passthrough exe=/a\nhttps://github.com/x exe=/b",
	  .nrules = 2,
	  .diags = "W0" },
	{ .name = "(a) exact passthrough does not cover a subdomain",
	  .text = "github.com passthrough\nhttps://api.github.com/x",
	  .nrules = 2 },
	{ .name = "(a) unrelated hosts",
	  .text = "github.com passthrough\nhttps://gitlab.com/x",
	  .nrules = 2 },
	{ .name = "(a) no passthrough, no warning",
	  .text = "github.com\nhttps://github.com/x",
	  .nrules = 2 },
	{ .name = "(a) passthrough next to a host rule",
	  .text = "github.com passthrough\ngithub.com:80",
	  .nrules = 2 },
	{ .name = "(a) dropped URL rule is not compared",
	  .text = "github.com passthrough\nhttps://github.com/x passthrough",
	  .nrules = 1,
	  .diags = "S2" },
	{ .name = "(b) passthrough overlaps an insecure host",
	  .text = "github.com passthrough\ngithub.com:8443 insecure",
	  .nrules = 2,
	  .diags = "W0" },
	{ .name = "(b) passthrough wildcard overlaps an insecure host",
	  .text = "*.github.com passthrough\napi.github.com insecure",
	  .nrules = 2,
	  .diags = "W0" },
	{ .name = "(b) insecure wildcard overlaps a passthrough host",
	  .text = "api.github.com passthrough\n*.github.com insecure",
	  .nrules = 2,
	  .diags = "W0" },
	{ .name = "(b) no overlap",
	  .text = "github.com passthrough\ngitlab.com insecure",
	  .nrules = 2 },
	{ .name = "(b) insecure IP rule has no hostname",
	  .text = "github.com passthrough\n1.2.3.4 insecure",
	  .nrules = 2 },
	{ .name = "(c) insecure URL next to a verifying URL",
	  .text = "https://a.com/x insecure\nhttps://a.com/y",
	  .nrules = 2,
	  .diags = "W0" },
	{ .name = "(c) verifying URL first",
	  .text = "https://a.com/y\nhttps://a.com/x insecure",
	  .nrules = 2,
	  .diags = "W0" },
	{ .name = "(c) hostnames compared case-insensitively",
	  .text = "https://a.com/x insecure\nhttps://A.COM/y",
	  .nrules = 2,
	  .diags = "W0" },
	{ .name = "(c) once per insecure rule",
	  .text = "https://a.com/x insecure\nhttps://a.com/y\nhttps://a.com/z",
	  .nrules = 3,
	  .diags = "W0" },
	{ .name = "(c) two insecure rules, two warnings",
	  .text = "https://a.com/x insecure\nhttps://a.com/w insecure\n"
		  "https://a.com/y",
	  .nrules = 3,
	  .diags = "W0 W0" },
	{ .name = "(c) both insecure",
	  .text = "https://a.com/x insecure\nhttps://a.com/y insecure",
	  .nrules = 2 },
	{ .name = "(c) different hosts",
	  .text = "https://a.com/x insecure\nhttps://b.com/y",
	  .nrules = 2 },
	{ .name = "(c) insecure URL next to a host rule",
	  .text = "https://a.com/x insecure\na.com",
	  .nrules = 2 },
	{ .name = "(c) insecure path next to a URL",
	  .text = "[https://a.com]\n/x insecure\nhttps://a.com/y",
	  .nrules = 2,
	  .diags = "W0" },
	{ .name = "(c) insecure path next to a path",
	  .text = "[https://a.com]\n/x insecure\n/y",
	  .nrules = 2,
	  .diags = "W0" },
	{ .name = "(c) ports are not considered",
	  .text = "https://a.com:8443/x insecure\nhttps://a.com/y",
	  .nrules = 2,
	  .diags = "W0" },
	{ .name = "(c) schemes are not considered",
	  .text = "http://a.com/x insecure\nhttps://a.com/y",
	  .nrules = 2,
	  .diags = "W0" },
	{ .name = "(c) [insecure] header",
	  .text = "[insecure]\nhttps://a.com/x\n[]\nhttps://a.com/y",
	  .nrules = 2,
	  .diags = "W0" },
	{ .name = "all three kinds of diagnostics",
	  .text = "bad_\n/x\ngithub.com passthrough\nhttps://github.com/a",
	  .nrules = 2,
	  .diags = "S1 R2 W0" },
	{ .name = "warnings in validate mode",
	  .text = "github.com passthrough\nhttps://github.com/x",
	  .validate = true,
	  .nrules = 2,
	  .diags = "W0" },
};

/* ---- invalid UTF-8 ------------------------------------------------------- */

static const struct pcase utf8_cases[] = {
	{ .name = "byte 0xff", .text = "\xff", .rc = -1 },
	{ .name = "truncated sequence at the end",
	  .text = "a.com\n\xc3",
	  .rc = -1 },
	{ .name = "overlong two-byte", .text = "\xc0\xaf", .rc = -1 },
	{ .name = "overlong three-byte", .text = "\xe0\x80\xaf", .rc = -1 },
	{ .name = "surrogate", .text = "\xed\xa0\x80", .rc = -1 },
	{ .name = "beyond U+10FFFF", .text = "\xf4\x90\x80\x80", .rc = -1 },
	{ .name = "lone continuation byte", .text = "a.com \x80", .rc = -1 },
	{ .name = "invalid inside a comment", .text = "# \xff", .rc = -1 },
	{ .name = "invalid after valid rules",
	  .text = "a.com\nb.com\n# \xfe",
	  .rc = -1 },
	{ .name = "valid four-byte character in a comment",
	  .text = "# \xf0\x9f\x98\x80\ngithub.com",
	  .nrules = 1,
	  .rules = { R(0, T_HOST, "github.com", "443", TCP) } },
	{ .name = "valid non-ASCII in a host is a syntax error only",
	  .text = "caf\xc3\xa9.com\ngithub.com",
	  .nrules = 1,
	  .diags = "S1" },
};

/* ---- derived fields (host pattern, path pattern, CIDR, method bits) ------ */

struct dcase {
	const char *name;
	const char *text;
	int idx;
	const char *host; /* NULL: expect NULL */
	bool wild;
	bool https;
	const char *path; /* NULL: expect NULL */
	bool cidr;
	uint32_t net, mask;
	bool has_mbits;
	uint32_t mbits;
};

#define MB(m) (1u << (m))

static const struct dcase derived_cases[] = {
	{ .name = "host lower-cased",
	  .text = "GitHub.COM",
	  .host = "github.com" },
	{ .name = "wildcard lower-cased",
	  .text = "*.GitHub.com",
	  .host = "*.github.com",
	  .wild = true },
	{ .name = "dns wildcard lower-cased",
	  .text = "dns:Sub*.X.com",
	  .host = "sub*.x.com",
	  .wild = true },
	{ .name = "dns host lower-cased", .text = "dns:X.com", .host = "x.com" },
	{ .name = "ip has no host", .text = "1.2.3.4" },
	{ .name = "URL host, scheme and path",
	  .text = "https://API.GitHub.com:8443/a/B",
	  .host = "api.github.com",
	  .https = true,
	  .path = "/a/B",
	  .has_mbits = true,
	  .mbits = MB(POLICY_M_GET) | MB(POLICY_M_HEAD) },
	{ .name = "http URL root path",
	  .text = "http://a.com/",
	  .host = "a.com",
	  .path = "/",
	  .has_mbits = true,
	  .mbits = MB(POLICY_M_GET) | MB(POLICY_M_HEAD) },
	{ .name = "URL port list host",
	  .text = "https://a.com:80|443/x",
	  .host = "a.com",
	  .https = true,
	  .path = "/x" },
	{ .name = "URL wildcard host",
	  .text = "https://*.A.com/x",
	  .host = "*.a.com",
	  .wild = true,
	  .https = true,
	  .path = "/x" },
	{ .name = "URL method bits",
	  .text = "GET|POST https://a.com/",
	  .host = "a.com",
	  .https = true,
	  .path = "/",
	  .has_mbits = true,
	  .mbits = MB(POLICY_M_GET) | MB(POLICY_M_POST) },
	{ .name = "URL star method bit",
	  .text = "* https://a.com/",
	  .host = "a.com",
	  .https = true,
	  .path = "/",
	  .has_mbits = true,
	  .mbits = MB(POLICY_M_ANY) },
	{ .name = "path pattern: base path + rule path",
	  .text = "[https://api.github.com/v1/repos]\n/*/releases",
	  .host = "api.github.com",
	  .https = true,
	  .path = "/v1/repos/*/releases" },
	{ .name = "path pattern: base trailing / removed",
	  .text = "[https://a.com/v1/]\n/x",
	  .host = "a.com",
	  .https = true,
	  .path = "/v1/x" },
	{ .name = "path pattern: no base path",
	  .text = "[https://a.com]\n/x",
	  .host = "a.com",
	  .https = true,
	  .path = "/x" },
	{ .name = "path pattern: // runs collapsed",
	  .text = "[https://a.com/v1]\n//x//y",
	  .host = "a.com",
	  .https = true,
	  .path = "/v1/x/y" },
	{ .name = "path pattern: root under root",
	  .text = "[http://A.com:8080/]\n/",
	  .host = "a.com",
	  .path = "/" },
	{ .name = "path pattern: root under a base path",
	  .text = "[https://a.com/v1/]\n/",
	  .host = "a.com",
	  .https = true,
	  .path = "/v1/" },
	{ .name = "path pattern: wildcard base host",
	  .text = "[https://*.a.com/api]\nPOST /x",
	  .host = "*.a.com",
	  .wild = true,
	  .https = true,
	  .path = "/api/x",
	  .has_mbits = true,
	  .mbits = MB(POLICY_M_POST) },
	{ .name = "cidr host bits masked",
	  .text = "10.1.2.3/8",
	  .cidr = true,
	  .net = 0x0a000000u,
	  .mask = 0xff000000u },
	{ .name = "cidr /0",
	  .text = "1.2.3.4/0",
	  .cidr = true,
	  .net = 0,
	  .mask = 0 },
	{ .name = "cidr /32",
	  .text = "1.2.3.4/32",
	  .cidr = true,
	  .net = 0x01020304u,
	  .mask = 0xffffffffu },
	{ .name = "cidr /28",
	  .text = "192.168.1.77/28",
	  .cidr = true,
	  .net = 0xc0a80140u,
	  .mask = 0xfffffff0u },
	{ .name = "network rule has no method bits",
	  .text = "a.com",
	  .host = "a.com",
	  .has_mbits = true,
	  .mbits = 0 },
};

/* ---- attribute keys: kind and index -------------------------------------- */

struct kcase {
	const char *text;
	const char *key;
	enum policy_attr_key kind;
	uint64_t index;
};

static const struct kcase attrkey_cases[] = {
	{ "a.com exe=x", "exe", POLICY_ATTR_EXE, 0 },
	{ "a.com arg=x", "arg", POLICY_ATTR_ARG, 0 },
	{ "a.com arg[0]=x", "arg[0]", POLICY_ATTR_ARG_N, 0 },
	{ "a.com arg[01]=x", "arg[01]", POLICY_ATTR_ARG_N, 1 },
	{ "a.com arg[12]=x", "arg[12]", POLICY_ATTR_ARG_N, 12 },
	{ "a.com arg[99999999999999999999999]=x",
	  "arg[99999999999999999999999]", POLICY_ATTR_ARG_N, UINT64_MAX },
	{ "a.com step=x", "step", POLICY_ATTR_STEP, 0 },
	{ "a.com action=x", "action", POLICY_ATTR_ACTION, 0 },
	{ "a.com cgroup=x", "cgroup", POLICY_ATTR_CGROUP, 0 },
	{ "a.com image=x", "image", POLICY_ATTR_IMAGE, 0 },
};

/* ---- tests --------------------------------------------------------------- */

#define TABLE_TEST(fn, tbl)         \
	START_TEST(fn)              \
	{                           \
		run_case(&tbl[_i]); \
	}                           \
	END_TEST

TABLE_TEST(test_lexical, lexical_cases)
TABLE_TEST(test_linebreak, linebreak_cases)
TABLE_TEST(test_header, header_cases)
TABLE_TEST(test_port, port_cases)
TABLE_TEST(test_host, host_cases)
TABLE_TEST(test_wildcard, wildcard_cases)
TABLE_TEST(test_ip, ip_cases)
TABLE_TEST(test_url, url_cases)
TABLE_TEST(test_path, path_cases)
TABLE_TEST(test_method, method_cases)
TABLE_TEST(test_attr, attr_cases)
TABLE_TEST(test_flag, flag_cases)
TABLE_TEST(test_dns, dns_cases)
TABLE_TEST(test_placeholder, placeholder_cases)
TABLE_TEST(test_preset, preset_cases)
TABLE_TEST(test_warning, warning_cases)
TABLE_TEST(test_utf8, utf8_cases)

START_TEST(test_derived)
{
	const struct dcase *c = &derived_cases[_i];
	const struct policy_rule *r;
	policy_t *p = NULL;
	struct policy_diags d = { 0 };

	ck_assert_msg(policy_parse(c->text, strlen(c->text), NULL, &p, &d) == 0,
		      "%s: parse failed", c->name);
	ck_assert_msg(d.n == 0, "%s: %zu diagnostics", c->name, d.n);
	r = policy_rule(p, (size_t)c->idx);
	ck_assert_msg(r != NULL, "%s: no rule %d", c->name, c->idx);
	ck_assert_msg(str_same(r->host, c->host),
		      "%s: host: got '%s', want '%s'", c->name, nz(r->host),
		      nz(c->host));
	ck_assert_msg(r->host_wild == c->wild, "%s: host_wild: got %d, want %d",
		      c->name, r->host_wild, c->wild);
	if (r->type == POLICY_URL || r->type == POLICY_PATH)
		ck_assert_msg(r->https == c->https,
			      "%s: https: got %d, want %d", c->name, r->https,
			      c->https);
	ck_assert_msg(str_same(r->path, c->path),
		      "%s: path: got '%s', want '%s'", c->name, nz(r->path),
		      nz(c->path));
	if (c->cidr) {
		ck_assert_msg(r->type == POLICY_CIDR, "%s: not a cidr rule",
			      c->name);
		ck_assert_msg(r->net == c->net && r->mask == c->mask,
			      "%s: net/mask: got %08x/%08x, want %08x/%08x",
			      c->name, r->net, r->mask, c->net, c->mask);
	}
	if (c->has_mbits)
		ck_assert_msg(r->mbits == c->mbits,
			      "%s: mbits: got %#x, want %#x", c->name, r->mbits,
			      c->mbits);
	policy_free(p);
	policy_diags_fini(&d);
}
END_TEST

START_TEST(test_attrkey)
{
	const struct kcase *c = &attrkey_cases[_i];
	const struct policy_rule *r;
	policy_t *p = NULL;

	ck_assert_msg(policy_parse(c->text, strlen(c->text), NULL, &p, NULL) ==
			      0,
		      "%s: parse failed", c->text);
	ck_assert_msg(policy_nrules(p) == 1, "%s: no rule", c->text);
	r = policy_rule(p, 0);
	ck_assert_msg(r->nattrs == 1, "%s: %zu attrs", c->text, r->nattrs);
	ck_assert_msg(strcmp(r->attrs[0].key, c->key) == 0,
		      "%s: key: got '%s', want '%s'", c->text, r->attrs[0].key,
		      c->key);
	ck_assert_msg(r->attrs[0].kind == c->kind, "%s: kind: got %d, want %d",
		      c->text, (int)r->attrs[0].kind, (int)c->kind);
	ck_assert_msg(r->attrs[0].index == c->index,
		      "%s: index: got %" PRIu64 ", want %" PRIu64, c->text,
		      r->attrs[0].index, c->index);
	ck_assert_msg(strcmp(r->attrs[0].value, "x") == 0 &&
			      r->attrs[0].form == POLICY_VAL_BARE,
		      "%s: value", c->text);
	policy_free(p);
}
END_TEST

/* Diagnostics are optional: a NULL list is fine, the rules are the same. */
START_TEST(test_null_diags)
{
	static const char text[] = "bad_\n/x\n[passthrough]\n1.2.3.4\nfoo.com\n"
				   "https://foo.com/x";
	policy_t *p = NULL;

	ck_assert_msg(policy_parse(text, strlen(text), NULL, &p, NULL) == 0,
		      "null diags: parse failed");
	ck_assert_msg(policy_nrules(p) == 1,
		      "null diags: rule count: got %zu, want 1",
		      policy_nrules(p));
	ck_assert_msg(policy_rule(p, 0)->passthrough,
		      "null diags: passthrough lost");
	ck_assert_msg(policy_rule(p, 1) == NULL,
		      "null diags: rule past the end");
	policy_free(p);
	p = (policy_t *)(void *)&p;
	ck_assert_msg(policy_parse("\xff", 1, NULL, &p, NULL) == -1,
		      "null diags: invalid UTF-8 accepted");
	ck_assert_msg(p == NULL, "null diags: *out not NULL on failure");
}
END_TEST

/* The text is bounded by len, not by a NUL. */
START_TEST(test_length_bounded)
{
	static const char text[] = "a.com\nbad_";
	policy_t *p = NULL;
	struct policy_diags d = { 0 };

	ck_assert_msg(policy_parse(text, 5, NULL, &p, &d) == 0,
		      "length: parse failed");
	ck_assert_msg(d.n == 0, "length: %zu diagnostics beyond len", d.n);
	ck_assert_msg(policy_nrules(p) == 1, "length: rule count %zu",
		      policy_nrules(p));
	policy_free(p);
	policy_diags_fini(&d);
}
END_TEST

Suite *policy_parse_suite(void)
{
	const struct {
		const char *name;
		const TTest *fn;
		size_t n;
	} loops[] = {
		{ "lexical", test_lexical, ARRAY_LEN(lexical_cases) },
		{ "linebreak", test_linebreak, ARRAY_LEN(linebreak_cases) },
		{ "header", test_header, ARRAY_LEN(header_cases) },
		{ "port", test_port, ARRAY_LEN(port_cases) },
		{ "host", test_host, ARRAY_LEN(host_cases) },
		{ "wildcard", test_wildcard, ARRAY_LEN(wildcard_cases) },
		{ "ip", test_ip, ARRAY_LEN(ip_cases) },
		{ "url", test_url, ARRAY_LEN(url_cases) },
		{ "path", test_path, ARRAY_LEN(path_cases) },
		{ "method", test_method, ARRAY_LEN(method_cases) },
		{ "attr", test_attr, ARRAY_LEN(attr_cases) },
		{ "flag", test_flag, ARRAY_LEN(flag_cases) },
		{ "dns", test_dns, ARRAY_LEN(dns_cases) },
		{ "placeholder", test_placeholder,
		  ARRAY_LEN(placeholder_cases) },
		{ "preset", test_preset, ARRAY_LEN(preset_cases) },
		{ "warning", test_warning, ARRAY_LEN(warning_cases) },
		{ "utf8", test_utf8, ARRAY_LEN(utf8_cases) },
		{ "derived", test_derived, ARRAY_LEN(derived_cases) },
		{ "attrkey", test_attrkey, ARRAY_LEN(attrkey_cases) },
	};
	Suite *s = suite_create("policy_parse");
	TCase *tc;

	for (size_t i = 0; i < ARRAY_LEN(loops); i++) {
		tc = tcase_create(loops[i].name);
		tcase_add_loop_test(tc, loops[i].fn, 0, (int)loops[i].n);
		suite_add_tcase(s, tc);
	}
	tc = tcase_create("api");
	tcase_add_test(tc, test_null_diags);
	tcase_add_test(tc, test_length_bounded);
	suite_add_tcase(s, tc);
	return s;
}
