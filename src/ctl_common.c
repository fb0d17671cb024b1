/*
 * ctl_common.c - what egressctl's commands share: reading policies (plain
 * or from a workflow), building them, printing diagnostics.
 */
#include "ctl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "workflow.h"

int ctl_read_policy(const struct ctl_source *src, struct strbuf *text,
		    FILE *err)
{
	if (src->workflow) {
		struct wf_policies wf;
		char *msg;
		if (workflow_policies(src->file, &wf, &msg) < 0) {
			fprintf(err, "egressctl: %s\n", msg);
			free(msg);
			return CTL_USAGE;
		}
		for (size_t i = 0; i < wf.n; i++) {
			if (i)
				strbuf_addc(text, '\n');
			strbuf_adds(text, wf.v[i].text);
		}
		workflow_policies_fini(&wf);
		return 0;
	}
	size_t len;
	char *s = util_read_file(src->file, &len);
	if (!s) {
		fprintf(err, "egressctl: %s: %s\n", src->file, strerror(errno));
		return CTL_USAGE;
	}
	strbuf_add(text, s, len);
	free(s);
	return 0;
}

static char *repo_from_remote(void)
{
	FILE *p = popen("git remote get-url origin 2>/dev/null", "r");
	char line[1024], *s, *e;
	size_t n;

	if (!p)
		return NULL;
	s = fgets(line, sizeof(line), p);
	pclose(p);
	if (!s)
		return NULL;
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	if ((s = strstr(line, "github.com:")) != NULL)
		s += strlen("github.com:");
	else if ((s = strstr(line, "github.com/")) != NULL)
		s += strlen("github.com/");
	else
		return NULL;
	n = strlen(s);
	if (n > 4 && strcmp(s + n - 4, ".git") == 0)
		s[n - 4] = '\0';
	e = strchr(s, '/');
	if (!e || e == s || !e[1])
		return NULL;
	return util_xstrdup(s);
}

char *ctl_detect_repo(const char *arg)
{
	const char *env = getenv("GITHUB_REPOSITORY");

	if (arg)
		return util_xstrdup(arg);
	if (env && strchr(env, '/'))
		return util_xstrdup(env);
	return repo_from_remote();
}

void ctl_print_diag(FILE *f, const char *where, const struct policy_diag *d)
{
	switch (d->kind) {
	case POLICY_DIAG_SYNTAX:
		if (d->line && d->column)
			fprintf(f, "%s:%u:%u: error: %s\n", where, d->line,
				d->column, d->msg);
		else if (d->line)
			fprintf(f, "%s:%u: error: %s\n", where, d->line,
				d->msg);
		else
			fprintf(f, "%s: error: %s\n", where, d->msg);
		break;
	case POLICY_DIAG_RULE:
		fprintf(f, "%s:%u: error: %s\n", where, d->line, d->msg);
		break;
	case POLICY_DIAG_WARNING:
	case POLICY_DIAG_KIND_MAX:
		fprintf(f, "%s: warning: %s\n", where, d->msg);
		return;
	}
	if (d->text && *d->text)
		fprintf(f, "    %s\n", d->text);
}

policy_t *ctl_build_policy(const struct ctl_source *src, const char *text,
			   size_t len, FILE *err, size_t *nerrors)
{
	struct policy_diags d = { 0 };
	struct policy_opts o = { .preset = src->preset };
	char *repo = ctl_detect_repo(src->repo);
	policy_t *p = NULL;

	o.repo = repo;
	if (!repo && (strstr(text, "{owner}") || strstr(text, "{repo}")))
		fprintf(err, "egressctl: warning: the policy uses {owner} or "
			     "{repo} but no repository is known (use --repo "
			     "OWNER/REPO or set GITHUB_REPOSITORY); those "
			     "lines are dropped\n");
	if (policy_parse(text, len, &o, &p, &d) < 0)
		p = NULL;
	for (size_t i = 0; i < d.n; i++)
		ctl_print_diag(err, src->file, &d.v[i]);
	*nerrors = policy_diags_count(&d, POLICY_DIAG_SYNTAX) +
		   policy_diags_count(&d, POLICY_DIAG_RULE);
	policy_diags_fini(&d);
	free(repo);
	return p;
}
