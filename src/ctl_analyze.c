/*
 * ctl_analyze.c - `egressctl analyze`: judge a recorded connection log
 * against a policy, as the reference's analyzer does (8.2).
 */
#include "ctl.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "dnscache.h"
#include "event_json.h"
#include "hmap.h"
#include "policy_int.h"

static const char analyze_usage[] =
	"usage: egressctl analyze --policy FILE --log LOG [--json] [-v] [-q]\n"
	"                         [--preset NAME] [--repo OWNER/REPO] "
	"[--workflow]\n";

/* Logs carry real TTLs; the analyzer keeps every answer for the run. */
#define ANALYZE_TTL 3600
#define ANALYZE_NOW 0.0

struct entry {
	unsigned lineno;
	json_t *obj; /* NULL: the line is not a JSON object */
	char *bad; /* why the line was unreadable */
};

struct item {
	char *key;
	unsigned count;
	bool failed;
	bool allowed;
	int rule;
	char *context; /* [exe=..., step=..., image=...] or "" */
	char *error;
};

static bool json_truthy(json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return json_object_size(v) > 0;
	case JSON_ARRAY:
		return json_array_size(v) > 0;
	case JSON_STRING:
		return json_string_length(v) > 0;
	case JSON_INTEGER:
		return json_integer_value(v) != 0;
	case JSON_REAL:
		return json_real_value(v) != 0;
	case JSON_TRUE:
		return true;
	case JSON_FALSE:
	case JSON_NULL:
	default:
		return false;
	}
}

static const char *jstr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) && json_string_length(v) ?
		       json_string_value(v) :
		       NULL;
}

static void cache_add1(struct dnscache *c, const char *ip, const char *name)
{
	const char *ips[1] = { ip };

	dnscache_add(c, ips, 1, name, ANALYZE_TTL, ANALYZE_NOW);
}

/* Step 3 of the reference's analyzer: every name the log ties to an IP. */
static void fill_cache(struct dnscache *c, const struct entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		json_t *o = v[i].obj;
		const char *type = jstr(o, "type"), *ip = jstr(o, "dst_ip");
		const char *host = jstr(o, "host"), *url = jstr(o, "url");
		if (!o)
			continue;
		if (type && strcmp(type, "dns_response") == 0) {
			json_t *ans = json_object_get(o, "answers");
			const char *name = jstr(o, "name");
			for (size_t k = 0; name && k < json_array_size(ans);
			     k++) {
				json_t *a = json_array_get(ans, k);
				if (json_is_string(a))
					cache_add1(c, json_string_value(a),
						   name);
			}
			continue;
		}
		if (ip && host)
			cache_add1(c, ip, host);
		if (ip && url) {
			char *buf = malloc(strlen(url) + 2);
			struct policy_url u;
			if (!buf)
				continue;
			policy_url_parse(url, buf, &u);
			if (u.host)
				cache_add1(c, ip, u.host);
			free(buf);
		}
	}
}

/* Judges one log object as the analyzer does; returns the rule or -1. */
static int judge(const policy_t *p, struct dnscache *cache, const struct evj *e)
{
	struct policy_decision d;
	struct policy_event ev = e->ev;

	if (e->kind == EVJ_OTHER)
		return -1; /* no rule protocol matches an unknown type */
	if (ev.type == POLICY_EV_HTTPS && ev.url)
		ev.type = POLICY_EV_HTTP;
	policy_decide(p, cache, false, false, ANALYZE_NOW, &ev, &d);
	return d.rule;
}

/* The reference's deduplication key, as a display string. */
static char *item_key(const struct evj *e, json_t *o)
{
	struct strbuf sb = { 0 };
	const char *t = e->type, *method = e->ev.method ? e->ev.method : "GET";
	json_t *port = json_object_get(o, "dst_port");
	long long pt = json_is_integer(port) ? json_integer_value(port) : 0;

	if (strcmp(t, "http") == 0 || (strcmp(t, "https") == 0 && e->ev.url))
		strbuf_addf(&sb, "%s %s", method, e->ev.url ? e->ev.url : "");
	else if (strcmp(t, "https") == 0)
		strbuf_addf(&sb, "https %s:%lld",
			    e->ev.host ? e->ev.host : "(no SNI)",
			    pt ? pt : 443);
	else if (strcmp(t, "dns") == 0)
		strbuf_addf(&sb, "dns %s:%lld", e->ev.name ? e->ev.name : "",
			    pt ? pt : 53);
	else if (strcmp(t, "tcp") == 0)
		strbuf_addf(&sb, "tcp %s:%lld",
			    e->ev.host ? e->ev.host : e->ev.dst_ip, pt);
	else
		strbuf_addf(&sb, "%s %s:%lld", t, e->ev.dst_ip, pt);
	return strbuf_steal(&sb);
}

