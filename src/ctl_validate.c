/*
 * ctl_validate.c - `egressctl validate`: report every problem of a policy
 * with its line, or print the flattened rules as JSON (--dump-rules).
 */
#include "ctl.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "workflow.h"

static const char validate_usage[] =
	"usage: egressctl validate FILE [--dump-rules] [--preset NAME] "
	"[--repo OWNER/REPO]\n"
	"                          [--workflow] [--strict] [-v] [-q]\n";

static json_t *attr_json(const struct policy_attr *a)
{
	if (a->form == POLICY_VAL_BARE)
		return json_string(a->value);
	return json_pack("{s:s,s:b}", "value", a->value, "literal",
			 a->form == POLICY_VAL_QUOTED);
}

/* One flattened rule as the reference's dump shows it (8.2). */
static json_t *rule_json(const struct policy_rule *r)
{
	json_t *o = json_object(), *v;

	json_object_set_new(o, "type",
			    json_string(policy_rule_type_str(r->type)));
	json_object_set_new(o, "target", json_string(r->target));
	if (r->port_any) {
		v = json_string("*");
	} else {
		v = json_array();
		for (size_t i = 0; i < r->nports; i++)
			json_array_append_new(
				v,
				json_integer(r->ports[i] > INT64_MAX ?
						     INT64_MAX :
						     (json_int_t)r->ports[i]));
	}
	json_object_set_new(o, "port", v);
	json_object_set_new(o, "protocol",
			    json_string(policy_proto_str(r->proto)));
	if (r->methods) {
		v = json_array();
		for (size_t i = 0; i < r->nmethods; i++)
			json_array_append_new(v, json_string(policy_method_str(
							 r->methods[i])));
	} else {
		v = json_null();
	}
	json_object_set_new(o, "methods", v);
	json_object_set_new(o, "url_base",
			    r->url_base ? json_string(r->url_base) :
					  json_null());
	v = json_object();
	for (size_t i = 0; i < r->nattrs; i++)
		json_object_set_new(v, r->attrs[i].key,
				    attr_json(&r->attrs[i]));
	json_object_set_new(o, "attrs", v);
	if (r->passthrough)
		json_object_set_new(o, "passthrough", json_true());
	if (r->insecure)
		json_object_set_new(o, "insecure", json_true());
	return o;
}

static int dump_rules(const struct ctl_source *src, FILE *out, FILE *err)
{
	struct strbuf text = { 0 };
	size_t nerr = 0;
	policy_t *p;
	json_t *arr;
	char *s;
	int rc;

	rc = ctl_read_policy(src, &text, err);
	if (rc) {
		strbuf_fini(&text);
		return rc;
	}
	p = ctl_build_policy(src, strbuf_str(&text), text.len, err, &nerr);
	strbuf_fini(&text);
	if (!p)
		return CTL_FAIL;
	arr = json_array();
	for (size_t i = 0; i < policy_nrules(p); i++)
		json_array_append_new(arr, rule_json(policy_rule(p, i)));
	s = json_dumps(arr, JSON_INDENT(2) | JSON_ENSURE_ASCII);
	fprintf(out, "%s\n", s);
	free(s);
	json_decref(arr);
	policy_free(p);
	return nerr ? CTL_FAIL : CTL_OK;
}

/*
 * The reference's "valid rules" count: non-blank, non-comment lines minus
 * the lines with errors (headers count).
 */
static size_t count_rule_lines(const char *s)
{
	size_t n = 0;

	while (*s) {
		size_t len = strcspn(s, "\n");
		size_t i = 0;
		while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'))
			i++;
		if (i < len && s[i] != '#')
			n++;
		s += len + (s[len] == '\n');
	}
	return n;
}

struct vopts {
	bool strict;
	bool verbose;
	bool quiet;
};

/* Validates one policy text; returns the number of problems. */
static size_t validate_one(const char *where, const char *text,
			   const struct vopts *vo, FILE *out)
{
	struct policy_opts o = { .validate = true };
	struct policy_diags d = { 0 };
	policy_t *p = NULL;
	size_t problems, errors;

	if (policy_parse(text, strlen(text), &o, &p, &d) == 0)
		policy_free(p);
	problems = d.n;
	errors = d.n - policy_diags_count(&d, POLICY_DIAG_WARNING);
	for (size_t i = 0; i < d.n; i++) {
		ctl_print_diag(out, where, &d.v[i]);
		if (vo->strict)
			break;
	}
	if (vo->verbose) {
		size_t lines = count_rule_lines(text);
		fprintf(out, "%s: %zu valid rules\n", where,
			lines > errors ? lines - errors : 0);
	}
	if (!vo->quiet) {
		if (problems)
			fprintf(out,
				"%s: FAILED: %zu error(s), %zu warning(s)\n",
				where, errors, problems - errors);
		else
			fprintf(out, "%s: OK\n", where);
	}
	policy_diags_fini(&d);
	return problems;
}

static int validate_file(const struct ctl_source *src, const struct vopts *vo,
			 FILE *out, FILE *err)
{
	size_t problems = 0;

	if (src->workflow) {
		struct wf_policies wf;
		char *msg;
		if (workflow_policies(src->file, &wf, &msg) < 0) {
			fprintf(err, "egressctl: %s\n", msg);
			free(msg);
			return CTL_USAGE;
		}
		if (!wf.n && !vo->quiet)
			fprintf(err,
				"egressctl: %s: no egress policy found in "
				"the workflow\n",
				src->file);
		for (size_t i = 0; i < wf.n; i++) {
			problems += validate_one(wf.v[i].label, wf.v[i].text,
						 vo, out);
			if (problems && vo->strict)
				break;
		}
		workflow_policies_fini(&wf);
	} else {
		struct strbuf text = { 0 };
		int rc = ctl_read_policy(src, &text, err);
		if (rc) {
			strbuf_fini(&text);
			return rc;
		}
		problems = validate_one(src->file, strbuf_str(&text), vo, out);
		strbuf_fini(&text);
	}
	return problems ? CTL_FAIL : CTL_OK;
}

int ctl_validate(int argc, char **argv, FILE *out, FILE *err)
{
	static const struct option opts[] = {
		{ "dump-rules", no_argument, NULL, 'd' },
		{ "preset", required_argument, NULL, 'p' },
		{ "repo", required_argument, NULL, 'r' },
		{ "workflow", no_argument, NULL, 'w' },
		{ "strict", no_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl_source src = { 0 };
	struct vopts vo = { 0 };
	bool dump = false;
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "+vqh", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dump = true;
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
		case 's':
			vo.strict = true;
			break;
		case 'v':
			vo.verbose = true;
			break;
		case 'q':
			vo.quiet = true;
			break;
		case 'h':
			fputs(validate_usage, out);
			return CTL_OK;
		default:
			fputs(validate_usage, err);
			return CTL_USAGE;
		}
	}
	if (optind + 1 != argc) {
		fputs(validate_usage, err);
		return CTL_USAGE;
	}
	src.file = argv[optind];
	if (src.preset && strcmp(src.preset, "github-hosted") != 0) {
		fprintf(err,
			"egressctl: unknown preset '%s' (known: "
			"github-hosted)\n",
			src.preset);
		return CTL_USAGE;
	}
	if (src.repo && !strchr(src.repo, '/')) {
		fprintf(err, "egressctl: --repo wants OWNER/REPO, not '%s'\n",
			src.repo);
		return CTL_USAGE;
	}
	if (dump)
		return dump_rules(&src, out, err);
	return validate_file(&src, &vo, out, err);
}
