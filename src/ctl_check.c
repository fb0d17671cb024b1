/*
 * ctl_check.c - `egressctl check`: JSON events on stdin, one verdict per
 * line, through the daemon's own decision code (DNS cache included).
 */
#include "ctl.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "dnscache.h"
#include "event_json.h"

static const char check_usage[] =
	"usage: egressctl check --policy FILE [--audit] [--preset NAME] "
	"[--repo OWNER/REPO] [--workflow]\n"
	"  reads one JSON event per line on stdin, prints one verdict per "
	"line\n";

/*
 * The stream is judged in order on a logical clock that does not advance:
 * a dns_response fed earlier in the stream is still valid for every later
 * event (TTLs are at least 60 s), whatever the machine's speed.
 */
#define CHECK_NOW 0.0

static void print_json(FILE *out, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);

	fprintf(out, "%s\n", s);
	free(s);
	json_decref(o);
	fflush(out);
}

static void print_error(FILE *out, const char *msg)
{
	print_json(out, json_pack("{s:s}", "error", msg));
}

/* Judges one input line; prints its verdict (or error) unless it only feeds
 * the cache. */
static void check_line(const policy_t *p, struct dnscache *cache, bool audit,
		       const char *line, FILE *out)
{
	json_error_t jerr;
	json_t *obj = json_loads(line, JSON_DECODE_ANY, &jerr);
	struct evj e;
	struct policy_decision d;
	char msg[256];

	if (!obj) {
		snprintf(msg, sizeof(msg), "invalid JSON: %s", jerr.text);
		print_error(out, msg);
		return;
	}
	if (evj_read(obj, true, &e, msg, sizeof(msg)) < 0) {
		print_error(out, msg);
		goto done;
	}
	if (e.kind == EVJ_DNS_RESPONSE) {
		if (e.nanswers)
			dnscache_add(cache, e.answers, e.nanswers, e.name,
				     e.ttl, CHECK_NOW);
		goto done;
	}
	policy_decide(p, cache, audit, e.mitm, CHECK_NOW, &e.ev, &d);
	if (e.ev.type != POLICY_EV_HTTPS || !e.mitm)
		d.passthrough = d.insecure = false;
	print_json(out,
		   json_pack("{s:s,s:o,s:b,s:b}", "verdict",
			     d.allow ? "allow" : "block", "rule",
			     d.rule >= 0 ? json_integer(d.rule) : json_null(),
			     "passthrough", d.passthrough, "insecure",
			     d.insecure));
done:
	evj_fini(&e);
	json_decref(obj);
}

int ctl_check(int argc, char **argv, FILE *in, FILE *out, FILE *err)
{
	static const struct option opts[] = {
		{ "policy", required_argument, NULL, 'P' },
		{ "audit", no_argument, NULL, 'a' },
		{ "preset", required_argument, NULL, 'p' },
		{ "repo", required_argument, NULL, 'r' },
		{ "workflow", no_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl_source src = { 0 };
	struct strbuf text = { 0 };
	struct dnscache *cache;
	bool audit = false;
	char *line = NULL;
	size_t cap = 0, nerr;
	ssize_t n;
	policy_t *p;
	int c, rc;

	optind = 0;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'P':
			src.file = optarg;
			break;
		case 'a':
			audit = true;
			break;
		case 'p':
			src.preset = optarg;
			break;
		case 'r':
			src.repo = optarg;
			break;
		case 'w':
			src.workflow = true;
			break;
		case 'h':
			fputs(check_usage, out);
			return CTL_OK;
		default:
			fputs(check_usage, err);
			return CTL_USAGE;
		}
	}
	if (!src.file || optind != argc) {
		fputs(check_usage, err);
		return CTL_USAGE;
	}
	rc = ctl_read_policy(&src, &text, err);
	if (rc) {
		strbuf_fini(&text);
		return rc;
	}
	p = ctl_build_policy(&src, strbuf_str(&text), text.len, err, &nerr);
	strbuf_fini(&text);
	if (!p || nerr) {
		fprintf(err, "egressctl: %s: the policy is invalid\n",
			src.file);
		policy_free(p);
		return CTL_FAIL;
	}
	cache = dnscache_new(DNSCACHE_CAPACITY);
	while ((n = getline(&line, &cap, in)) >= 0) {
		size_t i = 0;
		while (i < (size_t)n && strchr(" \t\r\n", line[i]))
			i++;
		if (i == (size_t)n)
			continue; /* blank line */
		if (memchr(line, '\0', (size_t)n)) {
			print_error(out, "invalid JSON: NUL byte in line");
			continue;
		}
		check_line(p, cache, audit, line, out);
	}
	free(line);
	dnscache_free(cache);
	policy_free(p);
	return CTL_OK;
}