static char *item_context(const struct evj *e)
{
	struct strbuf sb = { 0 };
	const char *names[] = { "exe", "step", "image" };
	const char *vals[] = { e->ev.proc.exe, e->ev.proc.step,
			       e->ev.proc.image };

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (!vals[i])
			continue;
		strbuf_adds(&sb, sb.len ? ", " : " [");
		strbuf_addf(&sb, "%s=%s", names[i], vals[i]);
	}
	if (sb.len)
		strbuf_addc(&sb, ']');
	return strbuf_steal(&sb);
}

static int item_cmp(const void *a, const void *b)
{
	return strcmp((*(struct item *const *)a)->key,
		      (*(struct item *const *)b)->key);
}

static void print_json_line(FILE *out, const char *verdict, int rule,
			    const char *error)
{
	json_t *o = json_pack("{s:o,s:o,s:b,s:b}", "verdict",
			      verdict ? json_string(verdict) : json_null(),
			      "rule",
			      rule >= 0 ? json_integer(rule) : json_null(),
			      "passthrough", 0, "insecure", 0);
	char *s;

	if (error)
		json_object_set_new(o, "error", json_string(error));
	s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	fprintf(out, "%s\n", s);
	free(s);
	json_decref(o);
}

struct aopts {
	bool json;
	bool verbose;
	bool quiet;
	const char *log;
};

struct tally {
	struct hmap items;
	struct item **v;
	size_t n;
	size_t blocked;
	size_t allowed;
	size_t failed;
};

static struct item *tally_get(struct tally *t, char *key, bool *created)
{
	void **slot = hmap_slot(&t->items, key, strlen(key), created);

	if (*created) {
		struct item *it = calloc(1, sizeof(*it));
		if (!it)
			abort();
		it->key = key;
		*slot = it;
		t->v = realloc(t->v, (t->n + 1) * sizeof(*t->v));
		if (!t->v)
			abort();
		t->v[t->n++] = it;
	} else {
		free(key);
	}
	return *slot;
}

static void analyze_entry(const policy_t *p, struct dnscache *cache,
			  const struct entry *en, const struct aopts *ao,
			  struct tally *t, FILE *out, FILE *err)
{
	struct evj e;
	char msg[256];
	json_t *errv;
	bool created;

	if (!en->obj) {
		fprintf(err, "egressctl: %s:%u: %s (skipped)\n", ao->log,
			en->lineno, en->bad);
		if (ao->json)
			print_json_line(out, NULL, -1, en->bad);
		return;
	}
	if (evj_read(en->obj, false, &e, msg, sizeof(msg)) < 0) {
		fprintf(err, "egressctl: %s:%u: %s (skipped)\n", ao->log,
			en->lineno, msg);
		if (ao->json)
			print_json_line(out, NULL, -1, msg);
		evj_fini(&e);
		return;
	}
	if (e.kind == EVJ_DNS_RESPONSE) {
		evj_fini(&e);
		return;
	}
	errv = json_object_get(en->obj, "error");
	if (errv && json_truthy(errv)) {
		if (ao->json)
			print_json_line(out, NULL, -1, NULL);
		struct item *it = tally_get(t, item_key(&e, en->obj), &created);
		if (created) {
			it->failed = true;
			it->context = item_context(&e);
			it->error =
				json_is_string(errv) ?
					util_xstrdup(json_string_value(errv)) :
					json_dumps(errv, JSON_ENCODE_ANY);
			t->failed++;
		}
		it->count++;
		evj_fini(&e);
		return;
	}
	int rule = judge(p, cache, &e);
	if (ao->json)
		print_json_line(out, rule >= 0 ? "allow" : "block", rule, NULL);
	struct item *it = tally_get(t, item_key(&e, en->obj), &created);
	if (created) {
		it->allowed = rule >= 0;
		it->rule = rule;
		it->context = item_context(&e);
		if (it->allowed)
			t->allowed++;
		else
			t->blocked++;
	}
	it->count++;
	evj_fini(&e);
}

static void print_report(struct tally *t, const struct aopts *ao, FILE *out)
{
	qsort(t->v, t->n, sizeof(*t->v), item_cmp);
	fprintf(out, "Blocked (%zu):\n", t->blocked);
	for (size_t i = 0; i < t->n; i++)
		if (!t->v[i]->failed && !t->v[i]->allowed)
			fprintf(out, "  %s (%ux)%s\n", t->v[i]->key,
				t->v[i]->count, t->v[i]->context);
	if (ao->verbose) {
		fprintf(out, "Allowed (%zu):\n", t->allowed);
		for (size_t i = 0; i < t->n; i++)
			if (!t->v[i]->failed && t->v[i]->allowed)
				fprintf(out, "  %s (%ux) <- rule %d\n",
					t->v[i]->key, t->v[i]->count,
					t->v[i]->rule);
	}
	if (t->failed) {
		fprintf(out, "Failed (%zu):\n", t->failed);
		for (size_t i = 0; i < t->n; i++)
			if (t->v[i]->failed)
				fprintf(out, "  %s (%ux) error=%s%s\n",
					t->v[i]->key, t->v[i]->count,
					t->v[i]->error, t->v[i]->context);
	}
	fprintf(out, "Summary: %zu allowed, %zu blocked", t->allowed,
		t->blocked);
	if (t->failed)
		fprintf(out, ", %zu failed", t->failed);
	fprintf(out, " (%zu unique connections)\n", t->n);
}

