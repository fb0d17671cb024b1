/*
 * policy_parse.c - the policy language: lines, grammar, header context,
 * flattening, rule rejection and cross-rule warnings.
 *
 * The grammar is a PEG (SEED_BEHAVIOUR.md 1.2): alternatives are tried in
 * order, the first that succeeds is kept, and a line is valid only when one
 * parse consumes all of it.  Each p_* function below implements one grammar
 * rule: it returns the position after what it matched, or -1.  Every failing
 * terminal records what it expected at the furthest position reached, which
 * is how a syntax error names its column and cause.
 */
#include "policy_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "util.h"

/* ---- arena ---------------------------------------------------------------- */

struct arena_blk {
	struct arena_blk *next;
	size_t used;
	size_t cap;
	max_align_t data[];
};

void *arena_alloc(struct arena *a, size_t n)
{
	struct arena_blk *b = a->head;
	size_t al = _Alignof(max_align_t);

	n = (n + al - 1) & ~(al - 1);
	if (!n)
		n = al;
	if (!b || b->cap - b->used < n) {
		size_t cap = n > 16384 ? n : 16384;
		b = util_xmalloc(sizeof(*b) + cap);
		b->cap = cap;
		b->used = 0;
		b->next = a->head;
		a->head = b;
	}
	void *p = (char *)b->data + b->used;
	b->used += n;
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void arena_fini(struct arena *a)
{
	while (a->head) {
		struct arena_blk *next = a->head->next;
		free(a->head);
		a->head = next;
	}
}

/* ---- Unicode --------------------------------------------------------------- */

bool policy_utf8_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t k;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

uint32_t policy_utf8_next(const char *str, size_t n, size_t *i)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned char c = s[*i];
	size_t k;
	uint32_t cp;

	if (c < 0x80) {
		(*i)++;
		return c;
	}
	if (c < 0xe0) {
		k = 1;
		cp = c & 0x1f;
	} else if (c < 0xf0) {
		k = 2;
		cp = c & 0x0f;
	} else {
		k = 3;
		cp = c & 0x07;
	}
	for (size_t j = 1; j <= k && *i + j < n; j++)
		cp = (cp << 6) | (s[*i + j] & 0x3f);
	*i += k + 1;
	if (*i > n)
		*i = n;
	return cp;
}

bool policy_uc_isspace(uint32_t c)
{
	return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) ||
	       c == 0x85 || c == 0xa0 || c == 0x1680 ||
	       (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
	       c == 0x202f || c == 0x205f || c == 0x3000;
}

/* Python's str.splitlines() boundaries: returns the break's length or 0. */
static size_t line_break_len(const char *s, size_t n, size_t i)
{
	unsigned char c = (unsigned char)s[i];

	switch (c) {
	case '\r':
		return i + 1 < n && s[i + 1] == '\n' ? 2 : 1;
	case '\n':
	case '\v':
	case '\f':
	case 0x1c:
	case 0x1d:
	case 0x1e:
		return 1;
	case 0xc2:
		return i + 1 < n && (unsigned char)s[i + 1] == 0x85 ? 2 : 0;
	case 0xe2:
		return i + 2 < n && (unsigned char)s[i + 1] == 0x80 &&
				       ((unsigned char)s[i + 2] == 0xa8 ||
					(unsigned char)s[i + 2] == 0xa9) ?
			       3 :
			       0;
	default:
		return 0;
	}
}

/* Python's str.strip(): the [b, e) span without Unicode white space. */
static void uc_strip(const char *s, size_t n, size_t *b, size_t *e)
{
	size_t i = 0, last = 0;
	bool seen = false;

	*b = *e = 0;
	while (i < n) {
		size_t start = i;
		uint32_t c = policy_utf8_next(s, n, &i);
		if (policy_uc_isspace(c))
			continue;
		if (!seen) {
			*b = start;
			seen = true;
		}
		last = i;
	}
	if (seen)
		*e = last;
}

static unsigned uc_column(const char *s, size_t pos)
{
	unsigned col = 1;
	size_t i = 0;

	while (i < pos) {
		policy_utf8_next(s, pos, &i);
		col++;
	}
	return col;
}

/* ---- diagnostics ----------------------------------------------------------- */

void policy_diags_fini(struct policy_diags *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i].text);
		free(d->v[i].msg);
	}
	free(d->v);
	d->v = NULL;
	d->n = d->cap = 0;
}

size_t policy_diags_count(const struct policy_diags *d,
			  enum policy_diag_kind kind)
{
	size_t c = 0;

	for (size_t i = 0; i < d->n; i++)
		c += d->v[i].kind == kind;
	return c;
}

static void diag_add(struct policy_diags *d, enum policy_diag_kind kind,
		     unsigned line, unsigned col, const char *text, size_t tlen,
		     char *msg)
{
	if (!d) {
		free(msg);
		return;
	}
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 8;
		d->v = util_xrealloc(d->v, d->cap * sizeof(*d->v));
	}
	d->v[d->n].kind = kind;
	d->v[d->n].line = line;
	d->v[d->n].column = col;
	d->v[d->n].text = util_xstrndup(text, tlen);
	d->v[d->n].msg = msg;
	d->n++;
}

/* ---- the line grammar ------------------------------------------------------ */

struct span {
	size_t b, e;
};

struct pattr {
	struct span key;
	struct span val;
	enum policy_val_form form;
};

enum line_kind { LINE_NONE, LINE_HEADER, LINE_RULE };

enum header_kind {
	HDR_EMPTY,
	HDR_PASSTHROUGH,
	HDR_INSECURE,
	HDR_URL_BASE,
	HDR_METHODS,
	HDR_PORT,
	HDR_ATTRS,
	HDR_KIND_MAX
};

/* What one line parsed into; spans index the line. */
struct pline {
	enum line_kind kind;
	enum header_kind hkind;
	enum policy_rule_type rtype;
	struct span target; /* rule target, or the URL base of a header */
	bool has_ports;
	struct span ports; /* the port list, after ':' */
	bool has_proto;
	enum policy_proto proto;
	bool has_methods;
	struct span methods; /* the method list */
	bool passthrough;
	bool insecure;
	struct pattr *attrs; /* grown as needed; owned by the line loop */
	size_t nattrs;
	size_t attrs_cap;
};

#define MAX_EXPECT 6

struct lp {
	const char *s;
	size_t n;
	size_t far; /* furthest position where a terminal failed */
	const char *exp[MAX_EXPECT];
	size_t nexp;
	struct pline *out;
};

static ssize_t fail(struct lp *lp, size_t pos, const char *what)
{
	if (pos > lp->far) {
		lp->far = pos;
		lp->nexp = 0;
	}
	if (pos == lp->far) {
		for (size_t i = 0; i < lp->nexp; i++)
			if (strcmp(lp->exp[i], what) == 0)
				return -1;
		if (lp->nexp < MAX_EXPECT)
			lp->exp[lp->nexp++] = what;
	}
	return -1;
}

static inline int at(const struct lp *lp, size_t pos)
{
	return pos < lp->n ? (unsigned char)lp->s[pos] : -1;
}

static inline bool is_ws(int c)
{
	return c == ' ' || c == '\t';
}

static inline bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static inline bool is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline bool is_alnum(int c)
{
	return is_alpha(c) || is_digit(c);
}

