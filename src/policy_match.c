/*
 * policy_match.c - matching events against rules (reference 1.7 - 1.11, 1.17)
 * and the glob, hostname, path and URL helpers it needs.
 *
 * An event is "prepared" once (hostname lower-cased, URL split, address
 * parsed, method classified) so that checking a rule is cheap; the index
 * (policy_index.c) then hands over only the rules that can match.
 */
#include "policy_int.h"
#include "policy_match.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

/* ---- glob ------------------------------------------------------------------ */

static uint32_t next_cp(const char *s, size_t *i)
{
	return policy_utf8_next(s, strlen(s + *i) + *i, i);
}

/*
 * A character class at pat (just after '['), Python fnmatch style: a leading
 * '!' negates, a ']' right after the opening (or after '!') is literal,
 * ranges a-z, a reversed range matches nothing.  Returns 1 on match, 0 on no
 * match, -1 when the '[' has no closing ']' (then it is a literal '[').  On
 * success *end points past the ']'.
 */
static int glob_class(const char *pat, uint32_t c, const char **end)
{
	const char *p = pat;
	bool neg = false, hit = false;
	size_t i;

	if (*p == '!') {
		neg = true;
		p++;
	}
	/* find the closing bracket first, as fnmatch.translate does */
	const char *q = p;
	if (*q == ']')
		q++;
	while (*q && *q != ']')
		q++;
	if (!*q)
		return -1;
	*end = q + 1;
	if (q == p)
		return neg ? 1 : 0; /* "[!]" matches anything, "[]" nothing */
	i = 0;
	size_t len = (size_t)(q - p);
	while (i < len) {
		uint32_t lo = policy_utf8_next(p, len, &i);
		if (i + 1 < len && p[i] == '-') {
			size_t k = i + 1;
			uint32_t hi = policy_utf8_next(p, len, &k);
			i = k;
			if (lo <= hi && c >= lo && c <= hi)
				hit = true;
			continue;
		}
		if (c == lo)
			hit = true;
	}
	return hit != neg;
}

bool policy_glob(const char *pat, const char *str)
{
	size_t pi = 0, si = 0;
	size_t star_p = SIZE_MAX, star_s = 0;

	for (;;) {
		if (pat[pi] == '*') {
			while (pat[pi] == '*')
				pi++;
			star_p = pi;
			star_s = si;
			continue;
		}
		if (!str[si]) {
			if (!pat[pi])
				return true;
			goto backtrack;
		}
		if (!pat[pi])
			goto backtrack;
		{
			size_t sj = si, pj = pi;
			uint32_t c = next_cp(str, &sj);
			if (pat[pi] == '?') {
				pi++;
				si = sj;
				continue;
			}
			if (pat[pi] == '[') {
				const char *end;
				int r = glob_class(pat + pi + 1, c, &end);
				if (r == 1) {
					pi = (size_t)(end - pat);
					si = sj;
					continue;
				}
				if (r == 0)
					goto backtrack;
				/* unclosed: a literal '[' */
			}
			uint32_t pc = next_cp(pat, &pj);
			if (pc == c) {
				pi = pj;
				si = sj;
				continue;
			}
		}
backtrack:
		if (star_p == SIZE_MAX || !str[star_s])
			return false;
		next_cp(str, &star_s);
		si = star_s;
		pi = star_p;
	}
}

/* ---- hostnames ------------------------------------------------------------- */

