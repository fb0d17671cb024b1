/*
 * workflow.c - finds egress policies in a workflow, with libyaml's
 * document (node tree) API.
 */
#include "workflow.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "util.h"

static const char *scalar(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ?
		       (const char *)n->data.scalar.value :
		       NULL;
}

/* The value node for key in a mapping node, or NULL. */
static yaml_node_t *map_get(yaml_document_t *d, yaml_node_t *map,
			    const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top; p++) {
		const char *k = scalar(yaml_document_get_node(d, p->key));
		if (k && strcmp(k, key) == 0)
			return yaml_document_get_node(d, p->value);
	}
	return NULL;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int is_filter_action(const char *uses)
{
	return strstr(uses, "egress-filter@") || strstr(uses, "egressd@") ||
	       ends_with(uses, "/egress-filter") || ends_with(uses, "/egressd");
}

static void add_policy(struct wf_policies *w, const char *job, size_t i,
		       const char *name, const char *text)
{
	struct strbuf sb = { 0 };

	w->v = util_xrealloc(w->v, (w->n + 1) * sizeof(*w->v));
	if (name)
		strbuf_addf(&sb, "jobs.%s.steps[%zu] (%s)", job, i, name);
	else
		strbuf_addf(&sb, "jobs.%s.steps[%zu] (step %zu)", job, i, i);
	w->v[w->n].label = strbuf_steal(&sb);
	w->v[w->n].text = util_xstrdup(text);
	w->n++;
}

static void scan_jobs(yaml_document_t *d, yaml_node_t *jobs,
		      struct wf_policies *out)
{
	if (!jobs || jobs->type != YAML_MAPPING_NODE)
		return;
	for (yaml_node_pair_t *p = jobs->data.mapping.pairs.start;
	     p < jobs->data.mapping.pairs.top; p++) {
		const char *job = scalar(yaml_document_get_node(d, p->key));
		yaml_node_t *steps = map_get(
			d, yaml_document_get_node(d, p->value), "steps");
		if (!job || !steps || steps->type != YAML_SEQUENCE_NODE)
			continue;
		size_t i = 0;
		for (yaml_node_item_t *it = steps->data.sequence.items.start;
		     it < steps->data.sequence.items.top; it++, i++) {
			yaml_node_t *step = yaml_document_get_node(d, *it);
			const char *uses = scalar(map_get(d, step, "uses"));
			const char *pol = scalar(
				map_get(d, map_get(d, step, "with"), "policy"));
			if (uses && is_filter_action(uses) && pol && *pol)
				add_policy(out, job, i,
					   scalar(map_get(d, step, "name")),
					   pol);
		}
	}
}

int workflow_policies(const char *path, struct wf_policies *out, char **err)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	struct strbuf sb = { 0 };
	FILE *f;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	*err = NULL;
	f = fopen(path, "rb");
	if (!f) {
		strbuf_addf(&sb, "%s: %s", path, strerror(errno));
		*err = strbuf_steal(&sb);
		return -1;
	}
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		strbuf_addf(&sb, "%s:%zu:%zu: invalid YAML: %s", path,
			    parser.problem_mark.line + 1,
			    parser.problem_mark.column + 1,
			    parser.problem ? parser.problem : "parse error");
		*err = strbuf_steal(&sb);
		yaml_parser_delete(&parser);
		fclose(f);
		return -1;
	}
	root = yaml_document_get_root_node(&doc);
	if (!root || root->type != YAML_MAPPING_NODE) {
		strbuf_addf(&sb, "%s: the workflow is not a YAML mapping",
			    path);
		*err = strbuf_steal(&sb);
	} else {
		scan_jobs(&doc, map_get(&doc, root, "jobs"), out);
		rc = 0;
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	fclose(f);
	return rc;
}

void workflow_policies_fini(struct wf_policies *w)
{
	for (size_t i = 0; i < w->n; i++) {
		free(w->v[i].label);
		free(w->v[i].text);
	}
	free(w->v);
	w->v = NULL;
	w->n = 0;
}