static ssize_t p_lit(struct lp *lp, size_t pos, const char *lit,
		     const char *what)
{
	size_t len = strlen(lit);

	if (lp->n - pos >= len && memcmp(lp->s + pos, lit, len) == 0)
		return (ssize_t)(pos + len);
	return fail(lp, pos, what);
}

static ssize_t p_ws1(struct lp *lp, size_t pos)
{
	if (!is_ws(at(lp, pos)))
		return fail(lp, pos, "whitespace");
	while (is_ws(at(lp, pos)))
		pos++;
	return (ssize_t)pos;
}

static size_t p_ws0(const struct lp *lp, size_t pos)
{
	while (is_ws(at(lp, pos)))
		pos++;
	return pos;
}

static const char *const method_tok[POLICY_METHOD_MAX] = {
	"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "*",
};

static ssize_t p_method(struct lp *lp, size_t pos)
{
	for (size_t i = 0; i < POLICY_METHOD_MAX; i++) {
		size_t len = strlen(method_tok[i]);
		if (lp->n - pos >= len &&
		    memcmp(lp->s + pos, method_tok[i], len) == 0)
			return (ssize_t)(pos + len);
	}
	return fail(lp, pos,
		    "an HTTP method (GET, HEAD, POST, PUT, DELETE, PATCH, "
		    "OPTIONS or *, upper case)");
}

static ssize_t p_method_list(struct lp *lp, size_t pos)
{
	ssize_t q = p_method(lp, pos), r;

	if (q < 0)
		return -1;
	while (at(lp, (size_t)q) == '|' &&
	       (r = p_method(lp, (size_t)q + 1)) >= 0)
		q = r;
	return q;
}

static ssize_t p_scheme(struct lp *lp, size_t pos)
{
	ssize_t q = p_lit(lp, pos, "https", "a scheme (http or https)");

	return q >= 0 ? q : p_lit(lp, pos, "http", "a scheme (http or https)");
}

static ssize_t p_port_value(struct lp *lp, size_t pos)
{
	if (at(lp, pos) == '*')
		return (ssize_t)pos + 1;
	if (!is_digit(at(lp, pos)))
		return fail(lp, pos, "a port number or *");
	while (is_digit(at(lp, pos)))
		pos++;
	return (ssize_t)pos;
}

static ssize_t p_port_list(struct lp *lp, size_t pos)
{
	ssize_t q = p_port_value(lp, pos), r;

	if (q < 0)
		return -1;
	while (at(lp, (size_t)q) == '|' &&
	       (r = p_port_value(lp, (size_t)q + 1)) >= 0)
		q = r;
	return q;
}

/* port-spec ::= ":" port-list; records the list's span. */
static ssize_t p_port_spec(struct lp *lp, size_t pos, struct span *sp)
{
	ssize_t q;

	if (at(lp, pos) != ':')
		return fail(lp, pos, "':' and a port");
	q = p_port_list(lp, pos + 1);
	if (q < 0)
		return -1;
	sp->b = pos + 1;
	sp->e = (size_t)q;
	return q;
}

static ssize_t p_proto(struct lp *lp, size_t pos, enum policy_proto *proto)
{
	if (at(lp, pos) != '/')
		return fail(lp, pos, "'/tcp' or '/udp'");
	if (p_lit(lp, pos + 1, "udp", "'tcp' or 'udp' (lower case)") >= 0) {
		*proto = POLICY_UDP;
		return (ssize_t)pos + 4;
	}
	if (p_lit(lp, pos + 1, "tcp", "'tcp' or 'udp' (lower case)") >= 0) {
		*proto = POLICY_TCP;
		return (ssize_t)pos + 4;
	}
	return -1;
}

/* port-spec [ "/" proto ], filling the line's port and protocol. */
static ssize_t p_port_proto(struct lp *lp, size_t pos)
{
	struct span sp;
	enum policy_proto proto = POLICY_TCP;
	ssize_t q = p_port_spec(lp, pos, &sp), r;

	if (q < 0)
		return -1;
	lp->out->has_ports = true;
	lp->out->ports = sp;
	r = p_proto(lp, (size_t)q, &proto);
	if (r >= 0) {
		lp->out->has_proto = true;
		lp->out->proto = proto;
		q = r;
	}
	return q;
}

/* octet: 25[0-5] / 2[0-4][0-9] / 1[0-9][0-9] / [1-9][0-9] / [0-9] */
static ssize_t p_octet(struct lp *lp, size_t pos)
{
	int a = at(lp, pos), b = at(lp, pos + 1), c = at(lp, pos + 2);

	if (a == '2' && b == '5' && c >= '0' && c <= '5')
		return (ssize_t)pos + 3;
	if (a == '2' && b >= '0' && b <= '4' && is_digit(c))
		return (ssize_t)pos + 3;
	if (a == '1' && is_digit(b) && is_digit(c))
		return (ssize_t)pos + 3;
	if (a >= '1' && a <= '9' && is_digit(b))
		return (ssize_t)pos + 2;
	if (is_digit(a))
		return (ssize_t)pos + 1;
	return fail(lp, pos, "an IPv4 octet (0-255)");
}

static ssize_t p_ipv4(struct lp *lp, size_t pos)
{
	ssize_t q = (ssize_t)pos;

	for (int i = 0; i < 4; i++) {
		if (i > 0) {
			if (at(lp, (size_t)q) != '.')
				return fail(lp, (size_t)q, "'.'");
			q++;
		}
		q = p_octet(lp, (size_t)q);
		if (q < 0)
			return -1;
	}
	if (at(lp, (size_t)q) == '.')
		return fail(lp, (size_t)q, "no fifth address group");
	return q;
}

/* [0-9]+ "." [0-9]+ "." [0-9]+ "." [0-9]+ at pos (a lookahead). */
static bool ipv4_lookahead(const struct lp *lp, size_t pos)
{
	for (int i = 0; i < 4; i++) {
		if (i > 0) {
			if (at(lp, pos) != '.')
				return false;
			pos++;
		}
		if (!is_digit(at(lp, pos)))
			return false;
		while (is_digit(at(lp, pos)))
			pos++;
	}
	return true;
}

/* [a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])? */
static ssize_t p_host_label(struct lp *lp, size_t pos)
{
	size_t end, i;

	if (!is_alnum(at(lp, pos)))
		return fail(lp, pos, "a hostname label");
	end = pos + 1;
	for (i = pos + 1; is_alnum(at(lp, i)) || at(lp, i) == '-'; i++)
		if (is_alnum(at(lp, i)))
			end = i + 1;
	return (ssize_t)end;
}

/* [a-zA-Z][a-zA-Z0-9]* */
static ssize_t p_tld(struct lp *lp, size_t pos)
{
	if (!is_alpha(at(lp, pos)))
		return fail(lp, pos,
			    "a top-level domain (a letter, then letters "
			    "or digits)");
	pos++;
	while (is_alnum(at(lp, pos)))
		pos++;
	return (ssize_t)pos;
}

/* (label ".")+ tld */
static ssize_t p_hostname(struct lp *lp, size_t pos)
{
	size_t q = pos;
	int labels = 0;
	ssize_t r;

	while ((r = p_host_label(lp, q)) >= 0) {
		if (at(lp, (size_t)r) != '.') {
			fail(lp, (size_t)r, "'.'");
			break;
		}
		q = (size_t)r + 1;
		labels++;
	}
	if (!labels)
		return -1;
	return p_tld(lp, q);
}

