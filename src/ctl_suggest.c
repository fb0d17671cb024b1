/*
 * ctl_suggest.c - `egressctl suggest`: the smallest policy that allows
 * everything recorded in audit logs, grouped by kind and commented.
 *
 * Hostnames become host rules with the ports they were reached on; several
 * names under one parent reached on the same ports become one "*.parent"
 * wildcard (and only then).  DNS needs both halves of the dual check: the
 * resolvers get ip/udp rules, and names never connected to get dns: rules.
 * Raw TCP, UDP and connections without a name get ip rules.  Every rule
 * text is checked with the policy parser before it is printed.
 */
#include "ctl.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "policy_int.h"

/* A suggested rule in the making: a target and the ports it needs. */
struct sug {
	char *target; /* lower-case hostname, or ip */
	uint32_t *ports;
	size_t nports;
	char *from; /* first executable seen */
	bool used; /* folded into a wildcard */
};

struct sugset {
	struct hmap map;
	struct sug **v;
	size_t n;
};

static struct sug *sug_get(struct sugset *s, const char *target)
{
	bool created;
	void **slot = hmap_slot(&s->map, target, strlen(target), &created);

	if (created) {
		struct sug *g = util_xcalloc(1, sizeof(*g));
		g->target = util_xstrdup(target);
		*slot = g;
		s->v = util_xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
		s->v[s->n++] = g;
	}
	return *slot;
}

static void sug_port(struct sug *g, long long port, const char *exe)
{
	uint32_t p = port < 0 || port > 65535 ? 0 : (uint32_t)port;
	size_t i = 0;

	while (i < g->nports && g->ports[i] < p)
		i++;
	if (i == g->nports || g->ports[i] != p) {
		g->ports = util_xrealloc(g->ports,
					 (g->nports + 1) * sizeof(*g->ports));
		memmove(g->ports + i + 1, g->ports + i,
			(g->nports - i) * sizeof(*g->ports));
		g->ports[i] = p;
		g->nports++;
	}
	if (!g->from && exe)
		g->from = util_xstrdup(exe);
}

static void sugset_fini(struct sugset *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i]->target);
		free(s->v[i]->ports);
		free(s->v[i]->from);
		free(s->v[i]);
	}
	free(s->v);
	hmap_fini(&s->map);
}

/* Does text parse as exactly one rule of the given type? */
static bool rule_ok(const char *text, enum policy_rule_type type)
{
	struct policy_diags d = { 0 };
	policy_t *p = NULL;
	bool ok;

	if (policy_parse(text, strlen(text), NULL, &p, &d) < 0)
		return false;
	ok = d.n == 0 && policy_nrules(p) == 1 &&
	     policy_rule(p, 0)->type == type;
	policy_free(p);
	policy_diags_fini(&d);
	return ok;
}

static void port_suffix(struct strbuf *sb, const struct sug *g, bool udp)
{
	if (g->nports == 1 && g->ports[0] == 443 && !udp)
		return;
	for (size_t i = 0; i < g->nports; i++)
		strbuf_addf(sb, "%c%u", i ? '|' : ':', g->ports[i]);
	if (udp)
		strbuf_adds(sb, "/udp");
}

static void print_rule(FILE *out, const char *text, const char *from)
{
	fputs(text, out);
	if (from) {
		fputs("  # from ", out);
		for (const char *c = from; *c; c++)
			fputc(*c >= 0x20 && *c < 0x7f ? *c : '?', out);
	}
	fputc('\n', out);
}

/* Prints ip rules of one kind; returns how many targets could not be. */
static void print_ips(FILE *out, const char *title, struct sugset *s, bool udp)
{
	if (!s->n)
		return;
	fprintf(out, "\n# %s\n", title);
	for (size_t i = 0; i < s->n; i++) {
		struct strbuf sb = { 0 };
		strbuf_adds(&sb, s->v[i]->target);
		port_suffix(&sb, s->v[i], udp);
		if (rule_ok(strbuf_str(&sb), POLICY_IP))
			print_rule(out, strbuf_str(&sb), s->v[i]->from);
		else
			fprintf(out, "# cannot be written as a rule: %s\n",
				strbuf_str(&sb));
		strbuf_fini(&sb);
	}
}

