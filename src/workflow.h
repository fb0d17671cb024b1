/*
 * workflow.h - egress policies embedded in a GitHub Actions workflow file.
 */
#ifndef EGRESS_WORKFLOW_H
#define EGRESS_WORKFLOW_H

#include <stddef.h>

#include "cdefs.h"

struct wf_policy {
	char *label; /* jobs.<job>.steps[i] (<step name or "step i">) */
	char *text;
};

struct wf_policies {
	struct wf_policy *v;
	size_t n;
};

/*
 * Reads the workflow YAML at path and collects, in file order, the
 * `with: policy:` of every step whose `uses` names the egress filter action
 * (contains "egress-filter@" or "egressd@", or ends with "/egress-filter" or
 * "/egressd") and whose policy is not empty.  Returns 0, or -1 with a
 * message in *err (caller frees) when the file cannot be read, is not YAML,
 * or is not a mapping.
 */
int workflow_policies(const char *path, struct wf_policies *out, char **err)
	NONNULL(1, 2, 3) WUNRES;
void workflow_policies_fini(struct wf_policies *w) NONNULL(1);

#endif /* EGRESS_WORKFLOW_H */