static ssize_t p_hostname_or_tld(struct lp *lp, size_t pos)
{
	ssize_t q = p_hostname(lp, pos);

	return q >= 0 ? q : p_tld(lp, pos);
}

/* [a-zA-Z0-9-]* "*" [a-zA-Z0-9*-]* */
static ssize_t p_wild_label(struct lp *lp, size_t pos)
{
	while (is_alnum(at(lp, pos)) || at(lp, pos) == '-')
		pos++;
	if (at(lp, pos) != '*')
		return fail(lp, pos, "a hostname label");
	pos++;
	while (is_alnum(at(lp, pos)) || at(lp, pos) == '-' ||
	       at(lp, pos) == '*')
		pos++;
	return (ssize_t)pos;
}

static ssize_t p_wildcard_host(struct lp *lp, size_t pos)
{
	ssize_t q;

	/* subdomain form: "*." wlabel "." host-or-tld */
	if (at(lp, pos) == '*' && at(lp, pos + 1) == '.') {
		q = p_wild_label(lp, pos + 2);
		if (q >= 0 && at(lp, (size_t)q) == '.') {
			q = p_hostname_or_tld(lp, (size_t)q + 1);
			if (q >= 0)
				return q;
		} else if (q >= 0) {
			fail(lp, (size_t)q, "'.'");
		}
	}
	/* label form: wlabel "." host-or-tld */
	q = p_wild_label(lp, pos);
	if (q < 0)
		return -1;
	if (at(lp, (size_t)q) != '.')
		return fail(lp, (size_t)q, "'.' after the wildcard label");
	return p_hostname_or_tld(lp, (size_t)q + 1);
}

static ssize_t p_exact_host(struct lp *lp, size_t pos)
{
	ssize_t q;

	if (ipv4_lookahead(lp, pos))
		return fail(lp, pos,
			    "a hostname (text starting with an IPv4 address "
			    "is not a hostname)");
	q = p_hostname(lp, pos);
	if (q < 0)
		return -1;
	if (at(lp, (size_t)q) == ':' && at(lp, (size_t)q + 1) == '/')
		return fail(lp, (size_t)q, "no ':/' after a hostname");
	return q;
}

static ssize_t p_url_host(struct lp *lp, size_t pos)
{
	ssize_t q = p_ipv4(lp, pos);

	if (q >= 0)
		return q;
	q = p_wildcard_host(lp, pos);
	if (q >= 0)
		return q;
	return p_hostname(lp, pos);
}

static bool is_path_char(int c)
{
	return is_alnum(c) || (c != -1 && strchr("_.~*/%+-", c) != NULL);
}

static size_t p_path_rest(struct lp *lp, size_t pos)
{
	while (is_path_char(at(lp, pos)))
		pos++;
	if (pos < lp->n)
		fail(lp, pos, "a path character (letters, digits, _.~*/%+-)");
	return pos;
}

static ssize_t p_kv_key(struct lp *lp, size_t pos)
{
	static const char *const keys[] = { "image",  "action", "step",
					    "cgroup", "exe",	"arg" };
	static const char what[] = "an attribute key (exe, arg, arg[N], "
				   "step, action, cgroup, image)";

	if (lp->n - pos >= 4 && memcmp(lp->s + pos, "arg[", 4) == 0 &&
	    is_digit(at(lp, pos + 4))) {
		size_t q = pos + 4;
		while (is_digit(at(lp, q)))
			q++;
		if (at(lp, q) == ']')
			return (ssize_t)q + 1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		size_t len = strlen(keys[i]);
		if (lp->n - pos >= len &&
		    memcmp(lp->s + pos, keys[i], len) == 0)
			return (ssize_t)(pos + len);
	}
	return fail(lp, pos, what);
}

static ssize_t p_kv_value(struct lp *lp, size_t pos, struct pattr *a)
{
	const char *end;
	size_t i;

	if (at(lp, pos) == '`' &&
	    (end = memchr(lp->s + pos + 1, '`', lp->n - pos - 1)) != NULL) {
		a->form = POLICY_VAL_BACKTICK;
		a->val.b = pos + 1;
		a->val.e = (size_t)(end - lp->s);
		return (ssize_t)a->val.e + 1;
	}
	if (at(lp, pos) == '"' &&
	    (end = memchr(lp->s + pos + 1, '"', lp->n - pos - 1)) != NULL) {
		a->form = POLICY_VAL_QUOTED;
		a->val.b = pos + 1;
		a->val.e = (size_t)(end - lp->s);
		return (ssize_t)a->val.e + 1;
	}
	/* bare: one or more characters, none white space, '#' or ']' */
	i = pos;
	while (i < lp->n) {
		size_t j = i;
		uint32_t c = policy_utf8_next(lp->s, lp->n, &j);
		if (policy_uc_isspace(c) || c == '#' || c == ']')
			break;
		i = j;
	}
	if (i == pos)
		return fail(lp, pos, "an attribute value");
	a->form = POLICY_VAL_BARE;
	a->val.b = pos;
	a->val.e = i;
	return (ssize_t)i;
}

static ssize_t p_kv_attr(struct lp *lp, size_t pos)
{
	struct pattr a;
	ssize_t q = p_kv_key(lp, pos);

	if (q < 0)
		return -1;
	a.key.b = pos;
	a.key.e = (size_t)q;
	if (at(lp, (size_t)q) != '=')
		return fail(lp, (size_t)q, "'=' after the attribute key");
	q = p_kv_value(lp, (size_t)q + 1, &a);
	if (q < 0)
		return -1;
	if (lp->out->nattrs == lp->out->attrs_cap) {
		lp->out->attrs_cap =
			lp->out->attrs_cap ? 2 * lp->out->attrs_cap : 8;
		lp->out->attrs = util_xrealloc(lp->out->attrs,
					       lp->out->attrs_cap *
						       sizeof(*lp->out->attrs));
	}
	lp->out->attrs[lp->out->nattrs++] = a;
	return q;
}

/* (ws+ attr)+ when at_least_one, else (ws+ attr)*; never fails then. */
static ssize_t p_kv_attrs(struct lp *lp, size_t pos, bool at_least_one)
{
	size_t n0 = lp->out->nattrs;
	size_t q = pos;
	ssize_t r;

	for (;;) {
		size_t save = lp->out->nattrs;
		r = p_ws1(lp, q);
		if (r >= 0)
			r = p_kv_attr(lp, (size_t)r);
		if (r < 0) {
			lp->out->nattrs = save;
			break;
		}
		q = (size_t)r;
	}
	if (at_least_one && lp->out->nattrs == n0)
		return -1;
	return (ssize_t)q;
}

/* [ WS+ word ]: returns the new position, setting *flag when present. */
static size_t p_flag(struct lp *lp, size_t pos, const char *word, bool *flag)
{
	ssize_t q = p_ws1(lp, pos);

	if (q >= 0)
		q = p_lit(lp, (size_t)q, word, word);
	if (q < 0)
		return pos;
	*flag = true;
	return (size_t)q;
}