static int cmp_sug(const void *a, const void *b)
{
	return strcmp((*(struct sug *const *)a)->target,
		      (*(struct sug *const *)b)->target);
}

static bool same_ports(const struct sug *a, const struct sug *b)
{
	return a->nports == b->nports &&
	       memcmp(a->ports, b->ports, a->nports * sizeof(*a->ports)) == 0;
}

static const char *parent_of(const char *h)
{
	const char *dot = strchr(h, '.');

	return dot && strchr(dot + 1, '.') ? dot + 1 : NULL;
}

/* Host rules, with wildcards where several names share a parent. */
static void print_hosts(FILE *out, struct sugset *hosts)
{
	if (!hosts->n)
		return;
	qsort(hosts->v, hosts->n, sizeof(*hosts->v), cmp_sug);
	fprintf(out, "\n# HTTPS and HTTP hosts\n");
	for (size_t i = 0; i < hosts->n; i++) {
		struct sug *g = hosts->v[i];
		const char *parent = parent_of(g->target);
		struct strbuf sb = { 0 };
		size_t group = 0;

		if (g->used)
			continue;
		for (size_t j = i + 1; parent && j < hosts->n; j++) {
			const char *pj = parent_of(hosts->v[j]->target);
			if (pj && strcmp(pj, parent) == 0 &&
			    same_ports(g, hosts->v[j]) && !hosts->v[j]->used)
				group++;
		}
		if (group) {
			strbuf_addf(&sb, "*.%s", parent);
			port_suffix(&sb, g, false);
			if (rule_ok(strbuf_str(&sb), POLICY_WILDCARD_HOST)) {
				fprintf(out, "# covers:");
				for (size_t j = i; j < hosts->n; j++) {
					const char *pj =
						parent_of(hosts->v[j]->target);
					if (pj && strcmp(pj, parent) == 0 &&
					    same_ports(g, hosts->v[j]) &&
					    !hosts->v[j]->used) {
						fprintf(out, " %s",
							hosts->v[j]->target);
						hosts->v[j]->used = true;
					}
				}
				fputc('\n', out);
				print_rule(out, strbuf_str(&sb), g->from);
				strbuf_fini(&sb);
				continue;
			}
			strbuf_reset(&sb);
		}
		strbuf_adds(&sb, g->target);
		port_suffix(&sb, g, false);
		if (rule_ok(strbuf_str(&sb), POLICY_HOST))
			print_rule(out, strbuf_str(&sb), g->from);
		else
			fprintf(out, "# cannot be written as a rule: %s\n",
				strbuf_str(&sb));
		g->used = true;
		strbuf_fini(&sb);
	}
}

/* Is name covered by a printed host or wildcard rule? */
static bool host_covered(struct sugset *hosts, const char *name)
{
	for (size_t i = 0; i < hosts->n; i++) {
		const char *t = hosts->v[i]->target, *p = parent_of(t);
		if (strcmp(t, name) == 0)
			return true;
		if (p && parent_of(name) && strcmp(parent_of(name), p) == 0)
			return true;
	}
	return false;
}

struct collect {
	struct sugset hosts, resolvers, tcp, udp, names;
	size_t lines;
};