static inline char lc(char c)
{
	return (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
}

static bool span_eq_ci(const char *a, size_t al, const char *b, size_t bl)
{
	if (al != bl)
		return false;
	for (size_t i = 0; i < al; i++)
		if (lc(a[i]) != lc(b[i]))
			return false;
	return true;
}

/*
 * '*'-only glob over [p, pe) and [s, se), byte-wise, optionally ASCII
 * case-insensitive (hostname labels) or exact (path segments).
 */
static bool star_glob(const char *p, const char *pe, const char *s,
		      const char *se, bool ci)
{
	const char *sp = NULL, *ss = s;

	while (s < se || p < pe) {
		if (p < pe && *p == '*') {
			sp = ++p;
			ss = s;
			continue;
		}
		if (p < pe && s < se && (ci ? lc(*p) == lc(*s) : *p == *s)) {
			p++;
			s++;
			continue;
		}
		if (!sp || ss >= se)
			return false;
		p = sp;
		s = ++ss;
	}
	return true;
}

static size_t count_labels(const char *s, size_t n)
{
	size_t c = 1;

	for (size_t i = 0; i < n; i++)
		c += s[i] == '.';
	return c;
}

/*
 * The start of the k-th label from the right (k = 0: the last label) in
 * s[0..n), which has at least k + 1 labels.
 */
static size_t label_start_from_right(const char *s, size_t n, size_t k)
{
	size_t i = n;

	for (;;) {
		while (i > 0 && s[i - 1] != '.')
			i--;
		if (k == 0)
			return i;
		k--;
		i--; /* skip the dot */
	}
}

bool policy_host_match(const char *pattern, bool wildcard, const char *host)
{
	size_t pl = strlen(pattern), hl = strlen(host);

	if (!wildcard)
		return span_eq_ci(pattern, pl, host, hl);

	size_t hn = count_labels(host, hl);
	if (pattern[0] == '*' && pattern[1] == '.') {
		/* subdomain mode: "*." F "." B... */
		const char *rest = pattern + 2;
		size_t rl = pl - 2;
		size_t fl = strcspn(rest, ".");
		size_t nb = fl < rl ? count_labels(rest + fl + 1, rl - fl - 1) :
				      0;
		if (hn < nb + 2)
			return false;
		size_t fstart = label_start_from_right(host, hl, nb);
		size_t fend = strcspn(host + fstart, ".") + fstart;
		if (nb && !span_eq_ci(rest + fl + 1, rl - fl - 1,
				      host + fend + 1, hl - fend - 1))
			return false;
		if (memchr(rest, '*', fl))
			return star_glob(rest, rest + fl, host + fstart,
					 host + fend, true);
		return span_eq_ci(rest, fl, host + fstart, fend - fstart);
	}
	/* label mode: same number of labels, first one globbed */
	size_t np = count_labels(pattern, pl);
	if (hn != np)
		return false;
	size_t pf = strcspn(pattern, "."), hf = strcspn(host, ".");
	if (!span_eq_ci(pattern + pf, pl - pf, host + hf, hl - hf))
		return false;
	return star_glob(pattern, pattern + pf, host, host + hf, true);
}

/* ---- paths ----------------------------------------------------------------- */

/* Strips trailing '/' unless the path is exactly "/". */
static size_t path_trim(const char *p, size_t n)
{
	if (n == 1 && p[0] == '/')
		return n;
	while (n > 0 && p[n - 1] == '/')
		n--;
	return n;
}

static size_t count_segs(const char *p, size_t n)
{
	size_t c = 1;

	for (size_t i = 0; i < n; i++)
		c += p[i] == '/';
	return c;
}

bool policy_path_match(const char *pattern, const char *path)
{
	size_t pl = path_trim(pattern, strlen(pattern));
	size_t al = path_trim(path, strlen(path));
	size_t np = count_segs(pattern, pl), na = count_segs(path, al);
	const char *last = pattern + pl;
	bool trailing;

	/* a last segment of exactly "*" is the trailing wildcard */
	while (last > pattern && last[-1] != '/')
		last--;
	trailing = (size_t)(pattern + pl - last) == 1 && *last == '*';
	if (trailing) {
		np--;
		if (na < np)
			return false;
	} else if (np != na) {
		return false;
	}
	const char *p = pattern, *pe = pattern + pl;
	const char *a = path, *ae = path + al;
	for (size_t i = 0; i < np; i++) {
		const char *ps = p, *as = a;
		while (p < pe && *p != '/')
			p++;
		while (a < ae && *a != '/')
			a++;
		size_t plen = (size_t)(p - ps), alen = (size_t)(a - as);
		if (plen == 1 && *ps == '*') {
			/* any one segment */
		} else if (memchr(ps, '*', plen)) {
			if (!star_glob(ps, p, as, a, false))
				return false;
		} else if (plen != alen || memcmp(ps, as, plen) != 0) {
			return false;
		}
		p++;
		a++;
	}
	return true;
}

/* ---- URLs ------------------------------------------------------------------ */

static bool is_scheme_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
}