/* inline comment and trailing white space, then the end of the line */
static ssize_t p_trailer(struct lp *lp, size_t pos)
{
	ssize_t q = p_ws1(lp, pos);

	if (q >= 0 && at(lp, (size_t)q) == '#')
		return (ssize_t)lp->n;
	if (q >= 0)
		fail(lp, (size_t)q, "'#' (a comment)");
	pos = p_ws0(lp, pos);
	if (pos != lp->n)
		return fail(lp, pos, "end of line");
	return (ssize_t)pos;
}

/* url-base ::= scheme "://" url-host [ ":" port-list ] [ "/" path* ] */
static ssize_t p_url_base(struct lp *lp, size_t pos)
{
	ssize_t q = p_scheme(lp, pos);
	struct span sp;

	if (q < 0)
		return -1;
	q = p_lit(lp, (size_t)q, "://", "'://'");
	if (q < 0)
		return -1;
	q = p_url_host(lp, (size_t)q);
	if (q < 0)
		return -1;
	if (at(lp, (size_t)q) == ':') {
		ssize_t r = p_port_spec(lp, (size_t)q, &sp);
		if (r >= 0) {
			lp->out->has_ports = true;
			lp->out->ports = sp;
			q = r;
		}
	}
	if (at(lp, (size_t)q) == '/')
		q = (ssize_t)p_path_rest(lp, (size_t)q + 1);
	return q;
}

static ssize_t p_header_content(struct lp *lp, size_t pos)
{
	struct pline *o = lp->out;
	ssize_t q;

	if ((q = p_lit(lp, pos, "passthrough", "'passthrough'")) >= 0) {
		o->hkind = HDR_PASSTHROUGH;
		return p_kv_attrs(lp, (size_t)q, false);
	}
	if ((q = p_lit(lp, pos, "insecure", "'insecure'")) >= 0) {
		o->hkind = HDR_INSECURE;
		return p_kv_attrs(lp, (size_t)q, false);
	}
	if ((q = p_url_base(lp, pos)) >= 0) {
		o->hkind = HDR_URL_BASE;
		o->target.b = pos;
		o->target.e = (size_t)q;
		return p_kv_attrs(lp, (size_t)q, false);
	}
	if ((q = p_method_list(lp, pos)) >= 0) {
		o->hkind = HDR_METHODS;
		o->has_methods = true;
		o->methods.b = pos;
		o->methods.e = (size_t)q;
		return p_kv_attrs(lp, (size_t)q, false);
	}
	if ((q = p_port_proto(lp, pos)) >= 0) {
		o->hkind = HDR_PORT;
		return p_kv_attrs(lp, (size_t)q, false);
	}
	o->has_ports = o->has_proto = false;
	if ((q = p_kv_attr(lp, pos)) >= 0) {
		o->hkind = HDR_ATTRS;
		return p_kv_attrs(lp, (size_t)q, false);
	}
	return -1;
}

static ssize_t p_header(struct lp *lp, size_t pos)
{
	ssize_t q;

	pos = p_ws0(lp, pos);
	if (at(lp, pos) != '[')
		return fail(lp, pos, "'['");
	lp->out->kind = LINE_HEADER;
	lp->out->hkind = HDR_EMPTY;
	q = (ssize_t)pos + 1;
	if (at(lp, (size_t)q) != ']') {
		ssize_t r = p_header_content(lp, (size_t)q);
		if (r >= 0)
			q = r;
	}
	if (at(lp, (size_t)q) != ']')
		return fail(lp, (size_t)q, "']'");
	return p_trailer(lp, (size_t)q + 1);
}

/* [ method-list WS+ ] */
static size_t p_method_prefix(struct lp *lp, size_t pos)
{
	ssize_t q = p_method_list(lp, pos), r;

	if (q < 0)
		return pos;
	r = p_ws1(lp, (size_t)q);
	if (r < 0)
		return pos;
	lp->out->has_methods = true;
	lp->out->methods.b = pos;
	lp->out->methods.e = (size_t)q;
	return (size_t)r;
}

static ssize_t p_url_rule(struct lp *lp, size_t pos)
{
	struct pline *o = lp->out;
	size_t start = p_method_prefix(lp, pos);
	ssize_t q = p_scheme(lp, start);

	if (q < 0)
		return -1;
	q = p_lit(lp, (size_t)q, "://", "'://'");
	if (q < 0)
		return -1;
	q = p_url_host(lp, (size_t)q);
	if (q < 0)
		return -1;
	if (at(lp, (size_t)q) == ':') {
		q = p_port_spec(lp, (size_t)q, &o->ports);
		if (q < 0)
			return -1;
		o->has_ports = true;
	}
	if (at(lp, (size_t)q) != '/')
		return fail(lp, (size_t)q,
			    "'/' (a URL rule needs a path; write "
			    "https://host/ for the root)");
	q = (ssize_t)p_path_rest(lp, (size_t)q + 1);
	o->rtype = POLICY_URL;
	o->target.b = start;
	o->target.e = (size_t)q;
	q = (ssize_t)p_flag(lp, (size_t)q, "insecure", &o->insecure);
	return p_kv_attrs(lp, (size_t)q, false);
}

static ssize_t p_path_rule(struct lp *lp, size_t pos)
{
	struct pline *o = lp->out;
	size_t start = p_method_prefix(lp, pos);
	ssize_t q;

	if (at(lp, start) != '/')
		return fail(lp, start, "'/' (a path rule)");
	q = (ssize_t)p_path_rest(lp, start + 1);
	o->rtype = POLICY_PATH;
	o->target.b = start;
	o->target.e = (size_t)q;
	q = (ssize_t)p_flag(lp, (size_t)q, "insecure", &o->insecure);
	return p_kv_attrs(lp, (size_t)q, false);
}

static ssize_t p_target(struct lp *lp, size_t pos)
{
	struct pline *o = lp->out;
	ssize_t q;

	q = p_ipv4(lp, pos);
	if (q >= 0 && at(lp, (size_t)q) == '/') {
		/* cidr: ipv4 "/" (3[0-2] / [12][0-9] / [0-9]) */
		int a = at(lp, (size_t)q + 1), b = at(lp, (size_t)q + 2);
		size_t e;
		if (a == '3' && b >= '0' && b <= '2')
			e = (size_t)q + 3;
		else if ((a == '1' || a == '2') && is_digit(b))
			e = (size_t)q + 3;
		else if (is_digit(a))
			e = (size_t)q + 2;
		else
			goto not_cidr;
		o->rtype = POLICY_CIDR;
		o->target.b = pos;
		o->target.e = e;
		return (ssize_t)e;
	}
not_cidr:
	if (q >= 0) {
		if (at(lp, (size_t)q) == '/') {
			fail(lp, (size_t)q + 1, "a prefix length (0-32)");
		} else {
			o->rtype = POLICY_IP;
			o->target.b = pos;
			o->target.e = (size_t)q;
			return q;
		}
	}
	if (lp->n - pos >= 4 && memcmp(lp->s + pos, "dns:", 4) == 0) {
		q = p_wildcard_host(lp, pos + 4);
		if (q >= 0) {
			o->rtype = POLICY_DNS_WILDCARD_HOST;
		} else if ((q = p_exact_host(lp, pos + 4)) >= 0) {
			o->rtype = POLICY_DNS_HOST;
		} else {
			return -1;
		}
		o->target.b = pos + 4;
		o->target.e = (size_t)q;
		return q;
	}
	if ((q = p_wildcard_host(lp, pos)) >= 0) {
		o->rtype = POLICY_WILDCARD_HOST;
	} else if ((q = p_exact_host(lp, pos)) >= 0) {
		o->rtype = POLICY_HOST;
	} else {
		return -1;
	}
	o->target.b = pos;
	o->target.e = (size_t)q;
	return q;
}

