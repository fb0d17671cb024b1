/*
 * ctl.h - egressctl's offline commands.  Each takes its arguments (argv[0]
 * is the command name) and explicit streams, and returns the exit status, so
 * that tests can run them in-process.
 */
#ifndef EGRESS_CTL_H
#define EGRESS_CTL_H

#include <stdbool.h>
#include <stdio.h>

#include "cdefs.h"
#include "policy.h"
#include "util.h"

/* Exit statuses shared by the commands (reference 8.2). */
enum {
	CTL_OK = 0, /* valid / everything allowed */
	CTL_FAIL = 1, /* invalid policy / something blocked */
	CTL_USAGE = 2, /* bad arguments, unreadable file, bad YAML */
};

int ctl_validate(int argc, char **argv, FILE *out, FILE *err) NONNULL(2, 3, 4);
int ctl_check(int argc, char **argv, FILE *in, FILE *out, FILE *err)
	NONNULL(2, 3, 4, 5);
int ctl_analyze(int argc, char **argv, FILE *out, FILE *err) NONNULL(2, 3, 4);
int ctl_suggest(int argc, char **argv, FILE *out, FILE *err) NONNULL(2, 3, 4);
/* status, stop, reload: the daemon's control socket (ctl_daemon.c). */
int ctl_daemon(int argc, char **argv, FILE *out, FILE *err) NONNULL(2, 3, 4);
/* BPF commands (ctl_bpf.c): need root. */
int ctl_bpf(int argc, char **argv, FILE *out, FILE *err) NONNULL(2, 3, 4);
int ctl_attrib(int argc, char **argv, FILE *out, FILE *err) NONNULL(2, 3, 4);
/* Netfilter rules (ctl_nf.c): need root, act in the caller's netns. */
int ctl_nf(int argc, char **argv, FILE *out, FILE *err) NONNULL(2, 3, 4);

/* ---- helpers (ctl_common.c) ---- */

/* Where the policy comes from, as the commands' options say. */
struct ctl_source {
	const char *file;
	bool workflow; /* file is a workflow YAML */
	const char *preset;
	const char *repo; /* --repo */
};

/*
 * Reads the policy text: the file, or every policy of a workflow joined with
 * newlines.  Returns 0, or CTL_USAGE after printing why to err.
 */
int ctl_read_policy(const struct ctl_source *src, struct strbuf *text,
		    FILE *err) NONNULL(1, 2, 3) WUNRES;

/*
 * Parses for run-time use (egressctl check/analyze, --dump-rules): presets
 * and placeholders applied, lenient.  Prints every diagnostic to err.
 * Returns the policy, or NULL (after printing why) when it cannot be built.
 * *nerrors receives the number of syntax and rule errors.
 */
policy_t *ctl_build_policy(const struct ctl_source *src, const char *text,
			   size_t len, FILE *err, size_t *nerrors)
	NONNULL(1, 2, 4, 5) WUNRES;

/* "OWNER/REPO": --repo, else $GITHUB_REPOSITORY, else the git remote. */
char *ctl_detect_repo(const char *arg) WUNRES;

void ctl_print_diag(FILE *f, const char *where, const struct policy_diag *d)
	NONNULL(1, 2, 3);

#endif /* EGRESS_CTL_H */