/*
 * As Python's urllib.parse.urlparse (3.11): leading C0 controls and spaces
 * and every tab/CR/LF are dropped; the scheme is lower-cased; the netloc
 * follows "//"; the fragment, query and last segment's ;params are cut off;
 * the hostname is the netloc after '@', without port or brackets,
 * lower-cased, and absent when empty.
 */
void policy_url_parse(const char *url, char *buf, struct policy_url *out)
{
	char *o = buf, *u, *netloc = NULL, *path;
	size_t i;

	while (*url && (unsigned char)*url <= 0x20)
		url++;
	for (; *url; url++)
		if (*url != '\t' && *url != '\r' && *url != '\n')
			*o++ = *url;
	*o = '\0';
	u = buf;
	out->scheme = "";
	for (i = 0; u[i] && u[i] != ':'; i++)
		if (!is_scheme_char(u[i]))
			break;
	if (u[i] == ':' && i > 0 &&
	    ((u[0] >= 'a' && u[0] <= 'z') || (u[0] >= 'A' && u[0] <= 'Z'))) {
		for (size_t k = 0; k < i; k++)
			u[k] = lc(u[k]);
		u[i] = '\0';
		out->scheme = u;
		u += i + 1;
	}
	/* the netloc moves two bytes left, over its "//", so that it can be
	 * NUL-terminated without touching the path that follows it */
	if (u[0] == '/' && u[1] == '/') {
		size_t nl = strcspn(u + 2, "/?#");
		path = u + 2 + nl;
		memmove(u, u + 2, nl);
		u[nl] = '\0';
		netloc = u;
	} else {
		path = u;
	}
	path[strcspn(path, "#")] = '\0';
	path[strcspn(path, "?")] = '\0';
	if (strcmp(out->scheme, "") == 0 || strcmp(out->scheme, "http") == 0 ||
	    strcmp(out->scheme, "https") == 0) {
		char *semi, *slash = strrchr(path, '/');
		semi = strchr(slash ? slash : path, ';');
		if (semi)
			*semi = '\0';
	}
	out->path = path;
	out->host = NULL;
	if (netloc) {
		char *h = strrchr(netloc, '@');
		h = h ? h + 1 : netloc;
		char *lb = strchr(h, '[');
		if (lb && strchr(lb, ']')) {
			h = lb + 1;
			*strchr(h, ']') = '\0';
		} else {
			h[strcspn(h, ":")] = '\0';
		}
		for (char *c = h; *c; c++)
			*c = lc(*c);
		if (*h)
			out->host = h;
	}
}

/* ---- attributes ------------------------------------------------------------ */

static bool val_match(const struct policy_attr *a, const char *v)
{
	if (a->form == POLICY_VAL_QUOTED)
		return strcmp(a->value, v) == 0;
	return policy_glob(a->value, v);
}