static ssize_t p_network_rule(struct lp *lp, size_t pos)
{
	struct pline *o = lp->out;
	ssize_t q = p_target(lp, pos), r;

	if (q < 0)
		return -1;
	r = p_port_proto(lp, (size_t)q);
	if (r >= 0)
		q = r;
	q = (ssize_t)p_flag(lp, (size_t)q, "passthrough", &o->passthrough);
	q = (ssize_t)p_flag(lp, (size_t)q, "insecure", &o->insecure);
	return p_kv_attrs(lp, (size_t)q, false);
}

/* Forgets what a failed alternative recorded; keeps the attribute buffer. */
static void pline_reset(struct pline *o, enum line_kind kind)
{
	struct pattr *attrs = o->attrs;
	size_t cap = o->attrs_cap;

	memset(o, 0, sizeof(*o));
	o->attrs = attrs;
	o->attrs_cap = cap;
	o->kind = kind;
}

static ssize_t p_rule(struct lp *lp, size_t pos)
{
	struct pline *o = lp->out;
	ssize_t q;

	pos = p_ws0(lp, pos);
	pline_reset(o, LINE_RULE);
	if ((q = p_url_rule(lp, pos)) < 0) {
		pline_reset(o, LINE_RULE);
		if ((q = p_path_rule(lp, pos)) < 0) {
			pline_reset(o, LINE_RULE);
			if ((q = p_network_rule(lp, pos)) < 0)
				return -1;
		}
	}
	return p_trailer(lp, (size_t)q);
}

/* ---- error messages -------------------------------------------------------- */

static bool word_at(const struct lp *lp, size_t pos, const char *w)
{
	size_t len = strlen(w);

	return lp->n - pos >= len && memcmp(lp->s + pos, w, len) == 0;
}

/* Does the line start with a lower-case HTTP method and white space? */
static bool lower_method_prefix(const struct lp *lp)
{
	static const char *const m[] = { "get",	   "head",  "post",   "put",
					 "delete", "patch", "options" };
	size_t pos = p_ws0(lp, 0);

	for (size_t i = 0; i < ARRAY_SIZE(m); i++) {
		size_t len = strlen(m[i]);
		if (lp->n - pos > len &&
		    strncasecmp(lp->s + pos, m[i], len) == 0 &&
		    (is_ws(at(lp, pos + len)) || at(lp, pos + len) == '|') &&
		    memcmp(lp->s + pos, method_tok[i], len) != 0)
			return true;
	}
	return false;
}

/*
 * Turns the furthest failure into a sentence.  A few frequent mistakes get a
 * message of their own; otherwise the expectations at the failing column.
 */
static char *syntax_message(const struct lp *lp)
{
	struct strbuf sb = { 0 };
	size_t pos = lp->far;
	int c = at(lp, pos);
	size_t w = pos;

	while (w < lp->n && !is_ws(at(lp, w)))
		w++;
	if (c == '#' && pos > 0 && !is_ws(at(lp, pos - 1))) {
		strbuf_adds(&sb, "'#' must follow white space to start a "
				 "comment (URL fragments are not allowed)");
	} else if ((c == '.' && (pos + 1 == lp->n || is_ws(at(lp, pos + 1)) ||
				 at(lp, pos + 1) == ':')) ||
		   (pos > 0 && at(lp, pos - 1) == '.' &&
		    (c == -1 || is_ws(c) || c == ':'))) {
		strbuf_adds(&sb, "a hostname cannot end with a dot");
	} else if (lower_method_prefix(lp)) {
		strbuf_adds(&sb, "HTTP methods must be upper case (GET, HEAD, "
				 "POST, PUT, DELETE, PATCH, OPTIONS)");
	} else if (word_at(lp, pos, "passthrough") ||
		   word_at(lp, pos, "insecure")) {
		strbuf_adds(&sb, "flags go after the port and before the "
				 "attributes, passthrough before insecure; "
				 "passthrough is not allowed on URL or path "
				 "rules");
	} else if (c == '?') {
		strbuf_adds(&sb, "query strings are not allowed in URL or "
				 "path rules");
	} else if (c != -1 && c >= 0x80) {
		strbuf_adds(&sb, "non-ASCII character (IDN names must be "
				 "written in punycode; only space and tab "
				 "count as white space)");
	} else {
		for (size_t i = 0; i < lp->nexp; i++) {
			strbuf_adds(&sb, i == 0		   ? "expected " :
					 i + 1 == lp->nexp ? " or " :
							     ", ");
			strbuf_adds(&sb, lp->exp[i]);
		}
		if (!lp->nexp)
			strbuf_adds(&sb, "invalid syntax");
	}
	if (c == -1)
		strbuf_adds(&sb, " at end of line");
	else if (w > pos && w - pos <= 40)
		strbuf_addf(&sb, " at '%.*s'", (int)(w - pos), lp->s + pos);
	return strbuf_steal(&sb);
}

/* ---- context and flattening ------------------------------------------------ */

struct attrset {
	struct policy_attr *v;
	size_t n;
};

struct pctx {
	bool port_any;
	const uint64_t *ports;
	size_t nports;
	enum policy_proto proto;
	const uint8_t *methods; /* NULL: unset */
	size_t nmethods;
	const char *url_base;
	struct attrset attrs;
	bool passthrough;
	bool insecure;
};

struct builder {
	struct policy *p;
	struct pctx defaults;
	struct pctx ctx;
	size_t cap;
	struct policy_diags *diags;
	unsigned line;
};

static const uint64_t port_443[] = { 443 };
static const uint64_t port_80[] = { 80 };
static const uint8_t default_methods[] = { POLICY_M_GET, POLICY_M_HEAD };

static uint64_t parse_u64_sat(const char *s, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t d = (uint64_t)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return UINT64_MAX;
		v = v * 10 + d;
	}
	return v;
}

/*
 * A port list as the reference reads it: "*" first means any, a "*" later is
 * ignored, numbers are decimal with no range check.
 */
static void build_ports(struct builder *b, const char *s, struct span sp,
			bool *any, const uint64_t **ports, size_t *nports)
{
	size_t cnt = 1, i = sp.b;
	uint64_t *v;

	if (s[sp.b] == '*') {
		*any = true;
		*ports = NULL;
		*nports = 0;
		return;
	}
	for (size_t j = sp.b; j < sp.e; j++)
		cnt += s[j] == '|';
	v = arena_alloc(&b->p->arena, cnt * sizeof(*v));
	*nports = 0;
	while (i < sp.e) {
		size_t j = i;
		while (j < sp.e && s[j] != '|')
			j++;
		if (s[i] != '*')
			v[(*nports)++] = parse_u64_sat(s + i, j - i);
		i = j + 1;
	}
	*any = false;
	*ports = v;
}

