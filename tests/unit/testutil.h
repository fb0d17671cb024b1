/*
 * testutil.h - helpers shared by the unit suites: temporary files and
 * running an egressctl command in-process with captured streams.
 */
#ifndef EGRESS_TESTS_TESTUTIL_H
#define EGRESS_TESTS_TESTUTIL_H

#include <stdio.h>

/* Writes text to a new temporary file; returns its path (static slot i). */
char *tu_tmpfile(int slot, const char *suffix, const char *text);

struct tu_run {
	int rc;
	char *out; /* caller frees with tu_run_fini */
	char *err;
};

/*
 * Runs fn (ctl_validate, ctl_analyze, ctl_suggest) with argv, capturing
 * stdout and stderr.  check-style commands take stdin text via tu_run_in.
 */
void tu_run(struct tu_run *r, int (*fn)(int, char **, FILE *, FILE *),
	    char **argv);
void tu_run_in(struct tu_run *r,
	       int (*fn)(int, char **, FILE *, FILE *, FILE *), char **argv,
	       const char *in);
void tu_run_fini(struct tu_run *r);

/* Number of lines (newline-terminated) in s. */
int tu_lines(const char *s);

#endif /* EGRESS_TESTS_TESTUTIL_H */