static bool attrs_match(const struct policy_rule *r,
			const struct policy_proc *pr)
{
	for (size_t i = 0; i < r->nattrs; i++) {
		const struct policy_attr *a = &r->attrs[i];
		const char *v = NULL;
		bool ok;

		switch (a->kind) {
		case POLICY_ATTR_ARG_N:
			if (!pr->cmdline || a->index >= pr->ncmdline)
				return false;
			if (!val_match(a, pr->cmdline[a->index]))
				return false;
			continue;
		case POLICY_ATTR_ARG:
			if (!pr->cmdline)
				return false;
			ok = false;
			for (size_t k = 0; k < pr->ncmdline && !ok; k++)
				ok = val_match(a, pr->cmdline[k]);
			if (!ok)
				return false;
			continue;
		case POLICY_ATTR_CGROUP:
			if (!pr->cgroup)
				return false;
			/* the literal flag is ignored for cgroup (reference) */
			if (strcmp(a->value, "@docker") == 0)
				ok = strcasestr(pr->cgroup, "docker") != NULL;
			else if (strcmp(a->value, "@host") == 0)
				ok = strcasestr(pr->cgroup, "docker") == NULL;
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
		case POLICY_ATTR_KEY_MAX:
			return false;
		}
		if (!v || !val_match(a, v))
			return false;
	}
	return true;
}

/* ---- prepared events and rule matching ------------------------------------- */

static bool port_match(const struct policy_rule *r, int64_t port)
{
	if (r->port_any)
		return true;
	if (port < 0)
		return false;
	for (size_t i = 0; i < r->nports; i++)
		if (r->ports[i] == (uint64_t)port)
			return true;
	return false;
}

static bool proto_match(const struct policy_rule *r, const struct mev *m)
{
	return r->proto == (m->udp ? POLICY_UDP : POLICY_TCP);
}

static uint32_t method_bit(const char *method)
{
	char up[16];
	size_t n;

	if (!method)
		return 1u << POLICY_M_GET;
	n = strlen(method);
	if (n >= sizeof(up))
		return 0;
	for (size_t i = 0; i <= n; i++)
		up[i] = (char)(method[i] >= 'a' && method[i] <= 'z' ?
				       method[i] - 32 :
				       method[i]);
	for (uint32_t m = 0; m < POLICY_M_ANY; m++)
		if (strcmp(up, policy_method_str(m)) == 0)
			return 1u << m;
	return 0;
}

/* Fast path for the common a.b.c.d; other forms go to inet_aton. */
static bool parse_quad(const char *s, uint32_t *out)
{
	uint32_t v = 0;

	for (int part = 0; part < 4; part++) {
		unsigned o = 0;
		int digits = 0;
		while (*s >= '0' && *s <= '9' && digits < 4) {
			o = o * 10 + (unsigned)(*s++ - '0');
			digits++;
		}
		if (!digits || digits > 3 || o > 255 ||
		    (digits > 1 && s[-digits] == '0'))
			return false;
		v = (v << 8) | o;
		if (part < 3 && *s++ != '.')
			return false;
	}
	if (*s)
		return false;
	*out = v;
	return true;
}

void mev_init(struct mev *m, const struct policy_event *ev, const char *host,
	      const char *name, const char *url, const char *method)
{
	struct in_addr in;
	const char *hn;

	m->ev = ev;
	m->udp = ev->type == POLICY_EV_DNS || ev->type == POLICY_EV_UDP;
	m->port = ev->dst_port;
	m->dst_ip = ev->dst_ip ? ev->dst_ip : "";
	m->ip_ok = parse_quad(m->dst_ip, &m->ip);
	if (!m->ip_ok && (m->ip_ok = inet_aton(m->dst_ip, &in) != 0))
		m->ip = ntohl(
			in.s_addr); /* the shorthand forms inet_aton takes */
	m->mbit = method_bit(method);
	m->hn = NULL;
	m->has_url = false;
	m->urlbuf = m->hnbuf = NULL;
	if (url) {
		size_t need = strlen(url) + 2;
		char *buf = m->urlinline;
		if (need > sizeof(m->urlinline))
			buf = m->urlbuf = util_xmalloc(need);
		policy_url_parse(url, buf, &m->url);
		m->has_url = true;
	}
	/* the event hostname: host, else name, else the URL's hostname */
	hn = host && *host ? host : name && *name ? name : NULL;
	if (hn) {
		size_t len = strlen(hn);
		char *buf = m->hninline;
		if (len >= sizeof(m->hninline))
			buf = m->hnbuf = util_xmalloc(len + 1);
		for (size_t i = 0; i <= len; i++)
			buf[i] = lc(hn[i]);
		m->hn = buf;
	} else if (m->has_url) {
		m->hn = m->url.host;
	}
}