static void build_methods(struct builder *b, const char *s, struct span sp,
			  const uint8_t **out, size_t *n)
{
	size_t cnt = 1, i = sp.b;
	uint8_t *v;

	for (size_t j = sp.b; j < sp.e; j++)
		cnt += s[j] == '|';
	v = arena_alloc(&b->p->arena, cnt);
	*n = 0;
	while (i < sp.e) {
		size_t j = i;
		while (j < sp.e && s[j] != '|')
			j++;
		for (uint8_t m = 0; m < POLICY_METHOD_MAX; m++) {
			if (strlen(method_tok[m]) == j - i &&
			    memcmp(method_tok[m], s + i, j - i) == 0) {
				v[(*n)++] = m;
				break;
			}
		}
		i = j + 1;
	}
	*out = v;
}

static enum policy_attr_key attr_kind(const char *key, uint64_t *index)
{
	static const char *const names[] = {
		[POLICY_ATTR_EXE] = "exe",
		[POLICY_ATTR_ARG] = "arg",
		[POLICY_ATTR_STEP] = "step",
		[POLICY_ATTR_ACTION] = "action",
		[POLICY_ATTR_CGROUP] = "cgroup",
		[POLICY_ATTR_IMAGE] = "image",
	};

	*index = 0;
	if (strncmp(key, "arg[", 4) == 0) {
		*index = parse_u64_sat(key + 4, strlen(key) - 5);
		return POLICY_ATTR_ARG_N;
	}
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (names[i] && strcmp(names[i], key) == 0)
			return (enum policy_attr_key)i;
	return POLICY_ATTR_KEY_MAX;
}

/*
 * Merges attributes over base like a Python dict update: an existing key
 * keeps its position and takes the new value, a new key is appended.
 */
static struct attrset merge_attrs(struct builder *b, struct attrset base,
				  const char *s, const struct pline *pl)
{
	struct attrset r;

	r.v = arena_alloc(&b->p->arena, (base.n + pl->nattrs) * sizeof(*r.v));
	if (base.n)
		memcpy(r.v, base.v, base.n * sizeof(*r.v));
	r.n = base.n;
	for (size_t i = 0; i < pl->nattrs; i++) {
		const struct pattr *a = &pl->attrs[i];
		size_t klen = a->key.e - a->key.b, j;
		for (j = 0; j < r.n; j++)
			if (strlen(r.v[j].key) == klen &&
			    memcmp(r.v[j].key, s + a->key.b, klen) == 0)
				break;
		if (j == r.n) {
			r.v[j].key =
				arena_strndup(&b->p->arena, s + a->key.b, klen);
			r.v[j].kind = attr_kind(r.v[j].key, &r.v[j].index);
			r.n++;
		}
		r.v[j].value = arena_strndup(&b->p->arena, s + a->val.b,
					     a->val.e - a->val.b);
		r.v[j].form = a->form;
	}
	return r;
}

static void apply_header(struct builder *b, const char *s,
			 const struct pline *pl)
{
	struct pctx *c = &b->ctx;

	*c = b->defaults;
	switch (pl->hkind) {
	case HDR_PASSTHROUGH:
		c->passthrough = true;
		break;
	case HDR_INSECURE:
		c->insecure = true;
		break;
	case HDR_URL_BASE:
		c->url_base = arena_strndup(&b->p->arena, s + pl->target.b,
					    pl->target.e - pl->target.b);
		if (pl->has_ports) {
			build_ports(b, s, pl->ports, &c->port_any, &c->ports,
				    &c->nports);
		} else {
			bool https = strncmp(c->url_base, "https:", 6) == 0;
			c->port_any = false;
			c->ports = https ? port_443 : port_80;
			c->nports = 1;
		}
		c->proto = POLICY_TCP;
		break;
	case HDR_METHODS:
		build_methods(b, s, pl->methods, &c->methods, &c->nmethods);
		break;
	case HDR_PORT:
		build_ports(b, s, pl->ports, &c->port_any, &c->ports,
			    &c->nports);
		if (pl->has_proto)
			c->proto = pl->proto;
		break;
	case HDR_EMPTY:
	case HDR_ATTRS:
	case HDR_KIND_MAX:
		break;
	}
	c->attrs = merge_attrs(b, c->attrs, s, pl);
}

static void rule_reject(struct builder *b, const char *line, size_t len,
			const char *fmt, const char *arg)
{
	size_t tb, te;
	struct strbuf sb = { 0 };

	strbuf_addf(&sb, fmt, arg);
	uc_strip(line, len, &tb, &te);
	if (b->line)
		diag_add(b->diags, POLICY_DIAG_RULE, b->line, 0, line + tb,
			 te - tb, strbuf_steal(&sb));
	else
		strbuf_fini(&sb);
}

/* The flattened rule for one rule line, or NULL when it is rejected. */
static struct policy_rule *build_rule(struct builder *b, const char *s,
				      size_t len, const struct pline *pl)
{
	const struct pctx *c = &b->ctx;
	struct policy_rule r;

	memset(&r, 0, sizeof(r));
	r.type = pl->rtype;
	r.target = arena_strndup(&b->p->arena, s + pl->target.b,
				 pl->target.e - pl->target.b);
	r.line = b->line;
	if (r.type == POLICY_URL) {
		const char *t = r.target;
		if (pl->has_ports) {
			build_ports(b, s, pl->ports, &r.port_any, &r.ports,
				    &r.nports);
		} else {
			r.ports = strncmp(t, "https:", 6) == 0 ? port_443 :
								 port_80;
			r.nports = 1;
		}
		r.proto = POLICY_TCP;
	} else if (r.type == POLICY_PATH) {
		r.port_any = c->port_any;
		r.ports = c->ports;
		r.nports = c->nports;
		r.proto = POLICY_TCP;
	} else {
		if (pl->has_ports) {
			build_ports(b, s, pl->ports, &r.port_any, &r.ports,
				    &r.nports);
		} else {
			r.port_any = c->port_any;
			r.ports = c->ports;
			r.nports = c->nports;
		}
		r.proto = pl->has_proto ? pl->proto : c->proto;
	}
	if (r.type == POLICY_URL || r.type == POLICY_PATH) {
		if (pl->has_methods)
			build_methods(b, s, pl->methods, &r.methods,
				      &r.nmethods);
		else if (c->methods) {
			r.methods = c->methods;
			r.nmethods = c->nmethods;
		} else {
			r.methods = b->defaults.methods;
			r.nmethods = b->defaults.nmethods;
		}
	}
	struct attrset as = merge_attrs(b, c->attrs, s, pl);
	r.attrs = as.v;
	r.nattrs = as.n;
	r.passthrough = pl->passthrough || c->passthrough;
	r.insecure = pl->insecure || c->insecure;

	if (r.type == POLICY_PATH) {
		if (!c->url_base) {
			rule_reject(b, s, len,
				    "path rule requires a URL header context "
				    "(e.g. [https://example.com])%s",
				    "");
			return NULL;
		}
		r.url_base = c->url_base;
	}
	if (r.passthrough && r.type != POLICY_HOST &&
	    r.type != POLICY_WILDCARD_HOST) {
		rule_reject(b, s, len,
			    "passthrough is only supported on hostname and "
			    "wildcard rules, not %s",
			    policy_rule_type_str(r.type));
		return NULL;
	}
	if (r.insecure &&
	    (r.type == POLICY_DNS_HOST || r.type == POLICY_DNS_WILDCARD_HOST)) {
		rule_reject(b, s, len,
			    "insecure is not supported on DNS-only rules "
			    "(%s)",
			    policy_rule_type_str(r.type));
		return NULL;
	}
	if (r.passthrough && r.insecure) {
		rule_reject(b, s, len,
			    "passthrough and insecure cannot be combined on "
			    "one rule%s",
			    "");
		return NULL;
	}
	if (b->p->nrules == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 64;
		b->p->rules = util_xrealloc(b->p->rules,
					    b->cap * sizeof(*b->p->rules));
	}
	b->p->rules[b->p->nrules] = r;
	return &b->p->rules[b->p->nrules++];
}