static void collect_obj(struct collect *c, json_t *o)
{
	const char *type = json_string_value(json_object_get(o, "type"));
	const char *ip = json_string_value(json_object_get(o, "dst_ip"));
	const char *host = json_string_value(json_object_get(o, "host"));
	const char *url = json_string_value(json_object_get(o, "url"));
	const char *name = json_string_value(json_object_get(o, "name"));
	const char *exe = json_string_value(json_object_get(o, "exe"));
	json_t *pv = json_object_get(o, "dst_port");
	long long port = json_is_integer(pv) ? json_integer_value(pv) : 0;
	json_t *e = json_object_get(o, "error");
	char *lname;

	if (!type || (e && !json_is_null(e) && !json_is_false(e)))
		return;
	c->lines++;
	if (strcmp(type, "http") == 0 || strcmp(type, "https") == 0) {
		const char *h = host;
		char *buf = NULL;
		struct policy_url u;
		if (url) {
			buf = util_xmalloc(strlen(url) + 2);
			policy_url_parse(url, buf, &u);
			h = u.host;
		}
		if (h && *h) {
			lname = util_ascii_lower(h, strlen(h));
			sug_port(sug_get(&c->hosts, lname), port, exe);
			free(lname);
		} else if (ip) {
			sug_port(sug_get(&c->tcp, ip), port, exe);
		}
		free(buf);
	} else if (strcmp(type, "dns") == 0) {
		if (ip)
			sug_port(sug_get(&c->resolvers, ip), port, exe);
		if (name && *name) {
			lname = util_ascii_lower(name, strlen(name));
			sug_get(&c->names, lname);
			free(lname);
		}
	} else if (strcmp(type, "tcp") == 0 && ip) {
		sug_port(sug_get(&c->tcp, ip), port, exe);
	} else if (strcmp(type, "udp") == 0 && ip) {
		sug_port(sug_get(&c->udp, ip), port, exe);
	}
}

static int collect_file(struct collect *c, const char *path, FILE *err)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;

	if (!f) {
		fprintf(err, "egressctl: %s: %s\n", path, strerror(errno));
		return CTL_USAGE;
	}
	while (getline(&line, &cap, f) >= 0) {
		json_error_t je;
		json_t *o;
		lineno++;
		if (strspn(line, " \t\r\n") == strlen(line))
			continue;
		o = json_loads(line, JSON_DECODE_ANY, &je);
		if (!json_is_object(o))
			fprintf(err,
				"egressctl: %s:%u: not a JSON object "
				"(skipped)\n",
				path, lineno);
		else
			collect_obj(c, o);
		json_decref(o);
	}
	free(line);
	fclose(f);
	return 0;
}

int ctl_suggest(int argc, char **argv, FILE *out, FILE *err)
{
	struct collect c;
	int rc = CTL_OK;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		fputs("usage: egressctl suggest LOG...\n",
		      argc < 2 ? err : out);
		return argc < 2 ? CTL_USAGE : CTL_OK;
	}
	memset(&c, 0, sizeof(c));
	for (int i = 1; i < argc && !rc; i++)
		rc = collect_file(&c, argv[i], err);
	if (!rc) {
		fprintf(out,
			"# Suggested by egressctl suggest from %zu log "
			"line(s).\n# Review before use: it allows "
			"everything that was recorded.\n",
			c.lines);
		print_hosts(out, &c.hosts);
		print_ips(out, "DNS resolvers", &c.resolvers, true);
		bool header = false;
		for (size_t i = 0; i < c.names.n; i++) {
			struct strbuf sb = { 0 };
			if (host_covered(&c.hosts, c.names.v[i]->target))
				continue;
			if (!header)
				fprintf(out, "\n# names that were only "
					     "resolved\n");
			header = true;
			strbuf_addf(&sb, "dns:%s", c.names.v[i]->target);
			if (rule_ok(strbuf_str(&sb), POLICY_DNS_HOST))
				print_rule(out, strbuf_str(&sb), NULL);
			else
				fprintf(out,
					"# cannot be written as a rule: "
					"%s\n",
					strbuf_str(&sb));
			strbuf_fini(&sb);
		}
		print_ips(out, "raw TCP and connections without a name", &c.tcp,
			  false);
		print_ips(out, "UDP", &c.udp, true);
	}
	sugset_fini(&c.hosts);
	sugset_fini(&c.resolvers);
	sugset_fini(&c.tcp);
	sugset_fini(&c.udp);
	sugset_fini(&c.names);
	return rc;
}