void mev_fini(struct mev *m)
{
	free(m->urlbuf);
	free(m->hnbuf);
	m->urlbuf = m->hnbuf = NULL;
}

/* The URL/path part of a rule (scheme, host, path, method). */
static bool url_match(const struct policy_rule *r, const struct mev *m)
{
	if (!m->has_url)
		return false;
	if (strcmp(m->url.scheme, r->https ? "https" : "http") != 0)
		return false;
	if (m->url.host &&
	    !policy_host_match(r->host, r->host_wild, m->url.host))
		return false;
	if (!policy_path_match(r->path, *m->url.path ? m->url.path : "/"))
		return false;
	if (!(r->mbits & (1u << POLICY_M_ANY)) && !(r->mbits & m->mbit))
		return false;
	return true;
}

bool rule_match(const struct policy_rule *r, const struct mev *m)
{
	if (!proto_match(r, m) || !port_match(r, m->port))
		return false;
	switch (r->type) {
	case POLICY_IP:
		if (strcmp(m->dst_ip, r->target) != 0)
			return false;
		break;
	case POLICY_CIDR:
		if (!m->ip_ok || (m->ip & r->mask) != r->net)
			return false;
		break;
	case POLICY_HOST:
	case POLICY_WILDCARD_HOST:
		if (!m->hn || !policy_host_match(r->host, r->host_wild, m->hn))
			return false;
		break;
	case POLICY_URL:
	case POLICY_PATH:
		if (!url_match(r, m))
			return false;
		break;
	case POLICY_DNS_HOST:
	case POLICY_DNS_WILDCARD_HOST:
	case POLICY_RULE_TYPE_MAX:
		return false;
	}
	return attrs_match(r, &m->ev->proc);
}

/*
 * The TLS-stage hostname check of a URL/path rule: protocol, port, the
 * rule's URL host against the event hostname, attributes; no path or method.
 */
bool rule_match_url_host(const struct policy_rule *r, const struct mev *m)
{
	if (r->type != POLICY_URL && r->type != POLICY_PATH)
		return false;
	if (!proto_match(r, m) || !port_match(r, m->port) || !m->hn)
		return false;
	if (!policy_host_match(r->host, r->host_wild, m->hn))
		return false;
	return attrs_match(r, &m->ev->proc);
}

/* The domain half of the DNS check for one rule (reference 2.7). */
bool rule_match_dns_name(const struct policy_rule *r, const struct mev *m)
{
	switch (r->type) {
	case POLICY_HOST:
	case POLICY_DNS_HOST:
	case POLICY_WILDCARD_HOST:
	case POLICY_DNS_WILDCARD_HOST:
	case POLICY_URL:
	case POLICY_PATH:
		if (!policy_host_match(r->host, r->host_wild, m->hn))
			return false;
		return attrs_match(r, &m->ev->proc);
	default:
		return false;
	}
}

/* The resolver half: an ip/cidr rule with protocol udp. */
bool rule_match_resolver(const struct policy_rule *r, const struct mev *m)
{
	if ((r->type != POLICY_IP && r->type != POLICY_CIDR) ||
	    r->proto != POLICY_UDP || !port_match(r, m->port))
		return false;
	if (r->type == POLICY_IP ? strcmp(m->dst_ip, r->target) != 0 :
				   !m->ip_ok || (m->ip & r->mask) != r->net)
		return false;
	return attrs_match(r, &m->ev->proc);
}