/* ---- derived fields -------------------------------------------------------- */

static void derive(struct policy *p, struct policy_rule *r)
{
	struct arena *a = &p->arena;

	for (size_t i = 0; i < r->nmethods; i++)
		r->mbits |= 1u << r->methods[i];
	switch (r->type) {
	case POLICY_HOST:
	case POLICY_DNS_HOST:
	case POLICY_WILDCARD_HOST:
	case POLICY_DNS_WILDCARD_HOST: {
		char *h = util_ascii_lower(r->target, strlen(r->target));
		r->host = arena_strndup(a, h, strlen(h));
		free(h);
		r->host_wild = r->type == POLICY_WILDCARD_HOST ||
			       r->type == POLICY_DNS_WILDCARD_HOST;
		break;
	}
	case POLICY_URL:
	case POLICY_PATH: {
		const char *u = r->type == POLICY_URL ? r->target : r->url_base;
		const char *h = strstr(u, "://") + 3;
		size_t hl = strcspn(h, ":/");
		const char *path = h + hl;
		char *lh = util_ascii_lower(h, hl);

		r->https = strncmp(u, "https:", 6) == 0;
		r->host = arena_strndup(a, lh, hl);
		r->host_wild = strchr(lh, '*') != NULL;
		free(lh);
		path += strcspn(path, "/");
		if (r->type == POLICY_URL) {
			r->path = *path ? path : "/";
			break;
		}
		/* base path without trailing '/', then the rule's path,
		 * with runs of '/' collapsed (pattern only) */
		size_t bl = strlen(path);
		while (bl > 0 && path[bl - 1] == '/')
			bl--;
		size_t tl = strlen(r->target);
		char *pat = arena_alloc(a, bl + tl + 1), *o = pat;
		for (size_t i = 0; i < bl + tl; i++) {
			char ch = i < bl ? path[i] : r->target[i - bl];
			if (ch == '/' && o > pat && o[-1] == '/')
				continue;
			*o++ = ch;
		}
		*o = '\0';
		r->path = pat;
		break;
	}
	case POLICY_CIDR: {
		char ip[16];
		const char *sl = strchr(r->target, '/');
		size_t il = (size_t)(sl - r->target);
		struct in_addr in;
		unsigned bits = (unsigned)atoi(sl + 1);

		memcpy(ip, r->target, il);
		ip[il] = '\0';
		if (inet_pton(AF_INET, ip, &in) != 1)
			in.s_addr = 0;
		r->mask = bits ? 0xffffffffu << (32 - bits) : 0;
		r->net = ntohl(in.s_addr) & r->mask;
		break;
	}
	case POLICY_IP:
	case POLICY_RULE_TYPE_MAX:
		break;
	}
}

/* ---- cross-rule warnings --------------------------------------------------- */

static bool is_urlish(const struct policy_rule *r)
{
	return r->type == POLICY_URL || r->type == POLICY_PATH;
}

static bool has_hostname(const struct policy_rule *r)
{
	return r->type == POLICY_HOST || r->type == POLICY_WILDCARD_HOST ||
	       is_urlish(r);
}

/*
 * Do two hostname patterns overlap, as the validator sees it?  One pattern is
 * matched against the other's text, in both directions.
 */
static bool hosts_overlap(const struct policy_rule *a,
			  const struct policy_rule *b)
{
	return policy_host_match(a->host, a->host_wild, b->host) ||
	       policy_host_match(b->host, b->host_wild, a->host);
}

static void warn(struct policy_diags *d, char *msg)
{
	for (size_t i = 0; d && i < d->n; i++) {
		if (d->v[i].kind == POLICY_DIAG_WARNING &&
		    strcmp(d->v[i].msg, msg) == 0) {
			free(msg);
			return;
		}
	}
	diag_add(d, POLICY_DIAG_WARNING, 0, 0, "", 0, msg);
}

static char *fmt_rule(const struct policy_rule *r)
{
	struct strbuf sb = { 0 };

	if (r->type == POLICY_PATH)
		strbuf_addf(&sb, "%s under [%s]", r->target, r->url_base);
	else
		strbuf_adds(&sb, r->target);
	return strbuf_steal(&sb);
}

static void cross_rule_warnings(const struct policy *p, size_t first,
				struct policy_diags *d)
{
	for (size_t i = first; i < p->nrules; i++) {
		const struct policy_rule *pt = &p->rules[i];
		if (!pt->passthrough)
			continue;
		for (size_t j = first; j < p->nrules; j++) {
			const struct policy_rule *o = &p->rules[j];
			char *a, *bb;
			struct strbuf sb = { 0 };
			bool url_overlap, ins_overlap;

			if (i == j || !has_hostname(o))
				continue;
			/* (a) a passthrough pattern covering a URL rule's host,
			 * or a wildcard URL host covering a passthrough host */
			url_overlap = is_urlish(o) &&
				      (pt->host_wild ?
					       policy_host_match(pt->host, true,
								 o->host) :
					       policy_host_match(o->host,
								 o->host_wild,
								 pt->host));
			/* (b) a passthrough rule overlapping an insecure one */
			ins_overlap = o->insecure && hosts_overlap(pt, o);
			if (!url_overlap && !ins_overlap)
				continue;
			a = fmt_rule(pt);
			bb = fmt_rule(o);
			if (url_overlap)
				strbuf_addf(&sb,
					    "passthrough rule '%s' (line %u) "
					    "covers the host of URL rule '%s' "
					    "(line %u): passthrough traffic is "
					    "not decrypted, so its path and "
					    "method filtering will not apply",
					    a, pt->line, bb, o->line);
			else
				strbuf_addf(&sb,
					    "passthrough rule '%s' (line %u) "
					    "overlaps insecure rule '%s' (line "
					    "%u): insecure has no effect on "
					    "passthrough traffic",
					    a, pt->line, bb, o->line);
			warn(d, strbuf_steal(&sb));
			free(a);
			free(bb);
		}
	}
	/* (c) an insecure URL/path rule next to a verifying one, same host */
	for (size_t i = first; i < p->nrules; i++) {
		const struct policy_rule *in = &p->rules[i];
		if (!in->insecure || !is_urlish(in))
			continue;
		for (size_t j = first; j < p->nrules; j++) {
			const struct policy_rule *o = &p->rules[j];
			if (!is_urlish(o) || o->insecure ||
			    strcmp(o->host, in->host) != 0)
				continue;
			char *a = fmt_rule(in), *bb = fmt_rule(o);
			struct strbuf sb = { 0 };
			strbuf_addf(&sb,
				    "insecure URL rule '%s' (line %u) shares "
				    "host '%s' with URL rule '%s' (line %u): "
				    "certificate verification is decided per "
				    "host, so it is off for both",
				    a, in->line, in->host, bb, o->line);
			warn(d, strbuf_steal(&sb));
			free(a);
			free(bb);
			break;
		}
	}
}