static void tally_fini(struct tally *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i]->key);
		free(t->v[i]->context);
		free(t->v[i]->error);
		free(t->v[i]);
	}
	free(t->v);
	hmap_fini(&t->items);
}

/* Reads the log as entries; blank lines are skipped. */
static int read_log(const char *path, struct entry **vp, size_t *np, FILE *err)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, n = 0;
	ssize_t len;
	unsigned lineno = 0;
	struct entry *v = NULL;

	if (!f) {
		fprintf(err, "egressctl: %s: %s\n", path, strerror(errno));
		return CTL_USAGE;
	}
	while ((len = getline(&line, &cap, f)) >= 0) {
		json_error_t je;
		lineno++;
		if (strspn(line, " \t\r\n") == (size_t)len)
			continue;
		v = util_xrealloc(v, (n + 1) * sizeof(*v));
		v[n].lineno = lineno;
		v[n].bad = NULL;
		v[n].obj = json_loads(line, JSON_DECODE_ANY, &je);
		if (!v[n].obj || !json_is_object(v[n].obj)) {
			struct strbuf sb = { 0 };
			strbuf_addf(&sb, "not a JSON object%s%s",
				    v[n].obj ? "" : ": ",
				    v[n].obj ? "" : je.text);
			json_decref(v[n].obj);
			v[n].obj = NULL;
			v[n].bad = strbuf_steal(&sb);
		}
		n++;
	}
	free(line);
	fclose(f);
	*vp = v;
	*np = n;
	return 0;
}

static int parse_args(int argc, char **argv, struct ctl_source *src,
		      struct aopts *ao, FILE *out, FILE *err)
{
	static const struct option opts[] = {
		{ "policy", required_argument, NULL, 'P' },
		{ "log", required_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "preset", required_argument, NULL, 'p' },
		{ "repo", required_argument, NULL, 'r' },
		{ "workflow", no_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "+vqh", opts, NULL)) != -1) {
		switch (c) {
		case 'P':
			src->file = optarg;
			break;
		case 'l':
			ao->log = optarg;
			break;
		case 'j':
			ao->json = true;
			break;
		case 'v':
			ao->verbose = true;
			break;
		case 'q':
			ao->quiet = true;
			break;
		case 'p':
			src->preset = optarg;
			break;
		case 'r':
			src->repo = optarg;
			break;
		case 'w':
			src->workflow = true;
			break;
		case 'h':
			fputs(analyze_usage, out);
			return -1;
		default:
			fputs(analyze_usage, err);
			return CTL_USAGE;
		}
	}
	/* the log may also be given as the one positional argument */
	if (optind < argc && !ao->log)
		ao->log = argv[optind++];
	if (!src->file || !ao->log || optind != argc) {
		fputs(analyze_usage, err);
		return CTL_USAGE;
	}
	return 0;
}

int ctl_analyze(int argc, char **argv, FILE *out, FILE *err)
{
	struct ctl_source src = { 0 };
	struct aopts ao = { 0 };
	struct strbuf text = { 0 };
	struct entry *v = NULL;
	struct tally t = { 0 };
	struct dnscache *cache;
	size_t n = 0, nerr = 0;
	policy_t *p;
	int rc;

	rc = parse_args(argc, argv, &src, &ao, out, err);
	if (rc)
		return rc < 0 ? CTL_OK : rc;
	rc = ctl_read_policy(&src, &text, err);
	if (rc) {
		strbuf_fini(&text);
		return rc;
	}
	p = ctl_build_policy(&src, strbuf_str(&text), text.len, err, &nerr);
	strbuf_fini(&text);
	if (!p)
		return CTL_FAIL;
	rc = read_log(ao.log, &v, &n, err);
	if (rc) {
		policy_free(p);
		return rc;
	}
	cache = dnscache_new(n + DNSCACHE_CAPACITY);
	fill_cache(cache, v, n);
	for (size_t i = 0; i < n; i++)
		analyze_entry(p, cache, &v[i], &ao, &t, out, err);
	if (!ao.json && (n || !ao.quiet))
		print_report(&t, &ao, out);
	rc = t.blocked || nerr ? CTL_FAIL : CTL_OK;
	tally_fini(&t);
	for (size_t i = 0; i < n; i++) {
		json_decref(v[i].obj);
		free(v[i].bad);
	}
	free(v);
	dnscache_free(cache);
	policy_free(p);
	return rc;
}