/* ---- driver ---------------------------------------------------------------- */

static const char preset_github_hosted[] =
	"# GitHub-hosted runner infrastructure (reference defaults)\n"
	"127.0.0.53:53/udp\n"
	"168.63.129.16:80|32526 cgroup=/azure.slice/walinuxagent.service\n"
	"169.254.169.254:80 cgroup=/azure.slice/walinuxagent.service\n"
	"results-receiver.actions.githubusercontent.com\n"
	"[exe=/tmp/provjobd*]\n"
	"hosted-compute-watchdog-prod-*.githubapp.com\n"
	"[]\n";

static const char *const preset_names[] = { "github-hosted", NULL };

const char *const *policy_preset_names(void)
{
	return preset_names;
}

/* Parses lines of text into b's policy; line numbers go to diagnostics
 * only when report is set (user text). */
static void parse_text(struct builder *b, const char *s, size_t n, bool report)
{
	size_t i = 0;
	unsigned lineno = 0;
	struct pline pl = { 0 };

	for (;;) {
		size_t e = i, brk = 0, sb, se;
		while (e < n && (brk = line_break_len(s, n, e)) == 0)
			e++;
		lineno++;
		b->line = report ? lineno : 0;
		uc_strip(s + i, e - i, &sb, &se);
		if (se > sb && s[i + sb] != '#') {
			struct lp lp = { .s = s + i, .n = e - i, .out = &pl };
			pline_reset(&pl, LINE_NONE);
			ssize_t q = p_header(&lp, 0);
			if (q < 0 && pl.kind != LINE_HEADER)
				q = p_rule(&lp, 0);
			if (q < 0) {
				if (report)
					diag_add(b->diags, POLICY_DIAG_SYNTAX,
						 lineno,
						 uc_column(s + i, lp.far),
						 s + i + sb, se - sb,
						 syntax_message(&lp));
			} else if (pl.kind == LINE_HEADER) {
				apply_header(b, s + i, &pl);
			} else {
				build_rule(b, s + i, e - i, &pl);
			}
		}
		if (e >= n)
			break;
		i = e + brk;
	}
	free(pl.attrs);
}

static char *substitute(const char *s, size_t n, const char *owner,
			const char *repo, size_t *outlen)
{
	struct strbuf sb = { 0 };
	size_t i = 0;

	while (i < n) {
		if (s[i] == '{' && n - i >= 7 &&
		    memcmp(s + i, "{owner}", 7) == 0) {
			strbuf_adds(&sb, owner);
			i += 7;
		} else if (s[i] == '{' && n - i >= 6 &&
			   memcmp(s + i, "{repo}", 6) == 0) {
			strbuf_adds(&sb, repo);
			i += 6;
		} else {
			strbuf_addc(&sb, s[i++]);
		}
	}
	*outlen = sb.len;
	return strbuf_steal(&sb);
}

int policy_parse(const char *text, size_t len, const struct policy_opts *opts,
		 policy_t **out, struct policy_diags *diags)
{
	static const struct policy_opts none;
	struct policy_attr runner_cgroup = {
		.key = "cgroup",
		.kind = POLICY_ATTR_CGROUP,
		.value = "/system.slice/hosted-compute-agent.service",
		.form = POLICY_VAL_BARE,
	};
	struct builder b;
	char *subst = NULL;
	size_t slen = len, user_first;
	const char *preset_text = NULL;

	*out = NULL;
	if (!opts)
		opts = &none;
	if (!policy_utf8_valid(text, len)) {
		diag_add(diags, POLICY_DIAG_SYNTAX, 0, 0, "", 0,
			 util_xstrdup("policy is not valid UTF-8 text"));
		return -1;
	}
	if (opts->preset) {
		if (strcmp(opts->preset, "github-hosted") != 0) {
			struct strbuf sb = { 0 };
			strbuf_addf(&sb,
				    "unknown preset '%s' (known: "
				    "github-hosted)",
				    opts->preset);
			diag_add(diags, POLICY_DIAG_SYNTAX, 0, 0, "", 0,
				 strbuf_steal(&sb));
			return -1;
		}
		preset_text = preset_github_hosted;
	}

	memset(&b, 0, sizeof(b));
	b.p = util_xcalloc(1, sizeof(*b.p));
	b.diags = diags;
	b.defaults.ports = port_443;
	b.defaults.nports = 1;
	b.defaults.proto = POLICY_TCP;
	b.defaults.methods = default_methods;
	b.defaults.nmethods = 2;
	/* Runner scoping comes with the preset: every rule that does not set
	 * cgroup itself is confined to the runner's cgroup (reference 1.6). */
	if (preset_text) {
		b.defaults.attrs.v = &runner_cgroup;
		b.defaults.attrs.n = 1;
	}
	/* Copy the (stack) attribute array into the arena; its strings are
	 * literals. */
	b.defaults.attrs =
		merge_attrs(&b, b.defaults.attrs, "", &(struct pline){ 0 });
	b.ctx = b.defaults;

	if (preset_text)
		parse_text(&b, preset_text, strlen(preset_text), false);
	b.ctx = b.defaults;
	user_first = b.p->nrules;

	if (opts->validate) {
		subst = substitute(text, len, "_owner", "_repo", &slen);
	} else if (opts->repo && strchr(opts->repo, '/')) {
		const char *sl = strchr(opts->repo, '/');
		char *owner =
			util_xstrndup(opts->repo, (size_t)(sl - opts->repo));
		subst = substitute(text, len, owner, sl + 1, &slen);
		free(owner);
	}
	parse_text(&b, subst ? subst : text, subst ? slen : len, true);
	free(subst);

	for (size_t i = 0; i < b.p->nrules; i++)
		derive(b.p, &b.p->rules[i]);
	cross_rule_warnings(b.p, user_first, diags);
	policy_index_build(b.p);
	*out = b.p;
	return 0;
}

void policy_free(policy_t *p)
{
	if (!p)
		return;
	policy_index_fini(&p->idx);
	free(p->rules);
	arena_fini(&p->arena);
	free(p);
}

size_t policy_nrules(const policy_t *p)
{
	return p->nrules;
}

const struct policy_rule *policy_rule(const policy_t *p, size_t i)
{
	return i < p->nrules ? &p->rules[i] : NULL;
}

const char *policy_rule_type_str(enum policy_rule_type t)
{
	static const char *const names[] = {
		[POLICY_HOST] = "host",
		[POLICY_WILDCARD_HOST] = "wildcard_host",
		[POLICY_IP] = "ip",
		[POLICY_CIDR] = "cidr",
		[POLICY_URL] = "url",
		[POLICY_PATH] = "path",
		[POLICY_DNS_HOST] = "dns_host",
		[POLICY_DNS_WILDCARD_HOST] = "dns_wildcard_host",
	};

	return t < POLICY_RULE_TYPE_MAX ? names[t] : "?";
}

const char *policy_proto_str(enum policy_proto p)
{
	return p == POLICY_UDP ? "udp" : "tcp";
}

const char *policy_method_str(enum policy_method m)
{
	return m < POLICY_METHOD_MAX ? method_tok[m] : "?";
}
